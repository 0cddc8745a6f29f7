/*
 * client.c: the console client. A DEALER socket speaks the REQ envelope
 * ([empty][request]) to the engine's ROUTER, so replies can be matched by
 * request id and stale replies from timed-out calls skipped, which a REQ
 * socket cannot do. ZeroMQ errors are translated to fbx_err here.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "fbx_client.h"
#include "fbx_keys.h"

#define CLIENT_ENDPOINT_MAX 512
#define CLIENT_DEFAULT_TIMEOUT_MS 5000
/* Room for the envelope and protobuf framing above the payload cap. */
#define CLIENT_MSG_MAX (FBX_CONSOLE_MSG_MAX + 64 * 1024)

struct fbx_client {
	void *ctx;
	void *sock;
	void *mon; /* handshake events: a refused key is told at once */
	int refused; /* the last handshake was refused (until one passes) */
	/* connections the engine closed before their handshake passed,
	 * since the socket was made or a handshake last passed: CURVE
	 * with a server key that is not the engine's (the engine cannot
	 * open our HELLO and hangs up). A frozen engine leaves the
	 * handshake open: the client sets no handshake timeout of
	 * libzmq's (ZMQ_HANDSHAKE_IVL 0), whose expiry would look the
	 * same; its own request timeout bounds the wait. */
	int hs_passed; /* the handshake of the current connection passed */
	unsigned hs_drops;
	char principal[FBX_ID_MAX + 1]; /* of the key, "" = plaintext */
	int timeout_ms;
	uint64_t next_id;
	char endpoint[CLIENT_ENDPOINT_MAX];
	/* several nodes: the endpoint given to fbx_client_open (endpoint
	 * is the owner's after a MOVED), and the owner that last left a
	 * call unanswered ("" = none) */
	char home[CLIENT_ENDPOINT_MAX];
	char silent_owner[CLIENT_ENDPOINT_MAX];
	/* CURVE keys (Z85), kept to make the socket again (retarget) */
	int curve;
	char srv[FBX_Z85_KEY_LEN + 1], pub[FBX_Z85_KEY_LEN + 1];
	char sec[FBX_Z85_KEY_LEN + 1];
	unsigned gen; /* sockets made: names the monitor's endpoint */
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* seed_id - a random start for request ids, so that ids of two clients in
 * one log are told apart. Falls back to time and pid without urandom. */
static uint64_t
seed_id(void)
{
	uint64_t v = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			v = 0;
		close(fd);
	}
	if (v == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		v = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 40);
	}
	/* Keep ids positive and well away from wrapping. */
	v &= 0x0000ffffffffffffull;
	return v == 0 ? 1 : v;
}

/* ipc_missing - whether an ipc:// endpoint names a socket file that does
 * not exist, the usual sign that the engine is not running. */
static int
ipc_missing(const char *endpoint)
{
	struct stat st;

	if (strncmp(endpoint, "ipc://", 6) != 0)
		return 0;
	if (endpoint[6] == '@') /* abstract namespace: cannot check */
		return 0;
	return stat(endpoint + 6, &st) != 0 && errno == ENOENT;
}

/* probe_connect - a plain connect() to the endpoint's address, within
 * ms: 1 if something accepts connections there, 0 if not (refused, no
 * such file), -1 if it cannot be told (abstract ipc, bad address). It
 * tells "the engine is there but does not answer" (frozen, or busy) from
 * "nothing listens" (not running, a stale socket file). */
static int
probe_connect(const char *endpoint, int ms)
{
	struct addrinfo hints, *res = NULL;
	char host[CLIENT_ENDPOINT_MAX], *colon;
	int fd, rc = -1;

	if (strncmp(endpoint, "ipc://", 6) == 0) {
		struct sockaddr_un sun;
		const char *path = endpoint + 6;

		if (path[0] == '@' || strlen(path) >= sizeof(sun.sun_path))
			return -1;
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, path, strlen(path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		/* a full backlog (EAGAIN) is a live listener too */
		rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
		    errno == EAGAIN;
		close(fd);
		return rc;
	}
	if (strncmp(endpoint, "tcp://", 6) != 0)
		return -1;
	snprintf(host, sizeof(host), "%s", endpoint + 6);
	colon = strrchr(host, ':');
	if (colon == NULL)
		return -1;
	*colon = '\0';
	if (host[0] == '[') { /* [v6]:port */
		size_t hl = strlen(host);
		if (hl < 2 || host[hl - 1] != ']')
			return -1;
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd >= 0) {
		if (connect(fd, res->ai_addr, res->ai_addrlen) == 0) {
			rc = 1;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = { fd, POLLOUT, 0 };
			int err = 0;
			socklen_t el = sizeof(err);
			if (poll(&p, 1, ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0)
				rc = err == 0;
			else
				rc = -1; /* no answer in time: cannot tell */
		} else {
			rc = 0;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return rc;
}

int
fbx_client_wait_ready(const char *endpoint, int ms)
{
	int64_t deadline = now_ms() + (ms > 0 ? ms : 0);

	if (endpoint == NULL)
		return FBX_EINVALID;
	for (;;) {
		int p = probe_connect(endpoint, 200);
		if (p != 0)
			return FBX_OK; /* listening, or cannot tell */
		if (now_ms() >= deadline)
			return FBX_EUNREACHABLE;
		usleep(20 * 1000);
	}
}

/* client_curve - make c's socket a CURVE client with its own key and the
 * server's public key, found as fbx_client_opts says, and watch its
 * handshakes. @return FBX_OK, FBX_ECONFIG (why filled), FBX_EIO. */
static int
client_curve(fbx_client *c, const struct fbx_client_opts *o, char *why,
    size_t wl)
{
	char path[4096], spath[4096];
	struct fbx_key k, s;
	int rc;

	if (fbx_key_locate(o != NULL ? o->key_file : NULL, "FUSEBOX_KEY",
	        "client.key", path, sizeof(path)) != FBX_OK ||
	    fbx_key_locate(o != NULL ? o->server_key_file : NULL,
	        "FUSEBOX_SERVER_KEY", "server.pub", spath,
	        sizeof(spath)) != FBX_OK) {
		snprintf(why, wl, "no key: give --key FILE or set FUSEBOX_KEY "
		                  "(and HOME for the default path)");
		return FBX_ECONFIG;
	}
	rc = fbx_key_read(path, 1, &k, why, wl);
	if (rc == FBX_OK)
		rc = fbx_key_read(spath, 0, &s, why, wl);
	if (rc != FBX_OK) {
		if (rc == FBX_ENOT_FOUND)
			snprintf(why + strlen(why), wl - strlen(why),
			    " (keys: --key / FUSEBOX_KEY, --server-key / "
			    "FUSEBOX_SERVER_KEY; `fuseboxd init` makes them)");
		return FBX_ECONFIG;
	}
	snprintf(c->principal, sizeof(c->principal), "%s", k.name);
	memcpy(c->srv, s.public_z85, sizeof(c->srv));
	memcpy(c->pub, k.public_z85, sizeof(c->pub));
	memcpy(c->sec, k.secret_z85, sizeof(c->sec));
	c->srv[FBX_Z85_KEY_LEN] = c->pub[FBX_Z85_KEY_LEN] =
	    c->sec[FBX_Z85_KEY_LEN] = '\0';
	c->curve = 1;
	memset(&k, 0, sizeof(k));
	return FBX_OK;
}

/* close_monitored - close socket s and the PAIR m that reads its monitor
 * (either may be NULL): the monitor is stopped first, while m is still
 * there. An event the socket raises with no reader left is a message
 * libzmq (4.3) never frees: it leaked when the client moved to another
 * node's endpoint and back. */
static void
close_monitored(void *s, void *m)
{
	if (s != NULL) {
		/* (an error when it has none: nothing to stop) */
		(void)zmq_socket_monitor(s, NULL, 0);
		zmq_close(s);
	}
	if (m != NULL)
		zmq_close(m);
}

/* make_socket - a DEALER for endpoint with the client's options and
 * keys, and its handshake monitor; replaces the client's socket only
 * when all of it worked. why/wl: a message for a refused key. */
static int
make_socket(fbx_client *c, const char *endpoint, char *why, size_t wl)
{
	int linger = 0, immediate = 1, hs_ivl = 0, rc = FBX_EIO;
	int64_t maxmsg = CLIENT_MSG_MAX;
	char mon[80];
	void *s = zmq_socket(c->ctx, ZMQ_DEALER), *m = NULL;

	if (s == NULL)
		return errno == ENOMEM ? FBX_ENOMEM : FBX_EIO;
	/* Immediate: queue only on a live connection, so a send that cannot
	 * go anywhere times out and reports "unreachable" instead of sitting
	 * in a pipe until an engine appears. */
	if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(s, ZMQ_IMMEDIATE, &immediate, sizeof(immediate)) ||
	    zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &hs_ivl, sizeof(hs_ivl)) ||
	    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)))
		goto fail;
	if (c->curve) {
		if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, c->srv,
		        sizeof(c->srv)) != 0 ||
		    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, c->pub,
		        sizeof(c->pub)) != 0 ||
		    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, c->sec,
		        sizeof(c->sec)) != 0) {
			snprintf(why, wl, "libzmq refused the CURVE keys: %s",
			    zmq_strerror(errno));
			rc = FBX_ECONFIG;
			goto fail;
		}
		snprintf(mon, sizeof(mon), "inproc://fbx-client-mon-%p-%u",
		    (void *)c, c->gen++);
		if (zmq_socket_monitor(s, mon,
		        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
		            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
		            ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
		            ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0)
			goto fail;
		m = zmq_socket(c->ctx, ZMQ_PAIR);
		if (m == NULL || zmq_connect(m, mon) != 0)
			goto fail;
	}
	if (zmq_connect(s, endpoint) != 0) {
		rc = (errno == EINVAL || errno == EPROTONOSUPPORT ||
		         errno == ENOCOMPATPROTO)
		    ? FBX_EINVALID
		    : FBX_EIO;
		goto fail;
	}
	close_monitored(c->sock, c->mon);
	c->sock = s;
	c->mon = m;
	c->refused = 0;
	c->hs_passed = 0;
	c->hs_drops = 0;
	return FBX_OK;
fail:
	close_monitored(s, m);
	return rc;
}

/* refused - whether the engine refused our key at the last handshake
 * (libzmq may not try again soon: the verdict stays until a handshake
 * passes). */
static int
refused(fbx_client *c)
{
	for (;;) {
		zmq_msg_t m;
		int more;
		zmq_msg_init(&m);
		if (c->mon == NULL || zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return c->refused;
		}
		if (zmq_msg_size(&m) >= 2) {
			uint16_t ev;
			memcpy(&ev, zmq_msg_data(&m), 2);
			if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
			    ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
				c->refused = 1;
			else if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
				c->refused = 0, c->hs_passed = 1,
				c->hs_drops = 0;
			else if (ev == ZMQ_EVENT_CONNECTED)
				c->hs_passed = 0;
			else if (ev == ZMQ_EVENT_DISCONNECTED && !c->hs_passed)
				c->hs_drops++;
		}
		more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		while (more) { /* the endpoint frame */
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, c->mon, 0) < 0)
				more = 0;
			else
				more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
	}
}

unsigned
fbx_client_handshake_drops(fbx_client *c)
{
	if (c == NULL)
		return 0;
	(void)refused(c); /* reads the monitor's events */
	return c->hs_drops;
}

const char *
fbx_client_principal(const fbx_client *c)
{
	return c == NULL ? "" : c->principal;
}

int
fbx_client_open(const char *endpoint, int timeout_ms, fbx_client **out)
{
	return fbx_client_open2(endpoint, timeout_ms, NULL, out);
}

int
fbx_client_open2(const char *endpoint, int timeout_ms,
    const struct fbx_client_opts *o, fbx_client **out)
{
	fbx_client *c = NULL;
	int rc = FBX_OK;
	char whybuf[512];
	char *why = o != NULL && o->why != NULL ? o->why : whybuf;
	size_t wl = o != NULL && o->why != NULL ? o->whylen : sizeof(whybuf);

	if (endpoint == NULL || out == NULL || endpoint[0] == '\0' ||
	    strlen(endpoint) >= CLIENT_ENDPOINT_MAX || wl == 0)
		return FBX_EINVALID;
	why[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return FBX_ENOMEM;
	strcpy(c->endpoint, endpoint);
	strcpy(c->home, endpoint);
	c->timeout_ms =
	    timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	c->next_id = seed_id();
	c->ctx = zmq_ctx_new();
	if (c->ctx == NULL) {
		rc = FBX_EIO;
		goto out;
	}
	if (o == NULL || !o->plaintext) {
		rc = client_curve(c, o, why, wl);
		if (rc != FBX_OK)
			goto out;
	}
	rc = make_socket(c, endpoint, why, wl);
	if (rc != FBX_OK)
		goto out;
	*out = c;
	c = NULL;
out:
	fbx_client_close(c);
	return rc;
}

void
fbx_client_close(fbx_client *c)
{
	if (c == NULL)
		return;
	close_monitored(c->sock, c->mon);
	if (c->ctx != NULL)
		zmq_ctx_term(c->ctx);
	memset(c->sec, 0, sizeof(c->sec));
	free(c);
}

void
fbx_client_set_timeout(fbx_client *c, int timeout_ms)
{
	if (c == NULL)
		return;
	c->timeout_ms =
	    timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
}

const char *
fbx_client_endpoint(const fbx_client *c)
{
	return c == NULL ? "" : c->endpoint;
}

const char *
fbx_client_silent_owner(const fbx_client *c)
{
	return c == NULL ? "" : c->silent_owner;
}

/* send_request - send [empty][buf], waiting at most until deadline for a
 * connection to take it. */
static int
send_request(fbx_client *c, const uint8_t *buf, size_t len, int64_t deadline)
{
	for (;;) {
		zmq_pollitem_t it = { c->sock, 0, ZMQ_POLLOUT, 0 };
		int64_t left = deadline - now_ms();
		int n;

		if (zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 0) {
			/* The envelope is queued; the body follows at once
			 * because a multipart message is atomic. */
			if (zmq_send(c->sock, buf, len, 0) < 0)
				return FBX_EIO;
			return FBX_OK;
		}
		if (errno != EAGAIN)
			return errno == EINTR ? FBX_ETIMEOUT : FBX_EIO;
		if (refused(c))
			return FBX_EFORBIDDEN; /* the engine refused our key */
		/* No connection took the request in time. If something
		 * accepts connections there, the engine runs but did not
		 * finish the handshake (frozen, or stuck in a long turn):
		 * a timeout, worth a retry. Otherwise nothing listens. */
		if (left <= 0)
			return probe_connect(c->endpoint, 200) == 1
			    ? FBX_ETIMEOUT
			    : FBX_EUNREACHABLE;
		n = zmq_poll(&it, 1, (long)(left > 100 ? 100 : left));
		if (n < 0 && errno != EINTR)
			return FBX_EIO;
		if (ipc_missing(c->endpoint))
			return FBX_EUNREACHABLE;
	}
}

/* recv_reply - receive one reply message into a zmq_msg. Returns FBX_OK
 * with body set, or FBX_ETIMEOUT/FBX_EIO/FBX_EMALFORMED (bad envelope,
 * already drained). */
static int
recv_reply(fbx_client *c, zmq_msg_t *body, int64_t deadline)
{
	zmq_msg_t part;
	int more, nparts = 0, rc = FBX_OK, have_body = 0;

	for (;;) {
		zmq_pollitem_t it = { c->sock, 0, ZMQ_POLLIN, 0 };
		int64_t left = deadline - now_ms();
		int n;

		if (left < 0)
			left = 0;
		n = zmq_poll(&it, 1, (long)left);
		if (n < 0) {
			if (errno == EINTR)
				return FBX_ETIMEOUT;
			return FBX_EIO;
		}
		if (n > 0)
			break;
		if (left == 0)
			return FBX_ETIMEOUT;
	}
	/* Drain every part: [empty][body]; anything else is malformed. */
	do {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, c->sock, 0) < 0) {
			zmq_msg_close(&part);
			return FBX_EIO;
		}
		more = zmq_msg_more(&part);
		nparts++;
		if (nparts == 1 && zmq_msg_size(&part) != 0 && !more) {
			/* Tolerate a bare body without the empty frame. */
			zmq_msg_move(body, &part);
			have_body = 1;
		} else if (nparts == 1 && zmq_msg_size(&part) != 0) {
			rc = FBX_EMALFORMED;
		} else if (nparts == 2) {
			zmq_msg_move(body, &part);
			have_body = 1;
		} else if (nparts > 2) {
			rc = FBX_EMALFORMED;
		}
		zmq_msg_close(&part);
	} while (more);
	if (rc == FBX_OK && !have_body)
		rc = FBX_EMALFORMED;
	return rc;
}

static int
call_once(
    fbx_client *c, struct fbx_console_req *req, struct fbx_console_rep *rep)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int64_t deadline;
	int rc, saw_malformed = 0;

	if (c == NULL || req == NULL || rep == NULL)
		return FBX_EINVALID;
	memset(rep, 0, sizeof(*rep));
	/* libzmq never tries a refused handshake again: connect anew, so a
	 * key added (or an engine restarted) since is found */
	if (refused(c)) {
		char why[256];
		rc = make_socket(c, c->endpoint, why, sizeof(why));
		if (rc != FBX_OK)
			return rc == FBX_ECONFIG ? FBX_EIO : rc;
	}
	req->version = FBX_PROTOCOL_VERSION;
	req->request_id = c->next_id++;
	/* the engine acts as the key's principal: say so when the caller
	 * did not name one (another name is refused FORBIDDEN) */
	if (req->actor[0] == '\0')
		memcpy(req->actor, c->principal, sizeof(c->principal));
	rc = fbx_console_req_encode(req, &buf, &len);
	if (rc != FBX_OK)
		goto out;
	if (ipc_missing(c->endpoint)) {
		rc = FBX_EUNREACHABLE;
		goto out;
	}
	deadline = now_ms() + c->timeout_ms;
	rc = send_request(c, buf, len, deadline);
	if (rc != FBX_OK)
		goto out;
	for (;;) {
		zmq_msg_t body;
		struct fbx_console_rep tmp;

		zmq_msg_init(&body);
		rc = recv_reply(c, &body, deadline);
		if (rc == FBX_EMALFORMED) {
			/* A stray message we cannot read; keep waiting for
			 * ours rather than failing a healthy call. */
			zmq_msg_close(&body);
			saw_malformed = 1;
			continue;
		}
		if (rc != FBX_OK) {
			zmq_msg_close(&body);
			if (rc == FBX_ETIMEOUT && saw_malformed)
				rc = FBX_EMALFORMED;
			else if (rc == FBX_ETIMEOUT && ipc_missing(c->endpoint))
				rc = FBX_EUNREACHABLE;
			goto out;
		}
		memset(&tmp, 0, sizeof(tmp));
		rc = fbx_console_rep_decode(
		    zmq_msg_data(&body), zmq_msg_size(&body), &tmp);
		zmq_msg_close(&body);
		if (rc != FBX_OK) {
			rc = rc == FBX_ENOMEM ? FBX_ENOMEM : FBX_EMALFORMED;
			goto out;
		}
		if (tmp.request_id != req->request_id) {
			fbx_console_rep_free(&tmp); /* stale: an old timeout */
			continue;
		}
		*rep = tmp;
		rc = FBX_OK;
		goto out;
	}
out:
	free(buf);
	return rc;
}

/* retarget - talk to endpoint from now on (same keys), on a new socket:
 * a disconnect takes effect later, and a request sent meanwhile could
 * still go down the old connection and be lost. */
static int
retarget(fbx_client *c, const char *endpoint)
{
	char why[256];
	int rc;

	if (strlen(endpoint) >= CLIENT_ENDPOINT_MAX)
		return FBX_EINVALID;
	rc = make_socket(c, endpoint, why, sizeof(why));
	if (rc != FBX_OK)
		return rc;
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
	return FBX_OK;
}

int
fbx_client_call(
    fbx_client *c, struct fbx_console_req *req, struct fbx_console_rep *rep)
{
	int rc;

	c->silent_owner[0] = '\0';
	rc = call_once(c, req, rep);
	/* cluster mode (issue 13): a node that does not own the request's
	 * organisation answers MOVED with the owner's endpoint, having done
	 * nothing: ask the owner instead (twice at most: an organisation
	 * may move once more meanwhile) */
	for (int hops = 0; hops < 2 && rc == FBX_OK &&
	     rep->err == FBX_EMOVED && rep->owner_endpoint[0] != '\0' &&
	     strcmp(rep->owner_endpoint, c->endpoint) != 0;
	     hops++) {
		char ep[sizeof(rep->owner_endpoint)];
		snprintf(ep, sizeof(ep), "%s", rep->owner_endpoint);
		if (retarget(c, ep) != FBX_OK)
			break;
		fbx_console_rep_free(rep);
		rc = call_once(c, req, rep);
	}
	if ((rc == FBX_ETIMEOUT || rc == FBX_EUNREACHABLE) &&
	    strcmp(c->endpoint, c->home) != 0) {
		/* the owner a MOVED named does not answer: it may have
		 * stopped, and then the node first asked answers (BUSY,
		 * then as the new owner) once its lease runs out. Ask that
		 * node again next time. */
		snprintf(c->silent_owner, sizeof(c->silent_owner), "%s",
		    c->endpoint);
		if (retarget(c, c->home) != FBX_OK)
			c->silent_owner[0] = '\0';
	}
	return rc;
}
