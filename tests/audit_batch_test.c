/*
 * audit_batch_test.c: the submits of a turn share audit records (issue
 * 11), in-process on the fake transport, several requests per turn:
 * - every submit answered OK is named in exactly one submit record, the
 *   records of one organisation and actor hold several, each with its
 *   fields that are not at their default (a reason), each record's
 *   params are JSON of at most 511 bytes, and the chain verifies;
 * - a submit alone in its turn has the record it always had;
 * - a request of another kind in the turn comes after the submits before
 *   it in the chain and before those after it;
 * - a submit that fails on its own (a breaker record that cannot be
 *   read) redoes the turn: the others are answered OK and named once,
 *   the failed one not at all;
 * - a turn whose commit fails leaves no record and carries none of its
 *   submits into the next turn;
 * - an audit list after submits in their turn names them, and a rollback
 *   executed after submits in their turn has the sequence of its own
 *   record as its id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine_fake.h"

/* sub_dev - a query to one device of org */
static void
sub_dev_r(struct env *t, const char *peer, const char *org, unsigned dev,
    const char *reason)
{
	struct fbx_console_req req;
	fbx_id one;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_QUERY;
	req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.ttl_s = 3600;
	snprintf(one, sizeof(one), "%s-d%05u", org, dev);
	req.u.submit.cmd.dev_ids = &one;
	req.u.submit.cmd.ndev_ids = 1;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason), "%s",
	    reason);
	console(t, peer, org, &req);
}

static void
sub_dev(struct env *t, const char *peer, const char *org, unsigned dev)
{
	sub_dev_r(t, peer, org, dev, "");
}

/* take - the reply to peer: its err; *id the command if a submit's */
static int
take(struct env *t, const char *peer, uint64_t *id)
{
	struct fbx_console_rep rep;
	int rc = reply(t, peer, &rep);

	if (id != NULL)
		*id = rc == FBX_OK ? rep.u.submit.command_id : 0;
	fbx_console_rep_free(&rep);
	return rc;
}

struct seen {
	uint64_t seq[64]; /* the submit record naming ids[i] */
	uint64_t ids[64];
	size_t n;
	size_t records, shared; /* submit records; those naming several */
	size_t with_reason;     /* entries of shared records with a reason */
	uint64_t other_seq;     /* the last record of another action */
	uint64_t rollback_seq;  /* the last "rollback" record */
	char first_single[512]; /* params of the first one-command record */
};

/* audit_of - read org's audit records; every submit record's params must
 * be a JSON object of at most 511 bytes naming its commands, once each */
static void
audit_of(struct env *t, const char *org, struct seen *s)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(s, 0, sizeof(*s));
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_LIST;
	req.u.audit_list.limit = 1000;
	console(t, "auditor", org, &req);
	turn(t);
	rc = reply(t, "auditor", &rep);
	CHECK(rc == FBX_OK, "audit list %s: %d", org, rc);
	for (size_t i = 0; rc == FBX_OK && i < rep.u.audit.n; i++) {
		const struct fbx_audit_rec *r = &rep.u.audit.r[i];
		json_t *p, *cmds, *one;
		size_t k;

		if (strcmp(r->action, "submit") != 0) {
			s->other_seq = r->seq;
			if (strcmp(r->action, "rollback") == 0)
				s->rollback_seq = r->seq;
			continue;
		}
		s->records++;
		CHECK(strlen(r->params) <= 511, "params of %zu bytes",
		    strlen(r->params));
		p = json_loads(r->params, 0, NULL);
		CHECK(json_is_object(p), "params not a JSON object: %s",
		    r->params);
		cmds = json_object_get(p, "commands");
		if (cmds != NULL) {
			CHECK(json_is_array(cmds) && json_array_size(cmds) > 1,
			    "a shared record of one command: %s", r->params);
			s->shared++;
			json_array_foreach (cmds, k, one) {
				/* fields at their defaults are left out,
				 * the others kept */
				json_t *rs = json_object_get(one, "reason");
				CHECK(json_object_get(one, "type") != NULL &&
				        json_object_get(one, "devices") !=
				            NULL &&
				        json_object_get(one, "settle_until_ms") ==
				            NULL &&
				        (rs == NULL ||
				            (json_is_string(rs) &&
				                json_string_length(rs) > 0)),
				    "entry fields: %s", r->params);
				if (rs != NULL)
					s->with_reason++;
				if (s->n < 64) {
					s->seq[s->n] = r->seq;
					s->ids[s->n++] = (uint64_t)
					    json_integer_value(json_object_get(
					        one, "command"));
				}
			}
		} else if (p != NULL && s->n < 64) {
			if (s->first_single[0] == '\0')
				snprintf(s->first_single,
				    sizeof(s->first_single), "%s", r->params);
			s->seq[s->n] = r->seq;
			s->ids[s->n++] = (uint64_t)json_integer_value(
			    json_object_get(p, "command"));
		}
		json_decref(p);
	}
	fbx_console_rep_free(&rep);
}

/* named - how many times id is named; *seq the record of the last */
static size_t
named(const struct seen *s, uint64_t id, uint64_t *seq)
{
	size_t c = 0;

	for (size_t i = 0; i < s->n; i++)
		if (s->ids[i] == id) {
			c++;
			if (seq != NULL)
				*seq = s->seq[i];
		}
	return c;
}

static void
verify_chain(struct env *t)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_VERIFY;
	console(t, "auditor", "acme", &req);
	turn(t);
	rc = reply(t, "auditor", &rep);
	CHECK(rc == FBX_OK && rep.u.verify.broken_at == 0,
	    "audit chain: %d, broken at %llu", rc,
	    (unsigned long long)rep.u.verify.broken_at);
	fbx_console_rep_free(&rep);
}

/* batched - 12 submits of acme and 3 of beta in one turn */
static void
test_batched(void)
{
	struct env t;
	struct seen s;
	uint64_t a[12], b[3], seq;
	char peer[16];

	CHECK(env_open(&t, "abatch") == 0, "open");
	enroll(&t, "acme", 20);
	enroll(&t, "beta", 5);
	/* a single submit first: the record it always had */
	sub_dev(&t, "p0", "acme", 19);
	turn(&t);
	CHECK(take(&t, "p0", NULL) == FBX_OK, "single submit");
	for (unsigned i = 0; i < 12; i++) {
		snprintf(peer, sizeof(peer), "a%u", i);
		sub_dev(&t, peer, "acme", i);
		if (i < 3) {
			snprintf(peer, sizeof(peer), "b%u", i);
			sub_dev_r(&t, peer, "beta", i, "patch_tuesday");
		}
	}
	turn(&t);
	for (unsigned i = 0; i < 12; i++) {
		snprintf(peer, sizeof(peer), "a%u", i);
		CHECK(take(&t, peer, &a[i]) == FBX_OK, "acme submit %u", i);
		if (i < 3) {
			snprintf(peer, sizeof(peer), "b%u", i);
			CHECK(take(&t, peer, &b[i]) == FBX_OK,
			    "beta submit %u", i);
		}
	}
	audit_of(&t, "acme", &s);
	CHECK(strstr(s.first_single, "\"reason\":\"\"") != NULL &&
	        strstr(s.first_single, "\"settle_until_ms\":0") != NULL,
	    "a single submit's record: %s", s.first_single);
	for (unsigned i = 0; i < 12; i++)
		CHECK(named(&s, a[i], &seq) == 1, "acme command %llu named %zu",
		    (unsigned long long)a[i], named(&s, a[i], NULL));
	CHECK(s.n == 13, "acme: %zu commands named, want 13", s.n);
	/* 12 short entries share records: fewer records than submits */
	CHECK(s.shared >= 1 && s.records < 13,
	    "acme: %zu submit records (%zu shared) for 13 submits", s.records,
	    s.shared);
	audit_of(&t, "beta", &s);
	for (unsigned i = 0; i < 3; i++)
		CHECK(named(&s, b[i], NULL) == 1, "beta command named %zu",
		    named(&s, b[i], NULL));
	CHECK(s.n == 3 && s.records == 1 && s.with_reason == 3,
	    "beta: %zu commands in %zu records, want 3 in 1; %zu with their "
	    "reason",
	    s.n, s.records, s.with_reason);
	verify_chain(&t);
	env_close(&t);
}

/* order - submit, submit, breaker trip, submit in one turn: the trip's
 * record comes between the first two submits' and the third's */
static void
test_order(void)
{
	struct env t;
	struct seen s;
	struct fbx_console_req req;
	uint64_t id[3], s0 = 0, s1 = 0, s2 = 0;

	CHECK(env_open(&t, "aorder") == 0, "open");
	enroll(&t, "acme", 5);
	sub_dev(&t, "a0", "acme", 0);
	sub_dev(&t, "a1", "acme", 1);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_TRIP;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason),
	    "jailbreak_rule");
	snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
	    "CHG-1: by hand");
	console(&t, "ops", "acme", &req);
	sub_dev(&t, "a2", "acme", 2);
	turn(&t);
	CHECK(take(&t, "a0", &id[0]) == FBX_OK, "submit 0");
	CHECK(take(&t, "a1", &id[1]) == FBX_OK, "submit 1");
	CHECK(take(&t, "ops", NULL) == FBX_OK, "trip");
	CHECK(take(&t, "a2", &id[2]) == FBX_OK, "submit 2");
	audit_of(&t, "acme", &s);
	CHECK(named(&s, id[0], &s0) == 1 && named(&s, id[1], &s1) == 1 &&
	        named(&s, id[2], &s2) == 1,
	    "each submit named once");
	CHECK(s0 == s1 && s1 < s.other_seq && s.other_seq < s2,
	    "order: submits in %llu and %llu, trip %llu, submit %llu",
	    (unsigned long long)s0, (unsigned long long)s1,
	    (unsigned long long)s.other_seq, (unsigned long long)s2);
	verify_chain(&t);
	env_close(&t);
}

/* plant_corrupt_breaker - a breaker record of the wrong size for acme's
 * rule, written while the engine is closed */
static int
plant_corrupt_breaker(struct env *t)
{
	struct fbx_store_opts o;
	fbx_store *st = NULL;
	fbx_txn *txn = NULL;
	int rc;

	fbx_engine_close(t->e);
	t->e = NULL;
	memset(&o, 0, sizeof(o));
	o.path = t->dir;
	rc = fbx_store_open(&o, &st);
	if (rc != FBX_OK)
		return -1;
	rc = fbx_txn_begin(st, 1, &txn);
	if (rc == FBX_OK)
		rc = fbx_store_kv_put(txn, "brk/acme/corrupt_rule", "bad", 3);
	if (rc == FBX_OK)
		rc = fbx_txn_commit(txn);
	else
		fbx_txn_abort(txn);
	fbx_store_close(st);
	return rc == FBX_OK ? env_reopen(t) : -1;
}

/* redo - an automatic lock whose breaker cannot be read fails on its
 * own between good submits: the turn is done again without it */
static void
test_redo(void)
{
	struct env t;
	struct seen s;
	struct fbx_console_req req;
	uint64_t id[4];
	int bad;

	CHECK(env_open(&t, "aredo") == 0, "open");
	enroll(&t, "acme", 5);
	CHECK(plant_corrupt_breaker(&t) == 0, "plant");
	sub_dev(&t, "a0", "acme", 0);
	sub_dev(&t, "a1", "acme", 1);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	snprintf(req.u.submit.cmd.reason, sizeof(req.u.submit.cmd.reason),
	    "corrupt_rule");
	console(&t, "auto", "acme", &req);
	sub_dev(&t, "a2", "acme", 2);
	sub_dev(&t, "a3", "acme", 3);
	turn(&t);
	for (int i = 0; i < 4; i++) {
		char peer[8];
		snprintf(peer, sizeof(peer), "a%d", i);
		CHECK(take(&t, peer, &id[i]) == FBX_OK, "submit %d", i);
	}
	bad = take(&t, "auto", NULL);
	CHECK(bad == FBX_ECORRUPT, "the lock with an unreadable breaker: %d",
	    bad);
	audit_of(&t, "acme", &s);
	for (int i = 0; i < 4; i++)
		CHECK(named(&s, id[i], NULL) == 1, "command %llu named %zu",
		    (unsigned long long)id[i], named(&s, id[i], NULL));
	CHECK(s.n == 4, "%zu commands named, want 4", s.n);
	verify_chain(&t);
	env_close(&t);
}

/* failed_commit - a turn whose commit fails leaves no record of its
 * submits, and the next turn names only its own */
static void
test_failed_commit(void)
{
	struct env t;
	struct seen s;
	uint64_t id;
	int r0, r1;

	CHECK(env_open(&t, "afail") == 0, "open");
	enroll(&t, "acme", 5);
	fbx_store_test_fail_commits = 1;
	sub_dev(&t, "a0", "acme", 0);
	sub_dev(&t, "a1", "acme", 1);
	turn(&t);
	fbx_store_test_fail_commits = 0;
	r0 = take(&t, "a0", NULL);
	r1 = take(&t, "a1", NULL);
	CHECK(r0 != FBX_OK && r0 != -1 && r1 != FBX_OK && r1 != -1,
	    "submits of a failed turn answered: %d %d", r0, r1);
	advance(&t, 6000); /* past the backoff */
	sub_dev(&t, "a2", "acme", 2);
	turn(&t);
	CHECK(take(&t, "a2", &id) == FBX_OK, "submit after");
	audit_of(&t, "acme", &s);
	CHECK(s.n == 1 && named(&s, id, NULL) == 1,
	    "%zu commands named, want only %llu", s.n,
	    (unsigned long long)id);
	verify_chain(&t);
	env_close(&t);
}

/* read_in_turn - an audit list in the turn of two submits, after them,
 * names them (it reads in a child transaction: what is kept is written
 * before it) */
static void
test_read_in_turn(void)
{
	struct env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t id[2];
	size_t found = 0;
	int rc;

	CHECK(env_open(&t, "aread") == 0, "open");
	enroll(&t, "acme", 5);
	sub_dev(&t, "a0", "acme", 0);
	sub_dev(&t, "a1", "acme", 1);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_LIST;
	req.u.audit_list.limit = 1000;
	strcpy(req.u.audit_list.action, "submit");
	console(&t, "auditor", "acme", &req);
	turn(&t);
	CHECK(take(&t, "a0", &id[0]) == FBX_OK, "submit 0");
	CHECK(take(&t, "a1", &id[1]) == FBX_OK, "submit 1");
	rc = reply(&t, "auditor", &rep);
	CHECK(rc == FBX_OK, "audit list in the turn: %d", rc);
	for (size_t i = 0; rc == FBX_OK && i < rep.u.audit.n; i++)
		for (int k = 0; k < 2; k++) {
			char want[40];
			snprintf(want, sizeof(want), "\"command\":%llu,",
			    (unsigned long long)id[k]);
			if (strstr(rep.u.audit.r[i].params, want) != NULL)
				found++;
		}
	CHECK(found == 2, "the list in the submits' turn names %zu of 2",
	    found);
	fbx_console_rep_free(&rep);
	env_close(&t);
}

/* rollback_in_turn - submits, then a rollback executed in the same
 * turn: its id is the sequence of its own audit record, after the
 * submits' */
static void
test_rollback_in_turn(void)
{
	struct env t;
	struct seen s;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t cid, id[2], rbid = 0, s0 = 0, s1 = 0;
	int rc;

	CHECK(env_open(&t, "arb") == 0, "open");
	enroll(&t, "acme", 5);
	cid = submit_org(&t, "acme"); /* no gateway: its deliveries wait */
	sub_dev(&t, "a0", "acme", 0);
	sub_dev(&t, "a1", "acme", 1);
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	req.u.rollback.sel.command_ids = &cid;
	req.u.rollback.sel.ncommand_ids = 1;
	req.u.rollback.execute = 1;
	snprintf(req.u.rollback.note, sizeof(req.u.rollback.note),
	    "CHG-2: wrong target");
	console(&t, "ops", "acme", &req);
	turn(&t);
	CHECK(take(&t, "a0", &id[0]) == FBX_OK, "submit 0");
	CHECK(take(&t, "a1", &id[1]) == FBX_OK, "submit 1");
	rc = reply(&t, "ops", &rep);
	if (rc == FBX_OK)
		rbid = rep.u.rollback.rollback_id;
	CHECK(rc == FBX_OK && rbid != 0 &&
	        rep.u.rollback.per_action[FBX_RB_CANCEL] == 5,
	    "rollback: %d, id %llu, %u cancelled", rc,
	    (unsigned long long)rbid,
	    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_CANCEL] : 0);
	fbx_console_rep_free(&rep);
	audit_of(&t, "acme", &s);
	CHECK(s.rollback_seq == rbid,
	    "rollback id %llu, its record's sequence %llu",
	    (unsigned long long)rbid, (unsigned long long)s.rollback_seq);
	CHECK(named(&s, id[0], &s0) == 1 && named(&s, id[1], &s1) == 1 &&
	        s0 < s.rollback_seq && s1 < s.rollback_seq,
	    "submits in %llu and %llu, before the rollback's %llu",
	    (unsigned long long)s0, (unsigned long long)s1,
	    (unsigned long long)s.rollback_seq);
	verify_chain(&t);
	env_close(&t);
}

int
main(void)
{
	test_batched();
	test_order();
	test_redo();
	test_failed_commit();
	test_read_in_turn();
	test_rollback_in_turn();
	printf("audit_batch_test: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
