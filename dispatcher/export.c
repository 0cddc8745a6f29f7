/*
 * export.c: the journal as JSON Lines, in pages (ExportRequest): commands
 * with their counts, each delivery's outcome and the audit records, for a
 * time window or one command; written by jansson, a page never has a gap.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "fbx_json.h"

struct jbuf {
	char *p;
	size_t len, cap, max;
	int full;
};

/* jline - append o as one compact line (taking o), written by jansson
 * (issue 12 item 6). A page stops after the record that crosses max:
 * the buffer may hold that record and no more; a line that cannot be
 * written sets full, which refuses the page (never a silent gap). The
 * buffer stays NUL-terminated. */
static void
jline(struct jbuf *b, json_t *o)
{
	size_t n;

	if (o == NULL || b->full) {
		b->full = 1;
		json_decref(o);
		return;
	}
	n = json_dumpb(o, NULL, 0, JSON_COMPACT);
	while (n > 0 && b->len + n + 2 > b->cap) {
		char *np;
		if (b->cap >= b->max + (1u << 20)) {
			n = 0;
			break;
		}
		np = realloc(b->p, b->cap * 2);
		if (np == NULL) {
			n = 0;
			break;
		}
		b->p = np;
		b->cap *= 2;
	}
	if (n == 0 || json_dumpb(o, b->p + b->len, n, JSON_COMPACT) != n) {
		b->full = 1;
	} else {
		b->len += n;
		b->p[b->len++] = '\n';
		b->p[b->len] = '\0';
	}
	json_decref(o);
}

/* jcounts - the delivery counts by state name */
static json_t *
jcounts(const uint32_t *counts)
{
	json_t *o = json_object();

	for (int s = 1; o != NULL && s < FBX_D_COUNT; s++)
		fbx_json_set_int(o, fbx_dstate_name(s), counts[s]);
	return o;
}

struct export_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	struct jbuf b;
	uint64_t cursor;  /* delivery id space, or AUDIT_PHASE | seq */
	uint64_t resume;  /* where the next page starts, 0 = end */
	const struct fbx_command *cur;
	int stop;
	int64_t deadline; /* fbxi_deadline_us: the page ends after it */
};

/* export_full - whether the page ends here: its bytes, or its time once
 * it holds something */
static int
export_full(const struct export_ctx *x)
{
	return x->b.len >= x->b.max ||
	    (x->b.len > 0 && fbxi_past_us(x->deadline));
}

#define EXPORT_AUDIT (1ull << 63)
/* audit index entries and records one export page may read */
#define EXPORT_AUDIT_READS 20000
/* set when a page ended among a command's deliveries: its line is out */
#define EXPORT_DLV (1ull << 62)

static int
export_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct export_ctx *x = arg;
	json_t *o, *h;

	if (export_full(x)) {
		x->resume = EXPORT_DLV | d->id;
		x->stop = 1;
		return 1;
	}
	o = json_object();
	h = json_array();
	if (o != NULL && h != NULL) {
		fbx_json_set_str(o, "kind", "delivery");
		fbx_json_set_str(o, "org", x->cur->org);
		fbx_json_set_int(o, "command", (long long)x->cur->id);
		fbx_json_set_int(o, "delivery", (long long)d->id);
		fbx_json_set_str(o, "device", d->device);
		fbx_json_set_str(o, "state", fbx_dstate_name(d->state));
		fbx_json_set_int(o, "code", d->code);
		fbx_json_set_int(o, "attempts", d->attempts);
		fbx_json_set_int(o, "updated_ms", d->updated_ms);
		for (unsigned i = 0; i < d->nhist; i++)
			json_array_append_new(h,
			    json_pack("{s:s,s:i,s:I}", "state",
				fbx_dstate_name(d->hist[i].state), "code",
				(int)d->hist[i].code, "at_ms",
				(json_int_t)d->hist[i].at_ms));
		fbx_json_set(o, "history", h);
		h = NULL;
	}
	json_decref(h);
	jline(&x->b, o);
	return 0;
}

static int
export_cmd_cb(void *arg, const struct fbx_command *c0)
{
	struct export_ctx *x = arg;
	struct fbx_command c;
	struct cmdc *cc = fbxi_cmd_find(x->e, c0->id);
	uint64_t from = FBX_DLV_ID(c0->id, 0);
	int rc;

	if (export_full(x)) {
		x->resume = from;
		x->stop = 1;
		return 1;
	}
	c = cc ? cc->c : *c0;
	if ((x->cursor & EXPORT_DLV) &&
	    FBX_DLV_CMD(x->cursor & ~EXPORT_DLV) == c0->id) {
		/* resume among this command's deliveries */
		from = x->cursor & ~EXPORT_DLV;
	} else {
		json_t *o = json_object();
		if (o != NULL) {
			fbx_json_set_str(o, "kind", "command");
			fbx_json_set_str(o, "org", c.org);
			fbx_json_set_int(o, "command", (long long)c.id);
			fbx_json_set_str(o, "type", fbx_cmd_type_name(c.type));
			fbx_json_set_str(o, "origin",
			    fbx_origin_name(c.origin));
			fbx_json_set_str(o, "reason", c.reason);
			fbx_json_set_str(o, "actor", c.actor);
			fbx_json_set_str(o, "approved_by", c.approved_by);
			fbx_json_set_str(o, "target",
			    fbx_target_kind_name(c.target_kind));
			fbx_json_set_str(o, "group", c.group);
			fbx_json_set_str(o, "platform",
			    fbx_platform_name(c.platform));
			fbx_json_set_str(o, "state", fbx_cstate_name(c.state));
			fbx_json_set_int(o, "created_ms", c.created_ms);
			fbx_json_set_int(o, "expires_ms", c.expires_ms);
			fbx_json_set_int(o, "deliveries", c.ndeliveries);
			fbx_json_set_str(o, "held_by", c.held_by);
			fbx_json_set_str(o, "resolved_by", c.resolved_by);
			fbx_json_set_str(o, "note", c.note);
			fbx_json_set(o, "counts", jcounts(c.counts));
		}
		jline(&x->b, o);
	}
	x->cur = &c;
	rc = fbx_store_dlv_scan(x->e->txn, from,
	    FBX_DLV_ID(c0->id, 0) + c.ndeliveries, 0, export_dlv_cb, x);
	x->cur = NULL;
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		x->stop = 1;
		fbxi_set_err(x->e, rc);
		return 1;
	}
	return x->stop;
}

static int
export_audit_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct export_ctx *x = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	json_t *o;

	if (export_full(x)) {
		x->resume = EXPORT_AUDIT | seq;
		x->stop = 1;
		return 1;
	}
	if (fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0 ||
	    (strcmp(a.org, x->req->org) != 0 && strcmp(a.org, "*") != 0))
		return 0;
	if ((x->req->u.export_.since_ms && a.at_ms < x->req->u.export_.since_ms) ||
	    (x->req->u.export_.until_ms && a.at_ms >= x->req->u.export_.until_ms))
		return 0;
	o = json_object();
	if (o != NULL) {
		fbx_json_set_str(o, "kind", "audit");
		fbx_json_set_int(o, "seq", (long long)seq);
		fbx_json_set_int(o, "at_ms", a.at_ms);
		fbx_json_set_str(o, "org", a.org);
		fbx_json_set_str(o, "actor", a.actor);
		fbx_json_set_str(o, "action", a.action);
		fbx_json_set_str(o, "note", a.note);
		/* the record's parameters are JSON text: embedded as a
		 * value, so a consumer gets an object; text that does not
		 * parse is embedded as a string (fbx_json_params) */
		fbx_json_set(o, "params", fbx_json_params(a.params));
		fbx_json_set_str(o, "prev", a.prev);
		fbx_json_set_str(o, "hash", a.hash);
	}
	jline(&x->b, o);
	return 0;
}

/* handle_export - one page of JSON Lines: the organisation's commands in
 * the window with their deliveries and state histories, then its audit
 * records; the cursor says where the next page starts. */
void
fbxi_handle_export(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct export_ctx x;
	uint64_t cursor = req->u.export_.cursor;
	int rc = FBX_OK;

	memset(&x, 0, sizeof(x));
	x.e = e;
	x.req = req;
	x.cursor = cursor;
	/* a page ends after the record that crosses max: keep well under
	 * the reply's size cap */
	x.b.max = req->u.export_.max_bytes ? req->u.export_.max_bytes
	                                   : (1u << 20);
	if (x.b.max > (4u << 20))
		x.b.max = 4u << 20;
	x.b.cap = 65536;
	x.deadline = fbxi_deadline_us(FBXI_READ_SLICE_US);
	x.b.p = malloc(x.b.cap);
	if (x.b.p == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	x.b.p[0] = '\0';
	if (!(cursor & EXPORT_AUDIT)) {
		rc = fbx_store_cmd_list(e->txn, req->org,
		    req->u.export_.since_ms, req->u.export_.until_ms,
		    cursor ? FBX_DLV_CMD(cursor & ~EXPORT_DLV) - 1 : 0,
		    0, export_cmd_cb, &x);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
		if (!x.stop)
			cursor = EXPORT_AUDIT;
	}
	if (rc == FBX_OK && !x.stop) {
		/* through the audit indexes, a bounded number of reads a
		 * page: a scan of the whole log held the loop for seconds */
		struct fbx_audit_query q;
		uint64_t start = cursor & ~EXPORT_AUDIT, next = 0;
		memset(&q, 0, sizeof(q));
		q.org = req->org;
		q.since_ms = req->u.export_.since_ms;
		q.until_ms = req->u.export_.until_ms;
		q.after = start > 0 ? start - 1 : 0;
		q.max_reads = EXPORT_AUDIT_READS;
		rc = fbx_store_audit_query(e->txn, &q, export_audit_cb, &x, &next);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
		if (rc == FBX_OK && !x.stop && next != 0) {
			/* the read budget ran out: the next page goes on */
			x.stop = 1;
			x.resume = EXPORT_AUDIT | (next + 1);
		}
	}
	if (rc != FBX_OK || fbxi_err(e) != FBX_OK) {
		fbxi_set_err(e, rc != FBX_OK ? rc : fbxi_err(e));
		free(x.b.p);
		return;
	}
	if (x.b.full) {
		/* never a silent gap: refuse rather than drop records */
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ETOOBIG,
		    "export page overflow; ask for smaller pages");
		free(x.b.p);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.export_.jsonl = x.b.p;
	rep.u.export_.len = x.b.len;
	rep.u.export_.next_cursor = x.stop ? x.resume : 0;
	fbxi_console_reply(e, in, &rep);
	free(x.b.p);
}
