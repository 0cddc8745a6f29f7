/*
 * pgnodes.c: bench_pgnodes, the measuring side of bench/pgnodes.sh
 * (issue 13 item 5): fan-out and intake against daemons that are already
 * running, one or several fuseboxd nodes sharing a PostgreSQL store, or
 * one plain fuseboxd on LMDB for the comparison. The script starts the
 * store, the daemons and one fusebox-devsim gateway per node and enrolls
 * the fleet; this program only talks to the consoles, so both sides are
 * measured by the same client code.
 *
 * Every organisation is sent to the console of its owner, read from a
 * routes file (one "ORG ENDPOINT" line per organisation: the script
 * writes it from fbx_lease / fbx_node, or names the single console for
 * LMDB). A MOVED answer is followed once to the endpoint it names and
 * counted (a lease that moved between the lookup and the request).
 *
 *   fanout: one command (type query, operator origin) to the whole of
 *     each organisation, submitted to its owner one after the other;
 *     the clock runs from just before the first submit until every
 *     command was seen DONE (GET_COMMAND at its owner, every --poll-ms).
 *     Deliveries/s = deliveries of all commands / that wall time.
 *   intake: K clients (each its own DEALER socket and CURVE session, as
 *     bench_intake's), client i on organisation i mod orgs at its owner,
 *     each keeping M single-device submits outstanding for S seconds;
 *     then it waits until every node is idle again (the deliveries of
 *     those commands answered), so the next figure starts from rest.
 *
 * CPU: --pids names the daemons; their CPU (all threads) per delivery or
 * per command is reported, and so is the whole machine's busy time
 * (/proc/stat: daemons, PostgreSQL, gateways, this program) per
 * delivery or command. Commits: the sum of the nodes' commit counters.
 * Prints one human line and one JSON line (the last line on stdout).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "bench.h"
#include "fbx_keys.h"

#define ORGS_MAX 1024
#define EPS_MAX 16
#define CLIENTS_MAX 1024
#define INFLIGHT_MAX 256
#define THREADS_MAX 16
#define REQ_TIMEOUT_US (30 * 1000000LL)

struct opts {
	const char *mode;
	const char *routes;
	const char *pids;
	int type;
	uint32_t timeout_s;
	uint32_t poll_ms;
	uint32_t clients, inflight, threads, seconds, per_org, run;
};

/* organisations and the distinct endpoints they are served at */
struct routes {
	uint32_t norgs;
	char org[ORGS_MAX][FBX_ID_MAX + 1];
	int ep[ORGS_MAX]; /* index into eps */
	uint32_t neps;
	char eps[EPS_MAX][256];
	fbx_client *cli[EPS_MAX];
};

static pid_t pids[EPS_MAX];
static uint32_t npids;

/* ------------------------------------------------------------ helpers */

static int
ep_index(struct routes *R, const char *ep)
{
	for (uint32_t i = 0; i < R->neps; i++)
		if (strcmp(R->eps[i], ep) == 0)
			return (int)i;
	if (R->neps == EPS_MAX || strlen(ep) >= sizeof(R->eps[0]))
		return -1;
	snprintf(R->eps[R->neps], sizeof(R->eps[0]), "%s", ep);
	if (fbx_client_open(ep, 10000, &R->cli[R->neps]) != FBX_OK) {
		fprintf(stderr, "pgnodes: cannot open a client for %s\n", ep);
		return -1;
	}
	return (int)R->neps++;
}

static int
routes_load(struct routes *R, const char *path)
{
	char line[600], org[128], ep[400];
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "pgnodes: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		int i;
		if (sscanf(line, "%127s %399s", org, ep) != 2)
			continue;
		if (R->norgs == ORGS_MAX || strlen(org) > FBX_ID_MAX) {
			fprintf(stderr, "pgnodes: too many organisations or a "
			                "long name in %s\n",
			    path);
			fclose(f);
			return -1;
		}
		if ((i = ep_index(R, ep)) < 0) {
			fclose(f);
			return -1;
		}
		snprintf(R->org[R->norgs], sizeof(R->org[0]), "%s", org);
		R->ep[R->norgs++] = i;
	}
	fclose(f);
	if (R->norgs == 0) {
		fprintf(stderr, "pgnodes: no routes in %s\n", path);
		return -1;
	}
	return 0;
}

static void
pids_parse(const char *s)
{
	char *copy, *tok, *save = NULL;

	if (s == NULL)
		return;
	copy = strdup(s);
	for (tok = strtok_r(copy, ",", &save); tok != NULL && npids < EPS_MAX;
	     tok = strtok_r(NULL, ",", &save))
		pids[npids++] = (pid_t)strtol(tok, NULL, 10);
	free(copy);
}

/* daemons_cpu_ms - CPU of every daemon named by --pids */
static double
daemons_cpu_ms(void)
{
	double t = 0;

	for (uint32_t i = 0; i < npids; i++) {
		double c = fbxb_cpu_ms(pids[i]);
		if (c > 0)
			t += c;
	}
	return t;
}

/* machine_busy_ms - busy CPU time of the whole machine (all CPUs) */
static double
machine_busy_ms(void)
{
	unsigned long long v[10] = { 0 };
	long tck = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
	    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 8 || tck <= 0)
		return -1;
	/* user nice system [idle iowait] irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1000.0 /
	    (double)tck;
}

static double
load1(void)
{
	double v = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%lf", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* commits_all - the sum of the nodes' commit counters */
static uint64_t
commits_all(struct routes *R)
{
	uint64_t t = 0;

	for (uint32_t i = 0; i < R->neps; i++) {
		struct fbx_engine_stats s;
		if (fbxb_ping(R->cli[i], &s) == FBX_OK)
			t += s.commits;
	}
	return t;
}

/* wait_idle_all - every node has nothing queued or in flight.
 * @return ms waited, or -1 on timeout. */
static int64_t
wait_idle_all(struct routes *R, int timeout_ms)
{
	int64_t t0 = fbxb_mono_us();

	for (uint32_t i = 0; i < R->neps; i++) {
		int64_t left = timeout_ms - (fbxb_mono_us() - t0) / 1000;
		if (left <= 0 ||
		    fbxb_wait_idle(R->cli[i], (int)left) != FBX_OK)
			return -1;
	}
	return (fbxb_mono_us() - t0) / 1000;
}

/* ------------------------------------------------------------- fanout */

struct fcmd {
	uint64_t id;
	int ep;
	int done;
	int64_t done_ms; /* since t0 */
	uint32_t ndlv, succeeded;
};

/* One submitter per organisation: its own client (connected and
 * answered before the clock starts), released all at once, so that the
 * commands reach the nodes together as from concurrent consoles. A
 * MOVED answer is followed to the endpoint it names, BUSY (a takeover
 * loading the organisation) retried. */
struct submitter {
	pthread_t th;
	struct routes *R;
	const struct opts *op;
	uint32_t o;
	struct fcmd *fc;
	pthread_barrier_t *bar;
	fbx_client *cli;
	char ep[256];
	uint32_t moved;
	int rc;
	int64_t done_us; /* the submit's reply */
};

static void *
submitter_main(void *arg)
{
	struct submitter *s = arg;
	struct fbx_engine_stats st;

	snprintf(s->ep, sizeof(s->ep), "%s", s->R->eps[s->R->ep[s->o]]);
	s->rc = fbx_client_open(s->ep, 30000, &s->cli);
	if (s->rc == FBX_OK)
		s->rc = fbxb_ping(s->cli, &st);
	pthread_barrier_wait(s->bar);
	for (int attempt = 0; s->rc == FBX_OK && attempt < 50 && !fbxb_stop;
	     attempt++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		struct fbx_command *cmd = &req.u.submit.cmd;
		int rc;

		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_SUBMIT;
		cmd->type = (uint8_t)s->op->type;
		cmd->origin = FBX_ORIGIN_OPERATOR;
		cmd->target_kind = FBX_TARGET_ORG;
		cmd->ttl_s = 3600;
		snprintf(cmd->idem_key, sizeof(cmd->idem_key),
		    "pgnodes-fanout-%s", s->R->org[s->o]);
		if (s->cli == NULL &&
		    fbx_client_open(s->ep, 30000, &s->cli) != FBX_OK) {
			s->rc = FBX_EIO;
			break;
		}
		rc = fbxb_call(s->cli, s->R->org[s->o], &req, &rep);
		if (rc == FBX_OK) {
			s->fc->id = rep.u.submit.command_id;
			s->done_us = fbxb_mono_us();
			fbx_console_rep_free(&rep);
			return NULL;
		}
		if (rc == FBX_EMOVED && rep.owner_endpoint[0] != '\0') {
			s->moved++;
			fprintf(stderr, "pgnodes: %s: MOVED to %s (%s)\n",
			    s->R->org[s->o], rep.owner_node,
			    rep.owner_endpoint);
			snprintf(s->ep, sizeof(s->ep), "%s", rep.owner_endpoint);
			fbx_client_close(s->cli);
			s->cli = NULL;
			fbx_console_rep_free(&rep);
			continue;
		}
		if (rc == FBX_EBUSY || rc == FBX_EFENCED) {
			fbx_console_rep_free(&rep);
			fbxb_sleep_ms(100);
			continue;
		}
		fprintf(stderr, "pgnodes: submit %s: %s %s\n", s->R->org[s->o],
		    fbx_strerror(rc), rep.errmsg);
		fbx_console_rep_free(&rep);
		s->rc = rc;
		return NULL;
	}
	if (s->rc == FBX_OK)
		s->rc = FBX_ETIMEOUT;
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
fanout(struct routes *R, const struct opts *op)
{
	struct fcmd *fc = calloc(R->norgs, sizeof(*fc));
	int64_t t0, tsub, end, *dms = NULL;
	double dcpu0, mcpu0, dcpu, mcpu;
	uint64_t c0, c1, ndlv = 0, ok = 0;
	uint32_t moved = 0, left, polls = 0;
	double wall, rate, l0 = load1();
	int rc = 1;

	if (fc == NULL)
		return 1;
	{
		struct submitter *sb = calloc(R->norgs, sizeof(*sb));
		pthread_barrier_t bar;
		int bad = 0;

		if (sb == NULL ||
		    pthread_barrier_init(&bar, NULL, R->norgs + 1) != 0) {
			free(sb);
			goto out;
		}
		for (uint32_t o = 0; o < R->norgs; o++) {
			sb[o].R = R;
			sb[o].op = op;
			sb[o].o = o;
			sb[o].fc = &fc[o];
			sb[o].bar = &bar;
			if (pthread_create(&sb[o].th, NULL, submitter_main,
			        &sb[o]) != 0) {
				fprintf(stderr, "pgnodes: cannot start a "
				                "thread\n");
				exit(70); /* the barrier cannot be met */
			}
		}
		c0 = commits_all(R);
		dcpu0 = daemons_cpu_ms();
		mcpu0 = machine_busy_ms();
		t0 = fbxb_mono_us();
		pthread_barrier_wait(&bar);
		tsub = t0;
		for (uint32_t o = 0; o < R->norgs; o++) {
			pthread_join(sb[o].th, NULL);
			moved += sb[o].moved;
			if (sb[o].rc != FBX_OK) {
				bad = 1;
			} else {
				/* polled where the submit went */
				int n = ep_index(R, sb[o].ep);
				fc[o].ep = n >= 0 ? n : R->ep[o];
				if (sb[o].done_us > tsub)
					tsub = sb[o].done_us;
			}
			fbx_client_close(sb[o].cli);
		}
		pthread_barrier_destroy(&bar);
		free(sb);
		if (bad)
			goto out;
	}
	left = R->norgs;
	end = t0 + (int64_t)op->timeout_s * 1000000;
	while (left > 0 && !fbxb_stop && fbxb_mono_us() < end) {
		for (uint32_t o = 0; o < R->norgs; o++) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			int e;
			if (fc[o].done)
				continue;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_GET_COMMAND;
			req.u.get.command_id = fc[o].id;
			e = fbxb_call(R->cli[fc[o].ep], R->org[o], &req, &rep);
			polls++;
			if (e == FBX_OK &&
			    rep.u.command.info.state == FBX_C_DONE) {
				fc[o].done = 1;
				fc[o].done_ms = (fbxb_mono_us() - t0) / 1000;
				fc[o].ndlv = rep.u.command.info.ndeliveries;
				fc[o].succeeded = rep.u.command.info
				                      .counts[FBX_D_SUCCEEDED];
				left--;
			} else if (e != FBX_OK && e != FBX_ETIMEOUT) {
				fprintf(stderr, "pgnodes: get %s %" PRIu64
				                ": %s %s\n",
				    R->org[o], fc[o].id, fbx_strerror(e),
				    rep.errmsg);
			}
			fbx_console_rep_free(&rep);
		}
		if (left > 0)
			fbxb_sleep_ms((int)op->poll_ms);
	}
	if (left > 0) {
		fprintf(stderr, "pgnodes: %" PRIu32 " of %" PRIu32
		                " commands not done after %" PRIu32 " s\n",
		    left, R->norgs, op->timeout_s);
		goto out;
	}
	dcpu = daemons_cpu_ms() - dcpu0;
	mcpu = machine_busy_ms() - mcpu0;
	c1 = commits_all(R);
	dms = calloc(R->norgs, sizeof(*dms));
	if (dms == NULL)
		goto out;
	for (uint32_t o = 0; o < R->norgs; o++) {
		ndlv += fc[o].ndlv;
		ok += fc[o].succeeded;
		dms[o] = fc[o].done_ms;
	}
	qsort(dms, R->norgs, sizeof(*dms), cmp_i64);
	wall = (double)dms[R->norgs - 1];
	rate = wall > 0 ? (double)ndlv * 1000.0 / wall : 0;
	printf("pgnodes fanout: %" PRIu32 " organisations on %" PRIu32
	       " console(s), %" PRIu64 " deliveries (%" PRIu64
	       " succeeded): wall %.0f ms, %.0f deliveries/s; submits took "
	       "%.0f ms (concurrently); first command done at %" PRId64 " ms, median %" PRId64
	       " ms; daemon CPU %.2f us/delivery, machine %.2f us/delivery; "
	       "%" PRIu64 " commits; %" PRIu32 " MOVED; %" PRIu32 " polls\n",
	    R->norgs, R->neps, ndlv, ok, wall, rate, (tsub - t0) / 1000.0,
	    dms[0], dms[R->norgs / 2], ndlv ? dcpu * 1000.0 / ndlv : 0,
	    ndlv ? mcpu * 1000.0 / ndlv : 0, c1 - c0, moved, polls);
	printf("{\"bench\":\"pgnodes_fanout\",\"orgs\":%" PRIu32
	       ",\"consoles\":%" PRIu32 ",\"devices\":%" PRIu64
	       ",\"succeeded\":%" PRIu64 ",\"wall_ms\":%.0f,"
	       "\"deliveries_per_s\":%.0f,\"submit_ms\":%.0f,"
	       "\"first_done_ms\":%" PRId64 ",\"median_done_ms\":%" PRId64
	       ",\"daemon_cpu_us_per_delivery\":%.2f,"
	       "\"machine_cpu_us_per_delivery\":%.2f,\"commits\":%" PRIu64
	       ",\"moved\":%" PRIu32 ",\"load1\":%.2f}\n",
	    R->norgs, R->neps, ndlv, ok, wall, rate, (tsub - t0) / 1000.0,
	    dms[0], dms[R->norgs / 2], ndlv ? dcpu * 1000.0 / ndlv : 0,
	    ndlv ? mcpu * 1000.0 / ndlv : 0, c1 - c0, moved, l0);
	fflush(stdout);
	rc = 0;
out:
	free(fc);
	free(dms);
	return rc;
}

/* ------------------------------------------------------------- intake */

struct keys {
	char principal[FBX_ID_MAX + 1];
	char pub[FBX_Z85_KEY_LEN + 1];
	char secret[FBX_Z85_KEY_LEN + 1];
	char server[FBX_Z85_KEY_LEN + 1];
};

struct slot {
	uint64_t req_id;
	int64_t t0_us;
};

struct cli {
	void *sock;
	uint32_t index;
	const char *org;
	const char *endpoint;
	uint32_t dev0; /* first device of this client in its organisation */
	uint32_t sent;
	uint64_t next_req;
	struct slot slots[INFLIGHT_MAX];
	uint32_t nout;
	uint64_t ping_id;
};

struct worker {
	pthread_t th;
	const struct opts *o;
	const struct keys *k;
	void *ctx;
	atomic_int *go;
	atomic_int *ready;
	struct cli *cli;
	uint32_t ncli;
	int64_t deadline_us;
	double *lat;
	size_t n, cap;
	uint64_t errors, busy, moved, timeouts;
	int last_err;
	int failed;
};

static int
keys_load(struct keys *k)
{
	struct fbx_key c, s;
	const char *cp = getenv("FUSEBOX_KEY");
	const char *sp = getenv("FUSEBOX_SERVER_KEY");
	char why[300] = "";

	if (cp == NULL || sp == NULL ||
	    fbx_key_read(cp, 1, &c, why, sizeof(why)) != FBX_OK ||
	    fbx_key_read(sp, 0, &s, why, sizeof(why)) != FBX_OK) {
		fprintf(stderr, "pgnodes: console keys ($FUSEBOX_KEY, "
		                "$FUSEBOX_SERVER_KEY): %s\n",
		    why);
		return FBX_ECONFIG;
	}
	snprintf(k->principal, sizeof(k->principal), "%s", c.name);
	memcpy(k->pub, c.public_z85, sizeof(k->pub));
	memcpy(k->secret, c.secret_z85, sizeof(k->secret));
	memcpy(k->server, s.public_z85, sizeof(k->server));
	memset(&c, 0, sizeof(c));
	return FBX_OK;
}

static int
cli_open(struct worker *w, struct cli *c)
{
	int zero = 0, hwm = 100000;
	int64_t maxmsg = FBX_CONSOLE_MSG_MAX + 64 * 1024;

	c->sock = zmq_socket(w->ctx, ZMQ_DEALER);
	if (c->sock == NULL ||
	    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg,
	        sizeof(maxmsg)) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, w->k->server,
	        FBX_Z85_KEY_LEN + 1) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, w->k->pub,
	        FBX_Z85_KEY_LEN + 1) != 0 ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, w->k->secret,
	        FBX_Z85_KEY_LEN + 1) != 0 ||
	    zmq_connect(c->sock, c->endpoint) != 0) {
		fprintf(stderr, "pgnodes: client socket: %s\n",
		    zmq_strerror(errno));
		return FBX_EIO;
	}
	return FBX_OK;
}

static int
cli_send(struct worker *w, struct cli *c, struct fbx_console_req *req)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	req->version = FBX_PROTOCOL_VERSION;
	req->request_id = c->next_req++;
	snprintf(req->org, sizeof(req->org), "%s", c->org);
	snprintf(req->actor, sizeof(req->actor), "%s", w->k->principal);
	rc = fbx_console_req_encode(req, &buf, &len);
	if (rc != FBX_OK)
		return rc;
	if (zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 0) {
		free(buf);
		return errno == EAGAIN ? FBX_EBUSY : FBX_EIO;
	}
	rc = zmq_send(c->sock, buf, len, 0) < 0 ? FBX_EIO : FBX_OK;
	free(buf);
	return rc;
}

/* cli_submit - a single-device query for the next device of the
 * client's share of its organisation, a fresh idempotency key */
static int
cli_submit(struct worker *w, struct cli *c, int64_t now)
{
	struct fbx_console_req req;
	struct fbx_command *cmd = &req.u.submit.cmd;
	fbx_id dev[1];
	int rc;

	memset(&req, 0, sizeof(req));
	snprintf(dev[0], sizeof(dev[0]), "%s-d%06" PRIu32, c->org,
	    (c->dev0 + c->sent) % w->o->per_org);
	req.kind = FBX_CREQ_SUBMIT;
	cmd->type = FBX_CMD_QUERY;
	cmd->origin = FBX_ORIGIN_OPERATOR;
	cmd->target_kind = FBX_TARGET_DEVICES;
	cmd->ttl_s = 3600;
	cmd->dev_ids = dev;
	cmd->ndev_ids = 1;
	snprintf(cmd->idem_key, sizeof(cmd->idem_key),
	    "pgnodes-%" PRIu32 "-%" PRIu32 "-%" PRIu32, w->o->run, c->index,
	    c->sent);
	rc = cli_send(w, c, &req);
	if (rc != FBX_OK)
		return rc;
	c->slots[c->nout].req_id = req.request_id;
	c->slots[c->nout].t0_us = now;
	c->nout++;
	c->sent++;
	return FBX_OK;
}

static int
lat_push(struct worker *w, double ms)
{
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 65536;
		double *v = realloc(w->lat, ncap * sizeof(*v));
		if (v == NULL)
			return FBX_ENOMEM;
		w->lat = v;
		w->cap = ncap;
	}
	w->lat[w->n++] = ms;
	return FBX_OK;
}

static int
on_reply(struct worker *w, struct cli *c, const void *buf, size_t len)
{
	struct fbx_console_rep rep;
	int rc = FBX_OK;
	uint32_t i;

	memset(&rep, 0, sizeof(rep));
	if (fbx_console_rep_decode(buf, len, &rep) != FBX_OK) {
		w->errors++;
		w->last_err = FBX_EMALFORMED;
		return FBX_OK;
	}
	if (c->ping_id != 0 && rep.request_id == c->ping_id) {
		c->ping_id = rep.err == FBX_OK ? 0 : c->ping_id;
		goto out;
	}
	for (i = 0; i < c->nout; i++)
		if (c->slots[i].req_id == rep.request_id)
			break;
	if (i == c->nout)
		goto out;
	if (rep.err == FBX_OK && rep.kind == FBX_CREQ_SUBMIT &&
	    rep.u.submit.command_id != 0) {
		rc = lat_push(w,
		    (double)(fbxb_mono_us() - c->slots[i].t0_us) / 1000.0);
	} else {
		w->errors++;
		w->last_err = rep.err != FBX_OK ? rep.err : FBX_EMALFORMED;
		if (rep.err == FBX_EBUSY)
			w->busy++;
		if (rep.err == FBX_EMOVED)
			w->moved++;
	}
	c->slots[i] = c->slots[--c->nout];
out:
	fbx_console_rep_free(&rep);
	return rc;
}

static int
cli_recv(struct worker *w, struct cli *c)
{
	for (;;) {
		zmq_msg_t part, body;
		int nparts = 0, more, have = 0, rc = FBX_OK;

		zmq_msg_init(&body);
		do {
			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, c->sock,
			        nparts ? 0 : ZMQ_DONTWAIT) < 0) {
				int e = errno;
				zmq_msg_close(&part);
				zmq_msg_close(&body);
				return nparts == 0 && e == EAGAIN ? FBX_OK
				                                  : FBX_EIO;
			}
			more = zmq_msg_more(&part);
			nparts++;
			if (zmq_msg_size(&part) > 0 && !have) {
				zmq_msg_move(&body, &part);
				have = 1;
			}
			zmq_msg_close(&part);
		} while (more);
		if (have)
			rc = on_reply(w, c, zmq_msg_data(&body),
			    zmq_msg_size(&body));
		zmq_msg_close(&body);
		if (rc != FBX_OK)
			return rc;
	}
}

static int
poll_all(struct worker *w, zmq_pollitem_t *it, long ms)
{
	int n = zmq_poll(it, (int)w->ncli, ms);

	if (n < 0)
		return errno == EINTR ? FBX_OK : FBX_EIO;
	for (uint32_t i = 0; i < w->ncli && n > 0; i++) {
		if (it[i].revents & ZMQ_POLLIN) {
			int rc = cli_recv(w, &w->cli[i]);
			if (rc != FBX_OK)
				return rc;
		}
	}
	return FBX_OK;
}

static int
warm_up(struct worker *w, zmq_pollitem_t *it)
{
	int64_t end = fbxb_mono_us() + 30 * 1000000LL;
	uint32_t waiting;

	for (uint32_t i = 0; i < w->ncli; i++) {
		struct cli *c = &w->cli[i];
		if (cli_open(w, c) != FBX_OK)
			return FBX_EIO;
		it[i].socket = c->sock;
		it[i].events = ZMQ_POLLIN;
	}
	do {
		waiting = 0;
		for (uint32_t i = 0; i < w->ncli; i++) {
			struct cli *c = &w->cli[i];
			struct fbx_console_req req;
			if (c->ping_id == 0 && c->next_req > 1)
				continue;
			waiting++;
			if (c->ping_id != 0)
				continue;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_PING;
			if (cli_send(w, c, &req) != FBX_OK)
				return FBX_EIO;
			c->ping_id = req.request_id;
		}
		if (waiting == 0)
			return FBX_OK;
		if (poll_all(w, it, 50) != FBX_OK)
			return FBX_EIO;
		if (fbxb_mono_us() > end) {
			fprintf(stderr, "pgnodes: %" PRIu32 " clients got no "
			                "answer to PING in 30 s\n",
			    waiting);
			return FBX_ETIMEOUT;
		}
	} while (!fbxb_stop && atomic_load(w->go) >= 0);
	return FBX_EIO;
}

static void
expire(struct worker *w, int64_t now)
{
	for (uint32_t i = 0; i < w->ncli; i++) {
		struct cli *c = &w->cli[i];
		for (uint32_t j = 0; j < c->nout;) {
			if (now - c->slots[j].t0_us < REQ_TIMEOUT_US) {
				j++;
				continue;
			}
			w->errors++;
			w->timeouts++;
			w->last_err = FBX_ETIMEOUT;
			c->slots[j] = c->slots[--c->nout];
		}
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	zmq_pollitem_t *it = calloc(w->ncli, sizeof(*it));
	uint32_t m = w->o->inflight;
	int64_t last_expire = 0;

	if (it == NULL || warm_up(w, it) != FBX_OK)
		w->failed = 1;
	atomic_fetch_add(w->ready, 1);
	while (atomic_load(w->go) == 0)
		fbxb_sleep_ms(1);
	while (!w->failed && atomic_load(w->go) > 0) {
		int64_t now = fbxb_mono_us();
		int sending = !fbxb_stop && now < w->deadline_us;
		uint32_t out = 0;
		long ms = 0;

		for (uint32_t i = 0; i < w->ncli; i++) {
			struct cli *c = &w->cli[i];
			while (sending && c->nout < m) {
				int rc = cli_submit(w, c, now);
				if (rc == FBX_EBUSY)
					break;
				if (rc != FBX_OK) {
					w->failed = 1;
					break;
				}
			}
			out += c->nout;
		}
		if (!sending && out == 0)
			break;
		if (now - last_expire > 1000000) {
			expire(w, now);
			last_expire = now;
		}
		if (out > 0) {
			ms = sending ? (long)((w->deadline_us - now) / 1000) + 1
			             : 100;
			if (ms > 100)
				ms = 100;
		}
		if (poll_all(w, it, ms) != FBX_OK)
			w->failed = 1;
	}
	for (uint32_t i = 0; i < w->ncli; i++) {
		if (w->cli[i].sock != NULL)
			zmq_close(w->cli[i].sock);
		w->cli[i].sock = NULL;
	}
	free(it);
	return NULL;
}

static int
intake(struct routes *R, const struct opts *o)
{
	struct worker w[THREADS_MAX];
	struct cli *cli = NULL;
	struct keys k;
	atomic_int go, ready;
	void *ctx = NULL;
	double *all = NULL, dcpu0, mcpu0, dcpu, mcpu, rate, l0 = load1();
	size_t total = 0, kk = 0;
	uint64_t errors = 0, busy = 0, moved = 0, timeouts = 0, c0, c1;
	uint32_t nth = o->threads < o->clients ? o->threads : o->clients;
	uint32_t shares[ORGS_MAX] = { 0 };
	int64_t t0, t1, idle_ms;
	int started = 0, last_err = 0, st = 1;

	if (keys_load(&k) != FBX_OK)
		return 1;
	memset(w, 0, sizeof(w));
	atomic_init(&go, 0);
	atomic_init(&ready, 0);
	cli = calloc(o->clients, sizeof(*cli));
	ctx = zmq_ctx_new();
	if (cli == NULL || ctx == NULL ||
	    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2) != 0)
		goto out;
	for (uint32_t i = 0; i < o->clients; i++) {
		uint32_t org = i % R->norgs;
		cli[i].index = i;
		cli[i].org = R->org[org];
		cli[i].endpoint = R->eps[R->ep[org]];
		/* clients of one organisation take disjoint device ranges */
		cli[i].dev0 = (i / R->norgs) * (o->per_org / 4 + 1);
		cli[i].next_req = 1;
		shares[org]++;
	}
	for (uint32_t i = 0; i < nth; i++) {
		uint32_t from = (uint32_t)((uint64_t)o->clients * i / nth);
		uint32_t to = (uint32_t)((uint64_t)o->clients * (i + 1) / nth);
		w[i].o = o;
		w[i].k = &k;
		w[i].ctx = ctx;
		w[i].go = &go;
		w[i].ready = &ready;
		w[i].cli = cli + from;
		w[i].ncli = to - from;
		w[i].deadline_us = INT64_MAX;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
			break;
		started++;
	}
	while (atomic_load(&ready) < started && !fbxb_stop)
		fbxb_sleep_ms(5);
	c0 = commits_all(R);
	dcpu0 = daemons_cpu_ms();
	mcpu0 = machine_busy_ms();
	t0 = fbxb_mono_us();
	for (int i = 0; i < started; i++)
		w[i].deadline_us = t0 + (int64_t)o->seconds * 1000000;
	atomic_store(&go, started == (int)nth && !fbxb_stop ? 1 : -1);
	for (int i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	t1 = fbxb_mono_us();
	dcpu = daemons_cpu_ms() - dcpu0;
	mcpu = machine_busy_ms() - mcpu0;
	c1 = commits_all(R);
	if (started != (int)nth || fbxb_stop)
		goto out;
	for (uint32_t i = 0; i < nth; i++) {
		if (w[i].failed) {
			fprintf(stderr, "pgnodes: a client thread failed\n");
			goto out;
		}
		total += w[i].n;
		errors += w[i].errors;
		busy += w[i].busy;
		moved += w[i].moved;
		timeouts += w[i].timeouts;
		if (w[i].last_err)
			last_err = w[i].last_err;
	}
	all = malloc((total ? total : 1) * sizeof(*all));
	if (all == NULL)
		goto out;
	for (uint32_t i = 0; i < nth; i++) {
		memcpy(all + kk, w[i].lat, w[i].n * sizeof(*all));
		kk += w[i].n;
	}
	/* the deliveries of these commands, before the next figure */
	idle_ms = wait_idle_all(R, 300000);
	rate = total * 1e6 / (double)(t1 - t0);
	{
		double p50 = fbxb_pct(all, total, 50);
		double p99 = fbxb_pct(all, total, 99);
		double mx = fbxb_pct(all, total, 100);
		double dus = total ? dcpu * 1000.0 / (double)total : 0;
		double mus = total ? mcpu * 1000.0 / (double)total : 0;
		double pc = c1 > c0 ? (double)total / (double)(c1 - c0) : 0;
		printf("pgnodes intake clients=%" PRIu32 " inflight=%" PRIu32
		       " on %" PRIu32 " console(s): %zu commands in %.2f s, "
		       "%.0f commands/s, submit->durable ack p50 %.2f p99 "
		       "%.2f max %.2f ms, %" PRIu64 " errors (%" PRIu64
		       " busy, %" PRIu64 " MOVED, %" PRIu64
		       " timed out%s%s); %.1f commands/commit; daemon CPU "
		       "%.0f us/command, machine %.0f us/command; idle again "
		       "after %" PRId64 " ms\n",
		    o->clients, o->inflight, R->neps, total, (t1 - t0) / 1e6,
		    rate, p50, p99, mx, errors, busy, moved, timeouts,
		    last_err ? ", last " : "",
		    last_err ? fbx_errname(last_err) : "", pc, dus, mus,
		    idle_ms);
		printf("{\"bench\":\"pgnodes_intake\",\"clients\":%" PRIu32
		       ",\"inflight\":%" PRIu32 ",\"consoles\":%" PRIu32
		       ",\"seconds\":%" PRIu32 ",\"commands\":%zu,"
		       "\"commands_per_s\":%.0f,\"p50_ms\":%.2f,"
		       "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"errors\":%" PRIu64
		       ",\"moved\":%" PRIu64 ",\"busy\":%" PRIu64
		       ",\"daemon_cpu_us_per_command\":%.0f,"
		       "\"machine_cpu_us_per_command\":%.0f,"
		       "\"commands_per_commit\":%.1f,\"idle_after_ms\":%" PRId64
		       ",\"load1\":%.2f}\n",
		    o->clients, o->inflight, R->neps, o->seconds, total, rate,
		    p50, p99, mx, errors, moved, busy, dus, mus, pc, idle_ms,
		    l0);
		fflush(stdout);
	}
	st = idle_ms < 0 ? 1 : 0;
	if (idle_ms < 0)
		fprintf(stderr, "pgnodes: the nodes were not idle 300 s after "
		                "the intake\n");
out:
	for (uint32_t i = 0; i < nth; i++)
		free(w[i].lat);
	free(all);
	free(cli);
	if (ctx != NULL)
		zmq_ctx_term(ctx);
	return st;
}

/* --------------------------------------------------------------- main */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_pgnodes fanout --routes FILE [--pids P,...]\n"
	    "                     [--timeout-s S] [--poll-ms MS]\n"
	    "       bench_pgnodes intake --routes FILE --per-org N\n"
	    "                     [--clients K] [--inflight M] [--seconds S]\n"
	    "                     [--threads T] [--run R] [--pids P,...]\n"
	    "  FILE: one 'ORG CONSOLE-ENDPOINT' line per organisation (its\n"
	    "  owner node's console). Keys: $FUSEBOX_KEY, $FUSEBOX_SERVER_KEY.\n"
	    "  fanout: one query to each whole organisation at its owner;\n"
	    "  wall time from the first submit until all are DONE (polled\n"
	    "  every MS, default 20; timeout S, default 1800).\n"
	    "  intake: K clients (default 8) on organisations i mod orgs,\n"
	    "  M submits outstanding each (default 1) for S s (default 5);\n"
	    "  N = devices per organisation (the devices org-NNN-d000000..).\n"
	    "  --pids: the daemons whose CPU is reported.\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "routes", required_argument, NULL, 'R' },
		{ "pids", required_argument, NULL, 'P' },
		{ "timeout-s", required_argument, NULL, 'T' },
		{ "poll-ms", required_argument, NULL, 'p' },
		{ "clients", required_argument, NULL, 'c' },
		{ "inflight", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "per-org", required_argument, NULL, 'n' },
		{ "run", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { NULL, NULL, NULL, FBX_CMD_QUERY, 1800, 20, 8, 1, 8,
		5, 0, 1 };
	static struct routes R;
	int c, st;

	fbxb_init();
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
	                     strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "fanout") != 0 &&
	                    strcmp(argv[1], "intake") != 0)) {
		usage(stderr);
		return 64;
	}
	o.mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'R':
			o.routes = optarg;
			break;
		case 'P':
			o.pids = optarg;
			break;
		case 'T':
			o.timeout_s = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			o.poll_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'c':
			o.clients = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			o.inflight = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o.threads = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.seconds = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.per_org = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.run = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (o.routes == NULL || o.timeout_s == 0 || o.clients == 0 ||
	    o.clients > CLIENTS_MAX || o.inflight == 0 ||
	    o.inflight > INFLIGHT_MAX || o.threads == 0 ||
	    o.threads > THREADS_MAX || o.seconds == 0 ||
	    (strcmp(o.mode, "intake") == 0 && o.per_org == 0)) {
		usage(stderr);
		return 64;
	}
	pids_parse(o.pids);
	if (routes_load(&R, o.routes) != 0)
		return 66;
	if (strcmp(o.mode, "fanout") == 0)
		st = fanout(&R, &o);
	else
		st = intake(&R, &o);
	for (uint32_t i = 0; i < R.neps; i++)
		fbx_client_close(R.cli[i]);
	return st;
}
