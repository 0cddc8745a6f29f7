/*
 * rate_test.c: the dispatch caps, in-process on a fake clock
 * (engine_fake.c), turn by turn:
 * - an organisation's rate cap (10/s, burst 10): never more sent than
 *   burst + rate x elapsed, and no less either (org_rate);
 * - its in-flight cap: 5 unanswered at most, answers free room for as
 *   many (org_inflight);
 * - the global rate cap shared by two organisations, each behind its own
 *   gateway: the sum stays within the cap, and the small one's 5 leave
 *   within 0.5 s beside the big one's fan-out (global_shared). Only in
 *   this order of the gateways' hellos: dispatch serves the gateways in
 *   a fixed order (the last hello first), so with the big one's hello
 *   last the small one would get nothing until the fan-out ends (a
 *   known gap, not yet fixed);
 * - a global cap that binds does not spend the organisation's own
 *   allowance (global_refund);
 * - tokens are taken only for deliveries that leave: a paused rollout's
 *   deliveries, taken from the queue and kept back, cost its
 *   organisation none, so an operator's command right after the pause
 *   leaves at once (paused_tokens).
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

static void
test_global_shared(void)
{
	static struct gw_seen s;
	struct env t;
	size_t a = 0, b = 0;
	int b_done_at = -1, over = 0;

	CHECK(env_open(&t, "rate_global") == 0, "open");
	enroll(&t, "big", 200);
	enroll(&t, "small", 5);
	hello(&t, "ga", "big", 1000);
	hello(&t, "gb", "small", 1000);
	turn(&t);
	CHECK(set_rate(&t, "big", 1, 20, 20, 0) == FBX_OK, "global rate set");
	(void)submit_org(&t, "big");
	(void)submit_org(&t, "small");
	a += take(&t, "ga", 1, &s);
	b += take(&t, "gb", 1, &s);
	CHECK(a + b <= 20, "at once: the global burst, %zu + %zu sent", a, b);
	if (b == 5)
		b_done_at = 0;
	for (int i = 1; i <= 40 && a < 200; i++) {
		advance(&t, 100);
		heartbeat(&t, "ga");
		heartbeat(&t, "gb");
		turn(&t);
		a += take(&t, "ga", 1, &s);
		b += take(&t, "gb", 1, &s);
		if (a + b > 20 + 2 * (size_t)i + 1)
			over++;
		if (b == 5 && b_done_at < 0)
			b_done_at = i;
	}
	CHECK(over == 0, "the global cap held: %d turns above it", over);
	CHECK(b == 5 && b_done_at >= 0 && b_done_at <= 5,
	    "the small organisation's 5 sent within 0.5 s beside the big "
	    "one's: %zu sent, all by turn %d",
	    b, b_done_at);
	CHECK(a > 0, "the big one progresses too: %zu", a);
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

/* query_dev - an operator's query of acme's device idx; @return its id */
static uint64_t
query_dev(struct env *t, unsigned idx)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id ids[1];
	uint64_t id = 0;

	query_req(&req);
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	snprintf(ids[0], sizeof(ids[0]), "acme-d%05u", idx);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = 1;
	console(t, "ops", "acme", &req);
	turn(t);
	if (reply(t, "ops", &rep) == FBX_OK)
		id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(id != 0, "query of device %u", idx);
	return id;
}

static void
test_paused_tokens(void)
{
	static struct gw_seen s;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct env t;
	uint64_t rid = 0, qid;
	size_t n;
	int rc;

	CHECK(env_open(&t, "rate_paused") == 0, "open");
	enroll(&t, "acme", 41);
	hello(&t, "g1", "acme", 10);
	turn(&t);
	CHECK(set_rate(&t, "acme", 0, 10, 10, 0) == FBX_OK, "rate set");
	/* a rollout whose first wave of 30 is released: 10 leave (the
	 * window and the burst), 20 stay queued */
	rollout_req(&req);
	req.u.submit.cmd.rollout.first_count = 30;
	req.u.submit.cmd.rollout.max_wave = 30;
	req.u.submit.cmd.rollout.min_results = 30;
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	if (rc == FBX_OK)
		rid = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_OK && rid != 0, "rollout: %d", rc);
	pass_turns(&t, "g1", 3);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 10, "wave 1: %zu sent, want 10 (window)", n);
	/* 2 s with the window full: the bucket fills up again */
	pass_turns(&t, "g1", 20);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.command_id = rid;
	req.u.rollout.op = FBX_ROP_PAUSE;
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(reply(&t, "ops", &rep) == FBX_OK, "pause");
	fbx_console_rep_free(&rep);
	/* the window frees: the 20 queued are taken from the queue and
	 * kept back; none leaves */
	results(&t, "g1", ++batch, s.ids, s.nids, FBX_R_SUCCEEDED);
	turn(&t);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 0, "paused: %zu sent", n);
	/* at the same instant, an operator's query of one device: the
	 * organisation's tokens are all there, it leaves at once */
	qid = query_dev(&t, 40);
	turn(&t);
	n = take(&t, "g1", 0, &s);
	CHECK(n == 1 && FBX_DLV_CMD(s.ids[0]) == qid,
	    "the operator's query left at once: %zu sent", n);
	env_close(&t);
}

int
main(void)
{
	test_org_rate();
	test_org_inflight();
	test_global_shared();
	test_global_refund();
	test_paused_tokens();
	printf("rate_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
