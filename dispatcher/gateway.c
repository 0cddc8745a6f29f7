/*
 * gateway.c: the in-flight maps of gateway sessions (which delivery each
 * session holds, its credit in deliveries and bytes) and the turn's undo
 * log of them. The store does not know which gateway holds what, so these
 * maps are not rebuilt after a failed turn: every change goes through the
 * undo log and a failed turn puts them back. Calls only core and queue.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* undo_push - note that (g, id) had value v (0: absent) before. */
int
fbxi_gw_undo_push(struct fbx_engine *e, struct gw *g, uint64_t id, uint64_t v)
{
	if (e->nundo == e->undocap) {
		size_t ncap = e->undocap ? e->undocap * 2 : 1024;
		struct gw_undo *n = realloc(e->undo, ncap * sizeof(*n));
		if (n == NULL)
			return FBX_ENOMEM;
		e->undo = n;
		e->undocap = ncap;
	}
	e->undo[e->nundo++] = (struct gw_undo) { g, id, v };
	return FBX_OK;
}

int
fbxi_gw_undo_note(struct fbx_engine *e, struct gw *g, uint64_t id)
{
	uint64_t v = 0;

	if (e->nundo == e->undocap) {
		size_t ncap = e->undocap ? e->undocap * 2 : 1024;
		struct gw_undo *n = realloc(e->undo, ncap * sizeof(*n));
		if (n == NULL)
			return FBX_ENOMEM;
		e->undo = n;
		e->undocap = ncap;
	}
	if (!fbxi_dmap_get(&g->inflight, id, &v))
		v = 0;
	e->undo[e->nundo++] = (struct gw_undo) { g, id, v };
	return FBX_OK;
}

/* if_add - add an entry known to be absent (undoable, one lookup). */
int
fbxi_gw_if_add(struct fbx_engine *e, struct gw *g, uint64_t id, uint64_t v)
{
	if (fbxi_gw_undo_push(e, g, id, 0) != FBX_OK)
		return FBX_ENOMEM;
	if (fbxi_dmap_put(&g->inflight, id, v) != 0) {
		e->nundo--;
		return FBX_ENOMEM;
	}
	return FBX_OK;
}

/* if_drop - drop an entry whose value v the caller has read. */
int
fbxi_gw_if_drop(struct fbx_engine *e, struct gw *g, uint64_t id, uint64_t v)
{
	if (fbxi_gw_undo_push(e, g, id, v) != FBX_OK)
		return FBX_ENOMEM;
	fbxi_dmap_del(&g->inflight, id, NULL);
	return FBX_OK;
}

int
fbxi_gw_live(struct fbx_engine *e, const struct gw *g)
{
	for (struct gw *o = e->gws; o != NULL; o = o->next) {
		if (o == g)
			return 1;
	}
	return 0;
}

/* fbxi_gw_recount - a session's unanswered count and bytes from its map. */
void
fbxi_gw_recount(struct fbx_engine *e, struct gw *g)
{
	size_t pos = 0;
	uint64_t id, v;

	g->unanswered = 0;
	g->ubytes = 0;
	while (fbxi_dmap_next(&g->inflight, &pos, &id, &v)) {
		if (IF_STAGE(v) == IF_SENT) {
			g->unanswered++;
			g->ubytes += fbxi_dlv_bytes(e, id);
		}
	}
}

/* undo_apply - a turn failed: put the live sessions' maps back. */
void
fbxi_gw_undo_apply(struct fbx_engine *e)
{
	while (e->nundo > 0) {
		struct gw_undo *u = &e->undo[--e->nundo];
		if (!fbxi_gw_live(e, u->g))
			continue;
		if (u->v == 0)
			fbxi_dmap_del(&u->g->inflight, u->id, NULL);
		else if (fbxi_dmap_put(&u->g->inflight, u->id, u->v) != 0)
			u->g->dead = 1; /* cannot restore: requeue it all */
	}
	for (struct gw *g = e->gws; g != NULL; g = g->next)
		fbxi_gw_recount(e, g);
}

/* gw_holder - the live session holding delivery id, or NULL. */
struct gw *
fbxi_gw_holder(struct fbx_engine *e, uint64_t id, uint64_t *v)
{
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (!g->dead && fbxi_dmap_get(&g->inflight, id, v))
			return g;
	}
	return NULL;
}

/* dlv_bytes - about what delivery id costs in a DELIVERIES message. */
uint64_t
fbxi_dlv_bytes(struct fbx_engine *e, uint64_t id)
{
	return fbxi_dlv_cost(fbxi_cmd_find(e, FBX_DLV_CMD(id)));
}

/* gw_answered - the gateway answered a delivery it was sent: credit (in
 * deliveries and bytes) comes back. */
void
fbxi_gw_answered(struct fbx_engine *e, struct gw *g, struct cmdc *cc, uint64_t id)
{
	uint64_t b = cc != NULL ? fbxi_dlv_cost(cc) : fbxi_dlv_bytes(e, id);

	if (g->unanswered > 0)
		g->unanswered--;
	g->ubytes = g->ubytes > b ? g->ubytes - b : 0;
}

/* fbxi_gw_drop - whichever session holds delivery id lets go of it (the
 * delivery is journaled elsewhere in the same turn). */
void
fbxi_gw_drop(struct fbx_engine *e, uint64_t id)
{
	uint64_t v = 0;
	struct gw *h = fbxi_gw_holder(e, id, &v);

	if (h == NULL)
		return;
	if (fbxi_gw_if_drop(e, h, id, v) != FBX_OK) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	if (IF_STAGE(v) == IF_SENT)
		fbxi_gw_answered(e, h, NULL, id);
	fbxi_inflight_release(e, v);
}

static int
serves(const struct gw *g, const char *org)
{
	if (g->all_orgs)
		return 1;
	for (size_t i = 0; i < g->norgs; i++) {
		if (strcmp(g->orgs[i], org) == 0)
			return 1;
	}
	return 0;
}

uint64_t
fbxi_org_share(const struct fbx_engine *e, uint64_t win)
{
	uint64_t cap;

	if (fbxi_org_share_off(e))
		return UINT64_MAX;
	cap = win * e->o.org_share_ppm / FBX_PPM;
	return cap < 1024 ? 1024 : cap;
}

/* fbxi_gw_room - about how many deliveries of organisation q the
 * dispatch of this turn could hand out: the free windows of the gateways
 * that serve it, within its share of their windows and the in-flight
 * caps, at most the turn's dispatch cap. -1 when that cannot be told: no live
 * gateway serves q, or a rate cap applies (its tokens decide). */
int64_t
fbxi_gw_room(struct fbx_engine *e, struct orgq *q)
{
	uint64_t win = 0, room = 0, cap;
	int any = 0;

	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (g->dead || !serves(g, q->org))
			continue;
		any = 1;
		win += g->window;
		if (g->welcomed && g->unanswered < g->window &&
		    g->ubytes < GW_BYTES_INFLIGHT_MAX)
			room += g->window - g->unanswered;
	}
	if (!any)
		return -1;
	fbxi_orgq_load_rate(e, q);
	if (q->rate.rate_per_s > 0 || e->grate.rate_per_s > 0)
		return -1;
	cap = fbxi_org_share(e, win);
	if (cap != UINT64_MAX) {
		cap = q->inflight >= cap ? 0 : cap - q->inflight;
		if (room > cap)
			room = cap;
	}
	if (q->rate.max_inflight > 0) {
		cap = q->inflight >= q->rate.max_inflight
		    ? 0
		    : q->rate.max_inflight - q->inflight;
		if (room > cap)
			room = cap;
	}
	if (e->grate.max_inflight > 0) {
		cap = e->inflight_all >= e->grate.max_inflight
		    ? 0
		    : e->grate.max_inflight - e->inflight_all;
		if (room > cap)
			room = cap;
	}
	return room > e->dispatch_max ? e->dispatch_max : (int64_t)room;
}
