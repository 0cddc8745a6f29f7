/*
 * log_test.c: the log rate limits (issue 8) with a fake clock and the
 * output captured in a temporary file: a flood from one site is cut to the
 * burst and its count reported once, sites are independent, quiet sites'
 * counts are swept out, the global cap holds across many sites, error
 * lines get through it, sites beyond the table share a bucket, and no
 * line is lost from the accounting: every call is either written or
 * counted in exactly one "suppressed" figure.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int passed, failed;

#define CHECK(c, ...)                                                        \
	do {                                                                 \
		if (c) {                                                     \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

#define S 1000000000LL

static int64_t fake_now;
static FILE *cap;
static long mark;

static int64_t
fake_clock(void)
{
	return fake_now;
}

/* What the log wrote since the last call, split into figures. */
struct out {
	int lines;      /* every line */
	int plain;      /* lines carrying a message (maybe with a count) */
	int summaries;  /* "(N similar messages suppressed: ...)" lines */
	int globals;    /* "(N lines suppressed by the global ...)" lines */
	long long similar; /* sum of N over appended counts and summaries */
	long long global;  /* sum of N over global lines */
	int with_count;    /* plain lines that end with a count */
	long long last_count;
	char first[1100], last[1100];
};

static long long
number_before(const char *line, const char *tail)
{
	const char *p = strstr(line, tail), *q;

	if (p == NULL)
		return -1;
	q = p;
	while (q > line && q[-1] >= '0' && q[-1] <= '9')
		q--;
	if (q == p || q == line || q[-1] != '(')
		return -1;
	return atoll(q);
}

static void
grab(struct out *o)
{
	char line[1100];

	memset(o, 0, sizeof(*o));
	fflush(cap);
	fseek(cap, mark, SEEK_SET);
	while (fgets(line, sizeof(line), cap) != NULL) {
		long long n;
		if (o->lines == 0)
			snprintf(o->first, sizeof(o->first), "%s", line);
		snprintf(o->last, sizeof(o->last), "%s", line);
		o->lines++;
		if ((n = number_before(line, " lines suppressed by the global"))
		    >= 0) {
			o->globals++;
			o->global += n;
			continue;
		}
		if ((n = number_before(line,
			 " similar messages suppressed: \"")) >= 0) {
			o->summaries++;
			o->similar += n;
			continue;
		}
		o->plain++;
		if ((n = number_before(line, " similar messages suppressed)\n"))
		    >= 0) {
			o->with_count++;
			o->similar += n;
			o->last_count = n;
		}
	}
	fseek(cap, 0, SEEK_END);
	mark = ftell(cap);
}

static void
restart(void)
{
	struct out o;

	fake_now = 1000 * S;
	fbxi_log_reset_limits();
	grab(&o);
}

static void
test_burst(void)
{
	struct out o;
	const int n = 100000;

	restart();
	for (int i = 0; i < n; i++)
		FBX_LOGW("flood from client %d", i);
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITE_BURST, "burst wrote %d lines", o.lines);
	CHECK(o.similar == 0, "count reported before the site spoke again");
	/* within the same fake second nothing more gets out */
	FBX_LOGW("flood from client %d", -1);
	fake_now += S / 2;
	FBX_LOGW("flood from client %d", -2);
	grab(&o);
	CHECK(o.lines == 0, "%d lines before a token accrued", o.lines);
	fake_now += S / 2;
	FBX_LOGW("flood from client %d", -3);
	grab(&o);
	CHECK(o.lines == 1 && o.with_count == 1,
	    "after a second: %d lines, %d with a count", o.lines,
	    o.with_count);
	CHECK(o.last_count == n + 2 - FBX_LOG_SITE_BURST,
	    "count %lld, want %d", o.last_count, n + 2 - FBX_LOG_SITE_BURST);
	CHECK(strstr(o.first, "warn  flood from client -3 (") != NULL,
	    "line: %s", o.first);
	/* reported once: the next line carries no count */
	fake_now += S;
	FBX_LOGW("flood from client %d", -4);
	grab(&o);
	CHECK(o.lines == 1 && o.with_count == 0, "count repeated: %s",
	    o.first);
}

static void
test_independent_sites(void)
{
	struct out o;

	restart();
	for (int i = 0; i < 1000; i++)
		FBX_LOGW("site A %d", i);
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITE_BURST, "A wrote %d", o.lines);
	for (int i = 0; i < 5; i++)
		FBX_LOGW("site B %d", i);
	grab(&o);
	CHECK(o.lines == 5 && o.similar == 0, "B wrote %d after A's flood",
	    o.lines);
	/* the same format at another level is another site */
	for (int i = 0; i < 5; i++)
		FBX_LOGI("site A %d", i);
	grab(&o);
	CHECK(o.lines == 5, "A at info wrote %d", o.lines);
	/* below the log level: nothing written, no tokens spent */
	fbxi_log_set_level(FBX_LOG_WARN);
	for (int i = 0; i < 1000; i++)
		FBX_LOGI("site C %d", i);
	fbxi_log_set_level(FBX_LOG_INFO);
	grab(&o);
	CHECK(o.lines == 0, "filtered lines written: %d", o.lines);
	for (int i = 0; i < FBX_LOG_SITE_BURST; i++)
		FBX_LOGI("site C %d", i);
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITE_BURST, "C wrote %d", o.lines);
}

static void
test_quiet_site_swept(void)
{
	struct out o;

	restart();
	for (int i = 0; i < 50; i++)
		FBX_LOGE("storage failed: %d", i);
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITE_BURST, "wrote %d", o.lines);
	/* the flooding site stays quiet; another site's line brings its
	 * count out once a second has passed */
	fake_now += S / 2;
	FBX_LOGI("something else %d", 1);
	grab(&o);
	CHECK(o.lines == 1 && o.summaries == 0, "swept too early: %d lines",
	    o.lines);
	fake_now += S / 2;
	FBX_LOGI("something else %d", 2);
	grab(&o);
	CHECK(o.lines == 2 && o.summaries == 1 && o.similar == 40,
	    "%d lines, %d summaries, count %lld", o.lines, o.summaries,
	    o.similar);
	CHECK(strstr(o.last, "error (40 similar messages suppressed: "
	                     "\"storage failed: %d\")") != NULL,
	    "summary: %s", o.last);
	/* counted once: the site's next line has no count */
	FBX_LOGE("storage failed: %d", 99);
	grab(&o);
	CHECK(o.lines == 1 && o.with_count == 0, "then: %s", o.first);
}

/* fbxi_log_site: lines of one format ("%s", text made elsewhere, as the
 * store's) are limited by the site named, each apart, and the suppressed
 * count names that site */
static void
test_named_sites(void)
{
	struct out o;

	restart();
	for (int i = 0; i < 50; i++)
		fbxi_log_site(FBX_LOG_WARN, "cannot connect", "%s",
		    "fusebox store: cannot connect: refused");
	for (int i = 0; i < 5; i++)
		fbxi_log_site(FBX_LOG_WARN, "commit in doubt", "%s",
		    "fusebox store: commit in doubt: looked up");
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITE_BURST + 5,
	    "two named sites wrote %d lines", o.lines);
	fake_now += S;
	FBX_LOGI("something else %d", 3);
	grab(&o);
	CHECK(o.summaries == 1 && o.similar == 40 &&
	        strstr(o.last, "(40 similar messages suppressed: "
	                       "\"cannot connect\")") != NULL,
	    "summary of a named site: %s", o.last);
}

static char fmts[FBX_LOG_SITES + 100][32];

static void
test_global_cap(void)
{
	struct out o;
	long long calls = 0, plain = 0, similar = 0, global = 0;
	int ticks = 0, summaries = 0;

	restart();
	/* one line from each of 300 sites in the same instant */
	for (int i = 0; i < 300; i++, calls++)
		fbxi_log(FBX_LOG_WARN, fmts[i], i);
	grab(&o);
	CHECK(o.lines == FBX_LOG_GLOBAL_BURST, "%d lines in an instant",
	    o.lines);
	plain += o.plain;

	/* the global bucket is empty: storage errors still get out, with
	 * their own site's limit only */
	for (int i = 0; i < 1000; i++)
		FBX_LOGE("turn failed: %d", i);
	grab(&o);
	CHECK(o.plain == FBX_LOG_SITE_BURST, "errors at the cap: %d lines",
	    o.plain);
	/* and the first one brings out the global count */
	CHECK(o.globals == 1 && o.global == 300 - FBX_LOG_GLOBAL_BURST &&
	        strstr(o.first, "(200 lines suppressed by the global") != NULL,
	    "global count %lld: %s", o.global, o.first);
	fake_now += S;
	FBX_LOGE("turn failed: %d", -1);
	grab(&o);
	CHECK(o.with_count == 1 &&
	        o.last_count == 1000 - FBX_LOG_SITE_BURST,
	    "error count %lld", o.last_count);

	/* the pending global count comes out before the next line */
	restart();
	for (int i = 0; i < 300; i++)
		fbxi_log(FBX_LOG_WARN, fmts[i], i);
	fake_now += S;
	fbxi_log(FBX_LOG_WARN, fmts[0], -1);
	grab(&o);
	CHECK(o.globals == 1 && o.global == 300 - FBX_LOG_GLOBAL_BURST,
	    "global count %lld in %d lines", o.global, o.globals);

	/* a sustained flood over 300 sites for 10 s, 100 steps a second:
	 * what is written stays under the global rate */
	restart();
	calls = 0;
	for (int i = 0; i < 300; i++, calls++)
		fbxi_log(FBX_LOG_WARN, fmts[i], i);
	grab(&o);
	plain = o.plain;
	for (int step = 0; step < 1000; step++) {
		fake_now += S / 100;
		for (int i = 0; i < 300; i++, calls++)
			fbxi_log(FBX_LOG_WARN, fmts[i], step);
	}
	grab(&o);
	CHECK(o.lines - o.globals <= 10 * FBX_LOG_GLOBAL_PER_S + 1,
	    "%d lines (%d global counts) in 10 s", o.lines, o.globals);
	CHECK(o.lines - o.globals >= 10 * FBX_LOG_GLOBAL_PER_S - 1,
	    "only %d lines in 10 s", o.lines - o.globals);
	plain += o.plain;
	similar += o.similar;
	global += o.global;
	summaries += o.summaries;
	/* then quiet: a tick now and then flushes every pending count */
	for (int round = 0; round < 10; round++) {
		fake_now += 10 * S;
		FBX_LOGI("tick %d", round);
		ticks++;
		grab(&o);
		plain += o.plain;
		similar += o.similar;
		global += o.global;
		summaries += o.summaries;
	}
	CHECK(plain - ticks + similar + global == calls,
	    "accounting: %lld written + %lld + %lld counted != %lld calls",
	    plain - ticks, similar, global, calls);
	CHECK(summaries > 0, "no quiet-site summaries");
}

static void
test_table_full(void)
{
	struct out o;
	int extra = 100;

	restart();
	/* fill the table slowly enough for the global limit */
	for (int i = 0; i < FBX_LOG_SITES; i++) {
		fake_now += S / 10;
		fbxi_log(FBX_LOG_WARN, fmts[i], i);
	}
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITES, "%d lines filling the table",
	    o.lines);
	/* further sites share one bucket */
	fake_now += 10 * S;
	for (int i = FBX_LOG_SITES; i < FBX_LOG_SITES + extra; i++)
		fbxi_log(FBX_LOG_WARN, fmts[i], i);
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITE_BURST, "%d lines from untracked sites",
	    o.lines);
	/* a tracked site's line brings out their count (a new site would
	 * itself be untracked and carry it) */
	fake_now += S;
	fbxi_log(FBX_LOG_WARN, fmts[1], -1);
	grab(&o);
	CHECK(o.summaries == 0 && o.lines == 2 &&
	        strstr(o.last, "warn  (90 messages from untracked sites "
	                       "suppressed)") != NULL,
	    "%d lines: %s", o.lines, o.last);
	/* tracked sites are unaffected */
	fbxi_log(FBX_LOG_WARN, fmts[0], 0);
	grab(&o);
	CHECK(o.lines == 1, "tracked site wrote %d", o.lines);
}

static void *
hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++)
		FBX_LOGW("threaded %d", i);
	return NULL;
}

static void
test_threads(void)
{
	pthread_t t[4];
	struct out o;

	restart();
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	grab(&o);
	CHECK(o.lines == FBX_LOG_SITE_BURST, "threads wrote %d", o.lines);
	fake_now += S;
	FBX_LOGW("threaded %d", -1);
	grab(&o);
	CHECK(o.last_count == 4 * 20000 - FBX_LOG_SITE_BURST,
	    "threads count %lld", o.last_count);
}

int
main(void)
{
	cap = tmpfile();
	if (cap == NULL) {
		perror("tmpfile");
		return 1;
	}
	fbxi_log_set_clock(fake_clock);
	fbxi_log_set_output(cap);
	for (int i = 0; i < FBX_LOG_SITES + 100; i++)
		snprintf(fmts[i], sizeof(fmts[i]), "site %03d says %%d", i);
	test_burst();
	test_independent_sites();
	test_quiet_site_swept();
	test_named_sites();
	test_global_cap();
	test_table_full();
	test_threads();
	fbxi_log_set_output(NULL);
	fbxi_log_set_clock(NULL);
	fclose(cap);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
