/*
 * store_pg_fault_test.c: the faults of a database server at the store's
 * interface (storage/store_pg.c), on a PostgreSQL schema: readers on
 * other threads each see a whole turn or none; a connection killed in
 * the middle of a turn or before a read (the commit fails, nothing of it
 * is stored, the next transaction works on a new connection); a commit
 * failed by the test hook; a COMMIT whose answer is lost (committed,
 * rolled back, unknown, another server life, no memory for the answer,
 * nothing written); a reader's snapshot; a newer table layout; an
 * unreachable server and an unknown URL; a statement whose answer does
 * not come within its bound (storage/pg_wait.c: the connection ends,
 * PQexec's results otherwise). Run by tests/pg_cluster.sh
 * (FBX_TEST_PG_URL); fails without it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_wait.h"
#include "store_util.h"

/* kill_backends - end every other session of the database (the store's
 * writer and pooled readers), as a failover or an operator would. */
static int
kill_backends(const char *dir)
{
	return pg_exec_dir(dir,
	    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
	    "datname = current_database() AND pid <> pg_backend_pid() AND "
	    "backend_type = 'client backend'", 0, NULL, NULL, NULL);
}

static int
kv_is(fbx_store *st, const char *key, const char *want)
{
	char buf[64];
	size_t len = 0;
	fbx_txn *t = NULL;
	int rc;

	if (fbx_txn_begin(st, 0, &t) != FBX_OK)
		return -1;
	rc = fbx_store_kv_get(t, key, buf, sizeof(buf), &len);
	fbx_txn_abort(t);
	if (want == NULL)
		return rc == FBX_ENOT_FOUND;
	return rc == FBX_OK && len == strlen(want) &&
	    memcmp(buf, want, len) == 0;
}

/* readers on other threads while the writer writes (the web, fleet
 * and metrics threads of fuseboxd): each sees a whole turn or none */
struct reader_arg {
	fbx_store *st;
	int bad;
};

static void *
reader_main(void *p)
{
	struct reader_arg *a = p;

	for (int i = 0; i < 300; i++) {
		char x[8], y[8];
		size_t xl = 0, yl = 0;
		fbx_txn *t = NULL;
		int rc = fbx_txn_begin(a->st, 0, &t);
		if (rc != FBX_OK) {
			a->bad++;
			continue;
		}
		/* the writer sets both keys in each turn */
		if (fbx_store_kv_get(t, "thr/x", x, sizeof(x), &xl) != FBX_OK ||
		    fbx_store_kv_get(t, "thr/y", y, sizeof(y), &yl) != FBX_OK ||
		    xl != yl || memcmp(x, y, xl) != 0)
			a->bad++;
		fbx_txn_abort(t);
	}
	return NULL;
}

static void
test_pg_threads(fbx_store *st)
{
	struct reader_arg a[4];
	pthread_t th[4];
	fbx_txn *t = wtxn(st);
	char v[8];
	int started = 0, wbad = 0;

	CHECK_RC(fbx_store_kv_put(t, "thr/x", "0", 1), FBX_OK);
	CHECK_RC(fbx_store_kv_put(t, "thr/y", "0", 1), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	for (int i = 0; i < 4; i++) {
		a[i].st = st;
		a[i].bad = 0;
		if (pthread_create(&th[i], NULL, reader_main, &a[i]) == 0)
			started++;
	}
	for (int n = 1; n <= 200; n++) {
		snprintf(v, sizeof(v), "%d", n);
		if (fbx_txn_begin(st, 1, &t) != FBX_OK) {
			wbad++;
			continue;
		}
		if (fbx_store_kv_put(t, "thr/x", v, strlen(v)) != FBX_OK ||
		    fbx_store_kv_put(t, "thr/y", v, strlen(v)) != FBX_OK)
			wbad++;
		if (fbx_txn_commit(t) != FBX_OK)
			wbad++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		CHECK(a[i].bad == 0);
	}
	CHECK(started == 4 && wbad == 0);
}

static void
test_pg_faults(const char *dir)
{
	struct fbx_store_opts o = { 0 };
	struct fbx_command c;
	struct fbx_delivery d;
	struct fbx_store_stat ss;
	struct dlv_col col;
	fbx_store *st = open_store(dir, 0, 0), *st2 = NULL;
	fbx_txn *t, *r;
	char url[600];

	if (st == NULL)
		return;
	test_pg_threads(st);
	/* no map: reserve and grow always do */
	CHECK_RC(fbx_store_reserve(st, (size_t)1 << 41), FBX_OK);
	CHECK_RC(fbx_store_grow(st), FBX_OK);

	/* a committed turn, then one whose connection is killed in the
	 * middle: the commit fails, nothing of it is stored, and the next
	 * transaction works on a new connection */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/a", "1", 1), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	t = wtxn(st);
	mk_cmd(&c, "a", 5000);
	CHECK_RC(fbx_store_cmd_append(t, &c), FBX_OK);
	CHECK_RC(fbx_store_kv_put(t, "f/a", "2", 1), FBX_OK);
	memset(&col, 0, sizeof(col));
	/* a range read sends the writes held so far */
	CHECK_RC(fbx_store_dlv_scan(t, 0, UINT64_MAX, 0, dlv_collect, &col),
	    FBX_OK);
	CHECK(kill_backends(dir) >= 1);
	CHECK_RC(fbx_store_kv_put(t, "f/b", "1", 1), FBX_OK); /* held */
	CHECK_RC(fbx_txn_commit(t), FBX_EIO);
	CHECK(kv_is(st, "f/a", "1") == 1);
	CHECK(kv_is(st, "f/b", NULL) == 1);
	t = rtxn(st);
	CHECK_RC(fbx_store_cmd_get(t, c.id, &c), FBX_ENOT_FOUND);
	fbx_txn_abort(t);

	/* killed, and the transaction reads: that read fails, every call
	 * after it gives the same error, the commit too */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/c", "1", 1), FBX_OK);
	CHECK(kill_backends(dir) >= 1);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_dlv_scan(t, 0, UINT64_MAX, 0, dlv_collect, &col),
	    FBX_EIO);
	mk_dlv(&d, FBX_DLV_ID(9, 1), "dev-9", 100);
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_EIO);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(9, 1), &d), FBX_EIO);
	CHECK_RC(fbx_txn_commit(t), FBX_EIO);
	CHECK(kv_is(st, "f/c", NULL) == 1);

	/* the test hook fails a commit as a lost disk would */
	fbx_store_test_fail_commits = 1;
	fbx_store_test_fail_err = FBX_EDISK_FULL;
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/d", "1", 1), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_EDISK_FULL);
	fbx_store_test_fail_err = 0;
	CHECK(fbx_store_test_fail_commits == 0);
	CHECK(kv_is(st, "f/d", NULL) == 1);
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/d", "2", 1), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	CHECK(kv_is(st, "f/d", "2") == 1);

	/* a COMMIT whose answer is lost with its connection (a failover
	 * right after the server answered): the store asks the server on a
	 * new connection what became of the transaction. Committed: FBX_OK,
	 * with the writes held back until the commit */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/e", "1", 1), FBX_OK);
	mk_cmd(&c, "a", 5000);
	CHECK_RC(fbx_store_cmd_append(t, &c), FBX_OK);
	fbx_store_test_pg_lose_commit = 1;
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	CHECK(fbx_store_test_pg_lose_commit == 0);
	CHECK(kv_is(st, "f/e", "1") == 1);
	t = rtxn(st);
	CHECK_RC(fbx_store_cmd_get(t, c.id, &c), FBX_OK);
	fbx_txn_abort(t);
	/* rolled back (ROLLBACK sent in COMMIT's place, its answer lost):
	 * FBX_EIO, nothing stored */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/e", "2", 1), FBX_OK);
	fbx_store_test_pg_lose_commit = 2;
	CHECK_RC(fbx_txn_commit(t), FBX_EIO);
	CHECK(kv_is(st, "f/e", "1") == 1);
	/* committed, and the server cannot be asked: FBX_ETIMEOUT (the
	 * outcome is unknown to the writer; the store has it) */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/e", "3", 1), FBX_OK);
	fbx_store_test_pg_lose_commit = 3;
	CHECK_RC(fbx_txn_commit(t), FBX_ETIMEOUT);
	CHECK(kv_is(st, "f/e", "3") == 1);
	/* committed, and the server asked is not the one it ran on (a
	 * restart or a failover may give its id to another transaction):
	 * FBX_ETIMEOUT at once, its status is not read */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/e", "5", 1), FBX_OK);
	fbx_store_test_pg_lose_commit = 4;
	CHECK_RC(fbx_txn_commit(t), FBX_ETIMEOUT);
	CHECK(kv_is(st, "f/e", "5") == 1);
	/* committed, its answer lost on a live connection (no memory for
	 * it): asked about as well, FBX_OK */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/e", "7", 1), FBX_OK);
	fbx_store_test_pg_lose_commit = 6;
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	CHECK(kv_is(st, "f/e", "7") == 1);
	/* a transaction that wrote nothing has nothing in doubt: its lost
	 * answer is a plain EIO, asked about nowhere */
	t = wtxn(st);
	fbx_store_test_pg_lose_commit = 3;
	CHECK_RC(fbx_txn_commit(t), FBX_EIO);
	/* and the writer works again on a new connection */
	t = wtxn(st);
	CHECK_RC(fbx_store_kv_put(t, "f/e", "6", 1), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	CHECK(kv_is(st, "f/e", "6") == 1);

	/* a reader keeps its snapshot while the writer writes and commits */
	r = rtxn(st);
	{
		char buf[8];
		size_t len = 0;
		/* the first read takes the snapshot */
		CHECK_RC(fbx_store_kv_get(r, "f/d", buf, sizeof(buf), &len),
		    FBX_OK);
		t = wtxn(st);
		CHECK_RC(fbx_store_kv_put(t, "f/d", "3", 1), FBX_OK);
		CHECK_RC(fbx_txn_commit(t), FBX_OK);
		len = 0;
		CHECK_RC(fbx_store_kv_get(r, "f/d", buf, sizeof(buf), &len),
		    FBX_OK);
		CHECK(len == 1 && buf[0] == '2');
	}
	fbx_txn_abort(r);
	CHECK(kv_is(st, "f/d", "3") == 1);
	CHECK_RC(fbx_store_stat(st, &ss), FBX_OK);
	CHECK(ss.readers_used == 0 && ss.page_size == 0);
	fbx_store_close(st);

	/* a table layout newer than this build's is refused */
	CHECK(pg_exec_dir(dir, "UPDATE fbx_schema SET version = 99", 0, NULL,
	    NULL, NULL) == 1);
	pg_store_url(url, sizeof(url), dir);
	o.url = url;
	CHECK_RC(fbx_store_open(&o, &st2), FBX_ECORRUPT);
	CHECK(st2 == NULL);
	CHECK(pg_exec_dir(dir, "UPDATE fbx_schema SET version = 1", 0, NULL,
	    NULL, NULL) == 1);
	st = open_store(dir, 0, 0);
	fbx_store_close(st);

	/* unreachable: a clear error (the URL, password hidden), EIO */
	o.url = "postgresql://fbx:secret@/postgres?host=/nonexistent-fbx";
	CHECK_RC(fbx_store_open(&o, &st2), FBX_EIO);
	CHECK(st2 == NULL);
	/* not a URL this build knows */
	o.url = "mysql://x/y";
	o.path = dir;
	CHECK_RC(fbx_store_open(&o, &st2), FBX_EINVALID);
}

/* the bounded statement (pg_wait.c): PQexec's results, and past the
 * bound a connection ended, not a wait for the answer */
static void
test_pg_wait(void)
{
	const char *const v[1] = { "41" };
	const char *e = getenv("PG_TLS");
	int tls = e != NULL && strcmp(e, "1") == 0;
	PGconn *c = fbxi_pg_connect(pg_url, "test", 5000, NULL, NULL);
	PGresult *r;

	CHECK(c != NULL && PQstatus(c) == CONNECTION_OK);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return;
	}
	/* run over TLS (PG_TLS=1, tests/pg_cluster.sh): the waits below
	 * take pg_wait.c's slices, which this checks they do */
	CHECK(PQsslInUse(c) == (tls ? 1 : 0));
	/* several statements: the last one's result */
	r = fbxi_pg_exec1(c, 5000, "test", "SELECT 1; SELECT 2");
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	    strcmp(PQgetvalue(r, 0, 0), "2") == 0);
	PQclear(r);
	/* an error: its result, not what follows; the connection lives */
	r = fbxi_pg_exec1(c, 5000, "test", "SELECT 1/0; SELECT 3");
	CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
	CHECK(r != NULL && PQresultErrorField(r, PG_DIAG_SQLSTATE) != NULL &&
	    strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22012") == 0);
	PQclear(r);
	CHECK(PQstatus(c) == CONNECTION_OK);
	/* parameters, text results */
	r = fbxi_pg_exec(c, 5000, "test", "SELECT $1::int + 1", 1, v, NULL,
	    NULL, 0);
	CHECK(PQresultStatus(r) == PGRES_TUPLES_OK &&
	    strcmp(PQgetvalue(r, 0, 0), "42") == 0);
	PQclear(r);
	/* no answer within 1 s (the server sleeps 30): NULL, the
	 * connection ended, and so the next statement fails at once */
	r = fbxi_pg_exec1(c, 1000, "test", "SELECT pg_sleep(30)");
	CHECK(r == NULL);
	CHECK(PQstatus(c) == CONNECTION_BAD);
	PQclear(r);
	r = fbxi_pg_exec1(c, 5000, "test", "SELECT 1");
	CHECK(r == NULL || PQresultStatus(r) == PGRES_FATAL_ERROR);
	PQclear(r);
	PQfinish(c);
	/* answers that come about when the bound ends (some just before,
	 * some just after, some while it is being given up on): either
	 * the result on a live connection, or NULL on an ended one, never
	 * NULL on a connection that still looks usable (its callers would
	 * take that for no memory and use it again) */
	for (int i = 0; i < 24; i++) {
		char sql[64];
		c = fbxi_pg_connect(pg_url, "test", 5000, NULL, NULL);
		CHECK(c != NULL && PQstatus(c) == CONNECTION_OK);
		if (c == NULL || PQstatus(c) != CONNECTION_OK) {
			PQfinish(c);
			break;
		}
		CHECK(PQsslInUse(c) == (tls ? 1 : 0));
		snprintf(sql, sizeof(sql), "SELECT pg_sleep(0.%03d)", 288 + i);
		r = fbxi_pg_exec1(c, 300, "test", sql);
		if (r != NULL)
			CHECK(PQresultStatus(r) == PGRES_TUPLES_OK &&
			    PQstatus(c) == CONNECTION_OK);
		else
			CHECK(PQstatus(c) == CONNECTION_BAD);
		PQclear(r);
		PQfinish(c);
	}
}

/* a server that left a statement of this process without an answer is
 * not asked again for one bound: the store's transactions (STORAGE, as
 * any begin that fails) and a second open fail at once, another
 * server's do not; after the bound
 * they work again */
static void
test_pg_quiet(const char *dir)
{
	struct fbx_store_opts o = { 0 };
	fbx_store *st = NULL, *st2 = NULL;
	fbx_txn *t = NULL;
	char url[512];
	PGconn *c;
	PGresult *r;

	pg_store_url(url, sizeof(url), dir);
	o.path = dir;
	o.url = url;
	o.durability = FBX_DURABLE_FULL;
	o.pg_wait_ms = 1000;
	CHECK_RC(fbx_store_open(&o, &st), FBX_OK);
	if (st == NULL)
		return;
	CHECK_RC(fbx_txn_begin(st, 1, &t), FBX_OK);
	if (t != NULL)
		fbx_txn_abort(t);
	CHECK(!fbxi_pg_quiet(url, 1000, NULL));
	/* the URL has no password: the store's log name is the URL */
	c = fbxi_pg_connect(url, url, 5000, NULL, NULL);
	r = fbxi_pg_exec1(c, 1000, url, "SELECT pg_sleep(3)");
	CHECK(r == NULL && PQstatus(c) == CONNECTION_BAD);
	PQclear(r);
	PQfinish(c);
	CHECK(fbxi_pg_quiet(url, 1000, NULL));
	CHECK(!fbxi_pg_quiet("postgresql:///another", 1000, NULL));
	t = NULL;
	CHECK_RC(fbx_txn_begin(st, 1, &t), FBX_ESTORAGE);
	CHECK_RC(fbx_txn_begin(st, 0, &t), FBX_ESTORAGE);
	CHECK(fbx_store_open(&o, &st2) != FBX_OK);
	if (st2 != NULL)
		fbx_store_close(st2);
	/* one bound later: asked again */
	nanosleep(&(struct timespec) { 1, 100 * 1000 * 1000 }, NULL);
	CHECK(!fbxi_pg_quiet(url, 1000, NULL));
	t = NULL;
	CHECK_RC(fbx_txn_begin(st, 1, &t), FBX_OK);
	if (t != NULL) {
		CHECK_RC(fbx_store_kv_put(t, "q/a", "1", 1), FBX_OK);
		CHECK_RC(fbx_txn_commit(t), FBX_OK);
	}
	fbx_store_close(st);
}

int
main(void)
{
	char dir[128];

	if (st_begin("fbx_store_pg_fault_test") != 0)
		return 2;
	if (pg_url == NULL) {
		fprintf(stderr, "store_pg_fault_test: FBX_TEST_PG_URL is not "
		    "set (run it with tests/pg_cluster.sh run)\n");
		st_end();
		return 1;
	}
	subdir(dir, sizeof(dir), "pgfault");
	test_pg_faults(dir);
	test_pg_wait();
	subdir(dir, sizeof(dir), "pgquiet");
	test_pg_quiet(dir);
	return st_end();
}
