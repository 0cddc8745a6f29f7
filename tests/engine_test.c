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
 * sent in one turn is written once): its free window, and within the
 * organisation's share of the windows (org_share, a quarter, at least
 * 1,024), `bound` in all; every device still gets exactly one delivery,
 * sent once, and the command ends DONE. */
static void
expand_room(unsigned win, uint32_t bound)
{
	enum { NDEV = 20000 };
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
		hello(&t, "g1", "acme", win);
		turn(&t);
		cid = submit_org(&t, "acme");
		turn(&t);
		/* the submit expanded one chunk inline (16,384), the
		 * gateway took what it may; nothing is answered: the next
		 * turns create nothing more */
		turn(&t);
		turn(&t);
		CHECK(counts(&t, "acme", cid, &info) == FBX_OK &&
		        info.ndeliveries == 16384 &&
		        info.state == FBX_C_EXPANDING &&
		        info.counts[FBX_D_SENT] == bound,
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
			if (info.ndeliveries > 16384 + bound &&
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
		CHECK(most_queued <= bound,
		    "queued ahead of the gateway (window %u): %u", win,
		    most_queued);
		env_close(&t);
	}
}

static void
test_expand_room(void)
{
	expand_room(1000, 1000); /* the window binds (share 1,024) */
	expand_room(8000, 2000); /* the share binds: a quarter */
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
	test_send_queue_full();
	test_fairness();
	test_urgent_first();
	test_expand_room();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
