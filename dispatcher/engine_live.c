/*
 * engine_live.c: what the daemon's main may read or change while the
 * engine runs, between turns: the settings a reload (SIGHUP) may change
 * and the figures a service manager's status line shows. It runs on the
 * loop's thread, from the loop hook, so it needs no locking; it calls
 * nothing above the engine's memory.
 */
#include <stdio.h>
#include <string.h>

#include "engine_int.h"

int
fbx_engine_reconfigure(fbx_engine *e, const struct fbx_engine_opts *o)
{
	if (e == NULL || o == NULL)
		return FBX_EINVAL;
	/* the same defaults as fbx_engine_open_io() */
	e->o.approval_ttl_s = o->approval_ttl_s ? o->approval_ttl_s : 86400;
	e->o.retention_s = o->retention_s;
	e->o.audit_retention_days = o->audit_retention_days;
	e->o.rollback_slice = o->rollback_slice;
	e->o.org_share_ppm = o->org_share_ppm ? o->org_share_ppm : 250000;
	e->o.admin_org = o->admin_org;
	e->o.drain_ms = o->drain_ms ? o->drain_ms : 5000;
	e->o.default_ttl_s = o->default_ttl_s ? o->default_ttl_s : 86400;
	e->o.alert_cmd = o->alert_cmd;
	return FBX_OK;
}

int
fbx_engine_stat(fbx_engine *e, struct fbx_engine_stats *s)
{
	size_t pos = 0;
	uint64_t k, v;

	if (e == NULL || s == NULL)
		return FBX_EINVAL;
	memset(s, 0, sizeof(*s));
	snprintf(s->version, sizeof(s->version), "%s", FBX_VERSION);
	s->uptime_ms = (uint64_t)(e->mono - e->started_ms);
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (g->dead)
			continue;
		s->gateways++;
		s->deliveries_inflight += g->inflight.len;
	}
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		s->commands_active++;
		s->deliveries_queued += cc->c.counts[FBX_D_QUEUED];
		s->deliveries_pending += cc->c.counts[FBX_D_PENDING];
	}
	s->commits = e->commits;
	s->turn_max_us = e->turn_max_us;
	s->turns_failed = e->turns_failed;
	s->degraded = e->degraded;
	return FBX_OK;
}
