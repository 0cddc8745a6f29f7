/*
 * recovery.c: memory rebuilt from the store, at start-up and after a
 * failed turn: the command cache, the queues and the counts, from the
 * open commands and their deliveries. Deliveries a lost process or
 * session left in a gateway's hands are journaled QUEUED again in slices
 * by the next turns.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "delivery.h"
#include "engine_int.h"

/* rebuild_dlv_cb - recount one delivery of the command being loaded and
 * queue it if open. One left SENT/ACCEPTED is either held by a live
 * session (kept there: that gateway answers it) or was lost with a
 * process or session (journaled QUEUED by the next turns, fbxi_rq_step). */
static int
rebuild_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rebuild_ctx *r = arg;
	struct fbx_engine *e = r->e;
	struct cmdc *cc = r->cc;
	struct gw *h;
	uint64_t v = 0;

	if (d->state > 0 && d->state < FBX_D_COUNT)
		cc->c.counts[d->state]++;
	if (FBX_DLV_IDX(d->id) >= cc->c.ndeliveries)
		cc->c.ndeliveries = FBX_DLV_IDX(d->id) + 1;
	if (cc->c.rollout.enabled) {
		/* recount the current wave; unreleased ones stay back */
		fbxi_ro_tally(cc, d->id, FBX_D_QUEUED, d->state, d->code);
		if (FBX_DLV_IDX(d->id) >= cc->c.ro.released)
			return 0;
	}
	switch (d->state) {
	case FBX_D_SENT:
	case FBX_D_ACCEPTED:
		h = fbxi_gw_holder(e, d->id, &v);
		if (h != NULL) {
			(void)fbxi_dmap_set(&h->inflight, d->id, v | IF_SEEN);
			cc->q->inflight++;
			e->inflight_all++;
			break;
		}
		if (r->nrequeue == r->cap) {
			size_t ncap = r->cap ? r->cap * 2 : 4096;
			uint64_t *n = realloc(r->requeue, ncap * sizeof(*n));
			if (n == NULL)
				goto nomem;
			r->requeue = n;
			r->cap = ncap;
		}
		r->requeue[r->nrequeue++] = d->id;
		break;
	case FBX_D_QUEUED:
		/* the supersede index is built when a delivery is created
		 * (supersede.c), not here */
		if (fbxi_orgq_push(e, cc->q, cc->c.priority, d->id) != FBX_OK)
			goto nomem;
		break;
	default:
		break;
	}
	return 0;
nomem:
	r->err = FBX_ENOMEM;
	return 1;
}

static int
rebuild_cmd_cb(void *arg, const struct fbx_command *c)
{
	struct rebuild_ctx *r = arg;
	struct cmdc *cc;
	int rc;

	/* cluster mode: another node's organisation is its business */
	if (!fbx_store_owns(r->e->st, c->org))
		return 0;
	cc = fbxi_cmd_cache_add(r->e, c);
	if (cc == NULL) {
		r->err = FBX_ENOMEM;
		return 1;
	}
	memset(cc->c.counts, 0, sizeof(cc->c.counts));
	r->cc = cc;
	rc = fbx_store_dlv_scan(r->txn, FBX_DLV_ID(c->id, 0),
	    FBX_DLV_ID(c->id + 1, 0), 0, rebuild_dlv_cb, r);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		r->err = rc;
	if (r->err == FBX_OK && c->rollout.enabled) {
		/* a wave an operator judged stays judged */
		rc = fbxi_ro_judged_load(r->txn, cc);
		if (rc != FBX_OK)
			r->err = rc;
	}
	if (r->err == FBX_OK && c->state == FBX_C_EXPANDING) {
		/* groups a rollback took while it expands */
		rc = fbxi_xgroups_load(r->e, r->txn, cc);
		if (rc != FBX_OK)
			r->err = rc;
	}
	/* the outcome baseline is what the deliveries say, not the record:
	 * a difference is not an outcome of the next turn */
	cc->ocounts[0] = cc->c.counts[FBX_D_SUCCEEDED];
	cc->ocounts[1] = cc->c.counts[FBX_D_FAILED];
	cc->ocounts[2] = cc->c.counts[FBX_D_EXPIRED];
	return r->err != FBX_OK;
}

static int
fleet_cb(void *arg, const char *org, uint32_t devices)
{
	struct fbx_engine *e = arg;

	(void)org;
	e->fleet_total += devices;
	return 0;
}

/* fbxi_clear_memory - forget the command cache and the queues. Gateway
 * sessions stay: what they hold is matched against the store again. */
void
fbxi_clear_memory(struct fbx_engine *e)
{
	size_t pos = 0;
	uint64_t k, v;

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		fbx_command_clear(&cc->c);
		free(cc->parked);
		free(cc->xgroups);
		free(cc);
	}
	fbxi_idmap_clear(&e->cmds);
	e->xhead = e->xtail = NULL;
	fbxi_settle_clear(e);
	fbxi_supersede_clear(e);
	fbxi_idmap_clear(&e->rollouts);
	fbxi_idmap_clear(&e->sweeping);
	fbxi_idmap_clear(&e->rbd);
	fbxi_theap_clear(&e->expiry);
	e->dirty = NULL;
	e->nreap = 0;
	for (size_t b = 0; b < 1024; b++) {
		for (struct orgq *q = e->qtab[b]; q != NULL; q = q->hnext)
			fbxi_orgq_clear(q);
	}
	e->rrlen = e->rrpos = 0;
	e->inflight_all = 0;
	free(e->rq);
	e->rq = NULL;
	e->nrq = e->rqpos = 0;
	for (struct gw *g = e->gws; g != NULL; g = g->next)
		g->b[0].obn = g->b[1].obn = 0;
}

/* sessions_settle - after a rebuild: drop session entries the store does
 * not show in a gateway's hands, clear the marks, recount credit. */
static void
sessions_settle(struct fbx_engine *e)
{
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		size_t pos = 0, n = 0, cap = 0;
		uint64_t id, v, *drop = NULL;
		while (fbxi_dmap_next(&g->inflight, &pos, &id, &v)) {
			if (v & IF_SEEN) {
				/* matched: keep it, unmarked (set does not
				 * move entries, so the walk goes on) */
				(void)fbxi_dmap_set(
				    &g->inflight, id, v & ~(uint64_t)IF_SEEN);
				continue;
			}
			if (n == cap) {
				size_t ncap = cap ? 2 * cap : 64;
				uint64_t *nd = realloc(drop, ncap * sizeof(*nd));
				if (nd == NULL) {
					g->dead = 1; /* requeued at reap */
					break;
				}
				drop = nd;
				cap = ncap;
			}
			drop[n++] = id;
		}
		for (size_t i = 0; i < n; i++)
			fbxi_dmap_del(&g->inflight, drop[i], NULL);
		free(drop);
		fbxi_gw_recount(e, g);
	}
}

/* cmp_settle - settling commands by the end of their window, then id */
static int
cmp_settle(const void *a, const void *b)
{
	const struct cmdc *x = *(const struct cmdc *const *)a;
	const struct cmdc *y = *(const struct cmdc *const *)b;

	if (x->c.settle_until_ms != y->c.settle_until_ms)
		return x->c.settle_until_ms < y->c.settle_until_ms ? -1 : 1;
	return x->c.id < y->c.id ? -1 : x->c.id > y->c.id;
}

/* restage_overdue - settling commands whose window ended while nothing
 * was released (the daemon was down, or its turns failed) would all go
 * out in the first step: the waves of a staged release, or a burst of
 * automatic locks, at once, before an operator could trip a breaker
 * again. They go out in staged waves from now instead, oldest first
 * (fbxi_release_wave_at: 10 now, then 20, 40, ... every 10 s), each
 * still checked against the breakers at its wave. In memory only: the
 * next rebuild does the same from its own time. @return how many. */
static size_t
restage_overdue(struct fbx_engine *e)
{
	struct cmdc **v = NULL;
	size_t n = 0, cap = 0, pos = 0;
	uint64_t k, x;
	int64_t now = fbxi_clock(e, 0);

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &x)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)x;
		if (cc->c.state != FBX_C_SETTLING ||
		    cc->c.settle_until_ms >= now || cc->c.expires_ms <= now)
			continue; /* not due, or expiring: no wave slot */
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct cmdc **nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL)
				break; /* the rest go out when due, as before */
			v = nv;
			cap = nc;
		}
		v[n++] = cc;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_settle);
	for (size_t i = 0; i < n; i++) {
		int64_t at = fbxi_release_wave_at(now, (uint32_t)i);
		if (at == now)
			continue; /* the first wave: due already */
		/* the old heap entry is stale once the time differs */
		if (fbxi_settle_add(e, v[i]->c.id, at) != 0)
			break;
		v[i]->c.settle_until_ms = at;
	}
	free(v);
	return n;
}

/* fbxi_rebuild - make memory match the store: load every command not DONE,
 * recount its deliveries from their records and queue the open ones.
 * Reads only, so it also works on a full disk; deliveries a lost process
 * or session left SENT/ACCEPTED are journaled QUEUED by the next turns.
 * Used at start-up and after a failed turn. */
int
fbxi_rebuild(struct fbx_engine *e)
{
	struct rebuild_ctx r;
	size_t ncmd;
	int rc;

	memset(&r, 0, sizeof(r));
	r.e = e;
	fbxi_clear_memory(e);
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		size_t pos = 0;
		uint64_t id, v;
		while (fbxi_dmap_next(&g->inflight, &pos, &id, &v)) {
			if (v & IF_SEEN)
				(void)fbxi_dmap_set(
				    &g->inflight, id, v & ~(uint64_t)IF_SEEN);
		}
	}
	rc = fbx_txn_begin(e->st, 0, &r.txn);
	if (rc != FBX_OK)
		return rc;
	e->fleet_total = 0;
	rc = fbx_store_org_list(r.txn, fleet_cb, e);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = fbxi_rate_load(r.txn, "*", &e->grate);
	if (rc == FBX_OK)
		rc = fbxi_certs_load(e, r.txn);
	if (rc == FBX_OK)
		rc = fbxi_audit_load_last(e, r.txn);
	if (rc == FBX_OK)
		rc = fbx_store_cmd_last(r.txn, &e->last_cmd_id);
	if (rc == FBX_OK)
		rc = fbxi_dlv_withdrawn_load(e, r.txn);
	if (rc == FBX_OK)
		rc = fbx_store_cmd_active(r.txn, rebuild_cmd_cb, &r);
	fbx_txn_abort(r.txn);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = r.err;
	if (rc != FBX_OK) {
		free(r.requeue);
		fbxi_clear_memory(e);
		return rc;
	}
	sessions_settle(e);
	ncmd = e->cmds.len;
	e->rq = r.requeue;
	e->nrq = r.nrequeue;
	e->rqpos = 0;
	/* commands whose last results landed before their DONE did */
	{
		size_t pos = 0;
		uint64_t k, v;
		while (fbxi_idmap_next(&e->cmds, &pos, &k, &v))
			fbxi_cmd_maybe_done((struct cmdc *)(uintptr_t)v);
	}
	FBX_LOGI("recovered %zu open commands, %zu deliveries to re-queue, "
	         "%llu held by live gateways, %llu devices enrolled",
	    ncmd, r.nrequeue, (unsigned long long)e->inflight_all,
	    (unsigned long long)e->fleet_total);
	{
		size_t late = restage_overdue(e);
		/* said when some wait for a later wave */
		if (late > 0 &&
		    fbxi_release_wave_at(0, (uint32_t)(late - 1)) > 0)
			FBX_LOGW("%zu settling commands (staged releases, "
			         "automatic locks) came due while nothing was "
			         "released: they go out in staged waves from "
			         "now, 10 at once, then 20, 40, ... every 10 s; "
			         "trip a breaker to hold what is still settling",
			    late);
	}
	return FBX_OK;
}

/* fbxi_rq_step - journal QUEUED (and queue) a slice of the deliveries a lost
 * process or session left in a gateway's hands. */
void
fbxi_rq_step(struct fbx_engine *e)
{
	size_t end = e->rqpos + SWEEP_MAX;

	if (end > e->nrq)
		end = e->nrq;
	for (; e->rqpos < end && fbxi_err(e) == FBX_OK; e->rqpos++) {
		uint64_t id = e->rq[e->rqpos];
		if (fbxi_requeue_one(e, fbxi_cmd_find(e, FBX_DLV_CMD(id)), id,
		        FBXI_DHELD, 1) < 0)
			return;
	}
	if (e->rqpos >= e->nrq) {
		if (e->nrq > 0)
			FBX_LOGI("%zu recovered deliveries re-queued", e->nrq);
		free(e->rq);
		e->rq = NULL;
		e->nrq = e->rqpos = 0;
	}
}

/* fbxi_unsent_step - deliveries journaled SENT whose message could not be
 * queued to the gateway (its send queue was full) go back to QUEUED. */
void
fbxi_unsent_step(struct fbx_engine *e)
{
	size_t i;

	for (i = 0; i < e->nunsent && fbxi_err(e) == FBX_OK; i++) {
		uint64_t id = e->unsent[i];
		fbxi_gw_drop(e, id);
		if (fbxi_err(e) != FBX_OK ||
		    fbxi_requeue_one(e, fbxi_cmd_find(e, FBX_DLV_CMD(id)), id,
		        FBXI_DMASK(FBX_D_SENT), 0) < 0)
			return;
	}
}
