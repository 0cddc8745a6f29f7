/*
 * pg_lease.c: organisation leases of a node on a shared PostgreSQL store
 * (see pg_lease.h for the tables and the rules).
 *
 * Fencing: a node learns its fence value (fbx_node.ver) at every tick.
 * Whoever takes a lease of another node (an expired one: the owner
 * stopped renewing) adds one to that node's ver in the same
 * transaction. Each write transaction of the node reads its ver (FOR
 * SHARE) before COMMIT: a different value means an
 * organisation the node still acts for in memory was taken, and the
 * transaction is rolled back (ESTALE) before anything of it is visible.
 * A node paused in the middle of a transaction holds the writers'
 * advisory lock (store_pg.c) and maybe that row lock: the
 * server ends the transaction after idle_in_transaction_session_timeout
 * (store_pg.c sets it to half a lease, at least 5 s), so the others are
 * not blocked for longer than that.
 */
#include "pg_lease.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fbx_types.h"
#include "pg_doubt.h"
#include "pg_wait.h"

struct lent {
	char org[FBX_ID_MAX + 1];
	int64_t epoch;
	uint8_t used;
};

struct fbxi_lease {
	char node[FBX_ID_MAX + 1];
	char endpoint[256];
	unsigned ttl_ms;
	unsigned wait_ms; /* pg_wait.h */
	const char *shown;
	int64_t ver;
	int ver_known;
	int seeded; /* every organisation of the store has a lease row */
	/* CLOCK_MONOTONIC ms taken before the last renewal that committed:
	 * the leases run at least ttl_ms past it (0 = never renewed) */
	int64_t renewed_ms;
	struct lent *tab; /* open addressing, power of two */
	size_t cap, n;
	/* claims of the open write transaction */
	struct lent *pend;
	size_t npend, pcap;
};

/* lease_log - a lease event at level (1 warning, 2 information); fmt,
 * one of this file's literals, holds two %s, a and b, and is the
 * event's kind for the log's rate limit */
static void
lease_log(const struct fbxi_lease *L, int level, const char *fmt,
    const char *a, const char *b)
{
	char m[768];

	/* fmt is one of this file's literals */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	(void)snprintf(m, sizeof(m), fmt, a != NULL ? a : "",
	    b != NULL ? b : "");
#pragma GCC diagnostic pop
	fbxi_store_log(level, fmt, "fusebox store (node %s): %s", L->node, m);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
hstr(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static struct lent *
tab_find(const struct fbxi_lease *L, const char *org)
{
	if (L->cap == 0)
		return NULL;
	for (size_t i = hstr(org) & (L->cap - 1);; i = (i + 1) & (L->cap - 1)) {
		if (!L->tab[i].used)
			return NULL;
		if (strcmp(L->tab[i].org, org) == 0)
			return &L->tab[i];
	}
}

static int
tab_put(struct fbxi_lease *L, const char *org, int64_t epoch)
{
	struct lent *e;

	if (strlen(org) > FBX_ID_MAX)
		return EINVAL;
	if ((L->n + 1) * 2 > L->cap) {
		size_t ncap = L->cap ? L->cap * 2 : 64;
		struct lent *nt = calloc(ncap, sizeof(*nt)), *old = L->tab;
		size_t ocap = L->cap;
		if (nt == NULL)
			return ENOMEM;
		L->tab = nt;
		L->cap = ncap;
		L->n = 0;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].used)
				(void)tab_put(L, old[i].org, old[i].epoch);
		free(old);
	}
	e = tab_find(L, org);
	if (e != NULL) {
		e->epoch = epoch;
		return 0;
	}
	for (size_t i = hstr(org) & (L->cap - 1);; i = (i + 1) & (L->cap - 1)) {
		if (!L->tab[i].used) {
			e = &L->tab[i];
			break;
		}
	}
	snprintf(e->org, sizeof(e->org), "%s", org);
	e->epoch = epoch;
	e->used = 1;
	L->n++;
	return 0;
}

static void
tab_clear(struct fbxi_lease *L)
{
	if (L->cap > 0)
		memset(L->tab, 0, L->cap * sizeof(*L->tab));
	L->n = 0;
}

/* tab_del - forget org (the table is rebuilt: open addressing) */
static void
tab_del(struct fbxi_lease *L, const char *org)
{
	struct lent *keep;
	size_t kc = L->cap;

	if (tab_find(L, org) == NULL)
		return;
	keep = malloc(kc * sizeof(*keep));
	if (keep == NULL) {
		/* cannot rebuild: mark it unusable in place instead */
		struct lent *e = tab_find(L, org);
		e->org[0] = '\x01';
		e->org[1] = '\0';
		return;
	}
	memcpy(keep, L->tab, kc * sizeof(*keep));
	tab_clear(L);
	for (size_t i = 0; i < kc; i++)
		if (keep[i].used && strcmp(keep[i].org, org) != 0)
			(void)tab_put(L, keep[i].org, keep[i].epoch);
	free(keep);
}

static int
pend_add(struct fbxi_lease *L, const char *org, int64_t epoch)
{
	if (L->npend == L->pcap) {
		size_t nc = L->pcap ? L->pcap * 2 : 8;
		struct lent *np = realloc(L->pend, nc * sizeof(*np));
		if (np == NULL)
			return ENOMEM;
		L->pend = np;
		L->pcap = nc;
	}
	snprintf(L->pend[L->npend].org, sizeof(L->pend[0].org), "%s", org);
	L->pend[L->npend].epoch = epoch;
	L->pend[L->npend++].used = 1;
	return 0;
}

/* pend_taken - a claim that took over a stored organisation: not owned
 * for this transaction (its state is not loaded), owned after commit */
static int
pend_taken(struct fbxi_lease *L, const char *org, int64_t epoch)
{
	int code = pend_add(L, org, epoch);

	if (code == 0)
		L->pend[L->npend - 1].used = 2;
	return code;
}

struct fbxi_lease *
fbxi_lease_new(const char *node, const char *endpoint, unsigned ttl_ms,
    unsigned wait_ms, const char *shown)
{
	struct fbxi_lease *L = calloc(1, sizeof(*L));

	if (L == NULL)
		return NULL;
	snprintf(L->node, sizeof(L->node), "%s", node);
	snprintf(L->endpoint, sizeof(L->endpoint), "%s",
	    endpoint != NULL ? endpoint : "");
	L->ttl_ms = ttl_ms;
	L->wait_ms = wait_ms;
	L->shown = shown;
	return L;
}

void
fbxi_lease_free(struct fbxi_lease *L)
{
	if (L == NULL)
		return;
	free(L->tab);
	free(L->pend);
	free(L);
}

const char *
fbxi_lease_node(const struct fbxi_lease *L)
{
	return L->node;
}

unsigned
fbxi_lease_ttl(const struct fbxi_lease *L)
{
	return L->ttl_ms;
}

int
fbxi_lease_layout(PGconn *c, unsigned wait_ms, const char *shown)
{
	PGresult *r = fbxi_pg_exec1(c, wait_ms, shown,
	    "CREATE TABLE IF NOT EXISTS fbx_lease (org text PRIMARY KEY, "
	    "node text NOT NULL, epoch bigint NOT NULL, expires timestamptz "
	    "NOT NULL); "
	    "CREATE TABLE IF NOT EXISTS fbx_node (name text PRIMARY KEY, "
	    "endpoint text NOT NULL, ver bigint NOT NULL, seen timestamptz "
	    "NOT NULL)");
	int code = PQresultStatus(r) == PGRES_COMMAND_OK ? 0
	                                                 : fbxi_pg_code(c, r);

	PQclear(r);
	return code;
}

/* q - one statement with text parameters; NULL (and *code) on failure. */
static PGresult *
q(const struct fbxi_lease *L, PGconn *c, const char *sql, int n,
    const char *const *vals, int *code)
{
	PGresult *r = fbxi_pg_exec(c, L->wait_ms, L->shown, sql, n, vals, NULL,
	    NULL, 0);
	ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	*code = r == NULL && PQstatus(c) == CONNECTION_OK ? ENOMEM
	                                                  : fbxi_pg_code(c, r);
	lease_log(L, 1, "lease statement failed: %s%s",
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c), NULL);
	PQclear(r);
	return NULL;
}

/* arr - the text[] literal of names (identifiers: no quoting needed
 * beyond the double quotes that keep '' apart from an empty array). */
static char *
arr(char *const *names, size_t n)
{
	size_t len = 3;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(names[i]) + 3;
	s = malloc(len);
	if (s == NULL)
		return NULL;
	p = s;
	*p++ = '{';
	for (size_t i = 0; i < n; i++) {
		p += sprintf(p, "%s\"%s\"", i ? "," : "", names[i]);
	}
	*p++ = '}';
	*p = '\0';
	return s;
}

/* take - the rows (org, epoch, previous node) a claim returned: owned
 * now; the previous nodes' fence values move (one statement). */
static int pend_add(struct fbxi_lease *L, const char *org, int64_t epoch);
static int pend_taken(struct fbxi_lease *L, const char *org, int64_t epoch);
static void tab_del(struct fbxi_lease *L, const char *org);

static int
take(struct fbxi_lease *L, PGconn *c, PGresult *r, int *changed, int pend)
{
	size_t n = (size_t)PQntuples(r), nv = 0;
	char **victims = n ? calloc(n, sizeof(char *)) : NULL;
	int code = 0;

	if (n > 0 && victims == NULL)
		return ENOMEM;
	for (size_t i = 0; i < n && code == 0; i++) {
		const char *prev = PQgetvalue(r, (int)i, 2);
		code = (pend ? pend_taken : tab_put)(L, PQgetvalue(r, (int)i, 0),
		    strtoll(PQgetvalue(r, (int)i, 1), NULL, 10));
		*changed = 1;
		lease_log(L, 2, "took organisation '%s'%s", PQgetvalue(r, (int)i, 0),
		    prev[0] != '\0' ? " from a node that stopped renewing"
		                    : "");
		if (prev[0] != '\0' && strcmp(prev, L->node) != 0)
			victims[nv++] = (char *)prev;
	}
	if (code == 0 && nv > 0) {
		char *a = arr(victims, nv);
		const char *v[1] = { a };
		PGresult *u;
		if (a == NULL)
			code = ENOMEM;
		else if ((u = q(L, c,
		              "UPDATE fbx_node SET ver = ver + 1 WHERE name = "
		              "ANY($1::text[])",
		              1, v, &code))
		    != NULL)
			PQclear(u);
		free(a);
	}
	free(victims);
	return code;
}

/* claim_rows - run a claiming statement (rows org, epoch, previous
 * node) and take what it returned. @return 0 or a code. */
static int
claim_rows(struct fbxi_lease *L, PGconn *c, const char *sql, int n,
    const char *const *v, int *changed)
{
	int code = 0;
	PGresult *r = q(L, c, sql, n, v, &code);

	if (r == NULL)
		return code;
	code = take(L, c, r, changed, 0);
	PQclear(r);
	return code;
}

int
fbxi_lease_tick(struct fbxi_lease *L, PGconn *c,
    int (*idle)(void *arg, const char *org), void *arg, int *changed)
{
	char ttl[24], lim[24];
	const char *v[3];
	PGresult *r = NULL;
	struct lent *old = NULL;
	size_t oldn = 0, ocap = L->cap;
	int64_t ver = 0, t0 = mono_ms();
	long live = 1, total = 0;
	int code = 0;

	*changed = 0;
	snprintf(ttl, sizeof(ttl), "%u", L->ttl_ms);
	/* what the node owns before: put back if the tick fails */
	if (ocap > 0) {
		old = malloc(ocap * sizeof(*old));
		if (old == NULL)
			return ENOMEM;
		memcpy(old, L->tab, ocap * sizeof(*old));
		oldn = L->n;
	}
	/* not under the writers' lock: a tick must not wait behind other
	 * nodes' turns (its lease would run out meanwhile); row locks
	 * order it against them (see fbxi_lease_fence) */
	r = q(L, c, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, &code);
	if (r == NULL) {
		free(old);
		return code;
	}
	PQclear(r);
	if (!L->seeded) {
		/* organisations of a store written before leases existed,
		 * and the duties lease: released rows, claimable */
		r = q(L, c,
		    "INSERT INTO fbx_lease (org, node, epoch, expires) "
		    "SELECT convert_from(k, 'UTF8'), '', 0, '-infinity'::timestamptz FROM "
		    "fbx_org UNION ALL SELECT '', '', 0, '-infinity'::timestamptz "
		    "ON CONFLICT (org) DO NOTHING",
		    0, NULL, &code);
		if (r == NULL)
			goto fail;
		PQclear(r);
	}
	/* what is ours now: renewed. Lease rows first, then the node's
	 * row: the order a taker locks them in (no deadlock); a taker that
	 * holds one of these rows has moved this node's ver before it
	 * commits, which the upsert below then reads */
	v[0] = L->node;
	v[1] = ttl;
	r = q(L, c,
	    "UPDATE fbx_lease SET expires = now() + $2::int * interval '1 "
	    "millisecond' WHERE node = $1 RETURNING org, epoch",
	    2, v, &code);
	if (r == NULL)
		goto fail;
	tab_clear(L);
	for (int i = 0; i < PQntuples(r) && code == 0; i++)
		code = tab_put(L, PQgetvalue(r, i, 0),
		    strtoll(PQgetvalue(r, i, 1), NULL, 10));
	PQclear(r);
	r = NULL;
	if (code != 0)
		goto fail;
	v[1] = L->endpoint;
	r = q(L, c,
	    "INSERT INTO fbx_node (name, endpoint, ver, seen) VALUES ($1, $2, "
	    "0, now()) ON CONFLICT (name) DO UPDATE SET endpoint = "
	    "EXCLUDED.endpoint, seen = now() RETURNING ver",
	    2, v, &code);
	if (r == NULL)
		goto fail;
	ver = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	r = NULL;
	if (L->n != oldn)
		*changed = 1;
	for (size_t i = 0; i < ocap; i++) {
		if (old[i].used) {
			struct lent *e = tab_find(L, old[i].org);
			if (e == NULL || e->epoch != old[i].epoch) {
				*changed = 1;
				lease_log(L, 1,
				    "lost organisation '%s': its lease was "
				    "taken by another node%s",
				    old[i].org, "");
			}
		}
	}
	/* fair share: ceil(leases / live nodes) */
	v[0] = ttl;
	r = q(L, c,
	    "SELECT (SELECT count(*) FROM fbx_node WHERE seen > now() - "
	    "$1::int * interval '1 millisecond'), (SELECT count(*) FROM "
	    "fbx_lease)",
	    1, v, &code);
	if (r == NULL)
		goto fail;
	live = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	total = strtol(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	r = NULL;
	if (live < 1)
		live = 1;
	{
		long fair = (total + live - 1) / live;
		long mine = (long)L->n;
		if (mine > fair && live > 1 && idle != NULL) {
			/* hand back idle organisations above the share */
			size_t want = (size_t)(mine - fair), nr = 0;
			char(*rel)[FBX_ID_MAX + 1] = calloc(want, sizeof(*rel));
			char **names = calloc(want, sizeof(char *));
			if (rel == NULL || names == NULL) {
				free(rel);
				free(names);
				code = ENOMEM;
				goto fail;
			}
			for (size_t i = 0; i < L->cap && nr < want; i++) {
				if (L->tab[i].used && L->tab[i].org[0] != '\0' &&
				    idle(arg, L->tab[i].org)) {
					snprintf(rel[nr], sizeof(rel[nr]), "%s",
					    L->tab[i].org);
					names[nr] = rel[nr];
					nr++;
				}
			}
			if (nr > 0) {
				char *a = arr(names, nr);
				const char *rv[2] = { L->node, a };
				if (a == NULL)
					code = ENOMEM;
				else
					r = q(L, c,
					    "UPDATE fbx_lease SET node = '', "
					    "expires = now() WHERE node = $1 "
					    "AND org = ANY($2::text[])",
					    2, rv, &code);
				free(a);
				if (r != NULL) {
					/* the node's own fence moves too: if
					 * this commit's answer is lost, the
					 * next turn is fenced instead of
					 * acting for what was handed back */
					PQclear(r);
					r = q(L, c,
					    "UPDATE fbx_node SET ver = ver + 1 "
					    "WHERE name = $1 RETURNING ver",
					    1, rv, &code);
				}
				if (r != NULL) {
					if (PQntuples(r) == 1)
						ver = strtoll(PQgetvalue(r, 0, 0),
						    NULL, 10);
					PQclear(r);
					r = NULL;
					for (size_t i = 0; i < nr; i++) {
						lease_log(L, 2,
						    "released idle organisation "
						    "'%s' (above its share)%s",
						    rel[i], NULL);
						tab_del(L, rel[i]);
					}
					*changed = 1;
				}
			}
			free(rel);
			free(names);
			if (code != 0)
				goto fail;
		}
		mine = (long)L->n;
		snprintf(lim, sizeof(lim), "%ld", fair > mine ? fair - mine : 0);
		/* claim up to the share: released rows first, then expired
		 * ones (a dead node's); then whatever stayed expired longer
		 * than a lease, share or not, so nothing is left unowned */
		v[0] = L->node;
		v[1] = ttl;
		v[2] = lim;
		code = claim_rows(L, c,
		    "WITH c AS (SELECT org, node FROM fbx_lease WHERE (expires "
		    "<= now() OR node = '') AND node <> $1 ORDER BY node = '' "
		    "DESC, expires, org LIMIT $3::bigint FOR UPDATE SKIP "
		    "LOCKED) UPDATE "
		    "fbx_lease l SET node = $1, epoch = l.epoch + 1, expires = "
		    "now() + $2::int * interval '1 millisecond' FROM c WHERE "
		    "l.org = c.org RETURNING l.org, l.epoch, c.node",
		    3, v, changed);
		if (code == 0)
			code = claim_rows(L, c,
			    "WITH c AS (SELECT org, node FROM fbx_lease WHERE "
			    "expires < now() - $2::int * interval '1 "
			    "millisecond' AND node <> $1 FOR UPDATE SKIP "
			    "LOCKED) UPDATE fbx_lease l SET node = $1, epoch = "
			    "l.epoch + 1, expires = now() + $2::int * interval "
			    "'1 millisecond' FROM c WHERE l.org = c.org "
			    "RETURNING l.org, l.epoch, c.node",
			    2, v, changed);
		if (code != 0)
			goto fail;
	}
	/* a COMMIT without an answer (the connection lost, or no answer
	 * within the store's bound, pg_wait.h) is taken as not done: if
	 * the server did commit, this node holds leases it does not know
	 * of and does not act on; they run out after ttl_ms and are
	 * claimed again, by it or another node */
	r = q(L, c, "COMMIT", 0, NULL, &code);
	if (r == NULL)
		goto fail_nocommit;
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
		code = EIO;
	PQclear(r);
	if (code != 0)
		goto fail_nocommit;
	L->ver = ver;
	L->ver_known = 1;
	L->seeded = 1;
	L->renewed_ms = t0;
	free(old);
	return 0;
fail:
	if (PQstatus(c) == CONNECTION_OK) {
		PGresult *rb = fbxi_pg_exec1(c, L->wait_ms, L->shown, "ROLLBACK");
		PQclear(rb);
	}
fail_nocommit:
	/* nothing of the tick happened: the table is what it was */
	tab_clear(L);
	for (size_t i = 0; old != NULL && i < ocap; i++)
		if (old[i].used)
			(void)tab_put(L, old[i].org, old[i].epoch);
	*changed = 0;
	free(old);
	return code != 0 ? code : EIO;
}

int
fbxi_lease_renew(struct fbxi_lease *L, PGconn *c)
{
	char ttl[24];
	const char *v[2] = { L->node, ttl };
	PGresult *r;
	int code = 0;

	int64_t t0 = mono_ms();

	snprintf(ttl, sizeof(ttl), "%u", L->ttl_ms);
	/* two statements, lease rows first (a taker's order); each commits
	 * on its own */
	r = q(L, c,
	    "UPDATE fbx_lease SET expires = now() + $2::int * interval '1 "
	    "millisecond' WHERE node = $1",
	    2, v, &code);
	if (r == NULL)
		return code;
	PQclear(r);
	L->renewed_ms = t0;
	r = q(L, c, "UPDATE fbx_node SET seen = now() WHERE name = $1", 1, v,
	    &code);
	PQclear(r);
	return code;
}

int
fbxi_lease_fence(struct fbxi_lease *L, PGconn *c)
{
	const char *v[1] = { L->node };
	PGresult *r;
	int code = 0;

	/* before the first tick the node owns nothing that could be taken
	 * (the store's own set-up at open writes then) */
	if (!L->ver_known && L->n == 0)
		return 0;
	/* FOR SHARE: a node taking one of this node's leases updates this
	 * row; it waits until this transaction ends (then the taker reads
	 * what it wrote), or this one waits for the taker and sees its
	 * value (and rolls back) */
	r = q(L, c, "SELECT ver FROM fbx_node WHERE name = $1 FOR SHARE", 1, v,
	    &code);
	if (r == NULL)
		return code;
	if (PQntuples(r) != 1 ||
	    strtoll(PQgetvalue(r, 0, 0), NULL, 10) != L->ver) {
		lease_log(L, 1,
		    "fenced: a lease of this node was taken by another node; "
		    "the transaction is rolled back%s%s",
		    NULL, NULL);
		code = ESTALE;
	}
	PQclear(r);
	return code;
}

int
fbxi_lease_claim(struct fbxi_lease *L, PGconn *c, const char *org,
    int *how, char *node, size_t ncap, char *endpoint, size_t ecap)
{
	char ttl[24];
	const char *v[3];
	PGresult *r;
	int code = 0;

	*how = FBXI_CLAIM_OWNED;
	if (fbxi_lease_owns(L, org))
		return 0;
	for (size_t i = 0; i < L->npend; i++) {
		if (strcmp(L->pend[i].org, org) == 0) {
			*how = FBXI_CLAIM_TAKEN; /* earlier in this transaction */
			return 0;
		}
	}
	if (strlen(org) > FBX_ID_MAX)
		return EINVAL;
	snprintf(ttl, sizeof(ttl), "%u", L->ttl_ms);
	v[0] = org;
	v[1] = L->node;
	v[2] = ttl;
	/* a new organisation: the first node to write for it owns it */
	r = q(L, c,
	    "INSERT INTO fbx_lease (org, node, epoch, expires) VALUES ($1, $2, "
	    "1, now() + $3::int * interval '1 millisecond') ON CONFLICT (org) "
	    "DO NOTHING RETURNING epoch",
	    3, v, &code);
	if (r == NULL)
		return code;
	if (PQntuples(r) == 1) {
		*how = FBXI_CLAIM_NEW;
	} else {
		PQclear(r);
		/* an expired or released lease: ours, at the next epoch */
		r = q(L, c,
		    "WITH c AS (SELECT org, node FROM fbx_lease WHERE org = $1 "
		    "AND (expires <= now() OR node = '') FOR UPDATE) UPDATE "
		    "fbx_lease l SET "
		    "node = $2, epoch = l.epoch + 1, expires = now() + $3::int * "
		    "interval '1 millisecond' FROM c WHERE l.org = c.org "
		    "RETURNING l.org, l.epoch, c.node",
		    3, v, &code);
		if (r == NULL)
			return code;
		if (PQntuples(r) == 1) {
			int dummy = 0;
			*how = FBXI_CLAIM_TAKEN;
			code = take(L, c, r, &dummy, 1);
			PQclear(r);
			return code;
		}
		PQclear(r);
		r = q(L, c,
		    "SELECT l.node, coalesce(n.endpoint, ''), l.epoch FROM "
		    "fbx_lease l LEFT JOIN fbx_node n ON n.name = l.node WHERE "
		    "l.org = $1",
		    1, v, &code);
		if (r == NULL)
			return code;
		*how = FBXI_CLAIM_ELSEWHERE;
		if (PQntuples(r) == 1 &&
		    strcmp(PQgetvalue(r, 0, 0), L->node) == 0) {
			/* the store says it is ours though the table lost
			 * it (a commit whose answer was lost): ours, and
			 * loaded before it is served */
			*how = FBXI_CLAIM_TAKEN;
			code = pend_taken(L, org,
			    strtoll(PQgetvalue(r, 0, 2), NULL, 10));
			PQclear(r);
			return code;
		}
		if (PQntuples(r) == 1) {
			snprintf(node, ncap, "%s", PQgetvalue(r, 0, 0));
			snprintf(endpoint, ecap, "%s", PQgetvalue(r, 0, 1));
		} else {
			snprintf(node, ncap, "%s", "");
			snprintf(endpoint, ecap, "%s", "");
		}
		PQclear(r);
		return 0;
	}
	code = pend_add(L, org, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
	PQclear(r);
	if (code == 0)
		lease_log(L, 2, "claimed new organisation '%s'%s", org, NULL);
	return code;
}

int
fbxi_lease_owner(struct fbxi_lease *L, PGconn *c, const char *org,
    char *node, size_t ncap, char *endpoint, size_t ecap)
{
	const char *v[1] = { org };
	PGresult *r;
	int code = 0;

	snprintf(node, ncap, "%s", "");
	snprintf(endpoint, ecap, "%s", "");
	r = q(L, c,
	    "SELECT l.node, coalesce(n.endpoint, '') FROM fbx_lease l LEFT "
	    "JOIN fbx_node n ON n.name = l.node WHERE l.org = $1 AND l.node "
	    "<> '' AND l.expires > now()",
	    1, v, &code);
	if (r == NULL)
		return code;
	if (PQntuples(r) == 1) {
		snprintf(node, ncap, "%s", PQgetvalue(r, 0, 0));
		snprintf(endpoint, ecap, "%s", PQgetvalue(r, 0, 1));
	}
	PQclear(r);
	return 0;
}

void
fbxi_lease_settle(struct fbxi_lease *L, int committed)
{
	if (committed)
		for (size_t i = 0; i < L->npend; i++)
			(void)tab_put(L, L->pend[i].org, L->pend[i].epoch);
	L->npend = 0;
}

int
fbxi_lease_owns(const struct fbxi_lease *L, const char *org)
{
	if (tab_find(L, org) != NULL)
		return 1;
	for (size_t i = 0; i < L->npend; i++)
		if (L->pend[i].used == 1 && strcmp(L->pend[i].org, org) == 0)
			return 1;
	return 0;
}

int64_t
fbxi_lease_left_ms(const struct fbxi_lease *L)
{
	if (L->n == 0)
		return INT64_MAX; /* nothing owned, nothing to guard */
	if (L->renewed_ms == 0)
		return 0;
	return (int64_t)L->ttl_ms - (mono_ms() - L->renewed_ms);
}

size_t
fbxi_lease_count(const struct fbxi_lease *L)
{
	return L->n;
}

void
fbxi_lease_release(struct fbxi_lease *L, PGconn *c)
{
	const char *v[1] = { L->node };
	PGresult *r;
	int code = 0;

	static const char *const steps[] = { "BEGIN",
		"UPDATE fbx_lease SET node = '', expires = now() WHERE node = $1",
		"DELETE FROM fbx_node WHERE name = $1", "COMMIT" };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		int np = strstr(steps[i], "$1") != NULL;
		r = q(L, c, steps[i], np, np ? v : NULL, &code);
		if (r == NULL) {
			PQclear(fbxi_pg_exec1(c, L->wait_ms, L->shown, "ROLLBACK"));
			return;
		}
		PQclear(r);
	}
	lease_log(L, 2, "released every lease%s%s", NULL, NULL);
}
