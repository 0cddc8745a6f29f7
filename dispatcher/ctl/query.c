/*
 * query.c: fuseboxctl show and list: one command with its deliveries, and
 * the commands of an organisation, in pages.
 * Its ctl_rollout_rows also serves rollout (controls.c).
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* show */

static const char *const show_usage =
    "usage: fuseboxctl show ID [--state S] [--limit N] [--after DLV]\n"
    "\n"
    "Show a command: its fields, deliveries per state, and one page of\n"
    "per-device outcomes.\n"
    "\n"
    "  --state S     only deliveries in state S (queued, sent, accepted,\n"
    "                succeeded, failed, expired, cancelled, pending)\n"
    "  --limit N     outcomes per page (default 50, 0..10000; 0 = the\n"
    "                counts alone, no outcome rows)\n"
    "  --after DLV   start after delivery id DLV (page cursor)\n";

static void
history_str(const struct fbx_delivery *d, char *buf, size_t len)
{
	size_t k = 0;

	buf[0] = '\0';
	for (int i = 0; i < d->nhist && i < FBX_HIST_MAX && k < len; i++) {
		char t[40];
		int n;
		time_t s = (time_t)(d->hist[i].at_ms / 1000);
		struct tm tm;
		gmtime_r(&s, &tm);
		snprintf(t, sizeof(t), "%02d:%02d:%02d.%03d", tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)(d->hist[i].at_ms % 1000));
		if (d->hist[i].code != 0)
			n = snprintf(buf + k, len - k, "%s%s(%u)@%s",
			    i ? " " : "", fbx_dstate_name(d->hist[i].state),
			    (unsigned)d->hist[i].code, t);
		else
			n = snprintf(buf + k, len - k, "%s%s@%s", i ? " " : "",
			    fbx_dstate_name(d->hist[i].state), t);
		if (n < 0)
			break;
		k += (size_t)n;
	}
}

/* ctl_rollout_rows - a rollout's plan and status as rows of a key/value
 * table. */
void
ctl_rollout_rows(struct table *t, const struct fbx_rollout_plan *p,
    const struct fbx_rollout_status *r)
{
	char b[640];

	ctl_plan_str(p, b, sizeof(b));
	ctl_table_row(t, "rollout", b);
	ctl_table_row(t, "rollout_state", fbx_rollout_state_name(r->state));
	if (p->ngroups > 0) {
		snprintf(b, sizeof(b), "%u of %u (%s)", (unsigned)r->stage + 1,
		    (unsigned)p->ngroups + 1,
		    r->stage < p->ngroups ? p->groups[r->stage]
		                          : "rest of the organisation");
		ctl_table_row(t, "rollout_stage", b);
	}
	/* wave 0: none of this stage released yet (the range would still
	 * be the previous stage's last wave) */
	if (r->wave == 0)
		snprintf(b, sizeof(b), "0 (none of this stage released yet)");
	else
		snprintf(b, sizeof(b),
		    "%" PRIu32 " (deliveries %" PRIu32 "..%" PRIu32 ")",
		    r->wave, r->wave_size ? r->wave_start + 1 : 0,
		    r->wave_start + r->wave_size);
	ctl_table_row(t, "rollout_wave", b);
	snprintf(b, sizeof(b), "%" PRIu32, r->released);
	ctl_table_row(t, "rollout_released", b);
	if (r->state == FBX_RO_BAKING) {
		char bt[40];
		ctl_fmt_time(r->bake_until_ms, bt, sizeof(bt));
		ctl_table_row(t, "rollout_bake_until", bt);
	}
	if (r->note[0] != '\0')
		ctl_table_row(t, "rollout_note", r->note);
}

int
cmd_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "state", required_argument, NULL, OPT_STATE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct page_args pa;
	const struct fbx_command *c;
	uint64_t id;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&pa, 0, sizeof(pa));
	pa.limit = 50;
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, show_usage, ctl_page_opt, &pa);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("show needs a command id");
	if (ctl_parse_u64(argv[st], UINT64_MAX, &id) != 0 || id == 0)
		return ctl_usage_err("bad command id '%s'", argv[st]);
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (pa.after == UINT64_MAX)
		return ctl_usage_err("bad --after (a delivery id)");
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_GET_COMMAND;
	req.u.get.command_id = id;
	req.u.get.after = pa.after;
	req.u.get.limit = (uint32_t)pa.limit;
	req.u.get.state = pa.state;
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	c = &rep.u.command.info;
	if (ctl->json) {
		json_t *o = json_object(), *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.command.ndlv; i++)
			json_array_append_new(a,
			    ctl_json_delivery(&rep.u.command.dlv[i]));
		if (o != NULL) {
			CJ_SET(o, "command", ctl_json_command(c));
			CJ_SET(o, "deliveries", a);
			a = NULL;
			CJ_INT(o, "next_after", rep.u.command.next_after);
		}
		json_decref(a);
		ctl_json_print(o);
	} else {
		struct table t = { .ncol = 2 };
		struct table d = { .ncol = 7 };
		char b[128], cr[40], ex[40], tg[128];
		char counts[512];
		size_t k = 0;

		ctl_fmt_time(c->created_ms, cr, sizeof(cr));
		ctl_fmt_time(c->expires_ms, ex, sizeof(ex));
		ctl_target_str(c, tg, sizeof(tg));
		snprintf(b, sizeof(b), "%" PRIu64, c->id);
		ctl_table_row(&t, "command", b);
		ctl_table_row(&t, "org", c->org);
		ctl_table_row(&t, "type", fbx_cmd_type_name(c->type));
		ctl_table_row(&t, "origin", fbx_origin_name(c->origin));
		ctl_table_row(&t, "actor", c->actor);
		ctl_table_row(&t, "reason", c->reason[0] ? c->reason : "-");
		ctl_table_row(&t, "target", tg);
		ctl_table_row(&t, "platform", fbx_platform_name(c->platform));
		ctl_table_row(&t, "state", fbx_cstate_name(c->state));
		ctl_table_row(&t, "created", cr);
		ctl_table_row(&t, "expires", ex);
		snprintf(b, sizeof(b), "%" PRIu32 "s", c->ttl_s);
		ctl_table_row(&t, "ttl", b);
		ctl_table_row(&t, "idempotency_key", c->idem_key);
		snprintf(b, sizeof(b), "%" PRIu32, c->ndeliveries);
		ctl_table_row(&t, "deliveries", b);
		counts[0] = '\0';
		for (int s = 1; s < FBX_D_COUNT && k < sizeof(counts); s++) {
			int n = snprintf(counts + k, sizeof(counts) - k,
			    "%s%s=%" PRIu32, k ? " " : "", fbx_dstate_name(s),
			    c->counts[s]);
			if (n < 0)
				break;
			k += (size_t)n;
		}
		ctl_table_row(&t, "counts", counts);
		ctl_table_row(&t, "priority", fbx_priority_name(c->priority));
		if (c->settle_until_ms > 0) {
			char su[48];
			ctl_fmt_time(c->settle_until_ms, su, sizeof(su));
			/* one label in every state: scripts grep it */
			ctl_table_row(&t, "settle_until", su);
		}
		if (c->held_by[0] != '\0')
			ctl_table_row(&t, "held_by", c->held_by);
		if (c->approved_by[0] != '\0')
			ctl_table_row(&t, "approved_by", c->approved_by);
		if (c->resolved_by[0] != '\0')
			ctl_table_row(&t, "resolved_by", c->resolved_by);
		if (c->note[0] != '\0')
			ctl_table_row(&t, "note", c->note);
		if (c->rollout.enabled)
			ctl_rollout_rows(&t, &c->rollout, &c->ro);
		ctl_table_print(&t);
		ctl_table_free(&t);
		if (rep.u.command.ndlv > 0) {
			putchar('\n');
			ctl_table_row(&d, "DELIVERY", "DEVICE", "STATE", "CODE",
			    "ATTEMPTS", "UPDATED", "HISTORY");
			for (size_t i = 0; i < rep.u.command.ndlv; i++) {
				const struct fbx_delivery *x =
				    &rep.u.command.dlv[i];
				char id_s[24], code[8], att[12], up[40];
				char hist[FBX_HIST_MAX * 40];
				snprintf(id_s, sizeof(id_s), "%" PRIu64, x->id);
				snprintf(code, sizeof(code), "%u",
				    (unsigned)x->code);
				snprintf(att, sizeof(att), "%" PRIu32,
				    x->attempts);
				ctl_fmt_time(x->updated_ms, up, sizeof(up));
				history_str(x, hist, sizeof(hist));
				ctl_table_row(&d, id_s, x->device,
				    fbx_dstate_name(x->state),
				    x->code ? code : "-", att, up, hist);
			}
			ctl_table_print(&d);
			ctl_table_free(&d);
		}
		if (rep.u.command.next_after != 0)
			ctl_more_u64(ctl, "\n", rep.u.command.next_after);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ------------------------------------------------------------------ */
/* list */

static const char *const list_usage =
    "usage: fuseboxctl list [--since TIME] [--until TIME] [--limit N]\n"
    "                       [--after ID] [--origin O] [--type T]\n"
    "                       [--state S]\n"
    "\n"
    "List the organisation's commands, oldest first.\n"
    "\n"
    "  --since TIME   created at or after TIME (epoch ms, or relative:\n"
    "                 -90s, -30m, -1h, -7d)\n"
    "  --until TIME   created before TIME (default: open)\n"
    "  --limit N      commands per page (default 100, 1..10000)\n"
    "  --after ID     start after command id ID (page cursor)\n"
    "  --origin O     only commands of this origin (operator,\n"
    "                 automatic, rollback, scheduled)\n"
    "  --type T       only commands of this type (lock, wipe, ...)\n"
    "  --state S      only commands in this state (held, settling,\n"
    "                 active, done, discarded, ...)\n"
    "With a filter, pages are read until N commands match and one\n"
    "more does (the organisation's commands are looked at here, page\n"
    "by page): the 'more:' line is printed only when more match.\n";

/* list filters: what the engine's listing cannot narrow by itself */
struct list_args {
	struct page_args pa;
	int origin, type, cstate;
};

static int
list_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct list_args *la = arg;

	switch (c) {
	case OPT_ORIGIN:
		la->origin = fbx_origin_parse(oa);
		if (la->origin == 0)
			return ctl_usage_err("unknown origin '%s'", oa);
		return EX_OK;
	case OPT_TYPE:
		return ctl_cmd_type(oa, &la->type);
	case OPT_STATE:
		la->cstate = fbx_cstate_parse(oa);
		if (la->cstate == 0)
			return ctl_usage_err("unknown command state '%s'", oa);
		return EX_OK;
	default:
		return ctl_page_opt(&la->pa, ctl, c, oa, argc, argv);
	}
}

static void
list_row(struct table *t, const struct fbx_command *c)
{
	char id[24], cr[40], tg[128], nd[12], ok[12], ko[12], pe[12],
	    ar[2 * FBX_ID_MAX + 4];

	snprintf(id, sizeof(id), "%" PRIu64, c->id);
	ctl_fmt_time(c->created_ms, cr, sizeof(cr));
	ctl_target_str(c, tg, sizeof(tg));
	snprintf(nd, sizeof(nd), "%" PRIu32, c->ndeliveries);
	snprintf(ok, sizeof(ok), "%" PRIu32, c->counts[FBX_D_SUCCEEDED]);
	snprintf(ko, sizeof(ko), "%" PRIu32,
	    c->counts[FBX_D_FAILED] + c->counts[FBX_D_EXPIRED]);
	snprintf(pe, sizeof(pe), "%" PRIu32, c->counts[FBX_D_PENDING]);
	snprintf(ar, sizeof(ar), "%s%s%s", c->actor, c->reason[0] ? "/" : "",
	    c->reason);
	ctl_table_row(t, id, cr, fbx_cmd_type_name(c->type),
	    fbx_origin_name(c->origin), fbx_cstate_name(c->state), tg, nd, ok,
	    ko, pe, ar);
}

/* list_filtered - list with filters: the engine's pages (10,000
 * commands each) are read until pa.limit commands match and one more
 * does, or the listing ends. The cursor for more is the last command
 * shown, and it is given only when a command after it matches: the
 * page it leads to is never empty. */
static int
list_filtered(struct ctl *ctl, struct fbx_console_req *req,
    const struct list_args *la)
{
	struct table t = { .ncol = 11 };
	json_t *a = ctl->json ? json_array() : NULL;
	uint64_t shown = 0, last = 0, next = 0;
	int st = EX_OK;

	if (!ctl->json)
		ctl_table_row(&t, "ID", "CREATED", "TYPE", "ORIGIN", "STATE",
		    "TARGET", "DEVICES", "SUCCEEDED", "FAILED", "PENDING",
		    "ACTOR/REASON");
	req->u.list.limit = FBX_PAGE_MAX;
	for (;;) {
		struct fbx_console_rep rep;
		size_t i;
		st = ctl_call(ctl, req, &rep);
		if (st != EX_OK)
			break;
		for (i = 0; i < rep.u.commands.n && next == 0; i++) {
			const struct fbx_command *c = &rep.u.commands.cmds[i];
			if ((la->origin && c->origin != la->origin) ||
			    (la->type && c->type != la->type) ||
			    (la->cstate && c->state != la->cstate))
				continue;
			if (shown == la->pa.limit) {
				next = last; /* one more matches: say so */
				break;
			}
			if (a != NULL)
				json_array_append_new(a, ctl_json_command(c));
			else if (!ctl->json)
				list_row(&t, c);
			last = c->id;
			shown++;
		}
		req->u.list.after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (next != 0 || req->u.list.after == 0)
			break;
	}
	if (st != EX_OK) {
		json_decref(a);
		ctl_table_free(&t);
		return st;
	}
	if (ctl->json) {
		ctl_json_print(json_pack("{s:o*,s:I}", "commands", a,
		    "next_after", (json_int_t)next));
	} else {
		ctl_table_print(&t);
		ctl_table_free(&t);
		if (next != 0)
			ctl_more_u64(ctl, "\n", next);
	}
	return EX_OK;
}

int
cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "state", required_argument, NULL, OPT_STATE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct list_args la;
	struct page_args pa;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&la, 0, sizeof(la));
	la.pa.limit = 100;
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, list_usage, list_opt, &la);
	if (st < 0)
		return -st - 1;
	pa = la.pa;
	if (st < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st]);
	if (pa.after == UINT64_MAX)
		return ctl_usage_err("bad --after (a command id)");
	if (pa.since < 0)
		pa.since = 0;
	if (pa.until != 0 && pa.until < pa.since)
		return ctl_usage_err("--until is before --since");
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_LIST_COMMANDS;
	req.u.list.since_ms = pa.since;
	req.u.list.until_ms = pa.until;
	req.u.list.after = pa.after;
	req.u.list.limit = (uint32_t)pa.limit;
	if (la.origin || la.type || la.cstate)
		return list_filtered(ctl, &req, &la);
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.commands.n; i++)
			json_array_append_new(a,
			    ctl_json_command(&rep.u.commands.cmds[i]));
		ctl_json_print(json_pack("{s:o*,s:I}", "commands", a,
		    "next_after", (json_int_t)rep.u.commands.next_after));
	} else {
		struct table t = { .ncol = 11 };

		ctl_table_row(&t, "ID", "CREATED", "TYPE", "ORIGIN", "STATE",
		    "TARGET", "DEVICES", "SUCCEEDED", "FAILED", "PENDING",
		    "ACTOR/REASON");
		for (size_t i = 0; i < rep.u.commands.n; i++)
			list_row(&t, &rep.u.commands.cmds[i]);
		ctl_table_print(&t);
		ctl_table_free(&t);
		if (rep.u.commands.next_after != 0)
			ctl_more_u64(ctl, "\n", rep.u.commands.next_after);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}
