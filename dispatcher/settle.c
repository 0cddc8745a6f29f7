/*
 * settle.c: the settle window (see settle.h). Depends on core.c, and in
 * cluster mode on cluster.c (fbxi_brk_global_hold: the global breaker,
 * tripped elsewhere).
 */
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "log.h"

int
fbxi_settle_add(struct fbx_engine *e, uint64_t id, int64_t at_ms)
{
	return fbxi_theap_push(&e->settle, at_ms, id);
}

void
fbxi_settle_clear(struct fbx_engine *e)
{
	fbxi_theap_clear(&e->settle);
}

void
fbxi_settle_free(struct fbx_engine *e)
{
	fbxi_theap_free(&e->settle);
}

/* settling - the cached command an entry names, if it still settles
 * until that time (entries of commands released, held or re-timed since
 * are stale and skipped) */
static struct cmdc *
settling(struct fbx_engine *e, const struct fbxi_theap_ent *x)
{
	struct cmdc *cc = fbxi_cmd_find(e, x->id);

	if (cc == NULL || cc->c.state != FBX_C_SETTLING ||
	    cc->c.settle_until_ms != x->at_ms)
		return NULL;
	return cc;
}

/* Settling commands refused by the blast-radius limit in one step, per
 * organisation, type and reason: one log line, event and audit record
 * each, not one per command (a storm may end thousands of settle
 * windows at once); the devices the window would reach and the limit
 * are the last refusal's. */
struct refused {
	char org[FBX_ID_MAX + 1];
	char reason[FBX_ID_MAX + 1];
	uint8_t type;
	uint32_t n, cap;
	uint32_t grown; /* of the n, those whose target grew */
	uint64_t would, first;
};

static int
refused_note(struct refused **v, size_t *n, size_t *capv,
    const struct fbx_command *c, uint64_t would, uint32_t cap, int grown)
{
	struct refused *r = NULL;

	for (size_t i = 0; i < *n && r == NULL; i++)
		if ((*v)[i].type == c->type && strcmp((*v)[i].org, c->org) == 0 &&
		    strcmp((*v)[i].reason, fbxi_reason_of(c)) == 0)
			r = &(*v)[i];
	if (r == NULL) {
		if (*n == *capv) {
			size_t nc = *capv ? 2 * *capv : 8;
			struct refused *nv = realloc(*v, nc * sizeof(*nv));
			if (nv == NULL)
				return FBX_ENOMEM;
			*v = nv;
			*capv = nc;
		}
		r = &(*v)[(*n)++];
		memset(r, 0, sizeof(*r));
		snprintf(r->org, sizeof(r->org), "%s", c->org);
		snprintf(r->reason, sizeof(r->reason), "%s",
		    fbxi_reason_of(c));
		r->type = c->type;
		r->first = c->id;
	}
	r->n++;
	r->grown += grown != 0;
	r->would = would;
	r->cap = cap;
	return FBX_OK;
}

static void
refused_report(struct fbx_engine *e, const struct refused *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct refused *r = &v[i];
		const char *type = fbx_cmd_type_name(r->type);
		char grown[64] = "";
		if (r->grown)
			snprintf(grown, sizeof(grown),
			    "; %u of them: their target grew", r->grown);
		FBX_LOGW("org %s: %u settling %s commands of reason %s "
		         "discarded at the end of their settle window: over the "
		         "blast-radius limit (%llu devices in the window, limit "
		         "%u; the first: command %llu%s)",
		    r->org, r->n, type, r->reason, (unsigned long long)r->would,
		    r->cap, (unsigned long long)r->first, grown);
		fbxi_audit(e, r->org, "engine", "settle.refused", NULL,
		    "{\"type\":\"%s\",\"reason\":\"%s\",\"commands\":%u,"
		    "\"first\":%llu,\"would_reach\":%llu,\"limit\":%u,"
		    "\"grown\":%u}",
		    type, r->reason, r->n, (unsigned long long)r->first,
		    (unsigned long long)r->would, r->cap, r->grown);
		emit_event(e, FBX_EV_LIMIT_REJECTED, r->org, r->reason, "engine",
		    r->n == 1 ? r->first : 0, r->would, r->cap,
		    "%u settling %s commands discarded at the end of their "
		    "settle window: over the blast-radius limit",
		    r->n, type);
	}
}

/* What settled_note found open for one organisation and reason, kept
 * for the rest of a settle step: a storm's commands settle together,
 * and on PostgreSQL each breaker read is a round trip. */
struct brk_seen {
	fbx_id org;
	fbx_id reason;
	int known;
	char scope[FBX_ID_MAX + 1]; /* "" = none open */
	int shadow;
	int64_t onset_ms;
};

/* settled_note - the note of a command released at the end of its
 * settle window. A breaker of its reason may be open: a trip holds only
 * what came at or after its onset, so an earlier command (a lock for
 * cause before the storm) goes out, and the note says why rather than
 * "no breaker tripped"; an enforcing breaker (the organisation's, then
 * the global one) is named before one in shadow mode, which holds
 * nothing. Only a note: a breaker that cannot be read leaves the plain
 * one. */
static void
settled_note(struct fbx_engine *e, struct cmdc *cc, struct brk_seen *bs)
{
	const char *reason = fbxi_reason_of(&cc->c);
	long long s = (long long)((cc->c.settle_until_ms - cc->c.created_ms) /
	    1000);

	if (!bs->known || strcmp(bs->org, cc->c.org) != 0 ||
	    strcmp(bs->reason, reason) != 0) {
		struct fbxi_breaker v[2];
		const char *scopes[2] = { cc->c.org, "*" };
		int open[2];
		memset(bs, 0, sizeof(*bs));
		snprintf(bs->org, sizeof(bs->org), "%s", cc->c.org);
		snprintf(bs->reason, sizeof(bs->reason), "%s", reason);
		bs->known = 1;
		for (int k = 0; k < 2; k++)
			open[k] = fbxi_brk_load(e->txn, scopes[k], reason,
			              &v[k], NULL) == FBX_OK &&
			    v[k].state == FBX_BS_OPEN;
		for (int pass = 0; pass < 2 && bs->scope[0] == '\0'; pass++)
			for (int k = 0; k < 2 && bs->scope[0] == '\0'; k++) {
				if (!open[k] || (v[k].cfg.shadow != 0) != pass)
					continue;
				snprintf(bs->scope, sizeof(bs->scope), "%s",
				    scopes[k]);
				bs->shadow = pass;
				bs->onset_ms = v[k].onset_ms;
			}
	}
	if (bs->scope[0] == '\0')
		fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
		    "settled: released after its settle window (%lld s); no "
		    "breaker of reason '%.64s' was open",
		    s, reason);
	else if (bs->shadow)
		fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
		    "settled: released after its settle window (%lld s); "
		    "breaker %.40s/%.40s was open in shadow mode (holds "
		    "nothing)",
		    s, bs->scope, reason);
	else
		fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
		    "settled: released after its settle window (%lld s); "
		    "breaker %.40s/%.40s was open, %s",
		    s, bs->scope, reason,
		    bs->onset_ms > cc->c.created_ms
		        ? "but this command came before its onset"
		        : "and did not hold it");
}

void
fbxi_settle_step(struct fbx_engine *e)
{
	const struct fbxi_theap_ent *t;
	struct refused *rf = NULL;
	size_t nrf = 0, caprf = 0;
	struct brk_seen seen;

	memset(&seen, 0, sizeof(seen));

	while ((t = fbxi_theap_top(&e->settle)) != NULL && t->at_ms <= e->now &&
	    fbxi_err(e) == FBX_OK) {
		struct cmdc *cc = settling(e, t);
		uint64_t would = 0;
		uint32_t cap = 0, ndev = 0, counted;
		const char *when;
		int held = 0, grown, rc;
		fbxi_theap_pop(&e->settle);
		if (cc == NULL)
			continue;
		if (e->cluster) {
			rc = fbxi_brk_global_hold(e, cc, &held);
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				break;
			}
			if (held)
				continue;
		}
		/* through the blast-radius limit as it stands: its count
		 * ages from now, when its devices are reached */
		counted = cc->c.limit_at_ms > 0 ? cc->c.limit_n : 0;
		rc = fbxi_limit_settled(e, &cc->c, &would, &cap, &ndev);
		if (rc == FBX_ELIMIT_EXCEEDED) {
			/* it reached no device: what the window still
			 * counts of it goes back out */
			grown = counted > 0 && ndev > counted;
			rc = fbxi_limit_uncount(e, &cc->c);
			if (rc == FBX_OK)
				rc = refused_note(&rf, &nrf, &caprf, &cc->c,
				    would, cap, grown);
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				break;
			}
			cc->c.state = FBX_C_DISCARDED;
			/* released by a reset (resolved_by), it was due in a
			 * staged wave */
			when = cc->c.resolved_by[0] != '\0'
			    ? "discarded at its staged wave after a reset"
			    : "discarded when its settle window ended";
			snprintf(cc->c.resolved_by, sizeof(cc->c.resolved_by),
			    "engine");
			/* within the note's 159 characters */
			if (grown)
				fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
				    "%s: target grew %u -> %u devices; over the "
				    "%s limit (%llu in the window, limit %u)",
				    when, counted, ndev,
				    fbx_cmd_type_name(cc->c.type),
				    (unsigned long long)would, cap);
			else
				fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
				    "%s: it would pass the %s blast-radius "
				    "limit (%llu devices in the window, limit "
				    "%u)",
				    when, fbx_cmd_type_name(cc->c.type),
				    (unsigned long long)would, cap);
			fbxi_cmd_touch(cc);
			continue;
		}
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			break;
		}
		cc->c.state = FBX_C_EXPANDING;
		/* its TTL runs from here (an entry that came due while it
		 * settled was dropped) */
		if (fbxi_theap_push(&e->expiry, cc->c.expires_ms, cc->c.id) !=
		    0) {
			fbxi_set_err(e, FBX_ENOMEM);
			break;
		}
		if (cc->c.resolved_by[0] != '\0')
			fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
			    "released in its staged wave after a breaker reset "
			    "by %.64s", cc->c.resolved_by);
		else
			settled_note(e, cc, &seen);
		fbxi_cmd_touch(cc);
		if (!cc->cancelling)
			fbxi_xlist_add(e, cc);
		fbxi_event(e, FBX_EV_COMMAND_SETTLED, cc->c.org,
		    fbxi_reason_of(&cc->c), "engine", cc->c.id, 1, 0,
		    "command %llu (%s) released after its settle window",
		    (unsigned long long)cc->c.id,
		    fbx_cmd_type_name(cc->c.type));
	}
	if (fbxi_err(e) == FBX_OK)
		refused_report(e, rf, nrf);
	free(rf);
}

uint32_t
fbxi_settle_hold(struct fbx_engine *e, const char *org, const char *reason,
    int64_t since_ms, const char *held_by, const char *note)
{
	const struct fbxi_theap *s = &e->settle;
	uint32_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct cmdc *cc = settling(e, &s->h[i]);
		if (cc == NULL || cc->c.created_ms < since_ms ||
		    strcmp(fbxi_reason_of(&cc->c), reason) != 0 ||
		    (org != NULL && strcmp(cc->c.org, org) != 0))
			continue;
		/* the entry goes stale: the heap is cleaned as it pops */
		cc->c.state = FBX_C_HELD;
		snprintf(cc->c.held_by, sizeof(cc->c.held_by), "%s", held_by);
		fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
		    "held while settling: %s", note);
		fbxi_cmd_touch(cc);
		n++;
	}
	return n;
}

uint64_t
fbxi_settle_count(struct fbx_engine *e, const char *org, const char *reason)
{
	const struct fbxi_theap *s = &e->settle;
	uint64_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct cmdc *cc = settling(e, &s->h[i]);
		if (cc != NULL &&
		    strcmp(fbxi_reason_of(&cc->c), reason) == 0 &&
		    (org == NULL || strcmp(cc->c.org, org) == 0))
			n++;
	}
	return n;
}
