/*
 * rollout.c: staged rollouts: the wave state machine (release a wave,
 * judge it after its bake time, pause, advance a stage, finish) run each
 * turn, and RolloutRequest.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static uint32_t
ro_stages(const struct fbx_command *c)
{
	return c->rollout.ngroups > 0 ? c->rollout.ngroups + 1u : 1u;
}

static void
ro_release(struct fbx_engine *e, struct cmdc *cc, uint32_t size)
{
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint64_t base = FBX_DLV_ID(cc->c.id, 0);

	for (uint32_t i = 0; i < size; i++) {
		if (fbxi_orgq_push(e, cc->q, FBX_PRIO_BULK, base + ro->released + i) !=
		    FBX_OK) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
	}
	ro->wave_start = ro->released;
	ro->wave_size = size;
	ro->released += size;
	ro->wave++;
	ro->wave_started_ms = e->now;
	ro->state = FBX_RO_RUNNING;
	cc->w_ok = cc->w_fail = cc->w_settled = 0;
	cc->w_topcode = 0;
	cc->w_topcode_n = 0;
	cc->judge_off = 0;
	fbxi_cmd_touch(cc);
	FBX_LOGI("rollout %llu: stage %u wave %u: %u devices (%u of %u out)",
	    (unsigned long long)cc->c.id, ro->stage, ro->wave, size,
	    ro->released, cc->c.ndeliveries);
}

static void
ro_advance_stage(struct fbx_engine *e, struct cmdc *cc)
{
	cc->c.cursor_idx++;
	cc->c.cursor[0] = '\0';
	cc->c.ro.stage++;
	cc->c.ro.wave = 0;
	/* running: the next stage's deliveries are being created, and its
	 * first wave leaves as soon as they are */
	cc->c.ro.state = FBX_RO_RUNNING;
	if (cc->c.cursor_idx < cc->c.rollout.ngroups)
		snprintf(cc->c.ro.note, sizeof(cc->c.ro.note),
		    "stage %u: group '%s' next", cc->c.ro.stage,
		    cc->c.rollout.groups[cc->c.cursor_idx]);
	else
		snprintf(cc->c.ro.note, sizeof(cc->c.ro.note),
		    "stage %u: the devices in no listed group next",
		    cc->c.ro.stage);
	cc->c.state = FBX_C_EXPANDING;
	fbxi_xlist_add(e, cc);
	fbxi_cmd_touch(cc);
}

/* ro_next - after a wave has baked: the next wave, the next group, or
 * the end of the rollout. */
static void
ro_next(struct fbx_engine *e, struct cmdc *cc)
{
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint32_t remaining = cc->c.ndeliveries - ro->released, size;

	if (remaining > 0) {
		if (ro->wave == 0)
			size = fbxi_rollout_wave(
			    &cc->c.rollout, remaining, 0, 0, 0);
		else
			size = fbxi_rollout_wave(&cc->c.rollout,
			    cc->c.ndeliveries, ro->released, ro->wave,
			    ro->wave_size);
		ro_release(e, cc, size);
		return;
	}
	if (cc->c.cursor_idx + 1 < ro_stages(&cc->c)) {
		if (cc->c.rollout.approve_groups) {
			if (ro->state != FBX_RO_AWAITING_APPROVAL) {
				ro->state = FBX_RO_AWAITING_APPROVAL;
				snprintf(ro->note, sizeof(ro->note),
				    "group '%s' done; the next group needs "
				    "an operator's approval",
				    cc->c.rollout.groups[cc->c.cursor_idx]);
				fbxi_cmd_touch(cc);
				FBX_LOGI("rollout %llu: %s",
				    (unsigned long long)cc->c.id, ro->note);
			}
			return;
		}
		ro_advance_stage(e, cc);
		return;
	}
	ro->state = FBX_RO_DONE;
	fbxi_cmd_touch(cc);
	FBX_LOGI("rollout %llu done: %u waves in the last group, %u devices",
	    (unsigned long long)cc->c.id, ro->wave, ro->released);
	fbxi_cmd_maybe_done(cc);
}

/* fbxi_ro_park - id, of cc, taken from a queue to be sent: kept back if
 * cc is a paused rollout (its store state stays QUEUED).
 * @return 1 if kept back, 0 if it may go */
int
fbxi_ro_park(struct fbx_engine *e, struct cmdc *cc, uint64_t id)
{
	if (!cc->c.rollout.enabled || cc->c.ro.state != FBX_RO_PAUSED)
		return 0;
	if (cc->nparked == cc->parkcap) {
		size_t ncap = cc->parkcap ? cc->parkcap * 2 : 64;
		uint64_t *n = realloc(cc->parked, ncap * sizeof(*n));
		if (n == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			return 1;
		}
		cc->parked = n;
		cc->parkcap = ncap;
	}
	cc->parked[cc->nparked++] = id;
	return 1;
}

/* fbxi_ro_judged_prefix - kv "rojd/<org>/<command>/": the stage and
 * wave an operator judged by resuming (stage << 32 | wave), so that a
 * rebuild of memory does not judge that wave again; pruned with the
 * command */
void
fbxi_ro_judged_prefix(char *k, size_t cap, const char *org, uint64_t cmd)
{
	snprintf(k, cap, "rojd/%s/%llu/", org, (unsigned long long)cmd);
}

int
fbxi_ro_judged_load(fbx_txn *txn, struct cmdc *cc)
{
	char k[FBX_KV_KEY_MAX];
	uint64_t v = 0;
	size_t len = 0;
	int rc;

	fbxi_ro_judged_prefix(k, sizeof(k), cc->c.org, cc->c.id);
	rc = fbx_store_kv_get(txn, k, &v, sizeof(v), &len);
	if (rc == FBX_ENOT_FOUND)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	/* a damaged one judges nothing: the wave is judged again */
	cc->judge_off = len == sizeof(v) &&
	    v == ((uint64_t)cc->c.ro.stage << 32 | cc->c.ro.wave);
	return FBX_OK;
}

/* ro_unpark - a resumed rollout's kept-back deliveries go back to the
 * queue, in the order they were taken */
static void
ro_unpark(struct fbx_engine *e, struct cmdc *cc)
{
	for (size_t i = 0; i < cc->nparked; i++) {
		if (fbxi_orgq_push(e, cc->q, FBX_PRIO_BULK, cc->parked[i]) !=
		    FBX_OK) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
	}
	if (cc->nparked > 0)
		FBX_LOGI("rollout %llu: %zu deliveries held while paused "
		         "queued again",
		    (unsigned long long)cc->c.id, cc->nparked);
	free(cc->parked);
	cc->parked = NULL;
	cc->nparked = cc->parkcap = 0;
}

static void
ro_pause(struct fbx_engine *e, struct cmdc *cc, const char *actor,
    const char *why)
{
	cc->c.ro.state = FBX_RO_PAUSED;
	snprintf(cc->c.ro.note, sizeof(cc->c.ro.note), "%s", why);
	fbxi_cmd_touch(cc);
	emit_event(e, FBX_EV_ROLLOUT_PAUSED, cc->c.org, fbxi_reason_of(&cc->c),
	    actor, cc->c.id, cc->w_fail, cc->c.ro.wave_size, "%s", why);
}

/* ro_judge - a running wave: pause at the failure threshold (judged once
 * min_results are in), bake when every device of the wave settled with
 * enough successes. */
static void
ro_judge(struct fbx_engine *e, struct cmdc *cc)
{
	const struct fbx_rollout_plan *p = &cc->c.rollout;
	struct fbx_rollout_status *ro = &cc->c.ro;
	uint32_t results = cc->w_ok + cc->w_fail;
	char why[FBX_NOTE_MAX];

	if (!cc->judge_off && results >= p->min_results &&
	    (uint64_t)cc->w_fail * FBX_PPM >= (uint64_t)p->failure_ppm * results) {
		snprintf(why, sizeof(why),
		    "failure threshold: %u of %u results in wave %u failed "
		    "(most with code %u)",
		    cc->w_fail, results, ro->wave, cc->w_topcode);
		ro_pause(e, cc, "engine", why);
		if (cc->w_topcode_n > 0 && cc->w_fail >= p->min_results)
			emit_event(e, FBX_EV_FAILURE_SPIKE, cc->c.org,
			    fbxi_reason_of(&cc->c), "engine", cc->c.id, cc->w_fail,
			    results,
			    "delivery failures spike with code %u: rollout "
			    "paused",
			    cc->w_topcode);
		return;
	}
	if (cc->w_settled < ro->wave_size)
		return;
	/* success is judged on the results that came back: devices still
	 * offline (pending) settle the wave without counting against it */
	if (!cc->judge_off &&
	    (results == 0 ||
	        (uint64_t)cc->w_ok * FBX_PPM <
	            (uint64_t)p->success_ppm * results)) {
		char need[24];
		fbx_pct_str(p->success_ppm, need, sizeof(need));
		snprintf(why, sizeof(why),
		    "wave %u: %u of %u results succeeded, below the %s "
		    "needed to advance",
		    ro->wave, cc->w_ok, results, need);
		ro_pause(e, cc, "engine", why);
		return;
	}
	ro->state = FBX_RO_BAKING;
	ro->bake_until_ms = e->now + (int64_t)p->bake_s * 1000;
	fbxi_cmd_touch(cc);
}

/* fbxi_rollout_step - judge running waves and release baked ones, for
 * every active rollout: however many there are, none is left behind. */
void
fbxi_rollout_step(struct fbx_engine *e)
{
	size_t pos = 0, n = 0, cap = 0;
	uint64_t k, v;
	struct cmdc **todo = NULL;

	/* collect first: releasing may grow queues but never the cache;
	 * only the staged rollouts, not every open command */
	while (fbxi_idmap_next(&e->rollouts, &pos, &k, &v)) {
		struct cmdc *cc = (struct cmdc *)(uintptr_t)v;
		/* kept back while paused, no longer paused: they go. Resume
		 * pushes them back itself, and cancel, rollback and expiry
		 * end them; this is a safety net for any way out of a pause
		 * added later */
		if (cc->nparked > 0 && cc->c.ro.state != FBX_RO_PAUSED &&
		    !cc->cancelling && !cc->expired)
			ro_unpark(e, cc);
		if (cc->c.state != FBX_C_ACTIVE || cc->expired || cc->cancelling)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct cmdc **nt = realloc(todo, ncap * sizeof(*nt));
			if (nt == NULL) {
				free(todo);
				fbxi_set_err(e, FBX_ENOMEM);
				return;
			}
			todo = nt;
			cap = ncap;
		}
		todo[n++] = cc;
	}
	for (size_t i = 0; i < n && fbxi_err(e) == FBX_OK; i++) {
		struct cmdc *cc = todo[i];
		switch (cc->c.ro.state) {
		case FBX_RO_RUNNING:
			ro_judge(e, cc);
			break;
		case FBX_RO_BAKING:
			if (e->now >= cc->c.ro.bake_until_ms)
				ro_next(e, cc);
			break;
		default:
			break;
		}
	}
	free(todo);
}

void
fbxi_handle_rollout(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_command loaded;
	struct cmdc *cc = fbxi_cmd_find(e, req->u.rollout.command_id);
	const struct fbx_command *c;
	struct fbx_rollout_status *ro;
	char why[FBX_NOTE_MAX];
	int op = req->u.rollout.op, rc;

	memset(&loaded, 0, sizeof(loaded));
	if (cc != NULL) {
		c = &cc->c;
	} else {
		rc = fbx_store_cmd_get(e->txn, req->u.rollout.command_id, &loaded);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			fbxi_set_err(e, rc);
			return;
		}
		c = rc == FBX_OK ? &loaded : NULL;
	}
	if (c == NULL || strcmp(c->org, req->org) != 0) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no command %llu in organisation '%s'",
		    (unsigned long long)req->u.rollout.command_id, req->org);
		goto out;
	}
	if (!c->rollout.enabled) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
		    "command %llu has no rollout plan",
		    (unsigned long long)c->id);
		goto out;
	}
	if (op != FBX_ROP_STATUS && cc == NULL) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
		    "rollout %llu is finished", (unsigned long long)c->id);
		goto out;
	}
	if (op != FBX_ROP_STATUS) {
		ro = &cc->c.ro;
		switch (op) {
		case FBX_ROP_PAUSE:
			if (ro->state != FBX_RO_RUNNING &&
			    ro->state != FBX_RO_BAKING &&
			    ro->state != FBX_RO_NONE)
				goto bad_state;
			fbxi_note_printf(why, sizeof(why), "paused by %s: %s",
			    req->actor, req->u.rollout.note);
			ro_pause(e, cc, req->actor, why);
			break;
		case FBX_ROP_RESUME:
			if (ro->state != FBX_RO_PAUSED)
				goto bad_state;
			/* the operator has judged this wave. Paused while a
			 * stage expanded, no wave of the stage is out: the
			 * judge finds the last one (or none) settled, and
			 * the stage's first wave goes after the bake */
			cc->judge_off = 1;
			{
				char k[FBX_KV_KEY_MAX];
				uint64_t jv = (uint64_t)ro->stage << 32 |
				    ro->wave;
				fbxi_ro_judged_prefix(k, sizeof(k), cc->c.org, cc->c.id);
				rc = fbx_store_kv_put(e->txn, k, &jv,
				    sizeof(jv));
				if (rc != FBX_OK) {
					fbxi_set_err(e, rc);
					goto out;
				}
			}
			ro->state = FBX_RO_RUNNING;
			ro_unpark(e, cc);
			fbxi_note_printf(ro->note, sizeof(ro->note), "resumed by %s: %s",
			    req->actor, req->u.rollout.note);
			fbxi_cmd_touch(cc);
			emit_event(e, FBX_EV_ROLLOUT_RESUMED, cc->c.org,
			    fbxi_reason_of(&cc->c), req->actor, cc->c.id, 0, 0,
			    "%s", ro->note);
			break;
		case FBX_ROP_CANCEL:
			if (ro->state == FBX_RO_DONE ||
			    ro->state == FBX_RO_CANCELLED)
				goto bad_state;
			ro->state = FBX_RO_CANCELLED;
			fbxi_note_printf(ro->note, sizeof(ro->note),
			    "cancelled by %s: %s", req->actor,
			    req->u.rollout.note);
			fbxi_cmd_cancel(e, cc);
			if (cc->c.state == FBX_C_EXPANDING) {
				fbxi_xlist_remove(e, cc);
				cc->c.state = FBX_C_ACTIVE;
			}
			fbxi_cmd_touch(cc);
			FBX_LOGI("rollout %llu %s", (unsigned long long)cc->c.id,
			    ro->note);
			fbxi_cmd_maybe_done(cc);
			break;
		case FBX_ROP_APPROVE:
			if (ro->state != FBX_RO_AWAITING_APPROVAL)
				goto bad_state;
			fbxi_note_printf(ro->note, sizeof(ro->note),
			    "group '%s' approved by %s: %s",
			    cc->c.rollout.groups[cc->c.cursor_idx], req->actor,
			    req->u.rollout.note);
			FBX_LOGI("rollout %llu: %s", (unsigned long long)cc->c.id,
			    ro->note);
			ro_advance_stage(e, cc);
			break;
		default:
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL, "unknown rollout operation");
			goto out;
		}
	}
	if (op != FBX_ROP_STATUS) {
		static const char *const opn[] = { "", "status", "pause",
			"resume", "cancel", "approve" };
		char action[32];
		snprintf(action, sizeof(action), "rollout.%s",
		    op > 0 && op <= 5 ? opn[op] : "?");
		fbxi_audit(e, req->org, req->actor, action, req->u.rollout.note,
		    "{\"command\":%llu,\"state\":\"%s\",\"wave\":%u,"
		    "\"released\":%u}",
		    (unsigned long long)c->id,
		    fbx_rollout_state_name(c->ro.state), c->ro.wave,
		    c->ro.released);
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rollout.command_id = c->id;
	rep.u.rollout.plan = c->rollout;
	rep.u.rollout.st = c->ro;
	fbxi_console_reply(e, in, &rep);
	goto out;
bad_state:
	fbxi_console_error(e, in, req->request_id, req->kind, FBX_ESTATE,
	    "rollout %llu is %s", (unsigned long long)cc->c.id,
	    fbx_rollout_state_name(cc->c.ro.state));
out:
	fbx_command_clear(&loaded);
}
