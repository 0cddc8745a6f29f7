/*
 * proto_test.c: tests of the wire codec (proto/wire*.c) through its public
 * header only. Round trips every console, gateway and engine message kind
 * and the principal requests, then feeds the decoders what a hostile or
 * buggy peer would send: oversize lengths, random bytes, mutated messages,
 * wrong versions, bad identifiers, unknown enum values, too many entries,
 * and gateway batches too large or nested too deep to walk. The safety
 * controls and events are in proto_safety_test.c, the incident tools
 * (rollback, replay, export, audit, organisation list) in
 * proto_incident_test.c, the direct codec's comparisons with protobuf-c
 * (proto/wire_direct.c) in proto_direct_test.c; what they share (CHECK,
 * the PRNG, the tiny protobuf writer for hand-built wire bytes, request
 * and reply builders) is in proto_util.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_util.h"

/* ---- helpers ---- */

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

	if (strcmp(a->org, b->org) || strcmp(a->id, b->id)
	    || a->platform != b->platform || a->online != b->online
	    || a->attestation != b->attestation
	    || strcmp(a->os_version, b->os_version) || a->ngroups != b->ngroups
	    || a->enrolled_ms != b->enrolled_ms
	    || a->last_checkin_ms != b->last_checkin_ms)
		return 0;
	for (g = 0; g < a->ngroups; g++)
		if (strcmp(a->groups[g], b->groups[g]))
			return 0;
	return 1;
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
	CHECK(out.u.submit.cmd.payload != NULL
	    && !memcmp(out.u.submit.cmd.payload, payload, sizeof(payload)));
	CHECK(out.u.submit.cmd.ndev_ids == 3);
	CHECK(out.u.submit.cmd.dev_ids != NULL
	    && !strcmp(out.u.submit.cmd.dev_ids[2], "dev.3@x"));
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
			CHECK(device_eq(
			    &in.u.enroll.devs[i], &out.u.enroll.devs[i]));
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
			CHECK(a->id == b->id && a->state == b->state
			    && a->code == b->code && a->attempts == b->attempts
			    && a->updated_ms == b->updated_ms
			    && !strcmp(a->device, b->device)
			    && a->nhist == b->nhist
			    && !memcmp(a->hist, b->hist,
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
	CHECK(out.kind == FBX_CREQ_ENROLL && out.u.enroll.created == 10
	    && out.u.enroll.updated == 3);
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
		CHECK(!strcmp(out.u.groups.groups[0].name, "sales")
		    && out.u.groups.groups[0].count == 12);
		CHECK(!strcmp(out.u.groups.groups[1].name, "eng")
		    && out.u.groups.groups[1].count == 0);
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
	in.u.pong.commands_held = 9;
	in.u.pong.commands_settling = 10;
	in.u.pong.breakers_open = 11;
	strcpy(in.u.pong.node, "n2");
	in.u.pong.leases = 12;
	in.u.pong.duties = 1;
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
	CHECK(out.kind == FBX_GW_HELLO && out.version == FBX_PROTOCOL_VERSION);
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
			if (in.u.results.r[i].delivery_id
			        != out.u.results.r[i].delivery_id
			    || in.u.results.r[i].status
			        != out.u.results.r[i].status
			    || in.u.results.r[i].code
			        != out.u.results.r[i].code)
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
	CHECK(out.kind == FBX_GW_BYE
	    && !strcmp(out.u.bye.reason, in.u.bye.reason));
	fbx_gw_msg_free(&out);
	/* a short reason with a control character: INVALID, and the reason
	 * says so (it said "longer than 127 bytes") */
	strcpy(in.u.bye.reason, "ok\nthen");
	{
		uint8_t *b = NULL;
		size_t bn = 0;
		char why[256] = "";
		CHECK_RV(fbx_gw_msg_encode(&in, &b, &bn), FBX_OK);
		CHECK_RV(fbx_gw_msg_decode(b, bn, &out, why, sizeof(why)),
		    FBX_EINVALID);
		CHECK(strstr(why, "bye.reason: not printable") != NULL);
		free(b);
	}

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
	char(*devnames)[16];
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
			if (a->delivery_id != b->delivery_id
			    || a->command_id != b->command_id
			    || strcmp(a->org, b->org)
			    || strcmp(a->device, b->device)
			    || a->type != b->type
			    || a->payload_len != b->payload_len
			    || (a->payload_len > 0
			        && memcmp(
			            a->payload, b->payload, a->payload_len))
			    || a->expires_ms != b->expires_ms
			    || a->attempt != b->attempt)
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
	CHECK(out.kind == FBX_ENG_DELIVERIES && out.u.deliveries.n == 1
	    && out.u.deliveries.urgent == 1);
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
	CHECK(out.kind == FBX_ENG_ACK && out.u.ack.batch_id == 555
	    && out.u.ack.count == 65536);
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

	CHECK_RV(fbx_console_req_decode(
	             small, FBX_CONSOLE_MSG_MAX + 1, &req, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK(strstr(why, "message") != NULL);
	CHECK(req.request_id == 0);
	CHECK_RV(fbx_console_rep_decode(small, FBX_CONSOLE_MSG_MAX + 1, &rep),
	    FBX_ETOOBIG);
	CHECK_RV(fbx_gw_msg_decode(
	             small, FBX_GATEWAY_MSG_MAX + 1, &gw, why, sizeof(why)),
	    FBX_ETOOBIG);
	CHECK_RV(fbx_eng_msg_decode(small, FBX_GATEWAY_MSG_MAX + 1, &eng),
	    FBX_ETOOBIG);
	CHECK_RV(
	    fbx_console_req_decode(small, (size_t)-1, &req, why, sizeof(why)),
	    FBX_ETOOBIG);
	free(small);
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
		rv[0]
		    = fbx_console_req_decode(buf, len, &req, why, sizeof(why));
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
		snprintf(
		    req.u.submit.cmd.dev_ids[i], sizeof(fbx_id), "d%zu", i);
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
			rv = fbx_console_req_decode(
			    buf, elen[k], &out, why, sizeof(why));
			if (rv == FBX_OK)
				fbx_console_req_free(&out);
		} else {
			rv = fbx_gw_msg_decode(
			    buf, elen[k], &gout, why, sizeof(why));
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

	/* A NUL inside a string: protobuf-c hands strings over as C
	 * strings, so "org-001\0!!" was read as org-001 (and two
	 * idempotency keys differing after a NUL as one). Refused. */
	pbw_uint(&w, 1, 1);
	pbw_uint(&w, 2, 77);
	pbw_bytes(&w, 3, "org-001\0!!", 10);
	pbw_str(&w, 4, "bob");
	pbw_sub(&w, 17, &body);
	CHECK_RV(fbx_console_req_decode(w.p, w.n, &out, why, sizeof(why)),
	    FBX_EINVALID);
	CHECK(strstr(why, "org: a NUL byte") != NULL);
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
	in.u.submit.cmd.dev_ids
	    = xcalloc(FBX_TARGET_IDS_MAX + 1, sizeof(fbx_id));
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
				v[nv++] = (uint8_t)((l & 0x7f)
				    | (l >= 0x80 ? 0x80 : 0));
				l >>= 7;
			} while (l > 0);
			pos -= nv;
			memcpy(deep + pos, v, nv);
			deep[--pos] = k == depth ? 0x62 : 0x02;
			inner = cap - pos;
		}
		deep[--pos] = 0x01;
		deep[--pos] = 0x08;
		CHECK(fbx_gw_msg_decode(deep + pos, cap - pos, &m, NULL, 0)
		    != FBX_OK);
		free(deep);
	}
}

/* ======================= principals ==================================== */

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
	CHECK(o.kind == FBX_CREQ_PRINCIPAL && o.u.principal.op == FBX_PRI_ADD
	    && !strcmp(o.u.principal.name, "alice")
	    && o.u.principal.kind == FBX_PK_OPERATOR
	    && o.u.principal.roles == 3
	    && !strcmp(o.u.principal.orgs, "org-001,org-002")
	    && !strcmp(o.u.principal.public_key, key));
	fbx_console_req_free(&o);
	principal_req(&r, FBX_PRI_LIST, "", 0, 0, "", "");
	CHECK_RV(principal_rt(&r, &o), FBX_OK);
	fbx_console_req_free(&o);
	principal_req(&r, FBX_PRI_ROTATE, "alice", 0, 0, "", key);
	CHECK_RV(principal_rt(&r, &o), FBX_OK);
	fbx_console_req_free(&o);
	/* refused: each one a field too many or too few */
	principal_req(
	    &r, FBX_PRI_ADD, "alice", FBX_PK_OPERATOR, 1, "*", "too-short");
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
		principal_req(
		    &r, FBX_PRI_ADD, "a", FBX_PK_OPERATOR, 1, many, key);
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
	CHECK(ro.kind == FBX_CREQ_PRINCIPAL && ro.u.principal.count == 1
	    && ro.u.principal.jsonl != NULL
	    && !strcmp(ro.u.principal.jsonl, rep.u.principal.jsonl));
	fbx_console_rep_free(&ro);
	free(buf);
}

/* test_pct - a ppm threshold as operators read it, in the CLI's tables
 * and the engine's pause notes */
static void
test_pct(void)
{
	static const struct {
		uint32_t ppm;
		const char *want;
	} v[] = { { 950000, "95%" }, { 25000, "2.5%" }, { 100, "0.01%" },
		{ 1, "0.0001%" }, { 0, "0%" }, { 1000000, "100%" } };
	char buf[24];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		fbx_pct_str(v[i].ppm, buf, sizeof(buf));
		CHECK(strcmp(buf, v[i].want) == 0);
	}
}

/* test_fmt_utc - the one time format of the engine and fuseboxctl:
 * milliseconds kept (not rounded), whole seconds without, a buffer too
 * small or a negative time refused with "" (never a cut time) */
static void
test_fmt_utc(void)
{
	char buf[40];

	CHECK(fbx_fmt_utc(1796526722517LL, 1, buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "2026-12-06T03:12:02.517Z") == 0);
	CHECK(fbx_fmt_utc(1796526722999LL, 0, buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "2026-12-06T03:12:02Z") == 0);
	CHECK(fbx_fmt_utc(5, 1, buf, sizeof(buf)) == 0);
	CHECK(strcmp(buf, "1970-01-01T00:00:00.005Z") == 0);
	CHECK(fbx_fmt_utc(-1, 1, buf, sizeof(buf)) == -1 && buf[0] == '\0');
	/* 24 characters and the NUL */
	CHECK(fbx_fmt_utc(1796526722517LL, 1, buf, 25) == 0);
	CHECK(fbx_fmt_utc(1796526722517LL, 1, buf, 24) == -1 &&
	    buf[0] == '\0');
	CHECK(fbx_fmt_utc(1796526722517LL, 0, buf, 21) == 0);
	CHECK(fbx_fmt_utc(1796526722517LL, 0, buf, 20) == -1 &&
	    buf[0] == '\0');
	CHECK(fbx_fmt_utc(0, 1, buf, 0) == -1);
}

int
main(void)
{
	test_fmt_utc();
	test_pct();
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
	test_principal();
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
