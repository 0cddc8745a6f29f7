/*
 * breaker.c: bench_breaker, how fast the breakers react to incident 1: a
 * broken attestation rule sends 32,000 automatic locks for 40
 * organisations (20,000 in org-001: --org-skew 0.625) within S seconds
 * (fusebox-devsim --storm 32000 --storm-seconds S --storm-only), against
 * a daemon with a gateway fusebox-devsim attached. Per run it reports the
 * locks that reached devices before the breakers tripped, per
 * organisation (the gateway simulator's report, `locked=`), what the
 * engine answered (admitted, held), and the time from the first lock
 * command's journal time (created_ms) to the global breaker's trip (the
 * breaker_tripped event for "*" on the daemon's PUB endpoint); then the
 * medians as one JSON line. Every run starts from a fresh store.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bench.h"

#define ORGS_MAX 256

struct opts {
	uint32_t locks, devices, orgs, seconds, runs;
	const char *skew;
};

struct run {
	double locked_total, locked_big, locked_other_max, locked_other_total;
	double admitted, held, refused, trip_ms, org_trips, storm_ms;
};

/* first_lock_ms - the earliest created_ms over every organisation's
 * commands. @return FBX_OK or an error. */
static int
first_lock_ms(fbx_client *c, uint32_t orgs, int64_t *out)
{
	int64_t first = INT64_MAX;

	for (uint32_t o = 0; o < orgs; o++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		char org[FBX_ID_MAX + 1];
		int rc;
		snprintf(org, sizeof(org), "org-%03" PRIu32, o + 1);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.limit = 1;
		rc = fbxb_call(c, org, &req, &rep);
		if (rc == FBX_OK && rep.u.commands.n > 0 &&
		    rep.u.commands.cmds[0].created_ms < first)
			first = rep.u.commands.cmds[0].created_ms;
		fbx_console_rep_free(&rep);
		if (rc != FBX_OK)
			return rc;
	}
	if (first == INT64_MAX)
		return FBX_ENOT_FOUND;
	*out = first;
	return FBX_OK;
}

/* drain_events - read the breaker events published so far: the global
 * trip's time and the number of organisation trips. */
static void
drain_events(void *sub, int64_t *global_ms, uint32_t *org_trips)
{
	for (;;) {
		char topic[64];
		uint8_t buf[4096];
		struct fbx_event ev;
		int n = zmq_recv(sub, topic, sizeof(topic), ZMQ_DONTWAIT);
		if (n < 0)
			break;
		n = zmq_recv(sub, buf, sizeof(buf), 0);
		if (n <= 0 || fbx_event_decode(buf, (size_t)n, &ev) != FBX_OK ||
		    ev.kind != FBX_EV_BREAKER_TRIPPED)
			continue;
		if (strcmp(ev.org, "*") == 0) {
			if (*global_ms == 0)
				*global_ms = ev.at_ms;
		} else {
			(*org_trips)++;
		}
	}
}

static int
one_run(const struct opts *o, uint32_t r, struct run *out)
{
	struct fbxb_env b;
	void *zctx = NULL, *sub = NULL;
	char report[320], storm_report[320], nlocks[16], ndev[16], norgs[16];
	char secs[16], prefix[64], line[4096];
	uint64_t v, other_max = 0, other_total = 0, big = 0;
	int64_t first = 0, global_ms = 0;
	uint32_t org_trips = 0;
	int rc = FBX_EIO, len = 0;

	memset(out, 0, sizeof(*out));
	if (fbxb_setup(&b, "breaker") != FBX_OK)
		goto out;
	snprintf(report, sizeof(report), "%s/devsim.report", b.dir);
	snprintf(storm_report, sizeof(storm_report), "%s/storm.report",
	    b.dir);
	snprintf(nlocks, sizeof(nlocks), "%" PRIu32, o->locks);
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o->devices);
	snprintf(norgs, sizeof(norgs), "%" PRIu32, o->orgs);
	snprintf(secs, sizeof(secs), "%" PRIu32, o->seconds);
	{
		char *args[] = { "--events", b.events, NULL };
		if (fbxb_daemon_start(&b, args) != FBX_OK) {
			fprintf(stderr, "breaker: fuseboxd did not start\n");
			goto out;
		}
	}
	zctx = zmq_ctx_new();
	sub = zctx != NULL ? zmq_socket(zctx, ZMQ_SUB) : NULL;
	if (sub == NULL ||
	    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "fusebox.breaker", 15) != 0 ||
	    zmq_connect(sub, b.events) != 0) {
		fprintf(stderr, "breaker: events socket: %s\n",
		    zmq_strerror(errno));
		goto out;
	}
	{
		/* the gateway enrolls the fleet, then connects */
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--org-skew", (char *)o->skew, "--quiet",
			"--stats-interval-s", "0", "--report", report, NULL };
		if (fbxb_sim_start(&b, args, 1) != FBX_OK) {
			fprintf(stderr, "breaker: the simulator did not "
			                "connect\n");
			goto out;
		}
	}
	{
		char *args[] = { "--storm", nlocks, "--storm-seconds", secs,
			"--storm-only", "--no-enroll", "--devices", ndev,
			"--orgs", norgs, "--org-skew", (char *)o->skew,
			"--quiet", "--report", storm_report, NULL };
		if (fbxb_sim_run(&b, "storm.log", args) != 0) {
			fprintf(stderr, "breaker: the storm failed\n");
			goto out;
		}
	}
	if (fbxb_wait_idle(b.cli, 60000) != FBX_OK)
		fprintf(stderr, "breaker: deliveries still in flight\n");
	fbxb_sleep_ms(200); /* events of the last turn */
	drain_events(sub, &global_ms, &org_trips);
	if ((rc = first_lock_ms(b.cli, o->orgs, &first)) != FBX_OK) {
		fprintf(stderr, "breaker: no lock command found: %s\n",
		    fbx_strerror(rc));
		goto out;
	}
	(void)fbxb_sim_stop(&b); /* writes the final report */
	rc = FBX_EIO;
	len = snprintf(line, sizeof(line), "locked per organisation:");
	for (uint32_t i = 0; i < o->orgs; i++) {
		snprintf(prefix, sizeof(prefix), "org=org-%03" PRIu32 " ",
		    i + 1);
		if (fbxb_report_get(report, prefix, "locked", &v) != FBX_OK) {
			fprintf(stderr, "breaker: no %s in %s\n", prefix,
			    report);
			goto out;
		}
		if (i == 0) {
			big = v;
		} else {
			other_total += v;
			if (v > other_max)
				other_max = v;
		}
		if (len < (int)sizeof(line) - 32)
			len += snprintf(line + len, sizeof(line) - (size_t)len,
			    " %" PRIu32 ":%" PRIu64, i + 1, v);
	}
	if (fbxb_report_get(storm_report, "storm_total ", "admitted", &v) ==
	    FBX_OK)
		out->admitted = (double)v;
	if (fbxb_report_get(storm_report, "storm_total ", "held", &v) ==
	    FBX_OK)
		out->held = (double)v;
	if (fbxb_report_get(storm_report, "storm_total ", "refused", &v) ==
	    FBX_OK)
		out->refused = (double)v;
	if (fbxb_report_get(storm_report, "storm_total ", "elapsed_ms", &v) ==
	    FBX_OK)
		out->storm_ms = (double)v;
	out->locked_big = (double)big;
	out->locked_other_max = (double)other_max;
	out->locked_other_total = (double)other_total;
	out->locked_total = (double)(big + other_total);
	out->org_trips = org_trips;
	out->trip_ms = global_ms > 0 ? (double)(global_ms - first) : -1;
	printf("breaker storm=%" PRIu32 " in %" PRIu32 " s run=%" PRIu32
	       ": storm took %.0f ms; engine admitted %.0f, held %.0f, "
	       "refused %.0f; devices locked %.0f (org-001 %.0f, the other "
	       "%" PRIu32 " orgs %.0f, at most %.0f in one); %u organisation "
	       "breakers tripped; first lock -> global trip %.0f ms\n",
	    o->locks, o->seconds, r, out->storm_ms, out->admitted, out->held,
	    out->refused, out->locked_total, out->locked_big, o->orgs - 1,
	    out->locked_other_total, out->locked_other_max, org_trips,
	    out->trip_ms);
	printf("  %s\n", line);
	fflush(stdout);
	rc = FBX_OK;
out:
	if (sub != NULL)
		zmq_close(sub);
	if (zctx != NULL)
		zmq_ctx_term(zctx);
	if (rc != FBX_OK && b.dir[0] != '\0') {
		char log[400];
		snprintf(log, sizeof(log), "%s/fuseboxd.log", b.dir);
		fbxb_log_tail(log, 8);
	}
	fbxb_teardown(&b);
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
	    "usage: bench_breaker [--storm-seconds S] [--runs R] [--locks N]\n"
	    "                     [--devices D] [--orgs M] [--org-skew F]\n"
	    "  N automatic locks (default 32000) over S s (default 1) for a\n"
	    "  fleet of D devices (32000) in M organisations (40), a share F\n"
	    "  (0.625) in org-001; R runs (3), each on a fresh store\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "storm-seconds", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "locks", required_argument, NULL, 'n' },
		{ "devices", required_argument, NULL, 'd' },
		{ "orgs", required_argument, NULL, 'o' },
		{ "org-skew", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 32000, 32000, 40, 1, 3, "0.625" };
	struct run runs[64];
	double col[64];
	int c, st = 1;

	fbxb_init();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.seconds = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.locks = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			o.devices = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			o.orgs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			o.skew = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (o.locks == 0 || o.devices == 0 || o.orgs < 2 ||
	    o.orgs > ORGS_MAX || o.runs == 0 || o.runs > 64) {
		usage(stderr);
		return 64;
	}
	for (uint32_t r = 0; r < o.runs; r++) {
		if (fbxb_stop || one_run(&o, r + 1, &runs[r]) != FBX_OK)
			goto out;
	}
#define MED(field) med(runs, o.runs, offsetof(struct run, field), col)
	printf("{\"bench\":\"breaker\",\"locks\":%" PRIu32
	       ",\"storm_s\":%" PRIu32 ",\"orgs\":%" PRIu32 ",\"runs\":%" PRIu32
	       ",\"locked_total\":%.0f,\"locked_org001\":%.0f,"
	       "\"locked_other_total\":%.0f,\"locked_other_max\":%.0f,"
	       "\"admitted\":%.0f,\"held\":%.0f,\"refused\":%.0f,"
	       "\"org_trips\":%.0f,\"first_lock_to_global_trip_ms\":%.0f,"
	       "\"storm_elapsed_ms\":%.0f}\n",
	    o.locks, o.seconds, o.orgs, o.runs, MED(locked_total),
	    MED(locked_big), MED(locked_other_total), MED(locked_other_max),
	    MED(admitted), MED(held), MED(refused), MED(org_trips),
	    MED(trip_ms), MED(storm_ms));
#undef MED
	st = 0;
out:
	if (fbxb_stop)
		fprintf(stderr, "breaker: interrupted\n");
	return st;
}
