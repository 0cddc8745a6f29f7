/*
 * store_util.h: what the store's unit tests (store_test.c,
 * store_pg_fault_test.c) share, in store_util.c: the CHECK macros and
 * their counts, a temporary root directory, stores opened on LMDB or,
 * with FBX_TEST_PG_URL set, on a PostgreSQL schema, and the records
 * they write.
 */
#ifndef FBX_STORE_UTIL_H
#define FBX_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fbx_store.h"

extern int passed, failed;

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

#define CHECK_RC(expr, want)                                                 \
	do {                                                                 \
		int rc_ = (expr);                                            \
		if (rc_ == (want)) {                                         \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "%s:%d: FAIL: %s = %s, want %s\n",   \
			    __FILE__, __LINE__, #expr, fbx_errname(rc_),     \
			    fbx_errname(want));                              \
		}                                                            \
	} while (0)

/* the test's temporary directory (st_begin); stores are below it */
extern char root[64];

/* FBX_TEST_PG_URL set (tests/pg_cluster.sh run): every store of the
 * test is a PostgreSQL schema of that database, named after its
 * directory, instead of an LMDB environment; NULL otherwise. */
extern const char *pg_url;

/* st_begin - read FBX_TEST_PG_URL into pg_url and make root, a new
 * directory /tmp/NAME.XXXXXX; 0, or -1 (said on stderr). */
int st_begin(const char *name);

/* st_end - remove root and everything below it, print the counts;
 * the test's exit status. */
int st_end(void);

/* pg_store_url - the URL of dir's store: pg_url with search_path set
 * to a schema named after dir (lower case: unquoted, as PostgreSQL
 * folds it). */
void pg_store_url(char *buf, size_t cap, const char *dir);

/* pg_exec_dir - run sql on dir's schema; the number of rows it
 * touched, or -1. */
int pg_exec_dir(const char *dir, const char *sql, int n,
    const char *const *vals, const int *lens, const int *fmts);

/* subdir - root/name into buf */
void subdir(char *buf, size_t cap, const char *name);

/* open_store - dir's store (checked to open): LMDB without sync with
 * the map sizes given, or PostgreSQL with synchronous_commit; NULL if
 * it did not open */
fbx_store *open_store(const char *dir, size_t map, size_t max);

/* wtxn, rtxn - a write or read transaction (checked to begin) */
fbx_txn *wtxn(fbx_store *st);
fbx_txn *rtxn(fbx_store *st);

/* mk_cmd - an operator's lock of devices in org, expanding, created at
 * created (ms) for an hour */
void mk_cmd(struct fbx_command *c, const char *org, int64_t created);

/* mk_dlv - a queued delivery to dev with its one history entry */
void mk_dlv(struct fbx_delivery *d, uint64_t id, const char *dev, int64_t at);

/* dlv_collect - a scan's callback: counts deliveries into a dlv_col,
 * their first and last ids, and clears ordered on one out of order */
struct dlv_col {
	uint64_t first, last;
	int n;
	int ordered;
};
int dlv_collect(void *arg, const struct fbx_delivery *d);

#endif
