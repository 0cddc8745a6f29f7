/*
 * engine_fake.h: the engine in-process over a fake transport and clock
 * (engine_fake.c), for tests that run turn by turn without sockets,
 * processes or sleeps.
 */
#ifndef FBX_ENGINE_FAKE_H
#define FBX_ENGINE_FAKE_H

#include <stdint.h>
#include <stdio.h>

#include "fbx_engine.h"
#include "fbx_proto.h"
#include "fbx_store.h"

extern int passed, failed;

#define CHECK(c, ...)                                                         \
	do {                                                                  \
		if (c) {                                                      \
			passed++;                                             \
		} else {                                                      \
			failed++;                                             \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,         \
			    __LINE__, #c);                                    \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
		}                                                             \
	} while (0)

struct qmsg {
	struct qmsg *next;
	char peer[FBX_IO_RID_MAX + 1];
	uint8_t *body;
	size_t len;
};

struct mio {
	struct qmsg *in[3], *out[3]; /* by channel */
	int gw_full; /* sends to gateways answer BUSY */
	int gw_keys; /* each gateway peer has its own key (principal) */
	int64_t wall, mono;
};

struct env {
	char dir[64];
	struct mio io;
	fbx_engine *e;
	uint64_t reqid;
	uint32_t retention_s; /* the engine's at the next (re)open; 0: off */
	uint32_t expand_chunk; /* the same: deliveries a turn; 0: default */
	uint32_t rollback_slice; /* the same: deliveries a slice; 0: default */
	uint32_t prune_budget; /* the same: records pruned a turn; 0: default */
	char store[512]; /* a PostgreSQL store's URL (env_open_pg); "": LMDB */
};

/* drain_gw - take every engine message to `peer`: delivery ids into
 * ids (up to cap), ACKs into acks (batch, count pairs). */
struct gw_seen {
	uint64_t ids[20000];
	uint8_t urgent[20000]; /* ids[i] came in a batch marked urgent */
	size_t nids;
	uint64_t ack_batch[64];
	uint32_t ack_count[64];
	size_t nacks, welcomes, errors;
	int last_err;
};

void q_push(struct qmsg **q, const char *peer, const void *body, size_t len);
void q_free(struct qmsg *m);
int env_open(struct env *t, const char *name);
/* env_open_pg - env_open on a PostgreSQL store: FBX_TEST_PG_URL in a
 * schema of its own (tests/pg_cluster.sh sets the URL); -1 without one */
int env_open_pg(struct env *t, const char *name);
void env_close(struct env *t);
int env_reopen(struct env *t);
void advance(struct env *t, int64_t ms);
void turn(struct env *t);
void console(struct env *t, const char *peer, const char *org,
    struct fbx_console_req *req);
int reply(struct env *t, const char *peer, struct fbx_console_rep *rep);
void gateway(struct env *t, const char *peer, struct fbx_gw_msg *m);
void hello(struct env *t, const char *peer, const char *org, uint32_t window);
void heartbeat(struct env *t, const char *peer);
void results(struct env *t, const char *peer, uint64_t batch,
    const uint64_t *ids, size_t n, int status);
void drain_gw(struct env *t, const char *peer, struct gw_seen *s);
void enroll(struct env *t, const char *org, unsigned n);
/* enroll_from - the same, devices first .. first+n-1 */
void enroll_from(struct env *t, const char *org, unsigned first, unsigned n);
void query_req(struct fbx_console_req *req);
uint64_t submit_org(struct env *t, const char *org);
/* submit_req - req submitted by "ops" in org; @return its id or 0 */
uint64_t submit_req(
    struct env *t, const char *org, struct fbx_console_req *req);
/* kv_records - with the engine closed (one process opens a store once),
 * first write nput records "<prefix><i>" (i from 1), then count the
 * records under prefix; the engine is opened again. @return the count,
 * -1 on an error. */
int kv_records(struct env *t, const char *prefix, int nput);
/* store_write - with the engine closed: fn(txn, arg) in a write
 * transaction of the store, committed when it returns FBX_OK; the engine
 * is opened again (gateways must say hello again). @return fn's or the
 * store's error */
int store_write(struct env *t, int (*fn)(fbx_txn *, void *), void *arg);
/* enroll_groups - n devices of org, marked online, even ones in group
 * "sales", odd ones in "ops" */
void enroll_groups(struct env *t, const char *org, unsigned n);
int counts(
    struct env *t, const char *org, uint64_t id, struct fbx_command *info);
void rollout_req(struct fbx_console_req *req);
int rb_cmd(struct env *t, uint64_t cid, const char *group, int execute,
    struct fbx_console_rep *rep);
unsigned offline_devices(struct env *t, const char *org);
void checkin_range(struct env *t, const char *peer, const char *org,
    unsigned from, unsigned n);
void checkin_all(struct env *t, const char *peer, const char *org, unsigned n);

#endif
