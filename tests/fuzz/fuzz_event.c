/*
 * fuzz_event.c: libFuzzer target for fbx_event_decode, run by whoever
 * subscribes to the engine's PUB alerts. An event is a flat struct, so
 * besides the encode fixed point the two decodes must agree field by
 * field.
 */
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fbx_event a, b;
	uint8_t *e1 = NULL, *e2 = NULL;
	size_t l1 = 0, l2 = 0;
	int rv;

	rv = fbx_event_decode(data, size, &a);
	if (rv != FBX_OK) {
		FUZZ_CHECK(rv != FBX_ENOMEM);
		return 0;
	}
	FUZZ_CHECK(strcmp(fbx_event_kind_name(a.kind), "unknown") != 0);
	rv = fbx_event_encode(&a, &e1, &l1);
	FUZZ_CHECK(rv == FBX_OK);
	rv = fbx_event_decode(e1, l1, &b);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(a.kind == b.kind && a.at_ms == b.at_ms &&
	    a.command_id == b.command_id && a.count == b.count &&
	    a.limit == b.limit && strcmp(a.org, b.org) == 0 &&
	    strcmp(a.reason, b.reason) == 0 &&
	    strcmp(a.actor, b.actor) == 0 &&
	    strcmp(a.detail, b.detail) == 0);
	rv = fbx_event_encode(&b, &e2, &l2);
	FUZZ_CHECK(rv == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));
	free(e1);
	free(e2);
	return 0;
}
