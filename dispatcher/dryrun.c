/*
 * dryrun.c: the dry run of a submit: what the command would do (devices
 * per platform and group, the rollout's waves) and what would stop it
 * (breakers, the blast-radius limit), from the records the gates read;
 * nothing is journaled or counted.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

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
	    "would be admitted: %u device%s", k.n, k.n == 1 ? "" : "s");
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
		/* as the gate sees it (not saved: a dry run) */
		(void)fbxi_breaker_follow_global(&b, &g, e->now);
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
	rc = fbxi_limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc == FBX_OK)
		rc = fbxi_limit_use_load(
		    e->txn, c->org, c->type, cfg.window_s, cfg.changed_ms, e->now, &w);
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
				    "would be admitted: %u device%s; rate cap "
				    "%u/s paces dispatch over about %u s",
				    k.n, k.n == 1 ? "" : "s", q->rate.rate_per_s,
				    k.n / q->rate.rate_per_s);
		}
	}
reply:
	fbxi_console_reply(e, in, &rep);
out:
	free(k.groups);
}
