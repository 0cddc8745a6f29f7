/*
 * rollback_inflight_test.c: a rollback never sends a compensation to a
 * device whose original delivery is still in a gateway's hands, and a
 * rollback that selects nothing answers NOT_FOUND (issue 8).
 * A test gateway speaks the wire protocol itself so that it can hold a
 * lock unanswered: the rollback must report it as in flight and send
 * nothing; once the lock has succeeded, running the rollback again
 * compensates it, exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "harness.h"

#define ORG "org-001"

static int
gw_send(void *g, const struct fbx_gw_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_gw_msg_encode(m, &buf, &len);

	if (rc != FBX_OK)
		return -1;
	rc = zmq_send(g, buf, len, 0) == (int)len ? 0 : -1;
	free(buf);
	return rc;
}

/* gw_wait_delivery - wait (hang guard only) for a Deliveries message and
 * return its first delivery: id and type. @return 0 or -1. */
static int
gw_wait_delivery(void *g, uint64_t *id, int *type)
{
	static uint8_t buf[1 << 20];

	for (int tries = 0; tries < 20; tries++) {
		struct fbx_eng_msg em;
		int n = zmq_recv(g, buf, sizeof(buf), 0);
		if (n <= 0)
			return -1;
		if (fbx_eng_msg_decode(buf, (size_t)n, &em) != FBX_OK)
			continue;
		if (em.kind == FBX_ENG_DELIVERIES && em.u.deliveries.n > 0) {
			*id = em.u.deliveries.d[0].delivery_id;
			*type = em.u.deliveries.d[0].type;
			fbx_eng_msg_free(&em);
			return 0;
		}
		fbx_eng_msg_free(&em);
	}
	return -1;
}

/* gw_none_pending - nothing but acks or welcomes waits on the socket. */
static int
gw_no_delivery(void *g)
{
	static uint8_t buf[1 << 20];

	for (;;) {
		struct fbx_eng_msg em;
		int n = zmq_recv(g, buf, sizeof(buf), ZMQ_DONTWAIT);
		if (n <= 0)
			return 1;
		if (fbx_eng_msg_decode(buf, (size_t)n, &em) != FBX_OK)
			continue;
		if (em.kind == FBX_ENG_DELIVERIES && em.u.deliveries.n > 0) {
			fprintf(stderr, "unexpected delivery %llu type %d\n",
			    (unsigned long long)em.u.deliveries.d[0].delivery_id,
			    em.u.deliveries.d[0].type);
			fbx_eng_msg_free(&em);
			return 0;
		}
		fbx_eng_msg_free(&em);
	}
}

static int
rollback(struct fbxt_env *t, uint64_t *cmds, size_t ncmds, int type,
    int execute, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	snprintf(req.actor, sizeof(req.actor), "frank");
	req.u.rollback.sel.command_ids = cmds;
	req.u.rollback.sel.ncommand_ids = ncmds;
	req.u.rollback.sel.type = type;
	req.u.rollback.execute = execute;
	req.u.rollback.limit = 100;
	snprintf(req.u.rollback.note, sizeof(req.u.rollback.note), "test");
	return fbxt_call(t, ORG, &req, rep);
}

/* ping - the daemon still answers. */
static int
ping_ok(struct fbxt_env *t)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = fbxt_call(t, ORG, &req, &rep);
	fbx_console_rep_free(&rep);
	return rc == FBX_OK;
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_console_rep rep;
	struct fbx_gw_msg m;
	fbx_id orgs[1] = { "*" };
	const char *dev[1] = { "org-001-d000001" };
	void *zctx = zmq_ctx_new(), *g = NULL;
	uint64_t cmd = 0, dlv = 0, dlv2 = 0;
	uint32_t count = 0;
	int rc, type = 0, zero = 0, tmo = 60000; /* hang guard */

	if (fbxt_setup(&t, "rbinflight") != 0 ||
	    fbxt_daemon_start(&t, "--heartbeat-ms", "600000", NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "4", "--orgs", "1",
	    "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);

	/* a rollback whose filter selects nothing: NOT_FOUND, daemon up */
	rc = rollback(&t, NULL, 0, FBX_CMD_WIPE, 1, &rep);
	FBXT_CHECK(rc == FBX_ENOT_FOUND,
	    "executed rollback selecting nothing: rc %d (%u commands)", rc,
	    rc == FBX_OK ? rep.u.rollback.commands : 0);
	fbx_console_rep_free(&rep);
	rc = rollback(&t, NULL, 0, FBX_CMD_WIPE, 0, &rep);
	FBXT_CHECK(rc == FBX_ENOT_FOUND, "planned rollback selecting "
	                                 "nothing: rc %d", rc);
	fbx_console_rep_free(&rep);
	FBXT_CHECK(ping_ok(&t), "daemon stopped answering");

	/* a gateway that holds what it gets */
	g = zmq_socket(zctx, ZMQ_DEALER);
	zmq_setsockopt(g, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(g, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	fbxt_sock_curve(g, "FUSEBOX_GATEWAY_KEY");
	zmq_connect(g, t.gateway);
	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_HELLO;
	snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id), "gw-hold");
	m.u.hello.orgs = orgs;
	m.u.hello.norgs = 1;
	m.u.hello.window = 100;
	FBXT_CHECK(gw_send(g, &m) == 0, "hello");

	rc = fbxt_submit(&t, ORG, FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, dev, 1, NULL, &cmd, &count);
	FBXT_CHECK(rc == FBX_OK && count == 1, "lock submit rc %d", rc);
	FBXT_CHECK(gw_wait_delivery(g, &dlv, &type) == 0 &&
	        type == FBX_CMD_LOCK,
	    "the gateway did not get the lock");

	/* the lock is in the gateway's hands: in flight, nothing sent */
	rc = rollback(&t, &cmd, 1, 0, 0, &rep);
	FBXT_CHECK(rc == FBX_OK, "plan rc %d", rc);
	if (rc == FBX_OK) {
		const struct fbx_rb_plan *p = &rep.u.rollback;
		FBXT_CHECK(p->per_action[FBX_RB_IN_FLIGHT] == 1 &&
		        p->per_action[FBX_RB_COMPENSATE] == 0,
		    "plan: in flight %u, compensate %u",
		    p->per_action[FBX_RB_IN_FLIGHT],
		    p->per_action[FBX_RB_COMPENSATE]);
		FBXT_CHECK(p->nrows == 1 && p->rows[0].action == FBX_RB_IN_FLIGHT,
		    "plan row action %d", p->nrows ? p->rows[0].action : -1);
	}
	fbx_console_rep_free(&rep);
	rc = rollback(&t, &cmd, 1, 0, 1, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.rollback.executed, "execute rc %d",
	    rc);
	if (rc == FBX_OK)
		FBXT_CHECK(rep.u.rollback.ncomp == 0 &&
		        rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] == 1,
		    "executed: %zu compensating commands, %u in flight",
		    rep.u.rollback.ncomp,
		    rep.u.rollback.per_action[FBX_RB_IN_FLIGHT]);
	fbx_console_rep_free(&rep);
	FBXT_CHECK(ping_ok(&t), "daemon stopped answering");
	FBXT_CHECK(gw_no_delivery(g),
	    "an unlock was sent while the lock was in flight");

	/* the lock succeeds; the rollback run again compensates it */
	{
		struct fbx_result_rec res = { dlv, FBX_R_SUCCEEDED, 0 };
		struct fbx_command info;
		memset(&m, 0, sizeof(m));
		m.version = FBX_PROTOCOL_VERSION;
		m.kind = FBX_GW_RESULTS;
		m.u.results.batch_id = 1;
		m.u.results.r = &res;
		m.u.results.n = 1;
		FBXT_CHECK(gw_send(g, &m) == 0, "results");
		FBXT_CHECK(fbxt_wait_settled(&t, ORG, cmd, 60000, &info) == 0,
		    "the lock did not settle");
	}
	rc = rollback(&t, &cmd, 1, 0, 1, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.rollback.executed,
	    "second execute rc %d", rc);
	if (rc == FBX_OK)
		FBXT_CHECK(rep.u.rollback.ncomp == 1 &&
		        rep.u.rollback.per_action[FBX_RB_COMPENSATE] == 1 &&
		        rep.u.rollback.per_action[FBX_RB_IN_FLIGHT] == 0,
		    "second run: %zu compensating commands, %u compensated",
		    rep.u.rollback.ncomp,
		    rep.u.rollback.per_action[FBX_RB_COMPENSATE]);
	fbx_console_rep_free(&rep);
	FBXT_CHECK(gw_wait_delivery(g, &dlv2, &type) == 0 &&
	        type == FBX_CMD_UNLOCK,
	    "the unlock did not follow the settled lock (type %d)", type);
	/* a third run compensates nothing twice */
	rc = rollback(&t, &cmd, 1, 0, 1, &rep);
	if (rc == FBX_OK)
		FBXT_CHECK(rep.u.rollback.ncomp == 0 &&
		        rep.u.rollback.per_action[FBX_RB_DONE_BEFORE] == 1,
		    "third run: %zu compensating commands", rep.u.rollback.ncomp);
	fbx_console_rep_free(&rep);
out:
	if (g != NULL)
		zmq_close(g);
	fbxt_teardown(&t);
	zmq_ctx_term(zctx);
	return fbxt_done();
}
