/*
 * devices.c: fuseboxctl enroll, remove, devices, groups and status: the
 * device registry and the engine's status.
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* enroll */

static const char *const enroll_usage =
    "usage: fuseboxctl enroll --device ID --platform P [--os V]\n"
    "                         [--group G]...\n"
    "       fuseboxctl enroll --file CSV\n"
    "\n"
    "Enroll (or update) devices of the organisation.\n"
    "\n"
    "  --device ID     device identifier\n"
    "  --platform P    android, ios, macos, windows, linux, chromeos\n"
    "  --os V          operating system version\n"
    "  --group G       group membership (repeatable, max 8)\n"
    "  --file CSV      lines 'id,platform,os_version,group1;group2'\n"
    "                  ('-' = stdin; '#' comments and a header line 'id,..'\n"
    "                  are skipped); sent in batches of 10000\n";

/* parse_csv_line - fill dev from "id,platform,os,g1;g2". */
static int
parse_csv_line(char *line, struct fbx_device *dev, char *why, size_t wl)
{
	char *f[4] = { NULL, NULL, NULL, NULL };
	int nf = 0;
	char *p = line;

	memset(dev, 0, sizeof(*dev));
	while (nf < 4) {
		f[nf++] = p;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (p != NULL) {
		snprintf(why, wl, "more than 4 fields");
		return -1;
	}
	for (int i = 0; i < nf; i++) {
		char *s = f[i], *e;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' ||
		                    e[-1] == '\r'))
			*--e = '\0';
		f[i] = s;
	}
	if (ctl_copy_id(dev->id, f[0]) != 0) {
		snprintf(why, wl, "bad device id '%.80s'", f[0]);
		return -1;
	}
	if (nf < 2 || (dev->platform = (uint8_t)fbx_platform_parse(f[1])) ==
	        0) {
		snprintf(why, wl, "bad platform '%.40s'", nf < 2 ? "" : f[1]);
		return -1;
	}
	if (nf >= 3) {
		if (strlen(f[2]) > FBX_OSVER_MAX) {
			snprintf(why, wl, "os version too long");
			return -1;
		}
		strcpy(dev->os_version, f[2]);
	}
	if (nf >= 4 && f[3][0] != '\0') {
		char *g = f[3], *save = NULL, *tok;
		for (tok = strtok_r(g, ";", &save); tok != NULL;
		    tok = strtok_r(NULL, ";", &save)) {
			if (dev->ngroups >= FBX_GROUPS_MAX) {
				snprintf(why, wl, "more than %d groups",
				    FBX_GROUPS_MAX);
				return -1;
			}
			if (ctl_copy_id(dev->groups[dev->ngroups], tok) != 0) {
				snprintf(why, wl, "bad group '%.80s'", tok);
				return -1;
			}
			dev->ngroups++;
		}
	}
	return 0;
}

static int
enroll_batch(struct ctl *ctl, struct fbx_device *devs, size_t n,
    uint64_t *created, uint64_t *updated)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ENROLL;
	req.u.enroll.devs = devs;
	req.u.enroll.n = n;
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	*created += rep.u.enroll.created;
	*updated += rep.u.enroll.updated;
	fbx_console_rep_free(&rep);
	return EX_OK;
}

int
cmd_enroll(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "os", required_argument, NULL, OPT_OS },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "file", required_argument, NULL, OPT_FILE },
		{ NULL, 0, NULL, 0 } };
	struct page_args pa;
	struct fbx_device *batch = NULL;
	FILE *f = NULL;
	char *line = NULL;
	size_t n = 0, total = 0, lineno = 0;
	uint64_t created = 0, updated = 0;
	int st;

	memset(&pa, 0, sizeof(pa));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, enroll_usage, ctl_page_opt, &pa);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	if ((pa.file != NULL) == (pa.have_dev != 0))
		return ctl_usage_err("give either --device with --platform, or "
				 "--file");
	if (pa.have_dev) {
		if (!pa.have_platform)
			return ctl_usage_err("--platform is required with "
					 "--device");
		st = enroll_batch(ctl, &pa.dev, 1, &created, &updated);
		goto report;
	}
	if (pa.have_platform || pa.dev.ngroups || pa.dev.os_version[0])
		return ctl_usage_err("--platform, --os and --group go with "
				 "--device, not --file");
	f = strcmp(pa.file, "-") == 0 ? stdin : fopen(pa.file, "r");
	if (f == NULL)
		return ctl_usage_err("cannot open %s: %s", pa.file,
		    strerror(errno));
	batch = calloc(CTL_ENROLL_BATCH, sizeof(*batch));
	line = malloc(CTL_LINE_MAX);
	if (batch == NULL || line == NULL) {
		st = ctl_fail(FBX_ENOMEM, NULL);
		goto out;
	}
	while (fgets(line, CTL_LINE_MAX, f) != NULL) {
		char why[160];
		size_t l = strlen(line);
		char *s = line;

		lineno++;
		if (l == CTL_LINE_MAX - 1 && line[l - 1] != '\n') {
			st = ctl_fail(FBX_EINVALID, "%s:%zu: line too long",
			    pa.file, lineno);
			goto out;
		}
		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#' || *s == '\0')
			continue;
		if (lineno == 1 && strncmp(s, "id,", 3) == 0)
			continue;
		if (parse_csv_line(s, &batch[n], why, sizeof(why)) != 0) {
			st = ctl_fail(FBX_EINVALID, "%s:%zu: %s", pa.file, lineno,
			    why);
			goto out;
		}
		n++;
		total++;
		if (n == CTL_ENROLL_BATCH) {
			st = enroll_batch(ctl, batch, n, &created, &updated);
			if (st != EX_OK)
				goto out;
			n = 0;
		}
	}
	if (ferror(f)) {
		st = ctl_fail(FBX_EIO, "reading %s: %s", pa.file, strerror(errno));
		goto out;
	}
	if (total == 0) {
		st = ctl_fail(FBX_EINVALID, "%s: no devices", pa.file);
		goto out;
	}
	st = n > 0 ? enroll_batch(ctl, batch, n, &created, &updated) : EX_OK;
report:
	if (st == EX_OK) {
		if (ctl->json)
			ctl_json_print(json_pack("{s:I,s:I}", "created",
			    (json_int_t)created, "updated",
			    (json_int_t)updated));
		else
			printf("created %" PRIu64 ", updated %" PRIu64 "\n",
			    created, updated);
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	free(line);
	free(batch);
	return st;
}

/* ------------------------------------------------------------------ */
/* remove, devices, groups, status */

static const char *const remove_usage =
    "usage: fuseboxctl remove ID...\n"
    "\n"
    "Remove devices from the organisation's registry.\n";

int
cmd_remove(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct idlist ids = { .max = FBX_TARGET_IDS_MAX };
	uint64_t removed = 0;
	int st;

	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, remove_usage, ctl_no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("remove needs device ids");
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	for (int i = optind; i < argc; i++) {
		int rc = ctl_idlist_add(&ids, argv[i]);
		if (rc != FBX_OK) {
			st = rc == FBX_EINVALID
			    ? ctl_usage_err("bad device id '%s'", argv[i])
			    : ctl_fail(rc, NULL);
			goto out;
		}
	}
	for (size_t off = 0; off < ids.n; off += CTL_REMOVE_BATCH) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		size_t k = ids.n - off;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_REMOVE;
		req.u.remove.ids = ids.ids + off;
		req.u.remove.n = k > CTL_REMOVE_BATCH ? CTL_REMOVE_BATCH : k;
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			goto out;
		removed += rep.u.remove.removed;
		fbx_console_rep_free(&rep);
	}
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:I}", "removed", (json_int_t)removed));
	else
		printf("removed %" PRIu64 "\n", removed);
	st = EX_OK;
out:
	free(ids.ids);
	return st;
}

/* fmt_age - a time span in ms as "3d4h", "25h", "40m" */
static void
fmt_age(int64_t ms, char *buf, size_t len)
{
	int64_t m = ms / 60000;

	if (m < 0)
		m = 0;
	if (m >= 7 * 1440)
		snprintf(buf, len, "%lldd", (long long)(m / 1440));
	else if (m >= 2 * 1440)
		snprintf(buf, len, "%lldd%lldh", (long long)(m / 1440),
		    (long long)(m % 1440 / 60));
	else if (m >= 120)
		snprintf(buf, len, "%lldh", (long long)(m / 60));
	else
		snprintf(buf, len, "%lldm", (long long)m);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* print_stale - the stale devices of a `devices --stale` page */
static void
print_stale(const struct ctl *ctl, const struct fbx_console_rep *rep,
    uint32_t minutes, const char *group)
{
	struct table t = { .ncol = 6 };
	int64_t now = now_ms();
	uint64_t pending = 0;
	char dur[24];

	ctl_table_row(&t, "DEVICE", "OS", "LAST_CHECKIN", "OFFLINE_FOR", "PENDING",
	    "GROUPS");
	for (size_t i = 0; i < rep->u.devices.n; i++) {
		const struct fbx_device *d = &rep->u.devices.devs[i];
		int64_t since = d->last_checkin_ms > 0 ? d->last_checkin_ms
		                                       : d->enrolled_ms;
		char lc[40], age[24], pend[16], g[FBX_GROUPS_MAX * (FBX_ID_MAX + 1) + 1];
		size_t k = 0;
		g[0] = '\0';
		for (int j = 0; j < d->ngroups && j < FBX_GROUPS_MAX; j++)
			k += (size_t)snprintf(g + k, sizeof(g) - k, "%s%s",
			    j ? "," : "", d->groups[j]);
		if (d->last_checkin_ms > 0)
			ctl_fmt_time(d->last_checkin_ms, lc, sizeof(lc));
		else
			snprintf(lc, sizeof(lc), "never");
		fmt_age(now - since, age, sizeof(age));
		snprintf(pend, sizeof(pend), "%" PRIu32, d->pending);
		pending += d->pending;
		ctl_table_row(&t, d->id, d->os_version[0] ? d->os_version : "-", lc,
		    age, pend, k ? g : "-");
	}
	ctl_table_print(&t);
	ctl_table_free(&t);
	ctl_fmt_minutes(minutes, dur, sizeof(dur));
	printf("\n%zu devices%s%s without a check-in for %s or longer on "
	       "this page (%" PRIu64 " deliveries waiting for them), %" PRIu32
	       " in organisation\n",
	    rep->u.devices.n, group[0] ? " of group " : "", group, dur, pending,
	    rep->u.devices.total);
	if (rep->u.devices.next_after[0] != '\0')
		ctl_more(ctl, "", rep->u.devices.next_after);
}

static const char *const devices_usage =
    "usage: fuseboxctl devices [--group G] [--stale DUR] [--limit N]\n"
    "                          [--after ID]\n"
    "\n"
    "List enrolled devices, by id.\n"
    "\n"
    "  --group G     only devices of group G\n"
    "  --stale DUR   only devices without a check-in for DUR or longer\n"
    "                (1440m, 24h, 2d; since enrolment for a device that\n"
    "                never checked in), each with the deliveries waiting\n"
    "                for it (PENDING). A page examines at most 50,000\n"
    "                devices: it may show fewer than --limit and still\n"
    "                say 'more'\n"
    "  --limit N     devices per page (default 100, 1..10000)\n"
    "  --after ID    start after device ID (page cursor)\n";

int
cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "stale", required_argument, NULL, OPT_STALE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct page_args pa;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&pa, 0, sizeof(pa));
	pa.limit = 100;
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, devices_usage, ctl_page_opt, &pa);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	if (pa.dev.ngroups > 1)
		return ctl_usage_err("only one --group");
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_LIST_DEVICES;
	strcpy(req.u.list_devices.group, pa.group);
	strcpy(req.u.list_devices.after, pa.after_id);
	req.u.list_devices.limit = (uint32_t)pa.limit;
	req.u.list_devices.stale_minutes = pa.stale_minutes;
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (pa.stale_minutes > 0 && !ctl->json) {
		print_stale(ctl, &rep, pa.stale_minutes, pa.group);
		fbx_console_rep_free(&rep);
		return EX_OK;
	}
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.devices.n; i++)
			json_array_append_new(a,
			    ctl_json_device(&rep.u.devices.devs[i],
				pa.stale_minutes > 0));
		ctl_json_print(json_pack("{s:I,s:o*,s:o*}", "total",
		    (json_int_t)rep.u.devices.total, "devices", a,
		    "next_after", fbx_json_str(rep.u.devices.next_after)));
	} else {
		struct table t = { .ncol = 7 };

		ctl_table_row(&t, "DEVICE", "PLATFORM", "OS", "ONLINE", "GROUPS",
		    "LAST_CHECKIN", "ENROLLED");
		for (size_t i = 0; i < rep.u.devices.n; i++) {
			const struct fbx_device *d = &rep.u.devices.devs[i];
			char g[FBX_GROUPS_MAX * (FBX_ID_MAX + 1) + 1];
			char lc[40], en[40];
			size_t k = 0;
			g[0] = '\0';
			for (int j = 0; j < d->ngroups && j < FBX_GROUPS_MAX;
			    j++)
				k += (size_t)snprintf(g + k, sizeof(g) - k,
				    "%s%s", j ? "," : "", d->groups[j]);
			ctl_fmt_time(d->last_checkin_ms, lc, sizeof(lc));
			ctl_fmt_time(d->enrolled_ms, en, sizeof(en));
			ctl_table_row(&t, d->id, fbx_platform_name(d->platform),
			    d->os_version[0] ? d->os_version : "-",
			    d->online ? "yes" : "no", k ? g : "-", lc, en);
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
		/* total counts the organisation: a group's size needs a
		 * scan of the group index, which `groups` makes */
		if (pa.group[0] != '\0')
			printf("\n%zu shown of group %s, %" PRIu32
			       " in organisation (fuseboxctl groups gives "
			       "each group's size)\n",
			    rep.u.devices.n, pa.group, rep.u.devices.total);
		else
			printf("\n%zu shown, %" PRIu32 " in organisation\n",
			    rep.u.devices.n, rep.u.devices.total);
		if (rep.u.devices.next_after[0] != '\0')
			ctl_more(ctl, "", rep.u.devices.next_after);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

static const char *const groups_usage =
    "usage: fuseboxctl groups\n"
    "\n"
    "List the organisation's device groups with their sizes.\n";

int
cmd_groups(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st;

	memset(&req, 0, sizeof(req));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, groups_usage, ctl_no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_LIST_GROUPS;
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.groups.n; i++)
			json_array_append_new(a,
			    json_pack("{s:o*,s:I}", "name",
				fbx_json_str(rep.u.groups.groups[i].name),
				"count",
				(json_int_t)rep.u.groups.groups[i].count));
		ctl_json_print(json_pack("{s:o*}", "groups", a));
	} else {
		struct table t = { .ncol = 2 };
		ctl_table_row(&t, "GROUP", "DEVICES");
		for (size_t i = 0; i < rep.u.groups.n; i++) {
			char n[16];
			snprintf(n, sizeof(n), "%" PRIu32,
			    rep.u.groups.groups[i].count);
			ctl_table_row(&t, rep.u.groups.groups[i].name, n);
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* certificates (cmd_cert, below): status and breaker status show their
 * days left */

static const char *const status_usage =
    "usage: fuseboxctl status\n"
    "\n"
    "Ping the engine and print its counters.\n";

int
cmd_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep, crep;
	const struct fbx_engine_stats *s;
	int64_t t0;
	int st, have_certs;

	memset(&req, 0, sizeof(req));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, status_usage, ctl_no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	req.kind = FBX_CREQ_PING;
	t0 = ctl_mono_ms();
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	s = &rep.u.pong;
	/* registered certificates and their days left, when the engine
	 * has them */
	have_certs = ctl_cert_fetch(ctl, &crep);
	if (ctl->json) {
		json_t *o = json_object();
		if (o != NULL) {
			CJ_STR(o, "endpoint", ctl->endpoint);
			CJ_STR(o, "version", s->version);
			CJ_INT(o, "rtt_ms", ctl_mono_ms() - t0);
			CJ_INT(o, "uptime_ms", s->uptime_ms);
			CJ_INT(o, "gateways", s->gateways);
			CJ_INT(o, "commands_active", s->commands_active);
			CJ_INT(o, "deliveries_queued", s->deliveries_queued);
			CJ_INT(o, "deliveries_inflight",
			    s->deliveries_inflight);
			CJ_INT(o, "deliveries_pending", s->deliveries_pending);
			CJ_INT(o, "commits", s->commits);
			CJ_INT(o, "store_bytes", s->store_bytes);
			CJ_INT(o, "turn_max_us", s->turn_max_us);
			CJ_INT(o, "turns_failed", s->turns_failed);
			CJ_BOOL(o, "degraded", s->degraded);
			CJ_INT(o, "readers_used", s->readers_used);
			CJ_INT(o, "auth_refused", s->auth_refused);
			CJ_INT(o, "results_forged", s->results_forged);
			CJ_INT(o, "handshakes_refused", s->handshakes_refused);
			if (s->breakers_open == UINT32_MAX)
				json_object_set_new(o, "breakers_open",
				    json_null());
			else
				CJ_INT(o, "breakers_open", s->breakers_open);
			CJ_INT(o, "commands_held", s->commands_held);
			CJ_INT(o, "commands_settling", s->commands_settling);
			CJ_STR(o, "node", s->node);
			CJ_INT(o, "leases", s->leases);
			CJ_BOOL(o, "duties", s->duties);
			CJ_STR(o, "admin_org", s->admin_org);
			CJ_SET(o, "certificates",
			    ctl_json_certs(have_certs ? &crep : NULL, ""));
		}
		ctl_json_print(o);
	} else {
		struct table t = { .ncol = 2 };
		char b[96];
#define ROW_U64(name, v)                                                     \
	do {                                                                 \
		snprintf(b, sizeof(b), "%" PRIu64, (uint64_t)(v));            \
		ctl_table_row(&t, name, b);                                      \
	} while (0)
		ctl_table_row(&t, "endpoint", ctl->endpoint);
		if (s->node[0] != '\0') {
			/* several nodes: which one answered, what it owns */
			char nb[160];
			snprintf(nb, sizeof(nb),
			    "%s (holds %" PRIu32 " lease%s%s; the counts below "
			    "are its own)",
			    s->node, s->leases, s->leases == 1 ? "" : "s",
			    !s->duties           ? "" :
			    s->leases == 1       ? ": the cluster-wide duties" :
			                           ", the cluster-wide duties "
			                           "among them");
			ctl_table_row(&t, "node", nb);
		}
		ctl_table_row(&t, "version", s->version);
		if (s->admin_org[0] != '\0') {
			/* who may act on global controls (-o ORG) */
			char ab[240];
			snprintf(ab, sizeof(ab),
			    "%s (global breakers, limits and caps, and "
			    "'fuseboxctl orgs', need -o %s)",
			    s->admin_org, s->admin_org);
			ctl_table_row(&t, "admin_org", ab);
		}
		/* what needs a human first: breakers and what they hold */
		if (s->breakers_open == UINT32_MAX)
			snprintf(b, sizeof(b), "unknown (the store could not "
			                       "be read)");
		else
			snprintf(b, sizeof(b), "%" PRIu32 "%s",
			    s->breakers_open,
			    s->breakers_open > 0 ? " (fuseboxctl breaker "
			                           "status --all-orgs)"
			                         : "");
		ctl_table_row(&t, "breakers_open", b);
		snprintf(b, sizeof(b), "%" PRIu64 "%s", s->commands_held,
		    s->commands_held > 0 ? " (fuseboxctl held; in an "
		                           "incident roll it back before "
		                           "any reset)"
		                         : "");
		ctl_table_row(&t, "commands_held", b);
		snprintf(b, sizeof(b), "%" PRIu64, s->commands_settling);
		ctl_table_row(&t, "commands_settling", b);
		ROW_U64("rtt_ms", ctl_mono_ms() - t0);
		ROW_U64("uptime_s", s->uptime_ms / 1000);
		ROW_U64("gateways", s->gateways);
		ROW_U64("commands_active", s->commands_active);
		ROW_U64("deliveries_queued", s->deliveries_queued);
		ROW_U64("deliveries_inflight", s->deliveries_inflight);
		ROW_U64("deliveries_pending", s->deliveries_pending);
		ROW_U64("commits", s->commits);
		ROW_U64("store_bytes", s->store_bytes);
		ROW_U64("turn_max_ms", s->turn_max_us / 1000);
		ROW_U64("turns_failed", s->turns_failed);
		ctl_table_row(&t, "degraded",
		    s->degraded ? "yes: writes fail and are retried; reads are "
		                  "served while the store can be read"
		                : "no");
		ROW_U64("readers_used", s->readers_used);
		ROW_U64("auth_refused", s->auth_refused);
		ROW_U64("results_forged", s->results_forged);
		ROW_U64("handshakes_refused", s->handshakes_refused);
#undef ROW_U64
		ctl_table_print(&t);
		ctl_table_free(&t);
		if (have_certs)
			ctl_cert_lines(&crep, "");
	}
	if (have_certs)
		fbx_console_rep_free(&crep);
	fbx_console_rep_free(&rep);
	return EX_OK;
}
