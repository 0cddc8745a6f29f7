/*
 * fuzz_gw_msg.c: libFuzzer target for fbx_gw_msg_decode, the engine's
 * trust boundary towards gateways (hello, credit, results, check-ins). A
 * decoded message must encode again, and that encoding must be a fixed
 * point of decode -> encode; and fbx_gw_msg_decode (which reads plain
 * RESULTS batches itself) must give what the protobuf-c path gives.
 */
#include <stdlib.h>
#include <string.h>

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
	{
		/* the direct RESULTS reader agrees with protobuf-c */
		struct fbx_gw_msg g;
		char gwhy[256];
		int grv = fbx_gw_msg_decode_generic(data, size, &g, gwhy,
		    sizeof(gwhy));
		FUZZ_CHECK(grv == rv && strcmp(gwhy, why) == 0);
		if (grv == FBX_OK) {
			FUZZ_CHECK(g.kind == a.kind && g.version == a.version);
			if (g.kind == FBX_GW_RESULTS) {
				FUZZ_CHECK(g.u.results.batch_id ==
				        a.u.results.batch_id &&
				    g.u.results.n == a.u.results.n);
				for (size_t i = 0; i < g.u.results.n; i++) {
					const struct fbx_result_rec *x =
					    &g.u.results.r[i],
					    *y = &a.u.results.r[i];
					FUZZ_CHECK(x->delivery_id ==
					        y->delivery_id &&
					    x->status == y->status &&
					    x->code == y->code);
				}
			}
			fbx_gw_msg_free(&g);
		}
	}
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
