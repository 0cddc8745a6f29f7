/*
 * client.c: the console client. A DEALER socket speaks the REQ envelope
 * ([empty][request]) to the engine's ROUTER, so replies can be matched by
 * request id and stale replies from timed-out calls skipped, which a REQ
 * socket cannot do. ZeroMQ errors are translated to fbx_err here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "fbx_client.h"

#define CLIENT_ENDPOINT_MAX 512
#define CLIENT_DEFAULT_TIMEOUT_MS 5000
/* Room for the envelope and protobuf framing above the payload cap. */
#define CLIENT_MSG_MAX (FBX_CONSOLE_MSG_MAX + 64 * 1024)

struct fbx_client {
	void *ctx;
	void *sock;
	int timeout_ms;
	uint64_t next_id;
	char endpoint[CLIENT_ENDPOINT_MAX];
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

int
fbx_client_open(const char *endpoint, int timeout_ms, fbx_client **out)
{
	fbx_client *c = NULL;
	int linger = 0, immediate = 1, rc = FBX_OK;
	int64_t maxmsg = CLIENT_MSG_MAX;

	if (endpoint == NULL || out == NULL || endpoint[0] == '\0' ||
	    strlen(endpoint) >= CLIENT_ENDPOINT_MAX)
		return FBX_EINVALID;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return FBX_ENOMEM;
	strcpy(c->endpoint, endpoint);
	c->timeout_ms =
	    timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
	c->next_id = seed_id();
	c->ctx = zmq_ctx_new();
	if (c->ctx == NULL) {
		rc = FBX_EIO;
		goto out;
	}
	c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
	if (c->sock == NULL) {
		rc = errno == ENOMEM ? FBX_ENOMEM : FBX_EIO;
		goto out;
	}
	/* Immediate: queue only on a live connection, so a send that cannot
	 * go anywhere times out and reports "unreachable" instead of sitting
	 * in a pipe until an engine appears. */
	if (zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &immediate,
	        sizeof(immediate)) ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg))) {
		rc = FBX_EIO;
		goto out;
	}
	if (zmq_connect(c->sock, endpoint) != 0) {
		rc = (errno == EINVAL || errno == EPROTONOSUPPORT ||
		         errno == ENOCOMPATPROTO)
		    ? FBX_EINVALID
		    : FBX_EIO;
		goto out;
	}
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
	if (c->sock != NULL)
		zmq_close(c->sock);
	if (c->ctx != NULL)
		zmq_ctx_term(c->ctx);
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
		if (left <= 0)
			return FBX_EUNREACHABLE;
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

int
fbx_client_call(
    fbx_client *c, struct fbx_console_req *req, struct fbx_console_rep *rep)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int64_t deadline;
	int rc, saw_malformed = 0;

	if (c == NULL || req == NULL || rep == NULL)
		return FBX_EINVALID;
	memset(rep, 0, sizeof(*rep));
	req->version = FBX_PROTOCOL_VERSION;
	req->request_id = c->next_id++;
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
