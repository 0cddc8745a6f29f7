/*
 * metrics.h: a snapshot of the engine's figures for Prometheus, and its
 * rendering in the text exposition format (version 0.0.4). The engine
 * fills a struct fbx_metrics on its own thread (fbx_engine_metrics());
 * whoever serves it (http.c) renders a copy on another thread, so the
 * struct is plain data with fixed-size arrays: no pointer into the
 * engine. Per-organisation series are bounded (FBX_METRICS_BRK_MAX).
 */
#ifndef FBX_METRICS_H
#define FBX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_proto.h"
#include "fbx_types.h"

/* Upper bounds of the turn and commit duration histogram buckets, in
 * microseconds (+Inf is implicit). */
#define FBX_METRICS_NBUCKETS 12
#define FBX_METRICS_BUCKETS_US                                                \
	{                                                                     \
		500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,   \
		    500000, 1000000, 5000000                                  \
	}

/* Submit to final result can take as long as a device stays offline:
 * its buckets reach a day. */
#define FBX_METRICS_RESULT_BUCKETS_US                                         \
	{                                                                     \
		100000, 500000, 1000000, 5000000, 10000000, 30000000,         \
		    60000000, 300000000, 900000000, 3600000000ull,            \
		    14400000000ull, 86400000000ull                            \
	}

/* fbx_metrics_bucket_le - the bucket index of us among the bounds le
 * (NBUCKETS of them): 0..NBUCKETS-1, or FBX_METRICS_NBUCKETS for +Inf */
static inline unsigned
fbx_metrics_bucket_le(uint64_t us, const uint64_t *le)
{
	unsigned i = 0;

	while (i < FBX_METRICS_NBUCKETS && us > le[i])
		i++;
	return i;
}

/* fbx_metrics_bucket - the bucket of a turn-scale duration */
static inline unsigned
fbx_metrics_bucket(uint64_t us)
{
	static const uint64_t le[FBX_METRICS_NBUCKETS]
	    = FBX_METRICS_BUCKETS_US;

	return fbx_metrics_bucket_le(us, le);
}

/* fbx_metrics_bucket_result - the bucket of a submit-to-result time */
static inline unsigned
fbx_metrics_bucket_result(uint64_t us)
{
	static const uint64_t le[FBX_METRICS_NBUCKETS]
	    = FBX_METRICS_RESULT_BUCKETS_US;

	return fbx_metrics_bucket_le(us, le);
}

#define FBX_METRICS_BRK_MAX 100 /* organisations' breakers listed */
#define FBX_METRICS_GW_MAX 64 /* gateways listed */

/* A duration histogram: per-bucket counts (not cumulative), the last one
 * for durations above every bound, and the sum. */
struct fbx_metrics_hist {
	uint64_t n[FBX_METRICS_NBUCKETS + 1];
	uint64_t sum_us;
};

struct fbx_metrics {
	int64_t taken_ms; /* CLOCK_MONOTONIC ms when it was filled */
	uint64_t uptime_ms;
	/* the loop */
	uint64_t commits, turns_failed;
	uint64_t syncs_failed; /* the syncer's failed syncs (syncer.h) */
	int degraded;
	/* cluster mode (issue 13): leases held now, ticks that changed
	 * them, commits refused by the fence; cluster 0 = not a node */
	int cluster;
	uint64_t leases, lease_changes, fenced;
	struct fbx_metrics_hist turn, commit; /* committed turns */
	/* submits: read to acknowledged (after their commit), and created
	 * to each delivery's final outcome (result buckets) */
	struct fbx_metrics_hist submit_ack, submit_result;
	/* deliveries of the commands in memory (not finished) by state,
	 * and since start */
	uint64_t dlv[FBX_D_COUNT];
	uint64_t dlv_sent, results_in, results_ignored, superseded;
	/* the supersede index built late (supersede.c): commands whose open
	 * deliveries were read into it, and the deliveries read */
	uint64_t sx_builds, sx_read;
	/* its entries now, and the sweeps that dropped those of finished
	 * commands with what they dropped */
	uint64_t sx_entries, sx_sweeps, sx_dropped;
	/* commands in memory by state */
	uint64_t cmd_active, cmd_expanding, cmd_held, cmd_settling;
	uint64_t devices; /* enrolled, every organisation */
	/* gateways */
	uint32_t gateways;
	uint64_t gw_inflight; /* sum over every live session */
	size_t ngw;
	int gw_truncated;
	struct {
		char id[FBX_ID_MAX + 1];
		uint32_t window, inflight;
		uint64_t bytes;
	} gw[FBX_METRICS_GW_MAX];
	/* breakers: every open one is counted; listed only those open or
	 * holding commands (org "*": global), the first FBX_METRICS_BRK_MAX */
	uint64_t breakers_open;
	int brk_valid; /* the store could be read for them */
	size_t nbrk;
	int brk_truncated;
	struct {
		char org[FBX_ID_MAX + 1];
		char reason[FBX_ID_MAX + 1];
		int open;
		uint64_t held;
	} brk[FBX_METRICS_BRK_MAX];
	/* issue 10, since start */
	uint64_t auth_refused, results_forged, handshakes_refused;
	/* registered certificates: ms until notAfter (negative: expired) */
	size_t ncert;
	struct {
		char name[FBX_ID_MAX + 1];
		int64_t left_ms;
	} cert[FBX_CERTS_MAX];
	/* fleet check-in health (fleet.c): the last complete pass over the
	 * registry, every organisation summed; fleet_as_of_ms 0 = none yet */
	int64_t fleet_as_of_ms; /* wall ms */
	uint64_t fleet_hours[FBX_FLEET_BUCKETS];
	uint32_t fleet_orgs_alerting;
	/* final delivery outcomes since start by command type: succeeded,
	 * failed, expired (outcomes.c) */
	uint64_t outcomes[FBX_CMD_TYPE_COUNT][3];
	/* the store (0s when store_valid is 0) */
	int store_valid;
	uint64_t map_bytes, used_bytes, file_bytes;
	uint32_t readers_used;
	/* records not yet in the deferred per-organisation indexes
	 * (fbx_store_opts.index_lag): commands, audit records */
	uint64_t cmd_ix_lag, audit_ix_lag;
};

/**
 * fbx_metrics_render - m in the Prometheus text format, into a new
 * buffer of at most cap bytes (NUL-terminated, not counted in *len).
 * now_ms (CLOCK_MONOTONIC ms) gives the snapshot's age.
 * @param[out] out the text, to free(); written only on FBX_OK.
 * @return FBX_OK; FBX_ENOMEM; FBX_EINVAL (NULL argument, or cap too
 * small for the text).
 */
int fbx_metrics_render(const struct fbx_metrics *m, int64_t now_ms, size_t cap,
    char **out, size_t *len);

#endif
