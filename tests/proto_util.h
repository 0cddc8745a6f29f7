/*
 * proto_util.h: what the wire codec's tests (proto_test.c,
 * proto_safety_test.c, proto_incident_test.c, proto_direct_test.c)
 * share, in proto_util.c: the CHECK macros and their counts, xcalloc, a
 * deterministic PRNG, a tiny protobuf writer for hand-built (hostile)
 * messages, and the console request and reply builders and round trips
 * that more than one of them uses.
 */
#ifndef FBXT_PROTO_UTIL_H
#define FBXT_PROTO_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fbx_proto.h"

/* the checks passed and failed; main prints them */
extern int npass, nfail;

#define CHECK(c)                                                              \
	do {                                                                  \
		if (c) {                                                      \
			npass++;                                              \
		} else {                                                      \
			nfail++;                                              \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__,        \
			    __LINE__, #c);                                    \
		}                                                             \
	} while (0)

#define CHECK_RV(got, want)                                                   \
	do {                                                                  \
		int g_ = (got), w_ = (want);                                  \
		if (g_ == w_) {                                               \
			npass++;                                              \
		} else {                                                      \
			nfail++;                                              \
			fprintf(stderr, "%s:%d: FAIL: %s = %s, want %s\n",    \
			    __FILE__, __LINE__, #got, fbx_errname(g_),        \
			    fbx_errname(w_));                                 \
		}                                                             \
	} while (0)

/* xcalloc - calloc of at least one element; exits 2 when out of memory. */
void *xcalloc(size_t n, size_t sz);

/* Deterministic PRNG (xorshift64*), independent of the libc; each test
 * that draws from it sets rng_state first. */
extern uint64_t rng_state;
uint64_t rng(void);

/* ---- a tiny protobuf writer for hand-built (hostile) messages ---- */

struct pbw {
	uint8_t *p;
	size_t n, cap;
};

void pbw_byte(struct pbw *w, uint8_t b);
void pbw_varint(struct pbw *w, uint64_t v);
void pbw_uint(struct pbw *w, uint32_t field, uint64_t v);
void pbw_bytes(struct pbw *w, uint32_t field, const void *d, size_t n);
void pbw_str(struct pbw *w, uint32_t field, const char *s);
/* pbw_sub appends sub as field and frees it. */
void pbw_sub(struct pbw *w, uint32_t field, struct pbw *sub);

/* ---- helpers ---- */

/* base_req - a request of kind from alice@acme, request id 4242. */
void base_req(struct fbx_console_req *r, int kind);

/* req_rt encodes in and decodes into out; returns the decode result. */
int req_rt(const struct fbx_console_req *in, struct fbx_console_req *out,
    char *why, size_t whylen);

/* rep_rt encodes in and decodes into out; returns the decode result. */
int rep_rt(const struct fbx_console_rep *in, struct fbx_console_rep *out);

/* make_command - a command with every listed field set; command_info_eq
 * compares them, and wants b without payload or device ids. */
void make_command(struct fbx_command *c, uint64_t id);
int command_info_eq(const struct fbx_command *a, const struct fbx_command *b);

/* hostile_rv_ok - rv is a refusal a decoder may give hostile input. */
int hostile_rv_ok(int rv);

/* hand_req starts a ConsoleRequest with the given version and ids. */
void hand_req(struct pbw *w, uint32_t version, const char *org);

/* req_bad encodes in and expects the decoder to refuse it with want and
 * a reason containing field. */
void req_bad_(const struct fbx_console_req *in, int want, const char *field,
    const char *file, int line);
#define req_bad(in, want, field) req_bad_(in, want, field, __FILE__, __LINE__)

#endif
