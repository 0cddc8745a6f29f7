/*
 * store_int.h: private to storage/. What the store's files share:
 * store.c (environment, transactions, the writes every table uses),
 * store_cmd.c (command journal), store_dlv.c (deliveries), store_dev.c
 * (device registry), store_audit.c (audit log) and store_ix.c (the
 * deferred indexes, the audit indexes and the audit query that reads
 * them): the store and transaction structures, the byte encoding of
 * records and keys (static inline), and the functions one file calls in
 * another (fbxs_ prefix). It includes store_pg.h, so MDB_env, MDB_txn,
 * MDB_cursor and the mdb_* calls are the ones store_pg.c runs on LMDB or
 * PostgreSQL; the schema both follow is the reference comment at the
 * top of store.c.
 */
#ifndef FBXS_STORE_INT_H
#define FBXS_STORE_INT_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fbx_store.h"
#include "store_pg.h" /* the LMDB calls: LMDB or PostgreSQL */

/* Largest key: org \0 group \0 device. */
#define KEY_MAX (3 * (FBX_ID_MAX + 1) + 16)

struct fbx_store {
	MDB_env *env;
	MDB_dbi meta, cmd, cmd_body, cmd_org, cmd_active, idem, dlv, pend, dev,
	    grp, org, kv, audit, audit_org, audit_actor, audit_time;
	char *data_path; /* <dir>/data.mdb, for stat(2) */
	/* fbx_store_sync's own descriptor of data.mdb (-1 on PostgreSQL):
	 * Linux reports a failed write-back once per open file, so a sync
	 * on LMDB's descriptor could miss an error that a commit on the
	 * same descriptor consumed, or take one from it */
	int sync_fd;
	size_t map_size;
	size_t map_size_max;
	unsigned readers_cleared;
	uint64_t audit_upgraded; /* records indexed by the upgrade at open */
	/* deferred per-organisation indexes (LMDB): how many records
	 * cmd_org and audit_org/audit_actor may lag their tables before
	 * the next write catches them up; <= 1: written with each record
	 * (always on PostgreSQL). See "deferred indexes" in store_ix.c. */
	uint32_t ix_lag;
	atomic_uint_fast64_t audit_reads; /* audit entries read (stat) */
	atomic_int ntxn; /* open transactions of this process */
};

/* A delivery created in a write transaction and not yet written (see
 * fbx_store_dlv_create): QUEUED or PENDING at at_ms, and, unless sent_ms
 * is INT64_MIN, handed out (SENT, attempt 1) at sent_ms. */
struct dlv_new {
	uint64_t id;
	int64_t at_ms;
	int64_t sent_ms; /* INT64_MIN: not sent */
	uint8_t state;
	uint8_t dlen;
	char dev[FBX_ID_MAX];
};

struct fbx_txn {
	fbx_store *st;
	MDB_txn *txn;
	int write;
	int err;            /* non-zero once broken: returned by every call */
	MDB_cursor *dlv_cur; /* write txns: cached cursor on dlv */
	struct fbx_txn *parent; /* a child (nested) transaction's parent */
	int dlv_last_known;
	uint64_t dlv_last; /* largest dlv key in this txn (if known) */
	/* deliveries created and not yet written: a delivery created and
	 * sent in the same transaction is written once, as SENT. They are
	 * written in creation order before anything reads or rewrites the
	 * delivery table through this transaction, before a child starts,
	 * and at commit (a child's go to its parent). */
	struct dlv_new *nw;
	size_t nnw, nwcap, nwhint;
	int nw_unsorted; /* ids not ascending: no binary search */
};

/* ---- byte encoding ---------------------------------------------------- */

struct wr {
	uint8_t *p;
	uint8_t *end;
	int bad;
};

struct rd {
	const uint8_t *p;
	const uint8_t *end;
	int bad;
};

static inline void
wr_u8(struct wr *w, unsigned v)
{
	if (w->bad || w->p >= w->end) {
		w->bad = 1;
		return;
	}
	*w->p++ = (uint8_t)v;
}

static inline void
wr_le(struct wr *w, uint64_t v, int n)
{
	if (w->bad || w->end - w->p < n) {
		w->bad = 1;
		return;
	}
	for (int i = 0; i < n; i++)
		*w->p++ = (uint8_t)(v >> (8 * i));
}

static inline void
wr_bytes(struct wr *w, const void *b, size_t n)
{
	if (w->bad || (size_t)(w->end - w->p) < n) {
		w->bad = 1;
		return;
	}
	if (n > 0)
		memcpy(w->p, b, n);
	w->p += n;
}

/* wr_str - u8 length + bytes; s must be at most FBX_ID_MAX bytes. */
static inline void
wr_str(struct wr *w, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n >= cap || n > 255) {
		w->bad = 1;
		return;
	}
	wr_u8(w, (unsigned)n);
	wr_bytes(w, s, n);
}

static inline uint64_t
rd_le(struct rd *r, int n)
{
	uint64_t v = 0;

	if (r->bad || r->end - r->p < n) {
		r->bad = 1;
		return 0;
	}
	for (int i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static inline unsigned
rd_u8(struct rd *r)
{
	return (unsigned)rd_le(r, 1);
}

static inline int64_t
rd_i64(struct rd *r)
{
	return (int64_t)rd_le(r, 8);
}

/* rd_str - read a str into dst of capacity cap (NUL included). */
static inline void
rd_str(struct rd *r, char *dst, size_t cap)
{
	size_t n = rd_u8(r);

	if (r->bad || n >= cap || (size_t)(r->end - r->p) < n) {
		r->bad = 1;
		dst[0] = '\0';
		return;
	}
	memcpy(dst, r->p, n);
	dst[n] = '\0';
	if (memchr(dst, '\0', n) != NULL)
		r->bad = 1;
	r->p += n;
}

static inline void
put_be64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t
get_be64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

static inline uint64_t
time_key(int64_t ms)
{
	return (uint64_t)ms ^ ((uint64_t)1 << 63);
}

static inline int64_t
time_unkey(uint64_t k)
{
	return (int64_t)(k ^ ((uint64_t)1 << 63));
}

/* id_len - length of an identifier used in a key: 1..FBX_ID_MAX bytes. */
static inline int
id_len(const char *s, size_t *n)
{
	size_t l;

	if (s == NULL)
		return FBX_EINVALID;
	l = strnlen(s, FBX_ID_MAX + 1);
	if (l == 0 || l > FBX_ID_MAX)
		return FBX_EINVALID;
	*n = l;
	return FBX_OK;
}

/* opt_ok - an optional identifier field: 0..FBX_ID_MAX bytes. */
static inline int
opt_ok(const char *s)
{
	return strnlen(s, FBX_ID_MAX + 1) <= FBX_ID_MAX;
}

/* key_cat - append n bytes of s to k at off, then a NUL separator if sep;
 * returns the new length. Callers keep the total within KEY_MAX. */
static inline size_t
key_cat(uint8_t *k, size_t off, const char *s, size_t n, int sep)
{
	memcpy(k + off, s, n);
	off += n;
	if (sep)
		k[off++] = '\0';
	return off;
}

static inline int
has_prefix(const MDB_val *k, const uint8_t *pfx, size_t n)
{
	return k->mv_size >= n && memcmp(k->mv_data, pfx, n) == 0;
}

static inline int
key_eq(const MDB_val *k, const uint8_t *b, size_t n)
{
	return k->mv_size == n && memcmp(k->mv_data, b, n) == 0;
}

/* ---- index keys --------------------------------------------------------- */

/* cmd_org_key - org \0 time_key(created) id: a command's cmd_org key. */
static inline size_t
cmd_org_key(uint8_t *k, const char *org, size_t on, int64_t created,
    uint64_t id)
{
	size_t n = key_cat(k, 0, org, on, 1);

	put_be64(k + n, time_key(created));
	put_be64(k + n + 8, id);
	return n + 16;
}

/* audit_ix_key - org \0 [actor \0] seq; actor NULL leaves it out. */
static inline size_t
audit_ix_key(uint8_t *k, const char *org, size_t olen, const char *actor,
    size_t alen, uint64_t seq)
{
	size_t n = key_cat(k, 0, org, olen, 1);

	if (actor != NULL)
		n = key_cat(k, n, actor, alen, 1);
	put_be64(k + n, seq);
	return n + 8;
}

/* count_reads - audit entries read (fbx_store_stat's audit_reads). */
static inline void
count_reads(fbx_store *st, uint64_t n)
{
	atomic_fetch_add(&st->audit_reads, n);
}

/* ---- deferred indexes (store_ix.c) -------------------------------------- */

/* the deferred indexes' marks (see "deferred indexes" in store_ix.c):
 * meta keys, by index */
enum { IXW_CMD = 0, IXW_AUDIT = 1 };
extern const char *const fbxs_ixw_key[];

/* fbxs_ixw_get - the mark of index `which` (present 0: none).
 * @return an LMDB code */
int fbxs_ixw_get(
    MDB_txn *txn, fbx_store *st, int which, uint64_t *wm, int *present);
/* fbxs_ixw_lagging - record id of index `which` was written without its
 * entries: catch up when the lag reaches st->ix_lag, else keep the
 * mark. @return an LMDB code */
int fbxs_ixw_lagging(MDB_txn *txn, fbx_store *st, int which, uint64_t id,
    int (*catch)(MDB_txn *, fbx_store *, uint64_t, uint64_t));
/* fbxs_ixw_unlag - st->ix_lag <= 1: catch up and remove a mark left by
 * an earlier open before record id is indexed with itself.
 * @return an LMDB code */
int fbxs_ixw_unlag(MDB_txn *txn, fbx_store *st, int which, uint64_t id,
    int (*catch)(MDB_txn *, fbx_store *, uint64_t, uint64_t));
/* fbxs_cmd_ix_catch - the cmd_org entries of commands (from, to].
 * @return an LMDB code */
int fbxs_cmd_ix_catch(
    MDB_txn *txn, fbx_store *st, uint64_t from, uint64_t to);

/* ---- audit indexes (store_ix.c) ----------------------------------------- */

/* The fields of an audit record the indexes use; org and actor point into
 * the record and are not NUL-terminated. */
struct audit_ix {
	int64_t at_ms;
	const char *org, *actor;
	size_t olen, alen;
};

/* fbxs_audit_index_add's code for a record it cannot parse: neither an
 * errno (positive) nor an LMDB code (-30799..-30780). */
#define AUDIT_BADREC (-1)

/* fbxs_audit_parse - check an audit record v1 and find its indexed
 * fields. @return 0, or -1 when it does not parse. */
int fbxs_audit_parse(const void *rec, size_t len, struct audit_ix *ix);
/* fbxs_audit_ix_org - the audit_org and audit_actor entries of record
 * seq. @return an LMDB code */
int fbxs_audit_ix_org(MDB_txn *txn, fbx_store *st, uint64_t seq,
    const struct audit_ix *ix);
/* fbxs_audit_ix_time - the audit_time entry of record seq, if its time
 * raises the running maximum. @return an LMDB code */
int fbxs_audit_ix_time(
    MDB_txn *txn, fbx_store *st, uint64_t seq, int64_t at_ms);
/* fbxs_audit_index_add - every index entry of record seq (the upgrade
 * from schema 1). @return an LMDB code, or AUDIT_BADREC */
int fbxs_audit_index_add(
    MDB_txn *txn, fbx_store *st, uint64_t seq, const void *rec, size_t len);
/* fbxs_audit_ix_catch - the audit_org and audit_actor entries of records
 * (from, to]. @return an LMDB code */
int fbxs_audit_ix_catch(
    MDB_txn *txn, fbx_store *st, uint64_t from, uint64_t to);

/* ---- what every file of the store uses (store.c) ------------------------ */

/* record version byte of the records that have only one version so far
 * (device, organisation, command body, audit mark) */
#define REC_V1 1

/* Checks at the top of every call: a broken transaction repeats its
 * error; writing through a read transaction is a caller bug. */
#define TXN_READ_CHECK(t)                                                    \
	do {                                                                 \
		if ((t) == NULL)                                             \
			return FBX_EINVALID;                                   \
		if ((t)->err != 0)                                           \
			return (t)->err;                                     \
	} while (0)
#define TXN_WRITE_CHECK(t)                                                   \
	do {                                                                 \
		TXN_READ_CHECK(t);                                           \
		if (!(t)->write)                                             \
			return FBX_EINVALID;                                   \
	} while (0)

/* fbxs_txn_fail - mark t broken by a write error (LMDB code rc).
 * @return the fbx code, never FBX_OK, FBX_ENOT_FOUND or FBX_ECORRUPT */
int fbxs_txn_fail(fbx_txn *t, int rc);
/* fbxs_read_err - translate an LMDB error met while reading.
 * @return the fbx code, never FBX_OK */
int fbxs_read_err(int mrc);
/* fbxs_put_empty - put key with an empty value (an index entry).
 * @return FBX_OK or fbxs_txn_fail's code */
int fbxs_put_empty(fbx_txn *t, MDB_dbi dbi, const void *key, size_t klen);
/* fbxs_del_key - delete key; absence is fine.
 * @return FBX_OK or fbxs_txn_fail's code */
int fbxs_del_key(fbx_txn *t, MDB_dbi dbi, const void *key, size_t klen);
/* fbxs_edge_key - the first or last (op) 8-byte big-endian key of dbi.
 * @return FBX_OK, FBX_ENOT_FOUND (empty), FBX_ECORRUPT (another key
 * size), FBX_ESTORAGE, or the transaction's latched error */
int fbxs_edge_key(fbx_txn *t, MDB_dbi dbi, MDB_cursor_op op, uint64_t *out);

/* ---- deliveries held back (store_dlv.c) --------------------------------- */

/* fbxs_dlv_new_flush - write the deliveries t holds back, in creation
 * order. @return FBX_OK or a store error (t is then broken) */
int fbxs_dlv_new_flush(fbx_txn *t);
/* fbxs_dlv_new_hand_up - a child about to commit: make room in its
 * parent for the deliveries it holds back. @return 1 if they can go up,
 * 0 if they must be written (a top-level transaction, or no memory) */
int fbxs_dlv_new_hand_up(fbx_txn *t);

/* DLV_NEW_FLUSH - a call that reads or rewrites the delivery table
 * writes what t holds back first. */
#define DLV_NEW_FLUSH(t)                                                     \
	do {                                                                 \
		if ((t)->nnw > 0) {                                          \
			int frc_ = fbxs_dlv_new_flush(t);                    \
			if (frc_ != FBX_OK)                                  \
				return frc_;                                 \
		}                                                            \
	} while (0)

/* ---- command records (store_cmd.c) -------------------------------------- */

/* fbxs_cmd_hdr_org - the organisation (not NUL-terminated) and
 * created_ms of a command header. @return 0, or -1 when damaged */
int fbxs_cmd_hdr_org(const MDB_val *v, const char **org, size_t *olen,
    int64_t *created);

#endif
