/*
 * rollback_incident_test.c: incident-exact recovery (issue 9) with the
 * real binaries. Baseline automatic locks of a reason, then a storm of
 * the same reason; the global breaker's record is given an onset between
 * the two (written in LMDB while the daemon is stopped, so the test does
 * not depend on how the change point is computed or on timing):
 * - the plan lists the baseline as "before onset", --execute unlocks the
 *   storm and leaves the baseline (and an operator lock) locked;
 *   include_before_onset selects the baseline too; a storm lock of a
 *   device the baseline had locked is not undone; a breaker record
 *   without an onset falls back to one window before the trip;
 * - an organisation held only by the global breaker rolls back its own
 *   share of the global incident (no NOT_FOUND); an affected one asking
 *   for the global incident (every_org) gets its own part, not FORBIDDEN;
 * - the admin organisation's global request is one run over every
 *   organisation: one rollback id, bounded slices with a cursor across
 *   organisations, a kill -9 in the middle, continued from the engine's
 *   journal with the rollback id alone, no device unlocked twice, one
 *   "rollback" audit record naming every affected organisation;
 * - an executed rollback that selects nothing answers NOT_FOUND, also
 *   when it took several slices to find that out, and when the
 *   incident's commands are all before the onset;
 * - fuseboxctl prints the global run as one table with a before-onset
 *   count.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <lmdb.h>

#include "harness.h"
#include "safety.h"

#define ORGS 3
#define DEVS 60 /* per organisation */
#define BASE 3  /* baseline locks per organisation */
#define REASON "attestation_failed"
#define ADMIN "org-004" /* enrolled, no incident of its own */
#define SLICE "20" /* deliveries per slice: 2 commands a slice */

static const unsigned storm_n[ORGS] = { 20, 10, 12 };
/* operator locks before the onset of devices org-001's storm locks too
 * (a lost phone): the rollback leaves those storm locks ("locked before
 * the onset too"); it unlocked them, and so the lost phone */
#define PRIOR 1
/* org-003's storm also locks one baseline device again: that lock is
 * selected but not undone (the device was locked for cause before) */
#define RELOCK 2

static int64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static size_t
ids_of(struct fbxt_env *t, const char *org, fbx_id *out, size_t max)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	size_t n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_DEVICES;
	req.u.list_devices.limit = 1000;
	if (fbxt_call(t, org, &req, &rep) == FBX_OK)
		for (size_t i = 0; i < rep.u.devices.n && n < max; i++)
			memcpy(out[n++], rep.u.devices.devs[i].id,
			    sizeof(fbx_id));
	fbx_console_rep_free(&rep);
	return n;
}

static int
lock(struct fbxt_env *t, const char *org, int origin, fbx_id *dev,
    uint64_t *id)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	snprintf(req.actor, sizeof(req.actor), "%s",
	    origin == FBX_ORIGIN_AUTOMATIC ? "attestation-rule" : "erin");
	req.u.submit.cmd.type = FBX_CMD_LOCK;
	req.u.submit.cmd.origin = (uint8_t)origin;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	if (origin == FBX_ORIGIN_AUTOMATIC)
		snprintf(req.u.submit.cmd.reason,
		    sizeof(req.u.submit.cmd.reason), REASON);
	req.u.submit.cmd.dev_ids = dev;
	req.u.submit.cmd.ndev_ids = 1;
	rc = fbxt_call(t, org, &req, &rep);
	if (rc == FBX_OK) {
		*id = rep.u.submit.command_id;
		if (rep.u.submit.state == FBX_C_HELD)
			rc = FBX_ESTATE; /* the test wants it admitted */
	}
	fbx_console_rep_free(&rep);
	return rc;
}

/* configure - the reason's breaker in shadow mode (never holds) and
 * (the global breaker's) settle delay, 0 so that every lock of the test
 * is admitted and delivered; the incident is made by writing the global
 * breaker's record. */
static int
configure(struct fbxt_env *t, const char *org, int global, uint32_t settle)
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
	snprintf(req.u.breaker.note, sizeof(req.u.breaker.note), "test");
	req.u.breaker.cfg.shadow = 1;
	/* the settle delay is the global breaker's only */
	req.u.breaker.cfg.settle_set = global ? 1 : 0;
	req.u.breaker.cfg.settle_s = settle;
	rc = fbxt_call(t, org, &req, &rep);
	if (rc != FBX_OK)
		fprintf(stderr, "configure %s: %s: %s\n", org, fbx_errname(rc),
		    rep.errmsg);
	fbx_console_rep_free(&rep);
	return rc;
}

/* unlimit - no blast-radius limit on locks (org "" = the global
 * default), so the storm is admitted: the test is about what comes
 * after. */
static int
unlimit(struct fbxt_env *t, const char *org, int global)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIMIT;
	snprintf(req.actor, sizeof(req.actor), "frank");
	req.u.limit.set = 1;
	req.u.limit.global = global;
	req.u.limit.lim.type = FBX_CMD_LOCK;
	req.u.limit.lim.max_count = 1000000;
	req.u.limit.lim.max_share_ppm = 1000000;
	req.u.limit.lim.window_s = 3600;
	rc = fbxt_call(t, org, &req, &rep);
	if (rc != FBX_OK)
		fprintf(stderr, "limit %s: %s: %s\n", org, fbx_errname(rc),
		    rep.errmsg);
	fbx_console_rep_free(&rep);
	return rc;
}

/* brk_write - give breaker <org>/REASON a trip at tripped_ms with the
 * given onset (0 = none recorded), as the engine would have recorded it;
 * the daemon is stopped. */
static int
brk_write(const char *db, const char *org, int64_t tripped_ms,
    int64_t onset_ms)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	MDB_val k, v;
	struct fbxi_breaker b;
	char key[128];
	int rc;

	snprintf(key, sizeof(key), "brk/%s/%s", org, REASON);
	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 32);
	mdb_env_set_mapsize(env, 1ull << 32);
	rc = mdb_env_open(env, db, 0, 0640);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = mdb_dbi_open(txn, "kv", 0, &dbi);
	k.mv_size = strlen(key);
	k.mv_data = key;
	if (rc == 0)
		rc = mdb_get(txn, dbi, &k, &v);
	if (rc == 0 && v.mv_size != sizeof(b))
		rc = -2;
	if (rc == 0) {
		memcpy(&b, v.mv_data, sizeof(b));
		b.trips++;
		b.tripped_ms = tripped_ms;
		b.onset_ms = onset_ms;
		b.reset_ms = 0;
		b.state = FBX_BS_OPEN;
		v.mv_size = sizeof(b);
		v.mv_data = &b;
		rc = mdb_put(txn, dbi, &k, &v, 0);
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else if (txn != NULL)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* rb_req - a rollback request of the incident. */
static void
rb_req(struct fbx_console_req *req, int every_org, int execute)
{
	memset(req, 0, sizeof(*req));
	req->kind = FBX_CREQ_ROLLBACK;
	snprintf(req->actor, sizeof(req->actor), "frank");
	snprintf(req->u.rollback.sel.breaker, sizeof(req->u.rollback.sel.breaker),
	    REASON);
	snprintf(req->u.rollback.sel.reason, sizeof(req->u.rollback.sel.reason),
	    REASON);
	req->u.rollback.sel.origin = FBX_ORIGIN_AUTOMATIC;
	req->u.rollback.sel.every_org = every_org;
	req->u.rollback.execute = execute;
	req->u.rollback.limit = 1000;
	req->u.rollback.sliced = 1;
	snprintf(req->u.rollback.note, sizeof(req->u.rollback.note),
	    "attestation certificate expired");
}

/* The sum of a run's slices. */
struct run {
	uint32_t commands, before_onset, bo_dlv, slices;
	uint32_t per[FBX_RB_COUNT];
	uint64_t comps; /* compensating commands */
	uint64_t rbid;
	int same_id, global, err;
	uint32_t org_cmds[ORGS], org_bo[ORGS];
	char why[256]; /* the error's message */
};

static int
org_index(const char *org)
{
	int i = atoi(org + 4) - 1;

	return strncmp(org, "org-", 4) == 0 && i >= 0 && i < ORGS ? i : -1;
}

static void
run_add(struct run *r, const struct fbx_rb_plan *p)
{
	r->slices++;
	r->commands += p->commands;
	r->before_onset += p->before_onset;
	r->bo_dlv += p->before_onset_deliveries;
	r->comps += p->ncomp;
	for (int k = 0; k < FBX_RB_COUNT; k++)
		r->per[k] += p->per_action[k];
	if (p->rollback_id != 0) {
		if (r->rbid != 0 && r->rbid != p->rollback_id)
			r->same_id = 0;
		r->rbid = p->rollback_id;
	}
	r->global = p->global;
	for (size_t i = 0; i < p->norgs; i++) {
		int k = org_index(p->orgs[i].org);
		if (k >= 0) {
			r->org_cmds[k] += p->orgs[i].commands;
			r->org_bo[k] += p->orgs[i].before_onset;
		}
	}
}

/* run_slices - send req slice after slice until the run is done, or
 * stop after max_slices (0 = no limit). @return the last engine code. */
static int
run_slices(struct fbxt_env *t, const char *org, struct fbx_console_req *req,
    struct run *r, unsigned max_slices)
{
	struct fbx_console_rep rep;
	int rc;

	memset(r, 0, sizeof(*r));
	r->same_id = 1;
	for (;;) {
		rc = fbxt_call(t, org, req, &rep);
		if (rc != FBX_OK) {
			snprintf(r->why, sizeof(r->why), "%s", rep.errmsg);
			fbx_console_rep_free(&rep);
			r->err = rc;
			return rc;
		}
		run_add(r, &rep.u.rollback);
		req->u.rollback.cursor = rep.u.rollback.next_cursor;
		req->u.rollback.last_command_id =
		    rep.u.rollback.next_cursor ? rep.u.rollback.last_command_id
		                               : 0;
		snprintf(req->u.rollback.org_cursor,
		    sizeof(req->u.rollback.org_cursor), "%s",
		    rep.u.rollback.next_cursor ? rep.u.rollback.next_org : "");
		if (req->u.rollback.execute && rep.u.rollback.next_cursor)
			req->u.rollback.rollback_id = r->rbid;
		fbx_console_rep_free(&rep);
		if (req->u.rollback.cursor == 0 || r->slices > 10000)
			return FBX_OK;
		if (max_slices != 0 && r->slices >= max_slices)
			return FBX_OK;
	}
}

/* rollback_cmds - the compensating commands of an organisation: their
 * devices in all. */
static uint32_t
comp_devices(struct fbxt_env *t, const char *org, uint32_t *ncmds)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint32_t n = 0;
	uint64_t after = 0;

	*ncmds = 0;
	for (;;) {
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_LIST_COMMANDS;
		req.u.list.limit = 1000;
		req.u.list.after = after;
		if (fbxt_call(t, org, &req, &rep) != FBX_OK) {
			fbx_console_rep_free(&rep);
			break;
		}
		for (size_t k = 0; k < rep.u.commands.n; k++) {
			const struct fbx_command *c = &rep.u.commands.cmds[k];
			if (c->origin != FBX_ORIGIN_ROLLBACK)
				continue;
			(*ncmds)++;
			n += c->ndeliveries;
			FBXT_CHECK(fbxt_wait_settled(t, org, c->id, 60000,
			               NULL) == 0,
			    "%s: compensation %llu did not settle", org,
			    (unsigned long long)c->id);
		}
		after = rep.u.commands.next_after;
		fbx_console_rep_free(&rep);
		if (after == 0)
			break;
	}
	return n;
}

/* wire_checks - the new rollback fields cross the wire and are
 * checked: every_org and include_before_onset need a breaker reason,
 * org_cursor a cursor, next_org a next_cursor. */
static void
wire_checks(void)
{
	struct fbx_console_req q, qo;
	struct fbx_console_rep p, po;
	struct fbx_rb_row bo[2];
	struct fbx_rb_org parts[2];
	uint64_t comp[3] = { 7, 8, 9 };
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rb_req(&q, 1, 1);
	snprintf(q.org, sizeof(q.org), "%s", ADMIN);
	q.request_id = 1;
	q.u.rollback.sel.include_before_onset = 1;
	q.u.rollback.cursor = 42;
	q.u.rollback.last_command_id = 40;
	q.u.rollback.rollback_id = 9;
	snprintf(q.u.rollback.org_cursor, sizeof(q.u.rollback.org_cursor),
	    "org-002");
	rc = fbx_console_req_encode(&q, &buf, &len);
	if (rc == FBX_OK)
		rc = fbx_console_req_decode(buf, len, &qo, NULL, 0);
	free(buf);
	FBXT_CHECK(rc == FBX_OK && qo.u.rollback.sel.every_org &&
	        qo.u.rollback.sel.include_before_onset &&
	        strcmp(qo.u.rollback.org_cursor, "org-002") == 0,
	    "request round trip rc %d", rc);
	if (rc == FBX_OK)
		fbx_console_req_free(&qo);
	/* a rollback id without a cursor: go on from the journal */
	q.u.rollback.cursor = 0;
	q.u.rollback.last_command_id = 0;
	q.u.rollback.org_cursor[0] = '\0';
	rc = fbx_console_req_encode(&q, &buf, &len);
	if (rc == FBX_OK)
		rc = fbx_console_req_decode(buf, len, &qo, NULL, 0);
	free(buf);
	FBXT_CHECK(rc == FBX_OK && qo.u.rollback.rollback_id == 9,
	    "continue request rc %d", rc);
	if (rc == FBX_OK)
		fbx_console_req_free(&qo);
	/* every_org without a breaker reason */
	q.u.rollback.sel.breaker[0] = '\0';
	q.u.rollback.sel.include_before_onset = 0;
	rc = fbx_console_req_encode(&q, &buf, &len);
	if (rc == FBX_OK)
		rc = fbx_console_req_decode(buf, len, &qo, NULL, 0);
	free(buf);
	FBXT_CHECK(rc == FBX_EINVALID, "every_org without reason: rc %d", rc);
	if (rc == FBX_OK)
		fbx_console_req_free(&qo);

	memset(&p, 0, sizeof(p));
	p.kind = FBX_CREQ_ROLLBACK;
	memset(bo, 0, sizeof(bo));
	memset(parts, 0, sizeof(parts));
	for (int i = 0; i < 2; i++) {
		bo[i].command_id = 10 + (uint64_t)i;
		bo[i].delivery_id = FBX_DLV_ID(10 + (uint64_t)i, 0);
		snprintf(bo[i].device, sizeof(bo[i].device), "d%d", i);
		bo[i].type = FBX_CMD_LOCK;
		bo[i].state = FBX_D_SUCCEEDED;
		bo[i].action = FBX_RB_COMPENSATE;
		snprintf(parts[i].org, sizeof(parts[i].org), "org-00%d", i + 1);
		parts[i].commands = 3 + (uint32_t)i;
		parts[i].per_action[FBX_RB_COMPENSATE] = 3 + (uint32_t)i;
		parts[i].before_onset = 1;
		parts[i].before_onset_deliveries = 1;
		parts[i].comp_commands = i == 0 ? 1 : 2;
	}
	p.u.rollback.executed = 1;
	p.u.rollback.rollback_id = 77;
	p.u.rollback.commands = 7;
	p.u.rollback.per_action[FBX_RB_COMPENSATE] = 7;
	p.u.rollback.comp_ids = comp;
	p.u.rollback.ncomp = 3;
	p.u.rollback.before_onset = 2;
	p.u.rollback.before_onset_deliveries = 2;
	p.u.rollback.bo_rows = bo;
	p.u.rollback.nbo_rows = 2;
	p.u.rollback.onset_ms = 1700000000000;
	p.u.rollback.since_ms = 1700000000000;
	p.u.rollback.until_ms = 1700000600000;
	snprintf(p.u.rollback.breaker, sizeof(p.u.rollback.breaker), "*/%s",
	    REASON);
	p.u.rollback.global = 1;
	p.u.rollback.next_cursor = 1;
	p.u.rollback.last_command_id = 99;
	snprintf(p.u.rollback.next_org, sizeof(p.u.rollback.next_org),
	    "org-003");
	p.u.rollback.orgs = parts;
	p.u.rollback.norgs = 2;
	rc = fbx_console_rep_encode(&p, &buf, &len);
	if (rc == FBX_OK)
		rc = fbx_console_rep_decode(buf, len, &po);
	free(buf);
	FBXT_CHECK(rc == FBX_OK && po.u.rollback.global &&
	        po.u.rollback.before_onset == 2 &&
	        po.u.rollback.nbo_rows == 2 &&
	        po.u.rollback.bo_rows[1].command_id == 11 &&
	        po.u.rollback.onset_ms == 1700000000000 &&
	        po.u.rollback.until_ms == 1700000600000 &&
	        strcmp(po.u.rollback.breaker, "*/" REASON) == 0 &&
	        strcmp(po.u.rollback.next_org, "org-003") == 0 &&
	        po.u.rollback.norgs == 2 &&
	        strcmp(po.u.rollback.orgs[1].org, "org-002") == 0 &&
	        po.u.rollback.orgs[1].per_action[FBX_RB_COMPENSATE] == 4 &&
	        po.u.rollback.orgs[1].comp_commands == 2,
	    "plan round trip rc %d", rc);
	if (rc == FBX_OK)
		fbx_console_rep_free(&po);
	/* next_org without next_cursor */
	p.u.rollback.next_cursor = 0;
	rc = fbx_console_rep_encode(&p, &buf, &len);
	if (rc == FBX_OK)
		rc = fbx_console_rep_decode(buf, len, &po);
	free(buf);
	FBXT_CHECK(rc == FBX_EINVALID, "next_org without cursor: rc %d", rc);
	if (rc == FBX_OK)
		fbx_console_rep_free(&po);
	/* a breaker that is not org/reason */
	p.u.rollback.next_cursor = 1;
	snprintf(p.u.rollback.breaker, sizeof(p.u.rollback.breaker), "%s",
	    REASON);
	rc = fbx_console_rep_encode(&p, &buf, &len);
	if (rc == FBX_OK)
		rc = fbx_console_rep_decode(buf, len, &po);
	free(buf);
	FBXT_CHECK(rc == FBX_EINVALID, "breaker not org/reason: rc %d", rc);
	if (rc == FBX_OK)
		fbx_console_rep_free(&po);
}

int
main(void)
{
	struct fbxt_env t;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct run r;
	char report[400], org[ORGS][16];
	static fbx_id ids[ORGS][DEVS];
	uint64_t id = 0, base_ids[ORGS][BASE], last_base = 0;
	int64_t onset, created_max = 0;
	int rc;

	wire_checks();
	if (fbxt_setup(&t, "rbincident") != 0 ||
	    fbxt_daemon_start(&t, "--admin-org", ADMIN, "--rollback-slice",
	        SLICE, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "240", "--orgs",
	    "4", "--seed", "9", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	snprintf(report, sizeof(report), "%s/report.txt", t.dir);
	rc = fbxt_sim_start(&t, "--no-enroll", "--devices", "240", "--orgs",
	    "4", "--seed", "9", "--report", report, "--quiet", NULL);
	FBXT_CHECK(rc == 0, "simulator start");
	FBXT_CHECK(configure(&t, ADMIN, 1, 0) == FBX_OK, "configure global");
	FBXT_CHECK(unlimit(&t, ADMIN, 1) == FBX_OK, "global lock limit");
	for (int i = 0; i < ORGS; i++) {
		snprintf(org[i], sizeof(org[i]), "org-%03d", i + 1);
		FBXT_CHECK(ids_of(&t, org[i], ids[i], DEVS) == DEVS,
		    "%s devices", org[i]);
		FBXT_CHECK(configure(&t, org[i], 0, 0) == FBX_OK, "configure %s",
		    org[i]);
		FBXT_CHECK(unlimit(&t, org[i], 0) == FBX_OK, "limit %s", org[i]);
	}

	/* the baseline: a few legitimate automatic locks per organisation,
	 * delivered before anything goes wrong */
	for (int i = 0; i < ORGS; i++)
		for (int k = 0; k < BASE; k++) {
			rc = lock(&t, org[i], FBX_ORIGIN_AUTOMATIC, &ids[i][k],
			    &base_ids[i][k]);
			FBXT_CHECK(rc == FBX_OK, "baseline lock rc %d", rc);
		}
	for (int i = 0; i < ORGS; i++)
		for (int k = 0; k < BASE; k++) {
			struct fbx_command info;
			FBXT_CHECK(fbxt_wait_settled(&t, org[i], base_ids[i][k],
			               60000, &info) == 0,
			    "baseline lock settles");
			if (info.created_ms > created_max)
				created_max = info.created_ms;
			last_base = base_ids[i][k];
		}
	/* an automatic lock of the reason discarded before it reached any
	 * device (settling, then rolled back by its id): no baseline lock,
	 * nothing to undo, so not counted before the onset (an earlier
	 * storm, discarded at its breaker's reset within the window, was
	 * counted as thousands of legitimate locks) */
	{
		struct fbx_command info;
		FBXT_CHECK(configure(&t, ADMIN, 1, 600) == FBX_OK,
		    "settle delay on");
		rc = lock(&t, org[RELOCK], FBX_ORIGIN_AUTOMATIC,
		    &ids[RELOCK][45], &id);
		FBXT_CHECK(rc == FBX_OK, "settling lock rc %d", rc);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ROLLBACK;
		snprintf(req.actor, sizeof(req.actor), "frank");
		req.u.rollback.sel.command_ids = &id;
		req.u.rollback.sel.ncommand_ids = 1;
		req.u.rollback.execute = 1;
		req.u.rollback.limit = 10;
		snprintf(req.u.rollback.note, sizeof(req.u.rollback.note),
		    "not this one");
		rc = fbxt_call(&t, org[RELOCK], &req, &rep);
		FBXT_CHECK(rc == FBX_OK &&
		        rep.u.rollback.per_action[FBX_RB_CANCEL] == 1,
		    "settling lock discarded: rc %d %s", rc, rep.errmsg);
		fbx_console_rep_free(&rep);
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		rc = fbxt_call(&t, org[RELOCK], &req, &rep);
		memset(&info, 0, sizeof(info));
		if (rc == FBX_OK)
			info = rep.u.command.info;
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_OK && info.state == FBX_C_DISCARDED &&
		        info.ndeliveries == 0,
		    "the discarded lock: rc %d state %d, %u deliveries", rc,
		    info.state, info.ndeliveries);
		if (info.created_ms > created_max)
			created_max = info.created_ms;
		FBXT_CHECK(configure(&t, ADMIN, 1, 0) == FBX_OK,
		    "settle delay off");
	}
	for (unsigned k = 0; k < PRIOR; k++) {
		struct fbx_command info;
		rc = lock(&t, org[0], FBX_ORIGIN_OPERATOR, &ids[0][10 + k], &id);
		FBXT_CHECK(rc == FBX_OK && fbxt_wait_settled(&t, org[0], id,
		                               60000, &info) == 0,
		    "operator lock before the onset");
		if (info.created_ms > created_max)
			created_max = info.created_ms;
	}
	/* the onset: after the last baseline lock was created; the storm is
	 * created after it (the engine's clock is the wall clock) */
	onset = created_max + 1;
	while (wall_ms() <= onset + 2)
		sleep_ms(2);
	/* the storm, and one operator lock that is not the incident's */
	for (int i = 0; i < ORGS; i++)
		for (unsigned k = 0; k < storm_n[i]; k++) {
			rc = lock(&t, org[i], FBX_ORIGIN_AUTOMATIC,
			    &ids[i][10 + k], &id);
			FBXT_CHECK(rc == FBX_OK, "storm lock rc %d", rc);
			FBXT_CHECK(fbxt_wait_settled(&t, org[i], id, 60000,
			               NULL) == 0,
			    "storm lock settles");
		}
	rc = lock(&t, org[RELOCK], FBX_ORIGIN_AUTOMATIC, &ids[RELOCK][0], &id);
	FBXT_CHECK(rc == FBX_OK && fbxt_wait_settled(&t, org[RELOCK], id,
	                               60000, NULL) == 0,
	    "storm lock of a baseline device");
	rc = lock(&t, org[0], FBX_ORIGIN_OPERATOR, &ids[0][50], &id);
	FBXT_CHECK(rc == FBX_OK && fbxt_wait_settled(&t, org[0], id, 60000,
	                               NULL) == 0,
	    "operator lock");
	(void)last_base;

	/* the global breaker tripped now with that onset; org-002's own
	 * breaker tripped too, without an onset (a record from before) */
	FBXT_CHECK(fbxt_daemon_kill(&t, SIGTERM) >= 0, "stop");
	FBXT_CHECK(brk_write(t.db, "*", wall_ms(), onset) == 0,
	    "write global breaker");
	FBXT_CHECK(brk_write(t.db, "org-002", wall_ms(), 0) == 0,
	    "write org-002 breaker");
	FBXT_CHECK(fbxt_daemon_start(&t, "--admin-org", ADMIN,
	               "--rollback-slice", SLICE, NULL) == 0,
	    "restart");

	/* 1. org-001 plans its share (held by the global breaker only: its
	 * own never tripped): the storm, with the baseline before onset */
	rb_req(&req, 0, 0);
	{
		struct fbx_console_rep one;
		rc = fbxt_call(&t, org[0], &req, &one);
		FBXT_CHECK(rc == FBX_OK &&
		        strcmp(one.u.rollback.breaker, "*/" REASON) == 0 &&
		        one.u.rollback.onset_ms == onset,
		    "org-001's incident is the global breaker's: rc %d '%s'",
		    rc, rc == FBX_OK ? one.u.rollback.breaker : "");
		if (rc == FBX_OK)
			fbx_console_rep_free(&one);
	}
	rb_req(&req, 0, 0);
	rc = run_slices(&t, org[0], &req, &r, 0);
	FBXT_CHECK(rc == FBX_OK && r.commands == storm_n[0] &&
	        r.per[FBX_RB_COMPENSATE] == storm_n[0] - PRIOR &&
	        r.per[FBX_RB_NOTHING] == PRIOR &&
	        r.before_onset == BASE && r.bo_dlv == BASE,
	    "org-001 plan: rc %d commands %u compensate %u before onset %u/%u",
	    rc, r.commands, r.per[FBX_RB_COMPENSATE], r.before_onset,
	    r.bo_dlv);
	/* include_before_onset selects the baseline too */
	rb_req(&req, 0, 0);
	req.u.rollback.sel.include_before_onset = 1;
	rc = run_slices(&t, org[0], &req, &r, 0);
	FBXT_CHECK(rc == FBX_OK && r.commands == storm_n[0] + BASE &&
	        r.before_onset == 0,
	    "org-001 plan with before onset: rc %d commands %u bo %u", rc,
	    r.commands, r.before_onset);
	/* a window that ends at the onset: all before it. Planned, it lists
	 * them; executed, it selects nothing: NOT_FOUND, nothing changed */
	rb_req(&req, 0, 0);
	req.u.rollback.sel.until_ms = onset;
	rc = run_slices(&t, org[0], &req, &r, 0);
	FBXT_CHECK(rc == FBX_OK && r.commands == 0 && r.before_onset == BASE,
	    "plan before onset only: rc %d commands %u bo %u", rc, r.commands,
	    r.before_onset);
	rb_req(&req, 0, 1);
	req.u.rollback.sel.until_ms = onset;
	rc = run_slices(&t, org[0], &req, &r, 0);
	FBXT_CHECK(rc == FBX_ENOT_FOUND && r.per[FBX_RB_COMPENSATE] == 0,
	    "execute before onset only: rc %d", rc);
	/* the answer names the trip and window it took (a later trip of
	 * the reason moves --incident to it: an operator must see that) */
	{
		char want[320], at[32];
		time_t s = (time_t)(onset / 1000);
		struct tm tm;
		gmtime_r(&s, &tm);
		strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(want, sizeof(want),
		    "the incident of breaker */" REASON "'s last trip (onset "
		    "%s.%03dZ) has no command within --since/--until; earlier "
		    "ones (if any) left: --include-before-onset; older trips: "
		    "--reason R --since T --until T",
		    at, (int)(onset % 1000));
		FBXT_CHECK(strstr(r.why, want) != NULL,
		    "the empty incident's answer names its trip and window "
		    "('%s' in '%s')",
		    want, r.why);
	}
	/* an executed filter that selects nothing, over several slices */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ROLLBACK;
	snprintf(req.actor, sizeof(req.actor), "frank");
	snprintf(req.u.rollback.sel.reason, sizeof(req.u.rollback.sel.reason),
	    "no_such_reason");
	req.u.rollback.execute = 1;
	req.u.rollback.sliced = 1;
	rc = run_slices(&t, org[0], &req, &r, 0);
	FBXT_CHECK(rc == FBX_ENOT_FOUND && r.slices > 1,
	    "executed empty selection: rc %d after %u slices", rc, r.slices);

	/* org-002's own breaker tripped without a recorded onset: its
	 * incident falls back to one breaker window before the trip, which
	 * takes in the baseline (nothing before an onset) */
	rb_req(&req, 0, 0);
	{
		struct fbx_console_rep one;
		rc = fbxt_call(&t, org[1], &req, &one);
		FBXT_CHECK(rc == FBX_OK && one.u.rollback.onset_ms == 0 &&
		        one.u.rollback.since_ms < onset &&
		        strcmp(one.u.rollback.breaker, "org-002/" REASON) == 0,
		    "org-002 without onset: rc %d onset %lld breaker '%s'", rc,
		    (long long)one.u.rollback.onset_ms,
		    rc == FBX_OK ? one.u.rollback.breaker : "");
		if (rc == FBX_OK)
			fbx_console_rep_free(&one);
	}
	rb_req(&req, 0, 0);
	rc = run_slices(&t, org[1], &req, &r, 0);
	FBXT_CHECK(rc == FBX_OK && r.commands == storm_n[1] + BASE &&
	        r.before_onset == 0,
	    "org-002 without onset: rc %d commands %u before onset %u", rc,
	    r.commands, r.before_onset);

	/* 2. org-002, not the admin organisation, asks for the global
	 * incident: its own part, executed, not FORBIDDEN */
	rb_req(&req, 1, 1);
	rc = run_slices(&t, org[1], &req, &r, 0);
	FBXT_CHECK(rc == FBX_OK && !r.global && r.commands == storm_n[1] &&
	        r.per[FBX_RB_COMPENSATE] == storm_n[1] &&
	        r.before_onset == BASE && r.rbid != 0 && r.same_id,
	    "org-002 own part: rc %d global %d commands %u compensate %u bo "
	    "%u id %llu",
	    rc, r.global, r.commands, r.per[FBX_RB_COMPENSATE], r.before_onset,
	    (unsigned long long)r.rbid);
	{
		char through[96];
		snprintf(through, sizeof(through),
		    "rollback %llu (in org-002) by frank is through: ",
		    (unsigned long long)r.rbid);
		FBXT_CHECK(fbxt_log_lines(&t, through) == 1,
		    "'%s' in the log %d times", through,
		    fbxt_log_lines(&t, through));
	}

	/* 3. the admin organisation: the global dry run over every
	 * organisation, per organisation */
	rb_req(&req, 1, 0);
	rc = run_slices(&t, ADMIN, &req, &r, 0);
	FBXT_CHECK(rc == FBX_OK && r.global && r.slices > 3 &&
	        r.commands == storm_n[0] + storm_n[1] + storm_n[2] + 1 &&
	        r.before_onset == ORGS * BASE &&
	        r.per[FBX_RB_COMPENSATE] == storm_n[0] + storm_n[2] - PRIOR &&
	        r.per[FBX_RB_NOTHING] == 1 + PRIOR &&
	        r.per[FBX_RB_DONE_BEFORE] == storm_n[1],
	    "global plan: rc %d global %d slices %u commands %u bo %u comp %u "
	    "nothing %u before %u",
	    rc, r.global, r.slices, r.commands, r.before_onset,
	    r.per[FBX_RB_COMPENSATE], r.per[FBX_RB_NOTHING],
	    r.per[FBX_RB_DONE_BEFORE]);
	for (int i = 0; i < ORGS; i++)
		FBXT_CHECK(r.org_cmds[i] == storm_n[i] + (i == RELOCK) &&
		        r.org_bo[i] == BASE,
		    "global plan %s: %u commands, %u before onset", org[i],
		    r.org_cmds[i], r.org_bo[i]);

	/* 4. executed: two slices, kill -9, then on with the rollback id
	 * alone (the engine's journal has the cursor) */
	{
		struct run r2;
		struct fbx_console_req lost;
		uint64_t rbid, comps;
		rb_req(&req, 1, 1);
		memset(&lost, 0, sizeof(lost));
		/* slices until the run has done something (it has an id),
		 * then one more */
		rc = run_slices(&t, ADMIN, &req, &r, 1);
		for (int k = 0; rc == FBX_OK && k < 1000 &&
		    req.u.rollback.cursor != 0 && r.rbid == 0; k++) {
			struct run one;
			rc = run_slices(&t, ADMIN, &req, &one, 1);
			one.slices += r.slices;
			r = one;
		}
		{
			struct run one;
			uint32_t comp = r.per[FBX_RB_COMPENSATE];
			uint64_t id1 = r.rbid;
			if (rc == FBX_OK && req.u.rollback.cursor != 0) {
				/* this slice's reply is "lost": the client
				 * resumes from before it */
				lost = req;
				lost.u.rollback.rollback_id = id1;
				rc = run_slices(&t, ADMIN, &req, &one, 1);
				r.per[FBX_RB_COMPENSATE] =
				    comp + one.per[FBX_RB_COMPENSATE];
				r.comps += one.comps;
				r.same_id = one.rbid == id1;
			}
		}
		FBXT_CHECK(rc == FBX_OK && r.rbid != 0 && r.same_id &&
		        req.u.rollback.cursor != 0,
		    "global execute, first slices: rc %d id %llu cursor %llu",
		    rc, (unsigned long long)r.rbid,
		    (unsigned long long)req.u.rollback.cursor);
		rbid = r.rbid;
		rc = fbxt_daemon_kill(&t, SIGKILL);
		FBXT_CHECK(WIFSIGNALED(rc), "kill -9");
		FBXT_CHECK(fbxt_daemon_start(&t, "--admin-org", ADMIN,
		               "--rollback-slice", SLICE, NULL) == 0,
		    "restart after kill");
		/* the slice whose reply was lost, sent again from its cursor
		 * (--resume): it compensates nothing again, and the run's
		 * totals do not count it twice (they did) */
		{
			struct run again;
			rc = lost.kind != 0
			    ? run_slices(&t, ADMIN, &lost, &again, 1)
			    : -1;
			FBXT_CHECK(rc == FBX_OK &&
			        again.per[FBX_RB_COMPENSATE] == 0,
			    "the lost slice again: rc %d compensated %u", rc,
			    rc == FBX_OK ? again.per[FBX_RB_COMPENSATE] : 0);
		}
		rb_req(&req, 1, 1);
		req.u.rollback.rollback_id = rbid;
		rc = run_slices(&t, ADMIN, &req, &r2, 0);
		FBXT_CHECK(rc == FBX_OK && r2.same_id &&
		        (r2.rbid == 0 || r2.rbid == rbid) && r2.global,
		    "continued: rc %d id %llu (run %llu)", rc,
		    (unsigned long long)r2.rbid, (unsigned long long)rbid);
		FBXT_CHECK(r.per[FBX_RB_COMPENSATE] +
		                r2.per[FBX_RB_COMPENSATE] ==
		            storm_n[0] + storm_n[2] - PRIOR,
		    "global run compensated %u + %u",
		    r.per[FBX_RB_COMPENSATE], r2.per[FBX_RB_COMPENSATE]);
		comps = r.comps + r2.comps;
		/* the log says the run is through, with its totals, in a
		 * line of its own: the slices' lines are rate-limited and
		 * the last one was dropped in a run of 21 slices */
		{
			char through[96];
			snprintf(through, sizeof(through),
			    "rollback %llu (global incident " REASON
			    ") by frank is through: ",
			    (unsigned long long)rbid);
			FBXT_CHECK(fbxt_log_lines(&t, through) == 1,
			    "'%s' in the log %d times", through,
			    fbxt_log_lines(&t, through));
		}
		/* continuing a finished run does nothing */
		rb_req(&req, 1, 1);
		req.u.rollback.rollback_id = rbid;
		rc = run_slices(&t, ADMIN, &req, &r2, 0);
		FBXT_CHECK(rc == FBX_OK && r2.slices == 1 && r2.commands == 0,
		    "finished run continued: rc %d slices %u", rc, r2.slices);
		/* one audit record names every affected organisation */
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		snprintf(req.u.audit_list.action,
		    sizeof(req.u.audit_list.action), "rollback");
		req.u.audit_list.limit = 1000;
		rc = fbxt_call(&t, ADMIN, &req, &rep);
		{
			int closing = 0, names = 0, totals = 0;
			char want[64], comp[64], ncomp[64], ncmd[64];
			snprintf(want, sizeof(want), "\"rollback_id\":%llu,",
			    (unsigned long long)rbid);
			/* the run's totals: both parts of the killed run */
			snprintf(comp, sizeof(comp), "\"compensated\":%u,",
			    storm_n[0] + storm_n[2] - PRIOR);
			snprintf(ncomp, sizeof(ncomp),
			    "\"compensating_commands\":%llu,",
			    (unsigned long long)comps);
			snprintf(ncmd, sizeof(ncmd), "\"commands\":%u,",
			    storm_n[0] + storm_n[1] + storm_n[2] + 1);
			for (size_t k = 0; rc == FBX_OK && k < rep.u.audit.n;
			    k++) {
				const struct fbx_audit_rec *a = &rep.u.audit.r[k];
				if (strcmp(a->action, "rollback") != 0 ||
				    strcmp(a->org, "*") != 0 ||
				    strstr(a->params, want) == NULL)
					continue;
				closing++;
				names = strstr(a->params, "org-001") != NULL &&
				    strstr(a->params, "org-002") != NULL &&
				    strstr(a->params, "org-003") != NULL &&
				    strstr(a->params, "\"orgs\":3,") != NULL;
				totals = strstr(a->params, comp) != NULL &&
				    strstr(a->params, ncomp) != NULL &&
				    strstr(a->params, ncmd) != NULL && comps > 0 &&
				    strstr(a->params, "\"in_flight\":") != NULL &&
				    strstr(a->params, "\"irreversible\":") != NULL;
				if (!totals)
					fprintf(stderr, "closing record: %s\n",
					    a->params);
			}
			FBXT_CHECK(closing == 1 && names && totals,
			    "closing audit record: %d, names %d, totals %d",
			    closing, names, totals);
		}
		fbx_console_rep_free(&rep);
	}

	/* 5. exactly one unlock per storm device, none for the rest (nor
	 * for the devices an operator had locked before the onset) */
	for (int i = 0; i < ORGS; i++) {
		uint32_t ncmds = 0, n = comp_devices(&t, org[i], &ncmds);
		FBXT_CHECK(n == storm_n[i] - (i == 0) * PRIOR,
		    "%s: %u devices compensated in %u commands, storm %u", org[i],
		    n, ncmds, storm_n[i]);
	}

	/* 6. fuseboxctl: one request, one table, a before-onset count */
	{
		char cmd[1200], line[512];
		const char *bin = getenv("FBX_BIN_DIR");
		FILE *p;
		int total = 0, before = 0, one = 0, every = 0, named = 0;
		snprintf(cmd, sizeof(cmd),
		    "%s/fuseboxctl -e %s -o %s rollback --incident %s --global "
		    "--all-orgs 2>&1",
		    bin ? bin : ".", t.console, ADMIN, REASON);
		p = popen(cmd, "r");
		while (p != NULL && fgets(line, sizeof(line), p) != NULL) {
			/* the slices' progress lines name the run, not the
			 * organisation the request was sent as */
			if (strncmp(line, "fuseboxctl: every organisation: "
			                  "rollback slice ",
			        47) == 0)
				every++;
			if (strncmp(line, "fuseboxctl: " ADMIN ": rollback",
			        strlen("fuseboxctl: " ADMIN ": rollback")) == 0)
				named++;
			if (strncmp(line, "TOTAL", 5) == 0)
				total++;
			if (strstr(line, "before onset") != NULL &&
			    strstr(line, ": 9 commands") != NULL)
				before++;
			if (strstr(line, "rollback plan for every "
			                 "organisation") != NULL)
				one++;
		}
		rc = p != NULL ? pclose(p) : -1;
		FBXT_CHECK(rc == 0 && total == 1 && before == 1 && one == 1,
		    "fuseboxctl global plan: rc %d total %d before %d one %d",
		    rc, total, before, one);
		FBXT_CHECK(every >= 2 && named == 0,
		    "global plan's slice lines: %d 'every organisation', %d "
		    "naming " ADMIN,
		    every, named);
		/* a before-onset list cut at --rows says so (an operator's
		 * command may be among the rows not shown); one that is
		 * whole does not */
		for (int rows = 3; rows <= 20; rows += 17) {
			int cut = 0;
			snprintf(cmd, sizeof(cmd),
			    "%s/fuseboxctl -e %s -o %s rollback --incident %s "
			    "--global --all-orgs --rows %d 2>/dev/null",
			    bin ? bin : ".", t.console, ADMIN, REASON, rows);
			p = popen(cmd, "r");
			while (p != NULL &&
			    fgets(line, sizeof(line), p) != NULL) {
				if (strstr(line, "before-onset rows") != NULL)
					cut++;
				if (strstr(line, "(3 of 9 before-onset "
				                 "rows; --rows N lists more") !=
				    NULL)
					cut += 10;
			}
			rc = p != NULL ? pclose(p) : -1;
			FBXT_CHECK(rc == 0 && cut == (rows == 3 ? 11 : 0),
			    "global plan --rows %d: rc %d, cut line %d", rows,
			    rc, cut);
		}
	}

	/* 7. the devices: the storm unlocked, the baseline and the operator
	 * lock still locked */
	sleep_ms(500);
	fbxt_sim_stop(&t);
	{
		FILE *f = fopen(report, "r");
		char line[512];
		int seen = 0;
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			const char *p = strstr(line, "locked_now=");
			int i;
			if (strncmp(line, "org=", 4) != 0 || p == NULL)
				continue;
			i = org_index(line + 4);
			if (i < 0)
				continue;
			seen++;
			FBXT_CHECK(atoi(p + 11) == BASE + (i == 0) * (1 + PRIOR),
			    "locked now (baseline %d + operator's %d): %s", BASE,
			    (i == 0) * (1 + PRIOR), line);
		}
		if (f != NULL)
			fclose(f);
		FBXT_CHECK(seen == ORGS, "report has %d org lines", seen);
	}
out:
	fbxt_teardown(&t);
	return fbxt_done();
}
