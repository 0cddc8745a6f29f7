/*
 * supersede.h: a newer command of the same type, payload and origin for
 * a device supersedes an older one that is still queued or pending for
 * it, if the newer one lives at least as long (the older delivery
 * becomes SUPERSEDED, terminal, never sent), so an offline device that
 * checks in gets one lock, not ten. Deliveries in a gateway's
 * hands are never superseded: they run. Applies to the commands that set
 * a device's state (lock, unlock, wipe, lost mode on/off, clear passcode,
 * restart), never to staged rollouts. This module owns the index of the
 * latest open delivery per (organisation, device, type, payload): memory,
 * rebuilt from the store with the command cache. Internal to dispatcher/.
 *
 * The index is built lazily, per kind (organisation, type, origin,
 * payload): a command alone of its kind among the open commands (the
 * common case of a large fan-out) has nothing to supersede and nothing
 * that could supersede it, so its deliveries stay out of the index (each
 * entry is a cache miss in a map as large as the fleet). When a delivery
 * is created while another open command of the same kind exists, every
 * member of the kind not yet indexed has its deliveries read from the
 * store into the index first (every one, as creation indexes them: a
 * SENT one may come back PENDING or QUEUED; once per command: an indexed
 * command stays indexed), and the delivery then goes through the index
 * as before. Recovery indexes nothing: the first delivery created after
 * it builds what it needs.
 */
#ifndef FBXI_SUPERSEDE_H
#define FBXI_SUPERSEDE_H

#include <stdint.h>

struct fbx_engine;
struct fbx_command;
struct cmdc;
struct fbxi_skind;

/* fbxi_supersede_join - cc entered the command cache: if it supersedes,
 * it joins its kind. @return 0, or -1 out of memory (nothing changed). */
int fbxi_supersede_join(struct fbx_engine *e, struct cmdc *cc);

/* fbxi_supersede_leave - cc leaves the command cache (its kind forgets
 * it; an empty kind is freed). Its index entries stay: a lookup that
 * finds a command no longer cached ignores it. */
void fbxi_supersede_leave(struct fbx_engine *e, struct cmdc *cc);

/* fbxi_supersede_clear - forget every kind and the index (the command
 * cache is being dropped). */
void fbxi_supersede_clear(struct fbx_engine *e);

/* fbxi_supersede_applies - whether deliveries of cc take part;
 * fbxi_supersede_applies_cmd the same for a command record. */
int fbxi_supersede_applies(const struct cmdc *cc);
int fbxi_supersede_applies_cmd(const struct fbx_command *c);

/* fbxi_supersede_new - delivery id of cc was just created (QUEUED or
 * PENDING) for device: supersede the older open delivery of the same kind
 * for that device, if any, and index this one. Store errors latch
 * (fbxi_set_err). */
void fbxi_supersede_new(struct fbx_engine *e, struct cmdc *cc, uint64_t id,
    const char *device);

/* fbxi_supersede_prefetch - start loading the index slot that
 * fbxi_supersede_new(e, cc, ., device) will look at (expansion looks one
 * device ahead). Changes nothing. */
void fbxi_supersede_prefetch(
    struct fbx_engine *e, const struct cmdc *cc, const char *device);

/* The links from a delivery to the ones it superseded: "sup/<org>/
 * <command of the newer>/<newer delivery>/<older delivery>" -> the older
 * delivery id, its command's expires_ms, and whether a rollback that
 * selected the older command executed (u64, i64, u64, host order; the
 * older command may be pruned first), in the engine's kv records,
 * written with the move to SUPERSEDED and pruned with the newer command
 * (retention.c).
 * Usually one per newer delivery; two when a command expanding in slices
 * met a newer one that had already superseded another. The older
 * delivery is terminal and will never be sent: what it would have done
 * to the device rides on the newer one, which a rollback must therefore
 * not take away while the older command still wants it (rollback.c). */

/* fbxi_supersede_links - call fn(arg, older, expires_ms of its command,
 * whether a rollback that selected it executed (or it was withdrawn or
 * left open by one: rbd/, rbf/), whether it leads further (links of its
 * own of which one was not rolled back or leads further in turn, which
 * go when retention prunes its command; cleared when a rollback flags
 * the last of them), what a rollback's filter selects the older command
 * by (o->known 0 for a link written before links held it)) for each
 * delivery that delivery `newer` of organisation org superseded, until
 * fn returns non-zero.
 * @return FBX_OK, FBX_ECORRUPT (a damaged link), or a store error. */
struct fbxi_sup_origin {
	int known;
	int64_t created_ms;
	uint8_t origin, type;
	char reason[FBX_ID_MAX + 1];
};
typedef int (*fbxi_sup_link_fn)(void *arg, uint64_t older,
    int64_t expires_ms, int rolled_back, int chained,
    const struct fbxi_sup_origin *o);
int fbxi_supersede_links(struct fbx_engine *e, const char *org,
    uint64_t newer, fbxi_sup_link_fn fn, void *arg);

/* fbxi_supersede_carries - whether delivery id of org superseded one of
 * a command that was not rolled back and still wants the device (its
 * time to live runs past now): what it does to the device, that command
 * needs. A damaged link counts as yes (logged). One level deep, unlike
 * the rollback's rb_carried: it serves withdrawn deliveries, which
 * rb_carried found carrying nothing when they were withdrawn; their
 * links' rolled-back flags only go from 0 to 1 since (it reads no other), expiries only grow along a
 * chain (replace()), and a link made later points at a delivery created
 * after, which has none of its own. @return 1, 0, or -1 with the store
 * error latched. */
int fbxi_supersede_carries(struct fbx_engine *e, const char *org, uint64_t id);

/* fbxi_supersede_rolled_back - superseded delivery `older` belongs to a
 * command an executed rollback selected: its link says so from now on
 * (found through "supby/<org>/<command>/<older>" -> the newer delivery,
 * written with the link, pruned with the older command), so a later
 * rollback of the newer command does not keep it for the older one,
 * also once the older command is pruned. @return FBX_OK (also without a
 * link), FBX_ECORRUPT, or a store error. */
int fbxi_supersede_rolled_back(
    struct fbx_engine *e, const char *org, uint64_t older);

/* fbxi_supersede_links_prune - drop the links of command cmd_id's
 * deliveries, as the newer and as the older (it is being pruned), at
 * most *budget records (fbxi_kv_delete_some). @return FBX_OK or a store
 * error. */
int fbxi_supersede_links_prune(struct fbx_engine *e, const char *org,
    uint64_t cmd_id, uint32_t *budget);


#endif
