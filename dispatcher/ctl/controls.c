/*
 * controls.c: the safety controls: fuseboxctl breaker, held, limit, rate,
 * approve, rollout and summary.
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* safety controls: breaker, held, limit, rate, approve, rollout */

struct ctrl_args {
	fbx_id reason;
	char note[FBX_NOTE_MAX];
	int have_note;
	int global;
	int on_reset; /* enum fbx_reset_action */
	struct fbx_breaker_cfg cfg;
	int have_cfg;
	int type;
	int have_max, have_share, have_window;
	uint32_t max, share_ppm, window_s;
	int have_rate, have_burst, have_inflight;
	uint32_t rate, burst, inflight;
	uint64_t limit, after;
	int64_t since;
	int origin;
	fbx_id prefix;
	uint64_t count;
	int all_orgs;
	int settling; /* held --settling */
};

static int
ctrl_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct ctrl_args *a = arg;
	uint64_t v;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_REASON:
		if (ctl_copy_id(a->reason, oa) != 0)
			return ctl_usage_err("bad reason '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		return EX_OK;
	case OPT_NOTE:
		if (ctl_copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		a->have_note = 1;
		return EX_OK;
	case OPT_GLOBAL:
		a->global = 1;
		return EX_OK;
	case OPT_RELEASE:
	case OPT_DISCARD:
		if (a->on_reset != FBX_RESET_NONE)
			return ctl_usage_err("give --release or --discard, once");
		a->on_reset = c == OPT_RELEASE ? FBX_RESET_RELEASE
		                               : FBX_RESET_DISCARD;
		return EX_OK;
	case OPT_WINDOW:
		if (ctl_parse_u64(oa, 30u * 86400, &v) != 0 || v == 0)
			return ctl_usage_err(
			    "bad --window '%s' (seconds, 1..2592000)", oa);
		a->cfg.window_s = a->window_s = (uint32_t)v;
		a->have_cfg = a->have_window = 1;
		return EX_OK;
	case OPT_MIN:
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return ctl_usage_err("bad --min '%s' (devices > 0)", oa);
		a->cfg.min_count = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_SHARE:
		if (ctl_parse_pct(oa, &a->share_ppm) != 0)
			return ctl_usage_err("bad --share '%s' (percent, e.g. 2 "
					 "or 0.5)",
			    oa);
		a->cfg.share_ppm = a->share_ppm;
		a->have_share = a->have_cfg = 1;
		return EX_OK;
	case OPT_BASELINE_MULT:
		if (ctl_parse_u64(oa, 1000000, &v) != 0 || v == 0)
			return ctl_usage_err("bad --baseline-mult '%s' (> 0)", oa);
		a->cfg.baseline_mult = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_GLOBAL_ORGS:
		if (ctl_parse_u64(oa, 100000, &v) != 0 || v == 0)
			return ctl_usage_err("bad --global-orgs '%s' (> 0)", oa);
		a->cfg.global_orgs = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_SETTLE:
		if (ctl_parse_u64(oa, 86400, &v) != 0)
			return ctl_usage_err("bad --settle '%s' (seconds, 0 = off, "
					 "at most 86400)",
			    oa);
		a->cfg.settle_s = (uint32_t)v;
		a->cfg.settle_set = 1;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_MIN_SAMPLES:
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return ctl_usage_err("bad --min-samples '%s' (devices > 0)",
			    oa);
		a->cfg.min_samples = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_GLOBAL_SHARE: {
		uint32_t ppm;
		if (ctl_parse_pct(oa, &ppm) != 0 || ppm == 0)
			return ctl_usage_err("bad --global-share '%s' (percent > 0, "
					 "e.g. 1 or 0.1)",
			    oa);
		a->cfg.global_share_ppm = ppm;
		a->have_cfg = 1;
		return EX_OK;
	}
	case OPT_SHADOW:
	case OPT_ENFORCE:
		if (a->cfg.shadow != 0)
			return ctl_usage_err("give --shadow or --enforce, once");
		a->cfg.shadow = c == OPT_SHADOW ? 1 : 2;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_TYPE:
		return ctl_cmd_type(oa, &a->type);
	case OPT_MAX:
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0)
			return ctl_usage_err("bad --max '%s' (devices, 0 = none)",
			    oa);
		a->max = (uint32_t)v;
		a->have_max = 1;
		return EX_OK;
	case OPT_RATE:
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0)
			return ctl_usage_err("bad --rate '%s' (per second, 0 = "
					 "unlimited)",
			    oa);
		a->rate = (uint32_t)v;
		a->have_rate = 1;
		return EX_OK;
	case OPT_BURST:
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0)
			return ctl_usage_err("bad --burst '%s'", oa);
		a->burst = (uint32_t)v;
		a->have_burst = 1;
		return EX_OK;
	case OPT_MAX_INFLIGHT:
		if (ctl_parse_u64(oa, UINT32_MAX, &v) != 0)
			return ctl_usage_err("bad --max-inflight '%s' (0 = "
					 "unlimited)",
			    oa);
		a->inflight = (uint32_t)v;
		a->have_inflight = 1;
		return EX_OK;
	case OPT_LIMIT:
		if (ctl_parse_u64(oa, FBX_PAGE_MAX, &a->limit) != 0 || a->limit == 0)
			return ctl_usage_err("bad --limit '%s' (1..%d)", oa,
			    FBX_PAGE_MAX);
		return EX_OK;
	case OPT_SETTLING:
		a->settling = 1;
		return EX_OK;
	case OPT_AFTER:
		if (ctl_parse_u64(oa, UINT64_MAX, &a->after) != 0)
			return ctl_usage_err("bad --after '%s' (a command id)", oa);
		return EX_OK;
	case OPT_SINCE:
		if (ctl_parse_time(oa, &a->since) != 0)
			return ctl_usage_err("bad --since '%s' (epoch ms or "
					 "-30m, -1h, -7d)",
			    oa);
		return EX_OK;
	case OPT_ORIGIN:
		a->origin = fbx_origin_parse(oa);
		if (a->origin == 0)
			return ctl_usage_err("unknown origin '%s'", oa);
		return EX_OK;
	case OPT_ORGS_PREFIX:
		if (strlen(oa) > FBX_ID_MAX - 6 ||
		    (oa[0] != '\0' && ctl_copy_id(a->prefix, oa) != 0))
			return ctl_usage_err("bad --orgs-prefix '%s'", oa);
		if (oa[0] == '\0')
			a->prefix[0] = '\0';
		return EX_OK;
	case OPT_COUNT:
		if (ctl_parse_u64(oa, 100000, &a->count) != 0 || a->count == 0)
			return ctl_usage_err("bad --count '%s' (1..100000)", oa);
		return EX_OK;
	case OPT_ALL_ORGS:
		a->all_orgs = 1;
		return EX_OK;
	default:
		return ctl_usage_err("unexpected option");
	}
}

/* ---- breaker ---- */

static const char *const breaker_usage =
    "usage: fuseboxctl breaker status [--reason R] [--all-orgs]\n"
    "       fuseboxctl breaker trip --reason R [--global] --note TEXT\n"
    "       fuseboxctl breaker reset --reason R [--global]\n"
    "                                (--release|--discard) --note TEXT\n"
    "       fuseboxctl breaker config --reason R [--global] [--window S]\n"
    "                                [--min N] [--share PCT]\n"
    "                                [--baseline-mult X] [--min-samples N]\n"
    "                                [--global-orgs N] [--global-share PCT]\n"
    "                                [--settle S] [--shadow|--enforce]\n"
    "\n"
    "Circuit breakers on automatic lock-type commands (lock, wipe, lost\n"
    "mode, clear passcode), one per organisation and reason plus a global\n"
    "one per reason (org '*'). An open breaker holds what it stops: held\n"
    "commands are durable and wait for an operator's reset. An automatic\n"
    "lock-type command first settles (30 s by default): it is journaled\n"
    "and counted but not sent, and a breaker that trips meanwhile holds\n"
    "it, so a storm trips its breakers before any of it reaches a device.\n"
    "\n"
    "  status        the organisation's breakers and the global ones;\n"
    "                --all-orgs: every organisation's breakers that are\n"
    "                open, hold commands or have tripped, and the global\n"
    "                ones once\n"
    "  trip          open a breaker by hand\n"
    "  reset         close it: --release sends the held commands on in\n"
    "                staged waves (10 now, then twice as many as the wave\n"
    "                before every 10 s; through the blast-radius limits),\n"
    "                --discard records them as discarded\n"
    "  config        change settings (unset flags keep their value):\n"
    "    --window S        sliding window in seconds (default 600)\n"
    "    --share PCT       allowance per window: PCT of the fleet\n"
    "                      (default 1)\n"
    "    --min N           but at least N devices (default 1)\n"
    "    --baseline-mult X raised to X times the usual rate (default 10)\n"
    "    --min-samples N   once the usual rate has seen N devices\n"
    "                      (default 100)\n"
    "    --global-orgs N   global: open when N organisations trip\n"
    "                      together (default 3)\n"
    "    --global-share PCT global: or when the reason passes PCT of\n"
    "                      every enrolled device (default 1)\n"
    "    --settle S        settle delay of the reason's automatic\n"
    "                      lock-type commands (set on the global breaker;\n"
    "                      default 30, 0 = off)\n"
    "    --shadow          evaluate and alert, never hold\n"
    "    --enforce         hold (leave shadow mode)\n"
    "  --global      act on the global breaker of the reason\n"
    "  --note TEXT   why (required to trip and reset; kept in the record)\n"
    "\n"
    "Columns: ORG (* = global), IN_WINDOW/ALLOWANCE devices admitted in\n"
    "the window against what it admits before tripping (global: tripped\n"
    "organisations against --global-orgs), HELD commands held now,\n"
    "SETTLING commands in their settle window, WOULD_HOLD commands a\n"
    "shadow breaker would have held, ONSET when the last incident began\n"
    "(the reason's rate left its usual level; incident rollbacks start\n"
    "there), BY who tripped it last (engine: by itself), NOTE the last\n"
    "trip's or reset's note (a reset's says who reset it).\n";

static void
print_breakers(const struct fbx_breaker_info *v, size_t n)
{
	struct table t = { .ncol = 14 };

	ctl_table_row(&t, "ORG", "REASON", "STATE", "MANUAL", "IN_WINDOW/ALLOWANCE",
	    "BASELINE", "HELD", "SETTLING", "WOULD_HOLD", "TRIPS", "TRIPPED_AT",
	    "ONSET", "BY", "NOTE");
	for (size_t i = 0; i < n; i++) {
		const struct fbx_breaker_info *b = &v[i];
		char st[32], win[64], base[24], held[24], wh[24], trips[24];
		char at[40], share[16], stl[24], onset[40];
		int global = strcmp(b->org, "*") == 0;

		snprintf(st, sizeof(st), "%s%s",
		    b->state == FBX_BS_OPEN ? "OPEN" : "closed",
		    b->cfg.shadow ? " (shadow)" : "");
		fbx_pct_str(b->cfg.share_ppm, share, sizeof(share));
		if (global)
			snprintf(win, sizeof(win),
			    "%" PRIu64 "/%" PRIu32 " orgs per %" PRIu32 "s",
			    b->window_count, b->cfg.global_orgs,
			    b->cfg.window_s);
		else
			snprintf(win, sizeof(win),
			    "%" PRIu64 "/%" PRIu32 " per %" PRIu32 "s",
			    b->window_count, b->allowance, b->cfg.window_s);
		snprintf(base, sizeof(base), "%" PRIu64, b->baseline);
		snprintf(held, sizeof(held), "%" PRIu64, b->held);
		snprintf(wh, sizeof(wh), "%" PRIu64, b->would_hold);
		snprintf(trips, sizeof(trips), "%" PRIu64, b->trips);
		snprintf(stl, sizeof(stl), "%" PRIu64, b->settling);
		ctl_fmt_time(b->tripped_ms, at, sizeof(at));
		ctl_fmt_time(b->onset_ms, onset, sizeof(onset));
		ctl_table_row(&t, b->org, b->reason, st, b->manual ? "yes" : "no",
		    win, global ? "-" : base, held, stl, wh, trips, at, onset,
		    b->tripped_by[0] ? b->tripped_by : "-",
		    b->note[0] ? b->note : "-");
	}
	ctl_table_print(&t);
	ctl_table_free(&t);
}

/* a global breaker's commands held in the organisations asked so far */
struct gshare {
	fbx_id reason;
	uint64_t held;
};

/* gshare_add - add one organisation's share of a global breaker's held
 * commands. @return 0, or -1 out of memory. */
static int
gshare_add(struct gshare **gs, size_t *ngs, const struct fbx_breaker_info *b)
{
	struct gshare *p;

	for (size_t i = 0; i < *ngs; i++)
		if (strcmp((*gs)[i].reason, b->reason) == 0) {
			(*gs)[i].held += b->held_in_org;
			return 0;
		}
	p = realloc(*gs, (*ngs + 1) * sizeof(*p));
	if (p == NULL)
		return -1;
	*gs = p;
	snprintf(p[*ngs].reason, sizeof(p[*ngs].reason), "%s", b->reason);
	p[*ngs].held = b->held_in_org;
	(*ngs)++;
	return 0;
}

/* breaker_status_all - every organisation's breakers worth a look (open,
 * holding, or tripped before) and the global ones once. A global
 * breaker's HELD is the sum of every organisation's share, each counted
 * by the node that owns it: one node's count covers only its own
 * organisations when several share the store (an outside walk read 2,854
 * held where 3,999 were). */
static int
breaker_status_all(struct ctl *ctl, const struct ctrl_args *a)
{
	struct orglist ol;
	struct fbx_breaker_info *v = NULL;
	struct gshare *gs = NULL;
	size_t n = 0, cap = 0, open = 0, orgs_shown = 0, ngs = 0;
	uint64_t held = 0;
	char saved[FBX_ID_MAX + 1], last[FBX_ID_MAX + 1] = "";
	size_t nglobal = 0, gopen = 0;
	uint64_t gheld = 0;
	int st, have_global = 0;

	strcpy(saved, ctl->org);
	st = ctl_list_orgs(ctl, &ol);
	if (st != EX_OK)
		return st;
	for (size_t i = 0; i < ol.n && st == EX_OK; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_BREAKER;
		req.u.breaker.op = FBX_BRK_STATUS;
		strcpy(req.u.breaker.reason, a->reason);
		strcpy(ctl->org, ol.orgs[i]);
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			break;
		for (size_t k = 0; k < rep.u.breaker.n; k++) {
			const struct fbx_breaker_info *b = &rep.u.breaker.b[k];
			int global = strcmp(b->org, "*") == 0;
			if (global ? have_global
			           : !(b->state == FBX_BS_OPEN || b->held > 0 ||
			                 b->trips > 0))
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct fbx_breaker_info *p =
				    realloc(v, ncap * sizeof(*p));
				if (p == NULL) {
					st = ctl_fail(FBX_ENOMEM, NULL);
					break;
				}
				v = p;
				cap = ncap;
			}
			v[n++] = *b;
			if (global) {
				nglobal++;
				gopen += b->state == FBX_BS_OPEN;
				gheld += b->held;
			} else {
				open += b->state == FBX_BS_OPEN;
				held += b->held;
				if (strcmp(last, b->org) != 0) {
					orgs_shown++;
					strcpy(last, b->org);
				}
			}
		}
		/* the global breakers come with every reply: keep the first,
		 * and every organisation's share of what they hold */
		for (size_t k = 0; k < rep.u.breaker.n; k++)
			if (strcmp(rep.u.breaker.b[k].org, "*") == 0) {
				have_global = 1;
				if (st == EX_OK &&
				    gshare_add(&gs, &ngs, &rep.u.breaker.b[k]) !=
				        0)
					st = ctl_fail(FBX_ENOMEM, NULL);
			}
		fbx_console_rep_free(&rep);
	}
	strcpy(ctl->org, saved);
	if (st == EX_OK) {
		gheld = 0;
		for (size_t i = 0; i < n; i++) {
			if (strcmp(v[i].org, "*") != 0)
				continue;
			v[i].held = 0;
			for (size_t k = 0; k < ngs; k++)
				if (strcmp(gs[k].reason, v[i].reason) == 0)
					v[i].held = gs[k].held;
			gheld += v[i].held;
		}
	}
	free(gs);
	if (st == EX_OK && nglobal > 0) {
		/* organisations first, then the global breakers */
		struct fbx_breaker_info *w = malloc(n * sizeof(*w));
		size_t k = 0;
		if (w == NULL) {
			st = ctl_fail(FBX_ENOMEM, NULL);
		} else {
			for (int pass = 0; pass < 2; pass++)
				for (size_t i = 0; i < n; i++)
					if ((strcmp(v[i].org, "*") == 0) == pass)
						w[k++] = v[i];
			free(v);
			v = w;
		}
	}
	if (st == EX_OK) {
		struct fbx_console_rep crep;
		int have_certs = ctl_cert_fetch(ctl, &crep);
		if (ctl->json) {
			json_t *o = json_object(), *b = json_array();
			for (size_t i = 0; b != NULL && i < n; i++)
				json_array_append_new(b,
				    ctl_json_breaker(&v[i]));
			if (o != NULL) {
				CJ_STR(o, "operation", "status");
				CJ_INT(o, "organisations", ol.n);
				CJ_SET(o, "breakers", b);
				b = NULL;
				if (have_certs)
					CJ_SET(o, "certificates",
					    ctl_json_certs(&crep, a->reason));
			}
			json_decref(b);
			ctl_json_print(o);
		} else {
			if (n > 0)
				print_breakers(v, n);
			printf("%s%zu of %zu organisations have breakers that "
			       "tripped or hold commands: %zu open, %" PRIu64
			       " commands held; global breakers: %zu open, "
			       "%" PRIu64 " commands held\n",
			    n ? "\n" : "", orgs_shown, ol.n, open, held, gopen,
			    gheld);
			if (have_certs)
				ctl_cert_lines(&crep, a->reason);
		}
		if (have_certs)
			fbx_console_rep_free(&crep);
	}
	free(v);
	ctl_orglist_free(&ol);
	return st;
}

int
cmd_breaker(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "release", no_argument, NULL, OPT_RELEASE },
		{ "discard", no_argument, NULL, OPT_DISCARD },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "min", required_argument, NULL, OPT_MIN },
		{ "share", required_argument, NULL, OPT_SHARE },
		{ "baseline-mult", required_argument, NULL, OPT_BASELINE_MULT },
		{ "global-orgs", required_argument, NULL, OPT_GLOBAL_ORGS },
		{ "settle", required_argument, NULL, OPT_SETTLE },
		{ "min-samples", required_argument, NULL, OPT_MIN_SAMPLES },
		{ "global-share", required_argument, NULL, OPT_GLOBAL_SHARE },
		{ "shadow", no_argument, NULL, OPT_SHADOW },
		{ "enforce", no_argument, NULL, OPT_ENFORCE },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep, crep;
	struct ctrl_args a;
	const char *sub;
	int st, op, have_certs;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, breaker_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("breaker needs status, trip, reset or config "
				 "(see breaker --help)");
	sub = argv[st];
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (strcmp(sub, "status") == 0)
		op = FBX_BRK_STATUS;
	else if (strcmp(sub, "trip") == 0)
		op = FBX_BRK_TRIP;
	else if (strcmp(sub, "reset") == 0)
		op = FBX_BRK_RESET;
	else if (strcmp(sub, "config") == 0 || strcmp(sub, "configure") == 0)
		op = FBX_BRK_CONFIGURE;
	else
		return ctl_usage_err("unknown breaker operation '%s' (status, "
				 "trip, reset, config)",
		    sub);
	if (a.all_orgs && op != FBX_BRK_STATUS)
		return ctl_usage_err("--all-orgs goes with breaker status");
	if (a.all_orgs) {
		if (a.global || a.have_note || a.have_cfg ||
		    a.on_reset != FBX_RESET_NONE)
			return ctl_usage_err("breaker status takes --reason and "
					 "--all-orgs only");
		return breaker_status_all(ctl, &a);
	}
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	if (op != FBX_BRK_STATUS && a.reason[0] == '\0')
		return ctl_usage_err("breaker %s needs --reason", sub);
	if ((op == FBX_BRK_TRIP || op == FBX_BRK_RESET) && !a.have_note)
		return ctl_usage_err("breaker %s needs --note (why; it is "
				 "recorded)",
		    sub);
	if (op == FBX_BRK_RESET && a.on_reset == FBX_RESET_NONE)
		return ctl_usage_err("breaker reset needs --release (send the held "
				 "commands on) or --discard");
	if (op != FBX_BRK_RESET && a.on_reset != FBX_RESET_NONE)
		return ctl_usage_err("--release and --discard go with reset");
	if (op != FBX_BRK_CONFIGURE && a.have_cfg)
		return ctl_usage_err("--window, --min, --share, --baseline-mult, "
				 "--min-samples, --global-orgs, --global-share, "
				 "--settle, --shadow and --enforce go with "
				 "config");
	if (op == FBX_BRK_CONFIGURE && !a.have_cfg)
		return ctl_usage_err("breaker config: nothing to change");
	if (op == FBX_BRK_CONFIGURE && !a.global &&
	    (a.cfg.settle_set || a.cfg.global_orgs || a.cfg.global_share_ppm))
		return ctl_usage_err("--settle, --global-orgs and --global-share "
				 "are settings of the global breaker (they "
				 "apply to every organisation): add --global");
	if (op == FBX_BRK_STATUS && (a.global || a.have_note))
		return ctl_usage_err("status shows the organisation's and the "
				 "global breakers; no --global or --note");
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = op;
	req.u.breaker.global = a.global;
	strcpy(req.u.breaker.reason, a.reason);
	req.u.breaker.on_reset = a.on_reset;
	strcpy(req.u.breaker.note, a.note);
	if (op == FBX_BRK_CONFIGURE)
		req.u.breaker.cfg = a.cfg;
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	have_certs = op == FBX_BRK_STATUS && ctl_cert_fetch(ctl, &crep);
	if (ctl->json) {
		json_t *o = json_object(), *b = json_array();
		for (size_t i = 0; b != NULL && i < rep.u.breaker.n; i++)
			json_array_append_new(b,
			    ctl_json_breaker(&rep.u.breaker.b[i]));
		if (o != NULL) {
			CJ_STR(o, "operation", sub);
			if (op == FBX_BRK_RESET) {
				CJ_INT(o, "released", rep.u.breaker.released);
				CJ_INT(o, "discarded",
				    rep.u.breaker.discarded);
				CJ_INT(o, "held_again",
				    rep.u.breaker.held_again);
				if (rep.u.breaker.cert_due[0] != '\0')
					CJ_STR(o, "cert_due",
					    rep.u.breaker.cert_due);
			}
			CJ_SET(o, "breakers", b);
			b = NULL;
			if (have_certs)
				CJ_SET(o, "certificates",
				    ctl_json_certs(&crep, a.reason));
		}
		json_decref(b);
		ctl_json_print(o);
	} else {
		if (op == FBX_BRK_RESET && a.on_reset == FBX_RESET_RELEASE &&
		    rep.u.breaker.held_again > 0)
			printf("breaker %s/%s reset: %" PRIu32
			       " held commands released, %" PRIu32
			       " refused by the blast-radius limits "
			       "(discarded), %" PRIu32 " held again by %s\n\n",
			    a.global ? "*" : ctl->org, a.reason,
			    rep.u.breaker.released, rep.u.breaker.discarded,
			    rep.u.breaker.held_again,
			    a.global ? "their organisation's breaker, still "
			               "open"
			             : "the global breaker of the reason, still "
			               "open (reset it to release them)");
		else if (op == FBX_BRK_RESET && a.on_reset == FBX_RESET_RELEASE)
			printf("breaker %s/%s reset: %" PRIu32
			       " held commands released, %" PRIu32
			       " refused by the blast-radius limits "
			       "(discarded)\n\n",
			    a.global ? "*" : ctl->org, a.reason,
			    rep.u.breaker.released, rep.u.breaker.discarded);
		else if (op == FBX_BRK_RESET)
			printf("breaker %s/%s reset: %" PRIu32
			       " held commands released, %" PRIu32
			       " discarded\n\n",
			    a.global ? "*" : ctl->org, a.reason,
			    rep.u.breaker.released, rep.u.breaker.discarded);
		if (op == FBX_BRK_RESET && rep.u.breaker.cert_due[0] != '\0')
			printf("warning: certificate %s is still due (fuseboxctl "
			       "cert list): the engine's certificate check opens "
			       "this breaker again within a second and holds the "
			       "reason's automatic locks again. To keep it "
			       "closed, renew the certificate (cert add --name "
			       "%s --file NEW.pem --reason %s) or remove it (cert "
			       "remove --name %s).\n\n",
			    rep.u.breaker.cert_due, rep.u.breaker.cert_due,
			    a.reason, rep.u.breaker.cert_due);
		if (rep.u.breaker.n == 0)
			printf("no breaker recorded for %s%s%s (all closed, "
			       "default settings)\n",
			    ctl->org, a.reason[0] ? " reason " : "",
			    a.reason);
		else
			print_breakers(rep.u.breaker.b, rep.u.breaker.n);
		/* the table has no column for every setting (the settle
		 * delay among them): the configured breaker's, in full */
		for (size_t i = 0; op == FBX_BRK_CONFIGURE &&
		     i < rep.u.breaker.n; i++) {
			const struct fbx_breaker_info *b = &rep.u.breaker.b[i];
			const struct fbx_breaker_cfg *g = &b->cfg;
			char sh[16], gs[16];
			if (strcmp(b->org, a.global ? "*" : ctl->org) != 0 ||
			    strcmp(b->reason, a.reason) != 0)
				continue;
			fbx_pct_str(g->share_ppm, sh, sizeof(sh));
			fbx_pct_str(g->global_share_ppm, gs, sizeof(gs));
			printf("\nsettings of %s/%s: window %" PRIu32
			       " s, allowance max(%" PRIu32 ", %s of the "
			       "fleet) or %" PRIu32 "x the baseline after %" PRIu32
			       " devices",
			    b->org, b->reason, g->window_s, g->min_count, sh,
			    g->baseline_mult, g->min_samples);
			if (strcmp(b->org, "*") == 0)
				printf("; global: %" PRIu32 " organisations or "
				       "%s of every device; settle %" PRIu32
				       " s%s",
				    g->global_orgs, gs, g->settle_s,
				    g->settle_s == 0 ? " (off)" : "");
			printf("; %s\n", g->shadow ? "shadow" : "enforcing");
		}
		if (have_certs)
			ctl_cert_lines(&crep, a.reason);
	}
	if (have_certs)
		fbx_console_rep_free(&crep);
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- held ---- */

static const char *const held_usage =
    "usage: fuseboxctl held [--settling] [--reason R] [--limit N]\n"
    "                       [--after ID]\n"
    "\n"
    "Commands of the organisation held by an open breaker, oldest first,\n"
    "with the total held. 'breaker reset' releases or discards them.\n"
    "\n"
    "  --settling    its commands in their settle window instead\n"
    "                (automatic locks, the waves of a release), with\n"
    "                when each is due; 'breaker trip' holds them\n"
    "  --reason R    only commands of reason R\n"
    "  --limit N     rows to print (default 100)\n"
    "  --after ID    start after command id ID\n";

int
cmd_held(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "settling", no_argument, NULL, OPT_SETTLING },
		{ NULL, 0, NULL, 0 } };
	struct ctrl_args a;
	struct table t = { .ncol = 7 };
	uint64_t after, total = 0, shown = 0;
	json_t *held = NULL;
	int st;

	memset(&a, 0, sizeof(a));
	a.limit = 100;
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, held_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	if (ctl->json) {
		if ((held = json_array()) == NULL)
			return ctl_fail(FBX_ENOMEM, NULL);
	} else {
		ctl_table_row(&t, "ID", "CREATED", "TYPE", "ORIGIN", "REASON",
		    a.settling ? "DUE" : "HELD_BY", "NOTE");
	}
	/* Page through all of them for the total; print the first N. */
	after = a.after;
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_HELD;
		strcpy(req.u.list_held.reason, a.reason);
		req.u.list_held.after = after;
		req.u.list_held.limit = 1000;
		req.u.list_held.which = a.settling ? FBX_LH_SETTLING
		                                   : FBX_LH_HELD;
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK) {
			ctl_table_free(&t);
			/* the error line says it: no partial object */
			json_decref(held);
			return st;
		}
		for (size_t i = 0; i < rep.u.commands.n; i++) {
			const struct fbx_command *c = &rep.u.commands.cmds[i];
			if (a.settling && c->state != FBX_C_SETTLING) {
				/* an engine older than ListHeld.which
				 * drops it and lists held commands */
				uint64_t id = c->id;
				int cs = c->state;
				fbx_console_rep_free(&rep);
				ctl_table_free(&t);
				json_decref(held);
				return ctl_fail(FBX_ESTATE,
				    "the engine answered --settling with "
				    "command %" PRIu64 " in state %s: it is "
				    "older than this fuseboxctl and cannot "
				    "list settling commands",
				    id, fbx_cstate_name(cs));
			}
			total++;
			if (shown >= a.limit)
				continue;
			shown++;
			if (ctl->json) {
				json_array_append_new(held,
				    ctl_json_command(c));
			} else {
				char id[24], cr[40], due[40];
				snprintf(id, sizeof(id), "%" PRIu64, c->id);
				ctl_fmt_time(c->created_ms, cr, sizeof(cr));
				ctl_fmt_time(c->settle_until_ms, due,
				    sizeof(due));
				ctl_table_row(&t, id, cr, fbx_cmd_type_name(c->type),
				    fbx_origin_name(c->origin),
				    c->reason[0] ? c->reason : "-",
				    a.settling ? due
				               : c->held_by[0] ? c->held_by : "-",
				    c->note[0] ? c->note : "-");
			}
		}
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			break;
	}
	if (ctl->json) {
		ctl_json_print(json_pack("{s:o,s:I,s:I}",
		    a.settling ? "settling" : "held", held, "shown",
		    (json_int_t)shown, "total", (json_int_t)total));
	} else {
		if (shown > 0)
			ctl_table_print(&t);
		printf("%s%" PRIu64 " shown, %" PRIu64 " %s%s%s\n",
		    shown > 0 ? "\n" : "", shown, total,
		    a.settling ? "settling" : "held",
		    a.reason[0] ? " for reason " : "", a.reason);
	}
	ctl_table_free(&t);
	return EX_OK;
}

/* ---- limit ---- */

static const char *const limit_usage =
    "usage: fuseboxctl limit list [--global]\n"
    "       fuseboxctl limit set --type T [--global] [--max N]\n"
    "                            [--share PCT] [--window S]\n"
    "\n"
    "Blast-radius limits: devices one command type may reach in an\n"
    "organisation per window. A command over the limit is refused with an\n"
    "approval token; a second operator approves it ('fuseboxctl approve').\n"
    "\n"
    "  list          limits in force for the organisation (SCOPE * = the\n"
    "                global default), with the devices used in the window\n"
    "  set           set the organisation's limit for type T (--global:\n"
    "                the default of every organisation); unset flags keep\n"
    "                the value now in force, 0 = no limit:\n"
    "    --max N       devices per window\n"
    "    --share PCT   share of the organisation's fleet per window\n"
    "    --window S    window in seconds, 1..2592000 (default: the one in\n"
    "                  force; 3600 built in)\n";

static void
print_limits(const struct ctl *ctl, const struct fbx_console_rep *rep,
    int global)
{
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep->u.limit.n; i++) {
			const struct fbx_limit_info *l = &rep->u.limit.l[i];
			json_array_append_new(a,
			    json_pack("{s:o*,s:o*,s:I,s:I,s:I,s:I}", "type",
				fbx_json_str(fbx_cmd_type_name(l->type)),
				"scope", fbx_json_str(global ? "*" : l->org),
				"max_count", (json_int_t)l->max_count,
				"max_share_ppm", (json_int_t)l->max_share_ppm,
				"window_s", (json_int_t)l->window_s, "used",
				(json_int_t)l->used));
		}
		ctl_json_print(json_pack("{s:o*}", "limits", a));
	} else {
		struct table t = { .ncol = 6 };
		ctl_table_row(&t, "TYPE", "SCOPE", "MAX", "SHARE", "WINDOW", "USED");
		for (size_t i = 0; i < rep->u.limit.n; i++) {
			const struct fbx_limit_info *l = &rep->u.limit.l[i];
			char mx[16], sh[16], wi[16], us[24];
			snprintf(mx, sizeof(mx), "%" PRIu32, l->max_count);
			fbx_pct_str(l->max_share_ppm, sh, sizeof(sh));
			snprintf(wi, sizeof(wi), "%" PRIu32 "s", l->window_s);
			snprintf(us, sizeof(us), "%" PRIu64, l->used);
			ctl_table_row(&t, fbx_cmd_type_name(l->type),
			    global ? "*" : l->org, l->max_count ? mx : "-",
			    l->max_share_ppm ? sh : "-", wi,
			    global ? "-" : us);
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
	}
}

int
cmd_limit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "max", required_argument, NULL, OPT_MAX },
		{ "share", required_argument, NULL, OPT_SHARE },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	int st, set;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, limit_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("limit needs list or set (see limit --help)");
	if (strcmp(argv[st], "list") == 0)
		set = 0;
	else if (strcmp(argv[st], "set") == 0)
		set = 1;
	else
		return ctl_usage_err("unknown limit operation '%s' (list, set)",
		    argv[st]);
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (!a.global && (st = ctl_need_org(ctl)) != EX_OK)
		return st;
	if (!set && (a.type || a.have_max || a.have_share || a.have_window))
		return ctl_usage_err("--type, --max, --share and --window go with "
				 "set");
	if (set && a.type == 0)
		return ctl_usage_err("limit set needs --type");
	if (set && !a.have_max && !a.have_share && !a.have_window)
		return ctl_usage_err("limit set: give --max, --share or --window");
	req.kind = FBX_CREQ_LIMIT;
	req.u.limit.global = a.global;
	if (set) {
		/* The engine replaces the whole limit: start from the one in
		 * force, so an unset flag keeps its value. */
		struct fbx_limit_info cur;
		memset(&cur, 0, sizeof(cur));
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < rep.u.limit.n; i++)
			if (rep.u.limit.l[i].type == a.type)
				cur = rep.u.limit.l[i];
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIMIT;
		req.u.limit.global = a.global;
		req.u.limit.set = 1;
		req.u.limit.lim.type = (uint8_t)a.type;
		req.u.limit.lim.max_count = a.have_max ? a.max : cur.max_count;
		req.u.limit.lim.max_share_ppm =
		    a.have_share ? a.share_ppm : cur.max_share_ppm;
		req.u.limit.lim.window_s =
		    a.have_window ? a.window_s : cur.window_s;
	}
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (set && !ctl->json)
		printf("limit for %s set (%s)\n\n", fbx_cmd_type_name(a.type),
		    a.global ? "every organisation, '*'" : ctl->org);
	print_limits(ctl, &rep, a.global);
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- rate ---- */

static const char *const rate_usage =
    "usage: fuseboxctl rate show\n"
    "       fuseboxctl rate set [--global] [--rate N] [--burst N]\n"
    "                           [--max-inflight N]\n"
    "\n"
    "Dispatch caps of the organisation (and the global cap, scope '*'):\n"
    "deliveries per second, bucket size, deliveries unanswered. Unset\n"
    "flags keep the value in force; 0 = unlimited.\n";

int
cmd_rate(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "burst", required_argument, NULL, OPT_BURST },
		{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	int st, set;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, rate_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("rate needs show or set (see rate --help)");
	if (strcmp(argv[st], "show") == 0)
		set = 0;
	else if (strcmp(argv[st], "set") == 0)
		set = 1;
	else
		return ctl_usage_err("unknown rate operation '%s' (show, set)",
		    argv[st]);
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (!a.global && (st = ctl_need_org(ctl)) != EX_OK)
		return st;
	if (!set && (a.global || a.have_rate || a.have_burst ||
	                a.have_inflight))
		return ctl_usage_err("--global, --rate, --burst and "
				 "--max-inflight go with set");
	if (set && !a.have_rate && !a.have_burst && !a.have_inflight)
		return ctl_usage_err("rate set: give --rate, --burst or "
				 "--max-inflight");
	req.kind = FBX_CREQ_RATE;
	if (set) {
		/* the engine replaces all three caps: keep unset ones */
		struct fbx_rate_info cur;
		memset(&cur, 0, sizeof(cur));
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < rep.u.rate.n; i++) {
			int g = strcmp(rep.u.rate.r[i].org, "*") == 0;
			if (g == (a.global != 0))
				cur = rep.u.rate.r[i];
		}
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_RATE;
		req.u.rate.set = 1;
		req.u.rate.global = a.global;
		req.u.rate.rate.rate_per_s = a.have_rate ? a.rate : cur.rate_per_s;
		req.u.rate.rate.burst = a.have_burst ? a.burst : cur.burst;
		req.u.rate.rate.max_inflight =
		    a.have_inflight ? a.inflight : cur.max_inflight;
	}
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		json_t *ra = json_array();
		for (size_t i = 0; ra != NULL && i < rep.u.rate.n; i++) {
			const struct fbx_rate_info *r = &rep.u.rate.r[i];
			json_array_append_new(ra,
			    json_pack("{s:o*,s:I,s:I,s:I,s:I}", "scope",
				fbx_json_str(r->org), "rate_per_s",
				(json_int_t)r->rate_per_s, "burst",
				(json_int_t)r->burst, "max_inflight",
				(json_int_t)r->max_inflight, "inflight",
				(json_int_t)r->inflight));
		}
		ctl_json_print(json_pack("{s:o*}", "rates", ra));
	} else {
		struct table t = { .ncol = 5 };
		ctl_table_row(&t, "SCOPE", "RATE/S", "BURST", "MAX_INFLIGHT",
		    "INFLIGHT");
		for (size_t i = 0; i < rep.u.rate.n; i++) {
			const struct fbx_rate_info *r = &rep.u.rate.r[i];
			char ra[16], bu[16], mi[16], in[16];
			snprintf(ra, sizeof(ra), "%" PRIu32, r->rate_per_s);
			snprintf(bu, sizeof(bu), "%" PRIu32, r->burst);
			snprintf(mi, sizeof(mi), "%" PRIu32, r->max_inflight);
			snprintf(in, sizeof(in), "%" PRIu32, r->inflight);
			ctl_table_row(&t, r->org,
			    r->rate_per_s ? ra : "unlimited",
			    r->burst ? bu : (r->rate_per_s ? "=rate" : "-"),
			    r->max_inflight ? mi : "unlimited", in);
		}
		ctl_table_print(&t);
		ctl_table_free(&t);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- approve ---- */

static const char *const approve_usage =
    "usage: fuseboxctl approve TOKEN [--note TEXT]\n"
    "\n"
    "Approve, as a second operator, a command the blast-radius limit\n"
    "refused. TOKEN is printed with the refusal ('approval token: ...').\n"
    "The submitter then submits the same command again with\n"
    "--approval TOKEN before the approval expires. The approver must not\n"
    "be the submitter (-a NAME or $FUSEBOX_ACTOR names the operator).\n";

int
cmd_approve(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, approve_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("approve needs the approval token");
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (ctl_copy_id(req.u.approve.token, argv[st]) != 0)
		return ctl_usage_err("bad approval token '%s'", argv[st]);
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_APPROVE;
	strcpy(req.u.approve.note, a.note);
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		ctl_json_print(json_pack("{s:o*,s:o*,s:o*,s:I}", "token",
		    fbx_json_str(rep.u.approve.token), "approver",
		    fbx_json_str(rep.u.approve.approver), "submitter",
		    fbx_json_str(rep.u.approve.submitter), "expires_ms",
		    (json_int_t)rep.u.approve.expires_ms));
	} else {
		struct table t = { .ncol = 2 };
		char ex[40];
		ctl_fmt_time(rep.u.approve.expires_ms, ex, sizeof(ex));
		ctl_table_row(&t, "token", rep.u.approve.token);
		ctl_table_row(&t, "approver", rep.u.approve.approver);
		ctl_table_row(&t, "submitter", rep.u.approve.submitter);
		ctl_table_row(&t, "expires", ex);
		ctl_table_print(&t);
		ctl_table_free(&t);
		printf("\nthe submitter may now resubmit the same command with "
		       "--approval %s\n",
		    rep.u.approve.token);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- rollout ---- */

static const char *const rollout_usage =
    "usage: fuseboxctl rollout status|pause|resume|cancel|approve ID\n"
    "                          [--note TEXT]\n"
    "\n"
    "Show or steer the staged rollout of command ID.\n"
    "\n"
    "  status    plan and progress\n"
    "  pause     stop releasing waves (deliveries out stay out)\n"
    "  resume    go on after a pause (the operator has judged the wave)\n"
    "  cancel    end the rollout; undelivered devices are cancelled\n"
    "  approve   advance to the next group (plans with --approve-stages)\n"
    "  --note    why, kept in the rollout's note\n";

int
cmd_rollout(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	static const struct {
		const char *name;
		int op;
	} ops[] = { { "status", FBX_ROP_STATUS }, { "pause", FBX_ROP_PAUSE },
		{ "resume", FBX_ROP_RESUME }, { "cancel", FBX_ROP_CANCEL },
		{ "approve", FBX_ROP_APPROVE } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	uint64_t id;
	int st, op = 0;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, rollout_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st + 2 > argc)
		return ctl_usage_err("rollout needs an operation and a command id "
				 "(see rollout --help)");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(argv[st], ops[i].name) == 0)
			op = ops[i].op;
	if (op == 0)
		return ctl_usage_err("unknown rollout operation '%s' (status, "
				 "pause, resume, cancel, approve)",
		    argv[st]);
	if (ctl_parse_u64(argv[st + 1], UINT64_MAX, &id) != 0 || id == 0)
		return ctl_usage_err("bad command id '%s'", argv[st + 1]);
	if (st + 2 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 2]);
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.op = op;
	req.u.rollout.command_id = id;
	strcpy(req.u.rollout.note, a.note);
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		ctl_json_print(json_pack("{s:I,s:o*,s:o*}", "command_id",
		    (json_int_t)rep.u.rollout.command_id, "plan",
		    ctl_json_plan(&rep.u.rollout.plan), "status",
		    ctl_json_ro_status(&rep.u.rollout.st)));
	} else {
		struct table t = { .ncol = 2 };
		char b[24];
		snprintf(b, sizeof(b), "%" PRIu64, rep.u.rollout.command_id);
		ctl_table_row(&t, "command", b);
		ctl_rollout_rows(&t, &rep.u.rollout.plan, &rep.u.rollout.st);
		ctl_table_print(&t);
		ctl_table_free(&t);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- summary ---- */

static const char *const summary_usage =
    "usage: fuseboxctl summary ORG[,ORG...] [--since TIME] [--type T]\n"
    "                          [--origin O]\n"
    "       fuseboxctl summary --orgs-prefix P --count N [...]\n"
    "       fuseboxctl summary --all-orgs [...]\n"
    "       fuseboxctl -o ORG summary [...]\n"
    "\n"
    "What happened per organisation: for each one, the sum over its\n"
    "commands (all pages of 'list'), one row per organisation and a TOTAL.\n"
    "With none of ORG, --orgs-prefix and --all-orgs: -o's organisation\n"
    "(or FUSEBOX_ORG's).\n"
    "\n"
    "  --orgs-prefix P --count N   organisations P001 .. PN (zero padded\n"
    "                              to 3 digits, as fusebox-devsim names\n"
    "                              them)\n"
    "  --all-orgs      every organisation the engine knows ('orgs')\n"
    "  --since TIME    only commands created at or after TIME\n"
    "  --type T        only commands of type T (e.g. lock)\n"
    "  --origin O      only commands of origin O (e.g. automatic)\n"
    "\n"
    "Columns: COMMANDS counted, HELD commands held by a breaker now,\n"
    "DISCARDED commands discarded, DELIVERIES of the commands (a device\n"
    "reached by two commands counts twice), DELIVERED reached a\n"
    "gateway (sent + accepted + succeeded + failed), then deliveries per\n"
    "state.\n";

struct org_sum {
	fbx_id org;
	uint64_t commands, held, settling, discarded, devices, delivered;
	uint64_t succeeded, failed, pending, queued, expired, cancelled;
	int err;
};

static void
sum_add(struct org_sum *t, const struct org_sum *o)
{
	t->commands += o->commands;
	t->held += o->held;
	t->settling += o->settling;
	t->discarded += o->discarded;
	t->devices += o->devices;
	t->delivered += o->delivered;
	t->succeeded += o->succeeded;
	t->failed += o->failed;
	t->pending += o->pending;
	t->queued += o->queued;
	t->expired += o->expired;
	t->cancelled += o->cancelled;
}

/* sum_org - page through an organisation's commands and add them up. */
static int
sum_org(struct ctl *ctl, const struct ctrl_args *a, struct org_sum *o)
{
	uint64_t after = 0;

	strcpy(ctl->org, o->org);
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.since_ms = a->since > 0 ? a->since : 0;
		req.u.list.after = after;
		req.u.list.limit = FBX_PAGE_MAX;
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < rep.u.commands.n; i++) {
			const struct fbx_command *c = &rep.u.commands.cmds[i];
			const uint32_t *k = c->counts;
			if (a->type != 0 && c->type != a->type)
				continue;
			if (a->origin != 0 && c->origin != a->origin)
				continue;
			o->commands++;
			o->held += c->state == FBX_C_HELD;
			o->settling += c->state == FBX_C_SETTLING;
			o->discarded += c->state == FBX_C_DISCARDED;
			o->devices += c->ndeliveries;
			o->delivered += (uint64_t)k[FBX_D_SENT] +
			    k[FBX_D_ACCEPTED] + k[FBX_D_SUCCEEDED] +
			    k[FBX_D_FAILED];
			o->succeeded += k[FBX_D_SUCCEEDED];
			o->failed += k[FBX_D_FAILED];
			o->pending += k[FBX_D_PENDING];
			o->queued += k[FBX_D_QUEUED];
			o->expired += k[FBX_D_EXPIRED];
			o->cancelled += k[FBX_D_CANCELLED];
		}
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			return EX_OK;
	}
}

static void
sum_row(struct table *t, const struct org_sum *o)
{
	char v[12][24];
	const uint64_t x[12] = { o->commands, o->held, o->settling,
		o->discarded, o->devices, o->delivered, o->succeeded,
		o->failed, o->pending, o->queued, o->expired, o->cancelled };

	for (int i = 0; i < 12; i++)
		snprintf(v[i], sizeof(v[i]), "%" PRIu64, x[i]);
	ctl_table_row(t, o->org, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
	    v[8], v[9], v[10], v[11]);
}

static void
sum_json(const struct org_sum *o)
{
	json_t *j = json_object();

	if (j != NULL) {
		CJ_STR(j, "org", o->org);
		CJ_INT(j, "commands", o->commands);
		CJ_INT(j, "held", o->held);
		CJ_INT(j, "settling", o->settling);
		CJ_INT(j, "discarded", o->discarded);
		CJ_INT(j, "devices", o->devices);
		CJ_INT(j, "delivered", o->delivered);
		CJ_INT(j, "succeeded", o->succeeded);
		CJ_INT(j, "failed", o->failed);
		CJ_INT(j, "pending", o->pending);
		CJ_INT(j, "queued", o->queued);
		CJ_INT(j, "expired", o->expired);
		CJ_INT(j, "cancelled", o->cancelled);
	}
	ctl_json_print(j);
}

int
cmd_summary(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "orgs-prefix", required_argument, NULL, OPT_ORGS_PREFIX },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ NULL, 0, NULL, 0 } };
	struct ctrl_args a;
	struct idlist orgs = { .max = 100000 };
	struct org_sum total;
	struct table t = { .ncol = 13 };
	fbx_id saved;
	int st, have_prefix = 0;

	memset(&a, 0, sizeof(a));
	a.prefix[0] = '\1'; /* unset marker: "" is a valid prefix */
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, summary_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	have_prefix = a.prefix[0] != '\1';
	if (!have_prefix)
		a.prefix[0] = '\0';
	if (have_prefix != (a.count != 0))
		return ctl_usage_err("--orgs-prefix and --count go together");
	if (have_prefix + a.all_orgs + (st < argc) > 1)
		return ctl_usage_err("give organisations, --orgs-prefix or "
				 "--all-orgs, one of them");
	if (!have_prefix && !a.all_orgs && st >= argc) {
		/* -o's (or FUSEBOX_ORG's) organisation, as for every other
		 * command */
		if (ctl->org[0] == '\0')
			return ctl_usage_err("summary needs ORG[,ORG...], "
					 "--all-orgs, --orgs-prefix P --count "
					 "N, or -o ORG");
		if (ctl_idlist_add(&orgs, ctl->org) != FBX_OK)
			return ctl_fail(FBX_ENOMEM, NULL);
	}
	if (a.all_orgs) {
		struct orglist ol;
		st = ctl_list_orgs(ctl, &ol);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < ol.n; i++) {
			if (ctl_idlist_add(&orgs, ol.orgs[i]) != FBX_OK) {
				ctl_orglist_free(&ol);
				free(orgs.ids);
				return ctl_fail(FBX_ENOMEM, NULL);
			}
		}
		ctl_orglist_free(&ol);
		st = argc; /* no operands */
	}
	for (int i = st; i < argc; i++) {
		const char *bad = NULL;
		int rc = ctl_idlist_add_split(&orgs, argv[i], &bad);
		if (rc != FBX_OK) {
			free(orgs.ids);
			return rc == FBX_ENOMEM
			    ? ctl_fail(rc, NULL)
			    : ctl_usage_err("bad organisation '%s'", bad);
		}
	}
	if (have_prefix) {
		int width = 3;
		for (uint64_t n = a.count; n >= 1000; n /= 10)
			width++;
		for (uint64_t i = 1; i <= a.count; i++) {
			char name[FBX_ID_MAX + 16];
			snprintf(name, sizeof(name), "%s%0*" PRIu64, a.prefix,
			    width, i);
			if (ctl_idlist_add(&orgs, name) != FBX_OK) {
				free(orgs.ids);
				return ctl_usage_err("bad organisation name '%s'",
				    name);
			}
		}
	}
	memcpy(saved, ctl->org, sizeof(saved));
	memset(&total, 0, sizeof(total));
	strcpy(total.org, "TOTAL");
	ctl_table_row(&t, "ORG", "COMMANDS", "HELD", "SETTLING", "DISCARDED",
	    "DELIVERIES",
	    "DELIVERED", "SUCCEEDED", "FAILED", "PENDING", "QUEUED", "EXPIRED",
	    "CANCELLED");
	st = EX_OK;
	for (size_t i = 0; i < orgs.n; i++) {
		struct org_sum o;
		memset(&o, 0, sizeof(o));
		strcpy(o.org, orgs.ids[i]);
		st = sum_org(ctl, &a, &o);
		if (st != EX_OK)
			break;
		sum_add(&total, &o);
		if (ctl->json)
			sum_json(&o);
		else
			sum_row(&t, &o);
	}
	memcpy(ctl->org, saved, sizeof(saved));
	if (st == EX_OK) {
		if (ctl->json) {
			sum_json(&total);
		} else {
			sum_row(&t, &total);
			ctl_table_print(&t);
			if (a.type != 0 || a.origin != 0)
				printf("\n(only %s%s%s commands)\n",
				    a.origin ? fbx_origin_name(a.origin) : "",
				    a.origin && a.type ? " " : "",
				    a.type ? fbx_cmd_type_name(a.type) : "");
		}
	}
	ctl_table_free(&t);
	free(orgs.ids);
	return st;
}
