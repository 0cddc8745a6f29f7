/*
 * lease_test.c: organisation leases of nodes sharing one PostgreSQL
 * store (issue 13, storage/pg_lease.c), at the store's interface: who
 * owns what after ticks and claims, the fence that refuses a commit of a
 * node whose lease was taken, takeover of expired and released leases,
 * hand-back of idle organisations above the fair share, release at
 * close, one process per node name. Runs against FBX_TEST_PG_URL
 * (tests/pg_cluster.sh run); without it, checks that LMDB refuses a node
 * name and owns everything, and passes.
 */
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fbx_store.h"

static int passed, failed;

#define CHECK(c)                                                             \
	do {                                                                 \
		if (c) {                                                     \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__,        \
			    __LINE__, #c);                                   \
		}                                                            \
	} while (0)
#define CHECK_RC(x, want)                                                    \
	do {                                                                 \
		int rc_ = (x);                                               \
		if (rc_ == (want)) {                                         \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "FAIL %s:%d: %s = %s, want %s\n",    \
			    __FILE__, __LINE__, #x, fbx_errname(rc_),        \
			    fbx_errname(want));                              \
		}                                                            \
	} while (0)

static char url[1024];

static fbx_store *
node_open(const char *node, const char *ep, int *rc)
{
	struct fbx_store_opts o;
	fbx_store *st = NULL;

	memset(&o, 0, sizeof(o));
	o.path = "/nonexistent";
	o.url = url;
	o.durability = FBX_DURABLE_NOSYNC;
	o.node = node;
	o.advertise = ep;
	o.lease_ms = node != NULL ? 2000 : 0;
	*rc = fbx_store_open(&o, &st);
	return st;
}

/* sql - one statement on the test's schema; rows touched or -1 */
static int
sql(const char *q)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r;
	int n = -1;

	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexec(c, q);
		if (PQresultStatus(r) == PGRES_COMMAND_OK)
			n = atoi(PQcmdTuples(r));
		else if (PQresultStatus(r) == PGRES_TUPLES_OK)
			n = PQntuples(r);
		else
			fprintf(stderr, "sql: %s: %s", q, PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return n;
}

/* sql_int - the first column of the first row as a number, or -1 */
static int
sql_int(const char *q)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r;
	int n = -1;

	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexec(c, q);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			n = atoi(PQgetvalue(r, 0, 0));
		PQclear(r);
	}
	PQfinish(c);
	return n;
}

static int
tick(fbx_store *st, fbx_org_idle_fn idle, int *changed)
{
	int ch = 0, rc = fbx_store_lease_tick(st, idle, NULL, &ch);

	if (changed != NULL)
		*changed = ch;
	return rc;
}

static int
all_idle(void *arg, const char *org)
{
	(void)arg;
	(void)org;
	return 1;
}

/* put - one write transaction writing key; its commit's code */
static int
put(fbx_store *st, const char *key)
{
	fbx_txn *t = NULL;
	int rc = fbx_txn_begin(st, 1, &t);

	if (rc != FBX_OK)
		return rc;
	rc = fbx_store_kv_put(t, key, "1", 1);
	if (rc != FBX_OK) {
		fbx_txn_abort(t);
		return rc;
	}
	return fbx_txn_commit(t);
}

static int
has(fbx_store *st, const char *key)
{
	fbx_txn *t = NULL;
	char buf[8];
	size_t len = 0;
	int rc;

	if (fbx_txn_begin(st, 0, &t) != FBX_OK)
		return -1;
	rc = fbx_store_kv_get(t, key, buf, sizeof(buf), &len);
	fbx_txn_abort(t);
	return rc == FBX_OK;
}

/* claim - org claimed by st in a transaction of its own, committed */
static int
claim(fbx_store *st, const char *org, char *node, char *ep, size_t ecap,
    int *commit_rc)
{
	fbx_txn *t = NULL;
	int how = -1, rc;
	char n[FBX_ID_MAX + 1], e[256];

	if (node == NULL)
		node = n;
	if (ep == NULL) {
		ep = e;
		ecap = sizeof(e);
	}
	if (fbx_txn_begin(st, 1, &t) != FBX_OK)
		return -1;
	rc = fbx_store_lease_claim(t, org, &how, node, ep, ecap);
	if (rc != FBX_OK) {
		fbx_txn_abort(t);
		return -1;
	}
	/* a taken organisation is not served in the transaction that took
	 * it: its state is loaded first */
	if (how == FBX_LEASE_TAKEN)
		CHECK(!fbx_store_owns(st, org));
	if (how == FBX_LEASE_NEW)
		CHECK(fbx_store_owns(st, org));
	rc = fbx_txn_commit(t);
	if (commit_rc != NULL)
		*commit_rc = rc;
	return how;
}

int
main(void)
{
	const char *base = getenv("FBX_TEST_PG_URL");
	char node[FBX_ID_MAX + 1], ep[256];
	fbx_store *a, *b, *a2;
	int rc, ch, crc, node_ver_before = -1;

	{
		/* LMDB: no node names; everything is owned */
		struct fbx_store_opts o;
		char dir[] = "/tmp/fbx-lease-XXXXXX";
		fbx_store *st = NULL;
		memset(&o, 0, sizeof(o));
		CHECK(mkdtemp(dir) != NULL);
		o.path = dir;
		o.durability = FBX_DURABLE_NOSYNC;
		o.node = "n1";
		CHECK_RC(fbx_store_open(&o, &st), FBX_EINVALID);
		o.node = NULL;
		CHECK_RC(fbx_store_open(&o, &st), FBX_OK);
		CHECK(!fbx_store_cluster(st) && fbx_store_owns(st, "any"));
		CHECK(fbx_store_lease_left_ms(st) == INT64_MAX);
		CHECK_RC(tick(st, NULL, &ch), FBX_OK);
		CHECK(ch == 0);
		fbx_store_close(st);
		snprintf(ep, sizeof(ep), "rm -rf '%s'", dir);
		CHECK(system(ep) == 0);
	}
	if (base == NULL || base[0] == '\0') {
		printf("%d passed, %d failed (LMDB only: no FBX_TEST_PG_URL)\n",
		    passed, failed);
		return failed != 0;
	}
	snprintf(url, sizeof(url), "%s%soptions=-csearch_path%%3Dlease_%d",
	    base, strchr(base, '?') != NULL ? "&" : "?", (int)getpid());

	a = node_open("n1", "tcp://127.0.0.1:7001", &rc);
	CHECK_RC(rc, FBX_OK);
	b = node_open("n2", "tcp://127.0.0.1:7002", &rc);
	CHECK_RC(rc, FBX_OK);
	if (a == NULL || b == NULL)
		goto out;
	/* one process per node name */
	a2 = node_open("n1", "x", &rc);
	CHECK_RC(rc, FBX_EBUSY);
	CHECK(a2 == NULL);
	/* and no sole writer (no node name) beside nodes */
	a2 = node_open(NULL, NULL, &rc);
	CHECK_RC(rc, FBX_EBUSY);
	CHECK(a2 == NULL);
	CHECK(fbx_store_cluster(a) && fbx_store_cluster(b));
	/* the store's own set-up at open wrote before any tick */
	CHECK(!fbx_store_owns(a, "") && !fbx_store_owns(a, "acme"));
	/* nothing owned: nothing whose sends the lease must guard */
	CHECK(fbx_store_lease_left_ms(a) == INT64_MAX);

	/* the first tick takes the cluster-wide duties */
	CHECK_RC(tick(a, NULL, &ch), FBX_OK);
	CHECK(ch == 1 && fbx_store_owns(a, "") && fbx_store_owned(a) == 1);
	/* owned: the lease lasts at most a lease from before that tick (the
	 * engine holds a turn's deliveries back once under a quarter is
	 * left); a stalled node's guard runs out */
	CHECK(fbx_store_lease_left_ms(a) <= 2000);
	usleep(2100 * 1000); /* at least: the check below cannot race */
	{
		int64_t stale = fbx_store_lease_left_ms(a);
		CHECK(stale < 0);
		CHECK_RC(tick(a, NULL, &ch), FBX_OK);
		CHECK(fbx_store_lease_left_ms(a) > stale);
	}
	CHECK_RC(tick(b, NULL, &ch), FBX_OK);
	CHECK(ch == 0 && !fbx_store_owns(b, "") && fbx_store_owned(b) == 0);

	/* a new organisation is the first writer's; the other is told */
	CHECK(claim(a, "acme", NULL, NULL, 0, &crc) == FBX_LEASE_NEW);
	CHECK_RC(crc, FBX_OK);
	CHECK(fbx_store_owns(a, "acme"));
	CHECK(claim(a, "acme", NULL, NULL, 0, &crc) == FBX_LEASE_OWNED);
	CHECK(claim(b, "acme", node, ep, sizeof(ep), &crc) ==
	    FBX_LEASE_ELSEWHERE);
	CHECK(strcmp(node, "n1") == 0 &&
	    strcmp(ep, "tcp://127.0.0.1:7001") == 0);
	CHECK(!fbx_store_owns(b, "acme"));
	/* a claim whose transaction is aborted is not kept */
	{
		fbx_txn *t = NULL;
		int how;
		CHECK_RC(fbx_txn_begin(b, 1, &t), FBX_OK);
		CHECK_RC(fbx_store_lease_claim(t, "beta", &how, node, ep,
		             sizeof(ep)),
		    FBX_OK);
		CHECK(how == FBX_LEASE_NEW && fbx_store_owns(b, "beta"));
		fbx_txn_abort(t);
		CHECK(!fbx_store_owns(b, "beta"));
		CHECK(sql("SELECT 1 FROM fbx_lease WHERE org = 'beta'") == 0);
	}

	/* fencing: n1 stops renewing (its lease expires), n2 takes acme;
	 * n1's next commit is refused and nothing of it is stored */
	CHECK_RC(put(a, "f/before"), FBX_OK);
	CHECK(sql("UPDATE fbx_lease SET expires = now() - interval '1 hour' "
	          "WHERE org = 'acme'") == 1);
	CHECK_RC(tick(b, NULL, &ch), FBX_OK);
	CHECK(ch == 1 && fbx_store_owns(b, "acme"));
	CHECK(sql("SELECT 1 FROM fbx_lease WHERE org = 'acme' AND node = 'n2' "
	          "AND epoch = 2") == 1);
	CHECK_RC(put(a, "f/fenced"), FBX_EFENCED);
	CHECK(has(b, "f/fenced") == 0 && has(b, "f/before") == 1);
	/* a read is not fenced; the next tick tells n1 what it lost */
	CHECK(fbx_store_owns(a, "acme"));
	CHECK_RC(tick(a, NULL, &ch), FBX_OK);
	CHECK(ch == 1 && !fbx_store_owns(a, "acme") && fbx_store_owns(a, ""));
	CHECK_RC(put(a, "f/after"), FBX_OK);
	CHECK(has(a, "f/after") == 1);

	/* an expired lease claimed by a request: TAKEN, owned after the
	 * commit; the former owner is fenced */
	CHECK(sql("UPDATE fbx_lease SET expires = now() - interval '1 hour' "
	          "WHERE org = 'acme'") == 1);
	CHECK(claim(a, "acme", NULL, NULL, 0, &crc) == FBX_LEASE_TAKEN);
	CHECK_RC(crc, FBX_OK);
	CHECK(fbx_store_owns(a, "acme"));
	CHECK_RC(put(b, "f/b-fenced"), FBX_EFENCED);
	CHECK_RC(tick(b, NULL, &ch), FBX_OK);
	CHECK(ch == 1 && !fbx_store_owns(b, "acme"));
	CHECK_RC(put(b, "f/b-after"), FBX_OK);

	/* above the fair share, idle organisations are handed back and the
	 * other node picks them up: 8 leases, 2 live nodes, 4 each */
	{
		static const char *const orgs[] = { "o1", "o2", "o3", "o4",
			"o5", "o6" };
		for (size_t i = 0; i < 6; i++)
			CHECK(claim(a, orgs[i], NULL, NULL, 0, &crc) ==
			    FBX_LEASE_NEW);
		node_ver_before = sql_int(
		    "SELECT ver FROM fbx_node WHERE name = 'n1'");
		CHECK(fbx_store_owned(a) == 8);
		CHECK_RC(tick(a, NULL, &ch), FBX_OK); /* nothing idle */
		CHECK(ch == 0 && fbx_store_owned(a) == 8);
		int before = sql("SELECT 1 FROM fbx_node WHERE name = 'n1' AND "
		                 "ver = (SELECT ver FROM fbx_node WHERE name = "
		                 "'n1')");
		char q[160];
		CHECK(before == 1);
		CHECK_RC(tick(a, all_idle, &ch), FBX_OK);
		CHECK(ch == 1 && fbx_store_owned(a) == 4);
		/* handing back moves the node's own fence (a lost answer to
		 * that commit fences the next turn instead of letting it act
		 * for what it gave away); the node knows its new value */
		snprintf(q, sizeof(q),
		    "SELECT 1 FROM fbx_node WHERE name = 'n1' AND ver = %d",
		    node_ver_before + 1);
		CHECK(sql(q) == 1);
		CHECK_RC(put(a, "f/after-release"), FBX_OK);
		CHECK(fbx_store_owns(a, "")); /* the duties stay */
		CHECK_RC(tick(b, NULL, &ch), FBX_OK);
		CHECK(ch == 1 && fbx_store_owned(b) == 4);
		CHECK(sql("SELECT 1 FROM fbx_lease WHERE node = ''") == 0);
	}

	/* a clean close hands everything back at once */
	fbx_store_close(a);
	CHECK(sql("SELECT 1 FROM fbx_lease WHERE node = 'n1'") == 0);
	CHECK(sql("SELECT 1 FROM fbx_node WHERE name = 'n1'") == 0);
	CHECK_RC(tick(b, NULL, &ch), FBX_OK);
	CHECK(ch == 1 && fbx_store_owned(b) == 8 && fbx_store_owns(b, ""));
	/* the node name is free again */
	a = node_open("n1", "tcp://127.0.0.1:7001", &rc);
	CHECK_RC(rc, FBX_OK);
	fbx_store_close(a);
	fbx_store_close(b);
out:
	printf("%d passed, %d failed (PostgreSQL)\n", passed, failed);
	return failed != 0;
}
