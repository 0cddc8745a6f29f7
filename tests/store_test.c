/*
 * store_test.c: unit tests of storage/ (fbx_store.h) against a real LMDB
 * environment in a mkdtemp directory: command journal and its indexes,
 * deliveries and their history, the offline index, the device registry,
 * map growth, persistence, corrupt records and reader slots. With
 * FBX_STORE_BIG=1 it also prints (never asserts) insert and transition
 * rates for one million deliveries. With FBX_TEST_PG_URL set
 * (tests/pg_cluster.sh run) every store is a PostgreSQL schema instead:
 * what only LMDB has (map, files, reader slots) is checked on LMDB only,
 * one writing process a store on PostgreSQL only; the faults of a
 * database server are store_pg_fault_test.c's.
 */
#define _XOPEN_SOURCE 700
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fbx_store.h"
#include "store_util.h"

#define FBXS_MASK(s) (1u << (s))

/* ---- commands --------------------------------------------------------- */

struct cmd_col {
	uint64_t ids[64];
	int n;
	int loaded_payload;
};

static int
cmd_collect(void *arg, const struct fbx_command *c)
{
	struct cmd_col *col = arg;

	if (col->n < 64)
		col->ids[col->n++] = c->id;
	if (c->payload != NULL && c->ndev_ids > 0 && c->dev_ids != NULL)
		col->loaded_payload++;
	return 0;
}

static void
test_commands(fbx_store *st)
{
	struct fbx_command c, g, c2;
	struct cmd_col col;
	uint64_t id1, id;
	fbx_txn *t;

	mk_cmd(&c, "a", 1000);
	c.payload_len = 1000;
	c.payload = malloc(c.payload_len);
	for (uint32_t i = 0; i < c.payload_len; i++)
		c.payload[i] = (uint8_t)(i * 7);
	c.ndev_ids = 1000;
	c.dev_ids = calloc(c.ndev_ids, sizeof(*c.dev_ids));
	for (uint32_t i = 0; i < c.ndev_ids; i++)
		snprintf(c.dev_ids[i], sizeof(c.dev_ids[i]), "dev-%05u", i);
	c.counts[FBX_D_QUEUED] = 7;

	t = wtxn(st);
	CHECK_RC(fbx_store_cmd_append(t, &c), FBX_OK);
	id1 = c.id;
	CHECK(id1 == 1);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	t = rtxn(st);
	CHECK_RC(fbx_store_cmd_get(t, id1, &g), FBX_OK);
	CHECK(g.id == id1 && strcmp(g.org, "a") == 0);
	CHECK(strcmp(g.actor, c.actor) == 0 && strcmp(g.reason, "INC-42") == 0);
	CHECK(g.type == FBX_CMD_LOCK && g.origin == FBX_ORIGIN_OPERATOR);
	CHECK(g.created_ms == 1000 && g.expires_ms == 3601000);
	CHECK(g.ttl_s == 3600 && g.counts[FBX_D_QUEUED] == 7);
	CHECK(g.payload_len == 1000 && g.payload != NULL &&
	    memcmp(g.payload, c.payload, 1000) == 0);
	CHECK(g.ndev_ids == 1000 && g.dev_ids != NULL &&
	    strcmp(g.dev_ids[999], "dev-00999") == 0 &&
	    strcmp(g.dev_ids[0], "dev-00000") == 0);
	fbx_command_clear(&g);
	/* a failed read leaves nothing for fbx_command_clear to free, even
	 * in a struct that held garbage (a caller's uninitialised one) */
	memset(&g, 0xa5, sizeof(g));
	CHECK_RC(fbx_store_cmd_get(t, 999, &g), FBX_ENOT_FOUND);
	CHECK(g.payload == NULL && g.dev_ids == NULL && g.ndev_ids == 0);
	fbx_command_clear(&g);
	memset(&g, 0xa5, sizeof(g));
	CHECK_RC(fbx_store_cmd_head(t, 999, &g), FBX_ENOT_FOUND);
	CHECK(g.payload == NULL && g.dev_ids == NULL && g.ndev_ids == 0);
	fbx_command_clear(&g);
	fbx_txn_abort(t);

	/* cmd_put rewrites state, counts and cursor; the body stays. */
	t = wtxn(st);
	c.state = FBX_C_ACTIVE;
	c.ndeliveries = 1000;
	c.counts[FBX_D_QUEUED] = 990;
	c.counts[FBX_D_SENT] = 10;
	c.cursor_idx = 1000;
	snprintf(c.cursor, sizeof(c.cursor), "dev-00999");
	c.settle_until_ms = 31000;
	c.limit_at_ms = 1000;
	c.limit_n = 1000;
	c.limit_window_s = 3600;
	c.limit_gen = 7;
	free(c.payload);
	free(c.dev_ids);
	c.payload = NULL;
	c.payload_len = 0;
	c.dev_ids = NULL;
	c.ndev_ids = 0;
	CHECK_RC(fbx_store_cmd_put(t, &c), FBX_OK);
	CHECK_RC(fbx_store_cmd_get(t, id1, &g), FBX_OK);
	CHECK(g.state == FBX_C_ACTIVE && g.ndeliveries == 1000 &&
	    g.counts[FBX_D_SENT] == 10 && g.cursor_idx == 1000 &&
	    strcmp(g.cursor, "dev-00999") == 0);
	CHECK(g.payload_len == 1000 && g.ndev_ids == 1000);
	/* the v3 and v4 tails: settle, the blast-radius limit's count */
	CHECK(g.settle_until_ms == 31000 && g.limit_at_ms == 1000 &&
	    g.limit_n == 1000 && g.limit_window_s == 3600 && g.limit_gen == 7);
	fbx_command_clear(&g);
	mk_cmd(&c2, "a", 5);
	c2.id = 12345;
	CHECK_RC(fbx_store_cmd_put(t, &c2), FBX_ENOT_FOUND);

	/* Monotonic ids and org/time index, org "a" vs "ab". */
	mk_cmd(&c2, "a", 2000);
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_OK);
	CHECK(c2.id == 2);
	mk_cmd(&c2, "ab", 1500);
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_OK);
	CHECK(c2.id == 3);
	mk_cmd(&c2, "a", 3000);
	snprintf(c2.idem_key, sizeof(c2.idem_key), "req-1");
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_OK);
	CHECK(c2.id == 4);
	mk_cmd(&c2, "ab", 2500);
	c2.state = FBX_C_DONE;
	snprintf(c2.idem_key, sizeof(c2.idem_key), "req-1");
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_OK);
	CHECK(c2.id == 5);
	mk_cmd(&c2, "a", 4000);
	snprintf(c2.idem_key, sizeof(c2.idem_key), "req-1");
	c2.id = 77;
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_EIDEMPOTENCY_CONFLICT);
	CHECK(c2.id == 77);
	mk_cmd(&c2, "", 4000);
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_EINVALID);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	/* the refused append wrote nothing: the next id is still 6 */
	t = wtxn(st);
	mk_cmd(&c2, "zz", 4000);
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_OK);
	CHECK(c2.id == 6);
	fbx_txn_abort(t);
	/* an id chosen before the record is written (the admission
	 * pipeline: fbx_store_cmd_last + 1, then the expansion, then the
	 * record) is the one used; an id the table already has is refused
	 * (an error that breaks the transaction, so nothing of it commits:
	 * the record below is the one committed before) */
	t = wtxn(st);
	{
		uint64_t last = 0;
		CHECK_RC(fbx_store_cmd_last(t, &last), FBX_OK);
		CHECK(last == 5);
		mk_cmd(&c2, "zz", 4000);
		CHECK_RC(fbx_store_cmd_append_id(t, &c2, 0), FBX_EINVALID);
		CHECK_RC(fbx_store_cmd_append_id(t, &c2, FBX_CMD_ID_MAX + 1),
		    FBX_ETOO_MANY);
		c2.state = FBX_C_ACTIVE;
		c2.ndeliveries = 1;
		CHECK_RC(fbx_store_cmd_append_id(t, &c2, last + 1), FBX_OK);
		CHECK(c2.id == 6);
		CHECK_RC(fbx_store_cmd_get(t, 6, &g), FBX_OK);
		CHECK(strcmp(g.org, "zz") == 0 && g.state == FBX_C_ACTIVE &&
		    g.ndeliveries == 1 && g.created_ms == 4000);
		fbx_command_clear(&g);
	}
	fbx_txn_abort(t);
	t = wtxn(st);
	mk_cmd(&c2, "zz", 4000);
	CHECK(fbx_store_cmd_append_id(t, &c2, 5) != FBX_OK);
	fbx_txn_abort(t);
	t = rtxn(st);
	CHECK_RC(fbx_store_cmd_get(t, 5, &g), FBX_OK);
	CHECK(strcmp(g.org, "ab") == 0 && g.state == FBX_C_DONE);
	fbx_command_clear(&g);
	fbx_txn_abort(t);

	t = rtxn(st);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "a", 0, 0, 0, 0, cmd_collect, &col),
	    FBX_OK);
	CHECK(col.n == 3 && col.ids[0] == 1 && col.ids[1] == 2 &&
	    col.ids[2] == 4);
	CHECK(col.loaded_payload == 0);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "ab", 0, 0, 0, 0, cmd_collect, &col),
	    FBX_OK);
	CHECK(col.n == 2 && col.ids[0] == 3 && col.ids[1] == 5);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "a", 1500, 3000, 0, 0, cmd_collect,
	    &col), FBX_OK);
	CHECK(col.n == 1 && col.ids[0] == 2);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "a", 1000, 3001, 0, 0, cmd_collect,
	    &col), FBX_OK);
	CHECK(col.n == 3);
	/* Paging: two, then after the last one seen. */
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "a", 0, 0, 0, 2, cmd_collect, &col),
	    FBX_OK);
	CHECK(col.n == 2 && col.ids[1] == 2);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "a", 0, 0, 2, 2, cmd_collect, &col),
	    FBX_OK);
	CHECK(col.n == 1 && col.ids[0] == 4);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "b", 0, 0, 0, 0, cmd_collect, &col),
	    FBX_OK);
	CHECK(col.n == 0);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_list(t, "", 0, 0, 0, 0, cmd_collect, &col),
	    FBX_EINVALID);

	/* Idempotency keys are per organisation. */
	id = 0;
	CHECK_RC(fbx_store_idem_get(t, "a", "req-1", &id), FBX_OK);
	CHECK(id == 4);
	CHECK_RC(fbx_store_idem_get(t, "ab", "req-1", &id), FBX_OK);
	CHECK(id == 5);
	CHECK_RC(fbx_store_idem_get(t, "b", "req-1", &id), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_idem_get(t, "a", "req-2", &id), FBX_ENOT_FOUND);

	/* Active set: everything but the DONE one, payload loaded. */
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_active(t, cmd_collect, &col), FBX_OK);
	CHECK(col.n == 4 && col.ids[0] == 1 && col.ids[3] == 4);
	CHECK(col.loaded_payload == 1);
	fbx_txn_abort(t);

	t = wtxn(st);
	CHECK_RC(fbx_store_cmd_get(t, 2, &g), FBX_OK);
	g.state = FBX_C_DONE;
	CHECK_RC(fbx_store_cmd_put(t, &g), FBX_OK);
	fbx_command_clear(&g);
	CHECK_RC(fbx_store_cmd_get(t, 5, &g), FBX_OK);
	g.state = FBX_C_ACTIVE;
	CHECK_RC(fbx_store_cmd_put(t, &g), FBX_OK);
	fbx_command_clear(&g);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_cmd_active(t, cmd_collect, &col), FBX_OK);
	CHECK(col.n == 4 && col.ids[0] == 1 && col.ids[1] == 3 &&
	    col.ids[2] == 4 && col.ids[3] == 5);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	/* Writing through a read transaction is refused. */
	t = rtxn(st);
	mk_cmd(&c2, "a", 1);
	CHECK_RC(fbx_store_cmd_append(t, &c2), FBX_EINVALID);
	fbx_txn_abort(t);
	fbx_command_clear(&c);
}

/* ---- deliveries ------------------------------------------------------- */

static void
test_deliveries(fbx_store *st)
{
	struct fbx_delivery d, g;
	struct dlv_col col;
	char dev[32];
	fbx_txn *t;
	int old;

	t = wtxn(st);
	/* 100 deliveries of command 1 (indexes 1..100), then one of
	 * command 1 index 0 out of order, then overwrite one. */
	for (uint32_t i = 1; i <= 100; i++) {
		snprintf(dev, sizeof(dev), "dev-%05u", i);
		mk_dlv(&d, FBX_DLV_ID(1, i), dev, 1000 + i);
		CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	}
	mk_dlv(&d, FBX_DLV_ID(1, 0), "dev-00000", 999);
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	mk_dlv(&d, FBX_DLV_ID(1, 50), "dev-renamed", 5000);
	d.attempts = 3;
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	for (uint32_t i = 0; i < 10; i++) {
		snprintf(dev, sizeof(dev), "dev-%05u", i);
		mk_dlv(&d, FBX_DLV_ID(2, i), dev, 2000 + i);
		CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	}
	mk_dlv(&d, 0, "x", 1);
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_EINVALID);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	t = rtxn(st);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1, 7), &g), FBX_OK);
	CHECK(g.id == FBX_DLV_ID(1, 7) && g.state == FBX_D_QUEUED &&
	    strcmp(g.device, "dev-00007") == 0 && g.nhist == 1 &&
	    g.hist[0].at_ms == 1007 && g.updated_ms == 1007);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1, 50), &g), FBX_OK);
	CHECK(strcmp(g.device, "dev-renamed") == 0 && g.attempts == 3);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1, 0), &g), FBX_OK);
	CHECK(strcmp(g.device, "dev-00000") == 0);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1, 101), &g), FBX_ENOT_FOUND);

	memset(&col, 0, sizeof(col));
	col.ordered = 1;
	CHECK_RC(fbx_store_dlv_scan(t, FBX_DLV_ID(1, 0), FBX_DLV_ID(2, 0), 0,
	    dlv_collect, &col), FBX_OK);
	CHECK(col.n == 101 && col.ordered && col.first == FBX_DLV_ID(1, 0) &&
	    col.last == FBX_DLV_ID(1, 100));
	memset(&col, 0, sizeof(col));
	col.ordered = 1;
	CHECK_RC(fbx_store_dlv_scan(t, FBX_DLV_ID(1, 10), FBX_DLV_ID(1, 20),
	    0, dlv_collect, &col), FBX_OK);
	CHECK(col.n == 10 && col.first == FBX_DLV_ID(1, 10) &&
	    col.last == FBX_DLV_ID(1, 19));
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_dlv_scan(t, FBX_DLV_ID(1, 95), UINT64_MAX, 8,
	    dlv_collect, &col), FBX_OK);
	CHECK(col.n == 8 && col.last == FBX_DLV_ID(2, 1));
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_dlv_scan(t, FBX_DLV_ID(3, 0), FBX_DLV_ID(4, 0), 0,
	    dlv_collect, &col), FBX_OK);
	CHECK(col.n == 0);
	fbx_txn_abort(t);

	/* History: QUEUED, SENT(attempt), ACCEPTED, FAILED, then overflow. */
	t = wtxn(st);
	uint64_t id = FBX_DLV_ID(1, 7);
	old = -1;
	CHECK_RC(fbx_store_dlv_set_state(t, id, FBX_D_SENT, 0, 2000, 1, &old,
	    &g), FBX_OK);
	CHECK(old == FBX_D_QUEUED && g.state == FBX_D_SENT &&
	    g.attempts == 1 && g.nhist == 2 && g.updated_ms == 2000);
	CHECK_RC(fbx_store_dlv_set_state(t, id, FBX_D_ACCEPTED, 0, 2100, 0,
	    &old, NULL), FBX_OK);
	CHECK(old == FBX_D_SENT);
	CHECK_RC(fbx_store_dlv_set_state(t, id, FBX_D_FAILED, 503, 2200, 0,
	    NULL, NULL), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, id, &g), FBX_OK);
	CHECK(g.state == FBX_D_FAILED && g.code == 503 && g.nhist == 4 &&
	    g.attempts == 1);
	CHECK(g.hist[0].state == FBX_D_QUEUED && g.hist[0].at_ms == 1007 &&
	    g.hist[1].state == FBX_D_SENT && g.hist[1].at_ms == 2000 &&
	    g.hist[2].at_ms == 2100 && g.hist[3].code == 503 &&
	    g.hist[3].at_ms == 2200);
	for (int i = 0; i < 20; i++) {
		CHECK_RC(fbx_store_dlv_set_state(t, id,
		    i % 2 ? FBX_D_SENT : FBX_D_QUEUED, (uint16_t)i,
		    3000 + i, i % 2, NULL, NULL), FBX_OK);
	}
	CHECK_RC(fbx_store_dlv_get(t, id, &g), FBX_OK);
	CHECK(g.nhist == FBX_HIST_MAX);
	CHECK(g.hist[0].state == FBX_D_QUEUED && g.hist[0].at_ms == 1007);
	CHECK(g.hist[FBX_HIST_MAX - 1].at_ms == 3019 &&
	    g.hist[FBX_HIST_MAX - 1].code == 19 &&
	    g.hist[FBX_HIST_MAX - 1].state == FBX_D_SENT);
	CHECK(g.hist[1].at_ms == 3019 - (FBX_HIST_MAX - 2));
	CHECK(g.attempts == 11);
	{
		int ok = 1;
		for (int i = 2; i < FBX_HIST_MAX; i++)
			ok &= g.hist[i].at_ms == g.hist[i - 1].at_ms + 1;
		CHECK(ok);
	}
	/* Times that do not fit a u32 offset, and going backwards. */
	/* History times are values the caller passes, not clock readings:
	 * one past 32 bits and one before the epoch must round-trip. */
	id = FBX_DLV_ID(1, 8);
	CHECK_RC(fbx_store_dlv_set_state(t, id, FBX_D_SENT, 0,
	    (int64_t)1 << 40, 1, NULL, NULL), FBX_OK);
	CHECK_RC(fbx_store_dlv_set_state(t, id, FBX_D_SUCCEEDED, 0, -5, 0,
	    NULL, NULL), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, id, &g), FBX_OK);
	CHECK(g.nhist == 3 && g.hist[1].at_ms == (int64_t)1 << 40 &&
	    g.hist[2].at_ms == -5 && g.updated_ms == -5 &&
	    g.state == FBX_D_SUCCEEDED);
	/* Missing delivery: not found, transaction still usable. */
	CHECK_RC(fbx_store_dlv_set_state(t, FBX_DLV_ID(9, 9), FBX_D_SENT, 0,
	    1, 0, NULL, NULL), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dlv_set_state(t, FBX_DLV_ID(1, 9), FBX_D_SENT, 0,
	    2000, 1, NULL, NULL), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	t = rtxn(st);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1, 7), &g), FBX_OK);
	CHECK(g.nhist == FBX_HIST_MAX && g.attempts == 11);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1, 9), &g), FBX_OK);
	CHECK(g.state == FBX_D_SENT && g.nhist == 2);
	fbx_txn_abort(t);
}

/* ---- offline index -------------------------------------------------- */

struct id_col {
	uint64_t ids[16];
	int n;
};

static int
id_collect(void *arg, uint64_t id)
{
	struct id_col *col = arg;

	if (col->n < 16)
		col->ids[col->n++] = id;
	return 0;
}

static void
test_pend(fbx_store *st)
{
	struct id_col col;
	fbx_txn *t;

	t = wtxn(st);
	CHECK_RC(fbx_store_pend_add(t, "a", "d", 30), FBX_OK);
	CHECK_RC(fbx_store_pend_add(t, "a", "d", 10), FBX_OK);
	CHECK_RC(fbx_store_pend_add(t, "a", "d", 20), FBX_OK);
	CHECK_RC(fbx_store_pend_add(t, "a", "d1", 40), FBX_OK);
	CHECK_RC(fbx_store_pend_add(t, "ab", "d", 50), FBX_OK);
	CHECK_RC(fbx_store_pend_add(t, "a", "", 50), FBX_EINVALID);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	t = wtxn(st);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_pend_list(t, "a", "d", id_collect, &col), FBX_OK);
	CHECK(col.n == 3 && col.ids[0] == 10 && col.ids[1] == 20 &&
	    col.ids[2] == 30);
	CHECK_RC(fbx_store_pend_del(t, "a", "d", 20), FBX_OK);
	CHECK_RC(fbx_store_pend_del(t, "a", "d", 20), FBX_ENOT_FOUND);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_pend_list(t, "a", "d", id_collect, &col), FBX_OK);
	CHECK(col.n == 2 && col.ids[0] == 10 && col.ids[1] == 30);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_pend_list(t, "ab", "d", id_collect, &col), FBX_OK);
	CHECK(col.n == 1 && col.ids[0] == 50);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_pend_list(t, "a", "d1", id_collect, &col), FBX_OK);
	CHECK(col.n == 1 && col.ids[0] == 40);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_pend_list(t, "a", "e", id_collect, &col), FBX_OK);
	CHECK(col.n == 0);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
}

/* ---- devices ---------------------------------------------------------- */

static void
mk_dev(struct fbx_device *dv, const char *org, const char *id)
{
	memset(dv, 0, sizeof(*dv));
	snprintf(dv->org, sizeof(dv->org), "%s", org);
	snprintf(dv->id, sizeof(dv->id), "%s", id);
	dv->platform = FBX_PLATFORM_IOS;
	dv->online = 1;
	dv->attestation = FBX_ATTEST_PASS;
	snprintf(dv->os_version, sizeof(dv->os_version), "17.4.1");
	dv->enrolled_ms = 1700000000000;
	dv->last_checkin_ms = 1700000001234;
}

static void
set_groups(struct fbx_device *dv, const char *g0, const char *g1)
{
	dv->ngroups = 0;
	if (g0 != NULL)
		snprintf(dv->groups[dv->ngroups++], FBX_ID_MAX + 1, "%s", g0);
	if (g1 != NULL)
		snprintf(dv->groups[dv->ngroups++], FBX_ID_MAX + 1, "%s", g1);
}

struct dev_col {
	char ids[16][FBX_ID_MAX + 1];
	int n;
	int bad_org;
	const char *org;
};

static int
dev_collect(void *arg, const struct fbx_device *dv)
{
	struct dev_col *col = arg;

	if (strcmp(dv->org, col->org) != 0)
		col->bad_org++;
	if (col->n < 16)
		snprintf(col->ids[col->n++], FBX_ID_MAX + 1, "%s", dv->id);
	return 0;
}

struct grp_col {
	char names[8][FBX_ID_MAX + 1];
	uint32_t counts[8];
	int n;
};

static int
grp_collect(void *arg, const char *g, uint32_t count)
{
	struct grp_col *col = arg;

	if (col->n < 8) {
		snprintf(col->names[col->n], FBX_ID_MAX + 1, "%s", g);
		col->counts[col->n++] = count;
	}
	return 0;
}

static void
test_devices(fbx_store *st)
{
	struct fbx_device dv, g;
	struct dev_col dc;
	struct grp_col gc;
	uint32_t n;
	fbx_txn *t;
	int created;

	t = wtxn(st);
	CHECK_RC(fbx_store_org_devices(t, "a", &n), FBX_EUNKNOWN_ORG);
	mk_dev(&dv, "a", "d1");
	set_groups(&dv, "g1", "g2");
	created = -1;
	CHECK_RC(fbx_store_dev_put(t, &dv, &created), FBX_OK);
	CHECK(created == 1);
	mk_dev(&dv, "a", "d2");
	set_groups(&dv, "g1", NULL);
	CHECK_RC(fbx_store_dev_put(t, &dv, &created), FBX_OK);
	mk_dev(&dv, "a", "d3");
	set_groups(&dv, "g2", "g3");
	CHECK_RC(fbx_store_dev_put(t, &dv, &created), FBX_OK);
	mk_dev(&dv, "a", "d4");
	CHECK_RC(fbx_store_dev_put(t, &dv, NULL), FBX_OK);
	mk_dev(&dv, "ab", "d0");
	set_groups(&dv, "g1", NULL);
	CHECK_RC(fbx_store_dev_put(t, &dv, &created), FBX_OK);
	mk_dev(&dv, "a", "");
	CHECK_RC(fbx_store_dev_put(t, &dv, &created), FBX_EINVALID);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	t = rtxn(st);
	CHECK_RC(fbx_store_dev_get(t, "a", "d1", &g), FBX_OK);
	CHECK(strcmp(g.org, "a") == 0 && strcmp(g.id, "d1") == 0 &&
	    g.platform == FBX_PLATFORM_IOS && g.online == 1 &&
	    g.attestation == FBX_ATTEST_PASS && g.ngroups == 2 &&
	    strcmp(g.groups[1], "g2") == 0 &&
	    strcmp(g.os_version, "17.4.1") == 0 &&
	    g.enrolled_ms == 1700000000000 &&
	    g.last_checkin_ms == 1700000001234);
	CHECK_RC(fbx_store_dev_get(t, "ab", "d1", &g), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_org_devices(t, "a", &n), FBX_OK);
	CHECK(n == 4);
	CHECK_RC(fbx_store_org_devices(t, "ab", &n), FBX_OK);
	CHECK(n == 1);
	CHECK_RC(fbx_store_org_devices(t, "b", &n), FBX_EUNKNOWN_ORG);
	memset(&gc, 0, sizeof(gc));
	CHECK_RC(fbx_store_group_list(t, "a", grp_collect, &gc), FBX_OK);
	CHECK(gc.n == 3 && strcmp(gc.names[0], "g1") == 0 &&
	    gc.counts[0] == 2 && gc.counts[1] == 2 && gc.counts[2] == 1);
	memset(&gc, 0, sizeof(gc));
	CHECK_RC(fbx_store_group_list(t, "ab", grp_collect, &gc), FBX_OK);
	CHECK(gc.n == 1 && gc.counts[0] == 1);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", NULL, NULL, 0, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 4 && dc.bad_org == 0 && strcmp(dc.ids[0], "d1") == 0 &&
	    strcmp(dc.ids[3], "d4") == 0);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", "", "d1", 2, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 2 && strcmp(dc.ids[0], "d2") == 0 &&
	    strcmp(dc.ids[1], "d3") == 0);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", NULL, "d3", 2, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 1 && strcmp(dc.ids[0], "d4") == 0);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", NULL, "d0", 0, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 4);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", "g2", NULL, 0, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 2 && strcmp(dc.ids[0], "d1") == 0 &&
	    strcmp(dc.ids[1], "d3") == 0 && dc.bad_org == 0);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", "g1", "d1", 0, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 1 && strcmp(dc.ids[0], "d2") == 0);
	memset(&dc, 0, sizeof(dc));
	dc.org = "ab";
	CHECK_RC(fbx_store_dev_scan(t, "ab", NULL, NULL, 0, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 1 && dc.bad_org == 0);
	fbx_txn_abort(t);

	/* Regroup d1 (g1,g2 -> g2,g4), delete d2. */
	t = wtxn(st);
	mk_dev(&dv, "a", "d1");
	set_groups(&dv, "g2", "g4");
	dv.online = 0;
	CHECK_RC(fbx_store_dev_put(t, &dv, &created), FBX_OK);
	CHECK(created == 0);
	CHECK_RC(fbx_store_dev_del(t, "a", "d2"), FBX_OK);
	CHECK_RC(fbx_store_dev_del(t, "a", "d2"), FBX_ENOT_FOUND);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	t = rtxn(st);
	CHECK_RC(fbx_store_dev_get(t, "a", "d1", &g), FBX_OK);
	CHECK(g.online == 0 && g.ngroups == 2 &&
	    strcmp(g.groups[1], "g4") == 0);
	CHECK_RC(fbx_store_org_devices(t, "a", &n), FBX_OK);
	CHECK(n == 3);
	memset(&gc, 0, sizeof(gc));
	CHECK_RC(fbx_store_group_list(t, "a", grp_collect, &gc), FBX_OK);
	/* g1 is gone (d1 left, d2 deleted). */
	CHECK(gc.n == 3 && strcmp(gc.names[0], "g2") == 0 &&
	    gc.counts[0] == 2 && strcmp(gc.names[1], "g3") == 0 &&
	    gc.counts[1] == 1 && strcmp(gc.names[2], "g4") == 0 &&
	    gc.counts[2] == 1);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", "g1", NULL, 0, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 0);
	fbx_txn_abort(t);

	/* The online flag alone, in place: d3 (online, groups g2 g3)
	 * goes offline and back; the rest of its record, its groups and
	 * the count do not move; a missing device, bad ids and a read
	 * transaction are refused. */
	t = wtxn(st);
	CHECK_RC(fbx_store_dev_set_online(t, "a", "d3", 0), FBX_OK);
	CHECK_RC(fbx_store_dev_get(t, "a", "d3", &g), FBX_OK);
	CHECK(g.online == 0 && g.platform == FBX_PLATFORM_IOS &&
	    g.attestation == FBX_ATTEST_PASS && g.ngroups == 2 &&
	    strcmp(g.groups[0], "g2") == 0 &&
	    strcmp(g.groups[1], "g3") == 0 &&
	    strcmp(g.os_version, "17.4.1") == 0 &&
	    g.enrolled_ms == 1700000000000 &&
	    g.last_checkin_ms == 1700000001234);
	CHECK_RC(fbx_store_dev_set_online(t, "a", "d3", 0), FBX_OK);
	CHECK_RC(fbx_store_dev_set_online(t, "a", "d9", 0), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dev_set_online(t, "b", "d3", 0), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dev_set_online(t, "a", "", 0), FBX_EINVALID);
	CHECK_RC(fbx_store_dev_set_online(t, NULL, "d3", 0), FBX_EINVALID);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	t = rtxn(st);
	CHECK_RC(fbx_store_dev_get(t, "a", "d3", &g), FBX_OK);
	CHECK(g.online == 0 && g.ngroups == 2);
	CHECK(fbx_store_dev_set_online(t, "a", "d3", 1) != FBX_OK);
	CHECK_RC(fbx_store_org_devices(t, "a", &n), FBX_OK);
	CHECK(n == 3);
	memset(&dc, 0, sizeof(dc));
	dc.org = "a";
	CHECK_RC(fbx_store_dev_scan(t, "a", "g3", NULL, 0, dev_collect, &dc),
	    FBX_OK);
	CHECK(dc.n == 1 && strcmp(dc.ids[0], "d3") == 0);
	fbx_txn_abort(t);
	t = wtxn(st);
	CHECK_RC(fbx_store_dev_set_online(t, "a", "d3", 1), FBX_OK);
	CHECK_RC(fbx_store_dev_get(t, "a", "d3", &g), FBX_OK);
	CHECK(g.online == 1 && g.ngroups == 2 &&
	    strcmp(g.os_version, "17.4.1") == 0);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	/* Deleting every device keeps the organisation known. */
	t = wtxn(st);
	CHECK_RC(fbx_store_dev_del(t, "ab", "d0"), FBX_OK);
	CHECK_RC(fbx_store_org_devices(t, "ab", &n), FBX_OK);
	CHECK(n == 0);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
}

/* ---- map growth, persistence ------------------------------------------ */

static int
count_dlv(void *arg, const struct fbx_delivery *d)
{
	uint64_t *n = arg;

	if (d->nhist == 1 && d->device[0] == 'u')
		(*n)++;
	return 0;
}

static void
test_growth(const char *dir)
{
	struct fbx_store_stat ss;
	struct fbx_delivery d;
	fbx_store *st = open_store(dir, 1 << 20, 0);
	int map_full = 0, grows = 0;
	uint64_t n = 0;
	fbx_txn *t;
	char dev[40];

	if (st == NULL)
		return;
	for (uint32_t b = 0; b < 20; b++) {
		int rc;
	retry:
		t = wtxn(st);
		if (t == NULL)
			break;
		rc = FBX_OK;
		for (uint32_t i = 0; i < 10000 && rc == FBX_OK; i++) {
			uint32_t idx = b * 10000 + i;
			snprintf(dev, sizeof(dev),
			    "u%08x-0000-4000-8000-00000000", idx);
			mk_dlv(&d, FBX_DLV_ID(1000, idx), dev, 1000000 + idx);
			rc = fbx_store_dlv_put(t, &d);
		}
		if (rc == FBX_EMAP_FULL) {
			map_full++;
			/* Broken: the same error again, LMDB untouched. */
			CHECK_RC(fbx_store_dlv_put(t, &d), FBX_EMAP_FULL);
			CHECK_RC(fbx_store_dlv_get(t, d.id, &d),
			    FBX_EMAP_FULL);
			CHECK_RC(fbx_txn_commit(t), FBX_EMAP_FULL);
			rc = fbx_store_grow(st);
			CHECK_RC(rc, FBX_OK);
			if (rc != FBX_OK)
				break;
			grows++;
			goto retry;
		}
		CHECK_RC(rc, FBX_OK);
		rc = fbx_txn_commit(t);
		if (rc == FBX_EMAP_FULL) {
			map_full++;
			CHECK_RC(fbx_store_grow(st), FBX_OK);
			goto retry;
		}
		CHECK_RC(rc, FBX_OK);
	}
	CHECK(map_full > 0 && grows > 0);
	t = rtxn(st);
	CHECK_RC(fbx_store_dlv_scan(t, FBX_DLV_ID(1000, 0),
	    FBX_DLV_ID(1001, 0), 0, count_dlv, &n), FBX_OK);
	CHECK(n == 200000);
	fbx_txn_abort(t);
	CHECK_RC(fbx_store_stat(st, &ss), FBX_OK);
	CHECK(ss.deliveries == 200000 && ss.map_size > (1u << 20) &&
	    ss.used_bytes <= ss.map_size && ss.page_size >= 4096);
	printf("growth: %u grows, map %zu KiB, used %zu KiB, %.1f bytes per "
	       "delivery\n", grows, ss.map_size >> 10, ss.used_bytes >> 10,
	    (double)ss.used_bytes / 200000.0);

	/* reserve: enough room is a no-op, more grows, the ceiling stops. */
	CHECK_RC(fbx_store_reserve(st, 1024), FBX_OK);
	CHECK_RC(fbx_store_reserve(st, ss.map_size * 3), FBX_OK);
	CHECK_RC(fbx_store_stat(st, &ss), FBX_OK);
	CHECK(ss.map_size >= ss.used_bytes + ss.map_size / 8);
	CHECK_RC(fbx_store_reserve(st, (size_t)1 << 41), FBX_EMAP_FULL);
	t = rtxn(st);
	CHECK_RC(fbx_store_grow(st), FBX_EBUSY);
	fbx_txn_abort(t);
	fbx_store_close(st);

	/* Reopen: everything persisted, the larger map is kept. */
	st = open_store(dir, 1 << 20, 0);
	if (st == NULL)
		return;
	CHECK_RC(fbx_store_stat(st, &ss), FBX_OK);
	CHECK(ss.deliveries == 200000 && ss.map_size > (1u << 20) &&
	    ss.readers_cleared == 0);
	n = 0;
	t = rtxn(st);
	CHECK_RC(fbx_store_dlv_scan(t, 0, UINT64_MAX, 0, count_dlv, &n),
	    FBX_OK);
	CHECK(n == 200000);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1000, 199999), &d), FBX_OK);
	CHECK(strcmp(d.device, "u00030d3f-0000-4000-8000-00000000") == 0);
	fbx_txn_abort(t);
	fbx_store_close(st);

	/* Ceiling: a 1 MiB map that may not grow. */
	{
		char d2[160];
		snprintf(d2, sizeof(d2), "%s-capped", dir);
		st = open_store(d2, 1 << 20, 1 << 20);
		if (st == NULL)
			return;
		CHECK_RC(fbx_store_grow(st), FBX_EMAP_FULL);
		CHECK_RC(fbx_store_reserve(st, 4 << 20), FBX_EMAP_FULL);
		fbx_store_close(st);
	}
}

static void
test_persistence(const char *dir)
{
	struct fbx_command c;
	struct fbx_device dv;
	struct fbx_delivery d;
	fbx_store *st = open_store(dir, 0, 0);
	uint64_t id;
	uint32_t n;
	fbx_txn *t;

	if (st == NULL)
		return;
	t = rtxn(st);
	CHECK_RC(fbx_store_cmd_get(t, 1, &c), FBX_OK);
	CHECK(c.ndev_ids == 1000 && c.payload_len == 1000 &&
	    c.state == FBX_C_ACTIVE);
	fbx_command_clear(&c);
	CHECK_RC(fbx_store_idem_get(t, "a", "req-1", &id), FBX_OK);
	CHECK(id == 4);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(1, 7), &d), FBX_OK);
	CHECK(d.nhist == FBX_HIST_MAX);
	CHECK_RC(fbx_store_dev_get(t, "a", "d3", &dv), FBX_OK);
	CHECK_RC(fbx_store_org_devices(t, "a", &n), FBX_OK);
	CHECK(n == 3);
	fbx_txn_abort(t);
	/* Appending after reopen continues the id sequence. */
	t = wtxn(st);
	mk_cmd(&c, "a", 9000);
	CHECK_RC(fbx_store_cmd_append(t, &c), FBX_OK);
	CHECK(c.id == 6);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	fbx_store_close(st);
}

/* ---- damaged files ---------------------------------------------------- */

/* patch_file - replace every occurrence of `find` in dir/data.mdb by
 * `repl` (same length). Returns the number of replacements. */
static int
patch_file(const char *dir, const void *find, const void *repl, size_t n)
{
	char path[256];

	if (pg_url != NULL) {
		/* the same bytes in the stored values (a key and its value
		 * are apart here: meta's schema is patched on its own) */
		static const char *const tabs[] = { "dlv", "dev", "meta" };
		const char *vals[3] = { find, repl, NULL };
		int lens[3] = { (int)n, (int)n, 0 }, fmts[3] = { 1, 1, 0 };
		char sql[256], lenbuf[16];
		int hits = 0, r;
		snprintf(lenbuf, sizeof(lenbuf), "%zu", n);
		vals[2] = lenbuf;
		if (n > 6 && memcmp(find, "schema", 6) == 0) {
			vals[0] = (const char *)find + 6;
			vals[1] = (const char *)repl + 6;
			lens[0] = lens[1] = (int)n - 6;
			r = pg_exec_dir(dir, "UPDATE fbx_meta SET v = $2 WHERE "
			    "k = 'schema'::bytea AND v = $1", 2, vals, lens,
			    fmts);
			return r > 0 ? r : 0;
		}
		for (size_t i = 0; i < sizeof(tabs) / sizeof(tabs[0]); i++) {
			snprintf(sql, sizeof(sql),
			    "UPDATE fbx_%s SET v = overlay(v PLACING $2 FROM "
			    "position($1 IN v) FOR $3::int) WHERE position($1 "
			    "IN v) > 0", tabs[i]);
			r = pg_exec_dir(dir, sql, 3, vals, lens, fmts);
			if (r > 0)
				hits += r;
		}
		return hits;
	}
	struct stat sb;
	unsigned char *buf;
	int fd, hits = 0;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return 0;
	if (fstat(fd, &sb) != 0 || sb.st_size <= 0) {
		close(fd);
		return 0;
	}
	buf = malloc((size_t)sb.st_size);
	if (buf != NULL && pread(fd, buf, (size_t)sb.st_size, 0) ==
	    sb.st_size) {
		for (size_t i = 0; i + n <= (size_t)sb.st_size; i++) {
			if (memcmp(buf + i, find, n) == 0) {
				if (pwrite(fd, repl, n, (off_t)i) ==
				    (ssize_t)n)
					hits++;
			}
		}
	}
	free(buf);
	close(fd);
	return hits;
}

static void
test_corrupt(const char *dir)
{
	static const char marker[] = "CORRUPT-ME-0123456789";
	struct fbx_delivery d, g;
	struct fbx_device dv;
	struct dlv_col col;
	char find[32], repl[32];
	fbx_store *st = open_store(dir, 0, 0);
	fbx_txn *t;
	size_t ml = strlen(marker);

	if (st == NULL)
		return;
	t = wtxn(st);
	mk_dlv(&d, FBX_DLV_ID(7, 1), marker, 100);
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	mk_dlv(&d, FBX_DLV_ID(7, 2), "fine", 100);
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	mk_dev(&dv, "a", "dz");
	snprintf(dv.os_version, sizeof(dv.os_version), "%s", marker);
	CHECK_RC(fbx_store_dev_put(t, &dv, NULL), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	fbx_store_close(st);

	/* A string's length byte precedes it: claim 250 bytes. */
	find[0] = (char)ml;
	memcpy(find + 1, marker, ml);
	repl[0] = (char)250;
	memcpy(repl + 1, marker, ml);
	CHECK(patch_file(dir, find, repl, ml + 1) >= 2);

	st = open_store(dir, 0, 0);
	if (st == NULL)
		return;
	t = wtxn(st);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(7, 1), &g), FBX_ECORRUPT);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(7, 2), &g), FBX_OK);
	memset(&col, 0, sizeof(col));
	CHECK_RC(fbx_store_dlv_scan(t, FBX_DLV_ID(7, 0), FBX_DLV_ID(8, 0), 0,
	    dlv_collect, &col), FBX_ECORRUPT);
	CHECK_RC(fbx_store_dlv_set_state(t, FBX_DLV_ID(7, 1), FBX_D_SENT, 0,
	    1, 1, NULL, NULL), FBX_ECORRUPT);
	CHECK_RC(fbx_store_dev_get(t, "a", "dz", &dv), FBX_ECORRUPT);
	CHECK_RC(fbx_store_dev_get(t, "a", "d3", &dv), FBX_OK);
	/* A corrupt record read does not break the write transaction. */
	CHECK_RC(fbx_store_dlv_set_state(t, FBX_DLV_ID(7, 2), FBX_D_SENT, 0,
	    1, 1, NULL, NULL), FBX_OK);
	/* Overwriting a corrupt record repairs it. */
	mk_dlv(&d, FBX_DLV_ID(7, 1), "repaired", 100);
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(7, 1), &g), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	fbx_store_close(st);

	/* A schema newer than ours is refused. The value follows its key
	 * in the leaf node. */
	CHECK(patch_file(dir, "schema\x04\0\0\0", "schema\x05\0\0\0", 10) >= 1);
	{
		struct fbx_store_opts o = { 0 };
		fbx_store *st2 = NULL;
		char url[512];
		o.path = dir;
		o.durability = FBX_DURABLE_NOSYNC;
		if (pg_url != NULL) {
			pg_store_url(url, sizeof(url), dir);
			o.url = url;
		}
		CHECK_RC(fbx_store_open(&o, &st2), FBX_ECORRUPT);
		CHECK(st2 == NULL);
		fbx_store_close(st2);
	}
	CHECK(patch_file(dir, "schema\x05\0\0\0", "schema\x02\0\0\0", 10) >= 1);
	/* a schema 2 store becomes 4 at open (deferred index marks, v4
	 * command headers: an older binary must refuse it from then on) */
	st = open_store(dir, 0, 0);
	CHECK(st != NULL);
	fbx_store_close(st);
	CHECK(patch_file(dir, "schema\x04\0\0\0", "schema\x03\0\0\0", 10) >= 1);
	/* and a schema 3 store becomes 4 */
	st = open_store(dir, 0, 0);
	CHECK(st != NULL);
	fbx_store_close(st);
	CHECK(patch_file(dir, "schema\x04\0\0\0", "schema\x04\0\0\0", 10) >= 1);
}

static void
test_not_a_store(void)
{
	struct fbx_store_opts o = { 0 };
	fbx_store *st = NULL;
	char dir[128], path[160];
	unsigned char junk[8192];
	FILE *f;

	subdir(dir, sizeof(dir), "junk");
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 31 + 7);
	f = fopen(path, "wb");
	if (f != NULL) {
		fwrite(junk, 1, sizeof(junk), f);
		fclose(f);
	}
	o.path = dir;
	CHECK_RC(fbx_store_open(&o, &st), FBX_ECORRUPT);
	CHECK(st == NULL);

	/* Bad options. */
	o.path = NULL;
	CHECK_RC(fbx_store_open(&o, &st), FBX_EINVALID);
	o.path = dir;
	o.durability = 9;
	CHECK_RC(fbx_store_open(&o, &st), FBX_EINVALID);
	o.durability = 0;
	o.map_size = 8 << 20;
	o.map_size_max = 4 << 20;
	CHECK_RC(fbx_store_open(&o, &st), FBX_EINVALID);
	/* A path under a regular file cannot be created. */
	snprintf(path, sizeof(path), "%s/data.mdb/sub", dir);
	o.path = path;
	o.map_size = 0;
	o.map_size_max = 0;
	CHECK_RC(fbx_store_open(&o, &st), FBX_EIO);
}

static void
test_readers(fbx_store *st)
{
	fbx_txn *ts[100];
	struct fbx_delivery d;
	int ok = 1;

	for (int i = 0; i < 1000; i++) {
		fbx_txn *t = NULL;
		int rc = fbx_txn_begin(st, 0, &t);
		if (rc != FBX_OK) {
			ok = 0;
			break;
		}
		rc = fbx_store_dlv_get(t, FBX_DLV_ID(1, 1), &d);
		if (rc != FBX_OK)
			ok = 0;
		if (i % 2)
			fbx_txn_abort(t);
		else if (fbx_txn_commit(t) != FBX_OK)
			ok = 0;
	}
	CHECK(ok);
	/* 100 at once (fewer than the 126 slots), twice over. */
	for (int round = 0; round < 2; round++) {
		int n = 0;
		for (; n < 100; n++) {
			if (fbx_txn_begin(st, 0, &ts[n]) != FBX_OK)
				break;
		}
		CHECK(n == 100);
		while (n > 0)
			fbx_txn_abort(ts[--n]);
	}
	fbx_txn_abort(NULL);
}

/* child_open - in a child process: open the store at dir, then either
 * die inside a read transaction (hold == 0) or keep the environment open
 * until `wait_fd` reaches end of file (hold == 1). Writes one byte to
 * ready_fd once open. Never returns. */
static void
child_open(const char *dir, int hold, int ready_fd, int wait_fd)
{
	struct fbx_store_opts o = { 0 };
	fbx_store *st = NULL;
	fbx_txn *t = NULL;
	char c = 1;

	o.path = dir;
	o.durability = FBX_DURABLE_NOSYNC;
	if (fbx_store_open(&o, &st) != FBX_OK ||
	    fbx_txn_begin(st, 0, &t) != FBX_OK)
		_exit(1);
	if (hold) {
		fbx_txn_abort(t);
		if (write(ready_fd, &c, 1) != 1)
			_exit(1);
		while (read(wait_fd, &c, 1) > 0)
			;
		fbx_store_close(st);
	}
	_exit(0); /* holder: done; dier: no abort, the slot stays taken */
}

/* test_stale_reader - a process that dies inside a read transaction
 * leaves its reader slot behind while another process keeps the
 * environment open (the first opener resets the table); the next open
 * clears it. */
static void
test_stale_reader(void)
{
	struct fbx_store_stat ss;
	char dir[128], c;
	fbx_store *st;
	pid_t holder, dier;
	int ready[2], hold[2], status = -1;

	subdir(dir, sizeof(dir), "stale");
	st = open_store(dir, 0, 0);
	fbx_store_close(st);
	if (pipe(ready) != 0 || pipe(hold) != 0) {
		failed++;
		return;
	}
	holder = fork();
	if (holder == 0) {
		close(ready[0]);
		close(hold[1]);
		child_open(dir, 1, ready[1], hold[0]);
	}
	close(ready[1]);
	close(hold[0]);
	CHECK(holder > 0 && read(ready[0], &c, 1) == 1);
	dier = fork();
	if (dier == 0)
		child_open(dir, 0, -1, -1);
	CHECK(dier > 0);
	if (dier > 0) {
		waitpid(dier, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	st = open_store(dir, 0, 0);
	if (st != NULL) {
		CHECK_RC(fbx_store_stat(st, &ss), FBX_OK);
		CHECK(ss.readers_cleared == 1);
		fbx_store_close(st);
	}
	close(hold[1]); /* lets the holder close and exit */
	close(ready[0]);
	if (holder > 0) {
		waitpid(holder, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

/* ---- optional figures --------------------------------------------------- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* run_batches - apply op to deliveries [0, total) in write transactions
 * of `batch`, growing the map when needed. Returns seconds taken. */
static double
run_batches(fbx_store *st, uint32_t total, uint32_t batch, int op)
{
	struct fbx_delivery d;
	char dev[40];
	double t0 = now_s();

	for (uint32_t b = 0; b < total; b += batch) {
		fbx_txn *t = NULL;
		int rc;

		if (fbx_store_reserve(st, (size_t)batch * 256) != FBX_OK ||
		    fbx_txn_begin(st, 1, &t) != FBX_OK) {
			failed++;
			return 0;
		}
		rc = FBX_OK;
		for (uint32_t i = b; i < b + batch && i < total &&
		     rc == FBX_OK; i++) {
			uint64_t id = FBX_DLV_ID(1 + i / 100000, i % 100000);
			if (op == 0) {
				snprintf(dev, sizeof(dev),
				    "%08x-1111-4222-8333-%012x", i, i * 7);
				mk_dlv(&d, id, dev, 1700000000000 + i / 100);
				rc = fbx_store_dlv_put(t, &d);
			} else {
				rc = fbx_store_dlv_set_state(t, id, op, 0,
				    1700000060000 + i / 100 + op * 1000,
				    op == FBX_D_SENT, NULL, NULL);
			}
		}
		if (rc != FBX_OK) {
			fprintf(stderr, "big: %s\n", fbx_errname(rc));
			fbx_txn_abort(t);
			failed++;
			return 0;
		}
		if (fbx_txn_commit(t) != FBX_OK) {
			failed++;
			return 0;
		}
	}
	return now_s() - t0;
}

static void
big(void)
{
	struct fbx_store_stat ss;
	const uint32_t total = 1000000, batch = 50000;
	char dir[128];
	fbx_store *st;
	double s;

	subdir(dir, sizeof(dir), "big");
	st = open_store(dir, 0, 0);
	if (st == NULL)
		return;
	s = run_batches(st, total, batch, 0);
	fbx_store_stat(st, &ss);
	printf("big: insert %u deliveries: %.2f s, %.0f/s; used %zu bytes, "
	       "%.1f bytes per delivery (file %zu)\n", total, s,
	    s > 0 ? total / s : 0.0, ss.used_bytes,
	    (double)ss.used_bytes / total, ss.file_bytes);
	s = run_batches(st, total, batch, FBX_D_SENT);
	fbx_store_stat(st, &ss);
	printf("big: set_state SENT: %.2f s, %.0f/s; %.1f bytes per "
	       "delivery\n", s, s > 0 ? total / s : 0.0,
	    (double)ss.used_bytes / total);
	s = run_batches(st, total, batch, FBX_D_SUCCEEDED);
	fbx_store_stat(st, &ss);
	printf("big: set_state SUCCEEDED: %.2f s, %.0f/s; %.1f bytes per "
	       "delivery, map %zu MiB, file %zu MiB\n", s,
	    s > 0 ? total / s : 0.0, (double)ss.used_bytes / total,
	    ss.map_size >> 20, ss.file_bytes >> 20);
	fbx_store_close(st);
}

static int
kv_count_cb(void *arg, const char *key, const void *val, size_t len)
{
	(void)key;
	(void)val;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

static int
audit_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	uint64_t *sum = arg;

	(void)rec;
	*sum += seq * 1000 + len;
	return 0;
}

static int
org_cb(void *arg, const char *org, uint32_t devices)
{
	(void)org;
	*(uint32_t *)arg += devices;
	return 0;
}

/* mk_arec - an audit record v1 (ver, prev, hash, at_ms, org, actor,
 * action, note, params) with `extra` bytes of params; returns its
 * length. */
static size_t
mk_arec(uint8_t *b, const char *org, size_t extra)
{
	size_t n = 0, on = strlen(org);

	memset(b, 0, 1 + 64 + 8);
	b[0] = 1;
	n = 1 + 64 + 8;
	b[n++] = (uint8_t)on;
	memcpy(b + n, org, on);
	n += on;
	b[n++] = 0;  /* actor */
	b[n++] = 1;  /* action */
	b[n++] = 'x';
	b[n++] = 0;  /* note */
	b[n++] = 0;
	b[n++] = (uint8_t)extra; /* params */
	b[n++] = 0;
	memset(b + n, '{', extra);
	return n + extra;
}

/* test_retention_and_logs - kv, audit log, range deletion of deliveries,
 * command deletion and the organisation list. */
static void
test_retention_and_logs(const char *dir)
{
	fbx_store *st = open_store(dir, 0, 0);
	fbx_txn *t = NULL;
	struct fbx_command c;
	struct fbx_delivery d;
	uint64_t seq = 0, sum = 0, got;
	uint32_t deleted = 0, devs = 0;
	uint8_t arec[128];
	char buf[128];
	size_t len = 0;
	int n = 0;

	if (st == NULL)
		return;
	CHECK_RC(fbx_txn_begin(st, 1, &t), FBX_OK);
	CHECK_RC(fbx_store_kv_put(t, "brk/a/x", "1", 1), FBX_OK);
	CHECK_RC(fbx_store_kv_put(t, "brk/ab/x", "22", 2), FBX_OK);
	CHECK_RC(fbx_store_kv_put(t, "brk/a/y", "333", 3), FBX_OK);
	CHECK_RC(fbx_store_kv_get(t, "brk/ab/x", buf, sizeof(buf), &len),
	    FBX_OK);
	CHECK(len == 2 && memcmp(buf, "22", 2) == 0);
	CHECK_RC(fbx_store_kv_scan(t, "brk/a/", kv_count_cb, &n), FBX_OK);
	CHECK(n == 2); /* "brk/ab/" is another organisation */
	CHECK_RC(fbx_store_kv_del(t, "brk/a/y"), FBX_OK);
	CHECK_RC(fbx_store_kv_get(t, "brk/a/y", buf, sizeof(buf), &len),
	    FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_audit_last(t, &seq, NULL, 0, NULL), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_audit_put(t, 1, arec, mk_arec(arec, "a", 0)),
	    FBX_OK);
	CHECK_RC(fbx_store_audit_put(t, 2, arec, mk_arec(arec, "a", 1)),
	    FBX_OK);
	CHECK_RC(fbx_store_audit_put(t, 2, arec, mk_arec(arec, "a", 2)),
	    FBX_EINVALID);
	/* a record that does not parse is refused, the txn stays usable */
	CHECK_RC(fbx_store_audit_put(t, 3, "r22", 3), FBX_EINVALID);
	CHECK_RC(fbx_store_audit_last(t, &seq, buf, sizeof(buf), &len), FBX_OK);
	CHECK(seq == 2 && len == mk_arec(arec, "a", 1));
	CHECK_RC(fbx_store_audit_scan(t, 0, audit_cb, &sum), FBX_OK);
	CHECK(sum == 1000 + mk_arec(arec, "a", 0) + 2000 + mk_arec(arec, "a", 1));
	/* a command with 5000 deliveries; delete 1000 from the middle */
	memset(&c, 0, sizeof(c));
	snprintf(c.org, sizeof(c.org), "ret");
	snprintf(c.idem_key, sizeof(c.idem_key), "k1");
	c.type = FBX_CMD_LOCK;
	c.origin = FBX_ORIGIN_OPERATOR;
	c.target_kind = FBX_TARGET_ORG;
	c.state = FBX_C_DONE;
	c.created_ms = 1000;
	CHECK_RC(fbx_store_cmd_append(t, &c), FBX_OK);
	for (uint32_t i = 0; i < 5000; i++) {
		memset(&d, 0, sizeof(d));
		d.id = FBX_DLV_ID(c.id, i);
		d.state = FBX_D_SUCCEEDED;
		snprintf(d.device, sizeof(d.device), "dev-%u", i);
		CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	}
	CHECK_RC(fbx_store_dlv_delete_range(t, FBX_DLV_ID(c.id, 1000),
	             FBX_DLV_ID(c.id, 2000), 0, &deleted),
	    FBX_OK);
	CHECK(deleted == 1000);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(c.id, 999), &d), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(c.id, 1000), &d),
	    FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(c.id, 2000), &d), FBX_OK);
	/* bounded: at most `limit` per call */
	CHECK_RC(fbx_store_dlv_delete_range(t, FBX_DLV_ID(c.id, 0),
	             FBX_DLV_ID(c.id + 1, 0), 700, &deleted),
	    FBX_OK);
	CHECK(deleted == 700);
	CHECK_RC(fbx_store_dlv_delete_range(t, FBX_DLV_ID(c.id, 0),
	             FBX_DLV_ID(c.id + 1, 0), 0, &deleted),
	    FBX_OK);
	CHECK(deleted == 3300);
	CHECK_RC(fbx_store_cmd_delete(t, c.id), FBX_OK);
	CHECK_RC(fbx_store_cmd_get(t, c.id, &c), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_idem_get(t, "ret", "k1", &got), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_org_list(t, org_cb, &devs), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	/* an audit record through a read transaction is refused up front,
	 * as every other writer's, and the transaction stays usable */
	t = rtxn(st);
	CHECK_RC(fbx_store_audit_put(t, 3, arec, mk_arec(arec, "a", 2)),
	    FBX_EINVALID);
	CHECK_RC(fbx_store_audit_last(t, &seq, NULL, 0, NULL), FBX_OK);
	CHECK(seq == 2);
	fbx_txn_abort(t);
	fbx_store_close(st);
}

/* ---- the hot paths: in-place moves, held-back creation, brief scans ---- */

/* same_dlv - two decoded deliveries alike but for their id. */
static int
same_dlv(const struct fbx_delivery *a, const struct fbx_delivery *b)
{
	if (a->state != b->state || a->code != b->code ||
	    a->attempts != b->attempts || a->updated_ms != b->updated_ms ||
	    strcmp(a->device, b->device) != 0 || a->nhist != b->nhist)
		return 0;
	for (unsigned i = 0; i < a->nhist; i++) {
		if (a->hist[i].state != b->hist[i].state ||
		    a->hist[i].code != b->hist[i].code ||
		    a->hist[i].at_ms != b->hist[i].at_ms)
			return 0;
	}
	return 1;
}

struct brief_col {
	char ids[8][FBX_ID_MAX + 1];
	uint8_t platform[8], online[8];
	int n;
};

static int
brief_collect(void *arg, const struct fbx_dev_brief *b)
{
	struct brief_col *c = arg;

	if (c->n < 8) {
		memcpy(c->ids[c->n], b->id, b->id_len);
		c->ids[c->n][b->id_len] = '\0';
		c->platform[c->n] = b->platform;
		c->online[c->n] = b->online;
		c->n++;
	}
	return 0;
}

static int
full_collect(void *arg, const struct fbx_device *d)
{
	struct brief_col *c = arg;

	if (c->n < 8) {
		snprintf(c->ids[c->n], sizeof(c->ids[c->n]), "%s", d->id);
		c->platform[c->n] = d->platform;
		c->online[c->n] = d->online;
		c->n++;
	}
	return 0;
}

/* test_fast_paths - fbx_store_dlv_step on records the general writer
 * (fbx_store_dlv_put, fbx_store_dlv_transition) wrote reads and writes
 * them as the general path does, full history included; created
 * deliveries held back are seen by every reader, go up with a child's
 * commit and vanish with an abort; the brief device scan sees what the
 * full scan sees. */
/* test_step_after_gaps - fbx_store_dlv_step's cursor (kept for the
 * transaction, stepped on when the next id is asked) after the key it
 * sat on was deleted by fbx_store_dlv_delete_range, and after a step to
 * an id that is not there: each later step moves exactly its own record
 * (LMDB and PostgreSQL answer a cursor on a deleted key differently;
 * the step checks what it finds before it writes). */
static void
test_step_after_gaps(const char *dir)
{
	struct fbx_delivery d, a;
	struct fbx_dlv_head h;
	fbx_store *st = open_store(dir, 0, 0);
	fbx_txn *t;
	uint32_t n = 0;
	int old;

	if (st == NULL)
		return;
	t = wtxn(st);
	for (uint32_t i = 0; i < 10; i++) {
		mk_dlv(&d, FBX_DLV_ID(6, i), "gap-dev", 100);
		CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	}
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	t = wtxn(st);
	/* the cursor on 3, then 3..5 deleted under it */
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 3), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 200, 1, &old, &h), FBX_OK);
	CHECK_RC(fbx_store_dlv_delete_range(t, FBX_DLV_ID(6, 3),
	    FBX_DLV_ID(6, 6), 0, &n), FBX_OK);
	CHECK(n == 3);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 6), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 201, 1, &old, &h), FBX_OK);
	CHECK(h.id == FBX_DLV_ID(6, 6) && h.state == FBX_D_SENT);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 4), ~0u, FBX_D_SENT, 0,
	    202, 1, &old, &h), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 7), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 203, 1, &old, &h), FBX_OK);
	/* a step to an id past the last, then one back in the table */
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 20), ~0u, FBX_D_SENT, 0,
	    204, 1, &old, &h), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 1), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 205, 1, &old, &h), FBX_OK);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 2), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 206, 1, &old, &h), FBX_OK);
	/* on 2, asked for 3 (deleted): the step lands on 6, not 3 */
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(6, 3), ~0u, FBX_D_SENT, 0,
	    207, 1, &old, &h), FBX_ENOT_FOUND);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	/* each moved record has its own one move, the others none */
	t = rtxn(st);
	for (uint32_t i = 0; i < 10; i++) {
		int64_t at = i == 6 ? 201 : i == 7 ? 203 : i == 1 ? 205
		    : i == 2 ? 206 : 0;
		int rc = fbx_store_dlv_get(t, FBX_DLV_ID(6, i), &a);
		if (i >= 3 && i <= 5) {
			CHECK_RC(rc, FBX_ENOT_FOUND);
			continue;
		}
		CHECK_RC(rc, FBX_OK);
		if (at != 0)
			CHECK(a.state == FBX_D_SENT && a.nhist == 2 &&
			    a.hist[1].at_ms == at && a.attempts == 1);
		else
			CHECK(a.state == FBX_D_QUEUED && a.nhist == 1);
	}
	fbx_txn_abort(t);
	fbx_store_close(st);
}

static void
test_fast_paths(const char *dir)
{
	static const struct {
		int to;
		uint16_t code;
		int64_t at;
		int attempt;
	} moves[] = {
		{ FBX_D_SENT, 0, 2000, 1 }, { FBX_D_ACCEPTED, 0, 2100, 0 },
		{ FBX_D_QUEUED, 0, 1900, 0 }, { FBX_D_SENT, 0, 9000000, 1 },
		{ FBX_D_PENDING, 300, 9000100, 0 },
		{ FBX_D_QUEUED, 0, -5, 0 }, { FBX_D_SENT, 65535, 7, 1 },
	};
	struct fbx_delivery d, a, b;
	struct fbx_dlv_head h;
	struct brief_col bc, fc;
	struct dlv_col col;
	fbx_store *st = open_store(dir, 0, 0);
	fbx_txn *t, *c;
	uint64_t ia = FBX_DLV_ID(3, 1), ib = FBX_DLV_ID(3, 2);
	int old;

	if (st == NULL)
		return;
	/* records of the general writer, moved both ways, 40 moves so the
	 * history fills and the oldest entries after the first drop */
	t = wtxn(st);
	mk_dlv(&d, ia, "twin-device-0123456789", 1000);
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	d.id = ib;
	CHECK_RC(fbx_store_dlv_put(t, &d), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	for (int i = 0; i < 40; i++) {
		int to = moves[i % 7].to, ob = -1, oa = -1;
		t = wtxn(st);
		CHECK_RC(fbx_store_dlv_transition(t, ia, ~0u, to,
		    moves[i % 7].code, moves[i % 7].at + i,
		    moves[i % 7].attempt, &oa, NULL), FBX_OK);
		CHECK_RC(fbx_store_dlv_step(t, ib, ~0u, to, moves[i % 7].code,
		    moves[i % 7].at + i, moves[i % 7].attempt, &ob, &h),
		    FBX_OK);
		CHECK(oa == ob && h.state == to && h.id == ib &&
		    strcmp(h.device, "twin-device-0123456789") == 0);
		CHECK_RC(fbx_store_dlv_get(t, ia, &a), FBX_OK);
		CHECK_RC(fbx_store_dlv_get(t, ib, &b), FBX_OK);
		CHECK(same_dlv(&a, &b));
		CHECK(h.attempts == b.attempts && h.code == b.code &&
		    h.updated_ms == b.updated_ms);
		CHECK_RC(fbx_txn_commit(t), FBX_OK);
	}
	CHECK(b.nhist == FBX_HIST_MAX && b.hist[0].at_ms == 1000);
	/* a refused move writes nothing and tells the state found */
	t = wtxn(st);
	CHECK_RC(fbx_store_dlv_step(t, ib, FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SUCCEEDED, 0, 5, 0, &old, &h), FBX_ESTATE);
	CHECK(old == b.state);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(3, 99), ~0u, FBX_D_SENT, 0,
	    5, 1, &old, &h), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dlv_get(t, ib, &a), FBX_OK);
	CHECK(same_dlv(&a, &b));
	fbx_txn_abort(t);

	/* held back: created and sent in one transaction is one record
	 * alike to created, written, then moved */
	t = wtxn(st);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(4, 0), FBX_D_QUEUED,
	    "dev-a", 5, 3000, 0), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(4, 1), FBX_D_QUEUED,
	    "dev-a", 5, 3000, 0), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(4, 2), FBX_D_PENDING,
	    "dev-b", 5, 3000, 0), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(4, 3), FBX_D_QUEUED,
	    "dev-c", 5, 3000, 1), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(4, 4), FBX_D_QUEUED,
	    "d\0x", 3, 3000, 0), FBX_EINVALID);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(4, 0), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 3001, 1, &old, &h), FBX_OK);
	CHECK(old == FBX_D_QUEUED && h.attempts == 1 &&
	    strcmp(h.device, "dev-a") == 0);
	/* a move a held-back PENDING one may not take is refused */
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(4, 2), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 3001, 1, &old, &h), FBX_ESTATE);
	CHECK(old == FBX_D_PENDING);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	t = wtxn(st);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(4, 1), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 3001, 1, &old, &h), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(4, 0), &a), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(4, 1), &b), FBX_OK);
	CHECK(same_dlv(&a, &b) && a.nhist == 2 && a.attempts == 1 &&
	    a.hist[0].state == FBX_D_QUEUED && a.hist[1].state == FBX_D_SENT &&
	    a.hist[1].at_ms == 3001 && a.state == FBX_D_SENT);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(4, 3), &a), FBX_OK);
	CHECK(a.state == FBX_D_SENT && a.nhist == 2 && a.attempts == 1);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(4, 2), &a), FBX_OK);
	CHECK(a.state == FBX_D_PENDING && strcmp(a.device, "dev-b") == 0);
	/* the result lands in place on the once-written record */
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(4, 0), FBXS_MASK(FBX_D_SENT),
	    FBX_D_SUCCEEDED, 0, 3002, 0, &old, &h), FBX_OK);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(4, 1), FBXS_MASK(FBX_D_SENT),
	    FBX_D_SUCCEEDED, 0, 3002, 0, &old, &h), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(4, 0), &a), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(4, 1), &b), FBX_OK);
	CHECK(same_dlv(&a, &b) && a.nhist == 3);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);

	/* held back in a child: up with its commit, gone with its abort,
	 * gone with the parent's abort; a scan sees them */
	t = wtxn(st);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(5, 0), FBX_D_QUEUED,
	    "p0", 2, 1, 0), FBX_OK);
	CHECK_RC(fbx_txn_begin_child(t, &c), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(c, FBX_DLV_ID(5, 0), &a), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(c, FBX_DLV_ID(5, 1), FBX_D_QUEUED,
	    "c1", 2, 1, 0), FBX_OK);
	CHECK_RC(fbx_txn_commit(c), FBX_OK);
	CHECK_RC(fbx_txn_begin_child(t, &c), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(c, FBX_DLV_ID(5, 2), FBX_D_QUEUED,
	    "c2", 2, 1, 0), FBX_OK);
	fbx_txn_abort(c);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(5, 1), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 2, 1, &old, &h), FBX_OK);
	CHECK(strcmp(h.device, "c1") == 0);
	memset(&col, 0, sizeof(col));
	col.ordered = 1;
	CHECK_RC(fbx_store_dlv_scan(t, FBX_DLV_ID(5, 0), FBX_DLV_ID(6, 0), 0,
	    dlv_collect, &col), FBX_OK);
	CHECK(col.n == 2 && col.ordered);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(5, 3), FBX_D_QUEUED,
	    "p3", 2, 1, 0), FBX_OK);
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	t = wtxn(st);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(5, 1), &a), FBX_OK);
	CHECK(a.state == FBX_D_SENT);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(5, 2), &a), FBX_ENOT_FOUND);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(5, 3), &a), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(5, 4), FBX_D_QUEUED,
	    "p4", 2, 1, 0), FBX_OK);
	CHECK_RC(fbx_store_dlv_create(t, FBX_DLV_ID(5, 5), FBX_D_QUEUED,
	    "p5", 2, 1, 0), FBX_OK);
	/* a read of an older one, then of a held-back one */
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(5, 3), &a), FBX_OK);
	CHECK(strcmp(a.device, "p3") == 0);
	CHECK_RC(fbx_store_dlv_step(t, FBX_DLV_ID(5, 4), FBXS_MASK(FBX_D_QUEUED),
	    FBX_D_SENT, 0, 2, 1, &old, &h), FBX_OK);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(5, 4), &a), FBX_OK);
	CHECK(a.state == FBX_D_SENT && a.nhist == 2 &&
	    strcmp(a.device, "p4") == 0);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(5, 5), &a), FBX_OK);
	CHECK(a.state == FBX_D_QUEUED && strcmp(a.device, "p5") == 0);
	fbx_txn_abort(t);
	t = rtxn(st);
	CHECK_RC(fbx_store_dlv_get(t, FBX_DLV_ID(5, 4), &a), FBX_ENOT_FOUND);
	fbx_txn_abort(t);

	/* the brief scan sees what the full scan sees, by group too */
	t = wtxn(st);
	for (int i = 0; i < 4; i++) {
		struct fbx_device dv;
		char id[16];
		snprintf(id, sizeof(id), "bd-%d", i);
		mk_dev(&dv, "bo", id);
		dv.platform = (uint8_t)(i % 2 ? FBX_PLATFORM_IOS
		                              : FBX_PLATFORM_ANDROID);
		dv.online = (uint8_t)(i < 2);
		if (i != 1)
			set_groups(&dv, "g1", NULL);
		CHECK_RC(fbx_store_dev_put(t, &dv, NULL), FBX_OK);
	}
	for (int g = 0; g < 2; g++) {
		const char *grp = g ? "g1" : NULL;
		memset(&bc, 0, sizeof(bc));
		memset(&fc, 0, sizeof(fc));
		CHECK_RC(fbx_store_dev_scan_brief(t, "bo", grp, "bd-0", 0,
		    brief_collect, &bc), FBX_OK);
		CHECK_RC(fbx_store_dev_scan(t, "bo", grp, "bd-0", 0,
		    full_collect, &fc), FBX_OK);
		CHECK(bc.n == (g ? 2 : 3) && bc.n == fc.n);
		for (int i = 0; i < bc.n; i++)
			CHECK(strcmp(bc.ids[i], fc.ids[i]) == 0 &&
			    bc.platform[i] == fc.platform[i] &&
			    bc.online[i] == fc.online[i]);
	}
	CHECK_RC(fbx_txn_commit(t), FBX_OK);
	fbx_store_close(st);
}

/* ---- PostgreSQL: one writing process a store -------------------------- */

/* test_pg_owner - one process writes a store at a time: a second open
 * of the same store is refused with BUSY while the first is open, and
 * works once it is closed (a killed process's session ends the same
 * way); another store of the same database is not affected */
static void
test_pg_owner(const char *dir, const char *other)
{
	struct fbx_store_opts o = { 0 };
	fbx_store *st = open_store(dir, 0, 0), *st2 = NULL, *st3;
	char url[512];

	if (st == NULL)
		return;
	pg_store_url(url, sizeof(url), dir);
	o.path = dir;
	o.url = url;
	o.durability = FBX_DURABLE_FULL;
	CHECK_RC(fbx_store_open(&o, &st2), FBX_EBUSY);
	CHECK(st2 == NULL);
	st3 = open_store(other, 0, 0); /* another schema: its own lock */
	CHECK(st3 != NULL);
	fbx_store_close(st3);
	fbx_store_close(st);
	CHECK_RC(fbx_store_open(&o, &st2), FBX_OK);
	fbx_store_close(st2);
}

int
main(void)
{
	char dir[128], gdir[128], rdir[128];
	const char *b = getenv("FBX_STORE_BIG");
	fbx_store *st;

	if (st_begin("fbx_store_test") != 0)
		return 2;
	subdir(dir, sizeof(dir), "main/nested");
	st = open_store(dir, 0, 0);
	if (st != NULL) {
		struct fbx_store_stat ss;
		CHECK_RC(fbx_store_stat(st, &ss), FBX_OK);
		CHECK(ss.commands == 0 && ss.deliveries == 0 &&
		    ss.devices == 0 && ss.readers_cleared == 0);
		if (pg_url == NULL)
			CHECK(ss.map_size == 64u << 20 && ss.file_bytes > 0);
		test_commands(st);
		test_deliveries(st);
		test_pend(st);
		test_devices(st);
		test_readers(st);
		CHECK_RC(fbx_store_stat(st, &ss), FBX_OK);
		CHECK(ss.commands == 5 && ss.devices == 3);
		fbx_store_close(st);
		test_persistence(dir);
		test_corrupt(dir);
	}
	if (pg_url == NULL) {
		/* files, the map and reader slots are LMDB's */
		test_not_a_store();
		test_stale_reader();
		subdir(gdir, sizeof(gdir), "grow");
		test_growth(gdir);
	} else {
		subdir(gdir, sizeof(gdir), "pgowner");
		subdir(rdir, sizeof(rdir), "pgowner2");
		test_pg_owner(gdir, rdir);
	}
	subdir(rdir, sizeof(rdir), "retention");
	test_retention_and_logs(rdir);
	subdir(rdir, sizeof(rdir), "fast");
	test_fast_paths(rdir);
	subdir(rdir, sizeof(rdir), "gaps");
	test_step_after_gaps(rdir);
	if (b != NULL && strcmp(b, "1") == 0)
		big();

	return st_end();
}
