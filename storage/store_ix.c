/*
 * store_ix.c: the store's indexes that are not simply written with their
 * record: the deferred per-organisation indexes (cmd_org, audit_org,
 * audit_actor: their marks and catch-up), the audit indexes (an audit
 * record's indexed fields, its audit_org, audit_actor and audit_time
 * entries) and the audit query that reads them merged with the records
 * not indexed yet (fbx_store_audit_query, fbx_store_audit_time_seq).
 * store_cmd.c and store_audit.c write the records and call in here
 * (store_int.h); the keys and values follow the schema at the top of
 * store.c. The LMDB calls below go through store_pg.h like the other
 * files', so all of this runs on PostgreSQL too.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_store.h"
#include "store_pg.h" /* the LMDB calls below: LMDB or PostgreSQL */
#include "store_int.h"

#define AUDIT_V1 1
#define AUDIT_FIX (1 + 32 + 32 + 8) /* ver, prev, hash, at_ms */

/* the deferred indexes' marks in meta, by IXW_* */
const char *const fbxs_ixw_key[] = { "ixw_cmd", "ixw_audit" };

/* ---- deferred indexes ------------------------------------------------
 *
 * cmd_org, audit_org and audit_actor have one insertion point per
 * organisation (and actor): written with each record, a commit of N
 * records from K organisations copies about K leaf pages of each, where
 * the record tables themselves grow at their ends. On LMDB they may lag
 * their table by up to st->ix_lag records: meta "ixw_cmd" / "ixw_audit"
 * (u64 LE) holds the last id / sequence whose entries are written, every
 * record after it has none, and the write that takes the lag past
 * ix_lag writes them all in its own transaction (then every leaf an
 * organisation's entries touch is copied once for up to ix_lag
 * records). Queries merge the records after the mark, read from the
 * table, with the index, so the lag is invisible to them. The mark is
 * part of the transaction: a crash or an abort leaves mark and entries
 * as they were committed together. No mark: everything is indexed (a
 * store written with ix_lag <= 1, or before deferred indexes). */

/* fbxs_ixw_get - the mark of index `which`. @param[out] present 0: no mark
 * (*wm left 0). @return an LMDB code */
int
fbxs_ixw_get(
    MDB_txn *txn, fbx_store *st, int which, uint64_t *wm, int *present)
{
	MDB_val k = { strlen(fbxs_ixw_key[which]),
	    (void *)fbxs_ixw_key[which] }, v;
	int mrc = mdb_get(txn, st->meta, &k, &v);

	*wm = 0;
	*present = 0;
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc != 0)
		return mrc;
	if (v.mv_size != 8)
		return MDB_CORRUPTED;
	for (int i = 0; i < 8; i++)
		*wm |= (uint64_t)((const uint8_t *)v.mv_data)[i] << (8 * i);
	*present = 1;
	return 0;
}

/* ixw_set - set the mark, or remove it (everything indexed) when
 * st->ix_lag <= 1. @return an LMDB code */
static int
ixw_set(MDB_txn *txn, fbx_store *st, int which, uint64_t wm)
{
	MDB_val k = { strlen(fbxs_ixw_key[which]),
	    (void *)fbxs_ixw_key[which] }, v;
	uint8_t b[8];
	int mrc;

	if (st->ix_lag <= 1) {
		mrc = mdb_del(txn, st->meta, &k, NULL);
		return mrc == MDB_NOTFOUND ? 0 : mrc;
	}
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(wm >> (8 * i));
	v.mv_size = 8;
	v.mv_data = b;
	return mdb_put(txn, st->meta, &k, &v, 0);
}

/* fbxs_ixw_lagging - after record `id` of index `which` was written without
 * its entries: write the entries of every record up to id when the lag
 * reaches st->ix_lag (catch(txn, st, mark, id) writes those after mark),
 * else make sure the mark is set (a store without one had everything
 * indexed, so the mark becomes id - 1). @return an LMDB code */
int
fbxs_ixw_lagging(MDB_txn *txn, fbx_store *st, int which, uint64_t id,
    int (*catch)(MDB_txn *, fbx_store *, uint64_t, uint64_t))
{
	uint64_t wm;
	int present, mrc;

	mrc = fbxs_ixw_get(txn, st, which, &wm, &present);
	if (mrc != 0)
		return mrc;
	if (present && id <= wm)
		return catch(txn, st, id - 1, id); /* an id below the mark
		    (the newest records were deleted and their ids used
		    again): indexed now, as the mark says */
	if (!present)
		wm = id - 1;
	if (id - wm >= st->ix_lag) {
		mrc = catch(txn, st, wm, id);
		return mrc != 0 ? mrc : ixw_set(txn, st, which, id);
	}
	return present ? 0 : ixw_set(txn, st, which, wm);
}

/* fbxs_ixw_unlag - with st->ix_lag <= 1, before record id's entries are
 * written with it: a mark left by an earlier open with a lag is caught
 * up (entries of the records before id) and removed, so no record is
 * indexed twice or skipped. @return an LMDB code */
int
fbxs_ixw_unlag(MDB_txn *txn, fbx_store *st, int which, uint64_t id,
    int (*catch)(MDB_txn *, fbx_store *, uint64_t, uint64_t))
{
	uint64_t wm;
	int present, mrc;

	if (fbxi_kv_is_pg(st->env))
		return 0; /* never lags there: no mark to read */
	mrc = fbxs_ixw_get(txn, st, which, &wm, &present);
	if (mrc != 0 || !present)
		return mrc;
	mrc = catch(txn, st, wm, id - 1);
	return mrc != 0 ? mrc : ixw_set(txn, st, which, 0);
}

/* ix_sink - the index entries of one catch-up, gathered and then written
 * in key order through one cursor per table. The records come in id
 * order, which scatters their entries over every organisation's range
 * (a descent from the root and a leaf out of cache for each); in key
 * order consecutive entries mostly land on the leaf the cursor is on,
 * which LMDB finds without a descent. */
struct ix_ent {
	const uint8_t *k; /* set from off once the buffer stops moving */
	size_t off;       /* key bytes, then value bytes, in buf */
	uint16_t klen;
	uint8_t vlen;
	uint8_t tab;      /* index into dbi[] */
};

struct ix_sink {
	MDB_dbi dbi[2];
	struct ix_ent *e;
	size_t n, cap;
	uint8_t *buf;
	size_t used, bcap;
};

/* ix_sink_add - @return 0 or ENOMEM */
static int
ix_sink_add(struct ix_sink *s, unsigned tab, const uint8_t *k, size_t klen,
    const uint8_t *v, size_t vlen)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 1024;
		struct ix_ent *ne = realloc(s->e, ncap * sizeof(*ne));
		if (ne == NULL)
			return ENOMEM;
		s->e = ne;
		s->cap = ncap;
	}
	if (s->bcap - s->used < klen + vlen) {
		size_t ncap = s->bcap ? 2 * s->bcap : 65536;
		uint8_t *nb;
		while (ncap - s->used < klen + vlen)
			ncap *= 2;
		nb = realloc(s->buf, ncap);
		if (nb == NULL)
			return ENOMEM;
		s->buf = nb;
		s->bcap = ncap;
	}
	s->e[s->n] = (struct ix_ent) { NULL, s->used, (uint16_t)klen,
		(uint8_t)vlen, (uint8_t)tab };
	memcpy(s->buf + s->used, k, klen);
	if (vlen > 0)
		memcpy(s->buf + s->used + klen, v, vlen);
	s->used += klen + vlen;
	s->n++;
	return 0;
}

/* ix_ent_cmp - table, then LMDB's default key order (bytes, then the
 * shorter first) */
static int
ix_ent_cmp(const void *pa, const void *pb)
{
	const struct ix_ent *a = pa, *b = pb;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c;

	if (a->tab != b->tab)
		return a->tab < b->tab ? -1 : 1;
	c = memcmp(a->k, b->k, n);
	if (c != 0)
		return c;
	return a->klen < b->klen ? -1 : a->klen > b->klen;
}

/* ix_sink_flush - write the gathered entries. @return an LMDB code */
static int
ix_sink_flush(MDB_txn *txn, fbx_store *st, struct ix_sink *s)
{
	MDB_cursor *cur = NULL;
	int mrc = 0, tab = -1;

	if (s->n == 0)
		return 0; /* every record of the range was deleted */
	for (size_t i = 0; i < s->n; i++)
		s->e[i].k = s->buf + s->e[i].off;
	qsort(s->e, s->n, sizeof(*s->e), ix_ent_cmp);
	for (size_t i = 0; i < s->n && mrc == 0; i++) {
		MDB_val k = { s->e[i].klen, (void *)s->e[i].k };
		MDB_val v = { s->e[i].vlen, (void *)(s->e[i].k + s->e[i].klen) };
		if (fbxi_kv_is_pg(st->env)) {
			mrc = mdb_put(txn, s->dbi[s->e[i].tab], &k, &v, 0);
			continue;
		}
		if (s->e[i].tab != tab) {
			if (cur != NULL)
				mdb_cursor_close(cur);
			cur = NULL;
			tab = s->e[i].tab;
			mrc = mdb_cursor_open(txn, s->dbi[tab], &cur);
			if (mrc != 0)
				break;
		}
		mrc = mdb_cursor_put(cur, &k, &v, 0);
	}
	if (cur != NULL)
		mdb_cursor_close(cur);
	return mrc;
}

/* ixw_walk - call one(record's id, record, sink) for each record of table
 * dbi with a key (u64) in (from, to], in key order, then write the
 * entries they gathered (the catch-up of a deferred index). @return an
 * LMDB code */
static int
ixw_walk(MDB_txn *txn, fbx_store *st, MDB_dbi dbi, uint64_t from,
    uint64_t to, MDB_dbi ix0, MDB_dbi ix1,
    int (*one)(uint64_t, const MDB_val *, struct ix_sink *))
{
	struct ix_sink sink = { { ix0, ix1 }, NULL, 0, 0, NULL, 0, 0 };
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	int mrc;

	if (from >= to)
		return 0;
	mrc = mdb_cursor_open(txn, dbi, &cur);
	if (mrc != 0)
		return mrc;
	put_be64(kb, from + 1);
	k.mv_size = 8;
	k.mv_data = kb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0) {
		uint64_t id;
		if (k.mv_size != 8) {
			mrc = MDB_CORRUPTED;
			break;
		}
		id = get_be64(k.mv_data);
		if (id > to)
			break;
		mrc = one(id, &v, &sink);
		if (mrc != 0)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (mrc == MDB_NOTFOUND)
		mrc = 0;
	if (mrc == 0)
		mrc = ix_sink_flush(txn, st, &sink);
	free(sink.e);
	free(sink.buf);
	return mrc;
}

/* cmd_ix_one - the cmd_org entry of command id (header v). */
static int
cmd_ix_one(uint64_t id, const MDB_val *v, struct ix_sink *sink)
{
	uint8_t key[KEY_MAX];
	const char *org;
	size_t olen;
	int64_t created;

	if (fbxs_cmd_hdr_org(v, &org, &olen, &created) != 0)
		return MDB_CORRUPTED;
	return ix_sink_add(sink, 0, key,
	    cmd_org_key(key, org, olen, created, id), NULL, 0);
}

/* fbxs_cmd_ix_catch - write the cmd_org entries of commands (from, to]. */
int
fbxs_cmd_ix_catch(MDB_txn *txn, fbx_store *st, uint64_t from, uint64_t to)
{
	return ixw_walk(txn, st, st->cmd, from, to, st->cmd_org, st->cmd_org,
	    cmd_ix_one);
}

/* ---- audit indexes ------------------------------------------------------ */

/* fbxs_audit_parse - check an audit record v1 from end to end and find its
 * indexed fields. @return 0, or -1 when it does not parse. */
int
fbxs_audit_parse(const void *rec, size_t len, struct audit_ix *ix)
{
	struct rd r = { rec, (const uint8_t *)rec + len, 0 };
	const char *s[3];
	size_t n[3];

	if (rec == NULL || len < AUDIT_FIX + 3 + 4 || rd_u8(&r) != AUDIT_V1)
		return -1;
	r.p += 64; /* prev, hash */
	ix->at_ms = rd_i64(&r);
	for (int i = 0; i < 3; i++) {
		n[i] = rd_u8(&r);
		s[i] = (const char *)r.p;
		if (r.bad || (size_t)(r.end - r.p) < n[i])
			return -1;
		r.p += n[i];
	}
	for (int i = 0; i < 2; i++) {
		size_t m = (size_t)rd_le(&r, 2);
		if (r.bad || (size_t)(r.end - r.p) < m)
			return -1;
		r.p += m;
	}
	if (r.bad || r.p != r.end || n[0] > FBX_ID_MAX || n[1] > FBX_ID_MAX ||
	    memchr(s[0], '\0', n[0]) != NULL ||
	    memchr(s[1], '\0', n[1]) != NULL)
		return -1;
	ix->org = s[0];
	ix->olen = n[0];
	ix->actor = s[1];
	ix->alen = n[1];
	return 0;
}

/* fbxs_audit_ix_org - the audit_org and audit_actor entries of record seq.
 * @return an LMDB code */
int
fbxs_audit_ix_org(MDB_txn *txn, fbx_store *st, uint64_t seq,
    const struct audit_ix *ix)
{
	uint8_t kb[KEY_MAX], sb[8];
	MDB_val k, v;
	int mrc;

	for (int i = 0; i < 8; i++)
		sb[i] = (uint8_t)((uint64_t)ix->at_ms >> (8 * i));
	v.mv_size = 8;
	v.mv_data = sb;
	k.mv_data = kb;
	k.mv_size = audit_ix_key(kb, ix->org, ix->olen, NULL, 0, seq);
	mrc = mdb_put(txn, st->audit_org, &k, &v, 0);
	if (mrc != 0)
		return mrc;
	k.mv_size = audit_ix_key(kb, ix->org, ix->olen, ix->actor, ix->alen,
	    seq);
	v.mv_size = 8;
	v.mv_data = sb;
	return mdb_put(txn, st->audit_actor, &k, &v, 0);
}

/* fbxs_audit_ix_time - the audit_time entry of record seq, if its time
 * raises the running maximum. @return an LMDB code */
int
fbxs_audit_ix_time(MDB_txn *txn, fbx_store *st, uint64_t seq, int64_t at_ms)
{
	MDB_cursor *cur = NULL;
	uint8_t tb[8], sb[8];
	MDB_val k, v;
	int mrc;

	mrc = mdb_cursor_open(txn, st->audit_time, &cur);
	if (mrc != 0)
		return mrc;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (mrc == 0 && k.mv_size != 8)
		mrc = MDB_CORRUPTED;
	if (mrc == MDB_NOTFOUND ||
	    (mrc == 0 && get_be64(k.mv_data) < time_key(at_ms))) {
		put_be64(tb, time_key(at_ms));
		for (int i = 0; i < 8; i++)
			sb[i] = (uint8_t)(seq >> (8 * i));
		k.mv_size = 8;
		k.mv_data = tb;
		v.mv_size = 8;
		v.mv_data = sb;
		mrc = mdb_cursor_put(cur, &k, &v, MDB_APPEND);
	}
	mdb_cursor_close(cur);
	return mrc;
}

/* fbxs_audit_index_add - every index entry of record seq (the upgrade from
 * schema 1). @return an LMDB code, or AUDIT_BADREC when the record does
 * not parse. */
int
fbxs_audit_index_add(
    MDB_txn *txn, fbx_store *st, uint64_t seq, const void *rec, size_t len)
{
	struct audit_ix ix;
	int mrc;

	if (fbxs_audit_parse(rec, len, &ix) != 0)
		return AUDIT_BADREC;
	mrc = fbxs_audit_ix_org(txn, st, seq, &ix);
	return mrc != 0 ? mrc : fbxs_audit_ix_time(txn, st, seq, ix.at_ms);
}

/* audit_ix_one - the audit_org and audit_actor entries of record seq. */
static int
audit_ix_one(uint64_t seq, const MDB_val *v, struct ix_sink *sink)
{
	struct audit_ix ix;
	uint8_t kb[KEY_MAX], sb[8];
	int mrc;

	if (fbxs_audit_parse(v->mv_data, v->mv_size, &ix) != 0)
		return MDB_CORRUPTED;
	for (int i = 0; i < 8; i++)
		sb[i] = (uint8_t)((uint64_t)ix.at_ms >> (8 * i));
	mrc = ix_sink_add(sink, 0, kb,
	    audit_ix_key(kb, ix.org, ix.olen, NULL, 0, seq), sb, 8);
	if (mrc != 0)
		return mrc;
	return ix_sink_add(sink, 1, kb,
	    audit_ix_key(kb, ix.org, ix.olen, ix.actor, ix.alen, seq), sb, 8);
}

/* fbxs_audit_ix_catch - the audit_org and audit_actor entries of records
 * (from, to] (see "deferred indexes"). @return an LMDB code */
int
fbxs_audit_ix_catch(MDB_txn *txn, fbx_store *st, uint64_t from, uint64_t to)
{
	return ixw_walk(txn, st, st->audit, from, to, st->audit_org,
	    st->audit_actor, audit_ix_one);
}

/* ---- audit query -------------------------------------------------------- */

/* One index stream of a query: the entries under a key prefix, in
 * sequence order. */
struct ix_stream {
	MDB_cursor *cur;
	uint8_t pfx[KEY_MAX];
	size_t plen;
	int live;
	uint64_t seq;
	int64_t at_ms;
};

/* The records after the audit_org mark (no index entry yet) a query
 * selects, read from the log itself in sequence order: at most
 * st->ix_lag records, all with sequences above every indexed one. */
struct ix_tail {
	MDB_cursor *cur;
	const char *org, *actor; /* actor NULL: any */
	size_t olen, alen;
	int star; /* the global records ("*") too */
	uint64_t hi; /* the window ends before this sequence */
	int live;
	uint64_t seq;
	int64_t at_ms;
	uint64_t passed; /* records read and not selected */
};

/* tail_take - from the cursor's record (mrc from the positioning call)
 * on, the first the query selects. @return FBX_OK or an error. */
static int
tail_take(struct ix_tail *tl, int mrc, MDB_val *k, MDB_val *v)
{
	tl->live = 0;
	while (mrc == 0) {
		struct audit_ix ix;
		if (k->mv_size != 8 ||
		    fbxs_audit_parse(v->mv_data, v->mv_size, &ix) != 0)
			return FBX_ECORRUPT;
		if (get_be64(k->mv_data) >= tl->hi)
			return FBX_OK; /* past the window */
		if (((ix.olen == tl->olen &&
		         memcmp(ix.org, tl->org, tl->olen) == 0) ||
		        (tl->star && ix.olen == 1 && ix.org[0] == '*')) &&
		    (tl->actor == NULL ||
		        (ix.alen == tl->alen &&
		            memcmp(ix.actor, tl->actor, tl->alen) == 0))) {
			tl->seq = get_be64(k->mv_data);
			tl->at_ms = ix.at_ms;
			tl->live = 1;
			return FBX_OK;
		}
		tl->passed++;
		mrc = mdb_cursor_get(tl->cur, k, v, MDB_NEXT);
	}
	return mrc == MDB_NOTFOUND ? FBX_OK : FBX_ESTORAGE;
}

/* tail_open - the tail of a query from sequence `from` on, if the
 * audit_org mark leaves one. */
static int
tail_open(fbx_txn *t, struct ix_tail *tl, const char *org,
    const char *actor, uint64_t from, uint64_t hi)
{
	MDB_val k, v;
	uint8_t kb[8];
	uint64_t wm;
	int present, mrc;

	if (fbxi_kv_is_pg(t->st->env))
		return FBX_OK; /* indexed at once there: no mark to read */
	mrc = fbxs_ixw_get(t->txn, t->st, IXW_AUDIT, &wm, &present);
	if (mrc != 0)
		return mrc == MDB_CORRUPTED ? FBX_ECORRUPT : FBX_ESTORAGE;
	if (!present)
		return FBX_OK;
	tl->org = org;
	tl->olen = strlen(org);
	tl->actor = actor;
	tl->alen = actor != NULL ? strlen(actor) : 0;
	tl->star = strcmp(org, "*") != 0;
	tl->hi = hi;
	if (mdb_cursor_open(t->txn, t->st->audit, &tl->cur) != 0) {
		tl->cur = NULL;
		return FBX_ESTORAGE;
	}
	put_be64(kb, from > wm + 1 ? from : wm + 1);
	k.mv_size = 8;
	k.mv_data = kb;
	return tail_take(tl, mdb_cursor_get(tl->cur, &k, &v, MDB_SET_RANGE),
	    &k, &v);
}

static int
tail_next(struct ix_tail *tl)
{
	MDB_val k, v;

	return tail_take(tl, mdb_cursor_get(tl->cur, &k, &v, MDB_NEXT), &k,
	    &v);
}

/* stream_take - adopt the cursor's entry (mrc from the positioning call)
 * if it is under the prefix. @return FBX_OK or an error. */
static int
stream_take(struct ix_stream *s, int mrc, const MDB_val *k, const MDB_val *v)
{
	const uint8_t *p;

	s->live = 0;
	if (mrc == MDB_NOTFOUND)
		return FBX_OK;
	if (mrc != 0)
		return FBX_ESTORAGE;
	if (!has_prefix(k, s->pfx, s->plen))
		return FBX_OK;
	if (k->mv_size != s->plen + 8 || v->mv_size != 8)
		return FBX_ECORRUPT;
	s->seq = get_be64((const uint8_t *)k->mv_data + s->plen);
	p = v->mv_data;
	s->at_ms = 0;
	for (int i = 0; i < 8; i++)
		s->at_ms |= (int64_t)((uint64_t)p[i] << (8 * i));
	s->live = 1;
	return FBX_OK;
}

static int
stream_open(MDB_txn *txn, MDB_dbi dbi, struct ix_stream *s, const char *org,
    const char *actor, uint64_t from)
{
	MDB_val k, v;
	uint8_t kb[KEY_MAX];
	size_t on = strlen(org), an = actor ? strlen(actor) : 0;

	s->plen = audit_ix_key(s->pfx, org, on, actor, an, 0) - 8;
	if (mdb_cursor_open(txn, dbi, &s->cur) != 0) {
		s->cur = NULL;
		return FBX_ESTORAGE;
	}
	memcpy(kb, s->pfx, s->plen);
	put_be64(kb + s->plen, from);
	k.mv_size = s->plen + 8;
	k.mv_data = kb;
	return stream_take(s, mdb_cursor_get(s->cur, &k, &v, MDB_SET_RANGE),
	    &k, &v);
}

static int
stream_next(struct ix_stream *s)
{
	MDB_val k, v;

	return stream_take(s, mdb_cursor_get(s->cur, &k, &v, MDB_NEXT), &k,
	    &v);
}

/* time_first_seq - the first sequence whose running maximum of at_ms is
 * at or after ms (every record before it is older than ms), or
 * UINT64_MAX when there is none. */
static int
time_first_seq(fbx_txn *t, int64_t ms, uint64_t *seq)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	int mrc, rc = FBX_OK;

	if (mdb_cursor_open(t->txn, t->st->audit_time, &cur) != 0)
		return FBX_ESTORAGE;
	put_be64(kb, time_key(ms));
	k.mv_size = 8;
	k.mv_data = kb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	count_reads(t->st, 1);
	if (mrc == MDB_NOTFOUND) {
		*seq = UINT64_MAX;
	} else if (mrc != 0) {
		rc = FBX_ESTORAGE;
	} else if (k.mv_size != 8 || v.mv_size != 8) {
		rc = FBX_ECORRUPT;
	} else {
		const uint8_t *p = v.mv_data;
		uint64_t s = 0;
		for (int i = 0; i < 8; i++)
			s |= (uint64_t)p[i] << (8 * i);
		*seq = s;
	}
	mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_audit_query(fbx_txn *t, const struct fbx_audit_query *q,
    fbx_audit_fn fn, void *arg, uint64_t *next_after)
{
	struct ix_stream s[2];
	struct ix_tail tl;
	uint64_t lo, hi = UINT64_MAX, last = 0, reads = 0, next = 0;
	MDB_dbi dbi;
	const char *actor;
	int ns, rc = FBX_OK;

	if (t == NULL || q == NULL || fn == NULL || next_after == NULL ||
	    q->org == NULL || q->org[0] == '\0' || !opt_ok(q->org) ||
	    (q->actor != NULL && !opt_ok(q->actor)) || q->max_reads == 0 ||
	    q->after == UINT64_MAX)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	memset(s, 0, sizeof(s));
	memset(&tl, 0, sizeof(tl));
	actor = q->actor != NULL && q->actor[0] != '\0' ? q->actor : NULL;
	dbi = actor != NULL ? t->st->audit_actor : t->st->audit_org;
	lo = q->after + 1;
	if (q->since_ms != 0) {
		uint64_t s0;
		rc = time_first_seq(t, q->since_ms, &s0);
		if (rc != FBX_OK)
			goto out;
		if (s0 > lo)
			lo = s0;
	}
	if (q->until_ms != 0) {
		rc = time_first_seq(t, q->until_ms, &hi);
		if (rc != FBX_OK)
			goto out;
	}
	if (lo >= hi)
		goto out; /* nothing in the window after the cursor */
	/* the organisation's records and the global ones, merged by seq */
	ns = strcmp(q->org, "*") == 0 ? 1 : 2;
	rc = stream_open(t->txn, dbi, &s[0], q->org, actor, lo);
	if (rc == FBX_OK && ns == 2)
		rc = stream_open(t->txn, dbi, &s[1], "*", actor, lo);
	/* and the records no index entry covers yet (deferred indexes):
	 * their sequences are above every indexed one */
	if (rc == FBX_OK)
		rc = tail_open(t, &tl, q->org, actor, lo, hi);
	while (rc == FBX_OK) {
		struct ix_stream *c = NULL;
		uint64_t cseq;
		int64_t cat;
		for (int i = 0; i < ns; i++)
			if (s[i].live && (c == NULL || s[i].seq < c->seq))
				c = &s[i];
		if (c == NULL && !tl.live)
			break;
		cseq = c != NULL ? c->seq : tl.seq;
		cat = c != NULL ? c->at_ms : tl.at_ms;
		if (cseq >= hi)
			break; /* the window is exhausted */
		if (reads >= q->max_reads) {
			next = last; /* everything up to last was looked at */
			break;
		}
		reads++;
		last = cseq;
		if ((q->since_ms == 0 || cat >= q->since_ms) &&
		    (q->until_ms == 0 || cat < q->until_ms)) {
			uint8_t kb[8];
			MDB_val k = { 8, kb }, v;
			int mrc;
			put_be64(kb, cseq);
			reads++;
			mrc = mdb_get(t->txn, t->st->audit, &k, &v);
			if (mrc != 0) {
				/* an index entry without its record */
				rc = mrc == MDB_NOTFOUND ? FBX_ECORRUPT :
							   FBX_ESTORAGE;
				break;
			}
			if (fn(arg, cseq, v.mv_data, v.mv_size) != 0) {
				next = cseq - 1; /* offered again next time */
				break;
			}
		}
		rc = c != NULL ? stream_next(c) : tail_next(&tl);
	}
out:
	for (int i = 0; i < 2; i++)
		if (s[i].cur != NULL)
			mdb_cursor_close(s[i].cur);
	if (tl.cur != NULL)
		mdb_cursor_close(tl.cur);
	/* records of the tail passed over count as read, not against the
	 * call's bound (at most st->ix_lag of them) */
	count_reads(t->st, reads + tl.passed);
	if (rc == FBX_OK)
		*next_after = next;
	return rc;
}

int
fbx_store_audit_time_seq(fbx_txn *t, int64_t ms, uint64_t *seq)
{
	uint64_t s = 0;
	int rc;

	if (t == NULL || seq == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	rc = time_first_seq(t, ms, &s);
	if (rc == FBX_OK)
		*seq = s;
	return rc;
}
