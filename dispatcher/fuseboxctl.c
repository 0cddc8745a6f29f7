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
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "fbx_client.h"

#define CTL_DEFAULT_ENDPOINT "ipc:///tmp/fusebox/console.sock"
#define CTL_DEFAULT_TIMEOUT_MS 10000
#define CTL_DEFAULT_TTL_S 86400
#define CTL_DEFAULT_WAIT_S 300
#define CTL_ENROLL_BATCH 10000
#define CTL_REMOVE_BATCH 10000
#define CTL_LINE_MAX 4096
#define CTL_SYSTEM_ORG "_system"

struct ctl {
	const char *endpoint;
	char org[FBX_ID_MAX + 1];
	char actor[FBX_ID_MAX + 1];
	int json;
	int timeout_ms;
	int retries;
	fbx_client *cli;
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
		return EX_DATAERR;
	case FBX_EBUSY:
	case FBX_ERATE_LIMITED:
	case FBX_ESTORAGE:
	case FBX_EDISK_FULL:
	case FBX_EMAP_FULL:
	case FBX_ESHUTTING_DOWN:
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
/* JSON output */

static void
json_str(const char *s)
{
	putchar('"');
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void
json_counts(const uint32_t *counts)
{
	putchar('{');
	for (int s = 1; s < FBX_D_COUNT; s++) {
		printf("%s", s > 1 ? "," : "");
		json_str(fbx_dstate_name(s));
		printf(":%" PRIu32, counts[s]);
	}
	putchar('}');
}

static void json_plan(const struct fbx_rollout_plan *p);
static void json_ro_status(const struct fbx_rollout_status *r);

static void
json_command(const struct fbx_command *c)
{
	printf("{\"id\":%" PRIu64 ",\"org\":", c->id);
	json_str(c->org);
	printf(",\"actor\":");
	json_str(c->actor);
	printf(",\"reason\":");
	json_str(c->reason);
	printf(",\"idempotency_key\":");
	json_str(c->idem_key);
	printf(",\"type\":");
	json_str(fbx_cmd_type_name(c->type));
	printf(",\"origin\":");
	json_str(fbx_origin_name(c->origin));
	printf(",\"target\":");
	json_str(fbx_target_kind_name(c->target_kind));
	printf(",\"group\":");
	json_str(c->group);
	printf(",\"platform\":");
	json_str(fbx_platform_name(c->platform));
	printf(",\"state\":");
	json_str(fbx_cstate_name(c->state));
	printf(",\"ttl_s\":%" PRIu32 ",\"created_ms\":%" PRId64
	       ",\"expires_ms\":%" PRId64 ",\"deliveries\":%" PRIu32
	       ",\"counts\":",
	    c->ttl_s, c->created_ms, c->expires_ms, c->ndeliveries);
	json_counts(c->counts);
	printf(",\"priority\":");
	json_str(fbx_priority_name(c->priority));
	printf(",\"held_by\":");
	json_str(c->held_by);
	printf(",\"approved_by\":");
	json_str(c->approved_by);
	printf(",\"resolved_by\":");
	json_str(c->resolved_by);
	printf(",\"note\":");
	json_str(c->note);
	if (c->rollout.enabled) {
		printf(",\"rollout\":");
		json_plan(&c->rollout);
		printf(",\"rollout_status\":");
		json_ro_status(&c->ro);
	}
	putchar('}');
}

static void
json_delivery(const struct fbx_delivery *d)
{
	printf("{\"id\":%" PRIu64 ",\"device\":", d->id);
	json_str(d->device);
	printf(",\"state\":");
	json_str(fbx_dstate_name(d->state));
	printf(",\"code\":%u,\"attempts\":%" PRIu32 ",\"updated_ms\":%" PRId64
	       ",\"history\":[",
	    (unsigned)d->code, d->attempts, d->updated_ms);
	for (int i = 0; i < d->nhist && i < FBX_HIST_MAX; i++) {
		printf("%s{\"state\":", i ? "," : "");
		json_str(fbx_dstate_name(d->hist[i].state));
		printf(",\"code\":%u,\"at_ms\":%" PRId64 "}",
		    (unsigned)d->hist[i].code, d->hist[i].at_ms);
	}
	printf("]}");
}

static void
json_device(const struct fbx_device *d)
{
	printf("{\"id\":");
	json_str(d->id);
	printf(",\"platform\":");
	json_str(fbx_platform_name(d->platform));
	printf(",\"os_version\":");
	json_str(d->os_version);
	printf(",\"online\":%s,\"attestation\":%u,\"groups\":[",
	    d->online ? "true" : "false", (unsigned)d->attestation);
	for (int i = 0; i < d->ngroups && i < FBX_GROUPS_MAX; i++) {
		if (i)
			putchar(',');
		json_str(d->groups[i]);
	}
	printf("],\"enrolled_ms\":%" PRId64 ",\"last_checkin_ms\":%" PRId64
	       "}",
	    d->enrolled_ms, d->last_checkin_ms);
}

/* ------------------------------------------------------------------ */
/* calling the engine */

/* call - send req, retrying a timed-out request; print the error line on
 * failure. Returns EX_OK with rep owned by the caller, or an exit status
 * with rep zeroed. */
static int
call(struct ctl *ctl, struct fbx_console_req *req, struct fbx_console_rep *rep)
{
	int rc;

	memset(rep, 0, sizeof(*rep));
	if (ctl->cli == NULL) {
		rc = fbx_client_open(ctl->endpoint, ctl->timeout_ms, &ctl->cli);
		if (rc == FBX_EINVALID)
			return usage_err("bad endpoint '%s'", ctl->endpoint);
		if (rc != FBX_OK)
			return fail(rc, "cannot open endpoint %s: %s",
			    ctl->endpoint, fbx_strerror(rc));
	}
	if (req->org[0] == '\0')
		strcpy(req->org, ctl->org[0] ? ctl->org : CTL_SYSTEM_ORG);
	if (req->actor[0] == '\0')
		strcpy(req->actor, ctl->actor);
	for (int attempt = 0;; attempt++) {
		rc = fbx_client_call(ctl->cli, req, rep);
		if (rc != FBX_ETIMEOUT || attempt >= ctl->retries)
			break;
	}
	if (rc == FBX_ETIMEOUT)
		return fail(rc, "no reply from %s within %d ms (%d attempts)",
		    ctl->endpoint, ctl->timeout_ms, ctl->retries + 1);
	if (rc == FBX_EUNREACHABLE)
		return fail(rc, "engine unreachable at %s", ctl->endpoint);
	if (rc == FBX_EINVALID || rc == FBX_ETOOBIG)
		return fail(rc, "request not sent: it cannot be encoded (%s)",
		    fbx_strerror(rc));
	if (rc != FBX_OK)
		return fail(rc, NULL);
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
				printf("{\"error\":");
				json_str(fbx_errname(rep->err));
				printf(",\"code\":%d,\"message\":", rep->err);
				json_str(rep->errmsg);
				printf(",\"approval_token\":");
				json_str(rep->approval_token);
				printf(",\"limit\":%" PRIu64
				       ",\"count\":%" PRIu64 "}\n",
				    rep->limit_value, rep->limit_count);
			}
		}
		fbx_console_rep_free(rep);
		memset(rep, 0, sizeof(*rep));
		return st;
	}
	return EX_OK;
}

static int
need_org(const struct ctl *ctl)
{
	if (ctl->org[0] == '\0')
		return usage_err("no organisation: use -o ORG or set "
				 "FUSEBOX_ORG");
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
	OPT_SHADOW,
	OPT_ENFORCE,
	OPT_MAX,
	OPT_RATE,
	OPT_BURST,
	OPT_MAX_INFLIGHT,
	OPT_ORGS_PREFIX,
	OPT_COUNT,
};

#define COMMON_LONGOPTS                                                      \
	{ "endpoint", required_argument, NULL, 'e' },                        \
	    { "org", required_argument, NULL, 'o' },                         \
	    { "actor", required_argument, NULL, 'a' },                       \
	    { "json", no_argument, NULL, OPT_JSON },                         \
	    { "timeout", required_argument, NULL, OPT_TIMEOUT },             \
	    { "retries", required_argument, NULL, OPT_RETRIES },             \
	    { "help", no_argument, NULL, OPT_HELP },                         \
	    { "version", no_argument, NULL, OPT_VERSION }

#define COMMON_SHORTOPTS "e:o:a:h"

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

static const char *const main_usage =
    "usage: fuseboxctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Operator CLI of the fusebox command-dispatch engine.\n"
    "\n"
    "Options (also accepted after COMMAND):\n"
    "  -e, --endpoint EP   console endpoint (default $FUSEBOX_CONSOLE or\n"
    "                      " CTL_DEFAULT_ENDPOINT ")\n"
    "  -o, --org ORG       organisation (default $FUSEBOX_ORG)\n"
    "  -a, --actor NAME    acting operator (default $FUSEBOX_ACTOR, $USER)\n"
    "      --json          print one JSON object per reply\n"
    "      --timeout MS    reply timeout per request (default 10000)\n"
    "      --retries N     resend a timed-out request N times (default 2)\n"
    "  -h, --help          this help; COMMAND --help for a command\n"
    "      --version       print the version\n"
    "\n"
    "Commands:\n"
    "  submit    submit a command to devices, a group or the organisation\n"
    "  show      show a command, its counts and per-device outcomes\n"
    "  list      list the organisation's commands\n"
    "  enroll    enroll devices (one, or a CSV file)\n"
    "  remove    remove devices from the registry\n"
    "  devices   list enrolled devices\n"
    "  groups    list device groups with their sizes\n"
    "  status    engine status (ping)\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 rejected input, 69 engine\n"
    "unreachable or timed out, 75 engine busy or storage trouble, 70\n"
    "other errors.\n";

/* parse_cmd_opts - run getopt_long over a command's arguments, handling
 * common options and calling back for the others. */
typedef int (*opt_fn)(void *arg, struct ctl *ctl, int c, const char *optarg,
    int argc, char **argv);

static int
parse_cmd_opts(struct ctl *ctl, int argc, char **argv,
    const struct option *longopts, const char *usage, opt_fn fn, void *arg)
{
	int c;

	optind = 0; /* glibc: full reset, options may follow operands */
	opterr = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts,
	            NULL)) != -1) {
		int r;

		if (c == OPT_HELP || c == 'h') {
			fputs(usage, stdout);
			return -(EX_OK + 1);
		}
		if (c == OPT_VERSION) {
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

static int
wait_command(struct ctl *ctl, uint64_t id, uint64_t wait_s)
{
	int64_t deadline = mono_ms() + (int64_t)wait_s * 1000;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int st;

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
				printf("{\"command_id\":%" PRIu64
				       ",\"settled\":%s,\"command\":",
				    id, done ? "true" : "false");
				json_command(&rep.u.command.info);
				printf("}\n");
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

static void
json_plan(const struct fbx_rollout_plan *p)
{
	printf("{\"enabled\":%s,\"first_count\":%" PRIu32
	       ",\"first_share_ppm\":%" PRIu32 ",\"growth_x100\":%" PRIu32
	       ",\"max_wave\":%" PRIu32 ",\"bake_s\":%" PRIu32
	       ",\"success_ppm\":%" PRIu32 ",\"failure_ppm\":%" PRIu32
	       ",\"min_results\":%" PRIu32 ",\"approve_stages\":%s,"
	       "\"stages\":[",
	    p->enabled ? "true" : "false", p->first_count, p->first_share_ppm,
	    p->growth_x100, p->max_wave, p->bake_s, p->success_ppm,
	    p->failure_ppm, p->min_results,
	    p->approve_groups ? "true" : "false");
	for (int g = 0; g < p->ngroups && g < FBX_ROLLOUT_GROUPS_MAX; g++) {
		if (g)
			putchar(',');
		json_str(p->groups[g]);
	}
	printf("]}");
}

static void
json_ro_status(const struct fbx_rollout_status *r)
{
	printf("{\"state\":");
	json_str(fbx_rollout_state_name(r->state));
	printf(",\"stage\":%u,\"wave\":%" PRIu32 ",\"released\":%" PRIu32
	       ",\"wave_start\":%" PRIu32 ",\"wave_size\":%" PRIu32
	       ",\"wave_started_ms\":%" PRId64 ",\"bake_until_ms\":%" PRId64
	       ",\"note\":",
	    (unsigned)r->stage, r->wave, r->released, r->wave_start,
	    r->wave_size, r->wave_started_ms, r->bake_until_ms);
	json_str(r->note);
	putchar('}');
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
		uint64_t sum = 0;
		printf("{\"dry_run\":true,\"devices\":%" PRIu32
		       ",\"per_platform\":{",
		    d->devices);
		for (int p = 0, k = 0; p < FBX_PLATFORM_COUNT; p++) {
			if (d->per_platform[p] == 0)
				continue;
			printf("%s", k++ ? "," : "");
			json_str(fbx_platform_name(p));
			printf(":%" PRIu32, d->per_platform[p]);
		}
		printf("},\"per_group\":{");
		for (size_t i = 0; i < d->ngroups; i++) {
			printf("%s", i ? "," : "");
			json_str(d->groups[i].name);
			printf(":%" PRIu32, d->groups[i].count);
		}
		printf("},\"waves\":[");
		for (size_t i = 0; i < d->nwaves; i++) {
			printf("%s%" PRIu32, i ? "," : "", d->waves[i]);
			sum += d->waves[i];
		}
		printf("],\"admitted\":%s,\"stop\":",
		    d->stop_err == FBX_OK ? "true" : "false");
		json_str(d->stop_err == FBX_OK ? "" : fbx_errname(d->stop_err));
		printf(",\"verdict\":");
		json_str(d->verdict);
		printf("}\n");
		(void)sum;
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
			       " devices:\n",
			    d->devices);
			t.ncol = 3;
			table_row(&t, "WAVE", "DEVICES", "CUMULATIVE");
			for (size_t i = 0; i < d->nwaves; i++) {
				char w[24], c[24];
				cum += d->waves[i];
				snprintf(w, sizeof(w), "%zu", i + 1);
				snprintf(b, sizeof(b), "%" PRIu32, d->waves[i]);
				snprintf(c, sizeof(c), "%" PRIu64, cum);
				table_row(&t, w, b, c);
			}
			table_print(&t);
			table_free(&t);
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
		printf("{\"command_id\":%" PRIu64 ",\"duplicate\":%s,"
		       "\"device_count\":%" PRIu32 ",\"state\":",
		    id, rep.u.submit.duplicate ? "true" : "false",
		    rep.u.submit.device_count);
		json_str(fbx_cstate_name(rep.u.submit.state));
		printf(",\"idempotency_key\":");
		json_str(cmd->idem_key);
		printf(",\"held_by\":");
		json_str(rep.u.submit.held_by);
		printf("}\n");
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
    "  --limit N     outcomes per page (default 50, 0 = none, max 10000)\n"
    "  --after DLV   start after delivery id DLV (page cursor)\n";

struct page_args {
	uint64_t after;
	uint64_t limit;
	int state;
	int64_t since, until;
	fbx_id after_id;
	fbx_id group;
	/* enroll */
	struct fbx_device dev;
	int have_dev, have_platform;
	const char *file;
};

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
		if (parse_u64(oa, FBX_PAGE_MAX, &pa->limit) != 0)
			return usage_err("bad --limit '%s' (0..%d)", oa,
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
		printf("{\"command\":");
		json_command(c);
		printf(",\"deliveries\":[");
		for (size_t i = 0; i < rep.u.command.ndlv; i++) {
			if (i)
				putchar(',');
			json_delivery(&rep.u.command.dlv[i]);
		}
		printf("],\"next_after\":%" PRIu64 "}\n",
		    rep.u.command.next_after);
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
    "  --limit N      commands per page (default 100, max 10000)\n"
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
		printf("{\"commands\":[");
		for (size_t i = 0; i < rep.u.commands.n; i++) {
			if (i)
				putchar(',');
			json_command(&rep.u.commands.cmds[i]);
		}
		printf("],\"next_after\":%" PRIu64 "}\n",
		    rep.u.commands.next_after);
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
			printf("{\"created\":%" PRIu64 ",\"updated\":%" PRIu64
			       "}\n",
			    created, updated);
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
		printf("{\"removed\":%" PRIu64 "}\n", removed);
	else
		printf("removed %" PRIu64 "\n", removed);
	st = EX_OK;
out:
	free(ids.ids);
	return st;
}

static const char *const devices_usage =
    "usage: fuseboxctl devices [--group G] [--limit N] [--after ID]\n"
    "\n"
    "List enrolled devices, by id.\n"
    "\n"
    "  --group G     only devices of group G\n"
    "  --limit N     devices per page (default 100, max 10000)\n"
    "  --after ID    start after device ID (page cursor)\n";

static int
cmd_devices(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "group", required_argument, NULL, OPT_GROUP },
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
	st = call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		printf("{\"total\":%" PRIu32 ",\"devices\":[",
		    rep.u.devices.total);
		for (size_t i = 0; i < rep.u.devices.n; i++) {
			if (i)
				putchar(',');
			json_device(&rep.u.devices.devs[i]);
		}
		printf("],\"next_after\":");
		json_str(rep.u.devices.next_after);
		printf("}\n");
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
		printf("{\"groups\":[");
		for (size_t i = 0; i < rep.u.groups.n; i++) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(rep.u.groups.groups[i].name);
			printf(",\"count\":%" PRIu32 "}",
			    rep.u.groups.groups[i].count);
		}
		printf("]}\n");
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
	struct fbx_console_rep rep;
	const struct fbx_engine_stats *s;
	int64_t t0;
	int st;

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
	if (ctl->json) {
		printf("{\"endpoint\":");
		json_str(ctl->endpoint);
		printf(",\"version\":");
		json_str(s->version);
		printf(",\"rtt_ms\":%" PRId64 ",\"uptime_ms\":%" PRIu64
		       ",\"gateways\":%" PRIu32 ",\"commands_active\":%" PRIu64
		       ",\"deliveries_queued\":%" PRIu64
		       ",\"deliveries_inflight\":%" PRIu64
		       ",\"deliveries_pending\":%" PRIu64
		       ",\"commits\":%" PRIu64 ",\"store_bytes\":%" PRIu64
		       "}\n",
		    mono_ms() - t0, s->uptime_ms, s->gateways,
		    s->commands_active, s->deliveries_queued,
		    s->deliveries_inflight, s->deliveries_pending, s->commits,
		    s->store_bytes);
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
#undef ROW_U64
		table_print(&t);
		table_free(&t);
	}
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
	{ "status", cmd_status },
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
	env = getenv("FUSEBOX_ACTOR");
	if (env == NULL || *env == '\0')
		env = getenv("USER");
	if (env == NULL || *env == '\0' || copy_id(ctl.actor, env) != 0)
		strcpy(ctl.actor, "operator");

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+" COMMON_SHORTOPTS, lo, NULL)) !=
	    -1) {
		int r;
		if (c == OPT_HELP || c == 'h') {
			fputs(main_usage, stdout);
			return EX_OK;
		}
		if (c == OPT_VERSION) {
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
