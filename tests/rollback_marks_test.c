/*
 * rollback_marks_test.c: rollbacks of deliveries in flight, in-process
 * on a fake clock (engine_fake.c), turn by turn: a delivery sent once
 * and not accepted is withdrawn, and what acceptances by either key,
 * offline reports, check-ins, restarts and replays make of it; the
 * marks (rbf/) a rollback leaves on deliveries in flight, also in
 * slices, and what a newer command that supersedes a rolled-back one
 * carries of it, also when retention has pruned the chain of links or
 * it was closed when made; retention prunes a command's markers, marks
 * and links within its per-turn budget.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"

/* --------------------------------------------------------------- tests */

/* rb_plan - the plan of a rollback of acme's command cid: its counts
 * per action in pa (zero when the rollback is refused); @return the
 * reply's err */
static int
rb_plan(struct env *t, uint64_t cid, uint32_t pa[FBX_RB_COUNT])
{
	struct fbx_console_rep rep;
	int rc = rb_cmd(t, cid, NULL, 0, &rep);

	for (int i = 0; i < FBX_RB_COUNT; i++)
		pa[i] = rc == FBX_OK ? rep.u.rollback.per_action[i] : 0;
	fbx_console_rep_free(&rep);
	return rc;
}

/* checkin_sent - acme's ten devices check in through gateway gw; what
 * the engine then sends gw is in s */
static void
checkin_sent(struct env *t, const char *gw, struct gw_seen *s)
{
	checkin_all(t, gw, "acme", 10);
	turn(t);
	memset(s, 0, sizeof(*s));
	drain_gw(t, gw, s);
}

/* replay_cmd - an executed replay of command cid of acme's deliveries in
 * a gateway's hands */
static int
replay_cmd(struct env *t, uint64_t cid, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;
	uint64_t ids[1];

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_REPLAY;
	ids[0] = cid;
	req.u.replay.sel.command_ids = ids;
	req.u.replay.sel.ncommand_ids = 1;
	req.u.replay.execute = 1;
	req.u.replay.sliced = 1;
	console(t, "ops", "acme", &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* rb_sliced - an executed rollback of command cid of acme, slice after
 * slice; @return the first error, or FBX_OK */
static int
rb_sliced(struct env *t, uint64_t cid)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t ids[1], cursor = 0, snap = 0, rbid = 0;
	int rc, n = 0;

	do {
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		ids[0] = cid;
		req.u.rollback.sel.command_ids = ids;
		req.u.rollback.sel.ncommand_ids = 1;
		req.u.rollback.execute = 1;
		req.u.rollback.sliced = 1;
		req.u.rollback.limit = 1000;
		req.u.rollback.cursor = cursor;
		req.u.rollback.last_command_id = snap;
		req.u.rollback.rollback_id = rbid;
		console(t, "ops", "acme", &req);
		turn(t);
		rc = reply(t, "ops", &rep);
		if (rc == FBX_OK) {
			cursor = rep.u.rollback.next_cursor;
			snap = rep.u.rollback.last_command_id;
			if (rbid == 0)
				rbid = rep.u.rollback.rollback_id;
		}
		fbx_console_rep_free(&rep);
		n++;
	} while (rc == FBX_OK && cursor != 0 && n < 100);
	CHECK(n > 2, "rollback in %d slices", n);
	return rc;
}

/* out_and_back - a query to every device of acme, sent to gateway gw
 * (its ids in s), then rolled back (in slices when sliced) */
static uint64_t
out_and_back(struct env *t, const char *gw, struct gw_seen *s, int sliced)
{
	struct fbx_console_rep rep;
	uint64_t c = submit_org(t, "acme");
	int rc;

	turn(t);
	memset(s, 0, sizeof(*s));
	drain_gw(t, gw, s);
	CHECK(s->nids == 10 && FBX_DLV_CMD(s->ids[0]) == c,
	    "command %llu sent: %zu", (unsigned long long)c, s->nids);
	if (sliced) {
		rc = rb_sliced(t, c);
		CHECK(rc == FBX_OK, "sliced rollback: %d", rc);
		return c;
	}
	rc = rb_cmd(t, c, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed,
	    "rollback of %llu: %d", (unsigned long long)c, rc);
	fbx_console_rep_free(&rep);
	return c;
}

/* rollback_withdraws_inflight - a delivery sent once and not accepted
 * when a rollback selects its command is withdrawn: the device can have
 * it only from the gateway holding it, so when that gateway reports the
 * device offline it waits and the device's check-in cancels it, instead
 * of sending it after the rollback. When the device may have it after
 * all, the delivery goes on as before, sent again with its id so that
 * its outcome is learnt: accepted (before the offline report, or
 * reported after it); come back unanswered (here the engine restarted,
 * so its sessions are gone); sent again by a replay. Also across
 * rollback slices. */
static void
test_rollback_withdraws_inflight(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	uint64_t a;
	int rc;

	CHECK(env_open(&t, "rbw") == 0, "open");
	enroll(&t, "acme", 10);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);

	/* A: sent, rolled back, every device reported offline: they wait,
	 * and their check-in cancels them */
	a = out_and_back(&t, "g1", s, 0);
	/* the same rollback run again withdraws nothing more */
	rc = rb_cmd(&t, a, NULL, 1, &rep);
	CHECK(rc == FBX_OK, "rollback of %llu again: %d",
	    (unsigned long long)a, rc);
	fbx_console_rep_free(&rep);
	/* the rollback's audit record counts what it withdrew, once: a
	 * second record (the run again) counts none */
	{
		struct fbx_console_req al;
		int ten = 0, more = 0;
		memset(&al, 0, sizeof(al));
		al.kind = FBX_CREQ_AUDIT_LIST;
		al.u.audit_list.limit = 10;
		strcpy(al.u.audit_list.action, "rollback");
		console(&t, "ops", "acme", &al);
		turn(&t);
		rc = reply(&t, "ops", &rep);
		for (size_t i = 0; rc == FBX_OK && i < rep.u.audit.n; i++) {
			const char *p = rep.u.audit.r[i].params;
			if (strstr(p, "\"withdrawn\":10,") != NULL)
				ten++;
			else if (strstr(p, "\"withdrawn\":0,") == NULL)
				more++;
		}
		CHECK(rc == FBX_OK && rep.u.audit.n == 2 && ten == 1 &&
		        more == 0,
		    "rollback records: %d, %zu records, %d withdrawing 10, %d "
		    "withdrawing others (%s)",
		    rc, rc == FBX_OK ? rep.u.audit.n : 0, ten, more,
		    rc == FBX_OK && rep.u.audit.n > 0 ? rep.u.audit.r[0].params
		                                      : "");
		fbx_console_rep_free(&rep);
	}
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "A after offline results: pending %u",
	    info.counts[FBX_D_PENDING]);
	CHECK(offline_devices(&t, "acme") == 10, "offline after A: %u",
	    offline_devices(&t, "acme"));
	checkin_sent(&t, "g1", s);
	CHECK(s->nids == 0, "A sent at the check-in: %zu", s->nids);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 10 &&
	        info.counts[FBX_D_PENDING] == 0,
	    "A after the check-in: cancelled %u, pending %u",
	    info.counts[FBX_D_CANCELLED], info.counts[FBX_D_PENDING]);
	CHECK(offline_devices(&t, "acme") == 0, "offline after check-in: %u",
	    offline_devices(&t, "acme"));

	/* B: accepted after the rollback, then offline: the device has
	 * it; sent again at the check-in, its outcome recorded. The first
	 * five are reported out of order (the offline report before the
	 * acceptance, which comes from the session that no longer holds
	 * them) */
	a = out_and_back(&t, "g1", s, 0);
	results(&t, "g1", 2, s->ids + 5, 5, FBX_R_ACCEPTED);
	results(&t, "g1", 3, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	results(&t, "g1", 20, s->ids, 5, FBX_R_ACCEPTED);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "B accepted, then offline: pending %u, cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g1", s);
	CHECK(s->nids == 10 && FBX_DLV_CMD(s->ids[0]) == a,
	    "B sent again at the check-in: %zu", s->nids);
	/* not sent once any more: offline again leaves it waiting */
	results(&t, "g1", 4, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "B offline again: pending %u, cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g1", s);
	CHECK(s->nids == 10, "B sent at the second check-in: %zu", s->nids);
	results(&t, "g1", 5, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 10,
	    "B's outcome: succeeded %u", info.counts[FBX_D_SUCCEEDED]);

	/* C: the engine restarts: sent again to g2 with the same ids (a
	 * device may have them), offline there: pending, as any */
	a = out_and_back(&t, "g1", s, 0);
	CHECK(env_reopen(&t) == 0, "restart");
	hello(&t, "g2", "acme", 100);
	turn(&t);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g2", s);
	CHECK(s->nids == 10 && FBX_DLV_CMD(s->ids[0]) == a,
	    "C sent again after the restart: %zu", s->nids);
	results(&t, "g2", 1, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "C after the restart and offline results: pending %u, "
	    "cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g2", s);
	results(&t, "g2", 2, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);

	/* D: a replay between the rollback and the offline results sends
	 * them again on purpose: the devices wait for their check-in */
	a = out_and_back(&t, "g2", s, 0);
	rc = replay_cmd(&t, a, &rep);
	CHECK(rc == FBX_OK && rep.u.replay.resent == 10, "replay of D: %d %u",
	    rc, rc == FBX_OK ? rep.u.replay.resent : 0);
	fbx_console_rep_free(&rep);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g2", s);
	CHECK(s->nids == 10, "D replayed: %zu", s->nids);
	results(&t, "g2", 3, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "D after its replay and offline results: pending %u, "
	    "cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g2", s);
	results(&t, "g2", 4, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);
	env_close(&t);

	/* E: as A, with the rollback in slices of 4 deliveries: the later
	 * slices withdraw theirs too */
	CHECK(env_open(&t, "rbw2") == 0, "open");
	t.rollback_slice = 4;
	CHECK(env_reopen(&t) == 0, "reopen with slices of 4");
	enroll(&t, "acme", 10);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);
	a = out_and_back(&t, "g1", s, 1);
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	checkin_all(&t, "g1", "acme", 10);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 10,
	    "E after offline results: cancelled %u, pending %u",
	    info.counts[FBX_D_CANCELLED], info.counts[FBX_D_PENDING]);
	free(s);
	env_close(&t);
}

/* cmd_devs - an operator's command of type to acme's devices
 * from..from+n-1; @return its id or 0 */
static uint64_t
cmd_devs(struct env *t, int type, unsigned from, unsigned n)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id *ids = calloc(n, sizeof(*ids));
	uint64_t id = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = (uint8_t)type;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = 3600;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	for (unsigned i = 0; i < n; i++)
		snprintf(ids[i], sizeof(ids[i]), "acme-d%05u", from + i);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = n;
	console(t, "ops", "acme", &req);
	turn(t);
	if (reply(t, "ops", &rep) == FBX_OK)
		id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	free(ids);
	CHECK(id != 0, "%s of %u devices", fbx_cmd_type_name(type), n);
	return id;
}

/* lock_devs - an operator's lock of acme's devices from..from+n-1;
 * @return its id or 0 */
static uint64_t
lock_devs(struct env *t, unsigned from, unsigned n)
{
	return cmd_devs(t, FBX_CMD_LOCK, from, n);
}

/* sent_to - drain both gateways; @return the one that was sent
 * delivery id ("g1", "g2"), NULL if neither */
static const char *
sent_to(struct env *t, struct gw_seen *s, uint64_t id)
{
	static const char *const gws[2] = { "g1", "g2" };
	const char *who = NULL;

	for (int g = 0; g < 2; g++) {
		memset(s, 0, sizeof(*s));
		drain_gw(t, gws[g], s);
		for (size_t i = 0; i < s->nids; i++)
			if (s->ids[i] == id)
				who = gws[g];
	}
	return who;
}

/* out_sent - turns (at most 5) until delivery id is sent; @return its
 * gateway, "g1" if none (the check fails) */
static const char *
out_sent(struct env *t, struct gw_seen *s, uint64_t id)
{
	const char *who = NULL;

	for (int i = 0; i < 5 && who == NULL; i++) {
		turn(t);
		who = sent_to(t, s, id);
	}
	CHECK(who != NULL, "delivery %llu sent", (unsigned long long)id);
	return who != NULL ? who : "g1";
}

/* out_withdrawn - turns until delivery id is sent, then an executed
 * rollback of its command cid; @return its gateway */
static const char *
out_withdrawn(struct env *t, struct gw_seen *s, uint64_t cid, uint64_t id)
{
	struct fbx_console_rep rep;
	const char *who = out_sent(t, s, id);
	int rc;

	rc = rb_cmd(t, cid, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "rollback of %llu: %d",
	    (unsigned long long)cid, rc);
	fbx_console_rep_free(&rep);
	return who;
}

/* pass_turns - n turns 100 ms apart, both gateways alive */
static void
pass_turns(struct env *t, int n)
{
	for (int i = 0; i < n; i++) {
		advance(t, 100);
		heartbeat(t, "g1");
		heartbeat(t, "g2");
		turn(t);
	}
}

/* withdrawn_keys_and_supersede - (1) only the key a withdrawn delivery
 * was sent to can say the device got it: another gateway's acceptance
 * leaves the withdrawal, and the check-in cancels; the holder's ends it.
 * (2) A withdrawn delivery the device was reported offline for does not
 * stand in for an older command of its kind: an older lock expanding
 * when it reaches the device is not superseded by it, and reaches the
 * device once the check-in has cancelled the rolled-back one. (3) One
 * still in a gateway's hands does (the device most likely gets it): the
 * older lock's delivery is superseded, and when the device is then
 * reported offline, its check-in sends the rolled-back delivery, which
 * now carries the older lock, rather than cancel it; a second run of
 * the rollback leaves it. (4) A newer lock that supersedes a withdrawn
 * one carries nothing of it. (5) As (3) with the older lock rolled back
 * too: the check-in cancels. (6) A newer lock that supersedes one a
 * rollback found in flight (accepted then, offline since) carries
 * nothing of it either. (7) A replay ends that mark. (8) As (6) for one
 * withdrawn when the rollback executed, accepted since (the withdrawal
 * ends, the mark stays). (9) As (6) for restarts, which have nothing to
 * undo. (10) One a rollback left waiting because it stands in for an
 * older command passes that on when a newer one supersedes it: once
 * the older one is rolled back too, the newest carries nothing. */
static void
test_withdrawn_keys_and_supersede(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	const char *holder, *other;
	char pfx[64];
	uint32_t pa[FBX_RB_COUNT];
	uint64_t a, o, x, xd, x4, x5;
	int rc;

	CHECK(env_open(&t, "rbk") == 0, "open");
	t.io.gw_keys = 1;
	t.expand_chunk = 1;
	CHECK(env_reopen(&t) == 0, "reopen: a delivery a turn");
	enroll(&t, "acme", 1000); /* 67 locks are within the lock limit */
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	turn(&t);
	sent_to(&t, s, 0);

	/* (1) */
	for (int k = 0; k < 2; k++) {
		a = lock_devs(&t, (unsigned)k, 1);
		xd = FBX_DLV_ID(a, 0);
		holder = out_withdrawn(&t, s, a, xd);
		other = strcmp(holder, "g1") == 0 ? "g2" : "g1";
		results(&t, holder, 10 + (uint64_t)k, &xd, 1, FBX_R_OFFLINE);
		turn(&t);
		results(&t, k == 0 ? holder : other, 20 + (uint64_t)k, &xd, 1,
		    FBX_R_ACCEPTED);
		turn(&t);
		checkin_range(&t, "g1", "acme", (unsigned)k, 1);
		CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
		        info.counts[FBX_D_CANCELLED] == (k == 0 ? 0u : 1u) &&
		        info.counts[FBX_D_QUEUED] + info.counts[FBX_D_SENT] ==
		            (k == 0 ? 1u : 0u),
		    "%s's acceptance after the offline report: cancelled %u, "
		    "queued %u, sent %u",
		    k == 0 ? "the holder" : "another key",
		    info.counts[FBX_D_CANCELLED], info.counts[FBX_D_QUEUED],
		    info.counts[FBX_D_SENT]);
	}

	/* (2) X, a lock of device 19, sent, rolled back and reported
	 * offline while O, an older lock of devices 0..19, expands a
	 * device a turn */
	o = lock_devs(&t, 0, 20);
	x = lock_devs(&t, 19, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	results(&t, holder, 30, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	pass_turns(&t, 40);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.ndeliveries == 20 && info.counts[FBX_D_SUPERSEDED] == 0,
	    "O expanded, nothing superseded: %u deliveries, %u superseded",
	    info.ndeliveries, info.counts[FBX_D_SUPERSEDED]);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 19, 1);
	turn(&t);
	CHECK(sent_to(&t, s, FBX_DLV_ID(o, 19)) != NULL,
	    "O's lock of device 19 sent after the check-in");
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 1,
	    "X cancelled at the check-in: %u", info.counts[FBX_D_CANCELLED]);

	/* (3) the same, with X2 still out when O2 reaches device 39 */
	o = lock_devs(&t, 20, 20);
	x = lock_devs(&t, 39, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	pass_turns(&t, 40);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.ndeliveries == 20 && info.counts[FBX_D_SUPERSEDED] == 1,
	    "O2's delivery to device 39 superseded by X2: %u of %u",
	    info.counts[FBX_D_SUPERSEDED], info.ndeliveries);
	results(&t, holder, 40, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 39, 1);
	turn(&t);
	holder = sent_to(&t, s, xd);
	CHECK(holder != NULL, "X2 sent at the check-in: it carries O2's lock");
	results(&t, holder != NULL ? holder : "g1", 41, &xd, 1,
	    FBX_R_SUCCEEDED);
	turn(&t);
	rc = rb_plan(&t, x, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_COMPENSATE] == 0 &&
	        pa[FBX_RB_NOTHING] == 1,
	    "X2's rollback again: compensate %u, nothing %u",
	    pa[FBX_RB_COMPENSATE], pa[FBX_RB_NOTHING]);

	/* (4) a newer lock Y of a device whose rolled-back X waits for
	 * it supersedes X, and carries nothing of it: Y's rollback plans
	 * to cancel Y */
	x = lock_devs(&t, 50, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	results(&t, holder, 50, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	a = lock_devs(&t, 50, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X superseded by Y: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* (5) as (3), with O3 rolled back before the check-in: X3 then
	 * carries nothing anyone wants, and the check-in cancels it */
	o = lock_devs(&t, 60, 20);
	x = lock_devs(&t, 79, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	pass_turns(&t, 40);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "O3's delivery to device 79 superseded by X3: %u",
	    info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, o, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "rollback of O3: %d",
	    rc);
	fbx_console_rep_free(&rep);
	results(&t, holder, 60, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 79, 1);
	turn(&t);
	CHECK(sent_to(&t, s, xd) == NULL, "X3 not sent at the check-in");
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 1,
	    "X3 cancelled at the check-in: %u", info.counts[FBX_D_CANCELLED]);

	/* (6) X4 accepted when its rollback executed (in flight: neither
	 * withdrawn nor compensated, the rollback is to be run again once
	 * it settled), then reported offline: it waits for its device, and
	 * a newer lock Y4 supersedes it. X4 was rolled back, so Y4 carries
	 * nothing of it: Y4's rollback plans to cancel Y4 while it waits,
	 * and to compensate it once it succeeded */
	x = x4 = lock_devs(&t, 85, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 70, &xd, 1, FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] == 1,
	    "X4's rollback finds it in flight: %d, %u", rc,
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] : 0);
	fbx_console_rep_free(&rep);
	results(&t, holder, 71, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 1,
	    "X4 waits for its device: pending %u", info.counts[FBX_D_PENDING]);
	a = lock_devs(&t, 85, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X4 superseded by Y4: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y4's rollback while it waits: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 85, 1);
	turn(&t);
	xd = FBX_DLV_ID(a, 0);
	holder = sent_to(&t, s, xd);
	CHECK(holder != NULL, "Y4 sent at the check-in");
	results(&t, holder != NULL ? holder : "g1", 72, &xd, 1,
	    FBX_R_SUCCEEDED);
	turn(&t);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK &&
	        pa[FBX_RB_COMPENSATE] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y4's rollback once it succeeded: compensate %u, nothing %u",
	    pa[FBX_RB_COMPENSATE],
	    pa[FBX_RB_NOTHING]);

	/* (7) X5, as X4 up to its rollback, then replayed (sent again on
	 * purpose): no longer marked */
	o = x5 = lock_devs(&t, 90, 1);
	xd = FBX_DLV_ID(o, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 73, &xd, 1,
	    FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_cmd(&t, o, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] == 1,
	    "X5's rollback finds it in flight: %d", rc);
	fbx_console_rep_free(&rep);
	rc = replay_cmd(&t, o, &rep);
	CHECK(rc == FBX_OK && rep.u.replay.resent == 1, "replay of X5: %d %u",
	    rc, rc == FBX_OK ? rep.u.replay.resent : 0);
	fbx_console_rep_free(&rep);

	/* (8) X6 sent once when its rollback executed (withdrawn), then
	 * accepted (the withdrawal ends: the device has it) and reported
	 * offline: superseded by a newer lock Y6, which carries nothing of
	 * it */
	x = lock_devs(&t, 91, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	results(&t, holder, 74, &xd, 1, FBX_R_ACCEPTED);
	turn(&t);
	results(&t, holder, 75, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	a = lock_devs(&t, 91, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X6 superseded by Y6: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y6's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* (9) as (6) with restarts (nothing to undo, their rollback's
	 * row says so; they supersede): the newer one carries nothing of
	 * the rolled-back one */
	x = cmd_devs(&t, FBX_CMD_RESTART, 92, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 76, &xd, 1, FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_NOTHING] == 1,
	    "X7's rollback: nothing to undo: %d", rc);
	fbx_console_rep_free(&rep);
	results(&t, holder, 77, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	a = cmd_devs(&t, FBX_CMD_RESTART, 92, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X7 superseded by Y7: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y7's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* (10) X8 waits for its offline device and stands in for the
	 * older lock W it superseded: its rollback leaves it (marked). A
	 * newer lock Y8 supersedes X8, then W is rolled back too: Y8
	 * carries nothing anyone wants, and its rollback cancels it */
	o = lock_devs(&t, 93, 1);
	xd = FBX_DLV_ID(o, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 78, &xd, 1,
	    FBX_R_OFFLINE);
	turn(&t);
	x = lock_devs(&t, 93, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "W superseded by X8: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_NOTHING] == 1,
	    "X8's rollback leaves it (stands in for W): %d", rc);
	fbx_console_rep_free(&rep);
	a = lock_devs(&t, 93, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X8 superseded by Y8: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, o, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "W's rollback: %d", rc);
	fbx_console_rep_free(&rep);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y8's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* the marks (reopens the engine) */
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)x4);
	CHECK(kv_records(&t, pfx, 0) == 1, "X4 marked rolled back in flight");
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)x5);
	CHECK(kv_records(&t, pfx, 0) == 0, "X5's mark gone with its replay");
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)x);
	CHECK(kv_records(&t, pfx, 0) == 1, "X8 marked: left waiting");
	free(s);
	env_close(&t);
}

/* link_key_of - the key of the link from command x's first delivery to
 * delivery older (supersede.c link_key) */
static void
link_key_of(char *k, size_t cap, uint64_t x, uint64_t older)
{
	snprintf(k, cap, "sup/acme/%llu/%llu/%llu", (unsigned long long)x,
	    (unsigned long long)FBX_DLV_ID(x, 0), (unsigned long long)older);
}

struct link_cut {
	const char *key;
	size_t cut, len;
};

static int
link_cut_fn(fbx_txn *tx, void *arg)
{
	struct link_cut *c = arg;
	uint8_t val[256];
	int rc = fbx_store_kv_get(tx, c->key, val, sizeof(val), &c->len);

	if (rc == FBX_OK && c->cut > 0 && c->cut <= c->len)
		rc = fbx_store_kv_put(tx, c->key, val, c->cut);
	return rc;
}

/* link_edit - with the engine closed: the size of the record under key
 * in *len, then (cut > 0) the record cut to its first cut bytes; the
 * engine is opened again and both gateways say hello. @return FBX_OK or
 * the store's error */
static int
link_edit(struct env *t, const char *key, size_t cut, size_t *len)
{
	struct link_cut c = { key, cut, 0 };
	int rc = store_write(t, link_cut_fn, &c);

	*len = c.len;
	hello(t, "g1", "acme", 1000);
	hello(t, "g2", "acme", 1000);
	turn(t);
	return rc;
}

/* w_then_x - on an engine just opened (retention_s, 0: off; two
 * gateways, each its own key): lock W of device 7 sent and reported
 * offline (waiting for the device), then, a second later, lock X of the
 * same device, which supersedes W's delivery. @return X's id, W's in *w */
static uint64_t
w_then_x(struct env *t, struct gw_seen *s, uint32_t retention_s,
    uint64_t *w)
{
	struct fbx_command info;
	const char *holder;
	uint64_t x, wd;

	t->io.gw_keys = 1;
	t->retention_s = retention_s;
	CHECK(env_reopen(t) == 0, "reopen, retention %u s", retention_s);
	enroll(t, "acme", 200);
	hello(t, "g1", "acme", 1000);
	hello(t, "g2", "acme", 1000);
	turn(t);
	sent_to(t, s, 0);
	*w = lock_devs(t, 7, 1);
	wd = FBX_DLV_ID(*w, 0);
	holder = out_sent(t, s, wd);
	results(t, holder, 1, &wd, 1, FBX_R_OFFLINE);
	turn(t);
	pass_turns(t, 10); /* X a second younger than W */
	x = lock_devs(t, 7, 1);
	pass_turns(t, 3);
	CHECK(counts(t, "acme", *w, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "W superseded by X: %u", info.counts[FBX_D_SUPERSEDED]);
	return x;
}

/* marks_pruned_chain - a newer lock Y supersedes X, which a rollback
 * left waiting because it stands in for an older lock W (not rolled
 * back, its time to live running). Y's rollback leaves Y for W through
 * X's flagged link; once retention (shorter than the time to live) has
 * pruned X and W with their links, the chain cannot be followed, and
 * Y's rollback still leaves Y (and says why) rather than cancel a lock
 * that W may want. */
static void
test_marks_pruned_chain(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	uint32_t pa[FBX_RB_COUNT];
	uint64_t w, x, y;
	int rc, cancelled = 0;

	CHECK(env_open(&t, "rbp") == 0, "open");
	x = w_then_x(&t, s, 60, &w);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_NOTHING] == 1,
	    "X's rollback leaves it (stands in for W): %d", rc);
	fbx_console_rep_free(&rep);
	y = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X superseded by Y: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, y, NULL, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.per_action[FBX_RB_NOTHING] == 1 &&
	        rep.u.rollback.nrows == 1 &&
	        strstr(rep.u.rollback.rows[0].detail, "stands in") != NULL,
	    "Y's rollback before the prune: nothing %u (%s)",
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING] : 0,
	    rc == FBX_OK && rep.u.rollback.nrows > 0
	        ? rep.u.rollback.rows[0].detail
	        : "");
	fbx_console_rep_free(&rep);
	/* past retention: W and X (done) are pruned, Y waits. One record
	 * a turn: while X's links are gone and X itself not yet, Y's
	 * rollback leaves Y too */
	t.prune_budget = 1;
	CHECK(env_reopen(&t) == 0, "reopen with a prune budget of 1");
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	for (int i = 0; i < 100; i++) {
		advance(&t, 1000);
		heartbeat(&t, "g1");
		heartbeat(&t, "g2");
		turn(&t);
		if (i < 55)
			continue;
		rc = rb_plan(&t, y, pa);
		if (rc == FBX_OK && pa[FBX_RB_CANCEL] > 0)
			cancelled++;
		}
	CHECK(cancelled == 0, "Y's rollback while the prune runs: cancel in "
	                      "%d turns", cancelled);
	CHECK(counts(&t, "acme", x, &info) == FBX_ENOT_FOUND &&
	        counts(&t, "acme", w, &info) == FBX_ENOT_FOUND,
	    "W and X pruned");
	rc = rb_cmd(&t, y, NULL, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.per_action[FBX_RB_NOTHING] == 1 &&
	        rep.u.rollback.per_action[FBX_RB_CANCEL] == 0 &&
	        rep.u.rollback.nrows == 1 &&
	        strstr(rep.u.rollback.rows[0].detail, "cannot be followed") !=
	            NULL,
	    "Y's rollback after the prune: nothing %u, cancel %u (%s)",
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING] : 0,
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_CANCEL] : 0,
	    rc == FBX_OK && rep.u.rollback.nrows > 0
	        ? rep.u.rollback.rows[0].detail
	        : "");
	fbx_console_rep_free(&rep);
	free(s);
	env_close(&t);
}

/* pruned_selected - X supersedes W (waiting for its offline device;
 * the link as written before links held what W is selected by);
 * W is done and retention (shorter than the time to live) prunes it one
 * record a turn. A rollback that selects both W and X cancels X in every
 * turn, also while W's delivery is gone and its command and link are
 * not: W is rolled back by that same run, so X stands in for nothing */
static void
test_pruned_selected(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t w, x, ids[2];
	int rc, bad = 0, partial = 0, plans = 0, gone = 0;

	CHECK(env_open(&t, "rbps") == 0, "open");
	x = w_then_x(&t, s, 60, &w);
	/* the link as written before it held what W is selected by: the
	 * rollback decides from W's command while it is there */
	{
		char key[FBX_KV_KEY_MAX];
		size_t len = 0;
		link_key_of(key, sizeof(key), x, FBX_DLV_ID(w, 0));
		CHECK(link_edit(&t, key, 24, &len) == FBX_OK && len == 112,
		    "the link cut to 24 bytes (was %zu)", len);
	}
	t.prune_budget = 1;
	CHECK(env_reopen(&t) == 0, "reopen with a prune budget of 1");
	ids[0] = w;
	ids[1] = x;
	/* one turn per plan, so that every state of the prune is seen */
	for (int i = 0; i < 100 && !gone; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int xrows = 0, xcancel = 0, wrows = 0;

		advance(&t, 1000);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		req.u.rollback.sel.command_ids = ids;
		req.u.rollback.sel.ncommand_ids = 2;
		req.u.rollback.sliced = 1;
		req.u.rollback.limit = 1000;
		console(&t, "ops", "acme", &req);
		turn(&t);
		rc = reply(&t, "ops", &rep);
		if (rc == FBX_ENOT_FOUND) {
			gone = 1; /* W pruned: the rollback names a command
			             the organisation no longer has */
		} else if (rc == FBX_OK) {
			plans++;
			for (uint32_t k = 0; k < rep.u.rollback.nrows; k++) {
				const struct fbx_rb_row *row =
				    &rep.u.rollback.rows[k];
				if (row->command_id == x) {
					xrows++;
					xcancel += row->action == FBX_RB_CANCEL;
				} else if (row->command_id == w) {
					wrows++;
				}
			}
			if (xrows != 1 || xcancel != 1) {
				bad++;
				fprintf(stderr, "turn %d: X's row: %s\n", i,
				    rep.u.rollback.nrows > 0
				        ? rep.u.rollback.rows[0].detail
				        : "-");
			}
			if (i >= 55 && wrows == 0)
				partial++;
		} else {
			bad++;
		}
		fbx_console_rep_free(&rep);
	}
	CHECK(bad == 0, "the rollback of W and X cancels X in every turn: "
	                "%d of %d plans did not", bad, plans);
	CHECK(partial > 0 && gone, "W seen without its delivery (%d turns), "
	                           "then gone (%d)", partial, gone);
	free(s);
	env_close(&t);
}

/* pruned_by_filter - as pruned_selected, with a rollback that selects
 * by type (every lock) rather than by id: X is cancelled in every turn,
 * also once retention has pruned W in full (W's link says what a filter
 * selects it by); a rollback of the locks created since X leaves X for
 * pruned W (the link's creation time) */
static void
test_pruned_by_filter(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_command info;
	uint64_t w, x;
	int rc, bad = 0, plans = 0;

	CHECK(env_open(&t, "rbpf") == 0, "open");
	x = w_then_x(&t, s, 60, &w);
	t.prune_budget = 1;
	CHECK(env_reopen(&t) == 0, "reopen with a prune budget of 1");
	for (int i = 0; i < 100; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int xrows = 0, xcancel = 0, wrows = 0;

		advance(&t, 1000);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		req.u.rollback.sel.type = FBX_CMD_LOCK;
		req.u.rollback.sliced = 1;
		req.u.rollback.limit = 1000;
		console(&t, "ops", "acme", &req);
		turn(&t);
		rc = reply(&t, "ops", &rep);
		if (rc == FBX_OK) {
			plans++;
			for (uint32_t k = 0; k < rep.u.rollback.nrows; k++) {
				const struct fbx_rb_row *row =
				    &rep.u.rollback.rows[k];
				if (row->command_id == x) {
					xrows++;
					xcancel += row->action == FBX_RB_CANCEL;
				} else if (row->command_id == w) {
					wrows++;
				}
			}
			if (xrows != 1 || xcancel != 1) {
				bad++;
				fprintf(stderr, "turn %d: X's row: %s\n", i,
				    rep.u.rollback.nrows > 0
				        ? rep.u.rollback.rows[0].detail
				        : "-");
			}
		} else {
			bad++;
		}
		fbx_console_rep_free(&rep);
	}
	CHECK(bad == 0, "the rollback of every lock cancels X in every turn: "
	                "%d of %d plans did not", bad, plans);
	CHECK(counts(&t, "acme", w, &info) == FBX_ENOT_FOUND, "W pruned");
	/* locks created since X only: pruned W is not selected, and X
	 * stands in for it (its time to live runs) */
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;

		CHECK(counts(&t, "acme", x, &info) == FBX_OK, "X there");
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		req.u.rollback.sel.type = FBX_CMD_LOCK;
		req.u.rollback.sel.since_ms = info.created_ms;
		req.u.rollback.sliced = 1;
		req.u.rollback.limit = 1000;
		console(&t, "ops", "acme", &req);
		turn(&t);
		rc = reply(&t, "ops", &rep);
		CHECK(rc == FBX_OK && rep.u.rollback.nrows == 1 &&
		        rep.u.rollback.rows[0].action == FBX_RB_NOTHING &&
		        strstr(rep.u.rollback.rows[0].detail, "stands in") !=
		            NULL,
		    "the rollback of locks since X leaves X for pruned W: %s",
		    rc == FBX_OK && rep.u.rollback.nrows > 0
		        ? rep.u.rollback.rows[0].detail
		        : "-");
		fbx_console_rep_free(&rep);
	}
	free(s);
	env_close(&t);
}

/* link_v1 - a supersede link written before links held what a filter
 * selects the older command by (24 bytes) is still read: X stands in for
 * W until W is rolled back, and the rollback that flags the link
 * rewrites it; then X's rollback cancels X */
static void
test_link_v1(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint32_t pa[FBX_RB_COUNT];
	uint64_t w, x, wd;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	CHECK(env_open(&t, "rblv1") == 0, "open");
	x = w_then_x(&t, s, 0, &w);
	wd = FBX_DLV_ID(w, 0);
	/* the link cut to its first 24 bytes, as an older binary wrote it */
	link_key_of(key, sizeof(key), x, wd);
	CHECK(link_edit(&t, key, 24, &len) == FBX_OK && len == 112,
	    "the link cut to 24 bytes (was %zu)", len);
	rc = rb_plan(&t, x, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_NOTHING] == 1 && pa[FBX_RB_CANCEL] == 0,
	    "X's rollback with W not rolled back: nothing %u, cancel %u",
	    pa[FBX_RB_NOTHING], pa[FBX_RB_CANCEL]);
	{
		struct fbx_console_rep rep;
		rc = rb_cmd(&t, w, NULL, 1, &rep);
		CHECK(rc == FBX_OK && rep.u.rollback.executed,
		    "W rolled back: %d", rc);
		fbx_console_rep_free(&rep);
	}
	rc = rb_plan(&t, x, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 && pa[FBX_RB_NOTHING] == 0,
	    "X's rollback after W's: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL], pa[FBX_RB_NOTHING]);
	CHECK(link_edit(&t, key, 0, &len) == FBX_OK && len == 112,
	    "the link rewritten whole by W's rollback: %zu bytes", len);
	free(s);
	env_close(&t);
}

/* damaged_link - X superseded W, and X's link to W is damaged (30
 * bytes): W's rollback still executes (the link is left, logged), and
 * X's rollback leaves X, as for any damaged link */
static void
test_damaged_link(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	uint32_t pa[FBX_RB_COUNT];
	uint64_t w, x, wd;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	CHECK(env_open(&t, "rbdl") == 0, "open");
	x = w_then_x(&t, s, 0, &w);
	wd = FBX_DLV_ID(w, 0);
	link_key_of(key, sizeof(key), x, wd);
	CHECK(link_edit(&t, key, 30, &len) == FBX_OK, "link damaged");
	rc = rb_cmd(&t, w, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed,
	    "W's rollback executes despite X's damaged link: %d", rc);
	fbx_console_rep_free(&rep);
	rc = rb_plan(&t, x, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_NOTHING] == 1 && pa[FBX_RB_CANCEL] == 0,
	    "X's rollback leaves X: nothing %u, cancel %u",
	    pa[FBX_RB_NOTHING], pa[FBX_RB_CANCEL]);
	free(s);
	env_close(&t);
}

/* chain_closed_at_creation - X superseded W, which a rollback had
 * withdrawn (the link X -> W rolled back from the start, leading no
 * further); Y superseded X, and X is rolled back: Y carries nothing, and
 * its rollback cancels it, also after retention pruned W and X */
static void
test_chain_closed_at_creation(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	const char *holder;
	uint64_t w, x, y, wd;
	int rc;

	CHECK(env_open(&t, "rbcc") == 0, "open");
	t.io.gw_keys = 1;
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention 60 s");
	enroll(&t, "acme", 200);
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	turn(&t);
	sent_to(&t, s, 0);
	w = lock_devs(&t, 7, 1);
	wd = FBX_DLV_ID(w, 0);
	holder = out_withdrawn(&t, s, w, wd);
	results(&t, holder, 1, &wd, 1, FBX_R_OFFLINE);
	turn(&t);
	x = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", w, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "W superseded by X: %u", info.counts[FBX_D_SUPERSEDED]);
	y = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X superseded by Y: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "X rolled back: %d",
	    rc);
	fbx_console_rep_free(&rep);
	for (int k = 0; k < 2; k++) {
		rc = rb_cmd(&t, y, NULL, 0, &rep);
		CHECK(rc == FBX_OK &&
		        rep.u.rollback.per_action[FBX_RB_CANCEL] == 1,
		    "Y's rollback %s the prune: cancel %u, nothing %u (%s)",
		    k == 0 ? "before" : "after",
		    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_CANCEL] : 0,
		    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING] : 0,
		    rc == FBX_OK && rep.u.rollback.nrows > 0
		        ? rep.u.rollback.rows[0].detail
		        : "");
		fbx_console_rep_free(&rep);
		if (k == 1)
			break;
		for (int i = 0; i < 100; i++) {
			advance(&t, 1000);
			heartbeat(&t, "g1");
			heartbeat(&t, "g2");
			turn(&t);
		}
		CHECK(counts(&t, "acme", x, &info) == FBX_ENOT_FOUND &&
		        counts(&t, "acme", w, &info) == FBX_ENOT_FOUND,
		    "W and X pruned");
	}
	free(s);
	env_close(&t);
}

/* rollback_marks_sliced - a rollback in slices of 4 deliveries marks
 * every accepted delivery of a lock of 10 devices (rbf/), also in the
 * slices that hold nothing else to do */
static void
test_rollback_marks_sliced(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	char pfx[64];
	uint64_t a;
	int rc;

	CHECK(env_open(&t, "rbs") == 0, "open");
	t.rollback_slice = 4;
	CHECK(env_reopen(&t) == 0, "reopen with slices of 4");
	enroll(&t, "acme", 200);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);
	a = lock_devs(&t, 0, 10);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 10, "lock sent: %zu", s->nids);
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_sliced(&t, a);
	CHECK(rc == FBX_OK, "sliced rollback: %d", rc);
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)a);
	CHECK(kv_records(&t, pfx, 0) == 10, "marks: %d", kv_records(&t, pfx, 0));
	free(s);
	env_close(&t);
}

/* prune_markers_budget - retention deletes a command's rollback markers
 * and supersede links within the same per-turn budget as its
 * deliveries: a command with many of them is pruned over several turns,
 * not in one long one, and goes once they are all gone. */
static void
test_prune_markers_budget(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_command info;
	char comp[64], sup[64], rbf[64];
	uint64_t a;
	int turns = 0, n;

	CHECK(env_open(&t, "prb") == 0, "open");
	t.retention_s = 60;
	t.prune_budget = 8;
	CHECK(env_reopen(&t) == 0, "reopen with retention");
	enroll(&t, "acme", 10);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);
	a = submit_org(&t, "acme");
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.state == FBX_C_DONE,
	    "done: %d", info.state);
	/* 25 markers, 5 marks of deliveries in flight and 3 links of its
	 * deliveries (as a rollback and supersede write them): 43 records
	 * with its 10 deliveries */
	snprintf(comp, sizeof(comp), "comp/acme/%llu/", (unsigned long long)a);
	snprintf(sup, sizeof(sup), "sup/acme/%llu/", (unsigned long long)a);
	snprintf(rbf, sizeof(rbf), "rbf/acme/%llu/", (unsigned long long)a);
	CHECK(kv_records(&t, comp, 25) == 25, "markers written");
	CHECK(kv_records(&t, rbf, 5) == 5, "in-flight marks written");
	CHECK(kv_records(&t, sup, 3) == 3, "links written");
	/* past retention; a younger command keeps the newest id */
	advance(&t, 61000);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	submit_org(&t, "acme");
	/* 8 records a turn: the deliveries in two turns, 6 markers in
	 * the second */
	for (int i = 0; i < 2; i++) {
		advance(&t, 1001);
		turn(&t);
	}
	n = kv_records(&t, comp, 0);
	CHECK(n == 19, "markers after two turns: %d", n);
	/* this read is the reopened engine's first turn: it prunes 8 */
	CHECK(counts(&t, "acme", a, &info) == FBX_OK,
	    "the command stays while its markers do");
	/* 11 markers, 5 marks and 3 links left: three more turns */
	while (counts(&t, "acme", a, &info) == FBX_OK && turns < 20) {
		advance(&t, 1001);
		turn(&t);
		turns++;
	}
	CHECK(turns == 3, "pruned after %d more turns", turns);
	CHECK(kv_records(&t, comp, 0) == 0 && kv_records(&t, sup, 0) == 0 &&
	        kv_records(&t, rbf, 0) == 0,
	    "markers, marks and links gone with the command");
	free(s);
	env_close(&t);
}

int
main(void)
{
	test_rollback_withdraws_inflight();
	test_withdrawn_keys_and_supersede();
	test_rollback_marks_sliced();
	test_marks_pruned_chain();
	test_chain_closed_at_creation();
	test_pruned_selected();
	test_pruned_by_filter();
	test_link_v1();
	test_damaged_link();
	test_prune_markers_budget();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
