/*
 * wire_scan.c: the prescan every decoder of peer bytes runs before
 * protobuf-c unpacks them. protobuf-c 1.4 allocates for every entry of a
 * repeated field and every unknown field it keeps, and unpacks a message
 * field given more than once again each time (merging it with the one
 * before, in the releases that merge): 8 MiB of empty entries became
 * millions of allocations and half a gigabyte before any count was
 * checked. The scan walks the wire format with the message's descriptor,
 * without allocating, once over the bytes, at most SCAN_DEPTH_MAX
 * messages deep, and refuses what would cost that before it is unpacked.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fbx_proto.h"
#include "wire_int.h"

/* Messages nested in the schema: ConsoleReply is the deepest at 4. A
 * known field deeper than this is refused, never followed. */
#define SCAN_DEPTH_MAX 8
/* Unknown fields in a whole message: a newer peer's few extra fields
 * pass, a flood of them (protobuf-c keeps each one, one allocation
 * apiece) does not. */
#define SCAN_UNKNOWN_MAX 64
/* Times a message, string or bytes field that is not repeated may be
 * given in one message: protobuf-c frees and allocates it again each
 * time, and merges a message field with the one before. Our encoders
 * give each once. */
#define SCAN_SINGULAR_MAX 8
/* Fields of one message counted apart (the largest has 28 now); the
 * total still bounds the fields of a message past these. */
#define SCAN_FIELDS_MAX 64

struct scan {
	struct wctx *w;
	const ProtobufCMessageDescriptor *root;
	const struct fbxp_scan_caps *caps;
	size_t total;   /* repeated entries in the whole message */
	size_t unknown; /* unknown fields in the whole message */
	/* the fields leading to the message being scanned, for reasons */
	const ProtobufCFieldDescriptor *path[SCAN_DEPTH_MAX];
};

/* scan_fail - fbxp_fail with the field's path ("enroll.devices") in
 * front of what. */
static int
scan_fail(struct scan *s, int err, int depth,
    const ProtobufCFieldDescriptor *f, const char *what)
{
	char name[256];
	size_t off = 0;

	name[0] = '\0';
	for (int i = 0; i < depth && off < sizeof(name); i++)
		off += (size_t)snprintf(name + off, sizeof(name) - off, "%s.",
		    s->path[i]->name);
	if (off < sizeof(name))
		snprintf(name + off, sizeof(name) - off, "%s", f->name);
	return fbxp_fail(s->w, err, "%s: %s", name, what);
}

/* scan_malformed - what the decoders say when unpack refuses the bytes:
 * the scan refuses only what protobuf-c would refuse too, before it has
 * scanned (and allocated for) the rest. */
static int
scan_malformed(struct scan *s)
{
	return fbxp_fail(s->w, FBX_EMALFORMED, "message: not a %s",
	    s->root->short_name);
}

/* scan_key - a key as protobuf-c reads it (parse_tag_and_wiretype): at
 * most 5 bytes, the field number in 32 bits. @return 0 or -1. */
static int
scan_key(const uint8_t **p, const uint8_t *end, uint32_t *num, unsigned *wt)
{
	const uint8_t *q = *p;
	uint32_t n;
	unsigned shift = 4;

	*wt = q[0] & 7;
	n = (uint32_t)(q[0] & 0x7f) >> 3;
	if (!(q[0] & 0x80)) {
		*num = n;
		*p = q + 1;
		return 0;
	}
	for (size_t i = 1; i < 5 && q + i < end; i++, shift += 7) {
		n |= (uint32_t)(q[i] & 0x7f) << shift;
		if (!(q[i] & 0x80)) {
			*num = n;
			*p = q + i + 1;
			return 0;
		}
	}
	return -1;
}

/* scan_len - a length prefix as protobuf-c reads it: at most 5 bytes,
 * and the bytes it counts there. @return 0 or -1. */
static int
scan_len(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const uint8_t *p0 = *p;
	uint64_t v;

	if (fbxp_varint(p, end, &v) != 0 || *p - p0 > 5 ||
	    v > (uint64_t)(end - *p))
		return -1;
	*len = (size_t)v;
	return 0;
}

/* packed_count - the elements of a packed repeated scalar, counted as
 * protobuf-c sizes its array (count_packed_elements). A bad element is
 * left to unpack: the count only bounds its one allocation. */
static size_t
packed_count(ProtobufCType t, const uint8_t *p, size_t len)
{
	size_t n = 0;

	switch (t) {
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
		return len / 4;
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return len / 8;
	case PROTOBUF_C_TYPE_BOOL:
		return len;
	default:
		for (size_t i = 0; i < len; i++)
			n += !(p[i] & 0x80);
		return n;
	}
}

static int
packable(ProtobufCType t)
{
	return t != PROTOBUF_C_TYPE_STRING && t != PROTOBUF_C_TYPE_BYTES &&
	    t != PROTOBUF_C_TYPE_MESSAGE;
}

/* field_over - refuse field f of the message being scanned once it was
 * given n times (entries of a repeated field, or times a message, string
 * or bytes field that is not repeated was given): the rest of the bytes
 * is not walked. */
static int
field_over(struct scan *s, int depth, const ProtobufCFieldDescriptor *f,
    uint32_t n)
{
	char what[96];

	if (f->label == PROTOBUF_C_LABEL_REPEATED && n > s->caps->field_max) {
		snprintf(what, sizeof(what),
		    "over %zu entries on the wire", s->caps->field_max);
		return scan_fail(s, FBX_ETOOBIG, depth, f, what);
	}
	if (f->label != PROTOBUF_C_LABEL_REPEATED && n > SCAN_SINGULAR_MAX) {
		snprintf(what, sizeof(what), "given over %d times on the wire",
		    SCAN_SINGULAR_MAX);
		return scan_fail(s, FBX_ETOOBIG, depth, f, what);
	}
	return FBX_OK;
}

/* scan_msg - one message of type d in [p, end), depth messages below the
 * root. Counts of one field are per occurrence of the message: each
 * occurrence is unpacked on its own (a merge of repeats is bounded by
 * SCAN_SINGULAR_MAX and the total). */
static int
scan_msg(struct scan *s, const ProtobufCMessageDescriptor *d,
    const uint8_t *p, const uint8_t *end, int depth)
{
	uint32_t cnt[SCAN_FIELDS_MAX];
	unsigned nf = d->n_fields < SCAN_FIELDS_MAX ? d->n_fields
	                                            : SCAN_FIELDS_MAX;
	int rv;

	memset(cnt, 0, nf * sizeof(cnt[0]));
	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		const uint8_t *body = NULL;
		size_t len = 0, n = 1, idx;
		uint32_t num;
		unsigned wt;
		uint64_t v;

		if (scan_key(&p, end, &num, &wt) != 0)
			return scan_malformed(s);
		switch (wt) {
		case 0:
			if (fbxp_varint(&p, end, &v) != 0)
				return scan_malformed(s);
			break;
		case 1:
		case 5:
			if ((size_t)(end - p) < (wt == 1 ? 8u : 4u))
				return scan_malformed(s);
			p += wt == 1 ? 8 : 4;
			break;
		case 2:
			if (scan_len(&p, end, &len) != 0)
				return scan_malformed(s);
			body = p;
			p += len;
			break;
		default: /* groups: protobuf-c reads none */
			return scan_malformed(s);
		}
		f = protobuf_c_message_descriptor_get_field(d, num);
		if (f == NULL) {
			/* refused at once: the rest is not walked */
			if (++s->unknown > SCAN_UNKNOWN_MAX)
				return fbxp_fail(s->w, FBX_EMALFORMED,
				    "message: over %d unknown fields on the "
				    "wire",
				    SCAN_UNKNOWN_MAX);
			continue;
		}
		/* a field of these types in another wire type fails unpack */
		if (!packable(f->type) && wt != 2)
			return scan_malformed(s);
		idx = (size_t)(f - d->fields);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			if (wt == 2 && packable(f->type))
				n = packed_count(f->type, body, len);
			s->total += n;
		} else if (packable(f->type)) {
			n = 0; /* a scalar given again only overwrites */
		}
		/* the field first: its name says more than the total */
		if (idx < nf) {
			cnt[idx] += (uint32_t)n;
			rv = field_over(s, depth, f, cnt[idx]);
			if (rv != FBX_OK)
				return rv;
		}
		if (s->total > s->caps->total_max)
			return fbxp_fail(s->w, FBX_ETOOBIG,
			    "message: over %zu repeated entries on the wire",
			    s->caps->total_max);
		/* protobuf-c hands a string over as a C string: one with a
		 * NUL inside would be read cut short there ("org-001\0..."
		 * as org-001, two idempotency keys as one) */
		if (f->type == PROTOBUF_C_TYPE_STRING && len > 0 &&
		    memchr(body, 0, len) != NULL)
			return scan_fail(s, FBX_EINVALID, depth, f,
			    "a NUL byte inside the string");
		if (f->type != PROTOBUF_C_TYPE_MESSAGE || len == 0)
			continue; /* an empty message holds nothing to count */
		if (depth + 1 >= SCAN_DEPTH_MAX)
			return fbxp_fail(s->w, FBX_EMALFORMED,
			    "message: nested deeper than %d messages",
			    SCAN_DEPTH_MAX);
		s->path[depth] = f;
		rv = scan_msg(s, f->descriptor, body, body + len, depth + 1);
		if (rv != FBX_OK)
			return rv;
	}
	return FBX_OK;
}

int
fbxp_prescan(struct wctx *w, const ProtobufCMessageDescriptor *d,
    const void *buf, size_t len, const struct fbxp_scan_caps *caps)
{
	const uint8_t *p = fbxp_in_bytes(buf);
	struct scan s;
	int rv;

	memset(&s, 0, sizeof(s));
	s.w = w;
	s.root = d;
	s.caps = caps;
	/* the unknown fields and the total are refused as soon as they
	 * pass their caps (scan_msg), the rest of the bytes not walked */
	rv = scan_msg(&s, d, p, p + len, 0);
	return rv;
}

/* The caps: a field's entries above every documented maximum (100,000
 * device ids of a submit, command ids of a selector, organisations of a
 * Hello or an OrgList), so the decoders' own checks still name the field
 * and its limit between the two; the total at what the largest legal
 * message holds (an enroll of 50,000 devices with 8 groups each: 450,000
 * entries; a gateway batch of 65,536 entries, or 100,000 organisations).
 * Replies come from our own engine and get room to spare. */
const struct fbxp_scan_caps fbxp_caps_console = { 131072, 524288 };
const struct fbxp_scan_caps fbxp_caps_reply = { 131072, 1048576 };
const struct fbxp_scan_caps fbxp_caps_gateway = { 131072, 131072 };
