/*
 * main.c: the options and main: parse, enroll, run the gateway or the
 * storm until stopped, report.
 */
#include "sim.h"

volatile sig_atomic_t sim_stop;

static void
on_signal(int sig)
{
	(void)sig;
	sim_stop = 1;
}

/* ------------------------------------------------------------------ */

static const char *const usage =
    "usage: fusebox-devsim [OPTIONS]\n"
    "\n"
    "Simulate a fleet of devices behind one gateway of a fusebox engine.\n"
    "\n"
    "  --gateway-endpoint EP    engine gateway endpoint\n"
    "                           (default " SIM_DEFAULT_GATEWAY ")\n"
    "  --console-endpoint EP    engine console endpoint, for enrolment\n"
    "                           (default " SIM_DEFAULT_CONSOLE ")\n"
    "  --devices N              fleet size (default 30000)\n"
    "  --orgs M                 organisations org-001.. (default 40)\n"
    "  --org-skew F             share of devices in org-001 (e.g. 0.6)\n"
    "  --gateway-id ID          gateway identity (default devsim-<pid>)\n"
    "  --window W               deliveries held unanswered (default 65536)\n"
    "  --ack-latency-ms L       device answer delay (default 0)\n"
    "  --fail-ratio F           share of deliveries that fail (code 5xx)\n"
    "  --offline-ratio O        share of devices that start offline\n"
    "  --checkin-interval-s C   offline devices check in once after ~C s,\n"
    "                           online ones every C s (0 = never)\n"
    "  --accept-first           send ACCEPTED before the final result\n"
    "  --seed S                 seed of every choice (default 1)\n"
    "  --no-enroll              skip enrolment\n"
    "  --enroll-only            enroll, then exit\n"
    "  --report FILE            write the report here (also every stats\n"
    "                           interval, and at exit)\n"
    "  --report-devices         add one line per device to the report\n"
    "  --delivery-log FILE      append a line per delivery received,\n"
    "                           'R DELIVERY_ID NS', and one when its\n"
    "                           success is ACKed as durable, 'A DELIVERY_ID\n"
    "                           NS' (NS: CLOCK_MONOTONIC in nanoseconds,\n"
    "                           one clock for the machine, so the logs of\n"
    "                           several simulators merge by time); written\n"
    "                           4 times a second and at exit\n"
    "  --stats-interval-s S     stats line on stderr every S s (default 10,\n"
    "                           0 = none)\n"
    "  --quiet                  only errors and the final summary\n"
    "  --key FILE               console key (default $FUSEBOX_KEY)\n"
    "  --gateway-key FILE       gateway key (default $FUSEBOX_GATEWAY_KEY,\n"
    "                           else the console key)\n"
    "  --storm-key FILE         automation key of --storm (default\n"
    "                           $FUSEBOX_STORM_KEY, else the console key)\n"
    "  --server-key FILE        engine public key (default\n"
    "                           $FUSEBOX_SERVER_KEY)\n"
    "Storm (incident 1: a broken attestation rule locks the fleet):\n"
    "  --storm N                submit N single-device automatic commands,\n"
    "                           one per device, once the gateway is welcomed;\n"
    "                           idempotency keys storm-SEED-I: a second storm\n"
    "                           on the same store needs another --seed\n"
    "  --storm-seconds S        spread them evenly over S s (0 = as fast as\n"
    "                           possible; default 10)\n"
    "  --storm-reason R         their reason (default attestation_failed)\n"
    "  --storm-type T           their type (default lock)\n"
    "  --storm-skew F           share of them in org-001 (default 0.625,\n"
    "                           as 20,000 of 2021's 32,000 locks); the rest\n"
    "                           round robin over the other organisations\n"
    "  --storm-inflight K       requests awaiting a reply (default 256)\n"
    "  --storm-only             no gateway: submit the storm, report, exit\n"
    "  --help, --version\n"
    "\n"
    "The report's first line holds the totals; dup_after_durable_success\n"
    "counts deliveries received again after their success was ACKed by the\n"
    "engine, i.e. exactly-once violations; results_refused counts results\n"
    "of ACKed batches the engine did not record (its ACK's count short of\n"
    "the batch: another node's or an unknown delivery), and such a batch\n"
    "gives no durable outcome. Per organisation, locked and\n"
    "unlocked count the devices that received a LOCK or UNLOCK delivery,\n"
    "locked_now those locked now. A storm adds 'storm_org=ORG submitted=\n"
    "admitted= held= refused=' lines (what the engine answered: admitted\n"
    "= accepted for dispatch, held = held by a breaker, refused = an\n"
    "error, by code) and a 'storm_total' line. SIGINT/SIGTERM: BYE,\n"
    "report, exit 0.\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 69 engine unreachable or refused, 70\n"
    "internal error, 71 cannot set up ZeroMQ, 73 cannot write the report\n"
    "or the delivery log.\n";

enum {
	O_GW = 1000,
	O_CONSOLE,
	O_DEVICES,
	O_ORGS,
	O_SKEW,
	O_GWID,
	O_WINDOW,
	O_LAT,
	O_FAIL,
	O_OFFLINE,
	O_CHECKIN,
	O_ACCEPT,
	O_SEED,
	O_NOENROLL,
	O_ENROLLONLY,
	O_REPORT,
	O_REPORTDEV,
	O_DLOG,
	O_STATS,
	O_QUIET,
	O_STORM,
	O_STORM_S,
	O_STORM_REASON,
	O_STORM_TYPE,
	O_STORM_SKEW,
	O_STORM_INFLIGHT,
	O_STORM_ONLY,
	O_HELP,
	O_VERSION,
	O_KEY,
	O_GW_KEY,
	O_STORM_KEY,
	O_SERVER_KEY,
};

static int
bad_flag(const char *what, const char *v)
{
	fprintf(stderr, "fusebox-devsim: %s (%d): bad %s '%s'\n",
	    fbx_errname(FBX_EINVALID), FBX_EINVALID, what, v ? v : "");
	return EX_USAGE;
}

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_ratio(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

static int
parse_args(struct sim *s, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "gateway-endpoint", required_argument, NULL, O_GW },
		{ "console-endpoint", required_argument, NULL, O_CONSOLE },
		{ "devices", required_argument, NULL, O_DEVICES },
		{ "orgs", required_argument, NULL, O_ORGS },
		{ "org-skew", required_argument, NULL, O_SKEW },
		{ "gateway-id", required_argument, NULL, O_GWID },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "ack-latency-ms", required_argument, NULL, O_LAT },
		{ "fail-ratio", required_argument, NULL, O_FAIL },
		{ "offline-ratio", required_argument, NULL, O_OFFLINE },
		{ "checkin-interval-s", required_argument, NULL, O_CHECKIN },
		{ "accept-first", no_argument, NULL, O_ACCEPT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "no-enroll", no_argument, NULL, O_NOENROLL },
		{ "enroll-only", no_argument, NULL, O_ENROLLONLY },
		{ "report", required_argument, NULL, O_REPORT },
		{ "report-devices", no_argument, NULL, O_REPORTDEV },
		{ "delivery-log", required_argument, NULL, O_DLOG },
		{ "stats-interval-s", required_argument, NULL, O_STATS },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "storm", required_argument, NULL, O_STORM },
		{ "storm-seconds", required_argument, NULL, O_STORM_S },
		{ "storm-reason", required_argument, NULL, O_STORM_REASON },
		{ "storm-type", required_argument, NULL, O_STORM_TYPE },
		{ "storm-skew", required_argument, NULL, O_STORM_SKEW },
		{ "storm-inflight", required_argument, NULL, O_STORM_INFLIGHT },
		{ "storm-only", no_argument, NULL, O_STORM_ONLY },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ "key", required_argument, NULL, O_KEY },
		{ "gateway-key", required_argument, NULL, O_GW_KEY },
		{ "storm-key", required_argument, NULL, O_STORM_KEY },
		{ "server-key", required_argument, NULL, O_SERVER_KEY },
		{ NULL, 0, NULL, 0 },
	};
	struct opts *o = &s->o;
	int c, li = -1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, &li)) != -1) {
		/* whole names only: getopt_long would take "--dev" for
		 * "--devices" */
		if (c != '?' && li >= 0 && optind >= 1 && optind <= argc) {
			const char *tok = argv[optind - 1];
			size_t n;
			if (optarg != NULL && optarg == tok && optind >= 2)
				tok = argv[optind - 2];
			n = strcspn(tok, "=");
			if (strncmp(tok, "--", 2) == 0 &&
			    (strlen(lo[li].name) != n - 2 ||
			        strncmp(tok + 2, lo[li].name, n - 2) != 0)) {
				fprintf(stderr, "fusebox-devsim: unknown option "
				    "'%.*s' (did you mean --%s? options are "
				    "not abbreviated)\n", (int)n, tok,
				    lo[li].name);
				return EX_USAGE;
			}
		}
		li = -1;
		switch (c) {
		case O_GW:
			o->gw_ep = optarg;
			break;
		case O_CONSOLE:
			o->console_ep = optarg;
			break;
		case O_DEVICES:
			if (parse_u32(optarg, 1, SIM_DEVICES_MAX, &o->ndev))
				return bad_flag("--devices", optarg);
			break;
		case O_ORGS:
			if (parse_u32(optarg, 1, SIM_ORGS_MAX, &o->norgs))
				return bad_flag("--orgs", optarg);
			break;
		case O_SKEW:
			if (parse_ratio(optarg, &o->org_skew))
				return bad_flag("--org-skew", optarg);
			break;
		case O_GWID:
			if (!fbx_id_valid(optarg))
				return bad_flag("--gateway-id", optarg);
			o->gateway_id = optarg;
			break;
		case O_WINDOW:
			if (parse_u32(optarg, 1, 1u << 24, &o->window))
				return bad_flag("--window", optarg);
			break;
		case O_LAT:
			if (parse_u32(optarg, 0, 3600 * 1000,
			        &o->ack_latency_ms))
				return bad_flag("--ack-latency-ms", optarg);
			break;
		case O_FAIL:
			if (parse_ratio(optarg, &o->fail_ratio))
				return bad_flag("--fail-ratio", optarg);
			break;
		case O_OFFLINE:
			if (parse_ratio(optarg, &o->offline_ratio))
				return bad_flag("--offline-ratio", optarg);
			break;
		case O_CHECKIN:
			if (parse_u32(optarg, 0, 86400 * 30, &o->checkin_s))
				return bad_flag("--checkin-interval-s",
				    optarg);
			break;
		case O_ACCEPT:
			o->accept_first = 1;
			break;
		case O_SEED: {
			char *end;
			errno = 0;
			o->seed = strtoull(optarg, &end, 0);
			if (errno || *end != '\0' || *optarg == '-')
				return bad_flag("--seed", optarg);
			break;
		}
		case O_NOENROLL:
			o->no_enroll = 1;
			break;
		case O_ENROLLONLY:
			o->enroll_only = 1;
			break;
		case O_REPORT:
			o->report = optarg;
			break;
		case O_REPORTDEV:
			o->report_devices = 1;
			break;
		case O_DLOG:
			if (optarg[0] == '\0')
				return bad_flag("--delivery-log", optarg);
			o->delivery_log = optarg;
			break;
		case O_STATS:
			if (parse_u32(optarg, 0, 86400, &o->stats_s))
				return bad_flag("--stats-interval-s", optarg);
			break;
		case O_QUIET:
			o->quiet = 1;
			break;
		case O_STORM:
			if (parse_u32(optarg, 1, SIM_DEVICES_MAX, &o->storm_n))
				return bad_flag("--storm", optarg);
			break;
		case O_STORM_S:
			if (parse_u32(optarg, 0, 86400, &o->storm_s))
				return bad_flag("--storm-seconds", optarg);
			break;
		case O_STORM_REASON:
			if (!fbx_id_valid(optarg))
				return bad_flag("--storm-reason", optarg);
			o->storm_reason = optarg;
			break;
		case O_STORM_TYPE: {
			char t[64];
			snprintf(t, sizeof(t), "%s", optarg);
			for (char *p = t; *p; p++)
				if (*p == '-')
					*p = '_';
			o->storm_type = fbx_cmd_type_parse(t);
			if (o->storm_type == 0)
				return bad_flag("--storm-type", optarg);
			break;
		}
		case O_STORM_SKEW:
			if (parse_ratio(optarg, &o->storm_skew))
				return bad_flag("--storm-skew", optarg);
			break;
		case O_STORM_INFLIGHT:
			if (parse_u32(optarg, 1, 65536, &o->storm_inflight))
				return bad_flag("--storm-inflight", optarg);
			break;
		case O_STORM_ONLY:
			o->storm_only = 1;
			break;
		case 'h':
		case O_HELP:
			fputs(usage, stdout);
			return -1;
		case O_VERSION:
			printf("fusebox-devsim %s (protocol %d)\n",
			    FBX_VERSION, FBX_PROTOCOL_VERSION);
			return -1;
		case O_KEY:
			o->key = optarg;
			break;
		case O_GW_KEY:
			o->gw_key = optarg;
			break;
		case O_STORM_KEY:
			o->storm_key = optarg;
			break;
		case O_SERVER_KEY:
			o->server_key = optarg;
			break;
		default:
			return bad_flag("option",
			    optind > 0 ? argv[optind - 1] : "");
		}
	}
	if (optind < argc)
		return bad_flag("argument", argv[optind]);
	if (o->no_enroll && o->enroll_only)
		return bad_flag("combination", "--no-enroll --enroll-only");
	if (o->norgs > o->ndev)
		return bad_flag("--orgs (more organisations than devices)",
		    argv[0]);
	if (o->storm_only && o->storm_n == 0)
		return bad_flag("combination", "--storm-only without --storm");
	if (o->storm_n > 0 && o->enroll_only)
		return bad_flag("combination", "--storm --enroll-only");
	return 0;
}

int
main(int argc, char **argv)
{
	static struct sim sim; /* large; zeroed */
	struct sim *s = &sim;
	struct sigaction sa;
	char gwid[FBX_ID_MAX + 1];
	int rc, st = EX_OK;

	s->o.gw_ep = SIM_DEFAULT_GATEWAY;
	s->o.console_ep = SIM_DEFAULT_CONSOLE;
	s->o.ndev = 30000;
	s->o.norgs = 40;
	s->o.org_skew = -1;
	s->o.window = 65536;
	s->o.seed = 1;
	s->o.stats_s = 10;
	s->o.storm_s = 10;
	s->o.storm_skew = 20000.0 / 32000.0;
	s->o.storm_reason = "attestation_failed";
	s->o.storm_type = FBX_CMD_LOCK;
	s->o.storm_inflight = SIM_STORM_INFLIGHT;
	rc = parse_args(s, argc, argv);
	if (rc != 0)
		return rc < 0 ? EX_OK : rc;
	if (s->o.gateway_id == NULL) {
		snprintf(gwid, sizeof(gwid), "devsim-%ld", (long)getpid());
		s->o.gateway_id = gwid;
	}
	if (s->o.quiet && s->o.stats_s == 10)
		s->o.stats_s = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	s->start_ms = sim_mono_ms();
	s->next_batch = 1;
	if (sim_fleet_init(s) != FBX_OK ||
	    dtab_init(&s->tab, s->o.ndev) != FBX_OK ||
	    (s->out = malloc(SIM_FLUSH_N * sizeof(*s->out))) == NULL ||
	    (s->capout = SIM_FLUSH_N) == 0 ||
	    (s->cin = malloc(SIM_FLUSH_N * sizeof(*s->cin))) == NULL) {
		sim_logm("out of memory for %" PRIu32 " devices", s->o.ndev);
		st = EX_OSERR;
		goto out;
	}
	if (!s->o.no_enroll) {
		rc = sim_enroll_fleet(s);
		if (rc != FBX_OK && !sim_stop) {
			st = rc == FBX_EUNREACHABLE || rc == FBX_ETIMEOUT
			    ? EX_UNAVAILABLE
			    : EX_SOFTWARE;
			goto out;
		}
	}
	if (s->o.enroll_only || sim_stop)
		goto out;
	if (s->o.storm_n > 0 && sim_storm_plan(s) != FBX_OK) {
		sim_logm("out of memory for a storm of %" PRIu32, s->o.storm_n);
		st = EX_OSERR;
		goto out;
	}
	if (s->o.storm_only) {
		s->ctx = zmq_ctx_new();
		if (s->ctx == NULL || sim_storm_open(s, s->ctx) != FBX_OK) {
			sim_logm("cannot open the storm socket for %s",
			    s->o.console_ep);
			st = EX_UNAVAILABLE;
			goto out;
		}
		if (sim_storm_only_loop(s) != FBX_OK)
			st = EX_SOFTWARE;
		if (sim_save_report(s) != FBX_OK && st == EX_OK)
			st = EX_CANTCREAT;
		sim_storm_report_lines(s, stdout);
		goto out;
	}
	if (s->o.delivery_log != NULL &&
	    (s->dlog = fopen(s->o.delivery_log, "a")) == NULL) {
		sim_logm("cannot open %s: %s", s->o.delivery_log, strerror(errno));
		st = EX_CANTCREAT;
		goto out;
	}
	if (sim_gw_open(s) != FBX_OK) {
		sim_logm("cannot open the gateway socket for %s", s->o.gw_ep);
		st = EX_UNAVAILABLE;
		goto out;
	}
	if (s->o.storm_n > 0 && sim_storm_open(s, s->ctx) != FBX_OK) {
		sim_logm("cannot open the storm socket for %s", s->o.console_ep);
		st = EX_UNAVAILABLE;
		goto out;
	}
	s->start_ms = sim_mono_ms();
	if (sim_gw_loop(s) != FBX_OK)
		st = EX_SOFTWARE;
	if (sim_save_report(s) != FBX_OK && st == EX_OK)
		st = EX_CANTCREAT;
	sim_write_report(s, stdout, 0);
out:
	if (s->dlog != NULL) {
		if (sim_dlog_flush(s) != 0 && st == EX_OK)
			st = EX_CANTCREAT;
		fclose(s->dlog);
	}
	sim_storm_close(s);
	if (s->sock != NULL)
		zmq_close(s->sock);
	if (s->ctx != NULL)
		zmq_ctx_term(s->ctx);
	for (size_t i = 0; i < s->nub; i++)
		free(s->ub[i].recs);
	free(s->ub);
	free(s->out);
	free(s->cin);
	free(s->delay.v);
	dtab_free(&s->tab);
	while (s->bulk.n > 0) {
		fbx_eng_msg_free(&s->bulk.v[s->bulk.head]);
		s->bulk.head = (s->bulk.head + 1) % s->bulk.cap;
		s->bulk.n--;
	}
	free(s->bulk.v);
	free(s->org_start);
	free(s->org_count);
	free(s->ostats);
	free(s->dflags);
	free(s->dev_distinct);
	free(s->dev_received);
	free(s->dlock);
	free(s->storm.dev);
	free(s->storm.so);
	free(s->storm.slots);
	free(s->off_idx);
	free(s->off_due);
	fflush(stdout);
	return st;
}
