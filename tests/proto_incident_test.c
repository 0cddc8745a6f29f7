/*
 * proto_incident_test.c: the wire codec's incident tools (rollback plans
 * and executions, replay, export, audit and its verification, the
 * organisation list), through the public header only. Round trips their
 * console requests and replies with every field set, refuses bad
 * selectors, windows, page sizes, counts, records and over-cap arrays
 * (hand-built bytes where the encoder cannot make them), and flips bytes
 * of the new messages: decoders must not crash, leak or misreport, and
 * must free what they accept. The other message kinds are in
 * proto_test.c; the shared helpers in proto_util.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_util.h"

/* ======================= rollback, replay, export, audit =============== */

/* make_selector: explicit ids plus every filter. */
static void
make_selector(struct fbx_selector *s, uint64_t *ids, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->command_ids = ids;
	s->ncommand_ids = n;
	s->origin = FBX_ORIGIN_AUTOMATIC;
	strcpy(s->reason, "jamf:rule-17");
	s->type = FBX_CMD_LOCK;
	strcpy(s->group, "sales");
	s->since_ms = 1700000000000;
	s->until_ms = 1700003600000;
}

static int
selector_eq(const struct fbx_selector *a, const struct fbx_selector *b)
{
	return a->ncommand_ids == b->ncommand_ids
	    && (a->ncommand_ids == 0
	        || !memcmp(a->command_ids, b->command_ids,
	            a->ncommand_ids * sizeof(uint64_t)))
	    && !strcmp(a->breaker, b->breaker)
	    && a->breaker_global == b->breaker_global && a->origin == b->origin
	    && !strcmp(a->reason, b->reason) && a->type == b->type
	    && !strcmp(a->group, b->group) && a->since_ms == b->since_ms
	    && a->until_ms == b->until_ms;
}

/* make_audit: record i of a chain, with every field set. */
static void
make_audit(struct fbx_audit_rec *r, size_t i)
{
	size_t k;

	memset(r, 0, sizeof(*r));
	r->seq = 100 + i;
	r->at_ms = 1700000000000 + (int64_t)i * 1000;
	strcpy(r->org, i == 1 ? "*" : "acme");
	strcpy(r->actor, i == 1 ? "engine" : "alice@acme");
	strcpy(r->action, i == 1 ? "breaker.trip" : "rollback.execute");
	strcpy(r->note, "INC-7 \xe2\x80\x94 storm of locks");
	snprintf(r->params, sizeof(r->params),
	    "{\"reason\":\"jamf:rule-17\",\"devices\":%zu}", 312 + i);
	for (k = 0; k < 64; k++) {
		r->hash[k] = "0123456789abcdef"[(k + i) % 16];
		if (i > 0)
			r->prev[k] = "0123456789abcdef"[(k + i - 1) % 16];
	}
}

static void
test_req_incident(void)
{
	struct fbx_console_req in, out;
	uint64_t ids[3] = { 7, 1ull << 40, 9 };
	char why[256];

	/* Rollback plan of three explicit commands with every filter. */
	base_req(&in, FBX_CREQ_ROLLBACK);
	make_selector(&in.u.rollback.sel, ids, 3);
	in.u.rollback.include_changed = 1;
	in.u.rollback.limit = FBX_PAGE_MAX;
	strcpy(in.u.rollback.note, "undo INC-7 (caf\xc3\xa9)");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLBACK);
	CHECK(selector_eq(&in.u.rollback.sel, &out.u.rollback.sel));
	CHECK(out.u.rollback.sel.command_ids != ids);
	CHECK(out.u.rollback.execute == 0
	    && out.u.rollback.include_changed == 1
	    && out.u.rollback.limit == FBX_PAGE_MAX);
	CHECK(!strcmp(out.u.rollback.note, in.u.rollback.note));
	fbx_console_req_free(&out);
	CHECK(out.u.rollback.sel.command_ids == NULL);

	/* Executed rollback of an incident: the global breaker's commands. */
	base_req(&in, FBX_CREQ_ROLLBACK);
	strcpy(in.u.rollback.sel.breaker, "jamf:rule-17");
	in.u.rollback.sel.breaker_global = 1;
	in.u.rollback.execute = 1;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(selector_eq(&in.u.rollback.sel, &out.u.rollback.sel));
	CHECK(out.u.rollback.execute == 1
	    && out.u.rollback.sel.command_ids == NULL);
	fbx_console_req_free(&out);

	/* Replay of failed deliveries, forced, of two commands. */
	base_req(&in, FBX_CREQ_REPLAY);
	make_selector(&in.u.replay.sel, ids, 2);
	in.u.replay.sel.origin = 0;
	in.u.replay.sel.until_ms = 0;
	in.u.replay.state = FBX_D_FAILED;
	in.u.replay.force = 1;
	in.u.replay.execute = 1;
	strcpy(in.u.replay.note, "gateway gw-3 lost its queue");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_REPLAY);
	CHECK(selector_eq(&in.u.replay.sel, &out.u.replay.sel));
	CHECK(out.u.replay.state == FBX_D_FAILED && out.u.replay.force == 1
	    && out.u.replay.execute == 1);
	CHECK(!strcmp(out.u.replay.note, in.u.replay.note));
	fbx_console_req_free(&out);
	/* Replay by incident, default state. */
	base_req(&in, FBX_CREQ_REPLAY);
	strcpy(in.u.replay.sel.breaker, "unspecified");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(selector_eq(&in.u.replay.sel, &out.u.replay.sel));
	CHECK(out.u.replay.state == FBX_D_NONE && out.u.replay.execute == 0);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_EXPORT);
	in.u.export_.since_ms = 1700000000000;
	in.u.export_.until_ms = 1700086400000;
	in.u.export_.cursor = 0x1234567890ull;
	in.u.export_.max_bytes = 8u * 1024 * 1024;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_EXPORT);
	CHECK(!memcmp(&in.u.export_, &out.u.export_, sizeof(in.u.export_)));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_AUDIT_LIST);
	strcpy(in.u.audit_list.actor, "bob@acme");
	memset(in.u.audit_list.action, 'a', 31); /* the longest name */
	in.u.audit_list.action[31] = '\0';
	in.u.audit_list.since_ms = 5;
	in.u.audit_list.until_ms = 5; /* empty window, but not reversed */
	in.u.audit_list.after = 99;
	in.u.audit_list.limit = 500;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_LIST);
	CHECK(!strcmp(out.u.audit_list.actor, "bob@acme")
	    && !strcmp(out.u.audit_list.action, in.u.audit_list.action));
	CHECK(out.u.audit_list.since_ms == 5 && out.u.audit_list.until_ms == 5
	    && out.u.audit_list.after == 99 && out.u.audit_list.limit == 500);
	fbx_console_req_free(&out);
	strcpy(in.u.audit_list.action, "breaker.trip");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(!strcmp(out.u.audit_list.action, "breaker.trip"));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_AUDIT_VERIFY);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_VERIFY && out.request_id == 4242);
	fbx_console_req_free(&out);
	base_req(&in, FBX_CREQ_LIST_ORGS);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_ORGS && !strcmp(out.org, "acme"));
	fbx_console_req_free(&out);
}

static void
test_rep_incident(void)
{
	struct fbx_console_rep in, out;
	struct fbx_rb_row rows[3];
	uint64_t comp[2] = { 501, 502 };
	struct fbx_audit_rec aud[2];
	fbx_id orgs[3];
	uint32_t devs[3] = { 15000, 0, 4000000000u };
	static const char lines[] = "{\"id\":1,\"type\":\"lock\"}\n"
	                            "{\"id\":2,\"note\":\"caf\xc3\xa9\"}\n";
	size_t i;

	/* An executed rollback: three rows, per-action counts, two
	 * compensating commands. */
	memset(&in, 0, sizeof(in));
	memset(rows, 0, sizeof(rows));
	in.request_id = 24;
	in.kind = FBX_CREQ_ROLLBACK;
	rows[0].command_id = 7;
	rows[0].delivery_id = FBX_DLV_ID(7, 0);
	strcpy(rows[0].device, "dev-0");
	rows[0].type = FBX_CMD_SET_POLICY;
	rows[0].state = FBX_D_SUCCEEDED;
	rows[0].action = FBX_RB_COMPENSATE;
	rows[0].comp_type = FBX_CMD_SET_POLICY;
	strcpy(rows[0].detail, "policy camera: restore 'on'");
	rows[1].command_id = 7;
	rows[1].delivery_id = FBX_DLV_ID(7, 1);
	strcpy(rows[1].device, "dev-1");
	rows[1].type = FBX_CMD_SET_POLICY;
	rows[1].state = FBX_D_QUEUED;
	rows[1].action = FBX_RB_CANCEL;
	rows[2].command_id = 9; /* held: no deliveries */
	rows[2].type = FBX_CMD_WIPE;
	rows[2].action = FBX_RB_IRREVERSIBLE;
	memset(rows[2].detail, 'x', sizeof(rows[2].detail) - 1);
	in.u.rollback.commands = 2;
	in.u.rollback.per_action[FBX_RB_CANCEL] = 1;
	in.u.rollback.per_action[FBX_RB_COMPENSATE] = 1;
	in.u.rollback.per_action[FBX_RB_IRREVERSIBLE] = 1;
	in.u.rollback.per_action[FBX_RB_DONE_BEFORE] = 4000000000u;
	in.u.rollback.rows = rows;
	in.u.rollback.nrows = 3;
	in.u.rollback.comp_ids = comp;
	in.u.rollback.ncomp = 2;
	in.u.rollback.rollback_id = 1234;
	in.u.rollback.executed = 1;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLBACK && out.request_id == 24);
	CHECK(out.u.rollback.commands == 2 && out.u.rollback.executed == 1
	    && out.u.rollback.rollback_id == 1234);
	CHECK(!memcmp(out.u.rollback.per_action, in.u.rollback.per_action,
	    sizeof(in.u.rollback.per_action)));
	CHECK(out.u.rollback.nrows == 3 && out.u.rollback.ncomp == 2);
	if (out.u.rollback.nrows == 3)
		CHECK(!memcmp(out.u.rollback.rows, rows, sizeof(rows)));
	if (out.u.rollback.ncomp == 2)
		CHECK(!memcmp(out.u.rollback.comp_ids, comp, sizeof(comp)));
	fbx_console_rep_free(&out);
	CHECK(out.u.rollback.rows == NULL && out.u.rollback.comp_ids == NULL);
	/* The same as a plan: nothing executed, nothing invented. */
	in.u.rollback.comp_ids = NULL;
	in.u.rollback.ncomp = 0;
	in.u.rollback.rollback_id = 0;
	in.u.rollback.executed = 0;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.rollback.executed == 0 && out.u.rollback.ncomp == 0
	    && out.u.rollback.comp_ids == NULL && out.u.rollback.nrows == 3);
	fbx_console_rep_free(&out);
	/* An empty plan. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_ROLLBACK;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLBACK && out.u.rollback.nrows == 0
	    && out.u.rollback.rows == NULL);
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_REPLAY;
	in.u.replay.matched = 1000;
	in.u.replay.resent = 990;
	in.u.replay.skipped_terminal = 10;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_REPLAY);
	CHECK(!memcmp(&in.u.replay, &out.u.replay, sizeof(in.u.replay)));
	fbx_console_rep_free(&out);

	/* An export page of two lines; the copy is NUL-terminated. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_EXPORT;
	in.u.export_.jsonl = (char *)lines;
	in.u.export_.len = sizeof(lines) - 1;
	in.u.export_.next_cursor = 77;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_EXPORT && out.u.export_.next_cursor == 77);
	CHECK(out.u.export_.len == sizeof(lines) - 1);
	CHECK(out.u.export_.jsonl != NULL && out.u.export_.jsonl != lines
	    && !strcmp(out.u.export_.jsonl, lines));
	fbx_console_rep_free(&out);
	/* The last page may be empty. */
	in.u.export_.jsonl = NULL;
	in.u.export_.len = 0;
	in.u.export_.next_cursor = 0;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.export_.len == 0 && out.u.export_.jsonl == NULL);
	fbx_console_rep_free(&out);

	/* An audit page of two records: the first starts the chain. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_AUDIT_LIST;
	for (i = 0; i < 2; i++)
		make_audit(&aud[i], i);
	in.u.audit.r = aud;
	in.u.audit.n = 2;
	in.u.audit.next_after = 101;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_LIST && out.u.audit.n == 2
	    && out.u.audit.next_after == 101);
	if (out.u.audit.n == 2)
		CHECK(!memcmp(out.u.audit.r, aud, sizeof(aud)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_AUDIT_VERIFY;
	in.u.verify.records = 5000;
	in.u.verify.broken_at = 4711;
	strcpy(in.u.verify.why, "record 4711: hash does not match");
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_VERIFY);
	CHECK(!memcmp(&in.u.verify, &out.u.verify, sizeof(in.u.verify)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	memset(orgs, 0, sizeof(orgs));
	in.kind = FBX_CREQ_LIST_ORGS;
	strcpy(orgs[0], "acme");
	strcpy(orgs[1], "org-002");
	memset(orgs[2], 'z', FBX_ID_MAX);
	in.u.orgs.orgs = orgs;
	in.u.orgs.devices = devs;
	in.u.orgs.n = 3;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_ORGS && out.u.orgs.n == 3);
	if (out.u.orgs.n == 3) {
		CHECK(!memcmp(out.u.orgs.orgs, orgs, sizeof(orgs)));
		CHECK(!memcmp(out.u.orgs.devices, devs, sizeof(devs)));
	}
	fbx_console_rep_free(&out);
	in.u.orgs.orgs = NULL;
	in.u.orgs.devices = NULL;
	in.u.orgs.n = 0;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.orgs.n == 0 && out.u.orgs.orgs == NULL);
	fbx_console_rep_free(&out);
}

/* hand_rep wraps a hand-built result in a ConsoleReply as field. */
static int
hand_rep(uint32_t field, struct pbw *sub, struct fbx_console_rep *out)
{
	struct pbw w = { 0 };
	int rv;

	pbw_uint(&w, 1, 3);
	pbw_uint(&w, 3, 1);
	pbw_sub(&w, field, sub);
	rv = fbx_console_rep_decode(w.p, w.n, out);
	free(w.p);
	return rv;
}

/* hand_req_bad wraps a hand-built request body as field, and expects the
 * decoder to refuse it with want and a reason containing name. */
static void
hand_req_bad_(
    uint32_t field, struct pbw *body, int want, const char *name, int line)
{
	struct fbx_console_req out;
	struct pbw w = { 0 };
	char why[256] = "";
	int rv;

	hand_req(&w, 1, "acme");
	pbw_sub(&w, field, body);
	rv = fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why));
	free(w.p);
	if (rv == want && strstr(why, name) != NULL) {
		npass++;
		return;
	}
	nfail++;
	fprintf(stderr, "%s:%d: FAIL: decode = %s (%s), want %s (%s)\n",
	    __FILE__, line, fbx_errname(rv), why, fbx_errname(want), name);
	if (rv == FBX_OK)
		fbx_console_req_free(&out);
}
#define hand_req_bad(f, b, want, name)                                        \
	hand_req_bad_(f, b, want, name, __LINE__)

static void
test_incident_bad_fields(void)
{
	struct fbx_console_req in, out;
	struct fbx_console_rep rin, rout;
	struct pbw body = { 0 }, sub = { 0 };
	struct fbx_rb_row row;
	struct fbx_audit_rec rec;
	uint64_t ids[3] = { 1, 2, 3 }, *many;
	fbx_id org;
	uint32_t dev = 1;
	char why[256], big[600];
	uint8_t *buf = NULL;
	size_t len = 0, i;

	/* Selector, through rollback. */
	base_req(&in, FBX_CREQ_ROLLBACK);
	make_selector(&in.u.rollback.sel, ids, 3);
	ids[1] = 0;
	req_bad(&in, FBX_EINVALID, "rollback.selector.command_ids[1]");
	ids[1] = 2;
	strcpy(in.u.rollback.sel.breaker, "rule-17");
	req_bad(&in, FBX_EINVALID, "rollback.selector.breaker_reason");
	in.u.rollback.sel.ncommand_ids = 0;
	strcpy(in.u.rollback.sel.breaker, "rule 17");
	req_bad(&in, FBX_EINVALID, "rollback.selector.breaker_reason");
	in.u.rollback.sel.breaker[0] = '\0';
	in.u.rollback.sel.breaker_global = 1;
	req_bad(&in, FBX_EINVALID, "rollback.selector.breaker_global");
	in.u.rollback.sel.breaker_global = 0;
	in.u.rollback.sel.ncommand_ids = 3;
	strcpy(in.u.rollback.sel.reason, "a/b");
	req_bad(&in, FBX_EINVALID, "rollback.selector.reason");
	strcpy(in.u.rollback.sel.reason, "*");
	req_bad(&in, FBX_EINVALID, "rollback.selector.reason");
	in.u.rollback.sel.reason[0] = '\0';
	strcpy(in.u.rollback.sel.group, "sales team");
	req_bad(&in, FBX_EINVALID, "rollback.selector.group");
	in.u.rollback.sel.group[0] = '\0';
	in.u.rollback.sel.origin = FBX_ORIGIN_COUNT;
	req_bad(&in, FBX_EINVALID, "rollback.selector.origin");
	in.u.rollback.sel.origin = -1;
	req_bad(&in, FBX_EINVALID, "rollback.selector.origin");
	in.u.rollback.sel.origin = FBX_ORIGIN_ROLLBACK;
	in.u.rollback.sel.type = FBX_CMD_TYPE_COUNT;
	req_bad(&in, FBX_EINVALID, "rollback.selector.type");
	in.u.rollback.sel.type = 0;
	in.u.rollback.sel.since_ms = in.u.rollback.sel.until_ms + 1;
	req_bad(&in, FBX_EINVALID, "rollback.selector.until_ms");
	in.u.rollback.sel.until_ms = 0; /* open end: fine */
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	in.u.rollback.limit = FBX_PAGE_MAX + 1;
	req_bad(&in, FBX_ETOOBIG, "rollback.limit");
	in.u.rollback.limit = 0;
	strcpy(in.u.rollback.note, "line\nbreak");
	req_bad(&in, FBX_EINVALID, "rollback.note");
	strcpy(in.u.rollback.note, "bad \xc3\x28");
	req_bad(&in, FBX_EINVALID, "rollback.note");
	in.u.rollback.note[0] = '\0';
	/* 100,000 ids pass; one more is refused by both ends. */
	many = xcalloc(100001, sizeof(uint64_t));
	for (i = 0; i < 100001; i++)
		many[i] = i + 1;
	in.u.rollback.sel.command_ids = many;
	in.u.rollback.sel.ncommand_ids = 100000;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.rollback.sel.ncommand_ids == 100000
	    && out.u.rollback.sel.command_ids[99999] == 100000);
	fbx_console_req_free(&out);
	in.u.rollback.sel.ncommand_ids = 100001;
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_ETOOBIG);
	in.u.rollback.sel.command_ids = NULL;
	in.u.rollback.sel.ncommand_ids = 1;
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_EINVALID);
	for (i = 0; i < 100001; i++)
		pbw_uint(&sub, 1, i + 1);
	pbw_sub(&body, 1, &sub);
	hand_req_bad(24, &body, FBX_ETOOBIG, "rollback.selector.command_ids");
	free(many);
	/* A missing selector is refused, not read as "everything". */
	pbw_uint(&body, 2, 1);
	hand_req_bad(24, &body, FBX_EINVALID, "rollback.selector: missing");
	pbw_uint(&body, 3, 1);
	hand_req_bad(25, &body, FBX_EINVALID, "replay.selector: missing");

	/* Replay: state, note, and its selector. */
	base_req(&in, FBX_CREQ_REPLAY);
	in.u.replay.state = FBX_D_COUNT;
	req_bad(&in, FBX_EINVALID, "replay.state");
	in.u.replay.state = -3;
	req_bad(&in, FBX_EINVALID, "replay.state");
	in.u.replay.state = FBX_D_PENDING;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	strcpy(in.u.replay.note, "esc \x1b[2J");
	req_bad(&in, FBX_EINVALID, "replay.note");
	in.u.replay.note[0] = '\0';
	make_selector(&in.u.replay.sel, ids, 3);
	strcpy(in.u.replay.sel.breaker, "r");
	req_bad(&in, FBX_EINVALID, "replay.selector.breaker_reason");
	in.u.replay.sel.breaker[0] = '\0';
	in.u.replay.sel.since_ms = 10;
	in.u.replay.sel.until_ms = 9;
	req_bad(&in, FBX_EINVALID, "replay.selector.until_ms");

	/* Export: window and page size. */
	base_req(&in, FBX_CREQ_EXPORT);
	in.u.export_.since_ms = 2000;
	in.u.export_.until_ms = 1000;
	req_bad(&in, FBX_EINVALID, "export.until_ms");
	in.u.export_.until_ms = 0;
	in.u.export_.max_bytes = 8u * 1024 * 1024 + 1;
	req_bad(&in, FBX_ETOOBIG, "export.max_bytes");
	in.u.export_.max_bytes = 0xffffffffu;
	req_bad(&in, FBX_ETOOBIG, "export.max_bytes");

	/* Audit list: filters, window, page size. */
	base_req(&in, FBX_CREQ_AUDIT_LIST);
	strcpy(in.u.audit_list.actor, "bob smith");
	req_bad(&in, FBX_EINVALID, "audit_list.actor");
	in.u.audit_list.actor[0] = '\0';
	strcpy(in.u.audit_list.action, "breaker\ttrip");
	req_bad(&in, FBX_EINVALID, "audit_list.action");
	strcpy(in.u.audit_list.action, "caf\xc3\xa9");
	req_bad(&in, FBX_EINVALID, "audit_list.action");
	strcpy(in.u.audit_list.action, "del\x7f");
	req_bad(&in, FBX_EINVALID, "audit_list.action");
	strcpy(in.u.audit_list.action, "submit");
	in.u.audit_list.since_ms = 2;
	in.u.audit_list.until_ms = 1;
	req_bad(&in, FBX_EINVALID, "audit_list.until_ms");
	in.u.audit_list.until_ms = 0;
	in.u.audit_list.limit = FBX_PAGE_MAX + 1;
	req_bad(&in, FBX_ETOOBIG, "audit_list.limit");
	/* 32 bytes cannot be encoded from the struct: build it by hand. */
	memset(big, 'a', 32);
	big[32] = '\0';
	pbw_str(&body, 2, big);
	hand_req_bad(27, &body, FBX_ETOOBIG, "audit_list.action");

	/* Rollback plans. */
	memset(&rin, 0, sizeof(rin));
	memset(&row, 0, sizeof(row));
	rin.kind = FBX_CREQ_ROLLBACK;
	rin.u.rollback.rows = &row;
	rin.u.rollback.nrows = 1;
	strcpy(row.device, "d1");
	row.action = FBX_RB_CANCEL;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID); /* type missing */
	row.type = FBX_CMD_TYPE_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.type = FBX_CMD_LOCK;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	row.action = FBX_RB_NONE;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.action = FBX_RB_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.action = FBX_RB_CANCEL;
	row.state = FBX_D_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.state = FBX_D_QUEUED;
	row.action = FBX_RB_DONE_BEFORE;
	row.comp_type = FBX_CMD_UNLOCK;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	row.comp_type = FBX_CMD_TYPE_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.comp_type = FBX_CMD_UNLOCK;
	strcpy(row.device, "d 1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(row.device, "d1");
	/* Compensations and a rollback id only once executed. */
	rin.u.rollback.comp_ids = ids;
	rin.u.rollback.ncomp = 3;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.rollback.executed = 1;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	ids[2] = 0;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	ids[2] = 3;
	rin.u.rollback.ncomp = 0;
	rin.u.rollback.executed = 0;
	rin.u.rollback.rollback_id = 5;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.rollback.rollback_id = 0;
	/* RB_NONE has no count; caps and NULL arrays at the encoder. */
	rin.u.rollback.per_action[FBX_RB_NONE] = 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	rin.u.rollback.per_action[FBX_RB_NONE] = 0;
	rin.u.rollback.nrows = FBX_PAGE_MAX + 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	rin.u.rollback.nrows = 1;
	rin.u.rollback.ncomp = 100001;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	rin.u.rollback.ncomp = 1;
	rin.u.rollback.comp_ids = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	rin.u.rollback.ncomp = 0;
	rin.u.rollback.rows = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	/* Per-action counts: known actions, each once (hand-built). */
	pbw_uint(&sub, 1, FBX_RB_CANCEL);
	pbw_uint(&sub, 2, 3);
	pbw_sub(&body, 2, &sub);
	pbw_uint(&sub, 1, FBX_RB_CANCEL);
	pbw_uint(&sub, 2, 4);
	pbw_sub(&body, 2, &sub);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_EINVALID);
	pbw_uint(&sub, 1, FBX_RB_COUNT);
	pbw_sub(&body, 2, &sub);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_EINVALID);
	pbw_uint(&sub, 2, 4);
	pbw_sub(&body, 2, &sub); /* action RB_NONE */
	CHECK_RV(hand_rep(24, &body, &rout), FBX_EINVALID);
	for (i = 0; i < FBX_RB_COUNT + 1; i++) {
		pbw_uint(&sub, 1, 1 + i % (FBX_RB_COUNT - 1));
		pbw_sub(&body, 2, &sub);
	}
	CHECK_RV(hand_rep(24, &body, &rout), FBX_ETOOBIG);
	/* Too many rows or compensations on the wire: refused unread. */
	for (i = 0; i < FBX_PAGE_MAX + 1; i++)
		pbw_sub(&body, 3, &sub);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_ETOOBIG);
	pbw_uint(&body, 6, 1);
	for (i = 0; i < 100001; i++)
		pbw_uint(&body, 4, i + 1);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_ETOOBIG);

	/* Export pages: size and content. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_EXPORT;
	rin.u.export_.len = 8u * 1024 * 1024 - 64 * 1024 + 1;
	rin.u.export_.jsonl = xcalloc(rin.u.export_.len, 1);
	memset(rin.u.export_.jsonl, '\n', rin.u.export_.len);
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	pbw_bytes(&body, 1, rin.u.export_.jsonl, rin.u.export_.len);
	CHECK_RV(hand_rep(26, &body, &rout), FBX_ETOOBIG);
	rin.u.export_.len--; /* exactly at the cap */
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(rout.u.export_.len == rin.u.export_.len);
	fbx_console_rep_free(&rout);
	rin.u.export_.jsonl[5] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	free(rin.u.export_.jsonl);
	rin.u.export_.jsonl = NULL;
	rin.u.export_.len = 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);

	/* Audit records. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_AUDIT_LIST;
	rin.u.audit.r = &rec;
	rin.u.audit.n = 1;
	make_audit(&rec, 0);
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	rec.seq = 0;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.org[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rec.org, "a*");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.actor[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.action[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rec.action, "bell\a");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rec.action, "\xc3\xa9t\xc3\xa9");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	strcpy(rec.note, "two\nlines");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	memset(rec.params, '{', sizeof(rec.params) - 1); /* 511: fine */
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(strlen(rout.u.audit.r[0].params) == 511);
	fbx_console_rep_free(&rout);
	make_audit(&rec, 0);
	rec.hash[63] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.hash[10] = 'A';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.hash[0] = 'g';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	strcpy(rec.prev, "00ff");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.hash[0] = '\0'; /* empty: allowed */
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	rin.u.audit.n = FBX_PAGE_MAX + 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	rin.u.audit.r = NULL;
	rin.u.audit.n = 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	/* Over the buffers: only a hand-built record can be. */
	memset(big, '{', 512);
	big[512] = '\0';
	pbw_uint(&sub, 1, 1);
	pbw_str(&sub, 3, "acme");
	pbw_str(&sub, 4, "bob");
	pbw_str(&sub, 5, "submit");
	pbw_str(&sub, 7, big);
	pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);
	memset(big, 'a', 65);
	big[65] = '\0';
	pbw_uint(&sub, 1, 1);
	pbw_str(&sub, 3, "acme");
	pbw_str(&sub, 4, "bob");
	pbw_str(&sub, 5, "submit");
	pbw_str(&sub, 8, big);
	pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);
	memset(big, 'a', 32);
	big[32] = '\0';
	pbw_uint(&sub, 1, 1);
	pbw_str(&sub, 3, "acme");
	pbw_str(&sub, 4, "bob");
	pbw_str(&sub, 5, big);
	pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);
	for (i = 0; i < FBX_PAGE_MAX + 1; i++)
		pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);

	/* Verify: the reason fits its buffer. */
	memset(big, 'w', 128);
	big[128] = '\0';
	pbw_uint(&body, 2, 9);
	pbw_str(&body, 3, big);
	CHECK_RV(hand_rep(28, &body, &rout), FBX_ETOOBIG);

	/* Organisations: identifiers, caps, both arrays. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_LIST_ORGS;
	rin.u.orgs.orgs = &org;
	rin.u.orgs.devices = &dev;
	rin.u.orgs.n = 1;
	strcpy(org, "*");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	org[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(org, "acme");
	rin.u.orgs.devices = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	rin.u.orgs.n = 100001;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	for (i = 0; i < 100001; i++)
		pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(29, &body, &rout), FBX_ETOOBIG);
	/* 100,000 organisations go through, each with its count. */
	rin.u.orgs.n = 100000;
	rin.u.orgs.orgs = xcalloc(100000, sizeof(fbx_id));
	rin.u.orgs.devices = xcalloc(100000, sizeof(uint32_t));
	for (i = 0; i < 100000; i++) {
		snprintf(rin.u.orgs.orgs[i], sizeof(fbx_id), "org-%06zu", i);
		rin.u.orgs.devices[i] = (uint32_t)(i * 3);
	}
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(rout.u.orgs.n == 100000);
	if (rout.u.orgs.n == 100000) {
		CHECK(!strcmp(rout.u.orgs.orgs[99999], "org-099999"));
		CHECK(rout.u.orgs.devices[99999] == 299997);
		CHECK(!memcmp(rout.u.orgs.devices, rin.u.orgs.devices,
		    100000 * sizeof(uint32_t)));
	}
	fbx_console_rep_free(&rout);
	free(rin.u.orgs.orgs);
	free(rin.u.orgs.devices);
}

/* test_incident_mutations flips bytes of the new messages: decoders must
 * not crash, leak or misreport, and must free what they accept. */
static void
test_incident_mutations(void)
{
	struct fbx_console_rep in[4], out;
	struct fbx_console_req rq[2], rout;
	struct fbx_rb_row rows[2];
	struct fbx_audit_rec aud[2];
	uint64_t comp[2] = { 8, 9 }, ids[2] = { 4, 5 };
	fbx_id orgs[2] = { "a", "b" };
	uint32_t devs[2] = { 1, 2 };
	static char lines[] = "{\"a\":1}\n{\"b\":2}\n";
	uint8_t *enc[4], *buf;
	size_t elen[4], i, j, odd = 0;
	char why[256];
	int rv;

	memset(in, 0, sizeof(in));
	memset(rows, 0, sizeof(rows));
	for (i = 0; i < 2; i++) {
		rows[i].command_id = 4 + i;
		strcpy(rows[i].device, "d");
		rows[i].type = FBX_CMD_LOCK;
		rows[i].action = FBX_RB_COMPENSATE;
		rows[i].comp_type = FBX_CMD_UNLOCK;
		strcpy(rows[i].detail, "unlock");
		make_audit(&aud[i], i);
	}
	in[0].kind = FBX_CREQ_ROLLBACK;
	in[0].u.rollback.rows = rows;
	in[0].u.rollback.nrows = 2;
	in[0].u.rollback.per_action[FBX_RB_COMPENSATE] = 2;
	in[0].u.rollback.comp_ids = comp;
	in[0].u.rollback.ncomp = 2;
	in[0].u.rollback.executed = 1;
	in[1].kind = FBX_CREQ_AUDIT_LIST;
	in[1].u.audit.r = aud;
	in[1].u.audit.n = 2;
	in[2].kind = FBX_CREQ_LIST_ORGS;
	in[2].u.orgs.orgs = orgs;
	in[2].u.orgs.devices = devs;
	in[2].u.orgs.n = 2;
	in[3].kind = FBX_CREQ_EXPORT;
	in[3].u.export_.jsonl = lines;
	in[3].u.export_.len = sizeof(lines) - 1;
	for (i = 0; i < 4; i++)
		CHECK_RV(
		    fbx_console_rep_encode(&in[i], &enc[i], &elen[i]), FBX_OK);
	rng_state = 0x1badb002deadbeefull;
	for (i = 0; i < 40000; i++) {
		size_t k = i % 4, flips = 1 + rng() % 4;
		buf = xcalloc(elen[k], 1);
		memcpy(buf, enc[k], elen[k]);
		for (j = 0; j < flips; j++)
			buf[rng() % elen[k]] = (uint8_t)rng();
		rv = fbx_console_rep_decode(buf, elen[k], &out);
		if (rv == FBX_OK)
			fbx_console_rep_free(&out);
		else if (!hostile_rv_ok(rv))
			odd++;
		free(buf);
	}
	CHECK(odd == 0);
	for (i = 0; i < 4; i++)
		free(enc[i]);

	base_req(&rq[0], FBX_CREQ_ROLLBACK);
	make_selector(&rq[0].u.rollback.sel, ids, 2);
	strcpy(rq[0].u.rollback.note, "n");
	base_req(&rq[1], FBX_CREQ_AUDIT_LIST);
	strcpy(rq[1].u.audit_list.actor, "a");
	strcpy(rq[1].u.audit_list.action, "submit");
	for (i = 0; i < 2; i++)
		CHECK_RV(
		    fbx_console_req_encode(&rq[i], &enc[i], &elen[i]), FBX_OK);
	for (i = 0; i < 20000; i++) {
		size_t k = i % 2, flips = 1 + rng() % 4;
		buf = xcalloc(elen[k], 1);
		memcpy(buf, enc[k], elen[k]);
		for (j = 0; j < flips; j++)
			buf[rng() % elen[k]] = (uint8_t)rng();
		rv = fbx_console_req_decode(
		    buf, elen[k], &rout, why, sizeof(why));
		if (rv == FBX_OK)
			fbx_console_req_free(&rout);
		else if (!hostile_rv_ok(rv))
			odd++;
		free(buf);
	}
	CHECK(odd == 0);
	free(enc[0]);
	free(enc[1]);
}

int
main(void)
{
	test_req_incident();
	test_rep_incident();
	test_incident_bad_fields();
	test_incident_mutations();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
