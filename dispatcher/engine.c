/*
 * engine.c: the dispatch loop. One thread owns both ROUTER sockets and the
 * only LMDB write transaction. Each turn reads a bounded batch of messages,
 * applies them, expands command targets into deliveries and hands queued
 * deliveries to gateways within their credit, inside one write transaction;
 * replies, acknowledgements and deliveries leave only after that commit, so
 * nothing is acknowledged or acted on before it is durable. The in-memory
 * state (command cache, per-organisation queues, in-flight sets) is a cache
 * of the store, rebuilt from LMDB at start-up and after a failed commit.
 * This file runs the turns (read, handle, commit or recover, send) and
 * opens and closes the engine; each part of a turn has its own file:
 * what comes in (console.c, gwmsg.c), admission (admit.c), expansion
 * (expand.c), dispatch (dispatch.c), the end of the turn (sweep.c,
 * retention.c), what leaves after the commit (output.c) and the rebuild
 * (recovery.c).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "fleet.h"
#include "outcomes.h"
#include "engine_int.h"
#include "io_zmq.h"
#include "auth.h"
#include "syncer.h"

static void
gw_free_graveyard(struct fbx_engine *e)
{
	struct gw *g, *n;

	for (g = e->graveyard; g != NULL; g = n) {
		fbxi_held_forget_gw(e, g);
		n = g->next;
		fbxi_gw_free(g);
	}
	e->graveyard = NULL;
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
		g = fbxi_gw_by_rid(e, e->in[i].env[0], e->in[i].envlen[0]);
		if (g != NULL)
			g->last_seen = e->mono;
	}
}

/* fail_console_inputs - answer the turn's console requests with rc: the
 * store cannot be read. A status request (ping) is still answered, from
 * memory (handle_ping reads no store without a transaction): the first
 * thing an operator asks in a store outage is whether the daemon lives
 * and what it holds. */
static void
fail_console_inputs(struct fbx_engine *e, int rc)
{
	for (size_t i = 0; i < e->nin; i++) {
		struct fbx_console_req req;
		const struct inmsg *in = &e->in[i];
		int ro;
		if (in->chan == FBX_IO_GATEWAY)
			continue;
		if (fbx_console_req_decode(in->body, in->len, &req, NULL, 0) !=
		    FBX_OK) {
			fbxi_console_error(e, in, req.request_id, FBX_CREQ_NONE,
			    rc, "storage failure: %s", fbx_strerror(rc));
			continue;
		}
		if (req.kind == FBX_CREQ_PING && e->txn == NULL) {
			fbx_console_req_free(&req);
			fbxi_handle_console(e, in);
			continue;
		}
		ro = fbxi_req_reads_only(&req);
		if (rc == FBX_ETIMEOUT && !ro)
			fbxi_console_error(e, in, req.request_id, req.kind, rc,
			    "%s", fbxi_in_doubt_msg);
		else if (ro)
			fbxi_console_error(e, in, req.request_id, req.kind,
			    rc,
			    "the store cannot be read: %s; nothing accepted "
			    "before was lost, retry later (status is "
			    "served)",
			    fbx_strerror(rc));
		else
			fbxi_console_error(e, in, req.request_id, req.kind,
			    rc,
			    "not recorded: storage failure: %s; nothing "
			    "accepted before was lost, retry later",
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
	so.pg_wait_ms = e->o.pg_wait_ms;
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
	e->leases_unknown = e->cluster;
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

/* rebuild_owned - memory from the store. A node whose store was
 * reopened learns its leases first: the new session owns nothing until
 * a lease tick, and a rebuild then would keep no command of this node
 * and drop what its gateways hold in flight (sent again later). */
static int
rebuild_owned(struct fbx_engine *e)
{
	if (e->leases_unknown) {
		int rc = fbxi_cluster_tick(e);
		if (rc != FBX_OK)
			return rc;
	}
	return fbxi_rebuild(e);
}

/* recover - make memory match the store again after a failed turn,
 * reopening the store if it refuses to be read. */
static int
recover(struct fbx_engine *e)
{
	int rc = e->st != NULL ? rebuild_owned(e) : FBX_ESTORAGE;

	if (rc != FBX_OK) {
		FBX_LOGW("rebuild failed (%s); reopening the store",
		    fbx_strerror(rc));
		rc = store_reopen(e);
		if (rc == FBX_OK)
			rc = rebuild_owned(e);
	}
	e->need_rebuild = rc != FBX_OK;
	return rc;
}

/* at most this many brakes wait for a retry turn; more are refused */
#define BRAKES_WAITING_MAX 64
/* a brake waiting brings the next retry turn this close (ms), but not
 * closer than BRAKE_RETRY_GAP_MS after the last one: a retry turn whose
 * probe passes and whose commit fails rebuilds memory, which brakes
 * sent one after another must not make a loop of */
#define BRAKE_RETRY_MS 100
#define BRAKE_RETRY_GAP_MS 1000

/* read_only_turn - the store cannot be written (full disk, failed
 * commits): answer reads from a read transaction, refuse writes with the
 * error, leave gateway input waiting until writes work again. Between
 * retry turns (defer), a brake (breaker trip, rollout pause) is left at
 * the front of in[] for the next retry turn, which answers it and comes
 * within BRAKE_RETRY_MS; after a retry turn failed (not defer), what it
 * carried gets that error. */
static void
read_only_turn(struct fbx_engine *e, int defer)
{
	int rc = e->st != NULL ? fbx_txn_begin(e->st, 0, &e->txn)
	                       : FBX_ESTORAGE;
	size_t waiting = 0;

	if (e->nin > 0)
		memset(e->indef, 0, e->nin);
	if (rc != FBX_OK) {
		e->txn = NULL;
		fail_console_inputs(e, e->degraded_err);
	} else {
		e->now = fbxi_clock(e, 0);
		for (size_t i = 0; i < e->nin; i++) {
			if (e->in[i].chan != FBX_IO_CONSOLE)
				continue;
			e->brake_defer = defer && waiting < BRAKES_WAITING_MAX;
			e->brake_waits = 0;
			fbxi_handle_console(e, &e->in[i]);
			/* a brake waits at the front of in[] */
			e->indef[i] = (uint8_t)e->brake_waits;
			waiting += e->brake_waits != 0;
		}
		e->brake_defer = e->brake_waits = 0;
		fbx_txn_abort(e->txn);
		e->txn = NULL;
		/* not after the backoff (up to 5 s): a failed retry turn
		 * costs a probe (write_probe), and the operator is waiting */
		if (waiting > 0) {
			int64_t at = e->mono + BRAKE_RETRY_MS;
			if (at < e->retry_last + BRAKE_RETRY_GAP_MS)
				at = e->retry_last + BRAKE_RETRY_GAP_MS;
			if (e->retry_at > at)
				e->retry_at = at;
		}
	}
	e->txn_err = FBX_OK;
	fbxi_out_leave(e);
	close_inputs(e, e->nin, 1);
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

	if (!st->deferred &&
	    (st->bulk == 0 || (st->bulk < GW_BYTES_SHORT &&
	                          fbxi_mono_us() - st->t0 < SHORT_WORK_US))) {
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

/* still_full - after a DISK_FULL, whether the disk has no more room
 * than when the write failed: under 4 MiB available and not 1 MiB more
 * than then (an operator who freed space on a small file system, or
 * under the root reserve, is heard). Not on PostgreSQL. */
static int
still_full(struct fbx_engine *e)
{
	uint64_t avail = fbx_store_disk_avail(e->st);

	if (avail == UINT64_MAX || avail >= (4u << 20))
		return 0;
	if (e->avail_at_fail != UINT64_MAX &&
	    avail >= e->avail_at_fail + (1u << 20))
		return 0;
	FBX_LOGI("a retry turn committed, but the store's file system has %llu "
	    "KiB available (%llu KiB when the write failed): still "
	    "degraded until space is freed",
	    (unsigned long long)(avail >> 10),
	    (unsigned long long)(e->avail_at_fail == UINT64_MAX
	            ? 0
	            : e->avail_at_fail >> 10));
	return 1;
}

static void turn_failed(struct fbx_engine *e, int rc, int rebuild);

/* write_probe - a retry turn after failed writes first writes one small
 * record (engine/write_probe) in a transaction of its own. A turn with
 * nothing to write commits without touching the disk: on a disk whose
 * every sync failed, such a turn cleared the degraded state ("writes
 * work again") until the next real write failed, so status and /readyz
 * called the engine healthy between failures and the backoff never grew.
 * The probe changes nothing in memory: when it fails, nothing is rebuilt.
 * Not in cluster mode (every turn there writes its lease heads). */
static int
write_probe(struct fbx_engine *e)
{
	fbx_txn *txn = NULL;
	uint8_t b[8];
	int rc;

	if (e->cluster || e->st == NULL)
		return FBX_OK;
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)e->now >> (8 * i));
	for (int attempt = 0;; attempt++) {
		rc = fbx_txn_begin(e->st, 1, &txn);
		if (rc != FBX_OK)
			return rc;
		rc = fbx_store_kv_put(txn, "engine/write_probe", b, sizeof(b));
		if (rc == FBX_OK)
			rc = fbx_txn_commit(txn);
		else
			fbx_txn_abort(txn);
		/* the map's limit, not the disk: grown as a turn grows it */
		if (rc != FBX_EMAP_FULL || attempt > 0 ||
		    fbx_store_grow(e->st) != FBX_OK)
			return rc;
	}
}

/* probe_failed - after a failed probe: once a meta page write failed,
 * LMDB refuses every transaction (MDB_PANIC) until the environment is
 * opened again. A turn's failure reopens it through recover(); a
 * probe's did not, and a second failed meta write in a row (the first
 * turn's, then its retry's probe) left the engine degraded for good on
 * a disk that worked again. Memory did not change: nothing is rebuilt;
 * a store that cannot be reopened is left to recover(). */
static void
probe_failed(struct fbx_engine *e)
{
	fbx_txn *t = NULL;
	int rc = e->st != NULL ? fbx_txn_begin(e->st, 0, &t) : FBX_ESTORAGE;

	if (rc == FBX_OK) {
		fbx_txn_abort(t);
		return;
	}
	if (rc != FBX_ESTORAGE)
		return;
	FBX_LOGW("the store refuses every transaction after a failed "
	         "write; reopening it");
	if (store_reopen(e) != FBX_OK)
		e->need_rebuild = 1;
}

static int
turn(struct fbx_engine *e)
{
	int64_t t0 = 0, t_work = 0, t_commit = 0;
	uint64_t res0 = 0, sent0 = 0;
	int rc = FBX_OK, drained = 0, carried = e->nin > e->ndef, short_turn;
	int duties;

	fbxi_held_release(e);
	e->mono = fbxi_clock(e, 1);
	if (e->degraded && e->mono < e->retry_at) {
		/* gateway input stays queued at the socket meanwhile */
		read_inputs(e, FBX_IO_CONSOLE, IN_MSGS_MAX, IN_BYTES_MAX);
		/* new input only: the brakes waiting were looked at */
		if (e->nin > e->ndef)
			read_only_turn(e, 1);
		return FBX_OK;
	}
	if (e->degraded)
		e->retry_last = e->mono;
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
		e->t_read_us = fbxi_mono_us();
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
	e->mono = fbxi_clock(e, 1);
	if (drained)
		e->gw_drained = e->mono;
	note_seen(e);
	/* nothing arrived and nothing is due: no transaction at all */
	if (e->nin == 0 && !fbxi_work_pending(e) && !e->stalled &&
	    !e->degraded && !e->force_commit && e->mono < e->next_tick &&
	    !(e->cluster && e->mono >= e->next_lease))
		return FBX_OK;
	e->next_tick = e->mono + 100;
	if (e->fail_streak > 0 && !e->doubt && !e->need_rebuild) {
		e->now = fbxi_clock(e, 0);
		rc = write_probe(e);
		if (rc != FBX_OK) {
			probe_failed(e);
			/* the brakes it carried get its error */
			turn_failed(e, rc, 0);
			return FBX_OK;
		}
	}
	t0 = fbxi_mono_us();
	res0 = e->results_in;
	sent0 = e->dlv_sent;
	e->redos = 0;
	e->in_limit = (size_t)-1;
	for (int attempt = 0; attempt < COMMIT_RETRIES; attempt++) {
		size_t need = (64u << 20);
		int did_unsent = 0;
		struct defer_st dst;
		e->now = fbxi_clock(e, 0);
		e->mono = fbxi_clock(e, 1);
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
		if (rc == FBX_OK && e->doubt) {
			/* the transaction in doubt has ended (it held the
			 * writers' lock this one now has): rebuild from what
			 * the store kept of it, then begin again */
			fbx_txn_abort(e->txn);
			e->txn = NULL;
			e->doubt = 0;
			rc = recover(e);
			if (rc == FBX_OK)
				rc = fbx_txn_begin(e->st, 1, &e->txn);
			else
				e->doubt = 1;
		}
		if (rc == FBX_OK && e->cluster)
			rc = fbxi_cluster_heads(e);
		if (rc != FBX_OK) {
			if (e->txn != NULL)
				fbx_txn_abort(e->txn);
			e->txn = NULL;
			goto failed;
		}
		if (e->nunsent > 0) {
			fbxi_unsent_step(e);
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
		dst.t0 = fbxi_mono_us();
		for (size_t i = 0; i < e->nin && i < e->in_limit &&
		    fbxi_err(e) == FBX_OK && !e->redo;
		    i++) {
			e->indef[i] = 0;
			if (e->in[i].chan == FBX_IO_GATEWAY && e->short_turn &&
			    defer_input(&e->in[i], &dst))
				e->indef[i] = 1;
			else if (e->in[i].chan == FBX_IO_GATEWAY)
				fbxi_handle_gateway(e, &e->in[i]);
			else
				fbxi_handle_console(e, &e->in[i]);
			e->nhandled = i + 1;
		}
		if (fbxi_err(e) == FBX_OK && !e->redo)
			fbxi_gw_reap(e);
		if (e->cluster && e->check_resets && !e->redo &&
		    fbxi_err(e) == FBX_OK) {
			fbxi_cluster_resets(e);
			e->check_resets = 0;
		}
		if (!e->draining && !e->redo && fbxi_err(e) == FBX_OK) {
			if (e->nrq > 0)
				fbxi_rq_step(e);
			fbxi_settle_step(e);
			fbxi_expand_step(e);
			fbxi_rollout_step(e);
			fbxi_dispatch_step(e);
		}
		if (fbxi_err(e) == FBX_OK && !e->redo &&
		    e->now >= e->next_sweep) {
			fbxi_sweep_step(e);
			e->next_sweep = e->now + 500;
		}
		/* cluster mode: what spans organisations (retention, the
		 * audit log, approvals, certificates, fleet health) is the
		 * work of the node holding the duties lease ("") */
		duties = !e->cluster || fbx_store_owns(e->st, "");
		if (fbxi_err(e) == FBX_OK && !e->redo && duties &&
		    e->o.retention_s > 0 && e->now >= e->next_prune) {
			fbxi_prune_step(e);
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
			fbxi_prune_approvals(e);
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
			fbxi_out_discard(e);
			fbxi_gw_undo_apply(e);
			fbxi_prune_settle(e, 0);
			gw_free_graveyard(e);
			rc = recover(e);
			if (rc != FBX_OK)
				goto failed;
			if (++e->redos >= REDO_MAX)
				e->in_limit = e->redo_at + 1;
			attempt--;
			continue;
		}
		fbxi_flush_commands(e);
		(void)fbxi_audit_flush(e); /* the turn's submit records;
		                             an error is in txn_err */
		t_work = fbxi_mono_us();
		if (e->txn_err != FBX_OK) {
			rc = e->txn_err;
			fbx_txn_abort(e->txn);
		} else {
			rc = fbx_txn_commit(e->txn);
		}
		t_commit = fbxi_mono_us();
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
			fbxi_prune_settle(e, 1);
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
			if (e->fail_streak > 0 && e->full_wait &&
			    still_full(e)) {
				/* an idle turn commits nothing, a small one
				 * into pages the file already has: neither
				 * says the disk has room. Degraded until
				 * space was freed, writes tried at each retry
				 * (status and /readyz say so meanwhile), and
				 * writes refused with DISK_FULL, also after a
				 * failed sync set another error */
				e->degraded = 1;
				e->degraded_err = FBX_EDISK_FULL;
				e->retry_at = fbxi_clock(e, 1) +
				    fbxi_retry_delay(e->fail_streak);
			} else {
				if (e->fail_streak > 0)
					FBX_LOGI("writes work again after %u "
					         "failed turns",
					    e->fail_streak);
				e->fail_streak = 0;
				e->full_wait = 0;
			}
			/* before the replies: a client told its key was
			 * added must find the handshake open */
			fbxi_auth_committed(e);
			fbxi_outq_commit(e);
			e->force_commit = 0;
			if (e->use_syncer) {
				/* durable once the syncer has synced its meta
				 * page: nothing of the turn leaves before */
				fbxi_out_hold(e, ++e->commit_ticket);
				if (e->nheld > 0 && e->syncer != NULL)
					fbxi_syncer_ask(
					    e->syncer, e->commit_ticket);
			} else {
				fbxi_out_flush(e);
				fbxi_ack_latency(
				    e, e->turn_submits, e->t_read_us);
				if (e->events_reset_due) {
					e->events_reset_due = 0;
					if (e->io_ops->events_reset != NULL)
						e->io_ops->events_reset(e->io);
				}
			}
			fbxi_reap_done(e);
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
				    (long long)(fbxi_mono_us() - t_commit));
			close_inputs(e, e->nhandled, 1);
			return FBX_OK;
		}
	failed:
		/* nothing of this turn happened: its outputs go, the gateway
		 * sessions are put back as they were, memory is rebuilt */
		fbxi_out_discard(e);
		fbxi_gw_undo_apply(e);
		fbxi_prune_settle(e, 0);
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
		    e->st != NULL && fbx_store_grow(e->st) == FBX_OK) {
			FBX_LOGI("store map grown; redoing the batch");
			if (recover(e) == FBX_OK)
				continue;
		}
		break;
	}
	turn_failed(e, rc, 1);
	return FBX_OK;
}

/* turn_failed - a turn (or a retry turn's write probe) could not commit
 * with rc: disk full, I/O error, a damaged record. Tell the submitters,
 * keep serving reads, try writes again after a backoff. What was
 * accepted before is untouched; gateways resend what was not ACKed and
 * keep what they hold. Memory is rebuilt from the store when the turn
 * changed it (rebuild). */
static void
turn_failed(struct fbx_engine *e, int rc, int rebuild)
{
	if (rc == FBX_EMAP_FULL)
		rc = FBX_EDISK_FULL;
	if (rc == FBX_ETIMEOUT && !rebuild) {
		/* the probe's commit in doubt: nothing of the turn was tried
		 * (the next begin still waits for that transaction's end) */
		e->doubt = 1;
		rc = FBX_EIO;
	} else if (rc == FBX_ETIMEOUT) {
		e->doubt = 1;
		FBX_LOGE("turn's commit in doubt: the store's connection went "
		         "after COMMIT was sent and the server could not be "
		         "asked whether it committed; the turn's requests are "
		         "answered TIMEOUT (retry with the same idempotency "
		         "key), nothing of it was sent, and memory is "
		         "rebuilt from the store");
	}
	e->fail_streak++;
	e->turns_failed++;
	FBX_LOGE("turn failed: %s; %zu messages answered with an error or "
	         "left for their sender to retry; writes again in %lld ms",
	    fbx_strerror(rc), e->nin,
	    (long long)fbxi_retry_delay(e->fail_streak));
	if (rebuild && recover(e) != FBX_OK)
		FBX_LOGE("memory could not be rebuilt from the store; reads "
		         "of the store are still served, retrying");
	e->degraded = 1;
	e->degraded_err = rc;
	e->retry_at = fbxi_clock(e, 1) + fbxi_retry_delay(e->fail_streak);
	if (rc == FBX_EDISK_FULL) {
		e->avail_at_fail = fbx_store_disk_avail(e->st);
		e->full_wait = 1;
	}
	/* the turn's reads are answered from the store, its writes (a
	 * brake that waited for this turn too) with the error; gateways
	 * resend what was not ACKed */
	read_only_turn(e, 0);
	/* only the turn in doubt had its outcome unknown: later writes,
	 * refused until the store works, are simply not recorded */
	if (e->degraded_err == FBX_ETIMEOUT)
		e->degraded_err = FBX_EIO;
}

/* answer_left - the loop stops with input still waiting (a brake left
 * for a retry turn, gateway input a short turn left): console requests
 * are answered SHUTTING_DOWN, gateways resend what was not ACKed. */
static void
answer_left(struct fbx_engine *e)
{
	for (size_t i = 0; i < e->nin; i++) {
		struct fbx_console_req req;
		const struct inmsg *in = &e->in[i];
		if (in->chan != FBX_IO_CONSOLE)
			continue;
		if (fbx_console_req_decode(in->body, in->len, &req, NULL, 0) !=
		    FBX_OK)
			continue; /* undecodable: nothing to answer it by */
		fbxi_console_error(e, in, req.request_id, req.kind,
		    FBX_ESHUTTING_DOWN, "engine is shutting down; retry");
		fbx_console_req_free(&req);
	}
	fbxi_out_leave(e);
	close_inputs(e, e->nin, 0);
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
			e->drain_deadline = fbxi_clock(e, 1) + e->o.drain_ms;
			FBX_LOGI("draining: %zu deliveries in flight",
			    inflight_total(e));
			if (e->o.loop_hook != NULL)
				e->o.loop_hook(e->o.loop_hook_arg, e,
				    FBX_LOOP_DRAIN);
		}
		if (e->draining &&
		    (inflight_total(e) == 0 ||
		        fbxi_clock(e, 1) >= e->drain_deadline)) {
			answer_left(e);
			break;
		}
		/* held outputs leave as soon as their sync ends: the
		 * syncer's descriptor wakes the poll (the 10 ms are a
		 * backstop only; without a syncer, look every ms) */
		int wake = e->syncer != NULL && e->nheld > 0
		    ? fbxi_syncer_fd(e->syncer)
		    : -1;
		int ms = fbxi_work_pending(e) ? 0
		    : e->force_commit    ? 1
		    : e->nheld > 0       ? (wake >= 0 ? 10 : 1)
		    : e->stalled         ? 5
		                         : 50;
		if (e->io_ops->wait(e->io, ms, wake) != 0) {
			rc = FBX_EIO;
			answer_left(e);
			break;
		}
		/* reset before the turn's fbxi_held_release reads what is
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
		fbxi_held_release(e);
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
	if (e->o.prune_budget == 0)
		e->o.prune_budget = 50000;
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
	e->started_ms = fbxi_clock(e, 1);
	fbxi_idmap_init(&e->cmds);
	fbxi_idmap_init(&e->supersede);
	e->sx_sweep_min = e->sx_sweep_at = 65536;
	fbxi_idmap_init(&e->skinds);
	fbxi_idmap_init(&e->rollouts);
	fbxi_idmap_init(&e->sweeping);
	fbxi_idmap_init(&e->rbd);
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
	so.pg_wait_ms = e->o.pg_wait_ms;
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
		    rc == FBX_EBUSY ? "in use by another fuseboxd"
		                    : fbx_strerror(rc));
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
		/* schema 1 -> 2: audit indexes built (store.c) */
		if (ss.audit_upgraded > 0)
			FBX_LOGI("store upgraded: %llu audit records indexed",
			    (unsigned long long)ss.audit_upgraded);
	}
	rc = fbxi_rebuild(e);
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
	fbxi_clear_memory(e);
	fbxi_settle_free(e);
	fbxi_idmap_fini(&e->supersede);
	fbxi_idmap_fini(&e->skinds);
	fbxi_idmap_fini(&e->rollouts);
	fbxi_idmap_fini(&e->sweeping);
	fbxi_idmap_fini(&e->rbd);
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
		fbxi_gw_free(g);
	}
	fbxi_out_discard(e);
	fbxi_held_discard(e);
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
