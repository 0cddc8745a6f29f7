/*
 * controls.c: the safety controls as the engine applies them: alerts,
 * the breaker and blast-radius gates a submit passes inside the turn's
 * transaction, dry runs, the breaker/limit/rate/approval requests and the
 * staged-rollout state machine. The decisions themselves are in safety.c.
 */
#include <errno.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/evp.h>

#include "engine_int.h"

/* ------------------------------------------------------------- alerts */

/* emit_event - see fbxi_event (core.c) */
#define emit_event fbxi_event

/* Alert commands run beside the loop, never in it: posix_spawn starts
 * one and returns; the children are reaped with waitpid(WNOHANG) before
 * the next start. At most ALERT_RUNNING_MAX run at once and each (event
 * kind, organisation, reason) starts at most one per ALERT_INTERVAL_MS;
 * the rest are dropped, counted, logged, and reported to the next alert
 * of that key in
 * FUSEBOX_DROPPED. One daemon runs one engine, so this state is the
 * process's. */
#define ALERT_RUNNING_MAX 4
#define ALERT_INTERVAL_MS 1000

static struct {
	int init;
	struct fbxi_alert_gate gate;
	pid_t pid[ALERT_RUNNING_MAX];
	unsigned running;
} alerts;

/* alert_reap - forget the alert commands that have exited. With SIGCHLD
 * ignored (SA_NOCLDWAIT) the kernel reaps them and waitpid says ECHILD:
 * gone either way. */
static void
alert_reap(void)
{
	for (unsigned i = 0; i < alerts.running;) {
		int st;
		pid_t r = waitpid(alerts.pid[i], &st, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			i++;
			continue;
		}
		alerts.pid[i] = alerts.pid[--alerts.running];
	}
}

/* run_alert - start the operator's alert command for one event, with the
 * event in its environment; never waits for it. */
void
fbxi_run_alert(struct fbx_engine *e, const struct fbx_event *ev)
{
	char v_kind[96], v_org[96], v_reason[96], v_count[64], v_limit[64],
	    v_detail[300], v_cmd[64], v_dropped[64];
	char *argv[] = { "/bin/sh", "-c", (char *)e->o.alert_cmd, NULL };
	char *envp[] = { v_kind, v_org, v_reason, v_count, v_limit, v_detail,
		v_cmd, v_dropped, "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	uint64_t dropped = 0;
	pid_t pid;
	int rc;

	if (e->o.alert_cmd == NULL || e->o.alert_cmd[0] == '\0')
		return;
	if (!alerts.init) {
		fbxi_alert_gate_init(
		    &alerts.gate, ALERT_RUNNING_MAX, ALERT_INTERVAL_MS);
		alerts.init = 1;
	}
	alert_reap();
	if (!fbxi_alert_admit(&alerts.gate, ev->kind, ev->org, ev->reason,
	        fbxi_mono_ms(), alerts.running, &dropped)) {
		FBX_LOGW("alert %s (%s/%s) dropped: %u alert commands running "
		         "or one ran less than %d ms ago (%llu dropped in all)",
		    fbx_event_kind_name(ev->kind), ev->org, ev->reason,
		    alerts.running, ALERT_INTERVAL_MS,
		    (unsigned long long)alerts.gate.dropped_total);
		return;
	}
	if (dropped > 0)
		FBX_LOGW("alert %s: %llu earlier alerts of this kind were "
		         "dropped by the rate limit",
		    fbx_event_kind_name(ev->kind), (unsigned long long)dropped);
	snprintf(v_kind, sizeof(v_kind), "FUSEBOX_EVENT=%s",
	    fbx_event_kind_name(ev->kind));
	snprintf(v_org, sizeof(v_org), "FUSEBOX_ORG=%s", ev->org);
	snprintf(v_reason, sizeof(v_reason), "FUSEBOX_REASON=%s", ev->reason);
	snprintf(v_count, sizeof(v_count), "FUSEBOX_COUNT=%llu",
	    (unsigned long long)ev->count);
	snprintf(v_limit, sizeof(v_limit), "FUSEBOX_LIMIT=%llu",
	    (unsigned long long)ev->limit);
	snprintf(v_detail, sizeof(v_detail), "FUSEBOX_DETAIL=%s", ev->detail);
	snprintf(v_cmd, sizeof(v_cmd), "FUSEBOX_COMMAND=%llu",
	    (unsigned long long)ev->command_id);
	snprintf(v_dropped, sizeof(v_dropped), "FUSEBOX_DROPPED=%llu",
	    (unsigned long long)dropped);
	rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp);
	if (rc != 0) {
		FBX_LOGE("alert command could not start: %s", strerror(rc));
		return;
	}
	alerts.pid[alerts.running++] = pid;
}

/* ------------------------------------------------------- safety gates */

/* The breaker record as versions 1 and 2 wrote it (frozen: never edit).
 * Version 1 is version 2 without reset_ms. */
struct brk_cfg_v2 {
	uint32_t window_s, min_count, share_ppm, baseline_mult, global_orgs;
	uint8_t shadow;
};
struct brk_v2 {
	uint32_t version;
	uint8_t state, manual, pad_[2];
	struct brk_cfg_v2 cfg;
	struct fbxi_window win;
	uint64_t baseline_x1000;
	int64_t baseline_at;
	uint64_t period_count;
	uint32_t period_spiked, pad2_;
	uint64_t held, would_hold, trips;
	int64_t tripped_ms, shadow_alerted_ms;
	char tripped_by[FBX_ID_MAX + 1];
	char note[FBX_NOTE_MAX];
	int64_t reset_ms;
};

/* brk_decode - a stored breaker record of any version into the current
 * layout. Settings equal to the built-in defaults of version 2 (20
 * devices, 2% of the fleet) were never chosen by an operator: they move
 * to the current defaults. The onset of an old incident is unknown: its
 * trip time stands in. */
static int
brk_decode(const void *val, size_t len, struct fbxi_breaker *b)
{
	struct fbx_breaker_cfg def;
	struct brk_v2 o;

	if (len == sizeof(*b)) {
		memcpy(b, val, sizeof(*b));
		return b->version == FBXI_BRK_VERSION ? FBX_OK : FBX_ECORRUPT;
	}
	memset(&o, 0, sizeof(o));
	if (len == sizeof(o) || len == offsetof(struct brk_v2, reset_ms))
		memcpy(&o, val, len);
	else
		return FBX_ECORRUPT;
	if (!((len == sizeof(o) && o.version == 2) ||
	        (len < sizeof(o) && o.version == 1)))
		return FBX_ECORRUPT;
	fbxi_breaker_defaults(&def);
	memset(b, 0, sizeof(*b));
	b->version = FBXI_BRK_VERSION;
	b->state = o.state;
	b->manual = o.manual;
	b->cfg = def;
	b->cfg.window_s = o.cfg.window_s;
	b->cfg.min_count = o.cfg.min_count == 20 ? def.min_count
	                                         : o.cfg.min_count;
	b->cfg.share_ppm = o.cfg.share_ppm == 20000 ? def.share_ppm
	                                            : o.cfg.share_ppm;
	b->cfg.baseline_mult = o.cfg.baseline_mult;
	b->cfg.global_orgs = o.cfg.global_orgs;
	b->cfg.shadow = o.cfg.shadow;
	b->win = o.win;
	b->baseline_x1000 = o.baseline_x1000;
	b->baseline_at = o.baseline_at;
	b->period_count = o.period_count;
	b->period_spiked = o.period_spiked;
	b->held = o.held;
	b->would_hold = o.would_hold;
	b->trips = o.trips;
	b->tripped_ms = o.tripped_ms;
	b->shadow_alerted_ms = o.shadow_alerted_ms;
	memcpy(b->tripped_by, o.tripped_by, sizeof(b->tripped_by));
	memcpy(b->note, o.note, sizeof(b->note));
	b->tripped_by[sizeof(b->tripped_by) - 1] = '\0';
	b->note[sizeof(b->note) - 1] = '\0';
	b->reset_ms = o.version == 2 ? o.reset_ms : 0;
	b->onset_ms = 0; /* unknown: rollback falls back to the window */
	/* a baseline learnt before keeps raising the allowance as it did */
	b->baseline_samples = b->baseline_x1000 > 0 ? b->cfg.min_samples : 0;
	fbxi_window_init(&b->dwin, b->cfg.window_s);
	return FBX_OK;
}

int
fbxi_brk_decode(const void *val, size_t len, struct fbxi_breaker *b)
{
	if (val == NULL || b == NULL || len > sizeof(*b))
		return FBX_ECORRUPT;
	return brk_decode(val, len, b);
}

int
fbxi_brk_load(fbx_txn *txn, const char *org, const char *reason,
    struct fbxi_breaker *b, int *exists)
{
	char key[FBX_KV_KEY_MAX];
	struct fbx_breaker_cfg cfg;
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "brk/%s/%s", org, reason);
	rc = fbx_store_kv_get(txn, key, b, sizeof(*b), &len);
	if (rc == FBX_OK) {
		struct fbxi_breaker raw = *b;
		if (len > sizeof(raw))
			return FBX_ECORRUPT;
		rc = brk_decode(&raw, len, b);
		if (rc != FBX_OK)
			return rc;
		if (exists)
			*exists = 1;
		return FBX_OK;
	}
	if (rc != FBX_ENOT_FOUND)
		return rc;
	if (exists)
		*exists = 0;
	fbxi_breaker_defaults(&cfg);
	if (strcmp(org, "*") != 0) {
		/* a configured global breaker is the template for its
		 * organisations */
		struct fbxi_breaker g;
		snprintf(key, sizeof(key), "brk/*/%s", reason);
		if (fbx_store_kv_get(txn, key, &g, sizeof(g), &len) == FBX_OK &&
		    len <= sizeof(g)) {
			struct fbxi_breaker raw = g;
			if (brk_decode(&raw, len, &g) == FBX_OK)
				cfg = g.cfg;
		}
	}
	fbxi_breaker_init(b, &cfg);
	return FBX_OK;
}

int
fbxi_brk_save(fbx_txn *txn, const char *org, const char *reason,
    const struct fbxi_breaker *b)
{
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), "brk/%s/%s", org, reason);
	return fbx_store_kv_put(txn, key, b, sizeof(*b));
}

/* trip_hold - a breaker just tripped: hold what of its incident is still
 * settling (submitted at or after the onset), and say so. org NULL = the
 * global breaker: every organisation. */
static uint32_t
trip_hold(struct fbx_engine *e, const char *org, const char *reason,
    struct fbxi_breaker *b)
{
	char hk[2 * FBX_ID_MAX + 2], note[FBX_NOTE_MAX];
	int64_t since = b->onset_ms;
	uint32_t n;

	/* a shadow breaker holds nothing */
	if (b->cfg.shadow)
		return 0;
	snprintf(hk, sizeof(hk), "%s/%s", org ? org : "*", reason);
	if (b->manual) {
		/* opened by a person: stop what settles, whenever it was
		 * submitted (a certificate's trip, made before its expiry,
		 * holds from the trip on: what settles was decided while
		 * the certificate was good) */
		since = INT64_MIN;
		snprintf(note, sizeof(note), "breaker %.100s opened: %.40s", hk,
		    b->tripped_by);
	} else {
		snprintf(note, sizeof(note), "breaker %.100s tripped; onset "
		    "%lld ms before the trip", hk,
		    (long long)(b->tripped_ms - b->onset_ms));
	}
	n = fbxi_settle_hold(e, org, reason, since, hk, note);
	b->held += n;
	if (n > 0)
		emit_event(e, FBX_EV_COMMAND_SETTLED, org ? org : "*", reason,
		    "engine", 0, n, 0,
		    "%u settling commands held: breaker %s tripped before "
		    "they were released",
		    n, hk);
	return n;
}

/* trip_global - open the global breaker of a reason (already loaded in
 * g; the caller saves it), with its event, audit record and the hold of
 * its incident's settling commands in every organisation. */
static void
trip_global(struct fbx_engine *e, struct fbxi_breaker *g, const char *reason,
    const char *note, uint64_t count, uint64_t limit)
{
	fbxi_breaker_trip(g, e->now, "engine", note, 0);
	emit_event(e, FBX_EV_BREAKER_TRIPPED, "*", reason, "engine", 0, count,
	    limit, "%s", note);
	fbxi_audit(e, "*", "engine", "breaker.trip", note,
	    "{\"breaker\":\"*/%s\",\"count\":%llu,\"limit\":%llu,"
	    "\"onset_ms\":%lld}",
	    reason, (unsigned long long)count, (unsigned long long)limit,
	    (long long)g->onset_ms);
	(void)trip_hold(e, NULL, reason, g);
}

/* breaker_gate - automatic lock-type commands pass the global breaker of
 * their reason, then their organisation's. Decided here, inside the
 * transaction that journals the command, one command after another: the
 * devices admitted before a trip never exceed the allowance, however
 * fast the storm. An admitted command settles (c->settle_until_ms) when
 * its reason has a settle delay; a trip holds the settling commands of
 * its incident, so none of a storm's commands reaches a device.
 * @return FBX_OK (see *held) or a store error. */
int
fbxi_breaker_gate(struct fbx_engine *e, struct fbx_command *c, uint32_t ndev,
    uint32_t fleet, int over_limit, int *held)
{
	const char *reason = fbxi_reason_of(c);
	struct fbxi_breaker g, b;
	int tripped = 0, v, rc;

	*held = 0;
	c->settle_until_ms = 0;
	rc = fbxi_brk_load(e->txn, "*", reason, &g, NULL);
	if (rc == FBX_OK)
		rc = fbxi_brk_load(e->txn, c->org, reason, &b, NULL);
	if (rc != FBX_OK)
		return rc;
	if (g.state == FBX_BS_OPEN && !g.cfg.shadow) {
		snprintf(c->held_by, sizeof(c->held_by), "*/%s", reason);
		snprintf(c->note, sizeof(c->note),
		    "held: global breaker for '%s' is open", reason);
		g.held++;
		*held = 1;
		return fbxi_brk_save(e->txn, "*", reason, &g);
	}
	/* the change points see every arrival, admitted or not */
	if (g.state != FBX_BS_OPEN)
		fbxi_breaker_observe(&g, e->now, ndev);
	if (b.state != FBX_BS_OPEN)
		fbxi_breaker_observe(&b, e->now, ndev);
	v = fbxi_breaker_admit(&b, e->now, ndev, fleet, &tripped);
	if (v == FBXI_ADMIT && over_limit && !b.cfg.shadow) {
		/* the blast-radius limit is reached first: an automatic rule
		 * that hits it is the same alarm, and what it sends is held,
		 * not refused */
		v = FBXI_HOLD;
		tripped = 2;
	}
	if (tripped) {
		uint32_t allow = fbxi_breaker_allowance(&b, e->now, fleet);
		uint64_t inwin = fbxi_window_sum(&b.win, e->now);
		char note[FBX_NOTE_MAX];
		if (tripped == 2)
			snprintf(note, sizeof(note),
			    "automatic %s commands reached the blast-radius "
			    "limit of the organisation (fleet %u)",
			    fbx_cmd_type_name(c->type), fleet);
		else
			snprintf(note, sizeof(note),
			    "%llu automatic %s devices in %us would pass the "
			    "allowance of %u (fleet %u)",
			    (unsigned long long)(inwin + ndev),
			    fbx_cmd_type_name(c->type), b.cfg.window_s, allow,
			    fleet);
		fbxi_breaker_trip(&b, e->now, "engine", note, 0);
		emit_event(e, FBX_EV_BREAKER_TRIPPED, c->org, reason,
		    "engine", 0, inwin + ndev, allow, "%s", note);
		fbxi_audit(e, c->org, "engine", "breaker.trip", note,
		    "{\"breaker\":\"%s/%s\",\"count\":%llu,\"allowance\":%u,"
		    "\"onset_ms\":%lld}",
		    c->org, reason, (unsigned long long)(inwin + ndev), allow,
		    (long long)b.onset_ms);
		(void)trip_hold(e, c->org, reason, &b);
		if (fbxi_breaker_note_org_trip(&g, e->now) && !g.cfg.shadow) {
			uint64_t n = fbxi_window_sum(&g.win, e->now);
			snprintf(note, sizeof(note),
			    "%llu organisations tripped on '%s' within %us: "
			    "an upstream failure, not attacks on devices",
			    (unsigned long long)n, reason, g.cfg.window_s);
			trip_global(e, &g, reason, note, n, g.cfg.global_orgs);
		}
	} else if (v != FBXI_HOLD &&
	    fbxi_breaker_global_admit(&g, e->now, ndev, e->fleet_total) &&
	    !g.cfg.shadow) {
		/* the fleet-wide rule: the same reason over a share of every
		 * enrolled device, however it is spread */
		char note[FBX_NOTE_MAX];
		uint64_t n = fbxi_window_sum(&g.dwin, e->now);
		uint64_t cap = e->fleet_total * g.cfg.global_share_ppm / FBX_PPM;
		snprintf(note, sizeof(note),
		    "%llu automatic %s devices for '%s' in %us pass %u ppm of "
		    "the %llu enrolled devices",
		    (unsigned long long)n, fbx_cmd_type_name(c->type), reason,
		    g.cfg.window_s, g.cfg.global_share_ppm,
		    (unsigned long long)e->fleet_total);
		trip_global(e, &g, reason, note, n, cap);
		/* this command is the one that passed it */
		snprintf(c->held_by, sizeof(c->held_by), "*/%s", reason);
		snprintf(c->note, sizeof(c->note),
		    "held: global breaker for '%s' is open", reason);
		g.held++;
		*held = 1;
	}
	rc = fbxi_brk_save(e->txn, "*", reason, &g);
	if (rc != FBX_OK)
		return rc;
	if (*held) {
		/* held by the global breaker just above */
	} else if (v == FBXI_HOLD) {
		snprintf(c->held_by, sizeof(c->held_by), "%s/%s", c->org,
		    reason);
		snprintf(c->note, sizeof(c->note),
		    "held: breaker %s/%s is open", c->org, reason);
		b.held++;
		*held = 1;
	} else {
		if (v == FBXI_ADMIT_SHADOW &&
		    e->now - b.shadow_alerted_ms >=
		        (int64_t)b.cfg.window_s * 1000) {
			b.shadow_alerted_ms = e->now;
			emit_event(e, FBX_EV_BREAKER_WOULD_TRIP, c->org, reason,
			    "engine", 0, fbxi_window_sum(&b.win, e->now),
			    fbxi_breaker_allowance(&b, e->now, fleet),
			    "shadow mode: would hold automatic %s commands",
			    fbx_cmd_type_name(c->type));
		}
		/* the reason's settle delay is the global breaker's */
		if (fbxi_breaker_settle_ms(&g) > 0) {
			c->settle_until_ms = e->now + fbxi_breaker_settle_ms(&g);
			snprintf(c->note, sizeof(c->note),
			    "settling %u s before release: a breaker that "
			    "trips meanwhile holds it",
			    g.cfg.settle_s);
		}
	}
	return fbxi_brk_save(e->txn, c->org, reason, &b);
}

static int
limit_cfg_load(fbx_txn *txn, const char *org, int type,
    struct fbxi_limit_cfg *out, int *own)
{
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	*own = 0;
	snprintf(key, sizeof(key), "limcfg/%s/%s", org, fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, out, sizeof(*out), &len);
	if (rc == FBX_OK && len == sizeof(*out)) {
		*own = 1;
		return FBX_OK;
	}
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	snprintf(key, sizeof(key), "limcfg/*/%s", fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, out, sizeof(*out), &len);
	if (rc == FBX_OK && len == sizeof(*out))
		return FBX_OK;
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	fbxi_limit_defaults(type, out);
	return FBX_OK;
}

static int
limit_use_load(fbx_txn *txn, const char *org, int type, uint32_t window_s,
    struct fbxi_window *w)
{
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "limuse/%s/%s", org, fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, w, sizeof(*w), &len);
	if (rc == FBX_OK && len == sizeof(*w) && w->window_s == window_s)
		return FBX_OK;
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	fbxi_window_init(w, window_s);
	return FBX_OK;
}

static int
limit_use_save(
    fbx_txn *txn, const char *org, int type, const struct fbxi_window *w)
{
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), "limuse/%s/%s", org, fbx_cmd_type_name(type));
	return fbx_store_kv_put(txn, key, w, sizeof(*w));
}

/* fbxi_approval_token - the approval token of a refused command: SHA-256
 * of what it would do, so an approval covers exactly that command. Every
 * OpenSSL return is checked. @return FBX_OK and out (32 hex digits: the
 * first 16 bytes),
 * FBX_ENOMEM or FBX_ECRYPTO; out is written only on success. */
int
fbxi_approval_token(const struct fbx_command *c, char *out, size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	uint8_t hdr[5] = { c->type, c->origin, c->target_kind, c->platform,
		c->rollout.enabled };
	int ok, rc = FBX_ECRYPTO;

	if (cap < 33)
		return FBX_EINVALID;
	if (fbxi_crypto_injected())
		return FBX_ECRYPTO;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return FBX_ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, c->org, strlen(c->org) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) == 1 &&
	    EVP_DigestUpdate(ctx, c->group, strlen(c->group) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, c->reason, strlen(c->reason) + 1) == 1 &&
	    (c->payload_len == 0 ||
	        EVP_DigestUpdate(ctx, c->payload, c->payload_len) == 1);
	for (uint32_t i = 0; ok && i < c->ndev_ids; i++)
		ok = EVP_DigestUpdate(ctx, c->dev_ids[i],
		         strlen(c->dev_ids[i]) + 1) == 1;
	if (!ok || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16)
		goto out;
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	rc = FBX_OK;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* limit_gate - the blast-radius check, after admission: what the window
 * already counts plus this command must stay within the limit, unless a
 * second operator approved exactly this command. @return FBX_OK when
 * admitted (and counted); FBX_ELIMIT_EXCEEDED or FBX_EAPPROVAL_INVALID
 * after answering the submitter; or a store error. */
int
fbxi_limit_gate(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, struct fbx_command *c, uint32_t ndev,
    uint32_t fleet, int count_only)
{
	struct fbxi_limit_cfg cfg;
	struct fbxi_window w;
	char token[FBX_ID_MAX + 1], key[FBX_KV_KEY_MAX];
	uint64_t used;
	uint32_t cap;
	int own, rc;

	rc = limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc != FBX_OK)
		return rc;
	cap = fbxi_limit_cap(&cfg, fleet);
	if (cap == UINT32_MAX)
		return FBX_OK; /* no limit on this type: nothing to count */
	rc = limit_use_load(e->txn, c->org, c->type, cfg.window_s, &w);
	if (rc != FBX_OK)
		return rc;
	used = fbxi_window_sum(&w, e->now);
	if (!count_only && used + ndev > cap) {
		struct approval_rec a;
		size_t len = 0;
		rc = fbxi_approval_token(c, token, sizeof(token));
		if (rc != FBX_OK) {
			/* never an empty token an approval could match */
			FBX_LOGE("org %s: approval token not computed: %s",
			    c->org, fbx_strerror(rc));
			return rc;
		}
		if (req != NULL && req->approval[0] != '\0') {
			const char *why = NULL;
			snprintf(key, sizeof(key), "appr/%s/%s", c->org, token);
			rc = fbx_store_kv_get(e->txn, key, &a, sizeof(a), &len);
			if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
				return rc;
			if (strcmp(req->approval, token) != 0)
				why = "the approval was given for a different "
				      "command";
			else if (rc == FBX_ENOT_FOUND || len != sizeof(a))
				why = "no approval with this token";
			else if (a.used)
				why = "the approval was already used";
			else if (a.expires_ms <= e->now)
				why = "the approval has expired";
			else if (strcmp(a.approver, req->actor) == 0)
				why = "the approver submitted it: a second, "
				      "different operator must approve";
			if (why != NULL) {
				fbxi_console_error(e, in, req->request_id, req->kind,
				    FBX_EAPPROVAL_INVALID, "%s", why);
				return FBX_EAPPROVAL_INVALID;
			}
			a.used = 1;
			rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
			if (rc != FBX_OK)
				return rc;
			snprintf(c->approved_by, sizeof(c->approved_by), "%s",
			    a.approver);
			FBX_LOGI("org %s: %s of %u devices over its limit %u "
			         "admitted: submitted by %s, approved by %s",
			    c->org, fbx_cmd_type_name(c->type), ndev, cap,
			    req->actor, a.approver);
		} else if (req != NULL) {
			struct fbx_console_rep rep;
			memset(&a, 0, sizeof(a));
			a.version = 1;
			a.at_ms = e->now;
			a.count = used + ndev;
			a.cap = cap;
			snprintf(a.submitter, sizeof(a.submitter), "%s",
			    req->actor);
			snprintf(key, sizeof(key), "rej/%s/%s", c->org, token);
			rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
			if (rc != FBX_OK)
				return rc;
			memset(&rep, 0, sizeof(rep));
			rep.request_id = req->request_id;
			rep.kind = req->kind;
			rep.err = FBX_ELIMIT_EXCEEDED;
			snprintf(rep.approval_token, sizeof(rep.approval_token),
			    "%s", token);
			rep.limit_value = cap;
			rep.limit_count = used + ndev;
			snprintf(rep.errmsg, sizeof(rep.errmsg),
			    "%s of %u devices: %llu already affected in the "
			    "last %us + %u > limit %u; a second operator "
			    "may approve: fuseboxctl approve %s",
			    fbx_cmd_type_name(c->type), ndev,
			    (unsigned long long)used, cfg.window_s, ndev, cap,
			    token);
			fbxi_console_reply(e, in, &rep);
			fbxi_audit(e, c->org, req->actor, "submit.refused", NULL,
			    "{\"type\":\"%s\",\"devices\":%u,\"used\":%llu,"
			    "\"limit\":%u,\"token\":\"%s\"}",
			    fbx_cmd_type_name(c->type), ndev,
			    (unsigned long long)used, cap, token);
			emit_event(e, FBX_EV_LIMIT_REJECTED, c->org,
			    fbxi_reason_of(c), req->actor, 0, used + ndev, cap,
			    "%s refused: %u devices over the blast-radius "
			    "limit",
			    fbx_cmd_type_name(c->type), ndev);
			return FBX_ELIMIT_EXCEEDED;
		} else {
			return FBX_ELIMIT_EXCEEDED;
		}
	}
	fbxi_window_add(&w, e->now, ndev);
	return limit_use_save(e->txn, c->org, c->type, &w);
}

/* limit_over - would ndev more devices pass the blast-radius limit? */
int
fbxi_limit_over(struct fbx_engine *e, const struct fbx_command *c, uint32_t ndev,
    uint32_t fleet, int *over)
{
	struct fbxi_limit_cfg cfg;
	struct fbxi_window w;
	int own, rc;

	*over = 0;
	rc = limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc == FBX_OK)
		rc = limit_use_load(e->txn, c->org, c->type, cfg.window_s, &w);
	if (rc != FBX_OK)
		return rc;
	*over = fbxi_window_sum(&w, e->now) + ndev > fbxi_limit_cap(&cfg, fleet);
	return FBX_OK;
}


static void
tally(struct count_ctx *k, const struct fbx_device *d)
{
	if (k->platform != FBX_PLATFORM_ANY && d->platform != k->platform)
		return;
	k->n++;
	if (d->platform < FBX_PLATFORM_COUNT)
		k->per_platform[d->platform]++;
	if (k->stages != NULL && k->stages->ngroups > 0) {
		unsigned s = k->stages->ngroups;
		for (unsigned j = 0; j < k->stages->ngroups && s == k->stages->ngroups;
		     j++)
			for (unsigned i = 0; i < d->ngroups; i++)
				if (strcmp(d->groups[i], k->stages->groups[j]) == 0) {
					s = j;
					break;
				}
		k->per_stage[s]++;
	}
	if (!k->tally_groups)
		return;
	for (unsigned i = 0; i < d->ngroups; i++) {
		size_t j;
		for (j = 0; j < k->ngroups; j++) {
			if (strcmp(k->groups[j].name, d->groups[i]) == 0)
				break;
		}
		if (j == k->ngroups) {
			if (k->ngroups == k->cap) {
				size_t ncap = k->cap ? k->cap * 2 : 16;
				struct fbx_group_count *ng;
				if (ncap > 1000)
					continue;
				ng = realloc(k->groups, ncap * sizeof(*ng));
				if (ng == NULL) {
					k->err = FBX_ENOMEM;
					continue;
				}
				k->groups = ng;
				k->cap = ncap;
			}
			memset(&k->groups[j], 0, sizeof(k->groups[j]));
			snprintf(k->groups[j].name, sizeof(k->groups[j].name),
			    "%s", d->groups[i]);
			k->ngroups++;
		}
		k->groups[j].count++;
	}
}

static int
count_cb(void *arg, const struct fbx_device *d)
{
	tally(arg, d);
	return 0;
}

/* target_count - how many devices a command reaches now. Cheap for an
 * organisation-wide target without filter (the registry's count); a scan
 * otherwise, or when a dry run wants the breakdown. */
int
fbxi_target_count(struct fbx_engine *e, const struct fbx_command *c,
    uint32_t fleet, struct count_ctx *k)
{
	int rc = FBX_OK;

	k->platform = c->platform;
	if (c->target_kind == FBX_TARGET_ORG &&
	    c->platform == FBX_PLATFORM_ANY && !k->tally_groups &&
	    k->stages == NULL) {
		k->n = fleet;
		return FBX_OK;
	}
	if (c->target_kind == FBX_TARGET_DEVICES) {
		for (uint32_t i = 0; i < c->ndev_ids && rc == FBX_OK; i++) {
			struct fbx_device d, *dp = &d;
			if (k->one != NULL && c->ndev_ids == 1)
				dp = k->one;
			rc = fbx_store_dev_get(e->txn, c->org, c->dev_ids[i], dp);
			if (rc == FBX_OK) {
				k->one_ok = dp == k->one;
				tally(k, dp);
			} else if (rc == FBX_ENOT_FOUND) {
				if (k->missing[0] == '\0')
					snprintf(k->missing, sizeof(k->missing),
					    "%s", c->dev_ids[i]);
				rc = FBX_OK;
			}
		}
		return rc;
	}
	rc = fbx_store_dev_scan(e->txn, c->org,
	    c->target_kind == FBX_TARGET_GROUP ? c->group : NULL, NULL, 0,
	    count_cb, k);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	return rc != FBX_OK ? rc : k->err;
}

/* dry_run - what the command would do and what would stop it; nothing is
 * journaled or counted. kc is the target's count with its breakdown per
 * platform and group; its groups array is freed here. */
void
fbxi_dry_run(struct fbx_engine *e, const struct inmsg *in,
    struct fbx_console_req *req, struct fbx_command *c, uint32_t fleet,
    struct count_ctx *kc)
{
	struct fbx_console_rep rep;
	struct fbx_dryrun *d = &rep.u.submit.dryrun;
	struct count_ctx k = *kc;
	struct fbxi_limit_cfg cfg;
	struct fbxi_window w;
	uint32_t waves[256];
	int own, rc;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.submit.dry_run = 1;
	rep.u.submit.device_count = k.n;
	d->devices = k.n;
	memcpy(d->per_platform, k.per_platform, sizeof(d->per_platform));
	d->groups = k.groups;
	d->ngroups = k.ngroups;
	if (c->rollout.enabled && c->rollout.ngroups > 0) {
		/* stage by stage, as the engine will run it: each listed
		 * group in turn, then the devices in none */
		fbxi_rollout_normalize(&c->rollout);
		for (unsigned s = 0; s <= c->rollout.ngroups; s++) {
			size_t nw = fbxi_rollout_plan_waves(&c->rollout,
			    k.per_stage[s], waves + d->nwaves,
			    sizeof(waves) / sizeof(waves[0]) - d->nwaves);
			d->stage_devices[s] = k.per_stage[s];
			d->stage_waves[s] = (uint32_t)nw;
			d->nwaves += nw;
		}
		d->nstages = c->rollout.ngroups + 1u;
		d->waves = waves;
	} else if (c->rollout.enabled) {
		fbxi_rollout_normalize(&c->rollout);
		d->nwaves = fbxi_rollout_plan_waves(&c->rollout, k.n, waves,
		    sizeof(waves) / sizeof(waves[0]));
		d->waves = waves;
	}
	snprintf(d->verdict, sizeof(d->verdict),
	    "would be admitted: %u devices", k.n);
	if (c->origin == FBX_ORIGIN_AUTOMATIC && fbx_cmd_lock_type(c->type)) {
		struct fbxi_breaker g, b;
		int tripped = 0;
		rc = fbxi_brk_load(e->txn, "*", fbxi_reason_of(c), &g, NULL);
		if (rc == FBX_OK)
			rc = fbxi_brk_load(e->txn, c->org, fbxi_reason_of(c), &b, NULL);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			goto out;
		}
		if (g.state == FBX_BS_OPEN && !g.cfg.shadow) {
			d->stop_err = FBX_EBREAKER_OPEN;
			snprintf(d->verdict, sizeof(d->verdict),
			    "would be held: global breaker */%s is open",
			    fbxi_reason_of(c));
			goto reply;
		}
		if (fbxi_breaker_admit(&b, e->now, k.n, fleet, &tripped) ==
		    FBXI_HOLD) {
			d->stop_err = FBX_EBREAKER_OPEN;
			snprintf(d->verdict, sizeof(d->verdict),
			    "would be held: breaker %s/%s %s (allowance %u "
			    "devices per %us)",
			    c->org, fbxi_reason_of(c),
			    tripped ? "would trip" : "is open",
			    fbxi_breaker_allowance(&b, e->now, fleet),
			    b.cfg.window_s);
			goto reply;
		}
	}
	rc = limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc == FBX_OK)
		rc = limit_use_load(e->txn, c->org, c->type, cfg.window_s, &w);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		goto out;
	}
	{
		uint32_t cap = fbxi_limit_cap(&cfg, fleet);
		uint64_t used = fbxi_window_sum(&w, e->now);
		if (used + k.n > cap) {
			d->stop_err = FBX_ELIMIT_EXCEEDED;
			snprintf(d->verdict, sizeof(d->verdict),
			    "would be refused: %llu already affected in the "
			    "last %us + %u > %s limit %u; needs a second "
			    "operator's approval",
			    (unsigned long long)used, cfg.window_s, k.n,
			    fbx_cmd_type_name(c->type), cap);
			goto reply;
		}
	}
	{
		struct orgq *q = fbxi_orgq_get(e, c->org);
		if (q != NULL) {
			fbxi_orgq_load_rate(e, q);
			if (q->rate.rate_per_s > 0)
				snprintf(d->verdict, sizeof(d->verdict),
				    "would be admitted: %u devices; rate cap "
				    "%u/s paces dispatch over about %u s",
				    k.n, q->rate.rate_per_s,
				    k.n / q->rate.rate_per_s);
		}
	}
reply:
	fbxi_console_reply(e, in, &rep);
out:
	free(k.groups);
}

/* ------------------------------------------------ safety-control requests */

struct brk_list_ctx {
	struct fbx_engine *e;
	struct fbx_breaker_info *v;
	size_t n, cap;
	const char *reason; /* filter, "" = all */
	uint32_t fleet;
	int err;
};

/* held_count - commands now held by breaker key "org/reason". */
static uint64_t
held_count(struct fbx_engine *e, const char *key)
{
	size_t pos = 0;
	uint64_t k, v, n = 0;

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (cc->c.state == FBX_C_HELD &&
		    strcmp(cc->c.held_by, key) == 0)
			n++;
	}
	return n;
}

static int
brk_list_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct brk_list_ctx *l = arg;
	struct fbxi_breaker b;
	struct fbx_breaker_info *o;
	const char *org = key + 4, *slash = strchr(org, '/');
	char hk[2 * FBX_ID_MAX + 2];

	if (slash == NULL || len > sizeof(b))
		return 0;
	if (brk_decode(val, len, &b) != FBX_OK)
		return 0;
	if (l->reason[0] != '\0' && strcmp(slash + 1, l->reason) != 0)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		struct fbx_breaker_info *nv;
		if (ncap > FBX_PAGE_MAX)
			return 1;
		nv = realloc(l->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			l->err = FBX_ENOMEM;
			return 1;
		}
		l->v = nv;
		l->cap = ncap;
	}
	o = &l->v[l->n++];
	memset(o, 0, sizeof(*o));
	snprintf(o->org, sizeof(o->org), "%.*s", (int)(slash - org), org);
	snprintf(o->reason, sizeof(o->reason), "%s", slash + 1);
	o->state = b.state;
	o->manual = b.manual;
	o->cfg = b.cfg;
	o->window_count = fbxi_window_sum(&b.win, l->e->now);
	o->baseline = b.baseline_x1000 / 1000;
	snprintf(hk, sizeof(hk), "%s/%s", o->org, o->reason);
	o->held = held_count(l->e, hk);
	o->would_hold = b.would_hold;
	o->trips = b.trips;
	o->tripped_ms = b.tripped_ms;
	o->onset_ms = b.onset_ms;
	o->settling = fbxi_settle_count(l->e,
	    strcmp(o->org, "*") == 0 ? NULL : o->org, o->reason);
	snprintf(o->tripped_by, sizeof(o->tripped_by), "%s", b.tripped_by);
	snprintf(o->note, sizeof(o->note), "%s", b.note);
	if (strcmp(o->org, "*") != 0) {
		o->fleet = l->fleet;
		o->allowance = fbxi_breaker_allowance(&b, l->e->now, l->fleet);
	}
	return 0;
}

/* release_held - a held command goes on after a reset: through its
 * organisation's breaker if that one is still open (a global reset does
 * not open an organisation's), and through the blast-radius limit. */
int
fbxi_release_held(struct fbx_engine *e, struct cmdc *cc, const char *who,
    const char *note, int64_t at_ms, int *refused)
{
	struct fbx_command *c = &cc->c;
	struct count_ctx k;
	uint32_t fleet = 0;
	int rc;

	*refused = 0;
	if (c->held_by[0] == '*') {
		struct fbxi_breaker b;
		rc = fbxi_brk_load(e->txn, c->org, fbxi_reason_of(c), &b, NULL);
		if (rc != FBX_OK)
			return rc;
		if (b.state == FBX_BS_OPEN && !b.cfg.shadow) {
			snprintf(c->held_by, sizeof(c->held_by), "%s/%s",
			    c->org, fbxi_reason_of(c));
			fbxi_cmd_touch(cc);
			return FBX_OK;
		}
	}
	rc = fbx_store_org_devices(e->txn, c->org, &fleet);
	if (rc != FBX_OK && rc != FBX_EUNKNOWN_ORG)
		return rc;
	memset(&k, 0, sizeof(k));
	rc = fbxi_target_count(e, c, fleet, &k);
	if (rc != FBX_OK)
		return rc;
	rc = fbxi_limit_gate(e, NULL, NULL, c, k.n, fleet, 0);
	snprintf(c->resolved_by, sizeof(c->resolved_by), "%s", who);
	if (rc == FBX_ELIMIT_EXCEEDED) {
		c->state = FBX_C_DISCARDED;
		snprintf(c->note, sizeof(c->note),
		    "release refused by the %s blast-radius limit",
		    fbx_cmd_type_name(c->type));
		*refused = 1;
		fbxi_cmd_touch(cc);
		return FBX_OK;
	}
	if (rc != FBX_OK)
		return rc;
	/* a staged release: it settles until its wave is due (the first
	 * wave is due now and leaves in this turn) */
	c->state = FBX_C_SETTLING;
	c->settle_until_ms = at_ms;
	fbxi_note_printf(c->note, sizeof(c->note),
	    "released in a staged wave at +%lld s: %s",
	    (long long)((at_ms - e->now) / 1000), note);
	/* its time to live starts again at the release */
	c->expires_ms = at_ms + (int64_t)c->ttl_s * 1000;
	if (fbxi_settle_add(e, c->id, at_ms) != 0 ||
	    fbxi_theap_push(&e->expiry, c->expires_ms, c->id) != 0)
		return FBX_ENOMEM;
	fbxi_cmd_touch(cc);
	return FBX_OK;
}

/* Held commands released at a breaker reset go out in staged waves, not
 * at once: RELEASE_WAVE_FIRST commands now, then twice as many as the
 * wave before every RELEASE_WAVE_GAP_MS (10, 20, 40, ...: 32,000
 * commands in 12 waves over 2 minutes), oldest first. An operator who
 * released too early sees the first wave's results and can trip the
 * breaker again by hand: what is still settling is held again. */
#define RELEASE_WAVE_FIRST 10
#define RELEASE_WAVE_GAP_MS 10000

int64_t
fbxi_release_wave_at(int64_t now, uint32_t i)
{
	uint64_t end = RELEASE_WAVE_FIRST;
	int64_t wave = 0;

	while (i >= end) {
		end = end * 2 + RELEASE_WAVE_FIRST;
		wave++;
	}
	return now + wave * RELEASE_WAVE_GAP_MS;
}

int
fbxi_cmp_cc_id(const void *a, const void *b)
{
	const struct cmdc *x = *(const struct cmdc *const *)a;
	const struct cmdc *y = *(const struct cmdc *const *)b;

	return x->c.id < y->c.id ? -1 : x->c.id > y->c.id;
}


void
fbxi_handle_breaker(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct brk_list_ctx l;
	struct fbxi_breaker b;
	const char *scope = req->u.breaker.global ? "*" : req->org;
	const char *reason = req->u.breaker.reason;
	char key[FBX_KV_KEY_MAX], hk[2 * FBX_ID_MAX + 2];
	uint32_t fleet = 0;
	int exists = 0, rc;

	memset(&rep, 0, sizeof(rep));
	memset(&l, 0, sizeof(l));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rc = fbx_store_org_devices(e->txn, req->org, &fleet);
	if (rc == FBX_EUNKNOWN_ORG) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	if (rc != FBX_OK)
		goto fail;
	switch (req->u.breaker.op) {
	case FBX_BRK_STATUS:
		break;
	case FBX_BRK_TRIP:
		rc = fbxi_brk_load(e->txn, scope, reason, &b, &exists);
		if (rc != FBX_OK)
			goto fail;
		fbxi_breaker_trip(&b, e->now, req->actor, req->u.breaker.note, 1);
		/* what of the incident is still settling is held too */
		(void)trip_hold(e, strcmp(scope, "*") == 0 ? NULL : scope,
		    reason, &b);
		rc = fbxi_brk_save(e->txn, scope, reason, &b);
		if (rc != FBX_OK)
			goto fail;
		emit_event(e, FBX_EV_BREAKER_TRIPPED, scope, reason, req->actor,
		    0, 0, 0, "tripped by hand: %s", req->u.breaker.note);
		fbxi_audit(e, scope, req->actor, "breaker.trip",
		    req->u.breaker.note,
		    "{\"breaker\":\"%s/%s\",\"requested_in\":\"%s\"}", scope,
		    reason, req->org);
		break;
	case FBX_BRK_RESET: {
		size_t pos = 0, nh = 0, caph = 0;
		uint64_t k, v;
		uint32_t released = 0, discarded = 0, refused = 0;
		struct cmdc **hv = NULL;
		rc = fbxi_brk_load(e->txn, scope, reason, &b, &exists);
		if (rc != FBX_OK)
			goto fail;
		snprintf(hk, sizeof(hk), "%s/%s", scope, reason);
		if (b.state != FBX_BS_OPEN && held_count(e, hk) == 0) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_ESTATE, "breaker %s is not open", hk);
			return;
		}
		fbxi_breaker_reset(&b, e->now, req->actor, req->u.breaker.note);
		rc = fbxi_brk_save(e->txn, scope, reason, &b);
		if (rc == FBX_OK && strcmp(scope, "*") == 0)
			rc = fbxi_reset_order_save(e->txn, reason, e->now,
			    req->u.breaker.on_reset == FBX_RESET_DISCARD,
			    req->actor, req->u.breaker.note);
		if (rc != FBX_OK)
			goto fail;
		/* the commands it holds, oldest first */
		while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
			struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
			if (cc->c.state != FBX_C_HELD ||
			    strcmp(cc->c.held_by, hk) != 0)
				continue;
			if (nh == caph) {
				size_t ncap = caph ? 2 * caph : 64;
				struct cmdc **nv =
				    realloc(hv, ncap * sizeof(*nv));
				if (nv == NULL) {
					free(hv);
					rc = FBX_ENOMEM;
					goto fail;
				}
				hv = nv;
				caph = ncap;
			}
			hv[nh++] = cc;
		}
		if (nh > 1)
			qsort(hv, nh, sizeof(*hv), fbxi_cmp_cc_id);
		for (size_t i = 0; i < nh; i++) {
			struct cmdc *cc = hv[i];
			int ref = 0;
			if (req->u.breaker.on_reset == FBX_RESET_DISCARD) {
				cc->c.state = FBX_C_DISCARDED;
				snprintf(cc->c.resolved_by,
				    sizeof(cc->c.resolved_by), "%s",
				    req->actor);
				fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
				    "discarded at breaker reset: %s",
				    req->u.breaker.note);
				fbxi_cmd_touch(cc);
				discarded++;
				continue;
			}
			rc = fbxi_release_held(e, cc, req->actor,
			    req->u.breaker.note,
			    fbxi_release_wave_at(e->now, released), &ref);
			if (rc != FBX_OK) {
				free(hv);
				goto fail;
			}
			if (ref)
				refused++;
			else if (cc->c.state == FBX_C_SETTLING)
				released++;
		}
		free(hv);
		rep.u.breaker.released = released;
		rep.u.breaker.discarded = discarded + refused;
		emit_event(e, FBX_EV_BREAKER_RESET, scope, reason, req->actor,
		    0, released + discarded + refused, 0,
		    "reset by hand (%s): %u released, %u discarded, %u "
		    "refused by limits: %s",
		    req->u.breaker.on_reset == FBX_RESET_DISCARD ? "discard"
		                                                : "release",
		    released, discarded, refused, req->u.breaker.note);
		fbxi_audit(e, scope, req->actor, "breaker.reset",
		    req->u.breaker.note,
		    "{\"breaker\":\"%s\",\"action\":\"%s\",\"released\":%u,"
		    "\"discarded\":%u,\"refused_by_limit\":%u}",
		    hk,
		    req->u.breaker.on_reset == FBX_RESET_DISCARD ? "discard"
		                                                : "release",
		    released, discarded, refused);
		FBX_LOGI("breaker %s reset by %s: %u released, %u discarded, "
		         "%u refused by limits",
		    hk, req->actor, released, discarded, refused);
		break;
	}
	case FBX_BRK_CONFIGURE:
		rc = fbxi_brk_load(e->txn, scope, reason, &b, &exists);
		if (rc != FBX_OK)
			goto fail;
		{
			uint32_t old_win = b.cfg.window_s;
			fbxi_breaker_cfg_merge(&b.cfg, &req->u.breaker.cfg);
			if (b.cfg.window_s != old_win) {
				fbxi_window_init(&b.win, b.cfg.window_s);
				fbxi_window_init(&b.dwin, b.cfg.window_s);
			}
		}
		rc = fbxi_brk_save(e->txn, scope, reason, &b);
		if (rc != FBX_OK)
			goto fail;
		fbxi_audit(e, scope, req->actor, "breaker.configure", NULL,
		    "{\"breaker\":\"%s/%s\",\"window_s\":%u,\"min_count\":%u,"
		    "\"share_ppm\":%u,\"baseline_mult\":%u,"
		    "\"min_samples\":%u,\"global_orgs\":%u,"
		    "\"global_share_ppm\":%u,\"settle_s\":%u,\"shadow\":%s}",
		    scope, reason, b.cfg.window_s, b.cfg.min_count,
		    b.cfg.share_ppm, b.cfg.baseline_mult, b.cfg.min_samples,
		    b.cfg.global_orgs, b.cfg.global_share_ppm, b.cfg.settle_s,
		    b.cfg.shadow ? "true" : "false");
		FBX_LOGI("breaker %s/%s configured by %s: window %us, min %u, "
		         "share %u ppm, baseline x%u after %u samples, global "
		         "%u orgs or %u ppm, settle %us, %s",
		    scope, reason, req->actor, b.cfg.window_s, b.cfg.min_count,
		    b.cfg.share_ppm, b.cfg.baseline_mult, b.cfg.min_samples,
		    b.cfg.global_orgs, b.cfg.global_share_ppm, b.cfg.settle_s,
		    b.cfg.shadow ? "shadow" : "enforcing");
		break;
	default:
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_EINVAL,
		    "unknown breaker operation");
		return;
	}
	/* answer with the breakers of this organisation and the global ones */
	l.e = e;
	l.reason = req->u.breaker.op == FBX_BRK_STATUS ? reason : reason;
	l.fleet = fleet;
	snprintf(key, sizeof(key), "brk/%s/", req->org);
	rc = fbx_store_kv_scan(e->txn, key, brk_list_cb, &l);
	if (rc == FBX_OK)
		rc = fbx_store_kv_scan(e->txn, "brk/*/", brk_list_cb, &l);
	if (rc == FBX_OK)
		rc = l.err;
	if (rc != FBX_OK)
		goto fail;
	rep.u.breaker.b = l.v;
	rep.u.breaker.n = l.n;
	fbxi_console_reply(e, in, &rep);
	free(l.v);
	return;
fail:
	free(l.v);
	fbxi_set_err(e, rc);
}

void
fbxi_handle_limit(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_limit_info rows[FBX_CMD_TYPE_COUNT];
	size_t n = 0;
	uint32_t fleet = 0;
	int rc = fbx_store_org_devices(e->txn, req->org, &fleet);

	if (rc != FBX_OK && rc != FBX_EUNKNOWN_ORG)
		goto fail;
	if (req->u.limit.set) {
		struct fbxi_limit_cfg cfg;
		const struct fbx_limit_info *li = &req->u.limit.lim;
		char key[FBX_KV_KEY_MAX];
		if (li->type <= FBX_CMD_NONE || li->type >= FBX_CMD_TYPE_COUNT) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL, "unknown command type");
			return;
		}
		memset(&cfg, 0, sizeof(cfg));
		cfg.version = FBXI_LIM_VERSION;
		cfg.max_count = li->max_count;
		cfg.max_share_ppm = li->max_share_ppm > FBX_PPM
		    ? FBX_PPM
		    : li->max_share_ppm;
		cfg.window_s = li->window_s ? li->window_s : 3600;
		snprintf(key, sizeof(key), "limcfg/%s/%s",
		    req->u.limit.global ? "*" : req->org,
		    fbx_cmd_type_name(li->type));
		rc = fbx_store_kv_put(e->txn, key, &cfg, sizeof(cfg));
		if (rc != FBX_OK)
			goto fail;
		fbxi_audit(e, req->u.limit.global ? "*" : req->org, req->actor,
		    "limit.set", NULL,
		    "{\"limit\":\"%s\",\"max_count\":%u,\"max_share_ppm\":%u,"
		    "\"window_s\":%u}",
		    key, cfg.max_count, cfg.max_share_ppm, cfg.window_s);
		FBX_LOGI("limit %s set by %s: %u devices, %u ppm, per %us", key,
		    req->actor, cfg.max_count, cfg.max_share_ppm, cfg.window_s);
	}
	for (int t = 1; t < FBX_CMD_TYPE_COUNT; t++) {
		struct fbxi_limit_cfg cfg;
		struct fbxi_window w;
		int own = 0;
		const char *scope = req->u.limit.global ? "*" : req->org;
		rc = limit_cfg_load(e->txn, scope, t, &cfg, &own);
		if (rc == FBX_OK)
			rc = limit_use_load(e->txn, req->org, t, cfg.window_s, &w);
		if (rc != FBX_OK)
			goto fail;
		memset(&rows[n], 0, sizeof(rows[n]));
		snprintf(rows[n].org, sizeof(rows[n].org), "%s",
		    own ? req->org : "*");
		rows[n].type = (uint8_t)t;
		rows[n].max_count = cfg.max_count;
		rows[n].max_share_ppm = cfg.max_share_ppm;
		rows[n].window_s = cfg.window_s;
		rows[n].used = req->u.limit.global ? 0 : fbxi_window_sum(&w, e->now);
		n++;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.limit.l = rows;
	rep.u.limit.n = n;
	fbxi_console_reply(e, in, &rep);
	return;
fail:
	fbxi_set_err(e, rc);
}

void
fbxi_handle_rate(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_rate_info rows[2];
	struct orgq *q = fbxi_orgq_get(e, req->org);
	int rc;

	if (q == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	if (req->u.rate.set) {
		struct fbx_rate_info ri = req->u.rate.rate;
		snprintf(ri.org, sizeof(ri.org), "%s",
		    req->u.rate.global ? "*" : req->org);
		rc = fbxi_rate_save(e->txn, &ri);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
		if (req->u.rate.global) {
			e->grate = ri;
			memset(&e->gbucket, 0, sizeof(e->gbucket));
		} else {
			q->rate = ri;
			q->rate_loaded = 1;
			memset(&q->bucket, 0, sizeof(q->bucket));
		}
		fbxi_audit(e, ri.org, req->actor, "rate.set", NULL,
		    "{\"scope\":\"%s\",\"rate_per_s\":%u,\"burst\":%u,"
		    "\"max_inflight\":%u}",
		    ri.org, ri.rate_per_s, ri.burst, ri.max_inflight);
		FBX_LOGI("rate caps of %s set by %s: %u/s burst %u, %u in "
		         "flight",
		    ri.org, req->actor, ri.rate_per_s, ri.burst,
		    ri.max_inflight);
	}
	fbxi_orgq_load_rate(e, q);
	rows[0] = q->rate;
	snprintf(rows[0].org, sizeof(rows[0].org), "%s", req->org);
	rows[0].inflight = q->inflight;
	rows[1] = e->grate;
	snprintf(rows[1].org, sizeof(rows[1].org), "*");
	rows[1].inflight = (uint32_t)e->inflight_all;
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rate.r = rows;
	rep.u.rate.n = 2;
	fbxi_console_reply(e, in, &rep);
}

void
fbxi_handle_approve(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct approval_rec a;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "rej/%s/%s", req->org, req->u.approve.token);
	rc = fbx_store_kv_get(e->txn, key, &a, sizeof(a), &len);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && len != sizeof(a))) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no refused command with token %s in organisation '%s'",
		    req->u.approve.token, req->org);
		return;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (strcmp(a.submitter, req->actor) == 0) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EAPPROVAL_INVALID,
		    "%s submitted this command; a different operator must "
		    "approve it",
		    req->actor);
		return;
	}
	snprintf(a.approver, sizeof(a.approver), "%s", req->actor);
	snprintf(a.note, sizeof(a.note), "%s", req->u.approve.note);
	a.used = 0;
	a.expires_ms = e->now + (int64_t)e->o.approval_ttl_s * 1000;
	snprintf(key, sizeof(key), "appr/%s/%s", req->org, req->u.approve.token);
	rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	fbxi_audit(e, req->org, req->actor, "approve", req->u.approve.note,
	    "{\"token\":\"%s\",\"submitter\":\"%s\",\"devices\":%llu,"
	    "\"limit\":%llu,\"expires_ms\":%lld}",
	    req->u.approve.token, a.submitter, (unsigned long long)a.count,
	    (unsigned long long)a.cap, (long long)a.expires_ms);
	FBX_LOGI("org %s: %s approved %s's refused command %s (%llu devices "
	         "against limit %llu): %s",
	    req->org, req->actor, a.submitter, req->u.approve.token,
	    (unsigned long long)a.count, (unsigned long long)a.cap, a.note);
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	snprintf(rep.u.approve.token, sizeof(rep.u.approve.token), "%s",
	    req->u.approve.token);
	snprintf(rep.u.approve.approver, sizeof(rep.u.approve.approver), "%s",
	    req->actor);
	snprintf(rep.u.approve.submitter, sizeof(rep.u.approve.submitter),
	    "%s", a.submitter);
	rep.u.approve.expires_ms = a.expires_ms;
	fbxi_console_reply(e, in, &rep);
}

static int
cmp_cmd_id(const void *a, const void *b)
{
	uint64_t x = (*(struct cmdc *const *)a)->c.id;
	uint64_t y = (*(struct cmdc *const *)b)->c.id;

	return x < y ? -1 : x > y;
}

void
fbxi_handle_list_held(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct cmdc **v = NULL;
	struct fbx_command *out = NULL;
	size_t n = 0, pos = 0, m = 0;
	uint32_t limit = req->u.list_held.limit ? req->u.list_held.limit : 100;
	uint64_t k, val;

	if (limit > FBX_PAGE_MAX)
		limit = FBX_PAGE_MAX;
	v = malloc((e->cmds.len + 1) * sizeof(*v));
	out = malloc(limit * sizeof(*out));
	if (v == NULL || out == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		goto out;
	}
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &val)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)val;
		if (cc->c.state != FBX_C_HELD ||
		    strcmp(cc->c.org, req->org) != 0 ||
		    cc->c.id <= req->u.list_held.after)
			continue;
		if (req->u.list_held.reason[0] != '\0' &&
		    strcmp(fbxi_reason_of(&cc->c), req->u.list_held.reason) != 0)
			continue;
		v[n++] = cc;
	}
	qsort(v, n, sizeof(*v), cmp_cmd_id);
	for (size_t i = 0; i < n && m < limit; i++) {
		out[m] = v[i]->c;
		out[m].payload = NULL;
		out[m].payload_len = 0;
		out[m].dev_ids = NULL;
		out[m].ndev_ids = 0;
		m++;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.commands.cmds = out;
	rep.u.commands.n = m;
	if (m < n && m > 0)
		rep.u.commands.next_after = out[m - 1].id;
	fbxi_console_reply(e, in, &rep);
out:
	free(v);
	free(out);
}

/* ------------------------------------------------------ staged rollouts */

static uint32_t
ro_stages(const struct fbx_command *c)
{
	return c->rollout.ngroups > 0 ? c->rollout.ngroups + 1u : 1u;
}


static void
ro_release(struct fbx_engine *e, struct cmdc *cc, uint32_t size)
{
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint64_t base = FBX_DLV_ID(cc->c.id, 0);

	for (uint32_t i = 0; i < size; i++) {
		if (fbxi_orgq_push(e, cc->q, FBX_PRIO_BULK, base + ro->released + i) !=
		    FBX_OK) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
	}
	ro->wave_start = ro->released;
	ro->wave_size = size;
	ro->released += size;
	ro->wave++;
	ro->wave_started_ms = e->now;
	ro->state = FBX_RO_RUNNING;
	cc->w_ok = cc->w_fail = cc->w_settled = 0;
	cc->w_topcode = 0;
	cc->w_topcode_n = 0;
	cc->judge_off = 0;
	fbxi_cmd_touch(cc);
	FBX_LOGI("rollout %llu: stage %u wave %u: %u devices (%u of %u out)",
	    (unsigned long long)cc->c.id, ro->stage, ro->wave, size,
	    ro->released, cc->c.ndeliveries);
}

static void
ro_advance_stage(struct fbx_engine *e, struct cmdc *cc)
{
	cc->c.cursor_idx++;
	cc->c.cursor[0] = '\0';
	cc->c.ro.stage++;
	cc->c.ro.wave = 0;
	/* running: the next stage's deliveries are being created, and its
	 * first wave leaves as soon as they are */
	cc->c.ro.state = FBX_RO_RUNNING;
	if (cc->c.cursor_idx < cc->c.rollout.ngroups)
		snprintf(cc->c.ro.note, sizeof(cc->c.ro.note),
		    "stage %u: group '%s' next", cc->c.ro.stage,
		    cc->c.rollout.groups[cc->c.cursor_idx]);
	else
		snprintf(cc->c.ro.note, sizeof(cc->c.ro.note),
		    "stage %u: the devices in no listed group next",
		    cc->c.ro.stage);
	cc->c.state = FBX_C_EXPANDING;
	fbxi_xlist_add(e, cc);
	fbxi_cmd_touch(cc);
}

/* ro_next - after a wave has baked: the next wave, the next group, or
 * the end of the rollout. */
static void
ro_next(struct fbx_engine *e, struct cmdc *cc)
{
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint32_t remaining = cc->c.ndeliveries - ro->released, size;

	if (remaining > 0) {
		if (ro->wave == 0)
			size = fbxi_rollout_wave(
			    &cc->c.rollout, remaining, 0, 0, 0);
		else
			size = fbxi_rollout_wave(&cc->c.rollout,
			    cc->c.ndeliveries, ro->released, ro->wave,
			    ro->wave_size);
		ro_release(e, cc, size);
		return;
	}
	if (cc->c.cursor_idx + 1 < ro_stages(&cc->c)) {
		if (cc->c.rollout.approve_groups) {
			if (ro->state != FBX_RO_AWAITING_APPROVAL) {
				ro->state = FBX_RO_AWAITING_APPROVAL;
				snprintf(ro->note, sizeof(ro->note),
				    "group '%s' done; the next group needs "
				    "an operator's approval",
				    cc->c.rollout.groups[cc->c.cursor_idx]);
				fbxi_cmd_touch(cc);
				FBX_LOGI("rollout %llu: %s",
				    (unsigned long long)cc->c.id, ro->note);
			}
			return;
		}
		ro_advance_stage(e, cc);
		return;
	}
	ro->state = FBX_RO_DONE;
	fbxi_cmd_touch(cc);
	FBX_LOGI("rollout %llu done: %u waves in the last group, %u devices",
	    (unsigned long long)cc->c.id, ro->wave, ro->released);
	fbxi_cmd_maybe_done(cc);
}

static void
ro_pause(struct fbx_engine *e, struct cmdc *cc, const char *actor,
    const char *why)
{
	cc->c.ro.state = FBX_RO_PAUSED;
	snprintf(cc->c.ro.note, sizeof(cc->c.ro.note), "%s", why);
	fbxi_cmd_touch(cc);
	emit_event(e, FBX_EV_ROLLOUT_PAUSED, cc->c.org, fbxi_reason_of(&cc->c),
	    actor, cc->c.id, cc->w_fail, cc->c.ro.wave_size, "%s", why);
}

/* ro_judge - a running wave: pause at the failure threshold (judged once
 * min_results are in), bake when every device of the wave settled with
 * enough successes. */
static void
ro_judge(struct fbx_engine *e, struct cmdc *cc)
{
	const struct fbx_rollout_plan *p = &cc->c.rollout;
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint32_t results = cc->w_ok + cc->w_fail;
	char why[FBX_NOTE_MAX];

	if (!cc->judge_off && results >= p->min_results &&
	    (uint64_t)cc->w_fail * FBX_PPM >= (uint64_t)p->failure_ppm * results) {
		snprintf(why, sizeof(why),
		    "failure threshold: %u of %u results in wave %u failed "
		    "(most with code %u)",
		    cc->w_fail, results, ro->wave, cc->w_topcode);
		ro_pause(e, cc, "engine", why);
		if (cc->w_topcode_n > 0 && cc->w_fail >= p->min_results)
			emit_event(e, FBX_EV_FAILURE_SPIKE, cc->c.org,
			    fbxi_reason_of(&cc->c), "engine", cc->c.id, cc->w_fail,
			    results,
			    "delivery failures spike with code %u: rollout "
			    "paused",
			    cc->w_topcode);
		return;
	}
	if (cc->w_settled < ro->wave_size)
		return;
	/* success is judged on the results that came back: devices still
	 * offline (pending) settle the wave without counting against it */
	if (!cc->judge_off &&
	    (results == 0 ||
	        (uint64_t)cc->w_ok * FBX_PPM <
	            (uint64_t)p->success_ppm * results)) {
		snprintf(why, sizeof(why),
		    "wave %u: %u of %u results succeeded, below the %u ppm "
		    "needed to advance",
		    ro->wave, cc->w_ok, results, p->success_ppm);
		ro_pause(e, cc, "engine", why);
		return;
	}
	ro->state = FBX_RO_BAKING;
	ro->bake_until_ms = e->now + (int64_t)p->bake_s * 1000;
	fbxi_cmd_touch(cc);
}

/* fbxi_rollout_step - judge running waves and release baked ones, for
 * every active rollout: however many there are, none is left behind. */
void
fbxi_rollout_step(struct fbx_engine *e)
{
	size_t pos = 0, n = 0, cap = 0;
	uint64_t k, v;
	struct cmdc **todo = NULL;

	/* collect first: releasing may grow queues but never the cache;
	 * only the staged rollouts, not every open command */
	while (fbxi_idmap_next(&e->rollouts, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (cc->c.state != FBX_C_ACTIVE || cc->expired || cc->cancelling)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct cmdc **nt = realloc(todo, ncap * sizeof(*nt));
			if (nt == NULL) {
				free(todo);
				fbxi_set_err(e, FBX_ENOMEM);
				return;
			}
			todo = nt;
			cap = ncap;
		}
		todo[n++] = cc;
	}
	for (size_t i = 0; i < n && fbxi_err(e) == FBX_OK; i++) {
		struct cmdc *cc = todo[i];
		switch (cc->c.ro.state) {
		case FBX_RO_RUNNING:
			ro_judge(e, cc);
			break;
		case FBX_RO_BAKING:
			if (e->now >= cc->c.ro.bake_until_ms)
				ro_next(e, cc);
			break;
		default:
			break;
		}
	}
	free(todo);
}

void
fbxi_handle_rollout(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_command loaded;
	struct cmdc *cc = fbxi_cmd_find(e, req->u.rollout.command_id);
	const struct fbx_command *c;
	struct fbx_rollout_status *ro;
	char why[FBX_NOTE_MAX];
	int op = req->u.rollout.op, rc;

	memset(&loaded, 0, sizeof(loaded));
	if (cc != NULL) {
		c = &cc->c;
	} else {
		rc = fbx_store_cmd_get(e->txn, req->u.rollout.command_id, &loaded);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			fbxi_set_err(e, rc);
			return;
		}
		c = rc == FBX_OK ? &loaded : NULL;
	}
	if (c == NULL || strcmp(c->org, req->org) != 0) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no command %llu in organisation '%s'",
		    (unsigned long long)req->u.rollout.command_id, req->org);
		goto out;
	}
	if (!c->rollout.enabled) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
		    "command %llu has no rollout plan",
		    (unsigned long long)c->id);
		goto out;
	}
	if (op != FBX_ROP_STATUS && cc == NULL) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
		    "rollout %llu is finished", (unsigned long long)c->id);
		goto out;
	}
	if (op != FBX_ROP_STATUS) {
		ro = &cc->c.ro;
		switch (op) {
		case FBX_ROP_PAUSE:
			if (ro->state != FBX_RO_RUNNING &&
			    ro->state != FBX_RO_BAKING &&
			    ro->state != FBX_RO_NONE)
				goto bad_state;
			fbxi_note_printf(why, sizeof(why), "paused by %s: %s",
			    req->actor, req->u.rollout.note);
			ro_pause(e, cc, req->actor, why);
			break;
		case FBX_ROP_RESUME:
			if (ro->state != FBX_RO_PAUSED)
				goto bad_state;
			/* the operator has judged this wave */
			cc->judge_off = 1;
			ro->state = FBX_RO_RUNNING;
			fbxi_note_printf(ro->note, sizeof(ro->note), "resumed by %s: %s",
			    req->actor, req->u.rollout.note);
			fbxi_cmd_touch(cc);
			emit_event(e, FBX_EV_ROLLOUT_RESUMED, cc->c.org,
			    fbxi_reason_of(&cc->c), req->actor, cc->c.id, 0, 0,
			    "%s", ro->note);
			break;
		case FBX_ROP_CANCEL:
			if (ro->state == FBX_RO_DONE ||
			    ro->state == FBX_RO_CANCELLED)
				goto bad_state;
			ro->state = FBX_RO_CANCELLED;
			fbxi_note_printf(ro->note, sizeof(ro->note),
			    "cancelled by %s: %s", req->actor,
			    req->u.rollout.note);
			fbxi_cmd_cancel(e, cc);
			if (cc->c.state == FBX_C_EXPANDING) {
				fbxi_xlist_remove(e, cc);
				cc->c.state = FBX_C_ACTIVE;
			}
			fbxi_cmd_touch(cc);
			FBX_LOGI("rollout %llu %s", (unsigned long long)cc->c.id,
			    ro->note);
			fbxi_cmd_maybe_done(cc);
			break;
		case FBX_ROP_APPROVE:
			if (ro->state != FBX_RO_AWAITING_APPROVAL)
				goto bad_state;
			fbxi_note_printf(ro->note, sizeof(ro->note),
			    "group '%s' approved by %s: %s",
			    cc->c.rollout.groups[cc->c.cursor_idx], req->actor,
			    req->u.rollout.note);
			FBX_LOGI("rollout %llu: %s", (unsigned long long)cc->c.id,
			    ro->note);
			ro_advance_stage(e, cc);
			break;
		default:
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL, "unknown rollout operation");
			goto out;
		}
	}
	if (op != FBX_ROP_STATUS) {
		static const char *const opn[] = { "", "status", "pause",
			"resume", "cancel", "approve" };
		char action[32];
		snprintf(action, sizeof(action), "rollout.%s",
		    op > 0 && op <= 5 ? opn[op] : "?");
		fbxi_audit(e, req->org, req->actor, action, req->u.rollout.note,
		    "{\"command\":%llu,\"state\":\"%s\",\"wave\":%u,"
		    "\"released\":%u}",
		    (unsigned long long)c->id,
		    fbx_rollout_state_name(c->ro.state), c->ro.wave,
		    c->ro.released);
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rollout.command_id = c->id;
	rep.u.rollout.plan = c->rollout;
	rep.u.rollout.st = c->ro;
	fbxi_console_reply(e, in, &rep);
	goto out;
bad_state:
	fbxi_console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
	    "rollout %llu is %s", (unsigned long long)cc->c.id,
	    fbx_rollout_state_name(cc->c.ro.state));
out:
	fbx_command_clear(&loaded);
}


/* ------------------------------------- certificate-aware trips (certs.c) */

/* fbxi_breaker_trip_global - open the global breaker ("*") of reason
 * with a note, unless it is open already; alert (EV_BREAKER_TRIPPED) and
 * audit (org "*", action breaker.trip, params naming cert when given).
 * Settling commands of the reason are held, as by a trip by hand; held
 * commands are not touched. A global breaker in shadow mode is
 * opened too but holds nothing: that is logged.
 * @param[out] tripped 1 if it was closed and is open now, else 0.
 * @return FBX_OK or a store error (also latched by the caller's turn). */
int
fbxi_breaker_trip_global(struct fbx_engine *e, const char *reason,
    const char *who, const char *note, const char *cert, int *tripped)
{
	struct fbxi_breaker g;
	int rc;

	*tripped = 0;
	rc = fbxi_brk_load(e->txn, "*", reason, &g, NULL);
	if (rc != FBX_OK)
		return rc;
	if (g.state == FBX_BS_OPEN)
		return FBX_OK;
	fbxi_breaker_trip(&g, e->now, who, note, 0);
	/* what of the incident is still settling is held too, as for a
	 * trip by hand */
	(void)trip_hold(e, NULL, reason, &g);
	rc = fbxi_brk_save(e->txn, "*", reason, &g);
	if (rc != FBX_OK)
		return rc;
	*tripped = 1;
	if (g.cfg.shadow)
		FBX_LOGW("global breaker */%s is in shadow mode: opened for "
		         "%s, but it holds nothing until it is set enforcing",
		    reason, cert != NULL ? cert : who);
	emit_event(e, FBX_EV_BREAKER_TRIPPED, "*", reason, who, 0, 0, 0, "%s",
	    note);
	if (cert != NULL)
		fbxi_audit(e, "*", who, "breaker.trip", note,
		    "{\"breaker\":\"*/%s\",\"certificate\":\"%s\"}", reason,
		    cert);
	else
		fbxi_audit(e, "*", who, "breaker.trip", note,
		    "{\"breaker\":\"*/%s\"}", reason);
	return fbxi_err(e);
}
