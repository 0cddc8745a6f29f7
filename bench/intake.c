/*
 * intake.c: bench_intake, command intake from concurrent consoles: K
 * console clients (default 8), each with its own ZeroMQ DEALER socket
 * (its own CURVE connection and principal session at the daemon, as a
 * real console) and its own organisation, keep up to M submit requests
 * outstanding (default 1: one at a time, as fbx_client_call) for S
 * seconds: single-device commands (operator origin, type query, so no
 * blast-radius limit applies; every one with its own idempotency key and
 * a device no other command of the run uses). Requests and replies are
 * the console protocol's, encoded and decoded by proto/ and matched by
 * request id (as fusebox-devsim's storm does); the clients run in up to
 * T threads (default 8), each a poll loop over its share. A submit's
 * reply leaves the engine only after the commit that journals it, so the
 * measured time is submit -> durable acknowledgement. A fusebox-devsim
 * gateway stays attached (unless --no-gateway), so the commands are also
 * delivered and answered as in service. Prints commands/s, p50/p99/max
 * latency, the daemon's CPU per command and its commits per run, then
 * the medians as JSON (the last line on stdout).
 *
 * --floor runs bench_intake_floor (intake_floor.c) instead of fuseboxd:
 * the least a program must do for the same intake with the same
 * libraries and durability (CURVE ROUTER, one LMDB commit per batch of
 * waiting requests, then the replies). The clients are the same.
 *
 * --open N first parks N open commands: single-device queries with a
 * 24-hour TTL for the devices of an organisation no gateway serves
 * ("parked"), as the commands pending for offline devices that a real
 * deployment carries. A turn's cost should not grow with them: compare
 * the figures at --open 0, 10000, 100000 (bench/run.sh does).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zmq.h>

#include "bench.h"
#include "fbx_keys.h"

#define CLIENTS_MAX 1024
#define INFLIGHT_MAX 256
#define THREADS_MAX 64
#define DEVICES_TOTAL 400000u /* enrolled by default, over the clients */
#define REQ_TIMEOUT_US (30 * 1000000LL) /* a request given up on */

struct opts {
	uint32_t clients;
	uint32_t inflight; /* submits outstanding per client */
	uint32_t threads;  /* client threads (poll loops) */
	uint32_t seconds;
	uint32_t runs;
	uint32_t per_org; /* devices enrolled per client organisation */
	int gateway;
	const char *durability; /* fuseboxd --durability, NULL = default */
	uint32_t open; /* commands parked open before the runs */
	int floor;     /* bench_intake_floor instead of fuseboxd */
	const char *floor_trees; /* its --extra-trees, NULL = none */
};

/* The console key every client uses (the admin's, from fbxb_setup) and
 * the engine's public key. */
struct keys {
	char principal[FBX_ID_MAX + 1];
	char pub[FBX_Z85_KEY_LEN + 1];
	char secret[FBX_Z85_KEY_LEN + 1];
	char server[FBX_Z85_KEY_LEN + 1];
};

#define PARKED_ORG "parked"
#define PARKED_DEVICES 10000u

struct parker {
	pthread_t th;
	const char *console;
	uint32_t from, to; /* command indexes */
	uint32_t done;
	int err;
};

/* park_main - submit commands [from, to) for the parked organisation */
static void *
park_main(void *arg)
{
	struct parker *p = arg;
	fbx_client *c = NULL;
	fbx_id dev[1];

	if ((p->err = fbx_client_open(p->console, 30000, &c)) != FBX_OK)
		return NULL;
	for (uint32_t i = p->from; i < p->to && !fbxb_stop; i++) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		snprintf(dev[0], sizeof(dev[0]), "%s-d%06" PRIu32, PARKED_ORG,
		    i % PARKED_DEVICES);
		req.kind = FBX_CREQ_SUBMIT;
		req.u.submit.cmd.type = FBX_CMD_QUERY;
		req.u.submit.cmd.origin = FBX_ORIGIN_OPERATOR;
		req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
		req.u.submit.cmd.ttl_s = 86400;
		req.u.submit.cmd.dev_ids = dev;
		req.u.submit.cmd.ndev_ids = 1;
		p->err = fbxb_call(c, PARKED_ORG, &req, &rep);
		fbx_console_rep_free(&rep);
		if (p->err != FBX_OK)
			break;
		p->done++;
	}
	fbx_client_close(c);
	return NULL;
}

/* park - enroll the parked organisation and submit o->open commands for
 * it, 8 clients at once. @return FBX_OK or the first error. */
static int
park(struct fbxb_env *b, const struct opts *o)
{
	struct parker p[8];
	struct fbx_device *d;
	uint32_t n = o->open, done = 0;
	int64_t t0 = fbxb_mono_us();
	int rc = FBX_OK;

	d = calloc(PARKED_DEVICES, sizeof(*d));
	if (d == NULL)
		return FBX_ENOMEM;
	for (uint32_t i = 0; i < PARKED_DEVICES; i++) {
		snprintf(d[i].id, sizeof(d[i].id), "%s-d%06" PRIu32,
		    PARKED_ORG, i);
		d[i].platform = FBX_PLATFORM_ANDROID;
	}
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_ENROLL;
		req.u.enroll.devs = d;
		req.u.enroll.n = PARKED_DEVICES;
		rc = fbxb_call(b->cli, PARKED_ORG, &req, &rep);
		fbx_console_rep_free(&rep);
	}
	free(d);
	if (rc != FBX_OK) {
		fprintf(stderr, "intake: enrolling %s: %s\n", PARKED_ORG,
		    fbx_strerror(rc));
		return rc;
	}
	memset(p, 0, sizeof(p));
	for (uint32_t i = 0; i < 8; i++) {
		p[i].console = b->console;
		p[i].from = (uint32_t)((uint64_t)n * i / 8);
		p[i].to = (uint32_t)((uint64_t)n * (i + 1) / 8);
		if (pthread_create(&p[i].th, NULL, park_main, &p[i]) != 0) {
			p[i].err = FBX_ENOMEM;
			p[i].th = 0;
		}
	}
	for (uint32_t i = 0; i < 8; i++) {
		if (p[i].th != 0)
			pthread_join(p[i].th, NULL);
		done += p[i].done;
		if (p[i].err != FBX_OK && rc == FBX_OK)
			rc = p[i].err;
	}
	printf("intake: %" PRIu32 " commands parked open for %s in %.1f s\n",
	    done, PARKED_ORG, (fbxb_mono_us() - t0) / 1e6);
	fflush(stdout);
	return rc;
}

/* ------------------------------------------------ pipelined clients */

/* A submit awaiting its reply. */
struct slot {
	uint64_t req_id;
	int64_t t0_us;
};

/* One console: its own DEALER socket (its own CURVE connection and
 * principal session at the daemon) and organisation, up to M requests
 * outstanding. */
struct cli {
	void *sock;
	uint32_t index;          /* organisation org-<index + 1> */
	char org[16];
	uint32_t sent;           /* submits sent this run: device, key */
	uint64_t next_req;       /* request ids, as fbx_client_call's */
	struct slot slots[INFLIGHT_MAX];
	uint32_t nout;
	uint64_t ping_id;        /* the warm-up PING awaiting its pong */
};

/* One thread: a poll loop over its share of the clients. */
struct worker {
	pthread_t th;
	const struct opts *o;
	const struct keys *k;
	void *ctx;
	const char *console;
	atomic_int *go;    /* 1 = start, -1 = abandon */
	atomic_int *ready; /* workers whose clients all answered a PING */
	struct cli *cli;
	uint32_t ncli;
	uint32_t run;
	int64_t deadline_us;
	double *lat; /* ms */
	size_t n, cap;
	uint64_t errors, busy, timeouts, stale;
	int last_err;
	int wrapped; /* a client used more devices than its organisation has */
	int failed;  /* could not run at all */
};

struct run {
	double rate, p50, p99, max, errors, daemon_us, per_commit, load1;
};

/* load1 - the 1-minute load average, -1 if unreadable. */
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

/* cli_open - a DEALER as fbx_client's (linger 0, the same message cap),
 * a CURVE client with the admin key, connected. */
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
	    zmq_connect(c->sock, w->console) != 0) {
		fprintf(stderr, "intake: client socket: %s\n",
		    zmq_strerror(errno));
		return FBX_EIO;
	}
	return FBX_OK;
}

/* cli_send - encode req with the project's encoder and send
 * [empty][request], as fbx_client_call does. @return FBX_OK, FBX_EBUSY
 * (the socket takes nothing now), or an encoding/socket error. */
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
	/* a multipart message is atomic: the body follows the envelope */
	rc = zmq_send(c->sock, buf, len, 0) < 0 ? FBX_EIO : FBX_OK;
	free(buf);
	return rc;
}

/* cli_submit - the next command of client c: single device, query,
 * operator origin, a fresh idempotency key and a device of its own. */
static int
cli_submit(struct worker *w, struct cli *c, int64_t now)
{
	struct fbx_console_req req;
	struct fbx_command *cmd = &req.u.submit.cmd;
	fbx_id dev[1];
	int rc;

	memset(&req, 0, sizeof(req));
	if (c->sent >= w->o->per_org)
		w->wrapped = 1;
	snprintf(dev[0], sizeof(dev[0]), "%s-d%06" PRIu32, c->org,
	    c->sent % w->o->per_org);
	req.kind = FBX_CREQ_SUBMIT;
	cmd->type = FBX_CMD_QUERY;
	cmd->origin = FBX_ORIGIN_OPERATOR;
	cmd->target_kind = FBX_TARGET_DEVICES;
	cmd->ttl_s = 3600;
	cmd->dev_ids = dev;
	cmd->ndev_ids = 1;
	snprintf(cmd->idem_key, sizeof(cmd->idem_key),
	    "intake-%" PRIu32 "-%" PRIu32, w->run, c->sent);
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

/* on_reply - match a reply to its slot by request id; a submit counts
 * when the engine said OK with a command id. */
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
		if (rep.err != FBX_OK)
			w->last_err = rep.err;
		goto out;
	}
	for (i = 0; i < c->nout; i++)
		if (c->slots[i].req_id == rep.request_id)
			break;
	if (i == c->nout) {
		w->stale++; /* a request given up on */
		goto out;
	}
	if (rep.err == FBX_OK && rep.kind == FBX_CREQ_SUBMIT &&
	    rep.u.submit.command_id != 0) {
		rc = lat_push(w,
		    (double)(fbxb_mono_us() - c->slots[i].t0_us) / 1000.0);
	} else {
		w->errors++;
		w->last_err = rep.err != FBX_OK ? rep.err : FBX_EMALFORMED;
		if (rep.err == FBX_EBUSY)
			w->busy++;
	}
	c->slots[i] = c->slots[--c->nout];
out:
	fbx_console_rep_free(&rep);
	return rc;
}

/* cli_recv - every reply waiting on c's socket: [empty][reply]. */
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

/* poll_all - wait up to ms for replies on any client, then take them. */
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

/* warm_up - connect every client and wait for its PING's answer, so
 * that every CURVE handshake is done before the clock starts. */
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
		int64_t now = fbxb_mono_us();
		waiting = 0;
		for (uint32_t i = 0; i < w->ncli; i++) {
			struct cli *c = &w->cli[i];
			struct fbx_console_req req;
			if (c->ping_id == 0 && c->next_req > 1)
				continue; /* answered */
			waiting++;
			if (c->ping_id != 0)
				continue;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_PING;
			/* not connected yet (EAGAIN at the send is not
			 * possible on a DEALER without IMMEDIATE): once */
			if (cli_send(w, c, &req) != FBX_OK)
				return FBX_EIO;
			c->ping_id = req.request_id;
		}
		if (waiting == 0)
			return FBX_OK;
		if (poll_all(w, it, 50) != FBX_OK)
			return FBX_EIO;
		if (now > end) {
			fprintf(stderr, "intake: %" PRIu32 " clients got no "
			                "answer to PING in 30 s\n",
			    waiting);
			return FBX_ETIMEOUT;
		}
	} while (!fbxb_stop && atomic_load(w->go) >= 0);
	return FBX_EIO;
}

/* expire - give up on requests older than REQ_TIMEOUT_US (errors). */
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

/* worker_main - one client thread: connect and warm up its clients,
 * then keep each at M submits outstanding until the deadline, then wait
 * for the replies still due (the run's time includes them). */
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
			/* wake at the deadline at the latest, to stop */
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

/* one_run - run r: the clients in their threads, the daemon's (or the
 * floor's) CPU and commits over it, one human line. @return FBX_OK, or
 * an error when a client thread could not run. */
static int
one_run(struct fbxb_env *b, const struct opts *o, const struct keys *k,
    uint32_t r, struct run *out)
{
	struct worker w[THREADS_MAX];
	struct cli *cli = NULL;
	struct fbx_engine_stats s0, s1;
	atomic_int go, ready;
	void *ctx = NULL;
	double *all = NULL;
	size_t total = 0, kk = 0;
	uint64_t errors = 0, busy = 0, timeouts = 0, commits = 0;
	uint32_t nth = o->threads < o->clients ? o->threads : o->clients;
	int64_t t0, t1;
	double dcpu0, bcpu0, dcpu, bcpu;
	int rc = FBX_ENOMEM, started = 0, last_err = 0, wrapped = 0;
	int io = 2;

	memset(w, 0, sizeof(w));
	memset(&s0, 0, sizeof(s0));
	memset(&s1, 0, sizeof(s1));
	atomic_init(&go, 0);
	atomic_init(&ready, 0);
	cli = calloc(o->clients, sizeof(*cli));
	ctx = zmq_ctx_new();
	if (cli == NULL || ctx == NULL ||
	    zmq_ctx_set(ctx, ZMQ_IO_THREADS, io) != 0)
		goto out;
	for (uint32_t i = 0; i < o->clients; i++) {
		cli[i].index = i;
		snprintf(cli[i].org, sizeof(cli[i].org), "org-%03" PRIu32,
		    i + 1);
		cli[i].next_req = 1;
	}
	for (uint32_t i = 0; i < nth; i++) {
		uint32_t from = (uint32_t)((uint64_t)o->clients * i / nth);
		uint32_t to = (uint32_t)((uint64_t)o->clients * (i + 1) / nth);
		w[i].o = o;
		w[i].k = k;
		w[i].ctx = ctx;
		w[i].console = b->console;
		w[i].go = &go;
		w[i].ready = &ready;
		w[i].cli = cli + from;
		w[i].ncli = to - from;
		w[i].run = r;
		w[i].deadline_us = INT64_MAX;
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "intake: cannot start a thread\n");
			break;
		}
		started++;
	}
	/* every connection made and answered before the clock starts */
	while (atomic_load(&ready) < started && !fbxb_stop)
		fbxb_sleep_ms(5);
	(void)fbxb_ping(b->cli, &s0);
	dcpu0 = fbxb_cpu_ms(b->daemon);
	bcpu0 = fbxb_cpu_ms(0);
	/* the deadline is written before the release (seq_cst store) */
	t0 = fbxb_mono_us();
	for (int i = 0; i < started; i++)
		w[i].deadline_us = t0 + (int64_t)o->seconds * 1000000;
	atomic_store(&go, started == (int)nth && !fbxb_stop ? 1 : -1);
	for (int i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	t1 = fbxb_mono_us();
	dcpu = fbxb_cpu_ms(b->daemon) - dcpu0;
	bcpu = fbxb_cpu_ms(0) - bcpu0;
	if (fbxb_ping(b->cli, &s1) == FBX_OK && s1.commits >= s0.commits)
		commits = s1.commits - s0.commits;
	out->load1 = load1();
	if (started != (int)nth || fbxb_stop) {
		rc = FBX_EIO;
		goto out;
	}
	for (uint32_t i = 0; i < nth; i++) {
		if (w[i].failed) {
			fprintf(stderr, "intake: a client thread failed\n");
			rc = FBX_EIO;
			goto out;
		}
		total += w[i].n;
		errors += w[i].errors;
		busy += w[i].busy;
		timeouts += w[i].timeouts;
		wrapped |= w[i].wrapped;
		if (w[i].last_err)
			last_err = w[i].last_err;
	}
	if (wrapped)
		fprintf(stderr, "intake: a client ran out of devices of its "
		                "own (raise --devices-per-org)\n");
	all = malloc((total ? total : 1) * sizeof(*all));
	if (all == NULL)
		goto out;
	for (uint32_t i = 0; i < nth; i++) {
		memcpy(all + kk, w[i].lat, w[i].n * sizeof(*all));
		kk += w[i].n;
	}
	out->rate = total * 1e6 / (double)(t1 - t0);
	out->max = fbxb_pct(all, total, 100);
	out->p50 = fbxb_pct(all, total, 50);
	out->p99 = fbxb_pct(all, total, 99);
	out->errors = (double)errors;
	out->daemon_us = total ? dcpu * 1000.0 / (double)total : 0;
	out->per_commit = commits ? (double)total / (double)commits : 0;
	printf("%s clients=%" PRIu32 " inflight=%" PRIu32 " run=%" PRIu32
	       ": %zu commands in %.2f s, %.0f commands/s, submit->durable "
	       "ack p50 %.2f p99 %.2f max %.2f ms, %" PRIu64 " errors "
	       "(%" PRIu64 " busy, %" PRIu64 " timed out%s%s); %" PRIu64
	       " commits (%.1f commands/commit); CPU: %s %.0f%% (%.0f "
	       "us/command), clients %.0f%%; load %.2f\n",
	    o->floor ? "intake_floor" : "intake", o->clients, o->inflight, r,
	    total, (t1 - t0) / 1e6, out->rate, out->p50, out->p99, out->max,
	    errors, busy, timeouts, last_err ? ", last " : "",
	    last_err ? fbx_errname(last_err) : "", commits, out->per_commit,
	    o->floor ? "floor" : "daemon", dcpu * 1e5 / (double)(t1 - t0),
	    out->daemon_us, bcpu * 1e5 / (double)(t1 - t0), out->load1);
	fflush(stdout);
	rc = FBX_OK;
out:
	for (uint32_t i = 0; i < nth; i++)
		free(w[i].lat);
	free(all);
	free(cli);
	if (ctx != NULL)
		zmq_ctx_term(ctx);
	return rc;
}

static double
med(const struct run *runs, uint32_t n, size_t off, double *col)
{
	return fbxb_median_field(runs, sizeof(*runs), n, off, col);
}

/* keys_load - the admin key and the engine's public key that fbxb_setup
 * put in $FUSEBOX_KEY and $FUSEBOX_SERVER_KEY. */
static int
keys_load(struct keys *k)
{
	struct fbx_key c, s;
	const char *cp = getenv("FUSEBOX_KEY");
	const char *sp = getenv("FUSEBOX_SERVER_KEY");
	char why[300] = "";
	int rc = FBX_ECONFIG;

	memset(&c, 0, sizeof(c));
	if (cp == NULL || sp == NULL)
		goto out;
	if (fbx_key_read(cp, 1, &c, why, sizeof(why)) != FBX_OK ||
	    fbx_key_read(sp, 0, &s, why, sizeof(why)) != FBX_OK)
		goto out;
	snprintf(k->principal, sizeof(k->principal), "%s", c.name);
	memcpy(k->pub, c.public_z85, sizeof(k->pub));
	memcpy(k->secret, c.secret_z85, sizeof(k->secret));
	memcpy(k->server, s.public_z85, sizeof(k->server));
	rc = FBX_OK;
out:
	if (rc != FBX_OK)
		fprintf(stderr, "intake: console keys: %s\n", why);
	memset(&c, 0, sizeof(c));
	return rc;
}

/* floor_start - bench_intake_floor (next to this program) on the env's
 * console endpoint and keys, with a store of its own; registered as the
 * env's daemon, so that teardown stops it and its CPU is measured.
 * @return FBX_OK once it answers a PING, else FBX_EUNREACHABLE. */
static int
floor_start(struct fbxb_env *b, const char *trees)
{
	char exe[PATH_MAX], prog[PATH_MAX + 32], data[400], log[400];
	char *args[] = { "--endpoint", b->console, "--keys", b->keys,
		"--data", data, trees != NULL ? "--extra-trees" : NULL,
		(char *)trees, NULL };
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return FBX_EUNREACHABLE;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(prog, sizeof(prog), "%s/bench_intake_floor", exe);
	snprintf(data, sizeof(data), "%s/floordb", b->dir);
	snprintf(log, sizeof(log), "%s/fuseboxd.log", b->dir);
	b->daemon = fbxb_spawn(prog, log, args);
	if (b->daemon < 0) {
		b->daemon = 0;
		return FBX_EUNREACHABLE;
	}
	fbx_client_set_timeout(b->cli, 200);
	for (int i = 0; i < 600 && !fbxb_stop; i++) {
		struct fbx_engine_stats s;
		int st;
		if (fbxb_ping(b->cli, &s) == FBX_OK) {
			fbx_client_set_timeout(b->cli, 30000);
			return FBX_OK;
		}
		if (waitpid(b->daemon, &st, WNOHANG) == b->daemon) {
			/* reaped here: teardown must not signal the pid */
			(void)fbxb_reap(b->daemon, 0, 0);
			b->daemon = 0;
			fprintf(stderr, "intake: %s exited (status %d)\n", prog,
			    st);
			fbxb_log_tail(log, 10);
			break;
		}
		fbxb_sleep_ms(50);
	}
	fbx_client_set_timeout(b->cli, 30000);
	return FBX_EUNREACHABLE;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: bench_intake [--clients K] [--inflight M] [--threads T]\n"
	    "                    [--seconds S] [--runs R] [--floor]\n"
	    "                    [--devices-per-org N] [--no-gateway]\n"
	    "                    [--durability full|nometasync|nosync]\n"
	    "                    [--open N] [--floor-extra-trees T]\n"
	    "  K console clients (default 8, at most %d), each its own\n"
	    "  CURVE connection and organisation, each keeping up to M\n"
	    "  single-device submits outstanding (default 1, at most %d)\n"
	    "  for S s (default 3), R runs (3); the clients run in T\n"
	    "  threads (default 8, at most one per client).\n"
	    "  --floor: bench_intake_floor instead of fuseboxd (the raw\n"
	    "  LMDB + ZeroMQ floor, group commit); no gateway, no --open.\n"
	    "  --floor-extra-trees T (with --floor): the floor also appends\n"
	    "  a record per submit to T more tables (0 to 8).\n"
	    "  N devices per organisation (default %u / K, from 1000 to\n"
	    "  50000);\n"
	    "  --open N: N commands parked open first (default 0).\n"
	    "  Prints one line per run, then a JSON line with the medians.\n",
	    CLIENTS_MAX, INFLIGHT_MAX, DEVICES_TOTAL);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "clients", required_argument, NULL, 'c' },
		{ "inflight", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "seconds", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'r' },
		{ "devices-per-org", required_argument, NULL, 'n' },
		{ "no-gateway", no_argument, NULL, 'g' },
		{ "durability", required_argument, NULL, 'd' },
		{ "open", required_argument, NULL, 'o' },
		{ "floor", no_argument, NULL, 'f' },
		{ "floor-extra-trees", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 8, 1, 8, 3, 3, 0, 1, NULL, 0, 0, NULL };
	struct fbxb_env b;
	struct keys k;
	struct run runs[64];
	double col[64];
	char ndev[16], norgs[16];
	int c, st = 1;

	fbxb_init();
	memset(&b, 0, sizeof(b));
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
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
		case 'r':
			o.runs = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'n':
			o.per_org = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'g':
			o.gateway = 0;
			break;
		case 'd':
			o.durability = optarg;
			break;
		case 'o':
			o.open = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'f':
			o.floor = 1;
			break;
		case 'x':
			o.floor_trees = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (o.per_org == 0 && o.clients > 0) {
		/* 50,000 each up to 8 clients (as before), then the same
		 * total over more organisations */
		o.per_org = DEVICES_TOTAL / o.clients;
		if (o.per_org > 50000)
			o.per_org = 50000;
		if (o.per_org < 1000)
			o.per_org = 1000;
	}
	if (o.clients == 0 || o.clients > CLIENTS_MAX || o.inflight == 0 ||
	    o.inflight > INFLIGHT_MAX || o.threads == 0 ||
	    o.threads > THREADS_MAX || o.seconds == 0 || o.runs == 0 ||
	    o.runs > 64 || o.per_org > 1000000 ||
	    (o.floor && (o.open > 0 || o.durability != NULL)) ||
	    (o.floor_trees != NULL && !o.floor)) {
		usage(stderr);
		return 64;
	}
	if (o.floor)
		o.gateway = 0;
	if (fbxb_setup(&b, o.floor ? "intake_floor" : "intake") != FBX_OK ||
	    keys_load(&k) != FBX_OK)
		goto out;
	snprintf(ndev, sizeof(ndev), "%" PRIu32, o.per_org * o.clients);
	snprintf(norgs, sizeof(norgs), "%" PRIu32, o.clients);
	if (o.floor) {
		if (floor_start(&b, o.floor_trees) != FBX_OK) {
			fprintf(stderr, "intake: bench_intake_floor did not "
			                "start\n");
			goto out;
		}
	} else {
		char *dargs[] = { "--durability", (char *)o.durability, NULL };
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--enroll-only", "--quiet", NULL };
		if (fbxb_daemon_start(&b, o.durability ? dargs : NULL) !=
		    FBX_OK) {
			fprintf(stderr, "intake: fuseboxd did not start\n");
			goto out;
		}
		if (fbxb_sim_run(&b, "enroll.log", args) != 0)
			goto out;
	}
	if (o.gateway) {
		char *args[] = { "--devices", ndev, "--orgs", norgs,
			"--no-enroll", "--quiet", "--stats-interval-s", "0",
			NULL };
		if (fbxb_sim_start(&b, args, 1) != FBX_OK) {
			fprintf(stderr, "intake: the simulator did not "
			                "connect\n");
			goto out;
		}
	}
	if (o.open > 0 && park(&b, &o) != FBX_OK)
		goto out;
	for (uint32_t r = 0; r < o.runs; r++) {
		if (fbxb_stop || one_run(&b, &o, &k, r + 1, &runs[r]) != FBX_OK)
			goto out;
		/* the next run starts from an idle engine */
		if (o.gateway && fbxb_wait_idle(b.cli, 60000) != FBX_OK)
			fprintf(stderr, "intake: engine not idle after run "
			                "%" PRIu32 "\n",
			    r + 1);
	}
#define MED(field) med(runs, o.runs, offsetof(struct run, field), col)
	printf("{\"bench\":\"%s\",\"clients\":%" PRIu32
	       ",\"inflight\":%" PRIu32 ",\"threads\":%" PRIu32
	       ",\"open\":%" PRIu32 ",\"seconds\":%" PRIu32
	       ",\"runs\":%" PRIu32 ",\"gateway\":%s,\"durability\":\"%s\","
	       "\"commands_per_s\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
	       "\"max_ms\":%.2f,\"errors\":%.0f,"
	       "\"daemon_cpu_us_per_command\":%.0f,"
	       "\"commands_per_commit\":%.1f,\"load1\":%.2f,"
	       "\"rss_peak_mib\":%.1f}\n",
	    o.floor ? "intake_floor" : "intake", o.clients, o.inflight,
	    o.threads < o.clients ? o.threads : o.clients, o.open, o.seconds,
	    o.runs, o.gateway ? "true" : "false",
	    o.durability ? o.durability : "full", MED(rate), MED(p50),
	    MED(p99), MED(max), MED(errors), MED(daemon_us),
	    MED(per_commit), MED(load1), fbxb_vmhwm_kib(b.daemon) / 1024.0);
#undef MED
	fflush(stdout);
	st = 0;
out:
	if (fbxb_stop)
		fprintf(stderr, "intake: interrupted\n");
	if (st != 0 && b.dir[0] != '\0') {
		char log[400];
		snprintf(log, sizeof(log), "%s/fuseboxd.log", b.dir);
		fbxb_log_tail(log, 8);
	}
	fbxb_teardown(&b);
	return st;
}
