/*
 * audit.c: the tamper-evident audit trail: every operator action is a
 * record chained to the previous one with SHA-256 and committed with the
 * action; listing and verification of the chain; retention, which
 * archives the oldest records to files before it deletes them and keeps
 * the last one's hash as the anchor the chain starts from.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <zmq.h>

#include <jansson.h>

#include "fbx_json.h"

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
#define AUDIT_PARAMS_MAX 511 /* the wire's limit (protocol.md) */

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

/* The SHA-256 implementation, fetched once: OpenSSL 3 looks the
 * algorithm up again on every EVP_DigestInit_ex given EVP_sha256() (a
 * third of a record's hashing time). EVP_sha256() if the fetch failed. */
static EVP_MD *audit_md;
static pthread_once_t audit_md_once = PTHREAD_ONCE_INIT;

static void
audit_md_fetch(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	audit_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#endif
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
	(void)pthread_once(&audit_md_once, audit_md_fetch);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return FBX_ENOMEM;
	if (EVP_DigestInit_ex(ctx, audit_md != NULL ? audit_md : EVP_sha256(),
	        NULL) != 1 ||
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

/* fbxi_audit_params_json - the parameters as jansson writes them: the call
 * sites fill a template with identifiers and numbers; what they made is
 * parsed and written again (compact, members in their order), so a
 * record never holds JSON that a reader cannot parse; text already in
 * that form (fbx_json_canonical) is kept without the round trip. Text
 * that does not parse (a bug in a template) is kept as {"text": ...},
 * logged. */
void
fbxi_audit_params_json(const char *action, char *params, size_t cap)
{
	json_t *v;
	char *out;

	/* the templates' usual output is already in jansson's form: kept
	 * as it is, without the parse and the write (most of a submit's
	 * audit cost) */
	if (fbx_json_canonical(params))
		return;
	v = fbx_json_params(params); /* a string if it did not parse */
	if (v != NULL && !json_is_object(v)) {
		FBX_LOGW("audit %s: parameters are not a JSON object: kept as "
		         "text",
		    action);
		v = json_pack("{s:o}", "text", v);
	}
	out = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER)
	                : NULL;
	if (out != NULL && strlen(out) < cap)
		snprintf(params, cap, "%s", out);
	else if (out != NULL || v == NULL)
		snprintf(params, cap, "{}"); /* out of memory or too long */
	free(out);
	json_decref(v);
}

/* audit_write - chain and append one record whose params are final
 * (JSON as jansson writes it), in the current transaction: it is durable
 * exactly when the action is. An error is latched (fbxi_set_err). */
static void
audit_write(struct fbx_engine *e, const char *org, const char *actor,
    const char *action, const char *note, const char *params)
{
	uint8_t rec[AUDIT_MAX], *p = rec;
	int64_t at = e->now;
	int rc;

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
	p += put_str16(p, params, AUDIT_PARAMS_MAX);
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

/* fbxi_audit - append one record for an operator action, after the
 * submits of the turn not audited yet (so the chain keeps the order of
 * the actions). */
void
fbxi_audit(struct fbx_engine *e, const char *org, const char *actor,
    const char *action, const char *note, const char *fmt, ...)
{
	char params[AUDIT_PARAMS_MAX + 1];
	va_list ap;

	if (fbxi_audit_flush(e) != FBX_OK)
		return; /* the turn fails */
	va_start(ap, fmt);
	if (vsnprintf(params, sizeof(params), fmt, ap) >= (int)sizeof(params))
		FBX_LOGE("audit %s: parameters cut at %zu bytes", action,
		    sizeof(params) - 1);
	va_end(ap);
	fbxi_audit_params_json(action, params, sizeof(params));
	audit_write(e, org, actor, action, note, params);
}

/* ---- submit records, batched per turn -------------------------------
 *
 * A submit's own record was about a quarter of what a submit cost (at
 * 32 x 8, 12.5 % of the engine thread and its pages in the commit): the
 * record, its audit_time entry, its share of the deferred audit_org and
 * audit_actor entries, the hash. The submits of a turn are kept here
 * instead and written when the turn commits (or before any other record,
 * before a request that is not a submit or runs in a child transaction,
 * before a rollback takes its id): the submits of one organisation, actor
 * and note (the breaker that holds them) share a record, "commands" the
 * list of their fields, each without the fields at their default value
 * (no reason, group or approver, no rollout, no settle time), as many as
 * fit in the params' 511 bytes. A record for a single submit keeps the
 * form it always had: {"command":ID,"type":...} with every field. */
struct fbxi_abent {
	fbx_id org, actor;
	char note[FBX_NOTE_MAX];
	uint64_t id;
	int64_t settle_until_ms;
	uint32_t devices;
	int type, origin, target_kind, state, rollout;
	char reason[FBX_ID_MAX + 1], group[FBX_ID_MAX + 1];
	char approved_by[FBX_ID_MAX + 1];
	uint64_t key; /* hash of org, actor and note: a quick unequal */
	int done;     /* written (in fbxi_audit_flush) */
};

/* the appenders of submit_fields: the caller's buffer holds the longest
 * entry (fixed text, three identifiers of at most FBX_ID_MAX bytes, the
 * names and numbers: under 512 bytes) */
static char *
app_s(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static char *
app_u(char *p, uint64_t v)
{
	char t[20];
	size_t n = 0;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = t[--n];
	return p;
}

/* plain - text that JSON holds between quotes as it is (printable ASCII
 * without '"' and '\\'): what an identifier is; other text makes the
 * entry take the single record's path, which re-writes it with jansson */
static int
plain(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

/* submit_fields - a submit's fields as a JSON object into buf
 * (AUDIT_PARAMS_MAX + 1 bytes). full: every field, the params of a
 * record of one submit (the text fields as they are: the caller passes
 * them through fbxi_audit_params_json); else its entry in a shared
 * record, the fields at their defaults left out. @return its length, or
 * -1 for an entry whose text fields are not plain */
static int
submit_fields(const struct fbxi_abent *a, int full, char *buf)
{
	char *p = buf;

	if (!full && (!plain(a->reason) || !plain(a->group) ||
	                 !plain(a->approved_by) || a->settle_until_ms < 0))
		return -1;
	p = app_s(p, "{\"command\":");
	p = app_u(p, a->id);
	p = app_s(p, ",\"type\":\"");
	p = app_s(p, fbx_cmd_type_name(a->type));
	p = app_s(p, "\",\"origin\":\"");
	p = app_s(p, fbx_origin_name(a->origin));
	if (full || a->reason[0] != '\0') {
		p = app_s(p, "\",\"reason\":\"");
		p = app_s(p, a->reason);
	}
	p = app_s(p, "\",\"target\":\"");
	p = app_s(p, fbx_target_kind_name(a->target_kind));
	if (full || a->group[0] != '\0') {
		p = app_s(p, "\",\"group\":\"");
		p = app_s(p, a->group);
	}
	p = app_s(p, "\",\"devices\":");
	p = app_u(p, a->devices);
	p = app_s(p, ",\"state\":\"");
	p = app_s(p, fbx_cstate_name(a->state));
	p = app_s(p, "\"");
	if (full || a->approved_by[0] != '\0') {
		p = app_s(p, ",\"approved_by\":\"");
		p = app_s(p, a->approved_by);
		p = app_s(p, "\"");
	}
	if (full || a->rollout)
		p = app_s(p, a->rollout ? ",\"rollout\":true"
		                        : ",\"rollout\":false");
	if (full || a->settle_until_ms > 0) {
		p = app_s(p, ",\"settle_until_ms\":");
		if (a->settle_until_ms < 0)
			*p++ = '-';
		p = app_u(p, a->settle_until_ms < 0
		        ? (uint64_t)0 - (uint64_t)a->settle_until_ms
		        : (uint64_t)a->settle_until_ms);
	}
	*p++ = '}';
	*p = '\0';
	return (int)(p - buf);
}

/* key_hash - FNV-1a of org, actor and note, each with its end */
static uint64_t
key_hash(const struct fbxi_abent *a)
{
	const char *f[3] = { a->org, a->actor, a->note };
	uint64_t h = 14695981039346656037ull;

	for (int k = 0; k < 3; k++) {
		const unsigned char *p = (const unsigned char *)f[k];
		do {
			h = (h ^ *p) * 1099511628211ull;
		} while (*p++ != '\0');
	}
	return h;
}

static int
same_key(const struct fbxi_abent *a, const struct fbxi_abent *b)
{
	return a->key == b->key && strcmp(a->org, b->org) == 0 &&
	    strcmp(a->actor, b->actor) == 0 && strcmp(a->note, b->note) == 0;
}

/* write_one - the record of a single submit, as it always was */
static void
write_one(struct fbx_engine *e, struct fbxi_abent *a)
{
	char params[AUDIT_PARAMS_MAX + 1];

	(void)submit_fields(a, 1, params);
	fbxi_audit_params_json("submit", params, sizeof(params));
	audit_write(e, a->org, a->actor, "submit", a->note, params);
	a->done = 1;
}

/* cpy - s into dst of cap bytes, cut */
static void
cpy(char *dst, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap - 1);

	memcpy(dst, s, n);
	dst[n] = '\0';
}

void
fbxi_audit_submit(struct fbx_engine *e, const char *org, const char *actor,
    const struct fbx_command *c)
{
	struct fbxi_abent *a;

	if (e->nabatch == e->abatchcap) {
		size_t cap = e->abatchcap ? 2 * e->abatchcap : 64;
		struct fbxi_abent *nb = realloc(e->abatch, cap * sizeof(*nb));
		if (nb == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		e->abatch = nb;
		e->abatchcap = cap;
	}
	a = &e->abatch[e->nabatch];
	cpy(a->org, org ? org : "", sizeof(a->org));
	cpy(a->actor, actor ? actor : "", sizeof(a->actor));
	cpy(a->note, c->held_by, sizeof(a->note));
	a->id = c->id;
	a->type = c->type;
	a->origin = c->origin;
	a->target_kind = c->target_kind;
	a->state = c->state;
	a->devices = c->ndeliveries;
	a->rollout = c->rollout.enabled != 0;
	a->settle_until_ms = c->settle_until_ms;
	cpy(a->reason, c->reason, sizeof(a->reason));
	cpy(a->group, c->group, sizeof(a->group));
	cpy(a->approved_by, c->approved_by, sizeof(a->approved_by));
	a->done = 0;
	a->key = key_hash(a);
	e->nabatch++;
}

int
fbxi_audit_flush(struct fbx_engine *e)
{
	static const char head[] = "{\"commands\":[";
	char params[AUDIT_PARAMS_MAX + 1], part[AUDIT_PARAMS_MAX + 1];
	size_t n = e->nabatch;
	int in_request = e->in_request;

	if (n == 0)
		return FBX_OK;
	/* the records are several requests': an error fails the turn, not
	 * the request that happens to run (audit_write latches it). With
	 * the turn's error latched already nothing is written: the turn is
	 * aborted, what is kept goes with it */
	e->in_request = 0;
	e->nabatch = 0; /* audit_write never comes back here */
	for (size_t i = 0; i < n && e->txn_err == FBX_OK; i++) {
		struct fbxi_abent *first = &e->abatch[i];
		size_t len = sizeof(head) - 1, cnt = 0;
		int pl;

		if (first->done)
			continue;
		/* an entry that is not plain JSON or does not fit a shared
		 * record has a record of its own */
		pl = submit_fields(first, 0, part);
		if (pl < 0 || len + (size_t)pl + 2 > AUDIT_PARAMS_MAX) {
			write_one(e, first);
			continue;
		}
		memcpy(params, head, len);
		/* this entry, then the later ones of its key while they fit
		 * (the rest go in the next record) */
		for (size_t j = i; j < n; j++) {
			struct fbxi_abent *a = &e->abatch[j];

			if (a->done || !same_key(first, a))
				continue;
			if (j > i) {
				pl = submit_fields(a, 0, part);
				if (pl < 0)
					continue; /* its own record, later */
			}
			if (len + (cnt > 0) + (size_t)pl + 2 > AUDIT_PARAMS_MAX)
				break;
			if (cnt > 0)
				params[len++] = ',';
			memcpy(params + len, part, (size_t)pl);
			len += (size_t)pl;
			cnt++;
			a->done = 1;
		}
		if (cnt == 1) {
			write_one(e, first); /* alone: the form it always had */
			continue;
		}
		memcpy(params + len, "]}", 3);
		audit_write(e, first->org, first->actor, "submit", first->note,
		    params);
	}
	e->in_request = in_request;
	return e->txn_err;
}

void
fbxi_audit_drop(struct fbx_engine *e)
{
	e->nabatch = 0;
}

void
fbxi_audit_batch_free(struct fbx_engine *e)
{
	free(e->abatch);
	e->abatch = NULL;
	e->nabatch = e->abatchcap = 0;
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
		/* an empty log goes on from the anchor, if one was pruned */
		struct fbx_audit_mark m;
		rc = fbx_store_audit_mark_get(txn, FBX_AUDIT_ANCHOR, &m);
		if (rc == FBX_ENOT_FOUND) {
			memset(&m, 0, sizeof(m));
			rc = FBX_OK;
		}
		if (rc != FBX_OK)
			return rc;
		e->audit_seq = m.seq;
		memcpy(e->audit_last, m.hash, 32);
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

/* unhex - n lowercase hex digits into at most cap bytes. @return 0, or
 * -1 (odd length, too long, not hex). */
static int
unhex(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned b = 0;
		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + j];
			b <<= 4;
			if (c >= '0' && c <= '9')
				b |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				b |= (unsigned)(c - 'a' + 10);
			else
				return -1;
		}
		out[i] = (uint8_t)b;
	}
	*len = n / 2;
	return 0;
}

/* unhex32 - a 64-digit hash. */
static int
unhex32(const char *s, uint8_t out[32])
{
	size_t len = 0;

	return unhex(s, 64, out, 32, &len) == 0 && len == 32 ? 0 : -1;
}

static void
hex32(const uint8_t in[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
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
		if (unhex32(req->u.audit_verify.after_hash, start.hash) != 0)
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
		hex32(last.hash, rep->u.verify.verified_hash);
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


/* ---------------------------------------------------- audit retention */

/* Retention prunes the oldest records in slices. Each slice is first
 * checked (it must link to the anchor and hash right) and exported to
 * <data>/audit-archive/audit-<first>-<last>.jsonl, written to a .tmp
 * name, fsync'ed, renamed and the directory fsync'ed, all before the
 * turn's transaction that deletes the records commits. The last pruned
 * record becomes the anchor in that transaction, and an "audit.prune"
 * record names the range, the file and the anchor. An archive file
 * whose records were not pruned (the turn failed) starts at the same
 * first sequence as the next attempt, which removes it. */

/* a slice smaller than the budget waits until its oldest record is this
 * far past the cutoff, so a steady trickle makes a file a day, not one a
 * call */
#define AUDIT_PRUNE_LAG_MS (24LL * 3600 * 1000)
#define ARCH_DIR "audit-archive"
#define ARCH_LINE_MAX 16384 /* a rendered line is < 9 KiB */

struct lbuf {
	char *p;
	size_t len, cap;
	int over;
};

static void
lb_put(struct lbuf *b, const char *s, size_t n)
{
	if (b->over || b->cap - b->len < n + 1) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void lb_printf(struct lbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
lb_printf(struct lbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->over = 1;
		return;
	}
	b->len += (size_t)n;
}

/* lb_jstr - a JSON string as archives before jansson escaped it (kept
 * only to check such archives: legacy_line) */
static void
lb_jstr(struct lbuf *b, const char *s)
{
	lb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			lb_printf(b, "\\%c", c);
		else if (c < 0x20)
			lb_printf(b, "\\u%04x", c);
		else
			lb_put(b, (const char *)&c, 1);
	}
	lb_put(b, "\"", 1);
}

/* archive_json - the archive's line for record seq as a JSON object: the
 * members `fuseboxctl export` writes for an audit record, plus "rec", the
 * stored record in hex (what the hash covers). NULL if rec is malformed
 * or memory is short. */
static json_t *
archive_json(uint64_t seq, const uint8_t *rec, size_t len)
{
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	char *hex = malloc(2 * len + 1);
	json_t *o = NULL;

	if (hex == NULL || fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0) {
		free(hex);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", rec[i]);
	o = json_object();
	if (o != NULL &&
	    (fbx_json_set_str(o, "kind", "audit") != 0 ||
	        fbx_json_set_int(o, "seq", (long long)seq) != 0 ||
	        fbx_json_set_int(o, "at_ms", (long long)a.at_ms) != 0 ||
	        fbx_json_set_str(o, "org", a.org) != 0 ||
	        fbx_json_set_str(o, "actor", a.actor) != 0 ||
	        fbx_json_set_str(o, "action", a.action) != 0 ||
	        fbx_json_set_str(o, "note", a.note) != 0 ||
	        fbx_json_set(o, "params", fbx_json_params(a.params)) != 0 ||
	        fbx_json_set_str(o, "prev", a.prev) != 0 ||
	        fbx_json_set_str(o, "hash", a.hash) != 0 ||
	        fbx_json_set_str(o, "rec", hex) != 0)) {
		json_decref(o);
		o = NULL;
	}
	free(hex);
	return o;
}

/* archive_line - the archive's line for record seq (archive_json), written
 * by jansson, and a newline. @return 0, or -1 if rec is malformed. */
static int
archive_line(uint64_t seq, const uint8_t *rec, size_t len, struct lbuf *b)
{
	json_t *o = archive_json(seq, rec, len);
	size_t n;

	if (o == NULL)
		return -1;
	n = json_dumpb(o, b->p + b->len, b->cap - b->len,
	    JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (n == 0 || n + 2 > b->cap - b->len) {
		b->over = 1;
		return -1;
	}
	b->len += n;
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
	return 0;
}

/* legacy_line - the line archives written before jansson held for record
 * seq (hand-made JSON): an old line that jansson cannot read (parameters
 * cut at 511 bytes) is still checked byte for byte against it.
 * @return 0, or -1 if rec is malformed. */
static int
legacy_line(uint64_t seq, const uint8_t *rec, size_t len, struct lbuf *b)
{
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];

	if (fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0)
		return -1;
	lb_printf(b, "{\"kind\":\"audit\",\"seq\":%llu,\"at_ms\":%lld,\"org\":",
	    (unsigned long long)seq, (long long)a.at_ms);
	lb_jstr(b, a.org);
	lb_put(b, ",\"actor\":", 9);
	lb_jstr(b, a.actor);
	lb_put(b, ",\"action\":", 10);
	lb_jstr(b, a.action);
	lb_put(b, ",\"note\":", 8);
	lb_jstr(b, a.note);
	lb_printf(b, ",\"params\":%s,\"prev\":\"%s\",\"hash\":\"%s\",\"rec\":\"",
	    a.params[0] ? a.params : "{}", a.prev, a.hash);
	for (size_t i = 0; i < len; i++)
		lb_printf(b, "%02x", rec[i]);
	lb_put(b, "\"}\n", 3);
	return b->over ? -1 : 0;
}

/* chain_check - one record of a slice or an archive: it follows prev_seq,
 * links to prev_hash and hashes to what it carries. @return FBX_OK (why
 * empty: intact; else the verdict), or FBX_ECRYPTO/FBX_ENOMEM. */
static int
chain_check(uint64_t seq, const uint8_t *rec, size_t len, uint64_t prev_seq,
    const uint8_t prev_hash[32], char *why, size_t whycap)
{
	uint8_t want[32];
	int rc;

	why[0] = '\0';
	if (seq != prev_seq + 1) {
		snprintf(why, whycap, "record %llu is missing (found %llu next)",
		    (unsigned long long)(prev_seq + 1),
		    (unsigned long long)seq);
		return FBX_OK;
	}
	if (len < AUDIT_HASH_OFF + 32 || rec[0] != AUDIT_V1) {
		snprintf(why, whycap, "record %llu is malformed",
		    (unsigned long long)seq);
		return FBX_OK;
	}
	if (memcmp(rec + 1, prev_hash, 32) != 0) {
		snprintf(why, whycap,
		    "record %llu does not link to the record before it",
		    (unsigned long long)seq);
		return FBX_OK;
	}
	rc = fbxi_audit_hash(seq, rec, len, want);
	if (rc != FBX_OK)
		return rc;
	if (memcmp(want, rec + AUDIT_HASH_OFF, 32) != 0)
		snprintf(why, whycap,
		    "record %llu was altered: its hash does not match",
		    (unsigned long long)seq);
	return FBX_OK;
}

struct prune_ctx {
	uint64_t last;        /* the slice ends here */
	uint64_t seq;         /* the last record checked */
	uint8_t hash[32];     /* its hash */
	uint32_t n;
	int fd;
	int ioerr;            /* errno of a failed write */
	int err;              /* FBX_ECRYPTO / FBX_ENOMEM */
	char why[160];        /* the chain is broken */
	struct lbuf out;      /* pending bytes */
	char line[ARCH_LINE_MAX];
};

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (w == 0)
			return EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
prune_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct prune_ctx *x = arg;
	struct lbuf lb = { x->line, 0, sizeof(x->line), 0 };

	if (seq > x->last)
		return 1;
	x->err = chain_check(seq, rec, len, x->seq, x->hash, x->why,
	    sizeof(x->why));
	if (x->err != FBX_OK || x->why[0] != '\0')
		return 1;
	if (archive_line(seq, rec, len, &lb) != 0) {
		snprintf(x->why, sizeof(x->why), "record %llu is malformed",
		    (unsigned long long)seq);
		return 1;
	}
	if (x->out.cap - x->out.len <= lb.len) {
		x->ioerr = write_all(x->fd, x->out.p, x->out.len);
		x->out.len = 0;
		if (x->ioerr != 0)
			return 1;
	}
	lb_put(&x->out, lb.p, lb.len);
	x->seq = seq;
	memcpy(x->hash, (const uint8_t *)rec + AUDIT_HASH_OFF, 32);
	x->n++;
	return seq == x->last;
}

static int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

/* arch_clean - remove archive files (and .tmp files) that start at
 * sequence first: written by a slice whose turn did not commit, so the
 * records are still in the store. @return 0 or an errno. */
static int
arch_clean(const char *dir, uint64_t first)
{
	char pfx[64], path[PATH_MAX];
	struct dirent *d;
	DIR *dp = opendir(dir);
	size_t pl;
	int rc = 0;

	if (dp == NULL)
		return errno;
	pl = (size_t)snprintf(pfx, sizeof(pfx), "audit-%020llu-",
	    (unsigned long long)first);
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, pfx, pl) != 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		        d->d_name) >= sizeof(path))
			continue;
		if (unlink(path) != 0 && errno != ENOENT)
			rc = errno;
	}
	closedir(dp);
	return rc;
}

/* arch_write - export records [first, last] to the archive, checking
 * the chain from anchor as it goes. On success `file` is the archive's
 * name (inside ARCH_DIR) and it is durable. @return FBX_OK; FBX_ECORRUPT
 * (the chain is broken: why says where; nothing written); FBX_EIO or
 * FBX_EDISK_FULL (why says what); FBX_ECRYPTO, FBX_ENOMEM; a store
 * error. */
static int
arch_write(struct fbx_engine *e, const struct fbx_audit_mark *anchor,
    uint64_t first, uint64_t last, char *file, size_t filecap, char *why,
    size_t whycap)
{
	char dir[PATH_MAX - 128], tmp[PATH_MAX + 8], path[PATH_MAX], name[96];
	struct prune_ctx *x = NULL;
	const char *step = "", *obj = dir;
	int rc = FBX_OK, en = 0;

	why[0] = '\0';
	if (e->o.data_dir == NULL ||
	    (size_t)snprintf(dir, sizeof(dir), "%s/" ARCH_DIR,
	        e->o.data_dir) >= sizeof(dir))
		return FBX_EINVALID;
	snprintf(name, sizeof(name), "audit-%020llu-%020llu.jsonl",
	    (unsigned long long)first, (unsigned long long)last);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	        sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return FBX_EINVALID;
	x = malloc(sizeof(*x) + (1u << 20));
	if (x == NULL)
		return FBX_ENOMEM;
	memset(x, 0, sizeof(*x));
	x->out.p = (char *)(x + 1);
	x->out.cap = 1u << 20;
	x->last = last;
	x->seq = anchor->seq;
	memcpy(x->hash, anchor->hash, 32);
	x->fd = -1;
	if (mkdir(dir, 0750) == 0) {
		step = "fsync the data directory";
		obj = e->o.data_dir;
		if ((en = fsync_dir(e->o.data_dir)) != 0)
			goto ioerr;
	} else if (errno != EEXIST) {
		en = errno;
		step = "create the directory";
		goto ioerr;
	}
	step = "remove an unpruned archive";
	if ((en = arch_clean(dir, first)) != 0)
		goto ioerr;
	step = "create";
	obj = tmp;
	x->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (x->fd < 0) {
		en = errno;
		goto ioerr;
	}
	rc = fbx_store_audit_scan(e->txn, first, prune_cb, x);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = x->err;
	if (rc != FBX_OK)
		goto out;
	if (x->why[0] == '\0' && x->ioerr == 0 && x->seq != last)
		snprintf(x->why, sizeof(x->why), "the log ends at %llu, "
		    "before %llu", (unsigned long long)x->seq,
		    (unsigned long long)last);
	if (x->why[0] != '\0') {
		snprintf(why, whycap, "%s", x->why);
		rc = FBX_ECORRUPT;
		goto out;
	}
	step = "write";
	if ((en = x->ioerr) != 0)
		goto ioerr;
	if ((en = write_all(x->fd, x->out.p, x->out.len)) != 0)
		goto ioerr;
	step = "fsync";
	if (fsync(x->fd) != 0) {
		en = errno;
		goto ioerr;
	}
	step = "close";
	rc = close(x->fd);
	x->fd = -1;
	if (rc != 0) {
		en = errno;
		rc = FBX_OK;
		goto ioerr;
	}
	step = "rename";
	if (rename(tmp, path) != 0) {
		en = errno;
		goto ioerr;
	}
	step = "fsync the directory";
	obj = dir;
	if ((en = fsync_dir(dir)) != 0)
		goto ioerr;
	snprintf(file, filecap, "%s/%s", ARCH_DIR, name);
	rc = FBX_OK;
	goto out;
ioerr:
	snprintf(why, whycap, "cannot %s %.100s: %.60s", step, obj,
	    strerror(en));
	rc = en == ENOSPC || en == EDQUOT ? FBX_EDISK_FULL : FBX_EIO;
out:
	if (x->fd >= 0)
		close(x->fd);
	if (rc != FBX_OK) {
		(void)unlink(tmp);
		(void)unlink(path);
	}
	free(x);
	return rc;
}

int
fbxi_audit_prune_slice(struct fbx_engine *e, int64_t cutoff_ms,
    uint32_t budget, uint32_t *pruned)
{
	struct fbx_audit_mark anchor, cp;
	uint8_t rec[AUDIT_MAX];
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	uint64_t first = 0, end = 0, last;
	uint32_t n = 0;
	size_t len = 0;
	char file[160], why[200], ah[65];
	int rc;

	if (e == NULL || e->txn == NULL || pruned == NULL || budget == 0)
		return FBX_EINVALID;
	if (budget > FBX_AUDIT_PRUNE_SLICE)
		budget = FBX_AUDIT_PRUNE_SLICE;
	rc = fbx_store_audit_first(e->txn, &first);
	if (rc == FBX_ENOT_FOUND) {
		*pruned = 0;
		return FBX_OK;
	}
	if (rc == FBX_OK)
		rc = fbx_store_audit_time_seq(e->txn, cutoff_ms, &end);
	if (rc != FBX_OK)
		goto store_err;
	if (end > e->audit_seq + 1)
		end = e->audit_seq + 1;
	if (end <= first) {
		*pruned = 0; /* nothing older than the cutoff */
		return FBX_OK;
	}
	last = end - first > budget ? first + budget - 1 : end - 1;
	if (last - first + 1 < budget) {
		/* a short slice waits for its oldest record to age a lag */
		rc = fbx_store_audit_get(e->txn, first, rec, sizeof(rec), &len);
		if (rc != FBX_OK)
			goto store_err;
		if (fbxi_audit_decode(first, rec, len, &a, prev, hash) == 0 &&
		    a.at_ms >= cutoff_ms - AUDIT_PRUNE_LAG_MS) {
			*pruned = 0;
			return FBX_OK;
		}
	}
	memset(&anchor, 0, sizeof(anchor));
	rc = fbx_store_audit_mark_get(e->txn, FBX_AUDIT_ANCHOR, &anchor);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		goto store_err;
	if (anchor.seq + 1 != first) {
		FBX_LOGE("audit retention: the log starts at %llu but the "
		         "anchor is %llu; nothing pruned",
		    (unsigned long long)first, (unsigned long long)anchor.seq);
		return FBX_ECORRUPT;
	}
	rc = arch_write(e, &anchor, first, last, file, sizeof(file), why,
	    sizeof(why));
	if (rc == FBX_ECORRUPT) {
		FBX_LOGE("audit retention: chain broken (%s); nothing pruned, "
		         "run audit verify --full",
		    why);
		return rc;
	}
	if (rc == FBX_EIO || rc == FBX_EDISK_FULL) {
		FBX_LOGW("audit retention: records %llu..%llu not archived "
		         "(%s); nothing pruned",
		    (unsigned long long)first, (unsigned long long)last, why);
		return rc;
	}
	if (rc != FBX_OK) {
		if (rc == FBX_ECRYPTO || rc == FBX_ENOMEM ||
		    rc == FBX_EINVALID) {
			FBX_LOGW("audit retention: records %llu..%llu not "
			         "archived (%s); nothing pruned",
			    (unsigned long long)first,
			    (unsigned long long)last, fbx_strerror(rc));
			return rc;
		}
		goto store_err;
	}
	/* the archive is durable: delete, anchor, checkpoint, audit */
	rc = fbx_store_audit_prune(e->txn, last, budget, &n);
	if (rc == FBX_OK)
		rc = fbx_store_audit_mark_get(e->txn, FBX_AUDIT_ANCHOR, &anchor);
	if (rc != FBX_OK)
		goto store_err;
	rc = fbx_store_audit_mark_get(e->txn, FBX_AUDIT_VERIFIED, &cp);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && cp.seq < anchor.seq))
		rc = fbx_store_audit_mark_put(e->txn, FBX_AUDIT_VERIFIED,
		    &anchor); /* the prune checked what verify had not */
	if (rc != FBX_OK)
		goto store_err;
	hex32(anchor.hash, ah);
	fbxi_audit(e, "*", "engine", "audit.prune", NULL,
	    "{\"first\":%llu,\"last\":%llu,\"records\":%u,\"archive\":\"%s\","
	    "\"anchor\":\"%s\"}",
	    (unsigned long long)first, (unsigned long long)last, n, file, ah);
	if (fbxi_err(e) != FBX_OK)
		return fbxi_err(e);
	FBX_LOGI("audit retention: records %llu..%llu archived to %s and "
	         "pruned; anchor %llu",
	    (unsigned long long)first, (unsigned long long)last, file,
	    (unsigned long long)anchor.seq);
	*pruned = n;
	return FBX_OK;
store_err:
	fbxi_set_err(e, rc);
	return rc;
}

/* --------------------------------------------- offline archive check */

/* jfield_str - the raw text of "key":"..." or "key":... in a line (no
 * unescaping: only used for seq and rec, which need none). */
static const char *
jfield_raw(const char *line, size_t len, const char *key, size_t *vlen)
{
	char pat[32];
	size_t pl = (size_t)snprintf(pat, sizeof(pat), "\"%s\":", key);

	for (size_t i = 0; i + pl <= len; i++) {
		if (memcmp(line + i, pat, pl) == 0) {
			const char *v = line + i + pl, *end = line + len;
			size_t n = 0;
			if (v < end && *v == '"') {
				v++;
				while (v + n < end && v[n] != '"')
					n++;
			} else {
				while (v + n < end && v[n] != ',' &&
				    v[n] != '}')
					n++;
			}
			*vlen = n;
			return v;
		}
	}
	return NULL;
}


int
fbxi_audit_archive_check(FILE *f, struct fbxi_archive_check *c)
{
	char *line = NULL, render[ARCH_LINE_MAX];
	size_t cap = 0;
	uint8_t rec[AUDIT_MAX];
	int rc = FBX_OK, same;
	json_t *parsed = NULL;
	const char *recx = NULL;

	if (f == NULL || c == NULL)
		return FBX_EINVALID;
	c->line = 0;
	while (c->why[0] == '\0') {
		struct lbuf lb = { render, 0, sizeof(render), 0 };
		uint8_t zero[32];
		const char *v;
		size_t vl = 0, rl = 0;
		uint64_t seq = 0;
		ssize_t n;

		errno = 0;
		n = getline(&line, &cap, f);
		if (n < 0) {
			if (ferror(f))
				rc = FBX_EIO;
			break;
		}
		c->line++;
		json_decref(parsed);
		parsed = json_loadb(line, (size_t)n, 0, NULL);
		if (parsed != NULL) {
			json_t *s = json_object_get(parsed, "seq");
			const char *r =
			    json_string_value(json_object_get(parsed, "rec"));
			v = json_is_integer(s) && json_integer_value(s) > 0
			    ? "" : NULL;
			vl = v != NULL ? 1 : 0;
			seq = v != NULL ? (uint64_t)json_integer_value(s) : 0;
			recx = r;
		} else {
			/* an archive from before jansson: read as it was */
			v = jfield_raw(line, (size_t)n, "seq", &vl);
			for (size_t i = 0; v != NULL && i < vl && i < 20; i++) {
				if (v[i] < '0' || v[i] > '9') {
					v = NULL;
					break;
				}
				seq = seq * 10 + (uint64_t)(v[i] - '0');
			}
			if (vl > 19)
				v = NULL;
			recx = NULL;
		}
		if (v == NULL || vl == 0 || seq == 0) {
			snprintf(c->why, sizeof(c->why),
			    "line %llu has no sequence",
			    (unsigned long long)c->line);
			c->broken_at = c->last_seq + 1;
			break;
		}
		if (parsed != NULL) {
			v = recx;
			vl = recx != NULL ? strlen(recx) : 0;
		} else {
			v = jfield_raw(line, (size_t)n, "rec", &vl);
		}
		if (v == NULL || unhex(v, vl, rec, sizeof(rec), &rl) != 0) {
			snprintf(c->why, sizeof(c->why),
			    "record %llu (line %llu) has no readable rec",
			    (unsigned long long)seq,
			    (unsigned long long)c->line);
			c->broken_at = seq;
			break;
		}
		if (c->records == 0) {
			/* the start: seq 1 links to zeros, a later start to
			 * whatever the previous archive ended with */
			memset(zero, 0, sizeof(zero));
			if (rl >= AUDIT_HASH_OFF)
				memcpy(c->first_prev, rec + 1, 32);
			if (seq == 1 && rl >= AUDIT_HASH_OFF &&
			    memcmp(rec + 1, zero, 32) != 0) {
				snprintf(c->why, sizeof(c->why),
				    "record 1 does not start the chain");
				c->broken_at = 1;
				break;
			}
			c->first_seq = seq;
			c->last_seq = seq - 1;
			memcpy(c->last_hash, c->first_prev, 32);
		}
		rc = chain_check(seq, rec, rl, c->last_seq, c->last_hash,
		    c->why, sizeof(c->why));
		if (rc != FBX_OK)
			break;
		if (c->why[0] != '\0') {
			c->broken_at = seq;
			break;
		}
		/* the readable fields must be exactly what rec says: as JSON
		 * values (any writer's escaping), or byte for byte for an old
		 * line jansson cannot read */
		if (parsed != NULL) {
			json_t *want = archive_json(seq, rec, rl);
			same = want != NULL && json_equal(want, parsed);
			json_decref(want);
		} else {
			same = legacy_line(seq, rec, rl, &lb) == 0 &&
			    lb.len == (size_t)n &&
			    memcmp(lb.p, line, lb.len) == 0;
		}
		if (!same) {
			snprintf(c->why, sizeof(c->why),
			    "record %llu (line %llu): the line does not match "
			    "its record",
			    (unsigned long long)seq,
			    (unsigned long long)c->line);
			c->broken_at = seq;
			break;
		}
		c->records++;
		c->last_seq = seq;
		memcpy(c->last_hash, rec + AUDIT_HASH_OFF, 32);
	}
	json_decref(parsed);
	free(line);
	return rc;
}

int
fbx_audit_archive_verify(const char *const *files, size_t n, FILE *out)
{
	struct fbxi_archive_check c;
	char fp[65], lh[65];
	int rc = FBX_OK;

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < n && c.why[0] == '\0'; i++) {
		FILE *f = fopen(files[i], "r");
		if (f == NULL) {
			fprintf(out, "cannot read %s: %s\n", files[i],
			    strerror(errno));
			return FBX_EIO;
		}
		rc = fbxi_audit_archive_check(f, &c);
		fclose(f);
		if (rc != FBX_OK) {
			fprintf(out, "%s: %s\n", files[i], fbx_strerror(rc));
			return rc;
		}
		if (c.why[0] != '\0')
			fprintf(out, "BROKEN at record %llu (%s, line %llu): "
			             "%s\n",
			    (unsigned long long)c.broken_at, files[i],
			    (unsigned long long)c.line, c.why);
	}
	if (c.why[0] != '\0')
		return FBX_ECORRUPT;
	if (c.records == 0) {
		fprintf(out, "no records\n");
		return FBX_ECORRUPT;
	}
	hex32(c.first_prev, fp);
	hex32(c.last_hash, lh);
	fprintf(out, "intact: %llu records, %llu..%llu\n",
	    (unsigned long long)c.records, (unsigned long long)c.first_seq,
	    (unsigned long long)c.last_seq);
	fprintf(out, "first_prev %s%s\n", fp,
	    c.first_seq == 1 ? " (record 1: the start of the chain)" :
			       " (the last hash of the archive before)");
	fprintf(out, "last_hash  %s (seq %llu)\n", lh,
	    (unsigned long long)c.last_seq);
	return FBX_OK;
}
