/*
 * expand.c: target expansion: a command's target (devices, a group, an
 * organisation, a platform, a rollout's stage) becomes one delivery per
 * device, in bounded slices with a journaled cursor, shared fairly
 * between the commands still expanding. Calls core and queue only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

struct expand_ctx {
	struct fbx_engine *e;
	struct cmdc *cc;
	uint32_t made;
	uint32_t budget;
	uint32_t scanned;
	int full; /* the command reached FBX_DEVICES_PER_CMD_MAX */
	/* the brief scan's device one behind: its supersede slot was
	 * loaded while the scan went on (expand_brief_cb) */
	int npend;
	char pend_id[FBX_ID_MAX + 1];
	size_t pend_len;
	uint8_t pend_online;
};

/* make_one - the delivery of the command's next index for device `dev`
 * (len bytes), already known to be in the target; created cancelled when
 * a rollback of one group's devices took the device (cancel). */
static int
make_one(struct expand_ctx *x, const char *dev, size_t len, int online,
    int cancel)
{
	struct fbx_engine *e = x->e;
	struct cmdc *cc = x->cc;
	char id[FBX_ID_MAX + 1];
	uint64_t did;
	int state, rc;

	if (cc->c.ndeliveries >= FBX_DEVICES_PER_CMD_MAX) {
		x->full = 1;
		return FBX_OK;
	}
	did = FBX_DLV_ID(cc->c.id, cc->c.ndeliveries);
	/* rollouts release deliveries wave by wave: all start QUEUED */
	state = online || cc->c.rollout.enabled ? FBX_D_QUEUED
	                                        : FBX_D_PENDING;
	if (cancel)
		state = FBX_D_CANCELLED;
	memcpy(id, dev, len);
	id[len] = '\0';
	rc = fbx_store_dlv_create(e->txn, did, state, dev, len, e->now, 0);
	if (rc == FBX_OK && state == FBX_D_PENDING)
		rc = fbx_store_pend_add(e->txn, cc->c.org, id, did);
	if (rc == FBX_OK && state == FBX_D_QUEUED && !cc->c.rollout.enabled)
		rc = fbxi_orgq_push(e, cc->q, cc->c.priority, did);
	if (rc != FBX_OK)
		return rc;
	cc->c.ndeliveries++;
	cc->c.counts[state]++;
	x->made++;
	if (cancel)
		return FBX_OK;
	/* an older lock still waiting for this device is replaced */
	fbxi_supersede_new(e, cc, did, id);
	return fbxi_err(e);
}

static int
make_delivery(struct expand_ctx *x, const struct fbx_device *dev)
{
	struct cmdc *cc = x->cc;

	if (cc->c.platform != FBX_PLATFORM_ANY &&
	    dev->platform != cc->c.platform)
		return FBX_OK;
	if (cc->c.rollout.enabled && cc->c.rollout.ngroups > 0) {
		/* group stages: a device belongs to the first listed group
		 * it is in; the last stage takes the devices of none */
		uint32_t stage = cc->c.cursor_idx, upto = stage;
		if (upto > cc->c.rollout.ngroups)
			upto = cc->c.rollout.ngroups;
		for (uint32_t j = 0; j < upto; j++) {
			for (unsigned gi = 0; gi < dev->ngroups; gi++) {
				if (strcmp(dev->groups[gi],
				        cc->c.rollout.groups[j]) == 0)
					return FBX_OK;
			}
		}
	}
	return make_one(x, dev->id, strlen(dev->id), dev->online,
	    cc->nxgroups > 0 && fbxi_xgroup_has(cc, dev));
}

static int
expand_dev_cb(void *arg, const struct fbx_device *dev)
{
	struct expand_ctx *x = arg;
	int rc = make_delivery(x, dev);

	x->scanned++;
	if (rc != FBX_OK) {
		fbxi_set_err(x->e, rc);
		return 1;
	}
	snprintf(x->cc->c.cursor, sizeof(x->cc->c.cursor), "%s", dev->id);
	fbxi_cmd_touch(x->cc);
	return x->full;
}

/* brief_flush - make the delivery of the device the brief scan left
 * pending (one in the target), and move the cursor past it. */
static int
brief_flush(struct expand_ctx *x)
{
	struct cmdc *cc = x->cc;
	int rc;

	if (!x->npend)
		return 0;
	x->npend = 0;
	rc = make_one(x, x->pend_id, x->pend_len, x->pend_online, 0);
	if (rc != FBX_OK) {
		fbxi_set_err(x->e, rc);
		return 1;
	}
	memcpy(cc->c.cursor, x->pend_id, x->pend_len + 1);
	fbxi_cmd_touch(cc);
	return x->full;
}

/* expand_brief_cb - expand_dev_cb from the registry's compact view: no
 * device record decoded, no string formatted. Each device waits one
 * device in x, so the supersede index slot it needs is loaded by then. */
static int
expand_brief_cb(void *arg, const struct fbx_dev_brief *dev)
{
	struct expand_ctx *x = arg;
	struct cmdc *cc = x->cc;

	if (brief_flush(x) != 0)
		return 1;
	x->scanned++;
	memcpy(x->pend_id, dev->id, dev->id_len);
	x->pend_id[dev->id_len] = '\0';
	if (cc->c.platform == FBX_PLATFORM_ANY ||
	    dev->platform == cc->c.platform) {
		x->npend = 1;
		x->pend_len = dev->id_len;
		x->pend_online = dev->online;
		fbxi_supersede_prefetch(x->e, cc, x->pend_id);
	} else {
		/* not in the target: only the cursor moves past it */
		memcpy(cc->c.cursor, x->pend_id, dev->id_len + 1);
		fbxi_cmd_touch(cc);
	}
	return 0;
}

/* expand_cmd - create up to `budget` deliveries of an EXPANDING command;
 * the cursor is journaled with them, so a restart resumes exactly here.
 * @return devices examined. */
static uint32_t
expand_cmd(struct fbx_engine *e, struct cmdc *cc, uint32_t budget,
    const struct fbx_device *hint)
{
	struct expand_ctx x;
	uint32_t seen = 0;
	int done = 0;

	memset(&x, 0, sizeof(x));
	x.e = e;
	x.cc = cc;
	x.budget = budget;

	if (cc->c.target_kind == FBX_TARGET_DEVICES) {
		while (cc->c.cursor_idx < cc->c.ndev_ids && seen < budget &&
		    !x.full) {
			struct fbx_device dev;
			const struct fbx_device *dp = &dev;
			int rc = FBX_OK;
			/* the submit read a one-device target's device in this
			 * transaction: the same record */
			if (hint != NULL && cc->c.cursor_idx == 0 &&
			    cc->c.ndev_ids == 1 &&
			    strcmp(hint->id, cc->c.dev_ids[0]) == 0 &&
			    strcmp(hint->org, cc->c.org) == 0)
				dp = hint;
			else
				rc = fbx_store_dev_get(e->txn, cc->c.org,
				    cc->c.dev_ids[cc->c.cursor_idx], &dev);
			seen++;
			if (rc == FBX_OK)
				rc = make_delivery(&x, dp);
			else if (rc == FBX_ENOT_FOUND)
				rc = FBX_OK; /* removed since the submit */
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				return seen;
			}
			cc->c.cursor_idx++;
		}
		fbxi_cmd_touch(cc);
		done = cc->c.cursor_idx >= cc->c.ndev_ids;
	} else {
		const char *grp =
		    cc->c.target_kind == FBX_TARGET_GROUP ? cc->c.group : NULL;
		int rc;
		if (cc->c.rollout.enabled &&
		    cc->c.cursor_idx < cc->c.rollout.ngroups)
			grp = cc->c.rollout.groups[cc->c.cursor_idx];
		if ((cc->c.rollout.enabled && cc->c.rollout.ngroups > 0) ||
		    cc->nxgroups > 0)
			/* group stages, and groups a rollback took, need each
			 * device's groups */
			rc = fbx_store_dev_scan(e->txn, cc->c.org, grp,
			    cc->c.cursor, budget, expand_dev_cb, &x);
		else {
			rc = fbx_store_dev_scan_brief(e->txn, cc->c.org, grp,
			    cc->c.cursor, budget, expand_brief_cb, &x);
			if (rc == FBX_OK || rc == FBX_ENOT_FOUND)
				(void)brief_flush(&x); /* the last one */
		}
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			fbxi_set_err(e, rc);
		if (fbxi_err(e) != FBX_OK)
			return budget;
		seen = x.scanned;
		/* fewer rows than asked for: the target is exhausted */
		done = x.scanned < budget;
	}
	if (x.full) {
		FBX_LOGW("command %llu: target exceeds %u devices; rest "
		         "not delivered",
		    (unsigned long long)cc->c.id, FBX_DEVICES_PER_CMD_MAX);
		done = 1;
	}
	if (done) {
		fbxi_xlist_remove(e, cc);
		cc->c.state = FBX_C_ACTIVE;
		fbxi_cmd_touch(cc);
		if (cc->c.rollout.enabled) {
			/* this group is expanded: its first wave goes now,
			 * or at the resume of one paused meanwhile */
			if (cc->c.ro.state != FBX_RO_PAUSED)
				cc->c.ro.state = FBX_RO_BAKING;
			cc->c.ro.bake_until_ms = e->now;
			cc->c.ro.wave = 0;
		}
		fbxi_cmd_maybe_done(cc);
		FBX_LOGI("command %llu (%s %s org %s): %u deliveries",
		    (unsigned long long)cc->c.id,
		    fbx_origin_name(cc->c.origin),
		    fbx_cmd_type_name(cc->c.type), cc->c.org,
		    cc->c.ndeliveries);
	}
	return seen;
}

/* expand_inline - expand a new command in the turn that accepted it, so
 * the reply can tell its size, within what the turn may still create. */
void
fbxi_expand_inline(
    struct fbx_engine *e, struct cmdc *cc, const struct fbx_device *dev)
{
	uint32_t used;

	if (cc->c.state != FBX_C_EXPANDING || e->xbudget == 0)
		return;
	used = expand_cmd(e, cc, e->xbudget, dev);
	e->xbudget = used >= e->xbudget ? 0 : e->xbudget - used;
}

/* expand_room - of `share` devices, how many cc may examine now. A
 * command whose deliveries go to the queues is expanded only as far as
 * this turn's dispatch can hand them out: a delivery created and sent in
 * the same transaction is written once (as SENT), one created ahead is
 * written QUEUED and rewritten when sent. Not held back: rollouts (their
 * waves are released later), an organisation no gateway serves or with a
 * rate cap, and a command past half its TTL, so a target is expanded in
 * full before it expires whatever the gateways do. */
static uint32_t
expand_room(struct fbx_engine *e, struct cmdc *cc, uint32_t share)
{
	int64_t room;

	if (cc->c.rollout.enabled || cc->q == NULL ||
	    e->now >= cc->c.created_ms +
	            (cc->c.expires_ms - cc->c.created_ms) / 2)
		return share;
	room = fbxi_gw_room(e, cc->q);
	if (room < 0)
		return share;
	if ((uint64_t)room <= cc->q->len)
		return 0;
	room -= (int64_t)cc->q->len;
	return (uint64_t)room < share ? (uint32_t)room : share;
}

void
fbxi_expand_step(struct fbx_engine *e)
{
	uint32_t budget = e->xbudget;
	size_t n = 0;
	int made = 0, waited = 0;

	for (struct cmdc *cc = e->xhead; cc != NULL; cc = cc->xnext)
		n++;
	while (e->xhead != NULL && budget > 0 && fbxi_err(e) == FBX_OK) {
		/* share the budget so a small command is not stuck behind
		 * a million-device one */
		uint32_t share = budget / (uint32_t)(n ? n : 1);
		struct cmdc *cc = e->xhead;
		uint32_t used = 0, lim;
		if (share < 1024)
			share = budget < 1024 ? budget : 1024;
		lim = expand_room(e, cc, share);
		if (lim > 0) {
			used = expand_cmd(e, cc, lim, NULL);
			made = 1;
		} else {
			waited = 1;
		}
		budget = used >= budget ? 0 : budget - used;
		/* rotate: a command still expanding goes to the back */
		if (e->xhead == cc && cc->c.state == FBX_C_EXPANDING &&
		    cc->xnext != NULL) {
			fbxi_xlist_remove(e, cc);
			fbxi_xlist_add(e, cc);
		}
		if (n > 0)
			n--;
		if (n == 0)
			break;
	}
	e->xidle = waited && !made;
}
