/*
 * fbx_engine.h: the dispatch engine. One thread runs a loop over two
 * ZeroMQ ROUTER sockets (console and gateway) and the store: each turn
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

#include "fbx_err.h"

typedef struct fbx_engine fbx_engine;

struct fbx_engine_opts {
	const char *data_dir;     /* LMDB directory */
	const char *console_ep;   /* e.g. ipc:///run/fusebox/console.sock */
	const char *gateway_ep;   /* e.g. tcp://0.0.0.0:7301 */
	int durability;           /* enum fbx_durability */
	size_t map_size;          /* initial LMDB map, 0 = default */
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
 * fbx_engine_run - serve until fbx_engine_stop(), then drain: stop
 * dispatching, wait up to drain_ms for in-flight results, commit, return.
 * @return FBX_OK, or the error that stopped the engine.
 */
int fbx_engine_run(fbx_engine *eng);

/** fbx_engine_stop - ask the loop to drain and return. Async-signal-safe. */
void fbx_engine_stop(fbx_engine *eng);

/** fbx_engine_close - close sockets and the store. NULL is accepted. */
void fbx_engine_close(fbx_engine *eng);

#endif
