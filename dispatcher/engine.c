/*
 * engine.c: the dispatch loop. One thread owns both ROUTER sockets and the
 * only LMDB write transaction. Each turn reads a bounded batch of messages,
 * applies them, expands command targets into deliveries and hands queued
 * deliveries to gateways within their credit, inside one write transaction;
 * replies, acknowledgements and deliveries leave only after that commit, so
 * nothing is acknowledged or acted on before it is durable. The in-memory
 * state (command cache, per-organisation queues, in-flight sets) is a cache
 * of the store, rebuilt from LMDB at start-up and after a failed commit.
 */
#include <errno.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <zmq.h>

#include "fbx_engine.h"
#include "fbx_proto.h"
#include "fbx_store.h"
#include "idmap.h"
#include "log.h"
#include "safety.h"

#define ENV_MAX 4        /* envelope frames accepted on the console */
#define RID_MAX 256      /* ZeroMQ routing ids are at most 255 bytes */
#define IN_MSGS_MAX 512  /* messages read per socket per turn */
/* bytes read per socket per turn: with results at ~15 bytes each this
 * keeps one write transaction to about half a million transitions */
#define IN_BYTES_MAX (8u * 1024 * 1024)
#define DISPATCH_MAX 16384 /* deliveries handed out per turn */
#define GW_BYTES_PER_TURN (256u * 1024) /* gateway input per turn */
#define GW_MSG_SOFT_MAX (FBX_GATEWAY_MSG_MAX / 2) /* flush a batch here */
#define SWEEP_MAX 65536    /* expiries per turn */
#define QUANTUM 256        /* deliveries per organisation per round */
#define COMMIT_RETRIES 4

/* ---------------------------------------------------------------- types */

struct ring {
	uint64_t *v;
	size_t cap, head, len;
};

/* Per-organisation dispatch state: one FIFO per priority class, the
 * organisation's caps and what it has in flight. */
struct orgq {
	char org[FBX_ID_MAX + 1];
	struct ring r[FBX_PRIO_COUNT];
	size_t len; /* over all classes */
	struct orgq *hnext;
	int active; /* listed in eng->rr */
	struct fbx_rate_info rate;
	int rate_loaded;
	struct fbxi_bucket bucket;
	uint32_t inflight;
};

struct cmdc {
	struct fbx_command c;
	struct orgq *q;
	struct cmdc *xnext; /* expansion list */
	int dirty;          /* state or cursor changed: rewrite the record */
	int expired;        /* TTL passed: sweeping deliveries to EXPIRED */
	uint32_t sweep_idx; /* next index the sweep looks at */
	int cancelling;     /* rollout cancelled: queued ones to CANCELLED */
	uint32_t cancel_idx;
	/* the current rollout wave (memory; recounted at recovery) */
	uint32_t w_ok, w_fail, w_settled;
	uint16_t w_topcode;
	uint32_t w_topcode_n;
	int judge_off; /* an operator resumed this wave */
};

struct gw {
	struct gw *next;
	uint8_t rid[RID_MAX];
	size_t rid_len;
	char id[FBX_ID_MAX + 1];
	fbx_id *orgs;
	size_t norgs;
	int all_orgs;
	uint32_t window;
	uint32_t unanswered;        /* sent, no answer yet: uses credit */
	int64_t last_seen;
	struct fbxi_idmap inflight; /* delivery id -> 1 sent, 2 accepted */
	int dead;
	/* delivery batch under construction this turn */
	struct fbx_dlv_out *ob;
	fbx_id *obdev;
	size_t obn;
	size_t obbytes; /* its encoded size, roughly */
};

struct inmsg {
	int from_gw;
	int nenv;
	size_t envlen[ENV_MAX];
	uint8_t env[ENV_MAX][RID_MAX];
	zmq_msg_t body;
};

enum { OUT_CONSOLE = 0, OUT_GW = 1, OUT_GW_RAW = 2, OUT_EVENT = 3 };

struct outmsg {
	struct outmsg *next;
	int to_gw; /* OUT_* */
	struct fbx_event ev; /* OUT_EVENT */
	struct gw *gw; /* to_gw: the session (NULL if it left) */
	int nenv;
	size_t envlen[ENV_MAX];
	uint8_t env[ENV_MAX][RID_MAX];
	uint8_t *buf;
	size_t len;
};

struct fbx_engine {
	struct fbx_engine_opts o;
	fbx_store *st;
	void *zctx, *console, *gateway;
	volatile sig_atomic_t stop;
	int draining;
	int64_t drain_deadline;
	int64_t started_ms;

	struct fbxi_idmap cmds; /* command id -> struct cmdc * */
	struct cmdc *xhead, *xtail;

	struct orgq *qtab[1024];
	struct orgq **rr; /* organisations with queued deliveries */
	size_t rrlen, rrcap, rrpos;

	struct gw *gws;
	struct gw *gw_rr; /* next gateway to serve first */

	struct inmsg *in;
	size_t nin, incap;
	struct outmsg *ohead, *otail;

	fbx_txn *txn; /* the open write transaction of this turn */
	int txn_err;  /* first store error in this turn */

	struct fbx_rate_info grate; /* org "*": global caps */
	struct fbxi_bucket gbucket;
	uint64_t inflight_all;
	void *events; /* PUB socket for alerts, or NULL */
	uint64_t audit_seq;     /* last audit record */
	uint8_t audit_last[32]; /* its hash */
	uint64_t prune_next;    /* retention: next command id to look at */
	uint64_t last_cmd_id;   /* highest command id journaled */
	uint64_t pruned;
	int64_t next_prune;
	int64_t next_approval_prune;

	uint64_t commits, dlv_sent, results_in, ignored_results;
	int64_t now;  /* wall clock: what is journaled */
	int64_t mono; /* monotonic: timeouts */
	int64_t next_sweep;
	int stalled;  /* queued work but nothing could be sent (caps) */
	int64_t next_tick; /* idle: the next turn for timers */
	uint32_t xbudget; /* deliveries this turn may still create */
};

/* ---------------------------------------------------------------- utils */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
set_err(struct fbx_engine *e, int rc)
{
	if (rc != FBX_OK && e->txn_err == FBX_OK)
		e->txn_err = rc;
}

/* note_printf - format into a fixed note field; long operator notes are
 * cut, never overflow. */
static void note_printf(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
note_printf(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
}


static uint32_t
str_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

/* ----------------------------------------------------- org queues (FIFO) */

static struct orgq *
orgq_get(struct fbx_engine *e, const char *org)
{
	uint32_t b = str_hash(org) % 1024;
	struct orgq *q;

	for (q = e->qtab[b]; q != NULL; q = q->hnext) {
		if (strcmp(q->org, org) == 0)
			return q;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	snprintf(q->org, sizeof(q->org), "%s", org);
	q->hnext = e->qtab[b];
	e->qtab[b] = q;
	return q;
}

static int
ring_push(struct ring *r, uint64_t id)
{
	if (r->len == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		uint64_t *nr = malloc(ncap * sizeof(*nr));
		if (nr == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < r->len; i++)
			nr[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = nr;
		r->cap = ncap;
		r->head = 0;
	}
	r->v[(r->head + r->len) % r->cap] = id;
	r->len++;
	return FBX_OK;
}

static uint64_t
ring_pop(struct ring *r)
{
	uint64_t id = r->v[r->head];

	r->head = (r->head + 1) % r->cap;
	r->len--;
	if (r->len == 0 && r->cap > 4096) {
		/* a finished big fan-out gives its memory back */
		free(r->v);
		r->v = NULL;
		r->cap = r->head = 0;
	}
	return id;
}

static int
orgq_push(struct fbx_engine *e, struct orgq *q, int prio, uint64_t id)
{
	if (prio < 0 || prio >= FBX_PRIO_COUNT)
		prio = FBX_PRIO_OPERATOR;
	if (ring_push(&q->r[prio], id) != FBX_OK)
		return FBX_ENOMEM;
	q->len++;
	if (!q->active) {
		if (e->rrlen == e->rrcap) {
			size_t ncap = e->rrcap ? e->rrcap * 2 : 64;
			struct orgq **n = realloc(e->rr, ncap * sizeof(*n));
			if (n == NULL)
				return FBX_ENOMEM;
			e->rr = n;
			e->rrcap = ncap;
		}
		e->rr[e->rrlen++] = q;
		q->active = 1;
	}
	return FBX_OK;
}

static void
orgq_clear(struct orgq *q)
{
	for (int p = 0; p < FBX_PRIO_COUNT; p++) {
		free(q->r[p].v);
		memset(&q->r[p], 0, sizeof(q->r[p]));
	}
	q->len = 0;
	q->active = 0;
	q->inflight = 0;
	q->rate_loaded = 0;
}

/* Rate caps as persisted under "rate/<org>"; org "*" holds the global
 * caps. */
struct rate_rec {
	uint32_t version;
	uint32_t rate_per_s, burst, max_inflight;
};

static int
rate_load(fbx_txn *txn, const char *org, struct fbx_rate_info *out)
{
	struct rate_rec r;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->org, sizeof(out->org), "%s", org);
	snprintf(key, sizeof(key), "rate/%s", org);
	rc = fbx_store_kv_get(txn, key, &r, sizeof(r), &len);
	if (rc == FBX_ENOT_FOUND)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	if (len != sizeof(r) || r.version != 1)
		return FBX_ECORRUPT;
	out->rate_per_s = r.rate_per_s;
	out->burst = r.burst;
	out->max_inflight = r.max_inflight;
	return FBX_OK;
}

static int
rate_save(fbx_txn *txn, const struct fbx_rate_info *ri)
{
	struct rate_rec r = { 1, ri->rate_per_s, ri->burst, ri->max_inflight };
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), "rate/%s", ri->org);
	return fbx_store_kv_put(txn, key, &r, sizeof(r));
}

/* orgq_load_rate - read an organisation's caps once (inside the turn's
 * transaction); later changes come through the RATE request. */
static void
orgq_load_rate(struct fbx_engine *e, struct orgq *q)
{
	if (q->rate_loaded || e->txn == NULL)
		return;
	if (rate_load(e->txn, q->org, &q->rate) == FBX_OK)
		q->rate_loaded = 1;
}

/* In-flight map values: the organisation's queue with the delivery's
 * stage in the low bits (1 = sent, unanswered; 2 = accepted). */
#define IF_SENT 1u
#define IF_ACCEPTED 2u
#define IF_VAL(q, st) ((uint64_t)(uintptr_t)(q) | (st))
#define IF_STAGE(v) ((unsigned)((v)&3u))
#define IF_ORGQ(v) ((struct orgq *)(uintptr_t)((v) & ~(uint64_t)3))

/* inflight_release - a delivery left a gateway's hands. */
static void
inflight_release(struct fbx_engine *e, uint64_t v)
{
	struct orgq *q = IF_ORGQ(v);

	if (q != NULL && q->inflight > 0)
		q->inflight--;
	if (e->inflight_all > 0)
		e->inflight_all--;
}

/* ------------------------------------------------------- command cache */

static struct cmdc *
cmd_find(struct fbx_engine *e, uint64_t id)
{
	uint64_t v;

	if (!fbxi_idmap_get(&e->cmds, id, &v))
		return NULL;
	return (struct cmdc *)(uintptr_t)v;
}

static int
cmd_dup(struct fbx_command *dst, const struct fbx_command *src)
{
	*dst = *src;
	dst->payload = NULL;
	dst->dev_ids = NULL;
	if (src->payload_len > 0) {
		dst->payload = malloc(src->payload_len);
		if (dst->payload == NULL)
			goto fail;
		memcpy(dst->payload, src->payload, src->payload_len);
	}
	if (src->ndev_ids > 0 && src->dev_ids != NULL) {
		dst->dev_ids = malloc(src->ndev_ids * sizeof(*dst->dev_ids));
		if (dst->dev_ids == NULL)
			goto fail;
		memcpy(dst->dev_ids, src->dev_ids,
		    src->ndev_ids * sizeof(*dst->dev_ids));
	}
	return FBX_OK;
fail:
	free(dst->payload);
	dst->payload = NULL;
	return FBX_ENOMEM;
}

static void
xlist_add(struct fbx_engine *e, struct cmdc *cc)
{
	cc->xnext = NULL;
	if (e->xtail != NULL)
		e->xtail->xnext = cc;
	else
		e->xhead = cc;
	e->xtail = cc;
}

static void
xlist_remove(struct fbx_engine *e, struct cmdc *cc)
{
	struct cmdc **pp = &e->xhead, *prev = NULL;

	while (*pp != NULL && *pp != cc) {
		prev = *pp;
		pp = &(*pp)->xnext;
	}
	if (*pp == NULL)
		return;
	*pp = cc->xnext;
	if (e->xtail == cc)
		e->xtail = prev;
	cc->xnext = NULL;
}

static struct cmdc *
cmd_cache_add(struct fbx_engine *e, const struct fbx_command *c)
{
	struct cmdc *cc = calloc(1, sizeof(*cc));

	if (cc == NULL)
		return NULL;
	if (cmd_dup(&cc->c, c) != FBX_OK)
		goto fail;
	cc->q = orgq_get(e, c->org);
	if (cc->q == NULL)
		goto fail;
	if (fbxi_idmap_put(&e->cmds, c->id, (uint64_t)(uintptr_t)cc) != 0)
		goto fail;
	/* a cancelled rollout stays cancelled across recovery */
	cc->cancelling = c->rollout.enabled && c->ro.state == FBX_RO_CANCELLED;
	if (c->state == FBX_C_EXPANDING && !cc->cancelling)
		xlist_add(e, cc);
	return cc;
fail:
	fbx_command_clear(&cc->c);
	free(cc);
	return NULL;
}

static void
cmd_cache_free(struct fbx_engine *e, struct cmdc *cc)
{
	fbxi_idmap_del(&e->cmds, cc->c.id, NULL);
	xlist_remove(e, cc);
	fbx_command_clear(&cc->c);
	free(cc);
}

static uint32_t
cmd_open(const struct cmdc *cc)
{
	return cc->c.counts[FBX_D_QUEUED] + cc->c.counts[FBX_D_SENT] +
	    cc->c.counts[FBX_D_ACCEPTED] + cc->c.counts[FBX_D_PENDING];
}

static void
count_move(struct cmdc *cc, int from, int to)
{
	if (from > 0 && from < FBX_D_COUNT && cc->c.counts[from] > 0)
		cc->c.counts[from]--;
	if (to > 0 && to < FBX_D_COUNT)
		cc->c.counts[to]++;
}

/* cmd_maybe_done - a command whose every delivery is terminal is DONE. */
static void
cmd_maybe_done(struct cmdc *cc)
{
	if (cc->c.rollout.enabled && !cc->expired &&
	    cc->c.ro.state != FBX_RO_DONE && cc->c.ro.state != FBX_RO_CANCELLED)
		return; /* later waves or groups still to go */
	if (cc->c.state == FBX_C_ACTIVE && cmd_open(cc) == 0) {
		cc->c.state = FBX_C_DONE;
		cc->dirty = 1;
	}
}

/* ------------------------------------------------------------- outputs */

static struct outmsg *
out_new(struct fbx_engine *e)
{
	struct outmsg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	if (e->otail != NULL)
		e->otail->next = m;
	else
		e->ohead = m;
	e->otail = m;
	return m;
}

static void
out_discard(struct fbx_engine *e)
{
	struct outmsg *m = e->ohead, *n;

	for (; m != NULL; m = n) {
		n = m->next;
		free(m->buf);
		free(m);
	}
	e->ohead = e->otail = NULL;
}

static void gw_mark_dead(struct fbx_engine *e, struct gw *g, const char *why);
static void run_alert(struct fbx_engine *e, const struct fbx_event *ev);

static void
out_flush(struct fbx_engine *e)
{
	struct outmsg *m = e->ohead, *n;

	for (; m != NULL; m = n) {
		void *sock = m->to_gw ? e->gateway : e->console;
		int rc = 0;
		n = m->next;
		if (m->to_gw == OUT_EVENT) {
			if (e->events != NULL && m->len > 0 &&
			    (zmq_send(e->events, m->env[0], m->envlen[0],
			         ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
			        zmq_send(e->events, m->buf, m->len,
			            ZMQ_DONTWAIT) < 0))
				FBX_LOGW("event not published: %s",
				    zmq_strerror(errno));
			run_alert(e, &m->ev);
			goto next;
		}
		if (m->to_gw == 1 && (m->gw == NULL || m->gw->dead))
			goto next;
		for (int i = 0; i < m->nenv && rc >= 0; i++)
			rc = zmq_send(sock, m->env[i], m->envlen[i],
			    ZMQ_SNDMORE | ZMQ_DONTWAIT);
		if (rc >= 0)
			rc = zmq_send(sock, m->buf, m->len, ZMQ_DONTWAIT);
		if (rc < 0) {
			if (m->to_gw == 1)
				gw_mark_dead(e, m->gw, zmq_strerror(errno));
			else
				FBX_LOGD("console reply dropped: %s",
				    zmq_strerror(errno));
		}
	next:
		free(m->buf);
		free(m);
	}
	e->ohead = e->otail = NULL;
}

static void
out_copy_env(struct outmsg *o, const struct inmsg *in)
{
	o->nenv = in->nenv;
	for (int i = 0; i < in->nenv; i++) {
		o->envlen[i] = in->envlen[i];
		memcpy(o->env[i], in->env[i], in->envlen[i]);
	}
}

static void
console_reply(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_rep *rep)
{
	struct outmsg *o = out_new(e);
	int rc;

	if (o == NULL)
		return;
	out_copy_env(o, in);
	rc = fbx_console_rep_encode(rep, &o->buf, &o->len);
	if (rc != FBX_OK) {
		/* the result did not fit: answer with the error instead */
		struct fbx_console_rep er;
		memset(&er, 0, sizeof(er));
		er.request_id = rep->request_id;
		er.kind = rep->kind;
		er.err = rc;
		snprintf(er.errmsg, sizeof(er.errmsg),
		    "reply could not be encoded: %s", fbx_strerror(rc));
		if (fbx_console_rep_encode(&er, &o->buf, &o->len) != FBX_OK)
			o->len = 0;
	}
}

static void
console_error(struct fbx_engine *e, const struct inmsg *in, uint64_t reqid,
    int kind, int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
console_error(struct fbx_engine *e, const struct inmsg *in, uint64_t reqid,
    int kind, int err, const char *fmt, ...)
{
	struct fbx_console_rep rep;
	va_list ap;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = reqid;
	rep.kind = kind;
	rep.err = err;
	va_start(ap, fmt);
	vsnprintf(rep.errmsg, sizeof(rep.errmsg), fmt, ap);
	va_end(ap);
	console_reply(e, in, &rep);
}

static void
gw_send(struct fbx_engine *e, struct gw *g, const struct fbx_eng_msg *m)
{
	struct outmsg *o = out_new(e);

	if (o == NULL)
		return;
	o->to_gw = 1;
	o->gw = g;
	o->nenv = 1;
	o->envlen[0] = g->rid_len;
	memcpy(o->env[0], g->rid, g->rid_len);
	{
		int rc = fbx_eng_msg_encode(m, &o->buf, &o->len);
		if (rc != FBX_OK) {
			/* never send an empty frame for journaled deliveries:
			 * fail the turn, nothing of it happened */
			FBX_LOGE("gateway %s: message not encodable: %s", g->id,
			    fbx_strerror(rc));
			set_err(e, rc == FBX_ENOMEM ? FBX_ENOMEM : FBX_ETOOBIG);
			o->len = 0;
		}
	}
}

static void
gw_send_raw_error(struct fbx_engine *e, const struct inmsg *in, int err,
    const char *msg)
{
	struct fbx_eng_msg m;
	struct outmsg *o = out_new(e);

	if (o == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_ERROR;
	m.u.error.err = err;
	snprintf(m.u.error.msg, sizeof(m.u.error.msg), "%s", msg);
	o->to_gw = 1;
	o->gw = NULL; /* not a session: send even so */
	out_copy_env(o, in);
	if (fbx_eng_msg_encode(&m, &o->buf, &o->len) != FBX_OK)
		o->len = 0;
	/* out_flush skips to_gw messages without a live session; this one
	 * goes to a peer that has none, so mark it as a console-style send
	 * on the gateway socket. */
	o->to_gw = OUT_GW_RAW;
}

/* ------------------------------------------------------------- gateways */

static struct gw *
gw_by_rid(struct fbx_engine *e, const uint8_t *rid, size_t len)
{
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (!g->dead && g->rid_len == len &&
		    memcmp(g->rid, rid, len) == 0)
			return g;
	}
	return NULL;
}

static int
gw_serves(const struct gw *g, const char *org)
{
	if (g->all_orgs)
		return 1;
	for (size_t i = 0; i < g->norgs; i++) {
		if (strcmp(g->orgs[i], org) == 0)
			return 1;
	}
	return 0;
}

/* gw_requeue - put every delivery a gateway holds back in its queue,
 * journaled as QUEUED, to be sent again with the same delivery id. */
static void
gw_requeue(struct fbx_engine *e, struct gw *g)
{
	uint64_t id, v;
	size_t pos = 0;
	size_t n = 0;

	while (fbxi_idmap_next(&g->inflight, &pos, &id, &v)) {
		struct cmdc *cc = cmd_find(e, FBX_DLV_CMD(id));
		int old = 0, rc;
		inflight_release(e, v);
		if (cc == NULL || cc->expired)
			continue;
		if (cc->cancelling) {
			/* a cancelled rollout: what the gateway lost ends */
			rc = fbx_store_dlv_set_state(e->txn, id,
			    FBX_D_CANCELLED, 0, e->now, 0, &old, NULL);
			if (rc != FBX_OK) {
				set_err(e, rc);
				break;
			}
			count_move(cc, old, FBX_D_CANCELLED);
			cmd_maybe_done(cc);
			continue;
		}
		rc = fbx_store_dlv_set_state(
		    e->txn, id, FBX_D_QUEUED, 0, e->now, 0, &old, NULL);
		if (rc != FBX_OK) {
			set_err(e, rc);
			break;
		}
		count_move(cc, old, FBX_D_QUEUED);
		if (orgq_push(e, cc->q, cc->c.priority, id) != FBX_OK) {
			set_err(e, FBX_ENOMEM);
			break;
		}
		n++;
	}
	fbxi_idmap_clear(&g->inflight);
	g->unanswered = 0;
	if (n > 0)
		FBX_LOGI("gateway %s: %zu in-flight deliveries re-queued",
		    g->id, n);
}

static void
gw_mark_dead(struct fbx_engine *e, struct gw *g, const char *why)
{
	(void)e;
	if (g == NULL || g->dead)
		return;
	FBX_LOGW("gateway %s lost: %s", g->id, why);
	g->dead = 1; /* requeued and freed at the next turn, in its txn */
}

static void
gw_free(struct gw *g)
{
	fbxi_idmap_fini(&g->inflight);
	free(g->orgs);
	free(g->ob);
	free(g->obdev);
	free(g);
}

/* gw_reap - requeue and drop dead sessions (inside the turn's txn). */
static void
gw_reap(struct fbx_engine *e)
{
	struct gw **pp = &e->gws;

	while (*pp != NULL) {
		struct gw *g = *pp;
		if (!g->dead && e->mono - g->last_seen >
		        3 * (int64_t)e->o.heartbeat_ms) {
			FBX_LOGW("gateway %s silent for %lld ms", g->id,
			    (long long)(e->mono - g->last_seen));
			g->dead = 1;
		}
		if (!g->dead) {
			pp = &g->next;
			continue;
		}
		gw_requeue(e, g);
		*pp = g->next;
		if (e->gw_rr == g)
			e->gw_rr = NULL;
		/* outputs queued this turn may still point at g */
		for (struct outmsg *o = e->ohead; o != NULL; o = o->next) {
			if (o->gw == g)
				o->gw = NULL;
		}
		gw_free(g);
	}
}

/* ------------------------------------------------------------ expansion */

struct expand_ctx {
	struct fbx_engine *e;
	struct cmdc *cc;
	uint32_t made;
	uint32_t budget;
	uint32_t scanned;
	int full; /* the command reached FBX_DEVICES_PER_CMD_MAX */
};

static int
make_delivery(struct expand_ctx *x, const struct fbx_device *dev)
{
	struct fbx_engine *e = x->e;
	struct cmdc *cc = x->cc;
	struct fbx_delivery d;
	int rc;

	if (cc->c.platform != FBX_PLATFORM_ANY &&
	    dev->platform != cc->c.platform)
		return FBX_OK;
	if (cc->c.rollout.enabled && cc->c.rollout.ngroups > 0) {
		/* group stages: a device belongs to the first listed group
		 * it is in; the last stage takes the devices of none */
		uint32_t stage = cc->c.cursor_idx, upto = stage;
		if (upto > cc->c.rollout.ngroups)
			upto = cc->c.rollout.ngroups;
		for (uint32_t j = 0; j < upto; j++) {
			for (unsigned gi = 0; gi < dev->ngroups; gi++) {
				if (strcmp(dev->groups[gi],
				        cc->c.rollout.groups[j]) == 0)
					return FBX_OK;
			}
		}
	}
	if (cc->c.ndeliveries >= FBX_DEVICES_PER_CMD_MAX) {
		x->full = 1;
		return FBX_OK;
	}
	memset(&d, 0, sizeof(d));
	d.id = FBX_DLV_ID(cc->c.id, cc->c.ndeliveries);
	/* rollouts release deliveries wave by wave: all start QUEUED */
	d.state = dev->online || cc->c.rollout.enabled ? FBX_D_QUEUED
	                                               : FBX_D_PENDING;
	d.updated_ms = e->now;
	snprintf(d.device, sizeof(d.device), "%s", dev->id);
	d.nhist = 1;
	d.hist[0].state = d.state;
	d.hist[0].at_ms = e->now;
	rc = fbx_store_dlv_put(e->txn, &d);
	if (rc == FBX_OK && d.state == FBX_D_PENDING)
		rc = fbx_store_pend_add(e->txn, cc->c.org, dev->id, d.id);
	if (rc == FBX_OK && d.state == FBX_D_QUEUED && !cc->c.rollout.enabled)
		rc = orgq_push(e, cc->q, cc->c.priority, d.id);
	if (rc != FBX_OK)
		return rc;
	cc->c.ndeliveries++;
	cc->c.counts[d.state]++;
	x->made++;
	return FBX_OK;
}

static int
expand_dev_cb(void *arg, const struct fbx_device *dev)
{
	struct expand_ctx *x = arg;
	int rc = make_delivery(x, dev);

	x->scanned++;
	if (rc != FBX_OK) {
		set_err(x->e, rc);
		return 1;
	}
	snprintf(x->cc->c.cursor, sizeof(x->cc->c.cursor), "%s", dev->id);
	x->cc->dirty = 1;
	return x->full;
}

/* expand_cmd - create up to `budget` deliveries of an EXPANDING command;
 * the cursor is journaled with them, so a restart resumes exactly here.
 * @return devices examined. */
static uint32_t
expand_cmd(struct fbx_engine *e, struct cmdc *cc, uint32_t budget)
{
	struct expand_ctx x = { e, cc, 0, budget, 0, 0 };
	uint32_t seen = 0;
	int done = 0;

	if (cc->c.target_kind == FBX_TARGET_DEVICES) {
		while (cc->c.cursor_idx < cc->c.ndev_ids && seen < budget &&
		    !x.full) {
			struct fbx_device dev;
			int rc = fbx_store_dev_get(e->txn, cc->c.org,
			    cc->c.dev_ids[cc->c.cursor_idx], &dev);
			seen++;
			if (rc == FBX_OK)
				rc = make_delivery(&x, &dev);
			else if (rc == FBX_ENOT_FOUND)
				rc = FBX_OK; /* removed since the submit */
			if (rc != FBX_OK) {
				set_err(e, rc);
				return seen;
			}
			cc->c.cursor_idx++;
		}
		cc->dirty = 1;
		done = cc->c.cursor_idx >= cc->c.ndev_ids;
	} else {
		const char *grp =
		    cc->c.target_kind == FBX_TARGET_GROUP ? cc->c.group : NULL;
		int rc;
		if (cc->c.rollout.enabled &&
		    cc->c.cursor_idx < cc->c.rollout.ngroups)
			grp = cc->c.rollout.groups[cc->c.cursor_idx];
		rc = fbx_store_dev_scan(e->txn, cc->c.org, grp, cc->c.cursor,
		    budget, expand_dev_cb, &x);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			set_err(e, rc);
		if (e->txn_err != FBX_OK)
			return budget;
		seen = x.scanned;
		/* fewer rows than asked for: the target is exhausted */
		done = x.scanned < budget;
	}
	if (x.full) {
		FBX_LOGW("command %llu: target exceeds %u devices; rest "
		         "not delivered",
		    (unsigned long long)cc->c.id, FBX_DEVICES_PER_CMD_MAX);
		done = 1;
	}
	if (done) {
		xlist_remove(e, cc);
		cc->c.state = FBX_C_ACTIVE;
		cc->dirty = 1;
		if (cc->c.rollout.enabled) {
			/* this group is expanded: its first wave goes now */
			cc->c.ro.state = FBX_RO_BAKING;
			cc->c.ro.bake_until_ms = e->now;
			cc->c.ro.wave = 0;
		}
		cmd_maybe_done(cc);
		FBX_LOGI("command %llu (%s %s org %s): %u deliveries",
		    (unsigned long long)cc->c.id,
		    fbx_origin_name(cc->c.origin),
		    fbx_cmd_type_name(cc->c.type), cc->c.org,
		    cc->c.ndeliveries);
	}
	return seen;
}

/* expand_inline - expand a new command in the turn that accepted it, so
 * the reply can tell its size, within what the turn may still create. */
static void
expand_inline(struct fbx_engine *e, struct cmdc *cc)
{
	uint32_t used;

	if (cc->c.state != FBX_C_EXPANDING || e->xbudget == 0)
		return;
	used = expand_cmd(e, cc, e->xbudget);
	e->xbudget = used >= e->xbudget ? 0 : e->xbudget - used;
}

static void
expand_step(struct fbx_engine *e)
{
	uint32_t budget = e->xbudget;
	size_t n = 0;

	for (struct cmdc *cc = e->xhead; cc != NULL; cc = cc->xnext)
		n++;
	while (e->xhead != NULL && budget > 0 && e->txn_err == FBX_OK) {
		/* share the budget so a small command is not stuck behind
		 * a million-device one */
		uint32_t share = budget / (uint32_t)(n ? n : 1);
		struct cmdc *cc = e->xhead;
		if (share < 1024)
			share = budget < 1024 ? budget : 1024;
		uint32_t used = expand_cmd(e, cc, share);
		budget = used >= budget ? 0 : budget - used;
		/* rotate: a command still expanding goes to the back */
		if (e->xhead == cc && cc->c.state == FBX_C_EXPANDING &&
		    cc->xnext != NULL) {
			xlist_remove(e, cc);
			xlist_add(e, cc);
		}
		if (n > 0)
			n--;
		if (n == 0)
			break;
	}
}

/* ------------------------------------------------------ console requests */

static int
cmp_id(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

struct any_ctx {
	int platform;
	int found;
};

static int
any_dev_cb(void *arg, const struct fbx_device *dev)
{
	struct any_ctx *a = arg;

	if (a->platform == FBX_PLATFORM_ANY || dev->platform == a->platform) {
		a->found = 1;
		return 1;
	}
	return 0;
}

static int
same_command(const struct fbx_command *a, const struct fbx_command *b)
{
	if (a->type != b->type || a->origin != b->origin ||
	    a->target_kind != b->target_kind || a->platform != b->platform ||
	    strcmp(a->group, b->group) != 0 ||
	    strcmp(a->reason, b->reason) != 0 ||
	    a->payload_len != b->payload_len || a->ndev_ids != b->ndev_ids)
		return 0;
	if (a->payload_len > 0 &&
	    memcmp(a->payload, b->payload, a->payload_len) != 0)
		return 0;
	if (a->rollout.enabled != b->rollout.enabled)
		return 0;
	if (a->rollout.enabled) {
		/* the stored plan is normalized: compare normalized */
		struct fbx_rollout_plan pa = a->rollout, pb = b->rollout;
		fbxi_rollout_normalize(&pa);
		fbxi_rollout_normalize(&pb);
		if (memcmp(&pa, &pb, sizeof(pa)) != 0)
			return 0;
	}
	for (uint32_t i = 0; i < a->ndev_ids; i++) {
		if (strcmp(a->dev_ids[i], b->dev_ids[i]) != 0)
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------- alerts */

/* emit_event - log an alert now; publish it on the PUB endpoint and run
 * the alert command after the turn commits (an alert about something
 * that did not happen must not leave). */
static void
emit_event(struct fbx_engine *e, int kind, const char *org,
    const char *reason, const char *actor, uint64_t cmd_id, uint64_t count,
    uint64_t limit, const char *fmt, ...) __attribute__((format(printf, 9, 10)));

static void
emit_event(struct fbx_engine *e, int kind, const char *org,
    const char *reason, const char *actor, uint64_t cmd_id, uint64_t count,
    uint64_t limit, const char *fmt, ...)
{
	struct fbx_event ev;
	struct outmsg *o;
	va_list ap;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.at_ms = e->now;
	snprintf(ev.org, sizeof(ev.org), "%s", org ? org : "");
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason ? reason : "");
	snprintf(ev.actor, sizeof(ev.actor), "%s", actor ? actor : "engine");
	ev.command_id = cmd_id;
	ev.count = count;
	ev.limit = limit;
	va_start(ap, fmt);
	vsnprintf(ev.detail, sizeof(ev.detail), fmt, ap);
	va_end(ap);
	FBX_LOGW("ALERT %s org=%s reason=%s actor=%s count=%llu limit=%llu: "
	         "%s",
	    fbx_event_kind_name(kind), ev.org, ev.reason, ev.actor,
	    (unsigned long long)count, (unsigned long long)limit, ev.detail);
	o = out_new(e);
	if (o == NULL)
		return;
	o->to_gw = OUT_EVENT;
	o->nenv = 1;
	o->envlen[0] = (size_t)snprintf((char *)o->env[0], RID_MAX,
	    "fusebox.%s", fbx_event_kind_name(kind));
	o->ev = ev;
	if (fbx_event_encode(&ev, &o->buf, &o->len) != FBX_OK)
		o->len = 0;
}

/* run_alert - start the operator's alert command for one event, with the
 * event in its environment; never waits for it (SIGCHLD is ignored). */
static void
run_alert(struct fbx_engine *e, const struct fbx_event *ev)
{
	char v_kind[96], v_org[96], v_reason[96], v_count[64], v_limit[64],
	    v_detail[300], v_cmd[64];
	char *argv[] = { "/bin/sh", "-c", (char *)e->o.alert_cmd, NULL };
	char *envp[] = { v_kind, v_org, v_reason, v_count, v_limit, v_detail,
		v_cmd, "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	pid_t pid;

	if (e->o.alert_cmd == NULL || e->o.alert_cmd[0] == '\0')
		return;
	snprintf(v_kind, sizeof(v_kind), "FUSEBOX_EVENT=%s",
	    fbx_event_kind_name(ev->kind));
	snprintf(v_org, sizeof(v_org), "FUSEBOX_ORG=%s", ev->org);
	snprintf(v_reason, sizeof(v_reason), "FUSEBOX_REASON=%s", ev->reason);
	snprintf(v_count, sizeof(v_count), "FUSEBOX_COUNT=%llu",
	    (unsigned long long)ev->count);
	snprintf(v_limit, sizeof(v_limit), "FUSEBOX_LIMIT=%llu",
	    (unsigned long long)ev->limit);
	snprintf(v_detail, sizeof(v_detail), "FUSEBOX_DETAIL=%s", ev->detail);
	snprintf(v_cmd, sizeof(v_cmd), "FUSEBOX_COMMAND=%llu",
	    (unsigned long long)ev->command_id);
	if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp) != 0)
		FBX_LOGE("alert command could not start: %s", strerror(errno));
}

/* -------------------------------------------------------------- audit */

/* Audit records are chained: each carries the SHA-256 of the previous
 * record, and its own hash covers its sequence, that link and its body.
 * Changing, removing or reordering a stored record breaks the chain at
 * that point, which fbx "audit verify" reports.
 *
 * Layout (little-endian): ver u8, prev[32], hash[32], at_ms i64, then
 * org, actor, action as u8 length + bytes, note and params as u16 length
 * + bytes. hash = SHA-256(seq u64 BE || the record with hash zeroed). */
#define AUDIT_V1 1
#define AUDIT_HASH_OFF 33
#define AUDIT_MAX 1200

static void
audit_hash(uint64_t seq, const uint8_t *rec, size_t len, uint8_t out[32])
{
	uint8_t zero[32], sb[8];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	memset(out, 0, 32);
	memset(zero, 0, sizeof(zero));
	for (int i = 0; i < 8; i++)
		sb[i] = (uint8_t)(seq >> (56 - 8 * i));
	if (ctx == NULL || len < AUDIT_HASH_OFF + 32)
		goto out;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, sb, sizeof(sb)) != 1 ||
	    EVP_DigestUpdate(ctx, rec, AUDIT_HASH_OFF) != 1 ||
	    EVP_DigestUpdate(ctx, zero, sizeof(zero)) != 1 ||
	    EVP_DigestUpdate(ctx, rec + AUDIT_HASH_OFF + 32,
	        len - AUDIT_HASH_OFF - 32) != 1)
		goto out;
	EVP_DigestFinal_ex(ctx, out, &mdlen);
out:
	EVP_MD_CTX_free(ctx);
}

static size_t
put_str8(uint8_t *p, const char *s)
{
	size_t n = strnlen(s, 255);

	p[0] = (uint8_t)n;
	memcpy(p + 1, s, n);
	return n + 1;
}

static size_t
put_str16(uint8_t *p, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	p[0] = (uint8_t)(n & 0xff);
	p[1] = (uint8_t)(n >> 8);
	memcpy(p + 2, s, n);
	return n + 2;
}

/* audit - append one record for an operator action, in the turn's
 * transaction: it is durable exactly when the action is. */
static void audit(struct fbx_engine *e, const char *org, const char *actor,
    const char *action, const char *note, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
audit(struct fbx_engine *e, const char *org, const char *actor,
    const char *action, const char *note, const char *fmt, ...)
{
	uint8_t rec[AUDIT_MAX], *p = rec;
	char params[512];
	int64_t at = e->now;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	*p++ = AUDIT_V1;
	memcpy(p, e->audit_last, 32);
	p += 32;
	memset(p, 0, 32); /* the hash, filled below */
	p += 32;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)((uint64_t)at >> (8 * i));
	p += put_str8(p, org ? org : "");
	p += put_str8(p, actor ? actor : "");
	p += put_str8(p, action);
	p += put_str16(p, note ? note : "", FBX_NOTE_MAX - 1);
	p += put_str16(p, params, sizeof(params) - 1);
	audit_hash(e->audit_seq + 1, rec, (size_t)(p - rec),
	    rec + AUDIT_HASH_OFF);
	rc = fbx_store_audit_put(e->txn, e->audit_seq + 1, rec,
	    (size_t)(p - rec));
	if (rc != FBX_OK) {
		set_err(e, rc);
		return;
	}
	e->audit_seq++;
	memcpy(e->audit_last, rec + AUDIT_HASH_OFF, 32);
}

/* audit_decode - parse a stored record. @return 0 or -1 if malformed. */
static int
audit_decode(uint64_t seq, const uint8_t *rec, size_t len,
    struct fbx_audit_rec *out, uint8_t prev[32], uint8_t hash[32])
{
	const uint8_t *p = rec, *end = rec + len;
	size_t n;

	memset(out, 0, sizeof(*out));
	out->seq = seq;
	if (len < 1 + 64 + 8 + 3 + 4 || *p++ != AUDIT_V1)
		return -1;
	memcpy(prev, p, 32);
	p += 32;
	memcpy(hash, p, 32);
	p += 32;
	for (int i = 0; i < 8; i++)
		out->at_ms |= (int64_t)((uint64_t)*p++ << (8 * i));
#define RD8(dst)                                                             \
	do {                                                                 \
		if (p >= end || (n = *p++) >= sizeof(dst) ||                 \
		    (size_t)(end - p) < n)                                   \
			return -1;                                           \
		memcpy(dst, p, n);                                           \
		dst[n] = '\0';                                               \
		p += n;                                                      \
	} while (0)
#define RD16(dst)                                                            \
	do {                                                                 \
		if (end - p < 2)                                             \
			return -1;                                           \
		n = (size_t)p[0] | ((size_t)p[1] << 8);                      \
		p += 2;                                                      \
		if (n >= sizeof(dst) || (size_t)(end - p) < n)               \
			return -1;                                           \
		memcpy(dst, p, n);                                           \
		dst[n] = '\0';                                               \
		p += n;                                                      \
	} while (0)
	RD8(out->org);
	RD8(out->actor);
	RD8(out->action);
	RD16(out->note);
	RD16(out->params);
#undef RD8
#undef RD16
	if (p != end)
		return -1;
	for (int i = 0; i < 32; i++) {
		snprintf(out->hash + 2 * i, 3, "%02x", hash[i]);
		snprintf(out->prev + 2 * i, 3, "%02x", prev[i]);
	}
	return 0;
}

static int
audit_load_last(struct fbx_engine *e, fbx_txn *txn)
{
	uint8_t rec[AUDIT_MAX];
	size_t len = 0;
	uint64_t seq = 0;
	int rc = fbx_store_audit_last(txn, &seq, rec, sizeof(rec), &len);

	if (rc == FBX_ENOT_FOUND) {
		e->audit_seq = 0;
		memset(e->audit_last, 0, 32);
		return FBX_OK;
	}
	if (rc != FBX_OK)
		return rc;
	if (len < AUDIT_HASH_OFF + 32)
		return FBX_ECORRUPT;
	e->audit_seq = seq;
	memcpy(e->audit_last, rec + AUDIT_HASH_OFF, 32);
	return FBX_OK;
}

/* ------------------------------------------------------- safety gates */

#define REASON_NONE "unspecified"

static const char *
reason_of(const struct fbx_command *c)
{
	return c->reason[0] ? c->reason : REASON_NONE;
}

static int
priority_of(const struct fbx_command *c)
{
	if (c->origin == FBX_ORIGIN_ROLLBACK || c->type == FBX_CMD_UNLOCK ||
	    c->type == FBX_CMD_STOP_LOST_MODE)
		return FBX_PRIO_RECOVERY;
	if (c->rollout.enabled)
		return FBX_PRIO_BULK;
	if (c->origin == FBX_ORIGIN_AUTOMATIC)
		return FBX_PRIO_AUTOMATIC;
	return FBX_PRIO_OPERATOR;
}

static int
brk_load(fbx_txn *txn, const char *org, const char *reason,
    struct fbxi_breaker *b, int *exists)
{
	char key[FBX_KV_KEY_MAX];
	struct fbx_breaker_cfg cfg;
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "brk/%s/%s", org, reason);
	rc = fbx_store_kv_get(txn, key, b, sizeof(*b), &len);
	if (rc == FBX_OK && len == offsetof(struct fbxi_breaker, reset_ms) &&
	    b->version == 1) {
		/* a record from before reset_ms: same layout, one field less */
		b->reset_ms = 0;
		b->version = FBXI_BRK_VERSION;
		len = sizeof(*b);
	}
	if (rc == FBX_OK) {
		if (len != sizeof(*b) || b->version != FBXI_BRK_VERSION)
			return FBX_ECORRUPT;
		if (exists)
			*exists = 1;
		return FBX_OK;
	}
	if (rc != FBX_ENOT_FOUND)
		return rc;
	if (exists)
		*exists = 0;
	fbxi_breaker_defaults(&cfg);
	if (strcmp(org, "*") != 0) {
		/* a configured global breaker is the template for its
		 * organisations */
		struct fbxi_breaker g;
		snprintf(key, sizeof(key), "brk/*/%s", reason);
		if (fbx_store_kv_get(txn, key, &g, sizeof(g), &len) == FBX_OK &&
		    len == sizeof(g) && g.version == FBXI_BRK_VERSION)
			cfg = g.cfg;
	}
	fbxi_breaker_init(b, &cfg);
	return FBX_OK;
}

static int
brk_save(fbx_txn *txn, const char *org, const char *reason,
    const struct fbxi_breaker *b)
{
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), "brk/%s/%s", org, reason);
	return fbx_store_kv_put(txn, key, b, sizeof(*b));
}

/* breaker_gate - automatic lock-type commands pass the global breaker of
 * their reason, then their organisation's. Decided here, inside the
 * transaction that journals the command, one command after another: the
 * devices admitted before a trip never exceed the allowance, however
 * fast the storm. @return FBX_OK (see *held) or a store error. */
static int
breaker_gate(struct fbx_engine *e, struct fbx_command *c, uint32_t ndev,
    uint32_t fleet, int over_limit, int *held)
{
	const char *reason = reason_of(c);
	struct fbxi_breaker g, b;
	int tripped = 0, v, rc;

	*held = 0;
	rc = brk_load(e->txn, "*", reason, &g, NULL);
	if (rc == FBX_OK)
		rc = brk_load(e->txn, c->org, reason, &b, NULL);
	if (rc != FBX_OK)
		return rc;
	if (g.state == FBX_BS_OPEN && !g.cfg.shadow) {
		snprintf(c->held_by, sizeof(c->held_by), "*/%s", reason);
		snprintf(c->note, sizeof(c->note),
		    "held: global breaker for '%s' is open", reason);
		g.held++;
		*held = 1;
		return brk_save(e->txn, "*", reason, &g);
	}
	v = fbxi_breaker_admit(&b, e->now, ndev, fleet, &tripped);
	if (v == FBXI_ADMIT && over_limit && !b.cfg.shadow) {
		/* the blast-radius limit is reached first: an automatic rule
		 * that hits it is the same alarm, and what it sends is held,
		 * not refused */
		v = FBXI_HOLD;
		tripped = 2;
	}
	if (tripped) {
		uint32_t allow = fbxi_breaker_allowance(&b, e->now, fleet);
		uint64_t inwin = fbxi_window_sum(&b.win, e->now);
		char note[FBX_NOTE_MAX];
		if (tripped == 2)
			snprintf(note, sizeof(note),
			    "automatic %s commands reached the blast-radius "
			    "limit of the organisation (fleet %u)",
			    fbx_cmd_type_name(c->type), fleet);
		else
			snprintf(note, sizeof(note),
			    "%llu automatic %s devices in %us would pass the "
			    "allowance of %u (fleet %u)",
			    (unsigned long long)(inwin + ndev),
			    fbx_cmd_type_name(c->type), b.cfg.window_s, allow,
			    fleet);
		fbxi_breaker_trip(&b, e->now, "engine", note, 0);
		emit_event(e, FBX_EV_BREAKER_TRIPPED, c->org, reason,
		    "engine", 0, inwin + ndev, allow, "%s", note);
		audit(e, c->org, "engine", "breaker.trip", note,
		    "{\"breaker\":\"%s/%s\",\"count\":%llu,\"allowance\":%u}",
		    c->org, reason, (unsigned long long)(inwin + ndev), allow);
		if (fbxi_breaker_note_org_trip(&g, e->now)) {
			uint64_t n = fbxi_window_sum(&g.win, e->now);
			snprintf(note, sizeof(note),
			    "%llu organisations tripped on '%s' within %us: "
			    "an upstream failure, not attacks on devices",
			    (unsigned long long)n, reason, g.cfg.window_s);
			fbxi_breaker_trip(&g, e->now, "engine", note, 0);
			emit_event(e, FBX_EV_BREAKER_TRIPPED, "*", reason,
			    "engine", 0, n, g.cfg.global_orgs, "%s", note);
			audit(e, "*", "engine", "breaker.trip", note,
			    "{\"breaker\":\"*/%s\",\"organisations\":%llu}",
			    reason, (unsigned long long)n);
		}
		rc = brk_save(e->txn, "*", reason, &g);
		if (rc != FBX_OK)
			return rc;
	}
	if (v == FBXI_HOLD) {
		snprintf(c->held_by, sizeof(c->held_by), "%s/%s", c->org,
		    reason);
		snprintf(c->note, sizeof(c->note),
		    "held: breaker %s/%s is open", c->org, reason);
		b.held++;
		*held = 1;
	} else if (v == FBXI_ADMIT_SHADOW &&
	    e->now - b.shadow_alerted_ms >= (int64_t)b.cfg.window_s * 1000) {
		b.shadow_alerted_ms = e->now;
		emit_event(e, FBX_EV_BREAKER_WOULD_TRIP, c->org, reason,
		    "engine", 0, fbxi_window_sum(&b.win, e->now),
		    fbxi_breaker_allowance(&b, e->now, fleet),
		    "shadow mode: would hold automatic %s commands",
		    fbx_cmd_type_name(c->type));
	}
	return brk_save(e->txn, c->org, reason, &b);
}

static int
limit_cfg_load(fbx_txn *txn, const char *org, int type,
    struct fbxi_limit_cfg *out, int *own)
{
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	*own = 0;
	snprintf(key, sizeof(key), "limcfg/%s/%s", org, fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, out, sizeof(*out), &len);
	if (rc == FBX_OK && len == sizeof(*out)) {
		*own = 1;
		return FBX_OK;
	}
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	snprintf(key, sizeof(key), "limcfg/*/%s", fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, out, sizeof(*out), &len);
	if (rc == FBX_OK && len == sizeof(*out))
		return FBX_OK;
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	fbxi_limit_defaults(type, out);
	return FBX_OK;
}

static int
limit_use_load(fbx_txn *txn, const char *org, int type, uint32_t window_s,
    struct fbxi_window *w)
{
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "limuse/%s/%s", org, fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, w, sizeof(*w), &len);
	if (rc == FBX_OK && len == sizeof(*w) && w->window_s == window_s)
		return FBX_OK;
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	fbxi_window_init(w, window_s);
	return FBX_OK;
}

static int
limit_use_save(
    fbx_txn *txn, const char *org, int type, const struct fbxi_window *w)
{
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), "limuse/%s/%s", org, fbx_cmd_type_name(type));
	return fbx_store_kv_put(txn, key, w, sizeof(*w));
}

/* fingerprint - the approval token of a refused command: SHA-256 of what
 * it would do, so an approval covers exactly that command. */
static void
fingerprint(const struct fbx_command *c, char *out, size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t hdr[5] = { c->type, c->origin, c->target_kind, c->platform,
		c->rollout.enabled };

	out[0] = '\0';
	if (ctx == NULL)
		return;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
		EVP_DigestUpdate(ctx, c->org, strlen(c->org) + 1);
		EVP_DigestUpdate(ctx, hdr, sizeof(hdr));
		EVP_DigestUpdate(ctx, c->group, strlen(c->group) + 1);
		EVP_DigestUpdate(ctx, c->reason, strlen(c->reason) + 1);
		if (c->payload_len > 0)
			EVP_DigestUpdate(ctx, c->payload, c->payload_len);
		for (uint32_t i = 0; i < c->ndev_ids; i++)
			EVP_DigestUpdate(
			    ctx, c->dev_ids[i], strlen(c->dev_ids[i]) + 1);
		EVP_DigestFinal_ex(ctx, md, &mdlen);
	}
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < 16 && i < mdlen && 2 * i + 2 < cap; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A refused submission ("rej/<org>/<token>") and its approval
 * ("appr/<org>/<token>"). */
struct approval_rec {
	uint32_t version;
	uint32_t used;
	int64_t at_ms;
	int64_t expires_ms;
	uint64_t count, cap;
	char submitter[FBX_ID_MAX + 1];
	char approver[FBX_ID_MAX + 1];
	char note[FBX_NOTE_MAX];
};

/* limit_gate - the blast-radius check, after admission: what the window
 * already counts plus this command must stay within the limit, unless a
 * second operator approved exactly this command. @return FBX_OK when
 * admitted (and counted); FBX_ELIMIT_EXCEEDED or FBX_EAPPROVAL_INVALID
 * after answering the submitter; or a store error. */
static int
limit_gate(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, struct fbx_command *c, uint32_t ndev,
    uint32_t fleet, int count_only)
{
	struct fbxi_limit_cfg cfg;
	struct fbxi_window w;
	char token[FBX_ID_MAX + 1], key[FBX_KV_KEY_MAX];
	uint64_t used;
	uint32_t cap;
	int own, rc;

	rc = limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc != FBX_OK)
		return rc;
	cap = fbxi_limit_cap(&cfg, fleet);
	if (cap == UINT32_MAX)
		return FBX_OK; /* no limit on this type: nothing to count */
	rc = limit_use_load(e->txn, c->org, c->type, cfg.window_s, &w);
	if (rc != FBX_OK)
		return rc;
	used = fbxi_window_sum(&w, e->now);
	if (!count_only && used + ndev > cap) {
		struct approval_rec a;
		size_t len = 0;
		fingerprint(c, token, sizeof(token));
		if (req != NULL && req->approval[0] != '\0') {
			const char *why = NULL;
			snprintf(key, sizeof(key), "appr/%s/%s", c->org, token);
			rc = fbx_store_kv_get(e->txn, key, &a, sizeof(a), &len);
			if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
				return rc;
			if (strcmp(req->approval, token) != 0)
				why = "the approval was given for a different "
				      "command";
			else if (rc == FBX_ENOT_FOUND || len != sizeof(a))
				why = "no approval with this token";
			else if (a.used)
				why = "the approval was already used";
			else if (a.expires_ms <= e->now)
				why = "the approval has expired";
			else if (strcmp(a.approver, req->actor) == 0)
				why = "the approver submitted it: a second, "
				      "different operator must approve";
			if (why != NULL) {
				console_error(e, in, req->request_id, req->kind,
				    FBX_EAPPROVAL_INVALID, "%s", why);
				return FBX_EAPPROVAL_INVALID;
			}
			a.used = 1;
			rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
			if (rc != FBX_OK)
				return rc;
			snprintf(c->approved_by, sizeof(c->approved_by), "%s",
			    a.approver);
			FBX_LOGI("org %s: %s of %u devices over its limit %u "
			         "admitted: submitted by %s, approved by %s",
			    c->org, fbx_cmd_type_name(c->type), ndev, cap,
			    req->actor, a.approver);
		} else if (req != NULL) {
			struct fbx_console_rep rep;
			memset(&a, 0, sizeof(a));
			a.version = 1;
			a.at_ms = e->now;
			a.count = used + ndev;
			a.cap = cap;
			snprintf(a.submitter, sizeof(a.submitter), "%s",
			    req->actor);
			snprintf(key, sizeof(key), "rej/%s/%s", c->org, token);
			rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
			if (rc != FBX_OK)
				return rc;
			memset(&rep, 0, sizeof(rep));
			rep.request_id = req->request_id;
			rep.kind = req->kind;
			rep.err = FBX_ELIMIT_EXCEEDED;
			snprintf(rep.approval_token, sizeof(rep.approval_token),
			    "%s", token);
			rep.limit_value = cap;
			rep.limit_count = used + ndev;
			snprintf(rep.errmsg, sizeof(rep.errmsg),
			    "%s of %u devices: %llu already affected in the "
			    "last %us + %u > limit %u; a second operator "
			    "may approve: fuseboxctl approve %s",
			    fbx_cmd_type_name(c->type), ndev,
			    (unsigned long long)used, cfg.window_s, ndev, cap,
			    token);
			console_reply(e, in, &rep);
			audit(e, c->org, req->actor, "submit.refused", NULL,
			    "{\"type\":\"%s\",\"devices\":%u,\"used\":%llu,"
			    "\"limit\":%u,\"token\":\"%s\"}",
			    fbx_cmd_type_name(c->type), ndev,
			    (unsigned long long)used, cap, token);
			emit_event(e, FBX_EV_LIMIT_REJECTED, c->org,
			    reason_of(c), req->actor, 0, used + ndev, cap,
			    "%s refused: %u devices over the blast-radius "
			    "limit",
			    fbx_cmd_type_name(c->type), ndev);
			return FBX_ELIMIT_EXCEEDED;
		} else {
			return FBX_ELIMIT_EXCEEDED;
		}
	}
	fbxi_window_add(&w, e->now, ndev);
	return limit_use_save(e->txn, c->org, c->type, &w);
}

/* limit_over - would ndev more devices pass the blast-radius limit? */
static int
limit_over(struct fbx_engine *e, const struct fbx_command *c, uint32_t ndev,
    uint32_t fleet, int *over)
{
	struct fbxi_limit_cfg cfg;
	struct fbxi_window w;
	int own, rc;

	*over = 0;
	rc = limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc == FBX_OK)
		rc = limit_use_load(e->txn, c->org, c->type, cfg.window_s, &w);
	if (rc != FBX_OK)
		return rc;
	*over = fbxi_window_sum(&w, e->now) + ndev > fbxi_limit_cap(&cfg, fleet);
	return FBX_OK;
}

/* Counting a target: devices, per platform and per group. */
struct count_ctx {
	int platform;
	uint32_t n;
	uint32_t per_platform[FBX_PLATFORM_COUNT];
	struct fbx_group_count *groups;
	size_t ngroups, cap;
	int tally_groups;
	int err;
};

static void
tally(struct count_ctx *k, const struct fbx_device *d)
{
	if (k->platform != FBX_PLATFORM_ANY && d->platform != k->platform)
		return;
	k->n++;
	if (d->platform < FBX_PLATFORM_COUNT)
		k->per_platform[d->platform]++;
	if (!k->tally_groups)
		return;
	for (unsigned i = 0; i < d->ngroups; i++) {
		size_t j;
		for (j = 0; j < k->ngroups; j++) {
			if (strcmp(k->groups[j].name, d->groups[i]) == 0)
				break;
		}
		if (j == k->ngroups) {
			if (k->ngroups == k->cap) {
				size_t ncap = k->cap ? k->cap * 2 : 16;
				struct fbx_group_count *ng;
				if (ncap > 1000)
					continue;
				ng = realloc(k->groups, ncap * sizeof(*ng));
				if (ng == NULL) {
					k->err = FBX_ENOMEM;
					continue;
				}
				k->groups = ng;
				k->cap = ncap;
			}
			memset(&k->groups[j], 0, sizeof(k->groups[j]));
			snprintf(k->groups[j].name, sizeof(k->groups[j].name),
			    "%s", d->groups[i]);
			k->ngroups++;
		}
		k->groups[j].count++;
	}
}

static int
count_cb(void *arg, const struct fbx_device *d)
{
	tally(arg, d);
	return 0;
}

/* target_count - how many devices a command reaches now. Cheap for an
 * organisation-wide target without filter (the registry's count); a scan
 * otherwise, or when a dry run wants the breakdown. */
static int
target_count(struct fbx_engine *e, const struct fbx_command *c,
    uint32_t fleet, struct count_ctx *k)
{
	int rc = FBX_OK;

	k->platform = c->platform;
	if (c->target_kind == FBX_TARGET_ORG &&
	    c->platform == FBX_PLATFORM_ANY && !k->tally_groups) {
		k->n = fleet;
		return FBX_OK;
	}
	if (c->target_kind == FBX_TARGET_DEVICES) {
		for (uint32_t i = 0; i < c->ndev_ids && rc == FBX_OK; i++) {
			struct fbx_device d;
			rc = fbx_store_dev_get(e->txn, c->org, c->dev_ids[i], &d);
			if (rc == FBX_OK)
				tally(k, &d);
			else if (rc == FBX_ENOT_FOUND)
				rc = FBX_OK;
		}
		return rc;
	}
	rc = fbx_store_dev_scan(e->txn, c->org,
	    c->target_kind == FBX_TARGET_GROUP ? c->group : NULL, NULL, 0,
	    count_cb, k);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	return rc != FBX_OK ? rc : k->err;
}

/* dry_run - what the command would do and what would stop it; nothing is
 * journaled or counted. */
static void
dry_run(struct fbx_engine *e, const struct inmsg *in,
    struct fbx_console_req *req, struct fbx_command *c, uint32_t fleet)
{
	struct fbx_console_rep rep;
	struct fbx_dryrun *d = &rep.u.submit.dryrun;
	struct count_ctx k;
	struct fbxi_limit_cfg cfg;
	struct fbxi_window w;
	uint32_t waves[64];
	int own, rc;

	memset(&rep, 0, sizeof(rep));
	memset(&k, 0, sizeof(k));
	k.tally_groups = 1;
	rc = target_count(e, c, fleet, &k);
	if (rc != FBX_OK) {
		set_err(e, rc);
		goto out;
	}
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.submit.dry_run = 1;
	rep.u.submit.device_count = k.n;
	d->devices = k.n;
	memcpy(d->per_platform, k.per_platform, sizeof(d->per_platform));
	d->groups = k.groups;
	d->ngroups = k.ngroups;
	if (c->rollout.enabled) {
		fbxi_rollout_normalize(&c->rollout);
		d->nwaves = fbxi_rollout_plan_waves(&c->rollout, k.n, waves, 64);
		d->waves = waves;
	}
	snprintf(d->verdict, sizeof(d->verdict),
	    "would be admitted: %u devices", k.n);
	if (c->origin == FBX_ORIGIN_AUTOMATIC && fbx_cmd_lock_type(c->type)) {
		struct fbxi_breaker g, b;
		int tripped = 0;
		rc = brk_load(e->txn, "*", reason_of(c), &g, NULL);
		if (rc == FBX_OK)
			rc = brk_load(e->txn, c->org, reason_of(c), &b, NULL);
		if (rc != FBX_OK) {
			set_err(e, rc);
			goto out;
		}
		if (g.state == FBX_BS_OPEN && !g.cfg.shadow) {
			d->stop_err = FBX_EBREAKER_OPEN;
			snprintf(d->verdict, sizeof(d->verdict),
			    "would be held: global breaker */%s is open",
			    reason_of(c));
			goto reply;
		}
		if (fbxi_breaker_admit(&b, e->now, k.n, fleet, &tripped) ==
		    FBXI_HOLD) {
			d->stop_err = FBX_EBREAKER_OPEN;
			snprintf(d->verdict, sizeof(d->verdict),
			    "would be held: breaker %s/%s %s (allowance %u "
			    "devices per %us)",
			    c->org, reason_of(c),
			    tripped ? "would trip" : "is open",
			    fbxi_breaker_allowance(&b, e->now, fleet),
			    b.cfg.window_s);
			goto reply;
		}
	}
	rc = limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc == FBX_OK)
		rc = limit_use_load(e->txn, c->org, c->type, cfg.window_s, &w);
	if (rc != FBX_OK) {
		set_err(e, rc);
		goto out;
	}
	{
		uint32_t cap = fbxi_limit_cap(&cfg, fleet);
		uint64_t used = fbxi_window_sum(&w, e->now);
		if (used + k.n > cap) {
			d->stop_err = FBX_ELIMIT_EXCEEDED;
			snprintf(d->verdict, sizeof(d->verdict),
			    "would be refused: %llu already affected in the "
			    "last %us + %u > %s limit %u; needs a second "
			    "operator's approval",
			    (unsigned long long)used, cfg.window_s, k.n,
			    fbx_cmd_type_name(c->type), cap);
			goto reply;
		}
	}
	{
		struct orgq *q = orgq_get(e, c->org);
		if (q != NULL) {
			orgq_load_rate(e, q);
			if (q->rate.rate_per_s > 0)
				snprintf(d->verdict, sizeof(d->verdict),
				    "would be admitted: %u devices; rate cap "
				    "%u/s paces dispatch over about %u s",
				    k.n, q->rate.rate_per_s,
				    k.n / q->rate.rate_per_s);
		}
	}
reply:
	console_reply(e, in, &rep);
out:
	free(k.groups);
}

static void
handle_submit(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_command *c = &req->u.submit.cmd;
	struct fbx_console_rep rep;
	struct cmdc *cc;
	uint32_t ndev = 0;
	uint64_t prior;
	int rc;

	snprintf(c->org, sizeof(c->org), "%s", req->org);
	snprintf(c->actor, sizeof(c->actor), "%s", req->actor);
	if (c->target_kind == FBX_TARGET_DEVICES && c->ndev_ids > 1) {
		/* a device named twice gets one delivery */
		uint32_t w = 1;
		qsort(c->dev_ids, c->ndev_ids, sizeof(*c->dev_ids), cmp_id);
		for (uint32_t r = 1; r < c->ndev_ids; r++) {
			if (strcmp(c->dev_ids[r], c->dev_ids[w - 1]) != 0)
				memmove(c->dev_ids[w++], c->dev_ids[r],
				    sizeof(*c->dev_ids));
		}
		c->ndev_ids = w;
	}

	rc = fbx_store_org_devices(e->txn, req->org, &ndev);
	if (rc == FBX_EUNKNOWN_ORG) {
		console_error(e, in, req->request_id, req->kind,
		    FBX_EUNKNOWN_ORG, "organisation '%s' has no enrolled device",
		    req->org);
		return;
	}
	if (rc != FBX_OK)
		goto store_fail;

	if (c->idem_key[0] != '\0') {
		rc = fbx_store_idem_get(e->txn, req->org, c->idem_key, &prior);
		if (rc == FBX_OK) {
			struct fbx_command old;
			rc = fbx_store_cmd_get(e->txn, prior, &old);
			if (rc != FBX_OK)
				goto store_fail;
			if (!same_command(&old, c)) {
				fbx_command_clear(&old);
				console_error(e, in, req->request_id, req->kind,
				    FBX_EIDEMPOTENCY_CONFLICT,
				    "idempotency key '%s' already names "
				    "command %llu with different content",
				    c->idem_key, (unsigned long long)prior);
				return;
			}
			memset(&rep, 0, sizeof(rep));
			rep.request_id = req->request_id;
			rep.kind = req->kind;
			rep.u.submit.command_id = prior;
			rep.u.submit.duplicate = 1;
			cc = cmd_find(e, prior);
			rep.u.submit.device_count =
			    cc ? cc->c.ndeliveries : old.ndeliveries;
			rep.u.submit.state = cc ? cc->c.state : old.state;
			fbx_command_clear(&old);
			console_reply(e, in, &rep);
			return;
		}
		if (rc != FBX_ENOT_FOUND)
			goto store_fail;
	}

	switch (c->target_kind) {
	case FBX_TARGET_DEVICES:
		if (c->ndev_ids == 0) {
			console_error(e, in, req->request_id, req->kind,
			    FBX_EEMPTY_TARGET, "target lists no device");
			return;
		}
		for (uint32_t i = 0; i < c->ndev_ids; i++) {
			struct fbx_device dev;
			rc = fbx_store_dev_get(
			    e->txn, req->org, c->dev_ids[i], &dev);
			if (rc == FBX_ENOT_FOUND) {
				console_error(e, in, req->request_id,
				    req->kind, FBX_EUNKNOWN_DEVICE,
				    "device '%s' is not enrolled in "
				    "organisation '%s'",
				    c->dev_ids[i], req->org);
				return;
			}
			if (rc != FBX_OK)
				goto store_fail;
		}
		break;
	case FBX_TARGET_GROUP:
	case FBX_TARGET_ORG: {
		struct any_ctx a = { c->platform, 0 };
		if (c->target_kind == FBX_TARGET_ORG &&
		    ndev > FBX_DEVICES_PER_CMD_MAX &&
		    c->platform == FBX_PLATFORM_ANY) {
			console_error(e, in, req->request_id, req->kind,
			    FBX_ETOO_MANY,
			    "organisation has %u devices; one command "
			    "reaches at most %u",
			    ndev, FBX_DEVICES_PER_CMD_MAX);
			return;
		}
		rc = fbx_store_dev_scan(e->txn, req->org,
		    c->target_kind == FBX_TARGET_GROUP ? c->group : NULL, NULL,
		    0, any_dev_cb, &a);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			goto store_fail;
		if (!a.found) {
			console_error(e, in, req->request_id, req->kind,
			    FBX_EEMPTY_TARGET,
			    "target selects no device (%s%s%s, platform %s)",
			    fbx_target_kind_name(c->target_kind),
			    c->target_kind == FBX_TARGET_GROUP ? " " : "",
			    c->group, fbx_platform_name(c->platform));
			return;
		}
		break;
	}
	default:
		console_error(e, in, req->request_id, req->kind,
		    FBX_EINVAL, "unknown target kind");
		return;
	}

	/* safety controls: count what the command reaches, then the
	 * breaker (automatic lock-type commands), then the blast-radius
	 * limit */
	c->priority = (uint8_t)priority_of(c);
	if (c->rollout.enabled) {
		if (c->rollout.ngroups > 0 &&
		    c->target_kind != FBX_TARGET_ORG) {
			console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL,
			    "a rollout through groups needs an "
			    "organisation-wide target");
			return;
		}
		fbxi_rollout_normalize(&c->rollout);
		memset(&c->ro, 0, sizeof(c->ro));
	}
	if (req->dry_run) {
		dry_run(e, in, req, c, ndev);
		return;
	}
	{
		struct count_ctx k;
		int held = 0;
		memset(&k, 0, sizeof(k));
		rc = target_count(e, c, ndev, &k);
		if (rc != FBX_OK)
			goto store_fail;
		if (k.n == 0) {
			console_error(e, in, req->request_id, req->kind,
			    FBX_EEMPTY_TARGET,
			    "target selects no device (platform %s)",
			    fbx_platform_name(c->platform));
			return;
		}
		if (c->origin == FBX_ORIGIN_AUTOMATIC &&
		    fbx_cmd_lock_type(c->type)) {
			int over = 0;
			rc = limit_over(e, c, k.n, ndev, &over);
			if (rc == FBX_OK)
				rc = breaker_gate(e, c, k.n, ndev, over, &held);
			if (rc != FBX_OK)
				goto store_fail;
		}
		if (!held) {
			rc = limit_gate(e, in, req, c, k.n, ndev, 0);
			if (rc == FBX_ELIMIT_EXCEEDED ||
			    rc == FBX_EAPPROVAL_INVALID)
				return;
			if (rc != FBX_OK)
				goto store_fail;
		}
		c->state = held ? FBX_C_HELD : FBX_C_EXPANDING;
	}
	c->created_ms = e->now;
	if (c->ttl_s == 0)
		c->ttl_s = e->o.default_ttl_s;
	if (c->ttl_s > 30u * 86400)
		c->ttl_s = 30u * 86400;
	c->expires_ms = e->now + (int64_t)c->ttl_s * 1000;
	c->ndeliveries = 0;
	memset(c->counts, 0, sizeof(c->counts));
	c->cursor[0] = '\0';
	c->cursor_idx = 0;
	rc = fbx_store_cmd_append(e->txn, c);
	if (rc != FBX_OK)
		goto store_fail;
	e->last_cmd_id = c->id;
	cc = cmd_cache_add(e, c);
	if (cc == NULL) {
		set_err(e, FBX_ENOMEM);
		return;
	}
	/* small targets are expanded in this same transaction, so the reply
	 * can say how many devices the command reaches */
	expand_inline(e, cc);
	if (e->txn_err != FBX_OK)
		return;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.submit.command_id = cc->c.id;
	rep.u.submit.device_count = cc->c.ndeliveries;
	rep.u.submit.state = cc->c.state;
	snprintf(rep.u.submit.held_by, sizeof(rep.u.submit.held_by), "%s",
	    cc->c.held_by);
	audit(e, req->org, req->actor, "submit", cc->c.held_by,
	    "{\"command\":%llu,\"type\":\"%s\",\"origin\":\"%s\","
	    "\"reason\":\"%s\",\"target\":\"%s\",\"group\":\"%s\","
	    "\"devices\":%u,\"state\":\"%s\",\"approved_by\":\"%s\","
	    "\"rollout\":%s}",
	    (unsigned long long)cc->c.id, fbx_cmd_type_name(cc->c.type),
	    fbx_origin_name(cc->c.origin), cc->c.reason,
	    fbx_target_kind_name(cc->c.target_kind), cc->c.group,
	    cc->c.ndeliveries, fbx_cstate_name(cc->c.state), cc->c.approved_by,
	    cc->c.rollout.enabled ? "true" : "false");
	console_reply(e, in, &rep);
	FBX_LOGD("accepted command %llu for %s by %s",
	    (unsigned long long)cc->c.id, req->org, req->actor);
	return;
store_fail:
	set_err(e, rc);
}

struct page_ctx {
	struct fbx_delivery *d;
	size_t n, cap;
	int state;
	uint64_t last;
	uint32_t scanned;
};

static int
page_cb(void *arg, const struct fbx_delivery *d)
{
	struct page_ctx *p = arg;

	p->last = d->id;
	p->scanned++;
	if (p->state != FBX_D_NONE && d->state != p->state)
		return p->scanned >= 100000; /* bound the work of one call */
	p->d[p->n++] = *d;
	return p->n >= p->cap;
}

static void
handle_get(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_command loaded;
	const struct fbx_command *c;
	struct cmdc *cc;
	struct page_ctx p;
	uint64_t id = req->u.get.command_id, from, to;
	int rc;

	memset(&rep, 0, sizeof(rep));
	memset(&loaded, 0, sizeof(loaded));
	memset(&p, 0, sizeof(p));
	cc = cmd_find(e, id);
	if (cc != NULL) {
		c = &cc->c;
	} else {
		rc = fbx_store_cmd_get(e->txn, id, &loaded);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			set_err(e, rc);
			return;
		}
		c = rc == FBX_OK ? &loaded : NULL;
	}
	/* another organisation's command does not exist for this caller */
	if (c == NULL || strcmp(c->org, req->org) != 0) {
		console_error(e, in, req->request_id, req->kind,
		    FBX_ENOT_FOUND, "no command %llu in organisation '%s'",
		    (unsigned long long)id, req->org);
		goto out;
	}
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.command.info = *c;
	rep.u.command.info.payload = NULL;
	rep.u.command.info.payload_len = 0;
	rep.u.command.info.dev_ids = NULL;
	rep.u.command.info.ndev_ids = 0;
	if (req->u.get.limit > 0) {
		p.cap = req->u.get.limit > FBX_PAGE_MAX ? FBX_PAGE_MAX
		                                        : req->u.get.limit;
		p.d = malloc(p.cap * sizeof(*p.d));
		if (p.d == NULL) {
			set_err(e, FBX_ENOMEM);
			goto out;
		}
		p.state = req->u.get.state;
		from = FBX_DLV_ID(id, 0);
		if (req->u.get.after >= from)
			from = req->u.get.after + 1;
		to = FBX_DLV_ID(id, 0) + c->ndeliveries;
		if (from < to) {
			rc = fbx_store_dlv_scan(
			    e->txn, from, to, 0, page_cb, &p);
			if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
				set_err(e, rc);
				goto out;
			}
			if (p.last + 1 < to && p.last != 0)
				rep.u.command.next_after = p.last;
		}
		rep.u.command.dlv = p.d;
		rep.u.command.ndlv = p.n;
	}
	console_reply(e, in, &rep);
out:
	free(p.d);
	fbx_command_clear(&loaded);
}

struct list_ctx {
	struct fbx_engine *e;
	struct fbx_command *v;
	size_t n, cap;
};

static int
list_cb(void *arg, const struct fbx_command *c)
{
	struct list_ctx *l = arg;
	struct cmdc *cc = cmd_find(l->e, c->id);
	struct fbx_command *o = &l->v[l->n++];

	/* active commands: the cache has the live counts */
	*o = cc ? cc->c : *c;
	o->payload = NULL;
	o->payload_len = 0;
	o->dev_ids = NULL;
	o->ndev_ids = 0;
	return l->n >= l->cap;
}

static void
handle_list(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct list_ctx l = { e, NULL, 0, 0 };
	uint32_t limit = req->u.list.limit;
	int rc;

	if (limit == 0)
		limit = 100;
	if (limit > FBX_PAGE_MAX)
		limit = FBX_PAGE_MAX;
	l.cap = limit;
	l.v = malloc(l.cap * sizeof(*l.v));
	if (l.v == NULL) {
		set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbx_store_cmd_list(e->txn, req->org, req->u.list.since_ms,
	    req->u.list.until_ms, req->u.list.after, limit, list_cb, &l);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		set_err(e, rc);
		free(l.v);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.commands.cmds = l.v;
	rep.u.commands.n = l.n;
	if (l.n == limit)
		rep.u.commands.next_after = l.v[l.n - 1].id;
	console_reply(e, in, &rep);
	free(l.v);
}

static void
handle_enroll(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	uint32_t created = 0, updated = 0;

	for (size_t i = 0; i < req->u.enroll.n; i++) {
		struct fbx_device *d = &req->u.enroll.devs[i], old;
		int made = 0, rc;
		snprintf(d->org, sizeof(d->org), "%s", req->org);
		rc = fbx_store_dev_get(e->txn, req->org, d->id, &old);
		if (rc == FBX_OK) {
			/* an update keeps what the engine learnt itself */
			d->enrolled_ms = old.enrolled_ms;
			if (d->last_checkin_ms < old.last_checkin_ms)
				d->last_checkin_ms = old.last_checkin_ms;
			d->online = old.online;
			if (d->attestation == FBX_ATTEST_UNKNOWN)
				d->attestation = old.attestation;
		} else if (rc == FBX_ENOT_FOUND) {
			d->enrolled_ms = e->now;
			d->online = 1;
		} else {
			set_err(e, rc);
			return;
		}
		rc = fbx_store_dev_put(e->txn, d, &made);
		if (rc != FBX_OK) {
			set_err(e, rc);
			return;
		}
		if (made)
			created++;
		else
			updated++;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.enroll.created = created;
	rep.u.enroll.updated = updated;
	audit(e, req->org, req->actor, "devices.enroll", NULL,
	    "{\"created\":%u,\"updated\":%u}", created, updated);
	console_reply(e, in, &rep);
}

struct marker_ctx {
	char (*keys)[FBX_KV_KEY_MAX];
	size_t n, cap;
};

static int
marker_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct marker_ctx *m = arg;

	(void)val;
	(void)len;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		char(*nk)[FBX_KV_KEY_MAX] = realloc(m->keys, ncap * sizeof(*nk));
		if (nk == NULL)
			return 1;
		m->keys = nk;
		m->cap = ncap;
	}
	snprintf(m->keys[m->n++], FBX_KV_KEY_MAX, "%s", key);
	return 0;
}

/* kv_delete_prefix - delete every engine-owned record under prefix. */
static int
kv_delete_prefix(struct fbx_engine *e, const char *prefix)
{
	struct marker_ctx m;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = fbx_store_kv_scan(e->txn, prefix, marker_cb, &m);
	for (size_t i = 0; i < m.n && rc == FBX_OK; i++)
		rc = fbx_store_kv_del(e->txn, m.keys[i]);
	free(m.keys);
	return rc;
}

static void
handle_remove(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	uint32_t removed = 0, ndev;
	int rc = fbx_store_org_devices(e->txn, req->org, &ndev);

	if (rc == FBX_EUNKNOWN_ORG) {
		console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	for (size_t i = 0; i < req->u.remove.n && rc == FBX_OK; i++) {
		rc = fbx_store_dev_del(e->txn, req->org, req->u.remove.ids[i]);
		if (rc == FBX_OK) {
			char prefix[FBX_KV_KEY_MAX];
			removed++;
			/* its policy history goes with it */
			note_printf(prefix, sizeof(prefix), "pol/%s/%s/", req->org,
			    req->u.remove.ids[i]);
			rc = kv_delete_prefix(e, prefix);
		}
		else if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
	}
	if (rc != FBX_OK) {
		set_err(e, rc);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.remove.removed = removed;
	audit(e, req->org, req->actor, "devices.remove", NULL,
	    "{\"removed\":%u}", removed);
	console_reply(e, in, &rep);
}

struct devlist_ctx {
	struct fbx_device *v;
	size_t n, cap;
};

static int
devlist_cb(void *arg, const struct fbx_device *d)
{
	struct devlist_ctx *l = arg;

	l->v[l->n++] = *d;
	return l->n >= l->cap;
}

static void
handle_list_devices(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct devlist_ctx l = { NULL, 0, 0 };
	uint32_t total = 0, limit = req->u.list_devices.limit;
	int rc = fbx_store_org_devices(e->txn, req->org, &total);

	if (rc == FBX_EUNKNOWN_ORG) {
		console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	if (rc != FBX_OK) {
		set_err(e, rc);
		return;
	}
	if (limit == 0)
		limit = 100;
	if (limit > FBX_PAGE_MAX)
		limit = FBX_PAGE_MAX;
	l.cap = limit;
	l.v = malloc(l.cap * sizeof(*l.v));
	if (l.v == NULL) {
		set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbx_store_dev_scan(e->txn, req->org, req->u.list_devices.group,
	    req->u.list_devices.after, limit, devlist_cb, &l);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		set_err(e, rc);
		free(l.v);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.devices.devs = l.v;
	rep.u.devices.n = l.n;
	rep.u.devices.total = total;
	if (l.n == limit)
		snprintf(rep.u.devices.next_after,
		    sizeof(rep.u.devices.next_after), "%s", l.v[l.n - 1].id);
	console_reply(e, in, &rep);
	free(l.v);
}

struct grp_ctx {
	struct fbx_group_count *v;
	size_t n, cap;
};

static int
grp_cb(void *arg, const char *group, uint32_t count)
{
	struct grp_ctx *g = arg;

	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 16;
		struct fbx_group_count *nv;
		if (ncap > FBX_PAGE_MAX)
			return 1;
		nv = realloc(g->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return 1;
		g->v = nv;
		g->cap = ncap;
	}
	snprintf(g->v[g->n].name, sizeof(g->v[g->n].name), "%s", group);
	g->v[g->n].count = count;
	g->n++;
	return 0;
}

static void
handle_list_groups(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct grp_ctx g = { NULL, 0, 0 };
	uint32_t total;
	int rc = fbx_store_org_devices(e->txn, req->org, &total);

	if (rc == FBX_EUNKNOWN_ORG) {
		console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	if (rc == FBX_OK)
		rc = fbx_store_group_list(e->txn, req->org, grp_cb, &g);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		set_err(e, rc);
		free(g.v);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.groups.groups = g.v;
	rep.u.groups.n = g.n;
	console_reply(e, in, &rep);
	free(g.v);
}

static void
handle_ping(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_engine_stats *s = &rep.u.pong;
	struct fbx_store_stat ss;
	size_t pos = 0;
	uint64_t k, v;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	snprintf(s->version, sizeof(s->version), "%s", FBX_VERSION);
	s->uptime_ms = (uint64_t)(mono_ms() - e->started_ms);
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (g->dead)
			continue;
		s->gateways++;
		s->deliveries_inflight += g->inflight.len;
	}
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		s->commands_active++;
		s->deliveries_queued += cc->c.counts[FBX_D_QUEUED];
		s->deliveries_pending += cc->c.counts[FBX_D_PENDING];
	}
	s->commits = e->commits;
	if (fbx_store_stat(e->st, &ss) == FBX_OK)
		s->store_bytes = ss.file_bytes;
	console_reply(e, in, &rep);
}

/* ------------------------------------------------ safety-control requests */

struct brk_list_ctx {
	struct fbx_engine *e;
	struct fbx_breaker_info *v;
	size_t n, cap;
	const char *reason; /* filter, "" = all */
	uint32_t fleet;
	int err;
};

/* held_count - commands now held by breaker key "org/reason". */
static uint64_t
held_count(struct fbx_engine *e, const char *key)
{
	size_t pos = 0;
	uint64_t k, v, n = 0;

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (cc->c.state == FBX_C_HELD &&
		    strcmp(cc->c.held_by, key) == 0)
			n++;
	}
	return n;
}

static int
brk_list_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct brk_list_ctx *l = arg;
	struct fbxi_breaker b;
	struct fbx_breaker_info *o;
	const char *org = key + 4, *slash = strchr(org, '/');
	char hk[2 * FBX_ID_MAX + 2];

	if (slash == NULL || len != sizeof(b))
		return 0;
	memcpy(&b, val, sizeof(b));
	if (b.version != FBXI_BRK_VERSION)
		return 0;
	if (l->reason[0] != '\0' && strcmp(slash + 1, l->reason) != 0)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		struct fbx_breaker_info *nv;
		if (ncap > FBX_PAGE_MAX)
			return 1;
		nv = realloc(l->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			l->err = FBX_ENOMEM;
			return 1;
		}
		l->v = nv;
		l->cap = ncap;
	}
	o = &l->v[l->n++];
	memset(o, 0, sizeof(*o));
	snprintf(o->org, sizeof(o->org), "%.*s", (int)(slash - org), org);
	snprintf(o->reason, sizeof(o->reason), "%s", slash + 1);
	o->state = b.state;
	o->manual = b.manual;
	o->cfg = b.cfg;
	o->window_count = fbxi_window_sum(&b.win, l->e->now);
	o->baseline = b.baseline_x1000 / 1000;
	snprintf(hk, sizeof(hk), "%s/%s", o->org, o->reason);
	o->held = held_count(l->e, hk);
	o->would_hold = b.would_hold;
	o->trips = b.trips;
	o->tripped_ms = b.tripped_ms;
	snprintf(o->tripped_by, sizeof(o->tripped_by), "%s", b.tripped_by);
	snprintf(o->note, sizeof(o->note), "%s", b.note);
	if (strcmp(o->org, "*") != 0) {
		o->fleet = l->fleet;
		o->allowance = fbxi_breaker_allowance(&b, l->e->now, l->fleet);
	}
	return 0;
}

/* release_held - a held command goes on after a reset: through its
 * organisation's breaker if that one is still open (a global reset does
 * not open an organisation's), and through the blast-radius limit. */
static int
release_held(struct fbx_engine *e, struct cmdc *cc, const char *who,
    const char *note, int *refused)
{
	struct fbx_command *c = &cc->c;
	struct count_ctx k;
	uint32_t fleet = 0;
	int rc;

	*refused = 0;
	if (c->held_by[0] == '*') {
		struct fbxi_breaker b;
		rc = brk_load(e->txn, c->org, reason_of(c), &b, NULL);
		if (rc != FBX_OK)
			return rc;
		if (b.state == FBX_BS_OPEN && !b.cfg.shadow) {
			snprintf(c->held_by, sizeof(c->held_by), "%s/%s",
			    c->org, reason_of(c));
			cc->dirty = 1;
			return FBX_OK;
		}
	}
	rc = fbx_store_org_devices(e->txn, c->org, &fleet);
	if (rc != FBX_OK && rc != FBX_EUNKNOWN_ORG)
		return rc;
	memset(&k, 0, sizeof(k));
	rc = target_count(e, c, fleet, &k);
	if (rc != FBX_OK)
		return rc;
	rc = limit_gate(e, NULL, NULL, c, k.n, fleet, 0);
	snprintf(c->resolved_by, sizeof(c->resolved_by), "%s", who);
	if (rc == FBX_ELIMIT_EXCEEDED) {
		c->state = FBX_C_DISCARDED;
		snprintf(c->note, sizeof(c->note),
		    "release refused by the %s blast-radius limit",
		    fbx_cmd_type_name(c->type));
		*refused = 1;
		cc->dirty = 1;
		return FBX_OK;
	}
	if (rc != FBX_OK)
		return rc;
	c->state = FBX_C_EXPANDING;
	note_printf(c->note, sizeof(c->note), "released: %s", note);
	/* its time to live starts again at the release */
	c->expires_ms = e->now + (int64_t)c->ttl_s * 1000;
	xlist_add(e, cc);
	cc->dirty = 1;
	return FBX_OK;
}

static void
handle_breaker(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct brk_list_ctx l;
	struct fbxi_breaker b;
	const char *scope = req->u.breaker.global ? "*" : req->org;
	const char *reason = req->u.breaker.reason;
	char key[FBX_KV_KEY_MAX], hk[2 * FBX_ID_MAX + 2];
	uint32_t fleet = 0;
	int exists = 0, rc;

	memset(&rep, 0, sizeof(rep));
	memset(&l, 0, sizeof(l));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rc = fbx_store_org_devices(e->txn, req->org, &fleet);
	if (rc == FBX_EUNKNOWN_ORG) {
		console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	if (rc != FBX_OK)
		goto fail;
	switch (req->u.breaker.op) {
	case FBX_BRK_STATUS:
		break;
	case FBX_BRK_TRIP:
		rc = brk_load(e->txn, scope, reason, &b, &exists);
		if (rc != FBX_OK)
			goto fail;
		fbxi_breaker_trip(&b, e->now, req->actor, req->u.breaker.note, 1);
		rc = brk_save(e->txn, scope, reason, &b);
		if (rc != FBX_OK)
			goto fail;
		emit_event(e, FBX_EV_BREAKER_TRIPPED, scope, reason, req->actor,
		    0, 0, 0, "tripped by hand: %s", req->u.breaker.note);
		audit(e, scope, req->actor, "breaker.trip",
		    req->u.breaker.note,
		    "{\"breaker\":\"%s/%s\",\"requested_in\":\"%s\"}", scope,
		    reason, req->org);
		break;
	case FBX_BRK_RESET: {
		size_t pos = 0;
		uint64_t k, v;
		uint32_t released = 0, discarded = 0, refused = 0;
		rc = brk_load(e->txn, scope, reason, &b, &exists);
		if (rc != FBX_OK)
			goto fail;
		snprintf(hk, sizeof(hk), "%s/%s", scope, reason);
		if (b.state != FBX_BS_OPEN && held_count(e, hk) == 0) {
			console_error(e, in, req->request_id, req->kind,
			    FBX_ESTATE, "breaker %s is not open", hk);
			return;
		}
		fbxi_breaker_reset(&b, e->now, req->actor, req->u.breaker.note);
		rc = brk_save(e->txn, scope, reason, &b);
		if (rc != FBX_OK)
			goto fail;
		while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
			struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
			int ref = 0;
			if (cc->c.state != FBX_C_HELD ||
			    strcmp(cc->c.held_by, hk) != 0)
				continue;
			if (req->u.breaker.on_reset == FBX_RESET_DISCARD) {
				cc->c.state = FBX_C_DISCARDED;
				snprintf(cc->c.resolved_by,
				    sizeof(cc->c.resolved_by), "%s",
				    req->actor);
				note_printf(cc->c.note, sizeof(cc->c.note),
				    "discarded at breaker reset: %s",
				    req->u.breaker.note);
				cc->dirty = 1;
				discarded++;
				continue;
			}
			rc = release_held(e, cc, req->actor,
			    req->u.breaker.note, &ref);
			if (rc != FBX_OK)
				goto fail;
			if (ref)
				refused++;
			else if (cc->c.state == FBX_C_EXPANDING)
				released++;
		}
		rep.u.breaker.released = released;
		rep.u.breaker.discarded = discarded + refused;
		emit_event(e, FBX_EV_BREAKER_RESET, scope, reason, req->actor,
		    0, released + discarded + refused, 0,
		    "reset by hand (%s): %u released, %u discarded, %u "
		    "refused by limits: %s",
		    req->u.breaker.on_reset == FBX_RESET_DISCARD ? "discard"
		                                                : "release",
		    released, discarded, refused, req->u.breaker.note);
		audit(e, scope, req->actor, "breaker.reset",
		    req->u.breaker.note,
		    "{\"breaker\":\"%s\",\"action\":\"%s\",\"released\":%u,"
		    "\"discarded\":%u,\"refused_by_limit\":%u}",
		    hk,
		    req->u.breaker.on_reset == FBX_RESET_DISCARD ? "discard"
		                                                : "release",
		    released, discarded, refused);
		FBX_LOGI("breaker %s reset by %s: %u released, %u discarded, "
		         "%u refused by limits",
		    hk, req->actor, released, discarded, refused);
		break;
	}
	case FBX_BRK_CONFIGURE:
		rc = brk_load(e->txn, scope, reason, &b, &exists);
		if (rc != FBX_OK)
			goto fail;
		{
			uint32_t old_win = b.cfg.window_s;
			fbxi_breaker_cfg_merge(&b.cfg, &req->u.breaker.cfg);
			if (b.cfg.window_s != old_win)
				fbxi_window_init(&b.win, b.cfg.window_s);
		}
		rc = brk_save(e->txn, scope, reason, &b);
		if (rc != FBX_OK)
			goto fail;
		audit(e, scope, req->actor, "breaker.configure", NULL,
		    "{\"breaker\":\"%s/%s\",\"window_s\":%u,\"min_count\":%u,"
		    "\"share_ppm\":%u,\"baseline_mult\":%u,"
		    "\"global_orgs\":%u,\"shadow\":%s}",
		    scope, reason, b.cfg.window_s, b.cfg.min_count,
		    b.cfg.share_ppm, b.cfg.baseline_mult, b.cfg.global_orgs,
		    b.cfg.shadow ? "true" : "false");
		FBX_LOGI("breaker %s/%s configured by %s: window %us, min %u, "
		         "share %u ppm, baseline x%u, global %u orgs, %s",
		    scope, reason, req->actor, b.cfg.window_s, b.cfg.min_count,
		    b.cfg.share_ppm, b.cfg.baseline_mult, b.cfg.global_orgs,
		    b.cfg.shadow ? "shadow" : "enforcing");
		break;
	default:
		console_error(e, in, req->request_id, req->kind, FBX_EINVAL,
		    "unknown breaker operation");
		return;
	}
	/* answer with the breakers of this organisation and the global ones */
	l.e = e;
	l.reason = req->u.breaker.op == FBX_BRK_STATUS ? reason : reason;
	l.fleet = fleet;
	snprintf(key, sizeof(key), "brk/%s/", req->org);
	rc = fbx_store_kv_scan(e->txn, key, brk_list_cb, &l);
	if (rc == FBX_OK)
		rc = fbx_store_kv_scan(e->txn, "brk/*/", brk_list_cb, &l);
	if (rc == FBX_OK)
		rc = l.err;
	if (rc != FBX_OK)
		goto fail;
	rep.u.breaker.b = l.v;
	rep.u.breaker.n = l.n;
	console_reply(e, in, &rep);
	free(l.v);
	return;
fail:
	free(l.v);
	set_err(e, rc);
}

static void
handle_limit(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_limit_info rows[FBX_CMD_TYPE_COUNT];
	size_t n = 0;
	uint32_t fleet = 0;
	int rc = fbx_store_org_devices(e->txn, req->org, &fleet);

	if (rc != FBX_OK && rc != FBX_EUNKNOWN_ORG)
		goto fail;
	if (req->u.limit.set) {
		struct fbxi_limit_cfg cfg;
		const struct fbx_limit_info *li = &req->u.limit.lim;
		char key[FBX_KV_KEY_MAX];
		if (li->type <= FBX_CMD_NONE || li->type >= FBX_CMD_TYPE_COUNT) {
			console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL, "unknown command type");
			return;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.version = FBXI_LIM_VERSION;
		cfg.max_count = li->max_count;
		cfg.max_share_ppm = li->max_share_ppm > FBX_PPM
		    ? FBX_PPM
		    : li->max_share_ppm;
		cfg.window_s = li->window_s ? li->window_s : 3600;
		snprintf(key, sizeof(key), "limcfg/%s/%s",
		    req->u.limit.global ? "*" : req->org,
		    fbx_cmd_type_name(li->type));
		rc = fbx_store_kv_put(e->txn, key, &cfg, sizeof(cfg));
		if (rc != FBX_OK)
			goto fail;
		audit(e, req->u.limit.global ? "*" : req->org, req->actor,
		    "limit.set", NULL,
		    "{\"limit\":\"%s\",\"max_count\":%u,\"max_share_ppm\":%u,"
		    "\"window_s\":%u}",
		    key, cfg.max_count, cfg.max_share_ppm, cfg.window_s);
		FBX_LOGI("limit %s set by %s: %u devices, %u ppm, per %us", key,
		    req->actor, cfg.max_count, cfg.max_share_ppm, cfg.window_s);
	}
	for (int t = 1; t < FBX_CMD_TYPE_COUNT; t++) {
		struct fbxi_limit_cfg cfg;
		struct fbxi_window w;
		int own = 0;
		const char *scope = req->u.limit.global ? "*" : req->org;
		rc = limit_cfg_load(e->txn, scope, t, &cfg, &own);
		if (rc == FBX_OK)
			rc = limit_use_load(e->txn, req->org, t, cfg.window_s, &w);
		if (rc != FBX_OK)
			goto fail;
		memset(&rows[n], 0, sizeof(rows[n]));
		snprintf(rows[n].org, sizeof(rows[n].org), "%s",
		    own ? req->org : "*");
		rows[n].type = (uint8_t)t;
		rows[n].max_count = cfg.max_count;
		rows[n].max_share_ppm = cfg.max_share_ppm;
		rows[n].window_s = cfg.window_s;
		rows[n].used = req->u.limit.global ? 0 : fbxi_window_sum(&w, e->now);
		n++;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.limit.l = rows;
	rep.u.limit.n = n;
	console_reply(e, in, &rep);
	return;
fail:
	set_err(e, rc);
}

static void
handle_rate(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_rate_info rows[2];
	struct orgq *q = orgq_get(e, req->org);
	int rc;

	if (q == NULL) {
		set_err(e, FBX_ENOMEM);
		return;
	}
	if (req->u.rate.set) {
		struct fbx_rate_info ri = req->u.rate.rate;
		snprintf(ri.org, sizeof(ri.org), "%s",
		    req->u.rate.global ? "*" : req->org);
		rc = rate_save(e->txn, &ri);
		if (rc != FBX_OK) {
			set_err(e, rc);
			return;
		}
		if (req->u.rate.global) {
			e->grate = ri;
			memset(&e->gbucket, 0, sizeof(e->gbucket));
		} else {
			q->rate = ri;
			q->rate_loaded = 1;
			memset(&q->bucket, 0, sizeof(q->bucket));
		}
		audit(e, ri.org, req->actor, "rate.set", NULL,
		    "{\"scope\":\"%s\",\"rate_per_s\":%u,\"burst\":%u,"
		    "\"max_inflight\":%u}",
		    ri.org, ri.rate_per_s, ri.burst, ri.max_inflight);
		FBX_LOGI("rate caps of %s set by %s: %u/s burst %u, %u in "
		         "flight",
		    ri.org, req->actor, ri.rate_per_s, ri.burst,
		    ri.max_inflight);
	}
	orgq_load_rate(e, q);
	rows[0] = q->rate;
	snprintf(rows[0].org, sizeof(rows[0].org), "%s", req->org);
	rows[0].inflight = q->inflight;
	rows[1] = e->grate;
	snprintf(rows[1].org, sizeof(rows[1].org), "*");
	rows[1].inflight = (uint32_t)e->inflight_all;
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rate.r = rows;
	rep.u.rate.n = 2;
	console_reply(e, in, &rep);
}

static void
handle_approve(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct approval_rec a;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "rej/%s/%s", req->org, req->u.approve.token);
	rc = fbx_store_kv_get(e->txn, key, &a, sizeof(a), &len);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && len != sizeof(a))) {
		console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no refused command with token %s in organisation '%s'",
		    req->u.approve.token, req->org);
		return;
	}
	if (rc != FBX_OK) {
		set_err(e, rc);
		return;
	}
	if (strcmp(a.submitter, req->actor) == 0) {
		console_error(e, in, req->request_id, req->kind,
		    FBX_EAPPROVAL_INVALID,
		    "%s submitted this command; a different operator must "
		    "approve it",
		    req->actor);
		return;
	}
	snprintf(a.approver, sizeof(a.approver), "%s", req->actor);
	snprintf(a.note, sizeof(a.note), "%s", req->u.approve.note);
	a.used = 0;
	a.expires_ms = e->now + (int64_t)e->o.approval_ttl_s * 1000;
	snprintf(key, sizeof(key), "appr/%s/%s", req->org, req->u.approve.token);
	rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
	if (rc != FBX_OK) {
		set_err(e, rc);
		return;
	}
	audit(e, req->org, req->actor, "approve", req->u.approve.note,
	    "{\"token\":\"%s\",\"submitter\":\"%s\",\"devices\":%llu,"
	    "\"limit\":%llu,\"expires_ms\":%lld}",
	    req->u.approve.token, a.submitter, (unsigned long long)a.count,
	    (unsigned long long)a.cap, (long long)a.expires_ms);
	FBX_LOGI("org %s: %s approved %s's refused command %s (%llu devices "
	         "against limit %llu): %s",
	    req->org, req->actor, a.submitter, req->u.approve.token,
	    (unsigned long long)a.count, (unsigned long long)a.cap, a.note);
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	snprintf(rep.u.approve.token, sizeof(rep.u.approve.token), "%s",
	    req->u.approve.token);
	snprintf(rep.u.approve.approver, sizeof(rep.u.approve.approver), "%s",
	    req->actor);
	snprintf(rep.u.approve.submitter, sizeof(rep.u.approve.submitter),
	    "%s", a.submitter);
	rep.u.approve.expires_ms = a.expires_ms;
	console_reply(e, in, &rep);
}

static int
cmp_cmd_id(const void *a, const void *b)
{
	uint64_t x = (*(struct cmdc *const *)a)->c.id;
	uint64_t y = (*(struct cmdc *const *)b)->c.id;

	return x < y ? -1 : x > y;
}

static void
handle_list_held(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct cmdc **v = NULL;
	struct fbx_command *out = NULL;
	size_t n = 0, pos = 0, m = 0;
	uint32_t limit = req->u.list_held.limit ? req->u.list_held.limit : 100;
	uint64_t k, val;

	if (limit > FBX_PAGE_MAX)
		limit = FBX_PAGE_MAX;
	v = malloc((e->cmds.len + 1) * sizeof(*v));
	out = malloc(limit * sizeof(*out));
	if (v == NULL || out == NULL) {
		set_err(e, FBX_ENOMEM);
		goto out;
	}
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &val)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)val;
		if (cc->c.state != FBX_C_HELD ||
		    strcmp(cc->c.org, req->org) != 0 ||
		    cc->c.id <= req->u.list_held.after)
			continue;
		if (req->u.list_held.reason[0] != '\0' &&
		    strcmp(reason_of(&cc->c), req->u.list_held.reason) != 0)
			continue;
		v[n++] = cc;
	}
	qsort(v, n, sizeof(*v), cmp_cmd_id);
	for (size_t i = 0; i < n && m < limit; i++) {
		out[m] = v[i]->c;
		out[m].payload = NULL;
		out[m].payload_len = 0;
		out[m].dev_ids = NULL;
		out[m].ndev_ids = 0;
		m++;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.commands.cmds = out;
	rep.u.commands.n = m;
	if (m < n && m > 0)
		rep.u.commands.next_after = out[m - 1].id;
	console_reply(e, in, &rep);
out:
	free(v);
	free(out);
}

/* ------------------------------------------------------ staged rollouts */

static uint32_t
ro_stages(const struct fbx_command *c)
{
	return c->rollout.ngroups > 0 ? c->rollout.ngroups + 1u : 1u;
}

/* ro_tally - count a delivery's move in the current wave. */
static void
ro_tally(struct cmdc *cc, uint64_t id, int from, int to, uint16_t code)
{
	uint32_t idx = FBX_DLV_IDX(id);
	int before, after;

	if (!cc->c.rollout.enabled || idx < cc->c.ro.wave_start ||
	    idx >= cc->c.ro.wave_start + cc->c.ro.wave_size)
		return;
	before = fbx_dstate_terminal(from) || from == FBX_D_PENDING;
	after = fbx_dstate_terminal(to) || to == FBX_D_PENDING;
	if (after && !before)
		cc->w_settled++;
	else if (before && !after && cc->w_settled > 0)
		cc->w_settled--;
	if (to == FBX_D_SUCCEEDED && from != FBX_D_SUCCEEDED)
		cc->w_ok++;
	if (to == FBX_D_FAILED && from != FBX_D_FAILED) {
		cc->w_fail++;
		if (code == cc->w_topcode || cc->w_topcode_n == 0) {
			cc->w_topcode = code;
			cc->w_topcode_n++;
		} else if (--cc->w_topcode_n == 0) {
			/* majority vote: the code most failures share */
			cc->w_topcode = code;
			cc->w_topcode_n = 1;
		}
	}
}

static void
ro_release(struct fbx_engine *e, struct cmdc *cc, uint32_t size)
{
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint64_t base = FBX_DLV_ID(cc->c.id, 0);

	for (uint32_t i = 0; i < size; i++) {
		if (orgq_push(e, cc->q, FBX_PRIO_BULK, base + ro->released + i) !=
		    FBX_OK) {
			set_err(e, FBX_ENOMEM);
			return;
		}
	}
	ro->wave_start = ro->released;
	ro->wave_size = size;
	ro->released += size;
	ro->wave++;
	ro->wave_started_ms = e->now;
	ro->state = FBX_RO_RUNNING;
	cc->w_ok = cc->w_fail = cc->w_settled = 0;
	cc->w_topcode = 0;
	cc->w_topcode_n = 0;
	cc->judge_off = 0;
	cc->dirty = 1;
	FBX_LOGI("rollout %llu: stage %u wave %u: %u devices (%u of %u out)",
	    (unsigned long long)cc->c.id, ro->stage, ro->wave, size,
	    ro->released, cc->c.ndeliveries);
}

static void
ro_advance_stage(struct fbx_engine *e, struct cmdc *cc)
{
	cc->c.cursor_idx++;
	cc->c.cursor[0] = '\0';
	cc->c.ro.stage++;
	cc->c.ro.wave = 0;
	cc->c.ro.state = FBX_RO_NONE;
	cc->c.state = FBX_C_EXPANDING;
	xlist_add(e, cc);
	cc->dirty = 1;
}

/* ro_next - after a wave has baked: the next wave, the next group, or
 * the end of the rollout. */
static void
ro_next(struct fbx_engine *e, struct cmdc *cc)
{
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint32_t remaining = cc->c.ndeliveries - ro->released, size;

	if (remaining > 0) {
		if (ro->wave == 0)
			size = fbxi_rollout_wave(
			    &cc->c.rollout, remaining, 0, 0, 0);
		else
			size = fbxi_rollout_wave(&cc->c.rollout,
			    cc->c.ndeliveries, ro->released, ro->wave,
			    ro->wave_size);
		ro_release(e, cc, size);
		return;
	}
	if (cc->c.cursor_idx + 1 < ro_stages(&cc->c)) {
		if (cc->c.rollout.approve_groups) {
			if (ro->state != FBX_RO_AWAITING_APPROVAL) {
				ro->state = FBX_RO_AWAITING_APPROVAL;
				snprintf(ro->note, sizeof(ro->note),
				    "group '%s' done; the next group needs "
				    "an operator's approval",
				    cc->c.rollout.groups[cc->c.cursor_idx]);
				cc->dirty = 1;
				FBX_LOGI("rollout %llu: %s",
				    (unsigned long long)cc->c.id, ro->note);
			}
			return;
		}
		ro_advance_stage(e, cc);
		return;
	}
	ro->state = FBX_RO_DONE;
	cc->dirty = 1;
	FBX_LOGI("rollout %llu done: %u waves in the last group, %u devices",
	    (unsigned long long)cc->c.id, ro->wave, ro->released);
	cmd_maybe_done(cc);
}

static void
ro_pause(struct fbx_engine *e, struct cmdc *cc, const char *actor,
    const char *why)
{
	cc->c.ro.state = FBX_RO_PAUSED;
	snprintf(cc->c.ro.note, sizeof(cc->c.ro.note), "%s", why);
	cc->dirty = 1;
	emit_event(e, FBX_EV_ROLLOUT_PAUSED, cc->c.org, reason_of(&cc->c),
	    actor, cc->c.id, cc->w_fail, cc->c.ro.wave_size, "%s", why);
}

/* ro_judge - a running wave: pause at the failure threshold (judged once
 * min_results are in), bake when every device of the wave settled with
 * enough successes. */
static void
ro_judge(struct fbx_engine *e, struct cmdc *cc)
{
	const struct fbx_rollout_plan *p = &cc->c.rollout;
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint32_t results = cc->w_ok + cc->w_fail;
	char why[FBX_NOTE_MAX];

	if (!cc->judge_off && results >= p->min_results &&
	    (uint64_t)cc->w_fail * FBX_PPM >= (uint64_t)p->failure_ppm * results) {
		snprintf(why, sizeof(why),
		    "failure threshold: %u of %u results in wave %u failed "
		    "(most with code %u)",
		    cc->w_fail, results, ro->wave, cc->w_topcode);
		ro_pause(e, cc, "engine", why);
		if (cc->w_topcode_n > 0 && cc->w_fail >= p->min_results)
			emit_event(e, FBX_EV_FAILURE_SPIKE, cc->c.org,
			    reason_of(&cc->c), "engine", cc->c.id, cc->w_fail,
			    results,
			    "delivery failures spike with code %u: rollout "
			    "paused",
			    cc->w_topcode);
		return;
	}
	if (cc->w_settled < ro->wave_size)
		return;
	/* success is judged on the results that came back: devices still
	 * offline (pending) settle the wave without counting against it */
	if (!cc->judge_off &&
	    (results == 0 ||
	        (uint64_t)cc->w_ok * FBX_PPM <
	            (uint64_t)p->success_ppm * results)) {
		snprintf(why, sizeof(why),
		    "wave %u: %u of %u results succeeded, below the %u ppm "
		    "needed to advance",
		    ro->wave, cc->w_ok, results, p->success_ppm);
		ro_pause(e, cc, "engine", why);
		return;
	}
	ro->state = FBX_RO_BAKING;
	ro->bake_until_ms = e->now + (int64_t)p->bake_s * 1000;
	cc->dirty = 1;
}

static void
rollout_step(struct fbx_engine *e)
{
	size_t pos = 0;
	uint64_t k, v;
	struct cmdc *todo[256];
	size_t n = 0;

	/* collect first: releasing may grow queues but never the cache */
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v) && n < 256) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (cc->c.rollout.enabled && cc->c.state == FBX_C_ACTIVE &&
		    !cc->expired && !cc->cancelling)
			todo[n++] = cc;
	}
	for (size_t i = 0; i < n && e->txn_err == FBX_OK; i++) {
		struct cmdc *cc = todo[i];
		switch (cc->c.ro.state) {
		case FBX_RO_RUNNING:
			ro_judge(e, cc);
			break;
		case FBX_RO_BAKING:
			if (e->now >= cc->c.ro.bake_until_ms)
				ro_next(e, cc);
			break;
		default:
			break;
		}
	}
}

static void
handle_rollout(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_command loaded;
	struct cmdc *cc = cmd_find(e, req->u.rollout.command_id);
	const struct fbx_command *c;
	struct fbx_rollout_status *ro;
	char why[FBX_NOTE_MAX];
	int op = req->u.rollout.op, rc;

	memset(&loaded, 0, sizeof(loaded));
	if (cc != NULL) {
		c = &cc->c;
	} else {
		rc = fbx_store_cmd_get(e->txn, req->u.rollout.command_id, &loaded);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			set_err(e, rc);
			return;
		}
		c = rc == FBX_OK ? &loaded : NULL;
	}
	if (c == NULL || strcmp(c->org, req->org) != 0) {
		console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no command %llu in organisation '%s'",
		    (unsigned long long)req->u.rollout.command_id, req->org);
		goto out;
	}
	if (!c->rollout.enabled) {
		console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
		    "command %llu has no rollout plan",
		    (unsigned long long)c->id);
		goto out;
	}
	if (op != FBX_ROP_STATUS && cc == NULL) {
		console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
		    "rollout %llu is finished", (unsigned long long)c->id);
		goto out;
	}
	if (op != FBX_ROP_STATUS) {
		ro = &cc->c.ro;
		switch (op) {
		case FBX_ROP_PAUSE:
			if (ro->state != FBX_RO_RUNNING &&
			    ro->state != FBX_RO_BAKING &&
			    ro->state != FBX_RO_NONE)
				goto bad_state;
			note_printf(why, sizeof(why), "paused by %s: %s",
			    req->actor, req->u.rollout.note);
			ro_pause(e, cc, req->actor, why);
			break;
		case FBX_ROP_RESUME:
			if (ro->state != FBX_RO_PAUSED)
				goto bad_state;
			/* the operator has judged this wave */
			cc->judge_off = 1;
			ro->state = FBX_RO_RUNNING;
			note_printf(ro->note, sizeof(ro->note), "resumed by %s: %s",
			    req->actor, req->u.rollout.note);
			cc->dirty = 1;
			emit_event(e, FBX_EV_ROLLOUT_RESUMED, cc->c.org,
			    reason_of(&cc->c), req->actor, cc->c.id, 0, 0,
			    "%s", ro->note);
			break;
		case FBX_ROP_CANCEL:
			if (ro->state == FBX_RO_DONE ||
			    ro->state == FBX_RO_CANCELLED)
				goto bad_state;
			ro->state = FBX_RO_CANCELLED;
			note_printf(ro->note, sizeof(ro->note),
			    "cancelled by %s: %s", req->actor,
			    req->u.rollout.note);
			cc->cancelling = 1;
			if (cc->c.state == FBX_C_EXPANDING) {
				xlist_remove(e, cc);
				cc->c.state = FBX_C_ACTIVE;
			}
			cc->dirty = 1;
			FBX_LOGI("rollout %llu %s", (unsigned long long)cc->c.id,
			    ro->note);
			cmd_maybe_done(cc);
			break;
		case FBX_ROP_APPROVE:
			if (ro->state != FBX_RO_AWAITING_APPROVAL)
				goto bad_state;
			note_printf(ro->note, sizeof(ro->note),
			    "group '%s' approved by %s: %s",
			    cc->c.rollout.groups[cc->c.cursor_idx], req->actor,
			    req->u.rollout.note);
			FBX_LOGI("rollout %llu: %s", (unsigned long long)cc->c.id,
			    ro->note);
			ro_advance_stage(e, cc);
			break;
		default:
			console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL, "unknown rollout operation");
			goto out;
		}
	}
	if (op != FBX_ROP_STATUS) {
		static const char *const opn[] = { "", "status", "pause",
			"resume", "cancel", "approve" };
		char action[32];
		snprintf(action, sizeof(action), "rollout.%s",
		    op > 0 && op <= 5 ? opn[op] : "?");
		audit(e, req->org, req->actor, action, req->u.rollout.note,
		    "{\"command\":%llu,\"state\":\"%s\",\"wave\":%u,"
		    "\"released\":%u}",
		    (unsigned long long)c->id,
		    fbx_rollout_state_name(c->ro.state), c->ro.wave,
		    c->ro.released);
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rollout.command_id = c->id;
	rep.u.rollout.plan = c->rollout;
	rep.u.rollout.st = c->ro;
	console_reply(e, in, &rep);
	goto out;
bad_state:
	console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
	    "rollout %llu is %s", (unsigned long long)cc->c.id,
	    fbx_rollout_state_name(cc->c.ro.state));
out:
	fbx_command_clear(&loaded);
}

/* --------------------------------------------------- policy memory */

/* For set_policy the engine remembers, per device and key, the last
 * values successfully applied and by which command, so that a rollback
 * can restore the value from before. Payload of set_policy: lines of
 * "key=value" (key an identifier, value up to 64 bytes). */
#define POL_HIST 4

struct pol_rec {
	uint32_t version;
	uint32_t n;
	struct {
		uint64_t cmd;
		char value[FBX_ID_MAX + 1];
	} h[POL_HIST]; /* newest first */
};

typedef int (*pol_fn)(void *arg, const char *key, const char *value);

/* policy_each - call fn for each key=value line of a payload. */
static int
policy_each(const uint8_t *payload, uint32_t len, pol_fn fn, void *arg)
{
	char line[160];
	uint32_t i = 0;

	while (i < len) {
		uint32_t j = i, n;
		char *eq;
		while (j < len && payload[j] != '\n')
			j++;
		n = j - i;
		if (n > 0 && n < sizeof(line)) {
			memcpy(line, payload + i, n);
			line[n] = '\0';
			eq = strchr(line, '=');
			if (eq != NULL) {
				*eq = '\0';
				if (fbx_id_valid(line) &&
				    strlen(eq + 1) <= FBX_ID_MAX) {
					int rc = fn(arg, line, eq + 1);
					if (rc != 0)
						return rc;
				}
			}
		}
		i = j + 1;
	}
	return 0;
}

struct pol_ctx {
	struct fbx_engine *e;
	const char *org, *device;
	uint64_t cmd;
};

static int
pol_record_cb(void *arg, const char *key, const char *value)
{
	struct pol_ctx *p = arg;
	struct pol_rec r;
	char k[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	note_printf(k, sizeof(k), "pol/%s/%s/%s", p->org, p->device, key);
	rc = fbx_store_kv_get(p->e->txn, k, &r, sizeof(r), &len);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && len != sizeof(r))) {
		memset(&r, 0, sizeof(r));
		r.version = 1;
	} else if (rc != FBX_OK) {
		set_err(p->e, rc);
		return 1;
	}
	memmove(&r.h[1], &r.h[0], sizeof(r.h[0]) * (POL_HIST - 1));
	r.h[0].cmd = p->cmd;
	snprintf(r.h[0].value, sizeof(r.h[0].value), "%s", value);
	if (r.n < POL_HIST)
		r.n++;
	rc = fbx_store_kv_put(p->e->txn, k, &r, sizeof(r));
	if (rc != FBX_OK) {
		set_err(p->e, rc);
		return 1;
	}
	return 0;
}

/* policy_applied - a set_policy delivery succeeded on a device. */
static void
policy_applied(struct fbx_engine *e, struct cmdc *cc, const char *device)
{
	struct pol_ctx p = { e, cc->c.org, device, cc->c.id };

	(void)policy_each(cc->c.payload, cc->c.payload_len, pol_record_cb, &p);
}

struct pol_prev_ctx {
	struct fbx_engine *e;
	const char *org, *device;
	uint64_t cmd;
	char out[512];
	size_t used;
	int unknown; /* history no longer reaches back to cmd */
	int changed; /* a later command changed the key since */
};

static int
pol_prev_cb(void *arg, const char *key, const char *value)
{
	struct pol_prev_ctx *p = arg;
	struct pol_rec r;
	char k[FBX_KV_KEY_MAX];
	size_t len = 0;
	uint32_t i;
	int rc, n;

	(void)value;
	note_printf(k, sizeof(k), "pol/%s/%s/%s", p->org, p->device, key);
	rc = fbx_store_kv_get(p->e->txn, k, &r, sizeof(r), &len);
	if (rc != FBX_OK || len != sizeof(r)) {
		p->unknown = 1;
		return 0;
	}
	for (i = 0; i < r.n && i < POL_HIST; i++) {
		if (r.h[i].cmd == p->cmd)
			break;
	}
	if (i == r.n || i == POL_HIST) {
		p->unknown = 1;
		return 0;
	}
	if (i > 0)
		p->changed = 1;
	/* the value before: the next older entry, or unset */
	n = snprintf(p->out + p->used, sizeof(p->out) - p->used, "%s=%s\n",
	    key, i + 1 < r.n ? r.h[i + 1].value : "");
	if (n > 0 && (size_t)n < sizeof(p->out) - p->used)
		p->used += (size_t)n;
	return 0;
}

/* ------------------------------------------------------------ rollback */

static int
compensation_of(int type)
{
	switch (type) {
	case FBX_CMD_LOCK:
		return FBX_CMD_UNLOCK;
	case FBX_CMD_UNLOCK:
		return FBX_CMD_LOCK;
	case FBX_CMD_START_LOST_MODE:
		return FBX_CMD_STOP_LOST_MODE;
	case FBX_CMD_STOP_LOST_MODE:
		return FBX_CMD_START_LOST_MODE;
	case FBX_CMD_INSTALL_APP:
		return FBX_CMD_REMOVE_APP;
	case FBX_CMD_REMOVE_APP:
		return FBX_CMD_INSTALL_APP;
	case FBX_CMD_SET_POLICY:
		return FBX_CMD_SET_POLICY;
	default:
		return FBX_CMD_NONE; /* wipe, os_update, clear_passcode:
		                        irreversible; query, restart: nothing
		                        to undo */
	}
}

static int
irreversible(int type)
{
	return type == FBX_CMD_WIPE || type == FBX_CMD_OS_UPDATE ||
	    type == FBX_CMD_CLEAR_PASSCODE;
}

/* family - commands that change the same thing on a device. */
static int
family(int type)
{
	switch (type) {
	case FBX_CMD_LOCK:
	case FBX_CMD_UNLOCK:
	case FBX_CMD_START_LOST_MODE:
	case FBX_CMD_STOP_LOST_MODE:
	case FBX_CMD_WIPE:
	case FBX_CMD_CLEAR_PASSCODE:
		return 1;
	case FBX_CMD_INSTALL_APP:
	case FBX_CMD_REMOVE_APP:
		return 2;
	default:
		return 0; /* set_policy uses its own history */
	}
}

static uint64_t
dev_hash(const char *dev)
{
	uint64_t h = 1469598103934665603ull;

	for (; *dev; dev++)
		h = (h ^ (uint8_t)*dev) * 1099511628211ull;
	return h ? h : 1;
}

struct comp_group {
	uint8_t type;
	uint8_t *payload;
	uint32_t plen;
	fbx_id *devs;
	uint64_t *src; /* source delivery ids */
	size_t n, cap;
};

struct rb_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	const char *org;
	struct fbx_rb_plan plan;
	size_t rows_cap;
	/* selected commands, sorted by id */
	uint64_t *ids;
	size_t nids, idcap;
	struct fbxi_idmap sel;     /* selected command ids */
	struct fbxi_idmap latest;  /* device hash -> latest time, per family
	                              of later, unselected commands (family
	                              in the top bits of the key) */
	int64_t min_created;
	/* execution */
	struct comp_group *groups;
	size_t ngroups;
	uint64_t *cancel;
	fbx_id *cancel_dev;
	uint8_t *cancel_state;
	size_t ncancel, ccap;
	uint64_t *held;
	size_t nheld, hcap;
	int err;
	/* current command while scanning its deliveries */
	struct fbx_command *cur;
	int for_replay; /* selection for a replay: compensations count */
};

static int
rb_add_id(struct rb_ctx *r, uint64_t id)
{
	if (fbxi_idmap_get(&r->sel, id, NULL))
		return 0;
	if (r->nids == r->idcap) {
		size_t ncap = r->idcap ? r->idcap * 2 : 64;
		uint64_t *n = realloc(r->ids, ncap * sizeof(*n));
		if (n == NULL)
			return FBX_ENOMEM;
		r->ids = n;
		r->idcap = ncap;
	}
	r->ids[r->nids++] = id;
	return fbxi_idmap_put(&r->sel, id, 1) == 0 ? 0 : FBX_ENOMEM;
}

static int
rb_match(const struct rb_ctx *r, const struct fbx_command *c)
{
	const struct fbx_selector *s = &r->req->u.rollback.sel;

	if (c->origin == FBX_ORIGIN_ROLLBACK && !r->for_replay)
		return 0; /* compensations are not rolled back by filters */
	if (s->breaker[0] != '\0' &&
	    (c->origin != FBX_ORIGIN_AUTOMATIC ||
	        strcmp(reason_of(c), s->breaker) != 0 ||
	        !fbx_cmd_lock_type(c->type)))
		return 0; /* an incident: what the breaker guards */
	if (s->origin && c->origin != s->origin)
		return 0;
	if (s->type && c->type != s->type)
		return 0;
	if (s->reason[0] && strcmp(reason_of(c), s->reason) != 0)
		return 0;
	return 1;
}

static int
rb_list_cb(void *arg, const struct fbx_command *c)
{
	struct rb_ctx *r = arg;

	if (rb_match(r, c))
		r->err = rb_add_id(r, c->id);
	return r->err != 0;
}

static void
rb_row(struct rb_ctx *r, const struct fbx_command *c, uint64_t dlv,
    const char *dev, int state, int action, int comp, const char *detail)
{
	struct fbx_rb_row *w;

	r->plan.per_action[action]++;
	if (r->plan.nrows >= r->rows_cap)
		return;
	w = &r->plan.rows[r->plan.nrows++];
	memset(w, 0, sizeof(*w));
	w->command_id = c->id;
	w->delivery_id = dlv;
	snprintf(w->device, sizeof(w->device), "%s", dev);
	w->type = c->type;
	w->state = (uint8_t)state;
	w->action = (uint8_t)action;
	w->comp_type = (uint8_t)comp;
	snprintf(w->detail, sizeof(w->detail), "%s", detail ? detail : "");
}

static struct comp_group *
rb_group(struct rb_ctx *r, int type, const uint8_t *payload, uint32_t plen)
{
	struct comp_group *g, *ng;

	for (size_t i = 0; i < r->ngroups; i++) {
		g = &r->groups[i];
		if (g->type == type && g->plen == plen &&
		    (plen == 0 || memcmp(g->payload, payload, plen) == 0) &&
		    g->n < FBX_TARGET_IDS_MAX)
			return g;
	}
	ng = realloc(r->groups, (r->ngroups + 1) * sizeof(*ng));
	if (ng == NULL)
		return NULL;
	r->groups = ng;
	g = &r->groups[r->ngroups];
	memset(g, 0, sizeof(*g));
	g->type = (uint8_t)type;
	if (plen > 0) {
		g->payload = malloc(plen);
		if (g->payload == NULL)
			return NULL;
		memcpy(g->payload, payload, plen);
	}
	g->plen = plen;
	r->ngroups++;
	return g;
}

static int
rb_group_add(struct comp_group *g, const char *dev, uint64_t src)
{
	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 64;
		fbx_id *nd = realloc(g->devs, ncap * sizeof(*nd));
		uint64_t *ns;
		if (nd == NULL)
			return FBX_ENOMEM;
		g->devs = nd;
		ns = realloc(g->src, ncap * sizeof(*ns));
		if (ns == NULL)
			return FBX_ENOMEM;
		g->src = ns;
		g->cap = ncap;
	}
	snprintf(g->devs[g->n], sizeof(g->devs[g->n]), "%s", dev);
	g->src[g->n] = src;
	g->n++;
	return FBX_OK;
}

static int
rb_cancel_add(struct rb_ctx *r, uint64_t id, const char *dev, int state)
{
	if (r->ncancel == r->ccap) {
		size_t ncap = r->ccap ? r->ccap * 2 : 256;
		uint64_t *ni = realloc(r->cancel, ncap * sizeof(*ni));
		fbx_id *nd;
		uint8_t *ns;
		if (ni == NULL)
			return FBX_ENOMEM;
		r->cancel = ni;
		nd = realloc(r->cancel_dev, ncap * sizeof(*nd));
		if (nd == NULL)
			return FBX_ENOMEM;
		r->cancel_dev = nd;
		ns = realloc(r->cancel_state, ncap);
		if (ns == NULL)
			return FBX_ENOMEM;
		r->cancel_state = ns;
		r->ccap = ncap;
	}
	r->cancel[r->ncancel] = id;
	snprintf(r->cancel_dev[r->ncancel], sizeof(fbx_id), "%s", dev);
	r->cancel_state[r->ncancel] = (uint8_t)state;
	r->ncancel++;
	return FBX_OK;
}

/* Later, unselected commands of the organisation: remember per device and
 * family the newest time one of them reached the device. */
static int
rb_later_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rb_ctx *r = arg;
	uint64_t key, old;
	int fam = family(r->cur->type);

	if (d->state == FBX_D_CANCELLED || d->state == FBX_D_EXPIRED ||
	    d->state == FBX_D_FAILED)
		return 0;
	key = (dev_hash(d->device) & ~(3ull << 62)) | ((uint64_t)fam << 62);
	if (key == 0)
		key = 1;
	if (!fbxi_idmap_get(&r->latest, key, &old) ||
	    (int64_t)old < r->cur->created_ms)
		if (fbxi_idmap_put(&r->latest, key,
		        (uint64_t)r->cur->created_ms) != 0)
			r->err = FBX_ENOMEM;
	return r->err != 0;
}

static int
rb_later_cb(void *arg, const struct fbx_command *c)
{
	struct rb_ctx *r = arg;
	struct fbx_command full;
	int rc;

	if (fbxi_idmap_get(&r->sel, c->id, NULL) || family(c->type) == 0 ||
	    c->origin == FBX_ORIGIN_ROLLBACK)
		return 0;
	rc = fbx_store_cmd_get(r->e->txn, c->id, &full);
	if (rc != FBX_OK) {
		r->err = rc;
		return 1;
	}
	r->cur = &full;
	rc = fbx_store_dlv_scan(r->e->txn, FBX_DLV_ID(c->id, 0),
	    FBX_DLV_ID(c->id, 0) + full.ndeliveries, 0, rb_later_dlv_cb, r);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		r->err = rc;
	fbx_command_clear(&full);
	r->cur = NULL;
	return r->err != 0;
}

static int
rb_changed_since(struct rb_ctx *r, const struct fbx_command *c,
    const char *dev)
{
	uint64_t key, t;
	int fam = family(c->type);

	if (fam == 0)
		return 0;
	key = (dev_hash(dev) & ~(3ull << 62)) | ((uint64_t)fam << 62);
	if (key == 0)
		key = 1;
	return fbxi_idmap_get(&r->latest, key, &t) &&
	    (int64_t)t > c->created_ms;
}

static int
in_group(struct fbx_engine *e, const char *org, const char *dev,
    const char *group)
{
	struct fbx_device d;

	if (group[0] == '\0')
		return 1;
	if (fbx_store_dev_get(e->txn, org, dev, &d) != FBX_OK)
		return 0;
	for (unsigned i = 0; i < d.ngroups; i++) {
		if (strcmp(d.groups[i], group) == 0)
			return 1;
	}
	return 0;
}

static int
rb_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rb_ctx *r = arg;
	const struct fbx_command *c = r->cur;
	const char *grp = r->req->u.rollback.sel.group;
	int comp = compensation_of(c->type), rc = FBX_OK;
	char key[FBX_KV_KEY_MAX];

	if (!in_group(r->e, c->org, d->device, grp))
		return 0;
	switch (d->state) {
	case FBX_D_QUEUED:
	case FBX_D_PENDING:
		rb_row(r, c, d->id, d->device, d->state, FBX_RB_CANCEL, 0,
		    "not sent yet: cancel");
		rc = rb_cancel_add(r, d->id, d->device, d->state);
		break;
	case FBX_D_SENT:
	case FBX_D_ACCEPTED:
	case FBX_D_SUCCEEDED: {
		uint64_t prior;
		size_t len = 0;
		if (irreversible(c->type)) {
			rb_row(r, c, d->id, d->device, d->state,
			    FBX_RB_IRREVERSIBLE, 0,
			    "cannot be undone: left as it is");
			break;
		}
		if (comp == FBX_CMD_NONE) {
			rb_row(r, c, d->id, d->device, d->state, FBX_RB_NOTHING,
			    0, "changes nothing to undo");
			break;
		}
		snprintf(key, sizeof(key), "comp/%s/%llu/%llu", c->org,
		    (unsigned long long)c->id, (unsigned long long)d->id);
		if (fbx_store_kv_get(r->e->txn, key, &prior, sizeof(prior),
		        &len) == FBX_OK) {
			char det[96];
			snprintf(det, sizeof(det),
			    "compensated before by command %llu",
			    (unsigned long long)prior);
			rb_row(r, c, d->id, d->device, d->state,
			    FBX_RB_DONE_BEFORE, comp, det);
			break;
		}
		if (c->type == FBX_CMD_SET_POLICY) {
			struct pol_prev_ctx p;
			struct comp_group *g;
			memset(&p, 0, sizeof(p));
			p.e = r->e;
			p.org = c->org;
			p.device = d->device;
			p.cmd = c->id;
			(void)policy_each(c->payload, c->payload_len,
			    pol_prev_cb, &p);
			if (p.unknown && d->state == FBX_D_SUCCEEDED) {
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_IRREVERSIBLE, 0,
				    "previous policy value no longer known");
				break;
			}
			if (p.unknown) {
				/* never applied: nothing to restore yet */
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_NOTHING, 0, "not applied");
				break;
			}
			if (p.changed && !r->req->u.rollback.include_changed) {
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_CHANGED, 0,
				    "policy changed since by a later command");
				break;
			}
			{
				char det[96];
				snprintf(det, sizeof(det), "restore %.*s",
				    (int)(p.used > 0 ? p.used - 1 : 0), p.out);
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_COMPENSATE, comp, det);
			}
			g = rb_group(r, comp, (const uint8_t *)p.out,
			    (uint32_t)p.used);
			rc = g ? rb_group_add(g, d->device, d->id) : FBX_ENOMEM;
			break;
		}
		if (!r->req->u.rollback.include_changed &&
		    rb_changed_since(r, c, d->device)) {
			rb_row(r, c, d->id, d->device, d->state, FBX_RB_CHANGED,
			    comp, "a later command changed the device: left");
			break;
		}
		rb_row(r, c, d->id, d->device, d->state, FBX_RB_COMPENSATE,
		    comp, fbx_cmd_type_name(comp));
		{
			struct comp_group *g =
			    rb_group(r, comp, c->payload, c->payload_len);
			rc = g ? rb_group_add(g, d->device, d->id) : FBX_ENOMEM;
		}
		break;
	}
	default:
		rb_row(r, c, d->id, d->device, d->state, FBX_RB_NOTHING, 0,
		    fbx_dstate_name(d->state));
		break;
	}
	if (rc != FBX_OK)
		r->err = rc;
	return r->err != 0;
}

/* rb_select - the commands a rollback concerns, in this organisation. */
static int
rb_select(struct rb_ctx *r)
{
	const struct fbx_selector *s = &r->req->u.rollback.sel;
	int rc = FBX_OK;

	if (s->ncommand_ids > 0) {
		for (size_t i = 0; i < s->ncommand_ids && rc == FBX_OK; i++) {
			struct fbx_command c;
			rc = fbx_store_cmd_get(r->e->txn, s->command_ids[i], &c);
			if (rc == FBX_ENOT_FOUND ||
			    (rc == FBX_OK && strcmp(c.org, r->org) != 0)) {
				if (rc == FBX_OK)
					fbx_command_clear(&c);
				return FBX_ENOT_FOUND;
			}
			if (rc == FBX_OK) {
				rc = rb_add_id(r, c.id);
				fbx_command_clear(&c);
			}
		}
		return rc;
	}
	{
		int64_t since = s->since_ms, until = s->until_ms;
		if (s->breaker[0] != '\0') {
			/* an incident: the breaker's window before its last
			 * trip, up to now; automatic commands of its reason */
			struct fbxi_breaker b;
			rc = brk_load(r->e->txn, s->breaker_global ? "*" : r->org,
			    s->breaker, &b, NULL);
			if (rc != FBX_OK)
				return rc;
			if (b.trips == 0)
				return FBX_ENOT_FOUND;
			since = b.tripped_ms - (int64_t)b.cfg.window_s * 1000;
			if (s->since_ms > since)
				since = s->since_ms;
			/* a closed incident ends at its reset */
			if (b.reset_ms > b.tripped_ms &&
			    (until == 0 || b.reset_ms + 1 < until))
				until = b.reset_ms + 1;
		}
		rc = fbx_store_cmd_list(r->e->txn, r->org, since, until, 0, 0,
		    rb_list_cb, r);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
		if (rc == FBX_OK)
			rc = r->err;
	}
	return rc;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
rb_free(struct rb_ctx *r)
{
	free(r->ids);
	fbxi_idmap_fini(&r->sel);
	fbxi_idmap_fini(&r->latest);
	for (size_t i = 0; i < r->ngroups; i++) {
		free(r->groups[i].payload);
		free(r->groups[i].devs);
		free(r->groups[i].src);
	}
	free(r->groups);
	free(r->cancel);
	free(r->cancel_dev);
	free(r->cancel_state);
	free(r->held);
	free(r->plan.rows);
	free(r->plan.comp_ids);
}

/* rb_journal_comp - one compensating command: recovery priority, origin
 * rollback (breakers never hold it), explicit devices; it is expanded in
 * this same transaction when it is small. */
static int
rb_journal_comp(struct rb_ctx *r, struct comp_group *g, uint64_t rbseq,
    size_t n, uint64_t *out)
{
	struct fbx_engine *e = r->e;
	struct fbx_command c;
	struct cmdc *cc;
	int rc;

	memset(&c, 0, sizeof(c));
	snprintf(c.org, sizeof(c.org), "%s", r->org);
	snprintf(c.actor, sizeof(c.actor), "%s", r->req->actor);
	snprintf(c.reason, sizeof(c.reason), "rollback");
	/* no idempotency key: the comp/ markers make a rerun safe, and a
	 * key could collide with one a console chose */
	(void)n;
	c.type = g->type;
	c.origin = FBX_ORIGIN_ROLLBACK;
	c.target_kind = FBX_TARGET_DEVICES;
	c.priority = FBX_PRIO_RECOVERY;
	c.payload = g->payload;
	c.payload_len = g->plen;
	c.dev_ids = g->devs;
	c.ndev_ids = (uint32_t)g->n;
	c.state = FBX_C_EXPANDING;
	c.created_ms = e->now;
	c.ttl_s = e->o.default_ttl_s;
	c.expires_ms = e->now + (int64_t)c.ttl_s * 1000;
	note_printf(c.note, sizeof(c.note), "rollback %llu by %s",
	    (unsigned long long)rbseq, r->req->actor);
	rc = fbx_store_cmd_append(e->txn, &c);
	if (rc != FBX_OK)
		return rc;
	e->last_cmd_id = c.id;
	cc = cmd_cache_add(e, &c);
	if (cc == NULL)
		return FBX_ENOMEM;
	/* explicit ids: each device gets one delivery */
	*out = c.id;
	for (size_t i = 0; i < g->n; i++) {
		char key[FBX_KV_KEY_MAX];
		uint64_t src = g->src[i];
		snprintf(key, sizeof(key), "comp/%s/%llu/%llu", r->org,
		    (unsigned long long)FBX_DLV_CMD(src),
		    (unsigned long long)src);
		rc = fbx_store_kv_put(e->txn, key, &c.id, sizeof(c.id));
		if (rc != FBX_OK)
			return rc;
	}
	expand_inline(e, cc);
	return e->txn_err;
}

static void
handle_rollback(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct rb_ctx r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.e = e;
	r.req = req;
	r.org = req->org;
	fbxi_idmap_init(&r.sel);
	fbxi_idmap_init(&r.latest);
	r.rows_cap = req->u.rollback.limit ? req->u.rollback.limit : 100;
	if (r.rows_cap > FBX_PAGE_MAX)
		r.rows_cap = FBX_PAGE_MAX;
	r.plan.rows = malloc(r.rows_cap * sizeof(*r.plan.rows));
	if (r.plan.rows == NULL) {
		set_err(e, FBX_ENOMEM);
		goto out;
	}
	rc = rb_select(&r);
	if (rc == FBX_ENOT_FOUND) {
		console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "nothing to roll back: no such command or incident in "
		    "organisation '%s'",
		    req->org);
		goto out;
	}
	if (rc != FBX_OK)
		goto fail;
	qsort(r.ids, r.nids, sizeof(*r.ids), cmp_u64);
	r.plan.commands = (uint32_t)r.nids;
	if (r.nids > 0) {
		/* what later commands changed, device by device */
		struct fbx_command first;
		rc = fbx_store_cmd_get(e->txn, r.ids[0], &first);
		if (rc != FBX_OK)
			goto fail;
		r.min_created = first.created_ms;
		fbx_command_clear(&first);
		rc = fbx_store_cmd_list(e->txn, req->org, r.min_created, 0, 0,
		    0, rb_later_cb, &r);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			goto fail;
		if (r.err != FBX_OK) {
			rc = r.err;
			goto fail;
		}
	}
	for (size_t i = 0; i < r.nids; i++) {
		struct fbx_command c;
		rc = fbx_store_cmd_get(e->txn, r.ids[i], &c);
		if (rc != FBX_OK)
			goto fail;
		{
			/* the live state is in the cache */
			struct cmdc *cc = cmd_find(e, c.id);
			if (cc != NULL)
				c.state = cc->c.state;
		}
		if (c.state == FBX_C_HELD) {
			/* never expanded: the command itself is cancelled */
			for (uint32_t k = 0; k < c.ndev_ids || k == 0; k++) {
				rb_row(&r, &c, 0,
				    c.ndev_ids ? c.dev_ids[k] : "",
				    FBX_D_NONE, FBX_RB_CANCEL, 0,
				    c.ndev_ids ? "held: discarded"
				               : "held (whole target): discarded");
				if (c.ndev_ids == 0)
					break;
			}
			if (r.nheld == r.hcap) {
				size_t ncap = r.hcap ? r.hcap * 2 : 64;
				uint64_t *nh = realloc(r.held, ncap * 8);
				if (nh == NULL) {
					fbx_command_clear(&c);
					rc = FBX_ENOMEM;
					goto fail;
				}
				r.held = nh;
				r.hcap = ncap;
			}
			r.held[r.nheld++] = c.id;
			fbx_command_clear(&c);
			continue;
		}
		r.cur = &c;
		rc = fbx_store_dlv_scan(e->txn, FBX_DLV_ID(c.id, 0),
		    FBX_DLV_ID(c.id, 0) + c.ndeliveries, 0, rb_dlv_cb, &r);
		r.cur = NULL;
		fbx_command_clear(&c);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			goto fail;
		if (r.err != FBX_OK) {
			rc = r.err;
			goto fail;
		}
	}

	if (req->u.rollback.execute) {
		uint64_t rbseq = e->audit_seq + 1;
		size_t ncomp = 0;
		/* 1. cancel what was not sent */
		for (size_t i = 0; i < r.ncancel; i++) {
			struct cmdc *cc = cmd_find(e, FBX_DLV_CMD(r.cancel[i]));
			int old = 0;
			rc = fbx_store_dlv_set_state(e->txn, r.cancel[i],
			    FBX_D_CANCELLED, 0, e->now, 0, &old, NULL);
			if (rc == FBX_OK && r.cancel_state[i] == FBX_D_PENDING)
				rc = fbx_store_pend_del(e->txn, r.org,
				    r.cancel_dev[i], r.cancel[i]);
			if (rc != FBX_OK)
				goto fail;
			if (cc != NULL) {
				count_move(cc, old, FBX_D_CANCELLED);
				cmd_maybe_done(cc);
			}

		}
		/* a rollout among the rolled-back commands stops for good */
		for (size_t i = 0; i < r.nids; i++) {
			struct cmdc *cc = cmd_find(e, r.ids[i]);
			if (cc == NULL || !cc->c.rollout.enabled ||
			    cc->c.ro.state == FBX_RO_DONE ||
			    cc->c.ro.state == FBX_RO_CANCELLED)
				continue;
			cc->c.ro.state = FBX_RO_CANCELLED;
			note_printf(cc->c.ro.note, sizeof(cc->c.ro.note),
			    "cancelled by rollback %llu (%s)",
			    (unsigned long long)rbseq, req->actor);
			cc->cancelling = 1;
			if (cc->c.state == FBX_C_EXPANDING) {
				xlist_remove(e, cc);
				cc->c.state = FBX_C_ACTIVE;
			}
			cc->dirty = 1;
		}
		/* 2. held commands: discarded, recorded */
		for (size_t i = 0; i < r.nheld; i++) {
			struct cmdc *cc = cmd_find(e, r.held[i]);
			if (cc == NULL)
				continue;
			cc->c.state = FBX_C_DISCARDED;
			snprintf(cc->c.resolved_by, sizeof(cc->c.resolved_by),
			    "%s", req->actor);
			note_printf(cc->c.note, sizeof(cc->c.note),
			    "rolled back (%llu) by %s: %s",
			    (unsigned long long)rbseq, req->actor,
			    req->u.rollback.note);
			cc->dirty = 1;
		}
		/* 3. compensations, journaled now */
		r.plan.comp_ids = malloc((r.ngroups + 1) * sizeof(uint64_t));
		if (r.plan.comp_ids == NULL) {
			rc = FBX_ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < r.ngroups; i++) {
			uint64_t id = 0;
			rc = rb_journal_comp(&r, &r.groups[i], rbseq, i, &id);
			if (rc != FBX_OK)
				goto fail;
			r.plan.comp_ids[ncomp++] = id;
		}
		r.plan.ncomp = ncomp;
		r.plan.executed = 1;
		r.plan.rollback_id = rbseq;
		audit(e, req->org, req->actor, "rollback", req->u.rollback.note,
		    "{\"commands\":%u,\"cancelled\":%u,\"compensated\":%u,"
		    "\"irreversible\":%u,\"changed_since\":%u,"
		    "\"compensating_commands\":%zu,\"include_changed\":%s}",
		    r.plan.commands, r.plan.per_action[FBX_RB_CANCEL],
		    r.plan.per_action[FBX_RB_COMPENSATE],
		    r.plan.per_action[FBX_RB_IRREVERSIBLE],
		    r.plan.per_action[FBX_RB_CHANGED], ncomp,
		    req->u.rollback.include_changed ? "true" : "false");
		FBX_LOGI("rollback %llu in %s by %s: %u commands, %u "
		         "cancelled, %u compensated in %zu commands, %u "
		         "irreversible, %u changed since",
		    (unsigned long long)rbseq, req->org, req->actor,
		    r.plan.commands, r.plan.per_action[FBX_RB_CANCEL],
		    r.plan.per_action[FBX_RB_COMPENSATE], ncomp,
		    r.plan.per_action[FBX_RB_IRREVERSIBLE],
		    r.plan.per_action[FBX_RB_CHANGED]);
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rollback = r.plan;
	console_reply(e, in, &rep);
	goto out;
fail:
	set_err(e, rc);
out:
	rb_free(&r);
}

struct rebuild_ctx {
	struct fbx_engine *e;
	struct cmdc *cc;
	int count_only; /* recount, queue nothing */
	uint64_t *requeue;
	size_t nrequeue, cap;
	int err;
};

static int
rebuild_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rebuild_ctx *r = arg;
	struct cmdc *cc = r->cc;

	if (d->state > 0 && d->state < FBX_D_COUNT)
		cc->c.counts[d->state]++;
	if (FBX_DLV_IDX(d->id) >= cc->c.ndeliveries)
		cc->c.ndeliveries = FBX_DLV_IDX(d->id) + 1;
	if (r->count_only)
		return 0;
	if (cc->c.rollout.enabled) {
		/* recount the current wave; unreleased ones stay back */
		ro_tally(cc, d->id, FBX_D_QUEUED, d->state, d->code);
		if (FBX_DLV_IDX(d->id) >= cc->c.ro.released)
			return 0;
	}
	switch (d->state) {
	case FBX_D_SENT:
	case FBX_D_ACCEPTED:
		/* the gateway that held it is gone with the old process */
		if (r->nrequeue == r->cap) {
			size_t ncap = r->cap ? r->cap * 2 : 4096;
			uint64_t *n = realloc(r->requeue, ncap * sizeof(*n));
			if (n == NULL) {
				r->err = FBX_ENOMEM;
				return 1;
			}
			r->requeue = n;
			r->cap = ncap;
		}
		r->requeue[r->nrequeue++] = d->id;
		/* fall through */
	case FBX_D_QUEUED:
		if (orgq_push(r->e, cc->q, cc->c.priority, d->id) != FBX_OK) {
			r->err = FBX_ENOMEM;
			return 1;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* -------------------------------------------------------------- replay */

struct replay_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	struct cmdc *cc;
	struct fbx_replay_result res;
	uint64_t *ids;
	size_t n, cap;
	int err;
};

static int
replay_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct replay_ctx *r = arg;
	int want = r->req->u.replay.state;

	if (want != 0 && d->state != want)
		return 0;
	if (want == 0 && d->state != FBX_D_SENT && d->state != FBX_D_ACCEPTED &&
	    !fbx_dstate_terminal(d->state))
		return 0; /* queued or pending: already on their way */
	r->res.matched++;
	if (fbx_dstate_terminal(d->state) && !r->req->u.replay.force) {
		r->res.skipped_terminal++;
		return 0;
	}
	if (d->state == FBX_D_QUEUED || d->state == FBX_D_PENDING)
		return 0;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		uint64_t *ni = realloc(r->ids, ncap * sizeof(*ni));
		if (ni == NULL) {
			r->err = FBX_ENOMEM;
			return 1;
		}
		r->ids = ni;
		r->cap = ncap;
	}
	r->ids[r->n++] = d->id;
	return 0;
}

/* handle_replay - send chosen deliveries again with their delivery ids,
 * for a gateway that lost what it received. Terminal ones only when
 * forced; they then go back to QUEUED and their new outcome is
 * recorded. */
static void
handle_replay(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct replay_ctx r;
	struct rb_ctx sel;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&sel, 0, sizeof(sel));
	r.e = e;
	r.req = req;
	/* the rollback selector picks the commands */
	sel.e = e;
	sel.req = req;
	sel.org = req->org;
	sel.for_replay = 1;
	fbxi_idmap_init(&sel.sel);
	fbxi_idmap_init(&sel.latest);
	{
		/* rb_select reads u.rollback.sel: same layout in replay */
		struct fbx_selector saved = req->u.rollback.sel;
		req->u.rollback.sel = req->u.replay.sel;
		rc = rb_select(&sel);
		req->u.rollback.sel = saved;
	}
	if (rc == FBX_ENOT_FOUND) {
		console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no such command in organisation '%s'", req->org);
		goto out;
	}
	if (rc != FBX_OK)
		goto fail;
	for (size_t i = 0; i < sel.nids; i++) {
		struct fbx_command c;
		rc = fbx_store_cmd_get(e->txn, sel.ids[i], &c);
		if (rc != FBX_OK)
			goto fail;
		rc = fbx_store_dlv_scan(e->txn, FBX_DLV_ID(c.id, 0),
		    FBX_DLV_ID(c.id, 0) + c.ndeliveries, 0, replay_dlv_cb, &r);
		fbx_command_clear(&c);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			goto fail;
		if (r.err != FBX_OK) {
			rc = r.err;
			goto fail;
		}
	}
	if (req->u.replay.execute) {
		for (size_t i = 0; i < r.n; i++) {
			uint64_t id = r.ids[i], v;
			struct cmdc *cc = cmd_find(e, FBX_DLV_CMD(id));
			int old = 0;
			if (cc == NULL) {
				/* a finished command comes back to life */
				struct fbx_command c;
				rc = fbx_store_cmd_get(e->txn, FBX_DLV_CMD(id), &c);
				if (rc != FBX_OK)
					goto fail;
				c.state = FBX_C_ACTIVE;
				cc = cmd_cache_add(e, &c);
				fbx_command_clear(&c);
				if (cc == NULL) {
					rc = FBX_ENOMEM;
					goto fail;
				}
				/* its counts come from its deliveries */
				memset(cc->c.counts, 0, sizeof(cc->c.counts));
				{
					struct rebuild_ctx rr;
					memset(&rr, 0, sizeof(rr));
					rr.e = e;
					rr.cc = cc;
					rr.count_only = 1;
					rc = fbx_store_dlv_scan(e->txn,
					    FBX_DLV_ID(cc->c.id, 0),
					    FBX_DLV_ID(cc->c.id, 0) +
					        cc->c.ndeliveries,
					    0, rebuild_dlv_cb, &rr);
					free(rr.requeue);
					if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
						goto fail;
				}
				cc->dirty = 1;
			}
			/* whichever gateway held it lets go of it */
			for (struct gw *g = e->gws; g != NULL; g = g->next) {
				if (fbxi_idmap_del(&g->inflight, id, &v)) {
					if (IF_STAGE(v) == IF_SENT &&
					    g->unanswered > 0)
						g->unanswered--;
					inflight_release(e, v);
				}
			}
			rc = fbx_store_dlv_set_state(e->txn, id, FBX_D_QUEUED, 0,
			    e->now, 0, &old, NULL);
			if (rc != FBX_OK)
				goto fail;
			count_move(cc, old, FBX_D_QUEUED);
			if (orgq_push(e, cc->q, FBX_PRIO_RECOVERY, id) != FBX_OK) {
				rc = FBX_ENOMEM;
				goto fail;
			}
			r.res.resent++;
		}
		audit(e, req->org, req->actor, "replay", req->u.replay.note,
		    "{\"commands\":%zu,\"matched\":%u,\"resent\":%u,"
		    "\"skipped_terminal\":%u,\"force\":%s}",
		    sel.nids, r.res.matched, r.res.resent,
		    r.res.skipped_terminal,
		    req->u.replay.force ? "true" : "false");
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.replay = r.res;
	console_reply(e, in, &rep);
	goto out;
fail:
	set_err(e, rc);
out:
	free(r.ids);
	rb_free(&sel);
}

/* ------------------------------------------------------- audit requests */

struct audit_list_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	struct fbx_audit_rec *v;
	size_t n, cap;
	uint64_t last;
	int more;
};

static int
audit_list_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct audit_list_ctx *l = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	const char *want_actor = l->req->u.audit_list.actor;
	const char *want_action = l->req->u.audit_list.action;

	if (audit_decode(seq, rec, len, &a, prev, hash) != 0)
		return 0;
	if (strcmp(a.org, l->req->org) != 0 && strcmp(a.org, "*") != 0)
		return 0; /* another organisation's record (global ones show) */
	if (want_actor[0] && strcmp(a.actor, want_actor) != 0)
		return 0;
	if (want_action[0] && strncmp(a.action, want_action,
	                          strlen(want_action)) != 0)
		return 0;
	if (l->req->u.audit_list.since_ms &&
	    a.at_ms < l->req->u.audit_list.since_ms)
		return 0;
	if (l->req->u.audit_list.until_ms &&
	    a.at_ms >= l->req->u.audit_list.until_ms)
		return 0;
	if (l->n == l->cap) {
		l->more = 1;
		return 1;
	}
	l->v[l->n++] = a;
	l->last = seq;
	return 0;
}

static void
handle_audit_list(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct audit_list_ctx l;
	uint32_t limit = req->u.audit_list.limit ? req->u.audit_list.limit : 100;
	int rc;

	if (limit > 1000)
		limit = 1000;
	memset(&l, 0, sizeof(l));
	l.e = e;
	l.req = req;
	l.cap = limit;
	l.v = malloc(limit * sizeof(*l.v));
	if (l.v == NULL) {
		set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbx_store_audit_scan(e->txn, req->u.audit_list.after + 1,
	    audit_list_cb, &l);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		free(l.v);
		set_err(e, rc);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.audit.r = l.v;
	rep.u.audit.n = l.n;
	rep.u.audit.next_after = l.more ? l.last : 0;
	console_reply(e, in, &rep);
	free(l.v);
}

struct verify_ctx {
	uint8_t prev[32];
	uint64_t records, broken_at, expect;
	char why[128];
};

static int
verify_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct verify_ctx *v = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32], want[32];

	v->records++;
	if (seq != v->expect) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu is missing (found %llu next)",
		    (unsigned long long)v->expect, (unsigned long long)seq);
		return 1;
	}
	v->expect = seq + 1;
	if (audit_decode(seq, rec, len, &a, prev, hash) != 0) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why), "record %llu is malformed",
		    (unsigned long long)seq);
		return 1;
	}
	if (memcmp(prev, v->prev, 32) != 0) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu does not link to the record before it",
		    (unsigned long long)seq);
		return 1;
	}
	audit_hash(seq, rec, len, want);
	if (memcmp(want, hash, 32) != 0) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu was altered: its hash does not match",
		    (unsigned long long)seq);
		return 1;
	}
	memcpy(v->prev, hash, 32);
	return 0;
}

/* handle_audit_verify - walk the whole chain from the first record. */
static void
handle_audit_verify(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct verify_ctx v;
	int rc;

	memset(&v, 0, sizeof(v));
	v.expect = 1;
	rc = fbx_store_audit_scan(e->txn, 0, verify_cb, &v);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		set_err(e, rc);
		return;
	}
	if (v.broken_at == 0 && v.records != e->audit_seq) {
		v.broken_at = v.records + 1;
		snprintf(v.why, sizeof(v.why),
		    "the chain ends at %llu; the last record written was %llu",
		    (unsigned long long)v.records,
		    (unsigned long long)e->audit_seq);
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.verify.records = v.records;
	rep.u.verify.broken_at = v.broken_at;
	snprintf(rep.u.verify.why, sizeof(rep.u.verify.why), "%s", v.why);
	if (v.broken_at != 0)
		FBX_LOGE("audit chain broken at %llu: %s",
		    (unsigned long long)v.broken_at, v.why);
	console_reply(e, in, &rep);
}

struct orgs_ctx {
	fbx_id *orgs;
	uint32_t *devs;
	size_t n, cap;
	int err;
};

static int
orgs_cb(void *arg, const char *org, uint32_t devices)
{
	struct orgs_ctx *o = arg;

	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 64;
		fbx_id *no;
		uint32_t *nd;
		if (ncap > 100000)
			return 1;
		no = realloc(o->orgs, ncap * sizeof(*no));
		if (no == NULL) {
			o->err = FBX_ENOMEM;
			return 1;
		}
		o->orgs = no;
		nd = realloc(o->devs, ncap * sizeof(*nd));
		if (nd == NULL) {
			o->err = FBX_ENOMEM;
			return 1;
		}
		o->devs = nd;
		o->cap = ncap;
	}
	snprintf(o->orgs[o->n], sizeof(o->orgs[o->n]), "%s", org);
	o->devs[o->n] = devices;
	o->n++;
	return 0;
}

static void
handle_list_orgs(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct orgs_ctx o;
	int rc;

	memset(&o, 0, sizeof(o));
	rc = fbx_store_org_list(e->txn, orgs_cb, &o);
	if (rc == FBX_OK)
		rc = o.err;
	if (rc != FBX_OK) {
		set_err(e, rc);
		goto out;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.orgs.orgs = o.orgs;
	rep.u.orgs.devices = o.devs;
	rep.u.orgs.n = o.n;
	console_reply(e, in, &rep);
out:
	free(o.orgs);
	free(o.devs);
}

/* -------------------------------------------------------------- export */

struct jbuf {
	char *p;
	size_t len, cap, max;
	int full;
};

static void jprintf(struct jbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
jprintf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->full)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->full = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		/* a page stops after the record that crosses max; the
		 * buffer may hold that record and no more */
		if (b->cap >= b->max + (1u << 20)) {
			b->full = 1;
			return;
		}
		{
			char *np = realloc(b->p, b->cap * 2);
			if (np == NULL) {
				b->full = 1;
				return;
			}
			b->p = np;
			b->cap *= 2;
		}
	}
}

/* jstr - a JSON string of free text (notes): escaped. */
static void
jstr(struct jbuf *b, const char *s)
{
	jprintf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			jprintf(b, "\\%c", c);
		else if (c < 0x20)
			jprintf(b, "\\u%04x", c);
		else
			jprintf(b, "%c", c);
	}
	jprintf(b, "\"");
}

struct export_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	struct jbuf b;
	uint64_t cursor;  /* delivery id space, or AUDIT_PHASE | seq */
	uint64_t resume;  /* where the next page starts, 0 = end */
	const struct fbx_command *cur;
	int stop;
};

#define EXPORT_AUDIT (1ull << 63)
/* set when a page ended among a command's deliveries: its line is out */
#define EXPORT_DLV (1ull << 62)

static int
export_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct export_ctx *x = arg;

	if (x->b.len >= x->b.max) {
		x->resume = EXPORT_DLV | d->id;
		x->stop = 1;
		return 1;
	}
	jprintf(&x->b,
	    "{\"kind\":\"delivery\",\"org\":\"%s\",\"command\":%llu,"
	    "\"delivery\":%llu,\"device\":\"%s\",\"state\":\"%s\","
	    "\"code\":%u,\"attempts\":%u,\"updated_ms\":%lld,\"history\":[",
	    x->cur->org, (unsigned long long)x->cur->id,
	    (unsigned long long)d->id, d->device, fbx_dstate_name(d->state),
	    d->code, d->attempts, (long long)d->updated_ms);
	for (unsigned i = 0; i < d->nhist; i++)
		jprintf(&x->b, "%s{\"state\":\"%s\",\"code\":%u,\"at_ms\":%lld}",
		    i ? "," : "", fbx_dstate_name(d->hist[i].state),
		    d->hist[i].code, (long long)d->hist[i].at_ms);
	jprintf(&x->b, "]}\n");
	return 0;
}

static int
export_cmd_cb(void *arg, const struct fbx_command *c0)
{
	struct export_ctx *x = arg;
	struct fbx_command c;
	struct cmdc *cc = cmd_find(x->e, c0->id);
	uint64_t from = FBX_DLV_ID(c0->id, 0);
	int rc;

	if (x->b.len >= x->b.max) {
		x->resume = from;
		x->stop = 1;
		return 1;
	}
	c = cc ? cc->c : *c0;
	if ((x->cursor & EXPORT_DLV) &&
	    FBX_DLV_CMD(x->cursor & ~EXPORT_DLV) == c0->id) {
		/* resume among this command's deliveries */
		from = x->cursor & ~EXPORT_DLV;
	} else {
		jprintf(&x->b,
		    "{\"kind\":\"command\",\"org\":\"%s\",\"command\":%llu,"
		    "\"type\":\"%s\",\"origin\":\"%s\",\"reason\":\"%s\","
		    "\"actor\":\"%s\",\"approved_by\":\"%s\",\"target\":\"%s\","
		    "\"group\":\"%s\",\"platform\":\"%s\",\"state\":\"%s\","
		    "\"created_ms\":%lld,\"expires_ms\":%lld,\"deliveries\":%u,"
		    "\"held_by\":\"%s\",\"resolved_by\":\"%s\",\"note\":",
		    c.org, (unsigned long long)c.id, fbx_cmd_type_name(c.type),
		    fbx_origin_name(c.origin), c.reason, c.actor, c.approved_by,
		    fbx_target_kind_name(c.target_kind), c.group,
		    fbx_platform_name(c.platform), fbx_cstate_name(c.state),
		    (long long)c.created_ms, (long long)c.expires_ms,
		    c.ndeliveries, c.held_by, c.resolved_by);
		jstr(&x->b, c.note);
		jprintf(&x->b, ",\"counts\":{");
		for (int s = 1; s < FBX_D_COUNT; s++)
			jprintf(&x->b, "%s\"%s\":%u", s > 1 ? "," : "",
			    fbx_dstate_name(s), c.counts[s]);
		jprintf(&x->b, "}}\n");
	}
	x->cur = &c;
	rc = fbx_store_dlv_scan(x->e->txn, from,
	    FBX_DLV_ID(c0->id, 0) + c.ndeliveries, 0, export_dlv_cb, x);
	x->cur = NULL;
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		x->stop = 1;
		set_err(x->e, rc);
		return 1;
	}
	return x->stop;
}

static int
export_audit_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct export_ctx *x = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];

	if (x->b.len >= x->b.max) {
		x->resume = EXPORT_AUDIT | seq;
		x->stop = 1;
		return 1;
	}
	if (audit_decode(seq, rec, len, &a, prev, hash) != 0 ||
	    (strcmp(a.org, x->req->org) != 0 && strcmp(a.org, "*") != 0))
		return 0;
	if ((x->req->u.export_.since_ms && a.at_ms < x->req->u.export_.since_ms) ||
	    (x->req->u.export_.until_ms && a.at_ms >= x->req->u.export_.until_ms))
		return 0;
	jprintf(&x->b,
	    "{\"kind\":\"audit\",\"seq\":%llu,\"at_ms\":%lld,\"org\":\"%s\","
	    "\"actor\":\"%s\",\"action\":\"%s\",\"note\":",
	    (unsigned long long)seq, (long long)a.at_ms, a.org, a.actor,
	    a.action);
	jstr(&x->b, a.note);
	jprintf(&x->b, ",\"params\":%s,\"prev\":\"%s\",\"hash\":\"%s\"}\n",
	    a.params[0] ? a.params : "{}", a.prev, a.hash);
	return 0;
}

/* handle_export - one page of JSON Lines: the organisation's commands in
 * the window with their deliveries and state histories, then its audit
 * records; the cursor says where the next page starts. */
static void
handle_export(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct export_ctx x;
	uint64_t cursor = req->u.export_.cursor;
	int rc = FBX_OK;

	memset(&x, 0, sizeof(x));
	x.e = e;
	x.req = req;
	x.cursor = cursor;
	/* a page ends after the record that crosses max: keep well under
	 * the reply's size cap */
	x.b.max = req->u.export_.max_bytes ? req->u.export_.max_bytes
	                                   : (1u << 20);
	if (x.b.max > (4u << 20))
		x.b.max = 4u << 20;
	x.b.cap = 65536;
	x.b.p = malloc(x.b.cap);
	if (x.b.p == NULL) {
		set_err(e, FBX_ENOMEM);
		return;
	}
	x.b.p[0] = '\0';
	if (!(cursor & EXPORT_AUDIT)) {
		rc = fbx_store_cmd_list(e->txn, req->org,
		    req->u.export_.since_ms, req->u.export_.until_ms,
		    cursor ? FBX_DLV_CMD(cursor & ~EXPORT_DLV) - 1 : 0,
		    0, export_cmd_cb, &x);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
		if (!x.stop)
			cursor = EXPORT_AUDIT;
	}
	if (rc == FBX_OK && !x.stop) {
		rc = fbx_store_audit_scan(e->txn, cursor & ~EXPORT_AUDIT,
		    export_audit_cb, &x);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
	}
	if (rc != FBX_OK || e->txn_err != FBX_OK) {
		set_err(e, rc != FBX_OK ? rc : e->txn_err);
		free(x.b.p);
		return;
	}
	if (x.b.full) {
		/* never a silent gap: refuse rather than drop records */
		console_error(e, in, req->request_id, req->kind, FBX_ETOOBIG,
		    "export page overflow; ask for smaller pages");
		free(x.b.p);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.export_.jsonl = x.b.p;
	rep.u.export_.len = x.b.len;
	rep.u.export_.next_cursor = x.stop ? x.resume : 0;
	console_reply(e, in, &rep);
	free(x.b.p);
}

/* ----------------------------------------------------------- retention */

/* prune_markers - the rollback markers of a pruned command's deliveries. */
static int
prune_markers(struct fbx_engine *e, const struct fbx_command *c)
{
	char prefix[FBX_KV_KEY_MAX];

	snprintf(prefix, sizeof(prefix), "comp/%s/%llu/", c->org,
	    (unsigned long long)c->id);
	return kv_delete_prefix(e, prefix);
}

/* Expired refusals and approvals ("rej/", "appr/"): human-scale in
 * number, swept once a minute. */
struct approval_sweep {
	struct fbx_engine *e;
	char (*keys)[FBX_KV_KEY_MAX];
	size_t n, cap;
};

static int
approval_sweep_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct approval_sweep *a = arg;
	struct approval_rec r;
	int64_t end;

	if (len != sizeof(r))
		return 0;
	memcpy(&r, val, sizeof(r));
	end = strncmp(key, "appr/", 5) == 0
	    ? r.expires_ms
	    : r.at_ms + (int64_t)a->e->o.approval_ttl_s * 1000;
	if (end > a->e->now)
		return 0;
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;
		char(*nk)[FBX_KV_KEY_MAX] = realloc(a->keys, ncap * sizeof(*nk));
		if (nk == NULL)
			return 1;
		a->keys = nk;
		a->cap = ncap;
	}
	snprintf(a->keys[a->n++], FBX_KV_KEY_MAX, "%s", key);
	return 0;
}

static void
prune_approvals(struct fbx_engine *e)
{
	struct approval_sweep a;
	int rc;

	memset(&a, 0, sizeof(a));
	a.e = e;
	rc = fbx_store_kv_scan(e->txn, "rej/", approval_sweep_cb, &a);
	if (rc == FBX_OK)
		rc = fbx_store_kv_scan(e->txn, "appr/", approval_sweep_cb, &a);
	for (size_t i = 0; i < a.n && rc == FBX_OK; i++)
		rc = fbx_store_kv_del(e->txn, a.keys[i]);
	free(a.keys);
	if (rc != FBX_OK)
		set_err(e, rc);
}

/* prune_step - delete journal records older than the retention, oldest
 * first, in bounded slices: finished commands (done or discarded) with
 * their deliveries and rollback markers. Kept: anything not finished
 * (held, paused rollouts, open deliveries) and the automatic commands of
 * a reason whose breaker is open (an incident may still be rolled
 * back). The audit log is never pruned. */
static void
prune_step(struct fbx_engine *e)
{
	int64_t cutoff = e->now - (int64_t)e->o.retention_s * 1000;
	uint32_t budget = 50000, looked = 0;
	uint64_t id = e->prune_next, first_kept = 0;
	int rc;

	if (e->o.retention_s == 0)
		return;
	for (; id <= e->last_cmd_id && budget > 0 && looked < 10000 &&
	    e->txn_err == FBX_OK;
	    id++) {
		struct fbx_command c;
		uint32_t deleted = 0;
		int keep = 0;
		looked++;
		rc = fbx_store_cmd_get(e->txn, id, &c);
		if (rc == FBX_ENOT_FOUND)
			continue; /* pruned before */
		if (rc != FBX_OK) {
			set_err(e, rc);
			return;
		}
		if (c.created_ms >= cutoff) {
			fbx_command_clear(&c);
			break; /* ids follow time: the rest is younger */
		}
		if (!fbx_cstate_terminal(c.state) || cmd_find(e, c.id) != NULL)
			keep = 1; /* held, paused, still delivering */
		if (c.id == e->last_cmd_id)
			keep = 1; /* the newest stays: ids are never reused */
		if (!keep && c.origin == FBX_ORIGIN_AUTOMATIC) {
			struct fbxi_breaker b, g;
			if (brk_load(e->txn, c.org, reason_of(&c), &b, NULL) ==
			        FBX_OK &&
			    brk_load(e->txn, "*", reason_of(&c), &g, NULL) ==
			        FBX_OK &&
			    (b.state == FBX_BS_OPEN || g.state == FBX_BS_OPEN))
				keep = 1; /* an open incident still needs it */
		}
		if (keep) {
			if (first_kept == 0)
				first_kept = id;
			fbx_command_clear(&c);
			continue;
		}
		rc = fbx_store_dlv_delete_range(e->txn, FBX_DLV_ID(c.id, 0),
		    FBX_DLV_ID(c.id + 1, 0), budget, &deleted);
		if (rc != FBX_OK) {
			fbx_command_clear(&c);
			set_err(e, rc);
			return;
		}
		budget -= deleted < budget ? deleted : budget;
		if (budget == 0) {
			/* more deliveries of this one next time */
			fbx_command_clear(&c);
			break;
		}
		rc = prune_markers(e, &c);
		if (rc == FBX_OK)
			rc = fbx_store_cmd_delete(e->txn, c.id);
		fbx_command_clear(&c);
		if (rc != FBX_OK) {
			set_err(e, rc);
			return;
		}
		e->pruned++;
	}
	/* next pass starts at the oldest command still kept */
	e->prune_next = first_kept != 0 ? first_kept : id;
}

static void
handle_console(struct fbx_engine *e, const struct inmsg *in)
{
	struct fbx_console_req req;
	char why[256] = "";
	int rc;

	rc = fbx_console_req_decode(zmq_msg_data((zmq_msg_t *)&in->body),
	    zmq_msg_size((zmq_msg_t *)&in->body), &req, why, sizeof(why));
	if (rc != FBX_OK) {
		FBX_LOGI("console: rejected request: %s: %s",
		    fbx_errname(rc), why);
		console_error(e, in, req.request_id, FBX_CREQ_NONE, rc, "%s",
		    why[0] ? why : fbx_strerror(rc));
		return;
	}
	if (e->draining) {
		console_error(e, in, req.request_id, req.kind,
		    FBX_ESHUTTING_DOWN, "engine is shutting down; retry");
		goto out;
	}
	/* global controls and the list of every organisation belong to the
	 * operator of the whole engine when one is configured */
	if (e->o.admin_org != NULL && e->o.admin_org[0] != '\0' &&
	    strcmp(req.org, e->o.admin_org) != 0 &&
	    ((req.kind == FBX_CREQ_BREAKER && req.u.breaker.global) ||
	        (req.kind == FBX_CREQ_LIMIT && req.u.limit.global &&
	            req.u.limit.set) ||
	        (req.kind == FBX_CREQ_RATE && req.u.rate.global &&
	            req.u.rate.set) ||
	        (req.kind == FBX_CREQ_BREAKER &&
	            req.u.breaker.op != FBX_BRK_STATUS &&
	            req.u.breaker.global) ||
	        req.kind == FBX_CREQ_LIST_ORGS ||
	        (req.kind == FBX_CREQ_ROLLBACK &&
	            req.u.rollback.sel.breaker_global &&
	            req.u.rollback.execute))) {
		console_error(e, in, req.request_id, req.kind, FBX_EFORBIDDEN,
		    "only organisation '%s' may act on global controls or "
		    "list organisations",
		    e->o.admin_org);
		goto out;
	}
	switch (req.kind) {
	case FBX_CREQ_SUBMIT:
		handle_submit(e, in, &req);
		break;
	case FBX_CREQ_GET_COMMAND:
		handle_get(e, in, &req);
		break;
	case FBX_CREQ_LIST_COMMANDS:
		handle_list(e, in, &req);
		break;
	case FBX_CREQ_ENROLL:
		handle_enroll(e, in, &req);
		break;
	case FBX_CREQ_REMOVE:
		handle_remove(e, in, &req);
		break;
	case FBX_CREQ_LIST_DEVICES:
		handle_list_devices(e, in, &req);
		break;
	case FBX_CREQ_LIST_GROUPS:
		handle_list_groups(e, in, &req);
		break;
	case FBX_CREQ_PING:
		handle_ping(e, in, &req);
		break;
	case FBX_CREQ_BREAKER:
		handle_breaker(e, in, &req);
		break;
	case FBX_CREQ_LIMIT:
		handle_limit(e, in, &req);
		break;
	case FBX_CREQ_RATE:
		handle_rate(e, in, &req);
		break;
	case FBX_CREQ_APPROVE:
		handle_approve(e, in, &req);
		break;
	case FBX_CREQ_ROLLOUT:
		handle_rollout(e, in, &req);
		break;
	case FBX_CREQ_LIST_HELD:
		handle_list_held(e, in, &req);
		break;
	case FBX_CREQ_ROLLBACK:
		handle_rollback(e, in, &req);
		break;
	case FBX_CREQ_REPLAY:
		handle_replay(e, in, &req);
		break;
	case FBX_CREQ_EXPORT:
		handle_export(e, in, &req);
		break;
	case FBX_CREQ_AUDIT_LIST:
		handle_audit_list(e, in, &req);
		break;
	case FBX_CREQ_AUDIT_VERIFY:
		handle_audit_verify(e, in, &req);
		break;
	case FBX_CREQ_LIST_ORGS:
		handle_list_orgs(e, in, &req);
		break;
	default:
		console_error(e, in, req.request_id, req.kind, FBX_EINVAL,
		    "unknown request kind %d", req.kind);
	}
out:
	fbx_console_req_free(&req);
}

/* ------------------------------------------------------ gateway messages */

static void
handle_hello(struct fbx_engine *e, const struct inmsg *in, struct gw *g,
    struct fbx_gw_msg *m)
{
	struct fbx_eng_msg w;

	if (g != NULL) {
		/* the same peer says hello again: it restarted and lost what
		 * it held */
		gw_requeue(e, g);
	} else {
		/* a gateway that reconnected under a new routing id */
		for (struct gw *o = e->gws; o != NULL; o = o->next) {
			if (!o->dead &&
			    strcmp(o->id, m->u.hello.gateway_id) == 0)
				gw_mark_dead(e, o, "replaced by a new session");
		}
		g = calloc(1, sizeof(*g));
		if (g == NULL) {
			set_err(e, FBX_ENOMEM);
			return;
		}
		fbxi_idmap_init(&g->inflight);
		g->rid_len = in->envlen[0];
		memcpy(g->rid, in->env[0], g->rid_len);
		g->next = e->gws;
		e->gws = g;
	}
	snprintf(g->id, sizeof(g->id), "%s", m->u.hello.gateway_id);
	free(g->orgs);
	g->orgs = NULL;
	g->norgs = 0;
	g->all_orgs = 0;
	for (size_t i = 0; i < m->u.hello.norgs; i++) {
		if (strcmp(m->u.hello.orgs[i], "*") == 0)
			g->all_orgs = 1;
	}
	if (!g->all_orgs && m->u.hello.norgs > 0) {
		g->orgs = malloc(m->u.hello.norgs * sizeof(*g->orgs));
		if (g->orgs == NULL) {
			set_err(e, FBX_ENOMEM);
			return;
		}
		memcpy(g->orgs, m->u.hello.orgs,
		    m->u.hello.norgs * sizeof(*g->orgs));
		g->norgs = m->u.hello.norgs;
	}
	g->window = m->u.hello.window;
	if (g->window > e->o.max_window)
		g->window = e->o.max_window;
	g->last_seen = e->mono;
	FBX_LOGI("gateway %s connected: %s, window %u", g->id,
	    g->all_orgs ? "all organisations" : "listed organisations",
	    g->window);
	memset(&w, 0, sizeof(w));
	w.kind = FBX_ENG_WELCOME;
	snprintf(w.u.welcome.engine_id, sizeof(w.u.welcome.engine_id),
	    "fuseboxd");
	w.u.welcome.heartbeat_ms = e->o.heartbeat_ms;
	w.u.welcome.max_batch = FBX_BATCH_MAX;
	gw_send(e, g, &w);
}

static void
mark_offline(struct fbx_engine *e, const char *org, const char *device)
{
	struct fbx_device dev;
	int rc = fbx_store_dev_get(e->txn, org, device, &dev);

	if (rc == FBX_OK && dev.online) {
		dev.online = 0;
		rc = fbx_store_dev_put(e->txn, &dev, NULL);
	}
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		set_err(e, rc);
}

static void
handle_results(struct fbx_engine *e, struct gw *g, struct fbx_gw_msg *m)
{
	struct fbx_eng_msg ack;

	for (size_t i = 0; i < m->u.results.n && e->txn_err == FBX_OK; i++) {
		const struct fbx_result_rec *r = &m->u.results.r[i];
		struct fbx_delivery d;
		struct cmdc *cc;
		uint64_t v;
		int to, old = 0, rc;

		e->results_in++;
		if (!fbxi_idmap_get(&g->inflight, r->delivery_id, &v)) {
			/* a resend, or a delivery this session does not hold */
			e->ignored_results++;
			continue;
		}
		switch (r->status) {
		case FBX_R_ACCEPTED:
			to = FBX_D_ACCEPTED;
			break;
		case FBX_R_SUCCEEDED:
			to = FBX_D_SUCCEEDED;
			break;
		case FBX_R_FAILED:
			to = FBX_D_FAILED;
			break;
		case FBX_R_OFFLINE:
			to = FBX_D_PENDING;
			break;
		default:
			e->ignored_results++;
			continue;
		}
		if (IF_STAGE(v) == IF_SENT && g->unanswered > 0)
			g->unanswered--;
		if (to == FBX_D_ACCEPTED) {
			if (IF_STAGE(v) == IF_ACCEPTED)
				continue; /* already accepted */
			(void)fbxi_idmap_put(&g->inflight, r->delivery_id,
			    IF_VAL(IF_ORGQ(v), IF_ACCEPTED));
		} else {
			fbxi_idmap_del(&g->inflight, r->delivery_id, NULL);
			inflight_release(e, v);
		}
		cc = cmd_find(e, FBX_DLV_CMD(r->delivery_id));
		if (cc == NULL)
			continue; /* command finished (expired) meanwhile */
		if (to == FBX_D_PENDING && cc->cancelling)
			to = FBX_D_CANCELLED; /* offline, and no longer wanted */
		/* a terminal outcome is final: the TTL sweep or a cancel may
		 * have got there first */
		rc = fbx_store_dlv_transition(e->txn, r->delivery_id,
		    (1u << FBX_D_QUEUED) | (1u << FBX_D_SENT) |
		        (1u << FBX_D_ACCEPTED) | (1u << FBX_D_PENDING),
		    to, r->code, e->now, 0, &old, &d);
		if (rc == FBX_ESTATE || rc == FBX_ENOT_FOUND)
			continue;
		if (rc != FBX_OK) {
			set_err(e, rc);
			break;
		}
		count_move(cc, old, to);
		ro_tally(cc, r->delivery_id, old, to, r->code);
		if (to == FBX_D_SUCCEEDED && cc->c.type == FBX_CMD_SET_POLICY)
			policy_applied(e, cc, d.device);
		if (to == FBX_D_PENDING) {
			rc = fbx_store_pend_add(
			    e->txn, cc->c.org, d.device, r->delivery_id);
			if (rc != FBX_OK) {
				set_err(e, rc);
				break;
			}
			mark_offline(e, cc->c.org, d.device);
		}
		if (fbx_dstate_terminal(to))
			cmd_maybe_done(cc);
	}
	memset(&ack, 0, sizeof(ack));
	ack.kind = FBX_ENG_ACK;
	ack.u.ack.batch_id = m->u.results.batch_id;
	ack.u.ack.count = (uint32_t)m->u.results.n;
	gw_send(e, g, &ack);
}

struct pend_ctx {
	uint64_t *ids;
	size_t n, cap;
};

static int
pend_cb(void *arg, uint64_t id)
{
	struct pend_ctx *p = arg;

	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		uint64_t *n = realloc(p->ids, ncap * sizeof(*n));
		if (n == NULL)
			return 1;
		p->ids = n;
		p->cap = ncap;
	}
	p->ids[p->n++] = id;
	return 0;
}

static void
handle_checkins(struct fbx_engine *e, struct gw *g, struct fbx_gw_msg *m)
{
	struct fbx_eng_msg ack;
	struct pend_ctx p = { NULL, 0, 0 };

	for (size_t i = 0; i < m->u.checkins.n && e->txn_err == FBX_OK; i++) {
		const struct fbx_checkin *ci = &m->u.checkins.c[i];
		struct fbx_device dev;
		int rc;

		if (!gw_serves(g, ci->org)) {
			FBX_LOGW("gateway %s: check-in for organisation %s "
			         "it does not serve, ignored",
			    g->id, ci->org);
			continue;
		}
		rc = fbx_store_dev_get(e->txn, ci->org, ci->device, &dev);
		if (rc == FBX_ENOT_FOUND)
			continue; /* not enrolled: nothing to resume */
		if (rc != FBX_OK) {
			set_err(e, rc);
			break;
		}
		if (ci->at_ms > dev.last_checkin_ms)
			dev.last_checkin_ms = ci->at_ms;
		if (ci->os_version[0] != '\0')
			snprintf(dev.os_version, sizeof(dev.os_version), "%s",
			    ci->os_version);
		if (ci->attestation != FBX_ATTEST_UNKNOWN)
			dev.attestation = ci->attestation;
		dev.online = 1;
		rc = fbx_store_dev_put(e->txn, &dev, NULL);
		if (rc != FBX_OK) {
			set_err(e, rc);
			break;
		}
		p.n = 0;
		rc = fbx_store_pend_list(
		    e->txn, ci->org, ci->device, pend_cb, &p);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			set_err(e, rc);
			break;
		}
		for (size_t j = 0; j < p.n && e->txn_err == FBX_OK; j++) {
			struct cmdc *cc = cmd_find(e, FBX_DLV_CMD(p.ids[j]));
			int old = 0;
			rc = fbx_store_pend_del(
			    e->txn, ci->org, ci->device, p.ids[j]);
			if (rc != FBX_OK) {
				set_err(e, rc);
				break;
			}
			if (cc == NULL || cc->expired)
				continue; /* expiry sweep owns it */
			if (cc->cancelling) {
				rc = fbx_store_dlv_set_state(e->txn, p.ids[j],
				    FBX_D_CANCELLED, 0, e->now, 0, &old, NULL);
				if (rc != FBX_OK) {
					set_err(e, rc);
					break;
				}
				count_move(cc, old, FBX_D_CANCELLED);
				cmd_maybe_done(cc);
				continue;
			}
			rc = fbx_store_dlv_set_state(e->txn, p.ids[j],
			    FBX_D_QUEUED, 0, e->now, 0, &old, NULL);
			if (rc != FBX_OK) {
				set_err(e, rc);
				break;
			}
			count_move(cc, old, FBX_D_QUEUED);
			ro_tally(cc, p.ids[j], old, FBX_D_QUEUED, 0);
			if (orgq_push(e, cc->q, cc->c.priority, p.ids[j]) !=
			    FBX_OK)
				set_err(e, FBX_ENOMEM);
		}
	}
	free(p.ids);
	memset(&ack, 0, sizeof(ack));
	ack.kind = FBX_ENG_ACK;
	ack.u.ack.batch_id = m->u.checkins.batch_id;
	ack.u.ack.count = (uint32_t)m->u.checkins.n;
	gw_send(e, g, &ack);
}

static void
handle_gateway(struct fbx_engine *e, const struct inmsg *in)
{
	struct fbx_gw_msg m;
	struct gw *g;
	char why[256] = "";
	int rc;

	if (in->nenv != 1) {
		FBX_LOGW("gateway: message with %d envelope frames dropped",
		    in->nenv);
		return;
	}
	g = gw_by_rid(e, in->env[0], in->envlen[0]);
	rc = fbx_gw_msg_decode(zmq_msg_data((zmq_msg_t *)&in->body),
	    zmq_msg_size((zmq_msg_t *)&in->body), &m, why, sizeof(why));
	if (rc != FBX_OK) {
		FBX_LOGW("gateway %s: bad message: %s: %s",
		    g ? g->id : "(no session)", fbx_errname(rc), why);
		gw_send_raw_error(e, in, rc, why[0] ? why : fbx_strerror(rc));
		return;
	}
	if (g == NULL && m.kind != FBX_GW_HELLO) {
		if (m.kind != FBX_GW_BYE)
			gw_send_raw_error(e, in, FBX_EPROTOCOL,
			    "no session: send HELLO first");
		goto out;
	}
	if (g != NULL)
		g->last_seen = e->mono;
	switch (m.kind) {
	case FBX_GW_HELLO:
		handle_hello(e, in, g, &m);
		break;
	case FBX_GW_CREDIT:
		g->window = m.u.credit.window > e->o.max_window
		    ? e->o.max_window
		    : m.u.credit.window;
		break;
	case FBX_GW_RESULTS:
		handle_results(e, g, &m);
		break;
	case FBX_GW_CHECKINS:
		handle_checkins(e, g, &m);
		break;
	case FBX_GW_HEARTBEAT: {
		/* answer, so a gateway can tell a live engine from a dead
		 * one without traffic */
		struct fbx_eng_msg ack;
		memset(&ack, 0, sizeof(ack));
		ack.kind = FBX_ENG_ACK;
		gw_send(e, g, &ack);
		break;
	}
	case FBX_GW_BYE:
		FBX_LOGI("gateway %s leaves: %s", g->id, m.u.bye.reason);
		g->dead = 1;
		break;
	default:
		gw_send_raw_error(e, in, FBX_EPROTOCOL, "unknown message");
	}
out:
	fbx_gw_msg_free(&m);
}

/* ------------------------------------------------------------- dispatch */

static void
gw_flush_batch(struct fbx_engine *e, struct gw *g)
{
	struct fbx_eng_msg m;

	if (g->obn == 0)
		return;
	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_DELIVERIES;
	m.u.deliveries.d = g->ob;
	m.u.deliveries.n = g->obn;
	gw_send(e, g, &m);
	g->obn = 0;
	g->obbytes = 0;
}

/* send_one - journal `id` as SENT and add it to g's outgoing batch.
 * @return 1 if it was handed out, 0 if skipped. */
static int
send_one(struct fbx_engine *e, struct gw *g, uint64_t id)
{
	struct cmdc *cc = cmd_find(e, FBX_DLV_CMD(id));
	struct fbx_delivery d;
	struct fbx_dlv_out *o;
	int old = 0, rc;

	if (cc == NULL || cc->expired || cc->cancelling)
		return 0;
	if (g->ob == NULL) {
		g->ob = malloc(e->o.send_batch * sizeof(*g->ob));
		g->obdev = malloc(e->o.send_batch * sizeof(*g->obdev));
		if (g->ob == NULL || g->obdev == NULL) {
			set_err(e, FBX_ENOMEM);
			return 0;
		}
	}
	/* only a QUEUED delivery goes out: one a rollback or a cancel made
	 * terminal while its id sat in a queue stays where it is */
	rc = fbx_store_dlv_transition(e->txn, id, 1u << FBX_D_QUEUED,
	    FBX_D_SENT, 0, e->now, 1, &old, &d);
	if (rc == FBX_ESTATE)
		return 0;
	if (rc != FBX_OK) {
		set_err(e, rc);
		return 0;
	}
	if (fbxi_idmap_put(&g->inflight, id, IF_VAL(cc->q, IF_SENT)) != 0) {
		set_err(e, FBX_ENOMEM);
		return 0;
	}
	count_move(cc, old, FBX_D_SENT);
	g->unanswered++;
	cc->q->inflight++;
	e->inflight_all++;
	e->dlv_sent++;
	o = &g->ob[g->obn];
	memcpy(g->obdev[g->obn], d.device, sizeof(g->obdev[g->obn]));
	o->delivery_id = id;
	o->command_id = cc->c.id;
	o->org = cc->c.org;
	o->device = g->obdev[g->obn];
	o->type = cc->c.type;
	o->payload = cc->c.payload;
	o->payload_len = cc->c.payload_len;
	o->expires_ms = cc->c.expires_ms;
	o->attempt = d.attempts;
	/* a message stays well under the gateway cap however big the
	 * payloads: each delivery carries its command's payload */
	g->obbytes += cc->c.payload_len + 2 * FBX_ID_MAX + 64;
	if (++g->obn == e->o.send_batch || g->obbytes >= GW_MSG_SOFT_MAX)
		gw_flush_batch(e, g);
	return 1;
}

/* org_allow - how many of `want` deliveries organisation q may send now
 * under its in-flight cap, the global cap and its token bucket. */
static uint32_t
org_allow(struct fbx_engine *e, struct orgq *q, uint32_t want)
{
	const struct fbx_rate_info *r = &q->rate;

	/* no organisation fills the gateways' windows alone: another
	 * organisation's command must not queue behind a whole window of
	 * this one's at the gateway (head-of-line blocking) */
	if (e->o.org_share_ppm > 0 && e->o.org_share_ppm < FBX_PPM) {
		uint64_t win = 0, cap;
		for (struct gw *g = e->gws; g != NULL; g = g->next) {
			if (!g->dead && gw_serves(g, q->org))
				win += g->window;
		}
		cap = win * e->o.org_share_ppm / FBX_PPM;
		if (cap < 1024)
			cap = 1024;
		if (q->inflight >= cap)
			return 0;
		if (want > cap - q->inflight)
			want = (uint32_t)(cap - q->inflight);
	}

	if (r->max_inflight > 0) {
		if (q->inflight >= r->max_inflight)
			return 0;
		if (want > r->max_inflight - q->inflight)
			want = r->max_inflight - q->inflight;
	}
	if (e->grate.max_inflight > 0) {
		if (e->inflight_all >= e->grate.max_inflight)
			return 0;
		if (want > e->grate.max_inflight - e->inflight_all)
			want = (uint32_t)(e->grate.max_inflight -
			    e->inflight_all);
	}
	want = fbxi_bucket_take(&q->bucket, e->now, r->rate_per_s, r->burst,
	    want);
	if (e->grate.rate_per_s > 0)
		want = fbxi_bucket_take(&e->gbucket, e->now,
		    e->grate.rate_per_s, e->grate.burst, want);
	return want;
}

/* dispatch_step - fill every gateway's credit from the organisation
 * queues: priority classes strictly in order (recovery first, bulk
 * rollouts last), and within a class round robin over organisations in
 * quanta, so one organisation's million-device fan-out does not delay
 * another's single command. Rate caps are applied per organisation. */
static void
dispatch_step(struct fbx_engine *e)
{
	uint32_t total = 0;

	for (int prio = 0; prio < FBX_PRIO_COUNT; prio++) {
		int progress = 1;
		while (progress && total < DISPATCH_MAX &&
		    e->txn_err == FBX_OK) {
			progress = 0;
			for (struct gw *g = e->gws; g != NULL; g = g->next) {
				if (g->dead || g->unanswered >= g->window)
					continue;
				for (size_t k = 0; k < e->rrlen &&
				    g->unanswered < g->window &&
				    total < DISPATCH_MAX;
				    k++) {
					struct orgq *q =
					    e->rr[(e->rrpos + k) % e->rrlen];
					struct ring *r = &q->r[prio];
					uint32_t want, allow, n = 0;
					if (r->len == 0 || !gw_serves(g, q->org))
						continue;
					orgq_load_rate(e, q);
					want = QUANTUM;
					if (want > g->window - g->unanswered)
						want = g->window - g->unanswered;
					if (want > r->len)
						want = (uint32_t)r->len;
					allow = org_allow(e, q, want);
					while (n < allow && r->len > 0 &&
					    e->txn_err == FBX_OK) {
						q->len--;
						if (send_one(e, g, ring_pop(r)))
							n++;
					}
					total += n;
					if (n > 0)
						progress = 1;
				}
			}
			if (e->rrlen > 0)
				e->rrpos = (e->rrpos + 1) % e->rrlen;
		}
	}
	for (struct gw *g = e->gws; g != NULL; g = g->next)
		gw_flush_batch(e, g);
	/* queued work that rate caps held back: poll, do not spin */
	e->stalled = total == 0 && e->rrlen > 0;
	/* drop emptied organisations from the round robin */
	for (size_t i = 0; i < e->rrlen;) {
		if (e->rr[i]->len == 0) {
			e->rr[i]->active = 0;
			e->rr[i] = e->rr[--e->rrlen];
		} else {
			i++;
		}
	}
	if (e->rrlen > 0)
		e->rrpos %= e->rrlen;
	else
		e->rrpos = 0;
}

static int
work_pending(struct fbx_engine *e)
{
	if (e->draining)
		return 0;
	if (e->xhead != NULL)
		return 1;
	if (e->rrlen == 0 || e->stalled)
		return 0;
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (!g->dead && g->unanswered < g->window)
			return 1;
	}
	return 0;
}

/* ----------------------------------------------------------- expiry */

struct sweep_ctx {
	uint64_t *ids;
	uint8_t *states;
	fbx_id *devs;
	size_t n, cap;
	uint64_t last;
};

static int
sweep_cb(void *arg, const struct fbx_delivery *d)
{
	struct sweep_ctx *s = arg;

	s->last = d->id;
	if (fbx_dstate_terminal(d->state))
		return 0;
	s->ids[s->n] = d->id;
	s->states[s->n] = d->state;
	memcpy(s->devs[s->n], d->device, sizeof(s->devs[s->n]));
	s->n++;
	return s->n >= s->cap;
}

/* sweep_range - from *idx on, move open deliveries of cc to `to`
 * (EXPIRED: every open one; CANCELLED: only those not yet handed out),
 * at most *budget of them. */
static void
sweep_range(struct fbx_engine *e, struct cmdc *cc, uint32_t *idx, int to,
    size_t *budget, struct sweep_ctx *s)
{
	uint64_t base = FBX_DLV_ID(cc->c.id, 0);
	int rc;

	while (*budget > 0 && *idx < cc->c.ndeliveries &&
	    e->txn_err == FBX_OK) {
		s->n = 0;
		s->last = 0;
		rc = fbx_store_dlv_scan(e->txn, base + *idx,
		    base + cc->c.ndeliveries, 0, sweep_cb, s);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			set_err(e, rc);
			return;
		}
		for (size_t i = 0; i < s->n; i++) {
			int old = 0;
			if (to == FBX_D_CANCELLED &&
			    s->states[i] != FBX_D_QUEUED &&
			    s->states[i] != FBX_D_PENDING)
				continue; /* in a gateway's hands: let it end */
			rc = fbx_store_dlv_set_state(
			    e->txn, s->ids[i], to, 0, e->now, 0, &old, NULL);
			if (rc == FBX_OK && s->states[i] == FBX_D_PENDING)
				rc = fbx_store_pend_del(e->txn, cc->c.org,
				    s->devs[i], s->ids[i]);
			if (rc != FBX_OK) {
				set_err(e, rc);
				return;
			}
			count_move(cc, old, to);
			ro_tally(cc, s->ids[i], old, to, 0);
		}
		*budget = *budget > s->n ? *budget - s->n : 0;
		if (s->n < s->cap || s->last == 0)
			*idx = cc->c.ndeliveries;
		else
			*idx = FBX_DLV_IDX(s->last) + 1;
	}
}

/* sweep_step - move the open deliveries of commands past their TTL to
 * EXPIRED, and the unsent ones of cancelled rollouts to CANCELLED, in
 * bounded slices. Held commands do not expire: they wait for an
 * operator. */
static void
sweep_step(struct fbx_engine *e)
{
	struct sweep_ctx s;
	size_t pos = 0, budget = SWEEP_MAX;
	uint64_t k, v;

	memset(&s, 0, sizeof(s));
	s.cap = 8192;
	s.ids = malloc(s.cap * sizeof(*s.ids));
	s.states = malloc(s.cap);
	s.devs = malloc(s.cap * sizeof(*s.devs));
	if (!s.ids || !s.states || !s.devs) {
		set_err(e, FBX_ENOMEM);
		goto out;
	}
	while (budget > 0 && e->txn_err == FBX_OK &&
	    fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;

		if (fbx_cstate_terminal(cc->c.state) ||
		    cc->c.state == FBX_C_HELD)
			continue;
		if (cc->cancelling && cc->cancel_idx < cc->c.ndeliveries)
			sweep_range(e, cc, &cc->cancel_idx, FBX_D_CANCELLED,
			    &budget, &s);
		if (cc->c.expires_ms <= e->now) {
			if (!cc->expired) {
				cc->expired = 1;
				FBX_LOGI("command %llu expired with %u "
				         "deliveries open",
				    (unsigned long long)cc->c.id, cmd_open(cc));
				if (cc->c.state == FBX_C_EXPANDING) {
					xlist_remove(e, cc);
					cc->c.state = FBX_C_ACTIVE;
					cc->dirty = 1;
				}
			}
			sweep_range(e, cc, &cc->sweep_idx, FBX_D_EXPIRED,
			    &budget, &s);
		}
		cmd_maybe_done(cc);
	}
out:
	free(s.ids);
	free(s.states);
	free(s.devs);
}

/* flush_commands - journal every command whose state or cursor moved;
 * drop finished ones from the cache. */
static void
flush_commands(struct fbx_engine *e)
{
	size_t pos = 0;
	uint64_t k, v;

	while (e->txn_err == FBX_OK &&
	    fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (!cc->dirty)
			continue;
		int rc = fbx_store_cmd_put(e->txn, &cc->c);
		if (rc != FBX_OK)
			set_err(e, rc);
		cc->dirty = 0;
	}
}

static void
reap_done(struct fbx_engine *e)
{
	size_t pos = 0, n = 0;
	uint64_t k, v, *done = NULL;

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (!fbx_cstate_terminal(cc->c.state) || cc->dirty)
			continue;
		uint64_t *nd = realloc(done, (n + 1) * sizeof(*nd));
		if (nd == NULL)
			break;
		done = nd;
		done[n++] = k;
	}
	for (size_t i = 0; i < n; i++) {
		struct cmdc *cc = cmd_find(e, done[i]);
		if (cc != NULL) {
			FBX_LOGI("command %llu done: %u succeeded, %u failed, "
			         "%u expired",
			    (unsigned long long)cc->c.id,
			    cc->c.counts[FBX_D_SUCCEEDED],
			    cc->c.counts[FBX_D_FAILED],
			    cc->c.counts[FBX_D_EXPIRED]);
			cmd_cache_free(e, cc);
		}
	}
	free(done);
}

/* ------------------------------------------------------------ recovery */

static int
rebuild_cmd_cb(void *arg, const struct fbx_command *c)
{
	struct rebuild_ctx *r = arg;
	struct cmdc *cc = cmd_cache_add(r->e, c);
	int rc;

	if (cc == NULL) {
		r->err = FBX_ENOMEM;
		return 1;
	}
	memset(cc->c.counts, 0, sizeof(cc->c.counts));
	r->cc = cc;
	rc = fbx_store_dlv_scan(r->e->txn, FBX_DLV_ID(c->id, 0),
	    FBX_DLV_ID(c->id + 1, 0), 0, rebuild_dlv_cb, r);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		r->err = rc;
	return r->err != FBX_OK;
}

static void
clear_memory(struct fbx_engine *e)
{
	size_t pos = 0;
	uint64_t k, v;

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		fbx_command_clear(&cc->c);
		free(cc);
	}
	fbxi_idmap_clear(&e->cmds);
	e->xhead = e->xtail = NULL;
	for (size_t b = 0; b < 1024; b++) {
		for (struct orgq *q = e->qtab[b]; q != NULL; q = q->hnext)
			orgq_clear(q);
	}
	e->rrlen = e->rrpos = 0;
	e->inflight_all = 0;
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		fbxi_idmap_clear(&g->inflight);
		g->unanswered = 0;
		g->obn = 0;
	}
}

/* rebuild - make memory match the store: load every command not DONE,
 * recount its deliveries from their records, queue the open ones, and
 * journal deliveries left SENT/ACCEPTED by a lost process as QUEUED again
 * (they are re-sent with the same delivery id). Used at start-up and
 * after a failed commit. */
static int
rebuild(struct fbx_engine *e)
{
	struct rebuild_ctx r;
	size_t ncmd;
	int rc;

	memset(&r, 0, sizeof(r));
	r.e = e;
	clear_memory(e);
	rc = fbx_txn_begin(e->st, 0, &e->txn);
	if (rc != FBX_OK)
		return rc;
	rc = rate_load(e->txn, "*", &e->grate);
	if (rc == FBX_OK)
		rc = audit_load_last(e, e->txn);
	if (rc == FBX_OK)
		rc = fbx_store_cmd_last(e->txn, &e->last_cmd_id);
	if (rc == FBX_OK)
		rc = fbx_store_cmd_active(e->txn, rebuild_cmd_cb, &r);
	fbx_txn_abort(e->txn);
	e->txn = NULL;
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = r.err;
	if (rc != FBX_OK)
		goto out;
	ncmd = e->cmds.len;
	e->now = now_ms();
	e->mono = mono_ms();
	/* journal the re-queue in bounded transactions */
	for (size_t i = 0; i < r.nrequeue;) {
		size_t end = i + 50000 < r.nrequeue ? i + 50000 : r.nrequeue;
		rc = fbx_store_reserve(e->st, (end - i) * 512 + (16u << 20));
		if (rc == FBX_OK)
			rc = fbx_txn_begin(e->st, 1, &e->txn);
		if (rc != FBX_OK)
			goto out;
		for (size_t j = i; j < end && rc == FBX_OK; j++) {
			struct cmdc *cc = cmd_find(e, FBX_DLV_CMD(r.requeue[j]));
			int old = 0;
			rc = fbx_store_dlv_set_state(e->txn, r.requeue[j],
			    FBX_D_QUEUED, 0, e->now, 0, &old, NULL);
			if (rc == FBX_OK && cc != NULL)
				count_move(cc, old, FBX_D_QUEUED);
		}
		if (rc != FBX_OK) {
			fbx_txn_abort(e->txn);
			e->txn = NULL;
			goto out;
		}
		rc = fbx_txn_commit(e->txn);
		e->txn = NULL;
		if (rc != FBX_OK)
			goto out;
		i = end;
	}
	/* commands whose last results landed before their DONE did */
	{
		size_t pos = 0;
		uint64_t k, v;
		while (fbxi_idmap_next(&e->cmds, &pos, &k, &v))
			cmd_maybe_done((struct cmdc *)(uintptr_t)v);
	}
	FBX_LOGI("recovered %zu open commands, %zu deliveries re-queued", ncmd,
	    r.nrequeue);
out:
	free(r.requeue);
	return rc;
}

/* -------------------------------------------------------------- the loop */

static void
close_inputs(struct fbx_engine *e)
{
	for (size_t i = 0; i < e->nin; i++)
		zmq_msg_close(&e->in[i].body);
	e->nin = 0;
}

static void
read_inputs(struct fbx_engine *e, void *sock, int from_gw, size_t max,
    size_t max_bytes)
{
	size_t n = 0, bytes = 0;

	while (n < max && bytes < max_bytes) {
		struct inmsg *m;
		zmq_msg_t part;
		int first = 1, bad = 0;

		if (e->nin == e->incap) {
			size_t ncap = e->incap ? e->incap * 2 : 256;
			struct inmsg *ni = realloc(e->in, ncap * sizeof(*ni));
			if (ni == NULL)
				return;
			e->in = ni;
			e->incap = ncap;
		}
		m = &e->in[e->nin];
		m->from_gw = from_gw;
		m->nenv = 0;
		zmq_msg_init(&m->body);
		for (;;) {
			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, sock, first ? ZMQ_DONTWAIT : 0) <
			    0) {
				zmq_msg_close(&part);
				if (first) {
					zmq_msg_close(&m->body);
					return;
				}
				bad = 1;
				break;
			}
			first = 0;
			if (!zmq_msg_more(&part)) {
				zmq_msg_move(&m->body, &part);
				zmq_msg_close(&part);
				break;
			}
			if (m->nenv < ENV_MAX && zmq_msg_size(&part) <= RID_MAX) {
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
			/* counted, so a flood of them cannot hold the turn */
			bytes += zmq_msg_size(&m->body) + RID_MAX;
			n++;
			zmq_msg_close(&m->body);
			FBX_LOGW("%s: malformed envelope dropped",
			    from_gw ? "gateway" : "console");
			continue;
		}
		bytes += zmq_msg_size(&m->body);
		e->nin++;
		n++;
	}
}

static void
fail_console_inputs(struct fbx_engine *e, int rc)
{
	for (size_t i = 0; i < e->nin; i++) {
		struct fbx_console_req req;
		const struct inmsg *in = &e->in[i];
		if (in->from_gw)
			continue;
		if (fbx_console_req_decode(zmq_msg_data((zmq_msg_t *)&in->body),
		        zmq_msg_size((zmq_msg_t *)&in->body), &req, NULL,
		        0) != FBX_OK) {
			console_error(e, in, req.request_id, FBX_CREQ_NONE,
			    rc, "storage failure: %s", fbx_strerror(rc));
			continue;
		}
		console_error(e, in, req.request_id, req.kind, rc,
		    "not recorded: storage failure: %s; nothing accepted "
		    "before was lost, retry later",
		    fbx_strerror(rc));
		fbx_console_req_free(&req);
	}
}

static int
turn(struct fbx_engine *e)
{
	int64_t t0 = 0, t_work = 0, t_commit = 0;
	uint64_t res0 = 0, sent0 = 0;
	int rc = FBX_OK;

	/* gateway results are taken in slices (about 16,000 results) so a
	 * turn stays short and a console request never waits long behind a
	 * big fan-out; console requests are small and read in full */
	read_inputs(e, e->gateway, 1, IN_MSGS_MAX, GW_BYTES_PER_TURN);
	read_inputs(e, e->console, 0, IN_MSGS_MAX, IN_BYTES_MAX);
	e->mono = mono_ms();
	/* nothing arrived and nothing is due: no transaction at all */
	if (e->nin == 0 && !work_pending(e) && !e->stalled &&
	    e->mono < e->next_tick)
		return FBX_OK;
	e->next_tick = e->mono + 100;
	t0 = mono_us();
	res0 = e->results_in;
	sent0 = e->dlv_sent;
	for (int attempt = 0; attempt < COMMIT_RETRIES; attempt++) {
		size_t need = (64u << 20);
		e->now = now_ms();
		e->mono = mono_ms();
		e->txn_err = FBX_OK;
		e->xbudget = e->o.expand_chunk;
		for (size_t i = 0; i < e->nin; i++)
			need += zmq_msg_size(&e->in[i].body) * 4;
		rc = fbx_store_reserve(e->st, need);
		if (rc == FBX_OK)
			rc = fbx_txn_begin(e->st, 1, &e->txn);
		if (rc != FBX_OK)
			goto failed;
		for (size_t i = 0; i < e->nin && e->txn_err == FBX_OK; i++) {
			if (e->in[i].from_gw)
				handle_gateway(e, &e->in[i]);
			else
				handle_console(e, &e->in[i]);
		}
		if (e->txn_err == FBX_OK)
			gw_reap(e);
		if (!e->draining && e->txn_err == FBX_OK) {
			expand_step(e);
			rollout_step(e);
			dispatch_step(e);
		}
		if (e->txn_err == FBX_OK && e->now >= e->next_sweep) {
			sweep_step(e);
			e->next_sweep = e->now + 500;
		}
		if (e->txn_err == FBX_OK && e->o.retention_s > 0 &&
		    e->now >= e->next_prune) {
			prune_step(e);
			e->next_prune = e->now + 1000;
		}
		if (e->txn_err == FBX_OK && e->now >= e->next_approval_prune) {
			prune_approvals(e);
			e->next_approval_prune = e->now + 60000;
		}
		flush_commands(e);
		t_work = mono_us();
		if (e->txn_err != FBX_OK) {
			rc = e->txn_err;
			fbx_txn_abort(e->txn);
		} else {
			rc = fbx_txn_commit(e->txn);
		}
		t_commit = mono_us();
		e->txn = NULL;
		if (rc == FBX_OK) {
			e->commits++;
			out_flush(e);
			reap_done(e);
			/* a slow turn delays every reply: say where it went */
			if (t_commit - t0 > 500000 ||
			    fbxi_log_level() >= FBX_LOG_DEBUG)
				fbxi_log(t_commit - t0 > 500000 ? FBX_LOG_WARN
				                               : FBX_LOG_DEBUG,
				    "turn: %zu msgs, %llu results, %llu sent, "
				         "work %lld us, commit %lld us, send %lld "
				         "us",
				    e->nin,
				    (unsigned long long)(e->results_in - res0),
				    (unsigned long long)(e->dlv_sent - sent0),
				    (long long)(t_work - t0),
				    (long long)(t_commit - t_work),
				    (long long)(mono_us() - t_commit));
			break;
		}
	failed:
		out_discard(e);
		if (rc == FBX_EMAP_FULL && attempt + 1 < COMMIT_RETRIES &&
		    fbx_store_grow(e->st) == FBX_OK) {
			FBX_LOGI("store map grown; redoing the batch");
			if (rebuild(e) == FBX_OK)
				continue;
		}
		if (rc == FBX_EMAP_FULL)
			rc = FBX_EDISK_FULL;
		/* disk full, I/O error, a damaged record: nothing of this
		 * batch happened; tell the submitters, keep serving, try
		 * again later. What was accepted before is untouched. */
		FBX_LOGE("turn failed: %s; %zu messages answered with an "
		         "error or left for their sender to retry",
		    fbx_strerror(rc), e->nin);
		if (rebuild(e) != FBX_OK) {
			/* memory no longer matches the store and cannot be
			 * made to: stop, and let a restart recover from disk
			 * (nothing acknowledged is lost by that) */
			FBX_LOGE("recovery after a failed turn failed; "
			         "stopping so that a restart recovers");
			close_inputs(e);
			return FBX_ESTORAGE;
		}
		fail_console_inputs(e, rc);
		out_flush(e);
		struct timespec ts = { 0, 200 * 1000000L };
		nanosleep(&ts, NULL);
		rc = FBX_OK;
		break;
	}
	close_inputs(e);
	return rc;
}

static size_t
inflight_total(struct fbx_engine *e)
{
	size_t n = 0;

	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (!g->dead)
			n += g->inflight.len;
	}
	return n;
}

int
fbx_engine_run(struct fbx_engine *e)
{
	zmq_pollitem_t items[2];
	int rc = FBX_OK;

	for (;;) {
		if (e->stop && !e->draining) {
			e->draining = 1;
			e->drain_deadline = mono_ms() + e->o.drain_ms;
			FBX_LOGI("draining: %zu deliveries in flight",
			    inflight_total(e));
		}
		if (e->draining &&
		    (inflight_total(e) == 0 || mono_ms() >= e->drain_deadline))
			break;
		items[0] = (zmq_pollitem_t) { e->console, 0, ZMQ_POLLIN, 0 };
		items[1] = (zmq_pollitem_t) { e->gateway, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(items, 2,
		        work_pending(e) ? 0 : (e->stalled ? 5 : 50)) < 0 &&
		    errno != EINTR) {
			FBX_LOGE("poll: %s", zmq_strerror(errno));
			rc = FBX_EIO;
			break;
		}
		rc = turn(e);
		if (rc != FBX_OK)
			break;
	}
	FBX_LOGI("stopped: %zu deliveries still in flight will be re-sent "
	         "after restart",
	    inflight_total(e));
	return rc;
}

void
fbx_engine_stop(struct fbx_engine *e)
{
	e->stop = 1;
}

static int
make_socket(struct fbx_engine *e, const char *ep, int gateway, void **out)
{
	void *s = zmq_socket(e->zctx, ZMQ_ROUTER);
	int zero = 0, one = 1, hwm = gateway ? 0 : 100000;
	int64_t maxmsg = (int64_t)(gateway ? FBX_GATEWAY_MSG_MAX
	                                   : FBX_CONSOLE_MSG_MAX) *
	    2;

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

int
fbx_engine_open(const struct fbx_engine_opts *opts, fbx_engine **out)
{
	struct fbx_engine *e;
	struct fbx_store_opts so;
	int rc;

	if (opts == NULL || opts->data_dir == NULL ||
	    opts->console_ep == NULL || opts->gateway_ep == NULL)
		return FBX_EINVAL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return FBX_ENOMEM;
	e->o = *opts;
	if (e->o.heartbeat_ms == 0)
		e->o.heartbeat_ms = 1000;
	if (e->o.expand_chunk == 0)
		e->o.expand_chunk = 16384;
	if (e->o.send_batch == 0)
		e->o.send_batch = 8192;
	if (e->o.send_batch > FBX_BATCH_MAX)
		e->o.send_batch = FBX_BATCH_MAX;
	if (e->o.max_window == 0)
		e->o.max_window = 1u << 20;
	if (e->o.org_share_ppm == 0)
		e->o.org_share_ppm = 250000;
	if (e->o.drain_ms == 0)
		e->o.drain_ms = 5000;
	if (e->o.default_ttl_s == 0)
		e->o.default_ttl_s = 86400;
	if (e->o.approval_ttl_s == 0)
		e->o.approval_ttl_s = 86400;
	e->started_ms = mono_ms();
	fbxi_idmap_init(&e->cmds);
	e->prune_next = 1;

	memset(&so, 0, sizeof(so));
	so.path = e->o.data_dir;
	so.map_size = e->o.map_size;
	so.durability = e->o.durability;
	rc = fbx_store_open(&so, &e->st);
	if (rc != FBX_OK) {
		FBX_LOGE("cannot open store %s: %s", e->o.data_dir,
		    fbx_strerror(rc));
		goto fail;
	}
	{
		struct fbx_store_stat ss;
		if (fbx_store_stat(e->st, &ss) == FBX_OK &&
		    ss.readers_cleared > 0)
			FBX_LOGW("cleared %u stale LMDB reader slots left by "
			         "dead processes",
			    ss.readers_cleared);
	}
	rc = rebuild(e);
	if (rc != FBX_OK) {
		FBX_LOGE("recovery failed: %s", fbx_strerror(rc));
		goto fail;
	}
	e->zctx = zmq_ctx_new();
	if (e->zctx == NULL) {
		rc = FBX_ENOMEM;
		goto fail;
	}
	rc = make_socket(e, e->o.console_ep, 0, &e->console);
	if (rc == FBX_OK)
		rc = make_socket(e, e->o.gateway_ep, 1, &e->gateway);
	if (rc != FBX_OK)
		goto fail;
	if (e->o.events_ep != NULL && e->o.events_ep[0] != '\0') {
		int zero = 0;
		e->events = zmq_socket(e->zctx, ZMQ_PUB);
		if (e->events == NULL ||
		    zmq_setsockopt(e->events, ZMQ_LINGER, &zero,
		        sizeof(zero)) != 0 ||
		    zmq_bind(e->events, e->o.events_ep) != 0) {
			FBX_LOGE("cannot bind events %s: %s", e->o.events_ep,
			    zmq_strerror(errno));
			rc = FBX_EUNREACHABLE;
			goto fail;
		}
	}
	FBX_LOGI("fuseboxd %s: console %s, gateways %s, store %s", FBX_VERSION,
	    e->o.console_ep, e->o.gateway_ep, e->o.data_dir);
	*out = e;
	return FBX_OK;
fail:
	fbx_engine_close(e);
	return rc;
}

void
fbx_engine_close(struct fbx_engine *e)
{
	struct gw *g, *gn;

	if (e == NULL)
		return;
	clear_memory(e);
	fbxi_idmap_fini(&e->cmds);
	for (size_t b = 0; b < 1024; b++) {
		struct orgq *q = e->qtab[b], *n;
		for (; q != NULL; q = n) {
			n = q->hnext;
			orgq_clear(q);
			free(q);
		}
	}
	free(e->rr);
	for (g = e->gws; g != NULL; g = gn) {
		gn = g->next;
		gw_free(g);
	}
	out_discard(e);
	close_inputs(e);
	free(e->in);
	if (e->console != NULL)
		zmq_close(e->console);
	if (e->gateway != NULL)
		zmq_close(e->gateway);
	if (e->events != NULL)
		zmq_close(e->events);
	if (e->zctx != NULL)
		zmq_ctx_term(e->zctx);
	fbx_store_close(e->st);
	free(e);
}
