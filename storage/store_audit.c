/*
 * store_audit.c: the audit log: its records by sequence number, the
 * marks of the last verification and anchor, and pruning by retention
 * (with the audit_time entries that only covered pruned records). The
 * records' indexes and the audit query are store_ix.c's. Keys and values
 * follow the schema at the top of store.c; the LMDB calls go through
 * store_pg.h. Depends on store.c and store_ix.c (store_int.h).
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_store.h"
#include "store_pg.h" /* the LMDB calls below: LMDB or PostgreSQL */
#include "store_int.h"

#define AUDIT_MARK_LEN (1 + 8 + 32)

/* ---- audit log --------------------------------------------------------- */

int
fbx_store_audit_last(fbx_txn *t, uint64_t *seq, void *buf, size_t cap,
    size_t *len)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int mrc, rc = FBX_OK;

	if (t == NULL || seq == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	if (mdb_cursor_open(t->txn, t->st->audit, &cur) != 0)
		return FBX_ESTORAGE;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (mrc == MDB_NOTFOUND) {
		rc = FBX_ENOT_FOUND;
	} else if (mrc != 0) {
		rc = FBX_ESTORAGE;
	} else if (k.mv_size != 8 || (buf != NULL && v.mv_size > cap)) {
		/* no buffer: the sequence alone (the header says so) */
		rc = FBX_ECORRUPT;
	} else {
		*seq = get_be64(k.mv_data);
		if (buf != NULL)
			memcpy(buf, v.mv_data, v.mv_size);
		if (len != NULL)
			*len = v.mv_size;
	}
	mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_audit_get(
    fbx_txn *t, uint64_t seq, void *buf, size_t cap, size_t *len)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int mrc;

	if (t == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	put_be64(kb, seq);
	count_reads(t->st, 1);
	mrc = mdb_get(t->txn, t->st->audit, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return FBX_ENOT_FOUND;
	if (mrc != 0)
		return FBX_ESTORAGE;
	if (v.mv_size > cap)
		return FBX_ECORRUPT;
	memcpy(buf, v.mv_data, v.mv_size);
	*len = v.mv_size;
	return FBX_OK;
}

int
fbx_store_audit_put(fbx_txn *t, uint64_t seq, const void *rec, size_t len)
{
	struct audit_ix ix;
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v = { len, (void *)rec };
	int mrc;

	if (t == NULL || rec == NULL || len == 0 || len > FBX_KV_VAL_MAX ||
	    seq == 0)
		return FBX_EINVALID;
	TXN_WRITE_CHECK(t);
	if (fbxs_audit_parse(rec, len, &ix) != 0)
		return FBX_EINVALID;
	put_be64(kb, seq);
	mrc = mdb_put(t->txn, t->st->audit, &k, &v, MDB_APPEND);
	if (mrc == MDB_KEYEXIST)
		return FBX_EINVALID; /* not after the last: the chain is linear */
	if (mrc == 0)
		mrc = fbxs_audit_ix_time(t->txn, t->st, seq, ix.at_ms);
	if (mrc == 0 && t->st->ix_lag <= 1) {
		mrc = fbxs_ixw_unlag(t->txn, t->st, IXW_AUDIT, seq,
		    fbxs_audit_ix_catch);
		if (mrc == 0)
			mrc = fbxs_audit_ix_org(t->txn, t->st, seq, &ix);
	} else if (mrc == 0) {
		mrc = fbxs_ixw_lagging(t->txn, t->st, IXW_AUDIT, seq,
		    fbxs_audit_ix_catch);
	}
	return mrc == 0 ? FBX_OK : fbxs_txn_fail(t, mrc);
}

int
fbx_store_audit_scan(fbx_txn *t, uint64_t from, fbx_audit_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	uint64_t n = 0;
	int mrc, rc = FBX_OK;

	if (t == NULL || fn == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	if (mdb_cursor_open(t->txn, t->st->audit, &cur) != 0)
		return FBX_ESTORAGE;
	put_be64(kb, from);
	k.mv_size = 8;
	k.mv_data = kb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0) {
		if (k.mv_size != 8) {
			rc = FBX_ECORRUPT;
			break;
		}
		n++;
		if (fn(arg, get_be64(k.mv_data), v.mv_data, v.mv_size) != 0)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == FBX_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = FBX_ESTORAGE;
	mdb_cursor_close(cur);
	count_reads(t->st, n);
	return rc;
}

/* audit marks live in meta under these keys */
static const char *const audit_mark_key[] = { "audit_verified",
	"audit_anchor" };

int
fbx_store_audit_mark_get(fbx_txn *t, int kind, struct fbx_audit_mark *out)
{
	MDB_val k, v;
	struct rd r;
	struct fbx_audit_mark m;
	int mrc;

	if (t == NULL || out == NULL || kind < 0 || kind > FBX_AUDIT_ANCHOR)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	k.mv_size = strlen(audit_mark_key[kind]);
	k.mv_data = (void *)audit_mark_key[kind];
	mrc = mdb_get(t->txn, t->st->meta, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return FBX_ENOT_FOUND;
	if (mrc != 0)
		return FBX_ESTORAGE;
	r.p = v.mv_data;
	r.end = r.p + v.mv_size;
	r.bad = 0;
	if (v.mv_size != AUDIT_MARK_LEN || rd_u8(&r) != REC_V1)
		return FBX_ECORRUPT;
	m.seq = rd_le(&r, 8);
	memcpy(m.hash, r.p, 32);
	*out = m;
	return FBX_OK;
}

int
fbx_store_audit_mark_put(
    fbx_txn *t, int kind, const struct fbx_audit_mark *m)
{
	uint8_t b[AUDIT_MARK_LEN];
	struct wr w = { b, b + sizeof(b), 0 };
	MDB_val k, v = { sizeof(b), b };
	int mrc;

	if (t == NULL || m == NULL || kind < 0 || kind > FBX_AUDIT_ANCHOR ||
	    !t->write)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	wr_u8(&w, REC_V1);
	wr_le(&w, m->seq, 8);
	wr_bytes(&w, m->hash, 32);
	k.mv_size = strlen(audit_mark_key[kind]);
	k.mv_data = (void *)audit_mark_key[kind];
	mrc = mdb_put(t->txn, t->st->meta, &k, &v, 0);
	return mrc == 0 ? FBX_OK : fbxs_txn_fail(t, mrc);
}

int
fbx_store_audit_first(fbx_txn *t, uint64_t *seq)
{
	if (t == NULL || seq == NULL)
		return FBX_EINVALID;
	return fbxs_edge_key(t, t->st->audit, MDB_FIRST, seq);
}

/* audit_time_trim - drop the leading audit_time entries that only cover
 * pruned records: entry i covers [seq_i, seq_i+1), so it goes when the
 * next entry starts at or before last + 1. The last entry at or before
 * last + 1 stays: records after last may still have its running maximum.
 * @return an LMDB code. */
static int
audit_time_trim(fbx_txn *t, uint64_t last)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t ndel = 0, prev_ok = 0;
	int mrc;

	mrc = mdb_cursor_open(t->txn, t->st->audit_time, &cur);
	if (mrc != 0)
		return mrc;
	/* count first, then delete from the front */
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0) {
		const uint8_t *p = v.mv_data;
		uint64_t s = 0;
		if (v.mv_size != 8) {
			mrc = MDB_CORRUPTED;
			break;
		}
		for (int i = 0; i < 8; i++)
			s |= (uint64_t)p[i] << (8 * i);
		if (s > last + 1)
			break;
		if (prev_ok)
			ndel++; /* the entry before this one covers nothing */
		prev_ok = 1;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc == MDB_NOTFOUND)
		mrc = 0;
	for (uint64_t i = 0; mrc == 0 && i < ndel; i++) {
		mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		if (mrc == 0)
			mrc = mdb_cursor_del(cur, 0);
	}
	mdb_cursor_close(cur);
	return mrc;
}

int
fbx_store_audit_prune(
    fbx_txn *t, uint64_t last, uint32_t max, uint32_t *deleted)
{
	struct fbx_audit_mark anchor;
	struct audit_ix ix;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t kb[8], ko[KEY_MAX], ka[KEY_MAX];
	uint64_t first = 0;
	uint32_t n = 0;
	int mrc, rc;

	if (t == NULL || deleted == NULL || last == 0 || max == 0)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	if (!t->write)
		return FBX_EINVALID;
	/* the anchor: record `last` must be there and parse */
	put_be64(kb, last);
	k.mv_size = 8;
	k.mv_data = kb;
	mrc = mdb_get(t->txn, t->st->audit, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return FBX_EINVALID;
	if (mrc != 0)
		return FBX_ESTORAGE;
	if (fbxs_audit_parse(v.mv_data, v.mv_size, &ix) != 0)
		return FBX_ECORRUPT;
	anchor.seq = last;
	memcpy(anchor.hash, (const uint8_t *)v.mv_data + 1 + 32, 32);
	rc = fbx_store_audit_first(t, &first);
	if (rc != FBX_OK)
		return rc;
	if (last - first >= max)
		return FBX_EINVALID; /* more than the caller bounded */
	if (mdb_cursor_open(t->txn, t->st->audit, &cur) != 0)
		return FBX_ESTORAGE;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0) {
		size_t ol = 0, al = 0;
		if (k.mv_size != 8) {
			mrc = MDB_CORRUPTED;
			break;
		}
		if (get_be64(k.mv_data) > last)
			break;
		/* keys first: v is invalid after the first write */
		if (fbxs_audit_parse(v.mv_data, v.mv_size, &ix) == 0) {
			uint64_t seq = get_be64(k.mv_data);
			ol = audit_ix_key(ko, ix.org, ix.olen, NULL, 0, seq);
			al = audit_ix_key(ka, ix.org, ix.olen, ix.actor,
			    ix.alen, seq);
		}
		if (ol != 0) {
			MDB_val ik = { ol, ko };
			mrc = mdb_del(t->txn, t->st->audit_org, &ik, NULL);
			if (mrc == 0 || mrc == MDB_NOTFOUND) {
				ik.mv_size = al;
				ik.mv_data = ka;
				mrc = mdb_del(
				    t->txn, t->st->audit_actor, &ik, NULL);
			}
			if (mrc != 0 && mrc != MDB_NOTFOUND)
				break;
		}
		mrc = mdb_cursor_del(cur, 0);
		if (mrc != 0)
			break;
		n++;
		/* the cursor rests on the next item (LMDB's C_DEL rule) */
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (mrc == MDB_NOTFOUND)
		mrc = 0;
	if (mrc == 0)
		mrc = audit_time_trim(t, last);
	if (mrc != 0)
		return fbxs_txn_fail(t, mrc);
	rc = fbx_store_audit_mark_put(t, FBX_AUDIT_ANCHOR, &anchor);
	if (rc != FBX_OK)
		return rc;
	*deleted = n;
	return FBX_OK;
}
