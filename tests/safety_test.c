/*
 * safety_test.c: the pure decision logic of the safety controls
 * (dispatcher/safety.c) with exact numbers: sliding windows, organisation
 * and global circuit breakers, blast-radius limits, token buckets and the
 * wave plan of staged rollouts. The breaker cases replay the incident it
 * was built for (incidents.md 1: an expired attestation certificate made
 * an MDM auto-lock ~32,000 devices in ~40 organisations, ~20,000 of them
 * in one). Time is always passed in as now_ms: nothing here reads a clock.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safety.h"

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

/* 2021-10-17 13:00:00 UTC (22:00 JST), a multiple of the 20 s bucket of a
 * 600 s window, so bucket boundaries below fall on round offsets. */
#define T0 INT64_C(1634475600000)
#define MIN_MS INT64_C(60000)
#define WIN_MS INT64_C(600000) /* default breaker window */
#define BKT_MS INT64_C(20000)  /* 600 s / FBXI_WIN_BUCKETS */

#define ORG_FLEET 20000u /* the vaccination-record customer's tablets */
#define ORG_ALLOW 200u   /* 1% of ORG_FLEET */

#define STORM 20000

/* ---- sliding window ---------------------------------------------------- */

static void
test_window(void)
{
	struct fbxi_window w;
	uint64_t s;

	fbxi_window_init(&w, 0);
	CHECK(w.window_s == 600, "window_s 0 -> 600, got %u", w.window_s);

	fbxi_window_init(&w, 600);
	CHECK(fbxi_window_sum(&w, T0) == 0, "fresh window sums to 0");
	fbxi_window_add(&w, T0, 3);
	fbxi_window_add(&w, T0 + 1000, 4);           /* bucket 0 */
	fbxi_window_add(&w, T0 + BKT_MS + 5000, 5);  /* bucket 1 */
	fbxi_window_add(&w, T0 + 5 * MIN_MS, 6);     /* bucket 15 */
	s = fbxi_window_sum(&w, T0 + 5 * MIN_MS);
	CHECK(s == 18, "adds within the window sum: want 18, got %llu",
	    (unsigned long long)s);
	s = fbxi_window_sum(&w, T0 + WIN_MS - 1);
	CHECK(s == 18, "all still in at window-1ms: want 18, got %llu",
	    (unsigned long long)s);
	/* bucket by bucket: bucket 0 (3+4) leaves at +600 s, bucket 1 (5)
	 * at +620 s, bucket 15 (6) at +900 s */
	s = fbxi_window_sum(&w, T0 + WIN_MS);
	CHECK(s == 11, "bucket 0 out at +600s: want 11, got %llu",
	    (unsigned long long)s);
	s = fbxi_window_sum(&w, T0 + WIN_MS + BKT_MS - 1);
	CHECK(s == 11, "bucket 1 still in at +620s-1ms: want 11, got %llu",
	    (unsigned long long)s);
	s = fbxi_window_sum(&w, T0 + WIN_MS + BKT_MS);
	CHECK(s == 6, "bucket 1 out at +620s: want 6, got %llu",
	    (unsigned long long)s);
	s = fbxi_window_sum(&w, T0 + 15 * MIN_MS - 1);
	CHECK(s == 6, "bucket 15 in at +900s-1ms: want 6, got %llu",
	    (unsigned long long)s);
	s = fbxi_window_sum(&w, T0 + 15 * MIN_MS);
	CHECK(s == 0, "all out at +900s: want 0, got %llu",
	    (unsigned long long)s);
	fbxi_window_add(&w, T0 + 15 * MIN_MS, 2);
	s = fbxi_window_sum(&w, T0 + 15 * MIN_MS);
	CHECK(s == 2, "counts again after emptying: want 2, got %llu",
	    (unsigned long long)s);

	/* a jump longer than the window clears every bucket at once */
	fbxi_window_init(&w, 600);
	for (int i = 0; i < FBXI_WIN_BUCKETS; i++)
		fbxi_window_add(&w, T0 + i * BKT_MS, 10);
	s = fbxi_window_sum(&w, T0 + (FBXI_WIN_BUCKETS - 1) * BKT_MS);
	CHECK(s == 300, "30 buckets x 10: want 300, got %llu",
	    (unsigned long long)s);
	s = fbxi_window_sum(&w, T0 + 5 * WIN_MS + 12345);
	CHECK(s == 0, "jump of 5 windows clears: want 0, got %llu",
	    (unsigned long long)s);
	fbxi_window_add(&w, T0 + 5 * WIN_MS + 12345, 1);
	s = fbxi_window_sum(&w, T0 + 5 * WIN_MS + 12345);
	CHECK(s == 1, "after the jump: want 1, got %llu",
	    (unsigned long long)s);

	/* a short window: gone one window plus one bucket later whatever the
	 * alignment */
	fbxi_window_init(&w, 1); /* 33 ms buckets */
	fbxi_window_add(&w, T0 + 7, 9);
	CHECK(fbxi_window_sum(&w, T0 + 7 + 900) == 9, "1 s window keeps 0.9 s");
	CHECK(fbxi_window_sum(&w, T0 + 7 + 1000 + 33) == 0,
	    "1 s window drops after 1 s + a bucket");

	/* sums never wrap: a bucket saturates, the sum is 64-bit */
	fbxi_window_init(&w, 600);
	fbxi_window_add(&w, T0, UINT32_MAX);
	fbxi_window_add(&w, T0, 5);
	s = fbxi_window_sum(&w, T0);
	CHECK(s == UINT32_MAX, "saturated bucket: want %u, got %llu",
	    UINT32_MAX, (unsigned long long)s);
	for (int i = 1; i < FBXI_WIN_BUCKETS; i++)
		fbxi_window_add(&w, T0 + i * BKT_MS, UINT32_MAX);
	s = fbxi_window_sum(&w, T0 + (FBXI_WIN_BUCKETS - 1) * BKT_MS);
	CHECK(s == (uint64_t)FBXI_WIN_BUCKETS * UINT32_MAX,
	    "30 full buckets: want %llu, got %llu",
	    (unsigned long long)FBXI_WIN_BUCKETS * UINT32_MAX,
	    (unsigned long long)s);
}

/* ---- organisation breakers --------------------------------------------- */

static void
brk_new(struct fbxi_breaker *b, const struct fbx_breaker_cfg *set)
{
	struct fbx_breaker_cfg cfg;

	fbxi_breaker_defaults(&cfg);
	if (set)
		fbxi_breaker_cfg_merge(&cfg, set);
	fbxi_breaker_init(b, &cfg);
}

static void
test_breaker_cfg(void)
{
	struct fbx_breaker_cfg c, set;
	struct fbxi_breaker b;

	fbxi_breaker_defaults(&c);
	CHECK(c.window_s == 600 && c.min_count == 1 && c.share_ppm == 10000 &&
	    c.baseline_mult == 10 && c.global_orgs == 3 && c.shadow == 0 &&
	    c.settle_s == 30 && c.min_samples == 100 &&
	    c.global_share_ppm == 10000,
	    "defaults: 600 s, max(1, 1%%), x10 after 100 samples, 3 orgs or "
	    "1%% of all devices, settle 30 s, enforcing");

	memset(&set, 0, sizeof(set));
	set.min_count = 7;
	set.shadow = 1;
	fbxi_breaker_cfg_merge(&c, &set);
	CHECK(c.window_s == 600 && c.min_count == 7 && c.share_ppm == 10000 &&
	    c.baseline_mult == 10 && c.global_orgs == 3 && c.shadow == 1,
	    "merge applies only non-zero fields; shadow 1 = shadow");
	memset(&set, 0, sizeof(set));
	fbxi_breaker_cfg_merge(&c, &set);
	CHECK(c.shadow == 1 && c.min_count == 7, "shadow 0 keeps shadow");
	set.shadow = 2;
	fbxi_breaker_cfg_merge(&c, &set);
	CHECK(c.shadow == 0, "shadow 2 sets enforcing");

	brk_new(&b, NULL);
	CHECK(b.version == FBXI_BRK_VERSION && b.state == FBX_BS_CLOSED &&
	    b.manual == 0 && b.trips == 0 && b.baseline_x1000 == 0 &&
	    b.win.window_s == 600,
	    "a new breaker is closed, empty, versioned");
}

static void
test_allowance(void)
{
	struct fbxi_breaker b;
	struct fbx_breaker_cfg set;
	static const struct {
		uint32_t fleet, want;
	} tab[] = {
		{ORG_FLEET, ORG_ALLOW}, /* 1% of 20,000 */
		{32000, 320},           /* the whole incident as one fleet */
		{308, 3},               /* one of the incident's 39 small ones */
		{50, 1},                /* 0.5 < 1: max(1, 1%) */
		{199, 1},               /* 1.99 rounds down */
		{200, 2},
		{1, 1},
		{0, 1},
	};
	uint32_t a;

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		brk_new(&b, NULL);
		a = fbxi_breaker_allowance(&b, T0, tab[i].fleet);
		CHECK(a == tab[i].want, "allowance(fleet %u): want %u, got %u",
		    tab[i].fleet, tab[i].want, a);
	}

	/* the product is 64-bit and clamps to 32 */
	memset(&set, 0, sizeof(set));
	set.share_ppm = FBX_PPM;
	brk_new(&b, &set);
	a = fbxi_breaker_allowance(&b, T0, UINT32_MAX);
	CHECK(a == UINT32_MAX, "100%% of UINT32_MAX: got %u", a);
	set.share_ppm = 2 * FBX_PPM;
	brk_new(&b, &set);
	a = fbxi_breaker_allowance(&b, T0, UINT32_MAX);
	CHECK(a == UINT32_MAX, "200%% of UINT32_MAX clamps: got %u", a);
}


static void
test_admit(void)
{
	struct fbxi_breaker b;
	int tripped = -1, v;
	uint64_t s;

	/* admit counts devices, not commands */
	brk_new(&b, NULL);
	v = fbxi_breaker_admit(&b, T0, ORG_ALLOW, ORG_FLEET, &tripped);
	CHECK(v == FBXI_ADMIT && tripped == 0,
	    "a command of exactly the allowance is admitted (v %d)", v);
	s = fbxi_window_sum(&b.win, T0);
	CHECK(s == ORG_ALLOW, "window counts %u devices, got %llu", ORG_ALLOW,
	    (unsigned long long)s);
	v = fbxi_breaker_admit(&b, T0, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 1, "the next device trips it");

	brk_new(&b, NULL);
	v = fbxi_breaker_admit(&b, T0, ORG_ALLOW + 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 1,
	    "a single command of allowance+1 devices trips it (v %d)", v);
	CHECK(fbxi_window_sum(&b.win, T0) == 0, "a held command is not counted");

	/* the command that would pass the allowance is the one that trips */
	brk_new(&b, NULL);
	for (uint32_t i = 0; i < ORG_ALLOW - 1; i++) {
		v = fbxi_breaker_admit(&b, T0 + i, 1, ORG_FLEET, &tripped);
		if (v != FBXI_ADMIT || tripped != 0)
			break;
	}
	CHECK(fbxi_window_sum(&b.win, T0 + 1000) == ORG_ALLOW - 1,
	    "399 single locks admitted");
	v = fbxi_breaker_admit(&b, T0 + 1000, 2, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 1, "399 + 2 > 400 trips (v %d)", v);
	CHECK(b.state == FBX_BS_CLOSED && b.trips == 0,
	    "admit decides; the caller opens it with fbxi_breaker_trip");
	v = fbxi_breaker_admit(&b, T0 + 1001, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_ADMIT && tripped == 0, "399 + 1 = 400 fits (v %d)", v);

	/* once open, every command is held, and does not "trip" again */
	fbxi_breaker_trip(&b, T0 + 1001, "engine", "auto lock spike", 0);
	CHECK(b.state == FBX_BS_OPEN && b.manual == 0 && b.trips == 1 &&
	    b.tripped_ms == T0 + 1001 && strcmp(b.tripped_by, "engine") == 0 &&
	    strcmp(b.note, "auto lock spike") == 0, "automatic trip recorded");
	v = fbxi_breaker_admit(&b, T0 + 1002, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 0, "open: held (v %d, tripped %d)",
	    v, tripped);
	v = fbxi_breaker_admit(&b, T0 + 10 * WIN_MS, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 0,
	    "open: still held ten windows later (v %d)", v);
	v = fbxi_breaker_admit(&b, T0 + 10 * WIN_MS, 1, 100000000, &tripped);
	CHECK(v == FBXI_HOLD, "open: held whatever the fleet");
}

/* max_in_window - the most admissions (sorted times) in any half-open
 * interval (t - win, t]: what an observer counting exactly would see. */
static uint32_t
max_in_window(const int64_t *t, size_t n, int64_t win)
{
	uint32_t best = 0;
	size_t lo = 0;

	for (size_t hi = 0; hi < n; hi++) {
		while (t[lo] <= t[hi] - win)
			lo++;
		if (hi - lo + 1 > best)
			best = (uint32_t)(hi - lo + 1);
	}
	return best;
}

/* storm - STORM single-device automatic locks `spacing` ms apart against
 * one organisation breaker. With `engine` the caller opens the breaker on
 * the first trip as the engine does; without, it ignores the trip, and the
 * window alone must still bound what is admitted. */
static void
storm(int64_t spacing, int engine)
{
	static int64_t at[STORM];
	struct fbxi_breaker b;
	uint32_t admitted = 0, held = 0, trips = 0, peak;
	int first_trip = -1, tripped, v, other = 0;

	brk_new(&b, NULL);
	for (int i = 0; i < STORM; i++) {
		int64_t now = T0 + i * spacing;
		v = fbxi_breaker_admit(&b, now, 1, ORG_FLEET, &tripped);
		if (v == FBXI_ADMIT) {
			at[admitted++] = now;
		} else if (v == FBXI_HOLD) {
			held++;
		} else {
			other++;
		}
		if (tripped) {
			trips++;
			if (first_trip < 0)
				first_trip = i;
			if (engine)
				fbxi_breaker_trip(&b, now, "engine",
				    "auto lock spike", 0);
		}
	}
	peak = max_in_window(at, admitted, WIN_MS);
	CHECK(other == 0, "storm %lld ms: no shadow verdicts when enforcing",
	    (long long)spacing);
	CHECK(peak <= ORG_ALLOW,
	    "storm %lld ms engine %d: %u admitted in one window > %u",
	    (long long)spacing, engine, peak, ORG_ALLOW);
	CHECK(admitted + held == STORM, "every command decided");
	CHECK(first_trip == (int)ORG_ALLOW,
	    "storm %lld ms engine %d: command #%u trips, got #%d",
	    (long long)spacing, engine, ORG_ALLOW, first_trip);
	if (engine || spacing * STORM < WIN_MS) {
		/* all inside one window, or open after the first trip */
		CHECK(admitted == ORG_ALLOW,
		    "storm %lld ms engine %d: want %u admitted, got %u",
		    (long long)spacing, engine, ORG_ALLOW, admitted);
		CHECK(held == STORM - ORG_ALLOW, "want %u held, got %u",
		    STORM - ORG_ALLOW, held);
	}
	if (engine) {
		CHECK(trips == 1 && b.trips == 1 && b.state == FBX_BS_OPEN,
		    "storm %lld ms: one trip, then open (trips %u)",
		    (long long)spacing, trips);
	} else {
		CHECK(trips == held, "ignored trips: each hold reports a trip");
		CHECK(b.state == FBX_BS_CLOSED, "nobody opened it");
	}
	if (!engine && spacing * STORM >= 3 * WIN_MS) {
		/* a closed breaker admits again as the window slides */
		CHECK(admitted >= 3 * ORG_ALLOW && admitted < STORM,
		    "storm %lld ms over %lld windows admitted %u",
		    (long long)spacing, (long long)(spacing * STORM / WIN_MS),
		    admitted);
	}
}

static void
test_storms(void)
{
	storm(1, 1);
	storm(0, 1);
	storm(1, 0);
	storm(0, 0);
	storm(100, 1);
	storm(100, 0); /* 2,000 s: three windows and a third */
}

static void
test_rooted_phone(void)
{
	struct fbxi_breaker b;
	struct fbx_breaker_cfg set;
	static const uint32_t fleets[] = {0, 1, 2, 5, 49, 50, ORG_FLEET};
	int tripped, v;

	for (size_t i = 0; i < sizeof(fleets) / sizeof(fleets[0]); i++) {
		brk_new(&b, NULL);
		v = fbxi_breaker_admit(&b, T0, 1, fleets[i], &tripped);
		CHECK(v == FBXI_ADMIT && tripped == 0,
		    "one lock in a fleet of %u is admitted (v %d)", fleets[i],
		    v);
	}

	/* even against the smallest baseline: min_count is a floor */
	brk_new(&b, NULL);
	(void)fbxi_breaker_allowance(&b, T0, ORG_FLEET);
	v = fbxi_breaker_admit(&b, T0 + MIN_MS, 1, ORG_FLEET, &tripped);
	(void)fbxi_breaker_allowance(&b, T0 + WIN_MS, ORG_FLEET);
	CHECK(b.baseline_x1000 == 250, "one lock a window: baseline 0.25, got "
	    "%llu", (unsigned long long)b.baseline_x1000);
	v = fbxi_breaker_admit(&b, T0 + WIN_MS + 1, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_ADMIT && tripped == 0,
	    "one lock over a baseline of 0.25 is admitted (v %d)", v);

	/* and min_count 1 still admits one */
	memset(&set, 0, sizeof(set));
	set.min_count = 1;
	brk_new(&b, &set);
	v = fbxi_breaker_admit(&b, T0, 1, 1, &tripped);
	CHECK(v == FBXI_ADMIT && tripped == 0, "min_count 1, fleet 1: admit");
}

static void
test_shadow(void)
{
	struct fbxi_breaker b;
	struct fbx_breaker_cfg set;
	uint32_t n[3] = {0, 0, 0};
	int tripped, v, any_trip = 0;
	uint64_t s;

	memset(&set, 0, sizeof(set));
	set.shadow = 1;
	brk_new(&b, &set);
	for (int i = 0; i < 1000; i++) {
		v = fbxi_breaker_admit(&b, T0, 1, ORG_FLEET, &tripped);
		if (v >= 0 && v <= 2)
			n[v]++;
		any_trip |= tripped;
	}
	CHECK(n[FBXI_ADMIT] == ORG_ALLOW && n[FBXI_HOLD] == 0 &&
	    n[FBXI_ADMIT_SHADOW] == 1000 - ORG_ALLOW,
	    "shadow: %u admit, 0 hold, %u shadow; got %u/%u/%u", ORG_ALLOW,
	    1000 - ORG_ALLOW, n[0], n[1], n[2]);
	CHECK(!any_trip && b.state == FBX_BS_CLOSED && b.trips == 0,
	    "shadow never trips");
	CHECK(b.would_hold == 1000 - ORG_ALLOW, "would_hold %u, got %llu",
	    1000 - ORG_ALLOW, (unsigned long long)b.would_hold);
	s = fbxi_window_sum(&b.win, T0);
	CHECK(s == 1000, "shadow counts what it lets through: got %llu",
	    (unsigned long long)s);
	v = fbxi_breaker_admit(&b, T0, 50000, ORG_FLEET, &tripped);
	CHECK(v == FBXI_ADMIT_SHADOW && tripped == 0 &&
	    b.would_hold == 1000 - ORG_ALLOW + 1,
	    "shadow: a huge command goes through (v %d)", v);

	/* opened by hand in shadow mode: still holds nothing, counts what
	 * it admits in its window and as would_hold */
	{
		uint64_t wh = b.would_hold, w0 = fbxi_window_sum(&b.win, T0);
		fbxi_breaker_trip(&b, T0, "dave", "by hand", 1);
		v = fbxi_breaker_admit(&b, T0, 3, ORG_FLEET, &tripped);
		CHECK(v == FBXI_ADMIT_SHADOW && tripped == 0 &&
		        b.would_hold == wh + 1 &&
		        fbxi_window_sum(&b.win, T0) == w0 + 3,
		    "open shadow: v %d, would_hold +%llu, window +%llu", v,
		    (unsigned long long)(b.would_hold - wh),
		    (unsigned long long)(fbxi_window_sum(&b.win, T0) - w0));
		b.state = FBX_BS_CLOSED;
	}

	/* switched to enforcing, the same breaker holds */
	set.shadow = 2;
	fbxi_breaker_cfg_merge(&b.cfg, &set);
	v = fbxi_breaker_admit(&b, T0, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 1, "enforcing again: trips");
	/* and once open (the gate trips it), holds without tripping again */
	fbxi_breaker_trip(&b, T0, "engine", "spike", 0);
	v = fbxi_breaker_admit(&b, T0, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 0, "open and enforcing: holds");
}

static void
test_trip_reset(void)
{
	struct fbxi_breaker b;
	char longid[200], longnote[400];
	int tripped, v;

	/* manual trip on a quiet breaker */
	brk_new(&b, NULL);
	fbxi_breaker_trip(&b, T0, "alice", "attestation cert expired", 1);
	CHECK(b.state == FBX_BS_OPEN && b.manual == 1 && b.trips == 1 &&
	    b.tripped_ms == T0, "manual trip: open, manual, counted");
	CHECK(strcmp(b.tripped_by, "alice") == 0 &&
	    strcmp(b.note, "attestation cert expired") == 0,
	    "manual trip: who and note kept");
	v = fbxi_breaker_admit(&b, T0 + 1, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 0, "manual open holds one lock");

	/* reset closes it and clears the window */
	brk_new(&b, NULL);
	v = fbxi_breaker_admit(&b, T0, ORG_ALLOW, ORG_FLEET, &tripped);
	v = fbxi_breaker_admit(&b, T0 + 1000, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 1, "full window trips");
	fbxi_breaker_trip(&b, T0 + 1000, "engine", "spike", 0);
	b.held = 7;
	fbxi_breaker_reset(&b, T0 + 2000, "bob", "cert renewed");
	CHECK(b.state == FBX_BS_CLOSED && b.manual == 0 && b.held == 0 &&
	    b.trips == 1, "reset: closed, held cleared, trips kept");
	/* who opened it stays; the note tells who closed it and why */
	CHECK(strcmp(b.tripped_by, "engine") == 0 &&
	    strcmp(b.note, "reset by bob: cert renewed") == 0,
	    "reset: opener kept, note names the operator who reset");
	CHECK(fbxi_window_sum(&b.win, T0 + 2000) == 0, "reset clears the window");
	v = fbxi_breaker_admit(&b, T0 + 2000, ORG_ALLOW, ORG_FLEET, &tripped);
	CHECK(v == FBXI_ADMIT && tripped == 0,
	    "after reset a full allowance fits in the same window");
	v = fbxi_breaker_admit(&b, T0 + 2001, 1, ORG_FLEET, &tripped);
	CHECK(v == FBXI_HOLD && tripped == 1, "and the next one trips");

	/* over-long who and note are cut, not overflowed */
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	memset(longnote, 'n', sizeof(longnote) - 1);
	longnote[sizeof(longnote) - 1] = '\0';
	fbxi_breaker_trip(&b, T0, longid, longnote, 1);
	CHECK(strlen(b.tripped_by) == FBX_ID_MAX &&
	    strlen(b.note) == FBX_NOTE_MAX - 1, "long who/note truncated");
}

static void
test_baseline(void)
{
	struct fbxi_breaker b;
	struct fbx_breaker_cfg set;
	int tripped, v, n;
	uint32_t a;

	/* a small organisation whose legitimate rate is higher than 1% of
	 * its fleet: 308 devices (allowance 3), 40 locks a window */
	memset(&set, 0, sizeof(set));
	set.min_samples = 100;
	brk_new(&b, &set);
	a = fbxi_breaker_allowance(&b, T0, 308);
	CHECK(a == 3 && b.baseline_x1000 == 0, "no baseline: 1%% only, got %u",
	    a);
	/* a window of 3 (within the allowance): the baseline learns them */
	for (int w = 0; w < 12; w++) {
		for (int k = 0; k < 3; k++) {
			v = fbxi_breaker_admit(&b,
			    T0 + w * WIN_MS + (k + 1) * MIN_MS, 1, 308,
			    &tripped);
			CHECK(v == FBXI_ADMIT, "window %d lock %d", w, k);
		}
	}
	a = fbxi_breaker_allowance(&b, T0 + 12 * WIN_MS, 308);
	CHECK(b.baseline_x1000 > 2500 && b.baseline_x1000 <= 3000,
	    "baseline of 3 a window: %llu",
	    (unsigned long long)b.baseline_x1000);
	/* 36 samples < min_samples 100: the baseline raises nothing yet */
	CHECK(b.baseline_samples == 36 && a == 3,
	    "young baseline (%llu samples): allowance %u, want 3",
	    (unsigned long long)b.baseline_samples, a);
	/* with the samples it raises the allowance to 10 x baseline */
	b.cfg.min_samples = 30;
	a = fbxi_breaker_allowance(&b, T0 + 12 * WIN_MS + 1, 308);
	CHECK(a == (uint32_t)(b.baseline_x1000 * 10 / 1000),
	    "baseline raises: allowance %u, baseline %llu", a,
	    (unsigned long long)b.baseline_x1000);
	CHECK(a > 3, "raised above the share (%u)", a);
	/* baseline_mult 0 switches the baseline rule off */
	b.cfg.baseline_mult = 0;
	a = fbxi_breaker_allowance(&b, T0 + 12 * WIN_MS + 2, 308);
	CHECK(a == 3, "baseline_mult 0: want 3, got %u", a);
	b.cfg.baseline_mult = 10;

	/* a quiet organisation's baseline never lowers the share: one lock
	 * a window, baseline 0.25 */
	brk_new(&b, NULL);
	(void)fbxi_breaker_allowance(&b, T0, ORG_FLEET);
	(void)fbxi_breaker_admit(&b, T0 + MIN_MS, 1, ORG_FLEET, &tripped);
	a = fbxi_breaker_allowance(&b, T0 + WIN_MS, ORG_FLEET);
	CHECK(b.baseline_x1000 == 250 && a == ORG_ALLOW,
	    "baseline 0.25: allowance stays %u, got %u", ORG_ALLOW, a);

	/* a window that trips is not folded in */
	b.cfg.min_samples = 1;
	for (n = 0; n < 1000; n++) {
		v = fbxi_breaker_admit(&b, T0 + WIN_MS + 1000 + n, 1,
		    ORG_FLEET, &tripped);
		if (tripped) {
			fbxi_breaker_trip(&b, T0 + WIN_MS + 1000 + n, "engine",
			    "spike", 0);
			break;
		}
	}
	/* the lock of the window before is still in it */
	CHECK(n == (int)ORG_ALLOW - 1 && v == FBXI_HOLD,
	    "lock %d trips, want %u", n + 1, ORG_ALLOW);
	(void)fbxi_breaker_allowance(&b, T0 + 3 * WIN_MS, ORG_FLEET);
	CHECK(b.baseline_x1000 < 250,
	    "tripped window not folded: baseline %llu",
	    (unsigned long long)b.baseline_x1000);
	/* nor after the reset: its window belonged to the incident */
	fbxi_breaker_reset(&b, T0 + 3 * WIN_MS + 1, "bob", "ok");
	CHECK(b.baseline_x1000 < 250, "reset keeps the baseline: %llu",
	    (unsigned long long)b.baseline_x1000);
}

/* ---- change point (the incident's onset) ------------------------------ */

static void
test_onset(void)
{
	struct fbxi_breaker b;
	int tripped, v;
	int64_t t, storm_at;

	/* legitimate locks every 15 s; the storm starts at +60 s with one
	 * lock every 2 s (308 devices over 10 minutes) */
	brk_new(&b, NULL);
	for (t = 0; t < 60000; t += 15000) {
		fbxi_breaker_observe(&b, T0 + t, 1);
		v = fbxi_breaker_admit(&b, T0 + t, 1, 100000, &tripped);
		CHECK(v == FBXI_ADMIT, "baseline at %lld", (long long)t);
	}
	storm_at = T0 + 60000;
	for (t = 0; t < 20; t++) {
		fbxi_breaker_observe(&b, storm_at + t * 2000, 1);
	}
	fbxi_breaker_trip(&b, storm_at + 40000, "engine", "spike", 0);
	CHECK(b.onset_ms == storm_at, "onset %lld ms after the storm began",
	    (long long)(b.onset_ms - storm_at));

	/* a fast storm right after a legitimate lock 10 s earlier */
	brk_new(&b, NULL);
	fbxi_breaker_observe(&b, T0, 1);
	for (t = 0; t < 100; t++)
		fbxi_breaker_observe(&b, T0 + 10000 + t * 10, 1);
	fbxi_breaker_trip(&b, T0 + 11000, "engine", "spike", 0);
	CHECK(b.onset_ms == T0 + 10000, "onset %lld, want the storm's start",
	    (long long)(b.onset_ms - T0));

	/* a trip long after a burst that has drained since (no arrival in
	 * between): the onset is the trip, not the burst */
	brk_new(&b, NULL);
	fbxi_breaker_observe(&b, T0, 40);
	fbxi_breaker_trip(&b, T0 + 60000, "engine", "certificate", 0);
	CHECK(b.onset_ms == T0 + 60000, "drained burst: onset %lld",
	    (long long)(b.onset_ms - T0));

	/* a manual trip with nothing running: the onset is the trip */
	brk_new(&b, NULL);
	fbxi_breaker_trip(&b, T0 + 5, "alice", "by hand", 1);
	CHECK(b.onset_ms == T0 + 5, "manual trip onset");

	/* a reset forgets the run */
	brk_new(&b, NULL);
	for (t = 0; t < 50; t++)
		fbxi_breaker_observe(&b, T0 + t, 1);
	fbxi_breaker_reset(&b, T0 + 100, "bob", "ok");
	fbxi_breaker_trip(&b, T0 + 200, "alice", "again", 1);
	CHECK(b.onset_ms == T0 + 200, "after a reset the old run is gone");
}

/* ---- fleet-wide share --------------------------------------------------- */

static void
test_global_share(void)
{
	struct fbxi_breaker g;
	int n;

	brk_new(&g, NULL);
	/* 32,000 devices: 1% = 320 */
	for (n = 0; n < 1000; n++)
		if (fbxi_breaker_global_admit(&g, T0 + n, 1, 32000))
			break;
	CHECK(n == 320, "the 321st device passes 1%% of 32,000 (got %d)",
	    n + 1);
	/* nothing enrolled: no rule */
	brk_new(&g, NULL);
	CHECK(fbxi_breaker_global_admit(&g, T0, 5, 0) == 0, "total 0");
	/* the window slides */
	brk_new(&g, NULL);
	CHECK(fbxi_breaker_global_admit(&g, T0, 300, 32000) == 0, "300");
	CHECK(fbxi_breaker_global_admit(&g, T0 + WIN_MS + BKT_MS, 300,
	          32000) == 0,
	    "a window later the first 300 are gone");
}

/* ---- global breaker ---------------------------------------------------- */

static void
test_global(void)
{
	struct fbxi_breaker g;
	struct fbx_breaker_cfg set;
	int r;

	brk_new(&g, NULL);
	CHECK(fbxi_breaker_note_org_trip(&g, T0) == 0, "1st org: no");
	CHECK(fbxi_breaker_note_org_trip(&g, T0 + MIN_MS) == 0, "2nd org: no");
	CHECK(fbxi_breaker_note_org_trip(&g, T0 + 2 * MIN_MS) == 1,
	    "3rd org within the window: trip");
	fbxi_breaker_trip(&g, T0 + 2 * MIN_MS, "engine", "3 orgs", 0);
	CHECK(fbxi_breaker_note_org_trip(&g, T0 + 3 * MIN_MS) == 0,
	    "already open: no second trip");

	/* trips spread wider than the window never add up */
	brk_new(&g, NULL);
	r = 0;
	for (int i = 0; i < 10; i++)
		r |= fbxi_breaker_note_org_trip(&g, T0 + i * (WIN_MS + 100000));
	CHECK(r == 0, "one org trip per 700 s never trips the global one");

	/* two in, the first slides out, then two more */
	brk_new(&g, NULL);
	CHECK(fbxi_breaker_note_org_trip(&g, T0) == 0, "t=0");
	CHECK(fbxi_breaker_note_org_trip(&g, T0 + 5 * MIN_MS) == 0, "t=300s");
	CHECK(fbxi_breaker_note_org_trip(&g, T0 + 700000) == 0,
	    "t=700s: t=0 has left, 2 in window");
	CHECK(fbxi_breaker_note_org_trip(&g, T0 + 800000) == 1,
	    "t=800s: 300, 700, 800 are 3 in window");

	/* global_orgs honoured; 0 means the default 3 */
	memset(&set, 0, sizeof(set));
	set.global_orgs = 5;
	brk_new(&g, &set);
	for (int i = 0; i < 4; i++)
		CHECK(fbxi_breaker_note_org_trip(&g, T0 + i) == 0,
		    "global_orgs 5: org %d no", i + 1);
	CHECK(fbxi_breaker_note_org_trip(&g, T0 + 4) == 1, "5th org trips");
	brk_new(&g, NULL);
	g.cfg.global_orgs = 0;
	CHECK(fbxi_breaker_note_org_trip(&g, T0) == 0 &&
	    fbxi_breaker_note_org_trip(&g, T0) == 0 &&
	    fbxi_breaker_note_org_trip(&g, T0) == 1, "global_orgs 0 -> 3");
}

/* ---- blast-radius limits ----------------------------------------------- */

static void
test_limits(void)
{
	struct fbxi_limit_cfg c;
	uint32_t cap;
	static const struct {
		int type;
		uint32_t count, ppm;
	} def[] = {
		{FBX_CMD_WIPE, 25, 10000},
		{FBX_CMD_CLEAR_PASSCODE, 100, 20000},
		{FBX_CMD_LOCK, 1000, 100000},
		{FBX_CMD_START_LOST_MODE, 1000, 100000},
		{FBX_CMD_REMOVE_APP, 0, 500000},
		{FBX_CMD_UNLOCK, 0, 0},
		{FBX_CMD_STOP_LOST_MODE, 0, 0},
		{FBX_CMD_QUERY, 0, 0},
		{FBX_CMD_RESTART, 0, 0},
		{FBX_CMD_INSTALL_APP, 0, 0},
		{FBX_CMD_SET_POLICY, 0, 0},
		{FBX_CMD_OS_UPDATE, 0, 0},
	};
	static const struct {
		uint32_t count, ppm, fleet, want;
	} tab[] = {
		{25, 10000, 1000, 10},      /* wipe: 1% of 1000 < 25 */
		{25, 10000, 100000, 25},    /* wipe: 25 < 1% of 100,000 */
		{25, 10000, 10, 1},         /* 0.1 -> at least 1 */
		{25, 10000, 0, 1},          /* empty fleet: still 1 */
		{1000, 100000, ORG_FLEET, 1000}, /* lock, the big customer */
		{1000, 100000, 5000, 500},
		{0, 0, 1000000, UINT32_MAX}, /* unlimited */
		{7, 0, 1000000, 7},          /* count only */
		{0, 1, 999999, 1},           /* share only, rounds to 0 -> 1 */
		{0, 1, 3000000, 3},
		{0, 500000, 11, 5},
		{UINT32_MAX, 0, 5, UINT32_MAX},
		{0, FBX_PPM, UINT32_MAX, UINT32_MAX},
		{0, 2 * FBX_PPM, UINT32_MAX, UINT32_MAX}, /* stays clamped */
	};

	for (size_t i = 0; i < sizeof(def) / sizeof(def[0]); i++) {
		memset(&c, 0xa5, sizeof(c));
		fbxi_limit_defaults(def[i].type, &c);
		CHECK(c.version == FBXI_LIM_VERSION && c.window_s == 3600 &&
		    c.max_count == def[i].count && c.max_share_ppm == def[i].ppm,
		    "defaults(type %d): want %u/%u, got %u/%u", def[i].type,
		    def[i].count, def[i].ppm, c.max_count, c.max_share_ppm);
	}
	fbxi_limit_defaults(FBX_CMD_UNLOCK, &c);
	CHECK(fbxi_limit_cap(&c, 32000) == UINT32_MAX, "unlock: unlimited");
	fbxi_limit_defaults(FBX_CMD_QUERY, &c);
	CHECK(fbxi_limit_cap(&c, 32000) == UINT32_MAX, "query: unlimited");
	fbxi_limit_defaults(FBX_CMD_LOCK, &c);
	cap = fbxi_limit_cap(&c, ORG_FLEET);
	CHECK(cap == 1000, "lock of 20,000 tablets: want 1000, got %u", cap);
	fbxi_limit_defaults(FBX_CMD_WIPE, &c);
	cap = fbxi_limit_cap(&c, ORG_FLEET);
	CHECK(cap == 25, "wipe of 20,000 tablets: want 25, got %u", cap);

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.version = FBXI_LIM_VERSION;
		c.max_count = tab[i].count;
		c.max_share_ppm = tab[i].ppm;
		cap = fbxi_limit_cap(&c, tab[i].fleet);
		CHECK(cap == tab[i].want, "cap(%u, %u ppm, fleet %u): want %u, "
		    "got %u", tab[i].count, tab[i].ppm, tab[i].fleet,
		    tab[i].want, cap);
	}
}

/* ---- token bucket ------------------------------------------------------ */

static void
test_bucket(void)
{
	struct fbxi_bucket k;
	uint32_t g, total;

	memset(&k, 0, sizeof(k));
	g = fbxi_bucket_take(&k, T0, 10, 50, 100);
	CHECK(g == 50, "starts full: want 50, got %u", g);
	g = fbxi_bucket_take(&k, T0, 10, 50, 1);
	CHECK(g == 0, "empty at the same instant: got %u", g);
	g = fbxi_bucket_take(&k, T0 + 50, 10, 50, 1);
	CHECK(g == 0, "half a token is none: got %u", g);
	g = fbxi_bucket_take(&k, T0 + 100, 10, 50, 5);
	CHECK(g == 1, "10/s: one token after 100 ms, got %u", g);
	g = fbxi_bucket_take(&k, T0 + 350, 10, 50, 5);
	CHECK(g == 2, "2.5 tokens grant 2, got %u", g);
	g = fbxi_bucket_take(&k, T0 + 400, 10, 50, 5);
	CHECK(g == 1, "0.5 kept + 0.5 refilled = 1, got %u", g);
	g = fbxi_bucket_take(&k, T0 + 1000000, 10, 50, 60);
	CHECK(g == 50, "never above burst after 1000 s idle: got %u", g);
	g = fbxi_bucket_take(&k, T0 + 1000000, 10, 50, 0);
	CHECK(g == 0, "want 0 grants 0");

	/* burst 0 means one second's worth */
	memset(&k, 0, sizeof(k));
	g = fbxi_bucket_take(&k, T0, 5, 0, 10);
	CHECK(g == 5, "burst 0 -> rate: want 5, got %u", g);

	/* rate 0 = unlimited */
	memset(&k, 0, sizeof(k));
	CHECK(fbxi_bucket_take(&k, T0, 0, 0, 123456) == 123456 &&
	    fbxi_bucket_take(&k, T0, 0, 7, UINT32_MAX) == UINT32_MAX,
	    "rate 0: everything granted");

	/* a steady drain: burst + rate x elapsed, exactly */
	memset(&k, 0, sizeof(k));
	total = 0;
	for (int i = 0; i < 1000; i++) {
		g = fbxi_bucket_take(&k, T0 + i * 100, 10, 50, 100);
		CHECK(g <= 50, "a grant above burst: %u", g);
		total += g;
	}
	CHECK(total == 50 + 999, "100 s at 10/s from full: want 1049, got %u",
	    total);

	/* an inexact rate (0.3 per step) grants whole tokens, never more
	 * than burst + rate x elapsed */
	memset(&k, 0, sizeof(k));
	total = 0;
	for (int i = 0; i <= 100; i++)
		total += fbxi_bucket_take(&k, T0 + i * 100, 3, 3, 1000);
	CHECK(total <= 3 + 30 && total >= 3 + 29,
	    "10 s at 3/s, burst 3: want 32..33, got %u", total);

	/* tokens given back: usable at once, never above burst */
	memset(&k, 0, sizeof(k));
	g = fbxi_bucket_take(&k, T0, 10, 50, 50);
	fbxi_bucket_give(&k, 10, 50, 20);
	g = fbxi_bucket_take(&k, T0, 10, 50, 100);
	CHECK(g == 20, "20 given back, 20 taken at the same instant: got %u",
	    g);
	fbxi_bucket_give(&k, 10, 50, 1000);
	g = fbxi_bucket_take(&k, T0, 10, 50, 100);
	CHECK(g == 50, "given back above burst: burst taken, got %u", g);
	fbxi_bucket_give(&k, 0, 0, 7);
	g = fbxi_bucket_take(&k, T0, 10, 50, 100);
	CHECK(g == 0, "a give with rate 0 (unlimited) adds nothing: got %u",
	    g);
}

/* ---- staged rollouts --------------------------------------------------- */

static uint32_t waves[1000001];

static uint64_t
plan_sum(const struct fbx_rollout_plan *p, uint32_t total, size_t *n,
    int *bad)
{
	uint64_t s = 0;

	*n = fbxi_rollout_plan_waves(p, total, waves,
	    sizeof(waves) / sizeof(waves[0]));
	*bad = 0;
	for (size_t i = 0; i < *n; i++) {
		if (waves[i] == 0)
			(*bad)++;
		s += waves[i];
	}
	return s;
}

static void
expect_waves(const char *what, const struct fbx_rollout_plan *p,
    uint32_t total, const uint32_t *want, size_t nwant)
{
	size_t n;
	int bad, same;
	uint64_t s = plan_sum(p, total, &n, &bad);

	same = n == nwant;
	for (size_t i = 0; same && i < n; i++)
		same = waves[i] == want[i];
	CHECK(same, "%s, total %u: %zu waves, first %u, last %u", what, total,
	    n, n ? waves[0] : 0, n ? waves[n - 1] : 0);
	CHECK(s == total && !bad, "%s, total %u: sums to %llu", what, total,
	    (unsigned long long)s);
}

static void
test_rollout(void)
{
	struct fbx_rollout_plan p, q;
	static const uint32_t totals[] = {1, 7, 1000, 1000000, 2, 99, 65537};
	uint32_t w[32], w1;
	size_t n;
	int bad;
	uint64_t s;

	memset(&p, 0, sizeof(p));
	fbxi_rollout_normalize(&p);
	CHECK(p.first_count == 0 && p.first_share_ppm == 10000 &&
	    p.growth_x100 == 200 && p.max_wave == 0 && p.bake_s == 0 &&
	    p.success_ppm == 950000 && p.failure_ppm == 100000 &&
	    p.min_results == 20, "normalize fills the defaults");
	memset(&q, 0, sizeof(q));
	q.first_count = 5;
	q.growth_x100 = 99;
	q.bake_s = 60;
	q.success_ppm = 2 * FBX_PPM;
	q.failure_ppm = 500000;
	q.min_results = 3;
	fbxi_rollout_normalize(&q);
	CHECK(q.first_count == 5 && q.first_share_ppm == 0 &&
	    q.growth_x100 == 200 && q.bake_s == 60 && q.success_ppm == 950000 &&
	    q.failure_ppm == 500000 && q.min_results == 3,
	    "normalize keeps valid values, fixes growth < 100 and ppm > 1e6");
	memset(&q, 0, sizeof(q));
	q.growth_x100 = 100;
	q.first_share_ppm = 50000;
	fbxi_rollout_normalize(&q);
	CHECK(q.growth_x100 == 100 && q.first_share_ppm == 50000,
	    "growth 100 (constant waves) is kept");

	/* default plan: 1%, doubling, the last wave takes what remains */
	{
		static const uint32_t a[] = {1};
		static const uint32_t b[] = {1, 2, 4};
		static const uint32_t c[] = {10, 20, 40, 80, 160, 320, 370};
		static const uint32_t d[] = {10000, 20000, 40000, 80000,
		    160000, 320000, 370000};
		expect_waves("default", &p, 1, a, 1);
		expect_waves("default", &p, 7, b, 3);
		expect_waves("default", &p, 1000, c, 7);
		expect_waves("default", &p, 1000000, d, 7);
	}
	n = fbxi_rollout_plan_waves(&p, 0, w, 32);
	CHECK(n == 0, "total 0: no waves, got %zu", n);

	/* max_wave caps every wave */
	q = p;
	q.max_wave = 50000;
	s = plan_sum(&q, 1000000, &n, &bad);
	CHECK(n == 22 && waves[0] == 10000 && waves[1] == 20000 &&
	    waves[2] == 40000 && waves[3] == 50000 && waves[20] == 50000 &&
	    waves[21] == 30000 && s == 1000000 && !bad,
	    "max_wave 50,000 of 1e6: 10k 20k 40k 18x50k 30k; got %zu waves",
	    n);

	/* first_count and growth 150 */
	memset(&q, 0, sizeof(q));
	q.first_count = 5;
	q.growth_x100 = 150;
	fbxi_rollout_normalize(&q);
	{
		static const uint32_t a[] = {5, 7, 10, 15, 22, 33, 8};
		static const uint32_t b[] = {5, 2};
		expect_waves("first 5, x1.5", &q, 100, a, 7);
		expect_waves("first 5, x1.5", &q, 7, b, 2);
	}
	/* growth 100: constant waves */
	memset(&q, 0, sizeof(q));
	q.first_count = 3;
	q.growth_x100 = 100;
	{
		static const uint32_t a[] = {3, 3, 3, 1};
		expect_waves("first 3, x1", &q, 10, a, 4);
	}
	/* a first wave bigger than the stage is the whole stage */
	memset(&q, 0, sizeof(q));
	q.first_count = 2000;
	fbxi_rollout_normalize(&q);
	{
		static const uint32_t a[] = {1000};
		expect_waves("first 2000", &q, 1000, a, 1);
	}
	memset(&q, 0, sizeof(q));
	q.first_share_ppm = FBX_PPM;
	fbxi_rollout_normalize(&q);
	{
		static const uint32_t a[] = {7};
		expect_waves("first 100%", &q, 7, a, 1);
	}
	/* the share rounds down but is at least 1 */
	memset(&q, 0, sizeof(q));
	q.first_share_ppm = 250000;
	q.growth_x100 = 300;
	fbxi_rollout_normalize(&q);
	{
		static const uint32_t a[] = {1, 2};
		static const uint32_t b[] = {2, 6, 1};
		expect_waves("first 25%, x3", &q, 3, a, 2);
		expect_waves("first 25%, x3", &q, 9, b, 3);
	}

	/* fbxi_rollout_wave directly */
	w1 = fbxi_rollout_wave(&p, 1000, 0, 0, 0);
	CHECK(w1 == 10, "wave 0 of 1000: want 10, got %u", w1);
	w1 = fbxi_rollout_wave(&p, 1000, 630, 6, 320);
	CHECK(w1 == 370, "wave 6 takes the remainder: want 370, got %u", w1);
	w1 = fbxi_rollout_wave(&p, 1000, 1000, 7, 370);
	CHECK(w1 == 0, "nothing left: want 0, got %u", w1);
	w1 = fbxi_rollout_wave(&p, 1000, 1500, 7, 370);
	CHECK(w1 == 0, "over-released: want 0, got %u", w1);
	w1 = fbxi_rollout_wave(&p, 1000, 10, 3, 0);
	CHECK(w1 == 10, "prev 0 restarts from the first size: got %u", w1);
	w1 = fbxi_rollout_wave(&p, UINT32_MAX, 0, 1, UINT32_MAX / 2 + 1);
	CHECK(w1 == UINT32_MAX, "growth is 64-bit, capped by the rest: %u",
	    w1);

	/* max limits the plan */
	n = fbxi_rollout_plan_waves(&p, 1000, w, 3);
	CHECK(n == 3 && w[0] == 10 && w[1] == 20 && w[2] == 40,
	    "max 3 waves: got %zu", n);

	/* every plan sums exactly to every total */
	{
		struct fbx_rollout_plan plans[6];
		memset(plans, 0, sizeof(plans));
		plans[1].max_wave = 50000;
		plans[2].first_count = 5;
		plans[2].growth_x100 = 150;
		plans[3].first_count = 3;
		plans[3].growth_x100 = 100;
		plans[3].max_wave = 2;
		plans[4].first_share_ppm = 333333;
		plans[4].growth_x100 = 1000;
		plans[5].first_count = 1;
		plans[5].growth_x100 = 250;
		plans[5].max_wave = 777;
		for (size_t i = 0; i < 6; i++) {
			fbxi_rollout_normalize(&plans[i]);
			for (size_t t = 0; t < sizeof(totals) / sizeof(totals[0]);
			     t++) {
				s = plan_sum(&plans[i], totals[t], &n, &bad);
				CHECK(s == totals[t] && !bad && n > 0,
				    "plan %zu total %u: sum %llu in %zu waves "
				    "(%d empty)", i, totals[t],
				    (unsigned long long)s, n, bad);
			}
		}
	}

	/* growth_x100 > 100 must grow a wave that no cap holds back: x1.5
	 * of a wave of 1 truncates to 1, so the stage never speeds up (a
	 * 1% first wave of a stage under 100 devices is 1) */
	memset(&q, 0, sizeof(q));
	q.growth_x100 = 150;
	fbxi_rollout_normalize(&q);
	w1 = fbxi_rollout_wave(&q, 50, 1, 1, 1);
	CHECK(w1 > 1, "growth 150 after a wave of 1: want > 1, got %u", w1);
	n = fbxi_rollout_plan_waves(&q, 50, waves, 1000);
	CHECK(n < 50, "growth 150, 50 devices: want fewer than 50 waves, "
	    "got %zu", n);
}

/* test_alert_gate - alert commands: at most max_running at once and one
 * per (kind, organisation, reason) per interval; what is dropped is
 * counted and handed back with the next alert of that key (issue 8). */
static void
test_alert_gate(void)
{
	struct fbxi_alert_gate g;
	uint64_t dropped = 99;

	fbxi_alert_gate_init(&g, 2, 1000);
	CHECK(fbxi_alert_admit(&g, 1, "o1", "r", 10000, 0, &dropped) == 1 &&
	        dropped == 0,
	    "first alert runs, dropped %llu", (unsigned long long)dropped);
	CHECK(fbxi_alert_admit(&g, 1, "o1", "r", 10500, 1, &dropped) == 0,
	    "the same alert within the interval is dropped");
	CHECK(fbxi_alert_admit(&g, 1, "o1", "r", 10999, 1, &dropped) == 0,
	    "the same alert just before the interval is dropped");
	CHECK(fbxi_alert_admit(&g, 1, "*", "r", 10999, 1, &dropped) == 1 &&
	        dropped == 0,
	    "the global trip is not hidden by an organisation's");
	CHECK(fbxi_alert_admit(&g, 2, "o1", "r", 10999, 2, &dropped) == 0,
	    "another alert while 2 run is dropped");
	CHECK(fbxi_alert_admit(&g, 1, "o1", "r", 11000, 1, &dropped) == 1 &&
	        dropped == 2,
	    "after the interval it runs and reports 2 dropped, got %llu",
	    (unsigned long long)dropped);
	CHECK(g.dropped_total == 3, "3 dropped in all, got %llu",
	    (unsigned long long)g.dropped_total);
	/* many keys: the table forgets the oldest, never overflows */
	for (int i = 0; i < 3 * FBXI_ALERT_KEYS; i++) {
		char org[16];
		snprintf(org, sizeof(org), "org-%d", i);
		CHECK(fbxi_alert_admit(&g, 3, org, "r", 20000 + i, 0,
		          &dropped) == 1,
		    "key %d", i);
	}
	/* a clock that goes back never blocks alerts for long */
	CHECK(fbxi_alert_admit(&g, 3, "org-190", "r", 5000, 0, &dropped) == 1,
	    "after the clock stepped back");
}

int
main(void)
{
	test_window();
	test_breaker_cfg();
	test_allowance();
	test_admit();
	test_storms();
	test_rooted_phone();
	test_shadow();
	test_trip_reset();
	test_baseline();
	test_onset();
	test_global_share();
	test_global();
	test_limits();
	test_bucket();
	test_rollout();
	test_alert_gate();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
