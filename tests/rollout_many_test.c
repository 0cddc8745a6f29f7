/*
 * rollout_many_test.c: every running rollout advances, however many run
 * at once (issue 8: the rollout step looked at the first 256 and the
 * others never left their first wave).
 * 300 rollouts of 2 devices each bake an hour after their first wave of
 * 1 and stay active; 50 more with no bake time must each release their
 * second wave and finish while the 300 wait.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ORG "org-001"
#define NSLOW 300
#define NRO (NSLOW + 50)

int
main(void)
{
	struct fbxt_env t;
	static uint64_t ids[NRO];
	static fbx_id devs[2 * NRO];
	char report[400];
	int rc, settled = 0, waited_out = 0;

	if (fbxt_setup(&t, "rollouts") != 0 ||
	    fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "700", "--orgs",
	    "1", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "700", "--orgs",
	    "1", "--report", report, "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator start");
	for (int i = 0; i < 2 * NRO; i++)
		snprintf(devs[i], sizeof(devs[i]), "org-001-d%06d", i);

	for (int i = 0; i < NRO; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_SUBMIT;
		snprintf(req.actor, sizeof(req.actor), "erin");
		req.u.submit.cmd.type = FBX_CMD_QUERY;
		req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
		req.u.submit.cmd.dev_ids = &devs[2 * i];
		req.u.submit.cmd.ndev_ids = 2;
		req.u.submit.cmd.rollout.enabled = 1;
		req.u.submit.cmd.rollout.first_count = 1;
		req.u.submit.cmd.rollout.growth_x100 = 200;
		req.u.submit.cmd.rollout.min_results = 1;
		req.u.submit.cmd.rollout.success_ppm = 1;
		req.u.submit.cmd.rollout.failure_ppm = 1000000;
		req.u.submit.cmd.rollout.bake_s = i < NSLOW ? 3600 : 0;
		rc = fbxt_call(&t, ORG, &req, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.u.submit.device_count == 2,
		    "rollout %d submit rc %d", i, rc);
		ids[i] = rc == FBX_OK ? rep.u.submit.command_id : 0;
		fbx_console_rep_free(&rep);
	}
	/* every quick one finishes; after one hang guard the rest are only
	 * looked at, so a stuck step fails in about a minute */
	for (int i = NSLOW; i < NRO; i++) {
		struct fbx_command info;
		memset(&info, 0, sizeof(info));
		if (ids[i] == 0)
			continue;
		if (fbxt_wait_settled(&t, ORG, ids[i], waited_out ? 1 : 60000,
		        &info) == 0 &&
		    info.counts[FBX_D_SUCCEEDED] + info.counts[FBX_D_FAILED] ==
		        2)
			settled++;
		else {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			waited_out = 1;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_ROLLOUT;
			req.u.rollout.op = FBX_ROP_STATUS;
			req.u.rollout.command_id = ids[i];
			fprintf(stderr, "command %llu: state %d, %u succeeded "
			    "%u failed %u queued %u pending\n",
			    (unsigned long long)ids[i], info.state,
			    info.counts[FBX_D_SUCCEEDED],
			    info.counts[FBX_D_FAILED],
			    info.counts[FBX_D_QUEUED],
			    info.counts[FBX_D_PENDING]);
			if (fbxt_call(&t, ORG, &req, &rep) == FBX_OK)
				fprintf(stderr,
				    "rollout %llu: state %d wave %u released "
				    "%u note '%s'\n",
				    (unsigned long long)ids[i],
				    rep.u.rollout.st.state,
				    rep.u.rollout.st.wave,
				    rep.u.rollout.st.released,
				    rep.u.rollout.st.note);
			fbx_console_rep_free(&rep);
		}
	}
	FBXT_CHECK(settled == NRO - NSLOW, "%d of %d rollouts finished",
	    settled, NRO - NSLOW);
out:
	fbxt_teardown(&t);
	return fbxt_done();
}
