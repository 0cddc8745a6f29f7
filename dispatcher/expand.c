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
};

static int
make_delivery(struct expand_ctx *x, const struct fbx_device *dev)
{
	struct fbx_engine *e = x->e;
	struct cmdc *cc = x->cc;
	struct fbx_delivery d;
	int rc;

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
	if (cc->c.ndeliveries >= FBX_DEVICES_PER_CMD_MAX) {
		x->full = 1;
		return FBX_OK;
	}
	memset(&d, 0, sizeof(d));
	d.id = FBX_DLV_ID(cc->c.id, cc->c.ndeliveries);
	/* rollouts release deliveries wave by wave: all start QUEUED */
	d.state = dev->online || cc->c.rollout.enabled ? FBX_D_QUEUED
	                                               : FBX_D_PENDING;
	d.updated_ms = e->now;
	snprintf(d.device, sizeof(d.device), "%s", dev->id);
	d.nhist = 1;
	d.hist[0].state = d.state;
	d.hist[0].at_ms = e->now;
	rc = fbx_store_dlv_put(e->txn, &d);
	if (rc == FBX_OK && d.state == FBX_D_PENDING)
		rc = fbx_store_pend_add(e->txn, cc->c.org, dev->id, d.id);
	if (rc == FBX_OK && d.state == FBX_D_QUEUED && !cc->c.rollout.enabled)
		rc = fbxi_orgq_push(e, cc->q, cc->c.priority, d.id);
	if (rc != FBX_OK)
		return rc;
	cc->c.ndeliveries++;
	cc->c.counts[d.state]++;
	x->made++;
	/* an older lock still waiting for this device is replaced */
	fbxi_supersede_new(e, cc, d.id, dev->id);
	return fbxi_err(e);
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

/* expand_cmd - create up to `budget` deliveries of an EXPANDING command;
 * the cursor is journaled with them, so a restart resumes exactly here.
 * @return devices examined. */
static uint32_t
expand_cmd(struct fbx_engine *e, struct cmdc *cc, uint32_t budget)
{
	struct expand_ctx x = { e, cc, 0, budget, 0, 0 };
	uint32_t seen = 0;
	int done = 0;

	if (cc->c.target_kind == FBX_TARGET_DEVICES) {
		while (cc->c.cursor_idx < cc->c.ndev_ids && seen < budget &&
		    !x.full) {
			struct fbx_device dev;
			int rc = fbx_store_dev_get(e->txn, cc->c.org,
			    cc->c.dev_ids[cc->c.cursor_idx], &dev);
			seen++;
			if (rc == FBX_OK)
				rc = make_delivery(&x, &dev);
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
		rc = fbx_store_dev_scan(e->txn, cc->c.org, grp, cc->c.cursor,
		    budget, expand_dev_cb, &x);
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
			/* this group is expanded: its first wave goes now */
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
fbxi_expand_inline(struct fbx_engine *e, struct cmdc *cc)
{
	uint32_t used;

	if (cc->c.state != FBX_C_EXPANDING || e->xbudget == 0)
		return;
	used = expand_cmd(e, cc, e->xbudget);
	e->xbudget = used >= e->xbudget ? 0 : e->xbudget - used;
}

void
fbxi_expand_step(struct fbx_engine *e)
{
	uint32_t budget = e->xbudget;
	size_t n = 0;

	for (struct cmdc *cc = e->xhead; cc != NULL; cc = cc->xnext)
		n++;
	while (e->xhead != NULL && budget > 0 && fbxi_err(e) == FBX_OK) {
		/* share the budget so a small command is not stuck behind
		 * a million-device one */
		uint32_t share = budget / (uint32_t)(n ? n : 1);
		struct cmdc *cc = e->xhead;
		if (share < 1024)
			share = budget < 1024 ? budget : 1024;
		uint32_t used = expand_cmd(e, cc, share);
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
}
