/*
 * engine_fake.c: the engine in-process for tests: a fake transport
 * (queues in memory, fbx_engine_open_io), a fake clock, and helpers that
 * speak the console and gateway protocols turn by turn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fake.h"

int passed, failed;


/* ------------------------------------------------------- fake transport */



void
q_push(struct qmsg **q, const char *peer, const void *body, size_t len)
{
	struct qmsg *m = calloc(1, sizeof(*m)), **pp = q;

	snprintf(m->peer, sizeof(m->peer), "%s", peer);
	m->body = malloc(len > 0 ? len : 1);
	memcpy(m->body, body, len);
	m->len = len;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = m;
}

void
q_free(struct qmsg *m)
{
	if (m != NULL) {
		free(m->body);
		free(m);
	}
}

static int
mio_recv(void *io, int chan, struct fbx_io_msg *m, size_t *dropped)
{
	struct mio *x = io;
	struct qmsg *q = x->in[chan];

	(void)dropped;
	if (q == NULL)
		return 0;
	x->in[chan] = q->next;
	m->chan = chan;
	m->nenv = 1;
	m->envlen[0] = strlen(q->peer);
	memcpy(m->env[0], q->peer, m->envlen[0]);
	/* gw_keys: each gateway peer speaks with its own key, whose
	 * principal is the peer's name (else every peer's is "") */
	if (x->gw_keys && chan == FBX_IO_GATEWAY)
		snprintf(m->user, sizeof(m->user), "%.*s",
		    (int)sizeof(m->user) - 1, q->peer);
	m->body = q->body;
	m->len = q->len;
	m->priv = q;
	return 1;
}

static void
mio_release(void *io, struct fbx_io_msg *m)
{
	(void)io;
	q_free(m->priv);
	m->priv = NULL;
}

static int
mio_send(void *io, int chan, int nenv, const size_t *envlen,
    const uint8_t (*env)[FBX_IO_RID_MAX], const void *body, size_t len)
{
	struct mio *x = io;
	char peer[FBX_IO_RID_MAX + 1] = "";

	if (chan == FBX_IO_GATEWAY && x->gw_full)
		return FBX_EBUSY;
	if (nenv > 0) {
		memcpy(peer, env[0], envlen[0]);
		peer[envlen[0]] = '\0';
	}
	q_push(&x->out[chan], peer, body, len);
	return FBX_OK;
}

static int
mio_wait(void *io, int timeout_ms, int wake_fd)
{
	(void)io;
	(void)timeout_ms;
	(void)wake_fd;
	return 0;
}

static void
mio_close(void *io)
{
	struct mio *x = io;

	for (int c = 0; c < 3; c++) {
		while (x->in[c] != NULL) {
			struct qmsg *n = x->in[c]->next;
			q_free(x->in[c]);
			x->in[c] = n;
		}
		while (x->out[c] != NULL) {
			struct qmsg *n = x->out[c]->next;
			q_free(x->out[c]);
			x->out[c] = n;
		}
	}
}

static const struct fbx_io_ops mio_ops = {
	mio_recv, mio_release, mio_send, mio_wait, mio_close, NULL,
};

static int64_t
fake_clock(void *arg, int monotonic)
{
	struct mio *x = arg;

	return monotonic ? x->mono : x->wall;
}

/* ------------------------------------------------------------ helpers */


/* engine_open - the engine on t's store and fake transport and clock */
static int
engine_open(struct env *t)
{
	struct fbx_engine_opts o;

	memset(&o, 0, sizeof(o));
	o.data_dir = t->dir;
	o.heartbeat_ms = 100;
	o.clock = fake_clock;
	o.clock_arg = &t->io;
	o.auth_off = 1; /* the fake transport authenticates nobody */
	o.retention_s = t->retention_s;
	o.expand_chunk = t->expand_chunk;
	o.rollback_slice = t->rollback_slice;
	o.prune_budget = t->prune_budget;
	o.store_url = t->store[0] != '\0' ? t->store : NULL;
	return fbx_engine_open_io(&o, &mio_ops, &t->io, &t->e) == FBX_OK ? 0
	                                                                 : -1;
}

int
env_open(struct env *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/fbx-eng-%s-XXXXXX", name);
	if (mkdtemp(t->dir) == NULL)
		return -1;
	t->io.wall = 1700000000000;
	t->io.mono = 1000000;
	return engine_open(t);
}

int
env_open_pg(struct env *t, const char *name)
{
	const char *url = getenv("FBX_TEST_PG_URL");
	int len;

	memset(t, 0, sizeof(*t));
	if (url == NULL || url[0] == '\0')
		return -1;
	/* schema names: lower case letters, digits and '_' */
	for (const char *p = name; *p != '\0'; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= '0' && *p <= '9') &&
		    *p != '_')
			return -1;
	len = snprintf(t->store, sizeof(t->store),
	    "%s%soptions=-csearch_path%%3Dfbxe_%s_%ld", url,
	    strchr(url, '?') != NULL ? "&" : "?", name, (long)getpid());
	if (len < 0 || (size_t)len >= sizeof(t->store))
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/fbx-eng-%s-XXXXXX", name);
	if (mkdtemp(t->dir) == NULL)
		return -1;
	t->io.wall = 1700000000000;
	t->io.mono = 1000000;
	if (engine_open(t) == 0)
		return 0;
	(void)rmdir(t->dir); /* the engine wrote nothing there */
	return -1;
}

/* env_reopen - close the engine and open it again on the same store (a
 * clean restart: recovery runs); the fake clock goes on. */
int
env_reopen(struct env *t)
{
	fbx_engine_close(t->e);
	t->e = NULL;
	return engine_open(t);
}

void
env_close(struct env *t)
{
	char cmd[128];

	fbx_engine_close(t->e);
	t->e = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", t->dir);
}

void
advance(struct env *t, int64_t ms)
{
	t->io.wall += ms;
	t->io.mono += ms;
}

void
turn(struct env *t)
{
	CHECK(fbx_engine_turn(t->e) == FBX_OK, "turn");
}

/* console - queue a request from client `peer`. */
void
console(struct env *t, const char *peer, const char *org,
    struct fbx_console_req *req)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	req->version = FBX_PROTOCOL_VERSION;
	req->request_id = ++t->reqid;
	snprintf(req->org, sizeof(req->org), "%s", org);
	snprintf(req->actor, sizeof(req->actor), "tester");
	CHECK(fbx_console_req_encode(req, &buf, &len) == FBX_OK, "encode");
	q_push(&t->io.in[FBX_IO_CONSOLE], peer, buf, len);
	free(buf);
}

/* reply - the next reply to `peer`; @return its err, or -1 if none. */
int
reply(struct env *t, const char *peer, struct fbx_console_rep *rep)
{
	struct qmsg **pp = &t->io.out[FBX_IO_CONSOLE];

	memset(rep, 0, sizeof(*rep));
	for (; *pp != NULL; pp = &(*pp)->next) {
		struct qmsg *m = *pp;
		if (strcmp(m->peer, peer) != 0)
			continue;
		*pp = m->next;
		if (fbx_console_rep_decode(m->body, m->len, rep) != FBX_OK) {
			q_free(m);
			return -2;
		}
		q_free(m);
		return rep->err;
	}
	return -1;
}

void
gateway(struct env *t, const char *peer, struct fbx_gw_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	m->version = FBX_PROTOCOL_VERSION;
	CHECK(fbx_gw_msg_encode(m, &buf, &len) == FBX_OK, "gw encode");
	q_push(&t->io.in[FBX_IO_GATEWAY], peer, buf, len);
	free(buf);
}

void
hello(struct env *t, const char *peer, const char *org, uint32_t window)
{
	struct fbx_gw_msg m;
	fbx_id orgs[1];

	memset(&m, 0, sizeof(m));
	m.kind = FBX_GW_HELLO;
	snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id), "gw-%s",
	    peer);
	snprintf(orgs[0], sizeof(orgs[0]), "%s", org);
	m.u.hello.orgs = orgs;
	m.u.hello.norgs = 1;
	m.u.hello.window = window;
	gateway(t, peer, &m);
}

void
heartbeat(struct env *t, const char *peer)
{
	struct fbx_gw_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = FBX_GW_HEARTBEAT;
	gateway(t, peer, &m);
}

void
results(struct env *t, const char *peer, uint64_t batch, const uint64_t *ids,
    size_t n, int status)
{
	struct fbx_gw_msg m;
	struct fbx_result_rec *r = calloc(n > 0 ? n : 1, sizeof(*r));

	for (size_t i = 0; i < n; i++) {
		r[i].delivery_id = ids[i];
		r[i].status = (uint8_t)status;
	}
	memset(&m, 0, sizeof(m));
	m.kind = FBX_GW_RESULTS;
	m.u.results.batch_id = batch;
	m.u.results.r = r;
	m.u.results.n = n;
	gateway(t, peer, &m);
	free(r);
}


void
drain_gw(struct env *t, const char *peer, struct gw_seen *s)
{
	struct qmsg **pp = &t->io.out[FBX_IO_GATEWAY];

	while (*pp != NULL) {
		struct qmsg *q = *pp;
		struct fbx_eng_msg m;
		if (strcmp(q->peer, peer) != 0) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		if (fbx_eng_msg_decode(q->body, q->len, &m) == FBX_OK) {
			if (m.kind == FBX_ENG_DELIVERIES) {
				for (size_t i = 0; i < m.u.deliveries.n &&
				    s->nids < 20000;
				    i++) {
					s->urgent[s->nids] =
					    m.u.deliveries.urgent != 0;
					s->ids[s->nids++] =
					    m.u.deliveries.d[i].delivery_id;
				}
			} else if (m.kind == FBX_ENG_ACK &&
			    m.u.ack.batch_id != 0 && s->nacks < 64) {
				s->ack_batch[s->nacks] = m.u.ack.batch_id;
				s->ack_count[s->nacks++] = m.u.ack.count;
			} else if (m.kind == FBX_ENG_WELCOME) {
				s->welcomes++;
			} else if (m.kind == FBX_ENG_ERROR) {
				s->errors++;
				s->last_err = m.u.error.err;
			}
			fbx_eng_msg_free(&m);
		}
		q_free(q);
	}
}

void
enroll(struct env *t, const char *org, unsigned n)
{
	enroll_from(t, org, 0, n);
}

void
enroll_from(struct env *t, const char *org, unsigned first, unsigned n)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_device *d = calloc(n, sizeof(*d));

	for (unsigned i = 0; i < n; i++) {
		snprintf(d[i].id, sizeof(d[i].id), "%s-d%05u", org, first + i);
		d[i].platform = FBX_PLATFORM_ANDROID;
	}
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ENROLL;
	req.u.enroll.devs = d;
	req.u.enroll.n = n;
	console(t, "ops", org, &req);
	turn(t);
	CHECK(reply(t, "ops", &rep) == FBX_OK, "enroll %s", org);
	fbx_console_rep_free(&rep);
	free(d);
}

/* query_req - an operator's query to every device of the organisation. */
void
query_req(struct fbx_console_req *req)
{
	memset(req, 0, sizeof(*req));
	req->kind = FBX_CREQ_SUBMIT;
	req->u.submit.cmd.type = FBX_CMD_QUERY;
	req->u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req->u.submit.cmd.target_kind = FBX_TARGET_ORG;
}

/* submit_org - a query to every device of org; @return its id or 0. */
uint64_t
submit_org(struct env *t, const char *org)
{
	struct fbx_console_req req;
	uint64_t id;

	query_req(&req);
	id = submit_req(t, org, &req);
	CHECK(id != 0, "submit to %s", org);
	return id;
}

/* submit_req - the submit req by "ops" in org, one turn; @return the
 * command's id, 0 if it was refused */
uint64_t
submit_req(struct env *t, const char *org, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	uint64_t id = 0;

	console(t, "ops", org, req);
	turn(t);
	if (reply(t, "ops", &rep) == FBX_OK)
		id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	return id;
}

/* counts - a command's per-state counts; @return the get's err. */
int
counts(struct env *t, const char *org, uint64_t id, struct fbx_command *info)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_GET_COMMAND;
	req.u.get.command_id = id;
	console(t, "reader", org, &req);
	turn(t);
	rc = reply(t, "reader", &rep);
	memset(info, 0, sizeof(*info));
	if (rc == FBX_OK)
		*info = rep.u.command.info;
	fbx_console_rep_free(&rep);
	return rc;
}

/* rollout_req - a query to the organisation in waves of 2 devices, 1 s
 * bake, paused when half a wave's results fail. */
void
rollout_req(struct fbx_console_req *req)
{
	query_req(req);
	req->u.submit.cmd.rollout.enabled = 1;
	req->u.submit.cmd.rollout.first_count = 2;
	req->u.submit.cmd.rollout.growth_x100 = 100;
	req->u.submit.cmd.rollout.max_wave = 2;
	req->u.submit.cmd.rollout.bake_s = 1;
	req->u.submit.cmd.rollout.success_ppm = 500000;
	req->u.submit.cmd.rollout.failure_ppm = 500000;
	req->u.submit.cmd.rollout.min_results = 1;
}

/* rb_cmd - a rollback of command cid of acme, for devices of group
 * (NULL: every device), planned or executed; rep is the caller's. */
int
rb_cmd(struct env *t, uint64_t cid, const char *group, int execute,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;
	uint64_t ids[1];

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	ids[0] = cid;
	req.u.rollback.sel.command_ids = ids;
	req.u.rollback.sel.ncommand_ids = 1;
	if (group != NULL)
		snprintf(req.u.rollback.sel.group,
		    sizeof(req.u.rollback.sel.group), "%s", group);
	req.u.rollback.execute = execute;
	req.u.rollback.sliced = 1;
	req.u.rollback.limit = 1000;
	console(t, "ops", "acme", &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* offline_devices - how many of org's devices (up to 1000) are marked
 * offline */
unsigned
offline_devices(struct env *t, const char *org)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	unsigned n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.limit = 1000;
	console(t, "reader", org, &req);
	turn(t);
	if (reply(t, "reader", &rep) == FBX_OK)
		for (size_t i = 0; i < rep.u.devices.n; i++)
			n += rep.u.devices.devs[i].online == 0;
	fbx_console_rep_free(&rep);
	return n;
}

/* checkin_range - devices from..from+n-1 of org check in through
 * gateway peer */
void
checkin_range(struct env *t, const char *peer, const char *org,
    unsigned from, unsigned n)
{
	static uint64_t batch = 1000;
	struct fbx_checkin *c = calloc(n, sizeof(*c));
	struct fbx_gw_msg m;

	for (unsigned i = 0; i < n; i++) {
		snprintf(c[i].org, sizeof(c[i].org), "%s", org);
		snprintf(c[i].device, sizeof(c[i].device), "%s-d%05u", org,
		    from + i);
		c[i].at_ms = t->io.wall;
	}
	memset(&m, 0, sizeof(m));
	m.kind = FBX_GW_CHECKINS;
	m.u.checkins.batch_id = batch++;
	m.u.checkins.c = c;
	m.u.checkins.n = n;
	gateway(t, peer, &m);
	turn(t);
	free(c);
}

/* checkin_all - devices 0..n-1 of org check in through gateway peer */
void
checkin_all(struct env *t, const char *peer, const char *org, unsigned n)
{
	checkin_range(t, peer, org, 0, n);
}

struct kv_count {
	const char *prefix;
	int n;
};

static int
kv_count_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct kv_count *k = arg;

	(void)val;
	(void)len;
	k->n += strncmp(key, k->prefix, strlen(k->prefix)) == 0;
	return 0;
}

int
store_write(struct env *t, int (*fn)(fbx_txn *, void *), void *arg)
{
	struct fbx_store_opts so;
	fbx_store *st = NULL;
	fbx_txn *x = NULL;
	int rc;

	fbx_engine_close(t->e);
	t->e = NULL;
	memset(&so, 0, sizeof(so));
	so.path = t->dir;
	rc = fbx_store_open(&so, &st);
	if (rc == FBX_OK)
		rc = fbx_txn_begin(st, 1, &x);
	if (rc == FBX_OK)
		rc = fn(x, arg);
	if (rc == FBX_OK)
		rc = fbx_txn_commit(x);
	else if (x != NULL)
		fbx_txn_abort(x);
	if (st != NULL)
		fbx_store_close(st);
	if (env_reopen(t) != 0 && rc == FBX_OK)
		rc = FBX_EIO;
	return rc;
}

void
enroll_groups(struct env *t, const char *org, unsigned n)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_device *d = calloc(n, sizeof(*d));

	for (unsigned i = 0; i < n; i++) {
		snprintf(d[i].id, sizeof(d[i].id), "%s-d%05u", org, i);
		d[i].platform = FBX_PLATFORM_ANDROID;
		d[i].online = 1;
		d[i].ngroups = 1;
		snprintf(d[i].groups[0], sizeof(d[i].groups[0]), "%s",
		    i % 2 == 0 ? "sales" : "ops");
	}
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ENROLL;
	req.u.enroll.devs = d;
	req.u.enroll.n = n;
	console(t, "ops", org, &req);
	turn(t);
	CHECK(reply(t, "ops", &rep) == FBX_OK, "enroll %s in groups", org);
	fbx_console_rep_free(&rep);
	free(d);
}

int
kv_records(struct env *t, const char *prefix, int nput)
{
	struct fbx_store_opts so;
	struct kv_count k = { prefix, 0 };
	fbx_store *st = NULL;
	fbx_txn *x = NULL;
	uint64_t one = 1;
	int rc;

	fbx_engine_close(t->e);
	t->e = NULL;
	memset(&so, 0, sizeof(so));
	so.path = t->dir;
	if (fbx_store_open(&so, &st) != FBX_OK)
		return -1;
	rc = fbx_txn_begin(st, nput > 0, &x);
	for (int i = 1; i <= nput && rc == FBX_OK; i++) {
		char key[FBX_KV_KEY_MAX];
		snprintf(key, sizeof(key), "%s%d", prefix, i);
		rc = fbx_store_kv_put(x, key, &one, sizeof(one));
	}
	if (rc == FBX_OK && nput > 0)
		rc = fbx_txn_commit(x);
	else if (x != NULL)
		fbx_txn_abort(x);
	x = NULL;
	if (rc == FBX_OK)
		rc = fbx_txn_begin(st, 0, &x);
	if (rc == FBX_OK) {
		rc = fbx_store_kv_scan(x, prefix, kv_count_cb, &k);
		fbx_txn_abort(x);
	}
	fbx_store_close(st);
	if (env_reopen(t) != 0)
		return -1;
	return rc == FBX_OK || rc == FBX_ENOT_FOUND ? k.n : -1;
}
