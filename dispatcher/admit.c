/*
 * admit.c: the submit path as one admission pipeline. A command passes
 * five stages in order, each of which either hands it on or answers the
 * request (an error, a duplicate, a dry run):
 *
 *   validate  the request alone: ids, the organisation, idempotency
 *   resolve   the target: which devices it reaches, per platform/group
 *   gate      the safety decisions: the breakers (automatic lock-type
 *             commands: admitted to settle, or held), the blast-radius
 *             limit, the rollout plan; a dry run stops here
 *   journal   the command's id and time to live
 *   enqueue   the command cache, the settle heap or the expansion list,
 *             inline expansion of a small target, the command record
 *             (written once, as the expansion left it; durable with
 *             the turn's commit), the reply and the audit
 *
 * The gates decide with the pure functions of safety.c on the records
 * they read in the turn's write transaction and write back in the same
 * transaction, so a decision and what it decided on commit together (one
 * command after another: a storm cannot slip past between two reads).
 * Runs inside the request's child transaction (console.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

struct admission {
	struct fbx_engine *e;
	const struct inmsg *in;
	struct fbx_console_req *req;
	struct fbx_command *c;
	uint32_t fleet;     /* devices enrolled in the organisation */
	struct count_ctx k; /* the resolved target */
	struct fbx_device dev; /* k.one: a one-device target's device */
	struct cmdc *cc;    /* journaled */
};

enum { ADM_GO = 0, ADM_ANSWERED = 1, ADM_FAILED = 2 };

static int
cmp_id(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static int
same_command(const struct fbx_command *a, const struct fbx_command *b)
{
	if (a->type != b->type || a->origin != b->origin ||
	    a->target_kind != b->target_kind || a->platform != b->platform ||
	    strcmp(a->group, b->group) != 0 ||
	    strcmp(a->reason, b->reason) != 0 ||
	    a->payload_len != b->payload_len || a->ndev_ids != b->ndev_ids)
		return 0;
	if (a->payload_len > 0 &&
	    memcmp(a->payload, b->payload, a->payload_len) != 0)
		return 0;
	if (a->rollout.enabled != b->rollout.enabled)
		return 0;
	if (a->rollout.enabled) {
		/* the stored plan is normalized: compare normalized */
		struct fbx_rollout_plan pa = a->rollout, pb = b->rollout;
		fbxi_rollout_normalize(&pa);
		fbxi_rollout_normalize(&pb);
		if (memcmp(&pa, &pb, sizeof(pa)) != 0)
			return 0;
	}
	for (uint32_t i = 0; i < a->ndev_ids; i++) {
		if (strcmp(a->dev_ids[i], b->dev_ids[i]) != 0)
			return 0;
	}
	return 1;
}

static int
failed(struct admission *a, int rc)
{
	fbxi_set_err(a->e, rc);
	return ADM_FAILED;
}

/* answer_duplicate - the idempotency key names an earlier command with
 * the same content: answer with it, journal nothing */
static int
answer_duplicate(struct admission *a, uint64_t prior)
{
	struct fbx_console_rep rep;
	struct fbx_command old;
	struct cmdc *cc;
	int rc;

	rc = fbx_store_cmd_get(a->e->txn, prior, &old);
	if (rc != FBX_OK)
		return failed(a, rc);
	if (!same_command(&old, a->c)) {
		fbx_command_clear(&old);
		fbxi_console_error(a->e, a->in, a->req->request_id,
		    a->req->kind, FBX_EIDEMPOTENCY_CONFLICT,
		    "idempotency key '%s' already names command %llu with "
		    "different content",
		    a->c->idem_key, (unsigned long long)prior);
		return ADM_ANSWERED;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = a->req->request_id;
	rep.kind = a->req->kind;
	rep.u.submit.command_id = prior;
	rep.u.submit.duplicate = 1;
	cc = fbxi_cmd_find(a->e, prior);
	rep.u.submit.device_count = cc ? cc->c.ndeliveries : old.ndeliveries;
	rep.u.submit.state = cc ? cc->c.state : old.state;
	fbx_command_clear(&old);
	fbxi_console_reply(a->e, a->in, &rep);
	return ADM_ANSWERED;
}

/* validate - what the request alone says: who and where, the device
 * list (a device named twice gets one delivery), the target kind, and
 * whether the idempotency key was seen before. */
static int
validate(struct admission *a)
{
	struct fbx_engine *e = a->e;
	struct fbx_console_req *req = a->req;
	struct fbx_command *c = a->c;
	uint64_t prior;
	int rc;

	snprintf(c->org, sizeof(c->org), "%s", req->org);
	snprintf(c->actor, sizeof(c->actor), "%s", req->actor);
	c->settle_until_ms = 0; /* the engine's to decide */
	if (c->target_kind == FBX_TARGET_DEVICES && c->ndev_ids > 1) {
		uint32_t w = 1;
		qsort(c->dev_ids, c->ndev_ids, sizeof(*c->dev_ids), cmp_id);
		for (uint32_t r = 1; r < c->ndev_ids; r++) {
			if (strcmp(c->dev_ids[r], c->dev_ids[w - 1]) != 0)
				memmove(c->dev_ids[w++], c->dev_ids[r],
				    sizeof(*c->dev_ids));
		}
		c->ndev_ids = w;
	}
	rc = fbx_store_org_devices(e->txn, req->org, &a->fleet);
	if (rc == FBX_EUNKNOWN_ORG) {
		fbxi_console_error(e, a->in, req->request_id, req->kind,
		    FBX_EUNKNOWN_ORG, "organisation '%s' has no enrolled device",
		    req->org);
		return ADM_ANSWERED;
	}
	if (rc != FBX_OK)
		return failed(a, rc);
	if (c->idem_key[0] != '\0') {
		rc = fbx_store_idem_get(e->txn, req->org, c->idem_key, &prior);
		if (rc == FBX_OK)
			return answer_duplicate(a, prior);
		if (rc != FBX_ENOT_FOUND)
			return failed(a, rc);
	}
	switch (c->target_kind) {
	case FBX_TARGET_DEVICES:
		if (c->ndev_ids == 0) {
			fbxi_console_error(e, a->in, req->request_id, req->kind,
			    FBX_EEMPTY_TARGET, "target lists no device");
			return ADM_ANSWERED;
		}
		break;
	case FBX_TARGET_GROUP:
	case FBX_TARGET_ORG:
		if (c->target_kind == FBX_TARGET_ORG &&
		    a->fleet > FBX_DEVICES_PER_CMD_MAX &&
		    c->platform == FBX_PLATFORM_ANY) {
			fbxi_console_error(e, a->in, req->request_id, req->kind,
			    FBX_ETOO_MANY,
			    "organisation has %u devices; one command "
			    "reaches at most %u",
			    a->fleet, FBX_DEVICES_PER_CMD_MAX);
			return ADM_ANSWERED;
		}
		break;
	default:
		fbxi_console_error(e, a->in, req->request_id, req->kind,
		    FBX_EINVAL, "unknown target kind");
		return ADM_ANSWERED;
	}
	if (c->rollout.enabled && c->rollout.ngroups > 0 &&
	    c->target_kind != FBX_TARGET_ORG) {
		fbxi_console_error(e, a->in, req->request_id, req->kind,
		    FBX_EINVAL,
		    "a rollout through groups needs an organisation-wide "
		    "target");
		return ADM_ANSWERED;
	}
	return ADM_GO;
}

/* resolve - one pass over the target: every named device exists, how
 * many devices the command reaches (per platform, group and rollout
 * stage for a dry run); the gates decide on that count. */
static int
resolve(struct admission *a)
{
	struct fbx_engine *e = a->e;
	struct fbx_console_req *req = a->req;
	struct fbx_command *c = a->c;
	int rc;

	memset(&a->k, 0, sizeof(a->k));
	a->k.one = &a->dev;
	a->k.tally_groups = req->dry_run;
	if (req->dry_run && c->rollout.enabled && c->rollout.ngroups > 0)
		a->k.stages = &c->rollout;
	rc = fbxi_target_count(e, c, a->fleet, &a->k);
	if (rc != FBX_OK)
		return failed(a, rc);
	if (a->k.missing[0] != '\0') {
		fbxi_console_error(e, a->in, req->request_id, req->kind,
		    FBX_EUNKNOWN_DEVICE,
		    "device '%s' is not enrolled in organisation '%s'",
		    a->k.missing, req->org);
		return ADM_ANSWERED;
	}
	if (a->k.n == 0) {
		fbxi_console_error(e, a->in, req->request_id, req->kind,
		    FBX_EEMPTY_TARGET,
		    "target selects no device (%s%s%s, platform %s)",
		    fbx_target_kind_name(c->target_kind),
		    c->target_kind == FBX_TARGET_GROUP ? " " : "", c->group,
		    fbx_platform_name(c->platform));
		return ADM_ANSWERED;
	}
	return ADM_GO;
}

/* gate - the safety decisions. A dry run reports them and stops. An
 * automatic lock-type command passes the breakers (global, then its
 * organisation's; the blast-radius limit counts as the organisation's
 * alarm): held, or admitted to settle. Everything not held passes the
 * blast-radius limit of its type (LIMIT_EXCEEDED with an approval
 * token, or an approval used). Sets the command's state. */
static int
gate(struct admission *a)
{
	struct fbx_engine *e = a->e;
	struct fbx_console_req *req = a->req;
	struct fbx_command *c = a->c;
	int held = 0, rc;

	c->priority = (uint8_t)fbxi_priority_of(c);
	if (c->rollout.enabled) {
		fbxi_rollout_normalize(&c->rollout);
		memset(&c->ro, 0, sizeof(c->ro));
	}
	if (req->dry_run) {
		fbxi_dry_run(e, a->in, req, c, a->fleet, &a->k); /* takes
		                                                    groups */
		a->k.groups = NULL;
		return ADM_ANSWERED;
	}
	if (c->origin == FBX_ORIGIN_AUTOMATIC && fbx_cmd_lock_type(c->type)) {
		int over = 0;
		rc = fbxi_limit_over(e, c, a->k.n, a->fleet, &over);
		if (rc == FBX_OK)
			rc = fbxi_breaker_gate(e, c, a->k.n, a->fleet, over, &held);
		if (rc != FBX_OK)
			return failed(a, rc);
	}
	/* the record of a count is the engine's, never a client's */
	c->limit_at_ms = 0;
	c->limit_n = c->limit_window_s = c->limit_gen = 0;
	if (!held) {
		rc = fbxi_limit_gate(e, a->in, req, c, a->k.n, a->fleet);
		if (rc == FBX_ELIMIT_EXCEEDED || rc == FBX_EAPPROVAL_INVALID)
			return ADM_ANSWERED;
		if (rc != FBX_OK)
			return failed(a, rc);
	}
	c->state = held ? FBX_C_HELD
	    : c->settle_until_ms > 0 ? FBX_C_SETTLING
	                             : FBX_C_EXPANDING;
	return ADM_GO;
}

/* journal - the command's id and time to live. The record itself is
 * written by enqueue, after the inline expansion, so that it is written
 * once with what the expansion made of it (not written here and
 * rewritten at the end of the turn); durable with the turn's commit
 * either way (the reply leaves after it). */
static int
journal(struct admission *a)
{
	struct fbx_engine *e = a->e;
	struct fbx_command *c = a->c;
	uint64_t last;
	int rc;

	c->created_ms = e->now;
	if (c->ttl_s == 0)
		c->ttl_s = e->o.default_ttl_s;
	if (c->ttl_s > 30u * 86400)
		c->ttl_s = 30u * 86400;
	/* a settling command's time to live starts at its release */
	c->expires_ms = (c->state == FBX_C_SETTLING ? c->settle_until_ms
	                                            : e->now) +
	    (int64_t)c->ttl_s * 1000;
	c->ndeliveries = 0;
	memset(c->counts, 0, sizeof(c->counts));
	c->cursor[0] = '\0';
	c->cursor_idx = 0;
	rc = fbx_store_cmd_last(e->txn, &last);
	if (rc != FBX_OK)
		return failed(a, rc);
	/* delivery ids are id << 24 | index: past FBX_CMD_ID_MAX commands
	 * they would collide */
	if (last >= FBX_CMD_ID_MAX) {
		FBX_LOGE("command id space exhausted (%llu commands)",
		    (unsigned long long)FBX_CMD_ID_MAX);
		fbxi_console_error(e, a->in, a->req->request_id, a->req->kind,
		    FBX_ETOO_MANY,
		    "command id space exhausted: no command can be "
		    "journaled");
		return ADM_ANSWERED;
	}
	c->id = last + 1;
	return ADM_GO;
}

/* enqueue - into memory: the command cache puts it on the expansion
 * list (EXPANDING) or the settle heap (SETTLING); a small target is
 * expanded in this same transaction so the reply can say how many
 * devices it reaches. Then the command record, written once as the
 * expansion left it, the reply and the audit record (kept for the
 * turn's batch: audit.c). */
static int
enqueue(struct admission *a)
{
	struct fbx_engine *e = a->e;
	struct fbx_console_req *req = a->req;
	struct fbx_console_rep rep;
	struct cmdc *cc;
	int rc;

	cc = fbxi_cmd_cache_add(e, a->c);
	if (cc == NULL)
		return failed(a, FBX_ENOMEM);
	fbxi_expand_inline(e, cc, a->k.one_ok ? &a->dev : NULL);
	if (fbxi_err(e) != FBX_OK)
		return ADM_FAILED;
	/* the record, as memory now holds it (a failure here fails the
	 * request: its turn is redone or fails, and memory is rebuilt) */
	rc = fbx_store_cmd_append_id(e->txn, &cc->c, cc->c.id);
	if (rc != FBX_OK)
		return failed(a, rc);
	cc->stale = 0;
	e->last_cmd_id = cc->c.id;
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.submit.command_id = cc->c.id;
	/* a command not expanded yet (settling, held) has made no
	 * delivery: its devices are the ones its target counted */
	rep.u.submit.device_count =
	    cc->c.state == FBX_C_SETTLING || cc->c.state == FBX_C_HELD
	    ? a->k.n
	    : cc->c.ndeliveries;
	rep.u.submit.state = cc->c.state;
	snprintf(rep.u.submit.held_by, sizeof(rep.u.submit.held_by), "%s",
	    cc->c.held_by);
	fbxi_audit_submit(e, req->org, req->actor, &cc->c,
	    rep.u.submit.device_count);
	fbxi_console_reply(e, a->in, &rep);
	FBX_LOGD("accepted command %llu for %s by %s (%s)",
	    (unsigned long long)cc->c.id, req->org, req->actor,
	    fbx_cstate_name(cc->c.state));
	a->cc = cc;
	return ADM_GO;
}

void
fbxi_handle_submit(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	static int (*const stage[])(struct admission *) = { validate, resolve,
		gate, journal, enqueue };
	struct admission a;

	memset(&a, 0, sizeof(a));
	a.e = e;
	a.in = in;
	a.req = req;
	a.c = &req->u.submit.cmd;
	for (size_t i = 0; i < sizeof(stage) / sizeof(stage[0]); i++)
		if (stage[i](&a) != ADM_GO)
			break;
	free(a.k.groups);
}
