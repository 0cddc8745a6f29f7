/*
 * rollback_run.c: RollbackRequest, handled: a run of slices for one
 * organisation or, with the global selector, for every organisation in
 * turn, with its journal (rbrun/, rbpart/) so that a client that lost its
 * cursor goes on with the rollback id alone, and the audit record that
 * closes it. Each slice is planned and executed by rollback.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h" /* AUDIT_PARAMS_MAX: what a record's params hold */
#include "delivery.h"
#include "engine_int.h"
#include "rollback_int.h"

/* A run's journal, kv "rbrun/<org>/<rollback id>" (org "*" for a run
 * over every organisation): where the run stands, written in every
 * executed slice's transaction once the run has an id, so that a client
 * that lost its cursor (a crash, a lost reply) goes on with the rollback
 * id alone (RollbackRequest.rollback_id with cursor 0). A global run also
 * keeps "rbpart/<rollback id>/<org>", the counts of each organisation it
 * changed, for the audit record that closes it. */
#define RB_RUN_VERSION 2 /* 1: without from_cursor, from_org */

struct rb_run_rec {
	uint32_t version;
	uint8_t done, global;
	uint8_t pad_[2];
	uint64_t fp;       /* the selector */
	uint64_t snapshot; /* the run's last_command_id */
	uint64_t cursor;   /* the next slice's; 0 = done */
	fbx_id org_cursor; /* global: the organisation to go on in */
	uint32_t slices, orgs;
	uint64_t commands, before_onset, comps;
	uint64_t per_action[FBX_RB_COUNT];
	int64_t started_ms, updated_ms;
	/* version 2: where the last journaled slice began (rb_repeat) */
	uint64_t from_cursor;
	fbx_id from_org;
};
/* the size of a version 1 record: without the last two fields */
#define RB_RUN_V1_SIZE offsetof(struct rb_run_rec, from_cursor)

struct rb_part_rec {
	uint32_t version;
	uint32_t commands, before_onset, comps;
	uint32_t per_action[FBX_RB_COUNT];
};

/* rb_sel_fp - the request's selection, to tell that a continued run is
 * the same run. */
static uint64_t
rb_sel_fp(const struct fbx_console_req *req)
{
	const struct fbx_selector *s = &req->u.rollback.sel;
	uint64_t h = 1469598103934665603ull;
	int64_t v[9] = { s->breaker_global, s->every_org,
		s->include_before_onset, s->origin, s->type,
		req->u.rollback.include_changed, s->since_ms, s->until_ms,
		(int64_t)s->ncommand_ids };

	h = fbxi_rb_fp_mix(h, s->breaker, strlen(s->breaker) + 1);
	h = fbxi_rb_fp_mix(h, s->reason, strlen(s->reason) + 1);
	h = fbxi_rb_fp_mix(h, s->group, strlen(s->group) + 1);
	h = fbxi_rb_fp_mix(h, v, sizeof(v));
	if (s->ncommand_ids > 0)
		h = fbxi_rb_fp_mix(h, s->command_ids,
		    s->ncommand_ids * sizeof(*s->command_ids));
	return h;
}

static void
rb_run_key(char *key, size_t len, const char *org, uint64_t rbid)
{
	snprintf(key, len, "rbrun/%s/%llu", org, (unsigned long long)rbid);
}

/* rb_run_get - the journal of run rbid of org. @return FBX_OK,
 * FBX_ENOT_FOUND, a store error. */
static int
rb_run_get(struct fbx_engine *e, const char *org, uint64_t rbid,
    struct rb_run_rec *run)
{
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	rb_run_key(key, sizeof(key), org, rbid);
	memset(run, 0, sizeof(*run));
	rc = fbx_store_kv_get(e->txn, key, run, sizeof(*run), &len);
	if (rc == FBX_OK && len == RB_RUN_V1_SIZE && run->version == 1) {
		/* a run journaled before version 2: no last slice known */
		run->version = RB_RUN_VERSION;
		run->from_cursor = UINT64_MAX;
		return FBX_OK;
	}
	if (rc == FBX_OK &&
	    (len != sizeof(*run) || run->version != RB_RUN_VERSION))
		return FBX_ECORRUPT;
	return rc;
}

/* rb_continue - a request naming a rollback id without a cursor goes on
 * from where that run's journal says. @return FBX_OK (req now carries
 * the cursor, or is not a continuation); 1 when the run is done (run
 * filled); FBX_EINVALID (no such run of this selection here); a store
 * error. */
static int
rb_continue(struct fbx_engine *e, struct fbx_console_req *req, int global,
    struct rb_run_rec *run)
{
	int rc;

	if (req->u.rollback.rollback_id == 0 || req->u.rollback.cursor != 0)
		return FBX_OK;
	rc = rb_run_get(e, global ? "*" : req->org,
	    req->u.rollback.rollback_id, run);
	if (rc == FBX_ENOT_FOUND)
		return FBX_EINVALID;
	if (rc != FBX_OK)
		return rc;
	if (run->fp != rb_sel_fp(req) || run->global != (global != 0))
		return FBX_EINVALID;
	if (run->done || run->cursor == 0)
		return 1;
	req->u.rollback.cursor = run->cursor;
	req->u.rollback.last_command_id = run->snapshot;
	snprintf(req->u.rollback.org_cursor,
	    sizeof(req->u.rollback.org_cursor), "%s", run->org_cursor);
	return FBX_OK;
}

/* rb_repeat - whether the request repeats the last journaled slice of
 * run rbid (a resume from the cursor before the slice whose reply was
 * lost): what it did then is done before (done-before, nothing
 * cancelled twice), so only what it does anew is added to the totals.
 * The slices after it are counted as any: their bounds may differ from
 * the first time (the survey is redone after a restart), so a client
 * that goes on from the repeat's reply may count some commands twice;
 * --continue goes on from the journal and does not. @return 1, 0, or a
 * negative fbx_err. */
static int
rb_repeat(struct fbx_engine *e, const struct fbx_console_req *req,
    int global, uint64_t rbid)
{
	struct rb_run_rec run;
	int rc;

	if (rbid == 0)
		return 0;
	rc = rb_run_get(e, global ? "*" : req->org, rbid, &run);
	if (rc == FBX_ENOT_FOUND)
		return 0;
	if (rc != FBX_OK)
		return -rc;
	return run.slices > 0 && req->u.rollback.cursor == run.from_cursor &&
	    strcmp(req->u.rollback.org_cursor, run.from_org) == 0 &&
	    (req->u.rollback.cursor != run.cursor ||
	        strcmp(req->u.rollback.org_cursor, run.org_cursor) != 0);
}

/* rb_run_note - journal one executed slice of run rbid: its totals
 * (unless it repeats one: rb_repeat) and where the next slice starts.
 * *was_done says whether the run had already been closed (a final
 * slice sent again). */
static int
rb_run_note(struct fbx_engine *e, const struct fbx_console_req *req,
    int global, uint64_t rbid, const struct fbx_rb_plan *p,
    uint32_t new_orgs, int repeat, int *was_done, struct rb_run_rec *run)
{
	char key[FBX_KV_KEY_MAX];
	int rc;

	rc = rb_run_get(e, global ? "*" : req->org, rbid, run);
	if (rc == FBX_ENOT_FOUND) {
		memset(run, 0, sizeof(*run));
		run->version = RB_RUN_VERSION;
		run->global = global ? 1 : 0;
		run->fp = rb_sel_fp(req);
		run->started_ms = e->now;
	} else if (rc != FBX_OK) {
		return rc;
	}
	*was_done = run->done;
	if (repeat) {
		/* only what it did anew; the journal stays where it is,
		 * past this slice (--continue goes on from there) */
		run->per_action[FBX_RB_CANCEL] += p->per_action[FBX_RB_CANCEL];
		run->per_action[FBX_RB_COMPENSATE] +=
		    p->per_action[FBX_RB_COMPENSATE];
		run->comps += p->ncomp;
		run->updated_ms = e->now;
		rb_run_key(key, sizeof(key), global ? "*" : req->org, rbid);
		return fbx_store_kv_put(e->txn, key, run, sizeof(*run));
	}
	run->slices++;
	run->orgs += new_orgs;
	run->commands += p->commands;
	run->before_onset += p->before_onset;
	run->comps += p->ncomp;
	for (int k = 0; k < FBX_RB_COUNT; k++)
		run->per_action[k] += p->per_action[k];
	run->from_cursor = req->u.rollback.cursor;
	snprintf(run->from_org, sizeof(run->from_org), "%s",
	    req->u.rollback.org_cursor);
	run->snapshot = p->last_command_id;
	run->cursor = p->next_cursor;
	snprintf(run->org_cursor, sizeof(run->org_cursor), "%s",
	    p->next_org);
	run->done = p->next_cursor == 0;
	run->updated_ms = e->now;
	rb_run_key(key, sizeof(key), global ? "*" : req->org, rbid);
	return fbx_store_kv_put(e->txn, key, run, sizeof(*run));
}

/* rb_part_note - add an organisation's executed part to the run's
 * record of it; *is_new when it is the organisation's first. */
static int
rb_part_note(struct fbx_engine *e, uint64_t rbid, const char *org,
    const struct fbx_rb_plan *p, int repeat, int *is_new)
{
	char key[FBX_KV_KEY_MAX];
	struct rb_part_rec x;
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "rbpart/%llu/%s", (unsigned long long)rbid,
	    org);
	rc = fbx_store_kv_get(e->txn, key, &x, sizeof(x), &len);
	*is_new = rc == FBX_ENOT_FOUND;
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && len != sizeof(x))) {
		memset(&x, 0, sizeof(x));
		x.version = 1;
	} else if (rc != FBX_OK) {
		return rc;
	}
	if (repeat && !*is_new) {
		/* counted when the slice first ran: only what is new */
		x.comps += (uint32_t)p->ncomp;
		x.per_action[FBX_RB_CANCEL] += p->per_action[FBX_RB_CANCEL];
		x.per_action[FBX_RB_COMPENSATE] +=
		    p->per_action[FBX_RB_COMPENSATE];
		return fbx_store_kv_put(e->txn, key, &x, sizeof(x));
	}
	x.commands += p->commands;
	x.before_onset += p->before_onset;
	x.comps += (uint32_t)p->ncomp;
	for (int k = 0; k < FBX_RB_COUNT; k++)
		x.per_action[k] += p->per_action[k];
	return fbx_store_kv_put(e->txn, key, &x, sizeof(x));
}

/* rb_merge_plan - add a part's plan to the slice's: counts summed, rows
 * kept up to cap, compensating commands appended. */
static int
rb_merge_plan(struct fbx_rb_plan *g, const struct fbx_rb_plan *p,
    size_t cap)
{
	g->commands += p->commands;
	for (int k = 0; k < FBX_RB_COUNT; k++)
		g->per_action[k] += p->per_action[k];
	for (size_t i = 0; i < p->nrows && g->nrows < cap; i++)
		g->rows[g->nrows++] = p->rows[i];
	for (size_t i = 0; i < p->nbo_rows && g->nbo_rows < cap; i++)
		g->bo_rows[g->nbo_rows++] = p->bo_rows[i];
	g->before_onset += p->before_onset;
	g->before_onset_deliveries += p->before_onset_deliveries;
	g->bo_rows_total += p->bo_rows_total;
	g->later_commands += p->later_commands;
	if (p->ncomp > 0) {
		uint64_t *nc = realloc(g->comp_ids,
		    (g->ncomp + p->ncomp) * sizeof(*nc));
		if (nc == NULL)
			return FBX_ENOMEM;
		memcpy(nc + g->ncomp, p->comp_ids, p->ncomp * sizeof(*nc));
		g->comp_ids = nc;
		g->ncomp += p->ncomp;
	}
	if (p->commands > 0 || p->before_onset > 0) {
		struct fbx_rb_org *no = realloc(g->orgs,
		    (g->norgs + 1) * sizeof(*no));
		struct fbx_rb_org *x;
		if (no == NULL)
			return FBX_ENOMEM;
		g->orgs = no;
		x = &g->orgs[g->norgs++];
		memset(x, 0, sizeof(*x));
		x->commands = p->commands;
		memcpy(x->per_action, p->per_action, sizeof(x->per_action));
		x->before_onset = p->before_onset;
		x->before_onset_deliveries = p->before_onset_deliveries;
		x->comp_commands = (uint32_t)p->ncomp;
	}
	return FBX_OK;
}

/* rb_may_global - whether org may roll back a global incident in every
 * organisation: the admin organisation, or anyone when none is set. */
static int
rb_may_global(const struct fbx_engine *e, const char *org)
{
	return e->o.admin_org == NULL || e->o.admin_org[0] == '\0' ||
	    strcmp(org, e->o.admin_org) == 0;
}

/* rb_reply_done - a continued run that is already done. */
static void
rb_reply_done(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, const struct rb_run_rec *run,
    int global)
{
	struct fbx_console_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rollback.executed = 1;
	rep.u.rollback.rollback_id = req->u.rollback.rollback_id;
	rep.u.rollback.last_command_id = run->snapshot;
	rep.u.rollback.global = global;
	fbxi_console_reply(e, in, &rep);
}

/* rb_continue_err - answer what rb_continue refused; @return 1 when the
 * request is answered. */
static int
rb_continue_err(struct fbx_engine *e, const struct inmsg *in,
    struct fbx_console_req *req, int rc, const struct rb_run_rec *run,
    int global)
{
	if (rc == FBX_OK)
		return 0;
	if (rc == 1) {
		rb_reply_done(e, in, req, run, global);
	} else if (rc == FBX_EINVALID) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EINVALID,
		    "rollback: no run %llu of this selection in %s to go on "
		    "with",
		    (unsigned long long)req->u.rollback.rollback_id,
		    global ? "every organisation" : req->org);
	} else {
		fbxi_set_err(e, rc);
	}
	return 1;
}

struct rb_orgs {
	fbx_id *v;
	size_t n, cap;
	const char *from;
};

static int
rb_orgs_cb(void *arg, const char *org, uint32_t devices)
{
	struct rb_orgs *l = arg;

	(void)devices;
	if (strcmp(org, l->from) < 0)
		return 0;
	snprintf(l->v[l->n], sizeof(l->v[l->n]), "%s", org);
	l->n++;
	return l->n == l->cap;
}

/* The names go into the closing record's parameters, which hold 511
 * bytes: as many as the totals before them leave room for (rb_run_close;
 * at worst about 415 bytes of totals with a 64-byte incident reason and
 * every number at 20 digits), and into "rollback.orgs" records after it,
 * as many as each holds. A fixed room of 400 once cut the record of a run
 * over some 50 organisations at 511 bytes, inside the names string:
 * parameters that are not JSON (issue 12 item 6). */
struct rb_names {
	char buf[AUDIT_PARAMS_MAX + 1];
	size_t cap; /* of buf, what the record has room for */
	size_t used, listed, more, skip;
};

/* rb_names_cb - organisation names of a run's parts, after the first
 * `skip`, as many as buf holds; the others are counted in more. */
static int
rb_names_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct rb_names *nm = arg;
	const char *org = strrchr(key, '/');
	size_t n;

	(void)val;
	(void)len;
	if (nm->skip > 0) {
		nm->skip--;
		return 0;
	}
	org = org ? org + 1 : key;
	n = strlen(org);
	if (nm->more == 0 && nm->used + n + 2 < nm->cap) {
		memcpy(nm->buf + nm->used, org, n);
		nm->used += n;
		nm->buf[nm->used++] = ' ';
		nm->buf[nm->used] = '\0';
		nm->listed++;
	} else {
		nm->more++;
	}
	return 0;
}

/* rb_names - one record's worth of names after skip. */
static int
rb_names(struct fbx_engine *e, const char *prefix, size_t skip, size_t cap,
    struct rb_names *nm)
{
	int rc;

	memset(nm, 0, sizeof(*nm));
	nm->cap = cap < sizeof(nm->buf) ? cap : sizeof(nm->buf);
	nm->skip = skip;
	rc = fbx_store_kv_scan(e->txn, prefix, rb_names_cb, nm);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (nm->used > 0)
		nm->buf[--nm->used] = '\0';
	return rc;
}

/* rb_run_close - the audit record that closes a global run: its totals
 * and the organisations it changed, by name as far as the record holds
 * them (about 30 of 8 bytes with a short incident reason); the rest
 * follow in "rollback.orgs" records (about 50 of 8 bytes each). */
static void
rb_run_close(struct fbx_engine *e, const struct fbx_console_req *req,
    uint64_t rbid, const struct rb_run_rec *run)
{
	static const char tail[] = ",\"more\":18446744073709551615,"
	                           "\"names\":\"\"}";
	/* a rollback.orgs record without its names, the id at its widest */
	static const char orgs_rec[] = "{\"rollback_id\":18446744073709551615,"
	                               "\"names\":\"\"}";
	struct rb_names nm;
	char prefix[64], head[AUDIT_PARAMS_MAX + 1];
	size_t skip, hlen;
	int rc;

	/* the totals first: the names get the room they leave */
	hlen = (size_t)snprintf(head, sizeof(head),
	    "{\"rollback_id\":%llu,\"incident\":\"%s\",\"global\":true,"
	    "\"slices\":%u,\"orgs\":%u,\"commands\":%llu,\"cancelled\":%llu,"
	    "\"compensated\":%llu,\"compensating_commands\":%llu,"
	    "\"irreversible\":%llu,\"in_flight\":%llu,"
	    "\"before_onset\":%llu",
	    (unsigned long long)rbid, req->u.rollback.sel.breaker, run->slices,
	    run->orgs, (unsigned long long)run->commands,
	    (unsigned long long)run->per_action[FBX_RB_CANCEL],
	    (unsigned long long)run->per_action[FBX_RB_COMPENSATE],
	    (unsigned long long)run->comps,
	    (unsigned long long)run->per_action[FBX_RB_IRREVERSIBLE],
	    (unsigned long long)run->per_action[FBX_RB_IN_FLIGHT],
	    (unsigned long long)run->before_onset);
	snprintf(prefix, sizeof(prefix), "rbpart/%llu/",
	    (unsigned long long)rbid);
	rc = rb_names(e, prefix, 0,
	    hlen + sizeof(tail) - 1 < AUDIT_PARAMS_MAX
	        ? AUDIT_PARAMS_MAX - hlen - (sizeof(tail) - 1)
	        : 0,
	    &nm);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	fbxi_audit(e, "*", req->actor, "rollback", req->u.rollback.note,
	    "%s,\"more\":%zu,\"names\":\"%s\"}", head, nm.more, nm.buf);
	skip = nm.listed;
	while (nm.more > 0 && fbxi_err(e) == FBX_OK) {
		rc = rb_names(e, prefix, skip,
		    AUDIT_PARAMS_MAX - (sizeof(orgs_rec) - 1), &nm);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
		if (nm.listed == 0)
			break;
		fbxi_audit(e, "*", req->actor, "rollback.orgs", "",
		    "{\"rollback_id\":%llu,\"names\":\"%s\"}",
		    (unsigned long long)rbid, nm.buf);
		skip += nm.listed;
	}
}

/* rb_log_through - the line that says a run is through, with its totals.
 * Its own log site: the slices' lines of a long run are rate-limited
 * (10 at once, then one a second), and the last slice's was dropped.
 * Written once the turn has committed. */
static void
rb_log_through(struct fbx_engine *e, const struct fbx_console_req *req,
    uint64_t rbid, const struct rb_run_rec *run)
{
	fbxi_out_log(e, "rollback through",
	    "rollback %llu (%s%s) by %s is through: %u slices changed "
	    "something, %llu commands, %llu cancelled, %llu compensated in "
	    "%llu commands, %llu irreversible, %llu in flight, %llu before "
	    "the onset left",
	    (unsigned long long)rbid,
	    run->global ? "global incident " : "in ",
	    run->global ? req->u.rollback.sel.breaker : req->org, req->actor,
	    run->slices, (unsigned long long)run->commands,
	    (unsigned long long)run->per_action[FBX_RB_CANCEL],
	    (unsigned long long)run->per_action[FBX_RB_COMPENSATE],
	    (unsigned long long)run->comps,
	    (unsigned long long)run->per_action[FBX_RB_IRREVERSIBLE],
	    (unsigned long long)run->per_action[FBX_RB_IN_FLIGHT],
	    (unsigned long long)run->before_onset);
}

/* rb_not_found - a selection with nothing in it. An incident's names
 * the trip it was taken from (fbx_rb_empty_incident): the breaker's
 * last, so a later trip of the same reason (a test, a certificate's)
 * makes --incident select that one, and an operator must see which. */
static void
rb_not_found(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, const char *where,
    const struct fbx_rb_plan *p)
{
	const struct fbx_selector *s = &req->u.rollback.sel;

	if (s->breaker[0] != '\0' && p != NULL && p->breaker[0] != '\0' &&
	    (p->onset_ms > 0 || p->since_ms > 0)) {
		char msg[256];
		fbx_rb_empty_incident(msg, sizeof(msg), p->breaker,
		    p->onset_ms, p->since_ms,
		    s->since_ms != 0 || s->until_ms != 0,
		    req->u.rollback.execute && !s->include_before_onset);
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ENOT_FOUND, "%s", msg);
	} else if (req->u.rollback.sel.breaker[0] != '\0' &&
	    !req->u.rollback.sel.include_before_onset)
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ENOT_FOUND,
		    "nothing to roll back in %s: no command of the "
		    "incident from its onset; earlier ones in the breaker "
		    "window were left (the dry run lists them; "
		    "--include-before-onset selects them)",
		    where);
	else
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ENOT_FOUND,
		    "nothing to roll back: the selection matches no command "
		    "in %s",
		    where);
}

/* rb_global - one slice of a global incident's rollback over every
 * organisation, for the admin organisation (or anyone without one):
 * the organisations in name order, each one's part planned and carried
 * out with what is left of the slice's budget (each organisation looked
 * at counts as one command), so one slice never holds more than one
 * organisation's slice worth of work. The cursor is the organisation to
 * go on in (org_cursor) and the cursor within it; the run has one
 * rollback id, one "rollback.slice" audit record per executed slice
 * that did something, a journal (rbrun/ * /<id>) and, when it ends, one
 * "rollback" record that names the organisations it changed. */
static void
rb_global(struct fbx_engine *e, const struct inmsg *in,
    struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_rb_plan g;
	struct rb_orgs ol;
	struct rb_run_rec run;
	struct fbxi_breaker b;
	uint32_t cmd_budget, dlv_budget, used_cmd = 0, used_dlv = 0;
	uint32_t new_orgs = 0;
	uint64_t cursor, snapshot, rbid, rbseq;
	size_t cap, i, nwd = 0;
	int did = 0, was_done = 0, repeat, rc;

	memset(&g, 0, sizeof(g));
	memset(&ol, 0, sizeof(ol));
	memset(&run, 0, sizeof(run));
	fbxi_rb_surveys_tidy(e);
	if (!req->u.rollback.sliced) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EINVALID,
		    "rollback: every_org needs a client that continues slices "
		    "(sliced, next_cursor, next_org)");
		goto out;
	}
	rc = rb_continue(e, req, 1, &run);
	if (rb_continue_err(e, in, req, rc, &run, 1))
		goto out;
	cursor = req->u.rollback.cursor;
	rbid = req->u.rollback.rollback_id;
	repeat = rb_repeat(e, req, 1, rbid);
	if (repeat < 0) {
		rc = -repeat;
		goto fail;
	}
	snapshot = cursor ? req->u.rollback.last_command_id : e->last_cmd_id;
	if (snapshot > e->last_cmd_id || FBX_DLV_CMD(cursor) > e->last_cmd_id ||
	    rbid > e->audit_seq ||
	    (cursor != 0 && req->u.rollback.org_cursor[0] == '\0')) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EINVALID,
		    "rollback: cursor, org_cursor, last_command_id or "
		    "rollback_id not given by this store");
		goto out;
	}
	rc = fbxi_brk_load(e->txn, "*", req->u.rollback.sel.breaker, &b, NULL);
	if (rc != FBX_OK)
		goto fail;
	if (b.trips == 0) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ENOT_FOUND,
		    "nothing to roll back: the global breaker of '%s' never "
		    "tripped",
		    req->u.rollback.sel.breaker);
		goto out;
	}
	fbxi_rb_budget(e, &cmd_budget, &dlv_budget);
	cap = req->u.rollback.limit ? req->u.rollback.limit : 100;
	if (cap > FBX_PAGE_MAX)
		cap = FBX_PAGE_MAX;
	g.rows = malloc(cap * sizeof(*g.rows));
	g.bo_rows = malloc(cap * sizeof(*g.bo_rows));
	ol.cap = (size_t)cmd_budget + 1;
	ol.v = malloc(ol.cap * sizeof(*ol.v));
	ol.from = req->u.rollback.org_cursor;
	if (g.rows == NULL || g.bo_rows == NULL || ol.v == NULL) {
		rc = FBX_ENOMEM;
		goto fail;
	}
	rc = fbx_store_org_list(e->txn, rb_orgs_cb, &ol);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		goto fail;
	/* the id the run gets if this slice is its first to do anything:
	 * the sequence of this slice's audit record, written last (after
	 * the turn's submits not audited yet: written now) */
	if (fbxi_audit_flush(e) != FBX_OK)
		goto out; /* the turn fails */
	rbseq = rbid ? rbid : e->audit_seq + 1;
	g.global = 1;
	snprintf(g.breaker, sizeof(g.breaker), "*/%s",
	    req->u.rollback.sel.breaker);
	for (i = 0; i < ol.n; i++) {
		struct rb_ctx r;
		uint64_t ocur = i == 0 && cursor != 0 &&
		        strcmp(ol.v[0], req->u.rollback.org_cursor) == 0
		    ? cursor
		    : RB_BEGUN;
		if (used_cmd >= cmd_budget || used_dlv >= dlv_budget) {
			snprintf(g.next_org, sizeof(g.next_org), "%s", ol.v[i]);
			g.next_cursor = ocur;
			break;
		}
		used_cmd++;
		rc = fbxi_rb_setup(&r, e, req, ol.v[i]);
		r.cmd_budget =
		    used_cmd < cmd_budget ? cmd_budget - used_cmd : 1;
		r.dlv_budget = dlv_budget - used_dlv;
		if (rc == FBX_OK)
			rc = fbxi_rb_plan_part(&r, ocur, snapshot);
		if (rc == FBX_OK && req->u.rollback.execute &&
		    r.nids + r.ncancel + r.ngroups + r.nwd + r.nsup + r.ninf >
		        0) {
			int is_new = 0;
			rc = fbxi_rb_exec(&r, rbseq);
			if (rc == FBX_OK)
				rc = rb_part_note(e, rbseq, r.org, &r.plan,
				    repeat, &is_new);
			nwd += r.nwd;
			new_orgs += is_new;
			did = 1;
		}
		if (rc == FBX_OK)
			rc = rb_merge_plan(&g, &r.plan, cap);
		if (g.norgs > 0 && rc == FBX_OK &&
		    (r.plan.commands > 0 || r.plan.before_onset > 0))
			snprintf(g.orgs[g.norgs - 1].org,
			    sizeof(g.orgs[g.norgs - 1].org), "%s", r.org);
		used_cmd += r.ncmd;
		used_dlv += r.ndlv;
		g.looked_at += r.ncmd + r.ndlv;
		if (rc == FBX_OK && r.next == 0 && r.sv != NULL)
			fbxi_rb_survey_drop(r.sv); /* this part is done */
		if (rc == FBX_OK && r.next != 0) {
			snprintf(g.next_org, sizeof(g.next_org), "%s", ol.v[i]);
			g.next_cursor = r.next;
		}
		if (i == 0) {
			g.onset_ms = r.plan.onset_ms;
			g.since_ms = r.plan.since_ms;
			g.until_ms = r.plan.until_ms;
		}
		fbxi_rb_free(&r);
		if (rc != FBX_OK)
			goto fail;
		if (g.next_cursor != 0)
			break;
	}
	g.last_command_id = snapshot;
	if (g.next_cursor == 0 && g.commands == 0 &&
	    (req->u.rollback.execute ? rbid == 0
	                             : cursor == 0 && g.before_onset == 0)) {
		snprintf(g.breaker, sizeof(g.breaker), "*/%s",
		    req->u.rollback.sel.breaker);
		rb_not_found(e, in, req, "any organisation", &g);
		goto out;
	}
	if (req->u.rollback.execute && did) {
		fbxi_audit(e, "*", req->actor, "rollback.slice",
		    req->u.rollback.note,
		    "{\"rollback_id\":%llu,\"incident\":\"%s\",\"global\":true,"
		    "\"org_cursor\":\"%s\",\"cursor\":%llu,\"next_org\":\"%s\","
		    "\"next_cursor\":%llu,\"orgs\":%zu,\"commands\":%u,"
		    "\"cancelled\":%u,\"compensated\":%u,\"in_flight\":%u,"
		    "\"withdrawn\":%zu,\"before_onset\":%u,"
		    "\"compensating_commands\":%zu}",
		    (unsigned long long)rbseq, req->u.rollback.sel.breaker,
		    req->u.rollback.org_cursor, (unsigned long long)cursor,
		    g.next_org, (unsigned long long)g.next_cursor, g.norgs,
		    g.commands, g.per_action[FBX_RB_CANCEL],
		    g.per_action[FBX_RB_COMPENSATE],
		    g.per_action[FBX_RB_IN_FLIGHT], nwd, g.before_onset,
		    g.ncomp);
		if (fbxi_err(e) != FBX_OK)
			goto out;
		/* where the slice began and where the next one goes on:
		 * "org/cursor", or the run's start and end */
		char at[FBX_ID_MAX + 24], nx[FBX_ID_MAX + 24];
		if (req->u.rollback.org_cursor[0] == '\0' && cursor == 0)
			snprintf(at, sizeof(at), "the start");
		else
			snprintf(at, sizeof(at), "%s/%llu",
			    req->u.rollback.org_cursor,
			    (unsigned long long)cursor);
		if (g.next_cursor == 0)
			snprintf(nx, sizeof(nx), "none: the run is through");
		else
			snprintf(nx, sizeof(nx), "%s/%llu", g.next_org,
			    (unsigned long long)g.next_cursor);
		FBX_LOGI("rollback %llu of global incident %s by %s, slice "
		         "from %s (next %s): %zu organisation%s, %u "
		         "commands, %u cancelled, %u compensated in %zu "
		         "commands, %u in flight (run again once settled), %zu "
		         "withdrawn (cancelled at the device's check-in if it "
		         "never got them), %u before the onset left",
		    (unsigned long long)rbseq, req->u.rollback.sel.breaker,
		    req->actor, at, nx, g.norgs, g.norgs == 1 ? "" : "s",
		    g.commands,
		    g.per_action[FBX_RB_CANCEL],
		    g.per_action[FBX_RB_COMPENSATE], g.ncomp,
		    g.per_action[FBX_RB_IN_FLIGHT], nwd, g.before_onset);
	}
	if (req->u.rollback.execute && (did || rbid != 0)) {
		g.rollback_id = rbseq;
		rc = rb_run_note(e, req, 1, rbseq, &g, new_orgs, repeat, &was_done,
		    &run);
		if (rc != FBX_OK)
			goto fail;
		if (g.next_cursor == 0 && !was_done) {
			rb_run_close(e, req, rbseq, &run);
			rb_log_through(e, req, rbseq, &run);
		}
		if (fbxi_err(e) != FBX_OK)
			goto out;
	}
	g.executed = req->u.rollback.execute ? 1 : 0;
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rollback = g;
	fbxi_console_reply(e, in, &rep);
	goto out;
fail:
	fbxi_set_err(e, rc);
out:
	free(ol.v);
	free(g.rows);
	free(g.bo_rows);
	free(g.comp_ids);
	free(g.orgs);
}

/* fbxi_handle_rollback - one slice of a rollback (plan or execute): the
 * survey of later commands first when "changed since" needs it, then the
 * selection from the cursor, within the slice's budget; executed, the
 * slice's cancels and compensations are journaled with one audit record
 * that names the run's rollback id (the first executed slice's audit
 * sequence) and the slice's range. A global incident over every
 * organisation goes to rb_global when the organisation may ask for it;
 * otherwise the organisation gets its own part. */
void
fbxi_handle_rollback(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct rb_ctx r;
	struct rb_run_rec run;
	uint64_t cursor, rbseq = 0;
	int rc, was_done = 0;

	memset(&r, 0, sizeof(r));
	if (req->u.rollback.sel.every_org) {
		if (rb_may_global(e, req->org)) {
			rb_global(e, in, req);
			return;
		}
		/* an affected organisation: its own part of it */
		req->u.rollback.sel.every_org = 0;
		req->u.rollback.sel.breaker_global = 1;
	}
	fbxi_rb_surveys_tidy(e);
	rc = rb_continue(e, req, 0, &run);
	if (rb_continue_err(e, in, req, rc, &run, 0))
		return;
	cursor = req->u.rollback.cursor;
	rc = fbxi_rb_setup(&r, e, req, req->org);
	if (rc != FBX_OK)
		goto fail;
	rc = fbxi_rb_plan_part(&r, cursor, req->u.rollback.last_command_id);
	if (rc == FBX_OK && req->u.rollback.rollback_id > e->audit_seq)
		rc = FBX_EINVALID;
	if (rc == FBX_EINVALID) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EINVALID,
		    "rollback: cursor, last_command_id or rollback_id not "
		    "given by this store");
		goto out;
	}
	if (rc == FBX_ENOT_FOUND)
		goto not_found;
	if (rc != FBX_OK)
		goto fail;
	if (r.next != 0 && !req->u.rollback.sliced) {
		fbxi_rb_refuse_unsliced(e, in, req, &r);
		goto out;
	}
	/* a run that selects nothing is not a rollback: said on its last
	 * slice when executed (no slice did anything, so it has no id), on
	 * a dry run that fits in one slice and lists nothing */
	if (r.next == 0 && r.plan.commands == 0 &&
	    (req->u.rollback.execute
	            ? req->u.rollback.rollback_id == 0
	            : cursor == 0 && r.plan.before_onset == 0)) {
		char where[FBX_ID_MAX + 32];
		snprintf(where, sizeof(where), "organisation '%s'", req->org);
		rb_not_found(e, in, req, where, &r.plan);
		goto out;
	}

	/* a slice may hold only deliveries to withdraw or mark, or
	 * superseded links to flag (its commands began in an earlier
	 * slice) */
	if (req->u.rollback.execute &&
	    r.nids + r.ncancel + r.ngroups + r.nwd + r.nsup + r.ninf > 0) {
		if (fbxi_audit_flush(e) != FBX_OK)
			goto out; /* the turn's submits first; the turn fails */
		rbseq = req->u.rollback.rollback_id ? req->u.rollback.rollback_id
		                                    : e->audit_seq + 1;
		rc = fbxi_rb_exec(&r, rbseq);
		if (rc != FBX_OK)
			goto fail;
		fbxi_audit(e, req->org, req->actor, "rollback", req->u.rollback.note,
		    "{\"rollback_id\":%llu,\"cursor\":%llu,\"next_cursor\":%llu,"
		    "\"first_command\":%llu,\"last_command\":%llu,"
		    "\"commands\":%u,\"cancelled\":%u,\"compensated\":%u,"
		    "\"irreversible\":%u,\"changed_since\":%u,"
		    "\"compensating_commands\":%zu,\"include_changed\":%s,"
		    "\"in_flight\":%u,\"withdrawn\":%zu,\"before_onset\":%u}",
		    (unsigned long long)rbseq, (unsigned long long)cursor,
		    (unsigned long long)r.next,
		    (unsigned long long)r.first_cmd,
		    (unsigned long long)r.last_cmd,
		    r.plan.commands, r.plan.per_action[FBX_RB_CANCEL],
		    r.plan.per_action[FBX_RB_COMPENSATE],
		    r.plan.per_action[FBX_RB_IRREVERSIBLE],
		    r.plan.per_action[FBX_RB_CHANGED], r.plan.ncomp,
		    req->u.rollback.include_changed ? "true" : "false",
		    r.plan.per_action[FBX_RB_IN_FLIGHT], r.nwd,
		    r.plan.before_onset);
		FBX_LOGI("rollback %llu in %s by %s, slice from %llu (next "
		         "%llu): %u commands, %u "
		         "cancelled, %u compensated in %zu commands, %u "
		         "irreversible, %u changed since, %u in flight (run "
		         "again once settled), %zu withdrawn (cancelled at the "
		         "device's check-in if it never got them), %u before "
		         "the onset left",
		    (unsigned long long)rbseq, req->org, req->actor,
		    (unsigned long long)cursor, (unsigned long long)r.next,
		    r.plan.commands, r.plan.per_action[FBX_RB_CANCEL],
		    r.plan.per_action[FBX_RB_COMPENSATE], r.plan.ncomp,
		    r.plan.per_action[FBX_RB_IRREVERSIBLE],
		    r.plan.per_action[FBX_RB_CHANGED],
		    r.plan.per_action[FBX_RB_IN_FLIGHT], r.nwd,
		    r.plan.before_onset);
	} else if (req->u.rollback.execute) {
		/* a slice with nothing to do writes no record */
		rbseq = req->u.rollback.rollback_id;
	}
	r.plan.executed = req->u.rollback.execute ? 1 : 0;
	r.plan.rollback_id = rbseq;
	r.plan.next_cursor = r.next;
	r.plan.last_command_id = r.snapshot;
	r.plan.looked_at = r.ncmd + r.ndlv;
	if (req->u.rollback.execute && rbseq != 0) {
		rc = rb_repeat(e, req, 0, rbseq);
		if (rc >= 0)
			rc = rb_run_note(e, req, 0, rbseq, &r.plan, 0, rc,
			    &was_done, &run);
		else
			rc = -rc;
		if (rc != FBX_OK)
			goto fail;
		if (r.next == 0 && !was_done)
			rb_log_through(e, req, rbseq, &run);
	}
	if (fbxi_err(e) != FBX_OK)
		goto out;
	if (r.next == 0 && r.sv != NULL)
		fbxi_rb_survey_drop(r.sv); /* the run is done */
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rollback = r.plan;
	fbxi_console_reply(e, in, &rep);
	goto out;
not_found:
	fbxi_console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
	    "nothing to roll back: no such command or incident in "
	    "organisation '%s'",
	    req->org);
	goto out;
fail:
	fbxi_set_err(e, rc);
out:
	fbxi_rb_free(&r);
}
