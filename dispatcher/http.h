/*
 * http.h: fuseboxd's embedded HTTP endpoint (libmicrohttpd), off unless
 * configured: GET /metrics in the Prometheus text format, /healthz,
 * /readyz, and the web console (issue 12): its page and its JSON API
 * (webapi.h). It runs on libmicrohttpd's threads (one per connection)
 * and never touches the engine's memory: the loop publishes a struct
 * fbx_metrics snapshot (fbx_http_publish) under a mutex, the HTTP
 * threads render a copy, and the API goes to the engine as console
 * requests (fbx_web.h). Connections and request sizes are capped.
 * Internal to dispatcher/.
 */
#ifndef FBX_HTTP_H
#define FBX_HTTP_H

#include <stddef.h>

#include "fbx_web.h"
#include "metrics.h"

typedef struct fbx_http fbx_http;

/* caps: connections at once (a thread each) and from one address; memory per
 * connection (the request line and headers must fit: 431 otherwise);
 * idle seconds before a connection is closed; a rendered page */
#define FBX_HTTP_CONNS_MAX 64
#define FBX_HTTP_CONNS_PER_IP 32
#define FBX_HTTP_MEMORY_MAX (16u << 10)
#define FBX_HTTP_TIMEOUT_S 10
#define FBX_HTTP_BODY_MAX (4u << 20)

/**
 * fbx_http_check_addr - whether addr is an address fbx_http_open takes:
 * "HOST:PORT", "[V6]:PORT" or "PORT" alone (127.0.0.1), HOST numeric or
 * "localhost", PORT 0..65535 (0: any free port).
 * @param[out] loopback 1 when it is a loopback address; written on FBX_OK.
 * @return FBX_OK, FBX_EINVAL (with one line in why).
 */
int fbx_http_check_addr(const char *addr, int *loopback, char *why, size_t wl);

/**
 * fbx_http_open - bind addr and start the HTTP thread (signals blocked
 * in it). A non-loopback address is refused unless allow_remote. Until
 * the first fbx_http_publish, /metrics answers 503.
 * @param[out] out the server; written only on success.
 * @return FBX_OK; FBX_EINVAL (bad or refused address; why says which);
 * FBX_EUNREACHABLE (cannot bind or start: why says so); FBX_ENOMEM.
 */
int fbx_http_open(
    const char *addr, int allow_remote, fbx_http **out, char *why, size_t wl);

/** fbx_http_port - the port bound (useful with port 0). */
unsigned fbx_http_port(const fbx_http *h);

/** fbx_http_publish - copy m as the snapshot /metrics serves. Any thread;
 * h NULL is accepted (nothing to do). */
void fbx_http_publish(fbx_http *h, const struct fbx_metrics *m);

/** fbx_http_attach - from now on serve the web console's API through g
 * (issue 12; NULL: answer 503 "starting"). Until then the page loads
 * and its API answers 503. Any thread. */
void fbx_http_attach(fbx_http *h, fbx_webgate *g);

/** fbx_http_url - the web console's address, "http://HOST:PORT/" with
 * the port bound. @return url (a string in h). */
const char *fbx_http_url(const fbx_http *h);

/* The web console's files (dispatcher/web/), embedded at build time
 * (web/embed.cmake): the last entry has path NULL. */
struct fbx_web_asset {
	const char *path; /* "/app.js" */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
};
extern const struct fbx_web_asset fbx_web_assets[];

/** fbx_http_close - stop the thread (waits for it), close the socket.
 * NULL is accepted. */
void fbx_http_close(fbx_http *h);

#endif
