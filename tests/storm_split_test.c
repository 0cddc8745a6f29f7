/*
 * storm_split_test.c: issue 13 items 3/4, "the incident storm split
 * across three nodes trips the global breaker with the same counts as
 * on one node". The same deterministic storm runs twice on the
 * PostgreSQL backend, each on a fresh schema:
 *   A  one fuseboxd (--store, no --node);
 *   B  three nodes n1 n2 n3 (--node, --lease-ms 3000) sharing the store,
 *      each organisation enrolled through a different node (so each node
 *      claims some), the storm sent to the owner of each organisation
 *      (one client per organisation, connected to the owner named in
 *      fbx_lease; fbx_client follows MOVED should it move).
 * Fleet: 10 organisations of 100, 150, ... 550 devices (allowances 1 to
 * 5). Storm: one automatic single-device lock (principal
 * attestation-rule, reason attestation_failed) for every device,
 * submitted synchronously one after another, interleaved across the
 * organisations in a fixed order. After every submit, until it is seen
 * open, the global breaker's state is read (BreakerRequest STATUS
 * through the organisation's owner): the trip point is the submit after
 * which it is open. Then the test waits until nothing settles any more
 * (the default 30 s settle window: in B, commands admitted on a node
 * other than the one that tripped the global breaker are held when
 * their window ends) and lists every command of every organisation.
 *
 * Asserted: per organisation, the submit replies (admitted = settling,
 * held by its own breaker, held by the global one, refused), the submit
 * at which its breaker tripped, and the final states (held by which
 * breaker, still settling, released, with deliveries) are identical in
 * A and B, and so is the global trip point; at least 3 organisations
 * tripped and the global breaker is open in B; in B, commands of an
 * organisation owned by a node other than the one that tripped the
 * global breaker, admitted before the trip, end up held (no delivery
 * made). Both tables are printed. No timing thresholds: waits are hang
 * guards.
 *
 * In B the owners read from fbx_lease before the storm must still own
 * their organisations after it: a lease that ran out meanwhile (a store
 * stalled longer than --lease-ms) means the storm was not split as
 * planned, and the test says so.
 *
 * Run under tests/pg_cluster.sh run (CTest: fbx.tests.storm_split_pg_test);
 * without FBX_TEST_PG_URL it fails. Environment: FBXT_KEEP=1 keeps the
 * directories; FBXT_STORM_RUN=A or B runs that one alone (nothing
 * compared); FBXT_STORM_STALL=N:MS (B) holds the store's writer lock for
 * MS ms after submit N, to watch the nodes lose their leases mid-storm
 * (the organisations then move, which the test reports as failures).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "harness.h"

#define NORGS 10
#define NNODES 3
#define REASON "attestation_failed"
#define LEASE_MS 3000

/* B: the store, for diagnostics when a call times out */
static PGconn *diag_pg;
static void diag_print(void);
static void sleep_ms(int ms);

struct org {
	char name[16];
	uint32_t n;   /* devices */
	int enroll_node; /* B: the node it is enrolled through */
	int node;     /* the node serving it (B: its owner), 0-based */
	fbx_client *rule, *adm;
	/* submit replies */
	uint32_t admitted, held_org, held_glob, refused;
	uint32_t retries;  /* BUSY / MOVED / timeouts retried */
	uint32_t moved;    /* submits that ended on another node */
	long trip_at;      /* submit number of its own breaker's trip */
	uint64_t *adm_ids; /* commands admitted (settling) at submit */
	size_t nadm;
	/* after the settle window */
	uint32_t f_held_org, f_held_glob, f_settling, f_released, f_sent;
	uint32_t f_total, f_glob_on_settle;
	/* B: commands it admitted, read one by one after the settle
	 * window: held (without a delivery), and all of them */
	uint32_t adm_held, adm_checked;
	int brk_state;
	uint64_t brk_trips, brk_held;
};

struct run {
	const char *name;
	int nnodes;
	char ep[NNODES][400]; /* console endpoints */
	char gw[NNODES][400];
	pid_t pid[NNODES];
	struct org o[NORGS];
	long submits;
	long global_at;  /* submit number after which "*" was open */
	int global_node; /* the node that served that submit */
	char global_org[16];
	int global_state;
	uint64_t global_trips;
	uint64_t global_held[NNODES]; /* "*" held, as each node counts */
	int64_t global_onset_ms, global_tripped_ms;
	/* FBXT_STORM_STALL=N:MS (B): after submit N, the test holds the
	 * writers' advisory lock for MS ms (a store that stalls: every
	 * node's next write transaction waits, its leases run out) */
	long stall_at;
	int stall_ms;
};

static void
stall(struct run *r)
{
	PGresult *res;

	if (diag_pg == NULL)
		return;
	fprintf(stderr, "storm_split %s: after submit %ld the writers' lock "
	                "is held for %d ms\n",
	    r->name, r->stall_at, r->stall_ms);
	res = PQexec(diag_pg, "BEGIN; SELECT pg_advisory_xact_lock(7308036, "
	                      "hashtext(current_schema()))");
	PQclear(res);
	sleep_ms(r->stall_ms);
	res = PQexec(diag_pg, "COMMIT");
	PQclear(res);
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static fbx_client *
open_as(struct fbxt_env *t, const char *ep, const char *principal)
{
	struct fbx_client_opts co;
	char path[400];
	fbx_client *c = NULL;

	snprintf(path, sizeof(path), "%s/%s.key", t->keys, principal);
	memset(&co, 0, sizeof(co));
	co.key_file = path;
	if (fbx_client_open2(ep, 60000, &co, &c) != FBX_OK)
		return NULL;
	return c;
}

/* call - one request, retried while the cluster moves an organisation
 * (BUSY: taken over and loading; MOVED past the client's hops; a
 * timeout). @return the engine's verdict or a transport error. */
static int
call(fbx_client *c, const char *actor, const char *org,
    struct fbx_console_req *req, struct fbx_console_rep *rep,
    uint32_t *retries)
{
	int rc = FBX_OK;

	for (int i = 0; i < 100; i++) {
		snprintf(req->org, sizeof(req->org), "%s", org);
		snprintf(req->actor, sizeof(req->actor), "%s", actor);
		memset(rep, 0, sizeof(*rep));
		rc = fbx_client_call(c, req, rep);
		if (rc == FBX_OK)
			rc = rep->err;
		if (rc != FBX_EBUSY && rc != FBX_EMOVED && rc != FBX_ETIMEOUT)
			return rc;
		{
			char ts[32];
			time_t now = time(NULL);
			strftime(ts, sizeof(ts), "%H:%M:%S", gmtime(&now));
			fprintf(stderr, "storm_split %s: %s at %s: %s (%s), "
			                "retrying\n",
			    ts, org, fbx_client_endpoint(c), fbx_errname(rc),
			    rep->errmsg);
		}
		if (rc == FBX_ETIMEOUT)
			diag_print();
		fbx_console_rep_free(rep);
		if (retries != NULL)
			(*retries)++;
		sleep_ms(100);
	}
	return rc;
}

static int
node_of_ep(const struct run *r, const char *ep)
{
	for (int k = 0; k < r->nnodes; k++)
		if (strcmp(r->ep[k], ep) == 0)
			return k;
	return -1;
}

/* ---- nodes (B) ---------------------------------------------------- */

static pid_t
node_start(struct fbxt_env *t, struct run *r, int k)
{
	char data[400], name[16], lease[16], log[400], cmd[1200];
	char *argv[24];
	int n = 0;
	pid_t pid;
	const char *bin = getenv("FBX_BIN_DIR");
	char prog[512];

	snprintf(data, sizeof(data), "%s/n%d", t->dir, k + 1);
	snprintf(name, sizeof(name), "n%d", k + 1);
	snprintf(lease, sizeof(lease), "%d", LEASE_MS);
	snprintf(log, sizeof(log), "%s/n%d.log", t->dir, k + 1);
	/* each node its own data directory with a copy of the keys */
	snprintf(cmd, sizeof(cmd), "mkdir -p -m 700 '%s' && cp -a '%s' '%s/'",
	    data, t->keys, data);
	if (system(cmd) != 0)
		return -1;
	snprintf(prog, sizeof(prog), "%s/fuseboxd",
	    bin != NULL ? bin : "../dispatcher");
	argv[n++] = prog;
	argv[n++] = "--data";
	argv[n++] = data;
	argv[n++] = "--store";
	argv[n++] = t->store;
	argv[n++] = "--node";
	argv[n++] = name;
	argv[n++] = "--lease-ms";
	argv[n++] = lease;
	argv[n++] = "--console";
	argv[n++] = r->ep[k];
	argv[n++] = "--gateway";
	argv[n++] = r->gw[k];
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(prog, argv);
		_exit(127);
	}
	return pid;
}

static int
node_wait_ready(struct fbxt_env *t, struct run *r, int k)
{
	fbx_client *c = open_as(t, r->ep[k], "admin");
	int ok = -1;

	if (c == NULL)
		return -1;
	fbx_client_set_timeout(c, 300);
	for (int i = 0; i < 600; i++) { /* about a minute at most */
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_PING;
		snprintf(req.org, sizeof(req.org), "probe");
		snprintf(req.actor, sizeof(req.actor), "admin");
		if (fbx_client_call(c, &req, &rep) == FBX_OK) {
			fbx_console_rep_free(&rep);
			ok = 0;
			break;
		}
		if (waitpid(r->pid[k], &st, WNOHANG) == r->pid[k]) {
			r->pid[k] = 0;
			break;
		}
		sleep_ms(100);
	}
	fbx_client_close(c);
	return ok;
}

static void
nodes_stop(struct run *r)
{
	for (int k = 0; k < r->nnodes; k++) {
		int st = -1;
		if (r->pid[k] <= 0)
			continue;
		kill(r->pid[k], SIGTERM);
		while (waitpid(r->pid[k], &st, 0) < 0 && errno == EINTR)
			;
		FBXT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "node n%d exit status %d (see n%d.log)", k + 1, st, k + 1);
		r->pid[k] = 0;
	}
}

/* lease_map - B: the live owner of every organisation from fbx_lease
 * (owner[i] = node index or -1). @return 0 or -1 (query failed). */
static int
lease_map(PGconn *pg, struct run *r, int owner[NORGS])
{
	PGresult *res = PQexec(pg, "SELECT org, node FROM fbx_lease WHERE "
	                           "node <> '' AND expires > now()");
	int rc = -1;

	for (int i = 0; i < NORGS; i++)
		owner[i] = -1;
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		for (int row = 0; row < PQntuples(res); row++) {
			const char *org = PQgetvalue(res, row, 0);
			const char *node = PQgetvalue(res, row, 1);
			for (int i = 0; i < NORGS; i++) {
				if (strcmp(org, r->o[i].name) == 0 &&
				    node[0] == 'n')
					owner[i] = atoi(node + 1) - 1;
			}
		}
		rc = 0;
	} else {
		fprintf(stderr, "storm_split: fbx_lease: %s",
		    PQerrorMessage(pg));
	}
	PQclear(res);
	return rc;
}

static void
lease_print(PGconn *pg)
{
	PGresult *res = PQexec(pg, "SELECT org, node, epoch, expires > now() "
	                           "FROM fbx_lease ORDER BY org");

	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		for (int row = 0; row < PQntuples(res); row++)
			fprintf(stderr, "  lease '%s' node %s epoch %s live %s\n",
			    PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
			    PQgetvalue(res, row, 2), PQgetvalue(res, row, 3));
	}
	PQclear(res);
}

/* diag_print - B: the leases and what the server's sessions wait for */
static void
diag_print(void)
{
	PGresult *res;

	if (diag_pg == NULL)
		return;
	lease_print(diag_pg);
	res = PQexec(diag_pg,
	    "SELECT pid, application_name, state, wait_event_type, "
	    "wait_event, round(extract(epoch from now() - xact_start) * "
	    "1000), left(regexp_replace(query, '\\s+', ' ', 'g'), 90) "
	    "FROM pg_stat_activity WHERE datname = current_database() AND "
	    "pid <> pg_backend_pid() AND state <> 'idle'");
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		for (int row = 0; row < PQntuples(res); row++)
			fprintf(stderr, "  pg %s %s %s wait %s/%s xact %s ms: "
			                "%s\n",
			    PQgetvalue(res, row, 0), PQgetvalue(res, row, 1),
			    PQgetvalue(res, row, 2), PQgetvalue(res, row, 3),
			    PQgetvalue(res, row, 4), PQgetvalue(res, row, 5),
			    PQgetvalue(res, row, 6));
	}
	PQclear(res);
}

/* ---- the fleet ---------------------------------------------------- */

static int
enroll(fbx_client *c, struct org *o)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_device *d = calloc(o->n, sizeof(*d));
	int rc;

	if (d == NULL)
		return FBX_ENOMEM;
	for (uint32_t i = 0; i < o->n; i++) {
		snprintf(d[i].org, sizeof(d[i].org), "%s", o->name);
		snprintf(d[i].id, sizeof(d[i].id), "%s-d%05u", o->name, i);
		d[i].platform = FBX_PLATFORM_ANDROID;
		d[i].online = 1;
		snprintf(d[i].os_version, sizeof(d[i].os_version), "14");
		d[i].ngroups = 1;
		snprintf(d[i].groups[0], sizeof(d[i].groups[0]), "fleet");
	}
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_ENROLL;
	req.u.enroll.devs = d;
	req.u.enroll.n = o->n;
	rc = call(c, "admin", o->name, &req, &rep, NULL);
	if (rc == FBX_OK && rep.u.enroll.created != o->n)
		rc = FBX_ESTATE;
	fbx_console_rep_free(&rep);
	free(d);
	return rc;
}

/* brk_status - the organisation's breakers and the global ones, as its
 * owner has them. @return the verdict; *g and *b filled if found. */
static int
brk_status(struct org *o, struct fbx_breaker_info *g, int *gfound,
    struct fbx_breaker_info *b, int *bfound)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	*gfound = *bfound = 0;
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = FBX_BRK_STATUS;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), REASON);
	rc = call(o->adm, "admin", o->name, &req, &rep, NULL);
	if (rc == FBX_OK) {
		for (size_t i = 0; i < rep.u.breaker.n; i++) {
			const struct fbx_breaker_info *x = &rep.u.breaker.b[i];
			if (strcmp(x->reason, REASON) != 0)
				continue;
			if (strcmp(x->org, "*") == 0) {
				*g = *x;
				*gfound = 1;
			} else if (strcmp(x->org, o->name) == 0) {
				*b = *x;
				*bfound = 1;
			}
		}
	}
	fbx_console_rep_free(&rep);
	return rc;
}

/* storm_one - the broken rule: an automatic lock of one device. */
static int
storm_one(struct run *r, struct org *o, uint32_t dev, long seq,
    int *state, char *held_by, size_t hlen, uint64_t *id)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command *c = &req.u.submit.cmd;
	fbx_id dev_id;
	int rc, before = node_of_ep(r, fbx_client_endpoint(o->rule));

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	c->type = FBX_CMD_LOCK;
	c->origin = FBX_ORIGIN_AUTOMATIC;
	c->target_kind = FBX_TARGET_DEVICES;
	c->ttl_s = 3600;
	snprintf(c->reason, sizeof(c->reason), REASON);
	/* a retried submit (BUSY, timeout) is the same command */
	snprintf(c->idem_key, sizeof(c->idem_key), "storm-%ld", seq);
	snprintf(dev_id, sizeof(dev_id), "%s-d%05u", o->name, dev);
	c->dev_ids = &dev_id;
	c->ndev_ids = 1;
	rc = call(o->rule, "attestation-rule", o->name, &req, &rep,
	    &o->retries);
	*state = rep.u.submit.state;
	snprintf(held_by, hlen, "%s", rep.u.submit.held_by);
	*id = rep.u.submit.command_id;
	fbx_console_rep_free(&rep);
	if (node_of_ep(r, fbx_client_endpoint(o->rule)) != before)
		o->moved++;
	return rc;
}

static int
add_id(struct org *o, uint64_t id)
{
	uint64_t *v = realloc(o->adm_ids, (o->nadm + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	o->adm_ids = v;
	o->adm_ids[o->nadm++] = id;
	return 0;
}

static void
storm(struct run *r)
{
	uint32_t maxn = 0;
	long seq = 0;
	char own_key[64], glob_key[64];

	snprintf(glob_key, sizeof(glob_key), "*/%s", REASON);
	for (int i = 0; i < NORGS; i++)
		if (r->o[i].n > maxn)
			maxn = r->o[i].n;
	for (uint32_t k = 0; k < maxn; k++) {
		for (int i = 0; i < NORGS; i++) {
			struct org *o = &r->o[i];
			char held_by[2 * FBX_ID_MAX + 2];
			uint64_t id = 0;
			int state = 0, rc;
			if (k >= o->n)
				continue;
			seq++;
			rc = storm_one(r, o, k, seq, &state, held_by,
			    sizeof(held_by), &id);
			snprintf(own_key, sizeof(own_key), "%s/%s", o->name,
			    REASON);
			if (rc != FBX_OK) {
				o->refused++;
				fprintf(stderr, "storm_split %s: submit %ld "
				                "(%s) refused: %s\n",
				    r->name, seq, o->name, fbx_errname(rc));
			} else if (state == FBX_C_SETTLING) {
				o->admitted++;
				if (add_id(o, id) != 0)
					o->refused++;
			} else if (state == FBX_C_HELD &&
			    strcmp(held_by, own_key) == 0) {
				o->held_org++;
				if (o->trip_at == 0)
					o->trip_at = seq;
			} else if (state == FBX_C_HELD &&
			    strcmp(held_by, glob_key) == 0) {
				o->held_glob++;
			} else {
				o->refused++;
				fprintf(stderr, "storm_split %s: submit %ld "
				                "(%s): state %s held_by '%s'\n",
				    r->name, seq, o->name,
				    fbx_cstate_name(state), held_by);
			}
			if (r->stall_at > 0 && seq == r->stall_at)
				stall(r);
			if (r->global_at == 0) {
				struct fbx_breaker_info g, b;
				int gf, bf;
				rc = brk_status(o, &g, &gf, &b, &bf);
				FBXT_CHECK(rc == FBX_OK, "%s: breaker status "
				    "rc %s", r->name, fbx_errname(rc));
				if (rc == FBX_OK && gf &&
				    g.state == FBX_BS_OPEN) {
					r->global_at = seq;
					r->global_node = node_of_ep(r,
					    fbx_client_endpoint(o->rule));
					snprintf(r->global_org,
					    sizeof(r->global_org), "%s",
					    o->name);
				}
			}
		}
	}
	r->submits = seq;
}

/* settle_wait - until no organisation has a command settling (hang
 * guard: 300 s). @return 0 or -1. */
static int
settle_wait(struct run *r)
{
	int64_t t0 = mono_ms();

	for (;;) {
		uint64_t settling = 0;
		int err = 0;
		for (int i = 0; i < NORGS; i++) {
			struct fbx_breaker_info g, b;
			int gf, bf;
			if (brk_status(&r->o[i], &g, &gf, &b, &bf) != FBX_OK) {
				err = 1;
				continue;
			}
			if (bf)
				settling += b.settling;
			if (gf)
				settling += g.settling;
		}
		if (!err && settling == 0)
			return 0;
		if (mono_ms() - t0 > 300000) {
			fprintf(stderr, "storm_split %s: %llu commands still "
			                "settling after 300 s\n",
			    r->name, (unsigned long long)settling);
			return -1;
		}
		sleep_ms(500);
	}
}

/* final - every command of every organisation, as its owner lists it,
 * and the breakers. */
static void
final(struct run *r)
{
	char own_key[64], glob_key[64];

	snprintf(glob_key, sizeof(glob_key), "*/%s", REASON);
	for (int i = 0; i < NORGS; i++) {
		struct org *o = &r->o[i];
		struct fbx_breaker_info g, b;
		uint64_t after = 0;
		int gf, bf, rc;

		snprintf(own_key, sizeof(own_key), "%s/%s", o->name, REASON);
		for (;;) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_LIST_COMMANDS;
			req.u.list.after = after;
			req.u.list.limit = FBX_PAGE_MAX;
			rc = call(o->adm, "admin", o->name, &req, &rep, NULL);
			FBXT_CHECK(rc == FBX_OK, "%s: list %s: %s", r->name,
			    o->name, fbx_errname(rc));
			if (rc != FBX_OK) {
				fbx_console_rep_free(&rep);
				break;
			}
			for (size_t j = 0; j < rep.u.commands.n; j++) {
				const struct fbx_command *c =
				    &rep.u.commands.cmds[j];
				if (c->origin != FBX_ORIGIN_AUTOMATIC)
					continue;
				o->f_total++;
				if (c->ndeliveries > 0)
					o->f_sent++;
				if (c->state == FBX_C_HELD &&
				    strcmp(c->held_by, own_key) == 0)
					o->f_held_org++;
				else if (c->state == FBX_C_HELD &&
				    strcmp(c->held_by, glob_key) == 0) {
					o->f_held_glob++;
					if (strstr(c->note, "another node") !=
					    NULL)
						o->f_glob_on_settle++;
				} else if (c->state == FBX_C_SETTLING)
					o->f_settling++;
				else
					o->f_released++;
			}
			after = rep.u.commands.next_after;
			fbx_console_rep_free(&rep);
			if (after == 0)
				break;
		}
		rc = brk_status(o, &g, &gf, &b, &bf);
		FBXT_CHECK(rc == FBX_OK && gf, "%s: breaker status of %s: %s",
		    r->name, o->name, fbx_errname(rc));
		if (bf) {
			o->brk_state = b.state;
			o->brk_trips = b.trips;
			o->brk_held = b.held;
		}
		if (gf) {
			int k = o->node;
			r->global_state = g.state;
			r->global_trips = g.trips;
			r->global_onset_ms = g.onset_ms;
			r->global_tripped_ms = g.tripped_ms;
			if (k >= 0 && k < NNODES)
				r->global_held[k] = g.held;
		}
	}
}

static void
print_run(const struct run *r)
{
	uint32_t s[12] = { 0 };

	printf("\nrun %s (%d node%s): %ld submits; global breaker */%s "
	       "open after submit %ld (%s, served by %s%d), state %s, "
	       "trips %llu, onset %lld ms before its trip\n",
	    r->name, r->nnodes, r->nnodes > 1 ? "s" : "", r->submits, REASON,
	    r->global_at, r->global_org[0] ? r->global_org : "-",
	    r->nnodes > 1 ? "n" : "node ", r->global_node + 1,
	    r->global_state == FBX_BS_OPEN ? "open" : "closed",
	    (unsigned long long)r->global_trips,
	    (long long)(r->global_tripped_ms - r->global_onset_ms));
	printf("  at submit: adm = settling, held = by its own breaker, held* = "
	       "by the global one, trip@ = the submit that tripped its "
	       "breaker, rt/mv = retries / submits that followed MOVED;\n"
	       "  after the settle window: f.held, f.held* by breaker, "
	       "settling, released (any other state), sent (with "
	       "deliveries), onsettl = held* when its settle window ended "
	       "(tripped on another node), trips of its breaker\n");
	printf("%-8s %4s %5s | %4s %5s %7s %8s %7s %6s | %7s %8s %8s %8s %4s"
	       " %7s %5s\n",
	    "org", "node", "devs", "adm", "held", "held*", "refused", "trip@",
	    "rt/mv", "f.held", "f.held*", "settling", "released", "sent",
	    "onsettl", "trips");
	for (int i = 0; i < NORGS; i++) {
		const struct org *o = &r->o[i];
		printf("%-8s %3s%d %5u | %4u %5u %7u %8u %7ld %3u/%-2u | %7u "
		       "%8u %8u %8u %4u %7u %5llu\n",
		    o->name, r->nnodes > 1 ? "n" : " ", o->node + 1, o->n,
		    o->admitted, o->held_org, o->held_glob, o->refused,
		    o->trip_at, o->retries, o->moved, o->f_held_org, o->f_held_glob,
		    o->f_settling, o->f_released, o->f_sent,
		    o->f_glob_on_settle, (unsigned long long)o->brk_trips);
		s[0] += o->n;
		s[1] += o->admitted;
		s[2] += o->held_org;
		s[3] += o->held_glob;
		s[4] += o->refused;
		s[5] += o->f_held_org;
		s[6] += o->f_held_glob;
		s[7] += o->f_settling;
		s[8] += o->f_released;
		s[9] += o->f_sent;
		s[10] += o->f_glob_on_settle;
	}
	printf("%-8s %4s %5u | %4u %5u %7u %8u %7s %6s | %7u %8u %8u %8u %4u "
	       "%7u\n",
	    "total", "", s[0], s[1], s[2], s[3], s[4], "", "", s[5], s[6],
	    s[7], s[8], s[9], s[10]);
	{
		uint32_t h = 0, c = 0;
		for (int i = 0; i < NORGS; i++) {
			h += r->o[i].adm_held;
			c += r->o[i].adm_checked;
		}
		if (r->nnodes > 1)
			printf("  admitted before the trip in organisations of "
			       "nodes other than n%d: %u of %u held now, no "
			       "delivery\n",
			    r->global_node + 1, h, c);
	}
	for (int k = 0; k < r->nnodes; k++)
		printf("  global breaker */%s: %llu held as %s%d counts them\n",
		    REASON, (unsigned long long)r->global_held[k],
		    r->nnodes > 1 ? "n" : "node ", k + 1);
	fflush(stdout);
}

static void
orgs_init(struct run *r, const char *name, int nnodes)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->nnodes = nnodes;
	r->global_node = -1;
	for (int i = 0; i < NORGS; i++) {
		snprintf(r->o[i].name, sizeof(r->o[i].name), "org-%03d", i + 1);
		r->o[i].n = 100 + 50 * (uint32_t)i;
		r->o[i].enroll_node = i % nnodes;
	}
}

static void
orgs_close(struct run *r)
{
	for (int i = 0; i < NORGS; i++) {
		fbx_client_close(r->o[i].rule);
		fbx_client_close(r->o[i].adm);
		r->o[i].rule = r->o[i].adm = NULL;
		free(r->o[i].adm_ids);
		r->o[i].adm_ids = NULL;
	}
}

/* open the two clients of every organisation at the node serving it */
static int
orgs_open(struct fbxt_env *t, struct run *r)
{
	for (int i = 0; i < NORGS; i++) {
		struct org *o = &r->o[i];
		o->rule = open_as(t, r->ep[o->node], "attestation-rule");
		o->adm = open_as(t, r->ep[o->node], "admin");
		if (o->rule == NULL || o->adm == NULL)
			return -1;
	}
	return 0;
}

/* check_admitted - B: every command that a node admitted (settling at
 * submit) in an organisation owned by a node other than the one that
 * tripped the global breaker, read through its owner: held now, no
 * delivery made. */
static void
check_admitted(struct run *r)
{
	for (int i = 0; i < NORGS; i++) {
		struct org *o = &r->o[i];
		if (o->node == r->global_node)
			continue;
		for (size_t j = 0; j < o->nadm; j++) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			const struct fbx_command *c = &rep.u.command.info;
			int rc;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_GET_COMMAND;
			req.u.get.command_id = o->adm_ids[j];
			rc = call(o->adm, "admin", o->name, &req, &rep, NULL);
			o->adm_checked++;
			if (rc == FBX_OK && c->state == FBX_C_HELD &&
			    c->ndeliveries == 0)
				o->adm_held++;
			else
				fprintf(stderr, "storm_split B: %s (n%d) command "
				    "%llu admitted before the global trip on "
				    "n%d: %s, state %s, held_by '%s', %u "
				    "deliveries, note '%s'\n",
				    o->name, o->node + 1,
				    (unsigned long long)o->adm_ids[j],
				    r->global_node + 1, fbx_errname(rc),
				    fbx_cstate_name(c->state), c->held_by,
				    c->ndeliveries, c->note);
			fbx_console_rep_free(&rep);
		}
	}
}

/* ---- run A: one node ---------------------------------------------- */

static int
run_single(struct run *r)
{
	struct fbxt_env t;
	int ok = -1;

	orgs_init(r, "A", 1);
	if (fbxt_setup(&t, "storm_split_a") != 0) {
		FBXT_CHECK(0, "A: setup");
		return -1;
	}
	if (fbxt_daemon_start(&t, NULL) != 0) {
		FBXT_CHECK(0, "A: fuseboxd did not start (see %s/fuseboxd.log)",
		    t.dir);
		goto out;
	}
	snprintf(r->ep[0], sizeof(r->ep[0]), "%s", t.console);
	if (orgs_open(&t, r) != 0) {
		FBXT_CHECK(0, "A: clients");
		goto out;
	}
	for (int i = 0; i < NORGS; i++) {
		int rc = enroll(r->o[i].adm, &r->o[i]);
		FBXT_CHECK(rc == FBX_OK, "A: enroll %s: %s", r->o[i].name,
		    fbx_errname(rc));
	}
	storm(r);
	FBXT_CHECK(settle_wait(r) == 0, "A: settle");
	final(r);
	ok = 0;
out:
	orgs_close(r);
	fbxt_teardown(&t);
	return ok;
}

/* ---- run B: three nodes ------------------------------------------- */

static void
logs_tail(struct fbxt_env *t)
{
	char cmd[800];

	snprintf(cmd, sizeof(cmd),
	    "for f in '%s'/n*.log; do echo \"== $f\"; grep -n -i -E "
	    "'breaker|trip|held|fenced|lease|cluster|error' \"$f\" | "
	    "tail -n 40; done >&2",
	    t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "(could not read the node logs)\n");
}

static int
run_cluster(struct run *r)
{
	struct fbxt_env t;
	PGconn *pg = NULL;
	int owner[NORGS], prev[NORGS], ok = -1, stable = 0;
	int64_t t0, stable_since = 0;

	orgs_init(r, "B", NNODES);
	if (getenv("FBXT_STORM_STALL") != NULL &&
	    sscanf(getenv("FBXT_STORM_STALL"), "%ld:%d", &r->stall_at,
	        &r->stall_ms) != 2)
		r->stall_at = 0;
	if (fbxt_setup(&t, "storm_split_b") != 0) {
		FBXT_CHECK(0, "B: setup");
		return -1;
	}
	for (int k = 0; k < NNODES; k++) {
		snprintf(r->ep[k], sizeof(r->ep[k]), "ipc://%s/n%d.c", t.dir,
		    k + 1);
		snprintf(r->gw[k], sizeof(r->gw[k]), "ipc://%s/n%d.g", t.dir,
		    k + 1);
	}
	for (int k = 0; k < NNODES; k++) {
		r->pid[k] = node_start(&t, r, k);
		if (r->pid[k] <= 0 || node_wait_ready(&t, r, k) != 0) {
			FBXT_CHECK(0, "B: node n%d did not start (see %s/n%d.log)",
			    k + 1, t.dir, k + 1);
			goto out;
		}
	}
	pg = PQconnectdb(t.store);
	if (PQstatus(pg) != CONNECTION_OK) {
		FBXT_CHECK(0, "B: libpq: %s", PQerrorMessage(pg));
		goto out;
	}
	/* each organisation enrolled through a node of its own: that node
	 * claims it (nobody owned it yet) */
	for (int i = 0; i < NORGS; i++) {
		struct org *o = &r->o[i];
		fbx_client *c = open_as(&t, r->ep[o->enroll_node], "admin");
		int rc = c != NULL ? enroll(c, o) : FBX_ECONFIG;
		FBXT_CHECK(rc == FBX_OK, "B: enroll %s through n%d: %s",
		    o->name, o->enroll_node + 1, fbx_errname(rc));
		fbx_client_close(c);
	}
	/* until the leases are stable: every organisation owned live, every
	 * node owning some, the same owners over two lease periods (the
	 * idle rebalancing is done); a hang guard of 120 s */
	t0 = mono_ms();
	memset(prev, 0xff, sizeof(prev));
	for (;;) {
		int all = 1, per[NNODES] = { 0 };
		if (lease_map(pg, r, owner) != 0) {
			FBXT_CHECK(0, "B: fbx_lease not readable");
			goto out;
		}
		for (int i = 0; i < NORGS; i++) {
			if (owner[i] < 0 || owner[i] >= NNODES)
				all = 0;
			else
				per[owner[i]]++;
		}
		for (int k = 0; k < NNODES; k++)
			if (per[k] == 0)
				all = 0;
		if (all && memcmp(owner, prev, sizeof(owner)) == 0) {
			if (!stable) {
				stable = 1;
				stable_since = mono_ms();
			}
			if (mono_ms() - stable_since >= 2 * LEASE_MS)
				break;
		} else {
			stable = 0;
			memcpy(prev, owner, sizeof(prev));
		}
		if (mono_ms() - t0 > 120000) {
			FBXT_CHECK(0, "B: leases not spread and stable over "
			    "the three nodes after 120 s");
			lease_print(pg);
			goto out;
		}
		sleep_ms(250);
	}
	fprintf(stderr, "storm_split B: leases stable:");
	for (int i = 0; i < NORGS; i++) {
		r->o[i].node = owner[i];
		fprintf(stderr, " %s=n%d", r->o[i].name, owner[i] + 1);
	}
	fputc('\n', stderr);
	lease_print(pg);
	diag_pg = pg;
	if (orgs_open(&t, r) != 0) {
		FBXT_CHECK(0, "B: clients");
		goto out;
	}
	storm(r);
	FBXT_CHECK(settle_wait(r) == 0, "B: settle");
	final(r);
	check_admitted(r);
	/* the owners did not change during the storm */
	if (lease_map(pg, r, owner) == 0) {
		for (int i = 0; i < NORGS; i++)
			FBXT_CHECK(owner[i] == r->o[i].node,
			    "B: %s moved from n%d to n%d during the run (a "
			    "lease ran out: the storm was not split as "
			    "planned; see the nodes' logs)",
			    r->o[i].name, r->o[i].node + 1, owner[i] + 1);
	}
	ok = 0;
out:
	if (fbxt_failed > 0)
		logs_tail(&t);
	orgs_close(r);
	nodes_stop(r);
	diag_pg = NULL;
	if (pg != NULL)
		PQfinish(pg);
	fbxt_teardown(&t);
	return ok;
}

/* ---- the comparison ----------------------------------------------- */

static void
compare(const struct run *a, const struct run *b)
{
	int tripped = 0, other = 0;
	uint64_t ga = 0, gb = 0;

	FBXT_CHECK(a->submits == b->submits, "submits A %ld B %ld", a->submits,
	    b->submits);
	FBXT_CHECK(a->global_at > 0, "A: the global breaker never opened");
	FBXT_CHECK(a->global_at == b->global_at,
	    "global trip point: A after submit %ld, B after submit %ld",
	    a->global_at, b->global_at);
	FBXT_CHECK(b->global_state == FBX_BS_OPEN && b->global_trips == 1,
	    "B: global breaker %s, trips %llu",
	    b->global_state == FBX_BS_OPEN ? "open" : "closed",
	    (unsigned long long)b->global_trips);
	FBXT_CHECK(a->global_state == FBX_BS_OPEN && a->global_trips == 1,
	    "A: global breaker %s, trips %llu",
	    a->global_state == FBX_BS_OPEN ? "open" : "closed",
	    (unsigned long long)a->global_trips);
	for (int k = 0; k < a->nnodes; k++)
		ga += a->global_held[k];
	for (int k = 0; k < b->nnodes; k++)
		gb += b->global_held[k];
	FBXT_CHECK(ga == gb, "commands held by the global breaker: A %llu, "
	    "B %llu over its nodes", (unsigned long long)ga,
	    (unsigned long long)gb);
	for (int i = 0; i < NORGS; i++) {
		const struct org *x = &a->o[i], *y = &b->o[i];
#define SAME(f)                                                              \
	FBXT_CHECK(x->f == y->f, "%s: " #f " A %llu B %llu", x->name,        \
	    (unsigned long long)x->f, (unsigned long long)y->f)
		SAME(admitted);
		SAME(held_org);
		SAME(held_glob);
		SAME(refused);
		SAME(trip_at);
		SAME(f_held_org);
		SAME(f_held_glob);
		SAME(f_settling);
		SAME(f_released);
		SAME(f_sent);
		SAME(f_total);
		SAME(brk_state);
		SAME(brk_trips);
		SAME(brk_held);
#undef SAME
		if (y->trip_at > 0)
			tripped++;
		FBXT_CHECK(y->refused == 0 && y->f_total == y->n,
		    "B %s: %u refused, %u of %u commands listed", y->name,
		    y->refused, y->f_total, y->n);
		FBXT_CHECK(y->f_sent == 0 && y->f_released == 0 &&
		        y->f_settling == 0,
		    "B %s: %u with deliveries, %u released, %u settling",
		    y->name, y->f_sent, y->f_released, y->f_settling);
		/* held, not sent, where another node tripped the global
		 * breaker: what this organisation's owner had admitted
		 * before the trip was held when its window ended */
		if (y->node != b->global_node && y->adm_checked > 0) {
			other++;
			FBXT_CHECK(y->adm_held == y->adm_checked &&
			        y->adm_checked == y->admitted,
			    "B %s (n%d, global tripped on n%d): %u of %u "
			    "admitted commands held without deliveries",
			    y->name, y->node + 1, b->global_node + 1,
			    y->adm_held, y->admitted);
			FBXT_CHECK(y->f_held_org + y->f_held_glob == y->n,
			    "B %s (n%d): %u of %u held", y->name, y->node + 1,
			    y->f_held_org + y->f_held_glob, y->n);
		}
	}
	FBXT_CHECK(tripped >= 3, "B: %d organisation breakers tripped",
	    tripped);
	FBXT_CHECK(other >= 1, "B: no organisation of another node than n%d "
	    "had admitted commands", b->global_node + 1);
}

int
main(void)
{
	static struct run a, b;
	const char *only;

	if (!fbxt_pg()) {
		fprintf(stderr, "storm_split_test: FBX_TEST_PG_URL is not set: "
		                "run it under tests/pg_cluster.sh run (CTest: "
		                "fbx.tests.storm_split_pg_test)\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* FBXT_STORM_RUN=A or B: that run alone (to look into one) */
	only = getenv("FBXT_STORM_RUN");
	if (only == NULL || strcmp(only, "B") != 0) {
		run_single(&a);
		print_run(&a);
	}
	if (only == NULL || strcmp(only, "A") != 0) {
		run_cluster(&b);
		print_run(&b);
	}
	if (only == NULL)
		compare(&a, &b);
	return fbxt_done();
}
