/*
 * supersede_rollback_test.c: a rollback never takes away a lock it did
 * not select, in-process on a fake clock (engine_fake.c), turn by turn:
 * - automatic lock L1 (reason r1) queues for device D while no gateway
 *   serves the organisation; automatic lock N of the same kind (type,
 *   origin, payload; reason r2, the same time to live) for D supersedes
 *   L1's delivery (SUPERSEDED, terminal, never sent);
 * - a rollback executed for reason r2 selects N, not L1: N's delivery
 *   for D carries L1's lock too, so the plan's row for it says NOTHING,
 *   not CANCEL, and the delivery stays QUEUED; a gateway that connects
 *   afterwards gets a lock for D;
 * - the control: device D2 with only an r2 lock (nothing superseded)
 *   is cancelled by the same rollback (its row says CANCEL) and gets
 *   nothing;
 * - once N's lock has succeeded on D, the same rollback run again does
 *   not undo it either (NOTHING, not COMPENSATE: no unlock journaled or
 *   sent), since the device's lock is L1's as well;
 * - the link from N's delivery to L1's is a record in the store, and
 *   retention prunes it with N;
 * - two rollbacks, of r1 then of r2, end with neither lock (L1's
 *   superseded delivery is marked rolled back by the first);
 * - a waiting N stands in for L1 while L1's time to live runs, also
 *   after retention pruned L1, and not after it ran out; a succeeded N
 *   stands in for an L1 that lived when N was first sent, and when its
 *   history no longer says when that was;
 * - the every-organisation rollback of a global incident marks the
 *   deliveries it leaves in a gateway's hands also in slices that hold
 *   nothing else to do (global_marks); the record that closes it holds
 *   the run's totals and, with the "rollback.orgs" records after it,
 *   every organisation's name once, each record whole JSON within 511
 *   bytes, the closing record's names in all the room its totals leave,
 *   with a long incident reason and a short one (global_record).
 * Automatic locks settle (30 s by default) before they expand; the test
 * lets the fake clock pass each window.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"
#include "engine_int.h" /* fbxi_brk_load, fbxi_brk_save */
#include "safety.h"

#define ORG "acme"
#define DEV_D 1u  /* locked by L1 (r1), then by N (r2) */
#define DEV_D2 2u /* locked by M (r2) only */
#define TTL_S 3600u

/* auto_lock_ttl - the detector's automatic lock of device dev of ORG for
 * reason, living ttl_s; @return the command's id, 0 on error. */
static uint64_t
auto_lock_ttl(struct env *t, unsigned dev, const char *reason,
    uint32_t ttl_s)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id ids[1];
	uint64_t id = 0;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = ttl_s;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason),
	    "%s", reason);
	snprintf(ids[0], sizeof(ids[0]), "%s-d%05u", ORG, dev);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = 1;
	console(t, "rule", ORG, &req);
	turn(t);
	rc = reply(t, "rule", &rep);
	if (rc == FBX_OK)
		id = rep.u.submit.command_id;
	CHECK(rc == FBX_OK && id != 0, "automatic lock of device %u (%s): %d",
	    dev, reason, rc);
	CHECK(rc != FBX_OK || rep.u.submit.state == FBX_C_SETTLING ||
	        rep.u.submit.state == FBX_C_EXPANDING ||
	        rep.u.submit.state == FBX_C_ACTIVE,
	    "automatic lock of device %u (%s) admitted: state %d (held?)",
	    dev, reason, rep.u.submit.state);
	fbx_console_rep_free(&rep);
	return id;
}

static uint64_t
auto_lock(struct env *t, unsigned dev, const char *reason)
{
	return auto_lock_ttl(t, dev, reason, TTL_S);
}

/* pass - let ms of fake time pass in 500 ms turns (settle windows) */
static void
pass(struct env *t, int64_t ms)
{
	for (int64_t done = 0; done < ms; done += 500) {
		advance(t, ms - done < 500 ? ms - done : 500);
		turn(t);
	}
}

/* rollback - a rollback of ORG's commands of reason (planned, or
 * executed); rep is the caller's to free. @return the reply's err. */
static int
rollback(struct env *t, const char *reason, int execute,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	snprintf(req.u.rollback.sel.reason, sizeof(req.u.rollback.sel.reason),
	    "%s", reason);
	req.u.rollback.execute = execute;
	req.u.rollback.limit = 100;
	req.u.rollback.sliced = 1;
	snprintf(req.u.rollback.note, sizeof(req.u.rollback.note),
	    "supersede_rollback_test");
	console(t, "ops", ORG, &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* row_of - the plan's row for command cmd's delivery to device dev */
static const struct fbx_rb_row *
row_of(const struct fbx_rb_plan *p, uint64_t cmd, unsigned dev)
{
	char name[FBX_ID_MAX + 1];

	snprintf(name, sizeof(name), "%s-d%05u", ORG, dev);
	for (size_t i = 0; i < p->nrows; i++)
		if (p->rows[i].command_id == cmd &&
		    strcmp(p->rows[i].device, name) == 0)
			return &p->rows[i];
	return NULL;
}

static const char *
action_name(int a)
{
	static const char *const n[FBX_RB_COUNT] = { "none", "cancel",
		"compensate", "irreversible", "changed", "nothing",
		"done_before", "in_flight" };

	return a >= 0 && a < FBX_RB_COUNT ? n[a] : "?";
}

/* check_plan - the rows of a plan (dry run or executed) for reason r2:
 * N's for D is NOTHING (it carries L1's lock), M's for D2 is CANCEL. */
static void
check_plan(const char *what, const struct fbx_rb_plan *p, uint64_t n,
    uint64_t m)
{
	const struct fbx_rb_row *rn = row_of(p, n, DEV_D);
	const struct fbx_rb_row *rm = row_of(p, m, DEV_D2);

	CHECK(p->commands == 2, "%s: %u commands selected, want 2 (N, M)",
	    what, p->commands);
	CHECK(p->next_cursor == 0, "%s: next_cursor %llu, want one slice",
	    what, (unsigned long long)p->next_cursor);
	CHECK(rn != NULL, "%s: no row for N's delivery to D (%zu rows)", what,
	    p->nrows);
	if (rn != NULL)
		CHECK(rn->action == FBX_RB_NOTHING,
		    "%s: N's delivery to D (state %s) has action %s (%d), "
		    "want nothing: it carries superseded L1's lock (detail "
		    "'%s')",
		    what, fbx_dstate_name(rn->state),
		    action_name(rn->action), rn->action, rn->detail);
	CHECK(rm != NULL, "%s: no row for M's delivery to D2", what);
	if (rm != NULL)
		CHECK(rm->action == FBX_RB_CANCEL,
		    "%s: control: M's delivery to D2 (state %s) has action "
		    "%s (%d), want cancel",
		    what, fbx_dstate_name(rm->state),
		    action_name(rm->action), rm->action);
}

static void
test_supersede_rollback(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_rep rep;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t l1, n, m;
	size_t got_n = 0, got_m = 0, got_l1 = 0;
	int rc;

	CHECK(env_open(&t, "sxrb") == 0, "open");
	/* 300 devices: the breaker of each reason allows 3 automatic locks
	 * in its window (1%), the lock limit 30 (10%) */
	enroll(&t, ORG, 300);

	/* L1 (r1) for D settles, then queues: no gateway serves ORG */
	l1 = auto_lock(&t, DEV_D, "r1");
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l1, &c) == FBX_OK &&
	        c.counts[FBX_D_QUEUED] == 1,
	    "L1 queued after its settle window: state %d, queued %u, "
	    "pending %u",
	    c.state, c.counts[FBX_D_QUEUED], c.counts[FBX_D_PENDING]);

	/* N (r2) for D, M (r2) for D2: once settled, N supersedes L1 */
	n = auto_lock(&t, DEV_D, "r2");
	m = auto_lock(&t, DEV_D2, "r2");
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l1, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "(1) L1's delivery for D superseded: state %d, superseded %u, "
	    "queued %u",
	    c.state, c.counts[FBX_D_SUPERSEDED], c.counts[FBX_D_QUEUED]);
	CHECK(counts(&t, ORG, n, &c) == FBX_OK && c.counts[FBX_D_QUEUED] == 1,
	    "N queued for D: state %d, queued %u", c.state,
	    c.counts[FBX_D_QUEUED]);
	CHECK(counts(&t, ORG, m, &c) == FBX_OK && c.counts[FBX_D_QUEUED] == 1,
	    "M queued for D2: state %d, queued %u", c.state,
	    c.counts[FBX_D_QUEUED]);

	/* the plan for reason r2, a dry run */
	rc = rollback(&t, "r2", 0, &rep);
	CHECK(rc == FBX_OK, "(2) dry run for r2: err %d", rc);
	if (rc == FBX_OK)
		check_plan("(2) dry run", &rep.u.rollback, n, m);
	fbx_console_rep_free(&rep);

	/* executed: one request, one slice */
	rc = rollback(&t, "r2", 1, &rep);
	CHECK(rc == FBX_OK, "(2) executed rollback for r2: err %d", rc);
	if (rc == FBX_OK) {
		const struct fbx_rb_plan *p = &rep.u.rollback;
		CHECK(p->executed && p->rollback_id != 0,
		    "executed %d, rollback id %llu", p->executed,
		    (unsigned long long)p->rollback_id);
		check_plan("(2) executed", &rep.u.rollback, n, m);
	}
	fbx_console_rep_free(&rep);
	turn(&t);

	CHECK(counts(&t, ORG, n, &c) == FBX_OK &&
	        c.counts[FBX_D_QUEUED] == 1 && c.counts[FBX_D_CANCELLED] == 0,
	    "(3) N's delivery for D still queued after the rollback: state "
	    "%d, queued %u, cancelled %u",
	    c.state, c.counts[FBX_D_QUEUED], c.counts[FBX_D_CANCELLED]);
	CHECK(counts(&t, ORG, m, &c) == FBX_OK &&
	        c.counts[FBX_D_CANCELLED] == 1,
	    "control: M's delivery for D2 cancelled: state %d, queued %u, "
	    "cancelled %u",
	    c.state, c.counts[FBX_D_QUEUED], c.counts[FBX_D_CANCELLED]);
	CHECK(counts(&t, ORG, l1, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L1 stays superseded: superseded %u", c.counts[FBX_D_SUPERSEDED]);

	/* a gateway connects: D gets a lock (N's), D2 nothing */
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	turn(&t);
	drain_gw(&t, "g1", s);
	CHECK(s->welcomes == 1, "welcome %zu", s->welcomes);
	for (size_t i = 0; i < s->nids; i++) {
		uint64_t cid = FBX_DLV_CMD(s->ids[i]);
		got_n += cid == n;
		got_m += cid == m;
		got_l1 += cid == l1;
	}
	CHECK(got_n + got_l1 == 1,
	    "(4) the gateway got %zu lock(s) for D (N's %zu, L1's %zu) of "
	    "%zu deliveries, want 1: D ends with no lock",
	    got_n + got_l1, got_n, got_l1, s->nids);
	CHECK(got_m == 0, "control: D2's cancelled lock sent %zu times",
	    got_m);

	/* (5) N's lock succeeds on D; the rollback for r2 again: undoing
	 * it would unlock a device L1 locked for cause */
	if (s->nids == 1) {
		results(&t, "g1", 1, s->ids, 1, FBX_R_SUCCEEDED);
		turn(&t);
	}
	CHECK(counts(&t, ORG, n, &c) == FBX_OK &&
	        c.counts[FBX_D_SUCCEEDED] == 1,
	    "N's lock of D succeeded: succeeded %u",
	    c.counts[FBX_D_SUCCEEDED]);
	rc = rollback(&t, "r2", 1, &rep);
	CHECK(rc == FBX_OK, "(5) the rollback for r2 again: err %d", rc);
	if (rc == FBX_OK) {
		const struct fbx_rb_plan *p = &rep.u.rollback;
		const struct fbx_rb_row *rn = row_of(p, n, DEV_D);
		CHECK(rn != NULL && rn->action == FBX_RB_NOTHING,
		    "(5) N's succeeded lock of D: action %s, want nothing "
		    "(detail '%s')",
		    rn != NULL ? action_name(rn->action) : "(no row)",
		    rn != NULL ? rn->detail : "");
		CHECK(p->per_action[FBX_RB_COMPENSATE] == 0 &&
		        p->ncomp == 0,
		    "(5) %u compensations in %zu commands, want none",
		    p->per_action[FBX_RB_COMPENSATE], p->ncomp);
	}
	fbx_console_rep_free(&rep);
	turn(&t);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 0, "(5) %zu deliveries sent after the second "
	    "rollback, want none (an unlock of D?)", s->nids);
	free(s);

	/* (6) the link is stored; retention prunes it with N */
	CHECK(kv_records(&t, "sup/", 0) == 1, "(6) supersede links before retention");
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention");
	pass(&t, 120000);
	CHECK(counts(&t, ORG, n, &c) == FBX_ENOT_FOUND,
	    "(6) N not pruned by retention");
	CHECK(kv_records(&t, "sup/", 0) == 0, "(6) supersede links after retention");
	env_close(&t);
}

/* row_action - the action of the row for command cmd's delivery to dev
 * in a rollback for reason (executed or not); -1 without such a row */
static int
row_action(struct env *t, const char *reason, int execute, uint64_t cmd,
    unsigned dev, char *detail, size_t cap)
{
	struct fbx_console_rep rep;
	const struct fbx_rb_row *w;
	int a = -1;

	if (rollback(t, reason, execute, &rep) == FBX_OK) {
		w = row_of(&rep.u.rollback, cmd, dev);
		if (w != NULL) {
			a = w->action;
			snprintf(detail, cap, "%s", w->detail);
		}
	}
	fbx_console_rep_free(&rep);
	turn(t);
	return a;
}

/* two_runs - L1 (r1) rolled back first, then N (r2) that superseded it:
 * the second rollback cancels N (the link says L1 was rolled back, also
 * after retention pruned L1), so rolling back both in two runs ends with
 * neither, as one run would. */
static void
test_two_runs(void)
{
	struct env t;
	struct fbx_command c;
	char det[128] = "";
	uint64_t l1, n;
	int a;

	CHECK(env_open(&t, "sxrb2") == 0, "open");
	enroll(&t, ORG, 300);
	l1 = auto_lock(&t, DEV_D, "r1");
	pass(&t, 31000);
	n = auto_lock(&t, DEV_D, "r2");
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l1, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L1 superseded: %u", c.counts[FBX_D_SUPERSEDED]);
	a = row_action(&t, "r1", 1, l1, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING, "rollback of r1: L1's row %d (%s)", a,
	    det);
	/* L1 (done when superseded) is pruned before the second run: its
	 * rollback is remembered on the link, which lives with N */
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention");
	pass(&t, 120000);
	CHECK(counts(&t, ORG, l1, &c) == FBX_ENOT_FOUND, "L1 pruned");
	a = row_action(&t, "r2", 0, n, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_CANCEL,
	    "rollback of r2 after r1's: N's row %d (%s), want cancel", a,
	    det);
	a = row_action(&t, "r2", 1, n, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_CANCEL, "executed: N's row %d (%s)", a, det);
	CHECK(counts(&t, ORG, n, &c) == FBX_OK &&
	        c.counts[FBX_D_CANCELLED] == 1,
	    "N cancelled: %u", c.counts[FBX_D_CANCELLED]);
	env_close(&t);
}

/* two_runs_chain - as two_runs with L0 under L1: L1 superseded L0 (both
 * r1), N (r2) superseded L1; r1's rollback rolls back the whole chain
 * under N, so once retention pruned L0 and L1 with their links, r2's
 * rollback still cancels N (the link from N no longer says the chain
 * leads further) */
static void
test_two_runs_chain(void)
{
	struct env t;
	struct fbx_command c;
	char det[128] = "";
	uint64_t l0, l1, n;
	int a;

	CHECK(env_open(&t, "sxrbc") == 0, "open");
	enroll(&t, ORG, 300);
	l0 = auto_lock(&t, DEV_D, "r1");
	pass(&t, 31000);
	l1 = auto_lock(&t, DEV_D, "r1");
	pass(&t, 31000);
	n = auto_lock(&t, DEV_D, "r2");
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l0, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L0 superseded: %u", c.counts[FBX_D_SUPERSEDED]);
	CHECK(counts(&t, ORG, l1, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L1 superseded: %u", c.counts[FBX_D_SUPERSEDED]);
	a = row_action(&t, "r2", 0, n, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING, "r2 before r1's rollback: N's row %d (%s)",
	    a, det);
	a = row_action(&t, "r1", 1, l1, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING, "rollback of r1: L1's row %d (%s)", a,
	    det);
	a = row_action(&t, "r2", 0, n, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_CANCEL, "r2 after r1's rollback: N's row %d (%s)", a,
	    det);
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention");
	pass(&t, 120000);
	CHECK(counts(&t, ORG, l1, &c) == FBX_ENOT_FOUND &&
	        counts(&t, ORG, l0, &c) == FBX_ENOT_FOUND,
	    "L0 and L1 pruned");
	a = row_action(&t, "r2", 0, n, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_CANCEL,
	    "r2 after the prune: N's row %d (%s), want cancel", a, det);
	env_close(&t);
}

/* chain3 - L0 (rA) under L1 and L2 (rB) under N (rC). rB rolled back,
 * retention prunes L0, L1 and L2: N still stands in for L0, which wants
 * the device (left: its link leads further). With rA rolled back too,
 * the whole chain is, and rC's rollback cancels N */
static void
chain3(int rollback_a)
{
	struct env t;
	struct fbx_command c;
	char det[128] = "";
	uint64_t l0, l1, l2, n;
	int a;

	CHECK(env_open(&t, rollback_a ? "sxc3b" : "sxc3a") == 0, "open");
	enroll(&t, ORG, 300);
	l0 = auto_lock(&t, DEV_D, "rA");
	pass(&t, 31000);
	l1 = auto_lock(&t, DEV_D, "rB");
	pass(&t, 31000);
	l2 = auto_lock(&t, DEV_D, "rB");
	pass(&t, 31000);
	n = auto_lock(&t, DEV_D, "rC");
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l0, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1 &&
	        counts(&t, ORG, l1, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1 &&
	        counts(&t, ORG, l2, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L0, L1, L2 superseded");
	a = row_action(&t, "rB", 1, l2, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING, "rollback of rB: L2's row %d (%s)", a, det);
	a = row_action(&t, "rC", 0, n, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING, "rC before the prune: N's row %d (%s)", a,
	    det);
	if (rollback_a) {
		a = row_action(&t, "rA", 1, l0, DEV_D, det, sizeof(det));
		CHECK(a == FBX_RB_NOTHING, "rollback of rA: L0's row %d (%s)",
		    a, det);
	}
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention");
	pass(&t, 120000);
	CHECK(counts(&t, ORG, l0, &c) == FBX_ENOT_FOUND &&
	        counts(&t, ORG, l1, &c) == FBX_ENOT_FOUND &&
	        counts(&t, ORG, l2, &c) == FBX_ENOT_FOUND,
	    "L0, L1, L2 pruned");
	a = row_action(&t, "rC", 0, n, DEV_D, det, sizeof(det));
	if (rollback_a)
		CHECK(a == FBX_RB_CANCEL,
		    "rC after the prune, all rolled back: N's row %d (%s)", a,
		    det);
	else
		CHECK(a == FBX_RB_NOTHING,
		    "rC after the prune, L0 wanted: N's row %d (%s)", a, det);
	env_close(&t);
}

#define R_INC "attestation_failed"

/* auto_cmd - the detector's automatic command of type for device dev
 * of ORG, reason R_INC; @return its id or 0 */
static uint64_t
auto_cmd(struct env *t, int type, unsigned dev)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id ids[1];
	uint64_t id = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = (uint8_t)type;
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = TTL_S;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason),
	    "%s", R_INC);
	snprintf(ids[0], sizeof(ids[0]), "%s-d%05u", ORG, dev);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = 1;
	console(t, "rule", ORG, &req);
	turn(t);
	if (reply(t, "rule", &rep) == FBX_OK)
		id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(id != 0, "automatic %s", fbx_cmd_type_name(type));
	return id;
}

/* pass_gw - ms of the fake clock, gateway g1 alive */
static void
pass_gw(struct env *t, int64_t ms)
{
	for (int64_t d = 0; d < ms; d += 500) {
		advance(t, 500);
		heartbeat(t, "g1");
		turn(t);
	}
}

struct brk_trip {
	const char *org;
	int64_t now;
	const char *reason; /* NULL: R_INC */
};

static int
brk_trip_fn(fbx_txn *x, void *arg)
{
	const struct brk_trip *t = arg;
	const char *reason = t->reason != NULL ? t->reason : R_INC;
	struct fbxi_breaker b;
	int rc = fbxi_brk_load(x, t->org, reason, &b, NULL);

	if (rc != FBX_OK)
		return rc;
	b.trips = 1;
	b.onset_ms = t->now + 1000;
	b.tripped_ms = t->now + 200000;
	b.state = FBX_BS_CLOSED;
	return fbxi_brk_save(x, t->org, reason, &b);
}

/* brk_tripped - write the breaker record of org (ORG, or "*" for the
 * global one) for R_INC: tripped once (since reset), its onset 1 s after
 * the fake clock's now; the engine is closed and reopened around it
 * (gateway g1 says hello again). @return FBX_OK or the store's error */
static int
brk_tripped_for(struct env *t, const char *org, const char *reason)
{
	struct brk_trip bt = { org, t->io.wall, reason };
	int rc = store_write(t, brk_trip_fn, &bt);

	if (rc == FBX_OK) {
		hello(t, "g1", ORG, 1000);
		turn(t);
	}
	return rc;
}

static int
brk_tripped(struct env *t, const char *org)
{
	return brk_tripped_for(t, org, NULL);
}

/* incident_rollback - ops asks for the rollback of incident R_INC in
 * ORG (planned, or executed), one slice of up to 100 rows; a turn
 * answers it (read it with reply) */
static void
incident_rollback(struct env *t, int execute)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	snprintf(req.u.rollback.sel.breaker, sizeof(req.u.rollback.sel.breaker),
	    "%s", R_INC);
	req.u.rollback.execute = execute;
	req.u.rollback.sliced = 1;
	req.u.rollback.limit = 100;
	console(t, "ops", ORG, &req);
	turn(t);
}

/* onset_one - a baseline lock of device 1 before the incident's onset
 * (succeeded), then a storm command of type for the same device, sent
 * once and not answered, and the incident's rollback executed. @return
 * the withdrawn marks left (rbd/), -1 on error; *action its row */
static int
onset_one(int type, int *action)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	uint64_t base, storm, bd, sd;
	char dir[32];
	int rc, n, sent = 0;

	*action = -1;
	snprintf(dir, sizeof(dir), "sxbo%d", type);
	CHECK(env_open(&t, dir) == 0, "open");
	enroll(&t, ORG, 300);
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	base = auto_cmd(&t, FBX_CMD_LOCK, 1);
	pass_gw(&t, 31000);
	drain_gw(&t, "g1", s);
	bd = FBX_DLV_ID(base, 0);
	CHECK(s->nids == 1 && s->ids[0] == bd, "baseline sent: %zu", s->nids);
	results(&t, "g1", 1, &bd, 1, FBX_R_SUCCEEDED);
	turn(&t);
	/* the breaker's record: tripped (since reset), the onset after
	 * the baseline lock */
	CHECK(brk_tripped(&t, ORG) == FBX_OK, "breaker record written");
	pass_gw(&t, 2000);
	storm = auto_cmd(&t, type, 1);
	sd = FBX_DLV_ID(storm, 0);
	pass_gw(&t, 31000);
	for (int i = 0; i < 6 && !sent; i++) {
		memset(s, 0, sizeof(*s));
		drain_gw(&t, "g1", s);
		for (size_t j = 0; j < s->nids; j++)
			sent |= s->ids[j] == sd;
		pass_gw(&t, 500);
	}
	CHECK(sent, "storm %s sent", fbx_cmd_type_name(type));
	incident_rollback(&t, 1);
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.before_onset == 1,
	    "incident rollback: %d", rc);
	if (rc == FBX_OK)
		for (size_t i = 0; i < rep.u.rollback.nrows; i++)
			if (rep.u.rollback.rows[i].delivery_id == sd)
				*action = rep.u.rollback.rows[i].action;
	fbx_console_rep_free(&rep);
	turn(&t);
	n = kv_records(&t, "rbd/", 0);
	free(s);
	env_close(&t);
	return n;
}

/* onset_withdrawal - a storm lock sent once to a device locked before
 * the onset is left as if not selected ("locked before the onset too"):
 * not withdrawn. A storm wipe there cannot be undone, and is withdrawn
 * as any: the device's check-in after an offline report cancels it */
static void
test_onset_withdrawal(void)
{
	int a, n;

	n = onset_one(FBX_CMD_LOCK, &a);
	CHECK(a == FBX_RB_NOTHING && n == 0,
	    "storm lock: row %d, withdrawn %d (want nothing, 0)", a, n);
	n = onset_one(FBX_CMD_WIPE, &a);
	CHECK(a == FBX_RB_IRREVERSIBLE && n == 1,
	    "storm wipe: row %d, withdrawn %d (want irreversible, 1)", a, n);
}

/* onset_settling - an automatic lock created before the incident's
 * onset and still settling (never expanded: no delivery exists) is
 * listed in the plan's before-onset rows, but counted as a command
 * only: before_onset_deliveries counts deliveries, and it has none (the
 * plan once counted one per target device) */
static void
test_onset_settling(void)
{
	struct env t;
	struct fbx_console_rep rep;
	uint64_t early;
	int rc;

	CHECK(env_open(&t, "sxbos") == 0, "open");
	enroll(&t, ORG, 300);
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	early = auto_cmd(&t, FBX_CMD_LOCK, 1);
	CHECK(brk_tripped(&t, ORG) == FBX_OK, "breaker record written");
	pass_gw(&t, 2000);
	(void)auto_cmd(&t, FBX_CMD_LOCK, 2);
	incident_rollback(&t, 0);
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.before_onset == 1 &&
	        rep.u.rollback.before_onset_deliveries == 0 &&
	        rep.u.rollback.nbo_rows == 1 &&
	        rep.u.rollback.bo_rows[0].command_id == early &&
	        rep.u.rollback.bo_rows[0].delivery_id == 0,
	    "settling before onset: rc %d, %u command(s), %u deliveries, "
	    "%zu row(s) (want 1, 0, 1)",
	    rc, rc == FBX_OK ? rep.u.rollback.before_onset : 0,
	    rc == FBX_OK ? rep.u.rollback.before_onset_deliveries : 0,
	    rc == FBX_OK ? rep.u.rollback.nbo_rows : (size_t)0);
	fbx_console_rep_free(&rep);
	env_close(&t);
}

/* global_rollback - the every-organisation rollback of incident reason,
 * executed slice after slice (at most 200) until done: each slice's
 * per-action counts added to per, the run's id in *rbid, the slices in
 * *slices, *done once the last slice said so. @return the last reply's
 * err */
static int
global_rollback(struct env *t, const char *reason,
    uint32_t per[FBX_RB_COUNT], uint64_t *rbid, int *slices, int *done)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	char org_cursor[FBX_ID_MAX + 1] = "";
	uint64_t cursor = 0, snap = 0;
	int rc;

	*rbid = 0;
	*slices = 0;
	do {
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		snprintf(req.u.rollback.sel.breaker,
		    sizeof(req.u.rollback.sel.breaker), "%s", reason);
		req.u.rollback.sel.every_org = 1;
		req.u.rollback.execute = 1;
		req.u.rollback.sliced = 1;
		req.u.rollback.limit = 100;
		req.u.rollback.cursor = cursor;
		snprintf(req.u.rollback.org_cursor,
		    sizeof(req.u.rollback.org_cursor), "%s", org_cursor);
		req.u.rollback.last_command_id = snap;
		req.u.rollback.rollback_id = *rbid;
		console(t, "ops", ORG, &req);
		turn(t);
		rc = reply(t, "ops", &rep);
		if (rc == FBX_OK) {
			cursor = rep.u.rollback.next_cursor;
			snprintf(org_cursor, sizeof(org_cursor), "%s",
			    rep.u.rollback.next_org);
			snap = rep.u.rollback.last_command_id;
			if (*rbid == 0)
				*rbid = rep.u.rollback.rollback_id;
			for (int k = 0; k < FBX_RB_COUNT; k++)
				per[k] += rep.u.rollback.per_action[k];
		}
		fbx_console_rep_free(&rep);
		(*slices)++;
	} while (rc == FBX_OK && cursor != 0 && *slices < 200);
	*done = rc == FBX_OK && cursor == 0;
	return rc;
}

/* global_marks - the every-organisation rollback of a global incident,
 * in slices of 4 deliveries, of a storm lock of 10 devices that all are
 * in a gateway's hands (accepted, in flight): the slices after the first
 * hold nothing else to do, and still execute to mark their deliveries
 * (rbf/, 10 in all), so that a newer lock superseding one carries
 * nothing of it: the newer lock's rollback cancels it */
static void
test_global_marks(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id ids[10];
	uint32_t per[FBX_RB_COUNT] = { 0 };
	uint64_t storm = 0, d10, rbid = 0;
	uint64_t sent[10];
	size_t nsent = 0;
	uint32_t inflight = 0;
	int rc, n = 0, done = 0;

	CHECK(env_open(&t, "sxgm") == 0, "open");
	t.rollback_slice = 4;
	CHECK(env_reopen(&t) == 0, "reopen with slices of 4");
	/* 10 automatic locks stay under the breakers' 1 % */
	enroll(&t, ORG, 2000);
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	CHECK(brk_tripped(&t, "*") == FBX_OK, "global breaker record written");
	pass_gw(&t, 2000);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = TTL_S;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason),
	    "%s", R_INC);
	for (unsigned i = 0; i < 10; i++)
		snprintf(ids[i], sizeof(ids[i]), "%s-d%05u", ORG, i + 1);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = 10;
	console(&t, "rule", ORG, &req);
	turn(&t);
	if (reply(&t, "rule", &rep) == FBX_OK)
		storm = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(storm != 0, "storm lock of 10 devices");
	pass_gw(&t, 31000);
	for (int i = 0; i < 6 && nsent < 10; i++) {
		memset(s, 0, sizeof(*s));
		drain_gw(&t, "g1", s);
		for (size_t j = 0; j < s->nids && nsent < 10; j++)
			if (FBX_DLV_CMD(s->ids[j]) == storm)
				sent[nsent++] = s->ids[j];
		pass_gw(&t, 500);
	}
	CHECK(nsent == 10, "storm lock sent: %zu", nsent);
	results(&t, "g1", 1, sent, nsent, FBX_R_ACCEPTED);
	turn(&t);
	rc = global_rollback(&t, R_INC, per, &rbid, &n, &done);
	inflight = per[FBX_RB_IN_FLIGHT];
	CHECK(rc == FBX_OK && n > 2 && inflight == 10,
	    "every-organisation rollback: %d, %d slices, %u in flight", rc, n,
	    inflight);
	/* device 10 (in the last slice) offline since; a newer lock
	 * supersedes the storm's there, and carries nothing of it */
	d10 = FBX_DLV_ID(storm, 9);
	results(&t, "g1", 2, &d10, 1, FBX_R_OFFLINE);
	turn(&t);
	(void)auto_lock(&t, 10, "r_later");
	pass_gw(&t, 31000);
	t.rollback_slice = 0; /* the default: the plan in one slice */
	CHECK(env_reopen(&t) == 0, "reopen");
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	rc = rollback(&t, "r_later", 0, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.per_action[FBX_RB_CANCEL] == 1 &&
	        rep.u.rollback.per_action[FBX_RB_NOTHING] == 0,
	    "the newer lock's rollback: %d, cancel %u, nothing %u (%s)", rc,
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_CANCEL] : 0,
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING] : 0,
	    rc == FBX_OK && rep.u.rollback.nrows > 0
	        ? rep.u.rollback.rows[0].detail
	        : "");
	fbx_console_rep_free(&rep);
	CHECK(kv_records(&t, "rbf/", 0) == 10, "the storm lock's 10 "
	                                        "deliveries marked (rbf/)");
	free(s);
	env_close(&t);
}

/* an incident reason as long as an id may be (64) */
#define R_LONG                                                                \
	"attestation_failed_at_the_signing_service_after_its_cert_expired"

/* global_record - the record that closes an every-organisation rollback
 * holds the run's totals and as many organisation names as the 511
 * bytes of its params leave room for; the others follow in
 * "rollback.orgs" records. 30 organisations with names of 43
 * characters and an incident reason of 64 (then of 18: more room for
 * names), one automatic lock each (pending: no gateway serves them):
 * every record stays whole JSON within its bytes, the names of all the
 * records together are the 30, each once, and the closing record's
 * names fill the room its totals leave */
#define GR_ORGS 30
static void
test_global_record(const char *reason)
{
	struct env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	char org[GR_ORGS][FBX_ID_MAX + 1];
	int seen[GR_ORGS], done = 0;
	uint32_t per[FBX_RB_COUNT] = { 0 };
	uint64_t rbid = 0;
	unsigned closing = 0, more = 0, listed_first = 0, orgs_recs = 0,
		 whole = 0, records = 0, comp_total = 0, dup = 0;
	size_t close_len = 0;
	int rc, n = 0;

	memset(seen, 0, sizeof(seen));
	CHECK(env_open(&t, "sxgr") == 0, "open");
	for (int i = 0; i < GR_ORGS; i++) {
		snprintf(org[i], sizeof(org[i]),
		    "organisation-number-%02d-with-a-longer-name", i);
		enroll(&t, org[i], 100);
	}
	enroll(&t, ORG, 100);
	CHECK(brk_tripped_for(&t, "*", reason) == FBX_OK,
	    "global breaker record written");
	pass_gw(&t, 2000);
	for (int i = 0; i < GR_ORGS; i++) {
		fbx_id ids[1];
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_SUBMIT;
		req.u.submit.cmd.type = FBX_CMD_LOCK;
		req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
		req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
		req.u.submit.cmd.ttl_s = TTL_S;
		snprintf(req.u.submit.cmd.reason,
		    sizeof(req.u.submit.cmd.reason), "%s", reason);
		snprintf(ids[0], sizeof(ids[0]), "%.56s-d%05u", org[i], 1u);
		req.u.submit.cmd.dev_ids = ids;
		req.u.submit.cmd.ndev_ids = 1;
		console(&t, "rule", org[i], &req);
		turn(&t);
		rc = reply(&t, "rule", &rep);
		CHECK(rc == FBX_OK, "automatic lock in %s: %d", org[i], rc);
		fbx_console_rep_free(&rep);
	}
	pass_gw(&t, 31000);
	rc = global_rollback(&t, reason, per, &rbid, &n, &done);
	comp_total = per[FBX_RB_CANCEL] + per[FBX_RB_COMPENSATE];
	CHECK(rc == FBX_OK && rbid != 0 && done,
	    "every-organisation rollback: %d, %d slices, id %llu", rc, n,
	    (unsigned long long)rbid);
	CHECK(comp_total == GR_ORGS, "each organisation's lock undone: %u",
	    comp_total);

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_LIST;
	req.u.audit_list.limit = 1000;
	console(&t, "auditor", ORG, &req);
	turn(&t);
	rc = reply(&t, "auditor", &rep);
	CHECK(rc == FBX_OK, "audit list: %d", rc);
	for (size_t i = 0; rc == FBX_OK && i < rep.u.audit.n; i++) {
		const struct fbx_audit_rec *a = &rep.u.audit.r[i];
		char want[64];
		const char *nm, *end;
		size_t len = strlen(a->params);
		unsigned listed = 0;
		int is_close = strcmp(a->action, "rollback") == 0;

		snprintf(want, sizeof(want), "{\"rollback_id\":%llu,",
		    (unsigned long long)rbid);
		if (strcmp(a->org, "*") != 0 ||
		    (!is_close && strcmp(a->action, "rollback.orgs") != 0) ||
		    strncmp(a->params, want, strlen(want)) != 0)
			continue;
		records++;
		nm = strstr(a->params, "\"names\":\"");
		if (len > 0 && len <= 511 && nm != NULL &&
		    strcmp(a->params + len - 2, "\"}") == 0)
			whole++;
		else
			fprintf(stderr, "not whole: %s\n", a->params);
		if (nm == NULL)
			continue;
		nm += strlen("\"names\":\"");
		end = strchr(nm, '"');
		while (nm != NULL && end != NULL && nm < end) {
			const char *sp = memchr(nm, ' ', (size_t)(end - nm));
			size_t l = sp != NULL ? (size_t)(sp - nm)
			                      : (size_t)(end - nm);
			int k;
			for (k = 0; k < GR_ORGS; k++)
				if (strlen(org[k]) == l &&
				    memcmp(org[k], nm, l) == 0)
					break;
			if (k < GR_ORGS) {
				dup += seen[k]++ > 0;
				listed++;
			}
			nm = sp != NULL ? sp + 1 : end;
		}
		if (is_close) {
			const char *m = strstr(a->params, "\"more\":");
			closing++;
			close_len = len;
			listed_first = listed;
			if (m != NULL)
				more = (unsigned)strtoul(m + 7, NULL, 10);
			CHECK(strstr(a->params, "\"compensating_commands\":") !=
			            NULL &&
			        strstr(a->params, "\"in_flight\":0,") != NULL,
			    "closing record's totals: %s", a->params);
		} else {
			orgs_recs++;
		}
	}
	fbx_console_rep_free(&rep);
	{
		unsigned all = 0;
		for (int k = 0; k < GR_ORGS; k++)
			all += seen[k] > 0;
		CHECK(closing == 1 && whole == records && all == GR_ORGS &&
		        dup == 0 && listed_first > 0 &&
		        more == GR_ORGS - listed_first && orgs_recs > 0,
		    "closing %u, whole %u of %u, %u of %d organisations named "
		    "(%u twice), %u in the closing record with more %u, %u "
		    "rollback.orgs records",
		    closing, whole, records, all, GR_ORGS, dup, listed_first,
		    more, orgs_recs);
		/* the names took the room the totals left: with names left
		 * over, not even one more (43 + a space) would have fitted
		 * beside the room kept for "more" at its widest (20 digits,
		 * 2 used here) */
		CHECK(more == 0 || close_len + 1 + 43 + 18 > 511,
		    "the closing record is %zu bytes with %u names left "
		    "over: names not given the room the totals leave",
		    close_len, more);
	}
	env_close(&t);
}

/* expiry - what the older command wanted counts while it lived: a
 * waiting N stands in for L1 only while L1's time to live runs, also
 * when retention pruned L1 (its link keeps the expiry); a sent N stands
 * in for an L1 alive when N was sent, however long ago. */
static void
test_expiry(void)
{
	struct env t;
	struct fbx_command c;
	struct gw_seen *s = calloc(1, sizeof(*s));
	char det[128] = "";
	uint64_t l1, n, l3, n3, l4, n4;
	int a;

	/* D: L1 lives an hour, pruned by retention after a minute; D2: L3
	 * lives 2 minutes; both superseded, no gateway */
	CHECK(env_open(&t, "sxrb3") == 0, "open");
	enroll(&t, ORG, 300);
	l1 = auto_lock_ttl(&t, DEV_D, "r1", 3600);
	l3 = auto_lock_ttl(&t, DEV_D2, "r1", 120);
	pass(&t, 31000);
	n = auto_lock_ttl(&t, DEV_D, "r2", 3600);
	n3 = auto_lock_ttl(&t, DEV_D2, "r2", 3600);
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l3, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L3 superseded: %u", c.counts[FBX_D_SUPERSEDED]);
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention");
	pass(&t, 180000); /* L3 expired, L1 and L3 pruned */
	CHECK(counts(&t, ORG, l1, &c) == FBX_ENOT_FOUND, "L1 pruned");
	CHECK(counts(&t, ORG, n, &c) == FBX_OK && c.counts[FBX_D_QUEUED] == 1,
	    "N still queued: %u", c.counts[FBX_D_QUEUED]);
	a = row_action(&t, "r2", 0, n, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING,
	    "N stands in for pruned L1 (alive): row %d (%s)", a, det);
	a = row_action(&t, "r2", 0, n3, DEV_D2, det, sizeof(det));
	CHECK(a == FBX_RB_CANCEL,
	    "N3 for expired L3: row %d (%s), want cancel", a, det);
	env_close(&t);

	/* D: L4 lives 2 minutes; N4 sent and succeeded while L4 lived;
	 * the rollback after L4 expired still leaves N4's lock */
	CHECK(env_open(&t, "sxrb4") == 0, "open");
	enroll(&t, ORG, 300);
	l4 = auto_lock_ttl(&t, DEV_D, "r1", 120);
	pass(&t, 31000);
	n4 = auto_lock_ttl(&t, DEV_D, "r2", 3600);
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l4, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L4 superseded: %u", c.counts[FBX_D_SUPERSEDED]);
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	turn(&t);
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 1 && FBX_DLV_CMD(s->ids[0]) == n4,
	    "N4 sent: %zu deliveries", s->nids);
	if (s->nids == 1) {
		results(&t, "g1", 1, s->ids, 1, FBX_R_SUCCEEDED);
		turn(&t);
	}
	pass(&t, 180000); /* L4 expired */
	heartbeat(&t, "g1");
	a = row_action(&t, "r2", 0, n4, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING,
	    "N4 succeeded while L4 lived: row %d (%s), want nothing", a,
	    det);
	free(s);
	env_close(&t);
}

/* history_full - N4 first sent while L4 lived, then requeued again and
 * again (its gateway dies) until its history is full and no longer
 * holds that first send: the plan cannot tell when it was first sent,
 * and leaves N4's succeeded lock rather than undo a lock L4 may have
 * wanted. */
static void
test_history_full(void)
{
	struct env t;
	struct fbx_command c;
	struct gw_seen *s = calloc(1, sizeof(*s));
	char det[128] = "";
	uint64_t l4, n4, id = 0;
	int a, sends = 0;

	CHECK(env_open(&t, "sxrb5") == 0, "open");
	enroll(&t, ORG, 300);
	l4 = auto_lock_ttl(&t, DEV_D, "r1", 120);
	pass(&t, 31000);
	n4 = auto_lock_ttl(&t, DEV_D, "r2", 3600);
	pass(&t, 31000);
	CHECK(counts(&t, ORG, l4, &c) == FBX_OK &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "L4 superseded: %u", c.counts[FBX_D_SUPERSEDED]);
	for (int cyc = 0; cyc < 8; cyc++) {
		memset(s, 0, sizeof(*s));
		hello(&t, "g1", ORG, 1000);
		turn(&t);
		turn(&t);
		drain_gw(&t, "g1", s);
		if (s->nids == 1) {
			id = s->ids[0];
			sends++;
		}
		if (cyc == 7)
			break;
		/* g1 goes silent and is declared dead: N4 is queued
		 * again; the first pause also outlives L4 */
		pass(&t, cyc == 0 ? 180000 : 10000);
	}
	CHECK(sends == 8, "N4 sent %d times, want 8", sends);
	if (id != 0) {
		results(&t, "g1", 1, &id, 1, FBX_R_SUCCEEDED);
		turn(&t);
	}
	CHECK(counts(&t, ORG, n4, &c) == FBX_OK &&
	        c.counts[FBX_D_SUCCEEDED] == 1,
	    "N4 succeeded: %u", c.counts[FBX_D_SUCCEEDED]);
	heartbeat(&t, "g1");
	a = row_action(&t, "r2", 0, n4, DEV_D, det, sizeof(det));
	CHECK(a == FBX_RB_NOTHING,
	    "N4 with a full history: row %d (%s), want nothing", a, det);
	free(s);
	env_close(&t);
}

int
main(void)
{
	test_supersede_rollback();
	test_two_runs();
	test_two_runs_chain();
	chain3(0);
	chain3(1);
	test_onset_withdrawal();
	test_onset_settling();
	test_global_marks();
	test_global_record(R_LONG);
	test_global_record("attestation_failed");
	test_expiry();
	test_history_full();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
