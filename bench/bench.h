/*
 * bench.h: what the benchmark programs share: a temporary directory with
 * ipc:// endpoints, starting the real fuseboxd and fusebox-devsim binaries
 * and always stopping them (every child is registered; a signal, an exit
 * or the benchmark's own death takes them down), console calls, clocks,
 * percentiles, peak RSS and the JSON line every benchmark ends with.
 * Benchmarks print figures; nothing here passes or fails on time.
 */
#ifndef FBXB_BENCH_H
#define FBXB_BENCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fbx_client.h"
#include "fbx_proto.h"

/* Set by SIGINT/SIGTERM: every wait loop gives up and cleans up. A second
 * signal kills the registered children at once and exits 130. */
extern volatile sig_atomic_t fbxb_stop;

struct fbxb_env {
	char dir[256];      /* /tmp/fbxb-<name>-XXXXXX */
	char db[300];       /* <dir>/db */
	char console[320];  /* ipc://<dir>/console.sock */
	char gateway[320];  /* ipc://<dir>/gateway.sock */
	char events[320];   /* ipc://<dir>/events.sock */
	char keys[320];     /* <db>/keys: fuseboxd init's key files */
	pid_t daemon;       /* fuseboxd, 0 = not running */
	pid_t sim;          /* the gateway fusebox-devsim, 0 = none */
	fbx_client *cli;
};

/**
 * fbxb_init - install the signal handlers and the exit hook that stop
 * registered children. Call once at the start of main.
 */
void fbxb_init(void);

/**
 * fbxb_bin_dir - where fuseboxd and fusebox-devsim are: $FBX_BIN_DIR, or
 * <directory of this executable>/../dispatcher (the build tree).
 * @return a static string.
 */
const char *fbxb_bin_dir(void);

/**
 * fbxb_setup - make the temporary directory, its endpoints, the store's
 * keys and principals (`fuseboxd init` with principals gw (gateway),
 * rule-engine and attestation-rule (automation); $FUSEBOX_KEY,
 * $FUSEBOX_SERVER_KEY, $FUSEBOX_GATEWAY_KEY and $FUSEBOX_STORM_KEY are
 * set for the children) and a console client (timeout 30 s) with the
 * admin key.
 * @return FBX_OK, FBX_EIO (mkdtemp, init), or a fbx_client_open() error.
 */
int fbxb_setup(struct fbxb_env *b, const char *name);

/**
 * fbxb_client_as - a console client (timeout 30 s) with the key of one of
 * the principals fbxb_setup made (e.g. "rule-engine": automatic origin).
 * @return FBX_OK or a fbx_client_open2() error.
 */
int fbxb_client_as(struct fbxb_env *b, const char *principal,
    fbx_client **out);

/**
 * fbxb_teardown - stop the simulator and the daemon (SIGTERM, then
 * SIGKILL after 15 s), close the client and remove the directory (kept
 * when $FBXB_KEEP is set). Safe on a zeroed or half set-up env.
 */
void fbxb_teardown(struct fbxb_env *b);

/**
 * fbxb_spawn - fork/exec prog from fbxb_bin_dir() (or an absolute path)
 * with stdout and stderr appended to logpath (NULL = /dev/null). The
 * child dies with this process (PR_SET_PDEATHSIG) and is registered
 * until fbxb_reap().
 * @param[in] argv arguments after the program name, NULL-terminated.
 * @return the pid, or -1.
 */
pid_t fbxb_spawn(const char *prog, const char *logpath, char *const *argv);

/**
 * fbxb_reap - send sig (0 = none) to pid and wait up to timeout_ms for it,
 * then SIGKILL it. Unregisters the pid.
 * @return the wait status, or -1.
 */
int fbxb_reap(pid_t pid, int sig, int timeout_ms);

/**
 * fbxb_wait_exit - wait up to timeout_ms for a child to exit on its own.
 * @return the wait status (child reaped and unregistered), or -1 on
 * timeout or fbxb_stop (child still running).
 */
int fbxb_wait_exit(pid_t pid, int timeout_ms);

/**
 * fbxb_daemon_start - start fuseboxd on the env's store and endpoints
 * (extra flags NULL-terminated, may be NULL) and wait until it answers a
 * ping. @return FBX_OK or FBX_EUNREACHABLE.
 */
int fbxb_daemon_start(struct fbxb_env *b, char *const *extra);

/**
 * fbxb_sim_run - run fusebox-devsim against the env's endpoints to
 * completion (e.g. --enroll-only), output to <dir>/<log>.
 * @return its exit status, or -1.
 */
int fbxb_sim_run(struct fbxb_env *b, const char *log, char *const *args);

/**
 * fbxb_sim_start - start fusebox-devsim as the env's gateway and wait up
 * to 60 s until the daemon counts `gateways` connected gateways.
 * @return FBX_OK, FBX_EUNREACHABLE (no connection), FBX_EIO (spawn).
 */
int fbxb_sim_start(struct fbxb_env *b, char *const *args, uint32_t gateways);

/**
 * fbxb_sim_stop - SIGTERM the gateway simulator (it answers what it holds,
 * says BYE and writes its report) and reap it. @return the wait status.
 */
int fbxb_sim_stop(struct fbxb_env *b);

/**
 * fbxb_call - one console call for org; actor the client key's principal
 * (or "bench" without one) unless set.
 * @return rep->err when a reply came, else the transport error. The reply
 * must be freed with fbx_console_rep_free() in every case.
 */
int fbxb_call(fbx_client *c, const char *org, struct fbx_console_req *req,
    struct fbx_console_rep *rep);

/**
 * fbxb_ping - the daemon's statistics. @return FBX_OK or an error.
 */
int fbxb_ping(fbx_client *c, struct fbx_engine_stats *out);

/**
 * fbxb_wait_idle - wait until nothing is queued or in flight (held and
 * pending deliveries do not count) or timeout_ms passes.
 * @return FBX_OK or FBX_ETIMEOUT.
 */
int fbxb_wait_idle(fbx_client *c, int timeout_ms);

/**
 * fbxb_submit - submit a command for org. ids (nids) for a device target,
 * else the whole organisation. @return the engine's verdict; on FBX_OK
 * *id is the command id.
 */
int fbxb_submit(fbx_client *c, const char *org, int type, int origin,
    const char *const *ids, size_t nids, const char *idem, uint64_t *id);

/** fbxb_now_ms - wall clock (CLOCK_REALTIME) in ms, as the engine's. */
int64_t fbxb_now_ms(void);
/** fbxb_mono_us - CLOCK_MONOTONIC in µs. */
int64_t fbxb_mono_us(void);
/** fbxb_sleep_ms - sleep, restarting after signals unless fbxb_stop. */
void fbxb_sleep_ms(int ms);

/**
 * fbxb_vmhwm_kib - peak resident set (VmHWM) of pid, 0 = this process.
 * @return KiB, or -1 if it cannot be read.
 */
long fbxb_vmhwm_kib(pid_t pid);

/**
 * fbxb_status_kib - one "Name:  N kB" field of /proc/PID/status (e.g.
 * "RssAnon", "RssFile"), 0 = this process. @return KiB, or -1.
 */
long fbxb_status_kib(pid_t pid, const char *field);

/* The resident set of a process by kind, in KiB (-1 = not read). */
struct fbxb_rss {
	long anon;  /* RssAnon: heap, stacks, anonymous maps */
	long file;  /* RssFile: file-backed pages mapped (LMDB's data.mdb) */
	long shmem; /* RssShmem: shared memory (a store on tmpfs lands here) */
	long hwm;   /* VmHWM: peak of the whole resident set, process life */
};

/**
 * fbxb_rss - RssAnon, RssFile, RssShmem and VmHWM of pid (0 = this
 * process) in one read of /proc/PID/status.
 * @return 0, or -1 if the file cannot be read (fields then -1).
 */
int fbxb_rss(pid_t pid, struct fbxb_rss *out);

/**
 * fbxb_cpu_ms - user + system CPU time of pid (0 = this process, all
 * threads) in ms. @return -1 if it cannot be read.
 */
double fbxb_cpu_ms(pid_t pid);

/** fbxb_file_size - size of a file in bytes, -1 if it cannot be read. */
long long fbxb_file_size(const char *path);

/**
 * fbxb_pct - the p-th percentile (0..100, nearest rank) of v[0..n), which
 * is sorted in place. @return 0 for n == 0.
 */
double fbxb_pct(double *v, size_t n, double p);

/** fbxb_median - median of v[0..n) (sorted in place); 0 for n == 0. */
double fbxb_median(double *v, size_t n);

/** fbxb_median_field - median of the double at byte offset off in each of
 * n records of size stride starting at recs; col is scratch for n values. */
double fbxb_median_field(const void *recs, size_t stride, size_t n,
    size_t off, double *col);

/**
 * fbxb_report_get - a numeric field of one line of a devsim report: the
 * first line starting with `prefix` (e.g. "org=org-001 ") and its
 * `key=` value. @return FBX_OK, FBX_ENOT_FOUND, FBX_EIO.
 */
int fbxb_report_get(const char *path, const char *prefix, const char *key,
    uint64_t *out);

/** fbxb_log_tail - copy the last lines of a log to stderr (diagnosis). */
void fbxb_log_tail(const char *path, int lines);

#endif
