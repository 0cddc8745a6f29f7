/*
 * engine_int.h: what the engine's source files share: the in-memory
 * structures of the dispatch loop and the internal functions one file
 * calls in another (fbxi_ prefix). Internal to dispatcher/.
 */
#ifndef FBXI_ENGINE_INT_H
#define FBXI_ENGINE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <signal.h>

#include "fbx_engine.h"
#include "fbx_proto.h"
#include "fbx_store.h"
#include "dmap.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "safety.h"
#include "settle.h"
#include "supersede.h"

#define ENV_MAX FBX_IO_ENV_MAX /* envelope frames accepted */
#define RID_MAX FBX_IO_RID_MAX /* ZeroMQ routing ids are at most 255 bytes */
#define IN_MSGS_MAX 512 /* messages read per socket per turn */
/* bytes read per socket per turn: with results at ~15 bytes each this
 * keeps one write transaction to about half a million transitions */
#define IN_BYTES_MAX (8u * 1024 * 1024)
#define DISPATCH_MAX 16384 /* deliveries handed out per turn */
#define GW_BYTES_PER_TURN (256u * 1024) /* gateway input per turn */
/* A turn is shorter while a small organisation waits behind a big one
 * (a console request read, or an organisation with at most URGENT_MAX
 * deliveries queued or in flight while another has work): the small
 * one's submit and its result are each journaled at the end of a turn,
 * so the turn's length is its wait, twice. */
#define DISPATCH_SHORT 4096
/* gateway input a short turn handles: about 4,096 results, or 4 ms of
 * work; bigger messages after that wait for the next turn, smaller
 * RESULTS (a gateway answers small commands' deliveries in their own
 * batch) are handled now */
#define GW_BYTES_SHORT (32u * 1024)
#define SHORT_WORK_US 4000
#define GW_SMALL_BYTES 4096
/* an organisation whose few deliveries were sent this recently still
 * keeps turns short (small_waits) */
#define SMALL_WAIT_MS 2000
#define GW_MSG_SOFT_MAX (FBX_GATEWAY_MSG_MAX / 2) /* flush a batch here */
#define SWEEP_MAX 65536 /* expiries per turn */
#define QUANTUM 256 /* deliveries per organisation per round */
/* a command of at most this many deliveries is small: its deliveries
 * leave in their own DELIVERIES messages marked urgent, before the
 * turn's bulk ones, so a gateway can serve them first */
#define URGENT_MAX QUANTUM
#define COMMIT_RETRIES 4
/* redos of one turn for requests that failed on their own; past it the
 * rest of the turn's input waits for the next turn */
#define REDO_MAX 16
/* byte credit: what one gateway may have sent and not yet answered, so a
 * window of big payloads cannot pile up unbounded in its send queue */
#define GW_BYTES_INFLIGHT_MAX (256u * 1024 * 1024)
/* messages queued towards one gateway (ZMQ_SNDHWM): deliveries are
 * bounded by credit, this bounds ACKs and errors to a gateway that stops
 * reading */
#define GW_SNDHWM 4096

/* ---------------------------------------------------------------- types */

struct ring {
	uint64_t *v;
	size_t cap, head, len;
};

/* Per-organisation dispatch state: one FIFO per priority class, the
 * organisation's caps and what it has in flight. */
struct orgq {
	char org[FBX_ID_MAX + 1];
	struct ring r[FBX_PRIO_COUNT];
	size_t len; /* over all classes */
	struct orgq *hnext;
	int active; /* listed in eng->rr */
	struct fbx_rate_info rate;
	int rate_loaded;
	struct fbxi_bucket bucket;
	uint32_t inflight;
	int64_t sent_mono; /* when a delivery of it was last sent */
};

struct cmdc {
	struct fbx_command c;
	struct orgq *q;
	struct fbx_engine *eng;
	struct cmdc *xnext; /* expansion list */
	struct cmdc *dnext; /* the turn's dirty list */
	int dirty; /* on the turn's dirty list (fbxi_cmd_touch) */
	int stale; /* touched since the record was written
	              (fbxi_cmd_touch sets it; the submit that appends a
	              command after its inline expansion clears it): the
	              flush rewrites only these. Counts moved without a
	              touch (fbxi_count_move) wait for the next write, as
	              an open command's stored counts always have: the
	              cache holds the live ones (console.c, export.c) */
	int expired; /* TTL passed: sweeping deliveries to EXPIRED */
	uint32_t sweep_idx; /* next index the sweep looks at */
	int cancelling; /* rollout cancelled: queued ones to CANCELLED */
	uint32_t cancel_idx;
	/* the current rollout wave (memory; recounted at recovery) */
	uint32_t w_ok, w_fail, w_settled;
	uint16_t w_topcode;
	uint32_t w_topcode_n;
	int judge_off; /* an operator resumed this wave */
	/* a paused rollout's deliveries taken from the queues while it is
	 * paused (still QUEUED in the store): pushed back on resume
	 * (memory; recovery queues them again and dispatch parks them
	 * again) */
	uint64_t *parked;
	size_t nparked, parkcap;
	/* groups a rollback of one group's devices (--group) selected this
	 * command for while it was still expanding: the expansion creates
	 * the deliveries of their devices cancelled (kv
	 * rbx/<org>/<command>/<group>, fbxi_xgroup_add) */
	fbx_id *xgroups;
	uint32_t nxgroups;
	/* its supersede kind (supersede.c): the open commands of the same
	 * organisation, type, origin and payload; NULL for a command that
	 * does not supersede. Until it is indexed it is on the kind's list
	 * of unindexed members (knext, kprev) */
	struct fbxi_skind *kind;
	struct cmdc *knext, *kprev;
	int kindexed; /* its deliveries are in e->supersede */
	/* counts of SUCCEEDED, FAILED, EXPIRED at the last commit: what a
	 * turn adds goes to the outcome windows after it commits (fleet.c) */
	uint32_t ocounts[3];
};

struct gw {
	struct gw *next;
	uint8_t rid[RID_MAX];
	size_t rid_len;
	char id[FBX_ID_MAX + 1];
	fbx_id *orgs;
	size_t norgs;
	int all_orgs;
	uint32_t window;
	uint32_t unanswered; /* sent, no answer yet: uses credit */
	uint64_t ubytes; /* their encoded size, about: byte credit */
	int64_t last_seen; /* monotonic ms its last message was read */
	char principal[FBX_ID_MAX + 1]; /* the key's principal (issue 10) */
	char key[41];                   /* and the key itself */
	struct fbxi_dmap inflight; /* delivery id -> IF_VAL(orgq, stage) */
	int dead;
	int welcomed; /* a WELCOME left after a committed turn */
	/* delivery batches under construction this turn: [0] bulk, [1]
	 * urgent (small commands) */
	struct gw_batch {
		struct fbx_dlv_out *ob;
		fbx_id *obdev;
		size_t obn;
		size_t obbytes; /* its encoded size, roughly */
	} b[2];
};

/* A message read this turn is the transport's struct fbx_io_msg. */
#define inmsg fbx_io_msg

enum { OUT_CONSOLE = 0, OUT_GW = 1, OUT_GW_RAW = 2, OUT_EVENT = 3,
	OUT_LOG = 4 /* an info line (buf), logged once the turn committed */ };

struct outmsg {
	struct outmsg *next;
	int to_gw; /* OUT_* */
	struct fbx_event ev; /* OUT_EVENT */
	struct gw *gw; /* to_gw: the session (NULL if it left) */
	int nenv;
	size_t envlen[ENV_MAX];
	uint8_t env[ENV_MAX][RID_MAX];
	uint8_t *buf;
	size_t len;
	uint64_t *ids; /* a DELIVERIES message: the delivery ids it carries */
	size_t nids;
	int welcome; /* a WELCOME: the session may receive once it left */
	int ro; /* the answer to a read: it acknowledges nothing, so it
	         * is answered again when its turn's sync fails
	         * (fbxi_held_release) */
	uint64_t req_id; /* OUT_CONSOLE: the request it answers */
	int req_kind;
	int urgent; /* DELIVERIES of small commands: sent before the rest */
	const char *log_site; /* OUT_LOG: its rate limit's site */
};

/* The outputs of one committed turn, waiting for its sync. */
struct held_out {
	struct outmsg *head, *tail;
	uint64_t ticket; /* the commit they wait for */
	int events_reset; /* replace the events socket once they left */
	uint32_t submits; /* submits acknowledged by them */
	int64_t t_read_us; /* when their turn's input was read */
};

struct fbx_engine {
	struct fbx_engine_opts o;
	fbx_store *st;
	const struct fbx_io_ops *io_ops; /* the transport */
	void *io;
	volatile sig_atomic_t stop;
	int draining;
	int64_t drain_deadline;
	int64_t started_ms;

	struct fbxi_idmap cmds; /* command id -> struct cmdc * */
	struct cmdc *xhead, *xtail;

	struct orgq *qtab[1024];
	struct orgq **rr; /* organisations with queued deliveries */
	size_t rrlen, rrcap, rrpos;

	struct gw *gws;
	size_t gwrot; /* dispatch passes that sent: the gateway served first */

	struct inmsg *in;
	size_t nin, incap;
	struct outmsg *ohead, *otail;

	fbx_txn *txn; /* the open write transaction of this turn */
	int txn_err; /* first store error in this turn */
	/* per-request isolation: a console request runs in a child
	 * transaction; its own errors land here, not in txn_err */
	int in_request;
	int req_err;
	int out_ro; /* a read is answered: its outputs are marked ro */
	/* a request that changes state failed on its own: the whole turn
	 * is undone and redone with that request answered in advance
	 * (inerr), so nothing it changed in memory survives */
	int redo;
	size_t redo_at;     /* the input that failed */
	uint32_t redos;     /* in this turn: at most REDO_MAX */
	size_t in_limit;    /* inputs this attempt may handle */
	int *inerr;         /* per input: answer with this error, 0 = none */
	uint8_t *indef;     /* per input: left for the next turn */
	size_t inerrcap;
	size_t ndef;        /* inputs at the front of in[] left by the last
	                       turn (short turns) */
	int short_turn;     /* this turn is short: a small one waits */
	size_t nhandled; /* inputs of this turn handled so far */
	/* gateway sessions survive a failed turn: the in-flight map changes
	 * of the turn, undone if it does not commit */
	struct gw_undo *undo;
	size_t nundo, undocap;
	struct gw *graveyard; /* reaped this turn, freed after it */
	/* deliveries a lost process left SENT/ACCEPTED, journaled QUEUED
	 * (and queued) in the next write turns */
	uint64_t *rq;
	size_t nrq, rqpos;
	/* deliveries journaled SENT whose message did not leave (the send
	 * queue was full): back to QUEUED in the next turn */
	uint64_t *unsent;
	size_t nunsent, unsentcap;
	int64_t gw_drained; /* monotonic ms the gateway input was last empty */
	int64_t retry_at; /* after a failed turn: no write turn before */
	int64_t retry_last; /* mono ms of the last retry turn */
	uint32_t fail_streak;
	uint64_t avail_at_fail; /* disk bytes available at the last
	                         * DISK_FULL (fbx_store_disk_avail) */
	int full_wait; /* a turn failed with DISK_FULL and no retry has
	                * seen space freed since: kept apart from
	                * degraded_err, which a failed sync overwrites */
	int degraded; /* the store cannot be written: answer with errors */
	int degraded_err;
	/* a read-only turn (degraded): a brake (a breaker trip, a rollout
	 * pause) is not refused but waits for the next retry turn, which
	 * may commit (retry turns keep sending what is due: staged waves
	 * went out while every trip was refused). brake_defer: the handler
	 * may leave one waiting; brake_waits: it just did */
	int brake_defer, brake_waits;
	/* a commit in doubt (FBX_ETIMEOUT): memory is read again once the
	 * next write transaction holds the writers' lock, which that
	 * commit's transaction held until it ended, so the store then shows
	 * whether it committed (until the server ends the old session, the
	 * writer cannot even connect: store_pg.c owner_lock) */
	int doubt;
	int need_rebuild; /* memory is empty: rebuild before writing */
	/* cluster mode: the store was reopened and no lease tick has
	 * worked since, so it owns nothing yet (recover ticks first) */
	int leases_unknown;
	/* cluster mode (issue 13): several nodes share a PostgreSQL store;
	 * this one acts for the organisations it holds leases on */
	int cluster;
	int64_t next_lease;     /* mono ms of the next lease tick */
	int lease_gained;       /* this turn took over an organisation:
	                           load it (rebuild) after the commit */
	uint64_t lease_changes; /* ticks that changed the owned set */
	uint64_t fenced;        /* commits refused: a lease was taken */
	int check_resets;       /* look for global resets made elsewhere */
	int lease_stale;        /* out_flush: leases may have run out */

	struct fbx_rate_info grate; /* org "*": global caps */
	struct fbxi_bucket gbucket;
	uint64_t inflight_all;
	uint64_t audit_seq; /* last audit record */
	uint8_t audit_last[32]; /* its hash */
	struct fbxi_abent *abatch; /* submits of this turn not audited yet */
	size_t nabatch, abatchcap;
	uint64_t prune_next; /* retention: next command id to look at */
	uint64_t *pkeep; /* retention: older commands kept (held, open) */
	size_t npkeep, pkeepcap, pkeep_pos;
	int prune_ran; /* in this turn: restore on failure */
	uint64_t prune_next0;
	size_t npkeep0;
	uint64_t last_cmd_id; /* highest command id journaled */
	int64_t next_prune;
	int64_t next_approval_prune;
	int64_t next_audit_prune; /* audit retention: once a minute */

	uint64_t commits, dlv_sent, results_in, ignored_results;
	uint64_t turn_max_us, turns_failed; /* for status */
	int64_t now; /* wall clock: what is journaled */
	int64_t mono; /* monotonic: timeouts */
	int64_t next_sweep;
	int stalled; /* queued work but nothing could be sent (caps) */
	int64_t next_tick; /* idle: the next turn for timers */
	uint32_t xbudget; /* deliveries this turn may still create */
	uint32_t dispatch_max; /* deliveries this turn may hand out */
	int xidle; /* the last expansion step created nothing: every
	              expanding command waits for gateway room */
	/* registered certificates (certs.c; loaded at rebuild) and the
	 * monotonic time of their next check */
	struct fbxi_certs *certs;
	int64_t next_cert_check;
	/* fleet check-in health (fleet.c, issue 12): aggregates of the
	 * registry walked in slices, alert state of the fleet rules */
	struct fbxi_fleet *fleet;
	/* delivery outcomes per organisation and type (outcomes.c): the
	 * turn's changes wait in outq until it commits; the silence check
	 * runs once a minute */
	struct fbxi_outcomes *outcomes;
	struct fbxi_out_delta *outq;
	size_t noutq, outqcap;
	int64_t next_outcome_check;
	/* automatic lock-type commands in their settle window, by due time
	 * (settle.c; memory, rebuilt with the command cache) */
	struct fbxi_theap settle;
	/* turn cost proportional to change (issue 11): the commands changed
	 * in this turn (journaled by flush_commands), those that ended in it
	 * (freed after the commit), the staged rollouts, the commands whose
	 * deliveries are being swept (expired or cancelled) and the expiry
	 * times of every cached command; rebuilt with the cache */
	struct cmdc *dirty;
	uint64_t *reap;
	size_t nreap, reapcap;
	struct fbxi_idmap rollouts;  /* command id -> struct cmdc * */
	struct fbxi_idmap sweeping;  /* command id -> struct cmdc * */
	/* withdrawn deliveries (fbxi_dlv_withdrawn): memory, from the kv
	 * records "rbd/<org>/<command>/<delivery>" */
	struct fbxi_idmap rbd;
	struct fbxi_theap expiry;
	/* devices enrolled in every organisation (the global breaker's
	 * fleet-wide share); counted at rebuild, kept by enroll/remove */
	uint64_t fleet_total;
	/* the latest open delivery per (org, device, type, payload) of the
	 * commands that supersede (supersede.c; memory, rebuilt) */
	struct fbxi_idmap supersede;
	/* kind key -> struct fbxi_skind *: a command's deliveries enter the
	 * index above only once another open command of its kind exists */
	struct fbxi_idmap skinds;
	uint64_t superseded; /* deliveries superseded since start */
	uint64_t sx_builds;  /* commands whose deliveries were indexed late */
	uint64_t sx_read;    /* deliveries read for those */
	/* entries of commands that left the cache stay in the index until
	 * it reaches sx_sweep_at entries; a sweep then drops them and sets
	 * the next one at twice what stays, at least sx_sweep_min (65,536;
	 * tests lower it) */
	size_t sx_sweep_at, sx_sweep_min;
	uint64_t sx_sweeps;   /* sweeps since start */
	uint64_t sx_dropped;  /* entries they dropped */
	/* principals (auth.c, issue 10): the table the ZAP handler reads,
	 * reloaded after a turn that changed it commits; refusals */
	struct fbxi_auth *auth;
	int auth_dirty;
	int events_reset_due; /* a key stopped holding: end the events
	                         subscriptions after the turn's output */
	uint64_t auth_refused;   /* console and gateway refusals */
	/* the warn line of refused gateway messages, once per key name and
	 * 10 s: a gateway whose key was revoked or rotated keeps sending
	 * (heartbeats, results) until its operator notices */
	struct gw_refused {
		char user[FBX_IO_USER_MAX];
		int64_t ms;     /* its last line */
		uint64_t quiet; /* refusals not logged since */
	} gw_refused[8]; /* the keys seen last (the oldest line makes room) */
	uint64_t forged_results; /* results for another key's deliveries */
	/* metrics (issue 12, engine_live.c): durations of committed turns
	 * and of their commits; the open breakers the last scan of the
	 * store found (at most once a second: FBXI_METRICS_BRK_SCAN_MS) */
	struct fbx_metrics_hist m_turn, m_commit;
	struct fbx_metrics_hist m_ack, m_result; /* submit to ack, to result */
	uint32_t turn_submits; /* submits answered in this attempt */
	int64_t t_read_us; /* when the turn's input was read (mono us) */
	/* full durability over ZeroMQ: turns commit with MDB_NOMETASYNC
	 * and their outputs wait in held[] (oldest first) until the syncer
	 * has made their commit durable (syncer.h, output.c fbxi_out_hold) */
	int use_syncer; /* the store is opened for it (NOMETASYNC) */
	struct fbxi_syncer *syncer; /* NULL while the store is reopened */
	struct held_out *held;
	size_t nheld, heldcap;
	uint64_t commit_ticket; /* commits made with the syncer */
	int force_commit; /* a sync failed: the next turn commits a change */
	uint64_t syncs_failed;
	uint32_t sync_fail_streak; /* failed syncs since one succeeded */
	uint64_t sync_cover; /* the last commit when a sync failed */
	uint64_t sync_durable; /* kept while the store is reopened */
	int64_t m_brk_at; /* monotonic ms of the last scan, 0 = never */
	int m_brk_valid;
	int m_brk_trunc;
	uint64_t m_brk_open;
	size_t m_nbrk;
	struct {
		char org[FBX_ID_MAX + 1];
		char reason[FBX_ID_MAX + 1];
	} m_brk[FBX_METRICS_BRK_MAX];
};
#define FBXI_METRICS_BRK_SCAN_MS 1000

struct gw_undo {
	struct gw *g;
	uint64_t id;
	uint64_t v; /* the value before; 0 = absent */
};

/* ---- the in-flight map */
/* In-flight map values: the organisation's queue with the delivery's
 * stage in the low bits (1 = sent, unanswered; 2 = accepted). */
#define IF_SENT 1u
#define IF_ACCEPTED 2u
#define IF_VAL(q, st) ((uint64_t)(uintptr_t)(q) | (st))
#define IF_STAGE(v) ((unsigned)((v)&3u))
#define IF_SEEN 4u /* rebuild: matched a SENT/ACCEPTED record */
#define IF_ORGQ(v) ((struct orgq *)(uintptr_t)((v) & ~(uint64_t)7))

/* ---- records and walks more than one file uses */
/* A refused submission ("rej/<org>/<token>") and its approval
 * ("appr/<org>/<token>"). */
struct approval_rec {
	uint32_t version;
	uint32_t used;
	int64_t at_ms;
	int64_t expires_ms;
	uint64_t count, cap;
	char submitter[FBX_ID_MAX + 1];
	char approver[FBX_ID_MAX + 1];
	char note[FBX_NOTE_MAX];
};

/* Counting a target: devices, per platform and per group. */
struct count_ctx {
	int platform;
	uint32_t n;
	uint32_t per_platform[FBX_PLATFORM_COUNT];
	struct fbx_group_count *groups;
	size_t ngroups, cap;
	int tally_groups;
	/* a rollout through groups: count its stages (a device is in the
	 * first listed group it belongs to; the last stage is the rest) */
	const struct fbx_rollout_plan *stages;
	uint32_t per_stage[FBX_ROLLOUT_GROUPS_MAX + 1];
	int err;
	fbx_id missing; /* explicit targets: the first id not enrolled */
	/* a one-device target, when `one` is set: its device is read into
	 * *one (one_ok), so the expansion in the same transaction need not
	 * read it again */
	struct fbx_device *one;
	int one_ok;
};

struct rebuild_ctx {
	struct fbx_engine *e;
	struct cmdc *cc;
	int count_only; /* recount, queue nothing */
	fbx_txn *txn; /* the transaction to scan in */
	uint64_t *requeue;
	size_t nrequeue, cap;
	int err;
};

/* ---- core.c: error latch, command cache, outputs, clocks (calls only
 * queue.c, settle.c's heap insertion and supersede.c's join/leave) */
void fbxi_cmd_cache_free(struct fbx_engine *e, struct cmdc *cc);
uint32_t fbxi_cmd_open(const struct cmdc *cc);
void fbxi_out_copy_env(struct outmsg *o, const struct inmsg *in);
/* fbxi_mono_us, fbxi_clock - CLOCK_MONOTONIC in us; the engine's clock
 * in ms (a test's, else the system's: monotonic for timeouts and
 * liveness, else wall time, what is journaled). fbxi_retry_delay - the
 * backoff after failed turns or syncs. */
static inline int64_t
fbxi_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
int64_t fbxi_clock(const struct fbx_engine *e, int monotonic);
int64_t fbxi_retry_delay(uint32_t streak);

/* ---- queue.c: organisation queues and caps (calls nothing above) */
uint64_t fbxi_ring_pop(struct ring *r);
void fbxi_orgq_clear(struct orgq *q);
int fbxi_rate_load(fbx_txn *txn, const char *org, struct fbx_rate_info *out);

/* ---- expand.c: targets into deliveries */
void fbxi_expand_step(struct fbx_engine *e);

/* fbxi_dlv_cost - about what one delivery of cc takes in a DELIVERIES
 * message: its command's payload, org and device ids, framing. The one
 * measure of batch size and byte credit. */
static inline uint64_t
fbxi_dlv_cost(const struct cmdc *cc)
{
	return (cc != NULL ? cc->c.payload_len : 0) + 2 * FBX_ID_MAX + 64;
}

/* A read-only request that walks much of the store (an audit verify
 * slice, an export page) stops after about this much time in the turn,
 * whatever its record or byte budget, and says where to go on: on a
 * loaded machine the same slice takes several times longer, and every
 * other client and gateway waits for the turn (issue 8: bounded turns).
 * Real time, not the engine's clock (which tests may fake). */
#define FBXI_READ_SLICE_US 50000

/* fbxi_deadline_us - CLOCK_MONOTONIC us after us from now */
static inline int64_t
fbxi_deadline_us(int64_t us)
{
	return fbxi_mono_us() + us;
}

/* fbxi_past_us - whether CLOCK_MONOTONIC is past deadline (0: never) */
static inline int
fbxi_past_us(int64_t deadline)
{
	return deadline != 0 && fbxi_deadline_us(0) >= deadline;
}

/* ---- gateway.c: session in-flight maps and the turn's undo log */
int fbxi_gw_undo_push(struct fbx_engine *e, struct gw *g, uint64_t id, uint64_t v);
int fbxi_gw_undo_note(struct fbx_engine *e, struct gw *g, uint64_t id);
int fbxi_gw_if_add(struct fbx_engine *e, struct gw *g, uint64_t id, uint64_t v);
int fbxi_gw_if_drop(struct fbx_engine *e, struct gw *g, uint64_t id, uint64_t v);
int fbxi_gw_live(struct fbx_engine *e, const struct gw *g);
void fbxi_gw_recount(struct fbx_engine *e, struct gw *g);
void fbxi_gw_undo_apply(struct fbx_engine *e);
struct gw *fbxi_gw_holder(struct fbx_engine *e, uint64_t id, uint64_t *v);
uint64_t fbxi_dlv_bytes(struct fbx_engine *e, uint64_t id);
int64_t fbxi_gw_room(struct fbx_engine *e, struct orgq *q);
/* fbxi_org_share - an organisation's cap on deliveries in flight under
 * org_share, given the windows of the gateways serving it: that share of
 * them, at least 1,024; UINT64_MAX when org_share is off. One formula for
 * dispatch (org_share_cap) and the expansion's room (fbxi_gw_room). */
uint64_t fbxi_org_share(const struct fbx_engine *e, uint64_t win);
/* fbxi_org_share_off - org_share is off (no cap, no windows to sum) */
static inline int
fbxi_org_share_off(const struct fbx_engine *e)
{
	return e->o.org_share_ppm == 0 || e->o.org_share_ppm >= FBX_PPM;
}
void fbxi_gw_answered(struct fbx_engine *e, struct gw *g, struct cmdc *cc, uint64_t id);

/* ---- gwsession.c: sessions: lookup, organisations served (inline), liveness,
 * requeue (above delivery.c, which calls gateway.c) */
struct gw *fbxi_gw_by_rid(struct fbx_engine *e, const uint8_t *rid, size_t len);
/* fbxi_gw_serves - whether g serves org (inline: once per result and
 * per organisation in each dispatch pass) */
static inline int
fbxi_gw_serves(const struct gw *g, const char *org)
{
	if (g->all_orgs)
		return 1;
	for (size_t i = 0; i < g->norgs; i++) {
		if (strcmp(g->orgs[i], org) == 0)
			return 1;
	}
	return 0;
}
int fbxi_requeue_one(struct fbx_engine *e, struct cmdc *cc, uint64_t id,
    unsigned from, int left);
void fbxi_gw_requeue(struct fbx_engine *e, struct gw *g);
void fbxi_gw_mark_dead(struct fbx_engine *e, struct gw *g, const char *why);
void fbxi_gw_free(struct gw *g);
void fbxi_gw_reap(struct fbx_engine *e);

/* ---- output.c: what leaves after the commit (sent, or held for the
 * syncer's fsync), and the messages the engine sends a gateway */
void fbxi_out_discard(struct fbx_engine *e);
void fbxi_out_flush(struct fbx_engine *e);
void fbxi_ack_latency(
    struct fbx_engine *e, uint32_t submits, int64_t t_read_us);
void fbxi_out_hold(struct fbx_engine *e, uint64_t ticket);
void fbxi_out_leave(struct fbx_engine *e);
void fbxi_held_release(struct fbx_engine *e);
void fbxi_held_forget_gw(struct fbx_engine *e, const struct gw *g);
void fbxi_held_discard(struct fbx_engine *e);
void fbxi_gw_send(
    struct fbx_engine *e, struct gw *g, const struct fbx_eng_msg *m);
void fbxi_gw_send_raw_error(struct fbx_engine *e, const struct inmsg *in,
    int err, const char *msg);

/* ---- gwmsg.c: a gateway's messages (HELLO, results, check-ins) */
void fbxi_handle_gateway(struct fbx_engine *e, const struct inmsg *in);

/* how far ahead a batch loop loads the in-flight map slots it will use
 * (results in gwmsg.c, sends in dispatch.c) */
#define PREFETCH_AHEAD 8

/* ---- dispatch.c: queued deliveries to gateways within credit and caps */
void fbxi_dispatch_step(struct fbx_engine *e);
int fbxi_work_pending(struct fbx_engine *e);

/* ---- sweep.c: expiry and cancel sweeps; journal the turn's changed
 * commands, free the ones that ended after the commit */
void fbxi_sweep_step(struct fbx_engine *e);
void fbxi_flush_commands(struct fbx_engine *e);
void fbxi_reap_done(struct fbx_engine *e);

/* ---- recovery.c: memory rebuilt from the store; lost deliveries
 * requeued in slices */
void fbxi_clear_memory(struct fbx_engine *e);
int fbxi_rebuild(struct fbx_engine *e);
void fbxi_rq_step(struct fbx_engine *e);
void fbxi_unsent_step(struct fbx_engine *e);

/* ---- retention.c: pruning past the retention period, in slices */
void fbxi_prune_approvals(struct fbx_engine *e);
void fbxi_prune_settle(struct fbx_engine *e, int committed);
void fbxi_prune_step(struct fbx_engine *e);

/* ---- shared functions: engine.c (the loop), the safety controls
 * (alerts.c, breaker.c, limit.c, target.c, dryrun.c, rollout.c), the
 * audit trail (audit.c, audit_query.c, audit_archive.c), rollback.c
 * (policy memory, rollback slices), rollback_run.c, replay.c, export.c.
 * Each is documented at its definition. */
void fbxi_audit(struct fbx_engine *e, const char *org, const char *actor,
    const char *action, const char *note, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* fbxi_audit_params_json - audit parameters (text) as jansson writes
 * them; text that is not JSON becomes {"text": ...} */
void fbxi_audit_params_json(const char *action, char *params, size_t cap);
/* Submit records are batched per turn (audit.c): fbxi_audit_submit keeps
 * the command's fields; fbxi_audit_flush writes what is kept, several
 * submits of one organisation, actor and note in a record; every other
 * record (fbxi_audit) and every commit flushes first, so the chain keeps
 * the order of the actions. A flush's error is the turn's (latched in
 * txn_err also inside a request: the records are several requests'),
 * returned. fbxi_audit_drop forgets what is kept (the turn's transaction
 * was aborted); fbxi_audit_batch_free at close. */
void fbxi_audit_submit(struct fbx_engine *e, const char *org,
    const char *actor, const struct fbx_command *c, uint32_t devices);
int fbxi_audit_flush(struct fbx_engine *e);
void fbxi_audit_drop(struct fbx_engine *e);
void fbxi_audit_batch_free(struct fbx_engine *e);
int fbxi_audit_decode(uint64_t seq, const uint8_t *rec, size_t len,
    struct fbx_audit_rec *out, uint8_t prev[32], uint8_t hash[32]);
int fbxi_audit_load_last(struct fbx_engine *e, fbx_txn *txn);
int fbxi_breaker_gate(struct fbx_engine *e, struct fbx_command *c,
    uint32_t ndev, uint32_t fleet, int over_limit, int *held);
int fbxi_brk_load(fbx_txn *txn, const char *org, const char *reason,
    struct fbxi_breaker *b, int *exists);
struct cmdc *fbxi_cmd_cache_add(
    struct fbx_engine *e, const struct fbx_command *c);
struct cmdc *fbxi_cmd_find(struct fbx_engine *e, uint64_t id);
void fbxi_cmd_maybe_done(struct cmdc *cc);
/* fbxi_cmd_enlist - on the turn's dirty list without a record change:
 * the end of the turn notes its delivery outcomes (fbxi_outq_note) and
 * whether it ended, and writes its record only if it is stale */
static inline void
fbxi_cmd_enlist(struct cmdc *cc)
{
	if (!cc->dirty) {
		cc->dirty = 1;
		cc->dnext = cc->eng->dirty;
		cc->eng->dirty = cc;
	}
}

/* fbxi_cmd_touch - the command's record changed: journal it at the end
 * of the turn (the turn's dirty list) */
static inline void
fbxi_cmd_touch(struct cmdc *cc)
{
	cc->stale = 1;
	fbxi_cmd_enlist(cc);
}
/* fbxi_cmd_cancel - its unsent deliveries go to CANCELLED (swept in
 * slices) */
void fbxi_cmd_cancel(struct fbx_engine *e, struct cmdc *cc);
/* Withdrawn deliveries. A rollback that executes withdraws each
 * delivery of a selected command that is sent, on its first attempt and
 * not yet accepted (and does not stand in for an older command): the
 * device cannot have had it from anyone but the gateway holding it. While
 * that holds, the engine ends it CANCELLED where it would otherwise send
 * it again to a device that never got it: the device checks in after its
 * gateway reported it offline (handle_checkins), or its message never
 * left (fbxi_requeue_one with left = 0); unless it superseded, while it
 * was out, a delivery of an older command that was not rolled back and
 * still wants the device (fbxi_supersede_carries): it is sent then. The
 * mark goes when the device may have it after all: the key it was sent
 * to reports it accepted, succeeded or failed (also after the offline
 * report: results may come out of order),
 * or it comes back unanswered from a gateway that may have passed it on
 * (sent again with its id, so that its outcome is learnt); when a replay
 * sends it again on purpose; and when it ends (fbxi_dlv_move to a final
 * state). */
/* fbxi_dlv_withdrawn - whether delivery id is withdrawn. */
int fbxi_dlv_withdrawn(const struct fbx_engine *e, uint64_t id);
/* fbxi_dlv_withdraw - an executed rollback withdraws delivery id of org:
 * remember it (kv and memory). @return FBX_OK or a store error. */
int fbxi_dlv_withdraw(struct fbx_engine *e, const char *org, uint64_t id,
    uint64_t rbseq);
/* fbxi_dlv_unwithdraw - forget that mark, if any. @return FBX_OK or a
 * store error. */
int fbxi_dlv_unwithdraw(struct fbx_engine *e, const char *org, uint64_t id);
/* fbxi_dlv_unwithdraw_by - forget it on the word of a session that does
 * not hold the delivery: only if principal is the key whose gateway held
 * it when it was withdrawn. @return FBX_OK or a store error. */
int fbxi_dlv_unwithdraw_by(struct fbx_engine *e, const char *org,
    uint64_t id, const char *principal);
/* fbxi_dlv_withdrawn_load - fill e->rbd from the store (rebuild). */
int fbxi_dlv_withdrawn_load(struct fbx_engine *e, fbx_txn *txn);
/* fbxi_dlv_withdrawn_prune - forget the withdrawn deliveries of command
 * cmd_id (it is being pruned), at most *budget of them (fbxi_kv_delete_some).
 * @return FBX_OK or a store error. */
int fbxi_dlv_withdrawn_prune(struct fbx_engine *e, const char *org,
    uint64_t cmd_id, uint32_t *budget);
/* fbxi_in_doubt_msg - the answer to a write whose turn's commit is in
 * doubt (PostgreSQL: the connection went after COMMIT; FBX_ETIMEOUT) */
extern const char fbxi_in_doubt_msg[];
void fbxi_console_error(struct fbx_engine *e, const struct inmsg *in,
    uint64_t reqid, int kind, int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void fbxi_console_reply(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_rep *rep);
void fbxi_count_move(struct cmdc *cc, int from, int to);
void fbxi_dry_run(struct fbx_engine *e, const struct inmsg *in,
    struct fbx_console_req *req, struct fbx_command *c, uint32_t fleet,
    struct count_ctx *k);
/* dev: the device of a one-device target read in this transaction, or
 * NULL */
void fbxi_expand_inline(
    struct fbx_engine *e, struct cmdc *cc, const struct fbx_device *dev);
void fbxi_handle_approve(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_audit_list(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_audit_verify(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_breaker(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_export(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_limit(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_list_held(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_list_orgs(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_rate(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_replay(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_rollback(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_handle_rollout(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
void fbxi_inflight_release(struct fbx_engine *e, uint64_t v);
void fbxi_gw_drop(struct fbx_engine *e, uint64_t id);
int fbxi_limit_gate(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, struct fbx_command *c, uint32_t ndev,
    uint32_t fleet);
int fbxi_limit_uncount(struct fbx_engine *e, struct fbx_command *c);
int fbxi_limit_settled(struct fbx_engine *e, struct fbx_command *c,
    uint64_t *would, uint32_t *cap, uint32_t *ndev);
int fbxi_limit_over(struct fbx_engine *e, const struct fbx_command *c,
    uint32_t ndev, uint32_t fleet, int *over);
void fbxi_note_printf(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct orgq *fbxi_orgq_get(struct fbx_engine *e, const char *org);
/* fbxi_orgq_find - the organisation's queue if it has one, else NULL */
struct orgq *fbxi_orgq_find(struct fbx_engine *e, const char *org);
void fbxi_orgq_load_rate(struct fbx_engine *e, struct orgq *q);
int fbxi_orgq_push(
    struct fbx_engine *e, struct orgq *q, int prio, uint64_t id);
struct outmsg *fbxi_out_new(struct fbx_engine *e);
/* fbxi_out_log - an info log line that says what the turn did: written
 * when the turn's outputs leave (after its commit), never for a turn
 * that failed or was done again. */
void fbxi_out_log(struct fbx_engine *e, const char *site, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
void fbxi_out_truncate(struct fbx_engine *e, struct outmsg *mark);
void fbxi_policy_applied(
    struct fbx_engine *e, struct cmdc *cc, const char *device);
int fbxi_priority_of(const struct fbx_command *c);
int fbxi_rate_save(fbx_txn *txn, const struct fbx_rate_info *ri);
const char *fbxi_reason_of(const struct fbx_command *c);
/* cluster.c (cluster mode, issue 13) */
int fbxi_cluster_tick(struct fbx_engine *e);
int fbxi_cluster_heads(struct fbx_engine *e);
int fbxi_brk_global_hold(struct fbx_engine *e, struct cmdc *cc, int *held);
void fbxi_cluster_resets(struct fbx_engine *e);
int fbxi_reset_order_save(fbx_txn *txn, const char *reason, int64_t at_ms,
    int discard, const char *actor, const char *note);
/* limit.c: the limit's configuration and window of use, for the dry
 * run (dryrun.c) */
int fbxi_limit_cfg_load(fbx_txn *txn, const char *org, int type,
    struct fbxi_limit_cfg *out, int *own);
int fbxi_limit_use_load(fbx_txn *txn, const char *org, int type,
    uint32_t window_s, int64_t since_ms, int64_t now_ms,
    struct fbxi_window *w);

/* breaker.c (records, held commands: also cluster.c's), delivery.c (a
 * rollout's tallies), rollout.c (the loop's step), alerts.c (output.c
 * runs them) and core.c (events) */
int fbxi_brk_save(fbx_txn *txn, const char *org, const char *reason,
    const struct fbxi_breaker *b);
int fbxi_release_held(struct fbx_engine *e, struct cmdc *cc, const char *who,
    const char *note, int64_t at_ms, int *refused);
int64_t fbxi_release_wave_at(int64_t now, uint32_t i);
int fbxi_cmp_cc_id(const void *a, const void *b);
void fbxi_ro_tally(
    struct cmdc *cc, uint64_t id, int from, int to, uint16_t code);
int fbxi_ro_park(struct fbx_engine *e, struct cmdc *cc, uint64_t id);
/* fbxi_ro_judged_load - cc's judge_off from the store (kv rojd/, written
 * by a resume: the wave an operator judged); fbxi_ro_judged_prefix - its
 * key, pruned with the command */
int fbxi_ro_judged_load(fbx_txn *txn, struct cmdc *cc);
void fbxi_ro_judged_prefix(char *k, size_t cap, const char *org,
    uint64_t cmd);
void fbxi_rollout_step(struct fbx_engine *e);
void fbxi_run_alert(struct fbx_engine *e, const struct fbx_event *ev);
void fbxi_event(struct fbx_engine *e, int kind, const char *org,
    const char *reason, const char *actor, uint64_t cmd_id, uint64_t count,
    uint64_t limit, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
/* emit_event - the name the safety controls (breaker.c, limit.c,
 * rollout.c) use for fbxi_event */
#define emit_event fbxi_event
void fbxi_set_err(struct fbx_engine *e, int rc);
/* fbxi_err - the latched error of what runs now (a request or the turn) */
static inline int
fbxi_err(const struct fbx_engine *e)
{
	return e->in_request ? e->req_err : e->txn_err;
}
int fbxi_target_count(struct fbx_engine *e, const struct fbx_command *c,
    uint32_t fleet, struct count_ctx *k);
void fbxi_xlist_add(struct fbx_engine *e, struct cmdc *cc);
void fbxi_xlist_remove(struct fbx_engine *e, struct cmdc *cc);
int fbxi_rebuild_dlv_cb(void *arg, const struct fbx_delivery *d);

void fbxi_handle_console(struct fbx_engine *e, const struct inmsg *in);
/* fbxi_req_reads_only - requests that never write (served on a full
 * disk, and while the engine is degraded when the store can be read) */
int fbxi_req_reads_only(const struct fbx_console_req *r);
/* fbxi_handle_submit - the admission pipeline (admit.c) */
void fbxi_handle_submit(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req);
/* fbxi_kv_delete_some - delete the records under prefix, at most *budget
 * of them (budget NULL: all), *budget less what was deleted; each (may be
 * NULL) is called with each key before it goes (val NULL). @return FBX_OK,
 * FBX_ENOMEM (nothing deleted), or a store error. fbxi_kv_delete_prefix -
 * all of them. */
int fbxi_kv_delete_some(struct fbx_engine *e, const char *prefix,
    uint32_t *budget, fbx_kv_fn each, void *arg);
int fbxi_kv_delete_prefix(struct fbx_engine *e, const char *prefix);
/* Rollback markers: kv comp/<org>/<command>/<delivery> = the id of the
 * command that compensated the delivery (rollback execute; pruned with
 * <command>). fbxi_comp_get - @return FBX_OK (*comp set, 0 if the value
 * is damaged), FBX_ENOT_FOUND, or a store error. fbxi_comp_put - @return
 * FBX_OK or a store error. fbxi_comp_prefix - the keys of command cmd. */
int fbxi_comp_get(fbx_txn *txn, const char *org, uint64_t dlv, uint64_t *comp);
int fbxi_comp_put(fbx_txn *txn, const char *org, uint64_t dlv, uint64_t comp);
void fbxi_comp_prefix(char *k, size_t cap, const char *org, uint64_t cmd);
/* Rolled back, left open: kv rbf/<org>/<command>/<delivery> = the id of
 * an executed rollback that selected the delivery and left it open (in a
 * gateway's hands, whatever its row: in flight, withdrawn, irreversible;
 * or standing in for an older command), for a command of a type that
 * supersedes (rollback.c rb_dlv_cb). Should the delivery wait for its
 * device again (reported offline) and a newer command of its kind
 * supersede it, the link says it is rolled back (supersede.c replace),
 * so that the newer one does not stand in for it. Removed by a replay
 * (sent again on purpose); pruned with <command>. fbxi_rbf_get -
 * @return FBX_OK (there), FBX_ENOT_FOUND, FBX_ECORRUPT (a value of
 * another size) or a store error. fbxi_rbf_put, fbxi_rbf_del (absence
 * is fine) - @return FBX_OK or a store error. */
int fbxi_rbf_put(fbx_txn *txn, const char *org, uint64_t dlv, uint64_t rbseq);
int fbxi_rbf_get(fbx_txn *txn, const char *org, uint64_t dlv);
int fbxi_rbf_del(fbx_txn *txn, const char *org, uint64_t dlv);
void fbxi_rbf_prefix(char *k, size_t cap, const char *org, uint64_t cmd);
/* fbxi_xgroup_add - rollback rbseq selected the devices of group in the
 * still expanding command cc: journaled (kv rbx/<org>/<command>/<group>,
 * pruned with the command) and remembered, so that the expansion creates
 * the deliveries of the group's devices it reaches from now on cancelled.
 * fbxi_xgroups_load - cc's groups from the store (rebuild).
 * fbxi_xgroup_has - dev is in one of cc's groups.
 * fbxi_xgroups_prefix - the kv prefix of command cmd's records */
int fbxi_xgroup_add(struct fbx_engine *e, struct cmdc *cc, const char *group,
    uint64_t rbseq);
int fbxi_xgroups_load(struct fbx_engine *e, fbx_txn *txn, struct cmdc *cc);
int fbxi_xgroup_has(const struct cmdc *cc, const struct fbx_device *dev);
void fbxi_xgroups_prefix(char *k, size_t cap, const char *org, uint64_t cmd);
int64_t fbxi_mono_ms(void);
/* fbxi_breakers_open - the open breakers (organisations' and global),
 * read from the store in the request's transaction (engine_live.c);
 * UINT32_MAX if they cannot be read */
uint32_t fbxi_breakers_open(struct fbx_engine *e);

/* ---- issue 8 (rollback.c, breaker.c, limit.c, audit.c, audit_query.c,
 * audit_archive.c): appended declarations */

/* fbxi_devtimes - per (org, device, family) the newest time a later
 * command reached a device, keyed by the exact identity (rollback.c).
 * fbxi_devtimes_hash is the bucket hash; tests may replace it to force
 * collisions. _note returns FBX_OK or FBX_ENOMEM; _get 1 and *t when
 * known, 0 otherwise. */
struct fbxi_devtimes;
struct fbxi_devtimes *fbxi_devtimes_new(void);
void fbxi_devtimes_free(struct fbxi_devtimes *dt);
int fbxi_devtimes_note(struct fbxi_devtimes *dt, const char *org,
    const char *dev, int fam, int64_t t);
int fbxi_devtimes_get(const struct fbxi_devtimes *dt, const char *org,
    const char *dev, int fam, int64_t *t);
extern uint64_t (*fbxi_devtimes_hash)(const char *org, const char *dev);

/* Hex of hashes in audit records, requests and archives (audit.c; used
 * by audit_query.c and audit_archive.c) */
int fbxi_audit_unhex(
    const char *s, size_t n, uint8_t *out, size_t cap, size_t *len);
int fbxi_audit_unhex32(const char *s, uint8_t out[32]);
void fbxi_audit_hex32(const uint8_t in[32], char out[65]);

/* Checked SHA-256 users (audit.c, limit.c): FBX_OK, FBX_ENOMEM or
 * FBX_ECRYPTO, output written only on success. fbxi_test_crypto_fail is
 * a test hook: while positive, each computation fails as if OpenSSL had
 * and the count goes down by one; fbxi_crypto_injected consumes it. */
extern int fbxi_test_crypto_fail;
int fbxi_crypto_injected(void);
int fbxi_audit_hash(
    uint64_t seq, const uint8_t *rec, size_t len, uint8_t out[32]);
int fbxi_approval_token(const struct fbx_command *c, char *out, size_t cap);

/* Audit pages and verify slices (audit_query.c), callable on a bare
 * transaction so tests run them without an engine. */
int fbxi_audit_list_page(fbx_txn *txn, const struct fbx_console_req *req,
    struct fbx_audit_rec *v, size_t cap, size_t *n, uint64_t *next_after);
int fbxi_audit_verify_slice(fbx_txn *txn, const struct fbx_console_req *req,
    uint64_t head, int can_write, struct fbx_console_rep *rep);

/* Audit retention (audit_archive.c). fbxi_audit_prune_slice - in the turn's
 * transaction e->txn, prune at most budget (capped at
 * FBX_AUDIT_PRUNE_SLICE) of the oldest audit records older than
 * cutoff_ms (by the audit_time index: every record before the first
 * whose running maximum of at_ms reaches the cutoff). A slice shorter
 * than budget waits until its oldest record is a day past the cutoff.
 * The records are checked (they link to the anchor and hash right),
 * written to <data_dir>/audit-archive/audit-<first>-<last>.jsonl and
 * made durable (file and directory fsync'ed) first; then deleted with
 * their index entries, the last becomes the anchor, the verify
 * checkpoint moves up to it if it was behind, and one "audit.prune"
 * record (org "*", actor "engine") is appended.
 * @param[out] pruned records deleted (0: nothing due); written on
 * FBX_OK only.
 * @return FBX_OK; without touching the store or latching the turn:
 * FBX_EIO / FBX_EDISK_FULL (the archive could not be written, a warning
 * is logged), FBX_ECORRUPT (the chain is broken in the slice, an error
 * is logged), FBX_ECRYPTO, FBX_ENOMEM, FBX_EINVALID (no data_dir); a
 * store error, which is latched with fbxi_set_err (the turn fails). */
#define FBX_AUDIT_PRUNE_SLICE 10000
int fbxi_audit_prune_slice(struct fbx_engine *e, int64_t cutoff_ms,
    uint32_t budget, uint32_t *pruned);

/* fbxi_audit_archive_check (audit_archive.c) - check archive lines read
 * from f: each line's record hashes right, links to the line before
 * (also across files: call again with the same c, zeroed before the
 * first file), the sequences are contiguous, the readable fields are
 * exactly what its "rec" says, and a record 1 links to zeros. The verdict is in c (why
 * empty: intact so far). @return FBX_OK, FBX_EIO (read error),
 * FBX_ECRYPTO, FBX_ENOMEM. */
struct fbxi_archive_check {
	uint64_t records;     /* lines found intact */
	uint64_t first_seq;   /* the first record */
	uint8_t first_prev[32]; /* what it links to (zeros for record 1) */
	uint64_t last_seq;    /* the last intact record */
	uint8_t last_hash[32]; /* its hash */
	uint64_t broken_at;   /* sequence of the first bad record, or 0 */
	uint64_t line;        /* lines read from the current file */
	char why[160];
};
int fbxi_audit_archive_check(FILE *f, struct fbxi_archive_check *c);

/* fbxi_breaker_trip_global - open the global breaker of reason with a
 * note (breaker.c; certs.c trips for a certificate about to expire):
 * see its definition. */
/* fbxi_brk_decode - a stored breaker record ("brk/<org>/<reason>") of
 * any version into b (breaker.c). @return FBX_OK, FBX_ECORRUPT. */
int fbxi_brk_decode(const void *val, size_t len, struct fbxi_breaker *b);

int fbxi_breaker_trip_global(struct fbx_engine *e, const char *reason,
    const char *who, const char *note, const char *cert, int *tripped);

#endif
