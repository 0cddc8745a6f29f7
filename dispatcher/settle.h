/*
 * settle.h: the settle window of automatic lock-type commands. Such a
 * command is journaled at once, counted by the breakers, and released
 * for dispatch only when its settle delay has passed; a breaker that
 * trips meanwhile holds the commands of the incident that are still
 * settling, so a storm trips its breakers before any of its commands
 * reaches a device. This module owns the SETTLING state: the order in
 * which settling commands are due (a binary heap in memory, rebuilt from
 * the store with the command cache), their release and their hold.
 * Internal to dispatcher/.
 */
#ifndef FBXI_SETTLE_H
#define FBXI_SETTLE_H

#include <stddef.h>
#include <stdint.h>

#include "theap.h"

struct fbx_engine;

/* fbxi_settle_add - remember that command id settles until at_ms.
 * Called when a SETTLING command enters the command cache (submit,
 * staged release, rebuild). @return 0, or -1 out of memory. */
int fbxi_settle_add(struct fbx_engine *e, uint64_t id, int64_t at_ms);

/* fbxi_settle_clear - forget every entry (memory is being rebuilt). */
void fbxi_settle_clear(struct fbx_engine *e);
void fbxi_settle_free(struct fbx_engine *e);

/* fbxi_settle_step - release the commands whose settle delay is over:
 * SETTLING -> EXPANDING, with the verdict in their note and an event. */
void fbxi_settle_step(struct fbx_engine *e);

/* fbxi_settle_hold - a breaker tripped: hold the commands of `reason`
 * still settling that were submitted at or after since_ms, in `org`
 * (NULL = every organisation): SETTLING -> HELD by `held_by`.
 * @return how many. */
uint32_t fbxi_settle_hold(struct fbx_engine *e, const char *org,
    const char *reason, int64_t since_ms, const char *held_by,
    const char *note);

/* fbxi_settle_count - commands settling now for (org, reason); org NULL
 * = every organisation. */
uint64_t fbxi_settle_count(
    struct fbx_engine *e, const char *org, const char *reason);


#endif
