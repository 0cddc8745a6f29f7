/*
 * fleet.h: fleet check-in health (issue 12, incident 4 of
 * ../shared/incidents.md: devices that stop checking in are the
 * operator's to see before a wipe waits on them for days).
 *
 * The engine walks the device registry in slices (a pass every
 * FBXI_FLEET_PASS_MS, FBXI_FLEET_SLICE devices at most every
 * FBXI_FLEET_SLICE_MS, in the turn's transaction, read only) and keeps per organisation: devices by hours
 * since their last check-in, OS versions, and the state of the
 * organisation's alert rules, which fire at the end of the
 * organisation's share of a pass. Rules live in the store (kv
 * "fleet/<org>"); the aggregates and the alert state are memory and
 * start again with the daemon (a rule that was alerting alerts again
 * at the first pass).
 */
#ifndef FBX_FLEET_H
#define FBX_FLEET_H

#include <stdint.h>

#include "engine_int.h"

#define FBXI_FLEET_PASS_MS 60000 /* a pass over the registry at most this
                                  * often */
#define FBXI_FLEET_SLICE 4096    /* devices read per slice */
#define FBXI_FLEET_SLICE_MS 100  /* at most one slice this often: a pass
                                  * over 1M devices takes about 25 s and
                                  * a few % of a core */
#define FBXI_FLEET_LIST_SCAN 50000 /* devices a stale listing examines */

struct fbxi_fleet;

/* fbxi_fleet_new / fbxi_fleet_free - at engine open and close. */
int fbxi_fleet_new(struct fbxi_fleet **out);
void fbxi_fleet_free(struct fbxi_fleet *f);

/* fbxi_fleet_step - the next slice of the pass (or nothing while the
 * pass is not due), in the turn's transaction; alerts as events, which
 * leave with the commit. Store errors latch the turn's error. */
void fbxi_fleet_step(struct fbx_engine *e);

#define FBXI_FLEET_SOON_MS 10000 /* passes brought forward: at most this
                                   * often */

/* fbxi_fleet_soon - devices were enrolled or checked in for the first
 * time: the next pass in about 2 s
 * (not sooner than FBXI_FLEET_SOON_MS after the last one began) instead
 * of up to a minute. Memory only; harmless in a turn that fails. */
void fbxi_fleet_soon(struct fbx_engine *e);

/* fbxi_handle_fleet - FleetRequest: the report, or a rule set or
 * removed (audited). */
void fbxi_handle_fleet(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *r);

/* fbxi_fleet_list_stale - ListDevices with stale_minutes: the devices
 * without a check-in for that long, each with its pending deliveries. */
void fbxi_fleet_list_stale(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *r);

/* ---- delivery outcomes (outcomes.c holds the windows) ---------------- */

/* A committed turn's change of one command's outcome counts */
struct fbxi_out_delta {
	fbx_id org;
	uint8_t type;
	int64_t d[3]; /* succeeded, failed, expired */
	int64_t created_ms; /* the command's: submit-to-result latency */
};

/* fbxi_outq_note - in flush_commands: what cc's counts changed in this
 * turn, kept until the commit. */
void fbxi_outq_note(struct fbx_engine *e, struct cmdc *cc);
/* fbxi_outq_commit - after the commit (before its outputs leave): the
 * outcome counts into the windows, the fleet alerts the turn decided,
 * and once a minute the outcome_silence check. */
void fbxi_outq_commit(struct fbx_engine *e);
/* fbxi_outq_discard - the turn failed or is redone: nothing counted
 * (the commands' baselines come back with the rebuilt cache). */
void fbxi_outq_discard(struct fbx_engine *e);

/* Fleet-wide figures of the last complete pass, for /metrics. */
struct fbxi_fleet_totals {
	int64_t as_of_ms; /* 0 = no pass has finished */
	uint64_t devices;
	uint64_t offline_hours[FBX_FLEET_BUCKETS];
	uint32_t orgs_alerting; /* organisations with a rule over threshold */
};
void fbxi_fleet_totals(
    const struct fbx_engine *e, struct fbxi_fleet_totals *out);

/* fbxi_fleet_bucket - the offline_hours bucket of a device (exposed for
 * tests): age_ms since its last check-in, never = it never checked in. */
int fbxi_fleet_bucket(int64_t age_ms, int never);

#endif
