/*
 * rollback_test.c: recovery from an incident with one operator action,
 * and the audit trail that records it, with the real binaries.
 * - an automatic-lock storm trips the breakers; a rollback of the
 *   incident (dry run, then execute) discards what was held and unlocks
 *   every device that was locked; running it again compensates nothing
 *   twice; a kill -9 right after it loses nothing;
 * - set_policy rolls back to each device's previous value, devices
 *   changed since by a later command are left alone; wipe is listed as
 *   irreversible; install_app is undone with remove_app;
 * - replay re-sends with the original delivery ids, never a terminal one
 *   unless forced;
 * - export pages through JSON Lines; the audit chain verifies, and an
 *   edit made directly in LMDB is caught at the record it touched.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <lmdb.h>

#include "harness.h"

#define ORGS 6
#define REASON "attestation_failed"

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static size_t
ids_of(struct fbxt_env *t, const char *org, fbx_id *out, size_t max)
{
	char after[FBX_ID_MAX + 1] = "";
	size_t n = 0;

	while (n < max) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_DEVICES;
		req.u.list_devices.limit = 1000;
		snprintf(req.u.list_devices.after,
		    sizeof(req.u.list_devices.after), "%s", after);
		if (fbxt_call(t, org, &req, &rep) != FBX_OK) {
			fbx_console_rep_free(&rep);
			break;
		}
		for (size_t i = 0; i < rep.u.devices.n && n < max; i++)
			memcpy(out[n++], rep.u.devices.devs[i].id, sizeof(fbx_id));
		snprintf(after, sizeof(after), "%s", rep.u.devices.next_after);
		fbx_console_rep_free(&rep);
		if (after[0] == '\0')
			break;
	}
	return n;
}

static int
submit(struct fbxt_env *t, const char *org, int type, int origin,
    fbx_id *ids, size_t n, const char *payload, uint64_t *id, int *state)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	snprintf(req.actor, sizeof(req.actor), "%s",
	    origin == FBX_ORIGIN_AUTOMATIC ? "attestation-rule" : "erin");
	req.u.submit.cmd.type = (uint8_t)type;
	req.u.submit.cmd.origin = (uint8_t)origin;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	if (origin == FBX_ORIGIN_AUTOMATIC)
		snprintf(req.u.submit.cmd.reason,
		    sizeof(req.u.submit.cmd.reason), REASON);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = (uint32_t)n;
	if (payload != NULL) {
		req.u.submit.cmd.payload = (uint8_t *)payload;
		req.u.submit.cmd.payload_len = (uint32_t)strlen(payload);
	}
	rc = fbxt_call(t, org, &req, &rep);
	if (rc == FBX_OK) {
		*id = rep.u.submit.command_id;
		if (state != NULL)
			*state = rep.u.submit.state;
	}
	fbx_console_rep_free(&rep);
	return rc;
}

static int
rollback(struct fbxt_env *t, const char *org, uint64_t *cmds, size_t ncmds,
    int incident, int execute, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	snprintf(req.actor, sizeof(req.actor), "frank");
	if (incident) {
		snprintf(req.u.rollback.sel.breaker,
		    sizeof(req.u.rollback.sel.breaker), REASON);
		req.u.rollback.sel.breaker_global = 1;
	} else {
		req.u.rollback.sel.command_ids = cmds;
		req.u.rollback.sel.ncommand_ids = ncmds;
	}
	req.u.rollback.execute = execute;
	req.u.rollback.limit = 1000;
	snprintf(req.u.rollback.note, sizeof(req.u.rollback.note),
	    "attestation certificate expired");
	return fbxt_call(t, org, &req, rep);
}

/* no_settle - the reason's settle delay off (issue 9 settles automatic
 * locks 30 s by default): this test is about what the breakers admitted
 * and held at submit, and what the rollback then does with each. */
static int
no_settle(struct fbxt_env *t, const char *org, int global)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	snprintf(req.actor, sizeof(req.actor), "frank");
	req.u.breaker.op = FBX_BRK_CONFIGURE;
	req.u.breaker.global = global;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), REASON);
	snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
	    "rollback test: no settle delay");
	req.u.breaker.cfg.settle_set = 1;
	req.u.breaker.cfg.settle_s = 0;
	rc = fbxt_call(t, org, &req, &rep);
	fbx_console_rep_free(&rep);
	return rc;
}

static void
wait_cmds(struct fbxt_env *t, const char *org, const uint64_t *ids,
    size_t n)
{
	for (size_t i = 0; i < n; i++)
		FBXT_CHECK(fbxt_wait_settled(t, org, ids[i], 60000, NULL) == 0,
		    "%s: command %llu did not finish", org,
		    (unsigned long long)ids[i]);
}

/* tamper - change one byte of audit record `seq` directly in LMDB, as
 * someone with file access would (the daemon is stopped). */
static int
tamper(const char *db, uint64_t seq)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k, v, nv;
	uint8_t kb[8], buf[2048];
	int rc;

	for (int i = 0; i < 8; i++)
		kb[i] = (uint8_t)(seq >> (56 - 8 * i));
	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 32);
	mdb_env_set_mapsize(env, 1ull << 32);
	rc = mdb_env_open(env, db, 0, 0640);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "audit", 0, &dbi);
	k.mv_size = 8;
	k.mv_data = kb;
	if (rc == 0)
		rc = mdb_get(txn, dbi, &k, &v);
	if (rc == 0 && v.mv_size <= sizeof(buf) && v.mv_size > 80) {
		memcpy(buf, v.mv_data, v.mv_size);
		buf[v.mv_size - 2] ^= 0x01; /* a byte of the params */
		nv.mv_size = v.mv_size;
		nv.mv_data = buf;
		rc = mdb_put(txn, dbi, &k, &nv, 0);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_console_rep rep;
	struct fbxt_report r;
	char report[400], org[ORGS][16];
	static fbx_id ids[ORGS][400];
	size_t nids[ORGS];
	uint32_t admitted[ORGS], held[ORGS];
	uint64_t id;
	int rc, state = 0;

	memset(admitted, 0, sizeof(admitted));
	memset(held, 0, sizeof(held));
	if (fbxt_setup(&t, "rollback") != 0 ||
	    fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "2400", "--orgs",
	    "6", "--seed", "4", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "2400", "--orgs",
	    "6", "--seed", "4", "--report", report, "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator start");
	for (int i = 0; i < ORGS; i++) {
		snprintf(org[i], sizeof(org[i]), "org-%03d", i + 1);
		nids[i] = ids_of(&t, org[i], ids[i], 400);
		FBXT_CHECK(nids[i] == 400, "%s has %zu devices", org[i], nids[i]);
		/* the settle delay is the global breaker's only */
		FBXT_CHECK(no_settle(&t, org[i], 0) == FBX_EINVAL,
		    "settle on an organisation's breaker refused");
	}
	FBXT_CHECK(no_settle(&t, org[0], 1) == FBX_OK, "global settle off");

	/* the storm: every device, automatic locks, interleaved */
	for (size_t k = 0; k < 400; k++) {
		for (int i = 0; i < ORGS; i++) {
			rc = submit(&t, org[i], FBX_CMD_LOCK,
			    FBX_ORIGIN_AUTOMATIC, &ids[i][k], 1, NULL, &id,
			    &state);
			FBXT_CHECK(rc == FBX_OK, "storm rc %d", rc);
			if (state == FBX_C_HELD)
				held[i]++;
			else
				admitted[i]++;
		}
	}
	sleep_ms(1500); /* admitted locks reach their devices */

	/* the plan of the incident rollback, per organisation: nothing
	 * happens yet */
	for (int i = 0; i < ORGS; i++) {
		rc = rollback(&t, org[i], NULL, 0, 1, 0, &rep);
		FBXT_CHECK(rc == FBX_OK && !rep.u.rollback.executed,
		    "%s plan rc %d", org[i], rc);
		FBXT_CHECK(rep.u.rollback.per_action[FBX_RB_COMPENSATE] ==
		        admitted[i],
		    "%s: plan compensates %u, %u were locked", org[i],
		    rep.u.rollback.per_action[FBX_RB_COMPENSATE], admitted[i]);
		FBXT_CHECK(rep.u.rollback.per_action[FBX_RB_CANCEL] == held[i],
		    "%s: plan cancels %u, %u held", org[i],
		    rep.u.rollback.per_action[FBX_RB_CANCEL], held[i]);
		fbx_console_rep_free(&rep);
	}
	/* execute; kill -9 right after the first answer: nothing lost */
	for (int i = 0; i < ORGS; i++) {
		rc = rollback(&t, org[i], NULL, 0, 1, 1, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.u.rollback.executed &&
		        rep.u.rollback.ncomp == (admitted[i] ? 1u : 0u),
		    "%s execute rc %d comp %zu", org[i], rc,
		    rep.u.rollback.ncomp);
		fbx_console_rep_free(&rep);
		if (i == 0) {
			rc = fbxt_daemon_kill(&t, SIGKILL);
			FBXT_CHECK(WIFSIGNALED(rc), "kill");
			FBXT_CHECK(fbxt_daemon_start(&t, NULL) == 0, "restart");
		}
	}
	/* running it again compensates nothing twice */
	for (int i = 0; i < ORGS; i++) {
		rc = rollback(&t, org[i], NULL, 0, 1, 1, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.u.rollback.ncomp == 0 &&
		        rep.u.rollback.per_action[FBX_RB_DONE_BEFORE] ==
		            admitted[i] &&
		        rep.u.rollback.per_action[FBX_RB_COMPENSATE] == 0,
		    "%s second run: comp %zu before %u", org[i],
		    rep.u.rollback.ncomp,
		    rep.u.rollback.per_action[FBX_RB_DONE_BEFORE]);
		fbx_console_rep_free(&rep);
	}
	{
		struct fbx_console_req req;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_HELD;
		rc = fbxt_call(&t, org[0], &req, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.u.commands.n == 0,
		    "held after rollback: %zu", rep.u.commands.n);
		fbx_console_rep_free(&rep);
	}

	/* set_policy: back to each device's previous value; a device
	 * changed since by a later command is left alone */
	{
		uint64_t p1, p2, p0;
		fbx_id *d = ids[1];
		rc = submit(&t, org[1], FBX_CMD_SET_POLICY, FBX_ORIGIN_OPERATOR,
		    d, 10, "camera=on", &p0, NULL);
		FBXT_CHECK(rc == FBX_OK, "policy 0 rc %d", rc);
		wait_cmds(&t, org[1], &p0, 1);
		rc = submit(&t, org[1], FBX_CMD_SET_POLICY, FBX_ORIGIN_OPERATOR,
		    d, 10, "camera=off", &p1, NULL);
		FBXT_CHECK(rc == FBX_OK, "policy 1 rc %d", rc);
		wait_cmds(&t, org[1], &p1, 1);
		rc = submit(&t, org[1], FBX_CMD_SET_POLICY, FBX_ORIGIN_OPERATOR,
		    d, 2, "camera=blocked", &p2, NULL);
		wait_cmds(&t, org[1], &p2, 1);
		rc = rollback(&t, org[1], &p1, 1, 0, 1, &rep);
		FBXT_CHECK(rc == FBX_OK &&
		        rep.u.rollback.per_action[FBX_RB_COMPENSATE] == 8 &&
		        rep.u.rollback.per_action[FBX_RB_CHANGED] == 2 &&
		        rep.u.rollback.ncomp == 1,
		    "policy rollback: comp %u changed %u",
		    rep.u.rollback.per_action[FBX_RB_COMPENSATE],
		    rep.u.rollback.per_action[FBX_RB_CHANGED]);
		{
			int restore = 0;
			for (size_t k = 0; k < rep.u.rollback.nrows; k++)
				if (rep.u.rollback.rows[k].action ==
				        FBX_RB_COMPENSATE &&
				    strstr(rep.u.rollback.rows[k].detail,
				        "camera=on") != NULL)
					restore++;
			FBXT_CHECK(restore == 8, "%d rows restore camera=on",
			    restore);
		}
		if (rep.u.rollback.ncomp == 1) {
			uint64_t c = rep.u.rollback.comp_ids[0];
			fbx_console_rep_free(&rep);
			wait_cmds(&t, org[1], &c, 1);
		} else {
			fbx_console_rep_free(&rep);
		}
	}
	/* wipe cannot be undone; install_app is undone with remove_app */
	{
		uint64_t w, a;
		rc = submit(&t, org[2], FBX_CMD_WIPE, FBX_ORIGIN_OPERATOR,
		    &ids[2][390], 2, NULL, &w, NULL);
		FBXT_CHECK(rc == FBX_OK, "wipe rc %d", rc);
		rc = submit(&t, org[2], FBX_CMD_INSTALL_APP, FBX_ORIGIN_OPERATOR,
		    &ids[2][380], 5, "com.example.crm", &a, NULL);
		FBXT_CHECK(rc == FBX_OK, "install rc %d", rc);
		wait_cmds(&t, org[2], &w, 1);
		wait_cmds(&t, org[2], &a, 1);
		{
			uint64_t both[2] = { w, a };
			rc = rollback(&t, org[2], both, 2, 0, 0, &rep);
		}
		FBXT_CHECK(rc == FBX_OK &&
		        rep.u.rollback.per_action[FBX_RB_IRREVERSIBLE] == 2 &&
		        rep.u.rollback.per_action[FBX_RB_COMPENSATE] == 5,
		    "wipe+install plan: irreversible %u compensate %u",
		    rep.u.rollback.per_action[FBX_RB_IRREVERSIBLE],
		    rep.u.rollback.per_action[FBX_RB_COMPENSATE]);
		for (size_t k = 0; k < rep.u.rollback.nrows; k++) {
			const struct fbx_rb_row *w2 = &rep.u.rollback.rows[k];
			if (w2->action == FBX_RB_COMPENSATE)
				FBXT_CHECK(w2->comp_type == FBX_CMD_REMOVE_APP,
				    "install_app compensated by %d",
				    w2->comp_type);
		}
		fbx_console_rep_free(&rep);
		/* replay: terminal deliveries only when forced */
		{
			struct fbx_console_req req;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_REPLAY;
			req.u.replay.sel.command_ids = &a;
			req.u.replay.sel.ncommand_ids = 1;
			req.u.replay.state = FBX_D_SUCCEEDED;
			req.u.replay.execute = 1;
			rc = fbxt_call(&t, org[2], &req, &rep);
			FBXT_CHECK(rc == FBX_OK && rep.u.replay.matched == 5 &&
			        rep.u.replay.resent == 0 &&
			        rep.u.replay.skipped_terminal == 5,
			    "replay unforced: rc %d %u/%u/%u", rc,
			    rep.u.replay.matched, rep.u.replay.resent,
			    rep.u.replay.skipped_terminal);
			fbx_console_rep_free(&rep);
			req.u.replay.force = 1;
			rc = fbxt_call(&t, org[2], &req, &rep);
			FBXT_CHECK(rc == FBX_OK && rep.u.replay.resent == 5,
			    "replay forced: rc %d resent %u", rc,
			    rep.u.replay.resent);
			fbx_console_rep_free(&rep);
			wait_cmds(&t, org[2], &a, 1);
		}
	}

	/* partial rollback by filter: start_lost_mode on 4 devices of
	 * org-004, rolled back only for the devices in group "sales" */
	{
		struct fbx_console_req req;
		fbx_id sales[2], others[2], four[4];
		size_t ns = 0, no = 0;
		uint64_t lm;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_DEVICES;
		req.u.list_devices.limit = 1000;
		rc = fbxt_call(&t, org[3], &req, &rep);
		for (size_t k = 0; rc == FBX_OK && k < rep.u.devices.n; k++) {
			const struct fbx_device *d = &rep.u.devices.devs[k];
			int in_sales = 0;
			for (unsigned g = 0; g < d->ngroups; g++)
				if (strcmp(d->groups[g], "sales") == 0)
					in_sales = 1;
			if (in_sales && ns < 2)
				memcpy(sales[ns++], d->id, sizeof(fbx_id));
			else if (!in_sales && no < 2)
				memcpy(others[no++], d->id, sizeof(fbx_id));
		}
		fbx_console_rep_free(&rep);
		FBXT_CHECK(ns == 2 && no == 2, "devices: %zu in sales, %zu not",
		    ns, no);
		memcpy(four[0], sales[0], sizeof(fbx_id));
		memcpy(four[1], sales[1], sizeof(fbx_id));
		memcpy(four[2], others[0], sizeof(fbx_id));
		memcpy(four[3], others[1], sizeof(fbx_id));
		rc = submit(&t, org[3], FBX_CMD_START_LOST_MODE,
		    FBX_ORIGIN_OPERATOR, four, 4, NULL, &lm, NULL);
		FBXT_CHECK(rc == FBX_OK, "lost mode rc %d", rc);
		wait_cmds(&t, org[3], &lm, 1);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		snprintf(req.actor, sizeof(req.actor), "frank");
		req.u.rollback.sel.type = FBX_CMD_START_LOST_MODE;
		snprintf(req.u.rollback.sel.group,
		    sizeof(req.u.rollback.sel.group), "sales");
		req.u.rollback.execute = 1;
		req.u.rollback.limit = 100;
		rc = fbxt_call(&t, org[3], &req, &rep);
		FBXT_CHECK(rc == FBX_OK &&
		        rep.u.rollback.per_action[FBX_RB_COMPENSATE] == 2 &&
		        rep.u.rollback.nrows == 2 && rep.u.rollback.ncomp == 1,
		    "partial rollback: rc %d compensate %u rows %zu",
		    rc, rep.u.rollback.per_action[FBX_RB_COMPENSATE],
		    rep.u.rollback.nrows);
		for (size_t k = 0; rc == FBX_OK && k < rep.u.rollback.nrows; k++)
			FBXT_CHECK(rep.u.rollback.rows[k].comp_type ==
			            FBX_CMD_STOP_LOST_MODE &&
			        (strcmp(rep.u.rollback.rows[k].device, sales[0]) ==
			                0 ||
			            strcmp(rep.u.rollback.rows[k].device,
			                sales[1]) == 0),
			    "row %zu: device %s comp %d", k,
			    rep.u.rollback.rows[k].device,
			    rep.u.rollback.rows[k].comp_type);
		if (rc == FBX_OK && rep.u.rollback.ncomp == 1) {
			uint64_t c = rep.u.rollback.comp_ids[0];
			struct fbx_command info;
			fbx_console_rep_free(&rep);
			FBXT_CHECK(fbxt_wait_settled(&t, org[3], c, 60000,
			                &info) == 0 &&
			        info.type == FBX_CMD_STOP_LOST_MODE &&
			        info.ndeliveries == 2 &&
			        info.origin == FBX_ORIGIN_ROLLBACK,
			    "compensation: type %d deliveries %u origin %d",
			    info.type, info.ndeliveries, info.origin);
		} else {
			fbx_console_rep_free(&rep);
		}
	}

	/* an operator's unlock of devices the operator had locked, rolled
	 * back by filter: each is locked again (the rule that leaves a lock
	 * of a device locked before it must not leave an unlock: it did,
	 * "locked before it too") */
	{
		struct fbx_console_req req;
		uint64_t lk = 0, ul = 0;
		rc = submit(&t, org[4], FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
		    &ids[4][397], 3, NULL, &lk, NULL);
		FBXT_CHECK(rc == FBX_OK, "operator lock rc %d", rc);
		wait_cmds(&t, org[4], &lk, 1);
		rc = submit(&t, org[4], FBX_CMD_UNLOCK, FBX_ORIGIN_OPERATOR,
		    &ids[4][397], 3, NULL, &ul, NULL);
		FBXT_CHECK(rc == FBX_OK, "operator unlock rc %d", rc);
		wait_cmds(&t, org[4], &ul, 1);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		snprintf(req.actor, sizeof(req.actor), "frank");
		req.u.rollback.sel.type = FBX_CMD_UNLOCK;
		req.u.rollback.sel.origin = FBX_ORIGIN_OPERATOR;
		req.u.rollback.limit = 100;
		rc = fbxt_call(&t, org[4], &req, &rep);
		FBXT_CHECK(rc == FBX_OK &&
		        rep.u.rollback.per_action[FBX_RB_COMPENSATE] == 3 &&
		        rep.u.rollback.per_action[FBX_RB_NOTHING] == 0,
		    "rollback of an unlock: rc %d compensate %u nothing %u", rc,
		    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_COMPENSATE]
		                 : 0,
		    rc == FBX_OK ? rep.u.rollback.per_action[FBX_RB_NOTHING]
		                 : 0);
		fbx_console_rep_free(&rep);
	}

	/* export pages through JSON Lines */
	{
		struct fbx_console_req req;
		uint64_t cursor = 0;
		size_t cmds = 0, dlvs = 0, audits = 0, pages = 0;
		do {
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_EXPORT;
			req.u.export_.cursor = cursor;
			req.u.export_.max_bytes = 4096; /* pages end inside commands */
			rc = fbxt_call(&t, org[1], &req, &rep);
			if (rc != FBX_OK) {
				FBXT_CHECK(0, "export rc %d", rc);
				break;
			}
			for (const char *p = rep.u.export_.jsonl;
			    p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
				if (strncmp(p, "{\"kind\":\"command\"", 17) == 0)
					cmds++;
				else if (strncmp(p, "{\"kind\":\"delivery\"", 18) == 0)
					dlvs++;
				else if (strncmp(p, "{\"kind\":\"audit\"", 15) == 0)
					audits++;
			}
			cursor = rep.u.export_.next_cursor;
			fbx_console_rep_free(&rep);
			pages++;
		} while (cursor != 0 && pages < 1000);
		fprintf(stderr, "export org-002: %zu pages, %zu commands, %zu "
		                "deliveries, %zu audit records\n",
		    pages, cmds, dlvs, audits);
		/* exactly what the journal holds: every command and every
		 * delivery, across page boundaries inside commands */
		{
			size_t want_cmds = 0, want_dlvs = 0;
			uint64_t after = 0;
			for (;;) {
				memset(&req, 0, sizeof(req));
				req.kind = FBX_CREQ_LIST_COMMANDS;
				req.u.list.limit = 1000;
				req.u.list.after = after;
				if (fbxt_call(&t, org[1], &req, &rep) != FBX_OK)
					break;
				for (size_t k = 0; k < rep.u.commands.n; k++) {
					want_cmds++;
					want_dlvs +=
					    rep.u.commands.cmds[k].ndeliveries;
				}
				after = rep.u.commands.next_after;
				fbx_console_rep_free(&rep);
				if (after == 0)
					break;
			}
			FBXT_CHECK(pages > 1 && cmds == want_cmds &&
			        dlvs == want_dlvs && audits >= 400,
			    "export: %zu pages, %zu/%zu commands, %zu/%zu "
			    "deliveries, %zu audit",
			    pages, cmds, want_cmds, dlvs, want_dlvs, audits);
		}
	}

	/* the devices: every wrongly locked one is unlocked again */
	sleep_ms(1000);
	rc = fbxt_sim_stop(&t);
	FBXT_CHECK(fbxt_report_read(report, &r) == 0, "report");
	{
		FILE *f = fopen(report, "r");
		char line[512];
		int orgs_seen = 0;
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			const char *p = strstr(line, "locked_now=");
			if (strncmp(line, "org=", 4) != 0 || p == NULL)
				continue;
			orgs_seen++;
			FBXT_CHECK(atoi(p + 11) == 0, "still locked: %s", line);
		}
		if (f != NULL)
			fclose(f);
		FBXT_CHECK(orgs_seen == ORGS, "report has %d org lines",
		    orgs_seen);
	}
	/* exactly the five forced replays went out again after success */
	FBXT_CHECK(r.dup_after_success == 5, "re-sent after success %llu",
	    (unsigned long long)r.dup_after_success);

	/* the audit chain: intact, then tampered in LMDB and caught */
	{
		struct fbx_console_req req;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_VERIFY;
		/* an explicit slice is served whole (the default one also
		 * ends after 50 ms of work, which a loaded machine reaches
		 * before 2,400 records) */
		req.u.audit_verify.max_records = FBX_VERIFY_SLICE_MAX;
		rc = fbxt_call(&t, org[0], &req, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.u.verify.broken_at == 0 &&
		        rep.u.verify.records > 2400,
		    "verify intact: rc %d records %llu broken %llu", rc,
		    (unsigned long long)rep.u.verify.records,
		    (unsigned long long)rep.u.verify.broken_at);
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		snprintf(req.u.audit_list.action, sizeof(req.u.audit_list.action),
		    "rollback");
		rc = fbxt_call(&t, org[0], &req, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.u.audit.n == 2 &&
		        strcmp(rep.u.audit.r[0].actor, "frank") == 0,
		    "audit list rollback: rc %d n %zu", rc, rep.u.audit.n);
		/* a one-organisation slice's record has the keys
		 * operations.md documents, spelled as documented */
		for (size_t i = 0; rc == FBX_OK && i < rep.u.audit.n; i++) {
			static const char *const keys[] = { "rollback_id",
				"cursor", "next_cursor", "first_command",
				"last_command", "commands", "cancelled",
				"compensated", "irreversible", "changed_since",
				"compensating_commands", "include_changed",
				"in_flight", "withdrawn", "before_onset" };
			const char *pj = rep.u.audit.r[i].params;
			for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]);
			     k++) {
				char q[40];
				snprintf(q, sizeof(q), "\"%s\":", keys[k]);
				FBXT_CHECK(strstr(pj, q) != NULL,
				    "rollback record %zu has key %s: %s", i,
				    keys[k], pj);
			}
		}
		fbx_console_rep_free(&rep);
		rc = fbxt_daemon_kill(&t, SIGTERM);
		FBXT_CHECK(tamper(t.db, 1000) == 0, "tamper");
		FBXT_CHECK(fbxt_daemon_start(&t, NULL) == 0, "restart");
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_VERIFY;
		rc = fbxt_call(&t, org[0], &req, &rep);
		FBXT_CHECK(rc == FBX_OK && rep.u.verify.broken_at == 1000,
		    "tampered chain: broken at %llu (%s)",
		    (unsigned long long)rep.u.verify.broken_at,
		    rep.u.verify.why);
		fbx_console_rep_free(&rep);
	}
out:
	fbxt_teardown(&t);
	return fbxt_done();
}
