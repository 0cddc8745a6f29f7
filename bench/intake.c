/*
 * intake.c: bench_intake, command intake from concurrent consoles: K
 * threads (default 8), each with its own fbx_client and organisation,
 * submit single-device commands (operator origin, type query, so no
 * blast-radius limit applies; every one with its own idempotency key and
 * a device no other command of the run uses) back to back for S seconds.
 * A submit's reply leaves the engine only after the commit that journals
 * it, so the measured time is submit -> durable acknowledgement. A
 * fusebox-devsim gateway stays attached (unless --no-gateway), so the
 * commands are also delivered and answered as in service. Prints
 * commands/s and p50/p99/max latency per run, then the medians as JSON.
 *
 * --open N first parks N open commands: single-device queries with a
 * 24-hour TTL for the devices of an organisation no gateway serves
 * ("parked"), as the commands pending for offline devices that a real
 * deployment carries. A turn's cost should not grow with them: compare
 * the figures at --open 0, 10000, 100000 (bench/run.sh does).
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define CLIENTS_MAX 64

struct opts {
	uint32_t clients;
	uint32_t seconds;
	uint32_t runs;
	uint32_t per_org; /* devices enrolled per client organisation */
	int gateway;
	const char *durability; /* fuseboxd --durability, NULL = default */
	uint32_t open; /* commands parked open before the runs */
};

#define PARKED_ORG "parked"
#define PARKED_DEVICES 10000u

struct parker {
	pthread_t th;
	const char *console;
	uint32_t from, to; /* command indexes */
	uint32_t done;
	int err;
};

/* park_main - submit commands [from, to) for the parked organisation */
static void *
park_main(void *arg)
{
	struct parker *p = arg;
	fbx_client *c = NULL;
	fbx_id dev[1];

	if ((p->err = fbx_client_open(p->console, 30000, &c)) != FBX_OK)
		return NULL;
	for (uint32_t i = p->from; i < p->to && !fbxb_stop; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		snprintf(dev[0], sizeof(dev[0]), "%s-d%06" PRIu32, PARKED_ORG,
		    i % PARKED_DEVICES);
		req.kind = FBX_CREQ_SUBMIT;
		req.u.submit.cmd.type = FBX_CMD_QUERY;
		req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
		req.u.submit.cmd.ttl_s = 86400;
		req.u.submit.cmd.dev_ids = dev;
		req.u.submit.cmd.ndev_ids = 1;
		p->err = fbxb_call(c, PARKED_ORG, &req, &rep);
		fbx_console_rep_free(&rep);
		if (p->err != FBX_OK)
			break;
		p->done++;
	}
	fbx_client_close(c);
	return NULL;
}

/* park - enroll the parked organisation and submit o->open commands for
 * it, 8 clients at once. @return FBX_OK or the first error. */
static int
park(struct fbxb_env *b, const struct opts *o)
{
	struct parker p[8];
	struct fbx_device *d;
	uint32_t n = o->open, done = 0;
	int64_t t0 = fbxb_mono_us();
	int rc = FBX_OK;

	d = calloc(PARKED_DEVICES, sizeof(*d));
	if (d == NULL)
		return FBX_ENOMEM;
	for (uint32_t i = 0; i < PARKED_DEVICES; i++) {
		snprintf(d[i].id, sizeof(d[i].id), "%s-d%06" PRIu32,
		    PARKED_ORG, i);
		d[i].platform = FBX_PLATFORM_ANDROID;
	}
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ENROLL;
		req.u.enroll.devs = d;
		req.u.enroll.n = PARKED_DEVICES;
		rc = fbxb_call(b->cli, PARKED_ORG, &req, &rep);
		fbx_console_rep_free(&rep);
	}
	free(d);
	if (rc != FBX_OK) {
		fprintf(stderr, "intake: enrolling %s: %s\n", PARKED_ORG,
		    fbx_strerror(rc));
		return rc;
	}
	memset(p, 0, sizeof(p));
	for (uint32_t i = 0; i < 8; i++) {
		p[i].console = b->console;
		p[i].from = (uint32_t)((uint64_t)n * i / 8);
		p[i].to = (uint32_t)((uint64_t)n * (i + 1) / 8);
		if (pthread_create(&p[i].th, NULL, park_main, &p[i]) != 0) {
			p[i].err = FBX_ENOMEM;
			p[i].th = 0;
		}
	}
	for (uint32_t i = 0; i < 8; i++) {
		if (p[i].th != 0)
			pthread_join(p[i].th, NULL);
		done += p[i].done;
		if (p[i].err != FBX_OK && rc == FBX_OK)
			rc = p[i].err;
	}
	printf("intake: %" PRIu32 " commands parked open for %s in %.1f s\n",
	    done, PARKED_ORG, (fbxb_mono_us() - t0) / 1e6);
	fflush(stdout);
	return rc;
}

struct worker {
	pthread_t th;
	const struct opts *o;
	const char *console;
	atomic_int *go; /* 1 = start, -1 = abandon */
	uint32_t index, run;
	int64_t deadline_us;
	double *lat; /* ms */
	size_t n, cap;
	uint64_t errors, busy;
	int last_err;
	int failed; /* could not run at all */
};

struct run {
	double rate, p50, p99, max, errors, daemon_us;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	fbx_client *c = NULL;
	char org[FBX_ID_MAX + 1], dev[FBX_ID_MAX + 16], idem[FBX_ID_MAX + 1];
	const char *ids[1] = { dev };
	uint32_t i = 0;

	snprintf(org, sizeof(org), "org-%03" PRIu32, w->index + 1);
	if (fbx_client_open(w->console, 10000, &c) != FBX_OK)
		w->failed = 1;
	while (atomic_load(w->go) == 0)
		fbxb_sleep_ms(1);
	while (atomic_load(w->go) > 0 && !w->failed && !fbxb_stop && fbxb_mono_us() < w->deadline_us) {
		int64_t t0;
		int rc;
		if (w->n == w->cap) {
			size_t ncap = w->cap ? w->cap * 2 : 65536;
			double *v = realloc(w->lat, ncap * sizeof(*v));
			if (v == NULL) {
				w->failed = 1;
				break;
			}
			w->lat = v;
			w->cap = ncap;
		}
		/* a device of its own per command, within the organisation */
		snprintf(dev, sizeof(dev), "%s-d%06" PRIu32, org,
		    i % w->o->per_org);
		snprintf(idem, sizeof(idem), "intake-%" PRIu32 "-%" PRIu32,
		    w->run, i);
		t0 = fbxb_mono_us();
		rc = fbxb_submit(c, org, FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR, ids,
		    1, idem, NULL);
		if (rc == FBX_OK) {
			w->lat[w->n++] = (double)(fbxb_mono_us() - t0) / 1000.0;
		} else {
			w->errors++;
			w->last_err = rc;
			if (rc == FBX_EBUSY)
				w->busy++;
		}
		i++;
	}
	fbx_client_close(c);
	return NULL;
}

static int
one_run(struct fbxb_env *b, const struct opts *o, uint32_t r,
    struct run *out)
{
	struct worker w[CLIENTS_MAX];
	atomic_int go;
	double *all = NULL;
	size_t total = 0, k = 0;
	uint64_t errors = 0, busy = 0;
	int64_t t0, t1;
	double dcpu0 = fbxb_cpu_ms(b->daemon), bcpu0 = fbxb_cpu_ms(0);
	double dcpu, bcpu;
	int rc = FBX_ENOMEM, started = 0, last_err = 0;

	memset(w, 0, sizeof(w));
	atomic_init(&go, 0);
	for (uint32_t i = 0; i < o->clients; i++) {
		w[i].o = o;
		w[i].console = b->console;
		w[i].go = &go;
		w[i].index = i;
		w[i].run = r;
		w[i].deadline_us = INT64_MAX;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "intake: cannot start a thread\n");
			atomic_store(&go, -1);
			break;
		}
		started++;
	}
	/* the deadline is written before the release (seq_cst store) */
	t0 = fbxb_mono_us();
	for (int i = 0; i < started; i++)
		w[i].deadline_us = t0 + (int64_t)o->seconds * 1000000;
	if (started == (int)o->clients)
		atomic_store(&go, 1);
	for (int i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	t1 = fbxb_mono_us();
	dcpu = fbxb_cpu_ms(b->daemon) - dcpu0;
	bcpu = fbxb_cpu_ms(0) - bcpu0;
	if (started != (int)o->clients) {
		rc = FBX_EIO;
		goto out;
	}
	for (uint32_t i = 0; i < o->clients; i++) {
		if (w[i].failed)
			goto out;
		total += w[i].n;
		errors += w[i].errors;
		busy += w[i].busy;
		if (w[i].last_err)
			last_err = w[i].last_err;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (all == NULL)
		goto out;
	for (uint32_t i = 0; i < o->clients; i++) {
		memcpy(all + k, w[i].lat, w[i].n * sizeof(*all));
		k += w[i].n;
	}
	out->rate = total * 1e6 / (double)(t1 - t0);
	out->max = fbxb_pct(all, total, 100);
	out->p50 = fbxb_pct(all, total, 50);
	out->p99 = fbxb_pct(all, total, 99);
	out->errors = (double)errors;
	out->daemon_us = total ? dcpu * 1000.0 / (double)total : 0;
	printf("intake clients=%" PRIu32 " run=%" PRIu32 ": %zu commands in "
	       "%.2f s, %.0f commands/s, submit->durable ack p50 %.2f p99 "
	       "%.2f max %.2f ms, %" PRIu64 " errors (%" PRIu64 " busy%s%s); "
	       "CPU: daemon %.0f%% (%.0f us/command), clients %.0f%%\n",
	    o->clients, r, total, (t1 - t0) / 1e6, out->rate, out->p50,
	    out->p99, out->max, errors, busy, last_err ? ", last " : "",
	    last_err ? fbx_errname(last_err) : "",
	    dcpu * 1e5 / (double)(t1 - t0), out->daemon_us,
	    bcpu * 1e5 / (double)(t1 - t0));
	fflush(stdout);
	rc = FBX_OK;
out:
	for (uint32_t i = 0; i < o->clients; i++)
		free(w[i].lat);
	free(all);
	return rc;
}

static double
med(const struct run *runs, uint32_t n, size_t off, double *col)
{
	return fbxb_median_field(runs, sizeof(*runs), n, off, col);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_intake [--clients K] [--seconds S] [--runs R]\n"
	    "                    [--devices-per-org N] [--no-gateway]\n"
	    "                    [--durability full|nometasync|nosync]\n"
	    "                    [--open N]\n"
	    "  K console clients (threads, default 8), each submitting\n"
	    "  single-device commands for S s (default 3), R runs (3);\n"
	    "  N commands parked open first (default 0)\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "devices-per-org", required_argument, NULL, 'n' },
		{ "no-gateway", no_argument, NULL, 'g' },
		{ "durability", required_argument, NULL, 'd' },
		{ "open", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 8, 3, 3, 50000, 1, NULL, 0 };
	struct fbxb_env b;
	struct run runs[64];
	double col[64];
	char ndev[16], norgs[16];
	int c, st = 1;

	fbxb_init();
	memset(&b, 0, sizeof(b));
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			o.clients = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.seconds = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.per_org = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'g':
			o.gateway = 0;
			break;
		case 'd':
			o.durability = optarg;
			break;
		case 'o':
			o.open = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (o.clients == 0 || o.clients > CLIENTS_MAX || o.seconds == 0 ||
	    o.runs == 0 || o.runs > 64 || o.per_org == 0 ||
	    o.per_org > 1000000) {
		usage(stderr);
		return 64;
	}
	if (fbxb_setup(&b, "intake") != FBX_OK)
		goto out;
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o.per_org * o.clients);
	snprintf(norgs, sizeof(norgs), "%" PRIu32, o.clients);
	{
		char *dargs[] = { "--durability", (char *)o.durability, NULL };
		if (fbxb_daemon_start(&b, o.durability ? dargs : NULL) !=
		    FBX_OK) {
			fprintf(stderr, "intake: fuseboxd did not start\n");
			goto out;
		}
	}
	{
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--enroll-only", "--quiet", NULL };
		if (fbxb_sim_run(&b, "enroll.log", args) != 0)
			goto out;
	}
	if (o.gateway) {
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--no-enroll", "--quiet", "--stats-interval-s", "0",
			NULL };
		if (fbxb_sim_start(&b, args, 1) != FBX_OK) {
			fprintf(stderr, "intake: the simulator did not "
			                "connect\n");
			goto out;
		}
	}
	if (o.open > 0 && park(&b, &o) != FBX_OK)
		goto out;
	for (uint32_t r = 0; r < o.runs; r++) {
		if (fbxb_stop || one_run(&b, &o, r + 1, &runs[r]) != FBX_OK)
			goto out;
		/* the next run starts from an idle engine */
		if (o.gateway && fbxb_wait_idle(b.cli, 60000) != FBX_OK)
			fprintf(stderr, "intake: engine not idle after run "
			                "%" PRIu32 "\n",
			    r + 1);
	}
#define MED(field) med(runs, o.runs, offsetof(struct run, field), col)
	printf("{\"bench\":\"intake\",\"clients\":%" PRIu32
	       ",\"open\":%" PRIu32
	       ",\"seconds\":%" PRIu32 ",\"runs\":%" PRIu32
	       ",\"gateway\":%s,\"durability\":\"%s\",\"commands_per_s\":%.0f,\"p50_ms\":%.2f,"
	       "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"errors\":%.0f,"
	       "\"daemon_cpu_us_per_command\":%.0f,"
	       "\"rss_peak_mib\":%.1f}\n",
	    o.clients, o.open, o.seconds, o.runs,
	    o.gateway ? "true" : "false",
	    o.durability ? o.durability : "full",
	    MED(rate), MED(p50), MED(p99), MED(max), MED(errors),
	    MED(daemon_us),
	    fbxb_vmhwm_kib(b.daemon) / 1024.0);
#undef MED
	st = 0;
out:
	if (fbxb_stop)
		fprintf(stderr, "intake: interrupted\n");
	if (st != 0 && b.dir[0] != '\0') {
		char log[400];
		snprintf(log, sizeof(log), "%s/fuseboxd.log", b.dir);
		fbxb_log_tail(log, 8);
	}
	fbxb_teardown(&b);
	return st;
}
