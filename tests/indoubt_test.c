/*
 * indoubt_test.c - the engine on a PostgreSQL store whose writer loses
 * the server's answer to COMMIT (a failover, a cut connection right after
 * the server answered). The store asks the server on a new connection
 * what became of the transaction (store_pg.c in_doubt), and the engine
 * answers what is true:
 *
 * - committed: the turn happened; the submitter gets its command, the
 *   delivery leaves once and its result is recorded once;
 * - rolled back: IO, "not recorded" (as for any failed commit);
 * - unknown (the server cannot be asked in time): TIMEOUT, "outcome
 *   unknown", not "not recorded"; nothing of the turn leaves; memory is
 *   rebuilt from the store, so the command the server did commit is
 *   delivered once, and a retry with the same idempotency key gets that
 *   command, not a second one. Writes refused later while the engine is
 *   degraded are answered IO ("not recorded"), not TIMEOUT;
 * - unknown, and decided only later (the old session still committing,
 *   e.g. waiting for a synchronous standby): the rebuild right after the
 *   failed turn cannot see it, so memory is read again once the next
 *   write transaction holds the writers' lock (which the old one held):
 *   the command is then delivered once.
 *
 * Run by tests/pg_cluster.sh (FBX_TEST_PG_URL); fails without it.
 */
#include <stdio.h>
#include <string.h>

#include "engine_fake.h"
#include "fbx_store.h"

/* submit_key - an operator's query to acme-d00000 with an idempotency
 * key, one turn; @return the reply's err, *id and *dup from it */
static int
submit_key(struct env *t, const char *key, uint64_t *id, int *dup,
    char *msg, size_t msgcap)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id one = "acme-d00000";
	int rc;

	query_req(&req);
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.dev_ids = &one;
	req.u.submit.cmd.ndev_ids = 1;
	snprintf(req.u.submit.cmd.idem_key, sizeof(req.u.submit.cmd.idem_key),
	    "%s", key);
	console(t, "ops", "acme", &req);
	turn(t);
	rc = reply(t, "ops", &rep);
	*id = rc == FBX_OK ? rep.u.submit.command_id : 0;
	*dup = rc == FBX_OK ? rep.u.submit.duplicate : 0;
	if (msg != NULL)
		snprintf(msg, msgcap, "%s", rep.errmsg);
	fbx_console_rep_free(&rep);
	return rc;
}

/* settle - answer every delivery seen so far as succeeded, let the
 * engine record them */
static void
settle(struct env *t, struct gw_seen *s, uint64_t batch)
{
	results(t, "g1", batch, s->ids, s->nids, FBX_R_SUCCEEDED);
	turn(t);
	turn(t);
	drain_gw(t, "g1", s);
}

/* open_acme - the engine on PostgreSQL, acme's 4 devices, gateway g1
 * (window 100) connected; @return 0, or -1 (checked, nothing to close) */
static int
open_acme(struct env *t, const char *name, struct gw_seen *s)
{
	memset(s, 0, sizeof(*s));
	CHECK(env_open_pg(t, name) == 0, "open on PostgreSQL");
	if (t->e == NULL)
		return -1;
	enroll(t, "acme", 4);
	hello(t, "g1", "acme", 100);
	turn(t);
	drain_gw(t, "g1", s);
	return 0;
}

/* kept_once - after a turn in doubt whose command the store kept:
 * once writes work again, the command's one delivery leaves once, a
 * retry with its key gets it (duplicate), and its result ends it;
 * @return its id */
static uint64_t
kept_once(struct env *t, struct gw_seen *s, const char *key)
{
	struct fbx_command info;
	uint64_t id = 0;
	int dup = 0;

	advance(t, 10000);
	heartbeat(t, "g1");
	turn(t);
	turn(t);
	drain_gw(t, "g1", s);
	CHECK(submit_key(t, key, &id, &dup, NULL, 0) == FBX_OK && id != 0 &&
	        dup,
	    "retry with the key: id %llu dup %d", (unsigned long long)id, dup);
	turn(t);
	drain_gw(t, "g1", s);
	CHECK(s->nids == 1, "deliveries of the command in doubt: %zu",
	    s->nids);
	settle(t, s, 1);
	CHECK(counts(t, "acme", id, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 1 && info.state == FBX_C_DONE,
	    "after its result: succeeded %u state %d",
	    info.counts[FBX_D_SUCCEEDED], info.state);
	CHECK(s->nids == 1, "deliveries sent in all: %zu", s->nids);
	return id;
}

static void
test_committed(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	uint64_t id = 0, id2 = 0;
	int dup = 0;

	if (open_acme(&t, "indoubt_c", &s) != 0)
		return;

	/* the submit's turn commits; its answer is lost: the store asks,
	 * learns it committed, and the turn goes on as committed */
	fbx_store_test_pg_lose_commit = 1;
	CHECK(submit_key(&t, "k-commit", &id, &dup, NULL, 0) == FBX_OK &&
	        id != 0 && !dup,
	    "submit whose commit answer was lost: id %llu",
	    (unsigned long long)id);
	CHECK(fbx_store_test_pg_lose_commit == 0, "the hook was not hit");
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 1, "deliveries sent: %zu", s.nids);
	settle(&t, &s, 1);
	CHECK(counts(&t, "acme", id, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 1 && info.state == FBX_C_DONE,
	    "after its result: succeeded %u state %d",
	    info.counts[FBX_D_SUCCEEDED], info.state);
	/* the same key again: the same command */
	CHECK(submit_key(&t, "k-commit", &id2, &dup, NULL, 0) == FBX_OK &&
	        id2 == id && dup,
	    "retry: id %llu dup %d", (unsigned long long)id2, dup);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 1, "deliveries sent in all: %zu", s.nids);

	/* rolled back, answer lost: IO, nothing recorded */
	fbx_store_test_pg_lose_commit = 2;
	{
		char msg[256];
		int rc = submit_key(&t, "k-rolled", &id, &dup, msg,
		    sizeof(msg));
		CHECK(rc == FBX_EIO && strstr(msg, "not recorded") != NULL,
		    "rolled back: %d '%s'", rc, msg);
	}
	env_close(&t);
}

static void
test_unknown(void)
{
	struct env t;
	struct gw_seen s;
	uint64_t id = 0;
	char msg[256];
	int dup = 0, rc;

	if (open_acme(&t, "indoubt_u", &s) != 0)
		return;

	/* committed, and the store cannot learn it: TIMEOUT, the outcome
	 * is unknown; nothing of the turn leaves */
	fbx_store_test_pg_lose_commit = 3;
	rc = submit_key(&t, "k-unknown", &id, &dup, msg, sizeof(msg));
	CHECK(rc == FBX_ETIMEOUT && strstr(msg, "outcome unknown") != NULL &&
	        strstr(msg, "not recorded") == NULL,
	    "in doubt: %d '%s'", rc, msg);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 0, "sent from a turn in doubt: %zu", s.nids);

	/* still degraded: a new write is refused as not recorded (IO) */
	rc = submit_key(&t, "k-later", &id, &dup, msg, sizeof(msg));
	CHECK(rc == FBX_EIO && strstr(msg, "not recorded") != NULL,
	    "write while degraded: %d '%s'", rc, msg);

	/* writes work again: memory was rebuilt from the store, which has
	 * the command */
	(void)kept_once(&t, &s, "k-unknown");
	env_close(&t);
}

static void
test_decided_later(void)
{
	struct env t;
	struct gw_seen s;
	uint64_t id = 0, id2;
	char msg[256];
	int dup = 0, rc;

	if (open_acme(&t, "indoubt_l", &s) != 0)
		return;

	fbx_store_test_pg_lose_commit = 5;
	rc = submit_key(&t, "k-late", &id, &dup, msg, sizeof(msg));
	CHECK(rc == FBX_ETIMEOUT && strstr(msg, "outcome unknown") != NULL,
	    "in doubt: %d '%s'", rc, msg);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 0, "sent from a turn in doubt: %zu", s.nids);
	/* a write while the old session still holds the store: refused
	 * (not recorded), nothing sent, memory not yet read again */
	advance(&t, 10000);
	rc = submit_key(&t, "k-during", &id, &dup, msg, sizeof(msg));
	CHECK(rc != FBX_OK && rc != FBX_ETIMEOUT &&
	        strstr(msg, "not recorded") != NULL,
	    "write while the old session lives: %d '%s'", rc, msg);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 0, "sent while the old session lives: %zu", s.nids);
	/* the old session's transaction commits now, after the engine's
	 * rebuild of the failed turn */
	CHECK(fbx_store_test_pg_end_held() == 0, "the held transaction");

	id2 = kept_once(&t, &s, "k-late");
	/* and the next command gets the next id (memory's last id was
	 * read again too) */
	CHECK(submit_key(&t, "k-next", &id, &dup, NULL, 0) == FBX_OK &&
	        id == id2 + 1 && !dup,
	    "next submit: id %llu", (unsigned long long)id);
	env_close(&t);
}

/* results_in_doubt - a gateway's results in a turn whose commit is in
 * doubt: looked up as committed, the ACK leaves; unknown (the store did
 * keep them), no ACK leaves, the gateway sends the batch again and gets
 * one ACK, the results count once and the delivery is not sent again */
static void
test_results_in_doubt(void)
{
	struct env t;
	struct gw_seen s;
	struct fbx_command info;
	uint64_t id = 0, id2 = 0;
	int dup = 0;

	if (open_acme(&t, "indoubt_r", &s) != 0)
		return;
	CHECK(submit_key(&t, "k-r1", &id, &dup, NULL, 0) == FBX_OK, "submit");
	CHECK(submit_key(&t, "k-r2", &id2, &dup, NULL, 0) == FBX_OK,
	    "submit");
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nids == 2, "deliveries: %zu", s.nids);

	/* committed, the answer lost and looked up: ACKed */
	fbx_store_test_pg_lose_commit = 1;
	results(&t, "g1", 1, &s.ids[0], 1, FBX_R_SUCCEEDED);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nacks == 1 && s.ack_batch[0] == 1 && s.ack_count[0] == 1,
	    "ACK of a batch committed in doubt: %zu", s.nacks);

	/* committed, outcome unknown to the engine: no ACK */
	fbx_store_test_pg_lose_commit = 3;
	results(&t, "g1", 2, &s.ids[1], 1, FBX_R_SUCCEEDED);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nacks == 1, "an ACK left a turn in doubt: %zu", s.nacks);

	advance(&t, 10000);
	heartbeat(&t, "g1");
	turn(&t);
	turn(&t);
	results(&t, "g1", 2, &s.ids[1], 1, FBX_R_SUCCEEDED);
	turn(&t);
	turn(&t);
	drain_gw(&t, "g1", &s);
	CHECK(s.nacks == 2 && s.ack_batch[1] == 2 && s.ack_count[1] == 1,
	    "ACK of the batch sent again: %zu acks, batch %llu count %u",
	    s.nacks, (unsigned long long)s.ack_batch[1], s.ack_count[1]);
	CHECK(counts(&t, "acme", id, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 1 && info.state == FBX_C_DONE,
	    "first: succeeded %u state %d", info.counts[FBX_D_SUCCEEDED],
	    info.state);
	CHECK(counts(&t, "acme", id2, &info) == FBX_OK &&
	        info.counts[FBX_D_SUCCEEDED] == 1 && info.state == FBX_C_DONE,
	    "second: succeeded %u state %d", info.counts[FBX_D_SUCCEEDED],
	    info.state);
	CHECK(s.nids == 2, "deliveries sent in all: %zu", s.nids);
	env_close(&t);
}

int
main(void)
{
	test_committed();
	test_unknown();
	test_decided_later();
	test_results_in_doubt();
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
