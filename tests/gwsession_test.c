/*
 * gwsession_test.c: gateway sessions seen from raw ZeroMQ DEALER peers. A
 * gateway id held by a live session is refused to a second peer (BUSY);
 * once the first peer has gone silent and its deliveries were requeued, a
 * new peer under the same id may report their results, which are recorded
 * and counted in the ACK, and the requeued copies are never sent again.
 * Results batches numbered 0 are refused (PROTOCOL), results the reporting
 * gateway may not give (another organisation's, unknown deliveries) are
 * not counted, and a batch over 65,536 entries is refused (TOOBIG) without
 * hurting the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "harness.h"
#include "pbraw.h"

#define HB_MS 500   /* --heartbeat-ms: BUSY for 2x, reaped after 3x */
#define GUARD_MS 60000 /* hang guard, not a speed limit */
#define NCMD 20

static void *zctx;

/* heartbeats sent and not yet answered, per peer socket: their ACKs
 * (batch 0) are told apart from an ACK of a batch numbered 0 */
static struct {
	void *s;
	int pending;
} hbs[4];

static int *
hb_pending(void *s)
{
	for (size_t i = 0; i < sizeof(hbs) / sizeof(hbs[0]); i++) {
		if (hbs[i].s == s || hbs[i].s == NULL) {
			hbs[i].s = s;
			return &hbs[i].pending;
		}
	}
	abort(); /* more peers than slots: a test bug */
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void *
gw_open(const char *ep)
{
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	int zero = 0;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	fbxt_sock_curve(s, "FUSEBOX_GATEWAY_KEY"); /* issue 10 */
	zmq_connect(s, ep);
	return s;
}

static int
gw_send(void *s, const struct fbx_gw_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_gw_msg_encode(m, &buf, &len);

	if (rc != FBX_OK)
		return rc;
	rc = zmq_send(s, buf, len, 0) == (int)len ? FBX_OK : FBX_EIO;
	free(buf);
	return rc;
}

static int
gw_hello(void *s, const char *id, const char *org, uint32_t window)
{
	struct fbx_gw_msg m;
	fbx_id orgs[1];

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_HELLO;
	snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id), "%s", id);
	snprintf(orgs[0], sizeof(orgs[0]), "%s", org);
	m.u.hello.orgs = orgs;
	m.u.hello.norgs = 1;
	m.u.hello.window = window;
	return gw_send(s, &m);
}

static int
gw_simple(void *s, int kind, uint32_t window)
{
	struct fbx_gw_msg m;

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = kind;
	if (kind == FBX_GW_CREDIT)
		m.u.credit.window = window;
	if (kind == FBX_GW_BYE)
		snprintf(m.u.bye.reason, sizeof(m.u.bye.reason), "test ends");
	if (kind == FBX_GW_HEARTBEAT)
		(*hb_pending(s))++;
	return gw_send(s, &m);
}

/* gw_results_st - a Results batch: entry i reports status st[i] for
 * ids[i] (st NULL: all succeeded) */
static int
gw_results_st(void *s, uint64_t batch, const uint64_t *ids, const int *st,
    size_t n)
{
	struct fbx_gw_msg m;
	struct fbx_result_rec *r = calloc(n ? n : 1, sizeof(*r));
	int rc;

	if (r == NULL)
		return FBX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r[i].delivery_id = ids[i];
		r[i].status = st != NULL ? st[i] : FBX_R_SUCCEEDED;
	}
	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_RESULTS;
	m.u.results.batch_id = batch;
	m.u.results.r = r;
	m.u.results.n = n;
	rc = gw_send(s, &m);
	free(r);
	return rc;
}

static int
gw_results(void *s, uint64_t batch, const uint64_t *ids, size_t n)
{
	return gw_results_st(s, batch, ids, NULL, n);
}


/* gw_recv - one engine message within timeout_ms. The ACK of one of our
 * heartbeats (batch 0 while heartbeats are unanswered; any other ACK of
 * batch 0 is returned) is counted and dropped here. @return 1 with *m
 * filled (free with fbx_eng_msg_free), 2 for a heartbeat's ACK, 0 on
 * timeout, -1 if undecodable. */
static int
gw_recv(void *s, int timeout_ms, struct fbx_eng_msg *m)
{
	zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
	zmq_msg_t z;
	int rc;

	memset(m, 0, sizeof(*m));
	if (zmq_poll(&it, 1, timeout_ms) <= 0)
		return 0;
	zmq_msg_init(&z);
	if (zmq_msg_recv(&z, s, 0) < 0) {
		zmq_msg_close(&z);
		return 0;
	}
	rc = fbx_eng_msg_decode(zmq_msg_data(&z), zmq_msg_size(&z), m);
	zmq_msg_close(&z);
	if (rc != FBX_OK)
		return -1;
	if (m->kind == FBX_ENG_ACK && m->u.ack.batch_id == 0 &&
	    *hb_pending(s) > 0) {
		(*hb_pending(s))--;
		fbx_eng_msg_free(m);
		return 2;
	}
	return 1;
}

/* gw_expect - the next engine message that is not DELIVERIES and not the
 * ACK of one of our heartbeats (batch 0 while heartbeats are unanswered;
 * any other ACK of batch 0 is returned). With `beat` set, a heartbeat
 * goes out every HB_MS / 3 so the session stays live. @return 1 and *out
 * (free with fbx_eng_msg_free), 0 when the hang guard expires. */
static int
gw_expect(void *s, int beat, struct fbx_eng_msg *out)
{
	int64_t end = now_ms() + GUARD_MS, last = 0;

	memset(out, 0, sizeof(*out));
	while (now_ms() < end) {
		struct fbx_eng_msg m;
		if (beat && now_ms() - last >= HB_MS / 3) {
			gw_simple(s, FBX_GW_HEARTBEAT, 0);
			last = now_ms();
		}
		if (gw_recv(s, HB_MS / 5, &m) != 1)
			continue;
		if (m.kind == FBX_ENG_DELIVERIES) {
			fbx_eng_msg_free(&m);
			continue;
		}
		*out = m;
		return 1;
	}
	return 0;
}

/* gw_sync - wait until every heartbeat sent was answered, skipping
 * deliveries. @return 1, or 0 on another message or the hang guard. */
static int
gw_sync(void *s)
{
	int64_t end = now_ms() + GUARD_MS;

	while (*hb_pending(s) > 0 && now_ms() < end) {
		struct fbx_eng_msg m;
		if (gw_recv(s, HB_MS / 5, &m) != 1)
			continue;
		if (m.kind != FBX_ENG_DELIVERIES) {
			fprintf(stderr, "gw_sync: unexpected message kind %d\n",
			    m.kind);
			fbx_eng_msg_free(&m);
			return 0;
		}
		fbx_eng_msg_free(&m);
	}
	return *hb_pending(s) == 0;
}

/* ack_count - send a Results batch from b and return the count of its
 * ACK, or -1 if none came */
static long
ack_count(void *b, uint64_t batch, const uint64_t *ids, const int *st,
    size_t n)
{
	struct fbx_eng_msg m;
	long count = -1;

	gw_results_st(b, batch, ids, st, n);
	if (gw_expect(b, 1, &m) && m.kind == FBX_ENG_ACK &&
	    m.u.ack.batch_id == batch)
		count = m.u.ack.count;
	fbx_eng_msg_free(&m);
	return count;
}

static int
get_cmd(struct fbxt_env *t, const char *org, uint64_t id,
    struct fbx_command *info)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	memset(info, 0, sizeof(*info));
	req.kind = FBX_CREQ_GET_COMMAND;
	req.u.get.command_id = id;
	rc = fbxt_call(t, org, &req, &rep);
	if (rc == FBX_OK) {
		*info = rep.u.command.info;
		info->payload = NULL;
		info->dev_ids = NULL;
	}
	fbx_console_rep_free(&rep);
	return rc;
}

static int
ping(struct fbxt_env *t, struct fbx_engine_stats *st)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = fbxt_call(t, "org-001", &req, &rep);
	if (rc == FBX_OK && st != NULL)
		*st = rep.u.pong;
	fbx_console_rep_free(&rep);
	return rc;
}

/* org_devices - the first n device ids of org. @return how many. */
static size_t
org_devices(struct fbxt_env *t, const char *org, fbx_id *out, size_t n)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	size_t got = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.limit = (uint32_t)n;
	if (fbxt_call(t, org, &req, &rep) == FBX_OK) {
		for (; got < rep.u.devices.n && got < n; got++)
			snprintf(out[got], sizeof(out[got]), "%s",
			    rep.u.devices.devs[got].id);
	}
	fbx_console_rep_free(&rep);
	return got;
}

static int
submit_devs(struct fbxt_env *t, const char *org, fbx_id *devs, size_t n,
    uint64_t *id)
{
	const char *ids[64];
	uint32_t count = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		ids[i] = devs[i];
	rc = fbxt_submit(t, org, FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, n, NULL, id, &count);
	if (rc == FBX_OK && count != n)
		return FBX_ESTATE;
	return rc;
}

/* big_results - a GatewayMessage{version 1, results{batch, n x
 * Result{id, SUCCEEDED}}} built by hand: the codec refuses to encode more
 * than FBX_BATCH_MAX entries. @return malloc'd bytes, *len. */
static uint8_t *
big_results(uint64_t batch, size_t n, size_t *len)
{
	size_t cap = 32 + n * 16, body = 0, off = 0;
	uint8_t *inner = malloc(cap), *msg = malloc(cap + 32);

	if (inner == NULL || msg == NULL) {
		free(inner);
		free(msg);
		return NULL;
	}
	inner[body++] = 0x08; /* Results.batch_id */
	body += put_varint(inner + body, batch);
	for (size_t i = 0; i < n; i++) {
		uint8_t r[16];
		size_t rl = 0;
		r[rl++] = 0x08; /* Result.delivery_id */
		rl += put_varint(r + rl, FBX_DLV_ID(1, 0) + i);
		r[rl++] = 0x10; /* Result.status */
		r[rl++] = FBX_R_SUCCEEDED;
		inner[body++] = 0x12; /* Results.results */
		body += put_varint(inner + body, rl);
		memcpy(inner + body, r, rl);
		body += rl;
	}
	msg[off++] = 0x08; /* GatewayMessage.version */
	msg[off++] = FBX_PROTOCOL_VERSION;
	msg[off++] = 0x62; /* GatewayMessage.results (12, length) */
	off += put_varint(msg + off, body);
	memcpy(msg + off, inner, body);
	off += body;
	free(inner);
	*len = off;
	return msg;
}

static int
has_id(const uint64_t *v, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i] == id)
			return 1;
	}
	return 0;
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_command info;
	struct fbx_eng_msg m;
	struct fbx_engine_stats st;
	fbx_id devs[64], dev2[1];
	uint64_t cmd1 = 0, cmd2 = 0, cmd3 = 0;
	uint64_t got[NCMD], marker[NCMD];
	size_t ngot = 0, nmarker = 0, resent = 0;
	void *a = NULL, *b = NULL;
	char hb[16];
	int rc;

	zctx = zmq_ctx_new();
	snprintf(hb, sizeof(hb), "%d", HB_MS);
	if (fbxt_setup(&t, "gwsess") != 0 ||
	    fbxt_daemon_start(&t, "--heartbeat-ms", hb, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "100", "--orgs",
	    "2", "--seed", "7", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	FBXT_CHECK(org_devices(&t, "org-001", devs, 2 * NCMD) == 2 * NCMD,
	    "org-001 has fewer than %d devices", 2 * NCMD);
	FBXT_CHECK(org_devices(&t, "org-002", dev2, 1) == 1, "org-002 empty");

	/* A: the gateway that takes 20 deliveries and then goes silent */
	a = gw_open(t.gateway);
	b = gw_open(t.gateway);
	gw_hello(a, "gw-1", "org-001", 1000);
	FBXT_CHECK(gw_expect(a, 0, &m) &&
	        m.kind == FBX_ENG_WELCOME,
	    "A: no WELCOME (kind %d)", m.kind);
	fbx_eng_msg_free(&m);
	rc = submit_devs(&t, "org-001", devs, NCMD, &cmd1);
	FBXT_CHECK(rc == FBX_OK, "submit: %s", fbx_errname(rc));
	{
		int64_t end = now_ms() + GUARD_MS, last = 0;
		while (ngot < NCMD && now_ms() < end) {
			if (now_ms() - last >= HB_MS / 3) {
				gw_simple(a, FBX_GW_HEARTBEAT, 0);
				last = now_ms();
			}
			if (gw_recv(a, HB_MS / 5, &m) != 1)
				continue;
			if (m.kind == FBX_ENG_DELIVERIES) {
				for (size_t i = 0; i < m.u.deliveries.n; i++) {
					uint64_t id = m.u.deliveries.d[i].delivery_id;
					if (FBX_DLV_CMD(id) == cmd1 &&
					    !has_id(got, ngot, id) && ngot < NCMD)
						got[ngot++] = id;
				}
			}
			fbx_eng_msg_free(&m);
		}
	}
	FBXT_CHECK(ngot == NCMD, "A received %zu of %d deliveries", ngot, NCMD);

	/* B says HELLO with A's id while A is live: A spoke (a heartbeat,
	 * ACKed) just before, well within 2 heartbeats */
	gw_simple(a, FBX_GW_HEARTBEAT, 0);
	FBXT_CHECK(gw_sync(a), "A: heartbeat not answered");
	gw_hello(b, "gw-1", "org-001", 0);
	rc = gw_expect(b, 0, &m);
	FBXT_CHECK(rc && m.kind == FBX_ENG_ERROR && m.u.error.err == FBX_EBUSY,
	    "B's HELLO under a live id: kind %d err %s (want ERROR BUSY)",
	    m.kind, m.kind == FBX_ENG_ERROR ? fbx_errname(m.u.error.err) : "-");
	fbx_eng_msg_free(&m);
	/* and from a session of its own: a HELLO again on it under A's id
	 * is refused the same way (it was welcomed beside A) */
	gw_hello(b, "gw-2", "org-001", 0);
	rc = gw_expect(b, 0, &m);
	FBXT_CHECK(rc && m.kind == FBX_ENG_WELCOME,
	    "B's HELLO as gw-2: kind %d", m.kind);
	fbx_eng_msg_free(&m);
	gw_simple(a, FBX_GW_HEARTBEAT, 0);
	FBXT_CHECK(gw_sync(a), "A: heartbeat not answered");
	gw_hello(b, "gw-1", "org-001", 0);
	rc = gw_expect(b, 0, &m);
	FBXT_CHECK(rc && m.kind == FBX_ENG_ERROR && m.u.error.err == FBX_EBUSY,
	    "B's second HELLO (on its session gw-2) under A's live id: kind "
	    "%d err %s (want ERROR BUSY)",
	    m.kind, m.kind == FBX_ENG_ERROR ? fbx_errname(m.u.error.err) : "-");
	fbx_eng_msg_free(&m);
	FBXT_CHECK(get_cmd(&t, "org-001", cmd1, &info) == FBX_OK &&
	        info.counts[FBX_D_SENT] == NCMD,
	    "after the refused HELLO A should still hold %d, sent %u "
	    "queued %u",
	    NCMD, info.counts[FBX_D_SENT], info.counts[FBX_D_QUEUED]);

	/* A goes silent; after 3 heartbeats the engine ends its session and
	 * requeues what it held. No gateway can take them meanwhile. */
	{
		int64_t end = now_ms() + GUARD_MS;
		memset(&st, 0, sizeof(st));
		while (now_ms() < end && (ping(&t, &st) != FBX_OK ||
		                             st.gateways != 0))
			sleep_ms(50);
		FBXT_CHECK(st.gateways == 0, "A's session never ended");
	}
	FBXT_CHECK(get_cmd(&t, "org-001", cmd1, &info) == FBX_OK &&
	        info.counts[FBX_D_QUEUED] == NCMD,
	    "A's deliveries were not requeued: queued %u sent %u",
	    info.counts[FBX_D_QUEUED], info.counts[FBX_D_SENT]);

	/* B takes the id with window 0: nothing is sent to it, so the
	 * requeued deliveries stay queued while it reports the results the
	 * devices gave through A */
	gw_hello(b, "gw-1", "org-001", 0);
	rc = gw_expect(b, 0, &m);
	FBXT_CHECK(rc && m.kind == FBX_ENG_WELCOME,
	    "B's HELLO after A went silent: kind %d err %s", m.kind,
	    m.kind == FBX_ENG_ERROR ? fbx_errname(m.u.error.err) : "-");
	fbx_eng_msg_free(&m);

	/* batch id 0 is refused and nothing of it is recorded (no heartbeat
	 * is unanswered: an ACK of batch 0 here would be the batch's) */
	FBXT_CHECK(gw_sync(b), "B: heartbeats not answered");
	gw_results(b, 0, got, ngot);
	rc = gw_expect(b, 0, &m);
	FBXT_CHECK(rc && m.kind == FBX_ENG_ERROR &&
	        m.u.error.err == FBX_EPROTOCOL,
	    "results batch 0: kind %d err %s (want ERROR PROTOCOL)", m.kind,
	    m.kind == FBX_ENG_ERROR ? fbx_errname(m.u.error.err) : "-");
	fbx_eng_msg_free(&m);
	FBXT_CHECK(get_cmd(&t, "org-001", cmd1, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 0 &&
	        info.counts[FBX_D_QUEUED] == NCMD,
	    "batch 0 changed the command: succeeded %u queued %u",
	    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_QUEUED]);

	/* the results of A's deliveries, through B: recorded, counted */
	gw_results(b, 1, got, ngot);
	rc = gw_expect(b, 1, &m);
	FBXT_CHECK(rc && m.kind == FBX_ENG_ACK &&
	        m.u.ack.batch_id == 1 && m.u.ack.count == NCMD,
	    "results batch 1: kind %d count %u (want ACK %d)", m.kind,
	    m.kind == FBX_ENG_ACK ? m.u.ack.count : 0, NCMD);
	fbx_eng_msg_free(&m);
	FBXT_CHECK(get_cmd(&t, "org-001", cmd1, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == NCMD &&
	        info.state == FBX_C_DONE,
	    "after B's results: succeeded %u queued %u state %s",
	    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_QUEUED],
	    fbx_cstate_name(info.state));

	/* the marker command (see below), queued behind the 20 stale ids;
	 * B's window is still 0 */
	rc = submit_devs(&t, "org-001", devs + NCMD, NCMD, &cmd3);
	FBXT_CHECK(rc == FBX_OK, "marker submit: %s", fbx_errname(rc));

	/* outcomes for deliveries no gateway was ever handed (B's window
	 * is 0): no device ran them, so they are refused and counted as
	 * forged. They were recorded as succeeded, and their queued copies
	 * never sent: a leaked gateway key could close a lock or a wipe
	 * before any gateway had it. */
	{
		uint64_t never[3], forged0;
		for (uint64_t i = 0; i < 3; i++)
			never[i] = FBX_DLV_ID(cmd3, i);
		memset(&st, 0, sizeof(st));
		FBXT_CHECK(ping(&t, &st) == FBX_OK, "ping");
		forged0 = st.results_forged;
		FBXT_CHECK(ack_count(b, 9, never, NULL, 3) == 0,
		    "outcomes of never-sent deliveries counted");
		FBXT_CHECK(get_cmd(&t, "org-001", cmd3, &info) == FBX_OK &&
		        info.counts[FBX_D_SUCCEEDED] == 0 &&
		        info.counts[FBX_D_QUEUED] == NCMD,
		    "never-sent deliveries closed: succeeded %u queued %u",
		    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_QUEUED]);
		FBXT_CHECK(ping(&t, &st) == FBX_OK &&
		        st.results_forged == forged0 + 3,
		    "results_forged %llu, want %llu",
		    (unsigned long long)st.results_forged,
		    (unsigned long long)forged0 + 3);
	}

	/* entries the engine does not record are not counted: another
	 * organisation's delivery (B serves org-001 only), and a delivery
	 * index a live command does not have */
	rc = submit_devs(&t, "org-002", dev2, 1, &cmd2);
	FBXT_CHECK(rc == FBX_OK, "org-002 submit: %s", fbx_errname(rc));
	{
		uint64_t foreign = FBX_DLV_ID(cmd2, 0);
		uint64_t unknown = FBX_DLV_ID(cmd3, 5000);
		gw_results(b, 2, &foreign, 1);
		rc = gw_expect(b, 1, &m);
		FBXT_CHECK(rc && m.kind == FBX_ENG_ACK &&
	        m.u.ack.batch_id == 2 && m.u.ack.count == 0,
		    "foreign result: kind %d count %u (want ACK 0)", m.kind,
		    m.kind == FBX_ENG_ACK ? m.u.ack.count : 0);
		fbx_eng_msg_free(&m);
		FBXT_CHECK(get_cmd(&t, "org-002", cmd2, &info) == FBX_OK &&
		        info.counts[FBX_D_QUEUED] == 1,
		    "org-002's delivery changed by org-001's gateway");
		gw_results(b, 3, &unknown, 1);
		rc = gw_expect(b, 1, &m);
		FBXT_CHECK(rc && m.kind == FBX_ENG_ACK &&
	        m.u.ack.batch_id == 3 && m.u.ack.count == 0,
		    "unknown delivery: kind %d count %u (want ACK 0)", m.kind,
		    m.kind == FBX_ENG_ACK ? m.u.ack.count : 0);
		fbx_eng_msg_free(&m);
		/* a command that never existed (ids are handed out in
		 * order: this one is far beyond the last) */
		unknown = FBX_DLV_ID(cmd2 + 1000000, 0);
		gw_results(b, 7, &unknown, 1);
		rc = gw_expect(b, 1, &m);
		FBXT_CHECK(rc && m.kind == FBX_ENG_ACK &&
		        m.u.ack.batch_id == 7 && m.u.ack.count == 0,
		    "never-existing command: kind %d count %u (want ACK 0)",
		    m.kind, m.kind == FBX_ENG_ACK ? m.u.ack.count : 0);
		fbx_eng_msg_free(&m);
	}

	/* The 20 requeued ids still sit in org-001's operator-priority
	 * queue, now succeeded. Give B credit and submit a marker command of
	 * the same organisation and priority: its ids queue behind the 20,
	 * so once B has all 20 marker deliveries, dispatch has gone past
	 * every stale entry. Asserted: none of A's 20 ids is sent again. */
	gw_simple(b, FBX_GW_CREDIT, 1000);
	{
		int64_t end = now_ms() + GUARD_MS, last = 0;
		while (nmarker < NCMD && now_ms() < end) {
			if (now_ms() - last >= HB_MS / 3) {
				gw_simple(b, FBX_GW_HEARTBEAT, 0);
				last = now_ms();
			}
			if (gw_recv(b, HB_MS / 5, &m) != 1)
				continue;
			if (m.kind == FBX_ENG_DELIVERIES) {
				for (size_t i = 0; i < m.u.deliveries.n; i++) {
					uint64_t id = m.u.deliveries.d[i].delivery_id;
					if (has_id(got, ngot, id))
						resent++;
					else if (FBX_DLV_CMD(id) == cmd3 &&
					    !has_id(marker, nmarker, id) &&
					    nmarker < NCMD)
						marker[nmarker++] = id;
				}
			}
			fbx_eng_msg_free(&m);
		}
	}
	FBXT_CHECK(nmarker == NCMD, "B received %zu of %d marker deliveries",
	    nmarker, NCMD);
	FBXT_CHECK(resent == 0,
	    "%zu deliveries whose results were recorded were sent again",
	    resent);
	gw_results(b, 4, marker, nmarker);
	rc = gw_expect(b, 1, &m);
	FBXT_CHECK(rc && m.kind == FBX_ENG_ACK &&
	        m.u.ack.batch_id == 4 && m.u.ack.count == NCMD,
	    "marker results: kind %d count %u", m.kind,
	    m.kind == FBX_ENG_ACK ? m.u.ack.count : 0);
	fbx_eng_msg_free(&m);
	FBXT_CHECK(get_cmd(&t, "org-001", cmd1, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == NCMD,
	    "command 1 changed: succeeded %u", info.counts[FBX_D_SUCCEEDED]);

	/* A report the engine has no use for is taken, not refused: the
	 * ACK counts it, whether or not its command is still open (an
	 * ACCEPTED for a delivery that already succeeded counted 0 while
	 * the command was open and 1 once it was done, so a resent batch
	 * came back with a smaller count, which reads as refused). */
	{
		uint64_t d[2] = { 0, 0 }, x[2], cmd4 = 0;
		int stx[2];
		size_t nd = 0;
		int64_t end = now_ms() + GUARD_MS, last = 0;

		rc = submit_devs(&t, "org-001", devs, 2, &cmd4);
		FBXT_CHECK(rc == FBX_OK, "2-device submit: %s",
		    fbx_errname(rc));
		while (nd < 2 && now_ms() < end) {
			if (now_ms() - last >= HB_MS / 3) {
				gw_simple(b, FBX_GW_HEARTBEAT, 0);
				last = now_ms();
			}
			if (gw_recv(b, HB_MS / 5, &m) != 1)
				continue;
			if (m.kind == FBX_ENG_DELIVERIES)
				for (size_t i = 0; i < m.u.deliveries.n; i++)
					if (FBX_DLV_CMD(m.u.deliveries.d[i]
					                    .delivery_id) == cmd4 &&
					    nd < 2)
						d[nd++] = m.u.deliveries.d[i]
						              .delivery_id;
			fbx_eng_msg_free(&m);
		}
		FBXT_CHECK(nd == 2, "B received %zu of 2 deliveries", nd);
		FBXT_CHECK(gw_sync(b), "B: heartbeats not answered");
		FBXT_CHECK(ack_count(b, 10, d, NULL, 1) == 1,
		    "first delivery's success not counted");
		/* the command is open (its second delivery is out) */
		stx[0] = FBX_R_ACCEPTED;
		FBXT_CHECK(ack_count(b, 11, d, stx, 1) == 1,
		    "a late ACCEPTED of a succeeded delivery, command open: "
		    "not counted");
		stx[0] = FBX_R_OFFLINE;
		FBXT_CHECK(ack_count(b, 12, d, stx, 1) == 1,
		    "a late OFFLINE of a succeeded delivery: not counted");
		FBXT_CHECK(get_cmd(&t, "org-001", cmd4, &info) == FBX_OK &&
		        info.counts[FBX_D_SUCCEEDED] == 1 &&
		        info.counts[FBX_D_PENDING] == 0 &&
		        info.state != FBX_C_DONE,
		    "late reports changed the command: succeeded %u pending "
		    "%u state %s",
		    info.counts[FBX_D_SUCCEEDED], info.counts[FBX_D_PENDING],
		    fbx_cstate_name(info.state));
		/* a batch with the second delivery's progress and outcome,
		 * sent, then sent again after the command is done: the same
		 * count both times */
		x[0] = x[1] = d[1];
		stx[0] = FBX_R_ACCEPTED;
		stx[1] = FBX_R_SUCCEEDED;
		FBXT_CHECK(ack_count(b, 13, x, stx, 2) == 2,
		    "progress and outcome: not both counted");
		FBXT_CHECK(ack_count(b, 13, x, stx, 2) == 2,
		    "the same batch resent: a different count");
		FBXT_CHECK(get_cmd(&t, "org-001", cmd4, &info) == FBX_OK &&
		        info.counts[FBX_D_SUCCEEDED] == 2 &&
		        info.state == FBX_C_DONE,
		    "2-device command: succeeded %u state %s",
		    info.counts[FBX_D_SUCCEEDED], fbx_cstate_name(info.state));
	}

	/* 70,000 entries: refused before unpacking, session and daemon go
	 * on */
	{
		size_t len = 0;
		uint8_t *big = big_results(5, 70000, &len);
		FBXT_CHECK(big != NULL, "out of memory");
		FBXT_CHECK(gw_sync(b), "B: heartbeats not answered");
		if (big != NULL)
			zmq_send(b, big, len, 0);
		free(big);
		rc = gw_expect(b, 0, &m);
		FBXT_CHECK(rc && m.kind == FBX_ENG_ERROR &&
		        m.u.error.err == FBX_ETOOBIG,
		    "70,000 results: kind %d err %s (want ERROR TOOBIG)",
		    m.kind,
		    m.kind == FBX_ENG_ERROR ? fbx_errname(m.u.error.err) : "-");
		fbx_eng_msg_free(&m);
	}
	FBXT_CHECK(ping(&t, NULL) == FBX_OK, "daemon stopped answering");
	gw_simple(b, FBX_GW_HEARTBEAT, 0);
	FBXT_CHECK(gw_sync(b), "B's session gone after the oversized batch");
	gw_simple(b, FBX_GW_BYE, 0);
out:
	if (a != NULL)
		zmq_close(a);
	if (b != NULL)
		zmq_close(b);
	fbxt_teardown(&t);
	zmq_ctx_term(zctx);
	return fbxt_done();
}
