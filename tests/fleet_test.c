/*
 * fleet_test.c: fleet check-in health (issue 12, incident 4), in-process
 * on a fake clock (engine_fake.c), turn by turn:
 * - the report counts an organisation's devices by hours since their
 *   last check-in ("never" for one that never checked in) and by
 *   OS version, as of the engine's last pass over the registry;
 * - an alert rule (stale minutes, repeat) fires a devices_stale event
 *   when devices pass its threshold, again only after its repeat
 *   interval, and once with count 0 when every device is back;
 * - `devices --stale` lists exactly the stale devices, each with the
 *   deliveries waiting for it;
 * - rules are validated, removed, limited to 8, survive a restart, and
 *   another organisation's devices never count;
 * - final delivery outcomes are counted per organisation and command
 *   type once their turn commits, and a type that stops succeeding
 *   raises outcome_silence once per hour (incident 5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"
#include "engine_int.h"
#include "fbx_json.h"
#include "metrics.h"

#define MIN 60000LL
#define HOUR (60 * MIN)

/* fleet_req - a FleetRequest from "ops"; rep is the caller's to free */
static int
fleet_req(struct env *t, const char *org, int op, uint32_t stale,
    uint32_t repeat, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_FLEET;
	req.u.fleet.op = op;
	req.u.fleet.stale_minutes = stale;
	req.u.fleet.repeat_minutes = repeat;
	snprintf(req.u.fleet.note, sizeof(req.u.fleet.note), "fleet_test");
	console(t, "ops", org, &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* checkin - devices [from, to) of org report in now with os */
static void
checkin(struct env *t, const char *org, unsigned from, unsigned to,
    const char *os)
{
	static uint64_t batch = 1;
	struct fbx_checkin c[64];
	struct fbx_gw_msg m;
	struct gw_seen *s = calloc(1, sizeof(*s));

	memset(c, 0, sizeof(c));
	for (unsigned i = from; i < to; i++) {
		snprintf(c[i - from].org, sizeof(c[0].org), "%s", org);
		snprintf(c[i - from].device, sizeof(c[0].device), "%s-d%05u",
		    org, i);
		c[i - from].at_ms = t->io.wall;
		snprintf(c[i - from].os_version, sizeof(c[0].os_version), "%s",
		    os);
	}
	memset(&m, 0, sizeof(m));
	m.kind = FBX_GW_CHECKINS;
	m.u.checkins.batch_id = batch++;
	m.u.checkins.c = c;
	m.u.checkins.n = to - from;
	gateway(t, "g", &m);
	turn(t);
	drain_gw(t, "g", s);
	CHECK(s->nacks == 1 && s->ack_count[0] == to - from,
	    "check-ins of %s acknowledged: %zu acks", org, s->nacks);
	free(s);
}

/* take_events - the events of kind for org (and reason, when not NULL)
 * published since they were last taken, the count of the last one in
 * *count; other events stay queued */
static int
take_events(struct env *t, int kind, const char *org, const char *reason,
    uint64_t *count)
{
	struct qmsg **pp = &t->io.out[FBX_IO_EVENTS];
	int n = 0;

	while (*pp != NULL) {
		struct qmsg *q = *pp;
		struct fbx_event ev;
		if (fbx_event_decode(q->body, q->len, &ev) != FBX_OK ||
		    ev.kind != kind || strcmp(ev.org, org) != 0 ||
		    (reason != NULL && strcmp(ev.reason, reason) != 0)) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		n++;
		*count = ev.count;
		q_free(q);
	}
	return n;
}

/* stale_events - devices_stale events of org (every rule) */
static int
stale_events(struct env *t, const char *org, uint64_t *count)
{
	return take_events(t, FBX_EV_DEVICES_STALE, org, NULL, count);
}

/* pass - let the next pass over the registry run (one per minute; a
 * small fleet is read in one slice) */
static void
pass(struct env *t)
{
	advance(t, MIN + 1000);
	turn(t);
}

static uint32_t
os_count(const struct fbx_fleet_report *r, const char *v)
{
	for (size_t i = 0; i < r->nos; i++)
		if (strcmp(r->os[i].version, v) == 0)
			return r->os[i].count;
	return 0;
}

/* list_stale - ListDevices with stale_minutes; rep is the caller's */
static int
list_stale(struct env *t, const char *org, uint32_t minutes,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.stale_minutes = minutes;
	req.u.list_devices.limit = 100;
	console(t, "ops", org, &req);
	turn(t);
	return reply(t, "ops", rep);
}

static void
test_report_and_alerts(struct env *t)
{
	struct fbx_console_rep rep;
	struct fbx_command info;
	struct gw_seen *s = calloc(1, sizeof(*s));
	uint64_t cnt = 99;
	uint64_t id;
	int rc;

	enroll(t, "org-a", 10);
	enroll(t, "org-b", 5);
	hello(t, "g", "org-a", 100);
	turn(t);
	checkin(t, "org-a", 0, 3, "14.1");
	checkin(t, "org-a", 3, 6, "15.0");
	/* devices 6..9 never check in */

	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_SET, 1440, 60, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.nrules == 1 &&
	        rep.u.fleet.rules[0].stale_minutes == 1440 &&
	        rep.u.fleet.rules[0].repeat_minutes == 60,
	    "rule set: rc %d, %zu rules", rc, rep.u.fleet.nrules);
	fbx_console_rep_free(&rep);

	pass(t);
	rc = fleet_req(t, "org-a", FBX_FLEET_REPORT, 0, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.as_of_ms > 0 &&
	        rep.u.fleet.devices == 10 &&
	        rep.u.fleet.offline_hours[0] == 6 &&
	        rep.u.fleet.offline_hours[FBX_FLEET_BUCKETS - 1] == 4,
	    "report: rc %d, %u devices, %u under 2 h, %u never", rc,
	    rep.u.fleet.devices, rep.u.fleet.offline_hours[0],
	    rep.u.fleet.offline_hours[FBX_FLEET_BUCKETS - 1]);
	CHECK(os_count(&rep.u.fleet, "14.1") == 3 &&
	        os_count(&rep.u.fleet, "15.0") == 3 &&
	        os_count(&rep.u.fleet, "") == 4 && rep.u.fleet.os_other == 0,
	    "os versions: %zu listed", rep.u.fleet.nos);
	CHECK(rep.u.fleet.nrules == 1 && rep.u.fleet.rules[0].stale == 0 &&
	        rep.u.fleet.rules[0].last_alert_ms == 0,
	    "nobody stale yet: %u", rep.u.fleet.rules[0].stale);
	fbx_console_rep_free(&rep);
	CHECK(stale_events(t, "org-a", &cnt) == 0, "no alert yet");

	/* a lock for device 7, which the gateway finds offline */
	hello(t, "g", "org-a", 100);
	turn(t);
	drain_gw(t, "g", s);
	s->nids = 0;
	{
		struct fbx_console_req req;
		fbx_id ids[1];
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_SUBMIT;
		req.u.submit.cmd.type = FBX_CMD_LOCK;
		req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
		req.u.submit.cmd.ttl_s = 7 * 86400;
		snprintf(ids[0], sizeof(ids[0]), "org-a-d00007");
		req.u.submit.cmd.dev_ids = ids;
		req.u.submit.cmd.ndev_ids = 1;
		console(t, "ops", "org-a", &req);
		turn(t);
		rc = reply(t, "ops", &rep);
		id = rc == FBX_OK ? rep.u.submit.command_id : 0;
		fbx_console_rep_free(&rep);
		CHECK(id != 0, "lock for device 7: rc %d", rc);
		/* the gateway finds it offline: the delivery waits */
		turn(t);
		drain_gw(t, "g", s);
		CHECK(s->nids == 1, "the lock went to the gateway: %zu",
		    s->nids);
		results(t, "g", 900, s->ids, s->nids, FBX_R_OFFLINE);
		turn(t);
		CHECK(counts(t, "org-a", id, &info) == FBX_OK &&
		        info.counts[FBX_D_PENDING] == 1,
		    "device 7's lock pending");
		fbx_command_clear(&info);
	}

	/* 25 hours later: every device is past 1,440 minutes */
	advance(t, 25 * HOUR);
	/* the turn of that pass fails to commit: its alert does not leave
	 * and is not lost either, the next pass sends it */
	fbx_store_test_fail_commits = 1;
	turn(t);
	CHECK(fbx_store_test_fail_commits == 0 &&
	        stale_events(t, "org-a", &cnt) == 0,
	    "no alert from a failed turn");
	pass(t);
	rc = fleet_req(t, "org-a", FBX_FLEET_REPORT, 0, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.offline_hours[4] == 6 &&
	        rep.u.fleet.offline_hours[FBX_FLEET_BUCKETS - 1] == 4 &&
	        rep.u.fleet.rules[0].stale == 10 &&
	        rep.u.fleet.rules[0].last_alert_ms != 0,
	    "after 25 h: %u in 24-48 h, %u never, rule over: %u", 
	    rep.u.fleet.offline_hours[4],
	    rep.u.fleet.offline_hours[FBX_FLEET_BUCKETS - 1],
	    rep.u.fleet.rules[0].stale);
	fbx_console_rep_free(&rep);

	/* the stale listing: exactly the 10, device 7 with its lock */
	rc = list_stale(t, "org-a", 1440, &rep);
	CHECK(rc == FBX_OK && rep.u.devices.n == 10, "stale list: rc %d, %zu",
	    rc, rep.u.devices.n);
	for (size_t i = 0; rc == FBX_OK && i < rep.u.devices.n; i++) {
		const struct fbx_device *d = &rep.u.devices.devs[i];
		unsigned want = strcmp(d->id, "org-a-d00007") == 0 ? 1 : 0;
		CHECK(d->pending == want, "%s: %u pending, want %u", d->id,
		    d->pending, want);
	}
	fbx_console_rep_free(&rep);
	/* nothing is stale at two days; org-b's devices are not org-a's */
	rc = list_stale(t, "org-a", 2880, &rep);
	CHECK(rc == FBX_OK && rep.u.devices.n == 0,
	    "nothing over 2 days: %zu", rep.u.devices.n);
	fbx_console_rep_free(&rep);

	/* the alert: once, not again before its repeat interval */
	CHECK(stale_events(t, "org-a", &cnt) == 1 && cnt == 10,
	    "one alert for 10 devices: count %llu", (unsigned long long)cnt);
	CHECK(stale_events(t, "org-b", &cnt) == 0, "org-b has no rule");
	for (int i = 0; i < 5; i++)
		pass(t);
	CHECK(stale_events(t, "org-a", &cnt) == 0,
	    "no repeat within 60 minutes");
	advance(t, 60 * MIN);
	pass(t);
	CHECK(stale_events(t, "org-a", &cnt) == 1 && cnt == 10,
	    "repeated after 60 minutes");

	/* every device back: one last event with count 0, then silence
	 * (the gateway went quiet meanwhile and connects again) */
	hello(t, "g", "org-a", 100);
	turn(t);
	drain_gw(t, "g", s);
	checkin(t, "org-a", 0, 10, "15.0");
	pass(t);
	CHECK(stale_events(t, "org-a", &cnt) == 1 && cnt == 0,
	    "back: count %llu", (unsigned long long)cnt);
	pass(t);
	CHECK(stale_events(t, "org-a", &cnt) == 0, "silent once back");
	rc = fleet_req(t, "org-a", FBX_FLEET_REPORT, 0, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.offline_hours[0] == 10 &&
	        os_count(&rep.u.fleet, "15.0") == 10 &&
	        rep.u.fleet.rules[0].stale == 0 &&
	        rep.u.fleet.rules[0].last_alert_ms == 0,
	    "all back: %u under 2 h", rep.u.fleet.offline_hours[0]);
	fbx_console_rep_free(&rep);
	free(s);
}

static void
test_rules(struct env *t)
{
	struct fbx_console_rep rep;
	int rc;

	/* validated at decode */
	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_SET, 0, 60, &rep);
	CHECK(rc == FBX_EINVALID, "stale 0: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_DEL, 1440, 5, &rep);
	CHECK(rc == FBX_EINVALID, "repeat with a removal: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = fleet_req(t, "org-a", FBX_FLEET_REPORT, 10, 0, &rep);
	CHECK(rc == FBX_EINVALID, "a threshold with a report: rc %d", rc);
	fbx_console_rep_free(&rep);
	/* a changed repeat keeps one rule; a second threshold sorts */
	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_SET, 1440, 120, &rep);
	fbx_console_rep_free(&rep);
	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_SET, 2880, 60, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.nrules == 2 &&
	        rep.u.fleet.rules[0].stale_minutes == 1440 &&
	        rep.u.fleet.rules[0].repeat_minutes == 120 &&
	        rep.u.fleet.rules[1].stale_minutes == 2880,
	    "two rules: rc %d, %zu", rc, rep.u.fleet.nrules);
	fbx_console_rep_free(&rep);
	for (uint32_t m = 1; m <= 6; m++) {
		rc = fleet_req(t, "org-a", FBX_FLEET_RULE_SET, m, 0, &rep);
		fbx_console_rep_free(&rep);
	}
	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_SET, 7, 0, &rep);
	CHECK(rc == FBX_ETOOBIG, "a ninth rule: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_DEL, 999, 0, &rep);
	CHECK(rc == FBX_ENOT_FOUND, "remove a rule that is not: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = fleet_req(t, "org-a", FBX_FLEET_RULE_DEL, 3, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.nrules == 7, "removed: %zu",
	    rep.u.fleet.nrules);
	fbx_console_rep_free(&rep);

	/* rules are in the store: a restart keeps them */
	CHECK(env_reopen(t) == 0, "reopen");
	rc = fleet_req(t, "org-a", FBX_FLEET_REPORT, 0, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.nrules == 7 &&
	        rep.u.fleet.rules[6].stale_minutes == 2880,
	    "after a restart: rc %d, %zu rules", rc, rep.u.fleet.nrules);
	fbx_console_rep_free(&rep);
	/* org-b has none */
	rc = fleet_req(t, "org-b", FBX_FLEET_REPORT, 0, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.nrules == 0, "org-b: %zu rules",
	    rep.u.fleet.nrules);
	fbx_console_rep_free(&rep);
}



/* answer_all - a query to every device of org, answered with status;
 * with fail_first the turn with the results fails to commit and the
 * gateway sends them again once the store is back */
static void
answer_all(struct env *t, const char *org, int status, uint64_t batch,
    int fail_first)
{
	struct gw_seen *s = calloc(1, sizeof(*s));

	(void)submit_org(t, org);
	turn(t);
	drain_gw(t, "h", s);
	CHECK(s->nids == 30, "sent to the gateway: %zu", s->nids);
	if (fail_first) {
		fbx_store_test_fail_commits = 1;
		results(t, "h", batch, s->ids, s->nids, status);
		turn(t);
		CHECK(fbx_store_test_fail_commits == 0, "the commit failed");
		advance(t, 10000);
		heartbeat(t, "h");
		turn(t);
	}
	results(t, "h", batch, s->ids, s->nids, status);
	turn(t);
	free(s);
}

static const struct fbx_type_outcomes *
outcome_of(const struct fbx_fleet_report *r, int type)
{
	for (size_t i = 0; i < r->nout; i++)
		if (r->out[i].type == type)
			return &r->out[i];
	return NULL;
}

static void
test_outcomes(struct env *t)
{
	struct fbx_console_rep rep;
	const struct fbx_type_outcomes *q;
	uint64_t cnt = 0;
	int rc;

	enroll(t, "org-c", 30);
	hello(t, "h", "org-c", 1000);
	turn(t);
	/* queries that succeed; their first commit fails: counted once */
	answer_all(t, "org-c", FBX_R_SUCCEEDED, 501, 1);
	rc = fleet_req(t, "org-c", FBX_FLEET_REPORT, 0, 0, &rep);
	q = rc == FBX_OK ? outcome_of(&rep.u.fleet, FBX_CMD_QUERY) : NULL;
	CHECK(q != NULL && q->ok_hour == 30 && q->ok_day == 30 &&
	        q->failed_hour == 0 && !q->silent,
	    "30 succeeded counted: rc %d", rc);
	CHECK(outcome_of(&rep.u.fleet, FBX_CMD_LOCK) == NULL,
	    "no lock outcomes listed");
	fbx_console_rep_free(&rep);

	/* two hours later every query fails: silence, once per hour */
	advance(t, 2 * HOUR);
	hello(t, "h", "org-c", 1000);
	turn(t);
	(void)take_events(t, FBX_EV_OUTCOME_SILENCE, "org-c", NULL, &cnt);
	answer_all(t, "org-c", FBX_R_FAILED, 502, 0);
	advance(t, MIN + 1000);
	turn(t);
	CHECK(take_events(t, FBX_EV_OUTCOME_SILENCE, "org-c", NULL, &cnt) == 1 && cnt == 30,
	    "outcome_silence for 30 failures: count %llu",
	    (unsigned long long)cnt);
	rc = fleet_req(t, "org-c", FBX_FLEET_REPORT, 0, 0, &rep);
	q = rc == FBX_OK ? outcome_of(&rep.u.fleet, FBX_CMD_QUERY) : NULL;
	CHECK(q != NULL && q->ok_hour == 0 && q->failed_hour == 30 &&
	        q->ok_day == 30 && q->failed_day == 30 && q->silent,
	    "the report says silent");
	fbx_console_rep_free(&rep);
	advance(t, MIN + 1000);
	turn(t);
	CHECK(take_events(t, FBX_EV_OUTCOME_SILENCE, "org-c", NULL, &cnt) == 0, "not again this hour");
	/* /metrics: fleet-wide per type, and the fleet histogram */
	{
		struct fbx_metrics *m = calloc(1, sizeof(*m));
		char *text = NULL;
		size_t len = 0;
		CHECK(m != NULL && fbx_engine_metrics(t->e, m) == FBX_OK &&
		        fbx_metrics_render(m, m->taken_ms, 1 << 20, &text,
		            &len) == FBX_OK,
		    "metrics rendered");
		CHECK(text != NULL &&
		        strstr(text, "fusebox_delivery_outcomes_total{type=\"query\","
		                     "outcome=\"succeeded\"} 30\n") != NULL &&
		        strstr(text, "fusebox_delivery_outcomes_total{type=\"query\","
		                     "outcome=\"failed\"} 30\n") != NULL &&
		        strstr(text, "fusebox_fleet_devices{offline_hours=") !=
		            NULL,
		    "outcome and fleet series");
		/* submit to result: 30 recorded 10 s after their command
		 * (the failed commit's retry), 30 at once */
		CHECK(text != NULL &&
		        strstr(text, "fusebox_submit_result_seconds_bucket{le=\"0.1\"} 30\n") != NULL &&
		        strstr(text, "fusebox_submit_result_seconds_bucket{le=\"10\"} 60\n") != NULL &&
		        strstr(text, "fusebox_submit_result_seconds_sum 300.000000\n") != NULL &&
		        strstr(text, "fusebox_submit_result_seconds_count 60\n") != NULL,
		    "submit-to-result histogram");
		/* the two queries' submits acknowledged since the engine
		 * reopened (test_rules) */
		CHECK(text != NULL &&
		        strstr(text, "fusebox_submit_ack_seconds_count 2\n") != NULL,
		    "submit-to-ack histogram");
		free(text);
		free(m);
	}
	/* org-a's own outcomes never mix with org-c's */
	rc = fleet_req(t, "org-a", FBX_FLEET_REPORT, 0, 0, &rep);
	q = rc == FBX_OK ? outcome_of(&rep.u.fleet, FBX_CMD_QUERY) : NULL;
	CHECK(rc == FBX_OK && q == NULL, "org-a has no query outcomes");
	fbx_console_rep_free(&rep);
	/* a command still open (10 of its 30 devices have not answered)
	 * counts each outcome as it is recorded, not when it ends */
	{
		struct gw_seen *s = calloc(1, sizeof(*s));
		enroll(t, "org-o", 30);
		hello(t, "h2", "org-o", 1000);
		turn(t);
		(void)submit_org(t, "org-o");
		turn(t);
		drain_gw(t, "h2", s);
		CHECK(s->nids == 30, "org-o: sent %zu", s->nids);
		results(t, "h2", 601, s->ids, 20, FBX_R_SUCCEEDED);
		turn(t);
		results(t, "h2", 602, s->ids + 20, 2, FBX_R_FAILED);
		turn(t);
		rc = fleet_req(t, "org-o", FBX_FLEET_REPORT, 0, 0, &rep);
		q = rc == FBX_OK ? outcome_of(&rep.u.fleet, FBX_CMD_QUERY)
		                 : NULL;
		CHECK(q != NULL && q->ok_hour == 20 && q->failed_hour == 2,
		    "an open command's outcomes: %llu succeeded, %llu failed, "
		    "want 20 and 2",
		    q ? (unsigned long long)q->ok_hour : 0ULL,
		    q ? (unsigned long long)q->failed_hour : 0ULL);
		fbx_console_rep_free(&rep);
		/* a forced replay of the 20 that succeeded takes them back;
		 * the 10 of them that succeed again count as 10 more */
		{
			struct fbx_console_req req;
			struct gw_seen *s2 = calloc(1, sizeof(*s2));
			uint64_t cid = FBX_DLV_CMD(s->ids[0]);
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_REPLAY;
			req.u.replay.sel.command_ids = &cid;
			req.u.replay.sel.ncommand_ids = 1;
			req.u.replay.execute = 1;
			req.u.replay.force = 1;
			req.u.replay.state = FBX_D_SUCCEEDED;
			console(t, "ops", "org-o", &req);
			turn(t);
			rc = reply(t, "ops", &rep);
			CHECK(rc == FBX_OK && rep.u.replay.resent == 20,
			    "replayed: rc %d, %u resent", rc,
			    rc == FBX_OK ? rep.u.replay.resent : 0);
			fbx_console_rep_free(&rep);
			turn(t);
			drain_gw(t, "h2", s2);
			CHECK(s2->nids == 20, "sent again: %zu", s2->nids);
			results(t, "h2", 603, s2->ids, 10, FBX_R_SUCCEEDED);
			turn(t);
			rc = fleet_req(t, "org-o", FBX_FLEET_REPORT, 0, 0, &rep);
			q = rc == FBX_OK
			    ? outcome_of(&rep.u.fleet, FBX_CMD_QUERY)
			    : NULL;
			CHECK(q != NULL && q->ok_hour == 30 &&
			        q->failed_hour == 2,
			    "after the replay: %llu succeeded, %llu failed, "
			    "want 30 and 2",
			    q ? (unsigned long long)q->ok_hour : 0ULL,
			    q ? (unsigned long long)q->failed_hour : 0ULL);
			fbx_console_rep_free(&rep);
			free(s2);
		}
		free(s);
	}
}

/* os_update - an OS update of every device of org with payload;
 * @return its id */
static uint64_t
os_update(struct env *t, const char *org, const char *payload)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t id = 0;

	query_req(&req);
	req.u.submit.cmd.type = FBX_CMD_OS_UPDATE;
	req.u.submit.cmd.origin = FBX_ORIGIN_SCHEDULED;
	req.u.submit.cmd.payload = (uint8_t *)payload;
	req.u.submit.cmd.payload_len = (uint32_t)strlen(payload);
	console(t, "ops", org, &req);
	turn(t);
	if (reply(t, "ops", &rep) == FBX_OK)
		id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	turn(t); /* expanded */
	return id;
}

/* version_req - FLEET_VERSION of command id from after */
static int
version_req(struct env *t, const char *org, uint64_t id, uint64_t after,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_FLEET;
	req.u.fleet.op = FBX_FLEET_VERSION;
	req.u.fleet.command_id = id;
	req.u.fleet.after = after;
	console(t, "ops", org, &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* the applied state of an OS update: its devices reporting the target
 * version (incident 3); org-a's 10 devices report 15.0 by now */
static void
test_version(struct env *t)
{
	struct fbx_console_rep rep;
	uint64_t a = os_update(t, "org-a", "{\"version\":\"15.0\"}");
	uint64_t b = os_update(t, "org-a", "version=16.1;reboot=1");
	int rc;

	rc = version_req(t, "org-a", a, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.version.set &&
	        !strcmp(rep.u.fleet.version.target, "15.0") &&
	        rep.u.fleet.version.devices == 10 &&
	        rep.u.fleet.version.at_target == 10 &&
	        rep.u.fleet.version.other == 0 &&
	        rep.u.fleet.version.next_after == 0,
	    "15.0 applied on 10 of 10: rc %d at %u", rc,
	    rep.u.fleet.version.at_target);
	fbx_console_rep_free(&rep);
	rc = version_req(t, "org-a", b, 0, &rep);
	CHECK(rc == FBX_OK && !strcmp(rep.u.fleet.version.target, "16.1") &&
	        rep.u.fleet.version.at_target == 0 &&
	        rep.u.fleet.version.other == 10,
	    "16.1 applied nowhere yet: rc %d", rc);
	fbx_console_rep_free(&rep);
	/* a page from index 4: the other 6 */
	rc = version_req(t, "org-a", a, 4, &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.version.devices == 6,
	    "from index 4: %u", rep.u.fleet.version.devices);
	fbx_console_rep_free(&rep);
	/* another organisation's command is not found; not an os_update */
	rc = version_req(t, "org-b", a, 0, &rep);
	CHECK(rc == FBX_ENOT_FOUND, "org-b asks for org-a's: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = version_req(t, "org-c", submit_org(t, "org-c"), 0, &rep);
	CHECK(rc == FBX_EINVALID, "a query: rc %d", rc);
	fbx_console_rep_free(&rep);
}

/* a group's report: its devices only, read when asked */
static void
test_group(struct env *t)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_device d[6];
	int rc;

	memset(d, 0, sizeof(d));
	for (unsigned i = 0; i < 6; i++) {
		snprintf(d[i].id, sizeof(d[i].id), "org-g-d%05u", i);
		d[i].platform = FBX_PLATFORM_IOS;
		snprintf(d[i].os_version, sizeof(d[i].os_version), "%s",
		    i < 3 ? "17.5" : "17.6");
		snprintf(d[i].groups[0], sizeof(d[i].groups[0]), "%s",
		    i % 3 == 2 ? "field" : "sales");
		d[i].ngroups = 1;
	}
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ENROLL;
	req.u.enroll.devs = d;
	req.u.enroll.n = 6;
	console(t, "ops", "org-g", &req);
	turn(t);
	CHECK(reply(t, "ops", &rep) == FBX_OK, "enroll org-g");
	fbx_console_rep_free(&rep);

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_FLEET;
	req.u.fleet.op = FBX_FLEET_REPORT;
	snprintf(req.u.fleet.group, sizeof(req.u.fleet.group), "sales");
	console(t, "ops", "org-g", &req);
	turn(t);
	rc = reply(t, "ops", &rep);
	/* sales: devices 0, 1, 3, 4: two of 17.5, two of 17.6, none
	 * checked in */
	CHECK(rc == FBX_OK && !strcmp(rep.u.fleet.group, "sales") &&
	        rep.u.fleet.devices == 4 &&
	        rep.u.fleet.offline_hours[FBX_FLEET_BUCKETS - 1] == 4 &&
	        os_count(&rep.u.fleet, "17.5") == 2 &&
	        os_count(&rep.u.fleet, "17.6") == 2 &&
	        rep.u.fleet.next_after[0] == '\0' && rep.u.fleet.nrules == 0,
	    "group sales: rc %d, %u devices", rc, rep.u.fleet.devices);
	fbx_console_rep_free(&rep);
	/* a page cursor: after the second sales device, the other two */
	snprintf(req.u.fleet.after_dev, sizeof(req.u.fleet.after_dev),
	    "org-g-d00001");
	console(t, "ops", "org-g", &req);
	turn(t);
	rc = reply(t, "ops", &rep);
	CHECK(rc == FBX_OK && rep.u.fleet.devices == 2 &&
	        os_count(&rep.u.fleet, "17.6") == 2,
	    "group sales after d00001: rc %d, %u", rc, rep.u.fleet.devices);
	fbx_console_rep_free(&rep);
	/* a cursor without a group is refused */
	req.u.fleet.group[0] = '\0';
	console(t, "ops", "org-g", &req);
	turn(t);
	CHECK(reply(t, "ops", &rep) == FBX_EINVALID, "cursor without group");
	fbx_console_rep_free(&rep);
}

/* two rules of one organisation alert in the same pass, each under its
 * own reason; the organisation counts once in /metrics; a rule removed
 * while it alerts sends its all-clear */
static void
test_two_rules(struct env *t)
{
	struct fbx_console_rep rep;
	struct fbx_metrics *m = calloc(1, sizeof(*m));
	uint64_t c1 = 0, c2 = 0;

	enroll(t, "org-d", 5);
	CHECK(fleet_req(t, "org-d", FBX_FLEET_RULE_SET, 1, 0, &rep) == FBX_OK,
	    "rule 1m");
	fbx_console_rep_free(&rep);
	CHECK(fleet_req(t, "org-d", FBX_FLEET_RULE_SET, 2, 0, &rep) == FBX_OK,
	    "rule 2m");
	fbx_console_rep_free(&rep);
	advance(t, 3 * MIN);
	pass(t);
	CHECK(take_events(t, FBX_EV_DEVICES_STALE, "org-d", "stale_1m", &c1) == 1 && c1 == 5 &&
	        take_events(t, FBX_EV_DEVICES_STALE, "org-d", "stale_2m", &c2) == 1 && c2 == 5,
	    "both rules alerted: %llu, %llu", (unsigned long long)c1,
	    (unsigned long long)c2);
	/* org-a's rules of a few minutes alert too: two organisations,
	 * however many rules */
	CHECK(m != NULL && fbx_engine_metrics(t->e, m) == FBX_OK &&
	        m->fleet_orgs_alerting == 2,
	    "organisations alerting: %u",
	    m != NULL ? m->fleet_orgs_alerting : 0);
	/* remove the 2m rule while it alerts: one all-clear for it */
	CHECK(fleet_req(t, "org-d", FBX_FLEET_RULE_DEL, 2, 0, &rep) == FBX_OK,
	    "remove 2m");
	fbx_console_rep_free(&rep);
	pass(t);
	c2 = 99;
	CHECK(take_events(t, FBX_EV_DEVICES_STALE, "org-d", "stale_2m", &c2) == 1 && c2 == 0,
	    "all-clear of the removed rule: count %llu",
	    (unsigned long long)c2);
	CHECK(take_events(t, FBX_EV_DEVICES_STALE, "org-d", "stale_1m", &c1) == 0,
	    "rule 1m does not repeat (no --repeat)");
	free(m);
}

/* audit parameters go through jansson: valid JSON is kept as it is,
 * anything else is stored as a JSON string, never as broken JSON */
static void
test_audit_params(void)
{
	char p[512];

	snprintf(p, sizeof(p), "{\"stale_minutes\":1440,\"org\":\"org-a\"}");
	fbxi_audit_params_json("test", p, sizeof(p));
	CHECK(!strcmp(p, "{\"stale_minutes\":1440,\"org\":\"org-a\"}"),
	    "valid params unchanged: %s", p);
	snprintf(p, sizeof(p), "{\"why\":\"a \"quoted\" word\"}");
	fbxi_audit_params_json("test", p, sizeof(p));
	CHECK(!strcmp(p, "{\"text\":\"{\\\"why\\\":\\\"a \\\"quoted\\\" "
	                 "word\\\"}\"}"),
	    "broken params kept as text: %s", p);
}

/* jansson's compact form of text, or NULL when it does not parse */
static char *
jansson_form(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
	char *out;

	if (v == NULL)
		return NULL;
	out = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(v);
	return out;
}

/* fbx_json_canonical: whatever it keeps without the round trip is
 * exactly what the round trip would have written; what it refuses still
 * goes through jansson */
static void
test_audit_params_canonical(void)
{
	static const char *const keep[] = {
		"{}",
		/* one string each, written over lines (parenthesised:
		 * clang asks whether a comma was meant) */
		("{\"command\":5,\"type\":\"lock\",\"origin\":\"operator\","
		 "\"reason\":\"lost/stolen\",\"target\":\"device\",\"group\":\"\","
		 "\"devices\":1,\"state\":\"expanding\",\"approved_by\":\"\","
		 "\"rollout\":false,\"settle_until_ms\":0}"),
		("{\"a\":-12,\"b\":0,\"c\":null,\"d\":[1,[2,{\"e\":true}]],"
		 "\"f\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92\"}"),
		"{\"q\":\"a \\\"quoted\\\" word \\\\ end\"}",
		"{\"n\":999999999999999999}",
	};
	static const char *const refuse[] = {
		"", "[]", "{ }", "{\"a\": 1}", "{\"a\":1.5}", "{\"a\":1e3}",
		"{\"a\":-0}", "{\"a\":007}", "{\"a\":\"x\\ny\"}",
		"{\"a\":\"\\/\"}", "{\"a\":\"\\u0041\"}", "{\"a\":1,\"a\":2}",
		"{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xc0\xaf\"}", "{\"a\":1}x", "{\"a\":1,}", "{\"a\"}",
		"{\"a\":tru}", "{\"a\":\"unterminated}",
		"{\"n\":9999999999999999999}",
		"{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}",
		"{\"a\":\"tab\there\"}",
	};
	static const char alphabet[] = "{}[]\":,\\-0123abtrueflsn .e\xc3\xa9\n";
	unsigned seed = 12345, agree = 0, kept = 0;
	char s[40];

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		char *j = jansson_form(keep[i]);
		CHECK(fbx_json_canonical(keep[i]) == 1, "kept as is: %s", keep[i]);
		CHECK(j != NULL && strcmp(j, keep[i]) == 0,
		    "jansson writes the same: %s -> %s", keep[i], j ? j : "-");
		free(j);
	}
	for (size_t i = 0; i < sizeof(refuse) / sizeof(refuse[0]); i++)
		CHECK(fbx_json_canonical(refuse[i]) == 0,
		    "goes through jansson: %s", refuse[i]);
	/* random text: never kept unless jansson would write it unchanged */
	for (int n = 0; n < 200000; n++) {
		size_t len = 1 + (size_t)(seed % (sizeof(s) - 2));
		char *j;

		seed = seed * 1103515245u + 12345u;
		s[0] = '{';
		for (size_t i = 1; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			s[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		s[len] = '\0';
		if (!fbx_json_canonical(s))
			continue;
		kept++;
		j = jansson_form(s);
		if (j != NULL && strcmp(j, s) == 0)
			agree++;
		else
			CHECK(0, "kept text jansson writes otherwise: %s -> %s", s,
			    j ? j : "(does not parse)");
		free(j);
	}
	CHECK(kept > 0 && agree == kept,
	    "random texts kept as is: %u, all as jansson writes them", kept);
}

int
main(void)
{
	struct env t;

	if (env_open(&t, "fleet") != 0) {
		fprintf(stderr, "cannot open the engine\n");
		return 1;
	}
	test_report_and_alerts(&t);
	test_rules(&t);
	test_outcomes(&t);
	test_version(&t);
	test_group(&t);
	test_two_rules(&t);
	test_audit_params();
	test_audit_params_canonical();
	env_close(&t);
	printf("fleet_test: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
