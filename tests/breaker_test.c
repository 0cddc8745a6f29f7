/*
 * breaker_test.c: the incident fusebox exists for, in miniature, against
 * the real daemon with its default settings. A broken attestation rule
 * sends automatic locks for every device of 20 organisations,
 * interleaved. What the breakers admit settles (journaled, not sent) and
 * never exceeds an organisation's allowance, max(1, 1% of its fleet);
 * the global breaker trips (several organisations, or 1% of every
 * enrolled device); its trip holds what was still settling, so not one
 * storm lock reaches a device. Everything is held (journaled, listable,
 * never sent) and survives a kill -9. Operator commands still flow while
 * the breakers are open; an operator reset releases (in staged waves) or
 * discards what was held, and released commands pass the blast-radius
 * limit like any other.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <zmq.h>

#include "harness.h"

#define ORGS 20
#define REASON "attestation_failed"

struct orgfleet {
	char org[16];
	fbx_id *ids;
	size_t n;
	uint32_t admitted, held; /* at submit: settling, held */
	uint64_t *held_ids;      /* org-002: what its reset releases */
	size_t nheld_ids;
};

static int
list_ids(struct fbxt_env *t, struct orgfleet *o)
{
	char after[FBX_ID_MAX + 1] = "";

	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_DEVICES;
		req.u.list_devices.limit = 1000;
		snprintf(req.u.list_devices.after,
		    sizeof(req.u.list_devices.after), "%s", after);
		if (fbxt_call(t, o->org, &req, &rep) != FBX_OK) {
			fbx_console_rep_free(&rep);
			return -1;
		}
		o->ids = realloc(o->ids, (o->n + rep.u.devices.n) * sizeof(fbx_id));
		for (size_t i = 0; i < rep.u.devices.n; i++)
			memcpy(o->ids[o->n++], rep.u.devices.devs[i].id,
			    sizeof(fbx_id));
		snprintf(after, sizeof(after), "%s", rep.u.devices.next_after);
		fbx_console_rep_free(&rep);
		if (after[0] == '\0')
			return 0;
	}
}

/* auto_lock - the broken rule: an automatic lock of one device. */
static int
auto_lock(struct fbxt_env *t, const char *org, const char *dev, int *state)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	snprintf(req.actor, sizeof(req.actor), "attestation-rule");
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason),
	    REASON);
	req.u.submit.cmd.dev_ids = calloc(1, sizeof(fbx_id));
	snprintf(req.u.submit.cmd.dev_ids[0], sizeof(fbx_id), "%s", dev);
	req.u.submit.cmd.ndev_ids = 1;
	rc = fbxt_call(t, org, &req, &rep);
	*state = rep.u.submit.state;
	fbx_console_rep_free(&rep);
	free(req.u.submit.cmd.dev_ids);
	return rc;
}

static int
breakers(struct fbxt_env *t, const char *org, int op, int global,
    int on_reset, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	snprintf(req.actor, sizeof(req.actor), "alice");
	req.u.breaker.op = op;
	req.u.breaker.global = global;
	req.u.breaker.on_reset = on_reset;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), REASON);
	snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
	    "attestation provider certificate expired");
	return fbxt_call(t, org, &req, rep);
}

static const struct fbx_breaker_info *
find_brk(const struct fbx_console_rep *rep, const char *org)
{
	for (size_t i = 0; i < rep->u.breaker.n; i++) {
		if (strcmp(rep->u.breaker.b[i].org, org) == 0)
			return &rep->u.breaker.b[i];
	}
	return NULL;
}

static size_t
held_list(struct fbxt_env *t, const char *org, struct orgfleet *keep)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	size_t n = 0;
	uint64_t after = 0;

	for (;;) {
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_HELD;
		req.u.list_held.limit = 1000;
		req.u.list_held.after = after;
		if (fbxt_call(t, org, &req, &rep) != FBX_OK) {
			fbx_console_rep_free(&rep);
			return (size_t)-1;
		}
		n += rep.u.commands.n;
		if (keep != NULL) {
			keep->held_ids = realloc(keep->held_ids,
			    n * sizeof(*keep->held_ids));
			for (size_t i = 0; i < rep.u.commands.n; i++)
				keep->held_ids[keep->nheld_ids++] =
				    rep.u.commands.cmds[i].id;
		}
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			return n;
	}
}

static size_t
held_total(struct fbxt_env *t, const char *org)
{
	return held_list(t, org, NULL);
}

int
main(void)
{
	struct fbxt_env t;
	struct orgfleet o[ORGS];
	struct fbx_console_rep rep;
	struct fbxt_report r;
	char report[400];
	uint32_t total_admitted = 0, total_held = 0, count;
	size_t maxn = 0;
	uint64_t cid;
	int rc, state = 0;

	char alert_cmd[600], events_ep[400], alerts[400], line[512];
	void *zctx = zmq_ctx_new(), *sub = NULL;
	int tripped_events = 0, global_alert = 0;

	memset(o, 0, sizeof(o));
	if (fbxt_setup(&t, "breaker") != 0) {
		FBXT_CHECK(0, "setup");
		goto out;
	}
	snprintf(alerts, sizeof(alerts), "%s/alerts.log", t.dir);
	snprintf(alert_cmd, sizeof(alert_cmd),
	    "echo \"$FUSEBOX_EVENT $FUSEBOX_ORG $FUSEBOX_REASON\" >> %s",
	    alerts);
	snprintf(events_ep, sizeof(events_ep), "ipc://%s/events.sock", t.dir);
	if (fbxt_daemon_start(&t, "--alert-cmd", alert_cmd, "--events",
	        events_ep, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	{
		int tmo = 2000;
		sub = zmq_socket(zctx, ZMQ_SUB);
		zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "fusebox.breaker", 15);
		zmq_setsockopt(sub, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
		fbxt_sock_curve(sub, "FUSEBOX_KEY");
		zmq_connect(sub, events_ep);
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "6000", "--orgs",
	    "20", "--org-skew", "0.5", "--seed", "5", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "6000", "--orgs",
	    "20", "--org-skew", "0.5", "--seed", "5", "--report", report,
	    "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator start");
	for (int i = 0; i < ORGS; i++) {
		snprintf(o[i].org, sizeof(o[i].org), "org-%03d", i + 1);
		FBXT_CHECK(list_ids(&t, &o[i]) == 0, "list %s", o[i].org);
		if (o[i].n > maxn)
			maxn = o[i].n;
	}

	/* the storm: every device of every organisation, interleaved */
	for (size_t k = 0; k < maxn; k++) {
		for (int i = 0; i < ORGS; i++) {
			if (k >= o[i].n)
				continue;
			rc = auto_lock(&t, o[i].org, o[i].ids[k], &state);
			FBXT_CHECK(rc == FBX_OK, "storm submit rc %d", rc);
			FBXT_CHECK(state == FBX_C_HELD ||
			        state == FBX_C_SETTLING,
			    "storm lock state %d: held or settling", state);
			if (state == FBX_C_HELD)
				o[i].held++;
			else
				o[i].admitted++;
		}
	}
	/* the trips were published and the alert command ran */
	for (;;) {
		char topic[64];
		uint8_t buf[4096];
		struct fbx_event ev;
		int n = zmq_recv(sub, topic, sizeof(topic), 0);
		if (n < 0)
			break;
		n = zmq_recv(sub, buf, sizeof(buf), 0);
		if (n > 0 && fbx_event_decode(buf, (size_t)n, &ev) == FBX_OK &&
		    ev.kind == FBX_EV_BREAKER_TRIPPED)
			tripped_events++;
	}
	FBXT_CHECK(tripped_events >= 1, "%d breaker_tripped events",
	    tripped_events);
	{
		FILE *f = fopen(alerts, "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "breaker_tripped * " REASON, 18 +
			        strlen(REASON)) == 0)
				global_alert = 1;
		}
		if (f != NULL)
			fclose(f);
		FBXT_CHECK(global_alert, "no alert command run for the global "
		    "trip");
	}
	rc = breakers(&t, o[0].org, FBX_BRK_STATUS, 0, 0, &rep);
	FBXT_CHECK(rc == FBX_OK, "breaker status rc %d", rc);
	{
		const struct fbx_breaker_info *g = find_brk(&rep, "*");
		FBXT_CHECK(g != NULL && g->state == FBX_BS_OPEN,
		    "global breaker not open");
		FBXT_CHECK(g != NULL && g->held > 0 && g->trips == 1,
		    "global breaker: held %llu, trips %llu",
		    g ? (unsigned long long)g->held : 0ull,
		    g ? (unsigned long long)g->trips : 0ull);
	}
	fbx_console_rep_free(&rep);
	for (int i = 0; i < ORGS; i++) {
		/* allowance: max(1, 1% of the fleet) */
		uint32_t allow = (uint32_t)(o[i].n * 10000 / 1000000);
		size_t h;
		if (allow < 1)
			allow = 1;
		FBXT_CHECK(o[i].admitted <= allow,
		    "%s: %u automatic locks admitted, allowance %u", o[i].org,
		    o[i].admitted, allow);
		FBXT_CHECK(o[i].held > 0, "%s: nothing held", o[i].org);
		/* the trip held what was still settling: everything */
		h = held_total(&t, o[i].org);
		FBXT_CHECK(h == o[i].n, "%s: %zu of %zu storm locks held after "
		    "the trip", o[i].org, h, o[i].n);
		total_admitted += o[i].admitted;
		total_held += o[i].held;
		o[i].held = (uint32_t)h;
		o[i].admitted = 0;
	}
	fprintf(stderr, "storm of %u automatic locks: %u settling and %u "
	    "held at submit, all held after the trip\n",
	    total_admitted + total_held, total_admitted, total_held);
	FBXT_CHECK(total_admitted < (total_admitted + total_held) / 10,
	    "%u of %u locks admitted", total_admitted,
	    total_admitted + total_held);

	/* a recovery command still flows while the breakers are open */
	{
		const char *ids[1] = { o[0].ids[0] };
		rc = fbxt_submit(&t, o[0].org, FBX_CMD_UNLOCK,
		    FBX_ORIGIN_OPERATOR, FBX_TARGET_DEVICES, NULL, ids, 1,
		    NULL, &cid, &count);
		FBXT_CHECK(rc == FBX_OK, "unlock during incident rc %d", rc);
		FBXT_CHECK(fbxt_wait_settled(&t, o[0].org, cid, 30000, NULL) ==
		        0,
		    "unlock not delivered while breakers open");
	}

	/* kill -9 with the breakers open: everything is still there */
	rc = fbxt_daemon_kill(&t, SIGKILL);
	FBXT_CHECK(WIFSIGNALED(rc), "kill status %d", rc);
	FBXT_CHECK(fbxt_daemon_start(&t, NULL) == 0, "restart");
	for (int i = 0; i < ORGS; i++) {
		size_t h = held_total(&t, o[i].org);
		FBXT_CHECK(h == o[i].held, "%s: %zu held after restart, %u "
		    "before", o[i].org, h, o[i].held);
	}
	rc = breakers(&t, o[1].org, FBX_BRK_STATUS, 0, 0, &rep);
	FBXT_CHECK(rc == FBX_OK && find_brk(&rep, "*") != NULL &&
	        find_brk(&rep, "*")->state == FBX_BS_OPEN,
	    "global breaker not open after restart");
	fbx_console_rep_free(&rep);
	/* and it still holds new automatic locks */
	rc = auto_lock(&t, o[5].org, o[5].ids[o[5].n - 1], &state);
	FBXT_CHECK(rc == FBX_OK && state == FBX_C_HELD,
	    "new automatic lock after restart: rc %d state %d", rc, state);
	o[5].held++;

	/* org-002 gets a looser lock limit, then its breaker is reset with
	 * release: its held locks go out through the limit */
	{
		struct fbx_console_req req;
		struct fbx_console_rep lr;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIMIT;
		req.u.limit.set = 1;
		req.u.limit.lim.type = FBX_CMD_LOCK;
		req.u.limit.lim.max_count = 100000;
		req.u.limit.lim.max_share_ppm = 1000000;
		rc = fbxt_call(&t, o[1].org, &req, &lr);
		FBXT_CHECK(rc == FBX_OK, "limit set rc %d", rc);
		fbx_console_rep_free(&lr);
	}
	/* the global breaker first, discarding what it held: that is
	 * every organisation's automatic locks after it tripped */
	{
		size_t all = 0;
		for (int i = 0; i < ORGS; i++)
			all += held_total(&t, o[i].org);
		rc = breakers(&t, o[1].org, FBX_BRK_RESET, 1, FBX_RESET_DISCARD,
		    &rep);
		FBXT_CHECK(rc == FBX_OK, "global reset rc %d", rc);
		FBXT_CHECK(rep.u.breaker.discarded > 0 &&
		        rep.u.breaker.discarded <= all,
		    "global reset discarded %u of %zu",
		    rep.u.breaker.discarded, all);
		fbx_console_rep_free(&rep);
	}
	{
		size_t before = held_list(&t, o[1].org, &o[1]);
		o[1].held = (uint32_t)before; /* held by its own breaker */
		rc = breakers(&t, o[1].org, FBX_BRK_RESET, 0, FBX_RESET_RELEASE,
		    &rep);
		/* org-002's breaker may not have tripped itself (the global
		 * one held its commands); a reset of a closed breaker with
		 * nothing held is refused */
		if (rc == FBX_OK) {
			FBXT_CHECK(rep.u.breaker.released == before,
			    "released %u of %zu", rep.u.breaker.released,
			    before);
		} else {
			FBXT_CHECK(rc == FBX_ESTATE && before == 0,
			    "org reset rc %d with %zu held", rc, before);
		}
		fbx_console_rep_free(&rep);
		FBXT_CHECK(held_total(&t, o[1].org) == 0,
		    "org-002 still holds commands");
	}
	/* every other tripped organisation: discard */
	for (int i = 0; i < ORGS; i++) {
		if (i == 1)
			continue;
		size_t before = held_total(&t, o[i].org);
		rc = breakers(&t, o[i].org, FBX_BRK_RESET, 0, FBX_RESET_DISCARD,
		    &rep);
		if (rc == FBX_OK)
			FBXT_CHECK(rep.u.breaker.discarded == before,
			    "%s: discarded %u of %zu", o[i].org,
			    rep.u.breaker.discarded, before);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(held_total(&t, o[i].org) == 0, "%s still holds",
		    o[i].org);
	}
	/* org-002's released locks reach the devices, wave after wave */
	for (size_t i = 0; i < o[1].nheld_ids; i++)
		FBXT_CHECK(fbxt_wait_settled(&t, o[1].org, o[1].held_ids[i],
		               120000, NULL) == 0,
		    "released lock %llu not delivered",
		    (unsigned long long)o[1].held_ids[i]);
	rc = fbxt_sim_stop(&t);
	FBXT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "sim status %d", rc);
	FBXT_CHECK(fbxt_report_read(report, &r) == 0, "report");
	for (size_t k = 0; k < r.norgs; k++) {
		int i = atoi(r.orgs[k].org + 4) - 1;
		uint64_t want;
		if (i < 0 || i >= ORGS)
			continue;
		/* org-001 also got one unlock */
		want = o[i].admitted + (i == 0 ? 1 : 0) +
		    (i == 1 ? o[1].held : 0);
		FBXT_CHECK(r.orgs[k].distinct == want,
		    "%s: devices got %llu deliveries, expected %llu",
		    r.orgs[k].org, (unsigned long long)r.orgs[k].distinct,
		    (unsigned long long)want);
	}
out:
	fbxt_teardown(&t);
	if (sub != NULL)
		zmq_close(sub);
	zmq_ctx_term(zctx);
	for (int i = 0; i < ORGS; i++) {
		free(o[i].ids);
		free(o[i].held_ids);
	}
	return fbxt_done();
}
