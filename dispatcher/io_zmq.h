/*
 * io_zmq.h: the engine's ZeroMQ transport: two ROUTER sockets (console,
 * gateway) and an optional PUB socket for events. The only place of the
 * engine that includes <zmq.h>. Internal to dispatcher/.
 */
#ifndef FBXI_IO_ZMQ_H
#define FBXI_IO_ZMQ_H

#include "fbx_engine.h"

extern const struct fbx_io_ops fbxi_io_zmq_ops;

/**
 * fbxi_io_zmq_open - read the server key (opts->server_key, default
 * <data_dir>/keys/server.key), start the ZAP handler on auth's table
 * (borrowed: it must outlive io) and bind the endpoints of opts
 * (events_ep optional) as CURVE servers.
 * @return FBX_OK and *io; FBX_ENOMEM; FBX_ECONFIG (no usable server
 * key: missing, unreadable, readable by others); FBX_EINVAL (a socket
 * option was refused); FBX_EUNREACHABLE (an endpoint cannot be bound).
 */
struct fbxi_auth;
int fbxi_io_zmq_open(
    const struct fbx_engine_opts *opts, struct fbxi_auth *auth, void **io);

#endif
