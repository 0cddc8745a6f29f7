/*
 * fuzz_gw_msg.c: libFuzzer target for fbx_gw_msg_decode, the engine's
 * trust boundary towards gateways (hello, credit, results, check-ins). A
 * decoded message must encode again, and that encoding must be a fixed
 * point of decode -> encode.
 */
#include <stdlib.h>

#include "fbx_proto.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fbx_gw_msg a, b;
	uint8_t *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	char why[256];
	int rv;

	rv = fbx_gw_msg_decode(data, size, &a, why, sizeof(why));
	if (rv != FBX_OK) {
		FUZZ_CHECK(rv != FBX_ENOMEM);
		FUZZ_CHECK(why[0] != '\0');
		fbx_gw_msg_free(&a);
		return 0;
	}
	rv = fbx_gw_msg_encode(&a, &e1, &l1);
	FUZZ_CHECK(rv == FBX_OK);
	rv = fbx_gw_msg_decode(e1, l1, &b, why, sizeof(why));
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(b.kind == a.kind && b.version == a.version);
	rv = fbx_gw_msg_encode(&b, &e2, &l2);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));
	free(e1);
	free(e2);
	fbx_gw_msg_free(&a);
	fbx_gw_msg_free(&b);
	fbx_gw_msg_free(&b);
	return 0;
}
