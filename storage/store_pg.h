/*
 * store_pg.h: private to storage/. The store's rules (store.c and the
 * record files beside it) run on the subset of the LMDB API they use;
 * this header routes those calls through store_pg.c, which hands them
 * to LMDB or, for a store opened with a postgresql:// URL, runs them on
 * PostgreSQL tables that mirror the named databases (same keys, same
 * record bytes). store.c, store_cmd.c, store_dlv.c, store_dev.c,
 * store_audit.c and store_ix.c include it right after <lmdb.h> (and
 * through store_int.h, whose structures hold these handles); nothing
 * else does.
 */
#ifndef FBX_STORE_PG_H
#define FBX_STORE_PG_H

#include <lmdb.h>
#include <stdint.h>

typedef struct fbxi_kv_env fbxi_kv_env;
typedef struct fbxi_kv_txn fbxi_kv_txn;
typedef struct fbxi_kv_cursor fbxi_kv_cursor;

/* fbxi_pg_is_url - url names a PostgreSQL database (postgresql:// or
 * postgres://). NULL is not one. */
int fbxi_pg_is_url(const char *url);

/* fbxi_kv_env_create_pg - an environment that keeps the store in the
 * PostgreSQL database at url (connected by mdb_env_open). durability:
 * enum fbx_durability (NOSYNC = synchronous_commit off, else on).
 * wait_ms: how long any answer of the server is waited for before its
 * connection is taken for lost (pg_wait.h; 0 = FBXI_PG_WAIT_MS). */
int fbxi_kv_env_create_pg(
    fbxi_kv_env **env, const char *url, int durability, unsigned wait_ms);

/* FBXI_EINDOUBT - a PostgreSQL write commit whose outcome is unknown:
 * the connection went after COMMIT was sent and the server could not be
 * asked in time (store_pg.c in_doubt); the store's FBX_ETIMEOUT. Outside
 * LMDB's error range (MDB_KEYEXIST -30799 .. MDB_LAST_ERRCODE). */
#define FBXI_EINDOUBT (-30700)

/* fbxi_kv_is_pg - env runs on PostgreSQL. */
int fbxi_kv_is_pg(const fbxi_kv_env *env);

/* Cluster mode (issue 13, pg_lease.h): fbxi_kv_env_set_node before
 * open names the node; then every write transaction is fenced at
 * commit (ESTALE), and the leases are renewed, released and claimed by
 * fbxi_kv_lease_tick (no transaction of this process open) or claimed
 * one by one in a write transaction by fbxi_kv_lease_claim (how: the
 * FBXI_CLAIM_* of pg_lease.h). Outside cluster mode everything is
 * owned and the calls do nothing. */
int fbxi_kv_env_set_node(
    fbxi_kv_env *env, const char *node, const char *endpoint, unsigned ttl_ms);
int fbxi_kv_cluster(const fbxi_kv_env *env);
/* fbxi_kv_keep_leases - the next close is not a shutdown (the store is
 * opened again): leases are not handed back */
void fbxi_kv_keep_leases(fbxi_kv_env *env);
int fbxi_kv_owns(const fbxi_kv_env *env, const char *org);
size_t fbxi_kv_owned(const fbxi_kv_env *env);
int64_t fbxi_kv_lease_left_ms(const fbxi_kv_env *env);
int fbxi_kv_lease_tick(fbxi_kv_env *env, int (*idle)(void *, const char *),
    void *arg, int *changed);
int fbxi_kv_lease_claim(fbxi_kv_txn *t, const char *org, int *how,
    char *node, size_t ncap, char *endpoint, size_t ecap);
int fbxi_kv_lease_owner(fbxi_kv_txn *t, const char *org, char *node,
    size_t ncap, char *endpoint, size_t ecap);

int fbxi_kv_env_create(fbxi_kv_env **env);
int fbxi_kv_env_set_maxdbs(fbxi_kv_env *env, MDB_dbi n);
int fbxi_kv_env_set_mapsize(fbxi_kv_env *env, size_t size);
int fbxi_kv_env_set_maxreaders(fbxi_kv_env *env, unsigned n);
int fbxi_kv_env_open(
    fbxi_kv_env *env, const char *path, unsigned flags, mdb_mode_t mode);
void fbxi_kv_env_close(fbxi_kv_env *env);
int fbxi_kv_env_sync(fbxi_kv_env *env, int force);
int fbxi_kv_env_info(fbxi_kv_env *env, MDB_envinfo *info);
int fbxi_kv_env_stat(fbxi_kv_env *env, MDB_stat *st);
int fbxi_kv_reader_check(fbxi_kv_env *env, int *dead);
int fbxi_kv_reader_list(fbxi_kv_env *env, MDB_msg_func *fn, void *ctx);
int fbxi_kv_txn_begin(
    fbxi_kv_env *env, fbxi_kv_txn *parent, unsigned flags, fbxi_kv_txn **out);
int fbxi_kv_txn_commit(fbxi_kv_txn *txn);
void fbxi_kv_txn_abort(fbxi_kv_txn *txn);
int fbxi_kv_dbi_open(
    fbxi_kv_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi);
int fbxi_kv_stat(fbxi_kv_txn *txn, MDB_dbi dbi, MDB_stat *st);
int fbxi_kv_get(fbxi_kv_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v);
int fbxi_kv_put(
    fbxi_kv_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v, unsigned flags);
int fbxi_kv_del(fbxi_kv_txn *txn, MDB_dbi dbi, MDB_val *k, MDB_val *v);
int fbxi_kv_cursor_open(fbxi_kv_txn *txn, MDB_dbi dbi, fbxi_kv_cursor **out);
void fbxi_kv_cursor_close(fbxi_kv_cursor *c);
int fbxi_kv_cursor_get(
    fbxi_kv_cursor *c, MDB_val *k, MDB_val *v, MDB_cursor_op op);
int fbxi_kv_cursor_put(
    fbxi_kv_cursor *c, MDB_val *k, MDB_val *v, unsigned flags);
int fbxi_kv_cursor_del(fbxi_kv_cursor *c, unsigned flags);

#ifndef FBXI_KV_IMPL
#define MDB_env fbxi_kv_env
#define MDB_txn fbxi_kv_txn
#define MDB_cursor fbxi_kv_cursor
#define mdb_env_create fbxi_kv_env_create
#define mdb_env_set_maxdbs fbxi_kv_env_set_maxdbs
#define mdb_env_set_mapsize fbxi_kv_env_set_mapsize
#define mdb_env_set_maxreaders fbxi_kv_env_set_maxreaders
#define mdb_env_open fbxi_kv_env_open
#define mdb_env_close fbxi_kv_env_close
#define mdb_env_sync fbxi_kv_env_sync
#define mdb_env_info fbxi_kv_env_info
#define mdb_env_stat fbxi_kv_env_stat
#define mdb_reader_check fbxi_kv_reader_check
#define mdb_reader_list fbxi_kv_reader_list
#define mdb_txn_begin fbxi_kv_txn_begin
#define mdb_txn_commit fbxi_kv_txn_commit
#define mdb_txn_abort fbxi_kv_txn_abort
#define mdb_dbi_open fbxi_kv_dbi_open
#define mdb_stat fbxi_kv_stat
#define mdb_get fbxi_kv_get
#define mdb_put fbxi_kv_put
#define mdb_del fbxi_kv_del
#define mdb_cursor_open fbxi_kv_cursor_open
#define mdb_cursor_close fbxi_kv_cursor_close
#define mdb_cursor_get fbxi_kv_cursor_get
#define mdb_cursor_put fbxi_kv_cursor_put
#define mdb_cursor_del fbxi_kv_cursor_del
/* An LMDB call without a line above would get the wrong handle: make
 * its use a compile error (add it here and in store_pg.c instead). */
#pragma GCC poison mdb_env_copy mdb_env_copyfd mdb_env_copy2
#pragma GCC poison mdb_env_copyfd2 mdb_env_set_flags mdb_env_get_flags
#pragma GCC poison mdb_env_get_path mdb_env_get_fd mdb_env_get_maxreaders
#pragma GCC poison mdb_env_get_maxkeysize mdb_env_set_userctx
#pragma GCC poison mdb_env_get_userctx mdb_env_set_assert mdb_txn_env
#pragma GCC poison mdb_txn_id mdb_txn_reset mdb_txn_renew mdb_dbi_flags
#pragma GCC poison mdb_dbi_close mdb_drop mdb_set_compare mdb_set_dupsort
#pragma GCC poison mdb_set_relfunc mdb_set_relctx mdb_cursor_renew
#pragma GCC poison mdb_cursor_txn mdb_cursor_dbi mdb_cursor_count mdb_cmp
#pragma GCC poison mdb_dcmp
#endif

#endif
