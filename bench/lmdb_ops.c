/*
 * lmdb_ops.c: how many LMDB operations a process makes, per table. An
 * LD_PRELOAD library (libfbx_lmdb_ops.so, built with the benchmarks):
 * it wraps mdb_dbi_open (to learn the tables' names), mdb_get, mdb_put,
 * mdb_del, mdb_cursor_put, mdb_cursor_del and mdb_txn_commit, counts,
 * and calls LMDB's own. When the process exits normally it appends one
 * line per table to $FBX_LMDB_OPS_OUT (standard error when unset):
 *
 *   lmdb_ops pid=P table=NAME get=N put=N del=N
 *
 * and a last line with the commits. Counts only: nothing is timed, and
 * the program's behaviour does not change. Every process that inherits
 * the variable counts its own (the daemon, the simulator), each its own
 * lines. Example (docs/benchmarks.md, "The command record written
 * once"):
 *
 *   FBX_LMDB_OPS_OUT=/tmp/ops.txt \
 *   LD_PRELOAD=build/release/bench/libfbx_lmdb_ops.so \
 *   build/release/bench/bench_intake --clients 32 --inflight 8 \
 *       --seconds 4 --runs 1
 *
 * Counters are plain (not atomic): the engine writes from one thread;
 * reads from other threads may be counted loosely. Tables past the
 * 64th dbi handle are not counted.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NDBI 64

static char names[NDBI][32];
static unsigned long n_get[NDBI], n_put[NDBI], n_del[NDBI], n_commit;

/* real - LMDB's own function of that name (the next in link order) */
static void *
real(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL) {
		fprintf(stderr, "lmdb_ops: %s not found\n", name);
		abort();
	}
	return f;
}

int
mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags,
    MDB_dbi *dbi)
{
	static int (*f)(MDB_txn *, const char *, unsigned int, MDB_dbi *);
	int rc;

	if (f == NULL)
		f = real("mdb_dbi_open");
	rc = f(txn, name, flags, dbi);
	if (rc == 0 && *dbi < NDBI)
		snprintf(names[*dbi], sizeof(names[*dbi]), "%s",
		    name != NULL ? name : "(main)");
	return rc;
}

int
mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
	static int (*f)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);

	if (f == NULL)
		f = real("mdb_get");
	if (dbi < NDBI)
		n_get[dbi]++;
	return f(txn, dbi, key, data);
}

int
mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data,
    unsigned int flags)
{
	static int (*f)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *, unsigned);

	if (f == NULL)
		f = real("mdb_put");
	if (dbi < NDBI)
		n_put[dbi]++;
	return f(txn, dbi, key, data, flags);
}

int
mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
	static int (*f)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *);

	if (f == NULL)
		f = real("mdb_del");
	if (dbi < NDBI)
		n_del[dbi]++;
	return f(txn, dbi, key, data);
}

int
mdb_cursor_put(MDB_cursor *cur, MDB_val *key, MDB_val *data,
    unsigned int flags)
{
	static int (*f)(MDB_cursor *, MDB_val *, MDB_val *, unsigned);
	MDB_dbi dbi = mdb_cursor_dbi(cur);

	if (f == NULL)
		f = real("mdb_cursor_put");
	if (dbi < NDBI)
		n_put[dbi]++;
	return f(cur, key, data, flags);
}

int
mdb_cursor_del(MDB_cursor *cur, unsigned int flags)
{
	static int (*f)(MDB_cursor *, unsigned);
	MDB_dbi dbi = mdb_cursor_dbi(cur);

	if (f == NULL)
		f = real("mdb_cursor_del");
	if (dbi < NDBI)
		n_del[dbi]++;
	return f(cur, flags);
}

int
mdb_txn_commit(MDB_txn *txn)
{
	static int (*f)(MDB_txn *);

	if (f == NULL)
		f = real("mdb_txn_commit");
	n_commit++;
	return f(txn);
}

__attribute__((destructor)) static void
report(void)
{
	const char *path = getenv("FBX_LMDB_OPS_OUT");
	FILE *out = stderr;
	int any = 0;

	if (path != NULL && path[0] != '\0') {
		out = fopen(path, "a");
		if (out == NULL)
			return;
	}
	for (int i = 0; i < NDBI; i++) {
		if (n_get[i] == 0 && n_put[i] == 0 && n_del[i] == 0)
			continue;
		any = 1;
		fprintf(out, "lmdb_ops pid=%ld table=%s get=%lu put=%lu del=%lu\n",
		    (long)getpid(), names[i][0] ? names[i] : "?", n_get[i],
		    n_put[i], n_del[i]);
	}
	if (any || n_commit > 0)
		fprintf(out, "lmdb_ops pid=%ld commits=%lu\n", (long)getpid(),
		    n_commit);
	if (out != stderr)
		fclose(out);
}
