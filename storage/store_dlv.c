/*
 * store_dlv.c: deliveries: the delivery record (its compact encoding and
 * state history), creation held back until the transaction writes it
 * (struct dlv_new, store_int.h), reads, scans and state steps, the
 * offline index (pend) and the deletion of a command's deliveries by
 * retention. Keys and values follow the schema at the top of store.c;
 * the LMDB calls go through store_pg.h. Depends on store.c
 * (store_int.h).
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_store.h"
#include "store_pg.h" /* the LMDB calls below: LMDB or PostgreSQL */
#include "store_int.h"

#define DLV_V1 1
/* Spare bytes a new delivery record carries: room for about two history
 * entries (state + a delta of up to 35 minutes), so the usual
 * QUEUED -> SENT -> SUCCEEDED life rewrites it in place. */
#define DLV_PAD 8

/* Largest delivery record (v2): fixed part, device, full history. */
#define DLV_REC_MAX (3 + 3 + 5 + 1 + FBX_ID_MAX + \
    FBX_HIST_MAX * (1 + 3 + 10) + 10 + DLV_PAD)

/* created deliveries held back at most (struct dlv_new: store_int.h);
 * more are written at once */
#define DLV_NEW_MAX 65536

static int dlv_write(fbx_txn *t, uint64_t id, uint8_t *rec, size_t len);
static struct dlv_new *dlv_new_find(fbx_txn *t, uint64_t id, int *flush);
static int dlv_new_step(fbx_txn *t, uint64_t id, unsigned from_mask,
    int state, uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_dlv_head *out);

/* ---- delivery record -------------------------------------------------- */

static void
wr_uv(struct wr *w, uint64_t v)
{
	while (v >= 0x80) {
		wr_u8(w, (unsigned)(v & 0x7f) | 0x80);
		v >>= 7;
	}
	wr_u8(w, (unsigned)v);
}

static uint64_t
rd_uv(struct rd *r)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		unsigned b = rd_u8(r);
		if (r->bad)
			return 0;
		if (shift == 63 && b > 1) {
			r->bad = 1;
			return 0;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return v;
	}
	r->bad = 1;
	return 0;
}

/* Signed differences are zigzag coded; arithmetic is done modulo 2^64 so
 * any pair of times round-trips without overflow. */
static uint64_t
zz(uint64_t d)
{
	return (d << 1) ^ (0 - (d >> 63));
}

static uint64_t
unzz(uint64_t z)
{
	return (z >> 1) ^ (0 - (z & 1));
}

static void
wr_delta(struct wr *w, int64_t v, int64_t base)
{
	wr_uv(w, zz((uint64_t)v - (uint64_t)base));
}

static int64_t
rd_delta(struct rd *r, int64_t base)
{
	return (int64_t)((uint64_t)base + unzz(rd_uv(r)));
}

/* dlv_encode - encode d, zero-padded to at least min_len bytes (and to
 * at most cap). Padding lets later transitions rewrite the record at the
 * same size, which LMDB does in place without splitting pages. */
static int
dlv_encode(const struct fbx_delivery *d, size_t min_len, uint8_t *buf,
    size_t cap, size_t *len)
{
	struct wr w = { buf, buf + cap, 0 };
	int64_t prev = 0;
	size_t n;

	if (d->nhist > FBX_HIST_MAX)
		return FBX_EINVALID;
	wr_u8(&w, DLV_V1);
	wr_u8(&w, d->state);
	wr_u8(&w, d->nhist);
	wr_uv(&w, d->code);
	wr_uv(&w, d->attempts);
	wr_str(&w, d->device, FBX_ID_MAX + 1);
	for (unsigned i = 0; i < d->nhist; i++) {
		const struct fbx_dhist *h = &d->hist[i];
		if (h->state >= 0x80)
			return FBX_EINVALID;
		wr_u8(&w, h->state | (h->code != 0 ? 0x80u : 0));
		if (h->code != 0)
			wr_uv(&w, h->code);
		wr_delta(&w, h->at_ms, prev);
		prev = h->at_ms;
	}
	wr_delta(&w, d->updated_ms, prev);
	if (w.bad)
		return FBX_EINVALID;
	n = (size_t)(w.p - buf);
	if (min_len > cap)
		min_len = cap;
	if (n < min_len) {
		memset(buf + n, 0, min_len - n);
		n = min_len;
	}
	*len = n;
	return FBX_OK;
}

static int
dlv_decode(uint64_t id, const MDB_val *v, struct fbx_delivery *d)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	uint64_t code, attempts;
	int64_t prev = 0;

	if (rd_u8(&r) != DLV_V1)
		return FBX_ECORRUPT;
	d->id = id;
	d->state = (uint8_t)rd_u8(&r);
	d->nhist = (uint8_t)rd_u8(&r);
	code = rd_uv(&r);
	attempts = rd_uv(&r);
	if (r.bad || d->nhist > FBX_HIST_MAX || code > UINT16_MAX ||
	    attempts > UINT32_MAX)
		return FBX_ECORRUPT;
	d->code = (uint16_t)code;
	d->attempts = (uint32_t)attempts;
	rd_str(&r, d->device, sizeof(d->device));
	for (unsigned i = 0; i < d->nhist; i++) {
		unsigned s = rd_u8(&r);
		uint64_t hc = 0;
		if (s & 0x80) {
			hc = rd_uv(&r);
			if (hc > UINT16_MAX)
				r.bad = 1;
		}
		d->hist[i].state = (uint8_t)(s & 0x7f);
		d->hist[i].code = (uint16_t)hc;
		d->hist[i].at_ms = rd_delta(&r, prev);
		prev = d->hist[i].at_ms;
	}
	d->updated_ms = rd_delta(&r, prev);
	if (r.bad)
		return FBX_ECORRUPT;
	/* Whatever follows is padding and must be zero. */
	for (; r.p < r.end; r.p++) {
		if (*r.p != 0)
			return FBX_ECORRUPT;
	}
	return FBX_OK;
}

/* ---- deliveries ----------------------------------------------------- */

/* dlv_cursor - the cached write cursor on dlv, opened on first use. */
static int
dlv_cursor(fbx_txn *t, MDB_cursor **cur)
{
	int mrc;

	if (t->dlv_cur == NULL) {
		mrc = mdb_cursor_open(t->txn, t->st->dlv, &t->dlv_cur);
		if (mrc != 0) {
			t->dlv_cur = NULL;
			return fbxs_read_err(mrc);
		}
	}
	*cur = t->dlv_cur;
	return FBX_OK;
}



int
fbx_store_dlv_put(fbx_txn *t, const struct fbx_delivery *d)
{
	uint8_t rec[DLV_REC_MAX];
	size_t len;
	int rc;

	TXN_WRITE_CHECK(t);
	if (d == NULL || d->id == 0)
		return FBX_EINVALID;
	DLV_NEW_FLUSH(t);
	rc = dlv_encode(d, 0, rec, sizeof(rec), &len);
	if (rc != FBX_OK)
		return rc;
	if (len + DLV_PAD <= sizeof(rec)) {
		memset(rec + len, 0, DLV_PAD);
		len += DLV_PAD;
	}
	return dlv_write(t, d->id, rec, len);
}

int
fbx_store_dlv_get(fbx_txn *t, uint64_t id, struct fbx_delivery *out)
{
	struct fbx_delivery d;
	MDB_val k, v;
	uint8_t idb[8];
	int rc, mrc;

	TXN_READ_CHECK(t);
	if (out == NULL)
		return FBX_EINVALID;
	if (t->nnw > 0) {
		/* only a held-back id (or one that cannot be ruled out)
		 * needs them written: a look at an older delivery (a
		 * supersede candidate) leaves this turn's creations be */
		int flush;
		if (dlv_new_find(t, id, &flush) != NULL || flush)
			DLV_NEW_FLUSH(t);
	}
	put_be64(idb, id);
	k.mv_size = 8;
	k.mv_data = idb;
	mrc = mdb_get(t->txn, t->st->dlv, &k, &v);
	if (mrc != 0)
		return fbxs_read_err(mrc);
	rc = dlv_decode(id, &v, &d);
	if (rc != FBX_OK)
		return rc;
	*out = d;
	return FBX_OK;
}

int
fbx_store_dlv_scan(fbx_txn *t, uint64_t from, uint64_t to, uint32_t limit,
    fbx_dlv_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t idb[8];
	uint32_t n = 0;
	int rc, mrc;

	TXN_READ_CHECK(t);
	if (fn == NULL)
		return FBX_EINVALID;
	if (to <= from)
		return FBX_OK;
	DLV_NEW_FLUSH(t);
	mrc = mdb_cursor_open(t->txn, t->st->dlv, &cur);
	if (mrc != 0)
		return fbxs_read_err(mrc);
	put_be64(idb, from);
	k.mv_size = 8;
	k.mv_data = idb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && (limit == 0 || n < limit)) {
		struct fbx_delivery d;
		uint64_t id;

		if (k.mv_size != 8) {
			rc = FBX_ECORRUPT;
			goto out;
		}
		id = get_be64(k.mv_data);
		if (id >= to)
			break;
		rc = dlv_decode(id, &v, &d);
		if (rc != FBX_OK)
			goto out;
		n++;
		if (fn(arg, &d) != 0)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = fbxs_read_err(mrc);
		goto out;
	}
	rc = FBX_OK;
out:
	mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_dlv_set_state(fbx_txn *t, uint64_t id, int state, uint16_t code,
    int64_t at_ms, int attempt, int *old_state, struct fbx_delivery *out)
{
	return fbx_store_dlv_transition(
	    t, id, ~0u, state, code, at_ms, attempt, old_state, out);
}

int
fbx_store_dlv_transition(fbx_txn *t, uint64_t id, unsigned from_mask,
    int state, uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_delivery *out)
{
	struct fbx_delivery d;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t idb[8], rec[DLV_REC_MAX];
	size_t len, old_len;
	int prev, rc, mrc;

	TXN_WRITE_CHECK(t);
	if (state < 0 || state > UINT8_MAX)
		return FBX_EINVALID;
	DLV_NEW_FLUSH(t);
	rc = dlv_cursor(t, &cur);
	if (rc != FBX_OK)
		return rc;
	put_be64(idb, id);
	k.mv_size = 8;
	k.mv_data = idb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET);
	if (mrc != 0)
		return fbxs_read_err(mrc);
	rc = dlv_decode(id, &v, &d);
	if (rc != FBX_OK)
		return rc;
	old_len = v.mv_size;
	prev = d.state;
	if (prev >= 32 || !(from_mask & (1u << prev))) {
		/* not a transition the caller allows: nothing written */
		if (old_state != NULL)
			*old_state = prev;
		return FBX_ESTATE;
	}
	if (d.nhist == FBX_HIST_MAX) {
		/* Keep the first entry (creation), drop the oldest after. */
		memmove(&d.hist[1], &d.hist[2],
		    (FBX_HIST_MAX - 2) * sizeof(d.hist[0]));
		d.nhist--;
	}
	d.hist[d.nhist].state = (uint8_t)state;
	d.hist[d.nhist].code = code;
	d.hist[d.nhist].at_ms = at_ms;
	d.nhist++;
	d.state = (uint8_t)state;
	d.code = code;
	d.updated_ms = at_ms;
	if (attempt)
		d.attempts++;
	/* Never shrink: same size means LMDB rewrites it in place. */
	rc = dlv_encode(&d, old_len, rec, sizeof(rec), &len);
	if (rc != FBX_OK)
		return rc;
	/* MDB_CURRENT on the positioned cursor: no second tree search, and
	 * LMDB overwrites in place when the size is unchanged. */
	v.mv_size = len;
	v.mv_data = rec;
	mrc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
	if (mrc != 0)
		return fbxs_txn_fail(t, mrc);
	if (old_state != NULL)
		*old_state = prev;
	if (out != NULL)
		*out = d;
	return FBX_OK;
}

/* dlv_seek - position the cached cursor on id. Moves of a batch come in
 * ascending order (a dispatch round, a RESULTS batch): when the cursor
 * sits on the id before, one step replaces the tree search. The key the
 * step lands on is checked, so a cursor moved elsewhere only costs the
 * search it would have cost anyway. */
static int
dlv_seek(MDB_cursor *cur, uint64_t id, uint8_t idb[8], MDB_val *k,
    MDB_val *v)
{
	int mrc;

	if (id > 0 &&
	    mdb_cursor_get(cur, k, v, MDB_GET_CURRENT) == 0 &&
	    k->mv_size == 8 && get_be64(k->mv_data) == id - 1) {
		mrc = mdb_cursor_get(cur, k, v, MDB_NEXT);
		if (mrc == 0 && k->mv_size == 8 && get_be64(k->mv_data) == id)
			return 0;
	}
	put_be64(idb, id);
	k->mv_size = 8;
	k->mv_data = idb;
	return mdb_cursor_get(cur, k, v, MDB_SET);
}

/* dlv_step_bytes - the common move done on the stored bytes of one v1
 * record: the history gains one entry at its end, the head its new state,
 * code and attempts, updated_ms becomes at_ms. The output is byte for byte
 * what dlv_encode(decoded record after the move, old length) gives:
 * the device and the earlier history entries are copied as they are.
 * Checks what dlv_decode checks.
 * @return FBX_OK (rec/len, head, *old), FBX_ESTATE (*old found),
 * FBX_ECORRUPT, or 1: the history is full, use the general path. */
static int
dlv_step_bytes(uint64_t id, const MDB_val *v, unsigned from_mask,
    int state, uint16_t code, int64_t at_ms, int attempt, uint8_t *rec,
    size_t cap, size_t *len, int *old, struct fbx_dlv_head *head)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	struct wr w = { rec, rec + cap, 0 };
	const uint8_t *dev, *h0, *h1;
	uint64_t c, att;
	unsigned st, nh, dlen;
	int64_t prev = 0;
	size_t n, min_len = v->mv_size;

	if (rd_u8(&r) != DLV_V1)
		return FBX_ECORRUPT;
	st = rd_u8(&r);
	nh = rd_u8(&r);
	c = rd_uv(&r);
	att = rd_uv(&r);
	dlen = rd_u8(&r);
	if (r.bad || nh > FBX_HIST_MAX || c > UINT16_MAX ||
	    att > UINT32_MAX || dlen > FBX_ID_MAX ||
	    (size_t)(r.end - r.p) < dlen)
		return FBX_ECORRUPT;
	dev = r.p;
	if (memchr(dev, '\0', dlen) != NULL)
		return FBX_ECORRUPT;
	r.p += dlen;
	h0 = r.p;
	for (unsigned i = 0; i < nh; i++) {
		unsigned s = rd_u8(&r);
		if (s & 0x80) {
			if (rd_uv(&r) > UINT16_MAX)
				r.bad = 1;
		}
		prev = rd_delta(&r, prev);
	}
	h1 = r.p;
	head->updated_ms = rd_delta(&r, prev);
	if (r.bad)
		return FBX_ECORRUPT;
	for (; r.p < r.end; r.p++) {
		if (*r.p != 0)
			return FBX_ECORRUPT;
	}
	head->id = id;
	head->state = (uint8_t)st;
	head->code = (uint16_t)c;
	head->attempts = (uint32_t)att;
	memcpy(head->device, dev, dlen);
	head->device[dlen] = '\0';
	*old = (int)st;
	if (st >= 32 || !(from_mask & (1u << st)))
		return FBX_ESTATE;
	if (nh == FBX_HIST_MAX || state >= 0x80)
		return 1;
	if (attempt)
		att++;
	if (att > UINT32_MAX)
		return 1;
	wr_u8(&w, DLV_V1);
	wr_u8(&w, (unsigned)state);
	wr_u8(&w, nh + 1);
	wr_uv(&w, code);
	wr_uv(&w, att);
	wr_u8(&w, dlen);
	wr_bytes(&w, dev, dlen);
	wr_bytes(&w, h0, (size_t)(h1 - h0));
	wr_u8(&w, (unsigned)state | (code != 0 ? 0x80u : 0));
	if (code != 0)
		wr_uv(&w, code);
	wr_delta(&w, at_ms, prev);
	wr_delta(&w, at_ms, at_ms);
	if (w.bad)
		return 1;
	n = (size_t)(w.p - rec);
	if (min_len > cap)
		min_len = cap;
	if (n < min_len) {
		memset(rec + n, 0, min_len - n);
		n = min_len;
	}
	*len = n;
	head->state = (uint8_t)state;
	head->code = code;
	head->attempts = (uint32_t)att;
	head->updated_ms = at_ms;
	return FBX_OK;
}

int
fbx_store_dlv_step(fbx_txn *t, uint64_t id, unsigned from_mask, int state,
    uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_dlv_head *out)
{
	struct fbx_dlv_head h;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t idb[8], rec[DLV_REC_MAX];
	size_t len = 0;
	int prev = FBX_D_NONE, rc, mrc;

	TXN_WRITE_CHECK(t);
	if (state < 0 || state > UINT8_MAX)
		return FBX_EINVALID;
	if (t->nnw > 0) {
		rc = dlv_new_step(t, id, from_mask, state, code, at_ms,
		    attempt, old_state, out);
		if (rc != 1)
			return rc;
	}
	rc = dlv_cursor(t, &cur);
	if (rc != FBX_OK)
		return rc;
	mrc = dlv_seek(cur, id, idb, &k, &v);
	if (mrc != 0)
		return fbxs_read_err(mrc);
	rc = dlv_step_bytes(id, &v, from_mask, state, code, at_ms, attempt,
	    rec, sizeof(rec), &len, &prev, &h);
	if (rc == 1) {
		/* a full history: the general path drops its oldest entry */
		struct fbx_delivery d;
		rc = fbx_store_dlv_transition(t, id, from_mask, state, code,
		    at_ms, attempt, old_state, &d);
		if (rc == FBX_OK && out != NULL) {
			out->id = d.id;
			out->state = d.state;
			out->code = d.code;
			out->attempts = d.attempts;
			out->updated_ms = d.updated_ms;
			memcpy(out->device, d.device, sizeof(out->device));
		}
		return rc;
	}
	if (rc == FBX_ESTATE && old_state != NULL)
		*old_state = prev;
	if (rc != FBX_OK)
		return rc;
	/* a step leaves k in the page, and a record that grows is deleted
	 * and added again under k: it must not point into the page */
	put_be64(idb, id);
	k.mv_size = 8;
	k.mv_data = idb;
	v.mv_size = len;
	v.mv_data = rec;
	mrc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
	if (mrc != 0)
		return fbxs_txn_fail(t, mrc);
	if (old_state != NULL)
		*old_state = prev;
	if (out != NULL)
		*out = h;
	return FBX_OK;
}

/* dlv_write - put one encoded delivery record; appended (no tree search)
 * when its id is above every id of the table. */
static int
dlv_write(fbx_txn *t, uint64_t id, uint8_t *rec, size_t len)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t idb[8];
	unsigned flags = 0;
	int rc, mrc;

	rc = dlv_cursor(t, &cur);
	if (rc != FBX_OK)
		return rc;
	if (!t->dlv_last_known) {
		mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (mrc == 0 && k.mv_size == 8)
			t->dlv_last = get_be64(k.mv_data);
		else if (mrc == MDB_NOTFOUND)
			t->dlv_last = 0;
		else
			return mrc == 0 ? FBX_ECORRUPT : fbxs_read_err(mrc);
		t->dlv_last_known = 1;
	}
	/* Deliveries are created in id order: appending skips the tree
	 * search and fills pages completely. */
	if (id > t->dlv_last)
		flags = MDB_APPEND;
	put_be64(idb, id);
	k.mv_size = 8;
	k.mv_data = idb;
	v.mv_size = len;
	v.mv_data = rec;
	mrc = mdb_cursor_put(cur, &k, &v, flags);
	if (mrc != 0)
		return fbxs_txn_fail(t, mrc);
	if (id > t->dlv_last)
		t->dlv_last = id;
	return FBX_OK;
}

/* dlv_new_encode - the record of a created delivery: what dlv_encode
 * writes for its one history entry (two when sent) with the spare bytes
 * of a new record; a sent one keeps the size of the record it would have
 * had when created and then moved, so both ways store the same bytes. */
static int
dlv_new_encode(const struct dlv_new *n, int sent, uint8_t *rec, size_t cap,
    size_t *len)
{
	struct wr w = { rec, rec + cap, 0 };
	size_t one, total;

	wr_u8(&w, DLV_V1);
	wr_u8(&w, sent ? FBX_D_SENT : n->state);
	wr_u8(&w, sent ? 2 : 1);
	wr_uv(&w, 0);
	wr_uv(&w, sent ? 1 : 0);
	wr_u8(&w, n->dlen);
	wr_bytes(&w, n->dev, n->dlen);
	wr_u8(&w, n->state);
	wr_delta(&w, n->at_ms, 0);
	/* the one-entry record ends with updated_ms's delta: one byte 0
	 * when updated_ms is the entry's time */
	one = (size_t)(w.p - rec) + 1;
	if (sent) {
		wr_u8(&w, FBX_D_SENT);
		wr_delta(&w, n->sent_ms, n->at_ms);
	}
	wr_u8(&w, 0);
	if (w.bad)
		return FBX_EINVALID;
	total = (size_t)(w.p - rec);
	if (total < one + DLV_PAD)
		total = one + DLV_PAD;
	if (total > cap)
		return FBX_EINVALID;
	memset(w.p, 0, total - (size_t)(w.p - rec));
	*len = total;
	return FBX_OK;
}

/* fbxs_dlv_new_flush - write the created deliveries t holds back, in the
 * order they were created (ascending ids are appended). */
int
fbxs_dlv_new_flush(fbx_txn *t)
{
	uint8_t rec[DLV_REC_MAX];
	size_t len, n = t->nnw;
	int rc = FBX_OK;

	t->nnw = 0;
	t->nwhint = 0;
	t->nw_unsorted = 0;
	for (size_t i = 0; i < n && rc == FBX_OK; i++) {
		const struct dlv_new *d = &t->nw[i];
		rc = dlv_new_encode(d, d->sent_ms != INT64_MIN, rec,
		    sizeof(rec), &len);
		if (rc == FBX_OK)
			rc = dlv_write(t, d->id, rec, len);
	}
	if (rc != FBX_OK && t->err == 0)
		t->err = rc; /* deliveries lost: the transaction is broken */
	return rc;
}

/* dlv_new_find - the created delivery id that t holds back, or NULL;
 * *flush when it may be held back but cannot be found cheaply. */
static struct dlv_new *
dlv_new_find(fbx_txn *t, uint64_t id, int *flush)
{
	size_t lo = 0, hi = t->nnw, h = t->nwhint;

	*flush = 0;
	if (h < t->nnw && t->nw[h].id == id)
		return &t->nw[h];
	if (h + 1 < t->nnw && t->nw[h + 1].id == id) {
		t->nwhint = h + 1;
		return &t->nw[h + 1];
	}
	if (t->nw_unsorted) {
		*flush = 1;
		return NULL;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->nw[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < t->nnw && t->nw[lo].id == id) {
		t->nwhint = lo;
		return &t->nw[lo];
	}
	return NULL;
}

/* dlv_new_step - fbx_store_dlv_step on a delivery created in this
 * transaction and not yet written. @return FBX_OK, FBX_ESTATE, or 1: not
 * held back (or a move the held-back form cannot take: it was written,
 * use the stored record). */
static int
dlv_new_step(fbx_txn *t, uint64_t id, unsigned from_mask, int state,
    uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_dlv_head *out)
{
	int flush, cur;
	struct dlv_new *n = dlv_new_find(t, id, &flush);

	if (n == NULL) {
		if (flush)
			DLV_NEW_FLUSH(t);
		return 1;
	}
	cur = n->sent_ms != INT64_MIN ? FBX_D_SENT : n->state;
	if (!(from_mask & (1u << cur))) {
		if (old_state != NULL)
			*old_state = cur;
		return FBX_ESTATE;
	}
	if (cur != FBX_D_QUEUED || state != FBX_D_SENT || code != 0 ||
	    !attempt) {
		DLV_NEW_FLUSH(t);
		return 1;
	}
	n->sent_ms = at_ms;
	if (old_state != NULL)
		*old_state = FBX_D_QUEUED;
	if (out != NULL) {
		out->id = id;
		out->state = FBX_D_SENT;
		out->code = 0;
		out->attempts = 1;
		out->updated_ms = at_ms;
		memcpy(out->device, n->dev, n->dlen);
		out->device[n->dlen] = '\0';
	}
	return FBX_OK;
}

int
fbx_store_dlv_create(fbx_txn *t, uint64_t id, int state, const char *dev,
    size_t dev_len, int64_t at_ms, int sent)
{
	struct dlv_new *n;

	TXN_WRITE_CHECK(t);
	if (id == 0 || dev == NULL || dev_len == 0 || dev_len > FBX_ID_MAX ||
	    state <= FBX_D_NONE || state >= 0x80 ||
	    (sent && state != FBX_D_QUEUED) ||
	    memchr(dev, '\0', dev_len) != NULL)
		return FBX_EINVALID;
	if (t->nnw == t->nwcap) {
		size_t ncap = t->nwcap ? t->nwcap * 2 : 1024;
		struct dlv_new *nw = NULL;
		if (ncap <= DLV_NEW_MAX)
			nw = realloc(t->nw, ncap * sizeof(*nw));
		if (nw != NULL) {
			t->nw = nw;
			t->nwcap = ncap;
		} else {
			/* at the cap (or no memory): write them now */
			DLV_NEW_FLUSH(t);
		}
	}
	if (t->nnw == t->nwcap) {
		/* not even one held back: write it at once */
		struct dlv_new one;
		uint8_t rec[DLV_REC_MAX];
		size_t len;
		int rc;
		memset(&one, 0, sizeof(one));
		one.id = id;
		one.at_ms = at_ms;
		one.state = (uint8_t)state;
		one.dlen = (uint8_t)dev_len;
		memcpy(one.dev, dev, dev_len);
		one.sent_ms = at_ms;
		rc = dlv_new_encode(&one, sent, rec, sizeof(rec), &len);
		return rc == FBX_OK ? dlv_write(t, id, rec, len) : rc;
	}
	if (t->nnw > 0 && t->nw[t->nnw - 1].id >= id)
		t->nw_unsorted = 1;
	n = &t->nw[t->nnw++];
	n->id = id;
	n->at_ms = at_ms;
	n->sent_ms = sent ? at_ms : INT64_MIN;
	n->state = (uint8_t)state;
	n->dlen = (uint8_t)dev_len;
	memcpy(n->dev, dev, dev_len);
	return FBX_OK;
}

/* fbxs_dlv_new_hand_up - a child about to commit: make room in its
 * parent for the deliveries it holds back, so they go up with the commit
 * instead of being written. @return 1 if they can go up, 0 if they must
 * be written (a top-level transaction, or no memory). */
int
fbxs_dlv_new_hand_up(fbx_txn *t)
{
	fbx_txn *p = t->parent;
	size_t need;

	if (p == NULL)
		return 0;
	need = p->nnw + t->nnw;
	if (need > DLV_NEW_MAX)
		return 0;
	if (need > p->nwcap) {
		struct dlv_new *nw = realloc(p->nw, need * sizeof(*nw));
		if (nw == NULL)
			return 0;
		p->nw = nw;
		p->nwcap = need;
	}
	return 1;
}

/* ---- offline index ---------------------------------------------------- */

static int
pend_key(uint8_t *k, const char *org, const char *device, size_t *len)
{
	size_t on, dn, n;

	if (id_len(org, &on) != FBX_OK || id_len(device, &dn) != FBX_OK)
		return FBX_EINVALID;
	n = key_cat(k, 0, org, on, 1);
	n = key_cat(k, n, device, dn, 1);
	*len = n;
	return FBX_OK;
}

int
fbx_store_pend_add(
    fbx_txn *t, const char *org, const char *device, uint64_t dlv_id)
{
	uint8_t key[KEY_MAX];
	size_t n;

	TXN_WRITE_CHECK(t);
	if (pend_key(key, org, device, &n) != FBX_OK)
		return FBX_EINVALID;
	put_be64(key + n, dlv_id);
	return fbxs_put_empty(t, t->st->pend, key, n + 8);
}

int
fbx_store_pend_del(
    fbx_txn *t, const char *org, const char *device, uint64_t dlv_id)
{
	uint8_t key[KEY_MAX];
	MDB_val k;
	size_t n;
	int mrc;

	TXN_WRITE_CHECK(t);
	if (pend_key(key, org, device, &n) != FBX_OK)
		return FBX_EINVALID;
	put_be64(key + n, dlv_id);
	k.mv_size = n + 8;
	k.mv_data = key;
	mrc = mdb_del(t->txn, t->st->pend, &k, NULL);
	if (mrc == MDB_NOTFOUND)
		return FBX_ENOT_FOUND;
	if (mrc != 0)
		return fbxs_txn_fail(t, mrc);
	return FBX_OK;
}

int
fbx_store_pend_list(fbx_txn *t, const char *org, const char *device,
    fbx_id_fn fn, void *arg)
{
	uint8_t key[KEY_MAX];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t n;
	int rc, mrc;

	TXN_READ_CHECK(t);
	if (fn == NULL || pend_key(key, org, device, &n) != FBX_OK)
		return FBX_EINVALID;
	mrc = mdb_cursor_open(t->txn, t->st->pend, &cur);
	if (mrc != 0)
		return fbxs_read_err(mrc);
	k.mv_size = n;
	k.mv_data = key;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0) {
		if (!has_prefix(&k, key, n))
			break;
		if (k.mv_size != n + 8) {
			rc = FBX_ECORRUPT;
			goto out;
		}
		if (fn(arg, get_be64((const uint8_t *)k.mv_data + n)) != 0)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = fbxs_read_err(mrc);
		goto out;
	}
	rc = FBX_OK;
out:
	mdb_cursor_close(cur);
	return rc;
}

/* ---- retention ---------------------------------------------------------- */

int
fbx_store_dlv_delete_range(fbx_txn *t, uint64_t from, uint64_t to,
    uint32_t limit, uint32_t *deleted)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	uint32_t n = 0;
	int mrc, rc = FBX_OK;

	if (t == NULL || deleted == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	if (!t->write)
		return FBX_EINVALID;
	DLV_NEW_FLUSH(t);
	if (mdb_cursor_open(t->txn, t->st->dlv, &cur) != 0)
		return FBX_ESTORAGE;
	put_be64(kb, from);
	k.mv_size = 8;
	k.mv_data = kb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && (limit == 0 || n < limit)) {
		if (k.mv_size != 8 || get_be64(k.mv_data) >= to)
			break;
		mrc = mdb_cursor_del(cur, 0);
		if (mrc != 0)
			break;
		n++;
		/* after a delete the cursor already rests on the next item;
		 * MDB_NEXT returns that one (LMDB's C_DEL rule) */
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND)
		rc = fbxs_txn_fail(t, mrc);
	mdb_cursor_close(cur);
	/* the cached append cursor may point at a deleted key */
	t->dlv_last_known = 0;
	*deleted = n;
	return rc;
}
