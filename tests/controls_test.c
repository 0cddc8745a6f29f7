/*
 * controls_test.c: blast-radius limits, approvals, dry runs, staged
 * rollouts and fair scheduling, with the real daemon and simulator.
 * - the limit is checked after admission: what the window already counts
 *   plus the new command must fit; a refused command names the limit and
 *   the count and carries a token a second operator can approve;
 * - a dry run reports devices and the verdict and journals nothing;
 * - a rollout pauses at its failure threshold, holds its undelivered
 *   devices, resumes by an operator's word, and cancels;
 * - organisation B's single command is served while organisation A's big
 *   fan-out is still running (ordering, not timing, is asserted).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static size_t
first_ids(struct fbxt_env *t, const char *org, fbx_id *out, size_t max)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	size_t n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.limit = (uint32_t)max;
	if (fbxt_call(t, org, &req, &rep) == FBX_OK) {
		for (; n < rep.u.devices.n && n < max; n++)
			memcpy(out[n], rep.u.devices.devs[n].id, sizeof(fbx_id));
	}
	fbx_console_rep_free(&rep);
	return n;
}

/* submit_ids - lock of ids[0..n) as `actor`, optional approval. */
static int
submit_lock(struct fbxt_env *t, const char *org, const char *actor,
    fbx_id *ids, size_t n, const char *approval, int dry,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	snprintf(req.actor, sizeof(req.actor), "%s", actor);
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = (uint32_t)n;
	req.dry_run = dry;
	if (approval != NULL)
		snprintf(req.approval, sizeof(req.approval), "%s", approval);
	rc = fbxt_call(t, org, &req, rep);
	return rc;
}

static uint32_t
command_count(struct fbxt_env *t, const char *org)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint32_t n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_COMMANDS;
	req.u.list.limit = 1000;
	if (fbxt_call(t, org, &req, &rep) == FBX_OK)
		n = (uint32_t)rep.u.commands.n;
	fbx_console_rep_free(&rep);
	return n;
}

static void
test_limits(struct fbxt_env *t)
{
	fbx_id ids[60];
	struct fbx_console_rep rep;
	struct fbx_console_req req;
	char token[FBX_ID_MAX + 1];
	size_t n = first_ids(t, "org-002", ids, 60);
	uint32_t before;
	int rc;

	/* org-002 has 300 devices: the default lock limit is 10% = 30 */
	FBXT_CHECK(n == 60, "org-002 lists %zu devices", n);
	rc = submit_lock(t, "org-002", "bob", ids, 20, NULL, 0, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.submit.device_count == 20,
	    "20 locks: rc %d", rc);
	fbx_console_rep_free(&rep);

	/* dry run of 15 more: would be refused, journals nothing */
	before = command_count(t, "org-002");
	rc = submit_lock(t, "org-002", "bob", ids + 20, 15, NULL, 1, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.submit.dry_run &&
	        rep.u.submit.dryrun.devices == 15 &&
	        rep.u.submit.dryrun.stop_err == FBX_ELIMIT_EXCEEDED,
	    "dry run: rc %d devices %u stop %d (%s)", rc,
	    rep.u.submit.dryrun.devices, rep.u.submit.dryrun.stop_err,
	    rep.u.submit.dryrun.verdict);
	fbx_console_rep_free(&rep);
	FBXT_CHECK(command_count(t, "org-002") == before,
	    "a dry run journaled a command");

	/* 20 already + 15 > 30: refused with the numbers and a token */
	rc = submit_lock(t, "org-002", "bob", ids + 20, 15, NULL, 0, &rep);
	FBXT_CHECK(rc == FBX_ELIMIT_EXCEEDED && rep.limit_value == 30 &&
	        rep.limit_count == 35 && rep.approval_token[0] != '\0',
	    "over limit: rc %d limit %llu count %llu", rc,
	    (unsigned long long)rep.limit_value,
	    (unsigned long long)rep.limit_count);
	snprintf(token, sizeof(token), "%s", rep.approval_token);
	fbx_console_rep_free(&rep);
	/* 10 more still fit (20 + 10 = 30): checked after admission */
	rc = submit_lock(t, "org-002", "bob", ids + 40, 10, NULL, 0, &rep);
	FBXT_CHECK(rc == FBX_OK, "10 locks within the limit: rc %d", rc);
	fbx_console_rep_free(&rep);

	/* the submitter cannot approve their own command */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_APPROVE;
	snprintf(req.actor, sizeof(req.actor), "bob");
	snprintf(req.u.approve.token, sizeof(req.u.approve.token), "%s", token);
	snprintf(req.u.approve.note, sizeof(req.u.approve.note), "checked");
	rc = fbxt_call(t, "org-002", &req, &rep);
	FBXT_CHECK(rc == FBX_EAPPROVAL_INVALID, "self-approval: rc %d", rc);
	fbx_console_rep_free(&rep);
	/* and audited: a stolen key's likely try (it left no trace) */
	{
		struct fbx_console_req q;
		int found = 0;
		memset(&q, 0, sizeof(q));
		q.kind = FBX_CREQ_AUDIT_LIST;
		snprintf(q.u.audit_list.action, sizeof(q.u.audit_list.action),
		    "auth.forbidden");
		q.u.audit_list.limit = 1000;
		rc = fbxt_call(t, "org-002", &q, &rep);
		for (size_t i = 0; rc == FBX_OK && i < rep.u.audit.n; i++)
			found += strcmp(rep.u.audit.r[i].actor, "bob") == 0 &&
			    strstr(rep.u.audit.r[i].params,
			        "\"what\":\"approve\"") != NULL;
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_OK && found == 1,
		    "self-approval audited: rc %d, %d records", rc, found);
	}
	/* a token of another organisation does not exist here */
	snprintf(req.actor, sizeof(req.actor), "carol");
	rc = fbxt_call(t, "org-003", &req, &rep);
	FBXT_CHECK(rc == FBX_ENOT_FOUND, "cross-org approval: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = fbxt_call(t, "org-002", &req, &rep);
	FBXT_CHECK(rc == FBX_OK && strcmp(rep.u.approve.submitter, "bob") == 0,
	    "approval by carol: rc %d", rc);
	fbx_console_rep_free(&rep);

	/* the approval covers exactly that command, once */
	rc = submit_lock(t, "org-002", "bob", ids + 21, 15, token, 0, &rep);
	FBXT_CHECK(rc == FBX_EAPPROVAL_INVALID, "other command: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = submit_lock(t, "org-002", "bob", ids + 20, 15, token, 0, &rep);
	FBXT_CHECK(rc == FBX_OK, "approved command: rc %d (%s)", rc,
	    rep.errmsg);
	{
		uint64_t id = rep.u.submit.command_id;
		struct fbx_console_rep g;
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		rc = fbxt_call(t, "org-002", &req, &g);
		FBXT_CHECK(rc == FBX_OK &&
		        strcmp(g.u.command.info.approved_by, "carol") == 0 &&
		        strcmp(g.u.command.info.actor, "bob") == 0,
		    "approved command records both identities");
		fbx_console_rep_free(&g);
	}
	rc = submit_lock(t, "org-002", "bob", ids + 20, 15, token, 0, &rep);
	FBXT_CHECK(rc == FBX_EAPPROVAL_INVALID, "approval reused: rc %d", rc);
	fbx_console_rep_free(&rep);
}

static int
rollout_op(struct fbxt_env *t, const char *org, uint64_t id, int op,
    struct fbx_rollout_status *st)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLOUT;
	snprintf(req.actor, sizeof(req.actor), "dave");
	req.u.rollout.op = op;
	req.u.rollout.command_id = id;
	snprintf(req.u.rollout.note, sizeof(req.u.rollout.note), "test");
	rc = fbxt_call(t, org, &req, &rep);
	if (rc == FBX_OK && st != NULL)
		*st = rep.u.rollout.st;
	fbx_console_rep_free(&rep);
	return rc;
}

static void
test_rollout(struct fbxt_env *t)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_rollout_status st;
	struct fbx_command info;
	uint64_t id;
	int rc;

	/* org-003 (300 devices): waves of 20, x2; the simulator fails 30%
	 * of deliveries, over the 10% failure threshold */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_OS_UPDATE;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	req.u.submit.cmd.rollout.enabled = 1;
	req.u.submit.cmd.rollout.first_count = 20;
	req.u.submit.cmd.rollout.growth_x100 = 200;
	req.u.submit.cmd.rollout.failure_ppm = 100000;
	req.u.submit.cmd.rollout.min_results = 10;
	req.u.submit.cmd.rollout.success_ppm = 500000;
	rc = fbxt_call(t, "org-003", &req, &rep);
	id = rep.u.submit.command_id;
	FBXT_CHECK(rc == FBX_OK && rep.u.submit.device_count == 300,
	    "rollout submit rc %d count %u", rc, rep.u.submit.device_count);
	fbx_console_rep_free(&rep);

	/* it pauses at the failure threshold in the first wave */
	memset(&st, 0, sizeof(st));
	for (int i = 0; i < 400; i++) {
		rc = rollout_op(t, "org-003", id, FBX_ROP_STATUS, &st);
		if (rc != FBX_OK || st.state == FBX_RO_PAUSED)
			break;
		sleep_ms(25);
	}
	FBXT_CHECK(st.state == FBX_RO_PAUSED && st.wave == 1 &&
	        st.released == 20 && strstr(st.note, "failure") != NULL,
	    "rollout state %d wave %u released %u note '%s'", st.state,
	    st.wave, st.released, st.note);
	/* and stays paused: nothing more goes out */
	sleep_ms(300);
	rc = fbxt_wait_settled(t, "org-003", id, 0, &info);
	FBXT_CHECK(info.counts[FBX_D_QUEUED] == 280 &&
	        info.counts[FBX_D_SUCCEEDED] + info.counts[FBX_D_FAILED] == 20,
	    "paused rollout: %u queued, %u+%u done", info.counts[FBX_D_QUEUED],
	    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_FAILED]);

	/* an operator resumes: the next wave (40) goes out */
	rc = rollout_op(t, "org-003", id, FBX_ROP_RESUME, &st);
	FBXT_CHECK(rc == FBX_OK, "resume rc %d", rc);
	for (int i = 0; i < 400; i++) {
		rc = rollout_op(t, "org-003", id, FBX_ROP_STATUS, &st);
		if (rc != FBX_OK || st.wave >= 2)
			break;
		sleep_ms(25);
	}
	FBXT_CHECK(st.wave == 2 && st.released == 60,
	    "after resume: wave %u released %u", st.wave, st.released);
	/* with 30% failing it pauses again at the threshold */
	for (int i = 0; i < 400; i++) {
		rc = rollout_op(t, "org-003", id, FBX_ROP_STATUS, &st);
		if (rc != FBX_OK || st.state == FBX_RO_PAUSED)
			break;
		sleep_ms(25);
	}
	FBXT_CHECK(st.state == FBX_RO_PAUSED, "second pause: state %d",
	    st.state);

	/* cancel: the undelivered devices are cancelled, the command ends */
	rc = rollout_op(t, "org-003", id, FBX_ROP_CANCEL, &st);
	FBXT_CHECK(rc == FBX_OK, "cancel rc %d", rc);
	rc = fbxt_wait_settled(t, "org-003", id, 30000, &info);
	FBXT_CHECK(rc == 0 && info.counts[FBX_D_CANCELLED] == 240,
	    "cancelled rollout: rc %d, %u cancelled", rc,
	    info.counts[FBX_D_CANCELLED]);
	rc = rollout_op(t, "org-003", id, FBX_ROP_RESUME, &st);
	FBXT_CHECK(rc == FBX_ESTATE || rc == FBX_OK,
	    "resume after cancel: rc %d", rc);
}

/* test_fairness - org-001's fan-out (slow devices, small window) is
 * running; org-004's single command must complete before org-001's
 * fan-out is half done. */
static void
test_fairness(struct fbxt_env *t)
{
	struct fbx_command a, b;
	fbx_id one[1];
	uint64_t ida, idb;
	uint32_t count;
	const char *ids[1];
	int rc;

	rc = fbxt_submit(t, "org-001", FBX_CMD_INSTALL_APP, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, &ida, &count);
	FBXT_CHECK(rc == FBX_OK, "org-001 fan-out rc %d", rc);
	sleep_ms(100);
	FBXT_CHECK(first_ids(t, "org-004", one, 1) == 1, "org-004 device");
	ids[0] = one[0];
	rc = fbxt_submit(t, "org-004", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, NULL, &idb, &count);
	FBXT_CHECK(rc == FBX_OK, "org-004 command rc %d", rc);
	rc = fbxt_wait_settled(t, "org-004", idb, 60000, &b);
	FBXT_CHECK(rc == 0, "org-004 command did not finish");
	rc = fbxt_wait_settled(t, "org-001", ida, 0, &a);
	{
		uint32_t done = a.counts[FBX_D_SUCCEEDED] + a.counts[FBX_D_FAILED];
		fprintf(stderr, "org-004 done while org-001 had %u of %u\n",
		    done, a.ndeliveries);
		FBXT_CHECK(a.ndeliveries > 0 && done < a.ndeliveries / 2,
		    "org-004 waited for org-001: %u of %u done", done,
		    a.ndeliveries);
	}
	rc = fbxt_wait_settled(t, "org-001", ida, 300000, &a);
	FBXT_CHECK(rc == 0, "org-001 fan-out did not finish");
}


/* test_big_payload - deliveries carry their command's payload: 1,000
 * devices x 40 KiB must go out in several gateway messages, none over
 * the cap, and every one must arrive */
static void
test_big_payload(struct fbxt_env *t)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command info;
	static uint8_t payload[40 * 1024];
	uint64_t id;
	int rc;

	memset(payload, 'p', sizeof(payload));
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_INSTALL_APP;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_GROUP;
	snprintf(req.u.submit.cmd.group, sizeof(req.u.submit.cmd.group),
	    "verification");
	req.u.submit.cmd.payload = payload;
	req.u.submit.cmd.payload_len = sizeof(payload);
	rc = fbxt_call(t, "org-001", &req, &rep);
	id = rep.u.submit.command_id;
	FBXT_CHECK(rc == FBX_OK && rep.u.submit.device_count > 500,
	    "big payload submit rc %d count %u", rc,
	    rep.u.submit.device_count);
	fbx_console_rep_free(&rep);
	rc = fbxt_wait_settled(t, "org-001", id, 120000, &info);
	FBXT_CHECK(rc == 0 &&
	        info.counts[FBX_D_SUCCEEDED] + info.counts[FBX_D_FAILED] ==
	            info.ndeliveries,
	    "big payload: rc %d, %u+%u of %u", rc,
	    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_FAILED],
	    info.ndeliveries);
}

/* test_rollback_of_rollout - a rollout rolled back stops for good: its
 * unreleased devices are cancelled and stay cancelled across a kill -9 */
static void
test_rollback_of_rollout(struct fbxt_env *t)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command info;
	uint64_t id;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_SET_POLICY;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	req.u.submit.cmd.payload = (uint8_t *)"wifi=corp";
	req.u.submit.cmd.payload_len = 9;
	req.u.submit.cmd.rollout.enabled = 1;
	req.u.submit.cmd.rollout.first_count = 20;
	req.u.submit.cmd.rollout.bake_s = 3600;
	req.u.submit.cmd.rollout.success_ppm = 100000;
	req.u.submit.cmd.rollout.failure_ppm = 1000000;
	rc = fbxt_call(t, "org-004", &req, &rep);
	id = rep.u.submit.command_id;
	FBXT_CHECK(rc == FBX_OK, "rollout submit rc %d", rc);
	fbx_console_rep_free(&rep);
	/* the first wave settles, then the rollout bakes for an hour */
	for (int i = 0; i < 400; i++) {
		(void)fbxt_wait_settled(t, "org-004", id, 0, &info);
		if (info.counts[FBX_D_SUCCEEDED] + info.counts[FBX_D_FAILED] ==
		    20)
			break;
		sleep_ms(25);
	}
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	snprintf(req.actor, sizeof(req.actor), "grace");
	req.u.rollback.sel.command_ids = &id;
	req.u.rollback.sel.ncommand_ids = 1;
	req.u.rollback.execute = 1;
	rc = fbxt_call(t, "org-004", &req, &rep);
	FBXT_CHECK(rc == FBX_OK &&
	        rep.u.rollback.per_action[FBX_RB_CANCEL] == 280,
	    "rollback of the rollout: rc %d, %u cancelled", rc,
	    rep.u.rollback.per_action[FBX_RB_CANCEL]);
	fbx_console_rep_free(&rep);
	rc = fbxt_daemon_kill(t, SIGKILL);
	FBXT_CHECK(fbxt_daemon_start(t, NULL) == 0, "restart");
	rc = fbxt_wait_settled(t, "org-004", id, 30000, &info);
	sleep_ms(500);
	(void)fbxt_wait_settled(t, "org-004", id, 0, &info);
	FBXT_CHECK(info.state == FBX_C_DONE &&
	        info.counts[FBX_D_CANCELLED] == 280 &&
	        info.counts[FBX_D_SUCCEEDED] + info.counts[FBX_D_FAILED] == 20,
	    "after restart: state %d, %u cancelled, %u+%u done", info.state,
	    info.counts[FBX_D_CANCELLED], info.counts[FBX_D_SUCCEEDED],
	    info.counts[FBX_D_FAILED]);
}

int
main(void)
{
	struct fbxt_env t;
	int rc;

	if (fbxt_setup(&t, "controls") != 0 ||
	    fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	/* org-001: 20,000 devices; org-002..004: 300 each */
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "20900", "--orgs",
	    "4", "--org-skew", "0.95694", "--seed", "9", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "20900", "--orgs",
	    "4", "--org-skew", "0.95694", "--seed", "9", "--fail-ratio", "0.3",
	    "--ack-latency-ms", "20", "--window", "1024", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator start");
	test_limits(&t);
	test_rollout(&t);
	test_fairness(&t);
	test_big_payload(&t);
	test_rollback_of_rollout(&t);
out:
	fbxt_teardown(&t);
	return fbxt_done();
}
