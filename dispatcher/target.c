/*
 * target.c: a command's target counted: the devices it reaches now, per
 * platform, group and rollout stage, for the gates and the dry run
 * (admit.c counts, dryrun.c reads the count) and a held command's
 * release (breaker.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

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
