/*
 * fault_shim.c: an LD_PRELOAD library that makes the store's disk writes
 * fail on purpose, so a test can check what the engine does when a commit
 * fails in the middle of a fan-out. It wraps the calls LMDB 0.9.24 makes
 * (pwrite/pwrite64 and writev for pages, fdatasync/fsync, pwrite on a
 * second descriptor opened O_DSYNC for the meta page, write, msync) and
 * fails chosen ones with a chosen errno; every other call goes through.
 *
 * Configured by environment variables, read once:
 *   FBX_FAULT_OPS    comma list of: fdatasync fsync msync pwrite writev
 *                    write meta (default fdatasync). pwrite, writev and
 *                    write match only descriptors opened without O_DSYNC;
 *                    meta matches any write to a descriptor opened with
 *                    O_DSYNC/O_SYNC (LMDB's meta page) and a pwrite into
 *                    the first two pages of the file (the meta pages,
 *                    written on the data descriptor with MDB_NOMETASYNC,
 *                    as the engine's syncer mode does). msync has no
 *                    descriptor and ignores FBX_FAULT_PATH.
 *   FBX_FAULT_PATH   substring of the file's path (readlink of
 *                    /proc/self/fd/N, cached per descriptor until close);
 *                    default data.mdb
 *   FBX_FAULT_ARM    if set, nothing is counted or failed until this file
 *                    exists (checked on each matching call; then latched)
 *   FBX_FAULT_AFTER  matching calls that pass once armed (default 0):
 *                    with N, call N+1 is the first to fail
 *   FBX_FAULT_COUNT  matching calls failed after those (default 1; 0 =
 *                    every later call); then calls pass again
 *   FBX_FAULT_ERRNO  EIO, ENOSPC, EDQUOT or a number (default EIO)
 *   FBX_FAULT_LOG    if set, one line per failed call is appended here
 *   FBX_FAULT_THREAD only calls from the thread of this name count (its
 *                    comm, e.g. fbx-sync: the engine's syncer thread)
 *   FBX_FAULT_DELAY_MS  if > 0, the chosen calls do not fail: they stall
 *                    this long and then go through (a slow disk, a
 *                    turn that holds the loop)
 *   FBX_FAULT_DELAY_FAIL  1: with FBX_FAULT_DELAY_MS, the chosen calls
 *                    stall and then fail (a dying disk's slow errors)
 * With none of them set it fails the first fdatasync of data.mdb once:
 * preload it only where a fault is wanted. Counting is under a mutex, as
 * ZeroMQ's threads write too (to other descriptors, which never count).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SHIM_EXPORT __attribute__((visibility("default")))

enum op {
	OP_FDATASYNC,
	OP_FSYNC,
	OP_MSYNC,
	OP_PWRITE,
	OP_WRITEV,
	OP_WRITE,
	OP_META,
	OP_COUNT
};

static const char *const op_names[OP_COUNT] =
    { "fdatasync", "fsync", "msync", "pwrite", "writev", "write", "meta" };

/* per-descriptor cache: 0 unknown, 1 other file, 2 matching file,
 * 3 matching file opened O_DSYNC */
#define FD_CACHE_MAX 65536
enum { FD_UNKNOWN = 0, FD_OTHER = 1, FD_MATCH = 2, FD_MATCH_SYNC = 3 };
static _Atomic unsigned char fd_cache[FD_CACHE_MAX];

static struct {
	unsigned ops; /* bit per enum op */
	char path[256];
	char arm[512];
	char log[512];
	char thread[16]; /* "" = any thread */
	uint64_t after, count;
	uint64_t delay_ms; /* > 0: chosen calls stall this long instead */
	uint64_t delay_fail; /* and then fail all the same */
	int err;
} cfg;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int armed;
static uint64_t seen, failed;

typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*sync_fn)(int);
typedef int (*msync_fn)(void *, size_t, int);
typedef int (*close_fn)(int);

/* the next definitions (libc's, or a sanitizer's interceptors) */
static struct {
	pwrite_fn pwrite;
	pwrite64_fn pwrite64;
	write_fn write;
	writev_fn writev;
	sync_fn fdatasync, fsync;
	msync_fn msync;
	close_fn close;
} next;

static uint64_t
env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? strtoull(v, NULL, 10) : def;
}

/* init - read the configuration and find the wrapped functions, once. */
static void
init(void)
{
	const char *v;

	next.pwrite = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
	next.pwrite64 = (pwrite64_fn)dlsym(RTLD_NEXT, "pwrite64");
	next.write = (write_fn)dlsym(RTLD_NEXT, "write");
	next.writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
	next.fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
	next.fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
	next.msync = (msync_fn)dlsym(RTLD_NEXT, "msync");
	next.close = (close_fn)dlsym(RTLD_NEXT, "close");

	v = getenv("FBX_FAULT_OPS");
	if (v == NULL || v[0] == '\0')
		v = "fdatasync";
	for (int i = 0; i < OP_COUNT; i++) {
		size_t n = strlen(op_names[i]);
		for (const char *p = v; (p = strstr(p, op_names[i])) != NULL;
		     p += n) {
			int start = p == v || p[-1] == ',';
			int end = p[n] == '\0' || p[n] == ',';
			if (start && end)
				cfg.ops |= 1u << i;
		}
	}
	v = getenv("FBX_FAULT_PATH");
	snprintf(cfg.path, sizeof(cfg.path), "%s",
	    v != NULL && v[0] != '\0' ? v : "data.mdb");
	v = getenv("FBX_FAULT_ARM");
	snprintf(cfg.arm, sizeof(cfg.arm), "%s", v != NULL ? v : "");
	v = getenv("FBX_FAULT_LOG");
	snprintf(cfg.log, sizeof(cfg.log), "%s", v != NULL ? v : "");
	v = getenv("FBX_FAULT_THREAD");
	snprintf(cfg.thread, sizeof(cfg.thread), "%s", v != NULL ? v : "");
	cfg.after = env_u64("FBX_FAULT_AFTER", 0);
	cfg.count = env_u64("FBX_FAULT_COUNT", 1);
	cfg.delay_ms = env_u64("FBX_FAULT_DELAY_MS", 0);
	cfg.delay_fail = env_u64("FBX_FAULT_DELAY_FAIL", 0);
	cfg.err = EIO;
	v = getenv("FBX_FAULT_ERRNO");
	if (v != NULL && strcmp(v, "ENOSPC") == 0)
		cfg.err = ENOSPC;
	else if (v != NULL && strcmp(v, "EDQUOT") == 0)
		cfg.err = EDQUOT;
	else if (v != NULL && v[0] >= '1' && v[0] <= '9')
		cfg.err = atoi(v);
	armed = cfg.arm[0] == '\0';
}

/* fd_kind - whether fd is a file the fault is aimed at, cached. */
static int
fd_kind(int fd)
{
	char link[64], target[4096];
	ssize_t n;
	int kind, fl;

	if (fd < 0)
		return FD_OTHER;
	if (fd < FD_CACHE_MAX) {
		kind = atomic_load(&fd_cache[fd]);
		if (kind != FD_UNKNOWN)
			return kind;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	kind = FD_OTHER;
	if (n > 0) {
		target[n] = '\0';
		if (strstr(target, cfg.path) != NULL) {
			fl = fcntl(fd, F_GETFL);
			kind = fl >= 0 && (fl & O_DSYNC) ? FD_MATCH_SYNC
			                                 : FD_MATCH;
		}
	}
	if (fd < FD_CACHE_MAX)
		atomic_store(&fd_cache[fd], (unsigned char)kind);
	return kind;
}

static void
log_failure(const char *what, int fd)
{
	char line[160];
	int lfd, len;

	if (cfg.log[0] == '\0')
		return;
	len = snprintf(line, sizeof(line),
	    "pid=%ld op=%s fd=%d errno=%d failure=%llu\n", (long)getpid(),
	    what, fd, cfg.err, (unsigned long long)failed);
	lfd = open(cfg.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (lfd < 0)
		return;
	if (len > 0)
		(void)next.write(lfd, line, (size_t)len);
	next.close(lfd);
}

/* should_fail_at - count a call of op on fd at file offset off (-1: not
 * a positioned write); @return 1 when it is to fail (errno is then set),
 * 0 when it goes through. A write op on a matching O_DSYNC descriptor,
 * or a pwrite into the first two pages, counts as meta instead. */
static int
should_fail_at(enum op op, int fd, off_t off)
{
	int is_write = op == OP_PWRITE || op == OP_WRITEV || op == OP_WRITE;
	int kind = FD_OTHER, fail = 0;

	pthread_once(&init_once, init);
	if (!(cfg.ops & (1u << op)) &&
	    !(is_write && (cfg.ops & (1u << OP_META))))
		return 0; /* the common case: no descriptor lookup */
	if (op != OP_MSYNC) {
		kind = fd_kind(fd);
		if (kind == FD_OTHER)
			return 0;
		if (is_write && (kind == FD_MATCH_SYNC ||
		                    (op == OP_PWRITE && off >= 0 &&
		                        off < 2 * (off_t)sysconf(_SC_PAGESIZE))))
			op = OP_META;
		if (!(cfg.ops & (1u << op)))
			return 0;
	}
	if (cfg.thread[0] != '\0') {
		char comm[17] = "";
		if (prctl(PR_GET_NAME, comm, 0, 0, 0) != 0 ||
		    strcmp(comm, cfg.thread) != 0)
			return 0;
	}
	pthread_mutex_lock(&lock);
	if (!armed && access(cfg.arm, F_OK) == 0)
		armed = 1;
	if (armed) {
		if (seen >= cfg.after &&
		    (cfg.count == 0 || seen < cfg.after + cfg.count)) {
			fail = 1;
			failed++;
			log_failure(op_names[op], fd);
		}
		seen++;
	}
	pthread_mutex_unlock(&lock);
	if (fail && cfg.delay_ms > 0) {
		/* a stall: the call goes through late, or fails late with
		 * FBX_FAULT_DELAY_FAIL */
		struct timespec ts = { (time_t)(cfg.delay_ms / 1000),
			(long)(cfg.delay_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		if (!cfg.delay_fail)
			return 0;
	}
	if (fail)
		errno = cfg.err;
	return fail;
}

static int
should_fail(enum op op, int fd)
{
	return should_fail_at(op, fd, -1);
}

SHIM_EXPORT ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (should_fail_at(OP_PWRITE, fd, off))
		return -1;
	return next.pwrite(fd, buf, n, off);
}

SHIM_EXPORT ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	if (should_fail_at(OP_PWRITE, fd, (off_t)off))
		return -1;
	return next.pwrite64(fd, buf, n, off);
}

SHIM_EXPORT ssize_t
write(int fd, const void *buf, size_t n)
{
	if (should_fail(OP_WRITE, fd))
		return -1;
	return next.write(fd, buf, n);
}

SHIM_EXPORT ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	if (should_fail(OP_WRITEV, fd))
		return -1;
	return next.writev(fd, iov, cnt);
}

SHIM_EXPORT int
fdatasync(int fd)
{
	if (should_fail(OP_FDATASYNC, fd))
		return -1;
	return next.fdatasync(fd);
}

SHIM_EXPORT int
fsync(int fd)
{
	if (should_fail(OP_FSYNC, fd))
		return -1;
	return next.fsync(fd);
}

SHIM_EXPORT int
msync(void *addr, size_t len, int flags)
{
	if (should_fail(OP_MSYNC, -1))
		return -1;
	return next.msync(addr, len, flags);
}

/* close forgets what the descriptor was: its number will be reused */
SHIM_EXPORT int
close(int fd)
{
	pthread_once(&init_once, init);
	if (fd >= 0 && fd < FD_CACHE_MAX)
		atomic_store(&fd_cache[fd], FD_UNKNOWN);
	return next.close(fd);
}
