/*
 * submit.c: fuseboxctl submit: a command for devices, a group or an
 * organisation, with its dry run, approval, rollout plan and --wait.
 * Its ctl_settled also serves rollback --wait (rollback.c).
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* submit */

static const char *const submit_usage =
    "usage: fuseboxctl submit --type TYPE TARGET [OPTIONS]\n"
    "\n"
    "Submit a command. Prints the command id. A generated idempotency key\n"
    "is printed on stderr before the submit is sent (also with --json):\n"
    "pass it with --idempotency-key to retry safely.\n"
    "\n"
    "  --type TYPE             lock, unlock, wipe, os_update, install_app,\n"
    "                          remove_app, set_policy, start_lost_mode,\n"
    "                          stop_lost_mode, restart, query,\n"
    "                          clear_passcode\n"
    "Target (exactly one):\n"
    "  --device ID[,ID...]     explicit devices (repeatable)\n"
    "  --devices-file F        device ids, one per line ('-' = stdin)\n"
    "  --group G               every device of group G\n"
    "  --all                   every device of the organisation\n"
    "Options:\n"
    "  --platform P            only devices of platform P (android, ios,\n"
    "                          macos, windows, linux, chromeos, any)\n"
    "  --origin O              operator (default), scheduled, or automatic\n"
    "                          (an automation key's only origin); rollback\n"
    "                          is the engine's own and refused\n"
    "  --reason R              reason identifier (recorded, used by\n"
    "                          rollback)\n"
    "  --payload STRING        command payload\n"
    "  --payload-file F        payload from a file (max 64 KiB)\n"
    "  --ttl SECONDS           time to live (default 86400)\n"
    "  --idempotency-key K     key making a retry safe (default: random)\n"
    "  --wait [SECONDS]        wait until every delivery is terminal or\n"
    "                          pending (default 300 s), print the counts\n"
    "Safety controls:\n"
    "  --dry-run               print what the command would reach (devices,\n"
    "                          per platform, per group, the wave plan) and\n"
    "                          the verdict; nothing is submitted. Exit 0 if\n"
    "                          it would be admitted, 65 if a limit or a\n"
    "                          breaker would stop it\n"
    "  --approval TOKEN        a second operator's approval of a command\n"
    "                          refused by a blast-radius limit (the token is\n"
    "                          printed with the refusal)\n"
    "Staged rollout (waves of growing size; defaults: first wave 1%,\n"
    "growth x2, success 95%, failure 10% after 20 results, no bake):\n"
    "  --rollout               release the devices in waves\n"
    "  --first N               first wave of N devices, or\n"
    "  --first-share PCT       first wave as a share of the target (2.5 =\n"
    "                          2.5%)\n"
    "  --growth X              next wave = previous x X (e.g. 2, 1.5)\n"
    "  --max-wave N            cap on a wave's size\n"
    "  --bake SECONDS          wait after a wave's results are in\n"
    "  --success PCT           succeeded share of a wave needed to advance\n"
    "  --failure PCT           failed share that pauses the rollout\n"
    "  --min-results N         results before failures are judged\n"
    "  --stages G1,G2,...      go through these groups in order, then the\n"
    "                          rest of the organisation (needs --all)\n"
    "  --approve-stages        advancing past a group needs an operator's\n"
    "                          'fuseboxctl rollout approve ID'\n"
    "\n"
    "A command held by an open circuit breaker is accepted and durable:\n"
    "its id is printed and 'held by breaker ORG/REASON' on stderr (exit 0).\n"
    "A refusal over a blast-radius limit exits 65 and prints the line\n"
    "'approval token: TOKEN' on stderr.\n";

struct submit_args {
	struct fbx_console_req *req;
	struct fbx_command *cmd;
	int rollout_opts; /* a rollout option was given */
	struct idlist ids;
	int ntargets;
	int have_payload;
	int wait;
	uint64_t wait_s;
};

static int
submit_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct submit_args *sa = arg;
	struct fbx_command *cmd = sa->cmd;
	const char *bad = NULL;
	uint64_t v;
	uint8_t *buf;
	size_t len;
	int rc;

	(void)ctl;
	switch (c) {
	case OPT_TYPE: {
		int type = 0;
		rc = ctl_cmd_type(oa, &type);
		cmd->type = (uint8_t)type;
		return rc;
	}
	case OPT_DEVICE:
		if (cmd->target_kind != FBX_TARGET_DEVICES)
			sa->ntargets++;
		cmd->target_kind = FBX_TARGET_DEVICES;
		rc = ctl_idlist_add_split(&sa->ids, oa, &bad);
		if (rc == FBX_ETOOBIG)
			return ctl_usage_err("more than %d devices",
			    FBX_TARGET_IDS_MAX);
		if (rc == FBX_ENOMEM)
			return ctl_fail(rc, NULL);
		if (rc != FBX_OK)
			return ctl_usage_err("bad device id '%s'", bad);
		return EX_OK;
	case OPT_DEVICES_FILE:
		if (cmd->target_kind != FBX_TARGET_DEVICES)
			sa->ntargets++;
		cmd->target_kind = FBX_TARGET_DEVICES;
		rc = ctl_read_file_capped(oa,
		    (size_t)FBX_TARGET_IDS_MAX * (FBX_ID_MAX + 2), &buf, &len);
		if (rc != FBX_OK)
			return rc == FBX_EIO
			    ? ctl_usage_err("cannot read %s: %s", oa,
			          strerror(errno))
			    : ctl_usage_err("%s: %s", oa, fbx_strerror(rc));
		buf[len] = '\0';
		rc = ctl_idlist_add_split(&sa->ids, (const char *)buf, &bad);
		free(buf);
		if (rc == FBX_ETOOBIG)
			return ctl_usage_err("%s: more than %d devices", oa,
			    FBX_TARGET_IDS_MAX);
		if (rc == FBX_ENOMEM)
			return ctl_fail(rc, NULL);
		if (rc != FBX_OK)
			return ctl_usage_err("%s: bad device id '%s'", oa, bad);
		return EX_OK;
	case OPT_GROUP:
		sa->ntargets++;
		cmd->target_kind = FBX_TARGET_GROUP;
		if (ctl_copy_id(cmd->group, oa) != 0)
			return ctl_usage_err("bad group '%s'", oa);
		return EX_OK;
	case OPT_ALL:
		sa->ntargets++;
		cmd->target_kind = FBX_TARGET_ORG;
		return EX_OK;
	case OPT_PLATFORM:
		cmd->platform = (uint8_t)fbx_platform_parse(oa);
		if (cmd->platform == 0 && strcmp(oa, "any") != 0)
			return ctl_usage_err("unknown platform '%s'", oa);
		return EX_OK;
	case OPT_ORIGIN:
		cmd->origin = (uint8_t)fbx_origin_parse(oa);
		if (cmd->origin == 0)
			return ctl_usage_err("unknown origin '%s'", oa);
		return EX_OK;
	case OPT_REASON:
		if (ctl_copy_id(cmd->reason, oa) != 0)
			return ctl_usage_err("bad reason '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		return EX_OK;
	case OPT_PAYLOAD:
	case OPT_PAYLOAD_FILE:
		if (sa->have_payload)
			return ctl_usage_err("only one --payload or "
					 "--payload-file");
		sa->have_payload = 1;
		if (c == OPT_PAYLOAD) {
			len = strlen(oa);
			if (len > FBX_PAYLOAD_MAX)
				return ctl_usage_err("payload over %d bytes",
				    FBX_PAYLOAD_MAX);
			buf = malloc(len + 1);
			if (buf == NULL)
				return ctl_fail(FBX_ENOMEM, NULL);
			memcpy(buf, oa, len);
		} else {
			rc = ctl_read_file_capped(oa, FBX_PAYLOAD_MAX, &buf, &len);
			if (rc == FBX_EIO)
				return ctl_usage_err("cannot read %s: %s", oa,
				    strerror(errno));
			if (rc == FBX_ETOOBIG)
				return ctl_usage_err("%s: payload over %d bytes",
				    oa, FBX_PAYLOAD_MAX);
			if (rc != FBX_OK)
				return ctl_fail(rc, NULL);
		}
		free(cmd->payload);
		cmd->payload = buf;
		cmd->payload_len = (uint32_t)len;
		return EX_OK;
	case OPT_TTL:
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return ctl_usage_err("bad --ttl '%s' (seconds > 0)", oa);
		cmd->ttl_s = (uint32_t)v;
		return EX_OK;
	case OPT_IDEM:
		if (ctl_copy_id(cmd->idem_key, oa) != 0)
			return ctl_usage_err("bad idempotency key '%s'", oa);
		return EX_OK;
	case OPT_DRY_RUN:
		sa->req->dry_run = 1;
		return EX_OK;
	case OPT_APPROVAL:
		if (ctl_copy_id(sa->req->approval, oa) != 0)
			return ctl_usage_err("bad approval token '%s'", oa);
		return EX_OK;
	case OPT_ROLLOUT:
		cmd->rollout.enabled = 1;
		return EX_OK;
	case OPT_FIRST:
		sa->rollout_opts = 1;
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return ctl_usage_err("bad --first '%s' (devices > 0)", oa);
		cmd->rollout.first_count = (uint32_t)v;
		return EX_OK;
	case OPT_FIRST_SHARE:
		sa->rollout_opts = 1;
		if (ctl_parse_pct(oa, &cmd->rollout.first_share_ppm) != 0 ||
		    cmd->rollout.first_share_ppm == 0)
			return ctl_usage_err("bad --first-share '%s' (percent, "
					 "e.g. 1 or 2.5)",
			    oa);
		return EX_OK;
	case OPT_GROWTH:
		sa->rollout_opts = 1;
		if (ctl_parse_factor(oa, 100, 100000, &cmd->rollout.growth_x100) !=
		    0)
			return ctl_usage_err("bad --growth '%s' (a factor >= 1, "
					 "e.g. 2 or 1.5)",
			    oa);
		return EX_OK;
	case OPT_MAX_WAVE:
		sa->rollout_opts = 1;
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return ctl_usage_err("bad --max-wave '%s' (devices > 0)",
			    oa);
		cmd->rollout.max_wave = (uint32_t)v;
		return EX_OK;
	case OPT_BAKE:
		sa->rollout_opts = 1;
		if (ctl_parse_u64(oa, 30u * 86400, &v) != 0)
			return ctl_usage_err("bad --bake '%s' (seconds)", oa);
		cmd->rollout.bake_s = (uint32_t)v;
		return EX_OK;
	case OPT_SUCCESS:
		sa->rollout_opts = 1;
		if (ctl_parse_pct(oa, &cmd->rollout.success_ppm) != 0 ||
		    cmd->rollout.success_ppm == 0)
			return ctl_usage_err("bad --success '%s' (percent > 0)",
			    oa);
		return EX_OK;
	case OPT_FAILURE:
		sa->rollout_opts = 1;
		if (ctl_parse_pct(oa, &cmd->rollout.failure_ppm) != 0 ||
		    cmd->rollout.failure_ppm == 0)
			return ctl_usage_err("bad --failure '%s' (percent > 0)",
			    oa);
		return EX_OK;
	case OPT_MIN_RESULTS:
		sa->rollout_opts = 1;
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return ctl_usage_err("bad --min-results '%s' (> 0)", oa);
		cmd->rollout.min_results = (uint32_t)v;
		return EX_OK;
	case OPT_STAGES: {
		char tmp[FBX_ROLLOUT_GROUPS_MAX * (FBX_ID_MAX + 1) + 64];
		char *save = NULL, *tok;
		sa->rollout_opts = 1;
		if (strlen(oa) >= sizeof(tmp))
			return ctl_usage_err("--stages too long");
		strcpy(tmp, oa);
		cmd->rollout.ngroups = 0;
		for (tok = strtok_r(tmp, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			if (cmd->rollout.ngroups >= FBX_ROLLOUT_GROUPS_MAX)
				return ctl_usage_err("--stages: at most %d "
						 "groups",
				    FBX_ROLLOUT_GROUPS_MAX);
			if (ctl_copy_id(cmd->rollout.groups[cmd->rollout.ngroups],
			        tok) != 0)
				return ctl_usage_err("--stages: bad group '%s'",
				    tok);
			cmd->rollout.ngroups++;
		}
		if (cmd->rollout.ngroups == 0)
			return ctl_usage_err("--stages: no group given");
		return EX_OK;
	}
	case OPT_APPROVE_STAGES:
		sa->rollout_opts = 1;
		cmd->rollout.approve_groups = 1;
		return EX_OK;
	case OPT_WAIT:
		sa->wait = 1;
		if (oa == NULL && optind < argc &&
		    ctl_parse_u64(argv[optind], 86400 * 7, &v) == 0) {
			oa = argv[optind++];
		}
		if (oa != NULL) {
			if (ctl_parse_u64(oa, 86400 * 7, &v) != 0)
				return ctl_usage_err("bad --wait '%s' (seconds)",
				    oa);
			sa->wait_s = v;
		}
		return EX_OK;
	default:
		return ctl_usage_err("unexpected option (see submit --help)");
	}
}

/* show_key - the generated idempotency key, on stderr: the submit is
 * sent again safely only with it */
static void
show_key(const char *key)
{
	/* not an error: worded as the step it is */
	fprintf(stderr,
	    "fuseboxctl: sending with idempotency key %s (to send this "
	    "submit again safely: --idempotency-key %s)\n",
	    key, key);
}

static void
random_key(char *buf, size_t len)
{
	uint8_t r[12] = { 0 };
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t k = 0;

	if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t v = (uint64_t)ts.tv_nsec ^
		    ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48);
		memcpy(r, &v, sizeof(v));
	}
	if (fd >= 0)
		close(fd);
	k = (size_t)snprintf(buf, len, "ctl-");
	for (size_t i = 0; i < sizeof(r) && k + 2 < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%02x", r[i]);
}

static void
print_counts_table(const struct fbx_command *c)
{
	struct table t = { .ncol = 2 };

	ctl_table_row(&t, "STATE", "COUNT");
	for (int s = 1; s < FBX_D_COUNT; s++) {
		char n[16];
		snprintf(n, sizeof(n), "%" PRIu32, c->counts[s]);
		ctl_table_row(&t, fbx_dstate_name(s), n);
	}
	{
		char n[16];
		snprintf(n, sizeof(n), "%" PRIu32, c->ndeliveries);
		ctl_table_row(&t, "total", n);
	}
	ctl_table_print(&t);
	ctl_table_free(&t);
}

/* ctl_settled - whether a command needs no more waiting: all deliveries
 * created and each terminal or pending on an offline device. */
int
ctl_settled(const struct fbx_command *c)
{
	uint32_t n = 0;

	if (c->state == FBX_C_DONE)
		return 1;
	if (c->state == FBX_C_EXPANDING)
		return 0;
	for (int s = 1; s < FBX_D_COUNT; s++) {
		if (fbx_dstate_terminal(s) || s == FBX_D_PENDING)
			n += c->counts[s];
	}
	return n >= c->ndeliveries;
}

/* gateways_now - how many gateways the engine has (status), or -1. */
static int
gateways_now(struct ctl *ctl)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int n;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	if (ctl_call_ex(ctl, &req, &rep, &n) != EX_OK)
		return -1;
	n = (int)rep.u.pong.gateways;
	fbx_console_rep_free(&rep);
	return n;
}

static int
wait_command(struct ctl *ctl, uint64_t id, uint64_t wait_s)
{
	int64_t deadline = ctl_mono_ms() + (int64_t)wait_s * 1000;
	int64_t next_gw = ctl_mono_ms() + 1000;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st, said_none = 0, first = 1;

	for (;;) {
		int done, eng = FBX_OK;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		st = ctl_call_ex(ctl, &req, &rep, first ? &eng : NULL);
		if (st != EX_OK && eng == FBX_EFORBIDDEN)
			/* a key that may submit but not read (operator
			 * without viewer): the command stands, and a
			 * script must not take the status for a failed
			 * submit and send it again */
			return ctl_fail(eng,
			    "command %" PRIu64 " is submitted (it stands: do "
			    "not send it again); --wait cannot follow it: %s",
			    id, ctl->errmsg);
		if (st != EX_OK && eng != FBX_OK)
			return ctl_fail(eng, "%s", ctl->errmsg);
		if (st != EX_OK)
			return st;
		first = 0;
		done = ctl_settled(&rep.u.command.info);
		if (done || ctl_mono_ms() >= deadline) {
			if (ctl->json) {
				json_t *o = json_object();
				if (o != NULL) {
					CJ_INT(o, "command_id", id);
					CJ_BOOL(o, "settled", done);
					CJ_SET(o, "command", ctl_json_command(
					    &rep.u.command.info));
				}
				ctl_json_print(o);
			} else {
				print_counts_table(&rep.u.command.info);
			}
			fbx_console_rep_free(&rep);
			if (!done)
				return ctl_fail(FBX_ETIMEOUT,
				    "wait expired after %" PRIu64
				    " s; command %" PRIu64 " not settled",
				    wait_s, id);
			return EX_OK;
		}
		fbx_console_rep_free(&rep);
		/* deliveries go nowhere without a gateway: say so rather
		 * than wait in silence until --wait runs out */
		if (ctl_mono_ms() >= next_gw) {
			int g = gateways_now(ctl);
			if (g == 0 && !said_none)
				fprintf(stderr,
				    "fuseboxctl: waiting for command %" PRIu64
				    ": no gateway is connected (status: "
				    "gateways 0); its deliveries stay queued "
				    "until one connects or their TTL ends\n",
				    id);
			else if (g > 0 && said_none)
				fprintf(stderr,
				    "fuseboxctl: %d gateway(s) connected\n",
				    g);
			if (g >= 0)
				said_none = g == 0;
			next_gw = ctl_mono_ms() + 5000;
		}
		usleep(500 * 1000);
	}
}

/* print_dry_run - the dry-run report; exit 0 if the command would be
 * admitted, the stop error's status (65) with the verdict otherwise. */
static int
print_dry_run(struct ctl *ctl, const struct fbx_command *cmd,
    struct fbx_console_rep *rep)
{
	const struct fbx_dryrun *d = &rep->u.submit.dryrun;
	int st = EX_OK;

	if (!rep->u.submit.dry_run) {
		fbx_console_rep_free(rep);
		return ctl_fail(FBX_EPROTOCOL,
		    "the engine answered a dry run without a report");
	}
	if (ctl->json) {
		ctl_json_print(ctl_json_dry_run(d));
	} else {
		struct table t = { .ncol = 2 };
		char b[64], tg[128];
		ctl_target_str(cmd, tg, sizeof(tg));
		ctl_table_row(&t, "dry run", "nothing submitted");
		ctl_table_row(&t, "type", fbx_cmd_type_name(cmd->type));
		ctl_table_row(&t, "origin", fbx_origin_name(cmd->origin));
		ctl_table_row(&t, "target", tg);
		ctl_table_row(&t, "platform", fbx_platform_name(cmd->platform));
		snprintf(b, sizeof(b), "%" PRIu32, d->devices);
		ctl_table_row(&t, "devices", b);
		ctl_table_print(&t);
		ctl_table_free(&t);
		t.ncol = 2;
		printf("\n");
		ctl_table_row(&t, "PLATFORM", "DEVICES");
		for (int p = 0; p < FBX_PLATFORM_COUNT; p++) {
			if (d->per_platform[p] == 0)
				continue;
			snprintf(b, sizeof(b), "%" PRIu32, d->per_platform[p]);
			ctl_table_row(&t, fbx_platform_name(p), b);
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
		if (d->ngroups > 0) {
			t.ncol = 2;
			printf("\n");
			ctl_table_row(&t, "GROUP", "DEVICES");
			for (size_t i = 0; i < d->ngroups; i++) {
				snprintf(b, sizeof(b), "%" PRIu32,
				    d->groups[i].count);
				ctl_table_row(&t, d->groups[i].name, b);
			}
			ctl_table_print(&t);
			ctl_table_free(&t);
		}
		if (cmd->rollout.enabled) {
			uint64_t cum = 0;
			char plan[512];
			ctl_plan_str(&cmd->rollout, plan, sizeof(plan));
			printf("\nrollout plan: %s\n", plan);
			printf("waves as the engine plans them over the %" PRIu32
			       " devices%s:\n",
			    d->devices,
			    d->nstages > 0 ? ", stage by stage" : "");
			t.ncol = 4;
			ctl_table_row(&t, "STAGE", "WAVE", "DEVICES", "CUMULATIVE");
			{
				size_t s = 0, left = d->nstages > 0
				    ? d->stage_waves[0] : d->nwaves;
				for (size_t i = 0; i < d->nwaves; i++) {
					char w[24], c[24], sg[96];
					while (d->nstages > 0 && left == 0 &&
					    s + 1 < d->nstages)
						left = d->stage_waves[++s];
					if (left > 0)
						left--;
					cum += d->waves[i];
					if (d->nstages == 0)
						snprintf(sg, sizeof(sg), "-");
					else if (s < cmd->rollout.ngroups)
						snprintf(sg, sizeof(sg),
						    "%zu: %s (%" PRIu32 ")", s + 1,
						    cmd->rollout.groups[s],
						    d->stage_devices[s]);
					else
						snprintf(sg, sizeof(sg),
						    "%zu: the rest (%" PRIu32 ")",
						    s + 1, d->stage_devices[s]);
					snprintf(w, sizeof(w), "%zu", i + 1);
					snprintf(b, sizeof(b), "%" PRIu32,
					    d->waves[i]);
					snprintf(c, sizeof(c), "%" PRIu64, cum);
					ctl_table_row(&t, sg, w, b, c);
				}
			}
			ctl_table_print(&t);
			ctl_table_free(&t);
			if (d->nstages > 1 && cmd->rollout.approve_groups)
				printf("each stage after the first waits for "
				       "`rollout approve`\n");
		}
		printf("\nverdict: %s\n", d->verdict);
	}
	fflush(stdout);
	if (d->stop_err != FBX_OK)
		st = ctl_fail(d->stop_err, "%s", d->verdict);
	fbx_console_rep_free(rep);
	return st;
}

int
cmd_submit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "devices-file", required_argument, NULL, OPT_DEVICES_FILE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "payload", required_argument, NULL, OPT_PAYLOAD },
		{ "payload-file", required_argument, NULL, OPT_PAYLOAD_FILE },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "idempotency-key", required_argument, NULL, OPT_IDEM },
		{ "wait", optional_argument, NULL, OPT_WAIT },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "approval", required_argument, NULL, OPT_APPROVAL },
		{ "rollout", no_argument, NULL, OPT_ROLLOUT },
		{ "first", required_argument, NULL, OPT_FIRST },
		{ "first-share", required_argument, NULL, OPT_FIRST_SHARE },
		{ "growth", required_argument, NULL, OPT_GROWTH },
		{ "max-wave", required_argument, NULL, OPT_MAX_WAVE },
		{ "bake", required_argument, NULL, OPT_BAKE },
		{ "success", required_argument, NULL, OPT_SUCCESS },
		{ "failure", required_argument, NULL, OPT_FAILURE },
		{ "min-results", required_argument, NULL, OPT_MIN_RESULTS },
		{ "stages", required_argument, NULL, OPT_STAGES },
		{ "approve-stages", no_argument, NULL, OPT_APPROVE_STAGES },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct submit_args sa;
	struct fbx_command *cmd = &req.u.submit.cmd;
	int st, generated = 0, held;
	uint64_t id;

	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	memset(&sa, 0, sizeof(sa));
	sa.req = &req;
	sa.cmd = cmd;
	sa.ids.max = FBX_TARGET_IDS_MAX;
	sa.wait_s = CTL_DEFAULT_WAIT_S;
	cmd->origin = FBX_ORIGIN_OPERATOR;
	cmd->ttl_s = CTL_DEFAULT_TTL_S;
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, submit_usage, submit_opt, &sa);
	if (st < 0) {
		st = -st - 1;
		goto out;
	}
	if (st < argc) {
		st = ctl_usage_err("unexpected argument '%s'", argv[st]);
		goto out;
	}
	if ((st = ctl_need_org(ctl)) != EX_OK)
		goto out;
	if (cmd->type == 0) {
		st = ctl_usage_err("--type is required (see submit --help)");
		goto out;
	}
	if (sa.ntargets != 1) {
		st = ctl_usage_err("give exactly one target: --device, "
			       "--devices-file, --group or --all");
		goto out;
	}
	if (cmd->target_kind == FBX_TARGET_DEVICES && sa.ids.n == 0) {
		st = ctl_usage_err("no device ids given");
		goto out;
	}
	if (sa.rollout_opts && !cmd->rollout.enabled) {
		st = ctl_usage_err("rollout options (--first, --growth, --stages, "
			       "...) go with --rollout");
		goto out;
	}
	if (cmd->rollout.first_count != 0 &&
	    cmd->rollout.first_share_ppm != 0) {
		st = ctl_usage_err("give --first or --first-share, not both");
		goto out;
	}
	if (cmd->rollout.ngroups > 0 && cmd->target_kind != FBX_TARGET_ORG) {
		st = ctl_usage_err("--stages rolls out through groups of the "
			       "whole organisation: it needs --all");
		goto out;
	}
	if (cmd->rollout.approve_groups && cmd->rollout.ngroups == 0) {
		st = ctl_usage_err("--approve-stages needs --stages");
		goto out;
	}
	if (req.dry_run && sa.wait) {
		st = ctl_usage_err("--dry-run submits nothing: no --wait");
		goto out;
	}
	if (req.dry_run) {
		req.kind = FBX_CREQ_SUBMIT;
		cmd->dev_ids = sa.ids.ids;
		cmd->ndev_ids = (uint32_t)sa.ids.n;
		st = ctl_call(ctl, &req, &rep);
		if (st == EX_OK)
			st = print_dry_run(ctl, cmd, &rep);
		goto out;
	}
	if (cmd->idem_key[0] == '\0') {
		random_key(cmd->idem_key, sizeof(cmd->idem_key));
		generated = 1;
	}
	req.kind = FBX_CREQ_SUBMIT;
	cmd->dev_ids = sa.ids.ids;
	cmd->ndev_ids = (uint32_t)sa.ids.n;
	/* a generated key is shown before the call, also with --json (on
	 * stderr, apart from the JSON): the answer may never come (IO,
	 * TIMEOUT, the process killed while it waits), and the submit is
	 * sent again safely only with that key */
	if (generated)
		show_key(cmd->idem_key);
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		goto out;
	id = rep.u.submit.command_id;
	if (ctl->json) {
		json_t *o = json_object();
		if (o != NULL) {
			CJ_INT(o, "command_id", id);
			CJ_BOOL(o, "duplicate", rep.u.submit.duplicate);
			CJ_INT(o, "device_count", rep.u.submit.device_count);
			CJ_STR(o, "state", fbx_cstate_name(rep.u.submit.state));
			CJ_STR(o, "idempotency_key", cmd->idem_key);
			CJ_STR(o, "held_by", rep.u.submit.held_by);
		}
		ctl_json_print(o);
	} else {
		printf("%" PRIu64 "\n", id);
		if (rep.u.submit.duplicate)
			fprintf(stderr, "fuseboxctl: key %s was already used "
					"by this command: not submitted "
					"again\n",
			    cmd->idem_key);
		if (rep.u.submit.state == FBX_C_HELD)
			fprintf(stderr, "held by breaker %s\n",
			    rep.u.submit.held_by[0] ? rep.u.submit.held_by
			                            : "?");
	}
	fflush(stdout);
	held = rep.u.submit.state == FBX_C_HELD;
	fbx_console_rep_free(&rep);
	if (sa.wait && held)
		fprintf(stderr, "fuseboxctl: not waiting: command %" PRIu64
				" is held until an operator resets the "
				"breaker\n",
		    id);
	else if (sa.wait)
		st = wait_command(ctl, id, sa.wait_s);
out:
	cmd->dev_ids = NULL;
	free(sa.ids.ids);
	free(cmd->payload);
	cmd->payload = NULL;
	return st;
}
