/*
 * devsim.c: fusebox-devsim, a gateway that simulates a fleet of devices.
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
 */
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
	void *sock;
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

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mono_ns - CLOCK_MONOTONIC in ns: one clock for every process of the
 * machine, so the delivery logs of several simulators can be merged. */
static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
logm(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fusebox-devsim: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}


static uint64_t
h3(uint64_t seed, uint64_t a, uint64_t salt)
{
	return fbxs_mix(fbxs_mix(seed ^ (salt * 0x632be59bd9b4e019ull)) ^ a);
}

static double
unit(uint64_t h)
{
	return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------------ */
/* fleet */

static void
org_name(uint32_t o, char *buf, size_t len)
{
	snprintf(buf, len, "org-%03" PRIu32, o + 1);
}

static void
dev_name(const struct sim *s, uint32_t g, uint32_t o, char *buf, size_t len)
{
	snprintf(buf, len, "org-%03" PRIu32 "-d%06" PRIu32, o + 1,
	    g - s->org_start[o]);
}

static uint32_t
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

static int
dev_platform(const struct sim *s, uint32_t g)
{
	uint64_t p = h3(s->o.seed, g, 1) % 100;

	if (p < 60)
		return FBX_PLATFORM_ANDROID;
	if (p < 90)
		return FBX_PLATFORM_IOS;
	return FBX_PLATFORM_WINDOWS;
}

static const char *
dev_group(const struct sim *s, uint32_t g)
{
	static const char *const names[] = { "sales", "field", "office" };
	uint64_t h = h3(s->o.seed, g, 2);

	if (h % 100 < 5)
		return "verification";
	return names[(h / 100) % 3];
}

static const char *
dev_os(const struct sim *s, uint32_t g, int platform)
{
	static const char *const android[] = { "12", "13", "14", "14.1" };
	static const char *const ios[] = { "16.7.8", "17.4.1", "17.5",
		"17.6.1" };
	static const char *const windows[] = { "10.0.19045",
		"10.0.22631" };
	uint64_t h = h3(s->o.seed, g, 4);

	switch (platform) {
	case FBX_PLATFORM_ANDROID:
		return android[h % 4];
	case FBX_PLATFORM_IOS:
		return ios[h % 4];
	default:
		return windows[h % 2];
	}
}

/* find_device - map (org, device) names from a delivery to a device
 * index. Names are parsed and re-formatted, so only exact fleet names
 * match. @return 0 and *g, or -1 for a device not in the fleet. */
static int
find_device(const struct sim *s, const char *org, const char *dev,
    uint32_t *g)
{
	char buf[FBX_ID_MAX + 16];
	unsigned long o, n;
	char *end;
	size_t ol;

	if (org == NULL || dev == NULL || strncmp(org, "org-", 4) != 0)
		return -1;
	if (org[4] < '0' || org[4] > '9')
		return -1;
	o = strtoul(org + 4, &end, 10);
	if (*end != '\0' || o == 0 || o > s->o.norgs)
		return -1;
	org_name((uint32_t)(o - 1), buf, sizeof(buf));
	if (strcmp(buf, org) != 0)
		return -1;
	ol = strlen(org);
	if (strncmp(dev, org, ol) != 0 || dev[ol] != '-' ||
	    dev[ol + 1] != 'd' || dev[ol + 2] < '0' || dev[ol + 2] > '9')
		return -1;
	n = strtoul(dev + ol + 2, &end, 10);
	if (*end != '\0' || n >= s->org_count[o - 1])
		return -1;
	dev_name(s, s->org_start[o - 1] + (uint32_t)n, (uint32_t)(o - 1), buf,
	    sizeof(buf));
	if (strcmp(buf, dev) != 0)
		return -1;
	*g = s->org_start[o - 1] + (uint32_t)n;
	return 0;
}

static int
cmp_due(const void *a, const void *b, void *arg)
{
	const int64_t *due = arg;
	int64_t x = due[*(const uint32_t *)a], y = due[*(const uint32_t *)b];

	return x < y ? -1 : x > y;
}

/* fleet_init - lay out orgs and devices, mark the offline ones and plan
 * their single check-in. */
static int
fleet_init(struct sim *s)
{
	uint32_t n = s->o.ndev, m = s->o.norgs, first;
	int64_t *due = NULL;
	int rc = FBX_ENOMEM;

	s->org_start = calloc(m, sizeof(uint32_t));
	s->org_count = calloc(m, sizeof(uint32_t));
	s->ostats = calloc(m, sizeof(*s->ostats));
	s->dflags = calloc(n, 1);
	s->dev_distinct = calloc(n, sizeof(uint32_t));
	s->dev_received = calloc(n, sizeof(uint32_t));
	s->dlock = calloc(n, 1);
	if (!s->org_start || !s->org_count || !s->ostats || !s->dflags ||
	    !s->dev_distinct || !s->dev_received || !s->dlock)
		goto out;
	if (s->o.org_skew >= 0 && m > 1) {
		first = (uint32_t)llround(s->o.org_skew * n);
		if (first > n)
			first = n;
		s->org_count[0] = first;
		for (uint32_t i = 1; i < m; i++)
			s->org_count[i] = (n - first) / (m - 1) +
			    (i - 1 < (n - first) % (m - 1) ? 1 : 0);
	} else {
		for (uint32_t i = 0; i < m; i++)
			s->org_count[i] = n / m + (i < n % m ? 1 : 0);
	}
	for (uint32_t i = 1; i < m; i++)
		s->org_start[i] = s->org_start[i - 1] + s->org_count[i - 1];
	for (uint32_t g = 0; g < n; g++) {
		if (unit(h3(s->o.seed, g, 3)) < s->o.offline_ratio) {
			s->dflags[g] |= DEV_OFFLINE;
			s->noff++;
		}
	}
	if (s->noff > 0 && s->o.checkin_s > 0) {
		size_t k = 0;
		s->off_idx = malloc(s->noff * sizeof(uint32_t));
		due = malloc((size_t)n * sizeof(int64_t));
		s->off_due = malloc(s->noff * sizeof(int64_t));
		if (!s->off_idx || !due || !s->off_due)
			goto out;
		/* ~C s after start: uniformly within [0.75 C, 1.25 C]. */
		for (uint32_t g = 0; g < n; g++) {
			if (!(s->dflags[g] & DEV_OFFLINE))
				continue;
			due[g] = (int64_t)((0.75 + 0.5 * unit(h3(s->o.seed, g,
			                                      5))) *
			    s->o.checkin_s * 1000.0);
			s->off_idx[k++] = g;
		}
		qsort_r(s->off_idx, s->noff, sizeof(uint32_t), cmp_due, due);
		for (size_t i = 0; i < s->noff; i++)
			s->off_due[i] = due[s->off_idx[i]];
	}
	rc = FBX_OK;
out:
	free(due);
	return rc;
}

/* ------------------------------------------------------------------ */
/* delayed answers: a FIFO, because the delay is the same for all */

static int
ring_push(struct ring *r, const struct delayed *d)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 4096;
		struct delayed *v = malloc(ncap * sizeof(*v));
		if (v == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < r->n; i++)
			v[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = v;
		r->cap = ncap;
		r->head = 0;
	}
	r->v[(r->head + r->n) % r->cap] = *d;
	r->n++;
	return FBX_OK;
}

/* ------------------------------------------------------------------ */
/* sending */

static int
send_msg(struct sim *s, const struct fbx_gw_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_gw_msg_encode(m, &buf, &len);

	if (rc != FBX_OK) {
		logm("cannot encode message kind %d: %s", m->kind,
		    fbx_strerror(rc));
		return rc;
	}
	if (zmq_send(s->sock, buf, len, ZMQ_DONTWAIT) < 0) {
		/* Queue full or no live connection (ZMQ_IMMEDIATE: nothing
		 * piles up for a dead engine): results and check-ins stay in
		 * the un-ACKed list and go again after the resend timeout. */
		s->t.send_drops++;
		rc = errno == EAGAIN ? FBX_EBUSY : FBX_EIO;
	} else {
		s->last_tx_ms = mono_ms();
	}
	free(buf);
	return rc;
}

static void
send_hello(struct sim *s)
{
	struct fbx_gw_msg m;
	fbx_id all = "*";

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_HELLO;
	snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id), "%s",
	    s->o.gateway_id);
	m.u.hello.orgs = &all;
	m.u.hello.norgs = 1;
	m.u.hello.window = s->o.window;
	s->hello_failed = send_msg(s, &m) != FBX_OK;
	s->t.hellos++;
	s->state = ST_HELLO;
	s->hello_ms = mono_ms();
}

static void
send_simple(struct sim *s, int kind, const char *reason)
{
	struct fbx_gw_msg m;

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = kind;
	if (reason != NULL)
		snprintf(m.u.bye.reason, sizeof(m.u.bye.reason), "%s", reason);
	send_msg(s, &m);
}

static void
send_batch(struct sim *s, const struct ubatch *b)
{
	struct fbx_gw_msg m;

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = b->kind;
	if (b->kind == FBX_GW_RESULTS) {
		m.u.results.batch_id = b->batch_id;
		m.u.results.r = b->recs;
		m.u.results.n = b->n;
	} else {
		m.u.checkins.batch_id = b->batch_id;
		m.u.checkins.c = b->recs;
		m.u.checkins.n = b->n;
	}
	send_msg(s, &m);
}

static void
ubatch_drop(struct sim *s, size_t i)
{
	free(s->ub[i].recs);
	memmove(&s->ub[i], &s->ub[i + 1], (s->nub - i - 1) * sizeof(*s->ub));
	s->nub--;
}

/* push_batch - take ownership of recs, send them and track the batch
 * until its ACK. */
static int
push_batch(struct sim *s, int kind, void *recs, size_t n)
{
	struct ubatch *b;

	if (s->nub == s->capub) {
		size_t ncap = s->capub ? s->capub * 2 : 256;
		struct ubatch *v = realloc(s->ub, ncap * sizeof(*v));
		if (v == NULL) {
			free(recs);
			return FBX_ENOMEM;
		}
		s->ub = v;
		s->capub = ncap;
	}
	if (s->nub >= SIM_UNACKED_MAX) {
		logm("%d batches un-ACKed: dropping the oldest",
		    SIM_UNACKED_MAX);
		ubatch_drop(s, 0);
	}
	b = &s->ub[s->nub++];
	b->batch_id = s->next_batch++;
	b->kind = kind;
	b->sent_ms = mono_ms();
	b->n = n;
	b->recs = recs;
	send_batch(s, b);
	return FBX_OK;
}

static size_t
batch_cap(const struct sim *s)
{
	size_t cap = SIM_FLUSH_N;

	if (s->max_batch > 0 && s->max_batch < cap)
		cap = s->max_batch;
	return cap;
}

/* flush_results - send the queued results in batches. Before the first
 * WELCOME they wait: the engine has no session to take them. */
static void
flush_results(struct sim *s)
{
	size_t off = 0;

	if (s->nout == 0 || !s->welcomed)
		return;
	while (off < s->nout) {
		size_t k = s->nout - off;
		void *recs;
		if (k > batch_cap(s))
			k = batch_cap(s);
		recs = malloc(k * sizeof(*s->out));
		if (recs == NULL) {
			logm("out of memory: results kept for the next flush");
			break;
		}
		memcpy(recs, s->out + off, k * sizeof(*s->out));
		if (push_batch(s, FBX_GW_RESULTS, recs, k) == FBX_OK)
			s->t.results_sent += k;
		off += k;
	}
	memmove(s->out, s->out + off, (s->nout - off) * sizeof(*s->out));
	s->nout -= off;
	s->out_first_ms = mono_ms();
}

static void
flush_checkins(struct sim *s)
{
	void *recs;

	if (s->ncin == 0 || !s->welcomed)
		return;
	recs = malloc(s->ncin * sizeof(*s->cin));
	if (recs == NULL)
		return;
	memcpy(recs, s->cin, s->ncin * sizeof(*s->cin));
	if (push_batch(s, FBX_GW_CHECKINS, recs, s->ncin) == FBX_OK)
		s->t.checkins_sent += s->ncin;
	s->ncin = 0;
}

/* add_result - queue one result for the next RESULTS batch. The queue
 * grows while the session is down; it is bounded by the engine's window
 * (each delivery is answered at most twice). */
static void
add_result(struct sim *s, uint64_t id, int status, uint16_t code)
{
	if (s->nout >= batch_cap(s))
		flush_results(s);
	if (s->nout == s->capout) {
		size_t ncap = s->capout * 2;
		struct fbx_result_rec *v = realloc(s->out, ncap * sizeof(*v));
		if (v == NULL) {
			logm("out of memory: result for %" PRIu64
			     " dropped (the engine will resend)",
			    id);
			return;
		}
		s->out = v;
		s->capout = ncap;
	}
	if (s->nout == 0)
		s->out_first_ms = mono_ms();
	s->out[s->nout].delivery_id = id;
	s->out[s->nout].status = (uint8_t)status;
	s->out[s->nout].code = code;
	s->nout++;
	switch (status) {
	case FBX_R_OFFLINE:
		s->t.offline++;
		break;
	case FBX_R_ACCEPTED:
		s->t.accepted++;
		break;
	default:
		break;
	}
}

static void
add_checkin(struct sim *s, uint32_t g)
{
	struct fbx_checkin *c;
	uint32_t o = dev_org(s, g);

	if (s->ncin >= batch_cap(s))
		flush_checkins(s);
	if (s->ncin >= SIM_FLUSH_N)
		return; /* no session yet; the next sweep tries again */
	c = &s->cin[s->ncin++];
	memset(c, 0, sizeof(*c));
	org_name(o, c->org, sizeof(c->org));
	dev_name(s, g, o, c->device, sizeof(c->device));
	c->at_ms = wall_ms();
	snprintf(c->os_version, sizeof(c->os_version), "%s",
	    dev_os(s, g, dev_platform(s, g)));
	c->attestation = FBX_ATTEST_PASS;
}

/* ------------------------------------------------------------------ */
/* receiving */

/* final_result - the device's deterministic answer to a delivery. */
static int
final_result(const struct sim *s, uint64_t id, uint16_t *code)
{
	uint64_t h = h3(s->o.seed, id, 6);

	if (unit(h) < s->o.fail_ratio) {
		*code = (uint16_t)(500 + (h >> 3) % 32);
		return FBX_R_FAILED;
	}
	*code = 0;
	return FBX_R_SUCCEEDED;
}

static void
count_final(struct sim *s, struct dent *e, int status)
{
	if (e->flags & DE_FINAL)
		return;
	e->flags |= DE_FINAL;
	if (status == FBX_R_SUCCEEDED)
		s->t.succeeded++;
	else
		s->t.failed++;
	if (e->dev != UINT32_MAX) {
		struct org_stats *os = &s->ostats[dev_org(s, e->dev)];
		if (status == FBX_R_SUCCEEDED)
			os->succeeded++;
		else
			os->failed++;
	}
}

/* apply_lock - the device received a LOCK or UNLOCK: count it, and
 * change its state if it carries the command out. */
static void
apply_lock(struct sim *s, uint32_t g, int type, int status)
{
	struct org_stats *os = &s->ostats[dev_org(s, g)];
	uint8_t *f = &s->dlock[g];

	if (type == FBX_CMD_LOCK) {
		if (!(*f & LK_GOT_LOCK)) {
			*f |= LK_GOT_LOCK;
			os->locked++;
		}
		if (status == FBX_R_SUCCEEDED && !(*f & LK_NOW)) {
			*f |= LK_NOW;
			os->locked_now++;
		}
	} else if (type == FBX_CMD_UNLOCK) {
		if (!(*f & LK_GOT_UNLOCK)) {
			*f |= LK_GOT_UNLOCK;
			os->unlocked++;
		}
		if (status == FBX_R_SUCCEEDED && (*f & LK_NOW)) {
			*f &= (uint8_t)~LK_NOW;
			os->locked_now--;
		}
	}
}

static void
on_delivery(struct sim *s, const struct fbx_dlv_out *d, int64_t now)
{
	struct dent *e;
	uint32_t g = UINT32_MAX;
	int created, status;
	uint16_t code = 0;

	s->t.received++;
	if (s->dlog != NULL)
		fprintf(s->dlog, "R %" PRIu64 " %" PRId64 "\n",
		    d->delivery_id, mono_ns());
	if (find_device(s, d->org, d->device, &g) != 0) {
		g = UINT32_MAX;
		s->t.foreign++;
	}
	e = dtab_get(&s->tab, d->delivery_id, &created);
	if (e == NULL) {
		logm("out of memory for delivery %" PRIu64, d->delivery_id);
		return;
	}
	if (created) {
		e->dev = g;
		s->t.distinct++;
		if (g != UINT32_MAX) {
			s->dev_distinct[g]++;
			s->ostats[dev_org(s, g)].distinct++;
		}
	} else {
		s->t.duplicates++;
		if (e->flags & DE_DURABLE_OK)
			s->t.dup_after_ok++;
		if (e->flags & DE_DURABLE_FAIL)
			s->t.dup_after_fail++;
	}
	if (e->received < UINT16_MAX)
		e->received++;
	if (g != UINT32_MAX) {
		s->dev_received[g]++;
		s->ostats[dev_org(s, g)].received++;
	}

	if (g == UINT32_MAX) {
		/* Answer anyway, so the engine's window slot is freed. */
		add_result(s, d->delivery_id, FBX_R_FAILED, SIM_FOREIGN_CODE);
		count_final(s, e, FBX_R_FAILED);
		return;
	}
	if (s->dflags[g] & DEV_OFFLINE) {
		add_result(s, d->delivery_id, FBX_R_OFFLINE, 0);
		return;
	}
	status = final_result(s, d->delivery_id, &code);
	apply_lock(s, g, d->type, status);
	if (s->o.accept_first)
		add_result(s, d->delivery_id, FBX_R_ACCEPTED, 0);
	if (s->o.ack_latency_ms == 0) {
		add_result(s, d->delivery_id, status, code);
		count_final(s, e, status);
	} else {
		struct delayed dl;
		dl.due_ms = now + s->o.ack_latency_ms;
		dl.r.delivery_id = d->delivery_id;
		dl.r.status = (uint8_t)status;
		dl.r.code = code;
		if (ring_push(&s->delay, &dl) != FBX_OK)
			logm("out of memory: delivery %" PRIu64
			     " left unanswered",
			    d->delivery_id);
	}
}

/* on_ack - a batch is durable. For results, count is the entries the
 * engine recorded: fewer than the batch means some were refused (a
 * foreign organisation's or an unknown delivery: in a cluster, one
 * another node owns, which will send it again), and which ones is not
 * said, so then none of the batch counts as a durable outcome. */
static void
on_ack(struct sim *s, uint64_t batch_id, uint32_t count)
{
	for (size_t i = 0; i < s->nub; i++) {
		struct ubatch *b = &s->ub[i];
		if (b->batch_id != batch_id)
			continue;
		if (b->kind == FBX_GW_RESULTS) {
			const struct fbx_result_rec *r = b->recs;
			if (count < b->n)
				s->t.results_refused += b->n - count;
			for (size_t k = 0; k < b->n && count >= b->n; k++) {
				struct dent *e;
				if (r[k].status != FBX_R_SUCCEEDED &&
				    r[k].status != FBX_R_FAILED)
					continue;
				e = dtab_find(&s->tab, r[k].delivery_id);
				if (e == NULL)
					continue;
				if (s->dlog != NULL &&
				    r[k].status == FBX_R_SUCCEEDED &&
				    !(e->flags & DE_DURABLE_OK))
					fprintf(s->dlog,
					    "A %" PRIu64 " %" PRId64 "\n",
					    r[k].delivery_id, mono_ns());
				e->flags |= r[k].status == FBX_R_SUCCEEDED
				    ? DE_DURABLE_OK
				    : DE_DURABLE_FAIL;
			}
			s->t.results_acked += b->n;
		} else {
			s->t.checkins_acked += b->n;
		}
		ubatch_drop(s, i);
		return;
	}
	/* An ACK of a batch already ACKed (a resend): nothing to do. */
}

/* decode_message - an engine message into m; a bad one is counted.
 * @return 0 if m holds a message (free it with fbx_eng_msg_free). */
static int
decode_message(struct sim *s, const void *buf, size_t len,
    struct fbx_eng_msg *m)
{
	int rc;

	memset(m, 0, sizeof(*m));
	rc = fbx_eng_msg_decode(buf, len, m);
	if (rc != FBX_OK) {
		s->t.errors++;
		logm("undecodable engine message (%zu bytes): %s", len,
		    fbx_errname(rc));
		return -1;
	}
	return 0;
}

/* on_message - act on a decoded engine message and free it. */
static void
on_message(struct sim *s, struct fbx_eng_msg *mp, int64_t now)
{
	struct fbx_eng_msg m = *mp;

	memset(mp, 0, sizeof(*mp));
	s->last_rx_ms = now;
	switch (m.kind) {
	case FBX_ENG_WELCOME:
		s->hb_ms = m.u.welcome.heartbeat_ms ? m.u.welcome.heartbeat_ms
		                                     : 1000;
		s->max_batch = m.u.welcome.max_batch;
		if (s->state != ST_READY && !s->o.quiet)
			logm("welcome from %s: heartbeat %" PRIu32
			     " ms, max batch %" PRIu32,
			    m.u.welcome.engine_id, s->hb_ms, s->max_batch);
		s->state = ST_READY;
		s->welcomed = 1;
		s->t.welcomes++;
		break;
	case FBX_ENG_DELIVERIES:
		for (size_t i = 0; i < m.u.deliveries.n; i++)
			on_delivery(s, &m.u.deliveries.d[i], now);
		break;
	case FBX_ENG_ACK:
		on_ack(s, m.u.ack.batch_id, m.u.ack.count);
		break;
	case FBX_ENG_ERROR:
		s->t.errors++;
		logm("engine error %s (%d): %s", fbx_errname(m.u.error.err),
		    m.u.error.err, m.u.error.msg);
		/* The engine lost our session (restart): introduce again. */
		if (m.u.error.err == FBX_EPROTOCOL && s->state == ST_READY)
			send_hello(s);
		break;
	default:
		s->t.errors++;
		logm("unexpected engine message kind %d", m.kind);
	}
	fbx_eng_msg_free(&m);
}

/* ------------------------------------------------------------------ */
/* timers */

static void
run_delayed(struct sim *s, int64_t now)
{
	struct ring *r = &s->delay;

	if (!s->welcomed)
		return; /* keep them until there is a session */
	while (r->n > 0 && r->v[r->head].due_ms <= now) {
		struct delayed *d = &r->v[r->head];
		struct dent *e = dtab_find(&s->tab, d->r.delivery_id);
		add_result(s, d->r.delivery_id, d->r.status, d->r.code);
		if (e != NULL)
			count_final(s, e, d->r.status);
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
}

static void
run_checkins(struct sim *s, int64_t now)
{
	int64_t since = now - s->start_ms;
	uint32_t n;
	double step;

	/* Only with a live session: check-ins made while the engine is away
	 * would pile up as un-ACKed batches. */
	if (s->o.checkin_s == 0 || s->state != ST_READY) {
		s->sweep_last_ms = 0; /* no catch-up burst afterwards */
		return;
	}
	/* Offline devices: one check-in each, after ~C s; they are online
	 * from then on. */
	while (s->off_next < s->noff && s->off_due[s->off_next] <= since) {
		uint32_t g = s->off_idx[s->off_next++];
		s->dflags[g] &= (uint8_t)~DEV_OFFLINE;
		add_checkin(s, g);
	}
	/* Online devices: a sweep that visits every device once per C s. */
	if (s->sweep_last_ms == 0)
		s->sweep_last_ms = now;
	step = (double)s->o.ndev * (double)(now - s->sweep_last_ms) /
	        (s->o.checkin_s * 1000.0) +
	    s->sweep_carry;
	s->sweep_last_ms = now;
	n = step > s->o.ndev ? s->o.ndev : (uint32_t)step;
	s->sweep_carry = step - n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t g = s->sweep_next;
		s->sweep_next = (s->sweep_next + 1) % s->o.ndev;
		if (!(s->dflags[g] & DEV_OFFLINE))
			add_checkin(s, g);
	}
	flush_checkins(s);
}

static void
run_resends(struct sim *s, int64_t now)
{
	if (!s->welcomed)
		return;
	for (size_t i = 0; i < s->nub; i++) {
		struct ubatch *b = &s->ub[i];
		if (now - b->sent_ms < SIM_RESEND_MS)
			continue;
		b->sent_ms = now;
		s->t.resends++;
		send_batch(s, b);
	}
}

static void
print_stats(struct sim *s, int64_t now)
{
	if (s->storm.n > 0) {
		uint64_t lk = 0;
		for (uint32_t o = 0; o < s->o.norgs; o++)
			lk += s->ostats[o].locked_now;
		logm("storm %" PRIu32 "/%" PRIu32 " answered, %zu awaiting, "
		     "%" PRIu64 " retries; devices locked now: %" PRIu64,
		    s->storm.done, s->storm.n, s->storm.nslots,
		    s->storm.retries, lk);
	}
	logm("t=%.1fs %s rx=%" PRIu64 " distinct=%" PRIu64 " dup=%" PRIu64
	     " dup_after_ok=%" PRIu64 " foreign=%" PRIu64 " sent=%" PRIu64
	     " acked=%" PRIu64 " ok=%" PRIu64 " fail=%" PRIu64
	     " offline=%" PRIu64 " checkins=%" PRIu64 "/%" PRIu64
	     " unacked=%zu delayed=%zu resends=%" PRIu64 " drops=%" PRIu64,
	    (now - s->start_ms) / 1000.0,
	    s->state == ST_READY ? "ready" : "hello", s->t.received,
	    s->t.distinct, s->t.duplicates, s->t.dup_after_ok, s->t.foreign,
	    s->t.results_sent, s->t.results_acked, s->t.succeeded,
	    s->t.failed, s->t.offline, s->t.checkins_acked,
	    s->t.checkins_sent, s->nub, s->delay.n, s->t.resends,
	    s->t.send_drops);
}

/* ------------------------------------------------------------------ */
/* enrollment */

static int
enroll_fleet(struct sim *s)
{
	fbx_client *cli = NULL;
	struct fbx_device *devs = NULL;
	int rc;
	uint64_t created = 0, updated = 0;

	{
		char why[600] = "";
		struct fbx_client_opts co;
		memset(&co, 0, sizeof(co));
		co.key_file = s->o.key;
		co.server_key_file = s->o.server_key;
		co.why = why;
		co.whylen = sizeof(why);
		rc = fbx_client_open2(s->o.console_ep, 60000, &co, &cli);
		if (rc == FBX_ECONFIG)
			logm("%s", why);
	}
	if (rc != FBX_OK) {
		logm("console %s: %s", s->o.console_ep, fbx_strerror(rc));
		goto out;
	}
	devs = calloc(SIM_ENROLL_BATCH, sizeof(*devs));
	if (devs == NULL) {
		rc = FBX_ENOMEM;
		goto out;
	}
	for (uint32_t o = 0; o < s->o.norgs && !stop_flag; o++) {
		uint32_t done = 0;
		while (done < s->org_count[o] && !stop_flag) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			uint32_t k = s->org_count[o] - done;
			int tries = 0;

			if (k > SIM_ENROLL_BATCH)
				k = SIM_ENROLL_BATCH;
			for (uint32_t i = 0; i < k; i++) {
				uint32_t g = s->org_start[o] + done + i;
				struct fbx_device *d = &devs[i];
				memset(d, 0, sizeof(*d));
				org_name(o, d->org, sizeof(d->org));
				dev_name(s, g, o, d->id, sizeof(d->id));
				d->platform = (uint8_t)dev_platform(s, g);
				d->online = 1;
				snprintf(d->os_version, sizeof(d->os_version),
				    "%s", dev_os(s, g, d->platform));
				d->ngroups = 1;
				snprintf(d->groups[0], sizeof(d->groups[0]),
				    "%s", dev_group(s, g));
			}
			for (;;) {
				memset(&req, 0, sizeof(req));
				org_name(o, req.org, sizeof(req.org));
				req.actor[0] = '\0'; /* the key's */
				req.kind = FBX_CREQ_ENROLL;
				req.u.enroll.devs = devs;
				req.u.enroll.n = k;
				rc = fbx_client_call(cli, &req, &rep);
				if (rc == FBX_OK && rep.err != FBX_OK) {
					rc = rep.err;
					logm("enroll %s: %s: %s", req.org,
					    fbx_errname(rc), rep.errmsg);
					fbx_console_rep_free(&rep);
				} else if (rc == FBX_OK) {
					created += rep.u.enroll.created;
					updated += rep.u.enroll.updated;
					fbx_console_rep_free(&rep);
					break;
				}
				/* The engine may be starting or busy; an
				 * enrolment is an upsert, so retry. */
				if ((rc != FBX_ETIMEOUT &&
				        rc != FBX_EUNREACHABLE &&
				        rc != FBX_EBUSY) ||
				    ++tries > 30 || stop_flag) {
					logm("enroll %s failed: %s", req.org,
					    fbx_strerror(rc));
					goto out;
				}
				if (tries == 1 || tries % 10 == 0)
					logm("enroll %s: %s, retrying",
					    req.org, fbx_strerror(rc));
				usleep(500 * 1000);
			}
			done += k;
		}
	}
	if (!s->o.quiet)
		logm("enrolled %" PRIu32 " devices in %" PRIu32
		     " organisations (created %" PRIu64 ", updated %" PRIu64
		     ")",
		    s->o.ndev, s->o.norgs, created, updated);
	rc = stop_flag ? FBX_ESHUTTING_DOWN : FBX_OK;
out:
	free(devs);
	fbx_client_close(cli);
	return rc;
}

/* ------------------------------------------------------------------ */
/* storm: the broken attestation rule of incident 1 */

static int save_report(struct sim *s);

/* storm_plan - choose the devices: a share F in org-001, the rest round
 * robin over the other organisations, each device at most once, then a
 * deterministic shuffle so every organisation is hit all through the
 * storm. */
static int
storm_plan(struct sim *s)
{
	struct storm *st = &s->storm;
	uint32_t n = s->o.storm_n, m = s->o.norgs, n1, k = 0;
	uint32_t *cur = NULL;
	int rc = FBX_ENOMEM;

	if (n > s->o.ndev) {
		logm("storm: %" PRIu32 " commands for %" PRIu32
		     " devices: one per device, %" PRIu32 " commands",
		    n, s->o.ndev, s->o.ndev);
		n = s->o.ndev;
	}
	st->dev = malloc((size_t)n * sizeof(uint32_t));
	cur = calloc(m, sizeof(uint32_t));
	st->so = calloc(m, sizeof(*st->so));
	st->slots = calloc(s->o.storm_inflight, sizeof(*st->slots));
	if (st->dev == NULL || cur == NULL || st->so == NULL ||
	    st->slots == NULL)
		goto out;
	n1 = m > 1 ? (uint32_t)llround(s->o.storm_skew * n) : n;
	if (n1 > s->org_count[0])
		n1 = s->org_count[0];
	for (; k < n1; k++)
		st->dev[k] = s->org_start[0] + cur[0]++;
	for (uint32_t o = 1; k < n && m > 1;) {
		uint32_t tried = 0;
		while (cur[o] >= s->org_count[o] && tried < m - 1) {
			o = o + 1 < m ? o + 1 : 1;
			tried++;
		}
		if (cur[o] >= s->org_count[o])
			break; /* the other organisations are used up */
		st->dev[k++] = s->org_start[o] + cur[o]++;
		o = o + 1 < m ? o + 1 : 1;
	}
	while (k < n && cur[0] < s->org_count[0])
		st->dev[k++] = s->org_start[0] + cur[0]++;
	st->n = k;
	st->finished = k == 0;
	for (uint32_t i = st->n; i > 1; i--) {
		uint32_t j = (uint32_t)(h3(s->o.seed, i, 7) % i), t;
		t = st->dev[i - 1];
		st->dev[i - 1] = st->dev[j];
		st->dev[j] = t;
	}
	st->next_req = 1;
	rc = FBX_OK;
out:
	free(cur);
	return rc;
}

/* sock_curve - make sock a CURVE client with the key found from given,
 * the environment variable env or ~/.config/fusebox/defname, towards
 * the server key of o. Writes the key's principal to name (may be NULL).
 * @return FBX_OK or FBX_ECONFIG (logged). */
static int
sock_curve(void *sock, const struct opts *o, const char *given,
    const char *env, const char *defname, char *name)
{
	char path[4096], spath[4096], why[600] = "";
	struct fbx_key k, sk;
	int rc;

	if (given == NULL && strcmp(env, "FUSEBOX_KEY") != 0 &&
	    (getenv(env) == NULL || getenv(env)[0] == '\0')) {
		/* fall back on the console key */
		given = o->key;
		env = "FUSEBOX_KEY";
		defname = "client.key";
	}
	if (fbx_key_locate(given, env, defname, path, sizeof(path)) !=
	        FBX_OK ||
	    fbx_key_locate(o->server_key, "FUSEBOX_SERVER_KEY", "server.pub",
	        spath, sizeof(spath)) != FBX_OK) {
		logm("no key: give the key flags or set %s", env);
		return FBX_ECONFIG;
	}
	rc = fbx_key_read(path, 1, &k, why, sizeof(why));
	if (rc == FBX_OK)
		rc = fbx_key_read(spath, 0, &sk, why, sizeof(why));
	if (rc != FBX_OK) {
		logm("%s", why);
		return FBX_ECONFIG;
	}
	if (name != NULL)
		snprintf(name, FBX_ID_MAX + 1, "%s", k.name);
	rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, sk.public_z85, 41) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k.public_z85, 41) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k.secret_z85, 41);
	memset(&k, 0, sizeof(k));
	if (rc != 0) {
		logm("libzmq refused the CURVE keys: %s", zmq_strerror(errno));
		return FBX_ECONFIG;
	}
	return FBX_OK;
}

static int
storm_open(struct sim *s, void *ctx)
{
	struct storm *st = &s->storm;
	int linger = 0, hwm = 100000;
	int64_t maxmsg = FBX_CONSOLE_MSG_MAX + 64 * 1024;

	st->sock = zmq_socket(ctx, ZMQ_DEALER);
	if (st->sock == NULL)
		return FBX_EIO;
	if (zmq_setsockopt(st->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(st->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(st->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(st->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)))
		return FBX_EIO;
	/* automatic commands: an automation principal's key */
	if (sock_curve(st->sock, &s->o, s->o.storm_key, "FUSEBOX_STORM_KEY",
	        "storm.key", s->o.storm_actor) != FBX_OK)
		return FBX_ECONFIG;
	if (zmq_connect(st->sock, s->o.console_ep) != 0) {
		logm("storm: cannot connect %s: %s", s->o.console_ep,
		    zmq_strerror(errno));
		return FBX_EINVALID;
	}
	return FBX_OK;
}

/* storm_send - send (or resend) command idx in slot sl under a fresh
 * request id; the idempotency key makes a resend harmless. @return
 * FBX_OK, or FBX_EBUSY when the socket takes nothing now. */
static int
storm_send(struct sim *s, struct storm_slot *sl, int64_t now)
{
	struct storm *st = &s->storm;
	struct fbx_console_req req;
	struct fbx_command *c = &req.u.submit.cmd;
	char ids[1][FBX_ID_MAX + 1];
	uint32_t g = st->dev[sl->idx], o = dev_org(s, g);
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(&req, 0, sizeof(req));
	req.version = FBX_PROTOCOL_VERSION;
	req.request_id = st->next_req++;
	req.kind = FBX_CREQ_SUBMIT;
	org_name(o, req.org, sizeof(req.org));
	snprintf(req.actor, sizeof(req.actor), "%s",
	    s->o.storm_actor[0] ? s->o.storm_actor : SIM_STORM_ACTOR);
	dev_name(s, g, o, ids[0], sizeof(ids[0]));
	c->type = (uint8_t)s->o.storm_type;
	c->origin = FBX_ORIGIN_AUTOMATIC;
	c->target_kind = FBX_TARGET_DEVICES;
	snprintf(c->reason, sizeof(c->reason), "%s", s->o.storm_reason);
	snprintf(c->idem_key, sizeof(c->idem_key), "storm-%" PRIu64 "-%" PRIu32,
	    s->o.seed, sl->idx);
	c->dev_ids = ids;
	c->ndev_ids = 1;
	rc = fbx_console_req_encode(&req, &buf, &len);
	if (rc != FBX_OK) {
		logm("storm: cannot encode command %" PRIu32 ": %s", sl->idx,
		    fbx_strerror(rc));
		return rc;
	}
	if (zmq_send(st->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 0) {
		free(buf);
		return FBX_EBUSY;
	}
	/* a multipart message is atomic: the body follows the envelope */
	if (zmq_send(st->sock, buf, len, 0) < 0) {
		free(buf);
		return FBX_EIO;
	}
	free(buf);
	sl->req_id = req.request_id;
	sl->due_ms = now + SIM_STORM_TIMEOUT_MS;
	sl->tries++;
	return FBX_OK;
}

static void
storm_settle(struct sim *s, size_t i)
{
	struct storm *st = &s->storm;

	st->slots[i] = st->slots[--st->nslots];
	st->done++;
}

static void
storm_refuse(struct sim *s, size_t i, int err)
{
	struct storm *st = &s->storm;
	struct storm_org *so = &st->so[dev_org(s, st->dev[st->slots[i].idx])];

	so->refused++;
	so->by_code[err >= 0 && err < 64 ? err : 63]++;
	storm_settle(s, i);
}

static void
storm_on_reply(struct sim *s, const void *buf, size_t len, int64_t now)
{
	struct storm *st = &s->storm;
	struct fbx_console_rep rep;
	struct storm_org *so;
	size_t i;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = fbx_console_rep_decode(buf, len, &rep);
	if (rc != FBX_OK) {
		s->t.errors++;
		logm("storm: undecodable reply (%zu bytes): %s", len,
		    fbx_errname(rc));
		return;
	}
	for (i = 0; i < st->nslots; i++)
		if (st->slots[i].req_id == rep.request_id)
			break;
	if (i == st->nslots)
		goto out; /* the reply to a request re-sent since */
	so = &st->so[dev_org(s, st->dev[st->slots[i].idx])];
	switch (rep.err) {
	case FBX_OK:
		if (rep.u.submit.duplicate)
			st->duplicates++;
		if (rep.u.submit.state == FBX_C_HELD ||
		    rep.u.submit.state == FBX_C_DISCARDED)
			so->held++;
		else
			so->admitted++;
		storm_settle(s, i);
		break;
	case FBX_EBUSY:
	case FBX_ESHUTTING_DOWN:
	case FBX_ETIMEOUT:
		/* the engine asks for a retry: same key, a little later */
		st->slots[i].due_ms = now + SIM_STORM_BUSY_MS;
		st->slots[i].req_id = 0;
		break;
	default:
		storm_refuse(s, i, rep.err);
	}
out:
	fbx_console_rep_free(&rep);
}

/* storm_recv - drain the replies waiting on the storm socket. */
static void
storm_recv(struct sim *s, int64_t now)
{
	struct storm *st = &s->storm;

	for (int k = 0; k < 4096; k++) {
		zmq_msg_t part, body;
		int nparts = 0, more, have = 0;

		zmq_msg_init(&body);
		do {
			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, st->sock, nparts ? 0
			                                        : ZMQ_DONTWAIT) <
			    0) {
				zmq_msg_close(&part);
				zmq_msg_close(&body);
				return;
			}
			more = zmq_msg_more(&part);
			nparts++;
			if (zmq_msg_size(&part) > 0 && !have) {
				zmq_msg_move(&body, &part);
				have = 1;
			}
			zmq_msg_close(&part);
		} while (more);
		if (have)
			storm_on_reply(s, zmq_msg_data(&body),
			    zmq_msg_size(&body), now);
		zmq_msg_close(&body);
	}
}

static void
storm_report_lines(struct sim *s, FILE *f)
{
	struct storm *st = &s->storm;
	uint64_t sub = 0, adm = 0, held = 0, ref = 0;
	int64_t el;

	for (uint32_t o = 0; o < s->o.norgs; o++) {
		char name[FBX_ID_MAX + 1];
		const struct storm_org *so = &st->so[o];
		sub += so->submitted;
		adm += so->admitted;
		held += so->held;
		ref += so->refused;
		if (so->submitted == 0)
			continue;
		org_name(o, name, sizeof(name));
		fprintf(f,
		    "storm_org=%s submitted=%" PRIu64 " admitted=%" PRIu64
		    " held=%" PRIu64 " refused=%" PRIu64,
		    name, so->submitted, so->admitted, so->held, so->refused);
		if (so->refused > 0) {
			int first = 1;
			fprintf(f, " refused_by=");
			for (int c = 0; c < 64; c++) {
				if (so->by_code[c] == 0)
					continue;
				fprintf(f, "%s%s:%" PRIu32, first ? "" : ",",
				    fbx_errname(c), so->by_code[c]);
				first = 0;
			}
		}
		fputc('\n', f);
	}
	el = st->started ? (st->finished ? st->end_ms : mono_ms()) -
	        st->start_ms
	                 : 0;
	fprintf(f,
	    "storm_total submitted=%" PRIu64 " admitted=%" PRIu64
	    " held=%" PRIu64 " refused=%" PRIu64 " answered=%" PRIu32
	    " of=%" PRIu32 " retries=%" PRIu64 " duplicates=%" PRIu64
	    " elapsed_ms=%" PRId64 " per_s=%.0f reason=%s type=%s\n",
	    sub, adm, held, ref, st->done, st->n, st->retries,
	    st->duplicates, el, el > 0 ? st->done * 1000.0 / (double)el : 0.0,
	    s->o.storm_reason, fbx_cmd_type_name(s->o.storm_type));
}

/* storm_pump - send what the pacing allows, resend what timed out or was
 * refused as busy. Evenly paced: by t ms into a storm of S s, about
 * N * t / S commands are out. */
static void
storm_pump(struct sim *s, int64_t now)
{
	struct storm *st = &s->storm;
	uint64_t target;

	if (st->finished || st->n == 0)
		return;
	if (!st->started) {
		st->started = 1;
		st->start_ms = now;
		if (!s->o.quiet)
			logm("storm: %" PRIu32 " automatic %s commands "
			     "(reason %s) over %" PRIu32 " s",
			    st->n, fbx_cmd_type_name(s->o.storm_type),
			    s->o.storm_reason, s->o.storm_s);
	}
	for (size_t i = 0; i < st->nslots; i++) {
		struct storm_slot *sl = &st->slots[i];
		if (sl->due_ms > now)
			continue;
		if (sl->tries >= SIM_STORM_TRIES) {
			st->timeouts++;
			storm_refuse(s, i, FBX_ETIMEOUT);
			i--;
			continue;
		}
		if (storm_send(s, sl, now) != FBX_OK)
			return;
		st->retries++;
	}
	if (s->o.storm_s == 0)
		target = st->n;
	else
		target = (uint64_t)st->n * (uint64_t)(now - st->start_ms) /
		        ((uint64_t)s->o.storm_s * 1000) +
		    1;
	if (target > st->n)
		target = st->n;
	while (st->next < target && st->nslots < s->o.storm_inflight) {
		struct storm_slot *sl = &st->slots[st->nslots];
		memset(sl, 0, sizeof(*sl));
		sl->idx = st->next;
		if (storm_send(s, sl, now) != FBX_OK)
			break;
		st->nslots++;
		st->so[dev_org(s, st->dev[sl->idx])].submitted++;
		st->next++;
	}
	if (st->done == st->n) {
		st->finished = 1;
		st->end_ms = now;
		if (!s->o.quiet)
			logm("storm: done in %.1f s", (now - st->start_ms) /
			        1000.0);
		if (!s->o.storm_only)
			storm_report_lines(s, stderr);
		save_report(s);
	}
}

/* storm_wait_ms - how soon the storm needs the loop again. */
static long
storm_wait_ms(const struct sim *s)
{
	const struct storm *st = &s->storm;

	if (st->n == 0 || st->finished)
		return 50;
	if (st->next < st->n && st->nslots < s->o.storm_inflight)
		return 1;
	return 5;
}

/* storm_only_loop - the storm without a gateway: submit, then exit. */
static int
storm_only_loop(struct sim *s)
{
	struct storm *st = &s->storm;
	int64_t next_stats = mono_ms() + (int64_t)s->o.stats_s * 1000;

	while (!stop_flag && !st->finished) {
		zmq_pollitem_t it = { st->sock, 0, ZMQ_POLLIN, 0 };
		int64_t now;
		int n = zmq_poll(&it, 1, storm_wait_ms(s));

		if (n < 0 && errno != EINTR) {
			logm("poll: %s", zmq_strerror(errno));
			return FBX_EIO;
		}
		now = mono_ms();
		if (n > 0)
			storm_recv(s, now);
		storm_pump(s, now);
		/* progress while it runs: what the engine answered so far */
		if (s->o.stats_s > 0 && now >= next_stats && !st->finished) {
			uint64_t adm = 0, held = 0, ref = 0;
			for (uint32_t o = 0; o < s->o.norgs; o++) {
				adm += st->so[o].admitted;
				held += st->so[o].held;
				ref += st->so[o].refused;
			}
			logm("storm: %" PRIu32 "/%" PRIu32 " answered: %" PRIu64
			     " admitted, %" PRIu64 " held, %" PRIu64 " refused",
			    st->done, st->n, adm, held, ref);
			next_stats = now + (int64_t)s->o.stats_s * 1000;
		}
	}
	return FBX_OK;
}

/* ------------------------------------------------------------------ */
/* report */

static void
write_report(struct sim *s, FILE *f, int devices)
{
	fprintf(f,
	    "deliveries_received=%" PRIu64 " distinct_ids=%" PRIu64
	    " duplicates=%" PRIu64 " dup_after_durable_success=%" PRIu64
	    " foreign=%" PRIu64 " results_sent=%" PRIu64
	    " results_acked=%" PRIu64 " succeeded=%" PRIu64 " failed=%" PRIu64
	    " offline=%" PRIu64 " results_refused=%" PRIu64 "\n",
	    s->t.received, s->t.distinct, s->t.duplicates, s->t.dup_after_ok,
	    s->t.foreign, s->t.results_sent, s->t.results_acked,
	    s->t.succeeded, s->t.failed, s->t.offline, s->t.results_refused);
	for (uint32_t o = 0; o < s->o.norgs; o++) {
		char name[FBX_ID_MAX + 1];
		const struct org_stats *os = &s->ostats[o];
		org_name(o, name, sizeof(name));
		fprintf(f,
		    "org=%s devices=%" PRIu32 " received=%" PRIu64
		    " distinct=%" PRIu64 " succeeded=%" PRIu64
		    " failed=%" PRIu64 " locked=%" PRIu64 " unlocked=%" PRIu64
		    " locked_now=%" PRIu64 "\n",
		    name, s->org_count[o], os->received, os->distinct,
		    os->succeeded, os->failed, os->locked, os->unlocked,
		    os->locked_now);
	}
	if (s->storm.n > 0)
		storm_report_lines(s, f);
	if (!devices)
		return;
	for (uint32_t g = 0; g < s->o.ndev; g++) {
		char on[FBX_ID_MAX + 1], dn[FBX_ID_MAX + 16];
		uint32_t o;
		if (s->dev_received[g] == 0)
			continue;
		o = dev_org(s, g);
		org_name(o, on, sizeof(on));
		dev_name(s, g, o, dn, sizeof(dn));
		fprintf(f, "%s %s %" PRIu32 " %" PRIu32 "\n", on, dn,
		    s->dev_distinct[g], s->dev_received[g]);
	}
}

static int
save_report(struct sim *s)
{
	char tmp[4096];
	FILE *f;

	if (s->o.report == NULL)
		return FBX_OK;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", s->o.report) >=
	    (int)sizeof(tmp))
		return FBX_EINVALID;
	f = fopen(tmp, "w");
	if (f == NULL) {
		logm("cannot write %s: %s", tmp, strerror(errno));
		return FBX_EIO;
	}
	write_report(s, f, s->o.report_devices);
	if (fflush(f) != 0 || ferror(f)) {
		logm("cannot write %s: %s", tmp, strerror(errno));
		fclose(f);
		return FBX_EIO;
	}
	fclose(f);
	/* Rename, so a test polling the file never reads half a report. */
	if (rename(tmp, s->o.report) != 0) {
		logm("cannot rename %s: %s", tmp, strerror(errno));
		return FBX_EIO;
	}
	return FBX_OK;
}

/* dlog_flush - hand the delivery log's buffered lines to the file.
 * @return 0 or -1 (logged). */
static int
dlog_flush(struct sim *s)
{
	if (s->dlog == NULL)
		return 0;
	if (fflush(s->dlog) != 0 || ferror(s->dlog)) {
		logm("cannot write %s: %s", s->o.delivery_log,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* the gateway loop */

/* bulk_push - keep a decoded bulk DELIVERIES message for bulk_serve. */
static int
bulk_push(struct sim *s, struct fbx_eng_msg *m)
{
	struct bulkq *q = &s->bulk;

	if (q->n == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 64;
		struct fbx_eng_msg *v = malloc(ncap * sizeof(*v));
		if (v == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < q->n; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->cap = ncap;
		q->head = 0;
	}
	q->v[(q->head + q->n) % q->cap] = *m;
	q->n++;
	return FBX_OK;
}

/* bulk_serve - serve up to SIM_BULK_SLICE deliveries of the oldest bulk
 * message. @return deliveries served. */
static size_t
bulk_serve(struct sim *s, int64_t now)
{
	struct bulkq *q = &s->bulk;
	struct fbx_eng_msg *m = &q->v[q->head];
	size_t k = 0;

	if (q->n == 0)
		return 0;
	for (; q->pos < m->u.deliveries.n && k < SIM_BULK_SLICE; k++)
		on_delivery(s, &m->u.deliveries.d[q->pos++], now);
	if (q->pos >= m->u.deliveries.n) {
		fbx_eng_msg_free(m);
		q->head = (q->head + 1) % q->cap;
		q->n--;
		q->pos = 0;
	}
	return k;
}

/* drain - read what the engine sent (at most SIM_DRAIN_MAX messages):
 * urgent deliveries are served at once and their results leave at
 * once, in a RESULTS batch of their own; bulk ones wait in s->bulk;
 * anything else is handled now.
 * @return FBX_OK or FBX_EIO. */
static int
drain(struct sim *s, int64_t now)
{
	zmq_msg_t msg;
	int urgent = 0;

	for (int k = 0; k < SIM_DRAIN_MAX; k++) {
		struct fbx_eng_msg m;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			if (errno != EAGAIN && errno != EINTR) {
				logm("recv: %s", zmq_strerror(errno));
				return FBX_EIO;
			}
			break;
		}
		if (zmq_msg_more(&msg)) {
			s->t.errors++; /* we expect single frames */
			while (zmq_msg_more(&msg)) {
				zmq_msg_close(&msg);
				zmq_msg_init(&msg);
				if (zmq_msg_recv(&msg, s->sock, 0) < 0)
					break;
			}
			zmq_msg_close(&msg);
			continue;
		}
		if (decode_message(s, zmq_msg_data(&msg), zmq_msg_size(&msg),
		        &m) != 0) {
			zmq_msg_close(&msg);
			continue;
		}
		zmq_msg_close(&msg);
		s->last_rx_ms = now;
		if (m.kind == FBX_ENG_DELIVERIES && !m.u.deliveries.urgent &&
		    m.u.deliveries.n > 0) {
			if (bulk_push(s, &m) == FBX_OK)
				continue;
			logm("out of memory: bulk deliveries served now");
		} else if (m.kind == FBX_ENG_DELIVERIES) {
			/* their results in a batch of their own: small, so
			 * the engine takes it ahead of bulk ones */
			if (!urgent)
				flush_results(s);
			urgent = 1;
		}
		on_message(s, &m, now);
	}
	if (urgent)
		flush_results(s);
	return FBX_OK;
}

static int
gw_open(struct sim *s)
{
	int linger = 1000, hwm = 0, sndhwm = 100000, immediate = 1;
	int64_t maxmsg = FBX_GATEWAY_MSG_MAX + 64 * 1024;

	s->ctx = zmq_ctx_new();
	if (s->ctx == NULL)
		return FBX_EIO;
	s->sock = zmq_socket(s->ctx, ZMQ_DEALER);
	if (s->sock == NULL)
		return FBX_EIO;
	if (zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) ||
	    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(s->sock, ZMQ_IMMEDIATE, &immediate,
	        sizeof(immediate)))
		return FBX_EIO;
	if (sock_curve(s->sock, &s->o, s->o.gw_key, "FUSEBOX_GATEWAY_KEY",
	        "gateway.key", NULL) != FBX_OK)
		return FBX_ECONFIG;
	if (zmq_connect(s->sock, s->o.gw_ep) != 0) {
		logm("cannot connect %s: %s", s->o.gw_ep, zmq_strerror(errno));
		return FBX_EINVALID;
	}
	return FBX_OK;
}

static int
gw_loop(struct sim *s)
{
	int64_t last_stats = mono_ms(), last_timers = 0;

	send_hello(s);
	while (!stop_flag) {
		zmq_pollitem_t its[2] = { { s->sock, 0, ZMQ_POLLIN, 0 },
			{ s->storm.sock, 0, ZMQ_POLLIN, 0 } };
		zmq_pollitem_t it;
		int storm_on = s->storm.sock != NULL;
		int64_t now = mono_ms();
		long wait = 50;
		int n;

		if (s->nout > 0 || s->delay.n > 0)
			wait = 1;
		if (s->bulk.n > 0)
			wait = 0;
		if (storm_on && s->storm.started && storm_wait_ms(s) < wait)
			wait = storm_wait_ms(s);
		n = zmq_poll(its, storm_on ? 2 : 1, wait);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			logm("poll: %s", zmq_strerror(errno));
			return FBX_EIO;
		}
		now = mono_ms();
		/* the storm starts once devices can receive what it sends */
		if (storm_on && (s->storm.started || s->welcomed)) {
			if (its[1].revents & ZMQ_POLLIN)
				storm_recv(s, now);
			storm_pump(s, now);
		}
		it = its[0];
		n = (it.revents & ZMQ_POLLIN) ? 1 : 0;
		/* Take what arrived, serve the bulk deliveries in slices and
		 * look for new messages between slices: urgent deliveries
		 * (small commands) are served as soon as they are read, not
		 * behind the bulk ones received before them. Then timers,
		 * so a flood of deliveries cannot starve ACK handling. */
		if (n > 0 && drain(s, now) != FBX_OK)
			return FBX_EIO;
		for (size_t done = 0; s->bulk.n > 0 && done < SIM_BULK_TURN;) {
			done += bulk_serve(s, now);
			if (drain(s, now) != FBX_OK)
				return FBX_EIO;
		}
		now = mono_ms();
		run_delayed(s, now);
		if (s->nout >= batch_cap(s) ||
		    (s->nout > 0 && now - s->out_first_ms >= SIM_FLUSH_MS))
			flush_results(s);
		if (now - last_timers >= 10) {
			last_timers = now;
			if (s->state == ST_HELLO && s->hello_failed &&
			    now - s->hello_ms >= 100) {
				send_hello(s); /* not connected yet */
			} else if (s->state == ST_HELLO &&
			    now - s->hello_ms >= SIM_HELLO_RETRY_MS) {
				if (!s->o.quiet)
					logm("no welcome from %s, saying "
					     "hello again",
					    s->o.gw_ep);
				send_hello(s);
			} else if (s->state == ST_READY &&
			    now - s->last_rx_ms > 3 * (int64_t)s->hb_ms) {
				/* Silent engine (maybe restarted): a new
				 * HELLO either refreshes the session or
				 * opens one. */
				send_hello(s);
			}
			run_checkins(s, now);
			run_resends(s, now);
			/* readable while the run goes on, 4 times a second */
			if (s->dlog != NULL && now - s->dlog_flush_ms >= 250) {
				s->dlog_flush_ms = now;
				dlog_flush(s);
			}
			if (s->welcomed &&
			    now - s->last_tx_ms >= s->hb_ms / 3)
				send_simple(s, FBX_GW_HEARTBEAT, NULL);
		}
		if (s->o.stats_s > 0 &&
		    now - last_stats >= (int64_t)s->o.stats_s * 1000) {
			last_stats = now;
			print_stats(s, now);
			save_report(s);
			dlog_flush(s);
		}
	}
	/* Clean exit: answer what we can, then say goodbye. */
	while (s->bulk.n > 0)
		bulk_serve(s, mono_ms());
	run_delayed(s, INT64_MAX);
	flush_results(s);
	flush_checkins(s);
	send_simple(s, FBX_GW_BYE, "devsim exit");
	return FBX_OK;
}

/* ------------------------------------------------------------------ */

static const char *const usage =
    "usage: fusebox-devsim [OPTIONS]\n"
    "\n"
    "Simulate a fleet of devices behind one gateway of a fusebox engine.\n"
    "\n"
    "  --gateway-endpoint EP    engine gateway endpoint\n"
    "                           (default " SIM_DEFAULT_GATEWAY ")\n"
    "  --console-endpoint EP    engine console endpoint, for enrolment\n"
    "                           (default " SIM_DEFAULT_CONSOLE ")\n"
    "  --devices N              fleet size (default 30000)\n"
    "  --orgs M                 organisations org-001.. (default 40)\n"
    "  --org-skew F             share of devices in org-001 (e.g. 0.6)\n"
    "  --gateway-id ID          gateway identity (default devsim-<pid>)\n"
    "  --window W               deliveries held unanswered (default 65536)\n"
    "  --ack-latency-ms L       device answer delay (default 0)\n"
    "  --fail-ratio F           share of deliveries that fail (code 5xx)\n"
    "  --offline-ratio O        share of devices that start offline\n"
    "  --checkin-interval-s C   offline devices check in once after ~C s,\n"
    "                           online ones every C s (0 = never)\n"
    "  --accept-first           send ACCEPTED before the final result\n"
    "  --seed S                 seed of every choice (default 1)\n"
    "  --no-enroll              skip enrolment\n"
    "  --enroll-only            enroll, then exit\n"
    "  --report FILE            write the report here (also every stats\n"
    "                           interval, and at exit)\n"
    "  --report-devices         add one line per device to the report\n"
    "  --delivery-log FILE      append a line per delivery received,\n"
    "                           'R DELIVERY_ID NS', and one when its\n"
    "                           success is ACKed as durable, 'A DELIVERY_ID\n"
    "                           NS' (NS: CLOCK_MONOTONIC in nanoseconds,\n"
    "                           one clock for the machine, so the logs of\n"
    "                           several simulators merge by time); written\n"
    "                           4 times a second and at exit\n"
    "  --stats-interval-s S     stats line on stderr every S s (default 10,\n"
    "                           0 = none)\n"
    "  --quiet                  only errors and the final summary\n"
    "  --key FILE               console key (default $FUSEBOX_KEY)\n"
    "  --gateway-key FILE       gateway key (default $FUSEBOX_GATEWAY_KEY,\n"
    "                           else the console key)\n"
    "  --storm-key FILE         automation key of --storm (default\n"
    "                           $FUSEBOX_STORM_KEY, else the console key)\n"
    "  --server-key FILE        engine public key (default\n"
    "                           $FUSEBOX_SERVER_KEY)\n"
    "Storm (incident 1: a broken attestation rule locks the fleet):\n"
    "  --storm N                submit N single-device automatic commands,\n"
    "                           one per device, once the gateway is welcomed\n"
    "  --storm-seconds S        spread them evenly over S s (0 = as fast as\n"
    "                           possible; default 10)\n"
    "  --storm-reason R         their reason (default attestation_failed)\n"
    "  --storm-type T           their type (default lock)\n"
    "  --storm-skew F           share of them in org-001 (default 0.625,\n"
    "                           20000 of 32000); the rest round robin over\n"
    "                           the other organisations\n"
    "  --storm-inflight K       requests awaiting a reply (default 256)\n"
    "  --storm-only             no gateway: submit the storm, report, exit\n"
    "  --help, --version\n"
    "\n"
    "The report's first line holds the totals; dup_after_durable_success\n"
    "counts deliveries received again after their success was ACKed by the\n"
    "engine, i.e. exactly-once violations; results_refused counts results\n"
    "of ACKed batches the engine did not record (its ACK's count short of\n"
    "the batch: another node's or an unknown delivery), and such a batch\n"
    "gives no durable outcome. Per organisation, locked and\n"
    "unlocked count the devices that received a LOCK or UNLOCK delivery,\n"
    "locked_now those locked now. A storm adds 'storm_org=ORG submitted=\n"
    "admitted= held= refused=' lines (what the engine answered: admitted\n"
    "= accepted for dispatch, held = held by a breaker, refused = an\n"
    "error, by code) and a 'storm_total' line. SIGINT/SIGTERM: BYE,\n"
    "report, exit 0.\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 69 engine unreachable or refused, 70\n"
    "internal error, 71 cannot set up ZeroMQ, 73 cannot write the report\n"
    "or the delivery log.\n";

enum {
	O_GW = 1000,
	O_CONSOLE,
	O_DEVICES,
	O_ORGS,
	O_SKEW,
	O_GWID,
	O_WINDOW,
	O_LAT,
	O_FAIL,
	O_OFFLINE,
	O_CHECKIN,
	O_ACCEPT,
	O_SEED,
	O_NOENROLL,
	O_ENROLLONLY,
	O_REPORT,
	O_REPORTDEV,
	O_DLOG,
	O_STATS,
	O_QUIET,
	O_STORM,
	O_STORM_S,
	O_STORM_REASON,
	O_STORM_TYPE,
	O_STORM_SKEW,
	O_STORM_INFLIGHT,
	O_STORM_ONLY,
	O_HELP,
	O_VERSION,
	O_KEY,
	O_GW_KEY,
	O_STORM_KEY,
	O_SERVER_KEY,
};

static int
bad_flag(const char *what, const char *v)
{
	fprintf(stderr, "fusebox-devsim: %s (%d): bad %s '%s'\n",
	    fbx_errname(FBX_EINVALID), FBX_EINVALID, what, v ? v : "");
	return EX_USAGE;
}

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_ratio(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

static int
parse_args(struct sim *s, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "gateway-endpoint", required_argument, NULL, O_GW },
		{ "console-endpoint", required_argument, NULL, O_CONSOLE },
		{ "devices", required_argument, NULL, O_DEVICES },
		{ "orgs", required_argument, NULL, O_ORGS },
		{ "org-skew", required_argument, NULL, O_SKEW },
		{ "gateway-id", required_argument, NULL, O_GWID },
		{ "window", required_argument, NULL, O_WINDOW },
		{ "ack-latency-ms", required_argument, NULL, O_LAT },
		{ "fail-ratio", required_argument, NULL, O_FAIL },
		{ "offline-ratio", required_argument, NULL, O_OFFLINE },
		{ "checkin-interval-s", required_argument, NULL, O_CHECKIN },
		{ "accept-first", no_argument, NULL, O_ACCEPT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "no-enroll", no_argument, NULL, O_NOENROLL },
		{ "enroll-only", no_argument, NULL, O_ENROLLONLY },
		{ "report", required_argument, NULL, O_REPORT },
		{ "report-devices", no_argument, NULL, O_REPORTDEV },
		{ "delivery-log", required_argument, NULL, O_DLOG },
		{ "stats-interval-s", required_argument, NULL, O_STATS },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "storm", required_argument, NULL, O_STORM },
		{ "storm-seconds", required_argument, NULL, O_STORM_S },
		{ "storm-reason", required_argument, NULL, O_STORM_REASON },
		{ "storm-type", required_argument, NULL, O_STORM_TYPE },
		{ "storm-skew", required_argument, NULL, O_STORM_SKEW },
		{ "storm-inflight", required_argument, NULL, O_STORM_INFLIGHT },
		{ "storm-only", no_argument, NULL, O_STORM_ONLY },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ "key", required_argument, NULL, O_KEY },
		{ "gateway-key", required_argument, NULL, O_GW_KEY },
		{ "storm-key", required_argument, NULL, O_STORM_KEY },
		{ "server-key", required_argument, NULL, O_SERVER_KEY },
		{ NULL, 0, NULL, 0 },
	};
	struct opts *o = &s->o;
	int c, li = -1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, &li)) != -1) {
		/* whole names only: getopt_long would take "--dev" for
		 * "--devices" */
		if (c != '?' && li >= 0 && optind >= 1 && optind <= argc) {
			const char *tok = argv[optind - 1];
			size_t n;
			if (optarg != NULL && optarg == tok && optind >= 2)
				tok = argv[optind - 2];
			n = strcspn(tok, "=");
			if (strncmp(tok, "--", 2) == 0 &&
			    (strlen(lo[li].name) != n - 2 ||
			        strncmp(tok + 2, lo[li].name, n - 2) != 0)) {
				fprintf(stderr, "fusebox-devsim: unknown option "
				    "'%.*s' (did you mean --%s? options are "
				    "not abbreviated)\n", (int)n, tok,
				    lo[li].name);
				return EX_USAGE;
			}
		}
		li = -1;
		switch (c) {
		case O_GW:
			o->gw_ep = optarg;
			break;
		case O_CONSOLE:
			o->console_ep = optarg;
			break;
		case O_DEVICES:
			if (parse_u32(optarg, 1, SIM_DEVICES_MAX, &o->ndev))
				return bad_flag("--devices", optarg);
			break;
		case O_ORGS:
			if (parse_u32(optarg, 1, SIM_ORGS_MAX, &o->norgs))
				return bad_flag("--orgs", optarg);
			break;
		case O_SKEW:
			if (parse_ratio(optarg, &o->org_skew))
				return bad_flag("--org-skew", optarg);
			break;
		case O_GWID:
			if (!fbx_id_valid(optarg))
				return bad_flag("--gateway-id", optarg);
			o->gateway_id = optarg;
			break;
		case O_WINDOW:
			if (parse_u32(optarg, 1, 1u << 24, &o->window))
				return bad_flag("--window", optarg);
			break;
		case O_LAT:
			if (parse_u32(optarg, 0, 3600 * 1000,
			        &o->ack_latency_ms))
				return bad_flag("--ack-latency-ms", optarg);
			break;
		case O_FAIL:
			if (parse_ratio(optarg, &o->fail_ratio))
				return bad_flag("--fail-ratio", optarg);
			break;
		case O_OFFLINE:
			if (parse_ratio(optarg, &o->offline_ratio))
				return bad_flag("--offline-ratio", optarg);
			break;
		case O_CHECKIN:
			if (parse_u32(optarg, 0, 86400 * 30, &o->checkin_s))
				return bad_flag("--checkin-interval-s",
				    optarg);
			break;
		case O_ACCEPT:
			o->accept_first = 1;
			break;
		case O_SEED: {
			char *end;
			errno = 0;
			o->seed = strtoull(optarg, &end, 0);
			if (errno || *end != '\0' || *optarg == '-')
				return bad_flag("--seed", optarg);
			break;
		}
		case O_NOENROLL:
			o->no_enroll = 1;
			break;
		case O_ENROLLONLY:
			o->enroll_only = 1;
			break;
		case O_REPORT:
			o->report = optarg;
			break;
		case O_REPORTDEV:
			o->report_devices = 1;
			break;
		case O_DLOG:
			if (optarg[0] == '\0')
				return bad_flag("--delivery-log", optarg);
			o->delivery_log = optarg;
			break;
		case O_STATS:
			if (parse_u32(optarg, 0, 86400, &o->stats_s))
				return bad_flag("--stats-interval-s", optarg);
			break;
		case O_QUIET:
			o->quiet = 1;
			break;
		case O_STORM:
			if (parse_u32(optarg, 1, SIM_DEVICES_MAX, &o->storm_n))
				return bad_flag("--storm", optarg);
			break;
		case O_STORM_S:
			if (parse_u32(optarg, 0, 86400, &o->storm_s))
				return bad_flag("--storm-seconds", optarg);
			break;
		case O_STORM_REASON:
			if (!fbx_id_valid(optarg))
				return bad_flag("--storm-reason", optarg);
			o->storm_reason = optarg;
			break;
		case O_STORM_TYPE: {
			char t[64];
			snprintf(t, sizeof(t), "%s", optarg);
			for (char *p = t; *p; p++)
				if (*p == '-')
					*p = '_';
			o->storm_type = fbx_cmd_type_parse(t);
			if (o->storm_type == 0)
				return bad_flag("--storm-type", optarg);
			break;
		}
		case O_STORM_SKEW:
			if (parse_ratio(optarg, &o->storm_skew))
				return bad_flag("--storm-skew", optarg);
			break;
		case O_STORM_INFLIGHT:
			if (parse_u32(optarg, 1, 65536, &o->storm_inflight))
				return bad_flag("--storm-inflight", optarg);
			break;
		case O_STORM_ONLY:
			o->storm_only = 1;
			break;
		case 'h':
		case O_HELP:
			fputs(usage, stdout);
			return -1;
		case O_VERSION:
			printf("fusebox-devsim %s (protocol %d)\n",
			    FBX_VERSION, FBX_PROTOCOL_VERSION);
			return -1;
		case O_KEY:
			o->key = optarg;
			break;
		case O_GW_KEY:
			o->gw_key = optarg;
			break;
		case O_STORM_KEY:
			o->storm_key = optarg;
			break;
		case O_SERVER_KEY:
			o->server_key = optarg;
			break;
		default:
			return bad_flag("option",
			    optind > 0 ? argv[optind - 1] : "");
		}
	}
	if (optind < argc)
		return bad_flag("argument", argv[optind]);
	if (o->no_enroll && o->enroll_only)
		return bad_flag("combination", "--no-enroll --enroll-only");
	if (o->norgs > o->ndev)
		return bad_flag("--orgs (more organisations than devices)",
		    argv[0]);
	if (o->storm_only && o->storm_n == 0)
		return bad_flag("combination", "--storm-only without --storm");
	if (o->storm_n > 0 && o->enroll_only)
		return bad_flag("combination", "--storm --enroll-only");
	return 0;
}

int
main(int argc, char **argv)
{
	static struct sim sim; /* large; zeroed */
	struct sim *s = &sim;
	struct sigaction sa;
	char gwid[FBX_ID_MAX + 1];
	int rc, st = EX_OK;

	s->o.gw_ep = SIM_DEFAULT_GATEWAY;
	s->o.console_ep = SIM_DEFAULT_CONSOLE;
	s->o.ndev = 30000;
	s->o.norgs = 40;
	s->o.org_skew = -1;
	s->o.window = 65536;
	s->o.seed = 1;
	s->o.stats_s = 10;
	s->o.storm_s = 10;
	s->o.storm_skew = 20000.0 / 32000.0;
	s->o.storm_reason = "attestation_failed";
	s->o.storm_type = FBX_CMD_LOCK;
	s->o.storm_inflight = SIM_STORM_INFLIGHT;
	rc = parse_args(s, argc, argv);
	if (rc != 0)
		return rc < 0 ? EX_OK : rc;
	if (s->o.gateway_id == NULL) {
		snprintf(gwid, sizeof(gwid), "devsim-%ld", (long)getpid());
		s->o.gateway_id = gwid;
	}
	if (s->o.quiet && s->o.stats_s == 10)
		s->o.stats_s = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	s->start_ms = mono_ms();
	s->next_batch = 1;
	if (fleet_init(s) != FBX_OK ||
	    dtab_init(&s->tab, s->o.ndev) != FBX_OK ||
	    (s->out = malloc(SIM_FLUSH_N * sizeof(*s->out))) == NULL ||
	    (s->capout = SIM_FLUSH_N) == 0 ||
	    (s->cin = malloc(SIM_FLUSH_N * sizeof(*s->cin))) == NULL) {
		logm("out of memory for %" PRIu32 " devices", s->o.ndev);
		st = EX_OSERR;
		goto out;
	}
	if (!s->o.no_enroll) {
		rc = enroll_fleet(s);
		if (rc != FBX_OK && !stop_flag) {
			st = rc == FBX_EUNREACHABLE || rc == FBX_ETIMEOUT
			    ? EX_UNAVAILABLE
			    : EX_SOFTWARE;
			goto out;
		}
	}
	if (s->o.enroll_only || stop_flag)
		goto out;
	if (s->o.storm_n > 0 && storm_plan(s) != FBX_OK) {
		logm("out of memory for a storm of %" PRIu32, s->o.storm_n);
		st = EX_OSERR;
		goto out;
	}
	if (s->o.storm_only) {
		s->ctx = zmq_ctx_new();
		if (s->ctx == NULL || storm_open(s, s->ctx) != FBX_OK) {
			logm("cannot open the storm socket for %s",
			    s->o.console_ep);
			st = EX_UNAVAILABLE;
			goto out;
		}
		if (storm_only_loop(s) != FBX_OK)
			st = EX_SOFTWARE;
		if (save_report(s) != FBX_OK && st == EX_OK)
			st = EX_CANTCREAT;
		storm_report_lines(s, stdout);
		goto out;
	}
	if (s->o.delivery_log != NULL &&
	    (s->dlog = fopen(s->o.delivery_log, "a")) == NULL) {
		logm("cannot open %s: %s", s->o.delivery_log, strerror(errno));
		st = EX_CANTCREAT;
		goto out;
	}
	if (gw_open(s) != FBX_OK) {
		logm("cannot open the gateway socket for %s", s->o.gw_ep);
		st = EX_UNAVAILABLE;
		goto out;
	}
	if (s->o.storm_n > 0 && storm_open(s, s->ctx) != FBX_OK) {
		logm("cannot open the storm socket for %s", s->o.console_ep);
		st = EX_UNAVAILABLE;
		goto out;
	}
	s->start_ms = mono_ms();
	if (gw_loop(s) != FBX_OK)
		st = EX_SOFTWARE;
	if (save_report(s) != FBX_OK && st == EX_OK)
		st = EX_CANTCREAT;
	write_report(s, stdout, 0);
out:
	if (s->dlog != NULL) {
		if (dlog_flush(s) != 0 && st == EX_OK)
			st = EX_CANTCREAT;
		fclose(s->dlog);
	}
	if (s->storm.sock != NULL)
		zmq_close(s->storm.sock);
	if (s->sock != NULL)
		zmq_close(s->sock);
	if (s->ctx != NULL)
		zmq_ctx_term(s->ctx);
	for (size_t i = 0; i < s->nub; i++)
		free(s->ub[i].recs);
	free(s->ub);
	free(s->out);
	free(s->cin);
	free(s->delay.v);
	dtab_free(&s->tab);
	while (s->bulk.n > 0) {
		fbx_eng_msg_free(&s->bulk.v[s->bulk.head]);
		s->bulk.head = (s->bulk.head + 1) % s->bulk.cap;
		s->bulk.n--;
	}
	free(s->bulk.v);
	free(s->org_start);
	free(s->org_count);
	free(s->ostats);
	free(s->dflags);
	free(s->dev_distinct);
	free(s->dev_received);
	free(s->dlock);
	free(s->storm.dev);
	free(s->storm.so);
	free(s->storm.slots);
	free(s->off_idx);
	free(s->off_due);
	fflush(stdout);
	return st;
}
