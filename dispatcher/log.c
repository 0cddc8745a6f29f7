/*
 * log.c: see log.h. Each line is written with one fprintf so concurrent
 * writers (daemon and tools sharing a terminal) do not interleave mid-line.
 * It also owns the rate limits (issue 8: one bad client wrote 500k lines,
 * 104 MB, in 8 minutes): a token bucket per call site and one global
 * bucket, kept in a fixed table under one mutex, so the cost and memory
 * of a flood are bounded whatever the callers do.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define NS_PER_S 1000000000LL
#define SITE_PERIOD (NS_PER_S / FBX_LOG_SITE_PER_S)
#define SITE_CAP (FBX_LOG_SITE_BURST * SITE_PERIOD)
#define GLOBAL_PERIOD (NS_PER_S / FBX_LOG_GLOBAL_PER_S)
#define GLOBAL_CAP (FBX_LOG_GLOBAL_BURST * GLOBAL_PERIOD)

/* credit is time in ns; one line costs one period, credit never exceeds
 * burst periods. */
struct bucket {
	int64_t credit;
	int64_t last;
};

struct site {
	const char *fmt; /* NULL: free slot (or the overflow site) */
	int level;
	struct bucket b;
	uint64_t suppressed; /* dropped since the count was last written */
	int64_t last_drop;
};

static int log_level = FBX_LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Everything below is guarded by log_mu. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out;           /* NULL: stderr */
static fbxi_log_clock_fn log_clock; /* NULL: CLOCK_MONOTONIC */
static int started;                 /* global bucket and sweep initialised */
static struct site sites[FBX_LOG_SITES];
static struct site overflow; /* shared by sites beyond FBX_LOG_SITES */
static int overflow_used;
static struct bucket global;
static uint64_t global_suppressed;
static int64_t last_sweep;

void
fbxi_log_set_level(int level)
{
	log_level = level;
}

int
fbxi_log_level(void)
{
	return log_level;
}

int
fbxi_log_parse_level(const char *s)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0)
			return i;
	}
	return -1;
}

void
fbxi_log_set_clock(fbxi_log_clock_fn fn)
{
	pthread_mutex_lock(&log_mu);
	log_clock = fn;
	pthread_mutex_unlock(&log_mu);
}

void
fbxi_log_set_output(FILE *f)
{
	pthread_mutex_lock(&log_mu);
	log_out = f;
	pthread_mutex_unlock(&log_mu);
}

void
fbxi_log_reset_limits(void)
{
	pthread_mutex_lock(&log_mu);
	memset(sites, 0, sizeof(sites));
	memset(&overflow, 0, sizeof(overflow));
	overflow_used = 0;
	global_suppressed = 0;
	started = 0;
	pthread_mutex_unlock(&log_mu);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	if (log_clock != NULL)
		return log_clock();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void
bucket_fill(struct bucket *b, int64_t cap, int64_t now)
{
	b->credit = cap;
	b->last = now;
}

/* bucket_take - refill for the time since the last call, then take one
 * line's worth if there is one. A clock that steps back refills nothing. */
static int
bucket_take(struct bucket *b, int64_t period, int64_t cap, int64_t now)
{
	if (now > b->last) {
		int64_t d = now - b->last;
		b->credit = d >= cap - b->credit ? cap : b->credit + d;
		b->last = now;
	}
	if (b->credit < period)
		return 0;
	b->credit -= period;
	return 1;
}

/* site_find - the site of (fmt, level), created with a full bucket on first
 * use; open addressing, never deleted (sites are call sites: few, fixed). */
static struct site *
site_find(const char *fmt, int level, int64_t now)
{
	uint64_t h = ((uint64_t)(uintptr_t)fmt ^ (uint64_t)level) *
	    0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h >> 32) % FBX_LOG_SITES;

	for (size_t n = 0; n < FBX_LOG_SITES; n++) {
		struct site *s = &sites[(i + n) % FBX_LOG_SITES];
		if (s->fmt == NULL) {
			s->fmt = fmt;
			s->level = level;
			bucket_fill(&s->b, SITE_CAP, now);
			return s;
		}
		if (s->fmt == fmt && s->level == level)
			return s;
	}
	if (!overflow_used) {
		bucket_fill(&overflow.b, SITE_CAP, now);
		overflow.level = FBX_LOG_WARN; /* level of its summary line */
		overflow_used = 1;
	}
	return &overflow;
}

static void
emit(FILE *out, int level, const char *msg, uint64_t suppressed)
{
	char ts[32];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	if (suppressed > 0)
		fprintf(out, "%s.%03ldZ %-5s %s (%" PRIu64 " similar messages "
		    "suppressed)\n", ts, now.tv_nsec / 1000000,
		    level_names[level], msg, suppressed);
	else
		fprintf(out, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000,
		    level_names[level], msg);
}

/* sweep - write the counts of sites that went quiet after dropping lines,
 * which would otherwise wait for the site's next line forever. Runs at
 * most once per site period; the summaries take global tokens like any
 * line (errors' always go out), and what does not fit waits for the next
 * sweep. */
static void
sweep(FILE *out, int64_t now)
{
	char msg[1024];

	if (now - last_sweep < SITE_PERIOD)
		return;
	last_sweep = now;
	for (size_t i = 0; i <= FBX_LOG_SITES; i++) {
		struct site *s = i < FBX_LOG_SITES ? &sites[i] : &overflow;
		if (s->suppressed == 0 || now - s->last_drop < SITE_PERIOD)
			continue;
		if (!bucket_take(&global, GLOBAL_PERIOD, GLOBAL_CAP, now) &&
		    s->level != FBX_LOG_ERROR)
			continue;
		if (s->fmt != NULL)
			snprintf(msg, sizeof(msg),
			    "(%" PRIu64 " similar messages suppressed: \"%s\")",
			    s->suppressed, s->fmt);
		else
			snprintf(msg, sizeof(msg),
			    "(%" PRIu64 " messages from untracked sites "
			    "suppressed)", s->suppressed);
		emit(out, s->level, msg, 0);
		s->suppressed = 0;
	}
}

static void vlog(int level, const char *site, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

void
fbxi_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, fmt, ap);
	va_end(ap);
}

void
fbxi_log_site(int level, const char *site, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, site, fmt, ap);
	va_end(ap);
}

/* vlog - fbxi_log with the site named apart from the format */
static void
vlog(int level, const char *site, const char *fmt, va_list ap)
{
	char msg[1024];
	struct site *s;
	FILE *out;
	int64_t now;

	if (level < FBX_LOG_ERROR)
		level = FBX_LOG_ERROR;
	if (level > FBX_LOG_DEBUG)
		level = FBX_LOG_DEBUG;
	if (level > log_level)
		return;
	pthread_mutex_lock(&log_mu);
	now = now_ns();
	if (!started) {
		bucket_fill(&global, GLOBAL_CAP, now);
		last_sweep = now;
		started = 1;
	}
	s = site_find(site, level, now);
	if (!bucket_take(&s->b, SITE_PERIOD, SITE_CAP, now)) {
		s->suppressed++;
		s->last_drop = now;
		goto out;
	}
	/* errors pass the global limit regardless: their sites bound them */
	if (!bucket_take(&global, GLOBAL_PERIOD, GLOBAL_CAP, now) &&
	    level != FBX_LOG_ERROR) {
		global_suppressed++;
		goto out;
	}
	out = log_out != NULL ? log_out : stderr;
	if (global_suppressed > 0) {
		snprintf(msg, sizeof(msg),
		    "(%" PRIu64 " lines suppressed by the global log limit "
		    "of %d lines/s)", global_suppressed, FBX_LOG_GLOBAL_PER_S);
		emit(out, FBX_LOG_WARN, msg, 0);
		global_suppressed = 0;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	emit(out, level, msg, s->suppressed);
	s->suppressed = 0;
	sweep(out, now);
out:
	pthread_mutex_unlock(&log_mu);
}
