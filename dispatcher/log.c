/*
 * log.c: see log.h. Each line is written with one fprintf so concurrent
 * writers (daemon and tools sharing a terminal) do not interleave mid-line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int log_level = FBX_LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

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
fbxi_log(int level, const char *fmt, ...)
{
	char msg[1024], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s.%03ldZ %-5s %s\n", ts, now.tv_nsec / 1000000,
	    level_names[level], msg);
}
