/*
 * engine_test.c: the engine in-process, turn by turn, over a fake
 * transport (queues in memory, fbx_engine_open_io) and a fake clock, so
 * that the delivery state machine, gateway liveness, a failed turn and
 * its recovery, degraded reads, the map-full redo and fairness are tested
 * without sockets, processes or sleeps. Storage faults come from the
 * store's test hook (fbx_store_test_fail_commits).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"

/* --------------------------------------------------------------- tests */

/* state_machine - deliveries out, results in, ACK after commit; a resent
 * batch changes nothing; a late result cannot revive a final delivery. */
static void
test_state_machine(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	uint64_t cid;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "sm") == 0, "open");
	enroll(&t, "acme", 10);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	cid = submit_org(&t, "acme");
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.welcomes == 1, "welcome %zu", s.welcomes);
	CHECK(s.nids == 10, "deliveries %zu", s.nids);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_SENT] == 10,
	    "sent %u", info.counts[FBX_D_SENT]);

	results(&t, "g1", 1, s.ids, 10, FBX_R_SUCCEEDED);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nacks == 1 && s.ack_batch[0] == 1 && s.ack_count[0] == 10,
	    "ack %zu batch %llu count %u", s.nacks,
	    (unsigned long long)s.ack_batch[0], s.ack_count[0]);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 10 &&
	        info.state == FBX_C_DONE,
	    "succeeded %u state %d", info.counts[FBX_D_SUCCEEDED], info.state);

	/* the batch again (its ACK was lost): recorded before, counted,
	 * nothing changes; a FAILED for a succeeded delivery is refused */
	results(&t, "g1", 1, s.ids, 10, FBX_R_SUCCEEDED);
	results(&t, "g1", 2, s.ids, 3, FBX_R_FAILED);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nacks == 3 && s.ack_count[1] == 10,
	    "resend ack %zu count %u", s.nacks, s.ack_count[1]);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 10 &&
	        info.counts[FBX_D_FAILED] == 0,
	    "after late results: succeeded %u failed %u",
	    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_FAILED]);
	CHECK(s.nids == 10, "nothing sent again: %zu", s.nids);
	env_close(&t);
}

/* liveness - a gateway whose heartbeat waits unread while the engine is
 * slow is not reaped; one that is silent while input drains is. */
static void
test_liveness(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	uint64_t cid;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "live") == 0, "open");
	enroll(&t, "acme", 5);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	cid = submit_org(&t, "acme");
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 5, "deliveries %zu", s.nids);

	/* the engine was away 10 heartbeats (a slow turn); the gateway's
	 * heartbeat waited at the socket all along */
	heartbeat(&t, "g1");
	advance(&t, 1000);
	turn(&t);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_SENT] == 5,
	    "live gateway reaped: sent %u queued %u", info.counts[FBX_D_SENT],
	    info.counts[FBX_D_QUEUED]);

	/* now really silent for more than 3 heartbeats, input drained */
	advance(&t, 350);
	turn(&t);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_QUEUED] == 5 && info.counts[FBX_D_SENT] == 0,
	    "silent gateway kept: sent %u queued %u", info.counts[FBX_D_SENT],
	    info.counts[FBX_D_QUEUED]);
	env_close(&t);
}

/* failed_turn - a commit fails while a gateway holds deliveries and its
 * results are in the turn: no ACK leaves, the session keeps what it holds
 * (nothing is sent again), reads are served and writes refused while
 * degraded, and the resent results are recorded after recovery. */
static void
test_failed_turn(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t cid;
	int rc;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "fail") == 0, "open");
	enroll(&t, "acme", 20);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	cid = submit_org(&t, "acme");
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 20, "deliveries %zu", s.nids);

	/* the turn with the results fails, and so do the next writes */
	fbx_store_test_fail_commits = 1000;
	results(&t, "g1", 7, s.ids, 20, FBX_R_SUCCEEDED);
	query_req(&req);
	console(&t, "ops", "acme", &req);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nacks == 0, "an ACK left for a failed commit");
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_EIO, "submit in the failed turn: %d", rc);
	fbx_console_rep_free(&rep);

	/* degraded: a read is served, a write refused at once */
	rc = counts(&t, "acme", cid, &info);
	CHECK(rc == FBX_OK && info.counts[FBX_D_SENT] == 20,
	    "read while degraded: rc %d sent %u", rc, info.counts[FBX_D_SENT]);
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_EIO, "write while degraded: %d", rc);
	fbx_console_rep_free(&rep);

	/* the disk is back; the gateway resends its batch */
	fbx_store_test_fail_commits = 0;
	advance(&t, 10000);
	heartbeat(&t, "g1");
	turn(&t);
	results(&t, "g1", 7, s.ids, 20, FBX_R_SUCCEEDED);
	turn(&t);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nacks == 1 && s.ack_batch[0] == 7 && s.ack_count[0] == 20,
	    "ack after recovery: %zu, count %u", s.nacks, s.ack_count[0]);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 20 &&
	        info.state == FBX_C_DONE,
	    "after recovery: succeeded %u state %d",
	    info.counts[FBX_D_SUCCEEDED], info.state);
	CHECK(s.nids == 20, "deliveries sent again after a failed turn: %zu",
	    s.nids - 20);
	env_close(&t);
}

/* map_full - a commit that fails with MAP_FULL is redone after the map
 * grows, in the same turn: the request is answered OK. */
static void
test_map_full(void)
{
	struct env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	CHECK(env_open(&t, "map") == 0, "open");
	enroll(&t, "acme", 3);
	fbx_store_test_fail_err = FBX_EMAP_FULL;
	fbx_store_test_fail_commits = 1;
	query_req(&req);
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_OK && rep.u.submit.command_id != 0,
	    "submit through a map-full redo: %d", rc);
	CHECK(fbx_store_test_fail_commits == 0, "the hook did not fire");
	fbx_console_rep_free(&rep);
	fbx_store_test_fail_err = 0;
	env_close(&t);
}

/* store_busy - a commit the store rolls back as busy (PostgreSQL: a
 * serialization failure or a deadlock) is done again in the same turn:
 * the request is answered OK, not with an error. */
static void
test_store_busy(void)
{
	struct env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	CHECK(env_open(&t, "busy") == 0, "open");
	enroll(&t, "acme", 3);
	fbx_store_test_fail_err = FBX_EBUSY;
	fbx_store_test_fail_commits = 1;
	query_req(&req);
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_OK && rep.err == FBX_OK &&
	        rep.u.submit.command_id != 0,
	    "submit through a busy redo: %d %d", rc, rep.err);
	CHECK(fbx_store_test_fail_commits == 0, "the hook did not fire");
	fbx_console_rep_free(&rep);
	fbx_store_test_fail_err = 0;
	env_close(&t);
}

/* id_space - the command id space used up (the last command journaled
 * has id FBX_CMD_ID_MAX: a larger one's delivery ids would collide): a
 * submit is answered TOO_MANY, also one with an idempotency key, nothing
 * is journaled, and the engine keeps answering reads. */
static void
test_id_space(void)
{
	struct env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_store_opts so;
	struct fbx_command c, info;
	fbx_store *st = NULL;
	fbx_txn *x = NULL;
	uint64_t last = 0;
	int rc;

	CHECK(env_open(&t, "ids") == 0, "open");
	enroll(&t, "acme", 3);
	/* a finished command at the end of the id space, written while the
	 * engine is closed (one process opens a store once) */
	fbx_engine_close(t.e);
	t.e = NULL;
	memset(&so, 0, sizeof(so));
	so.path = t.dir;
	CHECK(fbx_store_open(&so, &st) == FBX_OK, "store open");
	CHECK(st != NULL && fbx_txn_begin(st, 1, &x) == FBX_OK, "begin");
	memset(&c, 0, sizeof(c));
	snprintf(c.org, sizeof(c.org), "acme");
	snprintf(c.actor, sizeof(c.actor), "ops");
	c.type = FBX_CMD_QUERY;
	c.origin = FBX_ORIGIN_OPERATOR;
	c.target_kind = FBX_TARGET_ORG;
	c.state = FBX_C_DONE;
	c.ttl_s = 60;
	c.created_ms = t.io.wall;
	c.expires_ms = t.io.wall + 60000;
	CHECK(x != NULL &&
	        fbx_store_cmd_append_id(x, &c, FBX_CMD_ID_MAX) == FBX_OK,
	    "append at the last id");
	CHECK(x != NULL && fbx_txn_commit(x) == FBX_OK, "commit");
	fbx_store_close(st);
	CHECK(env_reopen(&t) == 0, "reopen");
	if (t.e == NULL) {
		env_close(&t);
		return;
	}

	query_req(&req);
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_ETOO_MANY, "submit past the id space: %d", rc);
	fbx_console_rep_free(&rep);

	query_req(&req);
	snprintf(req.u.submit.cmd.idem_key, sizeof(req.u.submit.cmd.idem_key),
	    "k-1");
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	CHECK(rc == FBX_ETOO_MANY, "submit with a key: %d", rc);
	fbx_console_rep_free(&rep);

	/* still serving: the last command reads back, as it was */
	rc = counts(&t, "acme", FBX_CMD_ID_MAX, &info);
	CHECK(rc == FBX_OK && info.state == FBX_C_DONE,
	    "read after the refusals: %d state %d", rc, info.state);

	/* nothing of either submit was journaled (nor the key taken) */
	fbx_engine_close(t.e);
	t.e = NULL;
	st = NULL;
	x = NULL;
	CHECK(fbx_store_open(&so, &st) == FBX_OK, "store open");
	CHECK(st != NULL && fbx_txn_begin(st, 0, &x) == FBX_OK, "begin");
	if (x != NULL) {
		uint64_t prior = 0;
		CHECK(fbx_store_cmd_last(x, &last) == FBX_OK &&
		        last == FBX_CMD_ID_MAX,
		    "last command %llu", (unsigned long long)last);
		CHECK(fbx_store_idem_get(x, "acme", "k-1", &prior) ==
		        FBX_ENOT_FOUND,
		    "key taken by command %llu", (unsigned long long)prior);
		fbx_txn_abort(x);
	}
	fbx_store_close(st);
	env_close(&t);
}

/* rb_cmd - a rollback of command cid of acme, for devices of group
 * (NULL: every device), planned or executed; rep is the caller's. */
static int
rb_cmd(struct env *t, uint64_t cid, const char *group, int execute,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;
	uint64_t ids[1];

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	ids[0] = cid;
	req.u.rollback.sel.command_ids = ids;
	req.u.rollback.sel.ncommand_ids = 1;
	if (group != NULL)
		snprintf(req.u.rollback.sel.group,
		    sizeof(req.u.rollback.sel.group), "%s", group);
	req.u.rollback.execute = execute;
	req.u.rollback.sliced = 1;
	req.u.rollback.limit = 1000;
	console(t, "ops", "acme", &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* rb_plan - the plan of a rollback of acme's command cid: its counts
 * per action in pa (zero when the rollback is refused); @return the
 * reply's err */
static int
rb_plan(struct env *t, uint64_t cid, uint32_t pa[FBX_RB_COUNT])
{
	struct fbx_console_rep rep;
	int rc = rb_cmd(t, cid, NULL, 0, &rep);

	for (int i = 0; i < FBX_RB_COUNT; i++)
		pa[i] = rc == FBX_OK ? rep.u.rollback.per_action[i] : 0;
	fbx_console_rep_free(&rep);
	return rc;
}

/* rollback_unknown - a rollback, planned or executed, of a command the
 * organisation does not have is answered NOT_FOUND, and the engine goes
 * on (it once freed an uninitialised command read that had failed) */
static void
test_rollback_unknown(void)
{
	struct env t;
	struct fbx_console_rep rep;
	struct fbx_command info;
	uint64_t a;

	CHECK(env_open(&t, "rbu") == 0, "open");
	enroll(&t, "acme", 3);
	for (int execute = 0; execute < 2; execute++) {
		int rc = rb_cmd(&t, 4242, NULL, execute, &rep);
		CHECK(rc == FBX_ENOT_FOUND, "rollback of no command (%d): %d",
		    execute, rc);
		fbx_console_rep_free(&rep);
	}
	a = submit_org(&t, "acme");
	CHECK(counts(&t, "acme", a, &info) == FBX_OK, "serving after");
	env_close(&t);
}

/* rollback_stops_expansion - a command expanding in slices that a
 * rollback selects stops expanding: the plan says so (one row, as for a
 * held whole target), the deliveries it made are cancelled, the devices
 * it had not reached get nothing, and it ends. A rollback of one group's
 * devices does not stop it (its other devices are not selected). */
static void
test_rollback_stops_expansion(void)
{
	struct env t;
	struct fbx_console_rep rep;
	struct fbx_command info;
	const struct fbx_rb_row *w = NULL;
	uint64_t cid;
	uint32_t made = 0, before;
	int rc;

	CHECK(env_open(&t, "rbx") == 0, "open");
	t.expand_chunk = 20;
	CHECK(env_reopen(&t) == 0, "reopen with 20 deliveries a turn");
	enroll(&t, "acme", 300);
	cid = submit_org(&t, "acme");
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.state == FBX_C_EXPANDING && info.ndeliveries < 300,
	    "expanding in slices: state %d, %u deliveries", info.state,
	    info.ndeliveries);

	/* the plan: one row for what is not reached yet */
	rc = rb_cmd(&t, cid, NULL, 0, &rep);
	for (size_t i = 0; rc == FBX_OK && i < rep.u.rollback.nrows; i++)
		if (rep.u.rollback.rows[i].delivery_id == 0)
			w = &rep.u.rollback.rows[i];
	CHECK(w != NULL && w->action == FBX_RB_CANCEL &&
	        strstr(w->detail, "still expanding") != NULL,
	    "plan: row for the rest of the target: %s",
	    w != NULL ? w->detail : "(none)");
	fbx_console_rep_free(&rep);

	/* one group's devices (none of them in it): it goes on */
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK, "read");
	before = info.ndeliveries;
	rc = rb_cmd(&t, cid, "no-such-group", 1, &rep);
	fbx_console_rep_free(&rep);
	turn(&t);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.state == FBX_C_EXPANDING && info.ndeliveries > before,
	    "a group's rollback stopped the expansion: state %d, %u "
	    "deliveries, %u before (rc %d)",
	    info.state, info.ndeliveries, before, rc);

	rc = rb_cmd(&t, cid, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.next_cursor == 0,
	    "rollback: %d, executed %d", rc, rep.u.rollback.executed);
	fbx_console_rep_free(&rep);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK, "read");
	made = info.ndeliveries;
	for (int i = 0; i < 20; i++) {
		advance(&t, 100);
		turn(&t);
	}
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.ndeliveries == made && made < 300,
	    "expansion went on after the rollback: %u deliveries, %u at "
	    "the rollback",
	    info.ndeliveries, made);
	CHECK(info.counts[FBX_D_CANCELLED] == made &&
	        info.counts[FBX_D_QUEUED] == 0 && info.state == FBX_C_DONE &&
	        strstr(info.note, "expansion stopped") != NULL,
	    "after the rollback: cancelled %u of %u, queued %u, state %d, "
	    "note '%s'",
	    info.counts[FBX_D_CANCELLED], made, info.counts[FBX_D_QUEUED],
	    info.state, info.note);
	env_close(&t);
}

/* offline_devices - how many of org's devices (up to 1000) are marked
 * offline */
static unsigned
offline_devices(struct env *t, const char *org)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	unsigned n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.limit = 1000;
	console(t, "reader", org, &req);
	turn(t);
	if (reply(t, "reader", &rep) == FBX_OK)
		for (size_t i = 0; i < rep.u.devices.n; i++)
			n += rep.u.devices.devs[i].online == 0;
	fbx_console_rep_free(&rep);
	return n;
}

/* checkin_range - devices from..from+n-1 of org check in through
 * gateway peer */
static void
checkin_range(struct env *t, const char *peer, const char *org,
    unsigned from, unsigned n)
{
	static uint64_t batch = 1000;
	struct fbx_checkin *c = calloc(n, sizeof(*c));
	struct fbx_gw_msg m;

	for (unsigned i = 0; i < n; i++) {
		snprintf(c[i].org, sizeof(c[i].org), "%s", org);
		snprintf(c[i].device, sizeof(c[i].device), "%s-d%05u", org,
		    from + i);
		c[i].at_ms = t->io.wall;
	}
	memset(&m, 0, sizeof(m));
	m.kind = FBX_GW_CHECKINS;
	m.u.checkins.batch_id = batch++;
	m.u.checkins.c = c;
	m.u.checkins.n = n;
	gateway(t, peer, &m);
	turn(t);
	free(c);
}

/* checkin_all - devices 0..n-1 of org check in through gateway peer */
static void
checkin_all(struct env *t, const char *peer, const char *org, unsigned n)
{
	checkin_range(t, peer, org, 0, n);
}

/* checkin_sent - acme's ten devices check in through gateway gw; what
 * the engine then sends gw is in s */
static void
checkin_sent(struct env *t, const char *gw, struct gw_seen *s)
{
	checkin_all(t, gw, "acme", 10);
	turn(t);
	memset(s, 0, sizeof(*s));
	drain_gw(t, gw, s);
}

/* replay_cmd - an executed replay of command cid of acme's deliveries in
 * a gateway's hands */
static int
replay_cmd(struct env *t, uint64_t cid, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;
	uint64_t ids[1];

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_REPLAY;
	ids[0] = cid;
	req.u.replay.sel.command_ids = ids;
	req.u.replay.sel.ncommand_ids = 1;
	req.u.replay.execute = 1;
	req.u.replay.sliced = 1;
	console(t, "ops", "acme", &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* rb_sliced - an executed rollback of command cid of acme, slice after
 * slice; @return the first error, or FBX_OK */
static int
rb_sliced(struct env *t, uint64_t cid)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t ids[1], cursor = 0, snap = 0, rbid = 0;
	int rc, n = 0;

	do {
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		ids[0] = cid;
		req.u.rollback.sel.command_ids = ids;
		req.u.rollback.sel.ncommand_ids = 1;
		req.u.rollback.execute = 1;
		req.u.rollback.sliced = 1;
		req.u.rollback.limit = 1000;
		req.u.rollback.cursor = cursor;
		req.u.rollback.last_command_id = snap;
		req.u.rollback.rollback_id = rbid;
		console(t, "ops", "acme", &req);
		turn(t);
		rc = reply(t, "ops", &rep);
		if (rc == FBX_OK) {
			cursor = rep.u.rollback.next_cursor;
			snap = rep.u.rollback.last_command_id;
			if (rbid == 0)
				rbid = rep.u.rollback.rollback_id;
		}
		fbx_console_rep_free(&rep);
		n++;
	} while (rc == FBX_OK && cursor != 0 && n < 100);
	CHECK(n > 2, "rollback in %d slices", n);
	return rc;
}

/* out_and_back - a query to every device of acme, sent to gateway gw
 * (its ids in s), then rolled back (in slices when sliced) */
static uint64_t
out_and_back(struct env *t, const char *gw, struct gw_seen *s, int sliced)
{
	struct fbx_console_rep rep;
	uint64_t c = submit_org(t, "acme");
	int rc;

	turn(t);
	memset(s, 0, sizeof(*s));
	drain_gw(t, gw, s);
	CHECK(s->nids == 10 && FBX_DLV_CMD(s->ids[0]) == c,
	    "command %llu sent: %zu", (unsigned long long)c, s->nids);
	if (sliced) {
		rc = rb_sliced(t, c);
		CHECK(rc == FBX_OK, "sliced rollback: %d", rc);
		return c;
	}
	rc = rb_cmd(t, c, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed,
	    "rollback of %llu: %d", (unsigned long long)c, rc);
	fbx_console_rep_free(&rep);
	return c;
}

/* rollback_withdraws_inflight - a delivery sent once and not accepted
 * when a rollback selects its command is withdrawn: the device can have
 * it only from the gateway holding it, so when that gateway reports the
 * device offline it waits and the device's check-in cancels it, instead
 * of sending it after the rollback. When the device may have it after
 * all, the delivery goes on as before, sent again with its id so that
 * its outcome is learnt: accepted (before the offline report, or
 * reported after it); come back unanswered (here the engine restarted,
 * so its sessions are gone); sent again by a replay. Also across
 * rollback slices. */
static void
test_rollback_withdraws_inflight(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	uint64_t a;
	int rc;

	CHECK(env_open(&t, "rbw") == 0, "open");
	enroll(&t, "acme", 10);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);

	/* A: sent, rolled back, every device reported offline: they wait,
	 * and their check-in cancels them */
	a = out_and_back(&t, "g1", s, 0);
	/* the rollback's audit record counts what it withdrew */
	{
		struct fbx_console_req al;
		memset(&al, 0, sizeof(al));
		al.kind = FBX_CREQ_AUDIT_LIST;
		al.u.audit_list.limit = 10;
		strcpy(al.u.audit_list.action, "rollback");
		console(&t, "ops", "acme", &al);
		turn(&t);
		rc = reply(&t, "ops", &rep);
		CHECK(rc == FBX_OK && rep.u.audit.n == 1 &&
		        strstr(rep.u.audit.r[0].params, "\"withdrawn\":10,") !=
		            NULL,
		    "rollback record: %d %s", rc,
		    rc == FBX_OK && rep.u.audit.n > 0 ? rep.u.audit.r[0].params
		                                      : "");
		fbx_console_rep_free(&rep);
	}
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "A after offline results: pending %u",
	    info.counts[FBX_D_PENDING]);
	CHECK(offline_devices(&t, "acme") == 10, "offline after A: %u",
	    offline_devices(&t, "acme"));
	checkin_sent(&t, "g1", s);
	CHECK(s->nids == 0, "A sent at the check-in: %zu", s->nids);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 10 &&
	        info.counts[FBX_D_PENDING] == 0,
	    "A after the check-in: cancelled %u, pending %u",
	    info.counts[FBX_D_CANCELLED], info.counts[FBX_D_PENDING]);
	CHECK(offline_devices(&t, "acme") == 0, "offline after check-in: %u",
	    offline_devices(&t, "acme"));

	/* B: accepted after the rollback, then offline: the device has
	 * it; sent again at the check-in, its outcome recorded. The first
	 * five are reported out of order (the offline report before the
	 * acceptance, which comes from the session that no longer holds
	 * them) */
	a = out_and_back(&t, "g1", s, 0);
	results(&t, "g1", 2, s->ids + 5, 5, FBX_R_ACCEPTED);
	results(&t, "g1", 3, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	results(&t, "g1", 20, s->ids, 5, FBX_R_ACCEPTED);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "B accepted, then offline: pending %u, cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g1", s);
	CHECK(s->nids == 10 && FBX_DLV_CMD(s->ids[0]) == a,
	    "B sent again at the check-in: %zu", s->nids);
	/* not sent once any more: offline again leaves it waiting */
	results(&t, "g1", 4, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "B offline again: pending %u, cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g1", s);
	CHECK(s->nids == 10, "B sent at the second check-in: %zu", s->nids);
	results(&t, "g1", 5, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 10,
	    "B's outcome: succeeded %u", info.counts[FBX_D_SUCCEEDED]);

	/* C: the engine restarts: sent again to g2 with the same ids (a
	 * device may have them), offline there: pending, as any */
	a = out_and_back(&t, "g1", s, 0);
	CHECK(env_reopen(&t) == 0, "restart");
	hello(&t, "g2", "acme", 100);
	turn(&t);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g2", s);
	CHECK(s->nids == 10 && FBX_DLV_CMD(s->ids[0]) == a,
	    "C sent again after the restart: %zu", s->nids);
	results(&t, "g2", 1, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "C after the restart and offline results: pending %u, "
	    "cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g2", s);
	results(&t, "g2", 2, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);

	/* D: a replay between the rollback and the offline results sends
	 * them again on purpose: the devices wait for their check-in */
	a = out_and_back(&t, "g2", s, 0);
	rc = replay_cmd(&t, a, &rep);
	CHECK(rc == FBX_OK && rep.u.replay.resent == 10, "replay of D: %d %u",
	    rc, rc == FBX_OK ? rep.u.replay.resent : 0);
	fbx_console_rep_free(&rep);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g2", s);
	CHECK(s->nids == 10, "D replayed: %zu", s->nids);
	results(&t, "g2", 3, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 10,
	    "D after its replay and offline results: pending %u, "
	    "cancelled %u",
	    info.counts[FBX_D_PENDING], info.counts[FBX_D_CANCELLED]);
	checkin_sent(&t, "g2", s);
	results(&t, "g2", 4, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);
	env_close(&t);

	/* E: as A, with the rollback in slices of 4 deliveries: the later
	 * slices withdraw theirs too */
	CHECK(env_open(&t, "rbw2") == 0, "open");
	t.rollback_slice = 4;
	CHECK(env_reopen(&t) == 0, "reopen with slices of 4");
	enroll(&t, "acme", 10);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);
	a = out_and_back(&t, "g1", s, 1);
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_OFFLINE);
	turn(&t);
	checkin_all(&t, "g1", "acme", 10);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 10,
	    "E after offline results: cancelled %u, pending %u",
	    info.counts[FBX_D_CANCELLED], info.counts[FBX_D_PENDING]);
	free(s);
	env_close(&t);
}

/* cmd_devs - an operator's command of type to acme's devices
 * from..from+n-1; @return its id or 0 */
static uint64_t
cmd_devs(struct env *t, int type, unsigned from, unsigned n)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id *ids = calloc(n, sizeof(*ids));
	uint64_t id = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = (uint8_t)type;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = 3600;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	for (unsigned i = 0; i < n; i++)
		snprintf(ids[i], sizeof(ids[i]), "acme-d%05u", from + i);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = n;
	console(t, "ops", "acme", &req);
	turn(t);
	if (reply(t, "ops", &rep) == FBX_OK)
		id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	free(ids);
	CHECK(id != 0, "%s of %u devices", fbx_cmd_type_name(type), n);
	return id;
}

/* lock_devs - an operator's lock of acme's devices from..from+n-1;
 * @return its id or 0 */
static uint64_t
lock_devs(struct env *t, unsigned from, unsigned n)
{
	return cmd_devs(t, FBX_CMD_LOCK, from, n);
}

/* sent_to - drain both gateways; @return the one that was sent
 * delivery id ("g1", "g2"), NULL if neither */
static const char *
sent_to(struct env *t, struct gw_seen *s, uint64_t id)
{
	static const char *const gws[2] = { "g1", "g2" };
	const char *who = NULL;

	for (int g = 0; g < 2; g++) {
		memset(s, 0, sizeof(*s));
		drain_gw(t, gws[g], s);
		for (size_t i = 0; i < s->nids; i++)
			if (s->ids[i] == id)
				who = gws[g];
	}
	return who;
}

/* out_sent - turns (at most 5) until delivery id is sent; @return its
 * gateway, "g1" if none (the check fails) */
static const char *
out_sent(struct env *t, struct gw_seen *s, uint64_t id)
{
	const char *who = NULL;

	for (int i = 0; i < 5 && who == NULL; i++) {
		turn(t);
		who = sent_to(t, s, id);
	}
	CHECK(who != NULL, "delivery %llu sent", (unsigned long long)id);
	return who != NULL ? who : "g1";
}

/* out_withdrawn - turns until delivery id is sent, then an executed
 * rollback of its command cid; @return its gateway */
static const char *
out_withdrawn(struct env *t, struct gw_seen *s, uint64_t cid, uint64_t id)
{
	struct fbx_console_rep rep;
	const char *who = out_sent(t, s, id);
	int rc;

	rc = rb_cmd(t, cid, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "rollback of %llu: %d",
	    (unsigned long long)cid, rc);
	fbx_console_rep_free(&rep);
	return who;
}

/* pass_turns - n turns 100 ms apart, both gateways alive */
static void
pass_turns(struct env *t, int n)
{
	for (int i = 0; i < n; i++) {
		advance(t, 100);
		heartbeat(t, "g1");
		heartbeat(t, "g2");
		turn(t);
	}
}

/* withdrawn_keys_and_supersede - (1) only the key a withdrawn delivery
 * was sent to can say the device got it: another gateway's acceptance
 * leaves the withdrawal, and the check-in cancels; the holder's ends it.
 * (2) A withdrawn delivery the device was reported offline for does not
 * stand in for an older command of its kind: an older lock expanding
 * when it reaches the device is not superseded by it, and reaches the
 * device once the check-in has cancelled the rolled-back one. (3) One
 * still in a gateway's hands does (the device most likely gets it): the
 * older lock's delivery is superseded, and when the device is then
 * reported offline, its check-in sends the rolled-back delivery, which
 * now carries the older lock, rather than cancel it; a second run of
 * the rollback leaves it. (4) A newer lock that supersedes a withdrawn
 * one carries nothing of it. (5) As (3) with the older lock rolled back
 * too: the check-in cancels. (6) A newer lock that supersedes one a
 * rollback found in flight (accepted then, offline since) carries
 * nothing of it either. (7) A replay ends that mark. (8) As (6) for one
 * withdrawn when the rollback executed, accepted since (the withdrawal
 * ends, the mark stays). (9) As (6) for restarts, which have nothing to
 * undo. (10) One a rollback left waiting because it stands in for an
 * older command passes that on when a newer one supersedes it: once
 * the older one is rolled back too, the newest carries nothing. */
static void
test_withdrawn_keys_and_supersede(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	const char *holder, *other;
	char pfx[64];
	uint32_t pa[FBX_RB_COUNT];
	uint64_t a, o, x, xd, x4, x5;
	int rc;

	CHECK(env_open(&t, "rbk") == 0, "open");
	t.io.gw_keys = 1;
	t.expand_chunk = 1;
	CHECK(env_reopen(&t) == 0, "reopen: a delivery a turn");
	enroll(&t, "acme", 1000); /* 67 locks are within the lock limit */
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	turn(&t);
	sent_to(&t, s, 0);

	/* (1) */
	for (int k = 0; k < 2; k++) {
		a = lock_devs(&t, (unsigned)k, 1);
		xd = FBX_DLV_ID(a, 0);
		holder = out_withdrawn(&t, s, a, xd);
		other = strcmp(holder, "g1") == 0 ? "g2" : "g1";
		results(&t, holder, 10 + (uint64_t)k, &xd, 1, FBX_R_OFFLINE);
		turn(&t);
		results(&t, k == 0 ? holder : other, 20 + (uint64_t)k, &xd, 1,
		    FBX_R_ACCEPTED);
		turn(&t);
		checkin_range(&t, "g1", "acme", (unsigned)k, 1);
		CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
		        info.counts[FBX_D_CANCELLED] == (k == 0 ? 0u : 1u) &&
		        info.counts[FBX_D_QUEUED] + info.counts[FBX_D_SENT] ==
		            (k == 0 ? 1u : 0u),
		    "%s's acceptance after the offline report: cancelled %u, "
		    "queued %u, sent %u",
		    k == 0 ? "the holder" : "another key",
		    info.counts[FBX_D_CANCELLED], info.counts[FBX_D_QUEUED],
		    info.counts[FBX_D_SENT]);
	}

	/* (2) X, a lock of device 19, sent, rolled back and reported
	 * offline while O, an older lock of devices 0..19, expands a
	 * device a turn */
	o = lock_devs(&t, 0, 20);
	x = lock_devs(&t, 19, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	results(&t, holder, 30, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	pass_turns(&t, 40);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.ndeliveries == 20 && info.counts[FBX_D_SUPERSEDED] == 0,
	    "O expanded, nothing superseded: %u deliveries, %u superseded",
	    info.ndeliveries, info.counts[FBX_D_SUPERSEDED]);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 19, 1);
	turn(&t);
	CHECK(sent_to(&t, s, FBX_DLV_ID(o, 19)) != NULL,
	    "O's lock of device 19 sent after the check-in");
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 1,
	    "X cancelled at the check-in: %u", info.counts[FBX_D_CANCELLED]);

	/* (3) the same, with X2 still out when O2 reaches device 39 */
	o = lock_devs(&t, 20, 20);
	x = lock_devs(&t, 39, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	pass_turns(&t, 40);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.ndeliveries == 20 && info.counts[FBX_D_SUPERSEDED] == 1,
	    "O2's delivery to device 39 superseded by X2: %u of %u",
	    info.counts[FBX_D_SUPERSEDED], info.ndeliveries);
	results(&t, holder, 40, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 39, 1);
	turn(&t);
	holder = sent_to(&t, s, xd);
	CHECK(holder != NULL, "X2 sent at the check-in: it carries O2's lock");
	results(&t, holder != NULL ? holder : "g1", 41, &xd, 1,
	    FBX_R_SUCCEEDED);
	turn(&t);
	rc = rb_plan(&t, x, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_COMPENSATE] == 0 &&
	        pa[FBX_RB_NOTHING] == 1,
	    "X2's rollback again: compensate %u, nothing %u",
	    pa[FBX_RB_COMPENSATE], pa[FBX_RB_NOTHING]);

	/* (4) a newer lock Y of a device whose rolled-back X waits for
	 * it supersedes X, and carries nothing of it: Y's rollback plans
	 * to cancel Y */
	x = lock_devs(&t, 50, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	results(&t, holder, 50, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	a = lock_devs(&t, 50, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X superseded by Y: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* (5) as (3), with O3 rolled back before the check-in: X3 then
	 * carries nothing anyone wants, and the check-in cancels it */
	o = lock_devs(&t, 60, 20);
	x = lock_devs(&t, 79, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	pass_turns(&t, 40);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "O3's delivery to device 79 superseded by X3: %u",
	    info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, o, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "rollback of O3: %d",
	    rc);
	fbx_console_rep_free(&rep);
	results(&t, holder, 60, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 79, 1);
	turn(&t);
	CHECK(sent_to(&t, s, xd) == NULL, "X3 not sent at the check-in");
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_CANCELLED] == 1,
	    "X3 cancelled at the check-in: %u", info.counts[FBX_D_CANCELLED]);

	/* (6) X4 accepted when its rollback executed (in flight: neither
	 * withdrawn nor compensated, the rollback is to be run again once
	 * it settled), then reported offline: it waits for its device, and
	 * a newer lock Y4 supersedes it. X4 was rolled back, so Y4 carries
	 * nothing of it: Y4's rollback plans to cancel Y4 while it waits,
	 * and to compensate it once it succeeded */
	x = x4 = lock_devs(&t, 85, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 70, &xd, 1, FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] == 1,
	    "X4's rollback finds it in flight: %d, %u", rc,
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] : 0);
	fbx_console_rep_free(&rep);
	results(&t, holder, 71, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_PENDING] == 1,
	    "X4 waits for its device: pending %u", info.counts[FBX_D_PENDING]);
	a = lock_devs(&t, 85, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X4 superseded by Y4: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y4's rollback while it waits: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);
	sent_to(&t, s, 0);
	checkin_range(&t, "g1", "acme", 85, 1);
	turn(&t);
	xd = FBX_DLV_ID(a, 0);
	holder = sent_to(&t, s, xd);
	CHECK(holder != NULL, "Y4 sent at the check-in");
	results(&t, holder != NULL ? holder : "g1", 72, &xd, 1,
	    FBX_R_SUCCEEDED);
	turn(&t);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK &&
	        pa[FBX_RB_COMPENSATE] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y4's rollback once it succeeded: compensate %u, nothing %u",
	    pa[FBX_RB_COMPENSATE],
	    pa[FBX_RB_NOTHING]);

	/* (7) X5, as X4 up to its rollback, then replayed (sent again on
	 * purpose): no longer marked */
	o = x5 = lock_devs(&t, 90, 1);
	xd = FBX_DLV_ID(o, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 73, &xd, 1,
	    FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_cmd(&t, o, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] == 1,
	    "X5's rollback finds it in flight: %d", rc);
	fbx_console_rep_free(&rep);
	rc = replay_cmd(&t, o, &rep);
	CHECK(rc == FBX_OK && rep.u.replay.resent == 1, "replay of X5: %d %u",
	    rc, rc == FBX_OK ? rep.u.replay.resent : 0);
	fbx_console_rep_free(&rep);

	/* (8) X6 sent once when its rollback executed (withdrawn), then
	 * accepted (the withdrawal ends: the device has it) and reported
	 * offline: superseded by a newer lock Y6, which carries nothing of
	 * it */
	x = lock_devs(&t, 91, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_withdrawn(&t, s, x, xd);
	results(&t, holder, 74, &xd, 1, FBX_R_ACCEPTED);
	turn(&t);
	results(&t, holder, 75, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	a = lock_devs(&t, 91, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X6 superseded by Y6: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y6's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* (9) as (6) with restarts (nothing to undo, their rollback's
	 * row says so; they supersede): the newer one carries nothing of
	 * the rolled-back one */
	x = cmd_devs(&t, FBX_CMD_RESTART, 92, 1);
	xd = FBX_DLV_ID(x, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 76, &xd, 1, FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_NOTHING] == 1,
	    "X7's rollback: nothing to undo: %d", rc);
	fbx_console_rep_free(&rep);
	results(&t, holder, 77, &xd, 1, FBX_R_OFFLINE);
	turn(&t);
	a = cmd_devs(&t, FBX_CMD_RESTART, 92, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X7 superseded by Y7: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y7's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* (10) X8 waits for its offline device and stands in for the
	 * older lock W it superseded: its rollback leaves it (marked). A
	 * newer lock Y8 supersedes X8, then W is rolled back too: Y8
	 * carries nothing anyone wants, and its rollback cancels it */
	o = lock_devs(&t, 93, 1);
	xd = FBX_DLV_ID(o, 0);
	holder = out_sent(&t, s, xd);
	results(&t, holder, 78, &xd, 1,
	    FBX_R_OFFLINE);
	turn(&t);
	x = lock_devs(&t, 93, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", o, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "W superseded by X8: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_NOTHING] == 1,
	    "X8's rollback leaves it (stands in for W): %d", rc);
	fbx_console_rep_free(&rep);
	a = lock_devs(&t, 93, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X8 superseded by Y8: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, o, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "W's rollback: %d", rc);
	fbx_console_rep_free(&rep);
	rc = rb_plan(&t, a, pa);
	CHECK(rc == FBX_OK && pa[FBX_RB_CANCEL] == 1 &&
	        pa[FBX_RB_NOTHING] == 0,
	    "Y8's rollback: cancel %u, nothing %u",
	    pa[FBX_RB_CANCEL],
	    pa[FBX_RB_NOTHING]);

	/* the marks (reopens the engine) */
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)x4);
	CHECK(kv_records(&t, pfx, 0) == 1, "X4 marked rolled back in flight");
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)x5);
	CHECK(kv_records(&t, pfx, 0) == 0, "X5's mark gone with its replay");
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)x);
	CHECK(kv_records(&t, pfx, 0) == 1, "X8 marked: left waiting");
	free(s);
	env_close(&t);
}

/* marks_pruned_chain - a newer lock Y supersedes X, which a rollback
 * left waiting because it stands in for an older lock W (not rolled
 * back, its time to live running). Y's rollback leaves Y for W through
 * X's flagged link; once retention (shorter than the time to live) has
 * pruned X and W with their links, the chain cannot be followed, and
 * Y's rollback still leaves Y (and says why) rather than cancel a lock
 * that W may want. */
static void
test_marks_pruned_chain(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	const char *holder;
	uint32_t pa[FBX_RB_COUNT];
	uint64_t w, x, y, wd;
	int rc, cancelled = 0;

	CHECK(env_open(&t, "rbp") == 0, "open");
	t.io.gw_keys = 1;
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention 60 s");
	enroll(&t, "acme", 200);
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	turn(&t);
	sent_to(&t, s, 0);
	w = lock_devs(&t, 7, 1);
	wd = FBX_DLV_ID(w, 0);
	holder = out_sent(&t, s, wd);
	results(&t, holder, 1, &wd, 1, FBX_R_OFFLINE);
	turn(&t);
	x = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", w, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "W superseded by X: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed &&
	        rep.u.rollback.per_action[FBX_RB_NOTHING] == 1,
	    "X's rollback leaves it (stands in for W): %d", rc);
	fbx_console_rep_free(&rep);
	y = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X superseded by Y: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, y, NULL, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.per_action[FBX_RB_NOTHING] == 1 &&
	        rep.u.rollback.nrows == 1 &&
	        strstr(rep.u.rollback.rows[0].detail, "stands in") != NULL,
	    "Y's rollback before the prune: nothing %u (%s)",
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING] : 0,
	    rc == FBX_OK && rep.u.rollback.nrows > 0
	        ? rep.u.rollback.rows[0].detail
	        : "");
	fbx_console_rep_free(&rep);
	/* past retention: W and X (done) are pruned, Y waits. One record
	 * a turn: while X's links are gone and X itself not yet, Y's
	 * rollback leaves Y too */
	t.prune_budget = 1;
	CHECK(env_reopen(&t) == 0, "reopen with a prune budget of 1");
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	for (int i = 0; i < 100; i++) {
		advance(&t, 1000);
		heartbeat(&t, "g1");
		heartbeat(&t, "g2");
		turn(&t);
		if (i < 55)
			continue;
		rc = rb_plan(&t, y, pa);
		if (rc == FBX_OK && pa[FBX_RB_CANCEL] > 0)
			cancelled++;
		}
	CHECK(cancelled == 0, "Y's rollback while the prune runs: cancel in "
	                      "%d turns", cancelled);
	CHECK(counts(&t, "acme", x, &info) == FBX_ENOT_FOUND &&
	        counts(&t, "acme", w, &info) == FBX_ENOT_FOUND,
	    "W and X pruned");
	rc = rb_cmd(&t, y, NULL, 0, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.per_action[FBX_RB_NOTHING] == 1 &&
	        rep.u.rollback.per_action[FBX_RB_CANCEL] == 0 &&
	        rep.u.rollback.nrows == 1 &&
	        strstr(rep.u.rollback.rows[0].detail, "cannot be followed") !=
	            NULL,
	    "Y's rollback after the prune: nothing %u, cancel %u (%s)",
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING] : 0,
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_CANCEL] : 0,
	    rc == FBX_OK && rep.u.rollback.nrows > 0
	        ? rep.u.rollback.rows[0].detail
	        : "");
	fbx_console_rep_free(&rep);
	free(s);
	env_close(&t);
}

/* pruned_selected - X supersedes W (waiting for its offline device);
 * W is done and retention (shorter than the time to live) prunes it one
 * record a turn. A rollback that selects both W and X cancels X in every
 * turn, also while W's delivery is gone and its command and link are
 * not: W is rolled back by that same run, so X stands in for nothing */
static void
test_pruned_selected(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_command info;
	const char *holder;
	uint64_t w, x, wd, ids[2];
	int rc, bad = 0, partial = 0, plans = 0, gone = 0;

	CHECK(env_open(&t, "rbps") == 0, "open");
	t.io.gw_keys = 1;
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention 60 s");
	enroll(&t, "acme", 200);
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	turn(&t);
	sent_to(&t, s, 0);
	w = lock_devs(&t, 7, 1);
	wd = FBX_DLV_ID(w, 0);
	holder = out_sent(&t, s, wd);
	results(&t, holder, 1, &wd, 1, FBX_R_OFFLINE);
	turn(&t);
	x = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", w, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "W superseded by X: %u", info.counts[FBX_D_SUPERSEDED]);
	t.prune_budget = 1;
	CHECK(env_reopen(&t) == 0, "reopen with a prune budget of 1");
	ids[0] = w;
	ids[1] = x;
	/* one turn per plan, so that every state of the prune is seen */
	for (int i = 0; i < 100 && !gone; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int xrows = 0, xcancel = 0, wrows = 0;

		advance(&t, 1000);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		req.u.rollback.sel.command_ids = ids;
		req.u.rollback.sel.ncommand_ids = 2;
		req.u.rollback.sliced = 1;
		req.u.rollback.limit = 1000;
		console(&t, "ops", "acme", &req);
		turn(&t);
		rc = reply(&t, "ops", &rep);
		if (rc == FBX_ENOT_FOUND) {
			gone = 1; /* W pruned: the rollback names a command
			             the organisation no longer has */
		} else if (rc == FBX_OK) {
			plans++;
			for (uint32_t k = 0; k < rep.u.rollback.nrows; k++) {
				const struct fbx_rb_row *row =
				    &rep.u.rollback.rows[k];
				if (row->command_id == x) {
					xrows++;
					xcancel += row->action == FBX_RB_CANCEL;
				} else if (row->command_id == w) {
					wrows++;
				}
			}
			if (xrows != 1 || xcancel != 1) {
				bad++;
				fprintf(stderr, "turn %d: X's row: %s\n", i,
				    rep.u.rollback.nrows > 0
				        ? rep.u.rollback.rows[0].detail
				        : "-");
			}
			if (i >= 55 && wrows == 0)
				partial++;
		} else {
			bad++;
		}
		fbx_console_rep_free(&rep);
	}
	CHECK(bad == 0, "the rollback of W and X cancels X in every turn: "
	                "%d of %d plans did not", bad, plans);
	CHECK(partial > 0 && gone, "W seen without its delivery (%d turns), "
	                           "then gone (%d)", partial, gone);
	free(s);
	env_close(&t);
}

/* chain_closed_at_creation - X superseded W, which a rollback had
 * withdrawn (the link X -> W rolled back from the start, leading no
 * further); Y superseded X, and X is rolled back: Y carries nothing, and
 * its rollback cancels it, also after retention pruned W and X */
static void
test_chain_closed_at_creation(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_console_rep rep;
	struct fbx_command info;
	const char *holder;
	uint64_t w, x, y, wd;
	int rc;

	CHECK(env_open(&t, "rbcc") == 0, "open");
	t.io.gw_keys = 1;
	t.retention_s = 60;
	CHECK(env_reopen(&t) == 0, "reopen with retention 60 s");
	enroll(&t, "acme", 200);
	hello(&t, "g1", "acme", 1000);
	hello(&t, "g2", "acme", 1000);
	turn(&t);
	sent_to(&t, s, 0);
	w = lock_devs(&t, 7, 1);
	wd = FBX_DLV_ID(w, 0);
	holder = out_withdrawn(&t, s, w, wd);
	results(&t, holder, 1, &wd, 1, FBX_R_OFFLINE);
	turn(&t);
	x = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", w, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "W superseded by X: %u", info.counts[FBX_D_SUPERSEDED]);
	y = lock_devs(&t, 7, 1);
	pass_turns(&t, 3);
	CHECK(counts(&t, "acme", x, &info) == FBX_OK &&
	        info.counts[FBX_D_SUPERSEDED] == 1,
	    "X superseded by Y: %u", info.counts[FBX_D_SUPERSEDED]);
	rc = rb_cmd(&t, x, NULL, 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed, "X rolled back: %d",
	    rc);
	fbx_console_rep_free(&rep);
	for (int k = 0; k < 2; k++) {
		rc = rb_cmd(&t, y, NULL, 0, &rep);
		CHECK(rc == FBX_OK &&
		        rep.u.rollback.per_action[FBX_RB_CANCEL] == 1,
		    "Y's rollback %s the prune: cancel %u, nothing %u (%s)",
		    k == 0 ? "before" : "after",
		    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_CANCEL] : 0,
		    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING] : 0,
		    rc == FBX_OK && rep.u.rollback.nrows > 0
		        ? rep.u.rollback.rows[0].detail
		        : "");
		fbx_console_rep_free(&rep);
		if (k == 1)
			break;
		for (int i = 0; i < 100; i++) {
			advance(&t, 1000);
			heartbeat(&t, "g1");
			heartbeat(&t, "g2");
			turn(&t);
		}
		CHECK(counts(&t, "acme", x, &info) == FBX_ENOT_FOUND &&
		        counts(&t, "acme", w, &info) == FBX_ENOT_FOUND,
		    "W and X pruned");
	}
	free(s);
	env_close(&t);
}

/* rollback_marks_sliced - a rollback in slices of 4 deliveries marks
 * every accepted delivery of a lock of 10 devices (rbf/), also in the
 * slices that hold nothing else to do */
static void
test_rollback_marks_sliced(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	char pfx[64];
	uint64_t a;
	int rc;

	CHECK(env_open(&t, "rbs") == 0, "open");
	t.rollback_slice = 4;
	CHECK(env_reopen(&t) == 0, "reopen with slices of 4");
	enroll(&t, "acme", 200);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);
	a = lock_devs(&t, 0, 10);
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	CHECK(s->nids == 10, "lock sent: %zu", s->nids);
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_ACCEPTED);
	turn(&t);
	rc = rb_sliced(&t, a);
	CHECK(rc == FBX_OK, "sliced rollback: %d", rc);
	snprintf(pfx, sizeof(pfx), "rbf/acme/%llu/", (unsigned long long)a);
	CHECK(kv_records(&t, pfx, 0) == 10, "marks: %d", kv_records(&t, pfx, 0));
	free(s);
	env_close(&t);
}

/* prune_markers_budget - retention deletes a command's rollback markers
 * and supersede links within the same per-turn budget as its
 * deliveries: a command with many of them is pruned over several turns,
 * not in one long one, and goes once they are all gone. */
static void
test_prune_markers_budget(void)
{
	struct env t;
	struct gw_seen *s = calloc(1, sizeof(*s));
	struct fbx_command info;
	char comp[64], sup[64], rbf[64];
	uint64_t a;
	int turns = 0, n;

	CHECK(env_open(&t, "prb") == 0, "open");
	t.retention_s = 60;
	t.prune_budget = 8;
	CHECK(env_reopen(&t) == 0, "reopen with retention");
	enroll(&t, "acme", 10);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", s);
	a = submit_org(&t, "acme");
	turn(&t);
	memset(s, 0, sizeof(*s));
	drain_gw(&t, "g1", s);
	results(&t, "g1", 1, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(&t);
	CHECK(counts(&t, "acme", a, &info) == FBX_OK &&
	        info.state == FBX_C_DONE,
	    "done: %d", info.state);
	/* 25 markers, 5 marks of deliveries in flight and 3 links of its
	 * deliveries (as a rollback and supersede write them): 43 records
	 * with its 10 deliveries */
	snprintf(comp, sizeof(comp), "comp/acme/%llu/", (unsigned long long)a);
	snprintf(sup, sizeof(sup), "sup/acme/%llu/", (unsigned long long)a);
	snprintf(rbf, sizeof(rbf), "rbf/acme/%llu/", (unsigned long long)a);
	CHECK(kv_records(&t, comp, 25) == 25, "markers written");
	CHECK(kv_records(&t, rbf, 5) == 5, "in-flight marks written");
	CHECK(kv_records(&t, sup, 3) == 3, "links written");
	/* past retention; a younger command keeps the newest id */
	advance(&t, 61000);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	submit_org(&t, "acme");
	/* 8 records a turn: the deliveries in two turns, 6 markers in
	 * the second */
	for (int i = 0; i < 2; i++) {
		advance(&t, 1001);
		turn(&t);
	}
	n = kv_records(&t, comp, 0);
	CHECK(n == 19, "markers after two turns: %d", n);
	/* this read is the reopened engine's first turn: it prunes 8 */
	CHECK(counts(&t, "acme", a, &info) == FBX_OK,
	    "the command stays while its markers do");
	/* 11 markers, 5 marks and 3 links left: three more turns */
	while (counts(&t, "acme", a, &info) == FBX_OK && turns < 20) {
		advance(&t, 1001);
		turn(&t);
		turns++;
	}
	CHECK(turns == 3, "pruned after %d more turns", turns);
	CHECK(kv_records(&t, comp, 0) == 0 && kv_records(&t, sup, 0) == 0 &&
	        kv_records(&t, rbf, 0) == 0,
	    "markers, marks and links gone with the command");
	free(s);
	env_close(&t);
}

/* send_queue_full - a DELIVERIES message the gateway's queue refuses
 * keeps the session; only its deliveries go back to the queue and leave
 * again once the queue takes messages. */
static void
test_send_queue_full(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	uint64_t cid;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "full") == 0, "open");
	enroll(&t, "acme", 8);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	drain_gw(&t, "g1", &s);
	t.io.gw_full = 1;
	cid = submit_org(&t, "acme");
	turn(&t);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_QUEUED] + info.counts[FBX_D_SENT] == 8,
	    "queued %u sent %u", info.counts[FBX_D_QUEUED],
	    info.counts[FBX_D_SENT]);
	t.io.gw_full = 0;
	heartbeat(&t, "g1");
	turn(&t);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 8, "delivered after the queue drained: %zu", s.nids);
	{
		int dup = 0;
		for (size_t i = 0; i < s.nids; i++)
			for (size_t j = i + 1; j < s.nids; j++)
				dup += s.ids[i] == s.ids[j];
		CHECK(dup == 0, "%d deliveries sent twice", dup);
	}
	env_close(&t);
}

/* fairness - one organisation's big fan-out does not hold back another
 * organisation's single command: it leaves in the same turn. */
static void
test_fairness(void)
{
	struct env t;
	struct gw_seen s;
	uint64_t big, small;
	size_t nsmall = 0;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "fair") == 0, "open");
	enroll(&t, "big", 5000);
	enroll(&t, "small", 1);
	{
		struct fbx_gw_msg m;
		fbx_id orgs[2];
		memset(&m, 0, sizeof(m));
		m.kind = FBX_GW_HELLO;
		snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id),
		    "gw-all");
		snprintf(orgs[0], sizeof(orgs[0]), "big");
		snprintf(orgs[1], sizeof(orgs[1]), "small");
		m.u.hello.orgs = orgs;
		m.u.hello.norgs = 2;
		m.u.hello.window = 600;
		gateway(&t, "g1", &m);
	}
	turn(&t);
	/* both arrive in one turn: the big one first */
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		query_req(&req);
		console(&t, "a", "big", &req);
		console(&t, "b", "small", &req);
		turn(&t);
		big = reply(&t, "a", &rep) == FBX_OK ? rep.u.submit.command_id
		                                     : 0;
		fbx_console_rep_free(&rep);
		small = reply(&t, "b", &rep) == FBX_OK
		    ? rep.u.submit.command_id
		    : 0;
		fbx_console_rep_free(&rep);
	}
	drain_gw(&t, "g1", &s);
	for (size_t i = 0; i < s.nids; i++)
		nsmall += (s.ids[i] >> 24) == small;
	CHECK(big != 0 && nsmall == 1,
	    "the small organisation's delivery waited behind the big one "
	    "(%zu of %zu sent are its)",
	    nsmall, s.nids);
	CHECK(s.nids <= 600, "window exceeded: %zu", s.nids);
	env_close(&t);
}

/* Test hook of audit.c: while positive, each SHA-256 fails. */
extern int fbxi_test_crypto_fail;

/* undone_requests - a request that changes state and fails on its own
 * (here: its audit record cannot be hashed) is answered with its error
 * and nothing of it stays: not in the store, not in memory, not in the
 * gateways' in-flight maps; the other requests of its turn go on. */
static void
test_undone_requests(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	struct fbx_console_req req, sub;
	struct fbx_console_rep rep;
	uint64_t cid, ids[1];
	int rc;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "undo") == 0, "open");
	enroll(&t, "acme", 3);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	cid = submit_org(&t, "acme");
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 3, "deliveries %zu", s.nids);

	/* a replay of the 3 SENT deliveries fails at its audit record, in
	 * one turn with a good submit before and after it */
	query_req(&sub);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_REPLAY;
	ids[0] = cid;
	req.u.replay.sel.command_ids = ids;
	req.u.replay.sel.ncommand_ids = 1;
	req.u.replay.execute = 1;
	req.u.replay.state = FBX_D_SENT;
	console(&t, "a", "acme", &sub);
	console(&t, "ops", "acme", &req);
	console(&t, "b", "acme", &sub);
	/* the first submit's audit record is hashed first: fail the
	 * second hash, the replay's */
	fbxi_test_crypto_fail = 0;
	turn(&t);
	rc = reply(&t, "a", &rep);
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_OK, "submit before: %d", rc);
	rc = reply(&t, "ops", &rep);
	fbx_console_rep_free(&rep);
	rc = reply(&t, "b", &rep);
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_OK, "submit after: %d", rc);

	/* the replay first, so the turn's first hash is its record's (the
	 * submits' records are written when the turn commits) */
	fbxi_test_crypto_fail = 1;
	console(&t, "ops", "acme", &req);
	console(&t, "a", "acme", &sub);
	console(&t, "b", "acme", &sub);
	turn(&t);
	CHECK(fbxi_test_crypto_fail == 0, "the hook was not consumed");
	fbxi_test_crypto_fail = 0;
	{
		int r_ops = reply(&t, "ops", &rep), r_a, r_b;
		fbx_console_rep_free(&rep);
		r_a = reply(&t, "a", &rep);
		fbx_console_rep_free(&rep);
		r_b = reply(&t, "b", &rep);
		fbx_console_rep_free(&rep);
		/* the request whose hash failed failed, alone */
		CHECK(r_ops == FBX_ECRYPTO && r_a == FBX_OK && r_b == FBX_OK,
		    "one failure: %d %d %d", r_ops, r_a, r_b);
	}
	CHECK(fbx_engine_turn(t.e) == FBX_OK, "engine keeps serving");

	/* the hash of the turn's submit record fails as the turn commits:
	 * the turn fails as a whole (the record is several requests'), each
	 * submit is answered with the error and none is stored; the next
	 * turn stores and audits a submit (no record of the failed ones is
	 * carried into it) */
	{
		struct fbx_console_req al;
		uint64_t last = 0;
		int r_a, r_b, r_c;
		fbxi_test_crypto_fail = 1;
		console(&t, "a", "acme", &sub);
		console(&t, "b", "acme", &sub);
		turn(&t);
		fbxi_test_crypto_fail = 0;
		r_a = reply(&t, "a", &rep);
		if (r_a == FBX_OK)
			last = rep.u.submit.command_id;
		fbx_console_rep_free(&rep);
		r_b = reply(&t, "b", &rep);
		fbx_console_rep_free(&rep);
		CHECK(r_a == FBX_ECRYPTO && r_b == FBX_ECRYPTO,
		    "submits of a turn whose record failed: %d %d", r_a, r_b);
		/* the same when the record is written before a request of
		 * another kind (the replay): the turn fails, not the replay
		 * alone */
		advance(&t, 6000); /* past the failed turn's backoff */
		fbxi_test_crypto_fail = 1;
		console(&t, "a", "acme", &sub);
		console(&t, "ops", "acme", &req);
		console(&t, "b", "acme", &sub);
		turn(&t);
		fbxi_test_crypto_fail = 0;
		{
			int r_ops = reply(&t, "ops", &rep);
			fbx_console_rep_free(&rep);
			r_a = reply(&t, "a", &rep);
			fbx_console_rep_free(&rep);
			r_b = reply(&t, "b", &rep);
			fbx_console_rep_free(&rep);
			CHECK(r_a == FBX_ECRYPTO && r_ops == FBX_ECRYPTO &&
			        r_b == FBX_ECRYPTO,
			    "a turn whose record failed before a replay: %d "
			    "%d %d",
			    r_a, r_ops, r_b);
		}
		advance(&t, 6000); /* past the failed turns' backoff */
		console(&t, "c", "acme", &sub);
		turn(&t);
		r_c = reply(&t, "c", &rep);
		if (r_c == FBX_OK)
			last = rep.u.submit.command_id;
		fbx_console_rep_free(&rep);
		CHECK(r_c == FBX_OK, "the submit after: %d", r_c);
		memset(&al, 0, sizeof(al));
		al.kind = FBX_CREQ_AUDIT_LIST;
		al.u.audit_list.limit = 1000;
		strcpy(al.u.audit_list.action, "submit");
		console(&t, "ops", "acme", &al);
		turn(&t);
		rc = reply(&t, "ops", &rep);
		CHECK(rc == FBX_OK && rep.u.audit.n > 0, "audit list: %d", rc);
		if (rc == FBX_OK && rep.u.audit.n > 0) {
			/* the newest record is the one submit's, alone, and
			 * names the command the reply did */
			char want[64];
			const struct fbx_audit_rec *r =
			    &rep.u.audit.r[rep.u.audit.n - 1];
			snprintf(want, sizeof(want), "{\"command\":%llu,",
			    (unsigned long long)last);
			CHECK(strncmp(r->params, want, strlen(want)) == 0,
			    "newest submit record: %s", r->params);
			/* each stored submit named once: the first org
			 * submit, 2 + 2 in the turns above, this one */
			size_t named = 0;
			for (size_t i = 0; i < rep.u.audit.n; i++)
				for (const char *p = rep.u.audit.r[i].params;
				     (p = strstr(p, "\"command\":")) != NULL;
				     p++)
					named++;
			CHECK(named == 6, "submits named in the audit log: "
			                  "%zu, want 6",
			    named);
		}
		fbx_console_rep_free(&rep);
	}
	env_close(&t);

	/* the replay alone, failing: the gateway keeps what it holds and
	 * receives nothing again */
	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "undo2") == 0, "open");
	enroll(&t, "acme", 3);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	cid = submit_org(&t, "acme");
	turn(&t);
	drain_gw(&t, "g1", &s);
	ids[0] = cid;
	fbxi_test_crypto_fail = 1;
	console(&t, "ops", "acme", &req);
	turn(&t);
	fbxi_test_crypto_fail = 0;
	rc = reply(&t, "ops", &rep);
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_ECRYPTO, "replay with a failed audit: %d", rc);
	for (int i = 0; i < 3; i++) {
		heartbeat(&t, "g1");
		turn(&t);
	}
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 3,
	    "deliveries sent again after a replay answered as failed: %zu",
	    s.nids - 3);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.counts[FBX_D_SENT] == 3,
	    "sent %u queued %u", info.counts[FBX_D_SENT],
	    info.counts[FBX_D_QUEUED]);
	env_close(&t);
}

/* undone_cancel - a rollout cancel whose audit record fails is answered
 * with the error and the rollout is not cancelled, in the store or in
 * memory. */
static void
test_undone_cancel(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t cid = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "cancel") == 0, "open");
	enroll(&t, "acme", 4);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	rollout_req(&req);
	console(&t, "ops", "acme", &req);
	turn(&t);
	if (reply(&t, "ops", &rep) == FBX_OK)
		cid = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	for (int i = 0; i < 3; i++)
		turn(&t);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.command_id = cid;
	req.u.rollout.op = FBX_ROP_CANCEL;
	fbxi_test_crypto_fail = 1;
	console(&t, "ops", "acme", &req);
	turn(&t);
	fbxi_test_crypto_fail = 0;
	rc = reply(&t, "ops", &rep);
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_ECRYPTO, "cancel with a failed audit: %d", rc);
	turn(&t);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.ro.state != FBX_RO_CANCELLED,
	    "a cancel answered as failed was committed: rollout %d",
	    info.ro.state);
	env_close(&t);
}

/* rollout_last_wave - a rollout whose last wave trips the failure
 * threshold pauses; an operator's resume finishes it (nothing is left to
 * release) instead of leaving the command open until its TTL. */
static void
test_rollout_last_wave(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t cid = 0;
	int rc;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "ro") == 0, "open");
	enroll(&t, "acme", 4);
	hello(&t, "g1", "acme", 100);
	turn(&t);
	rollout_req(&req);
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	if (rc == FBX_OK)
		cid = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_OK && cid != 0, "rollout submit: %d", rc);
	/* wave 1: both succeed; bake; wave 2: both fail */
	for (int i = 0; i < 3; i++)
		turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 2, "wave 1: %zu", s.nids);
	results(&t, "g1", 1, s.ids, s.nids, FBX_R_SUCCEEDED);
	turn(&t);
	advance(&t, 2000);
	heartbeat(&t, "g1");
	for (int i = 0; i < 3; i++)
		turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 4, "wave 2: %zu", s.nids);
	results(&t, "g1", 2, s.ids + 2, s.nids - 2, FBX_R_FAILED);
	turn(&t);
	turn(&t);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.ro.state == FBX_RO_PAUSED,
	    "paused on the last wave: state %d", info.ro.state);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLOUT;
	req.u.rollout.command_id = cid;
	req.u.rollout.op = FBX_ROP_RESUME;
	console(&t, "ops", "acme", &req);
	turn(&t);
	rc = reply(&t, "ops", &rep);
	fbx_console_rep_free(&rep);
	CHECK(rc == FBX_OK, "resume after the last wave: %d", rc);
	advance(&t, 2000);
	heartbeat(&t, "g1");
	for (int i = 0; i < 3; i++)
		turn(&t);
	CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
	        info.state == FBX_C_DONE && info.ro.state == FBX_RO_DONE,
	    "after resume: command %d rollout %d", info.state, info.ro.state);
	env_close(&t);
}

/* expand_room - a target bigger than a turn's expansion is expanded only
 * as far as the gateway can take it (issue 11: a delivery created and
 * sent in one turn is written once); every device still gets exactly one
 * delivery, sent once, and the command ends DONE. */
static void
test_expand_room(void)
{
	enum { NDEV = 20000, WIN = 1000 };
	static struct gw_seen s;
	static uint8_t seen[NDEV];
	struct fbx_command info;
	uint64_t cid, batch = 1;
	uint32_t most_queued = 0;
	size_t done = 0, dup = 0;
	int rounds = 0;

	memset(&s, 0, sizeof(s));
	memset(seen, 0, sizeof(seen));
	{
		struct env t;
		CHECK(env_open(&t, "room") == 0, "open");
		enroll(&t, "acme", NDEV);
		hello(&t, "g1", "acme", WIN);
		turn(&t);
		cid = submit_org(&t, "acme");
		turn(&t);
		/* the submit expanded one chunk inline (16,384), the
		 * gateway took its window; nothing is answered: the next
		 * turns create nothing more */
		turn(&t);
		turn(&t);
		CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
		        info.ndeliveries == 16384 &&
		        info.state == FBX_C_EXPANDING &&
		        info.counts[FBX_D_SENT] == WIN,
		    "held back: %u deliveries, state %d, sent %u",
		    info.ndeliveries, info.state, info.counts[FBX_D_SENT]);
		while (rounds++ < 200) {
			size_t from = s.nids;
			drain_gw(&t, "g1", &s);
			for (size_t i = from; i < s.nids; i++) {
				uint32_t idx = FBX_DLV_IDX(s.ids[i]);
				if (idx >= NDEV || seen[idx]++)
					dup++;
			}
			if (s.nids > from)
				results(&t, "g1", batch++, s.ids + from,
				    s.nids - from, FBX_R_SUCCEEDED);
			turn(&t);
			if (counts(&t, "acme", cid, &info) != FBX_OK)
				break;
			/* past the inline chunk, what waits in the queue
			 * is what the gateway can take */
			if (info.ndeliveries > 16384 + WIN &&
			    info.counts[FBX_D_QUEUED] > most_queued)
				most_queued = info.counts[FBX_D_QUEUED];
			if (info.state == FBX_C_DONE)
				break;
		}
		done = info.counts[FBX_D_SUCCEEDED];
		CHECK(info.state == FBX_C_DONE && done == NDEV &&
		        info.ndeliveries == NDEV,
		    "state %d, %zu succeeded of %u deliveries", info.state, done,
		    info.ndeliveries);
		CHECK(dup == 0 && s.nids == NDEV, "%zu sent, %zu twice", s.nids,
		    dup);
		CHECK(most_queued <= WIN, "queued ahead of the gateway: %u",
		    most_queued);
		env_close(&t);
	}
}

/* urgent_first - while a big organisation fans out, a small command's
 * delivery leaves in a batch of its own marked urgent, ahead of the bulk
 * of the same turn; and its result, in a small RESULTS batch queued
 * behind big ones, is recorded and ACKed in the next turn while big
 * batches past the short turn's share wait (un-ACKed) for the turns
 * after it, where they are recorded too. */
static void
test_urgent_first(void)
{
	enum { NBIG = 12000, PER = 4000 };
	static struct gw_seen s;
	struct env t;
	struct fbx_command info;
	uint64_t big = 0, small = 0, sid = 0;
	size_t nurgent = 0, nbig = 0;
	int small_acked = 0, big_acked = 0;

	memset(&s, 0, sizeof(s));
	CHECK(env_open(&t, "urgent") == 0, "open");
	enroll(&t, "big", NBIG);
	enroll(&t, "small", 1);
	{
		struct fbx_gw_msg m;
		fbx_id orgs[2];
		memset(&m, 0, sizeof(m));
		m.kind = FBX_GW_HELLO;
		snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id),
		    "gw-all");
		snprintf(orgs[0], sizeof(orgs[0]), "big");
		snprintf(orgs[1], sizeof(orgs[1]), "small");
		m.u.hello.orgs = orgs;
		m.u.hello.norgs = 2;
		m.u.hello.window = 65536;
		gateway(&t, "g1", &m);
	}
	turn(&t);
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		query_req(&req);
		console(&t, "a", "big", &req);
		console(&t, "b", "small", &req);
		turn(&t);
		big = reply(&t, "a", &rep) == FBX_OK ? rep.u.submit.command_id
		                                     : 0;
		fbx_console_rep_free(&rep);
		small = reply(&t, "b", &rep) == FBX_OK
		    ? rep.u.submit.command_id
		    : 0;
		fbx_console_rep_free(&rep);
	}
	drain_gw(&t, "g1", &s);
	for (size_t i = 0; i < s.nids; i++) {
		if (FBX_DLV_CMD(s.ids[i]) == small)
			sid = s.ids[i];
		nurgent += s.urgent[i];
	}
	CHECK(big != 0 && small != 0 && s.nids > 1 && s.ids[0] == sid &&
	        s.urgent[0] && nurgent == 1,
	    "the small command's delivery is not first and alone urgent "
	    "(%zu sent, %zu urgent)",
	    s.nids, nurgent);
	/* the rest of the big fan-out goes out over the next turns */
	for (int k = 0; k < 8 && s.nids < NBIG + 1; k++) {
		turn(&t);
		drain_gw(&t, "g1", &s);
	}
	CHECK(s.nids == NBIG + 1, "%zu of %d sent", s.nids, NBIG + 1);
	/* three big RESULTS batches, then the small one */
	{
		uint64_t ids[PER];
		size_t n = 0;
		uint64_t batch = 1;
		for (size_t i = 0; i < s.nids; i++) {
			if (s.ids[i] == sid)
				continue;
			ids[n++] = s.ids[i];
			nbig++;
			if (n == PER) {
				results(&t, "g1", batch++, ids, n,
				    FBX_R_SUCCEEDED);
				n = 0;
			}
		}
		if (n > 0)
			results(&t, "g1", batch++, ids, n, FBX_R_SUCCEEDED);
		results(&t, "g1", 100, &sid, 1, FBX_R_SUCCEEDED);
	}
	turn(&t);
	memset(&s, 0, sizeof(s));
	drain_gw(&t, "g1", &s);
	for (size_t i = 0; i < s.nacks; i++) {
		small_acked += s.ack_batch[i] == 100;
		big_acked += s.ack_batch[i] != 100;
	}
	CHECK(counts(&t, "small", small, &info) == FBX_OK &&
	        info.state == FBX_C_DONE && small_acked == 1 &&
	        big_acked >= 1 && big_acked < 3,
	    "small result: state %d, ACKed %d; big batches ACKed %d of 3",
	    info.state, small_acked, big_acked);
	for (int k = 0; k < 4; k++) {
		turn(&t);
		drain_gw(&t, "g1", &s);
	}
	big_acked = 0;
	for (size_t i = 0; i < s.nacks; i++)
		big_acked += s.ack_batch[i] != 100;
	CHECK(nbig == NBIG && big_acked == 3 &&
	        counts(&t, "big", big, &info) == FBX_OK &&
	        info.state == FBX_C_DONE &&
	        info.counts[FBX_D_SUCCEEDED] == NBIG,
	    "big: %d of 3 batches ACKed, state %d, %u succeeded", big_acked,
	    info.state, info.counts[FBX_D_SUCCEEDED]);
	env_close(&t);
}

int
main(void)
{
	test_rollout_last_wave();
	test_undone_requests();
	test_undone_cancel();
	test_state_machine();
	test_liveness();
	test_failed_turn();
	test_map_full();
	test_store_busy();
	test_id_space();
	test_rollback_unknown();
	test_rollback_stops_expansion();
	test_rollback_withdraws_inflight();
	test_withdrawn_keys_and_supersede();
	test_rollback_marks_sliced();
	test_marks_pruned_chain();
	test_chain_closed_at_creation();
	test_pruned_selected();
	test_prune_markers_budget();
	test_send_queue_full();
	test_fairness();
	test_urgent_first();
	test_expand_room();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
