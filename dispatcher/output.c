/*
 * output.c: what leaves after a commit. The turn's outputs (replies,
 * acknowledgements, deliveries) are sent once the commit is durable, or
 * held, in commit order, until the syncer's fsync covers their commit
 * (--sync-thread); a send a gateway's queue refuses is remembered and its
 * deliveries go back to their queue. Also the messages the engine sends a
 * gateway. Calls core, gwsession (a session whose deliveries cannot be
 * sent or held is ended), the outcome counts (fleet.c), the syncer and the
 * alert runner (alerts.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "engine_int.h"
#include "syncer.h"

void
fbxi_out_discard(struct fbx_engine *e)
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

	if (m->to_gw == OUT_LOG) {
		fbxi_log_site(FBX_LOG_INFO, m->log_site, "%s",
		    m->buf != NULL ? (const char *)m->buf
		                   : "(a line was lost: out of memory)");
		return;
	}
	if (m->to_gw == OUT_EVENT) {
		const struct fbx_event *ev = &m->ev;
		/* a command released after settling is news, not an alarm */
		fbxi_log(ev->kind == FBX_EV_COMMAND_SETTLED ? FBX_LOG_INFO
		                                            : FBX_LOG_WARN,
		    "%s %s org=%s reason=%s actor=%s count=%llu limit=%llu: %s",
		    ev->kind == FBX_EV_COMMAND_SETTLED ? "EVENT" : "ALERT",
		    fbx_event_kind_name(ev->kind), ev->org, ev->reason,
		    ev->actor, (unsigned long long)ev->count,
		    (unsigned long long)ev->limit, ev->detail);
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
		fbxi_gw_mark_dead(
		    e, m->gw, "out of memory for deliveries held back");
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
			fbxi_gw_mark_dead(e, m->gw,
			    rc == FBX_EUNREACHABLE
			        ? "the gateway is gone (no route to its "
			          "connection)"
			        : fbx_strerror(rc));
		} else {
			FBX_LOGD("console reply dropped: %s", fbx_strerror(rc));
		}
	}
}

/* fbxi_out_flush - send what the committed turn queued: the urgent DELIVERIES
 * (small commands) first, so they are ahead of the turn's bulk ones in
 * each gateway's pipe, then everything else in the order queued. */
void
fbxi_out_flush(struct fbx_engine *e)
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

/* fbxi_ack_latency - the submits of a turn are acknowledged now. */
void
fbxi_ack_latency(struct fbx_engine *e, uint32_t submits, int64_t t_read_us)
{
	uint64_t lat;

	if (submits == 0)
		return;
	lat = (uint64_t)(fbxi_mono_us() - t_read_us);
	e->m_ack.n[fbx_metrics_bucket(lat)] += submits;
	e->m_ack.sum_us += lat * submits;
}

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
	fbxi_held_release(e); /* releases up to what is durable */
	e->ohead = head;
	e->otail = tail;
	if (e->nheld == 0 && e->syncer != NULL &&
	    fbxi_syncer_wait(e->syncer, ticket, 0)) {
		fbxi_out_flush(e);
		fbxi_ack_latency(e, e->turn_submits, e->t_read_us);
		return;
	}
	FBX_LOGE("outputs of commit %llu dropped: not made durable and no "
	         "memory to hold them",
	    (unsigned long long)ticket);
	for (struct outmsg *m = e->ohead; m != NULL; m = m->next)
		if (m->to_gw == OUT_GW && m->gw != NULL && m->nids > 0)
			fbxi_gw_mark_dead(e, m->gw,
			    "its deliveries could not be "
			    "held for their sync");
	fbxi_out_discard(e);
}

/* fbxi_out_hold - the turn committed as ticket: its outputs wait until the
 * syncer made that commit durable (fbxi_held_release). */
void
fbxi_out_hold(struct fbx_engine *e, uint64_t ticket)
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

/* fbxi_out_leave - outputs of a turn that committed nothing (reads and
 * refusals on a degraded store): they leave now, also ahead of held
 * ones, which may wait for a disk that does not come back; they
 * acknowledge nothing (a read may show a change whose own reply is still
 * held for its sync). */
void
fbxi_out_leave(struct fbx_engine *e)
{
	fbxi_out_flush(e);
}

/* read_again - the answer to a read held with a sync that failed is
 * replaced by the error: what it read may be what that commit wrote, and
 * the state it shows (a status's "degraded no") is older than the
 * failure. Asked again, the read is answered from the degraded store. */
static void
read_again(struct outmsg *m, int failed)
{
	struct fbx_console_rep er;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (m->to_gw != OUT_CONSOLE)
		return; /* a log line */
	memset(&er, 0, sizeof(er));
	er.request_id = m->req_id;
	er.kind = m->req_kind;
	er.err = failed;
	snprintf(er.errmsg, sizeof(er.errmsg),
	    "not answered: the store's sync failed (%s) while this read was "
	    "answered, and what it read is older than that failure; ask "
	    "again (reads are served while writes are retried)",
	    fbx_strerror(failed));
	if (fbx_console_rep_encode(&er, &buf, &len) != FBX_OK)
		return; /* the old answer then, rather than none */
	free(m->buf);
	m->buf = buf;
	m->len = len;
}

/* held_reads_leave - a sync failed: the reads held with the commits it
 * was to make durable are answered now, in order, with the failure
 * (read_again). They acknowledge nothing (as reads on a degraded store,
 * which are answered at once); held, they waited for writes to work
 * again, and on a dying disk a status sent just before the failure was
 * never answered. Sent as they were, they said "degraded no" after the
 * failure. The rest waits for a later commit's sync. */
static void
held_reads_leave(struct fbx_engine *e, int failed)
{
	struct outmsg *rh = NULL, *rt = NULL;

	for (size_t i = 0; i < e->nheld; i++) {
		struct held_out *h = &e->held[i];
		struct outmsg **pp = &h->head, *kept = NULL;
		while (*pp != NULL) {
			struct outmsg *m = *pp;
			if (!m->ro) {
				kept = m;
				pp = &m->next;
				continue;
			}
			*pp = m->next;
			m->next = NULL;
			read_again(m, failed);
			if (rt != NULL)
				rt->next = m;
			else
				rh = m;
			rt = m;
		}
		h->tail = kept;
	}
	if (rh == NULL)
		return;
	e->ohead = rh;
	e->otail = rt;
	fbxi_out_flush(e);
}

/* fbxi_held_release - send the held outputs whose commit is durable now, in
 * commit order. Between turns only (the turn's own list is empty). */
void
fbxi_held_release(struct fbx_engine *e)
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
		    fbxi_clock(e, 1) + fbxi_retry_delay(e->sync_fail_streak);
		FBX_LOGE("store sync failed: %s; the replies and deliveries "
		         "of commits up to %llu wait for a later commit's "
		         "sync (answers to reads leave now); writes again in "
		         "%lld ms",
		    fbx_strerror(failed), (unsigned long long)e->sync_cover,
		    (long long)fbxi_retry_delay(e->sync_fail_streak));
	} else if (e->sync_fail_streak > 0 && done > e->sync_cover) {
		FBX_LOGI("store syncs work again after %u failed",
		    e->sync_fail_streak);
		e->sync_fail_streak = 0;
	}
	while (k < e->nheld && e->held[k].ticket <= done) {
		struct held_out *h = &e->held[k++];
		e->ohead = h->head;
		e->otail = h->tail;
		fbxi_out_flush(e);
		fbxi_ack_latency(e, h->submits, h->t_read_us);
		if (h->events_reset && e->io_ops->events_reset != NULL)
			e->io_ops->events_reset(e->io);
	}
	if (k > 0) {
		memmove(e->held, e->held + k,
		    (e->nheld - k) * sizeof(*e->held));
		e->nheld -= k;
	}
	/* after what is durable: a read's answer never overtakes an
	 * earlier write's that leaves in the same call */
	if (failed != FBX_OK)
		held_reads_leave(e, failed);
}

/* fbxi_held_forget_gw - a session is freed: its held messages go nowhere
 * (as for one that left in the turn; its deliveries were re-queued). */
void
fbxi_held_forget_gw(struct fbx_engine *e, const struct gw *g)
{
	for (size_t i = 0; i < e->nheld; i++)
		for (struct outmsg *m = e->held[i].head; m != NULL;
		    m = m->next)
			if (m->gw == g)
				m->gw = NULL;
}

/* fbxi_held_discard - drop every held output (close). */
void
fbxi_held_discard(struct fbx_engine *e)
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

void
fbxi_gw_send(struct fbx_engine *e, struct gw *g, const struct fbx_eng_msg *m)
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

void
fbxi_gw_send_raw_error(struct fbx_engine *e, const struct inmsg *in, int err,
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
