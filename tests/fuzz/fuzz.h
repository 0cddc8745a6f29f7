/*
 * fuzz.h: what every libFuzzer target under tests/fuzz/ shares: the entry
 * point's prototype and FUZZ_CHECK, which aborts (so libFuzzer records a
 * crash and saves the input) when an invariant of a decoder fails. A
 * decoder refusing bad input is never a finding; a crash, a leak, or a
 * decoded message that does not survive encode -> decode is.
 */
#ifndef FBX_FUZZ_H
#define FBX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",     \
			    __FILE__, __LINE__, #cond);                      \
			abort();                                             \
		}                                                            \
	} while (0)

/* fuzz_same - whether two encodings are byte for byte equal. */
static inline int
fuzz_same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

#endif
