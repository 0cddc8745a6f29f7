/*
 * audit_query.c: the audit trail read: AuditListRequest (pages through the
 * audit indexes, filters by organisation, actor, action and time),
 * AuditVerifyRequest (the chain checked in slices from a checkpoint) and
 * the list of organisations, in a child transaction. Read-only, except
 * that a verify slice moves the verify checkpoint up when it may write
 * (not while the store is degraded).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "audit_int.h"

/* Reads one listing with an action filter may spend (entries and
 * records, about 5,000 records: a few milliseconds). */
#define AUDIT_FILTER_READS 10000

struct audit_list_ctx {
	const struct fbx_console_req *req;
	struct fbx_audit_rec *v;
	size_t n, cap;
};

static int
audit_list_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct audit_list_ctx *l = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	const char *want_action = l->req->u.audit_list.action;

	/* org, actor and the window were matched through the indexes */
	if (fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0)
		return 0;
	if (want_action[0] && strncmp(a.action, want_action,
	                          strlen(want_action)) != 0)
		return 0;
	if (l->n == l->cap)
		return 1; /* offered again on the next page */
	l->v[l->n++] = a;
	return 0;
}

/* fbxi_audit_list_page - one page of the listing req asks for (org,
 * actor, action prefix, window, after): at most cap records into v, read
 * through the store's indexes with a budget of about two reads per
 * record of the page (AUDIT_FILTER_READS with an action filter), so a
 * page costs the same at any log size. A page may come back short, even
 * empty, with a cursor when the action filter skipped what the budget
 * allowed to read. @param[out] next_after
 * the cursor of the next page, 0 = no more. @return FBX_OK or a store
 * error; n and next_after are written only on success. */
int
fbxi_audit_list_page(fbx_txn *txn, const struct fbx_console_req *req,
    struct fbx_audit_rec *v, size_t cap, size_t *n, uint64_t *next_after)
{
	struct fbx_audit_query q;
	struct audit_list_ctx l;
	uint64_t next = 0;
	int rc;

	if (cap == 0 || cap > FBX_PAGE_MAX)
		return FBX_EINVALID;
	memset(&l, 0, sizeof(l));
	l.req = req;
	l.v = v;
	l.cap = cap;
	memset(&q, 0, sizeof(q));
	q.org = req->org;
	q.actor = req->u.audit_list.actor;
	q.since_ms = req->u.audit_list.since_ms;
	q.until_ms = req->u.audit_list.until_ms;
	q.after = req->u.audit_list.after;
	/* an index entry and a record per row, and the entry after the
	 * page that tells whether there is more; the action prefix is not
	 * indexed, so with it a call may read up to AUDIT_FILTER_READS
	 * records to fill its page: bounded, whatever the log's size */
	q.max_reads = (uint32_t)(2 * cap + 2);
	if (req->u.audit_list.action[0] && q.max_reads < AUDIT_FILTER_READS)
		q.max_reads = AUDIT_FILTER_READS;
	rc = fbx_store_audit_query(txn, &q, audit_list_cb, &l, &next);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc != FBX_OK)
		return rc;
	*n = l.n;
	*next_after = next;
	return FBX_OK;
}

void
fbxi_handle_audit_list(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_audit_rec *v;
	uint32_t limit = req->u.audit_list.limit ? req->u.audit_list.limit : 100;
	uint64_t next = 0;
	size_t n = 0;
	int rc;

	if (limit > 1000)
		limit = 1000;
	v = malloc(limit * sizeof(*v));
	if (v == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbxi_audit_list_page(e->txn, req, v, limit, &n, &next);
	if (rc != FBX_OK) {
		free(v);
		fbxi_set_err(e, rc);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.audit.r = v;
	rep.u.audit.n = n;
	rep.u.audit.next_after = next;
	fbxi_console_reply(e, in, &rep);
	free(v);
}

struct verify_ctx {
	uint8_t prev[32];
	uint64_t records, broken_at, expect, max;
	uint64_t good; /* the last record found intact; prev is its hash */
	char why[128];
	int err; /* the hash could not be computed */
	int64_t deadline; /* fbxi_deadline_us; 0 = none */
	int stopped;      /* the deadline cut the slice short */
};

static int
verify_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct verify_ctx *v = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32], want[32];

	if (v->records == v->max)
		return 1; /* the slice is done */
	if ((v->records & 1023) == 1023 && fbxi_past_us(v->deadline)) {
		v->stopped = 1; /* the turn's share is used up */
		return 1;
	}
	v->records++;
	if (seq != v->expect) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu is missing (found %llu next)",
		    (unsigned long long)v->expect, (unsigned long long)seq);
		return 1;
	}
	v->expect = seq + 1;
	if (fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why), "record %llu is malformed",
		    (unsigned long long)seq);
		return 1;
	}
	if (memcmp(prev, v->prev, 32) != 0) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu does not link to the record before it",
		    (unsigned long long)seq);
		return 1;
	}
	v->err = fbxi_audit_hash(seq, rec, len, want);
	if (v->err != FBX_OK)
		return 1; /* not a verdict on the chain: the request fails */
	if (memcmp(want, hash, 32) != 0) {
		v->broken_at = seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu was altered: its hash does not match",
		    (unsigned long long)seq);
		return 1;
	}
	memcpy(v->prev, hash, 32);
	v->good = seq;
	return 0;
}

/* check_start - the record a slice starts after must still hash to the
 * hash the slice links from (the checkpoint's, or the previous slice's).
 * @return FBX_OK (v->broken_at set when it does not), or an error. */
static int
check_start(fbx_txn *txn, const struct fbx_audit_mark *m,
    struct verify_ctx *v)
{
	uint8_t rec[AUDIT_MAX], want[32];
	size_t len = 0;
	int rc = fbx_store_audit_get(txn, m->seq, rec, sizeof(rec), &len);

	if (rc == FBX_ENOT_FOUND || rc == FBX_ECORRUPT ||
	    (rc == FBX_OK && len < AUDIT_HASH_OFF + 32)) {
		v->broken_at = m->seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu, verified before, is missing or malformed",
		    (unsigned long long)m->seq);
		return FBX_OK;
	}
	if (rc != FBX_OK)
		return rc;
	rc = fbxi_audit_hash(m->seq, rec, len, want);
	if (rc != FBX_OK)
		return rc;
	if (memcmp(want, m->hash, 32) != 0 ||
	    memcmp(rec + AUDIT_HASH_OFF, m->hash, 32) != 0) {
		v->broken_at = m->seq;
		snprintf(v->why, sizeof(v->why),
		    "record %llu was altered after it was verified",
		    (unsigned long long)m->seq);
	}
	return FBX_OK;
}

/* fbxi_audit_verify_slice - check one slice of the chain for req (full
 * from the start, full after req's after_seq/after_hash, or incremental
 * from the store's checkpoint) up to at most max_records records, and
 * fill rep->u.verify. `head` is the last record written. With can_write
 * the checkpoint moves: forward over a slice that starts inside the
 * verified part and links intact; back before a break found at or
 * before it (so incremental verify reports the break too).
 * @return FBX_OK (the verdict is in rep, also "broken"), FBX_ESTATE
 * (after_seq was pruned), FBX_EINVALID (after_seq past the head),
 * FBX_ECRYPTO or FBX_ENOMEM (a hash could not be computed), a store
 * error. */
int
fbxi_audit_verify_slice(fbx_txn *txn, const struct fbx_console_req *req,
    uint64_t head, int can_write, struct fbx_console_rep *rep)
{
	struct fbx_audit_mark anchor, cp, start, last;
	struct verify_ctx v;
	int rc, have_cp;

	memset(&anchor, 0, sizeof(anchor));
	rc = fbx_store_audit_mark_get(txn, FBX_AUDIT_ANCHOR, &anchor);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	memset(&cp, 0, sizeof(cp));
	rc = fbx_store_audit_mark_get(txn, FBX_AUDIT_VERIFIED, &cp);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	have_cp = rc == FBX_OK && cp.seq > anchor.seq;
	if (!have_cp)
		cp = anchor;
	if (req->u.audit_verify.incremental) {
		start = cp;
	} else if (req->u.audit_verify.after_seq == 0) {
		start = anchor;
	} else {
		start.seq = req->u.audit_verify.after_seq;
		if (fbxi_audit_unhex32(req->u.audit_verify.after_hash, start.hash) != 0)
			return FBX_EINVALID;
		if (start.seq < anchor.seq)
			return FBX_ESTATE; /* pruned meanwhile: start again */
		if (start.seq > head)
			return FBX_EINVALID;
	}
	memset(&v, 0, sizeof(v));
	v.max = req->u.audit_verify.max_records ?
	    req->u.audit_verify.max_records : FBX_VERIFY_SLICE;
	if (v.max > FBX_VERIFY_SLICE_MAX)
		v.max = FBX_VERIFY_SLICE_MAX;
	/* a default slice is also bounded in time; an explicit
	 * max_records is served exactly */
	if (req->u.audit_verify.max_records == 0)
		v.deadline = fbxi_deadline_us(FBXI_READ_SLICE_US);
	v.expect = start.seq + 1;
	v.good = start.seq;
	memcpy(v.prev, start.hash, 32);
	if (start.seq > head) {
		v.broken_at = head + 1;
		snprintf(v.why, sizeof(v.why),
		    "the chain ends at %llu; %llu was verified before",
		    (unsigned long long)head, (unsigned long long)start.seq);
	} else if (start.seq > anchor.seq) {
		rc = check_start(txn, &start, &v);
		if (rc != FBX_OK)
			return rc;
	}
	if (v.broken_at == 0 && start.seq < head) {
		rc = fbx_store_audit_scan(txn, start.seq + 1, verify_cb, &v);
		if (rc == FBX_OK || rc == FBX_ENOT_FOUND)
			rc = v.err;
		if (rc != FBX_OK)
			return rc;
	}
	/* the last record found intact */
	last.seq = v.good;
	memcpy(last.hash, v.prev, 32);
	if (v.broken_at != 0 && v.broken_at <= start.seq) {
		last = anchor; /* the start itself is bad: from the anchor */
	} else if (v.broken_at == 0 && last.seq < head && v.records < v.max &&
	    !v.stopped) {
		/* the scan ran out of records before the head */
		v.broken_at = last.seq + 1;
		snprintf(v.why, sizeof(v.why),
		    "the chain ends at %llu; the last record written was %llu",
		    (unsigned long long)last.seq, (unsigned long long)head);
	}
	if (can_write) {
		struct fbx_audit_mark *m = NULL;
		if (v.broken_at != 0 && v.broken_at <= cp.seq)
			m = &last; /* behind the break: incremental sees it */
		else if (v.broken_at == 0 && start.seq <= cp.seq &&
		    last.seq > cp.seq)
			m = &last; /* linked from the verified part */
		if (m != NULL) {
			rc = fbx_store_audit_mark_put(
			    txn, FBX_AUDIT_VERIFIED, m);
			if (rc != FBX_OK)
				return rc;
		}
	}
	rep->u.verify.records = v.records;
	rep->u.verify.broken_at = v.broken_at;
	snprintf(rep->u.verify.why, sizeof(rep->u.verify.why), "%s", v.why);
	rep->u.verify.verified_seq = last.seq;
	rep->u.verify.verified_hash[0] = '\0';
	if (last.seq != 0)
		fbxi_audit_hex32(last.hash, rep->u.verify.verified_hash);
	rep->u.verify.complete = v.broken_at != 0 || last.seq >= head;
	rep->u.verify.head_seq = head;
	rep->u.verify.anchor_seq = anchor.seq;
	return FBX_OK;
}

/* handle_audit_verify - one slice of the chain (fbxi_audit_verify_slice).
 * On a full disk (degraded) the verdict is served, the checkpoint is
 * left where it is. */
void
fbxi_handle_audit_verify(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rc = fbxi_audit_verify_slice(e->txn, req, e->audit_seq, !e->degraded,
	    &rep);
	if (rc == FBX_ECRYPTO || rc == FBX_ENOMEM) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "audit verify: a record's hash could not be computed (%s)",
		    fbx_strerror(rc));
		return;
	}
	if (rc == FBX_ESTATE || rc == FBX_EINVALID) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "audit verify: after_seq %llu is %s; start again",
		    (unsigned long long)req->u.audit_verify.after_seq,
		    rc == FBX_ESTATE ? "pruned" : "past the last record");
		return;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (rep.u.verify.broken_at != 0)
		FBX_LOGE("audit chain broken at %llu: %s",
		    (unsigned long long)rep.u.verify.broken_at,
		    rep.u.verify.why);
	fbxi_console_reply(e, in, &rep);
}

struct orgs_ctx {
	fbx_id *orgs;
	uint32_t *devs;
	size_t n, cap;
	int err;
};

static int
orgs_cb(void *arg, const char *org, uint32_t devices)
{
	struct orgs_ctx *o = arg;

	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 64;
		fbx_id *no;
		uint32_t *nd;
		if (ncap > 100000)
			return 1;
		no = realloc(o->orgs, ncap * sizeof(*no));
		if (no == NULL) {
			o->err = FBX_ENOMEM;
			return 1;
		}
		o->orgs = no;
		nd = realloc(o->devs, ncap * sizeof(*nd));
		if (nd == NULL) {
			o->err = FBX_ENOMEM;
			return 1;
		}
		o->devs = nd;
		o->cap = ncap;
	}
	snprintf(o->orgs[o->n], sizeof(o->orgs[o->n]), "%s", org);
	o->devs[o->n] = devices;
	o->n++;
	return 0;
}

void
fbxi_handle_list_orgs(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct orgs_ctx o;
	int rc;

	memset(&o, 0, sizeof(o));
	rc = fbx_store_org_list(e->txn, orgs_cb, &o);
	if (rc == FBX_OK)
		rc = o.err;
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		goto out;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.orgs.orgs = o.orgs;
	rep.u.orgs.devices = o.devs;
	rep.u.orgs.n = o.n;
	fbxi_console_reply(e, in, &rep);
out:
	free(o.orgs);
	free(o.devs);
}
