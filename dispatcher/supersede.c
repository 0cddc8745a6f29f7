/*
 * supersede.c: newer replaces older for the same device (see
 * supersede.h). Depends on core.c and delivery.c.
 */
#include <string.h>

#include "delivery.h"
#include "engine_int.h"

int
fbxi_supersede_applies(const struct cmdc *cc)
{
	if (cc->c.rollout.enabled)
		return 0;
	switch (cc->c.type) {
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

/* kind_key - (organisation, device, type, payload) as a non-zero key.
 * A collision only names a candidate: same_kind() checks it exactly. */
static uint64_t
kind_key(const struct cmdc *cc, const char *device)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	uint8_t t = cc->c.type;

	h = fnv(h, cc->c.org, strlen(cc->c.org) + 1);
	h = fnv(h, device, strlen(device) + 1);
	h = fnv(h, &t, 1);
	h = fnv(h, cc->c.payload, cc->c.payload_len);
	return h != 0 ? h : 1;
}

void
fbxi_supersede_prefetch(
    struct fbx_engine *e, const struct cmdc *cc, const char *device)
{
	if (fbxi_supersede_applies(cc))
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

/* replace - delivery id of older command oc is superseded by newer
 * command nc, if it still waits (QUEUED or PENDING) for device and nc
 * lives at least as long (else the device could end up with neither).
 * @return a store error, or FBX_OK (also when nothing moved). */
static int
replace(struct fbx_engine *e, struct cmdc *oc, uint64_t id,
    const struct cmdc *nc, const char *device)
{
	struct fbx_delivery d;
	int rc;

	if (!same_kind(oc, nc) || nc->c.expires_ms < oc->c.expires_ms)
		return FBX_OK;
	rc = fbx_store_dlv_get(e->txn, id, &d);
	if (rc == FBX_ENOT_FOUND)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	if (strcmp(d.device, device) != 0)
		return FBX_OK; /* a hash collision */
	/* one in a gateway's hands (or final) stays as it is */
	rc = fbxi_dlv_move(e, oc, id,
	    FBXI_DMASK(FBX_D_QUEUED) | FBXI_DMASK(FBX_D_PENDING),
	    FBX_D_SUPERSEDED, 0, 0, NULL, NULL);
	if (rc == FBX_OK) {
		fbxi_cmd_touch(oc);
		e->superseded++;
	}
	return rc == FBX_ESTATE ? FBX_OK : rc;
}

void
fbxi_supersede_new(struct fbx_engine *e, struct cmdc *cc, uint64_t id,
    const char *device)
{
	uint64_t key, old = 0;
	struct cmdc *oc;
	int rc = FBX_OK;

	if (!fbxi_supersede_applies(cc))
		return;
	key = kind_key(cc, device);
	if (fbxi_idmap_get(&e->supersede, key, &old) &&
	    FBX_DLV_CMD(old) != cc->c.id &&
	    (oc = fbxi_cmd_find(e, FBX_DLV_CMD(old))) != NULL) {
		if (oc->c.id > cc->c.id) {
			/* a newer command reached the device first (it was
			 * expanded inline while this one expanded in
			 * slices): this one is the older, and waits in vain */
			rc = replace(e, cc, id, oc, device);
			if (rc != FBX_OK)
				fbxi_set_err(e, rc);
			return; /* the index keeps the newer one */
		}
		rc = replace(e, oc, old, cc, device);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
	}
	if (fbxi_idmap_put(&e->supersede, key, id) != 0)
		fbxi_set_err(e, FBX_ENOMEM);
}

int
fbxi_supersede_index(struct fbx_engine *e, const struct cmdc *cc, uint64_t id,
    const char *device)
{
	uint64_t key, old = 0;

	if (!fbxi_supersede_applies(cc))
		return 0;
	key = kind_key(cc, device);
	if (fbxi_idmap_get(&e->supersede, key, &old) && old > id)
		return 0; /* a newer one is indexed */
	return fbxi_idmap_put(&e->supersede, key, id);
}
