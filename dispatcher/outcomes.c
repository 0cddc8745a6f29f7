/*
 * outcomes.c: delivery outcomes per organisation and command type in
 * hourly slots. See outcomes.h.
 *
 * Each organisation has FBXI_OUT_SLOTS slots per type, indexed by the
 * hour (wall ms / 3,600,000) modulo FBXI_OUT_SLOTS; a slot remembers its
 * hour and is cleared when a later hour reuses it. Organisations are kept
 * in an array sorted by name (allocated on their first outcome).
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "outcomes.h"

#define HOUR_MS 3600000LL

struct slot {
	int64_t hour; /* the hour it counts, -1 = empty */
	uint32_t ok, failed, expired;
};

struct org_out {
	fbx_id org;
	/* per type, allocated with its first outcome (most organisations
	 * use a few types): FBXI_OUT_SLOTS slots each */
	struct slot *s[FBX_CMD_TYPE_COUNT];
	int64_t silent_hour[FBX_CMD_TYPE_COUNT]; /* last hour reported */
	int64_t last_hour; /* the latest hour with an outcome */
};

struct fbxi_outcomes {
	struct org_out **v; /* sorted by org */
	size_t n, cap;
	struct fbxi_outcome_counts total[FBX_CMD_TYPE_COUNT];
};

static void
org_free(struct org_out *x)
{
	for (int t = 0; t < FBX_CMD_TYPE_COUNT; t++)
		free(x->s[t]);
	free(x);
}

int
fbxi_outcomes_new(struct fbxi_outcomes **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? FBX_OK : FBX_ENOMEM;
}

void
fbxi_outcomes_free(struct fbxi_outcomes *o)
{
	if (o == NULL)
		return;
	for (size_t i = 0; i < o->n; i++)
		org_free(o->v[i]);
	free(o->v);
	free(o);
}

static struct org_out *
find(const struct fbxi_outcomes *o, const char *org, size_t *at)
{
	size_t lo = 0, hi = o->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(o->v[mid]->org, org);
		if (c == 0)
			return o->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at != NULL)
		*at = lo;
	return NULL;
}

static struct org_out *
get(struct fbxi_outcomes *o, const char *org)
{
	size_t at = 0;
	struct org_out *x = find(o, org, &at);

	if (x != NULL)
		return x;
	if (o->n == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 16;
		struct org_out **nv = realloc(o->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return NULL;
		o->v = nv;
		o->cap = ncap;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	snprintf(x->org, sizeof(x->org), "%s", org);
	for (int t = 0; t < FBX_CMD_TYPE_COUNT; t++)
		x->silent_hour[t] = -1;
	memmove(&o->v[at + 1], &o->v[at], (o->n - at) * sizeof(*o->v));
	o->v[at] = x;
	o->n++;
	return x;
}

static uint32_t
add_sat(uint32_t a, int64_t d)
{
	int64_t v = (int64_t)a + d;

	if (v < 0)
		return 0;
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int
fbxi_outcomes_add(struct fbxi_outcomes *o, const char *org, int type,
    int64_t d_ok, int64_t d_failed, int64_t d_expired, int64_t now_ms)
{
	struct org_out *x;
	struct slot *s;
	int64_t hour = now_ms / HOUR_MS;

	if (o == NULL || type <= 0 || type >= FBX_CMD_TYPE_COUNT ||
	    (d_ok <= 0 && d_failed <= 0 && d_expired <= 0))
		return FBX_OK;
	x = get(o, org);
	if (x == NULL)
		return FBX_ENOMEM;
	if (x->s[type] == NULL) {
		x->s[type] = calloc(FBXI_OUT_SLOTS, sizeof(struct slot));
		if (x->s[type] == NULL)
			return FBX_ENOMEM;
		for (int i = 0; i < FBXI_OUT_SLOTS; i++)
			x->s[type][i].hour = -1;
	}
	x->last_hour = hour > x->last_hour ? hour : x->last_hour;
	s = &x->s[type][hour % FBXI_OUT_SLOTS];
	if (s->hour != hour) {
		memset(s, 0, sizeof(*s));
		s->hour = hour;
	}
	s->ok = add_sat(s->ok, d_ok > 0 ? d_ok : 0);
	s->failed = add_sat(s->failed, d_failed > 0 ? d_failed : 0);
	s->expired = add_sat(s->expired, d_expired > 0 ? d_expired : 0);
	o->total[type].succeeded += d_ok > 0 ? (uint64_t)d_ok : 0;
	o->total[type].failed += d_failed > 0 ? (uint64_t)d_failed : 0;
	o->total[type].expired += d_expired > 0 ? (uint64_t)d_expired : 0;
	return FBX_OK;
}

/* sum - the slots of x for type within [from_hour, to_hour] */
static void
sum(const struct org_out *x, int type, int64_t from_hour, int64_t to_hour,
    struct fbxi_outcome_counts *c)
{
	memset(c, 0, sizeof(*c));
	for (int i = 0; x != NULL && x->s[type] != NULL && i < FBXI_OUT_SLOTS;
	     i++) {
		const struct slot *s = &x->s[type][i];
		if (s->hour < from_hour || s->hour > to_hour)
			continue;
		c->succeeded += s->ok;
		c->failed += s->failed;
		c->expired += s->expired;
	}
}

void
fbxi_outcomes_window(const struct fbxi_outcomes *o, const char *org,
    int type, int64_t now_ms, struct fbxi_outcome_counts *hour,
    struct fbxi_outcome_counts *day)
{
	const struct org_out *x = o != NULL ? find(o, org, NULL) : NULL;
	int64_t h = now_ms / HOUR_MS;

	if (type <= 0 || type >= FBX_CMD_TYPE_COUNT)
		x = NULL;
	sum(x, type, h, h, hour);
	sum(x, type, h - (FBXI_OUT_SLOTS - 1), h, day);
}

void
fbxi_outcomes_totals(const struct fbxi_outcomes *o,
    struct fbxi_outcome_counts totals[FBX_CMD_TYPE_COUNT])
{
	if (o == NULL)
		memset(totals, 0, FBX_CMD_TYPE_COUNT * sizeof(*totals));
	else
		memcpy(totals, o->total, sizeof(o->total));
}

/* silent_at - x's type is silent at hour h: the hour holds enough
 * outcomes, none succeeded, and the 23 hours before had successes */
static int
silent_at(const struct org_out *x, int type, int64_t h,
    struct fbxi_outcome_counts *hour, struct fbxi_outcome_counts *day)
{
	struct fbxi_outcome_counts before;

	sum(x, type, h, h, hour);
	sum(x, type, h - (FBXI_OUT_SLOTS - 1), h, day);
	sum(x, type, h - (FBXI_OUT_SLOTS - 1), h - 1, &before);
	return hour->succeeded == 0 &&
	    hour->failed + hour->expired >= FBXI_OUT_SILENCE_MIN &&
	    before.succeeded > 0;
}

size_t
fbxi_outcomes_silence(struct fbxi_outcomes *o, int64_t now_ms,
    fbxi_silence_fn fn, void *arg)
{
	int64_t h = now_ms / HOUR_MS;
	size_t n = 0, k = 0;

	for (size_t i = 0; o != NULL && i < o->n; i++) {
		struct org_out *x = o->v[i];
		/* nothing in the last 24 hours: forgotten (memory follows the
		 * organisations that deliver, not every one ever seen) */
		if (x->last_hour < h - (FBXI_OUT_SLOTS - 1)) {
			org_free(x);
			continue;
		}
		o->v[k++] = x;
		/* silence needs outcomes in this hour: most organisations
		 * are passed over here */
		if (x->last_hour != h)
			continue;
		for (int t = 1; t < FBX_CMD_TYPE_COUNT; t++) {
			struct fbxi_outcome_counts hour, day;
			if (x->silent_hour[t] == h ||
			    !silent_at(x, t, h, &hour, &day))
				continue;
			x->silent_hour[t] = h;
			fn(arg, x->org, t, &hour, &day);
			n++;
		}
	}
	if (o != NULL)
		o->n = k;
	return n;
}

int
fbxi_outcomes_silent(const struct fbxi_outcomes *o, const char *org,
    int type, int64_t now_ms)
{
	const struct org_out *x = o != NULL ? find(o, org, NULL) : NULL;
	struct fbxi_outcome_counts hour, day;

	if (x == NULL || type <= 0 || type >= FBX_CMD_TYPE_COUNT)
		return 0;
	return silent_at(x, type, now_ms / HOUR_MS, &hour, &day);
}
