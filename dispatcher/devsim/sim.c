/*
 * sim.c: the simulated gateway: the gateway protocol (HELLO, deliveries,
 * results, check-ins, acknowledgements), the way each device answers, the
 * timers and the loop. Counts what an end-to-end or crash test must check:
 * duplicates, foreign deliveries and deliveries re-sent after their
 * success was acknowledged as durable.
 */
#include "sim.h"

/* ------------------------------------------------------------------ */
/* delayed answers: a FIFO, because the delay is the same for all */

static int
ring_push(struct ring *r, const struct delayed *d)
{
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 4096;
		struct delayed *v = malloc(ncap * sizeof(*v));
		if (v == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < r->n; i++)
			v[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = v;
		r->cap = ncap;
		r->head = 0;
	}
	r->v[(r->head + r->n) % r->cap] = *d;
	r->n++;
	return FBX_OK;
}

/* ------------------------------------------------------------------ */
/* sending */

static int
send_msg(struct sim *s, const struct fbx_gw_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_gw_msg_encode(m, &buf, &len);

	if (rc != FBX_OK) {
		sim_logm("cannot encode message kind %d: %s", m->kind,
		    fbx_strerror(rc));
		return rc;
	}
	if (zmq_send(s->sock, buf, len, ZMQ_DONTWAIT) < 0) {
		/* Queue full or no live connection (ZMQ_IMMEDIATE: nothing
		 * piles up for a dead engine): results and check-ins stay in
		 * the un-ACKed list and go again after the resend timeout. */
		s->t.send_drops++;
		rc = errno == EAGAIN ? FBX_EBUSY : FBX_EIO;
	} else {
		s->last_tx_ms = sim_mono_ms();
	}
	free(buf);
	return rc;
}

static void
send_hello(struct sim *s)
{
	struct fbx_gw_msg m;
	fbx_id all = "*";

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_HELLO;
	snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id), "%s",
	    s->o.gateway_id);
	m.u.hello.orgs = &all;
	m.u.hello.norgs = 1;
	m.u.hello.window = s->o.window;
	s->hello_failed = send_msg(s, &m) != FBX_OK;
	s->t.hellos++;
	s->state = ST_HELLO;
	s->hello_ms = sim_mono_ms();
}

static void
send_simple(struct sim *s, int kind, const char *reason)
{
	struct fbx_gw_msg m;

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = kind;
	if (reason != NULL)
		snprintf(m.u.bye.reason, sizeof(m.u.bye.reason), "%s", reason);
	send_msg(s, &m);
}

static void
send_batch(struct sim *s, const struct ubatch *b)
{
	struct fbx_gw_msg m;

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = b->kind;
	if (b->kind == FBX_GW_RESULTS) {
		m.u.results.batch_id = b->batch_id;
		m.u.results.r = b->recs;
		m.u.results.n = b->n;
	} else {
		m.u.checkins.batch_id = b->batch_id;
		m.u.checkins.c = b->recs;
		m.u.checkins.n = b->n;
	}
	send_msg(s, &m);
}

static void
ubatch_drop(struct sim *s, size_t i)
{
	free(s->ub[i].recs);
	memmove(&s->ub[i], &s->ub[i + 1], (s->nub - i - 1) * sizeof(*s->ub));
	s->nub--;
}

/* push_batch - take ownership of recs, send them and track the batch
 * until its ACK. */
static int
push_batch(struct sim *s, int kind, void *recs, size_t n)
{
	struct ubatch *b;

	if (s->nub == s->capub) {
		size_t ncap = s->capub ? s->capub * 2 : 256;
		struct ubatch *v = realloc(s->ub, ncap * sizeof(*v));
		if (v == NULL) {
			free(recs);
			return FBX_ENOMEM;
		}
		s->ub = v;
		s->capub = ncap;
	}
	if (s->nub >= SIM_UNACKED_MAX) {
		sim_logm("%d batches un-ACKed: dropping the oldest",
		    SIM_UNACKED_MAX);
		ubatch_drop(s, 0);
	}
	b = &s->ub[s->nub++];
	b->batch_id = s->next_batch++;
	b->kind = kind;
	b->sent_ms = sim_mono_ms();
	b->n = n;
	b->recs = recs;
	send_batch(s, b);
	return FBX_OK;
}

static size_t
batch_cap(const struct sim *s)
{
	size_t cap = SIM_FLUSH_N;

	if (s->max_batch > 0 && s->max_batch < cap)
		cap = s->max_batch;
	return cap;
}

/* flush_results - send the queued results in batches. Before the first
 * WELCOME they wait: the engine has no session to take them. */
static void
flush_results(struct sim *s)
{
	size_t off = 0;

	if (s->nout == 0 || !s->welcomed)
		return;
	while (off < s->nout) {
		size_t k = s->nout - off;
		void *recs;
		if (k > batch_cap(s))
			k = batch_cap(s);
		recs = malloc(k * sizeof(*s->out));
		if (recs == NULL) {
			sim_logm("out of memory: results kept for the next flush");
			break;
		}
		memcpy(recs, s->out + off, k * sizeof(*s->out));
		if (push_batch(s, FBX_GW_RESULTS, recs, k) == FBX_OK)
			s->t.results_sent += k;
		off += k;
	}
	memmove(s->out, s->out + off, (s->nout - off) * sizeof(*s->out));
	s->nout -= off;
	s->out_first_ms = sim_mono_ms();
}

static void
flush_checkins(struct sim *s)
{
	void *recs;

	if (s->ncin == 0 || !s->welcomed)
		return;
	recs = malloc(s->ncin * sizeof(*s->cin));
	if (recs == NULL)
		return;
	memcpy(recs, s->cin, s->ncin * sizeof(*s->cin));
	if (push_batch(s, FBX_GW_CHECKINS, recs, s->ncin) == FBX_OK)
		s->t.checkins_sent += s->ncin;
	s->ncin = 0;
}

/* add_result - queue one result for the next RESULTS batch. The queue
 * grows while the session is down; it is bounded by the engine's window
 * (each delivery is answered at most twice). */
static void
add_result(struct sim *s, uint64_t id, int status, uint16_t code)
{
	if (s->nout >= batch_cap(s))
		flush_results(s);
	if (s->nout == s->capout) {
		size_t ncap = s->capout * 2;
		struct fbx_result_rec *v = realloc(s->out, ncap * sizeof(*v));
		if (v == NULL) {
			sim_logm("out of memory: result for %" PRIu64
			     " dropped (the engine will resend)",
			    id);
			return;
		}
		s->out = v;
		s->capout = ncap;
	}
	if (s->nout == 0)
		s->out_first_ms = sim_mono_ms();
	s->out[s->nout].delivery_id = id;
	s->out[s->nout].status = (uint8_t)status;
	s->out[s->nout].code = code;
	s->nout++;
	switch (status) {
	case FBX_R_OFFLINE:
		s->t.offline++;
		break;
	case FBX_R_ACCEPTED:
		s->t.accepted++;
		break;
	default:
		break;
	}
}

static void
add_checkin(struct sim *s, uint32_t g)
{
	struct fbx_checkin *c;
	uint32_t o = dev_org(s, g);

	if (s->ncin >= batch_cap(s))
		flush_checkins(s);
	if (s->ncin >= SIM_FLUSH_N)
		return; /* no session yet; the next sweep tries again */
	c = &s->cin[s->ncin++];
	memset(c, 0, sizeof(*c));
	sim_org_name(o, c->org, sizeof(c->org));
	sim_dev_name(s, g, o, c->device, sizeof(c->device));
	c->at_ms = sim_wall_ms();
	snprintf(c->os_version, sizeof(c->os_version), "%s",
	    sim_dev_os(s, g, sim_dev_platform(s, g)));
	c->attestation = FBX_ATTEST_PASS;
}

/* ------------------------------------------------------------------ */
/* receiving */

/* final_result - the device's deterministic answer to a delivery. */
static int
final_result(const struct sim *s, uint64_t id, uint16_t *code)
{
	uint64_t h = h3(s->o.seed, id, 6);

	if (unit(h) < s->o.fail_ratio) {
		*code = (uint16_t)(500 + (h >> 3) % 32);
		return FBX_R_FAILED;
	}
	*code = 0;
	return FBX_R_SUCCEEDED;
}

static void
count_final(struct sim *s, struct dent *e, int status)
{
	if (e->flags & DE_FINAL)
		return;
	e->flags |= DE_FINAL;
	if (status == FBX_R_SUCCEEDED)
		s->t.succeeded++;
	else
		s->t.failed++;
	if (e->dev != UINT32_MAX) {
		struct org_stats *os = &s->ostats[dev_org(s, e->dev)];
		if (status == FBX_R_SUCCEEDED)
			os->succeeded++;
		else
			os->failed++;
	}
}

/* apply_lock - the device received a LOCK or UNLOCK: count it, and
 * change its state if it carries the command out. */
static void
apply_lock(struct sim *s, uint32_t g, int type, int status)
{
	struct org_stats *os = &s->ostats[dev_org(s, g)];
	uint8_t *f = &s->dlock[g];

	if (type == FBX_CMD_LOCK) {
		if (!(*f & LK_GOT_LOCK)) {
			*f |= LK_GOT_LOCK;
			os->locked++;
		}
		if (status == FBX_R_SUCCEEDED && !(*f & LK_NOW)) {
			*f |= LK_NOW;
			os->locked_now++;
		}
	} else if (type == FBX_CMD_UNLOCK) {
		if (!(*f & LK_GOT_UNLOCK)) {
			*f |= LK_GOT_UNLOCK;
			os->unlocked++;
		}
		if (status == FBX_R_SUCCEEDED && (*f & LK_NOW)) {
			*f &= (uint8_t)~LK_NOW;
			os->locked_now--;
		}
	}
}

static void
on_delivery(struct sim *s, const struct fbx_dlv_out *d, int64_t now)
{
	struct dent *e;
	uint32_t g = UINT32_MAX;
	int created, status;
	uint16_t code = 0;

	s->t.received++;
	if (s->dlog != NULL)
		fprintf(s->dlog, "R %" PRIu64 " %" PRId64 "\n",
		    d->delivery_id, sim_mono_ns());
	if (sim_find_device(s, d->org, d->device, &g) != 0) {
		g = UINT32_MAX;
		s->t.foreign++;
	}
	e = dtab_get(&s->tab, d->delivery_id, &created);
	if (e == NULL) {
		sim_logm("out of memory for delivery %" PRIu64, d->delivery_id);
		return;
	}
	if (created) {
		e->dev = g;
		s->t.distinct++;
		if (g != UINT32_MAX) {
			s->dev_distinct[g]++;
			s->ostats[dev_org(s, g)].distinct++;
		}
	} else {
		s->t.duplicates++;
		if (e->flags & DE_DURABLE_OK)
			s->t.dup_after_ok++;
		if (e->flags & DE_DURABLE_FAIL)
			s->t.dup_after_fail++;
	}
	if (e->received < UINT16_MAX)
		e->received++;
	if (g != UINT32_MAX) {
		s->dev_received[g]++;
		s->ostats[dev_org(s, g)].received++;
	}

	if (g == UINT32_MAX) {
		/* Answer anyway, so the engine's window slot is freed. */
		add_result(s, d->delivery_id, FBX_R_FAILED, SIM_FOREIGN_CODE);
		count_final(s, e, FBX_R_FAILED);
		return;
	}
	if (s->dflags[g] & DEV_OFFLINE) {
		add_result(s, d->delivery_id, FBX_R_OFFLINE, 0);
		return;
	}
	status = final_result(s, d->delivery_id, &code);
	apply_lock(s, g, d->type, status);
	if (s->o.accept_first)
		add_result(s, d->delivery_id, FBX_R_ACCEPTED, 0);
	if (s->o.ack_latency_ms == 0) {
		add_result(s, d->delivery_id, status, code);
		count_final(s, e, status);
	} else {
		struct delayed dl;
		dl.due_ms = now + s->o.ack_latency_ms;
		dl.r.delivery_id = d->delivery_id;
		dl.r.status = (uint8_t)status;
		dl.r.code = code;
		if (ring_push(&s->delay, &dl) != FBX_OK)
			sim_logm("out of memory: delivery %" PRIu64
			     " left unanswered",
			    d->delivery_id);
	}
}

/* on_ack - a batch is durable. For results, count is the entries the
 * engine recorded: fewer than the batch means some were refused (a
 * foreign organisation's or an unknown delivery: in a cluster, one
 * another node owns, which will send it again), and which ones is not
 * said, so then none of the batch counts as a durable outcome. */
static void
on_ack(struct sim *s, uint64_t batch_id, uint32_t count)
{
	for (size_t i = 0; i < s->nub; i++) {
		struct ubatch *b = &s->ub[i];
		if (b->batch_id != batch_id)
			continue;
		if (b->kind == FBX_GW_RESULTS) {
			const struct fbx_result_rec *r = b->recs;
			if (count < b->n)
				s->t.results_refused += b->n - count;
			for (size_t k = 0; k < b->n && count >= b->n; k++) {
				struct dent *e;
				if (r[k].status != FBX_R_SUCCEEDED &&
				    r[k].status != FBX_R_FAILED)
					continue;
				e = dtab_find(&s->tab, r[k].delivery_id);
				if (e == NULL)
					continue;
				if (s->dlog != NULL &&
				    r[k].status == FBX_R_SUCCEEDED &&
				    !(e->flags & DE_DURABLE_OK))
					fprintf(s->dlog,
					    "A %" PRIu64 " %" PRId64 "\n",
					    r[k].delivery_id, sim_mono_ns());
				e->flags |= r[k].status == FBX_R_SUCCEEDED
				    ? DE_DURABLE_OK
				    : DE_DURABLE_FAIL;
			}
			s->t.results_acked += b->n;
		} else {
			s->t.checkins_acked += b->n;
		}
		ubatch_drop(s, i);
		return;
	}
	/* An ACK of a batch already ACKed (a resend): nothing to do. */
}

/* decode_message - an engine message into m; a bad one is counted.
 * @return 0 if m holds a message (free it with fbx_eng_msg_free). */
static int
decode_message(struct sim *s, const void *buf, size_t len,
    struct fbx_eng_msg *m)
{
	int rc;

	memset(m, 0, sizeof(*m));
	rc = fbx_eng_msg_decode(buf, len, m);
	if (rc != FBX_OK) {
		s->t.errors++;
		sim_logm("undecodable engine message (%zu bytes): %s", len,
		    fbx_errname(rc));
		return -1;
	}
	return 0;
}

/* on_message - act on a decoded engine message and free it. */
static void
on_message(struct sim *s, struct fbx_eng_msg *mp, int64_t now)
{
	struct fbx_eng_msg m = *mp;

	memset(mp, 0, sizeof(*mp));
	s->last_rx_ms = now;
	switch (m.kind) {
	case FBX_ENG_WELCOME:
		s->hb_ms = m.u.welcome.heartbeat_ms ? m.u.welcome.heartbeat_ms
		                                     : 1000;
		s->max_batch = m.u.welcome.max_batch;
		if (s->state != ST_READY && !s->o.quiet)
			sim_logm("welcome from %s: heartbeat %" PRIu32
			     " ms, max batch %" PRIu32,
			    m.u.welcome.engine_id, s->hb_ms, s->max_batch);
		s->state = ST_READY;
		s->welcomed = 1;
		s->t.welcomes++;
		break;
	case FBX_ENG_DELIVERIES:
		for (size_t i = 0; i < m.u.deliveries.n; i++)
			on_delivery(s, &m.u.deliveries.d[i], now);
		break;
	case FBX_ENG_ACK:
		on_ack(s, m.u.ack.batch_id, m.u.ack.count);
		break;
	case FBX_ENG_ERROR:
		s->t.errors++;
		sim_logm("engine error %s (%d): %s", fbx_errname(m.u.error.err),
		    m.u.error.err, m.u.error.msg);
		/* The engine lost our session (restart): introduce again. */
		if (m.u.error.err == FBX_EPROTOCOL && s->state == ST_READY)
			send_hello(s);
		break;
	default:
		s->t.errors++;
		sim_logm("unexpected engine message kind %d", m.kind);
	}
	fbx_eng_msg_free(&m);
}

/* ------------------------------------------------------------------ */
/* timers */

static void
run_delayed(struct sim *s, int64_t now)
{
	struct ring *r = &s->delay;

	if (!s->welcomed)
		return; /* keep them until there is a session */
	while (r->n > 0 && r->v[r->head].due_ms <= now) {
		struct delayed *d = &r->v[r->head];
		struct dent *e = dtab_find(&s->tab, d->r.delivery_id);
		add_result(s, d->r.delivery_id, d->r.status, d->r.code);
		if (e != NULL)
			count_final(s, e, d->r.status);
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
}

static void
run_checkins(struct sim *s, int64_t now)
{
	int64_t since = now - s->start_ms;
	uint32_t n;
	double step;

	/* Only with a live session: check-ins made while the engine is away
	 * would pile up as un-ACKed batches. */
	if (s->o.checkin_s == 0 || s->state != ST_READY) {
		s->sweep_last_ms = 0; /* no catch-up burst afterwards */
		return;
	}
	/* Offline devices: one check-in each, after ~C s; they are online
	 * from then on. */
	while (s->off_next < s->noff && s->off_due[s->off_next] <= since) {
		uint32_t g = s->off_idx[s->off_next++];
		s->dflags[g] &= (uint8_t)~DEV_OFFLINE;
		add_checkin(s, g);
	}
	/* Online devices: a sweep that visits every device once per C s. */
	if (s->sweep_last_ms == 0)
		s->sweep_last_ms = now;
	step = (double)s->o.ndev * (double)(now - s->sweep_last_ms) /
	        (s->o.checkin_s * 1000.0) +
	    s->sweep_carry;
	s->sweep_last_ms = now;
	n = step > s->o.ndev ? s->o.ndev : (uint32_t)step;
	s->sweep_carry = step - n;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t g = s->sweep_next;
		s->sweep_next = (s->sweep_next + 1) % s->o.ndev;
		if (!(s->dflags[g] & DEV_OFFLINE))
			add_checkin(s, g);
	}
	flush_checkins(s);
}

static void
run_resends(struct sim *s, int64_t now)
{
	if (!s->welcomed)
		return;
	for (size_t i = 0; i < s->nub; i++) {
		struct ubatch *b = &s->ub[i];
		if (now - b->sent_ms < SIM_RESEND_MS)
			continue;
		b->sent_ms = now;
		s->t.resends++;
		send_batch(s, b);
	}
}

static void
print_stats(struct sim *s, int64_t now)
{
	if (s->storm.n > 0) {
		uint64_t lk = 0;
		for (uint32_t o = 0; o < s->o.norgs; o++)
			lk += s->ostats[o].locked_now;
		sim_logm("storm %" PRIu32 "/%" PRIu32 " answered, %zu awaiting, "
		     "%" PRIu64 " retries; devices locked now: %" PRIu64,
		    s->storm.done, s->storm.n, s->storm.nslots,
		    s->storm.retries, lk);
	}
	sim_logm("t=%.1fs %s rx=%" PRIu64 " distinct=%" PRIu64 " dup=%" PRIu64
	     " dup_after_ok=%" PRIu64 " foreign=%" PRIu64 " sent=%" PRIu64
	     " acked=%" PRIu64 " ok=%" PRIu64 " fail=%" PRIu64
	     " offline=%" PRIu64 " checkins=%" PRIu64 "/%" PRIu64
	     " unacked=%zu delayed=%zu resends=%" PRIu64 " drops=%" PRIu64,
	    (now - s->start_ms) / 1000.0,
	    s->state == ST_READY ? "ready" : "hello", s->t.received,
	    s->t.distinct, s->t.duplicates, s->t.dup_after_ok, s->t.foreign,
	    s->t.results_sent, s->t.results_acked, s->t.succeeded,
	    s->t.failed, s->t.offline, s->t.checkins_acked,
	    s->t.checkins_sent, s->nub, s->delay.n, s->t.resends,
	    s->t.send_drops);
}

/* ------------------------------------------------------------------ */
/* the gateway loop */

/* bulk_push - keep a decoded bulk DELIVERIES message for bulk_serve. */
static int
bulk_push(struct sim *s, struct fbx_eng_msg *m)
{
	struct bulkq *q = &s->bulk;

	if (q->n == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 64;
		struct fbx_eng_msg *v = malloc(ncap * sizeof(*v));
		if (v == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < q->n; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->cap = ncap;
		q->head = 0;
	}
	q->v[(q->head + q->n) % q->cap] = *m;
	q->n++;
	return FBX_OK;
}

/* bulk_serve - serve up to SIM_BULK_SLICE deliveries of the oldest bulk
 * message. @return deliveries served. */
static size_t
bulk_serve(struct sim *s, int64_t now)
{
	struct bulkq *q = &s->bulk;
	struct fbx_eng_msg *m = &q->v[q->head];
	size_t k = 0;

	if (q->n == 0)
		return 0;
	for (; q->pos < m->u.deliveries.n && k < SIM_BULK_SLICE; k++)
		on_delivery(s, &m->u.deliveries.d[q->pos++], now);
	if (q->pos >= m->u.deliveries.n) {
		fbx_eng_msg_free(m);
		q->head = (q->head + 1) % q->cap;
		q->n--;
		q->pos = 0;
	}
	return k;
}

/* drain - read what the engine sent (at most SIM_DRAIN_MAX messages):
 * urgent deliveries are served at once and their results leave at
 * once, in a RESULTS batch of their own; bulk ones wait in s->bulk;
 * anything else is handled now.
 * @return FBX_OK or FBX_EIO. */
static int
drain(struct sim *s, int64_t now)
{
	zmq_msg_t msg;
	int urgent = 0;

	for (int k = 0; k < SIM_DRAIN_MAX; k++) {
		struct fbx_eng_msg m;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			if (errno != EAGAIN && errno != EINTR) {
				sim_logm("recv: %s", zmq_strerror(errno));
				return FBX_EIO;
			}
			break;
		}
		if (zmq_msg_more(&msg)) {
			s->t.errors++; /* we expect single frames */
			while (zmq_msg_more(&msg)) {
				zmq_msg_close(&msg);
				zmq_msg_init(&msg);
				if (zmq_msg_recv(&msg, s->sock, 0) < 0)
					break;
			}
			zmq_msg_close(&msg);
			continue;
		}
		if (decode_message(s, zmq_msg_data(&msg), zmq_msg_size(&msg),
		        &m) != 0) {
			zmq_msg_close(&msg);
			continue;
		}
		zmq_msg_close(&msg);
		s->last_rx_ms = now;
		if (m.kind == FBX_ENG_DELIVERIES && !m.u.deliveries.urgent &&
		    m.u.deliveries.n > 0) {
			if (bulk_push(s, &m) == FBX_OK)
				continue;
			sim_logm("out of memory: bulk deliveries served now");
		} else if (m.kind == FBX_ENG_DELIVERIES) {
			/* their results in a batch of their own: small, so
			 * the engine takes it ahead of bulk ones */
			if (!urgent)
				flush_results(s);
			urgent = 1;
		}
		on_message(s, &m, now);
	}
	if (urgent)
		flush_results(s);
	return FBX_OK;
}

int
sim_gw_open(struct sim *s)
{
	int linger = 1000, hwm = 0, sndhwm = 100000, immediate = 1;
	int64_t maxmsg = FBX_GATEWAY_MSG_MAX + 64 * 1024;

	s->ctx = zmq_ctx_new();
	if (s->ctx == NULL)
		return FBX_EIO;
	s->sock = zmq_socket(s->ctx, ZMQ_DEALER);
	if (s->sock == NULL)
		return FBX_EIO;
	if (zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm)) ||
	    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) ||
	    zmq_setsockopt(s->sock, ZMQ_IMMEDIATE, &immediate,
	        sizeof(immediate)))
		return FBX_EIO;
	if (sim_sock_curve(s->sock, &s->o, s->o.gw_key, "FUSEBOX_GATEWAY_KEY",
	        "gateway.key", NULL) != FBX_OK)
		return FBX_ECONFIG;
	if (zmq_connect(s->sock, s->o.gw_ep) != 0) {
		sim_logm("cannot connect %s: %s", s->o.gw_ep, zmq_strerror(errno));
		return FBX_EINVALID;
	}
	return FBX_OK;
}

int
sim_gw_loop(struct sim *s)
{
	int64_t last_stats = sim_mono_ms(), last_timers = 0;

	send_hello(s);
	while (!sim_stop) {
		zmq_pollitem_t its[2] = { { s->sock, 0, ZMQ_POLLIN, 0 },
			{ s->storm.sock, 0, ZMQ_POLLIN, 0 } };
		zmq_pollitem_t it;
		int storm_on = s->storm.sock != NULL;
		int64_t now = sim_mono_ms();
		long wait = 50;
		int n;

		if (s->nout > 0 || s->delay.n > 0)
			wait = 1;
		if (s->bulk.n > 0)
			wait = 0;
		if (storm_on && s->storm.started && sim_storm_wait_ms(s) < wait)
			wait = sim_storm_wait_ms(s);
		n = zmq_poll(its, storm_on ? 2 : 1, wait);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sim_logm("poll: %s", zmq_strerror(errno));
			return FBX_EIO;
		}
		now = sim_mono_ms();
		/* the storm starts once devices can receive what it sends */
		if (storm_on && (s->storm.started || s->welcomed)) {
			/* the sockets to other nodes (MOVED) are not
			 * polled: read at each pass */
			if ((its[1].revents & ZMQ_POLLIN) ||
			    s->storm.nsocks > 1)
				sim_storm_recv(s, now);
			sim_storm_pump(s, now);
		}
		it = its[0];
		n = (it.revents & ZMQ_POLLIN) ? 1 : 0;
		/* Take what arrived, serve the bulk deliveries in slices and
		 * look for new messages between slices: urgent deliveries
		 * (small commands) are served as soon as they are read, not
		 * behind the bulk ones received before them. Then timers,
		 * so a flood of deliveries cannot starve ACK handling. */
		if (n > 0 && drain(s, now) != FBX_OK)
			return FBX_EIO;
		for (size_t done = 0; s->bulk.n > 0 && done < SIM_BULK_TURN;) {
			done += bulk_serve(s, now);
			if (drain(s, now) != FBX_OK)
				return FBX_EIO;
		}
		now = sim_mono_ms();
		run_delayed(s, now);
		if (s->nout >= batch_cap(s) ||
		    (s->nout > 0 && now - s->out_first_ms >= SIM_FLUSH_MS))
			flush_results(s);
		if (now - last_timers >= 10) {
			last_timers = now;
			if (s->state == ST_HELLO && s->hello_failed &&
			    now - s->hello_ms >= 100) {
				send_hello(s); /* not connected yet */
			} else if (s->state == ST_HELLO &&
			    now - s->hello_ms >= SIM_HELLO_RETRY_MS) {
				if (!s->o.quiet)
					sim_logm("no welcome from %s, saying "
					     "hello again",
					    s->o.gw_ep);
				send_hello(s);
			} else if (s->state == ST_READY &&
			    now - s->last_rx_ms > 3 * (int64_t)s->hb_ms) {
				/* Silent engine (maybe restarted): a new
				 * HELLO either refreshes the session or
				 * opens one. */
				send_hello(s);
			}
			run_checkins(s, now);
			run_resends(s, now);
			/* readable while the run goes on, 4 times a second */
			if (s->dlog != NULL && now - s->dlog_flush_ms >= 250) {
				s->dlog_flush_ms = now;
				sim_dlog_flush(s);
			}
			if (s->welcomed &&
			    now - s->last_tx_ms >= s->hb_ms / 3)
				send_simple(s, FBX_GW_HEARTBEAT, NULL);
		}
		if (s->o.stats_s > 0 &&
		    now - last_stats >= (int64_t)s->o.stats_s * 1000) {
			last_stats = now;
			print_stats(s, now);
			sim_save_report(s);
			sim_dlog_flush(s);
		}
	}
	/* Clean exit: answer what we can, then say goodbye. */
	while (s->bulk.n > 0)
		bulk_serve(s, sim_mono_ms());
	run_delayed(s, INT64_MAX);
	flush_results(s);
	flush_checkins(s);
	send_simple(s, FBX_GW_BYE, "devsim exit");
	return FBX_OK;
}
