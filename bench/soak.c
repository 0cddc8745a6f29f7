/*
 * soak.c: bench_soak, the compressed soak of issue 8 ("flat over years"),
 * against incident 2 of ../shared/incidents.md (a server that stopped
 * after ~60 days at 1,500 devices). It drives the real fuseboxd, at full
 * durability and with a retention of a few simulated days, with the load
 * of N devices x C commands per device per day compressed in time: a
 * simulated day is N x C single-device commands, submitted as fast as K
 * console clients get them acknowledged, while a gateway simulator answers
 * every delivery and a query client runs `audit list --since`, `audit
 * verify` and `export --since` a few times per simulated day. It samples
 * the daemon's anonymous memory, open fds, LMDB reader slots in use,
 * data.mdb size, ping round trips and the slow turns the daemon logs, and
 * prints each figure's least-squares slope per million commands, the
 * longest turn and the query latencies. It prints figures; it never
 * passes or fails on time (exit status 1 only if the run itself broke).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define CLIENTS_MAX 128
#define QKINDS 3 /* audit list, audit verify, export */
#define EXPORT_PAGES_MAX 4096
#define PROBE_MS 50
#define SYNC_MS 100

struct opts {
	uint32_t devices, orgs, per_day, days, clients, queries_per_day;
	uint32_t samples_per_day, retention_s, budget_s;
	const char *mdb_stat;
};

static const char *const qnames[QKINDS] = { "audit list --since",
	"audit verify", "export --since" };

/* one sample of the daemon */
struct sample {
	double mcmd;      /* commands acknowledged, millions */
	double day;       /* simulated days covered */
	double t_s;       /* seconds since the load started */
	double anon_mib;  /* RssAnon */
	double fds;       /* entries of /proc/PID/fd */
	double readers;   /* LMDB reader slots in use (mdb_stat -r) */
	double mdb_mib;   /* data.mdb size */
	double ping_ms;   /* longest ping round trip since the last sample */
	double turn_ms;   /* longest turn logged since the last sample */
};

struct series {
	double *v;
	size_t n, cap;
};

/* one query: when (millions of commands) and how long */
struct qrec {
	double mcmd, ms;
	double call_ms; /* the longest single call of it */
	uint32_t pages; /* calls: export pages, verify slices */
	int err;
};

struct shared {
	const struct opts *o;
	const char *console;
	atomic_uint_fast64_t next;  /* next command index to issue */
	atomic_uint_fast64_t limit; /* commands to issue in all */
	atomic_uint_fast64_t acked; /* acknowledged OK */
	atomic_uint_fast64_t errors, retries;
	atomic_int done;            /* submitters finished */
	atomic_int quit;            /* stop the prober and the query thread */
	/* ping prober: longest round trip since the sampler last took it */
	atomic_uint_fast64_t ping_max_us, ping_all_max_us, pings;
	/* the disk's floor: fdatasync of one 4 KiB write beside the store */
	const char *sync_path;
	atomic_uint_fast64_t sync_max_us, syncs, syncs_500ms, syncs_1s;
	pthread_mutex_t mu; /* guards q */
	struct qrec *q[QKINDS];
	size_t nq[QKINDS], capq[QKINDS];
	int last_err;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_soak [--devices N] [--orgs M] [--per-device-day C]\n"
	    "                  [--days D] [--budget-s S] [--retention-s R]\n"
	    "                  [--clients K] [--queries-per-day Q]\n"
	    "                  [--samples-per-day P] [--mdb-stat PATH]\n"
	    "  --devices N          fleet (default 1500, incident 2)\n"
	    "  --orgs M             organisations (default 1)\n"
	    "  --per-device-day C   commands per device per day (default 20)\n"
	    "  --days D             simulated days (default 365)\n"
	    "  --budget-s S         stop at the end of the simulated day in\n"
	    "                       which S s of load have passed (default 0 =\n"
	    "                       run all D days); the days covered are\n"
	    "                       printed\n"
	    "  --retention-s R      fuseboxd --retention (default 10 s, a few\n"
	    "                       simulated days at this machine's pace; the\n"
	    "                       summary says how many)\n"
	    "  --clients K          console clients submitting (default 32)\n"
	    "  --queries-per-day Q  audit list / verify / export in turn, Q\n"
	    "                       per simulated day (default 3)\n"
	    "  --samples-per-day P  daemon samples per simulated day (default 2)\n"
	    "  --mdb-stat PATH      mdb_stat for the reader count (default\n"
	    "                       mdb_stat in PATH; missing = not sampled)\n");
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "devices", required_argument, NULL, 'n' },
		{ "orgs", required_argument, NULL, 'o' },
		{ "per-device-day", required_argument, NULL, 'c' },
		{ "days", required_argument, NULL, 'd' },
		{ "budget-s", required_argument, NULL, 'b' },
		{ "retention-s", required_argument, NULL, 'r' },
		{ "clients", required_argument, NULL, 'k' },
		{ "queries-per-day", required_argument, NULL, 'q' },
		{ "samples-per-day", required_argument, NULL, 's' },
		{ "mdb-stat", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->devices = 1500;
	o->orgs = 1;
	o->per_day = 20;
	o->days = 365;
	o->retention_s = 10;
	o->clients = 32;
	o->queries_per_day = 3;
	o->samples_per_day = 2;
	o->mdb_stat = "mdb_stat";
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		uint32_t v = optarg ? (uint32_t)strtoul(optarg, NULL, 10) : 0;
		switch (c) {
		case 'n': o->devices = v; break;
		case 'o': o->orgs = v; break;
		case 'c': o->per_day = v; break;
		case 'd': o->days = v; break;
		case 'b': o->budget_s = v; break;
		case 'r': o->retention_s = v; break;
		case 'k': o->clients = v; break;
		case 'q': o->queries_per_day = v; break;
		case 's': o->samples_per_day = v; break;
		case 'm': o->mdb_stat = optarg; break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (o->devices == 0 || o->orgs == 0 || o->orgs > 999 ||
	    o->devices < o->orgs || o->per_day == 0 || o->days == 0 ||
	    o->clients == 0 || o->clients > CLIENTS_MAX ||
	    o->samples_per_day == 0 || o->retention_s == 0) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* cmds_per_day - N x C: one simulated day of commands. */
static uint64_t
cmds_per_day(const struct opts *o)
{
	return (uint64_t)o->devices * o->per_day;
}

/* device_of - command i goes to device i mod N; devsim numbers devices
 * per organisation, spreading N over M as evenly as it can. */
static void
device_of(const struct opts *o, uint64_t i, char *org, size_t olen,
    char *dev, size_t dlen)
{
	uint32_t g = (uint32_t)(i % o->devices);
	uint32_t per = o->devices / o->orgs, extra = o->devices % o->orgs;
	uint32_t org_i = 0, start = 0;

	for (org_i = 0; org_i < o->orgs; org_i++) {
		uint32_t cnt = per + (org_i < extra ? 1 : 0);
		if (g < start + cnt)
			break;
		start += cnt;
	}
	snprintf(org, olen, "org-%03" PRIu32, org_i + 1);
	snprintf(dev, dlen, "org-%03" PRIu32 "-d%06" PRIu32, org_i + 1,
	    g - start);
}

/* submitter - issue commands until the shared limit: single device,
 * operator origin, a type in turn, one idempotency key each; a timed-out
 * submit is sent again with the same key. */
static void *
submitter(void *arg)
{
	static const int types[] = { FBX_CMD_QUERY, FBX_CMD_SET_POLICY,
		FBX_CMD_INSTALL_APP, FBX_CMD_OS_UPDATE };
	struct shared *s = arg;
	fbx_client *c = NULL;

	if (fbx_client_open(s->console, 30000, &c) != FBX_OK) {
		atomic_fetch_add(&s->errors, 1);
		return NULL;
	}
	while (!fbxb_stop) {
		uint64_t i = atomic_fetch_add(&s->next, 1);
		char org[FBX_ID_MAX + 1], dev[FBX_ID_MAX + 1];
		char idem[FBX_ID_MAX + 1];
		const char *ids[1] = { dev };
		uint64_t id = 0;
		int rc = FBX_ETIMEOUT;

		if (i >= atomic_load(&s->limit))
			break;
		device_of(s->o, i, org, sizeof(org), dev, sizeof(dev));
		snprintf(idem, sizeof(idem), "soak-%" PRIu64, i);
		for (int tries = 0; tries < 20 && !fbxb_stop; tries++) {
			rc = fbxb_submit(c, org, types[i % 4],
			    FBX_ORIGIN_OPERATOR, ids, 1, idem, &id);
			if (rc != FBX_ETIMEOUT && rc != FBX_EBUSY)
				break;
			atomic_fetch_add(&s->retries, 1);
		}
		if (rc == FBX_OK) {
			atomic_fetch_add(&s->acked, 1);
		} else {
			atomic_fetch_add(&s->errors, 1);
			s->last_err = rc;
		}
	}
	fbx_client_close(c);
	return NULL;
}

/* prober - a ping every PROBE_MS: a reply waits for the turn under way,
 * so the round trip bounds the longest turn from below between the
 * daemon's slow-turn warnings. */
static void *
prober(void *arg)
{
	struct shared *s = arg;
	fbx_client *c = NULL;

	if (fbx_client_open(s->console, 120000, &c) != FBX_OK)
		return NULL;
	while (!atomic_load(&s->quit) && !fbxb_stop) {
		struct fbx_engine_stats st;
		int64_t t0 = fbxb_mono_us();
		uint64_t us, m;
		if (fbxb_ping(c, &st) == FBX_OK) {
			us = (uint64_t)(fbxb_mono_us() - t0);
			m = atomic_load(&s->ping_max_us);
			while (us > m &&
			    !atomic_compare_exchange_weak(&s->ping_max_us, &m,
			        us))
				;
			m = atomic_load(&s->ping_all_max_us);
			while (us > m &&
			    !atomic_compare_exchange_weak(&s->ping_all_max_us,
			        &m, us))
				;
			atomic_fetch_add(&s->pings, 1);
		}
		fbxb_sleep_ms(PROBE_MS);
	}
	fbx_client_close(c);
	return NULL;
}

/* syncer - the disk's floor under the daemon: every SYNC_MS, what a
 * durable LMDB commit does at the least, two 4 KiB pwrites each followed
 * by fdatasync (data pages, then the meta page), on a file in the data
 * directory's file system. A turn that commits cannot be shorter than
 * this on the same disk at the same moment. */
static void *
syncer(void *arg)
{
	struct shared *s = arg;
	char page[4096];
	int fd = open(s->sync_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0) {
		fprintf(stderr, "soak: %s: %s (disk floor not measured)\n",
		    s->sync_path, strerror(errno));
		return NULL;
	}
	memset(page, 'f', sizeof(page));
	while (!atomic_load(&s->quit) && !fbxb_stop) {
		int64_t t0 = fbxb_mono_us();
		uint64_t us, m;
		/* as an LMDB commit: data pages, fdatasync, meta page,
		 * fdatasync */
		if (pwrite(fd, page, sizeof(page), 4096) !=
		        (ssize_t)sizeof(page) ||
		    fdatasync(fd) != 0 ||
		    pwrite(fd, page, sizeof(page), 0) !=
		        (ssize_t)sizeof(page) ||
		    fdatasync(fd) != 0)
			break;
		us = (uint64_t)(fbxb_mono_us() - t0);
		m = atomic_load(&s->sync_max_us);
		while (us > m &&
		    !atomic_compare_exchange_weak(&s->sync_max_us, &m, us))
			;
		atomic_fetch_add(&s->syncs, 1);
		if (us > 500000)
			atomic_fetch_add(&s->syncs_500ms, 1);
		if (us > 1000000)
			atomic_fetch_add(&s->syncs_1s, 1);
		fbxb_sleep_ms(SYNC_MS);
	}
	close(fd);
	(void)unlink(s->sync_path);
	return NULL;
}

static void
q_add(struct shared *s, int kind, double mcmd, double ms, double call_ms,
    uint32_t pages, int err)
{
	pthread_mutex_lock(&s->mu);
	if (s->nq[kind] == s->capq[kind]) {
		size_t ncap = s->capq[kind] ? s->capq[kind] * 2 : 256;
		struct qrec *v = realloc(s->q[kind], ncap * sizeof(*v));
		if (v == NULL)
			goto out;
		s->q[kind] = v;
		s->capq[kind] = ncap;
	}
	s->q[kind][s->nq[kind]++] =
	    (struct qrec){ mcmd, ms, call_ms, pages, err };
out:
	pthread_mutex_unlock(&s->mu);
}

/* call_max - keep the longest single call (ms) of a query. */
static void
call_max(double *max, int64_t t0_us)
{
	double ms = (double)(fbxb_mono_us() - t0_us) / 1000.0;

	if (ms > *max)
		*max = ms;
}

/* run_query - one query of kind k for org, covering since_ms onwards:
 * every page (export) or slice (verify) of it. @return FBX_OK or the
 * first error; *pages = calls made, *call_ms = the longest call. */
static int
run_query(fbx_client *c, int k, const char *org, int64_t since_ms,
    uint32_t *pages, double *call_ms)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t cursor = 0;
	int64_t t0 = fbxb_mono_us();
	int rc;

	*pages = 1;
	*call_ms = 0;
	memset(&req, 0, sizeof(req));
	if (k == 0) {
		req.kind = FBX_CREQ_AUDIT_LIST;
		req.u.audit_list.since_ms = since_ms;
		req.u.audit_list.limit = 1000;
		rc = fbxb_call(c, org, &req, &rep);
		fbx_console_rep_free(&rep);
		call_max(call_ms, t0);
		return rc;
	}
	*pages = 0;
	if (k == 1) {
		/* incremental, as `fuseboxctl audit verify`: slices from the
		 * engine's checkpoint until it says complete */
		int complete = 0;
		do {
			int64_t c0 = fbxb_mono_us();
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_AUDIT_VERIFY;
			req.u.audit_verify.incremental = 1;
			rc = fbxb_call(c, org, &req, &rep);
			if (rc == FBX_OK && rep.u.verify.broken_at != 0)
				rc = FBX_ECORRUPT;
			complete = rc == FBX_OK && rep.u.verify.complete;
			fbx_console_rep_free(&rep);
			call_max(call_ms, c0);
			(*pages)++;
		} while (rc == FBX_OK && !complete &&
		    *pages < EXPORT_PAGES_MAX);
		return rc;
	}
	do {
		int64_t c0 = fbxb_mono_us();
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_EXPORT;
		req.u.export_.since_ms = since_ms;
		req.u.export_.cursor = cursor;
		rc = fbxb_call(c, org, &req, &rep);
		cursor = rc == FBX_OK ? rep.u.export_.next_cursor : 0;
		fbx_console_rep_free(&rep);
		call_max(call_ms, c0);
		(*pages)++;
	} while (rc == FBX_OK && cursor != 0 && *pages < EXPORT_PAGES_MAX);
	return rc;
}

/* querier - Q queries per simulated day, spread over the day by
 * acknowledged commands; each covers the current simulated day. */
static void *
querier(void *arg)
{
	struct shared *s = arg;
	const struct opts *o = s->o;
	uint64_t per_day = cmds_per_day(o);
	fbx_client *c = NULL;
	int64_t day_start_ms = fbxb_now_ms();
	uint64_t day = 0;
	uint32_t j = 0, n = 0;

	if (o->queries_per_day == 0 ||
	    fbx_client_open(s->console, 600000, &c) != FBX_OK)
		return NULL;
	while (!atomic_load(&s->quit) && !fbxb_stop) {
		uint64_t at = day * per_day +
		    (2 * (uint64_t)j + 1) * per_day / (2 * o->queries_per_day);
		uint64_t acked = atomic_load(&s->acked);
		char org[FBX_ID_MAX + 1];
		uint32_t pages = 0;
		double call_ms = 0;
		int64_t t0;
		int rc, k;

		if (acked >= (day + 1) * per_day) {
			/* a new day (queries left over are skipped, not
			 * bunched up) */
			day = acked / per_day;
			j = 0;
			day_start_ms = fbxb_now_ms();
			continue;
		}
		if (acked < at || atomic_load(&s->done)) {
			fbxb_sleep_ms(5);
			continue;
		}
		k = (int)(n % QKINDS);
		snprintf(org, sizeof(org), "org-%03" PRIu32,
		    1 + (n / QKINDS) % o->orgs);
		t0 = fbxb_mono_us();
		rc = run_query(c, k, org, day_start_ms, &pages, &call_ms);
		q_add(s, k, (double)acked / 1e6,
		    (double)(fbxb_mono_us() - t0) / 1000.0, call_ms, pages,
		    rc);
		if (rc != FBX_OK)
			fprintf(stderr, "soak: %s: %s\n", qnames[k],
			    fbx_strerror(rc));
		j++;
		n++;
	}
	fbx_client_close(c);
	return NULL;
}

/* count_fds - entries of /proc/PID/fd, -1 if unreadable. */
static long
count_fds(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	long n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* count_readers - reader slots in use in the environment at dir, from
 * `mdb_stat -r` (one line per slot after the "pid thread txnid" header,
 * or "(no active readers)"; mdb_stat's own open takes no slot for -r).
 * @return the count, or -1 when mdb_stat is unavailable. */
static long
count_readers(const char *mdb_stat, const char *dir)
{
	char cmd[700], line[256];
	FILE *p;
	long n = 0;
	int in_table = 0, seen = 0;

	snprintf(cmd, sizeof(cmd), "%s -r '%s' 2>/dev/null", mdb_stat, dir);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	while (fgets(line, sizeof(line), p) != NULL) {
		const char *q = line;
		while (*q == ' ')
			q++;
		if (strncmp(q, "Reader Table Status", 19) == 0)
			seen = 1;
		if (strncmp(q, "pid", 3) == 0) {
			in_table = 1;
			continue;
		}
		if (strncmp(q, "(no active readers)", 19) == 0)
			in_table = 0;
		if (in_table && isdigit((unsigned char)*q))
			n++;
	}
	/* mdb_stat -r exits 1 even when it printed the table */
	(void)pclose(p);
	return seen ? n : -1;
}

/* The longest logged turn of the run and where its time went. */
static double worst_turn_ms, worst_work_ms, worst_commit_ms, worst_send_ms;
/* the engine's own part: the most work (not commit) of any logged turn */
static double most_work_ms;

/* log_turns - read the daemon log from *off on; @return the longest
 * turn (ms) among its "turn: ... work W us, commit C us, send S us"
 * warnings, 0 if none; counts them in *nturns. */
static double
log_turns(const char *path, long *off, uint64_t *nturns)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	double max = 0;

	if (f == NULL)
		return 0;
	if (fseek(f, *off, SEEK_SET) != 0) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *w = strstr(line, " turn: ");
		long long wk, cm, sd;
		const char *p;
		if (strchr(line, '\n') == NULL && !feof(f))
			continue;
		if (w == NULL || (p = strstr(w, "work ")) == NULL)
			continue;
		if (sscanf(p, "work %lld us, commit %lld us, send %lld us",
		        &wk, &cm, &sd) != 3)
			continue;
		(*nturns)++;
		if ((double)wk / 1000.0 > most_work_ms)
			most_work_ms = (double)wk / 1000.0;
		if ((double)(wk + cm + sd) / 1000.0 > max)
			max = (double)(wk + cm + sd) / 1000.0;
		if (max > worst_turn_ms) {
			worst_turn_ms = max;
			worst_work_ms = (double)wk / 1000.0;
			worst_commit_ms = (double)cm / 1000.0;
			worst_send_ms = (double)sd / 1000.0;
		}
	}
	*off = ftell(f);
	fclose(f);
	return max;
}

/* slope - least-squares slope of y over x for n points (y per unit x);
 * samples with y < 0 (not read) are left out. */
static double
slope(const struct sample *v, size_t n, size_t yoff)
{
	double sx = 0, sy = 0, sxx = 0, sxy = 0, m = 0;

	for (size_t i = 0; i < n; i++) {
		double x = v[i].mcmd;
		double y = *(const double *)((const char *)&v[i] + yoff);
		if (y < 0)
			continue;
		sx += x;
		sy += y;
		sxx += x * x;
		sxy += x * y;
		m++;
	}
	if (m < 2 || m * sxx - sx * sx == 0)
		return 0;
	return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* take_sample - the daemon's figures now. */
static void
take_sample(struct shared *s, const struct fbxb_env *b, const char *logpath,
    long *logoff, uint64_t *nturns, double t_s, struct sample *out)
{
	char mdb[400];
	long v;

	out->mcmd = (double)atomic_load(&s->acked) / 1e6;
	out->day = (double)atomic_load(&s->acked) /
	    (double)cmds_per_day(s->o);
	out->t_s = t_s;
	v = fbxb_status_kib(b->daemon, "RssAnon");
	out->anon_mib = v < 0 ? -1 : (double)v / 1024.0;
	v = count_fds(b->daemon);
	out->fds = v < 0 ? -1 : (double)v;
	v = count_readers(s->o->mdb_stat, b->db);
	out->readers = v < 0 ? -1 : (double)v;
	snprintf(mdb, sizeof(mdb), "%s/data.mdb", b->db);
	out->mdb_mib = (double)fbxb_file_size(mdb) / 1048576.0;
	out->ping_ms = (double)atomic_exchange(&s->ping_max_us, 0) / 1000.0;
	out->turn_ms = log_turns(logpath, logoff, nturns);
}

struct fig {
	const char *name, *unit;
	size_t off;
};

static const struct fig figs[] = {
	{ "anonymous memory (RssAnon)", "MiB", offsetof(struct sample,
	                                           anon_mib) },
	{ "open fds", "", offsetof(struct sample, fds) },
	{ "LMDB reader slots in use", "", offsetof(struct sample, readers) },
	{ "data.mdb size", "MiB", offsetof(struct sample, mdb_mib) },
	{ "longest ping round trip per sample", "ms",
	    offsetof(struct sample, ping_ms) },
	{ "longest logged turn per sample (>500 ms only)", "ms",
	    offsetof(struct sample, turn_ms) },
};
#define NFIGS (sizeof(figs) / sizeof(figs[0]))

static double
fig_at(const struct sample *v, size_t i, size_t off)
{
	return *(const double *)((const char *)&v[i] + off);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct fbxb_env b;
	struct shared s;
	pthread_t th[CLIENTS_MAX], prob, qth, syth;
	uint32_t nth = 0;
	int have_prob = 0, have_q = 0, have_sync = 0, status = 1;
	char sync_path[420];
	struct sample *smp = NULL;
	size_t ns = 0, capsmp = 0, warm = 0;
	char ndev[16], norgs[16], ret[16], logpath[400], report[400];
	long logoff = 0;
	uint64_t nturns = 0, per_day, next_sample, stop_day = 0;
	int64_t t0 = 0, t_end;
	double turn_max = 0, elapsed, days;
	uint64_t acked, dup_ok = 0, received = 0;

	fbxb_init();
	if (parse_opts(argc, argv, &o) != 0)
		return 64;
	memset(&b, 0, sizeof(b));
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	s.o = &o;
	per_day = cmds_per_day(&o);
	atomic_store(&s.limit, per_day * o.days);
	if (fbxb_setup(&b, "soak") != FBX_OK) {
		fprintf(stderr, "soak: setup failed\n");
		goto out;
	}
	s.console = b.console;
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o.devices);
	snprintf(norgs, sizeof(norgs), "%" PRIu32, o.orgs);
	snprintf(ret, sizeof(ret), "%" PRIu32, o.retention_s);
	snprintf(logpath, sizeof(logpath), "%s/fuseboxd.log", b.dir);
	snprintf(report, sizeof(report), "%s/devsim-report.txt", b.dir);
	{
		char *args[] = { "--retention", ret, "--durability", "full",
			"--log-level", "warn", NULL };
		if (fbxb_daemon_start(&b, args) != FBX_OK) {
			fprintf(stderr, "soak: fuseboxd did not start\n");
			goto out;
		}
	}
	{
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--enroll-only", "--quiet", NULL };
		if (fbxb_sim_run(&b, "enroll.log", args) != 0)
			goto out;
	}
	{
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--no-enroll", "--quiet", "--stats-interval-s", "0",
			"--report", report, NULL };
		if (fbxb_sim_start(&b, args, 1) != FBX_OK) {
			fprintf(stderr, "soak: the simulator did not "
			                "connect\n");
			goto out;
		}
	}
	if (count_readers(o.mdb_stat, b.db) < 0)
		fprintf(stderr, "soak: %s -r failed: reader slots not "
		                "sampled\n", o.mdb_stat);
	printf("soak: %" PRIu32 " devices in %" PRIu32 " org(s), %" PRIu32
	       " commands/device/day = %" PRIu64 " commands per simulated "
	       "day, up to %" PRIu32 " days (%.2f M commands)%s; retention "
	       "%" PRIu32 " s; %" PRIu32 " clients; %" PRIu32
	       " queries/day\n",
	    o.devices, o.orgs, o.per_day, per_day, o.days,
	    (double)(per_day * o.days) / 1e6,
	    o.budget_s ? " within the time budget" : "", o.retention_s,
	    o.clients, o.queries_per_day);
	fflush(stdout);

	t0 = fbxb_mono_us();
	for (nth = 0; nth < o.clients; nth++)
		if (pthread_create(&th[nth], NULL, submitter, &s) != 0)
			break;
	have_prob = pthread_create(&prob, NULL, prober, &s) == 0;
	have_q = pthread_create(&qth, NULL, querier, &s) == 0;
	snprintf(sync_path, sizeof(sync_path), "%s/fsync-probe", b.dir);
	s.sync_path = sync_path;
	have_sync = pthread_create(&syth, NULL, syncer, &s) == 0;

	next_sample = 0;
	for (;;) {
		uint64_t a = atomic_load(&s.acked);
		uint64_t issued = atomic_load(&s.next);
		uint64_t lim = atomic_load(&s.limit);
		int finished = issued >= lim &&
		    a + atomic_load(&s.errors) >= lim;
		double t_s = (double)(fbxb_mono_us() - t0) / 1e6;

		if (fbxb_stop)
			break;
		/* the time budget: finish the simulated day under way */
		if (o.budget_s > 0 && stop_day == 0 && t_s >= o.budget_s) {
			stop_day = issued / per_day + 1;
			if (stop_day * per_day < lim)
				atomic_store(&s.limit, stop_day * per_day);
		}
		if (a >= next_sample || finished) {
			if (ns == capsmp) {
				size_t ncap = capsmp ? capsmp * 2 : 1024;
				struct sample *v =
				    realloc(smp, ncap * sizeof(*v));
				if (v == NULL)
					break;
				smp = v;
				capsmp = ncap;
			}
			take_sample(&s, &b, logpath, &logoff, &nturns, t_s,
			    &smp[ns]);
			if (smp[ns].turn_ms > turn_max)
				turn_max = smp[ns].turn_ms;
			if (ns % (o.samples_per_day * 10) == 0 || finished)
				printf("day %6.1f  %7.3f M cmds  %6.0f s  "
				       "anon %6.1f MiB  fds %3.0f  readers "
				       "%3.0f  data.mdb %7.1f MiB  ping max "
				       "%7.1f ms\n",
				    smp[ns].day, smp[ns].mcmd, t_s,
				    smp[ns].anon_mib, smp[ns].fds,
				    smp[ns].readers, smp[ns].mdb_mib,
				    smp[ns].ping_ms);
			fflush(stdout);
			ns++;
			next_sample = (a / (per_day / o.samples_per_day) + 1) *
			    (per_day / o.samples_per_day);
		}
		if (finished)
			break;
		if (b.daemon > 0 && waitpid(b.daemon, NULL, WNOHANG) ==
		        b.daemon) {
			fprintf(stderr, "soak: fuseboxd exited\n");
			fbxb_log_tail(logpath, 10);
			b.daemon = 0;
			break;
		}
		fbxb_sleep_ms(20);
	}
	t_end = fbxb_mono_us();
	atomic_store(&s.limit, 0);
	atomic_store(&s.done, 1);
	for (uint32_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	atomic_store(&s.quit, 1);
	if (have_prob)
		pthread_join(prob, NULL);
	if (have_q)
		pthread_join(qth, NULL);
	if (have_sync)
		pthread_join(syth, NULL);
	if (b.daemon <= 0)
		goto out;

	/* the simulator's view: nothing re-sent after a durable success */
	(void)fbxb_sim_stop(&b);
	(void)fbxb_report_get(report, "deliveries_received=",
	    "dup_after_durable_success", &dup_ok);
	(void)fbxb_report_get(report, "deliveries_received=",
	    "deliveries_received", &received);

	acked = atomic_load(&s.acked);
	elapsed = (double)(t_end - t0) / 1e6;
	days = (double)acked / (double)per_day;
	printf("\nsoak summary: %.1f simulated days covered (%" PRIu64
	       " commands acknowledged, %.3f M) in %.0f s, %.0f commands/s; "
	       "%" PRIu64 " errors, %" PRIu64 " retried submits\n",
	    days, acked, (double)acked / 1e6, elapsed,
	    (double)acked / elapsed, (uint64_t)atomic_load(&s.errors),
	    (uint64_t)atomic_load(&s.retries));
	printf("  retention %" PRIu32 " s = %.1f simulated days at the mean "
	       "pace (%.2f s per simulated day)\n",
	    o.retention_s, o.retention_s / (elapsed / days), elapsed / days);
	printf("  simulator: %" PRIu64 " deliveries received, "
	       "dup_after_durable_success=%" PRIu64 "\n",
	    received, dup_ok);
	/* slopes leave out the first simulated day (start-up, caches and
	 * the store filling up to the retention); the second half alone is
	 * the steady state */
	while (warm < ns && smp[warm].day < 1.0)
		warm++;
	if (warm >= ns)
		warm = 0;
	printf("  slopes per million commands, least squares, from day 1 "
	       "(%zu samples) and over the 2nd half (%zu samples):\n",
	    ns - warm, ns - ns / 2);
	printf("  %-48s %10s %10s %10s %10s %14s %14s\n", "figure", "first",
	    "last", "min", "max", "slope/M cmds", "2nd half /M");
	for (size_t f = 0; f < NFIGS; f++) {
		double first = -1, last = -1, mn = 0, mx = 0;
		int any = 0;
		char name[80];
		for (size_t i = 0; i < ns; i++) {
			double y = fig_at(smp, i, figs[f].off);
			if (y < 0)
				continue;
			if (!any)
				first = mn = mx = y;
			any = 1;
			last = y;
			mn = y < mn ? y : mn;
			mx = y > mx ? y : mx;
		}
		snprintf(name, sizeof(name), "%s%s%s%s", figs[f].name,
		    figs[f].unit[0] ? " (" : "", figs[f].unit,
		    figs[f].unit[0] ? ")" : "");
		if (!any) {
			printf("  %-48s %10s\n", name, "not sampled");
			continue;
		}
		printf("  %-48s %10.1f %10.1f %10.1f %10.1f %+14.3f %+14.3f\n",
		    name, first, last, mn, mx,
		    slope(smp + warm, ns - warm, figs[f].off),
		    slope(smp + ns / 2, ns - ns / 2, figs[f].off));
	}
	printf("  longest turn: %s%.0f ms (%" PRIu64 " turns over 500 ms "
	       "logged; the longest: work %.0f ms, commit with fsync %.0f "
	       "ms, send %.0f ms); longest ping round trip %.1f ms over %" PRIu64
	       " pings\n",
	    nturns == 0 ? "< 500 ms, none logged; " : "", turn_max, nturns,
	    worst_work_ms, worst_commit_ms, worst_send_ms,
	    (double)atomic_load(&s.ping_all_max_us) / 1000.0,
	    (uint64_t)atomic_load(&s.pings));
	printf("  the engine's own work in a logged turn (without the commit): "
	       "at most %.0f ms\n",
	    most_work_ms);
	printf("  the disk's floor, a minimal durable commit (two 4 KiB "
	       "writes, each followed by fdatasync) every %d ms beside the "
	       "data directory: %" PRIu64 " commits, the longest %.0f ms, "
	       "%" PRIu64 " over 500 ms, %" PRIu64 " over 1 s\n",
	    SYNC_MS, (uint64_t)atomic_load(&s.syncs),
	    (double)atomic_load(&s.sync_max_us) / 1000.0,
	    (uint64_t)atomic_load(&s.syncs_500ms),
	    (uint64_t)atomic_load(&s.syncs_1s));
	printf("  queries (whole query, all its pages or slices; and its "
	       "longest single call):\n");
	printf("  %-20s %6s %10s %10s %10s %16s %12s %10s %6s\n", "query",
	    "runs", "min ms", "median ms", "max ms", "slope ms/M cmds",
	    "max call ms", "max calls", "errors");
	for (int k = 0; k < QKINDS; k++) {
		size_t n = s.nq[k], errs = 0;
		double cmax = 0;
		uint32_t pmax = 0;
		double *v = calloc(n ? n : 1, sizeof(*v));
		struct sample *xy = calloc(n ? n : 1, sizeof(*xy));
		if (v == NULL || xy == NULL) {
			free(v);
			free(xy);
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			v[i] = s.q[k][i].ms;
			xy[i].mcmd = s.q[k][i].mcmd;
			xy[i].ping_ms = s.q[k][i].ms;
			errs += s.q[k][i].err != FBX_OK;
			cmax = s.q[k][i].call_ms > cmax ? s.q[k][i].call_ms
			                               : cmax;
			pmax = s.q[k][i].pages > pmax ? s.q[k][i].pages : pmax;
		}
		qsort(v, n, sizeof(*v), cmp_dbl);
		printf("  %-20s %6zu %10.1f %10.1f %10.1f %+16.1f %12.1f %10"
		       PRIu32 " %6zu\n",
		    qnames[k], n, n ? v[0] : 0, fbxb_median(v, n),
		    n ? v[n - 1] : 0,
		    slope(xy, n, offsetof(struct sample, ping_ms)), cmax, pmax,
		    errs);
		free(v);
		free(xy);
	}
	{
		double an = -1, fd = -1, rd = -1, tm = 0;
		if (ns > 0) {
			an = slope(smp + warm, ns - warm, figs[0].off);
			fd = slope(smp + warm, ns - warm, figs[1].off);
			rd = slope(smp + warm, ns - warm, figs[2].off);
			tm = slope(smp + warm, ns - warm, figs[4].off);
		}
		printf("{\"bench\":\"soak\",\"devices\":%" PRIu32
		       ",\"per_device_day\":%" PRIu32 ",\"days\":%.1f,"
		       "\"commands\":%" PRIu64 ",\"elapsed_s\":%.0f,"
		       "\"retention_s\":%" PRIu32 ",\"errors\":%" PRIu64
		       ",\"anon_mib_first\":%.1f,\"anon_mib_last\":%.1f,"
		       "\"anon_mib_per_m\":%.3f,\"fds_per_m\":%.3f,"
		       "\"readers_per_m\":%.3f,\"mdb_mib_last\":%.1f,"
		       "\"ping_max_ms_per_m\":%.3f,\"turn_max_ms\":%.0f,"
		       "\"turns_over_500ms\":%" PRIu64 ",\"ping_max_ms\":%.1f,"
		       "\"dup_after_durable_success\":%" PRIu64 "}\n",
		    o.devices, o.per_day, days, acked, elapsed, o.retention_s,
		    (uint64_t)atomic_load(&s.errors),
		    ns ? smp[0].anon_mib : 0, ns ? smp[ns - 1].anon_mib : 0,
		    an, fd, rd, ns ? smp[ns - 1].mdb_mib : 0, tm, turn_max,
		    nturns, (double)atomic_load(&s.ping_all_max_us) / 1000.0,
		    dup_ok);
	}
	status = fbxb_stop ? 130 : 0;
out:
	fbxb_teardown(&b);
	free(smp);
	for (int k = 0; k < QKINDS; k++)
		free(s.q[k]);
	pthread_mutex_destroy(&s.mu);
	return status;
}
