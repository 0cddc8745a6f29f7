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
 */
#ifndef FBXI_SUPERSEDE_H
#define FBXI_SUPERSEDE_H

#include <stdint.h>

struct fbx_engine;
struct cmdc;

/* fbxi_supersede_applies - whether deliveries of cc take part. */
int fbxi_supersede_applies(const struct cmdc *cc);

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

/* fbxi_supersede_index - rebuild: delivery id of cc is open for device
 * (QUEUED or PENDING); index it if it is the newest of its kind.
 * @return 0, or -1 out of memory. */
int fbxi_supersede_index(struct fbx_engine *e, const struct cmdc *cc,
    uint64_t id, const char *device);

#endif
