/*
 * export.c: fuseboxctl export: the journal as JSON Lines, page by page, to
 * a file or stdout, with counts checked.
 */
#include "ctl.h"

/* ---- export ---- */

static const char *const export_usage =
    "usage: fuseboxctl export [--since TIME] [--until TIME] [--output FILE]\n"
    "                         [--all-orgs] [--page-bytes N]\n"
    "\n"
    "Write the organisation's record as JSON Lines: each command created\n"
    "in the window ('kind':'command') followed by its deliveries with\n"
    "their state history ('kind':'delivery'), then its audit records\n"
    "('kind':'audit', hash-chained). Pages are fetched until the end; a\n"
    "count of lines per kind goes to stderr.\n"
    "\n"
    "  --since TIME    created at or after TIME (epoch ms, now, -1h, -7d)\n"
    "  --until TIME    created before TIME\n"
    "  --output FILE   write here (default stdout); the file is replaced\n"
    "                  only when the export is complete\n"
    "  --all-orgs      every organisation, one after the other\n"
    "  --page-bytes N  size of one page the engine sends (default 32768)\n"
    "\n"
    "The export is checked: it must hold every command the organisation\n"
    "had in the window when it started, and each command all its\n"
    "deliveries. A shortfall is reported on stderr, the output file is\n"
    "not written, and the exit status is 70.\n";

struct exp_stats {
	const char *kinds[8];
	uint64_t counts[8];
	size_t nkinds;
	uint64_t lines, bytes;
	/* completeness: the command being read */
	uint64_t cur_cmd, cur_want, cur_seen;
	fbx_id cur_org;
	uint64_t short_cmds, short_dlv;
	uint64_t org_cmds; /* command lines of the current organisation */
	uint64_t missing_cmds;
	uint64_t bad_lines; /* not a JSON object with a "kind" */
};

/* jline_u64 - the unsigned integer member key of a parsed line, 0 when
 * absent or not an integer */
static uint64_t
jline_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0
	    ? (uint64_t)json_integer_value(v)
	    : 0;
}

static void
exp_close_cmd(struct exp_stats *x)
{
	if (x->cur_cmd != 0 && x->cur_seen < x->cur_want) {
		x->short_cmds++;
		x->short_dlv += x->cur_want - x->cur_seen;
		fprintf(stderr,
		    "fuseboxctl: export: %s command %" PRIu64 " has %" PRIu64
		    " deliveries, %" PRIu64 " exported\n",
		    x->cur_org, x->cur_cmd, x->cur_want, x->cur_seen);
	}
	x->cur_cmd = 0;
}

/* exp_count - tally one page's lines by kind, and each command's
 * delivery lines against its count. */
static void
exp_count(struct exp_stats *x, const char *p, size_t len)
{
	static const char *const known[] = { "command", "delivery", "audit" };
	const char *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		/* each line is one JSON object, read by jansson: a note or
		 * a parameter holding "kind": cannot be taken for a field */
		json_t *o = ll > 0 ? json_loadb(p, ll, 0, NULL) : NULL;
		const char *k = json_string_value(json_object_get(o, "kind"));
		size_t i;

		x->lines++;
		if (o != NULL && !json_is_object(o))
			k = NULL;
		if (k != NULL) {
			const char *name = "other";
			for (size_t j = 0; j < 3; j++)
				if (strcmp(known[j], k) == 0)
					name = known[j];
			for (i = 0; i < x->nkinds; i++)
				if (strcmp(x->kinds[i], name) == 0)
					break;
			if (i == x->nkinds && x->nkinds < 8)
				x->kinds[x->nkinds++] = name;
			if (i < x->nkinds)
				x->counts[i]++;
			if (strcmp(k, "command") == 0) {
				exp_close_cmd(x);
				x->org_cmds++;
				x->cur_cmd = jline_u64(o, "command");
				x->cur_want = jline_u64(o, "deliveries");
				x->cur_seen = 0;
			} else if (strcmp(k, "delivery") == 0) {
				if (jline_u64(o, "command") == x->cur_cmd)
					x->cur_seen++;
			} else {
				exp_close_cmd(x);
			}
		} else if (ll > 0) {
			x->bad_lines++;
		}
		json_decref(o);
		p += ll + (nl ? 1 : 0);
	}
}

/* count_commands - the organisation's commands in the window, for the
 * completeness check of an export. */
static int
count_commands(struct ctl *ctl, const struct ops_args *a, uint64_t *n)
{
	uint64_t after = 0;

	*n = 0;
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.since_ms = a->since;
		req.u.list.until_ms = a->until;
		req.u.list.after = after;
		req.u.list.limit = FBX_PAGE_MAX;
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		*n += rep.u.commands.n;
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			return EX_OK;
	}
}

/* export_org - every page of one organisation into f. The commands are
 * counted first: an export holds at least those (more if some are
 * created meanwhile), and each command all its deliveries. */
static int
export_org(struct ctl *ctl, const struct ops_args *a, FILE *f,
    struct exp_stats *x)
{
	uint64_t cursor = 0, want = 0;
	int st0;

	snprintf(x->cur_org, sizeof(x->cur_org), "%s", ctl->org);
	st0 = count_commands(ctl, a, &want);
	if (st0 != EX_OK)
		return st0;
	x->org_cmds = 0;
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_EXPORT;
		req.u.export_.since_ms = a->since;
		req.u.export_.until_ms = a->until;
		req.u.export_.cursor = cursor;
		req.u.export_.max_bytes = (uint32_t)a->page_bytes;
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		if (rep.u.export_.len > 0 &&
		    fwrite(rep.u.export_.jsonl, 1, rep.u.export_.len, f) !=
		        rep.u.export_.len) {
			fbx_console_rep_free(&rep);
			return ctl_fail(FBX_EIO, "cannot write the export: %s",
			    strerror(errno));
		}
		x->bytes += rep.u.export_.len;
		exp_count(x, rep.u.export_.jsonl, rep.u.export_.len);
		cursor = rep.u.export_.next_cursor;
		fbx_console_rep_free(&rep);
		if (cursor == 0)
			break;
	}
	exp_close_cmd(x);
	if (x->org_cmds < want) {
		x->missing_cmds += want - x->org_cmds;
		fprintf(stderr,
		    "fuseboxctl: export: %s has %" PRIu64
		    " commands in the window, %" PRIu64 " exported\n",
		    ctl->org, want, x->org_cmds);
	}
	return EX_OK;
}

int
cmd_export(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ "page-bytes", required_argument, NULL, OPT_PAGE_BYTES },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	struct orglist ol;
	struct exp_stats x;
	char saved[FBX_ID_MAX + 1], tmp[4096];
	FILE *f = stdout;
	int st, incomplete = 0;

	memset(&a, 0, sizeof(a));
	memset(&ol, 0, sizeof(ol));
	memset(&x, 0, sizeof(x));
	tmp[0] = '\0';
	strcpy(saved, ctl->org);
	a.page_bytes = CTL_EXPORT_PAGE;
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, export_usage, ctl_ops_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	if (a.since && a.until && a.until <= a.since)
		return ctl_usage_err("--until is not after --since");
	if (!a.all_orgs && (st = ctl_need_org(ctl)) != EX_OK)
		return st;
	if (a.all_orgs) {
		st = ctl_list_orgs(ctl, &ol);
		if (st != EX_OK)
			return st;
	}
	if (a.output != NULL && strcmp(a.output, "-") != 0) {
		if (snprintf(tmp, sizeof(tmp), "%s.tmp", a.output) >=
		    (int)sizeof(tmp)) {
			st = ctl_usage_err("--output path too long");
			goto out;
		}
		f = fopen(tmp, "w");
		if (f == NULL) {
			/* named as typed: FILE.tmp is fuseboxctl's (renamed
			 * to FILE once complete), and what stops it (a
			 * missing directory, its permissions) stops FILE */
			st = ctl_fail_create(a.output, errno);
			tmp[0] = '\0';
			goto out;
		}
	}
	if (!a.all_orgs) {
		st = export_org(ctl, &a, f, &x);
	} else {
		for (size_t i = 0; i < ol.n; i++) {
			strcpy(ctl->org, ol.orgs[i]);
			st = export_org(ctl, &a, f, &x);
			if (st != EX_OK)
				break;
		}
	}
	if (fflush(f) != 0 && st == EX_OK)
		st = ctl_fail(FBX_EIO, "cannot write the export: %s",
		    strerror(errno));
	if (st == EX_OK &&
	    (x.short_cmds > 0 || x.missing_cmds > 0 || x.bad_lines > 0))
		incomplete = 1;
	if (f != stdout) {
		if (fclose(f) != 0 && st == EX_OK)
			st = ctl_fail(FBX_EIO, "cannot write %s: %s", tmp,
			    strerror(errno));
		f = stdout;
		if (st == EX_OK && !incomplete && rename(tmp, a.output) != 0)
			st = ctl_fail(FBX_EIO, "cannot rename %s: %s", tmp,
			    strerror(errno));
		if (st == EX_OK && !incomplete)
			tmp[0] = '\0';
	}
	if (st != EX_OK)
		goto out;
	fprintf(stderr, "export: %" PRIu64 " lines (%" PRIu64 " bytes) of %s%s",
	    x.lines, x.bytes, a.all_orgs ? "every organisation" : ctl->org,
	    a.output && strcmp(a.output, "-") != 0 ? " to " : "");
	if (a.output && strcmp(a.output, "-") != 0)
		fputs(a.output, stderr);
	fputc(':', stderr);
	for (size_t i = 0; i < x.nkinds; i++)
		fprintf(stderr, " %s=%" PRIu64, x.kinds[i], x.counts[i]);
	if (a.all_orgs)
		fprintf(stderr, " (%zu organisations)", ol.n);
	fputc('\n', stderr);
	if (x.bad_lines > 0)
		st = ctl_fail(FBX_ECORRUPT,
		    "export damaged: %" PRIu64 " lines are not JSON objects "
		    "with a \"kind\"",
		    x.bad_lines);
	else if (x.short_cmds > 0 || x.missing_cmds > 0)
		st = ctl_fail(FBX_ECORRUPT,
		    "export incomplete: %" PRIu64 " commands and %" PRIu64
		    " deliveries of %" PRIu64 " commands missing (see above)",
		    x.missing_cmds, x.short_dlv, x.short_cmds);
out:
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	strcpy(ctl->org, saved);
	ctl_orglist_free(&ol);
	return st;
}
