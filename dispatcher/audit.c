/*
 * audit.c: the tamper-evident audit trail: every operator action is a
 * record chained to the previous one with SHA-256 and committed with the
 * action (submit records batched per turn), its decoding, the chain's
 * head loaded from the store (at start-up, and where another writer may
 * have moved it), and the hex of hashes. Listing and
 * verification are audit_query.c's; retention and the archive check
 * audit_archive.c's; audit_int.h holds the record layout they share.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include "fbx_json.h"

#include "engine_int.h"
#include "audit_int.h"

/* -------------------------------------------------------------- audit */

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
    const struct fbx_command *c, uint32_t devices)
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
	a->devices = devices;
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

/* fbxi_audit_unhex - n lowercase hex digits into at most cap bytes.
 * @return 0, or -1 (odd length, too long, not hex). */
int
fbxi_audit_unhex(
    const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
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

/* fbxi_audit_unhex32 - a 64-digit hash. */
int
fbxi_audit_unhex32(const char *s, uint8_t out[32])
{
	size_t len = 0;

	return fbxi_audit_unhex(s, 64, out, 32, &len) == 0 && len == 32 ? 0 : -1;
}

void
fbxi_audit_hex32(const uint8_t in[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}
