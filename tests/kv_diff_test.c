/*
 * kv_diff_test.c: the PostgreSQL backend's LMDB semantics, checked
 * against LMDB itself. storage/store_pg.c and pg_cursor.c run the subset
 * of the LMDB API the store uses on PostgreSQL tables, with writes held
 * back in memory and cursors that read ahead; a walk that missed a key
 * its own transaction wrote, or saw one it deleted, would lose or repeat
 * a delivery. This test drives one LMDB environment and one PostgreSQL
 * schema with the same pseudo-random operations (fixed seeds) through
 * store_pg.h and compares every answer: puts (plain, NOOVERWRITE,
 * APPEND), deletes, point reads, cursors (FIRST, LAST, NEXT, SET,
 * SET_KEY, SET_RANGE, GET_CURRENT, put at the cursor and at
 * MDB_CURRENT, delete at the cursor) while the same transaction writes
 * around them, child transactions committed or aborted under an open
 * parent cursor, and root transactions committed or aborted; after each
 * root transaction both tables are read whole and compared.
 *
 * Only sequences the store's rules use are driven: a cursor whose last
 * answer was MDB_NOTFOUND, or whose key was deleted, is positioned again
 * (or moved with NEXT after a delete) before it is read, since LMDB
 * leaves such a cursor in states the store never relies on; a parent's
 * cursors are not used while its child is open (LMDB forbids it).
 *
 * Run by tests/pg_cluster.sh (FBX_TEST_PG_URL); fails without it.
 */
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"
#include "store_util.h"

enum { A, B }; /* A: LMDB, the reference; B: PostgreSQL */
#define NDB 2
#define NCUR 2
#define LOGN 24

static const char *const dbnames[NDB] = { "dlv", "cmd" };

struct side {
	fbxi_kv_env *env;
	MDB_dbi dbi[NDB];
	fbxi_kv_txn *root, *child;
	fbxi_kv_cursor *cur[2][NCUR]; /* [level][i] */
};

/* what the test knows of a cursor pair: positioned on a key that is
 * there (readable), or not */
struct curstate {
	int open, db, readable, positioned;
	uint8_t key[32];
	size_t kl;
	/* not readable (its key deleted): the table's write count then.
	 * NEXT is driven only while no write followed: LMDB leaves such a
	 * cursor on the next item's slot (C_DEL), so a key written between
	 * is skipped, and one written after the last is never reached;
	 * the store only ever moves on right after its delete */
	unsigned gen;
};

static struct side sd[2];
static struct curstate cs[2][NCUR];
static unsigned wgen[NDB]; /* writes to each table */
static uint64_t rng;
static char oplog[LOGN][96];
static unsigned nlog;
static int mismatches;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned
pick(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static void __attribute__((format(printf, 1, 2))) logop(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(oplog[nlog++ % LOGN], sizeof(oplog[0]), fmt, ap);
	va_end(ap);
}

static void
dump_log(void)
{
	unsigned from = nlog > LOGN ? nlog - LOGN : 0;

	fprintf(stderr, "  last operations (oldest first):\n");
	for (unsigned i = from; i < nlog; i++)
		fprintf(stderr, "    %s\n", oplog[i % LOGN]);
}

/* keys: a small space with shared prefixes and bytes 0x00 and 0xff,
 * so that order is bytewise and writes land near each other */
static size_t
mk_key(uint8_t *k)
{
	unsigned n = pick(48);
	size_t kl;

	switch (pick(4)) {
	case 0:
		kl = (size_t)snprintf((char *)k, 32, "k%u", n);
		break;
	case 1:
		kl = (size_t)snprintf((char *)k, 32, "k%u/%u", n % 8, n);
		break;
	case 2:
		k[0] = 'k';
		k[1] = (uint8_t)(n % 3 == 0 ? 0x00 : 0xff);
		k[2] = (uint8_t)n;
		kl = 3;
		break;
	default:
		kl = (size_t)snprintf((char *)k, 32, "k%02u", n);
		break;
	}
	return kl;
}

static size_t
mk_val(uint8_t *v, size_t cap)
{
	size_t n = 1 + pick(cap < 300 ? (unsigned)cap - 1 : 299);
	uint8_t b = (uint8_t)rnd();

	for (size_t i = 0; i < n; i++)
		v[i] = (uint8_t)(b + i * 7);
	return n;
}

static const char *
keytxt(const uint8_t *k, size_t kl)
{
	static char buf[2][80];
	static int which;
	char *o = buf[which ^= 1];
	size_t w = 0;

	for (size_t i = 0; i < kl && w + 5 < sizeof(buf[0]); i++)
		w += (size_t)snprintf(o + w, sizeof(buf[0]) - w,
		    k[i] >= 0x21 && k[i] < 0x7f ? "%c" : "\\x%02x", k[i]);
	o[w] = '\0';
	return o;
}

static const char *
codetxt(int rc)
{
	static char buf[2][24];
	static int which;

	if (rc == 0)
		return "OK";
	if (rc == MDB_NOTFOUND)
		return "NOTFOUND";
	if (rc == MDB_KEYEXIST)
		return "KEYEXIST";
	snprintf(buf[which ^= 1], sizeof(buf[0]), "%d", rc);
	return buf[which];
}

/* same - both sides answered alike: codes, and on success the key (if
 * kA) and the value (if vA). */
static int
same(const char *what, int ra, int rb, const MDB_val *kA, const MDB_val *kB,
    const MDB_val *vA, const MDB_val *vB)
{
	int ok = ra == rb;

	if (ok && ra == 0 && kA != NULL)
		ok = kA->mv_size == kB->mv_size
		    && memcmp(kA->mv_data, kB->mv_data, kA->mv_size) == 0;
	if (ok && ra == 0 && vA != NULL)
		ok = vA->mv_size == vB->mv_size
		    && memcmp(vA->mv_data, vB->mv_data, vA->mv_size) == 0;
	CHECK(ok);
	if (!ok) {
		mismatches++;
		fprintf(stderr, "  %s: LMDB %s", what, codetxt(ra));
		if (ra == 0 && kA != NULL)
			fprintf(stderr, " key %s (%zu-byte value)",
			    keytxt(kA->mv_data, kA->mv_size),
			    vA ? vA->mv_size : 0);
		fprintf(stderr, ", PostgreSQL %s", codetxt(rb));
		if (rb == 0 && kB != NULL)
			fprintf(stderr, " key %s (%zu-byte value)",
			    keytxt(kB->mv_data, kB->mv_size),
			    vB ? vB->mv_size : 0);
		fprintf(stderr, "\n");
		dump_log();
	}
	return ok;
}

static fbxi_kv_txn *
top(struct side *s)
{
	return s->child != NULL ? s->child : s->root;
}

static int
level(void)
{
	return sd[A].child != NULL;
}

/* gone - the key of cursor c was deleted: not readable, and the
 * table's write count then */
static void
gone(struct curstate *c)
{
	c->readable = 0;
	c->gen = wgen[c->db];
}

/* on_key - gone() for every readable cursor of table db on key k */
static void
on_key(int db, const uint8_t *k, size_t kl)
{
	for (int l = 0; l < 2; l++)
		for (int i = 0; i < NCUR; i++)
			if (cs[l][i].open && cs[l][i].db == db
			    && cs[l][i].positioned && cs[l][i].readable
			    && cs[l][i].kl == kl
			    && memcmp(cs[l][i].key, k, kl) == 0)
				gone(&cs[l][i]);
}

static void
op_put(void)
{
	static const unsigned fl[]
	    = { 0, 0, 0, 0, MDB_NOOVERWRITE, MDB_APPEND };
	uint8_t k[32], v[300];
	unsigned flags = fl[pick(6)];
	int db = (int)pick(NDB), rc[2];
	MDB_val kk = { mk_key(k), k }, vv, v2[2];

	vv.mv_size = mk_val(v, sizeof(v));
	vv.mv_data = v;
	if (flags == MDB_APPEND && pick(2)) {
		/* above every key of the space, as an append normally is */
		k[0] = 'z';
		kk.mv_size = 1 + pick(4);
		memset(k + 1, 'z', kk.mv_size - 1);
	}
	logop("put %s %s flags %#x (%zu bytes)", dbnames[db],
	    keytxt(k, kk.mv_size), flags, vv.mv_size);
	for (int s = A; s <= B; s++) {
		MDB_val k2 = kk;
		v2[s] = vv;
		rc[s] = fbxi_kv_put(
		    top(&sd[s]), sd[s].dbi[db], &k2, &v2[s], flags);
	}
	/* KEYEXIST: the value there comes back (NOOVERWRITE) */
	if (same("put", rc[A], rc[B], NULL, NULL, NULL, NULL)
	    && rc[A] == MDB_KEYEXIST)
		same("put KEYEXIST value", 0, 0, NULL, NULL, &v2[A], &v2[B]);
	wgen[db]++;
	/* a cursor on the key now reads the new value: still readable */
}

static void
op_del(void)
{
	uint8_t k[32];
	int db = (int)pick(NDB), rc[2];
	MDB_val kk = { mk_key(k), k };

	logop("del %s %s", dbnames[db], keytxt(k, kk.mv_size));
	for (int s = A; s <= B; s++) {
		MDB_val k2 = kk;
		rc[s] = fbxi_kv_del(top(&sd[s]), sd[s].dbi[db], &k2, NULL);
	}
	same("del", rc[A], rc[B], NULL, NULL, NULL, NULL);
	if (rc[A] == 0)
		on_key(db, k, kk.mv_size); /* its cursors: not readable */
	wgen[db]++;
}

static void
op_get(void)
{
	uint8_t k[32];
	int db = (int)pick(NDB), rc[2];
	MDB_val kk = { mk_key(k), k }, v[2];

	logop("get %s %s", dbnames[db], keytxt(k, kk.mv_size));
	for (int s = A; s <= B; s++) {
		MDB_val k2 = kk;
		rc[s] = fbxi_kv_get(top(&sd[s]), sd[s].dbi[db], &k2, &v[s]);
	}
	same("get", rc[A], rc[B], NULL, NULL, &v[A], &v[B]);
}

static void
cur_close(int l, int i)
{
	if (!cs[l][i].open)
		return;
	for (int s = A; s <= B; s++) {
		fbxi_kv_cursor_close(sd[s].cur[l][i]);
		sd[s].cur[l][i] = NULL;
	}
	cs[l][i].open = 0;
}

/* cur_get - one cursor operation on both sides, compared; the cursor's
 * state follows LMDB's answer */
static void
cur_get(int l, int i, MDB_cursor_op op, const char *name)
{
	struct curstate *c = &cs[l][i];
	uint8_t k[32];
	MDB_val kk = { 0, k }, rk[2], rv[2];
	int rc[2];

	if (op == MDB_SET || op == MDB_SET_KEY || op == MDB_SET_RANGE)
		kk.mv_size = mk_key(k);
	logop("cursor %d.%d %s %s %s", l, i, dbnames[c->db], name,
	    kk.mv_size ? keytxt(k, kk.mv_size) : "");
	for (int s = A; s <= B; s++) {
		rk[s] = kk;
		memset(&rv[s], 0, sizeof(rv[s]));
		rc[s]
		    = fbxi_kv_cursor_get(sd[s].cur[l][i], &rk[s], &rv[s], op);
	}
	/* MDB_SET leaves the key as given; the others return the key */
	if (!same(name, rc[A], rc[B], op == MDB_SET ? NULL : &rk[A],
	        op == MDB_SET ? NULL : &rk[B], &rv[A], &rv[B])) {
		fprintf(stderr, "  cursor was on %s; table in the txn:",
		    keytxt(c->key, c->kl));
		for (int s = A; s <= B; s++) {
			fbxi_kv_cursor *x = NULL;
			MDB_val xk, xv;
			MDB_cursor_op o2 = MDB_FIRST;
			fprintf(stderr, "\n   %s:", s == A ? "LMDB" : "PG");
			fbxi_kv_cursor_open(top(&sd[s]), sd[s].dbi[c->db], &x);
			while (fbxi_kv_cursor_get(x, &xk, &xv, o2) == 0) {
				fprintf(stderr, " %s",
				    keytxt(xk.mv_data, xk.mv_size));
				o2 = MDB_NEXT;
			}
			fbxi_kv_cursor_close(x);
		}
		fprintf(stderr, "\n");
	}
	if (rc[A] == 0) {
		const MDB_val *key = op == MDB_SET ? &kk : &rk[A];
		c->positioned = c->readable = 1;
		c->kl = key->mv_size < sizeof(c->key) ? key->mv_size : 0;
		memcpy(c->key, key->mv_data, c->kl);
	} else {
		c->positioned = c->readable = 0;
	}
}

static void
op_cursor(void)
{
	int l = level(), i = (int)pick(NCUR);
	struct curstate *c = &cs[l][i];
	unsigned what;

	if (!c->open) {
		int rc[2];
		c->db = (int)pick(NDB);
		for (int s = A; s <= B; s++)
			rc[s] = fbxi_kv_cursor_open(
			    top(&sd[s]), sd[s].dbi[c->db], &sd[s].cur[l][i]);
		CHECK(rc[A] == 0 && rc[B] == 0);
		if (rc[A] != 0 || rc[B] != 0) {
			for (int s = A; s <= B; s++)
				if (rc[s] == 0)
					fbxi_kv_cursor_close(sd[s].cur[l][i]);
			return;
		}
		c->open = 1;
		c->positioned = c->readable = 0;
	}
	what = pick(100);
	if (!c->positioned || (!c->readable && what >= 40)) {
		/* position it first (NEXT after a delete moves on) */
		static const MDB_cursor_op pos[]
		    = { MDB_FIRST, MDB_LAST, MDB_SET, MDB_SET_KEY,
			      MDB_SET_RANGE, MDB_SET_RANGE, MDB_SET_RANGE };
		static const char *const pname[] = { "FIRST", "LAST", "SET",
			"SET_KEY", "SET_RANGE", "SET_RANGE", "SET_RANGE" };
		unsigned p = pick(7);
		if (c->positioned && !c->readable && pick(2)
		    && c->gen == wgen[c->db]) {
			cur_get(l, i, MDB_NEXT, "NEXT");
			return;
		}
		cur_get(l, i, pos[p], pname[p]);
		return;
	}
	if (what < 40 && !c->readable && c->gen != wgen[c->db]) {
		cur_get(l, i, MDB_SET_RANGE, "SET_RANGE");
	} else if (what < 40) {
		for (unsigned n = 1 + pick(6); n > 0 && c->positioned; n--)
			cur_get(l, i, MDB_NEXT, "NEXT");
	} else if (what < 55) {
		cur_get(l, i, MDB_GET_CURRENT, "GET_CURRENT");
	} else if (what < 65) {
		cur_get(l, i, MDB_SET_RANGE, "SET_RANGE");
	} else if (what < 75) {
		/* rewrite the current value (MDB_CURRENT; with NOOVERWRITE
		 * beside it LMDB refuses: the key is there) */
		uint8_t v[300];
		MDB_val vv = { mk_val(v, sizeof(v)), v }, v2[2];
		unsigned fl = MDB_CURRENT | (pick(2) ? MDB_NOOVERWRITE : 0);
		int rc[2];
		logop("cursor %d.%d %s put flags %#x (%zu bytes)", l, i,
		    dbnames[c->db], fl, vv.mv_size);
		for (int s = A; s <= B; s++) {
			MDB_val k2 = { c->kl, c->key };
			v2[s] = vv;
			rc[s] = fbxi_kv_cursor_put(
			    sd[s].cur[l][i], &k2, &v2[s], fl);
		}
		if (same("cursor put CURRENT", rc[A], rc[B], NULL, NULL, NULL,
		        NULL)
		    && rc[A] == MDB_KEYEXIST)
			same("cursor put CURRENT KEYEXIST value", 0, 0, NULL,
			    NULL, &v2[A], &v2[B]);
		wgen[c->db]++;
	} else if (what < 85) {
		/* put a key through the cursor: it moves onto it (with
		 * NOOVERWRITE onto the key there, its value returned) */
		uint8_t k[32], v[300];
		MDB_val kk = { mk_key(k), k },
		        vv = { mk_val(v, sizeof(v)), v }, v2[2];
		unsigned fl = pick(2) ? MDB_NOOVERWRITE : 0;
		int rc[2];
		logop("cursor %d.%d %s put %s flags %#x (%zu bytes)", l, i,
		    dbnames[c->db], keytxt(k, kk.mv_size), fl, vv.mv_size);
		for (int s = A; s <= B; s++) {
			MDB_val k2 = kk;
			v2[s] = vv;
			rc[s] = fbxi_kv_cursor_put(
			    sd[s].cur[l][i], &k2, &v2[s], fl);
		}
		if (same("cursor put", rc[A], rc[B], NULL, NULL, NULL, NULL)
		    && rc[A] == MDB_KEYEXIST)
			same("cursor put KEYEXIST value", 0, 0, NULL, NULL,
			    &v2[A], &v2[B]);
		wgen[c->db]++;
		if (rc[A] == 0 || rc[A] == MDB_KEYEXIST) {
			c->kl = kk.mv_size;
			memcpy(c->key, k, kk.mv_size);
		}
	} else {
		int rc[2];
		logop("cursor %d.%d %s del", l, i, dbnames[c->db]);
		for (int s = A; s <= B; s++)
			rc[s] = fbxi_kv_cursor_del(sd[s].cur[l][i], 0);
		same("cursor del", rc[A], rc[B], NULL, NULL, NULL, NULL);
		on_key(c->db, c->key, c->kl); /* this one and the others */
		wgen[c->db]++;
	}
}

static void
child_begin(void)
{
	int rc[2];

	logop("child begin");
	for (int s = A; s <= B; s++)
		rc[s] = fbxi_kv_txn_begin(
		    sd[s].env, sd[s].root, 0, &sd[s].child);
	CHECK(rc[A] == 0 && rc[B] == 0);
}

static void
child_end(int commit)
{
	int rc[2];

	for (int i = 0; i < NCUR; i++)
		cur_close(1, i);
	logop("child %s", commit ? "commit" : "abort");
	for (int s = A; s <= B; s++) {
		if (commit) {
			rc[s] = fbxi_kv_txn_commit(sd[s].child);
		} else {
			fbxi_kv_txn_abort(sd[s].child);
			rc[s] = 0;
		}
		sd[s].child = NULL;
	}
	same("child commit", rc[A], rc[B], NULL, NULL, NULL, NULL);
	/* what the child changed under the parent's cursors: a parent
	 * cursor reads its key again (GET_CURRENT) or is positioned again
	 * if the key may be gone */
	for (int i = 0; i < NCUR; i++)
		if (commit && cs[0][i].open && cs[0][i].positioned
		    && cs[0][i].readable)
			gone(&cs[0][i]);
}

/* compare_all - both tables read whole in a read transaction */
static void
compare_all(void)
{
	for (int db = 0; db < NDB; db++) {
		fbxi_kv_txn *t[2] = { NULL, NULL };
		fbxi_kv_cursor *c[2] = { NULL, NULL };
		int rc[2], n = 0;

		for (int s = A; s <= B; s++) {
			rc[s] = fbxi_kv_txn_begin(
			    sd[s].env, NULL, MDB_RDONLY, &t[s]);
			if (rc[s] == 0)
				rc[s] = fbxi_kv_cursor_open(
				    t[s], sd[s].dbi[db], &c[s]);
		}
		CHECK(rc[A] == 0 && rc[B] == 0);
		if (rc[A] == 0 && rc[B] == 0) {
			MDB_cursor_op op = MDB_FIRST;
			for (;;) {
				MDB_val k[2], v[2];
				for (int s = A; s <= B; s++)
					rc[s] = fbxi_kv_cursor_get(
					    c[s], &k[s], &v[s], op);
				if (!same("whole table", rc[A], rc[B], &k[A],
				        &k[B], &v[A], &v[B])
				    || rc[A] != 0)
					break;
				op = MDB_NEXT;
				n++;
			}
		}
		logop("compared %s: %d keys", dbnames[db], n);
		for (int s = A; s <= B; s++) {
			fbxi_kv_cursor_close(c[s]);
			fbxi_kv_txn_abort(t[s]);
		}
	}
}

static void
round_run(unsigned nops)
{
	int rc[2];

	for (int s = A; s <= B; s++)
		rc[s] = fbxi_kv_txn_begin(sd[s].env, NULL, 0, &sd[s].root);
	CHECK(rc[A] == 0 && rc[B] == 0);
	if (rc[A] != 0 || rc[B] != 0)
		exit(st_end());
	for (unsigned n = 0; n < nops && mismatches < 3; n++) {
		unsigned w = pick(100);
		if (w < 30)
			op_put();
		else if (w < 40)
			op_del();
		else if (w < 48)
			op_get();
		else if (w < 94)
			op_cursor();
		else if (w < 97 && sd[A].child == NULL)
			child_begin();
		else if (sd[A].child != NULL)
			child_end(pick(3) != 0);
	}
	if (sd[A].child != NULL)
		child_end(1);
	for (int i = 0; i < NCUR; i++)
		cur_close(0, i);
	if (pick(5) != 0) {
		logop("commit");
		for (int s = A; s <= B; s++)
			rc[s] = fbxi_kv_txn_commit(sd[s].root);
		same("commit", rc[A], rc[B], NULL, NULL, NULL, NULL);
	} else {
		logop("abort");
		for (int s = A; s <= B; s++)
			fbxi_kv_txn_abort(sd[s].root);
	}
	for (int s = A; s <= B; s++)
		sd[s].root = NULL;
	compare_all();
}

static int
env_open(struct side *s, int pg)
{
	char dir[128], url[512];
	fbxi_kv_txn *t = NULL;
	int rc;

	subdir(dir, sizeof(dir), pg ? "kvpg" : "kvlmdb");
	if (pg) {
		pg_store_url(url, sizeof(url), dir);
		rc = fbxi_kv_env_create_pg(&s->env, url, FBX_DURABLE_NOSYNC, 0);
	} else {
		rc = fbxi_kv_env_create(&s->env);
		if (rc == 0)
			rc = fbxi_kv_env_set_maxdbs(s->env, 8);
		if (rc == 0)
			rc = fbxi_kv_env_set_mapsize(s->env, 256u << 20);
	}
	if (rc == 0)
		rc = fbxi_kv_env_open(
		    s->env, dir, MDB_NOSYNC | MDB_NOSUBDIR, 0600);
	if (rc == 0)
		rc = fbxi_kv_txn_begin(s->env, NULL, 0, &t);
	for (int db = 0; db < NDB && rc == 0; db++)
		rc = fbxi_kv_dbi_open(t, dbnames[db], MDB_CREATE, &s->dbi[db]);
	if (rc == 0)
		rc = fbxi_kv_txn_commit(t);
	else if (t != NULL)
		fbxi_kv_txn_abort(t);
	if (rc != 0)
		fprintf(stderr, "kv_diff_test: cannot open the %s side: %d\n",
		    pg ? "PostgreSQL" : "LMDB", rc);
	return rc;
}

/* argument: the number of rounds (60; each its own seed) */
int
main(int argc, char **argv)
{
	unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 60;

	if (st_begin("fbx-kvdiff") != 0)
		return 1;
	if (pg_url == NULL) {
		fprintf(stderr,
		    "kv_diff_test: FBX_TEST_PG_URL is not set (run through "
		    "tests/pg_cluster.sh)\n");
		return 1;
	}
	CHECK(env_open(&sd[A], 0) == 0);
	CHECK(env_open(&sd[B], 1) == 0);
	if (failed != 0)
		return st_end();
	for (unsigned r = 0; r < rounds && mismatches < 3; r++) {
		rng = 0x9e3779b97f4a7c15ull * (r + 1);
		logop("round %u", r);
		round_run(r < 10 ? 40 : 200 + pick(200));
	}
	for (int s = A; s <= B; s++)
		fbxi_kv_env_close(sd[s].env);
	return st_end();
}
