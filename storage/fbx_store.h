/*
 * fbx_store.h: the durable state of fusebox in one LMDB environment: the
 * command journal, deliveries with their state history, the device
 * registry, idempotency keys and the indexes the engine needs. Only
 * storage/ includes <lmdb.h>; callers see opaque handles and fbx_err codes.
 * One writer at a time (the engine thread); readers may run concurrently.
 */
#ifndef FBX_STORE_H
#define FBX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_err.h"
#include "fbx_types.h"

typedef struct fbx_store fbx_store;
typedef struct fbx_txn fbx_txn;

/* Durability of a committed write transaction. */
enum fbx_durability {
	/* fsync data and meta page on every commit: survives power loss. */
	FBX_DURABLE_FULL = 0,
	/* MDB_NOMETASYNC: after a power loss (not a process crash) the last
	 * committed transaction may be rolled back. */
	FBX_DURABLE_NOMETASYNC = 1,
	/* MDB_NOSYNC: after a power loss any transaction since the last OS
	 * flush may be lost, and the file may be inconsistent. Process
	 * crashes lose nothing. For benchmarks and tests only. */
	FBX_DURABLE_NOSYNC = 2,
};

struct fbx_store_opts {
	const char *path;      /* directory, created if missing */
	size_t map_size;       /* initial map bytes, 0 = 64 MiB */
	size_t map_size_max;   /* growth ceiling, 0 = 1 TiB */
	int durability;        /* enum fbx_durability */
	unsigned max_readers;  /* 0 = 126 */
	/* NULL or "": the LMDB environment at path. A postgresql:// (or
	 * postgres://) URL: the store lives in that PostgreSQL database
	 * (libpq connection URI; its schema is the first of search_path,
	 * created if missing; tables created or migrated at open) and
	 * path is not used. map_size/map_size_max do not apply;
	 * max_readers caps the pool of read connections. durability:
	 * FULL and NOMETASYNC = synchronous_commit on (a commit returns
	 * once its WAL is flushed; fbx_store_sync has nothing left to
	 * do); NOSYNC = off (tests and benchmarks). */
	const char *url;
	/* PostgreSQL only, optional (issue 13): this process is node
	 * `node` (an identifier) of several sharing the store; it acts
	 * only for the organisations it holds a lease on (see
	 * fbx_store_lease_tick). advertise: the console endpoint other
	 * nodes hand out for it. lease_ms: lease time (0 = 10,000). */
	const char *node;
	const char *advertise;
	unsigned lease_ms;
	/* LMDB: how many records the per-organisation indexes (commands
	 * by organisation, audit records by organisation and by actor)
	 * may lag their tables; the next write past it catches them up in
	 * its transaction, and queries read the records not yet indexed
	 * from the tables themselves (same results, fewer pages written
	 * per commit). 0 = $FBX_STORE_INDEX_LAG or 8,192; 1 = written
	 * with each record; at most 65,536. PostgreSQL: always 1. */
	unsigned index_lag;
	/* PostgreSQL: how long any answer of the server (a statement's,
	 * a connect's) is waited for, in ms; past it the connection is
	 * taken for lost: the transaction fails (FBX_EIO), a COMMIT is
	 * asked about (FBX_ETIMEOUT when that cannot be told). A server
	 * that stops answering while its host still takes TCP would
	 * otherwise hold the caller without end. 0 = 10,000. */
	unsigned pg_wait_ms;
};

struct fbx_store_stat {
	size_t map_size;   /* current map size in bytes */
	size_t used_bytes; /* pages in use * page size */
	size_t file_bytes; /* size of data.mdb on disk */
	size_t page_size;
	uint64_t commands;   /* entries in the command journal */
	uint64_t deliveries; /* entries in the delivery table */
	uint64_t devices;    /* entries in the device registry */
	unsigned readers_cleared; /* stale reader slots cleared at open */
	unsigned readers_used;    /* reader slots in use now (any process) */
	uint64_t audit_records; /* entries in the audit log */
	/* audit index entries and records read since open by
	 * fbx_store_audit_query, _scan and _get (a cost counter for tests
	 * and operators: it only grows) */
	uint64_t audit_reads;
	/* audit records indexed at open by the upgrade from schema 1 (0
	 * when the store needed none) */
	uint64_t audit_upgraded;
	/* records not yet in the per-organisation indexes (see
	 * fbx_store_opts.index_lag): audit records, commands */
	uint64_t audit_ix_lag;
	uint64_t cmd_ix_lag;
};

/**
 * fbx_store_open - open or create the environment at opts->path, create
 * the named databases, clear stale reader slots of dead processes. A
 * store of schema 1 is upgraded first: its audit indexes are built in
 * bounded write transactions (resumed after a crash; the count is in
 * fbx_store_stat.audit_upgraded); a schema 2 store becomes schema 3
 * (deferred index marks, fbx_store_opts.index_lag). A store cannot be
 * opened by a version that only knows an older schema (FBX_ECORRUPT).
 * @param[out] out the store; written only on success.
 * @return FBX_OK, FBX_EINVAL (bad options), FBX_EIO (cannot create or open
 * the directory or file), FBX_ECORRUPT (not a fusebox store, or a newer
 * schema), FBX_ENOMEM, FBX_EBUSY (PostgreSQL: another process holds the
 * store's session lock; it is held while the store is open, so one
 * process writes a store at a time).
 */
int fbx_store_open(const struct fbx_store_opts *opts, fbx_store **out);

/** fbx_store_close - close the environment. No transaction may be open. */
void fbx_store_close(fbx_store *st);

/**
 * fbx_store_stat - sizes and counts. Opens its own read transaction.
 * @return FBX_OK or FBX_ESTORAGE.
 */
int fbx_store_stat(fbx_store *st, struct fbx_store_stat *out);

/**
 * fbx_store_reserve - make sure at least `bytes` more can be written
 * without hitting the map limit, growing the map (doubling) if needed.
 * Must be called with no transaction open in this process.
 * @return FBX_OK, FBX_EMAP_FULL (ceiling reached), FBX_ESTORAGE.
 */
int fbx_store_reserve(fbx_store *st, size_t bytes);

/**
 * fbx_store_grow - double the map size (up to the ceiling). No transaction
 * may be open. Used after FBX_EMAP_FULL.
 * @return FBX_OK, FBX_EMAP_FULL (already at the ceiling), FBX_ESTORAGE.
 */
int fbx_store_grow(fbx_store *st);

/**
 * fbx_store_disk_avail - bytes the file system of an LMDB store has
 * available to this process (f_bavail, or f_bfree for root, which may
 * write the reserved blocks). UINT64_MAX on PostgreSQL, or when the file
 * system cannot be asked.
 */
uint64_t fbx_store_disk_avail(fbx_store *st);

/**
 * fbx_store_sync - make every transaction committed so far durable
 * (fdatasync of the data file, meta page included, through a descriptor
 * of its own opened with the store: a write-back error is reported to it
 * as well as to LMDB's, never to one instead of the other). Safe from
 * any thread, also while the writer runs a transaction: with FBX_DURABLE_NOMETASYNC
 * a commit has made its data pages durable before writing its meta page,
 * and this call makes that meta page durable (the engine's syncer thread
 * does it so that the next turn runs meanwhile; nothing of a turn is
 * told to anyone before it returns). After a failure, do not count on a
 * retry of the same commits (the kernel may have dropped the failed
 * pages): a later commit's meta page, once synced, covers them.
 * @return FBX_OK, FBX_EIO, FBX_EDISK_FULL, FBX_ESTORAGE.
 */
int fbx_store_sync(fbx_store *st);

/* ---- cluster mode (PostgreSQL with a node name, issue 13) -------------
 * Several processes (nodes) share one PostgreSQL store; each acts for the
 * organisations it holds a lease on (table fbx_lease: organisation, node,
 * epoch, expiry in database time; the organisation "" stands for the
 * cluster-wide duties). Every write transaction is fenced: its commit
 * fails with FBX_EFENCED, and nothing of it is stored, when another node
 * took one of this node's leases since the last tick. Outside cluster
 * mode (LMDB, or no node name) every organisation is owned and the calls
 * below do nothing. */

/* fbx_store_keep_leases - call before fbx_store_close when the store is
 * opened again at once (after a failure): its leases are not handed back
 * (a clean close hands every lease back for other nodes to take). */
void fbx_store_keep_leases(fbx_store *st);

/* fbx_store_cluster - the store runs in cluster mode. */
int fbx_store_cluster(const fbx_store *st);

/* fbx_store_owns - org ("" = the cluster-wide duties) is this node's,
 * counting claims of the open write transaction. */
int fbx_store_owns(const fbx_store *st, const char *org);

/* fbx_store_lease_left_ms - how long this node's leases are sure to
 * last, by its monotonic clock from before its last renewal (INT64_MAX
 * outside cluster mode or with nothing owned): after it, another node
 * may have taken them over, even though nothing was committed since. */
int64_t fbx_store_lease_left_ms(const fbx_store *st);

/* fbx_store_owned - leases held (0 outside cluster mode). */
size_t fbx_store_owned(const fbx_store *st);

/* an organisation with no open work, which may be handed to another
 * node: non-zero */
typedef int (*fbx_org_idle_fn)(void *arg, const char *org);

/**
 * fbx_store_lease_tick - in a transaction of its own (none of this
 * process may be open): mark this node live, renew its leases, hand back
 * idle organisations above its fair share (ceil(leases / live nodes)),
 * and claim released or expired ones up to it (those expired for longer
 * than a lease whatever the share). Run it every quarter lease.
 * @param[out] changed 1 when the set of owned organisations changed (the
 * caller reloads what it keeps of them).
 * @return FBX_OK, or a store error (nothing changed).
 */
int fbx_store_lease_tick(fbx_store *st, fbx_org_idle_fn idle, void *arg,
    int *changed);

enum fbx_lease_how {
	FBX_LEASE_OWNED = 0,     /* already this node's */
	FBX_LEASE_NEW = 1,       /* never leased: this node's now */
	FBX_LEASE_TAKEN = 2,     /* expired or released: this node's now;
	                          * load its stored state before serving it */
	FBX_LEASE_ELSEWHERE = 3, /* another node's live lease */
};

/**
 * fbx_store_lease_claim - in a write transaction: make org this node's
 * unless another node holds it live. The claim commits or aborts with
 * the transaction. ELSEWHERE fills node and endpoint (the owner's
 * advertised console endpoint, "" if unknown).
 * @return FBX_OK or a write error.
 */
int fbx_store_lease_claim(fbx_txn *txn, const char *org, int *how,
    char node[FBX_ID_MAX + 1], char *endpoint, size_t ecap);

/* fbx_store_lease_owner - the node holding a live lease on org and its
 * endpoint ("" when none, and always outside cluster mode), without
 * claiming it. @return FBX_OK or a store error. */
int fbx_store_lease_owner(fbx_txn *txn, const char *org,
    char node[FBX_ID_MAX + 1], char *endpoint, size_t ecap);

/**
 * fbx_txn_begin - start a transaction. One write transaction at a time.
 * st NULL (a store that could not be reopened) gives FBX_ESTORAGE.
 * @return FBX_OK, FBX_EBUSY (no reader slot), FBX_ESTORAGE, FBX_ENOMEM.
 */
int fbx_txn_begin(fbx_store *st, int write, fbx_txn **out);

/**
 * fbx_txn_commit - commit and free the transaction (also on failure).
 * @return FBX_OK, FBX_EMAP_FULL (abort happened; grow and redo),
 * FBX_EDISK_FULL (ENOSPC/EDQUOT), FBX_EIO, FBX_ESTORAGE. On any of
 * these nothing of the transaction is stored. PostgreSQL also:
 * FBX_EBUSY, FBX_EFENCED (nothing stored), and FBX_ETIMEOUT: the
 * connection went after COMMIT was sent and the server could not be
 * asked in time whether it committed (a lost answer that could be asked
 * about gives FBX_OK or FBX_EIO as the server says), so the transaction
 * may or may not be stored; read the store again before relying on it.
 */
int fbx_txn_commit(fbx_txn *txn);

/**
 * fbx_txn_begin_child - a nested write transaction inside `parent`. While
 * it is open the parent must not be used. Committing it folds its writes
 * into the parent (nothing reaches the disk before the parent commits);
 * aborting it undoes exactly its writes and leaves the parent usable,
 * also when the child broke on an error.
 * @return FBX_OK, FBX_EINVALID (parent is not a top-level write
 * transaction), the parent's latched error, FBX_ENOMEM, FBX_ESTORAGE.
 */
int fbx_txn_begin_child(fbx_txn *parent, fbx_txn **out);

/* Test hooks, never set by the daemon: while fbx_store_test_fail_commits
 * is positive, each top-level write commit fails with
 * fbx_store_test_fail_err (0 = FBX_EIO) and nothing of it is stored. */
extern int fbx_store_test_fail_commits;
extern int fbx_store_test_fail_err;
/* PostgreSQL only: the next top-level write commit loses the server's
 * answer with its connection (the backend is ended right after it
 * answered): 1 after COMMIT, 2 after ROLLBACK sent in COMMIT's place, 3
 * after COMMIT with the server unreachable while the store asks what
 * became of the transaction, 4 after COMMIT with the server taken for
 * another (restarted or failed over); 6: after COMMIT, its answer
 * dropped as when libpq has no memory for it, the connection alive;
 * 5: COMMIT is not sent and the
 * commit returns FBX_ETIMEOUT, its transaction left open (still holding
 * the writers' lock) until fbx_store_test_pg_end_held() commits it (0,
 * or -1). Reset by the commit it hits. */
extern int fbx_store_test_pg_lose_commit;
int fbx_store_test_pg_end_held(void);

/** fbx_txn_abort - discard and free the transaction. NULL is accepted. */
void fbx_txn_abort(fbx_txn *txn);

/*
 * Every write function below returns FBX_OK or: FBX_EMAP_FULL,
 * FBX_EDISK_FULL, FBX_EIO, FBX_ESTORAGE, FBX_ENOMEM. After any of these
 * the transaction is broken: every further call returns the same error;
 * only fbx_txn_abort() (or commit, which then fails) is useful.
 * Read functions return FBX_OK, FBX_ENOT_FOUND, FBX_ECORRUPT or
 * FBX_ESTORAGE, and those that load a command body (fbx_store_cmd_get,
 * fbx_store_cmd_active) also FBX_ENOMEM. Output structs are written only
 * on success.
 */

/* ---- command journal ---------------------------------------------- */

/**
 * fbx_store_cmd_append - journal a new command: assigns cmd->id (last id
 * + 1), stores the record, the (org, created, id) index entry, the
 * idempotency key if cmd->idem_key is set, and marks it active.
 * @return FBX_OK; FBX_EINVALID (a field out of bounds);
 * FBX_EIDEMPOTENCY_CONFLICT; FBX_ETOO_MANY when the id would pass
 * FBX_CMD_ID_MAX (the delivery id space: nothing written, the
 * transaction stays usable); or a write error.
 */
int fbx_store_cmd_append(fbx_txn *txn, struct fbx_command *cmd);

/**
 * fbx_store_cmd_append_id - fbx_store_cmd_append with the id chosen
 * before: `id` must be fbx_store_cmd_last() + 1 read in the same
 * transaction, with no command appended since (the admission pipeline
 * expands a command in memory first, so its record is written once, with
 * what the expansion made of it). The put itself refuses an id at or
 * below the table's last (a write error: the transaction is broken, so
 * nothing of it commits); an id above last + 1 would leave a gap and is
 * the caller's to avoid.
 * @return as fbx_store_cmd_append; FBX_EINVALID for id 0.
 */
int fbx_store_cmd_append_id(fbx_txn *txn, struct fbx_command *cmd,
    uint64_t id);

/** fbx_store_cmd_put - rewrite an existing command (state, counts,
 * cursor). Keeps the active mark in step with cmd->state. */
int fbx_store_cmd_put(fbx_txn *txn, const struct fbx_command *cmd);

/**
 * fbx_store_cmd_get - read a command with its payload and device ids.
 * @param[out] out filled on success; release with fbx_command_clear().
 * Zeroed first: on any failure it holds nothing to release, and
 * fbx_command_clear() on it is safe.
 */
int fbx_store_cmd_get(fbx_txn *txn, uint64_t id, struct fbx_command *out);

/**
 * fbx_store_cmd_head - fbx_store_cmd_get without the body: payload and
 * device ids are left NULL (their counts stay as journaled). One record
 * read, whatever the command's size.
 * @return FBX_OK, FBX_ENOT_FOUND, FBX_ECORRUPT, FBX_ESTORAGE.
 */
int fbx_store_cmd_head(fbx_txn *txn, uint64_t id, struct fbx_command *out);

/** Callback for listings: return 0 to go on, non-zero to stop. The record
 * is valid only during the call. */
typedef int (*fbx_cmd_fn)(void *arg, const struct fbx_command *cmd);

/**
 * fbx_store_cmd_list - commands of one organisation with created_ms in
 * [since_ms, until_ms) (until 0 = no bound), oldest first, after command id
 * `after` (0 = from the start), at most `limit`. Payload and device ids are
 * not loaded.
 */
int fbx_store_cmd_list(fbx_txn *txn, const char *org, int64_t since_ms,
    int64_t until_ms, uint64_t after, uint32_t limit, fbx_cmd_fn fn,
    void *arg);

/**
 * fbx_store_cmd_active - every command not yet DONE, in id order, with
 * payload and device ids loaded. For start-up recovery.
 */
int fbx_store_cmd_active(fbx_txn *txn, fbx_cmd_fn fn, void *arg);

/**
 * fbx_store_idem_get - command id recorded for (org, key).
 * @return FBX_OK or FBX_ENOT_FOUND.
 */
int fbx_store_idem_get(
    fbx_txn *txn, const char *org, const char *key, uint64_t *cmd_id);

/* ---- deliveries ----------------------------------------------------- */

/** fbx_store_dlv_put - insert or overwrite a delivery. */
int fbx_store_dlv_put(fbx_txn *txn, const struct fbx_delivery *d);

/** fbx_store_dlv_get - read one delivery. */
int fbx_store_dlv_get(fbx_txn *txn, uint64_t id, struct fbx_delivery *out);

typedef int (*fbx_dlv_fn)(void *arg, const struct fbx_delivery *d);

/**
 * fbx_store_dlv_scan - deliveries with ids in [from, to), ascending, at
 * most limit (0 = no limit). The record is valid only during the call.
 */
int fbx_store_dlv_scan(fbx_txn *txn, uint64_t from, uint64_t to,
    uint32_t limit, fbx_dlv_fn fn, void *arg);

/**
 * fbx_store_dlv_set_state - the hot path: move delivery `id` to `state`
 * with `code` at `at_ms`, append to its history, and (if `attempt` is
 * non-zero) count one more hand-off to a gateway.
 * @param[out] old_state the state before (may be NULL).
 * @param[out] out the updated record (may be NULL).
 * @return FBX_OK, FBX_ENOT_FOUND, or a write error.
 */
int fbx_store_dlv_set_state(fbx_txn *txn, uint64_t id, int state,
    uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_delivery *out);

/**
 * fbx_store_dlv_transition - fbx_store_dlv_set_state, but only from the
 * states in from_mask (bit 1 << state).
 * @param[out] old_state the state found, also when refused.
 * @return FBX_OK; FBX_ESTATE when the delivery is in a state outside
 * from_mask (nothing written, the transaction stays usable);
 * FBX_ENOT_FOUND; or a write error.
 */
int fbx_store_dlv_transition(fbx_txn *txn, uint64_t id, unsigned from_mask,
    int state, uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_delivery *out);

/* What a move needs back from a delivery record: its head, without the
 * history. */
struct fbx_dlv_head {
	uint64_t id;
	uint8_t state;
	uint16_t code;
	uint32_t attempts;
	int64_t updated_ms;
	char device[FBX_ID_MAX + 1];
};

/**
 * fbx_store_dlv_step - fbx_store_dlv_transition for the hot path: the
 * stored bytes gain one history entry and the new head in place (no
 * decode and re-encode of the whole record; the bytes written are the
 * same), and only the head comes back. A cursor that sits just before
 * `id` (ids met in ascending order) steps to it instead of searching.
 * @param[out] old_state the state found, also when refused (may be NULL).
 * @param[out] out the head after the move (may be NULL).
 * @return as fbx_store_dlv_transition.
 */
int fbx_store_dlv_step(fbx_txn *txn, uint64_t id, unsigned from_mask,
    int state, uint16_t code, int64_t at_ms, int attempt, int *old_state,
    struct fbx_dlv_head *out);

/**
 * fbx_store_dlv_create - write a new delivery `id` for device `dev`
 * (dev_len bytes, no NUL needed) created at at_ms in `state`; with
 * `sent` non-zero it is created QUEUED and handed out (SENT, attempt 1)
 * in the same record: two history entries, one write. The record is the
 * one fbx_store_dlv_put would write for the same content.
 * The write is held back (at most 65,536 deliveries, in memory of txn)
 * until a call reads or rewrites the delivery table through txn, a child
 * of txn begins, or txn commits (a child's go to its parent); so a
 * fbx_store_dlv_step of it to SENT (attempt 1, code 0) in the same
 * transaction makes it one write. An abort drops them with the rest.
 * The ids of a transaction's creations should ascend (they are then
 * appended and found by binary search).
 * @return FBX_OK, FBX_EINVALID, or a write error (also of earlier held
 * back deliveries, written when the buffer is full).
 */
int fbx_store_dlv_create(fbx_txn *txn, uint64_t id, int state,
    const char *dev, size_t dev_len, int64_t at_ms, int sent);

/* ---- offline index: deliveries waiting for a device's check-in -------- */

int fbx_store_pend_add(
    fbx_txn *txn, const char *org, const char *device, uint64_t dlv_id);
int fbx_store_pend_del(
    fbx_txn *txn, const char *org, const char *device, uint64_t dlv_id);
typedef int (*fbx_id_fn)(void *arg, uint64_t id);
/** fbx_store_pend_list - delivery ids pending for (org, device). */
int fbx_store_pend_list(fbx_txn *txn, const char *org, const char *device,
    fbx_id_fn fn, void *arg);

/* ---- device registry --------------------------------------------------- */

/**
 * fbx_store_dev_put - insert or replace a device (keeps the group index
 * and the organisation's device count in step).
 * @param[out] created 1 if the device was new (may be NULL).
 */
int fbx_store_dev_put(fbx_txn *txn, const struct fbx_device *dev, int *created);

/**
 * fbx_store_dev_set_online - set an enrolled device's online flag, in
 * place (one tree search; the record is rewritten only when the flag
 * changes; groups and counts are untouched).
 * @return FBX_OK, FBX_ENOT_FOUND (not enrolled), FBX_EINVALID (bad ids),
 * FBX_ECORRUPT (not a device record), or a storage error.
 */
int fbx_store_dev_set_online(
    fbx_txn *txn, const char *org, const char *id, int online);

/** fbx_store_dev_get - read device (org, id). */
int fbx_store_dev_get(
    fbx_txn *txn, const char *org, const char *id, struct fbx_device *out);

/** fbx_store_dev_del - remove a device and its group index entries.
 * @return FBX_OK or FBX_ENOT_FOUND or a write error. */
int fbx_store_dev_del(fbx_txn *txn, const char *org, const char *id);

typedef int (*fbx_dev_fn)(void *arg, const struct fbx_device *dev);

/**
 * fbx_store_dev_scan - devices of `org` (of `group` if not NULL/empty)
 * with id > after (after NULL/"" = from the start), ascending by id, at
 * most limit (0 = no limit).
 */
int fbx_store_dev_scan(fbx_txn *txn, const char *org, const char *group,
    const char *after, uint32_t limit, fbx_dev_fn fn, void *arg);

/* A device as expansion needs it: the id (dev_len bytes, not
 * NUL-terminated, valid only during the call), platform and online. */
struct fbx_dev_brief {
	const char *id;
	size_t id_len;
	uint8_t platform;
	uint8_t online;
};
typedef int (*fbx_dev_brief_fn)(void *arg, const struct fbx_dev_brief *dev);

/**
 * fbx_store_dev_scan_brief - fbx_store_dev_scan without decoding the
 * records into struct fbx_device: each record is checked as
 * fbx_store_dev_scan checks it (FBX_ECORRUPT), nothing is copied.
 */
int fbx_store_dev_scan_brief(fbx_txn *txn, const char *org,
    const char *group, const char *after, uint32_t limit,
    fbx_dev_brief_fn fn, void *arg);

typedef int (*fbx_group_fn)(void *arg, const char *group, uint32_t count);

/** fbx_store_group_list - groups of an organisation with member counts. */
int fbx_store_group_list(
    fbx_txn *txn, const char *org, fbx_group_fn fn, void *arg);

/**
 * fbx_store_org_devices - number of devices enrolled in org.
 * @return FBX_OK, or FBX_EUNKNOWN_ORG when the organisation has never
 * had a device (or was never created).
 */
int fbx_store_org_devices(fbx_txn *txn, const char *org, uint32_t *count);

/* ---- engine-owned records ----------------------------------------------
 * Small records the dispatcher owns (breakers, limits, rate caps,
 * approvals), stored under string keys "namespace/org/name". The store
 * does not interpret the bytes. */

#define FBX_KV_KEY_MAX 200
#define FBX_KV_VAL_MAX 4096

/** fbx_store_kv_put - insert or replace key (1..FBX_KV_KEY_MAX bytes) with
 * len (<= FBX_KV_VAL_MAX) bytes. @return FBX_OK, FBX_EINVALID, or a write
 * error. */
int fbx_store_kv_put(fbx_txn *txn, const char *key, const void *val,
    size_t len);

/** fbx_store_kv_get - copy the value into buf (cap bytes).
 * @return FBX_OK, FBX_ENOT_FOUND, FBX_ECORRUPT (value larger than cap). */
int fbx_store_kv_get(
    fbx_txn *txn, const char *key, void *buf, size_t cap, size_t *len);

/** fbx_store_kv_del - remove key; absence is fine. */
int fbx_store_kv_del(fbx_txn *txn, const char *key);

/** Callback: key is NUL-terminated, val valid only during the call.
 * Return non-zero to stop. */
typedef int (*fbx_kv_fn)(
    void *arg, const char *key, const void *val, size_t len);

/** fbx_store_kv_scan - every key starting with prefix, ascending. */
int fbx_store_kv_scan(fbx_txn *txn, const char *prefix, fbx_kv_fn fn,
    void *arg);

/* ---- audit log ----------------------------------------------------------
 * Records keyed by a sequence; the dispatcher encodes and hash-chains
 * them (layout in store.c), the store indexes them by organisation, by
 * (organisation, actor) and by time, so a listing reads what it returns
 * and not the log. */

/** fbx_store_audit_last - the last record (buf may be NULL).
 * @return FBX_OK, FBX_ENOT_FOUND (empty log), FBX_ECORRUPT. */
int fbx_store_audit_last(fbx_txn *txn, uint64_t *seq, void *buf, size_t cap,
    size_t *len);

/** fbx_store_audit_put - append record `seq` (> 0) with its index
 * entries. `seq` must be greater than every sequence stored and the
 * record must parse as an audit record v1 (else FBX_EINVALID: nothing
 * written, the transaction stays usable); or a write error. */
int fbx_store_audit_put(fbx_txn *txn, uint64_t seq, const void *rec,
    size_t len);

/** fbx_store_audit_get - copy record `seq` into buf (cap bytes).
 * @return FBX_OK, FBX_ENOT_FOUND, FBX_ECORRUPT (larger than cap). */
int fbx_store_audit_get(
    fbx_txn *txn, uint64_t seq, void *buf, size_t cap, size_t *len);

/** Callback over audit records; rec is valid only during the call.
 * Return 0 to go on, non-zero to stop. */
typedef int (*fbx_audit_fn)(
    void *arg, uint64_t seq, const void *rec, size_t len);

/** fbx_store_audit_scan - records with sequence >= from, ascending, until
 * fn stops. Reads as far as fn lets it: callers bound it. */
int fbx_store_audit_scan(fbx_txn *txn, uint64_t from, fbx_audit_fn fn,
    void *arg);

/* Most entries one fbx_store_audit_query call may read. */
#define FBX_AUDIT_READS_MAX 100000

struct fbx_audit_query {
	/* required identifier: its records, and the global ones (org "*"),
	 * merged in sequence order; "*" itself lists only the global ones */
	const char *org;
	const char *actor; /* NULL or "" = any; else only this actor's */
	/* window on the record's at_ms, 0 = open end. The scan covers the
	 * sequences from the first record whose time, or the time of any
	 * record before it, reaches since_ms, up to (not including) the
	 * first such record for until_ms; inside that range each record's
	 * own at_ms decides. With a clock that never steps back this is
	 * exactly [since_ms, until_ms); after a step back, records written
	 * behind an earlier record's time past until_ms are left out. */
	int64_t since_ms, until_ms;
	uint64_t after;     /* only sequences > after (a page cursor) */
	uint32_t max_reads; /* index entries + records to read, 1..
	                     * FBX_AUDIT_READS_MAX */
};

/**
 * fbx_store_audit_query - the records a query selects, in sequence order,
 * found through the indexes: O(log n) to start, then one index entry per
 * record of the organisation (and actor) in the range, and one record
 * read per record in the window. Stops after q->max_reads reads. The
 * records no index entry covers yet (fbx_store_opts.index_lag, LMDB) are
 * read from the log after the indexed ones: each one the query selects
 * counts as an index entry; those it passes over do not count against
 * max_reads (they are at most index_lag records, and are counted in
 * fbx_store_stat.audit_reads).
 * @param[out] next_after where the next call starts (its q->after): the
 * last sequence looked at when the read budget ran out; seq - 1 when fn
 * stopped at record seq (fn is offered that record again next time, so
 * it must take the first one offered); 0 when the range is exhausted.
 * Written only on success.
 * @return FBX_OK, FBX_EINVALID (no org, an identifier too long,
 * max_reads 0), FBX_ECORRUPT (an index entry without its record),
 * FBX_ESTORAGE.
 */
int fbx_store_audit_query(fbx_txn *txn, const struct fbx_audit_query *q,
    fbx_audit_fn fn, void *arg, uint64_t *next_after);

/* A point on the chain: a record's sequence and its hash. */
struct fbx_audit_mark {
	uint64_t seq;
	uint8_t hash[32];
};

enum fbx_audit_mark_kind {
	/* the last record `audit verify` found intact: incremental verify
	 * goes on after it */
	FBX_AUDIT_VERIFIED = 0,
	/* the last record retention pruned: the chain starts after it, and
	 * its hash is what the first remaining record links to */
	FBX_AUDIT_ANCHOR = 1,
};

/** fbx_store_audit_mark_get - read a mark (kind: enum
 * fbx_audit_mark_kind). @return FBX_OK, FBX_ENOT_FOUND (never set),
 * FBX_EINVALID, FBX_ECORRUPT, FBX_ESTORAGE. */
int fbx_store_audit_mark_get(
    fbx_txn *txn, int kind, struct fbx_audit_mark *out);

/** fbx_store_audit_mark_put - set a mark, in a write transaction.
 * @return FBX_OK, FBX_EINVALID, or a write error. */
int fbx_store_audit_mark_put(
    fbx_txn *txn, int kind, const struct fbx_audit_mark *m);

/** fbx_store_audit_first - the sequence of the oldest record kept.
 * @return FBX_OK, FBX_ENOT_FOUND (empty log), FBX_ECORRUPT,
 * FBX_ESTORAGE; seq is written only on success. */
int fbx_store_audit_first(fbx_txn *txn, uint64_t *seq);

/** fbx_store_audit_time_seq - one seek in audit_time: the first sequence
 * whose running maximum of at_ms reaches ms, so every record before it
 * is older than ms (UINT64_MAX when none reaches it).
 * @return FBX_OK, FBX_ECORRUPT, FBX_ESTORAGE. */
int fbx_store_audit_time_seq(fbx_txn *txn, int64_t ms, uint64_t *seq);

/**
 * fbx_store_audit_prune - retention: delete every record with sequence
 * <= last, with their audit_org and audit_actor entries and the
 * audit_time entries that only cover them, and set the FBX_AUDIT_ANCHOR
 * mark to (last, the hash stored in record last), all in this write
 * transaction. The caller has exported the records first (the store
 * keeps no copy). At most max records may go: last - first + 1 > max
 * is refused.
 * @param[out] deleted records deleted; written only on success.
 * @return FBX_OK; FBX_EINVALID (read-only transaction, record last
 * absent, more than max records, max 0: nothing written);
 * FBX_ECORRUPT (record last does not parse: nothing written); or a
 * write error (the transaction is then broken and must be aborted).
 */
int fbx_store_audit_prune(
    fbx_txn *txn, uint64_t last, uint32_t max, uint32_t *deleted);

/* ---- retention and listing ------------------------------------------ */

/** fbx_store_dlv_delete_range - delete up to limit deliveries with ids
 * in [from, to). @param[out] deleted how many. */
int fbx_store_dlv_delete_range(fbx_txn *txn, uint64_t from, uint64_t to,
    uint32_t limit, uint32_t *deleted);

/** fbx_store_cmd_delete - delete a command, its body and its index and
 * idempotency entries (not its deliveries). */
int fbx_store_cmd_delete(fbx_txn *txn, uint64_t id);

/** fbx_store_cmd_last - the highest command id (0 when empty). */
int fbx_store_cmd_last(fbx_txn *txn, uint64_t *id);

typedef int (*fbx_org_fn)(void *arg, const char *org, uint32_t devices);

/** fbx_store_org_list - every organisation with its device count. */
int fbx_store_org_list(fbx_txn *txn, fbx_org_fn fn, void *arg);

/**
 * fbx_store_log_fn - where the store's own messages go (a PostgreSQL
 * store's connection and lease events): one line each, no newline, at
 * level 0 error, 1 warning, 2 information; kind is a string literal
 * that names the kind of message (the same pointer for every message of
 * that kind: a logger may rate-limit by it).
 */
typedef void (*fbx_store_log_fn)(int level, const char *kind,
    const char *line);

/**
 * fbx_store_set_log - send the store's messages to fn (NULL: stderr, as
 * "fusebox store ...: ..." lines). Set it before any store is opened:
 * it is read without a lock by every thread that uses a store.
 */
void fbx_store_set_log(fbx_store_log_fn fn);

#endif
