/*
 * diskfull_test.c: a real full disk. The store lives on a 12 MiB tmpfs;
 * commands are accepted until the disk is full. The submitter then gets a
 * clear storage error with its code, the daemon keeps serving reads, and
 * after a kill -9 and a restart on the still full disk it starts (recovery
 * only reads), every command that was acknowledged is there, reads of
 * every kind are served, and a submit is refused with DISK_FULL while the
 * daemon stays up. Two more stores, each on its own tmpfs, fill up while
 * idle: the engine stays degraded through retry turns that commit until
 * space is freed, also when the syncer thread's sync fails meanwhile
 * (the fault shim, tests/faultinj/fault_shim.c).
 * Needs root to mount the tmpfs; without it the test says so and is
 * skipped (ctest SKIP_RETURN_CODE 77).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define HELD 20000 /* deliveries the gateway holds when it is killed */
#define HELD_S "20000"

/* storage_err - the code of a turn that failed on the store. A read
 * that arrives just when the engine retries its writes is part of that
 * write turn and is answered with its error (documented: every request
 * of a failed turn is); between retries reads are served from a read
 * transaction. Reads are therefore retried a few times on these codes. */
static int
storage_err(int rc)
{
	return rc == FBX_EDISK_FULL || rc == FBX_EIO || rc == FBX_ESTORAGE;
}

static int read_once(struct fbxt_env *t, int kind);

/* read_ok - a read-only request of `kind` is served. @return its code. */
static int
read_ok(struct fbxt_env *t, int kind)
{
	int rc = FBX_OK;

	for (int i = 0; i < 20; i++) {
		rc = read_once(t, kind);
		if (!storage_err(rc))
			break;
		usleep(50000);
	}
	return rc;
}

/* get_info - GetCommand, retried like read_ok. @return its code. */
static int
get_info(struct fbxt_env *t, uint64_t id, struct fbx_command *info)
{
	int rc = FBX_OK;

	for (int i = 0; i < 20; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		memset(info, 0, sizeof(*info));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		rc = fbxt_call(t, "org-001", &req, &rep);
		if (rc == FBX_OK) {
			*info = rep.u.command.info;
			info->payload = NULL;
			info->dev_ids = NULL;
		}
		fbx_console_rep_free(&rep);
		if (!storage_err(rc))
			break;
		usleep(50000);
	}
	return rc;
}

static int
read_once(struct fbxt_env *t, int kind)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = kind;
	switch (kind) {
	case FBX_CREQ_LIST_DEVICES:
		req.u.list_devices.limit = 10;
		break;
	case FBX_CREQ_LIST_HELD:
		req.u.list_held.limit = 10;
		break;
	case FBX_CREQ_AUDIT_LIST:
		req.u.audit_list.limit = 10;
		break;
	case FBX_CREQ_BREAKER:
		req.u.breaker.op = FBX_BRK_STATUS;
		break;
	case FBX_CREQ_FLEET:
		req.u.fleet.op = FBX_FLEET_REPORT;
		break;
	default:
		break;
	}
	rc = fbxt_call(t, "org-001", &req, &rep);
	fbx_console_rep_free(&rep);
	return rc;
}

/* stats - ping, retried as read_ok. @return its code, *es filled on
 * success. */
static int
stats(struct fbxt_env *t, struct fbx_engine_stats *es)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc = FBX_OK;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	for (int i = 0; i < 20; i++) {
		rc = fbxt_call(t, "org-001", &req, &rep);
		if (rc == FBX_OK)
			*es = rep.u.pong;
		fbx_console_rep_free(&rep);
		if (!storage_err(rc))
			break;
		usleep(50000);
	}
	return rc;
}

/* fill_up - write a file in dir until the file system refuses.
 * @return 0 when it is full, -1 otherwise. */
static int
fill_up(const char *dir)
{
	static char buf[65536];
	char path[400];
	size_t chunk = sizeof(buf);
	int fd, rc = -1;

	snprintf(path, sizeof(path), "%s/filler", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd < 0)
		return -1;
	memset(buf, 0xa5, sizeof(buf));
	while (chunk > 0) {
		ssize_t n = write(fd, buf, chunk);
		if (n > 0)
			continue;
		if (n < 0 && errno != ENOSPC)
			break;
		chunk /= 2; /* the tail of the space, in smaller pieces */
		rc = 0;
	}
	close(fd);
	return rc;
}

/* daemon_alive - the daemon process has not exited. */
static int
daemon_alive(struct fbxt_env *t)
{
	int st;

	if (t->daemon <= 0)
		return 0;
	if (waitpid(t->daemon, &st, WNOHANG) == t->daemon) {
		fprintf(stderr, "fuseboxd exited, status %d\n", st);
		t->daemon = 0;
		return 0;
	}
	return 1;
}

/* retry_turns - wait (hang guard 10 s) until the engine has ended at
 * least n more turns, committed or failed, than *es says; *es is then
 * the latest. @return 1 once it has. */
static int
retry_turns(struct fbxt_env *t, struct fbx_engine_stats *es, unsigned n)
{
	uint64_t turns0 = es->commits + es->turns_failed;
	int rc = FBX_OK;

	for (int w = 0; w < 200 && rc == FBX_OK; w++) {
		usleep(50000); /* hang guard: 10 s */
		rc = stats(t, es);
		if (rc == FBX_OK && es->commits + es->turns_failed >= turns0 + n)
			return 1;
	}
	return 0;
}

/* idle_full - an idle engine on a full disk: its retry turns commit
 * (nothing to write, or a little into pages the file has), yet it stays
 * degraded while the disk has no room: status says so, the log does not
 * say "writes work again" (such a commit once cleared it, and the next
 * write failed again), and a submit is refused with DISK_FULL. Then room
 * is made: the next retry clears it, and a submit is accepted. A store
 * on its own tmpfs at mnt, no gateway: nothing else to write.
 * With sync_fault the daemon runs with --sync-thread and the fault shim
 * fails the syncer's next fdatasync once the disk is full: that failure
 * (its own error, EIO) must not end the full disk's degraded state (it
 * once did, at the next commit). */
static void
idle_full(struct fbxt_env *t, const char *mnt, int sync_fault, int *mounted)
{
	char path[340], arm[340], e_pre[512], e_arm[400], e_asan[600];
	const char *env[8];
	struct fbx_engine_stats es;
	int rc, again0, k, w;

	mkdir(mnt, 0755);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=12m") != 0) {
		FBXT_CHECK(0, "mount %s: %s", mnt, strerror(errno));
		return;
	}
	*mounted = 1;
	if (strlen(mnt) + 4 > sizeof(t->db)) {
		FBXT_CHECK(0, "path too long");
		return;
	}
	memcpy(t->db, mnt, strlen(mnt));
	memcpy(t->db + strlen(mnt), "/db", 4);
	snprintf(arm, sizeof(arm), "%s/arm", t->dir);
	(void)unlink(arm);
	if (sync_fault) {
		/* the shim fails the syncer thread's first fdatasync after
		 * arm exists, once */
		fbxt_preload_env(FBX_FAULT_SHIM, e_pre, sizeof(e_pre), e_asan,
		    sizeof(e_asan));
		snprintf(e_arm, sizeof(e_arm), "FBX_FAULT_ARM=%s", arm);
		env[0] = e_pre;
		env[1] = e_arm;
		env[2] = "FBX_FAULT_OPS=fdatasync";
		env[3] = "FBX_FAULT_THREAD=fbx-sync";
		env[4] = "FBX_FAULT_COUNT=1";
		env[5] = "FBX_FAULT_ERRNO=EIO";
		env[6] = e_asan;
		env[7] = NULL;
		t->daemon_env = env;
	}
	rc = sync_fault ? fbxt_daemon_start(t, "--sync-thread", NULL)
	                : fbxt_daemon_start(t, NULL);
	t->daemon_env = NULL;
	if (rc != 0) {
		FBXT_CHECK(0, "daemon on %s did not start", mnt);
		return;
	}
	rc = fbxt_sim_run(t, "--enroll-only", "--devices", "50", "--orgs",
	    "1", "--seed", "3", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	/* a first submit while there is room: the test's client key is
	 * written into the store's keys/ on first use */
	rc = fbxt_submit(t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_OK, "submit on %s: %s", mnt, fbx_errname(rc));
	FBXT_CHECK(fill_up(mnt) == 0, "could not fill %s", mnt);
	again0 = fbxt_log_lines(t, "writes work again");
	/* the first writes may fit into pages the file has */
	for (k = 0; k < 200; k++) {
		rc = fbxt_submit(t, "org-001", FBX_CMD_QUERY,
		    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0, NULL,
		    NULL, NULL);
		if (rc != FBX_OK)
			break;
	}
	FBXT_CHECK(rc == FBX_EDISK_FULL, "%s full: %s after %d submits", mnt,
	    fbx_errname(rc), k);
	memset(&es, 0, sizeof(es));
	rc = stats(t, &es);
	FBXT_CHECK(rc == FBX_OK && retry_turns(t, &es, 3),
	    "retry turns while idle: %s, commits %llu, failed %llu",
	    fbx_errname(rc), (unsigned long long)es.commits,
	    (unsigned long long)es.turns_failed);
	if (sync_fault) {
		/* a retry turn whose commit writes a page asks the syncer
		 * for its sync, which fails. Whether a retry turn on a full
		 * disk writes anything is not the test's to decide (a ping
		 * read between retry turns is answered without a commit, and
		 * an empty commit syncs nothing): when none does, the failed
		 * sync comes only once room is made, and this run cannot
		 * check the state after it while full. It says so. */
		int fd = open(arm, O_WRONLY | O_CREAT, 0644);
		FBXT_CHECK(fd >= 0, "create %s", arm);
		if (fd >= 0)
			close(fd);
		for (w = 0; w < 200; w++) {
			if (fbxt_log_lines(t, "store sync failed") > 0)
				break;
			(void)stats(t, &es);
			usleep(50000); /* hang guard: 10 s */
		}
		if (fbxt_log_lines(t, "store sync failed") > 0) {
			rc = stats(t, &es);
			FBXT_CHECK(rc == FBX_OK && retry_turns(t, &es, 3),
			    "retry turns after the failed sync: %s",
			    fbx_errname(rc));
		} else {
			fprintf(stderr,
			    "note: no retry turn wrote a page in 10 s on the "
			    "full disk, so the syncer had nothing to sync: the "
			    "failed sync while full was not exercised\n");
		}
	}
	FBXT_CHECK(es.degraded != 0,
	    "still degraded on a full disk after idle retry turns "
	    "(commits %llu)",
	    (unsigned long long)es.commits);
	FBXT_CHECK(fbxt_log_lines(t, "writes work again") == again0,
	    "no \"writes work again\" on a full disk");
	rc = fbxt_submit(t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EDISK_FULL, "submit while full: %s",
	    fbx_errname(rc));
	if (!sync_fault) {
		/* a brake is not refused: it waits for the next retry turn,
		 * which commits it (retry turns commit here, above; they kept
		 * sending what was due, staged release waves too, while
		 * every trip was refused at once). A retry turn that failed
		 * answers it with its error (the count of failed turns goes
		 * up): asked again; an answer without a failed turn is the
		 * refusal */
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int at_once = 0;
		for (k = 0; k < 20 && !at_once; k++) {
			struct fbx_engine_stats s0, s1;
			memset(&s0, 0, sizeof(s0));
			memset(&s1, 0, sizeof(s1));
			(void)stats(t, &s0);
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_BREAKER;
			req.u.breaker.op = FBX_BRK_TRIP;
			snprintf(req.u.breaker.reason,
			    sizeof(req.u.breaker.reason), "full_brake");
			snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
			    "emergency on a full disk");
			rc = fbxt_call(t, "org-001", &req, &rep);
			fbx_console_rep_free(&rep);
			if (rc == FBX_OK)
				break;
			(void)stats(t, &s1);
			at_once = s1.turns_failed == s0.turns_failed;
		}
		FBXT_CHECK(rc == FBX_OK && !at_once,
		    "a breaker trip on a full disk: %s after %d tries%s",
		    fbx_errname(rc), k + 1,
		    at_once ? " (refused without a failed turn)" : "");
	}
	snprintf(path, sizeof(path), "%s/filler", mnt);
	FBXT_CHECK(unlink(path) == 0, "remove %s", path);
	for (w = 0; w < 200; w++) {
		if (stats(t, &es) == FBX_OK && !es.degraded)
			break;
		usleep(50000); /* hang guard: 10 s */
	}
	FBXT_CHECK(!es.degraded, "degraded after room was made");
	FBXT_CHECK(fbxt_log_lines(t, "writes work again") == again0 + 1,
	    "\"writes work again\" logged once room was made");
	rc = fbxt_submit(t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_OK, "submit after room was made: %s",
	    fbx_errname(rc));
	if (t->daemon > 0)
		fbxt_daemon_kill(t, SIGKILL);
}

/* cmp_u64 - qsort order for command ids. */
static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(void)
{
	struct fbxt_env t;
	char mnt[300], mnt2[300], mnt3[300];
	uint64_t ids[2000];
	size_t accepted = 0;
	int rc, last = FBX_OK, mounted = 0, mounted2 = 0, mounted3 = 0;

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
	if (fbxt_daemon_start(&t, "--map-size", "4", "--org-share", "100",
	        NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "1000", "--orgs",
	    "1", "--seed", "2", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	/* one gateway that holds the first 20,000 deliveries and never
	 * answers (it does heartbeat): when the daemon is killed they are
	 * journaled SENT, so the restart finds a lot a lost process left in
	 * flight, which it must not need to write before it serves. Every
	 * other delivery stays queued on disk. */
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "1000", "--orgs",
	    "1", "--seed", "2", "--window", HELD_S, "--ack-latency-ms",
	    "3600000", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator did not start");
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
		if (accepted == HELD / 1000) {
			/* wait (hang guard) until the gateway holds them */
			struct fbx_engine_stats es;
			memset(&es, 0, sizeof(es));
			for (int w = 0; w < 1200; w++) {
				if (stats(&t, &es) == FBX_OK &&
				    es.deliveries_inflight == HELD)
					break;
				usleep(50000);
			}
			FBXT_CHECK(es.deliveries_inflight == HELD,
			    "the gateway holds %llu deliveries, want %d",
			    (unsigned long long)es.deliveries_inflight, HELD);
		}
	}
	fprintf(stderr, "accepted %zu commands before: %s (%d)\n", accepted,
	    fbx_errname(last), last);
	FBXT_CHECK(accepted > 10, "only %zu accepted", accepted);
	FBXT_CHECK(last == FBX_EDISK_FULL,
	    "full disk answered %s (%d)", fbx_errname(last), last);
	/* it keeps serving: reads work, and it keeps refusing cleanly */
	{
		uint32_t count;
		uint64_t id;
		struct fbx_command info;
		rc = get_info(&t, ids[0], &info);
		FBXT_CHECK(rc == FBX_OK, "read after disk full: rc %d", rc);
		rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY,
		    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0, NULL,
		    &id, &count);
		FBXT_CHECK(rc == FBX_EDISK_FULL || rc == FBX_EIO,
		    "second refusal: %d", rc);
		/* (a failed commit can leave allocated pages past the
		 * store's end that a later commit fits in) */
		if (rc == FBX_OK && accepted < 2000)
			ids[accepted++] = id;
	}
	/* restart: every acknowledged command is there, with its deliveries */
	rc = fbxt_daemon_kill(&t, SIGKILL);
	(void)fbxt_sim_stop(&t); /* its engine is gone: any status */
	/* take what space is left, so the restart meets a full disk */
	FBXT_CHECK(fill_up(mnt) == 0, "could not fill %s", mnt);
	if (fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "restart on a full disk (see fuseboxd.log)");
		goto out;
	}
	for (size_t i = 0; i < accepted; i++) {
		struct fbx_command info;
		(void)get_info(&t, ids[i], &info);
		if (info.id != ids[i] || info.ndeliveries != 1000) {
			FBXT_CHECK(0, "command %llu after restart: id %llu, %u "
			    "deliveries",
			    (unsigned long long)ids[i],
			    (unsigned long long)info.id, info.ndeliveries);
			break;
		}
	}
	FBXT_CHECK(1, "checked %zu commands", accepted);

	/* the list shows exactly the acknowledged commands */
	{
		uint64_t *seen = calloc(accepted + 1, sizeof(*seen)), after = 0;
		size_t n = 0, match = 0;
		int lrc = FBX_OK;
		while (seen != NULL) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_LIST_COMMANDS;
			req.u.list.after = after;
			req.u.list.limit = 1000;
			for (int r = 0; r < 20; r++) {
				lrc = fbxt_call(&t, "org-001", &req, &rep);
				if (!storage_err(lrc))
					break;
				fbx_console_rep_free(&rep);
				usleep(50000);
			}
			if (lrc != FBX_OK) {
				fbx_console_rep_free(&rep);
				break;
			}
			for (size_t i = 0; i < rep.u.commands.n; i++) {
				if (n < accepted)
					seen[n] = rep.u.commands.cmds[i].id;
				n++;
			}
			after = rep.u.commands.next_after;
			fbx_console_rep_free(&rep);
			if (after == 0)
				break;
		}
		FBXT_CHECK(lrc == FBX_OK, "list on a full disk: %s",
		    fbx_errname(lrc));
		FBXT_CHECK(n == accepted, "list shows %zu commands, %zu were "
		    "acknowledged", n, accepted);
		if (seen != NULL && n == accepted) {
			qsort(seen, n, sizeof(*seen), cmp_u64);
			for (size_t i = 0; i < n; i++)
				match += seen[i] == ids[i];
			FBXT_CHECK(match == accepted,
			    "%zu of %zu listed ids are the acknowledged ones",
			    match, accepted);
		}
		free(seen);
	}
	/* every read-only request is served from a read transaction */
	{
		static const int kinds[] = { FBX_CREQ_PING,
			FBX_CREQ_LIST_DEVICES, FBX_CREQ_LIST_GROUPS,
			FBX_CREQ_LIST_HELD, FBX_CREQ_LIST_ORGS,
			FBX_CREQ_AUDIT_LIST, FBX_CREQ_AUDIT_VERIFY,
			/* the breakers first of all, in an incident (a status
			 * was refused with the write error) */
			FBX_CREQ_BREAKER, FBX_CREQ_FLEET };
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			rc = read_ok(&t, kinds[i]);
			FBXT_CHECK(rc == FBX_OK,
			    "read request kind %d after the restart: %s",
			    kinds[i], fbx_errname(rc));
		}
	}
	/* writes are refused with the cause, and the daemon stays up. The
	 * file system is full, but a commit that failed before the kill can
	 * have left allocated pages past the store's end, which a write may
	 * still fit in: write until the first refusal (a few at most). */
	{
		int refused = 0, k;
		for (k = 0; k < 20 && !refused; k++) {
			uint32_t count;
			uint64_t id;
			rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY,
			    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0,
			    NULL, &id, &count);
			refused = rc != FBX_OK;
		}
		fprintf(stderr, "after the restart: %d submits accepted "
		    "before the refusal\n", k - refused);
		FBXT_CHECK(rc == FBX_EDISK_FULL,
		    "submit after the restart on a full disk: %s (%d), "
		    "want DISK_FULL",
		    fbx_errname(rc), rc);
		for (k = 0; k < 2 && rc == FBX_EDISK_FULL; k++) {
			FBXT_CHECK(daemon_alive(&t),
			    "fuseboxd exited after a refused write");
			if (t.daemon <= 0)
				break;
			rc = read_ok(&t, FBX_CREQ_PING);
			FBXT_CHECK(rc == FBX_OK, "ping after the refusal: %s",
			    fbx_errname(rc));
			rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY,
			    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0,
			    NULL, NULL, NULL);
			FBXT_CHECK(rc == FBX_EDISK_FULL,
			    "refusal %d: %s (%d)", k + 2, fbx_errname(rc), rc);
		}
		FBXT_CHECK(daemon_alive(&t), "fuseboxd exited");
	}
	if (t.daemon > 0 && accepted > 0) {
		struct fbx_command info;
		(void)get_info(&t, ids[accepted - 1], &info);
		FBXT_CHECK(info.id == ids[accepted - 1],
		    "get after the refusals: command %llu missing",
		    (unsigned long long)ids[accepted - 1]);
	}
	if (t.daemon > 0)
		fbxt_daemon_kill(&t, SIGKILL);
	/* each on its own tmpfs */
	snprintf(mnt2, sizeof(mnt2), "%s/small2", t.dir);
	snprintf(mnt3, sizeof(mnt3), "%s/small3", t.dir);
	idle_full(&t, mnt2, 0, &mounted2);
	idle_full(&t, mnt3, 1, &mounted3);
out:
	if (t.daemon > 0)
		fbxt_daemon_kill(&t, SIGKILL);
	if (mounted && umount2(mnt, MNT_DETACH) != 0)
		fprintf(stderr, "umount %s: %s\n", mnt, strerror(errno));
	if (mounted2 && umount2(mnt2, MNT_DETACH) != 0)
		fprintf(stderr, "umount %s: %s\n", mnt2, strerror(errno));
	if (mounted3 && umount2(mnt3, MNT_DETACH) != 0)
		fprintf(stderr, "umount %s: %s\n", mnt3, strerror(errno));
	fbxt_teardown(&t);
	return fbxt_done();
}
