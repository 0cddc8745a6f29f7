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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "certs.h"
#include "delivery.h"
#include "fleet.h"
#include "outcomes.h"
#include "engine_int.h"
#include "io_zmq.h"
#include "auth.h"
#include "syncer.h"

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


/* eng_clock - the engine's clock: the system's unless a test gave one.
 * monotonic: timeouts and liveness; else wall time, what is journaled. */
static int64_t
eng_clock(const struct fbx_engine *e, int monotonic)
{
	if (e->o.clock != NULL)
		return e->o.clock(e->o.clock_arg, monotonic);
	return monotonic ? fbxi_mono_ms() : now_ms();
}

/* ----------------------------------------------------- org queues (FIFO) */

/* ------------------------------------------------------- command cache */

/* ------------------------------------------------------------- outputs */

static void
out_discard(struct fbx_engine *e)
{
	struct outmsg *m = e->ohead, *n;

	for (; m != NULL; m = n) {
		n = m->next;
		free(m->buf);
		free(m->ids);
		free(m);
	}
	e->ohead = e->otail = NULL;
	fbxi_outq_discard(e); /* the turn's outcome counts go with it */
}

static void gw_mark_dead(struct fbx_engine *e, struct gw *g, const char *why);

/* unsent_add - remember deliveries whose message did not leave. */
static int
unsent_add(struct fbx_engine *e, const uint64_t *ids, size_t n)
{
	if (e->nunsent + n > e->unsentcap) {
		size_t ncap = e->unsentcap ? e->unsentcap : 1024;
		uint64_t *nu;
		while (ncap < e->nunsent + n)
			ncap *= 2;
		nu = realloc(e->unsent, ncap * sizeof(*nu));
		if (nu == NULL)
			return FBX_ENOMEM;
		e->unsent = nu;
		e->unsentcap = ncap;
	}
	if (n > 0)
		memcpy(e->unsent + e->nunsent, ids, n * sizeof(*ids));
	e->nunsent += n;
	return FBX_OK;
}

/* out_send - send one queued output. */
static void
out_send(struct fbx_engine *e, struct outmsg *m)
{
	int rc;

	if (m->to_gw == OUT_EVENT) {
		if (m->len > 0) {
			rc = e->io_ops->send(e->io, FBX_IO_EVENTS, 1, m->envlen,
			    (const uint8_t(*)[RID_MAX])m->env, m->buf, m->len);
			if (rc != FBX_OK)
				FBX_LOGW("event not published: %s",
				    fbx_strerror(rc));
		}
		/* published for subscribers; the operator's alert command is
		 * for alarms, not for every release */
		if (m->ev.kind != FBX_EV_COMMAND_SETTLED)
			fbxi_run_alert(e, &m->ev);
		return;
	}
	if (m->to_gw == OUT_GW && (m->gw == NULL || m->gw->dead))
		return;
	if (m->to_gw == OUT_GW && m->nids > 0 && e->lease_stale) {
		/* cluster mode: the committed turn proved ownership, but the
		 * leases may have run out since (a stall); another node may
		 * have taken over and sent these again. Not sent: they are
		 * journaled back to the queue next turn, which is fenced if
		 * they are no longer this node's */
		if (unsent_add(e, m->ids, m->nids) == FBX_OK)
			return;
		gw_mark_dead(e, m->gw, "out of memory for deliveries held back");
		return;
	}
	rc = e->io_ops->send(e->io, m->to_gw ? FBX_IO_GATEWAY : FBX_IO_CONSOLE,
	    m->nenv, m->envlen, (const uint8_t(*)[RID_MAX])m->env, m->buf,
	    m->len);
	if (rc == FBX_OK && m->welcome && m->gw != NULL)
		m->gw->welcomed = 1;
	if (rc != FBX_OK) {
		if (m->to_gw == OUT_GW && rc == FBX_EBUSY &&
		    unsent_add(e, m->ids, m->nids) == FBX_OK) {
			if (m->nids > 0)
				FBX_LOGW("gateway %s: send queue full, %zu "
				         "deliveries back to the queue",
				    m->gw->id, m->nids);
		} else if (m->to_gw == OUT_GW) {
			gw_mark_dead(e, m->gw,
			    rc == FBX_EUNREACHABLE
			        ? "the gateway is gone (no route to its "
			          "connection)"
			        : fbx_strerror(rc));
		} else {
			FBX_LOGD("console reply dropped: %s", fbx_strerror(rc));
		}
	}
}

/* out_flush - send what the committed turn queued: the urgent DELIVERIES
 * (small commands) first, so they are ahead of the turn's bulk ones in
 * each gateway's pipe, then everything else in the order queued. */
static void
out_flush(struct fbx_engine *e)
{
	struct outmsg *m, *n;

	/* a quarter lease of margin for the time the sends take */
	e->lease_stale = e->cluster &&
	    fbx_store_lease_left_ms(e->st) <
	        (int64_t)(e->o.lease_ms ? e->o.lease_ms : 10000) / 4;
	if (e->lease_stale)
		FBX_LOGW("cluster: leases not renewed for most of a lease: "
		         "this turn's deliveries are held back and queued again");
	for (m = e->ohead; m != NULL; m = m->next) {
		if (m->urgent)
			out_send(e, m);
	}
	for (m = e->ohead; m != NULL; m = n) {
		n = m->next;
		if (!m->urgent)
			out_send(e, m);
		free(m->buf);
		free(m->ids);
		free(m);
	}
	e->ohead = e->otail = NULL;
}

/* ack_latency - the submits of a turn are acknowledged now. */
static void
ack_latency(struct fbx_engine *e, uint32_t submits, int64_t t_read_us)
{
	uint64_t lat;

	if (submits == 0)
		return;
	lat = (uint64_t)(mono_us() - t_read_us);
	e->m_ack.n[fbx_metrics_bucket(lat)] += submits;
	e->m_ack.sum_us += lat * submits;
}

static void held_release(struct fbx_engine *e);
static int64_t retry_delay(uint32_t streak);

/* out_hold_nomem - no memory to hold the turn's outputs: wait for its
 * sync here, send what was held before it and then them; if the sync
 * does not come, drop them, and end the sessions their deliveries were
 * for (their deliveries are queued again, as for a session that died). */
static void
out_hold_nomem(struct fbx_engine *e, uint64_t ticket)
{
	struct outmsg *head = e->ohead, *tail = e->otail;

	if (e->syncer != NULL) {
		fbxi_syncer_ask(e->syncer, ticket);
		(void)fbxi_syncer_wait(e->syncer, ticket, 60000);
	}
	e->ohead = e->otail = NULL;
	held_release(e); /* releases up to what is durable */
	e->ohead = head;
	e->otail = tail;
	if (e->nheld == 0 && e->syncer != NULL &&
	    fbxi_syncer_wait(e->syncer, ticket, 0)) {
		out_flush(e);
		ack_latency(e, e->turn_submits, e->t_read_us);
		return;
	}
	FBX_LOGE("outputs of commit %llu dropped: not made durable and no "
	         "memory to hold them",
	    (unsigned long long)ticket);
	for (struct outmsg *m = e->ohead; m != NULL; m = m->next)
		if (m->to_gw == OUT_GW && m->gw != NULL && m->nids > 0)
			gw_mark_dead(e, m->gw, "its deliveries could not be "
			                       "held for their sync");
	out_discard(e);
}

/* out_hold - the turn committed as ticket: its outputs wait until the
 * syncer made that commit durable (held_release). */
static void
out_hold(struct fbx_engine *e, uint64_t ticket)
{
	struct held_out *h;

	/* a turn that tells nothing needs no sync of its own: the next
	 * sync covers its commit */
	if (e->ohead == NULL && !e->events_reset_due)
		return;
	if (e->nheld == e->heldcap) {
		size_t ncap = e->heldcap ? e->heldcap * 2 : 16;
		struct held_out *nh = realloc(e->held, ncap * sizeof(*nh));
		if (nh == NULL) {
			out_hold_nomem(e, ticket);
			return;
		}
		e->held = nh;
		e->heldcap = ncap;
	}
	h = &e->held[e->nheld++];
	h->head = e->ohead;
	h->tail = e->otail;
	h->ticket = ticket;
	h->events_reset = e->events_reset_due;
	h->submits = e->turn_submits;
	h->t_read_us = e->t_read_us;
	e->events_reset_due = 0;
	e->ohead = e->otail = NULL;
}

/* out_leave - outputs of a turn that committed nothing (reads and
 * refusals on a degraded store): they leave now, also ahead of held
 * ones, which may wait for a disk that does not come back; they
 * acknowledge nothing (a read may show a change whose own reply is still
 * held for its sync). */
static void
out_leave(struct fbx_engine *e)
{
	out_flush(e);
}

/* held_release - send the held outputs whose commit is durable now, in
 * commit order. Between turns only (the turn's own list is empty). */
static void
held_release(struct fbx_engine *e)
{
	uint64_t done, upto = 0;
	size_t k = 0;
	int failed = FBX_OK;

	if (e->syncer == NULL)
		return;
	done = fbxi_syncer_done(e->syncer, e->commit_ticket, &failed, &upto);
	if (failed != FBX_OK) {
		/* never retried for the same commits (syncer.h): every
		 * commit so far waits for a later one's sync; meanwhile
		 * writes are refused, as after a failed turn, with backoff,
		 * so outputs do not pile up while the disk fails */
		e->syncs_failed++;
		e->sync_fail_streak++;
		e->sync_cover = e->commit_ticket;
		e->force_commit = 1;
		e->degraded = 1;
		e->degraded_err = failed;
		e->retry_at =
		    eng_clock(e, 1) + retry_delay(e->sync_fail_streak);
		FBX_LOGE("store sync failed: %s; the replies and deliveries "
		         "of commits up to %llu wait for a later commit's "
		         "sync; writes again in %lld ms",
		    fbx_strerror(failed), (unsigned long long)e->sync_cover,
		    (long long)retry_delay(e->sync_fail_streak));
	} else if (e->sync_fail_streak > 0 && done > e->sync_cover) {
		FBX_LOGI("store syncs work again after %u failed",
		    e->sync_fail_streak);
		e->sync_fail_streak = 0;
	}
	while (k < e->nheld && e->held[k].ticket <= done) {
		struct held_out *h = &e->held[k++];
		e->ohead = h->head;
		e->otail = h->tail;
		out_flush(e);
		ack_latency(e, h->submits, h->t_read_us);
		if (h->events_reset && e->io_ops->events_reset != NULL)
			e->io_ops->events_reset(e->io);
	}
	if (k > 0) {
		memmove(e->held, e->held + k,
		    (e->nheld - k) * sizeof(*e->held));
		e->nheld -= k;
	}
}

/* held_forget_gw - a session is freed: its held messages go nowhere
 * (as for one that left in the turn; its deliveries were re-queued). */
static void
held_forget_gw(struct fbx_engine *e, const struct gw *g)
{
	for (size_t i = 0; i < e->nheld; i++)
		for (struct outmsg *m = e->held[i].head; m != NULL;
		    m = m->next)
			if (m->gw == g)
				m->gw = NULL;
}

/* held_discard - drop every held output (close). */
static void
held_discard(struct fbx_engine *e)
{
	for (size_t i = 0; i < e->nheld; i++) {
		struct outmsg *m = e->held[i].head, *n;
		for (; m != NULL; m = n) {
			n = m->next;
			free(m->buf);
			free(m->ids);
			free(m);
		}
	}
	e->nheld = 0;
	free(e->held);
	e->held = NULL;
	e->heldcap = 0;
}

static void
gw_send(struct fbx_engine *e, struct gw *g, const struct fbx_eng_msg *m)
{
	struct outmsg *o = fbxi_out_new(e);

	if (o == NULL) {
		/* deliveries journaled SENT must leave, or the turn fails */
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	o->to_gw = OUT_GW;
	o->gw = g;
	o->welcome = m->kind == FBX_ENG_WELCOME;
	o->urgent = m->kind == FBX_ENG_DELIVERIES && m->u.deliveries.urgent;
	if (m->kind == FBX_ENG_DELIVERIES && m->u.deliveries.n > 0) {
		/* kept so that a message the send queue refuses puts its
		 * deliveries back in the queue, and only those */
		o->ids = malloc(m->u.deliveries.n * sizeof(*o->ids));
		if (o->ids == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		for (size_t i = 0; i < m->u.deliveries.n; i++)
			o->ids[i] = m->u.deliveries.d[i].delivery_id;
		o->nids = m->u.deliveries.n;
	}
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
			fbxi_set_err(e, rc == FBX_ENOMEM ? FBX_ENOMEM : FBX_ETOOBIG);
			o->len = 0;
		}
	}
}

static void
gw_send_raw_error(struct fbx_engine *e, const struct inmsg *in, int err,
    const char *msg)
{
	struct fbx_eng_msg m;
	struct outmsg *o = fbxi_out_new(e);

	if (o == NULL)
		return;
	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_ERROR;
	m.u.error.err = err;
	snprintf(m.u.error.msg, sizeof(m.u.error.msg), "%s", msg);
	/* to a peer without a session: sent on the gateway socket by its
	 * envelope, not through a session */
	o->to_gw = OUT_GW_RAW;
	o->gw = NULL;
	fbxi_out_copy_env(o, in);
	if (fbx_eng_msg_encode(&m, &o->buf, &o->len) != FBX_OK)
		o->len = 0;
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

/* ---- session in-flight maps, with the turn's undo log. A failed turn
 * restores them as they were, so a gateway keeps what it holds and its
 * results are recognised when they come again. */

/* requeue_one - a delivery no gateway holds any more (in a state of
 * `from`) goes back to its queue to be sent again with its id, or ends
 * CANCELLED when its rollout was cancelled. @return 1 if queued, 0 if
 * there was nothing to do, -1 on an error (latched). */
static int
requeue_one(struct fbx_engine *e, struct cmdc *cc, uint64_t id, unsigned from)
{
	int rc, to;

	if (cc == NULL || cc->expired)
		return 0; /* the expiry sweep owns it */
	to = cc->cancelling ? FBX_D_CANCELLED : FBX_D_QUEUED;
	rc = fbxi_dlv_move(e, cc, id, from, to, 0, 0, NULL, NULL);
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

/* gw_requeue - put every delivery a gateway holds back in its queue,
 * journaled as QUEUED, to be sent again with the same delivery id. */
static void
gw_requeue(struct fbx_engine *e, struct gw *g)
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
		r = requeue_one(
		    e, fbxi_cmd_find(e, FBX_DLV_CMD(id)), id, FBXI_DHELD);
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
	fbxi_dmap_fini(&g->inflight);
	free(g->orgs);
	for (int k = 0; k < 2; k++) {
		free(g->b[k].ob);
		free(g->b[k].obdev);
	}
	free(g);
}

/* gw_reap - requeue and drop dead sessions (inside the turn's txn). A
 * gateway is silent only if its input was drained since: a slow turn
 * leaves its messages unread, which is not its fault. */
static void
gw_reap(struct fbx_engine *e)
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
		gw_requeue(e, g);
		*pp = g->next;
		if (e->gw_rr == g)
			e->gw_rr = NULL;
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

static void
gw_free_graveyard(struct fbx_engine *e)
{
	struct gw *g, *n;

	for (g = e->graveyard; g != NULL; g = n) {
		held_forget_gw(e, g);
		n = g->next;
		gw_free(g);
	}
	e->graveyard = NULL;
}

/* ------------------------------------------------------------ expansion */







/* ----------------------------------------------------------- retention */

/* prune_markers - the rollback markers of a pruned command's deliveries. */
static int
prune_markers(struct fbx_engine *e, const struct fbx_command *c)
{
	char prefix[FBX_KV_KEY_MAX];

	snprintf(prefix, sizeof(prefix), "comp/%s/%llu/", c->org,
	    (unsigned long long)c->id);
	return fbxi_kv_delete_prefix(e, prefix);
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
		fbxi_set_err(e, rc);
}

/* prune_step - delete journal records older than the retention, oldest
 * first, in bounded slices: finished commands (done or discarded) with
 * their deliveries and rollback markers. Kept: anything not finished
 * (held, paused rollouts, open deliveries) and the automatic commands of
 * a reason whose breaker is open (an incident may still be rolled
 * back). The audit log is never pruned. */
enum { PRUNE_GONE, PRUNE_KEPT, PRUNE_YOUNG, PRUNE_PARTIAL, PRUNE_ERR };
#define PKEEP_GONE (UINT64_C(1) << 63)

/* prune_settle - after the turn: a commit drops what was pruned from the
 * kept list; a failure puts the retention cursor and list back. */
static void
prune_settle(struct fbx_engine *e, int committed)
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
	rc = prune_markers(e, &c);
	if (rc == FBX_OK)
		rc = fbx_store_cmd_delete(e->txn, c.id);
	fbx_command_clear(&c);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return PRUNE_ERR;
	}
	return PRUNE_GONE;
}

static void
prune_step(struct fbx_engine *e)
{
	int64_t cutoff = e->now - (int64_t)e->o.retention_s * 1000;
	uint32_t budget = 50000, looked = 0;
	uint64_t id = e->prune_next;
	size_t nk = e->npkeep;

	if (e->o.retention_s == 0)
		return;
	/* undone by prune_settle() if the turn fails */
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
		/* a gateway that reconnected under a new routing id: the
		 * old session must have gone quiet first. Two live peers
		 * under one id would take each other's deliveries. */
		for (struct gw *o = e->gws; o != NULL; o = o->next) {
			if (o->dead ||
			    strcmp(o->id, m->u.hello.gateway_id) != 0)
				continue;
			if (strcmp(o->principal, in->user) != 0) {
				/* a gateway id belongs to the key that holds
				 * it: another key cannot take its session */
				FBX_LOGW("gateway %s: HELLO by principal %s "
				         "refused, the id is held by %s",
				    o->id, in->user, o->principal);
				fbxi_auth_refuse_audit(e, "_auth", in->user,
				    "gateway.hello",
				    "gateway id held by another principal");
				gw_send_raw_error(e, in, FBX_EFORBIDDEN,
				    "gateway id in use by another principal");
				return;
			}
			if (e->mono - o->last_seen <
			    2 * (int64_t)e->o.heartbeat_ms) {
				FBX_LOGW("gateway %s: HELLO from a second peer "
				         "refused, the id is in use by a live "
				         "session",
				    o->id);
				gw_send_raw_error(e, in, FBX_EBUSY,
				    "gateway id in use by a live session; "
				    "retry after its heartbeat timeout");
				return;
			}
			gw_mark_dead(e, o, "replaced by a new session");
		}
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
	gw_send(e, g, &w);
}

static void
mark_offline(struct fbx_engine *e, const char *org, const char *device)
{
	int rc = fbx_store_dev_set_online(e->txn, org, device, 0);

	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		fbxi_set_err(e, rc);
}

/* how far ahead a batch loop loads the in-flight map slots it will use */
#define PREFETCH_AHEAD 8

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

/* result_apply - record one result of gateway g. A result for a delivery
 * g's session does not hold (g reconnected, or the delivery was requeued
 * after a failed turn) is still an outcome the device really had: its
 * success or failure is recorded if the delivery is still open, and it is
 * taken from whichever session holds it now. @return 1 if the outcome is
 * recorded (now or before), 0 if refused, -1 on a store error (latched). */
static int
result_apply(struct fbx_engine *e, struct gw *g, const struct fbx_result_rec *r)
{
	struct fbx_delivery d;
	struct fbx_dlv_head dh;
	struct cmdc *cc;
	struct gw *h = g;
	uint64_t v = 0;
	unsigned from;
	int to = result_state(r->status), old = 0, rc, held;

	if (to == 0)
		return 0;
	held = fbxi_dmap_get(&g->inflight, r->delivery_id, &v);
	cc = fbxi_cmd_find(e, FBX_DLV_CMD(r->delivery_id));
	if (!held) {
		if (cc == NULL) {
			/* its command is finished (recorded before) or never
			 * was: only a stored final outcome counts */
			rc = fbx_store_dlv_get(e->txn, r->delivery_id, &d);
			if (rc == FBX_OK)
				return fbx_dstate_terminal(d.state) ? 1 : 0;
			if (rc != FBX_ENOT_FOUND && rc != FBX_ECORRUPT) {
				fbxi_set_err(e, rc);
				return -1;
			}
			return 0;
		}
		if (!gw_serves(g, cc->c.org))
			return 0;
		if (to != FBX_D_SUCCEEDED && to != FBX_D_FAILED)
			return 0; /* progress of a delivery sent again since:
			           * nothing recorded */
		h = fbxi_gw_holder(e, r->delivery_id, &v);
		if (h != NULL && strcmp(h->principal, g->principal) != 0) {
			/* another key's delivery: an outcome only the
			 * gateway that was sent it may report (issue 10) */
			e->forged_results++;
			return 0;
		}
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
	if (to == FBX_D_PENDING && cc->cancelling)
		to = FBX_D_CANCELLED; /* offline, and no longer wanted */
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
	if (to == FBX_D_PENDING)
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
		         "deliveries sent to another key refused",
		    g->id, g->principal,
		    (unsigned long long)(e->forged_results - forged));
		fbxi_auth_refuse_audit(e, "_auth", g->principal,
		    "gateway.results",
		    "results for deliveries sent to another key");
	}
	memset(&ack, 0, sizeof(ack));
	ack.kind = FBX_ENG_ACK;
	ack.u.ack.batch_id = m->u.results.batch_id;
	ack.u.ack.count = ok;
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

	for (size_t i = 0; i < m->u.checkins.n && fbxi_err(e) == FBX_OK; i++) {
		const struct fbx_checkin *ci = &m->u.checkins.c[i];
		struct fbx_device dev;
		int rc;

		if (!gw_serves(g, ci->org)) {
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
	rc = fbx_gw_msg_decode(in->body, in->len, &m, why, sizeof(why));
	if (rc != FBX_OK) {
		FBX_LOGW("gateway %s: bad message: %s: %s",
		    g ? g->id : "(no session)", fbx_errname(rc), why);
		gw_send_raw_error(e, in, rc, why[0] ? why : fbx_strerror(rc));
		return;
	}
	if (fbxi_auth_gateway(e, in, g != NULL, &m, why, sizeof(why)) !=
	    FBX_OK) {
		/* the key may not do this (issue 10): a session of a key
		 * that was revoked or rotated ends here */
		gw_send_raw_error(e, in, FBX_EFORBIDDEN, why);
		if (g != NULL && m.kind != FBX_GW_HELLO)
			g->dead = 1;
		goto out;
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
	case FBX_GW_CHECKINS:
		/* batch id 0 is what a heartbeat's ACK carries: a batch
		 * numbered 0 could be taken as ACKed by it */
		if ((m.kind == FBX_GW_RESULTS ? m.u.results.batch_id
		                               : m.u.checkins.batch_id) == 0) {
			FBX_LOGW("gateway %s: batch with id 0 refused", g->id);
			gw_send_raw_error(e, in, FBX_EPROTOCOL,
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

/* gw_flush_batch - hand g's batches of this turn to the output: the
 * urgent one (small commands) is marked so, and out_flush sends it
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
	gw_send(e, g, &m);
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
		while (progress && total < e->dispatch_max &&
		    fbxi_err(e) == FBX_OK) {
			progress = 0;
			for (struct gw *g = e->gws; g != NULL; g = g->next) {
				/* nothing to a session before its WELCOME
				 * has left (a HELLO of a failed turn) */
				if (g->dead || !g->welcomed ||
				    g->unanswered >= g->window ||
				    g->ubytes >= GW_BYTES_INFLIGHT_MAX)
					continue;
				for (size_t k = 0; k < e->rrlen &&
				    g->unanswered < g->window &&
				    total < e->dispatch_max;
				    k++) {
					struct orgq *q =
					    e->rr[(e->rrpos + k) % e->rrlen];
					struct ring *r = &q->r[prio];
					uint32_t want, allow, n = 0;
					if (r->len == 0 || !gw_serves(g, q->org))
						continue;
					fbxi_orgq_load_rate(e, q);
					want = QUANTUM;
					if (want > g->window - g->unanswered)
						want = g->window - g->unanswered;
					if (want > r->len)
						want = (uint32_t)r->len;
					allow = org_allow(e, q, want);
					while (n < allow && r->len > 0 &&
					    g->ubytes < GW_BYTES_INFLIGHT_MAX &&
					    fbxi_err(e) == FBX_OK) {
						if (r->len > PREFETCH_AHEAD)
							fbxi_dmap_prefetch(
							    &g->inflight,
							    r->v[(r->head +
							             PREFETCH_AHEAD) %
							        r->cap]);
						q->len--;
						if (send_one(e, g, fbxi_ring_pop(r)))
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
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		gw_flush_batch(e, g, 1);
		gw_flush_batch(e, g, 0);
	}
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
	if (e->ndef > 0)
		return 1; /* input a short turn left for the next one */
	if (e->draining)
		return 0;
	if ((e->xhead != NULL && !e->xidle) || e->nrq > 0 || e->nunsent > 0)
		return 1;
	if (e->rrlen == 0 || e->stalled)
		return 0;
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (!g->dead && g->welcomed && g->unanswered < g->window &&
		    g->ubytes < GW_BYTES_INFLIGHT_MAX)
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

/* sweep_step - move the open deliveries of commands past their TTL to
 * EXPIRED, and the unsent ones of cancelled rollouts to CANCELLED, in
 * bounded slices. Held commands do not expire: they wait for an
 * operator. */
static void
sweep_step(struct fbx_engine *e)
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

/* flush_commands - journal every command whose state or cursor moved
 * in this turn (the dirty list); note the ones that ended for reap_done.
 */
static void
flush_commands(struct fbx_engine *e)
{
	struct cmdc *cc, *next;

	/* only what this turn changed; the ones that ended are freed after
	 * the commit (reap_done) */
	for (cc = e->dirty; cc != NULL; cc = next) {
		next = cc->dnext;
		cc->dnext = NULL;
		if (!cc->dirty)
			continue;
		cc->dirty = 0;
		if (fbxi_err(e) != FBX_OK)
			continue; /* the turn is lost: memory is rebuilt */
		int rc = fbx_store_cmd_put(e->txn, &cc->c);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			continue;
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

/* reap_done - after the commit: free the commands that ended in it */
static void
reap_done(struct fbx_engine *e)
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

/* ------------------------------------------------------------ recovery */

/* rebuild_dlv_cb - recount one delivery of the command being loaded and
 * queue it if open. One left SENT/ACCEPTED is either held by a live
 * session (kept there: that gateway answers it) or was lost with a
 * process or session (journaled QUEUED by the next turns, rq_step). */
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

/* clear_memory - forget the command cache and the queues. Gateway
 * sessions stay: what they hold is matched against the store again. */
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
	fbxi_settle_clear(e);
	fbxi_supersede_clear(e);
	fbxi_idmap_clear(&e->rollouts);
	fbxi_idmap_clear(&e->sweeping);
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

/* rebuild - make memory match the store: load every command not DONE,
 * recount its deliveries from their records and queue the open ones.
 * Reads only, so it also works on a full disk; deliveries a lost process
 * or session left SENT/ACCEPTED are journaled QUEUED by the next turns.
 * Used at start-up and after a failed turn. */
static int
rebuild(struct fbx_engine *e)
{
	struct rebuild_ctx r;
	size_t ncmd;
	int rc;

	memset(&r, 0, sizeof(r));
	r.e = e;
	clear_memory(e);
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
		rc = fbx_store_cmd_active(r.txn, rebuild_cmd_cb, &r);
	fbx_txn_abort(r.txn);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = r.err;
	if (rc != FBX_OK) {
		free(r.requeue);
		clear_memory(e);
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
	return FBX_OK;
}

/* rq_step - journal QUEUED (and queue) a slice of the deliveries a lost
 * process or session left in a gateway's hands. */
static void
rq_step(struct fbx_engine *e)
{
	size_t end = e->rqpos + SWEEP_MAX;

	if (end > e->nrq)
		end = e->nrq;
	for (; e->rqpos < end && fbxi_err(e) == FBX_OK; e->rqpos++) {
		uint64_t id = e->rq[e->rqpos];
		if (requeue_one(e, fbxi_cmd_find(e, FBX_DLV_CMD(id)), id,
		        FBXI_DHELD) < 0)
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

/* unsent_step - deliveries journaled SENT whose message could not be
 * queued to the gateway (its send queue was full) go back to QUEUED. */
static void
unsent_step(struct fbx_engine *e)
{
	size_t i;

	for (i = 0; i < e->nunsent && fbxi_err(e) == FBX_OK; i++) {
		uint64_t id = e->unsent[i];
		fbxi_gw_drop(e, id);
		if (fbxi_err(e) != FBX_OK ||
		    requeue_one(e, fbxi_cmd_find(e, FBX_DLV_CMD(id)), id,
		        FBXI_DMASK(FBX_D_SENT)) < 0)
			return;
	}
}

/* -------------------------------------------------------------- the loop */

/* close_inputs - release the inputs handled this turn; the rest (a
 * request failed and memory is rebuilt first) are handled next turn,
 * after those a short turn left (keep_deferred), which move to the
 * front of in[] in their order (e->ndef of them). */
static void
close_inputs(struct fbx_engine *e, size_t handled, int keep_deferred)
{
	size_t k = 0;

	if (handled > e->nin)
		handled = e->nin;
	for (size_t i = 0; i < handled; i++) {
		if (keep_deferred && e->indef[i]) {
			e->in[k] = e->in[i];
			e->inerr[k] = e->inerr[i];
			e->indef[k] = 0;
			k++;
		} else {
			e->io_ops->release(e->io, &e->in[i]);
		}
	}
	e->ndef = k;
	if (handled < e->nin) {
		memmove(e->in + k, e->in + handled,
		    (e->nin - handled) * sizeof(*e->in));
		memmove(e->inerr + k, e->inerr + handled,
		    (e->nin - handled) * sizeof(*e->inerr));
		memset(e->indef + k, 0, e->nin - handled);
	}
	e->nin = k + (e->nin - handled);
}

/* read_inputs - take a bounded batch from a channel.
 * @return 1 if the channel was found empty (input drained), else 0. */
static int
read_inputs(struct fbx_engine *e, int chan, size_t max, size_t max_bytes)
{
	size_t n = 0, bytes = 0;

	while (n < max && bytes < max_bytes) {
		size_t dropped = 0;
		int rc;

		if (e->nin == e->incap) {
			size_t ncap = e->incap ? e->incap * 2 : 256;
			struct inmsg *ni = realloc(e->in, ncap * sizeof(*ni));
			int *ne;
			uint8_t *nd;
			if (ni == NULL)
				return 0;
			e->in = ni;
			ne = realloc(e->inerr, ncap * sizeof(*ne));
			if (ne == NULL)
				return 0;
			e->inerr = ne;
			nd = realloc(e->indef, ncap * sizeof(*nd));
			if (nd == NULL)
				return 0;
			e->indef = nd;
			e->incap = ncap;
		}
		rc = e->io_ops->recv(e->io, chan, &e->in[e->nin], &dropped);
		if (rc == 0)
			return 1;
		if (rc == -2)
			return 0; /* cannot take it now: not drained */
		e->inerr[e->nin] = 0;
		e->indef[e->nin] = 0;
		n++;
		if (rc < 0) {
			/* counted, so a flood of them cannot hold the turn */
			bytes += dropped;
			FBX_LOGW("%s: malformed envelope dropped",
			    chan == FBX_IO_GATEWAY ? "gateway" : "console");
			continue;
		}
		bytes += e->in[e->nin].len;
		e->nin++;
	}
	return 0;
}

/* note_seen - a gateway is alive when its message is read, whatever the
 * turn then makes of it. */
static void
note_seen(struct fbx_engine *e)
{
	for (size_t i = 0; i < e->nin; i++) {
		struct gw *g;
		if (e->in[i].chan != FBX_IO_GATEWAY || e->in[i].nenv != 1)
			continue;
		g = gw_by_rid(e, e->in[i].env[0], e->in[i].envlen[0]);
		if (g != NULL)
			g->last_seen = e->mono;
	}
}

static void
fail_console_inputs(struct fbx_engine *e, int rc)
{
	for (size_t i = 0; i < e->nin; i++) {
		struct fbx_console_req req;
		const struct inmsg *in = &e->in[i];
		if (in->chan == FBX_IO_GATEWAY)
			continue;
		if (fbx_console_req_decode(in->body, in->len, &req, NULL, 0) !=
		    FBX_OK) {
			fbxi_console_error(e, in, req.request_id, FBX_CREQ_NONE,
			    rc, "storage failure: %s", fbx_strerror(rc));
			continue;
		}
		fbxi_console_error(e, in, req.request_id, req.kind, rc,
		    "not recorded: storage failure: %s; nothing accepted "
		    "before was lost, retry later",
		    fbx_strerror(rc));
		fbx_console_req_free(&req);
	}
}

/* store_reopen - after an I/O error while writing LMDB's meta page every
 * call fails until the environment is opened again. */
static int
store_reopen(struct fbx_engine *e)
{
	struct fbx_store_opts so;
	fbx_store *st = NULL;
	int rc;

	memset(&so, 0, sizeof(so));
	so.path = e->o.data_dir;
	so.map_size = e->o.map_size;
	so.url = e->o.store_url;
	so.node = e->o.node;
	so.advertise = e->o.advertise != NULL ? e->o.advertise : e->o.console_ep;
	so.lease_ms = e->o.lease_ms;
	so.durability = e->use_syncer ? FBX_DURABLE_NOMETASYNC
	                              : e->o.durability;
	/* the syncer works on the environment: it ends first */
	if (e->syncer != NULL) {
		e->sync_durable = fbxi_syncer_stop(e->syncer, NULL);
		e->syncer = NULL;
	}
	fbx_store_keep_leases(e->st); /* reopened, not shut down */
	fbx_store_close(e->st);
	e->st = NULL;
	rc = fbx_store_open(&so, &st);
	if (rc != FBX_OK)
		return rc;
	e->st = st;
	e->cluster = fbx_store_cluster(st);
	e->next_lease = 0; /* a new session: learn the leases first */
	/* a new syncer starts with the next write turn (syncer_ensure) */
	FBX_LOGW("store %s reopened", e->o.data_dir);
	return FBX_OK;
}

/* syncer_ensure - before a write turn: a syncer for the store as it is
 * now. One started after a reopen trusts no sync of the commits before
 * it: the store was reopened because a write failed, and a write-back
 * error already reported to the old descriptors is not reported to the
 * new one; those commits become durable with a later commit's sync. */
static int
syncer_ensure(struct fbx_engine *e)
{
	int rc;

	if (!e->use_syncer || e->syncer != NULL || e->st == NULL)
		return FBX_OK;
	rc = fbxi_syncer_start(
	    e->st, e->sync_durable, e->commit_ticket, &e->syncer);
	if (rc != FBX_OK)
		return rc;
	if (e->commit_ticket > e->sync_durable)
		e->force_commit = 1;
	return FBX_OK;
}


/* recover - make memory match the store again after a failed turn,
 * reopening the store if it refuses to be read. */
static int
recover(struct fbx_engine *e)
{
	int rc = e->st != NULL ? rebuild(e) : FBX_ESTORAGE;

	if (rc != FBX_OK) {
		FBX_LOGW("rebuild failed (%s); reopening the store",
		    fbx_strerror(rc));
		rc = store_reopen(e);
		if (rc == FBX_OK)
			rc = rebuild(e);
	}
	e->need_rebuild = rc != FBX_OK;
	return rc;
}

/* read_only_turn - the store cannot be written (full disk, failed
 * commits): answer reads from a read transaction, refuse writes with the
 * error, leave gateway input waiting until writes work again. */
static void
read_only_turn(struct fbx_engine *e)
{
	int rc = e->st != NULL ? fbx_txn_begin(e->st, 0, &e->txn)
	                       : FBX_ESTORAGE;

	if (rc != FBX_OK) {
		e->txn = NULL;
		fail_console_inputs(e, e->degraded_err);
	} else {
		e->now = eng_clock(e, 0);
		for (size_t i = 0; i < e->nin; i++)
			if (e->in[i].chan == FBX_IO_CONSOLE)
				fbxi_handle_console(e, &e->in[i]);
		fbx_txn_abort(e->txn);
		e->txn = NULL;
	}
	e->txn_err = FBX_OK;
	out_leave(e);
	close_inputs(e, e->nin, 0);
}

/* retry_delay - backoff after failed turns: 100 ms doubling to 5 s. */
static int64_t
retry_delay(uint32_t streak)
{
	int64_t d = 100;

	while (streak-- > 1 && d < 5000)
		d *= 2;
	return d < 5000 ? d : 5000;
}

struct defer_st {
	int64_t t0;     /* when the turn's handling began (mono us) */
	size_t bulk;    /* gateway bytes handled */
	int deferred;   /* an input was left for the next turn */
	int blocked;    /* one that is not RESULTS: nothing passes it */
};

/* defer_input - in a short turn, whether gateway input `in` waits for
 * the next turn: once GW_BYTES_SHORT of it or SHORT_WORK_US of work is
 * done, big messages wait. Small RESULTS (a gateway answers small
 * commands in their own batch) still pass waiting RESULTS: outcomes of
 * distinct deliveries do not depend on each other's order, and the
 * delivery state machine ignores a stale one for the same delivery. Once
 * a message of another kind waits (a HELLO, CHECKINS, CREDIT, BYE, of
 * any size), nothing passes it: a RESULTS never overtakes its session's
 * HELLO, an OFFLINE outcome never overtakes the check-in before it, a
 * BYE never overtakes its session's results. */
static int
defer_input(const struct inmsg *in, struct defer_st *st)
{
	int kind;

	if (!st->deferred && (st->bulk == 0 ||
	    (st->bulk < GW_BYTES_SHORT && mono_us() - st->t0 < SHORT_WORK_US))) {
		st->bulk += in->len;
		return 0;
	}
	kind = fbx_gw_msg_kind(in->body, in->len);
	if (kind == FBX_GW_RESULTS && in->len <= GW_SMALL_BYTES &&
	    !st->blocked)
		return 0;
	if (!st->deferred && in->len <= GW_SMALL_BYTES)
		return 0; /* nothing waits yet */
	st->deferred = 1;
	if (kind != FBX_GW_RESULTS)
		st->blocked = 1;
	return 1;
}

/* small_waits - whether an organisation with little work (at most
 * URGENT_MAX deliveries queued or in flight, some queued or sent in the
 * last SMALL_WAIT_MS) waits while another has a lot (more than
 * URGENT_MAX): then turns are kept short. A small organisation whose
 * deliveries have been in flight longer (a device slow to answer, for
 * hours) does not keep every turn short. */
static int
small_waits(struct fbx_engine *e)
{
	int big = 0, small = 0;

	for (size_t b = 0; b < sizeof(e->qtab) / sizeof(e->qtab[0]); b++) {
		for (struct orgq *q = e->qtab[b]; q != NULL; q = q->hnext) {
			size_t w = q->inflight + q->len;
			if (w > URGENT_MAX)
				big = 1;
			else if (q->len > 0 ||
			    (q->inflight > 0 &&
			        e->mono - q->sent_mono < SMALL_WAIT_MS))
				small = 1;
			if (big && small)
				return 1;
		}
	}
	return 0;
}

static int
turn(struct fbx_engine *e)
{
	int64_t t0 = 0, t_work = 0, t_commit = 0;
	uint64_t res0 = 0, sent0 = 0;
	int rc = FBX_OK, drained = 0, carried = e->nin > e->ndef, short_turn;
	int duties;

	held_release(e);
	e->mono = eng_clock(e, 1);
	if (e->degraded && e->mono < e->retry_at) {
		/* gateway input stays queued at the socket meanwhile */
		read_inputs(e, FBX_IO_CONSOLE, IN_MSGS_MAX, IN_BYTES_MAX);
		if (e->nin > 0)
			read_only_turn(e);
		return FBX_OK;
	}
	/* gateway results are taken in slices (about 16,000 results) so a
	 * turn stays short and a console request never waits long behind a
	 * big fan-out; console requests are small and read in full, first,
	 * as one waiting makes the turn short. A short turn (also while a
	 * small organisation waits behind a big one) reads as much but
	 * handles less of the bulk: the rest waits at the front of in[] for
	 * the next turn, and hands out fewer deliveries (issue 11) */
	short_turn = small_waits(e);
	if (!carried) {
		size_t nin0 = e->nin;
		e->t_read_us = mono_us();
		read_inputs(e, FBX_IO_CONSOLE, IN_MSGS_MAX, IN_BYTES_MAX);
		if (e->nin > nin0)
			short_turn = 1;
		/* what a short turn left waiting counts against the
		 * gateway budget: the socket keeps pushing back on senders
		 * instead of in[] growing */
		size_t left = 0;
		for (size_t i = 0; i < e->ndef && i < e->nin; i++)
			left += e->in[i].len;
		if (left < GW_BYTES_PER_TURN)
			drained = read_inputs(e, FBX_IO_GATEWAY, IN_MSGS_MAX,
			    GW_BYTES_PER_TURN - left);
	}
	e->short_turn = short_turn;
	e->dispatch_max = short_turn ? DISPATCH_SHORT : DISPATCH_MAX;
	e->mono = eng_clock(e, 1);
	if (drained)
		e->gw_drained = e->mono;
	note_seen(e);
	/* nothing arrived and nothing is due: no transaction at all */
	if (e->nin == 0 && !work_pending(e) && !e->stalled &&
	    !e->degraded && !e->force_commit && e->mono < e->next_tick &&
	    !(e->cluster && e->mono >= e->next_lease))
		return FBX_OK;
	e->next_tick = e->mono + 100;
	t0 = mono_us();
	res0 = e->results_in;
	sent0 = e->dlv_sent;
	e->redos = 0;
	e->in_limit = (size_t)-1;
	for (int attempt = 0; attempt < COMMIT_RETRIES; attempt++) {
		size_t need = (64u << 20);
		int did_unsent = 0;
		struct defer_st dst;
		e->now = eng_clock(e, 0);
		e->mono = eng_clock(e, 1);
		e->txn_err = FBX_OK;
		e->req_err = FBX_OK;
		e->in_request = 0;
		e->redo = 0;
		fbxi_audit_drop(e); /* of an attempt aborted */
		e->nundo = 0;
		e->nhandled = 0;
		e->turn_submits = 0;
		e->xbudget = e->o.expand_chunk;
		e->degraded = 0;
		/* a tick that fails (the database away) does not fail the
		 * turn by itself: the fence keeps a turn from committing
		 * for an organisation this node may have lost meanwhile */
		if (e->cluster && e->mono >= e->next_lease)
			(void)fbxi_cluster_tick(e);
		rc = e->need_rebuild ? recover(e) : FBX_OK;
		if (rc == FBX_OK)
			rc = syncer_ensure(e);
		if (rc != FBX_OK)
			goto failed;
		for (size_t i = 0; i < e->nin; i++)
			need += e->in[i].len * 4;
		rc = fbx_store_reserve(e->st, need);
		if (rc == FBX_OK)
			rc = fbx_txn_begin(e->st, 1, &e->txn);
		if (rc == FBX_OK && e->cluster)
			rc = fbxi_cluster_heads(e);
		if (rc != FBX_OK) {
			if (e->txn != NULL)
				fbx_txn_abort(e->txn);
			e->txn = NULL;
			goto failed;
		}
		if (e->nunsent > 0) {
			unsent_step(e);
			did_unsent = 1;
		}
		if (e->force_commit) {
			/* a sync failed: this commit's synced meta page is
			 * what makes the held turns durable (syncer.h) */
			uint8_t b[8];
			for (int i = 0; i < 8; i++)
				b[i] = (uint8_t)(e->syncs_failed >> (8 * i));
			rc = fbx_store_kv_put(e->txn, "engine/sync_failures", b,
			    sizeof(b));
			if (rc != FBX_OK)
				fbxi_set_err(e, rc);
		}
		memset(&dst, 0, sizeof(dst));
		dst.t0 = mono_us();
		for (size_t i = 0; i < e->nin && i < e->in_limit &&
		    fbxi_err(e) == FBX_OK && !e->redo;
		    i++) {
			e->indef[i] = 0;
			if (e->in[i].chan == FBX_IO_GATEWAY && e->short_turn &&
			    defer_input(&e->in[i], &dst))
				e->indef[i] = 1;
			else if (e->in[i].chan == FBX_IO_GATEWAY)
				handle_gateway(e, &e->in[i]);
			else
				fbxi_handle_console(e, &e->in[i]);
			e->nhandled = i + 1;
		}
		if (fbxi_err(e) == FBX_OK && !e->redo)
			gw_reap(e);
		if (e->cluster && e->check_resets && !e->redo &&
		    fbxi_err(e) == FBX_OK) {
			fbxi_cluster_resets(e);
			e->check_resets = 0;
		}
		if (!e->draining && !e->redo && fbxi_err(e) == FBX_OK) {
			if (e->nrq > 0)
				rq_step(e);
			fbxi_settle_step(e);
			fbxi_expand_step(e);
			fbxi_rollout_step(e);
			dispatch_step(e);
		}
		if (fbxi_err(e) == FBX_OK && !e->redo &&
		    e->now >= e->next_sweep) {
			sweep_step(e);
			e->next_sweep = e->now + 500;
		}
		/* cluster mode: what spans organisations (retention, the
		 * audit log, approvals, certificates, fleet health) is the
		 * work of the node holding the duties lease ("") */
		duties = !e->cluster || fbx_store_owns(e->st, "");
		if (fbxi_err(e) == FBX_OK && !e->redo && duties &&
		    e->o.retention_s > 0 && e->now >= e->next_prune) {
			prune_step(e);
			e->next_prune = e->now + 1000;
		}
		if (fbxi_err(e) == FBX_OK && !e->redo && duties &&
		    e->o.audit_retention_days > 0 &&
		    e->now >= e->next_audit_prune) {
			uint32_t n = 0;
			/* an archive that cannot be written prunes nothing
			 * and does not fail the turn; store errors latch */
			(void)fbxi_audit_prune_slice(e,
			    e->now -
			        (int64_t)e->o.audit_retention_days * 86400000,
			    FBX_AUDIT_PRUNE_SLICE, &n);
			e->next_audit_prune = e->now + 60000;
		}
		if (fbxi_err(e) == FBX_OK && !e->redo && duties &&
		    e->now >= e->next_approval_prune) {
			prune_approvals(e);
			e->next_approval_prune = e->now + 60000;
		}
		/* registered certificates: alerts and trips near expiry */
		if (fbxi_err(e) == FBX_OK && !e->redo && duties &&
		    e->mono >= e->next_cert_check) {
			fbxi_cert_step(e);
			e->next_cert_check = e->mono + 1000;
		}
		/* fleet check-in health: the next slice of the registry */
		if (fbxi_err(e) == FBX_OK && !e->redo && !e->draining &&
		    duties)
			fbxi_fleet_step(e);

		if (e->redo && e->txn_err == FBX_OK) {
			/* a request that changes state failed on its own:
			 * undo the whole turn and do it again with that
			 * request answered in advance, so that nothing it
			 * changed in memory is journaled by the rest */
			fbx_txn_abort(e->txn);
			e->txn = NULL;
			out_discard(e);
			fbxi_gw_undo_apply(e);
			prune_settle(e, 0);
			gw_free_graveyard(e);
			rc = recover(e);
			if (rc != FBX_OK)
				goto failed;
			if (++e->redos >= REDO_MAX)
				e->in_limit = e->redo_at + 1;
			attempt--;
			continue;
		}
		flush_commands(e);
		(void)fbxi_audit_flush(e); /* the turn's submit records;
		                             an error is in txn_err */
		t_work = mono_us();
		if (e->txn_err != FBX_OK) {
			rc = e->txn_err;
			fbx_txn_abort(e->txn);
		} else {
			rc = fbx_txn_commit(e->txn);
		}
		t_commit = mono_us();
		e->txn = NULL;
		fbxi_audit_drop(e);
		if (rc == FBX_OK) {
			e->commits++;
			if ((uint64_t)(t_commit - t0) > e->turn_max_us)
				e->turn_max_us = (uint64_t)(t_commit - t0);
			e->m_turn.n[fbx_metrics_bucket(
			    (uint64_t)(t_commit - t0))]++;
			e->m_turn.sum_us += (uint64_t)(t_commit - t0);
			e->m_commit.n[fbx_metrics_bucket(
			    (uint64_t)(t_commit - t_work))]++;
			e->m_commit.sum_us += (uint64_t)(t_commit - t_work);
			e->nundo = 0;
			prune_settle(e, 1);
			gw_free_graveyard(e);
			if (did_unsent)
				e->nunsent = 0;
			if (e->lease_gained) {
				/* an organisation taken over in this turn:
				 * its stored state is loaded before its next
				 * request is served */
				e->lease_gained = 0;
				e->need_rebuild = 1;
			}
			if (e->fail_streak > 0)
				FBX_LOGI("writes work again after %u failed "
				         "turns",
				    e->fail_streak);
			e->fail_streak = 0;
			/* before the replies: a client told its key was
			 * added must find the handshake open */
			fbxi_auth_committed(e);
			fbxi_outq_commit(e);
			e->force_commit = 0;
			if (e->use_syncer) {
				/* durable once the syncer has synced its meta
				 * page: nothing of the turn leaves before */
				out_hold(e, ++e->commit_ticket);
				if (e->nheld > 0 && e->syncer != NULL)
					fbxi_syncer_ask(
					    e->syncer, e->commit_ticket);
			} else {
				out_flush(e);
				ack_latency(e, e->turn_submits, e->t_read_us);
				if (e->events_reset_due) {
					e->events_reset_due = 0;
					if (e->io_ops->events_reset != NULL)
						e->io_ops->events_reset(e->io);
				}
			}
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
			close_inputs(e, e->nhandled, 1);
			return FBX_OK;
		}
	failed:
		/* nothing of this turn happened: its outputs go, the gateway
		 * sessions are put back as they were, memory is rebuilt */
		out_discard(e);
		fbxi_gw_undo_apply(e);
		prune_settle(e, 0);
		gw_free_graveyard(e);
		if (rc == FBX_EFENCED && attempt + 1 < COMMIT_RETRIES) {
			/* another node took a lease of this one (it was
			 * paused or cut off past its lease): nothing of the
			 * turn was stored or sent; learn what is still ours,
			 * reload it and do the turn again */
			e->fenced++;
			FBX_LOGW("turn fenced: another node took an "
			         "organisation of this one; reloading the "
			         "organisations still owned");
			e->next_lease = 0;
			e->need_rebuild = 1;
			continue;
		}
		if (rc == FBX_EBUSY && attempt + 1 < COMMIT_RETRIES &&
		    recover(e) == FBX_OK) {
			/* PostgreSQL: a serialization failure or a deadlock
			 * (lease rows of several nodes): nothing of the turn
			 * happened; it is done again at once */
			FBX_LOGW("turn rolled back by the store (serialization "
			         "failure or deadlock); doing it again");
			continue;
		}
		if (rc == FBX_EMAP_FULL && attempt + 1 < COMMIT_RETRIES &&
		    fbx_store_grow(e->st) == FBX_OK) {
			FBX_LOGI("store map grown; redoing the batch");
			if (recover(e) == FBX_OK)
				continue;
		}
		break;
	}
	if (rc == FBX_EMAP_FULL)
		rc = FBX_EDISK_FULL;
	e->fail_streak++;
	e->turns_failed++;
	/* disk full, I/O error, a damaged record: tell the submitters, keep
	 * serving reads, try writes again after a backoff. What was
	 * accepted before is untouched; gateways resend what was not
	 * ACKed and keep what they hold. */
	FBX_LOGE("turn failed: %s; %zu messages answered with an error or "
	         "left for their sender to retry; writes again in %lld ms",
	    fbx_strerror(rc), e->nin,
	    (long long)retry_delay(e->fail_streak));
	if (recover(e) != FBX_OK)
		FBX_LOGE("memory could not be rebuilt from the store; reads "
		         "of the store are still served, retrying");
	e->degraded = 1;
	e->degraded_err = rc;
	e->retry_at = eng_clock(e, 1) + retry_delay(e->fail_streak);
	/* the turn's reads are answered from the store, its writes with
	 * the error; gateways resend what was not ACKed */
	read_only_turn(e);
	return FBX_OK;
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
fbx_engine_turn(struct fbx_engine *e)
{
	if (e == NULL)
		return FBX_EINVAL;
	return turn(e);
}

int
fbx_engine_run(struct fbx_engine *e)
{
	int rc = FBX_OK;

	if (e->o.loop_hook != NULL)
		e->o.loop_hook(e->o.loop_hook_arg, e, FBX_LOOP_READY);
	for (;;) {
		if (e->stop && !e->draining) {
			e->draining = 1;
			e->drain_deadline = eng_clock(e, 1) + e->o.drain_ms;
			FBX_LOGI("draining: %zu deliveries in flight",
			    inflight_total(e));
			if (e->o.loop_hook != NULL)
				e->o.loop_hook(e->o.loop_hook_arg, e,
				    FBX_LOOP_DRAIN);
		}
		if (e->draining &&
		    (inflight_total(e) == 0 || eng_clock(e, 1) >= e->drain_deadline))
			break;
		/* held outputs leave as soon as their sync ends: the
		 * syncer's descriptor wakes the poll (the 10 ms are a
		 * backstop only; without a syncer, look every ms) */
		int wake = e->syncer != NULL && e->nheld > 0
		    ? fbxi_syncer_fd(e->syncer)
		    : -1;
		int ms = work_pending(e) ? 0
		    : e->force_commit    ? 1
		    : e->nheld > 0       ? (wake >= 0 ? 10 : 1)
		    : e->stalled         ? 5
		                         : 50;
		if (e->io_ops->wait(e->io, ms, wake) != 0) {
			rc = FBX_EIO;
			break;
		}
		/* reset before the turn's held_release reads what is
		 * durable: a sync that ends after it wakes the next poll */
		if (wake >= 0)
			fbxi_syncer_woken(e->syncer);
		rc = turn(e);
		if (rc != FBX_OK)
			break;
		if (e->o.loop_hook != NULL)
			e->o.loop_hook(e->o.loop_hook_arg, e, FBX_LOOP_TURN);
	}
	if (e->syncer != NULL && e->nheld > 0) {
		/* the last turns' replies leave once durable, or never */
		(void)fbxi_syncer_wait(e->syncer, e->commit_ticket, 10000);
		held_release(e);
		if (e->nheld > 0)
			FBX_LOGW("outputs of %zu turns not sent: their "
			         "commits were not made durable",
			    e->nheld);
	}
	FBX_LOGI("stopped: %zu deliveries still in flight will be re-sent "
	         "after restart",
	    inflight_total(e));
	if (e->o.loop_hook != NULL)
		e->o.loop_hook(e->o.loop_hook_arg, e, FBX_LOOP_STOPPED);
	return rc;
}

void
fbx_engine_stop(struct fbx_engine *e)
{
	e->stop = 1;
}

static int engine_open(const struct fbx_engine_opts *opts,
    const struct fbx_io_ops *ops, void *io, struct fbxi_auth *auth,
    fbx_engine **out);

int
fbx_engine_open(const struct fbx_engine_opts *opts, fbx_engine **out)
{
	struct fbxi_auth *auth = NULL;
	void *io = NULL;
	int rc;

	if (opts == NULL || opts->data_dir == NULL ||
	    opts->console_ep == NULL || opts->gateway_ep == NULL ||
	    opts->auth_off)
		return FBX_EINVAL;
	/* the principals' table exists before the sockets: the ZAP
	 * handler refuses every key until recovery has loaded it */
	rc = fbxi_auth_new(&auth);
	if (rc != FBX_OK)
		return rc;
	/* the store is opened (and its lock taken) by the caller's flock
	 * first; binding before recovery lets a second daemon fail fast */
	rc = fbxi_io_zmq_open(opts, auth, &io);
	if (rc != FBX_OK) {
		fbxi_auth_free(auth);
		return rc;
	}
	rc = engine_open(opts, &fbxi_io_zmq_ops, io, auth, out);
	if (rc == FBX_OK)
		FBX_LOGI("fuseboxd %s: console %s, gateways %s, store %s%s",
		    FBX_VERSION, opts->console_ep, opts->gateway_ep,
		    opts->store_url != NULL && opts->store_url[0] != '\0'
		        ? "in PostgreSQL (--store), keys in "
		        : "",
		    opts->data_dir);
	return rc;
}

int
fbx_engine_open_io(const struct fbx_engine_opts *opts,
    const struct fbx_io_ops *ops, void *io, fbx_engine **out)
{
	return engine_open(opts, ops, io, NULL, out);
}

/* engine_open - fbx_engine_open_io with the principals' table the
 * transport's ZAP handler reads (NULL: made here). Owns io and auth from
 * the call on. */
static int
engine_open(const struct fbx_engine_opts *opts, const struct fbx_io_ops *ops,
    void *io, struct fbxi_auth *auth, fbx_engine **out)
{
	struct fbx_engine *e;
	struct fbx_store_opts so;
	int rc;

	if (opts == NULL || opts->data_dir == NULL || ops == NULL) {
		if (ops != NULL)
			ops->close(io);
		fbxi_auth_free(auth);
		return FBX_EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		ops->close(io);
		fbxi_auth_free(auth);
		return FBX_ENOMEM;
	}
	e->io_ops = ops;
	e->io = io;
	e->auth = auth;
	e->o = *opts;
	if (e->o.heartbeat_ms == 0)
		e->o.heartbeat_ms = 1000;
	if (e->o.expand_chunk == 0)
		e->o.expand_chunk = 16384;
	e->dispatch_max = DISPATCH_MAX;
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
	e->started_ms = eng_clock(e, 1);
	fbxi_idmap_init(&e->cmds);
	fbxi_idmap_init(&e->supersede);
	e->sx_sweep_min = e->sx_sweep_at = 65536;
	fbxi_idmap_init(&e->skinds);
	fbxi_idmap_init(&e->rollouts);
	fbxi_idmap_init(&e->sweeping);
	e->prune_next = 1;
	rc = fbxi_fleet_new(&e->fleet);
	if (rc == FBX_OK)
		rc = fbxi_outcomes_new(&e->outcomes);
	if (rc != FBX_OK)
		goto fail;

	memset(&so, 0, sizeof(so));
	so.path = e->o.data_dir;
	so.map_size = e->o.map_size;
	so.url = e->o.store_url;
	so.node = e->o.node;
	so.advertise = e->o.advertise != NULL ? e->o.advertise : e->o.console_ep;
	so.lease_ms = e->o.lease_ms;
	so.durability = e->o.durability;
	/* full durability over ZeroMQ: commits sync their data pages and
	 * the syncer their meta page, while the next turn runs */
	if (ops == &fbxi_io_zmq_ops && e->o.sync_thread &&
	    e->o.durability == FBX_DURABLE_FULL)
		so.durability = FBX_DURABLE_NOMETASYNC;
	rc = fbx_store_open(&so, &e->st);
	if (rc != FBX_OK) {
		FBX_LOGE("cannot open store %s%s: %s",
		    e->o.store_url != NULL && e->o.store_url[0] != '\0'
		        ? "in PostgreSQL (--store), data directory "
		        : "",
		    e->o.data_dir,
		    fbx_strerror(rc));
		goto fail;
	}
	e->cluster = fbx_store_cluster(e->st);
	if (e->cluster)
		FBX_LOGI("cluster mode: node %s, leases of %u ms; organisations "
		         "are owned through leases in the store",
		    e->o.node, e->o.lease_ms ? e->o.lease_ms : 10000);
	if (e->cluster && e->o.advertise == NULL && e->o.console_ep != NULL &&
	    (strstr(e->o.console_ep, "://*") != NULL ||
	        strstr(e->o.console_ep, "0.0.0.0") != NULL ||
	        strstr(e->o.console_ep, "[::]") != NULL))
		FBX_LOGW("cluster mode: the console endpoint %s is a wildcard; "
		         "other nodes send this node's clients there as it is: "
		         "give --advertise with an address they can reach",
		    e->o.console_ep);
	if (so.durability != e->o.durability) {
		e->use_syncer = 1;
		rc = fbxi_syncer_start(e->st, 0, 0, &e->syncer);
		if (rc != FBX_OK)
			goto fail;
	}
	{
		struct fbx_store_stat ss;
		if (fbx_store_stat(e->st, &ss) == FBX_OK &&
		    ss.readers_cleared > 0)
			FBX_LOGW("cleared %u stale LMDB reader slots left by "
			         "dead processes",
			    ss.readers_cleared);
		if (ss.audit_upgraded > 0) /* schema 1 -> 2, audit.c */
			FBX_LOGI("store upgraded: %llu audit records indexed",
			    (unsigned long long)ss.audit_upgraded);
	}
	rc = rebuild(e);
	if (rc != FBX_OK) {
		FBX_LOGE("recovery failed: %s", fbx_strerror(rc));
		goto fail;
	}
	rc = fbxi_auth_open(e);
	if (rc != FBX_OK) {
		FBX_LOGE("cannot load principals: %s", fbx_strerror(rc));
		goto fail;
	}
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
	fbxi_settle_free(e);
	fbxi_idmap_fini(&e->supersede);
	fbxi_idmap_fini(&e->skinds);
	fbxi_idmap_fini(&e->rollouts);
	fbxi_idmap_fini(&e->sweeping);
	fbxi_theap_free(&e->expiry);
	fbxi_audit_batch_free(e);
	free(e->reap);
	fbxi_idmap_fini(&e->cmds);
	for (size_t b = 0; b < 1024; b++) {
		struct orgq *q = e->qtab[b], *n;
		for (; q != NULL; q = n) {
			n = q->hnext;
			fbxi_orgq_clear(q);
			free(q);
		}
	}
	free(e->rr);
	for (g = e->gws; g != NULL; g = gn) {
		gn = g->next;
		gw_free(g);
	}
	out_discard(e);
	held_discard(e);
	(void)fbxi_syncer_stop(e->syncer, NULL); /* before the store closes */
	e->syncer = NULL;
	close_inputs(e, e->nin, 0);
	free(e->in);
	free(e->undo);
	free(e->unsent);
	free(e->inerr);
	free(e->indef);
	free(e->pkeep);
	fbxi_certs_free(e);
	fbxi_fleet_free(e->fleet);
	fbxi_outcomes_free(e->outcomes);
	free(e->outq);
	gw_free_graveyard(e);
	if (e->io_ops != NULL)
		e->io_ops->close(e->io);
	fbxi_auth_free(e->auth); /* after the ZAP handler stopped */
	fbx_store_close(e->st);
	free(e);
}
