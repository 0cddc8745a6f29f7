/*
 * safety.c: see safety.h. Arithmetic is in 64 bits and shares are in
 * parts per million so no threshold depends on floating point rounding,
 * except the token bucket, which only paces.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "safety.h"

/* ---- sliding window ---------------------------------------------------- */

static int64_t
bucket_ms(const struct fbxi_window *w)
{
	int64_t ms = (int64_t)w->window_s * 1000 / FBXI_WIN_BUCKETS;

	return ms > 0 ? ms : 1;
}

void
fbxi_window_init(struct fbxi_window *w, uint32_t window_s)
{
	memset(w, 0, sizeof(*w));
	w->window_s = window_s ? window_s : 600;
}

/* advance - zero the buckets that fell out of the window. */
static void
advance(struct fbxi_window *w, int64_t now_ms)
{
	int64_t idx = now_ms / bucket_ms(w);

	if (idx <= w->last_idx)
		return;
	if (idx - w->last_idx >= FBXI_WIN_BUCKETS) {
		memset(w->b, 0, sizeof(w->b));
	} else {
		for (int64_t i = w->last_idx + 1; i <= idx; i++)
			w->b[i % FBXI_WIN_BUCKETS] = 0;
	}
	w->last_idx = idx;
}

int64_t
fbxi_window_add(struct fbxi_window *w, int64_t now_ms, uint32_t n)
{
	uint32_t *slot;

	advance(w, now_ms);
	slot = &w->b[w->last_idx % FBXI_WIN_BUCKETS];
	*slot = UINT32_MAX - *slot < n ? UINT32_MAX : *slot + n;
	/* the newest bucket, which is now's unless the clock went back */
	return now_ms / bucket_ms(w) == w->last_idx
	    ? now_ms
	    : w->last_idx * bucket_ms(w);
}

uint64_t
fbxi_window_sum(struct fbxi_window *w, int64_t now_ms)
{
	uint64_t s = 0;

	advance(w, now_ms);
	for (int i = 0; i < FBXI_WIN_BUCKETS; i++)
		s += w->b[i];
	return s;
}

int
fbxi_window_holds(struct fbxi_window *w, int64_t at_ms, int64_t now_ms)
{
	int64_t idx = at_ms / bucket_ms(w);

	advance(w, now_ms);
	return at_ms > 0 && idx <= w->last_idx &&
	    idx > w->last_idx - FBXI_WIN_BUCKETS;
}

int
fbxi_window_after(const struct fbxi_window *w, int64_t at_ms)
{
	return w->last_idx > at_ms / bucket_ms(w);
}

int
fbxi_window_held_at(uint32_t window_s, int64_t at_ms, int64_t then_ms)
{
	struct fbxi_window w;
	int64_t idx, then;

	fbxi_window_init(&w, window_s);
	idx = at_ms / bucket_ms(&w);
	then = then_ms / bucket_ms(&w);
	return at_ms > 0 && idx <= then && idx > then - FBXI_WIN_BUCKETS;
}

void
fbxi_window_sub(
    struct fbxi_window *w, int64_t at_ms, int64_t now_ms, uint32_t n)
{
	uint32_t *slot;

	if (!fbxi_window_holds(w, at_ms, now_ms))
		return;
	slot = &w->b[(at_ms / bucket_ms(w)) % FBXI_WIN_BUCKETS];
	*slot = *slot < n ? 0 : *slot - n;
}

/* ---- circuit breakers -------------------------------------------------- */

void
fbxi_breaker_defaults(struct fbx_breaker_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->window_s = 600;
	cfg->min_count = 1;
	cfg->share_ppm = 10000; /* 1% */
	cfg->baseline_mult = 10;
	cfg->global_orgs = 3;
	cfg->shadow = 0;
	cfg->settle_s = 30;
	cfg->min_samples = 100;
	cfg->global_share_ppm = 10000; /* 1% of every enrolled device */
}

void
fbxi_breaker_cfg_merge(
    struct fbx_breaker_cfg *cfg, const struct fbx_breaker_cfg *set)
{
	if (set->window_s)
		cfg->window_s = set->window_s;
	if (set->min_count)
		cfg->min_count = set->min_count;
	if (set->share_ppm)
		cfg->share_ppm = set->share_ppm;
	if (set->baseline_mult)
		cfg->baseline_mult = set->baseline_mult;
	if (set->global_orgs)
		cfg->global_orgs = set->global_orgs;
	if (set->shadow == 1)
		cfg->shadow = 1;
	else if (set->shadow == 2)
		cfg->shadow = 0;
	if (set->settle_set)
		cfg->settle_s = set->settle_s;
	if (set->min_samples)
		cfg->min_samples = set->min_samples;
	if (set->global_share_ppm)
		cfg->global_share_ppm = set->global_share_ppm;
}

void
fbxi_breaker_init(struct fbxi_breaker *b, const struct fbx_breaker_cfg *cfg)
{
	memset(b, 0, sizeof(*b));
	b->version = FBXI_BRK_VERSION;
	b->state = FBX_BS_CLOSED;
	b->cfg = *cfg;
	b->cfg.settle_set = 0;
	fbxi_window_init(&b->win, cfg->window_s);
	fbxi_window_init(&b->dwin, cfg->window_s);
}

/* roll_baseline - at the end of each baseline period (one window long)
 * fold the devices admitted in it into the moving average (3/4 old, 1/4
 * new); quiet periods that passed unseen fold in as zeros. A period that
 * tripped, or would have in shadow mode, is not folded in, so an incident
 * does not raise the bar for the next one. */
static void
roll_baseline(struct fbxi_breaker *b, int64_t now_ms)
{
	int64_t win = (int64_t)b->cfg.window_s * 1000;
	int64_t periods;

	if (b->baseline_at == 0) {
		b->baseline_at = now_ms;
		return;
	}
	if (win <= 0 || now_ms - b->baseline_at < win)
		return;
	periods = (now_ms - b->baseline_at) / win;
	if (!b->period_spiked && b->state == FBX_BS_CLOSED) {
		b->baseline_x1000 =
		    (b->baseline_x1000 * 3 + b->period_count * 1000) / 4;
		b->baseline_samples += b->period_count;
	}
	for (int64_t i = 1; i < periods && i < 64; i++)
		b->baseline_x1000 = b->baseline_x1000 * 3 / 4;
	b->baseline_at += periods * win;
	b->period_count = 0;
	b->period_spiked = 0;
}

/* fbxi_breaker_allowance - max(min_count, share of the fleet): 1 device
 * in a 50-device organisation, 3 in one of 308, 200 in one of 20,000.
 * An organisation whose legitimate rate is higher gets baseline_mult
 * times its measured baseline instead, once that baseline has seen
 * min_samples devices (a sample size apart from the allowance: a young
 * baseline raises nothing). */
uint32_t
fbxi_breaker_allowance(struct fbxi_breaker *b, int64_t now_ms, uint32_t fleet)
{
	uint64_t cap = (uint64_t)fleet * b->cfg.share_ppm / FBX_PPM;

	roll_baseline(b, now_ms);
	if (cap < b->cfg.min_count)
		cap = b->cfg.min_count;
	if (cap < 1)
		cap = 1;
	if (b->baseline_x1000 > 0 && b->cfg.baseline_mult > 0 &&
	    b->baseline_samples >= b->cfg.min_samples) {
		uint64_t base = b->baseline_x1000 * b->cfg.baseline_mult / 1000;
		if (base > cap)
			cap = base;
	}
	return cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
}

void
fbxi_breaker_observe(struct fbxi_breaker *b, int64_t now_ms, uint32_t ndev)
{
	double dt = 0, ref, s, age;

	if (b->rate_since_ms <= 0 || now_ms < b->rate_since_ms)
		b->rate_since_ms = now_ms;
	if (b->cusum_at_ms > 0 && now_ms > b->cusum_at_ms)
		dt = (double)(now_ms - b->cusum_at_ms) / 1000.0;
	/* the reference: what the usual rate explains, plus a slack; the
	 * arrival is not part of its own reference */
	ref = 2.0 * b->rate + FBXI_CUSUM_SLACK;
	s = b->cusum - dt * ref;
	if (s <= 0.0) {
		/* the excess drained: a run (a candidate onset) starts with
		 * this arrival */
		s = 0.0;
		b->cusum_from_ms = now_ms;
	}
	b->cusum = s + (double)ndev;
	/* the usual rate: the mean while the breaker is young, then a
	 * moving average (first order in dt) */
	age = (double)(now_ms - b->rate_since_ms) / 1000.0;
	if (age < FBXI_RATE_TAU_S) {
		b->rate_n += (double)ndev;
		b->rate = b->rate_n /
		    (age > FBXI_RATE_FLOOR_S ? age : FBXI_RATE_FLOOR_S);
	} else {
		b->rate = b->rate / (1.0 + dt / FBXI_RATE_TAU_S) +
		    (double)ndev / FBXI_RATE_TAU_S;
	}
	b->cusum_at_ms = now_ms;
}

int
fbxi_breaker_global_admit(struct fbxi_breaker *g, int64_t now_ms,
    uint32_t ndev, uint64_t total)
{
	uint64_t cap;

	fbxi_window_add(&g->dwin, now_ms, ndev);
	if (g->state == FBX_BS_OPEN || g->cfg.global_share_ppm == 0 ||
	    total == 0)
		return 0;
	cap = total * g->cfg.global_share_ppm / FBX_PPM;
	if (cap < 1)
		cap = 1;
	return fbxi_window_sum(&g->dwin, now_ms) > cap;
}

int64_t
fbxi_breaker_settle_ms(const struct fbxi_breaker *b)
{
	return (int64_t)b->cfg.settle_s * 1000;
}

int
fbxi_breaker_admit(struct fbxi_breaker *b, int64_t now_ms, uint32_t ndev,
    uint32_t fleet, int *tripped)
{
	uint32_t allow;
	uint64_t sum;

	*tripped = 0;
	if (b->state == FBX_BS_OPEN && b->cfg.shadow) {
		/* opened by hand in shadow mode: it holds nothing, as it
		 * holds nothing of what settles (trip_hold), but it would;
		 * what it admits is counted in its window, not in the
		 * baseline (an open breaker's period is not folded in) */
		fbxi_window_add(&b->win, now_ms, ndev);
		b->would_hold++;
		return FBXI_ADMIT_SHADOW;
	}
	if (b->state == FBX_BS_OPEN)
		return FBXI_HOLD;
	allow = fbxi_breaker_allowance(b, now_ms, fleet);
	sum = fbxi_window_sum(&b->win, now_ms);
	if (sum + ndev <= allow) {
		fbxi_window_add(&b->win, now_ms, ndev);
		b->period_count += ndev;
		return FBXI_ADMIT;
	}
	b->period_spiked = 1;
	if (b->cfg.shadow) {
		fbxi_window_add(&b->win, now_ms, ndev);
		b->would_hold++;
		return FBXI_ADMIT_SHADOW;
	}
	*tripped = 1;
	return FBXI_HOLD;
}

uint32_t
fbxi_breaker_global_orgs(const struct fbxi_breaker *g)
{
	return g->cfg.global_orgs ? g->cfg.global_orgs : 3;
}

int
fbxi_breaker_note_org_trip(struct fbxi_breaker *g, int64_t now_ms)
{
	uint32_t need = fbxi_breaker_global_orgs(g);

	if (g->state == FBX_BS_OPEN)
		return 0;
	fbxi_window_add(&g->win, now_ms, 1);
	return fbxi_window_sum(&g->win, now_ms) >= need;
}

void
fbxi_breaker_trip(struct fbxi_breaker *b, int64_t now_ms, const char *who,
    const char *note, int manual)
{
	b->state = FBX_BS_OPEN;
	b->manual = (uint8_t)(manual != 0);
	b->tripped_ms = now_ms;
	/* the onset: the start of the run that made the change point rise,
	 * if one is running (its excess has not drained by now: drain it to
	 * the trip's time first, as the next arrival would); else now */
	if (b->cusum > 0.0 && b->cusum_from_ms > 0 &&
	    b->cusum_from_ms <= now_ms &&
	    b->cusum - (double)(now_ms - b->cusum_at_ms) / 1000.0 *
	            (2.0 * b->rate + FBXI_CUSUM_SLACK) >
	        0.0)
		b->onset_ms = b->cusum_from_ms;
	else
		b->onset_ms = now_ms;
	b->trips++;
	snprintf(b->tripped_by, sizeof(b->tripped_by), "%s", who);
	snprintf(b->note, sizeof(b->note), "%s", note);
}

/* forget_incident - a fresh window, change point and baseline period:
 * what they counted belonged to the incident. The usual rate stays: the
 * incident never taught it. */
static void
forget_incident(struct fbxi_breaker *b, int64_t now_ms)
{
	fbxi_window_init(&b->win, b->cfg.window_s);
	fbxi_window_init(&b->dwin, b->cfg.window_s);
	b->cusum = 0.0;
	b->cusum_from_ms = 0;
	b->cusum_at_ms = now_ms;
	b->baseline_at = now_ms;
	b->period_count = 0;
	b->period_spiked = 0;
}

int
fbxi_breaker_follow_global(struct fbxi_breaker *b,
    const struct fbxi_breaker *g, int64_t now_ms)
{
	if (b->global_resets == g->global_resets)
		return 0;
	if (b->state != FBX_BS_OPEN)
		forget_incident(b, now_ms);
	b->global_resets = g->global_resets;
	return 1;
}

void
fbxi_breaker_reset(struct fbxi_breaker *b, int64_t now_ms, const char *who,
    const char *note)
{
	b->state = FBX_BS_CLOSED;
	b->manual = 0;
	b->held = 0;
	b->reset_ms = now_ms;
	forget_incident(b, now_ms);
	/* tripped_by/tripped_ms keep telling who opened it (or made it
	 * theirs by tripping it again while open) and when it tripped; the
	 * note says who closed it */
	snprintf(b->note, sizeof(b->note), "reset by %.64s: %.80s", who, note);
}

/* ---- blast-radius limits ----------------------------------------------- */

void
fbxi_limit_defaults(int type, struct fbxi_limit_cfg *out)
{
	memset(out, 0, sizeof(*out));
	out->version = FBXI_LIM_VERSION;
	out->window_s = 3600;
	switch (type) {
	case FBX_CMD_WIPE:
		out->max_count = 25;
		out->max_share_ppm = 10000; /* 1% */
		break;
	case FBX_CMD_CLEAR_PASSCODE:
		out->max_count = 100;
		out->max_share_ppm = 20000;
		break;
	case FBX_CMD_LOCK:
	case FBX_CMD_START_LOST_MODE:
		out->max_count = 1000;
		out->max_share_ppm = 100000; /* 10% */
		break;
	case FBX_CMD_REMOVE_APP:
		out->max_share_ppm = 500000;
		break;
	default:
		/* unlock, stop_lost_mode, query, restart, install_app,
		 * set_policy, os_update: no limit by default (staged waves
		 * are the tool for the big harmless ones) */
		break;
	}
}

uint32_t
fbxi_limit_cap(const struct fbxi_limit_cfg *c, uint32_t fleet)
{
	uint64_t cap = UINT32_MAX;

	if (c->max_count > 0)
		cap = c->max_count;
	if (c->max_share_ppm > 0) {
		uint64_t s = (uint64_t)fleet * c->max_share_ppm / FBX_PPM;
		if (s < 1)
			s = 1;
		if (s < cap)
			cap = s;
	}
	return (uint32_t)cap;
}

/* ---- token bucket ------------------------------------------------------ */

uint32_t
fbxi_bucket_take(struct fbxi_bucket *b, int64_t now_ms, uint32_t rate,
    uint32_t burst, uint32_t want)
{
	double cap;

	if (rate == 0)
		return want;
	cap = burst > 0 ? burst : rate;
	if (b->at_ms == 0) {
		b->tokens = cap;
	} else if (now_ms > b->at_ms) {
		b->tokens += (double)(now_ms - b->at_ms) * rate / 1000.0;
		if (b->tokens > cap)
			b->tokens = cap;
	}
	b->at_ms = now_ms;
	if (b->tokens < 1.0)
		return 0;
	if ((double)want > b->tokens)
		want = (uint32_t)b->tokens;
	b->tokens -= want;
	return want;
}

void
fbxi_bucket_give(
    struct fbxi_bucket *b, uint32_t rate, uint32_t burst, uint32_t n)
{
	double cap;

	if (rate == 0 || n == 0)
		return;
	cap = burst > 0 ? burst : rate;
	b->tokens += n;
	if (b->tokens > cap)
		b->tokens = cap;
}

/* ---- staged rollouts --------------------------------------------------- */

void
fbxi_rollout_normalize(struct fbx_rollout_plan *p)
{
	if (p->first_count == 0 && p->first_share_ppm == 0)
		p->first_share_ppm = 10000; /* 1% */
	if (p->growth_x100 < 100)
		p->growth_x100 = 200;
	if (p->success_ppm == 0 || p->success_ppm > FBX_PPM)
		p->success_ppm = 950000;
	if (p->failure_ppm == 0 || p->failure_ppm > FBX_PPM)
		p->failure_ppm = 100000;
	if (p->min_results == 0)
		p->min_results = 20;
}

uint32_t
fbxi_rollout_wave(const struct fbx_rollout_plan *p, uint32_t total,
    uint32_t released, uint32_t wave, uint32_t prev)
{
	uint64_t n;

	if (released >= total)
		return 0;
	if (wave == 0 || prev == 0) {
		n = p->first_count;
		if (n == 0)
			n = (uint64_t)total * p->first_share_ppm / FBX_PPM;
	} else {
		n = (uint64_t)prev * p->growth_x100 / 100;
		/* small waves must still grow when growth is above x1 */
		if (p->growth_x100 > 100 && n <= prev)
			n = (uint64_t)prev + 1;
	}
	if (n < 1)
		n = 1;
	if (p->max_wave > 0 && n > p->max_wave)
		n = p->max_wave;
	if (n > total - released)
		n = total - released;
	return (uint32_t)n;
}

size_t
fbxi_rollout_plan_waves(const struct fbx_rollout_plan *p, uint32_t total,
    uint32_t *out, size_t max)
{
	uint32_t released = 0, prev = 0;
	size_t n = 0;

	while (released < total && n < max) {
		uint32_t w = fbxi_rollout_wave(p, total, released,
		    (uint32_t)n, prev);
		if (w == 0)
			break;
		out[n++] = w;
		released += w;
		prev = w;
	}
	return n;
}

/* ------------------------------------------------------ alert commands */

void
fbxi_alert_gate_init(
    struct fbxi_alert_gate *g, unsigned max_running, int64_t min_interval_ms)
{
	memset(g, 0, sizeof(*g));
	g->max_running = max_running;
	g->min_interval_ms = min_interval_ms;
}

int
fbxi_alert_admit(struct fbxi_alert_gate *g, int kind, const char *org,
    const char *reason, int64_t now_ms, unsigned running, uint64_t *dropped)
{
	size_t i, oldest = 0;
	int64_t last;

	for (i = 0; i < FBXI_ALERT_KEYS; i++) {
		if (g->k[i].last_ms != 0 && g->k[i].kind == kind &&
		    strcmp(g->k[i].org, org) == 0 &&
		    strcmp(g->k[i].reason, reason) == 0)
			break;
		if (g->k[i].last_ms < g->k[oldest].last_ms)
			oldest = i;
	}
	last = i < FBXI_ALERT_KEYS ? g->k[i].last_ms : 0;
	/* a clock stepped back counts as an interval passed */
	if (running >= g->max_running ||
	    (last != 0 && now_ms >= last &&
	        now_ms - last < g->min_interval_ms)) {
		if (i < FBXI_ALERT_KEYS)
			g->k[i].dropped++;
		g->dropped_total++;
		return 0;
	}
	if (i == FBXI_ALERT_KEYS) {
		i = oldest;
		memset(&g->k[i], 0, sizeof(g->k[i]));
		g->k[i].kind = kind;
		snprintf(g->k[i].org, sizeof(g->k[i].org), "%s", org);
		snprintf(g->k[i].reason, sizeof(g->k[i].reason), "%s", reason);
	}
	g->k[i].last_ms = now_ms != 0 ? now_ms : 1;
	*dropped = g->k[i].dropped;
	g->k[i].dropped = 0;
	return 1;
}
