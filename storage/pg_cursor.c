/*
 * pg_cursor.c: cursors of a PostgreSQL store (store_pg.c; the shared
 * structures in store_pg_int.h). A cursor reads ahead (pages growing to
 * PG_PAGE rows), and its transaction's own writes are folded into what
 * it has read ahead (fbxi_pg_notify), so walking a table in key order
 * costs one round trip per page, not per row; an exact seek is one
 * point read. An LMDB handle goes straight to LMDB.
 */
#define FBXI_KV_IMPL
#include "store_pg_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- cursors' read-ahead --------------------------------------------- */

static int
la_reserve(fbxi_kv_cursor *c, size_t extra)
{
	if (c->lah > 0 && c->lan + extra > c->lacap) {
		memmove(
		    c->la, c->la + c->lah, (c->lan - c->lah) * sizeof(*c->la));
		c->lan -= c->lah;
		c->lah = 0;
	}
	if (c->lan + extra > c->lacap) {
		size_t nc = c->lacap ? c->lacap * 2 : PG_PAGE + 16;
		struct row *nl;
		while (nc < c->lan + extra)
			nc *= 2;
		nl = realloc(c->la, nc * sizeof(*nl));
		if (nl == NULL)
			return ENOMEM;
		c->la = nl;
		c->lacap = nc;
	}
	return 0;
}

/* la_lower - first read-ahead index whose key is >= k. */
static size_t
la_lower(const fbxi_kv_cursor *c, const uint8_t *k, size_t kl)
{
	size_t lo = c->lah, hi = c->lan;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (keycmp(c->la[mid].k, c->la[mid].kl, k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
la_reset(fbxi_kv_cursor *c)
{
	c->lah = c->lan = 0;
	c->complete = 0;
}

/* notify - t wrote (dbi, k) = v (v NULL: deleted): keep what t's
 * cursors hold in step. The key and value live in the arena. */
int
fbxi_pg_notify(fbxi_kv_txn *t, unsigned dbi, const uint8_t *k, size_t kl,
    const uint8_t *v, size_t vl)
{
	for (fbxi_kv_cursor *c = t->curs; c != NULL; c = c->next) {
		int cmp;
		size_t i;
		if (c->dbi != dbi || !c->pos)
			continue;
		cmp = keycmp(k, kl, c->cur.k, c->cur.kl);
		if (cmp == 0) {
			c->deleted = v == NULL;
			c->cur.v = v;
			c->cur.vl = vl;
			continue;
		}
		if (cmp < 0)
			continue;
		if (!c->complete
		    && (c->lan == c->lah
		        || keycmp(k, kl, c->la[c->lan - 1].k,
		               c->la[c->lan - 1].kl)
		            > 0))
			continue; /* past what it holds: a later read sees it
			           */
		i = la_lower(c, k, kl);
		if (i < c->lan
		    && keycmp(c->la[i].k, c->la[i].kl, k, kl) == 0) {
			if (v == NULL) {
				memmove(c->la + i, c->la + i + 1,
				    (c->lan - i - 1) * sizeof(*c->la));
				c->lan--;
			} else {
				c->la[i].v = v;
				c->la[i].vl = vl;
			}
			continue;
		}
		if (v == NULL)
			continue;
		{
			size_t off = i - c->lah;
			if (la_reserve(c, 1) != 0) {
				la_reset(c); /* forget: a later read asks */
				continue;
			}
			i = c->lah + off;
		}
		memmove(
		    c->la + i + 1, c->la + i, (c->lan - i) * sizeof(*c->la));
		c->la[i].k = k;
		c->la[i].kl = kl;
		c->la[i].v = v;
		c->la[i].vl = vl;
		c->lan++;
	}
	return 0;
}

/* fetch - read ahead from the server: the rows with key > k (>= when
 * incl; from the start when k is NULL), PG_PAGE of them. */
static int
fetch(fbxi_kv_cursor *c, const uint8_t *k, size_t kl, int incl)
{
	fbxi_kv_txn *t = c->t;
	char sql[160], lim[16];
	const char *vals[2];
	int lens[2], fmts[2] = { 1, 0 };
	PGresult *r;
	int code, n;

	code = fbxi_pg_before_stmt(t, 1);
	if (code != 0)
		return code;
	if (c->page == 0)
		c->page = PG_SEEK;
	snprintf(lim, sizeof(lim), "%u", c->page);
	if (k == NULL) {
		snprintf(sql, sizeof(sql),
		    "SELECT k, v FROM fbx_%s ORDER BY k LIMIT $1::int",
		    tabs[c->dbi]);
		vals[0] = lim;
		lens[0] = 0;
		fmts[0] = 0;
		r = fbxi_pg_run(t, sql, 1, vals, lens, fmts, &code);
	} else {
		snprintf(sql, sizeof(sql),
		    "SELECT k, v FROM fbx_%s WHERE k %s $1 ORDER BY k "
		    "LIMIT $2::int",
		    tabs[c->dbi], incl ? ">=" : ">");
		vals[0] = (const char *)k;
		lens[0] = (int)kl;
		vals[1] = lim;
		lens[1] = 0;
		r = fbxi_pg_run(t, sql, 2, vals, lens, fmts, &code);
	}
	if (r == NULL)
		return code;
	n = PQntuples(r);
	la_reset(c);
	if (la_reserve(c, (size_t)n) != 0) {
		PQclear(r);
		return fbxi_pg_latch(t, ENOMEM);
	}
	for (int i = 0; i < n; i++) {
		struct row *w = &c->la[c->lan++];
		w->k = (const uint8_t *)PQgetvalue(r, i, 0);
		w->kl = (size_t)PQgetlength(r, i, 0);
		w->v = (const uint8_t *)PQgetvalue(r, i, 1);
		w->vl = (size_t)PQgetlength(r, i, 1);
	}
	c->complete = (unsigned)n < c->page;
	PQclear(c->res[1]);
	c->res[1] = c->res[0];
	c->res[0] = r;
	return 0;
}

/* pop - move onto the first read-ahead row. */
static int
pop(fbxi_kv_cursor *c, MDB_val *k, MDB_val *v)
{
	struct row *w;

	if (c->lah == c->lan)
		return MDB_NOTFOUND;
	w = &c->la[c->lah++];
	if (w->kl > sizeof(c->curk))
		return fbxi_pg_latch(c->t, MDB_BAD_VALSIZE);
	memcpy(c->curk, w->k, w->kl);
	c->cur.k = c->curk;
	c->cur.kl = w->kl;
	c->cur.v = w->v;
	c->cur.vl = w->vl;
	c->pos = 1;
	c->deleted = 0;
	c->stale = 0;
	if (k != NULL) {
		k->mv_data = (void *)w->k;
		k->mv_size = w->kl;
	}
	if (v != NULL) {
		v->mv_data = (void *)w->v;
		v->mv_size = w->vl;
	}
	return 0;
}

void
fbxi_pg_invalidate_cursors(fbxi_kv_txn *t)
{
	for (fbxi_kv_cursor *c = t->curs; c != NULL; c = c->next) {
		la_reset(c);
		c->stale = 1;
	}
}

/* ---- cursors ---------------------------------------------------------- */

int
fbxi_kv_cursor_open(fbxi_kv_txn *t, MDB_dbi dbi, fbxi_kv_cursor **out)
{
	fbxi_kv_cursor *c;
	int code;

	if (!IS_PG(t))
		return mdb_cursor_open((MDB_txn *)t, dbi, (MDB_cursor **)out);
	t = UNTAG(fbxi_kv_txn, t);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ENOMEM;
	if (t->err != 0) {
		code = t->err;
		free(c);
		return code;
	}
	if (dbi == 0 || dbi >= (MDB_dbi)NTAB) {
		free(c);
		return EINVAL;
	}
	c->t = t;
	c->dbi = dbi;
	c->next = t->curs;
	t->curs = c;
	*out = TAG(fbxi_kv_cursor, c);
	return 0;
}

void
fbxi_kv_cursor_close(fbxi_kv_cursor *c)
{
	if (c == NULL)
		return;
	if (!IS_PG(c)) {
		mdb_cursor_close((MDB_cursor *)c);
		return;
	}
	c = UNTAG(fbxi_kv_cursor, c);
	if (c->t != NULL) {
		fbxi_kv_cursor **pp = &c->t->curs;
		while (*pp != NULL && *pp != c)
			pp = &(*pp)->next;
		if (*pp == c)
			*pp = c->next;
	}
	PQclear(c->res[0]);
	PQclear(c->res[1]);
	free(c->la);
	free(c);
}

/* seek - position on the first key >= k (exact: == k). */
static int
seek(fbxi_kv_cursor *c, const uint8_t *k, size_t kl, int exact, MDB_val *ko,
    MDB_val *vo)
{
	int code;
	size_t i;

	if (c->pos && !c->deleted && !c->stale
	    && keycmp(k, kl, c->cur.k, c->cur.kl) == 0) {
		ko->mv_data = c->curk;
		ko->mv_size = c->cur.kl;
		vo->mv_data = (void *)c->cur.v;
		vo->mv_size = c->cur.vl;
		return 0;
	}
	/* what it read ahead covers (cur, last read-ahead key], or to the
	 * end of the table when complete */
	if (c->pos && keycmp(k, kl, c->cur.k, c->cur.kl) > 0
	    && (c->complete
	        || (c->lan > c->lah
	            && keycmp(k, kl, c->la[c->lan - 1].k, c->la[c->lan - 1].kl)
	                <= 0))) {
		i = la_lower(c, k, kl);
		c->lah = i;
		if (i == c->lan
		    || (exact
		        && keycmp(c->la[i].k, c->la[i].kl, k, kl) != 0)) {
			c->pos = 0;
			la_reset(c);
			return MDB_NOTFOUND;
		}
		return pop(c, ko, vo);
	}
	if (exact) {
		/* one key: a point read (the writes held back need not be
		 * sent first); the next step of a walk reads ahead */
		MDB_val kk = { kl, (void *)k }, vv;
		la_reset(c);
		c->pos = 0;
		c->page = PG_SEEK;
		code = fbxi_pg_get(c->t, c->dbi, &kk, &vv);
		if (code != 0)
			return code;
		if (la_reserve(c, 1) != 0)
			return fbxi_pg_latch(c->t, ENOMEM);
		c->la[0].k = fbxi_pg_arena_copy(c->t, k, kl);
		if (c->la[0].k == NULL)
			return fbxi_pg_latch(c->t, ENOMEM);
		c->la[0].kl = kl;
		/* a point read's result is recycled: the cursor keeps a copy
		 */
		c->la[0].v = fbxi_pg_arena_copy(c->t, vv.mv_data, vv.mv_size);
		c->la[0].vl = vv.mv_size;
		if (c->la[0].v == NULL)
			return fbxi_pg_latch(c->t, ENOMEM);
		c->lan = 1;
		return pop(c, ko, vo);
	}
	c->page = PG_SEEK;
	code = fetch(c, k, kl, 1);
	if (code != 0)
		return code;
	if (c->lah == c->lan
	    || (exact
	        && keycmp(c->la[c->lah].k, c->la[c->lah].kl, k, kl) != 0)) {
		c->pos = 0;
		la_reset(c);
		return MDB_NOTFOUND;
	}
	return pop(c, ko, vo);
}

int
fbxi_kv_cursor_get(fbxi_kv_cursor *c, MDB_val *k, MDB_val *v, MDB_cursor_op op)
{
	fbxi_kv_txn *t;
	int code;

	if (!IS_PG(c))
		return mdb_cursor_get((MDB_cursor *)c, k, v, op);
	c = UNTAG(fbxi_kv_cursor, c);
	t = c->t;
	if (t == NULL)
		return EINVAL;
	if (t->err != 0)
		return t->err;
	switch (op) {
	case MDB_FIRST:
		c->page = PG_PAGE / 4;
		code = fetch(c, NULL, 0, 0);
		if (code != 0)
			return code;
		c->pos = 0;
		return pop(c, k, v);
	case MDB_LAST: {
		char sql[96];
		PGresult *r;
		code = fbxi_pg_before_stmt(t, 1);
		if (code != 0)
			return code;
		snprintf(sql, sizeof(sql),
		    "SELECT k, v FROM fbx_%s ORDER BY k DESC LIMIT 1",
		    tabs[c->dbi]);
		r = fbxi_pg_run(t, sql, 0, NULL, NULL, NULL, &code);
		if (r == NULL)
			return code;
		la_reset(c);
		c->pos = 0;
		if (PQntuples(r) == 0) {
			PQclear(r);
			return MDB_NOTFOUND;
		}
		if (la_reserve(c, 1) != 0) {
			PQclear(r);
			return fbxi_pg_latch(t, ENOMEM);
		}
		c->la[0].k = (const uint8_t *)PQgetvalue(r, 0, 0);
		c->la[0].kl = (size_t)PQgetlength(r, 0, 0);
		c->la[0].v = (const uint8_t *)PQgetvalue(r, 0, 1);
		c->la[0].vl = (size_t)PQgetlength(r, 0, 1);
		c->lan = 1;
		PQclear(c->res[1]);
		c->res[1] = c->res[0];
		c->res[0] = r;
		code = pop(c, k, v);
		c->complete = 1; /* nothing after the last */
		return code;
	}
	case MDB_SET:
	case MDB_SET_KEY:
	case MDB_SET_RANGE:
		if (k == NULL || k->mv_data == NULL || k->mv_size == 0)
			return EINVAL;
		return seek(
		    c, k->mv_data, k->mv_size, op != MDB_SET_RANGE, k, v);
	case MDB_NEXT:
		if (!c->pos) {
			code = fetch(c, NULL, 0, 0);
			if (code != 0)
				return code;
			return pop(c, k, v);
		}
		if (c->lah == c->lan && !c->complete) {
			c->page
			    = c->page * 4 > PG_PAGE ? PG_PAGE : c->page * 4;
			code = fetch(c, c->cur.k, c->cur.kl, 0);
			if (code != 0)
				return code;
		}
		return pop(c, k, v);
	case MDB_GET_CURRENT:
		if (!c->pos)
			return EINVAL;
		if (c->deleted)
			return MDB_NOTFOUND;
		if (c->stale) {
			MDB_val kk = { c->cur.kl, c->curk }, vv;
			code = fbxi_pg_get(t, c->dbi, &kk, &vv);
			if (code == MDB_NOTFOUND) {
				c->deleted = 1;
				return code;
			}
			if (code != 0)
				return code;
			c->cur.v = vv.mv_data;
			c->cur.vl = vv.mv_size;
			c->stale = 0;
		}
		k->mv_data = c->curk;
		k->mv_size = c->cur.kl;
		v->mv_data = (void *)c->cur.v;
		v->mv_size = c->cur.vl;
		return 0;
	default:
		return EINVAL;
	}
}

int
fbxi_kv_cursor_put(fbxi_kv_cursor *c, MDB_val *k, MDB_val *v, unsigned flags)
{
	fbxi_kv_txn *t;
	uint8_t *kc = NULL;
	MDB_val kk;
	int code;
	size_t i;

	if (!IS_PG(c))
		return mdb_cursor_put((MDB_cursor *)c, k, v, flags);
	c = UNTAG(fbxi_kv_cursor, c);
	t = c->t;
	if (t == NULL)
		return EINVAL;
	if (flags & MDB_CURRENT) {
		if (!c->pos || c->deleted)
			return EINVAL;
		kk.mv_size = c->cur.kl;
		kk.mv_data = c->curk;
		return fbxi_pg_put(
		    t, c->dbi, &kk, v, flags & ~MDB_CURRENT, NULL);
	}
	code = fbxi_pg_put(t, c->dbi, k, v, flags, &kc);
	if (code == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE)) {
		/* as LMDB: the cursor on the key that is there, its value in
		 * *v */
		MDB_val ko, vo;
		code = seek(c, k->mv_data, k->mv_size, 1, &ko, &vo);
		if (code != 0)
			return code;
		*v = vo;
		return MDB_KEYEXIST;
	}
	if (code != 0)
		return code;
	/* the cursor moves onto the new key; what it read ahead stays
	 * valid past it */
	if (!c->pos) {
		la_reset(c);
	} else {
		int cmp = keycmp(kc, k->mv_size, c->cur.k, c->cur.kl);
		if (cmp > 0 && c->lan > c->lah
		    && keycmp(kc, k->mv_size, c->la[c->lan - 1].k,
		           c->la[c->lan - 1].kl)
		        <= 0) {
			i = la_lower(c, kc, k->mv_size);
			if (i < c->lan
			    && keycmp(c->la[i].k, c->la[i].kl, kc, k->mv_size)
			        == 0)
				i++;
			c->lah = i;
		} else if (cmp > 0) {
			c->lah = c->lan; /* complete stays as it was */
		} else if (cmp < 0) {
			la_reset(c);
		}
	}
	memcpy(c->curk, kc, k->mv_size);
	c->cur.k = c->curk;
	c->cur.kl = k->mv_size;
	{
		struct wr_ent *e
		    = fbxi_pg_wb_find(&t->wb, c->dbi, kc, k->mv_size);
		c->cur.v = e != NULL ? e->v : NULL;
		c->cur.vl = e != NULL ? e->vl : 0;
	}
	c->pos = 1;
	c->deleted = 0;
	c->stale = 0;
	return 0;
}

int
fbxi_kv_cursor_del(fbxi_kv_cursor *c, unsigned flags)
{
	if (!IS_PG(c))
		return mdb_cursor_del((MDB_cursor *)c, flags);
	c = UNTAG(fbxi_kv_cursor, c);
	if (c->t == NULL || !c->pos || c->deleted)
		return EINVAL;
	return fbxi_pg_del(c->t, c->dbi, c->curk, c->cur.kl, 0);
}
