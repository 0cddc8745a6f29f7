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
 * values <= 0 select 5000 ms.
 * @param[out] out the client, written only on success. Free it with
 * fbx_client_close().
 * @return FBX_OK, FBX_EINVALID (NULL or over-long endpoint, or an endpoint
 * ZeroMQ rejects), FBX_ENOMEM, FBX_EIO (ZeroMQ could not create a context
 * or socket).
 */
int fbx_client_open(const char *endpoint, int timeout_ms, fbx_client **out);

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
 * FBX_ETIMEOUT (no reply within the timeout),
 * FBX_EUNREACHABLE (no engine is listening: the ipc socket file is
 * missing, or no connection could be made within the timeout),
 * FBX_EMALFORMED (a reply that does not decode),
 * FBX_EINVALID or FBX_ETOOBIG (the request could not be encoded; nothing
 * was sent), FBX_ENOMEM, FBX_EIO (a ZeroMQ error).
 */
int fbx_client_call(
    fbx_client *c, struct fbx_console_req *req, struct fbx_console_rep *rep);

/**
 * fbx_client_endpoint - the endpoint given to fbx_client_open().
 * @return a string owned by the client, valid until fbx_client_close().
 */
const char *fbx_client_endpoint(const fbx_client *c);

#endif
