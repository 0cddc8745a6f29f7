/*
 * diskfull_test.c: a real full disk. The store lives on a 12 MiB tmpfs;
 * commands are accepted until the disk is full. The submitter then gets a
 * clear storage error with its code, the daemon keeps serving reads, and
 * after a restart every command that was acknowledged is still there.
 * Needs root to mount the tmpfs; without it the test says so and is
 * skipped (ctest SKIP_RETURN_CODE 77).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

int
main(void)
{
	struct fbxt_env t;
	char mnt[300];
	uint64_t ids[2000];
	size_t accepted = 0;
	int rc, last = FBX_OK, mounted = 0;

	if (geteuid() != 0) {
		printf("skipped: mounting a tmpfs needs root\n");
		return 77;
	}
	if (fbxt_setup(&t, "diskfull") != 0) {
		FBXT_CHECK(0, "setup");
		return fbxt_done();
	}
	snprintf(mnt, sizeof(mnt), "%s/small", t.dir);
	mkdir(mnt, 0755);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=12m") != 0) {
		printf("skipped: cannot mount tmpfs: %s\n", strerror(errno));
		fbxt_teardown(&t);
		return 77;
	}
	mounted = 1;
	if (strlen(mnt) + 4 > sizeof(t.db)) {
		FBXT_CHECK(0, "path too long");
		goto out;
	}
	memcpy(t.db, mnt, strlen(mnt));
	memcpy(t.db + strlen(mnt), "/db", 4);
	if (fbxt_daemon_start(&t, "--map-size", "4", NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "1000", "--orgs",
	    "1", "--seed", "2", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	/* no gateway: every delivery stays queued on disk */
	for (size_t i = 0; i < 2000; i++) {
		uint32_t count;
		rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY,
		    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0, NULL,
		    &ids[accepted], &count);
		if (rc != FBX_OK) {
			last = rc;
			break;
		}
		accepted++;
	}
	fprintf(stderr, "accepted %zu commands before: %s (%d)\n", accepted,
	    fbx_errname(last), last);
	FBXT_CHECK(accepted > 10, "only %zu accepted", accepted);
	FBXT_CHECK(last == FBX_EDISK_FULL,
	    "full disk answered %s (%d)", fbx_errname(last), last);
	/* it keeps serving: reads work, and it keeps refusing cleanly */
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		uint32_t count;
		uint64_t id;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = ids[0];
		rc = fbxt_call(&t, "org-001", &req, &rep);
		FBXT_CHECK(rc == FBX_OK, "read after disk full: rc %d", rc);
		fbx_console_rep_free(&rep);
		rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY,
		    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0, NULL,
		    &id, &count);
		FBXT_CHECK(rc == FBX_EDISK_FULL || rc == FBX_EIO,
		    "second refusal: %d", rc);
	}
	/* restart: every acknowledged command is there, with its deliveries */
	rc = fbxt_daemon_kill(&t, SIGKILL);
	FBXT_CHECK(fbxt_daemon_start(&t, NULL) == 0, "restart on a full disk");
	for (size_t i = 0; i < accepted; i++) {
		struct fbx_command info;
		memset(&info, 0, sizeof(info));
		(void)fbxt_wait_settled(&t, "org-001", ids[i], 0, &info);
		if (info.id != ids[i] || info.ndeliveries != 1000) {
			FBXT_CHECK(0, "command %llu after restart: id %llu, %u "
			    "deliveries",
			    (unsigned long long)ids[i],
			    (unsigned long long)info.id, info.ndeliveries);
			break;
		}
	}
	FBXT_CHECK(1, "checked %zu commands", accepted);
out:
	if (t.daemon > 0)
		fbxt_daemon_kill(&t, SIGKILL);
	if (mounted && umount2(mnt, MNT_DETACH) != 0)
		fprintf(stderr, "umount %s: %s\n", mnt, strerror(errno));
	fbxt_teardown(&t);
	return fbxt_done();
}
