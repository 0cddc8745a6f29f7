/*
 * breaker.c: the circuit breakers as the engine applies them: the breaker
 * records, the gate an automatic lock-type command passes in the turn's
 * transaction (held, or admitted to settle), trips of an organisation's
 * and of the global breaker, the held commands and their release or
 * discard, BreakerRequest and the held list. The decisions are safety.c's.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs.h"
#include "engine_int.h"

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
	uint32_t period_spiked, pad2_; /* v3: global_resets */
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

/* shadow_alert_due - a shadow breaker's would-trip alert is due (at most
 * one per window): @return 1, and it is counted as raised now. */
static int
shadow_alert_due(struct fbx_engine *e, struct fbxi_breaker *b)
{
	if (e->now - b->shadow_alerted_ms < (int64_t)b->cfg.window_s * 1000)
		return 0;
	b->shadow_alerted_ms = e->now;
	return 1;
}

/* global_would - a global breaker in shadow mode would have held this
 * command (it is open, or it would trip now): counted in would_hold, and
 * alerted as an organisation breaker's. */
static void
global_would(struct fbx_engine *e, struct fbxi_breaker *g, const char *reason,
    uint64_t count, uint64_t limit, const char *why)
{
	g->would_hold++;
	if (shadow_alert_due(e, g))
		emit_event(e, FBX_EV_BREAKER_WOULD_TRIP, "*", reason, "engine",
		    0, count, limit,
		    "shadow mode: the global breaker would hold: %s", why);
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
	if (g.state == FBX_BS_OPEN)
		global_would(e, &g, reason, 0, 0, "it is open");
	/* the global breaker was reset since this organisation's last
	 * arrival: the incident's counts go (saved with b below) */
	(void)fbxi_breaker_follow_global(&b, &g, e->now);
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
		if (!fbxi_breaker_note_org_trip(&g, e->now)) {
			/* the global breaker stays as it is */
		} else if (g.cfg.shadow) {
			global_would(e, &g, reason,
			    fbxi_window_sum(&g.win, e->now),
			    fbxi_breaker_global_orgs(&g),
			    "organisations tripped on the reason in its "
			    "window");
		} else {
			uint64_t n = fbxi_window_sum(&g.win, e->now);
			snprintf(note, sizeof(note),
			    "%llu organisations tripped on '%s' within %us: "
			    "an upstream failure, not attacks on devices",
			    (unsigned long long)n, reason, g.cfg.window_s);
			trip_global(e, &g, reason, note, n, g.cfg.global_orgs);
		}
	} else if (v != FBXI_HOLD &&
	    fbxi_breaker_global_admit(&g, e->now, ndev, e->fleet_total)) {
		/* the fleet-wide rule: the same reason over a share of every
		 * enrolled device, however it is spread */
		char note[FBX_NOTE_MAX];
		uint64_t n = fbxi_window_sum(&g.dwin, e->now);
		uint64_t cap = e->fleet_total * g.cfg.global_share_ppm / FBX_PPM;
		if (g.cfg.shadow) {
			global_would(e, &g, reason, n, cap,
			    "devices of the reason pass its share of the "
			    "fleet");
		} else {
			snprintf(note, sizeof(note),
			    "%llu automatic %s devices for '%s' in %us pass "
			    "%u ppm of the %llu enrolled devices",
			    (unsigned long long)n, fbx_cmd_type_name(c->type),
			    reason, g.cfg.window_s, g.cfg.global_share_ppm,
			    (unsigned long long)e->fleet_total);
			trip_global(e, &g, reason, note, n, cap);
			/* this command is the one that passed it */
			snprintf(c->held_by, sizeof(c->held_by), "*/%s",
			    reason);
			snprintf(c->note, sizeof(c->note),
			    "held: global breaker for '%s' is open", reason);
			g.held++;
			*held = 1;
		}
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
		if (v == FBXI_ADMIT_SHADOW && shadow_alert_due(e, &b)) {
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

struct brk_list_ctx {
	struct fbx_engine *e;
	struct fbx_breaker_info *v;
	uint32_t *gres; /* v[i]'s record's global_resets */
	size_t n, cap;
	const char *reason; /* filter, "" = all */
	const char *org;    /* the request's (held_in_org) */
	uint32_t fleet;
	int err;
};

/* held_count - commands now held by breaker key "org/reason"; of them,
 * organisation org's in *in_org (when not NULL). */
static uint64_t
held_count_in(struct fbx_engine *e, const char *key, const char *org,
    uint64_t *in_org)
{
	size_t pos = 0;
	uint64_t k, v, n = 0, m = 0;

	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		if (cc->c.state == FBX_C_HELD &&
		    strcmp(cc->c.held_by, key) == 0) {
			n++;
			m += org != NULL && strcmp(cc->c.org, org) == 0;
		}
	}
	if (in_org != NULL)
		*in_org = m;
	return n;
}

static uint64_t
held_count(struct fbx_engine *e, const char *key)
{
	return held_count_in(e, key, NULL, NULL);
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
		uint32_t *ng = realloc(l->gres, ncap * sizeof(*ng));
		if (ng == NULL) {
			l->err = FBX_ENOMEM;
			return 1;
		}
		l->gres = ng;
		l->cap = ncap;
	}
	l->gres[l->n] = b.global_resets;
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
	o->held = held_count_in(l->e, hk, l->org, &o->held_in_org);
	if (strcmp(o->org, "*") != 0)
		o->held_in_org = o->held;
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

/* release_held - a held command goes on after a reset: through the other
 * breaker of its reason if that one is still open (its organisation's
 * after a global reset; the global one after its organisation's: an open
 * global breaker holds the reason in every organisation), and through
 * the blast-radius limit. */
int
fbxi_release_held(struct fbx_engine *e, struct cmdc *cc, const char *who,
    const char *note, int64_t at_ms, int *refused)
{
	struct fbx_command *c = &cc->c;
	struct count_ctx k;
	uint32_t fleet = 0;
	int rc;

	*refused = 0;
	{
		/* the other breaker of the reason: the organisation's after
		 * a global reset, the global one after the organisation's */
		const char *reason = fbxi_reason_of(c);
		const char *other = c->held_by[0] == '*' ? c->org : "*";
		struct fbxi_breaker b;
		rc = fbxi_brk_load(e->txn, other, reason, &b, NULL);
		if (rc != FBX_OK)
			return rc;
		if (b.state == FBX_BS_OPEN && !b.cfg.shadow) {
			int global = other[0] == '*';
			snprintf(c->held_by, sizeof(c->held_by), "%s/%s", other,
			    reason);
			if (global)
				fbxi_note_printf(c->note, sizeof(c->note),
				    "held: global breaker for '%s' is open "
				    "(breaker %s/%s was reset by %s)",
				    reason, c->org, reason, who);
			else
				fbxi_note_printf(c->note, sizeof(c->note),
				    "held: breaker %s/%s is open (the global "
				    "breaker was reset by %s)",
				    c->org, reason, who);
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
	/* through the limit as it stands now. A command held while it
	 * settled was counted when it was admitted: what the limit's window
	 * still counts of it, also in what a window change carried over,
	 * is not counted again (the command records when, under which
	 * window and generation); a count that left the window, or one
	 * made two window changes ago, is made again, and so is one never
	 * made (no limit then, or held on arrival). */
	rc = fbxi_limit_gate(e, NULL, NULL, c, k.n, fleet);
	snprintf(c->resolved_by, sizeof(c->resolved_by), "%s", who);
	if (rc == FBX_ELIMIT_EXCEEDED) {
		/* discarded: what it still counted is taken back out */
		rc = fbxi_limit_uncount(e, c);
		if (rc != FBX_OK)
			return rc;
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
	int exists = 0, was_open, rc;
	uint32_t nheld = 0;

	memset(&rep, 0, sizeof(rep));
	memset(&l, 0, sizeof(l));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rc = fbx_store_org_devices(e->txn, req->org, &fleet);
	if (rc == FBX_EUNKNOWN_ORG && req->u.breaker.global) {
		/* a global breaker is no organisation's: the one the request
		 * names (the admin scope's placeholder, a form's leftover)
		 * only adds its breakers to the answer, and has none */
		fleet = 0;
		rc = FBX_OK;
	} else if (rc == FBX_EUNKNOWN_ORG) {
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
		was_open = b.state == FBX_BS_OPEN;
		if (was_open) {
			/* already open (the engine's trip, or a person's):
			 * the incident's trip time and onset stay, where a
			 * rollback of it starts; from now on it is held as
			 * a person's trip is, and it is theirs (BY and NOTE;
			 * the engine's trip is in the events and audit) */
			b.manual = 1;
			snprintf(b.tripped_by, sizeof(b.tripped_by), "%s",
			    req->actor);
			snprintf(b.note, sizeof(b.note), "%s",
			    req->u.breaker.note);
		} else {
			fbxi_breaker_trip(
			    &b, e->now, req->actor, req->u.breaker.note, 1);
		}
		/* what of the incident is still settling is held too */
		nheld = trip_hold(e, strcmp(scope, "*") == 0 ? NULL : scope,
		    reason, &b);
		rc = fbxi_brk_save(e->txn, scope, reason, &b);
		if (rc != FBX_OK)
			goto fail;
		emit_event(e, FBX_EV_BREAKER_TRIPPED, scope, reason, req->actor,
		    0, 0, 0, "tripped by hand%s%s: %s",
		    was_open ? " (already open: its trip time and onset kept)"
		             : "",
		    b.cfg.shadow ? " (shadow mode: it holds nothing until set "
		                   "enforcing)"
		                 : "",
		    req->u.breaker.note);
		if (b.cfg.shadow)
			FBX_LOGW("breaker %s/%s is in shadow mode: opened by %s, "
			         "but it holds nothing until it is set "
			         "enforcing (breaker config --enforce)",
			    scope, reason, req->actor);
		fbxi_audit(e, scope, req->actor, "breaker.trip",
		    req->u.breaker.note,
		    "{\"breaker\":\"%s/%s\",\"requested_in\":\"%s\","
		    "\"held\":%u%s}",
		    scope, reason, req->org, nheld,
		    was_open ? ",\"already_open\":true" : "");
		break;
	case FBX_BRK_RESET: {
		size_t pos = 0, nh = 0, caph = 0;
		uint64_t k, v;
		uint32_t released = 0, discarded = 0, refused = 0, again = 0;
		char againp[48] = "", againt[80] = "", certp[96] = "";
		struct cmdc **hv = NULL;
		const struct fbxi_cert *due = NULL;
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
		/* every organisation's closed breaker of the reason starts
		 * afresh too, at its next arrival (or status) */
		if (strcmp(scope, "*") == 0)
			b.global_resets++;
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
				rc = fbxi_limit_uncount(e, &cc->c);
				if (rc != FBX_OK) {
					free(hv);
					goto fail;
				}
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
			else if (cc->c.state == FBX_C_HELD)
				again++; /* by the other breaker of its
				            reason */
		}
		free(hv);
		if (again > 0) {
			snprintf(againp, sizeof(againp), ",\"held_again\":%u",
			    again);
			if (strcmp(scope, "*") == 0)
				snprintf(againt, sizeof(againt),
				    ", %u held again by their organisation's "
				    "breaker, still open",
				    again);
			else
				snprintf(againt, sizeof(againt),
				    ", %u held again by the global breaker, "
				    "still open",
				    again);
		}
		rep.u.breaker.released = released;
		rep.u.breaker.discarded = discarded + refused;
		rep.u.breaker.held_again = again;
		/* a certificate still due opens it again at its next check:
		 * the reset holds only what it released or discarded now */
		if (strcmp(scope, "*") == 0)
			due = fbxi_cert_due(e, reason);
		if (due != NULL) {
			snprintf(rep.u.breaker.cert_due,
			    sizeof(rep.u.breaker.cert_due), "%s", due->name);
			snprintf(certp, sizeof(certp), ",\"cert_due\":\"%s\"",
			    due->name);
			FBX_LOGW("breaker %s reset by %s while certificate %s "
			         "is still due: the certificate check opens it "
			         "again; renew or remove the certificate to "
			         "keep it closed",
			    hk, req->actor, due->name);
		}
		emit_event(e, FBX_EV_BREAKER_RESET, scope, reason, req->actor,
		    0, released + discarded + refused, 0,
		    "reset by hand (%s): %u released, %u discarded, %u "
		    "refused by limits%s: %s",
		    req->u.breaker.on_reset == FBX_RESET_DISCARD ? "discard"
		                                                : "release",
		    released, discarded, refused, againt,
		    req->u.breaker.note);
		fbxi_audit(e, scope, req->actor, "breaker.reset",
		    req->u.breaker.note,
		    "{\"breaker\":\"%s\",\"action\":\"%s\",\"released\":%u,"
		    "\"discarded\":%u,\"refused_by_limit\":%u%s%s}",
		    hk,
		    req->u.breaker.on_reset == FBX_RESET_DISCARD ? "discard"
		                                                : "release",
		    released, discarded, refused, againp, certp);
		FBX_LOGI("breaker %s reset by %s: %u released, %u discarded, "
		         "%u refused by limits%s",
		    hk, req->actor, released, discarded, refused, againt);
		break;
	}
	case FBX_BRK_CONFIGURE:
		/* the settle delay and the global thresholds are read from
		 * the reason's global breaker only: on an organisation's they
		 * would be stored and never used, and the operator would
		 * believe the change made */
		if (strcmp(scope, "*") != 0 &&
		    (req->u.breaker.cfg.settle_set ||
		        req->u.breaker.cfg.global_orgs != 0 ||
		        req->u.breaker.cfg.global_share_ppm != 0)) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL,
			    "%s is a setting of the global breaker only (it "
			    "applies to every organisation): breaker config "
			    "--global --reason %s",
			    req->u.breaker.cfg.settle_set ? "the settle delay"
			    : req->u.breaker.cfg.global_orgs != 0
			        ? "global_orgs"
			        : "global_share",
			    reason);
			return;
		}
		rc = fbxi_brk_load(e->txn, scope, reason, &b, &exists);
		if (rc != FBX_OK)
			goto fail;
		{
			uint32_t old_win = b.cfg.window_s;
			uint8_t was_shadow = b.cfg.shadow;
			fbxi_breaker_cfg_merge(&b.cfg, &req->u.breaker.cfg);
			if (b.state == FBX_BS_OPEN && !was_shadow &&
			    b.cfg.shadow) {
				/* it would stop holding what arrives, silently,
				 * in the middle of its incident */
				fbxi_console_error(e, in, req->request_id,
				    req->kind, FBX_ESTATE,
				    "breaker %s/%s is open: reset it (--release "
				    "or --discard) before shadow mode, which "
				    "holds nothing",
				    scope, reason);
				return;
			}
			if (b.cfg.window_s != old_win) {
				fbxi_window_init(&b.win, b.cfg.window_s);
				fbxi_window_init(&b.dwin, b.cfg.window_s);
			}
			if (b.state == FBX_BS_OPEN && was_shadow &&
			    !b.cfg.shadow) {
				/* enforcing while open: it holds from now on,
				 * what still settles too, as at a trip */
				uint32_t n = trip_hold(e,
				    strcmp(scope, "*") == 0 ? NULL : scope,
				    reason, &b);
				FBX_LOGW("breaker %s/%s set enforcing by %s while "
				         "open: it holds from now on (%u "
				         "settling commands held)",
				    scope, reason, req->actor, n);
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
	l.org = req->org;
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
	/* a closed breaker that has not yet followed a reset of its global
	 * breaker counts nothing of the incident any more: its next
	 * arrival starts its window afresh (fbxi_breaker_follow_global) */
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].org, "*") == 0 ||
		    l.v[i].state == FBX_BS_OPEN)
			continue;
		for (size_t j = 0; j < l.n; j++)
			if (strcmp(l.v[j].org, "*") == 0 &&
			    strcmp(l.v[j].reason, l.v[i].reason) == 0 &&
			    l.gres[j] != l.gres[i])
				l.v[i].window_count = 0;
	}
	free(l.gres);
	l.gres = NULL;
	rep.u.breaker.b = l.v;
	rep.u.breaker.n = l.n;
	fbxi_console_reply(e, in, &rep);
	free(l.v);
	return;
fail:
	free(l.v);
	free(l.gres);
	fbxi_set_err(e, rc);
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
		int want;
		switch (req->u.list_held.which) {
		case FBX_LH_SETTLING:
			want = cc->c.state == FBX_C_SETTLING;
			break;
		case FBX_LH_ROLLOUTS:
			want = cc->c.rollout.enabled &&
			    !fbx_cstate_terminal(cc->c.state);
			break;
		default:
			want = cc->c.state == FBX_C_HELD;
			break;
		}
		if (!want || strcmp(cc->c.org, req->org) != 0 ||
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
