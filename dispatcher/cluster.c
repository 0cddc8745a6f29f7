/*
 * cluster.c: what cluster mode adds to the engine (several nodes sharing
 * a PostgreSQL store, issue 13; docs/scale-out.md): the lease tick and
 * what it reads again, the shared heads of each write transaction, and
 * the global breaker as nodes that did not trip or reset it apply it.
 * The leases themselves are the store's (storage/pg_lease.c); routing of
 * console requests is console.c's (cluster_route).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "engine_int.h"
#include "log.h"

static int
fleet_cb(void *arg, const char *org, uint32_t devices)
{
	struct fbx_engine *e = arg;

	(void)org;
	e->fleet_total += devices;
	return 0;
}

/* org_idle - cluster mode: org has nothing open on this node (no
 * command in memory, nothing queued or in flight), so its lease may be
 * handed to a node with fewer. */
static int
org_idle(void *arg, const char *org)
{
	struct fbx_engine *e = arg;
	struct orgq *q = fbxi_orgq_find(e, org);
	size_t pos = 0;
	uint64_t k, v;

	if (q != NULL && (q->len > 0 || q->inflight > 0))
		return 0;
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		const struct cmdc *cc = (const struct cmdc *)(uintptr_t)v;
		if (strcmp(cc->c.org, org) == 0)
			return 0;
	}
	return 1;
}

/* fbxi_cluster_tick - cluster mode: renew, release, claim (store.c); memory
 * follows the owned set at the next rebuild. */
int
fbxi_cluster_tick(struct fbx_engine *e)
{
	int changed = 0;
	uint32_t ms = e->o.lease_ms ? e->o.lease_ms : 10000;
	/* memory tells what is idle only when it matches the store and no
	 * request read for the turn may be for an organisation it would
	 * hand back */
	int trust = !e->need_rebuild && !e->lease_gained && e->nin == 0;
	/* no store (it could not be reopened after a failed turn: the
	 * database away): no tick, no rereading; the turn's rebuild opens
	 * it again */
	int rc = e->st != NULL
	    ? fbx_store_lease_tick(e->st, trust ? org_idle : NULL, e, &changed)
	    : FBX_ESTORAGE;

	/* on failure too: the store is retried at the backoff's pace */
	e->next_lease = e->mono + ms / 4;
	if (rc != FBX_OK) {
		FBX_LOGW("cluster: leases not renewed: %s", fbx_strerror(rc));
		return rc;
	}
	e->leases_unknown = 0;
	{
		/* what other nodes may have changed, read again: the fleet
		 * (the global breaker's denominator), the global dispatch
		 * cap, and the principals (a key added through the duties
		 * holder works on every node within a quarter lease) */
		fbx_txn *rt = NULL;
		uint64_t before = e->fleet_total;
		if (fbx_txn_begin(e->st, 0, &rt) == FBX_OK) {
			struct fbx_rate_info gr;
			e->fleet_total = 0;
			rc = fbx_store_org_list(rt, fleet_cb, e);
			if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
				e->fleet_total = before;
			if (fbxi_rate_load(rt, "*", &gr) == FBX_OK)
				e->grate = gr;
			fbx_txn_abort(rt);
			rc = FBX_OK;
		}
		e->auth_dirty = 1;
		fbxi_auth_committed(e);
	}
	e->check_resets = 1;
	if (changed) {
		e->lease_changes++;
		e->need_rebuild = 1;
		size_t nown = fbx_store_owned(e->st);
		int duties = fbx_store_owns(e->st, "");
		/* the duties' lease is no organisation's */
		if (duties && nown > 0)
			nown--;
		FBX_LOGI("cluster: node %s owns %zu organisation%s now, %s "
		         "the cluster-wide duties",
		    e->o.node, nown, nown == 1 ? "" : "s",
		    duties ? "and" : "not");
	}
	return FBX_OK;
}

/* fbxi_cluster_heads - cluster mode, first thing of a write transaction: the
 * audit chain's head and the last command id as the store has them
 * (another node may have moved both since this one last wrote). */
int
fbxi_cluster_heads(struct fbx_engine *e)
{
	int rc = fbxi_audit_load_last(e, e->txn);

	if (rc == FBX_OK) {
		rc = fbx_store_cmd_last(e->txn, &e->last_cmd_id);
		if (rc == FBX_ENOT_FOUND) {
			e->last_cmd_id = 0;
			rc = FBX_OK;
		}
	}
	return rc;
}

/* fbxi_brk_global_hold - cluster mode, a settled command about to be
 * released: the global breaker of its reason lives in the store, and
 * another node may have tripped it since this one admitted the command
 * (its trip held only the settling commands in that node's memory).
 * Hold it here as that trip would have. @return FBX_OK (see *held) or a
 * store error. */
int
fbxi_brk_global_hold(struct fbx_engine *e, struct cmdc *cc, int *held)
{
	const char *reason = fbxi_reason_of(&cc->c);
	struct fbxi_breaker g;
	int rc;

	*held = 0;
	rc = fbxi_brk_load(e->txn, "*", reason, &g, NULL);
	if (rc != FBX_OK)
		return rc;
	if (g.state != FBX_BS_OPEN || g.cfg.shadow ||
	    (!g.manual && cc->c.created_ms < g.onset_ms))
		return FBX_OK;
	cc->c.state = FBX_C_HELD;
	snprintf(cc->c.held_by, sizeof(cc->c.held_by), "*/%s", reason);
	fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
	    "held while settling: global breaker */%.64s is open (tripped "
	    "on another node)",
	    reason);
	fbxi_cmd_touch(cc);
	g.held++;
	*held = 1;
	return fbxi_brk_save(e->txn, "*", reason, &g);
}

/* A global breaker's reset, as the nodes of a cluster read it: the
 * action and who asked, kept beside the breaker (kv brkreset/ * /REASON)
 * so that nodes holding commands of their own organisations for it act
 * on them too (fbxi_cluster_resets). */
struct reset_order {
	int64_t at_ms;
	uint8_t discard;
	char actor[FBX_ID_MAX + 1];
	char note[FBX_NOTE_MAX];
};

int
fbxi_reset_order_save(fbx_txn *txn, const char *reason, int64_t at_ms,
    int discard, const char *actor, const char *note)
{
	char key[FBX_KV_KEY_MAX];
	struct reset_order o;

	memset(&o, 0, sizeof(o));
	o.at_ms = at_ms;
	o.discard = (uint8_t)(discard != 0);
	snprintf(o.actor, sizeof(o.actor), "%s", actor);
	snprintf(o.note, sizeof(o.note), "%s", note);
	snprintf(key, sizeof(key), "brkreset/*/%s", reason);
	return fbx_store_kv_put(txn, key, &o, sizeof(o));
}

/* fbxi_cluster_resets - cluster mode, once per lease tick: commands of
 * this node's organisations held by a global breaker that is no longer
 * open were held when another node (the duties holder) reset it: do
 * with them what that reset did (release in staged waves, or discard).
 * Store errors are latched. */
/* a reason's global breaker and its last reset order, read once per
 * call of fbxi_cluster_resets: it ran two store reads per held command
 * under the writers' lock all nodes share, every lease tick (an outside
 * drill: 20,000 held commands made every turn 3-5 s on every node) */
struct reset_seen {
	char reason[FBX_ID_MAX + 1];
	struct fbxi_breaker g;
	struct reset_order o;
	int none; /* no order kept */
};

static int
reset_seen_get(struct fbx_engine *e, const char *reason,
    struct reset_seen **v, size_t *n, size_t *cap, struct reset_seen **out)
{
	struct reset_seen *r;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	for (size_t i = 0; i < *n; i++) {
		if (strcmp((*v)[i].reason, reason) == 0) {
			*out = &(*v)[i];
			return FBX_OK;
		}
	}
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 8;
		struct reset_seen *nv = realloc(*v, ncap * sizeof(*nv));
		if (nv == NULL)
			return FBX_ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	r = &(*v)[*n];
	memset(r, 0, sizeof(*r));
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	rc = fbxi_brk_load(e->txn, "*", reason, &r->g, NULL);
	if (rc != FBX_OK)
		return rc;
	snprintf(key, sizeof(key), "brkreset/*/%s", reason);
	rc = fbx_store_kv_get(e->txn, key, &r->o, sizeof(r->o), &len);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && len != sizeof(r->o))) {
		memset(&r->o, 0, sizeof(r->o));
		r->none = 1;
		rc = FBX_OK;
	}
	if (rc != FBX_OK)
		return rc;
	(*n)++;
	*out = r;
	return FBX_OK;
}

void
fbxi_cluster_resets(struct fbx_engine *e)
{
	size_t pos = 0, nh = 0, caph = 0, nseen = 0, capseen = 0;
	uint64_t k, v;
	struct cmdc **hv = NULL;
	struct reset_seen *seen = NULL;
	uint32_t released = 0, discarded = 0, refused = 0, again = 0;
	int rc = FBX_OK;

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (cc->c.state != FBX_C_HELD || cc->c.held_by[0] != '*' ||
		    cc->c.held_by[1] != '/')
			continue;
		if (nh == caph) {
			size_t ncap = caph ? 2 * caph : 64;
			struct cmdc **nv = realloc(hv, ncap * sizeof(*nv));
			if (nv == NULL) {
				free(hv);
				fbxi_set_err(e, FBX_ENOMEM);
				return;
			}
			hv = nv;
			caph = ncap;
		}
		hv[nh++] = cc;
	}
	if (nh > 1)
		qsort(hv, nh, sizeof(*hv), fbxi_cmp_cc_id);
	for (size_t i = 0; i < nh && rc == FBX_OK; i++) {
		struct cmdc *cc = hv[i];
		const char *reason = cc->c.held_by + 2;
		struct reset_seen *r = NULL;
		const struct fbxi_breaker *g;
		struct reset_order o;
		int ref = 0;

		rc = reset_seen_get(e, reason, &seen, &nseen, &capseen, &r);
		if (rc != FBX_OK)
			break;
		g = &r->g; /* r stays put until the next command's lookup */
		o = r->o;
		if (r->none) {
			/* no order kept (reset by an older version): release
			 * once the breaker is no longer open */
			if (g->state == FBX_BS_OPEN && !g->cfg.shadow)
				continue;
			memset(&o, 0, sizeof(o));
			o.at_ms = INT64_MAX;
			snprintf(o.actor, sizeof(o.actor), "engine");
		}
		/* the last reset concerns what was submitted before it. A
		 * release is not carried out while the breaker is open (and
		 * enforcing) again: a reset closes it, so it tripped since,
		 * and what it holds now waits for its next reset, also a
		 * command that came under it after the order (released by
		 * its organisation's breaker while the global one was open
		 * again). A discard is carried out: it sends nothing. No
		 * clocks are compared (the nodes' may differ). */
		if (o.at_ms < cc->c.created_ms)
			continue;
		if (!o.discard && g->state == FBX_BS_OPEN && !g->cfg.shadow)
			continue;
		o.actor[sizeof(o.actor) - 1] = '\0';
		o.note[sizeof(o.note) - 1] = '\0';
		if (o.discard) {
			rc = fbxi_limit_uncount(e, &cc->c);
			if (rc != FBX_OK)
				break;
			cc->c.state = FBX_C_DISCARDED;
			snprintf(cc->c.resolved_by, sizeof(cc->c.resolved_by),
			    "%s", o.actor);
			fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
			    "discarded at the global breaker's reset on "
			    "another node: %s",
			    o.note);
			fbxi_cmd_touch(cc);
			discarded++;
			continue;
		}
		rc = fbxi_release_held(e, cc, o.actor, o.note,
		    fbxi_release_wave_at(e->now, released), &ref);
		if (rc == FBX_OK && ref)
			refused++;
		else if (rc == FBX_OK && cc->c.state == FBX_C_SETTLING)
			released++;
		else if (rc == FBX_OK && cc->c.state == FBX_C_HELD)
			again++; /* by its organisation's breaker */
	}
	free(hv);
	free(seen);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (released + discarded + refused + again > 0)
		FBX_LOGI("cluster: global breaker reset on another node: %u "
		         "held commands of this node's organisations released, "
		         "%u discarded, %u refused by limits, %u held again by "
		         "their organisation's breaker",
		    released, discarded, refused, again);
}
