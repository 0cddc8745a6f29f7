/*
 * engine_live.c: what the daemon's main may read or change while the
 * engine runs, between turns: the settings a reload (SIGHUP) may change,
 * the figures a service manager's status line shows and the snapshot
 * /metrics serves. It runs on the loop's thread, from the loop hook, so
 * it needs no locking of the engine; it calls nothing above the
 * engine's memory and the store's read side.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "certs.h"
#include "fleet.h"
#include "outcomes.h"
#include "engine_int.h"
#include "metrics.h"

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
		s->commands_held += cc->c.state == FBX_C_HELD;
		s->commands_settling += cc->c.state == FBX_C_SETTLING;
	}
	s->commits = e->commits;
	s->turn_max_us = e->turn_max_us;
	s->turns_failed = e->turns_failed;
	/* within a turn after failed ones: degraded until it commits */
	s->degraded = e->degraded || e->fail_streak > 0;
	s->auth_refused = e->auth_refused;
	s->results_forged = e->forged_results;
	if (e->auth != NULL) {
		pthread_mutex_lock(&e->auth->mu);
		s->handshakes_refused = e->auth->zap_refused;
		pthread_mutex_unlock(&e->auth->mu);
	}
	return FBX_OK;
}

/* brk_scan_cb - one breaker record: count it if open, list the first
 * FBX_METRICS_BRK_MAX open ones */
static int
brk_scan_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct fbx_engine *e = arg;
	struct fbxi_breaker b;
	const char *org = key + 4, *slash = strchr(org, '/');

	if (slash == NULL || fbxi_brk_decode(val, len, &b) != FBX_OK)
		return 0;
	if (b.state != FBX_BS_OPEN)
		return 0;
	e->m_brk_open++;
	if (e->m_nbrk == FBX_METRICS_BRK_MAX) {
		e->m_brk_trunc = 1;
		return 0;
	}
	snprintf(e->m_brk[e->m_nbrk].org, sizeof(e->m_brk[0].org), "%.*s",
	    (int)(slash - org), org);
	snprintf(e->m_brk[e->m_nbrk].reason, sizeof(e->m_brk[0].reason),
	    "%s", slash + 1);
	e->m_nbrk++;
	return 0;
}

/* brk_scan - the open breakers, from the store: breaker records are not
 * kept in memory, and every automatic lock-type command rewrites one,
 * so this reads them at most once a second, between turns, in a read
 * transaction of its own (what is committed). */
static void
brk_scan(struct fbx_engine *e)
{
	fbx_txn *txn = NULL;
	int64_t now = fbxi_mono_ms();

	if (e->m_brk_at != 0 && now - e->m_brk_at < FBXI_METRICS_BRK_SCAN_MS)
		return;
	e->m_brk_at = now;
	e->m_brk_open = 0;
	e->m_nbrk = 0;
	e->m_brk_trunc = 0;
	e->m_brk_valid = 0;
	if (e->st == NULL || fbx_txn_begin(e->st, 0, &txn) != FBX_OK)
		return;
	if (fbx_store_kv_scan(txn, "brk/", brk_scan_cb, e) == FBX_OK)
		e->m_brk_valid = 1;
	fbx_txn_abort(txn);
}

static int
brk_open_cb(void *arg, const char *key, const void *val, size_t len)
{
	uint32_t *n = arg;
	struct fbxi_breaker b;

	(void)key;
	if (fbxi_brk_decode(val, len, &b) == FBX_OK && b.state == FBX_BS_OPEN)
		(*n)++;
	return 0;
}

uint32_t
fbxi_breakers_open(struct fbx_engine *e)
{
	uint32_t n = 0;

	/* the request's own transaction (a ping is read-only: its reply
	 * leaves only if the turn commits); not the metrics' cache, which
	 * holds only what is committed */
	if (e->txn == NULL ||
	    fbx_store_kv_scan(e->txn, "brk/", brk_open_cb, &n) != FBX_OK)
		return UINT32_MAX;
	return n;
}

/* brk_held - command cc is held by breaker key "org/reason": count it
 * against its breaker in m, listing a closed breaker that still holds
 * commands too (while there is room) */
static void
brk_held(struct fbx_metrics *m, const char *key)
{
	const char *slash = strchr(key, '/');
	size_t ol;

	if (slash == NULL)
		return;
	ol = (size_t)(slash - key);
	for (size_t i = 0; i < m->nbrk; i++) {
		if (strlen(m->brk[i].org) == ol &&
		    strncmp(m->brk[i].org, key, ol) == 0 &&
		    strcmp(m->brk[i].reason, slash + 1) == 0) {
			m->brk[i].held++;
			return;
		}
	}
	if (m->nbrk == FBX_METRICS_BRK_MAX) {
		m->brk_truncated = 1;
		return;
	}
	snprintf(m->brk[m->nbrk].org, sizeof(m->brk[0].org), "%.*s", (int)ol,
	    key);
	snprintf(m->brk[m->nbrk].reason, sizeof(m->brk[0].reason), "%s",
	    slash + 1);
	m->brk[m->nbrk].open = 0;
	m->brk[m->nbrk].held = 1;
	m->nbrk++;
}

int
fbx_engine_metrics(fbx_engine *e, struct fbx_metrics *m)
{
	struct fbx_store_stat ss;
	size_t pos = 0;
	uint64_t k, v;
	int64_t wall;

	if (e == NULL || m == NULL)
		return FBX_EINVAL;
	memset(m, 0, sizeof(*m));
	m->taken_ms = fbxi_mono_ms();
	m->uptime_ms = (uint64_t)(e->mono - e->started_ms);
	m->commits = e->commits;
	m->turns_failed = e->turns_failed;
	m->syncs_failed = e->syncs_failed;
	m->degraded = e->degraded || e->fail_streak > 0;
	m->cluster = e->cluster;
	m->leases = e->st != NULL ? fbx_store_owned(e->st) : 0;
	m->lease_changes = e->lease_changes;
	m->fenced = e->fenced;
	m->turn = e->m_turn;
	m->commit = e->m_commit;
	m->submit_ack = e->m_ack;
	m->submit_result = e->m_result;
	m->dlv_sent = e->dlv_sent;
	m->results_in = e->results_in;
	m->results_ignored = e->ignored_results;
	m->superseded = e->superseded;
	m->sx_builds = e->sx_builds;
	m->sx_read = e->sx_read;
	m->sx_entries = e->supersede.len;
	m->sx_sweeps = e->sx_sweeps;
	m->sx_dropped = e->sx_dropped;
	m->devices = e->fleet_total;
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		if (g->dead)
			continue;
		m->gateways++;
		m->gw_inflight += g->inflight.len;
		if (m->ngw == FBX_METRICS_GW_MAX) {
			m->gw_truncated = 1;
			continue;
		}
		snprintf(m->gw[m->ngw].id, sizeof(m->gw[0].id), "%s", g->id);
		m->gw[m->ngw].window = g->window;
		m->gw[m->ngw].inflight = (uint32_t)g->inflight.len;
		m->gw[m->ngw].bytes = g->ubytes;
		m->ngw++;
	}
	brk_scan(e);
	m->brk_valid = e->m_brk_valid;
	m->breakers_open = e->m_brk_open;
	m->brk_truncated = e->m_brk_trunc;
	for (size_t i = 0; i < e->m_nbrk; i++) {
		memcpy(m->brk[i].org, e->m_brk[i].org, sizeof(m->brk[i].org));
		memcpy(m->brk[i].reason, e->m_brk[i].reason,
		    sizeof(m->brk[i].reason));
		m->brk[i].open = 1;
	}
	m->nbrk = e->m_nbrk;
	while (fbxi_idmap_next(&e->cmds, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		m->cmd_active++;
		for (int s = 0; s < FBX_D_COUNT; s++)
			m->dlv[s] += cc->c.counts[s];
		switch (cc->c.state) {
		case FBX_C_EXPANDING:
			m->cmd_expanding++;
			break;
		case FBX_C_HELD:
			m->cmd_held++;
			brk_held(m, cc->c.held_by);
			break;
		case FBX_C_SETTLING:
			m->cmd_settling++;
			break;
		default:
			break;
		}
	}
	m->auth_refused = e->auth_refused;
	m->results_forged = e->forged_results;
	if (e->auth != NULL) {
		pthread_mutex_lock(&e->auth->mu);
		m->handshakes_refused = e->auth->zap_refused;
		pthread_mutex_unlock(&e->auth->mu);
	}
	wall = e->o.clock != NULL ? e->o.clock(e->o.clock_arg, 0) : 0;
	if (e->o.clock == NULL) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	if (e->certs != NULL) {
		for (size_t i = 0; i < e->certs->n && i < FBX_CERTS_MAX; i++) {
			snprintf(m->cert[m->ncert].name,
			    sizeof(m->cert[0].name), "%s",
			    e->certs->v[i].name);
			m->cert[m->ncert].left_ms =
			    e->certs->v[i].not_after_ms - wall;
			m->ncert++;
		}
	}
	{
		struct fbxi_fleet_totals ft;
		fbxi_fleet_totals(e, &ft);
		m->fleet_as_of_ms = ft.as_of_ms;
		memcpy(m->fleet_hours, ft.offline_hours, sizeof(m->fleet_hours));
		m->fleet_orgs_alerting = ft.orgs_alerting;
	}
	{
		struct fbxi_outcome_counts oc[FBX_CMD_TYPE_COUNT];
		fbxi_outcomes_totals(e->outcomes, oc);
		for (int t = 0; t < FBX_CMD_TYPE_COUNT; t++) {
			m->outcomes[t][0] = oc[t].succeeded;
			m->outcomes[t][1] = oc[t].failed;
			m->outcomes[t][2] = oc[t].expired;
		}
	}
	if (e->st != NULL && fbx_store_stat(e->st, &ss) == FBX_OK) {
		m->store_valid = 1;
		m->map_bytes = ss.map_size;
		m->used_bytes = ss.used_bytes;
		m->file_bytes = ss.file_bytes;
		m->readers_used = ss.readers_used;
		m->cmd_ix_lag = ss.cmd_ix_lag;
		m->audit_ix_lag = ss.audit_ix_lag;
	}
	return FBX_OK;
}
