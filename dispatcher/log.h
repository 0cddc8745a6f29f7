/*
 * log.h: levelled logging to stderr, one line per event with a UTC
 * timestamp, for the daemon and the tools. Internal to dispatcher/.
 * Repeated lines are rate limited, so one misbehaving peer cannot fill
 * the disk with the same line: see "Rate limits" below.
 */
#ifndef FBXI_LOG_H
#define FBXI_LOG_H

#include <stdint.h>
#include <stdio.h>

enum { FBX_LOG_ERROR = 0, FBX_LOG_WARN, FBX_LOG_INFO, FBX_LOG_DEBUG };

/*
 * Rate limits. A site is one (format string, level) pair, so every call of
 * one FBX_LOGx(...) is one site however its arguments vary; identical
 * format literals may be merged by the compiler and then share a site.
 *
 * - Per site: a token bucket of FBX_LOG_SITE_BURST lines that refills at
 *   FBX_LOG_SITE_PER_S lines per second. A line that finds the bucket empty
 *   is dropped and counted. The site's next written line ends with
 *   "(N similar messages suppressed)"; if the site stays quiet, the count
 *   is written by the first line of any site once the site has been quiet
 *   for a second, as "(N similar messages suppressed: "<format>")".
 * - Globally: a bucket of FBX_LOG_GLOBAL_BURST lines refilling at
 *   FBX_LOG_GLOBAL_PER_S lines per second across all sites, against a
 *   flood spread over many sites. Lines it drops are counted and the next
 *   line it lets through is preceded by "(N lines suppressed by the global
 *   log limit)". Error lines are never dropped by the global limit (they
 *   still take a token if one is left), only by their own site's bucket,
 *   so the first lines of each error burst and their counts always show.
 * - At most FBX_LOG_SITES sites are tracked; further sites share one
 *   bucket.
 * Lines below the log level are discarded before any of this and use no
 * tokens.
 */
#define FBX_LOG_SITE_BURST 10
#define FBX_LOG_SITE_PER_S 1
#define FBX_LOG_GLOBAL_BURST 100
#define FBX_LOG_GLOBAL_PER_S 20
#define FBX_LOG_SITES 512

void fbxi_log_set_level(int level);
int fbxi_log_level(void);
/* fbxi_log_parse_level - "error".."debug" -> level, or -1. */
int fbxi_log_parse_level(const char *s);
/*
 * fbxi_log - write one line at level (clamped to error..debug) unless it
 * is below the log level or rate limited. Safe to call from any thread;
 * lines are written whole and in order.
 */
void fbxi_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * fbxi_log_site - fbxi_log with the rate limit's site named apart from
 * the format: site is a string literal that stands for one kind of
 * message (its pointer is the key, its text names the site in the
 * suppressed count), for lines whose text comes whole from elsewhere.
 */
void fbxi_log_site(int level, const char *site, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define FBX_LOGE(...) fbxi_log(FBX_LOG_ERROR, __VA_ARGS__)
#define FBX_LOGW(...) fbxi_log(FBX_LOG_WARN, __VA_ARGS__)
#define FBX_LOGI(...) fbxi_log(FBX_LOG_INFO, __VA_ARGS__)
#define FBX_LOGD(...)                                                        \
	do {                                                                 \
		if (fbxi_log_level() >= FBX_LOG_DEBUG)                       \
			fbxi_log(FBX_LOG_DEBUG, __VA_ARGS__);                \
	} while (0)

/*
 * Test hooks. fbxi_log_set_clock - use fn (monotonic nanoseconds) for the
 * rate limits instead of CLOCK_MONOTONIC; NULL restores it. The printed
 * timestamp stays the wall clock. fbxi_log_set_output - write lines to f
 * (borrowed: it must stay open until replaced) instead of stderr; NULL
 * restores stderr. fbxi_log_reset_limits - forget every site and pending
 * count and fill all buckets, as at start.
 */
typedef int64_t (*fbxi_log_clock_fn)(void);
void fbxi_log_set_clock(fbxi_log_clock_fn fn);
void fbxi_log_set_output(FILE *f);
void fbxi_log_reset_limits(void);

#endif
