/*
 * gen_seeds.c: writes the seed corpus of every fuzz target under
 * tests/fuzz/corpus/<target>/ from valid messages and records built with
 * the project's own encoders, so the fuzzers start from inputs that pass
 * every check and mutate from there. It includes storage/store.c and
 * the store's record files whole (store_cmd.c, store_dlv.c, store_dev.c,
 * store_audit.c) to reach the static record encoders. Each seed is
 * decoded again before it is written; a seed that does not decode is a
 * generator bug and fails the run. Usage: gen_seeds CORPUS_DIR (the
 * directories must exist).
 */
#include "store.c"
#include "store_audit.c"
#include "store_cmd.c"
#include "store_dev.c"
#include "store_dlv.c"

#include "fbx_proto.h"

static const char *corpus;
static int nbad;

/* seed_write writes buf as CORPUS_DIR/target/name. */
static void
seed_write(const char *target, const char *name, const void *buf,
    size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", corpus, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len) {
		fprintf(stderr, "gen_seeds: cannot write %s\n", path);
		nbad++;
	}
	if (f != NULL)
		fclose(f);
}

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

static void
req_seed(const char *name, const struct fbx_console_req *r)
{
	struct fbx_console_req back;
	uint8_t *buf = NULL;
	size_t len = 0;
	char why[256] = "";
	int rv;

	rv = fbx_console_req_encode(r, &buf, &len);
	if (rv == FBX_OK)
		rv = fbx_console_req_decode(buf, len, &back, why, sizeof(why));
	if (rv != FBX_OK) {
		fprintf(stderr, "gen_seeds: req %s: %s (%s)\n", name,
		    fbx_errname(rv), why);
		nbad++;
	} else {
		seed_write("fuzz_console_req", name, buf, len);
		fbx_console_req_free(&back);
	}
	free(buf);
}

static void
rep_seed(const char *name, const struct fbx_console_rep *r)
{
	struct fbx_console_rep back;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	rv = fbx_console_rep_encode(r, &buf, &len);
	if (rv == FBX_OK)
		rv = fbx_console_rep_decode(buf, len, &back);
	if (rv != FBX_OK) {
		fprintf(stderr, "gen_seeds: rep %s: %s\n", name,
		    fbx_errname(rv));
		nbad++;
	} else {
		seed_write("fuzz_console_rep", name, buf, len);
		fbx_console_rep_free(&back);
	}
	free(buf);
}

static void
gw_seed(const char *name, const struct fbx_gw_msg *m)
{
	struct fbx_gw_msg back;
	uint8_t *buf = NULL;
	size_t len = 0;
	char why[256] = "";
	int rv;

	rv = fbx_gw_msg_encode(m, &buf, &len);
	if (rv == FBX_OK)
		rv = fbx_gw_msg_decode(buf, len, &back, why, sizeof(why));
	if (rv != FBX_OK) {
		fprintf(stderr, "gen_seeds: gw %s: %s (%s)\n", name,
		    fbx_errname(rv), why);
		nbad++;
	} else {
		seed_write("fuzz_gw_msg", name, buf, len);
		fbx_gw_msg_free(&back);
	}
	free(buf);
}

static void
eng_seed(const char *name, const struct fbx_eng_msg *m)
{
	struct fbx_eng_msg back;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	rv = fbx_eng_msg_encode(m, &buf, &len);
	if (rv == FBX_OK)
		rv = fbx_eng_msg_decode(buf, len, &back);
	if (rv != FBX_OK) {
		fprintf(stderr, "gen_seeds: eng %s: %s\n", name,
		    fbx_errname(rv));
		nbad++;
	} else {
		seed_write("fuzz_eng_msg", name, buf, len);
		fbx_eng_msg_free(&back);
	}
	free(buf);
}

static void
event_seed(const char *name, const struct fbx_event *ev)
{
	struct fbx_event back;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	rv = fbx_event_encode(ev, &buf, &len);
	if (rv == FBX_OK)
		rv = fbx_event_decode(buf, len, &back);
	if (rv != FBX_OK) {
		fprintf(stderr, "gen_seeds: event %s: %s\n", name,
		    fbx_errname(rv));
		nbad++;
	} else {
		seed_write("fuzz_event", name, buf, len);
	}
	free(buf);
}

static void
make_device(struct fbx_device *d, const char *id, int ngroups)
{
	memset(d, 0, sizeof(*d));
	strcpy(d->org, "acme");
	snprintf(d->id, sizeof(d->id), "%s", id);
	d->platform = FBX_PLATFORM_ANDROID;
	d->online = 1;
	d->attestation = FBX_ATTEST_PASS;
	strcpy(d->os_version, "14.2.1");
	d->ngroups = (uint8_t)ngroups;
	for (int g = 0; g < ngroups; g++)
		snprintf(d->groups[g], sizeof(d->groups[g]), "group-%d", g);
	d->enrolled_ms = 1700000000000;
	d->last_checkin_ms = 1700000005000;
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
	strcpy(c->cursor, "dev-119");
	c->cursor_idx = 7;
}

static void
make_delivery(struct fbx_delivery *d, uint64_t id, int nhist)
{
	memset(d, 0, sizeof(*d));
	d->id = id;
	d->state = FBX_D_FAILED;
	d->code = 404;
	d->attempts = 2;
	d->updated_ms = 1700000000123;
	strcpy(d->device, "dev-7");
	d->nhist = (uint8_t)nhist;
	for (int i = 0; i < nhist; i++) {
		d->hist[i].state = (uint8_t)(1 + i % (FBX_D_COUNT - 1));
		d->hist[i].code = (uint16_t)(i % 3 == 2 ? 500 + i : 0);
		d->hist[i].at_ms = 1700000000000 + 1000 * (int64_t)i;
	}
}

static void
make_plan(struct fbx_rollout_plan *p)
{
	memset(p, 0, sizeof(*p));
	p->enabled = 1;
	p->approve_groups = 1;
	p->ngroups = 2;
	strcpy(p->groups[0], "canary");
	strcpy(p->groups[1], "everyone");
	p->first_count = 25;
	p->growth_x100 = 250;
	p->max_wave = 5000;
	p->bake_s = 900;
	p->success_ppm = 950000;
	p->failure_ppm = 50000;
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
	strcpy(s->note, "failure share 7% > 5%");
}

static void
gen_req(void)
{
	static uint8_t payload[] = { 1, 2, 3, 0, 255 };
	struct fbx_console_req r;
	struct fbx_device devs[2];
	fbx_id ids[3] = { "a", "b-2", "c_3" };
	uint64_t cids[2] = { 5, 6 };

	base_req(&r, FBX_CREQ_PING);
	req_seed("ping", &r);

	base_req(&r, FBX_CREQ_SUBMIT);
	r.u.submit.cmd.type = FBX_CMD_LOCK;
	r.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
	strcpy(r.u.submit.cmd.reason, "INC-42");
	strcpy(r.u.submit.cmd.idem_key, "key-1");
	r.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	r.u.submit.cmd.dev_ids = ids;
	r.u.submit.cmd.ndev_ids = 3;
	r.u.submit.cmd.payload = payload;
	r.u.submit.cmd.payload_len = sizeof(payload);
	r.u.submit.cmd.ttl_s = 3600;
	req_seed("submit_devices", &r);

	base_req(&r, FBX_CREQ_SUBMIT);
	r.u.submit.cmd.type = FBX_CMD_WIPE;
	r.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
	r.u.submit.cmd.target_kind = FBX_TARGET_GROUP;
	strcpy(r.u.submit.cmd.group, "sales");
	r.u.submit.cmd.platform = FBX_PLATFORM_IOS;
	r.dry_run = 1;
	strcpy(r.approval, "appr:7f3a");
	req_seed("submit_group_dryrun", &r);

	base_req(&r, FBX_CREQ_SUBMIT);
	r.u.submit.cmd.type = FBX_CMD_OS_UPDATE;
	r.u.submit.cmd.origin = FBX_ORIGIN_SCHEDULED;
	r.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	make_plan(&r.u.submit.cmd.rollout);
	req_seed("submit_rollout", &r);

	base_req(&r, FBX_CREQ_GET_COMMAND);
	r.u.get.command_id = 77;
	r.u.get.after = FBX_DLV_ID(77, 9);
	r.u.get.limit = 100;
	r.u.get.state = FBX_D_FAILED;
	req_seed("get_command", &r);

	base_req(&r, FBX_CREQ_LIST_COMMANDS);
	r.u.list.since_ms = 1000;
	r.u.list.until_ms = 2000;
	r.u.list.after = 3;
	r.u.list.limit = 50;
	req_seed("list_commands", &r);

	base_req(&r, FBX_CREQ_ENROLL);
	make_device(&devs[0], "dev-0", 0);
	make_device(&devs[1], "dev-1", 2);
	r.u.enroll.devs = devs;
	r.u.enroll.n = 2;
	req_seed("enroll", &r);

	base_req(&r, FBX_CREQ_REMOVE);
	r.u.remove.ids = ids;
	r.u.remove.n = 3;
	req_seed("remove", &r);

	base_req(&r, FBX_CREQ_LIST_DEVICES);
	strcpy(r.u.list_devices.group, "g1");
	strcpy(r.u.list_devices.after, "dev-5");
	r.u.list_devices.limit = 10;
	req_seed("list_devices", &r);

	base_req(&r, FBX_CREQ_LIST_GROUPS);
	req_seed("list_groups", &r);

	base_req(&r, FBX_CREQ_BREAKER);
	r.u.breaker.op = FBX_BRK_TRIP;
	strcpy(r.u.breaker.reason, "jamf:rule-17");
	strcpy(r.u.breaker.note, "lock storm \xe2\x80\x94 INC-7");
	req_seed("breaker_trip", &r);

	base_req(&r, FBX_CREQ_BREAKER);
	r.u.breaker.op = FBX_BRK_CONFIGURE;
	r.u.breaker.global = 1;
	r.u.breaker.cfg.window_s = 300;
	r.u.breaker.cfg.min_count = 50;
	r.u.breaker.cfg.share_ppm = 15000;
	r.u.breaker.cfg.baseline_mult = 8;
	r.u.breaker.cfg.global_orgs = 4;
	r.u.breaker.cfg.shadow = 2;
	req_seed("breaker_configure", &r);

	base_req(&r, FBX_CREQ_LIMIT);
	r.u.limit.set = 1;
	r.u.limit.lim.type = FBX_CMD_WIPE;
	r.u.limit.lim.max_count = 50;
	r.u.limit.lim.max_share_ppm = 5000;
	r.u.limit.lim.window_s = 7200;
	req_seed("limit_set", &r);

	base_req(&r, FBX_CREQ_RATE);
	r.u.rate.set = 1;
	r.u.rate.global = 1;
	r.u.rate.rate.rate_per_s = 2000;
	r.u.rate.rate.burst = 4000;
	r.u.rate.rate.max_inflight = 100000;
	req_seed("rate_set", &r);

	base_req(&r, FBX_CREQ_APPROVE);
	strcpy(r.u.approve.token, "appr:7f3a");
	strcpy(r.u.approve.note, "checked with the fleet owner");
	req_seed("approve", &r);

	base_req(&r, FBX_CREQ_ROLLOUT);
	r.u.rollout.op = FBX_ROP_APPROVE;
	r.u.rollout.command_id = 991;
	strcpy(r.u.rollout.note, "canary green");
	req_seed("rollout", &r);

	base_req(&r, FBX_CREQ_LIST_HELD);
	strcpy(r.u.list_held.reason, "INC-42");
	r.u.list_held.after = 17;
	r.u.list_held.limit = 100;
	req_seed("list_held", &r);

	base_req(&r, FBX_CREQ_ROLLBACK);
	r.u.rollback.sel.command_ids = cids;
	r.u.rollback.sel.ncommand_ids = 2;
	r.u.rollback.limit = 50;
	strcpy(r.u.rollback.note, "undo INC-42");
	req_seed("rollback_ids", &r);

	base_req(&r, FBX_CREQ_ROLLBACK);
	strcpy(r.u.rollback.sel.breaker, "jamf:rule-17");
	r.u.rollback.sel.type = FBX_CMD_LOCK;
	r.u.rollback.execute = 1;
	strcpy(r.u.rollback.note, "incident 7");
	req_seed("rollback_breaker", &r);

	/* a global incident over every organisation, a later slice */
	base_req(&r, FBX_CREQ_ROLLBACK);
	strcpy(r.u.rollback.sel.breaker, "attestation_failed");
	r.u.rollback.sel.every_org = 1;
	r.u.rollback.sel.include_before_onset = 1;
	r.u.rollback.execute = 1;
	r.u.rollback.sliced = 1;
	r.u.rollback.cursor = 1;
	r.u.rollback.last_command_id = 40;
	r.u.rollback.rollback_id = 12;
	strcpy(r.u.rollback.org_cursor, "org-007");
	req_seed("rollback_global", &r);

	base_req(&r, FBX_CREQ_REPLAY);
	r.u.replay.sel.command_ids = cids;
	r.u.replay.sel.ncommand_ids = 1;
	r.u.replay.state = FBX_D_SENT;
	strcpy(r.u.replay.note, "gateway lost");
	req_seed("replay", &r);

	base_req(&r, FBX_CREQ_EXPORT);
	r.u.export_.since_ms = 1000;
	r.u.export_.until_ms = 5000;
	r.u.export_.max_bytes = 65536;
	req_seed("export", &r);

	base_req(&r, FBX_CREQ_AUDIT_LIST);
	strcpy(r.u.audit_list.actor, "bob@acme");
	strcpy(r.u.audit_list.action, "breaker.trip");
	r.u.audit_list.limit = 20;
	req_seed("audit_list", &r);

	base_req(&r, FBX_CREQ_AUDIT_VERIFY);
	req_seed("audit_verify", &r);

	base_req(&r, FBX_CREQ_LIST_ORGS);
	req_seed("list_orgs", &r);

	base_req(&r, FBX_CREQ_CERT);
	r.u.cert.op = FBX_CERT_ADD;
	strcpy(r.u.cert.name, "attest-signing");
	r.u.cert.pem = (uint8_t *)"-----BEGIN CERTIFICATE-----\nMIIB\n"
	                          "-----END CERTIFICATE-----\n";
	r.u.cert.pem_len = strlen((const char *)r.u.cert.pem);
	strcpy(r.u.cert.reasons[0], "attestation_failed");
	strcpy(r.u.cert.reasons[1], "integrity_check");
	r.u.cert.nreasons = 2;
	r.u.cert.trip_before_s = 600;
	strcpy(r.u.cert.note, "provider signing certificate");
	req_seed("cert_add", &r);

	base_req(&r, FBX_CREQ_CERT);
	r.u.cert.op = FBX_CERT_LIST;
	req_seed("cert_list", &r);

	/* issue 10: principals */
	base_req(&r, FBX_CREQ_PRINCIPAL);
	r.u.principal.op = FBX_PRI_ADD;
	strcpy(r.u.principal.name, "alice");
	r.u.principal.kind = FBX_PK_OPERATOR;
	r.u.principal.roles = FBX_ROLE_VIEWER | FBX_ROLE_OPERATOR;
	strcpy(r.u.principal.orgs, "org-001,org-002");
	strcpy(r.u.principal.public_key,
	    "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
	strcpy(r.u.principal.note, "new operator");
	req_seed("principal_add", &r);

	base_req(&r, FBX_CREQ_PRINCIPAL);
	r.u.principal.op = FBX_PRI_REVOKE;
	strcpy(r.u.principal.name, "alice");
	req_seed("principal_revoke", &r);
}

static void
gen_rep(void)
{
	struct fbx_console_rep r;
	struct fbx_delivery dl[2];
	struct fbx_command cmds[2];
	struct fbx_device devs[2];
	struct fbx_group_count groups[2] = { { "sales", 10 }, { "ops", 3 } };
	struct fbx_breaker_info brk;
	struct fbx_limit_info lim;
	struct fbx_rate_info rate;
	struct fbx_audit_rec aud;
	struct fbx_rb_row row;
	struct fbx_cert_info cert;
	uint64_t comp[1] = { 6 };
	fbx_id orgs[2] = { "acme", "globex" };
	uint32_t orgdev[2] = { 100, 7 };
	uint32_t waves[3] = { 10, 50, 200 };
	char jsonl[] = "{\"id\":1}\n{\"id\":2}\n";

	memset(&r, 0, sizeof(r));
	r.request_id = 9;
	r.kind = FBX_CREQ_SUBMIT;
	r.u.submit.command_id = 1234;
	r.u.submit.device_count = 5000;
	r.u.submit.state = FBX_C_EXPANDING;
	rep_seed("submit", &r);

	r.u.submit.dry_run = 1;
	r.u.submit.dryrun.devices = 260;
	r.u.submit.dryrun.groups = groups;
	r.u.submit.dryrun.ngroups = 2;
	r.u.submit.dryrun.waves = waves;
	r.u.submit.dryrun.nwaves = 3;
	strcpy(r.u.submit.dryrun.verdict, "would run");
	rep_seed("submit_dryrun", &r);

	memset(&r, 0, sizeof(r));
	r.request_id = 10;
	r.err = FBX_ELIMIT_EXCEEDED;
	strcpy(r.errmsg, "limit: 50 wipes per hour");
	strcpy(r.approval_token, "appr:7f3a");
	r.limit_value = 50;
	r.limit_count = 51;
	rep_seed("error_limit", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_GET_COMMAND;
	make_command(&r.u.command.info, 1234);
	make_delivery(&dl[0], FBX_DLV_ID(1234, 0), 0);
	make_delivery(&dl[1], FBX_DLV_ID(1234, 1), FBX_HIST_MAX);
	r.u.command.dlv = dl;
	r.u.command.ndlv = 2;
	r.u.command.next_after = FBX_DLV_ID(1234, 2);
	rep_seed("get_command", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_LIST_COMMANDS;
	make_command(&cmds[0], 1);
	make_command(&cmds[1], 2);
	cmds[1].target_kind = FBX_TARGET_DEVICES;
	cmds[1].group[0] = '\0';
	cmds[1].ndev_ids = 4;
	r.u.commands.cmds = cmds;
	r.u.commands.n = 2;
	r.u.commands.next_after = 2;
	rep_seed("list_commands", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_ENROLL;
	r.u.enroll.created = 10;
	r.u.enroll.updated = 2;
	rep_seed("enroll", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_LIST_DEVICES;
	make_device(&devs[0], "dev-0", 1);
	make_device(&devs[1], "dev-1", 0);
	r.u.devices.devs = devs;
	r.u.devices.n = 2;
	strcpy(r.u.devices.next_after, "dev-1");
	r.u.devices.total = 40;
	rep_seed("list_devices", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_LIST_GROUPS;
	r.u.groups.groups = groups;
	r.u.groups.n = 2;
	rep_seed("list_groups", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_PING;
	strcpy(r.u.pong.version, "0.1.0");
	r.u.pong.uptime_ms = 1000;
	r.u.pong.gateways = 2;
	rep_seed("ping", &r);

	memset(&r, 0, sizeof(r));
	memset(&brk, 0, sizeof(brk));
	r.kind = FBX_CREQ_BREAKER;
	strcpy(brk.org, "acme");
	strcpy(brk.reason, "rule-1");
	brk.state = FBX_BS_OPEN;
	brk.manual = 1;
	brk.cfg.window_s = 600;
	brk.cfg.min_count = 20;
	brk.cfg.share_ppm = 20000;
	brk.cfg.baseline_mult = 10;
	brk.cfg.global_orgs = 3;
	brk.trips = 2;
	brk.tripped_ms = 1700000000000;
	strcpy(brk.tripped_by, "alice@acme");
	strcpy(brk.note, "manual trip: INC-7");
	brk.fleet = 15000;
	brk.allowance = 300;
	r.u.breaker.b = &brk;
	r.u.breaker.n = 1;
	r.u.breaker.released = 11;
	rep_seed("breaker", &r);

	memset(&r, 0, sizeof(r));
	memset(&lim, 0, sizeof(lim));
	r.kind = FBX_CREQ_LIMIT;
	strcpy(lim.org, "*");
	lim.type = FBX_CMD_WIPE;
	lim.max_count = 50;
	lim.window_s = 3600;
	lim.used = 12;
	r.u.limit.l = &lim;
	r.u.limit.n = 1;
	rep_seed("limit", &r);

	memset(&r, 0, sizeof(r));
	memset(&rate, 0, sizeof(rate));
	r.kind = FBX_CREQ_RATE;
	strcpy(rate.org, "acme");
	rate.rate_per_s = 100;
	rate.burst = 200;
	rate.max_inflight = 1000;
	rate.inflight = 999;
	r.u.rate.r = &rate;
	r.u.rate.n = 1;
	rep_seed("rate", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_APPROVE;
	strcpy(r.u.approve.token, "appr:7f3a");
	strcpy(r.u.approve.approver, "bob@acme");
	strcpy(r.u.approve.submitter, "alice@acme");
	r.u.approve.expires_ms = 1700000900000;
	rep_seed("approve", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_LIST_HELD;
	make_command(&cmds[0], 40);
	cmds[0].state = FBX_C_HELD;
	strcpy(cmds[0].held_by, "acme/rule-1");
	strcpy(cmds[0].note, "held by breaker");
	r.u.commands.cmds = cmds;
	r.u.commands.n = 1;
	rep_seed("list_held", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_ROLLOUT;
	r.u.rollout.command_id = 991;
	make_plan(&r.u.rollout.plan);
	make_status(&r.u.rollout.st);
	rep_seed("rollout", &r);

	memset(&r, 0, sizeof(r));
	memset(&row, 0, sizeof(row));
	r.kind = FBX_CREQ_ROLLBACK;
	row.command_id = 5;
	row.delivery_id = FBX_DLV_ID(5, 0);
	strcpy(row.device, "dev-0");
	row.type = FBX_CMD_LOCK;
	row.state = FBX_D_SUCCEEDED;
	row.action = FBX_RB_COMPENSATE;
	row.comp_type = FBX_CMD_UNLOCK;
	strcpy(row.detail, "unlock");
	r.u.rollback.commands = 1;
	r.u.rollback.per_action[FBX_RB_COMPENSATE] = 1;
	r.u.rollback.rows = &row;
	r.u.rollback.nrows = 1;
	r.u.rollback.comp_ids = comp;
	r.u.rollback.ncomp = 1;
	r.u.rollback.rollback_id = 12;
	r.u.rollback.executed = 1;
	rep_seed("rollback", &r);
	{
		/* a slice of a global run: parts, before-onset rows */
		struct fbx_rb_org part;
		memset(&part, 0, sizeof(part));
		strcpy(part.org, "org-002");
		part.commands = 1;
		part.per_action[FBX_RB_COMPENSATE] = 1;
		part.before_onset = 1;
		part.before_onset_deliveries = 1;
		part.comp_commands = 1;
		r.u.rollback.before_onset = 1;
		r.u.rollback.before_onset_deliveries = 1;
		r.u.rollback.bo_rows = &row;
		r.u.rollback.nbo_rows = 1;
		r.u.rollback.onset_ms = 1700000000000;
		r.u.rollback.since_ms = 1700000000000;
		r.u.rollback.global = 1;
		r.u.rollback.next_cursor = 1;
		r.u.rollback.last_command_id = 40;
		strcpy(r.u.rollback.next_org, "org-003");
		strcpy(r.u.rollback.breaker, "*/attestation_failed");
		r.u.rollback.orgs = &part;
		r.u.rollback.norgs = 1;
		rep_seed("rollback_global", &r);
	}

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_REPLAY;
	r.u.replay.matched = 10;
	r.u.replay.resent = 7;
	r.u.replay.skipped_terminal = 3;
	rep_seed("replay", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_EXPORT;
	r.u.export_.jsonl = jsonl;
	r.u.export_.len = strlen(jsonl);
	r.u.export_.next_cursor = 3;
	rep_seed("export", &r);

	memset(&r, 0, sizeof(r));
	memset(&aud, 0, sizeof(aud));
	r.kind = FBX_CREQ_AUDIT_LIST;
	aud.seq = 1;
	aud.at_ms = 1700000000000;
	strcpy(aud.org, "acme");
	strcpy(aud.actor, "alice@acme");
	strcpy(aud.action, "breaker.trip");
	strcpy(aud.note, "INC-7");
	strcpy(aud.params, "{\"reason\":\"rule-1\"}");
	memset(aud.hash, 'a', 64);
	memset(aud.prev, '0', 64);
	r.u.audit.r = &aud;
	r.u.audit.n = 1;
	r.u.audit.next_after = 1;
	rep_seed("audit_list", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_AUDIT_VERIFY;
	r.u.verify.records = 100;
	rep_seed("audit_verify", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_LIST_ORGS;
	r.u.orgs.orgs = orgs;
	r.u.orgs.devices = orgdev;
	r.u.orgs.n = 2;
	rep_seed("list_orgs", &r);

	memset(&r, 0, sizeof(r));
	r.kind = FBX_CREQ_CERT;
	memset(&cert, 0, sizeof(cert));
	strcpy(cert.name, "attest-signing");
	strcpy(cert.subject, "O=Example,CN=attestation-signing");
	strcpy(cert.issuer, "CN=Example Root");
	cert.not_before_ms = 1690000000000;
	cert.not_after_ms = 1703000000000;
	cert.days_left = 30;
	strcpy(cert.reasons[0], "attestation_failed");
	cert.nreasons = 1;
	cert.trip_before_s = 600;
	cert.state = FBX_CST_EXPIRING;
	cert.alerts_sent = 1;
	strcpy(cert.added_by, "alice");
	cert.added_ms = 1700000000000;
	memset(cert.sha256, 'b', 64);
	r.u.cert.c = &cert;
	r.u.cert.n = 1;
	rep_seed("cert", &r);
}

static void
gen_gw(void)
{
	struct fbx_gw_msg m;
	fbx_id orgs[2] = { "acme", "globex" };
	struct fbx_result_rec res[3] = {
		{ FBX_DLV_ID(5, 0), FBX_R_SUCCEEDED, 0 },
		{ FBX_DLV_ID(5, 1), FBX_R_FAILED, 17 },
		{ FBX_DLV_ID(5, 2), FBX_R_OFFLINE, 0 },
	};
	struct fbx_checkin ck[2];

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_HELLO;
	strcpy(m.u.hello.gateway_id, "gw-1");
	m.u.hello.orgs = orgs;
	m.u.hello.norgs = 2;
	m.u.hello.window = 512;
	gw_seed("hello", &m);

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_CREDIT;
	m.u.credit.window = 64;
	gw_seed("credit", &m);

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_RESULTS;
	m.u.results.batch_id = 77;
	m.u.results.r = res;
	m.u.results.n = 3;
	gw_seed("results", &m);

	memset(&m, 0, sizeof(m));
	memset(ck, 0, sizeof(ck));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_CHECKINS;
	for (int i = 0; i < 2; i++) {
		strcpy(ck[i].org, "acme");
		snprintf(ck[i].device, sizeof(ck[i].device), "dev-%d", i);
		ck[i].at_ms = 1700000000000 + i;
		strcpy(ck[i].os_version, "17.1");
		ck[i].attestation = FBX_ATTEST_PASS;
	}
	m.u.checkins.batch_id = 78;
	m.u.checkins.c = ck;
	m.u.checkins.n = 2;
	gw_seed("checkins", &m);

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_HEARTBEAT;
	gw_seed("heartbeat", &m);

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_BYE;
	strcpy(m.u.bye.reason, "shutting down");
	gw_seed("bye", &m);
}

static void
gen_eng(void)
{
	static const uint8_t payload[] = { 9, 8, 7, 6 };
	struct fbx_eng_msg m;
	struct fbx_dlv_out d[2];

	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_WELCOME;
	strcpy(m.u.welcome.engine_id, "engine-1");
	m.u.welcome.heartbeat_ms = 5000;
	m.u.welcome.max_batch = 1000;
	eng_seed("welcome", &m);

	memset(&m, 0, sizeof(m));
	memset(d, 0, sizeof(d));
	m.kind = FBX_ENG_DELIVERIES;
	for (int i = 0; i < 2; i++) {
		d[i].delivery_id = FBX_DLV_ID(5, i);
		d[i].command_id = 5;
		d[i].org = "acme";
		d[i].device = i == 0 ? "dev-0" : "dev-1";
		d[i].type = FBX_CMD_LOCK;
		d[i].payload = i == 0 ? payload : NULL;
		d[i].payload_len = i == 0 ? sizeof(payload) : 0;
		d[i].expires_ms = 1700000900000;
		d[i].attempt = (uint32_t)(1 + i);
	}
	m.u.deliveries.d = d;
	m.u.deliveries.n = 2;
	eng_seed("deliveries", &m);

	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_ACK;
	m.u.ack.batch_id = 77;
	m.u.ack.count = 3;
	eng_seed("ack", &m);

	memset(&m, 0, sizeof(m));
	m.kind = FBX_ENG_ERROR;
	m.u.error.err = FBX_EPROTOCOL;
	strcpy(m.u.error.msg, "hello first");
	eng_seed("error", &m);
}

static void
gen_event(void)
{
	struct fbx_event ev;
	char name[64];

	for (int k = FBX_EV_BREAKER_TRIPPED; k <= FBX_EV_FAILURE_SPIKE; k++) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = k;
		ev.at_ms = 1700000000000;
		strcpy(ev.org, k == FBX_EV_BREAKER_RESET ? "*" : "acme");
		strcpy(ev.reason, "rule-1");
		strcpy(ev.actor, "engine");
		ev.command_id = 5;
		ev.count = 300;
		ev.limit = 250;
		strcpy(ev.detail, "lock spike");
		snprintf(name, sizeof(name), "%s", fbx_event_kind_name(k));
		event_seed(name, &ev);
	}
}

/* store_seed writes tag + rec (fuzz_store_rec picks on the tag). */
static void
store_seed(const char *name, uint8_t tag, const void *a, size_t alen,
    const void *b, size_t blen)
{
	uint8_t buf[1 + 2 + CMD_HDR_MAX + 4096];

	if (1 + alen + blen > sizeof(buf)) {
		nbad++;
		return;
	}
	buf[0] = tag;
	memcpy(buf + 1, a, alen);
	if (blen > 0)
		memcpy(buf + 1 + alen, b, blen);
	seed_write("fuzz_store_rec", name, buf, 1 + alen + blen);
}

static void
gen_store(void)
{
	static uint8_t payload[] = { 1, 2, 3 };
	struct fbx_delivery d;
	struct fbx_device dv;
	struct fbx_command c;
	fbx_id ids[2] = { "dev-1", "dev-2" };
	uint8_t rec[CMD_HDR_MAX + 2], key[KEY_MAX], body[256];
	size_t len, klen;
	struct wr w;

	make_delivery(&d, 42, 0);
	if (dlv_encode(&d, 0, rec, DLV_REC_MAX, &len) != FBX_OK)
		nbad++;
	store_seed("dlv_new", 0, rec, len, NULL, 0);
	make_delivery(&d, 42, 3);
	if (dlv_encode(&d, 60, rec, DLV_REC_MAX, &len) != FBX_OK)
		nbad++;
	store_seed("dlv_padded", 0, rec, len, NULL, 0);
	make_delivery(&d, 42, FBX_HIST_MAX);
	if (dlv_encode(&d, 0, rec, DLV_REC_MAX, &len) != FBX_OK)
		nbad++;
	store_seed("dlv_full", 0, rec, len, NULL, 0);

	make_device(&dv, "dev-1", 2);
	klen = key_cat(key + 1, 0, dv.org, strlen(dv.org), 1);
	klen = key_cat(key + 1, klen, dv.id, strlen(dv.id), 0);
	key[0] = (uint8_t)klen;
	if (dev_encode(&dv, rec, DEV_REC_MAX, &len) != FBX_OK)
		nbad++;
	store_seed("dev", 1, key, klen + 1, rec, len);

	make_command(&c, 7);
	c.target_kind = FBX_TARGET_DEVICES;
	c.group[0] = '\0';
	c.payload = payload;
	c.payload_len = sizeof(payload);
	c.dev_ids = ids;
	c.ndev_ids = 2;
	c.rollout.enabled = 1;
	c.rollout.ngroups = 1;
	strcpy(c.rollout.groups[0], "canary");
	strcpy(c.ro.note, "wave 1");
	c.settle_until_ms = 1700000030000;
	c.limit_at_ms = 1700000000000;
	c.limit_n = 2;
	c.limit_window_s = 3600;
	c.limit_gen = 1;
	if (cmd_hdr_encode(&c, c.payload_len, c.ndev_ids, rec + 2,
	    CMD_HDR_MAX, &len) != FBX_OK)
		nbad++;
	rec[0] = (uint8_t)len;
	rec[1] = (uint8_t)(len >> 8);
	w.p = body;
	w.end = body + sizeof(body);
	w.bad = 0;
	wr_u8(&w, REC_V1);
	wr_le(&w, c.payload_len, 4);
	wr_bytes(&w, c.payload, c.payload_len);
	wr_le(&w, c.ndev_ids, 4);
	for (uint32_t i = 0; i < c.ndev_ids; i++)
		wr_str(&w, c.dev_ids[i], FBX_ID_MAX + 1);
	if (w.bad || (size_t)(w.p - body) != cmd_body_size(&c))
		nbad++;
	store_seed("cmd_body", 2, rec, len + 2, body,
	    (size_t)(w.p - body));
	make_command(&c, 8);
	if (cmd_hdr_encode(&c, 0, 0, rec + 2, CMD_HDR_MAX, &len) != FBX_OK)
		nbad++;
	rec[0] = (uint8_t)len;
	rec[1] = (uint8_t)(len >> 8);
	store_seed("cmd_plain", 2, rec, len + 2, NULL, 0);

	org_encode(1500, 1700000000000, rec);
	store_seed("org", 3, rec, ORG_REC_LEN, NULL, 0);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds CORPUS_DIR\n");
		return 2;
	}
	corpus = argv[1];
	gen_req();
	gen_rep();
	gen_gw();
	gen_eng();
	gen_event();
	gen_store();
	if (nbad > 0) {
		fprintf(stderr, "gen_seeds: %d seeds failed\n", nbad);
		return 1;
	}
	return 0;
}
