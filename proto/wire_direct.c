/*
 * wire_direct.c: the direct codec of the two hot gateway messages, beside
 * wire.c's protobuf-c path. A gateway's RESULTS batch in its plain form is
 * read straight from the wire (anything else goes through protobuf-c); the
 * engine's DELIVERIES are written directly, the bytes protobuf-c would
 * write. fbx_gw_msg_decode and fbx_eng_msg_encode (wire.c) call these
 * through wire_int.h; fbx_gw_msg_decode_generic and
 * fbx_eng_msg_encode_generic are the protobuf-c paths they must equal
 * (proto_direct_test, fuzz_gw_msg and fuzz_eng_msg compare them).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "wire_int.h"

/* fbxp_results_direct - a RESULTS message read straight from the wire, the
 * gateway's bulk traffic (protobuf-c allocated and freed every Result of
 * a batch of up to 65,536). Only the plain form is taken: version (field
 * 1) and results (12) each once and nothing else at the top, batch_id (1)
 * at most once and results (2) in Results, each Result with its fields
 * (1 delivery_id, 2 status, 3 code) at most once, varints of their wire
 * type, every value valid, every key and length in at most 5 bytes (as
 * protobuf-c reads them: a longer one is refused there, an overlong zero
 * length included). Anything else (an unknown or repeated field, a
 * value the generic path refuses, a batch over its cap) returns 0 and
 * goes through protobuf-c, which decodes or refuses it with its reason;
 * what this reads is what that path would give (fuzz_gw_msg compares the
 * two). @return 1 and *m filled, 0 when not taken, -1 out of memory. */
unsigned long fbx_gw_results_direct;

/* varint5 - a key or a length prefix: protobuf-c reads those in at most 5
 * bytes. @return 0, or -1 (bad, or longer) */
static int
varint5(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p0 = *p;

	return fbxp_varint(p, end, v) != 0 || *p - p0 > 5 ? -1 : 0;
}

int
fbxp_results_direct(const uint8_t *p, const uint8_t *end, struct fbx_gw_msg *m)
{
	const uint8_t *rs = NULL, *rend = NULL, *q;
	uint64_t key, v, version = 0, batch = 0, n = 0;
	int have_v = 0, have_b = 0;
	struct fbx_result_rec *r;

	while (p < end) {
		if (varint5(&p, end, &key) != 0)
			return 0;
		if (key == (1u << 3 | 0) && !have_v) {
			const uint8_t *p0 = p;
			if (fbxp_varint(&p, end, &version) != 0 || p - p0 > 5)
				return 0;
			have_v = 1;
		} else if (key == (12u << 3 | 2) && rs == NULL) {
			if (varint5(&p, end, &v) != 0 ||
			    v > (uint64_t)(end - p))
				return 0;
			rs = p;
			rend = p + v;
			p = rend;
		} else {
			return 0;
		}
	}
	if (rs == NULL || version != FBX_PROTOCOL_VERSION)
		return 0;
	/* Results: count first (the cap, one allocation) */
	for (q = rs; q < rend;) {
		if (varint5(&q, rend, &key) != 0)
			return 0;
		if (key == (1u << 3 | 0) && !have_b) {
			const uint8_t *q0 = q;
			if (fbxp_varint(&q, rend, &batch) != 0 ||
			    (q - q0 == 10 && q[-1] > 1))
				return 0; /* as a delivery id: bits past 64 */
			have_b = 1;
		} else if (key == (2u << 3 | 2)) {
			if (varint5(&q, rend, &v) != 0 ||
			    v > (uint64_t)(rend - q))
				return 0;
			q += v;
			n++;
		} else {
			return 0;
		}
	}
	if (n > FBX_BATCH_MAX)
		return 0;
	r = n > 0 ? malloc(n * sizeof(*r)) : NULL;
	if (n > 0 && r == NULL)
		return -1;
	n = 0;
	for (q = rs; q < rend;) {
		const uint8_t *x, *xend;
		uint64_t id = 0, st = 0, code = 0;
		unsigned seen = 0;
		(void)fbxp_varint(&q, rend, &key); /* checked above */
		if (key == (1u << 3 | 0)) {
			(void)fbxp_varint(&q, rend, &v);
			continue;
		}
		(void)fbxp_varint(&q, rend, &v);
		x = q;
		xend = q + v;
		q = xend;
		while (x < xend) {
			unsigned f;
			const uint8_t *x0;
			if (varint5(&x, xend, &key) != 0 ||
			    (key & 7) != 0 ||
			    (f = (unsigned)(key >> 3)) < 1 || f > 3 ||
			    (seen & (1u << f)) != 0)
				goto generic;
			seen |= 1u << f;
			x0 = x;
			if (fbxp_varint(&x, xend, &v) != 0)
				goto generic;
			if (f == 1) {
				if (x - x0 == 10 && x[-1] > 1)
					goto generic; /* bits past 64 */
				id = v;
			} else if (x - x0 > 5) {
				goto generic; /* 32-bit fields: plain varints */
			} else if (f == 2) {
				st = v;
			} else {
				code = v;
			}
		}
		if (id == 0 || st < 1 || st >= FBX_R_COUNT || code > UINT16_MAX)
			goto generic;
		r[n].delivery_id = id;
		r[n].status = (uint8_t)st;
		r[n].code = (uint16_t)code;
		n++;
	}
	m->version = (uint32_t)version;
	m->kind = FBX_GW_RESULTS;
	m->u.results.batch_id = batch;
	m->u.results.r = r;
	m->u.results.n = (size_t)n;
	fbx_gw_results_direct++;
	return 1;
generic:
	free(r);
	return 0;
}

/* ---- DELIVERIES written directly ------------------------------------ */

/* The engine's bulk output: protobuf-c built a descriptor-driven message
 * per delivery and walked it twice (size, then pack). This writes the
 * same bytes: fields in field-number order, proto3 defaults (0, "",
 * empty bytes, false) left out, every Delivery present even when empty.
 * proto_direct_test and the encoder comparison in fuzz_eng_msg check it
 * byte for byte against fbx_eng_msg_encode_generic. */
static size_t
vlen(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *
wvar(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* dlv_size - one Delivery's bytes (without its own key and length) */
static size_t
dlv_size(const struct fbx_dlv_out *x, size_t on, size_t dn)
{
	size_t n = 0;

	if (x->delivery_id != 0)
		n += 1 + vlen(x->delivery_id);
	if (x->command_id != 0)
		n += 1 + vlen(x->command_id);
	if (on > 0)
		n += 1 + vlen(on) + on;
	if (dn > 0)
		n += 1 + vlen(dn) + dn;
	if (x->type != 0)
		n += 1 + vlen(x->type);
	if (x->payload_len > 0)
		n += 1 + vlen(x->payload_len) + x->payload_len;
	if (x->expires_ms != 0)
		n += 1 + vlen((uint64_t)x->expires_ms);
	if (x->attempt != 0)
		n += 1 + vlen(x->attempt);
	return n;
}

int
fbxp_deliveries_direct(const struct fbx_eng_msg *m, uint8_t **buf, size_t *len)
{
	const struct fbx_dlv_out *d = m->u.deliveries.d;
	size_t n = m->u.deliveries.n, inner = 0, total, *sz;
	uint8_t *b, *p;

	if (n > FBX_BATCH_MAX)
		return FBX_ETOOBIG;
	if (n > 0 && d == NULL)
		return FBX_EINVALID;
	sz = malloc((n > 0 ? n : 1) * 3 * sizeof(*sz));
	if (sz == NULL)
		return FBX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct fbx_dlv_out *x = &d[i];
		size_t on, dn;
		if (x->org == NULL || x->device == NULL ||
		    (x->payload == NULL && x->payload_len > 0)) {
			free(sz);
			return FBX_EINVALID;
		}
		on = strnlen(x->org, FBX_ID_MAX + 1);
		dn = strnlen(x->device, FBX_ID_MAX + 1);
		if (on > FBX_ID_MAX || dn > FBX_ID_MAX ||
		    x->payload_len > FBX_PAYLOAD_MAX) {
			free(sz);
			return FBX_ETOOBIG;
		}
		sz[3 * i] = dlv_size(x, on, dn);
		sz[3 * i + 1] = on;
		sz[3 * i + 2] = dn;
		inner += 1 + vlen(sz[3 * i]) + sz[3 * i];
	}
	if (m->u.deliveries.urgent)
		inner += 2;
	total = 1 + vlen(FBX_PROTOCOL_VERSION) + 1 + vlen(inner) + inner;
	if (total > FBX_GATEWAY_MSG_MAX) {
		free(sz);
		return FBX_ETOOBIG;
	}
	b = malloc(total);
	if (b == NULL) {
		free(sz);
		return FBX_ENOMEM;
	}
	p = b;
	*p++ = 1 << 3; /* EngineMessage.version */
	p = wvar(p, FBX_PROTOCOL_VERSION);
	*p++ = 11 << 3 | 2; /* EngineMessage.deliveries */
	p = wvar(p, inner);
	for (size_t i = 0; i < n; i++) {
		const struct fbx_dlv_out *x = &d[i];
		size_t on = sz[3 * i + 1], dn = sz[3 * i + 2];
		*p++ = 1 << 3 | 2; /* Deliveries.deliveries */
		p = wvar(p, sz[3 * i]);
		if (x->delivery_id != 0) {
			*p++ = 1 << 3;
			p = wvar(p, x->delivery_id);
		}
		if (x->command_id != 0) {
			*p++ = 2 << 3;
			p = wvar(p, x->command_id);
		}
		if (on > 0) {
			*p++ = 3 << 3 | 2;
			p = wvar(p, on);
			memcpy(p, x->org, on);
			p += on;
		}
		if (dn > 0) {
			*p++ = 4 << 3 | 2;
			p = wvar(p, dn);
			memcpy(p, x->device, dn);
			p += dn;
		}
		if (x->type != 0) {
			*p++ = 5 << 3;
			p = wvar(p, x->type);
		}
		if (x->payload_len > 0) {
			*p++ = 6 << 3 | 2;
			p = wvar(p, x->payload_len);
			memcpy(p, x->payload, x->payload_len);
			p += x->payload_len;
		}
		if (x->expires_ms != 0) {
			*p++ = 7 << 3;
			p = wvar(p, (uint64_t)x->expires_ms);
		}
		if (x->attempt != 0) {
			*p++ = 8 << 3;
			p = wvar(p, x->attempt);
		}
	}
	if (m->u.deliveries.urgent) {
		*p++ = 2 << 3; /* Deliveries.urgent */
		*p++ = 1;
	}
	free(sz);
	if ((size_t)(p - b) != total) { /* sizes and bytes disagree: a bug */
		free(b);
		return FBX_EINVALID;
	}
	*buf = b;
	*len = total;
	return FBX_OK;
}
