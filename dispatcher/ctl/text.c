/*
 * text.c: text in and out for every command: numbers, percentages,
 * times and durations, identifiers and notes parsed from arguments; id
 * lists; values, command targets and rollout plans formatted; aligned
 * tables.
 */
#include <ctype.h>

#include "ctl.h"

/* ------------------------------------------------------------------ */
/* parsing helpers */

int
ctl_parse_u64(const char *s, uint64_t max, uint64_t *out)
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

/* ctl_parse_pct - a percentage ("5", "2.5", "0.01", optionally "5%") as
 * parts per million. */
int
ctl_parse_pct(const char *s, uint32_t *ppm)
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

/* ctl_parse_factor - a multiplier ("2", "1.5", "x2") as hundredths, in
 * [lo, hi] hundredths. */
int
ctl_parse_factor(const char *s, uint32_t lo, uint32_t hi, uint32_t *x100)
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

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
ctl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ctl_parse_time - epoch milliseconds, "now", or a relative time "-90s",
 * "-15m", "-1h", "-7d" (also "+1h"). */
int
ctl_parse_time(const char *s, int64_t *out)
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
		if (ctl_parse_u64(s, INT64_MAX, &u) != 0)
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

void
ctl_fmt_time(int64_t ms, char *buf, size_t len)
{
	if (ms <= 0 || fbx_fmt_utc(ms, 1, buf, len) != 0)
		snprintf(buf, len, "-");
}

/* ctl_copy_id - validate and copy an identifier. */
int
ctl_copy_id(char *dst, const char *src)
{
	if (!fbx_id_valid(src))
		return -1;
	strcpy(dst, src);
	return 0;
}

/* ctl_read_file_capped - read a whole file (or "-" for stdin) up to max
 * bytes. */
int
ctl_read_file_capped(const char *path, size_t max, uint8_t **out, size_t *outlen)
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

int
ctl_idlist_add(struct idlist *l, const char *id)
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

/* ctl_idlist_add_split - add ids separated by commas, blanks or newlines. */
int
ctl_idlist_add_split(struct idlist *l, const char *s, const char **bad)
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
		rc = ctl_idlist_add(l, tok);
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

void
ctl_table_free(struct table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}

/* ctl_table_row - append a row of ncol strings (copied). */
int
ctl_table_row(struct table *t, ...)
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

void
ctl_table_print(const struct table *t)
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
		char *const *row = t->cells + r * (size_t)t->ncol;
		int last = 0; /* the last cell with text: no padding after it */
		for (int c = 0; c < t->ncol && c < 16; c++)
			if (row[c] != NULL && row[c][0] != '\0')
				last = c;
		for (int c = 0; c < last; c++)
			printf("%-*s  ", (int)w[c], row[c] ? row[c] : "");
		printf("%s\n", row[last] ? row[last] : "");
	}
}

/* ctl_plan_str - a rollout plan on one line; zero fields take the engine's
 * defaults. */
void
ctl_plan_str(const struct fbx_rollout_plan *p, char *buf, size_t len)
{
	char first[32], growth[32], maxw[24], succ[16], fail_s[16], minr[24];
	size_t k;

	if (p->first_count != 0)
		snprintf(first, sizeof(first), "%" PRIu32, p->first_count);
	else if (p->first_share_ppm != 0)
		fbx_pct_str(p->first_share_ppm, first, sizeof(first));
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
		fbx_pct_str(p->success_ppm, succ, sizeof(succ));
	else
		snprintf(succ, sizeof(succ), "95%%");
	if (p->failure_ppm != 0)
		fbx_pct_str(p->failure_ppm, fail_s, sizeof(fail_s));
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
/* ctl_parse_minutes - a duration of at least a minute ("1440m", "24h",
 * "2d", "90" = minutes) as whole minutes, at most max. */
/* ctl_copy_note - an operator's --note into dst (FBX_NOTE_MAX bytes):
 * printable, at most FBX_NOTE_MAX - 1 bytes (the engine checks it again)
 * @return EX_OK, or the usage error it printed. */
int
ctl_copy_note(char *dst, const char *oa)
{
	if (strlen(oa) >= FBX_NOTE_MAX)
		return ctl_usage_err("note longer than %d bytes", FBX_NOTE_MAX - 1);
	for (const char *p = oa; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return ctl_usage_err("note has control characters");
	strcpy(dst, oa);
	return EX_OK;
}
int
ctl_parse_minutes(const char *s, uint32_t max, uint32_t *out)
{
	uint32_t secs;
	char buf[32];

	/* a bare number is minutes here */
	if (strlen(s) < sizeof(buf) - 1 && s[0] != '\0' &&
	    strspn(s, "0123456789") == strlen(s)) {
		snprintf(buf, sizeof(buf), "%sm", s);
		s = buf;
	}
	if (ctl_parse_dur_s(s, (uint64_t)max * 60, &secs) != 0 || secs < 60 ||
	    secs % 60 != 0)
		return -1; /* whole minutes: "90s" is refused, not rounded */
	*out = secs / 60;
	return 0;
}
int
ctl_cmd_type(const char *oa, int *type)
{
	char t[64];

	snprintf(t, sizeof(t), "%s", oa);
	for (char *p = t; *p; p++)
		if (*p == '-')
			*p = '_';
	*type = fbx_cmd_type_parse(t);
	if (*type == 0)
		return ctl_usage_err("unknown command type '%s'", oa);
	return EX_OK;
}

int
ctl_page_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
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
			return ctl_usage_err("unknown state '%s'", oa);
		return EX_OK;
	case OPT_LIMIT:
		/* 0 is "no rows": show prints the counts alone; a listing
		 * of nothing is a mistake, not "the default page" */
		if (ctl_parse_u64(oa, FBX_PAGE_MAX, &pa->limit) != 0 ||
		    (pa->limit == 0 && strcmp(argv[0], "show") != 0))
			return ctl_usage_err("bad --limit '%s' (%d..%d)", oa,
			    strcmp(argv[0], "show") == 0 ? 0 : 1,
			    FBX_PAGE_MAX);
		return EX_OK;
	case OPT_AFTER:
		if (ctl_copy_id(pa->after_id, oa) != 0)
			return ctl_usage_err("bad --after '%s'", oa);
		if (ctl_parse_u64(oa, UINT64_MAX, &pa->after) != 0)
			pa->after = UINT64_MAX; /* only valid as a name */
		return EX_OK;
	case OPT_SINCE:
		if (ctl_parse_time(oa, &pa->since) != 0)
			return ctl_usage_err("bad --since '%s' (epoch ms or "
					 "-30m, -1h, -7d)",
			    oa);
		return EX_OK;
	case OPT_UNTIL:
		if (ctl_parse_time(oa, &pa->until) != 0)
			return ctl_usage_err("bad --until '%s' (epoch ms or "
					 "-30m, -1h, -7d)",
			    oa);
		return EX_OK;
	case OPT_STALE:
		if (ctl_parse_minutes(oa, FBX_FLEET_STALE_MAX, &pa->stale_minutes) !=
		    0)
			return ctl_usage_err("bad --stale '%s' (e.g. 1440m, 24h, "
					 "2d; at least 1m)",
			    oa);
		return EX_OK;
	case OPT_GROUP:
		if (ctl_copy_id(pa->group, oa) != 0)
			return ctl_usage_err("bad group '%s'", oa);
		if (pa->dev.ngroups >= FBX_GROUPS_MAX)
			return ctl_usage_err("at most %d groups per device",
			    FBX_GROUPS_MAX);
		strcpy(pa->dev.groups[pa->dev.ngroups++], oa);
		return EX_OK;
	case OPT_DEVICE:
		if (ctl_copy_id(pa->dev.id, oa) != 0)
			return ctl_usage_err("bad device id '%s'", oa);
		pa->have_dev = 1;
		return EX_OK;
	case OPT_PLATFORM:
		pa->dev.platform = (uint8_t)fbx_platform_parse(oa);
		if (pa->dev.platform == 0)
			return ctl_usage_err("unknown platform '%s'", oa);
		pa->have_platform = 1;
		return EX_OK;
	case OPT_OS:
		if (strlen(oa) > FBX_OSVER_MAX)
			return ctl_usage_err("os version over %d bytes",
			    FBX_OSVER_MAX);
		strcpy(pa->dev.os_version, oa);
		return EX_OK;
	case OPT_FILE:
		pa->file = oa;
		return EX_OK;
	default:
		return ctl_usage_err("unexpected option");
	}
}
void
ctl_target_str(const struct fbx_command *c, char *buf, size_t len)
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
int
ctl_no_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	(void)arg;
	(void)ctl;
	(void)c;
	(void)oa;
	(void)argc;
	(void)argv;
	return ctl_usage_err("unexpected option");
}
/* ctl_fmt_minutes - a whole number of minutes as "2d", "24h" or "90m" */
void
ctl_fmt_minutes(uint32_t m, char *buf, size_t len)
{
	if (m % 1440 == 0)
		snprintf(buf, len, "%" PRIu32 "d", m / 1440);
	else if (m % 60 == 0)
		snprintf(buf, len, "%" PRIu32 "h", m / 60);
	else
		snprintf(buf, len, "%" PRIu32 "m", m);
}
/* ctl_parse_dur_s - "600", "600s", "10m", "2h", "1d" as seconds. */
int
ctl_parse_dur_s(const char *s, uint64_t max, uint32_t *out)
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

/* shell_word - print s as one word a POSIX shell reads back as s */
static void
shell_word(const char *s)
{
	int plain = *s != '\0';

	for (const char *p = s; *p != '\0' && plain; p++)
		plain = isalnum((unsigned char)*p) ||
		    strchr("_-./:=@%+,", *p) != NULL;
	if (plain) {
		fputs(s, stdout);
		return;
	}
	putchar('\'');
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	putchar('\'');
}

/* more_after - " --after VALUE" */
static void
more_after(const char *after)
{
	printf(" --after ");
	shell_word(after);
}

void
ctl_more(const struct ctl *ctl, const char *lead, const char *after)
{
	int opts = 1;

	printf("%smore: fuseboxctl", lead);
	for (int i = 0; i < ctl->nargs; i++) {
		const char *a = ctl->args[i];
		if (opts && strcmp(a, "--") == 0) {
			/* options end here: the next page's goes before */
			more_after(after);
			opts = 0;
		} else if (opts && strcmp(a, "--after") == 0) {
			i++; /* and its value */
			continue;
		} else if (opts && strncmp(a, "--after=", 8) == 0) {
			continue;
		}
		putchar(' ');
		shell_word(a);
	}
	if (opts)
		more_after(after);
	putchar('\n');
}

void
ctl_more_u64(const struct ctl *ctl, const char *lead, uint64_t after)
{
	char a[24];

	snprintf(a, sizeof(a), "%" PRIu64, after);
	ctl_more(ctl, lead, a);
}
