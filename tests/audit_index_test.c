/*
 * audit_index_test.c: audit queries and verify stay flat as the log grows
 * (issue 8, "the daemon slows down over months"). 200,000 records are
 * journaled through the engine's own encoder (fbxi_audit); listings by
 * organisation, actor and time must return the right records while the
 * store reads about a page per call (its audit_reads counter: counts,
 * never timings); verify runs in bounded slices, incrementally from its
 * checkpoint, and still catches a record altered in LMDB; a schema 1
 * store gets its indexes at open.
 */
#include <lmdb.h>
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

#define N 200000
#define BASE_MS 1700000000000LL

/* Record i (seq i + 1): organisation "big", except every 20,000th
 * ("rare", actors carol and bob in turn) and every 50,000th (global "*",
 * actor admin). One second apart, except i in [150000, 150100): the
 * clock stepped back 100,000 s, so their times are those of 50000..50099. */
static int64_t
at_of(uint64_t i)
{
	if (i >= 150000 && i < 150100)
		return BASE_MS + (int64_t)(i - 100000) * 1000;
	return BASE_MS + (int64_t)i * 1000;
}

static int
is_rare(uint64_t i)
{
	return i % 20000 == 7;
}

static int
is_global(uint64_t i)
{
	return i % 50000 == 13;
}

/* the per-organisation indexes lag by up to IX_LAG records: a query
 * reads them from the index and the newest from the log itself, and its
 * reads stay bounded by the rows plus IX_LAG */
#define IX_LAG 100

static fbx_store *
open_at(const char *dir)
{
	struct fbx_store_opts o;
	fbx_store *st = NULL;

	memset(&o, 0, sizeof(o));
	o.path = dir;
	o.durability = FBX_DURABLE_NOSYNC;
	o.map_size = (size_t)256 << 20;
	o.index_lag = IX_LAG;
	if (fbx_store_open(&o, &st) != FBX_OK)
		return NULL;
	return st;
}

static uint64_t
reads_of(fbx_store *st)
{
	struct fbx_store_stat ss;

	memset(&ss, 0, sizeof(ss));
	fbx_store_stat(st, &ss);
	return ss.audit_reads;
}

/* journal - records [from, to) in transactions of 10,000. */
static int
journal(struct fbx_engine *e, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to;) {
		uint64_t end = i + 10000 < to ? i + 10000 : to;
		int rc = fbx_txn_begin(e->st, 1, &e->txn);
		if (rc != FBX_OK)
			return rc;
		e->txn_err = FBX_OK;
		for (; i < end; i++) {
			const char *org = "big", *actor = "alice";
			if (is_rare(i)) {
				org = "rare";
				actor = (i / 20000) % 2 ? "bob" : "carol";
			} else if (is_global(i)) {
				org = "*";
				actor = "admin";
			}
			e->now = at_of(i);
			fbxi_audit(e, org, actor, "submit", "", "{\"i\":%llu}",
			    (unsigned long long)i);
		}
		if (e->txn_err != FBX_OK) {
			fbx_txn_abort(e->txn);
			e->txn = NULL;
			return e->txn_err;
		}
		rc = fbx_txn_commit(e->txn);
		e->txn = NULL;
		if (rc != FBX_OK)
			return rc;
	}
	return FBX_OK;
}

/* list - one page; returns the page size, -1 on error. */
static long
list(fbx_txn *t, const char *org, const char *actor, const char *action,
    int64_t since, int64_t until, uint64_t after, size_t cap,
    struct fbx_audit_rec *v, uint64_t *next)
{
	struct fbx_console_req req;
	size_t n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_LIST;
	snprintf(req.org, sizeof(req.org), "%s", org);
	snprintf(req.u.audit_list.actor, sizeof(req.u.audit_list.actor), "%s",
	    actor);
	snprintf(req.u.audit_list.action, sizeof(req.u.audit_list.action),
	    "%s", action);
	req.u.audit_list.since_ms = since;
	req.u.audit_list.until_ms = until;
	req.u.audit_list.after = after;
	if (fbxi_audit_list_page(t, &req, v, cap, &n, next) != FBX_OK)
		return -1;
	return (long)n;
}

static int
verify(fbx_txn *t, int incremental, uint64_t after, const char *hash,
    uint32_t max, uint64_t head, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	memset(rep, 0, sizeof(*rep));
	req.kind = FBX_CREQ_AUDIT_VERIFY;
	req.u.audit_verify.incremental = incremental;
	req.u.audit_verify.after_seq = after;
	snprintf(req.u.audit_verify.after_hash,
	    sizeof(req.u.audit_verify.after_hash), "%s", hash);
	req.u.audit_verify.max_records = max;
	return fbxi_audit_verify_slice(t, &req, head, t != NULL, rep);
}

/* tamper - flip a byte of record seq's params in LMDB (store closed). */
static int
tamper(const char *dir, uint64_t seq)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k, v, nv;
	uint8_t kb[8], buf[2048];
	int rc;

	for (int i = 0; i < 8; i++)
		kb[i] = (uint8_t)(seq >> (56 - 8 * i));
	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 32);
	rc = mdb_env_open(env, dir, 0, 0640);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "audit", 0, &dbi);
	k.mv_size = 8;
	k.mv_data = kb;
	if (rc == 0)
		rc = mdb_get(txn, dbi, &k, &v);
	if (rc == 0 && v.mv_size <= sizeof(buf) && v.mv_size > 80) {
		memcpy(buf, v.mv_data, v.mv_size);
		buf[v.mv_size - 2] ^= 0x01;
		nv.mv_size = v.mv_size;
		nv.mv_data = buf;
		rc = mdb_put(txn, dbi, &k, &nv, 0);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* make_v1 - turn a store into what schema 1 left: no audit indexes,
 * schema 1 (store closed). */
static int
make_v1(const char *dir)
{
	static const char *const ix[] = { "audit_org", "audit_actor",
		"audit_time" };
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k = { 6, "schema" }, v;
	uint8_t vb[4] = { 1, 0, 0, 0 };
	int rc;

	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 32);
	rc = mdb_env_open(env, dir, 0, 0640);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	for (size_t i = 0; rc == 0 && i < 3; i++) {
		rc = mdb_dbi_open(txn, ix[i], 0, &dbi);
		if (rc == 0)
			rc = mdb_drop(txn, dbi, 1);
	}
	if (rc == 0)
		rc = mdb_dbi_open(txn, "meta", 0, &dbi);
	v.mv_size = 4;
	v.mv_data = vb;
	if (rc == 0)
		rc = mdb_put(txn, dbi, &k, &v, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

static void
test_lists(fbx_store *st)
{
	struct fbx_audit_rec *v = calloc(1000, sizeof(*v));
	fbx_txn *t = NULL;
	uint64_t next = 0, r0;
	long n;
	int ok;

	if (v == NULL || fbx_txn_begin(st, 0, &t) != FBX_OK) {
		CHECK(0, "setup");
		free(v);
		return;
	}
	/* an organisation with 10 records among 200,000, plus 4 global */
	r0 = reads_of(st);
	n = list(t, "rare", "", "", 0, 0, 0, 100, v, &next);
	CHECK(n == 14 && next == 0, "rare: n %ld next %llu", n,
	    (unsigned long long)next);
	ok = n == 14;
	for (long i = 0; ok && i < n; i++) {
		uint64_t k = v[i].seq - 1;
		ok = (is_rare(k) && !strcmp(v[i].org, "rare")) ||
		    (is_global(k) && !strcmp(v[i].org, "*"));
		ok = ok && (i == 0 || v[i].seq > v[i - 1].seq);
	}
	CHECK(ok, "rare: the organisation's and the global records, in order");
	CHECK(reads_of(st) - r0 <= 2 * 14 + 4 + IX_LAG,
	    "rare: %llu reads for 14 rows",
	    (unsigned long long)(reads_of(st) - r0));

	/* by actor: carol's 5 (no global one is hers) */
	r0 = reads_of(st);
	n = list(t, "rare", "carol", "", 0, 0, 0, 100, v, &next);
	ok = n == 5 && next == 0;
	for (long i = 0; ok && i < n; i++)
		ok = !strcmp(v[i].actor, "carol") && !strcmp(v[i].org, "rare");
	CHECK(ok, "rare by carol: n %ld", n);
	CHECK(reads_of(st) - r0 <= 2 * 5 + 4 + IX_LAG, "carol: %llu reads",
	    (unsigned long long)(reads_of(st) - r0));

	/* a late --since on the big organisation: one page, read bounded */
	r0 = reads_of(st);
	n = list(t, "big", "", "", at_of(190000), 0, 0, 100, v, &next);
	CHECK(n == 100 && v[0].seq == 190001 && next == v[99].seq,
	    "late since: n %ld first %llu next %llu", n,
	    (unsigned long long)(n > 0 ? v[0].seq : 0),
	    (unsigned long long)next);
	CHECK(reads_of(st) - r0 <= 2 * 100 + 4, "late since: %llu reads",
	    (unsigned long long)(reads_of(st) - r0));
	/* the cursor continues exactly after the page */
	n = list(t, "big", "", "", at_of(190000), 0, next, 100, v, &next);
	CHECK(n == 100 && v[0].seq == 190101, "page 2: n %ld first %llu", n,
	    (unsigned long long)(n > 0 ? v[0].seq : 0));

	/* a window of the rare organisation */
	n = list(t, "rare", "", "", at_of(40000), at_of(100014), 0, 100, v,
	    &next);
	CHECK(n == 6 && v[0].seq == 40008 && v[4].seq == 100008 &&
	        v[5].seq == 100014 && next == 0,
	    "rare window: n %ld", n);

	/* the clock stepped back at 150000..150099 (times of 50000..50099):
	 * a since after the step skips them, a window before them is
	 * exactly the records written then (documented limit) */
	n = list(t, "big", "", "", BASE_MS + 150050 * 1000LL, 0, 0, 10, v,
	    &next);
	CHECK(n == 10 && v[0].seq == 150101, "since past the step: first %llu",
	    (unsigned long long)(n > 0 ? v[0].seq : 0));
	n = list(t, "big", "", "", at_of(50000), at_of(50100), 0, 1000, v,
	    &next);
	CHECK(n == 100 && v[0].seq == 50001 && v[99].seq == 50100 &&
	        next == 0,
	    "window before the step: n %ld", n);
	/* a since inside the stepped-back times, no until: the records
	 * written behind the clock count by their own time */
	{
		uint64_t after = 0, early = 0, late = 0, pages = 0;
		do {
			n = list(t, "big", "", "", at_of(50050), 0, after, 1000,
			    v, &next);
			for (long i = 0; i < n; i++) {
				early += v[i].seq > 150000 && v[i].seq <= 150050;
				late += v[i].seq > 150050 && v[i].seq <= 150100;
			}
			after = next;
		} while (n >= 0 && next != 0 && ++pages < 1000);
		CHECK(early == 0 && late == 50, "since in the step: %llu early "
		      "%llu late", (unsigned long long)early,
		    (unsigned long long)late);
	}

	/* an action filter that matches nothing: every page is bounded,
	 * empty, with a cursor, until the end */
	{
		uint64_t after = 0, pages = 0, maxr = 0, got = 0;
		do {
			r0 = reads_of(st);
			n = list(t, "big", "", "nomatch", 0, 0, after, 1000, v,
			    &next);
			if (reads_of(st) - r0 > maxr)
				maxr = reads_of(st) - r0;
			pages++;
			got += n > 0 ? (uint64_t)n : 0;
			CHECK(n == 0, "nomatch page has %ld", n);
			CHECK(next == 0 || next > after, "cursor stuck at %llu",
			    (unsigned long long)after);
			after = next;
		} while (n >= 0 && next != 0 && pages < 10000);
		CHECK(got == 0 && maxr <= 10000 + 4 && pages > 10,
		    "nomatch: %llu pages, at most %llu reads a page",
		    (unsigned long long)pages, (unsigned long long)maxr);
	}
	fbx_txn_abort(t);
	free(v);
}

static int
test_verify(struct fbx_engine *e, const char *dir)
{
	struct fbx_console_rep rep;
	fbx_txn *t = NULL;
	uint64_t after = 0, slices = 0, total = 0, r0, head = N;
	char hash[65] = "";
	int rc;

	/* full from the start in slices of 30,000 */
	do {
		if (fbx_txn_begin(e->st, 1, &t) != FBX_OK)
			return -1;
		r0 = reads_of(e->st);
		rc = verify(t, 0, after, hash, 30000, head, &rep);
		CHECK(reads_of(e->st) - r0 <= 30000 + 2, "slice read %llu",
		    (unsigned long long)(reads_of(e->st) - r0));
		CHECK(fbx_txn_commit(t) == FBX_OK, "commit");
		slices++;
		total += rep.u.verify.records;
		after = rep.u.verify.verified_seq;
		snprintf(hash, sizeof(hash), "%s", rep.u.verify.verified_hash);
	} while (rc == FBX_OK && !rep.u.verify.complete && slices < 100);
	CHECK(rc == FBX_OK && slices == 7 && total == N &&
	        rep.u.verify.broken_at == 0 && after == N &&
	        rep.u.verify.head_seq == N,
	    "full: rc %d, %llu slices, %llu records, broken %llu", rc,
	    (unsigned long long)slices, (unsigned long long)total,
	    (unsigned long long)rep.u.verify.broken_at);

	/* incremental: the full verify moved the checkpoint to the head */
	fbx_txn_begin(e->st, 1, &t);
	rc = verify(t, 1, 0, "", 0, head, &rep);
	fbx_txn_commit(t);
	CHECK(rc == FBX_OK && rep.u.verify.records == 0 &&
	        rep.u.verify.complete && rep.u.verify.verified_seq == N,
	    "incremental, nothing new: %llu records",
	    (unsigned long long)rep.u.verify.records);

	/* 2,500 new records: three slices of 1,000 */
	CHECK(journal(e, N, N + 2500) == FBX_OK, "journal more");
	head = N + 2500;
	slices = 0;
	total = 0;
	do {
		fbx_txn_begin(e->st, 1, &t);
		rc = verify(t, 1, 0, "", 1000, head, &rep);
		fbx_txn_commit(t);
		slices++;
		total += rep.u.verify.records;
	} while (rc == FBX_OK && !rep.u.verify.complete && slices < 10);
	CHECK(rc == FBX_OK && slices == 3 && total == 2500 &&
	        rep.u.verify.broken_at == 0 && rep.u.verify.verified_seq == head,
	    "incremental: %llu slices %llu records",
	    (unsigned long long)slices, (unsigned long long)total);

	/* a new record altered in LMDB: the incremental slice catches it */
	CHECK(journal(e, N + 2500, N + 3000) == FBX_OK, "journal more");
	head = N + 3000;
	fbx_store_close(e->st);
	e->st = NULL;
	CHECK(tamper(dir, N + 2700) == 0, "tamper new");
	CHECK(tamper(dir, 1000) == 0, "tamper old");
	e->st = open_at(dir);
	if (e->st == NULL)
		return -1;
	fbx_txn_begin(e->st, 1, &t);
	rc = verify(t, 1, 0, "", 1000, head, &rep);
	fbx_txn_commit(t);
	CHECK(rc == FBX_OK && rep.u.verify.broken_at == N + 2700 &&
	        rep.u.verify.complete && rep.u.verify.records == 200,
	    "tampered new record: broken at %llu (%s), %llu records",
	    (unsigned long long)rep.u.verify.broken_at, rep.u.verify.why,
	    (unsigned long long)rep.u.verify.records);
	/* an old record (behind the checkpoint) takes a full verify, which
	 * moves the checkpoint back so incremental reports it too */
	fbx_txn_begin(e->st, 1, &t);
	rc = verify(t, 0, 0, "", 30000, head, &rep);
	fbx_txn_commit(t);
	CHECK(rc == FBX_OK && rep.u.verify.broken_at == 1000 &&
	        rep.u.verify.verified_seq == 999,
	    "tampered old record, full: broken at %llu",
	    (unsigned long long)rep.u.verify.broken_at);
	fbx_txn_begin(e->st, 1, &t);
	rc = verify(t, 1, 0, "", 30000, head, &rep);
	fbx_txn_commit(t);
	CHECK(rc == FBX_OK && rep.u.verify.broken_at == 1000,
	    "incremental after the full found it: broken at %llu",
	    (unsigned long long)rep.u.verify.broken_at);
	return 0;
}

static void
test_upgrade(const char *dir)
{
	struct fbx_engine *e = calloc(1, sizeof(*e));
	struct fbx_audit_rec *v = calloc(100, sizeof(*v));
	struct fbx_store_stat ss;
	uint64_t next = 0;
	fbx_txn *t = NULL;
	long n;

	if (e == NULL || v == NULL)
		goto out;
	e->st = open_at(dir);
	CHECK(e->st != NULL, "open");
	if (e->st == NULL)
		goto out;
	CHECK(journal(e, 0, 45000) == FBX_OK, "journal");
	fbx_store_close(e->st);
	CHECK(make_v1(dir) == 0, "make a schema 1 store");
	e->st = open_at(dir);
	CHECK(e->st != NULL, "open schema 1");
	if (e->st == NULL)
		goto out;
	memset(&ss, 0, sizeof(ss));
	fbx_store_stat(e->st, &ss);
	CHECK(ss.audit_upgraded == 45000, "upgraded %llu",
	    (unsigned long long)ss.audit_upgraded);
	fbx_txn_begin(e->st, 0, &t);
	n = list(t, "rare", "", "", 0, 0, 0, 100, v, &next);
	CHECK(n == 4 && v[0].seq == 8 && v[1].seq == 14 && v[3].seq == 40008,
	    "rare after the upgrade: %ld", n);
	n = list(t, "big", "", "", at_of(44990), 0, 0, 100, v, &next);
	CHECK(n == 10 && v[0].seq == 44991, "since after the upgrade: %ld", n);
	fbx_txn_abort(t);
	fbx_store_close(e->st);
	/* once upgraded, a reopen has nothing to do */
	e->st = open_at(dir);
	memset(&ss, 0, sizeof(ss));
	if (e->st != NULL)
		fbx_store_stat(e->st, &ss);
	CHECK(e->st != NULL && ss.audit_upgraded == 0, "second open %llu",
	    (unsigned long long)ss.audit_upgraded);
	fbx_store_close(e->st);
out:
	free(e);
	free(v);
}

int
main(void)
{
	char dir[] = "/tmp/fbx-auditix-XXXXXX", dir2[64], cmd[128];
	struct fbx_engine *e = calloc(1, sizeof(*e));

	if (e == NULL || mkdtemp(dir) == NULL) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	snprintf(dir2, sizeof(dir2), "%s/v1", dir);
	e->st = open_at(dir);
	CHECK(e->st != NULL, "open");
	if (e->st != NULL) {
		CHECK(journal(e, 0, N) == FBX_OK, "journal %d", N);
		CHECK(e->audit_seq == N, "seq %llu",
		    (unsigned long long)e->audit_seq);
		test_lists(e->st);
		test_verify(e, dir);
		fbx_store_close(e->st);
	}
	test_upgrade(dir2);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(e);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
