/*
 * syncer_test.c: the engine's syncer thread (dispatcher/syncer.h) on a
 * real store, with the fault shim failing the syncer thread's fdatasync
 * once: a ticket is durable only after a sync that succeeded; after a
 * failure no sync starts until the engine has taken it, and none for the
 * tickets it covers (asking again changes nothing); a later commit's
 * sync makes the earlier tickets durable too; and every commit is in the
 * store after it is reopened. The descriptor the engine polls
 * (fbxi_syncer_fd) turns readable when a sync ends, failed or not, and
 * only then, or at once for a syncer started again with tickets durable
 * already.
 *
 * The test re-executes itself with the shim preloaded (as fault_test does
 * for the daemon) and FBX_FAULT_THREAD=fbx-sync, so only the syncer's
 * calls count.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fbx_store.h"
#include "syncer.h"

#ifndef FBX_FAULT_SHIM
#error "FBX_FAULT_SHIM must name the fault shim (set by CMake)"
#endif

static int passed, failed;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (cond) {                                                 \
			passed++;                                           \
		} else {                                                    \
			failed++;                                           \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
		}                                                           \
	} while (0)

/* put - one write transaction that stores key = val, committed */
static int
put(fbx_store *st, const char *key, const char *val)
{
	fbx_txn *t = NULL;
	int rc = fbx_txn_begin(st, 1, &t);

	if (rc != FBX_OK)
		return rc;
	rc = fbx_store_kv_put(t, key, val, strlen(val));
	if (rc != FBX_OK) {
		fbx_txn_abort(t);
		return rc;
	}
	return fbx_txn_commit(t);
}

/* readable - the syncer's wake descriptor polls readable within ms (a
 * bound to give up at, not a time measured) */
static int
readable(struct fbxi_syncer *s, int ms)
{
	struct pollfd p = { fbxi_syncer_fd(s), POLLIN, 0 };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN) != 0;
}

static unsigned
lines(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	int c;

	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int
child(const char *dir)
{
	struct fbx_store_opts so;
	struct fbxi_syncer *s = NULL;
	fbx_store *st = NULL;
	fbx_txn *t = NULL;
	char arm[300], log[300], v[16];
	uint64_t done, upto = 0, no_retry = 0;
	size_t vl = 0;
	int rc, err = FBX_OK;
	FILE *f;

	snprintf(arm, sizeof(arm), "%s/arm", dir);
	snprintf(log, sizeof(log), "%s/faults.log", dir);
	memset(&so, 0, sizeof(so));
	so.path = dir;
	so.durability = FBX_DURABLE_NOMETASYNC;
	rc = fbx_store_open(&so, &st);
	CHECK(rc == FBX_OK, "open: %s", fbx_strerror(rc));
	if (rc != FBX_OK)
		return 1;
	rc = fbxi_syncer_start(st, 0, 0, &s);
	CHECK(rc == FBX_OK, "syncer start: %s", fbx_strerror(rc));
	if (rc != FBX_OK)
		return 1;

	/* 1: a commit, asked for, becomes durable; its end wakes the
	 * engine's descriptor, which nothing had woken before */
	CHECK(fbxi_syncer_fd(s) >= 0 && !readable(s, 0),
	    "wake descriptor quiet before any sync");
	CHECK(put(st, "t/a", "1") == FBX_OK, "commit 1");
	fbxi_syncer_ask(s, 1);
	CHECK(fbxi_syncer_wait(s, 1, 60000) == 1, "ticket 1 durable");
	CHECK(readable(s, 60000), "a sync's end wakes the engine");
	fbxi_syncer_woken(s);
	CHECK(!readable(s, 0), "quiet again once woken");
	done = fbxi_syncer_done(s, 1, &err, &upto);
	CHECK(done == 1 && err == FBX_OK, "done %llu err %d",
	    (unsigned long long)done, err);

	/* 2: its sync fails: not durable */
	f = fopen(arm, "w");
	if (f != NULL)
		fclose(f);
	CHECK(put(st, "t/b", "2") == FBX_OK, "commit 2");
	fbxi_syncer_ask(s, 2);
	CHECK(fbxi_syncer_wait(s, 2, 60000) == 0,
	    "ticket 2 not durable after a failed sync");
	CHECK(readable(s, 60000), "a failed sync wakes the engine too");
	fbxi_syncer_woken(s);
	CHECK(lines(log) == 1, "one failure injected (%u)", lines(log));

	/* until the engine has taken the failure, no sync starts, not even
	 * for a commit made after it (its meta page may be the page whose
	 * write-back failed; the shim would let a second sync through and
	 * report it durable). Watched for half a second: a wrong sync would
	 * show within it; a slow machine can only hide it, never fail it */
	CHECK(put(st, "t/c", "3") == FBX_OK, "commit 3");
	fbxi_syncer_ask(s, 3);
	for (int i = 0; i < 50 && fbxi_syncer_wait(s, 3, 0) == 0; i++)
		usleep(10000);
	CHECK(fbxi_syncer_wait(s, 3, 0) == 0,
	    "no sync while a failure waits to be taken");
	CHECK(!readable(s, 0), "no wake without a sync");

	/* the engine takes it, naming its last commit (3) */
	done = fbxi_syncer_done(s, 3, &err, &upto);
	CHECK(done == 1 && err == FBX_EIO && upto == 2,
	    "done %llu err %s upto %llu", (unsigned long long)done,
	    fbx_errname(err), (unsigned long long)upto);

	/* asking again for a ticket up to the cover starts no sync */
	fbxi_syncer_ask(s, 3);
	for (int i = 0; i < 50 && fbxi_syncer_wait(s, 3, 0) == 0; i++)
		usleep(10000);
	done = fbxi_syncer_done(s, 3, &err, &upto);
	CHECK(done == 1 && err == FBX_OK,
	    "tickets up to the cover not synced on their own: done %llu "
	    "err %d",
	    (unsigned long long)done, err);

	/* 4: a later commit's sync covers tickets 2 and 3 */
	CHECK(put(st, "t/d", "4") == FBX_OK, "commit 4");
	fbxi_syncer_ask(s, 4);
	CHECK(fbxi_syncer_wait(s, 4, 60000) == 1, "ticket 4 durable");
	CHECK(readable(s, 60000), "ticket 4's sync wakes the engine");
	done = fbxi_syncer_done(s, 4, &err, &upto);
	CHECK(done == 4 && err == FBX_OK, "done %llu err %d",
	    (unsigned long long)done, err);
	done = fbxi_syncer_stop(s, &no_retry);
	CHECK(done == 4 && no_retry == 3, "stop: durable %llu no_retry %llu",
	    (unsigned long long)done, (unsigned long long)no_retry);
	fbx_store_close(st);

	/* every commit is in the store */
	st = NULL;
	rc = fbx_store_open(&so, &st);
	CHECK(rc == FBX_OK, "reopen: %s", fbx_strerror(rc));
	if (rc == FBX_OK && fbx_txn_begin(st, 0, &t) == FBX_OK) {
		static const char *const keys[] = { "t/a", "t/b", "t/c", "t/d" };
		for (int i = 0; i < 4; i++) {
			rc = fbx_store_kv_get(t, keys[i], v, sizeof(v), &vl);
			CHECK(rc == FBX_OK && vl == 1 && v[0] == '1' + i,
			    "%s after reopen: %s", keys[i], fbx_strerror(rc));
		}
		fbx_txn_abort(t);
	}
	/* a syncer started again (after a store reopen) with tickets
	 * durable already: the engine's held outputs up to them may leave,
	 * so its descriptor is readable at once */
	if (rc == FBX_OK) {
		s = NULL;
		rc = fbxi_syncer_start(st, 4, 3, &s);
		CHECK(rc == FBX_OK, "syncer start again: %s",
		    fbx_strerror(rc));
		if (rc == FBX_OK) {
			CHECK(readable(s, 0),
			    "a restarted syncer wakes the engine at once");
			(void)fbxi_syncer_stop(s, NULL);
		}
	}
	fbx_store_close(st);
	return 0;
}

int
main(int argc, char **argv)
{
	char dir[] = "/tmp/fbxt-syncer-XXXXXX", buf[600];
	const char *asan = getenv("ASAN_OPTIONS");
	char cmd[400];

	(void)argc;
	if (getenv("FBX_SYNCER_TEST_DIR") != NULL) {
		child(getenv("FBX_SYNCER_TEST_DIR"));
		printf("syncer_test: %d passed, %d failed\n", passed, failed);
		return failed == 0 && passed > 0 ? 0 : 1;
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	setenv("FBX_SYNCER_TEST_DIR", dir, 1);
	setenv("LD_PRELOAD", FBX_FAULT_SHIM, 1);
	setenv("FBX_FAULT_OPS", "fdatasync", 1);
	setenv("FBX_FAULT_THREAD", "fbx-sync", 1);
	snprintf(buf, sizeof(buf), "%s/arm", dir);
	setenv("FBX_FAULT_ARM", buf, 1);
	snprintf(buf, sizeof(buf), "%s/faults.log", dir);
	setenv("FBX_FAULT_LOG", buf, 1);
	setenv("FBX_FAULT_COUNT", "1", 1);
	/* an ASan build refuses a preload ahead of its runtime unless told
	 * not to check */
	snprintf(buf, sizeof(buf), "%s%sverify_asan_link_order=0",
	    asan != NULL ? asan : "", asan != NULL && asan[0] ? ":" : "");
	setenv("ASAN_OPTIONS", buf, 1);
	fflush(NULL);
	if (fork() == 0) {
		execv("/proc/self/exe", argv);
		perror("execv");
		_exit(127);
	}
	{
		int st = 0;
		if (wait(&st) < 0)
			st = 1;
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
	}
}
