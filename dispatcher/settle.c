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

void
fbxi_settle_step(struct fbx_engine *e)
{
	const struct fbxi_theap_ent *t;

	while ((t = fbxi_theap_top(&e->settle)) != NULL && t->at_ms <= e->now &&
	    fbxi_err(e) == FBX_OK) {
		struct cmdc *cc = settling(e, t);
		int held = 0, rc;
		fbxi_theap_pop(&e->settle);
		if (cc == NULL)
			continue;
		if (e->cluster) {
			rc = fbxi_brk_global_hold(e, cc, &held);
			if (rc != FBX_OK) {
				fbxi_set_err(e, rc);
				return;
			}
			if (held)
				continue;
		}
		/* its blast-radius count ages from now, when its devices
		 * are reached; counted again if the window no longer holds
		 * it, and discarded if that passes the limit */
		rc = fbxi_limit_settled(e, &cc->c);
		if (rc == FBX_ELIMIT_EXCEEDED) {
			cc->c.state = FBX_C_DISCARDED;
			snprintf(cc->c.resolved_by, sizeof(cc->c.resolved_by),
			    "engine");
			fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
			    "discarded when its settle window ended: its "
			    "blast-radius count had left the %s limit's window "
			    "and counting it again would pass the limit",
			    fbx_cmd_type_name(cc->c.type));
			fbxi_cmd_touch(cc);
			FBX_LOGW("org %s: command %llu (%s) discarded at the end "
			         "of its settle window: over the blast-radius "
			         "limit",
			    cc->c.org, (unsigned long long)cc->c.id,
			    fbx_cmd_type_name(cc->c.type));
			fbxi_event(e, FBX_EV_LIMIT_REJECTED, cc->c.org,
			    fbxi_reason_of(&cc->c), "engine", cc->c.id,
			    cc->c.limit_n, 0,
			    "command %llu (%s) discarded at the end of its "
			    "settle window: over the blast-radius limit",
			    (unsigned long long)cc->c.id,
			    fbx_cmd_type_name(cc->c.type));
			continue;
		}
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
		cc->c.state = FBX_C_EXPANDING;
		/* its TTL runs from here (an entry that came due while it
		 * settled was dropped) */
		if (fbxi_theap_push(&e->expiry, cc->c.expires_ms, cc->c.id) !=
		    0) {
			fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		if (cc->c.resolved_by[0] != '\0')
			fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
			    "released in its staged wave after a breaker reset "
			    "by %.64s", cc->c.resolved_by);
		else
			fbxi_note_printf(cc->c.note, sizeof(cc->c.note),
			    "settled: released after its settle window "
			    "(%lld s); no breaker tripped",
			    (long long)((cc->c.settle_until_ms -
			                    cc->c.created_ms) /
			        1000));
		fbxi_cmd_touch(cc);
		if (!cc->cancelling)
			fbxi_xlist_add(e, cc);
		fbxi_event(e, FBX_EV_COMMAND_SETTLED, cc->c.org,
		    fbxi_reason_of(&cc->c), "engine", cc->c.id, 1, 0,
		    "command %llu (%s) released after its settle window",
		    (unsigned long long)cc->c.id,
		    fbx_cmd_type_name(cc->c.type));
	}
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
