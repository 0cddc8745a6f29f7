/*
 * store.c: the LMDB environment of fusebox (open, schema and its
 * upgrades, map size, the PostgreSQL cluster calls), transactions, the
 * engine's own records (kv) and the writes every table uses. The
 * records live in one file each: the command journal and idempotency
 * keys in store_cmd.c, deliveries with their state history and the
 * offline index in store_dlv.c, the device registry and organisations in
 * store_dev.c, the audit log in store_audit.c; store_ix.c holds the
 * deferred indexes (marks and catch-up), the audit indexes and the audit
 * query. store_int.h is what they share (structures, byte encoding, key
 * helpers, the fbxs_ calls). Every record is a small hand-written
 * little-endian binary encoding with a leading version byte, decoded
 * with bounds checks so a damaged record gives FBX_ECORRUPT, never a
 * crash. LMDB codes are translated to fbx_err in storage/, nowhere else.
 *
 * Storage schema (schema version 4): this block is its reference.
 * Integers in keys are big-endian so byte order is numeric order; a signed
 * time in a key is stored as (u64)ms ^ 2^63 so negative times sort first.
 * "\0" is a NUL byte separating identifiers, which never contain one; it
 * makes prefix scans stop exactly at the organisation boundary ("a\0"
 * never matches "ab\0...").
 *
 *   meta        "schema"                        -> u32 schema version (4)
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
 *   command header v3: v2 + settle_until_ms i64.
 *   command header v4: v3 + the blast-radius limit's count: limit_at_ms
 *     i64 (0 = not counted), limit_n u32, limit_window_s u32, limit_gen
 *     u32. Written as v4; v1 to v3 records are read as they are (settle
 *     0, not counted).
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
 * the schema version becomes the current one (4) in the last of them.
 * Upgrade 2 -> 3 (at open): the version only. Version 3 stores may hold
 * the deferred-index marks "ixw_cmd"/"ixw_audit", which a version 2
 * binary would not read (its listings would miss the records after a
 * mark, and the entries it wrote there would be listed twice later):
 * it refuses a version 3 store.
 * Upgrade 3 -> 4 (at open): the version only. Version 4 stores hold v4
 * command headers, which a version 3 binary would refuse as CORRUPT
 * record by record: it refuses a version 4 store instead.
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

#define SCHEMA_VERSION 4
/* records indexed per write transaction when upgrading a version 1 store */
#define AUDIT_UPGRADE_BATCH 20000
#define MAP_DEFAULT ((size_t)64 << 20)
#define MAP_MAX_DEFAULT ((size_t)1 << 40)
#define MAX_DBS 24
/* records the per-organisation indexes may lag by default, and at most */
#define IX_LAG_DEFAULT 8192
#define IX_LAG_MAX 65536


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
	case FBXI_EINDOUBT:
		return FBX_ETIMEOUT; /* PostgreSQL: a commit in doubt */
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

/* fbxs_txn_fail - mark txn broken by a write error, return the fbx code. */
int
fbxs_txn_fail(fbx_txn *t, int rc)
{
	int err = map_err(rc);

	if (err == FBX_OK || err == FBX_ENOT_FOUND || err == FBX_ECORRUPT)
		err = FBX_ESTORAGE;
	t->err = err;
	return err;
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

/* schema_set - write the schema version (2 -> 3 -> 4: nothing else
 * changes; a store of version 3 may hold deferred-index marks and one of
 * version 4 command headers v4, which older binaries would not read, so
 * they refuse the store). */
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
	mrc = pg ? fbxi_kv_env_create_pg(
	               &st->env, opts->url, opts->durability, opts->pg_wait_ms)
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
		return fbxs_txn_fail(txn, mrc);
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
		return txn->write ? fbxs_txn_fail(txn, mrc) : map_err(mrc);
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

uint64_t
fbx_store_disk_avail(fbx_store *st)
{
	struct statvfs vs;

	if (st == NULL || st->data_path == NULL ||
	    statvfs(st->data_path, &vs) != 0)
		return UINT64_MAX;
	return (uint64_t)(geteuid() == 0 ? vs.f_bfree : vs.f_bavail) *
	    vs.f_frsize;
}

/* ---- transactions ----------------------------------------------------- */

int
fbx_txn_begin(fbx_store *st, int write, fbx_txn **out)
{
	fbx_txn *t;
	int mrc;

	if (st == NULL)
		return FBX_ESTORAGE; /* a store that could not be reopened */
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
	if (t->nnw > 0 && t->err == 0 && !fbxs_dlv_new_hand_up(t))
		(void)fbxs_dlv_new_flush(t); /* sets t->err on failure */
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
			/* room was made by fbxs_dlv_new_hand_up */
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

/* fbxs_read_err - translate an LMDB error met while reading. */
int
fbxs_read_err(int mrc)
{
	int rc = map_err(mrc);

	return rc == FBX_OK ? FBX_ESTORAGE : rc;
}

/* ---- writes every table uses ---------------------------------------- */

int
fbxs_put_empty(fbx_txn *t, MDB_dbi dbi, const void *key, size_t klen)
{
	MDB_val k = { klen, (void *)key }, v = { 0, NULL };
	int mrc = mdb_put(t->txn, dbi, &k, &v, 0);

	return mrc == 0 ? FBX_OK : fbxs_txn_fail(t, mrc);
}

/* fbxs_del_key - delete key; absence is fine. */
int
fbxs_del_key(fbx_txn *t, MDB_dbi dbi, const void *key, size_t klen)
{
	MDB_val k = { klen, (void *)key };
	int mrc = mdb_del(t->txn, dbi, &k, NULL);

	if (mrc == 0 || mrc == MDB_NOTFOUND)
		return FBX_OK;
	return fbxs_txn_fail(t, mrc);
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
	return mrc == 0 ? FBX_OK : fbxs_txn_fail(t, mrc);
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
	return fbxs_del_key(t, t->st->kv, key, strlen(key));
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

/* fbxs_edge_key - the first or last (op) 8-byte big-endian key of dbi.
 * @return FBX_OK, FBX_ENOT_FOUND (empty), FBX_ECORRUPT (another key
 * size), FBX_ESTORAGE, or the transaction's latched error. */
int
fbxs_edge_key(fbx_txn *t, MDB_dbi dbi, MDB_cursor_op op, uint64_t *out)
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
