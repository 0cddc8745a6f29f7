/*
 * pg_wait.c: statements on PostgreSQL whose wait for the server ends
 * (pg_wait.h).
 *
 * The statement goes out with the connection in libpq's nonblocking
 * mode, so that a server that reads nothing cannot hold the send
 * either; the answer is awaited with poll() on the connection's socket
 * up to the deadline, then read as PQexec reads it. Past the deadline
 * the socket is shut down (both ways): libpq's next read sees the end
 * of the stream and ends the connection (CONNECTION_BAD), and the
 * caller gets NULL on a connection that is not OK: a lost connection,
 * which every caller already handles.
 */
#include "pg_wait.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pg_doubt.h"

/* the longest poll() over an encrypted connection (await) */
#define ENC_SLICE_MS 50

/* the last server that left this process without an answer, and when
 * (fbxi_pg_quiet; the store's threads share it) */
static pthread_mutex_t quiet_mu = PTHREAD_MUTEX_INITIALIZER;
static char quiet_who[512];
static int64_t quiet_at;

static void
quiet_mark(const char *shown)
{
	pthread_mutex_lock(&quiet_mu);
	snprintf(quiet_who, sizeof(quiet_who), "%s", shown != NULL ? shown : "");
	quiet_at = fbxi_pg_mono_ms();
	pthread_mutex_unlock(&quiet_mu);
}

int
fbxi_pg_quiet(const char *shown, unsigned wait_ms, long long *ago_ms)
{
	int64_t ago;
	int quiet;

	if (wait_ms == 0)
		wait_ms = FBXI_PG_WAIT_MS;
	pthread_mutex_lock(&quiet_mu);
	ago = fbxi_pg_mono_ms() - quiet_at;
	quiet = quiet_at != 0 && ago < (int64_t)wait_ms &&
	    strcmp(quiet_who, shown != NULL ? shown : "") == 0;
	pthread_mutex_unlock(&quiet_mu);
	if (ago_ms != NULL)
		*ago_ms = (long long)ago;
	return quiet;
}

/* give_up - end c's connection: libpq reads what is left of the
 * stream, then its end, and takes the connection for lost
 * (CONNECTION_BAD). A part of the answer may have come just before the
 * shutdown: each read takes what is queued, so read until the end (the
 * queue is finite: on a Unix socket the server can send nothing more,
 * on TCP only what it had under way). */
static void
give_up(PGconn *c, unsigned wait_ms, const char *shown, const char *sql)
{
	char msg[160];
	int fd = PQsocket(c);

	if (fd >= 0)
		(void)shutdown(fd, SHUT_RDWR);
	for (int i = 0; i < 100000 && PQstatus(c) == CONNECTION_OK; i++)
		if (!PQconsumeInput(c))
			break;
	quiet_mark(shown);
	snprintf(msg, sizeof(msg),
	    "no answer in %u ms to \"%.40s%s\": connection closed", wait_ms,
	    sql, strlen(sql) > 40 ? "..." : "");
	fbxi_pg_log(shown, "server not answering", msg);
}

/* await - wait until c can be read (want_write 0) or until its output
 * is flushed (want_write 1), at most until deadline; @return 1 ready,
 * 0 past the deadline, -1 the connection failed (libpq knows why). */
static int
await(PGconn *c, int64_t deadline, int want_write)
{
	int enc = PQsslInUse(c) || PQgssEncInUse(c);

	for (;;) {
		struct pollfd p;
		int64_t left;
		int n;

		if (want_write) {
			int f = PQflush(c);
			if (f <= 0)
				return f == 0 ? 1 : -1;
		} else if (!PQisBusy(c)) {
			return 1;
		}
		left = deadline - fbxi_pg_mono_ms();
		if (left <= 0)
			return 0;
		p.fd = PQsocket(c);
		p.events = POLLIN | (want_write ? POLLOUT : 0);
		p.revents = 0;
		if (p.fd < 0)
			return -1;
		/* over TLS or GSS encryption, bytes already taken off the
		 * socket may wait decrypted inside the library, which the
		 * socket does not show: look in slices, and read after each */
		if (enc && left > ENC_SLICE_MS)
			left = ENC_SLICE_MS;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n < 0 && errno != EINTR)
			return -1;
		/* read what came (also while flushing: a server blocked
		 * writing to us reads nothing until we do) */
		if ((enc || (n > 0 && (p.revents &
		                         (POLLIN | POLLERR | POLLHUP)) != 0)) &&
		    !PQconsumeInput(c))
			return -1;
	}
}

PGresult *
fbxi_pg_exec(PGconn *c, unsigned wait_ms, const char *shown, const char *sql,
    int n, const char *const *vals, const int *lens, const int *fmts,
    int resfmt)
{
	PGresult *keep = NULL, *r;
	int64_t deadline;
	int sent, ready;

	if (wait_ms == 0)
		wait_ms = FBXI_PG_WAIT_MS;
	deadline = fbxi_pg_mono_ms() + wait_ms;
	/* a result left from an earlier statement would answer this one
	 * (every statement here reads all of its own; never blocks) */
	while (PQstatus(c) == CONNECTION_OK && !PQisBusy(c) &&
	    (r = PQgetResult(c)) != NULL)
		PQclear(r);
	if (PQsetnonblocking(c, 1) != 0)
		return NULL;
	sent = n < 0
	    ? PQsendQuery(c, sql)
	    : PQsendQueryParams(c, sql, n, NULL, vals, lens, fmts, resfmt);
	ready = sent ? await(c, deadline, 1) : -1;
	if (ready == 1)
		ready = await(c, deadline, 0);
	(void)PQsetnonblocking(c, 0);
	if (!sent)
		return NULL;
	/* as PQexec: the last result, an error kept over what follows it;
	 * every result read, so the connection is ready for the next */
	for (;;) {
		if (ready == 1 && PQisBusy(c))
			ready = await(c, deadline, 0);
		if (ready != 1) {
			/* past the deadline (or a poll() that failed on a
			 * live connection): ended here; reading the end of
			 * the stream makes it CONNECTION_BAD, and
			 * PQerrorMessage says it was closed. A connection
			 * that failed by itself has that already. Not
			 * PQgetResult: on a dead socket it adds "invalid
			 * socket" to the message. */
			if (ready == 0 || PQstatus(c) == CONNECTION_OK)
				give_up(c, wait_ms, shown, sql);
			PQclear(keep);
			return NULL;
		}
		r = PQgetResult(c);
		if (r == NULL)
			break;
		if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
			PQclear(r);
			continue;
		}
		PQclear(keep);
		keep = r;
		if (PQresultStatus(r) == PGRES_COPY_IN ||
		    PQresultStatus(r) == PGRES_COPY_OUT ||
		    PQresultStatus(r) == PGRES_COPY_BOTH)
			break; /* as PQexec: the store sends no COPY */
	}
	return keep;
}

PGresult *
fbxi_pg_exec1(PGconn *c, unsigned wait_ms, const char *shown, const char *sql)
{
	return fbxi_pg_exec(c, wait_ms, shown, sql, -1, NULL, NULL, NULL, 0);
}

PGconn *
fbxi_pg_connect(const char *url, const char *shown, unsigned wait_ms,
    const char *const *kw, const char *const *vals)
{
	const char *k[16], *v[16];
	char secs[16];
	size_t n = 0;
	unsigned s;
	int64_t t0 = fbxi_pg_mono_ms();
	PGconn *c;

	if (wait_ms == 0)
		wait_ms = FBXI_PG_WAIT_MS;
	s = (wait_ms + 999) / 1000;
	snprintf(secs, sizeof(secs), "%u", s < 2 ? 2 : s);
	/* before dbname: the URL's own connect_timeout wins */
	k[n] = "connect_timeout";
	v[n++] = secs;
	k[n] = "dbname";
	v[n++] = url;
	for (size_t i = 0; kw != NULL && kw[i] != NULL && n < 15; i++) {
		k[n] = kw[i];
		v[n++] = vals[i];
	}
	k[n] = NULL;
	v[n] = NULL;
	c = PQconnectdbParams(k, v, 1);
	/* failed after the whole bound: the server (or its host) took the
	 * connection and never answered (a URL's own, shorter
	 * connect_timeout is not counted) */
	if (c != NULL && PQstatus(c) != CONNECTION_OK &&
	    fbxi_pg_mono_ms() - t0 >= (int64_t)(s < 2 ? 2 : s) * 1000)
		quiet_mark(shown);
	return c;
}
