/*
 * breaker.c: bench_breaker, the replay of incident 1 that issue 9's
 * "Done when" asks for. One run, on a fresh store:
 *
 *  1. fuseboxd and a gateway simulator (fusebox-devsim) that enrolls
 *     32,000 devices in 40 organisations, 20,000 in org-001
 *     (--org-skew 0.625) and about 308 in each other, and stays attached.
 *     With --settle off the global breaker of attestation_failed is
 *     configured with settle 0 first (nothing else is configured: the
 *     engine's defaults are what is measured).
 *  2. A baseline of legitimate automatic locks (origin automatic, reason
 *     attestation_failed, one device each, from the automation principal
 *     "rule-engine"): one per organisation every 15 s for 30 s (rounds
 *     at t = 0 and t = 15 s), on devices taken from each organisation's
 *     device list.
 *  3. At t = 30 s the storm: fusebox-devsim --storm 32000 --storm-seconds
 *     S --storm-only (the automation principal "attestation-rule"), and
 *     1 s into it an operator lock (origin operator, principal "admin")
 *     of 50 devices of org-001.
 *  4. After the storm: idle, then past the settle delay (+ a margin) and
 *     idle again, so that whatever the engine would release has gone out.
 *  5. The accounting comes from the engine's journal, not from timing:
 *     every organisation's commands are paged through (LIST_COMMANDS);
 *     storm commands are the automatic ones created at or after the
 *     storm's start that are not baseline locks; a device counts as
 *     locked by the storm when a delivery of a storm command was handed
 *     to a gateway (attempts > 0 or SENT in its history: GET_COMMAND).
 *     The baseline locks' delay runs from created_ms to the first SENT of
 *     the delivery. The breakers' state (trips, onset) comes from
 *     BREAKER STATUS. The gateway simulator's report (`locked=` per
 *     organisation: devices that got any lock) minus the baseline and
 *     operator devices it got is printed beside it as a cross-check.
 *
 * Per run it prints a table per organisation and the targets of issue 9
 * with PASS/FAIL (a FAIL does not change the exit status: this is a
 * benchmark); then one JSON line per run ("bench":"breaker_run") when
 * --runs > 1, and one summary line ("bench":"breaker": the run itself,
 * or the medians of the runs with the worst run's organisation and the
 * targets passed only if every run passed them).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bench.h"

#define ORGS_MAX 256
#define ROUNDS_MAX 16
#define OPERATOR_MAX 1000
#define RUNS_MAX 64
#define PAGE 1000
#define REASON "attestation_failed"
#define AUTO_PRINCIPAL "rule-engine"

struct opts {
	uint32_t locks, devices, orgs, seconds, runs;
	uint32_t baseline_s, baseline_every_s, operator_n, margin_s;
	int settle_on;
	const char *skew;
	int verbose;
	int cert; /* the attestation certificate expires as the storm starts */
};

/* one organisation of one run */
struct org {
	char name[FBX_ID_MAX + 1];
	uint32_t fleet;
	/* baseline: one lock per round */
	uint32_t nbase;
	char base_dev[ROUNDS_MAX][FBX_ID_MAX + 1];
	uint64_t base_id[ROUNDS_MAX];
	/* accounting */
	uint64_t storm_cmds, storm_admitted, storm_settling, storm_held,
	    storm_held_settling, storm_locked;
	int64_t storm_first_ms, storm_first_sent_ms; /* 0 = none */
	uint32_t base_sent, base_held, base_settling;
	int64_t base_max_delay_ms; /* -1 = none sent */
	uint32_t others_delivered; /* baseline + operator devices locked */
	/* breaker */
	uint32_t allowance;
	uint8_t brk_state;
	uint64_t brk_trips;
	int64_t brk_tripped_ms, brk_onset_ms;
	/* the gateway simulator */
	uint64_t sim_locked, sim_admitted, sim_held;
	int64_t sim_storm_locked;
};

/* what one run measured; doubles so the medians can be taken */
struct run {
	double storm_cmds, storm_locked_total, storm_locked_sim,
	    storm_locked_org001, storm_locked_other_max, worst_org_pct,
	    worst_org_locked, worst_org_fleet, orgs_over_cap, orgs_locked;
	double storm_admitted, storm_settling, storm_held,
	    storm_held_settling, sim_admitted, sim_held, sim_refused;
	double baseline_cmds, baseline_sent, baseline_held,
	    baseline_settling, baseline_max_delay_ms;
	double operator_devices, operator_delivered, operator_held,
	    operator_delay_ms;
	double org_trips, org_trips_before_global, global_tripped,
	    first_storm_lock_to_global_trip_ms,
	    storm_start_to_global_trip_ms, global_onset_from_storm_start_ms,
	    storm_elapsed_ms, settle_s;
	/* the first storm delivery handed to a gateway, from the global
	 * trip (< 0: before it); has_ = whether there was one */
	double global_trip_to_first_storm_delivery_ms,
	    has_storm_delivery;
	char worst_org[FBX_ID_MAX + 1];
	int pass_zero, pass_cap, pass_held, pass_delay; /* -1 = n/a */
};

static struct org orgs[ORGS_MAX];

/* ---------------------------------------------------------- helpers */

static void
org_name(uint32_t i, char *out, size_t cap)
{
	snprintf(out, cap, "org-%03" PRIu32, i + 1);
}

static int
org_index(const char *name, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(orgs[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* sleep_until - sleep until the monotonic time t_us (or a signal). */
static void
sleep_until(int64_t t_us)
{
	for (;;) {
		int64_t left = t_us - fbxb_mono_us();
		if (left <= 0 || fbxb_stop)
			return;
		fbxb_sleep_ms(left > 200000 ? 200 : (int)((left + 999) / 1000));
	}
}

/* fleets - the fleet size of every organisation (LIST_ORGS). */
static int
fleets(fbx_client *c, uint32_t n)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_ORGS;
	rc = fbxb_call(c, "org-001", &req, &rep);
	if (rc == FBX_OK) {
		for (size_t i = 0; i < rep.u.orgs.n; i++) {
			int k = org_index(rep.u.orgs.orgs[i], n);
			if (k >= 0)
				orgs[k].fleet = rep.u.orgs.devices[i];
		}
	}
	fbx_console_rep_free(&rep);
	if (rc != FBX_OK)
		return rc;
	for (uint32_t i = 0; i < n; i++) {
		if (orgs[i].fleet == 0) {
			fprintf(stderr, "breaker: %s has no devices\n",
			    orgs[i].name);
			return FBX_ENOT_FOUND;
		}
	}
	return FBX_OK;
}

/* pick_devices - the first `want` device ids of an organisation. */
static int
pick_devices(fbx_client *c, const char *org, uint32_t want,
    char (*out)[FBX_ID_MAX + 1], uint32_t *got)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	*got = 0;
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.limit = want;
	rc = fbxb_call(c, org, &req, &rep);
	if (rc == FBX_OK) {
		for (size_t i = 0; i < rep.u.devices.n && *got < want; i++)
			snprintf(out[(*got)++], FBX_ID_MAX + 1, "%s",
			    rep.u.devices.devs[i].id);
	}
	fbx_console_rep_free(&rep);
	return rc;
}

/* register_cert - the attestation provider's signing certificate, bound
 * to REASON, expiring at not_after (Unix s), tripping trip_before s
 * ahead: made here with OpenSSL (a fresh EC key, self-signed) and
 * registered with a CertRequest ADD. @return FBX_OK or an error. */
static int
register_cert(fbx_client *c, const char *org, int64_t not_after,
    uint32_t trip_before)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *bio = BIO_new(BIO_s_mem());
	X509_NAME *n;
	char *pem = NULL;
	long len;
	int rc = FBX_ECRYPTO;

	if (key == NULL || x == NULL || bio == NULL ||
	    X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1)
		goto out;
	n = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	        (const unsigned char *)"attestation-signing", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, n) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x),
	        (time_t)(not_after - 365 * 86400)) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL ||
	    X509_set_pubkey(x, key) != 1 || X509_sign(x, key, EVP_sha256()) <= 0 ||
	    PEM_write_bio_X509(bio, x) != 1)
		goto out;
	len = BIO_get_mem_data(bio, &pem);
	if (len <= 0)
		goto out;
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = FBX_CERT_ADD;
	snprintf(req.u.cert.name, sizeof(req.u.cert.name), "attestation");
	req.u.cert.pem = (uint8_t *)pem;
	req.u.cert.pem_len = (size_t)len;
	snprintf(req.u.cert.reasons[0], sizeof(req.u.cert.reasons[0]), "%s",
	    REASON);
	req.u.cert.nreasons = 1;
	req.u.cert.trip_before_s = trip_before;
	snprintf(req.u.cert.note, sizeof(req.u.cert.note),
	    "bench: expires as the storm starts");
	rc = fbxb_call(c, org, &req, &rep);
	if (rc != FBX_OK)
		fprintf(stderr, "breaker: cert add: %s %s\n", fbx_errname(rc),
		    rep.errmsg);
	fbx_console_rep_free(&rep);
out:
	BIO_free(bio);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* configure_settle - the global breaker of REASON gets settle_s. */
static int
configure_settle(fbx_client *c, uint32_t settle_s)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_CONFIGURE;
	req.u.breaker.global = 1;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), "%s",
	    REASON);
	req.u.breaker.cfg.settle_set = 1;
	req.u.breaker.cfg.settle_s = settle_s;
	rc = fbxb_call(c, "org-001", &req, &rep);
	if (rc != FBX_OK)
		fprintf(stderr, "breaker: configure settle %u: %s %s\n",
		    settle_s, fbx_strerror(rc), rep.errmsg);
	fbx_console_rep_free(&rep);
	return rc;
}

/* submit_lock - one lock of devices ids[0..n) in org. *state is the
 * command state the engine answered. */
static int
submit_lock(fbx_client *c, const char *org, int origin, const char *idem,
    char (*ids)[FBX_ID_MAX + 1], uint32_t n, uint64_t *id, int *state)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command *cmd = &req.u.submit.cmd;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	cmd->type = FBX_CMD_LOCK;
	cmd->origin = (uint8_t)origin;
	cmd->ttl_s = 3600;
	if (origin == FBX_ORIGIN_AUTOMATIC)
		snprintf(cmd->reason, sizeof(cmd->reason), "%s", REASON);
	snprintf(cmd->idem_key, sizeof(cmd->idem_key), "%s", idem);
	cmd->target_kind = FBX_TARGET_DEVICES;
	cmd->dev_ids = ids; /* borrowed: not freed here */
	cmd->ndev_ids = n;
	rc = fbxb_call(c, org, &req, &rep);
	if (rc == FBX_OK) {
		*id = rep.u.submit.command_id;
		*state = rep.u.submit.state;
	} else {
		fprintf(stderr, "breaker: %s lock in %s refused: %s %s\n",
		    fbx_origin_name(origin), org, fbx_strerror(rc),
		    rep.errmsg);
	}
	fbx_console_rep_free(&rep);
	return rc;
}

/* dlv_sent - whether a delivery was handed to a gateway, and when first
 * (from its history; -1 if the history lost it). */
static int
dlv_sent(const struct fbx_delivery *d, int64_t *first_sent_ms)
{
	int sent = d->attempts > 0;

	*first_sent_ms = -1;
	for (uint8_t h = 0; h < d->nhist && h < FBX_HIST_MAX; h++) {
		if (d->hist[h].state == FBX_D_SENT) {
			*first_sent_ms = d->hist[h].at_ms;
			sent = 1;
			break;
		}
	}
	return sent;
}

struct cmd_look {
	struct fbx_command info; /* no payload / device ids */
	uint32_t ndlv, sent;
	int64_t created_ms, max_delay_ms; /* created -> first SENT */
	int64_t first_sent_ms;            /* earliest SENT, 0 = none */
	int found;
};

/* look_command - GET_COMMAND and every page of its deliveries. */
static int
look_command(fbx_client *c, const char *org, uint64_t id,
    struct cmd_look *out)
{
	uint64_t after = 0;

	memset(out, 0, sizeof(*out));
	out->max_delay_ms = -1;
	do {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int rc;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		req.u.get.after = after;
		req.u.get.limit = PAGE;
		req.u.get.state = FBX_D_NONE;
		rc = fbxb_call(c, org, &req, &rep);
		if (rc != FBX_OK) {
			fbx_console_rep_free(&rep);
			return rc;
		}
		out->found = 1;
		out->info = rep.u.command.info;
		out->info.payload = NULL;
		out->info.payload_len = 0;
		out->info.dev_ids = NULL;
		out->info.ndev_ids = 0;
		out->created_ms = out->info.created_ms;
		for (size_t i = 0; i < rep.u.command.ndlv; i++) {
			int64_t at;
			out->ndlv++;
			if (dlv_sent(&rep.u.command.dlv[i], &at)) {
				out->sent++;
				if (at > 0 && (out->first_sent_ms == 0 ||
				                  at < out->first_sent_ms))
					out->first_sent_ms = at;
				if (at >= 0 &&
				    at - out->created_ms > out->max_delay_ms)
					out->max_delay_ms =
					    at - out->created_ms;
			}
		}
		after = rep.u.command.next_after;
		fbx_console_rep_free(&rep);
	} while (after != 0 && !fbxb_stop);
	return FBX_OK;
}

static int
is_base(const struct org *g, uint64_t id)
{
	for (uint32_t r = 0; r < g->nbase; r++)
		if (g->base_id[r] == id)
			return 1;
	return 0;
}

/* account_org - page through one organisation's commands: the storm's
 * (automatic, created at or after storm_ms, not baseline), the
 * baseline's and the operator lock's (op_id, org-001 only). */
static int
account_org(fbx_client *c, struct org *g, int64_t storm_ms, uint64_t op_id,
    struct cmd_look *op)
{
	uint64_t after = 0;
	int rc;

	g->storm_first_ms = INT64_MAX;
	g->base_max_delay_ms = -1;
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		size_t n;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.after = after;
		req.u.list.limit = PAGE;
		rc = fbxb_call(c, g->name, &req, &rep);
		if (rc != FBX_OK) {
			fbx_console_rep_free(&rep);
			fprintf(stderr, "breaker: list commands of %s: %s\n",
			    g->name, fbx_strerror(rc));
			return rc;
		}
		n = rep.u.commands.n;
		for (size_t i = 0; i < n; i++) {
			const struct fbx_command *k = &rep.u.commands.cmds[i];
			uint32_t handed = 0;
			after = k->id;
			if (k->origin != FBX_ORIGIN_AUTOMATIC ||
			    k->created_ms < storm_ms || is_base(g, k->id))
				continue;
			g->storm_cmds++;
			if (k->created_ms < g->storm_first_ms)
				g->storm_first_ms = k->created_ms;
			if (k->state == FBX_C_HELD ||
			    k->state == FBX_C_DISCARDED) {
				g->storm_held++;
				if (k->settle_until_ms > 0)
					g->storm_held_settling++;
			} else if (k->state == FBX_C_SETTLING) {
				g->storm_settling++;
			} else {
				g->storm_admitted++;
			}
			for (int s = FBX_D_SENT; s < FBX_D_COUNT; s++)
				handed += k->counts[s];
			if (k->ndeliveries > 0 && handed > 0) {
				/* past QUEUED: was it handed to a gateway? */
				struct cmd_look lk;
				rc = look_command(c, g->name, k->id, &lk);
				if (rc != FBX_OK) {
					fbx_console_rep_free(&rep);
					return rc;
				}
				g->storm_locked += lk.sent;
				if (lk.first_sent_ms > 0 &&
				    (g->storm_first_sent_ms == 0 ||
				        lk.first_sent_ms <
				            g->storm_first_sent_ms))
					g->storm_first_sent_ms =
					    lk.first_sent_ms;
			}
		}
		fbx_console_rep_free(&rep);
		if (n < PAGE || fbxb_stop)
			break;
	}
	if (g->storm_first_ms == INT64_MAX)
		g->storm_first_ms = 0;
	for (uint32_t r = 0; r < g->nbase; r++) {
		struct cmd_look lk;
		rc = look_command(c, g->name, g->base_id[r], &lk);
		if (rc != FBX_OK)
			return rc;
		if (lk.info.state == FBX_C_HELD ||
		    lk.info.state == FBX_C_DISCARDED)
			g->base_held++;
		if (lk.info.state == FBX_C_SETTLING)
			g->base_settling++;
		if (lk.sent > 0) {
			g->base_sent++;
			g->others_delivered += lk.sent;
			if (lk.max_delay_ms > g->base_max_delay_ms)
				g->base_max_delay_ms = lk.max_delay_ms;
		}
	}
	if (op_id != 0) {
		rc = look_command(c, g->name, op_id, op);
		if (rc != FBX_OK)
			return rc;
		g->others_delivered += op->sent;
	}
	return FBX_OK;
}

/* breakers - every organisation's breaker of REASON, and the global one
 * (g_out). */
static int
breakers(fbx_client *c, uint32_t n, struct fbx_breaker_info *g_out)
{
	memset(g_out, 0, sizeof(*g_out));
	for (uint32_t i = 0; i < n; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int rc;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_BREAKER;
		req.u.breaker.op = FBX_BRK_STATUS;
		snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason),
		    "%s", REASON);
		rc = fbxb_call(c, orgs[i].name, &req, &rep);
		if (rc != FBX_OK) {
			fprintf(stderr, "breaker: status of %s: %s\n",
			    orgs[i].name, fbx_strerror(rc));
			fbx_console_rep_free(&rep);
			return rc;
		}
		for (size_t k = 0; k < rep.u.breaker.n; k++) {
			const struct fbx_breaker_info *b = &rep.u.breaker.b[k];
			if (strcmp(b->reason, REASON) != 0)
				continue;
			if (strcmp(b->org, "*") == 0) {
				*g_out = *b;
			} else if (strcmp(b->org, orgs[i].name) == 0) {
				orgs[i].allowance = b->allowance;
				orgs[i].brk_state = b->state;
				orgs[i].brk_trips = b->trips;
				orgs[i].brk_tripped_ms = b->tripped_ms;
				orgs[i].brk_onset_ms = b->onset_ms;
			}
		}
		fbx_console_rep_free(&rep);
	}
	return FBX_OK;
}

/* settle_delay_s - the reason's settle delay as the engine has it (the
 * global breaker's), the default 30 s before it exists. */
static uint32_t
settle_delay_s(fbx_client *c)
{
	struct fbx_breaker_info g;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint32_t s = 30;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_STATUS;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), "%s",
	    REASON);
	if (fbxb_call(c, "org-001", &req, &rep) == FBX_OK) {
		for (size_t k = 0; k < rep.u.breaker.n; k++) {
			g = rep.u.breaker.b[k];
			if (strcmp(g.org, "*") == 0 &&
			    strcmp(g.reason, REASON) == 0)
				s = g.cfg.settle_s;
		}
	}
	fbx_console_rep_free(&rep);
	return s;
}

static const char *
pf(int v)
{
	return v < 0 ? "n/a" : v ? "PASS" : "FAIL";
}

/* cap_of - the target's ceiling: max(1 device, 1% of the fleet) */
static uint64_t
cap_of(uint32_t fleet)
{
	uint64_t c = fleet / 100;
	return c < 1 ? 1 : c;
}

/* ---------------------------------------------------------- one run */

static int
one_run(const struct opts *o, uint32_t r, struct run *out)
{
	struct fbxb_env b;
	fbx_client *autoc = NULL;
	char report[320], storm_report[320], storm_log[320], nlocks[16];
	char ndev[16], norgs[16], secs[16], seed[16];
	char (*opdev)[FBX_ID_MAX + 1] = NULL;
	struct fbx_breaker_info gb;
	struct cmd_look op;
	uint32_t rounds, nop = 0, settle_s;
	uint64_t op_id = 0, v;
	int64_t t0, storm_ms, storm_mono, storm_end_mono, first_storm = 0;
	pid_t storm = -1;
	int rc = FBX_EIO, st, op_state = 0;

	memset(out, 0, sizeof(*out));
	memset(orgs, 0, sizeof(orgs));
	memset(&op, 0, sizeof(op));
	rounds = o->baseline_every_s > 0
	    ? (o->baseline_s + o->baseline_every_s - 1) / o->baseline_every_s
	    : 0;
	if (rounds > ROUNDS_MAX)
		rounds = ROUNDS_MAX;
	for (uint32_t i = 0; i < o->orgs; i++)
		org_name(i, orgs[i].name, sizeof(orgs[i].name));
	if (fbxb_setup(&b, "breaker") != FBX_OK)
		goto out;
	snprintf(report, sizeof(report), "%s/devsim.report", b.dir);
	snprintf(storm_report, sizeof(storm_report), "%s/storm.report",
	    b.dir);
	snprintf(storm_log, sizeof(storm_log), "%s/storm.log", b.dir);
	snprintf(nlocks, sizeof(nlocks), "%" PRIu32, o->locks);
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o->devices);
	snprintf(norgs, sizeof(norgs), "%" PRIu32, o->orgs);
	snprintf(secs, sizeof(secs), "%" PRIu32, o->seconds);
	/* each run its own storm order (the simulator's shuffle) */
	snprintf(seed, sizeof(seed), "%" PRIu32, r);
	if (fbxb_daemon_start(&b, NULL) != FBX_OK) {
		fprintf(stderr, "breaker: fuseboxd did not start\n");
		goto out;
	}
	{
		/* the gateway enrolls the fleet, then connects */
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--org-skew", (char *)o->skew, "--quiet",
			"--stats-interval-s", "0", "--report", report, NULL };
		if (fbxb_sim_start(&b, args, 1) != FBX_OK) {
			fprintf(stderr, "breaker: the simulator did not "
			                "connect\n");
			goto out;
		}
	}
	if (fbxb_client_as(&b, AUTO_PRINCIPAL, &autoc) != FBX_OK)
		goto out;
	if (fleets(b.cli, o->orgs) != FBX_OK)
		goto out;
	/* 1. the setting, before any command */
	if (!o->settle_on && configure_settle(b.cli, 0) != FBX_OK)
		goto out;
	/* the certificate the detector depends on expires as the storm
	 * starts; the engine trips 5 s ahead of it */
	if (o->cert &&
	    register_cert(b.cli, orgs[0].name,
	        fbxb_now_ms() / 1000 + o->baseline_s, 5) != FBX_OK)
		goto out;
	/* the baseline's devices (one per round) and the operator's */
	for (uint32_t i = 0; i < o->orgs; i++) {
		char (*ids)[FBX_ID_MAX + 1];
		uint32_t want = rounds + (i == 0 ? o->operator_n : 0), got;
		ids = calloc(want > 0 ? want : 1, sizeof(*ids));
		if (ids == NULL)
			goto out;
		if (pick_devices(b.cli, orgs[i].name, want, ids, &got) !=
		        FBX_OK ||
		    got < want) {
			fprintf(stderr, "breaker: %s: %u of %u devices\n",
			    orgs[i].name, got, want);
			free(ids);
			goto out;
		}
		for (uint32_t k = 0; k < rounds; k++)
			memcpy(orgs[i].base_dev[k], ids[k], sizeof(ids[k]));
		if (i == 0 && o->operator_n > 0) {
			opdev = calloc(o->operator_n, sizeof(*opdev));
			if (opdev == NULL) {
				free(ids);
				goto out;
			}
			memcpy(opdev, ids + rounds,
			    o->operator_n * sizeof(*opdev));
			nop = o->operator_n;
		}
		free(ids);
	}
	/* 2. the baseline: legitimate automatic locks */
	t0 = fbxb_mono_us();
	for (uint32_t k = 0; k < rounds && !fbxb_stop; k++) {
		sleep_until(t0 + (int64_t)k * o->baseline_every_s * 1000000);
		for (uint32_t i = 0; i < o->orgs; i++) {
			char idem[FBX_ID_MAX + 1];
			int state = 0;
			snprintf(idem, sizeof(idem), "baseline-%.32s-%u",
			    orgs[i].name, k);
			if (submit_lock(autoc, orgs[i].name,
			        FBX_ORIGIN_AUTOMATIC, idem,
			        &orgs[i].base_dev[k], 1,
			        &orgs[i].base_id[k], &state) != FBX_OK)
				goto out;
			orgs[i].nbase = k + 1;
			if (o->verbose)
				fprintf(stderr, "baseline %s #%u: command "
				                "%" PRIu64 " %s\n",
				    orgs[i].name, k, orgs[i].base_id[k],
				    fbx_cstate_name(state));
		}
	}
	settle_s = settle_delay_s(b.cli);
	out->settle_s = settle_s;
	/* 3. the storm, and 1 s into it the operator lock */
	sleep_until(t0 + (int64_t)o->baseline_s * 1000000);
	if (fbxb_stop)
		goto out;
	{
		char *args[] = { "--gateway-endpoint", b.gateway,
			"--console-endpoint", b.console, "--storm", nlocks,
			"--storm-seconds", secs, "--storm-only", "--no-enroll",
			"--devices", ndev, "--orgs", norgs, "--org-skew",
			(char *)o->skew, "--seed", seed, "--quiet", "--report",
			storm_report, NULL };
		storm_ms = fbxb_now_ms();
		storm_mono = fbxb_mono_us();
		storm = fbxb_spawn("fusebox-devsim", storm_log, args);
		if (storm < 0) {
			fprintf(stderr, "breaker: cannot start the storm\n");
			goto out;
		}
	}
	if (nop > 0) {
		sleep_until(storm_mono + 1000000);
		if (submit_lock(b.cli, orgs[0].name, FBX_ORIGIN_OPERATOR,
		        "operator-lock", opdev, nop, &op_id, &op_state) !=
		    FBX_OK)
			op_id = 0; /* reported as not delivered */
	}
	st = fbxb_wait_exit(storm, INT_MAX);
	if (st < 0) {
		(void)fbxb_reap(storm, SIGTERM, 5000);
		goto out;
	}
	storm = -1;
	storm_end_mono = fbxb_mono_us();
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "breaker: the storm failed (status %d)\n", st);
		fbxb_log_tail(storm_log, 10);
		goto out;
	}
	/* 4. idle, past the settle delay, idle again */
	if (fbxb_wait_idle(b.cli, 120000) != FBX_OK)
		fprintf(stderr, "breaker: deliveries still in flight\n");
	sleep_until(storm_end_mono +
	    ((int64_t)settle_s + o->margin_s) * 1000000);
	if (fbxb_wait_idle(b.cli, 120000) != FBX_OK)
		fprintf(stderr, "breaker: deliveries still in flight\n");
	if (fbxb_stop)
		goto out;
	/* 5. the engine's accounting */
	for (uint32_t i = 0; i < o->orgs; i++) {
		if (account_org(b.cli, &orgs[i], storm_ms,
		        i == 0 ? op_id : 0, &op) != FBX_OK)
			goto out;
	}
	if (breakers(b.cli, o->orgs, &gb) != FBX_OK)
		goto out;
	(void)fbxb_sim_stop(&b); /* writes the final report */
	for (uint32_t i = 0; i < o->orgs; i++) {
		char prefix[FBX_ID_MAX + 16];
		struct org *g = &orgs[i];
		snprintf(prefix, sizeof(prefix), "org=%.64s ", g->name);
		if (fbxb_report_get(report, prefix, "locked", &v) != FBX_OK) {
			fprintf(stderr, "breaker: no %s in %s\n", prefix,
			    report);
			goto out;
		}
		g->sim_locked = v;
		g->sim_storm_locked = (int64_t)v - (int64_t)g->others_delivered;
		snprintf(prefix, sizeof(prefix), "storm_org=%.64s ", g->name);
		if (fbxb_report_get(storm_report, prefix, "admitted", &v) ==
		    FBX_OK)
			g->sim_admitted = v;
		if (fbxb_report_get(storm_report, prefix, "held", &v) ==
		    FBX_OK)
			g->sim_held = v;
	}
	if (fbxb_report_get(storm_report, "storm_total ", "refused", &v) ==
	    FBX_OK)
		out->sim_refused = (double)v;
	if (fbxb_report_get(storm_report, "storm_total ", "elapsed_ms", &v) ==
	    FBX_OK)
		out->storm_elapsed_ms = (double)v;

	/* totals */
	{
		double worst_pct = -1;
		int64_t gtrip = gb.trips > 0 ? gb.tripped_ms : 0;
		uint32_t bases = 0, base_sent = 0, base_held = 0,
			 base_settling = 0;
		int64_t base_delay = -1, first_sent = 0;
		out->pass_cap = 1;
		for (uint32_t i = 0; i < o->orgs; i++) {
			struct org *g = &orgs[i];
			double pct = 100.0 * (double)g->storm_locked /
			    (double)g->fleet;
			out->storm_cmds += (double)g->storm_cmds;
			out->storm_locked_total += (double)g->storm_locked;
			out->storm_locked_sim += (double)g->sim_storm_locked;
			out->storm_admitted += (double)g->storm_admitted;
			out->storm_settling += (double)g->storm_settling;
			out->storm_held += (double)g->storm_held;
			out->storm_held_settling +=
			    (double)g->storm_held_settling;
			out->sim_admitted += (double)g->sim_admitted;
			out->sim_held += (double)g->sim_held;
			if (i == 0)
				out->storm_locked_org001 =
				    (double)g->storm_locked;
			else if ((double)g->storm_locked >
			    out->storm_locked_other_max)
				out->storm_locked_other_max =
				    (double)g->storm_locked;
			if (g->storm_locked > 0)
				out->orgs_locked++;
			if (g->storm_locked > cap_of(g->fleet)) {
				out->orgs_over_cap++;
				out->pass_cap = 0;
			}
			if (pct > worst_pct ||
			    (pct == worst_pct &&
			        (double)g->storm_locked >
			            out->worst_org_locked)) {
				worst_pct = pct;
				out->worst_org_pct = pct;
				out->worst_org_locked =
				    (double)g->storm_locked;
				out->worst_org_fleet = (double)g->fleet;
				snprintf(out->worst_org,
				    sizeof(out->worst_org), "%.64s", g->name);
			}
			if (g->brk_trips > 0) {
				out->org_trips++;
				if (gtrip > 0 && g->brk_tripped_ms <= gtrip)
					out->org_trips_before_global++;
			}
			if (g->storm_first_sent_ms > 0 &&
			    (first_sent == 0 ||
			        g->storm_first_sent_ms < first_sent))
				first_sent = g->storm_first_sent_ms;
			if (g->storm_first_ms > 0 &&
			    (first_storm == 0 ||
			        g->storm_first_ms < first_storm))
				first_storm = g->storm_first_ms;
			bases += g->nbase;
			base_sent += g->base_sent;
			base_held += g->base_held;
			base_settling += g->base_settling;
			if (g->base_max_delay_ms > base_delay)
				base_delay = g->base_max_delay_ms;
		}
		out->baseline_cmds = bases;
		out->baseline_sent = base_sent;
		out->baseline_held = base_held;
		out->baseline_settling = base_settling;
		out->baseline_max_delay_ms = (double)base_delay;
		out->operator_devices = nop;
		out->operator_delivered = op.sent;
		out->operator_held = op_id != 0 &&
		    (op.info.state == FBX_C_HELD ||
		        op.info.state == FBX_C_DISCARDED);
		out->operator_delay_ms = (double)op.max_delay_ms;
		out->global_tripped = gtrip > 0;
		out->has_storm_delivery = first_sent > 0;
		out->global_trip_to_first_storm_delivery_ms =
		    first_sent > 0 && gtrip > 0 ? (double)(first_sent - gtrip)
		                                : 0;
		out->first_storm_lock_to_global_trip_ms =
		    gtrip > 0 && first_storm > 0 ? (double)(gtrip - first_storm)
		                                 : -1;
		out->storm_start_to_global_trip_ms =
		    gtrip > 0 ? (double)(gtrip - storm_ms) : -1;
		out->global_onset_from_storm_start_ms = gtrip > 0
		    ? (double)(gb.onset_ms - storm_ms)
		    : 0;
		if (out->storm_locked_total == 0) {
			snprintf(out->worst_org, sizeof(out->worst_org),
			    "none");
			out->worst_org_pct = 0;
			out->worst_org_locked = 0;
			out->worst_org_fleet = 0;
		}
		out->pass_zero = o->settle_on ? out->storm_locked_total == 0
		                              : -1;
		out->pass_held = base_held == 0 && !out->operator_held &&
		    op_id != 0;
		out->pass_delay = base_sent == bases &&
		    base_delay <= (int64_t)settle_s * 1000 + 1000;
	}

	/* the table */
	printf("\nbreaker run %" PRIu32 ": %" PRIu32 " automatic locks in %"
	       PRIu32 " s (submitted in %.0f ms), settle %s (%u s), %" PRIu32
	       " devices in %" PRIu32 " organisations\n",
	    r, o->locks, o->seconds, out->storm_elapsed_ms,
	    o->settle_on ? "on" : "off", settle_s, o->devices, o->orgs);
	if (out->has_storm_delivery)
		printf("  first storm delivery handed to a gateway %+.0f ms "
		       "from the global trip\n",
		    out->global_trip_to_first_storm_delivery_ms);
	printf("  global breaker: %s; first storm lock -> global trip %.0f "
	       "ms (storm start -> trip %.0f ms, onset %+.0f ms from the "
	       "storm start); %.0f organisation breakers tripped, %.0f of "
	       "them before the global one\n",
	    out->global_tripped ? "tripped" : "not tripped",
	    out->first_storm_lock_to_global_trip_ms,
	    out->storm_start_to_global_trip_ms,
	    out->global_onset_from_storm_start_ms, out->org_trips,
	    out->org_trips_before_global);
	printf("  %-8s %6s %5s %6s %8s %8s %6s %8s %6s %7s %6s %6s %6s "
	       "%9s %9s\n",
	    "org", "fleet", "allow", "storm", "admitted", "settling", "held",
	    "(settl.)", "locked", "%fleet", "sim", "base", "b.held",
	    "b.delay", "trip");
	for (uint32_t i = 0; i < o->orgs; i++) {
		struct org *g = &orgs[i];
		char trip[32], delay[32];
		if (g->brk_trips > 0)
			snprintf(trip, sizeof(trip), "%+" PRId64,
			    g->brk_tripped_ms - storm_ms);
		else
			snprintf(trip, sizeof(trip), "-");
		if (g->base_max_delay_ms >= 0)
			snprintf(delay, sizeof(delay), "%" PRId64,
			    g->base_max_delay_ms);
		else
			snprintf(delay, sizeof(delay), "-");
		printf("  %-8s %6" PRIu32 " %5" PRIu32 " %6" PRIu64
		       " %8" PRIu64 " %8" PRIu64 " %6" PRIu64 " %8" PRIu64
		       " %6" PRIu64 " %6.2f%% %6" PRId64 " %3u/%-2u %6u "
		       "%9s %9s\n",
		    g->name, g->fleet, g->allowance, g->storm_cmds,
		    g->storm_admitted, g->storm_settling, g->storm_held,
		    g->storm_held_settling, g->storm_locked,
		    100.0 * (double)g->storm_locked / (double)g->fleet,
		    g->sim_storm_locked, g->base_sent, g->nbase, g->base_held,
		    delay, trip);
	}
	printf("  %-8s %6" PRIu32 " %5s %6.0f %8.0f %8.0f %6.0f %8.0f %6.0f "
	       "%6.2f%% %6.0f %3.0f/%-2.0f %6.0f %9.0f\n",
	    "total", o->devices, "", out->storm_cmds, out->storm_admitted,
	    out->storm_settling, out->storm_held, out->storm_held_settling,
	    out->storm_locked_total,
	    100.0 * out->storm_locked_total / (double)o->devices,
	    out->storm_locked_sim, out->baseline_sent, out->baseline_cmds,
	    out->baseline_held, out->baseline_max_delay_ms);
	printf("  (storm: automatic commands created from the storm's start; "
	       "admitted = released for dispatch, (settl.) = held after "
	       "being admitted to settle; locked = devices a storm delivery "
	       "was handed to, from the journal; sim = the gateway "
	       "simulator's locked= minus the baseline and operator devices "
	       "it locked; base = baseline locks sent/submitted, b.delay = "
	       "their worst created -> first SENT in ms; trip = org breaker "
	       "trip in ms from the storm's start)\n");
	printf("  engine replies to the storm (simulator): admitted %.0f, "
	       "held %.0f, refused %.0f\n",
	    out->sim_admitted, out->sim_held, out->sim_refused);
	printf("  operator lock of %u devices of org-001 (1 s into the "
	       "storm): command %" PRIu64 ", %s, %s, delivered %u/%u, "
	       "worst created -> SENT %" PRId64 " ms\n",
	    nop, op_id, op_id ? fbx_cstate_name(op.info.state) : "refused",
	    out->operator_held ? "HELD" : "not held", op.sent, nop,
	    op.max_delay_ms);
	printf("  target: 0 devices locked by the storm (settle on): %s "
	       "(%.0f; simulator %.0f)\n",
	    pf(out->pass_zero), out->storm_locked_total,
	    out->storm_locked_sim);
	if (out->storm_locked_total == 0)
		printf("  target: no organisation above max(1, 1%% of its "
		       "fleet): %s (no device locked by the storm)\n",
		    pf(out->pass_cap));
	else
		printf("  target: no organisation above max(1, 1%% of its "
		       "fleet): %s (worst %s: %.0f of %.0f = %.2f%%; %.0f "
		       "organisations above)\n",
		    pf(out->pass_cap), out->worst_org, out->worst_org_locked,
		    out->worst_org_fleet, out->worst_org_pct,
		    out->orgs_over_cap);
	printf("  target: 0 baseline or operator locks held: %s (baseline "
	       "%.0f of %.0f held, %.0f still settling; operator %s)\n",
	    pf(out->pass_held), out->baseline_held, out->baseline_cmds,
	    out->baseline_settling,
	    op_id == 0 ? "refused" : out->operator_held ? "held" : "not held");
	printf("  target: baseline locks reach devices within settle + 1 s "
	       "(%u ms): %s (%.0f of %.0f sent, worst %.0f ms)\n",
	    settle_s * 1000 + 1000, pf(out->pass_delay), out->baseline_sent,
	    out->baseline_cmds, out->baseline_max_delay_ms);
	fflush(stdout);
	rc = FBX_OK;
out:
	if (storm > 0)
		(void)fbxb_reap(storm, SIGTERM, 5000);
	free(opdev);
	fbx_client_close(autoc);
	if (rc != FBX_OK && b.dir[0] != '\0') {
		char log[400];
		snprintf(log, sizeof(log), "%s/fuseboxd.log", b.dir);
		fbxb_log_tail(log, 8);
	}
	fbxb_teardown(&b);
	return rc;
}

/* ---------------------------------------------------------- JSON */

static void
json(const struct opts *o, const char *bench, uint32_t run_no,
    const struct run *x)
{
	printf("{\"bench\":\"%s\",", bench);
	if (run_no > 0)
		printf("\"run\":%" PRIu32 ",", run_no);
	printf("\"locks\":%" PRIu32 ",\"devices\":%" PRIu32 ",\"orgs\":%" PRIu32
	       ",\"storm_s\":%" PRIu32 ",\"settle\":\"%s\",\"settle_s\":%.0f,"
	       "\"cert\":%s,\"runs\":%" PRIu32 ",",
	    o->locks, o->devices, o->orgs, o->seconds,
	    o->settle_on ? "on" : "off", x->settle_s,
	    o->cert ? "true" : "false",
	    run_no > 0 ? 1 : o->runs);
	printf("\"storm_commands\":%.0f,\"storm_locked_total\":%.0f,"
	       "\"storm_locked_sim\":%.0f,\"storm_locked_org001\":%.0f,"
	       "\"storm_locked_other_max\":%.0f,\"worst_org\":\"%s\","
	       "\"worst_org_locked\":%.0f,\"worst_org_fleet\":%.0f,"
	       "\"worst_org_pct\":%.2f,\"orgs_over_cap\":%.0f,"
	       "\"orgs_locked\":%.0f,",
	    x->storm_cmds, x->storm_locked_total, x->storm_locked_sim,
	    x->storm_locked_org001, x->storm_locked_other_max, x->worst_org,
	    x->worst_org_locked, x->worst_org_fleet, x->worst_org_pct,
	    x->orgs_over_cap, x->orgs_locked);
	printf("\"storm_admitted\":%.0f,\"storm_settling\":%.0f,"
	       "\"storm_held\":%.0f,\"storm_held_while_settling\":%.0f,"
	       "\"sim_admitted\":%.0f,\"sim_held\":%.0f,\"sim_refused\":%.0f,",
	    x->storm_admitted, x->storm_settling, x->storm_held,
	    x->storm_held_settling, x->sim_admitted, x->sim_held,
	    x->sim_refused);
	printf("\"baseline_cmds\":%.0f,\"baseline_sent\":%.0f,"
	       "\"baseline_held\":%.0f,\"baseline_settling\":%.0f,"
	       "\"baseline_max_delay_ms\":%.0f,\"operator_devices\":%.0f,"
	       "\"operator_delivered\":%.0f,\"operator_held\":%.0f,"
	       "\"operator_delay_ms\":%.0f,",
	    x->baseline_cmds, x->baseline_sent, x->baseline_held,
	    x->baseline_settling, x->baseline_max_delay_ms,
	    x->operator_devices, x->operator_delivered, x->operator_held,
	    x->operator_delay_ms);
	printf("\"org_trips\":%.0f,\"org_trips_before_global\":%.0f,"
	       "\"global_tripped\":%.0f,"
	       "\"first_storm_lock_to_global_trip_ms\":%.0f,"
	       "\"storm_start_to_global_trip_ms\":%.0f,"
	       "\"global_onset_from_storm_start_ms\":%.0f,"
	       "\"storm_elapsed_ms\":%.0f,",
	    x->org_trips, x->org_trips_before_global, x->global_tripped,
	    x->first_storm_lock_to_global_trip_ms,
	    x->storm_start_to_global_trip_ms,
	    x->global_onset_from_storm_start_ms, x->storm_elapsed_ms);
	if (x->has_storm_delivery)
		printf("\"global_trip_to_first_storm_delivery_ms\":%.0f,",
		    x->global_trip_to_first_storm_delivery_ms);
	else
		printf("\"global_trip_to_first_storm_delivery_ms\":null,");
	printf("\"target_zero_storm_locks\":\"%s\",\"target_org_cap\":\"%s\","
	       "\"target_none_held\":\"%s\",\"target_baseline_delay\":\"%s\"}"
	       "\n",
	    pf(x->pass_zero), pf(x->pass_cap), pf(x->pass_held),
	    pf(x->pass_delay));
}

/* all_pass - a target passes over several runs only if each run passed
 * it (n/a stays n/a). */
static int
all_pass(const struct run *runs, uint32_t n, size_t off)
{
	int v = 1;

	for (uint32_t i = 0; i < n; i++) {
		int x;
		memcpy(&x, (const char *)&runs[i] + off, sizeof(x));
		if (x < 0)
			return -1;
		if (x == 0)
			v = 0;
	}
	return v;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_breaker [--storm-seconds S] [--settle on|off]\n"
	    "                     [--runs R] [--locks N] [--devices D]\n"
	    "                     [--orgs M] [--org-skew F]\n"
	    "                     [--baseline-seconds B] [--baseline-every E]\n"
	    "                     [--operator-devices K] [--margin-s X]\n"
	    "                     [--cert] [--verbose]\n"
	    "  Incident 1 (issue 9): a fleet of D devices (32000) in M\n"
	    "  organisations (40), a share F (0.625) in org-001; a baseline of\n"
	    "  one legitimate automatic lock per organisation every E s (15)\n"
	    "  for B s (30); then N automatic locks (32000) over S s (1) and,\n"
	    "  1 s in, an operator lock of K devices of org-001 (50); then the\n"
	    "  settle delay + X s (5). --settle off sets the reason's settle\n"
	    "  delay to 0 first (default on: the engine's default). R runs\n"
	    "  (1), each on a fresh store. Prints a table per organisation,\n"
	    "  the targets (PASS/FAIL; the exit status ignores them) and a\n"
	    "  JSON line. --cert: before the baseline, register the\n"
	    "  attestation provider's certificate (bound to the reason, trip\n"
	    "  5 s before notAfter) expiring as the storm starts.\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "storm-seconds", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "locks", required_argument, NULL, 'n' },
		{ "devices", required_argument, NULL, 'd' },
		{ "orgs", required_argument, NULL, 'o' },
		{ "org-skew", required_argument, NULL, 'k' },
		{ "settle", required_argument, NULL, 'S' },
		{ "baseline-seconds", required_argument, NULL, 'b' },
		{ "baseline-every", required_argument, NULL, 'e' },
		{ "operator-devices", required_argument, NULL, 'p' },
		{ "margin-s", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "cert", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 32000, 32000, 40, 1, 1, 30, 15, 50, 5, 1, "0.625",
		0 };
	static struct run runs[RUNS_MAX];
	struct run m;
	double col[RUNS_MAX];
	int c, st = 1;

	fbxb_init();
	while ((c = getopt_long(argc, argv, "hv", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o.seconds = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.locks = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			o.devices = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			o.orgs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			o.skew = optarg;
			break;
		case 'S':
			if (strcmp(optarg, "on") == 0) {
				o.settle_on = 1;
			} else if (strcmp(optarg, "off") == 0) {
				o.settle_on = 0;
			} else {
				usage(stderr);
				return 64;
			}
			break;
		case 'b':
			o.baseline_s = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'e':
			o.baseline_every_s = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o.operator_n = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			o.margin_s = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'C':
			o.cert = 1;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (o.locks == 0 || o.devices == 0 || o.orgs < 2 ||
	    o.orgs > ORGS_MAX || o.runs == 0 || o.runs > RUNS_MAX ||
	    o.operator_n > OPERATOR_MAX ||
	    (o.baseline_every_s > 0 &&
	        o.baseline_s / o.baseline_every_s > ROUNDS_MAX)) {
		usage(stderr);
		return 64;
	}
	for (uint32_t r = 0; r < o.runs; r++) {
		if (fbxb_stop || one_run(&o, r + 1, &runs[r]) != FBX_OK)
			goto out;
		if (o.runs > 1)
			json(&o, "breaker_run", r + 1, &runs[r]);
	}
	if (o.runs == 1) {
		m = runs[0];
	} else {
		uint32_t worst = 0;
		memset(&m, 0, sizeof(m));
#define MED(f)                                                              \
	m.f = fbxb_median_field(runs, sizeof(runs[0]), o.runs,              \
	    offsetof(struct run, f), col)
		MED(storm_cmds);
		MED(storm_locked_total);
		MED(storm_locked_sim);
		MED(storm_locked_org001);
		MED(storm_locked_other_max);
		MED(orgs_over_cap);
		MED(orgs_locked);
		MED(storm_admitted);
		MED(storm_settling);
		MED(storm_held);
		MED(storm_held_settling);
		MED(sim_admitted);
		MED(sim_held);
		MED(sim_refused);
		MED(baseline_cmds);
		MED(baseline_sent);
		MED(baseline_held);
		MED(baseline_settling);
		MED(baseline_max_delay_ms);
		MED(operator_devices);
		MED(operator_delivered);
		MED(operator_held);
		MED(operator_delay_ms);
		MED(org_trips);
		MED(org_trips_before_global);
		MED(global_tripped);
		MED(first_storm_lock_to_global_trip_ms);
		MED(storm_start_to_global_trip_ms);
		MED(global_onset_from_storm_start_ms);
		MED(storm_elapsed_ms);
		MED(settle_s);
		MED(global_trip_to_first_storm_delivery_ms);
#undef MED
		for (uint32_t r = 0; r < o.runs; r++)
			if (runs[r].has_storm_delivery)
				m.has_storm_delivery = 1;
		/* the worst organisation: of the worst run */
		for (uint32_t r = 1; r < o.runs; r++)
			if (runs[r].worst_org_pct > runs[worst].worst_org_pct)
				worst = r;
		m.worst_org_pct = runs[worst].worst_org_pct;
		m.worst_org_locked = runs[worst].worst_org_locked;
		m.worst_org_fleet = runs[worst].worst_org_fleet;
		snprintf(m.worst_org, sizeof(m.worst_org), "%s",
		    runs[worst].worst_org);
		m.pass_zero = all_pass(runs, o.runs,
		    offsetof(struct run, pass_zero));
		m.pass_cap = all_pass(runs, o.runs,
		    offsetof(struct run, pass_cap));
		m.pass_held = all_pass(runs, o.runs,
		    offsetof(struct run, pass_held));
		m.pass_delay = all_pass(runs, o.runs,
		    offsetof(struct run, pass_delay));
		printf("\nbreaker, %" PRIu32 " runs (medians; the worst "
		       "organisation of the worst run; a target passes if "
		       "every run passed it):\n",
		    o.runs);
		printf("  storm locks on devices %.0f (org-001 %.0f, worst "
		       "%s %.2f%%); targets: zero %s, cap %s, none held %s, "
		       "baseline delay %s\n",
		    m.storm_locked_total, m.storm_locked_org001, m.worst_org,
		    m.worst_org_pct, pf(m.pass_zero), pf(m.pass_cap),
		    pf(m.pass_held), pf(m.pass_delay));
	}
	json(&o, "breaker", 0, &m);
	st = 0;
out:
	if (fbxb_stop)
		fprintf(stderr, "breaker: interrupted\n");
	return st;
}
