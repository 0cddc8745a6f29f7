/*
 * certs.h: certificates that automatic reasons depend on (the attestation
 * provider's signing certificate -> attestation_failed). Operators
 * register them through CertRequest; the engine keeps the list in memory
 * (loaded at recovery), alerts 30, 7 and 1 days before notAfter and at
 * expiry, and trips the global breaker of every bound reason by itself
 * from trip_before seconds before notAfter on, because a detector whose
 * certificate expires fails for the whole fleet at once (incidents 1 and
 * 2). Internal to dispatcher/.
 */
#ifndef FBXI_CERTS_H
#define FBXI_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_proto.h"
#include "fbx_store.h"

struct fbx_engine;
struct fbx_io_msg;

#define FBXI_CERT_VERSION 1
#define FBXI_CERT_DAY_MS 86400000LL

/* One registered certificate, persisted under "cert/<scope>/<name>"
 * (scope "*": global) in the kv table (fixed layout, host byte order,
 * like the breakers). Only what the engine needs is kept: the PEM itself
 * is not stored. */
struct fbxi_cert {
	uint32_t version;        /* FBXI_CERT_VERSION */
	uint32_t trip_before_s;  /* 1..FBX_CERT_TRIP_BEFORE_MAX */
	int64_t not_before_ms;
	int64_t not_after_ms;
	int64_t added_ms;        /* registered or renewed */
	int64_t tripped_ms;      /* last breaker it opened, 0 = never */
	uint32_t alerts_sent;    /* FBX_CERT_ALERT_*: each stage once */
	uint32_t nreasons;       /* 1..FBX_CERT_REASONS_MAX */
	fbx_id name;
	fbx_id added_by;
	fbx_id reasons[FBX_CERT_REASONS_MAX];
	char subject[FBX_CERT_TEXT_MAX]; /* RFC 2253, printable ASCII */
	char issuer[FBX_CERT_TEXT_MAX];
	uint8_t sha256[32];      /* of the DER */
};

/* The engine's copy of every record (at most FBX_CERTS_MAX). */
struct fbxi_certs {
	size_t n;
	struct fbxi_cert v[FBX_CERTS_MAX];
};

/**
 * fbxi_cert_parse - read exactly one X.509 certificate from PEM text
 * with OpenSSL: notBefore, notAfter, subject, issuer, SHA-256 of the DER.
 * Other fields of out are left as they were.
 * @param[out] why on FBX_EBAD_CERT a human reason (NUL-terminated).
 * @return FBX_OK; FBX_EBAD_CERT (not PEM, no certificate, more than one,
 * a private key in the text, unreadable or inverted validity);
 * FBX_ECRYPTO (OpenSSL could not allocate or hash); FBX_EINVAL (NULL or
 * more than FBX_CERT_PEM_MAX bytes).
 */
int fbxi_cert_parse(const uint8_t *pem, size_t len, struct fbxi_cert *out,
    char *why, size_t whylen);

/* fbxi_cert_state - enum fbx_cert_state of c at now_ms (pure). */
int fbxi_cert_state(const struct fbxi_cert *c, int64_t now_ms);

/* fbxi_cert_days_left - whole days from now_ms to notAfter, rounded
 * towards minus infinity (-1 in the first day after expiry). */
int64_t fbxi_cert_days_left(const struct fbxi_cert *c, int64_t now_ms);

/* fbxi_cert_due - a registered certificate bound to reason that is
 * due now (expired, or within its trip_before: the certificate check
 * opens the reason's global breaker), NULL if none. */
const struct fbxi_cert *fbxi_cert_due(
    const struct fbx_engine *e, const char *reason);

/* fbxi_cert_alerts_due - FBX_CERT_ALERT_* stages reached at now_ms (30,
 * 7, 1 days or less left; expired), sent or not (pure). */
uint32_t fbxi_cert_alerts_due(const struct fbxi_cert *c, int64_t now_ms);

/**
 * fbxi_certs_load - replace the engine's list with the records of txn.
 * A record that fails its checks is skipped and logged (it cannot stop
 * the engine from starting); its key stays for an operator to remove.
 * @return FBX_OK, FBX_ENOMEM, or a store error.
 */
int fbxi_certs_load(struct fbx_engine *e, fbx_txn *txn);

/* fbxi_certs_free - at engine close. */
void fbxi_certs_free(struct fbx_engine *e);

/**
 * fbxi_cert_step - the periodic check, in the turn's write transaction
 * (the loop calls it about once a second): for each certificate, the
 * alert of a newly reached stage (one event even if several stages were
 * reached at once), and while now >= notAfter - trip_before, the global
 * breaker of every bound reason opened if it is closed (also right after
 * an operator reset it: see docs/operations.md). What it changes is
 * written through; a store error latches the turn's error.
 */
void fbxi_cert_step(struct fbx_engine *e);

/* fbxi_handle_cert - CertRequest: ADD (or renew), LIST, REMOVE. */
void fbxi_handle_cert(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req);

#endif
