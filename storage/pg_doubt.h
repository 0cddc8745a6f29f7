/*
 * pg_doubt.h: private to storage/. A PostgreSQL commit in doubt: COMMIT
 * was sent and its answer never came (the connection went: a failover,
 * a cut network, a killed backend; or libpq had no memory for the
 * answer). The transaction may or may not have committed, so store_pg.c
 * does not take it for a rollback: before every write COMMIT it reads
 * the transaction's identity (FBXI_PG_XACT_SQL, fbxi_pg_xact_read), and
 * when the answer is lost it asks the server on a new connection
 * (fbxi_pg_in_doubt). Taking the store's session lock back after a
 * "committed" answer needs the writer's connection and stays in
 * store_pg.c (doubt_committed).
 */
#ifndef FBX_PG_DOUBT_H
#define FBX_PG_DOUBT_H

#include <libpq-fe.h>
#include <stdint.h>

/* A write transaction's identity: its id ("" if it wrote nothing: no id
 * assigned, nothing to lose) and the start time of the server it ran
 * on. An id names one transaction only within one server's life: after
 * a restart or a failover the id of a transaction whose records did not
 * reach the disk (or the standby) may be given again to another, so a
 * status read from another server life proves nothing. */
struct fbxi_pg_xact {
	char id[32];
	char server[64];
};

/* the statement, inside the write transaction just before COMMIT (one
 * round trip), whose binary result fbxi_pg_xact_read reads */
#define FBXI_PG_XACT_SQL                                                      \
	"SELECT pg_current_xact_id_if_assigned()::text, "                     \
	"pg_postmaster_start_time()::text"

/* fbxi_pg_xact_read - x from FBXI_PG_XACT_SQL's result r.
 * @return 0, or MDB_PANIC when r is not the expected row. */
int fbxi_pg_xact_read(const PGresult *r, struct fbxi_pg_xact *x);

/* how long a commit in doubt is looked up, and store_pg.c's
 * doubt_committed tries to take the store's lock back (ms) */
#define FBXI_PG_DOUBT_MS 3000

/* fbxi_pg_mono_ms - CLOCK_MONOTONIC in ms. */
int64_t fbxi_pg_mono_ms(void);

/* fbxi_pg_in_doubt - the answer to x's COMMIT was lost: ask the server
 * at url (pg_xact_status, on a new connection bounded whatever the URL
 * says) every 100 ms for up to FBXI_PG_DOUBT_MS. @return 0 if it
 * committed (the turn happened), EIO if it was rolled back (nothing of
 * it happened), FBXI_EINDOUBT (the store's FBX_ETIMEOUT: the outcome is
 * unknown) if the server cannot tell in time, or at once if it is no
 * longer the server life x ran in (restarted, failed over). Each step
 * is logged under shown (the URL without its password). blind (test
 * hook) never reaches the server; other_life (test hook) takes the
 * server for another one. */
int fbxi_pg_in_doubt(const char *url, const char *shown,
    const struct fbxi_pg_xact *x, int blind, int other_life);

/* fbxi_pg_log - store_pg.c's log line: "fusebox store (postgresql
 * <shown>): <what>: <msg>" on stderr. */
void fbxi_pg_log(const char *shown, const char *what, const char *msg);

/* fbxi_store_log - one line of the store's at level (0 error, 1 warning,
 * 2 information) and of kind (a string literal, fbx_store_log_fn) to the
 * hook of fbx_store_set_log, or to stderr: every run of line breaks and
 * tabs (libpq's messages have them) becomes one space, so a message is
 * one line of the daemon's log */
void fbxi_store_log(int level, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
