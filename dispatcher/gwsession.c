/*
 * gwsession.c: gateway sessions: lookup by routing id, liveness (a
 * silent one is ended) and the requeue of what an ended one held,
 * journaled through delivery.c (whether a session serves an organisation,
 * fbxi_gw_serves, is inline in engine_int.h). Above gateway.c (the
 * in-flight maps and their undo log), which delivery.c calls. Runs inside
 * the turn's write transaction.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "engine_int.h"

struct gw *
fbxi_gw_by_rid(struct fbx_engine *e, const uint8_t *rid, size_t len)
{
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (!g->dead && g->rid_len == len &&
		    memcmp(g->rid, rid, len) == 0)
			return g;
	}
	return NULL;
}

/* fbxi_requeue_one - a delivery no gateway holds any more (in a state of
 * `from`) goes back to its queue to be sent again with its id, or ends
 * CANCELLED when its rollout was cancelled, or when it is withdrawn and
 * its message never left (left = 0), unless it stands in for an older
 * command that still wants the device (fbxi_supersede_carries). One that
 * left may have reached the device: it is no longer withdrawn
 * (fbxi_dlv_withdrawn). @return 1 if
 * queued, 0 if there was nothing to do, -1 on an error (latched). */
int
fbxi_requeue_one(struct fbx_engine *e, struct cmdc *cc, uint64_t id,
    unsigned from, int left)
{
	int rc, to, wd;

	if (cc == NULL || cc->expired)
		return 0; /* the expiry sweep owns it */
	wd = fbxi_dlv_withdrawn(e, id);
	to = cc->cancelling ? FBX_D_CANCELLED : FBX_D_QUEUED;
	if (to == FBX_D_QUEUED && wd && !left) {
		/* never left: cancelled, unless it carries an older command */
		int c = fbxi_supersede_carries(e, cc->c.org, id);
		if (c < 0)
			return -1;
		if (!c)
			to = FBX_D_CANCELLED;
	}
	rc = fbxi_dlv_move(e, cc, id, from, to, 0, 0, NULL, NULL);
	if (rc == FBX_OK && wd && to == FBX_D_QUEUED)
		rc = fbxi_dlv_unwithdraw(e, cc->c.org, id);
	if (rc == FBX_ESTATE || rc == FBX_ENOT_FOUND)
		return 0;
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	if (to != FBX_D_QUEUED)
		return 0;
	if (fbxi_orgq_push(e, cc->q, cc->c.priority, id) != FBX_OK) {
		fbxi_set_err(e, FBX_ENOMEM);
		return -1;
	}
	return 1;
}

/* fbxi_gw_requeue - put every delivery a gateway holds back in its queue,
 * journaled as QUEUED, to be sent again with the same delivery id. */
void
fbxi_gw_requeue(struct fbx_engine *e, struct gw *g)
{
	uint64_t id, v;
	size_t pos = 0;
	size_t n = 0;

	while (fbxi_err(e) == FBX_OK &&
	    fbxi_dmap_next(&g->inflight, &pos, &id, &v)) {
		int r;
		if (fbxi_gw_undo_note(e, g, id) != FBX_OK) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		fbxi_inflight_release(e, v);
		r = fbxi_requeue_one(
		    e, fbxi_cmd_find(e, FBX_DLV_CMD(id)), id, FBXI_DHELD, 1);
		if (r < 0)
			return;
		n += (size_t)r;
	}
	fbxi_dmap_clear(&g->inflight);
	g->unanswered = 0;
	g->ubytes = 0;
	if (n > 0)
		FBX_LOGI("gateway %s: %zu in-flight deliveries re-queued",
		    g->id, n);
}

void
fbxi_gw_mark_dead(struct fbx_engine *e, struct gw *g, const char *why)
{
	(void)e;
	if (g == NULL || g->dead)
		return;
	FBX_LOGW("gateway %s lost: %s", g->id, why);
	g->dead = 1; /* requeued and freed at the next turn, in its txn */
}

void
fbxi_gw_free(struct gw *g)
{
	fbxi_dmap_fini(&g->inflight);
	free(g->orgs);
	for (int k = 0; k < 2; k++) {
		free(g->b[k].ob);
		free(g->b[k].obdev);
	}
	free(g);
}

/* fbxi_gw_reap - requeue and drop dead sessions (inside the turn's txn). A
 * gateway is silent only if its input was drained since: a slow turn
 * leaves its messages unread, which is not its fault. */
void
fbxi_gw_reap(struct fbx_engine *e)
{
	struct gw **pp = &e->gws;

	while (*pp != NULL && fbxi_err(e) == FBX_OK) {
		struct gw *g = *pp;
		if (!g->dead && e->gw_drained - g->last_seen >
		        3 * (int64_t)e->o.heartbeat_ms) {
			FBX_LOGW("gateway %s silent for %lld ms", g->id,
			    (long long)(e->gw_drained - g->last_seen));
			g->dead = 1;
		}
		if (!g->dead) {
			pp = &g->next;
			continue;
		}
		fbxi_gw_requeue(e, g);
		*pp = g->next;
		/* outputs queued this turn may still point at g */
		for (struct outmsg *o = e->ohead; o != NULL; o = o->next) {
			if (o->gw == g)
				o->gw = NULL;
		}
		/* freed after the turn: the undo log may name it */
		g->next = e->graveyard;
		e->graveyard = g;
	}
}
