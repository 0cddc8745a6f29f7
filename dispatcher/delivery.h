/*
 * delivery.h: the delivery state machine. Every change of a delivery's
 * state goes through fbxi_dlv_move(), which checks the move against one
 * transition table, writes it to the store and keeps what depends on it
 * (the command's per-state counts, the rollout wave tallies, the offline
 * index, the command's DONE state) in step. Internal to dispatcher/.
 */
#ifndef FBXI_DELIVERY_H
#define FBXI_DELIVERY_H

#include <stdint.h>

struct fbx_engine;
struct cmdc;
struct fbx_dlv_head;

/* FBXI_DMASK(s) - the bit of state s in a from-set. */
#define FBXI_DMASK(s) (1u << (s))
/* the states a delivery is open in (not terminal) */
#define FBXI_DOPEN                                                           \
	(FBXI_DMASK(FBX_D_QUEUED) | FBXI_DMASK(FBX_D_SENT) |                 \
	    FBXI_DMASK(FBX_D_ACCEPTED) | FBXI_DMASK(FBX_D_PENDING))
/* in a gateway's hands */
#define FBXI_DHELD (FBXI_DMASK(FBX_D_SENT) | FBXI_DMASK(FBX_D_ACCEPTED))
/* the outcomes a device gave or a delivery ran into, counted per type
 * (fbxi_outq_note) */
#define FBXI_DOUTCOME                                                        \
	(FBXI_DMASK(FBX_D_SUCCEEDED) | FBXI_DMASK(FBX_D_FAILED) |            \
	    FBXI_DMASK(FBX_D_EXPIRED))

/**
 * fbxi_dlv_legal_from - the states a delivery may move to `to` from.
 * @return a mask of FBXI_DMASK bits; 0 for an unknown or initial state.
 */
unsigned fbxi_dlv_legal_from(int to);

/**
 * fbxi_dlv_move - move delivery `id` of command `cc` to `to`, but only if
 * its current state is in `from_mask` and the move is legal. Writes the
 * store in e's open transaction and then updates the counts, the rollout
 * tallies, the offline index (PENDING in or out) and the command's DONE
 * state.
 * @param[in] attempt non-zero: one more hand-off to a gateway.
 * @param[out] old the state found (also when refused); may be NULL.
 * @param[out] out the record's head after the move (no history); may be
 * NULL.
 * @return FBX_OK; FBX_ESTATE when the delivery's state is outside
 * from_mask or the move is illegal (nothing written, the transaction
 * stays usable); FBX_ENOT_FOUND; or a store write error, which the caller
 * must treat as fatal to the transaction.
 */
int fbxi_dlv_move(struct fbx_engine *e, struct cmdc *cc, uint64_t id,
    unsigned from_mask, int to, uint16_t code, int attempt, int *old,
    struct fbx_dlv_head *out);

/**
 * fbxi_dlv_replay - the one move outside the table: an operator's replay
 * puts a delivery that is in a gateway's hands, or (forced) already
 * final, back to QUEUED so that it is sent again with its delivery id.
 * Whichever session held it lets go of it first. Keeps what
 * fbxi_dlv_move() keeps. QUEUED and PENDING deliveries are refused
 * (FBX_ESTATE): they are already on their way.
 * @return as fbxi_dlv_move().
 */
int fbxi_dlv_replay(
    struct fbx_engine *e, struct cmdc *cc, uint64_t id, int *old);

#endif
