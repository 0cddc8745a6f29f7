/*
 * gwmsg.c: the messages a gateway sends: HELLO (a session begins, with
 * its organisations and window), results (a delivery's outcome, moved
 * through delivery.c and counted towards the breakers) and check-ins
 * (devices that came online, whose pending deliveries are queued again).
 * Runs inside the turn's write transaction.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "fleet.h"
#include "engine_int.h"
#include "auth.h"

/* id_refused - whether the gateway id a HELLO asks for is held by
 * another session than g (NULL: the connection has none yet), which is
 * then told why. A gateway id belongs to the key that holds it: another
 * key never takes it over, even from a quiet session; the same key takes
 * it from a session quiet for 2 heartbeats (it reconnected), which ends.
 * Two live peers under one id would take each other's deliveries. A
 * HELLO again on an open session is checked the same way: it could name
 * another session's id, and held it beside that one (an outside check
 * kept another organisation's gateway out so). */
static int
id_refused(struct fbx_engine *e, const struct inmsg *in, const struct gw *g,
    const char *id)
{
	for (struct gw *o = e->gws; o != NULL; o = o->next) {
		if (o == g || o->dead || strcmp(o->id, id) != 0)
			continue;
		if (strcmp(o->principal, in->user) != 0) {
			FBX_LOGW("gateway %s: HELLO by principal %s "
			         "refused, the id is held by %s",
			    o->id, in->user, o->principal);
			fbxi_auth_refuse_audit(e, "_auth", in->user,
			    "gateway.hello",
			    "gateway id held by another principal");
			fbxi_gw_send_raw_error(e, in, FBX_EFORBIDDEN,
			    "gateway id in use by another principal");
			return 1;
		}
		if (e->mono - o->last_seen < 2 * (int64_t)e->o.heartbeat_ms) {
			FBX_LOGW("gateway %s: HELLO from a second peer "
			         "refused, the id is in use by a live session",
			    o->id);
			fbxi_gw_send_raw_error(e, in, FBX_EBUSY,
			    "gateway id in use by a live session; retry "
			    "after its heartbeat timeout");
			return 1;
		}
	}
	for (struct gw *o = e->gws; o != NULL; o = o->next)
		if (o != g && !o->dead && strcmp(o->id, id) == 0)
			fbxi_gw_mark_dead(e, o, "replaced by a new session");
	return 0;
}

static void
handle_hello(struct fbx_engine *e, const struct inmsg *in, struct gw *g,
    struct fbx_gw_msg *m)
{
	struct fbx_eng_msg w;

	if (g != NULL) {
		/* the same peer says hello again: it restarted and lost what
		 * it held, which goes back to the queue whatever comes of
		 * the HELLO. Under another session's id: refused, and the
		 * session goes on under its own */
		fbxi_gw_requeue(e, g);
		if (id_refused(e, in, g, m->u.hello.gateway_id))
			return;
	} else {
		/* a session's routing id is one ZeroMQ generated for the
		 * connection (5 bytes, the first 0: a counter from a start
		 * drawn at random), which another peer would have to guess.
		 * One the gateway chose
		 * (ZMQ_ROUTING_ID) another key could connect under once
		 * this peer is gone, and receive what the engine still
		 * sends to that id before the session ends */
		if (!e->o.auth_off &&
		    (in->envlen[0] != 5 || in->env[0][0] != 0)) {
			FBX_LOGW("gateway %s: HELLO by principal %s refused: "
			         "its routing id was chosen by the client",
			    m->u.hello.gateway_id, in->user);
			fbxi_gw_send_raw_error(e, in, FBX_EPROTOCOL,
			    "the connection's routing id was set by the "
			    "gateway (ZMQ_ROUTING_ID): leave it unset, so "
			    "that ZeroMQ numbers the connection");
			return;
		}
		/* a gateway that reconnected under a new routing id: the
		 * old session must have gone quiet first */
		if (id_refused(e, in, NULL, m->u.hello.gateway_id))
			return;
		g = calloc(1, sizeof(*g));
		if (g == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		fbxi_dmap_init(&g->inflight);
		snprintf(g->principal, sizeof(g->principal), "%s", in->user);
		snprintf(g->key, sizeof(g->key), "%s", in->key);
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
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		memcpy(g->orgs, m->u.hello.orgs,
		    m->u.hello.norgs * sizeof(*g->orgs));
		g->norgs = m->u.hello.norgs;
	}
	g->window = m->u.hello.window;
	if (g->window > e->o.max_window)
		g->window = e->o.max_window;
	g->welcomed = 0; /* until this HELLO's WELCOME has left */
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
	fbxi_gw_send(e, g, &w);
}

static void
mark_offline(struct fbx_engine *e, const char *org, const char *device)
{
	int rc = fbx_store_dev_set_online(e->txn, org, device, 0);

	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		fbxi_set_err(e, rc);
}

/* withdrawn_to - where a withdrawn delivery waiting for its device goes
 * at the device's check-in: CANCELLED (the device never got it, and a
 * rollback no longer wants it sent), unless it stands in for an older
 * command that was not rolled back and still wants the device (it
 * superseded one while it was out: fbxi_supersede_carries), which it
 * then reaches as it would have without the rollback: QUEUED (the
 * caller ends the withdrawal once the move is made). @return the state,
 * or -1 with the error latched. */
static int
withdrawn_to(struct fbx_engine *e, const struct cmdc *cc, uint64_t id)
{
	int c = fbxi_supersede_carries(e, cc->c.org, id);

	return c < 0 ? -1 : c ? FBX_D_QUEUED : FBX_D_CANCELLED;
}

/* result_state - the delivery state a reported status leads to, or 0. */
static int
result_state(int status)
{
	switch (status) {
	case FBX_R_ACCEPTED:
		return FBX_D_ACCEPTED;
	case FBX_R_SUCCEEDED:
		return FBX_D_SUCCEEDED;
	case FBX_R_FAILED:
		return FBX_D_FAILED;
	case FBX_R_OFFLINE:
		return FBX_D_PENDING;
	default:
		return 0;
	}
}

/* finished_result - a result for a delivery of a command no longer in
 * memory: taken (counted) if the stored delivery is final and of an
 * organisation g serves; a resend. @return 1, 0 (refused) or -1 on a
 * store error (latched). */
static int
finished_result(struct fbx_engine *e, struct gw *g, uint64_t id)
{
	struct fbx_delivery d;
	struct fbx_command c;
	int rc = fbx_store_dlv_get(e->txn, id, &d), served;

	if (rc == FBX_OK && !fbx_dstate_terminal(d.state))
		return 0;
	if (rc == FBX_OK)
		rc = fbx_store_cmd_head(e->txn, FBX_DLV_CMD(id), &c);
	if (rc == FBX_ENOT_FOUND || rc == FBX_ECORRUPT)
		return 0;
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	served = fbxi_gw_serves(g, c.org);
	fbx_command_clear(&c);
	return served;
}

/* never_sent - whether delivery id is queued and was never handed to a
 * gateway (attempts 0). @return 1, 0, or -1 on a store error (latched). */
static int
never_sent(struct fbx_engine *e, uint64_t id)
{
	struct fbx_delivery d;
	int rc = fbx_store_dlv_get(e->txn, id, &d);

	if (rc == FBX_ENOT_FOUND || rc == FBX_ECORRUPT)
		return 0; /* the move below refuses it */
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	return d.state == FBX_D_QUEUED && d.attempts == 0;
}

/* forged_final - a final outcome from g for delivery id, held by session
 * h (NULL: by none) or by no one: forged when h is another key's, or
 * when no gateway was ever handed it (no device can have run it);
 * counted then. @return 1 forged, 0 not, -1 on a store error (latched). */
static int
forged_final(struct fbx_engine *e, const struct gw *g, const struct gw *h,
    uint64_t id)
{
	int rc;

	if (h != NULL)
		rc = strcmp(h->principal, g->principal) != 0;
	else
		rc = never_sent(e, id);
	if (rc > 0)
		e->forged_results++;
	return rc;
}

/* result_apply - record one result of gateway g. A result for a delivery
 * g's session does not hold (g reconnected, or the delivery was requeued
 * after a failed turn) is still an outcome the device really had: its
 * success or failure is recorded if the delivery is still open, and it is
 * taken from whichever session holds it now. A report with nothing left
 * to record (progress of a delivery sent again since, or of one already
 * final) is taken too. @return 1 if taken (recorded now or before, or
 * nothing to record), 0 if refused (an organisation g does not serve, an
 * unknown delivery, another key's), -1 on a store error (latched). */
static int
result_apply(struct fbx_engine *e, struct gw *g, const struct fbx_result_rec *r)
{
	struct fbx_dlv_head dh;
	struct cmdc *cc;
	struct gw *h = g;
	uint64_t v = 0;
	unsigned from;
	int to = result_state(r->status), old = 0, rc, held, offline, wd;

	if (to == 0)
		return 0;
	held = fbxi_dmap_get(&g->inflight, r->delivery_id, &v);
	cc = fbxi_cmd_find(e, FBX_DLV_CMD(r->delivery_id));
	if (!held) {
		if (cc == NULL) /* finished (recorded before), or never was */
			return finished_result(e, g, r->delivery_id);
		if (!fbxi_gw_serves(g, cc->c.org)) {
			/* an organisation outside the key's scope: an outcome
			 * of its delivery is forged as one for another key's
			 * is (counted, logged and audited with the batch). In
			 * its scope but not this session's HELLO (a gateway
			 * that narrowed it) it is not taken, and forged only
			 * when another key holds it or none was handed it */
			const struct fbxi_principal *p =
			    e->auth != NULL
			        ? fbxi_auth_find(e->auth, g->principal)
			        : NULL;
			int final = to == FBX_D_SUCCEEDED || to == FBX_D_FAILED;
			if (final && p != NULL &&
			    !fbxi_principal_may_org(p, cc->c.org)) {
				e->forged_results++;
			} else if (final &&
			    forged_final(e, g,
			        fbxi_gw_holder(e, r->delivery_id, &v),
			        r->delivery_id) < 0) {
				/* as from a session that lists it */
				return -1;
			}
			return 0;
		}
		/* the device got it, whatever comes of this report (it may
		 * come after the offline report it preceded): no longer
		 * withdrawn, on the word of the key it was sent to */
		if (to != FBX_D_PENDING &&
		    (rc = fbxi_dlv_unwithdraw_by(e, cc->c.org, r->delivery_id,
		         g->principal)) != FBX_OK) {
			fbxi_set_err(e, rc);
			return -1;
		}
		h = fbxi_gw_holder(e, r->delivery_id, &v);
		if (h != NULL && strcmp(h->principal, g->principal) != 0) {
			/* another key's delivery: an outcome only the
			 * gateway that was sent it may report (issue 10) */
			if (to == FBX_D_SUCCEEDED || to == FBX_D_FAILED)
				e->forged_results++;
			return 0;
		}
		if (to != FBX_D_SUCCEEDED && to != FBX_D_FAILED)
			return 1; /* progress of a delivery sent again since,
			           * or final: nothing to record */
		if (h == NULL &&
		    (rc = forged_final(e, g, NULL, r->delivery_id)) != 0)
			return rc < 0 ? -1 : 0;
	}
	if (h != NULL && IF_STAGE(v) == IF_SENT)
		fbxi_gw_answered(e, h, cc, r->delivery_id);
	if (h != NULL && to == FBX_D_ACCEPTED) {
		if (IF_STAGE(v) == IF_ACCEPTED)
			return 1;
		if (fbxi_gw_undo_push(e, h, r->delivery_id, v) != FBX_OK ||
		    fbxi_dmap_put(&h->inflight, r->delivery_id,
		        IF_VAL(IF_ORGQ(v), IF_ACCEPTED)) != 0)
			goto nomem;
	} else if (h != NULL) {
		if (fbxi_gw_if_drop(e, h, r->delivery_id, v) != FBX_OK)
			goto nomem;
		fbxi_inflight_release(e, v);
	}
	if (cc == NULL)
		return 1; /* finished (expired) meanwhile */
	/* the device is offline: a cancelled rollout's delivery ends here
	 * rather than wait for its check-in. A withdrawn one waits, still
	 * withdrawn if the gateway never said it passed it on: the check-in
	 * then cancels it (handle_checkins), unless a report that the
	 * device got it comes first (results may arrive out of order).
	 * Accepted, it is no longer withdrawn: the device has it. */
	offline = to == FBX_D_PENDING;
	wd = fbxi_dlv_withdrawn(e, r->delivery_id);
	if (offline && cc->cancelling)
		to = FBX_D_CANCELLED;
	else if (wd &&
	    (to == FBX_D_ACCEPTED || (offline && IF_STAGE(v) != IF_SENT)) &&
	    (rc = fbxi_dlv_unwithdraw(e, cc->c.org, r->delivery_id)) !=
	        FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	/* a terminal outcome is final: the TTL sweep or a cancel may have
	 * got there first, and the table refuses the move */
	from = held ? FBXI_DHELD : FBXI_DHELD | FBXI_DMASK(FBX_D_QUEUED);
	rc = fbxi_dlv_move(
	    e, cc, r->delivery_id, from, to, r->code, 0, &old, &dh);
	if (rc == FBX_ESTATE || rc == FBX_ENOT_FOUND)
		return fbx_dstate_terminal(old) ? 1 : 0;
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	if (to == FBX_D_SUCCEEDED && cc->c.type == FBX_CMD_SET_POLICY)
		fbxi_policy_applied(e, cc, dh.device);
	if (offline)
		mark_offline(e, cc->c.org, dh.device);
	return 1;
nomem:
	fbxi_set_err(e, FBX_ENOMEM);
	return -1;
}

/* handle_results - apply a batch and ACK it. The ACK leaves only after the
 * turn commits; its count says how many entries are recorded (the rest
 * were refused: foreign or unknown). */
static void
handle_results(struct fbx_engine *e, struct gw *g, struct fbx_gw_msg *m)
{
	struct fbx_eng_msg ack;
	uint32_t ok = 0;
	uint64_t forged = e->forged_results;

	for (size_t i = 0; i < m->u.results.n && i < PREFETCH_AHEAD; i++)
		fbxi_dmap_prefetch(&g->inflight, m->u.results.r[i].delivery_id);
	for (size_t i = 0; i < m->u.results.n && fbxi_err(e) == FBX_OK; i++) {
		int rc;

		if (i + PREFETCH_AHEAD < m->u.results.n)
			fbxi_dmap_prefetch(&g->inflight,
			    m->u.results.r[i + PREFETCH_AHEAD].delivery_id);
		e->results_in++;
		rc = result_apply(e, g, &m->u.results.r[i]);
		if (rc < 0)
			return;
		if (rc > 0)
			ok++;
		else
			e->ignored_results++;
	}
	if (e->forged_results > forged) {
		/* issue 10: outcomes for another key's deliveries */
		FBX_LOGW("gateway %s (principal %s): %llu results for "
		         "deliveries not sent to this key refused",
		    g->id, g->principal,
		    (unsigned long long)(e->forged_results - forged));
		fbxi_auth_refuse_audit(e, "_auth", g->principal,
		    "gateway.results",
		    "results for deliveries not sent to this key");
	}
	memset(&ack, 0, sizeof(ack));
	ack.kind = FBX_ENG_ACK;
	ack.u.ack.batch_id = m->u.results.batch_id;
	ack.u.ack.count = ok;
	fbxi_gw_send(e, g, &ack);
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

	for (size_t i = 0; i < m->u.checkins.n && fbxi_err(e) == FBX_OK; i++) {
		const struct fbx_checkin *ci = &m->u.checkins.c[i];
		struct fbx_device dev;
		int rc;

		if (!fbxi_gw_serves(g, ci->org)) {
			FBX_LOGW("gateway %s: check-in for organisation %s "
			         "it does not serve, ignored",
			    g->id, ci->org);
			continue;
		}
		/* cluster mode: the owner of the organisation records it
		 * (gateways connect to every node) */
		if (e->cluster && !fbx_store_owns(e->st, ci->org))
			continue;
		rc = fbx_store_dev_get(e->txn, ci->org, ci->device, &dev);
		if (rc == FBX_ENOT_FOUND)
			continue; /* not enrolled: nothing to resume */
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			break;
		}
		if (dev.last_checkin_ms <= 0)
			fbxi_fleet_soon(e); /* a first check-in shows soon */
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
			fbxi_set_err(e, rc);
			break;
		}
		p.n = 0;
		rc = fbx_store_pend_list(
		    e->txn, ci->org, ci->device, pend_cb, &p);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			fbxi_set_err(e, rc);
			break;
		}
		for (size_t j = 0; j < p.n && fbxi_err(e) == FBX_OK; j++) {
			struct cmdc *cc = fbxi_cmd_find(e, FBX_DLV_CMD(p.ids[j]));
			int to;
			if (cc == NULL || cc->expired) {
				/* the expiry sweep owns it; a stale index
				 * entry goes */
				rc = fbx_store_pend_del(
				    e->txn, ci->org, ci->device, p.ids[j]);
				if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
					fbxi_set_err(e, rc);
				continue;
			}
			to = cc->cancelling ? FBX_D_CANCELLED : FBX_D_QUEUED;
			if (to == FBX_D_QUEUED &&
			    fbxi_dlv_withdrawn(e, p.ids[j]) &&
			    (to = withdrawn_to(e, cc, p.ids[j])) < 0)
				break;
			rc = fbxi_dlv_move(e, cc, p.ids[j],
			    FBXI_DMASK(FBX_D_PENDING), to, 0, 0, NULL, NULL);
			if (rc == FBX_ESTATE || rc == FBX_ENOT_FOUND) {
				/* no longer waiting: drop the stale entry */
				rc = fbx_store_pend_del(
				    e->txn, ci->org, ci->device, p.ids[j]);
				if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
					fbxi_set_err(e, rc);
				continue;
			}
			if (rc == FBX_OK && to == FBX_D_QUEUED)
				rc = fbxi_dlv_unwithdraw(e, cc->c.org, p.ids[j]);
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				break;
			}
			if (to == FBX_D_QUEUED &&
			    fbxi_orgq_push(e, cc->q, cc->c.priority, p.ids[j]) !=
			        FBX_OK)
				fbxi_set_err(e, FBX_ENOMEM);
		}
	}
	free(p.ids);
	memset(&ack, 0, sizeof(ack));
	ack.kind = FBX_ENG_ACK;
	ack.u.ack.batch_id = m->u.checkins.batch_id;
	ack.u.ack.count = (uint32_t)m->u.checkins.n;
	fbxi_gw_send(e, g, &ack);
}

void
fbxi_handle_gateway(struct fbx_engine *e, const struct inmsg *in)
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
	g = fbxi_gw_by_rid(e, in->env[0], in->envlen[0]);
	if (g != NULL && !e->o.auth_off && strcmp(g->key, in->key) != 0) {
		/* a peer of another key under the routing id of a session:
		 * the session's own peer is gone (ZeroMQ gives an id to one
		 * connection at a time). It is not that session: nothing it
		 * sends is taken (nor even decoded), and the session ends
		 * now, its deliveries re-queued, so that nothing more is
		 * sent to this peer */
		FBX_LOGW("gateway %s: a message of principal %s under the "
		         "routing id of principal %s's session: refused, the "
		         "session ends",
		    g->id, in->user, g->principal);
		fbxi_auth_refuse_audit(e, "_auth", in->user, "gateway",
		    "routing id of another key's gateway session");
		fbxi_gw_send_raw_error(e, in, FBX_EFORBIDDEN,
		    "this connection's routing id is another key's gateway "
		    "session's");
		fbxi_gw_mark_dead(e, g, "a peer of another key took its "
		                        "routing id");
		return;
	}
	rc = fbx_gw_msg_decode(in->body, in->len, &m, why, sizeof(why));
	if (rc != FBX_OK) {
		FBX_LOGW("gateway %s: bad message: %s: %s",
		    g ? g->id : "(no session)", fbx_errname(rc), why);
		fbxi_gw_send_raw_error(
		    e, in, rc, why[0] ? why : fbx_strerror(rc));
		return;
	}
	if (fbxi_auth_gateway(e, in, g != NULL, &m, why, sizeof(why)) !=
	    FBX_OK) {
		/* the key may not do this (issue 10): a session of a key
		 * that was revoked or rotated ends here */
		fbxi_gw_send_raw_error(e, in, FBX_EFORBIDDEN, why);
		if (g != NULL && m.kind != FBX_GW_HELLO)
			g->dead = 1;
		goto out;
	}
	if (g == NULL && m.kind != FBX_GW_HELLO) {
		if (m.kind != FBX_GW_BYE)
			fbxi_gw_send_raw_error(e, in, FBX_EPROTOCOL,
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
	case FBX_GW_CHECKINS:
		/* batch id 0 is what a heartbeat's ACK carries: a batch
		 * numbered 0 could be taken as ACKed by it */
		if ((m.kind == FBX_GW_RESULTS ? m.u.results.batch_id
		                               : m.u.checkins.batch_id) == 0) {
			FBX_LOGW("gateway %s: batch with id 0 refused", g->id);
			fbxi_gw_send_raw_error(e, in, FBX_EPROTOCOL,
			    "batch_id 0 is reserved (heartbeat ACKs carry it); "
			    "number batches from 1");
			break;
		}
		if (m.kind == FBX_GW_RESULTS)
			handle_results(e, g, &m);
		else
			handle_checkins(e, g, &m);
		break;
	case FBX_GW_HEARTBEAT: {
		/* answer, so a gateway can tell a live engine from a dead
		 * one without traffic */
		struct fbx_eng_msg ack;
		memset(&ack, 0, sizeof(ack));
		ack.kind = FBX_ENG_ACK;
		fbxi_gw_send(e, g, &ack);
		break;
	}
	case FBX_GW_BYE:
		FBX_LOGI("gateway %s leaves: %s", g->id, m.u.bye.reason);
		g->dead = 1;
		break;
	default:
		fbxi_gw_send_raw_error(e, in, FBX_EPROTOCOL, "unknown message");
	}
out:
	fbx_gw_msg_free(&m);
}
