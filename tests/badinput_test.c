/*
 * badinput_test.c: hostile and mistaken input gets a coded error and the
 * daemon keeps serving: bytes that are not protobuf, an oversized message,
 * a wrong protocol version, an unknown organisation or device, an empty
 * target, an invalid identifier, a reused idempotency key (same content:
 * the same command; other content: a conflict), and garbage on the
 * gateway endpoint.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "harness.h"

static void *zctx;

/* raw_call - send bytes on a fresh DEALER, return the decoded reply. */
static int
raw_call(const char *ep, const void *buf, size_t len,
    struct fbx_console_rep *rep)
{
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	/* a hang guard, not a speed limit: a reply is expected, however
	 * slow the machine */
	int zero = 0, tmo = 60000, rc = -1, n;
	zmq_msg_t m;

	memset(rep, 0, sizeof(*rep));
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	fbxt_sock_curve(s, "FUSEBOX_KEY"); /* issue 10: a known key */
	zmq_connect(s, ep);
	zmq_send(s, "", 0, ZMQ_SNDMORE);
	zmq_send(s, buf, len, 0);
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s, 0) >= 0 && zmq_msg_size(&m) == 0) {
		zmq_msg_close(&m);
		zmq_msg_init(&m);
		n = zmq_msg_recv(&m, s, 0);
		if (n >= 0)
			rc = fbx_console_rep_decode(
			    zmq_msg_data(&m), zmq_msg_size(&m), rep);
	}
	zmq_msg_close(&m);
	zmq_close(s);
	return rc;
}

static int
ping_ok(struct fbxt_env *t)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = fbxt_call(t, "org-001", &req, &rep);
	fbx_console_rep_free(&rep);
	return rc == FBX_OK;
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_console_rep rep;
	struct fbx_console_req req;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t id1 = 0, id2 = 0;
	uint32_t count = 0;
	const char *ids[2];
	char dev0[FBX_ID_MAX + 1];
	int rc;

	zctx = zmq_ctx_new();
	if (fbxt_setup(&t, "bad") != 0 ||
	    fbxt_daemon_start(&t, "--admin-org", "org-001", NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "200", "--orgs",
	    "2", "--seed", "1", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);

	/* not protobuf at all */
	rc = raw_call(t.console, "\xff\xff\xff\xff garbage", 13, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.err == FBX_EMALFORMED,
	    "garbage: rc %d err %d", rc, rep.err);
	fbx_console_rep_free(&rep);
	FBXT_CHECK(ping_ok(&t), "daemon stopped answering after garbage");

	/* over the console message cap (but under the socket's hard cap) */
	{
		size_t big = FBX_CONSOLE_MSG_MAX + 4096;
		uint8_t *b = calloc(1, big);
		rc = raw_call(t.console, b, big, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.err == FBX_ETOOBIG,
		    "oversized: rc %d err %d", rc, rep.err);
		fbx_console_rep_free(&rep);
		free(b);
	}
	FBXT_CHECK(ping_ok(&t), "daemon stopped answering after big input");

	/* a console client under the web requests' routing id mark (a zero
	 * byte, "fbx-web"): its reply would go to the web socket's peers.
	 * Dropped at the socket, logged; the daemon goes on */
	{
		static const uint8_t mark[8] = { 0, 'f', 'b', 'x', '-', 'w',
			'e', 'b' };
		void *s = zmq_socket(zctx, ZMQ_DEALER);
		int zero = 0, tmo = 1500, n0, n1;
		char got[64];
		n0 = fbxt_log_lines(&t, "console: malformed envelope dropped");
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_PING;
		req.version = FBX_PROTOCOL_VERSION;
		snprintf(req.org, sizeof(req.org), "org-001");
		rc = fbx_console_req_encode(&req, &buf, &len);
		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
		zmq_setsockopt(s, ZMQ_ROUTING_ID, mark, sizeof(mark));
		fbxt_sock_curve(s, "FUSEBOX_KEY");
		zmq_connect(s, t.console);
		zmq_send(s, "", 0, ZMQ_SNDMORE);
		zmq_send(s, buf, len, 0);
		free(buf);
		FBXT_CHECK(rc == FBX_OK && zmq_recv(s, got, sizeof(got), 0) < 0,
		    "a reply to the web mark's routing id");
		zmq_close(s);
		/* a request after it (the engine read the first before) */
		FBXT_CHECK(ping_ok(&t), "daemon stopped answering after the "
		                        "web mark");
		n1 = fbxt_log_lines(&t, "console: malformed envelope dropped");
		FBXT_CHECK(n1 == n0 + 1, "the web mark's request logged as "
		                         "dropped: %d lines, then %d",
		    n0, n1);
	}

	/* wrong protocol version */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	req.version = 99;
	snprintf(req.org, sizeof(req.org), "org-001");
	snprintf(req.actor, sizeof(req.actor), "test");
	rc = fbx_console_req_encode(&req, &buf, &len);
	FBXT_CHECK(rc == FBX_OK, "encode");
	rc = raw_call(t.console, buf, len, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.err == FBX_EVERSION,
	    "version: rc %d err %d", rc, rep.err);
	fbx_console_rep_free(&rep);
	free(buf);

	/* unknown organisation */
	rc = fbxt_submit(&t, "org-999", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_ORG, NULL, NULL, 0, NULL, &id1, &count);
	FBXT_CHECK(rc == FBX_EUNKNOWN_ORG, "unknown org: %d", rc);

	/* unknown device (and a real one beside it: nothing is created) */
	{
		struct fbx_console_rep r;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_DEVICES;
		req.u.list_devices.limit = 1;
		rc = fbxt_call(&t, "org-001", &req, &r);
		FBXT_CHECK(rc == FBX_OK && r.u.devices.n == 1, "list");
		snprintf(dev0, sizeof(dev0), "%s",
		    r.u.devices.n ? r.u.devices.devs[0].id : "none");
		fbx_console_rep_free(&r);
	}
	ids[0] = dev0;
	ids[1] = "no-such-device";
	rc = fbxt_submit(&t, "org-001", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 2, NULL, &id1, &count);
	FBXT_CHECK(rc == FBX_EUNKNOWN_DEVICE, "unknown device: %d", rc);
	/* a device of org-001 named by org-002 is unknown there */
	rc = fbxt_submit(&t, "org-002", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, NULL, &id1, &count);
	FBXT_CHECK(rc == FBX_EUNKNOWN_DEVICE, "other org's device: %d", rc);

	/* empty targets */
	rc = fbxt_submit(&t, "org-001", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, NULL, 0, NULL, &id1, &count);
	FBXT_CHECK(rc == FBX_EEMPTY_TARGET, "no ids: %d", rc);
	rc = fbxt_submit(&t, "org-001", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_GROUP, "no-such-group", NULL, 0, NULL, &id1, &count);
	FBXT_CHECK(rc == FBX_EEMPTY_TARGET, "empty group: %d", rc);

	/* invalid identifier */
	ids[0] = "bad id with spaces";
	rc = fbxt_submit(&t, "org-001", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, NULL, &id1, &count);
	FBXT_CHECK(rc == FBX_EINVAL, "invalid id: %d", rc);

	/* idempotency: same key, same content -> same command */
	ids[0] = dev0;
	rc = fbxt_submit(&t, "org-001", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, "key-1", &id1, &count);
	FBXT_CHECK(rc == FBX_OK && count == 1, "first submit: %d", rc);
	rc = fbxt_submit(&t, "org-001", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, "key-1", &id2, &count);
	FBXT_CHECK(rc == FBX_OK && id2 == id1, "retry gave %llu, want %llu",
	    (unsigned long long)id2, (unsigned long long)id1);
	/* same key, other content -> conflict */
	rc = fbxt_submit(&t, "org-001", FBX_CMD_WIPE, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, "key-1", &id2, &count);
	FBXT_CHECK(rc == FBX_EIDEMPOTENCY_CONFLICT, "conflict: %d", rc);
	/* the same key in another organisation is another key */
	{
		struct fbx_console_rep r;
		char dev1[FBX_ID_MAX + 1] = "";
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_DEVICES;
		req.u.list_devices.limit = 1;
		if (fbxt_call(&t, "org-002", &req, &r) == FBX_OK &&
		    r.u.devices.n == 1)
			snprintf(dev1, sizeof(dev1), "%s",
			    r.u.devices.devs[0].id);
		fbx_console_rep_free(&r);
		ids[0] = dev1;
		rc = fbxt_submit(&t, "org-002", FBX_CMD_LOCK,
		    FBX_ORIGIN_OPERATOR, FBX_TARGET_DEVICES, NULL, ids, 1,
		    "key-1", &id2, &count);
		FBXT_CHECK(rc == FBX_OK && id2 != id1,
		    "other org same key: rc %d", rc);
	}
	/* list shows exactly the accepted commands of the organisation */
	{
		struct fbx_console_rep r;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.limit = 100;
		rc = fbxt_call(&t, "org-001", &req, &r);
		FBXT_CHECK(rc == FBX_OK && r.u.commands.n == 1,
		    "org-001 has %zu commands, want 1", r.u.commands.n);
		fbx_console_rep_free(&r);
	}

	/* global controls belong to the admin organisation */
	{
		struct fbx_console_rep r;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_BREAKER;
		req.u.breaker.op = FBX_BRK_TRIP;
		req.u.breaker.global = 1;
		snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason),
		    "attestation_failed");
		snprintf(req.u.breaker.note, sizeof(req.u.breaker.note), "x");
		rc = fbxt_call(&t, "org-002", &req, &r);
		FBXT_CHECK(rc == FBX_EFORBIDDEN, "org-002 global trip: %d", rc);
		fbx_console_rep_free(&r);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_ORGS;
		rc = fbxt_call(&t, "org-002", &req, &r);
		FBXT_CHECK(rc == FBX_EFORBIDDEN, "org-002 list orgs: %d", rc);
		fbx_console_rep_free(&r);
		rc = fbxt_call(&t, "org-001", &req, &r);
		FBXT_CHECK(rc == FBX_OK && r.u.orgs.n == 2,
		    "admin list orgs: %d", rc);
		fbx_console_rep_free(&r);
	}

	/* garbage on the gateway endpoint: an ERROR back, daemon alive */
	{
		void *g = zmq_socket(zctx, ZMQ_DEALER);
		int zero = 0, tmo = 60000; /* hang guard */
		char b[512];
		zmq_setsockopt(g, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(g, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
		fbxt_sock_curve(g, "FUSEBOX_GATEWAY_KEY");
		zmq_connect(g, t.gateway);
		zmq_send(g, "\x08\x01\x62\xff\xff", 5, 0);
		rc = zmq_recv(g, b, sizeof(b), 0);
		FBXT_CHECK(rc > 0, "no error reply on the gateway endpoint");
		if (rc > 0) {
			struct fbx_eng_msg em;
			int drc = fbx_eng_msg_decode(b, (size_t)rc, &em);
			FBXT_CHECK(drc == FBX_OK && em.kind == FBX_ENG_ERROR,
			    "gateway reply: rc %d kind %d", drc, em.kind);
			if (drc == FBX_OK)
				fbx_eng_msg_free(&em);
		}
		zmq_close(g);
	}
	FBXT_CHECK(ping_ok(&t), "daemon stopped answering");
out:
	fbxt_teardown(&t);
	zmq_ctx_term(zctx);
	return fbxt_done();
}
