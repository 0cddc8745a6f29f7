/*
 * harness.h: helpers for the end-to-end tests: a temporary directory,
 * starting and stopping the real fuseboxd and fusebox-devsim binaries on
 * ipc:// endpoints inside it, console calls, and reading the simulator's
 * report. Tests assert with FBXT_CHECK and end with fbxt_done(), which
 * prints "N passed, N failed".
 */
#ifndef FBXT_HARNESS_H
#define FBXT_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

#include "fbx_client.h"
#include "fbx_proto.h"

extern int fbxt_passed, fbxt_failed;

#define FBXT_CHECK(cond, ...)                                                \
	do {                                                                 \
		if (cond) {                                                  \
			fbxt_passed++;                                       \
		} else {                                                     \
			fbxt_failed++;                                       \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,        \
			    __LINE__, #cond);                                \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

struct fbxt_env {
	char dir[256];
	char db[300];
	char console[320];
	char gateway[320];
	pid_t daemon;
	pid_t sim;
	fbx_client *cli;
	/* NAME=VALUE strings (NULL-terminated) added to fuseboxd's
	 * environment, e.g. LD_PRELOAD; set after fbxt_setup, NULL = none.
	 * A NAME given here replaces the inherited one. */
	const char *const *daemon_env;
	/* issue 10: the keys of t->db (fuseboxd init), and one client per
	 * actor a test names, each with its own principal's key */
	char keys[320];
	char keys_of[300]; /* the db they were made for */
	/* issue 13: FBX_TEST_PG_URL set (tests/pg_cluster.sh run): the
	 * store of this test, a PostgreSQL schema of its own (named by
	 * fbxt_setup after the test, its pid, the time and a counter; the
	 * backend creates it at first open) that every fuseboxd and
	 * `fuseboxd init` of the test is given with --store, so restarts
	 * see the same store and parallel tests never meet; "" = LMDB in
	 * t->db. Keys stay in t->db/keys either way. */
	char store[768];
	struct {
		char name[FBX_ID_MAX + 1];
		fbx_client *cli;
	} actors[32];
	size_t nactors;
};

/* fbxt_keys_init - make sure t->db has its keys and principals (fuseboxd
 * init: the admin, a gateway "gw", automation "rule-engine" and
 * "attestation-rule"), export FUSEBOX_KEY (admin), FUSEBOX_SERVER_KEY,
 * FUSEBOX_GATEWAY_KEY and FUSEBOX_STORM_KEY for the tools, and open
 * t->cli with the admin's key. Called by fbxt_setup and
 * fbxt_daemon_start. @return 0 or -1. */
int fbxt_keys_init(struct fbxt_env *t);

/* fbxt_client_for - the client acting as actor ("" or "admin": t->cli).
 * Other names become principals on first use (kind automation when the
 * name contains "rule", else operator; every role, every organisation),
 * added by the admin; the daemon must run. @return NULL on failure. */
fbx_client *fbxt_client_for(struct fbxt_env *t, const char *actor);

/* fbxt_sock_curve - make a raw ZeroMQ socket (before its connect) a
 * CURVE client of the engine with the key in the environment variable
 * env ("FUSEBOX_KEY": the admin; "FUSEBOX_GATEWAY_KEY": gateway "gw")
 * or, if env names no variable that is set, the key file env.
 * @return 0 or -1. */
int fbxt_sock_curve(void *sock, const char *env);

/* fbxt_pg - 1 when the tests run on PostgreSQL (FBX_TEST_PG_URL set),
 * else 0: what reads or writes LMDB files directly is LMDB only. */
int fbxt_pg(void);

/* fbxt_setup - make a temp dir and endpoints inside it (and, on
 * PostgreSQL, the store URL of a schema of its own). */
int fbxt_setup(struct fbxt_env *t, const char *name);
/* fbxt_teardown - stop what runs, remove the temp dir (kept on failure). */
void fbxt_teardown(struct fbxt_env *t);

/* fbxt_daemon_start - start fuseboxd (extra args NULL-terminated) and wait
 * until it answers a ping. @return 0 or -1. */
int fbxt_daemon_start(struct fbxt_env *t, ...);
/* fbxt_daemon_kill - send sig and reap. @return the wait status. */
int fbxt_daemon_kill(struct fbxt_env *t, int sig);
/* fbxt_preload_env - the daemon_env lines that preload lib (the fault
 * shim) into fuseboxd: "LD_PRELOAD=lib" into pre, and into asan the
 * test's ASAN_OPTIONS plus verify_asan_link_order=0 (an ASan daemon
 * refuses a preload ahead of its runtime unless told not to check;
 * harmless without ASan). */
void fbxt_preload_env(const char *lib, char *pre, size_t prelen, char *asan,
    size_t asanlen);
/* fbxt_log_lines - lines of the daemon's log (fuseboxd.log) that contain
 * needle. */
int fbxt_log_lines(const struct fbxt_env *t, const char *needle);

/* fbxt_sim_run - run fusebox-devsim to completion (e.g. --enroll-only).
 * @return its exit status or -1. */
int fbxt_sim_run(struct fbxt_env *t, ...);
/* fbxt_sim_start - start the simulator as a gateway in the background. */
int fbxt_sim_start(struct fbxt_env *t, ...);
/* fbxt_sim_stop - SIGTERM the simulator and reap it. @return status. */
int fbxt_sim_stop(struct fbxt_env *t);

/* fbxt_call - console call with org; @return rep.err or a transport
 * error (< 0 is never returned; transport errors are fbx codes too). */
int fbxt_call(struct fbxt_env *t, const char *org,
    struct fbx_console_req *req, struct fbx_console_rep *rep);

/* fbxt_submit - submit a command. @return engine error, *id on success. */
int fbxt_submit(struct fbxt_env *t, const char *org, int type, int origin,
    int target_kind, const char *group, const char **ids, size_t nids,
    const char *idem, uint64_t *id, uint32_t *count);

/* fbxt_wait_settled - poll until the command is DONE (every delivery
 * terminal) or timeout_ms passes. Fills info (no payload/ids).
 * @return 0 when settled, -1 on timeout. */
int fbxt_wait_settled(struct fbxt_env *t, const char *org, uint64_t id,
    int timeout_ms, struct fbx_command *info);

/* A parsed devsim report. */
struct fbxt_report {
	uint64_t received, distinct, duplicates, dup_after_success, foreign;
	uint64_t succeeded, failed, offline;
	struct {
		char org[FBX_ID_MAX + 1];
		uint64_t devices, received, distinct;
	} orgs[256];
	size_t norgs;
};

int fbxt_report_read(const char *path, struct fbxt_report *r);

/* fbxt_done - print the tally and return the exit status for main. */
int fbxt_done(void);

#endif
