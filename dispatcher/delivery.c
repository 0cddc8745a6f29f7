/*
 * delivery.c: the only writer of a delivery's state. One table says which
 * moves are legal; fbxi_dlv_move() refuses the others, so a late result
 * can never bring a terminal delivery back to life and a requeue can
 * never resend one that already succeeded. What hangs off a delivery's
 * state (counts, rollout tallies, the offline index) is kept here, once.
 */
#include <string.h>

#include "delivery.h"
#include "engine_int.h"

/* legal[to] = the states a delivery may come from. Terminal states have
 * no way out; NONE is the state before creation (fbx_store_dlv_put). */
static const unsigned legal[FBX_D_COUNT] = {
	[FBX_D_QUEUED] = FBXI_DHELD | FBXI_DMASK(FBX_D_PENDING),
	[FBX_D_SENT] = FBXI_DMASK(FBX_D_QUEUED),
	[FBX_D_ACCEPTED] = FBXI_DMASK(FBX_D_SENT),
	/* an outcome: from the gateway that holds it, or from one that
	 * held it before a requeue (the device ran it: record that) */
	[FBX_D_SUCCEEDED] = FBXI_DHELD | FBXI_DMASK(FBX_D_QUEUED),
	[FBX_D_FAILED] = FBXI_DHELD | FBXI_DMASK(FBX_D_QUEUED),
	[FBX_D_PENDING] = FBXI_DHELD,
	[FBX_D_EXPIRED] = FBXI_DOPEN,
	[FBX_D_CANCELLED] = FBXI_DOPEN,
	/* only what no gateway holds: a delivery in flight runs */
	[FBX_D_SUPERSEDED] = FBXI_DMASK(FBX_D_QUEUED) |
	    FBXI_DMASK(FBX_D_PENDING),
};

/* ro_tally - count a delivery's move in the current wave. */
void
fbxi_ro_tally(struct cmdc *cc, uint64_t id, int from, int to, uint16_t code)
{
	uint32_t idx = FBX_DLV_IDX(id);
	int before, after;

	if (!cc->c.rollout.enabled || idx < cc->c.ro.wave_start ||
	    idx >= cc->c.ro.wave_start + cc->c.ro.wave_size)
		return;
	before = fbx_dstate_terminal(from) || from == FBX_D_PENDING;
	after = fbx_dstate_terminal(to) || to == FBX_D_PENDING;
	if (after && !before)
		cc->w_settled++;
	else if (before && !after && cc->w_settled > 0)
		cc->w_settled--;
	if (to == FBX_D_SUCCEEDED && from != FBX_D_SUCCEEDED)
		cc->w_ok++;
	if (to == FBX_D_FAILED && from != FBX_D_FAILED) {
		cc->w_fail++;
		if (code == cc->w_topcode || cc->w_topcode_n == 0) {
			cc->w_topcode = code;
			cc->w_topcode_n++;
		} else if (--cc->w_topcode_n == 0) {
			/* majority vote: the code most failures share */
			cc->w_topcode = code;
			cc->w_topcode_n = 1;
		}
	}
}

unsigned
fbxi_dlv_legal_from(int to)
{
	if (to <= FBX_D_NONE || to >= FBX_D_COUNT)
		return 0;
	return legal[to];
}

/* dlv_apply - move id to `to` from any state of mask (already checked
 * against the table, or the replay's own set) and keep what depends on
 * a delivery's state in step. */
static int
dlv_apply(struct fbx_engine *e, struct cmdc *cc, uint64_t id, unsigned mask,
    int to, uint16_t code, int attempt, int *old, struct fbx_dlv_head *out)
{
	struct fbx_dlv_head d;
	int from = FBX_D_NONE, rc;

	if (mask == 0)
		return FBX_ESTATE;
	rc = fbx_store_dlv_step(
	    e->txn, id, mask, to, code, e->now, attempt, &from, &d);
	if (old != NULL)
		*old = from;
	if (rc != FBX_OK)
		return rc;
	if (from == FBX_D_PENDING) {
		rc = fbx_store_pend_del(e->txn, cc->c.org, d.device, id);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
			return rc;
	}
	if (to == FBX_D_PENDING) {
		rc = fbx_store_pend_add(e->txn, cc->c.org, d.device, id);
		if (rc != FBX_OK)
			return rc;
	}
	if (fbx_dstate_terminal(to) && fbxi_dlv_withdrawn(e, id)) {
		/* its outcome is known: the mark has done its work */
		rc = fbxi_dlv_unwithdraw(e, cc->c.org, id);
		if (rc != FBX_OK)
			return rc;
	}
	fbxi_count_move(cc, from, to);
	/* an outcome (succeeded, failed, expired) is counted at the end of
	 * its own turn, also while its command stays open; one taken back
	 * (a replay) is taken off the counts there too, so that the
	 * delivery's new outcome counts once it comes */
	if ((FBXI_DMASK(to) | FBXI_DMASK(from)) & FBXI_DOUTCOME)
		fbxi_cmd_enlist(cc);
	fbxi_ro_tally(cc, id, from, to, code);
	if (fbx_dstate_terminal(to))
		fbxi_cmd_maybe_done(cc);
	if (out != NULL)
		*out = d;
	return FBX_OK;
}

int
fbxi_dlv_move(struct fbx_engine *e, struct cmdc *cc, uint64_t id,
    unsigned from_mask, int to, uint16_t code, int attempt, int *old,
    struct fbx_dlv_head *out)
{
	return dlv_apply(e, cc, id, from_mask & fbxi_dlv_legal_from(to), to,
	    code, attempt, old, out);
}

int
fbxi_dlv_replay(struct fbx_engine *e, struct cmdc *cc, uint64_t id, int *old)
{
	const unsigned from =
	    FBXI_DHELD | FBXI_DOUTCOME | FBXI_DMASK(FBX_D_CANCELLED);

	fbxi_gw_drop(e, id);
	if (fbxi_err(e) != FBX_OK)
		return fbxi_err(e);
	return dlv_apply(e, cc, id, from, FBX_D_QUEUED, 0, 0, old, NULL);
}
