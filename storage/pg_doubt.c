/*
 * pg_doubt.c: a PostgreSQL commit in doubt looked up (pg_doubt.h).
 * store_pg.c reads the transaction's id and the server's start time
 * before COMMIT; when COMMIT's answer is lost, this file asks a new
 * connection whether that transaction committed. Only the URL and the
 * log are needed: the writer's connection is gone, and nothing here
 * touches the store's transaction.
 */
#include "pg_doubt.h"

#include <errno.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pg_wait.h"
#include "store_pg.h"

/* a question's wait for its answer on the client's side (pg_wait.h):
 * the server's statement_timeout of 1 s, and a round trip */
#define DOUBT_WAIT_MS 2000u

int
fbxi_pg_xact_read(const PGresult *r, struct fbxi_pg_xact *x)
{
	x->id[0] = x->server[0] = '\0';
	if (PQntuples(r) != 1 || PQnfields(r) != 2 || PQgetisnull(r, 0, 1))
		return MDB_PANIC;
	for (int f = 0; f < 2; f++) {
		/* binary result format: text comes as its bytes */
		char *dst = f == 0 ? x->id : x->server;
		size_t cap = f == 0 ? sizeof(x->id) : sizeof(x->server);
		int n = PQgetlength(r, 0, f);
		if (PQgetisnull(r, 0, f))
			continue; /* no id: the transaction wrote nothing */
		if (n <= 0 || (size_t)n >= cap)
			return MDB_PANIC;
		memcpy(dst, PQgetvalue(r, 0, f), (size_t)n);
		dst[n] = '\0';
	}
	return 0;
}

int64_t
fbxi_pg_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* doubt_conn - a connection for the question, bounded whatever the URL
 * says: the connect (2 s an address, libpq's least), the question (1 s
 * at the server, 1 s of unacknowledged data on TCP, and 2 s for the
 * answer on our side: a server that stopped answering). NULL if
 * none. */
static PGconn *
doubt_conn(const char *url, const char *shown)
{
	const char *const kw[] = { "dbname", "connect_timeout",
		"tcp_user_timeout", "keepalives_idle", "keepalives_interval",
		"keepalives_count", NULL };
	const char *const val[] = { url, "1", "1000", "1", "1", "1", NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);
	PGresult *r;

	if (c == NULL)
		return NULL;
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	r = fbxi_pg_exec1(c, DOUBT_WAIT_MS, shown,
	    "SET client_min_messages = error; "
	    "SET statement_timeout = 1000");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

/* settled - log a step of the lookup and return code. */
static int __attribute__((format(printf, 3, 4)))
settled(const char *shown, int code, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fbxi_pg_log(shown, "commit in doubt", msg);
	return code;
}

/* ask - one question on c: 1 with *code set when it settles the
 * outcome, 0 when it must be asked again (no answer, or the old
 * session still committing: a synchronous standby not answering
 * yet). */
static int
ask(PGconn *c, const char *shown, const struct fbxi_pg_xact *x, int other_life,
    int *code)
{
	const char *vals[2]
	    = { x->id, other_life ? "2000-01-01 00:00:00+00" : x->server };
	PGresult *r = fbxi_pg_exec(c, DOUBT_WAIT_MS, shown,
	    "SELECT pg_postmaster_start_time() = $2::timestamptz, "
	    "CASE WHEN pg_postmaster_start_time() = "
	    "$2::timestamptz THEN pg_xact_status($1::xid8) END",
	    2, vals, NULL, NULL, 0);
	const char *st = NULL;
	int done = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1
	    || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		return 0;
	}
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		*code = settled(shown, FBXI_EINDOUBT,
		    "the server is not the one transaction %s ran on "
		    "(restarted or failed over): whether it committed is "
		    "unknown",
		    x->id);
		done = 1;
	} else if (!PQgetisnull(r, 0, 1)
	    && strcmp(st = PQgetvalue(r, 0, 1), "in progress") != 0) {
		int committed = strcmp(st, "committed") == 0;
		*code = settled(shown, committed ? 0 : EIO,
		    "transaction %s %s", x->id,
		    committed ? "committed: the turn happened"
		              : "was rolled back: nothing of the turn "
		                "happened");
		done = 1;
	}
	PQclear(r);
	return done;
}

int
fbxi_pg_in_doubt(const char *url, const char *shown,
    const struct fbxi_pg_xact *x, int blind, int other_life)
{
	int64_t end = fbxi_pg_mono_ms() + FBXI_PG_DOUBT_MS;
	int code = FBXI_EINDOUBT;

	(void)settled(shown, 0,
	    "COMMIT was sent and its answer lost (the connection went, or "
	    "no memory for it); asking the server whether transaction %s "
	    "committed",
	    x->id);
	while (fbxi_pg_mono_ms() < end) {
		PGconn *c = blind ? NULL : doubt_conn(url, shown);
		int done = c != NULL && ask(c, shown, x, other_life, &code);
		PQfinish(c);
		if (done)
			return code;
		nanosleep(&(struct timespec) { 0, 100 * 1000 * 1000 }, NULL);
	}
	return settled(shown, FBXI_EINDOUBT,
	    "whether transaction %s committed is unknown after %d ms", x->id,
	    FBXI_PG_DOUBT_MS);
}
