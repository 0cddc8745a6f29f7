/*
 * pg_wait.h: statements on PostgreSQL whose wait for the server ends.
 *
 * libpq's PQexec and PQconnectdb wait for the server's answer without
 * end. A server that stops answering while its host still takes TCP
 * (a postmaster stopped or hung, a data disk whose fsync blocks, a
 * virtual machine paused) would hold the engine thread, and with it
 * every console, gateway and /metrics answer, for as long: the host's
 * kernel answers the keepalives, and tcp_user_timeout sees nothing
 * unacknowledged.
 *
 * fbxi_pg_exec sends a statement and waits for its answer up to a
 * deadline; past it the connection's socket is shut down, so libpq ends
 * the connection as lost and the caller's path for a lost connection
 * runs: the statement's transaction fails (a turn answers IO and the
 * engine degrades, retrying later), and a COMMIT whose answer did not
 * come is asked about on a new connection (pg_doubt.c). The server,
 * once it runs again, reads the end of the stream and ends the session,
 * rolling back whatever it had not committed.
 */
#ifndef FBX_PG_WAIT_H
#define FBX_PG_WAIT_H

#include <libpq-fe.h>

/* the default bound, in milliseconds (fbx_store_opts.pg_wait_ms 0) */
#define FBXI_PG_WAIT_MS 10000u

/* fbxi_pg_exec - PQexecParams (n params; n < 0: PQexec, which takes
 * several statements, no parameters, text results) with the wait for the answer bounded
 * by wait_ms (0 = FBXI_PG_WAIT_MS). Results as PQexec's: the last
 * result, or the first error's; NULL when nothing could be sent (no
 * memory, or the connection is gone) or the connection was lost
 * meanwhile: PQstatus tells which, PQerrorMessage why. Past the bound
 * the connection is ended (PQstatus CONNECTION_BAD), NULL is returned
 * and the store's log says so (fbxi_pg_log: shown is the URL without
 * its password). */
PGresult *fbxi_pg_exec(PGconn *c, unsigned wait_ms, const char *shown,
    const char *sql, int n, const char *const *vals, const int *lens,
    const int *fmts, int resfmt);

/* fbxi_pg_exec1 - one statement or several, no parameters, text
 * results, as fbxi_pg_exec. */
PGresult *fbxi_pg_exec1(
    PGconn *c, unsigned wait_ms, const char *shown, const char *sql);

/* fbxi_pg_connect - PQconnectdbParams of the libpq URL or connection
 * string url, with connect_timeout set from wait_ms (whole seconds,
 * at least 2) unless url sets its own, and the keywords kw / vals
 * (NULL-terminated, may be NULL) after it (they win over url's). A
 * connect that fails after its whole bound counts as no answer
 * (fbxi_pg_quiet) of the server shown names. */
PGconn *fbxi_pg_connect(const char *url, const char *shown, unsigned wait_ms,
    const char *const *kw, const char *const *vals);

/* fbxi_pg_quiet - whether the server shown names (its URL without the
 * password) left a statement or a connect of this process without an
 * answer less than wait_ms ago (0 = FBXI_PG_WAIT_MS); *ago_ms (if not
 * NULL) gets how long ago. The store then fails a transaction's begin
 * and an open at once, rather than wait the bound again in each of the
 * steps after a failed turn (its retry, the memory rebuild, the store's
 * reopen): a console waits one bound, not five. One server at a time
 * (the last that did not answer): a process has one store. */
int fbxi_pg_quiet(const char *shown, unsigned wait_ms, long long *ago_ms);

#endif
