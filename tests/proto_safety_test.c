/*
 * proto_safety_test.c: the wire codec's safety controls (breakers,
 * limits, rate caps, approvals, rollouts, dry runs, held commands) and
 * events, through the public header only. Round trips their console
 * requests and replies with every field set and with none, refuses bad
 * identifiers, notes, configurations, plans and over-cap arrays (hand-
 * built bytes where the encoder cannot make them), round trips every
 * event kind and refuses bad or random ones, and flips bytes of safety
 * messages: decoders must not crash, leak or misreport. The other
 * message kinds are in proto_test.c; the shared helpers in proto_util.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_util.h"

/* ======================= safety controls =============================== */

static void
make_plan(struct fbx_rollout_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = 1;
	p->approve_groups = 1;
	p->ngroups = 3;
	strcpy(p->groups[0], "canary");
	strcpy(p->groups[1], "it:staff");
	strcpy(p->groups[2], "everyone");
	p->first_count = 25;
	p->first_share_ppm = 10000;
	p->growth_x100 = 250;
	p->max_wave = 5000;
	p->bake_s = 900;
	p->success_ppm = 950000;
	p->failure_ppm = FBX_PPM;
	p->min_results = 20;
}

static void
make_status(struct fbx_rollout_status *s)
{
	memset(s, 0, sizeof(*s));
	s->state = FBX_RO_PAUSED;
	s->stage = 1;
	s->wave = 4;
	s->released = 1234;
	s->wave_start = 600;
	s->wave_size = 634;
	s->wave_started_ms = 1700000001000;
	s->bake_until_ms = 1700000901000;
	strcpy(s->note, "failure share 7% > 5% (auto pause)");
}

static int
plan_eq(const struct fbx_rollout_plan *a, const struct fbx_rollout_plan *b)
{
	int g;

	if (a->enabled != b->enabled || a->approve_groups != b->approve_groups
	    || a->ngroups != b->ngroups || a->first_count != b->first_count
	    || a->first_share_ppm != b->first_share_ppm
	    || a->growth_x100 != b->growth_x100 || a->max_wave != b->max_wave
	    || a->bake_s != b->bake_s || a->success_ppm != b->success_ppm
	    || a->failure_ppm != b->failure_ppm
	    || a->min_results != b->min_results)
		return 0;
	for (g = 0; g < a->ngroups; g++)
		if (strcmp(a->groups[g], b->groups[g]))
			return 0;
	return 1;
}

static int
status_eq(
    const struct fbx_rollout_status *a, const struct fbx_rollout_status *b)
{
	return a->state == b->state && a->stage == b->stage
	    && a->wave == b->wave && a->released == b->released
	    && a->wave_start == b->wave_start && a->wave_size == b->wave_size
	    && a->wave_started_ms == b->wave_started_ms
	    && a->bake_until_ms == b->bake_until_ms
	    && !strcmp(a->note, b->note);
}

/* make_held_command: a command with every safety field set. */
static void
make_held_command(struct fbx_command *c, uint64_t id)
{
	make_command(c, id);
	c->state = FBX_C_HELD;
	c->priority = FBX_PRIO_AUTOMATIC;
	strcpy(c->held_by, "acme/INC-42");
	strcpy(c->approved_by, "bob@acme");
	strcpy(c->resolved_by, "carol@acme");
	strcpy(c->note, "held: 312 wipes in 10 min, fleet 2%");
	make_plan(&c->rollout);
	make_status(&c->ro);
}

static int
safety_eq(const struct fbx_command *a, const struct fbx_command *b)
{
	return command_info_eq(a, b) && a->priority == b->priority
	    && !strcmp(a->held_by, b->held_by)
	    && !strcmp(a->approved_by, b->approved_by)
	    && !strcmp(a->resolved_by, b->resolved_by)
	    && !strcmp(a->note, b->note) && plan_eq(&a->rollout, &b->rollout)
	    && status_eq(&a->ro, &b->ro);
}

static void
test_req_safety(void)
{
	struct fbx_console_req in, out;
	struct fbx_command *c = &in.u.submit.cmd;
	char why[256];

	/* Submit with dry run, approval token and a staged rollout. */
	base_req(&in, FBX_CREQ_SUBMIT);
	c->type = FBX_CMD_OS_UPDATE;
	c->origin = FBX_ORIGIN_SCHEDULED;
	c->target_kind = FBX_TARGET_ORG;
	make_plan(&c->rollout);
	in.dry_run = 1;
	strcpy(in.approval, "appr:7f3a");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_SUBMIT && out.dry_run == 1);
	CHECK(!strcmp(out.approval, "appr:7f3a"));
	CHECK(plan_eq(&c->rollout, &out.u.submit.cmd.rollout));
	fbx_console_req_free(&out);
	/* Without them, nothing is invented. */
	memset(&c->rollout, 0, sizeof(c->rollout));
	in.dry_run = 0;
	in.approval[0] = '\0';
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.dry_run == 0 && out.approval[0] == '\0');
	CHECK(out.u.submit.cmd.rollout.enabled == 0
	    && out.u.submit.cmd.rollout.ngroups == 0);
	fbx_console_req_free(&out);

	/* Breaker: trip with a UTF-8 note, reset, configure, status. */
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_TRIP;
	strcpy(in.u.breaker.reason, "jamf:rule-17");
	strcpy(
	    in.u.breaker.note, "lock storm \xe2\x80\x94 INC-7 (caf\xc3\xa9)");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(
	    out.kind == FBX_CREQ_BREAKER && out.u.breaker.op == FBX_BRK_TRIP);
	CHECK(!strcmp(out.u.breaker.reason, "jamf:rule-17"));
	CHECK(!strcmp(out.u.breaker.note, in.u.breaker.note));
	CHECK(out.u.breaker.global == 0
	    && out.u.breaker.on_reset == FBX_RESET_NONE);
	fbx_console_req_free(&out);

	in.u.breaker.op = FBX_BRK_RESET;
	in.u.breaker.global = 1;
	in.u.breaker.on_reset = FBX_RESET_DISCARD;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.breaker.op == FBX_BRK_RESET && out.u.breaker.global == 1);
	CHECK(out.u.breaker.on_reset == FBX_RESET_DISCARD);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_CONFIGURE;
	in.u.breaker.cfg.window_s = 300;
	in.u.breaker.cfg.min_count = 50;
	in.u.breaker.cfg.share_ppm = 15000;
	in.u.breaker.cfg.baseline_mult = 8;
	in.u.breaker.cfg.global_orgs = 4;
	in.u.breaker.cfg.shadow = 2;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.breaker.op == FBX_BRK_CONFIGURE);
	CHECK(!memcmp(
	    &in.u.breaker.cfg, &out.u.breaker.cfg, sizeof(in.u.breaker.cfg)));
	CHECK(
	    out.u.breaker.reason[0] == '\0' && out.u.breaker.note[0] == '\0');
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_STATUS;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.breaker.op == FBX_BRK_STATUS);
	fbx_console_req_free(&out);

	/* Limit: set for the org, set global, list. The decoded lim.org is
	 * the scope acted on. */
	base_req(&in, FBX_CREQ_LIMIT);
	in.u.limit.set = 1;
	in.u.limit.lim.type = FBX_CMD_WIPE;
	in.u.limit.lim.max_count = 50;
	in.u.limit.lim.max_share_ppm = 5000;
	in.u.limit.lim.window_s = 7200;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIMIT && out.u.limit.set == 1
	    && out.u.limit.global == 0);
	CHECK(!strcmp(out.u.limit.lim.org, "acme"));
	CHECK(out.u.limit.lim.type == FBX_CMD_WIPE
	    && out.u.limit.lim.max_count == 50
	    && out.u.limit.lim.max_share_ppm == 5000
	    && out.u.limit.lim.window_s == 7200);
	fbx_console_req_free(&out);
	in.u.limit.global = 1;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.limit.global == 1 && !strcmp(out.u.limit.lim.org, "*"));
	fbx_console_req_free(&out);
	base_req(&in, FBX_CREQ_LIMIT);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.limit.set == 0 && out.u.limit.lim.type == FBX_CMD_NONE);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_RATE);
	in.u.rate.set = 1;
	in.u.rate.global = 1;
	in.u.rate.rate.rate_per_s = 2000;
	in.u.rate.rate.burst = 4000;
	in.u.rate.rate.max_inflight = 100000;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_RATE && out.u.rate.set == 1
	    && out.u.rate.global == 1 && !strcmp(out.u.rate.rate.org, "*"));
	CHECK(out.u.rate.rate.rate_per_s == 2000
	    && out.u.rate.rate.burst == 4000
	    && out.u.rate.rate.max_inflight == 100000);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_APPROVE);
	strcpy(in.u.approve.token, "appr:7f3a");
	strcpy(in.u.approve.note, "checked with the fleet owner");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_APPROVE);
	CHECK(!strcmp(out.u.approve.token, "appr:7f3a"));
	CHECK(!strcmp(out.u.approve.note, "checked with the fleet owner"));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_ROLLOUT);
	in.u.rollout.op = FBX_ROP_APPROVE;
	in.u.rollout.command_id = 991;
	strcpy(in.u.rollout.note, "canary green for 24 h");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLOUT
	    && out.u.rollout.op == FBX_ROP_APPROVE
	    && out.u.rollout.command_id == 991);
	CHECK(!strcmp(out.u.rollout.note, "canary green for 24 h"));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_LIST_HELD);
	strcpy(in.u.list_held.reason, "INC-42");
	in.u.list_held.after = 17;
	in.u.list_held.limit = FBX_PAGE_MAX;
	in.u.list_held.which = FBX_LH_ROLLOUTS;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_HELD);
	CHECK(!strcmp(out.u.list_held.reason, "INC-42")
	    && out.u.list_held.after == 17
	    && out.u.list_held.limit == FBX_PAGE_MAX
	    && out.u.list_held.which == FBX_LH_ROLLOUTS);
	fbx_console_req_free(&out);
}

static void
test_rep_safety(void)
{
	struct fbx_console_rep in, out;
	struct fbx_group_count groups[3];
	uint32_t waves[5] = { 25, 63, 157, 393, 362 };
	struct fbx_breaker_info brk[3];
	struct fbx_limit_info lim[2];
	struct fbx_rate_info rate[2];
	struct fbx_command cmds[2];
	size_t i;

	/* Submit answered HELD. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_SUBMIT;
	in.u.submit.command_id = 77;
	in.u.submit.state = FBX_C_HELD;
	strcpy(in.u.submit.held_by, "*/jamf:rule-17");
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.submit.state == FBX_C_HELD);
	CHECK(!strcmp(out.u.submit.held_by, "*/jamf:rule-17"));
	CHECK(out.u.submit.dry_run == 0 && out.u.submit.dryrun.groups == NULL);
	fbx_console_rep_free(&out);

	/* Dry run with platforms, groups, waves and a stop verdict. */
	memset(&in, 0, sizeof(in));
	in.request_id = 5;
	in.kind = FBX_CREQ_SUBMIT;
	in.u.submit.dry_run = 1;
	in.u.submit.dryrun.devices = 1000;
	in.u.submit.dryrun.per_platform[FBX_PLATFORM_IOS] = 600;
	in.u.submit.dryrun.per_platform[FBX_PLATFORM_ANDROID] = 399;
	in.u.submit.dryrun.per_platform[FBX_PLATFORM_ANY] = 1;
	memset(groups, 0, sizeof(groups));
	strcpy(groups[0].name, "canary");
	groups[0].count = 25;
	strcpy(groups[1].name, "it:staff");
	groups[1].count = 75;
	strcpy(groups[2].name, "everyone");
	groups[2].count = 900;
	in.u.submit.dryrun.groups = groups;
	in.u.submit.dryrun.ngroups = 3;
	in.u.submit.dryrun.waves = waves;
	in.u.submit.dryrun.nwaves = 5;
	in.u.submit.dryrun.stop_err = FBX_ELIMIT_EXCEEDED;
	strcpy(in.u.submit.dryrun.verdict,
	    "1000 devices > wipe limit 50 per hour: needs approval");
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_SUBMIT && out.u.submit.dry_run == 1);
	CHECK(out.u.submit.dryrun.devices == 1000);
	CHECK(!memcmp(out.u.submit.dryrun.per_platform,
	    in.u.submit.dryrun.per_platform,
	    sizeof(in.u.submit.dryrun.per_platform)));
	CHECK(out.u.submit.dryrun.ngroups == 3
	    && out.u.submit.dryrun.nwaves == 5);
	if (out.u.submit.dryrun.ngroups == 3)
		for (i = 0; i < 3; i++)
			CHECK(!strcmp(out.u.submit.dryrun.groups[i].name,
			          groups[i].name)
			    && out.u.submit.dryrun.groups[i].count
			        == groups[i].count);
	if (out.u.submit.dryrun.nwaves == 5)
		CHECK(
		    !memcmp(out.u.submit.dryrun.waves, waves, sizeof(waves)));
	CHECK(out.u.submit.dryrun.stop_err == FBX_ELIMIT_EXCEEDED);
	CHECK(
	    !strcmp(out.u.submit.dryrun.verdict, in.u.submit.dryrun.verdict));
	fbx_console_rep_free(&out);
	CHECK(out.u.submit.dryrun.groups == NULL);

	/* Breaker reply with three breakers, one global. */
	memset(&in, 0, sizeof(in));
	memset(brk, 0, sizeof(brk));
	in.kind = FBX_CREQ_BREAKER;
	for (i = 0; i < 3; i++) {
		struct fbx_breaker_info *b = &brk[i];
		strcpy(b->org, i == 2 ? "*" : "acme");
		snprintf(b->reason, sizeof(b->reason), "rule-%zu", i);
		b->state = i == 1 ? FBX_BS_OPEN : FBX_BS_CLOSED;
		b->manual = i == 1;
		b->cfg.window_s = 600;
		b->cfg.min_count = 20 + (uint32_t)i;
		b->cfg.share_ppm = 20000;
		b->cfg.baseline_mult = 10;
		b->cfg.global_orgs = 3;
		b->cfg.shadow = i == 0;
		b->window_count = 300 + i;
		b->baseline = 12;
		b->held = 4 * i;
		b->would_hold = 9;
		b->trips = 2;
		b->tripped_ms = 1700000000000 + (int64_t)i;
		strcpy(b->tripped_by, i == 1 ? "alice@acme" : "engine");
		strcpy(b->note, "manual trip: INC-7");
		b->fleet = 15000;
		b->allowance = 300;
	}
	/* commands without a reason (whole buffer: compared by memcmp) */
	memset(brk[0].reason, 0, sizeof(brk[0].reason));
	in.u.breaker.b = brk;
	in.u.breaker.n = 3;
	in.u.breaker.released = 11;
	in.u.breaker.discarded = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_BREAKER && out.u.breaker.n == 3);
	CHECK(out.u.breaker.released == 11 && out.u.breaker.discarded == 2);
	if (out.u.breaker.n == 3)
		CHECK(!memcmp(brk, out.u.breaker.b, sizeof(brk)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	memset(lim, 0, sizeof(lim));
	in.kind = FBX_CREQ_LIMIT;
	strcpy(lim[0].org, "*");
	lim[0].type = FBX_CMD_WIPE;
	lim[0].max_count = 50;
	lim[0].window_s = 3600;
	lim[0].used = 12;
	strcpy(lim[1].org, "acme");
	lim[1].type = FBX_CMD_LOCK;
	lim[1].max_share_ppm = 50000;
	lim[1].window_s = 600;
	lim[1].used = 1ull << 40;
	in.u.limit.l = lim;
	in.u.limit.n = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIMIT && out.u.limit.n == 2);
	if (out.u.limit.n == 2)
		CHECK(!memcmp(lim, out.u.limit.l, sizeof(lim)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	memset(rate, 0, sizeof(rate));
	in.kind = FBX_CREQ_RATE;
	strcpy(rate[0].org, "*");
	rate[0].rate_per_s = 5000;
	rate[0].burst = 10000;
	strcpy(rate[1].org, "acme");
	rate[1].rate_per_s = 100;
	rate[1].burst = 200;
	rate[1].max_inflight = 1000;
	rate[1].inflight = 999;
	in.u.rate.r = rate;
	in.u.rate.n = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_RATE && out.u.rate.n == 2);
	if (out.u.rate.n == 2)
		CHECK(!memcmp(rate, out.u.rate.r, sizeof(rate)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_APPROVE;
	strcpy(in.u.approve.token, "appr:7f3a");
	strcpy(in.u.approve.approver, "bob@acme");
	strcpy(in.u.approve.submitter, "alice@acme");
	in.u.approve.expires_ms = 1700000900000;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_APPROVE);
	CHECK(!memcmp(&in.u.approve, &out.u.approve, sizeof(in.u.approve)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_ROLLOUT;
	in.u.rollout.command_id = 991;
	make_plan(&in.u.rollout.plan);
	make_status(&in.u.rollout.st);
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLOUT && out.u.rollout.command_id == 991);
	CHECK(plan_eq(&in.u.rollout.plan, &out.u.rollout.plan));
	CHECK(status_eq(&in.u.rollout.st, &out.u.rollout.st));
	fbx_console_rep_free(&out);

	/* Held commands, with every safety field; the second is plain. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_LIST_HELD;
	make_held_command(&cmds[0], 40);
	make_command(&cmds[1], 41);
	cmds[1].state = FBX_C_DISCARDED;
	strcpy(cmds[1].held_by, "*/");
	in.u.commands.cmds = cmds;
	in.u.commands.n = 2;
	in.u.commands.next_after = 41;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_HELD && out.u.commands.n == 2);
	CHECK(out.u.commands.next_after == 41);
	if (out.u.commands.n == 2) {
		CHECK(safety_eq(&cmds[0], &out.u.commands.cmds[0]));
		CHECK(safety_eq(&cmds[1], &out.u.commands.cmds[1]));
	}
	fbx_console_rep_free(&out);

	/* The same fields through get_command. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_GET_COMMAND;
	make_held_command(&in.u.command.info, 40);
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(safety_eq(&in.u.command.info, &out.u.command.info));
	fbx_console_rep_free(&out);

	/* LIMIT_EXCEEDED carries the approval token and the numbers. */
	memset(&in, 0, sizeof(in));
	in.request_id = 32;
	in.kind = FBX_CREQ_SUBMIT;
	in.err = FBX_ELIMIT_EXCEEDED;
	strcpy(in.errmsg, "wipe of 1000 devices > limit 50 per hour");
	strcpy(in.approval_token, "appr:7f3a");
	in.limit_value = 50;
	in.limit_count = 1000;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.request_id == 32 && out.err == FBX_ELIMIT_EXCEEDED);
	CHECK(!strcmp(out.errmsg, in.errmsg));
	CHECK(!strcmp(out.approval_token, "appr:7f3a"));
	CHECK(out.limit_value == 50 && out.limit_count == 1000);
	CHECK(out.kind == FBX_CREQ_NONE);
	fbx_console_rep_free(&out);
}

/* hand_rep_submit wraps a hand-built SubmitResult in a ConsoleReply. */
static int
hand_rep_submit(struct pbw *sub, struct fbx_console_rep *out)
{
	struct pbw w = { 0 };
	int rv;

	pbw_uint(&w, 1, 3);
	pbw_uint(&w, 3, 1);
	pbw_sub(&w, 10, sub);
	rv = fbx_console_rep_decode(w.p, w.n, out);
	free(w.p);
	return rv;
}

static void
test_safety_bad_fields(void)
{
	struct fbx_console_req in, out;
	struct fbx_console_rep rin, rout;
	struct fbx_breaker_info brk;
	struct fbx_limit_info lim;
	struct pbw w = { 0 }, body = { 0 }, plan = { 0 }, sub = { 0 };
	char why[256], note[FBX_NOTE_MAX + 1];
	uint8_t *buf = NULL;
	size_t len = 0, i;

	/* "*" is a scope in replies, never an organisation in requests. */
	base_req(&in, FBX_CREQ_PING);
	strcpy(in.org, "*");
	req_bad(&in, FBX_EINVALID, "org:");
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_STATUS;
	strcpy(in.org, "*");
	req_bad(&in, FBX_EINVALID, "org:");

	/* Breaker operations and what each needs. */
	base_req(&in, FBX_CREQ_BREAKER);
	req_bad(&in, FBX_EINVALID, "breaker.op");
	in.u.breaker.op = FBX_BRK_CONFIGURE + 1;
	req_bad(&in, FBX_EINVALID, "breaker.op");
	in.u.breaker.op = FBX_BRK_TRIP;
	strcpy(in.u.breaker.note, "storm");
	req_bad(&in, FBX_EINVALID, "breaker.reason");
	strcpy(in.u.breaker.reason, "rule 17");
	req_bad(&in, FBX_EINVALID, "breaker.reason");
	strcpy(in.u.breaker.reason, "rule-17");
	in.u.breaker.note[0] = '\0';
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "storm");
	in.u.breaker.on_reset = FBX_RESET_RELEASE;
	req_bad(&in, FBX_EINVALID, "breaker.on_reset");
	in.u.breaker.on_reset = FBX_RESET_NONE;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	in.u.breaker.op = FBX_BRK_RESET;
	req_bad(&in, FBX_EINVALID, "breaker.on_reset");
	in.u.breaker.on_reset = 7;
	req_bad(&in, FBX_EINVALID, "breaker.on_reset");
	in.u.breaker.on_reset = FBX_RESET_RELEASE;
	in.u.breaker.reason[0] = '\0';
	req_bad(&in, FBX_EINVALID, "breaker.reason");
	strcpy(in.u.breaker.reason, "rule-17");
	in.u.breaker.note[0] = '\0';
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "storm");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	/* Config only with CONFIGURE, and in range. */
	in.u.breaker.cfg.min_count = 5;
	req_bad(&in, FBX_EINVALID, "breaker.config");
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_CONFIGURE;
	in.u.breaker.cfg.share_ppm = FBX_PPM + 1;
	req_bad(&in, FBX_EINVALID, "breaker.config.share_ppm");
	in.u.breaker.cfg.share_ppm = FBX_PPM;
	in.u.breaker.cfg.shadow = 3;
	req_bad(&in, FBX_EINVALID, "breaker.config.shadow");

	/* Notes: printable UTF-8, at most 159 bytes. */
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_TRIP;
	strcpy(in.u.breaker.reason, "r");
	strcpy(in.u.breaker.note, "two\nlines");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "tab\there");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "del\x7f");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "esc \x1b[31m red");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "c1 \xc2\x85 nel");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "bad \xc3\x28 utf8");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "overlong \xc0\xaf");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "surrogate \xed\xa0\x80");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "cut \xe2\x80");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "ok \xf0\x9f\x94\xa5 \xe6\x97\xa5 \xc2\xa0");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(!strcmp(out.u.breaker.note, in.u.breaker.note));
	fbx_console_req_free(&out);
	memset(in.u.breaker.note, 'n', FBX_NOTE_MAX - 1);
	in.u.breaker.note[FBX_NOTE_MAX - 1] = '\0';
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(strlen(out.u.breaker.note) == FBX_NOTE_MAX - 1);
	fbx_console_req_free(&out);
	/* 160 bytes cannot be encoded from the struct: build it by hand. */
	memset(note, 'n', FBX_NOTE_MAX);
	note[FBX_NOTE_MAX] = '\0';
	hand_req(&w, 1, "acme");
	pbw_uint(&body, 1, FBX_BRK_TRIP);
	pbw_str(&body, 3, "r");
	pbw_str(&body, 5, note);
	pbw_sub(&w, 18, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strstr(why, "breaker.note") != NULL);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* Limits. */
	base_req(&in, FBX_CREQ_LIMIT);
	in.u.limit.set = 1;
	req_bad(&in, FBX_EINVALID, "limit.type");
	in.u.limit.lim.type = FBX_CMD_TYPE_COUNT;
	req_bad(&in, FBX_EINVALID, "limit.type");
	in.u.limit.set = 0;
	req_bad(&in, FBX_EINVALID, "limit.type");
	in.u.limit.set = 1;
	in.u.limit.lim.type = FBX_CMD_LOCK;
	in.u.limit.lim.max_share_ppm = FBX_PPM + 1;
	req_bad(&in, FBX_EINVALID, "limit.max_share_ppm");

	/* Approvals, rollouts, held lists. */
	base_req(&in, FBX_CREQ_APPROVE);
	req_bad(&in, FBX_EINVALID, "approve.token");
	strcpy(in.u.approve.token, "*");
	req_bad(&in, FBX_EINVALID, "approve.token");
	strcpy(in.u.approve.token, "t1");
	strcpy(in.u.approve.note, "bell\a");
	req_bad(&in, FBX_EINVALID, "approve.note");

	base_req(&in, FBX_CREQ_ROLLOUT);
	in.u.rollout.command_id = 5;
	req_bad(&in, FBX_EINVALID, "rollout.op");
	in.u.rollout.op = FBX_ROP_APPROVE + 1;
	req_bad(&in, FBX_EINVALID, "rollout.op");
	in.u.rollout.op = FBX_ROP_PAUSE;
	in.u.rollout.command_id = 0;
	req_bad(&in, FBX_EINVALID, "rollout.command_id");
	in.u.rollout.command_id = 5;
	strcpy(in.u.rollout.note, "\r");
	req_bad(&in, FBX_EINVALID, "rollout.note");

	base_req(&in, FBX_CREQ_LIST_HELD);
	in.u.list_held.limit = FBX_PAGE_MAX + 1;
	req_bad(&in, FBX_ETOOBIG, "list_held.limit");
	in.u.list_held.limit = 1;
	strcpy(in.u.list_held.reason, "a/b");
	req_bad(&in, FBX_EINVALID, "list_held.reason");
	in.u.list_held.reason[0] = '\0';
	in.u.list_held.which = 3;
	req_bad(&in, FBX_EINVALID, "list_held.which");

	/* Submit: approval token, rollout plan. */
	base_req(&in, FBX_CREQ_SUBMIT);
	in.u.submit.cmd.type = FBX_CMD_LOCK;
	in.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	in.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	strcpy(in.approval, "not valid");
	req_bad(&in, FBX_EINVALID, "submit.approval");
	in.approval[0] = '\0';
	make_plan(&in.u.submit.cmd.rollout);
	strcpy(in.u.submit.cmd.rollout.groups[1], "bad group");
	req_bad(&in, FBX_EINVALID, "submit.rollout.groups[1]");
	in.u.submit.cmd.rollout.groups[1][0] = '\0';
	req_bad(&in, FBX_EINVALID, "submit.rollout.groups[1]");
	strcpy(in.u.submit.cmd.rollout.groups[1], "ok");
	in.u.submit.cmd.rollout.success_ppm = FBX_PPM + 1;
	req_bad(&in, FBX_EINVALID, "submit.rollout");
	in.u.submit.cmd.rollout.success_ppm = FBX_PPM;
	in.u.submit.cmd.rollout.first_share_ppm = 0xffffffffu;
	req_bad(&in, FBX_EINVALID, "submit.rollout");
	in.u.submit.cmd.rollout.first_share_ppm = 0;
	in.u.submit.cmd.rollout.ngroups = FBX_ROLLOUT_GROUPS_MAX + 1;
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_ETOOBIG);
	in.u.submit.cmd.rollout.ngroups = FBX_ROLLOUT_GROUPS_MAX;
	for (i = 0; i < FBX_ROLLOUT_GROUPS_MAX; i++)
		snprintf(in.u.submit.cmd.rollout.groups[i], sizeof(fbx_id),
		    "g%zu", i);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(plan_eq(&in.u.submit.cmd.rollout, &out.u.submit.cmd.rollout));
	fbx_console_req_free(&out);
	hand_req(&w, 1, "acme");
	for (i = 0; i < FBX_ROLLOUT_GROUPS_MAX + 1; i++)
		pbw_str(&plan, 11, "g");
	pbw_uint(&sub, 1, FBX_TARGET_ORG);
	pbw_uint(&body, 1, FBX_CMD_LOCK);
	pbw_uint(&body, 2, FBX_ORIGIN_OPERATOR);
	pbw_sub(&body, 4, &sub);
	pbw_sub(&body, 10, &plan);
	pbw_sub(&w, 10, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strstr(why, "submit.rollout.groups") != NULL);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* Replies: held_by shape. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_SUBMIT;
	rin.u.submit.state = FBX_C_HELD;
	strcpy(rin.u.submit.held_by, "acme");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "/INC-1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "ac me/INC-1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "acme/INC/1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "**/INC-1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	memset(rin.u.submit.held_by, 'a', FBX_ID_MAX);
	rin.u.submit.held_by[FBX_ID_MAX] = '/';
	memset(rin.u.submit.held_by + FBX_ID_MAX + 1, 'b', FBX_ID_MAX);
	rin.u.submit.held_by[2 * FBX_ID_MAX + 1] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(strlen(rout.u.submit.held_by) == 2 * FBX_ID_MAX + 1);
	fbx_console_rep_free(&rout);

	/* A dry-run report needs dry_run and the reverse; platforms once. */
	pbw_uint(&sub, 6, 1);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_sub(&sub, 7, &body);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_uint(&plan, 1, FBX_PLATFORM_IOS);
	pbw_uint(&plan, 2, 3);
	pbw_sub(&body, 2, &plan);
	pbw_uint(&plan, 1, FBX_PLATFORM_IOS);
	pbw_uint(&plan, 2, 4);
	pbw_sub(&body, 2, &plan);
	pbw_uint(&sub, 6, 1);
	pbw_sub(&sub, 7, &body);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_uint(&plan, 1, 99);
	pbw_sub(&body, 2, &plan);
	pbw_uint(&sub, 6, 1);
	pbw_sub(&sub, 7, &body);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_uint(&sub, 6, 1);
	pbw_sub(&sub, 7, &body); /* empty report: fine */
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_OK);
	CHECK(rout.u.submit.dry_run == 1 && rout.u.submit.dryrun.devices == 0);
	fbx_console_rep_free(&rout);

	/* Dry-run arrays over their caps are refused by the encoder. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_SUBMIT;
	rin.u.submit.dry_run = 1;
	rin.u.submit.dryrun.nwaves = FBX_PAGE_MAX + 1;
	rin.u.submit.dryrun.waves
	    = xcalloc(FBX_PAGE_MAX + 1, sizeof(uint32_t));
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	free(rin.u.submit.dryrun.waves);
	rin.u.submit.dryrun.nwaves = 1;
	rin.u.submit.dryrun.waves = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);

	/* Breaker and limit entries. */
	memset(&rin, 0, sizeof(rin));
	memset(&brk, 0, sizeof(brk));
	rin.kind = FBX_CREQ_BREAKER;
	rin.u.breaker.b = &brk;
	rin.u.breaker.n = 1;
	strcpy(brk.org, "acme");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID); /* state missing */
	brk.state = FBX_BS_OPEN;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	brk.org[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(brk.org, "*");
	strcpy(brk.note, "a\x01");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	brk.note[0] = '\0';
	brk.cfg.share_ppm = FBX_PPM + 1;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);

	memset(&rin, 0, sizeof(rin));
	memset(&lim, 0, sizeof(lim));
	rin.kind = FBX_CREQ_LIMIT;
	rin.u.limit.l = &lim;
	rin.u.limit.n = 1;
	strcpy(lim.org, "acme");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID); /* type missing */
	lim.type = FBX_CMD_WIPE;
	strcpy(lim.org, "a*");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);

	/* Command fields: priority range, rollout status. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_GET_COMMAND;
	make_held_command(&rin.u.command.info, 3);
	rin.u.command.info.priority = FBX_PRIO_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.command.info.priority = FBX_PRIO_BULK;
	rin.u.command.info.ro.state = FBX_RO_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.command.info.ro.state = FBX_RO_DONE;
	rin.u.command.info.ro.stage = FBX_ROLLOUT_GROUPS_MAX + 1;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.command.info.ro.stage = 0;
	strcpy(rin.u.command.info.approved_by, "x y");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);

	/* Error: a malformed approval token is refused. */
	memset(&rin, 0, sizeof(rin));
	rin.err = FBX_ELIMIT_EXCEEDED;
	strcpy(rin.approval_token, "no good");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
}

static void
test_events(void)
{
	static const char *const names[] = { "none", "breaker_tripped",
		"breaker_reset", "breaker_would_trip", "rollout_paused",
		"rollout_resumed", "limit_rejected", "failure_spike",
		"command_settled", "cert_expiring", "devices_stale",
		"outcome_silence" };
	struct fbx_event in, out;
	uint8_t *buf = NULL, junk[64];
	size_t len = 0, i, j;
	int k, ok = 0;

	_Static_assert(sizeof(names) / sizeof(names[0]) == FBX_EV_COUNT,
	    "names must list every event kind");
	for (k = 0; k < FBX_EV_COUNT; k++)
		CHECK(!strcmp(fbx_event_kind_name(k), names[k]));
	CHECK(!strcmp(fbx_event_kind_name(-1), "unknown"));
	CHECK(!strcmp(fbx_event_kind_name(FBX_EV_COUNT), "unknown"));

	for (k = FBX_EV_BREAKER_TRIPPED; k < FBX_EV_COUNT; k++) {
		memset(&in, 0, sizeof(in));
		in.kind = k;
		in.at_ms = 1700000000000 + k;
		strcpy(in.org, k % 2 ? "*" : "acme");
		strcpy(in.reason, "jamf:rule-17");
		strcpy(in.actor, "engine");
		in.command_id = (uint64_t)k * 1000;
		in.count = 312;
		in.limit = 300;
		snprintf(in.detail, sizeof(in.detail),
		    "%s: 312 devices in 600 s > 300", names[k]);
		CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
		CHECK_RV(fbx_event_decode(buf, len, &out), FBX_OK);
		CHECK(!memcmp(&in, &out, sizeof(in)));
		free(buf);
		buf = NULL;
	}
	/* Optional fields may be empty. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_EV_FAILURE_SPIKE;
	strcpy(in.org, "acme");
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_OK);
	CHECK(!memcmp(&in, &out, sizeof(in)));
	free(buf);

	/* Refused: bad kind, bad org, missing org, oversize, garbage. */
	in.kind = 0;
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_EINVALID);
	in.kind = FBX_EV_COUNT;
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_EINVALID);
	in.kind = FBX_EV_LIMIT_REJECTED;
	strcpy(in.org, "ac me");
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_EINVALID);
	CHECK(out.kind == 0);
	free(buf);
	in.org[0] = '\0';
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_EINVALID);
	free(buf);
	strcpy(in.org, "acme");
	strcpy(in.actor, "x/y");
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_EINVALID);
	free(buf);
	CHECK_RV(fbx_event_decode(junk, 1u << 20, &out), FBX_ETOOBIG);
	CHECK_RV(fbx_event_decode(NULL, 0, &out), FBX_EVERSION);
	{
		struct pbw w = { 0 };
		pbw_uint(&w, 1, 1);
		pbw_uint(&w, 2, 42);
		pbw_str(&w, 4, "acme");
		CHECK_RV(fbx_event_decode(w.p, w.n, &out), FBX_EINVALID);
		free(w.p);
		memset(&w, 0, sizeof(w));
		pbw_uint(&w, 1, 2);
		pbw_uint(&w, 2, FBX_EV_BREAKER_RESET);
		pbw_str(&w, 4, "acme");
		CHECK_RV(fbx_event_decode(w.p, w.n, &out), FBX_EVERSION);
		free(w.p);
	}
	rng_state = 0xabad1deaabad1deaull;
	for (i = 0; i < 5000; i++) {
		size_t n = 1 + rng() % sizeof(junk);
		for (j = 0; j < n; j++)
			junk[j] = (uint8_t)rng();
		if (fbx_event_decode(junk, n, &out) == FBX_OK)
			ok++;
	}
	CHECK(ok == 0);
}

/* test_safety_mutations flips bytes of safety replies (dry run, breaker
 * list, held commands): decoders must not crash, leak or misreport. */
static void
test_safety_mutations(void)
{
	struct fbx_console_rep in[3], out;
	struct fbx_group_count groups[2];
	uint32_t waves[3] = { 1, 2, 4 };
	struct fbx_breaker_info brk[2];
	struct fbx_command cmd;
	uint8_t *enc[3], *buf;
	size_t elen[3], i, j, odd = 0;
	int rv;

	memset(in, 0, sizeof(in));
	in[0].kind = FBX_CREQ_SUBMIT;
	in[0].u.submit.dry_run = 1;
	in[0].u.submit.dryrun.devices = 7;
	in[0].u.submit.dryrun.per_platform[FBX_PLATFORM_IOS] = 7;
	memset(groups, 0, sizeof(groups));
	strcpy(groups[0].name, "g0");
	strcpy(groups[1].name, "g1");
	in[0].u.submit.dryrun.groups = groups;
	in[0].u.submit.dryrun.ngroups = 2;
	in[0].u.submit.dryrun.waves = waves;
	in[0].u.submit.dryrun.nwaves = 3;
	strcpy(in[0].u.submit.dryrun.verdict, "ok");
	memset(brk, 0, sizeof(brk));
	for (i = 0; i < 2; i++) {
		strcpy(brk[i].org, "o");
		strcpy(brk[i].reason, "r");
		brk[i].state = FBX_BS_OPEN;
		strcpy(brk[i].note, "n");
	}
	in[1].kind = FBX_CREQ_BREAKER;
	in[1].u.breaker.b = brk;
	in[1].u.breaker.n = 2;
	make_held_command(&cmd, 9);
	in[2].kind = FBX_CREQ_LIST_HELD;
	in[2].u.commands.cmds = &cmd;
	in[2].u.commands.n = 1;
	for (i = 0; i < 3; i++)
		CHECK_RV(
		    fbx_console_rep_encode(&in[i], &enc[i], &elen[i]), FBX_OK);

	rng_state = 0x0ddba11cafef00dull;
	for (i = 0; i < 30000; i++) {
		size_t k = i % 3, flips = 1 + rng() % 4;
		buf = xcalloc(elen[k], 1);
		memcpy(buf, enc[k], elen[k]);
		for (j = 0; j < flips; j++)
			buf[rng() % elen[k]] = (uint8_t)rng();
		rv = fbx_console_rep_decode(buf, elen[k], &out);
		if (rv == FBX_OK)
			fbx_console_rep_free(&out);
		else if (!hostile_rv_ok(rv))
			odd++;
		free(buf);
	}
	CHECK(odd == 0);
	for (i = 0; i < 3; i++)
		free(enc[i]);

	/* The same for a submit with a plan and a breaker reset. */
	{
		struct fbx_console_req rq[2], rout;
		char why[256];
		base_req(&rq[0], FBX_CREQ_SUBMIT);
		rq[0].u.submit.cmd.type = FBX_CMD_OS_UPDATE;
		rq[0].u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		rq[0].u.submit.cmd.target_kind = FBX_TARGET_ORG;
		make_plan(&rq[0].u.submit.cmd.rollout);
		rq[0].dry_run = 1;
		strcpy(rq[0].approval, "appr:1");
		base_req(&rq[1], FBX_CREQ_BREAKER);
		rq[1].u.breaker.op = FBX_BRK_RESET;
		rq[1].u.breaker.on_reset = FBX_RESET_RELEASE;
		strcpy(rq[1].u.breaker.reason, "r");
		strcpy(rq[1].u.breaker.note, "caf\xc3\xa9 \xe2\x80\x94 ok");
		for (i = 0; i < 2; i++)
			CHECK_RV(
			    fbx_console_req_encode(&rq[i], &enc[i], &elen[i]),
			    FBX_OK);
		for (i = 0; i < 20000; i++) {
			size_t k = i % 2, flips = 1 + rng() % 4;
			buf = xcalloc(elen[k], 1);
			memcpy(buf, enc[k], elen[k]);
			for (j = 0; j < flips; j++)
				buf[rng() % elen[k]] = (uint8_t)rng();
			rv = fbx_console_req_decode(
			    buf, elen[k], &rout, why, sizeof(why));
			if (rv == FBX_OK)
				fbx_console_req_free(&rout);
			else if (!hostile_rv_ok(rv))
				odd++;
			free(buf);
		}
		CHECK(odd == 0);
		free(enc[0]);
		free(enc[1]);
	}
}

int
main(void)
{
	test_req_safety();
	test_rep_safety();
	test_safety_bad_fields();
	test_events();
	test_safety_mutations();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
