/*
 * replay.c: fuseboxctl replay: deliveries sent again with their ids, in
 * slices.
 */
#include "ctl.h"

/* ---- replay ---- */

static const char *const replay_usage =
    "usage: fuseboxctl replay --command ID[,ID...] [OPTIONS]\n"
    "       fuseboxctl replay (--incident REASON [--global] | [--origin O]\n"
    "                         [--reason R] [--type T] [--group G]\n"
    "                         [--since TIME] [--until TIME]) [OPTIONS]\n"
    "\n"
    "Send deliveries again with their delivery ids, for a gateway that lost\n"
    "what it received (devices answer a repeated id once). By default the\n"
    "deliveries sent or accepted without an outcome; terminal ones\n"
    "(succeeded, failed, expired, cancelled) are counted and skipped\n"
    "unless --force. Without --execute it only counts. Selection as in\n"
    "'rollback' (compensating commands are named with --command).\n"
    "\n"
    "  --state S       only deliveries in state S (sent, accepted,\n"
    "                  succeeded, failed, expired, cancelled)\n"
    "  --force         also resend terminal deliveries; their new outcome\n"
    "                  is recorded\n"
    "  --execute       resend (recovery priority)\n"
    "  --note TEXT     why (kept in the audit record)\n"
    "  --all-orgs      the same replay in every organisation\n"
    "  --resume C:L    go on from where a run stopped (the line printed\n"
    "                  on stderr; one organisation only)\n"
    "Runs in slices like rollback; counts are of the whole run.\n";

/* rp_run - a replay in ctl->org, slice after slice; rep gets the run's
 * totals. As rb_run. */
static int
rp_run(struct ctl *ctl, const struct ops_args *a, int quiet,
    struct fbx_console_rep *rep, int *eng_err)
{
	struct fbx_console_req req;
	struct fbx_console_rep one;
	struct fbx_replay_result tot;
	unsigned slice = 0;
	int st;

	memset(&tot, 0, sizeof(tot));
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_REPLAY;
	ctl_sel_build(a, &req.u.replay.sel);
	req.u.replay.state = a->state;
	req.u.replay.force = a->force;
	req.u.replay.execute = a->execute;
	strcpy(req.u.replay.note, a->note);
	req.u.replay.sliced = 1;
	req.u.replay.cursor = a->resume_cursor;
	req.u.replay.last_command_id = a->resume_last;
	for (;;) {
		const struct fbx_replay_result *p = &one.u.replay;
		st = ctl_call_ex(ctl, &req, &one, quiet ? eng_err : NULL);
		if (st != EX_OK) {
			fbx_console_rep_free(&one);
			if (req.u.replay.cursor != 0)
				fprintf(stderr,
				    "fuseboxctl: %s: replay stopped after %u "
				    "slices; what they resent stays resent. "
				    "Resume: --resume %" PRIu64 ":%" PRIu64
				    "\n",
				    ctl->org, slice, req.u.replay.cursor,
				    req.u.replay.last_command_id);
			return st;
		}
		slice++;
		tot.matched += p->matched;
		tot.resent += p->resent;
		tot.skipped_terminal += p->skipped_terminal;
		tot.commands += p->commands;
		tot.looked_at += p->looked_at;
		tot.last_command_id = p->last_command_id;
		if (p->next_cursor != 0 || slice > 1)
			fprintf(stderr,
			    "fuseboxctl: %s: replay slice %u: %" PRIu32
			    " commands, %" PRIu32 " matched, %" PRIu32
			    " resent (%" PRIu32 " so far); %s %" PRIu64
			    ":%" PRIu64 "\n",
			    ctl->org, slice, p->commands, p->matched,
			    p->resent, tot.resent,
			    p->next_cursor ? "next" : "done", p->next_cursor,
			    p->last_command_id);
		req.u.replay.cursor = p->next_cursor;
		req.u.replay.last_command_id =
		    p->next_cursor ? p->last_command_id : 0;
		fbx_console_rep_free(&one);
		if (req.u.replay.cursor == 0)
			break;
	}
	memset(rep, 0, sizeof(*rep));
	rep->kind = FBX_CREQ_REPLAY;
	rep->u.replay = tot;
	return EX_OK;
}

/* rp_would - what a dry run would resend: matched and not skipped, and
 * not queued or pending (those are on their way already). */
static uint32_t
rp_would(const struct ops_args *a, const struct fbx_replay_result *r)
{
	if (a->state == FBX_D_QUEUED || a->state == FBX_D_PENDING)
		return 0;
	return r->matched - r->skipped_terminal;
}

int
cmd_replay(struct ctl *ctl, int argc, char **argv)
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
		{ "state", required_argument, NULL, OPT_STATE },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "execute", no_argument, NULL, OPT_EXECUTE },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ "resume", required_argument, NULL, OPT_RESUME },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	struct orglist ol;
	struct table t = { .ncol = 4 };
	struct fbx_replay_result tot;
	char saved[FBX_ID_MAX + 1];
	size_t found = 0, failed = 0;
	int st, worst = EX_OK;

	memset(&a, 0, sizeof(a));
	memset(&ol, 0, sizeof(ol));
	memset(&tot, 0, sizeof(tot));
	strcpy(saved, ctl->org);
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, replay_usage, ctl_ops_opt, &a);
	if (st < 0) {
		st = -st - 1;
		goto out;
	}
	if (st < argc) {
		st = ctl_usage_err("unexpected argument '%s'", argv[st]);
		goto out;
	}
	if ((st = ctl_sel_check("replay", &a)) != EX_OK)
		goto out;
	if (a.all_orgs && a.resume_cursor != 0) {
		st = ctl_usage_err("--resume goes on in one organisation; not "
			       "with --all-orgs");
		goto out;
	}
	if (!a.all_orgs) {
		struct fbx_console_rep rep;
		const struct fbx_replay_result *r = &rep.u.replay;
		if ((st = ctl_need_org(ctl)) != EX_OK)
			goto out;
		st = rp_run(ctl, &a, 0, &rep, NULL);
		if (st != EX_OK)
			goto out;
		if (ctl->json) {
			ctl_json_print(json_pack("{s:o*,s:b,s:I,s:I,s:I,s:I}",
			    "org", fbx_json_str(ctl->org), "executed",
			    a.execute ? 1 : 0, "matched",
			    (json_int_t)r->matched, "resent",
			    (json_int_t)r->resent, "would_resend",
			    (json_int_t)(a.execute ? 0 : rp_would(&a, r)),
			    "skipped_terminal",
			    (json_int_t)r->skipped_terminal));
		} else {
			struct table k = { .ncol = 2 };
			char m[24], rs[24], sk[24];
			snprintf(m, sizeof(m), "%" PRIu32, r->matched);
			snprintf(rs, sizeof(rs), "%" PRIu32,
			    a.execute ? r->resent : rp_would(&a, r));
			snprintf(sk, sizeof(sk), "%" PRIu32,
			    r->skipped_terminal);
			if (a.execute)
				printf("replay executed in %s\n\n", ctl->org);
			else
				printf("replay plan for %s (dry run, nothing "
				       "sent; --execute resends)\n\n",
				    ctl->org);
			ctl_table_row(&k, "matched", m);
			ctl_table_row(&k, a.execute ? "resent" : "would resend", rs);
			ctl_table_row(&k, "skipped (terminal)", sk);
			ctl_table_print(&k);
			ctl_table_free(&k);
			if (r->skipped_terminal > 0 && !a.force)
				printf("\nterminal deliveries are resent only "
				       "with --force\n");
		}
		fbx_console_rep_free(&rep);
		goto out;
	}
	st = ctl_list_orgs(ctl, &ol);
	if (st != EX_OK)
		goto out;
	ctl_table_row(&t, "ORG", "MATCHED", a.execute ? "RESENT" : "WOULD_RESEND",
	    "SKIPPED_TERMINAL");
	for (size_t i = 0; i < ol.n; i++) {
		struct fbx_console_rep rep;
		const struct fbx_replay_result *r = &rep.u.replay;
		char m[24], rs[24], sk[24];
		uint32_t res;
		int eerr = FBX_OK;

		strcpy(ctl->org, ol.orgs[i]);
		st = rp_run(ctl, &a, 1, &rep, &eerr);
		if (st != EX_OK && eerr == FBX_OK)
			goto out;
		if (eerr == FBX_ENOT_FOUND) {
			ctl_table_row(&t, ol.orgs[i], "0", "0", "0");
			continue;
		}
		if (eerr != FBX_OK) {
			failed++;
			if (worst == EX_OK)
				worst = st;
			fprintf(stderr, "fuseboxctl: %s: %s (%d): %s\n",
			    ol.orgs[i], fbx_errname(eerr), eerr, ctl->errmsg);
			ctl_table_row(&t, ol.orgs[i], "ERROR", fbx_errname(eerr),
			    "");
			continue;
		}
		found++;
		res = a.execute ? r->resent : rp_would(&a, r);
		tot.matched += r->matched;
		tot.resent += res;
		tot.skipped_terminal += r->skipped_terminal;
		if (ctl->json) {
			ctl_json_print(json_pack("{s:o*,s:b,s:I,s:I,s:I}",
			    "org", fbx_json_str(ol.orgs[i]), "executed",
			    a.execute ? 1 : 0, "matched",
			    (json_int_t)r->matched,
			    a.execute ? "resent" : "would_resend",
			    (json_int_t)res, "skipped_terminal",
			    (json_int_t)r->skipped_terminal));
		} else {
			snprintf(m, sizeof(m), "%" PRIu32, r->matched);
			snprintf(rs, sizeof(rs), "%" PRIu32, res);
			snprintf(sk, sizeof(sk), "%" PRIu32,
			    r->skipped_terminal);
			ctl_table_row(&t, ol.orgs[i], m, rs, sk);
		}
		fbx_console_rep_free(&rep);
	}
	st = EX_OK;
	if (ctl->json) {
		ctl_json_print(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "org",
		    "TOTAL", "executed", a.execute ? 1 : 0, "matched",
		    (json_int_t)tot.matched,
		    a.execute ? "resent" : "would_resend",
		    (json_int_t)tot.resent, "skipped_terminal",
		    (json_int_t)tot.skipped_terminal, "failed_orgs",
		    (json_int_t)failed));
	} else {
		char m[24], rs[24], sk[24];
		snprintf(m, sizeof(m), "%" PRIu32, tot.matched);
		snprintf(rs, sizeof(rs), "%" PRIu32, tot.resent);
		snprintf(sk, sizeof(sk), "%" PRIu32, tot.skipped_terminal);
		ctl_table_row(&t, "TOTAL", m, rs, sk);
		if (a.execute)
			printf("replay executed in %zu organisations\n\n",
			    ol.n);
		else
			printf("replay plan for %zu organisations (dry run, "
			       "nothing sent; --execute resends)\n\n",
			    ol.n);
		ctl_table_print(&t);
	}
	if (found == 0 && failed == 0)
		st = ctl_fail(FBX_ENOT_FOUND, "nothing matched in any of %zu "
					  "organisations",
		    ol.n);
	else
		st = worst;
out:
	strcpy(ctl->org, saved);
	ctl_table_free(&t);
	ctl_orglist_free(&ol);
	free(a.ids);
	return st;
}
