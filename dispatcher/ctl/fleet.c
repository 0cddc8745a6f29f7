/*
 * fleet.c: fuseboxctl fleet: check-in health, stale devices and the alert
 * rules.
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* fleet check-in health */

static const char *const fleet_usage =
    "usage: fuseboxctl fleet [report] [--group G]\n"
    "       fuseboxctl fleet version COMMAND_ID\n"
    "       fuseboxctl fleet rule set --stale DUR [--repeat DUR] [--note "
    "TEXT]\n"
    "       fuseboxctl fleet rule remove --stale DUR [--note TEXT]\n"
    "\n"
    "The organisation's fleet check-in health, as of the engine's last\n"
    "pass over the registry (once a minute): devices by hours since\n"
    "their last check-in ('never' for one that never checked in), OS\n"
    "versions, and the alert rules with the devices over each (a rule\n"
    "counts a device that never checked in from its enrolment).\n"
    "A rule alerts (event devices_stale, and the alert command) when\n"
    "devices go --stale without a check-in, again every --repeat while\n"
    "any is (none: once), and once more when every one is back. At most\n"
    "8 rules per organisation; set and remove need the breaker role.\n"
    "List the stale devices with `fuseboxctl devices --stale DUR`.\n"
    "`fleet version ID`: of an os_update's devices, how many report its\n"
    "target version (the payload's \"version\" or version=V) at their\n"
    "last check-in (incident 3: the applied state, not the sent one).\n"
    "\n"
    "  --group G     the report of group G, read now from its devices\n"
    "                (no rules, no outcomes: those are the\n"
    "                organisation's)\n"
    "  --stale DUR   the rule's threshold: 1440m, 24h, 2d (at least 1m)\n"
    "  --repeat DUR  alert again this often while devices are over it\n"
    "  --note TEXT   recorded in the audit log\n";

struct fleet_args {
	uint32_t stale, repeat;
	char note[FBX_NOTE_MAX];
	fbx_id group;
};

static int
fleet_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct fleet_args *a = arg;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_STALE:
		if (ctl_parse_minutes(oa, FBX_FLEET_STALE_MAX, &a->stale) != 0)
			return ctl_usage_err("bad --stale '%s' (e.g. 1440m, 24h, "
					 "2d; at least 1m)",
			    oa);
		return EX_OK;
	case OPT_GROUP:
		if (ctl_copy_id(a->group, oa) != 0)
			return ctl_usage_err("bad --group '%s'", oa);
		return EX_OK;
	case OPT_REPEAT:
		if (ctl_parse_minutes(oa, FBX_FLEET_REPEAT_MAX, &a->repeat) != 0)
			return ctl_usage_err("bad --repeat '%s' (e.g. 60m, 1h; "
					 "at least 1m, at most 365d)",
			    oa);
		return EX_OK;
	case OPT_NOTE:
		if (ctl_copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return ctl_usage_err("unexpected option");
	}
}

static void
print_fleet(const char *org, const struct fbx_fleet_report *f)
{
	struct table t = { .ncol = 3 };
	char when[40], b[32], c[32], bar[48];
	uint32_t max = 1;

	if (f->as_of_ms == 0) {
		printf("fleet of %s: not covered by a pass over the registry "
		       "yet (one runs every minute)\n",
		    org);
	} else {
		ctl_fmt_time(f->as_of_ms, when, sizeof(when));
		printf("fleet of %s as of %s: %" PRIu32 " devices\n\n", org,
		    when, f->devices);
		for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
			max = f->offline_hours[i] > max ? f->offline_hours[i]
			                                : max;
		ctl_table_row(&t, "HOURS_SINCE_CHECKIN", "DEVICES", "");
		for (int i = 0; i < FBX_FLEET_BUCKETS; i++) {
			size_t w = (size_t)((uint64_t)f->offline_hours[i] * 40 /
			    max);
			if (w == 0 && f->offline_hours[i] > 0)
				w = 1;
			memset(bar, '#', w);
			bar[w] = '\0';
			snprintf(b, sizeof(b), "%" PRIu32, f->offline_hours[i]);
			ctl_table_row(&t, ctl_fleet_bucket_names[i], b, bar);
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
		memset(&t, 0, sizeof(t));
		t.ncol = 2;
		printf("\n");
		ctl_table_row(&t, "OS_VERSION", "DEVICES");
		for (size_t i = 0; i < f->nos; i++) {
			snprintf(b, sizeof(b), "%" PRIu32, f->os[i].count);
			ctl_table_row(&t,
			    f->os[i].version[0] ? f->os[i].version : "(none)",
			    b);
		}
		if (f->os_other > 0) {
			snprintf(b, sizeof(b), "%" PRIu32, f->os_other);
			ctl_table_row(&t, "(other)", b);
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
	}
	printf("\n");
	if (f->nout > 0) {
		memset(&t, 0, sizeof(t));
		t.ncol = 4;
		ctl_table_row(&t, "OUTCOMES_BY_TYPE", "THIS_HOUR_OK/FAILED/EXPIRED",
		    "24H_OK/FAILED/EXPIRED", "");
		for (size_t i = 0; i < f->nout; i++) {
			const struct fbx_type_outcomes *o = &f->out[i];
			char h[80], d[80];
			snprintf(h, sizeof(h),
			    "%" PRIu64 "/%" PRIu64 "/%" PRIu64, o->ok_hour,
			    o->failed_hour, o->expired_hour);
			snprintf(d, sizeof(d),
			    "%" PRIu64 "/%" PRIu64 "/%" PRIu64, o->ok_day,
			    o->failed_day, o->expired_day);
			ctl_table_row(&t, fbx_cmd_type_name(o->type), h, d,
			    o->silent ? "SILENT: none succeeded this hour"
			              : "");
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
		printf("\n");
	}
	if (f->group[0] != '\0')
		return; /* rules and outcomes are the organisation's */
	if (f->nrules == 0) {
		printf("no alert rules (fuseboxctl fleet rule set --stale 1440m "
		       "--repeat 60m)\n");
		return;
	}
	memset(&t, 0, sizeof(t));
	t.ncol = 4;
	ctl_table_row(&t, "RULE_STALE_AFTER", "REPEAT", "DEVICES_OVER",
	    "LAST_ALERT");
	for (size_t i = 0; i < f->nrules; i++) {
		ctl_fmt_minutes(f->rules[i].stale_minutes, b, sizeof(b));
		if (f->rules[i].repeat_minutes > 0)
			ctl_fmt_minutes(f->rules[i].repeat_minutes, c, sizeof(c));
		else
			snprintf(c, sizeof(c), "once");
		ctl_fmt_time(f->rules[i].last_alert_ms, when, sizeof(when));
		{
			char n[16];
			snprintf(n, sizeof(n), "%" PRIu32, f->rules[i].stale);
			ctl_table_row(&t, b, c, n, when);
		}
	}
	ctl_table_print(&t);
	ctl_table_free(&t);
}

/* fleet_version - an OS update's devices reporting its target version,
 * summed over the engine's pages */
static int
fleet_version(struct ctl *ctl, uint64_t id)
{
	uint64_t after = 0, devices = 0, at = 0, other = 0, unknown = 0;
	char target[FBX_OSVER_MAX + 1] = "";
	int st = EX_OK;

	do {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_FLEET;
		req.u.fleet.op = FBX_FLEET_VERSION;
		req.u.fleet.command_id = id;
		req.u.fleet.after = after;
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		snprintf(target, sizeof(target), "%s",
		    rep.u.fleet.version.target);
		devices += rep.u.fleet.version.devices;
		at += rep.u.fleet.version.at_target;
		other += rep.u.fleet.version.other;
		unknown += rep.u.fleet.version.unknown;
		after = rep.u.fleet.version.next_after;
		fbx_console_rep_free(&rep);
	} while (after != 0);
	if (ctl->json) {
		ctl_json_print(json_pack("{s:I,s:o*,s:I,s:I,s:I,s:I}",
		    "command", (json_int_t)id, "target", fbx_json_str(target),
		    "devices", (json_int_t)devices, "at_target",
		    (json_int_t)at, "other", (json_int_t)other, "unknown",
		    (json_int_t)unknown));
		return EX_OK;
	}
	if (target[0] == '\0') {
		printf("command %" PRIu64 ": its payload names no version "
		       "(\"version\": \"V\" or version=V); %" PRIu64
		       " devices\n",
		    id, devices);
		return EX_OK;
	}
	printf("command %" PRIu64 " (os_update to %s): %" PRIu64
	       " devices; %" PRIu64 " report %s (%.1f%%), %" PRIu64
	       " another version, %" PRIu64
	       " none yet or no longer enrolled (at their last check-in)\n",
	    id, target, devices, at, target,
	    devices ? 100.0 * (double)at / (double)devices : 0.0, other,
	    unknown);
	return EX_OK;
}

/* fleet_group - a group's report, read now by the engine a page at a
 * time: the pages' counts summed, their OS versions merged (each page
 * names its 16 most common; the rest of a page is in os_other) */
static int
fleet_group(struct ctl *ctl, const char *group)
{
	struct fbx_fleet_report sum;
	struct fbx_version_count v[256];
	size_t nv = 0;
	fbx_id after = "";
	int st;

	memset(&sum, 0, sizeof(sum));
	do {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		const struct fbx_fleet_report *f = &rep.u.fleet;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_FLEET;
		req.u.fleet.op = FBX_FLEET_REPORT;
		snprintf(req.u.fleet.group, sizeof(req.u.fleet.group), "%s",
		    group);
		snprintf(req.u.fleet.after_dev, sizeof(req.u.fleet.after_dev),
		    "%s", after);
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		sum.as_of_ms = f->as_of_ms;
		sum.devices += f->devices;
		for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
			sum.offline_hours[i] += f->offline_hours[i];
		sum.os_other += f->os_other;
		for (size_t i = 0; i < f->nos; i++) {
			size_t k;
			for (k = 0; k < nv; k++)
				if (strcmp(v[k].version, f->os[i].version) == 0)
					break;
			if (k < nv)
				v[k].count += f->os[i].count;
			else if (nv < sizeof(v) / sizeof(v[0]))
				v[nv++] = f->os[i];
			else
				sum.os_other += f->os[i].count;
		}
		snprintf(after, sizeof(after), "%s", f->next_after);
		fbx_console_rep_free(&rep);
	} while (after[0] != '\0');
	/* the 16 most common, the rest in os_other */
	for (size_t i = 1; i < nv; i++)
		for (size_t k = i; k > 0 && v[k].count > v[k - 1].count; k--) {
			struct fbx_version_count t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	sum.nos = nv < FBX_FLEET_OS_MAX ? nv : FBX_FLEET_OS_MAX;
	memcpy(sum.os, v, sum.nos * sizeof(v[0]));
	for (size_t i = sum.nos; i < nv; i++)
		sum.os_other += v[i].count;
	snprintf(sum.group, sizeof(sum.group), "%s", group);
	if (ctl->json) {
		ctl_json_print(ctl_json_fleet(&sum));
	} else {
		char title[2 * sizeof(fbx_id) + 16];
		snprintf(title, sizeof(title), "%s group %s", ctl->org, group);
		print_fleet(title, &sum);
	}
	return EX_OK;
}

int
cmd_fleet(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "stale", required_argument, NULL, OPT_STALE },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fleet_args a;
	int st, op = FBX_FLEET_REPORT;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, fleet_usage, fleet_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st < argc && strcmp(argv[st], "version") == 0) {
		uint64_t id;
		if (st + 2 != argc || ctl_parse_u64(argv[st + 1], UINT64_MAX, &id) != 0 ||
		    id == 0)
			return ctl_usage_err("fleet version needs one command id");
		if (a.stale || a.repeat || a.note[0])
			return ctl_usage_err("fleet version takes no options of its "
					 "own");
		if ((st = ctl_need_org(ctl)) != EX_OK)
			return st;
		return fleet_version(ctl, id);
	}
	if (st < argc && strcmp(argv[st], "report") == 0) {
		st++;
	} else if (st < argc && strcmp(argv[st], "rule") == 0) {
		if (st + 1 >= argc)
			return ctl_usage_err("fleet rule needs set or remove");
		if (strcmp(argv[st + 1], "set") == 0)
			op = FBX_FLEET_RULE_SET;
		else if (strcmp(argv[st + 1], "remove") == 0)
			op = FBX_FLEET_RULE_DEL;
		else
			return ctl_usage_err("unknown fleet rule operation '%s' "
					 "(set, remove)",
			    argv[st + 1]);
		st += 2;
	}
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	if (op == FBX_FLEET_REPORT && (a.stale || a.repeat || a.note[0]))
		return ctl_usage_err("fleet report takes no options of its own");
	if (op != FBX_FLEET_REPORT && a.stale == 0)
		return ctl_usage_err("fleet rule %s needs --stale DUR",
		    op == FBX_FLEET_RULE_SET ? "set" : "remove");
	if (op == FBX_FLEET_RULE_DEL && a.repeat)
		return ctl_usage_err("--repeat goes with fleet rule set");
	if (op != FBX_FLEET_REPORT && a.group[0])
		return ctl_usage_err("--group goes with fleet report");
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	if (a.group[0])
		return fleet_group(ctl, a.group);
	req.kind = FBX_CREQ_FLEET;
	req.u.fleet.op = op;
	req.u.fleet.stale_minutes = a.stale;
	req.u.fleet.repeat_minutes = a.repeat;
	strcpy(req.u.fleet.note, a.note);
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json)
		ctl_json_print(ctl_json_fleet(&rep.u.fleet));
	else
		print_fleet(ctl->org, &rep.u.fleet);
	fbx_console_rep_free(&rep);
	return EX_OK;
}
