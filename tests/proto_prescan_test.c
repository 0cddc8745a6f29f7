/*
 * proto_prescan_test.c: the prescan every decoder runs before protobuf-c
 * (proto/wire_scan.c). Builds in memory the messages an outside check
 * sent the daemon (an Enroll of 4,194,204 empty devices under 8 MiB; a
 * Heartbeat, a Hello and a Result entry followed by millions of unknown
 * fields; a message field given a million times) and wants each refused
 * with the prescan's reason and a handful of heap allocations, not one
 * per element: malloc, calloc and realloc of this executable and of the
 * static codec (protobuf-c allocates through the codec's allocator) go
 * through a counter (-Wl,--wrap). Messages at each documented maximum
 * still decode, and one over it still gets the decoder's own reason.
 * Decode times are printed, never asserted.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto_util.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t sz);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t sz);
void *__wrap_realloc(void *p, size_t n);

static unsigned long nalloc;

void *
__wrap_malloc(size_t n)
{
	nalloc++;
	return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t sz)
{
	nalloc++;
	return __real_calloc(n, sz);
}

void *
__wrap_realloc(void *p, size_t n)
{
	nalloc++;
	return __real_realloc(p, n);
}

/* a decode that refuses before unpacking allocates nothing; a few for
 * slack, where one per element would be millions */
#define FEW_ALLOCS 16

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* raw - n copies of the two bytes a, b after w */
static void
raw(struct pbw *w, uint8_t a, uint8_t b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		pbw_byte(w, a);
		pbw_byte(w, b);
	}
}

static int
req_decode(const struct pbw *w, char *why, size_t whylen, double *ms,
    unsigned long *allocs)
{
	struct fbx_console_req out;
	unsigned long a0 = nalloc;
	double t0 = now_ms();
	int rv;

	rv = fbx_console_req_decode(w->p, w->n, &out, why, whylen);
	*ms = now_ms() - t0;
	*allocs = nalloc - a0;
	if (rv == FBX_OK)
		fbx_console_req_free(&out);
	return rv;
}

static int
gw_decode(const struct pbw *w, int generic, char *why, size_t whylen,
    double *ms, unsigned long *allocs)
{
	struct fbx_gw_msg out;
	unsigned long a0 = nalloc;
	double t0 = now_ms();
	int rv;

	rv = generic ? fbx_gw_msg_decode_generic(w->p, w->n, &out, why, whylen)
	             : fbx_gw_msg_decode(w->p, w->n, &out, why, whylen);
	*ms = now_ms() - t0;
	*allocs = nalloc - a0;
	if (rv == FBX_OK)
		fbx_gw_msg_free(&out);
	return rv;
}

/* enroll_req - a ConsoleRequest whose enroll (13) holds n devices (field
 * 1), each dev (NULL: empty) */
static void
enroll_req(struct pbw *w, size_t n, const struct pbw *dev)
{
	struct pbw body = { 0 };

	hand_req(w, 1, "acme");
	for (size_t i = 0; i < n; i++) {
		if (dev == NULL) {
			pbw_byte(&body, 0x0a);
			pbw_byte(&body, 0x00);
		} else {
			pbw_bytes(&body, 1, dev->p, dev->n);
		}
	}
	pbw_sub(w, 13, &body);
}

/* ---- the bombs ---- */

static void
test_enroll_bomb(void)
{
	struct pbw w = { 0 };
	unsigned long allocs;
	char why[256];
	double ms;

	enroll_req(&w, 4194204, NULL);
	CHECK(w.n <= FBX_CONSOLE_MSG_MAX);
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs), FBX_ETOOBIG);
	printf("enroll bomb (4,194,204 empty devices, %zu bytes): %s, "
	       "%.1f ms, %lu allocations\n",
	    w.n, why, ms, allocs);
	CHECK(strncmp(why, "enroll.devices: over 131072 entries on the wire", 47)
	    == 0);
	CHECK(allocs <= FEW_ALLOCS);
	free(w.p);
}

/* a message field given again is merged into the one before by
 * protobuf-c (its repeated fields concatenated: the square of the
 * repeats); the prescan allows a few */
static void
test_merge_bomb(void)
{
	struct pbw w = { 0 }, dev = { 0 };
	unsigned long allocs;
	char why[256];
	double ms;

	hand_req(&w, 1, "acme");
	pbw_str(&dev, 2, "d");
	for (size_t i = 0; i < 1000000; i++) {
		pbw_byte(&w, 13 << 3 | 2); /* enroll, one device */
		pbw_byte(&w, (uint8_t)(dev.n + 2));
		pbw_bytes(&w, 1, dev.p, dev.n);
	}
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs), FBX_ETOOBIG);
	printf("merge bomb (enroll given 1,000,000 times): %s, %.1f ms, "
	       "%lu allocations\n",
	    why, ms, allocs);
	CHECK(strncmp(why, "enroll: given over 8 times on the wire", 38)
	    == 0);
	CHECK(allocs <= FEW_ALLOCS);
	free(w.p);
	free(dev.p);
}

static void
test_unknown_bombs(void)
{
	size_t n = 6291406;
	struct pbw w = { 0 }, sub = { 0 }, ent = { 0 };
	unsigned long allocs;
	char why[256];
	double ms;
	int rv;

	/* a Heartbeat followed by unknown varint fields (field 3) */
	pbw_uint(&w, 1, 1);
	pbw_sub(&w, 14, &sub);
	raw(&w, 0x18, 0x00, n);
	CHECK(w.n <= FBX_GATEWAY_IN_MAX);
	rv = gw_decode(&w, 0, why, sizeof(why), &ms, &allocs);
	CHECK_RV(rv, FBX_EMALFORMED);
	printf("heartbeat + %zu unknown fields (%zu bytes): %s, %.1f ms, "
	       "%lu allocations\n",
	    n, w.n, why, ms, allocs);
	CHECK(strstr(why, "over 64 unknown fields on the wire") != NULL);
	CHECK(allocs <= FEW_ALLOCS);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* before HELLO: the same inside a Hello */
	pbw_uint(&w, 1, 1);
	pbw_str(&sub, 1, "gw1");
	pbw_str(&sub, 2, "*");
	raw(&sub, 0x30, 0x00, 1000000); /* field 6 */
	pbw_sub(&w, 10, &sub);
	rv = gw_decode(&w, 0, why, sizeof(why), &ms, &allocs);
	CHECK_RV(rv, FBX_EMALFORMED);
	CHECK(strstr(why, "over 64 unknown fields on the wire") != NULL);
	CHECK(allocs <= FEW_ALLOCS);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* inside one Result entry of a batch (the direct path leaves it to
	 * the generic one, which must refuse it the same way) */
	pbw_uint(&w, 1, 1);
	pbw_uint(&ent, 1, 5);
	pbw_uint(&ent, 2, FBX_R_SUCCEEDED);
	raw(&ent, 0x20, 0x00, 4000000); /* field 4 */
	pbw_uint(&sub, 1, 9);
	pbw_sub(&sub, 2, &ent);
	pbw_sub(&w, 12, &sub);
	rv = gw_decode(&w, 0, why, sizeof(why), &ms, &allocs);
	CHECK_RV(rv, FBX_EMALFORMED);
	printf("result entry + 4,000,000 unknown fields: %s, %.1f ms, "
	       "%lu allocations\n",
	    why, ms, allocs);
	CHECK(strstr(why, "over 64 unknown fields on the wire") != NULL);
	CHECK(allocs <= FEW_ALLOCS);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* in a console request, a reply, an engine message, an event */
	hand_req(&w, 1, "acme");
	pbw_sub(&w, 17, &sub); /* ping */
	raw(&w, 0x28, 0x01, 1000000); /* field 5 */
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs),
	    FBX_EMALFORMED);
	CHECK(strstr(why, "unknown fields on the wire") != NULL);
	CHECK(allocs <= FEW_ALLOCS);
	{
		struct fbx_console_rep rep;
		struct fbx_eng_msg eng;
		struct fbx_event ev;
		unsigned long a0 = nalloc;

		CHECK_RV(fbx_console_rep_decode(w.p, w.n, &rep),
		    FBX_EMALFORMED);
		CHECK_RV(fbx_eng_msg_decode(w.p, w.n, &eng), FBX_EMALFORMED);
		CHECK(nalloc - a0 <= 3 * FEW_ALLOCS);
		/* an event's own unknown field (15: Event has 1..10; its
		 * field 5 is a string, which a varint would make malformed
		 * whatever the cap): well-formed but over the cap */
		struct pbw e = { 0 };
		raw(&e, 0x78, 0x01, 1000);
		CHECK_RV(fbx_event_decode(e.p, e.n, &ev), FBX_EMALFORMED);
		free(e.p);
		memset(&e, 0, sizeof(e));
		/* at the cap the bytes pass the prescan (the event's own
		 * checks may still refuse an event of no fields) */
		raw(&e, 0x78, 0x01, 64);
		CHECK(fbx_event_decode(e.p, e.n, &ev) != FBX_EMALFORMED);
		free(e.p);
	}
	free(w.p);
	memset(&w, 0, sizeof(w));
}

/* 64 unknown fields pass (a newer peer's extra fields), 65 do not */
static void
test_unknown_cap(void)
{
	struct fbx_console_req in, out;
	unsigned long allocs;
	char why[256];
	double ms;
	uint8_t *buf;
	size_t len;
	struct pbw w = { 0 };

	base_req(&in, FBX_CREQ_PING);
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_OK);
	for (size_t i = 0; i < len; i++)
		pbw_byte(&w, buf[i]);
	free(buf);
	for (int i = 0; i < 64; i++)
		pbw_uint(&w, 100 + (uint32_t)i, 7);
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs), FBX_OK);
	pbw_str(&w, 200, "newer");
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs),
	    FBX_EMALFORMED);
	CHECK(strcmp(why, "message: over 64 unknown fields on the wire")
	    == 0);
	free(w.p);
	(void)out;
}

/* ---- documented maximums still decode; one over keeps its reason ---- */

static void
test_enroll_limits(void)
{
	struct pbw w = { 0 }, dev = { 0 };
	unsigned long allocs;
	char why[256];
	double ms;

	pbw_str(&dev, 2, "d1");
	pbw_uint(&dev, 3, FBX_PLATFORM_ANDROID);
	enroll_req(&w, FBX_ENROLL_MAX, &dev);
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs), FBX_OK);
	printf("enroll of %d devices: %.1f ms\n", FBX_ENROLL_MAX, ms);
	free(w.p);
	memset(&w, 0, sizeof(w));
	enroll_req(&w, FBX_ENROLL_MAX + 1, &dev);
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs), FBX_ETOOBIG);
	CHECK(strcmp(why, "enroll.devices: 50001 devices, at most 50000") == 0);
	free(w.p);
	memset(&w, 0, sizeof(w));
	/* past the prescan's field cap: its reason, before unpacking */
	enroll_req(&w, 131073, &dev);
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs), FBX_ETOOBIG);
	CHECK(strcmp(why, "enroll.devices: over 131072 entries on the "
	                  "wire") == 0);
	CHECK(allocs <= FEW_ALLOCS);
	free(w.p);
	memset(&w, 0, sizeof(w));
	/* the largest enroll: 50,000 devices of 8 groups, 450,000 entries */
	for (int g = 0; g < FBX_GROUPS_MAX; g++)
		pbw_str(&dev, 7, "grp");
	enroll_req(&w, FBX_ENROLL_MAX, &dev);
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs), FBX_OK);
	if (strlen(why) > 0)
		printf("why: %s\n", why);
	free(w.p);
	free(dev.p);
}

static void
test_submit_limits(void)
{
	struct pbw w = { 0 }, body = { 0 }, tgt = { 0 };
	unsigned long allocs;
	char why[256];
	double ms;
	size_t n;

	for (int k = 0; k < 3; k++) {
		n = k == 0 ? FBX_TARGET_IDS_MAX
		    : k == 1 ? FBX_TARGET_IDS_MAX + 1 : 131073;
		hand_req(&w, 1, "acme");
		pbw_uint(&tgt, 1, FBX_TARGET_DEVICES);
		for (size_t i = 0; i < n; i++) {
			char id[16];
			snprintf(id, sizeof(id), "d%zu", i);
			pbw_str(&tgt, 2, id);
		}
		pbw_uint(&body, 1, FBX_CMD_LOCK);
		pbw_uint(&body, 2, FBX_ORIGIN_OPERATOR);
		pbw_sub(&body, 4, &tgt);
		pbw_sub(&w, 10, &body);
		if (k == 0) {
			CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs),
			    FBX_OK);
			printf("submit of %zu device ids (%zu bytes): %.1f ms\n",
			    n, w.n, ms);
		} else if (k == 1) {
			CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs),
			    FBX_ETOOBIG);
			CHECK(strcmp(why, "submit.target.device_ids: 100001 "
			                  "ids, at most 100000") == 0);
		} else {
			CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs),
			    FBX_ETOOBIG);
			CHECK(strcmp(why, "submit.target.device_ids: over "
			                  "131072 entries on the wire") == 0);
			CHECK(allocs <= FEW_ALLOCS);
		}
		free(w.p);
		memset(&w, 0, sizeof(w));
	}
}

static void
test_results_limits(void)
{
	struct pbw w = { 0 }, sub = { 0 }, ent = { 0 };
	unsigned long allocs;
	char why[256];
	double ms;

	for (int k = 0; k < 2; k++) {
		size_t n = FBX_BATCH_MAX + (size_t)k;
		pbw_uint(&w, 1, 1);
		pbw_uint(&sub, 1, 9);
		for (size_t i = 0; i < n; i++) {
			pbw_uint(&ent, 1, i + 1);
			pbw_uint(&ent, 2, FBX_R_SUCCEEDED);
			pbw_sub(&sub, 2, &ent);
		}
		pbw_sub(&w, 12, &sub);
		if (k == 0) {
			CHECK_RV(gw_decode(&w, 1, why, sizeof(why), &ms,
			             &allocs),
			    FBX_OK);
			printf("results batch of %zu, generic path (%zu bytes): "
			       "%.1f ms\n",
			    n, w.n, ms);
			CHECK_RV(gw_decode(&w, 0, why, sizeof(why), &ms,
			             &allocs),
			    FBX_OK);
			printf("results batch of %zu, direct path: %.1f ms\n", n,
			    ms);
		} else {
			CHECK_RV(gw_decode(&w, 1, why, sizeof(why), &ms,
			             &allocs),
			    FBX_ETOOBIG);
			CHECK(strcmp(why, "results: 65537 entries, at most "
			                  "65536") == 0);
		}
		free(w.p);
		memset(&w, 0, sizeof(w));
	}
}

/* malformed bytes past a counted part: refused as unpack refuses them */
static void
test_malformed(void)
{
	struct pbw w = { 0 };
	unsigned long allocs;
	char why[256];
	double ms;

	enroll_req(&w, 10, NULL);
	raw(&w, 0x28, 0x00, 60); /* 60 unknown fields (field 5) after it */
	pbw_byte(&w, 0x0b);      /* field 1, a group: not read */
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs),
	    FBX_EMALFORMED);
	CHECK(strcmp(why, "message: not a ConsoleRequest") == 0);
	CHECK(allocs <= FEW_ALLOCS);
	free(w.p);
	memset(&w, 0, sizeof(w));
	/* a message field as a varint */
	hand_req(&w, 1, "acme");
	pbw_uint(&w, 13, 1);
	CHECK_RV(req_decode(&w, why, sizeof(why), &ms, &allocs),
	    FBX_EMALFORMED);
	CHECK(strcmp(why, "message: not a ConsoleRequest") == 0);
	free(w.p);
}

int
main(void)
{
	test_enroll_bomb();
	test_merge_bomb();
	test_unknown_bombs();
	test_unknown_cap();
	test_enroll_limits();
	test_submit_limits();
	test_results_limits();
	test_malformed();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
