/*
 * fbx_engine.h: the dispatch engine. One thread runs a loop over a
 * transport (ZeroMQ ROUTER sockets for console and gateway by default)
 * and the store: each turn
 * reads a bounded batch of messages, applies them, expands targets and
 * hands deliveries to gateways within their credit, all in one LMDB write
 * transaction (group commit), and only after that commit sends replies,
 * acknowledgements and deliveries. What is in memory is a cache of the
 * store: it is rebuilt from LMDB at start-up and after a failed commit.
 */
#ifndef FBX_ENGINE_H
#define FBX_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fbx_err.h"

typedef struct fbx_engine fbx_engine;

/* ---- transport and clock ----------------------------------------------
 * The engine talks to consoles, gateways and event subscribers through a
 * transport: ZeroMQ (io_zmq.c) unless fbx_engine_open_io() is given
 * another, as the in-process tests do. Domain code sees only these
 * plain messages. */

enum fbx_io_chan {
	FBX_IO_CONSOLE = 0, /* request/reply, routed by envelope */
	FBX_IO_GATEWAY = 1, /* gateway sessions, routed by envelope */
	FBX_IO_EVENTS = 2,  /* publish only: topic frame + body */
};

#define FBX_IO_ENV_MAX 4   /* envelope frames kept per message */
#define FBX_IO_RID_MAX 256 /* bytes per envelope frame */
#define FBX_IO_USER_MAX 65 /* a principal's name and its NUL */

/* One message: routing envelope and body. A received message's body is
 * owned by the transport until its release(). */
struct fbx_io_msg {
	int chan; /* enum fbx_io_chan */
	int nenv;
	size_t envlen[FBX_IO_ENV_MAX];
	uint8_t env[FBX_IO_ENV_MAX][FBX_IO_RID_MAX];
	const uint8_t *body;
	size_t len;
	void *priv; /* the transport's */
	/* who sent it (issue 10): the principal the transport
	 * authenticated (ZAP User-Id) and the Z85 public key it
	 * authenticated with; "" when the transport authenticates nobody */
	char user[FBX_IO_USER_MAX];
	char key[41];
};

struct fbx_io_ops {
	/* recv - take one message of chan without blocking.
	 * @return 1 and *m; 0 when none is waiting; -1 when a malformed
	 * one (envelope too long) was dropped, *dropped its size; -2 when
	 * one may be waiting but cannot be taken now (out of memory). */
	int (*recv)(void *io, int chan, struct fbx_io_msg *m, size_t *dropped);
	/* release - free what recv gave. */
	void (*release)(void *io, struct fbx_io_msg *m);
	/* send - envelope frames and body, without blocking.
	 * @return FBX_OK; FBX_EBUSY (the peer's queue is full); FBX_EUNREACHABLE
	 * (no such peer); FBX_EIO. */
	int (*send)(void *io, int chan, int nenv, const size_t *envlen,
	    const uint8_t (*env)[FBX_IO_RID_MAX], const void *body, size_t len);
	/* wait - until console or gateway input may be waiting, wake_fd
	 * (if >= 0) is readable, or timeout_ms. @return 0, or -1 on a
	 * transport failure. */
	int (*wait)(void *io, int timeout_ms, int wake_fd);
	/* close - release the transport. */
	void (*close)(void *io);
	/* events_reset - end every events subscription (subscribers
	 * reconnect, and authenticate again); NULL when the transport has
	 * no events endpoint or no sessions to end. */
	void (*events_reset)(void *io);
};

/* A clock: wall (epoch ms, what is journaled) and monotonic (ms,
 * timeouts, liveness). */
typedef int64_t (*fbx_clock_fn)(void *arg, int monotonic);

struct fbx_engine_opts {
	const char *data_dir;     /* LMDB directory */
	const char *console_ep;   /* e.g. ipc:///run/fusebox/console.sock */
	const char *gateway_ep;   /* e.g. tcp://0.0.0.0:7301 */
	int durability;           /* enum fbx_durability */
	size_t map_size;          /* initial LMDB map, 0 = default */
	const char *store_url;    /* NULL/"": LMDB in data_dir; a
	                             postgresql:// URL: that database */
	const char *node;         /* with store_url: this node's name among
	                             several sharing it (organisation
	                             leases, issue 13); NULL = sole writer */
	const char *advertise;    /* console endpoint handed to clients of
	                             other nodes; NULL = console_ep */
	uint32_t lease_ms;        /* lease time; 0 = 10000 */
	uint32_t pg_wait_ms;      /* with store_url: a PostgreSQL answer
	                             is waited for this long, then its
	                             connection taken for lost; 0 = 10000 */
	uint32_t heartbeat_ms;    /* gateways speak this often; 0 = 1000 */
	uint32_t expand_chunk;    /* deliveries created per turn; 0 = 16384 */
	uint32_t send_batch;      /* deliveries per gateway message; 0=8192 */
	uint32_t max_window;      /* cap on a gateway's window; 0 = 1048576 */
	const char *admin_org;    /* if set, only this organisation may act
	                             on global controls and list every
	                             organisation; NULL = any (single-tenant
	                             console) */
	uint32_t org_share_ppm;   /* most of the gateways' windows one
	                             organisation may fill; 0 = 250000
	                             (25%), 1000000 = no cap */
	uint32_t drain_ms;        /* SIGTERM: wait for in-flight; 0 = 5000 */
	uint32_t default_ttl_s;   /* submit without ttl; 0 = 86400 */
	const char *events_ep;    /* PUB endpoint for alerts; NULL = none */
	const char *alert_cmd;    /* run by /bin/sh on each alert; NULL */
	uint32_t approval_ttl_s;  /* approvals expire; 0 = 86400 */
	uint32_t retention_s;     /* prune finished commands older than
	                             this; 0 = keep forever */
	uint32_t audit_retention_days; /* archive and prune audit records
	                             older than this many days (7..3650);
	                             0 = keep forever */
	fbx_clock_fn clock;       /* NULL = the system clocks */
	void *clock_arg;
	uint32_t prune_budget;    /* retention: records deleted per turn
	                             (deliveries and their markers);
	                             0 = 50000 */
	uint32_t rollback_slice;  /* rollback/replay: deliveries looked at
	                             per request (commands: a tenth, at
	                             least 1); 0 = FBX_RB_SLICE_DEFAULT */
	/* loop_hook - called by fbx_engine_run() on the loop's thread with
	 * an enum fbx_loop_event: where the daemon's main talks to its
	 * service manager and applies a reloaded configuration
	 * (fbx_engine_reconfigure()). NULL = none. */
	void (*loop_hook)(void *arg, fbx_engine *eng, int event);
	void *loop_hook_arg;
	/* issue 10: the server's CURVE key file (public and secret key);
	 * NULL = <data_dir>/keys/server.key. fbx_engine_open refuses to
	 * start without it (run `fuseboxd init`). */
	const char *server_key;
	/* in-process tests over a transport that authenticates nobody
	 * (fbx_engine_open_io) only: every message may do anything.
	 * fbx_engine_open refuses it. */
	int auth_off;
	/* issue 12: the web console's address ("http://127.0.0.1:9720/"),
	 * told to `fuseboxctl web login`; NULL = no web console. Borrowed:
	 * it must outlive the engine. */
	const char *web_url;
	/* 1: with full durability each commit syncs its data pages on the
	 * engine's thread and the syncer thread syncs its meta page while
	 * the next turn runs (syncer.h); 0 (default): LMDB's own full sync
	 * in the commit. The same promise either way: nothing of a turn
	 * leaves before its commit is on disk. Only over ZeroMQ. */
	int sync_thread;
};

/* What fbx_engine_run() tells opts.loop_hook. */
enum fbx_loop_event {
	FBX_LOOP_READY = 0,   /* recovered and bound, before the first turn */
	FBX_LOOP_TURN = 1,    /* a turn completed (committed, or degraded) */
	FBX_LOOP_DRAIN = 2,   /* fbx_engine_stop() seen: draining starts */
	FBX_LOOP_STOPPED = 3, /* the loop is about to return */
};

/**
 * fbx_engine_open - open the store, recover every non-terminal delivery
 * and bind both endpoints.
 * @return FBX_OK; FBX_EINVAL (missing option); FBX_EIO, FBX_ECORRUPT,
 * FBX_ESTORAGE (store); FBX_EUNREACHABLE (cannot bind an endpoint);
 * FBX_ENOMEM.
 */
int fbx_engine_open(const struct fbx_engine_opts *opts, fbx_engine **out);

/**
 * fbx_engine_open_io - fbx_engine_open over a given transport (console_ep
 * and gateway_ep are then not used). The engine owns io once this
 * succeeds and closes it with ops->close.
 * @return as fbx_engine_open.
 */
int fbx_engine_open_io(const struct fbx_engine_opts *opts,
    const struct fbx_io_ops *ops, void *io, fbx_engine **out);

/**
 * fbx_engine_turn - run one turn: read what is waiting, apply it, commit,
 * send. fbx_engine_run() is a loop of these; tests call it directly.
 * @return FBX_OK (also when the turn failed and the engine went on
 * degraded), or an error that must stop the engine.
 */
int fbx_engine_turn(fbx_engine *eng);

/**
 * fbx_engine_run - serve until fbx_engine_stop(), then drain: stop
 * dispatching, wait up to drain_ms for in-flight results, commit, return.
 * @return FBX_OK, or the error that stopped the engine.
 */
int fbx_engine_run(fbx_engine *eng);

/** fbx_engine_stop - ask the loop to drain and return. Async-signal-safe. */
void fbx_engine_stop(fbx_engine *eng);

/** fbx_engine_close - close sockets and the store. NULL is accepted. */
void fbx_engine_close(fbx_engine *eng);

/**
 * fbx_engine_reconfigure - apply the settings that may change while the
 * engine runs: approval_ttl_s, retention_s, audit_retention_days,
 * rollback_slice, org_share_ppm, admin_org, drain_ms, default_ttl_s,
 * alert_cmd (0 and NULL mean the defaults, as at open). Every other
 * field of opts is ignored: the store, endpoints, durability, map size
 * and heartbeat are fixed until a restart. Call it only on the loop's
 * thread (from opts.loop_hook) or while the loop does not run. The
 * strings admin_org and alert_cmd are borrowed: they must stay valid
 * until the next call or fbx_engine_close().
 * @return FBX_OK, FBX_EINVAL (NULL argument).
 */
int fbx_engine_reconfigure(fbx_engine *eng,
    const struct fbx_engine_opts *opts);

struct fbx_engine_stats; /* fbx_proto.h */

/**
 * fbx_engine_stat - what status (Ping) reports, read in memory: version,
 * uptime, gateways, active commands, queued, in-flight and pending
 * deliveries, commits, longest turn, failed turns, degraded. Store
 * figures (store_bytes, readers_used) are left 0. Same threading rule
 * as fbx_engine_reconfigure().
 * @return FBX_OK, FBX_EINVAL (NULL argument).
 */
int fbx_engine_stat(fbx_engine *eng, struct fbx_engine_stats *out);

struct fbx_metrics; /* metrics.h */

/**
 * fbx_engine_metrics - the figures /metrics shows (metrics.h), read in
 * memory, from the store's statistics and, at most once a second, from
 * a scan of the breaker records (read transaction; in between the last
 * scan's open breakers are reported). Costs about one pass over the
 * commands in memory: call it a few times a second at most. Same
 * threading rule as fbx_engine_reconfigure(); out is plain data that
 * another thread may then read.
 * @return FBX_OK, FBX_EINVAL (NULL argument). A store that cannot be
 * read leaves store_valid (or brk_valid) 0; it is not an error.
 */
int fbx_engine_metrics(fbx_engine *eng, struct fbx_metrics *out);

/**
 * fbx_audit_archive_verify - offline, without a store: check audit
 * archive files (<data>/audit-archive/audit-<first>-<last>.jsonl, given
 * in sequence order) as one chain: every record hashes right and links
 * to the one before, across files too, sequences are contiguous, each
 * line's readable fields are exactly its "rec", record 1 links to zeros.
 * Writes the verdict to out: "intact: N records, F..L" with the hash
 * the first links to and the last one's hash (to compare with the next
 * archive, or with the anchor: the last audit.prune record's "anchor"),
 * or "BROKEN at record S (file, line): why".
 * @return FBX_OK (intact), FBX_ECORRUPT (broken, or no records),
 * FBX_EIO (a file cannot be read), FBX_ECRYPTO, FBX_ENOMEM.
 */
int fbx_audit_archive_verify(const char *const *files, size_t n, FILE *out);

#endif
