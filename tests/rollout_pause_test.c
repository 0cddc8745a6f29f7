/*
 * rollout_pause_test.c: a paused rollout sends nothing, also of the waves
 * it had released, in-process on a fake clock (engine_fake.c), turn by
 * turn:
 * - a rollout of 12 devices releases a first wave of 10 to a gateway
 *   whose window takes 2; both fail, and the failure threshold pauses
 *   it: the 8 released deliveries still queued stay queued, however
 *   many turns pass with the gateway's window free, and after a restart
 *   of the engine too;
 * - an operator's resume sends them, 2 at a time as the window frees;
 *   an operator's pause in the middle of the wave keeps the rest back
 *   again, and the next resume sends them;
 * - at the end every device got exactly one delivery, and the command
 *   is done;
 * - a rollout paused while it still expands stays paused when the
 *   expansion ends, and its first wave leaves at the resume
 *   (paused_expanding); so does a second stage paused while it expands,
 *   with a delivery queued again at an offline device's check-in
 *   meanwhile (paused_stage_checkin);
 * - an operator's resume of a wave paused by the failure threshold holds
 *   across a restart: the wave is not judged again (resume_restart).
 * Before, pause only stopped the release of new waves: the queued rest
 * of a released wave went out after a failure-threshold pause.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"

#define ORG "acme"
#define NDEV 12
#define WAVE 10
#define WIN 2

static uint64_t batch;
static unsigned sends[NDEV];
static struct gw_seen seen; /* the last sent_now's */

/* pass_turns - n turns of 100 ms, the gateway alive */
static void
pass_turns(struct env *t, int n)
{
	for (int i = 0; i < n; i++) {
		advance(t, 100);
		heartbeat(t, "g1");
		turn(t);
	}
}

/* sent_now - the deliveries the gateway got since the last call, each
 * counted per device index; answered with status when status != 0.
 * @return how many */
static size_t
sent_now(struct env *t, uint64_t cid, int status)
{
	size_t n;

	memset(&seen, 0, sizeof(seen));
	drain_gw(t, "g1", &seen);
	n = seen.nids;
	for (size_t i = 0; i < n; i++) {
		CHECK(FBX_DLV_CMD(seen.ids[i]) == cid &&
		        FBX_DLV_IDX(seen.ids[i]) < NDEV,
		    "delivery %llu is the rollout's",
		    (unsigned long long)seen.ids[i]);
		if (FBX_DLV_IDX(seen.ids[i]) < NDEV)
			sends[FBX_DLV_IDX(seen.ids[i])]++;
	}
	if (n > 0 && status != 0) {
		results(t, "g1", ++batch, seen.ids, n, status);
		turn(t);
	}
	return n;
}

static int
rollout_op(struct env *t, uint64_t cid, int op)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.command_id = cid;
	req.u.rollout.op = op;
	snprintf(req.u.rollout.note, sizeof(req.u.rollout.note),
	    "rollout_pause_test");
	console(t, "ops", ORG, &req);
	turn(t);
	rc = reply(t, "ops", &rep);
	fbx_console_rep_free(&rep);
	return rc;
}

static void
test_wave(void)
{
	struct env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command info;
	uint64_t cid = 0;
	size_t n, total;
	int rc, dup = 0, missed = 0;

	CHECK(env_open(&t, "ropause") == 0, "open");
	enroll(&t, ORG, NDEV);
	hello(&t, "g1", ORG, WIN);
	turn(&t);
	rollout_req(&req);
	req.u.submit.cmd.rollout.first_count = WAVE;
	req.u.submit.cmd.rollout.max_wave = WAVE;
	req.u.submit.cmd.rollout.min_results = 2;
	console(&t, "ops", ORG, &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	if (rc == FBX_OK)
		cid = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_OK && cid != 0, "rollout submit: %d", rc);

	/* wave 1 of 10 released, 2 sent (the window); both fail */
	pass_turns(&t, 3);
	n = sent_now(&t, cid, FBX_R_FAILED);
	CHECK(n == WIN, "wave 1: %zu sent, want %d", n, WIN);
	pass_turns(&t, 2);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.ro.state == FBX_RO_PAUSED && info.ro.released == WAVE,
	    "paused by the failure threshold: state %d, released %u",
	    info.ro.state, info.ro.released);

	/* the window is free: nothing of the paused rollout goes out */
	pass_turns(&t, 20);
	n = sent_now(&t, cid, FBX_R_SUCCEEDED);
	CHECK(n == 0, "paused (failure threshold): %zu sent, want 0", n);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.counts[FBX_D_QUEUED] == NDEV - WIN &&
	        info.counts[FBX_D_FAILED] == WIN,
	    "paused: queued %u (want %d), failed %u",
	    info.counts[FBX_D_QUEUED], NDEV - WIN,
	    info.counts[FBX_D_FAILED]);

	/* a restart queues them again; still paused, still nothing */
	CHECK(env_reopen(&t) == 0, "reopen");
	hello(&t, "g1", ORG, WIN);
	turn(&t);
	pass_turns(&t, 20);
	n = sent_now(&t, cid, FBX_R_SUCCEEDED);
	CHECK(n == 0, "paused after a restart: %zu sent, want 0", n);

	/* resumed: the wave's rest leaves as the window frees; paused by
	 * an operator after the first 2 of them, the others wait again */
	CHECK(rollout_op(&t, cid, FBX_ROP_RESUME) == FBX_OK, "resume");
	pass_turns(&t, 2);
	n = sent_now(&t, cid, 0);
	CHECK(n == WIN, "resumed: %zu sent, want %d", n, WIN);
	CHECK(rollout_op(&t, cid, FBX_ROP_PAUSE) == FBX_OK, "operator pause");
	/* the 2 in the gateway's hands succeed; that frees the window */
	results(&t, "g1", ++batch, seen.ids, seen.nids, FBX_R_SUCCEEDED);
	turn(&t);
	pass_turns(&t, 20);
	n = sent_now(&t, cid, FBX_R_SUCCEEDED);
	CHECK(n == 0, "paused by an operator: %zu sent, want 0", n);

	/* resumed again: the rest of the wave, then the last wave of 2 */
	CHECK(rollout_op(&t, cid, FBX_ROP_RESUME) == FBX_OK, "resume again");
	total = 0;
	for (int round = 0; round < 40; round++) {
		pass_turns(&t, 8); /* the bake: 1 s */
		total += sent_now(&t, cid, FBX_R_SUCCEEDED);
		if (counts(&t, ORG, cid, &info) == FBX_OK &&
		    info.state == FBX_C_DONE)
			break;
	}
	CHECK(total == NDEV - 2 * WIN,
	    "after the second resume: %zu sent, want %d", total,
	    NDEV - 2 * WIN);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.state == FBX_C_DONE &&
	        info.counts[FBX_D_SUCCEEDED] == NDEV - WIN &&
	        info.counts[FBX_D_FAILED] == WIN,
	    "done: state %d (rollout %d: %s), succeeded %u, failed %u",
	    info.state, info.ro.state, info.ro.note,
	    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_FAILED]);
	for (unsigned i = 0; i < NDEV; i++) {
		dup += sends[i] > 1;
		missed += sends[i] == 0;
	}
	CHECK(dup == 0 && missed == 0,
	    "every device got one delivery: %d twice, %d none", dup, missed);
	env_close(&t);
}

/* step - a turn of 200 ms; what the gateway got is answered, each
 * succeeded but `offline` (reported offline). @return how many */
static size_t
step(struct env *t, uint64_t offline)
{
	static struct gw_seen s;
	size_t n;

	advance(t, 200);
	heartbeat(t, "g1");
	turn(t);
	memset(&s, 0, sizeof(s));
	drain_gw(t, "g1", &s);
	n = s.nids;
	for (size_t i = 0; i < n; i++)
		results(t, "g1", ++batch, &s.ids[i], 1,
		    s.ids[i] == offline ? FBX_R_OFFLINE : FBX_R_SUCCEEDED);
	if (n > 0)
		turn(t);
	return n;
}

/* submit_rollout - a rollout to ORG's devices in waves of `wave`, its
 * stages the groups listed (NULL: none); @return its id */
static uint64_t
submit_rollout(struct env *t, uint32_t wave, const char *group)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t cid = 0;
	int rc;

	rollout_req(&req);
	req.u.submit.cmd.rollout.first_count = wave;
	req.u.submit.cmd.rollout.max_wave = wave;
	if (group != NULL) {
		req.u.submit.cmd.rollout.ngroups = 1;
		snprintf(req.u.submit.cmd.rollout.groups[0],
		    sizeof(req.u.submit.cmd.rollout.groups[0]), "%s", group);
	}
	console(t, "ops", ORG, &req);
	turn(t);
	rc = reply(t, "ops", &rep);
	if (rc == FBX_OK)
		cid = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_OK && cid != 0, "rollout submit: %d", rc);
	return cid;
}

/* paused_expanding - a rollout of 300 devices paused while it still
 * expands (10 devices a turn): when the expansion ends it stays paused
 * and sends nothing; resumed, its first wave goes, and it ends done */
static void
test_paused_expanding(void)
{
	struct env t;
	struct fbx_command info;
	uint64_t cid;
	size_t n = 0;

	CHECK(env_open(&t, "ropx") == 0, "open");
	t.expand_chunk = 10;
	CHECK(env_reopen(&t) == 0, "reopen with 10 devices a turn");
	enroll(&t, ORG, 300);
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	cid = submit_rollout(&t, 100, NULL);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.state == FBX_C_EXPANDING,
	    "expanding: state %d", info.state);
	CHECK(rollout_op(&t, cid, FBX_ROP_PAUSE) == FBX_OK, "pause");
	for (int i = 0; i < 60; i++)
		n += step(&t, 0);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.state == FBX_C_ACTIVE && info.ndeliveries == 300 &&
	        info.ro.state == FBX_RO_PAUSED,
	    "expanded, still paused: state %d, %u deliveries, rollout %d",
	    info.state, info.ndeliveries, info.ro.state);
	CHECK(n == 0, "paused while expanding: %zu sent, want 0", n);
	CHECK(rollout_op(&t, cid, FBX_ROP_RESUME) == FBX_OK, "resume");
	for (int i = 0; i < 100; i++) {
		n += step(&t, 0);
		if (counts(&t, ORG, cid, &info) == FBX_OK &&
		    info.state == FBX_C_DONE)
			break;
	}
	CHECK(n == 300 && info.state == FBX_C_DONE,
	    "resumed: %zu sent, state %d", n, info.state);
	env_close(&t);
}

/* paused_stage_checkin - a rollout in two stages (group "sales", then
 * the rest); a sales device reported offline in stage 0. Paused while
 * stage 1 expands, the device checks in (its delivery queued again):
 * nothing is sent while paused, neither stage 1 nor the checked-in
 * delivery; resumed, all go, each once, and the command ends done */
static void
test_paused_stage_checkin(void)
{
	struct env t;
	struct fbx_command info;
	uint64_t cid, d0;
	size_t n = 0, during = 0;
	int i;

	CHECK(env_open(&t, "rops") == 0, "open");
	t.expand_chunk = 10;
	CHECK(env_reopen(&t) == 0, "reopen with 10 devices a turn");
	enroll_groups(&t, ORG, 300);
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	cid = submit_rollout(&t, 150, "sales");
	d0 = FBX_DLV_ID(cid, 0); /* a sales device: offline */
	for (i = 0; i < 200; i++) {
		n += step(&t, d0);
		if (counts(&t, ORG, cid, &info) == FBX_OK &&
		    info.ro.stage == 1 && info.state == FBX_C_EXPANDING)
			break;
	}
	CHECK(info.ro.stage == 1 && info.state == FBX_C_EXPANDING &&
	        info.counts[FBX_D_PENDING] == 1,
	    "stage 1 expanding: stage %u, state %d, pending %u",
	    info.ro.stage, info.state, info.counts[FBX_D_PENDING]);
	CHECK(rollout_op(&t, cid, FBX_ROP_PAUSE) == FBX_OK, "pause");
	checkin_range(&t, "g1", ORG, 0, 1); /* device 0: queued again */
	for (i = 0; i < 100; i++)
		during += step(&t, 0);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.ro.state == FBX_RO_PAUSED && info.state == FBX_C_ACTIVE,
	    "stage 1 expanded, still paused: rollout %d, state %d",
	    info.ro.state, info.state);
	CHECK(during == 0, "paused: %zu sent, want 0", during);
	CHECK(rollout_op(&t, cid, FBX_ROP_RESUME) == FBX_OK, "resume");
	for (i = 0; i < 100; i++)
		n += step(&t, 0);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.state == FBX_C_DONE &&
	        info.counts[FBX_D_SUCCEEDED] == 300,
	    "done: state %d, rollout %d, queued %u, succeeded %u", info.state,
	    info.ro.state, info.counts[FBX_D_QUEUED],
	    info.counts[FBX_D_SUCCEEDED]);
	CHECK(n == 301, "sent %zu, want 301 (device 0 twice: offline, then "
	                "at its check-in)",
	    n);
	env_close(&t);
}

/* resume_restart - a wave paused by the failure threshold, resumed by
 * an operator (who has judged it), then the engine restarts: the wave
 * stays judged, the rollout does not pause itself again, and it ends */
static void
test_resume_restart(void)
{
	struct env t;
	struct fbx_command info;
	uint64_t cid;
	size_t n;

	memset(sends, 0, sizeof(sends));
	CHECK(env_open(&t, "ropr") == 0, "open");
	enroll(&t, ORG, NDEV);
	hello(&t, "g1", ORG, WIN);
	turn(&t);
	cid = submit_rollout(&t, WAVE, NULL);
	pass_turns(&t, 3);
	n = sent_now(&t, cid, FBX_R_FAILED);
	pass_turns(&t, 2);
	CHECK(n == WIN && counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.ro.state == FBX_RO_PAUSED,
	    "paused by the failure threshold: %zu sent, rollout %d", n,
	    info.ro.state);
	CHECK(rollout_op(&t, cid, FBX_ROP_RESUME) == FBX_OK, "resume");
	CHECK(env_reopen(&t) == 0, "restart");
	hello(&t, "g1", ORG, WIN);
	turn(&t);
	for (int i = 0; i < 60; i++) {
		pass_turns(&t, 3);
		sent_now(&t, cid, FBX_R_SUCCEEDED);
		if (counts(&t, ORG, cid, &info) == FBX_OK &&
		    (info.state == FBX_C_DONE ||
		        info.ro.state == FBX_RO_PAUSED))
			break;
	}
	CHECK(info.state == FBX_C_DONE && info.ro.state == FBX_RO_DONE,
	    "after the restart: state %d, rollout %d (%s)", info.state,
	    info.ro.state, info.ro.note);
	env_close(&t);
}

int
main(void)
{
	test_wave();
	test_paused_expanding();
	test_paused_stage_checkin();
	test_resume_restart();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
