/*
 * safety.h: the decision logic of the safety controls, free of I/O so it
 * can be tested alone: sliding-window counters, circuit breakers on
 * automatic lock-type commands, blast-radius limits, token buckets and
 * the wave plan of staged rollouts. The engine persists these structs in
 * the store's kv table (fixed layout, host byte order like LMDB itself)
 * and calls these functions inside its write transaction, so a decision
 * and what it decided on are committed together. Internal to dispatcher/.
 */
#ifndef FBXI_SAFETY_H
#define FBXI_SAFETY_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_proto.h"
#include "fbx_types.h"

/* ---- sliding window ---------------------------------------------------- */

#define FBXI_WIN_BUCKETS 30

/* Counts over the last window_s seconds, in FBXI_WIN_BUCKETS buckets. */
struct fbxi_window {
	uint32_t window_s;
	/* a blast-radius limit's use record: its generation, one more each
	 * time the record is begun again under another window (so a count
	 * a command recorded under an earlier one is known to be gone);
	 * 0 in a breaker's windows */
	uint32_t gen;
	int64_t last_idx; /* absolute index of the newest bucket */
	uint32_t b[FBXI_WIN_BUCKETS];
};

void fbxi_window_init(struct fbxi_window *w, uint32_t window_s);
/* fbxi_window_add - count n at now_ms. @return a time in the bucket it
 * counted in (now_ms, unless the clock went back), for
 * fbxi_window_holds and fbxi_window_sub. */
int64_t fbxi_window_add(struct fbxi_window *w, int64_t now_ms, uint32_t n);
uint64_t fbxi_window_sum(struct fbxi_window *w, int64_t now_ms);
/* fbxi_window_holds - whether what was added at at_ms is still counted
 * at now_ms (its bucket has not left the window). */
int fbxi_window_holds(struct fbxi_window *w, int64_t at_ms, int64_t now_ms);
/* fbxi_window_after - whether w's newest bucket is after at_ms's (the
 * clock went back since it counted) */
int fbxi_window_after(const struct fbxi_window *w, int64_t at_ms);
/* fbxi_window_held_at - whether a window of window_s counting at then_ms
 * still held what was added at at_ms (the same buckets as a record of
 * that window) */
int fbxi_window_held_at(uint32_t window_s, int64_t at_ms, int64_t then_ms);
/* fbxi_window_sub - take n back out of the bucket that at_ms added to,
 * if it is still counted (never below 0). */
void fbxi_window_sub(
    struct fbxi_window *w, int64_t at_ms, int64_t now_ms, uint32_t n);

/* ---- circuit breakers -------------------------------------------------- */

#define FBXI_BRK_VERSION 3 /* 2: reset_ms appended; 3: onset, change point */

/* One breaker: an organisation and a reason, or "*" and a reason for the
 * global one. Persisted under "brk/<org>/<reason>". */
struct fbxi_breaker {
	uint32_t version;
	uint8_t state;  /* enum fbx_breaker_state */
	uint8_t manual; /* opened by an operator */
	uint8_t pad_[2];
	struct fbx_breaker_cfg cfg;
	struct fbxi_window win; /* org: devices admitted; global: org trips */
	uint64_t baseline_x1000; /* devices per window, moving average */
	int64_t baseline_at;     /* start of the current baseline period */
	uint64_t period_count;   /* devices admitted in this period */
	uint32_t period_spiked;  /* the period tripped or would have */
	/* the global breaker: how often it was reset; an organisation's:
	 * that count when its window last started afresh for a reset of
	 * the global breaker (fbxi_breaker_follow_global). In what was the
	 * record's padding: zero in records written before */
	uint32_t global_resets;
	uint64_t held, would_hold, trips;
	int64_t tripped_ms;
	int64_t shadow_alerted_ms; /* last would-trip alert (shadow mode) */
	char tripped_by[FBX_ID_MAX + 1];
	char note[FBX_NOTE_MAX];
	int64_t reset_ms; /* last reset; the end of the last incident */
	/* ---- v3 ---- */
	/* the incident's onset: the moment the reason's rate left its
	 * baseline (the start of the change point's run), set when the
	 * breaker trips and kept until the next trip */
	int64_t onset_ms;
	/* change point: a one-sided CUSUM of arriving devices against a
	 * reference rate (twice the usual rate plus a slack); the usual
	 * rate in devices per second (the plain mean since rate_since_ms,
	 * of rate_n devices, while that is younger than FBXI_RATE_TAU_S;
	 * then a moving average with that time constant); when the sum last
	 * left zero (the start of the run, the candidate onset) and when it
	 * was last updated */
	double cusum;
	double rate;
	double rate_n;
	int64_t rate_since_ms;
	int64_t cusum_from_ms;
	int64_t cusum_at_ms;
	uint64_t baseline_samples; /* devices folded into the baseline */
	/* global breaker: devices of the reason admitted in every
	 * organisation (the fleet-wide share rule) */
	struct fbxi_window dwin;
};

/* Change point constants: the usual rate's time constant (a plain mean
 * before, over at least FBXI_RATE_FLOOR_S), and the slack allowed above
 * twice the usual rate (devices per second: one device drains in 10 s,
 * so legitimate locks 15 s apart never start a run). A storm at
 * several times the usual rate keeps the sum rising from its first
 * command: that command's time is the onset. */
#define FBXI_RATE_TAU_S 300.0
#define FBXI_RATE_FLOOR_S 10.0
#define FBXI_CUSUM_SLACK 0.1

/* fbxi_breaker_defaults - built-in settings: 10 min window, an
 * allowance of max(1, 1% of the fleet), raised to 10 x the baseline once
 * it has seen 100 devices; global after 3 organisations trip or 1% of
 * every enrolled device; automatic lock-type commands settle 30 s. */
void fbxi_breaker_defaults(struct fbx_breaker_cfg *cfg);
void fbxi_breaker_init(struct fbxi_breaker *b, const struct fbx_breaker_cfg *cfg);
/* fbxi_breaker_cfg_merge - apply the non-zero fields of `set`. */
void fbxi_breaker_cfg_merge(
    struct fbx_breaker_cfg *cfg, const struct fbx_breaker_cfg *set);

/* fbxi_breaker_allowance - devices an organisation breaker admits in one
 * window before it trips. */
uint32_t fbxi_breaker_allowance(
    struct fbxi_breaker *b, int64_t now_ms, uint32_t fleet);

enum fbxi_verdict {
	FBXI_ADMIT = 0,
	FBXI_HOLD = 1,        /* open, or this command trips it */
	FBXI_ADMIT_SHADOW = 2 /* shadow mode: would have held (also when
	                         it was opened by hand: it never holds) */
};

/*
 * fbxi_breaker_admit - decide on an automatic lock-type command of ndev
 * devices for an organisation breaker. Counts what it admits; trips (sets
 * *tripped) when admitting would pass the allowance, so the devices
 * admitted in a window never exceed it however fast commands arrive.
 */
int fbxi_breaker_admit(struct fbxi_breaker *b, int64_t now_ms,
    uint32_t ndev, uint32_t fleet, int *tripped);

/* fbxi_breaker_global_orgs - how many organisation trips within its
 * window trip a global breaker (global_orgs, 3 when not set) */
uint32_t fbxi_breaker_global_orgs(const struct fbxi_breaker *g);

/* fbxi_breaker_note_org_trip - a global breaker counts organisation trips;
 * @return 1 if this one makes it trip. */
int fbxi_breaker_note_org_trip(struct fbxi_breaker *g, int64_t now_ms);

/* fbxi_breaker_observe - ndev devices of the reason arrive now: feed the
 * change point (call for each arrival while the breaker is closed, before
 * the verdict). */
void fbxi_breaker_observe(struct fbxi_breaker *b, int64_t now_ms,
    uint32_t ndev);

/* fbxi_breaker_global_admit - the fleet-wide rule of a global breaker:
 * count ndev devices admitted somewhere; @return 1 if the reason's
 * devices in the window now pass global_share_ppm of `total` enrolled
 * devices (the caller trips it). */
int fbxi_breaker_global_admit(struct fbxi_breaker *g, int64_t now_ms,
    uint32_t ndev, uint64_t total);

/* fbxi_breaker_settle_ms - the settle delay of the breaker's reason. */
int64_t fbxi_breaker_settle_ms(const struct fbxi_breaker *b);

/* fbxi_breaker_trip - open it; the onset of the incident is the start of
 * the change point's run (or now, for a manual trip with no run). */
void fbxi_breaker_trip(struct fbxi_breaker *b, int64_t now_ms,
    const char *who, const char *note, int manual);
/* fbxi_breaker_follow_global - an organisation's closed breaker after a
 * reset of its reason's global breaker g that it has not seen: its
 * window, change point and baseline period start afresh, as at its own
 * reset (what they counted belonged to the incident the reset closed,
 * and would trip it on the next legitimate command). An open one is
 * left to its own reset. @return 1 if b changed. */
int fbxi_breaker_follow_global(struct fbxi_breaker *b,
    const struct fbxi_breaker *g, int64_t now_ms);
void fbxi_breaker_reset(struct fbxi_breaker *b, int64_t now_ms,
    const char *who, const char *note);

/* ---- blast-radius limits ----------------------------------------------- */

#define FBXI_LIM_VERSION 2 /* 2: changed_ms appended */
#define FBXI_LIM_V1_SIZE 16

struct fbxi_limit_cfg {
	uint32_t version;
	uint32_t max_count;     /* 0 = none */
	uint32_t max_share_ppm; /* 0 = none */
	uint32_t window_s;
	/* when window_s took this value (0: before version 2, or the
	 * built-in default): a use record kept under another window is
	 * carried over as of then */
	int64_t changed_ms;
};

/* fbxi_limit_defaults - built-in limits per command type: strict for the
 * types that take a device from its user, none for harmless ones. */
void fbxi_limit_defaults(int type, struct fbxi_limit_cfg *out);

/* fbxi_limit_cap - devices allowed per window for a fleet size;
 * UINT32_MAX when unlimited. */
uint32_t fbxi_limit_cap(const struct fbxi_limit_cfg *c, uint32_t fleet);

/* ---- token bucket ------------------------------------------------------ */

struct fbxi_bucket {
	double tokens;
	int64_t at_ms;
};

/* fbxi_bucket_take - up to `want` tokens of a bucket refilled at rate/s
 * up to burst. rate 0 = unlimited. @return tokens granted. */
uint32_t fbxi_bucket_take(struct fbxi_bucket *b, int64_t now_ms,
    uint32_t rate, uint32_t burst, uint32_t want);
/* fbxi_bucket_give - n tokens taken and not used go back to the bucket
 * (never above burst). */
void fbxi_bucket_give(
    struct fbxi_bucket *b, uint32_t rate, uint32_t burst, uint32_t n);

/* ---- staged rollouts --------------------------------------------------- */

/* fbxi_rollout_normalize - fill defaults into a plan: first wave 1%
 * (at least 1), growth x2, no max, bake 0, success 95%, failure 10% after
 * 20 results. */
void fbxi_rollout_normalize(struct fbx_rollout_plan *p);

/* fbxi_rollout_wave - size of wave number `wave` (0-based) of a stage of
 * `total` devices of which `released` are out. */
uint32_t fbxi_rollout_wave(const struct fbx_rollout_plan *p, uint32_t total,
    uint32_t released, uint32_t wave, uint32_t prev);

/* fbxi_rollout_plan - all wave sizes for a stage of `total` devices.
 * @return number of waves written (at most max). */
size_t fbxi_rollout_plan_waves(const struct fbx_rollout_plan *p,
    uint32_t total, uint32_t *out, size_t max);

/* ---- alert commands ------------------------------------------------- */

#define FBXI_ALERT_KEYS 64 /* (kind, org, reason) remembered; oldest goes */

/* Rate limit of the operator's alert command: at most max_running at
 * once, and per (event kind, organisation, reason) at most one start per
 * min_interval_ms, so that one noisy source cannot hide another's alert
 * (an organisation's trip never hides the global one). */
struct fbxi_alert_gate {
	unsigned max_running;
	int64_t min_interval_ms;
	struct {
		int kind;
		char org[65], reason[65];
		int64_t last_ms;  /* last start, 0 = never */
		uint64_t dropped; /* since the last start */
	} k[FBXI_ALERT_KEYS];
	uint64_t dropped_total;
};

void fbxi_alert_gate_init(
    struct fbxi_alert_gate *g, unsigned max_running, int64_t min_interval_ms);

/* fbxi_alert_admit - may an alert start now, with `running` alert
 * commands still running? @return 1 and *dropped (alerts of this kind,
 * organisation and reason dropped since the last one started, now reset)
 * when it may; 0 when it is dropped (and counted). */
int fbxi_alert_admit(struct fbxi_alert_gate *g, int kind, const char *org,
    const char *reason, int64_t now_ms, unsigned running, uint64_t *dropped);

#endif
