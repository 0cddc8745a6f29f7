/*
 * sim.h: what the files of fusebox-devsim share. fusebox-devsim is a
 * gateway that simulates a fleet of devices.
 * It enrolls a deterministic fleet through the console API, then speaks
 * the gateway protocol and answers every delivery the way a device would
 * (success, failure, offline), while counting what an end-to-end or crash
 * test must check: duplicates, foreign deliveries, and above all a
 * delivery re-sent after its success was acknowledged as durable, which
 * is an exactly-once violation. Per-device state lives in flat arrays and
 * per-delivery state in one open-addressing table, so a million devices
 * cost no per-device allocation. Devices keep a lock state (LOCK locks,
 * UNLOCK unlocks). Storm mode replays incident 1 of docs: a broken
 * attestation rule that submits one automatic lock per device, thousands
 * a second, pipelined on its own console socket; the report says what the
 * engine answered per organisation and how many devices got locked.
 * Files: main.c (options, main) -> sim.c (the gateway: protocol, device
 * answers, timers, loop) -> storm.c -> report.c -> fleet.c (the fleet
 * model, clocks, log); enroll.c; simtab.c (the delivery table).
 */
#ifndef FBX_SIM_H
#define FBX_SIM_H

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "fbx_client.h"
#include "fbx_keys.h"
#include "simtab.h"

#define SIM_DEFAULT_GATEWAY "ipc:///tmp/fusebox/gateway.sock"
#define SIM_DEFAULT_CONSOLE "ipc:///tmp/fusebox/console.sock"
#define SIM_ENROLL_BATCH 10000
#define SIM_FLUSH_N 4096
#define SIM_FLUSH_MS 2
#define SIM_DRAIN_MAX 256 /* engine messages read per loop */
#define SIM_BULK_SLICE 512 /* bulk deliveries served between reads */
#define SIM_BULK_TURN 16384 /* bulk deliveries served between timers */
#define SIM_RESEND_MS 3000
#define SIM_HELLO_RETRY_MS 2000
#define SIM_DEVICES_MAX 50000000u
#define SIM_ORGS_MAX 9999u
#define SIM_UNACKED_MAX 100000 /* batches; beyond, the oldest is dropped */
#define SIM_FOREIGN_CODE 404
#define SIM_STORM_INFLIGHT 256   /* storm requests awaiting a reply */
#define SIM_STORM_TIMEOUT_MS 10000
#define SIM_STORM_TRIES 8
#define SIM_STORM_BUSY_MS 200    /* retry delay after BUSY */
#define SIM_STORM_NODES 8 /* console endpoints a storm follows MOVED to */
#define SIM_STORM_ACTOR "attestation-rule"

enum { DEV_OFFLINE = 1, DEV_CHECKIN_DUE = 2 };
enum { DE_FINAL = 1, DE_DURABLE_OK = 2, DE_DURABLE_FAIL = 4 };
enum { ST_HELLO = 0, ST_READY = 1 };
/* lock state of a device */
enum { LK_NOW = 1, LK_GOT_LOCK = 2, LK_GOT_UNLOCK = 4 };

struct opts {
	const char *gw_ep;
	const char *console_ep;
	/* CURVE keys (issue 10): NULL = $FUSEBOX_KEY, $FUSEBOX_GATEWAY_KEY,
	 * $FUSEBOX_STORM_KEY, $FUSEBOX_SERVER_KEY or the default files */
	const char *key, *gw_key, *storm_key, *server_key;
	char storm_actor[FBX_ID_MAX + 1]; /* the storm key's principal */
	const char *gateway_id;
	const char *report;
	const char *delivery_log; /* --delivery-log: R and A lines */
	uint32_t ndev;
	uint32_t norgs;
	double org_skew; /* < 0 = even */
	uint32_t window;
	uint32_t ack_latency_ms;
	double fail_ratio;
	double offline_ratio;
	uint32_t checkin_s;
	int accept_first;
	uint64_t seed;
	int no_enroll, enroll_only, report_devices, quiet;
	uint32_t stats_s;
	/* storm */
	uint32_t storm_n;
	uint32_t storm_s;
	double storm_skew;
	const char *storm_reason;
	int storm_type;
	int storm_only;
	uint32_t storm_inflight;
};

/* A result waiting for its device's answer delay. */
struct delayed {
	int64_t due_ms;
	struct fbx_result_rec r;
};

struct ring {
	struct delayed *v;
	size_t cap, head, n;
};

/* A RESULTS or CHECKINS batch sent and not yet ACKed. */
struct ubatch {
	uint64_t batch_id;
	int kind; /* FBX_GW_RESULTS or FBX_GW_CHECKINS */
	int64_t sent_ms;
	size_t n;
	void *recs; /* fbx_result_rec[] or fbx_checkin[] */
};

struct org_stats {
	uint64_t received, distinct, succeeded, failed;
	uint64_t locked, unlocked, locked_now; /* devices */
};

/* What the engine answered the storm, per organisation. */
struct storm_org {
	uint64_t submitted, admitted, held, refused;
	uint32_t by_code[64]; /* refusals per fbx_err code */
};

/* A storm request awaiting its reply. */
struct storm_slot {
	uint64_t req_id;
	uint32_t idx; /* command number */
	uint32_t tries;
	uint8_t node;   /* the socket it was sent on */
	int64_t due_ms; /* resend at */
};

struct storm {
	uint32_t n;      /* commands to submit */
	uint32_t *dev;   /* device of each command */
	uint32_t next;   /* first command never sent */
	uint32_t done;   /* commands answered for good */
	struct storm_slot *slots;
	size_t nslots;
	struct storm_org *so;
	uint64_t retries, duplicates, timeouts;
	int started, finished;
	int64_t start_ms, end_ms;
	uint64_t next_req;
	void *sock; /* socks[0]: the console endpoint given */
	/* several nodes: an organisation's commands go where the last
	 * MOVED named its owner (org_node); a request unanswered in time
	 * tries the next node (a dead owner's organisations move) */
	void *ctx;
	void *socks[SIM_STORM_NODES];
	char eps[SIM_STORM_NODES][256];
	size_t nsocks;
	uint8_t *org_node;
	uint64_t moved; /* MOVED answers followed */
};

struct totals {
	uint64_t received, distinct, duplicates, dup_after_ok, dup_after_fail;
	uint64_t foreign, results_sent, results_acked, succeeded, failed;
	uint64_t results_refused; /* ACKed but not counted by the engine */
	uint64_t offline, accepted, checkins_sent, checkins_acked;
	uint64_t send_drops, resends, errors, hellos, welcomes;
};

/* Bulk DELIVERIES messages received and not yet served, in arrival
 * order; pos is the next delivery of the first one. */
struct bulkq {
	struct fbx_eng_msg *v;
	size_t cap, head, n, pos;
};

struct sim {
	struct opts o;
	struct bulkq bulk;
	/* fleet */
	uint32_t *org_start, *org_count;
	uint8_t *dflags;
	uint32_t *dev_distinct, *dev_received;
	uint8_t *dlock;
	struct org_stats *ostats;
	struct storm storm;
	/* offline devices by check-in time */
	uint32_t *off_idx;
	int64_t *off_due;
	size_t noff, off_next;
	uint32_t sweep_next;   /* periodic check-in cursor */
	double sweep_carry;
	int64_t sweep_last_ms;
	/* deliveries */
	struct dtab tab;
	struct ring delay;
	struct fbx_result_rec *out;
	size_t nout, capout;
	int64_t out_first_ms;
	struct fbx_checkin *cin;
	size_t ncin;
	struct ubatch *ub;
	size_t nub, capub;
	uint64_t next_batch;
	/* connection */
	void *ctx, *sock;
	int state, welcomed, hello_failed;
	int64_t hello_ms, last_rx_ms, last_tx_ms;
	uint32_t hb_ms, max_batch;
	int64_t start_ms;
	struct totals t;
	FILE *dlog;         /* --delivery-log, NULL = none */
	int64_t dlog_flush_ms;
};

/* set by SIGINT/SIGTERM (main.c): every loop ends at its next check */
extern volatile sig_atomic_t sim_stop;

static inline uint64_t
h3(uint64_t seed, uint64_t a, uint64_t salt)
{
	return fbxs_mix(fbxs_mix(seed ^ (salt * 0x632be59bd9b4e019ull)) ^ a);
}

static inline double
unit(uint64_t h)
{
	return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

static inline uint32_t
dev_org(const struct sim *s, uint32_t g)
{
	uint32_t lo = 0, hi = s->o.norgs;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->org_start[mid] <= g)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* fleet.c */
int64_t sim_mono_ms(void);
int64_t sim_wall_ms(void);
int64_t sim_mono_ns(void);
void sim_logm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sim_org_name(uint32_t o, char *buf, size_t len);
void sim_dev_name(
    const struct sim *s, uint32_t g, uint32_t o, char *buf, size_t len);
int sim_dev_platform(const struct sim *s, uint32_t g);
const char *sim_dev_group(const struct sim *s, uint32_t g);
const char *sim_dev_os(const struct sim *s, uint32_t g, int platform);
int sim_find_device(
    const struct sim *s, const char *org, const char *dev, uint32_t *g);
int sim_fleet_init(struct sim *s);

/* sim.c */
int sim_gw_open(struct sim *s);
int sim_gw_loop(struct sim *s);

/* enroll.c */
int sim_enroll_fleet(struct sim *s);

/* storm.c */
int sim_storm_plan(struct sim *s);
int sim_sock_curve(void *sock, const struct opts *o, const char *given,
    const char *env, const char *defname, char *name);
int sim_storm_open(struct sim *s, void *ctx);
void sim_storm_close(struct sim *s);
void sim_storm_recv(struct sim *s, int64_t now);
void sim_storm_pump(struct sim *s, int64_t now);
long sim_storm_wait_ms(const struct sim *s);
int sim_storm_only_loop(struct sim *s);

/* report.c */
void sim_storm_report_lines(struct sim *s, FILE *f);
void sim_write_report(struct sim *s, FILE *f, int devices);
int sim_save_report(struct sim *s);
int sim_dlog_flush(struct sim *s);

#endif
