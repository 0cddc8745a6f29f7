/*
 * io_zmq.c: the engine's ZeroMQ transport. Console and gateway are ROUTER
 * sockets (the gateway one with ZMQ_ROUTER_MANDATORY, so a send to a peer
 * that is gone fails instead of vanishing), events a PUB socket. Every
 * socket has LINGER 0, a send high-water mark and a message size cap; a
 * send never blocks. Delivery guarantees come from the engine's own ACKs
 * and journal, never from these sockets.
 *
 * Every socket is a CURVE server (issue 10). The engine's own ZAP handler
 * (RFC 27) runs on a thread of its own, bound at inproc://zeromq.zap.01
 * in the engine's context, and answers each handshake from the principals'
 * table (auth.c) under its mutex, so a slow engine turn never stalls a
 * handshake. ZMQ_ZAP_ENFORCE_DOMAIN makes libzmq refuse a client when no
 * handler answers, instead of letting it in. The handler's User-Id is the
 * principal's name and its "Fbx-Key" property the key: every message read
 * carries both, and the engine checks them against the table as it is
 * then, so a key revoked or rotated after the handshake is refused too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zmq.h>

#include "auth.h"
#include "engine_int.h"
#include "fbx_keys.h"
#include "io_zmq.h"
#include "fbx_web.h"
#include "websess.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "fusebox"
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
/* in the draft API of libzmq 4.3.4, but set by every 4.3 build */
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

struct zio {
	void *ctx;
	void *sock[3]; /* by enum fbx_io_chan; events may be NULL */
	struct fbxi_auth *auth;
	struct fbx_key server;
	void *zap;          /* REP socket of the ZAP thread */
	pthread_t zap_thread;
	int zap_running;
	atomic_int zap_stop;
	atomic_int web_closed; /* fbx_webgate_close: calls fail fast */
	/* the events endpoint as bound (port 0 resolved), for
	 * events_reset; when a rebind failed, sock[EVENTS] is NULL and the
	 * bind is tried again from zio_wait every 100 ms */
	char events_ep[256];
	int64_t events_retry_ms;
	/* since when the events endpoint is unbound after a reset (0 =
	 * bound), and whether that was said at warn */
	int64_t events_down_ms;
	int events_down_said;
	/* issue 12: ROUTER at WEB_EP for the web console's HTTP threads
	 * (fbx_web.h); read and answered on the loop thread only */
	void *web;
	/* zio_recv's console turn: the CURVE socket found empty, and the
	 * web requests taken since (at most WEB_PER_TURN) */
	int con_drained;
	unsigned web_taken;
};

/* zap_send - one frame of a ZAP reply. */
static int
zap_send(void *s, const void *p, size_t n, int more)
{
	return zmq_send(s, p, n, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

/* zap_answer - read one ZAP request (RFC 27: version, request id,
 * domain, address, routing id, mechanism, credentials) and answer it. */
static void
zap_answer(struct zio *z)
{
	zmq_msg_t f[8];
	int n = 0, more = 1, ok = 0;
	char name[FBX_ID_MAX + 1] = "", key[41] = "";
	uint8_t meta[64];
	size_t metalen = 0;

	while (more && n < 8) {
		zmq_msg_init(&f[n]);
		if (zmq_msg_recv(&f[n], z->zap, 0) < 0) {
			zmq_msg_close(&f[n]);
			goto out;
		}
		more = zmq_msg_more(&f[n]);
		n++;
	}
	while (more) { /* a request with too many frames: drain it */
		zmq_msg_t x;
		zmq_msg_init(&x);
		if (zmq_msg_recv(&x, z->zap, 0) < 0) {
			zmq_msg_close(&x);
			goto out;
		}
		more = zmq_msg_more(&x);
		zmq_msg_close(&x);
	}
	if (n < 6)
		goto out; /* cannot even answer: libzmq times it out */
	if (n == 7 && zmq_msg_size(&f[0]) == 3 &&
	    memcmp(zmq_msg_data(&f[0]), "1.0", 3) == 0 &&
	    zmq_msg_size(&f[2]) == strlen(ZAP_DOMAIN) &&
	    memcmp(zmq_msg_data(&f[2]), ZAP_DOMAIN, strlen(ZAP_DOMAIN)) == 0 &&
	    zmq_msg_size(&f[5]) == 5 &&
	    memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
	    zmq_msg_size(&f[6]) == 32 &&
	    zmq_z85_encode(key, zmq_msg_data(&f[6]), 32) != NULL)
		ok = fbxi_auth_zap(z->auth, key, name);
	if (ok) {
		/* metadata: one property, "Fbx-Key" = the Z85 key */
		static const char pname[] = "Fbx-Key";
		meta[0] = (uint8_t)(sizeof(pname) - 1);
		memcpy(meta + 1, pname, sizeof(pname) - 1);
		metalen = 1 + sizeof(pname) - 1;
		meta[metalen++] = 0;
		meta[metalen++] = 0;
		meta[metalen++] = 0;
		meta[metalen++] = 40;
		memcpy(meta + metalen, key, 40);
		metalen += 40;
	} else {
		char a[64] = "";
		size_t al = zmq_msg_size(&f[3]) < sizeof(a) - 1
		    ? zmq_msg_size(&f[3])
		    : sizeof(a) - 1;
		memcpy(a, zmq_msg_data(&f[3]), al);
		FBX_LOGW("handshake from %s refused: %s", a[0] ? a : "(local)",
		    key[0] ? "unknown or revoked key"
		           : "not a CURVE handshake for this engine");
	}
	(void)(zap_send(z->zap, "1.0", 3, 1) != 0 ||
	    zap_send(z->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), 1) !=
	        0 ||
	    zap_send(z->zap, ok ? "200" : "400", 3, 1) != 0 ||
	    zap_send(z->zap, ok ? "OK" : "key not authorised",
	        ok ? 2 : 18, 1) != 0 ||
	    zap_send(z->zap, name, ok ? strlen(name) : 0, 1) != 0 ||
	    zap_send(z->zap, meta, metalen, 0) != 0);
out:
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
}

/* zap_main - the ZAP handler's thread: answers until zap_stop, then
 * closes its socket (the context cannot end before). */
static void *
zap_main(void *arg)
{
	struct zio *z = arg;

	while (!atomic_load(&z->zap_stop)) {
		zmq_pollitem_t it = { z->zap, 0, ZMQ_POLLIN, 0 };
		int rc;
		/* until recovery has loaded the principals, handshakes wait
		 * (up to libzmq's handshake interval, then the client
		 * connects again): a refusal now would be for good */
		if (!fbxi_auth_loaded(z->auth)) {
			zmq_poll(NULL, 0, 20);
			continue;
		}
		rc = zmq_poll(&it, 1, 100);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc > 0 && (it.revents & ZMQ_POLLIN))
			zap_answer(z);
	}
	zmq_close(z->zap);
	z->zap = NULL;
	return NULL;
}

/* zap_start - bind the ZAP endpoint in z's context and start its thread.
 * Before any server socket binds, so no handshake finds no handler. */
static int
zap_start(struct zio *z)
{
	int zero = 0;

	z->zap = zmq_socket(z->ctx, ZMQ_REP);
	if (z->zap == NULL)
		return FBX_ENOMEM;
	if (zmq_setsockopt(z->zap, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(z->zap, ZAP_ENDPOINT) != 0) {
		FBX_LOGE("cannot bind the ZAP handler: %s",
		    zmq_strerror(errno));
		zmq_close(z->zap);
		z->zap = NULL;
		return FBX_EUNREACHABLE;
	}
	if (pthread_create(&z->zap_thread, NULL, zap_main, z) != 0) {
		zmq_close(z->zap);
		z->zap = NULL;
		return FBX_ENOMEM;
	}
	z->zap_running = 1;
	return FBX_OK;
}

/* curve_server - make s a CURVE server of the engine's key whose clients
 * are judged by the ZAP handler, never let through without it. */
static int
curve_server(struct zio *z, void *s)
{
	int one = 1;

	if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, z->server.secret_z85,
	        FBX_Z85_KEY_LEN + 1) != 0 ||
	    zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN,
	        strlen(ZAP_DOMAIN)) != 0 ||
	    zmq_setsockopt(s, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one)) !=
	        0) {
		FBX_LOGE("cannot make a CURVE server socket: %s (does libzmq "
		         "have CURVE?)",
		    zmq_strerror(errno));
		return FBX_EINVAL;
	}
	return FBX_OK;
}

/* ipc_mode - an ipc socket file is for the service user and its group
 * (0660), whatever the umask made of it. */
static void
ipc_mode(const char *ep)
{
	if (strncmp(ep, "ipc://", 6) == 0 && ep[6] != '@' &&
	    chmod(ep + 6, 0660) != 0)
		FBX_LOGW("cannot chmod %s: %s", ep + 6, strerror(errno));
}

static int
router(struct zio *z, const char *ep, int gateway, void **out)
{
	void *s = zmq_socket(z->ctx, ZMQ_ROUTER);
	int zero = 0, one = 1, hwm = gateway ? GW_SNDHWM : 100000;
	/* a little over the largest legal message, so a peer slightly over
	 * gets a coded error from the decoder (which checks the cap before
	 * anything is unpacked) while a huge one is cut at the socket */
	int64_t maxmsg = gateway ? (int64_t)FBX_GATEWAY_IN_MAX + (1 << 20)
	                         : (int64_t)FBX_CONSOLE_MSG_MAX * 2;

	if (s == NULL)
		return FBX_ENOMEM;
	if (curve_server(z, s) != FBX_OK ||
	    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    (gateway &&
	        zmq_setsockopt(
	            s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0)) {
		zmq_close(s);
		return FBX_EINVAL;
	}
	if (zmq_bind(s, ep) != 0) {
		FBX_LOGE("cannot bind %s: %s", ep, zmq_strerror(errno));
		zmq_close(s);
		return FBX_EUNREACHABLE;
	}
	ipc_mode(ep);
	*out = s;
	return FBX_OK;
}

/* events_bind - an XPUB in manual mode, CURVE server, bound to ep:
 * the engine decides what each subscriber's subscription becomes
 * (events_subs). A failure is logged as an error unless quiet (a
 * rebind after a reset, retried every 100 ms: a tcp port is free again
 * only once the old socket's listener has closed). */
static int
events_bind_(struct zio *z, const char *ep, void **out, int quiet)
{
	int zero = 0, one = 1;
	void *s = zmq_socket(z->ctx, ZMQ_XPUB);

	*out = NULL;
	if (s == NULL || curve_server(z, s) != FBX_OK ||
	    zmq_setsockopt(s, ZMQ_XPUB_MANUAL, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(s, ep) != 0) {
		int err = errno;
		if (!quiet)
			FBX_LOGE("cannot bind events %s: %s", ep,
			    zmq_strerror(err));
		if (s != NULL)
			zmq_close(s);
		errno = err; /* for the caller's line */
		return FBX_EUNREACHABLE;
	}
	ipc_mode(ep);
	*out = s;
	return FBX_OK;
}

static int
events_bind(struct zio *z, const char *ep, void **out)
{
	return events_bind_(z, ep, out, 0);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* zio_events_reset - end every events subscription. libzmq's XPUB cannot
 * drop one subscriber (in manual mode a subscription can be changed only
 * for the peer that sent the last one), so after a key is revoked or
 * rotated the socket is replaced: its connections close, subscribers
 * reconnect (libzmq does, and sends its subscriptions again), and each
 * handshake goes through the ZAP handler again, which refuses the old
 * key. An ipc endpoint is bound anew before the old socket closes (the
 * bind replaces the socket file), a tcp one after (one port, one
 * listener): tried once here, then from zio_wait every 100 ms, so the
 * loop never sleeps on it. Events published meanwhile are lost to
 * everyone, as events may be. */
static void
zio_events_reset(void *io)
{
	struct zio *z = io;
	void *old = z->sock[FBX_IO_EVENTS], *s = NULL;
	int ipc = strncmp(z->events_ep, "ipc://", 6) == 0;

	if (z->events_ep[0] == '\0')
		return;
	if (ipc && old != NULL &&
	    events_bind_(z, z->events_ep, &s, 1) != FBX_OK)
		s = NULL;
	if (old != NULL)
		zmq_close(old);
	z->sock[FBX_IO_EVENTS] = NULL;
	if (s == NULL && events_bind_(z, z->events_ep, &s, 1) != FBX_OK)
		s = NULL;
	z->sock[FBX_IO_EVENTS] = s;
	z->events_retry_ms = mono_ms() + 100;
	z->events_down_ms = s != NULL ? 0 : mono_ms();
	z->events_down_said = 0;
	FBX_LOGI("events: every subscription ended (a key was revoked or "
	         "rotated); subscribers reconnect%s",
	    s != NULL ? "" : " once the endpoint is bound again");
}

/* ---- the web console's door (issue 12, fbx_web.h) ------------------- */

#define WEB_EP "inproc://fusebox.web"
#define WEB_PER_TURN 64 /* web requests read per engine turn */

/* The first envelope frame of a web request as the engine sees it. A
 * generated routing id is 5 bytes; a client may choose this one (ZeroMQ
 * lets it begin with a zero byte): sock_recv drops what comes under it
 * on the console socket. */
static const uint8_t web_mark[8] = { 0, 'f', 'b', 'x', '-', 'w', 'e', 'b' };

/* web_bind - the ROUTER the HTTP threads' DEALERs connect to. inproc:
 * reachable from this process's ZeroMQ context only, so what arrives
 * there comes from fbx_webgate_call, which has mapped a token to the
 * principal and key it sends. */
static int
web_bind(struct zio *z)
{
	int zero = 0;

	z->web = zmq_socket(z->ctx, ZMQ_ROUTER);
	if (z->web == NULL)
		return FBX_ENOMEM;
	if (zmq_setsockopt(z->web, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_bind(z->web, WEB_EP) != 0) {
		FBX_LOGE("cannot bind %s: %s", WEB_EP, zmq_strerror(errno));
		return FBX_EUNREACHABLE;
	}
	return FBX_OK;
}

/* web_env - whether an envelope is a web request's */
static int
web_env(int nenv, const size_t *envlen, const uint8_t (*env)[FBX_IO_RID_MAX])
{
	return nenv >= 2 && envlen[0] == sizeof(web_mark) &&
	    memcmp(env[0], web_mark, sizeof(web_mark)) == 0;
}

/* web_recv - one web request, as a console message: frames [routing
 * id][principal][key][body] become envelope [mark][routing id], user,
 * key and body. @return as zio_recv. */
static int
web_recv(struct zio *z, struct fbx_io_msg *m, size_t *dropped)
{
	zmq_msg_t f[4], *body = NULL;
	int n = 0, more, bad = 0;
	size_t total = 0;

	zmq_msg_init(&f[0]);
	if (zmq_msg_recv(&f[0], z->web, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&f[0]);
		return 0;
	}
	n = 1;
	more = zmq_msg_more(&f[0]);
	while (more && n < 4) {
		zmq_msg_init(&f[n]);
		if (zmq_msg_recv(&f[n], z->web, 0) < 0) {
			zmq_msg_close(&f[n]);
			bad = 1;
			break;
		}
		more = zmq_msg_more(&f[n]);
		n++;
	}
	while (more) { /* more frames than a web request has */
		zmq_msg_t x;
		zmq_msg_init(&x);
		if (zmq_msg_recv(&x, z->web, 0) < 0)
			more = 0;
		else
			more = zmq_msg_more(&x);
		total += zmq_msg_size(&x);
		zmq_msg_close(&x);
		bad = 1;
	}
	if (!bad && (n != 4 || zmq_msg_size(&f[0]) > FBX_IO_RID_MAX ||
	                zmq_msg_size(&f[1]) >= sizeof(m->user) ||
	                zmq_msg_size(&f[2]) != 40))
		bad = 1;
	if (!bad) {
		body = malloc(sizeof(*body));
		bad = body == NULL;
	}
	if (bad) {
		for (int i = 0; i < n; i++) {
			total += zmq_msg_size(&f[i]);
			zmq_msg_close(&f[i]);
		}
		*dropped = total;
		return -1;
	}
	m->chan = FBX_IO_CONSOLE;
	m->nenv = 2;
	m->envlen[0] = sizeof(web_mark);
	memcpy(m->env[0], web_mark, sizeof(web_mark));
	m->envlen[1] = zmq_msg_size(&f[0]);
	memcpy(m->env[1], zmq_msg_data(&f[0]), m->envlen[1]);
	memcpy(m->user, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]));
	m->user[zmq_msg_size(&f[1])] = '\0';
	memcpy(m->key, zmq_msg_data(&f[2]), 40);
	m->key[40] = '\0';
	zmq_msg_init(body);
	zmq_msg_move(body, &f[3]);
	m->body = zmq_msg_data(body);
	m->len = zmq_msg_size(body);
	m->priv = body;
	for (int i = 0; i < n; i++)
		zmq_msg_close(&f[i]);
	return 1;
}

static int64_t
web_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

fbx_webgate *
fbx_engine_webgate(fbx_engine *eng)
{
	if (eng == NULL || eng->io_ops != &fbxi_io_zmq_ops)
		return NULL;
	return (fbx_webgate *)eng->io;
}

int
fbx_webgate_who(fbx_webgate *g, const char *token, struct fbx_web_who *out)
{
	struct zio *z = (struct zio *)g;
	const struct fbxi_principal *p;
	struct fbxi_auth *a;
	struct fbx_web_who *w;
	int rc = FBX_ENOT_FOUND;

	if (z == NULL || z->auth == NULL || token == NULL || out == NULL)
		return FBX_ENOT_FOUND;
	a = z->auth;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return FBX_ENOMEM;
	if (fbxi_websess_find(a->web, token, web_wall_ms(), w->principal,
	        sizeof(w->principal), w->key, &w->expires_ms) != FBX_OK)
		goto out;
	/* as the ZAP handler does: the table as it is now, under its
	 * mutex (the loop replaces it under the same mutex) */
	pthread_mutex_lock(&a->mu);
	p = fbxi_auth_find(a, w->principal);
	if (p != NULL && !p->revoked && strcmp(p->key, w->key) == 0 &&
	    p->kind != FBX_PK_GATEWAY) {
		w->kind = p->kind;
		w->roles = p->roles;
		w->all_orgs = p->all_orgs;
		w->norgs = p->norgs;
		memcpy(w->orgs, p->orgs, p->norgs * sizeof(p->orgs[0]));
		rc = FBX_OK;
	}
	pthread_mutex_unlock(&a->mu);
	if (rc != FBX_OK) /* revoked or rotated since: for good */
		fbxi_websess_forget(a->web, token);
	else
		memcpy(out, w, sizeof(*w));
out:
	free(w);
	return rc;
}

int
fbx_webgate_claim(fbx_webgate *g, const char *token, char *fresh,
    struct fbx_web_who *out)
{
	struct zio *z = (struct zio *)g;
	int rc = fbx_webgate_who(g, token, out);

	_Static_assert(FBX_WEB_TOKEN_HEX == FBX_WEB_TOKEN_LEN, "token size");
	if (rc != FBX_OK)
		return rc;
	return fbxi_websess_claim(z->auth->web, token, web_wall_ms(), fresh);
}

int
fbx_webgate_end(fbx_webgate *g, const char *token)
{
	struct zio *z = (struct zio *)g;
	char user[FBX_ID_MAX + 1], sid[17];

	if (z == NULL || z->auth == NULL ||
	    fbxi_websess_end(z->auth->web, token, web_wall_ms(), user,
	        sizeof(user), sid) != FBX_OK)
		return FBX_ENOT_FOUND;
	FBX_LOGI("web: session %s of %s ended: its page signed out", sid,
	    user);
	return FBX_OK;
}

int
fbx_webgate_call(fbx_webgate *g, const struct fbx_web_who *who,
    struct fbx_console_req *req, size_t n, struct fbx_console_rep *rep,
    int timeout_ms)
{
	struct zio *z = (struct zio *)g;
	size_t pending = 0;
	int64_t deadline;
	int zero = 0;
	void *s;

	if (z == NULL || who == NULL || n == 0 || n > FBX_WEB_CALL_MAX)
		return FBX_EINVAL;
	if (atomic_load(&z->web_closed))
		return FBX_EUNREACHABLE;
	for (size_t i = 0; i < n; i++) {
		memset(&rep[i], 0, sizeof(rep[i]));
		rep[i].kind = req[i].kind;
		rep[i].err = FBX_ETIMEOUT;
		snprintf(rep[i].errmsg, sizeof(rep[i].errmsg),
		    "no answer from the engine within %d ms", timeout_ms);
	}
	s = zmq_socket(z->ctx, ZMQ_DEALER);
	if (s == NULL)
		return FBX_EUNREACHABLE;
	if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_connect(s, WEB_EP) != 0) {
		zmq_close(s);
		return FBX_EUNREACHABLE;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		int rc;
		req[i].version = FBX_PROTOCOL_VERSION;
		req[i].request_id = i + 1;
		snprintf(req[i].actor, sizeof(req[i].actor), "%s",
		    who->principal);
		rc = fbx_console_req_encode(&req[i], &buf, &len);
		if (rc == FBX_OK &&
		    (zmq_send(s, who->principal, strlen(who->principal),
		         ZMQ_SNDMORE) < 0 ||
		        zmq_send(s, who->key, 40, ZMQ_SNDMORE) < 0 ||
		        zmq_send(s, buf, len, 0) < 0))
			rc = FBX_EIO;
		free(buf);
		if (rc != FBX_OK) {
			rep[i].err = rc;
			snprintf(rep[i].errmsg, sizeof(rep[i].errmsg),
			    "request not sent: %s", fbx_strerror(rc));
			continue;
		}
		rep[i].request_id = 0; /* 0 = waiting for its answer */
		pending++;
	}
	deadline = mono_ms() + timeout_ms;
	while (pending > 0) {
		zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
		struct fbx_console_rep tmp;
		int64_t left = deadline - mono_ms();
		zmq_msg_t msg;
		int rc;
		if (left <= 0 || atomic_load(&z->web_closed))
			break;
		/* in slices: the daemon may stop meanwhile */
		rc = zmq_poll(&it, 1, (long)(left < 100 ? left : 100));
		if (rc < 0 && errno != EINTR)
			break;
		if (rc <= 0)
			continue;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, s, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			continue;
		}
		rc = fbx_console_rep_decode(
		    zmq_msg_data(&msg), zmq_msg_size(&msg), &tmp);
		zmq_msg_close(&msg);
		if (rc != FBX_OK)
			continue;
		if (tmp.request_id >= 1 && tmp.request_id <= n &&
		    rep[tmp.request_id - 1].request_id == 0 &&
		    rep[tmp.request_id - 1].err == FBX_ETIMEOUT) {
			rep[tmp.request_id - 1] = tmp;
			pending--;
		} else {
			fbx_console_rep_free(&tmp);
		}
	}
	for (size_t i = 0; i < n; i++)
		if (rep[i].err == FBX_ETIMEOUT && rep[i].request_id == 0)
			rep[i].request_id = i + 1;
	zmq_close(s);
	return FBX_OK;
}

void
fbx_webgate_close(fbx_webgate *g)
{
	struct zio *z = (struct zio *)g;

	if (z != NULL)
		atomic_store(&z->web_closed, 1);
}

static void
zio_close(void *io)
{
	struct zio *z = io;

	if (z == NULL)
		return;
	for (int i = 0; i < 3; i++) {
		if (z->sock[i] != NULL)
			zmq_close(z->sock[i]);
	}
	if (z->web != NULL)
		zmq_close(z->web);
	if (z->zap_running) {
		atomic_store(&z->zap_stop, 1);
		pthread_join(z->zap_thread, NULL);
	}
	if (z->ctx != NULL)
		zmq_ctx_term(z->ctx);
	memset(&z->server, 0, sizeof(z->server)); /* the secret key */
	free(z);
}

int
fbxi_io_zmq_open(
    const struct fbx_engine_opts *o, struct fbxi_auth *auth, void **io)
{
	struct zio *z = calloc(1, sizeof(*z));
	char path[4200], why[512] = "";
	int rc;

	if (z == NULL)
		return FBX_ENOMEM;
	z->auth = auth;
	if (o->server_key != NULL && o->server_key[0] != '\0')
		snprintf(path, sizeof(path), "%s", o->server_key);
	else
		snprintf(path, sizeof(path), "%s/keys/server.key", o->data_dir);
	rc = fbx_key_read(path, 1, &z->server, why, sizeof(why));
	if (rc != FBX_OK) {
		FBX_LOGE("%s%s", why,
		    rc == FBX_ENOT_FOUND
		        ? " (run `fuseboxd init --data DIR` to create the "
		          "server and admin keys)"
		        : "");
		rc = FBX_ECONFIG;
		goto fail;
	}
	z->ctx = zmq_ctx_new();
	if (z->ctx == NULL) {
		rc = FBX_ENOMEM;
		goto fail;
	}
	rc = zap_start(z);
	if (rc != FBX_OK)
		goto fail;
	rc = router(z, o->console_ep, 0, &z->sock[FBX_IO_CONSOLE]);
	if (rc == FBX_OK)
		rc = router(z, o->gateway_ep, 1, &z->sock[FBX_IO_GATEWAY]);
	if (rc == FBX_OK)
		rc = web_bind(z);
	if (rc != FBX_OK)
		goto fail;
	if (o->events_ep != NULL && o->events_ep[0] != '\0') {
		size_t len = sizeof(z->events_ep);
		if (strlen(o->events_ep) >= sizeof(z->events_ep)) {
			FBX_LOGE("events endpoint too long: %s", o->events_ep);
			rc = FBX_EINVAL;
			goto fail;
		}
		rc = events_bind(z, o->events_ep, &z->sock[FBX_IO_EVENTS]);
		if (rc != FBX_OK)
			goto fail;
		/* "tcp://127.0.0.1:0" becomes the port it got */
		if (zmq_getsockopt(z->sock[FBX_IO_EVENTS], ZMQ_LAST_ENDPOINT,
		        z->events_ep, &len) != 0)
			snprintf(z->events_ep, sizeof(z->events_ep), "%s",
			    o->events_ep);
	}
	*io = z;
	return FBX_OK;
fail:
	zio_close(z);
	return rc;
}

/* sock_recv - one message of chan's own socket. @return as zio_recv. */
static int
sock_recv(struct zio *z, int chan, struct fbx_io_msg *m, size_t *dropped)
{
	void *s = z->sock[chan];
	zmq_msg_t *body, part;
	int first = 1, bad = 0;

	if (s == NULL)
		return 0;
	body = malloc(sizeof(*body));
	if (body == NULL)
		return -2; /* left at the socket: not "drained" */
	zmq_msg_init(body);
	m->chan = chan;
	m->nenv = 0;
	for (;;) {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, s, first ? ZMQ_DONTWAIT : 0) < 0) {
			zmq_msg_close(&part);
			if (first) {
				zmq_msg_close(body);
				free(body);
				return 0;
			}
			bad = 1;
			break;
		}
		first = 0;
		if (!zmq_msg_more(&part)) {
			zmq_msg_move(body, &part);
			zmq_msg_close(&part);
			break;
		}
		if (m->nenv < FBX_IO_ENV_MAX &&
		    zmq_msg_size(&part) <= FBX_IO_RID_MAX) {
			m->envlen[m->nenv] = zmq_msg_size(&part);
			memcpy(m->env[m->nenv], zmq_msg_data(&part),
			    zmq_msg_size(&part));
			m->nenv++;
		} else {
			bad = 1;
		}
		zmq_msg_close(&part);
	}
	/* the web requests' mark is the engine's own: a console client
	 * that connected under it as its routing id (ZeroMQ lets a peer
	 * choose one beginning with a zero byte) would have its replies
	 * sent to the web socket's peers */
	if (!bad && chan == FBX_IO_CONSOLE && m->nenv >= 1 &&
	    m->envlen[0] == sizeof(web_mark) &&
	    memcmp(m->env[0], web_mark, sizeof(web_mark)) == 0)
		bad = 1;
	if (bad) {
		*dropped = zmq_msg_size(body) + FBX_IO_RID_MAX;
		zmq_msg_close(body);
		free(body);
		return -1;
	}
	m->body = zmq_msg_data(body);
	m->len = zmq_msg_size(body);
	m->priv = body;
	/* who sent it: what the ZAP handler said at the handshake, carried
	 * by every frame that came from the connection */
	m->user[0] = '\0';
	m->key[0] = '\0';
	{
		const char *u = zmq_msg_gets(body, "User-Id");
		const char *k = zmq_msg_gets(body, "Fbx-Key");
		if (u != NULL && strlen(u) < sizeof(m->user) && k != NULL &&
		    strlen(k) == 40) {
			memcpy(m->user, u, strlen(u) + 1);
			memcpy(m->key, k, 41);
		}
	}
	return 1;
}

/* zio_recv - the console channel is the CURVE console socket first,
 * then at most WEB_PER_TURN web requests (finding 5): fuseboxctl, the
 * way breakers are tripped by hand, is never behind a busy page. A
 * "turn" of the channel ends when it answers 0 or at zio_wait; web
 * requests beyond it wait at their socket (which wakes zio_wait). */
static int
zio_recv(void *io, int chan, struct fbx_io_msg *m, size_t *dropped)
{
	struct zio *z = io;
	int r;

	if (chan != FBX_IO_CONSOLE || z->web == NULL)
		return sock_recv(z, chan, m, dropped);
	if (!z->con_drained) {
		r = sock_recv(z, chan, m, dropped);
		if (r != 0)
			return r;
		z->con_drained = 1;
	}
	if (z->web_taken < WEB_PER_TURN) {
		r = web_recv(z, m, dropped);
		if (r != 0) {
			z->web_taken += r != -2;
			return r;
		}
	}
	z->con_drained = 0; /* the next call begins the next turn's */
	z->web_taken = 0;
	return 0;
}

static void
zio_release(void *io, struct fbx_io_msg *m)
{
	(void)io;
	if (m->priv != NULL) {
		zmq_msg_close(m->priv);
		free(m->priv);
	}
	m->priv = NULL;
	m->body = NULL;
	m->len = 0;
}

static int
zio_send(void *io, int chan, int nenv, const size_t *envlen,
    const uint8_t (*env)[FBX_IO_RID_MAX], const void *body, size_t len)
{
	struct zio *z = io;
	void *s = z->sock[chan];
	int rc = 0;

	if (chan == FBX_IO_CONSOLE && web_env(nenv, envlen, env)) {
		/* a reply to the web console: its own socket, without the
		 * mark */
		s = z->web;
		nenv--;
		envlen++;
		env++;
	}
	if (s == NULL)
		return FBX_OK; /* no event endpoint: nobody listens */
	for (int i = 0; i < nenv && rc >= 0; i++)
		rc = zmq_send(s, env[i], envlen[i], ZMQ_SNDMORE | ZMQ_DONTWAIT);
	if (rc >= 0)
		rc = zmq_send(s, body, len, ZMQ_DONTWAIT);
	if (rc >= 0)
		return FBX_OK;
	if (errno == EAGAIN)
		return FBX_EBUSY;
	if (errno == EHOSTUNREACH)
		return FBX_EUNREACHABLE;
	return FBX_EIO;
}

/* sub_set - (un)subscribe the pipe of the last subscription read. */
static void
sub_set(void *s, int on, const char *topic, size_t len)
{
	if (zmq_setsockopt(s, on ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic,
	        len) != 0)
		FBX_LOGW("events: cannot %ssubscribe: %s", on ? "" : "un",
		    zmq_strerror(errno));
}

/* sub_scoped - what prefix p of a subscriber scoped to some
 * organisations becomes: every topic "fusebox.<kind>/<org>/" of an
 * organisation in its scope (and of "*", the global breakers) that p is
 * a prefix of, or p itself when it names one of those topics or a
 * narrower prefix. Topics are prefixes, so "fusebox." subscribes to
 * every kind of the principal's organisations and nothing else. */
static void
sub_scoped(void *s, int on, const struct fbxi_principal *p,
    const char *pre, size_t plen)
{
	char topic[RID_MAX];

	for (int k = 1; k < FBX_EV_COUNT; k++) {
		for (size_t i = 0; i <= p->norgs; i++) {
			const char *org = i < p->norgs ? p->orgs[i] : "*";
			int n = snprintf(topic, sizeof(topic), "fusebox.%s/%s/",
			    fbx_event_kind_name(k), org);
			if (n <= 0 || (size_t)n >= sizeof(topic))
				continue;
			if (plen <= (size_t)n && memcmp(topic, pre, plen) == 0)
				sub_set(s, on, topic, (size_t)n);
			else if (plen > (size_t)n &&
			    memcmp(topic, pre, (size_t)n) == 0)
				sub_set(s, on, pre, plen);
		}
	}
}

/* events_subs - read the subscriptions waiting at the events socket and
 * apply each as its subscriber's key allows: a principal for every
 * organisation gets what it asked, one scoped to some organisations
 * only their topics, anyone else (a gateway key, no viewer role, a key
 * revoked since its handshake) nothing. */
static void
events_subs(struct zio *z)
{
	void *s = z->sock[FBX_IO_EVENTS];

	for (int i = 0; s != NULL && i < 1024; i++) {
		const struct fbxi_principal *p;
		const char *user, *key;
		zmq_msg_t m;
		const uint8_t *d;
		size_t len;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		d = zmq_msg_data(&m);
		len = zmq_msg_size(&m);
		user = zmq_msg_gets(&m, "User-Id");
		key = zmq_msg_gets(&m, "Fbx-Key");
		p = user != NULL ? fbxi_auth_find(z->auth, user) : NULL;
		if (len == 0 || (d[0] != 0 && d[0] != 1) || p == NULL ||
		    p->revoked || key == NULL || strcmp(p->key, key) != 0 ||
		    p->kind == FBX_PK_GATEWAY ||
		    (p->roles & FBX_ROLE_VIEWER) == 0) {
			if (len > 0 && d[0] == 1)
				FBX_LOGW("events: subscription of %s refused",
				    user != NULL ? user : "(none)");
		} else if (p->all_orgs) {
			sub_set(s, d[0], (const char *)d + 1, len - 1);
		} else {
			sub_scoped(s, d[0], p, (const char *)d + 1, len - 1);
		}
		zmq_msg_close(&m);
	}
}

static int
zio_wait(void *io, int timeout_ms, int wake_fd)
{
	struct zio *z = io;
	zmq_pollitem_t items[5] = {
		{ z->sock[FBX_IO_CONSOLE], 0, ZMQ_POLLIN, 0 },
		{ z->sock[FBX_IO_GATEWAY], 0, ZMQ_POLLIN, 0 },
		{ z->sock[FBX_IO_EVENTS], 0, ZMQ_POLLIN, 0 },
		{ NULL, 0, ZMQ_POLLIN, 0 },
		{ NULL, 0, ZMQ_POLLIN, 0 },
	};
	int n;

	if (z->sock[FBX_IO_EVENTS] == NULL && z->events_ep[0] != '\0' &&
	    mono_ms() >= z->events_retry_ms) {
		z->events_retry_ms = mono_ms() + 100;
		if (events_bind_(z, z->events_ep, &items[2].socket, 1) ==
		    FBX_OK) {
			z->sock[FBX_IO_EVENTS] = items[2].socket;
			z->events_down_ms = 0;
			FBX_LOGI("events: %s bound again", z->events_ep);
		} else if (!z->events_down_said && z->events_down_ms != 0 &&
		    mono_ms() - z->events_down_ms >= 5000) {
			/* a tcp port is free again within a moment; one
			 * still taken after 5 s is someone else's */
			z->events_down_said = 1;
			FBX_LOGE("cannot bind events %s again for 5 s: %s "
			         "(still trying every 100 ms)",
			    z->events_ep, zmq_strerror(errno));
		}
	}
	n = z->sock[FBX_IO_EVENTS] != NULL ? 3 : 2;
	/* subscriptions are handled here, between turns: the loop thread
	 * owns the principals' table it reads them with */
	events_subs(z);
	z->con_drained = 0; /* a turn follows: zio_recv begins it afresh */
	z->web_taken = 0;
	if (z->web != NULL) /* the web console's requests wake the loop */
		items[n++].socket = z->web;
	if (wake_fd >= 0) /* the syncer: held outputs may leave */
		items[n++].fd = wake_fd;
	if (zmq_poll(items, n, timeout_ms) < 0 && errno != EINTR) {
		FBX_LOGE("poll: %s", zmq_strerror(errno));
		return -1;
	}
	/* items[2] is the events socket when there is one (else the web
	 * console's) */
	if (z->sock[FBX_IO_EVENTS] != NULL && (items[2].revents & ZMQ_POLLIN))
		events_subs(z);
	return 0;
}

const struct fbx_io_ops fbxi_io_zmq_ops = {
	zio_recv,
	zio_release,
	zio_send,
	zio_wait,
	zio_close,
	zio_events_reset,
};
