/*
 * cert_test.c: certificate-aware breakers (issue 9, item 3), with no
 * file from outside: certificates are made here with OpenSSL (X509_new,
 * a fresh EC key, notAfter set by hand). First the parser and the pure
 * decisions alone (bad PEM refused with a reason, one certificate only,
 * no private key), then the engine in-process over a fake transport and
 * a fake clock, turn by turn: registration over the console API, alerts
 * at 30, 7 and 1 days and at expiry once each (also across a restart),
 * the bound reason's global breaker opened trip_before ahead of notAfter
 * with an audit record naming the certificate, automatic locks held
 * after it (none admitted), an unbound reason unaffected, a reset that
 * re-trips while the certificate is due, renewal, removal, the admin
 * organisation rule.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certs.h"
#include "engine_fake.h"
#include "engine_int.h" /* fbxi_test_crypto_fail */

#define DAY_MS 86400000LL
#define T0_MS 1700000000000LL /* the fake wall clock at start */

/* ------------------------------------------------- certificates, made here */

static EVP_PKEY *key;
static long serial = 1;

/* make_cert - a self-signed certificate for CN cn valid from nb to na
 * (Unix seconds), as PEM in a malloc'd, NUL-terminated buffer. */
static char *
make_cert(const char *cn, int64_t nb, int64_t na, size_t *len)
{
	X509 *x = X509_new();
	X509_NAME *n;
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long l;

	if (x == NULL || b == NULL)
		goto out;
	if (X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) != 1)
		goto out;
	n = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	        (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, n) != 1)
		goto out;
	if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) == NULL)
		goto out;
	if (X509_set_pubkey(x, key) != 1 ||
	    X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	if (PEM_write_bio_X509(b, x) != 1)
		goto out;
	l = BIO_get_mem_data(b, &p);
	out = malloc((size_t)l + 1);
	if (out == NULL)
		goto out;
	memcpy(out, p, (size_t)l);
	out[l] = '\0';
	*len = (size_t)l;
out:
	X509_free(x);
	BIO_free(b);
	return out;
}

/* key_pem - the test key (private) as PEM. */
static char *
key_pem(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long l;

	if (b != NULL &&
	    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1) {
		l = BIO_get_mem_data(b, &p);
		out = calloc(1, (size_t)l + 1);
		if (out != NULL)
			memcpy(out, p, (size_t)l);
	}
	BIO_free(b);
	return out;
}

/* pub_pem - the test key's public half as PEM: a PEM with no
 * certificate. */
static char *
pub_pem(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long l;

	if (b != NULL && PEM_write_bio_PUBKEY(b, key) == 1) {
		l = BIO_get_mem_data(b, &p);
		out = calloc(1, (size_t)l + 1);
		if (out != NULL)
			memcpy(out, p, (size_t)l);
	}
	BIO_free(b);
	return out;
}

/* ---------------------------------------------- the parser, the decisions */

static void
test_parse(void)
{
	struct fbxi_cert c;
	char why[200], *pem, *two, *k, *pub, *withkey;
	size_t len = 0, len2 = 0;
	int64_t na = T0_MS / 1000 + 40 * 86400;
	int rc;

	static const char garbage[] = "this is not PEM at all\n";
	static const char broken[] = "-----BEGIN CERTIFICATE-----\n"
				     "AAAAnotbase64!!\n"
				     "-----END CERTIFICATE-----\n";

	memset(&c, 0, sizeof(c));
	rc = fbxi_cert_parse((const uint8_t *)garbage, strlen(garbage), &c,
	    why, sizeof(why));
	CHECK(rc == FBX_EBAD_CERT, "garbage: %d", rc);
	CHECK(strstr(why, "no certificate") != NULL, "why: %s", why);
	rc = fbxi_cert_parse((const uint8_t *)broken, strlen(broken), &c, why,
	    sizeof(why));
	CHECK(rc == FBX_EBAD_CERT, "broken base64: %d", rc);
	CHECK(strstr(why, "not a readable PEM certificate") != NULL,
	    "why: %s", why);
	pub = pub_pem();
	CHECK(pub != NULL, "public key PEM");
	rc = fbxi_cert_parse((const uint8_t *)pub, strlen(pub), &c, why,
	    sizeof(why));
	CHECK(rc == FBX_EBAD_CERT && strstr(why, "no certificate") != NULL,
	    "a PEM with no certificate: %d %s", rc, why);
	CHECK(fbxi_cert_parse((const uint8_t *)"x", 0, &c, why, sizeof(why)) ==
	        FBX_EINVAL,
	    "empty");

	pem = make_cert("attest-signing", T0_MS / 1000 - 86400, na, &len);
	CHECK(pem != NULL, "make_cert");
	memset(&c, 0, sizeof(c));
	rc = fbxi_cert_parse((const uint8_t *)pem, len, &c, why, sizeof(why));
	CHECK(rc == FBX_OK, "good certificate: %d %s", rc, why);
	CHECK(c.not_after_ms == na * 1000, "notAfter %lld, want %lld",
	    (long long)c.not_after_ms, (long long)(na * 1000));
	CHECK(c.not_before_ms == (T0_MS / 1000 - 86400) * 1000, "notBefore");
	CHECK(strcmp(c.subject, "CN=attest-signing") == 0, "subject '%s'",
	    c.subject);
	CHECK(strcmp(c.issuer, "CN=attest-signing") == 0, "issuer '%s'",
	    c.issuer);
	{
		BIO *b = BIO_new_mem_buf(pem, (int)len);
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		unsigned char md[32];
		unsigned int mdlen = 0;
		CHECK(x != NULL && X509_digest(x, EVP_sha256(), md, &mdlen) ==
		            1 && memcmp(md, c.sha256, 32) == 0,
		    "sha256 of the DER");
		X509_free(x);
		BIO_free(b);
	}

	/* OpenSSL failing under the engine: CRYPTO, nothing written */
	fbxi_test_crypto_fail = 1;
	memset(&c, 0, sizeof(c));
	rc = fbxi_cert_parse((const uint8_t *)pem, len, &c, why, sizeof(why));
	CHECK(rc == FBX_ECRYPTO && c.not_after_ms == 0 &&
	        fbxi_test_crypto_fail == 0,
	    "injected OpenSSL failure: %d", rc);
	/* DER is not PEM: refused, with how to convert it */
	{
		BIO *b = BIO_new_mem_buf(pem, (int)len);
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		unsigned char *der = NULL;
		int dl = x != NULL ? i2d_X509(x, &der) : -1;
		CHECK(dl > 0, "DER");
		if (dl > 0) {
			rc = fbxi_cert_parse(der, (size_t)dl, &c, why,
			    sizeof(why));
			CHECK(rc == FBX_EBAD_CERT && strstr(why, "DER?"),
			    "DER: %d %s", rc, why);
		}
		OPENSSL_free(der);
		X509_free(x);
		BIO_free(b);
	}
	/* two certificates: refused, register each under its own name */
	{
		char *other = make_cert("intermediate", T0_MS / 1000,
		    na + 86400, &len2);
		two = malloc(len + len2 + 1);
		memcpy(two, pem, len);
		memcpy(two + len, other, len2 + 1);
		rc = fbxi_cert_parse((const uint8_t *)two, len + len2, &c,
		    why, sizeof(why));
		CHECK(rc == FBX_EBAD_CERT && strstr(why, "more than one"),
		    "two certificates: %d %s", rc, why);
		free(other);
		free(two);
	}
	/* a private key next to the certificate: refused */
	k = key_pem();
	CHECK(k != NULL, "key PEM");
	withkey = malloc(len + strlen(k) + 1);
	memcpy(withkey, pem, len);
	strcpy(withkey + len, k);
	rc = fbxi_cert_parse((const uint8_t *)withkey, strlen(withkey), &c,
	    why, sizeof(why));
	CHECK(rc == FBX_EBAD_CERT && strstr(why, "private key"),
	    "certificate with its key: %d %s", rc, why);
	free(withkey);
	free(k);
	free(pub);
	free(pem);

	/* the pure decisions */
	memset(&c, 0, sizeof(c));
	c.not_after_ms = T0_MS + 40 * DAY_MS;
	c.trip_before_s = 600;
	CHECK(fbxi_cert_days_left(&c, T0_MS) == 40, "40 days");
	CHECK(fbxi_cert_state(&c, T0_MS) == FBX_CST_VALID, "valid");
	CHECK(fbxi_cert_alerts_due(&c, T0_MS) == 0, "nothing due");
	CHECK(fbxi_cert_alerts_due(&c, T0_MS + 10 * DAY_MS) ==
	        FBX_CERT_ALERT_30D,
	    "30 days");
	CHECK(fbxi_cert_state(&c, T0_MS + 10 * DAY_MS) == FBX_CST_EXPIRING,
	    "expiring");
	CHECK(fbxi_cert_alerts_due(&c, T0_MS + 35 * DAY_MS) ==
	        (FBX_CERT_ALERT_30D | FBX_CERT_ALERT_7D),
	    "5 days: 30 and 7");
	CHECK(fbxi_cert_state(&c, c.not_after_ms - 600000 - 1) ==
	        FBX_CST_EXPIRING,
	    "just before trip_before");
	CHECK(fbxi_cert_state(&c, c.not_after_ms - 600000) ==
	        FBX_CST_TRIPPING,
	    "at trip_before");
	CHECK(fbxi_cert_state(&c, c.not_after_ms) == FBX_CST_EXPIRED,
	    "expired");
	CHECK(fbxi_cert_days_left(&c, c.not_after_ms + 1) == -1, "-1 day");
	CHECK(fbxi_cert_alerts_due(&c, c.not_after_ms) == 15, "all stages");
}

/* -------------------------------------------------------------- the wire */

/* roundtrip - encode req, decode it: @return the decoder's code. */
static int
roundtrip(struct fbx_console_req *req, struct fbx_console_req *out,
    char *why, size_t wl)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	req->version = FBX_PROTOCOL_VERSION;
	snprintf(req->org, sizeof(req->org), "admin");
	snprintf(req->actor, sizeof(req->actor), "alice");
	rc = fbx_console_req_encode(req, &buf, &len);
	if (rc != FBX_OK)
		return 1000 + rc;
	rc = fbx_console_req_decode(buf, len, out, why, wl);
	free(buf);
	return rc;
}

static void
test_wire(void)
{
	struct fbx_console_req req, out;
	struct fbx_console_rep rep, rout;
	struct fbx_cert_info ci;
	static char big[FBX_CERT_PEM_MAX + 2];
	char why[256];
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = FBX_CERT_ADD;
	strcpy(req.u.cert.name, "attest-signing");
	req.u.cert.pem = (uint8_t *)"-----BEGIN CERTIFICATE-----\n";
	req.u.cert.pem_len = 28;
	strcpy(req.u.cert.reasons[0], "attestation_failed");
	strcpy(req.u.cert.reasons[1], "integrity_check");
	req.u.cert.nreasons = 2;
	req.u.cert.trip_before_s = 3600;
	strcpy(req.u.cert.note, "INC-1");
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_OK && out.kind == FBX_CREQ_CERT &&
	        out.u.cert.op == FBX_CERT_ADD &&
	        strcmp(out.u.cert.name, "attest-signing") == 0 &&
	        out.u.cert.pem_len == 28 &&
	        memcmp(out.u.cert.pem, req.u.cert.pem, 28) == 0 &&
	        out.u.cert.nreasons == 2 &&
	        strcmp(out.u.cert.reasons[1], "integrity_check") == 0 &&
	        out.u.cert.trip_before_s == 3600 &&
	        strcmp(out.u.cert.note, "INC-1") == 0,
	    "add round trip: %d %s", rc, why);
	fbx_console_req_free(&out);

	/* what the decoder refuses, with the field named */
	strcpy(req.u.cert.reasons[1], "attestation_failed");
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_EINVALID && strstr(why, "given twice"),
	    "same reason twice: %d %s", rc, why);
	req.u.cert.nreasons = 1;
	req.u.cert.trip_before_s = FBX_CERT_TRIP_BEFORE_MAX + 1;
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_EINVALID && strstr(why, "trip_before_seconds"),
	    "trip_before over 7 days: %d %s", rc, why);
	req.u.cert.trip_before_s = 0;
	req.u.cert.pem_len = 0;
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_EINVALID && strstr(why, "cert.pem"),
	    "no PEM: %d %s", rc, why);
	memset(big, 'A', sizeof(big));
	req.u.cert.pem = (uint8_t *)big;
	req.u.cert.pem_len = FBX_CERT_PEM_MAX + 1;
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == 1000 + FBX_ETOOBIG, "encoder: PEM over the cap: %d", rc);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = FBX_CERT_LIST;
	req.u.cert.pem = (uint8_t *)"x";
	req.u.cert.pem_len = 1;
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_EINVALID && strstr(why, "only for CERT_ADD"),
	    "a PEM with LIST: %d %s", rc, why);
	req.u.cert.pem_len = 0;
	strcpy(req.u.cert.name, "x");
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_EINVALID, "a name with LIST: %d %s", rc, why);
	req.u.cert.op = FBX_CERT_REMOVE;
	req.u.cert.name[0] = '\0';
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_EINVALID && strstr(why, "cert.name"),
	    "REMOVE without a name: %d %s", rc, why);
	req.u.cert.op = 7;
	rc = roundtrip(&req, &out, why, sizeof(why));
	CHECK(rc == FBX_EINVALID && strstr(why, "cert.op"), "unknown op: %d",
	    rc);

	/* the reply */
	memset(&ci, 0, sizeof(ci));
	strcpy(ci.name, "attest-signing");
	strcpy(ci.subject, "O=Example,CN=attest");
	strcpy(ci.issuer, "CN=root");
	ci.not_before_ms = 1;
	ci.not_after_ms = T0_MS;
	ci.days_left = -3;
	strcpy(ci.reasons[0], "attestation_failed");
	ci.nreasons = 1;
	ci.trip_before_s = 600;
	ci.state = FBX_CST_EXPIRED;
	ci.alerts_sent = 15;
	ci.tripped_ms = T0_MS - 600000;
	strcpy(ci.added_by, "alice");
	ci.added_ms = 5;
	memset(ci.sha256, 'a', 64);
	memset(&rep, 0, sizeof(rep));
	rep.kind = FBX_CREQ_CERT;
	rep.request_id = 9;
	rep.u.cert.c = &ci;
	rep.u.cert.n = 1;
	rc = fbx_console_rep_encode(&rep, &buf, &len);
	CHECK(rc == FBX_OK, "reply encode: %d", rc);
	rc = fbx_console_rep_decode(buf, len, &rout);
	CHECK(rc == FBX_OK && rout.kind == FBX_CREQ_CERT &&
	        rout.u.cert.n == 1 &&
	        memcmp(&rout.u.cert.c[0], &ci, sizeof(ci)) == 0,
	    "reply round trip: %d", rc);
	fbx_console_rep_free(&rout);
	free(buf);
	/* a name that is not printable ASCII is refused on decode */
	ci.subject[0] = 0x07;
	rc = fbx_console_rep_encode(&rep, &buf, &len);
	CHECK(rc == FBX_OK, "encode");
	rc = fbx_console_rep_decode(buf, len, &rout);
	CHECK(rc == FBX_EINVALID, "control character in a subject: %d", rc);
	free(buf);
	CHECK(strcmp(fbx_errname(FBX_EBAD_CERT), "BAD_CERT") == 0 &&
	        FBX_EBAD_CERT == 30,
	    "BAD_CERT is code 30");
	CHECK(strcmp(fbx_event_kind_name(FBX_EV_CERT_EXPIRING),
	          "cert_expiring") == 0,
	    "event name");
	CHECK(strcmp(fbx_cert_state_name(FBX_CST_TRIPPING), "tripping") == 0,
	    "state name");
}

/* ------------------------------------------------------------ helpers */

/* admin - only organisation "admin" may act on global controls (and
 * register certificates), as with fuseboxd --admin-org admin; set again
 * after each restart. */
static void
admin(struct env *t)
{
	struct fbx_engine_opts o;

	memset(&o, 0, sizeof(o));
	o.admin_org = "admin";
	CHECK(fbx_engine_reconfigure(t->e, &o) == FBX_OK, "reconfigure");
}

/* request - send req for org, run a turn, take the reply into rep.
 * @return its err, or -1 if none came. */
static int
request(struct env *t, const char *org, struct fbx_console_req *req,
    struct fbx_console_rep *rep)
{
	console(t, "ops", org, req);
	turn(t);
	return reply(t, "ops", rep);
}

/* events - count (and drop) the published events of kind, the last
 * one's detail in last (may be NULL). */
static int
events(struct env *t, int kind, struct fbx_event *last)
{
	struct qmsg **pp = &t->io.out[FBX_IO_EVENTS];
	int n = 0;

	while (*pp != NULL) {
		struct qmsg *m = *pp;
		struct fbx_event ev;
		if (fbx_event_decode(m->body, m->len, &ev) == FBX_OK &&
		    ev.kind == kind) {
			n++;
			if (last != NULL)
				*last = ev;
			*pp = m->next;
			q_free(m);
			continue;
		}
		pp = &m->next;
	}
	return n;
}

static void
drop_events(struct env *t)
{
	while (t->io.out[FBX_IO_EVENTS] != NULL) {
		struct qmsg *n = t->io.out[FBX_IO_EVENTS]->next;
		q_free(t->io.out[FBX_IO_EVENTS]);
		t->io.out[FBX_IO_EVENTS] = n;
	}
}

/* cert_req - a CertRequest from org. */
static int
cert_req(struct env *t, const char *org, int op, const char *name,
    const char *pem, const char *reason, uint32_t trip_before_s,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = op;
	if (name != NULL)
		snprintf(req.u.cert.name, sizeof(req.u.cert.name), "%s", name);
	if (pem != NULL) {
		req.u.cert.pem = (uint8_t *)pem;
		req.u.cert.pem_len = strlen(pem);
	}
	if (reason != NULL) {
		snprintf(req.u.cert.reasons[0], sizeof(fbx_id), "%s", reason);
		req.u.cert.nreasons = 1;
	}
	req.u.cert.trip_before_s = trip_before_s;
	return request(t, org, &req, rep);
}

/* lock - one automatic lock of device i of org for reason; @return the
 * reply's state (FBX_C_*), or -err. */
static int
lock(struct env *t, const char *org, unsigned i, const char *reason,
    uint32_t *devices)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id id;
	int rc, state;

	snprintf(id, sizeof(id), "%s-d%05u", org, i);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason),
	    "%s", reason);
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.dev_ids = &id;
	req.u.submit.cmd.ndev_ids = 1;
	rc = request(t, org, &req, &rep);
	state = rc == FBX_OK ? rep.u.submit.state : -(rc < 0 ? 1000 : rc);
	if (devices != NULL)
		*devices = rc == FBX_OK ? rep.u.submit.device_count : 0;
	fbx_console_rep_free(&rep);
	return state;
}

/* global_breaker - state of the global breaker of reason as org sees
 * it, the record into out. @return FBX_BS_* or 0 when none. */
static int
global_breaker(struct env *t, const char *org, const char *reason,
    struct fbx_breaker_info *out)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_STATUS;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), "%s",
	    reason);
	CHECK(request(t, org, &req, &rep) == FBX_OK, "breaker status");
	for (size_t i = 0; i < rep.u.breaker.n; i++) {
		if (strcmp(rep.u.breaker.b[i].org, "*") == 0) {
			st = rep.u.breaker.b[i].state;
			if (out != NULL)
				*out = rep.u.breaker.b[i];
		}
	}
	fbx_console_rep_free(&rep);
	return st;
}

/* reset_global - reset reason's global breaker, releasing; the reply's
 * cert_due in due (may be NULL). @return the reply's code */
static int
reset_global_due(struct env *t, const char *reason, char *due, size_t dl)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_RESET;
	req.u.breaker.global = 1;
	req.u.breaker.on_reset = FBX_RESET_RELEASE;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), "%s",
	    reason);
	snprintf(req.u.breaker.note, sizeof(req.u.breaker.note), "test");
	rc = request(t, "admin", &req, &rep);
	if (due != NULL)
		snprintf(due, dl, "%s",
		    rc == FBX_OK ? rep.u.breaker.cert_due : "?");
	fbx_console_rep_free(&rep);
	return rc;
}

static int
reset_global(struct env *t, const char *reason)
{
	return reset_global_due(t, reason, NULL, 0);
}

/* cert_trips - audit records breaker.trip naming certificate name. */
static int
cert_trips(struct env *t, const char *name)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	char want[128];
	uint64_t after = 0;
	int n = 0;

	snprintf(want, sizeof(want), "\"certificate\":\"%s\"", name);
	for (int page = 0; page < 100; page++) {
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		snprintf(req.u.audit_list.action,
		    sizeof(req.u.audit_list.action), "breaker.trip");
		req.u.audit_list.after = after;
		req.u.audit_list.limit = 1000;
		CHECK(request(t, "org-a", &req, &rep) == FBX_OK, "audit list");
		for (size_t i = 0; i < rep.u.audit.n; i++) {
			const struct fbx_audit_rec *r = &rep.u.audit.r[i];
			if (strcmp(r->org, "*") == 0 &&
			    strcmp(r->actor, "engine") == 0 &&
			    strstr(r->params, want) != NULL &&
			    strstr(r->note, name) != NULL)
				n++;
		}
		after = rep.u.audit.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			break;
	}
	return n;
}

/* ---------------------------------------------------------- the engine */

static void
test_engine(void)
{
	struct env t;
	struct fbx_console_rep rep;
	struct fbx_breaker_info b;
	struct fbx_event ev;
	char *pem, *renewed, *old, due[80];
	size_t len;
	int64_t na_s = T0_MS / 1000 + 40 * 86400; /* notAfter: in 40 days */
	int64_t na_ms = na_s * 1000;
	uint32_t devs = 0;
	int rc, st;

	CHECK(env_open(&t, "cert") == 0, "open engine");
	if (t.e == NULL)
		return;
	admin(&t);
	enroll(&t, "admin", 1);
	enroll(&t, "org-a", 200);
	enroll(&t, "org-b", 200);
	pem = make_cert("attest-signing", T0_MS / 1000 - 86400, na_s, &len);

	/* bad PEM: refused with its code and a reason */
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "attest-signing",
	    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
	    "attestation_failed", 0, &rep);
	CHECK(rc == FBX_EBAD_CERT, "no certificate: %d", rc);
	CHECK(strstr(rep.errmsg, "no certificate") != NULL, "message: %s",
	    rep.errmsg);
	fbx_console_rep_free(&rep);
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "attest-signing",
	    "garbage", "attestation_failed", 0, &rep);
	CHECK(rc == FBX_EBAD_CERT && rc == 30, "bad PEM: %d", rc);
	fbx_console_rep_free(&rep);
	/* no bound reason: refused by the decoder */
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "attest-signing", pem, NULL,
	    0, &rep);
	CHECK(rc == FBX_EINVALID, "no reason: %d", rc);
	fbx_console_rep_free(&rep);
	/* a global control: only the admin organisation */
	rc = cert_req(&t, "org-a", FBX_CERT_ADD, "attest-signing", pem,
	    "attestation_failed", 0, &rep);
	CHECK(rc == FBX_EFORBIDDEN, "add from org-a: %d", rc);
	fbx_console_rep_free(&rep);

	/* registered: 40 days left, nothing due */
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "attest-signing", pem,
	    "attestation_failed", 0, &rep);
	CHECK(rc == FBX_OK, "add: %d %s", rc, rep.errmsg);
	CHECK(rep.u.cert.n == 1 && rep.u.cert.c[0].days_left == 40 &&
	        rep.u.cert.c[0].state == FBX_CST_VALID &&
	        rep.u.cert.c[0].not_after_ms == na_ms &&
	        rep.u.cert.c[0].trip_before_s == 600 &&
	        strcmp(rep.u.cert.c[0].subject, "CN=attest-signing") == 0,
	    "listed after add");
	fbx_console_rep_free(&rep);
	/* OpenSSL fails during a renewal: CRYPTO, the old record stays */
	fbxi_test_crypto_fail = 1;
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "attest-signing", pem,
	    "integrity_check", 0, &rep);
	CHECK(rc == FBX_ECRYPTO, "add with OpenSSL failing: %d", rc);
	fbx_console_rep_free(&rep);
	fbxi_test_crypto_fail = 0;
	/* any organisation may list */
	rc = cert_req(&t, "org-a", FBX_CERT_LIST, NULL, NULL, NULL, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.cert.n == 1 &&
	        strcmp(rep.u.cert.c[0].reasons[0], "attestation_failed") == 0,
	    "list from org-a: %d", rc);
	fbx_console_rep_free(&rep);
	advance(&t, 2000);
	turn(&t);
	CHECK(events(&t, FBX_EV_CERT_EXPIRING, NULL) == 0, "no alert at 40 d");
	drop_events(&t);

	/* before the trip: automatic locks of the bound reason go on */
	st = lock(&t, "org-a", 0, "attestation_failed", NULL);
	CHECK(st > 0 && st != FBX_C_HELD, "lock before: state %d", st);

	/* alerts at 30, 7 and 1 days: once each */
	{
		static const int64_t at_days[] = { 30, 7, 1 };
		for (int i = 0; i < 3; i++) {
			t.io.wall = na_ms - at_days[i] * DAY_MS + 1000;
			advance(&t, 1000);
			turn(&t);
			CHECK(events(&t, FBX_EV_CERT_EXPIRING, &ev) == 1,
			    "one alert at %lld days", (long long)at_days[i]);
			CHECK(strstr(ev.detail, "attest-signing") != NULL &&
			        strcmp(ev.reason, "attestation_failed") == 0 &&
			        strcmp(ev.org, "*") == 0,
			    "alert names the certificate: %s", ev.detail);
			CHECK(ev.limit == (uint64_t)at_days[i],
			    "stage %llu", (unsigned long long)ev.limit);
			for (int k = 0; k < 3; k++) {
				advance(&t, 1500);
				turn(&t);
			}
			CHECK(events(&t, FBX_EV_CERT_EXPIRING, NULL) == 0,
			    "no repeat at %lld days", (long long)at_days[i]);
			drop_events(&t);
		}
	}
	/* a restart does not repeat them (alerts_sent is persisted) */
	CHECK(env_reopen(&t) == 0, "restart");
	admin(&t);
	advance(&t, 1500);
	turn(&t);
	advance(&t, 1500);
	turn(&t);
	CHECK(events(&t, FBX_EV_CERT_EXPIRING, NULL) == 0,
	    "no alert repeated after a restart");
	rc = cert_req(&t, "org-b", FBX_CERT_LIST, NULL, NULL, NULL, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.cert.n == 1 &&
	        rep.u.cert.c[0].alerts_sent ==
	            (FBX_CERT_ALERT_30D | FBX_CERT_ALERT_7D |
	                FBX_CERT_ALERT_1D) &&
	        rep.u.cert.c[0].days_left == 0 &&
	        rep.u.cert.c[0].state == FBX_CST_EXPIRING,
	    "after restart: alerts %u, days %lld, state %d",
	    rep.u.cert.n ? rep.u.cert.c[0].alerts_sent : 0,
	    rep.u.cert.n ? (long long)rep.u.cert.c[0].days_left : -99,
	    rep.u.cert.n ? rep.u.cert.c[0].state : -1);
	fbx_console_rep_free(&rep);

	/* just before trip_before: still closed */
	t.io.wall = na_ms - 600 * 1000 - 2000;
	advance(&t, 1000);
	turn(&t);
	CHECK(global_breaker(&t, "org-a", "attestation_failed", NULL) !=
	        FBX_BS_OPEN,
	    "closed 602 s before notAfter");
	drop_events(&t);
	/* trip_before (600 s) ahead of notAfter: the global breaker opens,
	 * by itself, named in the audit log */
	t.io.wall = na_ms - 600 * 1000;
	advance(&t, 1000);
	turn(&t);
	CHECK(global_breaker(&t, "org-a", "attestation_failed", &b) ==
	        FBX_BS_OPEN,
	    "open 600 s before notAfter");
	CHECK(strcmp(b.tripped_by, "engine") == 0 &&
	        strstr(b.note, "attest-signing") != NULL,
	    "tripped by the engine for the certificate: %s / %s",
	    b.tripped_by, b.note);
	CHECK(events(&t, FBX_EV_BREAKER_TRIPPED, &ev) == 1 &&
	        strcmp(ev.org, "*") == 0,
	    "breaker_tripped event");
	CHECK(cert_trips(&t, "attest-signing") == 1,
	    "one audit record naming the certificate");
	drop_events(&t);

	/* automatic locks of the bound reason are held from now on: none
	 * admitted, in any organisation (the reply counts the one device
	 * each targets; none is sent) */
	for (unsigned i = 1; i <= 5; i++) {
		st = lock(&t, i % 2 ? "org-a" : "org-b", i,
		    "attestation_failed", &devs);
		CHECK(st == FBX_C_HELD && devs == 1,
		    "lock %u after the trip: state %d, %u devices", i, st,
		    devs);
	}
	/* an unbound reason is unaffected */
	st = lock(&t, "org-a", 10, "jailbreak", NULL);
	CHECK(st > 0 && st != FBX_C_HELD, "unbound reason: state %d", st);
	CHECK(global_breaker(&t, "org-a", "jailbreak", NULL) != FBX_BS_OPEN,
	    "jailbreak breaker not opened");

	/* expired: still open, the expiry alert goes out once */
	t.io.wall = na_ms + 1000;
	advance(&t, 1000);
	turn(&t);
	CHECK(events(&t, FBX_EV_CERT_EXPIRING, &ev) == 1 && ev.count == 0 &&
	        ev.limit == 0,
	    "expiry alert");
	drop_events(&t);

	/* a reset while the certificate is still expired: released, then
	 * opened again at the next check (decided and documented) */
	rc = reset_global_due(&t, "attestation_failed", due, sizeof(due));
	CHECK(rc == FBX_OK, "reset: %d", rc);
	/* the reply names the certificate that undoes it (an operator once
	 * saw "closed" and nothing else) */
	CHECK(strcmp(due, "attest-signing") == 0,
	    "reset while expired names the certificate: '%s'", due);
	advance(&t, 1100);
	turn(&t);
	CHECK(global_breaker(&t, "org-a", "attestation_failed", NULL) ==
	        FBX_BS_OPEN,
	    "re-tripped after a reset while expired");
	CHECK(cert_trips(&t, "attest-signing") == 2, "second trip audited");
	st = lock(&t, "org-b", 11, "attestation_failed", &devs);
	CHECK(st == FBX_C_HELD, "held again: state %d", st);

	/* renewed: the same name, a certificate valid one more year */
	renewed = make_cert("attest-signing", na_s - 86400, na_s + 365 * 86400,
	    &len);
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "attest-signing", renewed,
	    "attestation_failed", 0, &rep);
	CHECK(rc == FBX_OK && rep.u.cert.n == 1 &&
	        rep.u.cert.c[0].state == FBX_CST_VALID &&
	        rep.u.cert.c[0].alerts_sent == 0,
	    "renewed: %d", rc);
	fbx_console_rep_free(&rep);
	/* the breaker stays open until an operator resets it */
	advance(&t, 1100);
	turn(&t);
	CHECK(global_breaker(&t, "org-a", "attestation_failed", NULL) ==
	        FBX_BS_OPEN,
	    "open until reset");
	CHECK(reset_global_due(&t, "attestation_failed", due, sizeof(due)) ==
	        FBX_OK && due[0] == '\0',
	    "reset after renewal: no certificate due ('%s')", due);
	for (int k = 0; k < 3; k++) {
		advance(&t, 1100);
		turn(&t);
	}
	CHECK(global_breaker(&t, "org-a", "attestation_failed", NULL) !=
	        FBX_BS_OPEN,
	    "stays closed after renewal and reset");
	st = lock(&t, "org-a", 12, "attestation_failed", NULL);
	CHECK(st > 0 && st != FBX_C_HELD, "locks go on: state %d", st);

	/* an expired certificate registered now trips in the same turn */
	old = make_cert("old-ca", T0_MS / 1000 - 400 * 86400,
	    t.io.wall / 1000 - 86400, &len);
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "old-ca", old, "jailbreak",
	    3600, &rep);
	CHECK(rc == FBX_OK && rep.u.cert.n == 2, "add expired: %d", rc);
	fbx_console_rep_free(&rep);
	CHECK(global_breaker(&t, "org-a", "jailbreak", NULL) == FBX_BS_OPEN,
	    "expired at registration: tripped at once");
	CHECK(events(&t, FBX_EV_CERT_EXPIRING, &ev) == 1,
	    "one alert for every stage reached at once");
	/* the same certificate again, trip_before not given: what was set
	 * and what was sent stand */
	rc = cert_req(&t, "admin", FBX_CERT_ADD, "old-ca", old, "jailbreak", 0,
	    &rep);
	CHECK(rc == FBX_OK, "re-add: %d", rc);
	for (size_t i = 0; rc == FBX_OK && i < rep.u.cert.n; i++)
		if (strcmp(rep.u.cert.c[i].name, "old-ca") == 0)
			CHECK(rep.u.cert.c[i].trip_before_s == 3600 &&
			        rep.u.cert.c[i].alerts_sent == 15 &&
			        rep.u.cert.c[i].tripped_ms != 0,
			    "kept: %u s, alerts %u",
			    rep.u.cert.c[i].trip_before_s,
			    rep.u.cert.c[i].alerts_sent);
	fbx_console_rep_free(&rep);
	advance(&t, 1100);
	turn(&t);
	CHECK(events(&t, FBX_EV_CERT_EXPIRING, NULL) == 0,
	    "no alert repeated for the same certificate");

	/* removal */
	rc = cert_req(&t, "org-a", FBX_CERT_REMOVE, "old-ca", NULL, NULL, 0,
	    &rep);
	CHECK(rc == FBX_EFORBIDDEN, "remove from org-a: %d", rc);
	fbx_console_rep_free(&rep);
	rc = cert_req(&t, "admin", FBX_CERT_REMOVE, "old-ca", NULL, NULL, 0,
	    &rep);
	CHECK(rc == FBX_OK && rep.u.cert.n == 1, "remove: %d", rc);
	fbx_console_rep_free(&rep);
	rc = cert_req(&t, "admin", FBX_CERT_REMOVE, "old-ca", NULL, NULL, 0,
	    &rep);
	CHECK(rc == FBX_ENOT_FOUND, "remove again: %d", rc);
	fbx_console_rep_free(&rep);
	CHECK(reset_global(&t, "jailbreak") == FBX_OK, "reset jailbreak");
	for (int k = 0; k < 3; k++) {
		advance(&t, 1100);
		turn(&t);
	}
	CHECK(global_breaker(&t, "org-a", "jailbreak", NULL) != FBX_BS_OPEN,
	    "removed certificate trips nothing");
	/* the longest names and 8 long reasons: the audit record's params
	 * stay whole JSON (the reasons that do not fit are counted) */
	{
		struct fbx_console_req req;
		char nm[FBX_ID_MAX + 1];
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_CERT;
		req.u.cert.op = FBX_CERT_ADD;
		memset(nm, 'n', FBX_ID_MAX);
		nm[FBX_ID_MAX] = '\0';
		strcpy(req.u.cert.name, nm);
		req.u.cert.pem = (uint8_t *)renewed;
		req.u.cert.pem_len = strlen(renewed);
		for (int i = 0; i < FBX_CERT_REASONS_MAX; i++) {
			memset(req.u.cert.reasons[i], 'r', FBX_ID_MAX);
			req.u.cert.reasons[i][0] = (char)('a' + i);
			req.u.cert.reasons[i][FBX_ID_MAX] = '\0';
		}
		req.u.cert.nreasons = FBX_CERT_REASONS_MAX;
		rc = request(&t, "admin", &req, &rep);
		CHECK(rc == FBX_OK && rep.u.cert.n == 2, "8 long reasons: %d",
		    rc);
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		strcpy(req.u.audit_list.action, "cert.add");
		req.u.audit_list.limit = 1000;
		rc = request(&t, "admin", &req, &rep);
		CHECK(rc == FBX_OK && rep.u.audit.n >= 1, "audit: %d", rc);
		if (rc == FBX_OK && rep.u.audit.n >= 1) {
			const char *pp = rep.u.audit.r[rep.u.audit.n - 1].params;
			size_t pl = strlen(pp);
			CHECK(strstr(pp, nm) != NULL && pl > 2 &&
			        strcmp(pp + pl - 2, "\"}") == 0 &&
			        strstr(pp, "\"+") != NULL,
			    "params whole: %s", pp);
		}
		fbx_console_rep_free(&rep);
		rc = cert_req(&t, "admin", FBX_CERT_REMOVE, nm, NULL, NULL, 0,
		    &rep);
		CHECK(rc == FBX_OK, "remove the long one: %d", rc);
		fbx_console_rep_free(&rep);
	}
	/* after a restart the list is what was committed */
	CHECK(env_reopen(&t) == 0, "restart");
	admin(&t);
	rc = cert_req(&t, "admin", FBX_CERT_LIST, NULL, NULL, NULL, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.cert.n == 1 &&
	        strcmp(rep.u.cert.c[0].name, "attest-signing") == 0 &&
	        rep.u.cert.c[0].not_after_ms == (na_s + 365 * 86400) * 1000,
	    "list after restart");
	fbx_console_rep_free(&rep);

	free(old);
	free(renewed);
	free(pem);
	env_close(&t);
}

int
main(void)
{
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (key == NULL) {
		fprintf(stderr, "cannot make an EC key\n");
		return 1;
	}
	test_parse();
	test_wire();
	test_engine();
	EVP_PKEY_free(key);
	printf("cert_test: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
