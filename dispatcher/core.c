/*
 * core.c: what every part of the engine needs and that calls nothing
 * above it: the error latch of a turn or request, the command cache
 * (lookup, load, counts, DONE), the queue of outputs that leave after the
 * commit and the console replies put on it, the deletion of engine-owned
 * records by prefix, the clocks (the system's, or a test's) and the
 * backoff after failures. Above it only queue.c, settle.c's heap
 * insertion and supersede.c's join and leave of a cached command.
 */
#include <time.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fbxi_clock - the engine's clock: the system's unless a test gave one.
 * monotonic: timeouts and liveness; else wall time, what is journaled. */
int64_t
fbxi_clock(const struct fbx_engine *e, int monotonic)
{
	if (e->o.clock != NULL)
		return e->o.clock(e->o.clock_arg, monotonic);
	return monotonic ? fbxi_mono_ms() : now_ms();
}

/* fbxi_retry_delay - backoff after failed turns: 100 ms doubling to 5 s. */
int64_t
fbxi_retry_delay(uint32_t streak)
{
	int64_t d = 100;

	while (streak-- > 1 && d < 5000)
		d *= 2;
	return d < 5000 ? d : 5000;
}

int64_t
fbxi_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fbxi_set_err - latch the first error: the request's while a console
 * request runs (console_isolated decides what it fails), else the
 * turn's. */
void
fbxi_set_err(struct fbx_engine *e, int rc)
{
	if (rc == FBX_OK)
		return;
	if (e->in_request) {
		if (e->req_err == FBX_OK)
			e->req_err = rc;
		return;
	}
	if (fbxi_err(e) == FBX_OK)
		e->txn_err = rc;
}

/* note_printf - format into a fixed note field; long operator notes are
 * cut, never overflow. */
void
fbxi_note_printf(char *dst, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, cap, fmt, ap);
	va_end(ap);
}

struct cmdc *
fbxi_cmd_find(struct fbx_engine *e, uint64_t id)
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

void
fbxi_xlist_add(struct fbx_engine *e, struct cmdc *cc)
{
	cc->xnext = NULL;
	if (e->xtail != NULL)
		e->xtail->xnext = cc;
	else
		e->xhead = cc;
	e->xtail = cc;
}

void
fbxi_xlist_remove(struct fbx_engine *e, struct cmdc *cc)
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

struct cmdc *
fbxi_cmd_cache_add(struct fbx_engine *e, const struct fbx_command *c)
{
	struct cmdc *cc = calloc(1, sizeof(*cc));

	if (cc == NULL)
		return NULL;
	if (cmd_dup(&cc->c, c) != FBX_OK)
		goto fail;
	cc->eng = e;
	cc->ocounts[0] = c->counts[FBX_D_SUCCEEDED];
	cc->ocounts[1] = c->counts[FBX_D_FAILED];
	cc->ocounts[2] = c->counts[FBX_D_EXPIRED];
	cc->q = fbxi_orgq_get(e, c->org);
	if (cc->q == NULL)
		goto fail;
	if (fbxi_idmap_put(&e->cmds, c->id, (uint64_t)(uintptr_t)cc) != 0)
		goto fail;
	/* a cancelled rollout stays cancelled across recovery */
	cc->cancelling = c->rollout.enabled && c->ro.state == FBX_RO_CANCELLED;
	if ((c->state == FBX_C_SETTLING &&
	        fbxi_settle_add(e, c->id, c->settle_until_ms) != 0) ||
	    fbxi_theap_push(&e->expiry, c->expires_ms, c->id) != 0 ||
	    (c->rollout.enabled &&
	        fbxi_idmap_put(&e->rollouts, c->id, (uint64_t)(uintptr_t)cc) !=
	            0) ||
	    (cc->cancelling &&
	        fbxi_idmap_put(&e->sweeping, c->id, (uint64_t)(uintptr_t)cc) !=
	            0)) {
		/* heap entries of a command that is not cached are stale:
		 * their owners skip them */
		fbxi_idmap_del(&e->cmds, c->id, NULL);
		fbxi_idmap_del(&e->rollouts, c->id, NULL);
		goto fail;
	}
	if (fbxi_supersede_join(e, cc) != 0) {
		fbxi_idmap_del(&e->cmds, c->id, NULL);
		fbxi_idmap_del(&e->rollouts, c->id, NULL);
		fbxi_idmap_del(&e->sweeping, c->id, NULL);
		goto fail;
	}
	if (c->state == FBX_C_EXPANDING && !cc->cancelling)
		fbxi_xlist_add(e, cc);
	return cc;
fail:
	fbx_command_clear(&cc->c);
	free(cc);
	return NULL;
}

void
fbxi_cmd_cache_free(struct fbx_engine *e, struct cmdc *cc)
{
	/* never while it is on the turn's dirty list: reap_done frees
	 * after the commit, when the list is empty */
	fbxi_idmap_del(&e->cmds, cc->c.id, NULL);
	fbxi_idmap_del(&e->rollouts, cc->c.id, NULL);
	fbxi_idmap_del(&e->sweeping, cc->c.id, NULL);
	fbxi_xlist_remove(e, cc);
	fbxi_supersede_leave(e, cc);
	fbx_command_clear(&cc->c);
	free(cc->parked);
	free(cc->xgroups);
	free(cc);
}

/* <ns>/<org>/<command>/<delivery>: a marker of one delivery */
static void
marker_key(char *k, size_t cap, const char *ns, const char *org, uint64_t dlv)
{
	snprintf(k, cap, "%s/%s/%llu/%llu", ns, org,
	    (unsigned long long)FBX_DLV_CMD(dlv), (unsigned long long)dlv);
}

int
fbxi_dlv_withdrawn(const struct fbx_engine *e, uint64_t id)
{
	return e->rbd.len > 0 && fbxi_idmap_get(&e->rbd, id, NULL);
}


/* the mark's value: the rollback's id, then the principal of the key
 * whose gateway held the delivery with its NUL (none: no session held
 * it) */
struct rbd_val {
	uint64_t rbseq;
	char principal[FBX_ID_MAX + 1];
};

int
fbxi_dlv_withdraw(struct fbx_engine *e, const char *org, uint64_t id,
    uint64_t rbseq)
{
	char k[FBX_KV_KEY_MAX];
	struct rbd_val v;
	struct gw *h = fbxi_gw_holder(e, id, NULL);
	int rc;

	memset(&v, 0, sizeof(v));
	v.rbseq = rbseq;
	if (h != NULL)
		snprintf(v.principal, sizeof(v.principal), "%s", h->principal);
	marker_key(k, sizeof(k), "rbd", org, id);
	rc = fbx_store_kv_put(e->txn, k, &v,
	    offsetof(struct rbd_val, principal) +
	        (h != NULL ? strlen(v.principal) + 1 : 0));
	if (rc != FBX_OK)
		return rc;
	/* a failed turn rebuilds memory from the store (the entry goes
	 * with the transaction) */
	return fbxi_idmap_put(&e->rbd, id, rbseq) == 0 ? FBX_OK : FBX_ENOMEM;
}

int
fbxi_dlv_unwithdraw(struct fbx_engine *e, const char *org, uint64_t id)
{
	char k[FBX_KV_KEY_MAX];
	int rc;

	if (!fbxi_dlv_withdrawn(e, id))
		return FBX_OK;
	marker_key(k, sizeof(k), "rbd", org, id);
	rc = fbx_store_kv_del(e->txn, k);
	if (rc != FBX_OK)
		return rc;
	/* a failed turn rebuilds memory from the store */
	fbxi_idmap_del(&e->rbd, id, NULL);
	return FBX_OK;
}

int
fbxi_dlv_unwithdraw_by(struct fbx_engine *e, const char *org, uint64_t id,
    const char *principal)
{
	char k[FBX_KV_KEY_MAX];
	struct rbd_val v;
	size_t len = 0, n, off = offsetof(struct rbd_val, principal);
	int rc;

	if (!fbxi_dlv_withdrawn(e, id))
		return FBX_OK;
	memset(&v, 0, sizeof(v));
	marker_key(k, sizeof(k), "rbd", org, id);
	rc = fbx_store_kv_get(e->txn, k, &v, off + sizeof(v.principal), &len);
	if (rc == FBX_ENOT_FOUND || rc == FBX_ECORRUPT)
		return FBX_OK; /* nothing to go by: the mark stays */
	if (rc != FBX_OK)
		return rc;
	n = strnlen(v.principal, sizeof(v.principal));
	if (len <= off || n == sizeof(v.principal) || n + 1 != len - off ||
	    strcmp(v.principal, principal) != 0)
		return FBX_OK; /* another key's word, or no key's */
	return fbxi_dlv_unwithdraw(e, org, id);
}

struct rbd_ctx {
	struct fbx_engine *e;
	int del; /* forget (prune), else remember (load) */
	int err;
};

/* rbd_cb - "rbd/<org>/<command>/<delivery>": the delivery id is the
 * key's last part */
static int
rbd_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct rbd_ctx *x = arg;
	const char *p = strrchr(key, '/');
	unsigned long long id;
	char *end;

	(void)val;
	(void)len;
	if (p == NULL)
		return 0;
	id = strtoull(p + 1, &end, 10);
	if (*end != '\0' || id == 0)
		return 0; /* not ours: skipped */
	if (x->del) {
		fbxi_idmap_del(&x->e->rbd, id, NULL);
	} else if (fbxi_idmap_put(&x->e->rbd, id, 1) != 0) {
		x->err = FBX_ENOMEM;
		return 1;
	}
	return 0;
}

int
fbxi_dlv_withdrawn_load(struct fbx_engine *e, fbx_txn *txn)
{
	struct rbd_ctx x = { e, 0, FBX_OK };
	int rc;

	fbxi_idmap_clear(&e->rbd);
	rc = fbx_store_kv_scan(txn, "rbd/", rbd_cb, &x);
	return rc != FBX_OK ? rc : x.err;
}

int
fbxi_dlv_withdrawn_prune(struct fbx_engine *e, const char *org,
    uint64_t cmd_id, uint32_t *budget)
{
	char prefix[FBX_KV_KEY_MAX];
	struct rbd_ctx x = { e, 1, FBX_OK };

	snprintf(prefix, sizeof(prefix), "rbd/%s/%llu/", org,
	    (unsigned long long)cmd_id);
	return fbxi_kv_delete_some(e, prefix, budget, rbd_cb, &x);
}

void
fbxi_cmd_cancel(struct fbx_engine *e, struct cmdc *cc)
{
	cc->cancelling = 1;
	if (fbxi_idmap_put(&e->sweeping, cc->c.id, (uint64_t)(uintptr_t)cc) !=
	    0)
		fbxi_set_err(e, FBX_ENOMEM);
}

uint32_t
fbxi_cmd_open(const struct cmdc *cc)
{
	return cc->c.counts[FBX_D_QUEUED] + cc->c.counts[FBX_D_SENT] +
	    cc->c.counts[FBX_D_ACCEPTED] + cc->c.counts[FBX_D_PENDING];
}

void
fbxi_count_move(struct cmdc *cc, int from, int to)
{
	if (from > 0 && from < FBX_D_COUNT && cc->c.counts[from] > 0)
		cc->c.counts[from]--;
	if (to > 0 && to < FBX_D_COUNT)
		cc->c.counts[to]++;
}

/* cmd_maybe_done - a command whose every delivery is terminal is DONE. */
void
fbxi_cmd_maybe_done(struct cmdc *cc)
{
	if (cc->c.rollout.enabled && !cc->expired &&
	    cc->c.ro.state != FBX_RO_DONE && cc->c.ro.state != FBX_RO_CANCELLED)
		return; /* later waves or groups still to go */
	if (cc->c.state == FBX_C_ACTIVE && fbxi_cmd_open(cc) == 0) {
		cc->c.state = FBX_C_DONE;
		fbxi_cmd_touch(cc);
	}
}

struct outmsg *
fbxi_out_new(struct fbx_engine *e)
{
	struct outmsg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->ro = e->out_ro;
	if (e->otail != NULL)
		e->otail->next = m;
	else
		e->ohead = m;
	e->otail = m;
	return m;
}

void
fbxi_out_log(struct fbx_engine *e, const char *site, const char *fmt, ...)
{
	struct outmsg *o;
	char line[1024];
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	len = strlen(line);
	o = fbxi_out_new(e);
	if (o == NULL) {
		/* out of memory: now rather than never */
		fbxi_log_site(FBX_LOG_INFO, site, "%s", line);
		return;
	}
	o->to_gw = OUT_LOG; /* buf NULL (out of memory): says so */
	o->log_site = site;
	o->buf = malloc(len + 1);
	if (o->buf != NULL)
		memcpy(o->buf, line, len + 1);
}

/* fbxi_out_truncate - drop the outputs queued after mark (NULL: all). */
void
fbxi_out_truncate(struct fbx_engine *e, struct outmsg *mark)
{
	struct outmsg *m = mark != NULL ? mark->next : e->ohead, *n;

	for (; m != NULL; m = n) {
		n = m->next;
		free(m->buf);
		free(m->ids);
		free(m);
	}
	if (mark != NULL) {
		mark->next = NULL;
		e->otail = mark;
	} else {
		e->ohead = e->otail = NULL;
	}
}

void
fbxi_out_copy_env(struct outmsg *o, const struct inmsg *in)
{
	o->nenv = in->nenv;
	for (int i = 0; i < in->nenv; i++) {
		o->envlen[i] = in->envlen[i];
		memcpy(o->env[i], in->env[i], in->envlen[i]);
	}
}

void
fbxi_console_reply(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_rep *rep)
{
	struct outmsg *o = fbxi_out_new(e);
	int rc;

	if (o == NULL) {
		/* a reply that cannot leave fails the turn: nothing of it
		 * is kept, and the request is answered with the error */
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	fbxi_out_copy_env(o, in);
	o->req_id = rep->request_id;
	o->req_kind = rep->kind;
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

void
fbxi_console_error(struct fbx_engine *e, const struct inmsg *in, uint64_t reqid,
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
	fbxi_console_reply(e, in, &rep);
}

/* comp/<org>/<command>/<delivery>: the compensating command of a
 * rolled-back delivery */
void
fbxi_comp_prefix(char *k, size_t cap, const char *org, uint64_t cmd)
{
	snprintf(k, cap, "comp/%s/%llu/", org, (unsigned long long)cmd);
}


static void
comp_key(char *k, size_t cap, const char *org, uint64_t dlv)
{
	marker_key(k, cap, "comp", org, dlv);
}

int
fbxi_comp_get(fbx_txn *txn, const char *org, uint64_t dlv, uint64_t *comp)
{
	char k[FBX_KV_KEY_MAX];
	uint64_t v = 0;
	size_t len = 0;
	int rc;

	comp_key(k, sizeof(k), org, dlv);
	rc = fbx_store_kv_get(txn, k, &v, sizeof(v), &len);
	if (rc == FBX_ECORRUPT) {
		rc = FBX_OK; /* there, but too long to be ours: damaged */
		len = 0;
	}
	if (rc == FBX_OK && comp != NULL)
		*comp = len == sizeof(v) ? v : 0;
	return rc;
}

int
fbxi_comp_put(fbx_txn *txn, const char *org, uint64_t dlv, uint64_t comp)
{
	char k[FBX_KV_KEY_MAX];

	comp_key(k, sizeof(k), org, dlv);
	return fbx_store_kv_put(txn, k, &comp, sizeof(comp));
}

/* rbf/<org>/<command>/<delivery>: selected in a gateway's hands by an
 * executed rollback (engine_int.h) */
void
fbxi_rbf_prefix(char *k, size_t cap, const char *org, uint64_t cmd)
{
	snprintf(k, cap, "rbf/%s/%llu/", org, (unsigned long long)cmd);
}

int
fbxi_rbf_put(fbx_txn *txn, const char *org, uint64_t dlv, uint64_t rbseq)
{
	char k[FBX_KV_KEY_MAX];

	marker_key(k, sizeof(k), "rbf", org, dlv);
	return fbx_store_kv_put(txn, k, &rbseq, sizeof(rbseq));
}

void
fbxi_xgroups_prefix(char *k, size_t cap, const char *org, uint64_t cmd)
{
	snprintf(k, cap, "rbx/%s/%llu/", org, (unsigned long long)cmd);
}

/* xgroup_mem - remember group for cc (once) */
static int
xgroup_mem(struct cmdc *cc, const char *group)
{
	fbx_id *n;

	for (uint32_t i = 0; i < cc->nxgroups; i++)
		if (strcmp(cc->xgroups[i], group) == 0)
			return FBX_OK;
	n = realloc(cc->xgroups, (cc->nxgroups + 1) * sizeof(*n));
	if (n == NULL)
		return FBX_ENOMEM;
	cc->xgroups = n;
	snprintf(cc->xgroups[cc->nxgroups++], sizeof(fbx_id), "%s", group);
	return FBX_OK;
}

int
fbxi_xgroup_add(struct fbx_engine *e, struct cmdc *cc, const char *group,
    uint64_t rbseq)
{
	char k[FBX_KV_KEY_MAX];
	int rc;

	fbxi_xgroups_prefix(k, sizeof(k), cc->c.org, cc->c.id);
	if (strlen(k) + strlen(group) >= sizeof(k))
		return FBX_EINVALID;
	strcat(k, group);
	rc = fbx_store_kv_put(e->txn, k, &rbseq, sizeof(rbseq));
	/* a failed turn rebuilds memory from the store */
	return rc == FBX_OK ? xgroup_mem(cc, group) : rc;
}

struct xgroups_ctx {
	struct cmdc *cc;
	size_t plen;
	int err;
};

static int
xgroups_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct xgroups_ctx *x = arg;
	const char *g = key + x->plen;

	(void)val;
	(void)len;
	if (strlen(key) <= x->plen || !fbx_id_valid(g))
		return 0; /* not ours: skipped */
	x->err = xgroup_mem(x->cc, g);
	return x->err != FBX_OK;
}

int
fbxi_xgroups_load(struct fbx_engine *e, fbx_txn *txn, struct cmdc *cc)
{
	char prefix[FBX_KV_KEY_MAX];
	struct xgroups_ctx x;
	int rc;

	(void)e;
	fbxi_xgroups_prefix(prefix, sizeof(prefix), cc->c.org, cc->c.id);
	x.cc = cc;
	x.plen = strlen(prefix);
	x.err = FBX_OK;
	rc = fbx_store_kv_scan(txn, prefix, xgroups_cb, &x);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	return rc != FBX_OK ? rc : x.err;
}

int
fbxi_xgroup_has(const struct cmdc *cc, const struct fbx_device *dev)
{
	for (uint32_t i = 0; i < cc->nxgroups; i++)
		for (unsigned g = 0; g < dev->ngroups; g++)
			if (strcmp(dev->groups[g], cc->xgroups[i]) == 0)
				return 1;
	return 0;
}

int
fbxi_rbf_get(fbx_txn *txn, const char *org, uint64_t dlv)
{
	char k[FBX_KV_KEY_MAX];
	uint64_t v = 0;
	size_t len = 0;
	int rc;

	marker_key(k, sizeof(k), "rbf", org, dlv);
	rc = fbx_store_kv_get(txn, k, &v, sizeof(v), &len);
	return rc == FBX_OK && len != sizeof(v) ? FBX_ECORRUPT : rc;
}

int
fbxi_rbf_del(fbx_txn *txn, const char *org, uint64_t dlv)
{
	char k[FBX_KV_KEY_MAX];

	marker_key(k, sizeof(k), "rbf", org, dlv);
	return fbx_store_kv_del(txn, k);
}

struct marker_ctx {
	char (*keys)[FBX_KV_KEY_MAX];
	size_t n, cap, max; /* max 0: all */
	int err;
};

static int
marker_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct marker_ctx *m = arg;

	(void)val;
	(void)len;
	if (m->max != 0 && m->n >= m->max)
		return 1;
	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		char(*nk)[FBX_KV_KEY_MAX] = realloc(m->keys, ncap * sizeof(*nk));
		if (nk == NULL) {
			m->err = FBX_ENOMEM;
			return 1;
		}
		m->keys = nk;
		m->cap = ncap;
	}
	snprintf(m->keys[m->n++], FBX_KV_KEY_MAX, "%s", key);
	return 0;
}

int
fbxi_kv_delete_some(struct fbx_engine *e, const char *prefix,
    uint32_t *budget, fbx_kv_fn each, void *arg)
{
	struct marker_ctx m;
	int rc;

	if (budget != NULL && *budget == 0)
		return FBX_OK;
	memset(&m, 0, sizeof(m));
	m.max = budget != NULL ? *budget : 0;
	rc = fbx_store_kv_scan(e->txn, prefix, marker_cb, &m);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = m.err;
	for (size_t i = 0; i < m.n && rc == FBX_OK; i++) {
		if (each != NULL)
			each(arg, m.keys[i], NULL, 0);
		rc = fbx_store_kv_del(e->txn, m.keys[i]);
	}
	free(m.keys);
	if (rc == FBX_OK && budget != NULL)
		*budget -= (uint32_t)m.n;
	return rc;
}

int
fbxi_kv_delete_prefix(struct fbx_engine *e, const char *prefix)
{
	return fbxi_kv_delete_some(e, prefix, NULL, NULL, NULL);
}

/* ------------------------------------------------------------- alerts */

/* fbxi_event - an alert: logged, published on the PUB endpoint and given
 * to the alert command once the turn commits (out_send): an alert about
 * something that did not happen must not leave, nor be logged (a trip
 * whose turn failed on a full disk was logged as done). */
void
fbxi_event(struct fbx_engine *e, int kind, const char *org,
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
	o = fbxi_out_new(e);
	if (o == NULL) {
		/* out of memory: not published; logged now rather than never */
		FBX_LOGW("ALERT %s org=%s reason=%s (not published: out of "
		         "memory): %s",
		    fbx_event_kind_name(kind), ev.org, ev.reason, ev.detail);
		return;
	}
	o->to_gw = OUT_EVENT;
	o->nenv = 1;
	/* "fusebox.<kind>/<org>/": a subscriber is given only the
	 * organisations its key may see (io_zmq.c, issue 10) */
	o->envlen[0] = (size_t)snprintf((char *)o->env[0], RID_MAX,
	    "fusebox.%s/%s/", fbx_event_kind_name(kind),
	    ev.org[0] ? ev.org : "*");
	o->ev = ev;
	if (fbx_event_encode(&ev, &o->buf, &o->len) != FBX_OK)
		o->len = 0;
}

/* ----------------------------------------------------- command class */

#define REASON_NONE "unspecified"

const char *
fbxi_reason_of(const struct fbx_command *c)
{
	return c->reason[0] ? c->reason : REASON_NONE;
}

int
fbxi_priority_of(const struct fbx_command *c)
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
