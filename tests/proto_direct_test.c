/*
 * proto_direct_test.c: the direct codec of the hot gateway messages
 * (proto/wire_direct.c) against protobuf-c's path, through the public
 * header only. RESULTS read directly give what fbx_gw_msg_decode_generic
 * gives (code, reason, entries) on hand-made variants and 20,000 damaged
 * batches; DELIVERIES written directly are byte for byte what
 * fbx_eng_msg_encode_generic writes, with the same refusals, for 5,000
 * random batches. Wire bytes are built by hand (pbraw.h); CHECK and
 * xcalloc come from proto_util.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "pbraw.h"
#include "proto_util.h"

/* The direct RESULTS reader gives what protobuf-c gives: the same code,
 * reason and entries, for the plain form it reads itself and for every
 * variant it hands on (unknown, repeated or overlong fields, bad values,
 * damage anywhere). */
static int
gw_same(const uint8_t *buf, size_t len)
{
	struct fbx_gw_msg a, b;
	char wa[256], wb[256];
	int ra, rb, same;

	ra = fbx_gw_msg_decode(buf, len, &a, wa, sizeof(wa));
	rb = fbx_gw_msg_decode_generic(buf, len, &b, wb, sizeof(wb));
	same = ra == rb && strcmp(wa, wb) == 0;
	if (same && ra == FBX_OK) {
		same = a.kind == b.kind && a.version == b.version;
		if (same && a.kind == FBX_GW_RESULTS) {
			same = a.u.results.batch_id == b.u.results.batch_id &&
			    a.u.results.n == b.u.results.n;
			for (size_t i = 0; same && i < a.u.results.n; i++) {
				const struct fbx_result_rec *x = &a.u.results.r[i],
				                            *y = &b.u.results.r[i];
				same = x->delivery_id == y->delivery_id &&
				    x->status == y->status && x->code == y->code;
			}
		}
	}
	if (ra == FBX_OK)
		fbx_gw_msg_free(&a);
	if (rb == FBX_OK)
		fbx_gw_msg_free(&b);
	return same;
}

/* one Result: fields as given (f < 0 skips one), with an optional extra
 * field number xf (varint 1) */
static size_t
result_bytes(uint8_t *p, uint64_t id, uint64_t st, uint64_t code, int xf)
{
	uint8_t b[64];
	size_t n = 0, k = 0;

	b[n++] = 1 << 3;
	n += put_varint(b + n, id);
	b[n++] = 2 << 3;
	n += put_varint(b + n, st);
	if (code != 0) {
		b[n++] = 3 << 3;
		n += put_varint(b + n, code);
	}
	if (xf > 0) {
		n += put_varint(b + n, (uint64_t)xf << 3);
		b[n++] = 1;
	}
	p[k++] = 2 << 3 | 2;
	k += put_varint(p + k, n);
	memcpy(p + k, b, n);
	return k + n;
}

/* a RESULTS message around results bytes rb (rl long) */
static size_t
results_msg(uint8_t *p, const uint8_t *rb, size_t rl, uint64_t version,
    int results_first)
{
	uint8_t inner[4096];
	size_t n = 0, k = 0;

	inner[n++] = 1 << 3;
	n += put_varint(inner + n, 42); /* batch_id */
	memcpy(inner + n, rb, rl);
	n += rl;
	if (!results_first) {
		p[k++] = 1 << 3;
		k += put_varint(p + k, version);
	}
	p[k++] = 12 << 3 | 2;
	k += put_varint(p + k, n);
	memcpy(p + k, inner, n);
	k += n;
	if (results_first) {
		p[k++] = 1 << 3;
		k += put_varint(p + k, version);
	}
	return k;
}

static void
test_gw_results_direct(void)
{
	static const uint8_t over6[] = { 2 << 3, 0x82, 0x80, 0x80, 0x80, 0x80,
		0x00 }; /* status 2 in six bytes */
	uint8_t rb[2048], msg[4096], *enc = NULL;
	struct fbx_gw_msg in;
	size_t rl = 0, ml, elen = 0;
	unsigned long before;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int bad = 0;

	for (int i = 0; i < 20; i++)
		rl += result_bytes(rb + rl, FBX_DLV_ID(9, i), 1 + i % 4,
		    (uint64_t)i * 1000, 0);
	before = fbx_gw_results_direct;
	ml = results_msg(msg, rb, rl, FBX_PROTOCOL_VERSION, 0);
	CHECK(gw_same(msg, ml));
	ml = results_msg(msg, rb, rl, FBX_PROTOCOL_VERSION, 1);
	CHECK(gw_same(msg, ml));
	ml = results_msg(msg, rb, 0, FBX_PROTOCOL_VERSION, 0); /* empty */
	CHECK(gw_same(msg, ml));
	CHECK(fbx_gw_results_direct == before + 3); /* read directly */
	/* the encoder's own output */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_RESULTS;
	in.u.results.batch_id = 7;
	in.u.results.r = xcalloc(3, sizeof(struct fbx_result_rec));
	in.u.results.n = 3;
	for (int i = 0; i < 3; i++) {
		in.u.results.r[i].delivery_id = UINT64_MAX - (uint64_t)i;
		in.u.results.r[i].status = FBX_R_FAILED;
		in.u.results.r[i].code = 65535;
	}
	before = fbx_gw_results_direct;
	CHECK_RV(fbx_gw_msg_encode(&in, &enc, &elen), FBX_OK);
	CHECK(gw_same(enc, elen));
	CHECK(fbx_gw_results_direct == before + 1);
	free(enc);
	free(in.u.results.r);
	/* handed on: each still decodes (or fails) as protobuf-c says */
	before = fbx_gw_results_direct;
	ml = results_msg(msg, rb, rl, 0, 0); /* version missing */
	CHECK(gw_same(msg, ml));
	ml = results_msg(msg, rb, rl, 2, 0); /* another version */
	CHECK(gw_same(msg, ml));
	ml = results_msg(msg, rb, rl, (1ull << 32) | 1, 0); /* truncated */
	CHECK(gw_same(msg, ml));
	{
		static const struct {
			uint64_t id, st, code;
			int xf;
		} v[] = {
			{ 0, 2, 0, 0 },            /* no delivery id */
			{ 5, 0, 0, 0 },            /* no status */
			{ 5, FBX_R_COUNT, 0, 0 },  /* unknown status */
			{ 5, (1ull << 32) | 2, 0, 0 }, /* status past 32 bits */
			{ 5, 3, 65536, 0 },        /* code above 65535 */
			{ 5, 3, (1ull << 32) | 7, 0 }, /* code past 32 bits */
			{ 5, 2, 0, 9 },            /* unknown field */
			{ 5, 2, 0, 1 },            /* delivery id twice */
			{ 5, 2, 0, 2 },            /* status twice */
		};
		for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
			size_t l = result_bytes(rb, v[i].id, v[i].st, v[i].code,
			    v[i].xf);
			ml = results_msg(msg, rb, l, FBX_PROTOCOL_VERSION, 0);
			if (!gw_same(msg, ml)) {
				bad++;
				fprintf(stderr, "results variant %zu differs\n", i);
			}
		}
	}
	CHECK(bad == 0);
	/* status as an overlong varint */
	{
		size_t k = 0;
		uint8_t r1[32];
		r1[k++] = 1 << 3;
		k += put_varint(r1 + k, 77);
		memcpy(r1 + k, over6, sizeof(over6));
		k += sizeof(over6);
		rb[0] = 2 << 3 | 2;
		rb[1] = (uint8_t)k;
		memcpy(rb + 2, r1, k);
		ml = results_msg(msg, rb, k + 2, FBX_PROTOCOL_VERSION, 0);
		CHECK(gw_same(msg, ml));
	}
	/* a delivery id in ten bytes with bits past 64 */
	{
		static const uint8_t r1[] = { 2 << 3 | 2, 13, 1 << 3, 0xff, 0xff,
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2 << 3, 2 };
		ml = results_msg(msg, r1, sizeof(r1), FBX_PROTOCOL_VERSION, 0);
		CHECK(gw_same(msg, ml));
	}
	/* keys and lengths in more than 5 bytes: protobuf-c refuses them,
	 * so they go to it (found by fuzz_gw_msg: an overlong zero length
	 * for results); a top-level key, the results length, a Result's
	 * length, a key inside a Result */
	{
		static const uint8_t l6[] = { 1 << 3, 1, 12 << 3 | 2, 0x80, 0x80,
			0x80, 0x80, 0x80, 0 };
		static const uint8_t k6[] = { 0x88, 0x80, 0x80, 0x80, 0x80, 0, 1,
			12 << 3 | 2, 0 };
		static const uint8_t r6[] = { 1 << 3, 1, 12 << 3 | 2, 11,
			2 << 3 | 2, 0x84, 0x80, 0x80, 0x80, 0x80, 0, 1 << 3, 5,
			2 << 3, 2 };
		static const uint8_t f6[] = { 1 << 3, 1, 12 << 3 | 2, 11,
			2 << 3 | 2, 9, 0x88, 0x80, 0x80, 0x80, 0x80, 0, 5, 2 << 3,
			2 };
		CHECK(gw_same(l6, sizeof(l6)));
		CHECK(gw_same(k6, sizeof(k6)));
		CHECK(gw_same(r6, sizeof(r6)));
		CHECK(gw_same(f6, sizeof(f6)));
	}
	/* an unknown top-level field, and results twice */
	rl = result_bytes(rb, 5, 2, 0, 0);
	ml = results_msg(msg, rb, rl, FBX_PROTOCOL_VERSION, 0);
	ml += put_varint(msg + ml, 99ull << 3);
	msg[ml++] = 1;
	CHECK(gw_same(msg, ml));
	ml = results_msg(msg, rb, rl, FBX_PROTOCOL_VERSION, 0);
	memcpy(msg + ml, msg + 2, ml - 2); /* version + results, then the
	                                     results field again */
	ml += ml - 2;
	CHECK(gw_same(msg, ml));
	CHECK(fbx_gw_results_direct == before); /* none read directly */
	/* the same in 5 bytes: both read it, directly here */
	{
		static const uint8_t l5[] = { 1 << 3, 1, 12 << 3 | 2, 0x80, 0x80,
			0x80, 0x80, 0 };
		CHECK(gw_same(l5, sizeof(l5)));
		CHECK(fbx_gw_results_direct == before + 1);
	}
	/* damage anywhere: 20,000 mutations of a plain batch */
	rl = 0;
	for (int i = 0; i < 12; i++)
		rl += result_bytes(rb + rl, FBX_DLV_ID(3, i), 1 + i % 4,
		    (uint64_t)i, 0);
	bad = 0;
	for (int t = 0; t < 20000; t++) {
		uint8_t m2[4096];
		size_t l2 = results_msg(m2, rb, rl, FBX_PROTOCOL_VERSION, t & 1);
		int edits = 1 + (int)(seed % 3);
		for (int e = 0; e < edits; e++) {
			seed ^= seed << 13;
			seed ^= seed >> 7;
			seed ^= seed << 17;
			switch (seed % 3) {
			case 0: /* flip a bit */
				m2[(seed >> 8) % l2] ^= (uint8_t)(1u << (seed >> 40) % 8);
				break;
			case 1: /* set a byte */
				m2[(seed >> 8) % l2] = (uint8_t)(seed >> 32);
				break;
			default: /* cut */
				l2 = (size_t)((seed >> 8) % l2) + 1;
				break;
			}
		}
		if (!gw_same(m2, l2))
			bad++;
	}
	CHECK(bad == 0);
}

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* DELIVERIES is written directly: byte for byte what protobuf-c writes,
 * the same refusals, for random batches with every field at its default
 * or not (0, "", no payload, negative expiry, ids up to 2^64 - 1). */
static void
test_eng_deliveries_direct(void)
{
	static uint8_t payload[300];
	static char names[64][FBX_ID_MAX + 2];
	struct fbx_dlv_out d[64];
	struct fbx_eng_msg m;
	uint64_t seed = 0x2545f4914f6cdd1dull;
	int bad = 0;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	for (int t = 0; t < 5000; t++) {
		uint8_t *a = NULL, *b = NULL;
		size_t la = 0, lb = 0;
		int ra, rb;

		memset(&m, 0, sizeof(m));
		m.kind = FBX_ENG_DELIVERIES;
#define R() xorshift(&seed)
		m.u.deliveries.n = R() % 65;
		m.u.deliveries.urgent = (int)(R() % 2);
		m.u.deliveries.d = d;
		for (size_t i = 0; i < m.u.deliveries.n; i++) {
			size_t on = R() % 5 == 0 ? 0 : 1 + R() % FBX_ID_MAX;
			memset(names[i], 'a' + (int)(i % 26), on);
			names[i][on] = '\0';
			d[i].delivery_id = R() % 4 == 0 ? 0 : R() >> (R() % 64);
			d[i].command_id = R() % 4 == 0 ? 0 : R() >> (R() % 64);
			d[i].org = names[i];
			d[i].device = R() % 3 == 0 ? "" : names[(i + 1) % 64];
			d[i].type = (uint8_t)(R() % 12);
			d[i].payload_len = R() % 3 == 0 ? 0 : R() % sizeof(payload);
			d[i].payload = d[i].payload_len > 0 || R() % 2 ? payload
			                                                : NULL;
			d[i].expires_ms = R() % 4 == 0 ? 0 : (int64_t)R();
			d[i].attempt = R() % 3 == 0 ? 0 : (uint32_t)R();
		}
		/* sometimes a batch the codec must refuse */
		if (t % 50 == 1 && m.u.deliveries.n > 0)
			d[0].org = NULL;
		if (t % 50 == 2 && m.u.deliveries.n > 0)
			names[0][FBX_ID_MAX] = 'x', names[0][FBX_ID_MAX + 1] = '\0';
		if (t % 50 == 3 && m.u.deliveries.n > 0)
			d[0].payload_len = FBX_PAYLOAD_MAX + 1;
#undef R
		ra = fbx_eng_msg_encode(&m, &a, &la);
		rb = fbx_eng_msg_encode_generic(&m, &b, &lb);
		if (ra != rb || (ra == FBX_OK && (la != lb || memcmp(a, b, la))))
			bad++;
		free(a);
		free(b);
		if (t % 50 == 2 && m.u.deliveries.n > 0)
			names[0][FBX_ID_MAX] = '\0';
	}
	CHECK(bad == 0);
	/* an empty batch, and one over the cap */
	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_DELIVERIES;
	{
		uint8_t *a = NULL, *b = NULL;
		size_t la = 0, lb = 0;
		CHECK_RV(fbx_eng_msg_encode(&m, &a, &la), FBX_OK);
		CHECK_RV(fbx_eng_msg_encode_generic(&m, &b, &lb), FBX_OK);
		CHECK(la == lb && !memcmp(a, b, la));
		free(a);
		free(b);
		m.u.deliveries.n = FBX_BATCH_MAX + 1;
		m.u.deliveries.d = d;
		CHECK_RV(fbx_eng_msg_encode(&m, &a, &la), FBX_ETOOBIG);
	}
}

int
main(void)
{
	test_gw_results_direct();
	test_eng_deliveries_direct();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
