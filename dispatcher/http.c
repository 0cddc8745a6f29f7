/*
 * http.c: the embedded HTTP endpoint (libmicrohttpd, a thread per
 * connection: a web console request waits for the engine's answer
 * without holding up /metrics). It owns the listening socket and the
 * latest metrics snapshot, which the engine's loop publishes under mu;
 * the HTTP threads copy it out under mu and render the copy, so they
 * never read the engine. It serves /metrics, /healthz, /readyz, the web
 * console's embedded files and its API (webapi.c, POST bodies capped at
 * FBX_WEBAPI_BODY_MAX). Connections, per-connection memory (request
 * line and headers) and idle time are capped.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "fbx_err.h"
#include "http.h"
#include "log.h"
#include "webapi.h"

struct fbx_http {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t mu;
	int have; /* under mu: snap was published */
	struct fbx_metrics snap; /* under mu */
	fbx_webgate *gate; /* under mu: the engine's web door, once open */
	char url[200]; /* the web console's address */
	int loopback;    /* bound to a loopback address: Host is checked */
	char hostport[80]; /* "<bound address>:<port>" as a Host header */
};

/* host_ok - a loopback endpoint answers only requests addressed to it
 * (Host: the bound address, 127.0.0.1, localhost or [::1], with its
 * port): a page of another site that a DNS trick points at 127.0.0.1
 * reads nothing (DNS rebinding). A remote endpoint is the operator's
 * choice of names, and checks none. */
static int
host_ok(const struct fbx_http *h, const char *host)
{
	static const char *const local[] = { "127.0.0.1", "localhost",
		"[::1]" };
	char want[96];

	if (!h->loopback)
		return 1;
	if (host == NULL)
		return 0;
	/* a host name is case-insensitive (RFC 9110 4.2.3) */
	if (strcasecmp(host, h->hostport) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		snprintf(want, sizeof(want), "%s:%u", local[i], h->port);
		if (strcasecmp(host, want) == 0)
			return 1;
	}
	return 0;
}

static enum MHD_Result
count_host(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	(void)kind;
	(void)value;
	if (strcasecmp(key, "Host") == 0)
		(*(unsigned *)cls)++;
	return MHD_YES;
}

/* hosts - how many Host headers the request has: more than one is a
 * bad request (RFC 9112 3.2), which no browser sends; a server that took
 * the first would judge by one name and a proxy behind it by another */
static unsigned
hosts(struct MHD_Connection *c)
{
	unsigned n = 0;

	(void)MHD_get_connection_values(c, MHD_HEADER_KIND, count_host, &n);
	return n;
}

/* one POST to the API: its body, read up to FBX_WEBAPI_BODY_MAX */
struct post {
	char *body;
	size_t len;
	int toobig;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* parse_addr - addr into a socket address (see fbx_http_check_addr) */
static int
parse_addr(const char *addr, struct sockaddr_storage *ss, int *loopback,
    char *why, size_t wl)
{
	char host[128];
	const char *port;
	char *end;
	unsigned long p;

	memset(ss, 0, sizeof(*ss));
	if (addr == NULL || addr[0] == '\0' || strlen(addr) >= sizeof(host)) {
		snprintf(why, wl, "empty or too long address");
		return FBX_EINVAL;
	}
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (rb == NULL || rb[1] != ':') {
			snprintf(why, wl, "%s: expected [V6]:PORT", addr);
			return FBX_EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(rb - addr - 1),
		    addr + 1);
		port = rb + 2;
	} else if (strchr(addr, ':') != NULL) {
		const char *colon = strrchr(addr, ':');
		if (strchr(addr, ':') != colon) {
			snprintf(why, wl,
			    "%s: an IPv6 address goes in "
			    "brackets: [V6]:PORT",
			    addr);
			return FBX_EINVAL;
		}
		snprintf(
		    host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		port = colon + 1;
	} else {
		snprintf(host, sizeof(host), "127.0.0.1");
		port = addr;
	}
	if (port[0] < '0' || port[0] > '9') {
		snprintf(why, wl, "%s: bad port", addr);
		return FBX_EINVAL;
	}
	p = strtoul(port, &end, 10);
	if (*end != '\0' || p > 65535) {
		snprintf(why, wl, "%s: bad port", addr);
		return FBX_EINVAL;
	}
	if (strcmp(host, "localhost") == 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "127.0.0.1");
	{
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
			a4->sin_family = AF_INET;
			a4->sin_port = htons((uint16_t)p);
			*loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
			return FBX_OK;
		}
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
			a6->sin6_family = AF_INET6;
			a6->sin6_port = htons((uint16_t)p);
			*loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)
			    || (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)
			        && a6->sin6_addr.s6_addr[12] == 127);
			return FBX_OK;
		}
	}
	snprintf(why, wl,
	    "%s: the host must be a numeric address or "
	    "localhost",
	    addr);
	return FBX_EINVAL;
}

int
fbx_http_check_addr(const char *addr, int *loopback, char *why, size_t wl)
{
	struct sockaddr_storage ss;
	int lb = 0, rc;

	rc = parse_addr(addr, &ss, &lb, why, wl);
	if (rc == FBX_OK && loopback != NULL)
		*loopback = lb;
	return rc;
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status, const char *text,
    const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	/* copied: callers pass stack buffers too (serve_health), which
	 * are gone when libmicrohttpd sends the answer */
	r = MHD_create_response_from_buffer(
	    strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(
	    r, "Content-Type", "text/plain; charset=utf-8");
	if (allow != NULL)
		(void)MHD_add_response_header(r, "Allow", allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
serve_metrics(struct fbx_http *h, struct MHD_Connection *c)
{
	struct fbx_metrics *m;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;
	int have, rc;

	m = malloc(sizeof(*m));
	if (m == NULL)
		return reply(
		    c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", NULL);
	pthread_mutex_lock(&h->mu);
	have = h->have;
	if (have)
		memcpy(m, &h->snap, sizeof(*m));
	pthread_mutex_unlock(&h->mu);
	if (!have) {
		free(m);
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "starting: the engine is recovering the store\n", NULL);
	}
	rc = fbx_metrics_render(m, mono_ms(), FBX_HTTP_BODY_MAX, &text, &len);
	free(m);
	if (rc != FBX_OK) {
		FBX_LOGW("http: /metrics could not be rendered: %s",
		    fbx_strerror(rc));
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "metrics could not be rendered\n", NULL);
	}
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	(void)MHD_add_response_header(
	    r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* Liveness: the loop published a snapshot within this long (it does at
 * most 4 times a second while turns complete). */
#define FBX_HTTP_LIVE_MS 5000

/* serve_health - /healthz: 200 while the loop publishes (it is alive and
 * its turns complete), 503 when its last snapshot is older than
 * FBX_HTTP_LIVE_MS or none came yet. /readyz: 200 once recovered, not
 * degraded and alive; 503 with the reason otherwise. */
static enum MHD_Result
serve_health(struct fbx_http *h, struct MHD_Connection *c, int ready)
{
	int64_t taken = 0;
	int have, degraded = 0;
	char body[160];

	pthread_mutex_lock(&h->mu);
	have = h->have;
	if (have) {
		taken = h->snap.taken_ms;
		degraded = h->snap.degraded;
	}
	pthread_mutex_unlock(&h->mu);
	if (!have)
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "starting: the engine is recovering the store\n", NULL);
	if (mono_ms() - taken > FBX_HTTP_LIVE_MS) {
		snprintf(body, sizeof(body),
		    "stalled: no turn completed for %lld ms\n",
		    (long long)(mono_ms() - taken));
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, body, NULL);
	}
	if (ready && degraded)
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "degraded: the store cannot be written; reads are "
		    "served\n",
		    NULL);
	return reply(c, MHD_HTTP_OK, "ok\n", NULL);
}

/* add_security - what every page and API answer says about itself:
 * nothing but this origin's own files may run or be fetched (so the page
 * can fetch nothing from the internet), no framing, no referrer */
/* add_retry_after - a refusal for load (webapi.c: too many requests
 * with one session, 429; overviews all busy, 503): when to try again */
static void
add_retry_after(struct MHD_Response *r, unsigned status)
{
	/* a session's rate is counted per second (its 429 says "in a
	 * second"); a busy or starting engine gets a little longer */
	if (status == MHD_HTTP_TOO_MANY_REQUESTS)
		(void)MHD_add_response_header(r, "Retry-After", "1");
	else if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
		(void)MHD_add_response_header(r, "Retry-After", "2");
}

static void
add_security(struct MHD_Response *r)
{
	(void)MHD_add_response_header(r, "Content-Security-Policy",
	    "default-src 'none'; script-src 'self'; style-src 'self'; "
	    "connect-src 'self'; img-src 'self' data:; "
	    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
	(void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	(void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	(void)MHD_add_response_header(r, "X-Frame-Options", "DENY");
}

/* serve_asset - one of the web console's embedded files, or NULL */
static const struct fbx_web_asset *
find_asset(const char *url)
{
	if (strcmp(url, "/") == 0)
		url = "/index.html";
	for (const struct fbx_web_asset *a = fbx_web_assets; a->path != NULL;
	     a++)
		if (strcmp(a->path, url) == 0)
			return a;
	return NULL;
}

static enum MHD_Result
serve_asset(struct MHD_Connection *c, const struct fbx_web_asset *a)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(
	    a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, "Content-Type", a->type);
	(void)MHD_add_response_header(r, "Cache-Control", "no-cache");
	add_security(r);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* wipe_free - an API answer's buffer, once sent: it may hold a session
 * token (POST /api/session), which must not linger in freed memory */
static void
wipe_free(void *p)
{
	OPENSSL_cleanse(p, strlen(p));
	free(p);
}

/* serve_api - a web console API request: the engine answers it as the
 * session token's principal (webapi.c); this thread blocks meanwhile */
static enum MHD_Result
serve_api(struct fbx_http *h, struct MHD_Connection *c, const char *url,
    const char *method, const char *body, size_t len)
{
	struct fbx_metrics *m = malloc(sizeof(*m));
	struct MHD_Response *r;
	enum MHD_Result ret;
	fbx_webgate *g;
	unsigned status = 500;
	char *out = NULL;
	int have;

	if (m == NULL)
		return reply(
		    c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", NULL);
	pthread_mutex_lock(&h->mu);
	g = h->gate;
	have = h->have;
	if (have)
		memcpy(m, &h->snap, sizeof(*m));
	pthread_mutex_unlock(&h->mu);
	fbx_webapi_serve(g, have ? m : NULL, method, url,
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
	    body, len, &status, &out);
	free(m);
	if (out == NULL)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "out of memory\n", NULL);
	r = MHD_create_response_from_buffer_with_free_callback(
	    strlen(out), out, wipe_free);
	if (r == NULL) {
		wipe_free(out);
		return MHD_NO;
	}
	(void)MHD_add_response_header(
	    r, "Content-Type", "application/json; charset=utf-8");
	(void)MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_UNAUTHORIZED)
		(void)MHD_add_response_header(
		    r, "WWW-Authenticate", "Bearer realm=\"fusebox\"");
	add_retry_after(r, status);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
	    fbx_webapi_allow(url) != NULL)
		(void)MHD_add_response_header(
		    r, "Allow", fbx_webapi_allow(url));
	add_security(r);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* on_request - one request. A body is read only for a POST to the API
 * (up to FBX_WEBAPI_BODY_MAX: 413 beyond); any other request is
 * answered before its body (and the connection closed by
 * libmicrohttpd). */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct fbx_http *h = cls;
	const struct fbx_web_asset *a;
	struct post *p = *con_cls;
	int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0
	    || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	int api = strncmp(url, "/api/", 5) == 0;

	(void)version;
	if (p == NULL && hosts(c) > 1)
		return reply(c, MHD_HTTP_BAD_REQUEST,
		    "bad request: more than one Host header\n", NULL);
	if (p == NULL &&
	    !host_ok(h, MHD_lookup_connection_value(
	                    c, MHD_HEADER_KIND, "Host")))
		return reply(c, 421,
		    "misdirected request: this endpoint answers requests "
		    "addressed to its own loopback address\n",
		    NULL);
	if (api && strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
		if (p == NULL) {
			const char *cl = MHD_lookup_connection_value(
			    c, MHD_HEADER_KIND, "Content-Length");
			const char *au = MHD_lookup_connection_value(
			    c, MHD_HEADER_KIND, "Authorization");
			/* a body is read only when its length is stated and
			 * the request carries a token: an endless or
			 * anonymous body costs nothing */
			if (cl == NULL)
				return reply(c, 411,
				    "Content-Length required\n", NULL);
			if (strtoull(cl, NULL, 10) > FBX_WEBAPI_BODY_MAX)
				return reply(c, 413,
				    "request body too large\n", NULL);
			if (fbx_webapi_bearer(au) == NULL)
				return serve_api(h, c, url, method, NULL, 0);
			p = calloc(1, sizeof(*p));
			if (p == NULL)
				return MHD_NO;
			*con_cls = p;
			return MHD_YES;
		}
		if (*upload_data_size > 0) {
			size_t n = *upload_data_size;
			if (!p->toobig && p->len + n <= FBX_WEBAPI_BODY_MAX) {
				char *b = realloc(p->body, p->len + n + 1);
				if (b == NULL)
					return MHD_NO;
				memcpy(b + p->len, upload_data, n);
				p->body = b;
				p->len += n;
				p->body[p->len] = '\0';
			} else {
				p->toobig = 1;
			}
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (p->toobig)
			return reply(c, 413,
			    "request body too large\n", NULL);
		return serve_api(h, c, url, method, p->body, p->len);
	}
	if (api) /* GET (HEAD), DELETE /api/session (sign out), or 405 */
		return serve_api(h, c, url, get ? "GET" : method, NULL, 0);
	a = find_asset(url);
	if (a == NULL && strcmp(url, "/metrics") != 0 &&
	    strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND,
		    "not found: this endpoint serves /metrics, /healthz, "
		    "/readyz and the web console at /\n",
		    NULL);
	if (!get)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed: GET or HEAD\n", "GET, HEAD");
	if (a != NULL)
		return serve_asset(c, a);
	if (strcmp(url, "/metrics") != 0)
		return serve_health(h, c, strcmp(url, "/readyz") == 0);
	return serve_metrics(h, c);
}

/* on_done - a request ended: free what on_request kept for it */
static void
on_done(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct post *p = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (p != NULL) {
		free(p->body);
		free(p);
		*con_cls = NULL;
	}
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512], *end;
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* libmicrohttpd quotes the HTML of its error pages: not for a log */
	end = strstr(line, " ('<");
	if (end != NULL)
		*end = '\0';
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	FBX_LOGW("http: %s", line);
}

int
fbx_http_open(
    const char *addr, int allow_remote, fbx_http **out, char *why, size_t wl)
{
	struct sockaddr_storage ss;
	struct fbx_http *h;
	const union MHD_DaemonInfo *di;
	sigset_t all, old;
	unsigned flags;
	int loopback = 0, rc;

	if (out == NULL)
		return FBX_EINVAL;
	rc = parse_addr(addr, &ss, &loopback, why, wl);
	if (rc != FBX_OK)
		return rc;
	if (!loopback && !allow_remote) {
		snprintf(why, wl,
		    "%s is not a loopback address: /metrics "
		    "would be open to the network; add --http-allow-remote "
		    "(http_allow_remote = 1) to mean it",
		    addr);
		return FBX_EINVAL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return FBX_ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD
	    | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* the HTTP thread takes no signal: SIGTERM and SIGHUP are the
	 * loop's to see */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* the port is taken from the address; passed too, so that
	 * libmicrohttpd's own log line names it (not "port 0") */
	h->d = MHD_start_daemon(flags,
	    ntohs(ss.ss_family == AF_INET6
	            ? ((struct sockaddr_in6 *)&ss)->sin6_port
	            : ((struct sockaddr_in *)&ss)->sin_port),
	    NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)FBX_HTTP_CONNS_MAX,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)FBX_HTTP_CONNS_PER_IP,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FBX_HTTP_MEMORY_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)FBX_HTTP_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
	    MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (h->d == NULL) {
		snprintf(why, wl,
		    "cannot listen on %s (address in use, or "
		    "not this host's?)",
		    addr);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return FBX_EUNREACHABLE;
	}
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di != NULL ? di->port : 0;
	{
		/* the address as typed, with the port bound */
		char host[INET6_ADDRSTRLEN] = "127.0.0.1";
		if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&ss)->sin6_addr, host,
			    sizeof(host));
		else
			inet_ntop(AF_INET,
			    &((struct sockaddr_in *)&ss)->sin_addr, host,
			    sizeof(host));
		snprintf(h->url, sizeof(h->url), "http://%s%s%s:%u/",
		    ss.ss_family == AF_INET6 ? "[" : "", host,
		    ss.ss_family == AF_INET6 ? "]" : "", h->port);
		snprintf(h->hostport, sizeof(h->hostport), "%s%s%s:%u",
		    ss.ss_family == AF_INET6 ? "[" : "", host,
		    ss.ss_family == AF_INET6 ? "]" : "", h->port);
		h->loopback = loopback;
	}
	*out = h;
	return FBX_OK;
}

unsigned
fbx_http_port(const fbx_http *h)
{
	return h != NULL ? h->port : 0;
}

void
fbx_http_publish(fbx_http *h, const struct fbx_metrics *m)
{
	if (h == NULL || m == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	memcpy(&h->snap, m, sizeof(*m));
	h->have = 1;
	pthread_mutex_unlock(&h->mu);
}

void
fbx_http_attach(fbx_http *h, fbx_webgate *g)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	h->gate = g;
	pthread_mutex_unlock(&h->mu);
}

const char *
fbx_http_url(const fbx_http *h)
{
	return h != NULL ? h->url : "";
}

void
fbx_http_close(fbx_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
