/*
 * e2e_test.c: the whole path, end to end, with the real binaries: enroll a
 * simulated fleet of 30,000 devices (FBX_E2E_DEVICES: on PostgreSQL,
 * fewer) in 40 organisations, submit commands
 * for one device, a group, a platform and whole organisations, let the
 * simulator answer as devices (with failures and offline devices that
 * check in later), and check that every targeted device got exactly one
 * delivery id, every outcome is recorded, no other organisation's device
 * was touched, and a command past its TTL expires.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* the fleet: 30,000 devices unless FBX_E2E_DEVICES says otherwise */
#define DEVICES_DEFAULT 30000
#define ORGS 40

struct devpage {
	fbx_id *ids;
	uint8_t *platform;
	size_t n;
};

/* list every device of org (of group if set) through the console API */
static int
list_all(struct fbxt_env *t, const char *org, const char *group,
    struct devpage *out)
{
	char after[FBX_ID_MAX + 1] = "";

	memset(out, 0, sizeof(*out));
	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_DEVICES;
		req.u.list_devices.limit = 1000;
		if (group != NULL)
			snprintf(req.u.list_devices.group,
			    sizeof(req.u.list_devices.group), "%s", group);
		snprintf(req.u.list_devices.after,
		    sizeof(req.u.list_devices.after), "%s", after);
		if (fbxt_call(t, org, &req, &rep) != FBX_OK) {
			fbx_console_rep_free(&rep);
			return -1;
		}
		out->ids = realloc(out->ids,
		    (out->n + rep.u.devices.n) * sizeof(*out->ids));
		out->platform =
		    realloc(out->platform, out->n + rep.u.devices.n);
		for (size_t i = 0; i < rep.u.devices.n; i++) {
			memcpy(out->ids[out->n], rep.u.devices.devs[i].id,
			    sizeof(fbx_id));
			out->platform[out->n] = rep.u.devices.devs[i].platform;
			out->n++;
		}
		snprintf(after, sizeof(after), "%s",
		    rep.u.devices.next_after);
		fbx_console_rep_free(&rep);
		if (after[0] == '\0')
			return 0;
	}
}

/* check_deliveries - page through a command's outcomes: each device of
 * `expect` appears exactly once, nothing else appears, all terminal. */
static void
check_deliveries(struct fbxt_env *t, const char *org, uint64_t id,
    const struct devpage *expect)
{
	uint64_t after = 0;
	size_t seen = 0, foreign = 0, open = 0, dup = 0;
	char *mark = calloc(expect->n, 1);

	for (;;) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		req.u.get.after = after;
		req.u.get.limit = 2000;
		if (fbxt_call(t, org, &req, &rep) != FBX_OK) {
			FBXT_CHECK(0, "get_command %llu failed",
			    (unsigned long long)id);
			fbx_console_rep_free(&rep);
			break;
		}
		for (size_t i = 0; i < rep.u.command.ndlv; i++) {
			const struct fbx_delivery *d = &rep.u.command.dlv[i];
			size_t lo = 0, hi = expect->n;
			seen++;
			if (!fbx_dstate_terminal(d->state))
				open++;
			/* expect is sorted by id (list order) */
			while (lo < hi) {
				size_t mid = (lo + hi) / 2;
				int c = strcmp(expect->ids[mid], d->device);
				if (c == 0) {
					lo = mid;
					hi = mid + 1;
					break;
				}
				if (c < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < expect->n &&
			    strcmp(expect->ids[lo], d->device) == 0) {
				if (mark[lo]++)
					dup++;
			} else {
				foreign++;
			}
		}
		after = rep.u.command.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			break;
	}
	FBXT_CHECK(seen == expect->n, "command %llu: %zu outcomes, %zu "
	    "devices targeted", (unsigned long long)id, seen, expect->n);
	FBXT_CHECK(dup == 0, "%zu devices got two deliveries", dup);
	FBXT_CHECK(foreign == 0, "%zu deliveries to untargeted devices",
	    foreign);
	FBXT_CHECK(open == 0, "%zu outcomes not terminal", open);
	free(mark);
}

static void
free_page(struct devpage *p)
{
	free(p->ids);
	free(p->platform);
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_command info;
	struct fbxt_report rep;
	struct devpage one, sales, android, all[ORGS];
	uint64_t cid_one, cid_sales, cid_android, cid_exp, cid_org[ORGS];
	uint64_t expect_org[ORGS];
	uint32_t count;
	char org[ORGS][16], report[400];
	const char *ids[1], *checkin_s, *env;
	char devices[16];
	unsigned long ndev = DEVICES_DEFAULT;
	int rc;

	memset(expect_org, 0, sizeof(expect_org));
	memset(all, 0, sizeof(all));
	memset(&one, 0, sizeof(one));
	memset(&sales, 0, sizeof(sales));
	memset(&android, 0, sizeof(android));
	memset(&info, 0, sizeof(info));
	for (int i = 0; i < ORGS; i++)
		snprintf(org[i], sizeof(org[i]), "org-%03d", i + 1);
	/* issue 13: the PostgreSQL run (tests/CMakeLists.txt: e2e_pg_test)
	 * makes the fleet and its check-in rate smaller, see below */
	env = getenv("FBX_E2E_DEVICES");
	if (env != NULL && strtoul(env, NULL, 10) >= 40 * ORGS)
		ndev = strtoul(env, NULL, 10);
	snprintf(devices, sizeof(devices), "%lu", ndev);
	if (fbxt_setup(&t, "e2e") != 0 || fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", devices, "--orgs",
	    "40", "--seed", "7", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enrollment exit status %d", rc);

	/* a command past its TTL expires; no gateway is connected yet */
	FBXT_CHECK(list_all(&t, org[39], NULL, &all[39]) == 0, "list");
	ids[0] = all[39].ids[0];
	rc = fbxt_submit(&t, org[39], FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, NULL, &cid_exp, &count);
	FBXT_CHECK(rc == FBX_OK && count == 1, "submit rc %d", rc);
	{
		struct fbx_console_req req;
		struct fbx_console_rep r;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_SUBMIT;
		req.u.submit.cmd.type = FBX_CMD_QUERY;
		req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
		req.u.submit.cmd.ttl_s = 1;
		req.u.submit.cmd.dev_ids = calloc(1, sizeof(fbx_id));
		snprintf(req.u.submit.cmd.dev_ids[0], sizeof(fbx_id), "%s",
		    ids[0]);
		req.u.submit.cmd.ndev_ids = 1;
		rc = fbxt_call(&t, org[39], &req, &r);
		FBXT_CHECK(rc == FBX_OK, "ttl submit rc %d", rc);
		cid_exp = r.u.submit.command_id;
		fbx_console_rep_free(&r);
		free(req.u.submit.cmd.dev_ids);
	}
	rc = fbxt_wait_settled(&t, org[39], cid_exp, 10000, &info);
	FBXT_CHECK(rc == 0 && info.counts[FBX_D_EXPIRED] == 1 &&
	        info.state == FBX_C_DONE,
	    "ttl command: rc %d, expired %u, state %d", rc,
	    info.counts[FBX_D_EXPIRED], info.state);
	/* the first command (ttl 3600) is still queued: no gateway yet;
	 * it will be delivered once the simulator connects */
	expect_org[39] += 1;

	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	/* every online device checks in every checkin_s seconds, offline
	 * ones once after about checkin_s: 1 is 30,000 check-ins a second,
	 * three store reads each (the device, its rewrite, its pending
	 * list), nothing for LMDB but more round trips than a PostgreSQL
	 * server answers. There the engine's turns grow past the gateway's
	 * heartbeat, the simulator reconnects and resends, and the run
	 * never settles; FBX_E2E_CHECKIN_S and FBX_E2E_DEVICES keep the
	 * check-ins a small share of what the server answers */
	checkin_s = getenv("FBX_E2E_CHECKIN_S");
	if (checkin_s == NULL || atoi(checkin_s) < 1)
		checkin_s = "1";
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", devices, "--orgs",
	    "40", "--seed", "7", "--fail-ratio", "0.02", "--offline-ratio",
	    "0.02", "--checkin-interval-s", checkin_s, "--report", report,
	    "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator start");

	/* one device */
	FBXT_CHECK(list_all(&t, org[0], NULL, &one) == 0, "list org-001");
	one.n = 1;
	ids[0] = one.ids[0];
	rc = fbxt_submit(&t, org[0], FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_DEVICES, NULL, ids, 1, "one-device", &cid_one, &count);
	FBXT_CHECK(rc == FBX_OK && count == 1, "one device: rc %d count %u",
	    rc, count);
	expect_org[0] += 1;

	/* one group */
	FBXT_CHECK(list_all(&t, org[1], "sales", &sales) == 0, "list sales");
	FBXT_CHECK(sales.n > 0, "group sales of org-002 is empty");
	rc = fbxt_submit(&t, org[1], FBX_CMD_INSTALL_APP, FBX_ORIGIN_OPERATOR,
	    FBX_TARGET_GROUP, "sales", NULL, 0, NULL, &cid_sales, &count);
	FBXT_CHECK(rc == FBX_OK && count == sales.n,
	    "group: rc %d count %u expected %zu", rc, count, sales.n);
	expect_org[1] += sales.n;

	/* one platform of an organisation */
	{
		struct devpage a4;
		struct fbx_console_req req;
		struct fbx_console_rep r;
		FBXT_CHECK(list_all(&t, org[3], NULL, &a4) == 0, "list");
		memset(&android, 0, sizeof(android));
		android.ids = calloc(a4.n, sizeof(fbx_id));
		for (size_t i = 0; i < a4.n; i++) {
			if (a4.platform[i] == FBX_PLATFORM_ANDROID)
				memcpy(android.ids[android.n++], a4.ids[i],
				    sizeof(fbx_id));
		}
		free_page(&a4);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_SUBMIT;
		req.u.submit.cmd.type = FBX_CMD_SET_POLICY;
		req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
		req.u.submit.cmd.platform = FBX_PLATFORM_ANDROID;
		req.u.submit.cmd.payload = (uint8_t *)"{\"camera\":false}";
		req.u.submit.cmd.payload_len = 16;
		rc = fbxt_call(&t, org[3], &req, &r);
		cid_android = r.u.submit.command_id;
		FBXT_CHECK(rc == FBX_OK && r.u.submit.device_count == android.n,
		    "platform: rc %d count %u expected %zu", rc,
		    r.u.submit.device_count, android.n);
		fbx_console_rep_free(&r);
		expect_org[3] += android.n;
	}

	/* every organisation, whole fleet */
	for (int i = 0; i < ORGS; i++) {
		if (all[i].ids == NULL)
			FBXT_CHECK(list_all(&t, org[i], NULL, &all[i]) == 0,
			    "list %s", org[i]);
		rc = fbxt_submit(&t, org[i], FBX_CMD_OS_UPDATE,
		    FBX_ORIGIN_SCHEDULED, FBX_TARGET_ORG, NULL, NULL, 0, NULL,
		    &cid_org[i], &count);
		FBXT_CHECK(rc == FBX_OK, "org %s submit rc %d", org[i], rc);
		expect_org[i] += all[i].n;
	}

	/* everything settles: every delivery terminal */
	rc = fbxt_wait_settled(&t, org[0], cid_one, 60000, &info);
	FBXT_CHECK(rc == 0 && info.ndeliveries == 1, "one-device command");
	check_deliveries(&t, org[0], cid_one, &one);
	rc = fbxt_wait_settled(&t, org[1], cid_sales, 60000, &info);
	FBXT_CHECK(rc == 0, "group command did not settle");
	check_deliveries(&t, org[1], cid_sales, &sales);
	rc = fbxt_wait_settled(&t, org[3], cid_android, 60000, &info);
	FBXT_CHECK(rc == 0, "platform command did not settle");
	check_deliveries(&t, org[3], cid_android, &android);
	{
		uint64_t total = 0, ok = 0, failed = 0;
		for (int i = 0; i < ORGS; i++) {
			rc = fbxt_wait_settled(
			    &t, org[i], cid_org[i], 120000, &info);
			FBXT_CHECK(rc == 0 && info.state == FBX_C_DONE,
			    "%s whole-org command: state %d", org[i],
			    info.state);
			FBXT_CHECK(info.ndeliveries == all[i].n,
			    "%s: %u deliveries for %zu devices", org[i],
			    info.ndeliveries, all[i].n);
			total += info.ndeliveries;
			ok += info.counts[FBX_D_SUCCEEDED];
			failed += info.counts[FBX_D_FAILED];
			check_deliveries(&t, org[i], cid_org[i], &all[i]);
		}
		FBXT_CHECK(total == ndev, "fleet total %llu of %lu",
		    (unsigned long long)total, ndev);
		FBXT_CHECK(ok + failed == total, "outcomes %llu + %llu",
		    (unsigned long long)ok, (unsigned long long)failed);
		FBXT_CHECK(failed > 0, "fail ratio 0.02 produced no failure");
	}

	/* organisations are isolated: org-001 cannot see org-002's command */
	{
		struct fbx_console_req req;
		struct fbx_console_rep r;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = cid_sales;
		rc = fbxt_call(&t, org[0], &req, &r);
		FBXT_CHECK(rc == FBX_ENOT_FOUND, "cross-org get: rc %d", rc);
		fbx_console_rep_free(&r);
	}

	/* what the devices saw */
	rc = fbxt_sim_stop(&t);
	FBXT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "simulator status %d",
	    rc);
	FBXT_CHECK(fbxt_report_read(report, &rep) == 0, "no report");
	{
		uint64_t want = 0;
		for (int i = 0; i < ORGS; i++)
			want += expect_org[i];
		FBXT_CHECK(rep.distinct == want, "devices saw %llu delivery "
		    "ids, expected %llu", (unsigned long long)rep.distinct,
		    (unsigned long long)want);
		FBXT_CHECK(rep.foreign == 0, "%llu deliveries to unknown "
		    "devices", (unsigned long long)rep.foreign);
		FBXT_CHECK(rep.dup_after_success == 0, "%llu duplicates after "
		    "a durable success", (unsigned long long)rep.dup_after_success);
		for (size_t k = 0; k < rep.norgs; k++) {
			int i = atoi(rep.orgs[k].org + 4) - 1;
			if (i < 0 || i >= ORGS)
				continue;
			FBXT_CHECK(rep.orgs[k].distinct == expect_org[i],
			    "%s: devices saw %llu ids, expected %llu",
			    rep.orgs[k].org,
			    (unsigned long long)rep.orgs[k].distinct,
			    (unsigned long long)expect_org[i]);
		}
	}
out:
	fbxt_teardown(&t);
	for (int i = 0; i < ORGS; i++)
		free_page(&all[i]);
	free_page(&one);
	free_page(&sales);
	free_page(&android);
	return fbxt_done();
}
