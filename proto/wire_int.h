/*
 * wire_int.h: what the codec's source files share: the varint reader and
 * the direct codec of wire_direct.c that wire.c's public functions call
 * (fbxp_ prefix). Internal to proto/.
 */
#ifndef FBXP_WIRE_INT_H
#define FBXP_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_proto.h"

/* fbxp_varint - read a base-128 varint at *p (< end). @return 0 or -1. */
static inline int
fbxp_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* ---- wire_direct.c: the hot messages without protobuf-c */

/* fbxp_results_direct - the RESULTS message in [p, end) read straight
 * from the wire into *m when it has the plain form; fbx_gw_msg_decode
 * tries it before protobuf-c. @return 1 and *m filled, 0 when not taken
 * (the generic path decodes or refuses it), -1 out of memory. */
int fbxp_results_direct(
    const uint8_t *p, const uint8_t *end, struct fbx_gw_msg *m);

/* fbxp_deliveries_direct - the DELIVERIES message m written directly: the
 * bytes and refusals of fbx_eng_msg_encode_generic. m, buf and len are
 * not NULL, m->kind is FBX_ENG_DELIVERIES. @return FBX_OK and *buf
 * (malloc'd), *len, or FBX_ETOOBIG, FBX_EINVALID, FBX_ENOMEM. */
int fbxp_deliveries_direct(
    const struct fbx_eng_msg *m, uint8_t **buf, size_t *len);

#endif
