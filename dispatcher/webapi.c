/*
 * webapi.c: the web console's JSON API (issue 12). The browser proves
 * who it is with a session token (Authorization: Bearer, minted by
 * `fuseboxctl web login`); every figure it gets and every action it
 * takes is a console request the engine answers as that token's
 * principal (fbx_webgate_call), so roles, organisation scope and audit
 * are the engine's, exactly as for fuseboxctl. Only engine-wide figures
 * that /metrics already publishes (the delivery funnel and gateways)
 * come from the loop's snapshot, and only for a principal scoped to
 * every organisation. JSON in and out is jansson's.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "webapi.h"

#define HELD_LIST_MAX 5      /* held commands listed per organisation */
#define HELD_SHOWN_MAX 50    /* and in all (the counts are the breakers') */
#define SETTLING_SHOWN_MAX 50 /* listed in all (the count is the
                                 breakers'), and per organisation */
#define ROLLOUTS_LIST_MAX 50 /* open staged rollouts per organisation */
#define CMDS_LIST_MAX 100    /* recent commands looked at per organisation
                                (the funnel's scope text says 100) */
#define CMDS_SINCE_MS (3600 * 1000) /* "recent": the last hour */
#define APPROVAL_SINCE_MS (24 * 3600 * 1000)
#define TOP_ORGS 10
#define APPR_CACHE_N 16 /* principals whose approvals cursors are kept */

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* status_of - the HTTP status for an engine error */
static unsigned
status_of(int err)
{
	switch (err) {
	case FBX_OK:
		return 200;
	case FBX_EFORBIDDEN:
		return 403;
	case FBX_EINVALID:
	case FBX_ETOOBIG:
	case FBX_EMALFORMED:
	case FBX_EVERSION:
		return 400;
	case FBX_ENOT_FOUND:
	case FBX_EUNKNOWN_ORG:
		return 404;
	case FBX_ESTATE:
	case FBX_EAPPROVAL_INVALID:
		return 409;
	case FBX_ETIMEOUT:
		return 504;
	case FBX_EBUSY:
	case FBX_ESHUTTING_DOWN:
	case FBX_EUNREACHABLE:
	case FBX_ESTORAGE:
	case FBX_EDISK_FULL:
	case FBX_EMAP_FULL:
	case FBX_EIO: /* not recorded; retry once the cause is fixed */
		return 503;
	default:
		return 500;
	}
}

/* done - write o as the answer (consumes o) */
static void
done(json_t *o, unsigned st, unsigned *status, char **out)
{
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s == NULL) {
		s = strdup("{\"error\":\"NOMEM\",\"message\":\"out of memory\"}");
		st = 500;
	}
	*status = st;
	*out = s;
}

static void
fail(unsigned st, const char *name, const char *msg, unsigned *status,
    char **out)
{
	done(json_pack("{s:s, s:s}", "error", name, "message", msg), st,
	    status, out);
}

/* fail_rep - answer with a console reply's error */
static void
fail_rep(const struct fbx_console_rep *r, unsigned *status, char **out)
{
	fail(status_of(r->err), fbx_errname(r->err),
	    r->errmsg[0] != '\0' ? r->errmsg : fbx_strerror(r->err), status,
	    out);
}

static json_t *
roles_json(uint32_t roles)
{
	static const char *const names[] = { "viewer", "operator",
		"approver", "breaker", "admin" };
	json_t *a = json_array();

	for (int i = 0; a != NULL && i < 5; i++)
		if (roles & (1u << i))
			json_array_append_new(a, json_string(names[i]));
	return a;
}

static json_t *
who_json(const struct fbx_web_who *w)
{
	json_t *orgs;

	if (w->all_orgs) {
		orgs = json_string("*");
	} else {
		orgs = json_array();
		for (size_t i = 0; orgs != NULL && i < w->norgs; i++)
			json_array_append_new(orgs, json_string(w->orgs[i]));
	}
	return json_pack("{s:s, s:o, s:o, s:I}", "principal", w->principal,
	    "roles", roles_json(w->roles), "orgs", orgs, "expires_ms",
	    (json_int_t)w->expires_ms);
}

/* ---------------------------------------------------------- overview */

struct view {
	fbx_id orgs[FBX_WEBAPI_ORGS_MAX];
	uint32_t devices[FBX_WEBAPI_ORGS_MAX]; /* 0 = not known yet */
	size_t n;
};

static void
view_add(struct view *v, const char *org, uint32_t devices)
{
	if (strcmp(org, "*") == 0 || !fbx_id_valid(org))
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (strcmp(v->orgs[i], org) == 0) {
			if (devices > v->devices[i])
				v->devices[i] = devices;
			return;
		}
	}
	if (v->n == FBX_WEBAPI_ORGS_MAX)
		return;
	snprintf(v->orgs[v->n], sizeof(v->orgs[0]), "%s", org);
	v->devices[v->n++] = devices;
}

/* the organisation a request that is not about one names: the first
 * in view, else one in the principal's scope */
static const char *
any_org(const struct fbx_web_who *w, const struct view *v)
{
	if (v->n > 0)
		return v->orgs[0];
	if (w->norgs > 0)
		return w->orgs[0];
	return "_web";
}

struct org_dev {
	const char *org;
	uint32_t devices;
};

static int
cmp_devices_desc(const void *a, const void *b)
{
	const struct org_dev *x = a, *y = b;

	return x->devices < y->devices ? 1 : x->devices > y->devices ? -1 : 0;
}

/* view_fill - the organisations one overview looks at: the principal's
 * own; for a principal of every organisation, those the loop lists as
 * abnormal (open or holding breakers), then (a viewer of every
 * organisation may list them) the largest, up to FBX_WEBAPI_ORGS_MAX.
 * @return 1 when the engine's status, asked for on the way, was answered
 * and is left in *pong (the caller frees it) for the overview; else 0 */
static int
view_fill(fbx_webgate *g, const struct fbx_web_who *w,
    const struct fbx_metrics *snap, struct view *v, json_t *errors,
    struct fbx_console_rep *pong)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	char admin_org[FBX_ID_MAX + 1] = "";

	memset(v, 0, sizeof(*v));
	if (!w->all_orgs) {
		for (size_t i = 0; i < w->norgs; i++)
			view_add(v, w->orgs[i], 0);
		return 0;
	}
	for (size_t i = 0; snap != NULL && i < snap->nbrk; i++)
		view_add(v, snap->brk[i].org, 0);
	if ((w->roles & FBX_ROLE_VIEWER) == 0)
		return 0;
	/* with fuseboxd --admin-org only that organisation may list them
	 * (any other was refused, and the page showed no organisation) */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	snprintf(req.org, sizeof(req.org), "%s", any_org(w, v));
	/* not answered (the engine stalled or stopping): the list would
	 * wait as long again, and might be asked as the wrong
	 * organisation; the page lists the abnormal ones above */
	if (fbx_webgate_call(g, w, &req, 1, &rep, FBX_WEBAPI_TIMEOUT_MS) !=
	    FBX_OK)
		return 0;
	if (rep.err != FBX_OK) {
		json_array_append_new(errors,
		    json_sprintf("list organisations: status: %s: %s",
		        fbx_errname(rep.err), rep.errmsg));
		fbx_console_rep_free(&rep);
		return 0;
	}
	snprintf(admin_org, sizeof(admin_org), "%s", rep.u.pong.admin_org);
	*pong = rep; /* the overview's status: not asked for again */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_ORGS;
	snprintf(req.org, sizeof(req.org), "%s",
	    admin_org[0] != '\0' ? admin_org : any_org(w, v));
	if (fbx_webgate_call(g, w, &req, 1, &rep, FBX_WEBAPI_TIMEOUT_MS) !=
	    FBX_OK)
		return 1;
	if (rep.err != FBX_OK) {
		json_array_append_new(errors,
		    json_sprintf("list organisations: %s: %s",
		        fbx_errname(rep.err), rep.errmsg));
	} else if (rep.u.orgs.n > 0) {
		struct org_dev *s = malloc(rep.u.orgs.n * sizeof(*s));
		for (size_t i = 0; s != NULL && i < rep.u.orgs.n; i++) {
			s[i].org = rep.u.orgs.orgs[i];
			s[i].devices = rep.u.orgs.devices[i];
		}
		if (s != NULL) {
			qsort(s, rep.u.orgs.n, sizeof(*s), cmp_devices_desc);
			for (size_t i = 0; i < rep.u.orgs.n; i++)
				view_add(v, s[i].org, s[i].devices);
		}
		free(s);
	}
	fbx_console_rep_free(&rep);
	return 1;
}

/* the requests made per organisation in view, in this order */
enum { Q_BRK, Q_HELD, Q_CMDS, Q_FLEET, Q_SETTLING, Q_ROLLOUTS, Q_PER_ORG };
enum { Q_REFUSED, Q_APPROVED, Q_APPR_PER_ORG };

static json_t *
breaker_json(const struct fbx_breaker_info *b)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, "
	                 "s:I, s:s, s:s, s:I, s:b, s:I}",
	    "org", b->org, "reason", b->reason, "state",
	    b->state == FBX_BS_OPEN ? "open" : "closed", "manual",
	    b->manual != 0, "held", (json_int_t)b->held, "settling",
	    (json_int_t)b->settling, "window_count",
	    (json_int_t)b->window_count, "allowance", (json_int_t)b->allowance,
	    "fleet", (json_int_t)b->fleet, "trips", (json_int_t)b->trips,
	    "tripped_ms", (json_int_t)b->tripped_ms, "tripped_by",
	    b->tripped_by, "note", b->note, "onset_ms",
	    (json_int_t)b->onset_ms, "shadow", b->cfg.shadow == 1,
	    "global_orgs", (json_int_t)b->cfg.global_orgs);
}

static json_t *
command_json(const struct fbx_command *c)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, "
	                      "s:s, s:s, s:I}",
	    "id", (json_int_t)c->id, "org", c->org, "type",
	    fbx_cmd_type_name(c->type), "origin", fbx_origin_name(c->origin),
	    "reason", c->reason, "actor", c->actor, "state",
	    fbx_cstate_name(c->state), "created_ms", (json_int_t)c->created_ms,
	    "deliveries", (json_int_t)c->ndeliveries, "held_by", c->held_by,
	    "note", c->note, "settle_until_ms",
	    (json_int_t)c->settle_until_ms);
	return o;
}

static json_t *
rollout_json(const struct fbx_command *c)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
	                 "s:I, s:I, s:I, s:s}",
	    "id", (json_int_t)c->id, "org", c->org, "type",
	    fbx_cmd_type_name(c->type), "state",
	    fbx_rollout_state_name(c->ro.state), "wave",
	    (json_int_t)c->ro.wave, "released", (json_int_t)c->ro.released,
	    "deliveries", (json_int_t)c->ndeliveries, "succeeded",
	    (json_int_t)c->counts[FBX_D_SUCCEEDED], "failed",
	    (json_int_t)c->counts[FBX_D_FAILED], "success_ppm",
	    (json_int_t)c->rollout.success_ppm, "failure_ppm",
	    (json_int_t)c->rollout.failure_ppm, "min_results",
	    (json_int_t)c->rollout.min_results, "wave_size",
	    (json_int_t)c->ro.wave_size, "note", c->ro.note);
}

/* ---- pending approvals --------------------------------------------------
 * A submit refused over a blast-radius limit is audited (submit.refused,
 * with its approval token) and an approval too (approve). No request
 * lists the tokens still waiting, and an audit listing with an action
 * filter may read up to 10,000 records per call, so the listing is
 * incremental: per principal, a cursor per organisation (the audit
 * sequence read up to), the tokens waiting and the tokens approved are
 * kept here, and each overview reads only what is new since. They are
 * kept as JSON text (no jansson value is shared between threads), under
 * appr_mu, for the APPR_CACHE_N principals used last. */
#define APPR_PENDING_MAX 200
#define APPR_DONE_MAX 256

struct appr_cursor {
	fbx_id org;
	uint64_t ref, appr; /* audit sequences read up to, 0 = none yet */
};

static pthread_mutex_t appr_mu = PTHREAD_MUTEX_INITIALIZER;
static struct appr_state {
	char who[FBX_ID_MAX + 1];
	int64_t used_ms;
	struct appr_cursor cur[FBX_WEBAPI_ORGS_MAX];
	size_t ncur;
	char *pending; /* JSON array of waiting refusals */
	char *done;    /* JSON array of approved tokens */
} appr_tab[APPR_CACHE_N];

/* appr_slot - who's state, or the least recently used one (under
 * appr_mu) */
static struct appr_state *
appr_slot(const char *who)
{
	struct appr_state *lru = &appr_tab[0];

	for (int i = 0; i < APPR_CACHE_N; i++) {
		if (strcmp(appr_tab[i].who, who) == 0)
			return &appr_tab[i];
		if (appr_tab[i].used_ms < lru->used_ms)
			lru = &appr_tab[i];
	}
	free(lru->pending);
	free(lru->done);
	memset(lru, 0, sizeof(*lru));
	snprintf(lru->who, sizeof(lru->who), "%s", who);
	return lru;
}

static int
has_token(json_t *a, const char *tok, int entries)
{
	size_t i;
	json_t *x;

	json_array_foreach(a, i, x)
	{
		const char *t = json_string_value(
		    entries ? json_object_get(x, "token") : x);
		if (t != NULL && strcmp(t, tok) == 0)
			return 1;
	}
	return 0;
}

static void
drop_token(json_t *a, const char *tok)
{
	for (size_t i = 0; i < json_array_size(a);) {
		const char *t = json_string_value(
		    json_object_get(json_array_get(a, i), "token"));
		if (t != NULL && strcmp(t, tok) == 0)
			json_array_remove(a, i);
		else
			i++;
	}
}

/* params_of - an audit record's params and their "token" (new
 * reference; *tok borrowed from it) */
static json_t *
params_of(const struct fbx_audit_rec *r, const char **tok)
{
	json_t *p = json_loads(r->params, 0, NULL);

	*tok = json_string_value(json_object_get(p, "token"));
	return p;
}

/* appr_fetch - the approvals waiting in the organisations in view:
 * what is new in their audit logs since this principal's last look
 * (head: the last audit sequence written before this overview, 0 =
 * unknown). @return a JSON array (NULL only when out of memory). */
static json_t *
appr_fetch(fbx_webgate *g, const struct fbx_web_who *w, const struct view *v,
    int64_t now, uint64_t head, json_t *errors)
{
	struct appr_cursor cur[FBX_WEBAPI_ORGS_MAX];
	struct fbx_console_req *req = NULL;
	struct fbx_console_rep *rep = NULL;
	size_t n = v->n * Q_APPR_PER_ORG;
	json_t *pending = NULL, *done = NULL, *out = NULL;

	memset(cur, 0, sizeof(cur));
	pthread_mutex_lock(&appr_mu);
	{
		struct appr_state *s = appr_slot(w->principal);
		s->used_ms = now;
		for (size_t i = 0; i < v->n; i++) {
			snprintf(cur[i].org, sizeof(cur[i].org), "%s",
			    v->orgs[i]);
			for (size_t k = 0; k < s->ncur; k++)
				if (strcmp(s->cur[k].org, v->orgs[i]) == 0)
					cur[i] = s->cur[k];
		}
		pending = s->pending != NULL ? json_loads(s->pending, 0, NULL)
		                             : NULL;
		done = s->done != NULL ? json_loads(s->done, 0, NULL) : NULL;
	}
	pthread_mutex_unlock(&appr_mu);
	if (pending == NULL)
		pending = json_array();
	if (done == NULL)
		done = json_array();
	req = calloc(n + 1, sizeof(*req));
	rep = calloc(n + 1, sizeof(*rep));
	if (pending == NULL || done == NULL || req == NULL || rep == NULL)
		goto out;
	for (size_t i = 0; i < v->n; i++) {
		struct fbx_console_req *q = &req[i * Q_APPR_PER_ORG];
		for (int k = 0; k < Q_APPR_PER_ORG; k++) {
			snprintf(q[k].org, sizeof(q[k].org), "%s", v->orgs[i]);
			q[k].kind = FBX_CREQ_AUDIT_LIST;
			q[k].u.audit_list.since_ms = now - APPROVAL_SINCE_MS;
			q[k].u.audit_list.limit = 100;
		}
		snprintf(q[Q_REFUSED].u.audit_list.action,
		    sizeof(q[Q_REFUSED].u.audit_list.action), "submit.refused");
		q[Q_REFUSED].u.audit_list.after = cur[i].ref;
		snprintf(q[Q_APPROVED].u.audit_list.action,
		    sizeof(q[Q_APPROVED].u.audit_list.action), "approve");
		q[Q_APPROVED].u.audit_list.after = cur[i].appr;
	}
	if (n > 0 &&
	    fbx_webgate_call(g, w, req, n, rep, FBX_WEBAPI_TIMEOUT_MS) !=
	        FBX_OK) {
		memset(rep, 0, n * sizeof(*rep));
		json_array_append_new(errors,
		    json_string("approvals: the engine is not serving"));
		goto keep;
	}
	for (size_t i = 0; i < v->n; i++) {
		struct fbx_console_rep *q = &rep[i * Q_APPR_PER_ORG];
		uint64_t *at[Q_APPR_PER_ORG] = { &cur[i].ref, &cur[i].appr };
		/* approvals first: a token approved is never listed again */
		for (int k = Q_APPR_PER_ORG - 1; k >= 0; k--) {
			uint64_t last = 0;
			if (q[k].err != FBX_OK) {
				json_array_append_new(errors,
				    json_sprintf("%s (approvals): %s: %s",
				        v->orgs[i], fbx_errname(q[k].err),
				        q[k].errmsg));
				continue;
			}
			for (size_t r = 0; r < q[k].u.audit.n; r++) {
				const struct fbx_audit_rec *a =
				    &q[k].u.audit.r[r];
				const char *tok;
				json_t *p = params_of(a, &tok);
				last = a->seq;
				if (tok == NULL) {
					json_decref(p);
					continue;
				}
				if (k == Q_APPROVED) {
					if (!has_token(done, tok, 0))
						json_array_append_new(
						    done, json_string(tok));
					drop_token(pending, tok);
				} else if (!has_token(done, tok, 0) &&
				    !has_token(pending, tok, 1)) {
					json_array_append_new(pending,
					    json_pack("{s:s, s:s, s:s, s:I, "
					              "s:O?, s:O?, s:O?}",
					        "org", a->org, "token", tok,
					        "submitter", a->actor, "at_ms",
					        (json_int_t)a->at_ms, "type",
					        json_object_get(p, "type"),
					        "devices",
					        json_object_get(p, "devices"),
					        "limit",
					        json_object_get(p, "limit")));
				}
				json_decref(p);
			}
			/* next time from where this read stopped; at the end
			 * of the log, from the head seen before it */
			if (q[k].u.audit.next_after != 0)
				*at[k] = q[k].u.audit.next_after;
			else if (last > *at[k] || head > *at[k])
				*at[k] = last > head ? last : head;
		}
	}
keep:
	/* tokens expire with the approval window; the lists stay bounded */
	for (size_t i = 0; i < json_array_size(pending);) {
		json_int_t t = json_integer_value(
		    json_object_get(json_array_get(pending, i), "at_ms"));
		if (t < now - APPROVAL_SINCE_MS ||
		    json_array_size(pending) > APPR_PENDING_MAX)
			json_array_remove(pending, i);
		else
			i++;
	}
	while (json_array_size(done) > APPR_DONE_MAX)
		json_array_remove(done, 0);
	{
		char *ptext = json_dumps(pending, JSON_COMPACT);
		char *dtext = json_dumps(done, JSON_COMPACT);
		pthread_mutex_lock(&appr_mu);
		{
			struct appr_state *s = appr_slot(w->principal);
			s->used_ms = now;
			memcpy(s->cur, cur, v->n * sizeof(cur[0]));
			s->ncur = v->n;
			if (ptext != NULL) {
				free(s->pending);
				s->pending = ptext;
				ptext = NULL;
			}
			if (dtext != NULL) {
				free(s->done);
				s->done = dtext;
				dtext = NULL;
			}
		}
		pthread_mutex_unlock(&appr_mu);
		free(ptext);
		free(dtext);
	}
	out = pending;
	pending = NULL;
out:
	for (size_t i = 0; rep != NULL && i < n; i++)
		fbx_console_rep_free(&rep[i]);
	free(rep);
	free(req);
	json_decref(pending);
	json_decref(done);
	return out;
}

struct orgsum {
	const char *org;
	uint64_t devices, held, window, open, settling, commands;
	int more; /* more recent commands than the page looked at */
	int brk_ok, cmds_ok; /* its breakers, its commands were read */
	const char *node; /* cluster: the node that owns it (MOVED), or NULL */
};

static int
cmp_orgsum(const void *a, const void *b)
{
	const struct orgsum *x = a, *y = b;

	/* another node's organisations last: its page shows them (the
	 * red line says which node), this one's own go first */
	if ((x->node != NULL) != (y->node != NULL))
		return x->node != NULL ? 1 : -1;
	if (x->open != y->open)
		return x->open < y->open ? 1 : -1;
	if (x->held != y->held)
		return x->held < y->held ? 1 : -1;
	/* figures that could not be read before the ones known quiet */
	if (x->brk_ok != y->brk_ok)
		return x->brk_ok ? 1 : -1;
	if (x->window != y->window)
		return x->window < y->window ? 1 : -1;
	if (x->devices != y->devices)
		return x->devices < y->devices ? 1 : -1;
	return strcmp(x->org, y->org);
}

/* known - a count as JSON, or null when it could not be read */
static json_t *
known(int ok, uint64_t v)
{
	return ok ? json_integer((json_int_t)v) : json_null();
}

/* moved_add - cluster: org is owned by the node a MOVED answer names */
static void
moved_add(json_t *moved, const char *org, const struct fbx_console_rep *r)
{
	if (moved == NULL || json_object_get(moved, org) != NULL)
		return;
	json_object_set_new(moved, org,
	    json_pack("[s, s]", r->owner_node, r->owner_endpoint));
}

/* moved_errors - one line per other node: the organisations in view
 * it owns, whose figures this node cannot read (shown as ?), and how to
 * open its page. An outside walk found about 20 lines of "send it
 * there" for one node, each a figure of one organisation. */
static void
moved_errors(json_t *moved, json_t *errors)
{
	json_t *nodes = json_object(), *e, *lst;
	const char *org, *node;
	char line[1024];

	if (moved == NULL || nodes == NULL || errors == NULL) {
		json_decref(nodes);
		return;
	}
	json_object_foreach(moved, org, e) {
		node = json_string_value(json_array_get(e, 0));
		if (node == NULL)
			continue;
		lst = json_object_get(nodes, node);
		if (lst == NULL) {
			lst = json_pack("[s]",
			    json_string_value(json_array_get(e, 1)));
			json_object_set_new(nodes, node, lst);
		}
		json_array_append_new(lst, json_string(org));
	}
	json_object_foreach(nodes, node, lst) {
		/* room kept for " and N more" when the names do not fit */
		const size_t cap = sizeof(line) - 24;
		size_t k, off, n = json_array_size(lst);
		const char *ep = json_string_value(json_array_get(lst, 0));
		/* -o one of them: a principal of some organisations is
		 * refused a login made as none of its own */
		int w = snprintf(line, cap,
		    "owned by node '%s', which serves them (their figures "
		    "show as ?; open its page: fuseboxctl -e %s -o %s web "
		    "login): ",
		    node, ep != NULL && ep[0] != '\0' ? ep : "ENDPOINT",
		    json_string_value(json_array_get(lst, 1)));
		if (w < 0 || (size_t)w >= cap)
			continue;
		off = (size_t)w;
		for (k = 1; k < n; k++) {
			w = snprintf(line + off, cap - off, "%s%s",
			    k > 1 ? ", " : "",
			    json_string_value(json_array_get(lst, k)));
			if (w < 0 || (size_t)w >= cap - off)
				break;
			off += (size_t)w;
		}
		if (k < n)
			snprintf(line + off, sizeof(line) - off,
			    " and %zu more", n - k);
		json_array_append_new(errors, json_string(line));
	}
	json_decref(nodes);
}

/* fleet_json - one organisation's fleet report: check-in histogram,
 * the most common OS versions, alert rules, outcomes by type; alerts
 * (rules over threshold, silent types) also go to needs */
static json_t *
fleet_json(const char *org, const struct fbx_fleet_report *f, json_t *needs)
{
	json_t *hist = json_array(), *os = json_array(), *rules = json_array(),
	       *outs = json_array();

	for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
		json_array_append_new(hist,
		    json_integer((json_int_t)f->offline_hours[i]));
	for (size_t i = 0; i < f->nos && i < 5; i++)
		json_array_append_new(os,
		    json_pack("{s:s, s:I}", "version", f->os[i].version,
		        "count", (json_int_t)f->os[i].count));
	for (size_t i = 0; i < f->nrules; i++) {
		const struct fbx_fleet_rule *r = &f->rules[i];
		json_array_append_new(rules,
		    json_pack("{s:I, s:I, s:I, s:I}", "stale_minutes",
		        (json_int_t)r->stale_minutes, "repeat_minutes",
		        (json_int_t)r->repeat_minutes, "stale",
		        (json_int_t)r->stale, "last_alert_ms",
		        (json_int_t)r->last_alert_ms));
		if (r->stale > 0 && needs != NULL)
			json_array_append_new(needs,
			    json_pack("{s:s, s:s, s:I, s:I}", "org", org, "kind",
			        "devices_stale", "count", (json_int_t)r->stale,
			        "stale_minutes", (json_int_t)r->stale_minutes));
	}
	for (size_t i = 0; i < f->nout; i++) {
		const struct fbx_type_outcomes *t = &f->out[i];
		json_array_append_new(outs,
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "type",
		        fbx_cmd_type_name(t->type), "ok_hour",
		        (json_int_t)t->ok_hour, "failed_hour",
		        (json_int_t)t->failed_hour, "expired_hour",
		        (json_int_t)t->expired_hour, "ok_day",
		        (json_int_t)t->ok_day, "failed_day",
		        (json_int_t)t->failed_day, "expired_day",
		        (json_int_t)t->expired_day, "silent", t->silent != 0));
		if (t->silent && needs != NULL)
			json_array_append_new(needs,
			    json_pack("{s:s, s:s, s:s, s:I}", "org", org, "kind",
			        "outcome_silence", "type",
			        fbx_cmd_type_name(t->type), "count",
			        (json_int_t)(t->failed_hour + t->expired_hour)));
	}
	return json_pack("{s:s, s:I, s:I, s:o, s:o, s:I, s:o, s:o}", "org", org,
	    "as_of_ms", (json_int_t)f->as_of_ms, "devices",
	    (json_int_t)f->devices, "offline_hours", hist, "os_versions", os,
	    "os_other", (json_int_t)f->os_other, "rules", rules, "outcomes",
	    outs);
}

static void
overview(fbx_webgate *g, const struct fbx_web_who *w,
    const struct fbx_metrics *snap, unsigned *status, char **out)
{
	struct view v;
	struct fbx_console_req *req = NULL;
	struct fbx_console_rep *rep = NULL, pong;
	struct orgsum *sum = NULL;
	size_t skip = 0; /* the status, answered already */
	int have_pong = 0;
	/* a kind of figure some organisation's request could not read: the
	 * page shows it as unknown, not as nothing */
	int missing[Q_PER_ORG] = { 0 };
	json_t *jmissing = NULL;
	json_t *o = NULL, *errors = json_array(), *notes = json_array(),
	       *brk = json_array(),
	       *held = json_array(), *settling = json_array(),
	       *rollouts = json_array(), *paused = json_array(),
	       *appr = json_array(), *top = json_array();
	uint64_t funnel[FBX_D_COUNT] = { 0 };
	int funnel_cut = 0; /* an organisation had more recent commands */
	size_t n = 0, nforbidden = 0, nq = 0;
	int64_t now = wall_ms();
	int have_global = 0;
	/* a principal of some organisations sees the global breakers'
	 * share of them (per reason: the row, and its settling) */
	json_t *grows = json_object(), *gsettle = json_object();
	/* cluster: organisation -> [node, endpoint] of its owner */
	json_t *moved = json_object();
	uint64_t held_total = 0, settling_total = 0;
	char msg[400];

	memset(&pong, 0, sizeof(pong));
	if ((w->roles & FBX_ROLE_VIEWER) == 0) {
		/* the engine says why (and audits the attempt) once */
		struct fbx_console_req r1;
		struct fbx_console_rep p1;
		memset(&r1, 0, sizeof(r1));
		r1.kind = FBX_CREQ_BREAKER;
		r1.u.breaker.op = FBX_BRK_STATUS;
		snprintf(r1.org, sizeof(r1.org), "%s",
		    w->norgs > 0 ? w->orgs[0] : "_web");
		if (fbx_webgate_call(g, w, &r1, 1, &p1,
		        FBX_WEBAPI_TIMEOUT_MS) != FBX_OK) {
			fail(503, "UNREACHABLE", "the engine is not serving",
			    status, out);
			goto out;
		}
		fail_rep(&p1, status, out);
		fbx_console_rep_free(&p1);
		goto out;
	}
	have_pong = view_fill(g, w, snap, &v, errors, &pong);
	n = 2 + v.n * Q_PER_ORG;
	req = calloc(n, sizeof(*req));
	rep = calloc(n, sizeof(*rep));
	sum = calloc(v.n + 1, sizeof(*sum));
	if (req == NULL || rep == NULL || sum == NULL) {
		fail(500, "NOMEM", "out of memory", status, out);
		goto out;
	}
	req[0].kind = FBX_CREQ_PING;
	snprintf(req[0].org, sizeof(req[0].org), "%s", any_org(w, &v));
	if (have_pong) { /* view_fill's answer, a few ms old */
		rep[0] = pong;
		memset(&pong, 0, sizeof(pong));
		skip = 1;
	}
	req[1].kind = FBX_CREQ_AUDIT_VERIFY;
	req[1].u.audit_verify.incremental = 1;
	snprintf(req[1].org, sizeof(req[1].org), "%s", any_org(w, &v));
	for (size_t i = 0; i < v.n; i++) {
		struct fbx_console_req *q = &req[2 + i * Q_PER_ORG];
		for (int k = 0; k < Q_PER_ORG; k++)
			snprintf(q[k].org, sizeof(q[k].org), "%s", v.orgs[i]);
		q[Q_BRK].kind = FBX_CREQ_BREAKER;
		q[Q_BRK].u.breaker.op = FBX_BRK_STATUS;
		q[Q_HELD].kind = FBX_CREQ_LIST_HELD;
		q[Q_HELD].u.list_held.limit = HELD_LIST_MAX;
		q[Q_CMDS].kind = FBX_CREQ_LIST_COMMANDS;
		q[Q_CMDS].u.list.since_ms = now - CMDS_SINCE_MS;
		/* one more than is looked at: whether there are more */
		q[Q_CMDS].u.list.limit = CMDS_LIST_MAX + 1;
		q[Q_FLEET].kind = FBX_CREQ_FLEET;
		q[Q_FLEET].u.fleet.op = FBX_FLEET_REPORT;
		/* what needs a human, whatever its age: the recent commands
		 * above are the hour's first 100 only */
		q[Q_SETTLING].kind = FBX_CREQ_LIST_HELD;
		q[Q_SETTLING].u.list_held.which = FBX_LH_SETTLING;
		q[Q_SETTLING].u.list_held.limit = SETTLING_SHOWN_MAX;
		q[Q_ROLLOUTS].kind = FBX_CREQ_LIST_HELD;
		q[Q_ROLLOUTS].u.list_held.which = FBX_LH_ROLLOUTS;
		q[Q_ROLLOUTS].u.list_held.limit = ROLLOUTS_LIST_MAX;
	}
	if (fbx_webgate_call(g, w, req + skip, n - skip, rep + skip,
	        FBX_WEBAPI_TIMEOUT_MS) != FBX_OK) {
		fail(503, "UNREACHABLE", "the engine is not serving", status,
		    out);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (rep[i].err == FBX_OK)
			continue;
		nq++;
		/* an organisation of the principal's scope that has no
		 * device yet is not known to the engine: nothing to show,
		 * nothing missing */
		if (i >= 2 && rep[i].err == FBX_EUNKNOWN_ORG) {
			if ((i - 2) % Q_PER_ORG == Q_BRK)
				json_array_append_new(notes,
				    json_sprintf("%s: unknown to the engine (no "
				                 "device enrolled yet)",
				        req[i].org));
			continue;
		}
		nforbidden += rep[i].err == FBX_EFORBIDDEN;
		if (i >= 2)
			missing[(i - 2) % Q_PER_ORG] = 1;
		if (i >= 2 && rep[i].err == FBX_EMOVED) {
			/* cluster: another node owns it; one line per node
			 * below, not one per figure of each organisation */
			moved_add(moved, req[i].org, &rep[i]);
			continue;
		}
		snprintf(msg, sizeof(msg), "%s (%s): %s: %s", req[i].org,
		    i == 0 ? "status" : i == 1 ? "audit verify" :
		    (i - 2) % Q_PER_ORG == Q_BRK ? "breakers" :
		    (i - 2) % Q_PER_ORG == Q_HELD ? "held commands" :
		    (i - 2) % Q_PER_ORG == Q_FLEET ? "fleet" :
		    (i - 2) % Q_PER_ORG == Q_SETTLING ? "settling commands" :
		    (i - 2) % Q_PER_ORG == Q_ROLLOUTS ? "rollouts" :
		    "commands",
		    fbx_errname(rep[i].err), rep[i].errmsg);
		json_array_append_new(errors, json_string(msg));
	}
	moved_errors(moved, errors);
	if (nq == n && nforbidden > 0) { /* nothing may be seen */
		size_t f = 0;
		while (rep[f].err != FBX_EFORBIDDEN)
			f++;
		fail_rep(&rep[f], status, out);
		goto out;
	}
	for (size_t i = 0; i < v.n; i++) {
		struct fbx_console_rep *q = &rep[2 + i * Q_PER_ORG];
		struct orgsum *s = &sum[i];
		s->org = v.orgs[i];
		s->devices = v.devices[i];
		s->brk_ok = q[Q_BRK].err == FBX_OK;
		s->cmds_ok = q[Q_CMDS].err == FBX_OK;
		s->node = json_string_value(
		    json_array_get(json_object_get(moved, s->org), 0));
		if (q[Q_BRK].err == FBX_OK) {
			for (size_t k = 0; k < q[Q_BRK].u.breaker.n; k++) {
				const struct fbx_breaker_info *b =
				    &q[Q_BRK].u.breaker.b[k];
				int global = strcmp(b->org, "*") == 0;
				if (!global) {
					if (b->fleet > s->devices)
						s->devices = b->fleet;
					s->held += b->held;
					s->window += b->window_count;
					s->settling += b->settling;
					s->open += b->state == FBX_BS_OPEN;
					held_total += b->held;
					if (!w->all_orgs) {
						settling_total += b->settling;
						json_object_set_new(gsettle,
						    b->reason,
						    json_integer((json_int_t)(
						        json_integer_value(
						            json_object_get(gsettle,
						                b->reason)) +
						        (json_int_t)b->settling)));
					}
				}
				if (global && !w->all_orgs) {
					/* its share of each organisation,
					 * summed; listed after the loop */
					json_t *r = json_object_get(grows,
					    b->reason);
					if (r == NULL) {
						r = breaker_json(b);
						json_object_set_new(r, "held",
						    json_integer(0));
						json_object_set_new(grows,
						    b->reason, r);
					}
					json_object_set_new(r, "held",
					    json_integer(json_integer_value(
					        json_object_get(r, "held")) +
					        (json_int_t)b->held_in_org));
					held_total += b->held_in_org;
					continue;
				}
				if (global && have_global)
					continue;
				if (global) {
					held_total += b->held;
					settling_total += b->settling;
				}
				if (b->state == FBX_BS_OPEN || b->held > 0 ||
				    b->settling > 0)
					json_array_append_new(
					    brk, breaker_json(b));
			}
			for (size_t k = 0; k < q[Q_BRK].u.breaker.n; k++)
				if (strcmp(q[Q_BRK].u.breaker.b[k].org, "*") ==
				    0)
					have_global = 1;
		}
		if (q[Q_HELD].err == FBX_OK)
			for (size_t k = 0; k < q[Q_HELD].u.commands.n &&
			     json_array_size(held) < HELD_SHOWN_MAX;
			     k++)
				json_array_append_new(held,
				    command_json(&q[Q_HELD].u.commands.cmds[k]));
		if (q[Q_CMDS].err == FBX_OK) {
			/* the first CMDS_LIST_MAX of the hour: a busier
			 * organisation says so (its count is a floor, and
			 * the funnel of a scoped principal sums only
			 * these) */
			size_t nc = q[Q_CMDS].u.commands.n;
			s->more = nc > CMDS_LIST_MAX;
			funnel_cut |= s->more;
			if (nc > CMDS_LIST_MAX)
				nc = CMDS_LIST_MAX;
			for (size_t k = 0; k < nc; k++) {
				const struct fbx_command *c =
				    &q[Q_CMDS].u.commands.cmds[k];
				s->commands++;
				for (int d = 0; d < FBX_D_COUNT; d++)
					funnel[d] += c->counts[d];
				/* finished rollouts of the hour; open ones
				 * come from Q_ROLLOUTS */
				if (c->rollout.enabled &&
				    fbx_cstate_terminal(c->state))
					json_array_append_new(
					    rollouts, rollout_json(c));
			}
		}
		if (q[Q_SETTLING].err == FBX_OK)
			for (size_t k = 0; k < q[Q_SETTLING].u.commands.n &&
			     json_array_size(settling) < SETTLING_SHOWN_MAX;
			     k++)
				json_array_append_new(settling,
				    command_json(
				        &q[Q_SETTLING].u.commands.cmds[k]));
		if (q[Q_ROLLOUTS].err == FBX_OK)
			for (size_t k = 0; k < q[Q_ROLLOUTS].u.commands.n;
			     k++) {
				const struct fbx_command *c =
				    &q[Q_ROLLOUTS].u.commands.cmds[k];
				json_array_append_new(rollouts, rollout_json(c));
				if (c->ro.state == FBX_RO_PAUSED ||
				    c->ro.state == FBX_RO_AWAITING_APPROVAL)
					json_array_append_new(
					    paused, rollout_json(c));
			}
	}
	{
		const char *rs;
		json_t *r;
		json_object_foreach(grows, rs, r) {
			json_int_t st = json_integer_value(
			    json_object_get(gsettle, rs));
			const char *state = json_string_value(
			    json_object_get(r, "state"));
			json_object_set_new(r, "settling", json_integer(st));
			if ((state != NULL && strcmp(state, "open") == 0) ||
			    json_integer_value(json_object_get(r, "held")) > 0 ||
			    st > 0)
				json_array_append(brk, r);
		}
	}
	if (json_object_size(moved) > 0) {
		/* cluster: a global breaker's counts here are this node's
		 * organisations' only; the others' are on their pages */
		size_t k;
		json_t *b;
		json_array_foreach(brk, k, b)
			if (strcmp(json_string_value(json_object_get(b, "org")),
			        "*") == 0)
				json_object_set_new(b, "partial", json_true());
	}
	json_decref(appr);
	appr = appr_fetch(g, w, &v, now,
	    rep[1].err == FBX_OK ? rep[1].u.verify.head_seq : 0, errors);
	qsort(sum, v.n, sizeof(*sum), cmp_orgsum);
	/* a figure that could not be read is null (the page shows ?),
	 * never 0; node names the owner of another node's organisation */
	for (size_t i = 0; i < v.n && i < TOP_ORGS; i++)
		json_array_append_new(top,
		    json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:b, s:o}",
		        "org", sum[i].org, "devices",
		        (json_int_t)sum[i].devices, "held",
		        known(sum[i].brk_ok, sum[i].held), "window_count",
		        known(sum[i].brk_ok, sum[i].window), "open_breakers",
		        known(sum[i].brk_ok, sum[i].open), "settling",
		        known(sum[i].brk_ok, sum[i].settling),
		        "recent_commands",
		        known(sum[i].cmds_ok, sum[i].commands),
		        "recent_commands_more", sum[i].more != 0, "node",
		        sum[i].node != NULL ? json_string(sum[i].node)
		                            : json_null()));
	/* "who" is the token's (its expiry): shared_overview puts it
	 * first */
	o = json_pack("{s:I, s:i, s:o?, s:o?}", "now_ms", (json_int_t)now,
	    "orgs_in_view", (int)v.n, "errors", errors, "notes", notes);
	errors = notes = NULL;
	if (o == NULL) {
		fail(500, "NOMEM", "out of memory", status, out);
		goto out;
	}
	{
		const struct fbx_console_rep *p = &rep[0];
		json_object_set_new(o, "engine",
		    p->err != FBX_OK ? json_null() :
		    json_pack("{s:s, s:I, s:i, s:I, s:I, s:I, s:I, s:b, s:s}",
		        "version", p->u.pong.version, "uptime_ms",
		        (json_int_t)p->u.pong.uptime_ms, "gateways",
		        (int)p->u.pong.gateways, "commands_active",
		        (json_int_t)p->u.pong.commands_active, "queued",
		        (json_int_t)p->u.pong.deliveries_queued, "inflight",
		        (json_int_t)p->u.pong.deliveries_inflight, "pending",
		        (json_int_t)p->u.pong.deliveries_pending, "degraded",
		        p->u.pong.degraded != 0, "admin_org",
		        p->u.pong.admin_org));
	}
	{
		const struct fbx_console_rep *p = &rep[1];
		json_t *a = p->err != FBX_OK ?
		    json_pack("{s:s, s:s}", "state", "unknown", "why",
		        p->errmsg) :
		    json_pack("{s:s, s:I, s:I, s:I, s:s, s:b}", "state",
		        p->u.verify.broken_at != 0 ? "broken" :
		        p->u.verify.complete ? "intact" : "checking",
		        "broken_at", (json_int_t)p->u.verify.broken_at,
		        "verified_seq", (json_int_t)p->u.verify.verified_seq,
		        "head_seq", (json_int_t)p->u.verify.head_seq, "why",
		        p->u.verify.why, "complete",
		        p->u.verify.complete != 0);
		static const char *const qname[Q_PER_ORG] = { "breakers",
			"held", "commands", "fleet", "settling", "rollouts" };
		jmissing = json_array();
		for (int k = 0; k < Q_PER_ORG; k++)
			if (missing[k])
				json_array_append_new(
				    jmissing, json_string(qname[k]));
		json_object_set_new(o, "needs_human",
		    json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o}",
		        "breakers", brk, "held", held, "settling", settling,
		        "paused_rollouts", paused, "approvals",
		        appr != NULL ? appr : json_array(), "audit", a,
		        "held_total", (json_int_t)held_total, "settling_total",
		        (json_int_t)settling_total, "missing", jmissing));
		brk = held = settling = paused = appr = NULL;
	}
	{
		/* a principal of every organisation sees the engine's own
		 * figures; anyone else the sum of its organisations' recent
		 * commands */
		int engine = w->all_orgs && snap != NULL;
		const uint64_t *d = engine ? snap->dlv : funnel;
		json_object_set_new(o, "funnel",
		    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		        "scope",
		        engine ? "every command in memory (not finished)" :
		        funnel_cut ? "commands of the last hour in your "
		                     "organisations (the first 100 of each: "
		                     "fuseboxctl summary counts them all)" :
		                     "commands of the last hour in your "
		                     "organisations",
		        "queued", (json_int_t)d[FBX_D_QUEUED], "in_flight",
		        (json_int_t)(d[FBX_D_SENT] + d[FBX_D_ACCEPTED]),
		        "pending_offline", (json_int_t)d[FBX_D_PENDING],
		        "succeeded", (json_int_t)d[FBX_D_SUCCEEDED], "failed",
		        (json_int_t)d[FBX_D_FAILED], "expired",
		        (json_int_t)d[FBX_D_EXPIRED], "cancelled",
		        (json_int_t)d[FBX_D_CANCELLED], "superseded",
		        (json_int_t)d[FBX_D_SUPERSEDED]));
	}
	json_object_set_new(o, "rollouts", rollouts);
	rollouts = NULL;
	{
		json_t *gl = json_null();
		if (w->all_orgs && snap != NULL) {
			gl = json_array();
			for (size_t i = 0; i < snap->ngw; i++)
				json_array_append_new(gl,
				    json_pack("{s:s, s:I, s:I, s:I}", "id",
				        snap->gw[i].id, "window",
				        (json_int_t)snap->gw[i].window,
				        "inflight",
				        (json_int_t)snap->gw[i].inflight, "bytes",
				        (json_int_t)snap->gw[i].bytes));
		}
		json_object_set_new(o, "gateways",
		    json_pack("{s:i, s:o}", "connected",
		        rep[0].err == FBX_OK ? (int)rep[0].u.pong.gateways :
		                               -1,
		        "list", gl));
	}
	json_object_set_new(o, "top_orgs", top);
	top = NULL;
	{
		/* fleet health: the organisations in view, and for a
		 * principal of every organisation the fleet-wide histogram
		 * of the engine's last pass */
		json_t *orgs = json_array(), *needs = json_array(),
		       *wide = json_null();
		for (size_t i = 0; i < v.n; i++) {
			const struct fbx_console_rep *q =
			    &rep[2 + i * Q_PER_ORG + Q_FLEET];
			if (q->err == FBX_OK)
				json_array_append_new(orgs,
				    fleet_json(v.orgs[i], &q->u.fleet, needs));
		}
		if (w->all_orgs && snap != NULL && snap->fleet_as_of_ms > 0) {
			json_t *h = json_array();
			for (int i = 0; i < FBX_FLEET_BUCKETS; i++)
				json_array_append_new(h,
				    json_integer(
				        (json_int_t)snap->fleet_hours[i]));
			wide = json_pack("{s:I, s:o, s:I}", "as_of_ms",
			    (json_int_t)snap->fleet_as_of_ms, "offline_hours", h,
			    "orgs_alerting",
			    (json_int_t)snap->fleet_orgs_alerting);
		}
		json_object_set_new(o, "fleet_health",
		    json_pack("{s:b, s:o, s:o, s:o}", "available", 1,
		        "fleet_wide", wide, "orgs", orgs, "alerts", needs));
	}
	done(o, 200, status, out);
out:
	for (size_t i = 0; rep != NULL && i < n; i++)
		fbx_console_rep_free(&rep[i]);
	fbx_console_rep_free(&pong);
	free(rep);
	free(req);
	free(sum);
	json_decref(errors);
	json_decref(notes);
	json_decref(brk);
	json_decref(held);
	json_decref(settling);
	json_decref(rollouts);
	json_decref(paused);
	json_decref(grows);
	json_decref(gsettle);
	json_decref(moved);
	json_decref(appr);
	json_decref(top);
}

/* ------------------------------------------------------------- actions */

/* str_field - a string member, "" when absent; -1 when it is not a
 * string or does not fit cap */
static int
str_field(json_t *o, const char *name, char *buf, size_t cap)
{
	json_t *v = json_object_get(o, name);
	const char *s;

	buf[0] = '\0';
	if (v == NULL || json_is_null(v))
		return 0;
	s = json_string_value(v);
	if (s == NULL || strlen(s) >= cap)
		return -1;
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

/* bool_field - a boolean member, 0 when absent; -1 when it is anything
 * but true or false ("true", 1 or null is no answer: a discard or a
 * global action taken for its opposite would release a storm or act on
 * one organisation) */
static int
bool_field(json_t *o, const char *name, int *v)
{
	json_t *x = json_object_get(o, name);

	*v = 0;
	if (x == NULL)
		return 0;
	if (!json_is_boolean(x))
		return -1;
	*v = json_is_true(x);
	return 0;
}

static void ov_stale(void);

static void
action(fbx_webgate *g, const struct fbx_web_who *w, const char *body,
    size_t len, unsigned *status, char **out)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	json_t *in, *res = NULL;
	json_error_t jerr;
	char act[16], note[FBX_NOTE_MAX], what[240];
	int global, discard;
	json_int_t cmd;

	in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (in == NULL || !json_is_object(in)) {
		snprintf(what, sizeof(what), "the body is not a JSON object: %s",
		    in == NULL ? jerr.text : "");
		json_decref(in);
		fail(400, "INVALID", what, status, out);
		return;
	}
	memset(&req, 0, sizeof(req));
	if (bool_field(in, "global", &global) != 0 ||
	    bool_field(in, "discard", &discard) != 0) {
		json_decref(in);
		fail(400, "INVALID", "global and discard are true or false",
		    status, out);
		return;
	}
	cmd = json_integer_value(json_object_get(in, "command_id"));
	if (str_field(in, "action", act, sizeof(act)) != 0 ||
	    str_field(in, "note", note, sizeof(note)) != 0 ||
	    str_field(in, "org", req.org, sizeof(req.org)) != 0) {
		json_decref(in);
		fail(400, "INVALID",
		    "action, note and org are strings (a note is at most 159 "
		    "bytes)",
		    status, out);
		return;
	}
	if (strspn(note, " \t") == strlen(note)) {
		json_decref(in);
		fail(400, "INVALID",
		    "every action needs a note: why, for the audit log", status,
		    out);
		return;
	}
	/* no organisation: a principal of exactly one means that one; any
	 * other names one (a principal of several once acted on the first
	 * of its scope, an organisation nobody named), except for a global
	 * breaker (the engine checks the admin organisation's rules with
	 * the placeholder) */
	if (req.org[0] == '\0' && w->norgs != 1 &&
	    !(global && (strcmp(act, "trip") == 0 ||
	                 strcmp(act, "reset") == 0))) {
		json_decref(in);
		fail(400, "INVALID",
		    "org: the organisation this action is for (or global: "
		    "true for a global breaker)",
		    status, out);
		return;
	}
	/* a global breaker is no organisation's: the engine does not look
	 * the one named up (a form's leftover), but with --admin-org it
	 * must be that organisation, so it is passed on as named */
	if (req.org[0] == '\0')
		snprintf(req.org, sizeof(req.org), "%s",
		    w->norgs > 0 ? w->orgs[0] : "_web");
	if (strcmp(act, "trip") == 0 || strcmp(act, "reset") == 0) {
		req.kind = FBX_CREQ_BREAKER;
		req.u.breaker.op =
		    act[0] == 't' ? FBX_BRK_TRIP : FBX_BRK_RESET;
		req.u.breaker.global = global;
		if (act[0] == 'r')
			req.u.breaker.on_reset =
			    discard ? FBX_RESET_DISCARD : FBX_RESET_RELEASE;
		snprintf(req.u.breaker.note, sizeof(req.u.breaker.note), "%s",
		    note);
		if (str_field(in, "reason", req.u.breaker.reason,
		        sizeof(req.u.breaker.reason)) != 0 ||
		    req.u.breaker.reason[0] == '\0') {
			json_decref(in);
			fail(400, "INVALID",
			    "a breaker action needs a reason (1 to 64 of "
			    "A-Z a-z 0-9 . _ : @ -)",
			    status, out);
			return;
		}
	} else if (strcmp(act, "approve") == 0) {
		req.kind = FBX_CREQ_APPROVE;
		snprintf(req.u.approve.note, sizeof(req.u.approve.note), "%s",
		    note);
		if (str_field(in, "token", req.u.approve.token,
		        sizeof(req.u.approve.token)) != 0 ||
		    req.u.approve.token[0] == '\0') {
			json_decref(in);
			fail(400, "INVALID", "approve needs the token", status,
			    out);
			return;
		}
	} else if (strcmp(act, "pause") == 0 || strcmp(act, "resume") == 0 ||
	    strcmp(act, "advance") == 0) {
		/* advance: a rollout awaiting approval of its next group
		 * (fuseboxctl rollout approve; the approver role) */
		req.kind = FBX_CREQ_ROLLOUT;
		req.u.rollout.op = act[0] == 'p' ? FBX_ROP_PAUSE
		    : act[0] == 'r'              ? FBX_ROP_RESUME
		                                 : FBX_ROP_APPROVE;
		req.u.rollout.command_id = cmd > 0 ? (uint64_t)cmd : 0;
		snprintf(req.u.rollout.note, sizeof(req.u.rollout.note), "%s",
		    note);
		if (cmd <= 0) {
			json_decref(in);
			fail(400, "INVALID", "a rollout action needs command_id",
			    status, out);
			return;
		}
	} else {
		json_decref(in);
		fail(400, "INVALID",
		    "action: one of trip, reset, approve, pause, resume, "
		    "advance",
		    status, out);
		return;
	}
	json_decref(in);
	if (fbx_webgate_call(g, w, &req, 1, &rep, FBX_WEBAPI_TIMEOUT_MS) !=
	    FBX_OK) {
		fail(503, "UNREACHABLE", "the engine is not serving", status,
		    out);
		return;
	}
	if (rep.err != FBX_OK) {
		fail_rep(&rep, status, out);
		fbx_console_rep_free(&rep);
		return;
	}
	if (req.kind == FBX_CREQ_BREAKER) {
		json_t *a = json_array();
		for (size_t i = 0; i < rep.u.breaker.n; i++)
			json_array_append_new(a, breaker_json(&rep.u.breaker.b[i]));
		res = json_pack("{s:b, s:s, s:o, s:I, s:I, s:I, s:s}", "ok", 1,
		    "action", act, "breakers", a, "released",
		    (json_int_t)rep.u.breaker.released, "discarded",
		    (json_int_t)rep.u.breaker.discarded, "held_again",
		    (json_int_t)rep.u.breaker.held_again, "cert_due",
		    rep.u.breaker.cert_due);
	} else if (req.kind == FBX_CREQ_APPROVE) {
		res = json_pack("{s:b, s:s, s:s, s:s, s:I}", "ok", 1, "action",
		    act, "token", rep.u.approve.token, "submitter",
		    rep.u.approve.submitter, "expires_ms",
		    (json_int_t)rep.u.approve.expires_ms);
	} else {
		res = json_pack("{s:b, s:s, s:I, s:s}", "ok", 1, "action", act,
		    "command_id", (json_int_t)rep.u.rollout.command_id,
		    "state", fbx_rollout_state_name(rep.u.rollout.st.state));
	}
	fbx_console_rep_free(&rep);
	ov_stale(); /* what was shared does not show it */
	done(res, 200, status, out);
}

/* ---------------------------------------------------------- limits ----
 * One overview is about 290 engine requests (finding 5), so an overview
 * is shared: the answer for a principal (name, key, roles and
 * organisation scope) is kept OV_TTL_MS, requests for it meanwhile get
 * it, and requests arriving while it is computed wait for that one
 * (single-flight). At most OV_RUNNING_MAX overviews are computed at once
 * engine-wide; a request that cannot start one within OV_WAIT_MS is
 * answered 503 (Retry-After). A successful action makes every kept
 * overview stale (its author sees its effect next). Each session token
 * may make RL_ALL_BURST API requests at once and RL_ALL_PER_S a second,
 * and RL_ACT_BURST / RL_ACT_PER_S of them actions; beyond, 429. Kept as
 * JSON text under ov_mu (rl_mu), for at most OV_CACHE_N principals
 * (RL_TOKENS_N tokens, by a hash of the token), least recently used
 * dropped. */
#define OV_TTL_MS 2000
#define OV_RUNNING_MAX 2
#define OV_WAIT_MS FBX_WEBAPI_TIMEOUT_MS
#define OV_CACHE_N 64
#define RL_TOKENS_N 256
#define RL_ALL_BURST 20
#define RL_ALL_PER_S 10
#define RL_ACT_BURST 5
#define RL_ACT_PER_S 5

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pthread_mutex_t rl_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rl_slot {
	uint64_t h; /* the token's hash, 0 = free */
	int64_t at_ms; /* buckets as of (monotonic) */
	double all, act; /* requests left */
} rl_tab[RL_TOKENS_N];

static uint64_t
tok_hash(const char *tok)
{
	uint64_t h = 1469598103934665603ull;

	for (; *tok != '\0'; tok++)
		h = (h ^ (uint8_t)*tok) * 1099511628211ull;
	return h != 0 ? h : 1;
}

/* rate_take - whether tok may make one more request (an action when
 * act): takes it from its buckets */
static int
rate_take(const char *tok, int act)
{
	uint64_t h = tok_hash(tok);
	int64_t now = mono_ms();
	struct rl_slot *s = NULL, *lru = &rl_tab[0];
	int ok;

	pthread_mutex_lock(&rl_mu);
	for (int i = 0; i < RL_TOKENS_N && s == NULL; i++)
		if (rl_tab[i].h == h)
			s = &rl_tab[i];
	for (int i = 0; i < RL_TOKENS_N && s == NULL && lru->h != 0; i++)
		if (rl_tab[i].h == 0 || rl_tab[i].at_ms < lru->at_ms)
			lru = &rl_tab[i];
	if (s == NULL) {
		s = lru;
		s->h = h;
		s->at_ms = now;
		s->all = RL_ALL_BURST;
		s->act = RL_ACT_BURST;
	} else if (now > s->at_ms) {
		double dt = (double)(now - s->at_ms) / 1000.0;
		s->all += dt * RL_ALL_PER_S;
		if (s->all > RL_ALL_BURST)
			s->all = RL_ALL_BURST;
		s->act += dt * RL_ACT_PER_S;
		if (s->act > RL_ACT_BURST)
			s->act = RL_ACT_BURST;
		s->at_ms = now;
	}
	ok = s->all >= 1.0 && (!act || s->act >= 1.0);
	if (ok) {
		s->all -= 1.0;
		if (act)
			s->act -= 1.0;
	}
	pthread_mutex_unlock(&rl_mu);
	return ok;
}

static pthread_mutex_t ov_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ov_cv = PTHREAD_COND_INITIALIZER;
static unsigned ov_running;  /* overviews being computed */
static uint64_t ov_gen = 1;  /* bumped by each action done */
static struct ov_entry {
	struct fbx_web_who who; /* the key (expires_ms 0), principal "" = free */
	int64_t used_ms;        /* last asked for (monotonic) */
	int64_t at_ms;          /* text computed at (monotonic) */
	uint64_t gen;           /* ov_gen when its computation began */
	char *text;             /* the answer without "who"; NULL = none */
	unsigned status;
	int busy;               /* being computed */
	unsigned waiters;
} ov_tab[OV_CACHE_N];

/* ov_slot - the entry for w's principal and scope, else a free or the
 * least recently used idle one (NULL when none is idle); under ov_mu */
static struct ov_entry *
ov_slot(const struct fbx_web_who *k, int64_t now)
{
	struct ov_entry *lru = NULL;

	for (int i = 0; i < OV_CACHE_N; i++) {
		struct ov_entry *e = &ov_tab[i];
		if (e->who.principal[0] != '\0' &&
		    memcmp(&e->who, k, sizeof(*k)) == 0)
			return e;
		/* what is past its time is of no use: dropped */
		if (e->text != NULL && !e->busy && now - e->at_ms >= OV_TTL_MS) {
			free(e->text);
			e->text = NULL;
		}
		if (!e->busy && e->waiters == 0 &&
		    (lru == NULL || e->who.principal[0] == '\0' ||
		        (lru->who.principal[0] != '\0' &&
		            e->used_ms < lru->used_ms)))
			lru = e;
	}
	if (lru != NULL) {
		free(lru->text);
		memset(lru, 0, sizeof(*lru));
		memcpy(&lru->who, k, sizeof(*k));
	}
	return lru;
}

/* with_who - the kept answer text for w: its "who" (the token's own
 * expiry) first, as overview() wrote it */
static void
with_who(const struct fbx_web_who *w, unsigned st, const char *text,
    unsigned *status, char **out)
{
	json_t *wo = who_json(w);
	char *who = wo != NULL ? json_dumps(wo, JSON_COMPACT) : NULL, *s = NULL;
	size_t n;

	json_decref(wo);
	if (st != 200 || text[0] != '{' || text[1] == '}' || who == NULL) {
		free(who);
		*status = st;
		*out = strdup(text);
		if (*out == NULL)
			fail(500, "NOMEM", "out of memory", status, out);
		return;
	}
	n = strlen(who) + strlen(text) + 16;
	s = malloc(n);
	if (s != NULL)
		snprintf(s, n, "{\"who\":%s,%s", who, text + 1);
	free(who);
	if (s == NULL) {
		fail(500, "NOMEM", "out of memory", status, out);
		return;
	}
	*status = st;
	*out = s;
}

static void
timed_wait(int64_t deadline_ms)
{
	struct timespec ts;
	int64_t left = deadline_ms - mono_ms();

	if (left <= 0)
		return;
	if (left > 200) /* wakes are broadcast; a slice bounds a miss */
		left = 200;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (left % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&ov_cv, &ov_mu, &ts);
}

/* shared_overview - overview(), kept and shared as said above */
static void
shared_overview(fbx_webgate *g, const struct fbx_web_who *w,
    const struct fbx_metrics *snap, unsigned *status, char **out)
{
	struct fbx_web_who *k = malloc(sizeof(*k));
	struct ov_entry *e;
	int64_t t0 = mono_ms(), deadline = t0 + OV_WAIT_MS;
	uint64_t my_gen, run_gen = 0;
	char *text = NULL;
	unsigned st = 500;
	int run = 0;

	if (k == NULL) {
		fail(500, "NOMEM", "out of memory", status, out);
		return;
	}
	memcpy(k, w, sizeof(*k));
	k->expires_ms = 0; /* the token's, not the principal's */
	pthread_mutex_lock(&ov_mu);
	my_gen = ov_gen;
	e = ov_slot(k, t0);
	if (e != NULL)
		e->used_ms = t0;
	for (;;) {
		int64_t now = mono_ms();
		if (e != NULL && e->text != NULL && e->gen >= my_gen &&
		    now - e->at_ms < OV_TTL_MS) {
			text = strdup(e->text);
			st = e->status;
			break;
		}
		if ((e == NULL || !e->busy) && ov_running < OV_RUNNING_MAX) {
			run = 1;
			run_gen = ov_gen;
			ov_running++;
			if (e != NULL)
				e->busy = 1;
			break;
		}
		if (now >= deadline)
			break;
		if (e != NULL)
			e->waiters++;
		timed_wait(deadline);
		if (e != NULL)
			e->waiters--;
	}
	pthread_mutex_unlock(&ov_mu);
	if (run) {
		overview(g, w, snap, &st, &text);
		pthread_mutex_lock(&ov_mu);
		ov_running--;
		if (e != NULL) {
			e->busy = 0;
			if (st != 500 && text != NULL) {
				char *keep = strdup(text);
				if (keep != NULL) {
					free(e->text);
					e->text = keep;
					e->status = st;
					e->gen = run_gen;
					e->at_ms = mono_ms();
				}
			}
		}
		pthread_cond_broadcast(&ov_cv);
		pthread_mutex_unlock(&ov_mu);
	} else if (text == NULL && st == 500) {
		free(k);
		fail(503, "BUSY",
		    "overviews are being computed for others: try again in a "
		    "few seconds",
		    status, out);
		return;
	}
	free(k);
	if (text == NULL) {
		fail(500, "NOMEM", "out of memory", status, out);
		return;
	}
	with_who(w, st, text, status, out);
	free(text);
}

/* ov_stale - an action was done: what is kept is stale */
static void
ov_stale(void)
{
	pthread_mutex_lock(&ov_mu);
	ov_gen++;
	pthread_mutex_unlock(&ov_mu);
}

/* --------------------------------------------------------------- entry */

const char *
fbx_webapi_allow(const char *path)
{
	if (strcmp(path, "/api/whoami") == 0 ||
	    strcmp(path, "/api/overview") == 0)
		return "GET, HEAD";
	if (strcmp(path, "/api/action") == 0)
		return "POST";
	if (strcmp(path, "/api/session") == 0)
		return "POST, DELETE";
	return NULL;
}

const char *
fbx_webapi_bearer(const char *authorization)
{
	const char *tok;

	if (authorization == NULL ||
	    strncasecmp(authorization, "Bearer ", 7) != 0)
		return NULL;
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	return tok;
}

void
fbx_webapi_serve(fbx_webgate *g, const struct fbx_metrics *snap,
    const char *method, const char *path, const char *authorization,
    const char *body, size_t len, unsigned *status, char **out)
{
	struct fbx_web_who *w = NULL;
	const char *tok;
	int post = strcmp(method, "POST") == 0;
	int claim = strcmp(path, "/api/session") == 0;
	int end = claim && strcmp(method, "DELETE") == 0;

	if (fbx_webapi_allow(path) == NULL) {
		fail(404, "NOT_FOUND",
		    "the API has /api/whoami, /api/overview (GET), "
		    "/api/action (POST) and /api/session (POST, DELETE)",
		    status, out);
		return;
	}
	if (!end && !post && strcmp(method, "GET") != 0) {
		fail(405, "METHOD",
		    "the API takes GET (/api/whoami, /api/overview), POST "
		    "(/api/action, /api/session) and DELETE (/api/session: "
		    "sign out)",
		    status, out);
		return;
	}
	if (!end && post != (strcmp(path, "/api/action") == 0 || claim)) {
		fail(405, "METHOD",
		    post ? "GET this one"
		         : claim ? "POST the login address's token to exchange "
		                   "it, DELETE to sign out"
		                 : "POST an action",
		    status, out);
		return;
	}
	if (g == NULL) {
		fail(503, "UNAVAILABLE",
		    "the engine is starting (recovering the store) or "
		    "stopping",
		    status, out);
		return;
	}
	if ((tok = fbx_webapi_bearer(authorization)) == NULL) {
		fail(401, "UNAUTHENTICATED",
		    "send Authorization: Bearer TOKEN (fuseboxctl web login)",
		    status, out);
		return;
	}
	if (end) {
		/* sign out: this session ends, whoever's key it was */
		if (fbx_webgate_end(g, tok) == FBX_OK)
			done(json_pack("{s:b}", "ended", 1), 200, status, out);
		else
			fail(401, "UNAUTHENTICATED",
			    "no such session: it ended already (signed out, "
			    "expired, revoked or rotated, or the daemon "
			    "restarted)",
			    status, out);
		return;
	}
	w = malloc(sizeof(*w));
	if (w == NULL) {
		fail(500, "NOMEM", "out of memory", status, out);
		return;
	}
	if (claim) {
		/* the login address's token (the browser keeps it in its
		 * history) for a fresh one that only this tab holds */
		char fresh[FBX_WEB_TOKEN_HEX + 1];
		int rc = fbx_webgate_claim(g, tok, fresh, w);
		if (rc == FBX_OK) {
			/* written once, here, and wiped by the HTTP thread
			 * once sent (no copy left in jansson's buffers) */
			size_t n = sizeof(fresh) + 48;
			char *s = malloc(n);
			if (s != NULL) {
				snprintf(s, n, "{\"token\":\"%s\",\"expires_ms\":%lld}",
				    fresh, (long long)w->expires_ms);
				*status = 200;
				*out = s;
			} else {
				fail(500, "NOMEM", "out of memory", status, out);
			}
			OPENSSL_cleanse(fresh, sizeof(fresh));
		} else {
			fail(401, "UNAUTHENTICATED",
			    rc == FBX_ESTATE
			        ? "this session was opened already"
			        : "this login address was opened already (in "
			          "another tab or browser: each opens one), has "
			          "expired, or its principal was revoked or "
			          "rotated: fuseboxctl web login",
			    status, out);
		}
		goto out;
	}
	if (fbx_webgate_who(g, tok, w) != FBX_OK) {
		fail(401, "UNAUTHENTICATED",
		    "the session token is unknown (signed out, the daemon "
		    "restarted: sessions live in its memory, or it is another "
		    "node's: each node of a cluster keeps its own), expired, "
		    "or its principal was revoked or rotated: fuseboxctl web "
		    "login",
		    status, out);
		goto out;
	}
	if (!rate_take(tok, post)) {
		fail(429, "RATE_LIMITED",
		    post ? "too many actions with this session: at most "
		           "5 a second; try again in a second" :
		           "too many requests with this session: at most "
		           "10 a second; try again in a second",
		    status, out);
		goto out;
	}
	if (strcmp(path, "/api/whoami") == 0)
		done(who_json(w), 200, status, out);
	else if (post)
		action(g, w, body != NULL ? body : "", len, status, out);
	else
		shared_overview(g, w, snap, status, out);
out:
	free(w);
}
