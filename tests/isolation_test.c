/*
 * isolation_test.c: one console request's own error does not fail the
 * others of its turn. The trigger is a breaker record that fails its
 * checks: a BreakerRequest TRIP for that reason loads it and gets CORRUPT
 * from the store, an error of that request's content, not of the store.
 * Fifty valid submits and a few such TRIPs are pipelined on one DEALER
 * before any reply is read, so they share engine turns. Every submit must
 * be answered OK, its command must exist and be named once in the audit
 * log; every TRIP gets CORRUPT and leaves no trace (no audit record); the
 * daemon keeps serving.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <zmq.h>

#include "fbx_store.h"
#include "harness.h"

#define NSUBMIT 50
#define BAD_EVERY 10 /* a bad request after every 10th submit, and first */
#define BAD_REASON "corrupt_rule"
#define BAD_ID_BASE 100000

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* plant_corrupt_breaker - write a breaker record of the wrong size while
 * the daemon is stopped. @return 0 or -1. */
static int
plant_corrupt_breaker(const char *db)
{
	struct fbx_store_opts o;
	fbx_store *st = NULL;
	fbx_txn *txn = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.path = db;
	rc = fbx_store_open(&o, &st);
	if (rc != FBX_OK) {
		fprintf(stderr, "store open: %s\n", fbx_errname(rc));
		return -1;
	}
	rc = fbx_txn_begin(st, 1, &txn);
	if (rc == FBX_OK)
		rc = fbx_store_kv_put(txn, "brk/org-001/" BAD_REASON, "bad", 3);
	if (rc == FBX_OK) {
		rc = fbx_txn_commit(txn);
	} else {
		fbx_txn_abort(txn);
	}
	fbx_store_close(st);
	if (rc != FBX_OK)
		fprintf(stderr, "plant: %s\n", fbx_errname(rc));
	return rc == FBX_OK ? 0 : -1;
}

static int
send_req(void *s, struct fbx_console_req *req)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	req->version = FBX_PROTOCOL_VERSION;
	snprintf(req->org, sizeof(req->org), "org-001");
	/* the raw socket has the admin's key: it acts as "admin" */
	snprintf(req->actor, sizeof(req->actor), "admin");
	rc = fbx_console_req_encode(req, &buf, &len);
	if (rc != FBX_OK)
		return rc;
	if (zmq_send(s, "", 0, ZMQ_SNDMORE) != 0 ||
	    zmq_send(s, buf, len, 0) != (int)len)
		rc = FBX_EIO;
	free(buf);
	return rc;
}

/* recv_rep - one reply within timeout_ms. @return 0 or -1. */
static int
recv_rep(void *s, int timeout_ms, struct fbx_console_rep *rep)
{
	zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t m;
	int rc = -1, more = 0;
	size_t ml = sizeof(more);

	memset(rep, 0, sizeof(*rep));
	if (zmq_poll(&it, 1, timeout_ms) <= 0)
		return -1;
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s, 0) < 0)
		goto out;
	zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
	if (zmq_msg_size(&m) != 0 || !more)
		goto out; /* want [empty][reply] */
	zmq_msg_close(&m);
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s, 0) < 0)
		goto out;
	if (fbx_console_rep_decode(zmq_msg_data(&m), zmq_msg_size(&m), rep) ==
	    FBX_OK)
		rc = 0;
out:
	zmq_msg_close(&m);
	return rc;
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id devs[NSUBMIT];
	int sub_err[NSUBMIT];
	uint64_t sub_id[NSUBMIT];
	int bad_err[NSUBMIT / BAD_EVERY + 1];
	size_t nbad = 0, nreplies = 0, want;
	void *zctx = zmq_ctx_new(), *s = NULL;
	int rc, st;

	for (size_t i = 0; i < NSUBMIT; i++) {
		sub_err[i] = -1;
		sub_id[i] = 0;
	}
	for (size_t i = 0; i < sizeof(bad_err) / sizeof(bad_err[0]); i++)
		bad_err[i] = -1;
	if (fbxt_setup(&t, "isolation") != 0 ||
	    fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "60", "--orgs",
	    "1", "--seed", "3", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.limit = NSUBMIT;
	rc = fbxt_call(&t, "org-001", &req, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.devices.n == NSUBMIT,
	    "list devices: %s", fbx_errname(rc));
	for (size_t i = 0; i < NSUBMIT; i++)
		snprintf(devs[i], sizeof(devs[i]), "%s",
		    i < rep.u.devices.n ? rep.u.devices.devs[i].id : "none");
	fbx_console_rep_free(&rep);

	/* the bad record goes in while the daemon is stopped */
	st = fbxt_daemon_kill(&t, SIGTERM);
	FBXT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stop: %d", st);
	FBXT_CHECK(plant_corrupt_breaker(t.db) == 0, "could not plant");
	if (fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not restart");
		goto out;
	}

	/* the burst: nothing is read before everything is sent */
	s = zmq_socket(zctx, ZMQ_DEALER);
	{
		int zero = 0;
		zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	}
	fbxt_sock_curve(s, "FUSEBOX_KEY");
	zmq_connect(s, t.console);
	for (size_t i = 0; i < NSUBMIT; i++) {
		struct fbx_command *c = &req.u.submit.cmd;
		fbx_id one;
		if (i % BAD_EVERY == 0) {
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_BREAKER;
			req.request_id = BAD_ID_BASE + nbad++;
			req.u.breaker.op = FBX_BRK_TRIP;
			snprintf(req.u.breaker.reason,
			    sizeof(req.u.breaker.reason), BAD_REASON);
			snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
			    "a trip that cannot load its breaker");
			rc = send_req(s, &req);
			FBXT_CHECK(rc == FBX_OK, "send: %s", fbx_errname(rc));
		}
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_SUBMIT;
		req.request_id = i + 1;
		c->type = FBX_CMD_QUERY;
		c->origin = FBX_ORIGIN_OPERATOR;
		c->target_kind = FBX_TARGET_DEVICES;
		c->ttl_s = 3600;
		memcpy(one, devs[i], sizeof(one));
		c->dev_ids = &one;
		c->ndev_ids = 1;
		rc = send_req(s, &req);
		FBXT_CHECK(rc == FBX_OK, "send: %s", fbx_errname(rc));
	}
	want = NSUBMIT + nbad;
	{
		int64_t end = now_ms() + 60000; /* hang guard */
		while (nreplies < want && now_ms() < end) {
			uint64_t id;
			if (recv_rep(s, 1000, &rep) != 0)
				continue;
			nreplies++;
			id = rep.request_id;
			if (id >= 1 && id <= NSUBMIT) {
				sub_err[id - 1] = rep.err;
				if (rep.err == FBX_OK)
					sub_id[id - 1] = rep.u.submit.command_id;
				else
					fprintf(stderr, "submit %llu: %s: %s\n",
					    (unsigned long long)id,
					    fbx_errname(rep.err), rep.errmsg);
			} else if (id >= BAD_ID_BASE && id < BAD_ID_BASE + nbad) {
				bad_err[id - BAD_ID_BASE] = rep.err;
			} else {
				FBXT_CHECK(0, "reply to unknown request %llu",
				    (unsigned long long)id);
			}
			fbx_console_rep_free(&rep);
		}
	}
	FBXT_CHECK(nreplies == want, "%zu replies of %zu", nreplies, want);
	{
		size_t ok = 0, found = 0;
		for (size_t i = 0; i < NSUBMIT; i++) {
			struct fbx_command info;
			if (sub_err[i] != FBX_OK)
				continue;
			ok++;
			/* one look, no waiting: fills info either way */
			memset(&info, 0, sizeof(info));
			(void)fbxt_wait_settled(&t, "org-001", sub_id[i], 0,
			    &info);
			if (info.id == sub_id[i] && info.ndeliveries == 1)
				found++;
		}
		FBXT_CHECK(ok == NSUBMIT, "%zu of %d valid submits answered OK",
		    ok, NSUBMIT);
		FBXT_CHECK(found == ok, "%zu of %zu acknowledged commands exist",
		    found, ok);
	}
	for (size_t i = 0; i < nbad; i++)
		FBXT_CHECK(bad_err[i] == FBX_ECORRUPT,
		    "bad request %zu answered %s (%d), want CORRUPT", i,
		    bad_err[i] >= 0 ? fbx_errname(bad_err[i]) : "nothing",
		    bad_err[i]);

	/* nothing of the bad requests stays; the submits are audited */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_LIST;
	req.u.audit_list.limit = 1000;
	rc = fbxt_call(&t, "org-001", &req, &rep);
	FBXT_CHECK(rc == FBX_OK, "audit list: %s", fbx_errname(rc));
	if (rc == FBX_OK) {
		size_t trips = 0, submits = 0, once = 0;
		for (size_t i = 0; i < rep.u.audit.n; i++) {
			if (strcmp(rep.u.audit.r[i].action, "breaker.trip") == 0)
				trips++;
			/* a record names one submit or several of a
			 * turn ({"commands":[{"command":ID,...},...]}) */
			if (strcmp(rep.u.audit.r[i].action, "submit") != 0)
				continue;
			for (const char *p = rep.u.audit.r[i].params;
			     (p = strstr(p, "\"command\":")) != NULL; p++)
				submits++;
		}
		/* each acknowledged command named exactly once */
		for (size_t k = 0; k < NSUBMIT; k++) {
			char named[40];
			size_t c = 0;
			snprintf(named, sizeof(named), "\"command\":%llu,",
			    (unsigned long long)sub_id[k]);
			for (size_t i = 0; sub_id[k] != 0 && i < rep.u.audit.n;
			     i++)
				if (strcmp(rep.u.audit.r[i].action, "submit") ==
				        0 &&
				    strstr(rep.u.audit.r[i].params, named) != NULL)
					c++;
			once += c == 1;
		}
		FBXT_CHECK(trips == 0, "%zu failed trips were audited", trips);
		FBXT_CHECK(submits == NSUBMIT && once == NSUBMIT,
		    "%zu submits named in the audit log, %zu of them once, "
		    "want %d",
		    submits, once, NSUBMIT);
	}
	fbx_console_rep_free(&rep);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_VERIFY;
	rc = fbxt_call(&t, "org-001", &req, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.verify.broken_at == 0,
	    "audit chain: %s, broken at %llu", fbx_errname(rc),
	    (unsigned long long)rep.u.verify.broken_at);
	fbx_console_rep_free(&rep);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = fbxt_call(&t, "org-001", &req, &rep);
	FBXT_CHECK(rc == FBX_OK, "ping after the burst: %s", fbx_errname(rc));
	fbx_console_rep_free(&rep);
out:
	if (s != NULL)
		zmq_close(s);
	fbxt_teardown(&t);
	zmq_ctx_term(zctx);
	return fbxt_done();
}
