/*
 * rollback_expanding_test.c: a rollback of one group's devices
 * (--group) of a command still expanding, in-process on a fake clock
 * (engine_fake.c), turn by turn. A query to an organisation of 300
 * devices (even ones in group "sales", odd ones in "ops") expands 10
 * devices a turn; after 3 turns the rollback of its "sales" devices is
 * planned (a row says the group's devices not reached yet get nothing)
 * and executed. Then:
 * - the expansion goes on for the "ops" devices: each gets its one
 *   delivery;
 * - every "sales" device it reaches from then on gets a delivery created
 *   cancelled, never sent; also after a restart of the engine in the
 *   middle of the expansion (the rollback's record rbx/ is read back);
 * - at the end every device has exactly one delivery (each is answered
 *   succeeded at once).
 * Before, the expansion went on for the group's devices too: the
 * rollback left them to be sent after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fake.h"

#define ORG "acme"
#define NDEV 300
#define CHUNK 10

static unsigned sent[NDEV];
static int sent_after[NDEV]; /* sent after the rollback executed */

/* drain - what the gateway got, counted by device index (after: sent
 * after the rollback executed); answered succeeded when answer, else
 * kept for the next drain that answers */
static uint64_t unanswered[NDEV * 4];
static size_t nunanswered;

static void
drain(struct env *t, int after, int answer)
{
	static uint64_t batch;
	struct qmsg **pp = &t->io.out[FBX_IO_GATEWAY];

	while (*pp != NULL) {
		struct qmsg *q = *pp;
		struct fbx_eng_msg m;
		*pp = q->next;
		if (fbx_eng_msg_decode(q->body, q->len, &m) == FBX_OK) {
			if (m.kind == FBX_ENG_DELIVERIES)
				for (size_t i = 0; i < m.u.deliveries.n; i++) {
					unsigned k;
					if (sscanf(m.u.deliveries.d[i].device,
					        ORG "-d%05u", &k) == 1 &&
					    k < NDEV) {
						sent[k]++;
						sent_after[k] += after;
					}
					if (nunanswered < NDEV * 4)
						unanswered[nunanswered++] =
						    m.u.deliveries.d[i]
						        .delivery_id;
				}
			fbx_eng_msg_free(&m);
		}
		q_free(q);
	}
	if (answer && nunanswered > 0) {
		results(t, "g1", ++batch, unanswered, nunanswered,
		    FBX_R_SUCCEEDED);
		nunanswered = 0;
		turn(t);
	}
}

/* expand_row - the plan's row for the expansion (no delivery) */
static const struct fbx_rb_row *
expand_row(const struct fbx_console_rep *rep)
{
	for (size_t i = 0; i < rep->u.rollback.nrows; i++)
		if (rep->u.rollback.rows[i].delivery_id == 0)
			return &rep->u.rollback.rows[i];
	return NULL;
}

int
main(void)
{
	struct env t;
	struct fbx_console_rep rep;
	struct fbx_command info;
	const struct fbx_rb_row *row;
	uint64_t cid;
	unsigned before = 0, sales_after = 0, ops_missing = 0, dup = 0;
	unsigned sales_reached_after;
	int rc;

	CHECK(env_open(&t, "rbexp") == 0, "open");
	t.expand_chunk = CHUNK;
	CHECK(env_reopen(&t) == 0, "reopen with %d devices a turn", CHUNK);
	enroll_groups(&t, ORG, NDEV);
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	drain(&t, 0, 1);
	cid = submit_org(&t, ORG);
	CHECK(cid != 0, "query to the organisation");
	for (int i = 0; i < 2; i++) {
		heartbeat(&t, "g1");
		turn(&t);
	}
	drain(&t, 0, 1);
	for (unsigned k = 0; k < NDEV; k++)
		before += sent[k];
	CHECK(before > 0 && before < NDEV / 2,
	    "still expanding when the rollback comes: %u sent", before);

	/* the plan says so, and the executed rollback does it */
	rc = rb_cmd(&t, cid, "sales", 0, &rep);
	row = rc == FBX_OK ? expand_row(&rep) : NULL;
	CHECK(row != NULL && row->action == FBX_RB_CANCEL &&
	        strstr(row->detail, "devices of 'sales'") != NULL,
	    "plan: the expansion's row: %s",
	    row != NULL ? row->detail : "none");
	fbx_console_rep_free(&rep);
	/* what left before the rollback (not answered yet: a turn would
	 * expand further) */
	drain(&t, 0, 0);
	rc = rb_cmd(&t, cid, "sales", 1, &rep);
	CHECK(rc == FBX_OK && rep.u.rollback.executed,
	    "rollback of the sales devices: %d", rc);
	fbx_console_rep_free(&rep);
	drain(&t, 1, 1);

	/* a turn of expansion, a restart, the rest */
	heartbeat(&t, "g1");
	turn(&t);
	drain(&t, 1, 1);
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.state == FBX_C_EXPANDING &&
	        strstr(info.note, "devices of group sales reached from now on "
	                           "are cancelled (groups: 1)") != NULL,
	    "still expanding before the restart: state %d, note '%s'",
	    info.state, info.note);
	CHECK(env_reopen(&t) == 0, "restart");
	hello(&t, "g1", ORG, 1000);
	turn(&t);
	for (int i = 0; i < 30; i++) {
		heartbeat(&t, "g1");
		turn(&t);
		drain(&t, 1, 1);
	}
	CHECK(counts(&t, ORG, cid, &info) == FBX_OK &&
	        info.state != FBX_C_EXPANDING && info.ndeliveries == NDEV,
	    "expanded: state %d, %u deliveries", info.state,
	    info.ndeliveries);
	for (unsigned k = 0; k < NDEV; k++) {
		if (k % 2 == 0)
			sales_after += sent_after[k];
		else
			ops_missing += sent[k] == 0;
		dup += sent[k] > 1;
	}
	CHECK(sales_after == 0,
	    "sales devices sent after the rollback: %u, want 0", sales_after);
	CHECK(ops_missing == 0 && dup == 0,
	    "ops devices without their delivery: %u, sent twice: %u",
	    ops_missing, dup);
	/* the sales devices reached after the rollback: created
	 * cancelled */
	sales_reached_after = 0;
	for (unsigned k = 0; k < NDEV; k += 2)
		sales_reached_after += sent[k] == 0;
	CHECK(sales_reached_after > 0 &&
	        info.counts[FBX_D_CANCELLED] >= sales_reached_after,
	    "sales devices reached after the rollback: %u, cancelled %u",
	    sales_reached_after, info.counts[FBX_D_CANCELLED]);
	CHECK(kv_records(&t, "rbx/", 0) == 1, "the rollback's rbx/ record");
	env_close(&t);
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
