/*
 * storm.c: storm mode: the broken attestation rule of incident 1, which
 * submits one automatic lock per device, thousands a second, pipelined on
 * its own console socket, and counts what the engine answered per
 * organisation.
 */
#include "sim.h"

/* ------------------------------------------------------------------ */
/* storm: the broken attestation rule of incident 1 */


/* sim_storm_plan - choose the devices: a share F in org-001, the rest round
 * robin over the other organisations, each device at most once, then a
 * deterministic shuffle so every organisation is hit all through the
 * storm. */
int
sim_storm_plan(struct sim *s)
{
	struct storm *st = &s->storm;
	uint32_t n = s->o.storm_n, m = s->o.norgs, n1, k = 0;
	uint32_t *cur = NULL;
	int rc = FBX_ENOMEM;

	if (n > s->o.ndev) {
		sim_logm("storm: %" PRIu32 " commands for %" PRIu32
		     " devices: one per device, %" PRIu32 " commands",
		    n, s->o.ndev, s->o.ndev);
		n = s->o.ndev;
	}
	st->dev = malloc((size_t)n * sizeof(uint32_t));
	cur = calloc(m, sizeof(uint32_t));
	st->so = calloc(m, sizeof(*st->so));
	st->slots = calloc(s->o.storm_inflight, sizeof(*st->slots));
	st->org_node = calloc(m, 1);
	if (st->dev == NULL || cur == NULL || st->so == NULL ||
	    st->slots == NULL || st->org_node == NULL)
		goto out;
	n1 = m > 1 ? (uint32_t)llround(s->o.storm_skew * n) : n;
	if (n1 > s->org_count[0])
		n1 = s->org_count[0];
	for (; k < n1; k++)
		st->dev[k] = s->org_start[0] + cur[0]++;
	for (uint32_t o = 1; k < n && m > 1;) {
		uint32_t tried = 0;
		while (cur[o] >= s->org_count[o] && tried < m - 1) {
			o = o + 1 < m ? o + 1 : 1;
			tried++;
		}
		if (cur[o] >= s->org_count[o])
			break; /* the other organisations are used up */
		st->dev[k++] = s->org_start[o] + cur[o]++;
		o = o + 1 < m ? o + 1 : 1;
	}
	while (k < n && cur[0] < s->org_count[0])
		st->dev[k++] = s->org_start[0] + cur[0]++;
	st->n = k;
	st->finished = k == 0;
	for (uint32_t i = st->n; i > 1; i--) {
		uint32_t j = (uint32_t)(h3(s->o.seed, i, 7) % i), t;
		t = st->dev[i - 1];
		st->dev[i - 1] = st->dev[j];
		st->dev[j] = t;
	}
	st->next_req = 1;
	rc = FBX_OK;
out:
	free(cur);
	return rc;
}

/* sim_sock_curve - make sock a CURVE client with the key found from given,
 * the environment variable env or ~/.config/fusebox/defname, towards
 * the server key of o. Writes the key's principal to name (may be NULL).
 * @return FBX_OK or FBX_ECONFIG (logged). */
int
sim_sock_curve(void *sock, const struct opts *o, const char *given,
    const char *env, const char *defname, char *name)
{
	char path[4096], spath[4096], why[600] = "";
	struct fbx_key k, sk;
	int rc;

	if (given == NULL && strcmp(env, "FUSEBOX_KEY") != 0 &&
	    (getenv(env) == NULL || getenv(env)[0] == '\0')) {
		/* fall back on the console key */
		given = o->key;
		env = "FUSEBOX_KEY";
		defname = "client.key";
	}
	if (fbx_key_locate(given, env, defname, path, sizeof(path)) !=
	        FBX_OK ||
	    fbx_key_locate(o->server_key, "FUSEBOX_SERVER_KEY", "server.pub",
	        spath, sizeof(spath)) != FBX_OK) {
		sim_logm("no key: give the key flags or set %s", env);
		return FBX_ECONFIG;
	}
	rc = fbx_key_read(path, 1, &k, why, sizeof(why));
	if (rc == FBX_OK)
		rc = fbx_key_read(spath, 0, &sk, why, sizeof(why));
	if (rc != FBX_OK) {
		sim_logm("%s", why);
		return FBX_ECONFIG;
	}
	if (name != NULL)
		snprintf(name, FBX_ID_MAX + 1, "%s", k.name);
	rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, sk.public_z85, 41) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k.public_z85, 41) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k.secret_z85, 41);
	memset(&k, 0, sizeof(k));
	if (rc != 0) {
		sim_logm("libzmq refused the CURVE keys: %s", zmq_strerror(errno));
		return FBX_ECONFIG;
	}
	return FBX_OK;
}

/* storm_node - the index of the storm's socket to console endpoint ep,
 * connected on first use (a MOVED answer names the owner's advertised
 * endpoint). @return the index, or -1 (logged) when it cannot be made
 * or SIM_STORM_NODES are in use. */
static int
storm_node(struct sim *s, const char *ep)
{
	struct storm *st = &s->storm;
	int linger = 0, hwm = 100000;
	int64_t maxmsg = FBX_CONSOLE_MSG_MAX + 64 * 1024;
	void *sock;

	for (size_t i = 0; i < st->nsocks; i++)
		if (strcmp(st->eps[i], ep) == 0)
			return (int)i;
	if (st->nsocks == SIM_STORM_NODES || strlen(ep) >= sizeof(st->eps[0])) {
		sim_logm("storm: cannot follow MOVED to %s: %zu endpoints in use",
		    ep, st->nsocks);
		return -1;
	}
	sock = zmq_socket(st->ctx, ZMQ_DEALER);
	if (sock == NULL)
		return -1;
	if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    /* automatic commands: an automation principal's key */
	    sim_sock_curve(sock, &s->o, s->o.storm_key, "FUSEBOX_STORM_KEY",
	        "storm.key", s->o.storm_actor) != FBX_OK) {
		zmq_close(sock);
		return -1;
	}
	if (zmq_connect(sock, ep) != 0) {
		sim_logm("storm: cannot connect %s: %s", ep,
		    zmq_strerror(errno));
		zmq_close(sock);
		return -1;
	}
	snprintf(st->eps[st->nsocks], sizeof(st->eps[0]), "%s", ep);
	st->socks[st->nsocks] = sock;
	return (int)st->nsocks++;
}

int
sim_storm_open(struct sim *s, void *ctx)
{
	struct storm *st = &s->storm;

	st->ctx = ctx;
	if (storm_node(s, s->o.console_ep) != 0)
		return FBX_EIO;
	st->sock = st->socks[0];
	return FBX_OK;
}

/* sim_storm_close - close the storm's sockets. */
void
sim_storm_close(struct sim *s)
{
	struct storm *st = &s->storm;

	for (size_t i = 0; i < st->nsocks; i++)
		zmq_close(st->socks[i]);
	st->nsocks = 0;
	st->sock = NULL;
	free(st->org_node);
	st->org_node = NULL;
}

/* storm_send - send (or resend) command idx in slot sl under a fresh
 * request id; the idempotency key makes a resend harmless. @return
 * FBX_OK, or FBX_EBUSY when the socket takes nothing now. */
static int
storm_send(struct sim *s, struct storm_slot *sl, int64_t now)
{
	struct storm *st = &s->storm;
	struct fbx_console_req req;
	struct fbx_command *c = &req.u.submit.cmd;
	char ids[1][FBX_ID_MAX + 1];
	uint32_t g = st->dev[sl->idx], o = dev_org(s, g);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(&req, 0, sizeof(req));
	req.version = FBX_PROTOCOL_VERSION;
	req.request_id = st->next_req++;
	req.kind = FBX_CREQ_SUBMIT;
	sim_org_name(o, req.org, sizeof(req.org));
	snprintf(req.actor, sizeof(req.actor), "%s",
	    s->o.storm_actor[0] ? s->o.storm_actor : SIM_STORM_ACTOR);
	sim_dev_name(s, g, o, ids[0], sizeof(ids[0]));
	c->type = (uint8_t)s->o.storm_type;
	c->origin = FBX_ORIGIN_AUTOMATIC;
	c->target_kind = FBX_TARGET_DEVICES;
	snprintf(c->reason, sizeof(c->reason), "%s", s->o.storm_reason);
	snprintf(c->idem_key, sizeof(c->idem_key), "storm-%" PRIu64 "-%" PRIu32,
	    s->o.seed, sl->idx);
	c->dev_ids = ids;
	c->ndev_ids = 1;
	rc = fbx_console_req_encode(&req, &buf, &len);
	if (rc != FBX_OK) {
		sim_logm("storm: cannot encode command %" PRIu32 ": %s", sl->idx,
		    fbx_strerror(rc));
		return rc;
	}
	sl->node = st->org_node[o];
	if (zmq_send(st->socks[sl->node], "", 0,
	        ZMQ_SNDMORE | ZMQ_DONTWAIT) != 0) {
		free(buf);
		return FBX_EBUSY;
	}
	/* a multipart message is atomic: the body follows the envelope */
	if (zmq_send(st->socks[sl->node], buf, len, 0) < 0) {
		free(buf);
		return FBX_EIO;
	}
	free(buf);
	sl->req_id = req.request_id;
	sl->due_ms = now + SIM_STORM_TIMEOUT_MS;
	sl->tries++;
	return FBX_OK;
}

static void
storm_settle(struct sim *s, size_t i)
{
	struct storm *st = &s->storm;

	st->slots[i] = st->slots[--st->nslots];
	st->done++;
}

static void
storm_refuse(struct sim *s, size_t i, int err)
{
	struct storm *st = &s->storm;
	struct storm_org *so = &st->so[dev_org(s, st->dev[st->slots[i].idx])];

	so->refused++;
	so->by_code[err >= 0 && err < 64 ? err : 63]++;
	storm_settle(s, i);
}

static void
storm_on_reply(struct sim *s, const void *buf, size_t len, int64_t now)
{
	struct storm *st = &s->storm;
	struct fbx_console_rep rep;
	struct storm_org *so;
	size_t i;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = fbx_console_rep_decode(buf, len, &rep);
	if (rc != FBX_OK) {
		s->t.errors++;
		sim_logm("storm: undecodable reply (%zu bytes): %s", len,
		    fbx_errname(rc));
		return;
	}
	for (i = 0; i < st->nslots; i++)
		if (st->slots[i].req_id == rep.request_id)
			break;
	if (i == st->nslots)
		goto out; /* the reply to a request re-sent since */
	so = &st->so[dev_org(s, st->dev[st->slots[i].idx])];
	switch (rep.err) {
	case FBX_OK:
		if (rep.u.submit.duplicate)
			st->duplicates++;
		if (rep.u.submit.state == FBX_C_HELD ||
		    rep.u.submit.state == FBX_C_DISCARDED)
			so->held++;
		else
			so->admitted++;
		storm_settle(s, i);
		break;
	case FBX_EBUSY:
	case FBX_ESHUTTING_DOWN:
	case FBX_ETIMEOUT:
		/* the engine asks for a retry: same key, a little later */
		st->slots[i].due_ms = now + SIM_STORM_BUSY_MS;
		st->slots[i].req_id = 0;
		break;
	case FBX_EMOVED: {
		/* another node owns the organisation: its commands go there
		 * from now on, this one at once (same key: if a node stored
		 * it before, the owner answers it as a duplicate) */
		uint32_t o = dev_org(s, st->dev[st->slots[i].idx]);
		int k = rep.owner_endpoint[0] != '\0'
		    ? storm_node(s, rep.owner_endpoint)
		    : -1;
		if (k < 0 || (uint8_t)k == st->slots[i].node) {
			storm_refuse(s, i, rep.err);
			break;
		}
		st->org_node[o] = (uint8_t)k;
		st->moved++;
		st->slots[i].due_ms = now;
		st->slots[i].req_id = 0;
		break;
	}
	default:
		storm_refuse(s, i, rep.err);
	}
out:
	fbx_console_rep_free(&rep);
}

/* storm_recv_one - drain the replies waiting on one storm socket. */
static void
storm_recv_one(struct sim *s, void *sock, int64_t now)
{
	for (int k = 0; k < 4096; k++) {
		zmq_msg_t part, body;
		int nparts = 0, more, have = 0;

		zmq_msg_init(&body);
		do {
			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, sock, nparts ? 0
			                                     : ZMQ_DONTWAIT) < 0) {
				zmq_msg_close(&part);
				zmq_msg_close(&body);
				return;
			}
			more = zmq_msg_more(&part);
			nparts++;
			if (zmq_msg_size(&part) > 0 && !have) {
				zmq_msg_move(&body, &part);
				have = 1;
			}
			zmq_msg_close(&part);
		} while (more);
		if (have)
			storm_on_reply(s, zmq_msg_data(&body),
			    zmq_msg_size(&body), now);
		zmq_msg_close(&body);
	}
}

/* sim_storm_recv - drain the replies waiting on the storm's sockets (the
 * loop polls the first; the others are read at each pass). */
void
sim_storm_recv(struct sim *s, int64_t now)
{
	struct storm *st = &s->storm;

	for (size_t i = 0; i < st->nsocks; i++)
		storm_recv_one(s, st->socks[i], now);
}

/* sim_storm_pump - send what the pacing allows, resend what timed out or was
 * refused as busy. Evenly paced: by t ms into a storm of S s, about
 * N * t / S commands are out. */
void
sim_storm_pump(struct sim *s, int64_t now)
{
	struct storm *st = &s->storm;
	uint64_t target;

	if (st->finished || st->n == 0)
		return;
	if (!st->started) {
		st->started = 1;
		st->start_ms = now;
		if (!s->o.quiet)
			sim_logm("storm: %" PRIu32 " automatic %s commands "
			     "(reason %s) over %" PRIu32 " s",
			    st->n, fbx_cmd_type_name(s->o.storm_type),
			    s->o.storm_reason, s->o.storm_s);
	}
	for (size_t i = 0; i < st->nslots; i++) {
		struct storm_slot *sl = &st->slots[i];
		if (sl->due_ms > now)
			continue;
		if (sl->tries >= SIM_STORM_TRIES) {
			st->timeouts++;
			storm_refuse(s, i, FBX_ETIMEOUT);
			i--;
			continue;
		}
		if (sl->req_id != 0 && st->nsocks > 1) {
			/* no answer in time: the node may be dead; the next
			 * one answers, or says who owns the organisation now */
			uint32_t o = dev_org(s, st->dev[sl->idx]);
			st->org_node[o] =
			    (uint8_t)((sl->node + 1) % st->nsocks);
		}
		if (storm_send(s, sl, now) != FBX_OK)
			return;
		st->retries++;
	}
	if (s->o.storm_s == 0)
		target = st->n;
	else
		target = (uint64_t)st->n * (uint64_t)(now - st->start_ms) /
		        ((uint64_t)s->o.storm_s * 1000) +
		    1;
	if (target > st->n)
		target = st->n;
	while (st->next < target && st->nslots < s->o.storm_inflight) {
		struct storm_slot *sl = &st->slots[st->nslots];
		memset(sl, 0, sizeof(*sl));
		sl->idx = st->next;
		if (storm_send(s, sl, now) != FBX_OK)
			break;
		st->nslots++;
		st->so[dev_org(s, st->dev[sl->idx])].submitted++;
		st->next++;
	}
	if (st->done == st->n) {
		st->finished = 1;
		st->end_ms = now;
		if (!s->o.quiet)
			sim_logm("storm: done in %.1f s", (now - st->start_ms) /
			        1000.0);
		if (!s->o.storm_only)
			sim_storm_report_lines(s, stderr);
		sim_save_report(s);
	}
}

/* sim_storm_wait_ms - how soon the storm needs the loop again. */
long
sim_storm_wait_ms(const struct sim *s)
{
	const struct storm *st = &s->storm;

	if (st->n == 0 || st->finished)
		return 50;
	if (st->next < st->n && st->nslots < s->o.storm_inflight)
		return 1;
	return 5;
}

/* sim_storm_only_loop - the storm without a gateway: submit, then exit. */
int
sim_storm_only_loop(struct sim *s)
{
	struct storm *st = &s->storm;
	int64_t next_stats = sim_mono_ms() + (int64_t)s->o.stats_s * 1000;

	while (!sim_stop && !st->finished) {
		zmq_pollitem_t it = { st->sock, 0, ZMQ_POLLIN, 0 };
		int64_t now;
		int n = zmq_poll(&it, 1, sim_storm_wait_ms(s));

		if (n < 0 && errno != EINTR) {
			sim_logm("poll: %s", zmq_strerror(errno));
			return FBX_EIO;
		}
		now = sim_mono_ms();
		if (n > 0 || st->nsocks > 1)
			sim_storm_recv(s, now);
		sim_storm_pump(s, now);
		/* progress while it runs: what the engine answered so far */
		if (s->o.stats_s > 0 && now >= next_stats && !st->finished) {
			uint64_t adm = 0, held = 0, ref = 0;
			for (uint32_t o = 0; o < s->o.norgs; o++) {
				adm += st->so[o].admitted;
				held += st->so[o].held;
				ref += st->so[o].refused;
			}
			sim_logm("storm: %" PRIu32 "/%" PRIu32 " answered: %" PRIu64
			     " admitted, %" PRIu64 " held, %" PRIu64 " refused",
			    st->done, st->n, adm, held, ref);
			next_stats = now + (int64_t)s->o.stats_s * 1000;
		}
	}
	return FBX_OK;
}
