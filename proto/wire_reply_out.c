/*
 * wire_reply_out.c: the console reply encoder (fbx_console_rep_encode):
 * the engine's replies, an accepted submit's through a fast path
 * (submit_rep_out) beside the general encoder (rep_out).
 */
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "wire_int.h"

/* ======================= console reply: encode ========================= */

/* cmdinfo_size sizes cmdinfo_out: the fixed arrays, plus a plan (with
 * its group pointers) and a status only for commands that have them. */
static size_t
cmdinfo_size(const struct fbx_command *c, size_t n)
{
	size_t i, sz;

	sz = fbxp_asz(n * sizeof(pb_cmdinfo))
	    + fbxp_asz(n * sizeof(pb_cmdinfo *))
	    + fbxp_asz(n * FBX_D_COUNT * sizeof(pb_count))
	    + fbxp_asz(n * FBX_D_COUNT * sizeof(pb_count *));
	for (i = 0; i < n; i++) {
		if (!fbxp_plan_empty(&c[i].rollout))
			sz += fbxp_asz(sizeof(pb_plan)) +
			    fbxp_asz(FBX_ROLLOUT_GROUPS_MAX * sizeof(char *));
		if (!fbxp_status_empty(&c[i].ro))
			sz += fbxp_asz(sizeof(pb_rostatus));
	}
	return sz;
}

/* cmdinfo_safety_out adds the safety-control fields of c to x. */
static int
cmdinfo_safety_out(struct arena *a, const struct fbx_command *c,
    pb_cmdinfo *x)
{
	int rv;

	if (!fbxp_cstr_ok(c->held_by, sizeof(c->held_by)) ||
	    !fbxp_cstr_ok(c->approved_by, sizeof(c->approved_by)) ||
	    !fbxp_cstr_ok(c->resolved_by, sizeof(c->resolved_by)) ||
	    !fbxp_cstr_ok(c->note, sizeof(c->note)))
		return FBX_EINVALID;
	x->priority = (Fusebox__V1__Priority)c->priority;
	x->held_by = (char *)c->held_by;
	x->approved_by = (char *)c->approved_by;
	x->resolved_by = (char *)c->resolved_by;
	x->note = (char *)c->note;
	if (!fbxp_plan_empty(&c->rollout)) {
		pb_plan *p = fbxp_arena_take(a, sizeof(*p));
		char **gp = fbxp_arena_take(a,
		    FBX_ROLLOUT_GROUPS_MAX * sizeof(char *));
		if (p == NULL || gp == NULL)
			return FBX_ENOMEM;
		rv = fbxp_plan_out(&c->rollout, p, gp);
		if (rv != FBX_OK)
			return rv;
		x->rollout = p;
	}
	if (!fbxp_status_empty(&c->ro)) {
		pb_rostatus *st = fbxp_arena_take(a, sizeof(*st));
		if (st == NULL)
			return FBX_ENOMEM;
		rv = fbxp_status_out(&c->ro, st);
		if (rv != FBX_OK)
			return rv;
		x->rollout_status = st;
	}
	x->settle_until_ms = c->settle_until_ms;
	return FBX_OK;
}

static size_t
grpcounts_size(size_t n)
{
	return fbxp_asz(n * sizeof(pb_grpcount))
	    + fbxp_asz(n * sizeof(pb_grpcount *));
}

/* grpcounts_out builds n GroupCount messages from the arena. */
static int
grpcounts_out(struct arena *a, const struct fbx_group_count *gc, size_t n,
    pb_grpcount ***pp)
{
	static const pb_grpcount ginit = FUSEBOX__V1__GROUP_COUNT__INIT;
	pb_grpcount *g = fbxp_arena_take(a, n * sizeof(*g));
	pb_grpcount **p = fbxp_arena_take(a, n * sizeof(*p));
	size_t i;

	if (g == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		if (!fbxp_cstr_ok(gc[i].name, sizeof(gc[i].name)))
			return FBX_EINVALID;
		g[i] = ginit;
		g[i].name = (char *)gc[i].name;
		g[i].count = gc[i].count;
		p[i] = &g[i];
	}
	*pp = n > 0 ? p : NULL;
	return FBX_OK;
}

/* cmdinfo_out fills o[i] (and p[i] = &o[i]) for n commands. */
static int
cmdinfo_out(struct arena *a, const struct fbx_command *c, size_t n,
    pb_cmdinfo ***pp)
{
	static const pb_cmdinfo init = FUSEBOX__V1__COMMAND_INFO__INIT;
	static const pb_count cinit = FUSEBOX__V1__STATE_COUNT__INIT;
	pb_cmdinfo *o = fbxp_arena_take(a, n * sizeof(*o));
	pb_cmdinfo **p = fbxp_arena_take(a, n * sizeof(*p));
	pb_count *sc = fbxp_arena_take(a, n * FBX_D_COUNT * sizeof(*sc));
	pb_count **scp = fbxp_arena_take(a, n * FBX_D_COUNT * sizeof(*scp));
	size_t i, k, s;
	int rv;

	if (n > 0 && (o == NULL || p == NULL || sc == NULL || scp == NULL))
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_command *ci = &c[i];
		pb_cmdinfo *x = &o[i];
		if (!fbxp_cstr_ok(ci->org, sizeof(ci->org)) ||
		    !fbxp_cstr_ok(ci->actor, sizeof(ci->actor)) ||
		    !fbxp_cstr_ok(ci->reason, sizeof(ci->reason)) ||
		    !fbxp_cstr_ok(ci->idem_key, sizeof(ci->idem_key)) ||
		    !fbxp_cstr_ok(ci->group, sizeof(ci->group)) ||
		    !fbxp_cstr_ok(ci->cursor, sizeof(ci->cursor)))
			return FBX_EINVALID;
		*x = init;
		x->id = ci->id;
		x->org = (char *)ci->org;
		x->actor = (char *)ci->actor;
		x->reason = (char *)ci->reason;
		x->idempotency_key = (char *)ci->idem_key;
		x->group = (char *)ci->group;
		x->type = (Fusebox__V1__CommandType)ci->type;
		x->origin = (Fusebox__V1__Origin)ci->origin;
		x->target_kind = (Fusebox__V1__TargetKind)ci->target_kind;
		x->platform = (Fusebox__V1__Platform)ci->platform;
		x->state = (Fusebox__V1__CommandState)ci->state;
		x->ttl_seconds = ci->ttl_s;
		x->created_ms = ci->created_ms;
		x->expires_ms = ci->expires_ms;
		x->deliveries = ci->ndeliveries;
		x->payload_size = ci->payload_len;
		x->device_id_count = ci->ndev_ids;
		x->expansion_cursor = (char *)ci->cursor;
		x->expansion_index = ci->cursor_idx;
		k = i * FBX_D_COUNT;
		x->counts = &scp[k];
		for (s = 0; s < FBX_D_COUNT; s++) {
			if (ci->counts[s] == 0)
				continue;
			sc[k] = cinit;
			sc[k].state = (Fusebox__V1__DeliveryState)s;
			sc[k].count = ci->counts[s];
			scp[k] = &sc[k];
			k++;
			x->n_counts++;
		}
		if (x->n_counts == 0)
			x->counts = NULL;
		rv = cmdinfo_safety_out(a, ci, x);
		if (rv != FBX_OK)
			return rv;
		p[i] = x;
	}
	*pp = p;
	return FBX_OK;
}

static int
outcomes_size(const struct fbx_delivery *d, size_t n, size_t *sz)
{
	size_t i, nh = 0;

	for (i = 0; i < n; i++) {
		if (d[i].nhist > FBX_HIST_MAX)
			return FBX_ETOOBIG;
		nh += d[i].nhist;
	}
	*sz = fbxp_asz(n * sizeof(pb_outcome))
	    + fbxp_asz(n * sizeof(pb_outcome *))
	    + fbxp_asz(nh * sizeof(pb_hist))
	    + fbxp_asz(nh * sizeof(pb_hist *));
	return FBX_OK;
}

static int
outcomes_out(struct arena *a, const struct fbx_delivery *d, size_t n,
    size_t nh, pb_outcome ***pp)
{
	static const pb_outcome init = FUSEBOX__V1__DELIVERY_OUTCOME__INIT;
	static const pb_hist hinit = FUSEBOX__V1__HISTORY_ENTRY__INIT;
	pb_outcome *o = fbxp_arena_take(a, n * sizeof(*o));
	pb_outcome **p = fbxp_arena_take(a, n * sizeof(*p));
	pb_hist *h = fbxp_arena_take(a, nh * sizeof(*h));
	pb_hist **hp = fbxp_arena_take(a, nh * sizeof(*hp));
	size_t i, j, k = 0;

	if (o == NULL || p == NULL || h == NULL || hp == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		if (!fbxp_cstr_ok(d[i].device, sizeof(d[i].device)))
			return FBX_EINVALID;
		o[i] = init;
		o[i].id = d[i].id;
		o[i].device = (char *)d[i].device;
		o[i].state = (Fusebox__V1__DeliveryState)d[i].state;
		o[i].code = d[i].code;
		o[i].attempts = d[i].attempts;
		o[i].updated_ms = d[i].updated_ms;
		o[i].n_history = d[i].nhist;
		o[i].history = d[i].nhist > 0 ? &hp[k] : NULL;
		for (j = 0; j < d[i].nhist; j++, k++) {
			h[k] = hinit;
			h[k].state =
			    (Fusebox__V1__DeliveryState)d[i].hist[j].state;
			h[k].code = d[i].hist[j].code;
			h[k].at_ms = d[i].hist[j].at_ms;
			hp[k] = &h[k];
		}
		p[i] = &o[i];
	}
	*pp = p;
	return FBX_OK;
}

/* dryrun_out fills o from d; plat/platp hold FBX_PLATFORM_COUNT entries
 * and only non-zero platforms are sent. */
static int
dryrun_out(struct arena *a, const struct fbx_dryrun *d, pb_dryrun *o,
    pb_platcount *plat, pb_platcount **platp)
{
	static const pb_platcount pinit = FUSEBOX__V1__PLATFORM_COUNT__INIT;
	size_t p, k = 0;
	int rv;

	if (d->stop_err < 0 || !fbxp_cstr_ok(d->verdict, sizeof(d->verdict)))
		return FBX_EINVALID;
	for (p = 0; p < FBX_PLATFORM_COUNT; p++) {
		if (d->per_platform[p] == 0)
			continue;
		plat[k] = pinit;
		plat[k].platform = (Fusebox__V1__Platform)p;
		plat[k].count = d->per_platform[p];
		platp[k] = &plat[k];
		k++;
	}
	o->devices = d->devices;
	o->n_per_platform = k;
	o->per_platform = k > 0 ? platp : NULL;
	rv = grpcounts_out(a, d->groups, d->ngroups, &o->groups);
	if (rv != FBX_OK)
		return rv;
	o->n_groups = d->ngroups;
	o->n_waves = d->nwaves;
	o->waves = d->nwaves > 0 ? d->waves : NULL;
	if (d->nstages > FBX_ROLLOUT_GROUPS_MAX + 1)
		return FBX_EINVALID;
	o->n_stage_devices = o->n_stage_waves = d->nstages;
	o->stage_devices = d->nstages > 0 ? (uint32_t *)d->stage_devices : NULL;
	o->stage_waves = d->nstages > 0 ? (uint32_t *)d->stage_waves : NULL;
	o->stop_code = (uint32_t)d->stop_err;
	o->stop_name = d->stop_err != FBX_OK ?
	    (char *)fbx_errname(d->stop_err) :
	    (char *)"";
	o->verdict = (char *)d->verdict;
	return FBX_OK;
}

/* breakers_out fills o from the breaker reply of rep. */
static int
breakers_out(struct arena *a, const struct fbx_console_rep *rep,
    pb_brkrep *o)
{
	static const pb_brkinfo binit = FUSEBOX__V1__BREAKER_INFO__INIT;
	size_t i, n = rep->u.breaker.n;
	pb_brkinfo *v = fbxp_arena_take(a, n * sizeof(*v));
	pb_brkcfg *c = fbxp_arena_take(a, n * sizeof(*c));
	pb_brkinfo **p = fbxp_arena_take(a, n * sizeof(*p));

	if (v == NULL || c == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_breaker_info *x = &rep->u.breaker.b[i];
		if (!fbxp_cstr_ok(x->org, sizeof(x->org)) ||
		    !fbxp_cstr_ok(x->reason, sizeof(x->reason)) ||
		    !fbxp_cstr_ok(x->tripped_by, sizeof(x->tripped_by)) ||
		    !fbxp_cstr_ok(x->note, sizeof(x->note)))
			return FBX_EINVALID;
		v[i] = binit;
		v[i].org = (char *)x->org;
		v[i].reason = (char *)x->reason;
		v[i].state = (Fusebox__V1__BreakerState)x->state;
		v[i].manual = x->manual != 0;
		fbxp_brkcfg_out(&x->cfg, &c[i]);
		v[i].config = &c[i];
		v[i].window_count = x->window_count;
		v[i].baseline = x->baseline;
		v[i].held = x->held;
		v[i].would_hold = x->would_hold;
		v[i].trips = x->trips;
		v[i].tripped_ms = x->tripped_ms;
		v[i].onset_ms = x->onset_ms;
		v[i].settling = x->settling;
		v[i].held_in_org = x->held_in_org;
		v[i].tripped_by = (char *)x->tripped_by;
		v[i].note = (char *)x->note;
		v[i].fleet = x->fleet;
		v[i].allowance = x->allowance;
		p[i] = &v[i];
	}
	o->breakers = n > 0 ? p : NULL;
	o->n_breakers = n;
	o->released = rep->u.breaker.released;
	o->discarded = rep->u.breaker.discarded;
	o->held_again = rep->u.breaker.held_again;
	o->cert_due = (char *)rep->u.breaker.cert_due;
	return FBX_OK;
}

/* rbplan_out fills o from a rollback plan; act/actp hold FBX_RB_COUNT
 * entries and only non-zero actions are sent. RB_NONE is no action, so
 * a count for it is refused rather than sent for the decoder to refuse. */
/* rbacts_out fills act/actp (FBX_RB_COUNT entries) with the non-zero
 * counts of per; @return how many, or -1 for a count of RB_NONE. */
static int
rbacts_out(const uint32_t *per, pb_actcount *act, pb_actcount **actp)
{
	static const pb_actcount ainit = FUSEBOX__V1__ACTION_COUNT__INIT;
	int k = 0;

	if (per[FBX_RB_NONE] != 0)
		return -1;
	for (int i = 1; i < FBX_RB_COUNT; i++) {
		if (per[i] == 0)
			continue;
		act[k] = ainit;
		act[k].action = (Fusebox__V1__RollbackAction)i;
		act[k].count = per[i];
		actp[k] = &act[k];
		k++;
	}
	return k;
}

/* rbrows_out fills *out with n rows taken from the arena. */
static int
rbrows_out(struct arena *a, const struct fbx_rb_row *rows, size_t n,
    pb_rbrow ***out)
{
	static const pb_rbrow rinit = FUSEBOX__V1__ROLLBACK_ROW__INIT;
	pb_rbrow *v = fbxp_arena_take(a, n * sizeof(*v));
	pb_rbrow **p = fbxp_arena_take(a, n * sizeof(*p));

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct fbx_rb_row *x = &rows[i];
		if (!fbxp_cstr_ok(x->device, sizeof(x->device)) ||
		    !fbxp_cstr_ok(x->detail, sizeof(x->detail)))
			return FBX_EINVALID;
		v[i] = rinit;
		v[i].command_id = x->command_id;
		v[i].delivery_id = x->delivery_id;
		v[i].device = (char *)x->device;
		v[i].type = (Fusebox__V1__CommandType)x->type;
		v[i].state = (Fusebox__V1__DeliveryState)x->state;
		v[i].action = (Fusebox__V1__RollbackAction)x->action;
		v[i].comp_type = (Fusebox__V1__CommandType)x->comp_type;
		v[i].detail = (char *)x->detail;
		p[i] = &v[i];
	}
	*out = n > 0 ? p : NULL;
	return FBX_OK;
}

static int
rbplan_out(struct arena *a, const struct fbx_rb_plan *pl, pb_rbplan *o,
    pb_actcount *act, pb_actcount **actp)
{
	static const pb_rbpart pinit = FUSEBOX__V1__ROLLBACK_ORG_PART__INIT;
	pb_rbrow **p = NULL, **bo = NULL;
	pb_rbpart *pv = fbxp_arena_take(a, pl->norgs * sizeof(*pv));
	pb_rbpart **pp = fbxp_arena_take(a, pl->norgs * sizeof(*pp));
	pb_actcount *pa = fbxp_arena_take(a,
	    pl->norgs * FBX_RB_COUNT * sizeof(*pa));
	pb_actcount **pap = fbxp_arena_take(a,
	    pl->norgs * FBX_RB_COUNT * sizeof(*pap));
	int k, rv;

	if (pv == NULL || pp == NULL || pa == NULL || pap == NULL)
		return FBX_ENOMEM;
	k = rbacts_out(pl->per_action, act, actp);
	if (k < 0)
		return FBX_EINVALID;
	rv = rbrows_out(a, pl->rows, pl->nrows, &p);
	if (rv == FBX_OK)
		rv = rbrows_out(a, pl->bo_rows, pl->nbo_rows, &bo);
	if (rv != FBX_OK)
		return rv;
	if (!fbxp_cstr_ok(pl->next_org, sizeof(pl->next_org)) ||
	    !fbxp_cstr_ok(pl->breaker, sizeof(pl->breaker)))
		return FBX_EINVALID;
	for (size_t i = 0; i < pl->norgs; i++) {
		const struct fbx_rb_org *x = &pl->orgs[i];
		int n = rbacts_out(x->per_action, pa + i * FBX_RB_COUNT,
		    pap + i * FBX_RB_COUNT);
		if (n < 0 || !fbxp_cstr_ok(x->org, sizeof(x->org)))
			return FBX_EINVALID;
		pv[i] = pinit;
		pv[i].org = (char *)x->org;
		pv[i].commands = x->commands;
		pv[i].n_per_action = (size_t)n;
		pv[i].per_action = n > 0 ? pap + i * FBX_RB_COUNT : NULL;
		pv[i].before_onset = x->before_onset;
		pv[i].before_onset_deliveries = x->before_onset_deliveries;
		pv[i].comp_commands = x->comp_commands;
		pp[i] = &pv[i];
	}
	o->commands = pl->commands;
	o->n_per_action = (size_t)k;
	o->per_action = k > 0 ? actp : NULL;
	o->n_rows = pl->nrows;
	o->rows = p;
	o->before_onset = pl->before_onset;
	o->before_onset_deliveries = pl->before_onset_deliveries;
	o->n_before_onset_rows = pl->nbo_rows;
	o->before_onset_rows = bo;
	o->before_onset_rows_total = pl->bo_rows_total;
	o->onset_ms = pl->onset_ms;
	o->breaker = (char *)pl->breaker;
	o->since_ms = pl->since_ms;
	o->until_ms = pl->until_ms;
	o->global = pl->global != 0;
	o->next_org = (char *)pl->next_org;
	o->n_orgs = pl->norgs;
	o->orgs = pl->norgs > 0 ? pp : NULL;
	o->n_comp_ids = pl->ncomp;
	o->comp_ids = pl->ncomp > 0 ? pl->comp_ids : NULL;
	o->rollback_id = pl->rollback_id;
	o->executed = pl->executed != 0;
	o->next_cursor = pl->next_cursor;
	o->last_command_id = pl->last_command_id;
	o->looked_at = pl->looked_at;
	o->later_commands = pl->later_commands;
	return FBX_OK;
}

/* audit_out fills o from the audit reply of rep. */
static int
audit_out(struct arena *a, const struct fbx_console_rep *rep,
    pb_audlist *o)
{
	static const pb_audrec init = FUSEBOX__V1__AUDIT_RECORD__INIT;
	size_t i, n = rep->u.audit.n;
	pb_audrec *v = fbxp_arena_take(a, n * sizeof(*v));
	pb_audrec **p = fbxp_arena_take(a, n * sizeof(*p));

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_audit_rec *x = &rep->u.audit.r[i];
		if (!fbxp_cstr_ok(x->org, sizeof(x->org)) ||
		    !fbxp_cstr_ok(x->actor, sizeof(x->actor)) ||
		    !fbxp_cstr_ok(x->action, sizeof(x->action)) ||
		    !fbxp_cstr_ok(x->note, sizeof(x->note)) ||
		    !fbxp_cstr_ok(x->params, sizeof(x->params)) ||
		    !fbxp_cstr_ok(x->hash, sizeof(x->hash)) ||
		    !fbxp_cstr_ok(x->prev, sizeof(x->prev)))
			return FBX_EINVALID;
		v[i] = init;
		v[i].seq = x->seq;
		v[i].at_ms = x->at_ms;
		v[i].org = (char *)x->org;
		v[i].actor = (char *)x->actor;
		v[i].action = (char *)x->action;
		v[i].note = (char *)x->note;
		v[i].params = (char *)x->params;
		v[i].hash = (char *)x->hash;
		v[i].prev = (char *)x->prev;
		p[i] = &v[i];
	}
	o->records = n > 0 ? p : NULL;
	o->n_records = n;
	o->next_after = rep->u.audit.next_after;
	return FBX_OK;
}

/* orgs_out fills o from the organisation list of rep. */
static int
orgs_out(struct arena *a, const struct fbx_console_rep *rep, pb_orglist *o)
{
	static const pb_orginfo init = FUSEBOX__V1__ORG_INFO__INIT;
	size_t i, n = rep->u.orgs.n;
	pb_orginfo *v = fbxp_arena_take(a, n * sizeof(*v));
	pb_orginfo **p = fbxp_arena_take(a, n * sizeof(*p));

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		if (!fbxp_cstr_ok(rep->u.orgs.orgs[i], sizeof(fbx_id)))
			return FBX_EINVALID;
		v[i] = init;
		v[i].org = (char *)rep->u.orgs.orgs[i];
		v[i].devices = rep->u.orgs.devices[i];
		p[i] = &v[i];
	}
	o->orgs = n > 0 ? p : NULL;
	o->n_orgs = n;
	return FBX_OK;
}

/* certs_out fills o from the certificate list of rep. */
static int
certs_out(struct arena *a, const struct fbx_console_rep *rep, pb_certrep *o)
{
	static const pb_certinfo init = FUSEBOX__V1__CERT_INFO__INIT;
	size_t i, j, n = rep->u.cert.n;
	pb_certinfo *v = fbxp_arena_take(a, n * sizeof(*v));
	pb_certinfo **p = fbxp_arena_take(a, n * sizeof(*p));
	char **rs = fbxp_arena_take(a, n * FBX_CERT_REASONS_MAX * sizeof(*rs));

	if (v == NULL || p == NULL || rs == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_cert_info *x = &rep->u.cert.c[i];
		if (!fbxp_cstr_ok(x->name, sizeof(x->name)) ||
		    !fbxp_cstr_ok(x->subject, sizeof(x->subject)) ||
		    !fbxp_cstr_ok(x->issuer, sizeof(x->issuer)) ||
		    !fbxp_cstr_ok(x->added_by, sizeof(x->added_by)) ||
		    !fbxp_cstr_ok(x->sha256, sizeof(x->sha256)) ||
		    x->nreasons > FBX_CERT_REASONS_MAX)
			return FBX_EINVALID;
		v[i] = init;
		v[i].name = (char *)x->name;
		v[i].subject = (char *)x->subject;
		v[i].issuer = (char *)x->issuer;
		v[i].not_before_ms = x->not_before_ms;
		v[i].not_after_ms = x->not_after_ms;
		v[i].days_left = x->days_left;
		for (j = 0; j < x->nreasons; j++) {
			if (!fbxp_cstr_ok(x->reasons[j], sizeof(fbx_id)))
				return FBX_EINVALID;
			rs[i * FBX_CERT_REASONS_MAX + j] =
			    (char *)x->reasons[j];
		}
		v[i].reasons = &rs[i * FBX_CERT_REASONS_MAX];
		v[i].n_reasons = x->nreasons;
		v[i].trip_before_seconds = x->trip_before_s;
		v[i].state = (Fusebox__V1__CertState)x->state;
		v[i].alerts_sent = x->alerts_sent;
		v[i].tripped_ms = x->tripped_ms;
		v[i].added_by = (char *)x->added_by;
		v[i].added_ms = x->added_ms;
		v[i].sha256 = (char *)x->sha256;
		p[i] = &v[i];
	}
	o->certs = n > 0 ? p : NULL;
	o->n_certs = n;
	return FBX_OK;
}

/* rep_size checks a reply's counts and sizes the arena for its arrays. */
static int
rep_size(const struct fbx_console_rep *rep, size_t *sz, size_t *nh)
{
	size_t i;
	int rv;

	*sz = 0;
	*nh = 0;
	switch (rep->kind) {
	case FBX_CREQ_GET_COMMAND:
		if (rep->u.command.ndlv > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.command.ndlv > 0 && rep->u.command.dlv == NULL)
			return FBX_EINVALID;
		rv = outcomes_size(rep->u.command.dlv, rep->u.command.ndlv,
		    sz);
		if (rv != FBX_OK)
			return rv;
		for (i = 0; i < rep->u.command.ndlv; i++)
			*nh += rep->u.command.dlv[i].nhist;
		*sz += cmdinfo_size(&rep->u.command.info, 1);
		return FBX_OK;
	case FBX_CREQ_LIST_COMMANDS:
	case FBX_CREQ_LIST_HELD:
		if (rep->u.commands.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.commands.n > 0 && rep->u.commands.cmds == NULL)
			return FBX_EINVALID;
		*sz = cmdinfo_size(rep->u.commands.cmds, rep->u.commands.n);
		return FBX_OK;
	case FBX_CREQ_SUBMIT: {
		const struct fbx_dryrun *d = &rep->u.submit.dryrun;
		if (!rep->u.submit.dry_run)
			return FBX_OK;
		if (d->ngroups > FBX_PAGE_MAX || d->nwaves > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if ((d->ngroups > 0 && d->groups == NULL) ||
		    (d->nwaves > 0 && d->waves == NULL))
			return FBX_EINVALID;
		*sz = grpcounts_size(d->ngroups);
		return FBX_OK;
	}
	case FBX_CREQ_BREAKER:
		if (rep->u.breaker.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.breaker.n > 0 && rep->u.breaker.b == NULL)
			return FBX_EINVALID;
		*sz = fbxp_asz(rep->u.breaker.n * sizeof(pb_brkinfo)) +
		    fbxp_asz(rep->u.breaker.n * sizeof(pb_brkcfg)) +
		    fbxp_asz(rep->u.breaker.n * sizeof(pb_brkinfo *));
		return FBX_OK;
	case FBX_CREQ_LIMIT:
		if (rep->u.limit.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.limit.n > 0 && rep->u.limit.l == NULL)
			return FBX_EINVALID;
		*sz = fbxp_asz(rep->u.limit.n * sizeof(pb_liminfo)) +
		    fbxp_asz(rep->u.limit.n * sizeof(pb_liminfo *));
		return FBX_OK;
	case FBX_CREQ_RATE:
		if (rep->u.rate.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.rate.n > 0 && rep->u.rate.r == NULL)
			return FBX_EINVALID;
		*sz = fbxp_asz(rep->u.rate.n * sizeof(pb_rateinfo)) +
		    fbxp_asz(rep->u.rate.n * sizeof(pb_rateinfo *));
		return FBX_OK;
	case FBX_CREQ_LIST_DEVICES:
		if (rep->u.devices.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.devices.n > 0 && rep->u.devices.devs == NULL)
			return FBX_EINVALID;
		return fbxp_devices_size(
		    rep->u.devices.devs, rep->u.devices.n, sz);
	case FBX_CREQ_LIST_GROUPS:
		if (rep->u.groups.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.groups.n > 0 && rep->u.groups.groups == NULL)
			return FBX_EINVALID;
		*sz = grpcounts_size(rep->u.groups.n);
		return FBX_OK;
	case FBX_CREQ_ROLLBACK: {
		const struct fbx_rb_plan *pl = &rep->u.rollback;
		if (pl->nrows > FBX_PAGE_MAX || pl->ncomp > CMD_IDS_MAX ||
		    pl->nbo_rows > FBX_PAGE_MAX || pl->norgs > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if ((pl->nrows > 0 && pl->rows == NULL) ||
		    (pl->ncomp > 0 && pl->comp_ids == NULL) ||
		    (pl->nbo_rows > 0 && pl->bo_rows == NULL) ||
		    (pl->norgs > 0 && pl->orgs == NULL))
			return FBX_EINVALID;
		*sz = fbxp_asz(pl->nrows * sizeof(pb_rbrow)) +
		    fbxp_asz(pl->nrows * sizeof(pb_rbrow *)) +
		    fbxp_asz(pl->nbo_rows * sizeof(pb_rbrow)) +
		    fbxp_asz(pl->nbo_rows * sizeof(pb_rbrow *)) +
		    fbxp_asz(pl->norgs * sizeof(pb_rbpart)) +
		    fbxp_asz(pl->norgs * sizeof(pb_rbpart *)) +
		    fbxp_asz(pl->norgs * FBX_RB_COUNT * sizeof(pb_actcount)) +
		    fbxp_asz(pl->norgs * FBX_RB_COUNT * sizeof(pb_actcount *));
		return FBX_OK;
	}
	case FBX_CREQ_EXPORT:
		if (rep->u.export_.len > JSONL_MAX)
			return FBX_ETOOBIG;
		if (rep->u.export_.len > 0 && rep->u.export_.jsonl == NULL)
			return FBX_EINVALID;
		return FBX_OK;
	case FBX_CREQ_AUDIT_LIST:
		if (rep->u.audit.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.audit.n > 0 && rep->u.audit.r == NULL)
			return FBX_EINVALID;
		*sz = fbxp_asz(rep->u.audit.n * sizeof(pb_audrec)) +
		    fbxp_asz(rep->u.audit.n * sizeof(pb_audrec *));
		return FBX_OK;
	case FBX_CREQ_LIST_ORGS:
		if (rep->u.orgs.n > ORGS_MAX)
			return FBX_ETOOBIG;
		if (rep->u.orgs.n > 0 &&
		    (rep->u.orgs.orgs == NULL || rep->u.orgs.devices == NULL))
			return FBX_EINVALID;
		*sz = fbxp_asz(rep->u.orgs.n * sizeof(pb_orginfo)) +
		    fbxp_asz(rep->u.orgs.n * sizeof(pb_orginfo *));
		return FBX_OK;
	case FBX_CREQ_CERT:
		if (rep->u.cert.n > FBX_CERTS_MAX)
			return FBX_ETOOBIG;
		if (rep->u.cert.n > 0 && rep->u.cert.c == NULL)
			return FBX_EINVALID;
		*sz = fbxp_asz(rep->u.cert.n * sizeof(pb_certinfo))
		    + fbxp_asz(rep->u.cert.n * sizeof(pb_certinfo *))
		    + fbxp_asz(
		        rep->u.cert.n * FBX_CERT_REASONS_MAX * sizeof(char *));
		return FBX_OK;
	case FBX_CREQ_PRINCIPAL:
		if (rep->u.principal.len > FBX_PRINCIPAL_JSONL_MAX)
			return FBX_ETOOBIG;
		if (rep->u.principal.len > 0 &&
		    (rep->u.principal.jsonl == NULL ||
		        strlen(rep->u.principal.jsonl) != rep->u.principal.len))
			return FBX_EINVALID;
		return FBX_OK;
	case FBX_CREQ_FLEET:
		if (rep->u.fleet.nos > FBX_FLEET_OS_MAX ||
		    rep->u.fleet.nrules > FBX_FLEET_RULES_MAX ||
		    rep->u.fleet.nout >= FBX_CMD_TYPE_COUNT)
			return FBX_ETOOBIG;
		return FBX_OK;
	default:
		return FBX_OK;
	}
}

/* submit_fill - a submit reply's own fields (both encoders below).
 * @return FBX_OK, or FBX_EINVALID for an unterminated held_by */
static int
submit_fill(const struct fbx_console_rep *rep, pb_submitres *submit)
{
	if (!fbxp_cstr_ok(
	        rep->u.submit.held_by, sizeof(rep->u.submit.held_by)))
		return FBX_EINVALID;
	submit->command_id = rep->u.submit.command_id;
	submit->duplicate = rep->u.submit.duplicate != 0;
	submit->device_count = rep->u.submit.device_count;
	submit->state = (Fusebox__V1__CommandState)rep->u.submit.state;
	submit->held_by = (char *)rep->u.submit.held_by;
	return FBX_OK;
}

/* submit_rep_out - the reply to a submit that is not a dry run: the
 * reply of every accepted command, built with only the messages it has
 * (rep_out below initialises every reply's, a tenth of a submit's
 * encoding) */
static int
submit_rep_out(const struct fbx_console_rep *rep, uint8_t **buf, size_t *len)
{
	pb_crep m = FUSEBOX__V1__CONSOLE_REPLY__INIT;
	pb_submitres submit = FUSEBOX__V1__SUBMIT_RESULT__INIT;

	if (submit_fill(rep, &submit) != FBX_OK)
		return FBX_EINVALID;
	m.version = FBX_PROTOCOL_VERSION;
	m.request_id = rep->request_id;
	m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_SUBMIT;
	m.submit = &submit;
	return fbxp_pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);
}

static int rep_out(
    const struct fbx_console_rep *rep, uint8_t **buf, size_t *len);

int
fbx_console_rep_encode(
    const struct fbx_console_rep *rep, uint8_t **buf, size_t *len)
{
	if (rep == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	if (rep->err == FBX_OK && rep->kind == FBX_CREQ_SUBMIT &&
	    !rep->u.submit.dry_run)
		return submit_rep_out(rep, buf, len);
	return rep_out(rep, buf, len);
}

static int
rep_out(const struct fbx_console_rep *rep, uint8_t **buf, size_t *len)
{
	pb_crep m = FUSEBOX__V1__CONSOLE_REPLY__INIT;
	pb_error err = FUSEBOX__V1__ERROR__INIT;
	pb_submitres submit = FUSEBOX__V1__SUBMIT_RESULT__INIT;
	pb_cmdpage page = FUSEBOX__V1__COMMAND_PAGE__INIT;
	pb_cmdlist list = FUSEBOX__V1__COMMAND_LIST__INIT;
	pb_enrollres enroll = FUSEBOX__V1__ENROLL_RESULT__INIT;
	pb_removeres remove = FUSEBOX__V1__REMOVE_RESULT__INIT;
	pb_devlist devs = FUSEBOX__V1__DEVICE_LIST__INIT;
	pb_grplist groups = FUSEBOX__V1__GROUP_LIST__INIT;
	pb_stats pong = FUSEBOX__V1__ENGINE_STATS__INIT;
	pb_dryrun dry = FUSEBOX__V1__DRY_RUN__INIT;
	pb_platcount plat[FBX_PLATFORM_COUNT];
	pb_platcount *platp[FBX_PLATFORM_COUNT];
	pb_brkrep brk = FUSEBOX__V1__BREAKER_REPLY__INIT;
	pb_limrep lim = FUSEBOX__V1__LIMIT_REPLY__INIT;
	pb_raterep rate = FUSEBOX__V1__RATE_REPLY__INIT;
	pb_apprrep appr = FUSEBOX__V1__APPROVE_REPLY__INIT;
	pb_rorep ro = FUSEBOX__V1__ROLLOUT_REPLY__INIT;
	pb_plan plan;
	char *plan_groups[FBX_ROLLOUT_GROUPS_MAX];
	pb_rostatus rost;
	pb_rbplan rbp = FUSEBOX__V1__ROLLBACK_PLAN__INIT;
	pb_actcount act[FBX_RB_COUNT];
	pb_actcount *actp[FBX_RB_COUNT];
	pb_rpres rpres = FUSEBOX__V1__REPLAY_RESULT__INIT;
	pb_exppage expp = FUSEBOX__V1__EXPORT_PAGE__INIT;
	pb_audlist audl = FUSEBOX__V1__AUDIT_LIST__INIT;
	pb_audvres audv = FUSEBOX__V1__AUDIT_VERIFY_RESULT__INIT;
	pb_orglist orgl = FUSEBOX__V1__ORG_LIST__INIT;
	pb_certrep certr = FUSEBOX__V1__CERT_REPLY__INIT;
	pb_prirep prir = FUSEBOX__V1__PRINCIPAL_REPLY__INIT;
	pb_fleetrep fleetr = FUSEBOX__V1__FLEET_REPORT__INIT;
	pb_vercount vc[FBX_FLEET_OS_MAX], *vcp[FBX_FLEET_OS_MAX];
	pb_fleetrule fr[FBX_FLEET_RULES_MAX], *frp[FBX_FLEET_RULES_MAX];
	pb_typeout to[FBX_CMD_TYPE_COUNT], *top[FBX_CMD_TYPE_COUNT];
	pb_rover rover = FUSEBOX__V1__ROLLOUT_VERSION__INIT;
	uint32_t hours[FBX_FLEET_BUCKETS];
	struct arena a = { NULL, 0, 0 };
	pb_cmdinfo **info = NULL;
	size_t i, sz, nh;
	int rv;

	if (rep == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	m.version = FBX_PROTOCOL_VERSION;
	m.request_id = rep->request_id;
	if (rep->err != FBX_OK) {
		if (rep->err < 0 ||
		    !fbxp_cstr_ok(rep->errmsg, sizeof(rep->errmsg)) ||
		    !fbxp_cstr_ok(rep->approval_token,
		        sizeof(rep->approval_token)) ||
		    !fbxp_cstr_ok(rep->owner_node, sizeof(rep->owner_node)) ||
		    !fbxp_cstr_ok(rep->owner_endpoint,
		        sizeof(rep->owner_endpoint)))
			return FBX_EINVALID;
		err.code = (uint32_t)rep->err;
		err.name = (char *)fbx_errname(rep->err);
		err.message = (char *)rep->errmsg;
		err.approval_token = (char *)rep->approval_token;
		err.limit_value = rep->limit_value;
		err.limit_count = rep->limit_count;
		err.owner_node = (char *)rep->owner_node;
		err.owner_endpoint = (char *)rep->owner_endpoint;
		m.error = &err;
		return fbxp_pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);
	}
	rv = rep_size(rep, &sz, &nh);
	if (rv != FBX_OK)
		return rv;
	rv = fbxp_arena_init(&a, sz);
	if (rv != FBX_OK)
		return rv;

	switch (rep->kind) {
	case FBX_CREQ_SUBMIT:
		rv = submit_fill(rep, &submit);
		if (rv != FBX_OK)
			goto out;
		if (rep->u.submit.dry_run) {
			rv = dryrun_out(&a, &rep->u.submit.dryrun, &dry, plat,
			    platp);
			if (rv != FBX_OK)
				goto out;
			submit.dry_run = 1;
			submit.dry_run_report = &dry;
		}
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_SUBMIT;
		m.submit = &submit;
		break;
	case FBX_CREQ_GET_COMMAND:
		rv = cmdinfo_out(&a, &rep->u.command.info, 1, &info);
		if (rv != FBX_OK)
			goto out;
		page.info = info[0];
		rv = outcomes_out(&a, rep->u.command.dlv, rep->u.command.ndlv,
		    nh, &page.deliveries);
		if (rv != FBX_OK)
			goto out;
		page.n_deliveries = rep->u.command.ndlv;
		page.next_after = rep->u.command.next_after;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMAND;
		m.command = &page;
		break;
	case FBX_CREQ_LIST_COMMANDS:
		rv = cmdinfo_out(&a, rep->u.commands.cmds, rep->u.commands.n,
		    &list.commands);
		if (rv != FBX_OK)
			goto out;
		list.n_commands = rep->u.commands.n;
		list.next_after = rep->u.commands.next_after;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMANDS;
		m.commands = &list;
		break;
	case FBX_CREQ_LIST_HELD:
		rv = cmdinfo_out(&a, rep->u.commands.cmds, rep->u.commands.n,
		    &list.commands);
		if (rv != FBX_OK)
			goto out;
		list.n_commands = rep->u.commands.n;
		list.next_after = rep->u.commands.next_after;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIST_HELD;
		m.list_held = &list;
		break;
	case FBX_CREQ_BREAKER:
		rv = breakers_out(&a, rep, &brk);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_BREAKER;
		m.breaker = &brk;
		break;
	case FBX_CREQ_LIMIT: {
		static const pb_liminfo linit = FUSEBOX__V1__LIMIT_INFO__INIT;
		size_t n = rep->u.limit.n;
		pb_liminfo *l = fbxp_arena_take(&a, n * sizeof(*l));
		lim.limits = fbxp_arena_take(&a, n * sizeof(*lim.limits));
		if (l == NULL || lim.limits == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fbx_limit_info *x = &rep->u.limit.l[i];
			if (!fbxp_cstr_ok(x->org, sizeof(x->org))) {
				rv = FBX_EINVALID;
				goto out;
			}
			l[i] = linit;
			l[i].org = (char *)x->org;
			l[i].type = (Fusebox__V1__CommandType)x->type;
			l[i].max_count = x->max_count;
			l[i].max_share_ppm = x->max_share_ppm;
			l[i].window_seconds = x->window_s;
			l[i].used = x->used;
			lim.limits[i] = &l[i];
		}
		lim.n_limits = n;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIMIT;
		m.limit = &lim;
		break;
	}
	case FBX_CREQ_RATE: {
		static const pb_rateinfo rinit = FUSEBOX__V1__RATE_INFO__INIT;
		size_t n = rep->u.rate.n;
		pb_rateinfo *r = fbxp_arena_take(&a, n * sizeof(*r));
		rate.rates = fbxp_arena_take(&a, n * sizeof(*rate.rates));
		if (r == NULL || rate.rates == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fbx_rate_info *x = &rep->u.rate.r[i];
			if (!fbxp_cstr_ok(x->org, sizeof(x->org))) {
				rv = FBX_EINVALID;
				goto out;
			}
			r[i] = rinit;
			r[i].org = (char *)x->org;
			r[i].rate_per_second = x->rate_per_s;
			r[i].burst = x->burst;
			r[i].max_inflight = x->max_inflight;
			r[i].inflight = x->inflight;
			rate.rates[i] = &r[i];
		}
		rate.n_rates = n;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_RATE;
		m.rate = &rate;
		break;
	}
	case FBX_CREQ_APPROVE:
		if (!fbxp_cstr_ok(rep->u.approve.token, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(rep->u.approve.approver, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(rep->u.approve.submitter, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		appr.token = (char *)rep->u.approve.token;
		appr.approver = (char *)rep->u.approve.approver;
		appr.submitter = (char *)rep->u.approve.submitter;
		appr.expires_ms = rep->u.approve.expires_ms;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_APPROVE;
		m.approve = &appr;
		break;
	case FBX_CREQ_ROLLOUT:
		/* Plan and status always go out: a rollout reply is about
		 * them, and an absent one decodes as zero anyway. */
		rv = fbxp_plan_out(&rep->u.rollout.plan, &plan, plan_groups);
		if (rv == FBX_OK)
			rv = fbxp_status_out(&rep->u.rollout.st, &rost);
		if (rv != FBX_OK)
			goto out;
		ro.command_id = rep->u.rollout.command_id;
		ro.plan = &plan;
		ro.status = &rost;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLOUT;
		m.rollout = &ro;
		break;
	case FBX_CREQ_ENROLL:
		enroll.created = rep->u.enroll.created;
		enroll.updated = rep->u.enroll.updated;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ENROLL;
		m.enroll = &enroll;
		break;
	case FBX_CREQ_REMOVE:
		remove.removed = rep->u.remove.removed;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_REMOVE;
		m.remove = &remove;
		break;
	case FBX_CREQ_LIST_DEVICES:
		if (!fbxp_cstr_ok(rep->u.devices.next_after, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		rv = fbxp_devices_out(
		    &a, rep->u.devices.devs, rep->u.devices.n, &devs.devices);
		if (rv != FBX_OK)
			goto out;
		devs.n_devices = rep->u.devices.n;
		devs.next_after = (char *)rep->u.devices.next_after;
		devs.total = rep->u.devices.total;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_DEVICES;
		m.devices = &devs;
		break;
	case FBX_CREQ_LIST_GROUPS:
		rv = grpcounts_out(&a, rep->u.groups.groups, rep->u.groups.n,
		    &groups.groups);
		if (rv != FBX_OK)
			goto out;
		groups.n_groups = rep->u.groups.n;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_GROUPS;
		m.groups = &groups;
		break;
	case FBX_CREQ_PING: {
		const struct fbx_engine_stats *s = &rep->u.pong;
		if (!fbxp_cstr_ok(s->version, sizeof(s->version))) {
			rv = FBX_EINVALID;
			goto out;
		}
		pong.version = (char *)s->version;
		pong.uptime_ms = s->uptime_ms;
		pong.gateways = s->gateways;
		pong.commands_active = s->commands_active;
		pong.deliveries_queued = s->deliveries_queued;
		pong.deliveries_inflight = s->deliveries_inflight;
		pong.deliveries_pending = s->deliveries_pending;
		pong.commits = s->commits;
		pong.store_bytes = s->store_bytes;
		pong.turn_max_us = s->turn_max_us;
		pong.turns_failed = s->turns_failed;
		pong.degraded = s->degraded != 0;
		pong.readers_used = s->readers_used;
		pong.auth_refused = s->auth_refused;
		pong.results_forged = s->results_forged;
		pong.handshakes_refused = s->handshakes_refused;
		pong.commands_held = s->commands_held;
		pong.commands_settling = s->commands_settling;
		pong.breakers_open = s->breakers_open;
		pong.node = (char *)s->node;
		pong.leases = s->leases;
		pong.duties = s->duties != 0;
		pong.admin_org = (char *)s->admin_org;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_PONG;
		m.pong = &pong;
		break;
	}
	case FBX_CREQ_ROLLBACK:
		rv = rbplan_out(&a, &rep->u.rollback, &rbp, act, actp);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLBACK;
		m.rollback = &rbp;
		break;
	case FBX_CREQ_REPLAY:
		rpres.matched = rep->u.replay.matched;
		rpres.resent = rep->u.replay.resent;
		rpres.skipped_terminal = rep->u.replay.skipped_terminal;
		rpres.next_cursor = rep->u.replay.next_cursor;
		rpres.last_command_id = rep->u.replay.last_command_id;
		rpres.commands = rep->u.replay.commands;
		rpres.looked_at = rep->u.replay.looked_at;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_REPLAY;
		m.replay = &rpres;
		break;
	case FBX_CREQ_EXPORT:
		expp.jsonl.len = rep->u.export_.len;
		expp.jsonl.data = (uint8_t *)rep->u.export_.jsonl;
		expp.next_cursor = rep->u.export_.next_cursor;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_EXPORT;
		m.export = &expp;
		break;
	case FBX_CREQ_AUDIT_LIST:
		rv = audit_out(&a, rep, &audl);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_AUDIT;
		m.audit = &audl;
		break;
	case FBX_CREQ_AUDIT_VERIFY:
		if (!fbxp_cstr_ok(
		        rep->u.verify.why, sizeof(rep->u.verify.why))) {
			rv = FBX_EINVALID;
			goto out;
		}
		if (!fbxp_cstr_ok(rep->u.verify.verified_hash,
		        sizeof(rep->u.verify.verified_hash))) {
			rv = FBX_EINVALID;
			goto out;
		}
		audv.records = rep->u.verify.records;
		audv.broken_at = rep->u.verify.broken_at;
		audv.why = (char *)rep->u.verify.why;
		audv.verified_seq = rep->u.verify.verified_seq;
		audv.verified_hash = (char *)rep->u.verify.verified_hash;
		audv.complete = rep->u.verify.complete != 0;
		audv.head_seq = rep->u.verify.head_seq;
		audv.anchor_seq = rep->u.verify.anchor_seq;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_VERIFY;
		m.verify = &audv;
		break;
	case FBX_CREQ_LIST_ORGS:
		rv = orgs_out(&a, rep, &orgl);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ORGS;
		m.orgs = &orgl;
		break;
	case FBX_CREQ_CERT:
		rv = certs_out(&a, rep, &certr);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_CERT;
		m.cert = &certr;
		break;
	case FBX_CREQ_PRINCIPAL:
		prir.jsonl = rep->u.principal.len > 0 ? rep->u.principal.jsonl
		                                      : (char *)"";
		prir.count = rep->u.principal.count;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_PRINCIPAL;
		m.principal = &prir;
		break;
	case FBX_CREQ_FLEET: {
		const struct fbx_fleet_report *f = &rep->u.fleet;
		static const pb_vercount vinit = FUSEBOX__V1__VERSION_COUNT__INIT;
		static const pb_fleetrule rinit = FUSEBOX__V1__FLEET_RULE__INIT;
		fleetr.as_of_ms = f->as_of_ms;
		fleetr.devices = f->devices;
		memcpy(hours, f->offline_hours, sizeof(hours));
		fleetr.n_offline_hours = FBX_FLEET_BUCKETS;
		fleetr.offline_hours = hours;
		for (i = 0; i < f->nos; i++) {
			if (!fbxp_cstr_ok(
			        f->os[i].version, sizeof(f->os[i].version))) {
				rv = FBX_EINVALID;
				goto out;
			}
			vc[i] = vinit;
			vc[i].version = (char *)f->os[i].version;
			vc[i].count = f->os[i].count;
			vcp[i] = &vc[i];
		}
		fleetr.n_os_versions = f->nos;
		fleetr.os_versions = f->nos > 0 ? vcp : NULL;
		fleetr.os_other = f->os_other;
		for (i = 0; i < f->nrules; i++) {
			fr[i] = rinit;
			fr[i].stale_minutes = f->rules[i].stale_minutes;
			fr[i].repeat_minutes = f->rules[i].repeat_minutes;
			fr[i].stale = f->rules[i].stale;
			fr[i].last_alert_ms = f->rules[i].last_alert_ms;
			frp[i] = &fr[i];
		}
		fleetr.n_rules = f->nrules;
		fleetr.rules = f->nrules > 0 ? frp : NULL;
		for (i = 0; i < f->nout; i++) {
			static const pb_typeout tinit =
			    FUSEBOX__V1__TYPE_OUTCOMES__INIT;
			to[i] = tinit;
			to[i].type = (Fusebox__V1__CommandType)f->out[i].type;
			to[i].silent = f->out[i].silent != 0;
			to[i].succeeded_hour = f->out[i].ok_hour;
			to[i].failed_hour = f->out[i].failed_hour;
			to[i].expired_hour = f->out[i].expired_hour;
			to[i].succeeded_day = f->out[i].ok_day;
			to[i].failed_day = f->out[i].failed_day;
			to[i].expired_day = f->out[i].expired_day;
			top[i] = &to[i];
		}
		fleetr.n_outcomes = f->nout;
		fleetr.outcomes = f->nout > 0 ? top : NULL;
		if (!fbxp_cstr_ok(f->group, sizeof(f->group)) ||
		    !fbxp_cstr_ok(f->next_after, sizeof(f->next_after))) {
			rv = FBX_EINVALID;
			goto out;
		}
		fleetr.group = (char *)f->group;
		fleetr.next_after = (char *)f->next_after;
		if (f->version.set) {
			if (!fbxp_cstr_ok(f->version.target,
			        sizeof(f->version.target))) {
				rv = FBX_EINVALID;
				goto out;
			}
			rover.command_id = f->version.command_id;
			rover.target = (char *)f->version.target;
			rover.devices = f->version.devices;
			rover.at_target = f->version.at_target;
			rover.other = f->version.other;
			rover.unknown = f->version.unknown;
			rover.next_after = f->version.next_after;
			fleetr.version = &rover;
		}
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_FLEET;
		m.fleet = &fleetr;
		break;
	}
	default:
		rv = FBX_EINVALID;
		goto out;
	}
	rv = fbxp_pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);

out:
	free(a.p);
	return rv;
}
