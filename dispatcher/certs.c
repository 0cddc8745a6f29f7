/*
 * certs.c: registered certificates and the breakers that depend on them.
 * An automatic rule whose detector relies on a certificate (attestation)
 * fails for every device at once when that certificate expires, so the
 * engine reads notAfter with OpenSSL when an operator registers it,
 * alerts ahead of time and opens the global breaker of each bound reason
 * shortly before expiry. Records live in the kv table under
 * "cert/<scope>/" (scope "*"); the list is in memory, loaded at recovery
 * and written through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certs.h"
#include "engine_int.h"

#define CERT_PREFIX "cert/*/"

/* Alert stages, most severe last: the days left at which each fires. */
static const struct {
	uint32_t bit;
	int64_t left_ms; /* fires once notAfter - now <= this */
	const char *what;
} stages[] = {
	{ FBX_CERT_ALERT_30D, 30 * FBXI_CERT_DAY_MS, "30 days" },
	{ FBX_CERT_ALERT_7D, 7 * FBXI_CERT_DAY_MS, "7 days" },
	{ FBX_CERT_ALERT_1D, 1 * FBXI_CERT_DAY_MS, "1 day" },
	{ FBX_CERT_ALERT_EXPIRED, 0, "expiry" },
};
#define NSTAGES (sizeof(stages) / sizeof(stages[0]))

/* ------------------------------------------------------------ parsing */

/* ossl_reason - the reason text of OpenSSL's last error, or fallback. */
static const char *
ossl_reason(const char *fallback)
{
	unsigned long err = ERR_peek_last_error();
	const char *r = err != 0 ? ERR_reason_error_string(err) : NULL;

	return r != NULL ? r : fallback;
}

/* asn1_ms - an ASN1_TIME as Unix milliseconds. @return 0 or -1. */
static int
asn1_ms(const ASN1_TIME *t, int64_t *ms)
{
	struct tm tm;
	time_t s;

	if (t == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	/* a 64-bit time_t holds every ASN.1 time (years 0..9999); a 32-bit
	 * one fails past 2038 */
	s = timegm(&tm);
	if (s == (time_t)-1 && sizeof(time_t) < 8)
		return -1;
	*ms = (int64_t)s * 1000;
	return 0;
}

/* name_text - an X509_NAME in RFC 2253 form into dst: OpenSSL escapes
 * controls and non-ASCII bytes; anything else not printable ASCII that
 * slips through becomes '?'. A name longer than the buffer is cut.
 * @return FBX_OK or FBX_ECRYPTO. */
static int
name_text(const X509_NAME *n, char *dst, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long len;
	size_t i, k;

	if (b == NULL)
		return FBX_ECRYPTO;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) < 0) {
		BIO_free(b);
		return FBX_ECRYPTO;
	}
	len = BIO_get_mem_data(b, &p);
	k = len > 0 ? (size_t)len : 0;
	if (k >= cap)
		k = cap - 1;
	for (i = 0; i < k; i++)
		dst[i] = p[i] >= 0x20 && p[i] <= 0x7e ? p[i] : '?';
	dst[k] = '\0';
	BIO_free(b);
	return FBX_OK;
}

/* has_key - whether the text carries a private key block: refused, the
 * engine must never be handed one (and its owner should know it was
 * sent). */
static int
has_key(const uint8_t *pem, size_t len)
{
	static const char tag[] = "PRIVATE KEY-----";
	size_t n = sizeof(tag) - 1;

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(pem + i, tag, n) == 0)
			return 1;
	return 0;
}

/* no_password - a daemon never prompts: encrypted PEM is refused. */
static int
no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int
fbxi_cert_parse(const uint8_t *pem, size_t len, struct fbxi_cert *out,
    char *why, size_t whylen)
{
	BIO *bio = NULL;
	X509 *x = NULL, *more = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct fbxi_cert c;
	char scratch[8];
	int rc = FBX_OK;

	if (why == NULL || whylen == 0) {
		why = scratch;
		whylen = sizeof(scratch);
	}
	why[0] = '\0';
	if (pem == NULL || out == NULL || len == 0 || len > FBX_CERT_PEM_MAX)
		return FBX_EINVAL;
	c = *out;
	if (has_key(pem, len)) {
		snprintf(why, whylen,
		    "the PEM text holds a private key: send the certificate "
		    "only, and treat that key as exposed");
		return FBX_EBAD_CERT;
	}
	ERR_clear_error();
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		rc = FBX_ECRYPTO;
		goto out;
	}
	x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
	if (x == NULL) {
		unsigned long err = ERR_peek_last_error();
		if (ERR_GET_LIB(err) == ERR_LIB_PEM &&
		    ERR_GET_REASON(err) == PEM_R_NO_START_LINE)
			snprintf(why, whylen,
			    "no certificate: no '-----BEGIN CERTIFICATE-----' "
			    "block in the PEM text%s",
			    pem[0] == 0x30 ? " (DER? convert it: openssl x509 "
			                     "-inform der -in FILE -out "
			                     "FILE.pem)"
			                   : "");
		else
			snprintf(why, whylen,
			    "not a readable PEM certificate: %s",
			    ossl_reason("unknown OpenSSL error"));
		rc = FBX_EBAD_CERT;
		goto out;
	}
	ERR_clear_error();
	more = PEM_read_bio_X509(bio, NULL, no_password, NULL);
	if (more != NULL) {
		snprintf(why, whylen,
		    "more than one certificate in the PEM text: register "
		    "each certificate of a chain under its own name");
		rc = FBX_EBAD_CERT;
		goto out;
	}
	if (asn1_ms(X509_get0_notBefore(x), &c.not_before_ms) != 0 ||
	    asn1_ms(X509_get0_notAfter(x), &c.not_after_ms) != 0) {
		snprintf(why, whylen,
		    "the certificate's validity (notBefore/notAfter) cannot "
		    "be read");
		rc = FBX_EBAD_CERT;
		goto out;
	}
	if (c.not_after_ms < c.not_before_ms) {
		snprintf(why, whylen,
		    "the certificate's notAfter is before its notBefore");
		rc = FBX_EBAD_CERT;
		goto out;
	}
	rc = name_text(X509_get_subject_name(x), c.subject, sizeof(c.subject));
	if (rc == FBX_OK)
		rc = name_text(X509_get_issuer_name(x), c.issuer,
		    sizeof(c.issuer));
	if (rc != FBX_OK)
		goto out;
	ERR_clear_error();
	if (fbxi_crypto_injected() ||
	    X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32) {
		rc = FBX_ECRYPTO;
		goto out;
	}
	memcpy(c.sha256, md, 32);
	*out = c;
out:
	if (rc == FBX_ECRYPTO)
		snprintf(why, whylen, "OpenSSL failed: %s",
		    ossl_reason("no detail"));
	ERR_clear_error();
	X509_free(more);
	X509_free(x);
	BIO_free(bio);
	return rc;
}

/* ------------------------------------------------------- pure decisions */

int64_t
fbxi_cert_days_left(const struct fbxi_cert *c, int64_t now_ms)
{
	int64_t d = c->not_after_ms - now_ms;

	/* floor division: -1 in the first day after expiry */
	return d >= 0 ? d / FBXI_CERT_DAY_MS
	              : -((-d + FBXI_CERT_DAY_MS - 1) / FBXI_CERT_DAY_MS);
}

int
fbxi_cert_state(const struct fbxi_cert *c, int64_t now_ms)
{
	int64_t left = c->not_after_ms - now_ms;

	if (left <= 0)
		return FBX_CST_EXPIRED;
	if (left <= (int64_t)c->trip_before_s * 1000)
		return FBX_CST_TRIPPING;
	if (left <= 30 * FBXI_CERT_DAY_MS)
		return FBX_CST_EXPIRING;
	return FBX_CST_VALID;
}

const struct fbxi_cert *
fbxi_cert_due(const struct fbx_engine *e, const char *reason)
{
	const struct fbxi_certs *l = e->certs;

	for (size_t i = 0; l != NULL && i < l->n; i++) {
		const struct fbxi_cert *c = &l->v[i];
		if (fbxi_cert_state(c, e->now) < FBX_CST_TRIPPING)
			continue;
		for (uint32_t k = 0; k < c->nreasons; k++)
			if (strcmp(c->reasons[k], reason) == 0)
				return c;
	}
	return NULL;
}

uint32_t
fbxi_cert_alerts_due(const struct fbxi_cert *c, int64_t now_ms)
{
	int64_t left = c->not_after_ms - now_ms;
	uint32_t due = 0;

	for (size_t i = 0; i < NSTAGES; i++)
		if (left <= stages[i].left_ms)
			due |= stages[i].bit;
	return due;
}

/* ----------------------------------------------------------- records */

static int
cert_save(fbx_txn *txn, const struct fbxi_cert *c)
{
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), CERT_PREFIX "%s", c->name);
	return fbx_store_kv_put(txn, key, c, sizeof(*c));
}

/* cert_ok - a stored record is whole and says what its key says. */
static int
cert_ok(const struct fbxi_cert *c, const char *name)
{
	if (c->version != FBXI_CERT_VERSION || c->nreasons == 0 ||
	    c->nreasons > FBX_CERT_REASONS_MAX || c->trip_before_s == 0 ||
	    c->trip_before_s > FBX_CERT_TRIP_BEFORE_MAX ||
	    memchr(c->name, '\0', sizeof(c->name)) == NULL ||
	    memchr(c->added_by, '\0', sizeof(c->added_by)) == NULL ||
	    memchr(c->subject, '\0', sizeof(c->subject)) == NULL ||
	    memchr(c->issuer, '\0', sizeof(c->issuer)) == NULL ||
	    strcmp(c->name, name) != 0)
		return 0;
	for (uint32_t i = 0; i < c->nreasons; i++)
		if (memchr(c->reasons[i], '\0', sizeof(fbx_id)) == NULL ||
		    !fbx_id_valid(c->reasons[i]))
			return 0;
	return 1;
}

struct load_ctx {
	struct fbxi_certs *l;
	size_t skipped;
};

static int
load_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct load_ctx *x = arg;
	const char *name = key + strlen(CERT_PREFIX);
	struct fbxi_cert c;

	if (len != sizeof(c) || x->l->n == FBX_CERTS_MAX) {
		FBX_LOGE("certificate record %s skipped: %s", key,
		    len != sizeof(c) ? "wrong size" : "too many records");
		x->skipped++;
		return 0;
	}
	memcpy(&c, val, sizeof(c));
	if (!cert_ok(&c, name)) {
		FBX_LOGE("certificate record %s skipped: it fails its checks; "
		         "remove it and register the certificate again",
		    key);
		x->skipped++;
		return 0;
	}
	x->l->v[x->l->n++] = c;
	return 0;
}

int
fbxi_certs_load(struct fbx_engine *e, fbx_txn *txn)
{
	struct fbxi_certs *l = e->certs;
	struct load_ctx x;
	int rc;

	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			return FBX_ENOMEM;
		e->certs = l;
	}
	l->n = 0;
	x.l = l;
	x.skipped = 0;
	rc = fbx_store_kv_scan(txn, CERT_PREFIX, load_cb, &x);
	if (rc != FBX_OK) {
		l->n = 0;
		return rc;
	}
	/* a trip or alert due while the engine was down is not delayed */
	e->next_cert_check = 0;
	return FBX_OK;
}

void
fbxi_certs_free(struct fbx_engine *e)
{
	free(e->certs);
	e->certs = NULL;
}

/* --------------------------------------------------------- the check */

/* day_text - notAfter as "YYYY-MM-DDTHH:MM:SSZ". */
static void
day_text(int64_t ms, char *dst, size_t cap)
{
	if (fbx_fmt_utc(ms, 0, dst, cap) != 0)
		snprintf(dst, cap, "%lld ms", (long long)ms);
}

/* cert_alert - one EV_CERT_EXPIRING for the most severe stage newly
 * reached (one per stage reached, never repeated: alerts_sent is
 * written with the turn). count = whole days left, limit = the stage's
 * days (0 = expired). */
static void
cert_alert(struct fbx_engine *e, const struct fbxi_cert *c, uint32_t fresh)
{
	size_t top = 0;
	char when[32];
	int64_t days = fbxi_cert_days_left(c, e->now);

	for (size_t i = 0; i < NSTAGES; i++)
		if (fresh & stages[i].bit)
			top = i;
	day_text(c->not_after_ms, when, sizeof(when));
	if (stages[top].bit == FBX_CERT_ALERT_EXPIRED)
		fbxi_event(e, FBX_EV_CERT_EXPIRING, "*", c->reasons[0], "engine",
		    0, 0, 0,
		    "certificate '%s' (%.80s) expired at %s; its reasons' "
		    "global breakers stay open until it is renewed or removed",
		    c->name, c->subject, when);
	else
		fbxi_event(e, FBX_EV_CERT_EXPIRING, "*", c->reasons[0], "engine",
		    0, (uint64_t)(days > 0 ? days : 0),
		    (uint64_t)(stages[top].left_ms / FBXI_CERT_DAY_MS),
		    "certificate '%s' (%.80s) expires at %s (%s stage, %lld "
		    "days left); renew it: the global breakers of its "
		    "reasons open %u s before notAfter",
		    c->name, c->subject, when, stages[top].what,
		    (long long)days, c->trip_before_s);
}

/* cert_trip - open the global breaker of every bound reason that is
 * closed. @return FBX_OK or a store error; *any set if one opened. */
static int
cert_trip(struct fbx_engine *e, struct fbxi_cert *c, int *any)
{
	char note[FBX_NOTE_MAX], when[32];
	int rc;

	day_text(c->not_after_ms, when, sizeof(when));
	snprintf(note, sizeof(note), "certificate %.64s %s %s", c->name,
	    e->now >= c->not_after_ms ? "expired at" : "expires at", when);
	for (uint32_t i = 0; i < c->nreasons; i++) {
		int tripped = 0;
		rc = fbxi_breaker_trip_global(e, c->reasons[i], "engine", note,
		    c->name, &tripped);
		if (rc != FBX_OK)
			return rc;
		if (tripped)
			*any = 1; /* the ALERT line says so */
	}
	return FBX_OK;
}

void
fbxi_cert_step(struct fbx_engine *e)
{
	struct fbxi_certs *l = e->certs;
	int rc;

	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++) {
		struct fbxi_cert *c = &l->v[i];
		uint32_t fresh =
		    fbxi_cert_alerts_due(c, e->now) & ~c->alerts_sent;
		int dirty = 0, any = 0;
		if (fresh != 0) {
			cert_alert(e, c, fresh);
			c->alerts_sent |= fresh;
			dirty = 1;
		}
		if (fbxi_cert_state(c, e->now) >= FBX_CST_TRIPPING) {
			rc = cert_trip(e, c, &any);
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				return;
			}
			if (any) {
				c->tripped_ms = e->now;
				dirty = 1;
			}
		}
		if (dirty) {
			rc = cert_save(e->txn, c);
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				return;
			}
		}
	}
}

/* ------------------------------------------------------------ requests */

static struct fbxi_cert *
cert_find(struct fbxi_certs *l, const char *name)
{
	for (size_t i = 0; l != NULL && i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static void
info_of(const struct fbx_engine *e, const struct fbxi_cert *c,
    struct fbx_cert_info *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->name, sizeof(o->name), "%s", c->name);
	snprintf(o->subject, sizeof(o->subject), "%s", c->subject);
	snprintf(o->issuer, sizeof(o->issuer), "%s", c->issuer);
	o->not_before_ms = c->not_before_ms;
	o->not_after_ms = c->not_after_ms;
	o->days_left = fbxi_cert_days_left(c, e->now);
	for (uint32_t i = 0; i < c->nreasons; i++)
		snprintf(o->reasons[i], sizeof(o->reasons[i]), "%s",
		    c->reasons[i]);
	o->nreasons = c->nreasons;
	o->trip_before_s = c->trip_before_s;
	o->state = (uint8_t)fbxi_cert_state(c, e->now);
	o->alerts_sent = c->alerts_sent;
	o->tripped_ms = c->tripped_ms;
	snprintf(o->added_by, sizeof(o->added_by), "%s", c->added_by);
	o->added_ms = c->added_ms;
	for (int i = 0; i < 32; i++)
		snprintf(o->sha256 + 2 * i, 3, "%02x", c->sha256[i]);
}

/* reply_list - answer with every registered certificate. */
static void
reply_list(struct fbx_engine *e, const struct fbx_io_msg *in,
    const struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbxi_certs *l = e->certs;
	size_t n = l != NULL ? l->n : 0;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	if (n > 0) {
		rep.u.cert.c = calloc(n, sizeof(*rep.u.cert.c));
		if (rep.u.cert.c == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		for (size_t i = 0; i < n; i++)
			info_of(e, &l->v[i], &rep.u.cert.c[i]);
		rep.u.cert.n = n;
	}
	fbxi_console_reply(e, in, &rep);
	free(rep.u.cert.c);
}

/* reasons_json - the bound reasons as a JSON array that fits in cap
 * bytes with the rest of an audit record's params (at most 511): the
 * ones that do not fit are counted in the last element, "+N". */
static void
reasons_json(const struct fbxi_cert *c, char *dst, size_t cap)
{
	size_t pos = 0;
	uint32_t i;

	pos += (size_t)snprintf(dst, cap, "[");
	for (i = 0; i < c->nreasons; i++) {
		size_t need = strlen(c->reasons[i]) + 4;
		if (pos + need + 8 >= cap)
			break;
		pos += (size_t)snprintf(dst + pos, cap - pos, "%s\"%s\"",
		    i > 0 ? "," : "", c->reasons[i]);
	}
	if (i < c->nreasons)
		pos += (size_t)snprintf(dst + pos, cap - pos, "%s\"+%u\"",
		    i > 0 ? "," : "", c->nreasons - i);
	snprintf(dst + pos, cap - pos, "]");
}

static void
handle_add(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req)
{
	struct fbxi_certs *l = e->certs;
	struct fbxi_cert c, *old;
	/* the audit params are at most 511 bytes: 355 for the rest with
	 * the longest names and numbers, the reasons get what is left */
	char why[200], reasons[150], hex[65], when[32];
	int rc;

	old = cert_find(l, req->u.cert.name);
	if (old == NULL && l != NULL && l->n >= FBX_CERTS_MAX) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ETOO_MANY,
		    "%d certificates are registered: remove one first",
		    FBX_CERTS_MAX);
		return;
	}
	memset(&c, 0, sizeof(c));
	rc = fbxi_cert_parse(req->u.cert.pem, req->u.cert.pem_len, &c, why,
	    sizeof(why));
	if (rc == FBX_EBAD_CERT || rc == FBX_EINVAL) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "cert.pem: %s", why);
		return;
	}
	if (rc != FBX_OK) {
		/* OpenSSL failed under us: the request fails, nothing is
		 * written (as for an audit hash) */
		FBX_LOGE("certificate %s not registered: %s",
		    req->u.cert.name, why);
		fbxi_set_err(e, rc);
		return;
	}
	c.version = FBXI_CERT_VERSION;
	/* 0: the default, or what a renewed certificate had */
	if (req->u.cert.trip_before_s != 0)
		c.trip_before_s = req->u.cert.trip_before_s;
	else if (old != NULL)
		c.trip_before_s = old->trip_before_s;
	else
		c.trip_before_s = FBX_CERT_TRIP_BEFORE_DEFAULT;
	c.added_ms = e->now;
	c.nreasons = (uint32_t)req->u.cert.nreasons;
	for (uint32_t i = 0; i < c.nreasons; i++)
		snprintf(c.reasons[i], sizeof(c.reasons[i]), "%s",
		    req->u.cert.reasons[i]);
	snprintf(c.name, sizeof(c.name), "%s", req->u.cert.name);
	snprintf(c.added_by, sizeof(c.added_by), "%s", req->actor);
	if (old != NULL && old->not_after_ms == c.not_after_ms) {
		/* the same expiry (new reasons, the same certificate): what
		 * was said and done for it stands */
		c.alerts_sent = old->alerts_sent;
		c.tripped_ms = old->tripped_ms;
	}
	rc = cert_save(e->txn, &c);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	reasons_json(&c, reasons, sizeof(reasons));
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", c.sha256[i]);
	fbxi_audit(e, "*", req->actor, old != NULL ? "cert.renew" : "cert.add",
	    req->u.cert.note,
	    "{\"certificate\":\"%s\",\"sha256\":\"%s\",\"not_after_ms\":%lld,"
	    "\"previous_not_after_ms\":%lld,\"trip_before_s\":%u,"
	    "\"reasons\":%s,\"requested_in\":\"%s\"}",
	    c.name, hex, (long long)c.not_after_ms,
	    (long long)(old != NULL ? old->not_after_ms : 0), c.trip_before_s,
	    reasons, req->org);
	if (fbxi_err(e) != FBX_OK)
		return;
	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		e->certs = l;
	}
	if (old != NULL)
		*old = c;
	else
		l->v[l->n++] = c;
	day_text(c.not_after_ms, when, sizeof(when));
	FBX_LOGI("certificate %s %s by %s: %s, notAfter %s, %lld days left, "
	         "trips %u s before",
	    c.name, old != NULL ? "renewed" : "registered", req->actor,
	    c.subject, when, (long long)fbxi_cert_days_left(&c, e->now),
	    c.trip_before_s);
	/* an alert or trip already due happens in this turn */
	e->next_cert_check = 0;
	reply_list(e, in, req);
}

static void
handle_remove(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req)
{
	struct fbxi_certs *l = e->certs;
	struct fbxi_cert *c = cert_find(l, req->u.cert.name);
	char key[FBX_KV_KEY_MAX];
	int rc;

	if (c == NULL) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ENOT_FOUND, "no certificate named '%s'",
		    req->u.cert.name);
		return;
	}
	snprintf(key, sizeof(key), CERT_PREFIX "%s", c->name);
	rc = fbx_store_kv_del(e->txn, key);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	fbxi_audit(e, "*", req->actor, "cert.remove", req->u.cert.note,
	    "{\"certificate\":\"%s\",\"not_after_ms\":%lld,"
	    "\"requested_in\":\"%s\"}",
	    c->name, (long long)c->not_after_ms, req->org);
	if (fbxi_err(e) != FBX_OK)
		return;
	FBX_LOGI("certificate %s removed by %s; the breakers it opened stay "
	         "as they are",
	    c->name, req->actor);
	*c = l->v[--l->n];
	reply_list(e, in, req);
}

void
fbxi_handle_cert(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req)
{
	int rc;

	if (e->certs == NULL) {
		/* not loaded (memory was short at the rebuild) */
		rc = fbxi_certs_load(e, e->txn);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
	}
	if (req->u.cert.op == FBX_CERT_LIST) {
		reply_list(e, in, req);
		return;
	}
	/* certificates are global: like a global breaker, they belong to
	 * the operator of the whole engine when one is configured */
	if (e->o.admin_org != NULL && e->o.admin_org[0] != '\0' &&
	    strcmp(req->org, e->o.admin_org) != 0) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EFORBIDDEN,
		    "only organisation '%s' may register or remove "
		    "certificates",
		    e->o.admin_org);
		return;
	}
	if (req->u.cert.op == FBX_CERT_ADD)
		handle_add(e, in, req);
	else if (req->u.cert.op == FBX_CERT_REMOVE)
		handle_remove(e, in, req);
	else
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_EINVAL,
		    "unknown certificate operation");
}
