/*
 * replay.c: a command's deliveries sent again with their own ids (a
 * device acts on an id once), selected by the same sliced walk as a
 * rollback (rollback_int.h).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "engine_int.h"
#include "rollback_int.h"

struct replay_ctx {
	struct fbx_engine *e;
	struct fbx_console_req *req;
	struct cmdc *cc;
	struct fbx_replay_result res;
	uint64_t *ids;
	size_t n, cap;
	int err;
};

static int
replay_dlv_cb(void *arg, const struct fbx_delivery *d)
{
	struct replay_ctx *r = arg;
	int want = r->req->u.replay.state;

	if (want != 0 && d->state != want)
		return 0;
	if (want == 0 && d->state != FBX_D_SENT && d->state != FBX_D_ACCEPTED &&
	    !fbx_dstate_terminal(d->state))
		return 0; /* queued or pending: already on their way */
	r->res.matched++;
	if (fbx_dstate_terminal(d->state) && !r->req->u.replay.force) {
		r->res.skipped_terminal++;
		return 0;
	}
	if (d->state == FBX_D_QUEUED || d->state == FBX_D_PENDING)
		return 0;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		uint64_t *ni = realloc(r->ids, ncap * sizeof(*ni));
		if (ni == NULL) {
			r->err = FBX_ENOMEM;
			return 1;
		}
		r->ids = ni;
		r->cap = ncap;
	}
	r->ids[r->n++] = d->id;
	return 0;
}

/* handle_replay - one slice of a replay: send chosen deliveries again
 * with their delivery ids, for a gateway that lost what it received.
 * Terminal ones only when forced; they then go back to QUEUED and their
 * new outcome is recorded. The selection and its slices are the
 * rollback's (fbxi_rb_walk); a slice run again finds what it requeued queued
 * and leaves it. */
void
fbxi_handle_replay(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct replay_ctx r;
	struct rb_ctx sel;
	uint64_t cursor = req->u.replay.cursor;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&sel, 0, sizeof(sel));
	r.e = e;
	r.req = req;
	sel.e = e;
	sel.req = req;
	sel.s = &req->u.replay.sel;
	sel.org = req->org;
	sel.for_replay = 1;
	sel.dlv_fn = replay_dlv_cb;
	sel.dlv_arg = &r;
	rc = fbxi_rb_begin(&sel, cursor, req->u.replay.last_command_id);
	if (rc == FBX_EINVALID) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EINVALID,
		    "replay: cursor or last_command_id not given by this "
		    "store");
		goto out;
	}
	if (rc == FBX_OK)
		rc = fbxi_rb_walk(&sel, cursor);
	if (rc == FBX_OK)
		rc = r.err;
	if (rc == FBX_ENOT_FOUND) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no such command in organisation '%s'", req->org);
		goto out;
	}
	if (rc != FBX_OK)
		goto fail;
	if (sel.next != 0 && !req->u.replay.sliced) {
		fbxi_rb_refuse_unsliced(e, in, req, &sel);
		goto out;
	}
	if (req->u.replay.execute) {
		for (size_t i = 0; i < r.n; i++) {
			uint64_t id = r.ids[i];
			struct cmdc *cc = fbxi_cmd_find(e, FBX_DLV_CMD(id));
			int old = 0;
			if (cc == NULL) {
				/* a finished command comes back to life */
				struct fbx_command c;
				rc = fbx_store_cmd_get(e->txn, FBX_DLV_CMD(id), &c);
				if (rc != FBX_OK)
					goto fail;
				c.state = FBX_C_ACTIVE;
				cc = fbxi_cmd_cache_add(e, &c);
				fbx_command_clear(&c);
				if (cc == NULL) {
					rc = FBX_ENOMEM;
					goto fail;
				}
				/* its counts come from its deliveries */
				memset(cc->c.counts, 0, sizeof(cc->c.counts));
				{
					struct rebuild_ctx rr;
					memset(&rr, 0, sizeof(rr));
					rr.e = e;
					rr.cc = cc;
					rr.count_only = 1;
					rc = fbx_store_dlv_scan(e->txn,
					    FBX_DLV_ID(cc->c.id, 0),
					    FBX_DLV_ID(cc->c.id, 0) +
					        cc->c.ndeliveries,
					    0, fbxi_rebuild_dlv_cb, &rr);
					free(rr.requeue);
					if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
						goto fail;
				}
				fbxi_cmd_touch(cc);
			}
			rc = fbxi_dlv_replay(e, cc, id, &old);
			if (rc == FBX_ESTATE || rc == FBX_ENOT_FOUND)
				continue;
			/* sent again on purpose: a rollback's withdrawal
			 * (fbxi_dlv_withdrawn) or mark of one it left
			 * open (rbf/) no longer holds */
			if (rc == FBX_OK)
				rc = fbxi_dlv_unwithdraw(e, cc->c.org, id);
			if (rc == FBX_OK && fbxi_supersede_applies(cc))
				rc = fbxi_rbf_del(e->txn, cc->c.org, id);
			if (rc != FBX_OK)
				goto fail;
			if (fbxi_orgq_push(e, cc->q, FBX_PRIO_RECOVERY, id) != FBX_OK) {
				rc = FBX_ENOMEM;
				goto fail;
			}
			r.res.resent++;
		}
		if (sel.nids > 0 || r.res.matched > 0)
			fbxi_audit(e, req->org, req->actor, "replay",
			    req->u.replay.note,
			    "{\"cursor\":%llu,\"next_cursor\":%llu,"
			    "\"first_command\":%llu,\"last_command\":%llu,"
			    "\"commands\":%zu,\"matched\":%u,\"resent\":%u,"
			    "\"skipped_terminal\":%u,\"force\":%s}",
			    (unsigned long long)cursor,
			    (unsigned long long)sel.next,
			    (unsigned long long)sel.first_cmd,
			    (unsigned long long)sel.last_cmd, sel.nids,
			    r.res.matched, r.res.resent, r.res.skipped_terminal,
			    req->u.replay.force ? "true" : "false");
	}
	r.res.next_cursor = sel.next;
	r.res.last_command_id = sel.snapshot;
	r.res.commands = sel.plan.commands;
	r.res.looked_at = sel.ncmd + sel.ndlv;
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.replay = r.res;
	fbxi_console_reply(e, in, &rep);
	goto out;
fail:
	fbxi_set_err(e, rc);
out:
	free(r.ids);
	fbxi_rb_free(&sel);
}
