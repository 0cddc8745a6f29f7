/*
 * store.c: the LMDB environment of fusebox: command journal, deliveries
 * with their state history, device registry, idempotency keys and the
 * indexes over them. Every record is a small hand-written little-endian
 * binary encoding with a leading version byte, decoded with bounds checks
 * so a damaged record gives FBX_ECORRUPT, never a crash. LMDB codes are
 * translated to fbx_err here and in store_ix.c, nowhere else.
 *
 * store_ix.c holds the deferred indexes (marks and catch-up), the audit
 * indexes and the audit query; store_int.h what the two files share
 * (structures, byte encoding, key helpers, the fbxs_ calls).
 *
 * Storage schema (schema version 3): this block is its reference.
 * Integers in keys are big-endian so byte order is numeric order; a signed
 * time in a key is stored as (u64)ms ^ 2^63 so negative times sort first.
 * "\0" is a NUL byte separating identifiers, which never contain one; it
 * makes prefix scans stop exactly at the organisation boundary ("a\0"
 * never matches "ab\0...").
 *
 *   meta        "schema"                        -> u32 schema version (3)
 *               "audit_verified"                -> audit mark: the last
 *               record `audit verify` found intact (its checkpoint)
 *               "audit_anchor"                  -> audit mark: the last
 *               record pruned by retention; the chain starts after it
 *               "audit_ix"                      -> u64 LE: while an
 *               upgrade from version 1 runs, the last record indexed
 *               "ixw_cmd", "ixw_audit"          -> u64 LE: the last
 *               command id / audit sequence with its cmd_org /
 *               audit_org + audit_actor entries written (LMDB; see
 *               "deferred indexes" in store_ix.c); absent: every
 *               record indexed
 *   cmd         id u64                          -> command header record
 *   cmd_body    id u64                          -> payload + device ids
 *               (written once by append, absent when both are empty;
 *               kept apart so rewriting state/counts stays cheap)
 *   cmd_org     org \0 created_ms u64 id u64    -> empty
 *   cmd_active  id u64                          -> empty (state != DONE)
 *   idem        org \0 idem_key                 -> u64 LE command id
 *   dlv         delivery id u64                 -> delivery record
 *   pend        org \0 device \0 dlv id u64     -> empty
 *   dev         org \0 device_id                -> device record
 *   grp         org \0 group \0 device_id       -> empty
 *   org         org                             -> org record
 *   audit       seq u64                         -> audit record (bytes
 *               the dispatcher hash-chains; appended, pruned only from
 *               the oldest end)
 *   audit_org   org \0 seq u64                  -> at_ms i64 LE
 *   audit_actor org \0 actor \0 seq u64         -> at_ms i64 LE
 *   audit_time  time_key(at_ms) u64             -> seq u64 LE: one entry
 *               each time the running maximum of at_ms over the log
 *               rises, with the first sequence that reached it. The
 *               running maximum never falls, so this index is sorted by
 *               time and by sequence at once and "the first record at or
 *               after T" is one seek, also after the clock stepped back
 *               (records written then sort by the maximum before them).
 *               Audit retention drops the leading entries that cover
 *               only pruned records (fbx_store_audit_prune).
 *   kv          namespace / org / name          -> engine-owned record
 *               (breakers, limits, rate caps, approvals: fixed-layout
 *               structs the dispatcher encodes; the org is part of the
 *               key so prefix scans stay inside one organisation)
 *
 * Records (all integers little-endian, str = u8 length + bytes):
 *   command header v1: ver u8, type u8, origin u8, target_kind u8,
 *     platform u8, state u8, ttl_s u32, created_ms i64, expires_ms i64,
 *     ndeliveries u32, ncounts u8, counts u32[ncounts], org str, actor str,
 *     reason str, idem_key str, group str, cursor str, cursor_idx u32,
 *     payload_len u32, ndev_ids u32.
 *   command header v2: v1 + the safety-control tail (priority, held_by,
 *     approved_by, resolved_by, note, rollout plan and status).
 *   command header v3: v2 + settle_until_ms i64. Written as v3; v1 and
 *     v2 records are read as they are (settle 0).
 *   command body v1: ver u8, payload_len u32, payload, ndev_ids u32,
 *     ndev_ids * str.
 *   delivery v1 (uv = LEB128 varint, zz = zigzag varint of a difference):
 *     ver u8, state u8, nhist u8, code uv, attempts uv, device str, then
 *     nhist entries of (state u8 with bit 7 set when a code follows,
 *     [code uv], at_ms as zz from the previous entry's time, the first
 *     from 0), then updated_ms as zz from the last entry's time (or 0),
 *     then zero padding. A new record carries DLV_PAD spare zero bytes and
 *     a rewrite never shrinks, so the usual transitions keep the size and
 *     LMDB overwrites the value in place (no page split). A typical new
 *     delivery with a 36-byte device id is 58 bytes. fbx_store_dlv_step
 *     rewrites a record by appending to its bytes and gives the bytes the
 *     full re-encoding gives; a delivery created and sent in one
 *     transaction (fbx_store_dlv_create, held back until then) is written
 *     once with the record it would have had after both writes. Records
 *     of every earlier writer are read and moved unchanged.
 *   device v1: ver u8, platform u8, online u8, attestation u8,
 *     enrolled_ms i64, last_checkin_ms i64, os_version str, ngroups u8,
 *     ngroups * str.
 *   org v1: ver u8, devices u32, created_ms i64.
 *   audit record v1 (encoded and hash-chained by dispatcher/audit.c; the
 *     store reads at_ms, org and actor for its indexes and refuses a
 *     record it cannot parse): ver u8, prev[32], hash[32], at_ms i64,
 *     org str, actor str, action str, note u16 length + bytes, params
 *     u16 length + bytes. org and actor are 0..FBX_ID_MAX bytes, no NUL.
 *   audit mark v1: ver u8, seq u64, hash[32].
 *
 * Upgrade 1 -> 2 (at open): the three audit indexes are built for the
 * existing records in write transactions of AUDIT_UPGRADE_BATCH records,
 * progress kept in meta "audit_ix" so a crash resumes where it stopped;
 * the schema version becomes 3 in the last of them.
 * Upgrade 2 -> 3 (at open): the version only. Version 3 stores may hold
 * the deferred-index marks "ixw_cmd"/"ixw_audit", which a version 2
 * binary would not read (its listings would miss the records after a
 * mark, and the entries it wrote there would be listed twice later):
 * it refuses a version 3 store.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "fbx_store.h"
#include "store_pg.h" /* the LMDB calls below: LMDB or PostgreSQL */
#include "store_int.h"

#define SCHEMA_VERSION 3
/* records indexed per write transaction when upgrading a version 1 store */
#define AUDIT_UPGRADE_BATCH 20000
#define AUDIT_MARK_LEN (1 + 8 + 32)
#define MAP_DEFAULT ((size_t)64 << 20)
#define MAP_MAX_DEFAULT ((size_t)1 << 40)
#define MAX_DBS 24
/* records the per-organisation indexes may lag by default, and at most */
#define IX_LAG_DEFAULT 8192
#define IX_LAG_MAX 65536

#define DLV_V1 1
/* Spare bytes a new delivery record carries: room for about two history
 * entries (state + a delta of up to 35 minutes), so the usual
 * QUEUED -> SENT -> SUCCEEDED life rewrites it in place. */
#define DLV_PAD 8
#define REC_V1 1
#define CMD_V2 2 /* command header with the safety-control tail */
#define CMD_V3 3 /* v2 + settle_until_ms */

/* Largest delivery record (v2): fixed part, device, full history. */
#define DLV_REC_MAX (3 + 3 + 5 + 1 + FBX_ID_MAX + \
    FBX_HIST_MAX * (1 + 3 + 10) + 10 + DLV_PAD)
#define CMD_SAFETY_MAX (1 + 4 * 256 + 3 + 8 * 4 + \
    FBX_ROLLOUT_GROUPS_MAX * (1 + FBX_ID_MAX) + 2 + 5 * 4 + 2 * 8 + 256 + 8)
#define CMD_HDR_MAX (CMD_SAFETY_MAX + 6 + 4 + 8 + 8 + 4 + 1 + 4 * 255 + 6 * (1 + FBX_ID_MAX) + \
    12)
#define DEV_REC_MAX (4 + 16 + 1 + FBX_OSVER_MAX + 1 + \
    FBX_GROUPS_MAX * (1 + FBX_ID_MAX))
#define ORG_REC_LEN (1 + 4 + 8)

/* created deliveries held back at most (struct dlv_new: store_int.h);
 * more are written at once */
#define DLV_NEW_MAX 65536

static int dlv_write(fbx_txn *t, uint64_t id, uint8_t *rec, size_t len);
static int dlv_new_flush(fbx_txn *t);
static struct dlv_new *dlv_new_find(fbx_txn *t, uint64_t id, int *flush);
static int dlv_new_step(fbx_txn *t, uint64_t id, unsigned from_mask,
    int state, uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_dlv_head *out);

/* DLV_NEW_FLUSH - a call that reads or rewrites the delivery table
 * writes what t holds back first. */
#define DLV_NEW_FLUSH(t)                                                     \
	do {                                                                 \
		if ((t)->nnw > 0) {                                          \
			int frc_ = dlv_new_flush(t);                         \
			if (frc_ != FBX_OK)                                  \
				return frc_;                                 \
		}                                                            \
	} while (0)

/* ---- error translation ---------------------------------------------- */

static int
map_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return FBX_OK;
	case MDB_NOTFOUND:
		return FBX_ENOT_FOUND;
	case MDB_MAP_FULL:
		return FBX_EMAP_FULL;
	case ENOSPC:
#ifdef EDQUOT
	case EDQUOT:
#endif
		return FBX_EDISK_FULL;
	case EIO:
		return FBX_EIO;
	case ENOMEM:
		return FBX_ENOMEM;
	case MDB_READERS_FULL:
		return FBX_EBUSY;
	case ESTALE:
		return FBX_EFENCED; /* PostgreSQL cluster mode: pg_lease.c */
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_INCOMPATIBLE:
		return FBX_ECORRUPT;
	default:
		return FBX_ESTORAGE;
	}
}

/* disk_nearly_full - whether the file system of the store has less room
 * than a large commit needs (a short write then means "full"). */
static int
disk_nearly_full(const fbx_store *st)
{
	struct statvfs vs;

	if (st->data_path == NULL || statvfs(st->data_path, &vs) != 0)
		return 0;
	return (uint64_t)vs.f_bavail * vs.f_frsize < (4u << 20);
}

/* txn_fail - mark txn broken by a write error, return the fbx code. */
static int
txn_fail(fbx_txn *t, int rc)
{
	int err = map_err(rc);

	if (err == FBX_OK || err == FBX_ENOT_FOUND || err == FBX_ECORRUPT)
		err = FBX_ESTORAGE;
	t->err = err;
	return err;
}

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

/* ---- device record ---------------------------------------------------- */

static int
dev_encode(const struct fbx_device *dv, uint8_t *buf, size_t cap,
    size_t *len)
{
	struct wr w = { buf, buf + cap, 0 };

	if (dv->ngroups > FBX_GROUPS_MAX)
		return FBX_EINVALID;
	wr_u8(&w, REC_V1);
	wr_u8(&w, dv->platform);
	wr_u8(&w, dv->online);
	wr_u8(&w, dv->attestation);
	wr_le(&w, (uint64_t)dv->enrolled_ms, 8);
	wr_le(&w, (uint64_t)dv->last_checkin_ms, 8);
	wr_str(&w, dv->os_version, FBX_OSVER_MAX + 1);
	wr_u8(&w, dv->ngroups);
	for (unsigned i = 0; i < dv->ngroups; i++)
		wr_str(&w, dv->groups[i], FBX_ID_MAX + 1);
	if (w.bad)
		return FBX_EINVALID;
	*len = (size_t)(w.p - buf);
	return FBX_OK;
}

/* dev_decode - the key (org \0 id) supplies org and id. */
static int
dev_decode(const MDB_val *k, const MDB_val *v, struct fbx_device *dv)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	const uint8_t *kb = k->mv_data;
	const uint8_t *sep = memchr(kb, '\0', k->mv_size);
	size_t on, in;

	memset(dv, 0, sizeof(*dv));
	if (sep == NULL)
		return FBX_ECORRUPT;
	on = (size_t)(sep - kb);
	in = k->mv_size - on - 1;
	if (on == 0 || on > FBX_ID_MAX || in == 0 || in > FBX_ID_MAX ||
	    memchr(sep + 1, '\0', in) != NULL)
		return FBX_ECORRUPT;
	memcpy(dv->org, kb, on);
	memcpy(dv->id, sep + 1, in);
	if (rd_u8(&r) != REC_V1)
		return FBX_ECORRUPT;
	dv->platform = (uint8_t)rd_u8(&r);
	dv->online = (uint8_t)rd_u8(&r);
	dv->attestation = (uint8_t)rd_u8(&r);
	dv->enrolled_ms = rd_i64(&r);
	dv->last_checkin_ms = rd_i64(&r);
	rd_str(&r, dv->os_version, sizeof(dv->os_version));
	dv->ngroups = (uint8_t)rd_u8(&r);
	if (r.bad || dv->ngroups > FBX_GROUPS_MAX)
		return FBX_ECORRUPT;
	for (unsigned i = 0; i < dv->ngroups; i++)
		rd_str(&r, dv->groups[i], sizeof(dv->groups[i]));
	if (r.bad || r.p != r.end)
		return FBX_ECORRUPT;
	return FBX_OK;
}

/* ---- org record --------------------------------------------------------- */

static void
org_encode(uint32_t count, int64_t created_ms, uint8_t *buf)
{
	struct wr w = { buf, buf + ORG_REC_LEN, 0 };

	wr_u8(&w, REC_V1);
	wr_le(&w, count, 4);
	wr_le(&w, (uint64_t)created_ms, 8);
}

static int
org_decode(const MDB_val *v, uint32_t *count, int64_t *created_ms)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };

	if (rd_u8(&r) != REC_V1)
		return FBX_ECORRUPT;
	*count = (uint32_t)rd_le(&r, 4);
	*created_ms = rd_i64(&r);
	if (r.bad || r.p != r.end)
		return FBX_ECORRUPT;
	return FBX_OK;
}

/* ---- command records -------------------------------------------------- */

static int
cmd_strings_ok(const struct fbx_command *c)
{
	size_t n;

	return id_len(c->org, &n) == FBX_OK && opt_ok(c->actor) &&
	    opt_ok(c->reason) && opt_ok(c->idem_key) && opt_ok(c->group) &&
	    opt_ok(c->cursor);
}

/* cmd_hdr_encode - payload_len and ndev_ids are passed apart: they
 * describe the body journaled at append, not the caller's struct. */
static int
cmd_hdr_encode(const struct fbx_command *c, uint32_t payload_len,
    uint32_t ndev_ids, uint8_t *buf, size_t cap, size_t *len)
{
	struct wr w = { buf, buf + cap, 0 };

	wr_u8(&w, CMD_V3);
	wr_u8(&w, c->type);
	wr_u8(&w, c->origin);
	wr_u8(&w, c->target_kind);
	wr_u8(&w, c->platform);
	wr_u8(&w, c->state);
	wr_le(&w, c->ttl_s, 4);
	wr_le(&w, (uint64_t)c->created_ms, 8);
	wr_le(&w, (uint64_t)c->expires_ms, 8);
	wr_le(&w, c->ndeliveries, 4);
	wr_u8(&w, FBX_D_COUNT);
	for (int i = 0; i < FBX_D_COUNT; i++)
		wr_le(&w, c->counts[i], 4);
	wr_str(&w, c->org, FBX_ID_MAX + 1);
	wr_str(&w, c->actor, FBX_ID_MAX + 1);
	wr_str(&w, c->reason, FBX_ID_MAX + 1);
	wr_str(&w, c->idem_key, FBX_ID_MAX + 1);
	wr_str(&w, c->group, FBX_ID_MAX + 1);
	wr_str(&w, c->cursor, FBX_ID_MAX + 1);
	wr_le(&w, c->cursor_idx, 4);
	wr_le(&w, payload_len, 4);
	wr_le(&w, ndev_ids, 4);
	/* v2: safety controls */
	wr_u8(&w, c->priority);
	wr_str(&w, c->held_by, sizeof(c->held_by));
	wr_str(&w, c->approved_by, sizeof(c->approved_by));
	wr_str(&w, c->resolved_by, sizeof(c->resolved_by));
	wr_str(&w, c->note, sizeof(c->note));
	wr_u8(&w, c->rollout.enabled);
	wr_u8(&w, c->rollout.approve_groups);
	wr_u8(&w, c->rollout.ngroups);
	wr_le(&w, c->rollout.first_count, 4);
	wr_le(&w, c->rollout.first_share_ppm, 4);
	wr_le(&w, c->rollout.growth_x100, 4);
	wr_le(&w, c->rollout.max_wave, 4);
	wr_le(&w, c->rollout.bake_s, 4);
	wr_le(&w, c->rollout.success_ppm, 4);
	wr_le(&w, c->rollout.failure_ppm, 4);
	wr_le(&w, c->rollout.min_results, 4);
	for (unsigned i = 0; i < c->rollout.ngroups &&
	    i < FBX_ROLLOUT_GROUPS_MAX; i++)
		wr_str(&w, c->rollout.groups[i], FBX_ID_MAX + 1);
	wr_u8(&w, c->ro.state);
	wr_u8(&w, c->ro.stage);
	wr_le(&w, c->ro.wave, 4);
	wr_le(&w, c->ro.released, 4);
	wr_le(&w, c->ro.wave_start, 4);
	wr_le(&w, c->ro.wave_size, 4);
	wr_le(&w, (uint64_t)c->ro.wave_started_ms, 8);
	wr_le(&w, (uint64_t)c->ro.bake_until_ms, 8);
	wr_str(&w, c->ro.note, sizeof(c->ro.note));
	wr_le(&w, (uint64_t)c->settle_until_ms, 8); /* v3 */
	if (w.bad)
		return FBX_EINVALID;
	*len = (size_t)(w.p - buf);
	return FBX_OK;
}

struct cmd_peek {
	const char *org; /* in the record, not NUL-terminated */
	size_t olen;
	int64_t created;
	uint32_t plen, ndev;
	uint8_t state;
};

/* cmd_hdr_org - the organisation (not NUL-terminated) and created_ms of
 * a command header, without decoding the rest (the deferred cmd_org
 * index reads them from many records). @return 0, or -1 when the header
 * is damaged. */
static int
cmd_hdr_org(const MDB_val *v, const char **org, size_t *olen,
    int64_t *created)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	unsigned ver, ncounts;
	size_t n;

	ver = rd_u8(&r);
	if (ver != REC_V1 && ver != CMD_V2 && ver != CMD_V3)
		return -1;
	if (r.end - r.p < 5)
		return -1;
	r.p += 5;           /* type, origin, target_kind, platform, state */
	(void)rd_le(&r, 4); /* ttl_s */
	*created = rd_i64(&r);
	(void)rd_le(&r, 8); /* expires_ms */
	(void)rd_le(&r, 4); /* ndeliveries */
	ncounts = rd_u8(&r);
	if (r.bad || (size_t)(r.end - r.p) < 4 * (size_t)ncounts)
		return -1;
	r.p += 4 * (size_t)ncounts;
	n = rd_u8(&r);
	if (r.bad || n == 0 || n > FBX_ID_MAX || (size_t)(r.end - r.p) < n ||
	    memchr(r.p, '\0', n) != NULL)
		return -1;
	*org = (const char *)r.p;
	*olen = n;
	return 0;
}

/* fbxs_cmd_hdr_org - cmd_hdr_org for the cmd_org catch-up in store_ix.c
 * (store.c's own callers keep the static one). */
int
fbxs_cmd_hdr_org(const MDB_val *v, const char **org, size_t *olen,
    int64_t *created)
{
	return cmd_hdr_org(v, org, olen, created);
}

/* cmd_hdr_peek - what a rewrite needs from the stored header (state,
 * organisation, created_ms, the body sizes), read in place without
 * decoding the rest: the rewrite replaces every other field with the
 * caller's. @return 0, or -1 when that part of the header is damaged. */
static int
cmd_hdr_peek(const MDB_val *v, struct cmd_peek *pk)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	size_t n;

	if (cmd_hdr_org(v, &pk->org, &pk->olen, &pk->created) != 0)
		return -1;
	pk->state = ((const uint8_t *)v->mv_data)[5];
	r.p = (const uint8_t *)pk->org + pk->olen;
	for (int i = 0; i < 5; i++) { /* actor, reason, idem_key, group,
	                                * cursor */
		n = rd_u8(&r);
		if (r.bad || n > FBX_ID_MAX || (size_t)(r.end - r.p) < n)
			return -1;
		r.p += n;
	}
	(void)rd_le(&r, 4); /* cursor_idx */
	pk->plen = (uint32_t)rd_le(&r, 4);
	pk->ndev = (uint32_t)rd_le(&r, 4);
	if (r.bad || pk->plen > FBX_PAYLOAD_MAX ||
	    pk->ndev > FBX_DEVICES_PER_CMD_MAX)
		return -1;
	return 0;
}

/* cmd_hdr_decode - fills everything but payload and dev_ids (left NULL);
 * *plen and *ndev receive the body sizes the header records. */
static int
cmd_hdr_decode(uint64_t id, const MDB_val *v, struct fbx_command *c,
    uint32_t *plen, uint32_t *ndev)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	unsigned ncounts;

	unsigned ver;

	memset(c, 0, sizeof(*c));
	ver = rd_u8(&r);
	if (ver != REC_V1 && ver != CMD_V2 && ver != CMD_V3)
		return FBX_ECORRUPT;
	c->id = id;
	c->type = (uint8_t)rd_u8(&r);
	c->origin = (uint8_t)rd_u8(&r);
	c->target_kind = (uint8_t)rd_u8(&r);
	c->platform = (uint8_t)rd_u8(&r);
	c->state = (uint8_t)rd_u8(&r);
	c->ttl_s = (uint32_t)rd_le(&r, 4);
	c->created_ms = rd_i64(&r);
	c->expires_ms = rd_i64(&r);
	c->ndeliveries = (uint32_t)rd_le(&r, 4);
	ncounts = rd_u8(&r);
	for (unsigned i = 0; i < ncounts; i++) {
		uint32_t n = (uint32_t)rd_le(&r, 4);
		if (i < FBX_D_COUNT)
			c->counts[i] = n;
	}
	rd_str(&r, c->org, sizeof(c->org));
	rd_str(&r, c->actor, sizeof(c->actor));
	rd_str(&r, c->reason, sizeof(c->reason));
	rd_str(&r, c->idem_key, sizeof(c->idem_key));
	rd_str(&r, c->group, sizeof(c->group));
	rd_str(&r, c->cursor, sizeof(c->cursor));
	c->cursor_idx = (uint32_t)rd_le(&r, 4);
	*plen = (uint32_t)rd_le(&r, 4);
	*ndev = (uint32_t)rd_le(&r, 4);
	if (ver >= CMD_V2) {
		c->priority = (uint8_t)rd_u8(&r);
		rd_str(&r, c->held_by, sizeof(c->held_by));
		rd_str(&r, c->approved_by, sizeof(c->approved_by));
		rd_str(&r, c->resolved_by, sizeof(c->resolved_by));
		rd_str(&r, c->note, sizeof(c->note));
		c->rollout.enabled = (uint8_t)rd_u8(&r);
		c->rollout.approve_groups = (uint8_t)rd_u8(&r);
		c->rollout.ngroups = (uint8_t)rd_u8(&r);
		c->rollout.first_count = (uint32_t)rd_le(&r, 4);
		c->rollout.first_share_ppm = (uint32_t)rd_le(&r, 4);
		c->rollout.growth_x100 = (uint32_t)rd_le(&r, 4);
		c->rollout.max_wave = (uint32_t)rd_le(&r, 4);
		c->rollout.bake_s = (uint32_t)rd_le(&r, 4);
		c->rollout.success_ppm = (uint32_t)rd_le(&r, 4);
		c->rollout.failure_ppm = (uint32_t)rd_le(&r, 4);
		c->rollout.min_results = (uint32_t)rd_le(&r, 4);
		if (c->rollout.ngroups > FBX_ROLLOUT_GROUPS_MAX)
			return FBX_ECORRUPT;
		for (unsigned i = 0; i < c->rollout.ngroups; i++)
			rd_str(&r, c->rollout.groups[i],
			    sizeof(c->rollout.groups[i]));
		c->ro.state = (uint8_t)rd_u8(&r);
		c->ro.stage = (uint8_t)rd_u8(&r);
		c->ro.wave = (uint32_t)rd_le(&r, 4);
		c->ro.released = (uint32_t)rd_le(&r, 4);
		c->ro.wave_start = (uint32_t)rd_le(&r, 4);
		c->ro.wave_size = (uint32_t)rd_le(&r, 4);
		c->ro.wave_started_ms = rd_i64(&r);
		c->ro.bake_until_ms = rd_i64(&r);
		rd_str(&r, c->ro.note, sizeof(c->ro.note));
	}
	if (ver >= CMD_V3)
		c->settle_until_ms = rd_i64(&r);
	if (r.bad || r.p != r.end || *plen > FBX_PAYLOAD_MAX ||
	    *ndev > FBX_DEVICES_PER_CMD_MAX)
		return FBX_ECORRUPT;
	return FBX_OK;
}

static size_t
cmd_body_size(const struct fbx_command *c)
{
	size_t n = 1 + 4 + c->payload_len + 4;

	for (uint32_t i = 0; i < c->ndev_ids; i++)
		n += 1 + strnlen(c->dev_ids[i], FBX_ID_MAX + 1);
	return n;
}

static int
cmd_body_decode(const MDB_val *v, uint32_t plen, uint32_t ndev,
    struct fbx_command *c)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	uint8_t *payload = NULL;
	char(*ids)[FBX_ID_MAX + 1] = NULL;
	int rc = FBX_ECORRUPT;

	if (rd_u8(&r) != REC_V1 || rd_le(&r, 4) != plen || r.bad ||
	    (size_t)(r.end - r.p) < plen)
		goto out;
	if (plen > 0) {
		payload = malloc(plen);
		if (payload == NULL) {
			rc = FBX_ENOMEM;
			goto out;
		}
		memcpy(payload, r.p, plen);
		r.p += plen;
	}
	if (rd_le(&r, 4) != ndev || r.bad)
		goto out;
	/* Each id takes at least 2 bytes: refuse counts the value cannot
	 * hold before allocating for them. */
	if ((size_t)(r.end - r.p) / 2 < ndev)
		goto out;
	if (ndev > 0) {
		ids = calloc(ndev, sizeof(*ids));
		if (ids == NULL) {
			rc = FBX_ENOMEM;
			goto out;
		}
	}
	for (uint32_t i = 0; i < ndev; i++)
		rd_str(&r, ids[i], sizeof(ids[i]));
	if (r.bad || r.p != r.end)
		goto out;
	c->payload = payload;
	c->payload_len = plen;
	c->dev_ids = ids;
	c->ndev_ids = ndev;
	payload = NULL;
	ids = NULL;
	rc = FBX_OK;
out:
	free(payload);
	free(ids);
	return rc;
}

/* ---- environment ------------------------------------------------------ */

/* mkdir_p - create dir and its parents; existing directories are fine. */
static int
mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	struct stat sb;

	if (n == 0 || n >= sizeof(buf))
		return FBX_EINVALID;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		/* the journal is every tenant's data: only its owner
		 * enters (issue 10) */
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return FBX_EIO;
		buf[i] = path[i];
	}
	if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return FBX_EIO;
	return FBX_OK;
}

static size_t
cur_used(fbx_store *st, size_t *psize)
{
	MDB_envinfo info;
	MDB_stat ms;

	if (mdb_env_info(st->env, &info) != 0 ||
	    mdb_env_stat(st->env, &ms) != 0)
		return 0;
	*psize = ms.ms_psize;
	return ((size_t)info.me_last_pgno + 1) * ms.ms_psize;
}

/* schema_init - open every named database and check or write the schema
 * version, all in one write transaction. @param[out] found the version
 * the store had (SCHEMA_VERSION when it was created now). */
static int
schema_init(fbx_store *st, uint32_t *found)
{
	static const struct {
		const char *name;
		size_t off;
	} dbs[] = {
		{ "cmd", offsetof(fbx_store, cmd) },
		{ "cmd_body", offsetof(fbx_store, cmd_body) },
		{ "cmd_org", offsetof(fbx_store, cmd_org) },
		{ "cmd_active", offsetof(fbx_store, cmd_active) },
		{ "idem", offsetof(fbx_store, idem) },
		{ "dlv", offsetof(fbx_store, dlv) },
		{ "pend", offsetof(fbx_store, pend) },
		{ "dev", offsetof(fbx_store, dev) },
		{ "grp", offsetof(fbx_store, grp) },
		{ "org", offsetof(fbx_store, org) },
		{ "kv", offsetof(fbx_store, kv) },
		{ "audit", offsetof(fbx_store, audit) },
		{ "audit_org", offsetof(fbx_store, audit_org) },
		{ "audit_actor", offsetof(fbx_store, audit_actor) },
		{ "audit_time", offsetof(fbx_store, audit_time) },
	};
	MDB_txn *txn = NULL;
	MDB_dbi main_dbi;
	MDB_stat ms;
	MDB_val k = { 6, "schema" }, v;
	uint8_t vb[4];
	uint32_t ver = SCHEMA_VERSION;
	int fresh, rc, mrc;

	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0) {
		rc = map_err(mrc);
		goto out;
	}
	mrc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
	if (mrc == 0)
		mrc = mdb_stat(txn, main_dbi, &ms);
	if (mrc != 0) {
		rc = map_err(mrc);
		goto out;
	}
	fresh = ms.ms_entries == 0;
	mrc = mdb_dbi_open(txn, "meta", fresh ? MDB_CREATE : 0, &st->meta);
	if (mrc != 0) {
		/* A non-empty environment without our meta table, or with a
		 * plain key named "meta": not a fusebox store. */
		rc = (mrc == MDB_NOTFOUND || mrc == MDB_INCOMPATIBLE) ?
		    FBX_ECORRUPT : map_err(mrc);
		goto out;
	}
	mrc = mdb_get(txn, st->meta, &k, &v);
	if (mrc == MDB_NOTFOUND && fresh) {
		v.mv_size = 4;
		vb[0] = SCHEMA_VERSION;
		vb[1] = vb[2] = vb[3] = 0;
		v.mv_data = vb;
		mrc = mdb_put(txn, st->meta, &k, &v, 0);
	} else if (mrc == 0) {
		const uint8_t *p = v.mv_data;
		if (v.mv_size != 4) {
			rc = FBX_ECORRUPT;
			goto out;
		}
		ver = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		if (ver == 0 || ver > SCHEMA_VERSION) {
			rc = FBX_ECORRUPT;
			goto out;
		}
	} else if (mrc == MDB_NOTFOUND) {
		rc = FBX_ECORRUPT;
		goto out;
	}
	if (mrc != 0) {
		rc = map_err(mrc);
		goto out;
	}
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		MDB_dbi *d = (MDB_dbi *)((char *)st + dbs[i].off);
		mrc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, d);
		if (mrc != 0) {
			rc = mrc == MDB_INCOMPATIBLE ? FBX_ECORRUPT :
			    map_err(mrc);
			goto out;
		}
	}
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	rc = map_err(mrc);
	if (rc == FBX_OK)
		*found = ver;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return rc;
}

/* schema_set - write the schema version (2 -> 3: nothing else changes;
 * a store of version 3 may hold deferred-index marks, which a binary of
 * version 2 would not read, so it refuses the store). */
static int
schema_set(fbx_store *st, uint32_t ver)
{
	MDB_txn *txn = NULL;
	MDB_val k = { 6, "schema" }, v;
	uint8_t vb[4] = { (uint8_t)ver, 0, 0, 0 };
	int mrc;

	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0)
		return map_err(mrc);
	v.mv_size = 4;
	v.mv_data = vb;
	mrc = mdb_put(txn, st->meta, &k, &v, 0);
	if (mrc == 0)
		mrc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	return map_err(mrc);
}

/* audit_upgrade_batch - index up to AUDIT_UPGRADE_BATCH records of a
 * version 1 store after meta "audit_ix", in one write transaction; the
 * last batch sets the schema version. @param[out] done 1 when finished. */
static int
audit_upgrade_batch(fbx_store *st, int *done)
{
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k = { 8, "audit_ix" }, v, sk = { 6, "schema" };
	uint8_t kb[8], ib[8], vb[4] = { SCHEMA_VERSION, 0, 0, 0 };
	uint64_t from = 0, n = 0, seq = 0;
	int mrc;

	*done = 0;
	mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (mrc != 0)
		return map_err(mrc);
	mrc = mdb_get(txn, st->meta, &k, &v);
	if (mrc == 0 && v.mv_size == 8) {
		for (int i = 0; i < 8; i++)
			from |= (uint64_t)((const uint8_t *)v.mv_data)[i]
			    << (8 * i);
	} else if (mrc == 0) {
		mrc = MDB_CORRUPTED;
		goto out;
	} else if (mrc != MDB_NOTFOUND) {
		goto out;
	}
	mrc = mdb_cursor_open(txn, st->audit, &cur);
	if (mrc != 0)
		goto out;
	put_be64(kb, from + 1);
	k.mv_size = 8;
	k.mv_data = kb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0 && n < AUDIT_UPGRADE_BATCH) {
		if (k.mv_size != 8) {
			mrc = MDB_CORRUPTED;
			break;
		}
		seq = get_be64(k.mv_data);
		mrc = fbxs_audit_index_add(txn, st, seq, v.mv_data, v.mv_size);
		if (mrc != 0)
			break;
		n++;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (mrc == MDB_NOTFOUND) {
		/* the whole log is indexed: no mark of a deferred index
		 * may say otherwise */
		k.mv_size = 8;
		k.mv_data = "audit_ix";
		mrc = mdb_del(txn, st->meta, &k, NULL);
		if (mrc == MDB_NOTFOUND)
			mrc = 0;
		if (mrc == 0) {
			k.mv_size = strlen(fbxs_ixw_key[IXW_AUDIT]);
			k.mv_data = (void *)fbxs_ixw_key[IXW_AUDIT];
			mrc = mdb_del(txn, st->meta, &k, NULL);
			if (mrc == MDB_NOTFOUND)
				mrc = 0;
		}
		v.mv_size = 4;
		v.mv_data = vb;
		if (mrc == 0)
			mrc = mdb_put(txn, st->meta, &sk, &v, 0);
		if (mrc == 0)
			*done = 1;
	} else if (mrc == 0) {
		for (int i = 0; i < 8; i++)
			ib[i] = (uint8_t)(seq >> (8 * i));
		k.mv_size = 8;
		k.mv_data = "audit_ix";
		v.mv_size = 8;
		v.mv_data = ib;
		mrc = mdb_put(txn, st->meta, &k, &v, 0);
	}
	if (mrc != 0)
		goto out;
	mrc = mdb_txn_commit(txn);
	txn = NULL;
	if (mrc == 0)
		st->audit_upgraded += n;
	else
		*done = 0;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	/* a record that does not parse is a damaged store */
	return mrc == AUDIT_BADREC ? FBX_ECORRUPT : map_err(mrc);
}

/* audit_upgrade - build the audit indexes of a version 1 store, batch by
 * batch, growing the map when a batch does not fit. */
static int
audit_upgrade(fbx_store *st)
{
	int done = 0, rc = FBX_OK;

	while (!done) {
		rc = audit_upgrade_batch(st, &done);
		if (rc == FBX_EMAP_FULL) {
			rc = fbx_store_grow(st);
			if (rc != FBX_OK)
				break;
			continue;
		}
		if (rc != FBX_OK)
			break;
	}
	return rc;
}

int
fbx_store_open(const struct fbx_store_opts *opts, fbx_store **out)
{
	fbx_store *st = NULL;
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	MDB_envinfo info;
	size_t plen;
	uint32_t ver = 0;
	int dead = 0, rc, mrc, pg;

	pg = opts != NULL && fbxi_pg_is_url(opts->url);
	if (opts == NULL || out == NULL || (!pg && (opts->path == NULL ||
	    opts->path[0] == '\0' || (opts->url != NULL && opts->url[0]))))
		return FBX_EINVALID;
	switch (opts->durability) {
	case FBX_DURABLE_FULL:
		break;
	case FBX_DURABLE_NOMETASYNC:
		flags |= MDB_NOMETASYNC;
		break;
	case FBX_DURABLE_NOSYNC:
		flags |= MDB_NOSYNC;
		break;
	default:
		return FBX_EINVALID;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		return FBX_ENOMEM;
	st->sync_fd = -1;
	atomic_init(&st->ntxn, 0);
	atomic_init(&st->audit_reads, 0);
	st->map_size = opts->map_size ? opts->map_size : MAP_DEFAULT;
	st->map_size_max = opts->map_size_max ? opts->map_size_max :
						MAP_MAX_DEFAULT;
	if (st->map_size > st->map_size_max) {
		rc = FBX_EINVALID;
		goto out;
	}
	st->ix_lag = opts->index_lag;
	if (st->ix_lag == 0) {
		const char *ev = getenv("FBX_STORE_INDEX_LAG");
		char *end = NULL;
		unsigned long l = ev != NULL ? strtoul(ev, &end, 10) : 0;
		st->ix_lag = (ev != NULL && *ev != '\0' && *end == '\0' &&
		                 l > 0 && l <= IX_LAG_MAX) ?
		    (uint32_t)l :
		    IX_LAG_DEFAULT;
	}
	if (st->ix_lag > IX_LAG_MAX)
		st->ix_lag = IX_LAG_MAX;
	if (pg) {
		st->ix_lag = 1; /* nodes share the tables: index at once */
		goto env; /* no directory: the store is in the database */
	}
	plen = strlen(opts->path) + sizeof("/data.mdb");
	st->data_path = malloc(plen);
	if (st->data_path == NULL) {
		rc = FBX_ENOMEM;
		goto out;
	}
	snprintf(st->data_path, plen, "%s/data.mdb", opts->path);
	rc = mkdir_p(opts->path);
	if (rc != FBX_OK)
		goto out;
env:
	mrc = pg ? fbxi_kv_env_create_pg(&st->env, opts->url, opts->durability)
	         : mdb_env_create(&st->env);
	if (mrc == 0)
		mrc = mdb_env_set_maxdbs(st->env, MAX_DBS);
	if (mrc == 0)
		mrc = mdb_env_set_mapsize(st->env, st->map_size);
	if (mrc == 0)
		mrc = mdb_env_set_maxreaders(st->env,
		    opts->max_readers ? opts->max_readers : 126);
	if (mrc == 0 && opts->node != NULL && opts->node[0] != '\0') {
		if (!pg || !fbx_id_valid(opts->node)) {
			rc = FBX_EINVALID;
			goto out;
		}
		mrc = fbxi_kv_env_set_node(st->env, opts->node,
		    opts->advertise, opts->lease_ms ? opts->lease_ms : 10000);
	}
	if (mrc != 0) {
		rc = map_err(mrc);
		goto out;
	}
	mrc = mdb_env_open(st->env, opts->path, flags, 0600);
	if (mrc != 0) {
		if (mrc == MDB_INVALID || mrc == MDB_VERSION_MISMATCH)
			rc = FBX_ECORRUPT;
		else if (mrc == ENOMEM)
			rc = FBX_ENOMEM;
		else if (mrc == EBUSY)
			rc = FBX_EBUSY; /* PostgreSQL: another process has it */
		else
			rc = FBX_EIO;
		goto out;
	}
	if (mdb_reader_check(st->env, &dead) == 0 && dead > 0)
		st->readers_cleared = (unsigned)dead;
	/* An existing file keeps its own (possibly larger) map size. */
	if (mdb_env_info(st->env, &info) == 0)
		st->map_size = info.me_mapsize;
	if (st->map_size > st->map_size_max)
		st->map_size_max = st->map_size;
	rc = schema_init(st, &ver);
	if (rc == FBX_OK && ver < 2)
		rc = audit_upgrade(st); /* ends at SCHEMA_VERSION */
	else if (rc == FBX_OK && ver < SCHEMA_VERSION)
		rc = schema_set(st, SCHEMA_VERSION);
	if (rc != FBX_OK)
		goto out;
	if (st->data_path != NULL) {
		st->sync_fd = open(st->data_path, O_RDWR | O_CLOEXEC);
		if (st->sync_fd < 0) {
			rc = FBX_EIO;
			goto out;
		}
	}
	*out = st;
	st = NULL;
out:
	if (st != NULL) {
		if (st->env != NULL)
			mdb_env_close(st->env);
		if (st->sync_fd >= 0)
			close(st->sync_fd);
		free(st->data_path);
		free(st);
	}
	return rc;
}

void
fbx_store_close(fbx_store *st)
{
	if (st == NULL)
		return;
	mdb_env_close(st->env);
	if (st->sync_fd >= 0)
		close(st->sync_fd);
	free(st->data_path);
	free(st);
}

/* reader_line - mdb_reader_list calls it once per line: a header line,
 * then one per reader slot in use (or one "(no active readers)"). */
static int
reader_line(const char *msg, void *ctx)
{
	unsigned *n = ctx;

	if (strstr(msg, "pid") == NULL && strstr(msg, "no active") == NULL)
		(*n)++;
	return 0;
}

int
fbx_store_stat(fbx_store *st, struct fbx_store_stat *out)
{
	struct fbx_store_stat s;
	MDB_txn *txn = NULL;
	MDB_stat ms;
	struct stat sb;
	size_t psize = 0;
	int rc = FBX_ESTORAGE;

	memset(&s, 0, sizeof(s));
	s.used_bytes = cur_used(st, &psize);
	s.page_size = psize;
	s.map_size = st->map_size;
	s.readers_cleared = st->readers_cleared;
	if (st->data_path != NULL && stat(st->data_path, &sb) == 0)
		s.file_bytes = (size_t)sb.st_size;
	(void)mdb_reader_list(st->env, reader_line, &s.readers_used);
	if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) {
		txn = NULL;
		goto out;
	}
	if (mdb_stat(txn, st->cmd, &ms) != 0)
		goto out;
	s.commands = ms.ms_entries;
	if (mdb_stat(txn, st->dlv, &ms) != 0)
		goto out;
	s.deliveries = ms.ms_entries;
	if (mdb_stat(txn, st->dev, &ms) != 0)
		goto out;
	s.devices = ms.ms_entries;
	if (mdb_stat(txn, st->audit, &ms) != 0)
		goto out;
	s.audit_records = ms.ms_entries;
	for (int w = IXW_CMD; w <= IXW_AUDIT && !fbxi_kv_is_pg(st->env); w++) {
		MDB_cursor *cur = NULL;
		MDB_val k, v;
		uint64_t wm;
		int present;
		if (fbxs_ixw_get(txn, st, w, &wm, &present) != 0)
			goto out;
		if (!present)
			continue;
		if (mdb_cursor_open(txn, w == IXW_CMD ? st->cmd : st->audit,
		        &cur) != 0)
			goto out;
		if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 &&
		    k.mv_size == 8 && get_be64(k.mv_data) > wm) {
			if (w == IXW_CMD)
				s.cmd_ix_lag = get_be64(k.mv_data) - wm;
			else
				s.audit_ix_lag = get_be64(k.mv_data) - wm;
		}
		mdb_cursor_close(cur);
	}
	s.audit_reads = atomic_load(&st->audit_reads);
	s.audit_upgraded = st->audit_upgraded;
	*out = s;
	rc = FBX_OK;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	return rc;
}

static int
set_map(fbx_store *st, size_t size)
{
	int mrc;

	if (atomic_load(&st->ntxn) != 0)
		return FBX_EBUSY;
	mrc = mdb_env_set_mapsize(st->env, size);
	if (mrc != 0)
		return mrc == MDB_MAP_FULL ? FBX_EMAP_FULL : FBX_ESTORAGE;
	st->map_size = size;
	return FBX_OK;
}

int
fbx_store_reserve(fbx_store *st, size_t bytes)
{
	size_t psize = 0, used, need, size = st->map_size;

	if (fbxi_kv_is_pg(st->env))
		return FBX_OK; /* no map: the database grows by itself */
	used = cur_used(st, &psize);
	if (psize == 0)
		return FBX_ESTORAGE;
	/* LMDB copies touched branch pages and keeps old pages until no
	 * reader needs them: leave an eighth of the map as headroom. */
	if (bytes > SIZE_MAX - used - size / 8)
		return FBX_EMAP_FULL;
	need = used + bytes;
	while (need + size / 8 > size) {
		if (size >= st->map_size_max)
			return FBX_EMAP_FULL;
		size = size > st->map_size_max / 2 ? st->map_size_max :
						     size * 2;
	}
	if (size == st->map_size)
		return FBX_OK;
	return set_map(st, size);
}

/* ---- cluster mode (PostgreSQL, issue 13) ---------------------------- */

void
fbx_store_keep_leases(fbx_store *st)
{
	if (st != NULL)
		fbxi_kv_keep_leases(st->env);
}

int
fbx_store_cluster(const fbx_store *st)
{
	return st != NULL && fbxi_kv_cluster(st->env);
}

int
fbx_store_owns(const fbx_store *st, const char *org)
{
	return st == NULL || fbxi_kv_owns(st->env, org != NULL ? org : "");
}

int64_t
fbx_store_lease_left_ms(const fbx_store *st)
{
	return st != NULL ? fbxi_kv_lease_left_ms(st->env) : INT64_MAX;
}

size_t
fbx_store_owned(const fbx_store *st)
{
	return st != NULL ? fbxi_kv_owned(st->env) : 0;
}

int
fbx_store_lease_tick(fbx_store *st, fbx_org_idle_fn idle, void *arg,
    int *changed)
{
	int mrc;

	*changed = 0;
	if (st == NULL || !fbxi_kv_cluster(st->env))
		return FBX_OK;
	mrc = fbxi_kv_lease_tick(st->env, idle, arg, changed);
	return mrc == 0 ? FBX_OK : map_err(mrc);
}

int
fbx_store_lease_claim(fbx_txn *txn, const char *org, int *how,
    char node[FBX_ID_MAX + 1], char *endpoint, size_t ecap)
{
	int mrc, h = 0;

	*how = FBX_LEASE_OWNED;
	node[0] = '\0';
	if (ecap > 0)
		endpoint[0] = '\0';
	if (txn == NULL || !txn->write)
		return FBX_EINVALID;
	if (txn->err != FBX_OK)
		return txn->err;
	mrc = fbxi_kv_lease_claim(
	    txn->txn, org, &h, node, FBX_ID_MAX + 1, endpoint, ecap);
	if (mrc != 0)
		return txn_fail(txn, mrc);
	*how = h; /* the FBX_LEASE_* values are pg_lease.h's FBXI_CLAIM_* */
	return FBX_OK;
}

int
fbx_store_lease_owner(fbx_txn *txn, const char *org,
    char node[FBX_ID_MAX + 1], char *endpoint, size_t ecap)
{
	int mrc;

	node[0] = '\0';
	if (ecap > 0)
		endpoint[0] = '\0';
	if (txn == NULL)
		return FBX_EINVALID;
	if (txn->err != FBX_OK)
		return txn->err;
	mrc = fbxi_kv_lease_owner(
	    txn->txn, org, node, FBX_ID_MAX + 1, endpoint, ecap);
	if (mrc != 0)
		return txn->write ? txn_fail(txn, mrc) : map_err(mrc);
	return FBX_OK;
}

int
fbx_store_sync(fbx_store *st)
{
	if (st == NULL)
		return FBX_EINVALID;
	if (st->sync_fd < 0)
		return FBX_OK; /* PostgreSQL: its commit was durable already */
	return fdatasync(st->sync_fd) == 0 ? FBX_OK : map_err(errno);
}

int
fbx_store_grow(fbx_store *st)
{
	size_t size = st->map_size;

	if (fbxi_kv_is_pg(st->env))
		return FBX_OK;
	if (size >= st->map_size_max)
		return FBX_EMAP_FULL;
	size = size > st->map_size_max / 2 ? st->map_size_max : size * 2;
	return set_map(st, size);
}

/* ---- transactions ----------------------------------------------------- */

int
fbx_txn_begin(fbx_store *st, int write, fbx_txn **out)
{
	fbx_txn *t;
	int mrc;

	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return FBX_ENOMEM;
	t->st = st;
	t->write = write != 0;
	atomic_fetch_add(&st->ntxn, 1);
	mrc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (mrc == MDB_MAP_RESIZED) {
		/* Another process grew the map: adopt its size. Only safe
		 * when this process has nothing else open. */
		if (atomic_load(&st->ntxn) == 1 &&
		    mdb_env_set_mapsize(st->env, 0) == 0) {
			MDB_envinfo info;
			if (mdb_env_info(st->env, &info) == 0)
				st->map_size = info.me_mapsize;
			mrc = mdb_txn_begin(st->env, NULL,
			    write ? 0 : MDB_RDONLY, &t->txn);
		}
	}
	if (mrc != 0) {
		atomic_fetch_sub(&st->ntxn, 1);
		free(t);
		if (mrc == MDB_READERS_FULL)
			return FBX_EBUSY;
		return mrc == ENOMEM ? FBX_ENOMEM : FBX_ESTORAGE;
	}
	*out = t;
	return FBX_OK;
}

int
fbx_txn_begin_child(fbx_txn *parent, fbx_txn **out)
{
	fbx_txn *t;
	int mrc;

	if (parent == NULL || !parent->write || parent->parent != NULL)
		return FBX_EINVALID;
	if (parent->err != 0)
		return parent->err;
	/* the child reads the parent's deliveries as written */
	DLV_NEW_FLUSH(parent);
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return FBX_ENOMEM;
	t->st = parent->st;
	t->write = 1;
	t->parent = parent;
	mrc = mdb_txn_begin(parent->st->env, parent->txn, 0, &t->txn);
	if (mrc != 0) {
		free(t);
		return mrc == ENOMEM ? FBX_ENOMEM : map_err(mrc);
	}
	atomic_fetch_add(&t->st->ntxn, 1);
	*out = t;
	return FBX_OK;
}

static void
txn_free(fbx_txn *t)
{
	atomic_fetch_sub(&t->st->ntxn, 1);
	free(t->nw);
	free(t);
}

/* Test hooks (never set by fuseboxd): while positive, each top-level
 * write commit fails with fbx_store_test_fail_err (default FBX_EIO) as if
 * the disk had, nothing of it stored, and the count goes down by one. */
int fbx_store_test_fail_commits;
int fbx_store_test_fail_err;

/* dlv_new_hand_up - a child about to commit: make room in its parent for
 * the deliveries it holds back, so they go up with the commit instead of
 * being written. @return 1 if they can go up, 0 if they must be written
 * (a top-level transaction, or no memory). */
static int
dlv_new_hand_up(fbx_txn *t)
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

int
fbx_txn_commit(fbx_txn *t)
{
	int rc, mrc;

	if (t == NULL)
		return FBX_EINVALID;
	if (fbx_store_test_fail_commits > 0 && t->write && t->parent == NULL &&
	    t->err == 0) {
		fbx_store_test_fail_commits--;
		if (t->dlv_cur != NULL)
			mdb_cursor_close(t->dlv_cur);
		mdb_txn_abort(t->txn);
		rc = fbx_store_test_fail_err != 0 ? fbx_store_test_fail_err
		                                  : FBX_EIO;
		goto out;
	}
	if (t->nnw > 0 && t->err == 0 && !dlv_new_hand_up(t))
		(void)dlv_new_flush(t); /* sets t->err on failure */
	if (t->dlv_cur != NULL)
		mdb_cursor_close(t->dlv_cur);
	if (t->err != 0) {
		rc = t->err;
		mdb_txn_abort(t->txn);
		goto out;
	}
	mrc = mdb_txn_commit(t->txn);
	rc = map_err(mrc);
	if (t->parent != NULL) {
		/* the parent's idea of the last delivery key may be stale */
		t->parent->dlv_last_known = 0;
		if (rc == FBX_OK && t->nnw > 0) {
			/* room was made by dlv_new_hand_up */
			fbx_txn *p = t->parent;
			if (p->nnw > 0 && p->nw[p->nnw - 1].id >= t->nw[0].id)
				p->nw_unsorted = 1;
			p->nw_unsorted |= t->nw_unsorted;
			memcpy(p->nw + p->nnw, t->nw, t->nnw * sizeof(*t->nw));
			p->nnw += t->nnw;
		}
		if (rc != FBX_OK && rc != FBX_ENOMEM)
			rc = FBX_ESTORAGE;
		goto out;
	}
	if (rc == FBX_ENOT_FOUND || rc == FBX_ECORRUPT)
		rc = FBX_ESTORAGE;
	if (rc == FBX_EIO && disk_nearly_full(t->st))
		rc = FBX_EDISK_FULL; /* LMDB reports a short write as EIO */
out:
	txn_free(t);
	return rc;
}

void
fbx_txn_abort(fbx_txn *t)
{
	if (t == NULL)
		return;
	if (t->dlv_cur != NULL)
		mdb_cursor_close(t->dlv_cur);
	mdb_txn_abort(t->txn);
	txn_free(t);
}

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

/* read_err - translate an LMDB error met while reading. */
static int
read_err(int mrc)
{
	int rc = map_err(mrc);

	return rc == FBX_OK ? FBX_ESTORAGE : rc;
}

/* ---- command journal ---------------------------------------------- */

static int
put_empty(fbx_txn *t, MDB_dbi dbi, const void *key, size_t klen)
{
	MDB_val k = { klen, (void *)key }, v = { 0, NULL };
	int mrc = mdb_put(t->txn, dbi, &k, &v, 0);

	return mrc == 0 ? FBX_OK : txn_fail(t, mrc);
}

/* del_key - delete key; absence is fine. */
static int
del_key(fbx_txn *t, MDB_dbi dbi, const void *key, size_t klen)
{
	MDB_val k = { klen, (void *)key };
	int mrc = mdb_del(t->txn, dbi, &k, NULL);

	if (mrc == 0 || mrc == MDB_NOTFOUND)
		return FBX_OK;
	return txn_fail(t, mrc);
}

/* cmd_append - fbx_store_cmd_append, or with want != 0 the append of
 * command id `want`, the id fbx_store_cmd_last + 1 gave earlier in the
 * same transaction (MDB_APPEND refuses one at or below the last: a
 * write error). */
static int
cmd_append(fbx_txn *t, struct fbx_command *cmd, uint64_t want)
{
	fbx_store *st;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t idb[8], hdr[CMD_HDR_MAX], key[KEY_MAX];
	size_t hlen, on, klen;
	uint64_t id = 1;
	int rc, mrc;

	TXN_WRITE_CHECK(t);
	st = t->st;
	if (cmd == NULL || !cmd_strings_ok(cmd) ||
	    cmd->payload_len > FBX_PAYLOAD_MAX ||
	    (cmd->payload_len > 0 && cmd->payload == NULL) ||
	    cmd->ndev_ids > FBX_TARGET_IDS_MAX ||
	    (cmd->ndev_ids > 0 && cmd->dev_ids == NULL))
		return FBX_EINVALID;
	for (uint32_t i = 0; i < cmd->ndev_ids; i++) {
		if (!opt_ok(cmd->dev_ids[i]))
			return FBX_EINVALID;
	}
	on = strlen(cmd->org);
	/* a key already used: LMDB refuses the idempotency put below
	 * (MDB_NOOVERWRITE, before anything is written); PostgreSQL's
	 * table is read first */
	if (cmd->idem_key[0] != '\0' && fbxi_kv_is_pg(st->env)) {
		uint64_t old;
		rc = fbx_store_idem_get(t, cmd->org, cmd->idem_key, &old);
		if (rc == FBX_OK)
			return FBX_EIDEMPOTENCY_CONFLICT;
		if (rc != FBX_ENOT_FOUND)
			return rc;
	}
	rc = cmd_hdr_encode(cmd, cmd->payload_len, cmd->ndev_ids, hdr,
	    sizeof(hdr), &hlen);
	if (rc != FBX_OK)
		return rc;

	if (want != 0) {
		if (want > FBX_CMD_ID_MAX)
			return FBX_ETOO_MANY;
		id = want;
		goto have_id;
	}
	mrc = mdb_cursor_open(t->txn, st->cmd, &cur);
	if (mrc != 0)
		return read_err(mrc);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (mrc == 0) {
		if (k.mv_size != 8) {
			rc = FBX_ECORRUPT;
			goto out;
		}
		id = get_be64(k.mv_data) + 1;
		/* delivery ids are id << 24 | index: past 2^40 commands
		 * they would collide */
		if (id > FBX_CMD_ID_MAX) {
			rc = FBX_ETOO_MANY;
			goto out;
		}
	} else if (mrc != MDB_NOTFOUND) {
		rc = read_err(mrc);
		goto out;
	}
	mdb_cursor_close(cur);
	cur = NULL;
have_id:

	if (cmd->idem_key[0] != '\0') {
		uint8_t idle[8];
		klen = key_cat(key, 0, cmd->org, on, 1);
		klen = key_cat(key, klen, cmd->idem_key,
		    strlen(cmd->idem_key), 0);
		for (int i = 0; i < 8; i++)
			idle[i] = (uint8_t)(id >> (8 * i));
		k.mv_size = klen;
		k.mv_data = key;
		v.mv_size = 8;
		v.mv_data = idle;
		mrc = mdb_put(t->txn, st->idem, &k, &v,
		    fbxi_kv_is_pg(st->env) ? 0 : MDB_NOOVERWRITE);
		if (mrc == MDB_KEYEXIST) {
			rc = FBX_EIDEMPOTENCY_CONFLICT; /* nothing written */
			goto out;
		}
		if (mrc != 0) {
			rc = txn_fail(t, mrc);
			goto out;
		}
	}
	put_be64(idb, id);
	k.mv_size = 8;
	k.mv_data = idb;
	v.mv_size = hlen;
	v.mv_data = hdr;
	mrc = mdb_put(t->txn, st->cmd, &k, &v, MDB_APPEND);
	if (mrc != 0) {
		rc = txn_fail(t, mrc);
		goto out;
	}
	if (cmd->payload_len > 0 || cmd->ndev_ids > 0) {
		struct wr w;
		v.mv_size = cmd_body_size(cmd);
		v.mv_data = NULL;
		mrc = mdb_put(t->txn, st->cmd_body, &k, &v,
		    MDB_APPEND | MDB_RESERVE);
		if (mrc != 0) {
			rc = txn_fail(t, mrc);
			goto out;
		}
		w.p = v.mv_data;
		w.end = w.p + v.mv_size;
		w.bad = 0;
		wr_u8(&w, REC_V1);
		wr_le(&w, cmd->payload_len, 4);
		wr_bytes(&w, cmd->payload, cmd->payload_len);
		wr_le(&w, cmd->ndev_ids, 4);
		for (uint32_t i = 0; i < cmd->ndev_ids; i++)
			wr_str(&w, cmd->dev_ids[i], FBX_ID_MAX + 1);
		if (w.bad || w.p != w.end) {
			/* Sizes were computed from the same struct: a
			 * mismatch means memory changed under us. */
			t->err = FBX_ESTORAGE;
			rc = FBX_ESTORAGE;
			goto out;
		}
	}
	if (st->ix_lag <= 1) {
		mrc = fbxs_ixw_unlag(
		    t->txn, st, IXW_CMD, id, fbxs_cmd_ix_catch);
		if (mrc != 0) {
			rc = txn_fail(t, mrc);
			goto out;
		}
		klen = cmd_org_key(key, cmd->org, on, cmd->created_ms, id);
		rc = put_empty(t, st->cmd_org, key, klen);
	} else {
		mrc = fbxs_ixw_lagging(
		    t->txn, st, IXW_CMD, id, fbxs_cmd_ix_catch);
		rc = mrc == 0 ? FBX_OK : txn_fail(t, mrc);
	}
	if (rc != FBX_OK)
		goto out;
	if (!fbx_cstate_terminal(cmd->state)) {
		rc = put_empty(t, st->cmd_active, idb, 8);
		if (rc != FBX_OK)
			goto out;
	}
	cmd->id = id;
	rc = FBX_OK;
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_cmd_append(fbx_txn *t, struct fbx_command *cmd)
{
	return cmd_append(t, cmd, 0);
}

int
fbx_store_cmd_append_id(fbx_txn *t, struct fbx_command *cmd, uint64_t id)
{
	if (id == 0)
		return FBX_EINVALID;
	return cmd_append(t, cmd, id);
}

int
fbx_store_cmd_put(fbx_txn *t, const struct fbx_command *cmd)
{
	fbx_store *st;
	struct cmd_peek old;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t idb[8], hdr[CMD_HDR_MAX], key[KEY_MAX];
	char oorg[FBX_ID_MAX + 1];
	size_t hlen, klen;
	int rc, mrc;

	TXN_WRITE_CHECK(t);
	st = t->st;
	if (cmd == NULL || cmd->id == 0 || !cmd_strings_ok(cmd))
		return FBX_EINVALID;
	put_be64(idb, cmd->id);
	k.mv_size = 8;
	k.mv_data = idb;
	/* one descent: read the record and rewrite it where it is */
	mrc = mdb_cursor_open(t->txn, st->cmd, &cur);
	if (mrc != 0)
		return read_err(mrc);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (mrc != 0) {
		mdb_cursor_close(cur);
		return read_err(mrc);
	}
	rc = cmd_hdr_peek(&v, &old) == 0 ? FBX_OK : FBX_ECORRUPT;
	/* Payload and device ids are journaled once by append: the stored
	 * body stays, whatever the caller's struct holds. */
	if (rc == FBX_OK)
		rc = cmd_hdr_encode(cmd, old.plen, old.ndev, hdr, sizeof(hdr),
		    &hlen);
	if (rc != FBX_OK) {
		mdb_cursor_close(cur);
		return rc;
	}
	/* the organisation read above is in the page the put below
	 * may overwrite */
	memcpy(oorg, old.org, old.olen);
	oorg[old.olen] = '\0';
	k.mv_size = 8;
	k.mv_data = idb;
	v.mv_size = hlen;
	v.mv_data = hdr;
	mrc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
	mdb_cursor_close(cur);
	if (mrc != 0)
		return txn_fail(t, mrc);
	/* the active set changes only when the state crosses into or out
	 * of the terminal states (most rewrites change counts or the
	 * cursor: no second tree touched for them) */
	if (fbx_cstate_terminal(cmd->state) != fbx_cstate_terminal(old.state))
		rc = fbx_cstate_terminal(cmd->state)
		    ? del_key(t, st->cmd_active, idb, 8)
		    : put_empty(t, st->cmd_active, idb, 8);
	if (rc != FBX_OK)
		return rc;
	if (strcmp(oorg, cmd->org) != 0 || old.created != cmd->created_ms) {
		uint64_t wm = 0;
		int present = 0;
		if (!fbxi_kv_is_pg(st->env))
			mrc = fbxs_ixw_get(t->txn, st, IXW_CMD, &wm, &present);
		if (mrc != 0)
			return txn_fail(t, mrc);
		if (present && cmd->id > wm)
			return FBX_OK; /* not indexed yet: caught up as it is */
		klen = cmd_org_key(key, oorg, old.olen, old.created, cmd->id);
		rc = del_key(t, st->cmd_org, key, klen);
		if (rc != FBX_OK)
			return rc;
		klen = cmd_org_key(key, cmd->org, strlen(cmd->org),
		    cmd->created_ms, cmd->id);
		rc = put_empty(t, st->cmd_org, key, klen);
	}
	return rc;
}

/* cmd_load - read command id; with body loads payload and device ids. */
static int
cmd_load(fbx_txn *t, uint64_t id, int body, struct fbx_command *out)
{
	struct fbx_command c;
	MDB_val k, v;
	uint8_t idb[8];
	uint32_t plen, ndev;
	int rc, mrc;

	put_be64(idb, id);
	k.mv_size = 8;
	k.mv_data = idb;
	mrc = mdb_get(t->txn, t->st->cmd, &k, &v);
	if (mrc != 0)
		return read_err(mrc);
	rc = cmd_hdr_decode(id, &v, &c, &plen, &ndev);
	if (rc != FBX_OK)
		return rc;
	if (body && (plen > 0 || ndev > 0)) {
		mrc = mdb_get(t->txn, t->st->cmd_body, &k, &v);
		if (mrc == MDB_NOTFOUND)
			return FBX_ECORRUPT;
		if (mrc != 0)
			return read_err(mrc);
		rc = cmd_body_decode(&v, plen, ndev, &c);
		if (rc != FBX_OK)
			return rc;
	}
	*out = c;
	return FBX_OK;
}

int
fbx_store_cmd_get(fbx_txn *t, uint64_t id, struct fbx_command *out)
{
	TXN_READ_CHECK(t);
	if (out == NULL)
		return FBX_EINVALID;
	return cmd_load(t, id, 1, out);
}

int
fbx_store_cmd_head(fbx_txn *t, uint64_t id, struct fbx_command *out)
{
	TXN_READ_CHECK(t);
	if (out == NULL)
		return FBX_EINVALID;
	return cmd_load(t, id, 0, out);
}

/* A command of cmd_list's organisation after the cmd_org mark. */
struct cmd_tail {
	int64_t created;
	uint64_t id;
};

static int
cmd_tail_cmp(const void *a, const void *b)
{
	const struct cmd_tail *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* cmd_tail_collect - the commands of org not yet in cmd_org (id > the
 * mark) that cmd_list's window selects: (created, id) at or after
 * (c0, i0), created before until (0: no bound), id > after when
 * filter_after; sorted by (created, id). At most st->ix_lag of them. */
static int
cmd_tail_collect(fbx_txn *t, const char *org, int64_t c0, uint64_t i0,
    int64_t until, int filter_after, uint64_t after, struct cmd_tail **out,
    size_t *nout)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	struct cmd_tail *a = NULL;
	size_t n = 0, cap = 0, on = strlen(org);
	uint64_t wm;
	int present, mrc, rc = FBX_OK;

	*out = NULL;
	*nout = 0;
	if (fbxi_kv_is_pg(t->st->env))
		return FBX_OK; /* indexed at once there: no mark to read */
	mrc = fbxs_ixw_get(t->txn, t->st, IXW_CMD, &wm, &present);
	if (mrc != 0)
		return read_err(mrc);
	if (!present)
		return FBX_OK;
	mrc = mdb_cursor_open(t->txn, t->st->cmd, &cur);
	if (mrc != 0)
		return read_err(mrc);
	put_be64(kb, wm + 1);
	k.mv_size = 8;
	k.mv_data = kb;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0) {
		const char *co;
		size_t col;
		int64_t created;
		uint64_t id;
		if (k.mv_size != 8 ||
		    cmd_hdr_org(&v, &co, &col, &created) != 0) {
			rc = FBX_ECORRUPT;
			break;
		}
		id = get_be64(k.mv_data);
		if (col == on && memcmp(co, org, on) == 0 &&
		    (created > c0 || (created == c0 && id >= i0)) &&
		    (until == 0 || created < until) &&
		    (!filter_after || id > after)) {
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 64;
				struct cmd_tail *na =
				    realloc(a, nc * sizeof(*a));
				if (na == NULL) {
					rc = FBX_ENOMEM;
					break;
				}
				a = na;
				cap = nc;
			}
			a[n].created = created;
			a[n].id = id;
			n++;
		}
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc == FBX_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = read_err(mrc);
	if (rc != FBX_OK) {
		free(a);
		return rc;
	}
	if (n > 1)
		qsort(a, n, sizeof(*a), cmd_tail_cmp);
	*out = a;
	*nout = n;
	return FBX_OK;
}

int
fbx_store_cmd_list(fbx_txn *t, const char *org, int64_t since_ms,
    int64_t until_ms, uint64_t after, uint32_t limit, fbx_cmd_fn fn,
    void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint8_t key[KEY_MAX];
	size_t on, pl, klen, nt = 0, ti = 0;
	struct cmd_tail *tail = NULL;
	int64_t c0 = since_ms;
	uint64_t i0 = 0;
	uint32_t n = 0;
	int filter_after = 0, ilive, rc, mrc;

	TXN_READ_CHECK(t);
	if (id_len(org, &on) != FBX_OK || fn == NULL)
		return FBX_EINVALID;
	pl = on + 1;
	if (after != 0) {
		struct fbx_command ac;
		rc = cmd_load(t, after, 0, &ac);
		if (rc == FBX_OK && strcmp(ac.org, org) == 0) {
			/* Resume just past `after` in (created, id) order. */
			if (ac.created_ms >= since_ms) {
				c0 = ac.created_ms;
				i0 = after + 1;
			}
		} else if (rc == FBX_OK || rc == FBX_ENOT_FOUND) {
			filter_after = 1;
		} else {
			return rc;
		}
	}
	klen = cmd_org_key(key, org, on, c0, i0);
	/* the organisation's commands not in cmd_org yet, merged in */
	rc = cmd_tail_collect(t, org, c0, i0, until_ms, filter_after, after,
	    &tail, &nt);
	if (rc != FBX_OK)
		return rc;
	mrc = mdb_cursor_open(t->txn, t->st->cmd_org, &cur);
	if (mrc != 0) {
		free(tail);
		return read_err(mrc);
	}
	k.mv_size = klen;
	k.mv_data = key;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	ilive = 1;
	while (limit == 0 || n < limit) {
		struct fbx_command c;
		const uint8_t *kb = k.mv_data;
		int64_t created = 0;
		uint64_t id = 0;

		if (ilive && mrc == 0) {
			if (!has_prefix(&k, key, pl)) {
				ilive = 0;
			} else if (k.mv_size != pl + 16) {
				rc = FBX_ECORRUPT;
				goto out;
			} else {
				created = time_unkey(get_be64(kb + pl));
				id = get_be64(kb + pl + 8);
				if (until_ms != 0 && created >= until_ms)
					ilive = 0;
			}
		} else if (ilive) {
			if (mrc != MDB_NOTFOUND) {
				rc = read_err(mrc);
				goto out;
			}
			ilive = 0;
		}
		if (ti < nt && (!ilive || tail[ti].created < created ||
		                   (tail[ti].created == created &&
		                       tail[ti].id < id))) {
			id = tail[ti++].id; /* next in order: not indexed */
		} else if (!ilive) {
			break;
		} else {
			mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			if (filter_after && id <= after)
				continue;
		}
		rc = cmd_load(t, id, 0, &c);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_ECORRUPT;
		if (rc != FBX_OK)
			goto out;
		n++;
		if (fn(arg, &c) != 0)
			break;
	}
	rc = FBX_OK;
out:
	mdb_cursor_close(cur);
	free(tail);
	return rc;
}

int
fbx_store_cmd_active(fbx_txn *t, fbx_cmd_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc, mrc;

	TXN_READ_CHECK(t);
	if (fn == NULL)
		return FBX_EINVALID;
	mrc = mdb_cursor_open(t->txn, t->st->cmd_active, &cur);
	if (mrc != 0)
		return read_err(mrc);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0) {
		struct fbx_command c;
		int stop;

		if (k.mv_size != 8) {
			rc = FBX_ECORRUPT;
			goto out;
		}
		rc = cmd_load(t, get_be64(k.mv_data), 1, &c);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_ECORRUPT;
		if (rc != FBX_OK)
			goto out;
		stop = fn(arg, &c);
		fbx_command_clear(&c);
		if (stop)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = read_err(mrc);
		goto out;
	}
	rc = FBX_OK;
out:
	mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_idem_get(
    fbx_txn *t, const char *org, const char *key, uint64_t *cmd_id)
{
	uint8_t kb[KEY_MAX];
	size_t on, kn, klen;
	MDB_val k, v;
	uint64_t id = 0;
	int mrc;

	TXN_READ_CHECK(t);
	if (id_len(org, &on) != FBX_OK || id_len(key, &kn) != FBX_OK ||
	    cmd_id == NULL)
		return FBX_EINVALID;
	klen = key_cat(kb, 0, org, on, 1);
	klen = key_cat(kb, klen, key, kn, 0);
	k.mv_size = klen;
	k.mv_data = kb;
	mrc = mdb_get(t->txn, t->st->idem, &k, &v);
	if (mrc != 0)
		return read_err(mrc);
	if (v.mv_size != 8)
		return FBX_ECORRUPT;
	for (int i = 0; i < 8; i++)
		id |= (uint64_t)((const uint8_t *)v.mv_data)[i] << (8 * i);
	*cmd_id = id;
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
			return read_err(mrc);
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
		return read_err(mrc);
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
		return read_err(mrc);
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
		rc = read_err(mrc);
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
	MDB_cursor *cur;
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
		return read_err(mrc);
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
		return txn_fail(t, mrc);
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
	MDB_cursor *cur;
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
		return read_err(mrc);
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
		return txn_fail(t, mrc);
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
	MDB_cursor *cur;
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
			return mrc == 0 ? FBX_ECORRUPT : read_err(mrc);
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
		return txn_fail(t, mrc);
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

/* dlv_new_flush - write the created deliveries t holds back, in the order
 * they were created (ascending ids are appended). */
static int
dlv_new_flush(fbx_txn *t)
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
	return put_empty(t, t->st->pend, key, n + 8);
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
		return txn_fail(t, mrc);
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
		return read_err(mrc);
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
		rc = read_err(mrc);
		goto out;
	}
	rc = FBX_OK;
out:
	mdb_cursor_close(cur);
	return rc;
}

/* ---- device registry --------------------------------------------------- */

static size_t
grp_key(uint8_t *k, const char *org, size_t on, const char *group,
    const char *id, size_t in)
{
	size_t n = key_cat(k, 0, org, on, 1);

	n = key_cat(k, n, group, strlen(group), 1);
	return key_cat(k, n, id, in, 0);
}

static int
has_group(const struct fbx_device *dv, const char *g)
{
	for (unsigned i = 0; i < dv->ngroups; i++) {
		if (strcmp(dv->groups[i], g) == 0)
			return 1;
	}
	return 0;
}

/* org_adjust - add delta to org's device count, creating the record. */
static int
org_adjust(fbx_txn *t, const char *org, size_t on, int delta)
{
	MDB_val k = { on, (void *)org }, v;
	uint8_t rec[ORG_REC_LEN];
	uint32_t count = 0;
	int64_t created;
	int rc, mrc;

	mrc = mdb_get(t->txn, t->st->org, &k, &v);
	if (mrc == 0) {
		rc = org_decode(&v, &count, &created);
		if (rc != FBX_OK)
			return rc;
	} else if (mrc == MDB_NOTFOUND) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		created = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	} else {
		return read_err(mrc);
	}
	if (delta < 0 && count > 0)
		count--;
	else if (delta > 0 && count < UINT32_MAX)
		count++;
	org_encode(count, created, rec);
	v.mv_size = sizeof(rec);
	v.mv_data = rec;
	mrc = mdb_put(t->txn, t->st->org, &k, &v, 0);
	return mrc == 0 ? FBX_OK : txn_fail(t, mrc);
}

int
fbx_store_dev_put(fbx_txn *t, const struct fbx_device *dev, int *created)
{
	struct fbx_device old;
	uint8_t key[KEY_MAX], gkey[KEY_MAX], rec[DEV_REC_MAX];
	MDB_val k, v;
	size_t on, in, klen, len;
	int exists = 0, rc, mrc;

	TXN_WRITE_CHECK(t);
	if (dev == NULL || id_len(dev->org, &on) != FBX_OK ||
	    id_len(dev->id, &in) != FBX_OK || dev->ngroups > FBX_GROUPS_MAX)
		return FBX_EINVALID;
	for (unsigned i = 0; i < dev->ngroups; i++) {
		size_t gn;
		if (id_len(dev->groups[i], &gn) != FBX_OK)
			return FBX_EINVALID;
	}
	rc = dev_encode(dev, rec, sizeof(rec), &len);
	if (rc != FBX_OK)
		return rc;
	klen = key_cat(key, 0, dev->org, on, 1);
	klen = key_cat(key, klen, dev->id, in, 0);
	k.mv_size = klen;
	k.mv_data = key;
	mrc = mdb_get(t->txn, t->st->dev, &k, &v);
	if (mrc == 0) {
		rc = dev_decode(&k, &v, &old);
		if (rc != FBX_OK)
			return rc;
		exists = 1;
	} else if (mrc != MDB_NOTFOUND) {
		return read_err(mrc);
	}
	v.mv_size = len;
	v.mv_data = rec;
	mrc = mdb_put(t->txn, t->st->dev, &k, &v, 0);
	if (mrc != 0)
		return txn_fail(t, mrc);
	for (unsigned i = 0; exists && i < old.ngroups; i++) {
		if (has_group(dev, old.groups[i]))
			continue;
		klen = grp_key(gkey, dev->org, on, old.groups[i], dev->id, in);
		rc = del_key(t, t->st->grp, gkey, klen);
		if (rc != FBX_OK)
			return rc;
	}
	for (unsigned i = 0; i < dev->ngroups; i++) {
		if (exists && has_group(&old, dev->groups[i]))
			continue;
		klen = grp_key(gkey, dev->org, on, dev->groups[i], dev->id, in);
		rc = put_empty(t, t->st->grp, gkey, klen);
		if (rc != FBX_OK)
			return rc;
	}
	if (!exists) {
		rc = org_adjust(t, dev->org, on, 1);
		if (rc != FBX_OK) {
			/* Records above are written: a half-done update
			 * must not be committed. */
			if (t->err == 0)
				t->err = rc;
			return rc;
		}
	}
	if (created != NULL)
		*created = !exists;
	return FBX_OK;
}

int
fbx_store_dev_set_online(
    fbx_txn *t, const char *org, const char *id, int online)
{
	uint8_t key[KEY_MAX], rec[DEV_REC_MAX];
	const uint8_t *p;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t on, in, klen;
	int rc, mrc;

	TXN_WRITE_CHECK(t);
	if (org == NULL || id == NULL || id_len(org, &on) != FBX_OK ||
	    id_len(id, &in) != FBX_OK)
		return FBX_EINVALID;
	klen = key_cat(key, 0, org, on, 1);
	klen = key_cat(key, klen, id, in, 0);
	k.mv_size = klen;
	k.mv_data = key;
	mrc = mdb_cursor_open(t->txn, t->st->dev, &cur);
	if (mrc != 0)
		return read_err(mrc);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (mrc != 0) {
		rc = mrc == MDB_NOTFOUND ? FBX_ENOT_FOUND : read_err(mrc);
		goto out;
	}
	/* version, platform, online: the layout dev_encode writes */
	p = v.mv_data;
	if (v.mv_size < 3 || v.mv_size > sizeof(rec) || p[0] != REC_V1) {
		rc = FBX_ECORRUPT;
		goto out;
	}
	rc = FBX_OK;
	if ((p[2] != 0) == (online != 0))
		goto out;
	memcpy(rec, p, v.mv_size);
	rec[2] = online ? 1 : 0;
	v.mv_data = rec;
	/* MDB_CURRENT on the positioned cursor: the same size, in place */
	mrc = mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
	if (mrc != 0)
		rc = txn_fail(t, mrc);
out:
	mdb_cursor_close(cur);
	return rc;
}

static int
dev_read(fbx_txn *t, const uint8_t *key, size_t klen, struct fbx_device *out)
{
	MDB_val k = { klen, (void *)key }, v;
	int mrc;

	mrc = mdb_get(t->txn, t->st->dev, &k, &v);
	if (mrc != 0)
		return read_err(mrc);
	return dev_decode(&k, &v, out);
}

int
fbx_store_dev_get(
    fbx_txn *t, const char *org, const char *id, struct fbx_device *out)
{
	struct fbx_device dv;
	uint8_t key[KEY_MAX];
	size_t on, in, klen;
	int rc;

	TXN_READ_CHECK(t);
	if (out == NULL || id_len(org, &on) != FBX_OK ||
	    id_len(id, &in) != FBX_OK)
		return FBX_EINVALID;
	klen = key_cat(key, 0, org, on, 1);
	klen = key_cat(key, klen, id, in, 0);
	rc = dev_read(t, key, klen, &dv);
	if (rc != FBX_OK)
		return rc;
	*out = dv;
	return FBX_OK;
}

int
fbx_store_dev_del(fbx_txn *t, const char *org, const char *id)
{
	struct fbx_device old;
	uint8_t key[KEY_MAX], gkey[KEY_MAX];
	size_t on, in, klen;
	MDB_val k;
	int rc, mrc;

	TXN_WRITE_CHECK(t);
	if (id_len(org, &on) != FBX_OK || id_len(id, &in) != FBX_OK)
		return FBX_EINVALID;
	klen = key_cat(key, 0, org, on, 1);
	klen = key_cat(key, klen, id, in, 0);
	rc = dev_read(t, key, klen, &old);
	if (rc != FBX_OK)
		return rc;
	k.mv_size = klen;
	k.mv_data = key;
	mrc = mdb_del(t->txn, t->st->dev, &k, NULL);
	if (mrc != 0)
		return txn_fail(t, mrc);
	for (unsigned i = 0; i < old.ngroups; i++) {
		klen = grp_key(gkey, org, on, old.groups[i], id, in);
		rc = del_key(t, t->st->grp, gkey, klen);
		if (rc != FBX_OK)
			return rc;
	}
	rc = org_adjust(t, org, on, -1);
	if (rc != FBX_OK && t->err == 0)
		t->err = rc;
	return rc;
}

/* dev_walk_fn - one device of a walk: its dev key (org \0 id) and record,
 * valid only during the call, and its id bytes; *stop ends the walk */
typedef int (*dev_walk_fn)(void *arg, const MDB_val *dk, const MDB_val *dv,
    const uint8_t *id, size_t id_len, int *stop);

/* dev_walk - the devices of `org` (of `group` if not NULL/empty) with id
 * > after, ascending by id, at most limit (0 = no limit): what
 * fbx_store_dev_scan and fbx_store_dev_scan_brief share. A group entry
 * whose device record is missing is FBX_ECORRUPT. */
static int
dev_walk(fbx_txn *t, const char *org, const char *group, const char *after,
    uint32_t limit, dev_walk_fn fn, void *arg)
{
	int by_group = group != NULL && group[0] != '\0';
	uint8_t pfx[KEY_MAX], key[KEY_MAX];
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t on, gn = 0, an = 0, pl, klen;
	uint32_t n = 0;
	int rc, mrc;

	TXN_READ_CHECK(t);
	if (id_len(org, &on) != FBX_OK)
		return FBX_EINVALID;
	if (by_group && id_len(group, &gn) != FBX_OK)
		return FBX_EINVALID;
	if (after != NULL && after[0] != '\0' && id_len(after, &an) != FBX_OK)
		return FBX_EINVALID;
	pl = key_cat(pfx, 0, org, on, 1);
	if (by_group)
		pl = key_cat(pfx, pl, group, gn, 1);
	memcpy(key, pfx, pl);
	klen = key_cat(key, pl, after != NULL ? after : "", an, 0);
	mrc = mdb_cursor_open(t->txn, by_group ? t->st->grp : t->st->dev, &cur);
	if (mrc != 0)
		return read_err(mrc);
	k.mv_size = klen;
	k.mv_data = key;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	/* SET_RANGE lands on `after` itself when it exists: skip it. */
	if (mrc == 0 && an > 0 && key_eq(&k, key, klen))
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	while (mrc == 0 && (limit == 0 || n < limit)) {
		MDB_val dk = k, dv = v;
		const uint8_t *id = (const uint8_t *)k.mv_data + pl;
		size_t in = k.mv_size - pl;
		uint8_t dkey[KEY_MAX];
		int stop = 0;

		if (!has_prefix(&k, pfx, pl))
			break;
		if (by_group) {
			/* the grp key's tail is the device id: its record
			 * is under org \0 id */
			size_t dl;
			if (in == 0 || in > FBX_ID_MAX) {
				rc = FBX_ECORRUPT;
				goto out;
			}
			dl = key_cat(dkey, 0, org, on, 1);
			memcpy(dkey + dl, id, in);
			dk.mv_size = dl + in;
			dk.mv_data = dkey;
			mrc = mdb_get(t->txn, t->st->dev, &dk, &dv);
			if (mrc != 0) {
				rc = mrc == MDB_NOTFOUND ? FBX_ECORRUPT
				                         : read_err(mrc);
				goto out;
			}
			id = dkey + dl;
		}
		rc = fn(arg, &dk, &dv, id, in, &stop);
		if (rc != FBX_OK)
			goto out;
		n++;
		if (stop)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = read_err(mrc);
		goto out;
	}
	rc = FBX_OK;
out:
	mdb_cursor_close(cur);
	return rc;
}

struct dev_full_ctx {
	fbx_dev_fn fn;
	void *arg;
};

static int
dev_full_cb(void *arg, const MDB_val *dk, const MDB_val *dv,
    const uint8_t *id, size_t id_len, int *stop)
{
	struct dev_full_ctx *c = arg;
	struct fbx_device d;
	int rc = dev_decode(dk, dv, &d);

	(void)id;
	(void)id_len;
	if (rc == FBX_OK)
		*stop = c->fn(c->arg, &d) != 0;
	return rc;
}

int
fbx_store_dev_scan(fbx_txn *t, const char *org, const char *group,
    const char *after, uint32_t limit, fbx_dev_fn fn, void *arg)
{
	struct dev_full_ctx c = { fn, arg };

	if (fn == NULL)
		return FBX_EINVALID;
	return dev_walk(t, org, group, after, limit, dev_full_cb, &c);
}

/* dev_brief - the checks of dev_decode on a record whose key is
 * org \0 id (id_len bytes at id), without copying anything out. */
static int
dev_brief(const uint8_t *id, size_t id_len, const MDB_val *v,
    struct fbx_dev_brief *b)
{
	struct rd r = { v->mv_data, (const uint8_t *)v->mv_data + v->mv_size,
		0 };
	unsigned ng;
	size_t n;

	if (id_len == 0 || id_len > FBX_ID_MAX ||
	    memchr(id, '\0', id_len) != NULL)
		return FBX_ECORRUPT;
	if (rd_u8(&r) != REC_V1)
		return FBX_ECORRUPT;
	b->platform = (uint8_t)rd_u8(&r);
	b->online = (uint8_t)rd_u8(&r);
	(void)rd_u8(&r); /* attestation */
	(void)rd_le(&r, 8);
	(void)rd_le(&r, 8);
	/* os_version, then the groups: str as rd_str reads them */
	n = rd_u8(&r);
	if (r.bad || n > FBX_OSVER_MAX || (size_t)(r.end - r.p) < n ||
	    memchr(r.p, '\0', n) != NULL)
		return FBX_ECORRUPT;
	r.p += n;
	ng = rd_u8(&r);
	if (r.bad || ng > FBX_GROUPS_MAX)
		return FBX_ECORRUPT;
	for (unsigned i = 0; i < ng; i++) {
		n = rd_u8(&r);
		if (r.bad || n > FBX_ID_MAX || (size_t)(r.end - r.p) < n ||
		    memchr(r.p, '\0', n) != NULL)
			return FBX_ECORRUPT;
		r.p += n;
	}
	if (r.p != r.end)
		return FBX_ECORRUPT;
	b->id = (const char *)id;
	b->id_len = id_len;
	return FBX_OK;
}

struct dev_brief_ctx {
	fbx_dev_brief_fn fn;
	void *arg;
};

static int
dev_brief_cb(void *arg, const MDB_val *dk, const MDB_val *dv,
    const uint8_t *id, size_t id_len, int *stop)
{
	struct dev_brief_ctx *c = arg;
	struct fbx_dev_brief b;
	int rc = dev_brief(id, id_len, dv, &b);

	(void)dk;
	if (rc == FBX_OK)
		*stop = c->fn(c->arg, &b) != 0;
	return rc;
}

int
fbx_store_dev_scan_brief(fbx_txn *t, const char *org, const char *group,
    const char *after, uint32_t limit, fbx_dev_brief_fn fn, void *arg)
{
	struct dev_brief_ctx c = { fn, arg };

	if (fn == NULL)
		return FBX_EINVALID;
	return dev_walk(t, org, group, after, limit, dev_brief_cb, &c);
}

int
fbx_store_group_list(fbx_txn *t, const char *org, fbx_group_fn fn, void *arg)
{
	uint8_t pfx[KEY_MAX];
	char cur_group[FBX_ID_MAX + 1] = "";
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t on, pl;
	uint32_t count = 0;
	int rc, mrc;

	TXN_READ_CHECK(t);
	if (fn == NULL || id_len(org, &on) != FBX_OK)
		return FBX_EINVALID;
	pl = key_cat(pfx, 0, org, on, 1);
	mrc = mdb_cursor_open(t->txn, t->st->grp, &cur);
	if (mrc != 0)
		return read_err(mrc);
	k.mv_size = pl;
	k.mv_data = pfx;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (mrc == 0) {
		const uint8_t *g, *sep;
		size_t gl;

		if (!has_prefix(&k, pfx, pl))
			break;
		g = (const uint8_t *)k.mv_data + pl;
		sep = memchr(g, '\0', k.mv_size - pl);
		if (sep == NULL || sep == g || (size_t)(sep - g) > FBX_ID_MAX) {
			rc = FBX_ECORRUPT;
			goto out;
		}
		gl = (size_t)(sep - g);
		if (count > 0 && (strlen(cur_group) != gl ||
		    memcmp(cur_group, g, gl) != 0)) {
			if (fn(arg, cur_group, count) != 0) {
				count = 0;
				break;
			}
			count = 0;
		}
		if (count == 0) {
			memcpy(cur_group, g, gl);
			cur_group[gl] = '\0';
		}
		count++;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (mrc != 0 && mrc != MDB_NOTFOUND) {
		rc = read_err(mrc);
		goto out;
	}
	if (count > 0)
		fn(arg, cur_group, count);
	rc = FBX_OK;
out:
	mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_org_devices(fbx_txn *t, const char *org, uint32_t *count)
{
	MDB_val k, v;
	size_t on;
	uint32_t c;
	int64_t created;
	int rc, mrc;

	TXN_READ_CHECK(t);
	if (count == NULL || id_len(org, &on) != FBX_OK)
		return FBX_EINVALID;
	k.mv_size = on;
	k.mv_data = (void *)org;
	mrc = mdb_get(t->txn, t->st->org, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return FBX_EUNKNOWN_ORG;
	if (mrc != 0)
		return read_err(mrc);
	rc = org_decode(&v, &c, &created);
	if (rc != FBX_OK)
		return rc;
	*count = c;
	return FBX_OK;
}

/* ---- engine-owned records ---------------------------------------------- */

int
fbx_store_kv_put(fbx_txn *t, const char *key, const void *val, size_t len)
{
	MDB_val k, v;
	int mrc;

	if (t == NULL || key == NULL || (val == NULL && len > 0))
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	if (!t->write)
		return FBX_EINVALID;
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	if (k.mv_size == 0 || k.mv_size > FBX_KV_KEY_MAX ||
	    len > FBX_KV_VAL_MAX)
		return FBX_EINVALID;
	v.mv_size = len;
	v.mv_data = (void *)val;
	mrc = mdb_put(t->txn, t->st->kv, &k, &v, 0);
	return mrc == 0 ? FBX_OK : txn_fail(t, mrc);
}

int
fbx_store_kv_get(
    fbx_txn *t, const char *key, void *buf, size_t cap, size_t *len)
{
	MDB_val k, v;
	int mrc;

	if (t == NULL || key == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	k.mv_size = strlen(key);
	k.mv_data = (void *)key;
	if (k.mv_size == 0 || k.mv_size > FBX_KV_KEY_MAX)
		return FBX_EINVALID;
	mrc = mdb_get(t->txn, t->st->kv, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return FBX_ENOT_FOUND;
	if (mrc != 0)
		return FBX_ESTORAGE;
	if (v.mv_size > cap)
		return FBX_ECORRUPT;
	memcpy(buf, v.mv_data, v.mv_size);
	if (len != NULL)
		*len = v.mv_size;
	return FBX_OK;
}

int
fbx_store_kv_del(fbx_txn *t, const char *key)
{
	if (t == NULL || key == NULL || strlen(key) == 0 ||
	    strlen(key) > FBX_KV_KEY_MAX)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	return del_key(t, t->st->kv, key, strlen(key));
}

int
fbx_store_kv_scan(fbx_txn *t, const char *prefix, fbx_kv_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t plen;
	char key[FBX_KV_KEY_MAX + 1];
	int mrc, rc = FBX_OK;

	if (t == NULL || prefix == NULL || fn == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	plen = strlen(prefix);
	if (mdb_cursor_open(t->txn, t->st->kv, &cur) != 0)
		return FBX_ESTORAGE;
	k.mv_size = plen;
	k.mv_data = (void *)prefix;
	mrc = plen > 0 ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
	               : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (k.mv_size > FBX_KV_KEY_MAX) {
			rc = FBX_ECORRUPT;
			break;
		}
		memcpy(key, k.mv_data, k.mv_size);
		key[k.mv_size] = '\0';
		if (fn(arg, key, v.mv_data, v.mv_size) != 0)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == FBX_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = FBX_ESTORAGE;
	mdb_cursor_close(cur);
	return rc;
}

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
	return mrc == 0 ? FBX_OK : txn_fail(t, mrc);
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
	return mrc == 0 ? FBX_OK : txn_fail(t, mrc);
}

/* edge_key - the first or last (op) 8-byte big-endian key of dbi.
 * @return FBX_OK, FBX_ENOT_FOUND (empty), FBX_ECORRUPT (another key
 * size), FBX_ESTORAGE, or the transaction's latched error. */
static int
edge_key(fbx_txn *t, MDB_dbi dbi, MDB_cursor_op op, uint64_t *out)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int mrc, rc = FBX_OK;

	if (t->err != 0)
		return t->err;
	if (mdb_cursor_open(t->txn, dbi, &cur) != 0)
		return FBX_ESTORAGE;
	mrc = mdb_cursor_get(cur, &k, &v, op);
	if (mrc == MDB_NOTFOUND)
		rc = FBX_ENOT_FOUND;
	else if (mrc != 0)
		rc = FBX_ESTORAGE;
	else if (k.mv_size != 8)
		rc = FBX_ECORRUPT;
	else
		*out = get_be64(k.mv_data);
	mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_audit_first(fbx_txn *t, uint64_t *seq)
{
	if (t == NULL || seq == NULL)
		return FBX_EINVALID;
	return edge_key(t, t->st->audit, MDB_FIRST, seq);
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
		return txn_fail(t, mrc);
	rc = fbx_store_audit_mark_put(t, FBX_AUDIT_ANCHOR, &anchor);
	if (rc != FBX_OK)
		return rc;
	*deleted = n;
	return FBX_OK;
}

/* ---- retention --------------------------------------------------------- */

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
		rc = txn_fail(t, mrc);
	mdb_cursor_close(cur);
	/* the cached append cursor may point at a deleted key */
	t->dlv_last_known = 0;
	*deleted = n;
	return rc;
}

int
fbx_store_cmd_delete(fbx_txn *t, uint64_t id)
{
	struct fbx_command c;
	uint8_t idb[8], key[KEY_MAX];
	size_t klen, on;
	int rc;

	if (t == NULL)
		return FBX_EINVALID;
	rc = cmd_load(t, id, 0, &c);
	if (rc != FBX_OK)
		return rc;
	put_be64(idb, id);
	on = strlen(c.org);
	rc = del_key(t, t->st->cmd, idb, 8);
	if (rc == FBX_OK)
		rc = del_key(t, t->st->cmd_body, idb, 8);
	if (rc == FBX_OK)
		rc = del_key(t, t->st->cmd_active, idb, 8);
	if (rc == FBX_OK) {
		klen = cmd_org_key(key, c.org, on, c.created_ms, id);
		rc = del_key(t, t->st->cmd_org, key, klen);
	}
	if (rc == FBX_OK && c.idem_key[0] != '\0') {
		klen = key_cat(key, 0, c.org, on, 1);
		klen = key_cat(key, klen, c.idem_key, strlen(c.idem_key), 0);
		rc = del_key(t, t->st->idem, key, klen);
	}
	return rc;
}

int
fbx_store_org_list(fbx_txn *t, fbx_org_fn fn, void *arg)
{
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	char org[FBX_ID_MAX + 1];
	int mrc, rc = FBX_OK;

	if (t == NULL || fn == NULL)
		return FBX_EINVALID;
	if (t->err != 0)
		return t->err;
	if (mdb_cursor_open(t->txn, t->st->org, &cur) != 0)
		return FBX_ESTORAGE;
	mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (mrc == 0) {
		uint32_t count;
		int64_t created;
		if (k.mv_size == 0 || k.mv_size > FBX_ID_MAX ||
		    org_decode(&v, &count, &created) != FBX_OK) {
			rc = FBX_ECORRUPT;
			break;
		}
		memcpy(org, k.mv_data, k.mv_size);
		org[k.mv_size] = '\0';
		if (fn(arg, org, count) != 0)
			break;
		mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc == FBX_OK && mrc != 0 && mrc != MDB_NOTFOUND)
		rc = FBX_ESTORAGE;
	mdb_cursor_close(cur);
	return rc;
}

int
fbx_store_cmd_last(fbx_txn *t, uint64_t *id)
{
	int rc;

	if (t == NULL || id == NULL)
		return FBX_EINVALID;
	rc = edge_key(t, t->st->cmd, MDB_LAST, id);
	if (rc == FBX_ENOT_FOUND) {
		*id = 0;
		return FBX_OK;
	}
	return rc == FBX_ECORRUPT ? FBX_ESTORAGE : rc;
}
