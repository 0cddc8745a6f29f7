/*
 * ops.c: the options and selection the incident commands (rollback,
 * replay, export, audit) share, and fuseboxctl orgs.
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* incident response: rollback, replay, export, audit, orgs */

static int
ops_add_ids(struct ops_args *a, const char *s)
{
	char tok[32];

	while (*s != '\0') {
		size_t k = 0;
		uint64_t v;

		while (*s == ',' || *s == ' ')
			s++;
		if (*s == '\0')
			break;
		while (*s != '\0' && *s != ',' && *s != ' ') {
			if (k < sizeof(tok) - 1)
				tok[k++] = *s;
			s++;
		}
		tok[k] = '\0';
		if (ctl_parse_u64(tok, UINT64_MAX, &v) != 0 || v == 0)
			return ctl_usage_err("bad command id '%s'", tok);
		if (a->nids >= FBX_TARGET_IDS_MAX)
			return ctl_usage_err("more than %d command ids",
			    FBX_TARGET_IDS_MAX);
		if (a->nids == a->idcap) {
			size_t ncap = a->idcap ? a->idcap * 2 : 16;
			uint64_t *p = realloc(a->ids, ncap * sizeof(*p));
			if (p == NULL)
				return ctl_fail(FBX_ENOMEM, NULL);
			a->ids = p;
			a->idcap = ncap;
		}
		a->ids[a->nids++] = v;
	}
	return EX_OK;
}

int
ctl_ops_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct ops_args *a = arg;
	uint64_t v;

	(void)ctl;
	switch (c) {
	case OPT_COMMAND:
		return ops_add_ids(a, oa);
	case OPT_INCIDENT:
		if (ctl_copy_id(a->incident, oa) != 0)
			return ctl_usage_err("bad --incident '%s' (a breaker "
					 "reason)",
			    oa);
		return EX_OK;
	case OPT_GLOBAL:
		a->global = 1;
		return EX_OK;
	case OPT_ALL_ORGS:
		a->all_orgs = 1;
		return EX_OK;
	case OPT_RESUME: {
		unsigned long long cur = 0, last = 0, rb = 0;
		int n = 0, m = 0;
		if (sscanf(oa, "%llu:%llu%n", &cur, &last, &n) != 2 ||
		    cur == 0 || last == 0)
			return ctl_usage_err("bad --resume '%s' (CURSOR:LAST"
					 "[:ROLLBACK[:ORG]], as printed)",
			    oa);
		if (oa[n] == ':' &&
		    (sscanf(oa + n + 1, "%llu%n", &rb, &m) != 1))
			return ctl_usage_err("bad --resume '%s'", oa);
		if (oa[n] == ':' && oa[n + 1 + m] == ':' &&
		    ctl_copy_id(a->resume_org, oa + n + 2 + m) != 0)
			return ctl_usage_err("bad --resume '%s' (organisation)",
			    oa);
		a->resume_cursor = cur;
		a->resume_last = last;
		a->resume_rbid = rb;
		return EX_OK;
	}
	case OPT_INCLUDE_BEFORE_ONSET:
		a->include_before_onset = 1;
		return EX_OK;
	case OPT_CONTINUE:
		if (ctl_parse_u64(oa, UINT64_MAX, &a->continue_rbid) != 0 ||
		    a->continue_rbid == 0)
			return ctl_usage_err("bad --continue '%s' (a rollback id)",
			    oa);
		return EX_OK;
	case OPT_ORIGIN:
		a->origin = fbx_origin_parse(oa);
		if (a->origin == 0)
			return ctl_usage_err("unknown origin '%s'", oa);
		return EX_OK;
	case OPT_REASON:
		if (ctl_copy_id(a->reason, oa) != 0)
			return ctl_usage_err("bad reason '%s'", oa);
		return EX_OK;
	case OPT_TYPE:
		return ctl_cmd_type(oa, &a->type);
	case OPT_GROUP:
		if (ctl_copy_id(a->group, oa) != 0)
			return ctl_usage_err("bad group '%s'", oa);
		return EX_OK;
	case OPT_SINCE:
	case OPT_UNTIL:
		if (ctl_parse_time(oa, c == OPT_SINCE ? &a->since : &a->until) !=
		        0 ||
		    (c == OPT_SINCE ? a->since : a->until) <= 0)
			return ctl_usage_err("bad --%s '%s' (epoch ms, now, or "
					 "-30m, -1h, -7d)",
			    c == OPT_SINCE ? "since" : "until", oa);
		return EX_OK;
	case OPT_EXECUTE:
		a->execute = 1;
		return EX_OK;
	case OPT_INCLUDE_CHANGED:
		a->include_changed = 1;
		return EX_OK;
	case OPT_FORCE:
		a->force = 1;
		return EX_OK;
	case OPT_ROWS:
		if (ctl_parse_u64(oa, FBX_PAGE_MAX, &a->rows) != 0)
			return ctl_usage_err("bad --rows '%s' (0..%d)", oa,
			    FBX_PAGE_MAX);
		a->have_rows = 1;
		return EX_OK;
	case OPT_NOTE:
		if (ctl_copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		a->have_note = 1;
		return EX_OK;
	case OPT_STATE:
		a->state = fbx_dstate_parse(oa);
		if (a->state == 0)
			return ctl_usage_err("unknown state '%s'", oa);
		return EX_OK;
	case OPT_WAIT:
		a->wait = 1;
		if (oa == NULL && optind < argc &&
		    ctl_parse_u64(argv[optind], 86400 * 7, &v) == 0)
			oa = argv[optind++];
		if (oa != NULL) {
			if (ctl_parse_u64(oa, 86400 * 7, &v) != 0)
				return ctl_usage_err("bad --wait '%s' (seconds)",
				    oa);
			a->wait_s = v;
		}
		return EX_OK;
	case OPT_OUTPUT:
		if (oa[0] == '\0')
			return ctl_usage_err("empty --output");
		a->output = oa;
		return EX_OK;
	case OPT_ACTOR_FILTER:
		if (ctl_copy_id(a->actor, oa) != 0)
			return ctl_usage_err("bad --actor '%s'", oa);
		return EX_OK;
	case OPT_ACTION:
		if (strlen(oa) >= sizeof(a->action))
			return ctl_usage_err("--action longer than %zu bytes",
			    sizeof(a->action) - 1);
		for (const char *p = oa; *p; p++)
			if ((unsigned char)*p < 0x20 ||
			    (unsigned char)*p > 0x7e)
				return ctl_usage_err("--action is not printable "
						 "ASCII");
		strcpy(a->action, oa);
		return EX_OK;
	case OPT_LIMIT:
		if (ctl_parse_u64(oa, FBX_PAGE_MAX * 100ull, &a->limit) != 0 ||
		    a->limit == 0)
			return ctl_usage_err("bad --limit '%s' (1..%d)", oa,
			    FBX_PAGE_MAX * 100);
		return EX_OK;
	case OPT_AFTER:
		if (ctl_parse_u64(oa, UINT64_MAX, &a->after) != 0)
			return ctl_usage_err("bad --after '%s'", oa);
		return EX_OK;
	case OPT_FULL:
		a->full = 1;
		return EX_OK;
	case OPT_PAGE_BYTES:
		if (ctl_parse_u64(oa, 8u * 1024 * 1024, &a->page_bytes) != 0 ||
		    a->page_bytes < 4096)
			return ctl_usage_err("bad --page-bytes '%s' (4096 .. "
					 "8388608)",
			    oa);
		return EX_OK;
	default:
		return ctl_usage_err("unexpected option (see %s --help)", argv[0]);
	}
}

/* ctl_sel_check - the selector options make sense together. A selector
 * without any criterion would name every command of the organisation:
 * refused, an operator asks for that with --since. */
int
ctl_sel_check(const char *cmd, const struct ops_args *a)
{
	int filters = a->origin || a->reason[0] || a->type || a->since ||
	    a->until;

	if (a->nids > 0 && a->incident[0] != '\0')
		return ctl_usage_err("%s: give --command or --incident, not both",
		    cmd);
	if (a->nids > 0 && filters)
		return ctl_usage_err("%s: --command names the commands; --origin, "
				 "--reason, --type, --since and --until go "
				 "without it",
		    cmd);
	if (a->global && a->incident[0] == '\0')
		return ctl_usage_err("%s: --global goes with --incident REASON "
				 "(the global breaker of that reason)",
		    cmd);
	if (a->nids > 0 && a->all_orgs)
		return ctl_usage_err("%s: command ids belong to one organisation; "
				 "no --all-orgs with --command",
		    cmd);
	if (a->include_before_onset && a->incident[0] == '\0')
		return ctl_usage_err("%s: --include-before-onset goes with "
				 "--incident REASON",
		    cmd);
	if (a->nids == 0 && a->incident[0] == '\0' && !filters)
		return ctl_usage_err("%s needs --command ID, --incident REASON or "
				 "a filter (--origin, --reason, --type, "
				 "--since, --until)",
		    cmd);
	if (a->since && a->until && a->until <= a->since)
		return ctl_usage_err("%s: --until is not after --since", cmd);
	return EX_OK;
}

/* ctl_sel_build - the wire selector; the id array stays a's. An incident
 * means the automatic commands of that reason under the breaker: the
 * engine picks the breaker's window, the reason and origin are set here
 * so that nothing else in the window (operator or scheduled commands) is
 * touched. */
void
ctl_sel_build(const struct ops_args *a, struct fbx_selector *s)
{
	memset(s, 0, sizeof(*s));
	if (a->nids > 0) {
		s->command_ids = a->ids;
		s->ncommand_ids = a->nids;
		strcpy(s->group, a->group);
		return;
	}
	if (a->incident[0] != '\0') {
		strcpy(s->breaker, a->incident);
		/* the global incident is one run over every organisation
		 * (every_org implies the global breaker; the engine narrows
		 * it to the asking organisation's part unless that is the
		 * admin organisation) */
		s->every_org = a->global;
		s->include_before_onset = a->include_before_onset;
		strcpy(s->reason, a->reason[0] ? a->reason : a->incident);
		s->origin = a->origin ? a->origin : FBX_ORIGIN_AUTOMATIC;
	} else {
		strcpy(s->reason, a->reason);
		s->origin = a->origin;
	}
	s->type = a->type;
	strcpy(s->group, a->group);
	s->since_ms = a->since;
	s->until_ms = a->until;
}

/* ctl_sel_str - the selection in words, for the plan's heading; breaker:
 * an incident's breaker as the daemon answered it (RollbackPlan.breaker),
 * NULL for a run over several organisations. buf: 512 bytes hold the
 * longest. */
void
ctl_sel_str(const struct ops_args *a, const char *breaker, char *buf,
    size_t len)
{
	size_t k = 0;

#define SEL_PUT(...)                                                         \
	do {                                                                 \
		if (k < len) {                                               \
			int n_ = snprintf(buf + k, len - k, __VA_ARGS__);    \
			if (n_ > 0)                                          \
				k += (size_t)n_;                             \
		}                                                            \
	} while (0)
	buf[0] = '\0';
	if (a->nids > 0) {
		SEL_PUT("command%s", a->nids > 1 ? "s" : "");
		for (size_t i = 0; i < a->nids && i < 5; i++)
			SEL_PUT("%s%" PRIu64, i ? "," : " ", a->ids[i]);
		if (a->nids > 5)
			SEL_PUT(",... (%zu)", a->nids);
	} else if (a->incident[0] != '\0') {
		char own[2 * FBX_ID_MAX + 40];
		if (breaker != NULL && breaker[0] != '\0')
			snprintf(own, sizeof(own), "breaker %s", breaker);
		else if (a->global)
			snprintf(own, sizeof(own), "breaker */%s", a->incident);
		else
			/* NULL: a run over several organisations; "": a
			 * daemon that does not say */
			snprintf(own, sizeof(own),
			    "%s breaker (or */%s)",
			    breaker == NULL ? "each organisation's"
			                    : "the organisation's",
			    a->incident);
		SEL_PUT("incident %s: %s %s commands from the onset of the "
			"last trip of %s%s",
		    a->incident,
		    fbx_origin_name(a->origin ? a->origin
		                              : FBX_ORIGIN_AUTOMATIC),
		    a->reason[0] ? a->reason : a->incident, own,
		    a->include_before_onset ? ", and those before the onset"
		                            : "");
	} else {
		SEL_PUT("commands");
		if (a->origin)
			SEL_PUT(" origin=%s", fbx_origin_name(a->origin));
		if (a->reason[0])
			SEL_PUT(" reason=%s", a->reason);
	}
	if (a->type)
		SEL_PUT(" type=%s", fbx_cmd_type_name(a->type));
	if (a->group[0])
		SEL_PUT(" group=%s", a->group);
	if (a->since) {
		char t[40];
		ctl_fmt_time(a->since, t, sizeof(t));
		SEL_PUT(" since=%s", t);
	}
	if (a->until) {
		char t[40];
		ctl_fmt_time(a->until, t, sizeof(t));
		SEL_PUT(" until=%s", t);
	}
#undef SEL_PUT
}

static const char *const orgs_usage =
    "usage: fuseboxctl orgs\n"
    "\n"
    "The organisations the engine knows, with their enrolled devices.\n"
    "The --all-orgs option of rollback, replay, export, summary and\n"
    "breaker status goes over this list.\n";

int
cmd_orgs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct orglist l;
	uint64_t total = 0;
	int st;

	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, orgs_usage, ctl_no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	st = ctl_list_orgs(ctl, &l);
	if (st != EX_OK)
		return st;
	for (size_t i = 0; i < l.n; i++)
		total += l.devices[i];
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < l.n; i++)
			json_array_append_new(a,
			    json_pack("{s:o*,s:I}", "org",
				fbx_json_str(l.orgs[i]), "devices",
				(json_int_t)l.devices[i]));
		ctl_json_print(json_pack("{s:o*,s:I,s:I}", "orgs", a, "count",
		    (json_int_t)l.n, "devices", (json_int_t)total));
	} else {
		struct table t = { .ncol = 2 };
		char b[24];
		ctl_table_row(&t, "ORG", "DEVICES");
		for (size_t i = 0; i < l.n; i++) {
			snprintf(b, sizeof(b), "%" PRIu32, l.devices[i]);
			ctl_table_row(&t, l.orgs[i], b);
		}
		snprintf(b, sizeof(b), "%" PRIu64, total);
		ctl_table_row(&t, "TOTAL", b);
		ctl_table_print(&t);
		ctl_table_free(&t);
		printf("\n%zu organisations\n", l.n);
	}
	ctl_orglist_free(&l);
	return EX_OK;
}
