/*
 * fairness.c: bench_fairness, one organisation's single commands while
 * another fans out. Organisation A (org-001, default 1,000,000 devices)
 * gets one command for its whole fleet; during that fan-out organisation
 * B (org-002, 1,000 devices) submits one single-device command every
 * 20 ms until A's command is DONE. B's time to result is its delivery's
 * updated_ms minus the command's created_ms, as the engine recorded them.
 * B's commands are sent on schedule by 8 threads (each its own client),
 * so a slow reply does not thin out the stream. Prints p50/p99/max of B
 * per run (also from the client's send, B's submit reply latency, and
 * A's rate to show the fan-out ran at speed), then the medians as JSON.
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

#define ORG_A "org-001"
#define ORG_B "org-002"
#define B_MAX 100000
#define B_THREADS 8

struct opts {
	uint32_t devices_a, devices_b, interval_ms, runs;
};

struct run {
	double b_n, b_p50, b_p99, b_max, b_e2e_p99, b_submit_p99, a_rate;
};

/* per-run buffers for B's commands, indexed by command number */
struct bufs {
	uint64_t *bid;
	int64_t *sent;
	double *sub, *lat, *e2e, *subc;
	uint8_t *ok;
};

/* get_info - the command's header and, with dlv, its first delivery.
 * @return the engine's verdict. */
static int
get_info(fbx_client *c, const char *org, uint64_t id,
    struct fbx_command *info, struct fbx_delivery *dlv)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_GET_COMMAND;
	req.u.get.command_id = id;
	req.u.get.limit = dlv != NULL ? 1 : 0;
	rc = fbxb_call(c, org, &req, &rep);
	if (rc == FBX_OK) {
		*info = rep.u.command.info;
		if (dlv != NULL) {
			if (rep.u.command.ndlv == 1)
				*dlv = rep.u.command.dlv[0];
			else
				rc = FBX_ENOT_FOUND;
		}
	}
	fbx_console_rep_free(&rep);
	return rc;
}

/* One submitter of organisation B. Command i belongs to thread
 * i % B_THREADS and goes out at start + i * interval, whatever the
 * replies to earlier ones take: a slow reply does not thin out B's
 * stream (up to B_THREADS submits outstanding). */
struct bsub {
	pthread_t th;
	const struct opts *o;
	const char *console;
	uint32_t run, k;
	int64_t start_us;
	atomic_int *stop;
	uint64_t *bid;
	int64_t *sent_ms; /* wall clock at send */
	double *sub;      /* submit reply latency, ms */
	uint8_t *ok;
	size_t hi; /* commands this thread was due to send: indexes < */
	int err;
};

static void *
bsub_main(void *arg)
{
	struct bsub *t = arg;
	char idem[64], dev[FBX_ID_MAX + 16];
	const char *ids[1] = { dev };
	fbx_client *c = NULL;
	size_t i = t->k;

	if (fbx_client_open(t->console, 30000, &c) != FBX_OK) {
		t->err = FBX_EIO;
		return NULL;
	}
	for (; i < B_MAX && !fbxb_stop; i += B_THREADS) {
		int64_t due = t->start_us + (int64_t)i * t->o->interval_ms *
		    1000, ts;
		int rc;
		while (fbxb_mono_us() < due && !atomic_load(t->stop))
			fbxb_sleep_ms(1);
		if (atomic_load(t->stop))
			break;
		snprintf(dev, sizeof(dev), "%s-d%06zu", ORG_B,
		    i % t->o->devices_b);
		snprintf(idem, sizeof(idem), "fair-b-%" PRIu32 "-%zu", t->run,
		    i);
		t->sent_ms[i] = fbxb_now_ms();
		ts = fbxb_mono_us();
		rc = fbxb_submit(c, ORG_B, FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
		    ids, 1, idem, &t->bid[i]);
		t->sub[i] = (double)(fbxb_mono_us() - ts) / 1000.0;
		if (rc != FBX_OK) {
			fprintf(stderr, "fairness: submit B: %s\n",
			    fbx_strerror(rc));
			t->err = rc;
			break;
		}
		t->ok[i] = 1;
	}
	t->hi = i;
	fbx_client_close(c);
	return NULL;
}

static int
one_run(struct fbxb_env *b, const struct opts *o, uint32_t r,
    struct bufs *w, struct run *out)
{
	struct bsub th[B_THREADS];
	struct fbx_command info;
	atomic_int stop;
	char idem[64];
	uint64_t aid = 0;
	int64_t t0, a_done = 0;
	size_t nb = 0, hi = 0;
	int rc, started = 0;

	memset(th, 0, sizeof(th));
	memset(w->ok, 0, B_MAX);
	atomic_init(&stop, 0);
	snprintf(idem, sizeof(idem), "fair-a-%" PRIu32, r);
	t0 = fbxb_now_ms();
	rc = fbxb_submit(b->cli, ORG_A, FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    NULL, 0, idem, &aid);
	if (rc != FBX_OK) {
		fprintf(stderr, "fairness: submit A: %s\n", fbx_strerror(rc));
		return rc;
	}
	for (int k = 0; k < B_THREADS; k++) {
		th[k].o = o;
		th[k].console = b->console;
		th[k].run = r;
		th[k].k = (uint32_t)k;
		th[k].start_us = fbxb_mono_us();
		th[k].stop = &stop;
		th[k].bid = w->bid;
		th[k].sent_ms = w->sent;
		th[k].sub = w->sub;
		th[k].ok = w->ok;
		if (pthread_create(&th[k].th, NULL, bsub_main, &th[k]) != 0)
			break;
		started++;
	}
	/* poll A until DONE; B's stream runs meanwhile */
	while (!fbxb_stop && started == B_THREADS) {
		fbxb_sleep_ms(50);
		rc = get_info(b->cli, ORG_A, aid, &info, NULL);
		if (rc != FBX_OK) {
			fprintf(stderr, "fairness: get A: %s\n",
			    fbx_strerror(rc));
			break;
		}
		if (info.state == FBX_C_DONE) {
			a_done = fbxb_now_ms();
			break;
		}
	}
	atomic_store(&stop, 1);
	for (int k = 0; k < started; k++) {
		pthread_join(th[k].th, NULL);
		if (th[k].err != 0)
			rc = th[k].err;
		if (th[k].hi > hi)
			hi = th[k].hi;
	}
	if (fbxb_stop)
		return FBX_ESHUTTING_DOWN;
	if (started != B_THREADS || a_done == 0)
		return rc != FBX_OK ? rc : FBX_EIO;
	/* B's commands: wait for each, then its recorded time to result */
	for (size_t i = 0; i < hi; i++) {
		struct fbx_delivery d;
		int tries = 0;
		if (!w->ok[i])
			continue;
		for (;;) {
			rc = get_info(b->cli, ORG_B, w->bid[i], &info, &d);
			if (rc == FBX_OK && info.state == FBX_C_DONE)
				break;
			if ((rc != FBX_OK && rc != FBX_ENOT_FOUND) ||
			    ++tries > 3000 || fbxb_stop) {
				fprintf(stderr, "fairness: B command %" PRIu64
				                " not done: %s\n",
				    w->bid[i], fbx_strerror(rc));
				return rc != FBX_OK ? rc : FBX_ETIMEOUT;
			}
			fbxb_sleep_ms(10);
		}
		w->lat[nb] = (double)(d.updated_ms - info.created_ms);
		w->e2e[nb] = (double)(d.updated_ms - w->sent[i]);
		w->subc[nb] = w->sub[i];
		nb++;
	}
	out->b_n = (double)nb;
	out->a_rate = a_done > t0 ? o->devices_a * 1000.0 /
	        (double)(a_done - t0)
	                          : 0;
	out->b_max = fbxb_pct(w->lat, nb, 100);
	out->b_p50 = fbxb_pct(w->lat, nb, 50);
	out->b_p99 = fbxb_pct(w->lat, nb, 99);
	out->b_e2e_p99 = fbxb_pct(w->e2e, nb, 99);
	out->b_submit_p99 = fbxb_pct(w->subc, nb, 99);
	printf("fairness run=%" PRIu32 ": A %" PRIu32 " devices in %" PRId64
	       " ms (%.0f deliveries/s); B %zu commands, time to result "
	       "(created -> recorded) p50 %.0f p99 %.0f max %.0f ms; from "
	       "the client's send p50 %.0f p99 %.0f ms; B submit reply p50 "
	       "%.1f p99 %.1f ms\n",
	    r, o->devices_a, a_done - t0, out->a_rate, nb, out->b_p50,
	    out->b_p99, out->b_max, fbxb_pct(w->e2e, nb, 50), out->b_e2e_p99,
	    fbxb_pct(w->subc, nb, 50), out->b_submit_p99);
	fflush(stdout);
	return FBX_OK;
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
	    "usage: bench_fairness [--devices-a N] [--devices-b M]\n"
	    "                      [--interval-ms T] [--runs R]\n"
	    "  org-001 fans out to N devices (default 1000000) while\n"
	    "  org-002 (M devices, default 1000) submits one single-device\n"
	    "  command every T ms (default 20); R runs (default 3)\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "devices-a", required_argument, NULL, 'a' },
		{ "devices-b", required_argument, NULL, 'b' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "runs", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 1000000, 1000, 20, 3 };
	struct fbxb_env b;
	struct run runs[64];
	double col[64];
	struct bufs w;
	char ndev[16], skew[32];
	int c, st = 1;

	fbxb_init();
	memset(&b, 0, sizeof(b));
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			o.devices_a = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o.devices_b = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			o.interval_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (o.devices_a == 0 || o.devices_a > 16000000 || o.devices_b == 0 ||
	    o.devices_b > 1000000 || o.interval_ms == 0 || o.runs == 0 ||
	    o.runs > 64) {
		usage(stderr);
		return 64;
	}
	memset(&w, 0, sizeof(w));
	w.bid = malloc(B_MAX * sizeof(*w.bid));
	w.sent = malloc(B_MAX * sizeof(*w.sent));
	w.sub = malloc(B_MAX * sizeof(*w.sub));
	w.lat = malloc(B_MAX * sizeof(*w.lat));
	w.e2e = malloc(B_MAX * sizeof(*w.e2e));
	w.subc = malloc(B_MAX * sizeof(*w.subc));
	w.ok = malloc(B_MAX);
	if (!w.bid || !w.sent || !w.sub || !w.lat || !w.e2e || !w.subc ||
	    !w.ok) {
		fprintf(stderr, "fairness: out of memory\n");
		goto out;
	}
	if (fbxb_setup(&b, "fairness") != FBX_OK)
		goto out;
	/* devsim puts a share F of the fleet in org-001, the rest in
	 * org-002: F = A / (A + B) gives exactly A and B */
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o.devices_a + o.devices_b);
	snprintf(skew, sizeof(skew), "%.12f",
	    (double)o.devices_a / (double)(o.devices_a + o.devices_b));
	if (fbxb_daemon_start(&b, NULL) != FBX_OK) {
		fprintf(stderr, "fairness: fuseboxd did not start\n");
		goto out;
	}
	{
		char *args[] = { "--devices", ndev, "--orgs", "2", "--org-skew",
			skew, "--enroll-only", "--quiet", NULL };
		if (fbxb_sim_run(&b, "enroll.log", args) != 0)
			goto out;
	}
	{
		char *args[] = { "--devices", ndev, "--orgs", "2", "--org-skew",
			skew, "--no-enroll", "--quiet", "--stats-interval-s",
			"0", NULL };
		if (fbxb_sim_start(&b, args, 1) != FBX_OK) {
			fprintf(stderr, "fairness: the simulator did not "
			                "connect\n");
			goto out;
		}
	}
	for (uint32_t r = 0; r < o.runs; r++) {
		if (fbxb_stop ||
		    one_run(&b, &o, r + 1, &w, &runs[r]) != FBX_OK)
			goto out;
		(void)fbxb_wait_idle(b.cli, 60000);
	}
#define MED(field) med(runs, o.runs, offsetof(struct run, field), col)
	printf("{\"bench\":\"fairness\",\"devices_a\":%" PRIu32
	       ",\"interval_ms\":%" PRIu32 ",\"runs\":%" PRIu32
	       ",\"b_commands\":%.0f,\"b_p50_ms\":%.0f,\"b_p99_ms\":%.0f,"
	       "\"b_max_ms\":%.0f,\"b_send_to_result_p99_ms\":%.0f,"
	       "\"b_submit_p99_ms\":%.1f,"
	       "\"a_deliveries_per_s\":%.0f}\n",
	    o.devices_a, o.interval_ms, o.runs, MED(b_n), MED(b_p50),
	    MED(b_p99), MED(b_max), MED(b_e2e_p99), MED(b_submit_p99),
	    MED(a_rate));
#undef MED
	st = 0;
out:
	if (fbxb_stop)
		fprintf(stderr, "fairness: interrupted\n");
	if (st != 0 && b.dir[0] != '\0') {
		char log[400];
		snprintf(log, sizeof(log), "%s/fuseboxd.log", b.dir);
		fbxb_log_tail(log, 8);
	}
	fbxb_teardown(&b);
	free(w.bid);
	free(w.sent);
	free(w.sub);
	free(w.lat);
	free(w.e2e);
	free(w.subc);
	free(w.ok);
	return st;
}
