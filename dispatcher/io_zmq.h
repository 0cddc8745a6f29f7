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
 * fbxi_io_zmq_open - bind the endpoints of opts (events_ep optional).
 * @return FBX_OK and *io; FBX_ENOMEM; FBX_EINVAL (a socket option was
 * refused); FBX_EUNREACHABLE (an endpoint cannot be bound).
 */
int fbxi_io_zmq_open(const struct fbx_engine_opts *opts, void **io);

#endif
