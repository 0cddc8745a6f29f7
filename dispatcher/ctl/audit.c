/*
 * audit.c: fuseboxctl audit list and audit verify: the hash-chained audit
 * trail.
 */
#include "ctl.h"

/* ---- audit ---- */

static const char *const audit_usage =
    "usage: fuseboxctl audit list [--actor A] [--action PREFIX]\n"
    "                             [--since TIME] [--until TIME]\n"
    "                             [--limit N] [--after SEQ]\n"
    "       fuseboxctl audit verify [--full]\n"
    "\n"
    "The audit log: every operator action (submit, approve, breaker trip\n"
    "and reset, limits, rollouts, rollback, replay) as a hash chain.\n"
    "\n"
    "  list      the organisation's records, oldest first\n"
    "    --actor A         only records of operator A (-a sets who acts)\n"
    "    --action PREFIX   only actions starting with PREFIX ('breaker'\n"
    "                      matches breaker.trip and breaker.reset)\n"
    "    --since/--until   time window (epoch ms, now, -1h, -7d)\n"
    "    --limit N         records to print (default 100)\n"
    "    --after SEQ       start after sequence SEQ\n"
    "  verify    check the chain (one chain for every organisation) in\n"
    "            slices of up to 50,000 records (fewer when a slice takes\n"
    "            its time bound), one request each, until done: what is\n"
    "            new since the last verify (the engine keeps\n"
    "            a checkpoint, moved by every verify, the web console's\n"
    "            too); prints 'intact up to record S: N records\n"
    "            checked, ...' (exit 0) or 'BROKEN at record S: why'\n"
    "            (exit 65)\n"
    "    --full            every record from the chain's start (after the\n"
    "                      records retention pruned): 'intact: N records'\n";

static int
cmd_audit_list(struct ctl *ctl, const struct ops_args *a)
{
	struct table t = { .ncol = 6 };
	uint64_t after = a->after, shown = 0, limit = a->limit ? a->limit : 100;
	json_t *recs = NULL;
	int st = EX_OK;

	if (ctl->json) {
		if ((recs = json_array()) == NULL)
			return ctl_fail(FBX_ENOMEM, NULL);
	} else {
		ctl_table_row(&t, "SEQ", "TIME (UTC)", "ACTOR", "ACTION", "NOTE",
		    "PARAMS");
	}
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		uint64_t want = limit - shown;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		strcpy(req.u.audit_list.actor, a->actor);
		strcpy(req.u.audit_list.action, a->action);
		req.u.audit_list.since_ms = a->since;
		req.u.audit_list.until_ms = a->until;
		req.u.audit_list.after = after;
		req.u.audit_list.limit = (uint32_t)(want > 1000 ? 1000 : want);
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			break;
		for (size_t i = 0; i < rep.u.audit.n; i++) {
			const struct fbx_audit_rec *r = &rep.u.audit.r[i];
			if (ctl->json) {
				json_t *o = json_object();
				if (o != NULL) {
					CJ_INT(o, "seq", r->seq);
					CJ_INT(o, "at_ms", r->at_ms);
					CJ_STR(o, "org", r->org);
					CJ_STR(o, "actor", r->actor);
					CJ_STR(o, "action", r->action);
					CJ_STR(o, "note", r->note);
					/* the engine's JSON text, as a value
					 * (a string if it does not parse) */
					CJ_SET(o, "params",
					    fbx_json_params(r->params));
					CJ_STR(o, "hash", r->hash);
					CJ_STR(o, "prev", r->prev);
				}
				json_array_append_new(recs, o);
			} else {
				char seq[24], at[40];
				snprintf(seq, sizeof(seq), "%" PRIu64, r->seq);
				ctl_fmt_time(r->at_ms, at, sizeof(at));
				ctl_table_row(&t, seq, at, r->actor, r->action,
				    r->note[0] ? r->note : "-",
				    r->params[0] ? r->params : "-");
			}
			shown++;
			after = r->seq;
		}
		after = rep.u.audit.next_after ? rep.u.audit.next_after : 0;
		fbx_console_rep_free(&rep);
		if (after == 0 || shown >= limit)
			break;
	}
	if (st == EX_OK) {
		if (ctl->json) {
			ctl_json_print(json_pack("{s:o,s:I,s:I}", "records",
			    recs, "shown", (json_int_t)shown, "next_after",
			    (json_int_t)after));
			recs = NULL;
		} else {
			if (shown > 0)
				ctl_table_print(&t);
			printf("%s%" PRIu64 " record%s of %s%s\n",
			    shown ? "\n" : "", shown, shown == 1 ? "" : "s",
			    ctl->org, shown == 0 ? " (none matched)" : "");
			if (after != 0)
				ctl_more_u64(ctl, "", after);
		}
	}
	/* on an error the error line says it: no partial object */
	json_decref(recs);
	ctl_table_free(&t);
	return st;
}

/* cmd_audit_verify - one request per slice until the engine says the
 * check is complete; progress on stderr between slices. */
static int
cmd_audit_verify(struct ctl *ctl, int full)
{
	uint64_t total = 0, slices = 0, after = 0;
	char after_hash[65] = "";
	struct fbx_console_rep last;
	int st = EX_OK, have = 0;

	memset(&last, 0, sizeof(last));
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_VERIFY;
		req.u.audit_verify.incremental = !full;
		if (full && after != 0) {
			req.u.audit_verify.after_seq = after;
			snprintf(req.u.audit_verify.after_hash,
			    sizeof(req.u.audit_verify.after_hash), "%s",
			    after_hash);
		}
		st = ctl_call(ctl, &req, &rep);
		if (st != EX_OK)
			break;
		slices++;
		total += rep.u.verify.records;
		last.u.verify = rep.u.verify;
		have = 1;
		fbx_console_rep_free(&rep);
		if (last.u.verify.complete)
			break;
		if (last.u.verify.verified_seq <= after && slices > 1) {
			fprintf(stderr, "audit verify: no progress at record "
			                "%" PRIu64 "\n",
			    after);
			st = EX_SOFTWARE;
			break;
		}
		after = last.u.verify.verified_seq;
		snprintf(after_hash, sizeof(after_hash), "%s",
		    last.u.verify.verified_hash);
		if (!ctl->json)
			fprintf(stderr, "verified up to %" PRIu64 " of %" PRIu64
			                " (%" PRIu64 " records checked)\n",
			    last.u.verify.verified_seq, last.u.verify.head_seq,
			    total);
	}
	if (st != EX_OK || !have)
		return st;
	if (ctl->json) {
		json_t *o = json_object();
		if (o != NULL) {
			CJ_BOOL(o, "intact", last.u.verify.broken_at == 0);
			CJ_STR(o, "mode", full ? "full" : "incremental");
			CJ_INT(o, "records", total);
			CJ_INT(o, "slices", slices);
			CJ_INT(o, "verified_seq", last.u.verify.verified_seq);
			CJ_INT(o, "head_seq", last.u.verify.head_seq);
			CJ_INT(o, "anchor_seq", last.u.verify.anchor_seq);
			CJ_INT(o, "broken_at", last.u.verify.broken_at);
			CJ_STR(o, "why", last.u.verify.why);
		}
		ctl_json_print(o);
	} else if (last.u.verify.broken_at != 0) {
		printf("BROKEN at record %" PRIu64 ": %s\n",
		    last.u.verify.broken_at, last.u.verify.why);
	} else if (full) {
		printf("intact: %" PRIu64 " records", total);
		if (last.u.verify.anchor_seq != 0)
			printf(" (after %" PRIu64 ", the last pruned)",
			    last.u.verify.anchor_seq);
		printf("\n");
	} else {
		/* the checkpoint is the engine's, moved by every verify
		 * (the web console's too): say so, or a small count after
		 * thousands of records reads as records gone */
		printf("intact up to record %" PRIu64 ": %" PRIu64
		       " record%s checked, the new ones since the last "
		       "verify by anyone (--full: all)\n",
		    last.u.verify.verified_seq, total, total == 1 ? "" : "s");
	}
	return last.u.verify.broken_at ? EX_DATAERR : EX_OK;
}

int
cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	/* --actor here filters; it comes before the common --actor (the
	 * acting operator, still -a) so getopt_long matches it first. */
	static const struct option lo[] = {
		{ "actor", required_argument, NULL, OPT_ACTOR_FILTER },
		COMMON_LONGOPTS,
		{ "action", required_argument, NULL, OPT_ACTION },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "full", no_argument, NULL, OPT_FULL },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	const char *sub;
	int st;

	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, audit_usage, ctl_ops_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("audit needs list or verify (see audit "
				 "--help)");
	sub = argv[st];
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (strcmp(sub, "verify") == 0) {
		if (a.actor[0] || a.action[0] || a.since || a.until ||
		    a.limit || a.after)
			return ctl_usage_err("audit verify takes no filter: it "
					 "checks the whole chain");
		return cmd_audit_verify(ctl, a.full);
	}
	if (a.full)
		return ctl_usage_err("--full is for audit verify");
	if (strcmp(sub, "list") != 0)
		return ctl_usage_err("unknown audit operation '%s' (list, verify)",
		    sub);
	if (a.since && a.until && a.until <= a.since)
		return ctl_usage_err("--until is not after --since");
	if ((st = ctl_need_org(ctl)) != EX_OK)
		return st;
	return cmd_audit_list(ctl, &a);
}
