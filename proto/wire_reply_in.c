/*
 * wire_reply_in.c: the console reply decoder (fbx_console_rep_decode,
 * _free), used by the clients (fuseboxctl, the web console's backend,
 * the benchmarks): a reply is checked as strictly as a request.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "wire_int.h"

/* ======================= console reply: decode ========================= */

/* cmdinfo_safety_in decodes the safety-control fields of a CommandInfo. */
static int
cmdinfo_safety_in(const pb_cmdinfo *ci, struct fbx_command *c,
    struct wctx *w, const char *pfx, size_t idx)
{
	char sub[96];
	const char *what;
	int rv;

	if (!fbxp_in_range((int)ci->priority, 0, FBX_PRIO_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "priority",
		    "unknown value");
	rv = fbxp_held_copy(c->held_by, ci->held_by, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "held_by", what);
	rv = fbxp_id_copy(c->approved_by, ci->approved_by, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "approved_by", what);
	rv = fbxp_id_copy(c->resolved_by, ci->resolved_by, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "resolved_by", what);
	rv = fbxp_note_copy(c->note, ci->note, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "note", what);
	c->priority = (uint8_t)ci->priority;
	if (idx == NO_IDX)
		snprintf(sub, sizeof(sub), "%s", pfx);
	else
		snprintf(sub, sizeof(sub), "%s[%zu]", pfx, idx);
	if (ci->rollout != NULL) {
		char p[sizeof(sub) + 16];
		snprintf(p, sizeof(p), "%s.rollout", sub);
		rv = fbxp_plan_in(ci->rollout, &c->rollout, w, p);
		if (rv != FBX_OK)
			return rv;
	}
	if (ci->rollout_status != NULL) {
		char p[sizeof(sub) + 16];
		snprintf(p, sizeof(p), "%s.rollout_status", sub);
		rv = fbxp_status_in(ci->rollout_status, &c->ro, w, p);
		if (rv != FBX_OK)
			return rv;
	}
	c->settle_until_ms = ci->settle_until_ms;
	return FBX_OK;
}

static int
cmdinfo_in(const pb_cmdinfo *ci, struct fbx_command *c, struct wctx *w,
    const char *pfx, size_t idx)
{
	const char *what;
	size_t i;
	int rv;

	c->id = ci->id;
	rv = fbxp_id_copy(c->org, ci->org, 1, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "org", what);
	rv = fbxp_id_copy(c->actor, ci->actor, 1, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "actor", what);
	rv = fbxp_id_copy(c->reason, ci->reason, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "reason", what);
	rv = fbxp_id_copy(c->idem_key, ci->idempotency_key, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "idempotency_key", what);
	rv = fbxp_id_copy(c->group, ci->group, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "group", what);
	rv = fbxp_id_copy(c->cursor, ci->expansion_cursor, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "expansion_cursor", what);
	if (!fbxp_in_range((int)ci->type, 1, FBX_CMD_TYPE_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "type",
		    "unknown value");
	if (!fbxp_in_range((int)ci->origin, 1, FBX_ORIGIN_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "origin",
		    "unknown value");
	if (!fbxp_in_range((int)ci->target_kind, 1, FBX_TARGET_KIND_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "target_kind",
		    "unknown value");
	if (!fbxp_in_range((int)ci->platform, 0, FBX_PLATFORM_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "platform",
		    "unknown value");
	if (!fbxp_in_range((int)ci->state, 0, FBX_C_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "state",
		    "unknown value");
	if (ci->n_counts > FBX_D_COUNT)
		return fbxp_fail_at(w, FBX_ETOOBIG, pfx, idx, "counts",
		    "more entries than states");
	for (i = 0; i < ci->n_counts; i++) {
		int s = (int)ci->counts[i]->state;
		if (!fbxp_in_range(s, 0, FBX_D_COUNT))
			return fbxp_fail_at(w, FBX_EINVALID, pfx, idx,
			    "counts", "unknown state");
		if (c->counts[s] != 0)
			return fbxp_fail_at(w, FBX_EINVALID, pfx, idx,
			    "counts", "state given twice");
		c->counts[s] = ci->counts[i]->count;
	}
	c->type = (uint8_t)ci->type;
	c->origin = (uint8_t)ci->origin;
	c->target_kind = (uint8_t)ci->target_kind;
	c->platform = (uint8_t)ci->platform;
	c->state = (uint8_t)ci->state;
	c->ttl_s = ci->ttl_seconds;
	c->created_ms = ci->created_ms;
	c->expires_ms = ci->expires_ms;
	c->ndeliveries = ci->deliveries;
	c->payload_len = ci->payload_size;
	c->ndev_ids = ci->device_id_count;
	c->cursor_idx = ci->expansion_index;
	return cmdinfo_safety_in(ci, c, w, pfx, idx);
}

static int
outcome_in(const pb_outcome *po, struct fbx_delivery *d, struct wctx *w,
    size_t idx)
{
	static const char pfx[] = "command.deliveries";
	const char *what;
	size_t i;
	int rv;

	rv = fbxp_id_copy(d->device, po->device, 1, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "device", what);
	if (!fbxp_in_range((int)po->state, 0, FBX_D_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "state",
		    "unknown value");
	if (po->code > UINT16_MAX)
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "code",
		    "above 65535");
	if (po->n_history > FBX_HIST_MAX)
		return fbxp_fail_at(w, FBX_ETOOBIG, pfx, idx, "history",
		    "more than 12 entries");
	for (i = 0; i < po->n_history; i++) {
		const pb_hist *h = po->history[i];
		if (!fbxp_in_range((int)h->state, 0, FBX_D_COUNT) ||
		    h->code > UINT16_MAX)
			return fbxp_fail(w, FBX_EINVALID,
			    "%s[%zu].history[%zu]: state or code out of "
			    "range",
			    pfx, idx, i);
		d->hist[i].state = (uint8_t)h->state;
		d->hist[i].code = (uint16_t)h->code;
		d->hist[i].at_ms = h->at_ms;
	}
	d->nhist = (uint8_t)po->n_history;
	d->id = po->id;
	d->state = (uint8_t)po->state;
	d->code = (uint16_t)po->code;
	d->attempts = po->attempts;
	d->updated_ms = po->updated_ms;
	return FBX_OK;
}

/* cmdlist_in decodes a CommandList (list_commands and list_held). */
static int
cmdlist_in(const pb_cmdlist *l, struct fbx_console_rep *r, struct wctx *w,
    const char *pfx)
{
	size_t i, n = l->n_commands;
	int rv;

	if (n > FBX_PAGE_MAX)
		return fbxp_fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
		    FBX_PAGE_MAX);
	r->u.commands.next_after = l->next_after;
	if (n == 0)
		return FBX_OK;
	r->u.commands.cmds = calloc(n, sizeof(*r->u.commands.cmds));
	if (r->u.commands.cmds == NULL)
		return FBX_ENOMEM;
	r->u.commands.n = n;
	for (i = 0; i < n; i++) {
		rv = cmdinfo_in(l->commands[i], &r->u.commands.cmds[i], w, pfx,
		    i);
		if (rv != FBX_OK)
			return rv;
	}
	return FBX_OK;
}

static int
dryrun_in(const pb_dryrun *d, struct fbx_dryrun *o, struct wctx *w)
{
	static const char pfx[] = "submit.dry_run_report";
	const char *what;
	size_t i, n;
	int rv;

	if (d->n_per_platform > FBX_PLATFORM_COUNT)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "%s.per_platform: more entries "
		    "than platforms",
		    pfx);
	for (i = 0; i < d->n_per_platform; i++) {
		int p = (int)d->per_platform[i]->platform;
		if (!fbxp_in_range(p, 0, FBX_PLATFORM_COUNT))
			return fbxp_fail(w, FBX_EINVALID,
			    "%s.per_platform[%zu]: unknown platform %d", pfx,
			    i, p);
		if (o->per_platform[p] != 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "%s.per_platform[%zu]: platform given twice", pfx,
			    i);
		o->per_platform[p] = d->per_platform[i]->count;
	}
	if (d->n_groups > FBX_PAGE_MAX || d->n_waves > FBX_PAGE_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "%s: more than %d groups or waves", pfx, FBX_PAGE_MAX);
	if (d->stop_code > INT_MAX)
		return fbxp_fail(w, FBX_EINVALID, "%s.stop_code: out of range",
		    pfx);
	rv = fbxp_text_copy(o->verdict, sizeof(o->verdict), d->verdict, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "%s.verdict: %s", pfx, what);
	o->devices = d->devices;
	o->stop_err = (int)d->stop_code;
	n = d->n_groups;
	if (n > 0) {
		o->groups = calloc(n, sizeof(*o->groups));
		if (o->groups == NULL)
			return FBX_ENOMEM;
		o->ngroups = n;
		for (i = 0; i < n; i++) {
			rv = fbxp_id_copy(
			    o->groups[i].name, d->groups[i]->name, 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail(w, rv,
				    "%s.groups[%zu].name: %s", pfx, i, what);
			o->groups[i].count = d->groups[i]->count;
		}
	}
	n = d->n_waves;
	if (n > 0) {
		o->waves = malloc(n * sizeof(*o->waves));
		if (o->waves == NULL)
			return FBX_ENOMEM;
		memcpy(o->waves, d->waves, n * sizeof(*o->waves));
		o->nwaves = n;
	}
	if (d->n_stage_devices != d->n_stage_waves ||
	    d->n_stage_devices > FBX_ROLLOUT_GROUPS_MAX + 1)
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.stage_devices/stage_waves: %zu and %zu entries (equal, "
		    "at most %d)",
		    pfx, d->n_stage_devices, d->n_stage_waves,
		    FBX_ROLLOUT_GROUPS_MAX + 1);
	for (i = 0; i < d->n_stage_devices; i++) {
		o->stage_devices[i] = d->stage_devices[i];
		o->stage_waves[i] = d->stage_waves[i];
	}
	o->nstages = d->n_stage_devices;
	return FBX_OK;
}

static int
breakers_in(const pb_brkrep *b, struct fbx_console_rep *r, struct wctx *w)
{
	static const char pfx[] = "breaker.breakers";
	const char *what;
	char sub[64];
	size_t i, n = b->n_breakers;
	int rv;

	if (n > FBX_PAGE_MAX)
		return fbxp_fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
		    FBX_PAGE_MAX);
	r->u.breaker.released = b->released;
	r->u.breaker.discarded = b->discarded;
	r->u.breaker.held_again = b->held_again;
	rv = fbxp_id_copy(r->u.breaker.cert_due, b->cert_due, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "breaker.cert_due: %s", what);
	if (n == 0)
		return FBX_OK;
	r->u.breaker.b = calloc(n, sizeof(*r->u.breaker.b));
	if (r->u.breaker.b == NULL)
		return FBX_ENOMEM;
	r->u.breaker.n = n;
	for (i = 0; i < n; i++) {
		const pb_brkinfo *x = b->breakers[i];
		struct fbx_breaker_info *o = &r->u.breaker.b[i];
		rv = fbxp_scope_copy(o->org, x->org, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "org", what);
		rv = fbxp_id_copy(o->reason, x->reason, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "reason", what);
		rv = fbxp_id_copy(o->tripped_by, x->tripped_by, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "tripped_by", what);
		rv = fbxp_note_copy(o->note, x->note, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "note", what);
		if ((int)x->state != FBX_BS_CLOSED &&
		    (int)x->state != FBX_BS_OPEN)
			return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "state",
			    "missing or unknown value");
		if (x->config != NULL) {
			snprintf(sub, sizeof(sub), "%s[%zu].config", pfx, i);
			rv = fbxp_brkcfg_in(x->config, &o->cfg, w, sub);
			if (rv != FBX_OK)
				return rv;
		}
		o->state = (uint8_t)x->state;
		o->manual = x->manual ? 1 : 0;
		o->window_count = x->window_count;
		o->baseline = x->baseline;
		o->held = x->held;
		o->would_hold = x->would_hold;
		o->trips = x->trips;
		o->tripped_ms = x->tripped_ms;
		o->onset_ms = x->onset_ms;
		o->settling = x->settling;
		o->held_in_org = x->held_in_org;
		o->fleet = x->fleet;
		o->allowance = x->allowance;
	}
	return FBX_OK;
}

/* rbrow_in validates one RollbackRow. */
static int
rbrow_in(const pb_rbrow *x, struct fbx_rb_row *o, struct wctx *w, size_t i)
{
	static const char pfx[] = "rollback.rows";
	const char *what;
	int rv;

	rv = fbxp_id_copy(o->device, x->device, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "device", what);
	if (!fbxp_in_range((int)x->type, 1, FBX_CMD_TYPE_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "type",
		    "missing or unknown value");
	if (!fbxp_in_range((int)x->state, 0, FBX_D_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "state",
		    "unknown value");
	if (!fbxp_in_range((int)x->action, 1, FBX_RB_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "action",
		    "missing or unknown value");
	if (!fbxp_in_range((int)x->comp_type, 0, FBX_CMD_TYPE_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "comp_type",
		    "unknown value");
	rv = fbxp_text_copy(o->detail, sizeof(o->detail), x->detail, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "detail", what);
	o->command_id = x->command_id;
	o->delivery_id = x->delivery_id;
	o->type = (uint8_t)x->type;
	o->state = (uint8_t)x->state;
	o->action = (uint8_t)x->action;
	o->comp_type = (uint8_t)x->comp_type;
	return FBX_OK;
}

/* rbplan_in decodes a RollbackPlan. Compensations and a rollback id only
 * exist once a rollback was executed: a plan that has them is a bug. */
static int
rbplan_in(const pb_rbplan *p, struct fbx_rb_plan *o, struct wctx *w)
{
	const char *what;
	unsigned seen = 0;
	size_t i, n;
	int rv;

	_Static_assert(FBX_RB_COUNT <= 16, "seen is a bit mask");
	if (p->n_per_action > FBX_RB_COUNT)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "rollback.per_action: more entries than actions");
	for (i = 0; i < p->n_per_action; i++) {
		int a = (int)p->per_action[i]->action;
		if (!fbxp_in_range(a, 1, FBX_RB_COUNT))
			return fbxp_fail(w, FBX_EINVALID,
			    "rollback.per_action[%zu]: unknown action %d", i,
			    a);
		if (seen & (1u << a))
			return fbxp_fail(w, FBX_EINVALID,
			    "rollback.per_action[%zu]: action given twice", i);
		seen |= 1u << a;
		o->per_action[a] = p->per_action[i]->count;
	}
	if (p->n_rows > FBX_PAGE_MAX)
		return fbxp_fail(w, FBX_ETOOBIG, "rollback.rows: more than %d",
		    FBX_PAGE_MAX);
	if (p->n_comp_ids > CMD_IDS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "rollback.comp_ids: more than %d", CMD_IDS_MAX);
	if (!p->executed && (p->n_comp_ids > 0 || p->rollback_id != 0))
		return fbxp_fail(w, FBX_EINVALID,
		    "rollback: comp_ids or rollback_id without executed");
	for (i = 0; i < p->n_comp_ids; i++)
		if (p->comp_ids[i] == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "rollback.comp_ids[%zu]: zero", i);
	if (p->next_cursor != 0 && p->last_command_id == 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "rollback.last_command_id: missing with next_cursor");
	o->commands = p->commands;
	o->rollback_id = p->rollback_id;
	o->executed = p->executed ? 1 : 0;
	o->next_cursor = p->next_cursor;
	o->last_command_id = p->last_command_id;
	o->looked_at = p->looked_at;
	o->later_commands = p->later_commands;
	o->before_onset = p->before_onset;
	o->before_onset_deliveries = p->before_onset_deliveries;
	o->bo_rows_total = p->before_onset_rows_total;
	o->onset_ms = p->onset_ms;
	o->since_ms = p->since_ms;
	o->until_ms = p->until_ms;
	o->global = p->global ? 1 : 0;
	rv = fbxp_held_copy(o->breaker, p->breaker, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "rollback.breaker: %s", what);
	if (p->n_before_onset_rows > FBX_PAGE_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "rollback.before_onset_rows: more than %d", FBX_PAGE_MAX);
	if (p->n_orgs > FBX_PAGE_MAX)
		return fbxp_fail(w, FBX_ETOOBIG, "rollback.orgs: more than %d",
		    FBX_PAGE_MAX);
	rv = fbxp_id_copy(o->next_org, p->next_org, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "rollback.next_org: %s", what);
	if (o->next_org[0] != '\0' && p->next_cursor == 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "rollback.next_org: without next_cursor");
	n = p->n_rows;
	if (n > 0) {
		o->rows = calloc(n, sizeof(*o->rows));
		if (o->rows == NULL)
			return FBX_ENOMEM;
		o->nrows = n;
		for (i = 0; i < n; i++) {
			rv = rbrow_in(p->rows[i], &o->rows[i], w, i);
			if (rv != FBX_OK)
				return rv;
		}
	}
	n = p->n_before_onset_rows;
	if (n > 0) {
		o->bo_rows = calloc(n, sizeof(*o->bo_rows));
		if (o->bo_rows == NULL)
			return FBX_ENOMEM;
		o->nbo_rows = n;
		for (i = 0; i < n; i++) {
			rv = rbrow_in(p->before_onset_rows[i], &o->bo_rows[i],
			    w, i);
			if (rv != FBX_OK)
				return rv;
		}
	}
	n = p->n_orgs;
	if (n > 0) {
		o->orgs = calloc(n, sizeof(*o->orgs));
		if (o->orgs == NULL)
			return FBX_ENOMEM;
		o->norgs = n;
		for (i = 0; i < n; i++) {
			const pb_rbpart *x = p->orgs[i];
			struct fbx_rb_org *y = &o->orgs[i];
			unsigned pseen = 0;
			rv = fbxp_id_copy(y->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail(w, rv,
				    "rollback.orgs[%zu].org: %s", i, what);
			if (x->n_per_action > FBX_RB_COUNT)
				return fbxp_fail(w, FBX_ETOOBIG,
				    "rollback.orgs[%zu].per_action: more "
				    "entries than actions",
				    i);
			for (size_t j = 0; j < x->n_per_action; j++) {
				int a = (int)x->per_action[j]->action;
				if (!fbxp_in_range(a, 1, FBX_RB_COUNT) ||
				    (pseen & (1u << a)))
					return fbxp_fail(w, FBX_EINVALID,
					    "rollback.orgs[%zu].per_action"
					    "[%zu]: unknown or repeated "
					    "action %d",
					    i, j, a);
				pseen |= 1u << a;
				y->per_action[a] = x->per_action[j]->count;
			}
			y->commands = x->commands;
			y->before_onset = x->before_onset;
			y->before_onset_deliveries = x->before_onset_deliveries;
			y->comp_commands = x->comp_commands;
		}
	}
	n = p->n_comp_ids;
	if (n > 0) {
		o->comp_ids = malloc(n * sizeof(*o->comp_ids));
		if (o->comp_ids == NULL)
			return FBX_ENOMEM;
		memcpy(o->comp_ids, p->comp_ids, n * sizeof(*o->comp_ids));
		o->ncomp = n;
	}
	return FBX_OK;
}

/* export_in copies an ExportPage's lines into a NUL-terminated heap
 * buffer. JSON never holds a raw NUL, so one means corruption, and
 * refusing it keeps jsonl usable as a C string. */
static int
export_in(const pb_exppage *p, struct fbx_console_rep *r, struct wctx *w)
{
	size_t n = p->jsonl.len;

	if (n > JSONL_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "export.jsonl: %zu bytes, at most %u", n, JSONL_MAX);
	if (n > 0 && memchr(p->jsonl.data, '\0', n) != NULL)
		return fbxp_fail(w, FBX_EINVALID, "export.jsonl: NUL byte");
	r->u.export_.next_cursor = p->next_cursor;
	if (n == 0)
		return FBX_OK;
	r->u.export_.jsonl = malloc(n + 1);
	if (r->u.export_.jsonl == NULL)
		return FBX_ENOMEM;
	memcpy(r->u.export_.jsonl, p->jsonl.data, n);
	r->u.export_.jsonl[n] = '\0';
	r->u.export_.len = n;
	return FBX_OK;
}

/* audrec_in validates one AuditRecord. */
static int
audrec_in(const pb_audrec *x, struct fbx_audit_rec *o, struct wctx *w,
    size_t i)
{
	static const char pfx[] = "audit.records";
	const char *what;
	int rv;

	if (x->seq == 0)
		return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "seq", "zero");
	rv = fbxp_scope_copy(o->org, x->org, 1, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "org", what);
	rv = fbxp_id_copy(o->actor, x->actor, 1, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "actor", what);
	rv = fbxp_action_copy(o->action, x->action, 1, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "action", what);
	rv = fbxp_note_copy(o->note, x->note, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "note", what);
	rv = fbxp_text_copy(o->params, sizeof(o->params), x->params, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "params",
		    "longer than 511 bytes");
	rv = fbxp_hash_copy(o->hash, x->hash, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "hash", what);
	rv = fbxp_hash_copy(o->prev, x->prev, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, i, "prev", what);
	o->seq = x->seq;
	o->at_ms = x->at_ms;
	return FBX_OK;
}

/* orgs_in decodes an OrgList. orgs and devices share one allocation
 * (orgs first, devices after it, aligned), so fbx_console_rep_free frees
 * orgs only. */
static int
orgs_in(const pb_orglist *l, struct fbx_console_rep *r, struct wctx *w)
{
	const size_t al = _Alignof(uint32_t);
	size_t i, off, n = l->n_orgs;
	unsigned char *blk;
	const char *what;
	int rv;

	if (n > ORGS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG, "orgs.orgs: more than %d",
		    ORGS_MAX);
	if (n == 0)
		return FBX_OK;
	off = (n * sizeof(fbx_id) + al - 1) / al * al;
	blk = calloc(1, off + n * sizeof(uint32_t));
	if (blk == NULL)
		return FBX_ENOMEM;
	r->u.orgs.orgs = (fbx_id *)blk;
	r->u.orgs.devices = (uint32_t *)(blk + off);
	r->u.orgs.n = n;
	for (i = 0; i < n; i++) {
		rv = fbxp_id_copy(
		    r->u.orgs.orgs[i], l->orgs[i]->org, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(
			    w, rv, "orgs.orgs", i, "org", what);
		r->u.orgs.devices[i] = l->orgs[i]->devices;
	}
	return FBX_OK;
}

/* ascii_copy copies printable ASCII text (what the engine makes of a
 * certificate's names: RFC 2253 with everything else escaped) into cap
 * bytes: it ends up on terminals. */
static int
ascii_copy(char *dst, size_t cap, const char *src, const char **what)
{
	size_t n = src == NULL ? 0 : strnlen(src, cap), i;

	if (n >= cap) {
		*what = "text too long";
		return FBX_ETOOBIG;
	}
	for (i = 0; i < n; i++) {
		if (src[i] < 0x20 || src[i] > 0x7e) {
			*what = "not printable ASCII";
			return FBX_EINVALID;
		}
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* certs_in decodes a CertReply. */
static int
certs_in(const pb_certrep *l, struct fbx_console_rep *r, struct wctx *w)
{
	static const char pfx[] = "cert.certs";
	const char *what;
	size_t i, j, n = l->n_certs;
	int rv;

	if (n > FBX_CERTS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
		    FBX_CERTS_MAX);
	if (n == 0)
		return FBX_OK;
	r->u.cert.c = calloc(n, sizeof(*r->u.cert.c));
	if (r->u.cert.c == NULL)
		return FBX_ENOMEM;
	r->u.cert.n = n;
	for (i = 0; i < n; i++) {
		const pb_certinfo *x = l->certs[i];
		struct fbx_cert_info *o = &r->u.cert.c[i];
		rv = fbxp_id_copy(o->name, x->name, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "name", what);
		rv = ascii_copy(o->subject, sizeof(o->subject), x->subject,
		    &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "subject", what);
		rv = ascii_copy(o->issuer, sizeof(o->issuer), x->issuer,
		    &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "issuer", what);
		if (x->n_reasons == 0 || x->n_reasons > FBX_CERT_REASONS_MAX)
			return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "reasons",
			    "not 1..8 identifiers");
		for (j = 0; j < x->n_reasons; j++) {
			rv = fbxp_id_copy(
			    o->reasons[j], x->reasons[j], 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail_at(
				    w, rv, pfx, i, "reasons", what);
		}
		o->nreasons = (uint32_t)x->n_reasons;
		if (!fbxp_in_range(
		        (int)x->state, FBX_CST_VALID, FBX_CST_COUNT))
			return fbxp_fail_at(w, FBX_EINVALID, pfx, i, "state",
			    "missing or unknown value");
		o->state = (uint8_t)x->state;
		rv = fbxp_id_copy(o->added_by, x->added_by, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "added_by", what);
		rv = fbxp_hash_copy(o->sha256, x->sha256, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, i, "sha256", what);
		o->not_before_ms = x->not_before_ms;
		o->not_after_ms = x->not_after_ms;
		o->days_left = x->days_left;
		o->trip_before_s = x->trip_before_seconds;
		o->alerts_sent = x->alerts_sent;
		o->tripped_ms = x->tripped_ms;
		o->added_ms = x->added_ms;
	}
	return FBX_OK;
}

/* fleet_in decodes a FleetReport. */
static int
fleet_in(const pb_fleetrep *p, struct fbx_console_rep *r, struct wctx *w)
{
	struct fbx_fleet_report *o = &r->u.fleet;
	const char *what;
	size_t i;

	if (p->n_offline_hours != FBX_FLEET_BUCKETS &&
	    p->n_offline_hours != 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.offline_hours: %zu buckets, expected %d",
		    p->n_offline_hours, FBX_FLEET_BUCKETS);
	if (p->n_os_versions > FBX_FLEET_OS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "fleet.os_versions: %zu, at most %d", p->n_os_versions,
		    FBX_FLEET_OS_MAX);
	if (p->n_rules > FBX_FLEET_RULES_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "fleet.rules: %zu, at most %d", p->n_rules,
		    FBX_FLEET_RULES_MAX);
	o->as_of_ms = p->as_of_ms;
	o->devices = p->devices;
	for (i = 0; i < p->n_offline_hours; i++)
		o->offline_hours[i] = p->offline_hours[i];
	for (i = 0; i < p->n_os_versions; i++) {
		if (fbxp_text_copy(o->os[i].version, sizeof(o->os[i].version),
		        p->os_versions[i]->version, &what) != FBX_OK)
			return fbxp_fail(w, FBX_EINVALID,
			    "fleet.os_versions[%zu].version: %s", i, what);
		o->os[i].count = p->os_versions[i]->count;
	}
	o->nos = p->n_os_versions;
	o->os_other = p->os_other;
	for (i = 0; i < p->n_rules; i++) {
		o->rules[i].stale_minutes = p->rules[i]->stale_minutes;
		o->rules[i].repeat_minutes = p->rules[i]->repeat_minutes;
		o->rules[i].stale = p->rules[i]->stale;
		o->rules[i].last_alert_ms = p->rules[i]->last_alert_ms;
	}
	o->nrules = p->n_rules;
	if (p->n_outcomes >= FBX_CMD_TYPE_COUNT)
		return fbxp_fail(w, FBX_ETOOBIG, "fleet.outcomes: %zu types",
		    p->n_outcomes);
	for (i = 0; i < p->n_outcomes; i++) {
		const pb_typeout *t = p->outcomes[i];
		if (!fbxp_in_range((int)t->type, 1, FBX_CMD_TYPE_COUNT))
			return fbxp_fail(w, FBX_EINVALID,
			    "fleet.outcomes[%zu].type: unknown value %d", i,
			    (int)t->type);
		o->out[i].type = (uint8_t)t->type;
		o->out[i].silent = t->silent ? 1 : 0;
		o->out[i].ok_hour = t->succeeded_hour;
		o->out[i].failed_hour = t->failed_hour;
		o->out[i].expired_hour = t->expired_hour;
		o->out[i].ok_day = t->succeeded_day;
		o->out[i].failed_day = t->failed_day;
		o->out[i].expired_day = t->expired_day;
	}
	o->nout = p->n_outcomes;
	if (fbxp_id_copy(o->group, p->group, 0, &what) != FBX_OK ||
	    fbxp_id_copy(o->next_after, p->next_after, 0, &what) != FBX_OK)
		return fbxp_fail(
		    w, FBX_EINVALID, "fleet.group, next_after: %s", what);
	if (p->version != NULL) {
		const pb_rover *v = p->version;
		o->version.set = 1;
		o->version.command_id = v->command_id;
		if (fbxp_text_copy(o->version.target,
		        sizeof(o->version.target), v->target,
		        &what) != FBX_OK)
			return fbxp_fail(
			    w, FBX_EINVALID, "fleet.version.target: %s", what);
		o->version.devices = v->devices;
		o->version.at_target = v->at_target;
		o->version.other = v->other;
		o->version.unknown = v->unknown;
		o->version.next_after = v->next_after;
	}
	return FBX_OK;
}

/* principals_in decodes a PrincipalReply: bounded text, kept as is. */
static int
principals_in(const pb_prirep *p, struct fbx_console_rep *r, struct wctx *w)
{
	size_t n = p->jsonl != NULL ? strlen(p->jsonl) : 0;

	if (n > FBX_PRINCIPAL_JSONL_MAX)
		return fbxp_fail(
		    w, FBX_ETOOBIG, "principal.jsonl: %zu bytes", n);
	r->u.principal.jsonl = malloc(n + 1);
	if (r->u.principal.jsonl == NULL)
		return FBX_ENOMEM;
	if (n > 0)
		memcpy(r->u.principal.jsonl, p->jsonl, n);
	r->u.principal.jsonl[n] = '\0';
	r->u.principal.len = n;
	r->u.principal.count = p->count;
	return FBX_OK;
}

static int
result_in(const pb_crep *pb, struct fbx_console_rep *r, struct wctx *w)
{
	const char *what;
	size_t i, n;
	int rv;

	switch (pb->result_case) {
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_SUBMIT:
		if (!fbxp_in_range((int)pb->submit->state, 0, FBX_C_COUNT))
			return fbxp_fail(w, FBX_EINVALID,
			    "submit.state: unknown value");
		rv = fbxp_held_copy(r->u.submit.held_by, pb->submit->held_by,
		    &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "submit.held_by: %s", what);
		r->u.submit.command_id = pb->submit->command_id;
		r->u.submit.duplicate = pb->submit->duplicate ? 1 : 0;
		r->u.submit.device_count = pb->submit->device_count;
		r->u.submit.state = (int)pb->submit->state;
		if (pb->submit->dry_run_report != NULL && !pb->submit->dry_run)
			return fbxp_fail(w, FBX_EINVALID,
			    "submit.dry_run_report: without dry_run");
		if (!pb->submit->dry_run)
			return FBX_OK;
		if (pb->submit->dry_run_report == NULL)
			return fbxp_fail(w, FBX_EINVALID,
			    "submit.dry_run_report: missing");
		r->u.submit.dry_run = 1;
		return dryrun_in(pb->submit->dry_run_report,
		    &r->u.submit.dryrun, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMAND: {
		const pb_cmdpage *p = pb->command;
		if (p->info == NULL)
			return fbxp_fail(
			    w, FBX_EINVALID, "command.info: missing");
		rv = cmdinfo_in(p->info, &r->u.command.info, w,
		    "command.info", NO_IDX);
		if (rv != FBX_OK)
			return rv;
		n = p->n_deliveries;
		if (n > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "command.deliveries: more than %d", FBX_PAGE_MAX);
		r->u.command.next_after = p->next_after;
		if (n == 0)
			return FBX_OK;
		r->u.command.dlv = calloc(n, sizeof(*r->u.command.dlv));
		if (r->u.command.dlv == NULL)
			return FBX_ENOMEM;
		r->u.command.ndlv = n;
		for (i = 0; i < n; i++) {
			rv = outcome_in(p->deliveries[i],
			    &r->u.command.dlv[i], w, i);
			if (rv != FBX_OK)
				return rv;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMANDS:
		return cmdlist_in(pb->commands, r, w, "commands.commands");
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIST_HELD:
		return cmdlist_in(pb->list_held, r, w, "list_held.commands");
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_BREAKER:
		return breakers_in(pb->breaker, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIMIT: {
		static const char pfx[] = "limit.limits";
		n = pb->limit->n_limits;
		if (n > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG, "%s: more than %d",
			    pfx, FBX_PAGE_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.limit.l = calloc(n, sizeof(*r->u.limit.l));
		if (r->u.limit.l == NULL)
			return FBX_ENOMEM;
		r->u.limit.n = n;
		for (i = 0; i < n; i++) {
			const pb_liminfo *x = pb->limit->limits[i];
			struct fbx_limit_info *o = &r->u.limit.l[i];
			rv = fbxp_scope_copy(o->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail_at(
				    w, rv, pfx, i, "org", what);
			if (!fbxp_in_range(
			        (int)x->type, 1, FBX_CMD_TYPE_COUNT))
				return fbxp_fail_at(w, FBX_EINVALID, pfx, i,
				    "type", "missing or unknown value");
			if (x->max_share_ppm > FBX_PPM)
				return fbxp_fail_at(w, FBX_EINVALID, pfx, i,
				    "max_share_ppm", "above 1,000,000 ppm");
			o->type = (uint8_t)x->type;
			o->max_count = x->max_count;
			o->max_share_ppm = x->max_share_ppm;
			o->window_s = x->window_seconds;
			o->used = x->used;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_RATE: {
		static const char pfx[] = "rate.rates";
		n = pb->rate->n_rates;
		if (n > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG, "%s: more than %d",
			    pfx, FBX_PAGE_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.rate.r = calloc(n, sizeof(*r->u.rate.r));
		if (r->u.rate.r == NULL)
			return FBX_ENOMEM;
		r->u.rate.n = n;
		for (i = 0; i < n; i++) {
			const pb_rateinfo *x = pb->rate->rates[i];
			struct fbx_rate_info *o = &r->u.rate.r[i];
			rv = fbxp_scope_copy(o->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail_at(
				    w, rv, pfx, i, "org", what);
			o->rate_per_s = x->rate_per_second;
			o->burst = x->burst;
			o->max_inflight = x->max_inflight;
			o->inflight = x->inflight;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_APPROVE: {
		const pb_apprrep *x = pb->approve;
		rv = fbxp_id_copy(r->u.approve.token, x->token, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "approve.token: %s", what);
		rv = fbxp_id_copy(
		    r->u.approve.approver, x->approver, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "approve.approver: %s", what);
		rv = fbxp_id_copy(
		    r->u.approve.submitter, x->submitter, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "approve.submitter: %s", what);
		r->u.approve.expires_ms = x->expires_ms;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLOUT: {
		const pb_rorep *x = pb->rollout;
		if (x->plan != NULL) {
			rv = fbxp_plan_in(x->plan, &r->u.rollout.plan, w,
			    "rollout.plan");
			if (rv != FBX_OK)
				return rv;
		}
		if (x->status != NULL) {
			rv = fbxp_status_in(x->status, &r->u.rollout.st, w,
			    "rollout.status");
			if (rv != FBX_OK)
				return rv;
		}
		r->u.rollout.command_id = x->command_id;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ENROLL:
		r->u.enroll.created = pb->enroll->created;
		r->u.enroll.updated = pb->enroll->updated;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_REMOVE:
		r->u.remove.removed = pb->remove->removed;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_DEVICES:
		n = pb->devices->n_devices;
		if (n > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "devices.devices: more than %d", FBX_PAGE_MAX);
		rv = fbxp_id_copy(r->u.devices.next_after,
		    pb->devices->next_after, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(
			    w, rv, "devices.next_after: %s", what);
		r->u.devices.total = pb->devices->total;
		if (n == 0)
			return FBX_OK;
		r->u.devices.devs = calloc(n, sizeof(*r->u.devices.devs));
		if (r->u.devices.devs == NULL)
			return FBX_ENOMEM;
		r->u.devices.n = n;
		for (i = 0; i < n; i++) {
			rv = fbxp_device_in(pb->devices->devices[i],
			    &r->u.devices.devs[i], 1, w, "devices.devices", i);
			if (rv != FBX_OK)
				return rv;
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_GROUPS:
		n = pb->groups->n_groups;
		if (n > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "groups.groups: more than %d", FBX_PAGE_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.groups.groups = calloc(n, sizeof(*r->u.groups.groups));
		if (r->u.groups.groups == NULL)
			return FBX_ENOMEM;
		r->u.groups.n = n;
		for (i = 0; i < n; i++) {
			const pb_grpcount *g = pb->groups->groups[i];
			rv = fbxp_id_copy(
			    r->u.groups.groups[i].name, g->name, 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail(w, rv,
				    "groups.groups[%zu].name: %s", i, what);
			r->u.groups.groups[i].count = g->count;
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_PONG: {
		const pb_stats *s = pb->pong;
		struct fbx_engine_stats *o = &r->u.pong;
		rv = fbxp_text_copy(o->version, sizeof(o->version), s->version,
		    &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "pong.version: %s", what);
		o->uptime_ms = s->uptime_ms;
		o->gateways = s->gateways;
		o->commands_active = s->commands_active;
		o->deliveries_queued = s->deliveries_queued;
		o->deliveries_inflight = s->deliveries_inflight;
		o->deliveries_pending = s->deliveries_pending;
		o->commits = s->commits;
		o->store_bytes = s->store_bytes;
		o->turn_max_us = s->turn_max_us;
		o->turns_failed = s->turns_failed;
		o->degraded = s->degraded != 0;
		o->readers_used = s->readers_used;
		o->auth_refused = s->auth_refused;
		o->results_forged = s->results_forged;
		o->handshakes_refused = s->handshakes_refused;
		o->commands_held = s->commands_held;
		o->commands_settling = s->commands_settling;
		o->breakers_open = s->breakers_open;
		rv = fbxp_text_copy(o->node, sizeof(o->node), s->node, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "pong.node: %s", what);
		o->leases = s->leases;
		o->duties = s->duties;
		rv = fbxp_text_copy(o->admin_org, sizeof(o->admin_org),
		    s->admin_org, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "pong.admin_org: %s", what);
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLBACK:
		return rbplan_in(pb->rollback, &r->u.rollback, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_REPLAY:
		r->u.replay.matched = pb->replay->matched;
		r->u.replay.resent = pb->replay->resent;
		r->u.replay.skipped_terminal = pb->replay->skipped_terminal;
		if (pb->replay->next_cursor != 0 &&
		    pb->replay->last_command_id == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "replay.last_command_id: missing with next_cursor");
		r->u.replay.next_cursor = pb->replay->next_cursor;
		r->u.replay.last_command_id = pb->replay->last_command_id;
		r->u.replay.commands = pb->replay->commands;
		r->u.replay.looked_at = pb->replay->looked_at;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_EXPORT:
		return export_in(pb->export, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_AUDIT:
		n = pb->audit->n_records;
		if (n > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "audit.records: more than %d", FBX_PAGE_MAX);
		r->u.audit.next_after = pb->audit->next_after;
		if (n == 0)
			return FBX_OK;
		r->u.audit.r = calloc(n, sizeof(*r->u.audit.r));
		if (r->u.audit.r == NULL)
			return FBX_ENOMEM;
		r->u.audit.n = n;
		for (i = 0; i < n; i++) {
			rv = audrec_in(pb->audit->records[i], &r->u.audit.r[i],
			    w, i);
			if (rv != FBX_OK)
				return rv;
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_VERIFY:
		rv = fbxp_text_copy(r->u.verify.why, sizeof(r->u.verify.why),
		    pb->verify->why, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "verify.why: %s", what);
		rv = fbxp_hash_copy(r->u.verify.verified_hash,
		    pb->verify->verified_hash, &what);
		if (rv != FBX_OK)
			return fbxp_fail(
			    w, rv, "verify.verified_hash: %s", what);
		r->u.verify.records = pb->verify->records;
		r->u.verify.broken_at = pb->verify->broken_at;
		r->u.verify.verified_seq = pb->verify->verified_seq;
		r->u.verify.complete = pb->verify->complete ? 1 : 0;
		r->u.verify.head_seq = pb->verify->head_seq;
		r->u.verify.anchor_seq = pb->verify->anchor_seq;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ORGS:
		return orgs_in(pb->orgs, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_CERT:
		return certs_in(pb->cert, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_PRINCIPAL:
		return principals_in(pb->principal, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_FLEET:
		return fleet_in(pb->fleet, r, w);
	default:
		break;
	}
	return fbxp_fail(w, FBX_EINVALID, "result: missing or unknown");
}

int
fbx_console_rep_decode(
    const void *buf, size_t len, struct fbx_console_rep *out)
{
	struct wctx w = { NULL, 0 };
	struct fbx_console_rep r;
	pb_crep *pb = NULL;
	struct pb_alloc pa;
	const char *what;
	int rv;

	memset(&r, 0, sizeof(r));
	if (out == NULL)
		return FBX_EINVALID;
	rv = fbxp_check_len(&w, buf, len, FBX_CONSOLE_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	rv = fbxp_prescan(&w, &fusebox__v1__console_reply__descriptor, buf,
	    len, &fbxp_caps_reply);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__console_reply__unpack(fbxp_pb_alloc_init(&pa), len,
	    fbxp_in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM : FBX_EMALFORMED;
		goto out;
	}
	r.request_id = pb->request_id;
	rv = fbxp_check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	if (pb->error != NULL) {
		/* An error reply carries no result; kind stays NONE. */
		if (pb->error->code == 0 || pb->error->code > INT_MAX ||
		    pb->result_case !=
		        FUSEBOX__V1__CONSOLE_REPLY__RESULT__NOT_SET) {
			rv = FBX_EINVALID;
			goto out;
		}
		r.err = (int)pb->error->code;
		rv = fbxp_text_copy(r.errmsg, sizeof(r.errmsg),
		    pb->error->message, &what);
		if (rv != FBX_OK)
			goto out;
		rv = fbxp_id_copy(
		    r.approval_token, pb->error->approval_token, 0, &what);
		r.limit_value = pb->error->limit_value;
		r.limit_count = pb->error->limit_count;
		if (rv == FBX_OK)
			rv = fbxp_id_copy(
			    r.owner_node, pb->error->owner_node, 0, &what);
		if (rv == FBX_OK)
			rv = fbxp_text_copy(r.owner_endpoint,
			    sizeof(r.owner_endpoint), pb->error->owner_endpoint,
			    &what);
		goto out;
	}
	r.kind = (int)pb->result_case;
	rv = result_in(pb, &r, &w);

out:
	if (pb != NULL)
		fusebox__v1__console_reply__free_unpacked(pb, NULL);
	if (rv != FBX_OK) {
		uint64_t id = r.request_id;
		fbx_console_rep_free(&r);
		memset(out, 0, sizeof(*out));
		out->request_id = id;
		return rv;
	}
	*out = r;
	return FBX_OK;
}

void
fbx_console_rep_free(struct fbx_console_rep *rep)
{
	if (rep == NULL)
		return;
	switch (rep->kind) {
	case FBX_CREQ_GET_COMMAND:
		fbx_command_clear(&rep->u.command.info);
		free(rep->u.command.dlv);
		break;
	case FBX_CREQ_LIST_COMMANDS:
	case FBX_CREQ_LIST_HELD:
		free(rep->u.commands.cmds);
		break;
	case FBX_CREQ_LIST_DEVICES:
		free(rep->u.devices.devs);
		break;
	case FBX_CREQ_LIST_GROUPS:
		free(rep->u.groups.groups);
		break;
	case FBX_CREQ_SUBMIT:
		free(rep->u.submit.dryrun.groups);
		free(rep->u.submit.dryrun.waves);
		break;
	case FBX_CREQ_BREAKER:
		free(rep->u.breaker.b);
		break;
	case FBX_CREQ_LIMIT:
		free(rep->u.limit.l);
		break;
	case FBX_CREQ_RATE:
		free(rep->u.rate.r);
		break;
	case FBX_CREQ_ROLLBACK:
		free(rep->u.rollback.rows);
		free(rep->u.rollback.comp_ids);
		free(rep->u.rollback.bo_rows);
		free(rep->u.rollback.orgs);
		break;
	case FBX_CREQ_EXPORT:
		free(rep->u.export_.jsonl);
		break;
	case FBX_CREQ_AUDIT_LIST:
		free(rep->u.audit.r);
		break;
	case FBX_CREQ_LIST_ORGS:
		free(rep->u.orgs.orgs); /* devices is in the same block */
		break;
	case FBX_CREQ_CERT:
		free(rep->u.cert.c);
		break;
	case FBX_CREQ_PRINCIPAL:
		free(rep->u.principal.jsonl);
		break;
	default:
		break;
	}
	memset(rep, 0, sizeof(*rep));
}
