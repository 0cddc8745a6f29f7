/*
 * pgqueue.c: bench_pgqueue, the baseline fusebox's fan-out benchmark is
 * measured against: the design an MDM would otherwise use, a job queue in
 * PostgreSQL. One command row and N queue rows are written with batched
 * COPY; workers claim rows with UPDATE ... FOR UPDATE SKIP LOCKED, hand
 * them to a real gateway (fusebox-devsim) over the fusebox gateway
 * protocol (on a CURVE server socket, as the engine's: the gateway
 * connects only with CURVE), and a result writer marks outcomes in
 * batches with synchronous commits before it ACKs them. The figure is
 * deliveries per second from the first insert to the last result made
 * durable.
 *
 * Fairness: everything the engine gets for free is given here too. Row
 * insertion overlaps with dispatch (its own connection and thread; it
 * NOTIFYs the workers, which LISTEN instead of polling an empty table),
 * the workers are asynchronous libpq connections with prepared
 * statements (several claims in flight at once, like a worker pool),
 * results from many gateway batches are group-committed in one UPDATE
 * ... FROM unnest() with binary array parameters, the claim is written
 * and planned the way a tuned queue runs it (see sql_claim, setup), and
 * all of it runs in one process, so there is no broker hop between
 * workers and the gateway.
 *
 * Limitations (a production queue would pay for these, the benchmark does
 * not): rows claimed by a worker that dies stay in state 1 (no lease or
 * visibility timeout sweep); a result update matches rows by primary key
 * because delivery_id equals the queue id, so no extra index on
 * delivery_id; ACCEPTED results are not written; one gateway session.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <zmq.h>

#include "fbx_keys.h"
#include "fbx_proto.h"

#define PQB_WORKERS_MAX 16
#define PQB_CLAIM_MAX 65536
#define PQB_HELLO_WAIT_MS 30000
#define PQB_HEARTBEAT_MS 1000
#define PQB_CMD_CACHE 16
#define PQB_DRAIN_MAX 256      /* gateway messages per loop turn */
#define PQB_RID_MAX 256
#define OID_INT8 20
#define OID_INT2 21

/* queue.state values */
enum { Q_QUEUED = 0, Q_SENT = 1, Q_SUCCEEDED = 2, Q_FAILED = 3,
	Q_OFFLINE = 4 };

struct opts {
	const char *conninfo;
	const char *gw_ep;
	const char *keys; /* directory holding server.key (fuseboxd init) */
	uint32_t ndev, norgs;
	uint32_t claim_batch;
	uint32_t workers;
	uint32_t copy_batch;
	uint32_t payload_bytes;
	uint32_t timeout_s;
	uint32_t retry_ms; /* empty queue: claim again after this, even
	                      without a notification */
	int type;
	int quiet;
};

/* What the insert thread shares with the loop. */
struct inserter {
	const struct opts *o;
	const uint32_t *org_count;
	pthread_t th;
	atomic_uint_fast64_t inserted;
	atomic_int done;   /* 1 = all rows committed, -1 = failed */
	atomic_int stop;   /* set by the loop: give up */
	atomic_int_fast64_t end_ms;
	int64_t command_id;
	char err[512];
};

struct worker {
	PGconn *c;
	int busy;        /* a claim is in flight */
	uint32_t asked;  /* its LIMIT */
	int saw_done;    /* insertion was complete when it was sent */
	int finished;    /* claimed nothing after insertion completed */
	int waiting;     /* queue was empty: until NOTIFY or not_before_ms */
	int64_t sent_ms;
	int64_t not_before_ms;
	PGresult *res;
};

struct bref {
	uint64_t batch_id;
	uint32_t count;
};

/* The result writer: records and batches wait in `next` until the
 * connection is free; then they form one UPDATE, and the batches are
 * ACKed when it has committed. */
struct writer {
	PGconn *c;
	int busy;
	PGresult *res;
	int64_t *ids;
	int16_t *st;
	size_t n, cap;
	struct bref *next, *infl;
	size_t nnext, capnext, ninfl, capinfl;
	size_t sent_recs; /* records in the update in flight */
	int64_t sent_ms;
	uint8_t *buf;     /* binary array parameters */
	size_t bufcap;
};

struct cmdc {
	int64_t id;
	int type;
	uint8_t *payload;
	size_t len;
};

struct bench {
	struct opts o;
	uint32_t *org_start, *org_count;
	PGconn *setup;
	struct worker w[PQB_WORKERS_MAX];
	struct writer wr;
	struct inserter ins;
	int ins_started;
	struct cmdc cache[PQB_CMD_CACHE];
	size_t ncache;
	/* gateway */
	void *ctx, *sock;
	uint8_t rid[PQB_RID_MAX];
	size_t ridlen;
	int have_peer;
	uint32_t window;
	/* counts */
	uint64_t claimed, finalized, reserved;
	uint64_t claims, empty_claims, commits, results_in, ignored;
	uint64_t dlv_msgs, acks;
	int64_t claim_busy_ms, write_busy_ms; /* summed query latencies */
	uint64_t st_count[5];
	int64_t t0_ms, first_dlv_ms, last_commit_ms;
	int failed;
	char server_version[64], fsync[16], sync_commit[16];
};

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
logm(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_pgqueue: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* fleet: the same names and split as fusebox-devsim (devsim/fleet.c) */

static void
org_name(uint32_t o, char *buf, size_t len)
{
	snprintf(buf, len, "org-%03" PRIu32, o + 1);
}

static void
dev_name(uint32_t o, uint32_t k, char *buf, size_t len)
{
	snprintf(buf, len, "org-%03" PRIu32 "-d%06" PRIu32, o + 1, k);
}

static int
fleet_init(struct bench *b)
{
	uint32_t n = b->o.ndev, m = b->o.norgs;

	b->org_start = calloc(m, sizeof(uint32_t));
	b->org_count = calloc(m, sizeof(uint32_t));
	if (b->org_start == NULL || b->org_count == NULL)
		return -1;
	for (uint32_t i = 0; i < m; i++)
		b->org_count[i] = n / m + (i < n % m ? 1 : 0);
	for (uint32_t i = 1; i < m; i++)
		b->org_start[i] = b->org_start[i - 1] + b->org_count[i - 1];
	return 0;
}

/* ------------------------------------------------------------------ */
/* PostgreSQL helpers */

static const char *const sql_schema[] = {
	"SET client_min_messages = warning",
	"DROP TABLE IF EXISTS queue",
	"DROP TABLE IF EXISTS commands",
	"CREATE TABLE commands (id bigserial PRIMARY KEY, org text NOT NULL,"
	" type int NOT NULL, payload bytea, created_at timestamptz NOT NULL"
	" DEFAULT now())",
	"CREATE TABLE queue (id bigserial PRIMARY KEY, command_id bigint NOT"
	" NULL, org text NOT NULL, device text NOT NULL, state smallint NOT"
	" NULL DEFAULT 0, delivery_id bigint, updated_at timestamptz NOT NULL"
	" DEFAULT now())",
	"CREATE INDEX queue_state_id ON queue (state, id)",
	"CHECKPOINT",
	NULL,
};

/* Claim: the classic SKIP LOCKED queue pop. updated_at records when it
 * was handed out, as a lease sweep would need. "id = ANY(ARRAY(...))" is
 * "id IN (SELECT ...)" written so the outer UPDATE always probes the
 * primary key: once the table has statistics, the IN form is planned as
 * a hash semi join over a sequential scan of the whole queue, i.e. O(N)
 * per claim. */
static const char sql_claim[] =
    "UPDATE queue SET state = 1, updated_at = now() WHERE id = ANY(ARRAY("
    "SELECT id FROM queue WHERE state = 0 ORDER BY id LIMIT $1 "
    "FOR UPDATE SKIP LOCKED)) "
    "RETURNING id, command_id, org, device, delivery_id";

/* Results: only rows still out (state 1) move, so a result the gateway
 * resent after a lost ACK, or one for an unknown id, changes nothing and
 * the row count tells how many deliveries became final. */
static const char sql_results[] =
    "UPDATE queue AS q SET state = u.st, updated_at = now() "
    "FROM unnest($1::bigint[], $2::smallint[]) AS u(id, st) "
    "WHERE q.id = u.id AND q.state = 1";

static const char sql_command[] =
    "SELECT type, payload FROM commands WHERE id = $1";

static int
pg_ok(PGresult *r, const char *what)
{
	ExecStatusType s = PQresultStatus(r);

	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
	    s == PGRES_COPY_IN)
		return 1;
	logm("%s: %s", what, PQresultErrorMessage(r));
	return 0;
}

static int
pg_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = pg_ok(r, sql);

	PQclear(r);
	return ok ? 0 : -1;
}

static PGconn *
pg_open(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		logm("cannot connect to PostgreSQL (%s): %s", conninfo,
		    PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static int
pg_prepare(PGconn *c, const char *name, const char *sql)
{
	PGresult *r = PQprepare(c, name, sql, 0, NULL);
	int ok = pg_ok(r, name);

	PQclear(r);
	return ok ? 0 : -1;
}

static void
show(PGconn *c, const char *what, char *out, size_t len)
{
	char q[64];
	PGresult *r;

	snprintf(q, sizeof(q), "SHOW %s", what);
	r = PQexec(c, q);
	snprintf(out, len, "%s",
	    PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
	        ? PQgetvalue(r, 0, 0)
	        : "?");
	PQclear(r);
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

/* ------------------------------------------------------------------ */
/* insertion: its own connection and thread, so dispatch starts as soon
 * as the first batch is committed, as MDM workers polling a queue do */

static int
ins_copy_batch(PGconn *c, struct inserter *in, uint32_t first, uint32_t k,
    char *buf, size_t bufcap)
{
	const struct opts *o = in->o;
	char nbuf[16];
	const char *pv[1] = { nbuf };
	PGresult *r = NULL, *ids;
	size_t len = 0;
	uint32_t o_idx = 0, base = 0;
	int rc = -1;

	/* Reserve the ids first, so delivery_id (the id the device sees) is
	 * written by the same COPY and never needs an UPDATE. */
	snprintf(nbuf, sizeof(nbuf), "%" PRIu32, k);
	ids = PQexecParams(c,
	    "SELECT nextval('queue_id_seq') FROM generate_series(1, $1::int)",
	    1, NULL, pv, NULL, NULL, 0);
	if (!pg_ok(ids, "reserve ids") || (uint32_t)PQntuples(ids) != k) {
		snprintf(in->err, sizeof(in->err), "reserve ids failed");
		goto out;
	}
	r = PQexec(c, "COPY queue (id, command_id, org, device, delivery_id) "
	              "FROM STDIN");
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		snprintf(in->err, sizeof(in->err), "COPY: %s",
		    PQresultErrorMessage(r));
		goto out;
	}
	while (o_idx + 1 < o->norgs && base + in->org_count[o_idx] <= first)
		base += in->org_count[o_idx++];
	for (uint32_t i = 0; i < k; i++) {
		uint32_t g = first + i;
		const char *id = PQgetvalue(ids, (int)i, 0);
		char on[32], dn[48];
		while (g >= base + in->org_count[o_idx])
			base += in->org_count[o_idx++];
		org_name(o_idx, on, sizeof(on));
		dev_name(o_idx, g - base, dn, sizeof(dn));
		if (bufcap - len < 256) {
			if (PQputCopyData(c, buf, (int)len) != 1)
				goto copyfail;
			len = 0;
		}
		len += (size_t)snprintf(buf + len, bufcap - len,
		    "%s\t%" PRId64 "\t%s\t%s\t%s\n", id, in->command_id, on, dn,
		    id);
	}
	if (len > 0 && PQputCopyData(c, buf, (int)len) != 1)
		goto copyfail;
	if (PQputCopyEnd(c, NULL) != 1)
		goto copyfail;
	PQclear(r);
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(in->err, sizeof(in->err), "COPY: %s",
		    PQresultErrorMessage(r));
		goto out;
	}
	PQclear(r);
	r = PQgetResult(c); /* NULL: the COPY is over */
	rc = 0;
	goto out;
copyfail:
	snprintf(in->err, sizeof(in->err), "COPY data: %s", PQerrorMessage(c));
out:
	PQclear(ids);
	PQclear(r);
	return rc;
}

static void *
ins_main(void *arg)
{
	struct inserter *in = arg;
	const struct opts *o = in->o;
	PGconn *c = NULL;
	PGresult *r = NULL;
	char *buf = NULL, tbuf[16], org[32];
	const char *pv[3];
	int pl[3] = { 0, 0, 0 }, pf[3] = { 0, 0, 1 };
	uint8_t *payload = NULL;
	size_t bufcap = 1u << 20;
	int rc = -1;

	c = pg_open(o->conninfo);
	buf = malloc(bufcap);
	payload = calloc(1, o->payload_bytes + 1);
	if (c == NULL || buf == NULL || payload == NULL) {
		snprintf(in->err, sizeof(in->err), "connect or out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < o->payload_bytes; i++)
		payload[i] = (uint8_t)('a' + i % 26);
	/* One command for the whole fleet; "*" when it spans organisations
	 * (each queue row still carries its device's organisation). */
	if (o->norgs == 1)
		org_name(0, org, sizeof(org));
	else
		snprintf(org, sizeof(org), "*");
	snprintf(tbuf, sizeof(tbuf), "%d", o->type);
	pv[0] = org;
	pv[1] = tbuf;
	pv[2] = (const char *)payload;
	pl[2] = (int)o->payload_bytes;
	r = PQexecParams(c,
	    "INSERT INTO commands (org, type, payload, created_at) "
	    "VALUES ($1, $2::int, $3::bytea, now()) RETURNING id",
	    3, NULL, pv, pl, pf, 0);
	if (!pg_ok(r, "insert command") || PQntuples(r) != 1) {
		snprintf(in->err, sizeof(in->err), "insert command failed");
		goto out;
	}
	in->command_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	for (uint32_t off = 0; off < o->ndev && !atomic_load(&in->stop);) {
		uint32_t k = o->ndev - off;
		if (k > o->copy_batch)
			k = o->copy_batch;
		if (ins_copy_batch(c, in, off, k, buf, bufcap) != 0)
			goto out;
		off += k;
		atomic_store(&in->inserted, off);
		if (off == o->ndev) {
			/* done before the last NOTIFY: a worker woken by it
			 * and finding nothing knows it has finished */
			atomic_store(&in->end_ms, mono_ms());
			atomic_store(&in->done, 1);
		}
		if (pg_exec(c, "NOTIFY queue_ready") != 0) {
			snprintf(in->err, sizeof(in->err), "NOTIFY failed");
			goto out;
		}
	}
	rc = atomic_load(&in->stop) ? -1 : 0;
out:
	if (rc != 0)
		atomic_store(&in->done, -1);
	PQclear(r);
	PQfinish(c);
	free(buf);
	free(payload);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* gateway side */

static int
gw_send(struct bench *b, const struct fbx_eng_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_eng_msg_encode(m, &buf, &len);

	if (rc != FBX_OK) {
		logm("cannot encode engine message %d: %s", m->kind,
		    fbx_strerror(rc));
		return -1;
	}
	if (!b->have_peer) {
		free(buf);
		return -1;
	}
	if (zmq_send(b->sock, b->rid, b->ridlen, ZMQ_SNDMORE) < 0 ||
	    zmq_send(b->sock, buf, len, 0) < 0) {
		/* ROUTER_MANDATORY: the gateway went away. */
		logm("send to gateway: %s", zmq_strerror(errno));
		b->have_peer = 0;
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

static void
send_ack(struct bench *b, uint64_t batch_id, uint32_t count)
{
	struct fbx_eng_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_ACK;
	m.u.ack.batch_id = batch_id;
	m.u.ack.count = count;
	if (gw_send(b, &m) == 0 && batch_id != 0)
		b->acks++;
}

static int
bref_push(struct bref **v, size_t *n, size_t *cap, uint64_t id, uint32_t c)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct bref *nv = realloc(*v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	(*v)[*n].batch_id = id;
	(*v)[*n].count = c;
	(*n)++;
	return 0;
}

static int
wr_add(struct writer *w, int64_t id, int16_t st)
{
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 65536;
		int64_t *ni = realloc(w->ids, ncap * sizeof(*ni));
		int16_t *ns;
		if (ni == NULL)
			return -1;
		w->ids = ni;
		ns = realloc(w->st, ncap * sizeof(*ns));
		if (ns == NULL)
			return -1;
		w->st = ns;
		w->cap = ncap;
	}
	w->ids[w->n] = id;
	w->st[w->n] = st;
	w->n++;
	return 0;
}

static void
on_results(struct bench *b, const struct fbx_gw_msg *m)
{
	struct writer *w = &b->wr;

	for (size_t i = 0; i < m->u.results.n; i++) {
		const struct fbx_result_rec *r = &m->u.results.r[i];
		int16_t st;

		b->results_in++;
		switch (r->status) {
		case FBX_R_SUCCEEDED:
			st = Q_SUCCEEDED;
			break;
		case FBX_R_FAILED:
			st = Q_FAILED;
			break;
		case FBX_R_OFFLINE:
			/* a real MDM requeues on check-in; here it is an
			 * answer that frees the window slot */
			st = Q_OFFLINE;
			break;
		default:
			b->ignored++; /* ACCEPTED: not written */
			continue;
		}
		if (r->delivery_id == 0 || r->delivery_id > INT64_MAX ||
		    wr_add(w, (int64_t)r->delivery_id, st) != 0) {
			b->ignored++;
			continue;
		}
	}
	if (bref_push(&w->next, &w->nnext, &w->capnext, m->u.results.batch_id,
	        (uint32_t)m->u.results.n) != 0)
		logm("out of memory: batch %" PRIu64 " will be resent",
		    m->u.results.batch_id);
}

static void
on_hello(struct bench *b, const void *rid, size_t ridlen,
    const struct fbx_gw_msg *m)
{
	struct fbx_eng_msg w;

	if (ridlen > sizeof(b->rid))
		return;
	if (b->have_peer &&
	    (ridlen != b->ridlen || memcmp(rid, b->rid, ridlen) != 0) &&
	    !b->o.quiet)
		logm("gateway %s replaces the previous session",
		    m->u.hello.gateway_id);
	memcpy(b->rid, rid, ridlen);
	b->ridlen = ridlen;
	b->have_peer = 1;
	b->window = m->u.hello.window;
	if (b->window > (1u << 20))
		b->window = 1u << 20;
	memset(&w, 0, sizeof(w));
	w.kind = FBX_ENG_WELCOME;
	snprintf(w.u.welcome.engine_id, sizeof(w.u.welcome.engine_id),
	    "pgqueue");
	w.u.welcome.heartbeat_ms = PQB_HEARTBEAT_MS;
	w.u.welcome.max_batch = FBX_BATCH_MAX;
	gw_send(b, &w);
	if (!b->o.quiet)
		logm("gateway %s: window %" PRIu32, m->u.hello.gateway_id,
		    b->window);
}

static void
on_gw_message(struct bench *b, const void *rid, size_t ridlen,
    const void *buf, size_t len)
{
	struct fbx_gw_msg m;
	char why[256] = "";
	int rc;

	memset(&m, 0, sizeof(m));
	rc = fbx_gw_msg_decode(buf, len, &m, why, sizeof(why));
	if (rc != FBX_OK) {
		logm("bad gateway message: %s: %s", fbx_errname(rc), why);
		return;
	}
	if (m.kind != FBX_GW_HELLO &&
	    (!b->have_peer || ridlen != b->ridlen ||
	        memcmp(rid, b->rid, ridlen) != 0))
		goto out; /* not our session */
	switch (m.kind) {
	case FBX_GW_HELLO:
		on_hello(b, rid, ridlen, &m);
		break;
	case FBX_GW_CREDIT:
		b->window = m.u.credit.window > (1u << 20) ? (1u << 20)
		                                           : m.u.credit.window;
		break;
	case FBX_GW_RESULTS:
		on_results(b, &m);
		break;
	case FBX_GW_CHECKINS:
		/* not part of this benchmark: nothing to make durable */
		send_ack(b, m.u.checkins.batch_id, (uint32_t)m.u.checkins.n);
		break;
	case FBX_GW_HEARTBEAT:
		send_ack(b, 0, 0);
		break;
	case FBX_GW_BYE:
		b->have_peer = 0;
		break;
	default:
		break;
	}
out:
	fbx_gw_msg_free(&m);
}

/* gw_drain - read what the gateway sent, a bounded number of messages. */
static int
gw_drain(struct bench *b)
{
	for (int k = 0; k < PQB_DRAIN_MAX; k++) {
		zmq_msg_t rid, body;
		int more;

		zmq_msg_init(&rid);
		if (zmq_msg_recv(&rid, b->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&rid);
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			logm("recv: %s", zmq_strerror(errno));
			return -1;
		}
		more = zmq_msg_more(&rid);
		zmq_msg_init(&body);
		if (more && zmq_msg_recv(&body, b->sock, 0) >= 0 &&
		    !zmq_msg_more(&body)) {
			on_gw_message(b, zmq_msg_data(&rid), zmq_msg_size(&rid),
			    zmq_msg_data(&body), zmq_msg_size(&body));
		} else {
			/* envelope we do not speak: skip its frames */
			while (zmq_msg_more(&body)) {
				zmq_msg_close(&body);
				zmq_msg_init(&body);
				if (zmq_msg_recv(&body, b->sock, 0) < 0)
					break;
			}
		}
		zmq_msg_close(&body);
		zmq_msg_close(&rid);
	}
	return 0;
}

/* gw_open - the gateway socket, as the engine's (and bench_floor's):
 * a ROUTER that is a CURVE server with the key pair in keys/server.key
 * (issue 10: fusebox-devsim connects only as a CURVE client). No ZAP
 * handler runs here, as in bench_floor, so any client key is taken. */
static int
gw_open(struct bench *b)
{
	int zero = 0, one = 1;
	int64_t maxmsg = (int64_t)FBX_GATEWAY_MSG_MAX * 2;
	struct fbx_key k;
	char path[4096], why[300] = "";
	int rc;

	snprintf(path, sizeof(path), "%s/server.key", b->o.keys);
	if (fbx_key_read(path, 1, &k, why, sizeof(why)) != FBX_OK) {
		logm("%s: %s", path, why);
		return -1;
	}
	b->ctx = zmq_ctx_new();
	if (b->ctx == NULL)
		return -1;
	b->sock = zmq_socket(b->ctx, ZMQ_ROUTER);
	if (b->sock == NULL)
		return -1;
	/* As the engine does: unbounded send queue (the window bounds it),
	 * MANDATORY so a vanished gateway is an error, not a silent drop. */
	rc = zmq_setsockopt(b->sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(b->sock, ZMQ_SNDHWM, &zero, sizeof(zero)) ||
	    zmq_setsockopt(b->sock, ZMQ_RCVHWM, &zero, sizeof(zero)) ||
	    zmq_setsockopt(b->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(b->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) ||
	    zmq_setsockopt(b->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(b->sock, ZMQ_CURVE_SECRETKEY, k.secret_z85,
	        strlen(k.secret_z85));
	memset(&k, 0, sizeof(k));
	if (rc != 0) {
		logm("gateway socket options: %s", zmq_strerror(errno));
		return -1;
	}
	if (zmq_bind(b->sock, b->o.gw_ep) != 0) {
		logm("cannot bind %s: %s", b->o.gw_ep, zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* claiming and handing out */

/* cmd_get - type and payload of a command, from a small cache; on a miss
 * it is read with the (idle) connection c. */
static const struct cmdc *
cmd_get(struct bench *b, PGconn *c, int64_t id)
{
	char nbuf[24];
	const char *pv[1] = { nbuf };
	struct cmdc *e;
	PGresult *r;
	uint32_t t;

	for (size_t i = 0; i < b->ncache; i++)
		if (b->cache[i].id == id)
			return &b->cache[i];
	snprintf(nbuf, sizeof(nbuf), "%" PRId64, id);
	r = PQexecPrepared(c, "command", 1, pv, NULL, NULL, 1);
	if (!pg_ok(r, "read command") || PQntuples(r) != 1 ||
	    PQgetlength(r, 0, 0) != 4) {
		PQclear(r);
		return NULL;
	}
	if (b->ncache == PQB_CMD_CACHE) {
		free(b->cache[0].payload);
		memmove(&b->cache[0], &b->cache[1],
		    (PQB_CMD_CACHE - 1) * sizeof(b->cache[0]));
		b->ncache--;
	}
	e = &b->cache[b->ncache];
	memcpy(&t, PQgetvalue(r, 0, 0), 4);
	e->id = id;
	e->type = (int)ntohl(t);
	e->len = (size_t)PQgetlength(r, 0, 1);
	e->payload = malloc(e->len + 1);
	if (e->payload == NULL) {
		PQclear(r);
		return NULL;
	}
	memcpy(e->payload, PQgetvalue(r, 0, 1), e->len);
	b->ncache++;
	PQclear(r);
	return e;
}

/* notified - whether a queue_ready notification has arrived on c (all
 * that are queued are consumed). Workers LISTEN, the inserter NOTIFYs
 * after each committed batch: how queue workers avoid polling an empty
 * table (each empty claim still walks the uncommitted index entries). */
static int
notified(PGconn *c)
{
	PGnotify *n;
	int any = 0;

	while ((n = PQnotifies(c)) != NULL) {
		any = 1;
		PQfreemem(n);
	}
	return any;
}

static int
claim_send(struct bench *b, struct worker *w, uint32_t limit)
{
	char nbuf[16];
	const char *pv[1] = { nbuf };

	snprintf(nbuf, sizeof(nbuf), "%" PRIu32, limit);
	w->saw_done = atomic_load(&b->ins.done) == 1;
	if (!PQsendQueryPrepared(w->c, "claim", 1, pv, NULL, NULL, 0)) {
		logm("claim: %s", PQerrorMessage(w->c));
		return -1;
	}
	w->busy = 1;
	w->sent_ms = mono_ms();
	w->asked = limit;
	b->reserved += limit;
	b->claims++;
	return 0;
}

/* claim_done - a claim came back: hand its rows to the gateway. */
static int
claim_done(struct bench *b, struct worker *w, PGresult *r)
{
	struct fbx_dlv_out *d = NULL;
	struct fbx_eng_msg m;
	int n, rc = -1;

	b->reserved -= w->asked;
	b->claim_busy_ms += mono_ms() - w->sent_ms;
	if (!pg_ok(r, "claim"))
		goto out;
	n = PQntuples(r);
	if (n == 0) {
		b->empty_claims++;
		if (w->saw_done) {
			w->finished = 1;
		} else if (!notified(w->c)) {
			w->waiting = 1;
			w->not_before_ms = mono_ms() + b->o.retry_ms;
		}
		rc = 0;
		goto out;
	}
	d = calloc((size_t)n, sizeof(*d));
	if (d == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		int64_t cid = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		const struct cmdc *c = cmd_get(b, w->c, cid);
		if (c == NULL)
			goto out;
		d[i].delivery_id = strtoull(PQgetvalue(r, i, 4), NULL, 10);
		d[i].command_id = (uint64_t)cid;
		d[i].org = PQgetvalue(r, i, 2);
		d[i].device = PQgetvalue(r, i, 3);
		d[i].type = (uint8_t)c->type;
		d[i].payload = c->payload;
		d[i].payload_len = c->len;
		d[i].expires_ms = 0;
		d[i].attempt = 1;
	}
	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_DELIVERIES;
	m.u.deliveries.d = d;
	m.u.deliveries.n = (size_t)n;
	/* The rows are committed as sent; if the send fails they stay in
	 * state 1, which is this design's known weak spot (no lease). */
	if (gw_send(b, &m) != 0)
		goto out;
	if (b->first_dlv_ms == 0)
		b->first_dlv_ms = mono_ms();
	b->claimed += (uint64_t)n;
	b->dlv_msgs++;
	rc = 0;
out:
	free(d);
	return rc;
}

/* ------------------------------------------------------------------ */
/* result writer */

static size_t
arr_build(uint8_t *p, uint32_t oid, const void *vals, size_t n, int width)
{
	uint8_t *q = p;

	put_be32(q, 1);
	put_be32(q + 4, 0);
	put_be32(q + 8, oid);
	put_be32(q + 12, (uint32_t)n);
	put_be32(q + 16, 1);
	q += 20;
	for (size_t i = 0; i < n; i++) {
		put_be32(q, (uint32_t)width);
		q += 4;
		if (width == 8) {
			uint64_t v = (uint64_t)((const int64_t *)vals)[i];
			put_be32(q, (uint32_t)(v >> 32));
			put_be32(q + 4, (uint32_t)v);
		} else {
			uint16_t v = htons((uint16_t)((const int16_t *)vals)[i]);
			memcpy(q, &v, 2);
		}
		q += width;
	}
	return (size_t)(q - p);
}

/* wr_flush - start one UPDATE for up to flush_max waiting records. */
static int
wr_flush(struct bench *b)
{
	struct writer *w = &b->wr;
	size_t k = w->n, need, l1, l2;
	const char *pv[2];
	int pl[2], pf[2] = { 1, 1 };

	if (w->busy || (w->n == 0 && w->nnext == 0))
		return 0;
	if (w->n == 0) {
		/* only batches whose records changed nothing (ACCEPTED);
		 * everything before them is committed: ACK now */
		for (size_t i = 0; i < w->nnext; i++)
			send_ack(b, w->next[i].batch_id, w->next[i].count);
		w->nnext = 0;
		return 0;
	}
	/* Every waiting record goes: a batch is ACKed only when all its
	 * records are committed, and the waiting records are bounded by
	 * the gateway's window (each delivery answered at most twice). */
	need = 40 + k * 12 + k * 6;
	if (need > w->bufcap) {
		uint8_t *nb = realloc(w->buf, need);
		if (nb == NULL)
			return -1;
		w->buf = nb;
		w->bufcap = need;
	}
	l1 = arr_build(w->buf, OID_INT8, w->ids, k, 8);
	l2 = arr_build(w->buf + l1, OID_INT2, w->st, k, 2);
	pv[0] = (const char *)w->buf;
	pv[1] = (const char *)w->buf + l1;
	pl[0] = (int)l1;
	pl[1] = (int)l2;
	if (!PQsendQueryPrepared(w->c, "results", 2, pv, pl, pf, 0)) {
		logm("results: %s", PQerrorMessage(w->c));
		return -1;
	}
	w->busy = 1;
	w->sent_ms = mono_ms();
	w->sent_recs = k;
	w->n = 0;
	/* swap next <-> infl */
	{
		struct bref *t = w->infl;
		size_t tc = w->capinfl;
		w->infl = w->next;
		w->capinfl = w->capnext;
		w->ninfl = w->nnext;
		w->next = t;
		w->capnext = tc;
		w->nnext = 0;
	}
	return 0;
}

static int
wr_done(struct bench *b, PGresult *r)
{
	struct writer *w = &b->wr;

	w->busy = 0;
	if (!pg_ok(r, "results"))
		return -1;
	/* Committed (autocommit, synchronous_commit=on): now durable. */
	b->finalized += strtoull(PQcmdTuples(r), NULL, 10);
	b->commits++;
	b->last_commit_ms = mono_ms();
	b->write_busy_ms += b->last_commit_ms - w->sent_ms;
	for (size_t i = 0; i < w->ninfl; i++)
		send_ack(b, w->infl[i].batch_id, w->infl[i].count);
	w->ninfl = 0;
	w->sent_recs = 0;
	return 0;
}

/* pg_pump - read what arrived on an async connection. @return 1 when the
 * query is complete (*res holds its first result, owned by the caller),
 * 0 when still busy, -1 on a broken connection. */
static int
pg_pump(PGconn *c, PGresult **res)
{
	if (!PQconsumeInput(c)) {
		logm("connection: %s", PQerrorMessage(c));
		return -1;
	}
	while (!PQisBusy(c)) {
		PGresult *r = PQgetResult(c);
		if (r == NULL)
			return 1;
		if (*res == NULL)
			*res = r;
		else
			PQclear(r);
	}
	return 0;
}

/* ------------------------------------------------------------------ */

static int
setup(struct bench *b)
{
	b->setup = pg_open(b->o.conninfo);
	if (b->setup == NULL)
		return -1;
	for (size_t i = 0; sql_schema[i] != NULL; i++)
		if (pg_exec(b->setup, sql_schema[i]) != 0)
			return -1;
	show(b->setup, "server_version", b->server_version,
	    sizeof(b->server_version));
	show(b->setup, "fsync", b->fsync, sizeof(b->fsync));
	show(b->setup, "synchronous_commit", b->sync_commit,
	    sizeof(b->sync_commit));
	for (uint32_t i = 0; i < b->o.workers; i++) {
		struct worker *w = &b->w[i];
		w->c = pg_open(b->o.conninfo);
		/* A fresh table has no statistics, and custom plans for it
		 * read every queued row through a bitmap scan and sort them
		 * for each claim (27 ms instead of 6 ms per 1000 rows here).
		 * A long-lived MDM queue has statistics that make the planner
		 * walk (state, id) in order; the generic plan does the same,
		 * so use it rather than charge the baseline for a cold
		 * table. */
		if (w->c == NULL ||
		    pg_exec(w->c, "SET plan_cache_mode = force_generic_plan") !=
		        0 ||
		    pg_exec(w->c, "LISTEN queue_ready") != 0 ||
		    pg_prepare(w->c, "claim", sql_claim) != 0 ||
		    pg_prepare(w->c, "command", sql_command) != 0)
			return -1;
	}
	b->wr.c = pg_open(b->o.conninfo);
	if (b->wr.c == NULL ||
	    pg_prepare(b->wr.c, "results", sql_results) != 0)
		return -1;
	return 0;
}

static int
wait_gateway(struct bench *b)
{
	int64_t until = mono_ms() + PQB_HELLO_WAIT_MS;

	while (!b->have_peer && !stop_flag && mono_ms() < until) {
		zmq_pollitem_t it = { b->sock, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&it, 1, 100) < 0 && errno != EINTR)
			return -1;
		if (gw_drain(b) != 0)
			return -1;
	}
	if (!b->have_peer) {
		logm("no gateway said HELLO on %s", b->o.gw_ep);
		return -1;
	}
	return 0;
}

static int
run(struct bench *b)
{
	int64_t deadline;
	zmq_pollitem_t it[PQB_WORKERS_MAX + 2];
	int idx[PQB_WORKERS_MAX + 2];

	b->t0_ms = mono_ms();
	deadline = b->t0_ms + (int64_t)b->o.timeout_s * 1000;
	b->ins.o = &b->o;
	b->ins.org_count = b->org_count;
	if (pthread_create(&b->ins.th, NULL, ins_main, &b->ins) != 0) {
		logm("cannot start the insert thread");
		return -1;
	}
	b->ins_started = 1;
	while (b->finalized < b->o.ndev) {
		int64_t now = mono_ms();
		long wait = 50;
		int ni = 0, all_finished = 1;

		if (stop_flag || now > deadline) {
			logm("%s after %" PRIu64 " of %" PRIu32
			     " deliveries final",
			    stop_flag ? "interrupted" : "timed out",
			    b->finalized, b->o.ndev);
			return -1;
		}
		if (atomic_load(&b->ins.done) < 0) {
			logm("insert failed: %s", b->ins.err);
			return -1;
		}
		/* start claims within the gateway's window */
		for (uint32_t i = 0; i < b->o.workers; i++) {
			struct worker *w = &b->w[i];
			uint64_t out = b->claimed - b->finalized + b->reserved;
			uint32_t want = b->o.claim_batch;
			if (!w->finished)
				all_finished = 0;
			if (w->busy || w->finished || !b->have_peer)
				continue;
			if (w->waiting && w->not_before_ms > now) {
				if (w->not_before_ms - now < wait)
					wait = (long)(w->not_before_ms - now);
				continue;
			}
			w->waiting = 0;
			if (want > b->window)
				want = b->window;
			if (out + want > b->window)
				continue; /* a result will free room */
			if (claim_send(b, w, want) != 0)
				return -1;
		}
		if (wr_flush(b) != 0)
			return -1;
		if (all_finished && !b->wr.busy && b->wr.n == 0 &&
		    b->finalized < b->o.ndev && b->claimed == b->finalized) {
			logm("every row claimed and answered, yet %" PRIu64
			     " of %" PRIu32 " final",
			    b->finalized, b->o.ndev);
			return -1;
		}
		it[ni] = (zmq_pollitem_t){ b->sock, 0, ZMQ_POLLIN, 0 };
		idx[ni++] = -2;
		if (b->wr.busy) {
			it[ni] = (zmq_pollitem_t){ NULL, PQsocket(b->wr.c),
				ZMQ_POLLIN, 0 };
			idx[ni++] = -1;
		}
		for (uint32_t i = 0; i < b->o.workers; i++) {
			if (!b->w[i].busy && !b->w[i].waiting)
				continue;
			it[ni] = (zmq_pollitem_t){ NULL, PQsocket(b->w[i].c),
				ZMQ_POLLIN, 0 };
			idx[ni++] = (int)i;
		}
		if (zmq_poll(it, ni, wait) < 0) {
			if (errno == EINTR)
				continue;
			logm("poll: %s", zmq_strerror(errno));
			return -1;
		}
		for (int k = 0; k < ni; k++) {
			int rc;
			if (!(it[k].revents & ZMQ_POLLIN))
				continue;
			if (idx[k] == -2) {
				if (gw_drain(b) != 0)
					return -1;
			} else if (idx[k] == -1) {
				rc = pg_pump(b->wr.c, &b->wr.res);
				if (rc < 0)
					return -1;
				if (rc == 1) {
					rc = wr_done(b, b->wr.res);
					PQclear(b->wr.res);
					b->wr.res = NULL;
					if (rc != 0)
						return -1;
				}
			} else {
				struct worker *w = &b->w[idx[k]];
				if (!w->busy) {
					/* idle and waiting: a notification */
					if (!PQconsumeInput(w->c)) {
						logm("connection: %s",
						    PQerrorMessage(w->c));
						return -1;
					}
					if (notified(w->c))
						w->waiting = 0;
					continue;
				}
				rc = pg_pump(w->c, &w->res);
				if (rc < 0)
					return -1;
				if (rc == 1) {
					w->busy = 0;
					rc = claim_done(b, w, w->res);
					PQclear(w->res);
					w->res = NULL;
					if (rc != 0)
						return -1;
				}
			}
		}
	}
	return 0;
}

static int
verify(struct bench *b)
{
	PGresult *r = PQexec(b->setup,
	    "SELECT state, count(*) FROM queue GROUP BY state ORDER BY 1");
	uint64_t total = 0;
	int ok = 1;

	if (!pg_ok(r, "verify")) {
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		long st = strtol(PQgetvalue(r, i, 0), NULL, 10);
		uint64_t n = strtoull(PQgetvalue(r, i, 1), NULL, 10);
		total += n;
		if (st >= 0 && st < 5)
			b->st_count[st] = n;
		if (st < Q_SUCCEEDED)
			ok = 0;
	}
	PQclear(r);
	if (!ok || total != b->o.ndev) {
		logm("verify: %" PRIu64 " rows, %" PRIu64 " queued, %" PRIu64
		     " sent and unanswered",
		    total, b->st_count[0], b->st_count[1]);
		return -1;
	}
	return 0;
}

static void
report(struct bench *b)
{
	double wall = (double)(b->last_commit_ms - b->t0_ms);
	double ins = (double)(atomic_load(&b->ins.end_ms) - b->t0_ms);

	if (wall <= 0)
		wall = 1;
	printf("{\"bench\":\"pgqueue\",\"devices\":%" PRIu32
	       ",\"deliveries_per_s\":%.0f,\"wall_ms\":%.0f"
	       ",\"insert_ms\":%.0f,\"first_delivery_ms\":%" PRId64
	       ",\"orgs\":%" PRIu32 ",\"workers\":%" PRIu32
	       ",\"claim_batch\":%" PRIu32 ",\"copy_batch\":%" PRIu32
	       ",\"window\":%" PRIu32 ",\"claims\":%" PRIu64
	       ",\"empty_claims\":%" PRIu64 ",\"result_commits\":%" PRIu64
	       ",\"claim_query_ms\":%" PRId64 ",\"result_query_ms\":%" PRId64
	       ",\"results_in\":%" PRIu64 ",\"succeeded\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"offline\":%" PRIu64
	       ",\"postgres\":\"%s\",\"fsync\":\"%s\""
	       ",\"synchronous_commit\":\"%s\"}\n",
	    b->o.ndev, b->o.ndev / (wall / 1000.0), wall, ins,
	    b->first_dlv_ms ? b->first_dlv_ms - b->t0_ms : -1, b->o.norgs,
	    b->o.workers, b->o.claim_batch, b->o.copy_batch, b->window,
	    b->claims, b->empty_claims, b->commits, b->claim_busy_ms,
	    b->write_busy_ms, b->results_in,
	    b->st_count[Q_SUCCEEDED], b->st_count[Q_FAILED],
	    b->st_count[Q_OFFLINE], b->server_version, b->fsync,
	    b->sync_commit);
	fflush(stdout);
}

/* ------------------------------------------------------------------ */

static const char *const usage =
    "usage: bench_pgqueue --gateway-endpoint EP --keys DIR [OPTIONS]\n"
    "\n"
    "Fan one command out to N devices through a PostgreSQL job queue and\n"
    "a gateway (fusebox-devsim --no-enroll with the same --devices and\n"
    "--orgs) that connects to EP; print one JSON line.\n"
    "\n"
    "  --conninfo S          libpq connection string (default: PG* env)\n"
    "  --gateway-endpoint EP bind here (ROUTER), e.g. ipc:///tmp/x.sock\n"
    "  --keys DIR            the CURVE server key pair is DIR/server.key\n"
    "                        (`fuseboxd init --data D`: D/keys); the\n"
    "                        gateway connects with DIR/server.pub and any\n"
    "                        key of its own (no ZAP check)\n"
    "  --devices N           fleet size (default 100000)\n"
    "  --orgs M              organisations, as devsim (default 40)\n"
    "  --workers K           claiming connections (default 2)\n"
    "  --claim-batch B       rows per claim (default 1000)\n"
    "  --copy-batch C        rows per COPY transaction (default 10000)\n"
    "  --payload-bytes P     command payload size (default 64)\n"
    "  --type T              command type number (default 11, query)\n"
    "  --timeout-s S         give up after S s (default 600)\n"
    "  --empty-retry-ms T    queue empty: claim again after T ms even\n"
    "                        without a NOTIFY (default 100)\n"
    "  --quiet\n";

static int
parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
parse_args(struct opts *o, int argc, char **argv)
{
	enum { O_CONN = 1000, O_GW, O_KEYS, O_DEV, O_ORGS, O_WORKERS, O_CLAIM,
		O_COPY, O_PAYLOAD, O_TYPE, O_TIMEOUT, O_RETRY, O_QUIET, O_HELP };
	static const struct option lo[] = {
		{ "conninfo", required_argument, NULL, O_CONN },
		{ "gateway-endpoint", required_argument, NULL, O_GW },
		{ "keys", required_argument, NULL, O_KEYS },
		{ "devices", required_argument, NULL, O_DEV },
		{ "orgs", required_argument, NULL, O_ORGS },
		{ "workers", required_argument, NULL, O_WORKERS },
		{ "claim-batch", required_argument, NULL, O_CLAIM },
		{ "copy-batch", required_argument, NULL, O_COPY },
		{ "payload-bytes", required_argument, NULL, O_PAYLOAD },
		{ "type", required_argument, NULL, O_TYPE },
		{ "timeout-s", required_argument, NULL, O_TIMEOUT },
		{ "empty-retry-ms", required_argument, NULL, O_RETRY },
		{ "quiet", no_argument, NULL, O_QUIET },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	uint32_t t;
	int c, bad = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_CONN:
			o->conninfo = optarg;
			break;
		case O_GW:
			o->gw_ep = optarg;
			break;
		case O_KEYS:
			o->keys = optarg;
			break;
		case O_DEV:
			bad |= parse_u32(optarg, 1, 1u << 24, &o->ndev);
			break;
		case O_ORGS:
			bad |= parse_u32(optarg, 1, 9999, &o->norgs);
			break;
		case O_WORKERS:
			bad |= parse_u32(optarg, 1, PQB_WORKERS_MAX,
			    &o->workers);
			break;
		case O_CLAIM:
			bad |= parse_u32(optarg, 1, PQB_CLAIM_MAX,
			    &o->claim_batch);
			break;
		case O_COPY:
			bad |= parse_u32(optarg, 1, 1000000, &o->copy_batch);
			break;
		case O_PAYLOAD:
			bad |= parse_u32(optarg, 0, FBX_PAYLOAD_MAX,
			    &o->payload_bytes);
			break;
		case O_TYPE:
			bad |= parse_u32(optarg, 1, FBX_CMD_TYPE_COUNT - 1, &t);
			o->type = (int)t;
			break;
		case O_TIMEOUT:
			bad |= parse_u32(optarg, 1, 86400, &o->timeout_s);
			break;
		case O_RETRY:
			bad |= parse_u32(optarg, 1, 60000, &o->retry_ms);
			break;
		case O_QUIET:
			o->quiet = 1;
			break;
		case 'h':
		case O_HELP:
			fputs(usage, stdout);
			return 1;
		default:
			bad = 1;
		}
		if (bad) {
			fprintf(stderr, "bench_pgqueue: bad option '%s'\n%s",
			    argv[optind - 1], usage);
			return -1;
		}
	}
	if (optind < argc || o->gw_ep == NULL || o->keys == NULL ||
	    o->norgs > o->ndev) {
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct bench bench;
	struct bench *b = &bench;
	struct sigaction sa;
	int rc, st = EX_SOFTWARE;

	b->o.conninfo = "";
	b->o.ndev = 100000;
	b->o.norgs = 40;
	b->o.workers = 2;
	b->o.claim_batch = 1000;
	b->o.copy_batch = 10000;
	b->o.payload_bytes = 64;
	b->o.type = FBX_CMD_QUERY;
	b->o.timeout_s = 600;
	b->o.retry_ms = 100;
	rc = parse_args(&b->o, argc, argv);
	if (rc != 0)
		return rc > 0 ? EX_OK : EX_USAGE;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (fleet_init(b) != 0) {
		st = EX_OSERR;
		goto out;
	}
	if (setup(b) != 0) {
		st = EX_UNAVAILABLE;
		goto out;
	}
	if (gw_open(b) != 0 || wait_gateway(b) != 0) {
		st = EX_UNAVAILABLE;
		goto out;
	}
	if (run(b) != 0)
		goto out;
	if (verify(b) != 0)
		goto out;
	if (!b->o.quiet)
		logm("%" PRIu32 " deliveries durable in %" PRId64 " ms "
		     "(insert %" PRId64 " ms, %" PRIu64 " claims, %" PRIu64
		     " result commits)",
		    b->o.ndev, b->last_commit_ms - b->t0_ms,
		    (int64_t)atomic_load(&b->ins.end_ms) - b->t0_ms, b->claims,
		    b->commits);
	report(b);
	st = EX_OK;
out:
	if (b->ins_started) {
		if (st != EX_OK)
			atomic_store(&b->ins.stop, 1);
		pthread_join(b->ins.th, NULL);
	}
	for (uint32_t i = 0; i < PQB_WORKERS_MAX; i++) {
		PQclear(b->w[i].res);
		PQfinish(b->w[i].c);
	}
	PQclear(b->wr.res);
	PQfinish(b->wr.c);
	PQfinish(b->setup);
	if (b->sock != NULL)
		zmq_close(b->sock);
	if (b->ctx != NULL)
		zmq_ctx_term(b->ctx);
	for (size_t i = 0; i < b->ncache; i++)
		free(b->cache[i].payload);
	free(b->wr.ids);
	free(b->wr.st);
	free(b->wr.next);
	free(b->wr.infl);
	free(b->wr.buf);
	free(b->org_start);
	free(b->org_count);
	return st;
}
