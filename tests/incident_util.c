/*
 * incident_util.c: what incident_rules_test.c and limit_accounting_test.c
 * share (incident_util.h), over the in-process engine of engine_fake.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "incident_util.h"

/* lock_one - a command of type for one device of org from client peer
 * (origin automatic: reason REASON); @return the reply's err, with the
 * command's id and state. */
int
lock_one(struct env *t, const char *peer, const char *org, unsigned dev,
    int type, int origin, uint64_t *id, int *state)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	fbx_id ids[1];
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = (uint8_t)type;
	req.u.submit.cmd.origin = (uint8_t)origin;
	req.u.submit.cmd.target_kind = FBX_TARGET_DEVICES;
	if (origin == FBX_ORIGIN_AUTOMATIC)
		snprintf(req.u.submit.cmd.reason,
		    sizeof(req.u.submit.cmd.reason), "%s", REASON);
	snprintf(ids[0], sizeof(ids[0]), "%s-d%05u", org, dev);
	req.u.submit.cmd.dev_ids = ids;
	req.u.submit.cmd.ndev_ids = 1;
	console(t, peer, org, &req);
	turn(t);
	rc = reply(t, peer, &rep);
	*id = rc == FBX_OK ? rep.u.submit.command_id : 0;
	*state = rc == FBX_OK ? rep.u.submit.state : 0;
	fbx_console_rep_free(&rep);
	return rc;
}

/* auto_lock - the detector's automatic lock of one device */
int
auto_lock(struct env *t, const char *org, unsigned dev, uint64_t *id,
    int *state)
{
	return lock_one(t, "rule", org, dev, FBX_CMD_LOCK, FBX_ORIGIN_AUTOMATIC,
	    id, state);
}

/* operator_lock - an operator's lock of one device */
int
operator_lock(struct env *t, const char *org, unsigned dev, uint64_t *id,
    int *state)
{
	return lock_one(t, "ops", org, dev, FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    id, state);
}

/* breaker - a breaker request; rep is the caller's to free. */
int
breaker(struct env *t, const char *org, int op, int global,
    const struct fbx_breaker_cfg *cfg, int on_reset,
    struct fbx_console_rep *rep)
{
	struct fbx_console_req req;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_BREAKER;
	req.u.breaker.op = op;
	req.u.breaker.global = global;
	req.u.breaker.on_reset = on_reset;
	snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason), "%s",
	    REASON);
	snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
	    "settle_test");
	if (cfg != NULL)
		req.u.breaker.cfg = *cfg;
	console(t, "ops", org, &req);
	turn(t);
	return reply(t, "ops", rep);
}

/* settle_off / settle_set - the reason's settle delay (global config) */
void
settle_set(struct env *t, const char *org, uint32_t s)
{
	struct fbx_breaker_cfg cfg;
	struct fbx_console_rep rep;

	memset(&cfg, 0, sizeof(cfg));
	cfg.settle_set = 1;
	cfg.settle_s = s;
	CHECK(breaker(t, org, FBX_BRK_CONFIGURE, 1, &cfg, 0, &rep) == FBX_OK,
	    "configure settle %u", s);
	fbx_console_rep_free(&rep);
}

int
cmd_state(struct env *t, const char *org, uint64_t id, struct fbx_command *c)
{
	int rc = counts(t, org, id, c);

	return rc == FBX_OK ? c->state : -1;
}

/* last_audit - org's newest audit record of action; 0 when found */
int
last_audit(struct env *t, const char *org, const char *action,
    struct fbx_audit_rec *out)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int found = -1;

	memset(out, 0, sizeof(*out));
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_LIST;
	snprintf(req.u.audit_list.action, sizeof(req.u.audit_list.action),
	    "%s", action);
	req.u.audit_list.limit = 1000;
	console(t, "reader", org, &req);
	turn(t);
	if (reply(t, "reader", &rep) == FBX_OK && rep.u.audit.n > 0) {
		*out = rep.u.audit.r[rep.u.audit.n - 1];
		found = 0;
	}
	fbx_console_rep_free(&rep);
	return found;
}

/* delivered - delivery ids sent to peer so far, answered as succeeded */
size_t
delivered(struct env *t, const char *peer, uint64_t *batch)
{
	struct gw_seen *s = calloc(1, sizeof(*s));
	size_t n;

	drain_gw(t, peer, s);
	n = s->nids;
	if (n > 0) {
		results(t, peer, ++*batch, s->ids, n, FBX_R_SUCCEEDED);
		turn(t);
		drain_gw(t, peer, s);
	}
	free(s);
	return n;
}

/* pass - let ms of fake time pass in 50 ms turns, gateway peer (if any)
 * beating its heart, so it stays alive */
void
pass(struct env *t, const char *peer, int64_t ms)
{
	for (int64_t done = 0; done < ms; done += 50) {
		advance(t, ms - done < 50 ? ms - done : 50);
		if (peer != NULL)
			heartbeat(t, peer);
		turn(t);
	}
}

size_t
events_of(struct env *t, int kind)
{
	struct qmsg **pp = &t->io.out[FBX_IO_EVENTS];
	size_t n = 0;

	while (*pp != NULL) {
		struct qmsg *q = *pp;
		struct fbx_event ev;
		*pp = q->next;
		if (fbx_event_decode(q->body, q->len, &ev) == FBX_OK &&
		    ev.kind == kind)
			n++;
		q_free(q);
	}
	return n;
}
