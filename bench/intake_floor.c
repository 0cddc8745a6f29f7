/*
 * intake_floor.c: bench_intake_floor, the raw floor under bench_intake:
 * the least a program must do to take console submits with the same
 * libraries and durability as fuseboxd. A ZeroMQ ROUTER, a CURVE server
 * with the daemon's key (as the console endpoint), takes what waits on
 * it (up to --batch requests), decodes each with the project's decoder,
 * writes per submit a command record of the engine's size and encoding
 * (store_cmd.c's v3 header and its body, in one value) and an idempotency
 * record in one LMDB write transaction opened with fusebox's flags at
 * full durability (the commit fsyncs), commits, and only then sends every
 * reply (a real ConsoleReply: SUBMIT, OK, the command id). No safety
 * controls, no audit, no queues, no indexes, no ZAP handler (any CURVE
 * client key is taken). bench_intake --floor starts it; it runs until
 * SIGTERM. It includes <lmdb.h> directly, as bench/floor.c does: the
 * documented exception for the raw floors.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>
#include <zmq.h>

#include "bench.h"
#include "fbx_keys.h"

#define BATCH_DEFAULT 512 /* the engine's IN_MSGS_MAX per turn */
#define BATCH_MAX 65536
#define ENV_MAX 4         /* envelope frames kept per request */
#define RID_MAX 256
#define MAP_SIZE ((size_t)4 << 30)
#define REC_MAX 1024
#define IDEM_KEY_MAX (2 * (FBX_ID_MAX + 1))

/* One request read from the socket and, after the commit, its reply. */
struct inreq {
	size_t nenv;
	size_t envlen[ENV_MAX];
	uint8_t env[ENV_MAX][RID_MAX];
	zmq_msg_t body;
	struct fbx_console_rep rep;
};

#define XTREES_MAX 8 /* --extra-trees */
#define XREC_LEN 60  /* an extra tree's record: a delivery's size */

struct ifloor {
	MDB_env *env;
	MDB_dbi cmd, idem;
	MDB_dbi xt[XTREES_MAX];
	unsigned nxt; /* --extra-trees: records appended per submit */
	void *ctx, *sock;
	uint64_t next_id;
	struct inreq *in;
	size_t batch;
	uint64_t commits, submits, duplicates, bad;
};

/* ---------------------------------------------------------- records */

struct wr {
	uint8_t *p, *end;
	int bad;
};

static void
wr_u8(struct wr *w, unsigned v)
{
	if (w->p >= w->end) {
		w->bad = 1;
		return;
	}
	*w->p++ = (uint8_t)v;
}

static void
wr_le(struct wr *w, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		wr_u8(w, (unsigned)(v >> (8 * i)) & 0xff);
}

static void
wr_str(struct wr *w, const char *s)
{
	size_t n = strnlen(s, 255);

	wr_u8(w, (unsigned)n);
	if ((size_t)(w->end - w->p) < n) {
		w->bad = 1;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

/* cmd_record - store_cmd.c's command header v3 (cmd_hdr_encode) for c, with
 * the v1 body (payload, device ids) after it: the bytes the engine
 * journals for a submit, in one value. @return the length, 0 if too big. */
static size_t
cmd_record(const struct fbx_command *c, int64_t now, uint8_t *buf,
    size_t cap)
{
	struct wr w = { buf, buf + cap, 0 };

	wr_u8(&w, 3);
	wr_u8(&w, c->type);
	wr_u8(&w, c->origin);
	wr_u8(&w, c->target_kind);
	wr_u8(&w, c->platform);
	wr_u8(&w, FBX_C_ACTIVE);
	wr_le(&w, c->ttl_s, 4);
	wr_le(&w, (uint64_t)now, 8);
	wr_le(&w, (uint64_t)(now + (int64_t)c->ttl_s * 1000), 8);
	wr_le(&w, c->ndev_ids, 4); /* ndeliveries */
	wr_u8(&w, FBX_D_COUNT);
	for (int i = 0; i < FBX_D_COUNT; i++)
		wr_le(&w, i == FBX_D_QUEUED ? c->ndev_ids : 0, 4);
	wr_str(&w, c->org);
	wr_str(&w, c->actor);
	wr_str(&w, c->reason);
	wr_str(&w, c->idem_key);
	wr_str(&w, c->group);
	wr_str(&w, "");  /* cursor */
	wr_le(&w, 0, 4); /* cursor_idx */
	wr_le(&w, c->payload_len, 4);
	wr_le(&w, c->ndev_ids, 4);
	/* v2: safety controls, all empty here; v3: settle_until_ms */
	wr_u8(&w, 0);
	for (int i = 0; i < 4; i++)
		wr_str(&w, "");
	for (int i = 0; i < 3; i++)
		wr_u8(&w, 0);
	wr_le(&w, 0, 4 * 8);
	wr_le(&w, 0, 2 + 4 * 4 + 8 + 8);
	wr_str(&w, "");
	wr_le(&w, 0, 8);
	/* body v1 */
	wr_u8(&w, 1);
	wr_le(&w, c->payload_len, 4);
	if (c->payload_len > 0 && (size_t)(w.end - w.p) >= c->payload_len) {
		memcpy(w.p, c->payload, c->payload_len);
		w.p += c->payload_len;
	} else if (c->payload_len > 0) {
		w.bad = 1;
	}
	wr_le(&w, c->ndev_ids, 4);
	for (uint32_t i = 0; i < c->ndev_ids; i++)
		wr_str(&w, c->dev_ids[i]);
	return w.bad ? 0 : (size_t)(w.p - buf);
}

static void
put_be64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* submit - journal one command in txn: the idempotency record first
 * (org \0 key -> id; an existing one makes this a duplicate, answered
 * with its command), then the command record. Fills r->rep. @return
 * FBX_OK, or FBX_ESTORAGE (the transaction is then unusable). */
static int
submit(struct ifloor *f, MDB_txn *txn, const struct fbx_console_req *req,
    struct inreq *r, int64_t now)
{
	struct fbx_command c = req->u.submit.cmd;
	uint8_t kb[8], ib[8], rec[REC_MAX], ik[IDEM_KEY_MAX];
	MDB_val k, v;
	size_t on = strlen(req->org), len;
	uint64_t id = f->next_id;
	int mrc;

	snprintf(c.org, sizeof(c.org), "%s", req->org);
	snprintf(c.actor, sizeof(c.actor), "%s", req->actor);
	r->rep.kind = FBX_CREQ_SUBMIT;
	len = cmd_record(&c, now, rec, sizeof(rec));
	if (len == 0) {
		r->rep.err = FBX_ETOOBIG;
		snprintf(r->rep.errmsg, sizeof(r->rep.errmsg),
		    "command record over %d bytes", REC_MAX);
		return FBX_OK;
	}
	if (c.idem_key[0] != '\0') {
		size_t il = strlen(c.idem_key);
		memcpy(ik, req->org, on);
		ik[on] = '\0';
		memcpy(ik + on + 1, c.idem_key, il);
		for (int i = 0; i < 8; i++)
			ib[i] = (uint8_t)(id >> (8 * i));
		k.mv_size = on + 1 + il;
		k.mv_data = ik;
		v.mv_size = 8;
		v.mv_data = ib;
		mrc = mdb_put(txn, f->idem, &k, &v, MDB_NOOVERWRITE);
		if (mrc == MDB_KEYEXIST && v.mv_size == 8) {
			const uint8_t *b = v.mv_data;
			uint64_t old = 0;
			for (int i = 7; i >= 0; i--)
				old = old << 8 | b[i];
			r->rep.u.submit.command_id = old;
			r->rep.u.submit.duplicate = 1;
			r->rep.u.submit.device_count = c.ndev_ids;
			r->rep.u.submit.state = FBX_C_ACTIVE;
			f->duplicates++;
			return FBX_OK;
		}
		if (mrc != 0) {
			fprintf(stderr, "intake_floor: idem put: %s\n",
			    mdb_strerror(mrc));
			return FBX_ESTORAGE;
		}
	}
	put_be64(kb, id);
	k.mv_size = 8;
	k.mv_data = kb;
	v.mv_size = len;
	v.mv_data = rec;
	mrc = mdb_put(txn, f->cmd, &k, &v, MDB_APPEND);
	if (mrc != 0) {
		fprintf(stderr, "intake_floor: cmd put: %s\n",
		    mdb_strerror(mrc));
		return FBX_ESTORAGE;
	}
	/* --extra-trees: one more record by id in each (what one more
	 * table written per submit costs a commit) */
	for (unsigned i = 0; i < f->nxt; i++) {
		uint8_t xr[XREC_LEN];
		memset(xr, 0, sizeof(xr));
		k.mv_size = 8;
		k.mv_data = kb;
		v.mv_size = sizeof(xr);
		v.mv_data = xr;
		mrc = mdb_put(txn, f->xt[i], &k, &v, MDB_APPEND);
		if (mrc != 0) {
			fprintf(stderr, "intake_floor: extra put: %s\n",
			    mdb_strerror(mrc));
			return FBX_ESTORAGE;
		}
	}
	f->next_id++;
	f->submits++;
	r->rep.u.submit.command_id = id;
	r->rep.u.submit.device_count = c.ndev_ids;
	r->rep.u.submit.state = FBX_C_ACTIVE;
	return FBX_OK;
}

/* ---------------------------------------------------------- socket */

/* read_batch - up to f->batch requests waiting on the socket, without
 * blocking. @return how many, or -1 on a socket error. */
static long
read_batch(struct ifloor *f)
{
	size_t n = 0;

	while (n < f->batch) {
		struct inreq *r = &f->in[n];
		zmq_msg_t part;
		int first = 1, bad = 0;

		r->nenv = 0;
		zmq_msg_init(&r->body);
		for (;;) {
			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, f->sock,
			        first ? ZMQ_DONTWAIT : 0) < 0) {
				int e = errno;
				zmq_msg_close(&part);
				zmq_msg_close(&r->body);
				if (first && (e == EAGAIN || e == EINTR))
					return (long)n;
				fprintf(stderr, "intake_floor: recv: %s\n",
				    zmq_strerror(e));
				return -1;
			}
			first = 0;
			if (!zmq_msg_more(&part)) {
				zmq_msg_move(&r->body, &part);
				zmq_msg_close(&part);
				break;
			}
			if (r->nenv < ENV_MAX &&
			    zmq_msg_size(&part) <= RID_MAX) {
				r->envlen[r->nenv] = zmq_msg_size(&part);
				memcpy(r->env[r->nenv], zmq_msg_data(&part),
				    zmq_msg_size(&part));
				r->nenv++;
			} else {
				bad = 1;
			}
			zmq_msg_close(&part);
		}
		if (bad || r->nenv == 0) {
			zmq_msg_close(&r->body);
			f->bad++;
			continue;
		}
		n++;
	}
	return (long)n;
}

/* send_reply - [envelope...][reply]; a peer gone meanwhile is not an
 * error of the floor. */
static void
send_reply(struct ifloor *f, const struct inreq *r)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_console_rep_encode(&r->rep, &buf, &len);

	if (rc != FBX_OK) {
		fprintf(stderr, "intake_floor: encode: %s\n", fbx_strerror(rc));
		return;
	}
	for (size_t i = 0; i < r->nenv; i++)
		(void)zmq_send(f->sock, r->env[i], r->envlen[i],
		    ZMQ_SNDMORE | ZMQ_DONTWAIT);
	(void)zmq_send(f->sock, buf, len, ZMQ_DONTWAIT);
	free(buf);
}

/* turn - the group commit: decode what was read, one write transaction
 * for every submit in it, commit (fsync), then every reply. */
static int
turn(struct ifloor *f, size_t n)
{
	MDB_txn *txn = NULL;
	int64_t now = fbxb_now_ms();
	uint64_t id0 = f->next_id;
	int rc = FBX_OK, mrc, writes = 0;

	mrc = mdb_txn_begin(f->env, NULL, 0, &txn);
	if (mrc != 0) {
		fprintf(stderr, "intake_floor: txn: %s\n", mdb_strerror(mrc));
		rc = FBX_ESTORAGE;
	}
	for (size_t i = 0; i < n; i++) {
		struct inreq *r = &f->in[i];
		struct fbx_console_req req;
		char why[160];
		int drc;

		memset(&r->rep, 0, sizeof(r->rep));
		drc = fbx_console_req_decode(zmq_msg_data(&r->body),
		    zmq_msg_size(&r->body), &req, why, sizeof(why));
		r->rep.request_id = req.request_id;
		if (drc != FBX_OK) {
			r->rep.err = drc;
			snprintf(r->rep.errmsg, sizeof(r->rep.errmsg), "%s",
			    why);
			f->bad++;
			continue;
		}
		r->rep.kind = req.kind;
		if (rc != FBX_OK) {
			r->rep.err = rc;
		} else if (req.kind == FBX_CREQ_PING) {
			/* no gateway, nothing queued; the commits so far */
			r->rep.u.pong.commits = f->commits;
		} else if (req.kind == FBX_CREQ_SUBMIT) {
			rc = submit(f, txn, &req, r, now);
			r->rep.err = rc != FBX_OK ? rc : r->rep.err;
			writes++;
		} else {
			r->rep.err = FBX_EINVALID;
			snprintf(r->rep.errmsg, sizeof(r->rep.errmsg),
			    "the intake floor takes SUBMIT and PING only");
		}
		fbx_console_req_free(&req);
	}
	if (txn != NULL && rc == FBX_OK && writes > 0) {
		mrc = mdb_txn_commit(txn); /* fsync: full durability */
		txn = NULL;
		if (mrc == 0) {
			f->commits++;
		} else {
			fprintf(stderr, "intake_floor: commit: %s\n",
			    mdb_strerror(mrc));
			rc = FBX_ESTORAGE;
		}
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (rc != FBX_OK)
		f->next_id = id0; /* nothing of this turn is durable */
	for (size_t i = 0; i < n; i++) {
		struct inreq *r = &f->in[i];
		if (rc != FBX_OK && r->rep.kind == FBX_CREQ_SUBMIT) {
			memset(&r->rep.u, 0, sizeof(r->rep.u));
			r->rep.err = rc;
		}
		send_reply(f, r);
		zmq_msg_close(&r->body);
	}
	return rc;
}

/* ---------------------------------------------------------- setup */

static int
open_store(struct ifloor *f, const char *dir)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int mrc;

	if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
		fprintf(stderr, "intake_floor: mkdir %s: %s\n", dir,
		    strerror(errno));
		return FBX_EIO;
	}
	mrc = mdb_env_create(&f->env);
	if (mrc == 0)
		mrc = mdb_env_set_maxdbs(f->env, 4 + XTREES_MAX);
	if (mrc == 0)
		mrc = mdb_env_set_mapsize(f->env, MAP_SIZE);
	/* store.c's flags at full durability */
	if (mrc == 0)
		mrc = mdb_env_open(f->env, dir, MDB_NOTLS | MDB_NORDAHEAD,
		    0600);
	if (mrc == 0)
		mrc = mdb_txn_begin(f->env, NULL, 0, &txn);
	if (mrc == 0)
		mrc = mdb_dbi_open(txn, "cmd", MDB_CREATE, &f->cmd);
	if (mrc == 0)
		mrc = mdb_dbi_open(txn, "idem", MDB_CREATE, &f->idem);
	for (unsigned i = 0; mrc == 0 && i < f->nxt; i++) {
		char name[8] = { 'x', (char)('0' + i), '\0' };
		mrc = mdb_dbi_open(txn, name, MDB_CREATE, &f->xt[i]);
	}
	if (mrc == 0)
		mrc = mdb_cursor_open(txn, f->cmd, &cur);
	f->next_id = 1;
	if (mrc == 0) {
		mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (mrc == 0 && k.mv_size == 8) {
			uint64_t id = 0;
			for (int i = 0; i < 8; i++)
				id = id << 8 | ((const uint8_t *)k.mv_data)[i];
			f->next_id = id + 1;
		}
		if (mrc == MDB_NOTFOUND)
			mrc = 0;
		mdb_cursor_close(cur);
	}
	if (mrc == 0) {
		mrc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	if (mrc != 0) {
		fprintf(stderr, "intake_floor: lmdb %s: %s\n", dir,
		    mdb_strerror(mrc));
		return FBX_ESTORAGE;
	}
	return FBX_OK;
}

/* open_socket - a ROUTER as the engine's console socket (io_zmq.c):
 * CURVE server with the daemon's key, linger 0, send HWM 100,000, the
 * same message cap. */
static int
open_socket(struct ifloor *f, const char *ep, const char *keys)
{
	int zero = 0, one = 1, hwm = 100000;
	int64_t maxmsg = (int64_t)FBX_CONSOLE_MSG_MAX * 2;
	struct fbx_key k;
	char path[600], why[200] = "";

	snprintf(path, sizeof(path), "%s/server.key", keys);
	if (fbx_key_read(path, 1, &k, why, sizeof(why)) != FBX_OK) {
		fprintf(stderr, "intake_floor: %s: %s\n", path, why);
		return FBX_EIO;
	}
	f->ctx = zmq_ctx_new();
	if (f->ctx == NULL)
		return FBX_EIO;
	f->sock = zmq_socket(f->ctx, ZMQ_ROUTER);
	if (f->sock == NULL ||
	    zmq_setsockopt(f->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_MAXMSGSIZE, &maxmsg,
	        sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
	    zmq_setsockopt(f->sock, ZMQ_CURVE_SECRETKEY, k.secret_z85,
	        strlen(k.secret_z85)) != 0 ||
	    zmq_bind(f->sock, ep) != 0) {
		memset(&k, 0, sizeof(k));
		fprintf(stderr, "intake_floor: socket %s: %s\n", ep,
		    zmq_strerror(errno));
		return FBX_EIO;
	}
	memset(&k, 0, sizeof(k));
	return FBX_OK;
}

static void
ifloor_close(struct ifloor *f)
{
	if (f->sock != NULL)
		zmq_close(f->sock);
	if (f->ctx != NULL)
		zmq_ctx_term(f->ctx);
	if (f->env != NULL)
		mdb_env_close(f->env);
	free(f->in);
	memset(f, 0, sizeof(*f));
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: bench_intake_floor --endpoint EP --keys DIR --data DIR\n"
	    "                          [--batch N] [--extra-trees T]\n"
	    "  the raw floor under bench_intake (bench_intake --floor starts\n"
	    "  it): takes up to N console requests a turn (default %d),\n"
	    "  journals the submits in one LMDB commit, then replies; runs\n"
	    "  until SIGTERM. --extra-trees T (0 to %d) also appends a\n"
	    "  %d-byte record per submit to each of T more tables: what\n"
	    "  each table written per submit costs\n",
	    BATCH_DEFAULT, XTREES_MAX, XREC_LEN);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "keys", required_argument, NULL, 'k' },
		{ "data", required_argument, NULL, 'd' },
		{ "batch", required_argument, NULL, 'b' },
		{ "extra-trees", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ep = NULL, *keys = NULL, *data = NULL;
	struct ifloor f;
	int c, st = 1;

	memset(&f, 0, sizeof(f));
	f.batch = BATCH_DEFAULT;
	fbxb_init();
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'e':
			ep = optarg;
			break;
		case 'k':
			keys = optarg;
			break;
		case 'd':
			data = optarg;
			break;
		case 'b':
			f.batch = (size_t)strtoul(optarg, NULL, 10);
			break;
		case 'x':
			f.nxt = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (ep == NULL || keys == NULL || data == NULL || f.batch == 0 ||
	    f.batch > BATCH_MAX || f.nxt > XTREES_MAX) {
		usage(stderr);
		return 64;
	}
	f.in = calloc(f.batch, sizeof(*f.in));
	if (f.in == NULL) {
		fprintf(stderr, "intake_floor: out of memory\n");
		goto out;
	}
	if (open_store(&f, data) != FBX_OK ||
	    open_socket(&f, ep, keys) != FBX_OK)
		goto out;
	fprintf(stderr, "intake_floor: listening on %s, batch %zu\n", ep,
	    f.batch);
	while (!fbxb_stop) {
		zmq_pollitem_t it = { f.sock, 0, ZMQ_POLLIN, 0 };
		long n;
		if (zmq_poll(&it, 1, 200) < 0 && errno != EINTR) {
			fprintf(stderr, "intake_floor: poll: %s\n",
			    zmq_strerror(errno));
			goto out;
		}
		n = read_batch(&f);
		if (n < 0)
			goto out;
		if (n > 0 && turn(&f, (size_t)n) != FBX_OK)
			goto out;
	}
	st = 0;
out:
	fprintf(stderr, "intake_floor: %" PRIu64 " submits (%" PRIu64
	                " duplicates), %" PRIu64 " commits, %" PRIu64
	                " bad requests\n",
	    f.submits, f.duplicates, f.commits, f.bad);
	ifloor_close(&f);
	return st;
}
