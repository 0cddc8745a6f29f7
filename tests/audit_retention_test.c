/*
 * audit_retention_test.c: audit retention (issue 8, "flat over years").
 * Records with old times are journaled through the engine's encoder
 * (fbxi_audit) on a bare transaction, then pruned in slices by
 * fbxi_audit_prune_slice: the pruned records must be gone from the log
 * and its three indexes, the archive files must hold exactly them with a
 * valid chain (and a tampered copy must be caught), the anchor must be
 * the last pruned record's hash, a full verify must start there intact,
 * each slice stays within its budget, and an archive that cannot be
 * written prunes nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

#define DAY_MS (86400LL * 1000)
#define NOW_MS 1800000000000LL
#define CUTOFF_MS (NOW_MS - 30 * DAY_MS)
#define OLD_MS (NOW_MS - 90 * DAY_MS)
#define N_OLD 25000
#define N_YOUNG 5000

static fbx_store *
open_at(const char *dir)
{
	struct fbx_store_opts o;
	fbx_store *st = NULL;

	memset(&o, 0, sizeof(o));
	o.path = dir;
	o.durability = FBX_DURABLE_NOSYNC;
	o.map_size = (size_t)128 << 20;
	/* the per-organisation indexes lag by up to 700 records: pruning
	 * meets records with entries and records without */
	o.index_lag = 700;
	if (fbx_store_open(&o, &st) != FBX_OK)
		return NULL;
	return st;
}

/* journal - n records at times t0, t0 + step, ...; organisations "a"
 * and "b" in turn, actors "x" and "y" every third. */
static int
journal(struct fbx_engine *e, uint64_t n, int64_t t0, int64_t step)
{
	for (uint64_t i = 0; i < n;) {
		uint64_t end = i + 10000 < n ? i + 10000 : n;
		int rc = fbx_txn_begin(e->st, 1, &e->txn);
		if (rc != FBX_OK)
			return rc;
		e->txn_err = FBX_OK;
		for (; i < end; i++) {
			e->now = t0 + (int64_t)i * step;
			fbxi_audit(e, i % 2 ? "b" : "a", i % 3 ? "x" : "y",
			    "submit", i % 7 ? "" : "a \"quoted\" note",
			    "{\"i\":%llu}", (unsigned long long)i);
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

/* prune - one slice in its own write transaction, as the engine's turn
 * runs it; the turn fails (abort) only if the slice latched an error. */
static int
prune(struct fbx_engine *e, int64_t cutoff, uint32_t budget,
    uint32_t *pruned, int *latched)
{
	int rc, crc;

	*pruned = UINT32_MAX;
	if (fbx_txn_begin(e->st, 1, &e->txn) != FBX_OK)
		return -1;
	e->txn_err = FBX_OK;
	e->now = NOW_MS;
	rc = fbxi_audit_prune_slice(e, cutoff, budget, pruned);
	*latched = e->txn_err != FBX_OK;
	if (*latched) {
		fbx_txn_abort(e->txn);
	} else {
		crc = fbx_txn_commit(e->txn);
		if (crc != FBX_OK)
			rc = crc;
	}
	e->txn = NULL;
	return rc;
}

static int
rec_hash(fbx_store *st, uint64_t seq, uint8_t out[32])
{
	uint8_t rec[2048];
	size_t len = 0;
	fbx_txn *t = NULL;
	int rc = fbx_txn_begin(st, 0, &t);

	if (rc == FBX_OK)
		rc = fbx_store_audit_get(t, seq, rec, sizeof(rec), &len);
	if (rc == FBX_OK && len >= 65)
		memcpy(out, rec + 33, 32);
	fbx_txn_abort(t);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* archives - the archive files of dir, sorted (names sort by sequence) */
static size_t
archives(const char *dir, char **names, size_t cap)
{
	char path[512];
	struct dirent *d;
	DIR *dp;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/audit-archive", dir);
	dp = opendir(path);
	if (dp == NULL)
		return 0;
	while ((d = readdir(dp)) != NULL && n < cap) {
		if (d->d_name[0] == '.')
			continue;
		names[n] = malloc(1024);
		if (names[n] == NULL ||
		    (size_t)snprintf(names[n], 1024, "%s/%s", path,
		        d->d_name) >= 1024) {
			free(names[n]);
			continue;
		}
		n++;
	}
	closedir(dp);
	qsort(names, n, sizeof(*names), cmp_str);
	return n;
}

/* check_files - fbxi_audit_archive_check over files in order */
static int
check_files(char **names, size_t n, struct fbxi_archive_check *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n && c->why[0] == '\0'; i++) {
		FILE *f = fopen(names[i], "r");
		int rc;
		if (f == NULL)
			return -1;
		rc = fbxi_audit_archive_check(f, c);
		fclose(f);
		if (rc != FBX_OK)
			return rc;
	}
	return FBX_OK;
}

/* tamper_copy - copy src to dst with the first occurrence of `from` on
 * line `line` (1-based) replaced by `to` (same length), or the line
 * dropped when to is NULL. */
static int
tamper_copy(const char *src, const char *dst, int line, const char *from,
    const char *to)
{
	FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
	char *buf = NULL;
	size_t cap = 0;
	int ln = 0, done = 0;

	if (in == NULL || out == NULL) {
		if (in)
			fclose(in);
		if (out)
			fclose(out);
		return -1;
	}
	while (getline(&buf, &cap, in) > 0) {
		ln++;
		if (ln == line) {
			char *p = strstr(buf, from);
			if (to == NULL) {
				done = 1;
				continue;
			}
			if (p != NULL) {
				memcpy(p, to, strlen(to));
				done = 1;
			}
		}
		fputs(buf, out);
	}
	free(buf);
	fclose(in);
	fclose(out);
	return done ? 0 : -1;
}

/* count_ix - entries in an index table (store closed) */
static long
count_ix(const char *dir, const char *name)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_stat ms;
	long n = -1;

	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 32);
	if (mdb_env_open(env, dir, MDB_RDONLY, 0640) == 0 &&
	    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0) {
		if (mdb_dbi_open(txn, name, 0, &dbi) == 0 &&
		    mdb_stat(txn, dbi, &ms) == 0)
			n = (long)ms.ms_entries;
		mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	return n;
}

static long
list(fbx_txn *t, const char *org, const char *action, int64_t since,
    struct fbx_audit_rec *v, size_t cap, uint64_t *next)
{
	struct fbx_console_req req;
	size_t n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_LIST;
	snprintf(req.org, sizeof(req.org), "%s", org);
	snprintf(req.u.audit_list.action, sizeof(req.u.audit_list.action),
	    "%s", action);
	req.u.audit_list.since_ms = since;
	if (fbxi_audit_list_page(t, &req, v, cap, &n, next) != FBX_OK)
		return -1;
	return (long)n;
}

static void
test_prune(const char *dir)
{
	struct fbx_engine *e = calloc(1, sizeof(*e));
	struct fbx_audit_rec *v = calloc(100, sizeof(*v));
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_audit_mark m;
	struct fbxi_archive_check c;
	struct fbx_store_stat ss;
	uint8_t h25000[32], h10000[32];
	char *names[16], tpath[600];
	uint64_t first = 0, next = 0, prune_seq;
	uint32_t n = 0;
	size_t nf;
	fbx_txn *t = NULL;
	long k;
	int rc, latched = 0;

	if (e == NULL || v == NULL)
		goto out;
	e->o.data_dir = dir;
	e->st = open_at(dir);
	CHECK(e->st != NULL, "open");
	if (e->st == NULL)
		goto out;
	/* 25,000 records 90 days old (one a second), 5,000 of the last hour */
	CHECK(journal(e, N_OLD, OLD_MS, 1000) == FBX_OK, "journal old");
	CHECK(journal(e, N_YOUNG, NOW_MS - 3600 * 1000, 500) == FBX_OK,
	    "journal young");
	CHECK(rec_hash(e->st, N_OLD, h25000) == FBX_OK, "hash of 25000");
	CHECK(rec_hash(e->st, 10000, h10000) == FBX_OK, "hash of 10000");

	/* a budget above the cap is capped: at most 10,000 a slice */
	rc = prune(e, CUTOFF_MS, 50000, &n, &latched);
	CHECK(rc == FBX_OK && !latched && n == 10000, "slice 1: rc %d n %u",
	    rc, n);
	prune_seq = e->audit_seq;
	CHECK(prune_seq == N_OLD + N_YOUNG + 1, "audit.prune record %llu",
	    (unsigned long long)prune_seq);
	fbx_txn_begin(e->st, 0, &t);
	rc = fbx_store_audit_mark_get(t, FBX_AUDIT_ANCHOR, &m);
	CHECK(rc == FBX_OK && m.seq == 10000 && !memcmp(m.hash, h10000, 32),
	    "anchor after slice 1: %llu", (unsigned long long)m.seq);
	fbx_txn_abort(t);
	rc = prune(e, CUTOFF_MS, 7000, &n, &latched);
	CHECK(rc == FBX_OK && n == 7000, "slice 2 (budget 7000): n %u", n);
	rc = prune(e, CUTOFF_MS, 10000, &n, &latched);
	CHECK(rc == FBX_OK && n == 8000,
	    "slice 3: the 8,000 left, short but old: n %u", n);
	rc = prune(e, CUTOFF_MS, 10000, &n, &latched);
	CHECK(rc == FBX_OK && n == 0, "slice 4: nothing old left: n %u", n);

	/* the pruned records are gone from the log and the indexes */
	fbx_txn_begin(e->st, 0, &t);
	rc = fbx_store_audit_first(t, &first);
	CHECK(rc == FBX_OK && first == N_OLD + 1, "first %llu",
	    (unsigned long long)first);
	{
		uint8_t rec[2048];
		size_t len;
		int gone = 1;
		for (uint64_t s = 1; s <= N_OLD; s += 997)
			gone &= fbx_store_audit_get(t, s, rec, sizeof(rec),
			            &len) == FBX_ENOT_FOUND;
		gone &= fbx_store_audit_get(t, N_OLD, rec, sizeof(rec),
		            &len) == FBX_ENOT_FOUND;
		CHECK(gone, "pruned records still readable");
	}
	/* listings start after the anchor (an index entry left behind
	 * would be an entry without its record: FBX_ECORRUPT) */
	k = list(t, "a", "", 0, v, 100, &next);
	CHECK(k == 100 && v[0].seq > N_OLD, "list a: %ld first %llu", k,
	    (unsigned long long)(k > 0 ? v[0].seq : 0));
	k = list(t, "b", "", OLD_MS, v, 100, &next);
	CHECK(k == 100 && v[0].seq > N_OLD, "list b since old: %ld first %llu",
	    k, (unsigned long long)(k > 0 ? v[0].seq : 0));
	k = list(t, "*", "audit.prune", 0, v, 100, &next);
	CHECK(k == 3 && !strcmp(v[0].actor, "engine") &&
	        strstr(v[0].params, "\"first\":1,\"last\":10000") != NULL &&
	        strstr(v[0].params, "audit-archive/audit-00000000000000000001-"
	                            "00000000000000010000.jsonl") != NULL &&
	        strstr(v[2].params, "\"last\":25000") != NULL,
	    "audit.prune records: %ld (%s)", k, k > 0 ? v[0].params : "");
	{
		char hx[65];
		for (int i = 0; i < 32; i++)
			snprintf(hx + 2 * i, 3, "%02x", h25000[i]);
		CHECK(k == 3 && strstr(v[2].params, hx) != NULL,
		    "the last audit.prune names the anchor hash");
	}
	/* the anchor is the last pruned record; the checkpoint moved to it */
	rc = fbx_store_audit_mark_get(t, FBX_AUDIT_ANCHOR, &m);
	CHECK(rc == FBX_OK && m.seq == N_OLD && !memcmp(m.hash, h25000, 32),
	    "anchor %llu", (unsigned long long)m.seq);
	rc = fbx_store_audit_mark_get(t, FBX_AUDIT_VERIFIED, &m);
	CHECK(rc == FBX_OK && m.seq == N_OLD, "checkpoint %llu",
	    (unsigned long long)m.seq);
	fbx_txn_abort(t);
	memset(&ss, 0, sizeof(ss));
	fbx_store_stat(e->st, &ss);
	CHECK(ss.audit_records == N_YOUNG + 3, "records left %llu",
	    (unsigned long long)ss.audit_records);

	/* verify --full starts at the anchor and finds the rest intact */
	memset(&req, 0, sizeof(req));
	memset(&rep, 0, sizeof(rep));
	req.kind = FBX_CREQ_AUDIT_VERIFY;
	req.u.audit_verify.max_records = 100000;
	fbx_txn_begin(e->st, 1, &t);
	rc = fbxi_audit_verify_slice(t, &req, e->audit_seq, 1, &rep);
	fbx_txn_commit(t);
	CHECK(rc == FBX_OK && rep.u.verify.broken_at == 0 &&
	        rep.u.verify.complete && rep.u.verify.anchor_seq == N_OLD &&
	        rep.u.verify.records == N_YOUNG + 3 &&
	        rep.u.verify.verified_seq == e->audit_seq,
	    "verify --full: rc %d broken %llu (%s) anchor %llu records %llu",
	    rc, (unsigned long long)rep.u.verify.broken_at, rep.u.verify.why,
	    (unsigned long long)rep.u.verify.anchor_seq,
	    (unsigned long long)rep.u.verify.records);

	/* the archive: three files holding exactly 1..25000, chained */
	nf = archives(dir, names, 16);
	CHECK(nf == 3, "%zu archive files", nf);
	if (nf == 3) {
		CHECK(strstr(names[0], "audit-00000000000000000001-"
		                       "00000000000000010000.jsonl") != NULL &&
		        strstr(names[2], "-00000000000000025000.jsonl") != NULL,
		    "names %s %s", names[0], names[2]);
		rc = check_files(names, nf, &c);
		CHECK(rc == FBX_OK && c.why[0] == '\0' && c.records == N_OLD &&
		        c.first_seq == 1 && c.last_seq == N_OLD &&
		        !memcmp(c.last_hash, h25000, 32),
		    "archive check: rc %d records %llu last %llu why '%s'", rc,
		    (unsigned long long)c.records,
		    (unsigned long long)c.last_seq, c.why);
		/* the second file alone: starts at 10001, linking to the
		 * anchor the first left */
		rc = check_files(names + 1, 1, &c);
		CHECK(rc == FBX_OK && c.why[0] == '\0' && c.records == 7000 &&
		        c.first_seq == 10001 &&
		        !memcmp(c.first_prev, h10000, 32),
		    "second file alone: %llu records first %llu",
		    (unsigned long long)c.records,
		    (unsigned long long)c.first_seq);
		/* the offline entry point (fuseboxd --verify-audit-archive) */
		{
			FILE *o = tmpfile();
			char buf[512] = "";
			rc = fbx_audit_archive_verify(
			    (const char *const *)names, nf, o);
			if (o != NULL) {
				rewind(o);
				if (fgets(buf, sizeof(buf), o) == NULL)
					buf[0] = '\0';
				fclose(o);
			}
			CHECK(rc == FBX_OK &&
			        strstr(buf, "intact: 25000 records, 1..25000"),
			    "verify-archive: rc %d '%s'", rc, buf);
		}
		/* tampered copies are caught: a readable field, the record
		 * bytes, a dropped line */
		snprintf(tpath, sizeof(tpath), "%s/tampered.jsonl", dir);
		CHECK(tamper_copy(names[1], tpath, 5, "\"actor\":\"x\"",
		          "\"actor\":\"z\"") == 0,
		    "tamper actor");
		rc = check_files((char *[]){ tpath }, 1, &c);
		CHECK(rc == FBX_OK && c.broken_at == 10005 && c.records == 4,
		    "tampered actor: broken at %llu (%s)",
		    (unsigned long long)c.broken_at, c.why);
		{
			const char *one[1] = { tpath };
			FILE *o = tmpfile();
			rc = fbx_audit_archive_verify(one, 1, o);
			if (o != NULL)
				fclose(o);
			CHECK(rc == FBX_ECORRUPT, "verify-archive tampered: %d",
			    rc);
		}
		CHECK(tamper_copy(names[1], tpath, 7, "7375626d6974",
		          "7375626d6975") == 0,
		    "tamper rec");
		rc = check_files((char *[]){ tpath }, 1, &c);
		CHECK(rc == FBX_OK && c.broken_at == 10007,
		    "tampered rec: broken at %llu (%s)",
		    (unsigned long long)c.broken_at, c.why);
		CHECK(tamper_copy(names[1], tpath, 9, "", NULL) == 0,
		    "drop line");
		rc = check_files((char *[]){ tpath }, 1, &c);
		CHECK(rc == FBX_OK && c.broken_at == 10010 &&
		        strstr(c.why, "missing") != NULL,
		    "dropped line: broken at %llu (%s)",
		    (unsigned long long)c.broken_at, c.why);
		/* files out of order (or one missing) do not chain */
		{
			char *two[2] = { names[0], names[2] };
			rc = check_files(two, 2, &c);
			CHECK(rc == FBX_OK && c.broken_at == 17001,
			    "file 2 missing: broken at %llu (%s)",
			    (unsigned long long)c.broken_at, c.why);
		}
		unlink(tpath);
	}
	for (size_t i = 0; i < nf; i++)
		free(names[i]);
	memset(&ss, 0, sizeof(ss));
	CHECK(fbx_store_stat(e->st, &ss) == FBX_OK && ss.audit_ix_lag > 0 &&
	        ss.audit_ix_lag < 700,
	    "index lag %llu", (unsigned long long)ss.audit_ix_lag);
	fbx_store_close(e->st);
	e->st = NULL;
	/* the index tables hold exactly the records left, but for the
	 * newest ones not indexed yet */
	CHECK(count_ix(dir, "audit_org") + (long)ss.audit_ix_lag ==
	            N_YOUNG + 3 &&
	        count_ix(dir, "audit_actor") + (long)ss.audit_ix_lag ==
	            N_YOUNG + 3,
	    "index entries: org %ld actor %ld (lag %llu)",
	    count_ix(dir, "audit_org"), count_ix(dir, "audit_actor"),
	    (unsigned long long)ss.audit_ix_lag);
	CHECK(count_ix(dir, "audit_time") >= 1 &&
	        count_ix(dir, "audit_time") <= N_YOUNG + 3 + 1,
	    "time entries %ld", count_ix(dir, "audit_time"));
	/* a reopen goes on from the head */
	e->st = open_at(dir);
	if (e->st != NULL) {
		uint64_t head = e->audit_seq;
		fbx_txn_begin(e->st, 0, &t);
		rc = fbxi_audit_load_last(e, t);
		fbx_txn_abort(t);
		CHECK(rc == FBX_OK && e->audit_seq == head, "reload");
		fbx_store_close(e->st);
		e->st = NULL;
	}
out:
	free(e);
	free(v);
}

static void
test_export_failure(const char *dir)
{
	struct fbx_engine *e = calloc(1, sizeof(*e));
	struct fbx_audit_mark m;
	char path[600], stale[700];
	uint64_t first = 0, head;
	uint32_t n = 0;
	fbx_txn *t = NULL;
	FILE *f;
	int rc, latched = 0;

	if (e == NULL || mkdir(dir, 0750) != 0) {
		CHECK(0, "setup");
		free(e);
		return;
	}
	e->o.data_dir = dir;
	e->st = open_at(dir);
	CHECK(e->st != NULL, "open");
	if (e->st == NULL)
		goto out;
	CHECK(journal(e, 12000, OLD_MS, 1000) == FBX_OK, "journal old");
	/* 50 records just past the cutoff (less than the day's lag) */
	CHECK(journal(e, 50, CUTOFF_MS - 3600 * 1000, 1000) == FBX_OK,
	    "journal near");
	head = e->audit_seq;
	/* the archive directory cannot be made (a file is in its place;
	 * works for root too): nothing pruned, the turn is not failed */
	snprintf(path, sizeof(path), "%s/audit-archive", dir);
	f = fopen(path, "w");
	CHECK(f != NULL, "block the archive");
	if (f != NULL)
		fclose(f);
	rc = prune(e, CUTOFF_MS, 10000, &n, &latched);
	CHECK(rc == FBX_EIO && !latched && n == UINT32_MAX,
	    "export failure: rc %d latched %d", rc, latched);
	CHECK(e->audit_seq == head, "no audit.prune record");
	fbx_txn_begin(e->st, 0, &t);
	CHECK(fbx_store_audit_first(t, &first) == FBX_OK && first == 1,
	    "first %llu", (unsigned long long)first);
	CHECK(fbx_store_audit_mark_get(t, FBX_AUDIT_ANCHOR, &m) ==
	        FBX_ENOT_FOUND,
	    "no anchor");
	fbx_txn_abort(t);
	/* an unwritable directory (not for root, who writes anyway) */
	unlink(path);
	if (geteuid() != 0) {
		CHECK(mkdir(path, 0500) == 0, "mkdir");
		rc = prune(e, CUTOFF_MS, 10000, &n, &latched);
		CHECK(rc == FBX_EIO && !latched && e->audit_seq == head,
		    "read-only archive dir: rc %d", rc);
		chmod(path, 0750);
	} else {
		CHECK(mkdir(path, 0750) == 0, "mkdir");
	}
	/* a leftover of a slice whose turn failed is replaced */
	snprintf(stale, sizeof(stale),
	    "%s/audit-00000000000000000001-00000000000000000005.jsonl", path);
	f = fopen(stale, "w");
	if (f != NULL)
		fclose(f);
	rc = prune(e, CUTOFF_MS, 10000, &n, &latched);
	CHECK(rc == FBX_OK && n == 10000, "after repair: rc %d n %u", rc, n);
	CHECK(access(stale, F_OK) != 0, "stale archive removed");
	/* 2,000 old and 50 near the cutoff: not a full slice, but the
	 * oldest is past the lag: all 2,050 go */
	rc = prune(e, CUTOFF_MS, 10000, &n, &latched);
	CHECK(rc == FBX_OK && n == 2050, "short old slice: n %u", n);
	fbx_store_close(e->st);
	e->st = NULL;
	/* 30 records just past the cutoff, nothing older: they wait for
	 * the lag (a day) or a full slice */
	{
		char d2[700];
		snprintf(d2, sizeof(d2), "%s/lag", dir);
		mkdir(d2, 0750);
		e->o.data_dir = d2;
		e->st = open_at(d2);
		e->audit_seq = 0;
		memset(e->audit_last, 0, 32);
		CHECK(e->st != NULL, "open lag");
		if (e->st == NULL)
			goto out;
		CHECK(journal(e, 30, CUTOFF_MS - 3600 * 1000, 1000) == FBX_OK,
		    "journal lag");
		rc = prune(e, CUTOFF_MS, 10000, &n, &latched);
		CHECK(rc == FBX_OK && n == 0, "within the lag: n %u", n);
		rc = prune(e, CUTOFF_MS, 20, &n, &latched);
		CHECK(rc == FBX_OK && n == 20, "a full slice goes: n %u", n);
		rc = prune(e, CUTOFF_MS + DAY_MS, 10000, &n, &latched);
		CHECK(rc == FBX_OK && n == 10, "past the lag: n %u", n);
	}
out:
	fbx_store_close(e->st);
	free(e);
}

int
main(void)
{
	char dir[] = "/tmp/fbx-auditret-XXXXXX", d1[64], d2[64], cmd[128];

	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	snprintf(d1, sizeof(d1), "%s/a", dir);
	snprintf(d2, sizeof(d2), "%s/b", dir);
	if (mkdir(d1, 0750) != 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	test_prune(d1);
	test_export_failure(d2);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
