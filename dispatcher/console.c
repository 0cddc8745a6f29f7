/*
 * console.c: the console API as the engine serves it: command and device
 * queries, enrolment and removal, and the dispatch of every console
 * request to its handler (submit: admit.c). Runs inside the
 * turn's write transaction; replies leave after the commit.
 */
#include <errno.h>
#include <spawn.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "certs.h"
#include "engine_int.h"
#include "fleet.h"
#include "auth.h"

/* ------------------------------------------------------ console requests */

struct page_ctx {
	struct fbx_delivery *d;
	size_t n, cap;
	int state;
	uint64_t last;
	uint32_t scanned;
};

static int
page_cb(void *arg, const struct fbx_delivery *d)
{
	struct page_ctx *p = arg;

	p->last = d->id;
	p->scanned++;
	if (p->state != FBX_D_NONE && d->state != p->state)
		return p->scanned >= 100000; /* bound the work of one call */
	p->d[p->n++] = *d;
	return p->n >= p->cap;
}

static void
handle_get(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_command loaded;
	const struct fbx_command *c;
	struct cmdc *cc;
	struct page_ctx p;
	uint64_t id = req->u.get.command_id, from, to;
	int rc;

	memset(&rep, 0, sizeof(rep));
	memset(&loaded, 0, sizeof(loaded));
	memset(&p, 0, sizeof(p));
	cc = fbxi_cmd_find(e, id);
	if (cc != NULL) {
		c = &cc->c;
	} else {
		rc = fbx_store_cmd_get(e->txn, id, &loaded);
		if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
			fbxi_set_err(e, rc);
			return;
		}
		c = rc == FBX_OK ? &loaded : NULL;
	}
	/* another organisation's command does not exist for this caller */
	if (c == NULL || strcmp(c->org, req->org) != 0) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ENOT_FOUND, "no command %llu in organisation '%s'",
		    (unsigned long long)id, req->org);
		goto out;
	}
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.command.info = *c;
	rep.u.command.info.payload = NULL;
	rep.u.command.info.payload_len = 0;
	rep.u.command.info.dev_ids = NULL;
	rep.u.command.info.ndev_ids = 0;
	if (req->u.get.limit > 0) {
		p.cap = req->u.get.limit > FBX_PAGE_MAX ? FBX_PAGE_MAX
		                                        : req->u.get.limit;
		p.d = malloc(p.cap * sizeof(*p.d));
		if (p.d == NULL) {
			fbxi_set_err(e, FBX_ENOMEM);
			goto out;
		}
		p.state = req->u.get.state;
		from = FBX_DLV_ID(id, 0);
		if (req->u.get.after >= from)
			from = req->u.get.after + 1;
		to = FBX_DLV_ID(id, 0) + c->ndeliveries;
		if (from < to) {
			rc = fbx_store_dlv_scan(
			    e->txn, from, to, 0, page_cb, &p);
			if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
				fbxi_set_err(e, rc);
				goto out;
			}
			if (p.last + 1 < to && p.last != 0)
				rep.u.command.next_after = p.last;
		}
		rep.u.command.dlv = p.d;
		rep.u.command.ndlv = p.n;
	}
	fbxi_console_reply(e, in, &rep);
out:
	free(p.d);
	fbx_command_clear(&loaded);
}

struct list_ctx {
	struct fbx_engine *e;
	struct fbx_command *v;
	size_t n, cap;
};

static int
list_cb(void *arg, const struct fbx_command *c)
{
	struct list_ctx *l = arg;
	struct cmdc *cc = fbxi_cmd_find(l->e, c->id);
	struct fbx_command *o = &l->v[l->n++];

	/* active commands: the cache has the live counts */
	*o = cc ? cc->c : *c;
	o->payload = NULL;
	o->payload_len = 0;
	o->dev_ids = NULL;
	o->ndev_ids = 0;
	return l->n >= l->cap;
}

static void
handle_list(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct list_ctx l = { e, NULL, 0, 0 };
	uint32_t limit = req->u.list.limit;
	int rc;

	if (limit == 0)
		limit = 100;
	if (limit > FBX_PAGE_MAX)
		limit = FBX_PAGE_MAX;
	l.cap = limit;
	l.v = malloc(l.cap * sizeof(*l.v));
	if (l.v == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbx_store_cmd_list(e->txn, req->org, req->u.list.since_ms,
	    req->u.list.until_ms, req->u.list.after, limit, list_cb, &l);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		fbxi_set_err(e, rc);
		free(l.v);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.commands.cmds = l.v;
	rep.u.commands.n = l.n;
	if (l.n == limit)
		rep.u.commands.next_after = l.v[l.n - 1].id;
	fbxi_console_reply(e, in, &rep);
	free(l.v);
}

static void
handle_enroll(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	uint32_t created = 0, updated = 0;

	for (size_t i = 0; i < req->u.enroll.n; i++) {
		struct fbx_device *d = &req->u.enroll.devs[i], old;
		int made = 0, rc;
		snprintf(d->org, sizeof(d->org), "%s", req->org);
		rc = fbx_store_dev_get(e->txn, req->org, d->id, &old);
		if (rc == FBX_OK) {
			/* an update keeps what the engine learnt itself */
			d->enrolled_ms = old.enrolled_ms;
			if (d->last_checkin_ms < old.last_checkin_ms)
				d->last_checkin_ms = old.last_checkin_ms;
			d->online = old.online;
			if (d->attestation == FBX_ATTEST_UNKNOWN)
				d->attestation = old.attestation;
		} else if (rc == FBX_ENOT_FOUND) {
			d->enrolled_ms = e->now;
			d->online = 1;
		} else {
			fbxi_set_err(e, rc);
			return;
		}
		rc = fbx_store_dev_put(e->txn, d, &made);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
		if (made)
			created++;
		else
			updated++;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.enroll.created = created;
	rep.u.enroll.updated = updated;
	e->fleet_total += created; /* a failed turn recounts at rebuild */
	fbxi_fleet_soon(e); /* new devices show in the fleet report soon */
	fbxi_audit(e, req->org, req->actor, "devices.enroll", NULL,
	    "{\"created\":%u,\"updated\":%u}", created, updated);
	fbxi_console_reply(e, in, &rep);
}




static void
handle_remove(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	uint32_t removed = 0, ndev;
	int rc = fbx_store_org_devices(e->txn, req->org, &ndev);

	if (rc == FBX_EUNKNOWN_ORG) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	for (size_t i = 0; i < req->u.remove.n && rc == FBX_OK; i++) {
		rc = fbx_store_dev_del(e->txn, req->org, req->u.remove.ids[i]);
		if (rc == FBX_OK) {
			char prefix[FBX_KV_KEY_MAX];
			removed++;
			/* its policy history goes with it */
			fbxi_note_printf(prefix, sizeof(prefix), "pol/%s/%s/", req->org,
			    req->u.remove.ids[i]);
			rc = fbxi_kv_delete_prefix(e, prefix);
		}
		else if (rc == FBX_ENOT_FOUND)
			rc = FBX_OK;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.remove.removed = removed;
	e->fleet_total -= removed <= e->fleet_total ? removed : e->fleet_total;
	fbxi_audit(e, req->org, req->actor, "devices.remove", NULL,
	    "{\"removed\":%u}", removed);
	fbxi_console_reply(e, in, &rep);
}

struct devlist_ctx {
	struct fbx_device *v;
	size_t n, cap;
};

static int
devlist_cb(void *arg, const struct fbx_device *d)
{
	struct devlist_ctx *l = arg;

	l->v[l->n++] = *d;
	return l->n >= l->cap;
}

static void
handle_list_devices(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct devlist_ctx l = { NULL, 0, 0 };
	uint32_t total = 0, limit = req->u.list_devices.limit;
	int rc = fbx_store_org_devices(e->txn, req->org, &total);

	if (rc == FBX_EUNKNOWN_ORG) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (limit == 0)
		limit = 100;
	if (limit > FBX_PAGE_MAX)
		limit = FBX_PAGE_MAX;
	l.cap = limit;
	l.v = malloc(l.cap * sizeof(*l.v));
	if (l.v == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	rc = fbx_store_dev_scan(e->txn, req->org, req->u.list_devices.group,
	    req->u.list_devices.after, limit, devlist_cb, &l);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		fbxi_set_err(e, rc);
		free(l.v);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.devices.devs = l.v;
	rep.u.devices.n = l.n;
	rep.u.devices.total = total;
	if (l.n == limit)
		snprintf(rep.u.devices.next_after,
		    sizeof(rep.u.devices.next_after), "%s", l.v[l.n - 1].id);
	fbxi_console_reply(e, in, &rep);
	free(l.v);
}

struct grp_ctx {
	struct fbx_group_count *v;
	size_t n, cap;
};

static int
grp_cb(void *arg, const char *group, uint32_t count)
{
	struct grp_ctx *g = arg;

	if (g->n == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 16;
		struct fbx_group_count *nv;
		if (ncap > FBX_PAGE_MAX)
			return 1;
		nv = realloc(g->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return 1;
		g->v = nv;
		g->cap = ncap;
	}
	snprintf(g->v[g->n].name, sizeof(g->v[g->n].name), "%s", group);
	g->v[g->n].count = count;
	g->n++;
	return 0;
}

static void
handle_list_groups(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct grp_ctx g = { NULL, 0, 0 };
	uint32_t total;
	int rc = fbx_store_org_devices(e->txn, req->org, &total);

	if (rc == FBX_EUNKNOWN_ORG) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    "unknown organisation '%s'", req->org);
		return;
	}
	if (rc == FBX_OK)
		rc = fbx_store_group_list(e->txn, req->org, grp_cb, &g);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND) {
		fbxi_set_err(e, rc);
		free(g.v);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.groups.groups = g.v;
	rep.u.groups.n = g.n;
	fbxi_console_reply(e, in, &rep);
	free(g.v);
}

static void
handle_ping(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_engine_stats *s = &rep.u.pong;
	struct fbx_store_stat ss;

	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	(void)fbx_engine_stat(e, s); /* what is in memory */
	/* the store's sizes, unless it cannot be read (no transaction: a
	 * degraded turn whose store did not answer; asked again it would
	 * wait for it once more) */
	if (e->st != NULL && e->txn != NULL &&
	    fbx_store_stat(e->st, &ss) == FBX_OK) {
		s->store_bytes = ss.file_bytes;
		s->readers_used = ss.readers_used;
	}
	s->breakers_open = fbxi_breakers_open(e);
	if (e->o.node != NULL && e->o.node[0] != '\0' && e->st != NULL) {
		snprintf(s->node, sizeof(s->node), "%s", e->o.node);
		s->leases = (uint32_t)fbx_store_owned(e->st);
		s->duties = fbx_store_owns(e->st, "");
	}
	if (e->o.admin_org != NULL)
		snprintf(s->admin_org, sizeof(s->admin_org), "%s",
		    e->o.admin_org);
	fbxi_console_reply(e, in, &rep);
}

static void
console_dispatch(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *r)
{
	switch (r->kind) {
	case FBX_CREQ_SUBMIT:
		fbxi_handle_submit(e, in, r);
		e->turn_submits++; /* fusebox_submit_ack_seconds */
		break;
	case FBX_CREQ_GET_COMMAND:
		handle_get(e, in, r);
		break;
	case FBX_CREQ_LIST_COMMANDS:
		handle_list(e, in, r);
		break;
	case FBX_CREQ_ENROLL:
		handle_enroll(e, in, r);
		break;
	case FBX_CREQ_REMOVE:
		handle_remove(e, in, r);
		break;
	case FBX_CREQ_LIST_DEVICES:
		if (r->u.list_devices.stale_minutes > 0)
			fbxi_fleet_list_stale(e, in, r);
		else
			handle_list_devices(e, in, r);
		break;
	case FBX_CREQ_LIST_GROUPS:
		handle_list_groups(e, in, r);
		break;
	case FBX_CREQ_PING:
		handle_ping(e, in, r);
		break;
	case FBX_CREQ_BREAKER:
		fbxi_handle_breaker(e, in, r);
		break;
	case FBX_CREQ_LIMIT:
		fbxi_handle_limit(e, in, r);
		break;
	case FBX_CREQ_RATE:
		fbxi_handle_rate(e, in, r);
		break;
	case FBX_CREQ_APPROVE:
		fbxi_handle_approve(e, in, r);
		break;
	case FBX_CREQ_ROLLOUT:
		fbxi_handle_rollout(e, in, r);
		break;
	case FBX_CREQ_LIST_HELD:
		fbxi_handle_list_held(e, in, r);
		break;
	case FBX_CREQ_ROLLBACK:
		fbxi_handle_rollback(e, in, r);
		break;
	case FBX_CREQ_REPLAY:
		fbxi_handle_replay(e, in, r);
		break;
	case FBX_CREQ_EXPORT:
		fbxi_handle_export(e, in, r);
		break;
	case FBX_CREQ_AUDIT_LIST:
		fbxi_handle_audit_list(e, in, r);
		break;
	case FBX_CREQ_AUDIT_VERIFY:
		fbxi_handle_audit_verify(e, in, r);
		break;
	case FBX_CREQ_LIST_ORGS:
		fbxi_handle_list_orgs(e, in, r);
		break;
	case FBX_CREQ_PRINCIPAL:
		fbxi_handle_principal(e, in, r);
		break;
	case FBX_CREQ_CERT:
		fbxi_handle_cert(e, in, r);
		break;
	case FBX_CREQ_FLEET:
		fbxi_handle_fleet(e, in, r);
		break;
	default:
		fbxi_console_error(e, in, r->request_id, r->kind, FBX_EINVAL,
		    "unknown request kind %d", r->kind);
	}
}

/* fbxi_req_reads_only: engine_int.h */
int
fbxi_req_reads_only(const struct fbx_console_req *r)
{
	switch (r->kind) {
	case FBX_CREQ_GET_COMMAND:
	case FBX_CREQ_LIST_COMMANDS:
	case FBX_CREQ_LIST_DEVICES:
	case FBX_CREQ_LIST_GROUPS:
	case FBX_CREQ_PING:
	case FBX_CREQ_LIST_HELD:
	case FBX_CREQ_AUDIT_LIST:
	case FBX_CREQ_AUDIT_VERIFY:
	case FBX_CREQ_LIST_ORGS:
		return 1;
	case FBX_CREQ_CERT:
		return r->u.cert.op == FBX_CERT_LIST;
	case FBX_CREQ_FLEET:
		return r->u.fleet.op == FBX_FLEET_REPORT ||
		    r->u.fleet.op == FBX_FLEET_VERSION;
	case FBX_CREQ_BREAKER:
		/* the first thing looked at in an incident, also on a
		 * full disk (it was refused with the write error there) */
		return r->u.breaker.op == FBX_BRK_STATUS;
	default:
		return 0;
	}
}

/* reads_memory - a read whose answer comes partly from the engine's
 * memory (what it holds; an open command's counts, which its stored
 * record gets only when it ends or changes otherwise): in cluster mode
 * the owner's node answers it (another node's answer showed a fan-out
 * at queued=600 succeeded=0 while its owner counted 80 succeeded) */
static int
reads_memory(const struct fbx_console_req *r)
{
	return r->kind == FBX_CREQ_LIST_HELD ||
	    r->kind == FBX_CREQ_GET_COMMAND ||
	    r->kind == FBX_CREQ_LIST_COMMANDS ||
	    (r->kind == FBX_CREQ_BREAKER && r->u.breaker.op == FBX_BRK_STATUS);
}

/* storage_fault - an error of the store itself, not of one request: the
 * whole turn is redone or answered with it. */
static int
storage_fault(int rc)
{
	return rc == FBX_ENOMEM || rc == FBX_ESTORAGE || rc == FBX_EDISK_FULL ||
	    rc == FBX_EMAP_FULL || rc == FBX_EIO;
}

/* console_isolated - run one request in a child transaction of the turn.
 * An error of the request (a bad selection, a record it cannot use) undoes
 * only its own writes and outputs and is answered with its code; the
 * other requests and the gateways' input of the turn go on. A storage
 * fault still fails the turn. */
static void
console_isolated(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *r)
{
	fbx_txn *parent = e->txn, *child = NULL;
	struct outmsg *mark = e->otail;
	uint64_t audit_seq, last_cmd = e->last_cmd_id;
	uint8_t audit_last[32];
	int own_txn, rc;

	own_txn = !e->degraded && (fbxi_req_reads_only(r) || in < e->in ||
	                              in >= e->in + e->nin);
	/* the turn's submits not audited yet are written before a request
	 * of another kind (its record comes after theirs; a rollback knows
	 * the sequence of its own) and before a child transaction (what is
	 * kept after it is its own: undone with it) */
	if (e->nabatch > 0 && (own_txn || r->kind != FBX_CREQ_SUBMIT) &&
	    fbxi_audit_flush(e) != FBX_OK)
		return; /* the turn fails */
	audit_seq = e->audit_seq;
	memcpy(audit_last, e->audit_last, sizeof(audit_last));
	/* A request of this turn's input that changes state and fails is
	 * undone by redoing the whole turn (below: e->redo), which aborts
	 * the turn's transaction: it needs no child transaction of its own
	 * (an LMDB child copies the parent's page lists on begin and merges
	 * them on commit, a sixth of a submit's cost). Read-only requests
	 * and requests from outside the turn's input keep theirs. */
	if (own_txn) {
		rc = fbx_txn_begin_child(parent, &child);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
		e->txn = child;
	}
	e->in_request = 1;
	e->req_err = FBX_OK;
	console_dispatch(e, in, r);
	e->in_request = 0;
	rc = e->req_err;
	if (child != NULL) {
		e->txn = parent;
		if (rc == FBX_OK) {
			rc = fbx_txn_commit(child);
			if (rc != FBX_OK) {
				/* the parent may be marked broken too */
				fbxi_set_err(e, rc);
				return;
			}
		} else {
			fbx_txn_abort(child);
		}
	}
	if (rc == FBX_OK)
		return;
	/* nothing of the request stays: not its writes, not its outputs,
	 * not the audit chain's head in memory */
	fbxi_out_truncate(e, mark);
	/* in a child: the submits kept are its own; otherwise the turn is
	 * done again or fails, which forgets them anyway */
	fbxi_audit_drop(e);
	e->audit_seq = audit_seq;
	memcpy(e->audit_last, audit_last, sizeof(audit_last));
	e->last_cmd_id = last_cmd;
	if (storage_fault(rc) && !e->degraded) {
		fbxi_set_err(e, rc);
		return;
	}
	if (!fbxi_req_reads_only(r) && !e->degraded && in >= e->in &&
	    in < e->in + e->nin) {
		/* memory may hold what its child undid: the turn is redone
		 * with this request answered in advance (see turn()) */
		size_t idx = (size_t)(in - e->in);
		e->inerr[idx] = rc;
		e->redo = 1;
		e->redo_at = idx;
	}
	FBX_LOGW("console: request kind %d of %s by %s failed: %s", r->kind,
	    r->org, r->actor, fbx_errname(rc));
	if (!e->redo)
		fbxi_console_error(e, in, r->request_id, r->kind, rc,
		    "request failed and was undone: %s", fbx_strerror(rc));
}

/* req_scope - cluster mode: the lease a state-changing request needs:
 * its organisation's, or "" (the cluster-wide duties) for what acts on
 * every organisation: global controls, certificates, principals. */
static const char *
req_scope(const struct fbx_console_req *r)
{
	switch (r->kind) {
	case FBX_CREQ_BREAKER:
		return r->u.breaker.global ? "" : r->org;
	case FBX_CREQ_LIMIT:
		return r->u.limit.global ? "" : r->org;
	case FBX_CREQ_RATE:
		return r->u.rate.global ? "" : r->org;
	case FBX_CREQ_CERT:
	case FBX_CREQ_PRINCIPAL:
		return "";
	default:
		return r->org;
	}
}

/* cluster_route - cluster mode (issue 13): a state-changing request is
 * served by the node that owns its organisation. One nobody ever owned
 * is claimed here, in this turn's transaction; one whose owner stopped
 * renewing is taken over (BUSY: its stored state is loaded after the
 * commit, the client retries); one owned by a live node is answered
 * MOVED with that node's advertised endpoint. @return 1 to serve it. */
static int
cluster_route(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *r)
{
	const char *o = req_scope(r);
	struct fbx_console_rep rep;
	char node[FBX_ID_MAX + 1], ep[256];
	int how = FBX_LEASE_OWNED, rc;

	if ((r->kind == FBX_CREQ_ROLLBACK && r->u.rollback.sel.every_org) ||
	    (r->kind == FBX_CREQ_REPLAY && r->u.replay.sel.every_org)) {
		fbxi_console_error(e, in, r->request_id, r->kind, FBX_EINVALID,
		    "one request over every organisation is not available "
		    "with several nodes: leave out --global (fuseboxctl "
		    "rollback --incident R --all-orgs sends one request per "
		    "organisation, each to the node that owns it)");
		return 0;
	}
	if (fbx_store_owns(e->st, o))
		return 1;
	/* a web session lives in the memory of the node whose page it
	 * opens: the one asked (it writes its audit record only). Sent to
	 * the cluster-wide duties' owner, every login opened that node's
	 * page, and another node's page could not be used */
	if (r->kind == FBX_CREQ_PRINCIPAL &&
	    r->u.principal.op == FBX_PRI_WEB_LOGIN)
		return 1;
	if (fbxi_req_reads_only(r)) {
		/* a read answered from this node's memory (held commands,
		 * breakers' held counts): the owner's, if there is one */
		rc = fbx_store_lease_owner(e->txn, o, node, ep, sizeof(ep));
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return 0;
		}
		if (strcmp(node, e->o.node) == 0 ||
		    (node[0] == '\0' && !reads_memory(r)))
			return 1;
		/* nobody's (or a dead node's) and answered from memory:
		 * this node takes it over and loads it, as for a write,
		 * else it answers from memory that holds nothing of it */
		if (node[0] != '\0') {
			how = FBX_LEASE_ELSEWHERE;
			goto moved;
		}
	}
	if (o[0] != '\0' && r->kind != FBX_CREQ_ENROLL) {
		/* an organisation that never had a device is nobody's: no
		 * lease is made for a mistyped name */
		uint32_t n = 0;
		rc = fbx_store_org_devices(e->txn, o, &n);
		if (rc == FBX_EUNKNOWN_ORG) {
			fbxi_console_error(e, in, r->request_id, r->kind, rc,
			    "unknown organisation '%s'", o);
			return 0;
		}
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return 0;
		}
	}
	rc = fbx_store_lease_claim(e->txn, o, &how, node, ep, sizeof(ep));
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return 0;
	}
	switch (how) {
	case FBX_LEASE_OWNED:
	case FBX_LEASE_NEW:
		return 1;
	case FBX_LEASE_TAKEN:
		e->lease_gained = 1;
		fbxi_console_error(e, in, r->request_id, r->kind, FBX_EBUSY,
		    "%s%s%s no live owner: node %s takes %s over and "
		    "loads %s state now; retry",
		    o[0] ? "organisation '" : "the cluster-wide duties", o,
		    o[0] ? "' had" : " had", e->o.node, o[0] ? "it" : "them",
		    o[0] ? "its" : "their");
		return 0;
	default:
	moved:
		memset(&rep, 0, sizeof(rep));
		rep.request_id = r->request_id;
		rep.kind = r->kind;
		rep.err = FBX_EMOVED;
		snprintf(rep.owner_node, sizeof(rep.owner_node), "%s", node);
		snprintf(rep.owner_endpoint, sizeof(rep.owner_endpoint), "%s",
		    ep);
		/* the endpoint is cut short in the message if need be; the
		 * owner_endpoint field has it whole */
		if (snprintf(rep.errmsg, sizeof(rep.errmsg),
		        "%s%s%s owned by node '%s' at %.80s; send it there",
		        o[0] ? "organisation '" : "the cluster-wide duties", o,
		        o[0] ? "' is" : " are", node,
		        ep[0] ? ep : "(no endpoint known)") >=
		    (int)sizeof(rep.errmsg))
			rep.errmsg[sizeof(rep.errmsg) - 1] = '\0';
		fbxi_console_reply(e, in, &rep);
		return 0;
	}
}

const char fbxi_in_doubt_msg[] =
    "outcome unknown: the store's connection went after the commit was "
    "sent and the server could not say whether it committed; it may be "
    "recorded: a submit may be sent again with the same idempotency key, "
    "other writes only after checking";

void
fbxi_handle_console(struct fbx_engine *e, const struct inmsg *in)
{
	struct fbx_console_req req;
	char why[256] = "";
	int rc;

	rc = fbx_console_req_decode(in->body,
	    in->len, &req, why, sizeof(why));
	if (rc != FBX_OK) {
		FBX_LOGI("console: rejected request: %s: %s",
		    fbx_errname(rc), why);
		fbxi_console_error(e, in, req.request_id, FBX_CREQ_NONE, rc, "%s",
		    why[0] ? why : fbx_strerror(rc));
		return;
	}
	if (in >= e->in && in < e->in + e->nin && e->inerr[in - e->in] != 0) {
		/* it failed on its own in an earlier pass of this turn */
		rc = e->inerr[in - e->in];
		fbxi_console_error(e, in, req.request_id, req.kind, rc,
		    "request failed and was undone: %s", fbx_strerror(rc));
		goto out;
	}
	/* the identity is the key (issue 10): the request acts as the
	 * principal its connection authenticated, within that principal's
	 * roles and organisations, or not at all */
	if (!fbxi_auth_console(e, in, &req))
		goto out;
	if (e->draining) {
		fbxi_console_error(e, in, req.request_id, req.kind,
		    FBX_ESHUTTING_DOWN, "engine is shutting down; retry");
		goto out;
	}
	/* global controls and the list of every organisation belong to the
	 * operator of the whole engine when one is configured. A global
	 * incident rollback is not refused here: from another organisation
	 * it covers that organisation's share (rollback_run.c) */
	if (e->o.admin_org != NULL && e->o.admin_org[0] != '\0' &&
	    strcmp(req.org, e->o.admin_org) != 0 &&
	    ((req.kind == FBX_CREQ_BREAKER && req.u.breaker.global) ||
	        (req.kind == FBX_CREQ_LIMIT && req.u.limit.global &&
	            req.u.limit.set) ||
	        (req.kind == FBX_CREQ_RATE && req.u.rate.global &&
	            req.u.rate.set) ||
	        (req.kind == FBX_CREQ_BREAKER &&
	            req.u.breaker.op != FBX_BRK_STATUS &&
	            req.u.breaker.global) ||
	        req.kind == FBX_CREQ_LIST_ORGS)) {
		fbxi_console_error(e, in, req.request_id, req.kind, FBX_EFORBIDDEN,
		    "only organisation '%s' may act on global controls or "
		    "list organisations",
		    e->o.admin_org);
		goto out;
	}
	if (e->degraded && !fbxi_req_reads_only(&req) &&
	    e->degraded_err == FBX_ETIMEOUT) {
		/* the request's own turn: its commit is in doubt */
		fbxi_console_error(e, in, req.request_id, req.kind,
		    FBX_ETIMEOUT, "%s", fbxi_in_doubt_msg);
		goto out;
	}
	if (e->degraded && e->brake_defer &&
	    ((req.kind == FBX_CREQ_BREAKER &&
	         req.u.breaker.op == FBX_BRK_TRIP) ||
	        (req.kind == FBX_CREQ_ROLLOUT &&
	            req.u.rollout.op == FBX_ROP_PAUSE))) {
		/* answered by the next retry turn: done, or its error */
		e->brake_waits = 1;
		goto out;
	}
	if (e->degraded && !fbxi_req_reads_only(&req)) {
		fbxi_console_error(e, in, req.request_id, req.kind,
		    e->degraded_err,
		    "not recorded: the store cannot be written (%s); reads "
		    "and status are served, writes are retried; nothing "
		    "accepted before was lost",
		    fbx_strerror(e->degraded_err));
		goto out;
	}
	/* a read's answers (MOVED included) acknowledge nothing */
	e->out_ro = fbxi_req_reads_only(&req);
	if (e->cluster &&
	    (!fbxi_req_reads_only(&req) || reads_memory(&req)) &&
	    !cluster_route(e, in, &req))
		goto out;
	console_isolated(e, in, &req);
out:
	e->out_ro = 0;
	fbx_console_req_free(&req);
}
