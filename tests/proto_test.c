/*
 * proto_test.c: tests of the wire codec (proto/wire*.c) through its public
 * header only. Round trips every console, gateway and engine message kind,
 * then feeds the decoders what a hostile or buggy peer would send:
 * oversize lengths, random bytes, mutated messages, wrong versions, bad
 * identifiers, unknown enum values and too many entries. The safety
 * controls (breakers, limits, rate caps, approvals, rollouts, dry runs,
 * held commands), the incident tools (rollback, replay, export, audit,
 * organisation list) and events get the same treatment. Hand-built wire
 * bytes come from a tiny protobuf writer so no generated code is needed.
 * The direct codec's comparisons with protobuf-c (proto/wire_direct.c)
 * are in proto_direct_test.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"

static int npass, nfail;

#define CHECK(c)                                                             \
	do {                                                                 \
		if (c) {                                                     \
			npass++;                                             \
		} else {                                                     \
			nfail++;                                             \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__,       \
			    __LINE__, #c);                                   \
		}                                                            \
	} while (0)

#define CHECK_RV(got, want)                                                  \
	do {                                                                 \
		int g_ = (got), w_ = (want);                                 \
		if (g_ == w_) {                                              \
			npass++;                                             \
		} else {                                                     \
			nfail++;                                             \
			fprintf(stderr, "%s:%d: FAIL: %s = %s, want %s\n",   \
			    __FILE__, __LINE__, #got, fbx_errname(g_),       \
			    fbx_errname(w_));                                \
		}                                                            \
	} while (0)

static void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n > 0 ? n : 1, sz);

	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

/* Deterministic PRNG (xorshift64*), independent of the libc. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* ---- a tiny protobuf writer for hand-built (hostile) messages ---- */

struct pbw {
	uint8_t *p;
	size_t n, cap;
};

static void
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

static void
pbw_varint(struct pbw *w, uint64_t v)
{
	while (v >= 0x80) {
		pbw_byte(w, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	pbw_byte(w, (uint8_t)v);
}

static void
pbw_uint(struct pbw *w, uint32_t field, uint64_t v)
{
	pbw_varint(w, (uint64_t)field << 3);
	pbw_varint(w, v);
}

static void
pbw_bytes(struct pbw *w, uint32_t field, const void *d, size_t n)
{
	size_t i;

	pbw_varint(w, ((uint64_t)field << 3) | 2);
	pbw_varint(w, n);
	for (i = 0; i < n; i++)
		pbw_byte(w, ((const uint8_t *)d)[i]);
}

static void
pbw_str(struct pbw *w, uint32_t field, const char *s)
{
	pbw_bytes(w, field, s, strlen(s));
}

/* pbw_sub appends sub as field and frees it. */
static void
pbw_sub(struct pbw *w, uint32_t field, struct pbw *sub)
{
	pbw_bytes(w, field, sub->p, sub->n);
	free(sub->p);
	memset(sub, 0, sizeof(*sub));
}

/* ---- helpers ---- */

static void
base_req(struct fbx_console_req *r, int kind)
{
	memset(r, 0, sizeof(*r));
	r->version = FBX_PROTOCOL_VERSION;
	r->request_id = 4242;
	strcpy(r->org, "acme");
	strcpy(r->actor, "alice@acme");
	r->kind = kind;
}

/* req_rt encodes in and decodes into out; returns the decode result. */
static int
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

static int
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

static int
gw_rt(const struct fbx_gw_msg *in, struct fbx_gw_msg *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char why[256];
	int rv;

	rv = fbx_gw_msg_encode(in, &buf, &len);
	CHECK_RV(rv, FBX_OK);
	if (rv != FBX_OK)
		return rv;
	/* the kind the engine reads without decoding (short turns) */
	CHECK(fbx_gw_msg_kind(buf, len) == in->kind);
	CHECK(fbx_gw_msg_kind(buf, len > 2 ? 2 : 0) == FBX_GW_NONE);
	rv = fbx_gw_msg_decode(buf, len, out, why, sizeof(why));
	free(buf);
	return rv;
}

/* eng_rt frees the encoded bytes before returning so that a decoded
 * message borrowing from them (instead of from its own copy) shows up
 * under AddressSanitizer. */
static int
eng_rt(const struct fbx_eng_msg *in, struct fbx_eng_msg *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	rv = fbx_eng_msg_encode(in, &buf, &len);
	CHECK_RV(rv, FBX_OK);
	if (rv != FBX_OK)
		return rv;
	rv = fbx_eng_msg_decode(buf, len, out);
	memset(buf, 0xa5, len);
	free(buf);
	return rv;
}

static void
make_device(struct fbx_device *d, const char *id, int ngroups)
{
	int g;

	memset(d, 0, sizeof(*d));
	strcpy(d->org, "acme");
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->platform = FBX_PLATFORM_ANDROID;
	d->online = 1;
	d->attestation = FBX_ATTEST_PASS;
	strcpy(d->os_version, "14.2.1");
	d->ngroups = (uint8_t)ngroups;
	for (g = 0; g < ngroups; g++)
		snprintf(d->groups[g], sizeof(d->groups[g]), "group-%d", g);
	d->enrolled_ms = 1700000000000;
	d->last_checkin_ms = 1700000005000;
}

static int
device_eq(const struct fbx_device *a, const struct fbx_device *b)
{
	int g;

	if (strcmp(a->org, b->org) || strcmp(a->id, b->id) ||
	    a->platform != b->platform || a->online != b->online ||
	    a->attestation != b->attestation ||
	    strcmp(a->os_version, b->os_version) ||
	    a->ngroups != b->ngroups || a->enrolled_ms != b->enrolled_ms ||
	    a->last_checkin_ms != b->last_checkin_ms)
		return 0;
	for (g = 0; g < a->ngroups; g++)
		if (strcmp(a->groups[g], b->groups[g]))
			return 0;
	return 1;
}

static void
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

static int
command_info_eq(const struct fbx_command *a, const struct fbx_command *b)
{
	return a->id == b->id && !strcmp(a->org, b->org) &&
	    !strcmp(a->actor, b->actor) && !strcmp(a->reason, b->reason) &&
	    !strcmp(a->idem_key, b->idem_key) &&
	    !strcmp(a->group, b->group) && a->type == b->type &&
	    a->origin == b->origin && a->target_kind == b->target_kind &&
	    a->platform == b->platform && a->state == b->state &&
	    a->ttl_s == b->ttl_s && a->created_ms == b->created_ms &&
	    a->expires_ms == b->expires_ms &&
	    a->ndeliveries == b->ndeliveries &&
	    !memcmp(a->counts, b->counts, sizeof(a->counts)) &&
	    a->payload_len == b->payload_len && a->ndev_ids == b->ndev_ids &&
	    !strcmp(a->cursor, b->cursor) && a->cursor_idx == b->cursor_idx &&
	    b->payload == NULL && b->dev_ids == NULL;
}

/* ======================= console requests ============================== */

static void
test_req_submit(void)
{
	static const uint8_t payload[] = { 1, 2, 3, 0, 255 };
	struct fbx_console_req in, out;
	struct fbx_command *c = &in.u.submit.cmd;
	char why[256];

	base_req(&in, FBX_CREQ_SUBMIT);
	c->type = FBX_CMD_LOCK;
	c->origin = FBX_ORIGIN_OPERATOR;
	strcpy(c->reason, "INC-42");
	strcpy(c->idem_key, "idem:0001");
	c->target_kind = FBX_TARGET_DEVICES;
	c->platform = FBX_PLATFORM_IOS;
	c->ttl_s = 3600;
	c->payload = (uint8_t *)payload;
	c->payload_len = sizeof(payload);
	c->dev_ids = xcalloc(3, sizeof(*c->dev_ids));
	strcpy(c->dev_ids[0], "dev-1");
	strcpy(c->dev_ids[1], "dev-2");
	strcpy(c->dev_ids[2], "dev.3@x");
	c->ndev_ids = 3;

	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_SUBMIT);
	CHECK(out.version == FBX_PROTOCOL_VERSION);
	CHECK(out.request_id == 4242);
	CHECK(!strcmp(out.org, "acme") && !strcmp(out.actor, "alice@acme"));
	CHECK(!strcmp(out.u.submit.cmd.org, "acme"));
	CHECK(!strcmp(out.u.submit.cmd.actor, "alice@acme"));
	CHECK(out.u.submit.cmd.type == FBX_CMD_LOCK);
	CHECK(out.u.submit.cmd.origin == FBX_ORIGIN_OPERATOR);
	CHECK(!strcmp(out.u.submit.cmd.reason, "INC-42"));
	CHECK(!strcmp(out.u.submit.cmd.idem_key, "idem:0001"));
	CHECK(out.u.submit.cmd.target_kind == FBX_TARGET_DEVICES);
	CHECK(out.u.submit.cmd.platform == FBX_PLATFORM_IOS);
	CHECK(out.u.submit.cmd.ttl_s == 3600);
	CHECK(out.u.submit.cmd.payload_len == sizeof(payload));
	CHECK(out.u.submit.cmd.payload != NULL &&
	    !memcmp(out.u.submit.cmd.payload, payload, sizeof(payload)));
	CHECK(out.u.submit.cmd.ndev_ids == 3);
	CHECK(out.u.submit.cmd.dev_ids != NULL &&
	    !strcmp(out.u.submit.cmd.dev_ids[2], "dev.3@x"));
	fbx_console_req_free(&out);

	/* DEVICES with no ids decodes: the engine answers EMPTY_TARGET. */
	c->ndev_ids = 0;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.submit.cmd.ndev_ids == 0);
	fbx_console_req_free(&out);
	free(c->dev_ids);
	c->dev_ids = NULL;

	/* Group target. */
	c->target_kind = FBX_TARGET_GROUP;
	strcpy(c->group, "sales:emea");
	c->platform = FBX_PLATFORM_ANY;
	c->reason[0] = '\0';
	c->idem_key[0] = '\0';
	c->payload_len = 0;
	c->payload = NULL;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.submit.cmd.target_kind == FBX_TARGET_GROUP);
	CHECK(!strcmp(out.u.submit.cmd.group, "sales:emea"));
	CHECK(out.u.submit.cmd.reason[0] == '\0');
	CHECK(out.u.submit.cmd.payload == NULL);
	fbx_console_req_free(&out);

	/* Organisation target. */
	c->target_kind = FBX_TARGET_ORG;
	c->group[0] = '\0';
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.submit.cmd.target_kind == FBX_TARGET_ORG);
	fbx_console_req_free(&out);
}

static void
test_req_other_kinds(void)
{
	struct fbx_console_req in, out;
	char why[256];
	size_t i;

	base_req(&in, FBX_CREQ_GET_COMMAND);
	in.u.get.command_id = 77;
	in.u.get.after = FBX_DLV_ID(77, 9);
	in.u.get.limit = 100;
	in.u.get.state = FBX_D_FAILED;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_GET_COMMAND);
	CHECK(out.u.get.command_id == 77);
	CHECK(out.u.get.after == FBX_DLV_ID(77, 9));
	CHECK(out.u.get.limit == 100 && out.u.get.state == FBX_D_FAILED);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_LIST_COMMANDS);
	in.u.list.since_ms = 1000;
	in.u.list.until_ms = 2000;
	in.u.list.after = 3;
	in.u.list.limit = 50;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_COMMANDS);
	CHECK(out.u.list.since_ms == 1000 && out.u.list.until_ms == 2000);
	CHECK(out.u.list.after == 3 && out.u.list.limit == 50);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_ENROLL);
	in.u.enroll.n = 3;
	in.u.enroll.devs = xcalloc(3, sizeof(struct fbx_device));
	make_device(&in.u.enroll.devs[0], "dev-0", 0);
	make_device(&in.u.enroll.devs[1], "dev-1", 2);
	make_device(&in.u.enroll.devs[2], "dev-2", FBX_GROUPS_MAX);
	strcpy(in.u.enroll.devs[2].org, "other"); /* ignored */
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ENROLL && out.u.enroll.n == 3);
	if (out.u.enroll.n == 3) {
		strcpy(in.u.enroll.devs[2].org, "acme");
		for (i = 0; i < 3; i++)
			CHECK(device_eq(&in.u.enroll.devs[i],
			    &out.u.enroll.devs[i]));
	}
	fbx_console_req_free(&out);
	free(in.u.enroll.devs);

	base_req(&in, FBX_CREQ_REMOVE);
	in.u.remove.n = 3;
	in.u.remove.ids = xcalloc(3, sizeof(fbx_id));
	strcpy(in.u.remove.ids[0], "a");
	strcpy(in.u.remove.ids[1], "b-2");
	strcpy(in.u.remove.ids[2], "c_3");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_REMOVE && out.u.remove.n == 3);
	CHECK(out.u.remove.n == 3 && !strcmp(out.u.remove.ids[1], "b-2"));
	fbx_console_req_free(&out);
	free(in.u.remove.ids);

	base_req(&in, FBX_CREQ_LIST_DEVICES);
	strcpy(in.u.list_devices.group, "g1");
	strcpy(in.u.list_devices.after, "dev-5");
	in.u.list_devices.limit = 10;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_DEVICES);
	CHECK(!strcmp(out.u.list_devices.group, "g1"));
	CHECK(!strcmp(out.u.list_devices.after, "dev-5"));
	CHECK(out.u.list_devices.limit == 10);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_LIST_GROUPS);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_GROUPS);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_PING);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_PING && out.request_id == 4242);
	fbx_console_req_free(&out);

	/* free accepts NULL and a zeroed struct. */
	fbx_console_req_free(NULL);
	memset(&out, 0, sizeof(out));
	fbx_console_req_free(&out);
}

/* ======================= console replies =============================== */

static void
test_rep_kinds(void)
{
	struct fbx_console_rep in, out;
	struct fbx_delivery dl[3];
	struct fbx_command cmds[2];
	struct fbx_device devs[2];
	struct fbx_group_count groups[2];
	size_t i;

	memset(&in, 0, sizeof(in));
	in.request_id = 9;
	in.kind = FBX_CREQ_SUBMIT;
	in.u.submit.command_id = 1234;
	in.u.submit.duplicate = 1;
	in.u.submit.device_count = 5000;
	in.u.submit.state = FBX_C_EXPANDING;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.request_id == 9 && out.err == FBX_OK);
	CHECK(out.kind == FBX_CREQ_SUBMIT);
	CHECK(out.u.submit.command_id == 1234 && out.u.submit.duplicate == 1);
	CHECK(out.u.submit.device_count == 5000);
	CHECK(out.u.submit.state == FBX_C_EXPANDING);
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_GET_COMMAND;
	make_command(&in.u.command.info, 1234);
	memset(dl, 0, sizeof(dl));
	for (i = 0; i < 3; i++) {
		dl[i].id = FBX_DLV_ID(1234, i);
		dl[i].state = FBX_D_FAILED;
		dl[i].code = (uint16_t)(400 + i);
		dl[i].attempts = 2;
		dl[i].updated_ms = 1700000000123;
		snprintf(dl[i].device, sizeof(dl[i].device), "dev-%zu", i);
	}
	dl[1].nhist = FBX_HIST_MAX;
	for (i = 0; i < FBX_HIST_MAX; i++) {
		dl[1].hist[i].state = (uint8_t)(1 + i % (FBX_D_COUNT - 1));
		dl[1].hist[i].code = (uint16_t)i;
		dl[1].hist[i].at_ms = 1700000000000 + (int64_t)i;
	}
	dl[2].nhist = 1;
	dl[2].hist[0].state = FBX_D_QUEUED;
	in.u.command.dlv = dl;
	in.u.command.ndlv = 3;
	in.u.command.next_after = FBX_DLV_ID(1234, 3);
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_GET_COMMAND);
	CHECK(command_info_eq(&in.u.command.info, &out.u.command.info));
	CHECK(out.u.command.ndlv == 3);
	CHECK(out.u.command.next_after == FBX_DLV_ID(1234, 3));
	if (out.u.command.ndlv == 3) {
		for (i = 0; i < 3; i++) {
			const struct fbx_delivery *a = &dl[i];
			const struct fbx_delivery *b = &out.u.command.dlv[i];
			CHECK(a->id == b->id && a->state == b->state &&
			    a->code == b->code && a->attempts == b->attempts &&
			    a->updated_ms == b->updated_ms &&
			    !strcmp(a->device, b->device) &&
			    a->nhist == b->nhist &&
			    !memcmp(a->hist, b->hist,
			        a->nhist * sizeof(a->hist[0])));
		}
	}
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_LIST_COMMANDS;
	make_command(&cmds[0], 1);
	make_command(&cmds[1], 2);
	memset(cmds[1].counts, 0, sizeof(cmds[1].counts));
	cmds[1].reason[0] = '\0';
	cmds[1].target_kind = FBX_TARGET_DEVICES;
	cmds[1].group[0] = '\0';
	cmds[1].ndev_ids = 4;
	in.u.commands.cmds = cmds;
	in.u.commands.n = 2;
	in.u.commands.next_after = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_COMMANDS && out.u.commands.n == 2);
	CHECK(out.u.commands.next_after == 2);
	if (out.u.commands.n == 2) {
		CHECK(command_info_eq(&cmds[0], &out.u.commands.cmds[0]));
		CHECK(command_info_eq(&cmds[1], &out.u.commands.cmds[1]));
	}
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_ENROLL;
	in.u.enroll.created = 10;
	in.u.enroll.updated = 3;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ENROLL && out.u.enroll.created == 10 &&
	    out.u.enroll.updated == 3);
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_REMOVE;
	in.u.remove.removed = 17;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_REMOVE && out.u.remove.removed == 17);
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_LIST_DEVICES;
	make_device(&devs[0], "dev-0", 1);
	make_device(&devs[1], "dev-1", 3);
	in.u.devices.devs = devs;
	in.u.devices.n = 2;
	strcpy(in.u.devices.next_after, "dev-1");
	in.u.devices.total = 99;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_DEVICES && out.u.devices.n == 2);
	CHECK(!strcmp(out.u.devices.next_after, "dev-1"));
	CHECK(out.u.devices.total == 99);
	if (out.u.devices.n == 2) {
		CHECK(device_eq(&devs[0], &out.u.devices.devs[0]));
		CHECK(device_eq(&devs[1], &out.u.devices.devs[1]));
	}
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_LIST_GROUPS;
	memset(groups, 0, sizeof(groups));
	strcpy(groups[0].name, "sales");
	groups[0].count = 12;
	strcpy(groups[1].name, "eng");
	groups[1].count = 0;
	in.u.groups.groups = groups;
	in.u.groups.n = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_GROUPS && out.u.groups.n == 2);
	if (out.u.groups.n == 2) {
		CHECK(!strcmp(out.u.groups.groups[0].name, "sales") &&
		    out.u.groups.groups[0].count == 12);
		CHECK(!strcmp(out.u.groups.groups[1].name, "eng") &&
		    out.u.groups.groups[1].count == 0);
	}
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_PING;
	strcpy(in.u.pong.version, FBX_VERSION);
	in.u.pong.uptime_ms = 1;
	in.u.pong.gateways = 2;
	in.u.pong.commands_active = 3;
	in.u.pong.deliveries_queued = 4;
	in.u.pong.deliveries_inflight = 5;
	in.u.pong.deliveries_pending = 6;
	in.u.pong.commits = 7;
	in.u.pong.store_bytes = 8;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_PING);
	CHECK(!memcmp(&in.u.pong, &out.u.pong, sizeof(in.u.pong)));
	fbx_console_rep_free(&out);

	/* An error reply carries code and message, no result. */
	memset(&in, 0, sizeof(in));
	in.request_id = 31;
	in.kind = FBX_CREQ_SUBMIT;
	in.err = FBX_EUNKNOWN_ORG;
	strcpy(in.errmsg, "organisation 'acme' is not enrolled");
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.request_id == 31 && out.err == FBX_EUNKNOWN_ORG);
	CHECK(!strcmp(out.errmsg, in.errmsg));
	CHECK(out.kind == FBX_CREQ_NONE);
	fbx_console_rep_free(&out);
}

/* ======================= gateway messages ============================== */

static void
test_gw_kinds(void)
{
	struct fbx_gw_msg in, out;
	size_t i, n = FBX_BATCH_MAX, bad = 0;

	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_HELLO;
	strcpy(in.u.hello.gateway_id, "gw-eu-1");
	in.u.hello.orgs = xcalloc(2, sizeof(fbx_id));
	strcpy(in.u.hello.orgs[0], "acme");
	strcpy(in.u.hello.orgs[1], "*");
	in.u.hello.norgs = 2;
	in.u.hello.window = 5000;
	CHECK_RV(gw_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_GW_HELLO &&
	    out.version == FBX_PROTOCOL_VERSION);
	CHECK(!strcmp(out.u.hello.gateway_id, "gw-eu-1"));
	CHECK(out.u.hello.norgs == 2 && out.u.hello.window == 5000);
	CHECK(out.u.hello.norgs == 2 && !strcmp(out.u.hello.orgs[1], "*"));
	fbx_gw_msg_free(&out);
	free(in.u.hello.orgs);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_CREDIT;
	in.u.credit.window = 123;
	CHECK_RV(gw_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_GW_CREDIT && out.u.credit.window == 123);
	fbx_gw_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_RESULTS;
	in.u.results.batch_id = 555;
	in.u.results.r = xcalloc(n, sizeof(struct fbx_result_rec));
	in.u.results.n = n;
	for (i = 0; i < n; i++) {
		in.u.results.r[i].delivery_id = FBX_DLV_ID(7, i);
		in.u.results.r[i].status = (uint8_t)(1 + i % 4);
		in.u.results.r[i].code = (uint16_t)(i % 65536);
	}
	CHECK_RV(gw_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_GW_RESULTS && out.u.results.batch_id == 555);
	CHECK(out.u.results.n == n);
	if (out.u.results.n == n) {
		for (i = 0; i < n; i++)
			if (in.u.results.r[i].delivery_id !=
			        out.u.results.r[i].delivery_id ||
			    in.u.results.r[i].status !=
			        out.u.results.r[i].status ||
			    in.u.results.r[i].code != out.u.results.r[i].code)
				bad++;
		CHECK(bad == 0);
	}
	fbx_gw_msg_free(&out);
	free(in.u.results.r);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_CHECKINS;
	in.u.checkins.batch_id = 556;
	in.u.checkins.c = xcalloc(3, sizeof(struct fbx_checkin));
	in.u.checkins.n = 3;
	for (i = 0; i < 3; i++) {
		struct fbx_checkin *c = &in.u.checkins.c[i];
		strcpy(c->org, "acme");
		snprintf(c->device, sizeof(c->device), "dev-%zu", i);
		c->at_ms = 1700000000000 + (int64_t)i;
		strcpy(c->os_version, "17.1");
		c->attestation = (uint8_t)(i % FBX_ATTEST_COUNT);
	}
	CHECK_RV(gw_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_GW_CHECKINS && out.u.checkins.n == 3);
	CHECK(out.u.checkins.batch_id == 556);
	if (out.u.checkins.n == 3)
		CHECK(!memcmp(in.u.checkins.c, out.u.checkins.c,
		    3 * sizeof(struct fbx_checkin)));
	fbx_gw_msg_free(&out);
	/* a device's OS version reaches terminals and web pages: an escape
	 * sequence or broken UTF-8 is refused, printable UTF-8 kept */
	strcpy(in.u.checkins.c[1].os_version, "\x1b[31m17");
	CHECK_RV(gw_rt(&in, &out), FBX_EINVALID);
	strcpy(in.u.checkins.c[1].os_version, "17\xff");
	CHECK_RV(gw_rt(&in, &out), FBX_EINVALID);
	strcpy(in.u.checkins.c[1].os_version, "iOS 17 \xc3\xa9");
	CHECK_RV(gw_rt(&in, &out), FBX_OK);
	fbx_gw_msg_free(&out);
	free(in.u.checkins.c);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_HEARTBEAT;
	CHECK_RV(gw_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_GW_HEARTBEAT);
	fbx_gw_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_BYE;
	strcpy(in.u.bye.reason, "shutting down for maintenance");
	CHECK_RV(gw_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_GW_BYE &&
	    !strcmp(out.u.bye.reason, in.u.bye.reason));
	fbx_gw_msg_free(&out);

	/* More results than a batch may hold. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_GW_RESULTS;
	in.u.results.r = xcalloc(n + 1, sizeof(struct fbx_result_rec));
	in.u.results.n = n + 1;
	{
		uint8_t *buf = NULL;
		size_t len = 0;
		CHECK_RV(fbx_gw_msg_encode(&in, &buf, &len), FBX_ETOOBIG);
		CHECK(buf == NULL);
	}
	free(in.u.results.r);
}

/* ======================= engine messages =============================== */

static void
test_eng_kinds(void)
{
	static uint8_t payload[600];
	struct fbx_eng_msg in, out;
	struct fbx_dlv_out *d;
	char (*devnames)[16];
	size_t i, n = FBX_BATCH_MAX, bad = 0;
	uint8_t *buf = NULL;
	size_t len = 0;

	memset(&in, 0, sizeof(in));
	in.kind = FBX_ENG_WELCOME;
	strcpy(in.u.welcome.engine_id, "engine-1");
	in.u.welcome.heartbeat_ms = 5000;
	in.u.welcome.max_batch = FBX_BATCH_MAX;
	CHECK_RV(eng_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_ENG_WELCOME);
	CHECK(!strcmp(out.u.welcome.engine_id, "engine-1"));
	CHECK(out.u.welcome.heartbeat_ms == 5000);
	CHECK(out.u.welcome.max_batch == FBX_BATCH_MAX);
	fbx_eng_msg_free(&out);

	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	d = xcalloc(n, sizeof(*d));
	devnames = xcalloc(n, sizeof(*devnames));
	for (i = 0; i < n; i++) {
		snprintf(devnames[i], sizeof(devnames[i]), "dev-%zu", i);
		d[i].delivery_id = FBX_DLV_ID(42, i);
		d[i].command_id = 42;
		d[i].org = "acme";
		d[i].device = devnames[i];
		d[i].type = FBX_CMD_LOCK;
		d[i].payload = i % 2 ? payload : NULL;
		d[i].payload_len = i % 2 ? 1 + i % 100 : 0;
		d[i].expires_ms = 1700000000000 + (int64_t)i;
		d[i].attempt = 1 + (uint32_t)(i % 3);
	}
	memset(&in, 0, sizeof(in));
	in.kind = FBX_ENG_DELIVERIES;
	in.u.deliveries.d = d;
	in.u.deliveries.n = n;
	CHECK_RV(eng_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_ENG_DELIVERIES && out.u.deliveries.n == n);
	CHECK(out.u.deliveries.urgent == 0);
	CHECK(out.priv_ != NULL);
	if (out.u.deliveries.n == n) {
		for (i = 0; i < n; i++) {
			const struct fbx_dlv_out *a = &d[i];
			const struct fbx_dlv_out *b = &out.u.deliveries.d[i];
			if (a->delivery_id != b->delivery_id ||
			    a->command_id != b->command_id ||
			    strcmp(a->org, b->org) ||
			    strcmp(a->device, b->device) ||
			    a->type != b->type ||
			    a->payload_len != b->payload_len ||
			    (a->payload_len > 0 &&
			        memcmp(a->payload, b->payload,
			            a->payload_len)) ||
			    a->expires_ms != b->expires_ms ||
			    a->attempt != b->attempt)
				bad++;
		}
		CHECK(bad == 0);
	}
	fbx_eng_msg_free(&out);
	CHECK(out.priv_ == NULL);

	/* the urgent mark (small commands: served first) round-trips */
	in.u.deliveries.n = 1;
	in.u.deliveries.urgent = 1;
	CHECK_RV(eng_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_ENG_DELIVERIES && out.u.deliveries.n == 1 &&
	    out.u.deliveries.urgent == 1);
	fbx_eng_msg_free(&out);
	in.u.deliveries.n = n;
	in.u.deliveries.urgent = 0;

	/* 65,536 deliveries of 600 bytes exceed the 32 MiB message cap. */
	for (i = 0; i < n; i++) {
		d[i].payload = payload;
		d[i].payload_len = sizeof(payload);
	}
	CHECK_RV(fbx_eng_msg_encode(&in, &buf, &len), FBX_ETOOBIG);
	CHECK(buf == NULL);
	/* An identifier over 64 bytes is refused by the encoder. */
	d[0].payload_len = 0;
	in.u.deliveries.n = 1;
	d[0].device = "0123456789012345678901234567890123456789012345678901"
		      "234567890123";
	CHECK_RV(fbx_eng_msg_encode(&in, &buf, &len), FBX_OK);
	free(buf);
	d[0].device = "0123456789012345678901234567890123456789012345678901"
		      "2345678901234";
	CHECK_RV(fbx_eng_msg_encode(&in, &buf, &len), FBX_ETOOBIG);
	free(d);
	free(devnames);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_ENG_ACK;
	in.u.ack.batch_id = 555;
	in.u.ack.count = 65536;
	CHECK_RV(eng_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_ENG_ACK && out.u.ack.batch_id == 555 &&
	    out.u.ack.count == 65536);
	fbx_eng_msg_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_ENG_ERROR;
	in.u.error.err = FBX_EPROTOCOL;
	strcpy(in.u.error.msg, "results before hello");
	CHECK_RV(eng_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_ENG_ERROR && out.u.error.err == FBX_EPROTOCOL);
	CHECK(!strcmp(out.u.error.msg, "results before hello"));
	fbx_eng_msg_free(&out);
	fbx_eng_msg_free(NULL);
}

/* ======================= hostile input ================================= */

/* test_oversize passes a 16-byte buffer with a length over the cap: any
 * read of it past 16 bytes would be caught by AddressSanitizer, so
 * FBX_ETOOBIG here proves the length is checked before unpacking. */
static void
test_oversize(void)
{
	uint8_t *small = xcalloc(16, 1);
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_gw_msg gw;
	struct fbx_eng_msg eng;
	char why[256];

	CHECK_RV(fbx_console_req_decode(small, FBX_CONSOLE_MSG_MAX + 1, &req,
	             why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strstr(why, "message") != NULL);
	CHECK(req.request_id == 0);
	CHECK_RV(fbx_console_rep_decode(small, FBX_CONSOLE_MSG_MAX + 1, &rep),
	    FBX_ETOOBIG);
	CHECK_RV(fbx_gw_msg_decode(small, FBX_GATEWAY_MSG_MAX + 1, &gw, why,
	             sizeof(why)),
	    FBX_ETOOBIG);
	CHECK_RV(fbx_eng_msg_decode(small, FBX_GATEWAY_MSG_MAX + 1, &eng),
	    FBX_ETOOBIG);
	CHECK_RV(fbx_console_req_decode(small, (size_t)-1, &req, why,
	             sizeof(why)),
	    FBX_ETOOBIG);
	free(small);
}

static int
hostile_rv_ok(int rv)
{
	return rv == FBX_EMALFORMED || rv == FBX_EVERSION ||
	    rv == FBX_EINVALID || rv == FBX_ETOOBIG;
}

/* test_garbage: random buffers must be refused cleanly. Almost all are
 * not protobuf at all (FBX_EMALFORMED); the few that happen to parse are
 * refused for their content (no version, no body). None may decode. */
static void
test_garbage(void)
{
	enum { N = 10000, MAXLEN = 512 };
	uint8_t *buf = xcalloc(MAXLEN, 1);
	size_t i, j, len, malformed[4] = { 0 }, accepted = 0, odd = 0;
	char why[256];

	rng_state = 0x5eed5eed12345678ull;
	for (i = 0; i < N; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		struct fbx_gw_msg gw;
		struct fbx_eng_msg eng;
		int rv[4];

		len = 1 + rng() % MAXLEN;
		for (j = 0; j < len; j++)
			buf[j] = (uint8_t)rng();
		rv[0] = fbx_console_req_decode(buf, len, &req, why,
		    sizeof(why));
		rv[1] = fbx_console_rep_decode(buf, len, &rep);
		rv[2] = fbx_gw_msg_decode(buf, len, &gw, why, sizeof(why));
		rv[3] = fbx_eng_msg_decode(buf, len, &eng);
		for (j = 0; j < 4; j++) {
			if (rv[j] == FBX_EMALFORMED)
				malformed[j]++;
			else if (rv[j] == FBX_OK)
				accepted++;
			else if (!hostile_rv_ok(rv[j]))
				odd++;
		}
		if (rv[0] == FBX_OK)
			fbx_console_req_free(&req);
		if (rv[1] == FBX_OK)
			fbx_console_rep_free(&rep);
		if (rv[2] == FBX_OK)
			fbx_gw_msg_free(&gw);
		if (rv[3] == FBX_OK)
			fbx_eng_msg_free(&eng);
	}
	printf("garbage: %d buffers, EMALFORMED req %zu rep %zu gw %zu "
	       "eng %zu\n",
	    N, malformed[0], malformed[1], malformed[2], malformed[3]);
	CHECK(accepted == 0);
	CHECK(odd == 0);
	for (j = 0; j < 4; j++)
		CHECK(malformed[j] >= N * 95 / 100);
	free(buf);
}

/* test_mutations flips bytes of valid messages: whatever the decoders
 * return, they must not crash or leak, and must free what they accept. */
static void
test_mutations(void)
{
	struct fbx_console_req req, out;
	struct fbx_gw_msg gw, gout;
	struct fbx_checkin ck[2];
	uint8_t *enc[2], *buf;
	size_t elen[2], i, j, odd = 0;
	char why[256];
	int rv;

	base_req(&req, FBX_CREQ_SUBMIT);
	req.u.submit.cmd.type = FBX_CMD_SET_POLICY;
	req.u.submit.cmd.origin = FBX_ORIGIN_ROLLBACK;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	req.u.submit.cmd.dev_ids = xcalloc(4, sizeof(fbx_id));
	req.u.submit.cmd.ndev_ids = 4;
	for (i = 0; i < 4; i++)
		snprintf(req.u.submit.cmd.dev_ids[i], sizeof(fbx_id), "d%zu",
		    i);
	CHECK_RV(fbx_console_req_encode(&req, &enc[0], &elen[0]), FBX_OK);
	free(req.u.submit.cmd.dev_ids);

	memset(&gw, 0, sizeof(gw));
	memset(ck, 0, sizeof(ck));
	strcpy(ck[0].org, "o");
	strcpy(ck[0].device, "d");
	strcpy(ck[1].org, "o2");
	strcpy(ck[1].device, "d2");
	gw.kind = FBX_GW_CHECKINS;
	gw.u.checkins.c = ck;
	gw.u.checkins.n = 2;
	CHECK_RV(fbx_gw_msg_encode(&gw, &enc[1], &elen[1]), FBX_OK);

	rng_state = 0xfeedfacecafebeefull;
	for (i = 0; i < 20000; i++) {
		size_t k = i % 2, flips = 1 + rng() % 4;
		buf = xcalloc(elen[k], 1);
		memcpy(buf, enc[k], elen[k]);
		for (j = 0; j < flips; j++)
			buf[rng() % elen[k]] = (uint8_t)rng();
		if (k == 0) {
			rv = fbx_console_req_decode(buf, elen[k], &out, why,
			    sizeof(why));
			if (rv == FBX_OK)
				fbx_console_req_free(&out);
		} else {
			rv = fbx_gw_msg_decode(buf, elen[k], &gout, why,
			    sizeof(why));
			if (rv == FBX_OK)
				fbx_gw_msg_free(&gout);
		}
		if (rv != FBX_OK && !hostile_rv_ok(rv))
			odd++;
		free(buf);
	}
	CHECK(odd == 0);
	free(enc[0]);
	free(enc[1]);
}

/* hand_req starts a ConsoleRequest with the given version and ids. */
static void
hand_req(struct pbw *w, uint32_t version, const char *org)
{
	if (version != 0)
		pbw_uint(w, 1, version);
	pbw_uint(w, 2, 77);
	pbw_str(w, 3, org);
	pbw_str(w, 4, "bob");
}

static void
test_version(void)
{
	struct fbx_console_req in, out;
	struct fbx_console_rep rep;
	struct fbx_gw_msg gin, gout;
	struct fbx_eng_msg eng;
	struct pbw w = { 0 }, sub = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	char why[256];

	base_req(&in, FBX_CREQ_PING);
	in.version = 2;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EVERSION);
	CHECK(out.request_id == 4242);
	CHECK(strstr(why, "version") != NULL);

	/* Version missing (0 on the wire). */
	hand_req(&w, 0, "acme");
	pbw_sub(&w, 17, &sub);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_EVERSION);
	CHECK(out.request_id == 77);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* An empty buffer is a message with every field missing. */
	CHECK_RV(fbx_console_req_decode(NULL, 0, &out, why, sizeof(why)),
	    FBX_EVERSION);
	CHECK_RV(fbx_console_rep_decode("", 0, &rep), FBX_EVERSION);

	memset(&gin, 0, sizeof(gin));
	gin.version = 7;
	gin.kind = FBX_GW_HEARTBEAT;
	CHECK_RV(fbx_gw_msg_encode(&gin, &buf, &len), FBX_OK);
	CHECK_RV(fbx_gw_msg_decode(buf, len, &gout, why, sizeof(why)),
	    FBX_EVERSION);
	free(buf);

	/* EngineMessage{ack} without a version. */
	pbw_uint(&sub, 1, 5);
	pbw_sub(&w, 12, &sub);
	CHECK_RV(fbx_eng_msg_decode(w.p, w.n, &eng), FBX_EVERSION);
	free(w.p);
}

static void
test_bad_fields(void)
{
	struct fbx_console_req in, out;
	struct fbx_gw_msg gin, gout;
	struct fbx_eng_msg ein, eout;
	struct fbx_dlv_out d;
	struct pbw w = { 0 }, body = { 0 }, tgt = { 0 };
	char why[256], long_id[FBX_ID_MAX + 2];
	uint8_t *buf = NULL;
	size_t len = 0, i;

	/* Identifier with a space. */
	base_req(&in, FBX_CREQ_PING);
	strcpy(in.org, "bad org");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strncmp(why, "org:", 4) == 0);
	CHECK(out.request_id == 4242);

	/* Missing actor. */
	base_req(&in, FBX_CREQ_PING);
	in.actor[0] = '\0';
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strncmp(why, "actor:", 6) == 0);

	/* 65-byte organisation, built by hand since it cannot be encoded. */
	memset(long_id, 'a', FBX_ID_MAX + 1);
	long_id[FBX_ID_MAX + 1] = '\0';
	hand_req(&w, 1, long_id);
	pbw_sub(&w, 17, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strncmp(why, "org:", 4) == 0);
	CHECK(out.request_id == 77);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* Bad device id inside the target list, named by index. */
	base_req(&in, FBX_CREQ_SUBMIT);
	in.u.submit.cmd.type = FBX_CMD_LOCK;
	in.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	in.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	in.u.submit.cmd.dev_ids = xcalloc(3, sizeof(fbx_id));
	in.u.submit.cmd.ndev_ids = 3;
	strcpy(in.u.submit.cmd.dev_ids[0], "ok-1");
	strcpy(in.u.submit.cmd.dev_ids[1], "not ok");
	strcpy(in.u.submit.cmd.dev_ids[2], "ok-3");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.target.device_ids[1]") != NULL);
	strcpy(in.u.submit.cmd.dev_ids[1], "ok-2");

	/* Enum values out of range. */
	in.u.submit.cmd.type = 99;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.type") != NULL);
	in.u.submit.cmd.type = FBX_CMD_NONE;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	in.u.submit.cmd.type = FBX_CMD_LOCK;
	in.u.submit.cmd.origin = FBX_ORIGIN_NONE;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.origin") != NULL);
	in.u.submit.cmd.origin = FBX_ORIGIN_COUNT;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	in.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	in.u.submit.cmd.platform = 42;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.target.platform") != NULL);
	in.u.submit.cmd.platform = FBX_PLATFORM_ANY;
	in.u.submit.cmd.target_kind = FBX_TARGET_NONE;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.target.kind") != NULL);

	/* Group target needs a group; ids only for a device target. */
	in.u.submit.cmd.target_kind = FBX_TARGET_GROUP;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.target.device_ids") != NULL);
	in.u.submit.cmd.ndev_ids = 0;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.target.group") != NULL);
	strcpy(in.u.submit.cmd.group, "bad/group");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.target.group") != NULL);
	strcpy(in.u.submit.cmd.group, "good");
	strcpy(in.u.submit.cmd.reason, "two words");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.reason") != NULL);
	in.u.submit.cmd.reason[0] = '\0';
	strcpy(in.u.submit.cmd.idem_key, "k#1");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "submit.idempotency_key") != NULL);
	in.u.submit.cmd.idem_key[0] = '\0';
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);

	/* Payload over the cap is refused by the encoder. */
	in.u.submit.cmd.payload = xcalloc(FBX_PAYLOAD_MAX + 1, 1);
	in.u.submit.cmd.payload_len = FBX_PAYLOAD_MAX + 1;
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_ETOOBIG);
	free(in.u.submit.cmd.payload);
	in.u.submit.cmd.payload = NULL;
	in.u.submit.cmd.payload_len = 0;

	/* Too many target ids: encoder and decoder both refuse. */
	free(in.u.submit.cmd.dev_ids);
	in.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	in.u.submit.cmd.group[0] = '\0';
	in.u.submit.cmd.ndev_ids = FBX_TARGET_IDS_MAX + 1;
	in.u.submit.cmd.dev_ids = xcalloc(FBX_TARGET_IDS_MAX + 1,
	    sizeof(fbx_id));
	for (i = 0; i < FBX_TARGET_IDS_MAX + 1; i++)
		strcpy(in.u.submit.cmd.dev_ids[i], "d");
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_ETOOBIG);
	in.u.submit.cmd.ndev_ids = FBX_TARGET_IDS_MAX;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.submit.cmd.ndev_ids == FBX_TARGET_IDS_MAX);
	fbx_console_req_free(&out);
	free(in.u.submit.cmd.dev_ids);

	hand_req(&w, 1, "acme");
	pbw_uint(&tgt, 1, FBX_TARGET_DEVICES);
	for (i = 0; i < FBX_TARGET_IDS_MAX + 1; i++)
		pbw_str(&tgt, 2, "d");
	pbw_uint(&body, 1, FBX_CMD_LOCK);
	pbw_uint(&body, 2, FBX_ORIGIN_OPERATOR);
	pbw_sub(&body, 4, &tgt);
	pbw_sub(&w, 10, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strstr(why, "submit.target.device_ids") != NULL);
	CHECK(out.request_id == 77);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* Missing body, and a body from a newer protocol (field 40). */
	hand_req(&w, 1, "acme");
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_EINVALID);
	CHECK(strstr(why, "body") != NULL);
	pbw_sub(&w, 40, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_EINVALID);
	CHECK(strstr(why, "body") != NULL);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* Paging limits and filters. */
	base_req(&in, FBX_CREQ_GET_COMMAND);
	in.u.get.command_id = 1;
	in.u.get.limit = FBX_PAGE_MAX + 1;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_ETOOBIG);
	CHECK(strstr(why, "get_command.limit") != NULL);
	in.u.get.limit = 10;
	in.u.get.state = FBX_D_COUNT;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "get_command.state") != NULL);

	/* A bad group deep inside an enrolled device. */
	base_req(&in, FBX_CREQ_ENROLL);
	in.u.enroll.devs = xcalloc(2, sizeof(struct fbx_device));
	in.u.enroll.n = 2;
	make_device(&in.u.enroll.devs[0], "d0", 1);
	make_device(&in.u.enroll.devs[1], "d1", 2);
	strcpy(in.u.enroll.devs[1].groups[1], "x y");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "enroll.devices[1].groups[1]") != NULL);
	strcpy(in.u.enroll.devs[1].groups[1], "xy");
	in.u.enroll.devs[0].platform = FBX_PLATFORM_COUNT;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_EINVALID);
	CHECK(strstr(why, "enroll.devices[0].platform") != NULL);
	free(in.u.enroll.devs);

	/* Gateway: unknown result status, bad check-in identifier. */
	memset(&gin, 0, sizeof(gin));
	gin.kind = FBX_GW_RESULTS;
	gin.u.results.r = xcalloc(2, sizeof(struct fbx_result_rec));
	gin.u.results.n = 2;
	gin.u.results.r[0].delivery_id = 1;
	gin.u.results.r[0].status = FBX_R_SUCCEEDED;
	gin.u.results.r[1].delivery_id = 2;
	gin.u.results.r[1].status = 9;
	CHECK_RV(gw_rt(&gin, &gout), FBX_EINVALID);
	CHECK_RV(fbx_gw_msg_encode(&gin, &buf, &len), FBX_OK);
	CHECK_RV(fbx_gw_msg_decode(buf, len, &gout, why, sizeof(why)),
	    FBX_EINVALID);
	CHECK(strstr(why, "results.results[1].status") != NULL);
	free(buf);
	free(gin.u.results.r);

	memset(&gin, 0, sizeof(gin));
	gin.kind = FBX_GW_CHECKINS;
	gin.u.checkins.c = xcalloc(3, sizeof(struct fbx_checkin));
	gin.u.checkins.n = 3;
	for (i = 0; i < 3; i++) {
		strcpy(gin.u.checkins.c[i].org, "acme");
		strcpy(gin.u.checkins.c[i].device, "d");
	}
	strcpy(gin.u.checkins.c[2].org, "ac me");
	CHECK_RV(fbx_gw_msg_encode(&gin, &buf, &len), FBX_OK);
	CHECK_RV(fbx_gw_msg_decode(buf, len, &gout, why, sizeof(why)),
	    FBX_EINVALID);
	CHECK(strstr(why, "checkins.checkins[2].org") != NULL);
	free(buf);
	free(gin.u.checkins.c);

	memset(&gin, 0, sizeof(gin));
	gin.kind = FBX_GW_HELLO;
	strcpy(gin.u.hello.gateway_id, "gw 1");
	CHECK_RV(fbx_gw_msg_encode(&gin, &buf, &len), FBX_OK);
	CHECK_RV(fbx_gw_msg_decode(buf, len, &gout, why, sizeof(why)),
	    FBX_EINVALID);
	CHECK(strstr(why, "hello.gateway_id") != NULL);
	free(buf);

	/* Engine: unknown command type in a delivery. */
	memset(&d, 0, sizeof(d));
	d.delivery_id = 1;
	d.org = "acme";
	d.device = "d";
	d.type = 200;
	memset(&ein, 0, sizeof(ein));
	ein.kind = FBX_ENG_DELIVERIES;
	ein.u.deliveries.d = &d;
	ein.u.deliveries.n = 1;
	CHECK_RV(eng_rt(&ein, &eout), FBX_EINVALID);
	CHECK(eout.priv_ == NULL && eout.u.deliveries.d == NULL);
	d.type = FBX_CMD_QUERY;
	d.device = "no good";
	CHECK_RV(eng_rt(&ein, &eout), FBX_EINVALID);

	/* Bad kinds are refused by every encoder. */
	base_req(&in, 99);
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_EINVALID);
	memset(&gin, 0, sizeof(gin));
	CHECK_RV(fbx_gw_msg_encode(&gin, &buf, &len), FBX_EINVALID);
	memset(&ein, 0, sizeof(ein));
	CHECK_RV(fbx_eng_msg_encode(&ein, &buf, &len), FBX_EINVALID);
}

/* ======================= safety controls =============================== */

static void
make_plan(struct fbx_rollout_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = 1;
	p->approve_groups = 1;
	p->ngroups = 3;
	strcpy(p->groups[0], "canary");
	strcpy(p->groups[1], "it:staff");
	strcpy(p->groups[2], "everyone");
	p->first_count = 25;
	p->first_share_ppm = 10000;
	p->growth_x100 = 250;
	p->max_wave = 5000;
	p->bake_s = 900;
	p->success_ppm = 950000;
	p->failure_ppm = FBX_PPM;
	p->min_results = 20;
}

static void
make_status(struct fbx_rollout_status *s)
{
	memset(s, 0, sizeof(*s));
	s->state = FBX_RO_PAUSED;
	s->stage = 1;
	s->wave = 4;
	s->released = 1234;
	s->wave_start = 600;
	s->wave_size = 634;
	s->wave_started_ms = 1700000001000;
	s->bake_until_ms = 1700000901000;
	strcpy(s->note, "failure share 7% > 5% (auto pause)");
}

static int
plan_eq(const struct fbx_rollout_plan *a, const struct fbx_rollout_plan *b)
{
	int g;

	if (a->enabled != b->enabled ||
	    a->approve_groups != b->approve_groups ||
	    a->ngroups != b->ngroups || a->first_count != b->first_count ||
	    a->first_share_ppm != b->first_share_ppm ||
	    a->growth_x100 != b->growth_x100 || a->max_wave != b->max_wave ||
	    a->bake_s != b->bake_s || a->success_ppm != b->success_ppm ||
	    a->failure_ppm != b->failure_ppm ||
	    a->min_results != b->min_results)
		return 0;
	for (g = 0; g < a->ngroups; g++)
		if (strcmp(a->groups[g], b->groups[g]))
			return 0;
	return 1;
}

static int
status_eq(const struct fbx_rollout_status *a,
    const struct fbx_rollout_status *b)
{
	return a->state == b->state && a->stage == b->stage &&
	    a->wave == b->wave && a->released == b->released &&
	    a->wave_start == b->wave_start && a->wave_size == b->wave_size &&
	    a->wave_started_ms == b->wave_started_ms &&
	    a->bake_until_ms == b->bake_until_ms && !strcmp(a->note, b->note);
}

/* make_held_command: a command with every safety field set. */
static void
make_held_command(struct fbx_command *c, uint64_t id)
{
	make_command(c, id);
	c->state = FBX_C_HELD;
	c->priority = FBX_PRIO_AUTOMATIC;
	strcpy(c->held_by, "acme/INC-42");
	strcpy(c->approved_by, "bob@acme");
	strcpy(c->resolved_by, "carol@acme");
	strcpy(c->note, "held: 312 wipes in 10 min, fleet 2%");
	make_plan(&c->rollout);
	make_status(&c->ro);
}

static int
safety_eq(const struct fbx_command *a, const struct fbx_command *b)
{
	return command_info_eq(a, b) && a->priority == b->priority &&
	    !strcmp(a->held_by, b->held_by) &&
	    !strcmp(a->approved_by, b->approved_by) &&
	    !strcmp(a->resolved_by, b->resolved_by) &&
	    !strcmp(a->note, b->note) && plan_eq(&a->rollout, &b->rollout) &&
	    status_eq(&a->ro, &b->ro);
}

static void
test_req_safety(void)
{
	struct fbx_console_req in, out;
	struct fbx_command *c = &in.u.submit.cmd;
	char why[256];

	/* Submit with dry run, approval token and a staged rollout. */
	base_req(&in, FBX_CREQ_SUBMIT);
	c->type = FBX_CMD_OS_UPDATE;
	c->origin = FBX_ORIGIN_SCHEDULED;
	c->target_kind = FBX_TARGET_ORG;
	make_plan(&c->rollout);
	in.dry_run = 1;
	strcpy(in.approval, "appr:7f3a");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_SUBMIT && out.dry_run == 1);
	CHECK(!strcmp(out.approval, "appr:7f3a"));
	CHECK(plan_eq(&c->rollout, &out.u.submit.cmd.rollout));
	fbx_console_req_free(&out);
	/* Without them, nothing is invented. */
	memset(&c->rollout, 0, sizeof(c->rollout));
	in.dry_run = 0;
	in.approval[0] = '\0';
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.dry_run == 0 && out.approval[0] == '\0');
	CHECK(out.u.submit.cmd.rollout.enabled == 0 &&
	    out.u.submit.cmd.rollout.ngroups == 0);
	fbx_console_req_free(&out);

	/* Breaker: trip with a UTF-8 note, reset, configure, status. */
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_TRIP;
	strcpy(in.u.breaker.reason, "jamf:rule-17");
	strcpy(in.u.breaker.note,
	    "lock storm \xe2\x80\x94 INC-7 (caf\xc3\xa9)");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_BREAKER && out.u.breaker.op == FBX_BRK_TRIP);
	CHECK(!strcmp(out.u.breaker.reason, "jamf:rule-17"));
	CHECK(!strcmp(out.u.breaker.note, in.u.breaker.note));
	CHECK(out.u.breaker.global == 0 &&
	    out.u.breaker.on_reset == FBX_RESET_NONE);
	fbx_console_req_free(&out);

	in.u.breaker.op = FBX_BRK_RESET;
	in.u.breaker.global = 1;
	in.u.breaker.on_reset = FBX_RESET_DISCARD;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.breaker.op == FBX_BRK_RESET && out.u.breaker.global == 1);
	CHECK(out.u.breaker.on_reset == FBX_RESET_DISCARD);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_CONFIGURE;
	in.u.breaker.cfg.window_s = 300;
	in.u.breaker.cfg.min_count = 50;
	in.u.breaker.cfg.share_ppm = 15000;
	in.u.breaker.cfg.baseline_mult = 8;
	in.u.breaker.cfg.global_orgs = 4;
	in.u.breaker.cfg.shadow = 2;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.breaker.op == FBX_BRK_CONFIGURE);
	CHECK(!memcmp(&in.u.breaker.cfg, &out.u.breaker.cfg,
	    sizeof(in.u.breaker.cfg)));
	CHECK(out.u.breaker.reason[0] == '\0' &&
	    out.u.breaker.note[0] == '\0');
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_STATUS;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.breaker.op == FBX_BRK_STATUS);
	fbx_console_req_free(&out);

	/* Limit: set for the org, set global, list. The decoded lim.org is
	 * the scope acted on. */
	base_req(&in, FBX_CREQ_LIMIT);
	in.u.limit.set = 1;
	in.u.limit.lim.type = FBX_CMD_WIPE;
	in.u.limit.lim.max_count = 50;
	in.u.limit.lim.max_share_ppm = 5000;
	in.u.limit.lim.window_s = 7200;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIMIT && out.u.limit.set == 1 &&
	    out.u.limit.global == 0);
	CHECK(!strcmp(out.u.limit.lim.org, "acme"));
	CHECK(out.u.limit.lim.type == FBX_CMD_WIPE &&
	    out.u.limit.lim.max_count == 50 &&
	    out.u.limit.lim.max_share_ppm == 5000 &&
	    out.u.limit.lim.window_s == 7200);
	fbx_console_req_free(&out);
	in.u.limit.global = 1;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.limit.global == 1 && !strcmp(out.u.limit.lim.org, "*"));
	fbx_console_req_free(&out);
	base_req(&in, FBX_CREQ_LIMIT);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.limit.set == 0 && out.u.limit.lim.type == FBX_CMD_NONE);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_RATE);
	in.u.rate.set = 1;
	in.u.rate.global = 1;
	in.u.rate.rate.rate_per_s = 2000;
	in.u.rate.rate.burst = 4000;
	in.u.rate.rate.max_inflight = 100000;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_RATE && out.u.rate.set == 1 &&
	    out.u.rate.global == 1 && !strcmp(out.u.rate.rate.org, "*"));
	CHECK(out.u.rate.rate.rate_per_s == 2000 &&
	    out.u.rate.rate.burst == 4000 &&
	    out.u.rate.rate.max_inflight == 100000);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_APPROVE);
	strcpy(in.u.approve.token, "appr:7f3a");
	strcpy(in.u.approve.note, "checked with the fleet owner");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_APPROVE);
	CHECK(!strcmp(out.u.approve.token, "appr:7f3a"));
	CHECK(!strcmp(out.u.approve.note, "checked with the fleet owner"));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_ROLLOUT);
	in.u.rollout.op = FBX_ROP_APPROVE;
	in.u.rollout.command_id = 991;
	strcpy(in.u.rollout.note, "canary green for 24 h");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLOUT &&
	    out.u.rollout.op == FBX_ROP_APPROVE &&
	    out.u.rollout.command_id == 991);
	CHECK(!strcmp(out.u.rollout.note, "canary green for 24 h"));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_LIST_HELD);
	strcpy(in.u.list_held.reason, "INC-42");
	in.u.list_held.after = 17;
	in.u.list_held.limit = FBX_PAGE_MAX;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_HELD);
	CHECK(!strcmp(out.u.list_held.reason, "INC-42") &&
	    out.u.list_held.after == 17 &&
	    out.u.list_held.limit == FBX_PAGE_MAX);
	fbx_console_req_free(&out);
}

static void
test_rep_safety(void)
{
	struct fbx_console_rep in, out;
	struct fbx_group_count groups[3];
	uint32_t waves[5] = { 25, 63, 157, 393, 362 };
	struct fbx_breaker_info brk[3];
	struct fbx_limit_info lim[2];
	struct fbx_rate_info rate[2];
	struct fbx_command cmds[2];
	size_t i;

	/* Submit answered HELD. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_SUBMIT;
	in.u.submit.command_id = 77;
	in.u.submit.state = FBX_C_HELD;
	strcpy(in.u.submit.held_by, "*/jamf:rule-17");
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.submit.state == FBX_C_HELD);
	CHECK(!strcmp(out.u.submit.held_by, "*/jamf:rule-17"));
	CHECK(out.u.submit.dry_run == 0 && out.u.submit.dryrun.groups == NULL);
	fbx_console_rep_free(&out);

	/* Dry run with platforms, groups, waves and a stop verdict. */
	memset(&in, 0, sizeof(in));
	in.request_id = 5;
	in.kind = FBX_CREQ_SUBMIT;
	in.u.submit.dry_run = 1;
	in.u.submit.dryrun.devices = 1000;
	in.u.submit.dryrun.per_platform[FBX_PLATFORM_IOS] = 600;
	in.u.submit.dryrun.per_platform[FBX_PLATFORM_ANDROID] = 399;
	in.u.submit.dryrun.per_platform[FBX_PLATFORM_ANY] = 1;
	memset(groups, 0, sizeof(groups));
	strcpy(groups[0].name, "canary");
	groups[0].count = 25;
	strcpy(groups[1].name, "it:staff");
	groups[1].count = 75;
	strcpy(groups[2].name, "everyone");
	groups[2].count = 900;
	in.u.submit.dryrun.groups = groups;
	in.u.submit.dryrun.ngroups = 3;
	in.u.submit.dryrun.waves = waves;
	in.u.submit.dryrun.nwaves = 5;
	in.u.submit.dryrun.stop_err = FBX_ELIMIT_EXCEEDED;
	strcpy(in.u.submit.dryrun.verdict,
	    "1000 devices > wipe limit 50 per hour: needs approval");
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_SUBMIT && out.u.submit.dry_run == 1);
	CHECK(out.u.submit.dryrun.devices == 1000);
	CHECK(!memcmp(out.u.submit.dryrun.per_platform,
	    in.u.submit.dryrun.per_platform,
	    sizeof(in.u.submit.dryrun.per_platform)));
	CHECK(out.u.submit.dryrun.ngroups == 3 &&
	    out.u.submit.dryrun.nwaves == 5);
	if (out.u.submit.dryrun.ngroups == 3)
		for (i = 0; i < 3; i++)
			CHECK(!strcmp(out.u.submit.dryrun.groups[i].name,
			          groups[i].name) &&
			    out.u.submit.dryrun.groups[i].count ==
			        groups[i].count);
	if (out.u.submit.dryrun.nwaves == 5)
		CHECK(!memcmp(out.u.submit.dryrun.waves, waves,
		    sizeof(waves)));
	CHECK(out.u.submit.dryrun.stop_err == FBX_ELIMIT_EXCEEDED);
	CHECK(!strcmp(out.u.submit.dryrun.verdict,
	    in.u.submit.dryrun.verdict));
	fbx_console_rep_free(&out);
	CHECK(out.u.submit.dryrun.groups == NULL);

	/* Breaker reply with three breakers, one global. */
	memset(&in, 0, sizeof(in));
	memset(brk, 0, sizeof(brk));
	in.kind = FBX_CREQ_BREAKER;
	for (i = 0; i < 3; i++) {
		struct fbx_breaker_info *b = &brk[i];
		strcpy(b->org, i == 2 ? "*" : "acme");
		snprintf(b->reason, sizeof(b->reason), "rule-%zu", i);
		b->state = i == 1 ? FBX_BS_OPEN : FBX_BS_CLOSED;
		b->manual = i == 1;
		b->cfg.window_s = 600;
		b->cfg.min_count = 20 + (uint32_t)i;
		b->cfg.share_ppm = 20000;
		b->cfg.baseline_mult = 10;
		b->cfg.global_orgs = 3;
		b->cfg.shadow = i == 0;
		b->window_count = 300 + i;
		b->baseline = 12;
		b->held = 4 * i;
		b->would_hold = 9;
		b->trips = 2;
		b->tripped_ms = 1700000000000 + (int64_t)i;
		strcpy(b->tripped_by, i == 1 ? "alice@acme" : "engine");
		strcpy(b->note, "manual trip: INC-7");
		b->fleet = 15000;
		b->allowance = 300;
	}
	/* commands without a reason (whole buffer: compared by memcmp) */
	memset(brk[0].reason, 0, sizeof(brk[0].reason));
	in.u.breaker.b = brk;
	in.u.breaker.n = 3;
	in.u.breaker.released = 11;
	in.u.breaker.discarded = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_BREAKER && out.u.breaker.n == 3);
	CHECK(out.u.breaker.released == 11 && out.u.breaker.discarded == 2);
	if (out.u.breaker.n == 3)
		CHECK(!memcmp(brk, out.u.breaker.b, sizeof(brk)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	memset(lim, 0, sizeof(lim));
	in.kind = FBX_CREQ_LIMIT;
	strcpy(lim[0].org, "*");
	lim[0].type = FBX_CMD_WIPE;
	lim[0].max_count = 50;
	lim[0].window_s = 3600;
	lim[0].used = 12;
	strcpy(lim[1].org, "acme");
	lim[1].type = FBX_CMD_LOCK;
	lim[1].max_share_ppm = 50000;
	lim[1].window_s = 600;
	lim[1].used = 1ull << 40;
	in.u.limit.l = lim;
	in.u.limit.n = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIMIT && out.u.limit.n == 2);
	if (out.u.limit.n == 2)
		CHECK(!memcmp(lim, out.u.limit.l, sizeof(lim)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	memset(rate, 0, sizeof(rate));
	in.kind = FBX_CREQ_RATE;
	strcpy(rate[0].org, "*");
	rate[0].rate_per_s = 5000;
	rate[0].burst = 10000;
	strcpy(rate[1].org, "acme");
	rate[1].rate_per_s = 100;
	rate[1].burst = 200;
	rate[1].max_inflight = 1000;
	rate[1].inflight = 999;
	in.u.rate.r = rate;
	in.u.rate.n = 2;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_RATE && out.u.rate.n == 2);
	if (out.u.rate.n == 2)
		CHECK(!memcmp(rate, out.u.rate.r, sizeof(rate)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_APPROVE;
	strcpy(in.u.approve.token, "appr:7f3a");
	strcpy(in.u.approve.approver, "bob@acme");
	strcpy(in.u.approve.submitter, "alice@acme");
	in.u.approve.expires_ms = 1700000900000;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_APPROVE);
	CHECK(!memcmp(&in.u.approve, &out.u.approve, sizeof(in.u.approve)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_ROLLOUT;
	in.u.rollout.command_id = 991;
	make_plan(&in.u.rollout.plan);
	make_status(&in.u.rollout.st);
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLOUT && out.u.rollout.command_id == 991);
	CHECK(plan_eq(&in.u.rollout.plan, &out.u.rollout.plan));
	CHECK(status_eq(&in.u.rollout.st, &out.u.rollout.st));
	fbx_console_rep_free(&out);

	/* Held commands, with every safety field; the second is plain. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_LIST_HELD;
	make_held_command(&cmds[0], 40);
	make_command(&cmds[1], 41);
	cmds[1].state = FBX_C_DISCARDED;
	strcpy(cmds[1].held_by, "*/");
	in.u.commands.cmds = cmds;
	in.u.commands.n = 2;
	in.u.commands.next_after = 41;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_HELD && out.u.commands.n == 2);
	CHECK(out.u.commands.next_after == 41);
	if (out.u.commands.n == 2) {
		CHECK(safety_eq(&cmds[0], &out.u.commands.cmds[0]));
		CHECK(safety_eq(&cmds[1], &out.u.commands.cmds[1]));
	}
	fbx_console_rep_free(&out);

	/* The same fields through get_command. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_GET_COMMAND;
	make_held_command(&in.u.command.info, 40);
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(safety_eq(&in.u.command.info, &out.u.command.info));
	fbx_console_rep_free(&out);

	/* LIMIT_EXCEEDED carries the approval token and the numbers. */
	memset(&in, 0, sizeof(in));
	in.request_id = 32;
	in.kind = FBX_CREQ_SUBMIT;
	in.err = FBX_ELIMIT_EXCEEDED;
	strcpy(in.errmsg, "wipe of 1000 devices > limit 50 per hour");
	strcpy(in.approval_token, "appr:7f3a");
	in.limit_value = 50;
	in.limit_count = 1000;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.request_id == 32 && out.err == FBX_ELIMIT_EXCEEDED);
	CHECK(!strcmp(out.errmsg, in.errmsg));
	CHECK(!strcmp(out.approval_token, "appr:7f3a"));
	CHECK(out.limit_value == 50 && out.limit_count == 1000);
	CHECK(out.kind == FBX_CREQ_NONE);
	fbx_console_rep_free(&out);
}

/* req_bad encodes in and expects the decoder to refuse it with want and
 * a reason containing field. */
static void
req_bad_(const struct fbx_console_req *in, int want, const char *field,
    int line)
{
	struct fbx_console_req out;
	char why[256] = "";
	int rv = req_rt(in, &out, why, sizeof(why));

	if (rv == want && strstr(why, field) != NULL) {
		npass++;
		return;
	}
	nfail++;
	fprintf(stderr, "%s:%d: FAIL: decode = %s (%s), want %s (%s)\n",
	    __FILE__, line, fbx_errname(rv), why, fbx_errname(want), field);
	if (rv == FBX_OK)
		fbx_console_req_free(&out);
}
#define req_bad(in, want, field) req_bad_(in, want, field, __LINE__)

/* hand_rep_submit wraps a hand-built SubmitResult in a ConsoleReply. */
static int
hand_rep_submit(struct pbw *sub, struct fbx_console_rep *out)
{
	struct pbw w = { 0 };
	int rv;

	pbw_uint(&w, 1, 3);
	pbw_uint(&w, 3, 1);
	pbw_sub(&w, 10, sub);
	rv = fbx_console_rep_decode(w.p, w.n, out);
	free(w.p);
	return rv;
}

static void
test_safety_bad_fields(void)
{
	struct fbx_console_req in, out;
	struct fbx_console_rep rin, rout;
	struct fbx_breaker_info brk;
	struct fbx_limit_info lim;
	struct pbw w = { 0 }, body = { 0 }, plan = { 0 }, sub = { 0 };
	char why[256], note[FBX_NOTE_MAX + 1];
	uint8_t *buf = NULL;
	size_t len = 0, i;

	/* "*" is a scope in replies, never an organisation in requests. */
	base_req(&in, FBX_CREQ_PING);
	strcpy(in.org, "*");
	req_bad(&in, FBX_EINVALID, "org:");
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_STATUS;
	strcpy(in.org, "*");
	req_bad(&in, FBX_EINVALID, "org:");

	/* Breaker operations and what each needs. */
	base_req(&in, FBX_CREQ_BREAKER);
	req_bad(&in, FBX_EINVALID, "breaker.op");
	in.u.breaker.op = FBX_BRK_CONFIGURE + 1;
	req_bad(&in, FBX_EINVALID, "breaker.op");
	in.u.breaker.op = FBX_BRK_TRIP;
	strcpy(in.u.breaker.note, "storm");
	req_bad(&in, FBX_EINVALID, "breaker.reason");
	strcpy(in.u.breaker.reason, "rule 17");
	req_bad(&in, FBX_EINVALID, "breaker.reason");
	strcpy(in.u.breaker.reason, "rule-17");
	in.u.breaker.note[0] = '\0';
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "storm");
	in.u.breaker.on_reset = FBX_RESET_RELEASE;
	req_bad(&in, FBX_EINVALID, "breaker.on_reset");
	in.u.breaker.on_reset = FBX_RESET_NONE;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	in.u.breaker.op = FBX_BRK_RESET;
	req_bad(&in, FBX_EINVALID, "breaker.on_reset");
	in.u.breaker.on_reset = 7;
	req_bad(&in, FBX_EINVALID, "breaker.on_reset");
	in.u.breaker.on_reset = FBX_RESET_RELEASE;
	in.u.breaker.reason[0] = '\0';
	req_bad(&in, FBX_EINVALID, "breaker.reason");
	strcpy(in.u.breaker.reason, "rule-17");
	in.u.breaker.note[0] = '\0';
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "storm");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	/* Config only with CONFIGURE, and in range. */
	in.u.breaker.cfg.min_count = 5;
	req_bad(&in, FBX_EINVALID, "breaker.config");
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_CONFIGURE;
	in.u.breaker.cfg.share_ppm = FBX_PPM + 1;
	req_bad(&in, FBX_EINVALID, "breaker.config.share_ppm");
	in.u.breaker.cfg.share_ppm = FBX_PPM;
	in.u.breaker.cfg.shadow = 3;
	req_bad(&in, FBX_EINVALID, "breaker.config.shadow");

	/* Notes: printable UTF-8, at most 159 bytes. */
	base_req(&in, FBX_CREQ_BREAKER);
	in.u.breaker.op = FBX_BRK_TRIP;
	strcpy(in.u.breaker.reason, "r");
	strcpy(in.u.breaker.note, "two\nlines");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "tab\there");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "del\x7f");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "esc \x1b[31m red");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "c1 \xc2\x85 nel");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "bad \xc3\x28 utf8");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "overlong \xc0\xaf");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "surrogate \xed\xa0\x80");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "cut \xe2\x80");
	req_bad(&in, FBX_EINVALID, "breaker.note");
	strcpy(in.u.breaker.note, "ok \xf0\x9f\x94\xa5 \xe6\x97\xa5 \xc2\xa0");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(!strcmp(out.u.breaker.note, in.u.breaker.note));
	fbx_console_req_free(&out);
	memset(in.u.breaker.note, 'n', FBX_NOTE_MAX - 1);
	in.u.breaker.note[FBX_NOTE_MAX - 1] = '\0';
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(strlen(out.u.breaker.note) == FBX_NOTE_MAX - 1);
	fbx_console_req_free(&out);
	/* 160 bytes cannot be encoded from the struct: build it by hand. */
	memset(note, 'n', FBX_NOTE_MAX);
	note[FBX_NOTE_MAX] = '\0';
	hand_req(&w, 1, "acme");
	pbw_uint(&body, 1, FBX_BRK_TRIP);
	pbw_str(&body, 3, "r");
	pbw_str(&body, 5, note);
	pbw_sub(&w, 18, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strstr(why, "breaker.note") != NULL);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* Limits. */
	base_req(&in, FBX_CREQ_LIMIT);
	in.u.limit.set = 1;
	req_bad(&in, FBX_EINVALID, "limit.type");
	in.u.limit.lim.type = FBX_CMD_TYPE_COUNT;
	req_bad(&in, FBX_EINVALID, "limit.type");
	in.u.limit.set = 0;
	req_bad(&in, FBX_EINVALID, "limit.type");
	in.u.limit.set = 1;
	in.u.limit.lim.type = FBX_CMD_LOCK;
	in.u.limit.lim.max_share_ppm = FBX_PPM + 1;
	req_bad(&in, FBX_EINVALID, "limit.max_share_ppm");

	/* Approvals, rollouts, held lists. */
	base_req(&in, FBX_CREQ_APPROVE);
	req_bad(&in, FBX_EINVALID, "approve.token");
	strcpy(in.u.approve.token, "*");
	req_bad(&in, FBX_EINVALID, "approve.token");
	strcpy(in.u.approve.token, "t1");
	strcpy(in.u.approve.note, "bell\a");
	req_bad(&in, FBX_EINVALID, "approve.note");

	base_req(&in, FBX_CREQ_ROLLOUT);
	in.u.rollout.command_id = 5;
	req_bad(&in, FBX_EINVALID, "rollout.op");
	in.u.rollout.op = FBX_ROP_APPROVE + 1;
	req_bad(&in, FBX_EINVALID, "rollout.op");
	in.u.rollout.op = FBX_ROP_PAUSE;
	in.u.rollout.command_id = 0;
	req_bad(&in, FBX_EINVALID, "rollout.command_id");
	in.u.rollout.command_id = 5;
	strcpy(in.u.rollout.note, "\r");
	req_bad(&in, FBX_EINVALID, "rollout.note");

	base_req(&in, FBX_CREQ_LIST_HELD);
	in.u.list_held.limit = FBX_PAGE_MAX + 1;
	req_bad(&in, FBX_ETOOBIG, "list_held.limit");
	in.u.list_held.limit = 1;
	strcpy(in.u.list_held.reason, "a/b");
	req_bad(&in, FBX_EINVALID, "list_held.reason");

	/* Submit: approval token, rollout plan. */
	base_req(&in, FBX_CREQ_SUBMIT);
	in.u.submit.cmd.type = FBX_CMD_LOCK;
	in.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	in.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	strcpy(in.approval, "not valid");
	req_bad(&in, FBX_EINVALID, "submit.approval");
	in.approval[0] = '\0';
	make_plan(&in.u.submit.cmd.rollout);
	strcpy(in.u.submit.cmd.rollout.groups[1], "bad group");
	req_bad(&in, FBX_EINVALID, "submit.rollout.groups[1]");
	in.u.submit.cmd.rollout.groups[1][0] = '\0';
	req_bad(&in, FBX_EINVALID, "submit.rollout.groups[1]");
	strcpy(in.u.submit.cmd.rollout.groups[1], "ok");
	in.u.submit.cmd.rollout.success_ppm = FBX_PPM + 1;
	req_bad(&in, FBX_EINVALID, "submit.rollout");
	in.u.submit.cmd.rollout.success_ppm = FBX_PPM;
	in.u.submit.cmd.rollout.first_share_ppm = 0xffffffffu;
	req_bad(&in, FBX_EINVALID, "submit.rollout");
	in.u.submit.cmd.rollout.first_share_ppm = 0;
	in.u.submit.cmd.rollout.ngroups = FBX_ROLLOUT_GROUPS_MAX + 1;
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_ETOOBIG);
	in.u.submit.cmd.rollout.ngroups = FBX_ROLLOUT_GROUPS_MAX;
	for (i = 0; i < FBX_ROLLOUT_GROUPS_MAX; i++)
		snprintf(in.u.submit.cmd.rollout.groups[i], sizeof(fbx_id),
		    "g%zu", i);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(plan_eq(&in.u.submit.cmd.rollout, &out.u.submit.cmd.rollout));
	fbx_console_req_free(&out);
	hand_req(&w, 1, "acme");
	for (i = 0; i < FBX_ROLLOUT_GROUPS_MAX + 1; i++)
		pbw_str(&plan, 11, "g");
	pbw_uint(&sub, 1, FBX_TARGET_ORG);
	pbw_uint(&body, 1, FBX_CMD_LOCK);
	pbw_uint(&body, 2, FBX_ORIGIN_OPERATOR);
	pbw_sub(&body, 4, &sub);
	pbw_sub(&body, 10, &plan);
	pbw_sub(&w, 10, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strstr(why, "submit.rollout.groups") != NULL);
	free(w.p);
	memset(&w, 0, sizeof(w));

	/* Replies: held_by shape. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_SUBMIT;
	rin.u.submit.state = FBX_C_HELD;
	strcpy(rin.u.submit.held_by, "acme");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "/INC-1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "ac me/INC-1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "acme/INC/1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rin.u.submit.held_by, "**/INC-1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	memset(rin.u.submit.held_by, 'a', FBX_ID_MAX);
	rin.u.submit.held_by[FBX_ID_MAX] = '/';
	memset(rin.u.submit.held_by + FBX_ID_MAX + 1, 'b', FBX_ID_MAX);
	rin.u.submit.held_by[2 * FBX_ID_MAX + 1] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(strlen(rout.u.submit.held_by) == 2 * FBX_ID_MAX + 1);
	fbx_console_rep_free(&rout);

	/* A dry-run report needs dry_run and the reverse; platforms once. */
	pbw_uint(&sub, 6, 1);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_sub(&sub, 7, &body);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_uint(&plan, 1, FBX_PLATFORM_IOS);
	pbw_uint(&plan, 2, 3);
	pbw_sub(&body, 2, &plan);
	pbw_uint(&plan, 1, FBX_PLATFORM_IOS);
	pbw_uint(&plan, 2, 4);
	pbw_sub(&body, 2, &plan);
	pbw_uint(&sub, 6, 1);
	pbw_sub(&sub, 7, &body);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_uint(&plan, 1, 99);
	pbw_sub(&body, 2, &plan);
	pbw_uint(&sub, 6, 1);
	pbw_sub(&sub, 7, &body);
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_EINVALID);
	pbw_uint(&sub, 6, 1);
	pbw_sub(&sub, 7, &body); /* empty report: fine */
	CHECK_RV(hand_rep_submit(&sub, &rout), FBX_OK);
	CHECK(rout.u.submit.dry_run == 1 && rout.u.submit.dryrun.devices == 0);
	fbx_console_rep_free(&rout);

	/* Dry-run arrays over their caps are refused by the encoder. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_SUBMIT;
	rin.u.submit.dry_run = 1;
	rin.u.submit.dryrun.nwaves = FBX_PAGE_MAX + 1;
	rin.u.submit.dryrun.waves = xcalloc(FBX_PAGE_MAX + 1,
	    sizeof(uint32_t));
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	free(rin.u.submit.dryrun.waves);
	rin.u.submit.dryrun.nwaves = 1;
	rin.u.submit.dryrun.waves = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);

	/* Breaker and limit entries. */
	memset(&rin, 0, sizeof(rin));
	memset(&brk, 0, sizeof(brk));
	rin.kind = FBX_CREQ_BREAKER;
	rin.u.breaker.b = &brk;
	rin.u.breaker.n = 1;
	strcpy(brk.org, "acme");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID); /* state missing */
	brk.state = FBX_BS_OPEN;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	brk.org[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(brk.org, "*");
	strcpy(brk.note, "a\x01");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	brk.note[0] = '\0';
	brk.cfg.share_ppm = FBX_PPM + 1;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);

	memset(&rin, 0, sizeof(rin));
	memset(&lim, 0, sizeof(lim));
	rin.kind = FBX_CREQ_LIMIT;
	rin.u.limit.l = &lim;
	rin.u.limit.n = 1;
	strcpy(lim.org, "acme");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID); /* type missing */
	lim.type = FBX_CMD_WIPE;
	strcpy(lim.org, "a*");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);

	/* Command fields: priority range, rollout status. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_GET_COMMAND;
	make_held_command(&rin.u.command.info, 3);
	rin.u.command.info.priority = FBX_PRIO_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.command.info.priority = FBX_PRIO_BULK;
	rin.u.command.info.ro.state = FBX_RO_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.command.info.ro.state = FBX_RO_DONE;
	rin.u.command.info.ro.stage = FBX_ROLLOUT_GROUPS_MAX + 1;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.command.info.ro.stage = 0;
	strcpy(rin.u.command.info.approved_by, "x y");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);

	/* Error: a malformed approval token is refused. */
	memset(&rin, 0, sizeof(rin));
	rin.err = FBX_ELIMIT_EXCEEDED;
	strcpy(rin.approval_token, "no good");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
}

static void
test_events(void)
{
	static const char *const names[] = { "none", "breaker_tripped",
		"breaker_reset", "breaker_would_trip", "rollout_paused",
		"rollout_resumed", "limit_rejected", "failure_spike",
		"command_settled", "cert_expiring", "devices_stale",
		"outcome_silence" };
	struct fbx_event in, out;
	uint8_t *buf = NULL, junk[64];
	size_t len = 0, i, j;
	int k, ok = 0;

	_Static_assert(sizeof(names) / sizeof(names[0]) == FBX_EV_COUNT,
	    "names must list every event kind");
	for (k = 0; k < FBX_EV_COUNT; k++)
		CHECK(!strcmp(fbx_event_kind_name(k), names[k]));
	CHECK(!strcmp(fbx_event_kind_name(-1), "unknown"));
	CHECK(!strcmp(fbx_event_kind_name(FBX_EV_COUNT),
	    "unknown"));

	for (k = FBX_EV_BREAKER_TRIPPED; k < FBX_EV_COUNT; k++) {
		memset(&in, 0, sizeof(in));
		in.kind = k;
		in.at_ms = 1700000000000 + k;
		strcpy(in.org, k % 2 ? "*" : "acme");
		strcpy(in.reason, "jamf:rule-17");
		strcpy(in.actor, "engine");
		in.command_id = (uint64_t)k * 1000;
		in.count = 312;
		in.limit = 300;
		snprintf(in.detail, sizeof(in.detail),
		    "%s: 312 devices in 600 s > 300", names[k]);
		CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
		CHECK_RV(fbx_event_decode(buf, len, &out), FBX_OK);
		CHECK(!memcmp(&in, &out, sizeof(in)));
		free(buf);
		buf = NULL;
	}
	/* Optional fields may be empty. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_EV_FAILURE_SPIKE;
	strcpy(in.org, "acme");
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_OK);
	CHECK(!memcmp(&in, &out, sizeof(in)));
	free(buf);

	/* Refused: bad kind, bad org, missing org, oversize, garbage. */
	in.kind = 0;
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_EINVALID);
	in.kind = FBX_EV_COUNT;
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_EINVALID);
	in.kind = FBX_EV_LIMIT_REJECTED;
	strcpy(in.org, "ac me");
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_EINVALID);
	CHECK(out.kind == 0);
	free(buf);
	in.org[0] = '\0';
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_EINVALID);
	free(buf);
	strcpy(in.org, "acme");
	strcpy(in.actor, "x/y");
	CHECK_RV(fbx_event_encode(&in, &buf, &len), FBX_OK);
	CHECK_RV(fbx_event_decode(buf, len, &out), FBX_EINVALID);
	free(buf);
	CHECK_RV(fbx_event_decode(junk, 1u << 20, &out), FBX_ETOOBIG);
	CHECK_RV(fbx_event_decode(NULL, 0, &out), FBX_EVERSION);
	{
		struct pbw w = { 0 };
		pbw_uint(&w, 1, 1);
		pbw_uint(&w, 2, 42);
		pbw_str(&w, 4, "acme");
		CHECK_RV(fbx_event_decode(w.p, w.n, &out), FBX_EINVALID);
		free(w.p);
		memset(&w, 0, sizeof(w));
		pbw_uint(&w, 1, 2);
		pbw_uint(&w, 2, FBX_EV_BREAKER_RESET);
		pbw_str(&w, 4, "acme");
		CHECK_RV(fbx_event_decode(w.p, w.n, &out), FBX_EVERSION);
		free(w.p);
	}
	rng_state = 0xabad1deaabad1deaull;
	for (i = 0; i < 5000; i++) {
		size_t n = 1 + rng() % sizeof(junk);
		for (j = 0; j < n; j++)
			junk[j] = (uint8_t)rng();
		if (fbx_event_decode(junk, n, &out) == FBX_OK)
			ok++;
	}
	CHECK(ok == 0);
}

/* test_safety_mutations flips bytes of safety replies (dry run, breaker
 * list, held commands): decoders must not crash, leak or misreport. */
static void
test_safety_mutations(void)
{
	struct fbx_console_rep in[3], out;
	struct fbx_group_count groups[2];
	uint32_t waves[3] = { 1, 2, 4 };
	struct fbx_breaker_info brk[2];
	struct fbx_command cmd;
	uint8_t *enc[3], *buf;
	size_t elen[3], i, j, odd = 0;
	int rv;

	memset(in, 0, sizeof(in));
	in[0].kind = FBX_CREQ_SUBMIT;
	in[0].u.submit.dry_run = 1;
	in[0].u.submit.dryrun.devices = 7;
	in[0].u.submit.dryrun.per_platform[FBX_PLATFORM_IOS] = 7;
	memset(groups, 0, sizeof(groups));
	strcpy(groups[0].name, "g0");
	strcpy(groups[1].name, "g1");
	in[0].u.submit.dryrun.groups = groups;
	in[0].u.submit.dryrun.ngroups = 2;
	in[0].u.submit.dryrun.waves = waves;
	in[0].u.submit.dryrun.nwaves = 3;
	strcpy(in[0].u.submit.dryrun.verdict, "ok");
	memset(brk, 0, sizeof(brk));
	for (i = 0; i < 2; i++) {
		strcpy(brk[i].org, "o");
		strcpy(brk[i].reason, "r");
		brk[i].state = FBX_BS_OPEN;
		strcpy(brk[i].note, "n");
	}
	in[1].kind = FBX_CREQ_BREAKER;
	in[1].u.breaker.b = brk;
	in[1].u.breaker.n = 2;
	make_held_command(&cmd, 9);
	in[2].kind = FBX_CREQ_LIST_HELD;
	in[2].u.commands.cmds = &cmd;
	in[2].u.commands.n = 1;
	for (i = 0; i < 3; i++)
		CHECK_RV(fbx_console_rep_encode(&in[i], &enc[i], &elen[i]),
		    FBX_OK);

	rng_state = 0x0ddba11cafef00dull;
	for (i = 0; i < 30000; i++) {
		size_t k = i % 3, flips = 1 + rng() % 4;
		buf = xcalloc(elen[k], 1);
		memcpy(buf, enc[k], elen[k]);
		for (j = 0; j < flips; j++)
			buf[rng() % elen[k]] = (uint8_t)rng();
		rv = fbx_console_rep_decode(buf, elen[k], &out);
		if (rv == FBX_OK)
			fbx_console_rep_free(&out);
		else if (!hostile_rv_ok(rv))
			odd++;
		free(buf);
	}
	CHECK(odd == 0);
	for (i = 0; i < 3; i++)
		free(enc[i]);

	/* The same for a submit with a plan and a breaker reset. */
	{
		struct fbx_console_req rq[2], rout;
		char why[256];
		base_req(&rq[0], FBX_CREQ_SUBMIT);
		rq[0].u.submit.cmd.type = FBX_CMD_OS_UPDATE;
		rq[0].u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		rq[0].u.submit.cmd.target_kind = FBX_TARGET_ORG;
		make_plan(&rq[0].u.submit.cmd.rollout);
		rq[0].dry_run = 1;
		strcpy(rq[0].approval, "appr:1");
		base_req(&rq[1], FBX_CREQ_BREAKER);
		rq[1].u.breaker.op = FBX_BRK_RESET;
		rq[1].u.breaker.on_reset = FBX_RESET_RELEASE;
		strcpy(rq[1].u.breaker.reason, "r");
		strcpy(rq[1].u.breaker.note, "caf\xc3\xa9 \xe2\x80\x94 ok");
		for (i = 0; i < 2; i++)
			CHECK_RV(fbx_console_req_encode(&rq[i], &enc[i],
			             &elen[i]),
			    FBX_OK);
		for (i = 0; i < 20000; i++) {
			size_t k = i % 2, flips = 1 + rng() % 4;
			buf = xcalloc(elen[k], 1);
			memcpy(buf, enc[k], elen[k]);
			for (j = 0; j < flips; j++)
				buf[rng() % elen[k]] = (uint8_t)rng();
			rv = fbx_console_req_decode(buf, elen[k], &rout, why,
			    sizeof(why));
			if (rv == FBX_OK)
				fbx_console_req_free(&rout);
			else if (!hostile_rv_ok(rv))
				odd++;
			free(buf);
		}
		CHECK(odd == 0);
		free(enc[0]);
		free(enc[1]);
	}
}

/* ======================= rollback, replay, export, audit =============== */

/* make_selector: explicit ids plus every filter. */
static void
make_selector(struct fbx_selector *s, uint64_t *ids, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->command_ids = ids;
	s->ncommand_ids = n;
	s->origin = FBX_ORIGIN_AUTOMATIC;
	strcpy(s->reason, "jamf:rule-17");
	s->type = FBX_CMD_LOCK;
	strcpy(s->group, "sales");
	s->since_ms = 1700000000000;
	s->until_ms = 1700003600000;
}

static int
selector_eq(const struct fbx_selector *a, const struct fbx_selector *b)
{
	return a->ncommand_ids == b->ncommand_ids &&
	    (a->ncommand_ids == 0 ||
	        !memcmp(a->command_ids, b->command_ids,
	            a->ncommand_ids * sizeof(uint64_t))) &&
	    !strcmp(a->breaker, b->breaker) &&
	    a->breaker_global == b->breaker_global &&
	    a->origin == b->origin && !strcmp(a->reason, b->reason) &&
	    a->type == b->type && !strcmp(a->group, b->group) &&
	    a->since_ms == b->since_ms && a->until_ms == b->until_ms;
}

/* make_audit: record i of a chain, with every field set. */
static void
make_audit(struct fbx_audit_rec *r, size_t i)
{
	size_t k;

	memset(r, 0, sizeof(*r));
	r->seq = 100 + i;
	r->at_ms = 1700000000000 + (int64_t)i * 1000;
	strcpy(r->org, i == 1 ? "*" : "acme");
	strcpy(r->actor, i == 1 ? "engine" : "alice@acme");
	strcpy(r->action, i == 1 ? "breaker.trip" : "rollback.execute");
	strcpy(r->note, "INC-7 \xe2\x80\x94 storm of locks");
	snprintf(r->params, sizeof(r->params),
	    "{\"reason\":\"jamf:rule-17\",\"devices\":%zu}", 312 + i);
	for (k = 0; k < 64; k++) {
		r->hash[k] = "0123456789abcdef"[(k + i) % 16];
		if (i > 0)
			r->prev[k] = "0123456789abcdef"[(k + i - 1) % 16];
	}
}

static void
test_req_incident(void)
{
	struct fbx_console_req in, out;
	uint64_t ids[3] = { 7, 1ull << 40, 9 };
	char why[256];

	/* Rollback plan of three explicit commands with every filter. */
	base_req(&in, FBX_CREQ_ROLLBACK);
	make_selector(&in.u.rollback.sel, ids, 3);
	in.u.rollback.include_changed = 1;
	in.u.rollback.limit = FBX_PAGE_MAX;
	strcpy(in.u.rollback.note, "undo INC-7 (caf\xc3\xa9)");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLBACK);
	CHECK(selector_eq(&in.u.rollback.sel, &out.u.rollback.sel));
	CHECK(out.u.rollback.sel.command_ids != ids);
	CHECK(out.u.rollback.execute == 0 &&
	    out.u.rollback.include_changed == 1 &&
	    out.u.rollback.limit == FBX_PAGE_MAX);
	CHECK(!strcmp(out.u.rollback.note, in.u.rollback.note));
	fbx_console_req_free(&out);
	CHECK(out.u.rollback.sel.command_ids == NULL);

	/* Executed rollback of an incident: the global breaker's commands. */
	base_req(&in, FBX_CREQ_ROLLBACK);
	strcpy(in.u.rollback.sel.breaker, "jamf:rule-17");
	in.u.rollback.sel.breaker_global = 1;
	in.u.rollback.execute = 1;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(selector_eq(&in.u.rollback.sel, &out.u.rollback.sel));
	CHECK(out.u.rollback.execute == 1 &&
	    out.u.rollback.sel.command_ids == NULL);
	fbx_console_req_free(&out);

	/* Replay of failed deliveries, forced, of two commands. */
	base_req(&in, FBX_CREQ_REPLAY);
	make_selector(&in.u.replay.sel, ids, 2);
	in.u.replay.sel.origin = 0;
	in.u.replay.sel.until_ms = 0;
	in.u.replay.state = FBX_D_FAILED;
	in.u.replay.force = 1;
	in.u.replay.execute = 1;
	strcpy(in.u.replay.note, "gateway gw-3 lost its queue");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_REPLAY);
	CHECK(selector_eq(&in.u.replay.sel, &out.u.replay.sel));
	CHECK(out.u.replay.state == FBX_D_FAILED && out.u.replay.force == 1 &&
	    out.u.replay.execute == 1);
	CHECK(!strcmp(out.u.replay.note, in.u.replay.note));
	fbx_console_req_free(&out);
	/* Replay by incident, default state. */
	base_req(&in, FBX_CREQ_REPLAY);
	strcpy(in.u.replay.sel.breaker, "unspecified");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(selector_eq(&in.u.replay.sel, &out.u.replay.sel));
	CHECK(out.u.replay.state == FBX_D_NONE && out.u.replay.execute == 0);
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_EXPORT);
	in.u.export_.since_ms = 1700000000000;
	in.u.export_.until_ms = 1700086400000;
	in.u.export_.cursor = 0x1234567890ull;
	in.u.export_.max_bytes = 8u * 1024 * 1024;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_EXPORT);
	CHECK(!memcmp(&in.u.export_, &out.u.export_, sizeof(in.u.export_)));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_AUDIT_LIST);
	strcpy(in.u.audit_list.actor, "bob@acme");
	memset(in.u.audit_list.action, 'a', 31); /* the longest name */
	in.u.audit_list.action[31] = '\0';
	in.u.audit_list.since_ms = 5;
	in.u.audit_list.until_ms = 5; /* empty window, but not reversed */
	in.u.audit_list.after = 99;
	in.u.audit_list.limit = 500;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_LIST);
	CHECK(!strcmp(out.u.audit_list.actor, "bob@acme") &&
	    !strcmp(out.u.audit_list.action, in.u.audit_list.action));
	CHECK(out.u.audit_list.since_ms == 5 &&
	    out.u.audit_list.until_ms == 5 && out.u.audit_list.after == 99 &&
	    out.u.audit_list.limit == 500);
	fbx_console_req_free(&out);
	strcpy(in.u.audit_list.action, "breaker.trip");
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(!strcmp(out.u.audit_list.action, "breaker.trip"));
	fbx_console_req_free(&out);

	base_req(&in, FBX_CREQ_AUDIT_VERIFY);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_VERIFY && out.request_id == 4242);
	fbx_console_req_free(&out);
	base_req(&in, FBX_CREQ_LIST_ORGS);
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_ORGS && !strcmp(out.org, "acme"));
	fbx_console_req_free(&out);
}

static void
test_rep_incident(void)
{
	struct fbx_console_rep in, out;
	struct fbx_rb_row rows[3];
	uint64_t comp[2] = { 501, 502 };
	struct fbx_audit_rec aud[2];
	fbx_id orgs[3];
	uint32_t devs[3] = { 15000, 0, 4000000000u };
	static const char lines[] = "{\"id\":1,\"type\":\"lock\"}\n"
				    "{\"id\":2,\"note\":\"caf\xc3\xa9\"}\n";
	size_t i;

	/* An executed rollback: three rows, per-action counts, two
	 * compensating commands. */
	memset(&in, 0, sizeof(in));
	memset(rows, 0, sizeof(rows));
	in.request_id = 24;
	in.kind = FBX_CREQ_ROLLBACK;
	rows[0].command_id = 7;
	rows[0].delivery_id = FBX_DLV_ID(7, 0);
	strcpy(rows[0].device, "dev-0");
	rows[0].type = FBX_CMD_SET_POLICY;
	rows[0].state = FBX_D_SUCCEEDED;
	rows[0].action = FBX_RB_COMPENSATE;
	rows[0].comp_type = FBX_CMD_SET_POLICY;
	strcpy(rows[0].detail, "policy camera: restore 'on'");
	rows[1].command_id = 7;
	rows[1].delivery_id = FBX_DLV_ID(7, 1);
	strcpy(rows[1].device, "dev-1");
	rows[1].type = FBX_CMD_SET_POLICY;
	rows[1].state = FBX_D_QUEUED;
	rows[1].action = FBX_RB_CANCEL;
	rows[2].command_id = 9; /* held: no deliveries */
	rows[2].type = FBX_CMD_WIPE;
	rows[2].action = FBX_RB_IRREVERSIBLE;
	memset(rows[2].detail, 'x', sizeof(rows[2].detail) - 1);
	in.u.rollback.commands = 2;
	in.u.rollback.per_action[FBX_RB_CANCEL] = 1;
	in.u.rollback.per_action[FBX_RB_COMPENSATE] = 1;
	in.u.rollback.per_action[FBX_RB_IRREVERSIBLE] = 1;
	in.u.rollback.per_action[FBX_RB_DONE_BEFORE] = 4000000000u;
	in.u.rollback.rows = rows;
	in.u.rollback.nrows = 3;
	in.u.rollback.comp_ids = comp;
	in.u.rollback.ncomp = 2;
	in.u.rollback.rollback_id = 1234;
	in.u.rollback.executed = 1;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLBACK && out.request_id == 24);
	CHECK(out.u.rollback.commands == 2 && out.u.rollback.executed == 1 &&
	    out.u.rollback.rollback_id == 1234);
	CHECK(!memcmp(out.u.rollback.per_action, in.u.rollback.per_action,
	    sizeof(in.u.rollback.per_action)));
	CHECK(out.u.rollback.nrows == 3 && out.u.rollback.ncomp == 2);
	if (out.u.rollback.nrows == 3)
		CHECK(!memcmp(out.u.rollback.rows, rows, sizeof(rows)));
	if (out.u.rollback.ncomp == 2)
		CHECK(!memcmp(out.u.rollback.comp_ids, comp, sizeof(comp)));
	fbx_console_rep_free(&out);
	CHECK(out.u.rollback.rows == NULL && out.u.rollback.comp_ids == NULL);
	/* The same as a plan: nothing executed, nothing invented. */
	in.u.rollback.comp_ids = NULL;
	in.u.rollback.ncomp = 0;
	in.u.rollback.rollback_id = 0;
	in.u.rollback.executed = 0;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.rollback.executed == 0 && out.u.rollback.ncomp == 0 &&
	    out.u.rollback.comp_ids == NULL && out.u.rollback.nrows == 3);
	fbx_console_rep_free(&out);
	/* An empty plan. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_ROLLBACK;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_ROLLBACK && out.u.rollback.nrows == 0 &&
	    out.u.rollback.rows == NULL);
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_REPLAY;
	in.u.replay.matched = 1000;
	in.u.replay.resent = 990;
	in.u.replay.skipped_terminal = 10;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_REPLAY);
	CHECK(!memcmp(&in.u.replay, &out.u.replay, sizeof(in.u.replay)));
	fbx_console_rep_free(&out);

	/* An export page of two lines; the copy is NUL-terminated. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_EXPORT;
	in.u.export_.jsonl = (char *)lines;
	in.u.export_.len = sizeof(lines) - 1;
	in.u.export_.next_cursor = 77;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_EXPORT && out.u.export_.next_cursor == 77);
	CHECK(out.u.export_.len == sizeof(lines) - 1);
	CHECK(out.u.export_.jsonl != NULL && out.u.export_.jsonl != lines &&
	    !strcmp(out.u.export_.jsonl, lines));
	fbx_console_rep_free(&out);
	/* The last page may be empty. */
	in.u.export_.jsonl = NULL;
	in.u.export_.len = 0;
	in.u.export_.next_cursor = 0;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.export_.len == 0 && out.u.export_.jsonl == NULL);
	fbx_console_rep_free(&out);

	/* An audit page of two records: the first starts the chain. */
	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_AUDIT_LIST;
	for (i = 0; i < 2; i++)
		make_audit(&aud[i], i);
	in.u.audit.r = aud;
	in.u.audit.n = 2;
	in.u.audit.next_after = 101;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_LIST && out.u.audit.n == 2 &&
	    out.u.audit.next_after == 101);
	if (out.u.audit.n == 2)
		CHECK(!memcmp(out.u.audit.r, aud, sizeof(aud)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	in.kind = FBX_CREQ_AUDIT_VERIFY;
	in.u.verify.records = 5000;
	in.u.verify.broken_at = 4711;
	strcpy(in.u.verify.why, "record 4711: hash does not match");
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_AUDIT_VERIFY);
	CHECK(!memcmp(&in.u.verify, &out.u.verify, sizeof(in.u.verify)));
	fbx_console_rep_free(&out);

	memset(&in, 0, sizeof(in));
	memset(orgs, 0, sizeof(orgs));
	in.kind = FBX_CREQ_LIST_ORGS;
	strcpy(orgs[0], "acme");
	strcpy(orgs[1], "org-002");
	memset(orgs[2], 'z', FBX_ID_MAX);
	in.u.orgs.orgs = orgs;
	in.u.orgs.devices = devs;
	in.u.orgs.n = 3;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.kind == FBX_CREQ_LIST_ORGS && out.u.orgs.n == 3);
	if (out.u.orgs.n == 3) {
		CHECK(!memcmp(out.u.orgs.orgs, orgs, sizeof(orgs)));
		CHECK(!memcmp(out.u.orgs.devices, devs, sizeof(devs)));
	}
	fbx_console_rep_free(&out);
	in.u.orgs.orgs = NULL;
	in.u.orgs.devices = NULL;
	in.u.orgs.n = 0;
	CHECK_RV(rep_rt(&in, &out), FBX_OK);
	CHECK(out.u.orgs.n == 0 && out.u.orgs.orgs == NULL);
	fbx_console_rep_free(&out);
}

/* hand_rep wraps a hand-built result in a ConsoleReply as field. */
static int
hand_rep(uint32_t field, struct pbw *sub, struct fbx_console_rep *out)
{
	struct pbw w = { 0 };
	int rv;

	pbw_uint(&w, 1, 3);
	pbw_uint(&w, 3, 1);
	pbw_sub(&w, field, sub);
	rv = fbx_console_rep_decode(w.p, w.n, out);
	free(w.p);
	return rv;
}

/* hand_req_bad wraps a hand-built request body as field, and expects the
 * decoder to refuse it with want and a reason containing name. */
static void
hand_req_bad_(uint32_t field, struct pbw *body, int want, const char *name,
    int line)
{
	struct fbx_console_req out;
	struct pbw w = { 0 };
	char why[256] = "";
	int rv;

	hand_req(&w, 1, "acme");
	pbw_sub(&w, field, body);
	rv = fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why));
	free(w.p);
	if (rv == want && strstr(why, name) != NULL) {
		npass++;
		return;
	}
	nfail++;
	fprintf(stderr, "%s:%d: FAIL: decode = %s (%s), want %s (%s)\n",
	    __FILE__, line, fbx_errname(rv), why, fbx_errname(want), name);
	if (rv == FBX_OK)
		fbx_console_req_free(&out);
}
#define hand_req_bad(f, b, want, name)                                       \
	hand_req_bad_(f, b, want, name, __LINE__)

static void
test_incident_bad_fields(void)
{
	struct fbx_console_req in, out;
	struct fbx_console_rep rin, rout;
	struct pbw body = { 0 }, sub = { 0 };
	struct fbx_rb_row row;
	struct fbx_audit_rec rec;
	uint64_t ids[3] = { 1, 2, 3 }, *many;
	fbx_id org;
	uint32_t dev = 1;
	char why[256], big[600];
	uint8_t *buf = NULL;
	size_t len = 0, i;

	/* Selector, through rollback. */
	base_req(&in, FBX_CREQ_ROLLBACK);
	make_selector(&in.u.rollback.sel, ids, 3);
	ids[1] = 0;
	req_bad(&in, FBX_EINVALID, "rollback.selector.command_ids[1]");
	ids[1] = 2;
	strcpy(in.u.rollback.sel.breaker, "rule-17");
	req_bad(&in, FBX_EINVALID, "rollback.selector.breaker_reason");
	in.u.rollback.sel.ncommand_ids = 0;
	strcpy(in.u.rollback.sel.breaker, "rule 17");
	req_bad(&in, FBX_EINVALID, "rollback.selector.breaker_reason");
	in.u.rollback.sel.breaker[0] = '\0';
	in.u.rollback.sel.breaker_global = 1;
	req_bad(&in, FBX_EINVALID, "rollback.selector.breaker_global");
	in.u.rollback.sel.breaker_global = 0;
	in.u.rollback.sel.ncommand_ids = 3;
	strcpy(in.u.rollback.sel.reason, "a/b");
	req_bad(&in, FBX_EINVALID, "rollback.selector.reason");
	strcpy(in.u.rollback.sel.reason, "*");
	req_bad(&in, FBX_EINVALID, "rollback.selector.reason");
	in.u.rollback.sel.reason[0] = '\0';
	strcpy(in.u.rollback.sel.group, "sales team");
	req_bad(&in, FBX_EINVALID, "rollback.selector.group");
	in.u.rollback.sel.group[0] = '\0';
	in.u.rollback.sel.origin = FBX_ORIGIN_COUNT;
	req_bad(&in, FBX_EINVALID, "rollback.selector.origin");
	in.u.rollback.sel.origin = -1;
	req_bad(&in, FBX_EINVALID, "rollback.selector.origin");
	in.u.rollback.sel.origin = FBX_ORIGIN_ROLLBACK;
	in.u.rollback.sel.type = FBX_CMD_TYPE_COUNT;
	req_bad(&in, FBX_EINVALID, "rollback.selector.type");
	in.u.rollback.sel.type = 0;
	in.u.rollback.sel.since_ms = in.u.rollback.sel.until_ms + 1;
	req_bad(&in, FBX_EINVALID, "rollback.selector.until_ms");
	in.u.rollback.sel.until_ms = 0; /* open end: fine */
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	in.u.rollback.limit = FBX_PAGE_MAX + 1;
	req_bad(&in, FBX_ETOOBIG, "rollback.limit");
	in.u.rollback.limit = 0;
	strcpy(in.u.rollback.note, "line\nbreak");
	req_bad(&in, FBX_EINVALID, "rollback.note");
	strcpy(in.u.rollback.note, "bad \xc3\x28");
	req_bad(&in, FBX_EINVALID, "rollback.note");
	in.u.rollback.note[0] = '\0';
	/* 100,000 ids pass; one more is refused by both ends. */
	many = xcalloc(100001, sizeof(uint64_t));
	for (i = 0; i < 100001; i++)
		many[i] = i + 1;
	in.u.rollback.sel.command_ids = many;
	in.u.rollback.sel.ncommand_ids = 100000;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	CHECK(out.u.rollback.sel.ncommand_ids == 100000 &&
	    out.u.rollback.sel.command_ids[99999] == 100000);
	fbx_console_req_free(&out);
	in.u.rollback.sel.ncommand_ids = 100001;
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_ETOOBIG);
	in.u.rollback.sel.command_ids = NULL;
	in.u.rollback.sel.ncommand_ids = 1;
	CHECK_RV(fbx_console_req_encode(&in, &buf, &len), FBX_EINVALID);
	for (i = 0; i < 100001; i++)
		pbw_uint(&sub, 1, i + 1);
	pbw_sub(&body, 1, &sub);
	hand_req_bad(24, &body, FBX_ETOOBIG, "rollback.selector.command_ids");
	free(many);
	/* A missing selector is refused, not read as "everything". */
	pbw_uint(&body, 2, 1);
	hand_req_bad(24, &body, FBX_EINVALID, "rollback.selector: missing");
	pbw_uint(&body, 3, 1);
	hand_req_bad(25, &body, FBX_EINVALID, "replay.selector: missing");

	/* Replay: state, note, and its selector. */
	base_req(&in, FBX_CREQ_REPLAY);
	in.u.replay.state = FBX_D_COUNT;
	req_bad(&in, FBX_EINVALID, "replay.state");
	in.u.replay.state = -3;
	req_bad(&in, FBX_EINVALID, "replay.state");
	in.u.replay.state = FBX_D_PENDING;
	CHECK_RV(req_rt(&in, &out, why, sizeof(why)), FBX_OK);
	fbx_console_req_free(&out);
	strcpy(in.u.replay.note, "esc \x1b[2J");
	req_bad(&in, FBX_EINVALID, "replay.note");
	in.u.replay.note[0] = '\0';
	make_selector(&in.u.replay.sel, ids, 3);
	strcpy(in.u.replay.sel.breaker, "r");
	req_bad(&in, FBX_EINVALID, "replay.selector.breaker_reason");
	in.u.replay.sel.breaker[0] = '\0';
	in.u.replay.sel.since_ms = 10;
	in.u.replay.sel.until_ms = 9;
	req_bad(&in, FBX_EINVALID, "replay.selector.until_ms");

	/* Export: window and page size. */
	base_req(&in, FBX_CREQ_EXPORT);
	in.u.export_.since_ms = 2000;
	in.u.export_.until_ms = 1000;
	req_bad(&in, FBX_EINVALID, "export.until_ms");
	in.u.export_.until_ms = 0;
	in.u.export_.max_bytes = 8u * 1024 * 1024 + 1;
	req_bad(&in, FBX_ETOOBIG, "export.max_bytes");
	in.u.export_.max_bytes = 0xffffffffu;
	req_bad(&in, FBX_ETOOBIG, "export.max_bytes");

	/* Audit list: filters, window, page size. */
	base_req(&in, FBX_CREQ_AUDIT_LIST);
	strcpy(in.u.audit_list.actor, "bob smith");
	req_bad(&in, FBX_EINVALID, "audit_list.actor");
	in.u.audit_list.actor[0] = '\0';
	strcpy(in.u.audit_list.action, "breaker\ttrip");
	req_bad(&in, FBX_EINVALID, "audit_list.action");
	strcpy(in.u.audit_list.action, "caf\xc3\xa9");
	req_bad(&in, FBX_EINVALID, "audit_list.action");
	strcpy(in.u.audit_list.action, "del\x7f");
	req_bad(&in, FBX_EINVALID, "audit_list.action");
	strcpy(in.u.audit_list.action, "submit");
	in.u.audit_list.since_ms = 2;
	in.u.audit_list.until_ms = 1;
	req_bad(&in, FBX_EINVALID, "audit_list.until_ms");
	in.u.audit_list.until_ms = 0;
	in.u.audit_list.limit = FBX_PAGE_MAX + 1;
	req_bad(&in, FBX_ETOOBIG, "audit_list.limit");
	/* 32 bytes cannot be encoded from the struct: build it by hand. */
	memset(big, 'a', 32);
	big[32] = '\0';
	pbw_str(&body, 2, big);
	hand_req_bad(27, &body, FBX_ETOOBIG, "audit_list.action");

	/* Rollback plans. */
	memset(&rin, 0, sizeof(rin));
	memset(&row, 0, sizeof(row));
	rin.kind = FBX_CREQ_ROLLBACK;
	rin.u.rollback.rows = &row;
	rin.u.rollback.nrows = 1;
	strcpy(row.device, "d1");
	row.action = FBX_RB_CANCEL;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID); /* type missing */
	row.type = FBX_CMD_TYPE_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.type = FBX_CMD_LOCK;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	row.action = FBX_RB_NONE;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.action = FBX_RB_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.action = FBX_RB_CANCEL;
	row.state = FBX_D_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.state = FBX_D_QUEUED;
	row.action = FBX_RB_DONE_BEFORE;
	row.comp_type = FBX_CMD_UNLOCK;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	row.comp_type = FBX_CMD_TYPE_COUNT;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	row.comp_type = FBX_CMD_UNLOCK;
	strcpy(row.device, "d 1");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(row.device, "d1");
	/* Compensations and a rollback id only once executed. */
	rin.u.rollback.comp_ids = ids;
	rin.u.rollback.ncomp = 3;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.rollback.executed = 1;
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	ids[2] = 0;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	ids[2] = 3;
	rin.u.rollback.ncomp = 0;
	rin.u.rollback.executed = 0;
	rin.u.rollback.rollback_id = 5;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	rin.u.rollback.rollback_id = 0;
	/* RB_NONE has no count; caps and NULL arrays at the encoder. */
	rin.u.rollback.per_action[FBX_RB_NONE] = 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	rin.u.rollback.per_action[FBX_RB_NONE] = 0;
	rin.u.rollback.nrows = FBX_PAGE_MAX + 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	rin.u.rollback.nrows = 1;
	rin.u.rollback.ncomp = 100001;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	rin.u.rollback.ncomp = 1;
	rin.u.rollback.comp_ids = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	rin.u.rollback.ncomp = 0;
	rin.u.rollback.rows = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	/* Per-action counts: known actions, each once (hand-built). */
	pbw_uint(&sub, 1, FBX_RB_CANCEL);
	pbw_uint(&sub, 2, 3);
	pbw_sub(&body, 2, &sub);
	pbw_uint(&sub, 1, FBX_RB_CANCEL);
	pbw_uint(&sub, 2, 4);
	pbw_sub(&body, 2, &sub);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_EINVALID);
	pbw_uint(&sub, 1, FBX_RB_COUNT);
	pbw_sub(&body, 2, &sub);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_EINVALID);
	pbw_uint(&sub, 2, 4);
	pbw_sub(&body, 2, &sub); /* action RB_NONE */
	CHECK_RV(hand_rep(24, &body, &rout), FBX_EINVALID);
	for (i = 0; i < FBX_RB_COUNT + 1; i++) {
		pbw_uint(&sub, 1, 1 + i % (FBX_RB_COUNT - 1));
		pbw_sub(&body, 2, &sub);
	}
	CHECK_RV(hand_rep(24, &body, &rout), FBX_ETOOBIG);
	/* Too many rows or compensations on the wire: refused unread. */
	for (i = 0; i < FBX_PAGE_MAX + 1; i++)
		pbw_sub(&body, 3, &sub);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_ETOOBIG);
	pbw_uint(&body, 6, 1);
	for (i = 0; i < 100001; i++)
		pbw_uint(&body, 4, i + 1);
	CHECK_RV(hand_rep(24, &body, &rout), FBX_ETOOBIG);

	/* Export pages: size and content. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_EXPORT;
	rin.u.export_.len = 8u * 1024 * 1024 - 64 * 1024 + 1;
	rin.u.export_.jsonl = xcalloc(rin.u.export_.len, 1);
	memset(rin.u.export_.jsonl, '\n', rin.u.export_.len);
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	pbw_bytes(&body, 1, rin.u.export_.jsonl, rin.u.export_.len);
	CHECK_RV(hand_rep(26, &body, &rout), FBX_ETOOBIG);
	rin.u.export_.len--; /* exactly at the cap */
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(rout.u.export_.len == rin.u.export_.len);
	fbx_console_rep_free(&rout);
	rin.u.export_.jsonl[5] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	free(rin.u.export_.jsonl);
	rin.u.export_.jsonl = NULL;
	rin.u.export_.len = 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);

	/* Audit records. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_AUDIT_LIST;
	rin.u.audit.r = &rec;
	rin.u.audit.n = 1;
	make_audit(&rec, 0);
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	rec.seq = 0;
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.org[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rec.org, "a*");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.actor[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.action[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rec.action, "bell\a");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(rec.action, "\xc3\xa9t\xc3\xa9");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	strcpy(rec.note, "two\nlines");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	memset(rec.params, '{', sizeof(rec.params) - 1); /* 511: fine */
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(strlen(rout.u.audit.r[0].params) == 511);
	fbx_console_rep_free(&rout);
	make_audit(&rec, 0);
	rec.hash[63] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.hash[10] = 'A';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.hash[0] = 'g';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	strcpy(rec.prev, "00ff");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	make_audit(&rec, 0);
	rec.hash[0] = '\0'; /* empty: allowed */
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	fbx_console_rep_free(&rout);
	rin.u.audit.n = FBX_PAGE_MAX + 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	rin.u.audit.r = NULL;
	rin.u.audit.n = 1;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	/* Over the buffers: only a hand-built record can be. */
	memset(big, '{', 512);
	big[512] = '\0';
	pbw_uint(&sub, 1, 1);
	pbw_str(&sub, 3, "acme");
	pbw_str(&sub, 4, "bob");
	pbw_str(&sub, 5, "submit");
	pbw_str(&sub, 7, big);
	pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);
	memset(big, 'a', 65);
	big[65] = '\0';
	pbw_uint(&sub, 1, 1);
	pbw_str(&sub, 3, "acme");
	pbw_str(&sub, 4, "bob");
	pbw_str(&sub, 5, "submit");
	pbw_str(&sub, 8, big);
	pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);
	memset(big, 'a', 32);
	big[32] = '\0';
	pbw_uint(&sub, 1, 1);
	pbw_str(&sub, 3, "acme");
	pbw_str(&sub, 4, "bob");
	pbw_str(&sub, 5, big);
	pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);
	for (i = 0; i < FBX_PAGE_MAX + 1; i++)
		pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(27, &body, &rout), FBX_ETOOBIG);

	/* Verify: the reason fits its buffer. */
	memset(big, 'w', 128);
	big[128] = '\0';
	pbw_uint(&body, 2, 9);
	pbw_str(&body, 3, big);
	CHECK_RV(hand_rep(28, &body, &rout), FBX_ETOOBIG);

	/* Organisations: identifiers, caps, both arrays. */
	memset(&rin, 0, sizeof(rin));
	rin.kind = FBX_CREQ_LIST_ORGS;
	rin.u.orgs.orgs = &org;
	rin.u.orgs.devices = &dev;
	rin.u.orgs.n = 1;
	strcpy(org, "*");
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	org[0] = '\0';
	CHECK_RV(rep_rt(&rin, &rout), FBX_EINVALID);
	strcpy(org, "acme");
	rin.u.orgs.devices = NULL;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_EINVALID);
	rin.u.orgs.n = 100001;
	CHECK_RV(fbx_console_rep_encode(&rin, &buf, &len), FBX_ETOOBIG);
	for (i = 0; i < 100001; i++)
		pbw_sub(&body, 1, &sub);
	CHECK_RV(hand_rep(29, &body, &rout), FBX_ETOOBIG);
	/* 100,000 organisations go through, each with its count. */
	rin.u.orgs.n = 100000;
	rin.u.orgs.orgs = xcalloc(100000, sizeof(fbx_id));
	rin.u.orgs.devices = xcalloc(100000, sizeof(uint32_t));
	for (i = 0; i < 100000; i++) {
		snprintf(rin.u.orgs.orgs[i], sizeof(fbx_id), "org-%06zu", i);
		rin.u.orgs.devices[i] = (uint32_t)(i * 3);
	}
	CHECK_RV(rep_rt(&rin, &rout), FBX_OK);
	CHECK(rout.u.orgs.n == 100000);
	if (rout.u.orgs.n == 100000) {
		CHECK(!strcmp(rout.u.orgs.orgs[99999], "org-099999"));
		CHECK(rout.u.orgs.devices[99999] == 299997);
		CHECK(!memcmp(rout.u.orgs.devices, rin.u.orgs.devices,
		    100000 * sizeof(uint32_t)));
	}
	fbx_console_rep_free(&rout);
	free(rin.u.orgs.orgs);
	free(rin.u.orgs.devices);
}

/* test_incident_mutations flips bytes of the new messages: decoders must
 * not crash, leak or misreport, and must free what they accept. */
static void
test_incident_mutations(void)
{
	struct fbx_console_rep in[4], out;
	struct fbx_console_req rq[2], rout;
	struct fbx_rb_row rows[2];
	struct fbx_audit_rec aud[2];
	uint64_t comp[2] = { 8, 9 }, ids[2] = { 4, 5 };
	fbx_id orgs[2] = { "a", "b" };
	uint32_t devs[2] = { 1, 2 };
	static char lines[] = "{\"a\":1}\n{\"b\":2}\n";
	uint8_t *enc[4], *buf;
	size_t elen[4], i, j, odd = 0;
	char why[256];
	int rv;

	memset(in, 0, sizeof(in));
	memset(rows, 0, sizeof(rows));
	for (i = 0; i < 2; i++) {
		rows[i].command_id = 4 + i;
		strcpy(rows[i].device, "d");
		rows[i].type = FBX_CMD_LOCK;
		rows[i].action = FBX_RB_COMPENSATE;
		rows[i].comp_type = FBX_CMD_UNLOCK;
		strcpy(rows[i].detail, "unlock");
		make_audit(&aud[i], i);
	}
	in[0].kind = FBX_CREQ_ROLLBACK;
	in[0].u.rollback.rows = rows;
	in[0].u.rollback.nrows = 2;
	in[0].u.rollback.per_action[FBX_RB_COMPENSATE] = 2;
	in[0].u.rollback.comp_ids = comp;
	in[0].u.rollback.ncomp = 2;
	in[0].u.rollback.executed = 1;
	in[1].kind = FBX_CREQ_AUDIT_LIST;
	in[1].u.audit.r = aud;
	in[1].u.audit.n = 2;
	in[2].kind = FBX_CREQ_LIST_ORGS;
	in[2].u.orgs.orgs = orgs;
	in[2].u.orgs.devices = devs;
	in[2].u.orgs.n = 2;
	in[3].kind = FBX_CREQ_EXPORT;
	in[3].u.export_.jsonl = lines;
	in[3].u.export_.len = sizeof(lines) - 1;
	for (i = 0; i < 4; i++)
		CHECK_RV(fbx_console_rep_encode(&in[i], &enc[i], &elen[i]),
		    FBX_OK);
	rng_state = 0x1badb002deadbeefull;
	for (i = 0; i < 40000; i++) {
		size_t k = i % 4, flips = 1 + rng() % 4;
		buf = xcalloc(elen[k], 1);
		memcpy(buf, enc[k], elen[k]);
		for (j = 0; j < flips; j++)
			buf[rng() % elen[k]] = (uint8_t)rng();
		rv = fbx_console_rep_decode(buf, elen[k], &out);
		if (rv == FBX_OK)
			fbx_console_rep_free(&out);
		else if (!hostile_rv_ok(rv))
			odd++;
		free(buf);
	}
	CHECK(odd == 0);
	for (i = 0; i < 4; i++)
		free(enc[i]);

	base_req(&rq[0], FBX_CREQ_ROLLBACK);
	make_selector(&rq[0].u.rollback.sel, ids, 2);
	strcpy(rq[0].u.rollback.note, "n");
	base_req(&rq[1], FBX_CREQ_AUDIT_LIST);
	strcpy(rq[1].u.audit_list.actor, "a");
	strcpy(rq[1].u.audit_list.action, "submit");
	for (i = 0; i < 2; i++)
		CHECK_RV(fbx_console_req_encode(&rq[i], &enc[i], &elen[i]),
		    FBX_OK);
	for (i = 0; i < 20000; i++) {
		size_t k = i % 2, flips = 1 + rng() % 4;
		buf = xcalloc(elen[k], 1);
		memcpy(buf, enc[k], elen[k]);
		for (j = 0; j < flips; j++)
			buf[rng() % elen[k]] = (uint8_t)rng();
		rv = fbx_console_req_decode(buf, elen[k], &rout, why,
		    sizeof(why));
		if (rv == FBX_OK)
			fbx_console_req_free(&rout);
		else if (!hostile_rv_ok(rv))
			odd++;
		free(buf);
	}
	CHECK(odd == 0);
	free(enc[0]);
	free(enc[1]);
}

/* test_gw_prescan - the entry count taken before unpacking: an oversized
 * batch of empty entries is TOOBIG, and deep nesting (field 0 or any
 * field inside results) neither crashes nor passes for a valid batch. */
static void
test_gw_prescan(void)
{
	size_t n = 70000, depth = 2000000, len;
	uint8_t *buf = malloc(16 + 2 * n), *deep;
	struct fbx_gw_msg m;
	size_t i = 0;

	/* version 1, then results (field 12) holding 70,000 empty entries */
	buf[i++] = 0x08;
	buf[i++] = 0x01;
	buf[i++] = 0x62; /* field 12, length-delimited */
	len = 2 * n;
	while (len >= 0x80) {
		buf[i++] = (uint8_t)(len | 0x80);
		len >>= 7;
	}
	buf[i++] = (uint8_t)len;
	for (size_t k = 0; k < n; k++) {
		buf[i++] = 0x12; /* field 2, length 0 */
		buf[i++] = 0x00;
	}
	CHECK(fbx_gw_msg_decode(buf, i, &m, NULL, 0) == FBX_ETOOBIG);
	free(buf);

	/* field 12 wrapping nested field-0 blobs, each level's length exact
	 * (built from the inside out), deep enough to overflow a recursive
	 * walker's stack: 2,000,000 levels in about 10 MB */
	{
		size_t cap = 5 * depth + 32, pos = cap, inner = 0;
		deep = malloc(cap);
		for (size_t k = 0; k <= depth; k++) {
			uint8_t v[10];
			size_t nv = 0, l = inner;
			do {
				v[nv++] = (uint8_t)((l & 0x7f) | (l >= 0x80 ? 0x80 : 0));
				l >>= 7;
			} while (l > 0);
			pos -= nv;
			memcpy(deep + pos, v, nv);
			deep[--pos] = k == depth ? 0x62 : 0x02;
			inner = cap - pos;
		}
		deep[--pos] = 0x01;
		deep[--pos] = 0x08;
		CHECK(fbx_gw_msg_decode(deep + pos, cap - pos, &m, NULL, 0) !=
		    FBX_OK);
		free(deep);
	}
}

/* test_principal - PrincipalRequest / PrincipalReply (issue 10): a
 * round trip, and each operation refused with fields it does not use or
 * without those it needs. */
static void
principal_req(struct fbx_console_req *r, int op, const char *name, int kind,
    uint32_t roles, const char *orgs, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->version = FBX_PROTOCOL_VERSION;
	r->request_id = 31;
	strcpy(r->org, "_auth");
	strcpy(r->actor, "admin");
	r->kind = FBX_CREQ_PRINCIPAL;
	r->u.principal.op = op;
	snprintf(r->u.principal.name, sizeof(r->u.principal.name), "%s", name);
	r->u.principal.kind = kind;
	r->u.principal.roles = roles;
	snprintf(r->u.principal.orgs, sizeof(r->u.principal.orgs), "%s", orgs);
	snprintf(r->u.principal.public_key, sizeof(r->u.principal.public_key),
	    "%s", key);
}

static int
principal_rt(const struct fbx_console_req *r, struct fbx_console_req *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char why[256];
	int rc = fbx_console_req_encode(r, &buf, &len);

	if (rc == FBX_OK)
		rc = fbx_console_req_decode(buf, len, out, why, sizeof(why));
	free(buf);
	return rc;
}

static void
test_principal(void)
{
	static const char key[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
	struct fbx_console_req r, o;
	struct fbx_console_rep rep, ro;
	uint8_t *buf = NULL;
	size_t len = 0;

	principal_req(&r, FBX_PRI_ADD, "alice", FBX_PK_OPERATOR,
	    FBX_ROLE_VIEWER | FBX_ROLE_OPERATOR, "org-001,org-002", key);
	CHECK_RV(principal_rt(&r, &o), FBX_OK);
	CHECK(o.kind == FBX_CREQ_PRINCIPAL && o.u.principal.op == FBX_PRI_ADD &&
	    !strcmp(o.u.principal.name, "alice") &&
	    o.u.principal.kind == FBX_PK_OPERATOR && o.u.principal.roles == 3 &&
	    !strcmp(o.u.principal.orgs, "org-001,org-002") &&
	    !strcmp(o.u.principal.public_key, key));
	fbx_console_req_free(&o);
	principal_req(&r, FBX_PRI_LIST, "", 0, 0, "", "");
	CHECK_RV(principal_rt(&r, &o), FBX_OK);
	fbx_console_req_free(&o);
	principal_req(&r, FBX_PRI_ROTATE, "alice", 0, 0, "", key);
	CHECK_RV(principal_rt(&r, &o), FBX_OK);
	fbx_console_req_free(&o);
	/* refused: each one a field too many or too few */
	principal_req(&r, FBX_PRI_ADD, "alice", FBX_PK_OPERATOR, 1, "*",
	    "too-short");
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_ADD, "alice", FBX_PK_OPERATOR, 1, "", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_ADD, "alice", 4, 1, "*", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_ADD, "alice", FBX_PK_OPERATOR, 64, "*", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_ADD, "gw", FBX_PK_GATEWAY, 1, "*", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_ADD, "a", FBX_PK_OPERATOR, 1, "x,,y", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_ADD, "a", FBX_PK_OPERATOR, 1, "x,y,x", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_ADD, "a", FBX_PK_OPERATOR, 1, "x y", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_REVOKE, "alice", 0, 0, "", key);
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_REVOKE, "alice", 0, 1, "", "");
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_REVOKE, "", 0, 0, "", "");
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, FBX_PRI_LIST, "alice", 0, 0, "", "");
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	principal_req(&r, 9, "alice", 0, 0, "", "");
	CHECK_RV(principal_rt(&r, &o), FBX_EINVALID);
	{
		/* 49 organisations: one too many */
		char many[FBX_PRINCIPAL_ORGS_LEN];
		size_t off = 0;
		for (int i = 0; i < 49; i++)
			off += (size_t)snprintf(many + off, sizeof(many) - off,
			    "%so%d", i ? "," : "", i);
		principal_req(&r, FBX_PRI_ADD, "a", FBX_PK_OPERATOR, 1, many,
		    key);
		CHECK_RV(principal_rt(&r, &o), FBX_ETOOBIG);
	}
	/* the reply */
	memset(&rep, 0, sizeof(rep));
	rep.request_id = 31;
	rep.kind = FBX_CREQ_PRINCIPAL;
	rep.u.principal.jsonl = (char *)"{\"name\":\"alice\"}\n";
	rep.u.principal.len = strlen(rep.u.principal.jsonl);
	rep.u.principal.count = 1;
	CHECK_RV(fbx_console_rep_encode(&rep, &buf, &len), FBX_OK);
	memset(&ro, 0, sizeof(ro));
	CHECK_RV(fbx_console_rep_decode(buf, len, &ro), FBX_OK);
	CHECK(ro.kind == FBX_CREQ_PRINCIPAL && ro.u.principal.count == 1 &&
	    ro.u.principal.jsonl != NULL &&
	    !strcmp(ro.u.principal.jsonl, rep.u.principal.jsonl));
	fbx_console_rep_free(&ro);
	free(buf);
}

int
main(void)
{
	test_gw_prescan();
	test_req_submit();
	test_req_other_kinds();
	test_rep_kinds();
	test_gw_kinds();
	test_eng_kinds();
	test_oversize();
	test_garbage();
	test_mutations();
	test_version();
	test_bad_fields();
	test_req_safety();
	test_rep_safety();
	test_safety_bad_fields();
	test_events();
	test_safety_mutations();
	test_req_incident();
	test_rep_incident();
	test_incident_bad_fields();
	test_incident_mutations();
	test_principal();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
