/*
 * http.c: the embedded HTTP endpoint (libmicrohttpd's internal polling
 * thread). It owns the listening socket and the latest metrics snapshot,
 * which the engine's loop publishes under mu; the HTTP thread copies it
 * out under mu and renders the copy, so it never reads the engine.
 * Connections, per-connection memory (request line and headers) and
 * idle time are capped; only GET and HEAD of /metrics are served.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "fbx_err.h"
#include "http.h"
#include "log.h"

struct fbx_http {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t mu;
	int have; /* under mu: snap was published */
	struct fbx_metrics snap; /* under mu */
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

	r = MHD_create_response_from_buffer(
	    strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
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

/* on_request - one request. Bodies are never read: a method other than
 * GET or HEAD is answered before its body (and the connection closed by
 * libmicrohttpd). */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct fbx_http *h = cls;
	int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0
	    || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(url, "/metrics") != 0 && strcmp(url, "/healthz") != 0 &&
	    strcmp(url, "/readyz") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND,
		    "not found: this endpoint serves /metrics, /healthz and "
		    "/readyz\n",
		    NULL);
	if (!get)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method not allowed: GET or HEAD\n", "GET, HEAD");
	if (strcmp(url, "/metrics") != 0)
		return serve_health(h, c, strcmp(url, "/readyz") == 0);
	return serve_metrics(h, c);
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
	    | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* the HTTP thread takes no signal: SIGTERM and SIGHUP are the
	 * loop's to see */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)FBX_HTTP_CONNS_MAX,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)FBX_HTTP_CONNS_PER_IP,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)FBX_HTTP_MEMORY_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)FBX_HTTP_TIMEOUT_S,
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
fbx_http_close(fbx_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
