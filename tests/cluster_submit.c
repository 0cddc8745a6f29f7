/*
 * cluster_submit.c: a helper of tests/cluster_test.sh. One submit (an
 * OS update to every device of ORG, origin scheduled) sent to one node
 * exactly as given, on a raw DEALER socket (CURVE with $FUSEBOX_KEY and
 * $FUSEBOX_SERVER_KEY, acting as "admin"): unlike fbx_client_call, which
 * follows a MOVED answer to the owner, it prints what that node itself
 * answered, so the test can tell a node that refused from one that
 * committed.
 *
 * usage: cluster_submit ENDPOINT ORG IDEMPOTENCY_KEY TIMEOUT_MS
 * prints one line: err=CODE name=NAME command_id=N owner=NODE
 *                  endpoint=EP msg=MESSAGE
 * exit: 0 a reply came (whatever its code), 1 none within TIMEOUT_MS
 *       or a transport error, 64 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "harness.h"

int
main(int argc, char **argv)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	static const char payload[] = "{\"version\":\"15.2\"}";
	uint8_t *buf = NULL;
	size_t len = 0;
	void *ctx, *s;
	int zero = 0, tmo, rc = 1;
	zmq_msg_t m;

	if (argc != 5 || (tmo = atoi(argv[4])) <= 0) {
		fprintf(stderr, "usage: cluster_submit ENDPOINT ORG "
		                "IDEMPOTENCY_KEY TIMEOUT_MS\n");
		return 64;
	}
	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	req.version = FBX_PROTOCOL_VERSION;
	req.request_id = 1;
	req.kind = FBX_CREQ_SUBMIT;
	snprintf(req.org, sizeof(req.org), "%s", argv[2]);
	snprintf(req.actor, sizeof(req.actor), "admin");
	req.u.submit.cmd.type = FBX_CMD_OS_UPDATE;
	req.u.submit.cmd.origin = FBX_ORIGIN_SCHEDULED;
	req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	req.u.submit.cmd.ttl_s = 3600;
	req.u.submit.cmd.payload = (uint8_t *)(uintptr_t)payload;
	req.u.submit.cmd.payload_len = (uint32_t)strlen(payload);
	snprintf(req.u.submit.cmd.idem_key, sizeof(req.u.submit.cmd.idem_key),
	    "%s", argv[3]);
	if (fbx_console_req_encode(&req, &buf, &len) != FBX_OK) {
		fprintf(stderr, "cluster_submit: cannot encode the request\n");
		return 1;
	}
	ctx = zmq_ctx_new();
	s = zmq_socket(ctx, ZMQ_DEALER);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	if (fbxt_sock_curve(s, "FUSEBOX_KEY") != 0 ||
	    zmq_connect(s, argv[1]) != 0) {
		fprintf(stderr, "cluster_submit: cannot set up a client of "
		                "%s (keys in FUSEBOX_KEY, FUSEBOX_SERVER_KEY)\n",
		    argv[1]);
		goto out;
	}
	zmq_send(s, "", 0, ZMQ_SNDMORE);
	zmq_send(s, buf, len, 0);
	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, s, 0) >= 0 && zmq_msg_size(&m) == 0) {
		zmq_msg_close(&m);
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, s, 0) >= 0 &&
		    fbx_console_rep_decode(zmq_msg_data(&m), zmq_msg_size(&m),
		        &rep) == FBX_OK) {
			printf("err=%d name=%s command_id=%llu owner=%s "
			       "endpoint=%s msg=%s\n",
			    rep.err, fbx_errname(rep.err),
			    rep.err == FBX_OK
			        ? (unsigned long long)rep.u.submit.command_id
			        : 0ULL,
			    rep.owner_node, rep.owner_endpoint, rep.errmsg);
			fbx_console_rep_free(&rep);
			rc = 0;
		}
	}
	zmq_msg_close(&m);
	if (rc != 0)
		fprintf(stderr, "cluster_submit: no reply from %s within %d "
		                "ms\n",
		    argv[1], tmo);
out:
	free(buf);
	zmq_close(s);
	zmq_ctx_term(ctx);
	return rc;
}
