/*
 * sweep.c: the command cache's end of turn. The expiry and cancel sweeps
 * move the open deliveries of expired or cancelled commands in bounded
 * slices; the commands this turn changed are journaled (the dirty list)
 * and the ones that ended are freed after the commit.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "fleet.h"
#include "engine_int.h"

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
	    fbxi_err(e) == FBX_OK) {
		s->n = 0;
		s->last = 0;
		rc = fbx_store_dlv_scan(e->txn, base + *idx,
		    base + cc->c.ndeliveries, 0, sweep_cb, s);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			fbxi_set_err(e, rc);
			return;
		}
		for (size_t i = 0; i < s->n; i++) {
			/* a cancel leaves what a gateway holds to end */
			unsigned from = to == FBX_D_CANCELLED
			    ? FBXI_DMASK(FBX_D_QUEUED) |
			        FBXI_DMASK(FBX_D_PENDING)
			    : FBXI_DOPEN;
			rc = fbxi_dlv_move(
			    e, cc, s->ids[i], from, to, 0, 0, NULL, NULL);
			if (rc == FBX_ESTATE)
				continue;
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				return;
			}
		}
		*budget = *budget > s->n ? *budget - s->n : 0;
		if (s->n < s->cap || s->last == 0)
			*idx = cc->c.ndeliveries;
		else
			*idx = FBX_DLV_IDX(s->last) + 1;
	}
}

/* fbxi_sweep_step - move the open deliveries of commands past their TTL to
 * EXPIRED, and the unsent ones of cancelled rollouts to CANCELLED, in
 * bounded slices. Held commands do not expire: they wait for an
 * operator. */
void
fbxi_sweep_step(struct fbx_engine *e)
{
	const struct fbxi_theap_ent *t;
	struct sweep_ctx s;
	size_t budget = SWEEP_MAX, pos = 0, n = 0;
	uint64_t k, v;
	struct cmdc **todo = NULL;

	/* 1. the commands whose TTL passed join the sweep: the expiry
	 * heap's due entries only, not a walk of every command */
	while ((t = fbxi_theap_top(&e->expiry)) != NULL && t->at_ms <= e->now &&
	    fbxi_err(e) == FBX_OK) {
		struct cmdc *cc = fbxi_cmd_find(e, t->id);
		fbxi_theap_pop(&e->expiry);
		/* held and settling commands do not expire: their TTL
		 * starts again when they are released (a new entry) */
		if (cc == NULL || cc->expired ||
		    fbx_cstate_terminal(cc->c.state) ||
		    cc->c.state == FBX_C_HELD || cc->c.state == FBX_C_SETTLING)
			continue;
		if (cc->c.expires_ms > e->now) {
			/* its TTL started again since */
			if (fbxi_theap_push(&e->expiry, cc->c.expires_ms,
			        cc->c.id) != 0)
				fbxi_set_err(e, FBX_ENOMEM);
			continue;
		}
		cc->expired = 1;
		FBX_LOGI("command %llu expired with %u deliveries open",
		    (unsigned long long)cc->c.id, fbxi_cmd_open(cc));
		if (cc->c.state == FBX_C_EXPANDING) {
			fbxi_xlist_remove(e, cc);
			cc->c.state = FBX_C_ACTIVE;
			fbxi_cmd_touch(cc);
		}
		if (fbxi_idmap_put(&e->sweeping, cc->c.id,
		        (uint64_t)(uintptr_t)cc) != 0)
			fbxi_set_err(e, FBX_ENOMEM);
	}
	if (e->sweeping.len == 0 || fbxi_err(e) != FBX_OK)
		return;
	/* 2. expired and cancelled commands: their open deliveries, in
	 * slices of at most SWEEP_MAX a turn */
	memset(&s, 0, sizeof(s));
	s.cap = 8192;
	s.ids = malloc(s.cap * sizeof(*s.ids));
	s.states = malloc(s.cap);
	s.devs = malloc(s.cap * sizeof(*s.devs));
	todo = malloc(e->sweeping.len * sizeof(*todo));
	if (!s.ids || !s.states || !s.devs || !todo) {
		fbxi_set_err(e, FBX_ENOMEM);
		goto out;
	}
	while (fbxi_idmap_next(&e->sweeping, &pos, &k, &v))
		todo[n++] = (struct cmdc *)(uintptr_t)v;
	for (size_t i = 0; i < n && budget > 0 && fbxi_err(e) == FBX_OK; i++) {
		struct cmdc *cc = todo[i];
		if (cc->cancelling && cc->cancel_idx < cc->c.ndeliveries)
			sweep_range(e, cc, &cc->cancel_idx, FBX_D_CANCELLED,
			    &budget, &s);
		if (cc->expired)
			sweep_range(e, cc, &cc->sweep_idx, FBX_D_EXPIRED,
			    &budget, &s);
		fbxi_cmd_maybe_done(cc);
		if (fbxi_err(e) == FBX_OK &&
		    (!cc->cancelling || cc->cancel_idx >= cc->c.ndeliveries) &&
		    (!cc->expired || cc->sweep_idx >= cc->c.ndeliveries))
			fbxi_idmap_del(&e->sweeping, cc->c.id, NULL);
	}
out:
	free(todo);
	free(s.ids);
	free(s.states);
	free(s.devs);
}

/* fbxi_flush_commands - journal every command whose state or cursor moved
 * in this turn (the dirty list); note the ones that ended for fbxi_reap_done.
 */
void
fbxi_flush_commands(struct fbx_engine *e)
{
	struct cmdc *cc, *next;

	/* only what this turn changed; the ones that ended are freed after
	 * the commit (fbxi_reap_done) */
	for (cc = e->dirty; cc != NULL; cc = next) {
		next = cc->dnext;
		cc->dnext = NULL;
		if (!cc->dirty)
			continue;
		cc->dirty = 0;
		if (fbxi_err(e) != FBX_OK)
			continue; /* the turn is lost: memory is rebuilt */
		if (cc->stale) {
			int rc = fbx_store_cmd_put(e->txn, &cc->c);
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				continue;
			}
			cc->stale = 0;
		}
		fbxi_outq_note(e, cc);
		if (fbx_cstate_terminal(cc->c.state)) {
			if (e->nreap == e->reapcap) {
				size_t ncap = e->reapcap ? 2 * e->reapcap : 64;
				uint64_t *nr =
				    realloc(e->reap, ncap * sizeof(*nr));
				if (nr == NULL)
					continue; /* kept in the cache */
				e->reap = nr;
				e->reapcap = ncap;
			}
			e->reap[e->nreap++] = cc->c.id;
		}
	}
	e->dirty = NULL;
}

/* expiry_compact - the expiry heap keeps the entries of commands that
 * ended until they come due (lazy deletion), a TTL later: with a day's
 * TTL and thousands of commands a minute that is most of the heap. When
 * stale entries outnumber the cached commands, rebuild it from the
 * cache: linear, and at most once per as many commands as it holds. */
static void
expiry_compact(struct fbx_engine *e)
{
	size_t pos = 0;
	uint64_t k, v;

	if (e->expiry.n < 2 * e->cmds.len + 4096)
		return;
	fbxi_theap_clear(&e->expiry);
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		const struct cmdc *cc = (const struct cmdc *)(uintptr_t)v;
		/* held and settling ones get an entry at their release */
		if (fbx_cstate_terminal(cc->c.state) || cc->expired ||
		    cc->c.state == FBX_C_HELD || cc->c.state == FBX_C_SETTLING)
			continue;
		if (fbxi_theap_push(&e->expiry, cc->c.expires_ms, cc->c.id) !=
		    0) {
			/* out of memory: memory is rebuilt at the next
			 * failed turn; until then a full rebuild is due */
			e->need_rebuild = 1;
			return;
		}
	}
}

/* fbxi_reap_done - after the commit: free the commands that ended in it */
void
fbxi_reap_done(struct fbx_engine *e)
{
	for (size_t i = 0; i < e->nreap; i++) {
		struct cmdc *cc = fbxi_cmd_find(e, e->reap[i]);
		if (cc == NULL || !fbx_cstate_terminal(cc->c.state) ||
		    cc->dirty)
			continue;
		FBX_LOGI("command %llu done: %u succeeded, %u failed, %u "
		         "expired",
		    (unsigned long long)cc->c.id, cc->c.counts[FBX_D_SUCCEEDED],
		    cc->c.counts[FBX_D_FAILED], cc->c.counts[FBX_D_EXPIRED]);
		fbxi_cmd_cache_free(e, cc);
	}
	e->nreap = 0;
	expiry_compact(e);
}
