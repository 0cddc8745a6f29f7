/*
 * supersede.c: newer replaces older for the same device (see
 * supersede.h). Depends on core.c and delivery.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "engine_int.h"

int
fbxi_supersede_applies(const struct cmdc *cc)
{
	return fbxi_supersede_applies_cmd(&cc->c);
}

int
fbxi_supersede_applies_cmd(const struct fbx_command *c)
{
	if (c->rollout.enabled)
		return 0;
	switch (c->type) {
	case FBX_CMD_LOCK:
	case FBX_CMD_UNLOCK:
	case FBX_CMD_WIPE:
	case FBX_CMD_START_LOST_MODE:
	case FBX_CMD_STOP_LOST_MODE:
	case FBX_CMD_CLEAR_PASSCODE:
	case FBX_CMD_RESTART:
		return 1;
	default:
		return 0;
	}
}

/* FNV-1a, 64 bits */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

/* A kind: the open commands of one (organisation, type, origin,
 * payload), by a hash of those; two kinds whose hashes collide share one
 * (more is indexed than needed; same_kind() keeps the decisions exact).
 * Only the members not indexed yet are listed: a build walks them once,
 * so a storm of thousands of commands of one kind costs each one its
 * own (empty) read, not a walk of the others. */
struct fbxi_skind {
	uint64_t key;
	uint32_t n;             /* members: open commands of the kind */
	struct cmdc *unindexed; /* the members not indexed yet (a build
	                           walks these only, each once) */
};

static uint64_t
skind_key(const struct cmdc *cc)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	uint8_t t[2] = { (uint8_t)cc->c.type, (uint8_t)cc->c.origin };

	h = fnv(h, cc->c.org, strlen(cc->c.org) + 1);
	h = fnv(h, t, 2);
	h = fnv(h, cc->c.payload, cc->c.payload_len);
	return h != 0 ? h : 1;
}

/* kind_key - (organisation, device, type, origin, payload) as a non-zero
 * key: the device hashed onto its kind's key, which join computed once
 * (not the organisation and payload again for every device). A collision
 * only names a candidate: same_kind() checks it exactly. The origin is in
 * it so that an automatic command's delivery never takes the slot of an
 * operator's (same_kind() would refuse the pair, and the operator's older
 * one would be out of reach of the next operator command). */
static uint64_t
kind_key(const struct cmdc *cc, const char *device)
{
	uint64_t h = cc->kind != NULL ? cc->kind->key : skind_key(cc);

	h = fnv(h, device, strlen(device) + 1);
	return h != 0 ? h : 1;
}

int
fbxi_supersede_join(struct fbx_engine *e, struct cmdc *cc)
{
	struct fbxi_skind *k;
	uint64_t key, v;

	if (!fbxi_supersede_applies(cc) || cc->kind != NULL)
		return 0;
	key = skind_key(cc);
	if (fbxi_idmap_get(&e->skinds, key, &v)) {
		k = (struct fbxi_skind *)(uintptr_t)v;
	} else {
		k = calloc(1, sizeof(*k));
		if (k == NULL)
			return -1;
		k->key = key;
		if (fbxi_idmap_put(&e->skinds, key, (uint64_t)(uintptr_t)k) !=
		    0) {
			free(k);
			return -1;
		}
	}
	cc->kind = k;
	cc->kindexed = 0;
	cc->kprev = NULL;
	cc->knext = k->unindexed;
	if (k->unindexed != NULL)
		k->unindexed->kprev = cc;
	k->unindexed = cc;
	k->n++;
	return 0;
}

void
fbxi_supersede_leave(struct fbx_engine *e, struct cmdc *cc)
{
	struct fbxi_skind *k = cc->kind;

	if (k == NULL)
		return;
	if (!cc->kindexed) {
		if (cc->kprev != NULL)
			cc->kprev->knext = cc->knext;
		else
			k->unindexed = cc->knext;
		if (cc->knext != NULL)
			cc->knext->kprev = cc->kprev;
	}
	cc->kind = NULL;
	cc->knext = cc->kprev = NULL;
	if (--k->n == 0) {
		fbxi_idmap_del(&e->skinds, k->key, NULL);
		free(k);
	}
}

/* sweep - the index keeps an entry until another delivery of the same
 * (organisation, device, kind) takes its place. An entry of a command that
 * left the cache decides nothing: a lookup and index_one ignore it, and
 * a finished command that comes back (a replay) joins its kind
 * unindexed, so its deliveries are read in again before any lookup.
 * Such entries would pile up over months, one for every device and kind
 * that ever met another command of its kind. When the index reaches
 * sx_sweep_at entries, copy the live ones (their command still cached)
 * into a new map and free the old: memory stays within about twice the
 * live entries, and the copy's cost, proportional to the map, comes after
 * at least as many insertions (amortised, one turn pays it). Out of
 * memory the old map stays as it is. */
static void
sweep(struct fbx_engine *e)
{
	struct fbxi_idmap live;
	size_t pos = 0, before = e->supersede.len;
	uint64_t key, v;
	int64_t t0 = fbxi_mono_ms();

	fbxi_idmap_init(&live);
	while (fbxi_idmap_next(&e->supersede, &pos, &key, &v)) {
		if (fbxi_cmd_find(e, FBX_DLV_CMD(v)) == NULL)
			continue;
		if (fbxi_idmap_put(&live, key, v) != 0) {
			fbxi_idmap_fini(&live);
			/* try again after as many insertions */
			e->sx_sweep_at = 2 * before;
			return;
		}
	}
	fbxi_idmap_fini(&e->supersede);
	e->supersede = live;
	e->sx_sweeps++;
	e->sx_dropped += before - live.len;
	e->sx_sweep_at = 2 * live.len;
	if (e->sx_sweep_at < e->sx_sweep_min)
		e->sx_sweep_at = e->sx_sweep_min;
	FBX_LOGI("supersede: index swept: %zu entries of finished commands "
	         "dropped, %zu kept, in %lld ms",
	    before - live.len, live.len, (long long)(fbxi_mono_ms() - t0));
}

void
fbxi_supersede_clear(struct fbx_engine *e)
{
	size_t pos = 0;
	uint64_t key, v;

	while (fbxi_idmap_next(&e->skinds, &pos, &key, &v))
		free((struct fbxi_skind *)(uintptr_t)v);
	fbxi_idmap_clear(&e->skinds);
	fbxi_idmap_clear(&e->supersede);
	e->sx_sweep_at = e->sx_sweep_min;
}

/* the command's deliveries go through the index: it is indexed, or
 * another open command of its kind exists (it will be indexed first) */
static int
indexing(const struct cmdc *cc)
{
	return cc->kind == NULL || cc->kindexed || cc->kind->n > 1;
}

void
fbxi_supersede_prefetch(
    struct fbx_engine *e, const struct cmdc *cc, const char *device)
{
	if (fbxi_supersede_applies(cc) && indexing(cc))
		fbxi_idmap_prefetch(&e->supersede, kind_key(cc, device));
}

/* same_kind - b may stand in for a: the same type, organisation and
 * payload, the same origin (an automatic lock never replaces an
 * operator's: a storm rolled back must not take it with it), not a
 * rollout */
static int
same_kind(const struct cmdc *a, const struct cmdc *b)
{
	return a->c.type == b->c.type && a->c.origin == b->c.origin &&
	    strcmp(a->c.org, b->c.org) == 0 &&
	    a->c.payload_len == b->c.payload_len &&
	    (a->c.payload_len == 0 ||
	        memcmp(a->c.payload, b->c.payload, a->c.payload_len) == 0) &&
	    !a->c.rollout.enabled && !b->c.rollout.enabled;
}

/* link_prefix - "sup/<org>/<command>/<newer>/": the links of newer */
static void
link_prefix(char *k, size_t cap, const char *org, uint64_t newer)
{
	snprintf(k, cap, "sup/%s/%llu/%llu/", org,
	    (unsigned long long)FBX_DLV_CMD(newer), (unsigned long long)newer);
}

/* link_key - "sup/<org>/<command>/<newer>/<older>": one link */
static void
link_key(char *k, size_t cap, const char *org, uint64_t newer, uint64_t older)
{
	snprintf(k, cap, "sup/%s/%llu/%llu/%llu", org,
	    (unsigned long long)FBX_DLV_CMD(newer), (unsigned long long)newer,
	    (unsigned long long)older);
}

/* a link's value: the older delivery, when its command expires (it may
 * be pruned before a rollback reads the link), and flags: LINK_RB a
 * rollback that selected it executed (fbxi_supersede_rolled_back), or it
 * was withdrawn or left open by one; LINK_CHAINED it had links of its
 * own (it stood in for an older delivery) of which one was not rolled
 * back or led further, when it was superseded or since (unchain_up
 * clears it once they all are rolled back and lead no further). Links
 * written before LINK_CHAINED hold 0 or 1. Then what a rollback's filter
 * selects the older command by (its creation time, origin, type and
 * reason), so that it can tell after retention pruned that command;
 * links written before hold only the first three fields (24 bytes,
 * LINK_V1_LEN: read as not known) */
#define LINK_RB 1u
#define LINK_CHAINED 2u
#define LINK_V1_LEN 24u
struct link_val {
	uint64_t older;
	int64_t expires_ms;
	uint64_t rolled_back; /* LINK_* */
	int64_t created_ms;
	uint8_t origin, type, known, pad_[5];
	char reason[FBX_ID_MAX + 1];
};

_Static_assert(sizeof(struct link_val) == 112, "sup/ link layout");

/* link_decode - a link's value of len bytes, either layout, into v */
static int
link_decode(const void *val, size_t len, struct link_val *v)
{
	memset(v, 0, sizeof(*v));
	if (len != LINK_V1_LEN && len != sizeof(*v))
		return FBX_ECORRUPT;
	memcpy(v, val, len);
	if (len == sizeof(*v) &&
	    memchr(v->reason, '\0', sizeof(v->reason)) == NULL)
		return FBX_ECORRUPT;
	if (len == LINK_V1_LEN)
		v->known = 0;
	return FBX_OK;
}

/* back_key - "supby/<org>/<command>/<older>": which delivery superseded
 * older (the way from the older to its link) */
static void
back_key(char *k, size_t cap, const char *org, uint64_t older)
{
	snprintf(k, cap, "supby/%s/%llu/%llu", org,
	    (unsigned long long)FBX_DLV_CMD(older), (unsigned long long)older);
}

struct links_ctx {
	fbxi_sup_link_fn fn;
	void *arg;
	int err;
};

static int
links_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct links_ctx *l = arg;
	struct link_val v;
	struct fbxi_sup_origin o;

	(void)key;
	if (link_decode(val, len, &v) != FBX_OK) {
		l->err = FBX_ECORRUPT;
		return 1;
	}
	memset(&o, 0, sizeof(o));
	o.known = v.known != 0;
	o.created_ms = v.created_ms;
	o.origin = v.origin;
	o.type = v.type;
	memcpy(o.reason, v.reason, sizeof(o.reason));
	return l->fn(l->arg, v.older, v.expires_ms,
	    (v.rolled_back & LINK_RB) != 0, (v.rolled_back & LINK_CHAINED) != 0,
	    &o);
}

int
fbxi_supersede_links(struct fbx_engine *e, const char *org,
    uint64_t newer, fbxi_sup_link_fn fn, void *arg)
{
	char prefix[FBX_KV_KEY_MAX];
	struct links_ctx l = { fn, arg, FBX_OK };
	int rc;

	link_prefix(prefix, sizeof(prefix), org, newer);
	rc = fbx_store_kv_scan(e->txn, prefix, links_cb, &l);
	return rc != FBX_OK ? rc : l.err;
}

struct still_wanted {
	int64_t now;
	int yes;
};

static int
still_wanted_cb(void *arg, uint64_t older, int64_t expires_ms, int rolled_back,
    int chained, const struct fbxi_sup_origin *o)
{
	struct still_wanted *w = arg;

	(void)older;
	(void)chained;
	(void)o;
	if (!rolled_back && expires_ms > w->now) {
		w->yes = 1;
		return 1;
	}
	return 0;
}

int
fbxi_supersede_carries(struct fbx_engine *e, const char *org, uint64_t id)
{
	struct still_wanted w = { e->now, 0 };
	int rc = fbxi_supersede_links(e, org, id, still_wanted_cb, &w);

	if (rc == FBX_ECORRUPT) {
		FBX_LOGE("supersede: a damaged link of delivery %llu: taken as "
		         "standing in for an older command",
		    (unsigned long long)id);
		return 1;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	return w.yes;
}

int
fbxi_supersede_links_prune(struct fbx_engine *e, const char *org,
    uint64_t cmd_id, uint32_t *budget)
{
	char prefix[FBX_KV_KEY_MAX];
	int rc;

	snprintf(prefix, sizeof(prefix), "sup/%s/%llu/", org,
	    (unsigned long long)cmd_id);
	rc = fbxi_kv_delete_some(e, prefix, budget, NULL, NULL);
	if (rc != FBX_OK)
		return rc;
	snprintf(prefix, sizeof(prefix), "supby/%s/%llu/", org,
	    (unsigned long long)cmd_id);
	return fbxi_kv_delete_some(e, prefix, budget, NULL, NULL);
}

/* link_up - the link to delivery older of org from the delivery that
 * superseded it (found through supby/): its key in k, its newer end and
 * value. @return FBX_OK, FBX_ENOT_FOUND (not superseded, or the newer
 * command was pruned), FBX_ECORRUPT, or a store error */
static int
link_up(struct fbx_engine *e, const char *org, uint64_t older, char *k,
    size_t cap, uint64_t *newer, struct link_val *v)
{
	size_t len = 0;
	int rc;

	back_key(k, cap, org, older);
	*newer = 0;
	rc = fbx_store_kv_get(e->txn, k, newer, sizeof(*newer), &len);
	if (rc != FBX_OK)
		return rc;
	if (len != sizeof(*newer))
		return FBX_ECORRUPT;
	link_key(k, cap, org, *newer, older);
	{
		struct link_val raw;
		len = 0;
		rc = fbx_store_kv_get(e->txn, k, &raw, sizeof(raw), &len);
		if (rc != FBX_OK)
			return rc;
		return link_decode(&raw, len, v);
	}
}

/* chain_open_cb - a link not rolled back, or one that leads further
 * (LINK_CHAINED): what it stood in for may still be wanted */
static int
chain_open_cb(void *arg, uint64_t older, int64_t expires_ms, int rolled_back,
    int chained, const struct fbxi_sup_origin *o)
{
	(void)older;
	(void)expires_ms;
	(void)o;
	if (!rolled_back || chained) {
		*(int *)arg = 1;
		return 1;
	}
	return 0;
}

/* chain_open - whether delivery id of org superseded a delivery whose
 * command may still want the device (a link not rolled back, or one
 * leading further; a damaged link counts). @return FBX_OK or a store
 * error */
static int
chain_open(struct fbx_engine *e, const char *org, uint64_t id, int *open)
{
	int rc;

	*open = 0;
	rc = fbxi_supersede_links(e, org, id, chain_open_cb, open);
	if (rc == FBX_ECORRUPT) {
		*open = 1;
		rc = FBX_OK;
	}
	return rc;
}

/* unchain_up - once every link of delivery id is rolled back and leads
 * no further, the link to it from the delivery that superseded it
 * (supby/) loses LINK_CHAINED, and so on up the chain: a rollback of
 * the newest command then cancels or undoes it also after retention
 * pruned the rolled-back ones with their links (rollback.c rb_carried).
 * @return FBX_OK or a store error */
static int
unchain_up(struct fbx_engine *e, const char *org, uint64_t id)
{
	char k[FBX_KV_KEY_MAX];
	struct link_val v;
	uint64_t newer;
	int rc, open;

	for (unsigned depth = 0; depth < 256; depth++) {
		struct fbx_delivery d;
		/* retention deletes deliveries before their links: one
		 * gone may have lost some links, so nothing can be told */
		rc = fbx_store_dlv_get(e->txn, id, &d);
		if (rc == FBX_ENOT_FOUND || rc == FBX_ECORRUPT)
			return FBX_OK;
		if (rc != FBX_OK)
			return rc;
		rc = chain_open(e, org, id, &open);
		if (rc != FBX_OK || open)
			return rc;
		rc = link_up(e, org, id, k, sizeof(k), &newer, &v);
		if (rc == FBX_ENOT_FOUND || rc == FBX_ECORRUPT)
			return FBX_OK; /* not superseded (or damaged: left) */
		if (rc != FBX_OK)
			return rc;
		if (!(v.rolled_back & LINK_CHAINED))
			return FBX_OK;
		v.rolled_back &= ~(uint64_t)LINK_CHAINED;
		rc = fbx_store_kv_put(e->txn, k, &v, sizeof(v));
		if (rc != FBX_OK)
			return rc;
		id = newer;
	}
	return FBX_OK;
}

int
fbxi_supersede_rolled_back(
    struct fbx_engine *e, const char *org, uint64_t older)
{
	char k[FBX_KV_KEY_MAX];
	struct link_val v;
	uint64_t newer;
	int rc;

	/* not superseded, or the newer command was pruned: nothing */
	rc = link_up(e, org, older, k, sizeof(k), &newer, &v);
	if (rc == FBX_ECORRUPT) {
		/* left as it is: every reader takes a damaged link as one
		 * the newer delivery stands in for (logged there too) */
		FBX_LOGE("supersede: a damaged link to delivery %llu: not "
		         "flagged rolled back",
		    (unsigned long long)older);
		return FBX_OK;
	}
	if (rc != FBX_OK)
		return rc == FBX_ENOT_FOUND ? FBX_OK : rc;
	if (v.rolled_back & LINK_RB)
		return FBX_OK;
	v.rolled_back |= LINK_RB;
	rc = fbx_store_kv_put(e->txn, k, &v, sizeof(v));
	return rc != FBX_OK ? rc : unchain_up(e, org, newer);
}

/* replace - delivery id of older command oc is superseded by delivery
 * `by` of newer command nc, if it still waits (QUEUED or PENDING) for
 * device and nc lives at least as long (else the device could end up with
 * neither); the link from `by` to id is written with the move.
 * @return a store error, or FBX_OK (also when nothing moved). */
static int
replace(struct fbx_engine *e, struct cmdc *oc, uint64_t id,
    const struct cmdc *nc, uint64_t by, const char *device)
{
	char k[FBX_KV_KEY_MAX];
	struct fbx_delivery d;
	struct link_val v;
	int rc, wd, chained = 0;

	if (!same_kind(oc, nc) || nc->c.expires_ms < oc->c.expires_ms)
		return FBX_OK;
	rc = fbx_store_dlv_get(e->txn, id, &d);
	if (rc == FBX_ENOT_FOUND)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	if (strcmp(d.device, device) != 0)
		return FBX_OK; /* a hash collision */
	/* withdrawn by a rollback (fbxi_dlv_withdrawn): the link says its
	 * command is rolled back, so that the newer one carries nothing of
	 * it (the move, to a final state, ends the mark) */
	wd = fbxi_dlv_withdrawn(e, id);
	/* one in a gateway's hands (or final) stays as it is */
	rc = fbxi_dlv_move(e, oc, id,
	    FBXI_DMASK(FBX_D_QUEUED) | FBXI_DMASK(FBX_D_PENDING),
	    FBX_D_SUPERSEDED, 0, 0, NULL, NULL);
	if (rc == FBX_ESTATE)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	/* left open by an executed rollback that selected it (rbf/: in a
	 * gateway's hands then, reported offline since): rolled back as
	 * well. A damaged mark counts for nothing, as a damaged link
	 * does: the newer one is then left for it */
	if (!wd && fbxi_supersede_applies(oc)) {
		rc = fbxi_rbf_get(e->txn, oc->c.org, id);
		if (rc == FBX_OK)
			wd = 1;
		else if (rc == FBX_ECORRUPT)
			FBX_LOGE("supersede: a damaged rollback mark of "
			         "delivery %llu: taken as not rolled back",
			    (unsigned long long)id);
		else if (rc != FBX_ENOT_FOUND)
			return rc;
	}
	/* whether it stood in for an older delivery in turn, one that may
	 * still be wanted (unchain_up clears the bit when that ends) */
	rc = chain_open(e, oc->c.org, id, &chained);
	if (rc != FBX_OK)
		return rc;
	fbxi_cmd_touch(oc);
	e->superseded++;
	link_key(k, sizeof(k), nc->c.org, by, id);
	memset(&v, 0, sizeof(v));
	v.older = id;
	v.expires_ms = oc->c.expires_ms;
	v.rolled_back = (wd ? LINK_RB : 0) | (chained ? LINK_CHAINED : 0);
	v.created_ms = oc->c.created_ms;
	v.origin = oc->c.origin;
	v.type = oc->c.type;
	v.known = 1;
	snprintf(v.reason, sizeof(v.reason), "%s", oc->c.reason);
	rc = fbx_store_kv_put(e->txn, k, &v, sizeof(v));
	if (rc != FBX_OK)
		return rc;
	back_key(k, sizeof(k), oc->c.org, id);
	return fbx_store_kv_put(e->txn, k, &by, sizeof(by));
}

/* stands - whether delivery id of command cc is device's and will still
 * reach it or did, and was not undone: waiting (unless a rollback
 * withdrew it and its gateway reported the device offline: the check-in
 * cancels it, fbxi_dlv_withdrawn), in a gateway's hands, or succeeded
 * without a rollback's compensation (comp/ marker).
 * @return 1, 0, or -1 with the store error latched. */
static int
stands(struct fbx_engine *e, const struct cmdc *cc, uint64_t id,
    const char *device)
{
	struct fbx_delivery d;
	int rc;

	rc = fbx_store_dlv_get(e->txn, id, &d);
	if (rc == FBX_ENOT_FOUND)
		return 0;
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	if (strcmp(d.device, device) != 0)
		return 0; /* a hash collision: not this device's */
	if (d.state == FBX_D_PENDING && fbxi_dlv_withdrawn(e, id))
		return 0; /* rolled back, never got: cancelled at check-in */
	switch (d.state) {
	case FBX_D_QUEUED:
	case FBX_D_PENDING:
	case FBX_D_SENT:
	case FBX_D_ACCEPTED:
		return 1;
	case FBX_D_SUCCEEDED:
		rc = fbxi_comp_get(e->txn, cc->c.org, id, NULL);
		if (rc == FBX_ENOT_FOUND)
			return 1;
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return -1;
		}
		return 0;
	default:
		return 0;
	}
}

/* index_one - delivery id of cc is open for device (QUEUED or PENDING):
 * index it unless a newer one of its kind is, of a command still open
 * (a finished command's entry decides nothing, whether or not a sweep
 * has dropped it yet). @return 0, or -1 out of memory. */
static int
index_one(struct fbx_engine *e, const struct cmdc *cc, uint64_t id,
    const char *device)
{
	uint64_t key = kind_key(cc, device), old = 0;

	if (fbxi_idmap_get(&e->supersede, key, &old) && old > id &&
	    fbxi_cmd_find(e, FBX_DLV_CMD(old)) != NULL)
		return 0;
	return fbxi_idmap_put(&e->supersede, key, id);
}

struct build_ctx {
	struct fbx_engine *e;
	const struct cmdc *cc;
	uint64_t skip; /* the delivery being created: it goes in after */
	uint64_t read;
	int err;
};

static int
build_cb(void *arg, const struct fbx_delivery *d)
{
	struct build_ctx *b = arg;

	b->read++;
	/* every delivery, whatever its state now, as creation indexed it:
	 * one SENT may come back PENDING (the device went offline) or
	 * QUEUED (its gateway died, a replay), and must then be found */
	if (d->id == b->skip)
		return 0;
	if (index_one(b->e, b->cc, d->id, d->device) != 0) {
		b->err = FBX_ENOMEM;
		return 1;
	}
	return 0;
}

/* build - the kind of cc has more than one open command: index the
 * deliveries of every member not indexed yet (cc's own before `skip`,
 * the one being created), read from the store, each command once.
 * @return FBX_OK or an error (the turn fails; memory is rebuilt). */
static int
build(struct fbx_engine *e, struct cmdc *cc, uint64_t skip)
{
	struct fbxi_skind *k = cc->kind;
	int64_t t0 = fbxi_mono_ms();
	uint64_t read0 = e->sx_read;
	unsigned n = 0;

	while (k->unindexed != NULL) {
		struct cmdc *m = k->unindexed;
		struct build_ctx b;
		uint64_t to;
		int rc;

		memset(&b, 0, sizeof(b));
		b.e = e;
		b.cc = m;
		b.skip = skip;
		/* cc's own: those before the one being created */
		to = m == cc ? skip : FBX_DLV_ID(m->c.id + 1, 0);
		if (to > FBX_DLV_ID(m->c.id, 0)) {
			rc = fbx_store_dlv_scan(e->txn, FBX_DLV_ID(m->c.id, 0),
			    to, 0, build_cb, &b);
			if (rc == FBX_OK)
				rc = b.err;
			if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
				return rc;
		}
		/* off the list: a failed build leaves the rest on it (the
		 * turn fails and memory is rebuilt anyway) */
		k->unindexed = m->knext;
		if (m->knext != NULL)
			m->knext->kprev = NULL;
		m->knext = m->kprev = NULL;
		m->kindexed = 1;
		e->sx_read += b.read;
		e->sx_builds++;
		n++;
	}
	if (e->sx_read - read0 >= 10000)
		FBX_LOGI("supersede: %s's open %s commands (%u) indexed for "
		         "command %llu: %llu deliveries read in %lld ms",
		    cc->c.org, fbx_cmd_type_name(cc->c.type), n,
		    (unsigned long long)cc->c.id,
		    (unsigned long long)(e->sx_read - read0),
		    (long long)(fbxi_mono_ms() - t0));
	return FBX_OK;
}

void
fbxi_supersede_new(struct fbx_engine *e, struct cmdc *cc, uint64_t id,
    const char *device)
{
	uint64_t key, old = 0;
	struct cmdc *oc;
	int rc = FBX_OK;

	if (!fbxi_supersede_applies(cc) || !indexing(cc))
		return; /* alone of its kind: nothing to supersede */
	if (e->supersede.len >= e->sx_sweep_at)
		sweep(e);
	/* every open member of the kind is indexed before a delivery goes
	 * through the index: cc itself when it is new, and a member that
	 * joined after cc was indexed (a finished command a replay brought
	 * back); an empty list costs nothing */
	if (cc->kind != NULL && cc->kind->unindexed != NULL) {
		rc = build(e, cc, id);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
	}
	key = kind_key(cc, device);
	if (fbxi_idmap_get(&e->supersede, key, &old) &&
	    FBX_DLV_CMD(old) != cc->c.id &&
	    (oc = fbxi_cmd_find(e, FBX_DLV_CMD(old))) != NULL) {
		if (oc->c.id > cc->c.id) {
			/* a newer command reached the device first (it was
			 * expanded inline while this one expanded in
			 * slices): this one is the older, and waits in vain,
			 * unless the newer's delivery no longer stands (a
			 * rollback cancelled or undid it): then this one
			 * goes, and takes the index */
			int st = stands(e, oc, old, device);
			if (st < 0)
				return;
			if (st) {
				rc = replace(e, cc, id, oc, old, device);
				if (rc != FBX_OK)
					fbxi_set_err(e, rc);
				return; /* the index keeps the newer one */
			}
			if (fbxi_idmap_put(&e->supersede, key, id) != 0)
				fbxi_set_err(e, FBX_ENOMEM);
			return;
		}
		rc = replace(e, oc, old, cc, id, device);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
	}
	if (fbxi_idmap_put(&e->supersede, key, id) != 0)
		fbxi_set_err(e, FBX_ENOMEM);
}
