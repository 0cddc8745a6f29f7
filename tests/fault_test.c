/*
 * fault_test.c: fail the store's disk writes (fdatasync, page writes, the
 * meta page) at several points of a fan-out, with a shim preloaded into
 * fuseboxd (tests/faultinj/fault_shim.c), and check for each point that
 * (a) no device is sent a delivery again after its success was made
 * durable (the simulator counts that), (b) every command whose submit was
 * answered OK is still there and all its deliveries end terminal, and (c)
 * the daemon keeps serving through the fault. A daemon that exits instead
 * fails (c), and is restarted on the same store, without the fault, so
 * that (a) and (b) are still checked. Then a dying disk: every sync
 * fails from some point on, and the engine must say so (dying_disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#ifndef FBX_FAULT_SHIM
#error "FBX_FAULT_SHIM must name the fault shim (set by CMake)"
#endif

#define ORG_DEVICES 10000
#define ORGS 2
#define CMDS_MAX 64
#define POLL_MS 2000 /* one console call's hang guard while polling */
#define GUARD_MS 120000 /* hang guard of each wait */

/* one injection point: which calls fail, how, and when it is armed */
struct point {
	const char *name;
	const char *ops; /* FBX_FAULT_OPS */
	const char *err; /* FBX_FAULT_ERRNO */
	const char *after; /* matching calls that pass once armed */
	const char *count; /* matching calls failed after those */
	unsigned arm_pct; /* arm once this share of command 1 is terminal */
	int accept_first; /* devices send ACCEPTED first: more ACK traffic */
	const char *delay_ms; /* FBX_FAULT_DELAY_MS: a stall, not an error */
	const char *heartbeat_ms; /* the daemon's --heartbeat-ms, or NULL */
	const char *thread; /* FBX_FAULT_THREAD, or NULL: any thread */
	const char *expect_log; /* the daemon's log must say this */
	int sync_thread; /* the daemon runs with --sync-thread */
};

static const struct point points[] = {
	{ "fdatasync EIO once", "fdatasync", "EIO", "0", "1", 5, 0 },
	{ "fdatasync EIO 3 in a row", "fdatasync", "EIO", "0", "3", 5, 0 },
	{ "pwrite/writev ENOSPC once", "pwrite,writev", "ENOSPC", "0", "1", 5,
	    0 },
	{ "meta page write EIO once", "meta", "EIO", "0", "1", 5, 0 },
	{ "results/ACK traffic: fdatasync+writev EIO after 2",
	    "fdatasync,writev", "EIO", "2", "1", 50, 1 },
	/* turns that hold the loop 2.5 s, twice, with gateways that must
	 * speak every 200 ms: live gateways must not be reaped (their
	 * deliveries would be sent again) */
	{ "slow turns: fdatasync stalls 2.5 s twice, heartbeat 200 ms",
	    "fdatasync", "EIO", "0", "2", 5, 0, "2500", "200" },
	/* --sync-thread: the syncer thread's sync of a committed turn's
	 * meta page: that turn's replies and deliveries must wait for a
	 * later commit's sync, never leave unsynced (syncer.h); and the
	 * meta page itself, written without O_DSYNC there */
	{ "syncer fdatasync EIO twice", "fdatasync", "EIO", "0", "2", 5, 0,
	    NULL, NULL, "fbx-sync", "store sync failed", 1 },
	{ "syncer fdatasync stalls 2.5 s, heartbeat 200 ms", "fdatasync",
	    "EIO", "0", "1", 5, 0, "2500", "200", "fbx-sync", NULL, 1 },
	{ "syncer mode: meta page write EIO once", "meta", "EIO", "0", "1", 5,
	    0, NULL, NULL, NULL, NULL, 1 },
};

struct acked {
	char org[16];
	uint64_t id;
	uint32_t devices;
};

/* what one point did, for its summary line */
struct outcome {
	int exits; /* times the daemon exited during the point */
	int last_status; /* its last wait status */
	unsigned fired; /* failures the shim injected */
	uint64_t dups; /* dup_after_durable_success */
	size_t nacked, lost, unsettled, refused;
};

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* fault_count - lines in the shim's log: failures injected so far */
static unsigned
fault_count(const char *log)
{
	FILE *f = fopen(log, "r");
	unsigned n = 0;
	int c;

	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* daemon_exited - reap the daemon if it has exited; @return 1 then. */
static int
daemon_exited(struct fbxt_env *t, struct outcome *o)
{
	int st;

	if (t->daemon <= 0)
		return 1;
	if (waitpid(t->daemon, &st, WNOHANG) != t->daemon)
		return 0;
	t->daemon = 0;
	o->exits++;
	o->last_status = st;
	return 1;
}

/* restart - start the daemon again on the same store, without the
 * fault. @return 0 or -1. */
static int
restart(struct fbxt_env *t)
{
	t->daemon_env = NULL;
	fbx_client_set_timeout(t->cli, 60000);
	return fbxt_daemon_start(t, NULL);
}

/* call_guarded - a console call that notices a daemon exiting under it:
 * short hang guards, retried while the daemon lives (a request id makes a
 * stale reply harmless; submits carry an idempotency key). @return the
 * call's result, or FBX_EUNREACHABLE once the daemon has exited. */
static int
call_guarded(struct fbxt_env *t, const char *org, struct fbx_console_req *req,
    struct fbx_console_rep *rep, struct outcome *o)
{
	int rc = FBX_EUNREACHABLE;

	fbx_client_set_timeout(t->cli, POLL_MS);
	for (int waited = 0; waited < GUARD_MS; waited += POLL_MS) {
		if (daemon_exited(t, o)) {
			rc = FBX_EUNREACHABLE;
			break;
		}
		rc = fbxt_call(t, org, req, rep);
		if (rc != FBX_ETIMEOUT && rc != FBX_EUNREACHABLE)
			break;
		fbx_console_rep_free(rep);
		memset(rep, 0, sizeof(*rep));
	}
	fbx_client_set_timeout(t->cli, 60000);
	return rc;
}

/* submit - submit a query to org (all devices, or one), keep it if the
 * answer is OK. A refusal must be a storage error, never silence. */
static void
submit(struct fbxt_env *t, const char *org, const char *dev, const char *idem,
    struct acked *acked, size_t *nacked, struct outcome *o)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command *c = &req.u.submit.cmd;
	char ids[1][FBX_ID_MAX + 1];
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	c->type = FBX_CMD_QUERY;
	c->origin = FBX_ORIGIN_OPERATOR;
	c->ttl_s = 3600;
	snprintf(c->idem_key, sizeof(c->idem_key), "%s", idem);
	if (dev != NULL) {
		c->target_kind = FBX_TARGET_DEVICES;
		snprintf(ids[0], sizeof(ids[0]), "%s", dev);
		c->dev_ids = ids;
		c->ndev_ids = 1;
	} else {
		c->target_kind = FBX_TARGET_ORG;
	}
	rc = call_guarded(t, org, &req, &rep, o);
	if (rc == FBX_OK && *nacked < CMDS_MAX) {
		struct acked *a = &acked[(*nacked)++];
		snprintf(a->org, sizeof(a->org), "%s", org);
		a->id = rep.u.submit.command_id;
		a->devices = rep.u.submit.device_count;
	} else if (rc != FBX_OK) {
		o->refused++;
		FBXT_CHECK(rc == FBX_EIO || rc == FBX_EDISK_FULL ||
		        rc == FBX_ESTORAGE || rc == FBX_EUNREACHABLE ||
		        rc == FBX_EBUSY,
		    "submit %s refused with %s (%d)", idem, fbx_errname(rc),
		    rc);
	}
	fbx_console_rep_free(&rep);
}

/* get - the command as the daemon has it now; @return the call's rc. */
static int
get(struct fbxt_env *t, const struct acked *a, struct fbx_command *info,
    struct outcome *o)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_GET_COMMAND;
	req.u.get.command_id = a->id;
	rc = call_guarded(t, a->org, &req, &rep, o);
	if (rc == FBX_OK)
		*info = rep.u.command.info;
	fbx_console_rep_free(&rep);
	return rc;
}

static uint32_t
terminal(const struct fbx_command *c)
{
	return c->counts[FBX_D_SUCCEEDED] + c->counts[FBX_D_FAILED]
	    + c->counts[FBX_D_EXPIRED] + c->counts[FBX_D_CANCELLED];
}

/* ping - @return 1 if the daemon answers a ping. */
static int
ping(struct fbxt_env *t, struct outcome *o)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = call_guarded(t, "probe", &req, &rep, o);
	fbx_console_rep_free(&rep);
	return rc == FBX_OK;
}

static void
run_point(const struct point *p, int pi)
{
	struct fbxt_env t;
	struct fbxt_report rep;
	struct acked acked[CMDS_MAX];
	struct outcome o;
	struct fbx_command info;
	char report[400], arm[400], log[400], idem[64];
	char e_pre[600], e_ops[128], e_err[64], e_after[64], e_count[64];
	char e_arm[420], e_log[420], e_asan[600], e_delay[64], devs[16], name[32];
	char e_thread[64];
	const char *env[12];
	size_t nacked = 0;
	unsigned want;
	int rc, served = 1, armed_mid = 0;

	memset(&o, 0, sizeof(o));
	memset(&info, 0, sizeof(info));
	snprintf(name, sizeof(name), "fault%d", pi);
	if (fbxt_setup(&t, name) != 0) {
		FBXT_CHECK(0, "setup");
		return;
	}
	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	snprintf(arm, sizeof(arm), "%s/arm", t.dir);
	snprintf(log, sizeof(log), "%s/faults.log", t.dir);
	snprintf(e_ops, sizeof(e_ops), "FBX_FAULT_OPS=%s", p->ops);
	snprintf(e_err, sizeof(e_err), "FBX_FAULT_ERRNO=%s", p->err);
	snprintf(e_after, sizeof(e_after), "FBX_FAULT_AFTER=%s", p->after);
	snprintf(e_count, sizeof(e_count), "FBX_FAULT_COUNT=%s", p->count);
	snprintf(e_arm, sizeof(e_arm), "FBX_FAULT_ARM=%s", arm);
	snprintf(e_log, sizeof(e_log), "FBX_FAULT_LOG=%s", log);
	fbxt_preload_env(FBX_FAULT_SHIM, e_pre, sizeof(e_pre), e_asan,
	    sizeof(e_asan));
	env[0] = e_pre;
	env[1] = e_ops;
	env[2] = e_err;
	env[3] = e_after;
	env[4] = e_count;
	env[5] = e_arm;
	env[6] = e_log;
	env[7] = e_asan;
	env[8] = NULL;
	if (p->delay_ms != NULL) {
		snprintf(e_delay, sizeof(e_delay), "FBX_FAULT_DELAY_MS=%s",
		    p->delay_ms);
		env[8] = e_delay;
		env[9] = NULL;
	}
	if (p->thread != NULL) {
		size_t k = 8;
		while (env[k] != NULL)
			k++;
		snprintf(e_thread, sizeof(e_thread), "FBX_FAULT_THREAD=%s",
		    p->thread);
		env[k] = e_thread;
		env[k + 1] = NULL;
	}
	t.daemon_env = env;
	want = (unsigned)strtoul(p->count, NULL, 10);

	if ((p->heartbeat_ms != NULL && p->sync_thread
	            ? fbxt_daemon_start(&t, "--heartbeat-ms",
	                  p->heartbeat_ms, "--sync-thread", NULL)
	        : p->heartbeat_ms != NULL
	            ? fbxt_daemon_start(
	                  &t, "--heartbeat-ms", p->heartbeat_ms, NULL)
	        : p->sync_thread ? fbxt_daemon_start(&t, "--sync-thread", NULL)
	                         : fbxt_daemon_start(&t, NULL)) != 0) {
		FBXT_CHECK(0,
		    "[%s] daemon with the shim did not start (see "
		    "fuseboxd.log)",
		    p->name);
		goto out;
	}
	snprintf(devs, sizeof(devs), "%d", ORG_DEVICES * ORGS);
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", devs, "--orgs",
	    "2", "--seed", "4", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "[%s] enrollment exit status %d", p->name, rc);
	/* slow devices and a small window keep the fan-out in flight */
	if (p->accept_first)
		rc = fbxt_sim_start(&t, "--no-enroll", "--devices", devs,
		    "--orgs", "2", "--seed", "4", "--ack-latency-ms", "50",
		    "--window", "256", "--accept-first", "--report", report,
		    "--quiet", NULL);
	else
		rc = fbxt_sim_start(&t, "--no-enroll", "--devices", devs,
		    "--orgs", "2", "--seed", "4", "--ack-latency-ms", "50",
		    "--window", "256", "--report", report, "--quiet", NULL);
	FBXT_CHECK(rc == 0, "[%s] simulator start", p->name);

	submit(&t, "org-001", NULL, "fan-1", acked, &nacked, &o);
	submit(&t, "org-002", NULL, "fan-2", acked, &nacked, &o);
	FBXT_CHECK(
	    nacked == 2, "[%s] %zu of 2 fan-outs accepted", p->name, nacked);
	if (nacked == 0)
		goto out;

	/* arm once part, not all, of the first fan-out is done */
	for (int waited = 0; waited < GUARD_MS; waited += 10) {
		if (get(&t, &acked[0], &info, &o) != FBX_OK)
			break;
		if (info.state == FBX_C_DONE)
			break;
		if (info.ndeliveries > 0 &&
		    terminal(&info) * 100 >= info.ndeliveries * p->arm_pct) {
			armed_mid = 1;
			break;
		}
		sleep_ms(10);
	}
	{
		FILE *f = fopen(arm, "w");
		if (f != NULL)
			fclose(f);
	}
	FBXT_CHECK(armed_mid,
	    "[%s] armed with %u of %u done, state %d: not "
	    "in the middle of the fan-out",
	    p->name, terminal(&info), info.ndeliveries, info.state);

	/* keep submitting (each one a commit) until the shim has injected
	 * every failure it was asked for, or the daemon has exited */
	submit(&t, "org-001", NULL, "fan-3", acked, &nacked, &o);
	for (int i = 0; i < 60; i++) {
		char dev[32];
		o.fired = fault_count(log);
		if (o.fired >= want || daemon_exited(&t, &o))
			break;
		snprintf(dev, sizeof(dev), "org-00%d-d%06d", 1 + i % 2, i);
		snprintf(idem, sizeof(idem), "one-%d", i);
		submit(&t, i % 2 ? "org-002" : "org-001", dev, idem, acked,
		    &nacked, &o);
		sleep_ms(50);
	}
	o.fired = fault_count(log);
	FBXT_CHECK(o.fired > 0, "[%s] the fault never fired", p->name);

	/* (c) the daemon serves after the fault */
	if (!daemon_exited(&t, &o) && !ping(&t, &o))
		served = 0;
	if (t.daemon <= 0)
		served = 0;
	FBXT_CHECK(served, "[%s] daemon not serving after the fault: %s %d",
	    p->name, o.exits ? "exit status" : "no answer",
	    o.exits && WIFEXITED(o.last_status) ? WEXITSTATUS(o.last_status)
	                                        : o.last_status);
	if (t.daemon <= 0 && restart(&t) != 0) {
		FBXT_CHECK(0, "[%s] daemon did not restart without the fault",
		    p->name);
		goto out;
	}

	/* (b) every acknowledged command is there and settles */
	for (size_t i = 0; i < nacked; i++) {
		const struct acked *a = &acked[i];
		int settled = 0, present = 0;
		for (int waited = 0; waited < GUARD_MS; waited += 50) {
			rc = get(&t, a, &info, &o);
			if (rc == FBX_EUNREACHABLE && t.daemon <= 0) {
				/* it exited later: the same check (c) */
				FBXT_CHECK(0,
				    "[%s] daemon exited while "
				    "settling, status %d",
				    p->name, o.last_status);
				if (restart(&t) != 0)
					break;
				continue;
			}
			present = rc == FBX_OK && info.id == a->id;
			if (!present)
				break;
			if (info.state == FBX_C_DONE &&
			    terminal(&info) == info.ndeliveries) {
				settled = 1;
				break;
			}
			sleep_ms(50);
		}
		if (!present) {
			o.lost++;
			FBXT_CHECK(0,
			    "[%s] acknowledged command %s/%llu lost: "
			    "%s",
			    p->name, a->org, (unsigned long long)a->id,
			    fbx_errname(rc));
			continue;
		}
		if (!settled || info.ndeliveries != a->devices) {
			o.unsettled++;
			FBXT_CHECK(0,
			    "[%s] command %s/%llu: %u of %u terminal "
			    "(%u accepted), state %d",
			    p->name, a->org, (unsigned long long)a->id,
			    terminal(&info), info.ndeliveries, a->devices,
			    info.state);
		}
	}
	o.nacked = nacked;

	/* (a) nothing re-sent after a durable success */
	rc = fbxt_sim_stop(&t);
	FBXT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
	    "[%s] simulator status %d", p->name, rc);
	FBXT_CHECK(
	    fbxt_report_read(report, &rep) == 0, "[%s] no report", p->name);
	o.dups = rep.dup_after_success;
	FBXT_CHECK(rep.dup_after_success == 0,
	    "[%s] %llu deliveries re-sent after a durable success", p->name,
	    (unsigned long long)rep.dup_after_success);
	FBXT_CHECK(rep.foreign == 0, "[%s] foreign %llu", p->name,
	    (unsigned long long)rep.foreign);
	if (p->expect_log != NULL)
		FBXT_CHECK(fbxt_log_lines(&t, p->expect_log) > 0,
		    "[%s] the daemon's log never said '%s'", p->name,
		    p->expect_log);
	if (p->delay_ms != NULL) {
		/* a stall is no failure: nothing may be sent twice at all,
		 * and no live gateway may be declared silent */
		int reaped = fbxt_log_lines(&t, " silent for ");
		FBXT_CHECK(rep.duplicates == 0,
		    "[%s] %llu deliveries sent twice after a stall", p->name,
		    (unsigned long long)rep.duplicates);
		FBXT_CHECK(reaped == 0,
		    "[%s] a live gateway was reaped %d times during a stall",
		    p->name, reaped);
	}
out:
	if (o.exits == 0)
		printf("point '%s': %u failures injected; daemon survived; ",
		    p->name, o.fired);
	else
		printf("point '%s': %u failures injected; daemon EXITED "
		       "(status %d, exit code %d), restarted; ",
		    p->name, o.fired, o.last_status,
		    WIFEXITED(o.last_status) ? WEXITSTATUS(o.last_status)
		                             : -1);
	printf("dup_after_durable_success=%llu; acknowledged=%zu lost=%zu "
	       "unsettled=%zu refused=%zu\n",
	    (unsigned long long)o.dups, o.nacked, o.lost, o.unsettled,
	    o.refused);
	fflush(stdout);
	fbxt_teardown(&t);
}

/* engine_stats - the engine's status. @return the call's code. */
static int
engine_stats(struct fbxt_env *t, struct fbx_engine_stats *es)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = fbxt_call(t, "org-001", &req, &rep);
	if (rc == FBX_OK)
		*es = rep.u.pong;
	fbx_console_rep_free(&rep);
	return rc;
}

/* the daemon's environment in one scenario below: the fault shim
 * preloaded, failing ops with EIO count times (0: every one) once
 * DIR/arm exists, each failure a line in DIR/faults.log */
struct shim {
	char arm[400], log[400], e_pre[600], e_ops[64], e_count[40];
	char e_arm[420], e_log[420], e_asan[600];
	const char *env[12];
};

/* scenario_start - start the daemon of t under the shim (flag: one more
 * daemon option, or NULL; extra: up to 4 more of the shim's variables,
 * NULL-terminated, or NULL), enroll 20 devices and submit once before
 * the shim is armed (the harness's principal is added with the first
 * submit, a write). @return 0, or -1 (checked and reported). */
static int
scenario_start(struct fbxt_env *t, struct shim *s, const char *tag,
    const char *ops, const char *count, const char *flag,
    const char *const *extra)
{
	size_t n = 7;
	int rc;

	snprintf(s->arm, sizeof(s->arm), "%s/arm", t->dir);
	snprintf(s->log, sizeof(s->log), "%s/faults.log", t->dir);
	snprintf(s->e_ops, sizeof(s->e_ops), "FBX_FAULT_OPS=%s", ops);
	snprintf(s->e_count, sizeof(s->e_count), "FBX_FAULT_COUNT=%s", count);
	snprintf(s->e_arm, sizeof(s->e_arm), "FBX_FAULT_ARM=%s", s->arm);
	snprintf(s->e_log, sizeof(s->e_log), "FBX_FAULT_LOG=%s", s->log);
	fbxt_preload_env(FBX_FAULT_SHIM, s->e_pre, sizeof(s->e_pre),
	    s->e_asan, sizeof(s->e_asan));
	s->env[0] = s->e_pre;
	s->env[1] = s->e_ops;
	s->env[2] = "FBX_FAULT_ERRNO=EIO";
	s->env[3] = s->e_count;
	s->env[4] = s->e_arm;
	s->env[5] = s->e_log;
	s->env[6] = s->e_asan;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 11; i++)
		s->env[n++] = extra[i];
	s->env[n] = NULL;
	t->daemon_env = s->env;
	if (fbxt_daemon_start(t, flag, NULL) != 0) {
		FBXT_CHECK(0, "[%s] daemon did not start", tag);
		return -1;
	}
	rc = fbxt_sim_run(t, "--enroll-only", "--devices", "20", "--orgs",
	    "1", "--seed", "5", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "[%s] enrollment exit status %d", tag, rc);
	rc = fbxt_submit(t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_OK, "[%s] submit before: %s", tag,
	    fbx_errname(rc));
	return rc == FBX_OK ? 0 : -1;
}

/* shim_arm - from now on the shim fails its calls */
static void
shim_arm(const struct shim *s)
{
	int fd = open(s->arm, O_WRONLY | O_CREAT, 0644);

	FBXT_CHECK(fd >= 0, "create %s", s->arm);
	if (fd >= 0)
		close(fd);
}

/* dying_disk - every fdatasync of the store fails from some point on (a
 * dying disk), and nothing is asked of the engine but reads. Its retry
 * turns each write a probe, so they fail too: the engine stays degraded
 * (status says so) and never logs "writes work again" (an empty retry
 * turn once committed without touching the disk, cleared the degraded
 * state within 100 ms of each failed write, and no later retry turn
 * failed); a failed probe rebuilds nothing (no "recovered" line); a
 * breaker trip gets the disk's error, IO. */
static void
dying_disk(void)
{
	struct fbxt_env t;
	struct fbx_engine_stats es;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct shim sh;
	uint64_t failed0;
	int rc, k, again0, recovered0;

	if (fbxt_setup(&t, "fault-dying") != 0) {
		FBXT_CHECK(0, "setup");
		return;
	}
	/* every fdatasync once armed */
	if (scenario_start(&t, &sh, "dying disk", "fdatasync", "0", NULL,
	        NULL) != 0)
		goto out;
	shim_arm(&sh);
	rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EIO, "[dying disk] submit once armed: %s",
	    fbx_errname(rc));
	memset(&es, 0, sizeof(es));
	rc = engine_stats(&t, &es);
	FBXT_CHECK(rc == FBX_OK, "[dying disk] status: %s", fbx_errname(rc));
	failed0 = es.turns_failed;
	again0 = fbxt_log_lines(&t, "writes work again");
	recovered0 = fbxt_log_lines(&t, "recovered ");
	/* idle retry turns, after 100, 200, 400 ms...: three more fail */
	for (k = 0; k < 300; k++) {
		usleep(100000); /* hang guard: 30 s */
		if (engine_stats(&t, &es) == FBX_OK &&
		    es.turns_failed >= failed0 + 3)
			break;
	}
	FBXT_CHECK(es.turns_failed >= failed0 + 3,
	    "[dying disk] idle retry turns failed: %llu, then %llu (they "
	    "committed nothing and passed)",
	    (unsigned long long)failed0, (unsigned long long)es.turns_failed);
	FBXT_CHECK(es.degraded != 0, "[dying disk] not degraded while every "
	                             "sync fails");
	FBXT_CHECK(fbxt_log_lines(&t, "writes work again") == again0,
	    "[dying disk] \"writes work again\" logged while every sync "
	    "fails");
	FBXT_CHECK(fbxt_log_lines(&t, "recovered ") == recovered0,
	    "[dying disk] memory rebuilt after a failed probe: %d "
	    "\"recovered\" lines, then %d",
	    recovered0, fbxt_log_lines(&t, "recovered "));
	/* a brake waits for the next retry turn, brought close: its probe
	 * fails, and the trip gets the error */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_TRIP;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), "dying");
	snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
	    "trip on a dying disk");
	rc = fbxt_call(&t, "org-001", &req, &rep);
	fbx_console_rep_free(&rep);
	FBXT_CHECK(rc == FBX_EIO, "[dying disk] breaker trip: %s",
	    fbx_errname(rc));
	printf("[dying disk] failed turns %llu -> %llu, degraded %d, trip "
	       "%s\n",
	    (unsigned long long)failed0, (unsigned long long)es.turns_failed,
	    es.degraded != 0, fbx_errname(rc));
out:
	/* its stop cannot be written either */
	if (t.daemon > 0)
		fbxt_daemon_kill(&t, SIGKILL);
	t.daemon_env = NULL;
	fbxt_teardown(&t);
}

/* meta_thrice - three meta page writes fail, then the disk works: the
 * turn's, then its retry turns' probes. LMDB refuses every transaction
 * after a failed meta write until the store is opened again; a failed
 * probe did not reopen it, so the engine stayed degraded for good
 * (every write STORAGE, turns_failed growing) on a disk that worked
 * again. Now it must recover by itself and take a submit; with
 * --sync-thread (sync) as well, whose syncer goes with the store. */
static void
meta_thrice(int sync)
{
	struct fbxt_env t;
	struct fbx_engine_stats es;
	struct shim sh;
	const char *log = sh.log;
	int rc, k;

	if (fbxt_setup(&t, "fault-meta3") != 0) {
		FBXT_CHECK(0, "setup");
		return;
	}
	if (scenario_start(&t, &sh, "meta x3", "meta", "3",
	        sync ? "--sync-thread" : NULL, NULL) != 0)
		goto out;
	shim_arm(&sh);
	rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EIO, "[meta x3] submit once armed: %s",
	    fbx_errname(rc));
	/* the retry turns use up the other two failures (hang guard 60 s) */
	for (k = 0; k < 600 && fault_count(log) < 3; k++)
		usleep(100000);
	FBXT_CHECK(fault_count(log) == 3, "[meta x3] failures injected: %u",
	    fault_count(log));
	/* then a retry turn finds the disk working (backoff at most 5 s;
	 * hang guard 60 s) */
	memset(&es, 0, sizeof(es));
	es.degraded = 1;
	for (k = 0; k < 600; k++) {
		if (engine_stats(&t, &es) == FBX_OK && !es.degraded)
			break;
		usleep(100000);
	}
	FBXT_CHECK(!es.degraded, "[meta x3] still degraded on a disk that "
	                         "works again (turns failed: %llu)",
	    (unsigned long long)es.turns_failed);
	rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_OK, "[meta x3] submit after: %s",
	    fbx_errname(rc));
	printf("[meta x3%s] %u meta writes failed; degraded %d, turns failed "
	       "%llu, submit after %s\n",
	    sync ? ", --sync-thread" : "", fault_count(log), es.degraded != 0,
	    (unsigned long long)es.turns_failed, fbx_errname(rc));
out:
	if (t.daemon > 0)
		fbxt_daemon_kill(&t, SIGKILL);
	t.daemon_env = NULL;
	fbxt_teardown(&t);
}

struct bg_submit {
	struct fbxt_env *t;
	int rc;
};

static void *
bg_submit_run(void *arg)
{
	struct bg_submit *b = arg;

	b->rc = fbxt_submit(b->t, "org-001", FBX_CMD_QUERY,
	    FBX_ORIGIN_OPERATOR, FBX_TARGET_ORG, NULL, NULL, 0, NULL, NULL,
	    NULL);
	return NULL;
}

/* held_read - --sync-thread on a dying disk whose every sync of the
 * syncer thread stalls 1.5 s and then fails. A status sent while a
 * submit's sync stalls is held with its turn's commit; when that sync
 * failed, it waited with the submit's reply for writes to work again,
 * which on this disk is never: the client's hang guard ran out. It must
 * be answered once the sync failed, with the failure (what it read is
 * older than the failure: sent as it was, it said "degraded no"), and
 * asked again say degraded; the submit must not be answered OK (nothing
 * it wrote was synced). */
static void
held_read(void)
{
	static const char *const extra[] = { "FBX_FAULT_THREAD=fbx-sync",
		"FBX_FAULT_DELAY_MS=1500", "FBX_FAULT_DELAY_FAIL=1", NULL };
	struct fbxt_env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct bg_submit b;
	struct shim sh;
	pthread_t th;
	fbx_client *c;
	int rc, started = 0;

	if (fbxt_setup(&t, "fault-heldread") != 0) {
		FBXT_CHECK(0, "setup");
		return;
	}
	if (scenario_start(&t, &sh, "held read", "fdatasync", "0",
	        "--sync-thread", extra) != 0)
		goto out;
	/* the submit's reply never comes: its guard is shorter */
	c = fbxt_client_for(&t, "test");
	FBXT_CHECK(c != NULL, "[held read] client");
	if (c == NULL)
		goto out;
	fbx_client_set_timeout(c, 8000);
	shim_arm(&sh);
	b.t = &t;
	b.rc = FBX_OK;
	started = pthread_create(&th, NULL, bg_submit_run, &b) == 0;
	FBXT_CHECK(started, "[held read] thread");
	/* while its sync stalls (ordering, not a speed limit: later, the
	 * status finds the engine degraded and is answered at once) */
	usleep(300000);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	snprintf(req.actor, sizeof(req.actor), "admin");
	fbx_client_set_timeout(t.cli, 20000); /* hang guard */
	rc = fbxt_call(&t, "org-001", &req, &rep);
	FBXT_CHECK(rc == FBX_EIO && strstr(rep.errmsg, "ask again") != NULL,
	    "[held read] status sent while a sync stalled, which then "
	    "failed: %s (%s), want IO, ask again",
	    fbx_errname(rc), rep.errmsg);
	fbx_console_rep_free(&rep);
	/* asked again: answered from the degraded store */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	snprintf(req.actor, sizeof(req.actor), "admin");
	rc = fbxt_call(&t, "org-001", &req, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.pong.degraded != 0,
	    "[held read] status asked again: %s, degraded %d", fbx_errname(rc),
	    rc == FBX_OK ? (int)rep.u.pong.degraded : -1);
	fbx_console_rep_free(&rep);
	fbx_client_set_timeout(t.cli, 60000);
	if (started)
		pthread_join(th, NULL);
	FBXT_CHECK(b.rc != FBX_OK, "[held read] the submit whose sync failed "
	                           "was answered OK");
	printf("[held read] status asked again %s, the submit %s, %u syncs "
	       "failed\n",
	    fbx_errname(rc), fbx_errname(b.rc), fault_count(sh.log));
out:
	if (t.daemon > 0)
		fbxt_daemon_kill(&t, SIGKILL);
	t.daemon_env = NULL;
	fbxt_teardown(&t);
}

int
main(void)
{
	const char *only = getenv("FBXT_FAULT_POINT");

	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		if (only != NULL && (strcmp(only, "dying") == 0 ||
		                        strcmp(only, "meta3") == 0 ||
		                        strcmp(only, "heldread") == 0 ||
		                        (size_t)atoi(only) != i))
			continue;
		run_point(&points[i], (int)i);
	}
	if (only == NULL || strcmp(only, "dying") == 0)
		dying_disk();
	if (only == NULL || strcmp(only, "meta3") == 0) {
		meta_thrice(0);
		meta_thrice(1);
	}
	if (only == NULL || strcmp(only, "heldread") == 0)
		held_read();
	return fbxt_done();
}
