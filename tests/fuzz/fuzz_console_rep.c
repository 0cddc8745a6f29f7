/*
 * fuzz_console_rep.c: libFuzzer target for fbx_console_rep_decode, which
 * the client library runs on every reply from the engine. A decoded reply
 * must encode again, and that encoding must be a fixed point of decode ->
 * encode.
 */
#include <stdlib.h>

#include "fbx_proto.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fbx_console_rep a, b;
	uint8_t *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	int rv;

	rv = fbx_console_rep_decode(data, size, &a);
	if (rv != FBX_OK) {
		FUZZ_CHECK(rv != FBX_ENOMEM);
		fbx_console_rep_free(&a);
		return 0;
	}
	rv = fbx_console_rep_encode(&a, &e1, &l1);
	FUZZ_CHECK(rv == FBX_OK);
	rv = fbx_console_rep_decode(e1, l1, &b);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(b.kind == a.kind && b.err == a.err &&
	    b.request_id == a.request_id);
	rv = fbx_console_rep_encode(&b, &e2, &l2);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));
	free(e1);
	free(e2);
	fbx_console_rep_free(&a);
	fbx_console_rep_free(&b);
	fbx_console_rep_free(&b);
	return 0;
}
