/*
 * rollback.c: recovery from the journal: per-device policy memory,
 * rollback plans and their execution (cancel, discard, compensate) in
 * slices. A run of slices (one organisation's, or every one's) is
 * rollback_run.c's; which commands a run selects, and what a plan must
 * know beyond them (later changes, earlier locks), rollback_select.c's;
 * the sliced selection walk is shared with replay.c (rollback_int.h);
 * the export is export.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "engine_int.h"
#include "rollback_int.h"

/* --------------------------------------------------- policy memory */

/* For set_policy the engine remembers, per device and key, the last
 * values successfully applied and by which command, so that a rollback
 * can restore the value from before. Payload of set_policy: lines of
 * "key=value" (key an identifier, value up to 64 bytes). */
#define POL_HIST 4

struct pol_rec {
	uint32_t version;
	uint32_t n;
	struct {
		uint64_t cmd;
		char value[FBX_ID_MAX + 1];
	} h[POL_HIST]; /* newest first */
};

typedef int (*pol_fn)(void *arg, const char *key, const char *value);

/* policy_each - call fn for each key=value line of a payload. */
static int
policy_each(const uint8_t *payload, uint32_t len, pol_fn fn, void *arg)
{
	char line[160];
	uint32_t i = 0;

	while (i < len) {
		uint32_t j = i, n;
		char *eq;
		while (j < len && payload[j] != '\n')
			j++;
		n = j - i;
		if (n > 0 && n < sizeof(line)) {
			memcpy(line, payload + i, n);
			line[n] = '\0';
			eq = strchr(line, '=');
			if (eq != NULL) {
				*eq = '\0';
				if (fbx_id_valid(line) &&
				    strlen(eq + 1) <= FBX_ID_MAX) {
					int rc = fn(arg, line, eq + 1);
					if (rc != 0)
						return rc;
				}
			}
		}
		i = j + 1;
	}
	return 0;
}

struct pol_ctx {
	struct fbx_engine *e;
	const char *org, *device;
	uint64_t cmd;
};

static int
pol_record_cb(void *arg, const char *key, const char *value)
{
	struct pol_ctx *p = arg;
	struct pol_rec r;
	char k[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	fbxi_note_printf(k, sizeof(k), "pol/%s/%s/%s", p->org, p->device, key);
	rc = fbx_store_kv_get(p->e->txn, k, &r, sizeof(r), &len);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && len != sizeof(r))) {
		memset(&r, 0, sizeof(r));
		r.version = 1;
	} else if (rc != FBX_OK) {
		fbxi_set_err(p->e, rc);
		return 1;
	}
	memmove(&r.h[1], &r.h[0], sizeof(r.h[0]) * (POL_HIST - 1));
	r.h[0].cmd = p->cmd;
	snprintf(r.h[0].value, sizeof(r.h[0].value), "%s", value);
	if (r.n < POL_HIST)
		r.n++;
	rc = fbx_store_kv_put(p->e->txn, k, &r, sizeof(r));
	if (rc != FBX_OK) {
		fbxi_set_err(p->e, rc);
		return 1;
	}
	return 0;
}

/* policy_applied - a set_policy delivery succeeded on a device. */
void
fbxi_policy_applied(struct fbx_engine *e, struct cmdc *cc, const char *device)
{
	struct pol_ctx p = { e, cc->c.org, device, cc->c.id };

	(void)policy_each(cc->c.payload, cc->c.payload_len, pol_record_cb, &p);
}

struct pol_prev_ctx {
	struct fbx_engine *e;
	const char *org, *device;
	uint64_t cmd;
	char out[512];
	size_t used;
	int unknown; /* history no longer reaches back to cmd */
	int changed; /* a later command changed the key since */
};

static int
pol_prev_cb(void *arg, const char *key, const char *value)
{
	struct pol_prev_ctx *p = arg;
	struct pol_rec r;
	char k[FBX_KV_KEY_MAX];
	size_t len = 0;
	uint32_t i;
	int rc, n;

	(void)value;
	fbxi_note_printf(k, sizeof(k), "pol/%s/%s/%s", p->org, p->device, key);
	rc = fbx_store_kv_get(p->e->txn, k, &r, sizeof(r), &len);
	if (rc != FBX_OK || len != sizeof(r)) {
		p->unknown = 1;
		return 0;
	}
	for (i = 0; i < r.n && i < POL_HIST; i++) {
		if (r.h[i].cmd == p->cmd)
			break;
	}
	if (i == r.n || i == POL_HIST) {
		p->unknown = 1;
		return 0;
	}
	if (i > 0)
		p->changed = 1;
	/* the value before: the next older entry, or unset */
	n = snprintf(p->out + p->used, sizeof(p->out) - p->used, "%s=%s\n",
	    key, i + 1 < r.n ? r.h[i + 1].value : "");
	if (n > 0 && (size_t)n < sizeof(p->out) - p->used)
		p->used += (size_t)n;
	return 0;
}

/* ------------------------------------------------------------ rollback */

struct comp_group {
	uint8_t type;
	uint8_t *payload;
	uint32_t plen;
	fbx_id *devs;
	uint64_t *src; /* source delivery ids */
	size_t n, cap;
};

/* fbxi_rb_budget - deliveries and commands one slice looks at. */
void
fbxi_rb_budget(const struct fbx_engine *e, uint32_t *cmds, uint32_t *dlvs)
{
	uint32_t d = e->o.rollback_slice ? e->o.rollback_slice
	                                 : FBX_RB_SLICE_DEFAULT;

	*dlvs = d;
	*cmds = d / 10 > 0 ? d / 10 : 1;
}

static int
rb_add_id(struct rb_ctx *r, uint64_t id)
{
	if (r->nids == r->idcap) {
		size_t ncap = r->idcap ? r->idcap * 2 : 64;
		uint64_t *n = realloc(r->ids, ncap * sizeof(*n));
		if (n == NULL)
			return FBX_ENOMEM;
		r->ids = n;
		r->idcap = ncap;
	}
	r->ids[r->nids++] = id;
	if (r->first_cmd == 0)
		r->first_cmd = id;
	r->last_cmd = id;
	return FBX_OK;
}

static void
rb_row(struct rb_ctx *r, const struct fbx_command *c, uint64_t dlv,
    const char *dev, int state, int action, int comp, const char *detail)
{
	struct fbx_rb_row *w;

	r->plan.per_action[action]++;
	if (r->plan.nrows >= r->rows_cap)
		return;
	w = &r->plan.rows[r->plan.nrows++];
	memset(w, 0, sizeof(*w));
	w->command_id = c->id;
	w->delivery_id = dlv;
	snprintf(w->device, sizeof(w->device), "%s", dev);
	w->type = c->type;
	w->state = (uint8_t)state;
	w->action = (uint8_t)action;
	w->comp_type = (uint8_t)comp;
	snprintf(w->detail, sizeof(w->detail), "%s", detail ? detail : "");
}

/* rb_bo_row - a delivery of a command before the incident's onset: it
 * is listed with the action it would get, and left. dlv 0: a target of
 * a command never expanded (held or settling), listed but no delivery
 * to count. */
static void
rb_bo_row(struct rb_ctx *r, const struct fbx_command *c, uint64_t dlv,
    const char *dev, int state, int action)
{
	struct fbx_rb_row *w;

	if (dlv != 0)
		r->plan.before_onset_deliveries++;
	r->plan.bo_rows_total++;
	if (r->plan.nbo_rows >= r->bo_cap)
		return;
	w = &r->plan.bo_rows[r->plan.nbo_rows++];
	memset(w, 0, sizeof(*w));
	w->command_id = c->id;
	w->delivery_id = dlv;
	snprintf(w->device, sizeof(w->device), "%s", dev);
	w->type = c->type;
	w->state = (uint8_t)state;
	w->action = (uint8_t)action;
	w->comp_type = (uint8_t)(action == FBX_RB_COMPENSATE ||
	            action == FBX_RB_DONE_BEFORE
	        ? fbxi_rb_compensation_of(c->type)
	        : 0);
	snprintf(w->detail, sizeof(w->detail),
	    "before onset: left (include_before_onset, fuseboxctl "
	    "--include-before-onset, undoes it)");
}

/* rb_bo_action - what the rollback would do to a delivery before the
 * onset if it were selected (changed-since and policy history aside). */
static int
rb_bo_action(struct rb_ctx *r, const struct fbx_command *c,
    const struct fbx_delivery *d)
{
	int rc;

	switch (d->state) {
	case FBX_D_QUEUED:
	case FBX_D_PENDING:
		return FBX_RB_CANCEL;
	case FBX_D_SENT:
	case FBX_D_ACCEPTED:
	case FBX_D_SUCCEEDED:
		if (fbxi_rb_irreversible(c->type))
			return FBX_RB_IRREVERSIBLE;
		if (fbxi_rb_compensation_of(c->type) == FBX_CMD_NONE)
			return FBX_RB_NOTHING;
		rc = fbxi_comp_get(r->e->txn, c->org, d->id, NULL);
		if (rc == FBX_OK)
			return FBX_RB_DONE_BEFORE;
		if (rc != FBX_ENOT_FOUND) {
			r->err = rc;
			return FBX_RB_NOTHING;
		}
		return d->state == FBX_D_SUCCEEDED ? FBX_RB_COMPENSATE
		                                   : FBX_RB_IN_FLIGHT;
	default:
		return FBX_RB_NOTHING;
	}
}

static struct comp_group *
rb_group(struct rb_ctx *r, int type, const uint8_t *payload, uint32_t plen)
{
	struct comp_group *g, *ng;

	for (size_t i = 0; i < r->ngroups; i++) {
		g = &r->groups[i];
		if (g->type == type && g->plen == plen &&
		    (plen == 0 || memcmp(g->payload, payload, plen) == 0) &&
		    g->n < FBX_TARGET_IDS_MAX)
			return g;
	}
	ng = realloc(r->groups, (r->ngroups + 1) * sizeof(*ng));
	if (ng == NULL)
		return NULL;
	r->groups = ng;
	g = &r->groups[r->ngroups];
	memset(g, 0, sizeof(*g));
	g->type = (uint8_t)type;
	if (plen > 0) {
		g->payload = malloc(plen);
		if (g->payload == NULL)
			return NULL;
		memcpy(g->payload, payload, plen);
	}
	g->plen = plen;
	r->ngroups++;
	return g;
}

static int
rb_group_add(struct comp_group *g, const char *dev, uint64_t src)
{
	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 64;
		fbx_id *nd = realloc(g->devs, ncap * sizeof(*nd));
		uint64_t *ns;
		if (nd == NULL)
			return FBX_ENOMEM;
		g->devs = nd;
		ns = realloc(g->src, ncap * sizeof(*ns));
		if (ns == NULL)
			return FBX_ENOMEM;
		g->src = ns;
		g->cap = ncap;
	}
	snprintf(g->devs[g->n], sizeof(g->devs[g->n]), "%s", dev);
	g->src[g->n] = src;
	g->n++;
	return FBX_OK;
}

static int
rb_cancel_add(struct rb_ctx *r, uint64_t id, const char *dev, int state)
{
	if (r->ncancel == r->ccap) {
		size_t ncap = r->ccap ? r->ccap * 2 : 256;
		uint64_t *ni = realloc(r->cancel, ncap * sizeof(*ni));
		fbx_id *nd;
		uint8_t *ns;
		if (ni == NULL)
			return FBX_ENOMEM;
		r->cancel = ni;
		nd = realloc(r->cancel_dev, ncap * sizeof(*nd));
		if (nd == NULL)
			return FBX_ENOMEM;
		r->cancel_dev = nd;
		ns = realloc(r->cancel_state, ncap);
		if (ns == NULL)
			return FBX_ENOMEM;
		r->cancel_state = ns;
		r->ccap = ncap;
	}
	r->cancel[r->ncancel] = id;
	snprintf(r->cancel_dev[r->ncancel], sizeof(fbx_id), "%s", dev);
	r->cancel_state[r->ncancel] = (uint8_t)state;
	r->ncancel++;
	return FBX_OK;
}

/* rb_ids_add - append id to a list of deliveries the execution marks
 * (r->sup, r->wd) */
static int
rb_ids_add(uint64_t **v, size_t *n, size_t *cap, uint64_t id)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		uint64_t *ni = realloc(*v, ncap * sizeof(*ni));
		if (ni == NULL)
			return FBX_ENOMEM;
		*v = ni;
		*cap = ncap;
	}
	(*v)[(*n)++] = id;
	return FBX_OK;
}

static int
in_group(struct fbx_engine *e, const char *org, const char *dev,
    const char *group)
{
	struct fbx_device d;

	if (group[0] == '\0')
		return 1;
	if (fbx_store_dev_get(e->txn, org, dev, &d) != FBX_OK)
		return 0;
	for (unsigned i = 0; i < d.ngroups; i++) {
		if (strcmp(d.groups[i], group) == 0)
			return 1;
	}
	return 0;
}

/* rb_carried's bound on the links it follows (and the stack they wait
 * on): each step is a newer command of the same kind for the same
 * device, so only a storm re-locking one device again and again comes
 * near it. Beyond it the delivery is left, and the row says so. */
#define RB_CARRY_MAX 256
/* rb_carried's answer when it cannot tell (too many links, a damaged
 * one): the delivery is left, for the operator to look at */
#define RB_CARRY_UNSURE UINT64_MAX

struct carry_link {
	uint64_t older;
	int64_t expires_ms;
	int rolled_back;
	int chained;
	struct fbxi_sup_origin o;
};

struct carry_ctx {
	struct carry_link stack[RB_CARRY_MAX];
	size_t n;
	int full;
};

static int
carry_push(void *arg, uint64_t older, int64_t expires_ms, int rolled_back,
    int chained, const struct fbxi_sup_origin *o)
{
	struct carry_ctx *k = arg;

	if (k->n == RB_CARRY_MAX) {
		k->full = 1;
		return 1;
	}
	k->stack[k->n].older = older;
	k->stack[k->n].expires_ms = expires_ms;
	k->stack[k->n].rolled_back = rolled_back;
	k->stack[k->n].chained = chained;
	k->stack[k->n].o = *o;
	k->n++;
	return 0;
}

/* rb_carried - delivery d of the selected command r->cur superseded
 * (supersede.h) a delivery of a command the rollback leaves (not
 * selected, or kept before the onset) that still wanted the device at
 * need_ms (its time to live ran past it): d carries what that command
 * would have done to the device (a lock for cause, say), so cancelling
 * or undoing d would take it away too. need_ms is now for a delivery
 * still waiting, the time it was first sent for one sent. An older
 * command this rollback or an earlier one selected (the earlier one's
 * execution flagged the link: fbxi_supersede_rolled_back) passes on its
 * own links; a pruned one counts by its link (its expiry, the flag).
 * @return the carried command's
 * id, 0 for none, RB_CARRY_UNSURE; a store error latches in r->err. */
static uint64_t
rb_carried(struct rb_ctx *r, const struct fbx_delivery *d, int64_t need_ms)
{
	struct carry_ctx *k;
	struct fbx_command oc;
	int64_t oexp;
	uint64_t by = 0;
	unsigned steps = 0;
	int rc, sel;

	if (!fbxi_supersede_applies_cmd(r->cur))
		return 0; /* its deliveries never supersede */
	k = malloc(sizeof(*k));
	if (k == NULL) {
		r->err = FBX_ENOMEM;
		return 0;
	}
	k->n = 0;
	k->full = 0;
	rc = fbxi_supersede_links(r->e, r->cur->org, d->id, carry_push, k);
	while (rc == FBX_OK && by == 0 && k->n > 0) {
		struct carry_link l = k->stack[--k->n];
		if (k->full || ++steps > RB_CARRY_MAX) {
			by = RB_CARRY_UNSURE;
			break;
		}
		rc = fbx_store_cmd_head(r->e->txn, FBX_DLV_CMD(l.older), &oc);
		if (rc == FBX_OK) {
			/* retention deletes a command's deliveries, then its
			 * links, then the command: once the delivery is gone
			 * its links may be too, in part or in full */
			struct fbx_delivery od;
			int drc = fbx_store_dlv_get(r->e->txn, l.older, &od);
			if (drc == FBX_ENOT_FOUND) {
				/* selected by this run, it counts as
				 * rolled back as it would were it all
				 * there */
				if (fbxi_rb_selected(r, &oc) &&
				    !fbxi_rb_bo_kept(r, &oc))
					l.rolled_back = 1;
				fbx_command_clear(&oc);
				rc = FBX_ENOT_FOUND;
			} else if (drc != FBX_OK && drc != FBX_ECORRUPT) {
				fbx_command_clear(&oc);
				rc = drc;
				break;
			}
		}
		if (rc == FBX_ENOT_FOUND && l.o.known && !l.rolled_back) {
			/* pruned in full: its link says what the filter
			 * selects it by */
			struct fbx_command pc;
			memset(&pc, 0, sizeof(pc));
			pc.id = FBX_DLV_CMD(l.older);
			snprintf(pc.org, sizeof(pc.org), "%s", r->cur->org);
			pc.created_ms = l.o.created_ms;
			pc.origin = l.o.origin;
			pc.type = l.o.type;
			memcpy(pc.reason, l.o.reason, sizeof(pc.reason));
			if (fbxi_rb_selected(r, &pc) &&
			    !fbxi_rb_bo_kept(r, &pc))
				l.rolled_back = 1;
		}
		if (rc == FBX_ENOT_FOUND) {
			/* pruned (or being pruned), with its own links:
			 * unless a rollback
			 * selected it, it wanted the device until its
			 * expiry. A rolled-back one (or one a rollback left
			 * open: rbf/) that stood in for an older delivery in
			 * turn (chained) passed that on through links that
			 * are gone: while it would still have wanted the
			 * device, that cannot be told (only with retention
			 * shorter than the time to live) */
			rc = FBX_OK;
			if (l.expires_ms > need_ms && !l.rolled_back) {
				by = FBX_DLV_CMD(l.older);
			} else if (l.expires_ms > need_ms && l.chained) {
				FBX_LOGW("rollback: delivery %llu superseded "
				         "delivery %llu of a rolled-back "
				         "command since pruned, whose own links "
				         "are gone: the delivery is left",
				    (unsigned long long)d->id,
				    (unsigned long long)l.older);
				by = RB_CARRY_UNSURE;
			}
			continue;
		}
		if (rc != FBX_OK)
			break;
		/* selected by this run, or rolled back by an earlier one */
		sel = (fbxi_rb_selected(r, &oc) && !fbxi_rb_bo_kept(r, &oc)) ||
		    l.rolled_back;
		if (!sel && oc.expires_ms > need_ms)
			by = oc.id;
		oexp = oc.expires_ms;
		fbx_command_clear(&oc);
		if (!sel)
			continue; /* an unselected one that expired before
			             need_ms: so did what it superseded */
		/* selected: what it superseded passes on. Its links gone
		 * while it is still there (retention prunes them first)
		 * with one that led on: cannot be told, as when pruned */
		{
			size_t before = k->n;
			rc = fbxi_supersede_links(
			    r->e, r->cur->org, l.older, carry_push, k);
			if (rc == FBX_OK && l.chained && k->n == before &&
			    !k->full && oexp > need_ms) {
				FBX_LOGW("rollback: delivery %llu superseded "
				         "delivery %llu, whose own links are "
				         "being pruned: the delivery is left",
				    (unsigned long long)d->id,
				    (unsigned long long)l.older);
				by = RB_CARRY_UNSURE;
			}
		}
	}
	if (rc == FBX_OK && k->full && by == 0)
		by = RB_CARRY_UNSURE;
	free(k);
	if (rc == FBX_ECORRUPT) {
		FBX_LOGE("rollback: a damaged supersede link of delivery %llu "
		         "(command %llu): the delivery is left",
		    (unsigned long long)d->id,
		    (unsigned long long)r->cur->id);
		return RB_CARRY_UNSURE;
	}
	if (rc != FBX_OK) {
		r->err = rc;
		return 0;
	}
	return by;
}

/* carried_row - the row of a delivery rb_carried says to leave */
static void
carried_row(struct rb_ctx *r, const struct fbx_delivery *d, uint64_t by)
{
	char det[96];

	if (by == RB_CARRY_UNSURE)
		snprintf(det, sizeof(det),
		    "supersedes what cannot be followed (see the log): "
		    "left");
	else
		snprintf(det, sizeof(det),
		    "stands in for command %llu (not rolled back): left",
		    (unsigned long long)by);
	rb_row(r, r->cur, d->id, d->device, d->state, FBX_RB_NOTHING, 0, det);
}

/* first_sent - when d was first handed to a gateway (its history),
 * INT64_MIN when the history may no longer say: a full history keeps its
 * first entry and the newest ones, so its first SENT may be gone and a
 * later one would be found instead */
static int64_t
first_sent(const struct fbx_delivery *d)
{
	if (d->nhist >= FBX_HIST_MAX)
		return INT64_MIN;
	for (unsigned i = 0; i < d->nhist; i++)
		if (d->hist[i].state == FBX_D_SENT)
			return d->hist[i].at_ms;
	return INT64_MIN;
}

static int
rb_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rb_ctx *r = arg;
	const struct fbx_command *c = r->cur;
	const char *grp = r->s->group;
	int comp = fbxi_rb_compensation_of(c->type), rc = FBX_OK, mark = 0;
	uint64_t carried;

	if (!in_group(r->e, c->org, d->device, grp))
		return 0;
	if (r->before) {
		rb_bo_row(r, c, d->id, d->device, d->state,
		    rb_bo_action(r, c, d));
		return r->err != 0; /* a store error stops the walk */
	}
	switch (d->state) {
	case FBX_D_QUEUED:
	case FBX_D_PENDING:
		if ((carried = rb_carried(r, d, r->e->now)) != 0) {
			carried_row(r, d, carried);
			mark = 1; /* left open */
			break;
		}
		if (r->err != 0)
			break;
		rb_row(r, c, d->id, d->device, d->state, FBX_RB_CANCEL, 0,
		    "not sent yet: cancel");
		rc = rb_cancel_add(r, d->id, d->device, d->state);
		break;
	case FBX_D_SENT:
	case FBX_D_ACCEPTED:
	case FBX_D_SUCCEEDED: {
		uint64_t prior;
		int looked = 0;
		mark = d->state != FBX_D_SUCCEEDED; /* left open */
		/* sent once and not accepted: the device can have it only
		 * from the gateway holding it. Withdrawn at execution
		 * (fbxi_dlv_withdrawn), unless it stands in for an older
		 * command or is a lock of a device locked before the onset
		 * (left as if not selected), whatever its row says */
		if (d->state == FBX_D_SENT && d->attempts == 1 &&
		    !fbxi_rb_bo_locked(r, c, d)) {
			carried = rb_carried(r, d, first_sent(d));
			looked = 1;
			if (r->err != 0)
				break;
			/* once: a rollback run again does not withdraw (nor
			 * count) what an earlier one withdrew */
			if (carried == 0 && !fbxi_dlv_withdrawn(r->e, d->id)) {
				rc = rb_ids_add(&r->wd, &r->nwd, &r->wcap,
				    d->id);
				if (rc != FBX_OK)
					break;
			}
		}
		if (fbxi_rb_irreversible(c->type)) {
			rb_row(r, c, d->id, d->device, d->state,
			    FBX_RB_IRREVERSIBLE, 0,
			    "cannot be undone: left as it is");
			break;
		}
		if (comp == FBX_CMD_NONE) {
			rb_row(r, c, d->id, d->device, d->state, FBX_RB_NOTHING,
			    0, "changes nothing to undo");
			break;
		}
		rc = fbxi_comp_get(r->e->txn, c->org, d->id, &prior);
		if (rc == FBX_OK) {
			char det[96];
			snprintf(det, sizeof(det),
			    "compensated before by command %llu",
			    (unsigned long long)prior);
			rb_row(r, c, d->id, d->device, d->state,
			    FBX_RB_DONE_BEFORE, comp, det);
			break;
		}
		if (rc != FBX_ENOT_FOUND)
			break; /* a store error */
		rc = FBX_OK; /* not compensated yet */
		if (fbxi_rb_bo_locked(r, c, d)) {
			/* the device was locked before the onset by a command
			 * the rollback leaves: this lock changed nothing, and
			 * undoing it would unlock a device locked for cause */
			rb_row(r, c, d->id, d->device, d->state, FBX_RB_NOTHING,
			    0, r->onset != 0
			        ? "locked before the onset too: left locked"
			        : "locked before it too: left locked");
			mark = 0; /* kept as if not selected */
			break;
		}
		if (!looked)
			carried = rb_carried(r, d, first_sent(d));
		if (carried != 0) {
			carried_row(r, d, carried);
			break;
		}
		if (r->err != 0)
			break;
		if (d->state != FBX_D_SUCCEEDED) {
			/* In a gateway's hands: a compensation sent now could
			 * overtake it and be undone by it. Nothing is sent and
			 * no comp/ marker written, so the rollback run again
			 * once it has settled compensates it if it succeeded */
			rb_row(r, c, d->id, d->device, d->state,
			    FBX_RB_IN_FLIGHT, comp,
			    "in flight: run again once it has settled");
			break;
		}
		if (c->type == FBX_CMD_SET_POLICY) {
			struct pol_prev_ctx p;
			struct comp_group *g;
			memset(&p, 0, sizeof(p));
			p.e = r->e;
			p.org = c->org;
			p.device = d->device;
			p.cmd = c->id;
			(void)policy_each(c->payload, c->payload_len,
			    pol_prev_cb, &p);
			if (p.unknown && d->state == FBX_D_SUCCEEDED) {
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_IRREVERSIBLE, 0,
				    "previous policy value no longer known");
				break;
			}
			if (p.unknown) {
				/* never applied: nothing to restore yet */
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_NOTHING, 0, "not applied");
				break;
			}
			if (p.changed && !r->include_changed) {
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_CHANGED, 0,
				    "policy changed since by a later command");
				break;
			}
			{
				char det[96];
				snprintf(det, sizeof(det), "restore %.*s",
				    (int)(p.used > 0 ? p.used - 1 : 0), p.out);
				rb_row(r, c, d->id, d->device, d->state,
				    FBX_RB_COMPENSATE, comp, det);
			}
			g = rb_group(r, comp, (const uint8_t *)p.out,
			    (uint32_t)p.used);
			rc = g ? rb_group_add(g, d->device, d->id) : FBX_ENOMEM;
			break;
		}
		if (!r->include_changed &&
		    fbxi_rb_changed_since(r, c, d->device)) {
			rb_row(r, c, d->id, d->device, d->state, FBX_RB_CHANGED,
			    comp, "a later command changed the device: left "
			    "(--include-changed sends the compensation)");
			break;
		}
		rb_row(r, c, d->id, d->device, d->state, FBX_RB_COMPENSATE,
		    comp, fbx_cmd_type_name(comp));
		{
			struct comp_group *g =
			    rb_group(r, comp, c->payload, c->payload_len);
			rc = g ? rb_group_add(g, d->device, d->id) : FBX_ENOMEM;
		}
		break;
	}
	default:
		rb_row(r, c, d->id, d->device, d->state, FBX_RB_NOTHING, 0,
		    fbx_dstate_name(d->state));
		/* superseded: executed, its link tells a later rollback of
		 * the newer command that this one is rolled back too */
		if (d->state == FBX_D_SUPERSEDED &&
		    fbxi_supersede_applies_cmd(c))
			rc = rb_ids_add(&r->sup, &r->nsup, &r->scap, d->id);
		break;
	}
	/* Left open (in a gateway's hands, whatever its row: in flight,
	 * withdrawn, irreversible, nothing to undo, standing in for an older
	 * command; or waiting and standing in): marked at execution (rbf/),
	 * so that should it wait for its device and a newer command of its
	 * kind supersede it there, the link says it is rolled back
	 * (supersede.c replace) and the newer one does not stand in for it
	 * (what it stood in for passes on through its own links: rb_carried
	 * follows a flagged link). Not one kept as locked before the onset:
	 * the rollback leaves it as if it had not selected it. */
	if (rc == FBX_OK && r->err == 0 && mark &&
	    fbxi_supersede_applies_cmd(c))
		rc = rb_ids_add(&r->inf, &r->ninf, &r->icap, d->id);
	if (rc != FBX_OK)
		r->err = rc;
	return r->err != 0;
}

/* rb_walk_dlv_cb - one delivery of a selected command: counted against
 * the budget, then handed to the rollback's or the replay's callback. */
static int
rb_walk_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rb_ctx *r = arg;

	r->seen++;
	r->last_dlv = d->id;
	return r->dlv_fn(r->dlv_arg, d);
}

static int
rb_held_add(struct rb_ctx *r, uint64_t id)
{
	if (r->nheld == r->hcap) {
		size_t ncap = r->hcap ? r->hcap * 2 : 64;
		uint64_t *nh = realloc(r->held, ncap * sizeof(*nh));
		if (nh == NULL)
			return FBX_ENOMEM;
		r->held = nh;
		r->hcap = ncap;
	}
	r->held[r->nheld++] = id;
	return FBX_OK;
}

/* rb_visit - a selected command from delivery index idx, within the
 * budget. Sets r->stopped and r->next when it stops inside it.
 * @return FBX_OK; FBX_ENOT_FOUND when the command is gone or not the
 * organisation's; a store error. */
static int
rb_visit(struct rb_ctx *r, uint64_t id, uint32_t idx)
{
	struct fbx_command c;
	struct cmdc *cc;
	uint32_t nd, limit;
	uint64_t to;
	int rc;

	rc = fbx_store_cmd_get(r->e->txn, id, &c);
	if (rc != FBX_OK)
		return rc;
	if (strcmp(c.org, r->org) != 0) {
		fbx_command_clear(&c);
		return FBX_ENOT_FOUND;
	}
	/* the live state is in the cache */
	cc = fbxi_cmd_find(r->e, id);
	nd = c.ndeliveries;
	if (cc != NULL) {
		c.state = cc->c.state;
		if (cc->c.ndeliveries > nd)
			nd = cc->c.ndeliveries;
	}
	r->before = r->onset != 0 && c.created_ms < r->onset;
	if (r->before && r->for_replay)
		goto out; /* a replay selects from the onset */
	if (idx == 0 && r->before) {
		/* discarded before it reached any device (an earlier
		 * incident's storm, discarded at its reset within the
		 * window): no baseline lock, nothing to leave or undo. It
		 * was counted, as thousands of legitimate locks before the
		 * onset that no list could show */
		if (c.state == FBX_C_DISCARDED && nd == 0)
			goto out;
		r->plan.before_onset++;
		if (c.state == FBX_C_HELD || c.state == FBX_C_SETTLING) {
			/* held or settling, never expanded: listed, left as
			 * it is */
			for (uint32_t k = 0; k < c.ndev_ids || k == 0; k++) {
				rb_bo_row(r, &c, 0,
				    c.ndev_ids ? c.dev_ids[k] : "", FBX_D_NONE,
				    FBX_RB_CANCEL);
				if (c.ndev_ids == 0)
					break;
			}
			r->ndlv += c.ndev_ids ? c.ndev_ids : 1;
			goto out;
		}
	} else if (idx == 0) {
		rc = rb_add_id(r, id);
		if (rc != FBX_OK)
			goto out;
		r->plan.commands++;
		if ((c.state == FBX_C_HELD || c.state == FBX_C_SETTLING) &&
		    !r->for_replay) {
			/* never expanded (held, or still in its settle
			 * window): the command itself is discarded */
			int st = c.state == FBX_C_SETTLING;
			for (uint32_t k = 0; k < c.ndev_ids || k == 0; k++) {
				rb_row(r, &c, 0, c.ndev_ids ? c.dev_ids[k] : "",
				    FBX_D_NONE, FBX_RB_CANCEL, 0,
				    c.ndev_ids ? (st ? "settling: discarded"
				                     : "held: discarded")
				               : (st ? "settling (whole target): "
				                       "discarded"
				                     : "held (whole target): "
				                       "discarded"));
				if (c.ndev_ids == 0)
					break;
			}
			r->ndlv += c.ndev_ids ? c.ndev_ids : 1;
			rc = rb_held_add(r, id);
			goto out;
		}
		if (c.state == FBX_C_DISCARDED && nd == 0 && !r->for_replay) {
			/* discarded before it was expanded (a reset, the
			 * limit, an earlier rollback): it reached no device
			 * and there is nothing to undo; listed, so that every
			 * command the plan selects has a row */
			for (uint32_t k = 0; k < c.ndev_ids || k == 0; k++) {
				rb_row(r, &c, 0, c.ndev_ids ? c.dev_ids[k] : "",
				    FBX_D_NONE, FBX_RB_NOTHING, 0,
				    c.ndev_ids ? "discarded before: it reached "
				                 "no device"
				               : "discarded before (whole "
				                 "target): it reached no device");
				if (c.ndev_ids == 0)
					break;
			}
			r->ndlv += c.ndev_ids ? c.ndev_ids : 1;
			goto out;
		}
		if (c.state == FBX_C_EXPANDING && !c.rollout.enabled &&
		    !r->for_replay && r->s->group[0] == '\0')
			/* executed, its expansion stops (fbxi_rb_exec) */
			rb_row(r, &c, 0, "", FBX_D_NONE, FBX_RB_CANCEL, 0,
			    "still expanding: devices not reached yet get "
			    "nothing");
		else if (c.state == FBX_C_EXPANDING && !c.rollout.enabled &&
		    !r->for_replay) {
			/* executed, the expansion goes on for the other
			 * devices and creates the group's cancelled
			 * (fbxi_rb_exec, fbxi_xgroup_add) */
			char det[sizeof(((struct fbx_rb_row *)0)->detail)];
			snprintf(det, sizeof(det),
			    "still expanding: devices of '%.37s' not reached "
			    "yet get nothing",
			    r->s->group);
			rb_row(r, &c, 0, "", FBX_D_NONE, FBX_RB_CANCEL, 0,
			    det);
		}
	}
	to = FBX_DLV_ID(id, 0) + nd;
	if (idx >= nd)
		goto out;
	if (r->ndlv >= r->dlv_budget && idx > 0) {
		r->stopped = 1;
		r->next = FBX_DLV_ID(id, idx);
		goto out;
	}
	/* a command begun is looked at for at least one delivery: the
	 * cursor FBX_DLV_ID(id, 0) means "done" */
	limit = r->ndlv < r->dlv_budget ? r->dlv_budget - r->ndlv : 1;
	r->cur = &c;
	r->seen = 0;
	r->last_dlv = 0;
	rc = fbx_store_dlv_scan(r->e->txn, FBX_DLV_ID(id, idx), to, limit,
	    rb_walk_dlv_cb, r);
	r->cur = NULL;
	r->ndlv += r->seen;
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = r->err;
	if (rc == FBX_OK && r->seen == limit && r->last_dlv + 1 < to) {
		r->stopped = 1;
		r->next = r->last_dlv + 1;
	}
out:
	r->before = 0;
	fbx_command_clear(&c);
	return rc;
}

static int
rb_walk_cb(void *arg, const struct fbx_command *c)
{
	struct rb_ctx *r = arg;

	if (fbxi_rb_spent(r)) {
		r->stopped = 1;
		return 1;
	}
	r->ncmd++;
	if (fbxi_rb_selected(r, c)) {
		int rc = rb_visit(r, c->id, 0);
		if (rc != FBX_OK) {
			r->err = rc;
			return 1;
		}
		if (r->stopped)
			return 1;
	}
	r->after = c->id;
	return 0;
}

/* rb_breaker - the breaker whose last incident the selector names: the
 * global one when asked (breaker_global, every_org); otherwise the
 * organisation's, unless it never tripped or its last incident was
 * reset before the global breaker last tripped: then the organisation
 * was held by the global breaker alone and its share of the global
 * incident is meant. *global: 1 if the global one is used.
 * @return FBX_OK; FBX_ENOT_FOUND (never tripped). */
static int
rb_breaker(struct rb_ctx *r, struct fbxi_breaker *b, int *global)
{
	const struct fbx_selector *s = r->s;
	struct fbxi_breaker g;
	int rc;

	rc = fbxi_brk_load(r->e->txn, "*", s->breaker, &g, NULL);
	if (rc != FBX_OK)
		return rc;
	if (!s->breaker_global && !s->every_org) {
		rc = fbxi_brk_load(r->e->txn, r->org, s->breaker, b, NULL);
		if (rc != FBX_OK)
			return rc;
		if (b->trips > 0 &&
		    !(g.trips > 0 && b->state != FBX_BS_OPEN &&
		        b->reset_ms > b->tripped_ms &&
		        b->reset_ms < g.tripped_ms)) {
			*global = 0;
			return FBX_OK;
		}
	}
	if (g.trips == 0)
		return FBX_ENOT_FOUND;
	*b = g;
	*global = 1;
	return FBX_OK;
}

/* rb_window - the selection's creation window; for an incident from
 * the onset of the breaker's last trip (or, for a record without one,
 * one breaker window before the trip) up to its reset or now. The
 * reason's commands in the breaker window before the onset are walked
 * too, to be listed apart (r->onset), unless include_before_onset
 * selects them; a replay starts at the onset. */
static int
rb_window(struct rb_ctx *r)
{
	const struct fbx_selector *s = r->s;
	int rc;

	r->since = s->since_ms;
	r->until = s->until_ms;
	if (s->breaker[0] != '\0') {
		struct fbxi_breaker b;
		int64_t win, since, onset = 0;
		int global = 0;
		rc = rb_breaker(r, &b, &global);
		if (rc != FBX_OK)
			return rc;
		win = (int64_t)b.cfg.window_s * 1000;
		if (b.onset_ms > 0) {
			onset = b.onset_ms < b.tripped_ms ? b.onset_ms
			                                  : b.tripped_ms;
			since = onset - win;
		} else {
			since = b.tripped_ms - win;
		}
		if (onset != 0 && !s->include_before_onset) {
			if (r->for_replay)
				since = onset;
			else
				r->onset = onset;
		}
		r->since = s->since_ms > since ? s->since_ms : since;
		/* a closed incident ends at its reset */
		if (b.reset_ms > b.tripped_ms &&
		    (r->until == 0 || b.reset_ms + 1 < r->until))
			r->until = b.reset_ms + 1;
		r->plan.onset_ms = onset;
		snprintf(r->plan.breaker, sizeof(r->plan.breaker), "%s/%s",
		    global ? "*" : r->org, s->breaker);
	}
	r->plan.since_ms = r->onset > r->since ? r->onset : r->since;
	r->plan.until_ms = r->until;
	return FBX_OK;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* fbxi_rb_begin - set up a slice: budget, snapshot, explicit ids, window.
 * @return FBX_OK; FBX_EINVALID (a cursor or snapshot this store never
 * gave); FBX_ENOT_FOUND (no such incident); FBX_ENOMEM. */
int
fbxi_rb_begin(struct rb_ctx *r, uint64_t cursor, uint64_t snapshot)
{
	const struct fbx_selector *s = r->s;
	int rc;

	if (r->dlv_budget == 0) /* not preset by a global run */
		fbxi_rb_budget(r->e, &r->cmd_budget, &r->dlv_budget);
	fbxi_idmap_init(&r->named_set);
	if (snapshot > r->e->last_cmd_id ||
	    FBX_DLV_CMD(cursor) > r->e->last_cmd_id)
		return FBX_EINVALID;
	r->snapshot = cursor == 0 ? r->e->last_cmd_id : snapshot;
	if (s->ncommand_ids > 0) {
		size_t n = 0;
		r->named = malloc(s->ncommand_ids * sizeof(*r->named));
		if (r->named == NULL)
			return FBX_ENOMEM;
		memcpy(r->named, s->command_ids,
		    s->ncommand_ids * sizeof(*r->named));
		qsort(r->named, s->ncommand_ids, sizeof(*r->named), cmp_u64);
		for (size_t i = 0; i < s->ncommand_ids; i++) {
			if (n > 0 && r->named[n - 1] == r->named[i])
				continue;
			r->named[n++] = r->named[i];
			if (fbxi_idmap_put(&r->named_set, r->named[i], 1) != 0)
				return FBX_ENOMEM;
		}
		r->nnamed = n;
		return FBX_OK;
	}
	rc = rb_window(r);
	return rc;
}

/* fbxi_rb_walk - one slice of the selection from cursor. Sets r->next: 0 when
 * the walk is done. @return as rb_visit. */
int
fbxi_rb_walk(struct rb_ctx *r, uint64_t cursor)
{
	uint64_t cmd = cursor == RB_BEGUN ? 0 : FBX_DLV_CMD(cursor);
	uint32_t idx = cursor == RB_BEGUN ? 0 : FBX_DLV_IDX(cursor);
	int rc;

	r->after = idx == 0 ? cmd : 0;
	if (idx != 0) {
		/* a command left half way */
		if (fbxi_rb_spent(r)) {
			r->stopped = 1;
			r->next = cursor;
			return FBX_OK;
		}
		r->ncmd++;
		rc = rb_visit(r, cmd, idx);
		if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK; /* pruned meanwhile: nothing left */
		if (rc != FBX_OK || r->stopped)
			return rc;
		r->after = cmd;
	}
	if (r->nnamed > 0) {
		for (size_t i = 0; i < r->nnamed; i++) {
			if (r->named[i] <= r->after)
				continue;
			if (fbxi_rb_spent(r)) {
				r->stopped = 1;
				break;
			}
			r->ncmd++;
			rc = rb_visit(r, r->named[i], 0);
			if (rc != FBX_OK)
				return rc;
			if (r->stopped)
				return FBX_OK;
			r->after = r->named[i];
		}
	} else {
		rc = fbx_store_cmd_list(r->e->txn, r->org, r->since, r->until,
		    r->after, 0, rb_walk_cb, r);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			return rc;
		if (r->err != FBX_OK)
			return r->err;
		if (r->stopped && r->next != 0)
			return FBX_OK; /* inside a command */
	}
	if (!r->stopped)
		r->next = 0;
	else
		r->next = r->after ? FBX_DLV_ID(r->after, 0) : RB_BEGUN;
	return FBX_OK;
}

void
fbxi_rb_free(struct rb_ctx *r)
{
	free(r->ids);
	free(r->named);
	fbxi_idmap_fini(&r->named_set);
	for (size_t i = 0; i < r->ngroups; i++) {
		free(r->groups[i].payload);
		free(r->groups[i].devs);
		free(r->groups[i].src);
	}
	free(r->groups);
	free(r->cancel);
	free(r->cancel_dev);
	free(r->cancel_state);
	free(r->held);
	free(r->sup);
	free(r->wd);
	free(r->inf);
	free(r->plan.rows);
	free(r->plan.comp_ids);
	free(r->plan.bo_rows);
}

/* rb_journal_comp - one compensating command: recovery priority, origin
 * rollback (breakers never hold it), explicit devices; it is expanded in
 * this same transaction when it is small. */
static int
rb_journal_comp(struct rb_ctx *r, struct comp_group *g, uint64_t rbseq,
    size_t n, uint64_t *out)
{
	struct fbx_engine *e = r->e;
	struct fbx_command c;
	struct cmdc *cc;
	int rc;

	memset(&c, 0, sizeof(c));
	snprintf(c.org, sizeof(c.org), "%s", r->org);
	snprintf(c.actor, sizeof(c.actor), "%s", r->req->actor);
	snprintf(c.reason, sizeof(c.reason), "rollback");
	/* no idempotency key: the comp/ markers make a rerun safe, and a
	 * key could collide with one a console chose */
	(void)n;
	c.type = g->type;
	c.origin = FBX_ORIGIN_ROLLBACK;
	c.target_kind = FBX_TARGET_DEVICES;
	c.priority = FBX_PRIO_RECOVERY;
	c.payload = g->payload;
	c.payload_len = g->plen;
	c.dev_ids = g->devs;
	c.ndev_ids = (uint32_t)g->n;
	c.state = FBX_C_EXPANDING;
	c.created_ms = e->now;
	c.ttl_s = e->o.default_ttl_s;
	c.expires_ms = e->now + (int64_t)c.ttl_s * 1000;
	fbxi_note_printf(c.note, sizeof(c.note), "rollback %llu by %s",
	    (unsigned long long)rbseq, r->req->actor);
	rc = fbx_store_cmd_append(e->txn, &c);
	if (rc != FBX_OK)
		return rc;
	e->last_cmd_id = c.id;
	cc = fbxi_cmd_cache_add(e, &c);
	if (cc == NULL)
		return FBX_ENOMEM;
	/* explicit ids: each device gets one delivery */
	*out = c.id;
	for (size_t i = 0; i < g->n; i++) {
		rc = fbxi_comp_put(e->txn, r->org, g->src[i], c.id);
		if (rc != FBX_OK)
			return rc;
	}
	fbxi_expand_inline(e, cc, NULL);
	return fbxi_err(e);
}

/* fbxi_rb_refuse_unsliced - a client that does not continue slices is never
 * answered with part of a selection it would take for the whole. */
void
fbxi_rb_refuse_unsliced(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, const struct rb_ctx *r)
{
	fbxi_console_error(e, in, req->request_id, req->kind, FBX_ETOOBIG,
	    "the selection does not fit in one slice (%u commands or %u "
	    "deliveries per request); nothing was done: use a client that "
	    "continues slices (sliced, next_cursor), e.g. this version's "
	    "fuseboxctl",
	    r->cmd_budget, r->dlv_budget);
}

/* fbxi_rb_setup - r for one organisation's part of a rollback slice. */
int
fbxi_rb_setup(struct rb_ctx *r, struct fbx_engine *e,
    struct fbx_console_req *req, const char *org)
{
	memset(r, 0, sizeof(*r));
	r->e = e;
	r->req = req;
	r->s = &req->u.rollback.sel;
	r->org = org;
	r->include_changed = req->u.rollback.include_changed;
	r->dlv_fn = rb_dlv_cb;
	r->dlv_arg = r;
	fbxi_idmap_init(&r->named_set);
	r->rows_cap = req->u.rollback.limit ? req->u.rollback.limit : 100;
	if (r->rows_cap > FBX_PAGE_MAX)
		r->rows_cap = FBX_PAGE_MAX;
	r->bo_cap = r->rows_cap;
	r->plan.rows = malloc(r->rows_cap * sizeof(*r->plan.rows));
	r->plan.bo_rows = malloc(r->bo_cap * sizeof(*r->plan.bo_rows));
	if (r->plan.rows == NULL || r->plan.bo_rows == NULL)
		return FBX_ENOMEM;
	return FBX_OK;
}

/* fbxi_rb_plan_part - one slice of one organisation's part, planned: the
 * survey of later commands first when "changed since" needs it, then
 * the selection from cursor, within r's budget (preset by the caller,
 * or the engine's). @return FBX_OK; FBX_EINVALID (a cursor or snapshot
 * this store never gave); FBX_ENOT_FOUND (no such command or incident);
 * a store error. */
int
fbxi_rb_plan_part(struct rb_ctx *r, uint64_t cursor, uint64_t snapshot)
{
	int rc;

	rc = fbxi_rb_begin(r, cursor, snapshot);
	if (rc != FBX_OK)
		return rc;
	if (!r->include_changed || r->onset != 0 || r->nnamed == 0) {
		/* what later commands changed, device by device, and what
		 * was locked before the selected commands (with
		 * include_changed too, unless the commands are named) */
		int64_t since = r->since;
		/* and the locks of any origin before the window */
		if (r->nnamed == 0)
			since = since > RB_PRIOR_LOCK_MS
			    ? since - RB_PRIOR_LOCK_MS
			    : 0;
		if (r->nnamed > 0) {
			struct fbx_command first;
			rc = fbx_store_cmd_get(r->e->txn, r->named[0], &first);
			if (rc == FBX_OK && strcmp(first.org, r->org) != 0)
				rc = FBX_ENOT_FOUND;
			if (rc == FBX_OK)
				since = first.created_ms;
			fbx_command_clear(&first);
			if (rc == FBX_ENOT_FOUND && cursor != 0)
				rc = FBX_OK; /* pruned meanwhile */
			if (rc != FBX_OK)
				return rc;
		}
		rc = fbxi_rb_survey_get(r, since, &r->sv);
		if (rc != FBX_OK)
			return rc;
		rc = fbxi_rb_survey_run(r);
		if (rc != FBX_OK)
			return rc;
	}
	r->plan.later_commands = r->nlater;
	if (r->stopped) {
		/* the survey took the slice: the selection waits */
		r->next = cursor ? cursor : RB_BEGUN;
		return FBX_OK;
	}
	return fbxi_rb_walk(r, cursor);
}

/* fbxi_rb_exec - carry out a part's plan in the request's transaction:
 * cancels, rollouts stopped, held commands discarded, compensations
 * journaled (their ids in r->plan.comp_ids). */
int
fbxi_rb_exec(struct rb_ctx *r, uint64_t rbseq)
{
	struct fbx_engine *e = r->e;
	struct fbx_console_req *req = r->req;
	size_t ncomp = 0;
	int rc;

	/* 1. cancel what was not sent */
	for (size_t i = 0; i < r->ncancel; i++) {
		struct cmdc *cc = fbxi_cmd_find(e, FBX_DLV_CMD(r->cancel[i]));
		/* an open delivery's command is in the cache */
		if (cc == NULL)
			continue;
		rc = fbxi_dlv_move(e, cc, r->cancel[i],
		    FBXI_DMASK(FBX_D_QUEUED) | FBXI_DMASK(FBX_D_PENDING),
		    FBX_D_CANCELLED, 0, 0, NULL, NULL);
		if (rc == FBX_ESTATE || rc == FBX_ENOT_FOUND)
			continue;
		if (rc != FBX_OK)
			return rc;
	}
	/* superseded deliveries of the selection: their links say they are
	 * rolled back, so a later rollback of what superseded them does not
	 * keep it for them (rb_carried) */
	for (size_t i = 0; i < r->nsup; i++) {
		rc = fbxi_supersede_rolled_back(e, r->org, r->sup[i]);
		if (rc != FBX_OK)
			return rc;
	}
	/* sent once, not accepted: withdrawn (fbxi_dlv_withdrawn) */
	for (size_t i = 0; i < r->nwd; i++) {
		rc = fbxi_dlv_withdraw(e, r->org, r->wd[i], rbseq);
		if (rc != FBX_OK)
			return rc;
	}
	/* left open (rb_dlv_cb): marked (rbf/, engine_int.h) */
	for (size_t i = 0; i < r->ninf; i++) {
		rc = fbxi_rbf_put(e->txn, r->org, r->inf[i], rbseq);
		if (rc != FBX_OK)
			return rc;
	}
	/* a rollout among the rolled-back commands stops for good; any
	 * other one still expanding (in slices, a turn at a time) stops
	 * expanding (the plan's row "still expanding"): a device it has not
	 * reached yet never gets it. A rollback of one group's devices
	 * lets it go on for the others, and the deliveries it creates for
	 * the group's devices from now on are created cancelled. Its
	 * created deliveries are this plan's (cancelled above, or left as
	 * rb_dlv_cb said, which a cancel sweep would undo) */
	for (size_t i = 0; i < r->nids; i++) {
		struct cmdc *cc = fbxi_cmd_find(e, r->ids[i]);
		if (cc != NULL && !cc->c.rollout.enabled &&
		    cc->c.state == FBX_C_EXPANDING && r->s->group[0] != '\0') {
			/* the other devices are not selected: the expansion
			 * goes on, and creates the group's cancelled */
			rc = fbxi_xgroup_add(e, cc, r->s->group, rbseq);
			if (rc != FBX_OK)
				return rc;
			fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
			    "rollback %llu (%.32s): devices of group %.32s "
			    "reached from now on are cancelled (groups: %u)",
			    (unsigned long long)rbseq, req->actor,
			    r->s->group, cc->nxgroups);
			fbxi_cmd_touch(cc);
			FBX_LOGI("rollback %llu: command %llu still expanding: "
			         "the devices of group %s it reaches from "
			         "now on are cancelled",
			    (unsigned long long)rbseq,
			    (unsigned long long)cc->c.id, r->s->group);
			continue;
		}
		if (cc != NULL && !cc->c.rollout.enabled &&
		    cc->c.state == FBX_C_EXPANDING && r->s->group[0] == '\0') {
			fbxi_xlist_remove(e, cc);
			cc->c.state = FBX_C_ACTIVE;
			fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
			    "expansion stopped at %u devices by rollback %llu "
			    "(%s)",
			    cc->c.ndeliveries, (unsigned long long)rbseq,
			    req->actor);
			fbxi_cmd_touch(cc);
			fbxi_cmd_maybe_done(cc);
			continue;
		}
		if (cc == NULL || !cc->c.rollout.enabled ||
		    cc->c.ro.state == FBX_RO_DONE ||
		    cc->c.ro.state == FBX_RO_CANCELLED)
			continue;
		cc->c.ro.state = FBX_RO_CANCELLED;
		fbxi_note_printf(cc->c.ro.note, sizeof(cc->c.ro.note),
		    "cancelled by rollback %llu (%s)",
		    (unsigned long long)rbseq, req->actor);
		fbxi_cmd_cancel(e, cc);
		if (cc->c.state == FBX_C_EXPANDING) {
			fbxi_xlist_remove(e, cc);
			cc->c.state = FBX_C_ACTIVE;
		}
		fbxi_cmd_touch(cc);
	}
	/* 2. held and settling commands: discarded, recorded */
	for (size_t i = 0; i < r->nheld; i++) {
		struct cmdc *cc = fbxi_cmd_find(e, r->held[i]);
		if (cc == NULL)
			continue;
		/* it reached no device: its blast-radius count goes back */
		if (cc->c.state == FBX_C_HELD || cc->c.state == FBX_C_SETTLING) {
			rc = fbxi_limit_uncount(e, &cc->c);
			if (rc != FBX_OK)
				return rc;
		}
		cc->c.state = FBX_C_DISCARDED;
		snprintf(cc->c.resolved_by, sizeof(cc->c.resolved_by), "%s",
		    req->actor);
		fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
		    "rolled back (%llu) by %s: %s", (unsigned long long)rbseq,
		    req->actor, req->u.rollback.note);
		fbxi_cmd_touch(cc);
	}
	/* 3. compensations, journaled now */
	r->plan.comp_ids = malloc((r->ngroups + 1) * sizeof(uint64_t));
	if (r->plan.comp_ids == NULL)
		return FBX_ENOMEM;
	for (size_t i = 0; i < r->ngroups; i++) {
		uint64_t id = 0;
		rc = rb_journal_comp(r, &r->groups[i], rbseq, i, &id);
		if (rc != FBX_OK)
			return rc;
		r->plan.comp_ids[ncomp++] = id;
	}
	r->plan.ncomp = ncomp;
	return FBX_OK;
}

int
fbxi_rebuild_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct rebuild_ctx *r = arg;
	struct cmdc *cc = r->cc;

	/* a recount only: the engine's own rebuild queues what is open */
	if (d->state > 0 && d->state < FBX_D_COUNT)
		cc->c.counts[d->state]++;
	if (FBX_DLV_IDX(d->id) >= cc->c.ndeliveries)
		cc->c.ndeliveries = FBX_DLV_IDX(d->id) + 1;
	return 0;
}
