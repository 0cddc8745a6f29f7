/*
 * fuseboxctl.c: the operator CLI. A thin main over the console client
 * (fbx_client.h): it parses flags, builds one console request per step,
 * and prints the reply as an aligned table or, with --json, one JSON
 * object per reply. Every failure ends in one line on stderr,
 * "fuseboxctl: NAME (code): message", and a sysexits.h status, so scripts
 * and runbooks can tell bad input from an engine that is down.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_json.h"
#include "fbx_client.h"
#include "fbx_keys.h"

#define CTL_DEFAULT_ENDPOINT "ipc:///tmp/fusebox/console.sock"
#define CTL_DEFAULT_TIMEOUT_MS 10000
#define CTL_DEFAULT_TTL_S 86400
#define CTL_DEFAULT_WAIT_S 300
#define CTL_ENROLL_BATCH 10000
#define CTL_REMOVE_BATCH 10000
#define CTL_LINE_MAX 4096
#define CTL_SYSTEM_ORG "_system"
/* Export page size asked of the engine. Small on purpose: the engine
 * (0.1.0) builds a page in a buffer that starts at 64 KiB and drops, without
 * telling, the record that would make it grow past max_bytes + 64 KiB,
 * and everything after it; a page that always fits in the first 64 KiB
 * never gets there. */
#define CTL_EXPORT_PAGE 32768

/* How long the first request waits for the console socket to accept
 * connections (at most --timeout): a daemon started just before binds
 * only after recovery. */
#define CTL_CONNECT_WAIT_MS 3000

struct ctl {
	const char *endpoint;
	char org[FBX_ID_MAX + 1];
	char actor[FBX_ID_MAX + 1];
	int json;
	int timeout_ms;
	int retries;
	fbx_client *cli;
	char errmsg[256]; /* call_ex: the last refusal's message */
	/* issue 10: key files (NULL = FUSEBOX_KEY / FUSEBOX_SERVER_KEY /
	 * ~/.config/fusebox/{client.key,server.pub}) */
	const char *key_file, *server_key_file;
};

/* ------------------------------------------------------------------ */
/* errors */

static int
exit_status(int err)
{
	switch (err) {
	case FBX_OK:
		return EX_OK;
	case FBX_ETIMEOUT:
	case FBX_EUNREACHABLE:
		return EX_UNAVAILABLE;
	case FBX_EINVALID:
	case FBX_EUNKNOWN_ORG:
	case FBX_EUNKNOWN_DEVICE:
	case FBX_EEMPTY_TARGET:
	case FBX_EIDEMPOTENCY_CONFLICT:
	case FBX_ETOOBIG:
	case FBX_ENOT_FOUND:
	case FBX_ETOO_MANY:
	case FBX_ELIMIT_EXCEEDED:
	case FBX_EAPPROVAL_INVALID:
	case FBX_ESTATE:
	case FBX_EBREAKER_OPEN:
	case FBX_EBAD_CERT:
		return EX_DATAERR;
	case FBX_EBUSY:
	case FBX_ERATE_LIMITED:
	case FBX_ESTORAGE:
	case FBX_EDISK_FULL:
	case FBX_EMAP_FULL:
	case FBX_ESHUTTING_DOWN:
	case FBX_EMOVED:
	case FBX_EFENCED:
		return EX_TEMPFAIL;
	default:
		return EX_SOFTWARE;
	}
}

/* fail - print the one error line and return the exit status for err. */
static int
fail(int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (fmt == NULL) {
		snprintf(msg, sizeof(msg), "%s", fbx_strerror(err));
	} else {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	/* Keep it one line whatever the engine sent. */
	for (char *p = msg; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	fprintf(stderr, "fuseboxctl: %s (%d): %s\n", fbx_errname(err), err,
	    msg);
	return exit_status(err);
}

/* usage_err - a bad flag or argument: INVALID with EX_USAGE. */
static int
usage_err(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fuseboxctl: %s (%d): %s\n", fbx_errname(FBX_EINVALID),
	    FBX_EINVALID, msg);
	return EX_USAGE;
}

/* ------------------------------------------------------------------ */
/* parsing helpers */

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

/* parse_pct - a percentage ("5", "2.5", "0.01", optionally "5%") as
 * parts per million. */
static int
parse_pct(const char *s, uint32_t *ppm)
{
	char buf[32], *end;
	size_t n;
	double v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -1;
	n = strlen(s);
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n + 1);
	if (n > 1 && buf[n - 1] == '%')
		buf[n - 1] = '\0';
	errno = 0;
	v = strtod(buf, &end);
	if (errno != 0 || end == buf || *end != '\0' || !(v >= 0.0) ||
	    v > 100.0)
		return -1;
	*ppm = (uint32_t)(v * 10000.0 + 0.5);
	return 0;
}

/* parse_factor - a multiplier ("2", "1.5", "x2") as hundredths, in
 * [lo, hi] hundredths. */
static int
parse_factor(const char *s, uint32_t lo, uint32_t hi, uint32_t *x100)
{
	char *end;
	double v;

	if (s == NULL)
		return -1;
	if (*s == 'x' || *s == 'X')
		s++;
	if (*s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0) ||
	    v * 100.0 + 0.5 < lo || v * 100.0 + 0.5 > (double)hi + 0.99)
		return -1;
	*x100 = (uint32_t)(v * 100.0 + 0.5);
	return 0;
}

/* pct_str - ppm as a short percentage ("2%", "2.5%", "0.01%"). */
static void
pct_str(uint32_t ppm, char *buf, size_t len)
{
	char t[32];
	size_t n;

	snprintf(t, sizeof(t), "%" PRIu32 ".%04" PRIu32, ppm / 10000,
	    ppm % 10000);
	n = strlen(t);
	while (n > 0 && t[n - 1] == '0')
		t[--n] = '\0';
	if (n > 0 && t[n - 1] == '.')
		t[--n] = '\0';
	snprintf(buf, len, "%s%%", t);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* parse_time - epoch milliseconds, "now", or a relative time "-90s",
 * "-15m", "-1h", "-7d" (also "+1h"). */
static int
parse_time(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int64_t unit;

	if (s == NULL || *s == '\0')
		return -1;
	if (strcmp(s, "now") == 0) {
		*out = wall_ms();
		return 0;
	}
	if (*s != '-' && *s != '+') {
		uint64_t u;
		if (parse_u64(s, INT64_MAX, &u) != 0)
			return -1;
		*out = (int64_t)u;
		return 0;
	}
	errno = 0;
	v = strtoll(s + 1, &end, 10);
	if (errno != 0 || end == s + 1 || v < 0 || v > 100LL * 365 * 86400)
		return -1;
	if (strcmp(end, "ms") == 0)
		unit = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		unit = 1000;
	else if (strcmp(end, "m") == 0)
		unit = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		unit = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		unit = 86400 * 1000;
	else
		return -1;
	*out = wall_ms() + (*s == '-' ? -1 : 1) * (int64_t)v * unit;
	return 0;
}

static void
fmt_time(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t t;

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	/* strftime: the compiler cannot bound a %04d year for snprintf */
	if (strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, len, "-");
		return;
	}
	{
		size_t n = strlen(buf);
		if (len - n >= 6)
			snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
	}
}

/* copy_id - validate and copy an identifier. */
static int
copy_id(char *dst, const char *src)
{
	if (!fbx_id_valid(src))
		return -1;
	strcpy(dst, src);
	return 0;
}

/* read_file_capped - read a whole file (or "-" for stdin) up to max
 * bytes. */
static int
read_file_capped(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
	FILE *f = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc = FBX_OK;

	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL) {
		rc = FBX_EIO;
		goto out;
	}
	buf = malloc(max + 1);
	if (buf == NULL) {
		rc = FBX_ENOMEM;
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		rc = FBX_EIO;
		goto out;
	}
	if (n > max) {
		rc = FBX_ETOOBIG;
		goto out;
	}
	*out = buf;
	*outlen = n;
	buf = NULL;
out:
	free(buf);
	if (f != NULL && f != stdin)
		fclose(f);
	return rc;
}

/* ------------------------------------------------------------------ */
/* id list: a growable, capped array of identifiers */

struct idlist {
	fbx_id *ids;
	size_t n, cap, max;
};

static int
idlist_add(struct idlist *l, const char *id)
{
	if (!fbx_id_valid(id))
		return FBX_EINVALID;
	if (l->n >= l->max)
		return FBX_ETOOBIG;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		fbx_id *p;
		if (ncap > l->max)
			ncap = l->max;
		p = realloc(l->ids, ncap * sizeof(*p));
		if (p == NULL)
			return FBX_ENOMEM;
		l->ids = p;
		l->cap = ncap;
	}
	strcpy(l->ids[l->n++], id);
	return FBX_OK;
}

/* idlist_add_split - add ids separated by commas, blanks or newlines. */
static int
idlist_add_split(struct idlist *l, const char *s, const char **bad)
{
	char tok[FBX_ID_MAX + 2];

	while (*s != '\0') {
		size_t k = 0;
		int rc;

		while (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n' ||
		    *s == '\r')
			s++;
		if (*s == '\0')
			break;
		if (*s == '#') { /* comment to end of line */
			while (*s != '\0' && *s != '\n')
				s++;
			continue;
		}
		while (*s != '\0' && *s != ',' && *s != ' ' && *s != '\t' &&
		    *s != '\n' && *s != '\r') {
			if (k < sizeof(tok) - 1)
				tok[k++] = *s;
			s++;
		}
		tok[k] = '\0';
		rc = idlist_add(l, tok);
		if (rc != FBX_OK) {
			static char badbuf[FBX_ID_MAX + 2];
			strcpy(badbuf, tok);
			*bad = badbuf;
			return rc;
		}
	}
	return FBX_OK;
}

/* ------------------------------------------------------------------ */
/* aligned tables */

struct table {
	int ncol;
	char **cells; /* row-major */
	size_t nrows, cap;
};

static void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* table_row - append a row of ncol strings (copied). */
static int
table_row(struct table *t, ...)
{
	va_list ap;

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 32;
		char **p = realloc(
		    t->cells, ncap * (size_t)t->ncol * sizeof(*p));
		if (p == NULL)
			return FBX_ENOMEM;
		t->cells = p;
		t->cap = ncap;
	}
	va_start(ap, t);
	for (int i = 0; i < t->ncol; i++) {
		const char *s = va_arg(ap, const char *);
		char *d = strdup(s != NULL ? s : "");
		t->cells[t->nrows * (size_t)t->ncol + (size_t)i] = d;
	}
	va_end(ap);
	t->nrows++;
	for (int i = 0; i < t->ncol; i++) {
		if (t->cells[(t->nrows - 1) * (size_t)t->ncol + (size_t)i] ==
		    NULL)
			return FBX_ENOMEM;
	}
	return FBX_OK;
}

static void
table_print(const struct table *t)
{
	size_t w[16] = { 0 };

	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncol && c < 16; c++) {
			const char *s = t->cells[r * (size_t)t->ncol + c];
			size_t l = s ? strlen(s) : 0;
			if (l > w[c])
				w[c] = l;
		}
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncol && c < 16; c++) {
			const char *s = t->cells[r * (size_t)t->ncol + c];
			if (c == t->ncol - 1)
				printf("%s\n", s ? s : "");
			else
				printf("%-*s  ", (int)w[c], s ? s : "");
		}
	}
}

/* ------------------------------------------------------------------ */
/* JSON output: ctl_json.c, with jansson (issue 12 item 6) */

/* ------------------------------------------------------------------ */
/* calling the engine */

/* call_ex - send req, retrying a timed-out request; print the error line
 * on failure. Returns EX_OK with rep owned by the caller, or an exit
 * status with rep zeroed. With eng_err set, an engine refusal is not
 * printed: its code lands in *eng_err (and its message in ctl->errmsg)
 * and the exit status is returned, so a loop over organisations can
 * tell "nothing here" from a failure. */
static int
call_ex(struct ctl *ctl, struct fbx_console_req *req,
    struct fbx_console_rep *rep, int *eng_err)
{
	int rc;

	memset(rep, 0, sizeof(*rep));
	if (ctl->cli == NULL) {
		int wait_ms = ctl->timeout_ms < CTL_CONNECT_WAIT_MS
		    ? ctl->timeout_ms
		    : CTL_CONNECT_WAIT_MS;
		struct fbx_client_opts co;
		char why[600] = "";
		memset(&co, 0, sizeof(co));
		co.key_file = ctl->key_file;
		co.server_key_file = ctl->server_key_file;
		co.why = why;
		co.whylen = sizeof(why);
		rc = fbx_client_open2(ctl->endpoint, ctl->timeout_ms, &co,
		    &ctl->cli);
		if (rc == FBX_EINVALID)
			return usage_err("bad endpoint '%s'", ctl->endpoint);
		if (rc == FBX_ECONFIG)
			return fail(rc, "%s", why);
		if (rc != FBX_OK)
			return fail(rc, "cannot open endpoint %s: %s",
			    ctl->endpoint, fbx_strerror(rc));
		/* a daemon started a moment ago binds after recovery */
		if (fbx_client_wait_ready(ctl->endpoint, wait_ms) != FBX_OK) {
			struct stat st;
			const char *ep = ctl->endpoint;
			int ipc = strncmp(ep, "ipc://", 6) == 0;
			return fail(FBX_EUNREACHABLE,
			    "engine unreachable at %s: %s (waited %d ms; is "
			    "fuseboxd running?)",
			    ep,
			    !ipc                     ? "nothing listens there"
			    : stat(ep + 6, &st) != 0 ? "no socket file"
						     : "the socket file is "
						       "left from a stopped "
						       "daemon",
			    wait_ms);
		}
	}
	if (req->org[0] == '\0')
		strcpy(req->org, ctl->org[0] ? ctl->org : CTL_SYSTEM_ORG);
	/* the engine acts as the key's principal; -a only states it */
	if (req->actor[0] == '\0')
		strcpy(req->actor, ctl->actor[0] ? ctl->actor
		                                 : fbx_client_principal(ctl->cli));
	for (int attempt = 0;; attempt++) {
		rc = fbx_client_call(ctl->cli, req, rep);
		if (rc != FBX_ETIMEOUT || attempt >= ctl->retries)
			break;
	}
	if (rc == FBX_ETIMEOUT)
		return fail(rc, "no reply from %s within %d ms (%d attempts): "
		    "the engine accepts connections but does not answer",
		    ctl->endpoint, ctl->timeout_ms, ctl->retries + 1);
	if (rc == FBX_EUNREACHABLE)
		return fail(rc, "engine unreachable at %s", ctl->endpoint);
	if (rc == FBX_EFORBIDDEN)
		return fail(rc, "the engine at %s refused the handshake: the "
		    "key of '%s' is unknown, revoked or rotated, or the "
		    "server key is not this engine's",
		    ctl->endpoint, fbx_client_principal(ctl->cli));
	if (rc == FBX_EINVALID || rc == FBX_ETOOBIG)
		return fail(rc, "request not sent: it cannot be encoded (%s)",
		    fbx_strerror(rc));
	if (rc != FBX_OK)
		return fail(rc, NULL);
	if (eng_err != NULL)
		*eng_err = rep->err;
	if (rep->err != FBX_OK && eng_err != NULL) {
		int st = exit_status(rep->err);
		snprintf(ctl->errmsg, sizeof(ctl->errmsg), "%s",
		    rep->errmsg[0] ? rep->errmsg : fbx_strerror(rep->err));
		fbx_console_rep_free(rep);
		memset(rep, 0, sizeof(*rep));
		return st;
	}
	if (rep->err != FBX_OK) {
		int st = fail(rep->err, "%s",
		    rep->errmsg[0] ? rep->errmsg : fbx_strerror(rep->err));
		/* A refusal over a blast-radius limit names the token a
		 * second operator approves: on its own line, so a runbook
		 * can cut it out. */
		if (rep->err == FBX_ELIMIT_EXCEEDED &&
		    rep->approval_token[0] != '\0') {
			fprintf(stderr, "approval token: %s\n",
			    rep->approval_token);
			if (ctl->json) {
				json_t *o = json_object();
				if (o != NULL) {
					CJ_STR(o, "error", fbx_errname(rep->err));
					CJ_INT(o, "code", rep->err);
					CJ_STR(o, "message", rep->errmsg);
					CJ_STR(o, "approval_token",
					    rep->approval_token);
					CJ_INT(o, "limit", rep->limit_value);
					CJ_INT(o, "count", rep->limit_count);
				}
				ctl_json_print(o);
			}
		}
		fbx_console_rep_free(rep);
		memset(rep, 0, sizeof(*rep));
		return st;
	}
	return EX_OK;
}

static int
call(struct ctl *ctl, struct fbx_console_req *req, struct fbx_console_rep *rep)
{
	return call_ex(ctl, req, rep, NULL);
}

static int
need_org(const struct ctl *ctl)
{
	if (ctl->org[0] == '\0')
		return usage_err("no organisation: use -o ORG or set "
				 "FUSEBOX_ORG");
	return EX_OK;
}

/* The organisations the engine knows (LIST_ORGS), for --all-orgs. */
struct orglist {
	fbx_id *orgs;
	uint32_t *devices;
	size_t n;
};

static void
orglist_free(struct orglist *l)
{
	free(l->orgs);
	free(l->devices);
	memset(l, 0, sizeof(*l));
}

/* list_orgs - every organisation the engine knows, with its devices. */
static int
list_orgs(struct ctl *ctl, struct orglist *out)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	char saved[FBX_ID_MAX + 1];
	int st;

	memset(&req, 0, sizeof(req));
	memset(out, 0, sizeof(*out));
	req.kind = FBX_CREQ_LIST_ORGS;
	strcpy(saved, ctl->org);
	st = call(ctl, &req, &rep);
	strcpy(ctl->org, saved);
	if (st != EX_OK)
		return st;
	if (rep.u.orgs.n > 0) {
		out->orgs = malloc(rep.u.orgs.n * sizeof(*out->orgs));
		out->devices = malloc(rep.u.orgs.n * sizeof(*out->devices));
		if (out->orgs == NULL || out->devices == NULL) {
			orglist_free(out);
			fbx_console_rep_free(&rep);
			return fail(FBX_ENOMEM, NULL);
		}
		memcpy(out->orgs, rep.u.orgs.orgs,
		    rep.u.orgs.n * sizeof(*out->orgs));
		memcpy(out->devices, rep.u.orgs.devices,
		    rep.u.orgs.n * sizeof(*out->devices));
		out->n = rep.u.orgs.n;
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ------------------------------------------------------------------ */
/* common options, accepted before and after the command */

enum {
	OPT_JSON = 1000,
	OPT_TIMEOUT,
	OPT_RETRIES,
	OPT_VERSION,
	OPT_HELP,
	OPT_TYPE,
	OPT_DEVICE,
	OPT_DEVICES_FILE,
	OPT_GROUP,
	OPT_ALL,
	OPT_PLATFORM,
	OPT_ORIGIN,
	OPT_REASON,
	OPT_PAYLOAD,
	OPT_PAYLOAD_FILE,
	OPT_TTL,
	OPT_IDEM,
	OPT_WAIT,
	OPT_STATE,
	OPT_LIMIT,
	OPT_AFTER,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_OS,
	OPT_FILE,
	OPT_DRY_RUN,
	OPT_APPROVAL,
	OPT_ROLLOUT,
	OPT_FIRST,
	OPT_FIRST_SHARE,
	OPT_GROWTH,
	OPT_MAX_WAVE,
	OPT_BAKE,
	OPT_SUCCESS,
	OPT_FAILURE,
	OPT_MIN_RESULTS,
	OPT_STAGES,
	OPT_APPROVE_STAGES,
	OPT_NOTE,
	OPT_GLOBAL,
	OPT_RELEASE,
	OPT_DISCARD,
	OPT_WINDOW,
	OPT_MIN,
	OPT_SHARE,
	OPT_BASELINE_MULT,
	OPT_GLOBAL_ORGS,
	OPT_SETTLE,
	OPT_MIN_SAMPLES,
	OPT_GLOBAL_SHARE,
	OPT_SHADOW,
	OPT_ENFORCE,
	OPT_MAX,
	OPT_RATE,
	OPT_BURST,
	OPT_MAX_INFLIGHT,
	OPT_ORGS_PREFIX,
	OPT_COUNT,
	OPT_ALL_ORGS,
	OPT_COMMAND,
	OPT_INCIDENT,
	OPT_EXECUTE,
	OPT_INCLUDE_CHANGED,
	OPT_ROWS,
	OPT_FORCE,
	OPT_OUTPUT,
	OPT_ACTOR_FILTER,
	OPT_ACTION,
	OPT_PAGE_BYTES,
	OPT_FULL,
	OPT_RESUME,
	OPT_INCLUDE_BEFORE_ONSET,
	OPT_CONTINUE,
	OPT_NAME,
	OPT_TRIP_BEFORE,
	OPT_KEY,
	OPT_SERVER_KEY,
	OPT_KIND,
	OPT_ROLES,
	OPT_ORGS,
	OPT_PUBLIC_KEY,
	OPT_KEY_OUT,
	OPT_STALE,
	OPT_REPEAT,
};

#define COMMON_LONGOPTS                                                      \
	{ "endpoint", required_argument, NULL, 'e' },                        \
	    { "org", required_argument, NULL, 'o' },                         \
	    { "actor", required_argument, NULL, 'a' },                       \
	    { "json", no_argument, NULL, OPT_JSON },                         \
	    { "timeout", required_argument, NULL, OPT_TIMEOUT },             \
	    { "retries", required_argument, NULL, OPT_RETRIES },             \
	    { "help", no_argument, NULL, OPT_HELP },                         \
	    { "version", no_argument, NULL, OPT_VERSION },                   \
	    { "key", required_argument, NULL, OPT_KEY },                     \
	    { "server-key", required_argument, NULL, OPT_SERVER_KEY }

#define COMMON_SHORTOPTS "e:o:a:hV"

/* long_exact - whether the long option getopt_long just returned (index
 * li) was typed in full. getopt_long takes any unique prefix, so
 * "--typ lock" would mean "--type lock" and "--exec" "--execute"; a tool
 * meant to prevent accidents refuses both. Short options pass. On a
 * refusal, typed holds what was typed (without "=value"). */
static int
long_exact(int argc, char **argv, const struct option *lo, int li,
    char *typed, size_t tl)
{
	const char *tok;
	size_t n;

	if (li < 0 || optind < 1 || optind > argc)
		return 1;
	tok = argv[optind - 1];
	/* "--opt VALUE": optarg is the next word itself */
	if (optarg != NULL && optarg == tok && optind >= 2)
		tok = argv[optind - 2];
	if (strncmp(tok, "--", 2) != 0)
		return 1;
	n = strcspn(tok, "=");
	snprintf(typed, tl, "%.*s", (int)n, tok);
	return strlen(lo[li].name) == n - 2 &&
	    strncmp(tok + 2, lo[li].name, n - 2) == 0;
}

/* common_opt - handle an option shared by all commands.
 * @return 1 handled, 0 not a common option, or -(exit status + 1). */
static int
common_opt(struct ctl *ctl, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case 'e':
		ctl->endpoint = arg;
		return 1;
	case 'o':
		if (copy_id(ctl->org, arg) != 0)
			return -(usage_err("bad organisation '%s'", arg) + 1);
		return 1;
	case 'a':
		if (copy_id(ctl->actor, arg) != 0)
			return -(usage_err("bad actor '%s'", arg) + 1);
		return 1;
	case OPT_KEY:
		ctl->key_file = arg;
		return 1;
	case OPT_SERVER_KEY:
		ctl->server_key_file = arg;
		return 1;
	case OPT_JSON:
		ctl->json = 1;
		return 1;
	case OPT_TIMEOUT:
		if (parse_u64(arg, 3600 * 1000, &v) != 0 || v == 0)
			return -(usage_err("bad --timeout '%s' (milliseconds)",
			             arg) +
			    1);
		ctl->timeout_ms = (int)v;
		return 1;
	case OPT_RETRIES:
		if (parse_u64(arg, 100, &v) != 0)
			return -(usage_err("bad --retries '%s'", arg) + 1);
		ctl->retries = (int)v;
		return 1;
	default:
		return 0;
	}
}

static void
print_version(void)
{
	printf("fuseboxctl %s (protocol %d)\n", FBX_VERSION,
	    FBX_PROTOCOL_VERSION);
}

#define CTL_EXIT_STATUS                                                      \
	"Exit status: 0 ok, 64 usage, 65 rejected input (also a blast-radius\n" \
	"limit, a missing approval, an open breaker or a wrong state), 69\n"    \
	"engine unreachable (UNREACHABLE) or not answering (TIMEOUT), 75\n"     \
	"engine busy, rate-limited or storage trouble, 70 other errors.\n"

static const char *const main_usage =
    "usage: fuseboxctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Operator CLI of the fusebox command-dispatch engine.\n"
    "\n"
    "Options (also accepted after COMMAND):\n"
    "  -e, --endpoint EP   console endpoint (default $FUSEBOX_CONSOLE or\n"
    "                      " CTL_DEFAULT_ENDPOINT ")\n"
    "  -o, --org ORG       organisation (default $FUSEBOX_ORG)\n"
    "  -a, --actor NAME    acting principal (default $FUSEBOX_ACTOR, else\n"
    "                      the key's: another name is refused FORBIDDEN)\n"
    "      --key FILE      your key (default $FUSEBOX_KEY, else\n"
    "                      ~/.config/fusebox/client.key)\n"
    "      --server-key FILE  the engine's public key (default\n"
    "                      $FUSEBOX_SERVER_KEY, else\n"
    "                      ~/.config/fusebox/server.pub)\n"
    "      --json          print one JSON object per reply\n"
    "      --timeout MS    reply timeout per request (default 10000)\n"
    "      --retries N     resend a timed-out request N times (default 2)\n"
    "  -h, --help          this help; COMMAND --help for a command\n"
    "  -V, --version       print the version\n"
    "\n"
    "Commands:\n"
    "  submit    submit a command to devices, a group or the organisation\n"
    "  show      show a command, its counts and per-device outcomes\n"
    "  list      list the organisation's commands\n"
    "  enroll    enroll devices (one, or a CSV file)\n"
    "  remove    remove devices from the registry\n"
    "  devices   list enrolled devices\n"
    "  groups    list device groups with their sizes\n"
    "  fleet     fleet check-in health: devices by hours offline, OS\n"
    "            versions, alert rules for devices that stop checking in\n"
    "  status    engine status (ping)\n"
    "  summary   per-organisation totals over the commands (incidents)\n"
    "Safety controls:\n"
    "  breaker   circuit breakers: status, trip, reset, config\n"
    "  held      commands held by an open breaker\n"
    "  limit     blast-radius limits per command type: list, set\n"
    "  rate      dispatch rate caps: show, set\n"
    "  approve   approve a command refused by a limit (second operator)\n"
    "  rollout   staged rollout: status, pause, resume, cancel, approve\n"
    "  cert      certificates automatic reasons depend on: add, list,\n"
    "            remove (their breakers trip before they expire)\n"
    "Incident response:\n"
    "  rollback  undo commands (by id, by filter, or an incident's), in one\n"
    "            or every organisation: a plan first, --execute to act\n"
    "  replay    resend deliveries a gateway lost\n"
    "  export    commands, deliveries and audit records as JSON Lines\n"
    "  audit     the audit log: list, verify the hash chain\n"
    "  orgs      organisations with their device counts\n"
    "Access:\n"
    "  principal who may use the engine: add, list, revoke, rotate keys\n"
    "  web       web console: login prints the page's address with a\n"
    "            session token\n"
    "\n"
    CTL_EXIT_STATUS;

/* parse_cmd_opts - run getopt_long over a command's arguments, handling
 * common options and calling back for the others. */
typedef int (*opt_fn)(void *arg, struct ctl *ctl, int c, const char *optarg,
    int argc, char **argv);

static int
parse_cmd_opts(struct ctl *ctl, int argc, char **argv,
    const struct option *longopts, const char *usage, opt_fn fn, void *arg)
{
	int c;

	int li = -1;

	optind = 0; /* glibc: full reset, options may follow operands */
	opterr = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts,
	            &li)) != -1) {
		char typed[128];
		int r;

		if (c != '?' && c != ':' &&
		    !long_exact(argc, argv, longopts, li, typed,
		        sizeof(typed)))
			return -(usage_err("unknown option '%s' (did you mean "
					   "--%s? options are not "
					   "abbreviated)",
				     typed, longopts[li].name) +
			    1);
		li = -1;
		if (c == OPT_HELP || c == 'h') {
			fputs(usage, stdout);
			if (strstr(usage, "Exit status") == NULL)
				fputs("\n" CTL_EXIT_STATUS, stdout);
			return -(EX_OK + 1);
		}
		if (c == OPT_VERSION || c == 'V') {
			print_version();
			return -(EX_OK + 1);
		}
		if (c == '?' || c == ':') {
			if (optopt != 0)
				return -(usage_err("bad or incomplete option "
						   "'-%c' (see %s --help)",
					     optopt, argv[0]) +
				    1);
			return -(usage_err("bad or incomplete option '%s' "
					   "(see %s --help)",
				     argv[optind - 1], argv[0]) +
			    1);
		}
		r = common_opt(ctl, c, optarg);
		if (r < 0)
			return r;
		if (r == 1)
			continue;
		r = fn(arg, ctl, c, optarg, argc, argv);
		if (r != EX_OK)
			return -(r + 1);
	}
	return optind;
}

/* ------------------------------------------------------------------ */
/* submit */

static const char *const submit_usage =
    "usage: fuseboxctl submit --type TYPE TARGET [OPTIONS]\n"
    "\n"
    "Submit a command. Prints the command id. A generated idempotency key\n"
    "is printed on stderr: pass it with --idempotency-key to retry safely.\n"
    "\n"
    "  --type TYPE             lock, unlock, wipe, os_update, install_app,\n"
    "                          remove_app, set_policy, start_lost_mode,\n"
    "                          stop_lost_mode, restart, query,\n"
    "                          clear_passcode\n"
    "Target (exactly one):\n"
    "  --device ID[,ID...]     explicit devices (repeatable)\n"
    "  --devices-file F        device ids, one per line ('-' = stdin)\n"
    "  --group G               every device of group G\n"
    "  --all                   every device of the organisation\n"
    "Options:\n"
    "  --platform P            only devices of platform P (android, ios,\n"
    "                          macos, windows, linux, chromeos, any)\n"
    "  --origin O              operator (default), automatic, rollback,\n"
    "                          scheduled\n"
    "  --reason R              reason identifier (recorded, used by\n"
    "                          rollback)\n"
    "  --payload STRING        command payload\n"
    "  --payload-file F        payload from a file (max 64 KiB)\n"
    "  --ttl SECONDS           time to live (default 86400)\n"
    "  --idempotency-key K     key making a retry safe (default: random)\n"
    "  --wait [SECONDS]        wait until every delivery is terminal or\n"
    "                          pending (default 300 s), print the counts\n"
    "Safety controls:\n"
    "  --dry-run               print what the command would reach (devices,\n"
    "                          per platform, per group, the wave plan) and\n"
    "                          the verdict; nothing is submitted. Exit 0 if\n"
    "                          it would be admitted, 65 if a limit or a\n"
    "                          breaker would stop it\n"
    "  --approval TOKEN        a second operator's approval of a command\n"
    "                          refused by a blast-radius limit (the token is\n"
    "                          printed with the refusal)\n"
    "Staged rollout (waves of growing size; defaults: first wave 1%,\n"
    "growth x2, success 95%, failure 10% after 20 results, no bake):\n"
    "  --rollout               release the devices in waves\n"
    "  --first N               first wave of N devices, or\n"
    "  --first-share PCT       first wave as a share of the target (2.5 =\n"
    "                          2.5%)\n"
    "  --growth X              next wave = previous x X (e.g. 2, 1.5)\n"
    "  --max-wave N            cap on a wave's size\n"
    "  --bake SECONDS          wait after a wave's results are in\n"
    "  --success PCT           succeeded share of a wave needed to advance\n"
    "  --failure PCT           failed share that pauses the rollout\n"
    "  --min-results N         results before failures are judged\n"
    "  --stages G1,G2,...      go through these groups in order, then the\n"
    "                          rest of the organisation (needs --all)\n"
    "  --approve-stages        advancing past a group needs an operator's\n"
    "                          'fuseboxctl rollout approve ID'\n"
    "\n"
    "A command held by an open circuit breaker is accepted and durable:\n"
    "its id is printed and 'held by breaker ORG/REASON' on stderr (exit 0).\n"
    "A refusal over a blast-radius limit exits 65 and prints the line\n"
    "'approval token: TOKEN' on stderr.\n";

struct submit_args {
	struct fbx_console_req *req;
	struct fbx_command *cmd;
	int rollout_opts; /* a rollout option was given */
	struct idlist ids;
	int ntargets;
	int have_payload;
	int wait;
	uint64_t wait_s;
};

static int
submit_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct submit_args *sa = arg;
	struct fbx_command *cmd = sa->cmd;
	const char *bad = NULL;
	uint64_t v;
	uint8_t *buf;
	size_t len;
	int rc;

	(void)ctl;
	switch (c) {
	case OPT_TYPE: {
		char t[64];
		snprintf(t, sizeof(t), "%s", oa);
		for (char *p = t; *p; p++)
			if (*p == '-')
				*p = '_';
		cmd->type = (uint8_t)fbx_cmd_type_parse(t);
		if (cmd->type == 0)
			return usage_err("unknown command type '%s'", oa);
		return EX_OK;
	}
	case OPT_DEVICE:
		if (cmd->target_kind != FBX_TARGET_DEVICES)
			sa->ntargets++;
		cmd->target_kind = FBX_TARGET_DEVICES;
		rc = idlist_add_split(&sa->ids, oa, &bad);
		if (rc == FBX_ETOOBIG)
			return usage_err("more than %d devices",
			    FBX_TARGET_IDS_MAX);
		if (rc == FBX_ENOMEM)
			return fail(rc, NULL);
		if (rc != FBX_OK)
			return usage_err("bad device id '%s'", bad);
		return EX_OK;
	case OPT_DEVICES_FILE:
		if (cmd->target_kind != FBX_TARGET_DEVICES)
			sa->ntargets++;
		cmd->target_kind = FBX_TARGET_DEVICES;
		rc = read_file_capped(oa,
		    (size_t)FBX_TARGET_IDS_MAX * (FBX_ID_MAX + 2), &buf, &len);
		if (rc != FBX_OK)
			return rc == FBX_EIO
			    ? usage_err("cannot read %s: %s", oa,
			          strerror(errno))
			    : usage_err("%s: %s", oa, fbx_strerror(rc));
		buf[len] = '\0';
		rc = idlist_add_split(&sa->ids, (const char *)buf, &bad);
		free(buf);
		if (rc == FBX_ETOOBIG)
			return usage_err("%s: more than %d devices", oa,
			    FBX_TARGET_IDS_MAX);
		if (rc == FBX_ENOMEM)
			return fail(rc, NULL);
		if (rc != FBX_OK)
			return usage_err("%s: bad device id '%s'", oa, bad);
		return EX_OK;
	case OPT_GROUP:
		sa->ntargets++;
		cmd->target_kind = FBX_TARGET_GROUP;
		if (copy_id(cmd->group, oa) != 0)
			return usage_err("bad group '%s'", oa);
		return EX_OK;
	case OPT_ALL:
		sa->ntargets++;
		cmd->target_kind = FBX_TARGET_ORG;
		return EX_OK;
	case OPT_PLATFORM:
		cmd->platform = (uint8_t)fbx_platform_parse(oa);
		if (cmd->platform == 0 && strcmp(oa, "any") != 0)
			return usage_err("unknown platform '%s'", oa);
		return EX_OK;
	case OPT_ORIGIN:
		cmd->origin = (uint8_t)fbx_origin_parse(oa);
		if (cmd->origin == 0)
			return usage_err("unknown origin '%s'", oa);
		return EX_OK;
	case OPT_REASON:
		if (copy_id(cmd->reason, oa) != 0)
			return usage_err("bad reason '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		return EX_OK;
	case OPT_PAYLOAD:
	case OPT_PAYLOAD_FILE:
		if (sa->have_payload)
			return usage_err("only one --payload or "
					 "--payload-file");
		sa->have_payload = 1;
		if (c == OPT_PAYLOAD) {
			len = strlen(oa);
			if (len > FBX_PAYLOAD_MAX)
				return usage_err("payload over %d bytes",
				    FBX_PAYLOAD_MAX);
			buf = malloc(len + 1);
			if (buf == NULL)
				return fail(FBX_ENOMEM, NULL);
			memcpy(buf, oa, len);
		} else {
			rc = read_file_capped(oa, FBX_PAYLOAD_MAX, &buf, &len);
			if (rc == FBX_EIO)
				return usage_err("cannot read %s: %s", oa,
				    strerror(errno));
			if (rc == FBX_ETOOBIG)
				return usage_err("%s: payload over %d bytes",
				    oa, FBX_PAYLOAD_MAX);
			if (rc != FBX_OK)
				return fail(rc, NULL);
		}
		free(cmd->payload);
		cmd->payload = buf;
		cmd->payload_len = (uint32_t)len;
		return EX_OK;
	case OPT_TTL:
		if (parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return usage_err("bad --ttl '%s' (seconds > 0)", oa);
		cmd->ttl_s = (uint32_t)v;
		return EX_OK;
	case OPT_IDEM:
		if (copy_id(cmd->idem_key, oa) != 0)
			return usage_err("bad idempotency key '%s'", oa);
		return EX_OK;
	case OPT_DRY_RUN:
		sa->req->dry_run = 1;
		return EX_OK;
	case OPT_APPROVAL:
		if (copy_id(sa->req->approval, oa) != 0)
			return usage_err("bad approval token '%s'", oa);
		return EX_OK;
	case OPT_ROLLOUT:
		cmd->rollout.enabled = 1;
		return EX_OK;
	case OPT_FIRST:
		sa->rollout_opts = 1;
		if (parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return usage_err("bad --first '%s' (devices > 0)", oa);
		cmd->rollout.first_count = (uint32_t)v;
		return EX_OK;
	case OPT_FIRST_SHARE:
		sa->rollout_opts = 1;
		if (parse_pct(oa, &cmd->rollout.first_share_ppm) != 0 ||
		    cmd->rollout.first_share_ppm == 0)
			return usage_err("bad --first-share '%s' (percent, "
					 "e.g. 1 or 2.5)",
			    oa);
		return EX_OK;
	case OPT_GROWTH:
		sa->rollout_opts = 1;
		if (parse_factor(oa, 100, 100000, &cmd->rollout.growth_x100) !=
		    0)
			return usage_err("bad --growth '%s' (a factor >= 1, "
					 "e.g. 2 or 1.5)",
			    oa);
		return EX_OK;
	case OPT_MAX_WAVE:
		sa->rollout_opts = 1;
		if (parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return usage_err("bad --max-wave '%s' (devices > 0)",
			    oa);
		cmd->rollout.max_wave = (uint32_t)v;
		return EX_OK;
	case OPT_BAKE:
		sa->rollout_opts = 1;
		if (parse_u64(oa, 30u * 86400, &v) != 0)
			return usage_err("bad --bake '%s' (seconds)", oa);
		cmd->rollout.bake_s = (uint32_t)v;
		return EX_OK;
	case OPT_SUCCESS:
		sa->rollout_opts = 1;
		if (parse_pct(oa, &cmd->rollout.success_ppm) != 0 ||
		    cmd->rollout.success_ppm == 0)
			return usage_err("bad --success '%s' (percent > 0)",
			    oa);
		return EX_OK;
	case OPT_FAILURE:
		sa->rollout_opts = 1;
		if (parse_pct(oa, &cmd->rollout.failure_ppm) != 0 ||
		    cmd->rollout.failure_ppm == 0)
			return usage_err("bad --failure '%s' (percent > 0)",
			    oa);
		return EX_OK;
	case OPT_MIN_RESULTS:
		sa->rollout_opts = 1;
		if (parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return usage_err("bad --min-results '%s' (> 0)", oa);
		cmd->rollout.min_results = (uint32_t)v;
		return EX_OK;
	case OPT_STAGES: {
		char tmp[FBX_ROLLOUT_GROUPS_MAX * (FBX_ID_MAX + 1) + 64];
		char *save = NULL, *tok;
		sa->rollout_opts = 1;
		if (strlen(oa) >= sizeof(tmp))
			return usage_err("--stages too long");
		strcpy(tmp, oa);
		cmd->rollout.ngroups = 0;
		for (tok = strtok_r(tmp, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			if (cmd->rollout.ngroups >= FBX_ROLLOUT_GROUPS_MAX)
				return usage_err("--stages: at most %d "
						 "groups",
				    FBX_ROLLOUT_GROUPS_MAX);
			if (copy_id(cmd->rollout.groups[cmd->rollout.ngroups],
			        tok) != 0)
				return usage_err("--stages: bad group '%s'",
				    tok);
			cmd->rollout.ngroups++;
		}
		if (cmd->rollout.ngroups == 0)
			return usage_err("--stages: no group given");
		return EX_OK;
	}
	case OPT_APPROVE_STAGES:
		sa->rollout_opts = 1;
		cmd->rollout.approve_groups = 1;
		return EX_OK;
	case OPT_WAIT:
		sa->wait = 1;
		if (oa == NULL && optind < argc &&
		    parse_u64(argv[optind], 86400 * 7, &v) == 0) {
			oa = argv[optind++];
		}
		if (oa != NULL) {
			if (parse_u64(oa, 86400 * 7, &v) != 0)
				return usage_err("bad --wait '%s' (seconds)",
				    oa);
			sa->wait_s = v;
		}
		return EX_OK;
	default:
		return usage_err("unexpected option (see submit --help)");
	}
}

static void
random_key(char *buf, size_t len)
{
	uint8_t r[12] = { 0 };
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t k = 0;

	if (fd < 0 || read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t v = (uint64_t)ts.tv_nsec ^
		    ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48);
		memcpy(r, &v, sizeof(v));
	}
	if (fd >= 0)
		close(fd);
	k = (size_t)snprintf(buf, len, "ctl-");
	for (size_t i = 0; i < sizeof(r) && k + 2 < len; i++)
		k += (size_t)snprintf(buf + k, len - k, "%02x", r[i]);
}

static void
print_counts_table(const struct fbx_command *c)
{
	struct table t = { .ncol = 2 };

	table_row(&t, "STATE", "COUNT");
	for (int s = 1; s < FBX_D_COUNT; s++) {
		char n[16];
		snprintf(n, sizeof(n), "%" PRIu32, c->counts[s]);
		table_row(&t, fbx_dstate_name(s), n);
	}
	{
		char n[16];
		snprintf(n, sizeof(n), "%" PRIu32, c->ndeliveries);
		table_row(&t, "total", n);
	}
	table_print(&t);
	table_free(&t);
}

/* settled - whether a command needs no more waiting: all deliveries
 * created and each terminal or pending on an offline device. */
static int
settled(const struct fbx_command *c)
{
	uint32_t n = 0;

	if (c->state == FBX_C_DONE)
		return 1;
	if (c->state == FBX_C_EXPANDING)
		return 0;
	for (int s = 1; s < FBX_D_COUNT; s++) {
		if (fbx_dstate_terminal(s) || s == FBX_D_PENDING)
			n += c->counts[s];
	}
	return n >= c->ndeliveries;
}

/* gateways_now - how many gateways the engine has (status), or -1. */
static int
gateways_now(struct ctl *ctl)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int n;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	if (call_ex(ctl, &req, &rep, &n) != EX_OK)
		return -1;
	n = (int)rep.u.pong.gateways;
	fbx_console_rep_free(&rep);
	return n;
}

static int
wait_command(struct ctl *ctl, uint64_t id, uint64_t wait_s)
{
	int64_t deadline = mono_ms() + (int64_t)wait_s * 1000;
	int64_t next_gw = mono_ms() + 1000;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st, said_none = 0;

	for (;;) {
		int done;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		done = settled(&rep.u.command.info);
		if (done || mono_ms() >= deadline) {
			if (ctl->json) {
				json_t *o = json_object();
				if (o != NULL) {
					CJ_INT(o, "command_id", id);
					CJ_BOOL(o, "settled", done);
					CJ_SET(o, "command", ctl_json_command(
					    &rep.u.command.info));
				}
				ctl_json_print(o);
			} else {
				print_counts_table(&rep.u.command.info);
			}
			fbx_console_rep_free(&rep);
			if (!done)
				return fail(FBX_ETIMEOUT,
				    "wait expired after %" PRIu64
				    " s; command %" PRIu64 " not settled",
				    wait_s, id);
			return EX_OK;
		}
		fbx_console_rep_free(&rep);
		/* deliveries go nowhere without a gateway: say so rather
		 * than wait in silence until --wait runs out */
		if (mono_ms() >= next_gw) {
			int g = gateways_now(ctl);
			if (g == 0 && !said_none)
				fprintf(stderr,
				    "fuseboxctl: waiting for command %" PRIu64
				    ": no gateway is connected (status: "
				    "gateways 0); its deliveries stay queued "
				    "until one connects or their TTL ends\n",
				    id);
			else if (g > 0 && said_none)
				fprintf(stderr,
				    "fuseboxctl: %d gateway(s) connected\n",
				    g);
			if (g >= 0)
				said_none = g == 0;
			next_gw = mono_ms() + 5000;
		}
		usleep(500 * 1000);
	}
}

/* plan_str - a rollout plan on one line; zero fields take the engine's
 * defaults. */
static void
plan_str(const struct fbx_rollout_plan *p, char *buf, size_t len)
{
	char first[32], growth[32], maxw[24], succ[16], fail_s[16], minr[24];
	size_t k;

	if (p->first_count != 0)
		snprintf(first, sizeof(first), "%" PRIu32, p->first_count);
	else if (p->first_share_ppm != 0)
		pct_str(p->first_share_ppm, first, sizeof(first));
	else
		snprintf(first, sizeof(first), "1%% (default)");
	if (p->growth_x100 >= 100)
		snprintf(growth, sizeof(growth), "x%" PRIu32 ".%02" PRIu32,
		    p->growth_x100 / 100, p->growth_x100 % 100);
	else
		snprintf(growth, sizeof(growth), "x2 (default)");
	if (p->max_wave != 0)
		snprintf(maxw, sizeof(maxw), "%" PRIu32, p->max_wave);
	else
		snprintf(maxw, sizeof(maxw), "none");
	if (p->success_ppm != 0)
		pct_str(p->success_ppm, succ, sizeof(succ));
	else
		snprintf(succ, sizeof(succ), "95%%");
	if (p->failure_ppm != 0)
		pct_str(p->failure_ppm, fail_s, sizeof(fail_s));
	else
		snprintf(fail_s, sizeof(fail_s), "10%%");
	snprintf(minr, sizeof(minr), "%" PRIu32,
	    p->min_results ? p->min_results : 20);
	k = (size_t)snprintf(buf, len,
	    "first %s, growth %s, max wave %s, bake %" PRIu32
	    "s, success %s, failure %s after %s results",
	    first, growth, maxw, p->bake_s, succ, fail_s, minr);
	for (int g = 0; g < p->ngroups && g < FBX_ROLLOUT_GROUPS_MAX &&
	     k < len; g++) {
		int n = snprintf(buf + k, len - k, "%s%s",
		    g == 0 ? "; stages " : " -> ", p->groups[g]);
		if (n < 0)
			break;
		k += (size_t)n;
	}
	if (p->ngroups > 0 && k < len)
		snprintf(buf + k, len - k, " -> rest%s",
		    p->approve_groups ? " (each stage approved)" : "");
}

static void target_str(const struct fbx_command *c, char *buf, size_t len);

/* print_dry_run - the dry-run report; exit 0 if the command would be
 * admitted, the stop error's status (65) with the verdict otherwise. */
static int
print_dry_run(struct ctl *ctl, const struct fbx_command *cmd,
    struct fbx_console_rep *rep)
{
	const struct fbx_dryrun *d = &rep->u.submit.dryrun;
	int st = EX_OK;

	if (!rep->u.submit.dry_run) {
		fbx_console_rep_free(rep);
		return fail(FBX_EPROTOCOL,
		    "the engine answered a dry run without a report");
	}
	if (ctl->json) {
		ctl_json_print(ctl_json_dry_run(d));
	} else {
		struct table t = { .ncol = 2 };
		char b[64], tg[128];
		target_str(cmd, tg, sizeof(tg));
		table_row(&t, "dry run", "nothing submitted");
		table_row(&t, "type", fbx_cmd_type_name(cmd->type));
		table_row(&t, "origin", fbx_origin_name(cmd->origin));
		table_row(&t, "target", tg);
		table_row(&t, "platform", fbx_platform_name(cmd->platform));
		snprintf(b, sizeof(b), "%" PRIu32, d->devices);
		table_row(&t, "devices", b);
		table_print(&t);
		table_free(&t);
		t.ncol = 2;
		printf("\n");
		table_row(&t, "PLATFORM", "DEVICES");
		for (int p = 0; p < FBX_PLATFORM_COUNT; p++) {
			if (d->per_platform[p] == 0)
				continue;
			snprintf(b, sizeof(b), "%" PRIu32, d->per_platform[p]);
			table_row(&t, fbx_platform_name(p), b);
		}
		table_print(&t);
		table_free(&t);
		if (d->ngroups > 0) {
			t.ncol = 2;
			printf("\n");
			table_row(&t, "GROUP", "DEVICES");
			for (size_t i = 0; i < d->ngroups; i++) {
				snprintf(b, sizeof(b), "%" PRIu32,
				    d->groups[i].count);
				table_row(&t, d->groups[i].name, b);
			}
			table_print(&t);
			table_free(&t);
		}
		if (cmd->rollout.enabled) {
			uint64_t cum = 0;
			char plan[512];
			plan_str(&cmd->rollout, plan, sizeof(plan));
			printf("\nrollout plan: %s\n", plan);
			printf("waves as the engine plans them over the %" PRIu32
			       " devices%s:\n",
			    d->devices,
			    d->nstages > 0 ? ", stage by stage" : "");
			t.ncol = 4;
			table_row(&t, "STAGE", "WAVE", "DEVICES", "CUMULATIVE");
			{
				size_t s = 0, left = d->nstages > 0
				    ? d->stage_waves[0] : d->nwaves;
				for (size_t i = 0; i < d->nwaves; i++) {
					char w[24], c[24], sg[96];
					while (d->nstages > 0 && left == 0 &&
					    s + 1 < d->nstages)
						left = d->stage_waves[++s];
					if (left > 0)
						left--;
					cum += d->waves[i];
					if (d->nstages == 0)
						snprintf(sg, sizeof(sg), "-");
					else if (s < cmd->rollout.ngroups)
						snprintf(sg, sizeof(sg),
						    "%zu: %s (%" PRIu32 ")", s + 1,
						    cmd->rollout.groups[s],
						    d->stage_devices[s]);
					else
						snprintf(sg, sizeof(sg),
						    "%zu: the rest (%" PRIu32 ")",
						    s + 1, d->stage_devices[s]);
					snprintf(w, sizeof(w), "%zu", i + 1);
					snprintf(b, sizeof(b), "%" PRIu32,
					    d->waves[i]);
					snprintf(c, sizeof(c), "%" PRIu64, cum);
					table_row(&t, sg, w, b, c);
				}
			}
			table_print(&t);
			table_free(&t);
			if (d->nstages > 1 && cmd->rollout.approve_groups)
				printf("each stage after the first waits for "
				       "`rollout approve`\n");
		}
		printf("\nverdict: %s\n", d->verdict);
	}
	fflush(stdout);
	if (d->stop_err != FBX_OK)
		st = fail(d->stop_err, "%s", d->verdict);
	fbx_console_rep_free(rep);
	return st;
}

static int
cmd_submit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "devices-file", required_argument, NULL, OPT_DEVICES_FILE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "payload", required_argument, NULL, OPT_PAYLOAD },
		{ "payload-file", required_argument, NULL, OPT_PAYLOAD_FILE },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "idempotency-key", required_argument, NULL, OPT_IDEM },
		{ "wait", optional_argument, NULL, OPT_WAIT },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "approval", required_argument, NULL, OPT_APPROVAL },
		{ "rollout", no_argument, NULL, OPT_ROLLOUT },
		{ "first", required_argument, NULL, OPT_FIRST },
		{ "first-share", required_argument, NULL, OPT_FIRST_SHARE },
		{ "growth", required_argument, NULL, OPT_GROWTH },
		{ "max-wave", required_argument, NULL, OPT_MAX_WAVE },
		{ "bake", required_argument, NULL, OPT_BAKE },
		{ "success", required_argument, NULL, OPT_SUCCESS },
		{ "failure", required_argument, NULL, OPT_FAILURE },
		{ "min-results", required_argument, NULL, OPT_MIN_RESULTS },
		{ "stages", required_argument, NULL, OPT_STAGES },
		{ "approve-stages", no_argument, NULL, OPT_APPROVE_STAGES },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct submit_args sa;
	struct fbx_command *cmd = &req.u.submit.cmd;
	int st, generated = 0, held;
	uint64_t id;

	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	memset(&sa, 0, sizeof(sa));
	sa.req = &req;
	sa.cmd = cmd;
	sa.ids.max = FBX_TARGET_IDS_MAX;
	sa.wait_s = CTL_DEFAULT_WAIT_S;
	cmd->origin = FBX_ORIGIN_OPERATOR;
	cmd->ttl_s = CTL_DEFAULT_TTL_S;
	st = parse_cmd_opts(ctl, argc, argv, lo, submit_usage, submit_opt, &sa);
	if (st < 0) {
		st = -st - 1;
		goto out;
	}
	if (st < argc) {
		st = usage_err("unexpected argument '%s'", argv[st]);
		goto out;
	}
	if ((st = need_org(ctl)) != EX_OK)
		goto out;
	if (cmd->type == 0) {
		st = usage_err("--type is required (see submit --help)");
		goto out;
	}
	if (sa.ntargets != 1) {
		st = usage_err("give exactly one target: --device, "
			       "--devices-file, --group or --all");
		goto out;
	}
	if (cmd->target_kind == FBX_TARGET_DEVICES && sa.ids.n == 0) {
		st = usage_err("no device ids given");
		goto out;
	}
	if (sa.rollout_opts && !cmd->rollout.enabled) {
		st = usage_err("rollout options (--first, --growth, --stages, "
			       "...) go with --rollout");
		goto out;
	}
	if (cmd->rollout.first_count != 0 &&
	    cmd->rollout.first_share_ppm != 0) {
		st = usage_err("give --first or --first-share, not both");
		goto out;
	}
	if (cmd->rollout.ngroups > 0 && cmd->target_kind != FBX_TARGET_ORG) {
		st = usage_err("--stages rolls out through groups of the "
			       "whole organisation: it needs --all");
		goto out;
	}
	if (cmd->rollout.approve_groups && cmd->rollout.ngroups == 0) {
		st = usage_err("--approve-stages needs --stages");
		goto out;
	}
	if (req.dry_run && sa.wait) {
		st = usage_err("--dry-run submits nothing: no --wait");
		goto out;
	}
	if (req.dry_run) {
		req.kind = FBX_CREQ_SUBMIT;
		cmd->dev_ids = sa.ids.ids;
		cmd->ndev_ids = (uint32_t)sa.ids.n;
		st = call(ctl, &req, &rep);
		if (st == EX_OK)
			st = print_dry_run(ctl, cmd, &rep);
		goto out;
	}
	if (cmd->idem_key[0] == '\0') {
		random_key(cmd->idem_key, sizeof(cmd->idem_key));
		generated = 1;
	}
	req.kind = FBX_CREQ_SUBMIT;
	cmd->dev_ids = sa.ids.ids;
	cmd->ndev_ids = (uint32_t)sa.ids.n;
	if (generated && !ctl->json)
		fprintf(stderr, "fuseboxctl: idempotency key %s (retry with "
				"--idempotency-key %s)\n",
		    cmd->idem_key, cmd->idem_key);
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		goto out;
	id = rep.u.submit.command_id;
	if (ctl->json) {
		json_t *o = json_object();
		if (o != NULL) {
			CJ_INT(o, "command_id", id);
			CJ_BOOL(o, "duplicate", rep.u.submit.duplicate);
			CJ_INT(o, "device_count", rep.u.submit.device_count);
			CJ_STR(o, "state", fbx_cstate_name(rep.u.submit.state));
			CJ_STR(o, "idempotency_key", cmd->idem_key);
			CJ_STR(o, "held_by", rep.u.submit.held_by);
		}
		ctl_json_print(o);
	} else {
		printf("%" PRIu64 "\n", id);
		if (rep.u.submit.duplicate)
			fprintf(stderr, "fuseboxctl: key %s was already used "
					"by this command: not submitted "
					"again\n",
			    cmd->idem_key);
		if (rep.u.submit.state == FBX_C_HELD)
			fprintf(stderr, "held by breaker %s\n",
			    rep.u.submit.held_by[0] ? rep.u.submit.held_by
			                            : "?");
	}
	fflush(stdout);
	held = rep.u.submit.state == FBX_C_HELD;
	fbx_console_rep_free(&rep);
	if (sa.wait && held)
		fprintf(stderr, "fuseboxctl: not waiting: command %" PRIu64
				" is held until an operator resets the "
				"breaker\n",
		    id);
	else if (sa.wait)
		st = wait_command(ctl, id, sa.wait_s);
out:
	cmd->dev_ids = NULL;
	free(sa.ids.ids);
	free(cmd->payload);
	cmd->payload = NULL;
	return st;
}

/* ------------------------------------------------------------------ */
/* show */

static const char *const show_usage =
    "usage: fuseboxctl show ID [--state S] [--limit N] [--after DLV]\n"
    "\n"
    "Show a command: its fields, deliveries per state, and one page of\n"
    "per-device outcomes.\n"
    "\n"
    "  --state S     only deliveries in state S (queued, sent, accepted,\n"
    "                succeeded, failed, expired, cancelled, pending)\n"
    "  --limit N     outcomes per page (default 50, 0..10000; 0 = the\n"
    "                counts alone, no outcome rows)\n"
    "  --after DLV   start after delivery id DLV (page cursor)\n";

struct page_args {
	uint64_t after;
	uint64_t limit;
	int state;
	int64_t since, until;
	fbx_id after_id;
	fbx_id group;
	uint32_t stale_minutes; /* devices --stale */
	/* enroll */
	struct fbx_device dev;
	int have_dev, have_platform;
	const char *file;
};

static int parse_dur_s(const char *s, uint64_t max, uint32_t *out);

/* parse_minutes - a duration of at least a minute ("1440m", "24h",
 * "2d", "90" = minutes) as whole minutes, at most max. */
/* copy_note - an operator's --note into dst (FBX_NOTE_MAX bytes):
 * printable, at most FBX_NOTE_MAX - 1 bytes (the engine checks it again)
 * @return EX_OK, or the usage error it printed. */
static int
copy_note(char *dst, const char *oa)
{
	if (strlen(oa) >= FBX_NOTE_MAX)
		return usage_err("note longer than %d bytes", FBX_NOTE_MAX - 1);
	for (const char *p = oa; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return usage_err("note has control characters");
	strcpy(dst, oa);
	return EX_OK;
}

static int
parse_minutes(const char *s, uint32_t max, uint32_t *out)
{
	uint32_t secs;
	char buf[32];

	/* a bare number is minutes here */
	if (strlen(s) < sizeof(buf) - 1 && s[0] != '\0' &&
	    strspn(s, "0123456789") == strlen(s)) {
		snprintf(buf, sizeof(buf), "%sm", s);
		s = buf;
	}
	if (parse_dur_s(s, (uint64_t)max * 60, &secs) != 0 || secs < 60 ||
	    secs % 60 != 0)
		return -1; /* whole minutes: "90s" is refused, not rounded */
	*out = secs / 60;
	return 0;
}

static int
page_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct page_args *pa = arg;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_STATE:
		pa->state = fbx_dstate_parse(oa);
		if (pa->state == 0)
			return usage_err("unknown state '%s'", oa);
		return EX_OK;
	case OPT_LIMIT:
		/* 0 is "no rows": show prints the counts alone; a listing
		 * of nothing is a mistake, not "the default page" */
		if (parse_u64(oa, FBX_PAGE_MAX, &pa->limit) != 0 ||
		    (pa->limit == 0 && strcmp(argv[0], "show") != 0))
			return usage_err("bad --limit '%s' (%d..%d)", oa,
			    strcmp(argv[0], "show") == 0 ? 0 : 1,
			    FBX_PAGE_MAX);
		return EX_OK;
	case OPT_AFTER:
		if (copy_id(pa->after_id, oa) != 0)
			return usage_err("bad --after '%s'", oa);
		if (parse_u64(oa, UINT64_MAX, &pa->after) != 0)
			pa->after = UINT64_MAX; /* only valid as a name */
		return EX_OK;
	case OPT_SINCE:
		if (parse_time(oa, &pa->since) != 0)
			return usage_err("bad --since '%s' (epoch ms or "
					 "-30m, -1h, -7d)",
			    oa);
		return EX_OK;
	case OPT_UNTIL:
		if (parse_time(oa, &pa->until) != 0)
			return usage_err("bad --until '%s' (epoch ms or "
					 "-30m, -1h, -7d)",
			    oa);
		return EX_OK;
	case OPT_STALE:
		if (parse_minutes(oa, FBX_FLEET_STALE_MAX, &pa->stale_minutes) !=
		    0)
			return usage_err("bad --stale '%s' (e.g. 1440m, 24h, "
					 "2d; at least 1m)",
			    oa);
		return EX_OK;
	case OPT_GROUP:
		if (copy_id(pa->group, oa) != 0)
			return usage_err("bad group '%s'", oa);
		if (pa->dev.ngroups >= FBX_GROUPS_MAX)
			return usage_err("at most %d groups per device",
			    FBX_GROUPS_MAX);
		strcpy(pa->dev.groups[pa->dev.ngroups++], oa);
		return EX_OK;
	case OPT_DEVICE:
		if (copy_id(pa->dev.id, oa) != 0)
			return usage_err("bad device id '%s'", oa);
		pa->have_dev = 1;
		return EX_OK;
	case OPT_PLATFORM:
		pa->dev.platform = (uint8_t)fbx_platform_parse(oa);
		if (pa->dev.platform == 0)
			return usage_err("unknown platform '%s'", oa);
		pa->have_platform = 1;
		return EX_OK;
	case OPT_OS:
		if (strlen(oa) > FBX_OSVER_MAX)
			return usage_err("os version over %d bytes",
			    FBX_OSVER_MAX);
		strcpy(pa->dev.os_version, oa);
		return EX_OK;
	case OPT_FILE:
		pa->file = oa;
		return EX_OK;
	default:
		return usage_err("unexpected option");
	}
}

static void
target_str(const struct fbx_command *c, char *buf, size_t len)
{
	switch (c->target_kind) {
	case FBX_TARGET_GROUP:
		snprintf(buf, len, "group:%s", c->group);
		break;
	case FBX_TARGET_DEVICES:
		/* Summaries (list, show) carry no id list. */
		if (c->ndev_ids > 0)
			snprintf(buf, len, "devices:%" PRIu32, c->ndev_ids);
		else
			snprintf(buf, len, "devices");
		break;
	case FBX_TARGET_ORG:
		snprintf(buf, len, "org");
		break;
	default:
		snprintf(buf, len, "%s", fbx_target_kind_name(c->target_kind));
	}
}

static void
history_str(const struct fbx_delivery *d, char *buf, size_t len)
{
	size_t k = 0;

	buf[0] = '\0';
	for (int i = 0; i < d->nhist && i < FBX_HIST_MAX && k < len; i++) {
		char t[40];
		int n;
		time_t s = (time_t)(d->hist[i].at_ms / 1000);
		struct tm tm;
		gmtime_r(&s, &tm);
		snprintf(t, sizeof(t), "%02d:%02d:%02d.%03d", tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)(d->hist[i].at_ms % 1000));
		if (d->hist[i].code != 0)
			n = snprintf(buf + k, len - k, "%s%s(%u)@%s",
			    i ? " " : "", fbx_dstate_name(d->hist[i].state),
			    (unsigned)d->hist[i].code, t);
		else
			n = snprintf(buf + k, len - k, "%s%s@%s", i ? " " : "",
			    fbx_dstate_name(d->hist[i].state), t);
		if (n < 0)
			break;
		k += (size_t)n;
	}
}

/* rollout_rows - a rollout's plan and status as rows of a key/value
 * table. */
static void
rollout_rows(struct table *t, const struct fbx_rollout_plan *p,
    const struct fbx_rollout_status *r)
{
	char b[640];

	plan_str(p, b, sizeof(b));
	table_row(t, "rollout", b);
	table_row(t, "rollout_state", fbx_rollout_state_name(r->state));
	if (p->ngroups > 0) {
		snprintf(b, sizeof(b), "%u of %u (%s)", (unsigned)r->stage + 1,
		    (unsigned)p->ngroups + 1,
		    r->stage < p->ngroups ? p->groups[r->stage]
		                          : "rest of the organisation");
		table_row(t, "rollout_stage", b);
	}
	snprintf(b, sizeof(b), "%" PRIu32 " (deliveries %" PRIu32 "..%" PRIu32
	                       ")",
	    r->wave, r->wave_size ? r->wave_start + 1 : 0,
	    r->wave_start + r->wave_size);
	table_row(t, "rollout_wave", b);
	snprintf(b, sizeof(b), "%" PRIu32, r->released);
	table_row(t, "rollout_released", b);
	if (r->state == FBX_RO_BAKING) {
		char bt[40];
		fmt_time(r->bake_until_ms, bt, sizeof(bt));
		table_row(t, "rollout_bake_until", bt);
	}
	if (r->note[0] != '\0')
		table_row(t, "rollout_note", r->note);
}

static int
cmd_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "state", required_argument, NULL, OPT_STATE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct page_args pa;
	const struct fbx_command *c;
	uint64_t id;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&pa, 0, sizeof(pa));
	pa.limit = 50;
	st = parse_cmd_opts(ctl, argc, argv, lo, show_usage, page_opt, &pa);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("show needs a command id");
	if (parse_u64(argv[st], UINT64_MAX, &id) != 0 || id == 0)
		return usage_err("bad command id '%s'", argv[st]);
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (pa.after == UINT64_MAX)
		return usage_err("bad --after (a delivery id)");
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_GET_COMMAND;
	req.u.get.command_id = id;
	req.u.get.after = pa.after;
	req.u.get.limit = (uint32_t)pa.limit;
	req.u.get.state = pa.state;
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	c = &rep.u.command.info;
	if (ctl->json) {
		json_t *o = json_object(), *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.command.ndlv; i++)
			json_array_append_new(a,
			    ctl_json_delivery(&rep.u.command.dlv[i]));
		if (o != NULL) {
			CJ_SET(o, "command", ctl_json_command(c));
			CJ_SET(o, "deliveries", a);
			a = NULL;
			CJ_INT(o, "next_after", rep.u.command.next_after);
		}
		json_decref(a);
		ctl_json_print(o);
	} else {
		struct table t = { .ncol = 2 };
		struct table d = { .ncol = 7 };
		char b[128], cr[40], ex[40], tg[128];
		char counts[512];
		size_t k = 0;

		fmt_time(c->created_ms, cr, sizeof(cr));
		fmt_time(c->expires_ms, ex, sizeof(ex));
		target_str(c, tg, sizeof(tg));
		snprintf(b, sizeof(b), "%" PRIu64, c->id);
		table_row(&t, "command", b);
		table_row(&t, "org", c->org);
		table_row(&t, "type", fbx_cmd_type_name(c->type));
		table_row(&t, "origin", fbx_origin_name(c->origin));
		table_row(&t, "actor", c->actor);
		table_row(&t, "reason", c->reason[0] ? c->reason : "-");
		table_row(&t, "target", tg);
		table_row(&t, "platform", fbx_platform_name(c->platform));
		table_row(&t, "state", fbx_cstate_name(c->state));
		table_row(&t, "created", cr);
		table_row(&t, "expires", ex);
		snprintf(b, sizeof(b), "%" PRIu32 "s", c->ttl_s);
		table_row(&t, "ttl", b);
		table_row(&t, "idempotency_key", c->idem_key);
		snprintf(b, sizeof(b), "%" PRIu32, c->ndeliveries);
		table_row(&t, "deliveries", b);
		counts[0] = '\0';
		for (int s = 1; s < FBX_D_COUNT && k < sizeof(counts); s++) {
			int n = snprintf(counts + k, sizeof(counts) - k,
			    "%s%s=%" PRIu32, k ? " " : "", fbx_dstate_name(s),
			    c->counts[s]);
			if (n < 0)
				break;
			k += (size_t)n;
		}
		table_row(&t, "counts", counts);
		table_row(&t, "priority", fbx_priority_name(c->priority));
		if (c->settle_until_ms > 0) {
			char su[48];
			fmt_time(c->settle_until_ms, su, sizeof(su));
			table_row(&t, c->state == FBX_C_SETTLING ? "settles_until"
			                                         : "settle_until",
			    su);
		}
		if (c->held_by[0] != '\0')
			table_row(&t, "held_by", c->held_by);
		if (c->approved_by[0] != '\0')
			table_row(&t, "approved_by", c->approved_by);
		if (c->resolved_by[0] != '\0')
			table_row(&t, "resolved_by", c->resolved_by);
		if (c->note[0] != '\0')
			table_row(&t, "note", c->note);
		if (c->rollout.enabled)
			rollout_rows(&t, &c->rollout, &c->ro);
		table_print(&t);
		table_free(&t);
		if (rep.u.command.ndlv > 0) {
			putchar('\n');
			table_row(&d, "DELIVERY", "DEVICE", "STATE", "CODE",
			    "ATTEMPTS", "UPDATED", "HISTORY");
			for (size_t i = 0; i < rep.u.command.ndlv; i++) {
				const struct fbx_delivery *x =
				    &rep.u.command.dlv[i];
				char id_s[24], code[8], att[12], up[40];
				char hist[FBX_HIST_MAX * 40];
				snprintf(id_s, sizeof(id_s), "%" PRIu64, x->id);
				snprintf(code, sizeof(code), "%u",
				    (unsigned)x->code);
				snprintf(att, sizeof(att), "%" PRIu32,
				    x->attempts);
				fmt_time(x->updated_ms, up, sizeof(up));
				history_str(x, hist, sizeof(hist));
				table_row(&d, id_s, x->device,
				    fbx_dstate_name(x->state),
				    x->code ? code : "-", att, up, hist);
			}
			table_print(&d);
			table_free(&d);
		}
		if (rep.u.command.next_after != 0)
			printf("\nmore: fuseboxctl show %" PRIu64
			       " --after %" PRIu64 "\n",
			    id, rep.u.command.next_after);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ------------------------------------------------------------------ */
/* list */

static const char *const list_usage =
    "usage: fuseboxctl list [--since TIME] [--until TIME] [--limit N]\n"
    "                       [--after ID]\n"
    "\n"
    "List the organisation's commands, oldest first.\n"
    "\n"
    "  --since TIME   created at or after TIME (epoch ms, or relative:\n"
    "                 -90s, -30m, -1h, -7d)\n"
    "  --until TIME   created before TIME (default: open)\n"
    "  --limit N      commands per page (default 100, 1..10000)\n"
    "  --after ID     start after command id ID (page cursor)\n";

static int
cmd_list(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct page_args pa;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&pa, 0, sizeof(pa));
	pa.limit = 100;
	st = parse_cmd_opts(ctl, argc, argv, lo, list_usage, page_opt, &pa);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	if (pa.after == UINT64_MAX)
		return usage_err("bad --after (a command id)");
	if (pa.since < 0)
		pa.since = 0;
	if (pa.until != 0 && pa.until < pa.since)
		return usage_err("--until is before --since");
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_LIST_COMMANDS;
	req.u.list.since_ms = pa.since;
	req.u.list.until_ms = pa.until;
	req.u.list.after = pa.after;
	req.u.list.limit = (uint32_t)pa.limit;
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.commands.n; i++)
			json_array_append_new(a,
			    ctl_json_command(&rep.u.commands.cmds[i]));
		ctl_json_print(json_pack("{s:o*,s:I}", "commands", a,
		    "next_after", (json_int_t)rep.u.commands.next_after));
	} else {
		struct table t = { .ncol = 11 };

		table_row(&t, "ID", "CREATED", "TYPE", "ORIGIN", "STATE",
		    "TARGET", "DEVICES", "SUCCEEDED", "FAILED", "PENDING",
		    "ACTOR/REASON");
		for (size_t i = 0; i < rep.u.commands.n; i++) {
			const struct fbx_command *c = &rep.u.commands.cmds[i];
			char id[24], cr[40], tg[128], nd[12], ok[12], ko[12],
			    pe[12], ar[2 * FBX_ID_MAX + 4];
			snprintf(id, sizeof(id), "%" PRIu64, c->id);
			fmt_time(c->created_ms, cr, sizeof(cr));
			target_str(c, tg, sizeof(tg));
			snprintf(nd, sizeof(nd), "%" PRIu32, c->ndeliveries);
			snprintf(ok, sizeof(ok), "%" PRIu32,
			    c->counts[FBX_D_SUCCEEDED]);
			snprintf(ko, sizeof(ko), "%" PRIu32,
			    c->counts[FBX_D_FAILED] + c->counts[FBX_D_EXPIRED]);
			snprintf(pe, sizeof(pe), "%" PRIu32,
			    c->counts[FBX_D_PENDING]);
			snprintf(ar, sizeof(ar), "%s%s%s", c->actor,
			    c->reason[0] ? "/" : "", c->reason);
			table_row(&t, id, cr, fbx_cmd_type_name(c->type),
			    fbx_origin_name(c->origin),
			    fbx_cstate_name(c->state), tg, nd, ok, ko, pe, ar);
		}
		table_print(&t);
		table_free(&t);
		if (rep.u.commands.next_after != 0)
			printf("\nmore: fuseboxctl list --after %" PRIu64 "\n",
			    rep.u.commands.next_after);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ------------------------------------------------------------------ */
/* enroll */

static const char *const enroll_usage =
    "usage: fuseboxctl enroll --device ID --platform P [--os V]\n"
    "                         [--group G]...\n"
    "       fuseboxctl enroll --file CSV\n"
    "\n"
    "Enroll (or update) devices of the organisation.\n"
    "\n"
    "  --device ID     device identifier\n"
    "  --platform P    android, ios, macos, windows, linux, chromeos\n"
    "  --os V          operating system version\n"
    "  --group G       group membership (repeatable, max 8)\n"
    "  --file CSV      lines 'id,platform,os_version,group1;group2'\n"
    "                  ('-' = stdin; '#' comments and a header line 'id,..'\n"
    "                  are skipped); sent in batches of 10000\n";

/* parse_csv_line - fill dev from "id,platform,os,g1;g2". */
static int
parse_csv_line(char *line, struct fbx_device *dev, char *why, size_t wl)
{
	char *f[4] = { NULL, NULL, NULL, NULL };
	int nf = 0;
	char *p = line;

	memset(dev, 0, sizeof(*dev));
	while (nf < 4) {
		f[nf++] = p;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (p != NULL) {
		snprintf(why, wl, "more than 4 fields");
		return -1;
	}
	for (int i = 0; i < nf; i++) {
		char *s = f[i], *e;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == ' ' || e[-1] == '\t' ||
		                    e[-1] == '\r'))
			*--e = '\0';
		f[i] = s;
	}
	if (copy_id(dev->id, f[0]) != 0) {
		snprintf(why, wl, "bad device id '%.80s'", f[0]);
		return -1;
	}
	if (nf < 2 || (dev->platform = (uint8_t)fbx_platform_parse(f[1])) ==
	        0) {
		snprintf(why, wl, "bad platform '%.40s'", nf < 2 ? "" : f[1]);
		return -1;
	}
	if (nf >= 3) {
		if (strlen(f[2]) > FBX_OSVER_MAX) {
			snprintf(why, wl, "os version too long");
			return -1;
		}
		strcpy(dev->os_version, f[2]);
	}
	if (nf >= 4 && f[3][0] != '\0') {
		char *g = f[3], *save = NULL, *tok;
		for (tok = strtok_r(g, ";", &save); tok != NULL;
		    tok = strtok_r(NULL, ";", &save)) {
			if (dev->ngroups >= FBX_GROUPS_MAX) {
				snprintf(why, wl, "more than %d groups",
				    FBX_GROUPS_MAX);
				return -1;
			}
			if (copy_id(dev->groups[dev->ngroups], tok) != 0) {
				snprintf(why, wl, "bad group '%.80s'", tok);
				return -1;
			}
			dev->ngroups++;
		}
	}
	return 0;
}

static int
enroll_batch(struct ctl *ctl, struct fbx_device *devs, size_t n,
    uint64_t *created, uint64_t *updated)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ENROLL;
	req.u.enroll.devs = devs;
	req.u.enroll.n = n;
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	*created += rep.u.enroll.created;
	*updated += rep.u.enroll.updated;
	fbx_console_rep_free(&rep);
	return EX_OK;
}

static int
cmd_enroll(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "os", required_argument, NULL, OPT_OS },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "file", required_argument, NULL, OPT_FILE },
		{ NULL, 0, NULL, 0 } };
	struct page_args pa;
	struct fbx_device *batch = NULL;
	FILE *f = NULL;
	char *line = NULL;
	size_t n = 0, total = 0, lineno = 0;
	uint64_t created = 0, updated = 0;
	int st;

	memset(&pa, 0, sizeof(pa));
	st = parse_cmd_opts(ctl, argc, argv, lo, enroll_usage, page_opt, &pa);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	if ((pa.file != NULL) == (pa.have_dev != 0))
		return usage_err("give either --device with --platform, or "
				 "--file");
	if (pa.have_dev) {
		if (!pa.have_platform)
			return usage_err("--platform is required with "
					 "--device");
		st = enroll_batch(ctl, &pa.dev, 1, &created, &updated);
		goto report;
	}
	if (pa.have_platform || pa.dev.ngroups || pa.dev.os_version[0])
		return usage_err("--platform, --os and --group go with "
				 "--device, not --file");
	f = strcmp(pa.file, "-") == 0 ? stdin : fopen(pa.file, "r");
	if (f == NULL)
		return usage_err("cannot open %s: %s", pa.file,
		    strerror(errno));
	batch = calloc(CTL_ENROLL_BATCH, sizeof(*batch));
	line = malloc(CTL_LINE_MAX);
	if (batch == NULL || line == NULL) {
		st = fail(FBX_ENOMEM, NULL);
		goto out;
	}
	while (fgets(line, CTL_LINE_MAX, f) != NULL) {
		char why[160];
		size_t l = strlen(line);
		char *s = line;

		lineno++;
		if (l == CTL_LINE_MAX - 1 && line[l - 1] != '\n') {
			st = fail(FBX_EINVALID, "%s:%zu: line too long",
			    pa.file, lineno);
			goto out;
		}
		while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			line[--l] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#' || *s == '\0')
			continue;
		if (lineno == 1 && strncmp(s, "id,", 3) == 0)
			continue;
		if (parse_csv_line(s, &batch[n], why, sizeof(why)) != 0) {
			st = fail(FBX_EINVALID, "%s:%zu: %s", pa.file, lineno,
			    why);
			goto out;
		}
		n++;
		total++;
		if (n == CTL_ENROLL_BATCH) {
			st = enroll_batch(ctl, batch, n, &created, &updated);
			if (st != EX_OK)
				goto out;
			n = 0;
		}
	}
	if (ferror(f)) {
		st = fail(FBX_EIO, "reading %s: %s", pa.file, strerror(errno));
		goto out;
	}
	if (total == 0) {
		st = fail(FBX_EINVALID, "%s: no devices", pa.file);
		goto out;
	}
	st = n > 0 ? enroll_batch(ctl, batch, n, &created, &updated) : EX_OK;
report:
	if (st == EX_OK) {
		if (ctl->json)
			ctl_json_print(json_pack("{s:I,s:I}", "created",
			    (json_int_t)created, "updated",
			    (json_int_t)updated));
		else
			printf("created %" PRIu64 ", updated %" PRIu64 "\n",
			    created, updated);
	}
out:
	if (f != NULL && f != stdin)
		fclose(f);
	free(line);
	free(batch);
	return st;
}

/* ------------------------------------------------------------------ */
/* remove, devices, groups, status */

static const char *const remove_usage =
    "usage: fuseboxctl remove ID...\n"
    "\n"
    "Remove devices from the organisation's registry.\n";

static int
no_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	(void)arg;
	(void)ctl;
	(void)c;
	(void)oa;
	(void)argc;
	(void)argv;
	return usage_err("unexpected option");
}

static int
cmd_remove(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct idlist ids = { .max = FBX_TARGET_IDS_MAX };
	uint64_t removed = 0;
	int st;

	st = parse_cmd_opts(ctl, argc, argv, lo, remove_usage, no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("remove needs device ids");
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	for (int i = optind; i < argc; i++) {
		int rc = idlist_add(&ids, argv[i]);
		if (rc != FBX_OK) {
			st = rc == FBX_EINVALID
			    ? usage_err("bad device id '%s'", argv[i])
			    : fail(rc, NULL);
			goto out;
		}
	}
	for (size_t off = 0; off < ids.n; off += CTL_REMOVE_BATCH) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		size_t k = ids.n - off;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_REMOVE;
		req.u.remove.ids = ids.ids + off;
		req.u.remove.n = k > CTL_REMOVE_BATCH ? CTL_REMOVE_BATCH : k;
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			goto out;
		removed += rep.u.remove.removed;
		fbx_console_rep_free(&rep);
	}
	if (ctl->json)
		ctl_json_print(
		    json_pack("{s:I}", "removed", (json_int_t)removed));
	else
		printf("removed %" PRIu64 "\n", removed);
	st = EX_OK;
out:
	free(ids.ids);
	return st;
}

/* fmt_age - a time span in ms as "3d4h", "25h", "40m" */
static void
fmt_age(int64_t ms, char *buf, size_t len)
{
	int64_t m = ms / 60000;

	if (m < 0)
		m = 0;
	if (m >= 7 * 1440)
		snprintf(buf, len, "%lldd", (long long)(m / 1440));
	else if (m >= 2 * 1440)
		snprintf(buf, len, "%lldd%lldh", (long long)(m / 1440),
		    (long long)(m % 1440 / 60));
	else if (m >= 120)
		snprintf(buf, len, "%lldh", (long long)(m / 60));
	else
		snprintf(buf, len, "%lldm", (long long)m);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* fmt_minutes - a whole number of minutes as "2d", "24h" or "90m" */
static void
fmt_minutes(uint32_t m, char *buf, size_t len)
{
	if (m % 1440 == 0)
		snprintf(buf, len, "%" PRIu32 "d", m / 1440);
	else if (m % 60 == 0)
		snprintf(buf, len, "%" PRIu32 "h", m / 60);
	else
		snprintf(buf, len, "%" PRIu32 "m", m);
}

/* print_stale - the stale devices of a `devices --stale` page */
static void
print_stale(const struct fbx_console_rep *rep, uint32_t minutes)
{
	struct table t = { .ncol = 6 };
	int64_t now = now_ms();
	uint64_t pending = 0;
	char dur[24];

	table_row(&t, "DEVICE", "OS", "LAST_CHECKIN", "OFFLINE_FOR", "PENDING",
	    "GROUPS");
	for (size_t i = 0; i < rep->u.devices.n; i++) {
		const struct fbx_device *d = &rep->u.devices.devs[i];
		int64_t since = d->last_checkin_ms > 0 ? d->last_checkin_ms
		                                       : d->enrolled_ms;
		char lc[40], age[24], pend[16], g[FBX_GROUPS_MAX * (FBX_ID_MAX + 1) + 1];
		size_t k = 0;
		g[0] = '\0';
		for (int j = 0; j < d->ngroups && j < FBX_GROUPS_MAX; j++)
			k += (size_t)snprintf(g + k, sizeof(g) - k, "%s%s",
			    j ? "," : "", d->groups[j]);
		if (d->last_checkin_ms > 0)
			fmt_time(d->last_checkin_ms, lc, sizeof(lc));
		else
			snprintf(lc, sizeof(lc), "never");
		fmt_age(now - since, age, sizeof(age));
		snprintf(pend, sizeof(pend), "%" PRIu32, d->pending);
		pending += d->pending;
		table_row(&t, d->id, d->os_version[0] ? d->os_version : "-", lc,
		    age, pend, k ? g : "-");
	}
	table_print(&t);
	table_free(&t);
	fmt_minutes(minutes, dur, sizeof(dur));
	printf("\n%zu devices without a check-in for %s or longer on this "
	       "page (%" PRIu64 " deliveries waiting for them), %" PRIu32
	       " in organisation\n",
	    rep->u.devices.n, dur, pending, rep->u.devices.total);
	if (rep->u.devices.next_after[0] != '\0')
		printf("more: fuseboxctl devices --stale %s --after %s\n", dur,
		    rep->u.devices.next_after);
}

static const char *const devices_usage =
    "usage: fuseboxctl devices [--group G] [--stale DUR] [--limit N]\n"
    "                          [--after ID]\n"
    "\n"
    "List enrolled devices, by id.\n"
    "\n"
    "  --group G     only devices of group G\n"
    "  --stale DUR   only devices without a check-in for DUR or longer\n"
    "                (1440m, 24h, 2d; since enrolment for a device that\n"
    "                never checked in), each with the deliveries waiting\n"
    "                for it (PENDING). A page examines at most 50,000\n"
    "                devices: it may show fewer than --limit and still\n"
    "                say 'more'\n"
    "  --limit N     devices per page (default 100, 1..10000)\n"
    "  --after ID    start after device ID (page cursor)\n";

static int
cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "stale", required_argument, NULL, OPT_STALE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct page_args pa;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&pa, 0, sizeof(pa));
	pa.limit = 100;
	st = parse_cmd_opts(ctl, argc, argv, lo, devices_usage, page_opt, &pa);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	if (pa.dev.ngroups > 1)
		return usage_err("only one --group");
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_LIST_DEVICES;
	strcpy(req.u.list_devices.group, pa.group);
	strcpy(req.u.list_devices.after, pa.after_id);
	req.u.list_devices.limit = (uint32_t)pa.limit;
	req.u.list_devices.stale_minutes = pa.stale_minutes;
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (pa.stale_minutes > 0 && !ctl->json) {
		print_stale(&rep, pa.stale_minutes);
		fbx_console_rep_free(&rep);
		return EX_OK;
	}
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.devices.n; i++)
			json_array_append_new(a,
			    ctl_json_device(&rep.u.devices.devs[i],
				pa.stale_minutes > 0));
		ctl_json_print(json_pack("{s:I,s:o*,s:o*}", "total",
		    (json_int_t)rep.u.devices.total, "devices", a,
		    "next_after", fbx_json_str(rep.u.devices.next_after)));
	} else {
		struct table t = { .ncol = 7 };

		table_row(&t, "DEVICE", "PLATFORM", "OS", "ONLINE", "GROUPS",
		    "LAST_CHECKIN", "ENROLLED");
		for (size_t i = 0; i < rep.u.devices.n; i++) {
			const struct fbx_device *d = &rep.u.devices.devs[i];
			char g[FBX_GROUPS_MAX * (FBX_ID_MAX + 1) + 1];
			char lc[40], en[40];
			size_t k = 0;
			g[0] = '\0';
			for (int j = 0; j < d->ngroups && j < FBX_GROUPS_MAX;
			    j++)
				k += (size_t)snprintf(g + k, sizeof(g) - k,
				    "%s%s", j ? "," : "", d->groups[j]);
			fmt_time(d->last_checkin_ms, lc, sizeof(lc));
			fmt_time(d->enrolled_ms, en, sizeof(en));
			table_row(&t, d->id, fbx_platform_name(d->platform),
			    d->os_version[0] ? d->os_version : "-",
			    d->online ? "yes" : "no", k ? g : "-", lc, en);
		}
		table_print(&t);
		table_free(&t);
		printf("\n%zu shown, %" PRIu32 " in organisation\n",
		    rep.u.devices.n, rep.u.devices.total);
		if (rep.u.devices.next_after[0] != '\0')
			printf("more: fuseboxctl devices --after %s\n",
			    rep.u.devices.next_after);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

static const char *const groups_usage =
    "usage: fuseboxctl groups\n"
    "\n"
    "List the organisation's device groups with their sizes.\n";

static int
cmd_groups(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st;

	memset(&req, 0, sizeof(req));
	st = parse_cmd_opts(ctl, argc, argv, lo, groups_usage, no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_LIST_GROUPS;
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep.u.groups.n; i++)
			json_array_append_new(a,
			    json_pack("{s:o*,s:I}", "name",
				fbx_json_str(rep.u.groups.groups[i].name),
				"count",
				(json_int_t)rep.u.groups.groups[i].count));
		ctl_json_print(json_pack("{s:o*}", "groups", a));
	} else {
		struct table t = { .ncol = 2 };
		table_row(&t, "GROUP", "DEVICES");
		for (size_t i = 0; i < rep.u.groups.n; i++) {
			char n[16];
			snprintf(n, sizeof(n), "%" PRIu32,
			    rep.u.groups.groups[i].count);
			table_row(&t, rep.u.groups.groups[i].name, n);
		}
		table_print(&t);
		table_free(&t);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* certificates (cmd_cert, below): status and breaker status show their
 * days left */
static int cert_fetch(struct ctl *ctl, struct fbx_console_rep *rep);
static void cert_lines(const struct fbx_console_rep *rep, const char *reason);

static const char *const status_usage =
    "usage: fuseboxctl status\n"
    "\n"
    "Ping the engine and print its counters.\n";

static int
cmd_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep, crep;
	const struct fbx_engine_stats *s;
	int64_t t0;
	int st, have_certs;

	memset(&req, 0, sizeof(req));
	st = parse_cmd_opts(ctl, argc, argv, lo, status_usage, no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	req.kind = FBX_CREQ_PING;
	t0 = mono_ms();
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	s = &rep.u.pong;
	/* registered certificates and their days left, when the engine
	 * has them */
	have_certs = cert_fetch(ctl, &crep);
	if (ctl->json) {
		json_t *o = json_object();
		if (o != NULL) {
			CJ_STR(o, "endpoint", ctl->endpoint);
			CJ_STR(o, "version", s->version);
			CJ_INT(o, "rtt_ms", mono_ms() - t0);
			CJ_INT(o, "uptime_ms", s->uptime_ms);
			CJ_INT(o, "gateways", s->gateways);
			CJ_INT(o, "commands_active", s->commands_active);
			CJ_INT(o, "deliveries_queued", s->deliveries_queued);
			CJ_INT(o, "deliveries_inflight",
			    s->deliveries_inflight);
			CJ_INT(o, "deliveries_pending", s->deliveries_pending);
			CJ_INT(o, "commits", s->commits);
			CJ_INT(o, "store_bytes", s->store_bytes);
			CJ_INT(o, "turn_max_us", s->turn_max_us);
			CJ_INT(o, "turns_failed", s->turns_failed);
			CJ_BOOL(o, "degraded", s->degraded);
			CJ_INT(o, "readers_used", s->readers_used);
			CJ_INT(o, "auth_refused", s->auth_refused);
			CJ_INT(o, "results_forged", s->results_forged);
			CJ_INT(o, "handshakes_refused", s->handshakes_refused);
			CJ_SET(o, "certificates",
			    ctl_json_certs(have_certs ? &crep : NULL, ""));
		}
		ctl_json_print(o);
	} else {
		struct table t = { .ncol = 2 };
		char b[64];
#define ROW_U64(name, v)                                                     \
	do {                                                                 \
		snprintf(b, sizeof(b), "%" PRIu64, (uint64_t)(v));            \
		table_row(&t, name, b);                                      \
	} while (0)
		table_row(&t, "endpoint", ctl->endpoint);
		table_row(&t, "version", s->version);
		ROW_U64("rtt_ms", mono_ms() - t0);
		ROW_U64("uptime_s", s->uptime_ms / 1000);
		ROW_U64("gateways", s->gateways);
		ROW_U64("commands_active", s->commands_active);
		ROW_U64("deliveries_queued", s->deliveries_queued);
		ROW_U64("deliveries_inflight", s->deliveries_inflight);
		ROW_U64("deliveries_pending", s->deliveries_pending);
		ROW_U64("commits", s->commits);
		ROW_U64("store_bytes", s->store_bytes);
		ROW_U64("turn_max_ms", s->turn_max_us / 1000);
		ROW_U64("turns_failed", s->turns_failed);
		table_row(&t, "degraded",
		    s->degraded ? "yes: writes fail, reads are served" : "no");
		ROW_U64("readers_used", s->readers_used);
		ROW_U64("auth_refused", s->auth_refused);
		ROW_U64("results_forged", s->results_forged);
		ROW_U64("handshakes_refused", s->handshakes_refused);
#undef ROW_U64
		table_print(&t);
		table_free(&t);
		if (have_certs)
			cert_lines(&crep, "");
	}
	if (have_certs)
		fbx_console_rep_free(&crep);
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ------------------------------------------------------------------ */
/* safety controls: breaker, held, limit, rate, approve, rollout */

struct ctrl_args {
	fbx_id reason;
	char note[FBX_NOTE_MAX];
	int have_note;
	int global;
	int on_reset; /* enum fbx_reset_action */
	struct fbx_breaker_cfg cfg;
	int have_cfg;
	int type;
	int have_max, have_share, have_window;
	uint32_t max, share_ppm, window_s;
	int have_rate, have_burst, have_inflight;
	uint32_t rate, burst, inflight;
	uint64_t limit, after;
	int64_t since;
	int origin;
	fbx_id prefix;
	uint64_t count;
	int all_orgs;
};

static int
ctrl_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct ctrl_args *a = arg;
	uint64_t v;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_REASON:
		if (copy_id(a->reason, oa) != 0)
			return usage_err("bad reason '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		return EX_OK;
	case OPT_NOTE:
		if (copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		a->have_note = 1;
		return EX_OK;
	case OPT_GLOBAL:
		a->global = 1;
		return EX_OK;
	case OPT_RELEASE:
	case OPT_DISCARD:
		if (a->on_reset != FBX_RESET_NONE)
			return usage_err("give --release or --discard, once");
		a->on_reset = c == OPT_RELEASE ? FBX_RESET_RELEASE
		                               : FBX_RESET_DISCARD;
		return EX_OK;
	case OPT_WINDOW:
		if (parse_u64(oa, 30u * 86400, &v) != 0 || v == 0)
			return usage_err("bad --window '%s' (seconds > 0)", oa);
		a->cfg.window_s = a->window_s = (uint32_t)v;
		a->have_cfg = a->have_window = 1;
		return EX_OK;
	case OPT_MIN:
		if (parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return usage_err("bad --min '%s' (devices > 0)", oa);
		a->cfg.min_count = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_SHARE:
		if (parse_pct(oa, &a->share_ppm) != 0)
			return usage_err("bad --share '%s' (percent, e.g. 2 "
					 "or 0.5)",
			    oa);
		a->cfg.share_ppm = a->share_ppm;
		a->have_share = a->have_cfg = 1;
		return EX_OK;
	case OPT_BASELINE_MULT:
		if (parse_u64(oa, 1000000, &v) != 0 || v == 0)
			return usage_err("bad --baseline-mult '%s' (> 0)", oa);
		a->cfg.baseline_mult = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_GLOBAL_ORGS:
		if (parse_u64(oa, 100000, &v) != 0 || v == 0)
			return usage_err("bad --global-orgs '%s' (> 0)", oa);
		a->cfg.global_orgs = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_SETTLE:
		if (parse_u64(oa, 86400, &v) != 0)
			return usage_err("bad --settle '%s' (seconds, 0 = off, "
					 "at most 86400)",
			    oa);
		a->cfg.settle_s = (uint32_t)v;
		a->cfg.settle_set = 1;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_MIN_SAMPLES:
		if (parse_u64(oa, UINT32_MAX, &v) != 0 || v == 0)
			return usage_err("bad --min-samples '%s' (devices > 0)",
			    oa);
		a->cfg.min_samples = (uint32_t)v;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_GLOBAL_SHARE: {
		uint32_t ppm;
		if (parse_pct(oa, &ppm) != 0 || ppm == 0)
			return usage_err("bad --global-share '%s' (percent > 0, "
					 "e.g. 1 or 0.1)",
			    oa);
		a->cfg.global_share_ppm = ppm;
		a->have_cfg = 1;
		return EX_OK;
	}
	case OPT_SHADOW:
	case OPT_ENFORCE:
		if (a->cfg.shadow != 0)
			return usage_err("give --shadow or --enforce, once");
		a->cfg.shadow = c == OPT_SHADOW ? 1 : 2;
		a->have_cfg = 1;
		return EX_OK;
	case OPT_TYPE: {
		char t[64];
		snprintf(t, sizeof(t), "%s", oa);
		for (char *p = t; *p; p++)
			if (*p == '-')
				*p = '_';
		a->type = fbx_cmd_type_parse(t);
		if (a->type == 0)
			return usage_err("unknown command type '%s'", oa);
		return EX_OK;
	}
	case OPT_MAX:
		if (parse_u64(oa, UINT32_MAX, &v) != 0)
			return usage_err("bad --max '%s' (devices, 0 = none)",
			    oa);
		a->max = (uint32_t)v;
		a->have_max = 1;
		return EX_OK;
	case OPT_RATE:
		if (parse_u64(oa, UINT32_MAX, &v) != 0)
			return usage_err("bad --rate '%s' (per second, 0 = "
					 "unlimited)",
			    oa);
		a->rate = (uint32_t)v;
		a->have_rate = 1;
		return EX_OK;
	case OPT_BURST:
		if (parse_u64(oa, UINT32_MAX, &v) != 0)
			return usage_err("bad --burst '%s'", oa);
		a->burst = (uint32_t)v;
		a->have_burst = 1;
		return EX_OK;
	case OPT_MAX_INFLIGHT:
		if (parse_u64(oa, UINT32_MAX, &v) != 0)
			return usage_err("bad --max-inflight '%s' (0 = "
					 "unlimited)",
			    oa);
		a->inflight = (uint32_t)v;
		a->have_inflight = 1;
		return EX_OK;
	case OPT_LIMIT:
		if (parse_u64(oa, FBX_PAGE_MAX, &a->limit) != 0 || a->limit == 0)
			return usage_err("bad --limit '%s' (1..%d)", oa,
			    FBX_PAGE_MAX);
		return EX_OK;
	case OPT_AFTER:
		if (parse_u64(oa, UINT64_MAX, &a->after) != 0)
			return usage_err("bad --after '%s' (a command id)", oa);
		return EX_OK;
	case OPT_SINCE:
		if (parse_time(oa, &a->since) != 0)
			return usage_err("bad --since '%s' (epoch ms or "
					 "-30m, -1h, -7d)",
			    oa);
		return EX_OK;
	case OPT_ORIGIN:
		a->origin = fbx_origin_parse(oa);
		if (a->origin == 0)
			return usage_err("unknown origin '%s'", oa);
		return EX_OK;
	case OPT_ORGS_PREFIX:
		if (strlen(oa) > FBX_ID_MAX - 6 ||
		    (oa[0] != '\0' && copy_id(a->prefix, oa) != 0))
			return usage_err("bad --orgs-prefix '%s'", oa);
		if (oa[0] == '\0')
			a->prefix[0] = '\0';
		return EX_OK;
	case OPT_COUNT:
		if (parse_u64(oa, 100000, &a->count) != 0 || a->count == 0)
			return usage_err("bad --count '%s' (1..100000)", oa);
		return EX_OK;
	case OPT_ALL_ORGS:
		a->all_orgs = 1;
		return EX_OK;
	default:
		return usage_err("unexpected option");
	}
}

/* ---- breaker ---- */

static const char *const breaker_usage =
    "usage: fuseboxctl breaker status [--reason R] [--all-orgs]\n"
    "       fuseboxctl breaker trip --reason R [--global] --note TEXT\n"
    "       fuseboxctl breaker reset --reason R [--global]\n"
    "                                (--release|--discard) --note TEXT\n"
    "       fuseboxctl breaker config --reason R [--global] [--window S]\n"
    "                                [--min N] [--share PCT]\n"
    "                                [--baseline-mult X] [--min-samples N]\n"
    "                                [--global-orgs N] [--global-share PCT]\n"
    "                                [--settle S] [--shadow|--enforce]\n"
    "\n"
    "Circuit breakers on automatic lock-type commands (lock, wipe, lost\n"
    "mode, clear passcode), one per organisation and reason plus a global\n"
    "one per reason (org '*'). An open breaker holds what it stops: held\n"
    "commands are durable and wait for an operator's reset. An automatic\n"
    "lock-type command first settles (30 s by default): it is journaled\n"
    "and counted but not sent, and a breaker that trips meanwhile holds\n"
    "it, so a storm trips its breakers before any of it reaches a device.\n"
    "\n"
    "  status        the organisation's breakers and the global ones;\n"
    "                --all-orgs: every organisation's breakers that are\n"
    "                open, hold commands or have tripped, and the global\n"
    "                ones once\n"
    "  trip          open a breaker by hand\n"
    "  reset         close it: --release sends the held commands on in\n"
    "                staged waves (10 now, then twice as many as the wave\n"
    "                before every 10 s; through the blast-radius limits),\n"
    "                --discard records them as discarded\n"
    "  config        change settings (unset flags keep their value):\n"
    "    --window S        sliding window in seconds (default 600)\n"
    "    --share PCT       allowance per window: PCT of the fleet\n"
    "                      (default 1)\n"
    "    --min N           but at least N devices (default 1)\n"
    "    --baseline-mult X raised to X times the usual rate (default 10)\n"
    "    --min-samples N   once the usual rate has seen N devices\n"
    "                      (default 100)\n"
    "    --global-orgs N   global: open when N organisations trip\n"
    "                      together (default 3)\n"
    "    --global-share PCT global: or when the reason passes PCT of\n"
    "                      every enrolled device (default 1)\n"
    "    --settle S        settle delay of the reason's automatic\n"
    "                      lock-type commands (set on the global breaker;\n"
    "                      default 30, 0 = off)\n"
    "    --shadow          evaluate and alert, never hold\n"
    "    --enforce         hold (leave shadow mode)\n"
    "  --global      act on the global breaker of the reason\n"
    "  --note TEXT   why (required to trip and reset; kept in the record)\n"
    "\n"
    "Columns: ORG (* = global), IN_WINDOW/ALLOWANCE devices admitted in\n"
    "the window against what it admits before tripping (global: tripped\n"
    "organisations against --global-orgs), HELD commands held now,\n"
    "SETTLING commands in their settle window, WOULD_HOLD commands a\n"
    "shadow breaker would have held, ONSET when the last incident began\n"
    "(the reason's rate left its usual level; incident rollbacks start\n"
    "there).\n";

static void
print_breakers(const struct fbx_breaker_info *v, size_t n)
{
	struct table t = { .ncol = 14 };

	table_row(&t, "ORG", "REASON", "STATE", "MANUAL", "IN_WINDOW/ALLOWANCE",
	    "BASELINE", "HELD", "SETTLING", "WOULD_HOLD", "TRIPS", "TRIPPED_AT",
	    "ONSET", "BY", "NOTE");
	for (size_t i = 0; i < n; i++) {
		const struct fbx_breaker_info *b = &v[i];
		char st[32], win[64], base[24], held[24], wh[24], trips[24];
		char at[40], share[16], stl[24], onset[40];
		int global = strcmp(b->org, "*") == 0;

		snprintf(st, sizeof(st), "%s%s",
		    b->state == FBX_BS_OPEN ? "OPEN" : "closed",
		    b->cfg.shadow ? " (shadow)" : "");
		pct_str(b->cfg.share_ppm, share, sizeof(share));
		if (global)
			snprintf(win, sizeof(win),
			    "%" PRIu64 "/%" PRIu32 " orgs per %" PRIu32 "s",
			    b->window_count, b->cfg.global_orgs,
			    b->cfg.window_s);
		else
			snprintf(win, sizeof(win),
			    "%" PRIu64 "/%" PRIu32 " per %" PRIu32 "s",
			    b->window_count, b->allowance, b->cfg.window_s);
		snprintf(base, sizeof(base), "%" PRIu64, b->baseline);
		snprintf(held, sizeof(held), "%" PRIu64, b->held);
		snprintf(wh, sizeof(wh), "%" PRIu64, b->would_hold);
		snprintf(trips, sizeof(trips), "%" PRIu64, b->trips);
		snprintf(stl, sizeof(stl), "%" PRIu64, b->settling);
		fmt_time(b->tripped_ms, at, sizeof(at));
		fmt_time(b->onset_ms, onset, sizeof(onset));
		table_row(&t, b->org, b->reason, st, b->manual ? "yes" : "no",
		    win, global ? "-" : base, held, stl, wh, trips, at, onset,
		    b->tripped_by[0] ? b->tripped_by : "-",
		    b->note[0] ? b->note : "-");
	}
	table_print(&t);
	table_free(&t);
}

/* breaker_status_all - every organisation's breakers worth a look (open,
 * holding, or tripped before) and the global ones once. */
static int
breaker_status_all(struct ctl *ctl, const struct ctrl_args *a)
{
	struct orglist ol;
	struct fbx_breaker_info *v = NULL;
	size_t n = 0, cap = 0, open = 0, orgs_shown = 0;
	uint64_t held = 0;
	char saved[FBX_ID_MAX + 1], last[FBX_ID_MAX + 1] = "";
	size_t nglobal = 0;
	int st, have_global = 0;

	strcpy(saved, ctl->org);
	st = list_orgs(ctl, &ol);
	if (st != EX_OK)
		return st;
	for (size_t i = 0; i < ol.n && st == EX_OK; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_BREAKER;
		req.u.breaker.op = FBX_BRK_STATUS;
		strcpy(req.u.breaker.reason, a->reason);
		strcpy(ctl->org, ol.orgs[i]);
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			break;
		for (size_t k = 0; k < rep.u.breaker.n; k++) {
			const struct fbx_breaker_info *b = &rep.u.breaker.b[k];
			int global = strcmp(b->org, "*") == 0;
			if (global ? have_global
			           : !(b->state == FBX_BS_OPEN || b->held > 0 ||
			                 b->trips > 0))
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct fbx_breaker_info *p =
				    realloc(v, ncap * sizeof(*p));
				if (p == NULL) {
					st = fail(FBX_ENOMEM, NULL);
					break;
				}
				v = p;
				cap = ncap;
			}
			v[n++] = *b;
			if (global)
				nglobal++;
			if (!global) {
				open += b->state == FBX_BS_OPEN;
				held += b->held;
				if (strcmp(last, b->org) != 0) {
					orgs_shown++;
					strcpy(last, b->org);
				}
			}
		}
		/* the global breakers come with every reply: keep the first */
		for (size_t k = 0; k < rep.u.breaker.n; k++)
			if (strcmp(rep.u.breaker.b[k].org, "*") == 0)
				have_global = 1;
		fbx_console_rep_free(&rep);
	}
	strcpy(ctl->org, saved);
	if (st == EX_OK && nglobal > 0) {
		/* organisations first, then the global breakers */
		struct fbx_breaker_info *w = malloc(n * sizeof(*w));
		size_t k = 0;
		if (w == NULL) {
			st = fail(FBX_ENOMEM, NULL);
		} else {
			for (int pass = 0; pass < 2; pass++)
				for (size_t i = 0; i < n; i++)
					if ((strcmp(v[i].org, "*") == 0) == pass)
						w[k++] = v[i];
			free(v);
			v = w;
		}
	}
	if (st == EX_OK) {
		struct fbx_console_rep crep;
		int have_certs = cert_fetch(ctl, &crep);
		if (ctl->json) {
			json_t *o = json_object(), *b = json_array();
			for (size_t i = 0; b != NULL && i < n; i++)
				json_array_append_new(b,
				    ctl_json_breaker(&v[i]));
			if (o != NULL) {
				CJ_STR(o, "operation", "status");
				CJ_INT(o, "organisations", ol.n);
				CJ_SET(o, "breakers", b);
				b = NULL;
				if (have_certs)
					CJ_SET(o, "certificates",
					    ctl_json_certs(&crep, a->reason));
			}
			json_decref(b);
			ctl_json_print(o);
		} else {
			if (n > 0)
				print_breakers(v, n);
			printf("%s%zu of %zu organisations have breakers that "
			       "tripped or hold commands: %zu open, %" PRIu64
			       " commands held (global breakers not counted)\n",
			    n ? "\n" : "", orgs_shown, ol.n, open, held);
			if (have_certs)
				cert_lines(&crep, a->reason);
		}
		if (have_certs)
			fbx_console_rep_free(&crep);
	}
	free(v);
	orglist_free(&ol);
	return st;
}

static int
cmd_breaker(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "release", no_argument, NULL, OPT_RELEASE },
		{ "discard", no_argument, NULL, OPT_DISCARD },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "min", required_argument, NULL, OPT_MIN },
		{ "share", required_argument, NULL, OPT_SHARE },
		{ "baseline-mult", required_argument, NULL, OPT_BASELINE_MULT },
		{ "global-orgs", required_argument, NULL, OPT_GLOBAL_ORGS },
		{ "settle", required_argument, NULL, OPT_SETTLE },
		{ "min-samples", required_argument, NULL, OPT_MIN_SAMPLES },
		{ "global-share", required_argument, NULL, OPT_GLOBAL_SHARE },
		{ "shadow", no_argument, NULL, OPT_SHADOW },
		{ "enforce", no_argument, NULL, OPT_ENFORCE },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep, crep;
	struct ctrl_args a;
	const char *sub;
	int st, op, have_certs;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, breaker_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("breaker needs status, trip, reset or config "
				 "(see breaker --help)");
	sub = argv[st];
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (strcmp(sub, "status") == 0)
		op = FBX_BRK_STATUS;
	else if (strcmp(sub, "trip") == 0)
		op = FBX_BRK_TRIP;
	else if (strcmp(sub, "reset") == 0)
		op = FBX_BRK_RESET;
	else if (strcmp(sub, "config") == 0 || strcmp(sub, "configure") == 0)
		op = FBX_BRK_CONFIGURE;
	else
		return usage_err("unknown breaker operation '%s' (status, "
				 "trip, reset, config)",
		    sub);
	if (a.all_orgs && op != FBX_BRK_STATUS)
		return usage_err("--all-orgs goes with breaker status");
	if (a.all_orgs) {
		if (a.global || a.have_note || a.have_cfg ||
		    a.on_reset != FBX_RESET_NONE)
			return usage_err("breaker status takes --reason and "
					 "--all-orgs only");
		return breaker_status_all(ctl, &a);
	}
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	if (op != FBX_BRK_STATUS && a.reason[0] == '\0')
		return usage_err("breaker %s needs --reason", sub);
	if ((op == FBX_BRK_TRIP || op == FBX_BRK_RESET) && !a.have_note)
		return usage_err("breaker %s needs --note (why; it is "
				 "recorded)",
		    sub);
	if (op == FBX_BRK_RESET && a.on_reset == FBX_RESET_NONE)
		return usage_err("breaker reset needs --release (send the held "
				 "commands on) or --discard");
	if (op != FBX_BRK_RESET && a.on_reset != FBX_RESET_NONE)
		return usage_err("--release and --discard go with reset");
	if (op != FBX_BRK_CONFIGURE && a.have_cfg)
		return usage_err("--window, --min, --share, --baseline-mult, "
				 "--min-samples, --global-orgs, --global-share, "
				 "--settle, --shadow and --enforce go with "
				 "config");
	if (op == FBX_BRK_CONFIGURE && !a.have_cfg)
		return usage_err("breaker config: nothing to change");
	if (op == FBX_BRK_STATUS && (a.global || a.have_note))
		return usage_err("status shows the organisation's and the "
				 "global breakers; no --global or --note");
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = op;
	req.u.breaker.global = a.global;
	strcpy(req.u.breaker.reason, a.reason);
	req.u.breaker.on_reset = a.on_reset;
	strcpy(req.u.breaker.note, a.note);
	if (op == FBX_BRK_CONFIGURE)
		req.u.breaker.cfg = a.cfg;
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	have_certs = op == FBX_BRK_STATUS && cert_fetch(ctl, &crep);
	if (ctl->json) {
		json_t *o = json_object(), *b = json_array();
		for (size_t i = 0; b != NULL && i < rep.u.breaker.n; i++)
			json_array_append_new(b,
			    ctl_json_breaker(&rep.u.breaker.b[i]));
		if (o != NULL) {
			CJ_STR(o, "operation", sub);
			if (op == FBX_BRK_RESET) {
				CJ_INT(o, "released", rep.u.breaker.released);
				CJ_INT(o, "discarded",
				    rep.u.breaker.discarded);
			}
			CJ_SET(o, "breakers", b);
			b = NULL;
			if (have_certs)
				CJ_SET(o, "certificates",
				    ctl_json_certs(&crep, a.reason));
		}
		json_decref(b);
		ctl_json_print(o);
	} else {
		if (op == FBX_BRK_RESET && a.on_reset == FBX_RESET_RELEASE)
			printf("breaker %s/%s reset: %" PRIu32
			       " held commands released, %" PRIu32
			       " discarded (refused by the blast-radius "
			       "limits)\n\n",
			    a.global ? "*" : ctl->org, a.reason,
			    rep.u.breaker.released, rep.u.breaker.discarded);
		else if (op == FBX_BRK_RESET)
			printf("breaker %s/%s reset: %" PRIu32
			       " held commands released, %" PRIu32
			       " discarded\n\n",
			    a.global ? "*" : ctl->org, a.reason,
			    rep.u.breaker.released, rep.u.breaker.discarded);
		if (rep.u.breaker.n == 0)
			printf("no breaker recorded for %s%s%s (all closed, "
			       "default settings)\n",
			    ctl->org, a.reason[0] ? " reason " : "",
			    a.reason);
		else
			print_breakers(rep.u.breaker.b, rep.u.breaker.n);
		if (have_certs)
			cert_lines(&crep, a.reason);
	}
	if (have_certs)
		fbx_console_rep_free(&crep);
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- held ---- */

static const char *const held_usage =
    "usage: fuseboxctl held [--reason R] [--limit N] [--after ID]\n"
    "\n"
    "Commands of the organisation held by an open breaker, oldest first,\n"
    "with the total held. 'breaker reset' releases or discards them.\n"
    "\n"
    "  --reason R    only commands of reason R\n"
    "  --limit N     rows to print (default 100)\n"
    "  --after ID    start after command id ID\n";

static int
cmd_held(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ NULL, 0, NULL, 0 } };
	struct ctrl_args a;
	struct table t = { .ncol = 7 };
	uint64_t after, total = 0, shown = 0;
	json_t *held = NULL;
	int st;

	memset(&a, 0, sizeof(a));
	a.limit = 100;
	st = parse_cmd_opts(ctl, argc, argv, lo, held_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	if (ctl->json) {
		if ((held = json_array()) == NULL)
			return fail(FBX_ENOMEM, NULL);
	} else {
		table_row(&t, "ID", "CREATED", "TYPE", "ORIGIN", "REASON",
		    "HELD_BY", "NOTE");
	}
	/* Page through all of them for the total; print the first N. */
	after = a.after;
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_HELD;
		strcpy(req.u.list_held.reason, a.reason);
		req.u.list_held.after = after;
		req.u.list_held.limit = 1000;
		st = call(ctl, &req, &rep);
		if (st != EX_OK) {
			table_free(&t);
			/* the error line says it: no partial object */
			json_decref(held);
			return st;
		}
		for (size_t i = 0; i < rep.u.commands.n; i++) {
			const struct fbx_command *c = &rep.u.commands.cmds[i];
			total++;
			if (shown >= a.limit)
				continue;
			shown++;
			if (ctl->json) {
				json_array_append_new(held,
				    ctl_json_command(c));
			} else {
				char id[24], cr[40];
				snprintf(id, sizeof(id), "%" PRIu64, c->id);
				fmt_time(c->created_ms, cr, sizeof(cr));
				table_row(&t, id, cr, fbx_cmd_type_name(c->type),
				    fbx_origin_name(c->origin),
				    c->reason[0] ? c->reason : "-",
				    c->held_by[0] ? c->held_by : "-",
				    c->note[0] ? c->note : "-");
			}
		}
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			break;
	}
	if (ctl->json) {
		ctl_json_print(json_pack("{s:o,s:I,s:I}", "held", held,
		    "shown", (json_int_t)shown, "total", (json_int_t)total));
	} else {
		if (shown > 0)
			table_print(&t);
		printf("%s%" PRIu64 " shown, %" PRIu64 " held%s%s\n",
		    shown > 0 ? "\n" : "", shown, total,
		    a.reason[0] ? " for reason " : "", a.reason);
	}
	table_free(&t);
	return EX_OK;
}

/* ---- limit ---- */

static const char *const limit_usage =
    "usage: fuseboxctl limit list [--global]\n"
    "       fuseboxctl limit set --type T [--global] [--max N]\n"
    "                            [--share PCT] [--window S]\n"
    "\n"
    "Blast-radius limits: devices one command type may reach in an\n"
    "organisation per window. A command over the limit is refused with an\n"
    "approval token; a second operator approves it ('fuseboxctl approve').\n"
    "\n"
    "  list          limits in force for the organisation (SCOPE * = the\n"
    "                global default), with the devices used in the window\n"
    "  set           set the organisation's limit for type T (--global:\n"
    "                the default of every organisation); unset flags keep\n"
    "                the value now in force, 0 = no limit:\n"
    "    --max N       devices per window\n"
    "    --share PCT   share of the organisation's fleet per window\n"
    "    --window S    window in seconds (default 3600)\n";

static void
print_limits(const struct ctl *ctl, const struct fbx_console_rep *rep,
    int global)
{
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < rep->u.limit.n; i++) {
			const struct fbx_limit_info *l = &rep->u.limit.l[i];
			json_array_append_new(a,
			    json_pack("{s:o*,s:o*,s:I,s:I,s:I,s:I}", "type",
				fbx_json_str(fbx_cmd_type_name(l->type)),
				"scope", fbx_json_str(global ? "*" : l->org),
				"max_count", (json_int_t)l->max_count,
				"max_share_ppm", (json_int_t)l->max_share_ppm,
				"window_s", (json_int_t)l->window_s, "used",
				(json_int_t)l->used));
		}
		ctl_json_print(json_pack("{s:o*}", "limits", a));
	} else {
		struct table t = { .ncol = 6 };
		table_row(&t, "TYPE", "SCOPE", "MAX", "SHARE", "WINDOW", "USED");
		for (size_t i = 0; i < rep->u.limit.n; i++) {
			const struct fbx_limit_info *l = &rep->u.limit.l[i];
			char mx[16], sh[16], wi[16], us[24];
			snprintf(mx, sizeof(mx), "%" PRIu32, l->max_count);
			pct_str(l->max_share_ppm, sh, sizeof(sh));
			snprintf(wi, sizeof(wi), "%" PRIu32 "s", l->window_s);
			snprintf(us, sizeof(us), "%" PRIu64, l->used);
			table_row(&t, fbx_cmd_type_name(l->type),
			    global ? "*" : l->org, l->max_count ? mx : "-",
			    l->max_share_ppm ? sh : "-", wi,
			    global ? "-" : us);
		}
		table_print(&t);
		table_free(&t);
	}
}

static int
cmd_limit(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "max", required_argument, NULL, OPT_MAX },
		{ "share", required_argument, NULL, OPT_SHARE },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	int st, set;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, limit_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("limit needs list or set (see limit --help)");
	if (strcmp(argv[st], "list") == 0)
		set = 0;
	else if (strcmp(argv[st], "set") == 0)
		set = 1;
	else
		return usage_err("unknown limit operation '%s' (list, set)",
		    argv[st]);
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (!a.global && (st = need_org(ctl)) != EX_OK)
		return st;
	if (!set && (a.type || a.have_max || a.have_share || a.have_window))
		return usage_err("--type, --max, --share and --window go with "
				 "set");
	if (set && a.type == 0)
		return usage_err("limit set needs --type");
	if (set && !a.have_max && !a.have_share && !a.have_window)
		return usage_err("limit set: give --max, --share or --window");
	req.kind = FBX_CREQ_LIMIT;
	req.u.limit.global = a.global;
	if (set) {
		/* The engine replaces the whole limit: start from the one in
		 * force, so an unset flag keeps its value. */
		struct fbx_limit_info cur;
		memset(&cur, 0, sizeof(cur));
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < rep.u.limit.n; i++)
			if (rep.u.limit.l[i].type == a.type)
				cur = rep.u.limit.l[i];
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIMIT;
		req.u.limit.global = a.global;
		req.u.limit.set = 1;
		req.u.limit.lim.type = (uint8_t)a.type;
		req.u.limit.lim.max_count = a.have_max ? a.max : cur.max_count;
		req.u.limit.lim.max_share_ppm =
		    a.have_share ? a.share_ppm : cur.max_share_ppm;
		req.u.limit.lim.window_s =
		    a.have_window ? a.window_s : cur.window_s;
	}
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (set && !ctl->json)
		printf("limit for %s set (%s)\n\n", fbx_cmd_type_name(a.type),
		    a.global ? "every organisation, '*'" : ctl->org);
	print_limits(ctl, &rep, a.global);
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- rate ---- */

static const char *const rate_usage =
    "usage: fuseboxctl rate show\n"
    "       fuseboxctl rate set [--global] [--rate N] [--burst N]\n"
    "                           [--max-inflight N]\n"
    "\n"
    "Dispatch caps of the organisation (and the global cap, scope '*'):\n"
    "deliveries per second, bucket size, deliveries unanswered. Unset\n"
    "flags keep the value in force; 0 = unlimited.\n";

static int
cmd_rate(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "burst", required_argument, NULL, OPT_BURST },
		{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	int st, set;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, rate_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("rate needs show or set (see rate --help)");
	if (strcmp(argv[st], "show") == 0)
		set = 0;
	else if (strcmp(argv[st], "set") == 0)
		set = 1;
	else
		return usage_err("unknown rate operation '%s' (show, set)",
		    argv[st]);
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (!a.global && (st = need_org(ctl)) != EX_OK)
		return st;
	if (!set && (a.global || a.have_rate || a.have_burst ||
	                a.have_inflight))
		return usage_err("--global, --rate, --burst and "
				 "--max-inflight go with set");
	if (set && !a.have_rate && !a.have_burst && !a.have_inflight)
		return usage_err("rate set: give --rate, --burst or "
				 "--max-inflight");
	req.kind = FBX_CREQ_RATE;
	if (set) {
		/* the engine replaces all three caps: keep unset ones */
		struct fbx_rate_info cur;
		memset(&cur, 0, sizeof(cur));
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < rep.u.rate.n; i++) {
			int g = strcmp(rep.u.rate.r[i].org, "*") == 0;
			if (g == (a.global != 0))
				cur = rep.u.rate.r[i];
		}
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_RATE;
		req.u.rate.set = 1;
		req.u.rate.global = a.global;
		req.u.rate.rate.rate_per_s = a.have_rate ? a.rate : cur.rate_per_s;
		req.u.rate.rate.burst = a.have_burst ? a.burst : cur.burst;
		req.u.rate.rate.max_inflight =
		    a.have_inflight ? a.inflight : cur.max_inflight;
	}
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		json_t *ra = json_array();
		for (size_t i = 0; ra != NULL && i < rep.u.rate.n; i++) {
			const struct fbx_rate_info *r = &rep.u.rate.r[i];
			json_array_append_new(ra,
			    json_pack("{s:o*,s:I,s:I,s:I,s:I}", "scope",
				fbx_json_str(r->org), "rate_per_s",
				(json_int_t)r->rate_per_s, "burst",
				(json_int_t)r->burst, "max_inflight",
				(json_int_t)r->max_inflight, "inflight",
				(json_int_t)r->inflight));
		}
		ctl_json_print(json_pack("{s:o*}", "rates", ra));
	} else {
		struct table t = { .ncol = 5 };
		table_row(&t, "SCOPE", "RATE/S", "BURST", "MAX_INFLIGHT",
		    "INFLIGHT");
		for (size_t i = 0; i < rep.u.rate.n; i++) {
			const struct fbx_rate_info *r = &rep.u.rate.r[i];
			char ra[16], bu[16], mi[16], in[16];
			snprintf(ra, sizeof(ra), "%" PRIu32, r->rate_per_s);
			snprintf(bu, sizeof(bu), "%" PRIu32, r->burst);
			snprintf(mi, sizeof(mi), "%" PRIu32, r->max_inflight);
			snprintf(in, sizeof(in), "%" PRIu32, r->inflight);
			table_row(&t, r->org,
			    r->rate_per_s ? ra : "unlimited",
			    r->burst ? bu : (r->rate_per_s ? "=rate" : "-"),
			    r->max_inflight ? mi : "unlimited", in);
		}
		table_print(&t);
		table_free(&t);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- approve ---- */

static const char *const approve_usage =
    "usage: fuseboxctl approve TOKEN [--note TEXT]\n"
    "\n"
    "Approve, as a second operator, a command the blast-radius limit\n"
    "refused. TOKEN is printed with the refusal ('approval token: ...').\n"
    "The submitter then submits the same command again with\n"
    "--approval TOKEN before the approval expires. The approver must not\n"
    "be the submitter (-a NAME or $FUSEBOX_ACTOR names the operator).\n";

static int
cmd_approve(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	int st;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, approve_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("approve needs the approval token");
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (copy_id(req.u.approve.token, argv[st]) != 0)
		return usage_err("bad approval token '%s'", argv[st]);
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_APPROVE;
	strcpy(req.u.approve.note, a.note);
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		ctl_json_print(json_pack("{s:o*,s:o*,s:o*,s:I}", "token",
		    fbx_json_str(rep.u.approve.token), "approver",
		    fbx_json_str(rep.u.approve.approver), "submitter",
		    fbx_json_str(rep.u.approve.submitter), "expires_ms",
		    (json_int_t)rep.u.approve.expires_ms));
	} else {
		struct table t = { .ncol = 2 };
		char ex[40];
		fmt_time(rep.u.approve.expires_ms, ex, sizeof(ex));
		table_row(&t, "token", rep.u.approve.token);
		table_row(&t, "approver", rep.u.approve.approver);
		table_row(&t, "submitter", rep.u.approve.submitter);
		table_row(&t, "expires", ex);
		table_print(&t);
		table_free(&t);
		printf("\nthe submitter may now resubmit the same command with "
		       "--approval %s\n",
		    rep.u.approve.token);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- rollout ---- */

static const char *const rollout_usage =
    "usage: fuseboxctl rollout status|pause|resume|cancel|approve ID\n"
    "                          [--note TEXT]\n"
    "\n"
    "Show or steer the staged rollout of command ID.\n"
    "\n"
    "  status    plan and progress\n"
    "  pause     stop releasing waves (deliveries out stay out)\n"
    "  resume    go on after a pause (the operator has judged the wave)\n"
    "  cancel    end the rollout; undelivered devices are cancelled\n"
    "  approve   advance to the next group (plans with --approve-stages)\n"
    "  --note    why, kept in the rollout's note\n";

static int
cmd_rollout(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	static const struct {
		const char *name;
		int op;
	} ops[] = { { "status", FBX_ROP_STATUS }, { "pause", FBX_ROP_PAUSE },
		{ "resume", FBX_ROP_RESUME }, { "cancel", FBX_ROP_CANCEL },
		{ "approve", FBX_ROP_APPROVE } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct ctrl_args a;
	uint64_t id;
	int st, op = 0;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, rollout_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st + 2 > argc)
		return usage_err("rollout needs an operation and a command id "
				 "(see rollout --help)");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(argv[st], ops[i].name) == 0)
			op = ops[i].op;
	if (op == 0)
		return usage_err("unknown rollout operation '%s' (status, "
				 "pause, resume, cancel, approve)",
		    argv[st]);
	if (parse_u64(argv[st + 1], UINT64_MAX, &id) != 0 || id == 0)
		return usage_err("bad command id '%s'", argv[st + 1]);
	if (st + 2 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 2]);
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.op = op;
	req.u.rollout.command_id = id;
	strcpy(req.u.rollout.note, a.note);
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		ctl_json_print(json_pack("{s:I,s:o*,s:o*}", "command_id",
		    (json_int_t)rep.u.rollout.command_id, "plan",
		    ctl_json_plan(&rep.u.rollout.plan), "status",
		    ctl_json_ro_status(&rep.u.rollout.st)));
	} else {
		struct table t = { .ncol = 2 };
		char b[24];
		snprintf(b, sizeof(b), "%" PRIu64, rep.u.rollout.command_id);
		table_row(&t, "command", b);
		rollout_rows(&t, &rep.u.rollout.plan, &rep.u.rollout.st);
		table_print(&t);
		table_free(&t);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- summary ---- */

static const char *const summary_usage =
    "usage: fuseboxctl summary ORG[,ORG...] [--since TIME] [--type T]\n"
    "                          [--origin O]\n"
    "       fuseboxctl summary --orgs-prefix P --count N [...]\n"
    "       fuseboxctl summary --all-orgs [...]\n"
    "\n"
    "What happened per organisation: for each one, the sum over its\n"
    "commands (all pages of 'list'), one row per organisation and a TOTAL.\n"
    "\n"
    "  --orgs-prefix P --count N   organisations P001 .. PN (zero padded\n"
    "                              to 3 digits, as fusebox-devsim names\n"
    "                              them)\n"
    "  --all-orgs      every organisation the engine knows ('orgs')\n"
    "  --since TIME    only commands created at or after TIME\n"
    "  --type T        only commands of type T (e.g. lock)\n"
    "  --origin O      only commands of origin O (e.g. automatic)\n"
    "\n"
    "Columns: COMMANDS counted, HELD commands held by a breaker now,\n"
    "DISCARDED commands discarded, DEVICES deliveries, DELIVERED reached a\n"
    "gateway (sent + accepted + succeeded + failed), then deliveries per\n"
    "state.\n";

struct org_sum {
	fbx_id org;
	uint64_t commands, held, discarded, devices, delivered;
	uint64_t succeeded, failed, pending, queued, expired, cancelled;
	int err;
};

static void
sum_add(struct org_sum *t, const struct org_sum *o)
{
	t->commands += o->commands;
	t->held += o->held;
	t->discarded += o->discarded;
	t->devices += o->devices;
	t->delivered += o->delivered;
	t->succeeded += o->succeeded;
	t->failed += o->failed;
	t->pending += o->pending;
	t->queued += o->queued;
	t->expired += o->expired;
	t->cancelled += o->cancelled;
}

/* sum_org - page through an organisation's commands and add them up. */
static int
sum_org(struct ctl *ctl, const struct ctrl_args *a, struct org_sum *o)
{
	uint64_t after = 0;

	strcpy(ctl->org, o->org);
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.since_ms = a->since > 0 ? a->since : 0;
		req.u.list.after = after;
		req.u.list.limit = FBX_PAGE_MAX;
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < rep.u.commands.n; i++) {
			const struct fbx_command *c = &rep.u.commands.cmds[i];
			const uint32_t *k = c->counts;
			if (a->type != 0 && c->type != a->type)
				continue;
			if (a->origin != 0 && c->origin != a->origin)
				continue;
			o->commands++;
			o->held += c->state == FBX_C_HELD;
			o->discarded += c->state == FBX_C_DISCARDED;
			o->devices += c->ndeliveries;
			o->delivered += (uint64_t)k[FBX_D_SENT] +
			    k[FBX_D_ACCEPTED] + k[FBX_D_SUCCEEDED] +
			    k[FBX_D_FAILED];
			o->succeeded += k[FBX_D_SUCCEEDED];
			o->failed += k[FBX_D_FAILED];
			o->pending += k[FBX_D_PENDING];
			o->queued += k[FBX_D_QUEUED];
			o->expired += k[FBX_D_EXPIRED];
			o->cancelled += k[FBX_D_CANCELLED];
		}
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			return EX_OK;
	}
}

static void
sum_row(struct table *t, const struct org_sum *o)
{
	char v[11][24];
	const uint64_t x[11] = { o->commands, o->held, o->discarded,
		o->devices, o->delivered, o->succeeded, o->failed, o->pending,
		o->queued, o->expired, o->cancelled };

	for (int i = 0; i < 11; i++)
		snprintf(v[i], sizeof(v[i]), "%" PRIu64, x[i]);
	table_row(t, o->org, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
	    v[8], v[9], v[10]);
}

static void
sum_json(const struct org_sum *o)
{
	json_t *j = json_object();

	if (j != NULL) {
		CJ_STR(j, "org", o->org);
		CJ_INT(j, "commands", o->commands);
		CJ_INT(j, "held", o->held);
		CJ_INT(j, "discarded", o->discarded);
		CJ_INT(j, "devices", o->devices);
		CJ_INT(j, "delivered", o->delivered);
		CJ_INT(j, "succeeded", o->succeeded);
		CJ_INT(j, "failed", o->failed);
		CJ_INT(j, "pending", o->pending);
		CJ_INT(j, "queued", o->queued);
		CJ_INT(j, "expired", o->expired);
		CJ_INT(j, "cancelled", o->cancelled);
	}
	ctl_json_print(j);
}

static int
cmd_summary(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "orgs-prefix", required_argument, NULL, OPT_ORGS_PREFIX },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ NULL, 0, NULL, 0 } };
	struct ctrl_args a;
	struct idlist orgs = { .max = 100000 };
	struct org_sum total;
	struct table t = { .ncol = 12 };
	fbx_id saved;
	int st, have_prefix = 0;

	memset(&a, 0, sizeof(a));
	a.prefix[0] = '\1'; /* unset marker: "" is a valid prefix */
	st = parse_cmd_opts(ctl, argc, argv, lo, summary_usage, ctrl_opt, &a);
	if (st < 0)
		return -st - 1;
	have_prefix = a.prefix[0] != '\1';
	if (!have_prefix)
		a.prefix[0] = '\0';
	if (have_prefix != (a.count != 0))
		return usage_err("--orgs-prefix and --count go together");
	if (have_prefix + a.all_orgs + (st < argc) > 1)
		return usage_err("give organisations, --orgs-prefix or "
				 "--all-orgs, one of them");
	if (!have_prefix && !a.all_orgs && st >= argc)
		return usage_err("summary needs ORG[,ORG...], --all-orgs or "
				 "--orgs-prefix P --count N");
	if (a.all_orgs) {
		struct orglist ol;
		st = list_orgs(ctl, &ol);
		if (st != EX_OK)
			return st;
		for (size_t i = 0; i < ol.n; i++) {
			if (idlist_add(&orgs, ol.orgs[i]) != FBX_OK) {
				orglist_free(&ol);
				free(orgs.ids);
				return fail(FBX_ENOMEM, NULL);
			}
		}
		orglist_free(&ol);
		st = argc; /* no operands */
	}
	for (int i = st; i < argc; i++) {
		const char *bad = NULL;
		int rc = idlist_add_split(&orgs, argv[i], &bad);
		if (rc != FBX_OK) {
			free(orgs.ids);
			return rc == FBX_ENOMEM
			    ? fail(rc, NULL)
			    : usage_err("bad organisation '%s'", bad);
		}
	}
	if (have_prefix) {
		int width = 3;
		for (uint64_t n = a.count; n >= 1000; n /= 10)
			width++;
		for (uint64_t i = 1; i <= a.count; i++) {
			char name[FBX_ID_MAX + 16];
			snprintf(name, sizeof(name), "%s%0*" PRIu64, a.prefix,
			    width, i);
			if (idlist_add(&orgs, name) != FBX_OK) {
				free(orgs.ids);
				return usage_err("bad organisation name '%s'",
				    name);
			}
		}
	}
	memcpy(saved, ctl->org, sizeof(saved));
	memset(&total, 0, sizeof(total));
	strcpy(total.org, "TOTAL");
	table_row(&t, "ORG", "COMMANDS", "HELD", "DISCARDED", "DEVICES",
	    "DELIVERED", "SUCCEEDED", "FAILED", "PENDING", "QUEUED", "EXPIRED",
	    "CANCELLED");
	st = EX_OK;
	for (size_t i = 0; i < orgs.n; i++) {
		struct org_sum o;
		memset(&o, 0, sizeof(o));
		strcpy(o.org, orgs.ids[i]);
		st = sum_org(ctl, &a, &o);
		if (st != EX_OK)
			break;
		sum_add(&total, &o);
		if (ctl->json)
			sum_json(&o);
		else
			sum_row(&t, &o);
	}
	memcpy(ctl->org, saved, sizeof(saved));
	if (st == EX_OK) {
		if (ctl->json) {
			sum_json(&total);
		} else {
			sum_row(&t, &total);
			table_print(&t);
			if (a.type != 0 || a.origin != 0)
				printf("\n(only %s%s%s commands)\n",
				    a.origin ? fbx_origin_name(a.origin) : "",
				    a.origin && a.type ? " " : "",
				    a.type ? fbx_cmd_type_name(a.type) : "");
		}
	}
	table_free(&t);
	free(orgs.ids);
	return st;
}

/* ------------------------------------------------------------------ */
/* incident response: rollback, replay, export, audit, orgs */

/* The options of the incident commands; each command's option table says
 * which of them it takes. */
struct ops_args {
	uint64_t *ids; /* --command */
	size_t nids, idcap;
	fbx_id incident;
	int global;
	int origin, type, state;
	fbx_id reason, group;
	int64_t since, until;
	int execute, include_changed, force, all_orgs, wait;
	int have_rows, have_note;
	uint64_t wait_s, rows, limit, after, page_bytes;
	char note[FBX_NOTE_MAX];
	fbx_id actor;
	char action[32];
	const char *output;
	int full; /* audit verify --full */
	/* rollback, replay --resume CURSOR:LAST[:ROLLBACK[:ORG]] */
	uint64_t resume_cursor, resume_last, resume_rbid;
	fbx_id resume_org;
	int include_before_onset;
	uint64_t continue_rbid; /* rollback --continue ID */
};

static int
ops_add_ids(struct ops_args *a, const char *s)
{
	char tok[32];

	while (*s != '\0') {
		size_t k = 0;
		uint64_t v;

		while (*s == ',' || *s == ' ')
			s++;
		if (*s == '\0')
			break;
		while (*s != '\0' && *s != ',' && *s != ' ') {
			if (k < sizeof(tok) - 1)
				tok[k++] = *s;
			s++;
		}
		tok[k] = '\0';
		if (parse_u64(tok, UINT64_MAX, &v) != 0 || v == 0)
			return usage_err("bad command id '%s'", tok);
		if (a->nids >= FBX_TARGET_IDS_MAX)
			return usage_err("more than %d command ids",
			    FBX_TARGET_IDS_MAX);
		if (a->nids == a->idcap) {
			size_t ncap = a->idcap ? a->idcap * 2 : 16;
			uint64_t *p = realloc(a->ids, ncap * sizeof(*p));
			if (p == NULL)
				return fail(FBX_ENOMEM, NULL);
			a->ids = p;
			a->idcap = ncap;
		}
		a->ids[a->nids++] = v;
	}
	return EX_OK;
}

static int
ops_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct ops_args *a = arg;
	uint64_t v;

	(void)ctl;
	switch (c) {
	case OPT_COMMAND:
		return ops_add_ids(a, oa);
	case OPT_INCIDENT:
		if (copy_id(a->incident, oa) != 0)
			return usage_err("bad --incident '%s' (a breaker "
					 "reason)",
			    oa);
		return EX_OK;
	case OPT_GLOBAL:
		a->global = 1;
		return EX_OK;
	case OPT_ALL_ORGS:
		a->all_orgs = 1;
		return EX_OK;
	case OPT_RESUME: {
		unsigned long long cur = 0, last = 0, rb = 0;
		int n = 0, m = 0;
		if (sscanf(oa, "%llu:%llu%n", &cur, &last, &n) != 2 ||
		    cur == 0 || last == 0)
			return usage_err("bad --resume '%s' (CURSOR:LAST"
					 "[:ROLLBACK[:ORG]], as printed)",
			    oa);
		if (oa[n] == ':' &&
		    (sscanf(oa + n + 1, "%llu%n", &rb, &m) != 1))
			return usage_err("bad --resume '%s'", oa);
		if (oa[n] == ':' && oa[n + 1 + m] == ':' &&
		    copy_id(a->resume_org, oa + n + 2 + m) != 0)
			return usage_err("bad --resume '%s' (organisation)",
			    oa);
		a->resume_cursor = cur;
		a->resume_last = last;
		a->resume_rbid = rb;
		return EX_OK;
	}
	case OPT_INCLUDE_BEFORE_ONSET:
		a->include_before_onset = 1;
		return EX_OK;
	case OPT_CONTINUE:
		if (parse_u64(oa, UINT64_MAX, &a->continue_rbid) != 0 ||
		    a->continue_rbid == 0)
			return usage_err("bad --continue '%s' (a rollback id)",
			    oa);
		return EX_OK;
	case OPT_ORIGIN:
		a->origin = fbx_origin_parse(oa);
		if (a->origin == 0)
			return usage_err("unknown origin '%s'", oa);
		return EX_OK;
	case OPT_REASON:
		if (copy_id(a->reason, oa) != 0)
			return usage_err("bad reason '%s'", oa);
		return EX_OK;
	case OPT_TYPE: {
		char t[64];
		snprintf(t, sizeof(t), "%s", oa);
		for (char *p = t; *p; p++)
			if (*p == '-')
				*p = '_';
		a->type = fbx_cmd_type_parse(t);
		if (a->type == 0)
			return usage_err("unknown command type '%s'", oa);
		return EX_OK;
	}
	case OPT_GROUP:
		if (copy_id(a->group, oa) != 0)
			return usage_err("bad group '%s'", oa);
		return EX_OK;
	case OPT_SINCE:
	case OPT_UNTIL:
		if (parse_time(oa, c == OPT_SINCE ? &a->since : &a->until) !=
		        0 ||
		    (c == OPT_SINCE ? a->since : a->until) <= 0)
			return usage_err("bad --%s '%s' (epoch ms, now, or "
					 "-30m, -1h, -7d)",
			    c == OPT_SINCE ? "since" : "until", oa);
		return EX_OK;
	case OPT_EXECUTE:
		a->execute = 1;
		return EX_OK;
	case OPT_INCLUDE_CHANGED:
		a->include_changed = 1;
		return EX_OK;
	case OPT_FORCE:
		a->force = 1;
		return EX_OK;
	case OPT_ROWS:
		if (parse_u64(oa, FBX_PAGE_MAX, &a->rows) != 0)
			return usage_err("bad --rows '%s' (0..%d)", oa,
			    FBX_PAGE_MAX);
		a->have_rows = 1;
		return EX_OK;
	case OPT_NOTE:
		if (copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		a->have_note = 1;
		return EX_OK;
	case OPT_STATE:
		a->state = fbx_dstate_parse(oa);
		if (a->state == 0)
			return usage_err("unknown state '%s'", oa);
		return EX_OK;
	case OPT_WAIT:
		a->wait = 1;
		if (oa == NULL && optind < argc &&
		    parse_u64(argv[optind], 86400 * 7, &v) == 0)
			oa = argv[optind++];
		if (oa != NULL) {
			if (parse_u64(oa, 86400 * 7, &v) != 0)
				return usage_err("bad --wait '%s' (seconds)",
				    oa);
			a->wait_s = v;
		}
		return EX_OK;
	case OPT_OUTPUT:
		if (oa[0] == '\0')
			return usage_err("empty --output");
		a->output = oa;
		return EX_OK;
	case OPT_ACTOR_FILTER:
		if (copy_id(a->actor, oa) != 0)
			return usage_err("bad --actor '%s'", oa);
		return EX_OK;
	case OPT_ACTION:
		if (strlen(oa) >= sizeof(a->action))
			return usage_err("--action longer than %zu bytes",
			    sizeof(a->action) - 1);
		for (const char *p = oa; *p; p++)
			if ((unsigned char)*p < 0x20 ||
			    (unsigned char)*p > 0x7e)
				return usage_err("--action is not printable "
						 "ASCII");
		strcpy(a->action, oa);
		return EX_OK;
	case OPT_LIMIT:
		if (parse_u64(oa, FBX_PAGE_MAX * 100ull, &a->limit) != 0 ||
		    a->limit == 0)
			return usage_err("bad --limit '%s' (1..%d)", oa,
			    FBX_PAGE_MAX * 100);
		return EX_OK;
	case OPT_AFTER:
		if (parse_u64(oa, UINT64_MAX, &a->after) != 0)
			return usage_err("bad --after '%s'", oa);
		return EX_OK;
	case OPT_FULL:
		a->full = 1;
		return EX_OK;
	case OPT_PAGE_BYTES:
		if (parse_u64(oa, 8u * 1024 * 1024, &a->page_bytes) != 0 ||
		    a->page_bytes < 4096)
			return usage_err("bad --page-bytes '%s' (4096 .. "
					 "8388608)",
			    oa);
		return EX_OK;
	default:
		return usage_err("unexpected option (see %s --help)", argv[0]);
	}
}

/* sel_check - the selector options make sense together. A selector
 * without any criterion would name every command of the organisation:
 * refused, an operator asks for that with --since. */
static int
sel_check(const char *cmd, const struct ops_args *a)
{
	int filters = a->origin || a->reason[0] || a->type || a->since ||
	    a->until;

	if (a->nids > 0 && a->incident[0] != '\0')
		return usage_err("%s: give --command or --incident, not both",
		    cmd);
	if (a->nids > 0 && filters)
		return usage_err("%s: --command names the commands; --origin, "
				 "--reason, --type, --since and --until go "
				 "without it",
		    cmd);
	if (a->global && a->incident[0] == '\0')
		return usage_err("%s: --global goes with --incident REASON "
				 "(the global breaker of that reason)",
		    cmd);
	if (a->nids > 0 && a->all_orgs)
		return usage_err("%s: command ids belong to one organisation; "
				 "no --all-orgs with --command",
		    cmd);
	if (a->include_before_onset && a->incident[0] == '\0')
		return usage_err("%s: --include-before-onset goes with "
				 "--incident REASON",
		    cmd);
	if (a->nids == 0 && a->incident[0] == '\0' && !filters)
		return usage_err("%s needs --command ID, --incident REASON or "
				 "a filter (--origin, --reason, --type, "
				 "--since, --until)",
		    cmd);
	if (a->since && a->until && a->until <= a->since)
		return usage_err("%s: --until is not after --since", cmd);
	return EX_OK;
}

/* sel_build - the wire selector; the id array stays a's. An incident
 * means the automatic commands of that reason under the breaker: the
 * engine picks the breaker's window, the reason and origin are set here
 * so that nothing else in the window (operator or scheduled commands) is
 * touched. */
static void
sel_build(const struct ops_args *a, struct fbx_selector *s)
{
	memset(s, 0, sizeof(*s));
	if (a->nids > 0) {
		s->command_ids = a->ids;
		s->ncommand_ids = a->nids;
		strcpy(s->group, a->group);
		return;
	}
	if (a->incident[0] != '\0') {
		strcpy(s->breaker, a->incident);
		/* the global incident is one run over every organisation
		 * (every_org implies the global breaker; the engine narrows
		 * it to the asking organisation's part unless that is the
		 * admin organisation) */
		s->every_org = a->global;
		s->include_before_onset = a->include_before_onset;
		strcpy(s->reason, a->reason[0] ? a->reason : a->incident);
		s->origin = a->origin ? a->origin : FBX_ORIGIN_AUTOMATIC;
	} else {
		strcpy(s->reason, a->reason);
		s->origin = a->origin;
	}
	s->type = a->type;
	strcpy(s->group, a->group);
	s->since_ms = a->since;
	s->until_ms = a->until;
}

/* sel_str - the selection in words, for the plan's heading. */
static void
sel_str(const struct ops_args *a, char *buf, size_t len)
{
	size_t k = 0;

#define SEL_PUT(...)                                                         \
	do {                                                                 \
		if (k < len) {                                               \
			int n_ = snprintf(buf + k, len - k, __VA_ARGS__);    \
			if (n_ > 0)                                          \
				k += (size_t)n_;                             \
		}                                                            \
	} while (0)
	buf[0] = '\0';
	if (a->nids > 0) {
		SEL_PUT("command%s", a->nids > 1 ? "s" : "");
		for (size_t i = 0; i < a->nids && i < 5; i++)
			SEL_PUT("%s%" PRIu64, i ? "," : " ", a->ids[i]);
		if (a->nids > 5)
			SEL_PUT(",... (%zu)", a->nids);
	} else if (a->incident[0] != '\0') {
		SEL_PUT("incident %s: %s %s commands from the onset of the "
			"last trip of breaker %s/%s%s",
		    a->incident,
		    fbx_origin_name(a->origin ? a->origin
		                              : FBX_ORIGIN_AUTOMATIC),
		    a->reason[0] ? a->reason : a->incident,
		    a->global ? "*" : "ORG (or *)", a->incident,
		    a->include_before_onset ? ", and those before the onset"
		                            : "");
	} else {
		SEL_PUT("commands");
		if (a->origin)
			SEL_PUT(" origin=%s", fbx_origin_name(a->origin));
		if (a->reason[0])
			SEL_PUT(" reason=%s", a->reason);
	}
	if (a->type)
		SEL_PUT(" type=%s", fbx_cmd_type_name(a->type));
	if (a->group[0])
		SEL_PUT(" group=%s", a->group);
	if (a->since) {
		char t[40];
		fmt_time(a->since, t, sizeof(t));
		SEL_PUT(" since=%s", t);
	}
	if (a->until) {
		char t[40];
		fmt_time(a->until, t, sizeof(t));
		SEL_PUT(" until=%s", t);
	}
#undef SEL_PUT
}

static const char *const orgs_usage =
    "usage: fuseboxctl orgs\n"
    "\n"
    "The organisations the engine knows, with their enrolled devices.\n"
    "The --all-orgs option of rollback, replay, export, summary and\n"
    "breaker status goes over this list.\n";

static int
cmd_orgs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct orglist l;
	uint64_t total = 0;
	int st;

	st = parse_cmd_opts(ctl, argc, argv, lo, orgs_usage, no_opt, NULL);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	st = list_orgs(ctl, &l);
	if (st != EX_OK)
		return st;
	for (size_t i = 0; i < l.n; i++)
		total += l.devices[i];
	if (ctl->json) {
		json_t *a = json_array();
		for (size_t i = 0; a != NULL && i < l.n; i++)
			json_array_append_new(a,
			    json_pack("{s:o*,s:I}", "org",
				fbx_json_str(l.orgs[i]), "devices",
				(json_int_t)l.devices[i]));
		ctl_json_print(json_pack("{s:o*,s:I,s:I}", "orgs", a, "count",
		    (json_int_t)l.n, "devices", (json_int_t)total));
	} else {
		struct table t = { .ncol = 2 };
		char b[24];
		table_row(&t, "ORG", "DEVICES");
		for (size_t i = 0; i < l.n; i++) {
			snprintf(b, sizeof(b), "%" PRIu32, l.devices[i]);
			table_row(&t, l.orgs[i], b);
		}
		snprintf(b, sizeof(b), "%" PRIu64, total);
		table_row(&t, "TOTAL", b);
		table_print(&t);
		table_free(&t);
		printf("\n%zu organisations\n", l.n);
	}
	orglist_free(&l);
	return EX_OK;
}

/* ---- rollback ---- */

static const char *const rollback_usage =
    "usage: fuseboxctl rollback --command ID[,ID...] [OPTIONS]\n"
    "       fuseboxctl rollback --incident REASON [--global]\n"
    "                           [--include-before-onset] [OPTIONS]\n"
    "       fuseboxctl rollback [--origin O] [--reason R] [--type T]\n"
    "                           [--group G] [--since TIME] [--until TIME]\n"
    "                           [OPTIONS]\n"
    "\n"
    "Undo commands: what was not sent yet (or is held) is cancelled, what\n"
    "succeeded gets a compensating command (lock -> unlock, install_app ->\n"
    "remove_app, set_policy -> the previous values), what cannot be undone\n"
    "(wipe, os_update, clear_passcode) is listed and left. Devices that a\n"
    "later command changed are left alone unless --include-changed. Without\n"
    "--execute it only prints the plan; nothing changes.\n"
    "\n"
    "Selection (in the organisation):\n"
    "  --command ID[,ID...]  these commands (repeatable)\n"
    "  --incident REASON     the automatic commands of reason REASON under\n"
    "                        its breaker (the global one if only that one\n"
    "                        held the organisation): from the incident's\n"
    "                        onset (when the reason's rate left its\n"
    "                        baseline) up to the breaker's reset or now,\n"
    "                        held ones included. Earlier commands of the\n"
    "                        reason in the breaker window are listed as\n"
    "                        \"before onset\" and left alone\n"
    "  --include-before-onset  undo those too\n"
    "  --global              the global breaker's incident in every\n"
    "                        affected organisation: one run, one rollback\n"
    "                        id, one table (fuseboxd --admin-org: only\n"
    "                        that organisation; another one gets its own\n"
    "                        part). --all-orgs says the same with it\n"
    "  --origin O            operator, automatic, scheduled (with\n"
    "                        --incident: default automatic)\n"
    "  --reason R            commands of reason R (with --incident: R)\n"
    "  --type T              commands of type T\n"
    "  --group G             only devices of group G\n"
    "  --since TIME          created at or after TIME (epoch ms, now,\n"
    "  --until TIME          before TIME            -30m, -1h, -7d)\n"
    "Options:\n"
    "  --execute             carry the plan out: cancel, journal the\n"
    "                        compensating commands (recovery priority, never\n"
    "                        held by a breaker); prints the rollback id\n"
    "  --include-changed     also undo devices changed since by a later\n"
    "                        command\n"
    "  --rows N              plan rows to print (default 20, 0 = none; one\n"
    "                        organisation only)\n"
    "  --note TEXT           why (kept in the audit record)\n"
    "  --wait [SECONDS]      with --execute: wait until every compensating\n"
    "                        command is settled (default 300 s) and print\n"
    "                        the outcome and the time it took\n"
    "  --all-orgs            the same rollback in every organisation\n"
    "                        ('fuseboxctl orgs'), one run each: one row\n"
    "                        per organisation and a TOTAL (with\n"
    "                        --incident R --global: the one global run)\n"
    "  --resume C:L[:R[:ORG]]  go on from where a run stopped (the line\n"
    "                        printed on stderr)\n"
    "  --continue ID         with --execute: go on with rollback ID from\n"
    "                        where the engine journaled it (after a crash\n"
    "                        of the client or the engine)\n"
    "\n"
    "The engine works in slices (at most N deliveries and N/10 commands\n"
    "per request, fuseboxd --rollback-slice); fuseboxctl asks slice after\n"
    "slice, prints a progress line per slice on stderr and one combined\n"
    "plan or result. Stopped half way (engine restart), what was done\n"
    "stays done: --resume, or run it again (nothing is done twice).\n"
    "\n"
    "Plan counts (deliveries; a held command counts once per device, or\n"
    "once for a whole-group target): cancel, compensate, irreversible,\n"
    "changed since (left alone), nothing (failed, expired, cancelled, or\n"
    "nothing to undo), compensated before (by an earlier rollback), in\n"
    "flight (sent or accepted, not answered yet: nothing is sent to the\n"
    "device now; run the rollback again once they have settled).\n"
    "A rollback can be run again: what it compensated is not compensated\n"
    "twice. Exit 0 on success, 65 when nothing matched.\n";

static const char *const rb_action_label[FBX_RB_COUNT] = { "-", "cancel",
	"compensate", "irreversible", "changed since (left alone)", "nothing",
	"compensated before", "in flight (run again when settled)" };
static const char *const rb_action_short[FBX_RB_COUNT] = { "-", "cancel",
	"compensate", "irreversible", "changed", "nothing", "done-before",
	"in-flight" };

/* One compensating command to follow. */
struct rb_track {
	fbx_id org;
	uint64_t id;
	int settled;
	uint32_t deliveries;
	uint32_t counts[FBX_D_COUNT];
};

struct rb_tracks {
	struct rb_track *v;
	size_t n, cap;
};

static int
rb_track_add(struct rb_tracks *t, const char *org, uint64_t id)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		struct rb_track *p = realloc(t->v, ncap * sizeof(*p));
		if (p == NULL)
			return FBX_ENOMEM;
		t->v = p;
		t->cap = ncap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	strcpy(t->v[t->n].org, org);
	t->v[t->n].id = id;
	t->n++;
	return FBX_OK;
}

/* rb_print_onset - the incident's window, and the reason's commands
 * before its onset that the rollback leaves (with the first rows). */
static void
rb_print_onset(const struct ops_args *a, const struct fbx_rb_plan *p)
{
	char t1[40], t2[40], t3[40];

	if (a->incident[0] == '\0')
		return;
	fmt_time(p->onset_ms, t1, sizeof(t1));
	fmt_time(p->since_ms, t2, sizeof(t2));
	fmt_time(p->until_ms, t3, sizeof(t3));
	if (p->onset_ms != 0)
		printf("incident onset %s; selected from %s until %s\n", t1,
		    t2, p->until_ms ? t3 : "now (breaker open)");
	else
		printf("incident onset not recorded: selected from %s (one "
		       "breaker window before the trip) until %s\n",
		    t2, p->until_ms ? t3 : "now (breaker open)");
	if (a->include_before_onset) {
		printf("before onset: included (--include-before-onset)\n");
		return;
	}
	printf("before onset (earlier commands of the reason in the breaker "
	       "window, left as they are; --include-before-onset undoes "
	       "them): %" PRIu32 " command%s, %" PRIu32 " deliveries\n",
	    p->before_onset, p->before_onset == 1 ? "" : "s",
	    p->before_onset_deliveries);
	if (a->rows > 0 && p->nbo_rows > 0) {
		struct table r = { .ncol = 6 };
		size_t shown = p->nbo_rows < a->rows ? p->nbo_rows
		                                     : (size_t)a->rows;
		putchar('\n');
		table_row(&r, "COMMAND", "DELIVERY", "DEVICE", "TYPE", "STATE",
		    "WOULD BE");
		for (size_t i = 0; i < shown; i++) {
			const struct fbx_rb_row *w = &p->bo_rows[i];
			char cid[24], did[24];
			snprintf(cid, sizeof(cid), "%" PRIu64, w->command_id);
			snprintf(did, sizeof(did), "%" PRIu64, w->delivery_id);
			table_row(&r, cid, w->delivery_id ? did : "-",
			    w->device[0] ? w->device : "-",
			    fbx_cmd_type_name(w->type),
			    w->state ? fbx_dstate_name(w->state) : "held",
			    w->action < FBX_RB_COUNT
			        ? rb_action_short[w->action]
			        : "?");
		}
		table_print(&r);
		table_free(&r);
		if (shown < p->before_onset_deliveries)
			printf("(%zu of %" PRIu32 " before-onset rows)\n",
			    shown, p->before_onset_deliveries);
	}
}

static uint32_t
rb_total(const struct fbx_rb_plan *p)
{
	uint32_t n = 0;

	for (int k = 1; k < FBX_RB_COUNT; k++)
		n += p->per_action[k];
	return n;
}

/* rb_print_one - the plan (or what was done) in one organisation. */
/* ctl_who - who acts: the -a name if given (the engine checks it), else
 * the principal of the key in use */
static const char *
ctl_who(const struct ctl *ctl)
{
	if (ctl->actor[0] != '\0' || ctl->cli == NULL)
		return ctl->actor;
	return fbx_client_principal(ctl->cli);
}

static void
rb_print_one(const struct ctl *ctl, const struct ops_args *a,
    const struct fbx_rb_plan *p)
{
	struct table t = { .ncol = 2 };
	char sel[320], b[24];
	uint32_t total = rb_total(p);

	sel_str(a, sel, sizeof(sel));
	if (p->executed)
		printf("rollback %" PRIu64 " executed in %s by %s\n",
		    p->rollback_id, ctl->org, ctl_who(ctl));
	else
		printf("rollback plan for %s (dry run, nothing changed; "
		       "--execute carries it out)\n",
		    ctl->org);
	printf("selected: %" PRIu32 " command%s (%s)\n\n", p->commands,
	    p->commands == 1 ? "" : "s", sel);
	table_row(&t, "ACTION", "COUNT");
	for (int k = 1; k < FBX_RB_COUNT; k++) {
		snprintf(b, sizeof(b), "%" PRIu32, p->per_action[k]);
		table_row(&t, rb_action_label[k], b);
	}
	snprintf(b, sizeof(b), "%" PRIu32, total);
	table_row(&t, "TOTAL", b);
	table_print(&t);
	table_free(&t);
	if (a->rows > 0 && p->nrows > 0) {
		struct table r = { .ncol = 8 };
		size_t shown = p->nrows < a->rows ? p->nrows : (size_t)a->rows;
		putchar('\n');
		table_row(&r, "COMMAND", "DELIVERY", "DEVICE", "TYPE", "STATE",
		    "ACTION", "COMPENSATION", "DETAIL");
		for (size_t i = 0; i < shown; i++) {
			const struct fbx_rb_row *w = &p->rows[i];
			char cid[24], did[24];
			snprintf(cid, sizeof(cid), "%" PRIu64, w->command_id);
			snprintf(did, sizeof(did), "%" PRIu64, w->delivery_id);
			table_row(&r, cid, w->delivery_id ? did : "-",
			    w->device[0] ? w->device : "-",
			    fbx_cmd_type_name(w->type),
			    w->state ? fbx_dstate_name(w->state) : "held",
			    w->action < FBX_RB_COUNT
			        ? rb_action_short[w->action]
			        : "?",
			    w->comp_type ? fbx_cmd_type_name(w->comp_type)
			                 : "-",
			    w->detail[0] ? w->detail : "-");
		}
		table_print(&r);
		table_free(&r);
		if (shown < total)
			printf("(%zu of %" PRIu32 " rows; --rows N for more)\n",
			    shown, total);
	}
	if (a->incident[0] != '\0') {
		putchar('\n');
		rb_print_onset(a, p);
	}
	if (p->executed) {
		printf("\ncompensating commands: %zu", p->ncomp);
		for (size_t i = 0; i < p->ncomp && i < 20; i++)
			printf("%s%" PRIu64, i ? ", " : " (", p->comp_ids[i]);
		printf("%s\n", p->ncomp > 20 ? ", ...)" : p->ncomp ? ")" : "");
		for (size_t i = 0; i < p->ncomp && i < 5; i++)
			printf("follow: fuseboxctl -o %s show %" PRIu64 "\n",
			    ctl->org, p->comp_ids[i]);
	}
}

/* rb_print_global - a global incident's run over every organisation:
 * one row per organisation it concerned and a TOTAL. */
static void
rb_print_global(const struct ctl *ctl, const struct ops_args *a,
    const struct fbx_rb_plan *p)
{
	struct table t = { .ncol = 11 };
	char sel[320], v[11][24];
	uint64_t tot[FBX_RB_COUNT] = { 0 }, tbo = 0, tcomp = 0, tcmd = 0;
	size_t changed = 0;

	sel_str(a, sel, sizeof(sel));
	if (p->executed && p->commands == 0 && p->norgs == 0 &&
	    a->continue_rbid != 0) {
		printf("rollback %" PRIu64 ": the run is finished; nothing "
		       "left to do\n",
		    p->rollback_id);
		return;
	}
	if (p->executed)
		printf("rollback %" PRIu64 " executed in every organisation "
		       "by %s (one run, one rollback id)\n",
		    p->rollback_id, ctl_who(ctl));
	else
		printf("rollback plan for every organisation (dry run, "
		       "nothing changed; --execute carries it out)\n");
	printf("selected: %" PRIu32 " command%s (%s)\n\n", p->commands,
	    p->commands == 1 ? "" : "s", sel);
	table_row(&t, "ORG", "COMMANDS", "CANCEL", "COMPENSATE",
	    "IRREVERSIBLE", "CHANGED", "NOTHING", "COMP_BEFORE", "IN_FLIGHT",
	    "BEFORE_ONSET", "COMPENSATING");
	for (size_t i = 0; i <= p->norgs; i++) {
		const struct fbx_rb_org *x = i < p->norgs ? &p->orgs[i] : NULL;
		const uint64_t c = x ? x->commands : tcmd;
		const int ks[7] = { FBX_RB_CANCEL, FBX_RB_COMPENSATE,
			FBX_RB_IRREVERSIBLE, FBX_RB_CHANGED, FBX_RB_NOTHING,
			FBX_RB_DONE_BEFORE, FBX_RB_IN_FLIGHT };
		snprintf(v[0], sizeof(v[0]), "%" PRIu64, c);
		for (int k = 0; k < 7; k++)
			snprintf(v[1 + k], sizeof(v[1 + k]), "%" PRIu64,
			    x ? (uint64_t)x->per_action[ks[k]] : tot[ks[k]]);
		snprintf(v[8], sizeof(v[8]), "%" PRIu64,
		    x ? (uint64_t)x->before_onset : tbo);
		snprintf(v[9], sizeof(v[9]), "%" PRIu64,
		    x ? (uint64_t)x->comp_commands : tcomp);
		table_row(&t, x ? x->org : "TOTAL", v[0], v[1], v[2], v[3],
		    v[4], v[5], v[6], v[7], v[8], v[9]);
		if (x == NULL)
			break;
		tcmd += x->commands;
		for (int k = 0; k < FBX_RB_COUNT; k++)
			tot[k] += x->per_action[k];
		tbo += x->before_onset;
		tcomp += x->comp_commands;
		changed += x->commands > 0;
	}
	table_print(&t);
	table_free(&t);
	printf("\n%zu organisation%s with commands of the incident\n",
	    changed, changed == 1 ? "" : "s");
	putchar('\n');
	rb_print_onset(a, p);
	if (p->executed)
		printf("\ncompensating commands: %zu; audit: one \"rollback\" "
		       "record (org *) naming the organisations, "
		       "\"rollback.slice\" records per slice\n",
		    p->ncomp);
}

/* rb_wait - poll every compensating command until all are settled
 * (terminal or waiting for an offline device) or the deadline. */
static int
rb_wait(struct ctl *ctl, struct rb_tracks *t, uint64_t wait_s)
{
	int64_t deadline = mono_ms() + (int64_t)wait_s * 1000;
	char saved[FBX_ID_MAX + 1];
	int st = EX_OK;

	strcpy(saved, ctl->org);
	for (;;) {
		size_t open = 0;
		for (size_t i = 0; i < t->n; i++) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			struct rb_track *k = &t->v[i];
			if (k->settled)
				continue;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_GET_COMMAND;
			req.u.get.command_id = k->id;
			strcpy(ctl->org, k->org);
			st = call(ctl, &req, &rep);
			if (st != EX_OK)
				goto out;
			k->deliveries = rep.u.command.info.ndeliveries;
			memcpy(k->counts, rep.u.command.info.counts,
			    sizeof(k->counts));
			k->settled = settled(&rep.u.command.info);
			fbx_console_rep_free(&rep);
			open += !k->settled;
		}
		if (open == 0)
			break;
		if (mono_ms() >= deadline) {
			st = fail(FBX_ETIMEOUT,
			    "wait expired after %" PRIu64
			    " s: %zu compensating commands not settled",
			    wait_s, open);
			goto out;
		}
		usleep(50 * 1000);
	}
out:
	strcpy(ctl->org, saved);
	return st;
}

/* rb_print_wait - the outcome of the compensating commands. */
static void
rb_print_wait(const struct ctl *ctl, const struct rb_tracks *t,
    int64_t journaled_ms, int64_t settled_ms)
{
	uint64_t n[FBX_D_COUNT] = { 0 }, dl = 0, nfail = 0;

	for (size_t i = 0; i < t->n; i++) {
		dl += t->v[i].deliveries;
		for (int s = 1; s < FBX_D_COUNT; s++)
			n[s] += t->v[i].counts[s];
		nfail += t->v[i].counts[FBX_D_FAILED] > 0;
	}
	if (ctl->json) {
		json_t *w = json_object(), *c = json_object(), *f = json_array();
		for (int s = 1; c != NULL && s < FBX_D_COUNT; s++)
			CJ_INT(c, fbx_dstate_name(s), n[s]);
		for (size_t i = 0; f != NULL && i < t->n; i++) {
			if (t->v[i].counts[FBX_D_FAILED] == 0)
				continue;
			json_array_append_new(f,
			    json_pack("{s:o*,s:I,s:I}", "org",
				fbx_json_str(t->v[i].org), "command",
				(json_int_t)t->v[i].id, "failed",
				(json_int_t)t->v[i].counts[FBX_D_FAILED]));
		}
		if (w != NULL) {
			CJ_INT(w, "compensating_commands", t->n);
			CJ_INT(w, "deliveries", dl);
			CJ_INT(w, "journaled_ms", journaled_ms);
			CJ_INT(w, "settled_ms", settled_ms);
			CJ_SET(w, "counts", c);
			CJ_SET(w, "failed_in", f);
			c = f = NULL;
		}
		json_decref(c);
		json_decref(f);
		ctl_json_print(json_pack("{s:o*}", "wait", w));
		return;
	}
	printf("done: all %zu compensating commands (%" PRIu64
	       " deliveries) settled %" PRId64
	       " ms after the rollback was issued (%" PRId64
	       " ms after they were journaled)\n",
	    t->n, dl, settled_ms, settled_ms - journaled_ms);
	printf("      %" PRIu64 " succeeded, %" PRIu64 " failed, %" PRIu64
	       " pending (device offline: sent at its check-in), %" PRIu64
	       " expired, %" PRIu64 " cancelled\n",
	    n[FBX_D_SUCCEEDED], n[FBX_D_FAILED], n[FBX_D_PENDING],
	    n[FBX_D_EXPIRED], n[FBX_D_CANCELLED]);
	if (nfail > 0) {
		printf("%" PRIu64 " compensations failed on the device; the "
		       "devices are listed by:\n",
		    n[FBX_D_FAILED]);
		for (size_t i = 0; i < t->n; i++)
			if (t->v[i].counts[FBX_D_FAILED] > 0)
				printf("  fuseboxctl -o %s show %" PRIu64
				       " --state failed\n",
				    t->v[i].org, t->v[i].id);
	}
}

/* rb_merge - add one slice's plan to the run's: counts summed, rows
 * kept up to want, compensating commands appended, the first rollback
 * id kept. */
static int
rb_merge(struct fbx_rb_plan *tot, const struct fbx_rb_plan *p, size_t want)
{
	tot->commands += p->commands;
	for (int k = 0; k < FBX_RB_COUNT; k++)
		tot->per_action[k] += p->per_action[k];
	if (tot->nrows < want && p->nrows > 0) {
		size_t n = p->nrows < want - tot->nrows ? p->nrows
		                                        : want - tot->nrows;
		struct fbx_rb_row *nr = realloc(tot->rows,
		    (tot->nrows + n) * sizeof(*nr));
		if (nr == NULL)
			return FBX_ENOMEM;
		memcpy(nr + tot->nrows, p->rows, n * sizeof(*nr));
		tot->rows = nr;
		tot->nrows += n;
	}
	if (p->ncomp > 0) {
		uint64_t *nc = realloc(tot->comp_ids,
		    (tot->ncomp + p->ncomp) * sizeof(*nc));
		if (nc == NULL)
			return FBX_ENOMEM;
		memcpy(nc + tot->ncomp, p->comp_ids, p->ncomp * sizeof(*nc));
		tot->comp_ids = nc;
		tot->ncomp += p->ncomp;
	}
	if (tot->rollback_id == 0)
		tot->rollback_id = p->rollback_id;
	tot->executed = p->executed;
	tot->looked_at += p->looked_at;
	tot->later_commands += p->later_commands;
	tot->last_command_id = p->last_command_id;
	tot->before_onset += p->before_onset;
	tot->before_onset_deliveries += p->before_onset_deliveries;
	if (tot->nbo_rows < want && p->nbo_rows > 0) {
		size_t n = p->nbo_rows < want - tot->nbo_rows
		    ? p->nbo_rows
		    : want - tot->nbo_rows;
		struct fbx_rb_row *nr = realloc(tot->bo_rows,
		    (tot->nbo_rows + n) * sizeof(*nr));
		if (nr == NULL)
			return FBX_ENOMEM;
		memcpy(nr + tot->nbo_rows, p->bo_rows, n * sizeof(*nr));
		tot->bo_rows = nr;
		tot->nbo_rows += n;
	}
	if (p->onset_ms || p->since_ms || p->until_ms) {
		tot->onset_ms = p->onset_ms;
		tot->since_ms = p->since_ms;
		tot->until_ms = p->until_ms;
	}
	tot->global |= p->global;
	/* the parts of a global run, one entry per organisation */
	for (size_t i = 0; i < p->norgs; i++) {
		const struct fbx_rb_org *x = &p->orgs[i];
		struct fbx_rb_org *y = NULL;
		for (size_t j = 0; j < tot->norgs; j++)
			if (strcmp(tot->orgs[j].org, x->org) == 0)
				y = &tot->orgs[j];
		if (y == NULL) {
			struct fbx_rb_org *no = realloc(tot->orgs,
			    (tot->norgs + 1) * sizeof(*no));
			if (no == NULL)
				return FBX_ENOMEM;
			tot->orgs = no;
			y = &tot->orgs[tot->norgs++];
			memset(y, 0, sizeof(*y));
			strcpy(y->org, x->org);
		}
		y->commands += x->commands;
		for (int k = 0; k < FBX_RB_COUNT; k++)
			y->per_action[k] += x->per_action[k];
		y->before_onset += x->before_onset;
		y->before_onset_deliveries += x->before_onset_deliveries;
		y->comp_commands += x->comp_commands;
	}
	return FBX_OK;
}

/* rb_comp_org - the organisation of the k-th compensating command of a
 * global run: the parts list them in the same order. */
static const char *
rb_comp_org(const struct fbx_rb_plan *p, size_t k, const char *dflt)
{
	for (size_t i = 0; i < p->norgs; i++) {
		if (k < p->orgs[i].comp_commands)
			return p->orgs[i].org;
		k -= p->orgs[i].comp_commands;
	}
	return dflt;
}

/* rb_run - a rollback in ctl->org, slice after slice until the engine's
 * cursor is 0; rep gets the whole run's plan. A progress line per slice
 * goes to stderr, and on a failure after the first slice the line to
 * resume from. eng_err gets the engine's refusal when quiet. */
static int
rb_run(struct ctl *ctl, const struct ops_args *a, int quiet,
    struct fbx_console_rep *rep, int *eng_err)
{
	struct fbx_console_req req;
	struct fbx_console_rep one;
	struct fbx_rb_plan tot;
	size_t want = a->rows;
	unsigned slice = 0;
	int st;

	memset(&tot, 0, sizeof(tot));
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	sel_build(a, &req.u.rollback.sel);
	req.u.rollback.execute = a->execute;
	req.u.rollback.include_changed = a->include_changed;
	/* 0 would mean the engine's default of 100 */
	req.u.rollback.limit = quiet || a->rows == 0 ? 1 : (uint32_t)a->rows;
	strcpy(req.u.rollback.note, a->note);
	req.u.rollback.sliced = 1;
	req.u.rollback.cursor = a->resume_cursor;
	req.u.rollback.last_command_id = a->resume_last;
	req.u.rollback.rollback_id = a->execute ? a->resume_rbid : 0;
	strcpy(req.u.rollback.org_cursor, a->resume_org);
	if (a->continue_rbid != 0)
		req.u.rollback.rollback_id = a->continue_rbid;
	tot.rollback_id = req.u.rollback.rollback_id;
	if (quiet)
		want = 0;
	for (;;) {
		const struct fbx_rb_plan *p = &one.u.rollback;
		int ee = FBX_OK, nf;
		st = call_ex(ctl, &req, &one, &ee);
		if (st != EX_OK) {
			/* NOT_FOUND ends a run that selected nothing: there is
			 * nothing to resume */
			nf = ee == FBX_ENOT_FOUND;
			if (quiet && eng_err != NULL)
				*eng_err = ee;
			else if (ee != FBX_OK)
				st = fail(ee, "%s", ctl->errmsg);
			fbx_console_rep_free(&one);
			if (req.u.rollback.cursor != 0 && !nf)
				fprintf(stderr,
				    "fuseboxctl: %s: rollback stopped after "
				    "%u slices; what they did stays done. "
				    "Resume: --resume %" PRIu64 ":%" PRIu64
				    ":%" PRIu64 "%s%s%s (or run it again from "
				    "the start: nothing is done twice)\n",
				    ctl->org, slice, req.u.rollback.cursor,
				    req.u.rollback.last_command_id,
				    tot.rollback_id,
				    req.u.rollback.org_cursor[0] ? ":" : "",
				    req.u.rollback.org_cursor,
				    tot.rollback_id && a->execute
				        ? " or --continue <rollback id>"
				        : "");
			break;
		}
		slice++;
		if (rb_merge(&tot, p, want) != FBX_OK) {
			fbx_console_rep_free(&one);
			st = fail(FBX_ENOMEM, NULL);
			break;
		}
		if (p->next_cursor != 0 || slice > 1)
			fprintf(stderr,
			    "fuseboxctl: %s: rollback slice %u: %" PRIu32
			    " commands (%" PRIu32 " so far), %" PRIu32
			    " looked at, %" PRIu32 " later commands surveyed, "
			    "%zu compensating; %s %" PRIu64 ":%" PRIu64
			    ":%" PRIu64 "%s%s\n",
			    ctl->org, slice, p->commands, tot.commands,
			    p->looked_at, p->later_commands, p->ncomp,
			    p->next_cursor ? "next" : "done",
			    p->next_cursor, p->last_command_id,
			    tot.rollback_id, p->next_org[0] ? ":" : "",
			    p->next_org);
		strcpy(req.u.rollback.org_cursor,
		    p->next_cursor ? p->next_org : "");
		req.u.rollback.cursor = p->next_cursor;
		req.u.rollback.last_command_id =
		    p->next_cursor ? p->last_command_id : 0;
		if (a->execute && p->next_cursor)
			req.u.rollback.rollback_id = tot.rollback_id;
		fbx_console_rep_free(&one);
		if (req.u.rollback.cursor == 0)
			break;
	}
	if (st != EX_OK) {
		free(tot.rows);
		free(tot.comp_ids);
		free(tot.bo_rows);
		free(tot.orgs);
		return st;
	}
	tot.executed = a->execute;
	if (tot.commands == 0 && tot.before_onset == 0 &&
	    a->resume_cursor == 0 && a->continue_rbid == 0 && slice > 1) {
		/* a filter that selected nothing over several slices */
		free(tot.rows);
		free(tot.comp_ids);
		free(tot.bo_rows);
		free(tot.orgs);
		if (quiet && eng_err != NULL) {
			*eng_err = FBX_ENOT_FOUND;
			return exit_status(FBX_ENOT_FOUND);
		}
		return fail(FBX_ENOT_FOUND, "nothing to roll back: the "
					    "selection matches no command in "
					    "organisation '%s'",
		    ctl->org);
	}
	memset(rep, 0, sizeof(*rep));
	rep->kind = FBX_CREQ_ROLLBACK;
	rep->u.rollback = tot;
	return EX_OK;
}

static void
rb_sum_row(struct table *t, const char *org, const uint64_t *v, int exec,
    const char *rbid, const char *comp)
{
	char s[FBX_RB_COUNT + 1][24];

	for (int k = 0; k <= FBX_RB_COUNT; k++)
		snprintf(s[k], sizeof(s[k]), "%" PRIu64, v[k]);
	/* v[0] holds the command count */
	if (exec)
		table_row(t, org, s[0], s[FBX_RB_CANCEL], s[FBX_RB_COMPENSATE],
		    s[FBX_RB_IRREVERSIBLE], s[FBX_RB_CHANGED],
		    s[FBX_RB_NOTHING], s[FBX_RB_DONE_BEFORE], rbid, comp);
	else
		table_row(t, org, s[0], s[FBX_RB_CANCEL], s[FBX_RB_COMPENSATE],
		    s[FBX_RB_IRREVERSIBLE], s[FBX_RB_CHANGED],
		    s[FBX_RB_NOTHING], s[FBX_RB_DONE_BEFORE]);
}

static int
cmd_rollback(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "command", required_argument, NULL, OPT_COMMAND },
		{ "incident", required_argument, NULL, OPT_INCIDENT },
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "execute", no_argument, NULL, OPT_EXECUTE },
		{ "include-changed", no_argument, NULL, OPT_INCLUDE_CHANGED },
		{ "rows", required_argument, NULL, OPT_ROWS },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "wait", optional_argument, NULL, OPT_WAIT },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ "resume", required_argument, NULL, OPT_RESUME },
		{ "include-before-onset", no_argument, NULL,
		    OPT_INCLUDE_BEFORE_ONSET },
		{ "continue", required_argument, NULL, OPT_CONTINUE },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	struct orglist ol;
	struct rb_tracks tr;
	struct table t;
	char saved[FBX_ID_MAX + 1];
	uint64_t tot[FBX_RB_COUNT + 1];
	int64_t t0 = mono_ms(), t_journaled = 0;
	size_t found = 0, failed = 0;
	int st, worst = EX_OK;

	memset(&a, 0, sizeof(a));
	memset(&ol, 0, sizeof(ol));
	memset(&tr, 0, sizeof(tr));
	memset(&t, 0, sizeof(t));
	memset(tot, 0, sizeof(tot));
	a.rows = 20;
	a.wait_s = CTL_DEFAULT_WAIT_S;
	strcpy(saved, ctl->org);
	st = parse_cmd_opts(ctl, argc, argv, lo, rollback_usage, ops_opt, &a);
	if (st < 0) {
		st = -st - 1;
		goto out;
	}
	if (st < argc) {
		st = usage_err("unexpected argument '%s'", argv[st]);
		goto out;
	}
	if ((st = sel_check("rollback", &a)) != EX_OK)
		goto out;
	if (a.wait && !a.execute) {
		st = usage_err("--wait goes with --execute");
		goto out;
	}
	/* the global incident is one run in the engine: --all-orgs with it
	 * says the same thing */
	if (a.global && a.incident[0] != '\0')
		a.all_orgs = 0;
	if (a.all_orgs && (a.resume_cursor != 0 || a.continue_rbid != 0)) {
		st = usage_err("--resume and --continue go on with one run; "
			       "not with --all-orgs (a global incident is one "
			       "run: --incident R --global)");
		goto out;
	}
	if (a.continue_rbid != 0 && (!a.execute || a.resume_cursor != 0)) {
		st = usage_err("--continue goes with --execute, not with "
			       "--resume");
		goto out;
	}
	if (a.all_orgs && a.have_rows && a.rows > 0) {
		st = usage_err("--rows prints one organisation's plan; not with "
			       "--all-orgs");
		goto out;
	}

	if (!a.all_orgs) {
		struct fbx_console_rep rep;
		if ((st = need_org(ctl)) != EX_OK)
			goto out;
		st = rb_run(ctl, &a, 0, &rep, NULL);
		if (st != EX_OK)
			goto out;
		t_journaled = mono_ms() - t0;
		if (ctl->json)
			ctl_json_print(
			    ctl_json_rb_plan(ctl->org, &rep.u.rollback, 1));
		else if (rep.u.rollback.global)
			rb_print_global(ctl, &a, &rep.u.rollback);
		else
			rb_print_one(ctl, &a, &rep.u.rollback);
		for (size_t i = 0; i < rep.u.rollback.ncomp && st == EX_OK;
		    i++)
			if (rb_track_add(&tr,
			        rb_comp_org(&rep.u.rollback, i, ctl->org),
			        rep.u.rollback.comp_ids[i]) != FBX_OK)
				st = fail(FBX_ENOMEM, NULL);
		fbx_console_rep_free(&rep);
		if (st != EX_OK)
			goto out;
		found = 1;
	} else {
		st = list_orgs(ctl, &ol);
		if (st != EX_OK)
			goto out;
		t.ncol = a.execute ? 10 : 8;
		if (a.execute)
			table_row(&t, "ORG", "COMMANDS", "CANCEL", "COMPENSATE",
			    "IRREVERSIBLE", "CHANGED", "NOTHING", "COMP_BEFORE",
			    "ROLLBACK", "COMPENSATING");
		else
			table_row(&t, "ORG", "COMMANDS", "CANCEL", "COMPENSATE",
			    "IRREVERSIBLE", "CHANGED", "NOTHING",
			    "COMP_BEFORE");
		for (size_t i = 0; i < ol.n; i++) {
			struct fbx_console_rep rep;
			const struct fbx_rb_plan *p = &rep.u.rollback;
			uint64_t v[FBX_RB_COUNT + 1];
			char rbid[24], comp[64];
			int eerr = FBX_OK;

			strcpy(ctl->org, ol.orgs[i]);
			st = rb_run(ctl, &a, 1, &rep, &eerr);
			if (st != EX_OK && eerr == FBX_OK)
				goto out; /* the engine is gone: stop */
			memset(v, 0, sizeof(v));
			if (eerr == FBX_ENOT_FOUND) {
				/* nothing of the selection here */
				if (ctl->json) {
					ctl_json_print(json_pack("{s:o*,s:b}",
					    "org", fbx_json_str(ol.orgs[i]),
					    "nothing", 1));
				} else {
					rb_sum_row(&t, ol.orgs[i], v,
					    a.execute, "-", "-");
				}
				continue;
			}
			if (eerr != FBX_OK) {
				char e[80];
				failed++;
				if (worst == EX_OK)
					worst = st;
				fprintf(stderr, "fuseboxctl: %s: %s (%d): %s\n",
				    ol.orgs[i], fbx_errname(eerr), eerr,
				    ctl->errmsg);
				if (ctl->json) {
					ctl_json_print(json_pack(
					    "{s:o*,s:o*,s:o*}", "org",
					    fbx_json_str(ol.orgs[i]), "error",
					    fbx_json_str(fbx_errname(eerr)),
					    "message",
					    fbx_json_str(ctl->errmsg)));
				} else {
					snprintf(e, sizeof(e), "ERROR %s",
					    fbx_errname(eerr));
					table_row(&t, ol.orgs[i], e, "", "", "",
					    "", "", "", "", "");
				}
				continue;
			}
			found++;
			v[0] = p->commands;
			for (int k = 1; k < FBX_RB_COUNT; k++)
				v[k] = p->per_action[k];
			for (int k = 0; k < FBX_RB_COUNT; k++)
				tot[k] += v[k];
			tot[FBX_RB_COUNT] += p->ncomp;
			snprintf(rbid, sizeof(rbid), "%" PRIu64,
			    p->rollback_id);
			comp[0] = '\0';
			for (size_t k = 0, n = 0; k < p->ncomp; k++) {
				int w;
				if (n + 24 >= sizeof(comp)) {
					snprintf(comp + n, sizeof(comp) - n,
					    ",...");
					break;
				}
				w = snprintf(comp + n, sizeof(comp) - n,
				    "%s%" PRIu64, k ? "," : "", p->comp_ids[k]);
				if (w > 0)
					n += (size_t)w;
			}
			for (size_t k = 0; k < p->ncomp && st == EX_OK; k++)
				if (rb_track_add(&tr, ol.orgs[i],
				        p->comp_ids[k]) != FBX_OK)
					st = fail(FBX_ENOMEM, NULL);
			if (ctl->json)
				ctl_json_print(
				    ctl_json_rb_plan(ol.orgs[i], p, 0));
			else
				rb_sum_row(&t, ol.orgs[i], v, a.execute,
				    p->executed ? rbid : "-",
				    p->ncomp ? comp : "-");
			fbx_console_rep_free(&rep);
			if (st != EX_OK)
				goto out;
		}
		st = EX_OK;
		t_journaled = mono_ms() - t0;
		if (ctl->json) {
			json_t *o = json_object(), *ac = json_object();
			for (int k = 1; ac != NULL && k < FBX_RB_COUNT; k++)
				CJ_INT(ac, ctl_rb_action_key[k], tot[k]);
			if (o != NULL) {
				CJ_STR(o, "org", "TOTAL");
				CJ_INT(o, "organisations", ol.n);
				CJ_INT(o, "with_commands", found);
				CJ_INT(o, "failed", failed);
				CJ_BOOL(o, "executed", a.execute);
				CJ_INT(o, "commands", tot[0]);
				CJ_SET(o, "actions", ac);
				ac = NULL;
				CJ_INT(o, "compensating_commands",
				    tot[FBX_RB_COUNT]);
				CJ_INT(o, "elapsed_ms", t_journaled);
			}
			json_decref(ac);
			ctl_json_print(o);
		} else {
			char sel[320], n[24];
			sel_str(&a, sel, sizeof(sel));
			if (a.execute)
				printf("rollback executed in %zu "
				       "organisations by %s\n",
				    ol.n, ctl_who(ctl));
			else
				printf("rollback plan for %zu organisations "
				       "(dry run, nothing changed; --execute "
				       "carries it out)\n",
				    ol.n);
			printf("selected: %s\n\n", sel);
			snprintf(n, sizeof(n), "%" PRIu64 " in all",
			    tot[FBX_RB_COUNT]);
			rb_sum_row(&t, "TOTAL", tot, a.execute, "", n);
			table_print(&t);
			printf("\n%zu of %zu organisations had commands to "
			       "roll back%s\n",
			    found, ol.n,
			    failed ? "; some failed (see the errors above)"
			           : "");
		}
		if (found == 0 && failed == 0) {
			st = fail(FBX_ENOT_FOUND,
			    "nothing to roll back in any of %zu organisations",
			    ol.n);
			goto out;
		}
	}
	if (a.execute && !ctl->json)
		printf("\njournaled: %zu compensating commands, %" PRId64
		       " ms after the rollback was issued\n",
		    tr.n, t_journaled);
	if (a.execute && a.wait) {
		int64_t t_settled;
		st = rb_wait(ctl, &tr, a.wait_s);
		if (st != EX_OK)
			goto out;
		t_settled = mono_ms() - t0;
		rb_print_wait(ctl, &tr, t_journaled, t_settled);
	} else if (a.execute && !ctl->json && tr.n > 0 && a.all_orgs) {
		printf("follow them: fuseboxctl -o %s show %" PRIu64
		       " (or rerun with --wait)\n",
		    tr.v[0].org, tr.v[0].id);
	}
	st = worst;
out:
	strcpy(ctl->org, saved);
	table_free(&t);
	orglist_free(&ol);
	free(tr.v);
	free(a.ids);
	return st;
}

/* ---- replay ---- */

static const char *const replay_usage =
    "usage: fuseboxctl replay --command ID[,ID...] [OPTIONS]\n"
    "       fuseboxctl replay (--incident REASON [--global] | [--origin O]\n"
    "                         [--reason R] [--type T] [--group G]\n"
    "                         [--since TIME] [--until TIME]) [OPTIONS]\n"
    "\n"
    "Send deliveries again with their delivery ids, for a gateway that lost\n"
    "what it received (devices answer a repeated id once). By default the\n"
    "deliveries sent or accepted without an outcome; terminal ones\n"
    "(succeeded, failed, expired, cancelled) are counted and skipped\n"
    "unless --force. Without --execute it only counts. Selection as in\n"
    "'rollback' (compensating commands are named with --command).\n"
    "\n"
    "  --state S       only deliveries in state S (sent, accepted,\n"
    "                  succeeded, failed, expired, cancelled)\n"
    "  --force         also resend terminal deliveries; their new outcome\n"
    "                  is recorded\n"
    "  --execute       resend (recovery priority)\n"
    "  --note TEXT     why (kept in the audit record)\n"
    "  --all-orgs      the same replay in every organisation\n"
    "  --resume C:L    go on from where a run stopped (the line printed\n"
    "                  on stderr; one organisation only)\n"
    "Runs in slices like rollback; counts are of the whole run.\n";

/* rp_run - a replay in ctl->org, slice after slice; rep gets the run's
 * totals. As rb_run. */
static int
rp_run(struct ctl *ctl, const struct ops_args *a, int quiet,
    struct fbx_console_rep *rep, int *eng_err)
{
	struct fbx_console_req req;
	struct fbx_console_rep one;
	struct fbx_replay_result tot;
	unsigned slice = 0;
	int st;

	memset(&tot, 0, sizeof(tot));
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_REPLAY;
	sel_build(a, &req.u.replay.sel);
	req.u.replay.state = a->state;
	req.u.replay.force = a->force;
	req.u.replay.execute = a->execute;
	strcpy(req.u.replay.note, a->note);
	req.u.replay.sliced = 1;
	req.u.replay.cursor = a->resume_cursor;
	req.u.replay.last_command_id = a->resume_last;
	for (;;) {
		const struct fbx_replay_result *p = &one.u.replay;
		st = call_ex(ctl, &req, &one, quiet ? eng_err : NULL);
		if (st != EX_OK) {
			fbx_console_rep_free(&one);
			if (req.u.replay.cursor != 0)
				fprintf(stderr,
				    "fuseboxctl: %s: replay stopped after %u "
				    "slices; what they resent stays resent. "
				    "Resume: --resume %" PRIu64 ":%" PRIu64
				    "\n",
				    ctl->org, slice, req.u.replay.cursor,
				    req.u.replay.last_command_id);
			return st;
		}
		slice++;
		tot.matched += p->matched;
		tot.resent += p->resent;
		tot.skipped_terminal += p->skipped_terminal;
		tot.commands += p->commands;
		tot.looked_at += p->looked_at;
		tot.last_command_id = p->last_command_id;
		if (p->next_cursor != 0 || slice > 1)
			fprintf(stderr,
			    "fuseboxctl: %s: replay slice %u: %" PRIu32
			    " commands, %" PRIu32 " matched, %" PRIu32
			    " resent (%" PRIu32 " so far); %s %" PRIu64
			    ":%" PRIu64 "\n",
			    ctl->org, slice, p->commands, p->matched,
			    p->resent, tot.resent,
			    p->next_cursor ? "next" : "done", p->next_cursor,
			    p->last_command_id);
		req.u.replay.cursor = p->next_cursor;
		req.u.replay.last_command_id =
		    p->next_cursor ? p->last_command_id : 0;
		fbx_console_rep_free(&one);
		if (req.u.replay.cursor == 0)
			break;
	}
	memset(rep, 0, sizeof(*rep));
	rep->kind = FBX_CREQ_REPLAY;
	rep->u.replay = tot;
	return EX_OK;
}

/* rp_would - what a dry run would resend: matched and not skipped, and
 * not queued or pending (those are on their way already). */
static uint32_t
rp_would(const struct ops_args *a, const struct fbx_replay_result *r)
{
	if (a->state == FBX_D_QUEUED || a->state == FBX_D_PENDING)
		return 0;
	return r->matched - r->skipped_terminal;
}

static int
cmd_replay(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "command", required_argument, NULL, OPT_COMMAND },
		{ "incident", required_argument, NULL, OPT_INCIDENT },
		{ "global", no_argument, NULL, OPT_GLOBAL },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "type", required_argument, NULL, OPT_TYPE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "state", required_argument, NULL, OPT_STATE },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "execute", no_argument, NULL, OPT_EXECUTE },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ "resume", required_argument, NULL, OPT_RESUME },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	struct orglist ol;
	struct table t = { .ncol = 4 };
	struct fbx_replay_result tot;
	char saved[FBX_ID_MAX + 1];
	size_t found = 0, failed = 0;
	int st, worst = EX_OK;

	memset(&a, 0, sizeof(a));
	memset(&ol, 0, sizeof(ol));
	memset(&tot, 0, sizeof(tot));
	strcpy(saved, ctl->org);
	st = parse_cmd_opts(ctl, argc, argv, lo, replay_usage, ops_opt, &a);
	if (st < 0) {
		st = -st - 1;
		goto out;
	}
	if (st < argc) {
		st = usage_err("unexpected argument '%s'", argv[st]);
		goto out;
	}
	if ((st = sel_check("replay", &a)) != EX_OK)
		goto out;
	if (a.all_orgs && a.resume_cursor != 0) {
		st = usage_err("--resume goes on in one organisation; not "
			       "with --all-orgs");
		goto out;
	}
	if (!a.all_orgs) {
		struct fbx_console_rep rep;
		const struct fbx_replay_result *r = &rep.u.replay;
		if ((st = need_org(ctl)) != EX_OK)
			goto out;
		st = rp_run(ctl, &a, 0, &rep, NULL);
		if (st != EX_OK)
			goto out;
		if (ctl->json) {
			ctl_json_print(json_pack("{s:o*,s:b,s:I,s:I,s:I,s:I}",
			    "org", fbx_json_str(ctl->org), "executed",
			    a.execute ? 1 : 0, "matched",
			    (json_int_t)r->matched, "resent",
			    (json_int_t)r->resent, "would_resend",
			    (json_int_t)(a.execute ? 0 : rp_would(&a, r)),
			    "skipped_terminal",
			    (json_int_t)r->skipped_terminal));
		} else {
			struct table k = { .ncol = 2 };
			char m[24], rs[24], sk[24];
			snprintf(m, sizeof(m), "%" PRIu32, r->matched);
			snprintf(rs, sizeof(rs), "%" PRIu32,
			    a.execute ? r->resent : rp_would(&a, r));
			snprintf(sk, sizeof(sk), "%" PRIu32,
			    r->skipped_terminal);
			if (a.execute)
				printf("replay executed in %s\n\n", ctl->org);
			else
				printf("replay plan for %s (dry run, nothing "
				       "sent; --execute resends)\n\n",
				    ctl->org);
			table_row(&k, "matched", m);
			table_row(&k, a.execute ? "resent" : "would resend", rs);
			table_row(&k, "skipped (terminal)", sk);
			table_print(&k);
			table_free(&k);
			if (r->skipped_terminal > 0 && !a.force)
				printf("\nterminal deliveries are resent only "
				       "with --force\n");
		}
		fbx_console_rep_free(&rep);
		goto out;
	}
	st = list_orgs(ctl, &ol);
	if (st != EX_OK)
		goto out;
	table_row(&t, "ORG", "MATCHED", a.execute ? "RESENT" : "WOULD_RESEND",
	    "SKIPPED_TERMINAL");
	for (size_t i = 0; i < ol.n; i++) {
		struct fbx_console_rep rep;
		const struct fbx_replay_result *r = &rep.u.replay;
		char m[24], rs[24], sk[24];
		uint32_t res;
		int eerr = FBX_OK;

		strcpy(ctl->org, ol.orgs[i]);
		st = rp_run(ctl, &a, 1, &rep, &eerr);
		if (st != EX_OK && eerr == FBX_OK)
			goto out;
		if (eerr == FBX_ENOT_FOUND) {
			table_row(&t, ol.orgs[i], "0", "0", "0");
			continue;
		}
		if (eerr != FBX_OK) {
			failed++;
			if (worst == EX_OK)
				worst = st;
			fprintf(stderr, "fuseboxctl: %s: %s (%d): %s\n",
			    ol.orgs[i], fbx_errname(eerr), eerr, ctl->errmsg);
			table_row(&t, ol.orgs[i], "ERROR", fbx_errname(eerr),
			    "");
			continue;
		}
		found++;
		res = a.execute ? r->resent : rp_would(&a, r);
		tot.matched += r->matched;
		tot.resent += res;
		tot.skipped_terminal += r->skipped_terminal;
		if (ctl->json) {
			ctl_json_print(json_pack("{s:o*,s:b,s:I,s:I,s:I}",
			    "org", fbx_json_str(ol.orgs[i]), "executed",
			    a.execute ? 1 : 0, "matched",
			    (json_int_t)r->matched,
			    a.execute ? "resent" : "would_resend",
			    (json_int_t)res, "skipped_terminal",
			    (json_int_t)r->skipped_terminal));
		} else {
			snprintf(m, sizeof(m), "%" PRIu32, r->matched);
			snprintf(rs, sizeof(rs), "%" PRIu32, res);
			snprintf(sk, sizeof(sk), "%" PRIu32,
			    r->skipped_terminal);
			table_row(&t, ol.orgs[i], m, rs, sk);
		}
		fbx_console_rep_free(&rep);
	}
	st = EX_OK;
	if (ctl->json) {
		ctl_json_print(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I}", "org",
		    "TOTAL", "executed", a.execute ? 1 : 0, "matched",
		    (json_int_t)tot.matched,
		    a.execute ? "resent" : "would_resend",
		    (json_int_t)tot.resent, "skipped_terminal",
		    (json_int_t)tot.skipped_terminal, "failed_orgs",
		    (json_int_t)failed));
	} else {
		char m[24], rs[24], sk[24];
		snprintf(m, sizeof(m), "%" PRIu32, tot.matched);
		snprintf(rs, sizeof(rs), "%" PRIu32, tot.resent);
		snprintf(sk, sizeof(sk), "%" PRIu32, tot.skipped_terminal);
		table_row(&t, "TOTAL", m, rs, sk);
		if (a.execute)
			printf("replay executed in %zu organisations\n\n",
			    ol.n);
		else
			printf("replay plan for %zu organisations (dry run, "
			       "nothing sent; --execute resends)\n\n",
			    ol.n);
		table_print(&t);
	}
	if (found == 0 && failed == 0)
		st = fail(FBX_ENOT_FOUND, "nothing matched in any of %zu "
					  "organisations",
		    ol.n);
	else
		st = worst;
out:
	strcpy(ctl->org, saved);
	table_free(&t);
	orglist_free(&ol);
	free(a.ids);
	return st;
}

/* ---- export ---- */

static const char *const export_usage =
    "usage: fuseboxctl export [--since TIME] [--until TIME] [--output FILE]\n"
    "                         [--all-orgs] [--page-bytes N]\n"
    "\n"
    "Write the organisation's record as JSON Lines: each command created\n"
    "in the window ('kind':'command') followed by its deliveries with\n"
    "their state history ('kind':'delivery'), then its audit records\n"
    "('kind':'audit', hash-chained). Pages are fetched until the end; a\n"
    "count of lines per kind goes to stderr.\n"
    "\n"
    "  --since TIME    created at or after TIME (epoch ms, now, -1h, -7d)\n"
    "  --until TIME    created before TIME\n"
    "  --output FILE   write here (default stdout); the file is replaced\n"
    "                  only when the export is complete\n"
    "  --all-orgs      every organisation, one after the other\n"
    "  --page-bytes N  size of one page the engine sends (default 32768)\n"
    "\n"
    "The export is checked: it must hold every command the organisation\n"
    "had in the window when it started, and each command all its\n"
    "deliveries. A shortfall is reported on stderr, the output file is\n"
    "not written, and the exit status is 70.\n";

struct exp_stats {
	const char *kinds[8];
	uint64_t counts[8];
	size_t nkinds;
	uint64_t lines, bytes;
	/* completeness: the command being read */
	uint64_t cur_cmd, cur_want, cur_seen;
	fbx_id cur_org;
	uint64_t short_cmds, short_dlv;
	uint64_t org_cmds; /* command lines of the current organisation */
	uint64_t missing_cmds;
	uint64_t bad_lines; /* not a JSON object with a "kind" */
};

/* jline_u64 - the unsigned integer member key of a parsed line, 0 when
 * absent or not an integer */
static uint64_t
jline_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0
	    ? (uint64_t)json_integer_value(v)
	    : 0;
}

static void
exp_close_cmd(struct exp_stats *x)
{
	if (x->cur_cmd != 0 && x->cur_seen < x->cur_want) {
		x->short_cmds++;
		x->short_dlv += x->cur_want - x->cur_seen;
		fprintf(stderr,
		    "fuseboxctl: export: %s command %" PRIu64 " has %" PRIu64
		    " deliveries, %" PRIu64 " exported\n",
		    x->cur_org, x->cur_cmd, x->cur_want, x->cur_seen);
	}
	x->cur_cmd = 0;
}

/* exp_count - tally one page's lines by kind, and each command's
 * delivery lines against its count. */
static void
exp_count(struct exp_stats *x, const char *p, size_t len)
{
	static const char *const known[] = { "command", "delivery", "audit" };
	const char *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		/* each line is one JSON object, read by jansson: a note or
		 * a parameter holding "kind": cannot be taken for a field */
		json_t *o = ll > 0 ? json_loadb(p, ll, 0, NULL) : NULL;
		const char *k = json_string_value(json_object_get(o, "kind"));
		size_t i;

		x->lines++;
		if (o != NULL && !json_is_object(o))
			k = NULL;
		if (k != NULL) {
			const char *name = "other";
			for (size_t j = 0; j < 3; j++)
				if (strcmp(known[j], k) == 0)
					name = known[j];
			for (i = 0; i < x->nkinds; i++)
				if (strcmp(x->kinds[i], name) == 0)
					break;
			if (i == x->nkinds && x->nkinds < 8)
				x->kinds[x->nkinds++] = name;
			if (i < x->nkinds)
				x->counts[i]++;
			if (strcmp(k, "command") == 0) {
				exp_close_cmd(x);
				x->org_cmds++;
				x->cur_cmd = jline_u64(o, "command");
				x->cur_want = jline_u64(o, "deliveries");
				x->cur_seen = 0;
			} else if (strcmp(k, "delivery") == 0) {
				if (jline_u64(o, "command") == x->cur_cmd)
					x->cur_seen++;
			} else {
				exp_close_cmd(x);
			}
		} else if (ll > 0) {
			x->bad_lines++;
		}
		json_decref(o);
		p += ll + (nl ? 1 : 0);
	}
}

/* count_commands - the organisation's commands in the window, for the
 * completeness check of an export. */
static int
count_commands(struct ctl *ctl, const struct ops_args *a, uint64_t *n)
{
	uint64_t after = 0;

	*n = 0;
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.since_ms = a->since;
		req.u.list.until_ms = a->until;
		req.u.list.after = after;
		req.u.list.limit = FBX_PAGE_MAX;
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		*n += rep.u.commands.n;
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			return EX_OK;
	}
}

/* export_org - every page of one organisation into f. The commands are
 * counted first: an export holds at least those (more if some are
 * created meanwhile), and each command all its deliveries. */
static int
export_org(struct ctl *ctl, const struct ops_args *a, FILE *f,
    struct exp_stats *x)
{
	uint64_t cursor = 0, want = 0;
	int st0;

	snprintf(x->cur_org, sizeof(x->cur_org), "%s", ctl->org);
	st0 = count_commands(ctl, a, &want);
	if (st0 != EX_OK)
		return st0;
	x->org_cmds = 0;
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_EXPORT;
		req.u.export_.since_ms = a->since;
		req.u.export_.until_ms = a->until;
		req.u.export_.cursor = cursor;
		req.u.export_.max_bytes = (uint32_t)a->page_bytes;
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		if (rep.u.export_.len > 0 &&
		    fwrite(rep.u.export_.jsonl, 1, rep.u.export_.len, f) !=
		        rep.u.export_.len) {
			fbx_console_rep_free(&rep);
			return fail(FBX_EIO, "cannot write the export: %s",
			    strerror(errno));
		}
		x->bytes += rep.u.export_.len;
		exp_count(x, rep.u.export_.jsonl, rep.u.export_.len);
		cursor = rep.u.export_.next_cursor;
		fbx_console_rep_free(&rep);
		if (cursor == 0)
			break;
	}
	exp_close_cmd(x);
	if (x->org_cmds < want) {
		x->missing_cmds += want - x->org_cmds;
		fprintf(stderr,
		    "fuseboxctl: export: %s has %" PRIu64
		    " commands in the window, %" PRIu64 " exported\n",
		    ctl->org, want, x->org_cmds);
	}
	return EX_OK;
}

static int
cmd_export(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "all-orgs", no_argument, NULL, OPT_ALL_ORGS },
		{ "page-bytes", required_argument, NULL, OPT_PAGE_BYTES },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	struct orglist ol;
	struct exp_stats x;
	char saved[FBX_ID_MAX + 1], tmp[4096];
	FILE *f = stdout;
	int st, incomplete = 0;

	memset(&a, 0, sizeof(a));
	memset(&ol, 0, sizeof(ol));
	memset(&x, 0, sizeof(x));
	tmp[0] = '\0';
	strcpy(saved, ctl->org);
	a.page_bytes = CTL_EXPORT_PAGE;
	st = parse_cmd_opts(ctl, argc, argv, lo, export_usage, ops_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	if (a.since && a.until && a.until <= a.since)
		return usage_err("--until is not after --since");
	if (!a.all_orgs && (st = need_org(ctl)) != EX_OK)
		return st;
	if (a.all_orgs) {
		st = list_orgs(ctl, &ol);
		if (st != EX_OK)
			return st;
	}
	if (a.output != NULL && strcmp(a.output, "-") != 0) {
		if (snprintf(tmp, sizeof(tmp), "%s.tmp", a.output) >=
		    (int)sizeof(tmp)) {
			st = usage_err("--output path too long");
			goto out;
		}
		f = fopen(tmp, "w");
		if (f == NULL) {
			st = fail(FBX_EIO, "cannot create %s: %s", tmp,
			    strerror(errno));
			tmp[0] = '\0';
			goto out;
		}
	}
	if (!a.all_orgs) {
		st = export_org(ctl, &a, f, &x);
	} else {
		for (size_t i = 0; i < ol.n; i++) {
			strcpy(ctl->org, ol.orgs[i]);
			st = export_org(ctl, &a, f, &x);
			if (st != EX_OK)
				break;
		}
	}
	if (fflush(f) != 0 && st == EX_OK)
		st = fail(FBX_EIO, "cannot write the export: %s",
		    strerror(errno));
	if (st == EX_OK &&
	    (x.short_cmds > 0 || x.missing_cmds > 0 || x.bad_lines > 0))
		incomplete = 1;
	if (f != stdout) {
		if (fclose(f) != 0 && st == EX_OK)
			st = fail(FBX_EIO, "cannot write %s: %s", tmp,
			    strerror(errno));
		f = stdout;
		if (st == EX_OK && !incomplete && rename(tmp, a.output) != 0)
			st = fail(FBX_EIO, "cannot rename %s: %s", tmp,
			    strerror(errno));
		if (st == EX_OK && !incomplete)
			tmp[0] = '\0';
	}
	if (st != EX_OK)
		goto out;
	fprintf(stderr, "export: %" PRIu64 " lines (%" PRIu64 " bytes) of %s%s",
	    x.lines, x.bytes, a.all_orgs ? "every organisation" : ctl->org,
	    a.output && strcmp(a.output, "-") != 0 ? " to " : "");
	if (a.output && strcmp(a.output, "-") != 0)
		fputs(a.output, stderr);
	fputc(':', stderr);
	for (size_t i = 0; i < x.nkinds; i++)
		fprintf(stderr, " %s=%" PRIu64, x.kinds[i], x.counts[i]);
	if (a.all_orgs)
		fprintf(stderr, " (%zu organisations)", ol.n);
	fputc('\n', stderr);
	if (x.bad_lines > 0)
		st = fail(FBX_ECORRUPT,
		    "export damaged: %" PRIu64 " lines are not JSON objects "
		    "with a \"kind\"",
		    x.bad_lines);
	else if (x.short_cmds > 0 || x.missing_cmds > 0)
		st = fail(FBX_ECORRUPT,
		    "export incomplete: %" PRIu64 " commands and %" PRIu64
		    " deliveries of %" PRIu64 " commands missing (see above)",
		    x.missing_cmds, x.short_dlv, x.short_cmds);
out:
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	strcpy(ctl->org, saved);
	orglist_free(&ol);
	return st;
}

/* ---- audit ---- */

static const char *const audit_usage =
    "usage: fuseboxctl audit list [--actor A] [--action PREFIX]\n"
    "                             [--since TIME] [--until TIME]\n"
    "                             [--limit N] [--after SEQ]\n"
    "       fuseboxctl audit verify [--full]\n"
    "\n"
    "The audit log: every operator action (submit, approve, breaker trip\n"
    "and reset, limits, rollouts, rollback, replay) as a hash chain.\n"
    "\n"
    "  list      the organisation's records, oldest first\n"
    "    --actor A         only records of operator A (-a sets who acts)\n"
    "    --action PREFIX   only actions starting with PREFIX ('breaker'\n"
    "                      matches breaker.trip and breaker.reset)\n"
    "    --since/--until   time window (epoch ms, now, -1h, -7d)\n"
    "    --limit N         records to print (default 100)\n"
    "    --after SEQ       start after sequence SEQ\n"
    "  verify    check the chain (one chain for every organisation) in\n"
    "            slices of up to 50,000 records, one request each, until\n"
    "            done: what is new since the last verify (the engine keeps\n"
    "            a checkpoint); prints 'intact: N new records (verified up\n"
    "            to S)' (exit 0) or 'BROKEN at record S: why' (exit 65)\n"
    "    --full            every record from the chain's start (after the\n"
    "                      records retention pruned): 'intact: N records'\n";

static int
cmd_audit_list(struct ctl *ctl, const struct ops_args *a)
{
	struct table t = { .ncol = 6 };
	uint64_t after = a->after, shown = 0, limit = a->limit ? a->limit : 100;
	json_t *recs = NULL;
	int st = EX_OK;

	if (ctl->json) {
		if ((recs = json_array()) == NULL)
			return fail(FBX_ENOMEM, NULL);
	} else {
		table_row(&t, "SEQ", "TIME (UTC)", "ACTOR", "ACTION", "NOTE",
		    "PARAMS");
	}
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		uint64_t want = limit - shown;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		strcpy(req.u.audit_list.actor, a->actor);
		strcpy(req.u.audit_list.action, a->action);
		req.u.audit_list.since_ms = a->since;
		req.u.audit_list.until_ms = a->until;
		req.u.audit_list.after = after;
		req.u.audit_list.limit = (uint32_t)(want > 1000 ? 1000 : want);
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			break;
		for (size_t i = 0; i < rep.u.audit.n; i++) {
			const struct fbx_audit_rec *r = &rep.u.audit.r[i];
			if (ctl->json) {
				json_t *o = json_object();
				if (o != NULL) {
					CJ_INT(o, "seq", r->seq);
					CJ_INT(o, "at_ms", r->at_ms);
					CJ_STR(o, "org", r->org);
					CJ_STR(o, "actor", r->actor);
					CJ_STR(o, "action", r->action);
					CJ_STR(o, "note", r->note);
					/* the engine's JSON text, as a value
					 * (a string if it does not parse) */
					CJ_SET(o, "params",
					    fbx_json_params(r->params));
					CJ_STR(o, "hash", r->hash);
					CJ_STR(o, "prev", r->prev);
				}
				json_array_append_new(recs, o);
			} else {
				char seq[24], at[40];
				snprintf(seq, sizeof(seq), "%" PRIu64, r->seq);
				fmt_time(r->at_ms, at, sizeof(at));
				table_row(&t, seq, at, r->actor, r->action,
				    r->note[0] ? r->note : "-",
				    r->params[0] ? r->params : "-");
			}
			shown++;
			after = r->seq;
		}
		after = rep.u.audit.next_after ? rep.u.audit.next_after : 0;
		fbx_console_rep_free(&rep);
		if (after == 0 || shown >= limit)
			break;
	}
	if (st == EX_OK) {
		if (ctl->json) {
			ctl_json_print(json_pack("{s:o,s:I,s:I}", "records",
			    recs, "shown", (json_int_t)shown, "next_after",
			    (json_int_t)after));
			recs = NULL;
		} else {
			if (shown > 0)
				table_print(&t);
			printf("%s%" PRIu64 " record%s of %s%s\n",
			    shown ? "\n" : "", shown, shown == 1 ? "" : "s",
			    ctl->org, shown == 0 ? " (none matched)" : "");
			if (after != 0)
				printf("more: fuseboxctl audit list --after "
				       "%" PRIu64 "\n",
				    after);
		}
	}
	/* on an error the error line says it: no partial object */
	json_decref(recs);
	table_free(&t);
	return st;
}

/* cmd_audit_verify - one request per slice until the engine says the
 * check is complete; progress on stderr between slices. */
static int
cmd_audit_verify(struct ctl *ctl, int full)
{
	uint64_t total = 0, slices = 0, after = 0;
	char after_hash[65] = "";
	struct fbx_console_rep last;
	int st = EX_OK, have = 0;

	memset(&last, 0, sizeof(last));
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_VERIFY;
		req.u.audit_verify.incremental = !full;
		if (full && after != 0) {
			req.u.audit_verify.after_seq = after;
			snprintf(req.u.audit_verify.after_hash,
			    sizeof(req.u.audit_verify.after_hash), "%s",
			    after_hash);
		}
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			break;
		slices++;
		total += rep.u.verify.records;
		last.u.verify = rep.u.verify;
		have = 1;
		fbx_console_rep_free(&rep);
		if (last.u.verify.complete)
			break;
		if (last.u.verify.verified_seq <= after && slices > 1) {
			fprintf(stderr, "audit verify: no progress at record "
			                "%" PRIu64 "\n",
			    after);
			st = EX_SOFTWARE;
			break;
		}
		after = last.u.verify.verified_seq;
		snprintf(after_hash, sizeof(after_hash), "%s",
		    last.u.verify.verified_hash);
		if (!ctl->json)
			fprintf(stderr, "verified up to %" PRIu64 " of %" PRIu64
			                " (%" PRIu64 " records checked)\n",
			    last.u.verify.verified_seq, last.u.verify.head_seq,
			    total);
	}
	if (st != EX_OK || !have)
		return st;
	if (ctl->json) {
		json_t *o = json_object();
		if (o != NULL) {
			CJ_BOOL(o, "intact", last.u.verify.broken_at == 0);
			CJ_STR(o, "mode", full ? "full" : "incremental");
			CJ_INT(o, "records", total);
			CJ_INT(o, "slices", slices);
			CJ_INT(o, "verified_seq", last.u.verify.verified_seq);
			CJ_INT(o, "head_seq", last.u.verify.head_seq);
			CJ_INT(o, "anchor_seq", last.u.verify.anchor_seq);
			CJ_INT(o, "broken_at", last.u.verify.broken_at);
			CJ_STR(o, "why", last.u.verify.why);
		}
		ctl_json_print(o);
	} else if (last.u.verify.broken_at != 0) {
		printf("BROKEN at record %" PRIu64 ": %s\n",
		    last.u.verify.broken_at, last.u.verify.why);
	} else if (full) {
		printf("intact: %" PRIu64 " records", total);
		if (last.u.verify.anchor_seq != 0)
			printf(" (after %" PRIu64 ", the last pruned)",
			    last.u.verify.anchor_seq);
		printf("\n");
	} else {
		printf("intact: %" PRIu64 " new records (verified up to %" PRIu64
		       ")\n",
		    total, last.u.verify.verified_seq);
	}
	return last.u.verify.broken_at ? EX_DATAERR : EX_OK;
}

static int
cmd_audit(struct ctl *ctl, int argc, char **argv)
{
	/* --actor here filters; it comes before the common --actor (the
	 * acting operator, still -a) so getopt_long matches it first. */
	static const struct option lo[] = {
		{ "actor", required_argument, NULL, OPT_ACTOR_FILTER },
		COMMON_LONGOPTS,
		{ "action", required_argument, NULL, OPT_ACTION },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "after", required_argument, NULL, OPT_AFTER },
		{ "full", no_argument, NULL, OPT_FULL },
		{ NULL, 0, NULL, 0 } };
	struct ops_args a;
	const char *sub;
	int st;

	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, audit_usage, ops_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("audit needs list or verify (see audit "
				 "--help)");
	sub = argv[st];
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (strcmp(sub, "verify") == 0) {
		if (a.actor[0] || a.action[0] || a.since || a.until ||
		    a.limit || a.after)
			return usage_err("audit verify takes no filter: it "
					 "checks the whole chain");
		return cmd_audit_verify(ctl, a.full);
	}
	if (a.full)
		return usage_err("--full is for audit verify");
	if (strcmp(sub, "list") != 0)
		return usage_err("unknown audit operation '%s' (list, verify)",
		    sub);
	if (a.since && a.until && a.until <= a.since)
		return usage_err("--until is not after --since");
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	return cmd_audit_list(ctl, &a);
}

/* ------------------------------------------------------------------ */
/* cert: certificates automatic reasons depend on */

static const char *const cert_usage =
    "usage: fuseboxctl cert add --name NAME --file CERT.pem --reason R\n"
    "                           [--reason R ...] [--trip-before DUR]\n"
    "                           [--note TEXT]\n"
    "       fuseboxctl cert list\n"
    "       fuseboxctl cert remove --name NAME [--note TEXT]\n"
    "\n"
    "Certificates that automatic reasons depend on, such as the\n"
    "attestation provider's signing certificate for attestation_failed.\n"
    "The engine reads notAfter, alerts (event cert_expiring) 30, 7 and 1\n"
    "days before it and at expiry, and opens the global breaker of every\n"
    "bound reason by itself --trip-before ahead of notAfter and while the\n"
    "certificate is expired: automatic locks of those reasons are held,\n"
    "not sent. A reset of such a breaker while the certificate is still\n"
    "due is undone within a second: renew (add again under the same name)\n"
    "or remove the certificate first. Certificates are global: with\n"
    "fuseboxd --admin-org only that organisation may add or remove them.\n"
    "\n"
    "  add           register a certificate, or renew it (same NAME)\n"
    "    --name NAME       identifier ([A-Za-z0-9._:@-], 1..64)\n"
    "    --file FILE       exactly one PEM certificate ('-' = stdin)\n"
    "    --reason R        automatic reason that depends on it (1..8)\n"
    "    --trip-before DUR open the breakers this long before notAfter:\n"
    "                      30s, 10m, 2h, 1d (default 10m, or the value\n"
    "                      in force when renewing; at most 7d)\n"
    "  list          name, subject, notAfter, days left, reasons, state\n"
    "  remove        forget a certificate; breakers it opened stay open\n"
    "  --note TEXT   why (kept in the audit record)\n";

struct cert_args {
	fbx_id name;
	const char *file;
	fbx_id reasons[FBX_CERT_REASONS_MAX];
	size_t nreasons;
	uint32_t trip_before_s;
	char note[FBX_NOTE_MAX];
};

/* parse_dur_s - "600", "600s", "10m", "2h", "1d" as seconds. */
static int
parse_dur_s(const char *s, uint64_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t unit = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	if (strcmp(end, "m") == 0)
		unit = 60;
	else if (strcmp(end, "h") == 0)
		unit = 3600;
	else if (strcmp(end, "d") == 0)
		unit = 86400;
	else if (*end != '\0' && strcmp(end, "s") != 0)
		return -1;
	if (v == 0 || v > max / unit)
		return -1;
	*out = (uint32_t)(v * unit);
	return 0;
}

static int
cert_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct cert_args *a = arg;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_NAME:
		if (copy_id(a->name, oa) != 0)
			return usage_err("bad --name '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		return EX_OK;
	case OPT_FILE:
		a->file = oa;
		return EX_OK;
	case OPT_REASON:
		if (a->nreasons == FBX_CERT_REASONS_MAX)
			return usage_err("at most %d --reason",
			    FBX_CERT_REASONS_MAX);
		if (copy_id(a->reasons[a->nreasons], oa) != 0)
			return usage_err("bad reason '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		for (size_t i = 0; i < a->nreasons; i++)
			if (strcmp(a->reasons[i], oa) == 0)
				return usage_err("--reason %s given twice", oa);
		a->nreasons++;
		return EX_OK;
	case OPT_TRIP_BEFORE:
		if (parse_dur_s(oa, FBX_CERT_TRIP_BEFORE_MAX,
		        &a->trip_before_s) != 0)
			return usage_err("bad --trip-before '%s' (30s, 10m, "
					 "2h, 1d; at most 7d)",
			    oa);
		return EX_OK;
	case OPT_NOTE:
		if (copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return usage_err("unexpected option");
	}
}

/* cert_alerts_str - the alert stages sent, "30d,7d" or "-". */
static void
cert_alerts_str(uint32_t bits, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *s;
	} st[] = { { FBX_CERT_ALERT_30D, "30d" }, { FBX_CERT_ALERT_7D, "7d" },
		{ FBX_CERT_ALERT_1D, "1d" },
		{ FBX_CERT_ALERT_EXPIRED, "expired" } };
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (bits & st[i].bit)
			pos += (size_t)snprintf(buf + pos,
			    pos < len ? len - pos : 0, "%s%s", pos ? "," : "",
			    st[i].s);
	if (pos == 0)
		snprintf(buf, len, "-");
}

static void
cert_reasons_str(const struct fbx_cert_info *c, char *buf, size_t len)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < c->nreasons; i++)
		pos += (size_t)snprintf(buf + pos, pos < len ? len - pos : 0,
		    "%s%s", i ? "," : "", c->reasons[i]);
}

static void
print_certs(const struct fbx_cert_info *v, size_t n)
{
	struct table t = { .ncol = 9 };

	table_row(&t, "NAME", "SUBJECT", "NOT_AFTER", "DAYS_LEFT", "REASONS",
	    "STATE", "TRIP_BEFORE", "ALERTS_SENT", "LAST_TRIP");
	for (size_t i = 0; i < n; i++) {
		const struct fbx_cert_info *c = &v[i];
		char at[40], days[24], rs[600], tb[24], al[40], tr[40];
		fmt_time(c->not_after_ms, at, sizeof(at));
		snprintf(days, sizeof(days), "%" PRId64, c->days_left);
		cert_reasons_str(c, rs, sizeof(rs));
		snprintf(tb, sizeof(tb), "%" PRIu32 "s", c->trip_before_s);
		cert_alerts_str(c->alerts_sent, al, sizeof(al));
		fmt_time(c->tripped_ms, tr, sizeof(tr));
		table_row(&t, c->name, c->subject, at, days, rs,
		    fbx_cert_state_name(c->state), tb, al, tr);
	}
	table_print(&t);
	table_free(&t);
}

/* cert_fetch - the registered certificates, quietly: an engine that does
 * not know them (older) or refuses gives none. @return 1 with rep to
 * free, or 0. */
static int
cert_fetch(struct ctl *ctl, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;
	int err = FBX_OK;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = FBX_CERT_LIST;
	if (call_ex(ctl, &req, rep, &err) != EX_OK || err != FBX_OK)
		return 0;
	return 1;
}

/* cert_lines - "certificate NAME (R): N days left ..." for status and
 * breaker status, for the certificates bound to reason ("" = all). */
static void
cert_lines(const struct fbx_console_rep *rep, const char *reason)
{
	for (size_t i = 0; i < rep->u.cert.n; i++) {
		const struct fbx_cert_info *c = &rep->u.cert.c[i];
		char at[40], rs[600];
		if (!ctl_cert_bound(c, reason))
			continue;
		fmt_time(c->not_after_ms, at, sizeof(at));
		cert_reasons_str(c, rs, sizeof(rs));
		printf("certificate %s (%s): %" PRId64 " days left, notAfter "
		       "%s, %s; trips %" PRIu32 "s before\n",
		    c->name, rs, c->days_left, at,
		    fbx_cert_state_name(c->state), c->trip_before_s);
	}
}

static int
cmd_cert(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "name", required_argument, NULL, OPT_NAME },
		{ "file", required_argument, NULL, OPT_FILE },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "trip-before", required_argument, NULL, OPT_TRIP_BEFORE },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct cert_args a;
	const char *sub;
	uint8_t *pem = NULL;
	size_t pem_len = 0;
	int st, op;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, cert_usage, cert_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("cert needs add, list or remove (see cert "
				 "--help)");
	sub = argv[st];
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (strcmp(sub, "add") == 0)
		op = FBX_CERT_ADD;
	else if (strcmp(sub, "list") == 0)
		op = FBX_CERT_LIST;
	else if (strcmp(sub, "remove") == 0)
		op = FBX_CERT_REMOVE;
	else
		return usage_err("unknown cert operation '%s' (add, list, "
				 "remove)",
		    sub);
	if (op == FBX_CERT_LIST &&
	    (a.name[0] || a.file || a.nreasons || a.trip_before_s || a.note[0]))
		return usage_err("cert list takes no options of its own");
	if (op != FBX_CERT_LIST && a.name[0] == '\0')
		return usage_err("cert %s needs --name", sub);
	if (op == FBX_CERT_REMOVE && (a.file || a.nreasons || a.trip_before_s))
		return usage_err("--file, --reason and --trip-before go with "
				 "cert add");
	if (op == FBX_CERT_ADD) {
		if (a.file == NULL)
			return usage_err("cert add needs --file CERT.pem");
		if (a.nreasons == 0)
			return usage_err("cert add needs --reason: the "
					 "automatic reason(s) that depend on "
					 "the certificate");
		st = read_file_capped(a.file, FBX_CERT_PEM_MAX, &pem, &pem_len);
		if (st == FBX_ETOOBIG)
			return fail(st, "%s: more than %d bytes: one PEM "
			    "certificate is expected",
			    a.file, FBX_CERT_PEM_MAX);
		if (st != FBX_OK)
			return fail(st, "cannot read %s: %s", a.file,
			    strerror(errno));
		if (pem_len == 0) {
			free(pem);
			return fail(FBX_EBAD_CERT, "%s is empty", a.file);
		}
	}
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = op;
	strcpy(req.u.cert.name, a.name);
	req.u.cert.pem = pem;
	req.u.cert.pem_len = pem_len;
	for (size_t i = 0; i < a.nreasons; i++)
		strcpy(req.u.cert.reasons[i], a.reasons[i]);
	req.u.cert.nreasons = a.nreasons;
	req.u.cert.trip_before_s = a.trip_before_s;
	strcpy(req.u.cert.note, a.note);
	st = call(ctl, &req, &rep);
	free(pem);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		ctl_json_print(json_pack("{s:o*,s:o*}", "operation",
		    fbx_json_str(sub), "certificates",
		    ctl_json_certs(&rep, "")));
	} else {
		if (op == FBX_CERT_ADD)
			printf("certificate %s registered\n\n", a.name);
		else if (op == FBX_CERT_REMOVE)
			printf("certificate %s removed (breakers it opened "
			       "stay as they are)\n\n",
			    a.name);
		if (rep.u.cert.n == 0)
			printf("no certificates registered\n");
		else
			print_certs(rep.u.cert.c, rep.u.cert.n);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- principals (issue 10) ---- */

static const char *const principal_usage =
    "usage: fuseboxctl principal add NAME --kind KIND --orgs ORGS\n"
    "                            [--roles ROLES] (--key-out FILE |\n"
    "                            --public-key Z85) [--note TEXT]\n"
    "       fuseboxctl principal list\n"
    "       fuseboxctl principal revoke NAME [--note TEXT]\n"
    "       fuseboxctl principal rotate NAME (--key-out FILE |\n"
    "                            --public-key Z85) [--note TEXT]\n"
    "\n"
    "Who may use the engine: each principal is a CURVE key pair with a\n"
    "name, a kind, roles and the organisations it may act for. The\n"
    "engine takes every request's actor from the key, never from the\n"
    "request. Needs the admin role for every organisation; every change\n"
    "is audited (organisation _auth). Names are never reused.\n"
    "\n"
    "  add      a new principal\n"
    "    --kind KIND       operator, automation (the only kind that may\n"
    "                      submit automatic commands) or gateway\n"
    "    --roles ROLES     viewer,operator,approver,breaker,admin or all\n"
    "                      (a gateway has none)\n"
    "    --orgs ORGS       * or up to 48 organisations, comma separated\n"
    "    --key-out FILE    make the key pair here (mode 0600) and send\n"
    "                      only its public half; hand FILE to its owner\n"
    "    --public-key Z85  or register a public key made elsewhere\n"
    "  list     every principal, its key and state\n"
    "  revoke   refuse its key from now on: new handshakes at once, open\n"
    "           connections at their next message; a gateway's session\n"
    "           ends and its deliveries are re-queued\n"
    "  rotate   replace its key; the old key stops working as revoke\n";

struct principal_args {
	int kind;
	uint32_t roles;
	int roles_set;
	char orgs[FBX_PRINCIPAL_ORGS_LEN];
	char public_key[41];
	const char *key_out;
	char note[FBX_NOTE_MAX];
};

static int
principal_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	static const char *const roles[] = { "viewer", "operator",
		"approver", "breaker", "admin" };
	struct principal_args *a = arg;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_KIND:
		a->kind = strcmp(oa, "operator") == 0 ? FBX_PK_OPERATOR :
		    strcmp(oa, "automation") == 0     ? FBX_PK_AUTOMATION :
		    strcmp(oa, "gateway") == 0        ? FBX_PK_GATEWAY :
							-1;
		if (a->kind < 0)
			return usage_err("bad --kind '%s' (operator, "
					 "automation, gateway)",
			    oa);
		return EX_OK;
	case OPT_ROLES: {
		char buf[128], *tok, *save = NULL;
		a->roles_set = 1;
		a->roles = 0;
		if (strcmp(oa, "all") == 0) {
			a->roles = FBX_ROLES_ALL;
			return EX_OK;
		}
		if (strlen(oa) >= sizeof(buf))
			return usage_err("bad --roles '%s'", oa);
		strcpy(buf, oa);
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			size_t i;
			for (i = 0; i < 5 && strcmp(tok, roles[i]) != 0; i++)
				;
			if (i == 5)
				return usage_err("bad role '%s' (viewer, "
						 "operator, approver, breaker, "
						 "admin, all)",
				    tok);
			a->roles |= 1u << i;
		}
		return EX_OK;
	}
	case OPT_ORGS:
		if (strlen(oa) >= sizeof(a->orgs))
			return usage_err("--orgs too long (at most %d)",
			    FBX_PRINCIPAL_ORGS_MAX);
		strcpy(a->orgs, oa);
		return EX_OK;
	case OPT_PUBLIC_KEY:
		if (!fbx_key_z85_valid(oa))
			return usage_err("bad --public-key (40 characters of "
					 "Z85)");
		strcpy(a->public_key, oa);
		return EX_OK;
	case OPT_KEY_OUT:
		a->key_out = oa;
		return EX_OK;
	case OPT_NOTE:
		if (copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return usage_err("unknown option (see principal --help)");
	}
}

static int
cmd_principal(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "kind", required_argument, NULL, OPT_KIND },
		{ "roles", required_argument, NULL, OPT_ROLES },
		{ "orgs", required_argument, NULL, OPT_ORGS },
		{ "public-key", required_argument, NULL, OPT_PUBLIC_KEY },
		{ "key-out", required_argument, NULL, OPT_KEY_OUT },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct principal_args a;
	struct fbx_key k;
	const char *sub, *name = NULL;
	int st, op;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(
	    ctl, argc, argv, lo, principal_usage, principal_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return usage_err("principal needs add, list, revoke or rotate "
				 "(see principal --help)");
	sub = argv[st];
	if (strcmp(sub, "list") == 0)
		op = FBX_PRI_LIST;
	else if (strcmp(sub, "add") == 0)
		op = FBX_PRI_ADD;
	else if (strcmp(sub, "revoke") == 0)
		op = FBX_PRI_REVOKE;
	else if (strcmp(sub, "rotate") == 0)
		op = FBX_PRI_ROTATE;
	else
		return usage_err("unknown principal operation '%s' (add, "
				 "list, revoke, rotate)",
		    sub);
	if (op != FBX_PRI_LIST) {
		if (st + 1 >= argc)
			return usage_err("principal %s needs a NAME", sub);
		name = argv[st + 1];
		st++;
	}
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	if (op != FBX_PRI_ADD && (a.kind || a.roles_set || a.orgs[0]))
		return usage_err("--kind, --roles and --orgs go with "
				 "principal add");
	if (op == FBX_PRI_ADD || op == FBX_PRI_ROTATE) {
		if ((a.key_out != NULL) == (a.public_key[0] != '\0'))
			return usage_err("principal %s needs --key-out FILE or "
					 "--public-key Z85 (one of them)",
			    sub);
	} else if (a.key_out != NULL || a.public_key[0] != '\0') {
		return usage_err("--key-out and --public-key go with add and "
				 "rotate");
	}
	if (op == FBX_PRI_ADD && (a.kind == 0 || a.orgs[0] == '\0'))
		return usage_err("principal add needs --kind and --orgs");
	if (name != NULL && copy_id(req.u.principal.name, name) != 0)
		return usage_err("bad name '%s' (1..%d of [A-Za-z0-9._:@-])",
		    name, FBX_ID_MAX);
	if (a.key_out != NULL) {
		/* the secret never leaves this machine: only the public
		 * half is sent */
		st = fbx_key_generate(name, &k);
		if (st == FBX_OK)
			st = fbx_key_write(a.key_out, &k, 1);
		if (st != FBX_OK)
			return fail(st, "cannot create %s: %s", a.key_out,
			    st == FBX_EINVALID ? "it exists"
			                       : strerror(errno));
		strcpy(a.public_key, k.public_z85);
		memset(&k, 0, sizeof(k));
	}
	req.kind = FBX_CREQ_PRINCIPAL;
	req.u.principal.op = op;
	req.u.principal.kind = a.kind;
	req.u.principal.roles = a.roles;
	strcpy(req.u.principal.orgs, a.orgs);
	strcpy(req.u.principal.public_key, a.public_key);
	strcpy(req.u.principal.note, a.note);
	st = call(ctl, &req, &rep);
	if (st != EX_OK) {
		if (a.key_out != NULL)
			(void)unlink(a.key_out); /* never registered */
		return st;
	}
	if (ctl->json) {
		fputs(rep.u.principal.len > 0 ? rep.u.principal.jsonl : "",
		    stdout);
	} else {
		if (op != FBX_PRI_LIST)
			printf("principal %s %s%s%s\n", name,
			    op == FBX_PRI_ADD ? "added" :
			    op == FBX_PRI_REVOKE ? "revoked" : "key rotated",
			    a.key_out != NULL ? "; key in " : "",
			    a.key_out != NULL ? a.key_out : "");
		fputs(rep.u.principal.len > 0 ? rep.u.principal.jsonl : "",
		    stdout);
		if (op == FBX_PRI_LIST)
			printf("%u principals\n", rep.u.principal.count);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- the web console (issue 12) ---- */

static const char *const web_usage =
    "usage: fuseboxctl web login [--ttl SECONDS] [--note TEXT]\n"
    "\n"
    "A session for the web console that fuseboxd --http serves: the\n"
    "engine mints a random token bound to your key's principal (same\n"
    "roles and organisations, audited as web.login in organisation\n"
    "_auth) and this prints the page's address with the token after\n"
    "'#' (a fragment: browsers never send it, so it is in no log).\n"
    "Paste it into a browser's address bar on this machine (not on a\n"
    "program's command line: other local users can read those). The\n"
    "token works until it\n"
    "expires, the principal is revoked or its key rotated, or fuseboxd\n"
    "restarts (tokens live in its memory only). Anyone holding it is\n"
    "you until then: do not paste it elsewhere. Needs the viewer role,\n"
    "and -o ORG in your scope when your key is not for every\n"
    "organisation.\n"
    "\n"
    "  --ttl SECONDS   lifetime, 1..86400 (default 43200: 12 hours)\n"
    "  --note TEXT     recorded in the audit log\n";

struct web_args {
	uint32_t ttl_s;
	char note[FBX_NOTE_MAX];
};

static int
web_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct web_args *a = arg;
	uint64_t v;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_TTL:
		if (parse_u64(oa, 86400, &v) != 0 || v == 0)
			return usage_err("bad --ttl '%s' (seconds, 1..86400)",
			    oa);
		a->ttl_s = (uint32_t)v;
		return EX_OK;
	case OPT_NOTE:
		if (copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return usage_err("unknown option (see web --help)");
	}
}

/* web_field - a string or number member of the engine's one-line JSON
 * answer, copied into buf ("" when absent) */
static void
web_field(const char *line, const char *name, char *buf, size_t cap)
{
	/* read by jansson (issue 12 item 6): the hand-made scanner took
	 * "a\"b" for "a\\" and a member named inside a string for one */
	json_t *o = json_loads(line, 0, NULL);
	json_t *v = json_object_get(o, name);

	buf[0] = '\0';
	if (json_is_string(v))
		snprintf(buf, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	json_decref(o);
}

static int
cmd_web(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct web_args a;
	char token[80], url[200], exp[32], who[FBX_ID_MAX + 1];
	int st;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, web_usage, web_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc || strcmp(argv[st], "login") != 0)
		return usage_err("web needs login (see web --help)");
	if (st + 1 < argc)
		return usage_err("unexpected argument '%s'", argv[st + 1]);
	req.kind = FBX_CREQ_PRINCIPAL;
	req.u.principal.op = FBX_PRI_WEB_LOGIN;
	req.u.principal.ttl_s = a.ttl_s;
	strcpy(req.u.principal.note, a.note);
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		fputs(rep.u.principal.len > 0 ? rep.u.principal.jsonl : "",
		    stdout);
		fputc('\n', stdout);
		fbx_console_rep_free(&rep);
		return EX_OK;
	}
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "token", token, sizeof(token));
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "url", url, sizeof(url));
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "expires_ms", exp, sizeof(exp));
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "principal", who, sizeof(who));
	{
		time_t t = (time_t)(strtoll(exp, NULL, 10) / 1000);
		struct tm tm;
		char when[40] = "?";
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
		fprintf(stderr,
		    "web console session for principal %s, until %s\n", who,
		    when);
	}
	if (url[0] != '\0')
		printf("%s#token=%s\n", url, token);
	else
		printf("token=%s\n(this fuseboxd serves no web console: start "
		       "it with --http)\n",
		    token);
	memset(token, 0, sizeof(token));
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ------------------------------------------------------------------ */
/* fleet check-in health */

static const char *const fleet_usage =
    "usage: fuseboxctl fleet [report] [--group G]\n"
    "       fuseboxctl fleet version COMMAND_ID\n"
    "       fuseboxctl fleet rule set --stale DUR [--repeat DUR] [--note "
    "TEXT]\n"
    "       fuseboxctl fleet rule remove --stale DUR [--note TEXT]\n"
    "\n"
    "The organisation's fleet check-in health, as of the engine's last\n"
    "pass over the registry (once a minute): devices by hours since\n"
    "their last check-in ('never' for one that never checked in), OS\n"
    "versions, and the alert rules with the devices over each (a rule\n"
    "counts a device that never checked in from its enrolment).\n"
    "A rule alerts (event devices_stale, and the alert command) when\n"
    "devices go --stale without a check-in, again every --repeat while\n"
    "any is (none: once), and once more when every one is back. At most\n"
    "8 rules per organisation; set and remove need the breaker role.\n"
    "List the stale devices with `fuseboxctl devices --stale DUR`.\n"
    "`fleet version ID`: of an os_update's devices, how many report its\n"
    "target version (the payload's \"version\" or version=V) at their\n"
    "last check-in (incident 3: the applied state, not the sent one).\n"
    "\n"
    "  --group G     the report of group G, read now from its devices\n"
    "                (no rules, no outcomes: those are the\n"
    "                organisation's)\n"
    "  --stale DUR   the rule's threshold: 1440m, 24h, 2d (at least 1m)\n"
    "  --repeat DUR  alert again this often while devices are over it\n"
    "  --note TEXT   recorded in the audit log\n";

struct fleet_args {
	uint32_t stale, repeat;
	char note[FBX_NOTE_MAX];
	fbx_id group;
};

static int
fleet_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct fleet_args *a = arg;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_STALE:
		if (parse_minutes(oa, FBX_FLEET_STALE_MAX, &a->stale) != 0)
			return usage_err("bad --stale '%s' (e.g. 1440m, 24h, "
					 "2d; at least 1m)",
			    oa);
		return EX_OK;
	case OPT_GROUP:
		if (copy_id(a->group, oa) != 0)
			return usage_err("bad --group '%s'", oa);
		return EX_OK;
	case OPT_REPEAT:
		if (parse_minutes(oa, FBX_FLEET_REPEAT_MAX, &a->repeat) != 0)
			return usage_err("bad --repeat '%s' (e.g. 60m, 1h; "
					 "at least 1m, at most 365d)",
			    oa);
		return EX_OK;
	case OPT_NOTE:
		if (copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return usage_err("unexpected option");
	}
}


static void
print_fleet(const char *org, const struct fbx_fleet_report *f)
{
	struct table t = { .ncol = 3 };
	char when[40], b[32], c[32], bar[48];
	uint32_t max = 1;

	if (f->as_of_ms == 0) {
		printf("fleet of %s: not covered by a pass over the registry "
		       "yet (one runs every minute)\n",
		    org);
	} else {
		fmt_time(f->as_of_ms, when, sizeof(when));
		printf("fleet of %s as of %s: %" PRIu32 " devices\n\n", org,
		    when, f->devices);
		for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
			max = f->offline_hours[i] > max ? f->offline_hours[i]
			                                : max;
		table_row(&t, "HOURS_SINCE_CHECKIN", "DEVICES", "");
		for (int i = 0; i < FBX_FLEET_BUCKETS; i++) {
			size_t w = (size_t)((uint64_t)f->offline_hours[i] * 40 /
			    max);
			if (w == 0 && f->offline_hours[i] > 0)
				w = 1;
			memset(bar, '#', w);
			bar[w] = '\0';
			snprintf(b, sizeof(b), "%" PRIu32, f->offline_hours[i]);
			table_row(&t, ctl_fleet_bucket_names[i], b, bar);
		}
		table_print(&t);
		table_free(&t);
		memset(&t, 0, sizeof(t));
		t.ncol = 2;
		printf("\n");
		table_row(&t, "OS_VERSION", "DEVICES");
		for (size_t i = 0; i < f->nos; i++) {
			snprintf(b, sizeof(b), "%" PRIu32, f->os[i].count);
			table_row(&t,
			    f->os[i].version[0] ? f->os[i].version : "(none)",
			    b);
		}
		if (f->os_other > 0) {
			snprintf(b, sizeof(b), "%" PRIu32, f->os_other);
			table_row(&t, "(other)", b);
		}
		table_print(&t);
		table_free(&t);
	}
	printf("\n");
	if (f->nout > 0) {
		memset(&t, 0, sizeof(t));
		t.ncol = 4;
		table_row(&t, "OUTCOMES_BY_TYPE", "THIS_HOUR_OK/FAILED/EXPIRED",
		    "24H_OK/FAILED/EXPIRED", "");
		for (size_t i = 0; i < f->nout; i++) {
			const struct fbx_type_outcomes *o = &f->out[i];
			char h[80], d[80];
			snprintf(h, sizeof(h),
			    "%" PRIu64 "/%" PRIu64 "/%" PRIu64, o->ok_hour,
			    o->failed_hour, o->expired_hour);
			snprintf(d, sizeof(d),
			    "%" PRIu64 "/%" PRIu64 "/%" PRIu64, o->ok_day,
			    o->failed_day, o->expired_day);
			table_row(&t, fbx_cmd_type_name(o->type), h, d,
			    o->silent ? "SILENT: none succeeded this hour"
			              : "");
		}
		table_print(&t);
		table_free(&t);
		printf("\n");
	}
	if (f->group[0] != '\0')
		return; /* rules and outcomes are the organisation's */
	if (f->nrules == 0) {
		printf("no alert rules (fuseboxctl fleet rule set --stale 1440m "
		       "--repeat 60m)\n");
		return;
	}
	memset(&t, 0, sizeof(t));
	t.ncol = 4;
	table_row(&t, "RULE_STALE_AFTER", "REPEAT", "DEVICES_OVER",
	    "LAST_ALERT");
	for (size_t i = 0; i < f->nrules; i++) {
		fmt_minutes(f->rules[i].stale_minutes, b, sizeof(b));
		if (f->rules[i].repeat_minutes > 0)
			fmt_minutes(f->rules[i].repeat_minutes, c, sizeof(c));
		else
			snprintf(c, sizeof(c), "once");
		fmt_time(f->rules[i].last_alert_ms, when, sizeof(when));
		{
			char n[16];
			snprintf(n, sizeof(n), "%" PRIu32, f->rules[i].stale);
			table_row(&t, b, c, n, when);
		}
	}
	table_print(&t);
	table_free(&t);
}

/* fleet_version - an OS update's devices reporting its target version,
 * summed over the engine's pages */
static int
fleet_version(struct ctl *ctl, uint64_t id)
{
	uint64_t after = 0, devices = 0, at = 0, other = 0, unknown = 0;
	char target[FBX_OSVER_MAX + 1] = "";
	int st = EX_OK;

	do {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_FLEET;
		req.u.fleet.op = FBX_FLEET_VERSION;
		req.u.fleet.command_id = id;
		req.u.fleet.after = after;
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		snprintf(target, sizeof(target), "%s",
		    rep.u.fleet.version.target);
		devices += rep.u.fleet.version.devices;
		at += rep.u.fleet.version.at_target;
		other += rep.u.fleet.version.other;
		unknown += rep.u.fleet.version.unknown;
		after = rep.u.fleet.version.next_after;
		fbx_console_rep_free(&rep);
	} while (after != 0);
	if (ctl->json) {
		ctl_json_print(json_pack("{s:I,s:o*,s:I,s:I,s:I,s:I}",
		    "command", (json_int_t)id, "target", fbx_json_str(target),
		    "devices", (json_int_t)devices, "at_target",
		    (json_int_t)at, "other", (json_int_t)other, "unknown",
		    (json_int_t)unknown));
		return EX_OK;
	}
	if (target[0] == '\0') {
		printf("command %" PRIu64 ": its payload names no version "
		       "(\"version\": \"V\" or version=V); %" PRIu64
		       " devices\n",
		    id, devices);
		return EX_OK;
	}
	printf("command %" PRIu64 " (os_update to %s): %" PRIu64
	       " devices; %" PRIu64 " report %s (%.1f%%), %" PRIu64
	       " another version, %" PRIu64
	       " none yet or no longer enrolled (at their last check-in)\n",
	    id, target, devices, at, target,
	    devices ? 100.0 * (double)at / (double)devices : 0.0, other,
	    unknown);
	return EX_OK;
}

/* fleet_group - a group's report, read now by the engine a page at a
 * time: the pages' counts summed, their OS versions merged (each page
 * names its 16 most common; the rest of a page is in os_other) */
static int
fleet_group(struct ctl *ctl, const char *group)
{
	struct fbx_fleet_report sum;
	struct fbx_version_count v[256];
	size_t nv = 0;
	fbx_id after = "";
	int st;

	memset(&sum, 0, sizeof(sum));
	do {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		const struct fbx_fleet_report *f = &rep.u.fleet;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_FLEET;
		req.u.fleet.op = FBX_FLEET_REPORT;
		snprintf(req.u.fleet.group, sizeof(req.u.fleet.group), "%s",
		    group);
		snprintf(req.u.fleet.after_dev, sizeof(req.u.fleet.after_dev),
		    "%s", after);
		st = call(ctl, &req, &rep);
		if (st != EX_OK)
			return st;
		sum.as_of_ms = f->as_of_ms;
		sum.devices += f->devices;
		for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
			sum.offline_hours[i] += f->offline_hours[i];
		sum.os_other += f->os_other;
		for (size_t i = 0; i < f->nos; i++) {
			size_t k;
			for (k = 0; k < nv; k++)
				if (strcmp(v[k].version, f->os[i].version) == 0)
					break;
			if (k < nv)
				v[k].count += f->os[i].count;
			else if (nv < sizeof(v) / sizeof(v[0]))
				v[nv++] = f->os[i];
			else
				sum.os_other += f->os[i].count;
		}
		snprintf(after, sizeof(after), "%s", f->next_after);
		fbx_console_rep_free(&rep);
	} while (after[0] != '\0');
	/* the 16 most common, the rest in os_other */
	for (size_t i = 1; i < nv; i++)
		for (size_t k = i; k > 0 && v[k].count > v[k - 1].count; k--) {
			struct fbx_version_count t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	sum.nos = nv < FBX_FLEET_OS_MAX ? nv : FBX_FLEET_OS_MAX;
	memcpy(sum.os, v, sum.nos * sizeof(v[0]));
	for (size_t i = sum.nos; i < nv; i++)
		sum.os_other += v[i].count;
	snprintf(sum.group, sizeof(sum.group), "%s", group);
	if (ctl->json) {
		ctl_json_print(ctl_json_fleet(&sum));
	} else {
		char title[2 * sizeof(fbx_id) + 16];
		snprintf(title, sizeof(title), "%s group %s", ctl->org, group);
		print_fleet(title, &sum);
	}
	return EX_OK;
}

static int
cmd_fleet(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "stale", required_argument, NULL, OPT_STALE },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "group", required_argument, NULL, OPT_GROUP },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fleet_args a;
	int st, op = FBX_FLEET_REPORT;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = parse_cmd_opts(ctl, argc, argv, lo, fleet_usage, fleet_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st < argc && strcmp(argv[st], "version") == 0) {
		uint64_t id;
		if (st + 2 != argc || parse_u64(argv[st + 1], UINT64_MAX, &id) != 0 ||
		    id == 0)
			return usage_err("fleet version needs one command id");
		if (a.stale || a.repeat || a.note[0])
			return usage_err("fleet version takes no options of its "
					 "own");
		if ((st = need_org(ctl)) != EX_OK)
			return st;
		return fleet_version(ctl, id);
	}
	if (st < argc && strcmp(argv[st], "report") == 0) {
		st++;
	} else if (st < argc && strcmp(argv[st], "rule") == 0) {
		if (st + 1 >= argc)
			return usage_err("fleet rule needs set or remove");
		if (strcmp(argv[st + 1], "set") == 0)
			op = FBX_FLEET_RULE_SET;
		else if (strcmp(argv[st + 1], "remove") == 0)
			op = FBX_FLEET_RULE_DEL;
		else
			return usage_err("unknown fleet rule operation '%s' "
					 "(set, remove)",
			    argv[st + 1]);
		st += 2;
	}
	if (st < argc)
		return usage_err("unexpected argument '%s'", argv[st]);
	if (op == FBX_FLEET_REPORT && (a.stale || a.repeat || a.note[0]))
		return usage_err("fleet report takes no options of its own");
	if (op != FBX_FLEET_REPORT && a.stale == 0)
		return usage_err("fleet rule %s needs --stale DUR",
		    op == FBX_FLEET_RULE_SET ? "set" : "remove");
	if (op == FBX_FLEET_RULE_DEL && a.repeat)
		return usage_err("--repeat goes with fleet rule set");
	if (op != FBX_FLEET_REPORT && a.group[0])
		return usage_err("--group goes with fleet report");
	if ((st = need_org(ctl)) != EX_OK)
		return st;
	if (a.group[0])
		return fleet_group(ctl, a.group);
	req.kind = FBX_CREQ_FLEET;
	req.u.fleet.op = op;
	req.u.fleet.stale_minutes = a.stale;
	req.u.fleet.repeat_minutes = a.repeat;
	strcpy(req.u.fleet.note, a.note);
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json)
		ctl_json_print(ctl_json_fleet(&rep.u.fleet));
	else
		print_fleet(ctl->org, &rep.u.fleet);
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
} commands[] = {
	{ "submit", cmd_submit },
	{ "show", cmd_show },
	{ "list", cmd_list },
	{ "enroll", cmd_enroll },
	{ "remove", cmd_remove },
	{ "devices", cmd_devices },
	{ "groups", cmd_groups },
	{ "fleet", cmd_fleet },
	{ "status", cmd_status },
	{ "breaker", cmd_breaker },
	{ "held", cmd_held },
	{ "limit", cmd_limit },
	{ "rate", cmd_rate },
	{ "approve", cmd_approve },
	{ "rollout", cmd_rollout },
	{ "summary", cmd_summary },
	{ "orgs", cmd_orgs },
	{ "rollback", cmd_rollback },
	{ "replay", cmd_replay },
	{ "export", cmd_export },
	{ "audit", cmd_audit },
	{ "cert", cmd_cert },
	{ "principal", cmd_principal },
	{ "web", cmd_web },
};

int
main(int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct ctl ctl;
	const char *env;
	int c, st = EX_USAGE;

	memset(&ctl, 0, sizeof(ctl));
	ctl.timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	ctl.retries = 2;
	env = getenv("FUSEBOX_CONSOLE");
	ctl.endpoint = env != NULL && *env != '\0' ? env : CTL_DEFAULT_ENDPOINT;
	env = getenv("FUSEBOX_ORG");
	if (env != NULL && *env != '\0' && copy_id(ctl.org, env) != 0)
		return usage_err("bad FUSEBOX_ORG '%s'", env);
	/* the actor is the key's principal (issue 10): $USER is no
	 * identity; FUSEBOX_ACTOR may state it */
	env = getenv("FUSEBOX_ACTOR");
	if (env != NULL && *env != '\0' && copy_id(ctl.actor, env) != 0)
		return usage_err("bad FUSEBOX_ACTOR '%s'", env);

	opterr = 0;
	for (int li = -1;
	     (c = getopt_long(argc, argv, "+" COMMON_SHORTOPTS, lo, &li)) != -1;
	     li = -1) {
		char typed[128];
		int r;
		if (c != '?' && c != ':' &&
		    !long_exact(argc, argv, lo, li, typed, sizeof(typed)))
			return usage_err("unknown option '%s' (did you mean "
					 "--%s? options are not abbreviated)",
			    typed, lo[li].name);
		if (c == OPT_HELP || c == 'h') {
			fputs(main_usage, stdout);
			return EX_OK;
		}
		if (c == OPT_VERSION || c == 'V') {
			print_version();
			return EX_OK;
		}
		if (c == '?' || c == ':') {
			if (optopt != 0)
				return usage_err("bad or incomplete option "
						 "'-%c' (see --help)",
				    optopt);
			return usage_err("bad or incomplete option '%s' (see "
					 "--help)",
			    argv[optind - 1]);
		}
		r = common_opt(&ctl, c, optarg);
		if (r < 0)
			return -r - 1;
	}
	if (optind >= argc) {
		fputs(main_usage, stderr);
		return usage_err("no command given");
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			st = commands[i].fn(
			    &ctl, argc - optind, argv + optind);
			goto out;
		}
	}
	if (strcmp(argv[optind], "help") == 0) {
		fputs(main_usage, stdout);
		st = EX_OK;
		goto out;
	}
	st = usage_err("unknown command '%s' (see --help)", argv[optind]);
out:
	fflush(stdout);
	fbx_client_close(ctl.cli);
	return st;
}
