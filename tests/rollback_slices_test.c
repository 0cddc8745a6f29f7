/*
 * rollback_slices_test.c: rollback and replay run in bounded slices
 * (issue 8, "Bounded turns"). The daemon runs with --rollback-slice 4 (at
 * most 4 deliveries and 1 command looked at per request) over 8 locks of
 * 5 devices each (of 500: the lock limit is 10%), one device of which
 * a later unlock changed:
 * - a client that does not continue slices is refused (TOOBIG), never
 *   handed part of the selection;
 * - every reply stays within the budget and carries a cursor until the
 *   run is done; the slices' plans add up to the whole (39 to
 *   compensate, 1 changed since), by ids and by filter;
 * - executed in slices with a kill -9 between two slices and the last
 *   slice run again from its cursor after the restart: 39 devices
 *   unlocked, each once (a later plan finds all 39 compensated before),
 *   every slice's audit record names the first slice's rollback id;
 * - a forced replay in slices resends each of the 40 deliveries once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ORG "org-001"
#define NCMD 8
#define PER 5
#define SLICE 4
/* a reply looks at no more than the budget: SLICE deliveries and one
 * command, plus the command it resumed */
#define LOOK_MAX (SLICE + 2)
#define SLICES_MAX 400 /* hang guard */

static size_t
ids_of(struct fbxt_env *t, fbx_id *out, size_t max)
{
	char after[FBX_ID_MAX + 1] = "";
	size_t n = 0;

	while (n < max) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_DEVICES;
		req.u.list_devices.limit = 1000;
		snprintf(req.u.list_devices.after,
		    sizeof(req.u.list_devices.after), "%s", after);
		if (fbxt_call(t, ORG, &req, &rep) != FBX_OK) {
			fbx_console_rep_free(&rep);
			break;
		}
		for (size_t i = 0; i < rep.u.devices.n && n < max; i++)
			memcpy(out[n++], rep.u.devices.devs[i].id, sizeof(fbx_id));
		snprintf(after, sizeof(after), "%s", rep.u.devices.next_after);
		fbx_console_rep_free(&rep);
		if (after[0] == '\0')
			break;
	}
	return n;
}

struct run {
	uint64_t *ids;
	size_t nids;
	int type; /* filter instead of ids */
	int execute, sliced;
	uint64_t cursor, last, rbid;
};

static int
rb_slice(struct fbxt_env *t, const struct run *u, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	snprintf(req.actor, sizeof(req.actor), "frank");
	req.u.rollback.sel.command_ids = u->ids;
	req.u.rollback.sel.ncommand_ids = u->nids;
	req.u.rollback.sel.type = u->type;
	req.u.rollback.sel.origin = u->type ? FBX_ORIGIN_OPERATOR : 0;
	req.u.rollback.execute = u->execute;
	req.u.rollback.limit = 100;
	req.u.rollback.cursor = u->cursor;
	req.u.rollback.last_command_id = u->last;
	req.u.rollback.rollback_id = u->rbid;
	req.u.rollback.sliced = u->sliced;
	snprintf(req.u.rollback.note, sizeof(req.u.rollback.note), "slices");
	return fbxt_call(t, ORG, &req, rep);
}

struct tally {
	uint32_t commands, per[FBX_RB_COUNT];
	size_t slices, ncomp;
	uint64_t comp[256];
	uint64_t rbid;
};

/* add - check one slice's reply and add it up; advance u's cursor. */
static void
add(struct tally *s, struct run *u, const struct fbx_rb_plan *p)
{
	s->slices++;
	s->commands += p->commands;
	for (int k = 0; k < FBX_RB_COUNT; k++)
		s->per[k] += p->per_action[k];
	for (size_t i = 0; i < p->ncomp && s->ncomp < 256; i++)
		s->comp[s->ncomp++] = p->comp_ids[i];
	FBXT_CHECK(p->looked_at <= LOOK_MAX,
	    "slice %zu looked at %u (budget %d)", s->slices, p->looked_at,
	    LOOK_MAX);
	FBXT_CHECK(p->last_command_id != 0, "slice %zu: no snapshot",
	    s->slices);
	/* progress: the cursor moved, or later commands were surveyed */
	FBXT_CHECK(p->next_cursor != u->cursor || p->next_cursor == 0 ||
	        p->later_commands > 0,
	    "slice %zu made no progress (cursor %llu)", s->slices,
	    (unsigned long long)p->next_cursor);
	if (u->execute) {
		FBXT_CHECK(p->executed, "slice %zu not executed", s->slices);
		if (s->rbid == 0)
			s->rbid = p->rollback_id;
		else
			FBXT_CHECK(p->rollback_id == s->rbid,
			    "slice %zu: rollback id %llu, first %llu", s->slices,
			    (unsigned long long)p->rollback_id,
			    (unsigned long long)s->rbid);
	}
	u->cursor = p->next_cursor;
	u->last = p->next_cursor ? p->last_command_id : 0;
	u->rbid = u->execute && p->next_cursor ? s->rbid : 0;
}

/* run_all - every slice from u's cursor to the end. */
static int
run_all(struct fbxt_env *t, struct run *u, struct tally *s)
{
	for (int i = 0; i < SLICES_MAX; i++) {
		struct fbx_console_rep rep;
		int rc = rb_slice(t, u, &rep);
		if (rc != FBX_OK) {
			fbx_console_rep_free(&rep);
			return rc;
		}
		add(s, u, &rep.u.rollback);
		fbx_console_rep_free(&rep);
		if (u->cursor == 0)
			return FBX_OK;
	}
	return FBX_ETIMEOUT;
}

static int
replay_all(struct fbxt_env *t, uint64_t *ids, size_t n, uint32_t *resent,
    size_t *slices)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t cursor = 0, last = 0;

	*resent = 0;
	*slices = 0;
	for (int i = 0; i < SLICES_MAX; i++) {
		int rc;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_REPLAY;
		snprintf(req.actor, sizeof(req.actor), "frank");
		req.u.replay.sel.command_ids = ids;
		req.u.replay.sel.ncommand_ids = n;
		req.u.replay.state = FBX_D_SUCCEEDED;
		req.u.replay.force = 1;
		req.u.replay.execute = 1;
		req.u.replay.sliced = 1;
		req.u.replay.cursor = cursor;
		req.u.replay.last_command_id = last;
		rc = fbxt_call(t, ORG, &req, &rep);
		if (rc != FBX_OK) {
			fbx_console_rep_free(&rep);
			return rc;
		}
		++*slices;
		*resent += rep.u.replay.resent;
		FBXT_CHECK(rep.u.replay.looked_at <= LOOK_MAX,
		    "replay slice looked at %u", rep.u.replay.looked_at);
		FBXT_CHECK(rep.u.replay.resent <= SLICE,
		    "replay slice resent %u", rep.u.replay.resent);
		cursor = rep.u.replay.next_cursor;
		last = rep.u.replay.last_command_id;
		fbx_console_rep_free(&rep);
		if (cursor == 0)
			return FBX_OK;
	}
	return FBX_ETIMEOUT;
}

int
main(void)
{
	struct fbxt_env t;
	struct fbxt_report rr;
	struct fbx_console_rep rep;
	struct tally s;
	struct run u;
	fbx_id devs[NCMD * PER];
	uint64_t locks[NCMD], unlock = 0;
	char report[400], report2[400];
	size_t n, crash_at = 0;
	int rc;

	if (fbxt_setup(&t, "rbslices") != 0 ||
	    fbxt_daemon_start(&t, "--rollback-slice", "4", NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start (--rollback-slice)");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "500", "--orgs", "1",
	    "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	n = ids_of(&t, devs, NCMD * PER);
	FBXT_CHECK(n == NCMD * PER, "%zu devices", n);
	if (n != NCMD * PER)
		goto out;
	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	snprintf(report2, sizeof(report2), "%s/report2.txt", t.dir);
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "500", "--orgs", "1",
	    "--fail-ratio", "0", "--offline-ratio", "0", "--report", report,
	    "--quiet", NULL);
	FBXT_CHECK(rc == 0, "sim start %d", rc);

	/* 8 locks of 5 devices, then an unlock of the first device */
	for (int i = 0; i < NCMD; i++) {
		const char *ids[PER];
		uint32_t count = 0;
		for (int k = 0; k < PER; k++)
			ids[k] = devs[i * PER + k];
		rc = fbxt_submit(&t, ORG, FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
		    FBX_TARGET_DEVICES, NULL, ids, PER, NULL, &locks[i],
		    &count);
		FBXT_CHECK(rc == FBX_OK && count == PER, "lock %d rc %d", i, rc);
	}
	for (int i = 0; i < NCMD; i++)
		FBXT_CHECK(fbxt_wait_settled(&t, ORG, locks[i], 60000, NULL) ==
		        0,
		    "lock %d did not settle", i);
	{
		const char *one[1] = { devs[0] };
		uint32_t count = 0;
		rc = fbxt_submit(&t, ORG, FBX_CMD_UNLOCK, FBX_ORIGIN_OPERATOR,
		    FBX_TARGET_DEVICES, NULL, one, 1, NULL, &unlock, &count);
		FBXT_CHECK(rc == FBX_OK, "unlock rc %d", rc);
		FBXT_CHECK(fbxt_wait_settled(&t, ORG, unlock, 60000, NULL) == 0,
		    "unlock did not settle");
	}

	/* 1. a client that does not continue slices is refused */
	memset(&u, 0, sizeof(u));
	u.ids = locks;
	u.nids = NCMD;
	u.execute = 1;
	rc = rb_slice(&t, &u, &rep);
	FBXT_CHECK(rc == FBX_ETOOBIG, "unsliced execute: rc %d", rc);
	fbx_console_rep_free(&rep);

	/* 2. the plan in slices adds up to the whole: by ids, by filter */
	memset(&u, 0, sizeof(u));
	memset(&s, 0, sizeof(s));
	u.ids = locks;
	u.nids = NCMD;
	u.sliced = 1;
	rc = run_all(&t, &u, &s);
	FBXT_CHECK(rc == FBX_OK, "plan by ids rc %d", rc);
	FBXT_CHECK(s.slices > NCMD, "plan in %zu slices", s.slices);
	FBXT_CHECK(s.commands == NCMD && s.per[FBX_RB_COMPENSATE] == 39 &&
	        s.per[FBX_RB_CHANGED] == 1 && s.ncomp == 0,
	    "plan: %u commands, %u compensate, %u changed, %zu comp",
	    s.commands, s.per[FBX_RB_COMPENSATE], s.per[FBX_RB_CHANGED],
	    s.ncomp);
	memset(&u, 0, sizeof(u));
	memset(&s, 0, sizeof(s));
	u.type = FBX_CMD_LOCK;
	u.sliced = 1;
	rc = run_all(&t, &u, &s);
	FBXT_CHECK(rc == FBX_OK, "plan by filter rc %d", rc);
	FBXT_CHECK(s.commands == NCMD && s.per[FBX_RB_COMPENSATE] == 39 &&
	        s.per[FBX_RB_CHANGED] == 1,
	    "filter plan: %u commands, %u compensate, %u changed", s.commands,
	    s.per[FBX_RB_COMPENSATE], s.per[FBX_RB_CHANGED]);

	/* 3. execute in slices; kill -9 after a few slices that did work,
	 * restart, run the last slice again from its cursor, go on */
	memset(&u, 0, sizeof(u));
	memset(&s, 0, sizeof(s));
	u.ids = locks;
	u.nids = NCMD;
	u.execute = 1;
	u.sliced = 1;
	for (int i = 0; i < SLICES_MAX && crash_at == 0; i++) {
		struct run before = u;
		rc = rb_slice(&t, &u, &rep);
		FBXT_CHECK(rc == FBX_OK, "execute slice rc %d", rc);
		if (rc != FBX_OK) {
			fbx_console_rep_free(&rep);
			goto out;
		}
		add(&s, &u, &rep.u.rollback);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(u.cursor != 0, "done before the crash point");
		if (u.cursor == 0)
			goto out;
		if (s.per[FBX_RB_COMPENSATE] >= 12 &&
		    s.per[FBX_RB_COMPENSATE] < 39 && s.ncomp > 0) {
			/* the reply of this slice is "lost": go back to its
			 * cursor after the crash */
			crash_at = s.slices;
			u = before;
			if (u.execute && u.cursor != 0)
				u.rbid = s.rbid;
		}
	}
	rc = fbxt_daemon_kill(&t, SIGKILL);
	FBXT_CHECK(fbxt_daemon_start(&t, "--rollback-slice", "4", NULL) == 0,
	    "restart");
	{
		uint32_t comp_before = s.per[FBX_RB_COMPENSATE];
		rc = run_all(&t, &u, &s);
		FBXT_CHECK(rc == FBX_OK, "execute after restart rc %d", rc);
		FBXT_CHECK(s.per[FBX_RB_DONE_BEFORE] > 0 &&
		        s.per[FBX_RB_COMPENSATE] - comp_before +
		                s.per[FBX_RB_DONE_BEFORE] <=
		            39,
		    "rerun slice: %u done before", s.per[FBX_RB_DONE_BEFORE]);
	}
	/* compensated once each: 39 in all, none twice */
	FBXT_CHECK(s.per[FBX_RB_COMPENSATE] == 39 && s.per[FBX_RB_CHANGED] >= 1,
	    "executed: %u compensated, %u changed, %u done before",
	    s.per[FBX_RB_COMPENSATE], s.per[FBX_RB_CHANGED],
	    s.per[FBX_RB_DONE_BEFORE]);
	{
		uint32_t dl = 0;
		for (size_t i = 0; i < s.ncomp; i++) {
			struct fbx_command info;
			FBXT_CHECK(fbxt_wait_settled(&t, ORG, s.comp[i], 60000,
			               &info) == 0,
			    "compensation %llu did not settle",
			    (unsigned long long)s.comp[i]);
			dl += info.ndeliveries;
		}
		FBXT_CHECK(dl == 39, "compensating deliveries: %u", dl);
	}
	{
		struct tally p;
		memset(&u, 0, sizeof(u));
		memset(&p, 0, sizeof(p));
		u.ids = locks;
		u.nids = NCMD;
		u.sliced = 1;
		rc = run_all(&t, &u, &p);
		FBXT_CHECK(rc == FBX_OK && p.per[FBX_RB_DONE_BEFORE] == 39 &&
		        p.per[FBX_RB_COMPENSATE] == 0,
		    "after: %u done before, %u to compensate",
		    p.per[FBX_RB_DONE_BEFORE], p.per[FBX_RB_COMPENSATE]);
	}
	/* every slice's audit record names the first slice's rollback id */
	{
		struct fbx_console_req req;
		char want[64];
		size_t nrec = 0, named = 0;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		snprintf(req.u.audit_list.action,
		    sizeof(req.u.audit_list.action), "rollback");
		req.u.audit_list.limit = 1000;
		snprintf(want, sizeof(want), "\"rollback_id\":%llu,",
		    (unsigned long long)s.rbid);
		rc = fbxt_call(&t, ORG, &req, &rep);
		FBXT_CHECK(rc == FBX_OK, "audit list rc %d", rc);
		for (size_t i = 0; rc == FBX_OK && i < rep.u.audit.n; i++) {
			nrec++;
			named += strstr(rep.u.audit.r[i].params, want) != NULL;
		}
		fbx_console_rep_free(&rep);
		FBXT_CHECK(nrec > 1 && named == nrec,
		    "%zu of %zu rollback records name rollback %llu", named,
		    nrec, (unsigned long long)s.rbid);
	}
	FBXT_CHECK(crash_at > 0, "no crash point");

	/* 4. replay in slices: a fresh gateway receives each of the 40
	 * lock deliveries exactly once */
	rc = fbxt_sim_stop(&t);
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "500", "--orgs", "1",
	    "--fail-ratio", "0", "--offline-ratio", "0", "--report", report2,
	    "--quiet", NULL);
	FBXT_CHECK(rc == 0, "sim restart %d", rc);
	{
		uint32_t resent = 0;
		size_t slices = 0;
		rc = replay_all(&t, locks, NCMD, &resent, &slices);
		FBXT_CHECK(rc == FBX_OK && resent == NCMD * PER && slices > 1,
		    "replay rc %d: %u resent in %zu slices", rc, resent, slices);
	}
	for (int i = 0; i < NCMD; i++)
		FBXT_CHECK(fbxt_wait_settled(&t, ORG, locks[i], 60000, NULL) ==
		        0,
		    "replayed lock %d did not settle", i);
	rc = fbxt_sim_stop(&t);
	FBXT_CHECK(fbxt_report_read(report2, &rr) == 0, "report");
	FBXT_CHECK(rr.received == NCMD * PER && rr.distinct == NCMD * PER &&
	        rr.duplicates == 0,
	    "replayed: received %llu, distinct %llu, duplicates %llu",
	    (unsigned long long)rr.received, (unsigned long long)rr.distinct,
	    (unsigned long long)rr.duplicates);
out:
	fbxt_teardown(&t);
	return fbxt_done();
}
