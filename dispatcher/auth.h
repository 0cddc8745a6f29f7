/*
 * auth.h: principals (issue 10). Who may use the engine is a table of
 * principals kept in the store ("pri/<name>") and mirrored in memory for
 * the ZAP handler, which runs on its own thread and answers CURVE
 * handshakes from it, and for the engine, which checks every message's
 * authenticated principal (ZAP User-Id and key) against it. Only the
 * engine thread changes the table, after the turn that changed the store
 * committed. Internal to dispatcher/.
 */
#ifndef FBXI_AUTH_H
#define FBXI_AUTH_H

#include <pthread.h>
#include <stdint.h>

#include "fbx_proto.h"
#include "fbx_store.h"

struct fbx_engine;
struct fbx_io_msg;

struct fbxi_principal {
	char name[FBX_ID_MAX + 1];
	int kind;       /* enum fbx_principal_kind */
	uint32_t roles; /* FBX_ROLE_* */
	int revoked;
	int all_orgs;
	size_t norgs;
	fbx_id orgs[FBX_PRINCIPAL_ORGS_MAX];
	char key[41]; /* Z85 public key */
	int64_t created_ms, updated_ms;
	char changed_by[FBX_ID_MAX + 1];
};

/* The table: sorted by name. The ZAP thread reads it under mu; the
 * engine thread, its only writer, reads it without. */
struct fbxi_auth {
	pthread_mutex_t mu;
	struct fbxi_principal *v;
	size_t n;
	uint64_t zap_ok, zap_refused; /* under mu */
	int loaded; /* under mu: the store's table is in (handshakes wait) */
	struct fbxi_websess *web; /* web console tokens (websess.h) */
};

/** fbxi_auth_new - an empty table (refuses every key).
 * @return FBX_OK and *out; FBX_ENOMEM. */
int fbxi_auth_new(struct fbxi_auth **out);
/** fbxi_auth_free - NULL is accepted. */
void fbxi_auth_free(struct fbxi_auth *a);

/** fbxi_auth_load - replace the table with what txn holds.
 * @return FBX_OK; FBX_ENOMEM, FBX_ECORRUPT or a store error (the table
 * is left as it was). */
int fbxi_auth_load(struct fbxi_auth *a, fbx_txn *txn);

/** fbxi_auth_zap - the ZAP handler's question: is key_z85 the key of an
 * active principal? Any thread. @return 1 and its name in name (cap
 * FBX_ID_MAX + 1), or 0. Counts the answer. */
int fbxi_auth_zap(struct fbxi_auth *a, const char *key_z85, char *name);

/** fbxi_auth_loaded - whether the table was loaded from the store: until
 * then the ZAP handler lets handshakes wait rather than refuse them
 * (libzmq never retries a refused handshake). Any thread. */
int fbxi_auth_loaded(struct fbxi_auth *a);

/** fbxi_auth_find - the principal of this name (active or revoked), or
 * NULL. Engine thread only; valid until the next fbxi_auth_load. */
const struct fbxi_principal *fbxi_auth_find(
    const struct fbxi_auth *a, const char *name);

/** fbxi_principal_encode, _decode - the store record (version 1).
 * @return FBX_OK; encode FBX_ETOOBIG; decode FBX_ECORRUPT. */
int fbxi_principal_encode(
    const struct fbxi_principal *p, char *buf, size_t cap, size_t *len);
int fbxi_principal_decode(
    const char *name, const void *buf, size_t len, struct fbxi_principal *p);

/** fbxi_principal_orgs_parse - "*" or ids separated by ','.
 * @return FBX_OK; FBX_EINVALID; FBX_ETOOBIG. */
int fbxi_principal_orgs_parse(const char *s, struct fbxi_principal *p);

/** fbxi_principal_may_org - whether p may act for org. */
int fbxi_principal_may_org(const struct fbxi_principal *p, const char *org);

/* ---- the engine's side (engine thread) */

/** fbxi_auth_msg - the active principal that sent in: the ZAP User-Id
 * names it and the key it authenticated with is still its key (a
 * rotated or revoked key's open connections are refused). NULL if none;
 * with opts.auth_off a built-in principal that may do anything. */
const struct fbxi_principal *fbxi_auth_msg(
    struct fbx_engine *e, const struct fbx_io_msg *in);

/** fbxi_auth_console - check a decoded console request against its
 * principal: kind, actor, role, organisation scope, origin. On refusal
 * the request is answered FORBIDDEN, counted and audited (in the turn's
 * transaction) and 0 is returned; 1 = go on. */
int fbxi_auth_console(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req);

/** fbxi_auth_refuse_audit - audit a refusal the engine made elsewhere
 * (gateway). */
void fbxi_auth_refuse_audit(struct fbx_engine *e, const char *org,
    const char *who, const char *what, const char *why);

struct fbx_gw_msg;
/** fbxi_auth_gateway - check a decoded gateway message against its
 * principal: an active gateway key, and a HELLO only for organisations
 * in its scope. session: the connection has a session. On refusal the
 * message is counted and (a HELLO, or the first refused message of a
 * session) audited, why says it, and FBX_EFORBIDDEN is returned: the
 * caller answers it. @return FBX_OK or FBX_EFORBIDDEN. */
int fbxi_auth_gateway(struct fbx_engine *e, const struct fbx_io_msg *in,
    int session, const struct fbx_gw_msg *m, char *why, size_t wl);

/** fbxi_handle_principal - PrincipalRequest (in a request's child
 * transaction). */
void fbxi_handle_principal(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req);

/** fbxi_auth_committed - after a committed turn: reload the table if a
 * principal changed. */
void fbxi_auth_committed(struct fbx_engine *e);

/** fbxi_auth_open - load the table at start-up (engine open). */
int fbxi_auth_open(struct fbx_engine *e);

#endif
