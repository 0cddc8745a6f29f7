/*
 * store_pg_int.h: private to storage/, between store_pg.c (the
 * environment, transactions, held-back writes, point reads and writes
 * on PostgreSQL) and pg_cursor.c (cursors and their read-ahead): the
 * handles' structures and the calls each makes of the other. Nothing
 * but those two files includes it.
 */
#ifndef FBX_STORE_PG_INT_H
#define FBX_STORE_PG_INT_H

#include <libpq-fe.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pg_wait.h"
#include "store_pg.h"

/* rows a cursor reads ahead per statement: a seek asks for PG_SEEK (a
 * random seek should not carry a page back), each refill of a walk four
 * times more, up to PG_PAGE */
#define PG_PAGE 1024
#define PG_SEEK 16
/* point-read results kept alive per transaction (values point into
 * them: the store reads a value before its next read) */
#define PG_RING 16
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
	unsigned wait_ms; /* bound on each answer of the server (pg_wait.h) */
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

/* Handles: an LMDB transaction or cursor is handed out as LMDB's own
 * pointer (the LMDB path allocates nothing more and pays one bit test
 * per call); a PostgreSQL one as its pointer with bit 0 set. */
#define IS_PG(p) (((uintptr_t)(p)&1u) != 0)
#define UNTAG(T, p) ((T *)((uintptr_t)(p) & ~(uintptr_t)1))
#define TAG(T, p) ((T *)((uintptr_t)(p) | 1u))

static inline int
keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c;
	return al < bl ? -1 : al > bl;
}

/* ---- store_pg.c ----------------------------------------------------- */

/* fbxi_pg_latch - t broke with code: so does every ancestor that
 * shared the statement's fate (all of them, unless a savepoint protects
 * them and the connection still works). @return code. */
int fbxi_pg_latch(fbxi_kv_txn *t, int code);

/* fbxi_pg_run - one statement with binary parameters and results on
 * t's connection. @return the result (caller clears), or NULL with
 * *code set and t latched. */
PGresult *fbxi_pg_run(fbxi_kv_txn *t, const char *sql, int n,
    const char *const *vals, const int *lens, const int *fmts, int *code);

/* fbxi_pg_before_stmt - what every statement of t needs first: t
 * unbroken, a child's savepoint; with flush, every held-back write
 * sent. */
int fbxi_pg_before_stmt(fbxi_kv_txn *t, int flush);

/* fbxi_pg_arena_copy - n bytes of p in the root transaction's arena
 * (alive until the transaction ends); NULL without memory. */
void *fbxi_pg_arena_copy(fbxi_kv_txn *t, const void *p, size_t n);

/* fbxi_pg_wb_find - the held-back write of (dbi, k) in b, or NULL. */
struct wr_ent *fbxi_pg_wb_find(
    struct wbuf *b, unsigned dbi, const uint8_t *k, size_t kl);

/* fbxi_pg_get - a point read seen from t (its held-back writes
 * first). */
int fbxi_pg_get(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v);

/* fbxi_pg_put - hold back (dbi, k) = v; with MDB_RESERVE, v gets room
 * to fill; *kout (if not NULL) the key's copy in the arena. */
int fbxi_pg_put(fbxi_kv_txn *t, MDB_dbi dbi, MDB_val *k, MDB_val *v,
    unsigned flags, uint8_t **kout);

/* fbxi_pg_del - hold back the delete of (dbi, k); with check,
 * MDB_NOTFOUND when absent. */
int fbxi_pg_del(
    fbxi_kv_txn *t, MDB_dbi dbi, const uint8_t *k, size_t kl, int check);

/* ---- pg_cursor.c ---------------------------------------------------- */

/* fbxi_pg_notify - t wrote (dbi, k) = v (v NULL: deleted): keep what
 * t's cursors hold in step. The key and value live in the arena. */
int fbxi_pg_notify(fbxi_kv_txn *t, unsigned dbi, const uint8_t *k, size_t kl,
    const uint8_t *v, size_t vl);

/* fbxi_pg_invalidate_cursors - a child of t committed: what t's
 * cursors read ahead may be out of date. */
void fbxi_pg_invalidate_cursors(fbxi_kv_txn *t);

#endif
