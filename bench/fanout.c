/*
 * fanout.c: bench_fanout, one command to a whole organisation of N
 * devices, end to end: submit, journal, deliveries to fusebox-devsim (its
 * own process, over ipc), device results, results durable; the daemon at
 * its default (full) durability. Per run it prints the wall time until the
 * command is observed DONE, deliveries per second, the per-device time
 * from the command's created_ms to each delivery's recorded result
 * (updated_ms, read back through GET_COMMAND pages of 10,000), the
 * daemon's peak RSS (VmHWM, and apart the peaks of its anonymous memory,
 * RssAnon, and of the store pages it maps, RssFile / RssShmem, sampled
 * at every poll) and data.mdb growth per delivery; then the median of
 * the runs as one JSON line. The fleet is enrolled once; runs reuse it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define ORG "org-001"
#define PAGE 10000

struct opts {
	uint32_t devices;
	uint32_t runs;
	uint32_t window;
	double floor_rate; /* deliveries/s of bench_floor, 0 = unknown */
	int type;          /* command type (default query) */
	uint32_t fail_ppm;    /* devices that fail (devsim --fail-ratio) */
	uint32_t offline_ppm; /* devices offline (devsim --offline-ratio) */
	uint32_t org_share;   /* fuseboxd --org-share PCT, 0 = default */
};

struct run {
	double wall_ms, rate, p50, p99, max, submit_ms, bytes_per_dlv, commits;
	double anon_mib; /* largest RssAnon seen while the command ran */
	double file_mib; /* largest RssFile (mapped store pages) seen */
	double shmem_mib; /* largest RssShmem seen (a store on tmpfs) */
	double cpu_us;   /* the daemon's CPU (all threads) per delivery */
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_fanout [--devices N] [--runs R] [--window W]\n"
	    "                    [--floor-rate DPS]\n"
	    "  --devices N     fleet and command size (default 30000)\n"
	    "  --runs R        runs; the JSON line holds medians (default 3)\n"
	    "  --window W      devsim's window of unanswered deliveries\n"
	    "                  (default 65536, devsim's own default)\n"
	    "  --floor-rate D  bench_floor's deliveries/s for the ratio\n"
	    "  --type T        command type (default query); a type with a\n"
	    "                  blast-radius limit (lock) gets the organisation's\n"
	    "                  limit raised to the runs' devices first, so it\n"
	    "                  passes the safety gates as a legitimate one does\n"
	    "  --fail-ppm N    devices whose delivery fails (devsim)\n"
	    "  --offline-ppm N devices offline (devsim): their deliveries end\n"
	    "                  PENDING; a run is over when every delivery is\n"
	    "                  final or PENDING\n"
	    "  --org-share PCT fuseboxd --org-share (diagnostic; default the\n"
	    "                  daemon's own)\n");
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "devices", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },
		{ "floor-rate", required_argument, NULL, 'f' },
		{ "type", required_argument, NULL, 't' },
		{ "fail-ppm", required_argument, NULL, 'F' },
		{ "offline-ppm", required_argument, NULL, 'O' },
		{ "org-share", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	o->devices = 30000;
	o->runs = 3;
	o->window = 65536;
	o->floor_rate = 0;
	o->type = FBX_CMD_QUERY;
	o->fail_ppm = o->offline_ppm = o->org_share = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->devices = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o->runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			o->window = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			o->floor_rate = strtod(optarg, NULL);
			break;
		case 't':
			o->type = fbx_cmd_type_parse(optarg);
			if (o->type <= 0) {
				fprintf(stderr, "fanout: unknown type '%s'\n",
				    optarg);
				return -1;
			}
			break;
		case 'F':
			o->fail_ppm = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'O':
			o->offline_ppm = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'S':
			o->org_share = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (o->devices == 0 || o->devices > 16000000 || o->runs == 0 ||
	    o->runs > 50 || o->window == 0 || o->fail_ppm > 1000000 ||
	    o->offline_ppm > 1000000 || o->org_share > 100) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* wait_done - poll the command until DONE. @return FBX_OK and the
 * observation time, or an error. */
static int
wait_done(fbx_client *c, uint64_t id, int poll_ms, int timeout_ms,
    int64_t *done_ms, struct fbx_command *info, pid_t daemon,
    struct fbxb_rss *peak, int settled)
{
	int64_t end = fbxb_mono_us() + (int64_t)timeout_ms * 1000;

	while (!fbxb_stop && fbxb_mono_us() < end) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int rc;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		rc = fbxb_call(c, ORG, &req, &rep);
		{
			/* the daemon's own memory (RssAnon) apart from the
			 * store pages it maps (RssFile, RssShmem) */
			struct fbxb_rss m;
			if (fbxb_rss(daemon, &m) == 0) {
				if (m.anon > peak->anon)
					peak->anon = m.anon;
				if (m.file > peak->file)
					peak->file = m.file;
				if (m.shmem > peak->shmem)
					peak->shmem = m.shmem;
			}
		}
		/* settled: with offline devices the command stays open,
		 * their deliveries PENDING, once everything else is final */
		if (rc == FBX_OK && (rep.u.command.info.state == FBX_C_DONE ||
		        (settled &&
		            rep.u.command.info.state == FBX_C_ACTIVE &&
		            rep.u.command.info.counts[FBX_D_QUEUED] == 0 &&
		            rep.u.command.info.counts[FBX_D_SENT] == 0 &&
		            rep.u.command.info.counts[FBX_D_ACCEPTED] == 0))) {
			*done_ms = fbxb_now_ms();
			*info = rep.u.command.info;
			fbx_console_rep_free(&rep);
			return FBX_OK;
		}
		fbx_console_rep_free(&rep);
		if (rc != FBX_OK && rc != FBX_ETIMEOUT) {
			fprintf(stderr, "fanout: get command %" PRIu64 ": %s\n",
			    id, fbx_strerror(rc));
			return rc;
		}
		fbxb_sleep_ms(poll_ms);
	}
	return FBX_ETIMEOUT;
}

/* collect - page through the command's deliveries; lat[i] = ms from
 * created_ms to the delivery's last update (its recorded result).
 * @return FBX_OK and *n, or an error. */
static int
collect(fbx_client *c, uint64_t id, int64_t created_ms, double *lat,
    size_t cap, size_t *n, size_t *not_ok)
{
	uint64_t after = 0;
	size_t k = 0, bad = 0;

	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int rc;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		req.u.get.after = after;
		req.u.get.limit = PAGE;
		rc = fbxb_call(c, ORG, &req, &rep);
		if (rc != FBX_OK) {
			fbx_console_rep_free(&rep);
			fprintf(stderr, "fanout: page after %" PRIu64 ": %s\n",
			    after, fbx_strerror(rc));
			return rc;
		}
		for (size_t i = 0; i < rep.u.command.ndlv && k < cap; i++) {
			const struct fbx_delivery *d = &rep.u.command.dlv[i];
			if (d->state != FBX_D_SUCCEEDED)
				bad++;
			lat[k++] = (double)(d->updated_ms - created_ms);
		}
		after = rep.u.command.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0 || fbxb_stop)
			break;
	}
	*n = k;
	*not_ok = bad;
	return FBX_OK;
}

/* set_limit - a type with a blast-radius limit: raise the organisation's
 * to every device of the runs within the hour, as an operator would for a
 * planned fleet-wide lock, so the command passes the gates. */
static int
set_limit(struct fbxb_env *b, const struct opts *o)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	if (o->type == FBX_CMD_QUERY)
		return FBX_OK;
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIMIT;
	req.u.limit.set = 1;
	req.u.limit.lim.type = (uint8_t)o->type;
	req.u.limit.lim.max_count = o->devices * o->runs;
	req.u.limit.lim.max_share_ppm = 0;
	req.u.limit.lim.window_s = 3600;
	rc = fbxb_call(b->cli, ORG, &req, &rep);
	fbx_console_rep_free(&rep);
	if (rc != FBX_OK)
		fprintf(stderr, "fanout: limit set: %s\n", fbx_strerror(rc));
	return rc;
}

/* med - median of one field over the runs. */
static double
med(const struct run *runs, uint32_t n, size_t off, double *col)
{
	return fbxb_median_field(runs, sizeof(*runs), n, off, col);
}

static int
one_run(struct fbxb_env *b, const struct opts *o, uint32_t r, double *lat,
    struct run *out)
{
	struct fbx_command info;
	char idem[64];
	uint64_t id = 0;
	int64_t t0, t1, done_ms;
	long long size0, size1;
	char mdb[400];
	size_t n = 0, bad = 0;
	struct fbxb_rss peak = { 0, 0, 0, 0 };
	double cpu0;
	int rc;

	struct fbx_engine_stats s0, s1;

	snprintf(mdb, sizeof(mdb), "%s/data.mdb", b->db);
	snprintf(idem, sizeof(idem), "fanout-%" PRIu32, r);
	if (fbxb_ping(b->cli, &s0) != FBX_OK)
		memset(&s0, 0, sizeof(s0));
	size0 = fbxb_file_size(mdb);
	cpu0 = fbxb_cpu_ms(b->daemon);
	t0 = fbxb_now_ms();
	rc = fbxb_submit(b->cli, ORG, o->type, FBX_ORIGIN_OPERATOR, NULL, 0,
	    idem, &id);
	t1 = fbxb_now_ms();
	if (rc != FBX_OK) {
		fprintf(stderr, "fanout: submit: %s\n", fbx_strerror(rc));
		return rc;
	}
	rc = wait_done(b->cli, id, o->devices <= 100000 ? 1 : 10,
	    60000 + (int)(o->devices / 10), &done_ms, &info, b->daemon,
	    &peak, o->offline_ppm > 0);
	if (rc != FBX_OK) {
		fprintf(stderr, "fanout: command %" PRIu64 " not done: %s\n",
		    id, fbx_strerror(rc));
		return rc;
	}
	/* the daemon's CPU until DONE was seen, its polls included */
	out->cpu_us = (fbxb_cpu_ms(b->daemon) - cpu0) * 1000.0 / o->devices;
	size1 = fbxb_file_size(mdb);
	if (fbxb_ping(b->cli, &s1) != FBX_OK)
		s1 = s0;
	/* the engine's write transactions (each one fsync) during the run,
	 * less the polls' own turns it may have counted */
	out->commits = (double)(s1.commits - s0.commits);
	out->anon_mib = peak.anon / 1024.0;
	out->file_mib = peak.file / 1024.0;
	out->shmem_mib = peak.shmem / 1024.0;
	rc = collect(b->cli, id, info.created_ms, lat, o->devices, &n, &bad);
	if (rc != FBX_OK)
		return rc;
	if (n != o->devices || info.ndeliveries != o->devices)
		fprintf(stderr,
		    "fanout: %zu deliveries read, %" PRIu32 " made, %" PRIu32
		    " expected\n",
		    n, info.ndeliveries, o->devices);
	out->wall_ms = (double)(done_ms - t0);
	out->rate = out->wall_ms > 0 ? n * 1000.0 / out->wall_ms : 0;
	out->submit_ms = (double)(t1 - t0);
	out->bytes_per_dlv = n > 0 ? (double)(size1 - size0) / (double)n : 0;
	out->max = fbxb_pct(lat, n, 100);
	out->p50 = fbxb_pct(lat, n, 50);
	out->p99 = fbxb_pct(lat, n, 99);
	printf("fanout devices=%" PRIu32 " run=%" PRIu32 ": wall %.0f ms, "
	       "%.0f deliveries/s, submit reply %.0f ms, per device "
	       "p50 %.0f p99 %.0f max %.0f ms, %.1f B/delivery, "
	       "%zu not succeeded, %.0f commits, daemon CPU %.2f "
	       "us/delivery, daemon VmHWM %.1f MiB "
	       "(RssAnon up to %.1f MiB, RssFile up to %.1f MiB, "
	       "RssShmem up to %.1f MiB)\n",
	    o->devices, r, out->wall_ms, out->rate, out->submit_ms, out->p50,
	    out->p99, out->max, out->bytes_per_dlv, bad, out->commits,
	    out->cpu_us,
	    fbxb_vmhwm_kib(b->daemon) / 1024.0, out->anon_mib,
	    out->file_mib, out->shmem_mib);
	fflush(stdout);
	return FBX_OK;
}

int
main(int argc, char **argv)
{
	struct fbxb_env b;
	struct opts o;
	struct run *runs = NULL;
	double *lat = NULL, *col = NULL;
	char ndev[16], win[16], report[320], share[16], fail[32], off[32];
	long hwm;
	int rc, st = 1;

	fbxb_init();
	memset(&b, 0, sizeof(b));
	if (parse_opts(argc, argv, &o) != 0)
		return 64;
	runs = calloc(o.runs, sizeof(*runs));
	col = calloc(o.runs, sizeof(*col));
	lat = malloc((size_t)o.devices * sizeof(*lat));
	if (runs == NULL || col == NULL || lat == NULL) {
		fprintf(stderr, "fanout: out of memory\n");
		goto out;
	}
	if (fbxb_setup(&b, "fanout") != FBX_OK)
		goto out;
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o.devices);
	snprintf(win, sizeof(win), "%" PRIu32, o.window);
	snprintf(report, sizeof(report), "%s/devsim.report", b.dir);
	snprintf(share, sizeof(share), "%" PRIu32, o.org_share);
	snprintf(fail, sizeof(fail), "%.6f", o.fail_ppm / 1e6);
	snprintf(off, sizeof(off), "%.6f", o.offline_ppm / 1e6);
	{
		char *dargs[] = { "--org-share", share, NULL };
		rc = fbxb_daemon_start(&b, o.org_share > 0 ? dargs : NULL);
	}
	if (rc != FBX_OK) {
		fprintf(stderr, "fanout: fuseboxd did not start\n");
		goto out;
	}
	{
		char *args[] = { "--devices", ndev, "--orgs", "1",
			"--enroll-only", "--quiet", NULL };
		if (fbxb_sim_run(&b, "enroll.log", args) != 0)
			goto out;
	}
	if (set_limit(&b, &o) != FBX_OK)
		goto out;
	{
		char *args[] = { "--devices", ndev, "--orgs", "1",
			"--no-enroll", "--quiet", "--window", win,
			"--stats-interval-s", "0", "--report", report,
			"--fail-ratio", fail, "--offline-ratio", off, NULL };
		if (fbxb_sim_start(&b, args, 1) != FBX_OK) {
			fprintf(stderr, "fanout: the simulator did not "
			                "connect\n");
			goto out;
		}
	}
	for (uint32_t r = 0; r < o.runs; r++) {
		if (fbxb_stop || one_run(&b, &o, r + 1, lat, &runs[r]) != 0)
			goto out;
	}
	hwm = fbxb_vmhwm_kib(b.daemon);
	/* the JSON line: medians over the runs */
#define MED(field) med(runs, o.runs, offsetof(struct run, field), col)
	{
		double wall = MED(wall_ms), rate = MED(rate), p50 = MED(p50);
		double p99 = MED(p99), mx = MED(max), sub = MED(submit_ms);
		double bpd = MED(bytes_per_dlv);
		printf("{\"bench\":\"fanout\",\"devices\":%" PRIu32
		       ",\"runs\":%" PRIu32 ",\"window\":%" PRIu32
		       ",\"wall_ms\":%.0f,\"deliveries_per_s\":%.0f,"
		       "\"submit_reply_ms\":%.0f,\"p50_ms\":%.0f,"
		       "\"p99_ms\":%.0f,\"max_ms\":%.0f,"
		       "\"rss_peak_mib\":%.1f,\"lmdb_bytes_per_delivery\":%.1f,"
		       "\"commits\":%.0f,\"rss_anon_peak_mib\":%.1f,"
		       "\"rss_file_peak_mib\":%.1f,"
		       "\"rss_shmem_peak_mib\":%.1f,"
		       "\"daemon_cpu_us_per_delivery\":%.2f,\"type\":\"%s\","
		       "\"fail_ppm\":%" PRIu32 ",\"offline_ppm\":%" PRIu32,
		    o.devices, o.runs, o.window, wall, rate, sub, p50, p99, mx,
		    hwm / 1024.0, bpd, MED(commits), MED(anon_mib),
		    MED(file_mib), MED(shmem_mib),
		    MED(cpu_us), fbx_cmd_type_name(o.type), o.fail_ppm,
		    o.offline_ppm);
		if (o.floor_rate > 0)
			printf(",\"floor_deliveries_per_s\":%.0f,"
			       "\"ratio_to_floor\":%.2f",
			    o.floor_rate, rate / o.floor_rate);
		printf("}\n");
	}
#undef MED
	st = 0;
out:
	if (fbxb_stop)
		fprintf(stderr, "fanout: interrupted\n");
	if (st != 0 && b.dir[0] != '\0') {
		char log[400];
		snprintf(log, sizeof(log), "%s/fuseboxd.log", b.dir);
		fbxb_log_tail(log, 8);
	}
	fbxb_teardown(&b);
	free(runs);
	free(col);
	free(lat);
	return st;
}
