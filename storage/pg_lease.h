/*
 * pg_lease.h: private to storage/. Organisation leases of a node that
 * shares a PostgreSQL store with other nodes (issue 13): which
 * organisations this node owns, with the epoch of each lease, kept in
 * step with the tables fbx_lease and fbx_node; the fence every write
 * transaction passes before COMMIT. store_pg.c calls these on the
 * writer's connection; nothing else does.
 *
 * Tables (layout 2 of store_pg.c):
 *   fbx_lease(org text primary key, node text, epoch bigint,
 *             expires timestamptz)   node '' = released; org '' is the
 *                                    lease of the cluster-wide duties
 *   fbx_node(name text primary key, endpoint text, ver bigint,
 *            seen timestamptz)       ver grows whenever another node
 *                                    takes one of this node's leases
 * A tick runs in a transaction of its own, not under the writers'
 * advisory lock (it must not wait behind other nodes' turns); a claim
 * made by a request runs in the turn's transaction. The fence is
 * ordered against a taker by the row lock on fbx_node (pg_lease.c).
 * Times are the database's now(), never a node's clock.
 */
#ifndef FBX_PG_LEASE_H
#define FBX_PG_LEASE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct fbxi_lease;

/* how fbxi_lease_claim found an organisation */
enum {
	FBXI_CLAIM_OWNED = 0, /* already this node's */
	FBXI_CLAIM_NEW = 1, /* never leased: this node's now, nothing to load */
	FBXI_CLAIM_TAKEN = 2, /* expired or released: this node's now; its
	                       * stored state must be loaded before use */
	FBXI_CLAIM_ELSEWHERE = 3, /* a live lease of another node */
};

/* fbxi_lease_new - lease state of node (identifier), reached by
 * consoles at endpoint, leases of ttl_ms; its statements wait wait_ms
 * at most for the server (pg_wait.h) and log with shown (the store's
 * URL without its password, kept by the caller while L lives). NULL
 * without memory. */
struct fbxi_lease *fbxi_lease_new(const char *node, const char *endpoint,
    unsigned ttl_ms, unsigned wait_ms, const char *shown);
void fbxi_lease_free(struct fbxi_lease *L);
const char *fbxi_lease_node(const struct fbxi_lease *L);
unsigned fbxi_lease_ttl(const struct fbxi_lease *L);

/* fbxi_lease_layout - create the two tables (a layout migration step,
 * inside its transaction; wait_ms and shown as fbxi_lease_new's).
 * @return 0 or an errno-style code. */
int fbxi_lease_layout(PGconn *c, unsigned wait_ms, const char *shown);

/* fbxi_lease_tick - in one transaction of its own on c (no transaction
 * open on it): register the node as live, renew its leases, release
 * idle organisations above its fair share (idle(arg, org) != 0: no open
 * work), and claim expired or released ones up to its fair share
 * (ceil(leases / live nodes)), or any that stayed expired longer than a
 * lease. *changed = 1 when the set of owned organisations changed.
 * @return 0, or the statement's errno-style code (nothing changed). */
int fbxi_lease_tick(struct fbxi_lease *L, PGconn *c,
    int (*idle)(void *arg, const char *org), void *arg, int *changed);

/* fbxi_lease_renew - on c with no transaction open: push the expiry of
 * every lease of this node on by a lease and mark it live, nothing else
 * (a writer waiting for the writers' lock behind other nodes' long
 * turns does it every quarter lease, so waiting does not cost it its
 * leases). @return 0 or a statement's code. */
int fbxi_lease_renew(struct fbxi_lease *L, PGconn *c);

/* fbxi_lease_fence - inside the write transaction, before COMMIT: no
 * lease of this node was taken by another since the last tick.
 * @return 0, ESTALE (fenced: roll back), or a statement's code. */
int fbxi_lease_fence(struct fbxi_lease *L, PGconn *c);

/* fbxi_lease_claim - inside the write transaction: make org this
 * node's if it is not owned live elsewhere. Counts as owned at once;
 * kept by fbxi_lease_settle(L, 1), dropped by fbxi_lease_settle(L, 0).
 * ELSEWHERE fills node and endpoint. @return 0 or a statement's code. */
int fbxi_lease_claim(struct fbxi_lease *L, PGconn *c, const char *org,
    int *how, char *node, size_t ncap, char *endpoint, size_t ecap);

/* fbxi_lease_owner - the live owner of org and its endpoint ("" when
 * none), without claiming. @return 0 or a statement's code. */
int fbxi_lease_owner(struct fbxi_lease *L, PGconn *c, const char *org,
    char *node, size_t ncap, char *endpoint, size_t ecap);

/* fbxi_lease_settle - the write transaction committed (1) or not (0). */
void fbxi_lease_settle(struct fbxi_lease *L, int committed);

/* fbxi_lease_owns - org is this node's (claims of the open write
 * transaction included). */
int fbxi_lease_owns(const struct fbxi_lease *L, const char *org);

/* fbxi_lease_left_ms - how long the leases are sure to last, by this
 * process's monotonic clock from before the last renewal that committed
 * (INT64_MAX when nothing is owned). */
int64_t fbxi_lease_left_ms(const struct fbxi_lease *L);

/* fbxi_lease_count - organisations owned (the duties lease included). */
size_t fbxi_lease_count(const struct fbxi_lease *L);

/* fbxi_lease_release - at a clean shutdown, on c with no transaction
 * open: hand every lease back (others claim them at their next tick)
 * and leave the node table. Best effort. */
void fbxi_lease_release(struct fbxi_lease *L, PGconn *c);

/* fbxi_pg_code - store_pg.c's mapping of a failed statement. */
int fbxi_pg_code(PGconn *c, const PGresult *r);

#endif
