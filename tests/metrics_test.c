/*
 * metrics_test.c: fuseboxd --http serves /metrics in the Prometheus text
 * format (issue 12): the real daemon on 127.0.0.1 with port 0 (the port
 * it took is read from its log), scraped with curl. The required series
 * are there; after a submit the commands and deliveries moved; after a
 * breaker trip and a held automatic lock the breaker's series show it;
 * another path is 404, a POST 405, HEAD 200; `promtool check metrics`
 * accepts the page (skipped, and said so, without promtool); headers
 * past 16 KiB get 431; connections past the cap are refused; a
 * non-loopback address is refused without --http-allow-remote (64), a
 * port in use stops a second daemon (69). Nothing depends on timing:
 * each wait polls until the snapshot shows the change (generous cap).
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define PAGE_MAX (1u << 20)

static char page[PAGE_MAX];
static unsigned port;

/* run - a shell command's output into out (NUL-terminated).
 * @return its exit status, or -1. */
static int
run(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0, r;
	int st;

	if (f == NULL)
		return -1;
	while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, f)) > 0)
		n += r;
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* scrape - GET path into page. @return the HTTP status, or -1. */
static int
scrape(const char *path, const char *method)
{
	char cmd[512], code[16];
	int rc;

	/* HEAD: -I, or curl waits for the body Content-Length announces */
	snprintf(cmd, sizeof(cmd),
	    "curl -s --max-time 20 %s%s -o /dev/stdout -w '%%{http_code}' "
	    "http://127.0.0.1:%u%s",
	    strcmp(method, "HEAD") == 0 ? "-I" : "-X ",
	    strcmp(method, "HEAD") == 0 ? "" : method, port, path);
	rc = run(cmd, page, sizeof(page));
	if (rc != 0)
		return -1;
	/* the status code is the page's last three characters */
	{
		size_t n = strlen(page);
		if (n < 3)
			return -1;
		snprintf(code, sizeof(code), "%s", page + n - 3);
		page[n - 3] = '\0';
	}
	return atoi(code);
}

/* value - the sample of series (name and labels exactly as rendered) in
 * page, or NAN when absent. */
static double
value(const char *series)
{
	size_t sl = strlen(series);

	for (const char *l = page; l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');
		if (strncmp(l, series, sl) == 0 && l[sl] == ' ')
			return strtod(l + sl + 1, NULL);
		l = nl != NULL ? nl + 1 : NULL;
	}
	return NAN;
}

/* wait_value - scrape /metrics until series is at least min (up to a
 * minute: a loaded machine). @return its last value (NAN if absent). */
static double
wait_value(const char *series, double min)
{
	double v = NAN;

	for (int i = 0; i < 600; i++) {
		if (scrape("/metrics", "GET") == 200) {
			v = value(series);
			if (!isnan(v) && v >= min)
				return v;
		}
		usleep(100 * 1000);
	}
	return v;
}

/* read_port - the port fuseboxd logged ("http: serving ... (port N)") */
static unsigned
read_port(const struct fbxt_env *t)
{
	char path[400], line[512];
	unsigned p = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/fuseboxd.log", t->dir);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *s = strstr(line, "http: serving /metrics");
		if (s != NULL && (s = strstr(s, "(port ")) != NULL)
			p = (unsigned)strtoul(s + 6, NULL, 10);
	}
	fclose(f);
	return p;
}

static const char *const required[] = {
	"fusebox_up",
	"fusebox_metrics_age_seconds",
	"fusebox_uptime_seconds",
	"fusebox_turns_total",
	"fusebox_commits_total",
	"fusebox_turns_failed_total",
	"fusebox_store_syncs_failed_total",
	"fusebox_degraded",
	"fusebox_turn_seconds_bucket{le=\"+Inf\"}",
	"fusebox_turn_seconds_sum",
	"fusebox_turn_seconds_count",
	"fusebox_commit_seconds_count",
	"fusebox_deliveries{state=\"queued\"}",
	"fusebox_deliveries{state=\"succeeded\"}",
	"fusebox_deliveries{state=\"pending\"}",
	"fusebox_deliveries_sent_total",
	"fusebox_results_received_total",
	"fusebox_commands_active",
	"fusebox_commands_held",
	"fusebox_commands_settling",
	"fusebox_gateways_connected",
	"fusebox_deliveries_inflight",
	"fusebox_breakers_open",
	"fusebox_metrics_truncated",
	"fusebox_auth_refused_total",
	"fusebox_results_forged_total",
	"fusebox_handshakes_refused_total",
	"fusebox_store_map_bytes",
	"fusebox_store_used_bytes",
	"fusebox_store_readers_used",
	"fusebox_store_index_lag{index=\"audit\"}",
};

static int
trip(struct fbxt_env *t, const char *org, const char *reason)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_TRIP;
	snprintf(
	    req.u.breaker.reason, sizeof(req.u.breaker.reason), "%s", reason);
	snprintf(
	    req.u.breaker.note, sizeof(req.u.breaker.note), "metrics_test");
	rc = fbxt_call(t, org, &req, &rep);
	if (rc == FBX_OK)
		fbx_console_rep_free(&rep);
	return rc;
}

int
main(void)
{
	struct fbxt_env t;
	char cmd[1200], out[4096], tmp[400];
	double before, v;
	uint64_t id = 0;
	uint32_t count = 0;
	int rc, code;

	if (fbxt_setup(&t, "metrics") != 0
	    || fbxt_daemon_start(&t, "--http", "127.0.0.1:0", NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	port = read_port(&t);
	FBXT_CHECK(port > 0, "no 'http: serving /metrics' line in the log");
	if (port == 0)
		goto out;

	/* the required series, with plausible values */
	code = scrape("/metrics", "GET");
	FBXT_CHECK(code == 200, "GET /metrics: %d", code);
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		FBXT_CHECK(!isnan(value(required[i])), "series %s missing",
		    required[i]);
	/* the fleet series appear once the first pass over the registry
	 * has finished (at the first turns) */
	FBXT_CHECK(wait_value("fusebox_fleet_pass_timestamp_seconds", 1) > 0 &&
	        !isnan(value("fusebox_fleet_devices{offline_hours=\"never\"}")) &&
	        !isnan(value("fusebox_fleet_orgs_alerting")),
	    "fleet series");
	FBXT_CHECK(value("fusebox_up") == 1, "fusebox_up");
	FBXT_CHECK(value("fusebox_degraded") == 0, "degraded");
	FBXT_CHECK(value("fusebox_store_map_bytes")
	            >= value("fusebox_store_used_bytes")
	        && value("fusebox_store_used_bytes") > 0,
	    "store bytes: map %g used %g", value("fusebox_store_map_bytes"),
	    value("fusebox_store_used_bytes"));
	FBXT_CHECK(value("fusebox_turn_seconds_count")
	        == value("fusebox_turn_seconds_bucket{le=\"+Inf\"}"),
	    "histogram count");
	FBXT_CHECK(
	    strstr(page, "# TYPE fusebox_turn_seconds histogram") != NULL,
	    "turn histogram type");

	/* a submit moves the commands and deliveries */
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "20", "--orgs",
	    "2", "--seed", "7", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enrollment exit status %d", rc);
	before = wait_value("fusebox_commits_total", 1);
	rc = fbxt_submit(&t, "org-001", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, &id, &count);
	FBXT_CHECK(
	    rc == FBX_OK && count > 0, "submit rc %d count %u", rc, count);
	v = wait_value("fusebox_commands_active", 1);
	FBXT_CHECK(v == 1, "commands active after a submit: %g", v);
	v = wait_value("fusebox_deliveries{state=\"queued\"}", count);
	FBXT_CHECK(v == count, "queued deliveries %g, want %u (no gateway)", v,
	    count);
	FBXT_CHECK(value("fusebox_commits_total") > before,
	    "commits did not move: %g -> %g", before,
	    value("fusebox_commits_total"));
	FBXT_CHECK(value("fusebox_devices") == 20, "devices %g",
	    value("fusebox_devices"));

	/* a tripped breaker, and the automatic lock it holds */
	FBXT_CHECK(isnan(value("fusebox_breaker_open{org=\"org-002\","
	                       "reason=\"attestation_failed\"}")),
	    "a closed breaker is listed");
	rc = trip(&t, "org-002", "attestation_failed");
	FBXT_CHECK(rc == FBX_OK, "trip rc %d", rc);
	rc = fbxt_submit(&t, "org-002", FBX_CMD_LOCK, FBX_ORIGIN_AUTOMATIC,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, &id, &count);
	FBXT_CHECK(rc == FBX_OK, "automatic lock rc %d", rc);
	v = wait_value("fusebox_breaker_open{org=\"org-002\","
	               "reason=\"attestation_failed\"}",
	    1);
	FBXT_CHECK(v == 1, "fusebox_breaker_open{org-002} %g", v);
	v = wait_value("fusebox_commands_held", 1);
	FBXT_CHECK(v == 1, "held commands %g", v);
	FBXT_CHECK(value("fusebox_breaker_held_commands{org=\"org-002\","
	                 "reason=\"attestation_failed\"}")
	        == 1,
	    "held by the breaker");
	FBXT_CHECK(value("fusebox_breakers_open") == 1, "breakers open %g",
	    value("fusebox_breakers_open"));
	FBXT_CHECK(value("fusebox_metrics_truncated") == 0, "truncated");
	FBXT_CHECK(isnan(value("fusebox_breaker_open{org=\"org-001\","
	                       "reason=\"attestation_failed\"}")),
	    "a normal organisation is listed");

	/* the audit records of this run wait for the deferred indexes'
	 * first catch-up (every 8,192 records) */
	FBXT_CHECK(value("fusebox_store_index_lag{index=\"audit\"}") >= 1 &&
	        value("fusebox_store_index_lag{index=\"audit\"}") < 8192 &&
	        value("fusebox_store_index_lag{index=\"commands\"}") >= 1,
	    "index lags %g %g",
	    value("fusebox_store_index_lag{index=\"commands\"}"),
	    value("fusebox_store_index_lag{index=\"audit\"}"));
	printf("index lags: commands %g, audit %g\n",
	    value("fusebox_store_index_lag{index=\"commands\"}"),
	    value("fusebox_store_index_lag{index=\"audit\"}"));
	/* promtool's own check of the page */
	snprintf(tmp, sizeof(tmp), "%s/metrics.txt", t.dir);
	{
		FILE *f = fopen(tmp, "w");
		if (f != NULL) {
			fputs(page, f);
			fclose(f);
		}
	}
	if (system("command -v promtool >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd),
		    "promtool check metrics < '%s' 2>&1", tmp);
		rc = run(cmd, out, sizeof(out));
		FBXT_CHECK(
		    rc == 0, "promtool check metrics: exit %d: %s", rc, out);
	} else {
		printf("SKIP promtool check: promtool not installed (Debian "
		       "package prometheus; scripts/deps.sh installs it)\n");
	}

	/* other paths and methods */
	code = scrape("/nope", "GET");
	FBXT_CHECK(code == 404, "GET /nope: %d", code);
	/* / is the web console's page (issue 12, tests/web_test.sh) */
	code = scrape("/", "GET");
	FBXT_CHECK(code == 200, "GET /: %d", code);
	code = scrape("/metrics", "POST");
	FBXT_CHECK(code == 405, "POST /metrics: %d", code);
	code = scrape("/metrics", "HEAD");
	FBXT_CHECK(code == 200, "HEAD /metrics: %d", code);
	/* liveness and readiness: a running, writable engine */
	code = scrape("/healthz", "GET");
	FBXT_CHECK(code == 200, "GET /healthz: %d", code);
	code = scrape("/readyz", "GET");
	FBXT_CHECK(code == 200, "GET /readyz: %d", code);
	code = scrape("/readyz", "POST");
	FBXT_CHECK(code == 405, "POST /readyz: %d", code);

	/* request size cap: headers past 16 KiB are refused (431) */
	snprintf(cmd, sizeof(cmd),
	    "curl -s --max-time 20 -o /dev/null -w '%%{http_code}' "
	    "-H \"X-Big: $(head -c 20000 /dev/zero | tr '\\0' a)\" "
	    "http://127.0.0.1:%u/metrics",
	    port);
	(void)run(cmd, out, sizeof(out));
	FBXT_CHECK(strcmp(out, "431") == 0, "20 KB header: %s", out);

	/* connection cap: with FBX_HTTP_CONNS_PER_IP connections held open
	 * by this test, one more is refused; closed, scraping works again */
	{
		int fds[40], n = 0; /* over FBX_HTTP_CONNS_PER_IP (32) */
		struct sockaddr_in a;
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		for (int i = 0; i < 40; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			if (fd < 0)
				break;
			if (connect(fd, (struct sockaddr *)&a, sizeof(a))
			    != 0) {
				close(fd);
				break;
			}
			fds[n++] = fd;
		}
		FBXT_CHECK(n == 40, "%d connections opened", n);
		code = scrape("/metrics", "GET");
		FBXT_CHECK(code != 200,
		    "a connection past the cap was "
		    "served");
		for (int i = 0; i < n; i++)
			close(fds[i]);
		v = wait_value("fusebox_up", 1);
		FBXT_CHECK(v == 1, "no scrape after the connections closed");
	}

	/* a non-loopback address needs --http-allow-remote (refused before
	 * the store is touched, so the running daemon does not matter) */
	snprintf(cmd, sizeof(cmd),
	    "'%s/fuseboxd' --data '%s' --http 0.0.0.0:0 2>&1; echo "
	    "\"exit=$?\"",
	    getenv("FBX_BIN_DIR") ? getenv("FBX_BIN_DIR") : ".", t.db);
	(void)run(cmd, out, sizeof(out));
	FBXT_CHECK(strstr(out, "exit=64") != NULL
	        && strstr(out, "not a loopback address") != NULL,
	    "non-loopback --http: %s", out);
	snprintf(cmd, sizeof(cmd),
	    "'%s/fuseboxd' --data '%s' --http 127.0.0.1:99999 2>&1; "
	    "echo \"exit=$?\"",
	    getenv("FBX_BIN_DIR") ? getenv("FBX_BIN_DIR") : ".", t.db);
	(void)run(cmd, out, sizeof(out));
	FBXT_CHECK(strstr(out, "exit=64") != NULL, "bad port: %s", out);

	/* the port in use: a second daemon (its own store) exits 69 */
	snprintf(cmd, sizeof(cmd),
	    "B='%s'; D='%s/db2'; \"$B/fuseboxd\" init --data \"$D\" "
	    ">/dev/null 2>&1; \"$B/fuseboxd\" --data \"$D\" --console "
	    "'ipc://%s/c2.sock' --gateway 'ipc://%s/g2.sock' --http "
	    "127.0.0.1:%u 2>&1; echo \"exit=$?\"",
	    getenv("FBX_BIN_DIR") ? getenv("FBX_BIN_DIR") : ".", t.dir, t.dir,
	    t.dir, port);
	(void)run(cmd, out, sizeof(out));
	FBXT_CHECK(strstr(out, "exit=69") != NULL &&
	        strstr(out, "cannot listen") != NULL,
	    "port in use: %s", out);
out:
	fbxt_teardown(&t);
	return fbxt_done();
}
