/*
 * audit.c: the tamper-evident audit trail: every operator action is a
 * record chained to the previous one with SHA-256 and committed with the
 * action; listing and verification of the chain.
 */
#include <errno.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <zmq.h>

#include "engine_int.h"

/* -------------------------------------------------------------- audit */

/* Audit records are chained: each carries the SHA-256 of the previous
 * record, and its own hash covers its sequence, that link and its body.
 * Changing, removing or reordering a stored record breaks the chain at
 * that point, which fbx "audit verify" reports.
 *
 * Layout (little-endian): ver u8, prev[32], hash[32], at_ms i64, then
 * org, actor, action as u8 length + bytes, note and params as u16 length
 * + bytes. hash = SHA-256(seq u64 BE || the record with hash zeroed). */
#define AUDIT_V1 1
#define AUDIT_HASH_OFF 33
#define AUDIT_MAX 1200

/* Test hook: while positive, each SHA-256 computation fails as if
 * OpenSSL had, and the count goes down by one. Never set in fuseboxd. */
int fbxi_test_crypto_fail;

int
fbxi_crypto_injected(void)
{
	if (fbxi_test_crypto_fail <= 0)
		return 0;
	fbxi_test_crypto_fail--;
	return 1;
}

/* fbxi_audit_hash - the hash of an audit record. Every OpenSSL return is
 * checked: a failure is an error, never a hash of zeros. @return FBX_OK
 * and out, FBX_ENOMEM, FBX_EINVALID (record too short) or FBX_ECRYPTO;
 * out is written only on success. */
int
fbxi_audit_hash(uint64_t seq, const uint8_t *rec, size_t len, uint8_t out[32])
{
	uint8_t zero[32], sb[8], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	int rc = FBX_ECRYPTO;

	memset(zero, 0, sizeof(zero));
	for (int i = 0; i < 8; i++)
		sb[i] = (uint8_t)(seq >> (56 - 8 * i));
	if (len < AUDIT_HASH_OFF + 32)
		return FBX_EINVALID;
	if (fbxi_crypto_injected())
		return FBX_ECRYPTO;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return FBX_ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, sb, sizeof(sb)) != 1 ||
	    EVP_DigestUpdate(ctx, rec, AUDIT_HASH_OFF) != 1 ||
	    EVP_DigestUpdate(ctx, zero, sizeof(zero)) != 1 ||
	    EVP_DigestUpdate(ctx, rec + AUDIT_HASH_OFF + 32,
	        len - AUDIT_HASH_OFF - 32) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	memcpy(out, md, 32);
	rc = FBX_OK;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

static size_t
put_str8(uint8_t *p, const char *s)
{
	size_t n = strnlen(s, 255);

	p[0] = (uint8_t)n;
	memcpy(p + 1, s, n);
	return n + 1;
}

static size_t
put_str16(uint8_t *p, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	p[0] = (uint8_t)(n & 0xff);
	p[1] = (uint8_t)(n >> 8);
	memcpy(p + 2, s, n);
	return n + 2;
}

/* audit - append one record for an operator action, in the turn's
 * transaction: it is durable exactly when the action is. */
void
fbxi_audit(struct fbx_engine *e, const char *org, const char *actor,
    const char *action, const char *note, const char *fmt, ...)
{
	uint8_t rec[AUDIT_MAX], *p = rec;
	char params[512];
	int64_t at = e->now;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(params, sizeof(params), fmt, ap);
	va_end(ap);
	*p++ = AUDIT_V1;
	memcpy(p, e->audit_last, 32);
	p += 32;
	memset(p, 0, 32); /* the hash, filled below */
	p += 32;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)((uint64_t)at >> (8 * i));
	p += put_str8(p, org ? org : "");
	p += put_str8(p, actor ? actor : "");
	p += put_str8(p, action);
	p += put_str16(p, note ? note : "", FBX_NOTE_MAX - 1);
	p += put_str16(p, params, sizeof(params) - 1);
	rc = fbxi_audit_hash(e->audit_seq + 1, rec, (size_t)(p - rec),
	    rec + AUDIT_HASH_OFF);
	if (rc != FBX_OK) {
		/* an unchained record is never written: the request fails */
		FBX_LOGE("audit record %llu not written: %s",
		    (unsigned long long)(e->audit_seq + 1), fbx_strerror(rc));
		fbxi_set_err(e, rc);
		return;
	}
	rc = fbx_store_audit_put(e->txn, e->audit_seq + 1, rec,
	    (size_t)(p - rec));
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	e->audit_seq++;
	memcpy(e->audit_last, rec + AUDIT_HASH_OFF, 32);
}

/* audit_decode - parse a stored record. @return 0 or -1 if malformed. */
int
fbxi_audit_decode(uint64_t seq, const uint8_t *rec, size_t len,
    struct fbx_audit_rec *out, uint8_t prev[32], uint8_t hash[32])
{
	const uint8_t *p = rec, *end = rec + len;
	size_t n;

	memset(out, 0, sizeof(*out));
	out->seq = seq;
	if (len < 1 + 64 + 8 + 3 + 4 || *p++ != AUDIT_V1)
		return -1;
	memcpy(prev, p, 32);
	p += 32;
	memcpy(hash, p, 32);
	p += 32;
	for (int i = 0; i < 8; i++)
		out->at_ms |= (int64_t)((uint64_t)*p++ << (8 * i));
#define RD8(dst)                                                             \
	do {                                                                 \
		if (p >= end || (n = *p++) >= sizeof(dst) ||                 \
		    (size_t)(end - p) < n)                                   \
			return -1;                                           \
		memcpy(dst, p, n);                                           \
		dst[n] = '\0';                                               \
		p += n;                                                      \
	} while (0)
#define RD16(dst)                                                            \
	do {                                                                 \
		if (end - p < 2)                                             \
			return -1;                                           \
		n = (size_t)p[0] | ((size_t)p[1] << 8);                      \
		p += 2;                                                      \
		if (n >= sizeof(dst) || (size_t)(end - p) < n)               \
			return -1;                                           \
		memcpy(dst, p, n);                                           \
		dst[n] = '\0';                                               \
		p += n;                                                      \
	} while (0)
	RD8(out->org);
	RD8(out->actor);
	RD8(out->action);
	RD16(out->note);
	RD16(out->params);
#undef RD8
#undef RD16
	if (p != end)
		return -1;
	for (int i = 0; i < 32; i++) {
		snprintf(out->hash + 2 * i, 3, "%02x", hash[i]);
		snprintf(out->prev + 2 * i, 3, "%02x", prev[i]);
	}
	return 0;
}

int
fbxi_audit_load_last(struct fbx_engine *e, fbx_txn *txn)
{
	uint8_t rec[AUDIT_MAX];
	size_t len = 0;
	uint64_t seq = 0;
	int rc = fbx_store_audit_last(txn, &seq, rec, sizeof(rec), &len);

	if (rc == FBX_ENOT_FOUND) {
		e->audit_seq = 0;
		memset(e->audit_last, 0, 32);
		return FBX_OK;
	}
	if (rc != FBX_OK)
		return rc;
	if (len < AUDIT_HASH_OFF + 32)
		return FBX_ECORRUPT;
	e->audit_seq = seq;
	memcpy(e->audit_last, rec + AUDIT_HASH_OFF, 32);
	return FBX_OK;
}

/* ------------------------------------------------------- audit requests */

struct audit_list_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	struct fbx_audit_rec *v;
	size_t n, cap;
	uint64_t last;
	int more;
};

static int
audit_list_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct audit_list_ctx *l = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	const char *want_actor = l->req->u.audit_list.actor;
	const char *want_action = l->req->u.audit_list.action;

	if (fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0)
		return 0;
	if (strcmp(a.org, l->req->org) != 0 && strcmp(a.org, "*") != 0)
		return 0; /* another organisation's record (global ones show) */
	if (want_actor[0] && strcmp(a.actor, want_actor) != 0)
		return 0;
	if (want_action[0] && strncmp(a.action, want_action,
	                          strlen(want_action)) != 0)
		return 0;
	if (l->req->u.audit_list.since_ms &&
	    a.at_ms < l->req->u.audit_list.since_ms)
		return 0;
	if (l->req->u.audit_list.until_ms &&
	    a.at_ms >= l->req->u.audit_list.until_ms)
		return 0;
	if (l->n == l->cap) {
		l->more = 1;
		return 1;
	}
	l->v[l->n++] = a;
	l->last = seq;
	return 0;
}

void
fbxi_handle_audit_list(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct audit_list_ctx l;
	uint32_t limit = req->u.audit_list.limit ? req->u.audit_list.limit : 100;
	int rc;

	if (limit > 1000)
		limit = 1000;
	memset(&l, 0, sizeof(l));
	l.e = e;
	l.req = req;
	l.cap = limit;
	l.v = malloc(limit * sizeof(*l.v));
	if (l.v == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbx_store_audit_scan(e->txn, req->u.audit_list.after + 1,
	    audit_list_cb, &l);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		free(l.v);
		fbxi_set_err(e, rc);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.audit.r = l.v;
	rep.u.audit.n = l.n;
	rep.u.audit.next_after = l.more ? l.last : 0;
	fbxi_console_reply(e, in, &rep);
	free(l.v);
}

struct verify_ctx {
	uint8_t prev[32];
	uint64_t records, broken_at, expect;
	char why[128];
	int err; /* the hash could not be computed */
};

static int
verify_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct verify_ctx *v = arg;
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32], want[32];

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
	return 0;
}

/* handle_audit_verify - walk the whole chain from the first record. */
void
fbxi_handle_audit_verify(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct verify_ctx v;
	int rc;

	memset(&v, 0, sizeof(v));
	v.expect = 1;
	rc = fbx_store_audit_scan(e->txn, 0, verify_cb, &v);
	if (rc == FBX_OK || rc == FBX_ENOT_FOUND)
		rc = v.err;
	if (rc == FBX_ECRYPTO || rc == FBX_ENOMEM) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "audit verify: a record's hash could not be computed (%s)",
		    fbx_strerror(rc));
		return;
	}
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		fbxi_set_err(e, rc);
		return;
	}
	if (v.broken_at == 0 && v.records != e->audit_seq) {
		v.broken_at = v.records + 1;
		snprintf(v.why, sizeof(v.why),
		    "the chain ends at %llu; the last record written was %llu",
		    (unsigned long long)v.records,
		    (unsigned long long)e->audit_seq);
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.verify.records = v.records;
	rep.u.verify.broken_at = v.broken_at;
	snprintf(rep.u.verify.why, sizeof(rep.u.verify.why), "%s", v.why);
	if (v.broken_at != 0)
		FBX_LOGE("audit chain broken at %llu: %s",
		    (unsigned long long)v.broken_at, v.why);
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

