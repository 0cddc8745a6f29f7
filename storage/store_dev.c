/*
 * store_dev.c: the device registry: device records, their group index
 * (grp) and per-organisation counts (org), reads, scans and group
 * listings, and the list of organisations. Keys and values follow the
 * schema at the top of store.c; the LMDB calls go through store_pg.h.
 * Depends on store.c (store_int.h).
 */
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fbx_store.h"
#include "store_pg.h" /* the LMDB calls below: LMDB or PostgreSQL */
#include "store_int.h"

#define DEV_REC_MAX (4 + 16 + 1 + FBX_OSVER_MAX + 1 + \
    FBX_GROUPS_MAX * (1 + FBX_ID_MAX))
#define ORG_REC_LEN (1 + 4 + 8)

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
		return fbxs_read_err(mrc);
	}
	if (delta < 0 && count > 0)
		count--;
	else if (delta > 0 && count < UINT32_MAX)
		count++;
	org_encode(count, created, rec);
	v.mv_size = sizeof(rec);
	v.mv_data = rec;
	mrc = mdb_put(t->txn, t->st->org, &k, &v, 0);
	return mrc == 0 ? FBX_OK : fbxs_txn_fail(t, mrc);
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
		return fbxs_read_err(mrc);
	}
	v.mv_size = len;
	v.mv_data = rec;
	mrc = mdb_put(t->txn, t->st->dev, &k, &v, 0);
	if (mrc != 0)
		return fbxs_txn_fail(t, mrc);
	for (unsigned i = 0; exists && i < old.ngroups; i++) {
		if (has_group(dev, old.groups[i]))
			continue;
		klen = grp_key(gkey, dev->org, on, old.groups[i], dev->id, in);
		rc = fbxs_del_key(t, t->st->grp, gkey, klen);
		if (rc != FBX_OK)
			return rc;
	}
	for (unsigned i = 0; i < dev->ngroups; i++) {
		if (exists && has_group(&old, dev->groups[i]))
			continue;
		klen = grp_key(gkey, dev->org, on, dev->groups[i], dev->id, in);
		rc = fbxs_put_empty(t, t->st->grp, gkey, klen);
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
		return fbxs_read_err(mrc);
	mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (mrc != 0) {
		rc = mrc == MDB_NOTFOUND ? FBX_ENOT_FOUND : fbxs_read_err(mrc);
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
		rc = fbxs_txn_fail(t, mrc);
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
		return fbxs_read_err(mrc);
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
		return fbxs_txn_fail(t, mrc);
	for (unsigned i = 0; i < old.ngroups; i++) {
		klen = grp_key(gkey, org, on, old.groups[i], id, in);
		rc = fbxs_del_key(t, t->st->grp, gkey, klen);
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
		return fbxs_read_err(mrc);
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
				                         : fbxs_read_err(mrc);
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
		rc = fbxs_read_err(mrc);
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
		return fbxs_read_err(mrc);
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
		rc = fbxs_read_err(mrc);
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
		return fbxs_read_err(mrc);
	rc = org_decode(&v, &c, &created);
	if (rc != FBX_OK)
		return rc;
	*count = c;
	return FBX_OK;
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
