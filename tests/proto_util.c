/*
 * proto_util.c: the wire codec tests' shared part (proto_util.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_util.h"

int npass, nfail;

void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n > 0 ? n : 1, sz);

	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

uint64_t rng_state = 0x9e3779b97f4a7c15ull;

uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

void
pbw_byte(struct pbw *w, uint8_t b)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->p = realloc(w->p, w->cap);
		if (w->p == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	w->p[w->n++] = b;
}

void
pbw_varint(struct pbw *w, uint64_t v)
{
	while (v >= 0x80) {
		pbw_byte(w, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	pbw_byte(w, (uint8_t)v);
}

void
pbw_uint(struct pbw *w, uint32_t field, uint64_t v)
{
	pbw_varint(w, (uint64_t)field << 3);
	pbw_varint(w, v);
}

void
pbw_bytes(struct pbw *w, uint32_t field, const void *d, size_t n)
{
	size_t i;

	pbw_varint(w, ((uint64_t)field << 3) | 2);
	pbw_varint(w, n);
	for (i = 0; i < n; i++)
		pbw_byte(w, ((const uint8_t *)d)[i]);
}

void
pbw_str(struct pbw *w, uint32_t field, const char *s)
{
	pbw_bytes(w, field, s, strlen(s));
}

void
pbw_sub(struct pbw *w, uint32_t field, struct pbw *sub)
{
	pbw_bytes(w, field, sub->p, sub->n);
	free(sub->p);
	memset(sub, 0, sizeof(*sub));
}

void
base_req(struct fbx_console_req *r, int kind)
{
	memset(r, 0, sizeof(*r));
	r->version = FBX_PROTOCOL_VERSION;
	r->request_id = 4242;
	strcpy(r->org, "acme");
	strcpy(r->actor, "alice@acme");
	r->kind = kind;
}

int
req_rt(const struct fbx_console_req *in, struct fbx_console_req *out,
    char *why, size_t whylen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	rv = fbx_console_req_encode(in, &buf, &len);
	CHECK_RV(rv, FBX_OK);
	if (rv != FBX_OK)
		return rv;
	CHECK(len <= FBX_CONSOLE_MSG_MAX);
	rv = fbx_console_req_decode(buf, len, out, why, whylen);
	free(buf);
	return rv;
}

int
rep_rt(const struct fbx_console_rep *in, struct fbx_console_rep *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	rv = fbx_console_rep_encode(in, &buf, &len);
	CHECK_RV(rv, FBX_OK);
	if (rv != FBX_OK)
		return rv;
	rv = fbx_console_rep_decode(buf, len, out);
	free(buf);
	return rv;
}

void
make_command(struct fbx_command *c, uint64_t id)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	strcpy(c->org, "acme");
	strcpy(c->actor, "alice@acme");
	strcpy(c->reason, "INC-42");
	strcpy(c->idem_key, "key-1");
	strcpy(c->group, "sales");
	c->type = FBX_CMD_WIPE;
	c->origin = FBX_ORIGIN_AUTOMATIC;
	c->target_kind = FBX_TARGET_GROUP;
	c->platform = FBX_PLATFORM_IOS;
	c->state = FBX_C_ACTIVE;
	c->ttl_s = 86400;
	c->created_ms = 1700000000000;
	c->expires_ms = 1700086400000;
	c->ndeliveries = 120;
	c->counts[FBX_D_QUEUED] = 100;
	c->counts[FBX_D_SUCCEEDED] = 15;
	c->counts[FBX_D_FAILED] = 5;
	c->payload_len = 33;
	c->ndev_ids = 0;
	strcpy(c->cursor, "dev-119");
	c->cursor_idx = 7;
}

int
command_info_eq(const struct fbx_command *a, const struct fbx_command *b)
{
	return a->id == b->id && !strcmp(a->org, b->org)
	    && !strcmp(a->actor, b->actor) && !strcmp(a->reason, b->reason)
	    && !strcmp(a->idem_key, b->idem_key) && !strcmp(a->group, b->group)
	    && a->type == b->type && a->origin == b->origin
	    && a->target_kind == b->target_kind && a->platform == b->platform
	    && a->state == b->state && a->ttl_s == b->ttl_s
	    && a->created_ms == b->created_ms && a->expires_ms == b->expires_ms
	    && a->ndeliveries == b->ndeliveries
	    && !memcmp(a->counts, b->counts, sizeof(a->counts))
	    && a->payload_len == b->payload_len && a->ndev_ids == b->ndev_ids
	    && !strcmp(a->cursor, b->cursor) && a->cursor_idx == b->cursor_idx
	    && b->payload == NULL && b->dev_ids == NULL;
}

int
hostile_rv_ok(int rv)
{
	return rv == FBX_EMALFORMED || rv == FBX_EVERSION || rv == FBX_EINVALID
	    || rv == FBX_ETOOBIG;
}

void
hand_req(struct pbw *w, uint32_t version, const char *org)
{
	if (version != 0)
		pbw_uint(w, 1, version);
	pbw_uint(w, 2, 77);
	pbw_str(w, 3, org);
	pbw_str(w, 4, "bob");
}

void
req_bad_(const struct fbx_console_req *in, int want, const char *field,
    const char *file, int line)
{
	struct fbx_console_req out;
	char why[256] = "";
	int rv = req_rt(in, &out, why, sizeof(why));

	if (rv == want && strstr(why, field) != NULL) {
		npass++;
		return;
	}
	nfail++;
	fprintf(stderr, "%s:%d: FAIL: decode = %s (%s), want %s (%s)\n", file,
	    line, fbx_errname(rv), why, fbx_errname(want), field);
	if (rv == FBX_OK)
		fbx_console_req_free(&out);
}
