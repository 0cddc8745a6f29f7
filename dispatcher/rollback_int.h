/*
 * rollback_int.h: the sliced selection walk that rollback.c runs and
 * replay.c uses too (the selected commands, in walk order, within a
 * budget per slice, with a cursor to go on), and the slice steps
 * rollback_run.c strings into runs.
 */
#ifndef FBX_ROLLBACK_INT_H
#define FBX_ROLLBACK_INT_H

#include "engine_int.h"

struct comp_group;
struct rb_survey;

/* Rollback and replay run in slices: one request looks at no more than
 * a fixed number of commands and deliveries (fbxi_rb_budget), so a
 * selection of any size never holds the loop or a write transaction for
 * long; the client asks again with the reply's cursor until it is 0.
 * The walk goes over the selected commands in the order the store lists
 * them (explicit ids: ascending; filters: created time, then id), and the
 * cursor says where the next slice starts:
 *   0                    the first slice
 *   RB_BEGUN             begun: nothing of the selection looked at yet
 *                        (the slices so far surveyed later commands)
 *   FBX_DLV_ID(c, 0)     every command up to c in walk order looked at
 *   FBX_DLV_ID(c, i > 0) command c looked at up to delivery index i
 * Each slice is idempotent: cancels move only queued or pending
 * deliveries, compensations leave comp/ markers, so a slice run again
 * (a reply lost in a crash) does nothing twice. */
#define RB_BEGUN 1u

struct rb_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	const struct fbx_selector *s;
	const char *org;
	int include_changed;
	struct fbx_rb_plan plan;
	size_t rows_cap;
	/* commands begun in this slice, walk order */
	uint64_t *ids;
	size_t nids, idcap;
	/* explicit ids of the selector, sorted, and as a set */
	uint64_t *named;
	size_t nnamed;
	struct fbxi_idmap named_set;
	int64_t since, until; /* the selection's window */
	/* an incident with an onset: commands created before it (from
	 * since) are listed apart and left; 0 = none such */
	int64_t onset;
	int before;           /* the command visited is before the onset */
	/* what the survey notes of the command it visits: its locking or
	 * unlocking before the onset (any origin), its reaching a device
	 * later (unselected commands) */
	int note_before, note_latest;
	size_t bo_cap;        /* before-onset rows kept */
	uint64_t snapshot;    /* commands journaled later are not selected */
	struct rb_survey *sv; /* changed since; NULL when not needed */
	/* the slice's budget and where it stopped */
	uint32_t cmd_budget, dlv_budget, ncmd, ndlv, nlater;
	uint64_t after;   /* last command completely walked, 0 = none */
	uint64_t next;    /* the reply's cursor */
	int stopped;      /* the budget ran out */
	uint64_t first_cmd, last_cmd; /* commands begun in this slice */
	fbx_dlv_fn dlv_fn; /* per delivery of a selected command */
	void *dlv_arg;
	uint64_t last_dlv; /* last delivery the scan handed over */
	uint32_t seen;     /* deliveries the scan handed over */
	/* execution */
	struct comp_group *groups;
	size_t ngroups;
	uint64_t *cancel;
	fbx_id *cancel_dev;
	uint8_t *cancel_state;
	size_t ncancel, ccap;
	uint64_t *held;
	size_t nheld, hcap;
	uint64_t *sup; /* superseded deliveries of selected commands */
	size_t nsup, scap;
	uint64_t *wd; /* theirs sent once, not accepted: withdrawn */
	size_t nwd, wcap;
	uint64_t *inf; /* left open (kinds that supersede): marked
	                  (rbf/) */
	size_t ninf, icap;
	int err;
	/* current command while scanning its deliveries */
	const struct fbx_command *cur;
	int for_replay; /* selection for a replay: compensations count */
};

/* How far before the selection's window the survey looks for locks of
 * any origin (an operator's lock of a lost phone): the longest a command
 * lives (30 days) */
#define RB_PRIOR_LOCK_MS (30LL * 24 * 3600 * 1000)

/* what a command is to a rollback (rollback_select.c): its compensation
 * (FBX_CMD_NONE: none), whether it cannot be undone, its family
 * (commands that change the same thing on a device: 1 lock, 2 apps,
 * 0 other) */
int fbxi_rb_compensation_of(int type);
int fbxi_rb_irreversible(int type);
int fbxi_rb_family(int type);
/* c is in the run's selection; c is the incident's lock-family command
 * before its onset, which the rollback leaves (rollback_select.c); the
 * slice's budget is spent */
int fbxi_rb_selected(const struct rb_ctx *r, const struct fbx_command *c);
int fbxi_rb_bo_kept(const struct rb_ctx *r, const struct fbx_command *c);
static inline int
fbxi_rb_spent(const struct rb_ctx *r)
{
	return r->ncmd >= r->cmd_budget || r->ndlv >= r->dlv_budget;
}

/* the survey (rollback_select.c): the run's survey from since (kept
 * between slices), brought up to the newest command within the slice's
 * budget (r->stopped: not there yet); then, per delivery of a selected
 * command, whether a later command changed its device, and whether a
 * command the rollback leaves had locked it before */
int fbxi_rb_survey_get(struct rb_ctx *r, int64_t since,
    struct rb_survey **out);
int fbxi_rb_survey_run(struct rb_ctx *r);
int fbxi_rb_changed_since(struct rb_ctx *r, const struct fbx_command *c,
    const char *dev);
int fbxi_rb_bo_locked(const struct rb_ctx *r, const struct fbx_command *c,
    const struct fbx_delivery *d);

int fbxi_rb_begin(struct rb_ctx *r, uint64_t cursor, uint64_t snapshot);
int fbxi_rb_walk(struct rb_ctx *r, uint64_t cursor);
void fbxi_rb_free(struct rb_ctx *r);
void fbxi_rb_refuse_unsliced(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, const struct rb_ctx *r);

/* the steps of one slice, for rollback_run.c: set up r for one
 * organisation, plan a slice, execute it (rbseq: the rollback's id) */
int fbxi_rb_setup(struct rb_ctx *r, struct fbx_engine *e,
    struct fbx_console_req *req, const char *org);
int fbxi_rb_plan_part(struct rb_ctx *r, uint64_t cursor, uint64_t snapshot);
int fbxi_rb_exec(struct rb_ctx *r, uint64_t rbseq);
void fbxi_rb_budget(const struct fbx_engine *e, uint32_t *cmds, uint32_t *dlvs);
uint64_t fbxi_rb_fp_mix(uint64_t h, const void *p, size_t n);
void fbxi_rb_survey_drop(struct rb_survey *sv);
void fbxi_rb_surveys_tidy(const struct fbx_engine *e);

#endif
