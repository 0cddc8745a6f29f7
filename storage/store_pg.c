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
 *   per page, not per row; an exact seek is one point read.
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fbx_store.h"
#include "pg_doubt.h"
#include "pg_lease.h"

/* rows a cursor reads ahead per statement: a seek asks for PG_SEEK (a
 * random seek should not carry a page back), each refill of a walk four
 * times more, up to PG_PAGE */
#define PG_PAGE 1024
#define PG_SEEK 16
/* point-read results kept alive per transaction (values point into
 * them: the store reads a value before its next read) */
#define PG_RING 16
/* version of the table layout in fbx_schema (the store's own schema
 * version is in fbx_meta "schema", as in LMDB) */
#define PG_LAYOUT 2
/* advisory lock class of the writer lock (and of schema creation) */
#define PG_LOCK_CLASS 7308036

/* index = MDB_dbi; 0 is the main database (LMDB's unnamed one: here it
 * only answers "is the store empty" through fbx_meta) */
static const char *const tabs[] = { NULL, "meta", "cmd", "cmd_body", "cmd_org",
	"cmd_active", "idem", "dlv", "pend", "dev", "grp", "org", "kv",
	"audit", "audit_org", "audit_actor", "audit_time" };
#define NTAB ((int)(sizeof(tabs) / sizeof(tabs[0])))

struct fbxi_kv_env {
	MDB_env *mdb;
	int pg;
	char *url; /* libpq connection string */
	char *shown; /* url with any password replaced */
	int durability;
	unsigned max_readers;
	PGconn *wconn; /* the writer's connection */
	pthread_mutex_t wlock; /* held by the open write transaction */
	pthread_mutex_t plock; /* pool */
	PGconn **idle;
	unsigned nidle, nbusy;
	/* cluster mode (a node name was given): this node's leases */
	struct fbxi_lease *lease;
	int keep_leases; /* closed to be opened again: do not hand back */
};

/* a write held back: the last one per (dbi, key) */
struct wr_ent {
	uint8_t *k, *v; /* in the root transaction's arena */
	uint32_t kl, vl;
	uint8_t dbi, del;
};

struct wbuf {
	struct wr_ent *e;
	size_t n, cap;
	uint32_t *slot; /* open addressing: index + 1, 0 = empty */
	size_t nslot;
};

struct chunk {
	struct chunk *next;
	size_t used, cap;
	uint8_t data[];
};

struct fbxi_kv_txn {
	fbxi_kv_env *env;
	struct fbxi_kv_txn *parent;
	struct fbxi_kv_txn *child; /* the open child (one at a time) */
	PGconn *conn;
	int write;
	int err; /* latched */
	int sp; /* a child whose SAVEPOINT was sent */
	struct wbuf wb;
	struct chunk *arena; /* root only */
	PGresult *ring[PG_RING];
	unsigned ringpos;
	struct fbxi_kv_cursor *curs;
	/* largest key per table when known (MDB_APPEND checks) */
	uint8_t last_known[NTAB];
	uint8_t *last_key[NTAB];
	uint32_t last_len[NTAB];
};

struct row {
	const uint8_t *k, *v;
	size_t kl, vl;
};

struct fbxi_kv_cursor {
	fbxi_kv_txn *t; /* NULL once its transaction ended */
	MDB_dbi dbi;
	struct fbxi_kv_cursor *next;
	int pos; /* on a row */
	int deleted; /* that row was deleted */
	int stale; /* its value may be out of date (a child committed) */
	uint8_t curk[512];
	struct row cur;
	struct row *la; /* read ahead: rows after cur, ascending */
	size_t lah, lan, lacap;
	int complete; /* la reaches the end of the table */
	unsigned page; /* rows the next read-ahead asks for */
	PGresult *res[2];
};

/* ---- small helpers -------------------------------------------------- */

/* Handles: an LMDB transaction or cursor is handed out as LMDB's own
 * pointer (the LMDB path allocates nothing more and pays one bit test
 * per call); a PostgreSQL one as its pointer with bit 0 set. */
#define IS_PG(p) (((uintptr_t)(p)&1u) != 0)
#define UNTAG(T, p) ((T *)((uintptr_t)(p) & ~(uintptr_t)1))
#define TAG(T, p) ((T *)((uintptr_t)(p) | 1u))

static int
keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

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

static void *
arena_copy(fbxi_kv_txn *t, const void *p, size_t n)
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

void
fbxi_pg_log(const char *shown, const char *what, const char *msg)
{
	size_t n = msg != NULL ? strlen(msg) : 0;

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	fprintf(stderr, "fusebox store (postgresql %s): %s: %.*s\n",
	    shown != NULL ? shown : "?", what, (int)n, msg != NULL ? msg : "");
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
static int pg_get(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v);
static void pool_put(fbxi_kv_env *env, PGconn *c, int ok);

/* latch - t broke with code: so does every ancestor that shared the
 * statement's fate (all of them, unless a savepoint protects them and
 * the connection still works). */
static int
latch(fbxi_kv_txn *t, int code)
{
	for (fbxi_kv_txn *x = t; x != NULL; x = x->parent) {
		if (x->err == 0)
			x->err = code;
		if (x->sp && code != EIO)
			break;
	}
	return code;
}

/* run - one statement with binary parameters and results on t's
 * connection. @return the result (caller clears), or NULL with *code
 * set and t latched. */
static PGresult *
run(fbxi_kv_txn *t, const char *sql, int n, const char *const *vals,
    const int *lens, const int *fmts, int *code)
{
	PGresult *r = PQexecParams(t->conn, sql, n, NULL, vals, lens, fmts, 1);
	ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	*code = r == NULL && PQstatus(t->conn) == CONNECTION_OK
	    ? ENOMEM
	    : pg_code(t->conn, r);
	pg_log(t->env, "statement failed",
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(t->conn));
	PQclear(r);
	latch(t, *code);
	return NULL;
}

/* simple - a parameterless command (may be several); 0 or a code. */
static int
simple(fbxi_kv_env *env, PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
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
	PGconn *c = PQconnectdb(env->url);
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

static struct wr_ent *
wb_find(struct wbuf *b, unsigned dbi, const uint8_t *k, size_t kl)
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
	struct wr_ent *e = wb_find(b, dbi, k, kl);
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
			r = run(t, sql, del ? 1 : 2, vals, lens, fmts, &code);
			PQclear(r);
		}
	}
	free(ka.p);
	free(va.p);
	if (code != 0)
		return latch(t, code);
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
		latch(t->parent, code);
		return latch(t, code);
	}
	t->sp = 1;
	return 0;
}

/* before_stmt - what every statement of t needs first: t unbroken, a
 * child's savepoint; with flush, every held-back write sent. */
static int
before_stmt(fbxi_kv_txn *t, int flush)
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
		struct wr_ent *e = wb_find(&t->wb, dbi, k, kl);
		if (e != NULL)
			return e;
	}
	return NULL;
}

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
static int
notify(fbxi_kv_txn *t, unsigned dbi, const uint8_t *k, size_t kl,
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

	code = before_stmt(t, 1);
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
		r = run(t, sql, 1, vals, lens, fmts, &code);
	} else {
		snprintf(sql, sizeof(sql),
		    "SELECT k, v FROM fbx_%s WHERE k %s $1 ORDER BY k "
		    "LIMIT $2::int",
		    tabs[c->dbi], incl ? ">=" : ">");
		vals[0] = (const char *)k;
		lens[0] = (int)kl;
		vals[1] = lim;
		lens[1] = 0;
		r = run(t, sql, 2, vals, lens, fmts, &code);
	}
	if (r == NULL)
		return code;
	n = PQntuples(r);
	la_reset(c);
	if (la_reserve(c, (size_t)n) != 0) {
		PQclear(r);
		return latch(t, ENOMEM);
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
		return latch(c->t, MDB_BAD_VALSIZE);
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

static void
invalidate_cursors(fbxi_kv_txn *t)
{
	for (fbxi_kv_cursor *c = t->curs; c != NULL; c = c->next) {
		la_reset(c);
		c->stale = 1;
	}
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
fbxi_kv_env_create_pg(fbxi_kv_env **env, const char *url, int durability)
{
	fbxi_kv_env *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return ENOMEM;
	e->pg = 1;
	e->durability = durability;
	e->max_readers = 126;
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
	(void)env;
	return fbxi_lease_layout(c);
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

	r = PQexec(c,
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
	code = simple(env, c,
	    "BEGIN; SELECT pg_advisory_xact_lock(7308036, "
	    "hashtext(current_schema())); CREATE TABLE IF NOT EXISTS "
	    "fbx_schema (version integer NOT NULL)");
	if (code != 0)
		goto fail;
	r = PQexec(c, "SELECT max(version) FROM fbx_schema");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		code = pg_code(c, r);
		PQclear(r);
		goto fail;
	}
	if (!PQgetisnull(r, 0, 0))
		ver = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (ver > PG_LAYOUT || ver < 0) {
		fprintf(stderr,
		    "fusebox store (postgresql %s): table layout "
		    "version %d is newer than this build's %d\n",
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
		r = PQexec(c, "COMMIT");
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
		if (env->lease != NULL && !env->keep_leases &&
		    PQstatus(env->wconn) == CONNECTION_OK)
			fbxi_lease_release(env->lease, env->wconn);
		/* the owner lock (owner_lock) goes with the session, but the
		 * server ends a session after PQfinish has returned: released
		 * here, a process opening the store right after this close
		 * (a restart) finds it free rather than, now and then, BUSY.
		 * On failure the session's end still frees it. */
		if (PQstatus(env->wconn) == CONNECTION_OK)
			PQclear(PQexec(env->wconn,
			    "SELECT pg_advisory_unlock_all()"));
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
	    ? PQexecParams(c,
	          "SELECT pg_try_advisory_lock_shared(7308037, "
	          "hashtext(current_schema())) AND "
	          "pg_try_advisory_lock(hashtextextended(current_schema() || "
	          "'/' || $1, 7308038))",
	          1, NULL, v, NULL, NULL, 0)
	    : PQexec(c, "SELECT pg_try_advisory_lock(7308037, "
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
		 * lease, so the other nodes wait no longer than that */
		char sql[96];
		unsigned ttl = fbxi_lease_ttl(env->lease);
		snprintf(sql, sizeof(sql),
		    "SET idle_in_transaction_session_timeout = %u",
		    ttl > 5000 ? ttl : 5000);
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
		PGresult *r = PQexec(env->wconn, sql);
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
	if (t->write) {
		pthread_mutex_lock(&env->wlock);
		/* nothing is done before BEGIN: a connection found dead
		 * there (the server restarted, an idle session was ended)
		 * is made again and BEGIN retried, once */
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
				latch(t->parent, code);
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
	r = PQexec(test_held, "COMMIT");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	/* the store's session lock, before the session's end (which the
	 * server finishes on its own time) */
	r = PQexec(test_held, "SELECT pg_advisory_unlock_all()");
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
	PGresult *r = run(t, FBXI_PG_XACT_SQL, 0, NULL, NULL, NULL, &code);

	x->id[0] = x->server[0] = '\0';
	if (r == NULL)
		return code;
	code = fbxi_pg_xact_read(r, x);
	PQclear(r);
	return code;
}

/* doubt_committed - fbxi_pg_in_doubt said committed: the store's
 * session lock went with the old connection, so the writer connects
 * again and takes it before the turn counts as done; if another process has taken the
 * store meanwhile (or the server is gone again), the outcome is handed
 * on as unknown (FBXI_EINDOUBT): this process must not act on it. */
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
		invalidate_cursors(p);
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
		code = latch(t, fbxi_lease_fence(t->env->lease, t->conn));
	if (code == 0)
		code = latch(t, xact_id(t, &xid));
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
		r = PQexec(t->conn, lose == 2 ? "ROLLBACK" : "COMMIT");
		if (lose == 6) {
			/* test hook: the answer came but could not be kept
			 * (libpq out of memory); the connection lives on */
			PQclear(r);
			r = NULL;
		} else if (lose != 0) {
			/* test hook: the server has answered; the answer is
			 * lost with the connection, as in a failover */
			PQclear(r);
			r = PQexec(t->conn,
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
	env->lease = fbxi_lease_new(node, endpoint, ttl_ms);
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
	return code != 0 ? latch(t, code) : 0;
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
	return code != 0 ? latch(t, code) : 0;
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
	code = before_stmt(t, 1);
	if (code != 0)
		return code;
	/* the main database holds the named ones: non-empty once the
	 * store was made (meta has its schema) */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM fbx_%s",
	    tabs[dbi == 0 ? 1 : dbi]);
	r = run(t, sql, 0, NULL, NULL, NULL, &code);
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

static int
pg_get(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v)
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
	code = before_stmt(t, 0);
	if (code != 0)
		return code;
	snprintf(
	    sql, sizeof(sql), "SELECT v FROM fbx_%s WHERE k = $1", tabs[dbi]);
	vals[0] = k->mv_data;
	lens[0] = (int)k->mv_size;
	r = run(t, sql, 1, vals, lens, fmts, &code);
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
	return pg_get(UNTAG(fbxi_kv_txn, t), dbi, k, v);
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
	code = before_stmt(t, 1);
	if (code != 0)
		return code;
	snprintf(sql, sizeof(sql),
	    "SELECT k FROM fbx_%s ORDER BY k DESC LIMIT 1", tabs[dbi]);
	r = run(t, sql, 0, NULL, NULL, NULL, &code);
	if (r == NULL)
		return code;
	t->last_key[dbi] = NULL;
	t->last_len[dbi] = 0;
	if (PQntuples(r) == 1) {
		size_t n = (size_t)PQgetlength(r, 0, 0);
		t->last_key[dbi] = arena_copy(t, PQgetvalue(r, 0, 0), n);
		if (t->last_key[dbi] == NULL) {
			PQclear(r);
			return latch(t, ENOMEM);
		}
		t->last_len[dbi] = (uint32_t)n;
	}
	PQclear(r);
	t->last_known[dbi] = 1;
	return 0;
}

/* put - hold back (dbi, k) = v; with reserve, v gets room to fill. */
static int
put(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags,
    uint8_t **kout)
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
	kc = arena_copy(t, k->mv_data, k->mv_size);
	vc = arena_alloc(t, v->mv_size ? v->mv_size : 1);
	if (kc == NULL || vc == NULL)
		return latch(t, ENOMEM);
	if (flags & MDB_RESERVE)
		v->mv_data = vc;
	else if (v->mv_size > 0)
		memcpy(vc, v->mv_data, v->mv_size);
	if (wb_set(&t->wb, dbi, kc, k->mv_size, vc, v->mv_size) != 0)
		return latch(t, ENOMEM);
	if (t->last_known[dbi]
	    && (t->last_key[dbi] == NULL
	        || keycmp(kc, k->mv_size, t->last_key[dbi], t->last_len[dbi])
	            > 0)) {
		t->last_key[dbi] = kc;
		t->last_len[dbi] = (uint32_t)k->mv_size;
	}
	notify(t, dbi, kc, k->mv_size, vc, v->mv_size);
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
	return put(UNTAG(fbxi_kv_txn, t), dbi, k, v, flags, NULL);
}

/* del - hold back the delete of (dbi, k); MDB_NOTFOUND when absent. */
static int
del(fbxi_kv_txn *t, MDB_dbi dbi, const uint8_t *k, size_t kl, int check)
{
	uint8_t *kc;

	if (t->err != 0)
		return t->err;
	if (!t->write)
		return EACCES;
	if (check) {
		MDB_val kk = { kl, (void *)k }, vv;
		int code = pg_get(t, dbi, &kk, &vv);
		if (code != 0)
			return code;
	}
	kc = arena_copy(t, k, kl);
	if (kc == NULL || wb_set(&t->wb, dbi, kc, kl, NULL, 0) != 0)
		return latch(t, ENOMEM);
	if (t->last_known[dbi] && t->last_key[dbi] != NULL
	    && keycmp(kc, kl, t->last_key[dbi], t->last_len[dbi]) == 0)
		t->last_known[dbi] = 0;
	notify(t, dbi, kc, kl, NULL, 0);
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
	return del(t, dbi, k->mv_data, k->mv_size, 1);
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
		code = pg_get(c->t, c->dbi, &kk, &vv);
		if (code != 0)
			return code;
		if (la_reserve(c, 1) != 0)
			return latch(c->t, ENOMEM);
		c->la[0].k = arena_copy(c->t, k, kl);
		if (c->la[0].k == NULL)
			return latch(c->t, ENOMEM);
		c->la[0].kl = kl;
		/* a point read's result is recycled: the cursor keeps a copy
		 */
		c->la[0].v = arena_copy(c->t, vv.mv_data, vv.mv_size);
		c->la[0].vl = vv.mv_size;
		if (c->la[0].v == NULL)
			return latch(c->t, ENOMEM);
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
		code = before_stmt(t, 1);
		if (code != 0)
			return code;
		snprintf(sql, sizeof(sql),
		    "SELECT k, v FROM fbx_%s ORDER BY k DESC LIMIT 1",
		    tabs[c->dbi]);
		r = run(t, sql, 0, NULL, NULL, NULL, &code);
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
			return latch(t, ENOMEM);
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
			code = pg_get(t, c->dbi, &kk, &vv);
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
		return put(t, c->dbi, &kk, v, flags & ~MDB_CURRENT, NULL);
	}
	code = put(t, c->dbi, k, v, flags, &kc);
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
		struct wr_ent *e = wb_find(&t->wb, c->dbi, kc, k->mv_size);
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
	return del(c->t, c->dbi, c->curk, c->cur.kl, 0);
}
