/*
 * rollback.c: fuseboxctl rollback: the plan, its execution in slices for
 * one organisation or all of them, --wait on the compensations, --resume
 * and --continue.
 */
#include "ctl.h"

/* ---- rollback ---- */

static const char *const rollback_usage =
    "usage: fuseboxctl rollback --command ID[,ID...] [OPTIONS]\n"
    "       fuseboxctl rollback --incident REASON [--global]\n"
    "                           [--include-before-onset] [OPTIONS]\n"
    "       fuseboxctl rollback [--origin O] [--reason R] [--type T]\n"
    "                           [--group G] [--since TIME] [--until TIME]\n"
    "                           [OPTIONS]\n"
    "\n"
    "Undo commands: what was not sent yet (or is held) is cancelled, what\n"
    "succeeded gets a compensating command (lock -> unlock, install_app ->\n"
    "remove_app, set_policy -> the previous values), what cannot be undone\n"
    "(wipe, os_update, clear_passcode) is listed and left. Devices that a\n"
    "later command changed are left alone unless --include-changed. Without\n"
    "--execute it only prints the plan; nothing changes.\n"
    "\n"
    "Selection (in the organisation):\n"
    "  --command ID[,ID...]  these commands (repeatable)\n"
    "  --incident REASON     the automatic commands of reason REASON under\n"
    "                        its breaker (the global one if only that one\n"
    "                        held the organisation): from the incident's\n"
    "                        onset (when the reason's rate left its\n"
    "                        baseline) up to the breaker's reset or now,\n"
    "                        held ones included. Earlier commands of the\n"
    "                        reason in the breaker window are listed as\n"
    "                        \"before onset\" and left alone\n"
    "  --include-before-onset  undo those too\n"
    "  --global              the global breaker's incident in every\n"
    "                        affected organisation: one run, one rollback\n"
    "                        id, one table (fuseboxd --admin-org: only\n"
    "                        that organisation; another one gets its own\n"
    "                        part). --all-orgs says the same with it.\n"
    "                        Several nodes on one store refuse it:\n"
    "                        --all-orgs without --global there, one run\n"
    "                        per organisation\n"
    "  --origin O            operator, automatic, scheduled (with\n"
    "                        --incident: default automatic)\n"
    "  --reason R            commands of reason R (with --incident: R)\n"
    "  --type T              commands of type T\n"
    "  --group G             only devices of group G\n"
    "  --since TIME          created at or after TIME (epoch ms, now,\n"
    "  --until TIME          before TIME            -30m, -1h, -7d)\n"
    "Options:\n"
    "  --execute             carry the plan out: cancel, journal the\n"
    "                        compensating commands (recovery priority, never\n"
    "                        held by a breaker); prints the rollback id\n"
    "  --include-changed     also undo devices changed since by a later\n"
    "                        command\n"
    "  --rows N              plan rows to print (default 20, 0 = none; one\n"
    "                        organisation only)\n"
    "  --note TEXT           why (kept in the audit record)\n"
    "  --wait [SECONDS]      with --execute: wait until every compensating\n"
    "                        command is settled (default 300 s) and print\n"
    "                        the outcome and the time it took\n"
    "  --all-orgs            the same rollback in every organisation\n"
    "                        ('fuseboxctl orgs'), one run each: one row\n"
    "                        per organisation and a TOTAL (with\n"
    "                        --incident R --global: the one global run)\n"
    "  --resume C:L[:R[:ORG]]  go on from where a run stopped (the line\n"
    "                        printed on stderr)\n"
    "  --continue ID         with --execute: go on with rollback ID from\n"
    "                        where the engine journaled it (after a crash\n"
    "                        of the client or the engine)\n"
    "\n"
    "The engine works in slices (at most N deliveries and N/10 commands\n"
    "per request, fuseboxd --rollback-slice); fuseboxctl asks slice after\n"
    "slice, prints a progress line per slice on stderr and one combined\n"
    "plan or result. Stopped half way (engine restart), what was done\n"
    "stays done: --resume, or run it again (nothing is done twice).\n"
    "\n"
    "Plan counts (deliveries; a held command counts once per device, or\n"
    "once for a whole-group target): cancel, compensate, irreversible,\n"
    "changed since (left alone), nothing (failed, expired, cancelled, or\n"
    "nothing to undo), compensated before (by an earlier rollback), in\n"
    "flight (sent or accepted, not answered yet: nothing is sent to the\n"
    "device now; run the rollback again once they have settled).\n"
    "A rollback can be run again: what it compensated is not compensated\n"
    "twice. Exit 0 on success, 65 when nothing matched.\n";

static const char *const rb_action_label[FBX_RB_COUNT] = { "-", "cancel",
	"compensate", "irreversible", "changed since (left alone)", "nothing",
	"compensated before", "in flight (run again when settled)" };
static const char *const rb_action_short[FBX_RB_COUNT] = { "-", "cancel",
	"compensate", "irreversible", "changed", "nothing", "done-before",
	"in-flight" };

/* One compensating command to follow. */
struct rb_track {
	fbx_id org;
	uint64_t id;
	int settled;
	uint32_t deliveries;
	uint32_t counts[FBX_D_COUNT];
};

struct rb_tracks {
	struct rb_track *v;
	size_t n, cap;
};

static int
rb_track_add(struct rb_tracks *t, const char *org, uint64_t id)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct rb_track *p = realloc(t->v, ncap * sizeof(*p));
		if (p == NULL)
			return FBX_ENOMEM;
		t->v = p;
		t->cap = ncap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	strcpy(t->v[t->n].org, org);
	t->v[t->n].id = id;
	t->n++;
	return FBX_OK;
}

/* rb_print_onset - the incident's window, and the reason's commands
 * before its onset that the rollback leaves (with the first rows). */
static void
rb_print_onset(const struct ops_args *a, const struct fbx_rb_plan *p)
{
	char t1[40], t2[40], t3[40];

	if (a->incident[0] == '\0')
		return;
	ctl_fmt_time(p->onset_ms, t1, sizeof(t1));
	ctl_fmt_time(p->since_ms, t2, sizeof(t2));
	ctl_fmt_time(p->until_ms, t3, sizeof(t3));
	if (p->onset_ms != 0)
		printf("incident onset %s; selected from %s until %s\n", t1,
		    t2, p->until_ms ? t3 : "now (breaker open)");
	else
		printf("incident onset not recorded: selected from %s (one "
		       "breaker window before the trip) until %s\n",
		    t2, p->until_ms ? t3 : "now (breaker open)");
	if (a->include_before_onset) {
		printf("before onset: included (--include-before-onset)\n");
		return;
	}
	printf("before onset (earlier commands of the reason in the breaker "
	       "window, left as they are; --include-before-onset undoes "
	       "them): %" PRIu32 " command%s, %" PRIu32 " deliver%s\n",
	    p->before_onset, p->before_onset == 1 ? "" : "s",
	    p->before_onset_deliveries,
	    p->before_onset_deliveries == 1 ? "y" : "ies");
	if (a->rows > 0 && p->nbo_rows > 0) {
		struct table r = { .ncol = 6 };
		size_t shown = p->nbo_rows < a->rows ? p->nbo_rows
		                                     : (size_t)a->rows;
		putchar('\n');
		ctl_table_row(&r, "COMMAND", "DELIVERY", "DEVICE", "TYPE", "STATE",
		    "WOULD BE");
		for (size_t i = 0; i < shown; i++) {
			const struct fbx_rb_row *w = &p->bo_rows[i];
			char cid[24], did[24];
			snprintf(cid, sizeof(cid), "%" PRIu64, w->command_id);
			snprintf(did, sizeof(did), "%" PRIu64, w->delivery_id);
			ctl_table_row(&r, cid, w->delivery_id ? did : "-",
			    w->device[0] ? w->device : "-",
			    fbx_cmd_type_name(w->type),
			    w->state ? fbx_dstate_name(w->state) : "-",
			    w->action < FBX_RB_COUNT
			        ? rb_action_short[w->action]
			        : "?");
		}
		ctl_table_print(&r);
		ctl_table_free(&r);
		/* a row per delivery, and one per command never expanded
		 * (held or settling, no delivery). A list cut at --rows may
		 * hide an operator's command among the storm's: say so. An
		 * engine that does not count them (0) leaves the deliveries
		 * as the floor, and the --rows limit as a maybe */
		if (shown < p->bo_rows_total)
			printf("(%zu of %" PRIu32 " before-onset rows; --rows "
			       "N lists more: read them all before "
			       "--include-before-onset)\n",
			    shown, p->bo_rows_total);
		else if (p->bo_rows_total == 0 &&
		    (shown < p->before_onset_deliveries ||
		        shown == (size_t)a->rows))
			printf("(%zu before-onset rows listed: there may be "
			       "more; --rows N lists more)\n",
			    shown);
	}
}

static uint32_t
rb_total(const struct fbx_rb_plan *p)
{
	uint32_t n = 0;

	for (int k = 1; k < FBX_RB_COUNT; k++)
		n += p->per_action[k];
	return n;
}

/* rb_print_one - the plan (or what was done) in one organisation. */
/* ctl_who - who acts: the -a name if given (the engine checks it), else
 * the principal of the key in use */
static const char *
ctl_who(const struct ctl *ctl)
{
	if (ctl->actor[0] != '\0' || ctl->cli == NULL)
		return ctl->actor;
	return fbx_client_principal(ctl->cli);
}

static void
rb_print_one(const struct ctl *ctl, const struct ops_args *a,
    const struct fbx_rb_plan *p)
{
	struct table t = { .ncol = 2 };
	char sel[512], b[24];
	uint32_t total = rb_total(p);

	ctl_sel_str(a, p->breaker, sel, sizeof(sel));
	/* a continued run that was finished: the engine answers with no
	 * slice at all (no window, nothing looked at) */
	if (p->executed && a->continue_rbid != 0 && p->commands == 0 &&
	    total == 0 && p->since_ms == 0 && p->until_ms == 0 &&
	    p->onset_ms == 0 && p->later_commands == 0 &&
	    p->before_onset == 0) {
		printf("rollback %" PRIu64 ": the run is finished; nothing "
		       "left to do\n",
		    p->rollback_id);
		return;
	}
	if (p->executed)
		printf("rollback %" PRIu64 " executed in %s by %s\n",
		    p->rollback_id, ctl->org, ctl_who(ctl));
	else
		printf("rollback plan for %s (dry run, nothing changed; "
		       "--execute carries it out)\n",
		    ctl->org);
	printf("selected: %" PRIu32 " command%s (%s)\n\n", p->commands,
	    p->commands == 1 ? "" : "s", sel);
	ctl_table_row(&t, "ACTION", "COUNT");
	for (int k = 1; k < FBX_RB_COUNT; k++) {
		snprintf(b, sizeof(b), "%" PRIu32, p->per_action[k]);
		ctl_table_row(&t, rb_action_label[k], b);
	}
	snprintf(b, sizeof(b), "%" PRIu32, total);
	ctl_table_row(&t, "TOTAL", b);
	ctl_table_print(&t);
	ctl_table_free(&t);
	if (a->rows > 0 && p->nrows > 0) {
		struct table r = { .ncol = 8 };
		size_t shown = p->nrows < a->rows ? p->nrows : (size_t)a->rows;
		putchar('\n');
		ctl_table_row(&r, "COMMAND", "DELIVERY", "DEVICE", "TYPE", "STATE",
		    "ACTION", "COMPENSATION", "DETAIL");
		for (size_t i = 0; i < shown; i++) {
			const struct fbx_rb_row *w = &p->rows[i];
			char cid[24], did[24];
			snprintf(cid, sizeof(cid), "%" PRIu64, w->command_id);
			snprintf(did, sizeof(did), "%" PRIu64, w->delivery_id);
			ctl_table_row(&r, cid, w->delivery_id ? did : "-",
			    w->device[0] ? w->device : "-",
			    fbx_cmd_type_name(w->type),
			    w->state ? fbx_dstate_name(w->state) : "-",
			    w->action < FBX_RB_COUNT
			        ? rb_action_short[w->action]
			        : "?",
			    w->comp_type ? fbx_cmd_type_name(w->comp_type)
			                 : "-",
			    w->detail[0] ? w->detail : "-");
		}
		ctl_table_print(&r);
		ctl_table_free(&r);
		if (shown < total)
			printf("(%zu of %" PRIu32 " rows; --rows N for more)\n",
			    shown, total);
	}
	if (a->incident[0] != '\0') {
		putchar('\n');
		rb_print_onset(a, p);
	}
	if (p->executed) {
		printf("\ncompensating commands: %zu", p->ncomp);
		for (size_t i = 0; i < p->ncomp && i < 20; i++)
			printf("%s%" PRIu64, i ? ", " : " (", p->comp_ids[i]);
		printf("%s\n", p->ncomp > 20 ? ", ...)" : p->ncomp ? ")" : "");
		for (size_t i = 0; i < p->ncomp && i < 5; i++)
			printf("follow: fuseboxctl -o %s show %" PRIu64 "\n",
			    ctl->org, p->comp_ids[i]);
	}
}

/* rb_print_global - a global incident's run over every organisation:
 * one row per organisation it concerned and a TOTAL. */
static void
rb_print_global(const struct ctl *ctl, const struct ops_args *a,
    const struct fbx_rb_plan *p)
{
	struct table t = { .ncol = 11 };
	char sel[512], v[11][24];
	uint64_t tot[FBX_RB_COUNT] = { 0 }, tbo = 0, tcomp = 0, tcmd = 0;
	size_t changed = 0;

	ctl_sel_str(a, p->breaker, sel, sizeof(sel));
	if (p->executed && p->commands == 0 && p->norgs == 0 &&
	    a->continue_rbid != 0) {
		printf("rollback %" PRIu64 ": the run is finished; nothing "
		       "left to do\n",
		    p->rollback_id);
		return;
	}
	if (p->executed)
		printf("rollback %" PRIu64 " executed in every organisation "
		       "by %s (one run, one rollback id)\n",
		    p->rollback_id, ctl_who(ctl));
	else
		printf("rollback plan for every organisation (dry run, "
		       "nothing changed; --execute carries it out)\n");
	printf("selected: %" PRIu32 " command%s (%s)\n\n", p->commands,
	    p->commands == 1 ? "" : "s", sel);
	ctl_table_row(&t, "ORG", "COMMANDS", "CANCEL", "COMPENSATE",
	    "IRREVERSIBLE", "CHANGED", "NOTHING", "COMP_BEFORE", "IN_FLIGHT",
	    "BEFORE_ONSET", "COMPENSATING");
	for (size_t i = 0; i <= p->norgs; i++) {
		const struct fbx_rb_org *x = i < p->norgs ? &p->orgs[i] : NULL;
		const uint64_t c = x ? x->commands : tcmd;
		const int ks[7] = { FBX_RB_CANCEL, FBX_RB_COMPENSATE,
			FBX_RB_IRREVERSIBLE, FBX_RB_CHANGED, FBX_RB_NOTHING,
			FBX_RB_DONE_BEFORE, FBX_RB_IN_FLIGHT };
		snprintf(v[0], sizeof(v[0]), "%" PRIu64, c);
		for (int k = 0; k < 7; k++)
			snprintf(v[1 + k], sizeof(v[1 + k]), "%" PRIu64,
			    x ? (uint64_t)x->per_action[ks[k]] : tot[ks[k]]);
		snprintf(v[8], sizeof(v[8]), "%" PRIu64,
		    x ? (uint64_t)x->before_onset : tbo);
		snprintf(v[9], sizeof(v[9]), "%" PRIu64,
		    x ? (uint64_t)x->comp_commands : tcomp);
		ctl_table_row(&t, x ? x->org : "TOTAL", v[0], v[1], v[2], v[3],
		    v[4], v[5], v[6], v[7], v[8], v[9]);
		if (x == NULL)
			break;
		tcmd += x->commands;
		for (int k = 0; k < FBX_RB_COUNT; k++)
			tot[k] += x->per_action[k];
		tbo += x->before_onset;
		tcomp += x->comp_commands;
		changed += x->commands > 0;
	}
	ctl_table_print(&t);
	ctl_table_free(&t);
	printf("\n%zu organisation%s with commands of the incident\n",
	    changed, changed == 1 ? "" : "s");
	putchar('\n');
	rb_print_onset(a, p);
	if (p->executed)
		printf("\ncompensating commands: %zu; audit: one \"rollback\" "
		       "record (org *) naming the organisations, "
		       "\"rollback.slice\" records per slice\n",
		    p->ncomp);
}

/* rb_wait - poll every compensating command until all are settled
 * (terminal or waiting for an offline device) or the deadline. */
static int
rb_wait(struct ctl *ctl, struct rb_tracks *t, uint64_t wait_s)
{
	int64_t deadline = ctl_mono_ms() + (int64_t)wait_s * 1000;
	char saved[FBX_ID_MAX + 1];
	int st = EX_OK;

	strcpy(saved, ctl->org);
	for (;;) {
		size_t open = 0;
		for (size_t i = 0; i < t->n; i++) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			struct rb_track *k = &t->v[i];
			if (k->settled)
				continue;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_GET_COMMAND;
			req.u.get.command_id = k->id;
			strcpy(ctl->org, k->org);
			st = ctl_call(ctl, &req, &rep);
			if (st != EX_OK)
				goto out;
			k->deliveries = rep.u.command.info.ndeliveries;
			memcpy(k->counts, rep.u.command.info.counts,
			    sizeof(k->counts));
			k->settled = ctl_settled(&rep.u.command.info);
			fbx_console_rep_free(&rep);
			open += !k->settled;
		}
		if (open == 0)
			break;
		if (ctl_mono_ms() >= deadline) {
			st = ctl_fail(FBX_ETIMEOUT,
			    "wait expired after %" PRIu64
			    " s: %zu compensating commands not settled",
			    wait_s, open);
			goto out;
		}
		usleep(50 * 1000);
	}
out:
	strcpy(ctl->org, saved);
	return st;
}

/* rb_print_wait - the outcome of the compensating commands. */
static void
rb_print_wait(const struct ctl *ctl, const struct rb_tracks *t,
    int64_t journaled_ms, int64_t settled_ms)
{
	uint64_t n[FBX_D_COUNT] = { 0 }, dl = 0, nfail = 0;

	for (size_t i = 0; i < t->n; i++) {
		dl += t->v[i].deliveries;
		for (int s = 1; s < FBX_D_COUNT; s++)
			n[s] += t->v[i].counts[s];
		nfail += t->v[i].counts[FBX_D_FAILED] > 0;
	}
	if (ctl->json) {
		json_t *w = json_object(), *c = json_object(), *f = json_array();
		for (int s = 1; c != NULL && s < FBX_D_COUNT; s++)
			CJ_INT(c, fbx_dstate_name(s), n[s]);
		for (size_t i = 0; f != NULL && i < t->n; i++) {
			if (t->v[i].counts[FBX_D_FAILED] == 0)
				continue;
			json_array_append_new(f,
			    json_pack("{s:o*,s:I,s:I}", "org",
				fbx_json_str(t->v[i].org), "command",
				(json_int_t)t->v[i].id, "failed",
				(json_int_t)t->v[i].counts[FBX_D_FAILED]));
		}
		if (w != NULL) {
			CJ_INT(w, "compensating_commands", t->n);
			CJ_INT(w, "deliveries", dl);
			CJ_INT(w, "journaled_ms", journaled_ms);
			CJ_INT(w, "settled_ms", settled_ms);
			CJ_SET(w, "counts", c);
			CJ_SET(w, "failed_in", f);
			c = f = NULL;
		}
		json_decref(c);
		json_decref(f);
		ctl_json_print(json_pack("{s:o*}", "wait", w));
		return;
	}
	printf("done: all %zu compensating commands (%" PRIu64
	       " deliveries) settled %" PRId64
	       " ms after the rollback was issued (%" PRId64
	       " ms after they were journaled)\n",
	    t->n, dl, settled_ms, settled_ms - journaled_ms);
	printf("      %" PRIu64 " succeeded, %" PRIu64 " failed, %" PRIu64
	       " pending (device offline: sent at its check-in), %" PRIu64
	       " expired, %" PRIu64 " cancelled\n",
	    n[FBX_D_SUCCEEDED], n[FBX_D_FAILED], n[FBX_D_PENDING],
	    n[FBX_D_EXPIRED], n[FBX_D_CANCELLED]);
	if (nfail > 0) {
		printf("%" PRIu64 " compensations failed on the device; the "
		       "devices are listed by:\n",
		    n[FBX_D_FAILED]);
		for (size_t i = 0; i < t->n; i++)
			if (t->v[i].counts[FBX_D_FAILED] > 0)
				printf("  fuseboxctl -o %s show %" PRIu64
				       " --state failed\n",
				    t->v[i].org, t->v[i].id);
	}
}

/* rb_merge - add one slice's plan to the run's: counts summed, rows
 * kept up to want, compensating commands appended, the first rollback
 * id kept. */
static int
rb_merge(struct fbx_rb_plan *tot, const struct fbx_rb_plan *p, size_t want)
{
	tot->commands += p->commands;
	for (int k = 0; k < FBX_RB_COUNT; k++)
		tot->per_action[k] += p->per_action[k];
	if (tot->nrows < want && p->nrows > 0) {
		size_t n = p->nrows < want - tot->nrows ? p->nrows
		                                        : want - tot->nrows;
		struct fbx_rb_row *nr = realloc(tot->rows,
		    (tot->nrows + n) * sizeof(*nr));
		if (nr == NULL)
			return FBX_ENOMEM;
		memcpy(nr + tot->nrows, p->rows, n * sizeof(*nr));
		tot->rows = nr;
		tot->nrows += n;
	}
	if (p->ncomp > 0) {
		uint64_t *nc = realloc(tot->comp_ids,
		    (tot->ncomp + p->ncomp) * sizeof(*nc));
		if (nc == NULL)
			return FBX_ENOMEM;
		memcpy(nc + tot->ncomp, p->comp_ids, p->ncomp * sizeof(*nc));
		tot->comp_ids = nc;
		tot->ncomp += p->ncomp;
	}
	if (tot->rollback_id == 0)
		tot->rollback_id = p->rollback_id;
	tot->executed = p->executed;
	tot->looked_at += p->looked_at;
	tot->later_commands += p->later_commands;
	tot->last_command_id = p->last_command_id;
	tot->before_onset += p->before_onset;
	tot->before_onset_deliveries += p->before_onset_deliveries;
	tot->bo_rows_total += p->bo_rows_total;
	if (tot->nbo_rows < want && p->nbo_rows > 0) {
		size_t n = p->nbo_rows < want - tot->nbo_rows
		    ? p->nbo_rows
		    : want - tot->nbo_rows;
		struct fbx_rb_row *nr = realloc(tot->bo_rows,
		    (tot->nbo_rows + n) * sizeof(*nr));
		if (nr == NULL)
			return FBX_ENOMEM;
		memcpy(nr + tot->nbo_rows, p->bo_rows, n * sizeof(*nr));
		tot->bo_rows = nr;
		tot->nbo_rows += n;
	}
	if (p->breaker[0] != '\0')
		memcpy(tot->breaker, p->breaker, sizeof(tot->breaker));
	if (p->onset_ms || p->since_ms || p->until_ms) {
		tot->onset_ms = p->onset_ms;
		tot->since_ms = p->since_ms;
		tot->until_ms = p->until_ms;
	}
	tot->global |= p->global;
	/* the parts of a global run, one entry per organisation */
	for (size_t i = 0; i < p->norgs; i++) {
		const struct fbx_rb_org *x = &p->orgs[i];
		struct fbx_rb_org *y = NULL;
		for (size_t j = 0; j < tot->norgs; j++)
			if (strcmp(tot->orgs[j].org, x->org) == 0)
				y = &tot->orgs[j];
		if (y == NULL) {
			struct fbx_rb_org *no = realloc(tot->orgs,
			    (tot->norgs + 1) * sizeof(*no));
			if (no == NULL)
				return FBX_ENOMEM;
			tot->orgs = no;
			y = &tot->orgs[tot->norgs++];
			memset(y, 0, sizeof(*y));
			strcpy(y->org, x->org);
		}
		y->commands += x->commands;
		for (int k = 0; k < FBX_RB_COUNT; k++)
			y->per_action[k] += x->per_action[k];
		y->before_onset += x->before_onset;
		y->before_onset_deliveries += x->before_onset_deliveries;
		y->comp_commands += x->comp_commands;
	}
	return FBX_OK;
}

/* rb_comp_org - the organisation of the k-th compensating command of a
 * global run: the parts list them in the same order. */
static const char *
rb_comp_org(const struct fbx_rb_plan *p, size_t k, const char *dflt)
{
	for (size_t i = 0; i < p->norgs; i++) {
		if (k < p->orgs[i].comp_commands)
			return p->orgs[i].org;
		k -= p->orgs[i].comp_commands;
	}
	return dflt;
}

/* rb_run - a rollback in ctl->org, slice after slice until the engine's
 * cursor is 0; rep gets the whole run's plan. A progress line per slice
 * goes to stderr, and on a failure after the first slice the line to
 * resume from. eng_err gets the engine's refusal when quiet. */
static int
rb_run(struct ctl *ctl, const struct ops_args *a, int quiet,
    struct fbx_console_rep *rep, int *eng_err)
{
	struct fbx_console_req req;
	struct fbx_console_rep one;
	struct fbx_rb_plan tot;
	size_t want = a->rows;
	unsigned slice = 0;
	int st, every;

	memset(&tot, 0, sizeof(tot));
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	ctl_sel_build(a, &req.u.rollback.sel);
	req.u.rollback.execute = a->execute;
	req.u.rollback.include_changed = a->include_changed;
	/* 0 would mean the engine's default of 100 */
	req.u.rollback.limit = quiet || a->rows == 0 ? 1 : (uint32_t)a->rows;
	strcpy(req.u.rollback.note, a->note);
	req.u.rollback.sliced = 1;
	req.u.rollback.cursor = a->resume_cursor;
	req.u.rollback.last_command_id = a->resume_last;
	req.u.rollback.rollback_id = a->execute ? a->resume_rbid : 0;
	strcpy(req.u.rollback.org_cursor, a->resume_org);
	if (a->continue_rbid != 0)
		req.u.rollback.rollback_id = a->continue_rbid;
	tot.rollback_id = req.u.rollback.rollback_id;
	every = req.u.rollback.sel.every_org;
	if (quiet)
		want = 0;
	for (;;) {
		const struct fbx_rb_plan *p = &one.u.rollback;
		int ee = FBX_OK, nf;
		/* a run over every organisation (the engine says so in
		 * the plan; it narrows one for a principal of fewer) goes
		 * through them slice by slice, from org_cursor: its lines
		 * name the run, not ctl->org */
		char from[FBX_ID_MAX + 16] = "";
		const char *scope = every ? "every organisation" : ctl->org;
		snprintf(from, sizeof(from), " (from %s)",
		    req.u.rollback.org_cursor[0] ? req.u.rollback.org_cursor
		                                 : "the first organisation");
		st = ctl_call_ex(ctl, &req, &one, &ee);
		if (st != EX_OK) {
			/* NOT_FOUND ends a run that selected nothing: there is
			 * nothing to resume */
			nf = ee == FBX_ENOT_FOUND;
			if (quiet && eng_err != NULL)
				*eng_err = ee;
			else if (ee != FBX_OK)
				st = ctl_fail(ee, "%s", ctl->errmsg);
			fbx_console_rep_free(&one);
			if (req.u.rollback.cursor != 0 && !nf) {
				char cont[48] = "";
				if (tot.rollback_id && a->execute)
					snprintf(cont, sizeof(cont),
					    " or --continue %" PRIu64,
					    tot.rollback_id);
				if (a->all_orgs)
					/* one organisation's run of
					 * --all-orgs: --resume goes with
					 * -o ORG, not --all-orgs */
					fprintf(stderr,
					    "fuseboxctl: %s: rollback stopped "
					    "after %u slices; what they did "
					    "stays done. Run the same command "
					    "again (nothing is done twice), "
					    "or resume this organisation's run "
					    "with -o %s in place of --all-orgs "
					    "and --resume %" PRIu64 ":%" PRIu64
					    ":%" PRIu64 "%s\n",
					    scope, slice, ctl->org,
					    req.u.rollback.cursor,
					    req.u.rollback.last_command_id,
					    tot.rollback_id, cont);
				else
					fprintf(stderr,
					    "fuseboxctl: %s: rollback stopped "
					    "after %u slices; what they did "
					    "stays done. Resume: --resume %" PRIu64
					    ":%" PRIu64 ":%" PRIu64 "%s%s%s (or "
					    "run it again from the start: "
					    "nothing is done twice)\n",
					    scope, slice, req.u.rollback.cursor,
					    req.u.rollback.last_command_id,
					    tot.rollback_id,
					    req.u.rollback.org_cursor[0] ? ":"
					                                 : "",
					    req.u.rollback.org_cursor, cont);
			}
			break;
		}
		slice++;
		every = p->global != 0;
		scope = every ? "every organisation" : ctl->org;
		if (!every)
			from[0] = '\0';
		if (rb_merge(&tot, p, want) != FBX_OK) {
			fbx_console_rep_free(&one);
			st = ctl_fail(FBX_ENOMEM, NULL);
			break;
		}
		if (p->next_cursor != 0 || slice > 1)
			fprintf(stderr,
			    "fuseboxctl: %s: rollback slice %u%s: %" PRIu32
			    " commands (%" PRIu32 " so far), %" PRIu32
			    " looked at, %" PRIu32 " later commands surveyed, "
			    "%zu compensating; %s %" PRIu64 ":%" PRIu64
			    ":%" PRIu64 "%s%s\n",
			    scope, slice, from, p->commands, tot.commands,
			    p->looked_at, p->later_commands, p->ncomp,
			    p->next_cursor ? "next" : "done",
			    p->next_cursor, p->last_command_id,
			    tot.rollback_id, p->next_org[0] ? ":" : "",
			    p->next_org);
		strcpy(req.u.rollback.org_cursor,
		    p->next_cursor ? p->next_org : "");
		req.u.rollback.cursor = p->next_cursor;
		req.u.rollback.last_command_id =
		    p->next_cursor ? p->last_command_id : 0;
		if (a->execute && p->next_cursor)
			req.u.rollback.rollback_id = tot.rollback_id;
		fbx_console_rep_free(&one);
		if (req.u.rollback.cursor == 0)
			break;
	}
	if (st != EX_OK) {
		free(tot.rows);
		free(tot.comp_ids);
		free(tot.bo_rows);
		free(tot.orgs);
		return st;
	}
	tot.executed = a->execute;
	if (tot.commands == 0 && tot.before_onset == 0 &&
	    a->resume_cursor == 0 && a->continue_rbid == 0 && slice > 1) {
		/* a filter that selected nothing over several slices */
		free(tot.rows);
		free(tot.comp_ids);
		free(tot.bo_rows);
		free(tot.orgs);
		if (quiet && eng_err != NULL) {
			*eng_err = FBX_ENOT_FOUND;
			return ctl_exit_status(FBX_ENOT_FOUND);
		}
		if (tot.breaker[0] != '\0' &&
		    (tot.onset_ms > 0 || tot.since_ms > 0)) {
			/* an incident: which trip (a later trip of the
			 * reason moves --incident to it), as the engine
			 * says it for one slice */
			char msg[512];
			fbx_rb_empty_incident(msg, sizeof(msg), tot.breaker,
			    tot.onset_ms, tot.since_ms,
			    a->since != 0 || a->until != 0,
			    a->execute && !a->include_before_onset);
			return ctl_fail(FBX_ENOT_FOUND, "%s", msg);
		}
		return ctl_fail(FBX_ENOT_FOUND, "nothing to roll back: the "
					    "selection matches no command in "
					    "organisation '%s'",
		    ctl->org);
	}
	memset(rep, 0, sizeof(*rep));
	rep->kind = FBX_CREQ_ROLLBACK;
	rep->u.rollback = tot;
	return EX_OK;
}

static void
rb_sum_row(struct table *t, const char *org, const uint64_t *v, int exec,
    const char *rbid, const char *comp)
{
	char s[FBX_RB_COUNT + 1][24];

	for (int k = 0; k <= FBX_RB_COUNT; k++)
		snprintf(s[k], sizeof(s[k]), "%" PRIu64, v[k]);
	/* v[0] holds the command count */
	if (exec)
		ctl_table_row(t, org, s[0], s[FBX_RB_CANCEL], s[FBX_RB_COMPENSATE],
		    s[FBX_RB_IRREVERSIBLE], s[FBX_RB_CHANGED],
		    s[FBX_RB_NOTHING], s[FBX_RB_DONE_BEFORE], rbid, comp);
	else
		ctl_table_row(t, org, s[0], s[FBX_RB_CANCEL], s[FBX_RB_COMPENSATE],
		    s[FBX_RB_IRREVERSIBLE], s[FBX_RB_CHANGED],
		    s[FBX_RB_NOTHING], s[FBX_RB_DONE_BEFORE]);
}

int
cmd_rollback(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "command", required_argument, NULL, OPT_COMMAND },
		{ "incident", required_argument, NULL, OPT_INCIDENT },
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "execute", no_argument, NULL, OPT_EXECUTE },
		{ "include-changed", no_argument, NULL, OPT_INCLUDE_CHANGED },
		{ "rows", required_argument, NULL, OPT_ROWS },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "wait", optional_argument, NULL, OPT_WAIT },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ "resume", required_argument, NULL, OPT_RESUME },
		{ "include-before-onset", no_argument, NULL,
		    OPT_INCLUDE_BEFORE_ONSET },
		{ "continue", required_argument, NULL, OPT_CONTINUE },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	struct orglist ol;
	struct rb_tracks tr;
	struct table t;
	char saved[FBX_ID_MAX + 1];
	uint64_t tot[FBX_RB_COUNT + 1];
	int64_t t0 = ctl_mono_ms(), t_journaled = 0;
	size_t found = 0, failed = 0;
	int st, worst = EX_OK;

	memset(&a, 0, sizeof(a));
	memset(&ol, 0, sizeof(ol));
	memset(&tr, 0, sizeof(tr));
	memset(&t, 0, sizeof(t));
	memset(tot, 0, sizeof(tot));
	a.rows = 20;
	a.wait_s = CTL_DEFAULT_WAIT_S;
	strcpy(saved, ctl->org);
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, rollback_usage, ctl_ops_opt, &a);
	if (st < 0) {
		st = -st - 1;
		goto out;
	}
	if (st < argc) {
		st = ctl_usage_err("unexpected argument '%s'", argv[st]);
		goto out;
	}
	if ((st = ctl_sel_check("rollback", &a)) != EX_OK)
		goto out;
	if (a.wait && !a.execute) {
		st = ctl_usage_err("--wait goes with --execute");
		goto out;
	}
	/* the global incident is one run in the engine: --all-orgs with it
	 * says the same thing */
	if (a.global && a.incident[0] != '\0')
		a.all_orgs = 0;
	if (a.all_orgs && (a.resume_cursor != 0 || a.continue_rbid != 0)) {
		st = ctl_usage_err("--resume and --continue go on with one run; "
			       "not with --all-orgs (a global incident is one "
			       "run: --incident R --global)");
		goto out;
	}
	if (a.continue_rbid != 0 && (!a.execute || a.resume_cursor != 0)) {
		st = ctl_usage_err("--continue goes with --execute, not with "
			       "--resume");
		goto out;
	}
	if (a.all_orgs && a.have_rows && a.rows > 0) {
		st = ctl_usage_err("--rows prints one organisation's plan; not with "
			       "--all-orgs");
		goto out;
	}

	if (!a.all_orgs) {
		struct fbx_console_rep rep;
		if ((st = ctl_need_org(ctl)) != EX_OK)
			goto out;
		st = rb_run(ctl, &a, 0, &rep, NULL);
		if (st != EX_OK)
			goto out;
		t_journaled = ctl_mono_ms() - t0;
		if (ctl->json)
			ctl_json_print(
			    ctl_json_rb_plan(ctl->org, &rep.u.rollback, 1));
		else if (rep.u.rollback.global)
			rb_print_global(ctl, &a, &rep.u.rollback);
		else
			rb_print_one(ctl, &a, &rep.u.rollback);
		for (size_t i = 0; i < rep.u.rollback.ncomp && st == EX_OK;
		    i++)
			if (rb_track_add(&tr,
			        rb_comp_org(&rep.u.rollback, i, ctl->org),
			        rep.u.rollback.comp_ids[i]) != FBX_OK)
				st = ctl_fail(FBX_ENOMEM, NULL);
		fbx_console_rep_free(&rep);
		if (st != EX_OK)
			goto out;
		found = 1;
	} else {
		st = ctl_list_orgs(ctl, &ol);
		if (st != EX_OK)
			goto out;
		t.ncol = a.execute ? 10 : 8;
		if (a.execute)
			ctl_table_row(&t, "ORG", "COMMANDS", "CANCEL", "COMPENSATE",
			    "IRREVERSIBLE", "CHANGED", "NOTHING", "COMP_BEFORE",
			    "ROLLBACK", "COMPENSATING");
		else
			ctl_table_row(&t, "ORG", "COMMANDS", "CANCEL", "COMPENSATE",
			    "IRREVERSIBLE", "CHANGED", "NOTHING",
			    "COMP_BEFORE");
		for (size_t i = 0; i < ol.n; i++) {
			struct fbx_console_rep rep;
			const struct fbx_rb_plan *p = &rep.u.rollback;
			uint64_t v[FBX_RB_COUNT + 1];
			char rbid[24], comp[64];
			int eerr = FBX_OK;

			strcpy(ctl->org, ol.orgs[i]);
			st = rb_run(ctl, &a, 1, &rep, &eerr);
			if (st != EX_OK && eerr == FBX_OK)
				goto out; /* the engine is gone: stop */
			memset(v, 0, sizeof(v));
			if (eerr == FBX_ENOT_FOUND) {
				/* nothing of the selection here */
				if (ctl->json) {
					ctl_json_print(json_pack("{s:o*,s:b}",
					    "org", fbx_json_str(ol.orgs[i]),
					    "nothing", 1));
				} else {
					rb_sum_row(&t, ol.orgs[i], v,
					    a.execute, "-", "-");
				}
				continue;
			}
			if (eerr != FBX_OK) {
				char e[80];
				failed++;
				if (worst == EX_OK)
					worst = st;
				fprintf(stderr, "fuseboxctl: %s: %s (%d): %s\n",
				    ol.orgs[i], fbx_errname(eerr), eerr,
				    ctl->errmsg);
				if (ctl->json) {
					ctl_json_print(json_pack(
					    "{s:o*,s:o*,s:o*}", "org",
					    fbx_json_str(ol.orgs[i]), "error",
					    fbx_json_str(fbx_errname(eerr)),
					    "message",
					    fbx_json_str(ctl->errmsg)));
				} else {
					snprintf(e, sizeof(e), "ERROR %s",
					    fbx_errname(eerr));
					ctl_table_row(&t, ol.orgs[i], e, "", "", "",
					    "", "", "", "", "");
				}
				continue;
			}
			found++;
			v[0] = p->commands;
			for (int k = 1; k < FBX_RB_COUNT; k++)
				v[k] = p->per_action[k];
			for (int k = 0; k < FBX_RB_COUNT; k++)
				tot[k] += v[k];
			tot[FBX_RB_COUNT] += p->ncomp;
			snprintf(rbid, sizeof(rbid), "%" PRIu64,
			    p->rollback_id);
			comp[0] = '\0';
			for (size_t k = 0, n = 0; k < p->ncomp; k++) {
				int w;
				if (n + 24 >= sizeof(comp)) {
					snprintf(comp + n, sizeof(comp) - n,
					    ",...");
					break;
				}
				w = snprintf(comp + n, sizeof(comp) - n,
				    "%s%" PRIu64, k ? "," : "", p->comp_ids[k]);
				if (w > 0)
					n += (size_t)w;
			}
			for (size_t k = 0; k < p->ncomp && st == EX_OK; k++)
				if (rb_track_add(&tr, ol.orgs[i],
				        p->comp_ids[k]) != FBX_OK)
					st = ctl_fail(FBX_ENOMEM, NULL);
			if (ctl->json)
				ctl_json_print(
				    ctl_json_rb_plan(ol.orgs[i], p, 0));
			else
				rb_sum_row(&t, ol.orgs[i], v, a.execute,
				    p->executed ? rbid : "-",
				    p->ncomp ? comp : "-");
			fbx_console_rep_free(&rep);
			if (st != EX_OK)
				goto out;
		}
		st = EX_OK;
		t_journaled = ctl_mono_ms() - t0;
		if (ctl->json) {
			json_t *o = json_object(), *ac = json_object();
			for (int k = 1; ac != NULL && k < FBX_RB_COUNT; k++)
				CJ_INT(ac, ctl_rb_action_key[k], tot[k]);
			if (o != NULL) {
				CJ_STR(o, "org", "TOTAL");
				CJ_INT(o, "organisations", ol.n);
				CJ_INT(o, "with_commands", found);
				CJ_INT(o, "failed", failed);
				CJ_BOOL(o, "executed", a.execute);
				CJ_INT(o, "commands", tot[0]);
				CJ_SET(o, "actions", ac);
				ac = NULL;
				CJ_INT(o, "compensating_commands",
				    tot[FBX_RB_COUNT]);
				CJ_INT(o, "elapsed_ms", t_journaled);
			}
			json_decref(ac);
			ctl_json_print(o);
		} else {
			char sel[512], n[24];
			ctl_sel_str(&a, NULL, sel, sizeof(sel));
			if (a.execute)
				printf("rollback executed in %zu "
				       "organisations by %s\n",
				    ol.n, ctl_who(ctl));
			else
				printf("rollback plan for %zu organisations "
				       "(dry run, nothing changed; --execute "
				       "carries it out)\n",
				    ol.n);
			printf("selected: %s\n\n", sel);
			snprintf(n, sizeof(n), "%" PRIu64 " in all",
			    tot[FBX_RB_COUNT]);
			rb_sum_row(&t, "TOTAL", tot, a.execute, "", n);
			ctl_table_print(&t);
			printf("\n%zu of %zu organisations had commands to "
			       "roll back%s\n",
			    found, ol.n,
			    failed ? "; some failed (see the errors above)"
			           : "");
		}
		if (found == 0 && failed == 0) {
			st = ctl_fail(FBX_ENOT_FOUND,
			    "nothing to roll back in any of %zu organisations",
			    ol.n);
			goto out;
		}
	}
	if (a.execute && !ctl->json)
		printf("\njournaled: %zu compensating commands, %" PRId64
		       " ms after the rollback was issued\n",
		    tr.n, t_journaled);
	if (a.execute && a.wait) {
		int64_t t_settled;
		st = rb_wait(ctl, &tr, a.wait_s);
		if (st != EX_OK)
			goto out;
		t_settled = ctl_mono_ms() - t0;
		rb_print_wait(ctl, &tr, t_journaled, t_settled);
	} else if (a.execute && !ctl->json && tr.n > 0 && a.all_orgs) {
		printf("follow them: fuseboxctl -o %s show %" PRIu64
		       " (or rerun with --wait)\n",
		    tr.v[0].org, tr.v[0].id);
	}
	st = worst;
out:
	strcpy(ctl->org, saved);
	ctl_table_free(&t);
	ctl_orglist_free(&ol);
	free(tr.v);
	free(a.ids);
	return st;
}
