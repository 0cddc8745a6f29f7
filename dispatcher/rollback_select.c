/*
 * rollback_select.c: which commands a rollback (or a replay) selects,
 * what each is to a rollback (its compensation, its family), and what a
 * plan must know beyond its selection, gathered in slices like the
 * selection itself (rollback_int.h): per device, the newest time a later
 * command outside the selection reached it ("changed since"), and the
 * locks and unlocks of the commands the rollback leaves, from 30 days
 * before the selection's window, so that a device locked before a
 * storm's lock stays locked ("locked before the onset too"). rollback.c
 * asks it per command and per delivery.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "rollback_int.h"

/* ------------------------------------------------------ selection */

/* fbxi_rb_compensation_of - the command that undoes one of type. */
int
fbxi_rb_compensation_of(int type)
{
	switch (type) {
	case FBX_CMD_LOCK:
		return FBX_CMD_UNLOCK;
	case FBX_CMD_UNLOCK:
		return FBX_CMD_LOCK;
	case FBX_CMD_START_LOST_MODE:
		return FBX_CMD_STOP_LOST_MODE;
	case FBX_CMD_STOP_LOST_MODE:
		return FBX_CMD_START_LOST_MODE;
	case FBX_CMD_INSTALL_APP:
		return FBX_CMD_REMOVE_APP;
	case FBX_CMD_REMOVE_APP:
		return FBX_CMD_INSTALL_APP;
	case FBX_CMD_SET_POLICY:
		return FBX_CMD_SET_POLICY;
	default:
		return FBX_CMD_NONE; /* wipe, os_update, clear_passcode:
		                        irreversible; query, restart: nothing
		                        to undo */
	}
}

int
fbxi_rb_irreversible(int type)
{
	return type == FBX_CMD_WIPE || type == FBX_CMD_OS_UPDATE ||
	    type == FBX_CMD_CLEAR_PASSCODE;
}

/* fbxi_rb_family - commands that change the same thing on a device. */
int
fbxi_rb_family(int type)
{
	switch (type) {
	case FBX_CMD_LOCK:
	case FBX_CMD_UNLOCK:
	case FBX_CMD_START_LOST_MODE:
	case FBX_CMD_STOP_LOST_MODE:
	case FBX_CMD_WIPE:
	case FBX_CMD_CLEAR_PASSCODE:
		return 1;
	case FBX_CMD_INSTALL_APP:
	case FBX_CMD_REMOVE_APP:
		return 2;
	default:
		return 0; /* set_policy uses its own history */
	}
}

static int
rb_match(const struct rb_ctx *r, const struct fbx_command *c)
{
	const struct fbx_selector *s = r->s;

	if (c->origin == FBX_ORIGIN_ROLLBACK && !r->for_replay)
		return 0; /* compensations are not rolled back by filters */
	if (s->breaker[0] != '\0' &&
	    (c->origin != FBX_ORIGIN_AUTOMATIC ||
	        strcmp(fbxi_reason_of(c), s->breaker) != 0 ||
	        !fbx_cmd_lock_type(c->type)))
		return 0; /* an incident: what the breaker guards */
	if (s->origin && c->origin != s->origin)
		return 0;
	if (s->type && c->type != s->type)
		return 0;
	if (s->reason[0] && strcmp(fbxi_reason_of(c), s->reason) != 0)
		return 0;
	return 1;
}

/* fbxi_rb_selected - whether c is in the run's selection (or, for an
 * incident, in the breaker window before its onset: walked, listed and
 * left). */
int
fbxi_rb_selected(const struct rb_ctx *r, const struct fbx_command *c)
{
	if (r->nnamed > 0)
		return fbxi_idmap_get(&r->named_set, c->id, NULL);
	if (c->id > r->snapshot || c->created_ms < r->since ||
	    (r->until != 0 && c->created_ms >= r->until))
		return 0;
	return rb_match(r, c);
}

/* fbxi_rb_bo_kept - c is a lock-family command of the incident before its
 * onset, which the rollback leaves: a device it locked stays locked, so
 * the storm's lock of that device is not undone either. */
int
fbxi_rb_bo_kept(const struct rb_ctx *r, const struct fbx_command *c)
{
	return r->onset != 0 && r->nnamed == 0 && c->created_ms < r->onset &&
	    fbxi_rb_family(c->type) == 1 && fbxi_rb_selected(r, c);
}

/* ------------------------------------------------- device times */

/* Per (org, device, family) the newest time a later command reached the
 * device. Buckets are found by a hash, but an entry matches only on the
 * exact organisation and device: a collision costs a longer chain, never
 * a device taken for another. */
struct dt_ent {
	int64_t t;
	size_t next; /* 1 + index of the next entry in the bucket, 0 = end */
	int fam;
	fbx_id org, dev;
};

struct fbxi_devtimes {
	struct fbxi_idmap head; /* bucket key -> 1 + index of its first */
	struct dt_ent *v;
	size_t n, cap;
};

static uint64_t
dt_fnv(const char *org, const char *dev)
{
	uint64_t h = 1469598103934665603ull;

	for (; *org; org++)
		h = (h ^ (uint8_t)*org) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (; *dev; dev++)
		h = (h ^ (uint8_t)*dev) * 1099511628211ull;
	return h;
}

uint64_t (*fbxi_devtimes_hash)(const char *org, const char *dev) = dt_fnv;

static uint64_t
dt_bucket(const char *org, const char *dev, int fam)
{
	uint64_t key = (fbxi_devtimes_hash(org, dev) & ~(3ull << 62)) |
	    ((uint64_t)(fam & 3) << 62);

	return key ? key : 1;
}

static struct dt_ent *
dt_find(const struct fbxi_devtimes *dt, const char *org, const char *dev,
    int fam)
{
	uint64_t i;

	if (!fbxi_idmap_get(&dt->head, dt_bucket(org, dev, fam), &i))
		return NULL;
	while (i != 0) {
		struct dt_ent *x = &dt->v[i - 1];
		if (x->fam == fam && strcmp(x->dev, dev) == 0 &&
		    strcmp(x->org, org) == 0)
			return x;
		i = x->next;
	}
	return NULL;
}

struct fbxi_devtimes *
fbxi_devtimes_new(void)
{
	struct fbxi_devtimes *dt = calloc(1, sizeof(*dt));

	if (dt != NULL)
		fbxi_idmap_init(&dt->head);
	return dt;
}

void
fbxi_devtimes_free(struct fbxi_devtimes *dt)
{
	if (dt == NULL)
		return;
	fbxi_idmap_fini(&dt->head);
	free(dt->v);
	free(dt);
}

/* fbxi_devtimes_note - remember t for the device if it is newer. */
int
fbxi_devtimes_note(struct fbxi_devtimes *dt, const char *org,
    const char *dev, int fam, int64_t t)
{
	struct dt_ent *x = dt_find(dt, org, dev, fam);
	uint64_t key = dt_bucket(org, dev, fam), first = 0;

	if (x != NULL) {
		if (x->t < t)
			x->t = t;
		return FBX_OK;
	}
	if (dt->n == dt->cap) {
		size_t ncap = dt->cap ? dt->cap * 2 : 256;
		struct dt_ent *nv = realloc(dt->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return FBX_ENOMEM;
		dt->v = nv;
		dt->cap = ncap;
	}
	(void)fbxi_idmap_get(&dt->head, key, &first);
	x = &dt->v[dt->n];
	memset(x, 0, sizeof(*x));
	x->t = t;
	x->fam = fam;
	x->next = (size_t)first;
	snprintf(x->org, sizeof(x->org), "%s", org);
	snprintf(x->dev, sizeof(x->dev), "%s", dev);
	if (fbxi_idmap_put(&dt->head, key, dt->n + 1) != 0)
		return FBX_ENOMEM;
	dt->n++;
	return FBX_OK;
}

int
fbxi_devtimes_get(const struct fbxi_devtimes *dt, const char *org,
    const char *dev, int fam, int64_t *t)
{
	const struct dt_ent *x = dt_find(dt, org, dev, fam);

	if (x == NULL)
		return 0;
	*t = x->t;
	return 1;
}
/* ---------------------------------------------------------- survey */

/* A survey of later commands for "changed since": per device and family
 * the newest time a later command outside the selection reached it. It
 * is built in slices too and kept in memory between them, keyed by the
 * run (organisation, selection, snapshot); a restart loses it and the
 * next slice surveys again, from the start. Each slice first catches the
 * survey up to the newest command, so a command journaled while the
 * rollback runs counts as a later change. */
struct rb_survey {
	const struct fbx_engine *e;
	fbx_id org;
	uint64_t snapshot, fp;
	int64_t since, last_use;
	uint64_t after;   /* last command completely surveyed, 0 = none */
	uint64_t cur;     /* command being surveyed, 0 = none */
	uint32_t cur_idx; /* its next delivery index */
	struct fbxi_devtimes *latest;
	/* devices a kept command before the incident's onset locked (lock
	 * family): the storm's lock changed nothing on them */
	struct fbxi_devtimes *before;
};

#define RB_SURVEYS 4
static struct rb_survey *rb_surveys[RB_SURVEYS];

/* lock_dir - 1 for a command that leaves a device locked (lock, lost
 * mode), 3 for one that unlocks it, 0 for neither (a wipe resets the
 * device): the families' keys of the survey's before-onset notes */
static int
lock_dir(int type)
{
	switch (type) {
	case FBX_CMD_LOCK:
	case FBX_CMD_START_LOST_MODE:
		return 1;
	case FBX_CMD_UNLOCK:
	case FBX_CMD_STOP_LOST_MODE:
		return 3;
	default:
		return 0;
	}
}

/* rb_bo_prior - c locks or unlocks devices and the rollback leaves it
 * (not selected, of any origin, or the incident's own before its
 * onset): the survey notes where and when, so that a selected lock of
 * a device such a command had locked before it is not undone
 * (fbxi_rb_bo_locked). Not for runs of named commands. */
static int
rb_bo_prior(const struct rb_ctx *r, const struct fbx_command *c)
{
	return r->nnamed == 0 && c->id <= r->snapshot &&
	    lock_dir(c->type) != 0 &&
	    (!fbxi_rb_selected(r, c) || fbxi_rb_bo_kept(r, c));
}

uint64_t
fbxi_rb_fp_mix(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

/* rb_fingerprint - the selection, for keying its survey. */
static uint64_t
rb_fingerprint(const struct rb_ctx *r)
{
	const struct fbx_selector *s = r->s;
	uint64_t h = 1469598103934665603ull;
	int v[3] = { s->breaker_global, s->origin, s->type };

	h = fbxi_rb_fp_mix(h, s->breaker, strlen(s->breaker) + 1);
	h = fbxi_rb_fp_mix(h, s->reason, strlen(s->reason) + 1);
	h = fbxi_rb_fp_mix(h, v, sizeof(v));
	h = fbxi_rb_fp_mix(h, &r->since, sizeof(r->since));
	h = fbxi_rb_fp_mix(h, &r->until, sizeof(r->until));
	if (r->nnamed > 0)
		h = fbxi_rb_fp_mix(h, r->named, r->nnamed * sizeof(*r->named));
	return h;
}

void
fbxi_rb_survey_drop(struct rb_survey *sv)
{
	for (int i = 0; i < RB_SURVEYS; i++) {
		if (rb_surveys[i] == sv) {
			rb_surveys[i] = NULL;
			fbxi_devtimes_free(sv->latest);
			fbxi_devtimes_free(sv->before);
			free(sv);
			return;
		}
	}
}

/* fbxi_rb_survey_get - the run's survey, or a new one; the least recently
 * used goes when all slots are taken. */
int
fbxi_rb_survey_get(struct rb_ctx *r, int64_t since, struct rb_survey **out)
{
	uint64_t fp = rb_fingerprint(r);
	struct rb_survey *sv;
	int slot = -1;

	for (int i = 0; i < RB_SURVEYS; i++) {
		sv = rb_surveys[i];
		if (sv != NULL && sv->e == r->e && sv->snapshot == r->snapshot &&
		    sv->fp == fp && sv->since == since &&
		    strcmp(sv->org, r->org) == 0) {
			sv->last_use = r->e->now;
			*out = sv;
			return FBX_OK;
		}
	}
	for (int i = 0; i < RB_SURVEYS; i++) {
		if (rb_surveys[i] == NULL) {
			slot = i;
			break;
		}
		if (slot < 0 ||
		    rb_surveys[i]->last_use < rb_surveys[slot]->last_use)
			slot = i;
	}
	if (rb_surveys[slot] != NULL)
		fbxi_rb_survey_drop(rb_surveys[slot]);
	sv = calloc(1, sizeof(*sv));
	if (sv == NULL)
		return FBX_ENOMEM;
	sv->latest = fbxi_devtimes_new();
	sv->before = fbxi_devtimes_new();
	if (sv->latest == NULL || sv->before == NULL) {
		fbxi_devtimes_free(sv->latest);
		fbxi_devtimes_free(sv->before);
		free(sv);
		return FBX_ENOMEM;
	}
	sv->e = r->e;
	snprintf(sv->org, sizeof(sv->org), "%s", r->org);
	sv->snapshot = r->snapshot;
	sv->fp = fp;
	sv->since = since;
	sv->last_use = r->e->now;
	rb_surveys[slot] = sv;
	*out = sv;
	return FBX_OK;
}

/* Later, unselected commands of the organisation: remember per device and
 * family the newest time one of them reached the device. */
static int
rb_later_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rb_ctx *r = arg;

	r->seen++;
	r->last_dlv = d->id;
	if (d->state == FBX_D_CANCELLED || d->state == FBX_D_EXPIRED ||
	    d->state == FBX_D_FAILED || d->state == FBX_D_SUPERSEDED)
		return 0; /* never reached the device */
	if (r->note_before)
		r->err = fbxi_devtimes_note(r->sv->before, r->cur->org,
		    d->device, lock_dir(r->cur->type), r->cur->created_ms);
	if (r->note_latest && r->err == 0)
		r->err = fbxi_devtimes_note(r->sv->latest, r->cur->org,
		    d->device, fbxi_rb_family(r->cur->type), r->cur->created_ms);
	return r->err != 0;
}

/* rb_later_noted - c is an unselected command whose reaching a device
 * changes what undoing the selection would do there (changed since):
 * not the rollback's own, not of the selection, and within its window
 * (the survey starts earlier for rb_bo_prior) */
static int
rb_later_noted(const struct rb_ctx *r, const struct fbx_command *c)
{
	return fbxi_rb_family(c->type) != 0 && c->origin != FBX_ORIGIN_ROLLBACK &&
	    !fbxi_rb_selected(r, c) && c->created_ms >= r->since;
}

/* rb_survey_dlvs - survey c's deliveries from index idx within the
 * budget; sv->cur says whether it is done. */
static int
rb_survey_dlvs(struct rb_ctx *r, const struct fbx_command *c, uint32_t idx)
{
	struct rb_survey *sv = r->sv;
	struct cmdc *cc = fbxi_cmd_find(r->e, c->id);
	uint32_t nd = c->ndeliveries, limit;
	uint64_t to;
	int rc;

	if (cc != NULL && cc->c.ndeliveries > nd)
		nd = cc->c.ndeliveries;
	r->note_before = rb_bo_prior(r, c);
	r->note_latest = rb_later_noted(r, c);
	to = FBX_DLV_ID(c->id, 0) + nd;
	if (idx >= nd)
		goto done;
	if (r->ndlv >= r->dlv_budget) {
		sv->cur = c->id;
		sv->cur_idx = idx;
		r->stopped = 1;
		return FBX_OK;
	}
	limit = r->dlv_budget - r->ndlv;
	r->cur = c;
	r->seen = 0;
	r->last_dlv = 0;
	rc = fbx_store_dlv_scan(r->e->txn, FBX_DLV_ID(c->id, idx), to, limit,
	    rb_later_dlv_cb, r);
	r->cur = NULL;
	r->ndlv += r->seen;
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	if (r->err != FBX_OK)
		return r->err;
	if (r->seen == limit && r->last_dlv + 1 < to) {
		sv->cur = c->id;
		sv->cur_idx = FBX_DLV_IDX(r->last_dlv) + 1;
		r->stopped = 1;
		return FBX_OK;
	}
done:
	sv->cur = 0;
	sv->cur_idx = 0;
	sv->after = c->id;
	return FBX_OK;
}

static int
rb_later_cb(void *arg, const struct fbx_command *c)
{
	struct rb_ctx *r = arg;
	int rc;

	if (fbxi_rb_spent(r)) {
		r->stopped = 1;
		return 1;
	}
	r->ncmd++;
	r->nlater++;
	if (!rb_bo_prior(r, c) && !rb_later_noted(r, c)) {
		r->sv->after = c->id;
		return 0;
	}
	rc = rb_survey_dlvs(r, c, 0);
	if (rc != FBX_OK)
		r->err = rc;
	return r->err != 0 || r->stopped;
}

/* fbxi_rb_survey_run - bring the survey up to the newest command, within the
 * slice's budget. r->stopped says it is not there yet. */
int
fbxi_rb_survey_run(struct rb_ctx *r)
{
	struct rb_survey *sv = r->sv;
	int rc;

	if (sv->cur != 0) {
		struct fbx_command c;
		rc = fbx_store_cmd_get(r->e->txn, sv->cur, &c);
		if (rc == FBX_ENOT_FOUND) {
			/* pruned meanwhile: nothing of it reaches a device */
			sv->after = sv->cur;
			sv->cur = 0;
		} else if (rc != FBX_OK) {
			return rc;
		} else {
			rc = rb_survey_dlvs(r, &c, sv->cur_idx);
			fbx_command_clear(&c);
			if (rc != FBX_OK || r->stopped)
				return rc;
		}
	}
	rc = fbx_store_cmd_list(r->e->txn, r->org, sv->since, 0, sv->after, 0,
	    rb_later_cb, r);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	return r->err;
}

int
fbxi_rb_changed_since(struct rb_ctx *r, const struct fbx_command *c,
    const char *dev)
{
	int64_t t;
	int fam = fbxi_rb_family(c->type);

	if (fam == 0 || r->sv == NULL)
		return 0;
	return fbxi_devtimes_get(r->sv->latest, c->org, dev, fam, &t) &&
	    t > c->created_ms;
}

/* fbxi_rb_bo_locked - d, of a lock-family command that can be undone (lock,
 * start_lost_mode; not a wipe or clear_passcode, whose rows say they
 * cannot be undone), is to a device that a command the rollback leaves
 * had locked before it (the incident's own before its onset, or any
 * other, such as an operator's lock of a lost phone, from 30 days
 * before the selection's window) with no unlock in between: left as
 * it is, as if not selected ("locked before the onset too" in an
 * incident, "locked before it too" otherwise) */
int
fbxi_rb_bo_locked(const struct rb_ctx *r, const struct fbx_command *c,
    const struct fbx_delivery *d)
{
	int64_t locked, unlocked;

	/* c locks (its undoing unlocks); the newest such lock, if it came
	 * before c (a newer one is a change since c: fbxi_rb_changed_since) */
	if (lock_dir(c->type) != 1 || fbxi_rb_irreversible(c->type) ||
	    fbxi_rb_compensation_of(c->type) == FBX_CMD_NONE || r->sv == NULL ||
	    !fbxi_devtimes_get(r->sv->before, c->org, d->device, 1,
	        &locked) ||
	    locked >= c->created_ms)
		return 0;
	/* unless an unlock came between it and c */
	return !fbxi_devtimes_get(r->sv->before, c->org, d->device, 3,
	           &unlocked) ||
	    unlocked <= locked || unlocked >= c->created_ms;
}

/* fbxi_rb_surveys_tidy - drop the surveys of runs left unfinished for an
 * hour (a client that gave up): each holds a map of devices. */
void
fbxi_rb_surveys_tidy(const struct fbx_engine *e)
{
	for (int i = 0; i < RB_SURVEYS; i++) {
		struct rb_survey *sv = rb_surveys[i];
		if (sv != NULL && sv->e == e &&
		    e->now - sv->last_use > 3600 * 1000)
			fbxi_rb_survey_drop(sv);
	}
}
