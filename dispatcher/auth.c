/*
 * auth.c: principals and what each may do (issue 10). The identity of a
 * request is the CURVE key that authenticated its connection: the ZAP
 * handler (io_zmq.c) answers handshakes from the table kept here, and the
 * engine checks every console request and gateway message against the
 * principal its key names, never against what the request says about
 * itself. Refusals are answered FORBIDDEN, counted and audited.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "engine_int.h"
#include "fbx_auth.h"
#include "fbx_json.h"
#include "fbx_keys.h"
#include "websess.h"

#define PRI_PREFIX "pri/"
#define PRI_REC_MAX FBX_KV_VAL_MAX

/* ------------------------------------------------------------ records */

int
fbxi_principal_orgs_parse(const char *s, struct fbxi_principal *p)
{
	const char *e;
	size_t len;

	p->all_orgs = 0;
	p->norgs = 0;
	if (strcmp(s, "*") == 0) {
		p->all_orgs = 1;
		return FBX_OK;
	}
	for (;;) {
		e = strchr(s, ',');
		len = e != NULL ? (size_t)(e - s) : strlen(s);
		if (len == 0 || len > FBX_ID_MAX)
			return FBX_EINVALID;
		if (p->norgs == FBX_PRINCIPAL_ORGS_MAX)
			return FBX_ETOOBIG;
		memcpy(p->orgs[p->norgs], s, len);
		p->orgs[p->norgs][len] = '\0';
		if (!fbx_id_valid(p->orgs[p->norgs]))
			return FBX_EINVALID;
		p->norgs++;
		if (e == NULL)
			return FBX_OK;
		s = e + 1;
	}
}

int
fbxi_principal_may_org(const struct fbxi_principal *p, const char *org)
{
	if (p->all_orgs)
		return 1;
	for (size_t i = 0; i < p->norgs; i++)
		if (strcmp(p->orgs[i], org) == 0)
			return 1;
	return 0;
}

/* orgs_text - "*" or the list joined by ','. */
static void
orgs_text(const struct fbxi_principal *p, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	if (p->all_orgs) {
		snprintf(buf, cap, "*");
		return;
	}
	for (size_t i = 0; i < p->norgs && off < cap; i++) {
		int n = snprintf(buf + off, cap - off, "%s%s", i ? "," : "",
		    p->orgs[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* Record v1, text, one field a line:
 * "1\n" kind roles revoked key created updated changed_by orgs. */
int
fbxi_principal_encode(
    const struct fbxi_principal *p, char *buf, size_t cap, size_t *len)
{
	char orgs[FBX_PRINCIPAL_ORGS_LEN];
	int n;

	orgs_text(p, orgs, sizeof(orgs));
	n = snprintf(buf, cap,
	    "1\n%d\n%" PRIu32 "\n%d\n%s\n%" PRId64 "\n%" PRId64 "\n%s\n%s\n",
	    p->kind, p->roles, p->revoked ? 1 : 0, p->key, p->created_ms,
	    p->updated_ms, p->changed_by, orgs);
	if (n < 0 || (size_t)n >= cap)
		return FBX_ETOOBIG;
	*len = (size_t)n;
	return FBX_OK;
}

int
fbxi_principal_decode(
    const char *name, const void *buf, size_t len, struct fbxi_principal *out)
{
	char tmp[PRI_REC_MAX + 1], *f[9], *s, *nl;
	struct fbxi_principal p;
	char *end;
	int nf = 0;

	if (len > PRI_REC_MAX || !fbx_id_valid(name))
		return FBX_ECORRUPT;
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	for (s = tmp; nf < 9; nf++) {
		nl = strchr(s, '\n');
		if (nl == NULL)
			return FBX_ECORRUPT;
		*nl = '\0';
		f[nf] = s;
		s = nl + 1;
	}
	if (strcmp(f[0], "1") != 0 || *s != '\0')
		return FBX_ECORRUPT;
	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "%s", name);
	p.kind = (int)strtol(f[1], &end, 10);
	if (*end != '\0' || p.kind < FBX_PK_OPERATOR || p.kind > FBX_PK_GATEWAY)
		return FBX_ECORRUPT;
	p.roles = (uint32_t)strtoul(f[2], &end, 10);
	if (*end != '\0' || (p.roles & ~FBX_ROLES_ALL) != 0)
		return FBX_ECORRUPT;
	p.revoked = strcmp(f[3], "1") == 0;
	if (strlen(f[4]) != 40)
		return FBX_ECORRUPT;
	memcpy(p.key, f[4], 41);
	p.created_ms = strtoll(f[5], &end, 10);
	if (*end != '\0')
		return FBX_ECORRUPT;
	p.updated_ms = strtoll(f[6], &end, 10);
	if (*end != '\0' || strlen(f[7]) > FBX_ID_MAX)
		return FBX_ECORRUPT;
	snprintf(p.changed_by, sizeof(p.changed_by), "%s", f[7]);
	if (fbxi_principal_orgs_parse(f[8], &p) != FBX_OK)
		return FBX_ECORRUPT;
	*out = p;
	return FBX_OK;
}

/* -------------------------------------------------------------- table */

int
fbxi_auth_new(struct fbxi_auth **out)
{
	struct fbxi_auth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return FBX_ENOMEM;
	if (pthread_mutex_init(&a->mu, NULL) != 0) {
		free(a);
		return FBX_ENOMEM;
	}
	if (fbxi_websess_new(&a->web) != FBX_OK) {
		pthread_mutex_destroy(&a->mu);
		free(a);
		return FBX_ENOMEM;
	}
	*out = a;
	return FBX_OK;
}

void
fbxi_auth_free(struct fbxi_auth *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->mu);
	fbxi_websess_free(a->web);
	free(a->v);
	free(a);
}

struct load_ctx {
	struct fbxi_principal *v;
	size_t n, cap;
	int err;
};

static int
load_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct load_ctx *c = arg;
	int rc;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct fbxi_principal *nv = realloc(c->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			c->err = FBX_ENOMEM;
			return 1;
		}
		c->v = nv;
		c->cap = ncap;
	}
	rc = fbxi_principal_decode(
	    key + strlen(PRI_PREFIX), val, len, &c->v[c->n]);
	if (rc != FBX_OK) {
		/* one bad record must not lock everyone out: it is left
		 * out (that principal is refused) and said loudly */
		FBX_LOGE("principal record %s is corrupt: that principal is "
		         "refused",
		    key);
		return 0;
	}
	c->n++;
	return 0;
}

int
fbxi_auth_load(struct fbxi_auth *a, fbx_txn *txn)
{
	struct load_ctx c = { NULL, 0, 0, FBX_OK };
	struct fbxi_principal *old;
	int rc;

	rc = fbx_store_kv_scan(txn, PRI_PREFIX, load_cb, &c);
	if (rc == FBX_OK)
		rc = c.err;
	if (rc != FBX_OK) {
		free(c.v);
		return rc;
	}
	/* the store lists keys ascending: the table is sorted by name */
	pthread_mutex_lock(&a->mu);
	old = a->v;
	a->v = c.v;
	a->n = c.n;
	a->loaded = 1;
	pthread_mutex_unlock(&a->mu);
	free(old);
	return FBX_OK;
}

int
fbxi_auth_loaded(struct fbxi_auth *a)
{
	int l;

	pthread_mutex_lock(&a->mu);
	l = a->loaded;
	pthread_mutex_unlock(&a->mu);
	return l;
}

static int
cmp_name(const void *k, const void *p)
{
	return strcmp(k, ((const struct fbxi_principal *)p)->name);
}

const struct fbxi_principal *
fbxi_auth_find(const struct fbxi_auth *a, const char *name)
{
	if (a == NULL || a->n == 0)
		return NULL;
	return bsearch(name, a->v, a->n, sizeof(*a->v), cmp_name);
}

int
fbxi_auth_zap(struct fbxi_auth *a, const char *key_z85, char *name)
{
	int found = 0;

	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->n && !found; i++) {
		if (!a->v[i].revoked && strcmp(a->v[i].key, key_z85) == 0) {
			memcpy(name, a->v[i].name, sizeof(a->v[i].name));
			found = 1;
		}
	}
	if (found)
		a->zap_ok++;
	else
		a->zap_refused++;
	pthread_mutex_unlock(&a->mu);
	return found;
}

/* ------------------------------------------------------ engine checks */

/* an engine over a transport that authenticates nobody (tests) */
static const struct fbxi_principal anyone = {
	.name = "", .kind = FBX_PK_OPERATOR, .roles = FBX_ROLES_ALL,
	.all_orgs = 1,
};

const struct fbxi_principal *
fbxi_auth_msg(struct fbx_engine *e, const struct fbx_io_msg *in)
{
	const struct fbxi_principal *p;

	if (e->o.auth_off)
		return &anyone;
	if (in->user[0] == '\0')
		return NULL;
	p = fbxi_auth_find(e->auth, in->user);
	if (p == NULL || p->revoked || strcmp(p->key, in->key) != 0)
		return NULL;
	return p;
}

void
fbxi_auth_refuse_audit(struct fbx_engine *e, const char *org,
    const char *who, const char *what, const char *why)
{
	int in_request = e->in_request;

	e->auth_refused++;
	if (e->degraded || e->txn == NULL)
		return; /* nothing can be written: the log line stays */
	/* in the turn's own transaction: the refusal is recorded even
	 * though the request did nothing */
	e->in_request = 0;
	fbxi_audit(e, org, who[0] != '\0' ? who : "unknown", "auth.forbidden",
	    NULL, "{\"what\":\"%s\",\"why\":\"%s\"}", what, why);
	e->in_request = in_request;
}

/* need_role - the role a console request needs, and whether it is an
 * engine-wide act (then the principal must also be for every
 * organisation). 0 = any authenticated principal (ping, certificate list). */
static uint32_t
need_role(const struct fbx_console_req *r, int *global)
{
	*global = 0;
	switch (r->kind) {
	case FBX_CREQ_PING:
		return 0;
	case FBX_CREQ_GET_COMMAND:
	case FBX_CREQ_LIST_COMMANDS:
	case FBX_CREQ_LIST_DEVICES:
	case FBX_CREQ_LIST_GROUPS:
	case FBX_CREQ_LIST_HELD:
	case FBX_CREQ_EXPORT:
	case FBX_CREQ_AUDIT_LIST:
	case FBX_CREQ_AUDIT_VERIFY:
		return FBX_ROLE_VIEWER;
	case FBX_CREQ_SUBMIT:
	case FBX_CREQ_ENROLL:
	case FBX_CREQ_REMOVE:
		return FBX_ROLE_OPERATOR;
	case FBX_CREQ_APPROVE:
		return FBX_ROLE_APPROVER;
	case FBX_CREQ_ROLLOUT:
		if (r->u.rollout.op == FBX_ROP_STATUS)
			return FBX_ROLE_VIEWER;
		return r->u.rollout.op == FBX_ROP_APPROVE ? FBX_ROLE_APPROVER
		                                          : FBX_ROLE_OPERATOR;
	case FBX_CREQ_BREAKER:
		if (r->u.breaker.op == FBX_BRK_STATUS)
			return FBX_ROLE_VIEWER;
		*global = r->u.breaker.global != 0;
		return *global ? FBX_ROLE_ADMIN : FBX_ROLE_BREAKER;
	case FBX_CREQ_LIMIT:
		if (!r->u.limit.set)
			return FBX_ROLE_VIEWER;
		*global = r->u.limit.global != 0;
		return *global ? FBX_ROLE_ADMIN : FBX_ROLE_BREAKER;
	case FBX_CREQ_RATE:
		if (!r->u.rate.set)
			return FBX_ROLE_VIEWER;
		*global = r->u.rate.global != 0;
		return *global ? FBX_ROLE_ADMIN : FBX_ROLE_BREAKER;
	case FBX_CREQ_ROLLBACK:
		/* a global incident: every organisation for a principal that
		 * may act globally, else the principal's own organisation's
		 * share (fbxi_auth_console narrows it), never FORBIDDEN */
		return r->u.rollback.execute ? FBX_ROLE_OPERATOR
		                             : FBX_ROLE_VIEWER;
	case FBX_CREQ_REPLAY:
		return r->u.replay.execute ? FBX_ROLE_OPERATOR
		                           : FBX_ROLE_VIEWER;
	case FBX_CREQ_FLEET:
		/* alert rules are a control of the organisation, like its
		 * limits */
		return r->u.fleet.op == FBX_FLEET_REPORT ||
		        r->u.fleet.op == FBX_FLEET_VERSION
		    ? FBX_ROLE_VIEWER
		    : FBX_ROLE_BREAKER;
	case FBX_CREQ_CERT:
		/* certificates are engine-wide: changed by an admin of every
		 * organisation; listed, like the ping, by any principal
		 * whatever organisation it names (`fuseboxctl status` shows
		 * them after its ping) */
		if (r->u.cert.op == FBX_CERT_LIST)
			return 0;
		*global = 1;
		return FBX_ROLE_ADMIN;
	case FBX_CREQ_PRINCIPAL:
		/* a web session acts as its principal: for a viewer, in an
		 * organisation of its scope (issue 12) */
		if (r->u.principal.op == FBX_PRI_WEB_LOGIN)
			return FBX_ROLE_VIEWER;
		*global = 1;
		return FBX_ROLE_ADMIN;
	case FBX_CREQ_LIST_ORGS:
		/* the names a principal of every organisation may read
		 * anyway, one at a time (breaker status --all-orgs): a
		 * viewer's or an admin's (any of the roles) */
		*global = 1;
		return FBX_ROLE_VIEWER | FBX_ROLE_ADMIN;
	default:
		/* what is not known to be narrower is the most privileged */
		*global = 1;
		return FBX_ROLE_ADMIN;
	}
}

static const char *
role_name(uint32_t role)
{
	switch (role) {
	case FBX_ROLE_VIEWER:
		return "viewer";
	case FBX_ROLE_OPERATOR:
		return "operator";
	case FBX_ROLE_APPROVER:
		return "approver";
	case FBX_ROLE_BREAKER:
		return "breaker";
	default:
		return "admin";
	}
}

static int
forbid(struct fbx_engine *e, const struct fbx_io_msg *in,
    const struct fbx_console_req *req, const char *who, const char *why)
{
	char what[48];

	FBX_LOGW("console: request kind %d for %s by principal %s (actor "
	         "'%s') forbidden: %s",
	    req->kind, req->org, who[0] ? who : "(none)", req->actor, why);
	snprintf(what, sizeof(what), "console.%d", req->kind);
	fbxi_auth_refuse_audit(e, req->org, who, what, why);
	fbxi_console_error(e, in, req->request_id, req->kind, FBX_EFORBIDDEN,
	    "%s", why);
	return 0;
}

int
fbxi_auth_console(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req)
{
	const struct fbxi_principal *p = fbxi_auth_msg(e, in);
	char why[200];
	uint32_t need;
	int global;

	if (e->o.auth_off)
		return 1;
	if (p == NULL)
		return forbid(e, in, req, in->user,
		    "key not authorised: unknown, revoked or rotated");
	if (p->kind == FBX_PK_GATEWAY)
		return forbid(e, in, req, p->name,
		    "a gateway key may not use the console");
	if (strcmp(req->actor, p->name) != 0) {
		snprintf(why, sizeof(why),
		    "actor '%s' is not the authenticated principal '%s'",
		    req->actor, p->name);
		return forbid(e, in, req, p->name, why);
	}
	need = need_role(req, &global);
	if (need != 0 && (p->roles & need) == 0) {
		/* any of the roles in need: the first is named */
		snprintf(why, sizeof(why), "principal '%s' lacks the %s role",
		    p->name, role_name(need & (~need + 1)));
		return forbid(e, in, req, p->name, why);
	}
	if (global && !p->all_orgs) {
		snprintf(why, sizeof(why),
		    "an engine-wide request needs a principal for every "
		    "organisation; '%s' is not",
		    p->name);
		return forbid(e, in, req, p->name, why);
	}
	if (need != 0 && !fbxi_principal_may_org(p, req->org)) {
		snprintf(why, sizeof(why),
		    "organisation '%s' is outside the scope of principal '%s'",
		    req->org, p->name);
		return forbid(e, in, req, p->name, why);
	}
	if (req->kind == FBX_CREQ_ROLLBACK && req->u.rollback.sel.every_org &&
	    !(p->all_orgs && (p->roles & FBX_ROLE_ADMIN))) {
		/* one run over every organisation is for an admin of all
		 * of them; anyone else rolls back their organisation's
		 * share of the global incident */
		req->u.rollback.sel.every_org = 0;
		req->u.rollback.sel.breaker_global = 1;
	}
	if (req->kind == FBX_CREQ_SUBMIT) {
		int origin = req->u.submit.cmd.origin;
		if (origin == FBX_ORIGIN_AUTOMATIC &&
		    p->kind != FBX_PK_AUTOMATION)
			return forbid(e, in, req, p->name,
			    "automatic origin is for automation principals "
			    "only");
		/* a rule engine that claimed another origin would pass by
		 * the breakers that exist against it (they hold automatic
		 * commands): operator, scheduled and rollback alike */
		if (origin != FBX_ORIGIN_AUTOMATIC &&
		    p->kind == FBX_PK_AUTOMATION)
			return forbid(e, in, req, p->name,
			    "an automation principal submits automatic origin "
			    "only");
		/* rollback origin is the engine's compensating commands: it
		 * goes first and no rollback selects it */
		if (origin == FBX_ORIGIN_ROLLBACK)
			return forbid(e, in, req, p->name,
			    "rollback origin is the engine's own (its "
			    "compensating commands); submit as operator or "
			    "scheduled");
	}
	return 1;
}

/* ------------------------------------------------- principal requests */

/* json_line - the principal as one JSON line, written by jansson (issue
 * 12 item 6); "" when it cannot be written */
static void
json_line(const struct fbxi_principal *p, char *buf, size_t cap)
{
	char orgs[FBX_PRINCIPAL_ORGS_LEN + 2];
	static const char *const kinds[] = { "", "operator", "automation",
		"gateway" };
	json_t *o = json_object(), *roles = json_array();
	size_t n = 0;

	orgs_text(p, orgs, sizeof(orgs));
	for (uint32_t b = 1; roles != NULL && b <= FBX_ROLE_ADMIN; b <<= 1)
		if (p->roles & b)
			json_array_append_new(roles, fbx_json_str(role_name(b)));
	if (o != NULL && roles != NULL) {
		fbx_json_set_str(o, "name", p->name);
		fbx_json_set_str(o, "kind",
		    p->kind >= 0 && p->kind < 4 ? kinds[p->kind] : "");
		fbx_json_set(o, "roles", roles);
		roles = NULL;
		fbx_json_set_str(o, "orgs", orgs);
		fbx_json_set_str(o, "state", p->revoked ? "revoked" : "active");
		fbx_json_set_str(o, "public_key", p->key);
		fbx_json_set_int(o, "created_ms", p->created_ms);
		fbx_json_set_int(o, "updated_ms", p->updated_ms);
		fbx_json_set_str(o, "changed_by", p->changed_by);
		n = json_dumpb(o, buf, cap, JSON_COMPACT);
	}
	/* a line that does not fit with its newline is not written */
	if (n == 0 || n + 2 > cap)
		n = 0;
	else
		buf[n++] = '\n';
	if (cap > 0)
		buf[n] = '\0';
	json_decref(roles);
	json_decref(o);
}

struct list_ctx {
	char *buf;
	size_t len, cap;
	uint32_t n;
	int err;
};

static int
list_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct list_ctx *c = arg;
	struct fbxi_principal p;
	char line[FBX_PRINCIPAL_ORGS_LEN + 512];
	size_t l;

	if (fbxi_principal_decode(key + strlen(PRI_PREFIX), val, len, &p) !=
	    FBX_OK)
		return 0;
	json_line(&p, line, sizeof(line));
	l = strlen(line);
	if (c->len + l + 1 > FBX_PRINCIPAL_JSONL_MAX) {
		c->err = FBX_ETOOBIG;
		return 1;
	}
	if (c->len + l + 1 > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 8192;
		char *nb;
		while (ncap < c->len + l + 1)
			ncap *= 2;
		nb = realloc(c->buf, ncap);
		if (nb == NULL) {
			c->err = FBX_ENOMEM;
			return 1;
		}
		c->buf = nb;
		c->cap = ncap;
	}
	memcpy(c->buf + c->len, line, l + 1);
	c->len += l;
	c->n++;
	return 0;
}

static int
pri_get(fbx_txn *txn, const char *name, struct fbxi_principal *p)
{
	char key[FBX_KV_KEY_MAX], buf[PRI_REC_MAX];
	size_t len;
	int rc;

	snprintf(key, sizeof(key), PRI_PREFIX "%s", name);
	rc = fbx_store_kv_get(txn, key, buf, sizeof(buf), &len);
	if (rc != FBX_OK)
		return rc;
	return fbxi_principal_decode(name, buf, len, p);
}

static int
pri_put(fbx_txn *txn, const struct fbxi_principal *p)
{
	char key[FBX_KV_KEY_MAX], buf[PRI_REC_MAX];
	size_t len;
	int rc;

	snprintf(key, sizeof(key), PRI_PREFIX "%s", p->name);
	rc = fbxi_principal_encode(p, buf, sizeof(buf), &len);
	if (rc != FBX_OK)
		return rc;
	return fbx_store_kv_put(txn, key, buf, len);
}

struct keyuse_ctx {
	const char *key;
	char owner[FBX_ID_MAX + 1];
};

static int
keyuse_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct keyuse_ctx *c = arg;
	struct fbxi_principal p;

	if (fbxi_principal_decode(key + strlen(PRI_PREFIX), val, len, &p) ==
	        FBX_OK &&
	    strcmp(p.key, c->key) == 0) {
		snprintf(c->owner, sizeof(c->owner), "%s", p.name);
		return 1;
	}
	return 0;
}

/* key_burn - remember that key was name's: a key is registered once,
 * ever, so a rotated or revoked key can never come back under another
 * name ("prk/<key>" -> name). */
static int
key_burn(fbx_txn *txn, const char *key, const char *name)
{
	char k[FBX_KV_KEY_MAX];

	snprintf(k, sizeof(k), "prk/%s", key);
	return fbx_store_kv_put(txn, k, name, strlen(name));
}

/* key_in_use - whether any principal holds or held key (a revoked or
 * rotated key stays burnt). @return 1 with the owner, 0, or -1
 * (latched). */
static int
key_in_use(struct fbx_engine *e, const char *key, char *owner, size_t cap)
{
	struct keyuse_ctx c;
	char k[FBX_KV_KEY_MAX], v[FBX_ID_MAX + 1];
	size_t len = 0;
	int rc;

	snprintf(k, sizeof(k), "prk/%s", key);
	rc = fbx_store_kv_get(e->txn, k, v, sizeof(v) - 1, &len);
	if (rc == FBX_OK) {
		v[len] = '\0';
		snprintf(owner, cap, "%s", v);
		return 1;
	}
	if (rc != FBX_ENOT_FOUND) {
		fbxi_set_err(e, rc);
		return -1;
	}
	/* records from before the burn list */
	memset(&c, 0, sizeof(c));
	c.key = key;
	rc = fbx_store_kv_scan(e->txn, PRI_PREFIX, keyuse_cb, &c);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return -1;
	}
	snprintf(owner, cap, "%s", c.owner);
	return c.owner[0] != '\0';
}

static void
reply_one(struct fbx_engine *e, const struct fbx_io_msg *in,
    const struct fbx_console_req *req, const struct fbxi_principal *p)
{
	struct fbx_console_rep rep;
	char line[FBX_PRINCIPAL_ORGS_LEN + 512];

	json_line(p, line, sizeof(line));
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.principal.jsonl = line;
	rep.u.principal.len = strlen(line);
	rep.u.principal.count = 1;
	fbxi_console_reply(e, in, &rep);
}

void
fbxi_handle_principal(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req)
{
	struct fbxi_principal p;
	char owner[FBX_ID_MAX + 1];
	int op = req->u.principal.op, rc;

	if (op == FBX_PRI_WEB_LOGIN) {
		fbxi_handle_web_login(e, in, req);
		return;
	}
	if (op == FBX_PRI_LIST) {
		struct list_ctx c;
		struct fbx_console_rep rep;
		memset(&c, 0, sizeof(c));
		rc = fbx_store_kv_scan(e->txn, PRI_PREFIX, list_cb, &c);
		if (rc == FBX_OK)
			rc = c.err;
		if (rc != FBX_OK) {
			free(c.buf);
			if (rc == FBX_ETOOBIG || rc == FBX_ENOMEM)
				fbxi_console_error(e, in, req->request_id,
				    req->kind, rc, "principal list: %s",
				    fbx_strerror(rc));
			else
				fbxi_set_err(e, rc);
			return;
		}
		memset(&rep, 0, sizeof(rep));
		rep.request_id = req->request_id;
		rep.kind = req->kind;
		rep.u.principal.jsonl = c.buf;
		rep.u.principal.len = c.len;
		rep.u.principal.count = c.n;
		fbxi_console_reply(e, in, &rep);
		free(c.buf);
		return;
	}
	rc = pri_get(e->txn, req->u.principal.name, &p);
	if (op == FBX_PRI_ADD) {
		if (rc == FBX_OK) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_ESTATE,
			    "principal '%s' exists (names are never reused: "
			    "rotate its key, or add another name)",
			    req->u.principal.name);
			return;
		}
		if (rc != FBX_ENOT_FOUND) {
			fbxi_set_err(e, rc);
			return;
		}
		memset(&p, 0, sizeof(p));
		snprintf(p.name, sizeof(p.name), "%s", req->u.principal.name);
		p.kind = req->u.principal.kind;
		p.roles = req->u.principal.roles;
		if (fbxi_principal_orgs_parse(req->u.principal.orgs, &p) !=
		    FBX_OK) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_EINVALID, "principal.orgs: not a list");
			return;
		}
		p.created_ms = e->now;
	} else {
		if (rc == FBX_ENOT_FOUND) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_ENOT_FOUND, "no principal '%s'",
			    req->u.principal.name);
			return;
		}
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
		if (p.revoked) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_ESTATE, "principal '%s' is revoked",
			    p.name);
			return;
		}
		if (op == FBX_PRI_REVOKE && strcmp(p.name, req->actor) == 0) {
			/* the last admin could lock everyone out */
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_ESTATE,
			    "a principal may not revoke itself; ask another "
			    "admin");
			return;
		}
	}
	if (op == FBX_PRI_ADD || op == FBX_PRI_ROTATE) {
		rc = key_in_use(e, req->u.principal.public_key, owner,
		    sizeof(owner));
		if (rc < 0)
			return;
		if (rc > 0) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_EINVALID,
			    "that public key is (or was) principal '%s''s: "
			    "make a new key pair",
			    owner);
			return;
		}
		memcpy(p.key, req->u.principal.public_key, sizeof(p.key));
	}
	if (op == FBX_PRI_REVOKE)
		p.revoked = 1;
	p.updated_ms = e->now;
	snprintf(p.changed_by, sizeof(p.changed_by), "%s", req->actor);
	rc = pri_put(e->txn, &p);
	if (rc == FBX_OK && op != FBX_PRI_REVOKE)
		rc = key_burn(e->txn, p.key, p.name);
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	{
		static const char *const acts[] = { "", "", "principal.add",
			"principal.revoke", "principal.rotate" };
		char orgs[FBX_PRINCIPAL_ORGS_LEN], ended[96] = "";
		orgs_text(&p, orgs, sizeof(orgs));
		if (strlen(orgs) > 300)
			snprintf(orgs, sizeof(orgs), "(%zu organisations)",
			    p.norgs);
		if (op != FBX_PRI_ADD && p.kind == FBX_PK_GATEWAY) {
			/* what the commit ends (fbxi_auth_committed): this
			 * key's sessions, their deliveries re-queued */
			size_t ns = 0, nd = 0;
			for (const struct gw *g = e->gws; g != NULL;
			     g = g->next) {
				if (!g->dead &&
				    strcmp(g->principal, p.name) == 0) {
					ns++;
					nd += g->inflight.len;
				}
			}
			snprintf(ended, sizeof(ended),
			    ",\"sessions_ended\":%zu,\"requeued\":%zu", ns,
			    nd);
		}
		fbxi_audit(e, "_auth", req->actor, acts[op],
		    req->u.principal.note,
		    "{\"principal\":\"%s\",\"kind\":%d,\"roles\":%u,"
		    "\"orgs\":\"%s\",\"key\":\"%.8s\"%s}",
		    p.name, p.kind, (unsigned)p.roles, orgs, p.key, ended);
	}
	if (fbxi_err(e) != FBX_OK)
		return;
	e->auth_dirty = 1;
	FBX_LOGI("principal %s: %s by %s", p.name,
	    op == FBX_PRI_ADD ? "added" :
	    op == FBX_PRI_REVOKE ? "revoked" : "key rotated",
	    req->actor);
	reply_one(e, in, req, &p);
}

/* key_holds - whether key is the current key of a principal not revoked */
static int
key_holds(const struct fbxi_auth *a, const char *key)
{
	for (size_t i = 0; i < a->n; i++) {
		if (!a->v[i].revoked && strcmp(a->v[i].key, key) == 0)
			return 1;
	}
	return 0;
}

void
fbxi_auth_committed(struct fbx_engine *e)
{
	fbx_txn *txn = NULL;
	int rc;
	char (*live)[41] = NULL;
	size_t nlive = 0;
	int lost;

	if (!e->auth_dirty || e->auth == NULL)
		return;
	/* the keys that held before: one that no longer does ends the
	 * events subscriptions below */
	if (e->auth->n > 0)
		live = malloc(e->auth->n * sizeof(*live));
	/* without the list (out of memory) assume the worst */
	lost = e->auth->n > 0 && live == NULL;
	for (size_t i = 0; live != NULL && i < e->auth->n; i++) {
		if (!e->auth->v[i].revoked)
			memcpy(live[nlive++], e->auth->v[i].key, 41);
	}
	rc = fbx_txn_begin(e->st, 0, &txn);
	if (rc == FBX_OK) {
		rc = fbxi_auth_load(e->auth, txn);
		fbx_txn_abort(txn);
	}
	if (rc != FBX_OK) {
		/* tried again after the next commit */
		FBX_LOGW("principals not reloaded: %s", fbx_strerror(rc));
		free(live);
		return;
	}
	e->auth_dirty = 0;
	for (size_t i = 0; i < nlive && !lost; i++)
		lost = !key_holds(e->auth, live[i]);
	/* after this turn's events have left (the loop, after
	 * fbxi_out_flush in output.c):
	 * they go to the subscribers that were entitled to them */
	if (lost)
		e->events_reset_due = 1;
	free(live);
	/* sessions of a gateway whose key no longer holds end now, not at
	 * their next message */
	for (struct gw *g = e->gws; g != NULL; g = g->next) {
		const struct fbxi_principal *p;
		if (g->dead)
			continue;
		p = fbxi_auth_find(e->auth, g->principal);
		if (p == NULL || p->revoked || strcmp(p->key, g->key) != 0) {
			FBX_LOGW("gateway %s: principal %s revoked or "
			         "rotated: session ended",
			    g->id, g->principal);
			g->dead = 1;
		}
	}
}

int
fbxi_auth_open(struct fbx_engine *e)
{
	fbx_txn *txn = NULL;
	int rc;

	if (e->auth == NULL) {
		rc = fbxi_auth_new(&e->auth);
		if (rc != FBX_OK)
			return rc;
	}
	rc = fbx_txn_begin(e->st, 0, &txn);
	if (rc != FBX_OK)
		return rc;
	rc = fbxi_auth_load(e->auth, txn);
	fbx_txn_abort(txn);
	if (rc == FBX_OK && e->auth->n == 0 && !e->o.auth_off)
		FBX_LOGW("no principals in the store: every key is refused "
		         "(run fuseboxd init)");
	return rc;
}

int
fbxi_auth_gateway(struct fbx_engine *e, const struct fbx_io_msg *in,
    int session, const struct fbx_gw_msg *m, char *why, size_t wl)
{
	const struct fbxi_principal *p;

	if (e->o.auth_off)
		return FBX_OK;
	p = fbxi_auth_msg(e, in);
	if (p == NULL || p->kind != FBX_PK_GATEWAY) {
		snprintf(why, wl, "%s",
		    p == NULL
		        ? "key not authorised: unknown, revoked or rotated"
		        : "not a gateway key");
		int64_t now = fbxi_mono_ms();
		struct gw_refused *r = NULL, *old = &e->gw_refused[0];
		for (size_t k = 0; k < 8 && r == NULL; k++) {
			if (strcmp(e->gw_refused[k].user, in->user) == 0)
				r = &e->gw_refused[k];
			else if (e->gw_refused[k].ms < old->ms)
				old = &e->gw_refused[k];
		}
		if (r == NULL) {
			/* a key not among the last 8: its first line */
			r = old;
			memset(r, 0, sizeof(*r));
			snprintf(r->user, sizeof(r->user), "%s", in->user);
			r->ms = INT64_MIN;
		}
		if (r->ms == INT64_MIN || now - r->ms >= 10000) {
			char more[96] = "";
			if (r->quiet > 0)
				snprintf(more, sizeof(more),
				    " (and %llu more of this key's since its "
				    "last such line)",
				    (unsigned long long)r->quiet);
			FBX_LOGW("gateway: message from principal %s refused: "
			         "%s%s",
			    in->user[0] ? in->user : "(none)", why, more);
			r->ms = now;
			r->quiet = 0;
		} else {
			r->quiet++;
		}
		if (session || m->kind == FBX_GW_HELLO)
			fbxi_auth_refuse_audit(
			    e, "_auth", in->user, "gateway", why);
		else
			e->auth_refused++;
		return FBX_EFORBIDDEN;
	}
	if (m->kind != FBX_GW_HELLO)
		return FBX_OK;
	for (size_t i = 0; i < m->u.hello.norgs; i++) {
		const char *org = m->u.hello.orgs[i];
		if (strcmp(org, "*") == 0 ? p->all_orgs
		                          : fbxi_principal_may_org(p, org))
			continue;
		snprintf(why, wl,
		    "hello.orgs: '%s' is outside the scope of gateway key '%s'",
		    org, p->name);
		FBX_LOGW("gateway %s: HELLO refused: %s",
		    m->u.hello.gateway_id, why);
		fbxi_auth_refuse_audit(e, "_auth", p->name, "gateway.hello",
		    "organisation outside the key's scope");
		return FBX_EFORBIDDEN;
	}
	return FBX_OK;
}

/* ------------------------------------------------------- fuseboxd init */

int
fbx_auth_check_dir(const char *path, char *why, size_t wl)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == ENOENT ? FBX_ENOT_FOUND : FBX_EIO;
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, wl, "%s is not a directory", path);
		return FBX_EFORBIDDEN;
	}
	if ((st.st_mode & S_IWOTH) != 0) {
		snprintf(why, wl,
		    "%s is world-writable: anyone could replace what is in it "
		    "(use a directory only the service user, and a group, "
		    "can write)",
		    path);
		return FBX_EFORBIDDEN;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(why, wl,
		    "%s belongs to another user (uid %u): that user could "
		    "replace what is in it",
		    path, (unsigned)st.st_uid);
		return FBX_EFORBIDDEN;
	}
	return FBX_OK;
}

static int
parse_roles(const char *s, uint32_t *out)
{
	static const char *const names[] = { "viewer", "operator",
		"approver", "breaker", "admin" };
	uint32_t r = 0;
	char buf[128], *tok, *save = NULL;

	if (strcmp(s, "-") == 0) {
		*out = 0;
		return FBX_OK;
	}
	if (strcmp(s, "all") == 0) {
		*out = FBX_ROLES_ALL;
		return FBX_OK;
	}
	if (strlen(s) >= sizeof(buf))
		return FBX_EINVALID;
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < 5 && strcmp(tok, names[i]) != 0; i++)
			;
		if (i == 5)
			return FBX_EINVALID;
		r |= 1u << i;
	}
	*out = r;
	return FBX_OK;
}

/* parse_spec - "name/kind/roles/orgs" into p (name, kind, roles, orgs). */
static int
parse_spec(const char *spec, struct fbxi_principal *p)
{
	char buf[FBX_PRINCIPAL_ORGS_LEN + 256], *f[4], *s;
	int n = 0;

	if (strlen(spec) >= sizeof(buf))
		return FBX_EINVALID;
	strcpy(buf, spec);
	for (s = buf; n < 4; n++) {
		char *sl = strchr(s, '/');
		f[n] = s;
		if (sl == NULL)
			break;
		*sl = '\0';
		s = sl + 1;
	}
	if (n != 3 || !fbx_id_valid(f[0]))
		return FBX_EINVALID;
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", f[0]);
	if (strcmp(f[1], "operator") == 0)
		p->kind = FBX_PK_OPERATOR;
	else if (strcmp(f[1], "automation") == 0)
		p->kind = FBX_PK_AUTOMATION;
	else if (strcmp(f[1], "gateway") == 0)
		p->kind = FBX_PK_GATEWAY;
	else
		return FBX_EINVALID;
	if (parse_roles(f[2], &p->roles) != FBX_OK ||
	    (p->kind == FBX_PK_GATEWAY && p->roles != 0))
		return FBX_EINVALID;
	return fbxi_principal_orgs_parse(f[3], p);
}

/* init_one - generate p's key pair, write <keys>/<name>.key and the
 * record, audited. */
static int
init_one(struct fbx_engine *e, const char *keys, struct fbxi_principal *p,
    FILE *out, char *why, size_t wl)
{
	struct fbx_key k;
	char path[4200];
	int rc;

	rc = pri_get(e->txn, p->name, &(struct fbxi_principal){ 0 });
	if (rc == FBX_OK) {
		snprintf(why, wl, "principal '%s' exists already", p->name);
		return FBX_ESTATE;
	}
	if (rc != FBX_ENOT_FOUND)
		return rc;
	rc = fbx_key_generate(p->name, &k);
	if (rc != FBX_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/%s.key", keys, p->name);
	rc = fbx_key_write(path, &k, 1);
	if (rc != FBX_OK) {
		snprintf(why, wl, "cannot create %s (exists?)", path);
		memset(&k, 0, sizeof(k));
		return rc;
	}
	memcpy(p->key, k.public_z85, sizeof(p->key));
	memset(&k, 0, sizeof(k));
	p->created_ms = p->updated_ms = e->now;
	snprintf(p->changed_by, sizeof(p->changed_by), "init");
	rc = pri_put(e->txn, p);
	if (rc == FBX_OK)
		rc = key_burn(e->txn, p->key, p->name);
	if (rc != FBX_OK)
		return rc;
	{
		char orgs[FBX_PRINCIPAL_ORGS_LEN];
		orgs_text(p, orgs, sizeof(orgs));
		if (strlen(orgs) > 300)
			snprintf(orgs, sizeof(orgs), "(%zu organisations)",
			    p->norgs);
		fbxi_audit(e, "_auth", "init", "principal.add",
		    "created by fuseboxd init",
		    "{\"principal\":\"%s\",\"kind\":%d,\"roles\":%u,"
		    "\"orgs\":\"%s\",\"key\":\"%.8s\"}",
		    p->name, p->kind, (unsigned)p->roles, orgs, p->key);
	}
	if (e->txn_err != FBX_OK)
		return e->txn_err;
	fprintf(out, "principal %-16s key %s\n", p->name, path);
	return FBX_OK;
}

int
fbx_auth_init(const char *data_dir, const char *store_url,
    const char *const *specs, size_t n, FILE *out, char *why, size_t wl)
{
	struct fbxi_principal *ps = NULL, admin;
	struct fbx_engine *e = NULL;
	struct fbx_store_opts so;
	struct fbx_key sk;
	char keys[4096], path[4200];
	struct timespec ts;
	int rc;

	why[0] = '\0';
	if (data_dir == NULL || strlen(data_dir) > 4000)
		return FBX_EINVALID;
	ps = calloc(n + 1, sizeof(*ps));
	e = calloc(1, sizeof(*e));
	if (ps == NULL || e == NULL) {
		rc = FBX_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (parse_spec(specs[i], &ps[i]) != FBX_OK) {
			snprintf(why, wl,
			    "bad principal '%s' (name/kind/roles/orgs, e.g. "
			    "gw-1/gateway/-/org-001,org-002 or "
			    "alice/operator/viewer,operator/*)",
			    specs[i]);
			rc = FBX_EINVALID;
			goto out;
		}
	}
	if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(why, wl, "cannot create %s: %s", data_dir,
		    strerror(errno));
		rc = FBX_EIO;
		goto out;
	}
	rc = fbx_auth_check_dir(data_dir, why, wl);
	if (rc != FBX_OK)
		goto out;
	snprintf(keys, sizeof(keys), "%s/keys", data_dir);
	if (mkdir(keys, 0700) != 0 && errno != EEXIST) {
		snprintf(why, wl, "cannot create %s: %s", keys,
		    strerror(errno));
		rc = FBX_EIO;
		goto out;
	}
	rc = fbx_auth_check_dir(keys, why, wl);
	if (rc != FBX_OK)
		goto out;
	snprintf(path, sizeof(path), "%s/server.key", keys);
	if (access(path, F_OK) == 0) {
		snprintf(why, wl,
		    "%s exists: this data directory is initialised already",
		    path);
		rc = FBX_ESTATE;
		goto out;
	}
	memset(&so, 0, sizeof(so));
	so.path = data_dir;
	so.url = store_url;
	rc = fbx_store_open(&so, &e->st);
	if (rc != FBX_OK) {
		snprintf(why, wl, "cannot open the store in %s: %s", data_dir,
		    fbx_strerror(rc));
		goto out;
	}
	rc = fbx_txn_begin(e->st, 1, &e->txn);
	if (rc != FBX_OK)
		goto out;
	rc = fbxi_audit_load_last(e, e->txn);
	if (rc != FBX_OK)
		goto out;
	clock_gettime(CLOCK_REALTIME, &ts);
	e->now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	/* the server's key pair first: without it nothing else is used */
	rc = fbx_key_generate("fuseboxd", &sk);
	if (rc == FBX_OK)
		rc = fbx_key_write(path, &sk, 1);
	if (rc == FBX_OK) {
		snprintf(path, sizeof(path), "%s/server.pub", keys);
		rc = fbx_key_write(path, &sk, 0);
	}
	memset(&sk, 0, sizeof(sk));
	if (rc != FBX_OK) {
		snprintf(why, wl, "cannot write the server key in %s", keys);
		goto out;
	}
	fprintf(out, "server key       %s/server.key (secret: the daemon's "
	             "own, mode 0600)\n"
	             "server public key %s/server.pub (give it to every "
	             "client: --server-key, FUSEBOX_SERVER_KEY)\n",
	    keys, keys);
	memset(&admin, 0, sizeof(admin));
	snprintf(admin.name, sizeof(admin.name), "admin");
	admin.kind = FBX_PK_OPERATOR;
	admin.roles = FBX_ROLES_ALL;
	admin.all_orgs = 1;
	rc = init_one(e, keys, &admin, out, why, wl);
	for (size_t i = 0; i < n && rc == FBX_OK; i++)
		rc = init_one(e, keys, &ps[i], out, why, wl);
	if (rc != FBX_OK)
		goto out;
	rc = fbx_txn_commit(e->txn);
	e->txn = NULL;
	if (rc == FBX_OK)
		fprintf(out,
		    "use a key with fuseboxctl --key FILE (or FUSEBOX_KEY) "
		    "and --server-key %s/server.pub; add principals with "
		    "`fuseboxctl principal add`\n",
		    keys);
out:
	if (e != NULL) {
		if (e->txn != NULL)
			fbx_txn_abort(e->txn);
		fbx_store_close(e->st);
		free(e);
	}
	free(ps);
	if (rc != FBX_OK && why[0] == '\0')
		snprintf(why, wl, "%s", fbx_strerror(rc));
	return rc;
}
