/*
 * fuzz_eng_msg.c: libFuzzer target for fbx_eng_msg_decode, which gateways
 * (and the device simulator) run on every engine message. Deliveries
 * borrow strings and payload from the decoded message, so the input is
 * copied and the copy poisoned before the result is used: a pointer into
 * the caller's buffer would show up under AddressSanitizer. A decoded
 * message must encode again to a fixed point of decode -> encode, and
 * encode to the bytes the protobuf-c encoder writes.
 */
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fbx_eng_msg a, b;
	uint8_t *in, *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	int rv;

	in = malloc(size > 0 ? size : 1);
	if (in == NULL)
		return 0;
	if (size > 0)
		memcpy(in, data, size);
	rv = fbx_eng_msg_decode(in, size, &a);
	memset(in, 0xa5, size);
	free(in);
	if (rv != FBX_OK) {
		FUZZ_CHECK(rv != FBX_ENOMEM);
		FUZZ_CHECK(a.priv_ == NULL);
		fbx_eng_msg_free(&a);
		return 0;
	}
	rv = fbx_eng_msg_encode(&a, &e1, &l1);
	FUZZ_CHECK(rv == FBX_OK);
	{
		/* DELIVERIES is written directly: the same bytes as
		 * protobuf-c's */
		uint8_t *g = NULL;
		size_t gl = 0;
		FUZZ_CHECK(fbx_eng_msg_encode_generic(&a, &g, &gl) == FBX_OK);
		FUZZ_CHECK(fuzz_same(e1, l1, g, gl));
		free(g);
	}
	rv = fbx_eng_msg_decode(e1, l1, &b);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(b.kind == a.kind);
	rv = fbx_eng_msg_encode(&b, &e2, &l2);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));
	free(e1);
	free(e2);
	fbx_eng_msg_free(&a);
	fbx_eng_msg_free(&b);
	fbx_eng_msg_free(&b);
	return 0;
}
