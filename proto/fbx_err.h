/*
 * fbx_err.h: the one error table of fusebox. Codes travel on the wire
 * (ConsoleReply.error.code), so values are stable: append only, never
 * renumber or remove. LMDB, ZeroMQ and protobuf-c errors are translated
 * into these at each module's edge.
 */
#ifndef FBX_ERR_H
#define FBX_ERR_H

/* X(value, NAME, message) */
#define FBX_ERRORS(X)                                                        \
	X(0, OK, "success")                                                  \
	X(1, NOMEM, "out of memory")                                         \
	X(2, INVALID, "invalid argument")                                    \
	X(3, TOOBIG, "message or field too large")                           \
	X(4, MALFORMED, "malformed message")                                 \
	X(5, UNKNOWN_ORG, "unknown organisation")                            \
	X(6, UNKNOWN_DEVICE, "unknown device")                               \
	X(7, EMPTY_TARGET, "target selects no device")                       \
	X(8, IDEMPOTENCY_CONFLICT,                                           \
	    "idempotency key already used for a different command")          \
	X(9, NOT_FOUND, "not found")                                         \
	X(10, STORAGE, "storage error")                                      \
	X(11, DISK_FULL, "storage device full")                              \
	X(12, MAP_FULL, "storage map full")                                  \
	X(13, BUSY, "engine busy, retry later")                              \
	X(14, SHUTTING_DOWN, "engine shutting down")                         \
	X(15, VERSION, "unsupported protocol version")                       \
	X(16, PROTOCOL, "unexpected message")                                \
	X(17, CORRUPT, "stored record corrupt")                              \
	X(18, IO, "input/output error")                                      \
	X(19, TIMEOUT, "timed out")                                          \
	X(20, UNREACHABLE, "engine unreachable")                             \
	X(21, TOO_MANY, "target too large")                                  \
	X(22, CONFIG, "configuration error")                                 \
	X(23, LIMIT_EXCEEDED, "blast-radius limit exceeded")                 \
	X(24, RATE_LIMITED, "rate cap reached")                              \
	X(25, BREAKER_OPEN, "circuit breaker open: command held")            \
	X(26, APPROVAL_INVALID,                                              \
	    "approval missing, expired, used or by the submitter")           \
	X(27, STATE, "not allowed in the current state")                     \
	X(28, FORBIDDEN, "not allowed for this organisation")                 \
	X(29, CRYPTO, "cryptographic library failure")                       \
	X(30, BAD_CERT, "certificate unreadable or unusable")                \
	X(31, MOVED, "organisation owned by another node")                   \
	X(32, FENCED, "this node lost an organisation's lease")

enum fbx_err {
#define FBX_ERR_ENUM_(v, n, m) FBX_E##n = v,
	FBX_ERRORS(FBX_ERR_ENUM_)
#undef FBX_ERR_ENUM_
};
#define FBX_OK FBX_EOK
#define FBX_EINVAL FBX_EINVALID

/**
 * fbx_strerror - human message for an error code.
 * @return a static string; unknown codes give "unknown error".
 */
const char *fbx_strerror(int err);

/**
 * fbx_errname - stable symbolic name of an error code ("UNKNOWN_ORG").
 * @return a static string; unknown codes give "UNKNOWN".
 */
const char *fbx_errname(int err);

#endif
