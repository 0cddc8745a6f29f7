/*
 * txn_child_test.c: the store's nested write transactions, on which the
 * engine's per-request isolation rests (a request's own error undoes only
 * its writes), and the end of the command id space (delivery ids are
 * command << 24 | index, so a command id past 2^40 - 1 would collide).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <lmdb.h>

#include "fbx_store.h"

static int passed, failed;

/* FBX_TEST_PG_URL set (tests/pg_cluster.sh run): the store is a
 * PostgreSQL schema of that database instead of an LMDB environment */
static const char *pg_url;
static char pg_store[512];

#define CHECK(c)                                                             \
	do {                                                                 \
		if (c) {                                                     \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__,       \
			    __LINE__, #c);                                   \
		}                                                            \
	} while (0)

static int
kv_has(fbx_txn *t, const char *key)
{
	char buf[64];
	size_t len = 0;

	return fbx_store_kv_get(t, key, buf, sizeof(buf), &len) == FBX_OK;
}

static void
mk_cmd(struct fbx_command *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->org, sizeof(c->org), "acme");
	snprintf(c->actor, sizeof(c->actor), "alice");
	c->type = FBX_CMD_LOCK;
	c->origin = FBX_ORIGIN_OPERATOR;
	c->target_kind = FBX_TARGET_ORG;
	c->state = FBX_C_EXPANDING;
	c->ttl_s = 60;
	c->created_ms = 1000;
	c->expires_ms = 61000;
}

/* children - commit folds into the parent, abort undoes exactly the
 * child's writes, also after the child broke on an error. */
static void
children(fbx_store *st)
{
	fbx_txn *p = NULL, *c = NULL, *r = NULL;

	CHECK(fbx_txn_begin(st, 1, &p) == FBX_OK);
	CHECK(fbx_store_kv_put(p, "t/parent", "1", 1) == FBX_OK);

	/* a child that commits */
	CHECK(fbx_txn_begin_child(p, &c) == FBX_OK);
	CHECK(kv_has(c, "t/parent"));
	CHECK(fbx_store_kv_put(c, "t/kept", "1", 1) == FBX_OK);
	CHECK(fbx_txn_commit(c) == FBX_OK);
	CHECK(kv_has(p, "t/kept"));

	/* a child that aborts */
	CHECK(fbx_txn_begin_child(p, &c) == FBX_OK);
	CHECK(fbx_store_kv_put(c, "t/undone", "1", 1) == FBX_OK);
	CHECK(fbx_store_kv_del(c, "t/parent") == FBX_OK);
	fbx_txn_abort(c);
	CHECK(!kv_has(p, "t/undone"));
	CHECK(kv_has(p, "t/parent"));

	/* a child broken by a bad write: the parent is still usable */
	CHECK(fbx_txn_begin_child(p, &c) == FBX_OK);
	{
		char big[FBX_KV_VAL_MAX + 1];
		memset(big, 'x', sizeof(big));
		CHECK(fbx_store_kv_put(c, "t/big", big, sizeof(big)) != FBX_OK);
	}
	CHECK(fbx_store_kv_put(c, "t/after-error", "1", 1) == FBX_OK ||
	    1); /* may or may not be refused; it is undone either way */
	fbx_txn_abort(c);
	CHECK(!kv_has(p, "t/after-error"));
	CHECK(fbx_store_kv_put(p, "t/parent2", "1", 1) == FBX_OK);

	/* no grandchildren, no child of a read transaction */
	CHECK(fbx_txn_begin_child(p, &c) == FBX_OK);
	{
		fbx_txn *g = NULL;
		CHECK(fbx_txn_begin_child(c, &g) == FBX_EINVALID);
	}
	fbx_txn_abort(c);
	CHECK(fbx_txn_commit(p) == FBX_OK);

	CHECK(fbx_txn_begin(st, 0, &r) == FBX_OK);
	CHECK(kv_has(r, "t/parent"));
	CHECK(kv_has(r, "t/kept"));
	CHECK(kv_has(r, "t/parent2"));
	CHECK(!kv_has(r, "t/undone"));
	CHECK(!kv_has(r, "t/after-error"));
	{
		fbx_txn *g = NULL;
		CHECK(fbx_txn_begin_child(r, &g) == FBX_EINVALID);
	}
	fbx_txn_abort(r);

	/* deliveries appended in a child are seen by the parent's next
	 * append (the store caches the last delivery key per transaction) */
	CHECK(fbx_txn_begin(st, 1, &p) == FBX_OK);
	{
		struct fbx_command cmd;
		struct fbx_delivery d;
		mk_cmd(&cmd);
		CHECK(fbx_store_cmd_append(p, &cmd) == FBX_OK);
		memset(&d, 0, sizeof(d));
		d.state = FBX_D_QUEUED;
		snprintf(d.device, sizeof(d.device), "dev-0");
		d.id = FBX_DLV_ID(cmd.id, 0);
		CHECK(fbx_store_dlv_put(p, &d) == FBX_OK);
		CHECK(fbx_txn_begin_child(p, &c) == FBX_OK);
		d.id = FBX_DLV_ID(cmd.id, 5);
		CHECK(fbx_store_dlv_put(c, &d) == FBX_OK);
		CHECK(fbx_txn_commit(c) == FBX_OK);
		d.id = FBX_DLV_ID(cmd.id, 2);
		CHECK(fbx_store_dlv_put(p, &d) == FBX_OK);
		d.id = FBX_DLV_ID(cmd.id, 6);
		CHECK(fbx_store_dlv_put(p, &d) == FBX_OK);
		CHECK(fbx_store_dlv_get(p, FBX_DLV_ID(cmd.id, 5), &d) == FBX_OK);
		CHECK(fbx_store_dlv_get(p, FBX_DLV_ID(cmd.id, 2), &d) == FBX_OK);
	}
	CHECK(fbx_txn_commit(p) == FBX_OK);
}

/* id_space - with the last command at FBX_CMD_ID_MAX, the next append is
 * refused with TOO_MANY and the transaction stays usable. */
static void
id_space(const char *dir)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k, v;
	uint8_t key[8], val[1] = { 0 };
	uint64_t id = FBX_CMD_ID_MAX;
	fbx_store *st = NULL;
	struct fbx_store_opts so;
	struct fbx_command cmd;
	fbx_txn *t = NULL;

	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(id >> (56 - 8 * i));
	if (pg_url != NULL) {
		/* the same record, written in the table of the command
		 * journal */
		PGconn *pc = PQconnectdb(pg_store);
		const char *vals[2] = { (const char *)key,
			(const char *)val };
		int lens[2] = { 8, 1 }, fmts[2] = { 1, 1 };
		PGresult *r = PQexecParams(pc, "INSERT INTO fbx_cmd (k, v) "
		    "VALUES ($1, $2)", 2, NULL, vals, lens, fmts, 0);
		CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
		PQclear(r);
		PQfinish(pc);
		goto opened;
	}
	CHECK(mdb_env_create(&env) == 0);
	CHECK(mdb_env_set_maxdbs(env, 64) == 0);
	CHECK(mdb_env_open(env, dir, 0, 0600) == 0);
	CHECK(mdb_txn_begin(env, NULL, 0, &txn) == 0);
	CHECK(mdb_dbi_open(txn, "cmd", 0, &dbi) == 0);
	k.mv_size = 8;
	k.mv_data = key;
	v.mv_size = sizeof(val);
	v.mv_data = val;
	CHECK(mdb_put(txn, dbi, &k, &v, 0) == 0);
	CHECK(mdb_txn_commit(txn) == 0);
	mdb_env_close(env);
opened:
	memset(&so, 0, sizeof(so));
	so.path = dir;
	so.url = pg_url != NULL ? pg_store : NULL;
	CHECK(fbx_store_open(&so, &st) == FBX_OK);
	if (st == NULL)
		return;
	CHECK(fbx_txn_begin(st, 1, &t) == FBX_OK);
	mk_cmd(&cmd);
	CHECK(fbx_store_cmd_append(t, &cmd) == FBX_ETOO_MANY);
	CHECK(fbx_store_kv_put(t, "t/still-usable", "1", 1) == FBX_OK);
	CHECK(fbx_txn_commit(t) == FBX_OK);
	fbx_store_close(st);
}

int
main(void)
{
	char dir[] = "/tmp/fbx-txnchild-XXXXXX", cmd[128];
	struct fbx_store_opts so;
	fbx_store *st = NULL;

	if (mkdtemp(dir) == NULL)
		return 1;
	pg_url = getenv("FBX_TEST_PG_URL");
	if (pg_url != NULL && pg_url[0] == '\0')
		pg_url = NULL;
	if (pg_url != NULL)
		snprintf(pg_store, sizeof(pg_store),
		    "%s%soptions=-csearch_path%%3Dtxnchild_%s", pg_url,
		    strchr(pg_url, '?') != NULL ? "&" : "?",
		    strrchr(dir, '-') + 1);
	memset(&so, 0, sizeof(so));
	so.path = dir;
	so.url = pg_url != NULL ? pg_store : NULL;
	CHECK(fbx_store_open(&so, &st) == FBX_OK);
	if (st != NULL) {
		children(st);
		fbx_store_close(st);
		id_space(dir);
	}
	printf("%d passed, %d failed%s\n", passed, failed,
	    pg_url != NULL ? " (PostgreSQL)" : "");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return failed == 0 ? 0 : 1;
}
