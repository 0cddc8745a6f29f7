/*
 * fuzz_console_req.c: libFuzzer target for fbx_console_req_decode, the
 * engine's trust boundary towards consoles. Whatever decodes must encode
 * again, and the re-encoding must be a fixed point (encode(decode(b)) ==
 * b for b produced by the encoder), so decoder and encoder agree on every
 * field the decoder lets through.
 */
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fbx_console_req a, b;
	uint8_t *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	char why[256];
	int rv;

	rv = fbx_console_req_decode(data, size, &a, why, sizeof(why));
	if (rv != FBX_OK) {
		FUZZ_CHECK(rv != FBX_ENOMEM);
		FUZZ_CHECK(why[0] != '\0');
		fbx_console_req_free(&a); /* must be harmless */
		return 0;
	}
	rv = fbx_console_req_encode(&a, &e1, &l1);
	FUZZ_CHECK(rv == FBX_OK);
	rv = fbx_console_req_decode(e1, l1, &b, why, sizeof(why));
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(b.kind == a.kind && b.request_id == a.request_id);
	FUZZ_CHECK(strcmp(a.org, b.org) == 0 && strcmp(a.actor, b.actor) == 0);
	rv = fbx_console_req_encode(&b, &e2, &l2);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));
	free(e1);
	free(e2);
	fbx_console_req_free(&a);
	fbx_console_req_free(&b);
	fbx_console_req_free(&b); /* free leaves a zeroed struct */
	return 0;
}
