/*
 * retention.c: pruning of what the retention period has passed: ended
 * commands with their deliveries and rollback markers (a bounded slice a
 * turn, from a cursor kept in memory: from the first command again after
 * a restart, and put back when the turn fails), and expired approvals and
 * refusals ("appr/", "rej/"). The audit log is never pruned here.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* prune_markers - the rollback markers (comp/, rbf/, rbx/), a rollout's
 * judged wave (rojd/), supersede links
 * (supersede.h) and withdrawn marks (fbxi_dlv_withdraw) of a pruned command's
 * deliveries, within *budget records (a command rolled back on a million
 * devices has a million markers): the budget spent means some may be
 * left for the next turn. */
static int
prune_markers(struct fbx_engine *e, const struct fbx_command *c,
    uint32_t *budget)
{
	char prefix[FBX_KV_KEY_MAX];
	int rc;

	fbxi_comp_prefix(prefix, sizeof(prefix), c->org, c->id);
	rc = fbxi_kv_delete_some(e, prefix, budget, NULL, NULL);
	if (rc == FBX_OK) {
		fbxi_rbf_prefix(prefix, sizeof(prefix), c->org, c->id);
		rc = fbxi_kv_delete_some(e, prefix, budget, NULL, NULL);
	}
	if (rc == FBX_OK) {
		fbxi_xgroups_prefix(prefix, sizeof(prefix), c->org, c->id);
		rc = fbxi_kv_delete_some(e, prefix, budget, NULL, NULL);
	}
	if (rc == FBX_OK && c->rollout.enabled) {
		fbxi_ro_judged_prefix(prefix, sizeof(prefix), c->org, c->id);
		rc = fbxi_kv_delete_some(e, prefix, budget, NULL, NULL);
	}
	if (rc == FBX_OK)
		rc = fbxi_supersede_links_prune(e, c->org, c->id, budget);
	if (rc == FBX_OK)
		rc = fbxi_dlv_withdrawn_prune(e, c->org, c->id, budget);
	return rc;
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

void
fbxi_prune_approvals(struct fbx_engine *e)
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
		fbxi_set_err(e, rc);
}

/* fbxi_prune_step - delete journal records older than the retention, oldest
 * first, in bounded slices: finished commands (done or discarded) with
 * their deliveries and rollback markers. Kept: anything not finished
 * (held, paused rollouts, open deliveries) and the automatic commands of
 * a reason whose breaker is open (an incident may still be rolled
 * back). The audit log is never pruned. */
enum { PRUNE_GONE, PRUNE_KEPT, PRUNE_YOUNG, PRUNE_PARTIAL, PRUNE_ERR };
#define PKEEP_GONE (UINT64_C(1) << 63)

/* fbxi_prune_settle - after the turn: a commit drops what was pruned from the
 * kept list; a failure puts the retention cursor and list back. */
void
fbxi_prune_settle(struct fbx_engine *e, int committed)
{
	size_t j = 0;

	if (!e->prune_ran)
		return;
	e->prune_ran = 0;
	if (!committed) {
		e->prune_next = e->prune_next0;
		e->npkeep = e->npkeep0;
		for (size_t i = 0; i < e->npkeep; i++)
			e->pkeep[i] &= ~PKEEP_GONE;
		return;
	}
	for (size_t i = 0; i < e->npkeep; i++) {
		if (!(e->pkeep[i] & PKEEP_GONE))
			e->pkeep[j++] = e->pkeep[i];
	}
	e->npkeep = j;
	if (e->pkeep_pos > j)
		e->pkeep_pos = 0;
}

static int
pkeep_add(struct fbx_engine *e, uint64_t id)
{
	if (e->npkeep == e->pkeepcap) {
		size_t ncap = e->pkeepcap ? e->pkeepcap * 2 : 256;
		uint64_t *n = realloc(e->pkeep, ncap * sizeof(*n));
		if (n == NULL)
			return FBX_ENOMEM;
		e->pkeep = n;
		e->pkeepcap = ncap;
	}
	e->pkeep[e->npkeep++] = id;
	return FBX_OK;
}

/* prune_one - delete command id with its deliveries and markers if it is
 * past retention and nothing needs it any more. */
static int
prune_one(struct fbx_engine *e, uint64_t id, int64_t cutoff, uint32_t *budget)
{
	struct fbx_command c;
	uint32_t deleted = 0;
	int keep = 0, rc;

	/* the header is all it needs: a body can be 100,000 device ids */
	rc = fbx_store_cmd_head(e->txn, id, &c);
	if (rc == FBX_ENOT_FOUND)
		return PRUNE_GONE; /* pruned before */
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return PRUNE_ERR;
	}
	if (c.created_ms >= cutoff) {
		fbx_command_clear(&c);
		return PRUNE_YOUNG; /* ids follow time: the rest is younger */
	}
	if (!fbx_cstate_terminal(c.state) || fbxi_cmd_find(e, c.id) != NULL)
		keep = 1; /* held, paused, still delivering */
	if (c.id == e->last_cmd_id)
		keep = 1; /* the newest stays: ids are never reused */
	if (!keep && c.origin == FBX_ORIGIN_AUTOMATIC) {
		struct fbxi_breaker b, g;
		if (fbxi_brk_load(e->txn, c.org, fbxi_reason_of(&c), &b, NULL) ==
		        FBX_OK &&
		    fbxi_brk_load(e->txn, "*", fbxi_reason_of(&c), &g, NULL) ==
		        FBX_OK &&
		    (b.state == FBX_BS_OPEN || g.state == FBX_BS_OPEN))
			keep = 1; /* an open incident still needs it */
	}
	if (keep) {
		fbx_command_clear(&c);
		return PRUNE_KEPT;
	}
	rc = fbx_store_dlv_delete_range(e->txn, FBX_DLV_ID(c.id, 0),
	    FBX_DLV_ID(c.id + 1, 0), *budget, &deleted);
	if (rc != FBX_OK) {
		fbx_command_clear(&c);
		fbxi_set_err(e, rc);
		return PRUNE_ERR;
	}
	*budget -= deleted < *budget ? deleted : *budget;
	if (*budget == 0) {
		/* more deliveries of this one next time */
		fbx_command_clear(&c);
		return PRUNE_PARTIAL;
	}
	rc = prune_markers(e, &c, budget);
	if (rc == FBX_OK && *budget == 0) {
		/* more markers of this one next time */
		fbx_command_clear(&c);
		return PRUNE_PARTIAL;
	}
	if (rc == FBX_OK)
		rc = fbx_store_cmd_delete(e->txn, c.id);
	fbx_command_clear(&c);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return PRUNE_ERR;
	}
	return PRUNE_GONE;
}

void
fbxi_prune_step(struct fbx_engine *e)
{
	int64_t cutoff = e->now - (int64_t)e->o.retention_s * 1000;
	uint32_t budget = e->o.prune_budget, looked = 0;
	uint64_t id = e->prune_next;
	size_t nk = e->npkeep;

	if (e->o.retention_s == 0)
		return;
	/* undone by fbxi_prune_settle() if the turn fails */
	e->prune_ran = 1;
	e->prune_next0 = e->prune_next;
	e->npkeep0 = e->npkeep;
	/* commands kept before (held, open, an open incident): look at a
	 * slice of them again; the scan itself moves on past them, so one
	 * held command no longer stops retention for everything newer */
	for (size_t i = 0; i < nk && i < 1000 && budget > 0 &&
	    fbxi_err(e) == FBX_OK;
	    i++) {
		uint64_t kid;
		if (e->pkeep_pos >= e->npkeep)
			e->pkeep_pos = 0;
		kid = e->pkeep[e->pkeep_pos];
		/* PKEEP_GONE: pruned in this turn, dropped once it commits */
		if (!(kid & PKEEP_GONE) &&
		    prune_one(e, kid, cutoff, &budget) == PRUNE_GONE)
			e->pkeep[e->pkeep_pos] |= PKEEP_GONE;
		e->pkeep_pos++;
	}
	for (; id <= e->last_cmd_id && budget > 0 && looked < 10000 &&
	    fbxi_err(e) == FBX_OK;
	    id++) {
		int r;
		looked++;
		r = prune_one(e, id, cutoff, &budget);
		if (r == PRUNE_YOUNG || r == PRUNE_PARTIAL)
			break;
		if (r == PRUNE_KEPT && pkeep_add(e, id) != FBX_OK) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
	}
	e->prune_next = id;
}
