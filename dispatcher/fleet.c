/*
 * fleet.c: fleet check-in health (issue 12). See fleet.h.
 *
 * A pass lists the organisations once, then reads each one's devices in
 * slices of FBXI_FLEET_SLICE through the turn's transaction (reads only),
 * accumulating into `cur`. When an organisation's last slice is read its
 * aggregate replaces the previous one in `orgs` (sorted by organisation)
 * and its alert rules are judged: a rule over threshold fires a
 * devices_stale event (published and given to the alert command after the
 * commit), again every repeat interval while it stays over, and once
 * with count 0 when no device is over it any more. An organisation no
 * longer listed at the end of a pass is dropped.
 */
/* memmem: _GNU_SOURCE comes from the build */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "outcomes.h"

#define OS_TRACK 256 /* distinct versions counted per organisation */
#define KV_PREFIX "fleet/"
#define RULE_BYTES 8 /* stale_minutes, repeat_minutes: little endian */

/* the alert state of one rule, by its threshold */
struct rule_state {
	uint32_t stale_minutes;
	uint32_t stale; /* devices over it at the organisation's last pass */
	int64_t last_alert_ms; /* 0 = not alerting */
};

struct org_agg {
	fbx_id org;
	int64_t as_of_ms;
	uint32_t devices;
	uint32_t hist[FBX_FLEET_BUCKETS];
	struct fbx_version_count os[FBX_FLEET_OS_MAX];
	size_t nos;
	uint32_t os_other;
	struct rule_state st[FBX_FLEET_RULES_MAX];
	size_t nst;
	int seen; /* listed in the pass under way */
};

/* the organisation being read */
struct cur_agg {
	fbx_id org;
	fbx_id after; /* the last device read */
	uint32_t devices;
	uint32_t hist[FBX_FLEET_BUCKETS];
	struct fbx_version_count os[OS_TRACK];
	size_t nos;
	uint32_t os_other;
	/* per rule of the organisation: threshold and devices over it */
	uint32_t rule_min[FBX_FLEET_RULES_MAX], rule_n[FBX_FLEET_RULES_MAX];
	uint32_t rule_repeat[FBX_FLEET_RULES_MAX];
	size_t nrules;
	int64_t now;
};

/* an alert decided in the turn, sent if it commits */
struct fleet_pend {
	fbx_id org;
	uint32_t stale_minutes, stale, devices;
	int64_t alert_ms; /* the rule's last_alert_ms after it */
	int still;
	int gone; /* all clear because 1: the rule was removed, 2: the
	             organisation left the registry */
};

struct fbxi_fleet {
	struct fleet_pend *pend;
	size_t npend, cappend;
	struct org_agg *orgs; /* sorted by org */
	size_t norgs, capo;
	/* the pass under way */
	fbx_id *plan; /* organisations to read */
	size_t nplan, iplan, capplan;
	int active;
	int64_t next_pass_ms; /* monotonic */
	int64_t pass_start_ms; /* monotonic: the last pass began */
	int64_t next_slice_ms; /* monotonic: slices are paced */
	int have_cur;
	struct cur_agg cur;
	/* the last finished pass, fleet-wide */
	struct fbxi_fleet_totals totals, acc;
};

int
fbxi_fleet_new(struct fbxi_fleet **out)
{
	*out = calloc(1, sizeof(**out));
	return *out != NULL ? FBX_OK : FBX_ENOMEM;
}

void
fbxi_fleet_free(struct fbxi_fleet *f)
{
	if (f == NULL)
		return;
	free(f->orgs);
	free(f->plan);
	free(f->pend);
	free(f);
}

int
fbxi_fleet_bucket(int64_t age_ms, int never)
{
	static const int64_t upper_h[] = { 2, 4, 8, 24, 48, 72, 168 };
	size_t i;

	if (never)
		return FBX_FLEET_BUCKETS - 1;
	for (i = 0; i < sizeof(upper_h) / sizeof(upper_h[0]); i++) {
		if (age_ms < upper_h[i] * 3600000)
			return (int)i;
	}
	return FBX_FLEET_BUCKETS - 2;
}

/* ---- rules in the store ------------------------------------------------ */

static void
rules_key(char *k, size_t kl, const char *org)
{
	snprintf(k, kl, KV_PREFIX "%s", org);
}

static void
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* rules_get - the organisation's rules, by threshold ascending.
 * @return FBX_OK (none is fine), FBX_ECORRUPT, or a store error. */
static int
rules_get(fbx_txn *txn, const char *org, struct fbx_fleet_rule *r, size_t *n)
{
	uint8_t buf[FBX_FLEET_RULES_MAX * RULE_BYTES + 1];
	char key[FBX_KV_KEY_MAX + 1];
	size_t len = 0;
	int rc;

	*n = 0;
	rules_key(key, sizeof(key), org);
	rc = fbx_store_kv_get(txn, key, buf, sizeof(buf), &len);
	if (rc == FBX_ENOT_FOUND)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	if (len % RULE_BYTES != 0 || len / RULE_BYTES > FBX_FLEET_RULES_MAX)
		return FBX_ECORRUPT;
	for (size_t i = 0; i < len / RULE_BYTES; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].stale_minutes = get32(buf + i * RULE_BYTES);
		r[i].repeat_minutes = get32(buf + i * RULE_BYTES + 4);
	}
	*n = len / RULE_BYTES;
	return FBX_OK;
}

static int
rules_put(fbx_txn *txn, const char *org, const struct fbx_fleet_rule *r,
    size_t n)
{
	uint8_t buf[FBX_FLEET_RULES_MAX * RULE_BYTES];
	char key[FBX_KV_KEY_MAX + 1];

	rules_key(key, sizeof(key), org);
	if (n == 0)
		return fbx_store_kv_del(txn, key);
	for (size_t i = 0; i < n; i++) {
		put32(buf + i * RULE_BYTES, r[i].stale_minutes);
		put32(buf + i * RULE_BYTES + 4, r[i].repeat_minutes);
	}
	return fbx_store_kv_put(txn, key, buf, n * RULE_BYTES);
}

/* ---- the aggregates ---------------------------------------------------- */

static struct org_agg *
agg_find(struct fbxi_fleet *f, const char *org, size_t *at)
{
	size_t lo = 0, hi = f->norgs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(f->orgs[mid].org, org);
		if (c == 0) {
			if (at != NULL)
				*at = mid;
			return &f->orgs[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (at != NULL)
		*at = lo;
	return NULL;
}

/* agg_get - the organisation's aggregate, inserted empty if new;
 * NULL when out of memory. */
static struct org_agg *
agg_get(struct fbxi_fleet *f, const char *org)
{
	size_t at;
	struct org_agg *a = agg_find(f, org, &at);

	if (a != NULL)
		return a;
	if (f->norgs == f->capo) {
		size_t ncap = f->capo ? f->capo * 2 : 64;
		struct org_agg *v = realloc(f->orgs, ncap * sizeof(*v));
		if (v == NULL)
			return NULL;
		f->orgs = v;
		f->capo = ncap;
	}
	memmove(&f->orgs[at + 1], &f->orgs[at],
	    (f->norgs - at) * sizeof(*f->orgs));
	f->norgs++;
	a = &f->orgs[at];
	memset(a, 0, sizeof(*a));
	snprintf(a->org, sizeof(a->org), "%s", org);
	return a;
}

static const struct rule_state *
state_of(const struct org_agg *a, uint32_t stale_minutes)
{
	for (size_t i = 0; a != NULL && i < a->nst; i++) {
		if (a->st[i].stale_minutes == stale_minutes)
			return &a->st[i];
	}
	return NULL;
}

static int
os_cmp(const void *x, const void *y)
{
	const struct fbx_version_count *a = x, *b = y;

	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return strcmp(a->version, b->version);
}

/* dev_cb - one device of the organisation being read */
static int
dev_cb(void *arg, const struct fbx_device *d)
{
	struct cur_agg *c = arg;
	int never = d->last_checkin_ms <= 0;
	int64_t since = never ? d->enrolled_ms : d->last_checkin_ms;
	int64_t age = c->now > since ? c->now - since : 0;
	size_t i;

	snprintf(c->after, sizeof(c->after), "%s", d->id);
	c->devices++;
	c->hist[fbxi_fleet_bucket(age, never)]++;
	for (i = 0; i < c->nos; i++) {
		if (strcmp(c->os[i].version, d->os_version) == 0)
			break;
	}
	if (i < c->nos)
		c->os[i].count++;
	else if (c->nos < OS_TRACK) {
		snprintf(c->os[c->nos].version, sizeof(c->os[c->nos].version),
		    "%s", d->os_version);
		c->os[c->nos++].count = 1;
	} else
		c->os_other++;
	for (i = 0; i < c->nrules; i++) {
		if (age >= (int64_t)c->rule_min[i] * 60000)
			c->rule_n[i]++;
	}
	return 0;
}

/* pend_add - an alert of a rule decided in this turn */
static void
pend_add(struct fbxi_fleet *f, const char *org, uint32_t min, uint32_t n,
    uint32_t devices, int64_t alert_ms, int still)
{
	struct fleet_pend *p;

	if (f->npend == f->cappend) {
		size_t ncap = f->cappend ? f->cappend * 2 : 16;
		struct fleet_pend *v = realloc(f->pend, ncap * sizeof(*v));
		if (v == NULL)
			return; /* decided again at the next pass */
		f->pend = v;
		f->cappend = ncap;
	}
	p = &f->pend[f->npend++];
	snprintf(p->org, sizeof(p->org), "%s", org);
	p->stale_minutes = min;
	p->stale = n;
	p->devices = devices;
	p->alert_ms = alert_ms;
	p->still = still;
	p->gone = 0;
}

/* pend_commit - the turn committed: the decided alerts leave and the
 * rules' state follows */
static void
pend_commit(struct fbx_engine *e, struct fbxi_fleet *f)
{
	for (size_t i = 0; i < f->npend; i++) {
		const struct fleet_pend *p = &f->pend[i];
		struct org_agg *a = agg_find(f, p->org, NULL);
		char reason[32];
		for (size_t k = 0; a != NULL && k < a->nst; k++) {
			if (a->st[k].stale_minutes == p->stale_minutes)
				a->st[k].last_alert_ms = p->alert_ms;
		}
		/* the reason names the rule: the alert command's rate limit
		 * is per (kind, organisation, reason), and a receiver
		 * matches the all-clear to its alarm */
		snprintf(reason, sizeof(reason), "stale_%um",
		    (unsigned)p->stale_minutes);
		if (p->stale > 0)
			fbxi_event(e, FBX_EV_DEVICES_STALE, p->org, reason,
			    "engine", 0, p->stale, p->stale_minutes,
			    "%u of %u devices of %s without a check-in for "
			    "%u min or longer%s",
			    (unsigned)p->stale, (unsigned)p->devices, p->org,
			    (unsigned)p->stale_minutes,
			    p->still ? " (still)" : "");
		else
			fbxi_event(e, FBX_EV_DEVICES_STALE, p->org, reason,
			    "engine", 0, 0, p->stale_minutes, "%s",
			    p->gone == 1 ? "the rule was removed while it "
			                   "alerted: no more alerts from it" :
			    p->gone == 2 ? "the organisation has no devices "
			                   "any more" :
			                   "every device checked in within the "
			                   "rule's time again");
	}
	f->npend = 0;
}

/* org_done - the organisation's last slice was read: its aggregate
 * replaces the previous one, and its rules are judged. */
static void
org_done(struct fbxi_fleet *f)
{
	struct cur_agg *c = &f->cur;
	struct org_agg *a = agg_get(f, c->org), prev;
	uint32_t alerting = 0;
	size_t i;

	f->have_cur = 0;
	if (a == NULL) {
		FBX_LOGW("fleet: out of memory for organisation %s", c->org);
		return;
	}
	prev = *a;
	qsort(c->os, c->nos, sizeof(c->os[0]), os_cmp);
	a->as_of_ms = c->now;
	a->devices = c->devices;
	memcpy(a->hist, c->hist, sizeof(a->hist));
	a->nos = c->nos < FBX_FLEET_OS_MAX ? c->nos : FBX_FLEET_OS_MAX;
	memcpy(a->os, c->os, a->nos * sizeof(a->os[0]));
	a->os_other = c->os_other;
	for (i = a->nos; i < c->nos; i++)
		a->os_other += c->os[i].count;
	a->seen = 1;
	a->nst = c->nrules;
	for (i = 0; i < c->nrules; i++) {
		const struct rule_state *p = state_of(&prev, c->rule_min[i]);
		struct rule_state *s = &a->st[i];
		int64_t last = p != NULL ? p->last_alert_ms : 0;
		int64_t every = (int64_t)c->rule_repeat[i] * 60000;

		s->stale_minutes = c->rule_min[i];
		s->stale = c->rule_n[i];
		s->last_alert_ms = last;
		/* the alert leaves, and the rule's state changes, only
		 * with the turn's commit (fbxi_outq_commit): a turn that
		 * fails loses neither, the next pass decides again */
		if (c->rule_n[i] > 0 &&
		    (last == 0 || (every > 0 && c->now - last >= every)))
			pend_add(f, c->org, c->rule_min[i], c->rule_n[i],
			    c->devices, c->now, last != 0);
		else if (c->rule_n[i] == 0 && last != 0)
			pend_add(f, c->org, c->rule_min[i], 0, c->devices, 0, 0);
		alerting |= c->rule_n[i] > 0;
	}
	f->acc.orgs_alerting += alerting;
	/* a rule removed while it alerted: its all-clear, once */
	for (i = 0; i < prev.nst; i++) {
		if (prev.st[i].last_alert_ms != 0 &&
		    state_of(a, prev.st[i].stale_minutes) == NULL) {
			pend_add(f, c->org, prev.st[i].stale_minutes, 0,
			    c->devices, 0, 0);
			if (f->npend > 0)
				f->pend[f->npend - 1].gone = 1;
		}
	}
	f->acc.devices += c->devices;
	for (i = 0; i < FBX_FLEET_BUCKETS; i++)
		f->acc.offline_hours[i] += c->hist[i];
}

static int
plan_cb(void *arg, const char *org, uint32_t devices)
{
	struct fbxi_fleet *f = arg;

	(void)devices;
	if (f->nplan == f->capplan) {
		size_t ncap = f->capplan ? f->capplan * 2 : 64;
		fbx_id *v = realloc(f->plan, ncap * sizeof(*v));
		if (v == NULL)
			return 1;
		f->plan = v;
		f->capplan = ncap;
	}
	snprintf(f->plan[f->nplan++], sizeof(fbx_id), "%s", org);
	return 0;
}

/* pass_end - drop the organisations the pass did not list */
static void
pass_end(struct fbxi_fleet *f, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < f->norgs; i++) {
		if (f->orgs[i].seen) {
			f->orgs[i].seen = 0;
			f->orgs[k++] = f->orgs[i];
			continue;
		}
		/* gone from the registry: the all-clear of what alerted */
		for (size_t r = 0; r < f->orgs[i].nst; r++) {
			if (f->orgs[i].st[r].last_alert_ms == 0)
				continue;
			pend_add(f, f->orgs[i].org,
			    f->orgs[i].st[r].stale_minutes, 0, 0, 0, 0);
			if (f->npend > 0)
				f->pend[f->npend - 1].gone = 2;
		}
	}
	f->norgs = k;
	f->acc.as_of_ms = now;
	f->totals = f->acc;
	f->active = 0;
}

void
fbxi_fleet_step(struct fbx_engine *e)
{
	struct fbxi_fleet *f = e->fleet;
	uint32_t budget = FBXI_FLEET_SLICE;
	fbx_txn *rt = NULL;
	int rc;

	if (f == NULL || e->mono < f->next_slice_ms)
		return;
	f->next_slice_ms = e->mono + FBXI_FLEET_SLICE_MS;
	if (!f->active && e->mono < f->next_pass_ms)
		return;
	/* a read transaction of its own: the pass sees only what is
	 * committed (never this turn's own writes), and nothing it meets
	 * fails the turn: a health view must not stop the engine */
	rc = fbx_txn_begin(e->st, 0, &rt);
	if (rc != FBX_OK) {
		FBX_LOGW("fleet: no read transaction: %s", fbx_strerror(rc));
		return;
	}
	if (!f->active) {
		f->next_pass_ms = e->mono + FBXI_FLEET_PASS_MS;
		f->pass_start_ms = e->mono;
		f->nplan = f->iplan = 0;
		f->have_cur = 0;
		memset(&f->acc, 0, sizeof(f->acc));
		rc = fbx_store_org_list(rt, plan_cb, f);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			FBX_LOGW("fleet: organisations not listed: %s; the pass "
			         "runs again in a minute",
			    fbx_strerror(rc));
			fbx_txn_abort(rt);
			return;
		}
		f->active = 1;
	}
	/* up to FBXI_FLEET_SLICE devices, and at most 256 organisations
	 * (an empty one costs a lookup) */
	for (int orgs = 0; budget > 0 && orgs < 256; orgs++) {
		struct cur_agg *c = &f->cur;
		uint32_t got;
		if (!f->have_cur) {
			struct fbx_fleet_rule r[FBX_FLEET_RULES_MAX];
			size_t n = 0;
			if (f->iplan >= f->nplan) {
				pass_end(f, e->now);
				break;
			}
			memset(c, 0, sizeof(*c));
			snprintf(c->org, sizeof(c->org), "%s",
			    f->plan[f->iplan++]);
			/* damaged rules: the organisation is counted, its
			 * rules are not judged (logged; `fleet rule set`
			 * writes them anew) */
			rc = rules_get(rt, c->org, r, &n);
			if (rc != FBX_OK) {
				FBX_LOGW("fleet: the rules of %s cannot be read: "
				         "%s",
				    c->org, fbx_strerror(rc));
				n = 0;
			}
			for (size_t i = 0; i < n; i++) {
				c->rule_min[i] = r[i].stale_minutes;
				c->rule_repeat[i] = r[i].repeat_minutes;
			}
			c->nrules = n;
			f->have_cur = 1;
		}
		c->now = e->now;
		got = c->devices;
		rc = fbx_store_dev_scan(
		    rt, c->org, NULL, c->after, budget, dev_cb, c);
		if (rc == FBX_ECORRUPT) {
			/* a damaged device record: what was read of the
			 * organisation stands, the rest of it is skipped
			 * in this pass */
			FBX_LOGW("fleet: a damaged device record of %s after "
			         "'%s': the rest of it is skipped in this pass",
			    c->org, c->after);
			org_done(f);
			continue;
		}
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			FBX_LOGW("fleet: %s not read: %s; tried again",
			    c->org, fbx_strerror(rc));
			break;
		}
		got = c->devices - got;
		budget -= got;
		if (budget > 0)
			org_done(f); /* fewer than asked: its last slice */
	}
	fbx_txn_abort(rt);
}

void
fbxi_fleet_soon(struct fbx_engine *e)
{
	struct fbxi_fleet *f = e->fleet;
	int64_t at;

	if (f == NULL || f->active)
		return;
	/* in 2 s, and at most one pass per FBXI_FLEET_SOON_MS */
	at = e->mono + 2000;
	if (f->pass_start_ms != 0 && at < f->pass_start_ms + FBXI_FLEET_SOON_MS)
		at = f->pass_start_ms + FBXI_FLEET_SOON_MS;
	if (at < f->next_pass_ms)
		f->next_pass_ms = at;
}

void
fbxi_fleet_totals(const struct fbx_engine *e, struct fbxi_fleet_totals *out)
{
	if (e->fleet == NULL)
		memset(out, 0, sizeof(*out));
	else
		*out = e->fleet->totals;
}

/* ---- requests ---------------------------------------------------------- */

static void
reply_report(struct fbx_engine *e, const struct fbx_io_msg *in,
    const struct fbx_console_req *r, const struct fbx_fleet_rule *rules,
    size_t nrules)
{
	struct fbx_console_rep rep;
	struct fbx_fleet_report *o = &rep.u.fleet;
	const struct org_agg *a =
	    e->fleet != NULL ? agg_find(e->fleet, r->org, NULL) : NULL;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = r->request_id;
	rep.kind = r->kind;
	if (a != NULL) {
		o->as_of_ms = a->as_of_ms;
		o->devices = a->devices;
		memcpy(o->offline_hours, a->hist, sizeof(o->offline_hours));
		memcpy(o->os, a->os, a->nos * sizeof(o->os[0]));
		o->nos = a->nos;
		o->os_other = a->os_other;
	}
	for (size_t i = 0; i < nrules; i++) {
		const struct rule_state *s = state_of(a, rules[i].stale_minutes);
		o->rules[i] = rules[i];
		o->rules[i].stale = s != NULL ? s->stale : 0;
		o->rules[i].last_alert_ms = s != NULL ? s->last_alert_ms : 0;
	}
	o->nrules = nrules;
	for (int t = 1; t < FBX_CMD_TYPE_COUNT; t++) {
		struct fbxi_outcome_counts h, d;
		struct fbx_type_outcomes *x = &o->out[o->nout];
		fbxi_outcomes_window(e->outcomes, r->org, t, e->now, &h, &d);
		if (d.succeeded + d.failed + d.expired == 0)
			continue;
		x->type = (uint8_t)t;
		x->silent = fbxi_outcomes_silent(e->outcomes, r->org, t, e->now);
		x->ok_hour = h.succeeded;
		x->failed_hour = h.failed;
		x->expired_hour = h.expired;
		x->ok_day = d.succeeded;
		x->failed_day = d.failed;
		x->expired_day = d.expired;
		o->nout++;
	}
	fbxi_console_reply(e, in, &rep);
}

/* ---- an OS update's applied state -------------------------------------- */

/* target_version - the payload's "version": a JSON object's string
 * member, or "version=V" (V up to , ; & or white space) */
static void
target_version(const uint8_t *p, size_t n, char *out, size_t cap)
{
	json_t *o = n > 0 ? json_loadb((const char *)p, n, 0, NULL) : NULL;
	const char *v = json_string_value(json_object_get(o, "version"));

	out[0] = '\0';
	if (v != NULL) {
		if (strlen(v) < cap)
			snprintf(out, cap, "%s", v);
	} else if (o == NULL && n > 0) {
		const char *s = memmem(p, n, "version=", 8);
		size_t k = 0;
		if (s != NULL) {
			s += 8;
			while (s + k < (const char *)p + n && k + 1 < cap &&
			    strchr(",;& \t\r\n", s[k]) == NULL)
				k++;
			memcpy(out, s, k);
			out[k] = '\0';
		}
	}
	json_decref(o);
}

struct ver_ctx {
	struct fbx_engine *e;
	const char *org;
	const char *target;
	uint32_t devices, at_target, other, unknown;
	uint64_t next; /* the delivery id to go on from, 0 = end */
	int64_t deadline;
	int err;
};

static int
ver_cb(void *arg, const struct fbx_delivery *d)
{
	struct ver_ctx *x = arg;
	struct fbx_device dev;
	int rc;

	if (x->devices > 0 && (x->devices & 255) == 0 &&
	    fbxi_past_us(x->deadline)) {
		x->next = d->id;
		return 1;
	}
	x->devices++;
	rc = fbx_store_dev_get(x->e->txn, x->org, d->device, &dev);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && dev.os_version[0] == '\0'))
		x->unknown++;
	else if (rc != FBX_OK) {
		x->err = rc;
		return 1;
	} else if (x->target[0] != '\0' &&
	    strcmp(dev.os_version, x->target) == 0)
		x->at_target++;
	else
		x->other++;
	return 0;
}

/* fleet_version - FLEET_VERSION: how many of an OS update's devices
 * report its target version, a page of its deliveries at a time (50 ms
 * of work at most) */
static void
fleet_version(
    struct fbx_engine *e, const struct fbx_io_msg *in, struct fbx_console_req *r)
{
	struct fbx_console_rep rep;
	struct fbx_command c;
	struct ver_ctx x;
	char target[FBX_OSVER_MAX + 1];
	uint64_t id = r->u.fleet.command_id, after = r->u.fleet.after;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = fbx_store_cmd_get(e->txn, id, &c);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && strcmp(c.org, r->org) != 0)) {
		fbx_command_clear(&c);
		fbxi_console_error(e, in, r->request_id, r->kind, FBX_ENOT_FOUND,
		    "%s has no command %llu", r->org, (unsigned long long)id);
		return;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (c.type != FBX_CMD_OS_UPDATE) {
		fbxi_console_error(e, in, r->request_id, r->kind, FBX_EINVALID,
		    "command %llu is a %s, not an os_update",
		    (unsigned long long)id, fbx_cmd_type_name(c.type));
		fbx_command_clear(&c);
		return;
	}
	target_version(c.payload, c.payload_len, target, sizeof(target));
	memset(&x, 0, sizeof(x));
	x.e = e;
	x.org = r->org;
	x.target = target;
	x.deadline = fbxi_deadline_us(FBXI_READ_SLICE_US);
	if (after < c.ndeliveries) {
		rc = fbx_store_dlv_scan(e->txn, FBX_DLV_ID(id, after),
		    FBX_DLV_ID(id, c.ndeliveries), 0, ver_cb, &x);
		if (rc == FBX_OK || rc == FBX_ENOT_FOUND)
			rc = x.err;
	}
	fbx_command_clear(&c);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = r->request_id;
	rep.kind = r->kind;
	rep.u.fleet.version.set = 1;
	rep.u.fleet.version.command_id = id;
	snprintf(rep.u.fleet.version.target, sizeof(rep.u.fleet.version.target),
	    "%s", target);
	rep.u.fleet.version.devices = x.devices;
	rep.u.fleet.version.at_target = x.at_target;
	rep.u.fleet.version.other = x.other;
	rep.u.fleet.version.unknown = x.unknown;
	rep.u.fleet.version.next_after = x.next != 0 ? FBX_DLV_IDX(x.next) : 0;
	fbxi_console_reply(e, in, &rep);
}

/* ---- a group's report -------------------------------------------------- */

struct grp_ctx {
	struct cur_agg c; /* the page's aggregate (dev_cb) */
	int64_t deadline;
	int stopped; /* the page ended before the group did */
};

static int
grp_cb(void *arg, const struct fbx_device *d)
{
	struct grp_ctx *g = arg;

	if (g->c.devices > 0 && (g->c.devices & 255) == 0 &&
	    fbxi_past_us(g->deadline)) {
		g->stopped = 1;
		return 1;
	}
	return dev_cb(&g->c, d);
}

/* group_report - a group's devices by hours offline and OS version, read
 * now, a page (50 ms of work) at a time: its cursor is the last device
 * read */
static void
group_report(
    struct fbx_engine *e, const struct fbx_io_msg *in, struct fbx_console_req *r)
{
	struct fbx_console_rep rep;
	struct fbx_fleet_report *o = &rep.u.fleet;
	struct grp_ctx *g = calloc(1, sizeof(*g));
	int rc;

	if (g == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	g->c.now = e->now;
	g->deadline = fbxi_deadline_us(FBXI_READ_SLICE_US);
	rc = fbx_store_dev_scan(e->txn, r->org, r->u.fleet.group,
	    r->u.fleet.after_dev, 0, grp_cb, g);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		free(g);
		fbxi_set_err(e, rc);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = r->request_id;
	rep.kind = r->kind;
	qsort(g->c.os, g->c.nos, sizeof(g->c.os[0]), os_cmp);
	o->as_of_ms = e->now;
	o->devices = g->c.devices;
	memcpy(o->offline_hours, g->c.hist, sizeof(o->offline_hours));
	o->nos = g->c.nos < FBX_FLEET_OS_MAX ? g->c.nos : FBX_FLEET_OS_MAX;
	memcpy(o->os, g->c.os, o->nos * sizeof(o->os[0]));
	o->os_other = g->c.os_other;
	for (size_t i = o->nos; i < g->c.nos; i++)
		o->os_other += g->c.os[i].count;
	snprintf(o->group, sizeof(o->group), "%s", r->u.fleet.group);
	if (g->stopped)
		snprintf(o->next_after, sizeof(o->next_after), "%s",
		    g->c.after);
	fbxi_console_reply(e, in, &rep);
	free(g);
}

void
fbxi_handle_fleet(
    struct fbx_engine *e, const struct fbx_io_msg *in, struct fbx_console_req *r)
{
	struct fbx_fleet_rule rules[FBX_FLEET_RULES_MAX + 1];
	size_t n = 0, i;
	uint32_t min = r->u.fleet.stale_minutes;
	int rc = rules_get(e->txn, r->org, rules, &n);

	if (rc == FBX_ECORRUPT) {
		/* reported without rules; a set writes them anew */
		FBX_LOGW("fleet: the rules of %s are damaged: shown as none; "
		         "`fleet rule set` writes them anew",
		    r->org);
		n = 0;
		rc = FBX_OK;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (r->u.fleet.op == FBX_FLEET_VERSION) {
		fleet_version(e, in, r);
		return;
	}
	if (r->u.fleet.op == FBX_FLEET_REPORT && r->u.fleet.group[0] != '\0') {
		group_report(e, in, r);
		return;
	}
	if (r->u.fleet.op == FBX_FLEET_REPORT) {
		reply_report(e, in, r, rules, n);
		return;
	}
	for (i = 0; i < n && rules[i].stale_minutes < min; i++)
		;
	if (r->u.fleet.op == FBX_FLEET_RULE_DEL) {
		if (i == n || rules[i].stale_minutes != min) {
			fbxi_console_error(e, in, r->request_id, r->kind,
			    FBX_ENOT_FOUND, "%s has no fleet rule at %u minutes",
			    r->org, (unsigned)min);
			return;
		}
		memmove(&rules[i], &rules[i + 1], (n - i - 1) * sizeof(*rules));
		n--;
	} else if (i < n && rules[i].stale_minutes == min) {
		rules[i].repeat_minutes = r->u.fleet.repeat_minutes;
	} else {
		if (n == FBX_FLEET_RULES_MAX) {
			fbxi_console_error(e, in, r->request_id, r->kind,
			    FBX_ETOOBIG, "%s has %d fleet rules, the most an "
			    "organisation may have",
			    r->org, FBX_FLEET_RULES_MAX);
			return;
		}
		memmove(&rules[i + 1], &rules[i], (n - i) * sizeof(*rules));
		memset(&rules[i], 0, sizeof(rules[i]));
		rules[i].stale_minutes = min;
		rules[i].repeat_minutes = r->u.fleet.repeat_minutes;
		n++;
	}
	rc = rules_put(e->txn, r->org, rules, n);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	fbxi_audit(e, r->org, r->actor,
	    r->u.fleet.op == FBX_FLEET_RULE_DEL ? "fleet.rule_remove"
	                                        : "fleet.rule_set",
	    r->u.fleet.note, "{\"stale_minutes\":%u,\"repeat_minutes\":%u}",
	    (unsigned)min, (unsigned)r->u.fleet.repeat_minutes);
	reply_report(e, in, r, rules, n);
}

/* ---- stale listing ----------------------------------------------------- */

struct stale_ctx {
	struct fbx_device *v;
	size_t n, cap;
	uint32_t examined;
	int64_t cutoff; /* a device last heard of before this is stale */
	fbx_id last; /* the last device examined */
	int64_t deadline; /* fbxi_deadline_us: the page ends after it */
};

static int
stale_cb(void *arg, const struct fbx_device *d)
{
	struct stale_ctx *s = arg;
	int64_t since = d->last_checkin_ms > 0 ? d->last_checkin_ms
	                                       : d->enrolled_ms;

	s->examined++;
	snprintf(s->last, sizeof(s->last), "%s", d->id);
	if (since <= s->cutoff) {
		s->v[s->n] = *d;
		s->v[s->n].pending = 0;
		s->n++;
	}
	return s->n == s->cap || s->examined >= FBXI_FLEET_LIST_SCAN ||
	    ((s->examined & 255) == 0 && fbxi_past_us(s->deadline));
}

static int
count_cb(void *arg, uint64_t id)
{
	(void)id;
	(*(uint32_t *)arg)++;
	return 0;
}

void
fbxi_fleet_list_stale(
    struct fbx_engine *e, const struct fbx_io_msg *in, struct fbx_console_req *r)
{
	struct fbx_console_rep rep;
	struct stale_ctx s;
	uint32_t total = 0, limit = r->u.list_devices.limit;
	int rc = fbx_store_org_devices(e->txn, r->org, &total);

	if (rc == FBX_EUNKNOWN_ORG) {
		fbxi_console_error(e, in, r->request_id, r->kind, rc,
		    "unknown organisation '%s'", r->org);
		return;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (limit == 0 || limit > FBX_PAGE_MAX)
		limit = limit == 0 ? 100 : FBX_PAGE_MAX;
	memset(&s, 0, sizeof(s));
	s.cap = limit;
	s.cutoff = e->now - (int64_t)r->u.list_devices.stale_minutes * 60000;
	s.deadline = fbxi_deadline_us(FBXI_READ_SLICE_US);
	s.v = malloc(s.cap * sizeof(*s.v));
	if (s.v == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbx_store_dev_scan(e->txn, r->org, r->u.list_devices.group,
	    r->u.list_devices.after, 0, stale_cb, &s);
	for (size_t i = 0; (rc == FBX_OK || rc == FBX_ENOT_FOUND) && i < s.n;
	     i++) {
		rc = fbx_store_pend_list(
		    e->txn, r->org, s.v[i].id, count_cb, &s.v[i].pending);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
	}
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		fbxi_set_err(e, rc);
		free(s.v);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = r->request_id;
	rep.kind = r->kind;
	rep.u.devices.devs = s.v;
	rep.u.devices.n = s.n;
	rep.u.devices.total = total;
	/* stopped early (page full or the scan budget): go on from the last
	 * device examined */
	if (s.n == s.cap || s.examined >= FBXI_FLEET_LIST_SCAN ||
	    fbxi_past_us(s.deadline))
		snprintf(rep.u.devices.next_after,
		    sizeof(rep.u.devices.next_after), "%s", s.last);
	fbxi_console_reply(e, in, &rep);
	free(s.v);
}

/* ---- delivery outcomes ------------------------------------------------- */

void
fbxi_outq_note(struct fbx_engine *e, struct cmdc *cc)
{
	static const int st[3] = { FBX_D_SUCCEEDED, FBX_D_FAILED,
		FBX_D_EXPIRED };
	struct fbxi_out_delta *q;
	int64_t d[3];
	int any = 0;

	for (int i = 0; i < 3; i++) {
		d[i] = (int64_t)cc->c.counts[st[i]] - (int64_t)cc->ocounts[i];
		any |= d[i] != 0;
	}
	if (!any)
		return;
	if (e->noutq == e->outqcap) {
		size_t ncap = e->outqcap ? e->outqcap * 2 : 64;
		struct fbxi_out_delta *v = realloc(e->outq, ncap * sizeof(*v));
		if (v == NULL)
			return; /* not counted: the figures are a view */
		e->outq = v;
		e->outqcap = ncap;
	}
	q = &e->outq[e->noutq++];
	snprintf(q->org, sizeof(q->org), "%s", cc->c.org);
	q->type = cc->c.type;
	q->created_ms = cc->c.created_ms;
	memcpy(q->d, d, sizeof(d));
	for (int i = 0; i < 3; i++)
		cc->ocounts[i] = cc->c.counts[st[i]];
}

static void
silence_cb(void *arg, const char *org, int type,
    const struct fbxi_outcome_counts *hour,
    const struct fbxi_outcome_counts *day)
{
	struct fbx_engine *e = arg;

	fbxi_event(e, FBX_EV_OUTCOME_SILENCE, org, fbx_cmd_type_name(type),
	    "engine", 0, hour->failed + hour->expired, day->succeeded,
	    "%s deliveries of %s: 0 succeeded of %llu outcomes this hour "
	    "(%llu failed, %llu expired); %llu succeeded in the 24 hours",
	    fbx_cmd_type_name(type), org,
	    (unsigned long long)(hour->failed + hour->expired),
	    (unsigned long long)hour->failed,
	    (unsigned long long)hour->expired,
	    (unsigned long long)day->succeeded);
}

void
fbxi_outq_commit(struct fbx_engine *e)
{
	for (size_t i = 0; i < e->noutq; i++) {
		const struct fbxi_out_delta *q = &e->outq[i];
		int64_t n = 0;
		for (int k = 0; k < 3; k++)
			n += q->d[k] > 0 ? q->d[k] : 0;
		if (n > 0) {
			/* every one of them was recorded by this commit */
			uint64_t lat = e->now > q->created_ms
			    ? (uint64_t)(e->now - q->created_ms) * 1000
			    : 0;
			e->m_result.n[fbx_metrics_bucket_result(lat)] +=
			    (uint64_t)n;
			e->m_result.sum_us += lat * (uint64_t)n;
		}
		(void)fbxi_outcomes_add(e->outcomes, q->org, q->type, q->d[0],
		    q->d[1], q->d[2], e->now);
	}
	e->noutq = 0;
	if (e->fleet != NULL)
		pend_commit(e, e->fleet);
	/* once a minute, on what is committed */
	if (e->now >= e->next_outcome_check) {
		e->next_outcome_check = e->now + 60000;
		(void)fbxi_outcomes_silence(e->outcomes, e->now, silence_cb, e);
	}
}

void
fbxi_outq_discard(struct fbx_engine *e)
{
	e->noutq = 0;
	if (e->fleet != NULL)
		e->fleet->npend = 0;
}

