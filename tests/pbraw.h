/*
 * pbraw.h: raw protobuf helpers for tests that build wire bytes by hand
 * (messages the codec would refuse to encode, or variants of one it
 * would encode differently), without the generated code.
 */
#ifndef FBXT_PBRAW_H
#define FBXT_PBRAW_H

#include <stddef.h>
#include <stdint.h>

/* put_varint - protobuf base-128 varint. @return bytes written. */
static inline size_t
put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

#endif
