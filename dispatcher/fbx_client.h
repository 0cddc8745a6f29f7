/*
 * fbx_client.h: the console client of fusebox, a thin synchronous
 * request/reply channel to the engine's console endpoint. The operator CLI,
 * the gateway simulator, the tests and the benchmarks all speak to the
 * engine through it. No ZeroMQ type appears here: the handle is opaque.
 */
#ifndef FBX_CLIENT_H
#define FBX_CLIENT_H

#include "fbx_err.h"
#include "fbx_proto.h"

typedef struct fbx_client fbx_client;

/**
 * fbx_client_open - create a client for the console endpoint.
 *
 * The connection is made lazily by ZeroMQ; opening succeeds even if no
 * engine listens yet. A client is not thread-safe: use one per thread.
 *
 * @param[in] endpoint a ZeroMQ endpoint ("ipc:///tmp/fusebox/console.sock",
 * "tcp://127.0.0.1:7301"); copied, the caller keeps ownership.
 * @param[in] timeout_ms how long fbx_client_call() waits for a reply;
 * values <= 0 select 5000 ms. A breaker trip or rollout pause sent while
 * the engine is degraded is answered by its next retry turn, which it
 * brings within 100 ms, 1 s after the last one at the earliest
 * (fuseboxctl and the web console wait 10 s for them all the same).
 * @param[out] out the client, written only on success. Free it with
 * fbx_client_close().
 * @return FBX_OK, FBX_EINVALID (NULL or over-long endpoint, or an endpoint
 * ZeroMQ rejects), FBX_ENOMEM, FBX_EIO (ZeroMQ could not create a context
 * or socket).
 */
int fbx_client_open(const char *endpoint, int timeout_ms, fbx_client **out);

/* How fbx_client_open2 authenticates (issue 10). fbx_client_open uses
 * the defaults (opts NULL). */
struct fbx_client_opts {
	/* the client's key file (principal, public and secret key); NULL =
	 * $FUSEBOX_KEY, else $XDG_CONFIG_HOME/fusebox/client.key (default
	 * ~/.config/fusebox/client.key) */
	const char *key_file;
	/* the engine's public key file; NULL = $FUSEBOX_SERVER_KEY, else
	 * .../fusebox/server.pub */
	const char *server_key_file;
	/* no CURVE at all (tests that show a plaintext client is refused) */
	int plaintext;
	/* on FBX_ECONFIG: one line saying which file and why; may be NULL */
	char *why;
	size_t whylen;
};

/**
 * fbx_client_open2 - fbx_client_open with keys. The engine accepts only
 * CURVE clients whose key is an active principal's; a call over a
 * connection whose key the engine refused returns FBX_EFORBIDDEN.
 * @param[in] opts NULL = the defaults above.
 * @return as fbx_client_open, and FBX_ECONFIG (a key file is missing,
 * malformed, or readable by others; opts->why says which).
 */
int fbx_client_open2(const char *endpoint, int timeout_ms,
    const struct fbx_client_opts *opts, fbx_client **out);

/**
 * fbx_client_handshake_drops - connections the engine closed before their
 * CURVE handshake passed, since the client's socket was made or a
 * handshake last passed: a server
 * key that is not the engine's (or an endpoint that is no fusebox
 * console) looks so, where a frozen engine leaves the handshake open.
 */
unsigned fbx_client_handshake_drops(fbx_client *c);

/**
 * fbx_client_principal - the principal named in the client's key file
 * ("" for a plaintext client). Valid until fbx_client_close().
 */
const char *fbx_client_principal(const fbx_client *c);

/**
 * fbx_client_wait_ready - wait until something accepts connections at
 * endpoint (an ipc:// socket file that exists and is listened on, or a
 * tcp:// port), at most ms, probing every 20 ms with a plain connect.
 * For a client started together with the engine, which creates its
 * socket only after recovery. Endpoints it cannot probe (abstract ipc,
 * other transports, a tcp host that does not answer) count as ready.
 * @return FBX_OK, FBX_EUNREACHABLE (nothing listens after ms),
 * FBX_EINVALID (NULL endpoint).
 */
int fbx_client_wait_ready(const char *endpoint, int ms);

/**
 * fbx_client_close - close the socket and free the client. Requests still
 * queued are dropped (linger 0). NULL is accepted.
 */
void fbx_client_close(fbx_client *c);

/**
 * fbx_client_set_timeout - change the reply timeout of later calls.
 * Values <= 0 select 5000 ms. NULL is accepted and ignored.
 */
void fbx_client_set_timeout(fbx_client *c, int timeout_ms);

/**
 * fbx_client_call - send one console request and wait for its reply.
 *
 * The call fills in req->version (FBX_PROTOCOL_VERSION) and a fresh
 * req->request_id; every other field, including org and actor, is the
 * caller's. Replies to earlier requests that timed out are recognised by
 * their request id and discarded.
 *
 * Several nodes (cluster mode): a MOVED reply names the node that owns
 * the organisation; the call sends the request there (at most twice) and
 * the client talks to that node from then on (fbx_client_endpoint). When
 * that node does not answer (FBX_ETIMEOUT, FBX_EUNREACHABLE), the client
 * goes back to the endpoint it was opened with, and
 * fbx_client_silent_owner names the node that did not answer.
 *
 * A timed-out request may still be executed by the engine. Calling again
 * with the same request is safe: a submit carries an idempotency key,
 * enrolment is an upsert, and the other requests only read or remove.
 *
 * @param[in,out] req the request; read only apart from version and
 * request_id. Its heap fields stay the caller's.
 * @param[out] rep on FBX_OK, the decoded reply. rep->err holds the
 * engine's verdict (FBX_OK or an fbx_err code with rep->errmsg). The
 * reply owns heap memory (pages of devices, deliveries, commands): free it
 * with fbx_console_rep_free(), which also accepts a zeroed reply. On any
 * other return rep is left zeroed and needs no freeing.
 * @return FBX_OK (a reply arrived; look at rep->err),
 * FBX_ETIMEOUT (no reply within the timeout, also when the engine
 * accepts connections but does not complete the handshake: frozen or
 * stuck in a turn),
 * FBX_EUNREACHABLE (no engine is listening: the ipc socket file is
 * missing, or no connection could be made within the timeout),
 * FBX_EMALFORMED (a reply that does not decode),
 * FBX_EINVALID or FBX_ETOOBIG (the request could not be encoded; nothing
 * was sent), FBX_ENOMEM, FBX_EIO (a ZeroMQ error).
 */
int fbx_client_call(
    fbx_client *c, struct fbx_console_req *req, struct fbx_console_rep *rep);

/**
 * fbx_client_endpoint - the endpoint the client talks to: the one given
 * to fbx_client_open(), or the owner a MOVED named (fbx_client_call).
 * @return a string owned by the client, valid until fbx_client_close().
 */
const char *fbx_client_endpoint(const fbx_client *c);

/**
 * fbx_client_silent_owner - after fbx_client_call returned FBX_ETIMEOUT or
 * FBX_EUNREACHABLE: the endpoint of the organisation's owner (named by a
 * MOVED, now or on an earlier call) that did not answer; "" when it was
 * the endpoint given to fbx_client_open() that did not answer. The
 * client talks to that first endpoint again from then on.
 */
const char *fbx_client_silent_owner(const fbx_client *c);

#endif
