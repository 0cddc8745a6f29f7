/*
 * store_pg.c: the store's second backend, PostgreSQL through libpq, and
 * the seam that picks a backend at run time. store.c, the record files
 * beside it and store_ix.c (its deferred and audit indexes) keep every
 * rule of the store (records, indexes, held-back deliveries, the
 * broken-txn latch) and call the LMDB API; store_pg.h routes those
 * calls here. For
 * an LMDB store each call goes straight to LMDB. For a store opened with
 * a postgresql:// URL the named databases are tables (k bytea primary
 * key, v bytea: the same keys and record bytes as LMDB, and bytea sorts
 * as LMDB compares keys, bytewise), and:
 *
 * - A write transaction is one PostgreSQL transaction on the writer
 *   connection, READ COMMITTED, with synchronous_commit on for the
 *   session (off only for FBX_DURABLE_NOSYNC); writers of every process
 *   are serialised by a transaction advisory lock taken at BEGIN (LMDB's
 *   writer mutex), so two writers never meet and no serialization
 *   failure can arise between them. A connection found dead at BEGIN is
 *   made again and BEGIN retried once (nothing was done yet).
 * - Tables are made or migrated at open, under the same lock, to the
 *   layout version in fbx_schema; a newer version is refused (CORRUPT).
 *   The store's own schema version stays in fbx_meta, as in LMDB.
 * - A child transaction is a SAVEPOINT, taken when the child first sends
 *   a statement; a child that never did is folded into its parent in
 *   memory. ROLLBACK TO undoes exactly the child, also after an error.
 * - A read transaction takes a connection of a mutex-protected pool
 *   (any thread) and runs REPEATABLE READ READ ONLY: one snapshot.
 * - Writes are held in memory per transaction (last write per key wins)
 *   and sent as one multi-row INSERT .. ON CONFLICT and one DELETE per
 *   table, before any statement that must see them (a range read, a
 *   count, a savepoint) and at commit; a point read consults the held
 *   writes first. Cursors read ahead (pages growing to PG_PAGE rows),
 *   and the transaction's own writes are folded into what a cursor has
 *   read ahead, so walking deliveries in id order costs one round trip
 *   per page, not per row; an exact seek is one point read
 *   (pg_cursor.c).
 * - Errors: a statement that fails breaks the transaction (every later
 *   call returns the same code; the store latches it too): a lost
 *   connection is EIO (the writer reconnects at the next BEGIN), disk
 *   full ENOSPC, out of memory ENOMEM, serialization failure or deadlock
 *   MDB_READERS_FULL (the store's FBX_EBUSY), anything else MDB_PANIC
 *   (FBX_ESTORAGE). A COMMIT answered with anything but COMMIT fails.
 *   A COMMIT whose answer is lost is looked up (pg_doubt.c): committed,
 *   rolled back (EIO), or unknown (FBXI_EINDOUBT).
 */
#define FBXI_KV_IMPL
#include "store_pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fbx_store.h"
#include "pg_doubt.h"
#include "pg_lease.h"
#include "store_pg_int.h"

/* version of the table layout in fbx_schema (the store's own schema
 * version is in fbx_meta "schema", as in LMDB) */
#define PG_LAYOUT 2
/* advisory lock class of the writer lock (and of schema creation) */
#define PG_LOCK_CLASS 7308036

/* ---- small helpers -------------------------------------------------- */

static fbxi_kv_txn *
root_of(fbxi_kv_txn *t)
{
	while (t->parent != NULL)
		t = t->parent;
	return t;
}

static void *
arena_alloc(fbxi_kv_txn *t, size_t n)
{
	fbxi_kv_txn *r = root_of(t);
	struct chunk *c = r->arena;

	n = (n + 7) & ~(size_t)7;
	if (c == NULL || c->cap - c->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = r->arena;
		r->arena = c;
	}
	c->used += n;
	return c->data + c->used - n;
}

void *
fbxi_pg_arena_copy(fbxi_kv_txn *t, const void *p, size_t n)
{
	uint8_t *d = arena_alloc(t, n ? n : 1);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

int
fbxi_pg_is_url(const char *url)
{
	return url != NULL
	    && (strncmp(url, "postgresql://", 13) == 0
	        || strncmp(url, "postgres://", 11) == 0);
}

/* redact - url with the password (user:PASSWORD@ or password=...)
 * replaced by ***, for messages. */
static char *
redact(const char *url)
{
	size_t n = strlen(url);
	char *o = malloc(n + 16);
	const char *p = url, *s, *at, *end;
	size_t w = 0;

	if (o == NULL)
		return NULL;
	s = strstr(url, "://");
	if (s != NULL) {
		s += 3;
		end = s + strcspn(s, "/?");
		at = memchr(s, '@', (size_t)(end - s));
		if (at != NULL) {
			const char *colon = memchr(s, ':', (size_t)(at - s));
			if (colon != NULL) {
				memcpy(o, url, (size_t)(colon + 1 - url));
				w = (size_t)(colon + 1 - url);
				memcpy(o + w, "***", 3);
				w += 3;
				p = at;
			}
		}
	}
	while (*p != '\0') {
		if (strncmp(p, "password=", 9) == 0
		    && (p == url || p[-1] == '?' || p[-1] == '&')) {
			memcpy(o + w, "password=***", 12);
			w += 12;
			p += 9;
			p += strcspn(p, "&");
			continue;
		}
		o[w++] = *p++;
	}
	o[w] = '\0';
	return o;
}

static fbx_store_log_fn store_log_fn;

void
fbx_store_set_log(fbx_store_log_fn fn)
{
	store_log_fn = fn;
}

void
fbxi_store_log(int level, const char *kind, const char *fmt, ...)
{
	char b[1024];
	size_t w = 0;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	for (size_t r = 0; b[r] != '\0'; r++) {
		if (b[r] == '\n' || b[r] == '\r' || b[r] == '\t') {
			if (w > 0 && b[w - 1] != ' ')
				b[w++] = ' ';
			continue;
		}
		b[w++] = b[r];
	}
	while (w > 0 && b[w - 1] == ' ')
		w--;
	b[w] = '\0';
	if (store_log_fn != NULL)
		store_log_fn(level, kind, b);
	else
		fprintf(stderr, "%s\n", b);
}

void
fbxi_pg_log(const char *shown, const char *what, const char *msg)
{
	/* what is one of the callers' literals: one kind of message */
	fbxi_store_log(1, what, "fusebox store (postgresql %s): %s: %s",
	    shown != NULL ? shown : "?", what, msg != NULL ? msg : "");
}

static void
pg_log(const fbxi_kv_env *env, const char *what, const char *msg)
{
	fbxi_pg_log(env->shown, what, msg);
}

/* pg_code - the LMDB-style code for a failed statement. */
#define pg_code fbxi_pg_code
int
fbxi_pg_code(PGconn *c, const PGresult *r)
{
	const char *s
	    = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return EIO;
	if (s == NULL)
		return EIO; /* no answer at all: the connection went */
	if (strcmp(s, "53100") == 0)
		return ENOSPC;
	if (strcmp(s, "53200") == 0)
		return ENOMEM;
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
		return MDB_READERS_FULL;
	if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P", 3) == 0
	    || strcmp(s, "58030") == 0)
		return EIO;
	if (strcmp(s, "XX001") == 0 || strcmp(s, "XX002") == 0)
		return MDB_CORRUPTED;
	return MDB_PANIC;
}

static void ring_keep(fbxi_kv_txn *t, PGresult *r);
static int owner_lock(fbxi_kv_env *env, PGconn *c);
static int pool_get(fbxi_kv_env *env, PGconn **out);
static void pool_put(fbxi_kv_env *env, PGconn *c, int ok);

/* fbxi_pg_latch: store_pg_int.h */
int
fbxi_pg_latch(fbxi_kv_txn *t, int code)
{
	for (fbxi_kv_txn *x = t; x != NULL; x = x->parent) {
		if (x->err == 0)
			x->err = code;
		if (x->sp && code != EIO)
			break;
	}
	return code;
}

/* fbxi_pg_run: store_pg_int.h */
PGresult *
fbxi_pg_run(fbxi_kv_txn *t, const char *sql, int n, const char *const *vals,
    const int *lens, const int *fmts, int *code)
{
	PGresult *r = fbxi_pg_exec(t->conn, t->env->wait_ms, t->env->shown, sql,
	    n, vals, lens, fmts, 1);
	ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	*code = r == NULL && PQstatus(t->conn) == CONNECTION_OK
	    ? ENOMEM
	    : pg_code(t->conn, r);
	pg_log(t->env, "statement failed",
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(t->conn));
	PQclear(r);
	fbxi_pg_latch(t, *code);
	return NULL;
}

/* simple_wait - a parameterless command (may be several) whose answer
 * is waited for wait_ms; 0 or a code. */
static int
simple_wait(fbxi_kv_env *env, PGconn *c, const char *sql, unsigned wait_ms)
{
	PGresult *r = fbxi_pg_exec1(c, wait_ms, env->shown, sql);
	ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int code = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		code = r == NULL && PQstatus(c) == CONNECTION_OK
		    ? ENOMEM
		    : pg_code(c, r);
		pg_log(env, "command failed",
		    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
	}
	PQclear(r);
	return code;
}

/* simple - the same, waited for as long as any statement */
static int
simple(fbxi_kv_env *env, PGconn *c, const char *sql)
{
	return simple_wait(env, c, sql, env->wait_ms);
}

static void
notice_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

#define PG_KEEPALIVES \
	"SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; " \
	"SET tcp_keepalives_count = 3; SET tcp_user_timeout = 25000"

/* pg_connect - a session: synchronous_commit as durability says. */
static int
pg_connect(fbxi_kv_env *env, PGconn **out)
{
	PGconn *c = fbxi_pg_connect(env->url, env->shown, env->wait_ms, NULL,
	    NULL);
	int code;

	if (c == NULL)
		return ENOMEM;
	if (PQstatus(c) != CONNECTION_OK) {
		pg_log(env, "cannot connect", PQerrorMessage(c));
		PQfinish(c);
		return EIO;
	}
	PQsetNoticeProcessor(c, notice_quiet, NULL);
	/* the server's keepalives and user timeout on this session's socket
	 * (TCP only): a session whose client vanished (a cut network) is
	 * ended within about 25 s, whether the server was idle (keepalives,
	 * else the system's two hours) or had an answer unacknowledged
	 * (tcp_user_timeout, else about 15 minutes of retransmissions), and
	 * with it the store's session lock, which the writer needs back
	 * (owner_lock) */
	code = simple(env, c,
	    env->durability == FBX_DURABLE_NOSYNC
	        ? "SET synchronous_commit = off; SET client_min_messages = "
	          "warning; " PG_KEEPALIVES
	        : "SET synchronous_commit = on; SET client_min_messages = "
	          "warning; " PG_KEEPALIVES);
	if (code != 0) {
		PQfinish(c);
		return code;
	}
	*out = c;
	return 0;
}

/* quiet - the server left a statement or a connect without an answer
 * less than a bound ago (fbxi_pg_quiet): a new transaction or open
 * fails at once, with a log line, rather than wait the bound again */
static int
quiet(const fbxi_kv_env *env)
{
	long long ago;
	char msg[160];

	if (!fbxi_pg_quiet(env->shown, env->wait_ms, &ago))
		return 0;
	snprintf(msg, sizeof(msg),
	    "no answer %lld ms ago; not asked again before %u ms have "
	    "passed",
	    ago, env->wait_ms);
	pg_log(env, "server not answering", msg);
	return 1;
}

/* ---- held-back writes ------------------------------------------------ */

static uint64_t
hash_key(unsigned dbi, const uint8_t *k, size_t n)
{
	uint64_t h = 1469598103934665603ull ^ dbi;

	for (size_t i = 0; i < n; i++) {
		h ^= k[i];
		h *= 1099511628211ull;
	}
	return h;
}

struct wr_ent *
fbxi_pg_wb_find(struct wbuf *b, unsigned dbi, const uint8_t *k, size_t kl)
{
	size_t mask, i;

	if (b->nslot == 0)
		return NULL;
	mask = b->nslot - 1;
	for (i = hash_key(dbi, k, kl) & mask; b->slot[i] != 0;
	     i = (i + 1) & mask) {
		struct wr_ent *e = &b->e[b->slot[i] - 1];
		if (e->dbi == dbi && e->kl == kl && memcmp(e->k, k, kl) == 0)
			return e;
	}
	return NULL;
}

static int
wb_grow(struct wbuf *b)
{
	size_t ns = b->nslot ? b->nslot * 2 : 1024;
	uint32_t *slot = calloc(ns, sizeof(*slot));

	if (slot == NULL)
		return ENOMEM;
	for (size_t j = 0; j < b->n; j++) {
		struct wr_ent *e = &b->e[j];
		size_t i = hash_key(e->dbi, e->k, e->kl) & (ns - 1);
		while (slot[i] != 0)
			i = (i + 1) & (ns - 1);
		slot[i] = (uint32_t)j + 1;
	}
	free(b->slot);
	b->slot = slot;
	b->nslot = ns;
	return 0;
}

/* wb_set - record a put (v) or a delete (v NULL) of (dbi, k); k and v
 * must live as long as the root transaction. */
static int
wb_set(
    struct wbuf *b, unsigned dbi, uint8_t *k, size_t kl, uint8_t *v, size_t vl)
{
	struct wr_ent *e = fbxi_pg_wb_find(b, dbi, k, kl);
	size_t i;

	if (e == NULL) {
		if ((b->n + 1) * 2 > b->nslot && wb_grow(b) != 0)
			return ENOMEM;
		if (b->n == b->cap) {
			size_t nc = b->cap ? b->cap * 2 : 256;
			struct wr_ent *ne = realloc(b->e, nc * sizeof(*ne));
			if (ne == NULL)
				return ENOMEM;
			b->e = ne;
			b->cap = nc;
		}
		e = &b->e[b->n];
		e->k = k;
		e->kl = (uint32_t)kl;
		e->dbi = (uint8_t)dbi;
		for (i = hash_key(dbi, k, kl) & (b->nslot - 1);
		     b->slot[i] != 0; i = (i + 1) & (b->nslot - 1))
			;
		b->slot[i] = (uint32_t)++b->n;
	}
	e->del = v == NULL;
	e->v = v;
	e->vl = (uint32_t)vl;
	return 0;
}

static void
wb_clear(struct wbuf *b)
{
	b->n = 0;
	if (b->nslot > 0)
		memset(b->slot, 0, b->nslot * sizeof(*b->slot));
}

static void
wb_free(struct wbuf *b)
{
	free(b->e);
	free(b->slot);
	memset(b, 0, sizeof(*b));
}

/* bytea[] in binary array format: ndim, hasnull, element type, dim,
 * lower bound, then length + bytes per element */
struct arr {
	uint8_t *p;
	size_t n, cap;
};

static int
arr_put(struct arr *a, const void *b, size_t n)
{
	if (a->cap - a->n < n) {
		size_t nc = a->cap ? a->cap : 4096;
		uint8_t *np;
		while (nc - a->n < n)
			nc *= 2;
		np = realloc(a->p, nc);
		if (np == NULL)
			return ENOMEM;
		a->p = np;
		a->cap = nc;
	}
	memcpy(a->p + a->n, b, n);
	a->n += n;
	return 0;
}

static int
arr_u32(struct arr *a, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16),
		(uint8_t)(v >> 8), (uint8_t)v };

	return arr_put(a, b, 4);
}

static int
arr_begin(struct arr *a, uint32_t count)
{
	a->n = 0;
	if (arr_u32(a, 1) || arr_u32(a, 0) || arr_u32(a, 17)
	    || arr_u32(a, count) || arr_u32(a, 1))
		return ENOMEM;
	return 0;
}

/* wb_send - write t's held-back writes, one DELETE and one upsert per
 * table, on t's connection. */
static int
wb_send(fbxi_kv_txn *t)
{
	struct wbuf *b = &t->wb;
	struct arr ka = { 0 }, va = { 0 };
	char sql[256];
	int code = 0;

	if (b->n == 0)
		return 0;
	for (int d = 1; d < NTAB && code == 0; d++) {
		for (int del = 1; del >= 0 && code == 0; del--) {
			uint32_t cnt = 0;
			const char *vals[2];
			int lens[2], fmts[2] = { 1, 1 };
			PGresult *r;
			for (size_t i = 0; i < b->n; i++)
				cnt += b->e[i].dbi == d && b->e[i].del == del;
			if (cnt == 0)
				continue;
			if (arr_begin(&ka, cnt)
			    || (!del && arr_begin(&va, cnt))) {
				code = ENOMEM;
				break;
			}
			for (size_t i = 0; i < b->n && code == 0; i++) {
				const struct wr_ent *e = &b->e[i];
				if (e->dbi != d || e->del != del)
					continue;
				if (arr_u32(&ka, e->kl)
				    || arr_put(&ka, e->k, e->kl))
					code = ENOMEM;
				else if (!del
				    && (arr_u32(&va, e->vl)
				        || arr_put(&va, e->v, e->vl)))
					code = ENOMEM;
			}
			if (code != 0)
				break;
			if (ka.n > INT32_MAX || va.n > INT32_MAX) {
				code = ENOMEM;
				break;
			}
			vals[0] = (const char *)ka.p;
			lens[0] = (int)ka.n;
			vals[1] = (const char *)va.p;
			lens[1] = (int)va.n;
			if (del)
				snprintf(sql, sizeof(sql),
				    "DELETE FROM fbx_%s WHERE k = "
				    "ANY($1::bytea[])",
				    tabs[d]);
			else
				snprintf(sql, sizeof(sql),
				    "INSERT INTO fbx_%s (k, v) SELECT * FROM "
				    "unnest($1::bytea[], $2::bytea[]) ON "
				    "CONFLICT "
				    "(k) DO UPDATE SET v = EXCLUDED.v",
				    tabs[d]);
			r = fbxi_pg_run(
			    t, sql, del ? 1 : 2, vals, lens, fmts, &code);
			PQclear(r);
		}
	}
	free(ka.p);
	free(va.p);
	if (code != 0)
		return fbxi_pg_latch(t, code);
	wb_clear(b);
	return 0;
}

/* ensure_sp - before a child's first statement: its parent's writes,
 * then the savepoint. */
static int
ensure_sp(fbxi_kv_txn *t)
{
	int code;

	if (t->parent == NULL || t->sp)
		return 0;
	code = wb_send(t->parent);
	if (code == 0)
		code = simple(t->env, t->conn, "SAVEPOINT fbx_child");
	if (code != 0) {
		/* nothing protects the parent yet */
		fbxi_pg_latch(t->parent, code);
		return fbxi_pg_latch(t, code);
	}
	t->sp = 1;
	return 0;
}

/* fbxi_pg_before_stmt: store_pg_int.h */
int
fbxi_pg_before_stmt(fbxi_kv_txn *t, int flush)
{
	int code;

	if (t->err != 0)
		return t->err;
	code = ensure_sp(t);
	if (code == 0 && flush && t->write)
		code = wb_send(t);
	return code;
}

static void
ring_keep(fbxi_kv_txn *t, PGresult *r)
{
	unsigned i = t->ringpos++ % PG_RING;

	PQclear(t->ring[i]);
	t->ring[i] = r;
}

/* find_held - the held-back write of (dbi, k) seen from t (its own,
 * then its parent's). */
static struct wr_ent *
find_held(fbxi_kv_txn *t, unsigned dbi, const uint8_t *k, size_t kl)
{
	for (; t != NULL; t = t->parent) {
		struct wr_ent *e = fbxi_pg_wb_find(&t->wb, dbi, k, kl);
		if (e != NULL)
			return e;
	}
	return NULL;
}

/* ---- environment ------------------------------------------------------ */

int
fbxi_kv_env_create(fbxi_kv_env **env)
{
	fbxi_kv_env *e = calloc(1, sizeof(*e));
	int rc;

	if (e == NULL)
		return ENOMEM;
	rc = mdb_env_create(&e->mdb);
	if (rc != 0) {
		free(e);
		return rc;
	}
	*env = e;
	return 0;
}

int
fbxi_kv_env_create_pg(
    fbxi_kv_env **env, const char *url, int durability, unsigned wait_ms)
{
	fbxi_kv_env *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return ENOMEM;
	e->pg = 1;
	e->durability = durability;
	e->max_readers = 126;
	e->wait_ms = wait_ms != 0 ? wait_ms : FBXI_PG_WAIT_MS;
	e->url = strdup(url);
	e->shown = redact(url);
	if (e->url == NULL || e->shown == NULL) {
		free(e->url);
		free(e->shown);
		free(e);
		return ENOMEM;
	}
	pthread_mutex_init(&e->wlock, NULL);
	pthread_mutex_init(&e->plock, NULL);
	*env = e;
	return 0;
}

int
fbxi_kv_is_pg(const fbxi_kv_env *env)
{
	return env != NULL && env->pg;
}

int
fbxi_kv_env_set_maxdbs(fbxi_kv_env *env, MDB_dbi n)
{
	return env->pg ? 0 : mdb_env_set_maxdbs(env->mdb, n);
}

int
fbxi_kv_env_set_mapsize(fbxi_kv_env *env, size_t size)
{
	if (!env->pg)
		return mdb_env_set_mapsize(env->mdb, size);
	return 0; /* no map */
}

int
fbxi_kv_env_set_maxreaders(fbxi_kv_env *env, unsigned n)
{
	if (!env->pg)
		return mdb_env_set_maxreaders(env->mdb, n);
	env->max_readers = n;
	return 0;
}

/* the table layout, by version: migrations[i] takes version i to i + 1.
 * Version 1: one table per named database, fbx_<name> (k bytea primary
 * key, v bytea): the keys and values of store.c's schema comment. The
 * tables whose keys start with "org \0" also carry that organisation as
 * a generated column (org bytea, stored), ready for partitioning or
 * sharding by organisation without rewriting them. */
static int
layout_v1(fbxi_kv_env *env, PGconn *c)
{
	static const char *const by_org[] = { "cmd_org", "idem", "pend", "dev",
		"grp", "org", "audit_org", "audit_actor" };
	char sql[512];
	int code = 0;

	for (int i = 1; i < NTAB && code == 0; i++) {
		const char *org = "";
		for (size_t j = 0; j < sizeof(by_org) / sizeof(by_org[0]);
		     j++) {
			if (strcmp(tabs[i], by_org[j]) == 0)
				org = ", org bytea GENERATED ALWAYS AS (CASE "
				      "WHEN "
				      "position('\\x00'::bytea IN k) > 0 THEN "
				      "substring(k FROM 1 FOR "
				      "position('\\x00'::bytea "
				      "IN k) - 1) ELSE k END) STORED";
		}
		/* deliveries are rewritten in place on every move: room on
		 * each page lets PostgreSQL update them without moving */
		snprintf(sql, sizeof(sql),
		    "CREATE TABLE fbx_%s (k bytea PRIMARY KEY, v bytea NOT "
		    "NULL%s)%s",
		    tabs[i], org,
		    strcmp(tabs[i], "dlv") == 0 ? " WITH (fillfactor = 80)"
		                                : "");
		code = simple(env, c, sql);
	}
	return code;
}

/* Version 2: the lease tables of several nodes on one store
 * (pg_lease.h), empty until a node runs in cluster mode. */
static int
layout_v2(fbxi_kv_env *env, PGconn *c)
{
	return fbxi_lease_layout(c, env->wait_ms, env->shown);
}

static int (*const migrations[PG_LAYOUT])(fbxi_kv_env *, PGconn *) = {
	layout_v1,
	layout_v2,
};

/* ensure_schema - the connection's schema exists (the first of
 * search_path, created if missing), and its tables are at PG_LAYOUT,
 * created or migrated under the schema lock in one transaction. */
static int
ensure_schema(fbxi_kv_env *env, PGconn *c)
{
	PGresult *r;
	int code, ver = 0;

	r = fbxi_pg_exec1(c, env->wait_ms, env->shown,
	    "SELECT current_schema() IS NULL, "
	    "split_part(current_setting('search_path'), ',', 1)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		code = pg_code(c, r);
		pg_log(env, "schema", PQerrorMessage(c));
		PQclear(r);
		return code;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "t") == 0) {
		char name[128], sql[300], *q;
		size_t n;
		snprintf(name, sizeof(name), "%s", PQgetvalue(r, 0, 1));
		n = strlen(name);
		while (n > 0 && name[n - 1] == ' ')
			name[--n] = '\0';
		q = name;
		while (*q == ' ')
			q++;
		if (*q == '"' && n > 1 && name[n - 1] == '"') {
			name[n - 1] = '\0';
			q++;
		} else {
			/* unquoted: PostgreSQL folds it to lower case */
			for (char *x = q; *x != '\0'; x++)
				if (*x >= 'A' && *x <= 'Z')
					*x = (char)(*x - 'A' + 'a');
		}
		{
			char *id = PQescapeIdentifier(c, q, strlen(q));
			if (id == NULL) {
				PQclear(r);
				return ENOMEM;
			}
			snprintf(sql, sizeof(sql),
			    "CREATE SCHEMA IF NOT EXISTS %s", id);
			PQfreemem(id);
		}
		code = simple(env, c, sql);
		if (code != 0) {
			PQclear(r);
			return code;
		}
	}
	PQclear(r);
	/* the schema lock is the writers' lock too (a node's write turn
	 * holds it while it runs), and another process's migration holds
	 * it for as long as that takes: a minute more than any answer */
	code = simple_wait(env, c,
	    "BEGIN; SELECT pg_advisory_xact_lock(7308036, "
	    "hashtext(current_schema())); CREATE TABLE IF NOT EXISTS "
	    "fbx_schema (version integer NOT NULL)",
	    env->wait_ms + 60000u);
	if (code != 0)
		goto fail;
	r = fbxi_pg_exec1(
	    c, env->wait_ms, env->shown, "SELECT max(version) FROM fbx_schema");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		code = pg_code(c, r);
		PQclear(r);
		goto fail;
	}
	if (!PQgetisnull(r, 0, 0))
		ver = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (ver > PG_LAYOUT || ver < 0) {
		fbxi_store_log(0, "table layout",
		    "fusebox store (postgresql %s): table layout "
		    "version %d is newer than this build's %d",
		    env->shown, ver, PG_LAYOUT);
		code = MDB_VERSION_MISMATCH;
		goto fail;
	}
	for (int v = ver; v < PG_LAYOUT && code == 0; v++)
		code = migrations[v](env, c);
	if (code == 0 && ver != PG_LAYOUT) {
		char sql[96];
		snprintf(sql, sizeof(sql),
		    "DELETE FROM fbx_schema; INSERT INTO fbx_schema VALUES "
		    "(%d)",
		    PG_LAYOUT);
		code = simple(env, c, sql);
	}
	if (code == 0) {
		r = fbxi_pg_exec1(c, env->wait_ms, env->shown, "COMMIT");
		if (PQresultStatus(r) != PGRES_COMMAND_OK
		    || strcmp(PQcmdStatus(r), "COMMIT") != 0)
			code
			    = pg_code(c, r) == MDB_PANIC ? EIO : pg_code(c, r);
		PQclear(r);
		return code;
	}
fail:
	(void)simple(env, c, "ROLLBACK");
	return code;
}

int
fbxi_kv_env_open(
    fbxi_kv_env *env, const char *path, unsigned flags, mdb_mode_t mode)
{
	int code;

	if (!env->pg)
		return mdb_env_open(env->mdb, path, flags, mode);
	if (quiet(env))
		return EIO;
	code = pg_connect(env, &env->wconn);
	if (code == 0)
		code = ensure_schema(env, env->wconn);
	if (code == 0)
		code = owner_lock(env, env->wconn);
	if (code != 0 && env->wconn != NULL) {
		PQfinish(env->wconn);
		env->wconn = NULL;
	}
	/* fbx_store_open reads every failure here but these three as EIO */
	return code == MDB_VERSION_MISMATCH || code == ENOMEM ||
	        code == EBUSY
	    ? code
	    : code != 0 ? EIO
	                : 0;
}

void
fbxi_kv_env_close(fbxi_kv_env *env)
{
	if (env == NULL)
		return;
	if (!env->pg) {
		mdb_env_close(env->mdb);
		free(env);
		return;
	}
	if (env->wconn != NULL) {
		/* not asked of a server that did not answer a moment ago
		 * (quiet): closing would wait a bound for each statement */
		if (env->lease != NULL && !env->keep_leases &&
		    PQstatus(env->wconn) == CONNECTION_OK &&
		    !fbxi_pg_quiet(env->shown, env->wait_ms, NULL))
			fbxi_lease_release(env->lease, env->wconn);
		/* the owner lock (owner_lock) goes with the session, but the
		 * server ends a session after PQfinish has returned: released
		 * here, a process opening the store right after this close
		 * (a restart) finds it free rather than, now and then, BUSY.
		 * On failure the session's end still frees it. */
		if (PQstatus(env->wconn) == CONNECTION_OK &&
		    !fbxi_pg_quiet(env->shown, env->wait_ms, NULL))
			PQclear(fbxi_pg_exec1(env->wconn, env->wait_ms,
			    env->shown, "SELECT pg_advisory_unlock_all()"));
		PQfinish(env->wconn);
	}
	fbxi_lease_free(env->lease);
	for (unsigned i = 0; i < env->nidle; i++)
		PQfinish(env->idle[i]);
	free(env->idle);
	pthread_mutex_destroy(&env->wlock);
	pthread_mutex_destroy(&env->plock);
	free(env->url);
	free(env->shown);
	free(env);
}

int
fbxi_kv_env_sync(fbxi_kv_env *env, int force)
{
	if (!env->pg)
		return mdb_env_sync(env->mdb, force);
	/* Every commit was flushed before COMMIT returned: the session runs
	 * with synchronous_commit on for FULL and NOMETASYNC alike. Not
	 * off plus a flush here: the server can crash and restart while
	 * fuseboxd lives on, and an asynchronous commit lost that way
	 * would leave the engine's memory ahead of the store with no
	 * failed commit to tell it (LMDB's lost meta page only follows a
	 * power loss, which takes the engine down too). NOSYNC is off. */
	return 0;
}

int
fbxi_kv_env_info(fbxi_kv_env *env, MDB_envinfo *info)
{
	if (!env->pg)
		return mdb_env_info(env->mdb, info);
	memset(info, 0, sizeof(*info)); /* no map: size 0 */
	info->me_maxreaders = env->max_readers;
	return 0;
}

int
fbxi_kv_env_stat(fbxi_kv_env *env, MDB_stat *st)
{
	if (!env->pg)
		return mdb_env_stat(env->mdb, st);
	memset(st, 0, sizeof(*st)); /* no pages: page size 0 */
	return 0;
}

int
fbxi_kv_reader_check(fbxi_kv_env *env, int *dead)
{
	if (!env->pg)
		return mdb_reader_check(env->mdb, dead);
	*dead = 0; /* the server ends a dead client's transaction */
	return 0;
}

int
fbxi_kv_reader_list(fbxi_kv_env *env, MDB_msg_func *fn, void *ctx)
{
	unsigned n;

	if (!env->pg)
		return mdb_reader_list(env->mdb, fn, ctx);
	pthread_mutex_lock(&env->plock);
	n = env->nbusy;
	pthread_mutex_unlock(&env->plock);
	for (unsigned i = 0; i < n; i++)
		fn("reader: a read transaction on a pooled connection\n", ctx);
	return 0;
}

/* ---- transactions ------------------------------------------------------ */

static int
pool_get(fbxi_kv_env *env, PGconn **out)
{
	PGconn *c = NULL;
	int code;

	pthread_mutex_lock(&env->plock);
	if (env->nidle + env->nbusy >= env->max_readers && env->nidle == 0) {
		pthread_mutex_unlock(&env->plock);
		return MDB_READERS_FULL;
	}
	env->nbusy++;
	if (env->nidle > 0)
		c = env->idle[--env->nidle];
	pthread_mutex_unlock(&env->plock);
	if (c != NULL && PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		c = NULL;
	}
	if (c == NULL) {
		code = pg_connect(env, &c);
		if (code != 0) {
			pthread_mutex_lock(&env->plock);
			env->nbusy--;
			pthread_mutex_unlock(&env->plock);
			return code;
		}
	}
	*out = c;
	return 0;
}

/* pool_drain - close the idle connections (after one was found dead:
 * the server restarted or ended them all). */
static void
pool_drain(fbxi_kv_env *env)
{
	PGconn **idle;
	unsigned n;

	pthread_mutex_lock(&env->plock);
	idle = env->idle;
	n = env->nidle;
	env->idle = NULL;
	env->nidle = 0;
	pthread_mutex_unlock(&env->plock);
	for (unsigned i = 0; i < n; i++)
		PQfinish(idle[i]);
	free(idle);
}

static void
pool_put(fbxi_kv_env *env, PGconn *c, int ok)
{
	pthread_mutex_lock(&env->plock);
	env->nbusy--;
	if (ok && PQstatus(c) == CONNECTION_OK) {
		PGconn **ni
		    = realloc(env->idle, (env->nidle + 1) * sizeof(*ni));
		if (ni != NULL) {
			env->idle = ni;
			env->idle[env->nidle++] = c;
			c = NULL;
		}
	}
	pthread_mutex_unlock(&env->plock);
	if (c != NULL)
		PQfinish(c);
}

static void
txn_free(fbxi_kv_txn *t)
{
	for (fbxi_kv_cursor *c = t->curs; c != NULL; c = c->next)
		c->t = NULL; /* closed later by their owner */
	for (int i = 0; i < PG_RING; i++)
		PQclear(t->ring[i]);
	wb_free(&t->wb);
	while (t->arena != NULL) {
		struct chunk *n = t->arena->next;
		free(t->arena);
		t->arena = n;
	}
	free(t);
}

/* writer_conn - the writer's connection, made again when it was lost. */
/* owner_lock - the store's session lock on the writer connection, held
 * for the connection's life: one process writes a store at a time, as
 * the data directory's lock file guards an LMDB store (two daemons on
 * one database would each act on memory the other's writes make stale).
 * A killed process's session ends and frees it. @return 0, EBUSY when
 * another session holds it, or the statement's code. */
static int
owner_lock(fbxi_kv_env *env, PGconn *c)
{
	const char *node = env->lease != NULL ? fbxi_lease_node(env->lease)
	                                      : NULL;
	const char *v[1] = { node };
	/* a sole writer holds the store's lock alone; nodes share it (so
	 * a process without --node cannot start beside them, nor a node
	 * beside a sole writer), and each holds its node name's lock: one
	 * process per node name */
	PGresult *r = node != NULL
	    ? fbxi_pg_exec(c, env->wait_ms, env->shown,
	          "SELECT pg_try_advisory_lock_shared(7308037, "
	          "hashtext(current_schema())) AND "
	          "pg_try_advisory_lock(hashtextextended(current_schema() || "
	          "'/' || $1, 7308038))",
	          1, v, NULL, NULL, 0)
	    : fbxi_pg_exec1(c, env->wait_ms, env->shown,
	          "SELECT pg_try_advisory_lock(7308037, "
	          "hashtext(current_schema()))");
	int code = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		code = pg_code(c, r);
	else if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		pg_log(env, "in use",
		    node != NULL ? "another session runs this node name on "
		                   "this store: another process, a fuseboxd "
		                   "without --node, or after a lost connection "
		                   "this one's old session, not ended yet"
		                 : "another session holds this store: a "
		                   "second fuseboxd, nodes started with "
		                   "--node, or after a lost connection this "
		                   "process's old session, not ended yet");
		code = EBUSY;
	}
	PQclear(r);
	if (code == 0 && env->lease != NULL) {
		/* a node paused inside a transaction holds the writers'
		 * lock: the server ends that transaction after half a
		 * lease (at least 5 s: a turn's own work between two
		 * statements must not count), so the other nodes wait no
		 * longer than that. It was the whole lease (an outside
		 * drill: a paused node held every writer for 10 s) */
		char sql[96];
		unsigned half = fbxi_lease_ttl(env->lease) / 2;
		snprintf(sql, sizeof(sql),
		    "SET idle_in_transaction_session_timeout = %u",
		    half > 5000 ? half : 5000);
		code = simple(env, c, sql);
	}
	return code;
}

static int
writer_conn(fbxi_kv_env *env)
{
	int code;

	if (env->wconn != NULL && PQstatus(env->wconn) == CONNECTION_OK)
		return 0;
	if (env->wconn != NULL) {
		PQfinish(env->wconn);
		env->wconn = NULL;
	}
	code = pg_connect(env, &env->wconn);
	/* a new session: the lock went with the old one; if another
	 * process took the store meanwhile, this one stops writing */
	if (code == 0)
		code = owner_lock(env, env->wconn);
	if (code != 0 && env->wconn != NULL) {
		PQfinish(env->wconn);
		env->wconn = NULL;
	}
	return code;
}

/* begin_node - cluster mode: BEGIN and the writers' lock, waiting for
 * the lock a quarter lease at a time and renewing this node's leases in
 * between: another node's long turn (a slow commit) must not cost this
 * one its leases while it waits. */
static int
begin_node(fbxi_kv_env *env)
{
	char sql[320];

	snprintf(sql, sizeof(sql),
	    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT "
	    "set_config('lock_timeout', '%u', true); SELECT "
	    "pg_advisory_xact_lock(7308036, hashtext(current_schema())); "
	    "SELECT set_config('lock_timeout', '0', true)",
	    fbxi_lease_ttl(env->lease) / 4);
	for (;;) {
		/* the server's lock_timeout first, then the bound */
		PGresult *r = fbxi_pg_exec1(env->wconn,
		    fbxi_lease_ttl(env->lease) / 4 + env->wait_ms, env->shown,
		    sql);
		ExecStatusType st =
		    r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		const char *state =
		    r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		int code;

		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			PQclear(r);
			return 0;
		}
		if (state == NULL || strcmp(state, "55P03") != 0) {
			code = r == NULL && PQstatus(env->wconn) == CONNECTION_OK
			    ? ENOMEM
			    : pg_code(env->wconn, r);
			pg_log(env, "command failed",
			    r != NULL ? PQresultErrorMessage(r)
			              : PQerrorMessage(env->wconn));
			PQclear(r);
			(void)simple(env, env->wconn, "ROLLBACK");
			return code;
		}
		/* lock_timeout: still waiting for another node's turn */
		PQclear(r);
		code = simple(env, env->wconn, "ROLLBACK");
		if (code == 0)
			code = fbxi_lease_renew(env->lease, env->wconn);
		if (code != 0)
			return code;
	}
}

int
fbxi_kv_txn_begin(
    fbxi_kv_env *env, fbxi_kv_txn *parent, unsigned flags, fbxi_kv_txn **out)
{
	fbxi_kv_txn *t;
	int code;

	if (!env->pg)
		return mdb_txn_begin(
		    env->mdb, (MDB_txn *)parent, flags, (MDB_txn **)out);
	if (parent != NULL)
		parent = UNTAG(fbxi_kv_txn, parent);
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return ENOMEM;
	t->env = env;
	t->write = !(flags & MDB_RDONLY);
	if (parent != NULL) {
		if (parent->err != 0) {
			free(t);
			return parent->err;
		}
		t->parent = parent;
		t->conn = parent->conn;
		t->write = 1;
		parent->child = t;
		*out = TAG(fbxi_kv_txn, t);
		return 0;
	}
	if (quiet(env)) {
		free(t);
		return EIO;
	}
	if (t->write) {
		pthread_mutex_lock(&env->wlock);
		/* nothing is done before BEGIN: a connection found dead
		 * there (the server restarted, an idle session was ended)
		 * is made again and BEGIN retried, once; not one that got
		 * no answer in time (quiet: the new one would wait as long) */
		for (int tries = 0; tries < 2; tries++) {
			code = writer_conn(env);
			if (code == 0 && env->lease != NULL)
				code = begin_node(env);
			else if (code == 0)
				code = simple(env, env->wconn,
				    "BEGIN ISOLATION LEVEL READ COMMITTED; "
				    "SELECT pg_advisory_xact_lock(7308036, "
				    "hashtext(current_schema()))");
			if (code != EIO)
				break;
			PQfinish(env->wconn);
			env->wconn = NULL;
			if (fbxi_pg_quiet(env->shown, env->wait_ms, NULL))
				break;
		}
		if (code != 0) {
			pthread_mutex_unlock(&env->wlock);
			free(t);
			return code;
		}
		t->conn = env->wconn;
	} else {
		for (int tries = 0; tries < 2; tries++) {
			code = pool_get(env, &t->conn);
			if (code != 0)
				break;
			code = simple(env, t->conn,
			    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
			if (code == 0)
				break;
			pool_put(env, t->conn, 0); /* closes it */
			if (code != EIO)
				break;
			pool_drain(env); /* its fellows died with it */
			if (fbxi_pg_quiet(env->shown, env->wait_ms, NULL))
				break;
		}
		if (code != 0) {
			free(t);
			return code;
		}
	}
	*out = TAG(fbxi_kv_txn, t);
	return 0;
}

/* end_child - after a child's commit or abort. */
static void
end_child(fbxi_kv_txn *t)
{
	fbxi_kv_txn *p = t->parent;

	p->child = NULL;
	txn_free(t);
}

static void
end_root(fbxi_kv_txn *t, int ok)
{
	fbxi_kv_env *env = t->env;

	if (t->write)
		pthread_mutex_unlock(&env->wlock);
	else
		pool_put(env, t->conn, ok);
	txn_free(t);
}

static void pg_abort(fbxi_kv_txn *t);

void
fbxi_kv_txn_abort(fbxi_kv_txn *t)
{
	if (t == NULL)
		return;
	if (!IS_PG(t)) {
		mdb_txn_abort((MDB_txn *)t);
		return;
	}
	pg_abort(UNTAG(fbxi_kv_txn, t));
}

static void
pg_abort(fbxi_kv_txn *t)
{
	if (t->child != NULL)
		pg_abort(t->child);
	if (t->parent != NULL) {
		if (t->sp) {
			int code = simple(t->env, t->conn,
			    "ROLLBACK TO SAVEPOINT fbx_child; RELEASE "
			    "SAVEPOINT "
			    "fbx_child");
			if (code != 0)
				fbxi_pg_latch(t->parent, code);
		}
		end_child(t);
		return;
	}
	{
		int ok = PQstatus(t->conn) == CONNECTION_OK
		    && simple(t->env, t->conn, "ROLLBACK") == 0;
		if (t->write && t->env->lease != NULL)
			fbxi_lease_settle(t->env->lease, 0);
		end_root(t, ok);
	}
}

/* fold - a child that sent nothing: its writes become its parent's. */
static int
fold(fbxi_kv_txn *t)
{
	fbxi_kv_txn *p = t->parent;

	for (size_t i = 0; i < t->wb.n; i++) {
		struct wr_ent *e = &t->wb.e[i];
		if (wb_set(&p->wb, e->dbi, e->k, e->kl, e->del ? NULL : e->v,
		        e->vl)
		    != 0)
			return ENOMEM;
	}
	return 0;
}

/* Test hooks (fbx_store.h): the next write commit's answer is lost. */
int fbx_store_test_pg_lose_commit;
static PGconn *test_held;

int
fbx_store_test_pg_end_held(void)
{
	PGresult *r;
	int ok;

	if (test_held == NULL)
		return -1;
	r = fbxi_pg_exec1(test_held, 0, "test", "COMMIT");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	/* the store's session lock, before the session's end (which the
	 * server finishes on its own time) */
	r = fbxi_pg_exec1(test_held, 0, "test", "SELECT pg_advisory_unlock_all()");
	ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
	PQclear(r);
	PQfinish(test_held);
	test_held = NULL;
	return ok ? 0 : -1;
}

/* xact_id - asked before COMMIT (one round trip), so that a COMMIT whose
 * answer never comes can be looked up afterwards (pg_doubt.c). */
static int
xact_id(fbxi_kv_txn *t, struct fbxi_pg_xact *x)
{
	int code = 0;
	PGresult *r
	    = fbxi_pg_run(t, FBXI_PG_XACT_SQL, 0, NULL, NULL, NULL, &code);

	x->id[0] = x->server[0] = '\0';
	if (r == NULL)
		return code;
	code = fbxi_pg_xact_read(r, x);
	PQclear(r);
	return code;
}

/* doubt_committed - fbxi_pg_in_doubt said committed: the store's
 * session lock went with the old connection, so the writer connects
 * again and takes it before the turn counts as done; if another process
 * has taken the store meanwhile (or the server is gone again), the
 * outcome is handed on as unknown (FBXI_EINDOUBT): this process must
 * not act on it. */
static int
doubt_committed(fbxi_kv_txn *t)
{
	fbxi_kv_env *env = t->env;
	int64_t end = fbxi_pg_mono_ms() + FBXI_PG_DOUBT_MS;
	int code;

	PQfinish(env->wconn);
	env->wconn = NULL;
	t->conn = NULL;
	/* the old session may still hold the lock for a moment after its
	 * transaction (the server ends it on its own time) */
	while ((code = writer_conn(env)) == EBUSY && fbxi_pg_mono_ms() < end)
		nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
	if (code == 0)
		return 0;
	pg_log(env, "commit in doubt",
	    "committed, but the store's lock could not be taken again "
	    "(this process's old session may still hold it): the outcome is "
	    "handed on as unknown");
	return FBXI_EINDOUBT;
}

int
fbxi_kv_txn_commit(fbxi_kv_txn *t)
{
	struct fbxi_pg_xact xid;
	int code;

	if (!IS_PG(t))
		return mdb_txn_commit((MDB_txn *)t);
	t = UNTAG(fbxi_kv_txn, t);
	if (t->child != NULL)
		pg_abort(t->child);
	if (t->err != 0) {
		code = t->err;
		pg_abort(t);
		return code;
	}
	if (t->parent != NULL) {
		fbxi_kv_txn *p = t->parent;
		if (t->sp) {
			code = wb_send(t);
			if (code == 0)
				code = simple(t->env, t->conn,
				    "RELEASE SAVEPOINT fbx_child");
		} else {
			code = fold(t);
		}
		if (code != 0) {
			t->err = code;
			pg_abort(t);
			return code;
		}
		fbxi_pg_invalidate_cursors(p);
		memset(p->last_known, 0, sizeof(p->last_known));
		end_child(t);
		return 0;
	}
	if (!t->write) {
		code = simple(t->env, t->conn, "COMMIT");
		end_root(t, code == 0);
		return code;
	}
	code = wb_send(t);
	if (code == 0 && t->env->lease != NULL)
		code = fbxi_pg_latch(
		    t, fbxi_lease_fence(t->env->lease, t->conn));
	if (code == 0)
		code = fbxi_pg_latch(t, xact_id(t, &xid));
	if (code == 0 && fbx_store_test_pg_lose_commit == 5) {
		/* test hook: no answer, and nothing decided yet: the
		 * transaction stays open on a connection the test ends */
		fbx_store_test_pg_lose_commit = 0;
		test_held = t->conn;
		t->env->wconn = NULL;
		t->conn = NULL;
		code = FBXI_EINDOUBT;
	} else if (code == 0) {
		int lose = fbx_store_test_pg_lose_commit;
		PGresult *r;
		fbx_store_test_pg_lose_commit = 0;
		r = fbxi_pg_exec1(t->conn, t->env->wait_ms, t->env->shown,
		    lose == 2 ? "ROLLBACK" : "COMMIT");
		if (lose == 6) {
			/* test hook: the answer came but could not be kept
			 * (libpq out of memory); the connection lives on */
			PQclear(r);
			r = NULL;
		} else if (lose != 0) {
			/* test hook: the server has answered; the answer is
			 * lost with the connection, as in a failover */
			PQclear(r);
			r = fbxi_pg_exec1(t->conn, t->env->wait_ms,
			    t->env->shown,
			    "SELECT pg_terminate_backend(pg_backend_pid())");
		}
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			code = pg_code(t->conn, r);
			pg_log(t->env, "commit failed",
			    r != NULL ? PQresultErrorMessage(r)
			              : PQerrorMessage(t->conn));
			/* no answer (the connection gone, or no memory for
			 * the answer): asked about */
			if (code == EIO && xid.id[0] != '\0' &&
			    (r == NULL || PQstatus(t->conn) != CONNECTION_OK))
				code = fbxi_pg_in_doubt(t->env->url,
				    t->env->shown, &xid, lose == 3, lose == 4);
			if (code == 0)
				code = doubt_committed(t);
		} else if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
			/* the server rolled it back */
			code = MDB_PANIC;
			pg_log(t->env, "commit failed", PQcmdStatus(r));
		}
		PQclear(r);
	}
	if (code != 0) {
		t->err = code;
		pg_abort(t);
		return code;
	}
	if (t->env->lease != NULL)
		fbxi_lease_settle(t->env->lease, 1);
	end_root(t, 1);
	return 0;
}

/* ---- cluster mode: organisation leases (pg_lease.c) ----------------- */

int
fbxi_kv_env_set_node(
    fbxi_kv_env *env, const char *node, const char *endpoint, unsigned ttl_ms)
{
	if (!env->pg)
		return EINVAL;
	fbxi_lease_free(env->lease);
	env->lease = fbxi_lease_new(
	    node, endpoint, ttl_ms, env->wait_ms, env->shown);
	return env->lease != NULL ? 0 : ENOMEM;
}

void
fbxi_kv_keep_leases(fbxi_kv_env *env)
{
	if (env != NULL && env->pg)
		env->keep_leases = 1;
}

int
fbxi_kv_cluster(const fbxi_kv_env *env)
{
	return env != NULL && env->pg && env->lease != NULL;
}

int
fbxi_kv_owns(const fbxi_kv_env *env, const char *org)
{
	return !fbxi_kv_cluster(env) || fbxi_lease_owns(env->lease, org);
}

int64_t
fbxi_kv_lease_left_ms(const fbxi_kv_env *env)
{
	return fbxi_kv_cluster(env) ? fbxi_lease_left_ms(env->lease)
	                            : INT64_MAX;
}

size_t
fbxi_kv_owned(const fbxi_kv_env *env)
{
	return fbxi_kv_cluster(env) ? fbxi_lease_count(env->lease) : 0;
}

int
fbxi_kv_lease_tick(fbxi_kv_env *env, int (*idle)(void *, const char *),
    void *arg, int *changed)
{
	int code;

	*changed = 0;
	if (!fbxi_kv_cluster(env))
		return 0;
	if (quiet(env))
		return EIO;
	pthread_mutex_lock(&env->wlock);
	code = writer_conn(env);
	if (code == 0)
		code = fbxi_lease_tick(env->lease, env->wconn, idle, arg, changed);
	if (code == EIO && env->wconn != NULL &&
	    PQstatus(env->wconn) != CONNECTION_OK) {
		PQfinish(env->wconn);
		env->wconn = NULL;
	}
	pthread_mutex_unlock(&env->wlock);
	return code;
}

int
fbxi_kv_lease_owner(fbxi_kv_txn *t, const char *org, char *node,
    size_t ncap, char *endpoint, size_t ecap)
{
	int code;

	snprintf(node, ncap, "%s", "");
	snprintf(endpoint, ecap, "%s", "");
	if (!IS_PG(t))
		return 0;
	t = UNTAG(fbxi_kv_txn, t);
	if (t->err != 0)
		return t->err;
	if (!fbxi_kv_cluster(t->env))
		return 0;
	code = fbxi_lease_owner(
	    t->env->lease, t->conn, org, node, ncap, endpoint, ecap);
	return code != 0 ? fbxi_pg_latch(t, code) : 0;
}

int
fbxi_kv_lease_claim(fbxi_kv_txn *t, const char *org, int *how, char *node,
    size_t ncap, char *endpoint, size_t ecap)
{
	int code;

	*how = FBXI_CLAIM_OWNED;
	if (!IS_PG(t))
		return 0;
	t = UNTAG(fbxi_kv_txn, t);
	if (t->err != 0)
		return t->err;
	if (!t->write || !fbxi_kv_cluster(t->env))
		return 0;
	code = fbxi_lease_claim(
	    t->env->lease, t->conn, org, how, node, ncap, endpoint, ecap);
	return code != 0 ? fbxi_pg_latch(t, code) : 0;
}

int
fbxi_kv_dbi_open(
    fbxi_kv_txn *t, const char *name, unsigned flags, MDB_dbi *dbi)
{
	if (!IS_PG(t))
		return mdb_dbi_open((MDB_txn *)t, name, flags, dbi);
	if (name == NULL) {
		*dbi = 0;
		return 0;
	}
	for (int i = 1; i < NTAB; i++) {
		if (strcmp(tabs[i], name) == 0) {
			*dbi = (MDB_dbi)i;
			return 0;
		}
	}
	return MDB_NOTFOUND;
}

int
fbxi_kv_stat(fbxi_kv_txn *t, MDB_dbi dbi, MDB_stat *st)
{
	char sql[96];
	PGresult *r;
	int code;

	if (!IS_PG(t))
		return mdb_stat((MDB_txn *)t, dbi, st);
	t = UNTAG(fbxi_kv_txn, t);
	if (dbi >= (MDB_dbi)NTAB)
		return EINVAL;
	code = fbxi_pg_before_stmt(t, 1);
	if (code != 0)
		return code;
	/* the main database holds the named ones: non-empty once the
	 * store was made (meta has its schema) */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM fbx_%s",
	    tabs[dbi == 0 ? 1 : dbi]);
	r = fbxi_pg_run(t, sql, 0, NULL, NULL, NULL, &code);
	if (r == NULL)
		return code;
	memset(st, 0, sizeof(*st));
	if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 8) {
		const uint8_t *p = (const uint8_t *)PQgetvalue(r, 0, 0);
		uint64_t n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | p[i];
		st->ms_entries = (size_t)n;
	}
	PQclear(r);
	return 0;
}

/* ---- reads and writes ----------------------------------------------- */

int
fbxi_pg_get(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
	struct wr_ent *e;
	char sql[80];
	const char *vals[1];
	int lens[1], fmts[1] = { 1 };
	PGresult *r;
	int code;

	if (t->err != 0)
		return t->err;
	if (dbi == 0 || dbi >= (MDB_dbi)NTAB)
		return EINVAL;
	e = find_held(t, dbi, k->mv_data, k->mv_size);
	if (e != NULL) {
		if (e->del)
			return MDB_NOTFOUND;
		v->mv_data = e->v;
		v->mv_size = e->vl;
		return 0;
	}
	code = fbxi_pg_before_stmt(t, 0);
	if (code != 0)
		return code;
	snprintf(
	    sql, sizeof(sql), "SELECT v FROM fbx_%s WHERE k = $1", tabs[dbi]);
	vals[0] = k->mv_data;
	lens[0] = (int)k->mv_size;
	r = fbxi_pg_run(t, sql, 1, vals, lens, fmts, &code);
	if (r == NULL)
		return code;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return MDB_NOTFOUND;
	}
	v->mv_data = PQgetvalue(r, 0, 0);
	v->mv_size = (size_t)PQgetlength(r, 0, 0);
	ring_keep(t, r);
	return 0;
}

int
fbxi_kv_get(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
	if (!IS_PG(t))
		return mdb_get((MDB_txn *)t, dbi, k, v);
	return fbxi_pg_get(UNTAG(fbxi_kv_txn, t), dbi, k, v);
}

/* last_key - the largest key of dbi seen from t (for MDB_APPEND). */
static int
last_key(fbxi_kv_txn *t, MDB_dbi dbi)
{
	char sql[96];
	PGresult *r;
	int code;

	if (t->last_known[dbi])
		return 0;
	code = fbxi_pg_before_stmt(t, 1);
	if (code != 0)
		return code;
	snprintf(sql, sizeof(sql),
	    "SELECT k FROM fbx_%s ORDER BY k DESC LIMIT 1", tabs[dbi]);
	r = fbxi_pg_run(t, sql, 0, NULL, NULL, NULL, &code);
	if (r == NULL)
		return code;
	t->last_key[dbi] = NULL;
	t->last_len[dbi] = 0;
	if (PQntuples(r) == 1) {
		size_t n = (size_t)PQgetlength(r, 0, 0);
		t->last_key[dbi]
		    = fbxi_pg_arena_copy(t, PQgetvalue(r, 0, 0), n);
		if (t->last_key[dbi] == NULL) {
			PQclear(r);
			return fbxi_pg_latch(t, ENOMEM);
		}
		t->last_len[dbi] = (uint32_t)n;
	}
	PQclear(r);
	t->last_known[dbi] = 1;
	return 0;
}

/* fbxi_pg_put: store_pg_int.h */
int
fbxi_pg_put(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v,
    unsigned flags, uint8_t **kout)
{
	uint8_t *kc, *vc;
	int code;

	if (t->err != 0)
		return t->err;
	if (!t->write)
		return EACCES;
	if (dbi == 0 || dbi >= (MDB_dbi)NTAB)
		return EINVAL;
	if (k->mv_size == 0 || k->mv_size > 511)
		return MDB_BAD_VALSIZE;
	if (flags & MDB_NOOVERWRITE) {
		/* as LMDB: the key there already -> MDB_KEYEXIST with its
		 * value in *v, nothing written (one point read) */
		MDB_val kk = *k, old;
		code = fbxi_pg_get(t, dbi, &kk, &old);
		if (code == 0) {
			*v = old;
			return MDB_KEYEXIST;
		}
		if (code != MDB_NOTFOUND)
			return code;
	}
	if (flags & MDB_APPEND) {
		code = last_key(t, dbi);
		if (code != 0)
			return code;
		if (t->last_key[dbi] != NULL
		    && keycmp(k->mv_data, k->mv_size, t->last_key[dbi],
		           t->last_len[dbi])
		        <= 0)
			return MDB_KEYEXIST;
	}
	kc = fbxi_pg_arena_copy(t, k->mv_data, k->mv_size);
	vc = arena_alloc(t, v->mv_size ? v->mv_size : 1);
	if (kc == NULL || vc == NULL)
		return fbxi_pg_latch(t, ENOMEM);
	if (flags & MDB_RESERVE)
		v->mv_data = vc;
	else if (v->mv_size > 0)
		memcpy(vc, v->mv_data, v->mv_size);
	if (wb_set(&t->wb, dbi, kc, k->mv_size, vc, v->mv_size) != 0)
		return fbxi_pg_latch(t, ENOMEM);
	if (t->last_known[dbi]
	    && (t->last_key[dbi] == NULL
	        || keycmp(kc, k->mv_size, t->last_key[dbi], t->last_len[dbi])
	            > 0)) {
		t->last_key[dbi] = kc;
		t->last_len[dbi] = (uint32_t)k->mv_size;
	}
	fbxi_pg_notify(t, dbi, kc, k->mv_size, vc, v->mv_size);
	if (kout != NULL)
		*kout = kc;
	return 0;
}

int
fbxi_kv_put(
    fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags)
{
	if (!IS_PG(t))
		return mdb_put((MDB_txn *)t, dbi, k, v, flags);
	return fbxi_pg_put(UNTAG(fbxi_kv_txn, t), dbi, k, v, flags, NULL);
}

/* fbxi_pg_del: store_pg_int.h */
int
fbxi_pg_del(
    fbxi_kv_txn *t, MDB_dbi dbi, const uint8_t *k, size_t kl, int check)
{
	uint8_t *kc;

	if (t->err != 0)
		return t->err;
	if (!t->write)
		return EACCES;
	if (check) {
		MDB_val kk = { kl, (void *)k }, vv;
		int code = fbxi_pg_get(t, dbi, &kk, &vv);
		if (code != 0)
			return code;
	}
	kc = fbxi_pg_arena_copy(t, k, kl);
	if (kc == NULL || wb_set(&t->wb, dbi, kc, kl, NULL, 0) != 0)
		return fbxi_pg_latch(t, ENOMEM);
	if (t->last_known[dbi] && t->last_key[dbi] != NULL
	    && keycmp(kc, kl, t->last_key[dbi], t->last_len[dbi]) == 0)
		t->last_known[dbi] = 0;
	fbxi_pg_notify(t, dbi, kc, kl, NULL, 0);
	return 0;
}

int
fbxi_kv_del(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v)
{
	if (!IS_PG(t))
		return mdb_del((MDB_txn *)t, dbi, k, v);
	t = UNTAG(fbxi_kv_txn, t);
	if (dbi == 0 || dbi >= (MDB_dbi)NTAB)
		return EINVAL;
	return fbxi_pg_del(t, dbi, k->mv_data, k->mv_size, 1);
}
