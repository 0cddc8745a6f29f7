/*
 * store_cmd.c: the command journal: command records (header and body,
 * their encoding), their append, rewrite, reads and listings, the
 * open-commands table, idempotency keys, the deletion of a command by
 * retention and the last command id. Keys and values follow the schema
 * at the top of store.c; the LMDB calls go through store_pg.h, so this
 * runs on PostgreSQL too. Depends on store.c (store_int.h) and on
 * store_ix.c for the deferred cmd_org index.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_store.h"
#include "store_pg.h" /* the LMDB calls below: LMDB or PostgreSQL */
#include "store_int.h"

#define CMD_V2 2 /* command header with the safety-control tail */
#define CMD_V3 3 /* v2 + settle_until_ms */
#define CMD_V4 4 /* v3 + the blast-radius limit's count */
#define CMD_SAFETY_MAX (1 + 4 * 256 + 3 + 8 * 4 + \
    FBX_ROLLOUT_GROUPS_MAX * (1 + FBX_ID_MAX) + 2 + 5 * 4 + 2 * 8 + 256 + 8 + \
    8 + 3 * 4)
#define CMD_HDR_MAX (CMD_SAFETY_MAX + 6 + 4 + 8 + 8 + 4 + 1 + 4 * 255 + 6 * (1 + FBX_ID_MAX) + \
    12)

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

	wr_u8(&w, CMD_V4);
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
	wr_le(&w, (uint64_t)c->limit_at_ms, 8);     /* v4 */
	wr_le(&w, c->limit_n, 4);
	wr_le(&w, c->limit_window_s, 4);
	wr_le(&w, c->limit_gen, 4);
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
	if (ver != REC_V1 && ver != CMD_V2 && ver != CMD_V3 &&
	    ver != CMD_V4)
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
 * (this file's own callers keep the static one). */
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
	if (ver != REC_V1 && ver != CMD_V2 && ver != CMD_V3 && ver != CMD_V4)
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
	if (ver >= CMD_V4) {
		c->limit_at_ms = rd_i64(&r);
		c->limit_n = (uint32_t)rd_le(&r, 4);
		c->limit_window_s = (uint32_t)rd_le(&r, 4);
		c->limit_gen = (uint32_t)rd_le(&r, 4);
	}
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

/* ---- command journal ---------------------------------------------- */

/* cmd_append - fbx_store_cmd_append, or with want != 0 the append of
 * command id `want`, the id fbx_store_cmd_last + 1 gave earlier in the
 * same transaction (MDB_APPEND refuses one at or below the last: a
 * write error). */
static int
cmd_append(fbx_txn *t, struct fbx_command *cmd, uint64_t want)
{
	fbx_store *st;
	MDB_val k, v;
	uint8_t idb[8], hdr[CMD_HDR_MAX], key[KEY_MAX];
	size_t hlen, on, klen;
	uint64_t id;
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
	rc = cmd_hdr_encode(cmd, cmd->payload_len, cmd->ndev_ids, hdr,
	    sizeof(hdr), &hlen);
	if (rc != FBX_OK)
		return rc;

	if (want == 0) {
		rc = fbx_store_cmd_last(t, &id);
		if (rc != FBX_OK)
			return rc;
		want = id + 1;
	}
	/* delivery ids are id << 24 | index: past 2^40 commands they
	 * would collide */
	if (want > FBX_CMD_ID_MAX)
		return FBX_ETOO_MANY;
	id = want;

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
		/* a key already used is refused before anything is written
		 * (on PostgreSQL one point read) */
		mrc = mdb_put(t->txn, st->idem, &k, &v, MDB_NOOVERWRITE);
		if (mrc == MDB_KEYEXIST) {
			rc = FBX_EIDEMPOTENCY_CONFLICT; /* nothing written */
			goto out;
		}
		if (mrc != 0) {
			rc = fbxs_txn_fail(t, mrc);
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
		rc = fbxs_txn_fail(t, mrc);
		goto out;
	}
	if (cmd->payload_len > 0 || cmd->ndev_ids > 0) {
		struct wr w;
		v.mv_size = cmd_body_size(cmd);
		v.mv_data = NULL;
		mrc = mdb_put(t->txn, st->cmd_body, &k, &v,
		    MDB_APPEND | MDB_RESERVE);
		if (mrc != 0) {
			rc = fbxs_txn_fail(t, mrc);
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
			rc = fbxs_txn_fail(t, mrc);
			goto out;
		}
		klen = cmd_org_key(key, cmd->org, on, cmd->created_ms, id);
		rc = fbxs_put_empty(t, st->cmd_org, key, klen);
	} else {
		mrc = fbxs_ixw_lagging(
		    t->txn, st, IXW_CMD, id, fbxs_cmd_ix_catch);
		rc = mrc == 0 ? FBX_OK : fbxs_txn_fail(t, mrc);
	}
	if (rc != FBX_OK)
		goto out;
	if (!fbx_cstate_terminal(cmd->state)) {
		rc = fbxs_put_empty(t, st->cmd_active, idb, 8);
		if (rc != FBX_OK)
			goto out;
	}
	cmd->id = id;
	rc = FBX_OK;
out:
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
		return fbxs_read_err(mrc);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (mrc != 0) {
		mdb_cursor_close(cur);
		return fbxs_read_err(mrc);
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
		return fbxs_txn_fail(t, mrc);
	/* the active set changes only when the state crosses into or out
	 * of the terminal states (most rewrites change counts or the
	 * cursor: no second tree touched for them) */
	if (fbx_cstate_terminal(cmd->state) != fbx_cstate_terminal(old.state))
		rc = fbx_cstate_terminal(cmd->state)
		    ? fbxs_del_key(t, st->cmd_active, idb, 8)
		    : fbxs_put_empty(t, st->cmd_active, idb, 8);
	if (rc != FBX_OK)
		return rc;
	if (strcmp(oorg, cmd->org) != 0 || old.created != cmd->created_ms) {
		uint64_t wm = 0;
		int present = 0;
		if (!fbxi_kv_is_pg(st->env))
			mrc = fbxs_ixw_get(t->txn, st, IXW_CMD, &wm, &present);
		if (mrc != 0)
			return fbxs_txn_fail(t, mrc);
		if (present && cmd->id > wm)
			return FBX_OK; /* not indexed yet: caught up as it is */
		klen = cmd_org_key(key, oorg, old.olen, old.created, cmd->id);
		rc = fbxs_del_key(t, st->cmd_org, key, klen);
		if (rc != FBX_OK)
			return rc;
		klen = cmd_org_key(key, cmd->org, strlen(cmd->org),
		    cmd->created_ms, cmd->id);
		rc = fbxs_put_empty(t, st->cmd_org, key, klen);
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
		return fbxs_read_err(mrc);
	rc = cmd_hdr_decode(id, &v, &c, &plen, &ndev);
	if (rc != FBX_OK)
		return rc;
	if (body && (plen > 0 || ndev > 0)) {
		mrc = mdb_get(t->txn, t->st->cmd_body, &k, &v);
		if (mrc == MDB_NOTFOUND)
			return FBX_ECORRUPT;
		if (mrc != 0)
			return fbxs_read_err(mrc);
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
	if (out == NULL)
		return FBX_EINVALID;
	/* whatever happens, fbx_command_clear(out) is safe after */
	memset(out, 0, sizeof(*out));
	TXN_READ_CHECK(t);
	return cmd_load(t, id, 1, out);
}

int
fbx_store_cmd_head(fbx_txn *t, uint64_t id, struct fbx_command *out)
{
	if (out == NULL)
		return FBX_EINVALID;
	memset(out, 0, sizeof(*out)); /* as fbx_store_cmd_get */
	TXN_READ_CHECK(t);
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
		return fbxs_read_err(mrc);
	if (!present)
		return FBX_OK;
	mrc = mdb_cursor_open(t->txn, t->st->cmd, &cur);
	if (mrc != 0)
		return fbxs_read_err(mrc);
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
		rc = fbxs_read_err(mrc);
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
		return fbxs_read_err(mrc);
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
				rc = fbxs_read_err(mrc);
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
		return fbxs_read_err(mrc);
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
		rc = fbxs_read_err(mrc);
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
		return fbxs_read_err(mrc);
	if (v.mv_size != 8)
		return FBX_ECORRUPT;
	for (int i = 0; i < 8; i++)
		id |= (uint64_t)((const uint8_t *)v.mv_data)[i] << (8 * i);
	*cmd_id = id;
	return FBX_OK;
}

/* ---- retention and the last id ------------------------------------ */

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
	rc = fbxs_del_key(t, t->st->cmd, idb, 8);
	if (rc == FBX_OK)
		rc = fbxs_del_key(t, t->st->cmd_body, idb, 8);
	if (rc == FBX_OK)
		rc = fbxs_del_key(t, t->st->cmd_active, idb, 8);
	if (rc == FBX_OK) {
		klen = cmd_org_key(key, c.org, on, c.created_ms, id);
		rc = fbxs_del_key(t, t->st->cmd_org, key, klen);
	}
	if (rc == FBX_OK && c.idem_key[0] != '\0') {
		klen = key_cat(key, 0, c.org, on, 1);
		klen = key_cat(key, klen, c.idem_key, strlen(c.idem_key), 0);
		rc = fbxs_del_key(t, t->st->idem, key, klen);
	}
	return rc;
}

int
fbx_store_cmd_last(fbx_txn *t, uint64_t *id)
{
	int rc;

	if (t == NULL || id == NULL)
		return FBX_EINVALID;
	rc = fbxs_edge_key(t, t->st->cmd, MDB_LAST, id);
	if (rc == FBX_ENOT_FOUND) {
		*id = 0;
		return FBX_OK;
	}
	return rc == FBX_ECORRUPT ? FBX_ESTORAGE : rc;
}
