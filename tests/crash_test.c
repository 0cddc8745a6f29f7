/*
 * crash_test.c: kill -9 the daemon in the middle of a 100,000-device
 * fan-out, restart it on the same store, and check that the accepted
 * command and every one of its deliveries are still there and all reach a
 * terminal state, and that no device was sent a delivery id again after
 * its success had been made durable (the simulator counts that).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

#define DEVICES 100000

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_command info;
	struct fbxt_report rep;
	char report[400];
	uint64_t cid = 0, cid2 = 0;
	uint32_t count = 0, done_before = 0;
	int rc, st;

	memset(&info, 0, sizeof(info));
	if (fbxt_setup(&t, "crash") != 0 || fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "100000", "--orgs",
	    "2", "--org-skew", "0.9", "--seed", "3", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enrollment exit status %d", rc);
	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	/* slow devices and a small window keep the fan-out in flight long
	 * enough to kill it in the middle */
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "100000",
	    "--orgs", "2", "--org-skew", "0.9", "--seed", "3",
	    "--ack-latency-ms", "20", "--window", "1024", "--report", report,
	    "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator start");

	rc = fbxt_submit(&t, "org-001", FBX_CMD_INSTALL_APP,
	    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0, "crash-1",
	    &cid, &count);
	FBXT_CHECK(rc == FBX_OK, "submit rc %d", rc);
	rc = fbxt_submit(&t, "org-002", FBX_CMD_SET_POLICY,
	    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0, "crash-2",
	    &cid2, &count);
	FBXT_CHECK(rc == FBX_OK, "submit rc %d", rc);

	/* wait until some, not all, results are in, then kill -9 */
	for (int i = 0; i < 2000; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep r;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = cid;
		if (fbxt_call(&t, "org-001", &req, &r) == FBX_OK) {
			done_before = r.u.command.info.counts[FBX_D_SUCCEEDED] +
			    r.u.command.info.counts[FBX_D_FAILED];
			info = r.u.command.info;
		}
		fbx_console_rep_free(&r);
		if (done_before >= 10000)
			break;
		sleep_ms(10);
	}
	FBXT_CHECK(done_before >= 10000 && done_before < info.ndeliveries,
	    "kill point: %u of %u done", done_before, info.ndeliveries);
	st = fbxt_daemon_kill(&t, SIGKILL);
	FBXT_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	    "daemon status %d", st);
	fprintf(stderr, "killed with %u of %u done\n", done_before,
	    info.ndeliveries);

	/* restart on the same store: it recovers and resumes */
	rc = fbxt_daemon_start(&t, NULL);
	FBXT_CHECK(rc == 0, "daemon did not restart");
	rc = fbxt_wait_settled(&t, "org-001", cid, 240000, &info);
	FBXT_CHECK(rc == 0, "command 1 did not finish: state %d", info.state);
	{
		uint32_t term = info.counts[FBX_D_SUCCEEDED] +
		    info.counts[FBX_D_FAILED];
		FBXT_CHECK(term == info.ndeliveries,
		    "command 1: %u terminal of %u", term, info.ndeliveries);
		FBXT_CHECK(term >= done_before,
		    "outcomes lost: %u after restart, %u before", term,
		    done_before);
	}
	rc = fbxt_wait_settled(&t, "org-002", cid2, 240000, &info);
	FBXT_CHECK(rc == 0, "command 2 did not finish");
	/* a retried submit after the crash finds the same command */
	{
		uint64_t again = 0;
		rc = fbxt_submit(&t, "org-001", FBX_CMD_INSTALL_APP,
		    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0,
		    "crash-1", &again, &count);
		FBXT_CHECK(rc == FBX_OK && again == cid,
		    "idempotent retry gave %llu, want %llu",
		    (unsigned long long)again, (unsigned long long)cid);
	}
	rc = fbxt_sim_stop(&t);
	FBXT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "simulator status %d",
	    rc);
	FBXT_CHECK(fbxt_report_read(report, &rep) == 0, "no report");
	FBXT_CHECK(rep.distinct == DEVICES, "devices saw %llu distinct ids",
	    (unsigned long long)rep.distinct);
	FBXT_CHECK(rep.dup_after_success == 0,
	    "%llu delivery ids re-sent after a durable success",
	    (unsigned long long)rep.dup_after_success);
	FBXT_CHECK(rep.foreign == 0, "foreign %llu",
	    (unsigned long long)rep.foreign);
	fprintf(stderr, "re-sent after restart (same ids): %llu\n",
	    (unsigned long long)rep.duplicates);
out:
	fbxt_teardown(&t);
	return fbxt_done();
}
