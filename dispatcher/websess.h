/*
 * websess.h: web console sessions (issue 12). A browser cannot speak
 * CURVE, so a principal that is already authenticated over CURVE asks
 * the engine for a session token (`fuseboxctl web login`: a
 * PrincipalRequest WEB_LOGIN); the HTTP thread then maps the token back
 * to that principal and its key, and sends the browser's requests to the
 * engine as console requests of that principal (fbx_web.h). Tokens live
 * in memory only (a restart logs everyone out), under their own mutex:
 * the engine thread mints them, the HTTP threads look them up. Internal
 * to dispatcher/.
 */
#ifndef FBXI_WEBSESS_H
#define FBXI_WEBSESS_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_proto.h"

struct fbx_engine;
struct fbx_io_msg;

#define FBX_WEB_TOKEN_LEN 64      /* hex characters: 256 random bits */
#define FBX_WEB_SESSIONS_MAX 4096 /* live tokens in all: a login is
                                   * refused (BUSY) beyond */
#define FBX_WEB_SESSIONS_PER_PRINCIPAL 16 /* a principal's own oldest goes
                                           * for its next one */
#define FBX_WEB_TTL_DEFAULT_S (12u * 3600)

struct fbxi_websess;

/** fbxi_websess_new - an empty table. @return FBX_OK; FBX_ENOMEM. */
int fbxi_websess_new(struct fbxi_websess **out);
/** fbxi_websess_free - NULL is accepted. */
void fbxi_websess_free(struct fbxi_websess *w);

/**
 * fbxi_websess_find - the principal and key a token was minted for, if
 * it has not expired (now_ms: wall clock). Any thread. The caller still
 * checks that the key is the principal's current key.
 * @return FBX_OK; FBX_ENOT_FOUND (unknown, malformed or expired: an
 * expired one is forgotten).
 */
int fbxi_websess_find(struct fbxi_websess *w, const char *token,
    int64_t now_ms, char *user, size_t ul, char *key41, int64_t *expires_ms);

/**
 * fbxi_websess_claim - the page exchanges the token of a login address
 * (which the browser keeps in its history) for a fresh one, once: the
 * session keeps its principal, key and expiry, and answers only to
 * `fresh` from now on. Any thread.
 * @return FBX_OK and fresh; FBX_ENOT_FOUND (unknown, malformed, expired,
 * or a token exchanged before: it is no longer known); FBX_ESTATE (the
 * token an exchange gave); FBX_ECRYPTO (no random bytes).
 */
int fbxi_websess_claim(struct fbxi_websess *w, const char *token,
    int64_t now_ms, char fresh[FBX_WEB_TOKEN_LEN + 1]);

/**
 * fbxi_websess_end - the page signs out: its session ends at once,
 * whatever its key's state (ending one never needs the store). Any
 * thread.
 * @return FBX_OK with the session's principal and the id its web.login
 * audit record gave it (sid: 16 hex digits); FBX_ENOT_FOUND.
 */
int fbxi_websess_end(struct fbxi_websess *w, const char *token,
    int64_t now_ms, char *user, size_t ul, char sid[17]);

/** fbxi_websess_forget - drop a token (its key no longer holds). Any
 * thread. */
void fbxi_websess_forget(struct fbxi_websess *w, const char *token);

/** fbxi_handle_web_login - PrincipalRequest WEB_LOGIN (in a request's
 * child transaction): mint a token for the request's own principal,
 * audit it (web.login, organisation _auth) and answer with one JSON
 * line {"token","expires_ms","principal","url"}. */
void fbxi_handle_web_login(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req);

#endif
