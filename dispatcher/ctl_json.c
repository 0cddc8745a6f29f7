/*
 * ctl_json.c: fuseboxctl's --json output (issue 12 item 6). The objects
 * are built with jansson and written by ctl_json_print, so escaping and
 * validity are the library's; the hand-made printf writer they replace
 * passed text that was not UTF-8 through as it was (invalid JSON).
 * Integers that the engine keeps as uint64_t go out as JSON integers
 * (json_int_t, 63 bits): ids, counters and times stay far below.
 */
#include <stdio.h>
#include <string.h>

#include "ctl_json.h"

const char *const ctl_rb_action_key[FBX_RB_COUNT] = { "none", "cancel",
	"compensate", "irreversible", "changed_since", "nothing",
	"compensated_before", "in_flight" };

const char *const ctl_fleet_bucket_names[FBX_FLEET_BUCKETS] = { "< 2",
	"2-4", "4-8", "8-24", "24-48", "48-72", "72-168", ">= 168", "never" };

int
ctl_json_print(json_t *o)
{
	int rc = -1;

	if (o != NULL && json_dumpf(o, stdout, JSON_COMPACT) == 0 &&
	    putchar('\n') != EOF)
		rc = 0;
	json_decref(o);
	return rc;
}

json_t *
ctl_json_counts(const uint32_t *counts)
{
	json_t *o = json_object();

	for (int s = 1; o != NULL && s < FBX_D_COUNT; s++)
		CJ_INT(o, fbx_dstate_name(s), counts[s]);
	return o;
}

json_t *
ctl_json_command(const struct fbx_command *c)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	CJ_INT(o, "id", c->id);
	CJ_STR(o, "org", c->org);
	CJ_STR(o, "actor", c->actor);
	CJ_STR(o, "reason", c->reason);
	CJ_STR(o, "idempotency_key", c->idem_key);
	CJ_STR(o, "type", fbx_cmd_type_name(c->type));
	CJ_STR(o, "origin", fbx_origin_name(c->origin));
	CJ_STR(o, "target", fbx_target_kind_name(c->target_kind));
	CJ_STR(o, "group", c->group);
	CJ_STR(o, "platform", fbx_platform_name(c->platform));
	CJ_STR(o, "state", fbx_cstate_name(c->state));
	CJ_INT(o, "ttl_s", c->ttl_s);
	CJ_INT(o, "created_ms", c->created_ms);
	CJ_INT(o, "expires_ms", c->expires_ms);
	CJ_INT(o, "settle_until_ms", c->settle_until_ms);
	CJ_INT(o, "deliveries", c->ndeliveries);
	CJ_SET(o, "counts", ctl_json_counts(c->counts));
	CJ_STR(o, "priority", fbx_priority_name(c->priority));
	CJ_STR(o, "held_by", c->held_by);
	CJ_STR(o, "approved_by", c->approved_by);
	CJ_STR(o, "resolved_by", c->resolved_by);
	CJ_STR(o, "note", c->note);
	if (c->rollout.enabled) {
		CJ_SET(o, "rollout", ctl_json_plan(&c->rollout));
		CJ_SET(o, "rollout_status", ctl_json_ro_status(&c->ro));
	}
	return o;
}

json_t *
ctl_json_delivery(const struct fbx_delivery *d)
{
	json_t *o = json_object(), *h = json_array();

	if (o == NULL || h == NULL) {
		json_decref(o);
		json_decref(h);
		return NULL;
	}
	CJ_INT(o, "id", d->id);
	CJ_STR(o, "device", d->device);
	CJ_STR(o, "state", fbx_dstate_name(d->state));
	CJ_INT(o, "code", d->code);
	CJ_INT(o, "attempts", d->attempts);
	CJ_INT(o, "updated_ms", d->updated_ms);
	for (int i = 0; i < d->nhist && i < FBX_HIST_MAX; i++) {
		json_t *e = json_object();
		if (e == NULL)
			break;
		CJ_STR(e, "state", fbx_dstate_name(d->hist[i].state));
		CJ_INT(e, "code", d->hist[i].code);
		CJ_INT(e, "at_ms", d->hist[i].at_ms);
		json_array_append_new(h, e);
	}
	CJ_SET(o, "history", h);
	return o;
}

json_t *
ctl_json_device(const struct fbx_device *d, int with_pending)
{
	json_t *o = json_object(), *g = json_array();

	if (o == NULL || g == NULL) {
		json_decref(o);
		json_decref(g);
		return NULL;
	}
	CJ_STR(o, "id", d->id);
	CJ_STR(o, "platform", fbx_platform_name(d->platform));
	CJ_STR(o, "os_version", d->os_version);
	CJ_BOOL(o, "online", d->online);
	CJ_INT(o, "attestation", d->attestation);
	for (int i = 0; i < d->ngroups && i < FBX_GROUPS_MAX; i++)
		json_array_append_new(g, fbx_json_str(d->groups[i]));
	CJ_SET(o, "groups", g);
	CJ_INT(o, "enrolled_ms", d->enrolled_ms);
	CJ_INT(o, "last_checkin_ms", d->last_checkin_ms);
	if (with_pending)
		CJ_INT(o, "pending", d->pending);
	return o;
}

json_t *
ctl_json_plan(const struct fbx_rollout_plan *p)
{
	json_t *o = json_object(), *g = json_array();

	if (o == NULL || g == NULL) {
		json_decref(o);
		json_decref(g);
		return NULL;
	}
	CJ_BOOL(o, "enabled", p->enabled);
	CJ_INT(o, "first_count", p->first_count);
	CJ_INT(o, "first_share_ppm", p->first_share_ppm);
	CJ_INT(o, "growth_x100", p->growth_x100);
	CJ_INT(o, "max_wave", p->max_wave);
	CJ_INT(o, "bake_s", p->bake_s);
	CJ_INT(o, "success_ppm", p->success_ppm);
	CJ_INT(o, "failure_ppm", p->failure_ppm);
	CJ_INT(o, "min_results", p->min_results);
	CJ_BOOL(o, "approve_stages", p->approve_groups);
	for (int i = 0; i < p->ngroups && i < FBX_ROLLOUT_GROUPS_MAX; i++)
		json_array_append_new(g, fbx_json_str(p->groups[i]));
	CJ_SET(o, "stages", g);
	return o;
}

json_t *
ctl_json_ro_status(const struct fbx_rollout_status *r)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	CJ_STR(o, "state", fbx_rollout_state_name(r->state));
	CJ_INT(o, "stage", r->stage);
	CJ_INT(o, "wave", r->wave);
	CJ_INT(o, "released", r->released);
	CJ_INT(o, "wave_start", r->wave_start);
	CJ_INT(o, "wave_size", r->wave_size);
	CJ_INT(o, "wave_started_ms", r->wave_started_ms);
	CJ_INT(o, "bake_until_ms", r->bake_until_ms);
	CJ_STR(o, "note", r->note);
	return o;
}

json_t *
ctl_json_dry_run(const struct fbx_dryrun *d)
{
	json_t *o = json_object(), *pp = json_object(), *pg = json_object();
	json_t *w = json_array(), *st = json_array();

	if (o == NULL || pp == NULL || pg == NULL || w == NULL || st == NULL) {
		json_decref(o);
		json_decref(pp);
		json_decref(pg);
		json_decref(w);
		json_decref(st);
		return NULL;
	}
	CJ_BOOL(o, "dry_run", 1);
	CJ_INT(o, "devices", d->devices);
	for (int p = 0; p < FBX_PLATFORM_COUNT; p++)
		if (d->per_platform[p] != 0)
			CJ_INT(pp, fbx_platform_name(p), d->per_platform[p]);
	CJ_SET(o, "per_platform", pp);
	/* group names are keys: jansson refuses a key that is not UTF-8,
	 * so such a group is under its repaired name */
	for (size_t i = 0; i < d->ngroups; i++) {
		json_t *k = fbx_json_str(d->groups[i].name);
		if (k != NULL)
			CJ_INT(pg, json_string_value(k), d->groups[i].count);
		json_decref(k);
	}
	CJ_SET(o, "per_group", pg);
	for (size_t i = 0; i < d->nwaves; i++)
		json_array_append_new(w, json_integer(d->waves[i]));
	CJ_SET(o, "waves", w);
	for (size_t i = 0; i < d->nstages && i <= FBX_ROLLOUT_GROUPS_MAX;
	    i++)
		json_array_append_new(st,
		    json_pack("{s:I,s:I}", "devices",
			(json_int_t)d->stage_devices[i], "waves",
			(json_int_t)d->stage_waves[i]));
	CJ_SET(o, "stages", st);
	CJ_BOOL(o, "admitted", d->stop_err == FBX_OK);
	CJ_STR(o, "stop", d->stop_err == FBX_OK ? "" : fbx_errname(d->stop_err));
	CJ_STR(o, "verdict", d->verdict);
	return o;
}

json_t *
ctl_json_breaker(const struct fbx_breaker_info *b)
{
	json_t *o = json_object(), *c = json_object();

	if (o == NULL || c == NULL) {
		json_decref(o);
		json_decref(c);
		return NULL;
	}
	CJ_STR(o, "org", b->org);
	CJ_STR(o, "reason", b->reason);
	CJ_STR(o, "state", b->state == FBX_BS_OPEN ? "open" : "closed");
	CJ_BOOL(o, "manual", b->manual);
	CJ_INT(o, "window_count", b->window_count);
	CJ_INT(o, "allowance", b->allowance);
	CJ_INT(o, "fleet", b->fleet);
	CJ_INT(o, "baseline", b->baseline);
	CJ_INT(o, "held", b->held);
	CJ_INT(o, "would_hold", b->would_hold);
	CJ_INT(o, "trips", b->trips);
	CJ_INT(o, "tripped_ms", b->tripped_ms);
	CJ_INT(o, "onset_ms", b->onset_ms);
	CJ_INT(o, "settling", b->settling);
	CJ_STR(o, "tripped_by", b->tripped_by);
	CJ_STR(o, "note", b->note);
	CJ_INT(c, "window_s", b->cfg.window_s);
	CJ_INT(c, "min_count", b->cfg.min_count);
	CJ_INT(c, "share_ppm", b->cfg.share_ppm);
	CJ_INT(c, "baseline_mult", b->cfg.baseline_mult);
	CJ_INT(c, "global_orgs", b->cfg.global_orgs);
	CJ_INT(c, "global_share_ppm", b->cfg.global_share_ppm);
	CJ_INT(c, "min_samples", b->cfg.min_samples);
	CJ_INT(c, "settle_s", b->cfg.settle_s);
	CJ_BOOL(c, "shadow", b->cfg.shadow);
	CJ_SET(o, "config", c);
	return o;
}

json_t *
ctl_json_cert(const struct fbx_cert_info *c)
{
	json_t *o = json_object(), *r = json_array();

	if (o == NULL || r == NULL) {
		json_decref(o);
		json_decref(r);
		return NULL;
	}
	CJ_STR(o, "name", c->name);
	CJ_STR(o, "subject", c->subject);
	CJ_STR(o, "issuer", c->issuer);
	CJ_INT(o, "not_before_ms", c->not_before_ms);
	CJ_INT(o, "not_after_ms", c->not_after_ms);
	CJ_INT(o, "days_left", c->days_left);
	for (uint32_t i = 0; i < c->nreasons && i < FBX_CERT_REASONS_MAX; i++)
		json_array_append_new(r, fbx_json_str(c->reasons[i]));
	CJ_SET(o, "reasons", r);
	CJ_INT(o, "trip_before_s", c->trip_before_s);
	CJ_STR(o, "state", fbx_cert_state_name(c->state));
	CJ_INT(o, "alerts_sent", c->alerts_sent);
	CJ_INT(o, "tripped_ms", c->tripped_ms);
	CJ_STR(o, "added_by", c->added_by);
	CJ_INT(o, "added_ms", c->added_ms);
	CJ_STR(o, "sha256", c->sha256);
	return o;
}

int
ctl_cert_bound(const struct fbx_cert_info *c, const char *reason)
{
	if (reason == NULL || reason[0] == '\0')
		return 1;
	for (uint32_t i = 0; i < c->nreasons && i < FBX_CERT_REASONS_MAX; i++)
		if (strcmp(c->reasons[i], reason) == 0)
			return 1;
	return 0;
}

json_t *
ctl_json_certs(const struct fbx_console_rep *rep, const char *reason)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && rep != NULL && i < rep->u.cert.n; i++)
		if (ctl_cert_bound(&rep->u.cert.c[i], reason))
			json_array_append_new(a,
			    ctl_json_cert(&rep->u.cert.c[i]));
	return a;
}

json_t *
ctl_json_fleet(const struct fbx_fleet_report *f)
{
	json_t *o = json_object(), *h = json_object(), *os = json_array();
	json_t *out = json_array(), *ru = json_array();

	if (o == NULL || h == NULL || os == NULL || out == NULL || ru == NULL) {
		json_decref(o);
		json_decref(h);
		json_decref(os);
		json_decref(out);
		json_decref(ru);
		return NULL;
	}
	CJ_INT(o, "as_of_ms", f->as_of_ms);
	CJ_INT(o, "devices", f->devices);
	for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
		CJ_INT(h, ctl_fleet_bucket_names[i], f->offline_hours[i]);
	CJ_SET(o, "offline_hours", h);
	for (size_t i = 0; i < f->nos; i++) {
		json_t *e = json_object();
		if (e == NULL)
			break;
		CJ_STR(e, "version", f->os[i].version);
		CJ_INT(e, "count", f->os[i].count);
		json_array_append_new(os, e);
	}
	CJ_SET(o, "os_versions", os);
	CJ_INT(o, "os_other", f->os_other);
	for (size_t i = 0; i < f->nout; i++) {
		const struct fbx_type_outcomes *t = &f->out[i];
		json_t *e = json_object();
		if (e == NULL)
			break;
		CJ_STR(e, "type", fbx_cmd_type_name(t->type));
		CJ_INT(e, "succeeded_hour", t->ok_hour);
		CJ_INT(e, "failed_hour", t->failed_hour);
		CJ_INT(e, "expired_hour", t->expired_hour);
		CJ_INT(e, "succeeded_day", t->ok_day);
		CJ_INT(e, "failed_day", t->failed_day);
		CJ_INT(e, "expired_day", t->expired_day);
		CJ_BOOL(e, "silent", t->silent);
		json_array_append_new(out, e);
	}
	CJ_SET(o, "outcomes", out);
	for (size_t i = 0; i < f->nrules; i++)
		json_array_append_new(ru,
		    json_pack("{s:I,s:I,s:I,s:I}", "stale_minutes",
			(json_int_t)f->rules[i].stale_minutes, "repeat_minutes",
			(json_int_t)f->rules[i].repeat_minutes, "stale",
			(json_int_t)f->rules[i].stale, "last_alert_ms",
			(json_int_t)f->rules[i].last_alert_ms));
	CJ_SET(o, "rules", ru);
	return o;
}

json_t *
ctl_json_rb_actions(const uint32_t *per)
{
	json_t *o = json_object();

	for (int k = 1; o != NULL && k < FBX_RB_COUNT; k++)
		CJ_INT(o, ctl_rb_action_key[k], per[k]);
	return o;
}

/* rb_row - one row of a rollback plan; full adds the type, the
 * compensation and the detail */
static json_t *
rb_row(const struct fbx_rb_row *r, int full)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	CJ_INT(o, "command", r->command_id);
	CJ_INT(o, "delivery", r->delivery_id);
	CJ_STR(o, "device", r->device);
	if (full)
		CJ_STR(o, "type", fbx_cmd_type_name(r->type));
	/* a command never expanded (held or settling) has no delivery
	 * yet: no state (the text plan prints '-', its detail says which) */
	if (r->state)
		CJ_STR(o, "state", fbx_dstate_name(r->state));
	else
		CJ_SET(o, "state", json_null());
	CJ_STR(o, "action",
	    r->action < FBX_RB_COUNT ? ctl_rb_action_key[r->action]
				     : "unknown");
	if (full) {
		CJ_STR(o, "compensation",
		    r->comp_type ? fbx_cmd_type_name(r->comp_type) : "");
		CJ_STR(o, "detail", r->detail);
	}
	return o;
}

json_t *
ctl_json_rb_plan(const char *org, const struct fbx_rb_plan *p, int rows)
{
	json_t *o = json_object(), *comp = json_array();

	if (o == NULL || comp == NULL) {
		json_decref(o);
		json_decref(comp);
		return NULL;
	}
	CJ_STR(o, "org", org);
	CJ_BOOL(o, "executed", p->executed);
	CJ_INT(o, "rollback_id", p->rollback_id);
	CJ_INT(o, "commands", p->commands);
	CJ_SET(o, "actions", ctl_json_rb_actions(p->per_action));
	for (size_t i = 0; i < p->ncomp; i++)
		json_array_append_new(comp, json_integer((json_int_t)p->comp_ids[i]));
	CJ_SET(o, "compensating_commands", comp);
	CJ_STR(o, "breaker", p->breaker);
	CJ_INT(o, "onset_ms", p->onset_ms);
	CJ_INT(o, "since_ms", p->since_ms);
	CJ_INT(o, "until_ms", p->until_ms);
	CJ_SET(o, "before_onset",
	    json_pack("{s:I,s:I,s:I}", "commands", (json_int_t)p->before_onset,
		"deliveries", (json_int_t)p->before_onset_deliveries, "rows",
		(json_int_t)p->bo_rows_total));
	if (p->global) {
		json_t *a = json_array();
		CJ_BOOL(o, "global", 1);
		for (size_t i = 0; a != NULL && i < p->norgs; i++) {
			const struct fbx_rb_org *x = &p->orgs[i];
			json_t *e = json_object();
			if (e == NULL)
				break;
			CJ_STR(e, "org", x->org);
			CJ_INT(e, "commands", x->commands);
			CJ_SET(e, "actions",
			    ctl_json_rb_actions(x->per_action));
			CJ_SET(e, "before_onset",
			    json_pack("{s:I,s:I}", "commands",
				(json_int_t)x->before_onset, "deliveries",
				(json_int_t)x->before_onset_deliveries));
			CJ_INT(e, "compensating_commands", x->comp_commands);
			json_array_append_new(a, e);
		}
		CJ_SET(o, "orgs", a);
	}
	if (rows) {
		json_t *a = json_array(), *b = json_array();
		for (size_t i = 0; a != NULL && i < p->nrows; i++)
			json_array_append_new(a, rb_row(&p->rows[i], 1));
		for (size_t i = 0; b != NULL && i < p->nbo_rows; i++)
			json_array_append_new(b, rb_row(&p->bo_rows[i], 0));
		CJ_SET(o, "rows", a);
		CJ_SET(o, "before_onset_rows", b);
	}
	return o;
}
