/*
 * rate_test.c: the dispatch caps, in-process on a fake clock
 * (engine_fake.c), turn by turn:
 * - an organisation's rate cap (10/s, burst 10): never more sent than
 *   burst + rate x elapsed, and no less either (org_rate);
 * - its in-flight cap: 5 unanswered at most, answers free room for as
 *   many (org_inflight);
 * - the global rate cap shared by two organisations, each behind its own
 *   gateway, in either order of the gateways' hellos: the sum stays
 *   within the cap, and the small one's 5 leave within 0.6 s beside the
 *   big one's fan-out (global_shared); two big ones share it about
 *   evenly, also when a token comes only every other turn (global_fair).
 *   Before dispatch went organisation by organisation, the organisation
 *   behind the later gateway in its list got nothing while the other
 *   had work;
 * - one organisation takes at most a quantum per pass over all the
 *   gateways that serve it: with 16 gateways another organisation's
 *   single command still leaves in its submit turn beside a
 *   100,000-device fan-out (many_gateways); an organisation whose only
 *   gateway is full does not hold back one behind a gateway with room
 *   (full_gateway); one delivery a turn goes to each of 5 gateways in
 *   turn (gw_spread); three organisations sharing one token a turn
 *   each wait at most a round, also when one of them ends and leaves
 *   the round (three_way); every priority class of a step starts at
 *   the head of the round, whatever the classes above it did
 *   (class_head); when the head itself leaves the round, the one after
 *   it is next (head_leaves); no organisation has more than a quarter
 *   (org_share) of its own gateways' windows in flight, at least 1,024
 *   (share_cap);
 * - a global cap that binds does not spend the organisation's own
 *   allowance (global_refund);
 * - tokens are taken only for deliveries that leave: a paused rollout's
 *   deliveries, taken from the queue and kept back, cost none, neither
 *   the organisation's nor (with a global cap) the global bucket's, so
 *   an operator's command right after the pause leaves at once
 *   (paused_tokens); and exactly the tokens of what did not leave go
 *   back, not all that were taken (partial_refund).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"

static uint64_t batch;

static int
set_rate(struct env *t, const char *org, int global, uint32_t rate,
    uint32_t burst, uint32_t inflight)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_RATE;
	req.u.rate.set = 1;
	req.u.rate.global = global;
	req.u.rate.rate.rate_per_s = rate;
	req.u.rate.rate.burst = burst;
	req.u.rate.rate.max_inflight = inflight;
	console(t, "ops", org, &req);
	turn(t);
	rc = reply(t, "ops", &rep);
	fbx_console_rep_free(&rep);
	return rc;
}

/* pass_turns - n turns of 100 ms, gateway peer alive */
static void
pass_turns(struct env *t, const char *peer, int n)
{
	for (int i = 0; i < n; i++) {
		advance(t, 100);
		heartbeat(t, peer);
		turn(t);
	}
}

/* take - what the gateway `peer` got since the last call, answered
 * SUCCEEDED when answer != 0; @return how many */
static size_t
take(struct env *t, const char *peer, int answer, struct gw_seen *s)
{
	memset(s, 0, sizeof(*s));
	drain_gw(t, peer, s);
	if (answer && s->nids > 0)
		results(t, peer, ++batch, s->ids, s->nids, FBX_R_SUCCEEDED);
	return s->nids;
}

static void
test_org_rate(void)
{
	static struct gw_seen s;
	struct env t;
	uint64_t cid;
	size_t sent = 0;
	int over = 0, under = 0;

	CHECK(env_open(&t, "rate_org") == 0, "open");
	enroll(&t, "acme", 60);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	CHECK(set_rate(&t, "acme", 0, 10, 10, 0) == FBX_OK, "rate set");
	cid = submit_org(&t, "acme");
	sent += take(&t, "g1", 1, &s);
	CHECK(sent == 10, "at once: the burst, %zu sent", sent);
	/* 3 s in turns of 100 ms: one token each */
	for (int i = 1; i <= 30; i++) {
		advance(&t, 100);
		heartbeat(&t, "g1");
		turn(&t);
		sent += take(&t, "g1", 1, &s);
		if (sent > 10 + (size_t)i)
			over++;
		if (sent + 1 < 10 + (size_t)i)
			under++;
	}
	CHECK(over == 0 && under == 0,
	    "10/s after a burst of 10: %d turns above, %d below, %zu sent", over,
	    under, sent);
	CHECK(sent >= 39 && sent <= 40, "after 3 s: %zu sent, want 39-40",
	    sent);
	(void)cid;
	env_close(&t);
}

static void
test_org_inflight(void)
{
	static struct gw_seen s;
	struct env t;
	size_t n;

	CHECK(env_open(&t, "rate_inflight") == 0, "open");
	enroll(&t, "acme", 20);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	CHECK(set_rate(&t, "acme", 0, 0, 0, 5) == FBX_OK, "cap set");
	(void)submit_org(&t, "acme");
	pass_turns(&t, "g1", 5);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 5, "5 in flight at most: %zu sent", n);
	/* two answered: two more leave, no more */
	results(&t, "g1", ++batch, s.ids, 2, FBX_R_SUCCEEDED);
	turn(&t);
	pass_turns(&t, "g1", 5);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 2, "2 answered, %zu more sent, want 2", n);
	env_close(&t);
}

/* two_orgs - organisations a (na devices, behind gateway ga) and b (nb,
 * behind gb), ga's hello first or last (the engine keeps the last hello
 * at the head of its list), a global cap of rate/s burst rate, a query to
 * every device of each, a's submitted first */
static void
two_orgs(struct env *t, const char *name, const char *a, unsigned na,
    const char *b, unsigned nb, int a_first, uint32_t rate)
{
	CHECK(env_open(t, name) == 0, "open");
	enroll(t, a, na);
	enroll(t, b, nb);
	hello(t, a_first ? "ga" : "gb", a_first ? a : b, 1000);
	hello(t, a_first ? "gb" : "ga", a_first ? b : a, 1000);
	turn(t);
	CHECK(set_rate(t, a, 1, rate, rate, 0) == FBX_OK, "global rate set");
	(void)submit_org(t, a);
	(void)submit_org(t, b);
}

/* two_take - what ga and gb got, answered; after a turn 100 ms later
 * unless first */
static void
two_take(struct env *t, int first, size_t *a, size_t *b)
{
	static struct gw_seen s;

	if (!first) {
		advance(t, 100);
		heartbeat(t, "ga");
		heartbeat(t, "gb");
		turn(t);
	}
	*a += take(t, "ga", 1, &s);
	*b += take(t, "gb", 1, &s);
}

static void
test_global_shared(int big_first)
{
	struct env t;
	size_t a = 0, b = 0;
	int b_done_at = -1, over = 0;

	two_orgs(&t, "rate_global", "big", 200, "small", 5, big_first, 20);
	two_take(&t, 1, &a, &b);
	CHECK(a + b <= 20, "at once: the global burst, %zu + %zu sent", a, b);
	if (b == 5)
		b_done_at = 0;
	for (int i = 1; i <= 40 && a < 200; i++) {
		two_take(&t, 0, &a, &b);
		if (a + b > 20 + 2 * (size_t)i + 1)
			over++;
		if (b == 5 && b_done_at < 0)
			b_done_at = i;
	}
	CHECK(over == 0, "the global cap held: %d turns above it", over);
	/* the two take turns at 2 tokens a turn after the burst: 2 + 2 +
	 * 1 by the sixth */
	CHECK(b == 5 && b_done_at >= 0 && b_done_at <= 6,
	    "the small organisation's 5 sent within 0.6 s beside the big "
	    "one's (big one's gateway hello %s): %zu sent, all by turn %d",
	    big_first ? "first" : "last", b, b_done_at);
	CHECK(a > 0, "the big one progresses too: %zu", a);
	env_close(&t);
}

/* global_fair - two organisations with more work than a global cap of
 * rate/s allows, each behind its own gateway: over 8 s (rate + 8 x rate
 * tokens) each gets at least a third, in either order of the hellos
 * (the first turn's burst goes to one of them; then they take turns).
 * At 5/s a token comes every other turn of 100 ms: the head of the
 * round must move only after a turn that sent something, else the
 * same organisation would be at the head at each token. */
static void
test_global_fair(int a_first, uint32_t rate)
{
	struct env t;
	size_t a = 0, b = 0, all = rate + 8 * rate;

	two_orgs(&t, "rate_fair", "one", 300, "two", 300, a_first, rate);
	for (int i = 0; i <= 80; i++)
		two_take(&t, i == 0, &a, &b);
	CHECK(a + b <= all + 1 && a + b + 2 >= all,
	    "the global cap, all of it: %zu + %zu sent in 8 s, want %zu", a,
	    b, all);
	CHECK(a * 3 >= a + b && b * 3 >= a + b,
	    "shared at %u/s (gateway of 'one' hello %s): %zu and %zu", rate,
	    a_first ? "first" : "last", a, b);
	env_close(&t);
}

/* gws_hello - hellos of gateways g0 .. g(n-1), each serving org */
static void
gws_hello(struct env *t, int n, const char *org, uint32_t window)
{
	char gw[16];

	for (int g = 0; g < n; g++) {
		snprintf(gw, sizeof(gw), "g%d", g);
		hello(t, gw, org, window);
	}
	turn(t);
}

/* gws_step - ms later, a heartbeat of gateways g0 .. g(n-1), a turn */
static void
gws_step(struct env *t, int n, int ms)
{
	char gw[16];

	advance(t, ms);
	for (int g = 0; g < n; g++) {
		snprintf(gw, sizeof(gw), "g%d", g);
		heartbeat(t, gw);
	}
	turn(t);
}

/* many_gateways - an organisation's single command leaves in the turn
 * it is submitted while another organisation fans out to 100,000 devices
 * through 16 gateways that serve both: one organisation takes at most a
 * quantum (256) per pass over all its gateways, not a quantum per
 * gateway (16 x 256 fills a short turn). For the head of the round at
 * each place the big one can be (submitted 0, 1 or 2 turns after it) */
static void
test_many_gateways(int after)
{
	static struct gw_seen s;
	struct env t;
	char gw[16];
	uint64_t small = 0;
	int left_at = -1;

	CHECK(env_open(&t, "rate_gws") == 0, "open");
	for (unsigned k = 0; k < 100000; k += 25000)
		enroll_from(&t, "big", k, 25000);
	enroll(&t, "small", 1);
	gws_hello(&t, 16, "*", 20000);
	(void)submit_org(&t, "big");
	for (int i = 0; i <= 40 && left_at < 0; i++) {
		if (i == after) {
			small = submit_org(&t, "small"); /* its turn */
		} else if (i > 0) {
			gws_step(&t, 16, 1);
		}
		for (int g = 0; g < 16; g++) {
			snprintf(gw, sizeof(gw), "g%d", g);
			(void)take(&t, gw, 1, &s);
			for (size_t k = 0; k < s.nids && small != 0; k++) {
				if (FBX_DLV_CMD(s.ids[k]) == small)
					left_at = i - after;
			}
		}
	}
	CHECK(small != 0 && left_at == 0,
	    "the small command (submitted %d turns after the fan-out) left "
	    "%d turns after its submit, want 0",
	    after, left_at);
	env_close(&t);
}

/* full_gateway - an organisation whose only gateway is full does not
 * hold back another behind a gateway with room, whichever is at the
 * head of the round */
static void
test_full_gateway(int full_first)
{
	static struct gw_seen s;
	struct env t;
	size_t n;

	CHECK(env_open(&t, "rate_full") == 0, "open");
	enroll(&t, "stuck", 50);
	enroll(&t, "free", 50);
	hello(&t, "gs", "stuck", 2);
	hello(&t, "gf", "free", 1000);
	turn(&t);
	(void)submit_org(&t, full_first ? "stuck" : "free");
	(void)submit_org(&t, full_first ? "free" : "stuck");
	turn(&t);
	n = take(&t, "gs", 0, &s); /* never answered: gs stays full */
	CHECK(n == 2, "the full gateway's window: %zu", n);
	n = take(&t, "gf", 1, &s);
	for (int i = 0; i < 5 && n < 50; i++) {
		advance(&t, 100);
		heartbeat(&t, "gs");
		heartbeat(&t, "gf");
		turn(&t);
		n += take(&t, "gf", 1, &s);
	}
	CHECK(n == 50, "beside a full gateway (its organisation %s): %zu of "
	               "50 sent",
	    full_first ? "first" : "second", n);
	env_close(&t);
}

/* gw_spread - an organisation behind 5 gateways at 10/s burst 1, one
 * delivery a turn: each gateway gets its turn (20 of 100 each, give or
 * take 2), whatever number of empty passes a step makes */
static void
test_gw_spread(void)
{
	static struct gw_seen s;
	struct env t;
	char gw[16];
	size_t per[5] = { 0 }, lo = 1000, hi = 0;

	CHECK(env_open(&t, "rate_spread") == 0, "open");
	enroll(&t, "acme", 300);
	gws_hello(&t, 5, "acme", 1000);
	CHECK(set_rate(&t, "acme", 0, 10, 1, 0) == FBX_OK, "rate set");
	(void)submit_org(&t, "acme");
	for (int i = 0; i < 100; i++) {
		gws_step(&t, 5, 100);
		for (int g = 0; g < 5; g++) {
			snprintf(gw, sizeof(gw), "g%d", g);
			per[g] += take(&t, gw, 1, &s);
		}
	}
	for (int g = 0; g < 5; g++) {
		lo = per[g] < lo ? per[g] : lo;
		hi = per[g] > hi ? per[g] : hi;
	}
	CHECK(lo + 2 >= 20 && hi <= 22,
	    "deliveries per gateway %zu %zu %zu %zu %zu, want 20 each",
	    per[0], per[1], per[2], per[3], per[4]);
	env_close(&t);
}

/* three_way - three organisations on one gateway share a global cap of
 * 10/s burst 1 (one token a turn), round robin: each waits at most as
 * many turns as there are organisations in the round. The first one's
 * 2 end early and it leaves the round; the other two then take turns
 * (the head stays where it was when an organisation before it or the
 * head itself leaves) */
static void
test_three_way(void)
{
	static struct gw_seen s;
	struct env t;
	uint64_t id[3];
	char seq[64] = "";
	int last[3] = { -1, -1, -1 }, gap = 0, n = 0, ended = -1;
	size_t per[3] = { 0, 0, 0 };
	const char *org[3] = { "first", "second", "third" };
	const int order[3] = { 1, 0, 2 }; /* "first" in the middle */

	CHECK(env_open(&t, "rate_three") == 0, "open");
	enroll(&t, "first", 2);
	enroll(&t, "second", 100);
	enroll(&t, "third", 100);
	hello(&t, "g", "*", 1000);
	turn(&t);
	CHECK(set_rate(&t, "first", 1, 10, 1, 0) == FBX_OK, "rate set");
	for (int k = 0; k < 3; k++)
		id[order[k]] = submit_org(&t, org[order[k]]);
	for (int i = 0; i < 40; i++) {
		pass_turns(&t, "g", 1);
		(void)take(&t, "g", 1, &s);
		for (size_t k = 0; k < s.nids; k++) {
			for (int o = 0; o < 3; o++) {
				if (FBX_DLV_CMD(s.ids[k]) != id[o])
					continue;
				per[o]++;
				seq[n++] = (char)('1' + o);
				/* turns since its last token, against the
				 * organisations in the round since then */
				if (last[o] >= 0 &&
				    i - last[o] >
				        (ended < 0 || last[o] <= ended ? 3 : 2))
					gap++;
				last[o] = i;
				if (o == 0 && per[0] == 2)
					ended = i;
			}
		}
	}
	CHECK(per[0] == 2 && per[1] + per[2] >= 38 && gap == 0,
	    "tokens in turn, by organisation: %s (%d waits longer than the "
	    "round)",
	    seq, gap);
	env_close(&t);
}

/* global_refund - what the global cap did not allow stays the
 * organisation's: its own allowance is not spent on deliveries the
 * global cap kept back */
static void
test_global_refund(void)
{
	static struct gw_seen s;
	struct env t;
	size_t n;

	CHECK(env_open(&t, "rate_refund") == 0, "open");
	enroll(&t, "acme", 30);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	CHECK(set_rate(&t, "acme", 0, 10, 10, 0) == FBX_OK, "org rate set");
	CHECK(set_rate(&t, "acme", 1, 1, 1, 0) == FBX_OK, "global rate set");
	(void)submit_org(&t, "acme");
	n = take(&t, "g1", 1, &s);
	CHECK(n == 1, "the global burst of 1: %zu sent", n);
	/* the global cap lifted at the same instant: the organisation's
	 * other 9 tokens are there */
	CHECK(set_rate(&t, "acme", 1, 0, 0, 0) == FBX_OK, "global rate off");
	turn(&t);
	n = take(&t, "g1", 1, &s);
	CHECK(n == 9, "the organisation's burst of 10 in all: %zu more sent, "
	              "want 9", n);
	env_close(&t);
}

/* query_devs - an operator's query of acme's devices idx .. idx+n-1;
 * @return its id */
static uint64_t
query_devs(struct env *t, unsigned idx, unsigned n)
{
	struct fbx_console_req req;
	fbx_id ids[16];
	uint64_t id;

	if (n > 16)
		n = 16;
	query_req(&req);
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	for (unsigned i = 0; i < n; i++)
		snprintf(ids[i], sizeof(ids[i]), "acme-d%05u", idx + i);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = n;
	id = submit_req(t, "acme", &req);
	CHECK(id != 0, "query of devices %u-%u", idx, idx + n - 1);
	return id;
}

/* rollout_first - a rollout of a query to every device of acme whose
 * first wave is `first` devices; @return its id */
static uint64_t
rollout_first(struct env *t, uint32_t first)
{
	struct fbx_console_req req;
	uint64_t id;

	rollout_req(&req);
	req.u.submit.cmd.rollout.first_count = first;
	req.u.submit.cmd.rollout.max_wave = first;
	req.u.submit.cmd.rollout.min_results = first;
	id = submit_req(t, "acme", &req);
	CHECK(id != 0, "rollout with a first wave of %u", first);
	return id;
}

/* pause - pause rollout rid of acme */
static void
pause(struct env *t, uint64_t rid)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.command_id = rid;
	req.u.rollout.op = FBX_ROP_PAUSE;
	console(t, "ops", "acme", &req);
	turn(t);
	CHECK(reply(t, "ops", &rep) == FBX_OK, "pause of %llu",
	    (unsigned long long)rid);
	fbx_console_rep_free(&rep);
}

/* paused_tokens - a paused rollout's deliveries, taken from the queue
 * and kept back, cost no tokens: the organisation's (global = 0) or the
 * global bucket's (global = 1) */
static void
test_paused_tokens(int global)
{
	static struct gw_seen s;
	struct env t;
	uint64_t rid, qid;
	size_t n;

	CHECK(env_open(&t, "rate_paused") == 0, "open");
	enroll(&t, "acme", 41);
	hello(&t, "g1", "acme", 10);
	turn(&t);
	CHECK(set_rate(&t, "acme", global, 10, 10, 0) == FBX_OK, "rate set");
	/* a rollout whose first wave of 30 is released: 10 leave (the
	 * window and the burst), 20 stay queued */
	rid = rollout_first(&t, 30);
	pass_turns(&t, "g1", 3);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 10, "wave 1: %zu sent, want 10 (window)", n);
	/* 2 s with the window full: the bucket fills up again */
	pass_turns(&t, "g1", 20);
	pause(&t, rid);
	/* the window frees: the 20 queued are taken from the queue and
	 * kept back; none leaves */
	results(&t, "g1", ++batch, s.ids, s.nids, FBX_R_SUCCEEDED);
	turn(&t);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 0, "paused: %zu sent", n);
	/* at the same instant, an operator's query of one device: the
	 * tokens are all there, it leaves at once */
	qid = query_devs(&t, 40, 1);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 1 && FBX_DLV_CMD(s.ids[0]) == qid,
	    "the operator's query left at once (%s cap): %zu sent",
	    global ? "global" : "organisation's", n);
	env_close(&t);
}

/* partial_refund - of the tokens taken for a queue, exactly those of
 * the deliveries that did not leave go back: a paused rollout's 20
 * queued ahead of another rollout's 3, 10 tokens: the 3 leave, 7
 * tokens stay (not 10, not 0), so a query of 10 devices right after
 * gets 7 out at once */
static void
test_partial_refund(void)
{
	static struct gw_seen s;
	struct env t;
	uint64_t r1, r2, qid;
	size_t n, mine = 0;

	CHECK(env_open(&t, "rate_partial") == 0, "open");
	enroll(&t, "acme", 60);
	hello(&t, "g1", "acme", 1000);
	turn(&t);
	CHECK(set_rate(&t, "acme", 0, 10, 10, 0) == FBX_OK, "rate set");
	r1 = rollout_first(&t, 30);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 10, "first rollout: %zu sent, want 10 (the burst)", n);
	/* no time passes: r1's other 20 are still queued, no tokens */
	pause(&t, r1);
	r2 = rollout_first(&t, 3);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 0, "no tokens: %zu sent", n);
	/* 1 s: 10 tokens; dispatch takes r1's 20 off the queue (kept
	 * back) and sends r2's 3 behind them */
	advance(&t, 1000);
	heartbeat(&t, "g1");
	turn(&t);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	for (size_t i = 0; i < s.nids; i++)
		mine += FBX_DLV_CMD(s.ids[i]) == r2;
	CHECK(n == 3 && mine == 3, "the second rollout's wave: %zu sent, "
	                           "%zu of it", n, mine);
	qid = query_devs(&t, 40, 10);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	mine = 0;
	for (size_t i = 0; i < s.nids; i++)
		mine += FBX_DLV_CMD(s.ids[i]) == qid;
	CHECK(n == 7 && mine == 7,
	    "the 7 tokens the 3 left: %zu of the query's 10 sent, want 7", n);
	env_close(&t);
}

/* sent_by - how many of s's deliveries belong to command id */
static size_t
sent_by(const struct gw_seen *s, uint64_t id)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nids; i++)
		n += FBX_DLV_CMD(s->ids[i]) == id;
	return n;
}

/* class_head - every priority class of a step starts at the head of the
 * round, however many passes the classes above it took. Organisations
 * "a" and "b" each queue an automatic query to all their devices, and
 * "a" an operator's query to its n devices (a class ahead: one pass of
 * a quantum for n = 200, two for 300, then a pass that finds nothing),
 * before any gateway is there; then a gateway with a window of n + 1:
 * the operator's n leave and the one place left goes to the automatic
 * query of the organisation that entered the round first (the head), in
 * either order of the submits. (Were the passes counted on from one
 * class to the next, the empty recovery class's one and the operator
 * class's would move the start by an odd number for one of the two
 * sizes, and the place would go to the other organisation.) */
static void
test_class_head(int a_first, unsigned n_op)
{
	static struct gw_seen s;
	struct fbx_console_req req;
	struct env t;
	uint64_t op, auto_a, auto_b, head;
	size_t n;

	CHECK(env_open(&t, "rate_class") == 0, "open");
	enroll(&t, "a", n_op);
	enroll(&t, "b", 20);
	query_req(&req);
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	if (a_first) {
		op = submit_org(&t, "a");
		auto_a = submit_req(&t, "a", &req);
		auto_b = submit_req(&t, "b", &req);
	} else {
		auto_b = submit_req(&t, "b", &req);
		op = submit_org(&t, "a");
		auto_a = submit_req(&t, "a", &req);
	}
	CHECK(auto_a != 0 && auto_b != 0, "automatic queries accepted");
	turn(&t);
	hello(&t, "g", "*", n_op + 1);
	turn(&t);
	turn(&t);
	n = take(&t, "g", 0, &s);
	head = a_first ? auto_a : auto_b;
	CHECK(n == n_op + 1 && sent_by(&s, op) == n_op &&
	        sent_by(&s, head) == 1,
	    "the operator's %u, then the head's (%s) automatic query: %zu "
	    "sent, %zu of the operator's, %zu of a's, %zu of b's", n_op,
	    a_first ? "a" : "b", n, sent_by(&s, op), sent_by(&s, auto_a),
	    sent_by(&s, auto_b));
	env_close(&t);
}

/* head_leaves - when the organisation at the head of the round leaves
 * it (its last delivery went in the step that moved the head to it),
 * the head is the one after it. "x", "y", "z" at 10/s burst 1 each (a
 * delivery a turn), behind a gateway with a window of 2; y has a single
 * delivery. Step 1: x and y one each (the window), y is empty and was
 * the next head. Only y's is answered: one place. Step 2: it goes to z,
 * which has waited since the start, not to x again. */
static void
test_head_leaves(void)
{
	static struct gw_seen s;
	struct env t;
	uint64_t x, y, z;
	size_t n;

	CHECK(env_open(&t, "rate_head") == 0, "open");
	enroll(&t, "x", 20);
	enroll(&t, "y", 1);
	enroll(&t, "z", 20);
	CHECK(set_rate(&t, "x", 0, 10, 1, 0) == FBX_OK &&
	        set_rate(&t, "y", 0, 10, 1, 0) == FBX_OK &&
	        set_rate(&t, "z", 0, 10, 1, 0) == FBX_OK,
	    "rates set");
	x = submit_org(&t, "x");
	y = submit_org(&t, "y");
	z = submit_org(&t, "z");
	hello(&t, "g", "*", 2);
	turn(&t);
	turn(&t);
	n = take(&t, "g", 0, &s);
	CHECK(n == 2 && sent_by(&s, x) == 1 && sent_by(&s, y) == 1,
	    "step 1: x and y one each: %zu sent, x %zu, y %zu, z %zu", n,
	    sent_by(&s, x), sent_by(&s, y), sent_by(&s, z));
	for (size_t i = 0; i < s.nids; i++) {
		if (FBX_DLV_CMD(s.ids[i]) == y)
			results(&t, "g", ++batch, &s.ids[i], 1,
			    FBX_R_SUCCEEDED);
	}
	advance(&t, 100);
	heartbeat(&t, "g");
	turn(&t);
	n = take(&t, "g", 0, &s);
	CHECK(n == 1 && sent_by(&s, z) == 1,
	    "step 2: the one place to z, after y left from the head: %zu "
	    "sent, x %zu, z %zu",
	    n, sent_by(&s, x), sent_by(&s, z));
	env_close(&t);
}

/* share_steps - n turns of g0 .. g2, what each organisation got since:
 * g0 and g2 serve big, g1 other (none answered) */
static void
share_steps(struct env *t, int n, size_t *big, size_t *other)
{
	static struct gw_seen s;

	for (int i = 0; i < n; i++) {
		gws_step(t, 3, 100);
		*big += take(t, "g0", 0, &s);
		*other += take(t, "g1", 0, &s);
		*big += take(t, "g2", 0, &s);
	}
}

/* share_cap - no organisation fills more than a quarter (the default
 * org_share) of the windows of the gateways that serve it, and at least
 * 1,024, so another organisation's command does not queue behind a
 * whole window of it: behind g0 (window 8,000) at most 2,000 of big's
 * 5,000-device fan-out are unanswered at once; g2 (8,000 more) makes it
 * 4,000 in all; 500 answers let 500 more leave. Beside it, other's
 * 3,000 behind g1 alone (window 2,000: a quarter is 500, the least is
 * 1,024) stop at 1,024 all along. Each organisation's cap counts only
 * its own gateways and is its own (not the one worked out for the
 * organisation before it). */
static void
test_share_cap(void)
{
	static struct gw_seen s;
	struct env t;
	size_t big = 0, other = 0;
	uint64_t first[500];
	int have = 0;

	CHECK(env_open(&t, "rate_share") == 0, "open");
	enroll(&t, "big", 5000);
	enroll(&t, "other", 3000);
	hello(&t, "g0", "big", 8000);
	hello(&t, "g1", "other", 2000);
	turn(&t);
	(void)submit_org(&t, "big");
	(void)submit_org(&t, "other");
	for (int i = 0; i < 5; i++) {
		gws_step(&t, 2, 100);
		big += take(&t, "g0", 0, &s);
		if (!have && s.nids >= 500) {
			memcpy(first, s.ids, sizeof(first));
			have = 1;
		}
		other += take(&t, "g1", 0, &s);
	}
	CHECK(big == 2000 && other == 1024,
	    "a quarter of big's window of 8,000 and the least for other's "
	    "2,000: %zu and %zu unanswered, want 2000 and 1024",
	    big, other);
	hello(&t, "g2", "big", 8000);
	share_steps(&t, 5, &big, &other);
	CHECK(big == 4000 && other == 1024,
	    "a quarter of big's two windows of 8,000: %zu unanswered (other "
	    "%zu)",
	    big, other);
	CHECK(have, "500 of g0's to answer");
	if (have)
		results(&t, "g0", ++batch, first, 500, FBX_R_SUCCEEDED);
	share_steps(&t, 3, &big, &other);
	CHECK(big == 4500 && other == 1024,
	    "500 of big's answered, 500 more out: %zu sent (other %zu)", big,
	    other);
	env_close(&t);
}

int
main(void)
{
	test_org_rate();
	test_org_inflight();
	test_global_shared(1);
	test_global_shared(0);
	test_global_fair(1, 20);
	test_global_fair(0, 20);
	test_global_fair(1, 5);
	test_global_fair(0, 5);
	for (int after = 0; after < 3; after++)
		test_many_gateways(after);
	test_full_gateway(1);
	test_full_gateway(0);
	test_gw_spread();
	test_three_way();
	test_global_refund();
	test_paused_tokens(0);
	test_paused_tokens(1);
	test_partial_refund();
	for (int a_first = 0; a_first < 2; a_first++) {
		test_class_head(a_first, 200);
		test_class_head(a_first, 300);
	}
	test_head_leaves();
	test_share_cap();
	printf("rate_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
