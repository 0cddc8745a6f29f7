/*
 * floor.c: bench_floor, the raw floor under bench_fanout: the least a
 * program must do for the same job with the same libraries. It journals
 * one command and N delivery records of fusebox's size and encoding in
 * LMDB (batches of up to 65,536 per write transaction, commit = fsync, as
 * the engine's default durability), sends them as the same protobuf
 * Deliveries messages (fbx_eng_msg_encode, 8,192 per message) from a
 * ZeroMQ ROUTER to the same fusebox-devsim within its window, and writes
 * each result back into its record in the next batch before the ACK. No
 * safety controls, no queues, no indexes: the ratio of bench_fanout to
 * this is what the engine's own work costs. It includes <lmdb.h>
 * directly, the one documented exception to "only storage/ includes
 * <lmdb.h>": it IS the raw floor.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>
#include <zmq.h>

#include "bench.h"
#include "fbx_keys.h"

#define ORG "org-001"
#define TURN_MAX 65536      /* records created per transaction (engine) */
#define SEND_BATCH 8192     /* deliveries per message (engine) */
#define IN_MSGS_MAX 512     /* messages read per turn (engine) */
#define IN_BYTES_MAX (8u * 1024 * 1024)
#define DLV_PAD 8           /* spare bytes per record (store.c) */
#define REC_MAX 256
#define HIST_MAX 4
#define MAP_SIZE ((size_t)8 << 30)
#define COALESCE_ROOM 16384 /* window room worth a turn of its own */

enum { FS_NONE = 0, FS_SENT = 1, FS_DONE = 2 };

struct opts {
	uint32_t devices;
	uint32_t runs;
	uint32_t window;
	uint32_t coalesce_ms; /* longest wait of an input for its turn */
	uint32_t fail_ppm;    /* devices that fail (devsim --fail-ratio) */
	uint32_t offline_ppm; /* devices offline (devsim --offline-ratio) */
};

/* A delivery record in store.c's v1 encoding. */
struct frec {
	uint8_t state, nhist;
	uint16_t code;
	uint32_t attempts;
	char device[FBX_ID_MAX + 1];
	struct {
		uint8_t state;
		uint16_t code;
		int64_t at_ms;
	} h[HIST_MAX];
	int64_t updated_ms;
};

struct ack {
	uint64_t batch_id;
	uint32_t count;
};

struct floor {
	struct opts o;
	MDB_env *env;
	MDB_dbi dlv, cmd;
	void *ctx, *sock;
	uint8_t rid[256];
	size_t rid_len;
	int have_peer, welcome_due;
	uint32_t created, unanswered, done;
	uint8_t *state;  /* FS_* per delivery index */
	double *lat;     /* ms from start to the result's commit */
	uint32_t *fin;   /* indexes finished in this turn */
	size_t nfin;
	struct ack *acks;
	size_t nacks, capacks;
	zmq_msg_t in[IN_MSGS_MAX];
	size_t nin, in_bytes; /* read, not yet applied */
	int64_t in_first_us;  /* when the oldest of them was read */
	uint64_t cmd_id; /* the run's command: run 1, 2, ... */
	int64_t t0;
	uint64_t commits, ignored;
	struct fbx_dlv_out *ob;
	fbx_id *obdev;
};

struct run {
	double wall_ms, rate, p50, p99, max, bytes_per_dlv, commits;
	double cpu_us; /* this process's CPU (all threads) per delivery */
};

/* ---------------------------------------------------------- records */

static uint8_t *
put_uv(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)((v & 0x7f) | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static const uint8_t *
get_uv(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && p < end; shift += 7) {
		uint8_t b = *p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = x;
			return p;
		}
	}
	return NULL;
}

static uint64_t
zz(int64_t d)
{
	return ((uint64_t)d << 1) ^ (0 - ((uint64_t)d >> 63));
}

static int64_t
unzz(uint64_t z)
{
	return (int64_t)((z >> 1) ^ (0 - (z & 1)));
}

/* rec_encode - store.c's dlv_encode: zero-padded to min_len. */
static size_t
rec_encode(const struct frec *r, size_t min_len, uint8_t *buf)
{
	uint8_t *p = buf;
	size_t dl = strlen(r->device), n;
	int64_t prev = 0;

	*p++ = 1; /* version */
	*p++ = r->state;
	*p++ = r->nhist;
	p = put_uv(p, r->code);
	p = put_uv(p, r->attempts);
	*p++ = (uint8_t)dl;
	memcpy(p, r->device, dl);
	p += dl;
	for (unsigned i = 0; i < r->nhist; i++) {
		*p++ = (uint8_t)(r->h[i].state | (r->h[i].code ? 0x80 : 0));
		if (r->h[i].code)
			p = put_uv(p, r->h[i].code);
		p = put_uv(p, zz(r->h[i].at_ms - prev));
		prev = r->h[i].at_ms;
	}
	p = put_uv(p, zz(r->updated_ms - prev));
	n = (size_t)(p - buf);
	if (n < min_len) {
		memset(p, 0, min_len - n);
		n = min_len;
	}
	return n;
}

/* rec_decode - the inverse; padding is ignored. @return 0 or -1. */
static int
rec_decode(const uint8_t *p, size_t len, struct frec *r)
{
	const uint8_t *end = p + len;
	uint64_t v;
	int64_t prev = 0;
	size_t dl;

	if (len < 6 || p[0] != 1)
		return -1;
	r->state = p[1];
	r->nhist = p[2];
	p += 3;
	if (r->nhist > HIST_MAX || (p = get_uv(p, end, &v)) == NULL)
		return -1;
	r->code = (uint16_t)v;
	if ((p = get_uv(p, end, &v)) == NULL || p >= end)
		return -1;
	r->attempts = (uint32_t)v;
	dl = *p++;
	if (dl > FBX_ID_MAX || (size_t)(end - p) < dl)
		return -1;
	memcpy(r->device, p, dl);
	r->device[dl] = '\0';
	p += dl;
	for (unsigned i = 0; i < r->nhist; i++) {
		if (p >= end)
			return -1;
		r->h[i].state = *p & 0x7f;
		r->h[i].code = 0;
		if (*p++ & 0x80) {
			if ((p = get_uv(p, end, &v)) == NULL)
				return -1;
			r->h[i].code = (uint16_t)v;
		}
		if ((p = get_uv(p, end, &v)) == NULL)
			return -1;
		r->h[i].at_ms = prev + unzz(v);
		prev = r->h[i].at_ms;
	}
	if ((p = get_uv(p, end, &v)) == NULL)
		return -1;
	r->updated_ms = prev + unzz(v);
	return 0;
}

static void
put_be64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
}

static void
dev_name(uint32_t idx, char *buf, size_t len)
{
	/* fusebox-devsim's naming: org index 1, device index in the org */
	snprintf(buf, len, "org-001-d%06" PRIu32, idx);
}

/* ---------------------------------------------------------- sending */

static int
send_eng(struct floor *f, const struct fbx_eng_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_eng_msg_encode(m, &buf, &len);

	if (rc != FBX_OK) {
		fprintf(stderr, "floor: encode: %s\n", fbx_strerror(rc));
		return rc;
	}
	if (zmq_send(f->sock, f->rid, f->rid_len, ZMQ_SNDMORE) < 0 ||
	    zmq_send(f->sock, buf, len, 0) < 0) {
		fprintf(stderr, "floor: send: %s\n", zmq_strerror(errno));
		rc = FBX_EIO;
	}
	free(buf);
	return rc;
}

static int
send_welcome(struct floor *f)
{
	struct fbx_eng_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_WELCOME;
	snprintf(m.u.welcome.engine_id, sizeof(m.u.welcome.engine_id),
	    "floor");
	m.u.welcome.heartbeat_ms = 1000;
	m.u.welcome.max_batch = FBX_BATCH_MAX;
	return send_eng(f, &m);
}

/* send_new - the deliveries [from, to) just made durable, in messages of
 * SEND_BATCH. */
static int
send_new(struct floor *f, uint32_t from, uint32_t to)
{
	int64_t expires = f->t0 + 3600 * 1000;

	while (from < to) {
		struct fbx_eng_msg m;
		uint32_t k = to - from;
		int rc;
		if (k > SEND_BATCH)
			k = SEND_BATCH;
		for (uint32_t i = 0; i < k; i++) {
			struct fbx_dlv_out *o = &f->ob[i];
			dev_name(from + i, f->obdev[i], sizeof(f->obdev[i]));
			memset(o, 0, sizeof(*o));
			o->delivery_id = FBX_DLV_ID(f->cmd_id, from + i);
			o->command_id = f->cmd_id;
			o->org = ORG;
			o->device = f->obdev[i];
			o->type = FBX_CMD_QUERY;
			o->expires_ms = expires;
			o->attempt = 1;
		}
		memset(&m, 0, sizeof(m));
		m.kind = FBX_ENG_DELIVERIES;
		m.u.deliveries.d = f->ob;
		m.u.deliveries.n = k;
		rc = send_eng(f, &m);
		if (rc != FBX_OK)
			return rc;
		from += k;
	}
	return FBX_OK;
}

/* ---------------------------------------------------------- one turn */

static int
ack_push(struct floor *f, uint64_t batch_id, uint32_t count)
{
	if (f->nacks == f->capacks) {
		size_t ncap = f->capacks ? f->capacks * 2 : 64;
		struct ack *v = realloc(f->acks, ncap * sizeof(*v));
		if (v == NULL)
			return FBX_ENOMEM;
		f->acks = v;
		f->capacks = ncap;
	}
	f->acks[f->nacks].batch_id = batch_id;
	f->acks[f->nacks].count = count;
	f->nacks++;
	return FBX_OK;
}

/* result_dstate - the record state a device's answer leads to, or 0 when
 * it is not an outcome (ACCEPTED): SUCCEEDED, FAILED, or PENDING for an
 * offline device, which leaves the window as in the engine (its delivery
 * waits for a check-in; bench_fanout --offline-ppm counts a run over when
 * every delivery is final or PENDING, and so does the floor). */
static int
result_dstate(int status)
{
	switch (status) {
	case FBX_R_SUCCEEDED:
		return FBX_D_SUCCEEDED;
	case FBX_R_FAILED:
		return FBX_D_FAILED;
	case FBX_R_OFFLINE:
		return FBX_D_PENDING;
	default:
		return 0;
	}
}

/* apply_results - write each result into its record, in place. */
static int
apply_results(struct floor *f, MDB_cursor *cur, const struct fbx_gw_msg *m,
    int64_t now)
{
	for (size_t i = 0; i < m->u.results.n; i++) {
		const struct fbx_result_rec *r = &m->u.results.r[i];
		uint64_t id = r->delivery_id;
		uint32_t idx = FBX_DLV_IDX(id);
		uint8_t kb[8], rec[REC_MAX];
		struct frec fr;
		MDB_val k, v;
		size_t len;
		int mrc;

		if (FBX_DLV_CMD(id) != f->cmd_id || idx >= f->o.devices ||
		    f->state[idx] != FS_SENT || result_dstate(r->status) == 0) {
			f->ignored++; /* a resend, or not final */
			continue;
		}
		put_be64(kb, id);
		k.mv_size = 8;
		k.mv_data = kb;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_SET);
		if (mrc != 0 || rec_decode(v.mv_data, v.mv_size, &fr) != 0 ||
		    fr.nhist >= HIST_MAX) {
			fprintf(stderr, "floor: record %" PRIu64 ": %s\n", id,
			    mrc ? mdb_strerror(mrc) : "undecodable");
			return FBX_ESTORAGE;
		}
		fr.state = (uint8_t)result_dstate(r->status);
		fr.code = r->code;
		fr.h[fr.nhist].state = fr.state;
		fr.h[fr.nhist].code = r->code;
		fr.h[fr.nhist].at_ms = now;
		fr.nhist++;
		fr.updated_ms = now;
		len = rec_encode(&fr, v.mv_size, rec);
		v.mv_size = len;
		v.mv_data = rec;
		mrc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
		if (mrc != 0) {
			fprintf(stderr, "floor: put: %s\n", mdb_strerror(mrc));
			return FBX_ESTORAGE;
		}
		f->state[idx] = FS_DONE;
		f->fin[f->nfin++] = idx;
		f->unanswered--;
	}
	return ack_push(f, m->u.results.batch_id, (uint32_t)m->u.results.n);
}

/* create - journal up to `k` new deliveries as SENT. */
static int
create(struct floor *f, MDB_cursor *cur, uint32_t k, int64_t now)
{
	for (uint32_t i = 0; i < k; i++) {
		uint32_t idx = f->created + i;
		uint8_t kb[8], rec[REC_MAX];
		struct frec fr;
		MDB_val key, v;
		size_t len;
		int mrc;

		memset(&fr, 0, sizeof(fr));
		fr.state = FBX_D_SENT;
		fr.attempts = 1;
		dev_name(idx, fr.device, sizeof(fr.device));
		fr.nhist = 1;
		fr.h[0].state = FBX_D_SENT;
		fr.h[0].at_ms = now;
		fr.updated_ms = now;
		len = rec_encode(&fr, 0, rec);
		memset(rec + len, 0, DLV_PAD);
		len += DLV_PAD;
		put_be64(kb, FBX_DLV_ID(f->cmd_id, idx));
		key.mv_size = 8;
		key.mv_data = kb;
		v.mv_size = len;
		v.mv_data = rec;
		mrc = mdb_cursor_put(cur, &key, &v, MDB_APPEND);
		if (mrc != 0) {
			fprintf(stderr, "floor: append: %s\n",
			    mdb_strerror(mrc));
			return FBX_ESTORAGE;
		}
		f->state[idx] = FS_SENT;
	}
	return FBX_OK;
}

/* journal_command - the command record (the engine's is ~120 bytes). */
static int
journal_command(struct floor *f, MDB_txn *txn)
{
	uint8_t kb[8], rec[128];
	MDB_val k, v;

	memset(rec, 0, sizeof(rec));
	rec[0] = 2;
	rec[1] = FBX_CMD_QUERY;
	memcpy(rec + 40, ORG, sizeof(ORG));
	put_be64(kb, f->cmd_id);
	k.mv_size = 8;
	k.mv_data = kb;
	v.mv_size = sizeof(rec);
	v.mv_data = rec;
	return mdb_put(txn, f->cmd, &k, &v, 0) == 0 ? FBX_OK : FBX_ESTORAGE;
}

/* read_inputs - up to IN_MSGS_MAX messages or IN_BYTES_MAX bytes. A
 * message from an unknown peer is only taken if it is a HELLO. */
static int
read_inputs(struct floor *f)
{
	while (f->nin < IN_MSGS_MAX && f->in_bytes < IN_BYTES_MAX) {
		zmq_msg_t rid;
		zmq_msg_t *body = &f->in[f->nin];
		zmq_msg_init(&rid);
		if (zmq_msg_recv(&rid, f->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&rid);
			if (errno == EAGAIN || errno == EINTR)
				return FBX_OK;
			fprintf(stderr, "floor: recv: %s\n",
			    zmq_strerror(errno));
			return FBX_EIO;
		}
		zmq_msg_init(body);
		if (!zmq_msg_more(&rid) ||
		    zmq_msg_recv(body, f->sock, 0) < 0) {
			zmq_msg_close(&rid);
			zmq_msg_close(body);
			continue;
		}
		if (zmq_msg_size(&rid) <= sizeof(f->rid)) {
			f->rid_len = zmq_msg_size(&rid);
			memcpy(f->rid, zmq_msg_data(&rid), f->rid_len);
		}
		zmq_msg_close(&rid);
		f->in_bytes += zmq_msg_size(body);
		if (f->nin++ == 0)
			f->in_first_us = fbxb_mono_us();
	}
	return FBX_OK;
}

/* turn - the engine's loop in miniature: apply what came in, create what
 * the window allows, commit (fsync), then answer and send. */
static int
turn(struct floor *f, int first)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	uint32_t k = 0, from = f->created;
	int64_t now = fbxb_now_ms();
	int rc = FBX_OK, mrc, nheart = 0;

	f->nfin = 0;
	f->nacks = 0;
	if (f->have_peer && f->created < f->o.devices &&
	    f->unanswered < f->o.window) {
		k = f->o.window - f->unanswered;
		if (k > TURN_MAX)
			k = TURN_MAX;
		if (k > f->o.devices - f->created)
			k = f->o.devices - f->created;
	}
	mrc = mdb_txn_begin(f->env, NULL, 0, &txn);
	if (mrc == 0)
		mrc = mdb_cursor_open(txn, f->dlv, &cur);
	if (mrc != 0) {
		fprintf(stderr, "floor: txn: %s\n", mdb_strerror(mrc));
		rc = FBX_ESTORAGE;
		goto out;
	}
	if (first && (rc = journal_command(f, txn)) != FBX_OK)
		goto out;
	for (size_t i = 0; i < f->nin && rc == FBX_OK; i++) {
		struct fbx_gw_msg m;
		char why[128];
		if (fbx_gw_msg_decode(zmq_msg_data(&f->in[i]),
		        zmq_msg_size(&f->in[i]), &m, why, sizeof(why)) !=
		    FBX_OK) {
			fprintf(stderr, "floor: bad message: %s\n", why);
			continue;
		}
		switch (m.kind) {
		case FBX_GW_HELLO:
			f->welcome_due = 1;
			break;
		case FBX_GW_RESULTS:
			rc = apply_results(f, cur, &m, now);
			break;
		case FBX_GW_HEARTBEAT:
			nheart++;
			break;
		default:
			break;
		}
		fbx_gw_msg_free(&m);
	}
	if (rc == FBX_OK && k > 0)
		rc = create(f, cur, k, now);
	if (rc != FBX_OK)
		goto out;
	mdb_cursor_close(cur);
	cur = NULL;
	mrc = mdb_txn_commit(txn); /* fsync: the engine's full durability */
	txn = NULL;
	if (mrc != 0) {
		fprintf(stderr, "floor: commit: %s\n", mdb_strerror(mrc));
		rc = FBX_ESTORAGE;
		goto out;
	}
	f->commits++;
	f->created += k;
	f->unanswered += k;
	now = fbxb_now_ms();
	for (size_t i = 0; i < f->nfin; i++)
		f->lat[f->fin[i]] = (double)(now - f->t0);
	f->done += (uint32_t)f->nfin;
	/* after the commit: answers, then the new deliveries */
	if (f->welcome_due) {
		f->welcome_due = 0;
		rc = send_welcome(f);
	}
	for (size_t i = 0; i < f->nacks && rc == FBX_OK; i++) {
		struct fbx_eng_msg m;
		memset(&m, 0, sizeof(m));
		m.kind = FBX_ENG_ACK;
		m.u.ack.batch_id = f->acks[i].batch_id;
		m.u.ack.count = f->acks[i].count;
		rc = send_eng(f, &m);
	}
	for (int i = 0; i < nheart && rc == FBX_OK; i++) {
		struct fbx_eng_msg m;
		memset(&m, 0, sizeof(m));
		m.kind = FBX_ENG_ACK;
		rc = send_eng(f, &m);
	}
	if (rc == FBX_OK && k > 0)
		rc = send_new(f, from, from + k);
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	if (txn != NULL)
		mdb_txn_abort(txn);
	for (size_t i = 0; i < f->nin; i++)
		zmq_msg_close(&f->in[i]);
	f->nin = 0;
	f->in_bytes = 0;
	return rc;
}

/* ---------------------------------------------------------- setup */

static int
open_store(struct floor *f, const char *dir)
{
	MDB_txn *txn = NULL;
	int mrc;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "floor: mkdir %s: %s\n", dir, strerror(errno));
		return FBX_EIO;
	}
	mrc = mdb_env_create(&f->env);
	if (mrc == 0)
		mrc = mdb_env_set_maxdbs(f->env, 4);
	if (mrc == 0)
		mrc = mdb_env_set_mapsize(f->env, MAP_SIZE);
	/* store.c's flags at full durability */
	if (mrc == 0)
		mrc = mdb_env_open(f->env, dir, MDB_NOTLS | MDB_NORDAHEAD,
		    0664);
	if (mrc == 0)
		mrc = mdb_txn_begin(f->env, NULL, 0, &txn);
	if (mrc == 0)
		mrc = mdb_dbi_open(txn, "dlv", MDB_CREATE, &f->dlv);
	if (mrc == 0)
		mrc = mdb_dbi_open(txn, "cmd", MDB_CREATE, &f->cmd);
	if (mrc == 0) {
		mrc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (mrc != 0) {
		fprintf(stderr, "floor: lmdb %s: %s\n", dir,
		    mdb_strerror(mrc));
		return FBX_ESTORAGE;
	}
	return FBX_OK;
}

/* open_socket - a ROUTER as the engine's gateway socket: no send limit,
 * mandatory routing, linger 0, a CURVE server with the daemon's key
 * (issue 10: the simulator connects only as a CURVE client; no ZAP
 * handler runs here, so any client key is taken). */
static int
open_socket(struct floor *f, const char *ep, const char *keys)
{
	int zero = 0, one = 1;
	int64_t maxmsg = (int64_t)FBX_GATEWAY_MSG_MAX * 2;
	struct fbx_key k;
	char path[400], why[200] = "";

	snprintf(path, sizeof(path), "%s/server.key", keys);
	if (fbx_key_read(path, 1, &k, why, sizeof(why)) != FBX_OK) {
		fprintf(stderr, "floor: %s: %s\n", path, why);
		return FBX_EIO;
	}

	f->ctx = zmq_ctx_new();
	if (f->ctx == NULL)
		return FBX_EIO;
	f->sock = zmq_socket(f->ctx, ZMQ_ROUTER);
	if (f->sock == NULL ||
	    zmq_setsockopt(f->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_SNDHWM, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_MAXMSGSIZE, &maxmsg,
	        sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_ROUTER_MANDATORY, &one,
	        sizeof(one)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_CURVE_SECRETKEY, k.secret_z85,
	        strlen(k.secret_z85)) != 0 ||
	    zmq_bind(f->sock, ep) != 0) {
		fprintf(stderr, "floor: socket %s: %s\n", ep,
		    zmq_strerror(errno));
		return FBX_EIO;
	}
	return FBX_OK;
}

static void
floor_close(struct floor *f)
{
	if (f->sock != NULL)
		zmq_close(f->sock);
	if (f->ctx != NULL)
		zmq_ctx_term(f->ctx);
	if (f->env != NULL)
		mdb_env_close(f->env);
	free(f->state);
	free(f->fin);
	free(f->acks);
	free(f->ob);
	free(f->obdev);
	f->sock = f->ctx = NULL;
	f->env = NULL;
	f->state = NULL;
	f->fin = NULL;
	f->acks = NULL;
	f->ob = NULL;
	f->obdev = NULL;
}

/* wait_hello - the simulator's HELLO, answered at once (the job starts
 * after the session, as bench_fanout's submit does). */
static int
wait_hello(struct floor *f, int timeout_ms)
{
	int64_t end = fbxb_mono_us() + (int64_t)timeout_ms * 1000;

	while (!fbxb_stop && fbxb_mono_us() < end) {
		zmq_pollitem_t it = { f->sock, 0, ZMQ_POLLIN, 0 };
		if (zmq_poll(&it, 1, 50) < 0 && errno != EINTR)
			return FBX_EIO;
		if (read_inputs(f) != FBX_OK)
			return FBX_EIO;
		for (size_t i = 0; i < f->nin; i++) {
			struct fbx_gw_msg m;
			char why[128];
			if (fbx_gw_msg_decode(zmq_msg_data(&f->in[i]),
			        zmq_msg_size(&f->in[i]), &m, why,
			        sizeof(why)) != FBX_OK)
				continue;
			if (m.kind == FBX_GW_HELLO)
				f->have_peer = 1;
			fbx_gw_msg_free(&m);
		}
		for (size_t i = 0; i < f->nin; i++)
			zmq_msg_close(&f->in[i]);
		f->nin = 0;
		f->in_bytes = 0;
		if (f->have_peer)
			return send_welcome(f);
	}
	return FBX_EUNREACHABLE;
}

/* job - one fan-out of N deliveries under command `r`, on the warm
 * environment and simulator session (as bench_fanout's runs share their
 * daemon and simulator). */
static int
job(struct floor *f, uint32_t r, const char *mdb, struct run *out)
{
	const struct opts *o = &f->o;
	long long size0, size1;
	double cpu0;
	int64_t t_end, idle_since;
	uint64_t commits0 = f->commits;
	int rc, first = 1;

	f->cmd_id = r;
	f->created = f->unanswered = f->done = 0;
	memset(f->state, 0, o->devices);
	size0 = fbxb_file_size(mdb);
	cpu0 = fbxb_cpu_ms(0);
	f->t0 = fbxb_now_ms();
	idle_since = fbxb_mono_us();
	while (f->done < o->devices && !fbxb_stop) {
		uint32_t room = f->unanswered < o->window
		    ? o->window - f->unanswered
		    : 0;
		uint32_t left = o->devices - f->created;
		/* a turn costs one fsync: go when a sizeable batch of new
		 * deliveries fits the window, when the input buffer is
		 * full, or when the oldest input has waited coalesce_ms */
		int big = left > 0 && room >= (left < COALESCE_ROOM
		                                   ? left
		                                   : COALESCE_ROOM);
		int64_t now = fbxb_mono_us(), due = f->in_first_us +
		    (int64_t)o->coalesce_ms * 1000;
		int full = f->nin >= IN_MSGS_MAX || f->in_bytes >= IN_BYTES_MAX;
		long wait = 50;
		zmq_pollitem_t it = { f->sock, 0, ZMQ_POLLIN, 0 };
		if (first || big || full || (f->nin > 0 && now >= due)) {
			if ((rc = read_inputs(f)) != FBX_OK)
				return rc;
			idle_since = now;
			if ((rc = turn(f, first)) != FBX_OK)
				return rc;
			first = 0;
			continue;
		}
		if (f->nin > 0)
			wait = (long)((due - now + 999) / 1000);
		if (zmq_poll(&it, 1, wait) < 0 && errno != EINTR)
			return FBX_EIO;
		if ((rc = read_inputs(f)) != FBX_OK)
			return rc;
		if (f->nin == 0 && now - idle_since > 30000000) {
			fprintf(stderr, "floor: stalled at %" PRIu32 " of %" PRIu32
			                " results\n",
			    f->done, o->devices);
			return FBX_ETIMEOUT;
		}
	}
	if (fbxb_stop)
		return FBX_ESHUTTING_DOWN;
	t_end = fbxb_now_ms();
	out->cpu_us = (fbxb_cpu_ms(0) - cpu0) * 1000.0 / o->devices;
	size1 = fbxb_file_size(mdb);
	out->wall_ms = (double)(t_end - f->t0);
	out->rate = out->wall_ms > 0 ? o->devices * 1000.0 / out->wall_ms : 0;
	out->bytes_per_dlv = (double)(size1 - size0) / o->devices;
	out->commits = (double)(f->commits - commits0);
	out->max = fbxb_pct(f->lat, o->devices, 100);
	out->p50 = fbxb_pct(f->lat, o->devices, 50);
	out->p99 = fbxb_pct(f->lat, o->devices, 99);
	printf("floor devices=%" PRIu32 " run=%" PRIu32 ": wall %.0f ms, "
	       "%.0f deliveries/s, per device p50 %.0f p99 %.0f max %.0f "
	       "ms, %.1f B/delivery, %.0f commits, CPU %.2f us/delivery\n",
	    o->devices, r, out->wall_ms, out->rate, out->p50, out->p99,
	    out->max, out->bytes_per_dlv, out->commits, out->cpu_us);
	fflush(stdout);
	return FBX_OK;
}

/* floor_run - set up once (store, socket, simulator, session), then the
 * runs. @return FBX_OK or the first error. */
static int
floor_run(const struct opts *o, double *lat, struct run *runs)
{
	struct fbxb_env b;
	struct floor f;
	char store[320], mdb[400], report[320], log[320], ndev[16], win[16];
	char fail[32], off[32];
	uint64_t dup = 0, recv = 0;
	int rc = FBX_EIO;

	memset(&f, 0, sizeof(f));
	f.o = *o;
	f.lat = lat;
	if (fbxb_setup(&b, "floor") != FBX_OK)
		goto out;
	snprintf(store, sizeof(store), "%s/db", b.dir);
	snprintf(mdb, sizeof(mdb), "%s/data.mdb", store);
	snprintf(report, sizeof(report), "%s/devsim.report", b.dir);
	snprintf(log, sizeof(log), "%s/devsim.log", b.dir);
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o->devices);
	snprintf(win, sizeof(win), "%" PRIu32, o->window);
	snprintf(fail, sizeof(fail), "%.6f", o->fail_ppm / 1e6);
	snprintf(off, sizeof(off), "%.6f", o->offline_ppm / 1e6);
	f.state = calloc(o->devices, 1);
	f.fin = malloc((size_t)o->devices * sizeof(*f.fin));
	f.ob = malloc(SEND_BATCH * sizeof(*f.ob));
	f.obdev = malloc(SEND_BATCH * sizeof(*f.obdev));
	if (f.state == NULL || f.fin == NULL || f.ob == NULL ||
	    f.obdev == NULL) {
		rc = FBX_ENOMEM;
		goto out;
	}
	if ((rc = open_store(&f, store)) != FBX_OK ||
	    (rc = open_socket(&f, b.gateway, b.keys)) != FBX_OK)
		goto out;
	{
		char *args[] = { "--gateway-endpoint", b.gateway,
			"--console-endpoint", b.console, "--devices", ndev,
			"--orgs", "1", "--no-enroll", "--quiet", "--window", win,
			"--stats-interval-s", "0", "--report", report,
			"--fail-ratio", fail, "--offline-ratio", off, NULL };
		b.sim = fbxb_spawn("fusebox-devsim", log, args);
		if (b.sim < 0) {
			b.sim = 0;
			rc = FBX_EIO;
			goto out;
		}
	}
	if ((rc = wait_hello(&f, 30000)) != FBX_OK) {
		fprintf(stderr, "floor: no HELLO from the simulator\n");
		goto out;
	}
	for (uint32_t r = 0; r < o->runs; r++) {
		if ((rc = job(&f, r + 1, mdb, &runs[r])) != FBX_OK)
			goto out;
	}
	(void)fbxb_sim_stop(&b);
	(void)fbxb_report_get(report, "deliveries_received=",
	    "deliveries_received", &recv);
	(void)fbxb_report_get(report, "deliveries_received=", "duplicates",
	    &dup);
	printf("floor devices=%" PRIu32 ": devsim received %" PRIu64
	       " deliveries (%" PRIu64 " duplicates), %" PRIu64
	       " results ignored\n",
	    o->devices, recv, dup, f.ignored);
	rc = FBX_OK;
out:
	floor_close(&f);
	fbxb_teardown(&b);
	return rc;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: bench_floor [--devices N] [--runs R] [--window W]\n"
	    "                   [--coalesce-ms T] [--fail-ppm N]\n"
	    "                   [--offline-ppm N]\n"
	    "  the raw LMDB + ZeroMQ floor under bench_fanout (same\n"
	    "  simulator, record size, batches and durability)\n"
	    "  --fail-ppm N    devices whose delivery fails (devsim), as\n"
	    "                  bench_fanout --fail-ppm\n"
	    "  --offline-ppm N devices offline (devsim): their records end\n"
	    "                  PENDING, as bench_fanout --offline-ppm\n");
}

static double
med(const struct run *runs, uint32_t n, size_t off, double *col)
{
	return fbxb_median_field(runs, sizeof(*runs), n, off, col);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "devices", required_argument, NULL, 'n' },
		{ "runs", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'w' },
		{ "coalesce-ms", required_argument, NULL, 'c' },
		{ "fail-ppm", required_argument, NULL, 'F' },
		{ "offline-ppm", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 30000, 3, 65536, 2 };
	struct run *runs = NULL;
	double *lat = NULL, col[64];
	int c, st = 1;

	fbxb_init();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			o.devices = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			o.window = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			o.coalesce_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'F':
			o.fail_ppm = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'O':
			o.offline_ppm = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (o.devices == 0 || o.devices > (1u << 24) || o.runs == 0 ||
	    o.runs > 64 || o.window == 0 || o.fail_ppm > 1000000 ||
	    o.offline_ppm > 1000000) {
		usage(stderr);
		return 64;
	}
	runs = calloc(o.runs, sizeof(*runs));
	lat = malloc((size_t)o.devices * sizeof(*lat));
	if (runs == NULL || lat == NULL) {
		fprintf(stderr, "floor: out of memory\n");
		goto out;
	}
	if (floor_run(&o, lat, runs) != FBX_OK)
		goto out;
#define MED(field) med(runs, o.runs, offsetof(struct run, field), col)
	printf("{\"bench\":\"floor\",\"devices\":%" PRIu32
	       ",\"runs\":%" PRIu32 ",\"window\":%" PRIu32
	       ",\"wall_ms\":%.0f,\"deliveries_per_s\":%.0f,"
	       "\"p50_ms\":%.0f,\"p99_ms\":%.0f,\"max_ms\":%.0f,"
	       "\"rss_peak_mib\":%.1f,\"lmdb_bytes_per_delivery\":%.1f,"
	       "\"commits\":%.0f,\"coalesce_ms\":%" PRIu32
	       ",\"cpu_us_per_delivery\":%.2f,\"fail_ppm\":%" PRIu32
	       ",\"offline_ppm\":%" PRIu32 "}\n",
	    o.devices, o.runs, o.window, MED(wall_ms), MED(rate), MED(p50),
	    MED(p99), MED(max), fbxb_vmhwm_kib(0) / 1024.0,
	    MED(bytes_per_dlv), MED(commits), o.coalesce_ms, MED(cpu_us),
	    o.fail_ppm, o.offline_ppm);
#undef MED
	st = 0;
out:
	if (fbxb_stop)
		fprintf(stderr, "floor: interrupted\n");
	free(runs);
	free(lat);
	return st;
}
