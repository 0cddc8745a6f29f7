/*
 * incident_rules_test.c: the rules that stop a mass false positive
 * (issue 9), in-process on a fake clock (engine_fake.c), turn by turn:
 * - an automatic lock settles (journaled, counted, not sent) for its
 *   reason's settle delay, then goes out; operator commands never settle;
 *   a settle delay of 0 turns it off;
 * - a storm trips its organisation's breaker within the allowance
 *   max(1, 1% of the fleet) and the trip holds every storm command still
 *   settling: none reaches a device; an automatic lock submitted before
 *   the storm's onset is not held and goes out;
 * - the onset recorded at the trip is the storm's first command;
 * - several organisations tripping together trip the global breaker,
 *   which holds what settles in every organisation;
 * - the fleet-wide rule trips the global breaker when the reason passes a
 *   share of every enrolled device, however it is spread;
 * - a settling command survives a restart;
 * - released held commands go out in staged waves, not at once;
 * - a newer lock for a device supersedes an older one still queued or
 *   pending for it, never one a gateway holds; the index that finds it
 *   is built only when two open commands of a kind meet (a command
 *   still expanding in slices, and after a restart, included);
 * - a dry run of a rollout through groups plans it stage by stage, and
 *   an approved rollout says it is running while its next group expands.
 *
 * The blast-radius limit's accounting (counts carried, recounted and
 * taken back out across holds, settle windows and window changes) is
 * in limit_accounting_test.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"
#include "engine_int.h"
#include "incident_util.h"
#include "metrics.h"

static const struct fbx_breaker_info *
find_brk(const struct fbx_console_rep *rep, const char *org)
{
	for (size_t i = 0; i < rep->u.breaker.n; i++)
		if (strcmp(rep->u.breaker.b[i].org, org) == 0 &&
		    strcmp(rep->u.breaker.b[i].reason, REASON) == 0)
			return &rep->u.breaker.b[i];
	return NULL;
}

/* org_window - org's own breaker of REASON as breaker status shows it:
 * its window count, and its state in *state (0 when not listed).
 * @return the count, or UINT64_MAX when the status failed or does not
 * list it. */
static uint64_t
org_window(struct env *t, const char *org, int *state)
{
	struct fbx_console_rep rep;
	const struct fbx_breaker_info *b = NULL;
	uint64_t n = UINT64_MAX;

	*state = 0;
	if (breaker(t, org, FBX_BRK_STATUS, 0, NULL, 0, &rep) == FBX_OK &&
	    (b = find_brk(&rep, org)) != NULL) {
		n = b->window_count;
		*state = b->state;
	}
	fbx_console_rep_free(&rep);
	return n;
}

/* An automatic lock settles 30 s by default, then goes out; an operator
 * lock goes out at once; settle 0 turns it off. */
static void
test_settle_basics(void)
{
	struct env t;
	struct fbx_command c;
	uint64_t id, op, batch = 0;
	int st;

	CHECK(env_open(&t, "settle") == 0, "open");
	enroll(&t, "acme", 300);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	(void)delivered(&t, "g1", &batch);

	CHECK(auto_lock(&t, "acme", 1, &id, &st) == FBX_OK, "auto lock");
	CHECK(st == FBX_C_SETTLING, "state %d, want settling", st);
	CHECK(cmd_state(&t, "acme", id, &c) == FBX_C_SETTLING, "get: %d",
	    c.state);
	/* the fake clock: due exactly the default 30 s after submit */
	CHECK(c.settle_until_ms == c.created_ms + 30000,
	    "settle_until %lld, created %lld", (long long)c.settle_until_ms,
	    (long long)c.created_ms);
	CHECK(delivered(&t, "g1", &batch) == 0, "nothing sent while it "
	                                        "settles");

	/* an operator lock does not wait */
	CHECK(operator_lock(&t, "acme", 2, &op, &st) == FBX_OK, "op lock");
	CHECK(st != FBX_C_SETTLING && st != FBX_C_HELD, "operator state %d",
	    st);
	CHECK(delivered(&t, "g1", &batch) == 1, "operator lock sent at once");

	pass(&t, "g1", 29000);
	CHECK(delivered(&t, "g1", &batch) == 0, "not before 30 s");
	CHECK(cmd_state(&t, "acme", id, &c) == FBX_C_SETTLING, "still "
	                                                        "settling");
	(void)events_of(&t, 0);
	pass(&t, "g1", 1000);
	CHECK(delivered(&t, "g1", &batch) == 1, "sent after 30 s");
	CHECK(events_of(&t, FBX_EV_COMMAND_SETTLED) == 1, "settled event");
	st = cmd_state(&t, "acme", id, &c);
	CHECK(st == FBX_C_DONE || st == FBX_C_ACTIVE, "state %d after release",
	    st);
	CHECK(strstr(c.note, "released") != NULL &&
	        strstr(c.note, "no breaker of reason '" REASON "' was open") !=
	            NULL,
	    "verdict in note: %s", c.note);
	CHECK(c.settle_until_ms == c.created_ms + 30000,
	    "settle time kept after release");

	/* settle 0: no wait */
	settle_set(&t, "acme", 0);
	CHECK(auto_lock(&t, "acme", 3, &id, &st) == FBX_OK, "auto lock");
	CHECK(st != FBX_C_SETTLING && st != FBX_C_HELD, "settle 0: state %d",
	    st);
	CHECK(delivered(&t, "g1", &batch) == 1, "settle 0: sent at once");
	env_close(&t);
}

/* The storm: a baseline lock before it goes out; the storm trips the
 * organisation's breaker within 1% of the fleet, the trip holds what of
 * the storm still settles, and not one storm lock reaches a device. */
static void
test_storm_held(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_rep rep;
	uint64_t base, ids[8], batch = 0;
	int64_t onset;
	int st, held = 0;

	CHECK(env_open(&t, "storm") == 0, "open");
	enroll(&t, "small", 308);
	enroll(&t, "other", 308);
	hello(&t, "g1", "small", 1000);
	turn(&t);
	(void)delivered(&t, "g1", &batch);

	CHECK(auto_lock(&t, "small", 0, &base, &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "baseline lock settles: %d", st);
	pass(&t, "g1", 15000);
	onset = t.io.wall;
	for (unsigned i = 0; i < 8; i++) {
		CHECK(auto_lock(&t, "small", 10 + i, &ids[i], &st) == FBX_OK,
		    "storm %u", i);
		held += st == FBX_C_HELD;
		pass(&t, "g1", 200);
	}
	CHECK(held >= 8 - 2, "%d of 8 storm locks held at submit", held);
	CHECK(breaker(&t, "small", FBX_BRK_STATUS, 0, NULL, 0, &rep) == FBX_OK,
	    "status");
	{
		const struct fbx_breaker_info *b = find_brk(&rep, "small");
		CHECK(b != NULL && b->state == FBX_BS_OPEN, "small's breaker "
		                                            "open");
		CHECK(b != NULL && b->allowance == 3, "allowance %u, want 3 "
		                                      "(1%% of 308)",
		    b ? b->allowance : 0);
		CHECK(b != NULL && b->onset_ms == onset,
		    "onset %lld, want the storm's first lock %lld",
		    b ? (long long)b->onset_ms : 0LL, (long long)onset);
	}
	fbx_console_rep_free(&rep);
	for (unsigned i = 0; i < 8; i++)
		CHECK(cmd_state(&t, "small", ids[i], &c) == FBX_C_HELD,
		    "storm lock %u: state %d (%s)", i, c.state, c.note);
	/* the submit's record of a held lock counts the device its target
	 * reaches (it said 0: no delivery is made while it is held) */
	{
		struct fbx_audit_rec ar;
		CHECK(last_audit(&t, "small", "submit", &ar) == 0 &&
		        strstr(ar.params, "\"devices\":1") != NULL &&
		        strstr(ar.params, "\"state\":\"held\"") != NULL,
		    "held lock's submit record: %s", ar.params);
	}
	CHECK(cmd_state(&t, "small", base, &c) == FBX_C_SETTLING,
	    "baseline lock before the onset still settles: %d", c.state);
	/* an operator lock still goes out while the breaker is open */
	{
		uint64_t op;
		CHECK(operator_lock(&t, "small", 100, &op, &st) == FBX_OK &&
		        st != FBX_C_HELD && st != FBX_C_SETTLING,
		    "operator lock: %d", st);
		CHECK(delivered(&t, "g1", &batch) == 1, "operator lock sent");
	}
	pass(&t, "g1", 60000);
	CHECK(delivered(&t, "g1", &batch) == 1,
	    "only the baseline lock reached a device");
	/* its note says why an open breaker let it go (it said "no
	 * breaker tripped") */
	CHECK(cmd_state(&t, "small", base, &c) >= 0 &&
	        strstr(c.note, "breaker small/") != NULL &&
	        strstr(c.note, "was open, but this command came before its "
	                       "onset") != NULL,
	    "baseline lock's note: %s", c.note);
	for (unsigned i = 0; i < 8; i++)
		CHECK(cmd_state(&t, "small", ids[i], &c) == FBX_C_HELD,
		    "storm lock %u still held", i);
	/* the runbook's hold: an operator trips the open breaker by hand
	 * later; the incident's trip time and onset stay (a rollback of
	 * the incident starts there), the breaker is now the operator's */
	{
		int64_t tripped = 0;
		uint64_t trips = 0;
		CHECK(breaker(&t, "small", FBX_BRK_STATUS, 0, NULL, 0, &rep) ==
		        FBX_OK,
		    "status");
		if (find_brk(&rep, "small") != NULL) {
			tripped = find_brk(&rep, "small")->tripped_ms;
			trips = find_brk(&rep, "small")->trips;
		}
		fbx_console_rep_free(&rep);
		pass(&t, "g1", 25000);
		CHECK(breaker(&t, "small", FBX_BRK_TRIP, 0, NULL, 0, &rep) ==
		        FBX_OK,
		    "trip by hand");
		fbx_console_rep_free(&rep);
		CHECK(breaker(&t, "small", FBX_BRK_STATUS, 0, NULL, 0, &rep) ==
		        FBX_OK,
		    "status");
		{
			const struct fbx_breaker_info *b = find_brk(&rep, "small");
			CHECK(b != NULL && b->state == FBX_BS_OPEN && b->manual,
			    "open, by hand");
			CHECK(b != NULL && b->tripped_by[0] != '\0' &&
			        strcmp(b->tripped_by, "engine") != 0 &&
			        strcmp(b->note, "settle_test") == 0,
			    "the operator's now: by '%s', note '%s'",
			    b ? b->tripped_by : "", b ? b->note : "");
			CHECK(b != NULL && b->onset_ms == onset,
			    "onset %lld after the trip by hand, want %lld",
			    b ? (long long)b->onset_ms : 0LL, (long long)onset);
			CHECK(b != NULL && b->tripped_ms == tripped &&
			        b->trips == trips,
			    "trip time %lld (trips %llu), want %lld (%llu)",
			    b ? (long long)b->tripped_ms : 0LL,
			    b ? (unsigned long long)b->trips : 0ULL,
			    (long long)tripped, (unsigned long long)trips);
		}
		fbx_console_rep_free(&rep);
		for (unsigned i = 0; i < 8; i++)
			CHECK(cmd_state(&t, "small", ids[i], &c) == FBX_C_HELD,
			    "storm lock %u held after the trip by hand", i);
		/* the audit record says it was open already, and what the
		 * trip held (nothing was settling any more) */
		{
			struct fbx_audit_rec a;
			CHECK(last_audit(&t, "small", "breaker.trip", &a) == 0 &&
			        strstr(a.params, "\"already_open\":true") !=
			            NULL &&
			        strstr(a.params, "\"held\":0") != NULL,
			    "breaker.trip params %s", a.params);
		}
	}
	env_close(&t);
}

/* With the settle window off, a small organisation loses at most
 * max(1, 1% of its fleet). */
static void
test_budget_small_org(void)
{
	struct env t;
	uint64_t id;
	int st, admitted = 0;

	CHECK(env_open(&t, "budget") == 0, "open");
	enroll(&t, "tiny", 50);
	enroll(&t, "mid", 308);
	settle_set(&t, "tiny", 0);
	{
		/* the organisations' own rule only */
		struct fbx_breaker_cfg cfg;
		struct fbx_console_rep rep;
		memset(&cfg, 0, sizeof(cfg));
		cfg.global_share_ppm = 1000000;
		CHECK(breaker(&t, "tiny", FBX_BRK_CONFIGURE, 1, &cfg, 0,
		          &rep) == FBX_OK,
		    "configure");
		fbx_console_rep_free(&rep);
	}
	for (unsigned i = 0; i < 10; i++) {
		CHECK(auto_lock(&t, "tiny", i, &id, &st) == FBX_OK, "lock");
		admitted += st != FBX_C_HELD;
	}
	CHECK(admitted == 1, "50-device org: %d admitted, want 1", admitted);
	admitted = 0;
	for (unsigned i = 0; i < 20; i++) {
		CHECK(auto_lock(&t, "mid", i, &id, &st) == FBX_OK, "lock");
		admitted += st != FBX_C_HELD;
	}
	CHECK(admitted == 3, "308-device org: %d admitted, want 3", admitted);
	env_close(&t);
}

/* Three organisations trip together: the global breaker trips and holds
 * what settles in a fourth organisation, whose own breaker is closed. */
static void
test_global_orgs(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_rep rep;
	const char *orgs[4] = { "o1", "o2", "o3", "o4" };
	uint64_t id4 = 0, id;
	int st;

	CHECK(env_open(&t, "global") == 0, "open");
	for (int i = 0; i < 4; i++)
		enroll(&t, orgs[i], 1000);
	/* o4: one storm lock, admitted and settling */
	CHECK(auto_lock(&t, "o4", 0, &id4, &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "o4 settles: %d", st);
	for (int i = 0; i < 3; i++) {
		for (unsigned k = 0; k < 12; k++)
			CHECK(auto_lock(&t, orgs[i], k, &id, &st) == FBX_OK,
			    "lock");
	}
	CHECK(breaker(&t, "o4", FBX_BRK_STATUS, 0, NULL, 0, &rep) == FBX_OK,
	    "status");
	{
		const struct fbx_breaker_info *g = find_brk(&rep, "*");
		const struct fbx_breaker_info *b = find_brk(&rep, "o4");
		CHECK(g != NULL && g->state == FBX_BS_OPEN, "global open");
		CHECK(b == NULL || b->state == FBX_BS_CLOSED, "o4's own closed");
	}
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "o4", id4, &c) == FBX_C_HELD,
	    "o4's settling lock held by the global breaker: %d", c.state);
	CHECK(strcmp(c.held_by, "*/" REASON) == 0, "held_by %s", c.held_by);
	/* the incident closed with a global reset: o4's own breaker, which
	 * never tripped, no longer counts the storm's lock (it did, and a
	 * legitimate lock later tripped it) */
	{
		uint64_t n;
		int bs;
		CHECK(org_window(&t, "o4", &bs) == 1,
		    "o4 counts its storm lock while the incident is open");
		CHECK(breaker(&t, "o4", FBX_BRK_RESET, 1, NULL,
		          FBX_RESET_DISCARD, &rep) == FBX_OK,
		    "global reset, discard");
		fbx_console_rep_free(&rep);
		CHECK(cmd_state(&t, "o4", id4, &c) == FBX_C_DISCARDED,
		    "o4's storm lock discarded: %d", c.state);
		n = org_window(&t, "o4", &bs);
		CHECK(n == 0, "o4's window after the global reset: %llu, want 0",
		    (unsigned long long)n);
		CHECK(auto_lock(&t, "o4", 5, &id, &st) == FBX_OK &&
		        st == FBX_C_SETTLING,
		    "a later lock in o4 settles: %d", st);
		n = org_window(&t, "o4", &bs);
		CHECK(n == 1, "o4's window counts only the later lock: %llu",
		    (unsigned long long)n);
		/* o1's own breaker is open: its own reset decides */
		n = org_window(&t, "o1", &bs);
		CHECK(bs == FBX_BS_OPEN && n > 0 && n != UINT64_MAX,
		    "o1's open breaker keeps its count");
	}
	env_close(&t);
}

/* The fleet-wide rule: one lock in each of many organisations, each
 * within its own allowance, passes 0.1% of all devices. */
static void
test_global_share(void)
{
	struct env t;
	struct fbx_breaker_cfg cfg;
	struct fbx_console_rep rep;
	char org[16];
	uint64_t id;
	int st, held = 0;

	CHECK(env_open(&t, "share") == 0, "open");
	for (int i = 0; i < 10; i++) {
		snprintf(org, sizeof(org), "s%02d", i);
		enroll(&t, org, 600);
	}
	/* 6,000 devices; 0.1% = 6 */
	memset(&cfg, 0, sizeof(cfg));
	cfg.global_share_ppm = 1000;
	cfg.global_orgs = 100; /* only the share rule here */
	CHECK(breaker(&t, "s00", FBX_BRK_CONFIGURE, 1, &cfg, 0, &rep) ==
	        FBX_OK,
	    "configure");
	fbx_console_rep_free(&rep);
	for (int i = 0; i < 10; i++) {
		snprintf(org, sizeof(org), "s%02d", i);
		CHECK(auto_lock(&t, org, 0, &id, &st) == FBX_OK, "lock");
		held += st == FBX_C_HELD;
	}
	CHECK(held == 4, "%d held; the 7th device passes 6 of 6,000", held);
	CHECK(breaker(&t, "s00", FBX_BRK_STATUS, 0, NULL, 0, &rep) == FBX_OK,
	    "status");
	{
		const struct fbx_breaker_info *g = find_brk(&rep, "*");
		CHECK(g != NULL && g->state == FBX_BS_OPEN, "global open");
		/* the trip held the 6 settling ones too */
		CHECK(g != NULL && g->settling == 0, "settling %llu",
		    g ? (unsigned long long)g->settling : 0ULL);
	}
	fbx_console_rep_free(&rep);
	env_close(&t);
}

/* A settling command survives a restart and is released on time. */
static void
test_restart(void)
{
	struct env t;
	struct fbx_command c;
	uint64_t id, batch = 0;
	int st;

	CHECK(env_open(&t, "restart") == 0, "open");
	enroll(&t, "acme", 300);
	CHECK(auto_lock(&t, "acme", 1, &id, &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "settles");
	CHECK(env_reopen(&t) == 0, "reopen");
	CHECK(cmd_state(&t, "acme", id, &c) == FBX_C_SETTLING,
	    "settling after restart: %d", c.state);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	CHECK(delivered(&t, "g1", &batch) == 0, "not yet");
	pass(&t, "g1", 30000);
	CHECK(delivered(&t, "g1", &batch) == 1, "released after restart");
	env_close(&t);
}

/* release_held - a store of its own with organisation "big" behind
 * gateway g1, n automatic locks held by its open breaker, then released
 * by a reset; the turn after it has run */
static void
release_held(struct env *t, const char *name, unsigned n, uint64_t *batch)
{
	struct fbx_console_rep rep;
	uint64_t id;
	int st;

	CHECK(env_open(t, name) == 0, "open");
	enroll(t, "big", 5000);
	hello(t, "g1", "big", 1000);
	turn(t);
	(void)delivered(t, "g1", batch);
	CHECK(breaker(t, "big", FBX_BRK_TRIP, 0, NULL, 0, &rep) == FBX_OK,
	    "trip");
	fbx_console_rep_free(&rep);
	for (unsigned i = 0; i < n; i++)
		CHECK(auto_lock(t, "big", i, &id, &st) == FBX_OK &&
		        st == FBX_C_HELD,
		    "held %u: %d", i, st);
	CHECK(breaker(t, "big", FBX_BRK_RESET, 0, NULL, FBX_RESET_RELEASE,
	          &rep) == FBX_OK &&
	        rep.u.breaker.released == n,
	    "reset: released %u of %u", rep.u.breaker.released, n);
	fbx_console_rep_free(&rep);
	turn(t);
}

/* Held commands released at a reset go out in waves: 10 now, 20 more
 * 10 s later. */
static void
test_staged_release(void)
{
	struct env t;
	uint64_t batch = 0;
	size_t got;

	release_held(&t, "release", 25, &batch);
	got = delivered(&t, "g1", &batch);
	CHECK(got == 10, "first wave %zu, want 10", got);
	pass(&t, "g1", 9000);
	CHECK(delivered(&t, "g1", &batch) == 0, "second wave not yet");
	pass(&t, "g1", 1000);
	got = delivered(&t, "g1", &batch);
	CHECK(got == 15, "second wave %zu, want the other 15", got);
	env_close(&t);
}

/* A staged release interrupted by a stop: the waves that came due while
 * the daemon was down go out in staged waves from its restart, not all
 * in its first turn (they did: 35 locks at once, before an operator
 * could trip the breaker again). */
static void
test_staged_release_restart(void)
{
	struct env t;
	uint64_t batch = 0;
	size_t got;

	release_held(&t, "release_restart", 45, &batch);
	got = delivered(&t, "g1", &batch);
	CHECK(got == 10, "first wave %zu, want 10", got);
	/* stopped for 40 s: the waves at +10 s (20) and +20 s (15) fell
	 * due meanwhile */
	advance(&t, 40000);
	CHECK(env_reopen(&t) == 0, "restart");
	hello(&t, "g1", "big", 1000);
	pass(&t, "g1", 500); /* the WELCOME, then the first wave */
	got = delivered(&t, "g1", &batch);
	CHECK(got == 10, "after the restart %zu went out at once, want a "
	                 "first wave of 10",
	    got);
	pass(&t, "g1", 9000);
	CHECK(delivered(&t, "g1", &batch) == 0, "second wave not yet");
	pass(&t, "g1", 1000);
	got = delivered(&t, "g1", &batch);
	CHECK(got == 20, "second wave %zu, want 20", got);
	pass(&t, "g1", 10000);
	got = delivered(&t, "g1", &batch);
	CHECK(got == 5, "third wave %zu, want the other 5", got);
	env_close(&t);
}

/* submit_type - an operator command of type for one device */
static uint64_t
submit_type(struct env *t, const char *org, unsigned dev, int type)
{
	uint64_t id = 0;
	int st;

	(void)lock_one(t, "ops", org, dev, type, FBX_ORIGIN_OPERATOR, &id, &st);
	CHECK(id != 0, "submit type %d", type);
	return id;
}

/* Three locks and an unlock queue for a device no gateway serves yet:
 * the newest lock supersedes the older two; the unlock stays; the
 * gateway gets one unlock and one lock. A lock a gateway holds is not
 * superseded; the state survives a restart. */
static void
test_supersede(void)
{
	struct env t;
	struct fbx_command c;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t l1, l2, u1, l3, l4, l5, batch = 0;

	CHECK(env_open(&t, "supersede") == 0, "open");
	enroll(&t, "acme", 100); /* the lock limit: 10% of the fleet */
	l1 = submit_type(&t, "acme", 1, FBX_CMD_LOCK);
	l2 = submit_type(&t, "acme", 1, FBX_CMD_LOCK);
	u1 = submit_type(&t, "acme", 1, FBX_CMD_UNLOCK);
	l3 = submit_type(&t, "acme", 1, FBX_CMD_LOCK);
	(void)submit_type(&t, "acme", 2, FBX_CMD_LOCK); /* another device */
	CHECK(cmd_state(&t, "acme", l1, &c) == FBX_C_DONE &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "lock 1 superseded: state %d, superseded %u", c.state,
	    c.counts[FBX_D_SUPERSEDED]);
	CHECK(cmd_state(&t, "acme", l2, &c) == FBX_C_DONE &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "lock 2 superseded");
	CHECK(cmd_state(&t, "acme", u1, &c) != FBX_C_DONE &&
	        c.counts[FBX_D_SUPERSEDED] == 0,
	    "the unlock is another kind");
	CHECK(cmd_state(&t, "acme", l3, &c) != FBX_C_DONE &&
	        c.counts[FBX_D_QUEUED] == 1,
	    "lock 3 queued");
	/* a restart keeps it: lock 4 supersedes lock 3 */
	CHECK(env_reopen(&t) == 0, "reopen");
	l4 = submit_type(&t, "acme", 1, FBX_CMD_LOCK);
	CHECK(cmd_state(&t, "acme", l3, &c) == FBX_C_DONE &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "after a restart lock 3 superseded: %d", c.state);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	turn(&t);
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 3, "gateway got %zu deliveries, want unlock, lock 4 "
	                    "and device 2's lock",
	    s->nids);
	for (size_t i = 0; i < s->nids; i++) {
		uint64_t cid = FBX_DLV_CMD(s->ids[i]);
		CHECK(cid != l1 && cid != l2 && cid != l3, "superseded lock "
		                                          "%llu sent",
		    (unsigned long long)cid);
	}
	/* lock 4 is in the gateway's hands: lock 5 does not supersede it */
	l5 = submit_type(&t, "acme", 1, FBX_CMD_LOCK);
	CHECK(cmd_state(&t, "acme", l4, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 0 && c.counts[FBX_D_SENT] == 1,
	    "a lock in flight is not superseded");
	heartbeat(&t, "g1");
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 1 && FBX_DLV_CMD(s->ids[0]) == l5, "lock 5 sent");
	(void)batch;
	free(s);
	env_close(&t);
}

/* A rollout through a verification group of 16 then the other 24
 * devices, waves 5, 10, ..., approval between groups. */
static void
test_rollout_stages(void)
{
	struct env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_device *d = calloc(40, sizeof(*d));
	struct fbx_command c;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t id = 0, batch = 0;

	CHECK(env_open(&t, "stages") == 0, "open");
	for (unsigned i = 0; i < 40; i++) {
		snprintf(d[i].id, sizeof(d[i].id), "acme-d%05u", i);
		d[i].platform = FBX_PLATFORM_ANDROID;
		if (i < 16) {
			snprintf(d[i].groups[0], sizeof(d[i].groups[0]),
			    "verify");
			d[i].ngroups = 1;
		}
	}
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ENROLL;
	req.u.enroll.devs = d;
	req.u.enroll.n = 40;
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "enroll");
	fbx_console_rep_free(&rep);

	query_req(&req);
	req.u.submit.cmd.type = FBX_CMD_OS_UPDATE;
	req.u.submit.cmd.rollout.enabled = 1;
	req.u.submit.cmd.rollout.first_count = 5;
	req.u.submit.cmd.rollout.growth_x100 = 200;
	req.u.submit.cmd.rollout.bake_s = 1;
	req.u.submit.cmd.rollout.success_ppm = 500000;
	req.u.submit.cmd.rollout.failure_ppm = 500000;
	req.u.submit.cmd.rollout.min_results = 1;
	req.u.submit.cmd.rollout.approve_groups = 1;
	req.u.submit.cmd.rollout.ngroups = 1;
	snprintf(req.u.submit.cmd.rollout.groups[0],
	    sizeof(req.u.submit.cmd.rollout.groups[0]), "verify");
	req.dry_run = 1;
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "dry run");
	{
		const struct fbx_dryrun *dr = &rep.u.submit.dryrun;
		uint32_t sum0 = 0, sum1 = 0;
		CHECK(dr->nstages == 2 && dr->stage_devices[0] == 16 &&
		        dr->stage_devices[1] == 24,
		    "stages %zu: %u + %u devices", dr->nstages,
		    dr->stage_devices[0], dr->stage_devices[1]);
		for (uint32_t i = 0; i < dr->stage_waves[0] && i < dr->nwaves;
		     i++)
			sum0 += dr->waves[i];
		for (size_t i = dr->stage_waves[0]; i < dr->nwaves; i++)
			sum1 += dr->waves[i];
		CHECK(sum0 == 16 && sum1 == 24,
		    "waves cover each stage: %u and %u", sum0, sum1);
		CHECK(dr->nwaves > 0 && dr->waves[0] == 5, "first wave %u",
		    dr->nwaves ? dr->waves[0] : 0);
	}
	fbx_console_rep_free(&rep);

	/* run it: the verification group, then the approval */
	req.dry_run = 0;
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "submit");
	id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	hello(&t, "g1", "acme", 1000);
	for (int k = 0; k < 200; k++) {
		memset(s, 0, sizeof(*s));
		drain_gw(&t, "g1", s);
		if (s->nids > 0)
			results(&t, "g1", ++batch, s->ids, s->nids,
			    FBX_R_SUCCEEDED);
		pass(&t, "g1", 500);
		if (cmd_state(&t, "acme", id, &c) >= 0 &&
		    c.ro.state == FBX_RO_AWAITING_APPROVAL)
			break;
	}
	CHECK(c.ro.state == FBX_RO_AWAITING_APPROVAL && c.ro.released == 16,
	    "awaiting approval after 16: state %d, released %u", c.ro.state,
	    c.ro.released);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.op = FBX_ROP_APPROVE;
	req.u.rollout.command_id = id;
	snprintf(req.u.rollout.note, sizeof(req.u.rollout.note), "verified");
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "approve");
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "acme", id, &c) >= 0 &&
	        c.ro.state != FBX_RO_NONE && c.ro.stage == 1,
	    "after approve: rollout state %d stage %u", c.ro.state,
	    c.ro.stage);
	free(s);
	free(d);
	env_close(&t);
}

/* Shadow mode and an open breaker: an open breaker that enforces cannot
 * be set to shadow mode (it would stop holding, silently); an open shadow
 * breaker set enforcing holds what still settles, and what arrives. */
static void
test_shadow_open_config(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_rep rep;
	struct fbx_breaker_cfg cfg;
	uint64_t id, id2, batch = 0;
	int st;

	CHECK(env_open(&t, "shcfg") == 0, "open");
	enroll(&t, "big", 5000);
	hello(&t, "g1", "big", 1000);
	turn(&t);
	(void)delivered(&t, "g1", &batch);
	CHECK(breaker(&t, "big", FBX_BRK_TRIP, 0, NULL, 0, &rep) == FBX_OK,
	    "trip by hand");
	fbx_console_rep_free(&rep);
	memset(&cfg, 0, sizeof(cfg));
	cfg.shadow = 1;
	CHECK(breaker(&t, "big", FBX_BRK_CONFIGURE, 0, &cfg, 0, &rep) ==
	        FBX_ESTATE,
	    "shadow mode while open and enforcing: %d", rep.err);
	fbx_console_rep_free(&rep);
	CHECK(auto_lock(&t, "big", 1, &id, &st) == FBX_OK && st == FBX_C_HELD,
	    "it still holds what arrives: %d", st);
	CHECK(breaker(&t, "big", FBX_BRK_RESET, 0, NULL, FBX_RESET_DISCARD,
	          &rep) == FBX_OK,
	    "reset");
	fbx_console_rep_free(&rep);

	/* shadow, opened by hand: what arrives settles; set enforcing, it
	 * is held, and so is what arrives next */
	CHECK(breaker(&t, "big", FBX_BRK_CONFIGURE, 0, &cfg, 0, &rep) ==
	        FBX_OK,
	    "shadow while closed");
	fbx_console_rep_free(&rep);
	CHECK(breaker(&t, "big", FBX_BRK_TRIP, 0, NULL, 0, &rep) == FBX_OK,
	    "trip the shadow breaker");
	fbx_console_rep_free(&rep);
	CHECK(auto_lock(&t, "big", 2, &id, &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "settles under the open shadow breaker: %d", st);
	cfg.shadow = 2;
	CHECK(breaker(&t, "big", FBX_BRK_CONFIGURE, 0, &cfg, 0, &rep) ==
	        FBX_OK,
	    "enforcing while open");
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "big", id, &c) == FBX_C_HELD &&
	        strcmp(c.held_by, "big/" REASON) == 0,
	    "what settled is held once enforcing: %d (%s)", c.state,
	    c.held_by);
	CHECK(auto_lock(&t, "big", 3, &id2, &st) == FBX_OK &&
	        st == FBX_C_HELD,
	    "and what arrives: %d", st);
	pass(&t, "g1", 60000);
	CHECK(delivered(&t, "g1", &batch) == 0, "nothing sent");

	/* the global breaker in shadow mode, opened by hand: it holds
	 * nothing and counts what it would have held (it counted nothing) */
	CHECK(breaker(&t, "big", FBX_BRK_RESET, 0, NULL, FBX_RESET_DISCARD,
	          &rep) == FBX_OK,
	    "reset the organisation's");
	fbx_console_rep_free(&rep);
	cfg.shadow = 1;
	CHECK(breaker(&t, "big", FBX_BRK_CONFIGURE, 1, &cfg, 0, &rep) ==
	        FBX_OK,
	    "global shadow");
	fbx_console_rep_free(&rep);
	CHECK(breaker(&t, "big", FBX_BRK_TRIP, 1, NULL, 0, &rep) == FBX_OK,
	    "trip the global shadow breaker");
	fbx_console_rep_free(&rep);
	CHECK(auto_lock(&t, "big", 4, &id2, &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "settles under the open global shadow breaker: %d", st);
	CHECK(breaker(&t, "big", FBX_BRK_STATUS, 1, NULL, 0, &rep) == FBX_OK &&
	        find_brk(&rep, "*") != NULL &&
	        find_brk(&rep, "*")->would_hold == 1,
	    "global would_hold %llu, want 1",
	    find_brk(&rep, "*") ? (unsigned long long)find_brk(&rep, "*")
	                              ->would_hold
	                        : 0ULL);
	fbx_console_rep_free(&rep);
	env_close(&t);
}

/* From the review: a trip by hand holds what settles, whenever it was
 * submitted (also a staged release's later waves); a shadow breaker
 * holds nothing; the settle window does not eat a short TTL. */
static void
test_manual_shadow_ttl(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_rep rep;
	struct fbx_breaker_cfg cfg;
	struct fbx_console_req req;
	uint64_t id, ids[25], batch = 0;
	fbx_id dev[1];
	int st;

	CHECK(env_open(&t, "manual") == 0, "open");
	enroll(&t, "big", 5000);
	hello(&t, "g1", "big", 1000);
	turn(&t);
	(void)delivered(&t, "g1", &batch);
	/* a lock settles; 5 s later an operator trips the breaker */
	CHECK(auto_lock(&t, "big", 1, &id, &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "settles");
	pass(&t, "g1", 5000);
	CHECK(breaker(&t, "big", FBX_BRK_TRIP, 0, NULL, 0, &rep) == FBX_OK,
	    "trip by hand");
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "big", id, &c) == FBX_C_HELD,
	    "a trip by hand holds what settles: %d", c.state);
	pass(&t, "g1", 30000);
	CHECK(delivered(&t, "g1", &batch) == 0, "nothing sent");

	/* 25 held (the breaker is open), released in waves, the operator
	 * trips again by hand: the waves still settling are held again */
	for (unsigned i = 0; i < 25; i++)
		CHECK(auto_lock(&t, "big", 10 + i, &ids[i], &st) == FBX_OK &&
		        st == FBX_C_HELD,
		    "held");
	CHECK(breaker(&t, "big", FBX_BRK_RESET, 0, NULL, FBX_RESET_RELEASE,
	          &rep) == FBX_OK,
	    "reset");
	fbx_console_rep_free(&rep);
	turn(&t);
	CHECK(delivered(&t, "g1", &batch) == 10,
	    "first wave: 10 of the 26 held, oldest first");
	pass(&t, "g1", 2000);
	CHECK(breaker(&t, "big", FBX_BRK_TRIP, 0, NULL, 0, &rep) == FBX_OK,
	    "trip again");
	fbx_console_rep_free(&rep);
	pass(&t, "g1", 60000);
	CHECK(delivered(&t, "g1", &batch) == 0,
	    "the later waves were held again");
	CHECK(breaker(&t, "big", FBX_BRK_RESET, 0, NULL, FBX_RESET_DISCARD,
	          &rep) == FBX_OK,
	    "reset discard");
	CHECK(rep.u.breaker.discarded == 16, "discarded %u",
	    rep.u.breaker.discarded);
	fbx_console_rep_free(&rep);

	/* shadow: a trip by hand of a shadow breaker holds nothing */
	memset(&cfg, 0, sizeof(cfg));
	cfg.shadow = 1;
	CHECK(breaker(&t, "big", FBX_BRK_CONFIGURE, 0, &cfg, 0, &rep) ==
	        FBX_OK,
	    "shadow");
	fbx_console_rep_free(&rep);
	CHECK(auto_lock(&t, "big", 100, &id, &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "settles under a shadow breaker: %d", st);
	CHECK(breaker(&t, "big", FBX_BRK_TRIP, 0, NULL, 0, &rep) == FBX_OK,
	    "trip the shadow breaker");
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "big", id, &c) == FBX_C_SETTLING,
	    "a shadow breaker held it: %d", c.state);
	/* nor what arrives while it is open */
	CHECK(auto_lock(&t, "big", 101, &ids[0], &st) == FBX_OK &&
	        st == FBX_C_SETTLING,
	    "an open shadow breaker held an arrival: %d", st);
	/* the global breaker holds it; its reset with release lets it go,
	 * the organisation's open shadow breaker does not hold it again */
	CHECK(breaker(&t, "big", FBX_BRK_TRIP, 1, NULL, 0, &rep) == FBX_OK,
	    "trip the global breaker");
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "big", id, &c) == FBX_C_HELD &&
	        strcmp(c.held_by, "*/" REASON) == 0,
	    "held by the global breaker: %d (%s)", c.state, c.held_by);
	CHECK(breaker(&t, "big", FBX_BRK_RESET, 1, NULL, FBX_RESET_RELEASE,
	          &rep) == FBX_OK &&
	        rep.u.breaker.released == 2,
	    "global reset released %u, want 2", rep.u.breaker.released);
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "big", id, &c) != FBX_C_HELD,
	    "held again by %s", c.held_by);
	CHECK(breaker(&t, "big", FBX_BRK_RESET, 0, NULL, FBX_RESET_DISCARD,
	          &rep) == FBX_OK,
	    "reset");
	fbx_console_rep_free(&rep);
	cfg.shadow = 2;
	CHECK(breaker(&t, "big", FBX_BRK_CONFIGURE, 0, &cfg, 0, &rep) ==
	        FBX_OK,
	    "enforce");
	fbx_console_rep_free(&rep);
	pass(&t, "g1", 31000);
	CHECK(delivered(&t, "g1", &batch) == 2, "the shadow locks went out");

	/* a TTL shorter than the settle delay runs from the release */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = 20;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason),
	    "%s", REASON);
	snprintf(dev[0], sizeof(dev[0]), "big-d%05u", 200);
	req.u.submit.cmd.dev_ids = dev;
	req.u.submit.cmd.ndev_ids = 1;
	console(&t, "rule", "big", &req);
	turn(&t);
	CHECK(reply(&t, "rule", &rep) == FBX_OK &&
	        rep.u.submit.state == FBX_C_SETTLING,
	    "short TTL settles");
	id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	pass(&t, "g1", 30050);
	CHECK(delivered(&t, "g1", &batch) == 1, "sent after settling");
	pass(&t, "g1", 200);
	CHECK(cmd_state(&t, "big", id, &c) == FBX_C_DONE &&
	        c.counts[FBX_D_SUCCEEDED] == 1 && c.counts[FBX_D_EXPIRED] == 0,
	    "succeeded, not expired: %u/%u", c.counts[FBX_D_SUCCEEDED],
	    c.counts[FBX_D_EXPIRED]);
	env_close(&t);
}

/* From the review: an automatic lock does not supersede an operator's,
 * nor does a lock that would expire before the one it replaces. */
static void
test_supersede_limits(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id dev[1];
	uint64_t op, au, shortl;
	int st;

	CHECK(env_open(&t, "supersede2") == 0, "open");
	enroll(&t, "acme", 100);
	settle_set(&t, "acme", 0);
	op = submit_type(&t, "acme", 1, FBX_CMD_LOCK);
	CHECK(auto_lock(&t, "acme", 1, &au, &st) == FBX_OK, "auto lock");
	CHECK(cmd_state(&t, "acme", op, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 0,
	    "an automatic lock leaves the operator's lock alone");
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = 10;
	snprintf(dev[0], sizeof(dev[0]), "acme-d%05u", 1);
	req.u.submit.cmd.dev_ids = dev;
	req.u.submit.cmd.ndev_ids = 1;
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "short lock");
	shortl = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "acme", op, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 0,
	    "a lock living 10 s does not replace one living a day");
	(void)shortl;
	env_close(&t);
}

/* sx_builds - commands whose deliveries entered the supersede index late
 * (metrics), and the deliveries read for them */
static uint64_t
sx_builds(struct env *t, uint64_t *read)
{
	struct fbx_metrics *m = calloc(1, sizeof(*m));
	uint64_t n = UINT64_MAX;

	if (m != NULL && fbx_engine_metrics(t->e, m) == FBX_OK) {
		n = m->sx_builds;
		*read = m->sx_read;
	}
	free(m);
	return n;
}

/* The supersede index is built lazily (supersede.c): an unlock of a
 * whole organisation, alone of its kind, indexes nothing; an unlock of
 * one device while it still expands (in slices: 40,000 devices, 16,384
 * per turn) supersedes its waiting delivery for that device whether the
 * big one reached it before or after; after a restart the next unlock
 * finds the big one's waiting deliveries again. Another kind (a query)
 * or another origin never builds anything. */
static void
test_supersede_lazy(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t big, u_late, u_early, u_after, rd = 0, rd2 = 0;
	int st, guard;

	CHECK(env_open(&t, "supersede3") == 0, "open");
	enroll(&t, "big", 40000);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_UNLOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	console(&t, "ops", "big", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "org-wide unlock");
	big = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(cmd_state(&t, "big", big, &c) == FBX_C_EXPANDING &&
	        c.ndeliveries < 40000,
	    "still expanding after its first turn: state %d, %u deliveries",
	    c.state, c.ndeliveries);
	CHECK(sx_builds(&t, &rd) == 0 && rd == 0 && t.e->supersede.len == 0,
	    "alone of its kind: nothing indexed (%llu read, %zu entries)",
	    (unsigned long long)rd, t.e->supersede.len);
	/* the last device: the big one has not reached it yet */
	u_late = submit_type(&t, "big", 39999, FBX_CMD_UNLOCK);
	CHECK(sx_builds(&t, &rd) == 2 && rd > 0 && rd < 40000,
	    "the second of the kind indexed both while the first expands: "
	    "%llu read", (unsigned long long)rd);
	/* a query to the whole organisation is another kind */
	query_req(&req);
	console(&t, "ops", "big", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "query");
	fbx_console_rep_free(&rep);
	CHECK(sx_builds(&t, &rd2) == 2 && rd2 == rd, "a query builds nothing");
	/* an automatic unlock is another origin: never replaces an
	 * operator's, builds nothing */
	CHECK(lock_one(&t, "rules", "big", 39998, FBX_CMD_UNLOCK,
	          FBX_ORIGIN_AUTOMATIC, &u_after, &st) == FBX_OK,
	    "automatic unlock");
	CHECK(sx_builds(&t, &rd2) == 2 && rd2 == rd,
	    "another origin builds nothing");
	/* a device the big one reached */
	u_early = submit_type(&t, "big", 5, FBX_CMD_UNLOCK);
	CHECK(sx_builds(&t, &rd2) == 3 && rd2 == rd,
	    "the third indexed itself only (nothing to read): %llu read",
	    (unsigned long long)(rd2 - rd));
	for (guard = 0; guard < 10; guard++) {
		if (cmd_state(&t, "big", big, &c) != FBX_C_EXPANDING)
			break;
		turn(&t);
	}
	CHECK(cmd_state(&t, "big", big, &c) >= 0 && c.ndeliveries == 40000 &&
	        c.counts[FBX_D_SUPERSEDED] == 2,
	    "the big unlock expanded (%u) with 2 superseded (%u)",
	    c.ndeliveries, c.counts[FBX_D_SUPERSEDED]);
	CHECK(cmd_state(&t, "big", u_late, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 0,
	    "the later unlock of the last device stands");
	CHECK(cmd_state(&t, "big", u_early, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 0,
	    "the unlock of device 5 stands");
	CHECK(cmd_state(&t, "big", u_after, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 0,
	    "the automatic unlock stands");
	/* a restart forgets the index; the next unlock reads the big
	 * one's waiting deliveries again and supersedes device 6's */
	CHECK(env_reopen(&t) == 0, "reopen");
	CHECK(sx_builds(&t, &rd) == 0 && t.e->supersede.len == 0,
	    "nothing indexed at recovery: %zu entries", t.e->supersede.len);
	(void)submit_type(&t, "big", 6, FBX_CMD_UNLOCK);
	CHECK(sx_builds(&t, &rd) == 4 && rd == 40002,
	    "after the restart the kind's 3 open commands and the new one "
	    "indexed, "
	    "%llu deliveries read", (unsigned long long)rd);
	CHECK(cmd_state(&t, "big", big, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 3,
	    "after a restart device 6's unlock superseded too: %u",
	    c.counts[FBX_D_SUPERSEDED]);
	env_close(&t);
}

/* From the review: a delivery in a gateway's hands when its kind's index
 * is built, which then comes back PENDING (the device was offline), is
 * still superseded by the next command of its kind for that device, as
 * when every delivery was indexed at creation. */
static void
test_supersede_reopened(void)
{
	struct env t;
	struct fbx_command c;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t a, batch = 0;

	CHECK(s != NULL && env_open(&t, "supersede4") == 0, "open");
	enroll(&t, "acme", 100);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	drain_gw(&t, "g1", s);
	a = submit_type(&t, "acme", 1, FBX_CMD_UNLOCK);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 1 && FBX_DLV_CMD(s->ids[0]) == a, "A sent");
	/* the second of the kind: the index is built while A's is SENT */
	(void)submit_type(&t, "acme", 2, FBX_CMD_UNLOCK);
	CHECK(t.e->sx_builds == 2, "built: %llu",
	    (unsigned long long)t.e->sx_builds);
	/* the device was offline: A's delivery waits, PENDING */
	results(&t, "g1", ++batch, s->ids, 1, FBX_R_OFFLINE);
	turn(&t);
	CHECK(cmd_state(&t, "acme", a, &c) >= 0 &&
	        c.counts[FBX_D_PENDING] == 1,
	    "A pending: %u", c.counts[FBX_D_PENDING]);
	(void)submit_type(&t, "acme", 1, FBX_CMD_UNLOCK);
	CHECK(cmd_state(&t, "acme", a, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "A's pending delivery superseded by the next unlock: %u",
	    c.counts[FBX_D_SUPERSEDED]);
	free(s);
	env_close(&t);
}

/* The supersede index drops the entries of finished commands once it
 * holds sx_sweep_at of them (lowered to 16 here; 65,536 in service):
 * before, an entry stayed for every device and kind that ever met
 * another command of its kind, for the life of the process. A sweep
 * keeps the live entries: a delivery waiting when the index was swept is
 * still superseded by the next command of its kind. */
static void
test_supersede_sweep(void)
{
	struct env t;
	struct fbx_command c;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t batch = 0, first, ids[30];

	CHECK(s != NULL && env_open(&t, "supersede5") == 0, "open");
	t.e->sx_sweep_min = t.e->sx_sweep_at = 16;
	enroll(&t, "acme", 100);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	drain_gw(&t, "g1", s);
	/* 40 unlocks of one kind, one device each, open together */
	first = submit_type(&t, "acme", 0, FBX_CMD_UNLOCK);
	for (unsigned i = 1; i < 40; i++)
		(void)submit_type(&t, "acme", i, FBX_CMD_UNLOCK);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 40, "40 sent: %zu", s->nids);
	CHECK(t.e->supersede.len == 40 && t.e->sx_dropped == 0,
	    "40 entries, none dropped while all are open: %zu, %llu",
	    t.e->supersede.len, (unsigned long long)t.e->sx_dropped);
	/* all succeed: the commands leave memory, their entries stay */
	results(&t, "g1", ++batch, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);
	turn(&t);
	CHECK(fbxi_cmd_find(t.e, first) == NULL &&
	        cmd_state(&t, "acme", first, &c) == FBX_C_DONE,
	    "the first unlock is done and out of memory");
	CHECK(t.e->supersede.len == 40, "stale entries stay until a sweep: %zu",
	    t.e->supersede.len);
	/* 30 more of the kind: the index reaches its mark (64) and is swept */
	for (unsigned i = 0; i < 30; i++)
		ids[i] = submit_type(&t, "acme", 50 + i, FBX_CMD_UNLOCK);
	CHECK(t.e->sx_dropped == 40 && t.e->supersede.len == 30,
	    "the sweep dropped the 40 finished (%llu), 30 live stay (%zu)",
	    (unsigned long long)t.e->sx_dropped, t.e->supersede.len);
	/* the live ones still work: device 60 went offline, its unlock
	 * waits; the next unlock of device 60 supersedes it */
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 30, "30 sent: %zu", s->nids);
	results(&t, "g1", ++batch, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(cmd_state(&t, "acme", ids[10], &c) >= 0 &&
	        c.counts[FBX_D_PENDING] == 1,
	    "device 60's unlock pending: %u", c.counts[FBX_D_PENDING]);
	(void)submit_type(&t, "acme", 60, FBX_CMD_UNLOCK);
	CHECK(cmd_state(&t, "acme", ids[10], &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 1,
	    "after the sweep the waiting unlock is still superseded: %u",
	    c.counts[FBX_D_SUPERSEDED]);
	free(s);
	env_close(&t);
}

/* From the review of the sweep: a finished command that a replay brings
 * back joins its kind after the kind's other members were indexed. Its
 * replayed delivery, waiting, is superseded when a newer command of the
 * kind (already indexed, still expanding in slices) reaches the device:
 * the newer command's delivery reads the late member in first, and an
 * entry left by a newer command that has finished does not keep the
 * replayed one out of the index. Before, only a command not yet indexed
 * itself read its kind in, and a finished command's entry counted as
 * newer, so the outcome depended on whether those entries had been
 * swept. */
static void
test_supersede_replay(void)
{
	struct env t;
	struct fbx_command c;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_gw_msg bye;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t r, n, f1, ids[1];
	int guard;

	CHECK(s != NULL && env_open(&t, "supersede6") == 0, "open");
	t.e->o.expand_chunk = 10; /* an organisation-wide command in slices */
	enroll(&t, "acme", 100);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	drain_gw(&t, "g1", s);
	/* R: an unlock of device 95, alone of its kind, fails */
	r = submit_type(&t, "acme", 95, FBX_CMD_UNLOCK);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 1, "R sent: %zu", s->nids);
	results(&t, "g1", 1, s->ids, 1, FBX_R_FAILED);
	turn(&t);
	turn(&t);
	CHECK(cmd_state(&t, "acme", r, &c) == FBX_C_DONE &&
	        fbxi_cmd_find(t.e, r) == NULL,
	    "R failed, done and out of memory");
	/* F1 (device 95) and F2 (device 96), newer than R, meet and are
	 * indexed, then succeed and leave memory: F1's entry for device 95
	 * stays in the index (no sweep at this size) and must not keep R's
	 * replayed delivery out of it */
	f1 = submit_type(&t, "acme", 95, FBX_CMD_UNLOCK);
	(void)submit_type(&t, "acme", 96, FBX_CMD_UNLOCK);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 2, "F1, F2 sent: %zu", s->nids);
	results(&t, "g1", 2, s->ids, 2, FBX_R_SUCCEEDED);
	turn(&t);
	turn(&t);
	CHECK(fbxi_cmd_find(t.e, f1) == NULL && t.e->supersede.len == 2,
	    "F1 finished, its entry stays: %zu entries", t.e->supersede.len);
	/* the gateway leaves: what is queued from now on stays queued */
	memset(&bye, 0, sizeof(bye));
	bye.kind = FBX_GW_BYE;
	gateway(&t, "g1", &bye);
	turn(&t);
	/* N: an unlock of the whole organisation, 10 devices a turn; M, an
	 * unlock of device 0, makes both indexed */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_UNLOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "org-wide unlock");
	n = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	(void)submit_type(&t, "acme", 0, FBX_CMD_UNLOCK);
	CHECK(cmd_state(&t, "acme", n, &c) == FBX_C_EXPANDING &&
	        c.ndeliveries < 95,
	    "N still expanding: %u deliveries", c.ndeliveries);
	/* R's failed delivery replayed: R is back, its delivery queued */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_REPLAY;
	ids[0] = r;
	req.u.replay.sel.command_ids = ids;
	req.u.replay.sel.ncommand_ids = 1;
	req.u.replay.execute = 1;
	req.u.replay.state = FBX_D_FAILED;
	req.u.replay.force = 1; /* a failed delivery is final */
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK && rep.u.replay.resent == 1,
	    "R replayed: %u resent (%s)", rep.u.replay.resent, rep.errmsg);
	fbx_console_rep_free(&rep);
	CHECK(fbxi_cmd_find(t.e, r) != NULL &&
	        cmd_state(&t, "acme", r, &c) >= 0 &&
	        c.counts[FBX_D_QUEUED] == 1,
	    "R back in memory, its delivery queued: %u",
	    c.counts[FBX_D_QUEUED]);
	/* N reaches device 95 */
	for (guard = 0; guard < 20; guard++) {
		if (cmd_state(&t, "acme", n, &c) != FBX_C_EXPANDING)
			break;
		turn(&t);
	}
	CHECK(cmd_state(&t, "acme", n, &c) >= 0 && c.ndeliveries == 100,
	    "N expanded: %u", c.ndeliveries);
	CHECK(cmd_state(&t, "acme", r, &c) >= 0 &&
	        c.counts[FBX_D_SUPERSEDED] == 1 && c.counts[FBX_D_QUEUED] == 0,
	    "R's replayed delivery superseded by N: superseded %u, queued %u",
	    c.counts[FBX_D_SUPERSEDED], c.counts[FBX_D_QUEUED]);
	free(s);
	env_close(&t);
}

int
main(void)
{
	test_settle_basics();
	test_storm_held();
	test_budget_small_org();
	test_global_orgs();
	test_global_share();
	test_restart();
	test_staged_release();
	test_staged_release_restart();
	test_supersede();
	test_rollout_stages();
	test_manual_shadow_ttl();
	test_shadow_open_config();
	test_supersede_limits();
	test_supersede_lazy();
	test_supersede_reopened();
	test_supersede_sweep();
	test_supersede_replay();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
