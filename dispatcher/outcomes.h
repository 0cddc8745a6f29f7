/*
 * outcomes.h: delivery outcomes per organisation and command type
 * (issue 12 item 3, incident 5 of ../shared/incidents.md: a path that
 * silently stopped delivering for four months). Silence must be visible:
 * the engine counts the final outcomes of each organisation's deliveries
 * by command type in hourly slots over the last 24 hours, shows them in
 * the fleet report, sums them fleet-wide for /metrics, and raises an
 * outcome_silence alert when a type that succeeded in the day before
 * has outcomes in the last hour and none of them succeeded.
 *
 * Counts are taken from the commands' per-state counts at each commit
 * (the engine passes what a committed turn changed), so a failed or
 * redone turn counts nothing twice. They are memory: a restart starts
 * the window again.
 */
#ifndef FBX_OUTCOMES_H
#define FBX_OUTCOMES_H

#include <stdint.h>

#include "fbx_proto.h"

#define FBXI_OUT_SLOTS 24        /* hourly slots: the last 24 hours */
#define FBXI_OUT_SILENCE_MIN 20  /* outcomes in the hour to judge it */

struct fbxi_outcomes;

/* Outcomes of one (type) in a window */
struct fbxi_outcome_counts {
	uint64_t succeeded, failed, expired;
};

int fbxi_outcomes_new(struct fbxi_outcomes **out);
void fbxi_outcomes_free(struct fbxi_outcomes *o);

/* fbxi_outcomes_add - a committed change of a command's outcome counts:
 * d_ok, d_failed, d_expired deliveries newly final in those states (a
 * replay that takes some back passes negative deltas, which are kept at
 * 0). now_ms is wall time. @return FBX_OK or FBX_ENOMEM (dropped). */
int fbxi_outcomes_add(struct fbxi_outcomes *o, const char *org, int type,
    int64_t d_ok, int64_t d_failed, int64_t d_expired, int64_t now_ms);

/* fbxi_outcomes_window - org's outcomes of type in the current clock
 * hour (UTC) and in the 24 clock hours up to and including it. */
void fbxi_outcomes_window(const struct fbxi_outcomes *o, const char *org,
    int type, int64_t now_ms, struct fbxi_outcome_counts *hour,
    struct fbxi_outcome_counts *day);

/* fbxi_outcomes_totals - fleet-wide since start, by type. */
void fbxi_outcomes_totals(const struct fbxi_outcomes *o,
    struct fbxi_outcome_counts totals[FBX_CMD_TYPE_COUNT]);

/* fbxi_outcomes_silence - the (org, type) pairs newly silent at now_ms:
 * at least FBXI_OUT_SILENCE_MIN outcomes in the current clock hour, none
 * succeeded, and some succeeded in the 23 hours before. Each pair is
 * returned once per hour while it stays silent; fn is called with the
 * figures. @return how many were reported. */
typedef void (*fbxi_silence_fn)(void *arg, const char *org, int type,
    const struct fbxi_outcome_counts *hour,
    const struct fbxi_outcome_counts *day);
size_t fbxi_outcomes_silence(struct fbxi_outcomes *o, int64_t now_ms,
    fbxi_silence_fn fn, void *arg);

/* fbxi_outcomes_silent - whether (org, type) is silent now (as above,
 * without the once-per-hour rule). */
int fbxi_outcomes_silent(const struct fbxi_outcomes *o, const char *org,
    int type, int64_t now_ms);

#endif
