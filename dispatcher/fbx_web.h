/*
 * fbx_web.h: the door from the web console's HTTP threads into the
 * engine (issue 12). The HTTP threads never read the engine's memory:
 * they map a browser's session token to its principal (fbx_webgate_who,
 * under the tables' mutexes, as the ZAP handler maps a CURVE key) and
 * send console requests over an in-process ZeroMQ socket that the
 * engine's loop reads with its console input, carrying that principal's
 * name and key. So the engine authorises, scopes and audits them exactly
 * as a request from fuseboxctl with that key.
 */
#ifndef FBX_WEB_H
#define FBX_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_engine.h"
#include "fbx_proto.h"

typedef struct fbx_webgate fbx_webgate;

/* A session's principal, as the tables say now. */
struct fbx_web_who {
	char principal[FBX_ID_MAX + 1];
	char key[41];
	int kind;       /* enum fbx_principal_kind */
	uint32_t roles; /* FBX_ROLE_* */
	int all_orgs;
	size_t norgs;
	fbx_id orgs[FBX_PRINCIPAL_ORGS_MAX];
	int64_t expires_ms; /* the token's, wall clock */
};

#define FBX_WEB_CALL_MAX 320 /* requests in one fbx_webgate_call */

/**
 * fbx_engine_webgate - eng's web door, or NULL when its transport is not
 * ZeroMQ. Valid until fbx_engine_close(); call it on the thread that
 * opened eng, then use it from any thread.
 */
fbx_webgate *fbx_engine_webgate(fbx_engine *eng);

/**
 * fbx_webgate_who - the principal a token was minted for, if the token
 * has not expired and the principal's key still holds (not revoked, not
 * rotated; a token whose key no longer holds is forgotten). Any thread.
 * @return FBX_OK and *out; FBX_ENOT_FOUND.
 */
int fbx_webgate_who(fbx_webgate *g, const char *token, struct fbx_web_who *out);

/**
 * fbx_webgate_claim - the page exchanges the token of the login address
 * it was opened with (kept in the browser's history) for a fresh one
 * (65 bytes with its NUL), once: the address's token is dead from then
 * on. The principal's key must still hold, as for fbx_webgate_who.
 * Any thread.
 * @return FBX_OK, *out and fresh; FBX_ENOT_FOUND (unknown, expired,
 * revoked or rotated, or exchanged before); FBX_ESTATE (a token that an
 * exchange gave); FBX_ECRYPTO.
 */
int fbx_webgate_claim(fbx_webgate *g, const char *token, char *fresh,
    struct fbx_web_who *out);
#define FBX_WEB_TOKEN_HEX 64 /* a token's hex digits */

/**
 * fbx_webgate_end - the page signs out: the token's session ends at
 * once (whatever its key's state; nothing is written, so it works while
 * the engine is degraded) and the daemon logs which one. Any thread.
 * @return FBX_OK; FBX_ENOT_FOUND (unknown, expired or ended before).
 */
int fbx_webgate_end(fbx_webgate *g, const char *token);

/**
 * fbx_webgate_call - send n console requests as who (version, request_id
 * and actor are filled in) and wait for their replies, at most
 * timeout_ms in all. Any thread; blocks. rep[i] answers req[i]: free
 * each with fbx_console_rep_free(). A request without a reply in time
 * gets rep[i].err FBX_ETIMEOUT; one that could not be sent FBX_EIO or
 * its encoder's error.
 * @return FBX_OK (each rep[i] says how its request went); FBX_EINVAL
 * (n 0 or over FBX_WEB_CALL_MAX); FBX_ENOMEM; FBX_EUNREACHABLE (no
 * socket: the engine is closing).
 */
int fbx_webgate_call(fbx_webgate *g, const struct fbx_web_who *who,
    struct fbx_console_req *req, size_t n, struct fbx_console_rep *rep,
    int timeout_ms);

/**
 * fbx_webgate_close - the engine stopped reading web requests (its loop
 * returned): calls under way end within 100 ms and new ones fail at once
 * with FBX_EUNREACHABLE, so no HTTP thread waits out its timeout while
 * the daemon stops. Any thread.
 */
void fbx_webgate_close(fbx_webgate *g);

#endif
