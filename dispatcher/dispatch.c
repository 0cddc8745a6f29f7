/*
 * dispatch.c: handing queued deliveries to gateways. Each turn takes
 * deliveries from the per-organisation queues in round robin within each
 * organisation's rate and in-flight caps and each gateway's credit
 * (deliveries and bytes), journals them SENT in the turn's transaction and
 * batches them per gateway, small commands first.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "engine_int.h"

/* gw_flush_batch - hand g's batches of this turn to the output: the
 * urgent one (small commands) is marked so, and fbxi_out_flush sends it
 * before the bulk ones. */
static void
gw_flush_batch(struct fbx_engine *e, struct gw *g, int urgent)
{
	struct gw_batch *b = &g->b[urgent ? 1 : 0];
	struct fbx_eng_msg m;

	if (b->obn == 0)
		return;
	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_DELIVERIES;
	m.u.deliveries.d = b->ob;
	m.u.deliveries.n = b->obn;
	m.u.deliveries.urgent = urgent;
	fbxi_gw_send(e, g, &m);
	b->obn = 0;
	b->obbytes = 0;
}

/* cmd_small - a command of few devices, fully expanded, of an
 * organisation with little else queued or in flight: its deliveries are
 * urgent (a lock of one stolen phone must not wait behind another
 * organisation's million at the gateway). Urgent batches leave ahead of
 * the turn's others, so an organisation that has bulk work gets none:
 * a device's commands reach it in the order they were dispatched. */
static int
cmd_small(const struct cmdc *cc)
{
	return cc->c.state != FBX_C_EXPANDING &&
	    cc->c.ndeliveries <= URGENT_MAX && cc->q != NULL &&
	    cc->q->len + cc->q->inflight <= URGENT_MAX;
}

/* send_one - journal `id` as SENT and add it to g's outgoing batch.
 * @return 1 if it was handed out, 0 if skipped. */
static int
send_one(struct fbx_engine *e, struct gw *g, uint64_t id)
{
	struct cmdc *cc = fbxi_cmd_find(e, FBX_DLV_CMD(id));
	struct fbx_dlv_head d;
	struct fbx_dlv_out *o;
	struct gw_batch *b;
	int old = 0, rc, urgent;

	if (cc == NULL || cc->expired || cc->cancelling)
		return 0;
	/* a paused rollout sends nothing until it is resumed, also what it
	 * had released */
	if (fbxi_ro_park(e, cc, id))
		return 0;
	urgent = cmd_small(cc);
	b = &g->b[urgent];
	if (b->ob == NULL) {
		b->ob = malloc(e->o.send_batch * sizeof(*b->ob));
		b->obdev = malloc(e->o.send_batch * sizeof(*b->obdev));
		if (b->ob == NULL || b->obdev == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			return 0;
		}
	}
	/* only a QUEUED delivery goes out: one a rollback or a cancel made
	 * terminal while its id sat in a queue stays where it is */
	rc = fbxi_dlv_move(e, cc, id, FBXI_DMASK(FBX_D_QUEUED), FBX_D_SENT, 0,
	    1, &old, &d);
	if (rc == FBX_ESTATE || rc == FBX_ENOT_FOUND)
		return 0;
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return 0;
	}
	/* it was QUEUED: no session holds it */
	if (fbxi_gw_if_add(e, g, id, IF_VAL(cc->q, IF_SENT)) != FBX_OK) {
		fbxi_set_err(e, FBX_ENOMEM);
		return 0;
	}
	g->unanswered++;
	g->ubytes += fbxi_dlv_cost(cc);
	cc->q->inflight++;
	cc->q->sent_mono = e->mono;
	e->inflight_all++;
	e->dlv_sent++;
	o = &b->ob[b->obn];
	memcpy(b->obdev[b->obn], d.device, sizeof(b->obdev[b->obn]));
	o->delivery_id = id;
	o->command_id = cc->c.id;
	o->org = cc->c.org;
	o->device = b->obdev[b->obn];
	o->type = cc->c.type;
	o->payload = cc->c.payload;
	o->payload_len = cc->c.payload_len;
	o->expires_ms = cc->c.expires_ms;
	o->attempt = d.attempts;
	/* a message stays well under the gateway cap however big the
	 * payloads: each delivery carries its command's payload */
	b->obbytes += fbxi_dlv_cost(cc);
	if (++b->obn == e->o.send_batch || b->obbytes >= GW_MSG_SOFT_MAX)
		gw_flush_batch(e, g, urgent);
	return 1;
}

/* org_share_cap - how many deliveries organisation q may have in flight
 * in all under org_share: no organisation fills the gateways' windows
 * alone, so another organisation's command does not queue behind a
 * whole window of this one's at the gateway (head-of-line blocking).
 * UINT64_MAX when org_share is off. Computed once per organisation and
 * pass: the windows do not change while dispatch runs. */
static uint64_t
org_share_cap(struct fbx_engine *e, const struct orgq *q)
{
	uint64_t win = 0;

	if (fbxi_org_share_off(e))
		return UINT64_MAX; /* no walk */
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (!g->dead && fbxi_gw_serves(g, q->org))
			win += g->window;
	}
	return fbxi_org_share(e, win);
}

/* org_allow - how many of `want` deliveries organisation q may send now
 * under its share of the windows (`share`, org_share_cap), its in-flight
 * cap, the global cap and its token bucket. */
static uint32_t
org_allow(struct fbx_engine *e, struct orgq *q, uint32_t want, uint64_t share)
{
	const struct fbx_rate_info *r = &q->rate;

	if (q->inflight >= share)
		return 0;
	if (want > share - q->inflight)
		want = (uint32_t)(share - q->inflight);

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
	if (e->grate.rate_per_s > 0) {
		uint32_t g = fbxi_bucket_take(&e->gbucket, e->now,
		    e->grate.rate_per_s, e->grate.burst, want);
		/* what the global cap did not allow stays the
		 * organisation's */
		fbxi_bucket_give(&q->bucket, r->rate_per_s, r->burst, want - g);
		want = g;
	}
	return want;
}

/* org_unused - tokens org_allow gave for deliveries that did not leave
 * (a paused rollout's, kept back; cancelled or ended ones) go back: an
 * organisation pays only for what it sends. */
static void
org_unused(struct fbx_engine *e, struct orgq *q, uint32_t n)
{
	fbxi_bucket_give(&q->bucket, q->rate.rate_per_s, q->rate.burst, n);
	fbxi_bucket_give(
	    &e->gbucket, e->grate.rate_per_s, e->grate.burst, n);
}

/* gw_open - whether g can take another delivery now */
static int
gw_open(const struct gw *g)
{
	/* nothing to a session before its WELCOME has left (a HELLO of a
	 * failed turn) */
	return !g->dead && g->welcomed && g->unanswered < g->window &&
	    g->ubytes < GW_BYTES_INFLIGHT_MAX;
}

/* org_to_gw - up to a quantum of organisation q's deliveries of class
 * prio to gateway g, within q's caps (share: org_share_cap); @return how
 * many left */
static uint32_t
org_to_gw(struct fbx_engine *e, struct gw *g, struct orgq *q, int prio,
    uint32_t room, uint64_t share)
{
	struct ring *r = &q->r[prio];
	uint32_t want = QUANTUM, allow, n = 0;

	fbxi_orgq_load_rate(e, q);
	if (want > g->window - g->unanswered)
		want = g->window - g->unanswered;
	if (want > r->len)
		want = (uint32_t)r->len;
	if (want > room)
		want = room;
	allow = org_allow(e, q, want, share);
	while (n < allow && r->len > 0 && g->ubytes < GW_BYTES_INFLIGHT_MAX &&
	    fbxi_err(e) == FBX_OK) {
		if (r->len > PREFETCH_AHEAD)
			fbxi_dmap_prefetch(&g->inflight,
			    r->v[(r->head + PREFETCH_AHEAD) % r->cap]);
		q->len--;
		if (send_one(e, g, fbxi_ring_pop(r)))
			n++;
	}
	if (n < allow)
		org_unused(e, q, allow - n);
	return n;
}

/* org_pass - organisation q's share of one pass in class prio: at most
 * a quantum (and room) in all, over the gateways that serve it, from g0
 * on, wrapping; *open tells whether any gateway could still take a
 * delivery. @return how many left */
static uint32_t
org_pass(struct fbx_engine *e, struct orgq *q, int prio, struct gw *g0,
    uint32_t room, int *open)
{
	uint32_t sent = 0, quota = room < QUANTUM ? room : QUANTUM;
	uint64_t share = org_share_cap(e, q);
	struct gw *g = g0;

	*open = 0;
	do {
		if (gw_open(g)) {
			*open = 1;
			if (fbxi_gw_serves(g, q->org))
				sent += org_to_gw(
				    e, g, q, prio, quota - sent, share);
		}
		g = g->next != NULL ? g->next : e->gws;
	} while (g != g0 && sent < quota && q->r[prio].len > 0 &&
	    fbxi_err(e) == FBX_OK);
	return sent;
}

/* rr_drop_empty - take the organisations with nothing queued out of the
 * round, keeping the order of the others and the head where it is */
static void
rr_drop_empty(struct fbx_engine *e)
{
	size_t j = 0, head = e->rrpos;

	for (size_t i = 0; i < e->rrlen; i++) {
		if (e->rr[i]->len == 0) {
			e->rr[i]->active = 0;
			if (i < e->rrpos)
				head--;
			continue;
		}
		e->rr[j++] = e->rr[i];
	}
	e->rrlen = j;
	e->rrpos = j > 0 ? head % j : 0;
}

/* fbxi_dispatch_step - fill the gateways' credit from the organisation
 * queues: priority classes strictly in order (recovery first, bulk
 * rollouts last), and within a class round robin over organisations,
 * each taking at most a quantum per pass in all, spread over the
 * gateways that serve it, so one organisation's million-device fan-out
 * does not delay another's single command, however many gateways serve
 * them. Rate caps are applied per organisation.
 *
 * The organisations, not the gateways, are the outer loop: what is
 * shared (a gateway's window, the global rate cap) goes round them
 * whatever gateways they are behind. (With the gateways outer, a binding
 * global cap went whole to the organisations of the first gateway in
 * the list, every step.) The head of the round moves on by one after
 * each step that sent anything; a step that sends nothing does not move
 * it, so a cap that grants a token every few steps grants it in turn.
 * Within a step each class starts at the head and each further pass
 * one organisation later; the gateway an organisation's quantum goes to
 * first moves on by one after each pass that sent something. */
void
fbxi_dispatch_step(struct fbx_engine *e)
{
	uint32_t total = 0;
	size_t ngw = 0;

	for (struct gw *g = e->gws; g != NULL; g = g->next)
		ngw++;
	for (int prio = 0; prio < FBX_PRIO_COUNT && ngw > 0; prio++) {
		int progress = 1;
		for (size_t pass = 0; progress && total < e->dispatch_max &&
		    fbxi_err(e) == FBX_OK;
		    pass++) {
			int open = 1;
			struct gw *g0 = e->gws;
			for (size_t i = e->gwrot % ngw; i > 0; i--)
				g0 = g0->next;
			progress = 0;
			for (size_t k = 0; k < e->rrlen && open &&
			    total < e->dispatch_max && fbxi_err(e) == FBX_OK;
			    k++) {
				struct orgq *q =
				    e->rr[(e->rrpos + pass + k) % e->rrlen];
				uint32_t n;
				if (q->r[prio].len == 0)
					continue;
				n = org_pass(e, q, prio, g0,
				    e->dispatch_max - total, &open);
				total += n;
				if (n > 0)
					progress = 1;
			}
			/* the next pass that sends starts at the next
			 * gateway (passes that send nothing do not count, or
			 * with as many gateways as passes in a step the same
			 * one would always come first) */
			if (progress)
				e->gwrot++;
		}
	}
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		gw_flush_batch(e, g, 1);
		gw_flush_batch(e, g, 0);
	}
	/* queued work that rate caps held back: poll, do not spin */
	e->stalled = total == 0 && e->rrlen > 0;
	if (total > 0 && e->rrlen > 0)
		e->rrpos = (e->rrpos + 1) % e->rrlen;
	rr_drop_empty(e);
}

int
fbxi_work_pending(struct fbx_engine *e)
{
	/* while the store cannot be written nothing can be done before the
	 * retry turn (the loop looks again within 50 ms): no busy loop
	 * over the brakes a read-only turn left waiting, nor over a
	 * storm's pending dispatch */
	if (e->degraded)
		return 0;
	if (e->ndef > 0)
		return 1; /* input a short turn left for the next one */
	if (e->draining)
		return 0;
	if ((e->xhead != NULL && !e->xidle) || e->nrq > 0 || e->nunsent > 0)
		return 1;
	if (e->rrlen == 0 || e->stalled)
		return 0;
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (gw_open(g))
			return 1;
	}
	return 0;
}
