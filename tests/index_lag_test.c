/*
 * index_lag_test.c: the deferred per-organisation indexes of the LMDB
 * store (fbx_store_opts.index_lag; issue 11, intake). Commands by
 * organisation (cmd_org) and audit records by organisation and actor
 * (audit_org, audit_actor) may lag their tables by up to index_lag
 * records; a query must still give exactly what a store indexing every
 * record at once gives. Checked against a model kept in memory, after
 * every transaction: whole listings and page by page, across the point
 * where the index ends and the records read from the table begin, with a
 * clock that steps back, after an aborted transaction that would have
 * caught the index up, after reopening with another lag (1: every record
 * indexed with itself, catching up what an earlier open left), and the
 * lag the store reports never passes index_lag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_int.h"

static int passed, failed;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (cond) {                                                  \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,        \
			    __LINE__, #cond);                                \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

#define BASE_MS 1800000000000LL
#define MAXREC 4000

static const char *const orgs[] = { "acme", "beta", "*" };
static const char *const actors[] = { "alice", "bob" };

/* the model: every command and audit record committed so far */
static struct {
	uint64_t id;
	int org;
	int64_t created;
} cmds[MAXREC];
static size_t ncmds;
static struct {
	uint64_t seq;
	int org, actor;
	int64_t at;
} recs[MAXREC];
static size_t nrecs;

static fbx_store *
open_at(const char *dir, unsigned lag)
{
	struct fbx_store_opts o;
	fbx_store *st = NULL;

	memset(&o, 0, sizeof(o));
	o.path = dir;
	o.durability = FBX_DURABLE_NOSYNC;
	o.map_size = (size_t)64 << 20;
	o.index_lag = lag;
	if (fbx_store_open(&o, &st) != FBX_OK)
		return NULL;
	return st;
}

/* time of the i-th write: one second apart, but writes 300..339 and
 * 900..919 happen after the clock stepped back 100 s */
static int64_t
time_of(size_t i)
{
	int64_t t = BASE_MS + (int64_t)i * 1000;

	if ((i >= 300 && i < 340) || (i >= 900 && i < 920))
		t -= 100000;
	return t;
}

/* write - n commands and n audit records in one transaction, from the
 * i-th write on; commit (and add them to the model) or abort. */
static int
write_batch(struct fbx_engine *e, size_t *i, size_t n, int commit)
{
	size_t nc = ncmds, nr = nrecs, i0 = *i;
	uint64_t seq0 = e->audit_seq;
	uint8_t last0[32];
	int rc;

	memcpy(last0, e->audit_last, sizeof(last0));
	rc = fbx_txn_begin(e->st, 1, &e->txn);
	if (rc != FBX_OK)
		return rc;
	e->txn_err = FBX_OK;
	for (size_t k = 0; k < n && rc == FBX_OK; k++, (*i)++) {
		struct fbx_command c;
		int o = (int)((*i * 7) % 3), a = (int)((*i / 3) % 2);
		int co = (int)((*i * 5) % 2); /* commands: acme or beta */
		memset(&c, 0, sizeof(c));
		snprintf(c.org, sizeof(c.org), "%s", orgs[co]);
		snprintf(c.actor, sizeof(c.actor), "%s", actors[a]);
		c.type = FBX_CMD_LOCK;
		c.origin = FBX_ORIGIN_OPERATOR;
		c.target_kind = FBX_TARGET_ORG;
		c.state = FBX_C_EXPANDING;
		c.ttl_s = 3600;
		c.created_ms = time_of(*i);
		c.expires_ms = c.created_ms + 3600000;
		rc = fbx_store_cmd_append(e->txn, &c);
		if (rc != FBX_OK)
			break;
		cmds[ncmds].id = c.id;
		cmds[ncmds].org = co;
		cmds[ncmds].created = c.created_ms;
		ncmds++;
		e->now = time_of(*i);
		fbxi_audit(e, orgs[o], actors[a], "submit", "", "{\"i\":%zu}",
		    *i);
		rc = e->txn_err;
		recs[nrecs].seq = e->audit_seq;
		recs[nrecs].org = o;
		recs[nrecs].actor = a;
		recs[nrecs].at = e->now;
		nrecs++;
	}
	if (rc != FBX_OK || !commit) {
		fbx_txn_abort(e->txn);
		e->txn = NULL;
		ncmds = nc;
		nrecs = nr;
		*i = i0;
		e->audit_seq = seq0;
		memcpy(e->audit_last, last0, sizeof(last0));
		return rc;
	}
	rc = fbx_txn_commit(e->txn);
	e->txn = NULL;
	return rc;
}

struct col {
	uint64_t ids[MAXREC];
	size_t n;
};

static int
col_cmd(void *arg, const struct fbx_command *c)
{
	struct col *x = arg;

	if (x->n < MAXREC)
		x->ids[x->n++] = c->id;
	return 0;
}

static int
cmp_model(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b; /* [created, id] pairs */

	if (x[0] != y[0])
		return (int64_t)x[0] < (int64_t)y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/* check_cmds - the listing of org in [since, until), whole and in
 * pages of 7 resumed after the last id, equals the model's. */
static void
check_cmds(fbx_store *st, int org, int64_t since, int64_t until,
    const char *when)
{
	static uint64_t want[MAXREC][2];
	static struct col got;
	size_t nw = 0;
	uint64_t after = 0;
	fbx_txn *t = NULL;
	int ok = 1, rc;

	for (size_t i = 0; i < ncmds; i++) {
		if (cmds[i].org != org || cmds[i].created < since ||
		    (until != 0 && cmds[i].created >= until))
			continue;
		want[nw][0] = (uint64_t)cmds[i].created;
		want[nw][1] = cmds[i].id;
		nw++;
	}
	qsort(want, nw, sizeof(want[0]), cmp_model);
	if (fbx_txn_begin(st, 0, &t) != FBX_OK) {
		CHECK(0, "%s: read txn", when);
		return;
	}
	got.n = 0;
	rc = fbx_store_cmd_list(t, orgs[org], since, until, 0, 0, col_cmd,
	    &got);
	ok = rc == FBX_OK && got.n == nw;
	for (size_t i = 0; ok && i < nw; i++)
		ok = got.ids[i] == want[i][1];
	CHECK(ok, "%s: commands of %s [%lld, %lld): %zu of %zu (rc %d)", when,
	    orgs[org], (long long)since, (long long)until, got.n, nw, rc);
	/* page by page */
	{
		static struct col all;
		all.n = 0;
		for (int pages = 0; pages < 2000; pages++) {
			got.n = 0;
			rc = fbx_store_cmd_list(t, orgs[org], since, until,
			    after, 7, col_cmd, &got);
			if (rc != FBX_OK || got.n == 0)
				break;
			for (size_t i = 0; i < got.n && all.n < MAXREC; i++)
				all.ids[all.n++] = got.ids[i];
			after = got.ids[got.n - 1];
		}
		ok = rc == FBX_OK && all.n == nw;
		for (size_t i = 0; ok && i < nw; i++)
			ok = all.ids[i] == want[i][1];
		CHECK(ok, "%s: commands of %s in pages of 7: %zu of %zu", when,
		    orgs[org], all.n, nw);
	}
	fbx_txn_abort(t);
}

/* check_audit - the listing of org (with its global records) [by
 * actor] in [since, until), page by page (10 rows), equals the
 * model's: the records whose time is in the window, when the clock
 * never stepped back across the window's edges (the windows used here
 * keep clear of the steps). */
static void
check_audit(fbx_store *st, int org, int actor, int64_t since, int64_t until,
    const char *when)
{
	static struct fbx_audit_rec v[10];
	static uint64_t want[MAXREC], got[MAXREC];
	size_t nw = 0, ng = 0;
	uint64_t after = 0, next = 0;
	fbx_txn *t = NULL;
	int ok, rc = FBX_OK;

	for (size_t i = 0; i < nrecs; i++) {
		if (recs[i].org != org && !(org != 2 && recs[i].org == 2))
			continue;
		if (actor >= 0 && recs[i].actor != actor)
			continue;
		if ((since != 0 && recs[i].at < since) ||
		    (until != 0 && recs[i].at >= until))
			continue;
		want[nw++] = recs[i].seq;
	}
	if (fbx_txn_begin(st, 0, &t) != FBX_OK) {
		CHECK(0, "%s: read txn", when);
		return;
	}
	for (int pages = 0; pages < 5000; pages++) {
		struct fbx_console_req req;
		size_t n = 0;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		snprintf(req.org, sizeof(req.org), "%s", orgs[org]);
		if (actor >= 0)
			snprintf(req.u.audit_list.actor,
			    sizeof(req.u.audit_list.actor), "%s",
			    actors[actor]);
		req.u.audit_list.since_ms = since;
		req.u.audit_list.until_ms = until;
		req.u.audit_list.after = after;
		rc = fbxi_audit_list_page(t, &req, v, 10, &n, &next);
		if (rc != FBX_OK)
			break;
		for (size_t i = 0; i < n && ng < MAXREC; i++)
			got[ng++] = v[i].seq;
		if (next == 0)
			break;
		after = next;
	}
	fbx_txn_abort(t);
	ok = rc == FBX_OK && ng == nw;
	for (size_t i = 0; ok && i < nw; i++)
		ok = got[i] == want[i];
	CHECK(ok, "%s: audit of %s by %s: %zu of %zu (rc %d)", when, orgs[org],
	    actor >= 0 ? actors[actor] : "anyone", ng, nw, rc);
}

static void
check_all(fbx_store *st, const char *when)
{
	for (int o = 0; o < 2; o++) {
		check_cmds(st, o, 0, 0, when);
		check_cmds(st, o, BASE_MS + 250000, BASE_MS + 700000, when);
	}
	for (int o = 0; o < 3; o++) {
		check_audit(st, o, -1, 0, 0, when);
		check_audit(st, o, 1, 0, 0, when);
	}
	check_audit(st, 0, 0, BASE_MS + 500000, BASE_MS + 780000, when);
}

static void
lags(fbx_store *st, unsigned lag, const char *when)
{
	struct fbx_store_stat ss;

	memset(&ss, 0, sizeof(ss));
	CHECK(fbx_store_stat(st, &ss) == FBX_OK && ss.cmd_ix_lag < lag &&
	        ss.audit_ix_lag < lag,
	    "%s: lags %llu %llu under %u", when,
	    (unsigned long long)ss.cmd_ix_lag,
	    (unsigned long long)ss.audit_ix_lag, lag);
}

int
main(void)
{
	char dir[] = "/tmp/fbx-ixlag-XXXXXX", cmd[128];
	struct fbx_engine *e = calloc(1, sizeof(*e));
	struct fbx_store_stat ss;
	size_t i = 0;
	int caught_cmd = 0, caught_audit = 0;
	uint64_t prev_c = 0, prev_a = 0;

	if (e == NULL || mkdtemp(dir) == NULL) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	e->st = open_at(dir, 50);
	CHECK(e->st != NULL, "open with lag 50");
	if (e->st == NULL)
		return 1;
	/* batches of 1 to 13 writes: the index catches up inside some of
	 * them, at different offsets */
	for (int b = 0; i < 700 && b < 400; b++) {
		char when[64];
		CHECK(write_batch(e, &i, 1 + (size_t)(b * 5) % 13, 1) ==
		        FBX_OK,
		    "batch %d", b);
		memset(&ss, 0, sizeof(ss));
		fbx_store_stat(e->st, &ss);
		if (ss.cmd_ix_lag < prev_c)
			caught_cmd++;
		if (ss.audit_ix_lag < prev_a)
			caught_audit++;
		prev_c = ss.cmd_ix_lag;
		prev_a = ss.audit_ix_lag;
		snprintf(when, sizeof(when), "lag 50, batch %d", b);
		lags(e->st, 50, when);
		if (b % 9 == 0)
			check_all(e->st, when);
	}
	CHECK(caught_cmd >= 10 && caught_audit >= 10,
	    "the indexes caught up %d and %d times", caught_cmd, caught_audit);
	check_all(e->st, "lag 50, end");

	/* the newest commands deleted, the mark among them: the next
	 * appends take their ids again (the last id + 1), below the mark,
	 * and are indexed at once, as the mark says */
	{
		uint64_t last = cmds[ncmds - 1].id, mark, from;
		fbx_txn *t = NULL;
		size_t w = 0;
		int ok = 1;
		memset(&ss, 0, sizeof(ss));
		fbx_store_stat(e->st, &ss);
		mark = last - ss.cmd_ix_lag;
		from = mark > 3 ? mark - 3 : 1;
		ok = fbx_txn_begin(e->st, 1, &t) == FBX_OK;
		for (uint64_t id = from; ok && id <= last; id++)
			ok = fbx_store_cmd_delete(t, id) == FBX_OK;
		ok = ok && fbx_txn_commit(t) == FBX_OK;
		CHECK(ok, "delete commands %llu..%llu (mark %llu)",
		    (unsigned long long)from, (unsigned long long)last,
		    (unsigned long long)mark);
		for (size_t r = 0; r < ncmds; r++)
			if (cmds[r].id < from)
				cmds[w++] = cmds[r];
		ncmds = w;
		CHECK(write_batch(e, &i, 6, 1) == FBX_OK, "appends after it");
		CHECK(cmds[ncmds - 6].id == from, "ids used again from %llu",
		    (unsigned long long)cmds[ncmds - 6].id);
		check_all(e->st, "ids used again below the mark");
		CHECK(write_batch(e, &i, 60, 1) == FBX_OK, "60 more");
		check_all(e->st, "ids used again, then a catch-up");
	}

	/* a transaction that crosses the lag, aborted: nothing of it stays,
	 * neither entries nor marks */
	memset(&ss, 0, sizeof(ss));
	fbx_store_stat(e->st, &ss);
	prev_c = ss.cmd_ix_lag;
	prev_a = ss.audit_ix_lag;
	CHECK(write_batch(e, &i, 120, 0) == FBX_OK, "aborted batch");
	memset(&ss, 0, sizeof(ss));
	fbx_store_stat(e->st, &ss);
	CHECK(ss.cmd_ix_lag == prev_c && ss.audit_ix_lag == prev_a,
	    "after the abort: lags %llu %llu, were %llu %llu",
	    (unsigned long long)ss.cmd_ix_lag,
	    (unsigned long long)ss.audit_ix_lag, (unsigned long long)prev_c,
	    (unsigned long long)prev_a);
	check_all(e->st, "after an aborted catch-up");
	fbx_store_close(e->st);

	/* reopened with lag 1: the next write catches up what is left and
	 * every record is indexed with itself from then on */
	e->st = open_at(dir, 1);
	CHECK(e->st != NULL, "reopen with lag 1");
	if (e->st == NULL)
		return 1;
	check_all(e->st, "reopened, before a write");
	CHECK(write_batch(e, &i, 5, 1) == FBX_OK, "write with lag 1");
	memset(&ss, 0, sizeof(ss));
	CHECK(fbx_store_stat(e->st, &ss) == FBX_OK && ss.cmd_ix_lag == 0 &&
	        ss.audit_ix_lag == 0,
	    "lag 1: lags %llu %llu", (unsigned long long)ss.cmd_ix_lag,
	    (unsigned long long)ss.audit_ix_lag);
	check_all(e->st, "lag 1");
	CHECK(write_batch(e, &i, 60, 1) == FBX_OK, "more with lag 1");
	check_all(e->st, "lag 1, more");
	fbx_store_close(e->st);

	/* and back to a lag: deferred again from where it is */
	e->st = open_at(dir, 300);
	CHECK(e->st != NULL, "reopen with lag 300");
	if (e->st == NULL)
		return 1;
	for (int b = 0; b < 30; b++)
		CHECK(write_batch(e, &i, 11, 1) == FBX_OK, "lag 300 batch");
	lags(e->st, 300, "lag 300");
	check_all(e->st, "lag 300");
	fbx_store_close(e->st);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(e);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
