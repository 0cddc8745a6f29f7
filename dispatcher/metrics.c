/*
 * metrics.c: renders a struct fbx_metrics in the Prometheus text
 * exposition format. Pure: it reads only the snapshot it is given, so
 * it runs on the HTTP thread without touching the engine. Names follow
 * the Prometheus conventions: fusebox_ prefix, _total for counters,
 * base units (_seconds, _bytes).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_err.h"
#include "metrics.h"

/* A size-capped output buffer: once too big, it stays failed. */
struct buf {
	char *p;
	size_t len, cap, max;
	int err;
};

static void bprintf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = FBX_EINVAL;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t ncap = b->cap * 2;
			char *np;
			if (ncap < b->len + (size_t)n + 1)
				ncap = b->len + (size_t)n + 1;
			if (ncap > b->max)
				ncap = b->max;
			if (ncap < b->len + (size_t)n + 1) {
				b->err = FBX_EINVAL;
				return;
			}
			np = realloc(b->p, ncap);
			if (np == NULL) {
				b->err = FBX_ENOMEM;
				return;
			}
			b->p = np;
			b->cap = ncap;
		}
	}
}

/* esc - a label value with \, " and newline escaped (ids are short:
 * out holds twice FBX_ID_MAX and the NUL) */
static const char *
esc(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	for (; *s != '\0' && o + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			out[o++] = '\\';
			out[o++] = *s;
		} else if (*s == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
	return out;
}

static void
head(struct buf *b, const char *name, const char *type, const char *help)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
one(struct buf *b, const char *name, const char *type, const char *help,
    uint64_t v)
{
	head(b, name, type, help);
	bprintf(b, "%s %" PRIu64 "\n", name, v);
}

static const uint64_t turn_le[FBX_METRICS_NBUCKETS] = FBX_METRICS_BUCKETS_US;
static const uint64_t result_le[FBX_METRICS_NBUCKETS] =
    FBX_METRICS_RESULT_BUCKETS_US;

static void
hist(struct buf *b, const char *name, const char *help,
    const struct fbx_metrics_hist *h, const uint64_t *le)
{
	uint64_t cum = 0;

	head(b, name, "histogram", help);
	for (unsigned i = 0; i < FBX_METRICS_NBUCKETS; i++) {
		cum += h->n[i];
		bprintf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
		    (double)le[i] / 1e6, cum);
	}
	cum += h->n[FBX_METRICS_NBUCKETS];
	bprintf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	bprintf(b, "%s_sum %.6f\n", name, (double)h->sum_us / 1e6);
	bprintf(b, "%s_count %" PRIu64 "\n", name, cum);
}

static const char *const dstate[FBX_D_COUNT] = {
	[FBX_D_NONE] = NULL,
	[FBX_D_QUEUED] = "queued",
	[FBX_D_SENT] = "sent",
	[FBX_D_ACCEPTED] = "accepted",
	[FBX_D_SUCCEEDED] = "succeeded",
	[FBX_D_FAILED] = "failed",
	[FBX_D_EXPIRED] = "expired",
	[FBX_D_CANCELLED] = "cancelled",
	[FBX_D_PENDING] = "pending",
	[FBX_D_SUPERSEDED] = "superseded",
};

static void
render(struct buf *b, const struct fbx_metrics *m, int64_t now_ms)
{
	char e1[2 * FBX_ID_MAX + 2], e2[2 * FBX_ID_MAX + 2];
	int64_t age = now_ms - m->taken_ms;

	head(b, "fusebox_up", "gauge",
	    "1: the engine has published a snapshot (served from memory)");
	bprintf(b, "fusebox_up 1\n");
	head(b, "fusebox_metrics_age_seconds", "gauge",
	    "Age of this snapshot; it grows while the engine's loop is "
	    "stuck in a turn");
	bprintf(b, "fusebox_metrics_age_seconds %.3f\n",
	    (double)(age > 0 ? age : 0) / 1e3);
	head(b, "fusebox_uptime_seconds", "gauge",
	    "Seconds since the engine started");
	bprintf(
	    b, "fusebox_uptime_seconds %.3f\n", (double)m->uptime_ms / 1e3);

	/* the loop */
	one(b, "fusebox_turns_total", "counter",
	    "Turns that opened a write transaction (committed or failed)",
	    m->commits + m->turns_failed);
	one(b, "fusebox_commits_total", "counter",
	    "Turns committed (one fsync each with durability full)",
	    m->commits);
	one(b, "fusebox_turns_failed_total", "counter",
	    "Turns that did not commit (storage errors)", m->turns_failed);
	one(b, "fusebox_store_syncs_failed_total", "counter",
	    "Syncs of committed turns that failed (their outputs wait for "
	    "the next commit's sync)",
	    m->syncs_failed);
	if (m->cluster) {
		one(b, "fusebox_cluster_leases", "gauge",
		    "Organisation leases this node holds (the cluster-wide "
		    "duties count as one)",
		    m->leases);
		one(b, "fusebox_cluster_lease_changes_total", "counter",
		    "Lease ticks that changed the organisations this node "
		    "owns (each reloads them)",
		    m->lease_changes);
		one(b, "fusebox_cluster_fenced_total", "counter",
		    "Turns refused at commit because another node took a lease "
		    "of this one (nothing of them was stored or sent)",
		    m->fenced);
	}
	one(b, "fusebox_degraded", "gauge",
	    "1 while the store cannot be written (writes answered with "
	    "errors)",
	    (uint64_t)(m->degraded != 0));
	hist(b, "fusebox_turn_seconds",
	    "Duration of committed turns, from the first input to the commit",
	    &m->turn, turn_le);
	hist(b, "fusebox_commit_seconds",
	    "Duration of the commit (fsync) of committed turns", &m->commit,
	    turn_le);
	hist(b, "fusebox_submit_ack_seconds",
	    "Submit requests: from read to acknowledged (after the commit "
	    "that made them durable)",
	    &m->submit_ack, turn_le);
	hist(b, "fusebox_submit_result_seconds",
	    "Deliveries: from their command's creation to the commit that "
	    "recorded their final outcome",
	    &m->submit_result, result_le);

	/* deliveries and commands */
	head(b, "fusebox_deliveries", "gauge",
	    "Deliveries of the unfinished commands, by state");
	for (int s = 1; s < FBX_D_COUNT; s++)
		if (dstate[s] != NULL)
			bprintf(b,
			    "fusebox_deliveries{state=\"%s\"} %" PRIu64 "\n",
			    dstate[s], m->dlv[s]);
	one(b, "fusebox_deliveries_sent_total", "counter",
	    "Deliveries handed to gateways since start", m->dlv_sent);
	one(b, "fusebox_results_received_total", "counter",
	    "Delivery results received from gateways since start",
	    m->results_in);
	one(b, "fusebox_results_ignored_total", "counter",
	    "Results for unknown or already finished deliveries since start",
	    m->results_ignored);
	one(b, "fusebox_deliveries_superseded_total", "counter",
	    "Deliveries superseded by a newer command since start",
	    m->superseded);
	one(b, "fusebox_supersede_index_builds_total", "counter",
	    "Commands whose open deliveries were read into the supersede "
	    "index when another command of their kind came, since start",
	    m->sx_builds);
	one(b, "fusebox_supersede_index_reads_total", "counter",
	    "Deliveries read from the store for those, since start",
	    m->sx_read);
	one(b, "fusebox_supersede_index_entries", "gauge",
	    "Entries in the supersede index (memory, 16 bytes each at least)",
	    m->sx_entries);
	one(b, "fusebox_supersede_index_sweeps_total", "counter",
	    "Sweeps of the supersede index that dropped the entries of "
	    "finished commands, since start",
	    m->sx_sweeps);
	one(b, "fusebox_supersede_index_dropped_total", "counter",
	    "Entries those sweeps dropped, since start", m->sx_dropped);
	one(b, "fusebox_commands_active", "gauge",
	    "Commands not finished (in memory), every state", m->cmd_active);
	one(b, "fusebox_commands_expanding", "gauge",
	    "Commands whose deliveries are still being created",
	    m->cmd_expanding);
	one(b, "fusebox_commands_held", "gauge",
	    "Commands held by an open breaker", m->cmd_held);
	one(b, "fusebox_commands_settling", "gauge",
	    "Automatic lock-type commands in their settle window",
	    m->cmd_settling);
	one(b, "fusebox_devices", "gauge",
	    "Devices enrolled in every organisation", m->devices);

	/* gateways */
	one(b, "fusebox_gateways_connected", "gauge", "Live gateway sessions",
	    m->gateways);
	one(b, "fusebox_deliveries_inflight", "gauge",
	    "Deliveries sent and not yet answered, every gateway",
	    m->gw_inflight);
	if (m->ngw > 0) {
		head(b, "fusebox_gateway_inflight_deliveries", "gauge",
		    "Deliveries sent to the gateway and not yet answered");
		for (size_t i = 0; i < m->ngw; i++)
			bprintf(b,
			    "fusebox_gateway_inflight_deliveries{gateway=\"%"
			    "s\"}"
			    " %u\n",
			    esc(m->gw[i].id, e1, sizeof(e1)),
			    m->gw[i].inflight);
		head(b, "fusebox_gateway_window_deliveries", "gauge",
		    "The gateway's credit: deliveries it may hold unanswered");
		for (size_t i = 0; i < m->ngw; i++)
			bprintf(b,
			    "fusebox_gateway_window_deliveries{gateway=\"%s\"}"
			    " %u\n",
			    esc(m->gw[i].id, e1, sizeof(e1)), m->gw[i].window);
		head(b, "fusebox_gateway_inflight_bytes", "gauge",
		    "About the bytes sent to the gateway and not yet "
		    "answered");
		for (size_t i = 0; i < m->ngw; i++)
			bprintf(b,
			    "fusebox_gateway_inflight_bytes{gateway=\"%s\"} "
			    "%" PRIu64 "\n",
			    esc(m->gw[i].id, e1, sizeof(e1)), m->gw[i].bytes);
	}

	/* breakers */
	if (m->brk_valid)
		one(b, "fusebox_breakers_open", "gauge",
		    "Open breakers, organisations' and global",
		    m->breakers_open);
	if (m->nbrk > 0) {
		head(b, "fusebox_breaker_open", "gauge",
		    "Breakers open (1) or closed but still holding commands "
		    "(0); only those, org \"*\" is global");
		for (size_t i = 0; i < m->nbrk; i++)
			bprintf(b,
			    "fusebox_breaker_open{org=\"%s\",reason=\"%s\"} "
			    "%d\n",
			    esc(m->brk[i].org, e1, sizeof(e1)),
			    esc(m->brk[i].reason, e2, sizeof(e2)),
			    m->brk[i].open ? 1 : 0);
		head(b, "fusebox_breaker_held_commands", "gauge",
		    "Commands held by the breaker (listed breakers only)");
		for (size_t i = 0; i < m->nbrk; i++)
			bprintf(b,
			    "fusebox_breaker_held_commands{org=\"%s\","
			    "reason=\"%s\"} %" PRIu64 "\n",
			    esc(m->brk[i].org, e1, sizeof(e1)),
			    esc(m->brk[i].reason, e2, sizeof(e2)),
			    m->brk[i].held);
	}
	head(b, "fusebox_metrics_truncated", "gauge",
	    "1 when per-organisation or per-gateway series were left out "
	    "(more than 100 breakers or 64 gateways to list)");
	bprintf(b, "fusebox_metrics_truncated %d\n",
	    m->brk_truncated || m->gw_truncated);

	/* authentication (issue 10) */
	one(b, "fusebox_auth_refused_total", "counter",
	    "Console requests and gateway messages refused (FORBIDDEN)",
	    m->auth_refused);
	one(b, "fusebox_results_forged_total", "counter",
	    "Results for deliveries sent to another gateway key",
	    m->results_forged);
	one(b, "fusebox_handshakes_refused_total", "counter",
	    "CURVE handshakes the ZAP handler refused", m->handshakes_refused);

	/* certificates */
	if (m->ncert > 0) {
		head(b, "fusebox_certificate_expiry_seconds", "gauge",
		    "Seconds until the registered certificate's notAfter "
		    "(negative: expired)");
		for (size_t i = 0; i < m->ncert; i++)
			bprintf(b,
			    "fusebox_certificate_expiry_seconds{name=\"%s\"} "
			    "%.3f\n",
			    esc(m->cert[i].name, e1, sizeof(e1)),
			    (double)m->cert[i].left_ms / 1e3);
	}

	/* fleet check-in health: one series per bucket, never per device
	 * or organisation */
	if (m->fleet_as_of_ms > 0) {
		static const char *const hb[FBX_FLEET_BUCKETS] = { "0-2",
			"2-4", "4-8", "8-24", "24-48", "48-72", "72-168",
			"168+", "never" };
		head(b, "fusebox_fleet_devices", "gauge",
		    "Enrolled devices by hours since their last check-in "
		    "(never: none since enrolment), at the last pass over the "
		    "registry");
		for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
			bprintf(b,
			    "fusebox_fleet_devices{offline_hours=\"%s\"} "
			    "%" PRIu64 "\n",
			    hb[i], m->fleet_hours[i]);
		one(b, "fusebox_fleet_orgs_alerting", "gauge",
		    "Organisations with devices over one of their fleet alert "
		    "rules",
		    m->fleet_orgs_alerting);
		head(b, "fusebox_fleet_pass_timestamp_seconds", "gauge",
		    "When the last pass over the registry finished (Unix "
		    "time)");
		bprintf(b, "fusebox_fleet_pass_timestamp_seconds %.3f\n",
		    (double)m->fleet_as_of_ms / 1e3);
	}

	/* delivery outcomes by type: the types that had any (incident 5:
	 * silence must be visible) */
	{
		static const char *const on[3] = { "succeeded", "failed",
			"expired" };
		int any = 0;
		for (int t = 1; t < FBX_CMD_TYPE_COUNT; t++) {
			if (m->outcomes[t][0] + m->outcomes[t][1] +
			        m->outcomes[t][2] ==
			    0)
				continue;
			if (!any)
				head(b, "fusebox_delivery_outcomes_total",
				    "counter",
				    "Deliveries that reached a final outcome, by "
				    "command type, since the daemon started");
			any = 1;
			for (int k = 0; k < 3; k++)
				bprintf(b,
				    "fusebox_delivery_outcomes_total{type=\"%s\","
				    "outcome=\"%s\"} %" PRIu64 "\n",
				    fbx_cmd_type_name(t), on[k],
				    m->outcomes[t][k]);
		}
	}

	/* the store */
	if (m->store_valid) {
		one(b, "fusebox_store_map_bytes", "gauge",
		    "LMDB map size (grows by doubling)", m->map_bytes);
		one(b, "fusebox_store_used_bytes", "gauge",
		    "LMDB pages in use, in bytes", m->used_bytes);
		one(b, "fusebox_store_file_bytes", "gauge",
		    "Size of data.mdb on disk", m->file_bytes);
		one(b, "fusebox_store_readers_used", "gauge",
		    "LMDB reader slots in use (every process)",
		    m->readers_used);
		head(b, "fusebox_store_index_lag", "gauge",
		    "Records not yet in the per-organisation indexes "
		    "(caught up every index_lag records; listings read them "
		    "from the tables)");
		bprintf(b,
		    "fusebox_store_index_lag{index=\"commands\"} %" PRIu64
		    "\nfusebox_store_index_lag{index=\"audit\"} %" PRIu64
		    "\n",
		    m->cmd_ix_lag, m->audit_ix_lag);
	}
}

int
fbx_metrics_render(const struct fbx_metrics *m, int64_t now_ms, size_t cap,
    char **out, size_t *len)
{
	struct buf b;

	if (m == NULL || out == NULL || len == NULL || cap < 64)
		return FBX_EINVAL;
	memset(&b, 0, sizeof(b));
	b.max = cap;
	b.cap = cap < 16384 ? cap : 16384;
	b.p = malloc(b.cap);
	if (b.p == NULL)
		return FBX_ENOMEM;
	b.p[0] = '\0';
	render(&b, m, now_ms);
	if (b.err != FBX_OK) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return FBX_OK;
}
