/*
 * io_zmq.c: the engine's ZeroMQ transport. Console and gateway are ROUTER
 * sockets (the gateway one with ZMQ_ROUTER_MANDATORY, so a send to a peer
 * that is gone fails instead of vanishing), events a PUB socket. Every
 * socket has LINGER 0, a send high-water mark and a message size cap; a
 * send never blocks. Delivery guarantees come from the engine's own ACKs
 * and journal, never from these sockets.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "engine_int.h"
#include "io_zmq.h"

struct zio {
	void *ctx;
	void *sock[3]; /* by enum fbx_io_chan; events may be NULL */
};

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
	if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
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
	*out = s;
	return FBX_OK;
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
	if (z->ctx != NULL)
		zmq_ctx_term(z->ctx);
	free(z);
}

int
fbxi_io_zmq_open(const struct fbx_engine_opts *o, void **io)
{
	struct zio *z = calloc(1, sizeof(*z));
	int rc;

	if (z == NULL)
		return FBX_ENOMEM;
	z->ctx = zmq_ctx_new();
	if (z->ctx == NULL) {
		rc = FBX_ENOMEM;
		goto fail;
	}
	rc = router(z, o->console_ep, 0, &z->sock[FBX_IO_CONSOLE]);
	if (rc == FBX_OK)
		rc = router(z, o->gateway_ep, 1, &z->sock[FBX_IO_GATEWAY]);
	if (rc != FBX_OK)
		goto fail;
	if (o->events_ep != NULL && o->events_ep[0] != '\0') {
		int zero = 0;
		void *s = zmq_socket(z->ctx, ZMQ_PUB);
		z->sock[FBX_IO_EVENTS] = s;
		if (s == NULL ||
		    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
		    zmq_bind(s, o->events_ep) != 0) {
			FBX_LOGE("cannot bind events %s: %s", o->events_ep,
			    zmq_strerror(errno));
			rc = FBX_EUNREACHABLE;
			goto fail;
		}
	}
	*io = z;
	return FBX_OK;
fail:
	zio_close(z);
	return rc;
}

static int
zio_recv(void *io, int chan, struct fbx_io_msg *m, size_t *dropped)
{
	struct zio *z = io;
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
	if (bad) {
		*dropped = zmq_msg_size(body) + FBX_IO_RID_MAX;
		zmq_msg_close(body);
		free(body);
		return -1;
	}
	m->body = zmq_msg_data(body);
	m->len = zmq_msg_size(body);
	m->priv = body;
	return 1;
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

static int
zio_wait(void *io, int timeout_ms)
{
	struct zio *z = io;
	zmq_pollitem_t items[2] = {
		{ z->sock[FBX_IO_CONSOLE], 0, ZMQ_POLLIN, 0 },
		{ z->sock[FBX_IO_GATEWAY], 0, ZMQ_POLLIN, 0 },
	};

	if (zmq_poll(items, 2, timeout_ms) < 0 && errno != EINTR) {
		FBX_LOGE("poll: %s", zmq_strerror(errno));
		return -1;
	}
	return 0;
}

const struct fbx_io_ops fbxi_io_zmq_ops = {
	zio_recv,
	zio_release,
	zio_send,
	zio_wait,
	zio_close,
};
