/*
 * bench.c: see bench.h. Children are started with fork/exec from the build
 * tree and registered, so that a normal return, exit(), SIGINT/SIGTERM and
 * the benchmark's own death (PR_SET_PDEATHSIG) all stop them: a benchmark
 * never leaves a daemon behind. Only pids started here are ever signalled.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define KIDS_MAX 16
#define ARGS_MAX 64

volatile sig_atomic_t fbxb_stop;

static volatile pid_t kids[KIDS_MAX];

static void
kids_add(pid_t pid)
{
	for (int i = 0; i < KIDS_MAX; i++) {
		if (kids[i] == 0) {
			kids[i] = pid;
			return;
		}
	}
}

static void
kids_del(pid_t pid)
{
	for (int i = 0; i < KIDS_MAX; i++) {
		if (kids[i] == pid)
			kids[i] = 0;
	}
}

/* on_signal - the first signal asks the benchmark to wind down through
 * its normal cleanup; a second one kills the children and leaves. Only
 * async-signal-safe calls here. */
static void
on_signal(int sig)
{
	(void)sig;
	if (fbxb_stop) {
		for (int i = 0; i < KIDS_MAX; i++) {
			if (kids[i] > 0)
				kill(kids[i], SIGKILL);
		}
		_exit(130);
	}
	fbxb_stop = 1;
}

/* at_exit - a path that exits without teardown still stops the children
 * it started. */
static void
at_exit(void)
{
	for (int i = 0; i < KIDS_MAX; i++) {
		if (kids[i] > 0)
			(void)fbxb_reap(kids[i], SIGTERM, 5000);
	}
}

void
fbxb_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	atexit(at_exit);
}

const char *
fbxb_bin_dir(void)
{
	static char dir[PATH_MAX + 32];
	const char *env = getenv("FBX_BIN_DIR");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env != NULL && env[0] != '\0')
		return env;
	if (dir[0] != '\0')
		return dir;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(dir, sizeof(dir), "../dispatcher");
		return dir;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(dir, sizeof(dir), "%s/../dispatcher", exe);
	return dir;
}

int64_t
fbxb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
fbxb_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
fbxb_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !fbxb_stop)
		;
}

pid_t
fbxb_spawn(const char *prog, const char *logpath, char *const *argv)
{
	char path[PATH_MAX];
	char *av[ARGS_MAX + 2];
	pid_t parent = getpid(), pid;
	int n = 0;

	if (strchr(prog, '/') != NULL)
		snprintf(path, sizeof(path), "%s", prog);
	else
		snprintf(path, sizeof(path), "%s/%s", fbxb_bin_dir(), prog);
	av[n++] = path;
	for (int i = 0; argv != NULL && argv[i] != NULL; i++) {
		if (n > ARGS_MAX) {
			fprintf(stderr, "bench: too many arguments for %s\n",
			    prog);
			return -1;
		}
		av[n++] = argv[i];
	}
	av[n] = NULL;
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(logpath != NULL ? logpath : "/dev/null",
		    O_WRONLY | O_CREAT | O_APPEND, 0644);
		/* the child must not outlive the benchmark */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		signal(SIGPIPE, SIG_DFL);
		execv(path, av);
		_exit(127);
	}
	kids_add(pid);
	return pid;
}

int
fbxb_wait_exit(pid_t pid, int timeout_ms)
{
	int st;

	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			kids_del(pid);
			return st;
		}
		if (r < 0 && errno != EINTR) {
			kids_del(pid);
			return -1;
		}
		if (fbxb_stop)
			return -1;
		fbxb_sleep_ms(10);
	}
	return -1;
}

int
fbxb_reap(pid_t pid, int sig, int timeout_ms)
{
	int st = -1;

	if (pid <= 0)
		return -1;
	if (sig != 0)
		kill(pid, sig);
	for (int waited = 0; waited <= timeout_ms; waited += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD)) {
			kids_del(pid);
			return r == pid ? st : -1;
		}
		fbxb_sleep_ms(10);
	}
	fprintf(stderr, "bench: pid %ld did not stop in %d ms: SIGKILL\n",
	    (long)pid, timeout_ms);
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	kids_del(pid);
	return st;
}

/* keys_init - `fuseboxd init` on the env's store (issue 10: the daemon
 * only takes CURVE clients whose key is a principal's), as
 * tests/harness.c does: the admin key for the console, a gateway key, and
 * automation keys for automatic commands; the children find them through
 * the environment. */
static int
keys_init(struct fbxb_env *b)
{
	char *args[] = { "init", "--data", b->db, "--principal",
		"gw/gateway/-/*", "--principal", "rule-engine/automation/all/*",
		"--principal", "attestation-rule/automation/all/*", NULL };
	char logpath[320], path[400];
	pid_t pid;
	int st;

	snprintf(b->keys, sizeof(b->keys), "%s/keys", b->db);
	snprintf(logpath, sizeof(logpath), "%s/init.log", b->dir);
	pid = fbxb_spawn("fuseboxd", logpath, args);
	if (pid < 0)
		return FBX_EIO;
	st = fbxb_wait_exit(pid, 60000);
	if (st < 0) {
		(void)fbxb_reap(pid, SIGTERM, 5000);
		return FBX_EIO;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench: fuseboxd init failed (status %d)\n",
		    st);
		fbxb_log_tail(logpath, 10);
		return FBX_EIO;
	}
	snprintf(path, sizeof(path), "%s/admin.key", b->keys);
	setenv("FUSEBOX_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/server.pub", b->keys);
	setenv("FUSEBOX_SERVER_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/gw.key", b->keys);
	setenv("FUSEBOX_GATEWAY_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/attestation-rule.key", b->keys);
	setenv("FUSEBOX_STORM_KEY", path, 1);
	unsetenv("FUSEBOX_ACTOR");
	return FBX_OK;
}

int
fbxb_client_as(struct fbxb_env *b, const char *principal, fbx_client **out)
{
	struct fbx_client_opts co;
	char path[400], why[300] = "";
	int rc;

	memset(&co, 0, sizeof(co));
	snprintf(path, sizeof(path), "%s/%s.key", b->keys, principal);
	co.key_file = path;
	co.why = why;
	co.whylen = sizeof(why);
	rc = fbx_client_open2(b->console, 30000, &co, out);
	if (rc != FBX_OK)
		fprintf(stderr, "bench: client for %s: %s %s\n", principal,
		    fbx_strerror(rc), why);
	return rc;
}

int
fbxb_setup(struct fbxb_env *b, const char *name)
{
	int rc;

	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "/tmp/fbxb-%s-XXXXXX", name);
	if (mkdtemp(b->dir) == NULL) {
		fprintf(stderr, "bench: mkdtemp %s: %s\n", b->dir,
		    strerror(errno));
		b->dir[0] = '\0';
		return FBX_EIO;
	}
	snprintf(b->db, sizeof(b->db), "%s/db", b->dir);
	snprintf(b->console, sizeof(b->console), "ipc://%s/console.sock",
	    b->dir);
	snprintf(b->gateway, sizeof(b->gateway), "ipc://%s/gateway.sock",
	    b->dir);
	snprintf(b->events, sizeof(b->events), "ipc://%s/events.sock",
	    b->dir);
	if (keys_init(b) != FBX_OK)
		return FBX_EIO;
	rc = fbx_client_open(b->console, 30000, &b->cli);
	if (rc != FBX_OK)
		fprintf(stderr, "bench: console client: %s\n",
		    fbx_strerror(rc));
	return rc;
}

void
fbxb_teardown(struct fbxb_env *b)
{
	char cmd[400];

	if (b->sim > 0)
		(void)fbxb_sim_stop(b);
	if (b->daemon > 0) {
		(void)fbxb_reap(b->daemon, SIGTERM, 15000);
		b->daemon = 0;
	}
	fbx_client_close(b->cli);
	b->cli = NULL;
	if (b->dir[0] == '\0')
		return;
	if (getenv("FBXB_KEEP") != NULL) {
		fprintf(stderr, "bench: directory kept: %s\n", b->dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", b->dir);
	b->dir[0] = '\0';
}

int
fbxb_call(fbx_client *c, const char *org, struct fbx_console_req *req,
    struct fbx_console_rep *rep)
{
	int rc;

	snprintf(req->org, sizeof(req->org), "%s", org);
	if (req->actor[0] == '\0') {
		const char *who = fbx_client_principal(c);
		snprintf(req->actor, sizeof(req->actor), "%s",
		    who != NULL && who[0] != '\0' ? who : "bench");
	}
	memset(rep, 0, sizeof(*rep));
	rc = fbx_client_call(c, req, rep);
	return rc != FBX_OK ? rc : rep->err;
}

int
fbxb_ping(fbx_client *c, struct fbx_engine_stats *out)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = fbxb_call(c, "bench", &req, &rep);
	if (rc == FBX_OK)
		*out = rep.u.pong;
	fbx_console_rep_free(&rep);
	return rc;
}

int
fbxb_wait_idle(fbx_client *c, int timeout_ms)
{
	int64_t end = fbxb_mono_us() + (int64_t)timeout_ms * 1000;

	while (!fbxb_stop && fbxb_mono_us() < end) {
		struct fbx_engine_stats s;
		if (fbxb_ping(c, &s) == FBX_OK && s.deliveries_queued == 0 &&
		    s.deliveries_inflight == 0)
			return FBX_OK;
		fbxb_sleep_ms(50);
	}
	return FBX_ETIMEOUT;
}

int
fbxb_daemon_start(struct fbxb_env *b, char *const *extra)
{
	char logpath[320];
	char *args[ARGS_MAX];
	int n = 0;

	args[n++] = "--data";
	args[n++] = b->db;
	args[n++] = "--console";
	args[n++] = b->console;
	args[n++] = "--gateway";
	args[n++] = b->gateway;
	for (int i = 0; extra != NULL && extra[i] != NULL && n < ARGS_MAX - 1;
	    i++)
		args[n++] = extra[i];
	/* $FBXB_DAEMON_FLAG: one more flag for every daemon of the run
	 * (e.g. --sync-thread, to measure a build against itself) */
	if (getenv("FBXB_DAEMON_FLAG") != NULL &&
	    getenv("FBXB_DAEMON_FLAG")[0] != '\0' && n < ARGS_MAX - 1)
		args[n++] = getenv("FBXB_DAEMON_FLAG");
	args[n] = NULL;
	snprintf(logpath, sizeof(logpath), "%s/fuseboxd.log", b->dir);
	b->daemon = fbxb_spawn("fuseboxd", logpath, args);
	if (b->daemon < 0) {
		b->daemon = 0;
		return FBX_EUNREACHABLE;
	}
	fbx_client_set_timeout(b->cli, 200);
	for (int i = 0; i < 600 && !fbxb_stop; i++) {
		struct fbx_engine_stats s;
		int st;
		if (fbxb_ping(b->cli, &s) == FBX_OK) {
			fbx_client_set_timeout(b->cli, 30000);
			return FBX_OK;
		}
		if (waitpid(b->daemon, &st, WNOHANG) == b->daemon) {
			kids_del(b->daemon);
			b->daemon = 0;
			fprintf(stderr, "bench: fuseboxd exited (status %d)\n",
			    st);
			fbxb_log_tail(logpath, 10);
			break;
		}
		fbxb_sleep_ms(50);
	}
	fbx_client_set_timeout(b->cli, 30000);
	return FBX_EUNREACHABLE;
}

/* sim_args - the endpoint flags, then the caller's. */
static void
sim_args(struct fbxb_env *b, char *const *args, char **out)
{
	int n = 0;

	out[n++] = "--gateway-endpoint";
	out[n++] = b->gateway;
	out[n++] = "--console-endpoint";
	out[n++] = b->console;
	for (int i = 0; args != NULL && args[i] != NULL && n < ARGS_MAX - 1;
	    i++)
		out[n++] = args[i];
	out[n] = NULL;
}

int
fbxb_sim_run(struct fbxb_env *b, const char *log, char *const *args)
{
	char logpath[320];
	char *av[ARGS_MAX];
	pid_t pid;
	int st;

	sim_args(b, args, av);
	snprintf(logpath, sizeof(logpath), "%s/%s", b->dir, log);
	pid = fbxb_spawn("fusebox-devsim", logpath, av);
	if (pid < 0)
		return -1;
	st = fbxb_wait_exit(pid, INT_MAX);
	if (st < 0) { /* interrupted */
		(void)fbxb_reap(pid, SIGTERM, 5000);
		return -1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench: fusebox-devsim failed (status %d)\n",
		    st);
		fbxb_log_tail(logpath, 10);
		return -1;
	}
	return 0;
}

int
fbxb_sim_start(struct fbxb_env *b, char *const *args, uint32_t gateways)
{
	char logpath[320];
	char *av[ARGS_MAX];

	sim_args(b, args, av);
	snprintf(logpath, sizeof(logpath), "%s/devsim.log", b->dir);
	b->sim = fbxb_spawn("fusebox-devsim", logpath, av);
	if (b->sim < 0) {
		b->sim = 0;
		return FBX_EIO;
	}
	for (int i = 0; i < 1200 && !fbxb_stop; i++) {
		struct fbx_engine_stats s;
		int st;
		if (fbxb_ping(b->cli, &s) == FBX_OK && s.gateways >= gateways)
			return FBX_OK;
		if (waitpid(b->sim, &st, WNOHANG) == b->sim) {
			kids_del(b->sim);
			b->sim = 0;
			fprintf(stderr, "bench: fusebox-devsim exited "
			                "(status %d)\n",
			    st);
			fbxb_log_tail(logpath, 10);
			return FBX_EUNREACHABLE;
		}
		fbxb_sleep_ms(50);
	}
	return FBX_EUNREACHABLE;
}

int
fbxb_sim_stop(struct fbxb_env *b)
{
	int st;

	if (b->sim <= 0)
		return -1;
	st = fbxb_reap(b->sim, SIGTERM, 15000);
	b->sim = 0;
	return st;
}

int
fbxb_submit(fbx_client *c, const char *org, int type, int origin,
    const char *const *ids, size_t nids, const char *idem, uint64_t *id)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command *cmd = &req.u.submit.cmd;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	cmd->type = (uint8_t)type;
	cmd->origin = (uint8_t)origin;
	cmd->ttl_s = 3600;
	if (origin == FBX_ORIGIN_AUTOMATIC)
		snprintf(cmd->reason, sizeof(cmd->reason), "bench");
	if (idem != NULL)
		snprintf(cmd->idem_key, sizeof(cmd->idem_key), "%s", idem);
	if (nids > 0) {
		cmd->target_kind = FBX_TARGET_DEVICES;
		cmd->dev_ids = calloc(nids, sizeof(*cmd->dev_ids));
		if (cmd->dev_ids == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < nids; i++)
			snprintf(cmd->dev_ids[i], sizeof(cmd->dev_ids[i]),
			    "%s", ids[i]);
		cmd->ndev_ids = (uint32_t)nids;
	} else {
		cmd->target_kind = FBX_TARGET_ORG;
	}
	rc = fbxb_call(c, org, &req, &rep);
	if (rc == FBX_OK && id != NULL)
		*id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	free(cmd->dev_ids);
	return rc;
}

long
fbxb_status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t fl = strlen(field);
	long kib = -1;
	FILE *f;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/status");
	else
		snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			kib = strtol(line + fl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

int
fbxb_rss(pid_t pid, struct fbxb_rss *out)
{
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{ "RssAnon:", offsetof(struct fbxb_rss, anon) },
		{ "RssFile:", offsetof(struct fbxb_rss, file) },
		{ "RssShmem:", offsetof(struct fbxb_rss, shmem) },
		{ "VmHWM:", offsetof(struct fbxb_rss, hwm) },
	};
	char path[64], line[256];
	FILE *f;

	out->anon = out->file = out->shmem = out->hwm = -1;
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/status");
	else
		snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]);
		     i++) {
			size_t n = strlen(fields[i].name);
			if (strncmp(line, fields[i].name, n) == 0) {
				*(long *)((char *)out + fields[i].off) =
				    strtol(line + n, NULL, 10);
				break;
			}
		}
	}
	fclose(f);
	return 0;
}

long
fbxb_vmhwm_kib(pid_t pid)
{
	return fbxb_status_kib(pid, "VmHWM");
}

double
fbxb_cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, stime = 0;
	long tck = sysconf(_SC_CLK_TCK);
	size_t n;
	FILE *f;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/stat");
	else
		snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* fields after the command name, which may hold spaces */
	p = strrchr(buf, ')');
	if (p == NULL || tck <= 0 ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu "
	                  "%llu",
	        &ut, &stime) != 2)
		return -1;
	return (double)(ut + stime) * 1000.0 / (double)tck;
}

long long
fbxb_file_size(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -1;
	return (long long)sb.st_size;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double
fbxb_pct(double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	/* nearest rank: the smallest value with at least p% at or below */
	rank = (size_t)((p / 100.0) * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

double
fbxb_median_field(const void *recs, size_t stride, size_t n, size_t off,
    double *col)
{
	for (size_t i = 0; i < n; i++)
		memcpy(&col[i], (const char *)recs + i * stride + off,
		    sizeof(double));
	return fbxb_median(col, n);
}

double
fbxb_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
fbxb_report_get(const char *path, const char *prefix, const char *key,
    uint64_t *out)
{
	char line[4096], pat[128];
	size_t pl = strlen(prefix);
	int rc = FBX_ENOT_FOUND;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return FBX_EIO;
	snprintf(pat, sizeof(pat), " %s=", key);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p;
		if (strncmp(line, prefix, pl) != 0)
			continue;
		/* a key at the start of the line has no leading space */
		if (strncmp(line, pat + 1, strlen(pat) - 1) == 0)
			p = line + strlen(pat) - 1;
		else if ((p = strstr(line, pat)) != NULL)
			p += strlen(pat);
		else
			break;
		*out = strtoull(p, NULL, 10);
		rc = FBX_OK;
		break;
	}
	fclose(f);
	return rc;
}

void
fbxb_log_tail(const char *path, int lines)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", lines, path);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: (no log at %s)\n", path);
}
