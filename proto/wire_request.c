/*
 * wire_request.c: the console request codec (fbx_console_req_decode,
 * _encode, _free): every field of a request checked on the way in, as
 * wire.c describes; wire.c's shared pieces come through wire_int.h. The
 * device record's codec here (fbxp_device_in, _devices_size,
 * _devices_out) serves the device list reply too.
 */
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "wire_int.h"

/* ======================= console request: decode ======================= */

/* window_ok: a time window [since, until) with 0 = open end is not
 * reversed when both ends are set. */
static int
window_ok(int64_t since_ms, int64_t until_ms)
{
	return since_ms == 0 || until_ms == 0 || since_ms <= until_ms;
}

static int
submit_in(const pb_submit *s, struct fbx_command *c, struct wctx *w)
{
	const pb_target *t = s->target;
	const char *what;
	size_t i;
	int rv;

	if (!fbxp_in_range((int)s->type, 1, FBX_CMD_TYPE_COUNT))
		return fbxp_fail(w, FBX_EINVALID,
		    "submit.type: unknown value %d", (int)s->type);
	if (!fbxp_in_range((int)s->origin, 1, FBX_ORIGIN_COUNT))
		return fbxp_fail(w, FBX_EINVALID,
		    "submit.origin: unknown value %d", (int)s->origin);
	rv = fbxp_id_copy(c->reason, s->reason, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "submit.reason: %s", what);
	rv = fbxp_id_copy(c->idem_key, s->idempotency_key, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "submit.idempotency_key: %s", what);
	if (s->payload.len > FBX_PAYLOAD_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "submit.payload: %zu bytes, at most %d", s->payload.len,
		    FBX_PAYLOAD_MAX);
	if (t == NULL)
		return fbxp_fail(w, FBX_EINVALID, "submit.target: missing");
	if (!fbxp_in_range((int)t->kind, 1, FBX_TARGET_KIND_COUNT))
		return fbxp_fail(w, FBX_EINVALID,
		    "submit.target.kind: unknown value %d", (int)t->kind);
	if (!fbxp_in_range((int)t->platform, 0, FBX_PLATFORM_COUNT))
		return fbxp_fail(w, FBX_EINVALID,
		    "submit.target.platform: unknown value %d",
		    (int)t->platform);
	if (t->n_device_ids > FBX_TARGET_IDS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "submit.target.device_ids: %zu ids, at most %d",
		    t->n_device_ids, FBX_TARGET_IDS_MAX);
	if ((int)t->kind != FBX_TARGET_DEVICES && t->n_device_ids > 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "submit.target.device_ids: only for TARGET_DEVICES");
	rv = fbxp_id_copy(c->group, t->group,
	    (int)t->kind == FBX_TARGET_GROUP, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "submit.target.group: %s", what);
	if ((int)t->kind != FBX_TARGET_GROUP && c->group[0] != '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "submit.target.group: only for TARGET_GROUP");

	c->type = (uint8_t)s->type;
	c->origin = (uint8_t)s->origin;
	c->target_kind = (uint8_t)t->kind;
	c->platform = (uint8_t)t->platform;
	c->ttl_s = s->ttl_seconds;
	if (t->n_device_ids > 0) {
		c->dev_ids = malloc(t->n_device_ids * sizeof(*c->dev_ids));
		if (c->dev_ids == NULL)
			return FBX_ENOMEM;
		for (i = 0; i < t->n_device_ids; i++) {
			rv = fbxp_id_copy(c->dev_ids[i], t->device_ids[i], 1,
			    &what);
			if (rv != FBX_OK)
				return fbxp_fail(w, rv,
				    "submit.target.device_ids[%zu]: %s", i,
				    what);
		}
		c->ndev_ids = (uint32_t)t->n_device_ids;
	}
	if (s->payload.len > 0) {
		c->payload = malloc(s->payload.len);
		if (c->payload == NULL)
			return FBX_ENOMEM;
		memcpy(c->payload, s->payload.data, s->payload.len);
		c->payload_len = (uint32_t)s->payload.len;
	}
	return FBX_OK;
}

/* device_in validates and copies one Device; pfx/idx name it in errors.
 * With need_org unset the org field is ignored (the caller sets it). */
int
fbxp_device_in(const pb_device *d, struct fbx_device *o, int need_org,
    struct wctx *w, const char *pfx, size_t idx)
{
	const char *what;
	size_t g;
	int rv;

	if (need_org) {
		rv = fbxp_id_copy(o->org, d->org, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(w, rv, pfx, idx, "org", what);
	}
	rv = fbxp_id_copy(o->id, d->id, 1, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "id", what);
	if (!fbxp_in_range((int)d->platform, 0, FBX_PLATFORM_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "platform",
		    "unknown value");
	if (!fbxp_in_range((int)d->attestation, 0, FBX_ATTEST_COUNT))
		return fbxp_fail_at(w, FBX_EINVALID, pfx, idx, "attestation",
		    "unknown value");
	rv = fbxp_text_copy(
	    o->os_version, sizeof(o->os_version), d->os_version, &what);
	if (rv != FBX_OK)
		return fbxp_fail_at(w, rv, pfx, idx, "os_version",
		    rv == FBX_ETOOBIG ? "longer than 32 bytes" : what);
	if (d->n_groups > FBX_GROUPS_MAX)
		return fbxp_fail_at(w, FBX_ETOOBIG, pfx, idx, "groups",
		    "more than 8 groups");
	for (g = 0; g < d->n_groups; g++) {
		rv = fbxp_id_copy(o->groups[g], d->groups[g], 1, &what);
		if (rv != FBX_OK) {
			if (idx == NO_IDX)
				return fbxp_fail(
				    w, rv, "%s.groups[%zu]: %s", pfx, g, what);
			return fbxp_fail(w, rv, "%s[%zu].groups[%zu]: %s", pfx,
			    idx, g, what);
		}
	}
	o->ngroups = (uint8_t)d->n_groups;
	o->platform = (uint8_t)d->platform;
	o->online = d->online ? 1 : 0;
	o->attestation = (uint8_t)d->attestation;
	o->enrolled_ms = d->enrolled_ms;
	o->last_checkin_ms = d->last_checkin_ms;
	o->pending = d->pending;
	return FBX_OK;
}

/* scope_of writes the scope a control request acts on: "*" when global,
 * else the request's organisation, so the engine need not recompute it. */
static void
scope_of(const struct fbx_console_req *r, int global, char *dst)
{
	if (global)
		strcpy(dst, "*");
	else
		memcpy(dst, r->org, sizeof(r->org));
}

/* breaker_req_in enforces what each operation needs: a manual trip or a
 * reset is an incident action, so it must say why (reason, note) and a
 * reset must say what becomes of the held commands. */
static int
breaker_req_in(const pb_brkreq *b, struct fbx_console_req *r, struct wctx *w)
{
	const char *what;
	int op = (int)b->op, rv;

	if (!fbxp_in_range(op, FBX_BRK_STATUS, FBX_BRK_CONFIGURE + 1))
		return fbxp_fail(w, FBX_EINVALID,
		    "breaker.op: missing or unknown value %d", op);
	rv = fbxp_id_copy(r->u.breaker.reason, b->reason,
	    op == FBX_BRK_TRIP || op == FBX_BRK_RESET, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "breaker.reason: %s", what);
	rv = fbxp_note_copy(r->u.breaker.note, b->note,
	    op == FBX_BRK_TRIP || op == FBX_BRK_RESET, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "breaker.note: %s", what);
	if (op == FBX_BRK_RESET && (int)b->on_reset != FBX_RESET_RELEASE &&
	    (int)b->on_reset != FBX_RESET_DISCARD)
		return fbxp_fail(w, FBX_EINVALID,
		    "breaker.on_reset: RESET_RELEASE or RESET_DISCARD "
		    "required, got %d",
		    (int)b->on_reset);
	if (op != FBX_BRK_RESET && (int)b->on_reset != FBX_RESET_NONE)
		return fbxp_fail(w, FBX_EINVALID,
		    "breaker.on_reset: only for BRK_RESET");
	if (b->config != NULL) {
		if (op != FBX_BRK_CONFIGURE)
			return fbxp_fail(w, FBX_EINVALID,
			    "breaker.config: only for BRK_CONFIGURE");
		rv = fbxp_brkcfg_in(b->config, &r->u.breaker.cfg, w,
		    "breaker.config");
		if (rv != FBX_OK)
			return rv;
	}
	r->u.breaker.op = op;
	r->u.breaker.global = b->global ? 1 : 0;
	r->u.breaker.on_reset = (int)b->on_reset;
	return FBX_OK;
}

/* cert_req_in enforces what each certificate operation needs and refuses
 * fields an operation does not use, so a mistyped request is not taken
 * for another. The PEM is parsed by the engine (OpenSSL), not here: only
 * its size is bounded. It is allocated last: the caller's free releases
 * it. */
static int
cert_req_in(const pb_certreq *q, struct fbx_console_req *r, struct wctx *w)
{
	const char *what;
	int op = (int)q->op, add, rv;
	size_t i, j;

	if (!fbxp_in_range(op, FBX_CERT_ADD, FBX_CERT_REMOVE + 1))
		return fbxp_fail(w, FBX_EINVALID,
		    "cert.op: missing or unknown value %d", op);
	add = op == FBX_CERT_ADD;
	rv = fbxp_id_copy(r->u.cert.name, q->name, op != FBX_CERT_LIST, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "cert.name: %s", what);
	if (op == FBX_CERT_LIST && r->u.cert.name[0] != '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "cert.name: only for CERT_ADD and CERT_REMOVE");
	rv = fbxp_note_copy(r->u.cert.note, q->note, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "cert.note: %s", what);
	if (!add && (q->pem.len > 0 || q->n_reasons > 0 ||
	                q->trip_before_seconds != 0))
		return fbxp_fail(w, FBX_EINVALID,
		    "cert.pem, cert.reasons, cert.trip_before_seconds: only "
		    "for CERT_ADD");
	r->u.cert.op = op;
	if (!add)
		return FBX_OK;
	if (q->trip_before_seconds > FBX_CERT_TRIP_BEFORE_MAX)
		return fbxp_fail(w, FBX_EINVALID,
		    "cert.trip_before_seconds: %u, at most %d (7 days)",
		    (unsigned)q->trip_before_seconds, FBX_CERT_TRIP_BEFORE_MAX);
	r->u.cert.trip_before_s = q->trip_before_seconds;
	if (q->n_reasons == 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "cert.reasons: missing: bind at least one automatic "
		    "reason");
	if (q->n_reasons > FBX_CERT_REASONS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "cert.reasons: %zu, at most %d", q->n_reasons,
		    FBX_CERT_REASONS_MAX);
	for (i = 0; i < q->n_reasons; i++) {
		rv = fbxp_id_copy(
		    r->u.cert.reasons[i], q->reasons[i], 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail_at(
			    w, rv, "cert", NO_IDX, "reasons", what);
		for (j = 0; j < i; j++)
			if (strcmp(r->u.cert.reasons[j],
			        r->u.cert.reasons[i]) == 0)
				return fbxp_fail(w, FBX_EINVALID,
				    "cert.reasons: '%s' given twice",
				    r->u.cert.reasons[i]);
	}
	r->u.cert.nreasons = q->n_reasons;
	if (q->pem.len == 0)
		return fbxp_fail(w, FBX_EINVALID, "cert.pem: missing");
	if (q->pem.len > FBX_CERT_PEM_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "cert.pem: %zu bytes, at most %d", q->pem.len,
		    FBX_CERT_PEM_MAX);
	r->u.cert.pem = malloc(q->pem.len);
	if (r->u.cert.pem == NULL)
		return FBX_ENOMEM;
	memcpy(r->u.cert.pem, q->pem.data, q->pem.len);
	r->u.cert.pem_len = q->pem.len;
	return FBX_OK;
}

/* z85_key_ok - a CURVE public key in Z85: exactly 40 characters of the
 * Z85 alphabet. */
static int
z85_key_ok(const char *s)
{
	static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyz"
	                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                          ".-:+=^!/*?&<>()[]{}@%$#";
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= 40 || strchr(z85, s[i]) == NULL)
			return 0;
	return i == 40;
}

/* principal_orgs_ok - "*" or 1..FBX_PRINCIPAL_ORGS_MAX identifiers
 * separated by ',', none twice. */
static int
principal_orgs_ok(const char *s, const char **what)
{
	char one[FBX_ID_MAX + 1];
	const char *p = s, *e;
	size_t n = 0, len;

	if (strcmp(s, "*") == 0)
		return FBX_OK;
	for (;;) {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len == 0 || len > FBX_ID_MAX) {
			*what = "an empty or over-long organisation";
			return FBX_EINVALID;
		}
		memcpy(one, p, len);
		one[len] = '\0';
		if (!fbx_id_valid(one)) {
			*what = "not an identifier";
			return FBX_EINVALID;
		}
		if (++n > FBX_PRINCIPAL_ORGS_MAX) {
			*what = "more than 48 organisations";
			return FBX_ETOOBIG;
		}
		for (const char *q = s; q < p;) {
			const char *qe = strchr(q, ',');
			if ((size_t)(qe - q) == len && memcmp(q, p, len) == 0) {
				*what = "an organisation given twice";
				return FBX_EINVALID;
			}
			q = qe + 1;
		}
		if (e == NULL)
			return FBX_OK;
		p = e + 1;
	}
}

/* principal_req_in validates a PrincipalRequest: what each operation
 * needs, and none of what it does not use. */
/* fleet_req_in - a FleetRequest: a report, or a rule set or removed */
static int
fleet_req_in(const pb_fleetreq *q, struct fbx_console_req *r, struct wctx *w)
{
	const char *what = "";
	int op = (int)q->op, rule = op != FBX_FLEET_REPORT, rv;

	if (!fbxp_in_range(op, FBX_FLEET_REPORT, FBX_FLEET_VERSION + 1))
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.op: unknown value %d", op);
	if (op == FBX_FLEET_VERSION) {
		if (q->command_id == 0 || q->stale_minutes != 0 ||
		    q->repeat_minutes != 0 ||
		    (q->group != NULL && q->group[0] != '\0') ||
		    (q->after_device != NULL && q->after_device[0] != '\0'))
			return fbxp_fail(w, FBX_EINVALID,
			    "fleet: FLEET_VERSION takes command_id (and after) "
			    "only");
		r->u.fleet.op = op;
		r->u.fleet.command_id = q->command_id;
		r->u.fleet.after = q->after;
		return FBX_OK;
	}
	if (q->command_id != 0 || q->after != 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.command_id, after: only for FLEET_VERSION");
	rv = fbxp_id_copy(r->u.fleet.group, q->group, 0, &what);
	if (rv == FBX_OK)
		rv = fbxp_id_copy(
		    r->u.fleet.after_dev, q->after_device, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "fleet.group, after_device: %s", what);
	if ((rule || r->u.fleet.group[0] == '\0') &&
	    r->u.fleet.after_dev[0] != '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.after_device: only with a group's FLEET_REPORT");
	if (rule && r->u.fleet.group[0] != '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.group: only for FLEET_REPORT");
	if (!rule && (q->stale_minutes != 0 || q->repeat_minutes != 0))
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.stale_minutes, repeat_minutes: only for "
		    "FLEET_RULE_SET and FLEET_RULE_DEL");
	if (rule && (q->stale_minutes == 0 ||
	                q->stale_minutes > FBX_FLEET_STALE_MAX))
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.stale_minutes: %u, expected 1..%u",
		    (unsigned)q->stale_minutes, (unsigned)FBX_FLEET_STALE_MAX);
	if (op == FBX_FLEET_RULE_DEL && q->repeat_minutes != 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.repeat_minutes: only for FLEET_RULE_SET");
	if (q->repeat_minutes > FBX_FLEET_REPEAT_MAX)
		return fbxp_fail(w, FBX_EINVALID,
		    "fleet.repeat_minutes: %u, at most %u",
		    (unsigned)q->repeat_minutes,
		    (unsigned)FBX_FLEET_REPEAT_MAX);
	r->u.fleet.op = op;
	r->u.fleet.stale_minutes = q->stale_minutes;
	r->u.fleet.repeat_minutes = q->repeat_minutes;
	rv = fbxp_note_copy(r->u.fleet.note, q->note, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "fleet.note: %s", what);
	return FBX_OK;
}

static int
principal_req_in(const pb_prireq *q, struct fbx_console_req *r, struct wctx *w)
{
	const char *what = "";
	int op = (int)q->op, add, self, rv;
	const char *orgs = q->orgs != NULL ? q->orgs : "";
	const char *key = q->public_key != NULL ? q->public_key : "";

	if (!fbxp_in_range(op, FBX_PRI_LIST, FBX_PRI_WEB_LOGIN + 1))
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.op: missing or unknown value %d", op);
	add = op == FBX_PRI_ADD;
	self = op == FBX_PRI_LIST || op == FBX_PRI_WEB_LOGIN;
	rv = fbxp_id_copy(r->u.principal.name, q->name, !self, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "principal.name: %s", what);
	if (self && r->u.principal.name[0] != '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.name: not with PRINCIPAL_LIST or WEB_LOGIN");
	if (op != FBX_PRI_WEB_LOGIN && q->ttl_seconds != 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.ttl_seconds: only for PRINCIPAL_WEB_LOGIN");
	if (q->ttl_seconds > 86400)
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.ttl_seconds: at most 86400");
	r->u.principal.ttl_s = q->ttl_seconds;
	rv = fbxp_note_copy(r->u.principal.note, q->note, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "principal.note: %s", what);
	if (!add && (q->kind != 0 || q->roles != 0 || orgs[0] != '\0'))
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.kind, roles, orgs: only for PRINCIPAL_ADD");
	if ((add || op == FBX_PRI_ROTATE) != (key[0] != '\0'))
		return fbxp_fail(w, FBX_EINVALID, "principal.public_key: %s",
		    key[0] != '\0' ? "only for PRINCIPAL_ADD and ROTATE" :
				     "missing");
	if (key[0] != '\0' && !z85_key_ok(key))
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.public_key: not 40 characters of Z85");
	r->u.principal.op = op;
	memcpy(r->u.principal.public_key, key, strlen(key) + 1);
	if (!add)
		return FBX_OK;
	if (!fbxp_in_range((int)q->kind, FBX_PK_OPERATOR, FBX_PK_GATEWAY + 1))
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.kind: missing or unknown value %u",
		    (unsigned)q->kind);
	if ((q->roles & ~FBX_ROLES_ALL) != 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.roles: unknown bits 0x%x", (unsigned)q->roles);
	if (q->kind == FBX_PK_GATEWAY && q->roles != 0)
		return fbxp_fail(w, FBX_EINVALID,
		    "principal.roles: a gateway has none");
	if (orgs[0] == '\0')
		return fbxp_fail(w, FBX_EINVALID, "principal.orgs: missing");
	if (strlen(orgs) >= FBX_PRINCIPAL_ORGS_LEN)
		return fbxp_fail(w, FBX_ETOOBIG, "principal.orgs: too long");
	rv = principal_orgs_ok(orgs, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "principal.orgs: %s", what);
	r->u.principal.kind = (int)q->kind;
	r->u.principal.roles = q->roles;
	memcpy(r->u.principal.orgs, orgs, strlen(orgs) + 1);
	return FBX_OK;
}

/* selector_in validates a Selector; pfx ("rollback.selector") names it
 * in errors. Explicit ids and an incident breaker are alternatives, and
 * breaker_global says which breaker, so it needs a reason. The id array
 * is allocated last: the caller's free releases it. */
static int
selector_in(const pb_selector *s, struct fbx_selector *o, struct wctx *w,
    const char *pfx)
{
	const char *what;
	size_t i, n;
	int rv;

	if (s == NULL)
		return fbxp_fail(w, FBX_EINVALID, "%s: missing", pfx);
	n = s->n_command_ids;
	if (n > CMD_IDS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "%s.command_ids: %zu ids, at most %d", pfx, n,
		    CMD_IDS_MAX);
	for (i = 0; i < n; i++)
		if (s->command_ids[i] == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "%s.command_ids[%zu]: zero", pfx, i);
	rv = fbxp_id_copy(o->breaker, s->breaker_reason, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "%s.breaker_reason: %s", pfx, what);
	if (s->breaker_global && o->breaker[0] == '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.breaker_global: needs breaker_reason", pfx);
	if (n > 0 && o->breaker[0] != '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.breaker_reason: not with command_ids", pfx);
	if (s->include_before_onset && o->breaker[0] == '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.include_before_onset: needs breaker_reason", pfx);
	if (s->every_org && o->breaker[0] == '\0')
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.every_org: needs breaker_reason", pfx);
	if (!fbxp_in_range((int)s->origin, 0, FBX_ORIGIN_COUNT))
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.origin: unknown value %d", pfx, (int)s->origin);
	if (!fbxp_in_range((int)s->type, 0, FBX_CMD_TYPE_COUNT))
		return fbxp_fail(w, FBX_EINVALID, "%s.type: unknown value %d",
		    pfx, (int)s->type);
	rv = fbxp_id_copy(o->reason, s->reason, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "%s.reason: %s", pfx, what);
	rv = fbxp_id_copy(o->group, s->group, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "%s.group: %s", pfx, what);
	if (!window_ok(s->since_ms, s->until_ms))
		return fbxp_fail(
		    w, FBX_EINVALID, "%s.until_ms: before since_ms", pfx);
	o->breaker_global = s->breaker_global ? 1 : 0;
	o->include_before_onset = s->include_before_onset ? 1 : 0;
	o->every_org = s->every_org ? 1 : 0;
	o->origin = (int)s->origin;
	o->type = (int)s->type;
	o->since_ms = s->since_ms;
	o->until_ms = s->until_ms;
	if (n > 0) {
		o->command_ids = malloc(n * sizeof(*o->command_ids));
		if (o->command_ids == NULL)
			return FBX_ENOMEM;
		memcpy(o->command_ids, s->command_ids,
		    n * sizeof(*o->command_ids));
		o->ncommand_ids = n;
	}
	return FBX_OK;
}

static int
body_in(const pb_creq *pb, struct fbx_console_req *r, struct wctx *w)
{
	const char *what;
	size_t i, n;
	int rv;

	switch (pb->body_case) {
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_SUBMIT:
		memcpy(r->u.submit.cmd.org, r->org, sizeof(r->org));
		memcpy(r->u.submit.cmd.actor, r->actor, sizeof(r->actor));
		rv = fbxp_id_copy(r->approval, pb->submit->approval, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "submit.approval: %s", what);
		r->dry_run = pb->submit->dry_run ? 1 : 0;
		if (pb->submit->rollout != NULL) {
			rv = fbxp_plan_in(pb->submit->rollout,
			    &r->u.submit.cmd.rollout, w, "submit.rollout");
			if (rv != FBX_OK)
				return rv;
		}
		return submit_in(pb->submit, &r->u.submit.cmd, w);
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_GET_COMMAND: {
		const pb_get *g = pb->get_command;
		if (g->command_id == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "get_command.command_id: missing");
		if (g->limit > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "get_command.limit: %u, at most %d",
			    (unsigned)g->limit, FBX_PAGE_MAX);
		if (!fbxp_in_range((int)g->state, 0, FBX_D_COUNT))
			return fbxp_fail(w, FBX_EINVALID,
			    "get_command.state: unknown value %d",
			    (int)g->state);
		r->u.get.command_id = g->command_id;
		r->u.get.after = g->after;
		r->u.get.limit = g->limit;
		r->u.get.state = (int)g->state;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_COMMANDS: {
		const pb_list *l = pb->list_commands;
		if (l->until_ms != 0 && l->until_ms < l->since_ms)
			return fbxp_fail(w, FBX_EINVALID,
			    "list_commands.until_ms: before since_ms");
		if (l->limit > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "list_commands.limit: %u, at most %d",
			    (unsigned)l->limit, FBX_PAGE_MAX);
		r->u.list.since_ms = l->since_ms;
		r->u.list.until_ms = l->until_ms;
		r->u.list.after = l->after;
		r->u.list.limit = l->limit;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_ENROLL:
		n = pb->enroll->n_devices;
		if (n > FBX_ENROLL_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "enroll.devices: %zu devices, at most %d", n,
			    FBX_ENROLL_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.enroll.devs = calloc(n, sizeof(*r->u.enroll.devs));
		if (r->u.enroll.devs == NULL)
			return FBX_ENOMEM;
		r->u.enroll.n = n;
		for (i = 0; i < n; i++) {
			struct fbx_device *d = &r->u.enroll.devs[i];
			rv = fbxp_device_in(pb->enroll->devices[i], d, 0, w,
			    "enroll.devices", i);
			if (rv != FBX_OK)
				return rv;
			memcpy(d->org, r->org, sizeof(d->org));
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_REMOVE:
		n = pb->remove->n_device_ids;
		if (n > FBX_ENROLL_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "remove.device_ids: %zu ids, at most %d", n,
			    FBX_ENROLL_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.remove.ids = malloc(n * sizeof(*r->u.remove.ids));
		if (r->u.remove.ids == NULL)
			return FBX_ENOMEM;
		r->u.remove.n = n;
		for (i = 0; i < n; i++) {
			rv = fbxp_id_copy(r->u.remove.ids[i],
			    pb->remove->device_ids[i], 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail(w, rv,
				    "remove.device_ids[%zu]: %s", i, what);
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_DEVICES: {
		const pb_listdev *l = pb->list_devices;
		rv = fbxp_id_copy(r->u.list_devices.group, l->group, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(
			    w, rv, "list_devices.group: %s", what);
		rv = fbxp_id_copy(r->u.list_devices.after, l->after, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(
			    w, rv, "list_devices.after: %s", what);
		if (l->limit > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "list_devices.limit: %u, at most %d",
			    (unsigned)l->limit, FBX_PAGE_MAX);
		r->u.list_devices.limit = l->limit;
		if (l->stale_minutes > FBX_FLEET_STALE_MAX)
			return fbxp_fail(w, FBX_EINVALID,
			    "list_devices.stale_minutes: %u, at most %u",
			    (unsigned)l->stale_minutes,
			    (unsigned)FBX_FLEET_STALE_MAX);
		r->u.list_devices.stale_minutes = l->stale_minutes;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_GROUPS:
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_PING:
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_BREAKER:
		return breaker_req_in(pb->breaker, r, w);
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIMIT: {
		const pb_limreq *l = pb->limit;
		struct fbx_limit_info *o = &r->u.limit.lim;
		if (!fbxp_in_range((int)l->type, l->set ? 1 : 0,
		        FBX_CMD_TYPE_COUNT))
			return fbxp_fail(w, FBX_EINVALID,
			    "limit.type: %s value %d",
			    l->set ? "missing or unknown" : "unknown",
			    (int)l->type);
		if (l->max_share_ppm > FBX_PPM)
			return fbxp_fail(w, FBX_EINVALID,
			    "limit.max_share_ppm: above 1,000,000 ppm");
		r->u.limit.set = l->set ? 1 : 0;
		r->u.limit.global = l->global ? 1 : 0;
		scope_of(r, l->global, o->org);
		o->type = (uint8_t)l->type;
		o->max_count = l->max_count;
		o->max_share_ppm = l->max_share_ppm;
		o->window_s = l->window_seconds;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_RATE: {
		const pb_ratereq *q = pb->rate;
		struct fbx_rate_info *o = &r->u.rate.rate;
		r->u.rate.set = q->set ? 1 : 0;
		r->u.rate.global = q->global ? 1 : 0;
		scope_of(r, q->global, o->org);
		o->rate_per_s = q->rate_per_second;
		o->burst = q->burst;
		o->max_inflight = q->max_inflight;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_APPROVE:
		rv = fbxp_id_copy(
		    r->u.approve.token, pb->approve->token, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "approve.token: %s", what);
		rv = fbxp_note_copy(
		    r->u.approve.note, pb->approve->note, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "approve.note: %s", what);
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_ROLLOUT: {
		const pb_roreq *q = pb->rollout;
		if (!fbxp_in_range(
		        (int)q->op, FBX_ROP_STATUS, FBX_ROP_APPROVE + 1))
			return fbxp_fail(w, FBX_EINVALID,
			    "rollout.op: missing or unknown value %d",
			    (int)q->op);
		if (q->command_id == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "rollout.command_id: missing");
		rv = fbxp_note_copy(r->u.rollout.note, q->note, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "rollout.note: %s", what);
		r->u.rollout.op = (int)q->op;
		r->u.rollout.command_id = q->command_id;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_HELD: {
		const pb_listheld *l = pb->list_held;
		rv = fbxp_id_copy(r->u.list_held.reason, l->reason, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "list_held.reason: %s", what);
		if (l->limit > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "list_held.limit: %u, at most %d",
			    (unsigned)l->limit, FBX_PAGE_MAX);
		if (l->which > FBX_LH_ROLLOUTS)
			return fbxp_fail(w, FBX_EINVALID,
			    "list_held.which: %u, 0 held, 1 settling or 2 "
			    "rollouts",
			    (unsigned)l->which);
		r->u.list_held.after = l->after;
		r->u.list_held.limit = l->limit;
		r->u.list_held.which = l->which;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_ROLLBACK: {
		const pb_rbreq *q = pb->rollback;
		if (q->limit > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "rollback.limit: %u, at most %d",
			    (unsigned)q->limit, FBX_PAGE_MAX);
		rv = fbxp_note_copy(r->u.rollback.note, q->note, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "rollback.note: %s", what);
		if (q->cursor != 0 && q->last_command_id == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "rollback.last_command_id: required with a cursor");
		if (q->cursor == 0 && q->last_command_id != 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "rollback.last_command_id: only with a cursor");
		/* a rollback id without a cursor: go on with that run
		 * from the cursor the engine journaled */
		if (q->rollback_id != 0 && !q->execute)
			return fbxp_fail(w, FBX_EINVALID,
			    "rollback.rollback_id: only with execute");
		rv = fbxp_id_copy(
		    r->u.rollback.org_cursor, q->org_cursor, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(
			    w, rv, "rollback.org_cursor: %s", what);
		if (r->u.rollback.org_cursor[0] != '\0' && q->cursor == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "rollback.org_cursor: only with a cursor");
		r->u.rollback.execute = q->execute ? 1 : 0;
		r->u.rollback.include_changed = q->include_changed ? 1 : 0;
		r->u.rollback.limit = q->limit;
		r->u.rollback.cursor = q->cursor;
		r->u.rollback.last_command_id = q->last_command_id;
		r->u.rollback.rollback_id = q->rollback_id;
		r->u.rollback.sliced = q->sliced ? 1 : 0;
		return selector_in(q->selector, &r->u.rollback.sel, w,
		    "rollback.selector");
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_REPLAY: {
		const pb_rpreq *q = pb->replay;
		if (!fbxp_in_range((int)q->state, 0, FBX_D_COUNT))
			return fbxp_fail(w, FBX_EINVALID,
			    "replay.state: unknown value %d", (int)q->state);
		rv = fbxp_note_copy(r->u.replay.note, q->note, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "replay.note: %s", what);
		if (q->cursor != 0 && q->last_command_id == 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "replay.last_command_id: required with a cursor");
		if (q->cursor == 0 && q->last_command_id != 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "replay.last_command_id: only with a cursor");
		r->u.replay.state = (int)q->state;
		r->u.replay.force = q->force ? 1 : 0;
		r->u.replay.execute = q->execute ? 1 : 0;
		r->u.replay.cursor = q->cursor;
		r->u.replay.last_command_id = q->last_command_id;
		r->u.replay.sliced = q->sliced ? 1 : 0;
		return selector_in(q->selector, &r->u.replay.sel, w,
		    "replay.selector");
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_EXPORT: {
		const pb_expreq *q = pb->export;
		if (!window_ok(q->since_ms, q->until_ms))
			return fbxp_fail(w, FBX_EINVALID,
			    "export.until_ms: before since_ms");
		if (q->max_bytes > EXPORT_ASK_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "export.max_bytes: %u, at most %u",
			    (unsigned)q->max_bytes, EXPORT_ASK_MAX);
		r->u.export_.since_ms = q->since_ms;
		r->u.export_.until_ms = q->until_ms;
		r->u.export_.cursor = q->cursor;
		r->u.export_.max_bytes = q->max_bytes;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_AUDIT_LIST: {
		const pb_audreq *q = pb->audit_list;
		rv = fbxp_id_copy(r->u.audit_list.actor, q->actor, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "audit_list.actor: %s", what);
		rv = fbxp_action_copy(
		    r->u.audit_list.action, q->action, 0, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "audit_list.action: %s", what);
		if (!window_ok(q->since_ms, q->until_ms))
			return fbxp_fail(w, FBX_EINVALID,
			    "audit_list.until_ms: before since_ms");
		if (q->limit > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "audit_list.limit: %u, at most %d",
			    (unsigned)q->limit, FBX_PAGE_MAX);
		r->u.audit_list.since_ms = q->since_ms;
		r->u.audit_list.until_ms = q->until_ms;
		r->u.audit_list.after = q->after;
		r->u.audit_list.limit = q->limit;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_AUDIT_VERIFY: {
		const pb_audverify *q = pb->audit_verify;
		rv = fbxp_hash_copy(
		    r->u.audit_verify.after_hash, q->after_hash, &what);
		if (rv != FBX_OK)
			return fbxp_fail(
			    w, rv, "audit_verify.after_hash: %s", what);
		if ((q->after_seq != 0) != (r->u.audit_verify.after_hash[0] != 0))
			return fbxp_fail(w, FBX_EINVALID,
			    "audit_verify.after_hash: %s",
			    q->after_seq ? "required with after_seq" :
					   "only with after_seq");
		if (q->incremental && q->after_seq != 0)
			return fbxp_fail(w, FBX_EINVALID,
			    "audit_verify.after_seq: not with incremental");
		if (q->max_records > FBX_VERIFY_SLICE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
			    "audit_verify.max_records: %u, at most %d",
			    (unsigned)q->max_records, FBX_VERIFY_SLICE_MAX);
		r->u.audit_verify.incremental = q->incremental ? 1 : 0;
		r->u.audit_verify.after_seq = q->after_seq;
		r->u.audit_verify.max_records = q->max_records;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_ORGS:
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_CERT:
		return cert_req_in(pb->cert, r, w);
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_PRINCIPAL:
		return principal_req_in(pb->principal, r, w);
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_FLEET:
		return fleet_req_in(pb->fleet, r, w);
	default:
		break;
	}
	return fbxp_fail(w, FBX_EINVALID, "body: missing or unknown request");
}

int
fbx_console_req_decode(const void *buf, size_t len,
    struct fbx_console_req *out, char *why, size_t whylen)
{
	struct wctx w = { why, whylen };
	struct fbx_console_req *r = out;
	pb_creq *pb = NULL;
	struct pb_alloc pa;
	const char *what;
	int rv;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (out == NULL)
		return fbxp_fail(&w, FBX_EINVALID, "out: NULL");
	/* decoded in place: the struct is 3.6 KiB, a copy of it cost a
	 * tenth of the decode */
	memset(r, 0, sizeof(*r));
	rv = fbxp_check_len(&w, buf, len, FBX_CONSOLE_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	rv = fbxp_prescan(&w, &fusebox__v1__console_request__descriptor, buf,
	    len, &fbxp_caps_console);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__console_request__unpack(fbxp_pb_alloc_init(&pa), len,
	    fbxp_in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM
		               : fbxp_fail(&w, FBX_EMALFORMED,
		                   "message: not a ConsoleRequest");
		goto out;
	}
	r->request_id = pb->request_id;
	rv = fbxp_check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	r->version = pb->version;
	rv = fbxp_id_copy(r->org, pb->org, 1, &what);
	if (rv != FBX_OK) {
		rv = fbxp_fail(&w, rv, "org: %s", what);
		goto out;
	}
	rv = fbxp_id_copy(r->actor, pb->actor, 1, &what);
	if (rv != FBX_OK) {
		rv = fbxp_fail(&w, rv, "actor: %s", what);
		goto out;
	}
	r->kind = (int)pb->body_case;
	rv = body_in(pb, r, &w);

out:
	if (pb != NULL)
		fusebox__v1__console_request__free_unpacked(pb, NULL);
	if (rv != FBX_OK) {
		uint64_t id = r->request_id;
		fbx_console_req_free(r); /* zeroes it */
		out->request_id = id;
		if (rv == FBX_ENOMEM)
			fbxp_fail(&w, rv, "out of memory");
		return rv;
	}
	return FBX_OK;
}

void
fbx_console_req_free(struct fbx_console_req *req)
{
	if (req == NULL)
		return;
	switch (req->kind) {
	case FBX_CREQ_SUBMIT:
		fbx_command_clear(&req->u.submit.cmd);
		break;
	case FBX_CREQ_ENROLL:
		free(req->u.enroll.devs);
		break;
	case FBX_CREQ_REMOVE:
		free(req->u.remove.ids);
		break;
	case FBX_CREQ_ROLLBACK:
		free(req->u.rollback.sel.command_ids);
		break;
	case FBX_CREQ_REPLAY:
		free(req->u.replay.sel.command_ids);
		break;
	case FBX_CREQ_CERT:
		free(req->u.cert.pem);
		break;
	default:
		break;
	}
	memset(req, 0, sizeof(*req));
}

/* ======================= console request: encode ======================= */

/* device_out fills o from d; gp receives d->ngroups string pointers. */
static int
device_out(const struct fbx_device *d, pb_device *o, char **gp)
{
	static const pb_device init = FUSEBOX__V1__DEVICE__INIT;
	size_t g;

	if (!fbxp_cstr_ok(d->org, sizeof(d->org)) ||
	    !fbxp_cstr_ok(d->id, sizeof(d->id)) ||
	    !fbxp_cstr_ok(d->os_version, sizeof(d->os_version)))
		return FBX_EINVALID;
	if (d->ngroups > FBX_GROUPS_MAX)
		return FBX_ETOOBIG;
	*o = init;
	o->org = (char *)d->org;
	o->id = (char *)d->id;
	o->platform = (Fusebox__V1__Platform)d->platform;
	o->online = d->online != 0;
	o->attestation = (Fusebox__V1__Attestation)d->attestation;
	o->os_version = (char *)d->os_version;
	for (g = 0; g < d->ngroups; g++) {
		if (!fbxp_cstr_ok(d->groups[g], sizeof(d->groups[g])))
			return FBX_EINVALID;
		gp[g] = (char *)d->groups[g];
	}
	o->n_groups = d->ngroups;
	o->groups = d->ngroups > 0 ? gp : NULL;
	o->enrolled_ms = d->enrolled_ms;
	o->last_checkin_ms = d->last_checkin_ms;
	o->pending = d->pending;
	return FBX_OK;
}

int
fbxp_devices_size(const struct fbx_device *d, size_t n, size_t *sz)
{
	size_t i;

	/* devices_out takes each device's group pointers separately. */
	*sz = fbxp_asz(n * sizeof(pb_device))
	    + fbxp_asz(n * sizeof(pb_device *));
	for (i = 0; i < n; i++) {
		if (d[i].ngroups > FBX_GROUPS_MAX)
			return FBX_ETOOBIG;
		*sz += fbxp_asz(d[i].ngroups * sizeof(char *));
	}
	return FBX_OK;
}

/* devices_out builds n Device messages from the arena. */
int
fbxp_devices_out(struct arena *a, const struct fbx_device *d, size_t n,
    pb_device ***outp)
{
	pb_device *v = fbxp_arena_take(a, n * sizeof(*v));
	pb_device **p = fbxp_arena_take(a, n * sizeof(*p));
	size_t i;
	int rv;

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		char **gp = fbxp_arena_take(a, d[i].ngroups * sizeof(char *));
		if (gp == NULL)
			return FBX_ENOMEM;
		rv = device_out(&d[i], &v[i], gp);
		if (rv != FBX_OK)
			return rv;
		p[i] = &v[i];
	}
	*outp = p;
	return FBX_OK;
}

static int
submit_out(struct arena *a, const struct fbx_command *c, pb_submit *s,
    pb_target *t)
{
	size_t i;

	if (!fbxp_cstr_ok(c->reason, sizeof(c->reason)) ||
	    !fbxp_cstr_ok(c->idem_key, sizeof(c->idem_key)) ||
	    !fbxp_cstr_ok(c->group, sizeof(c->group)))
		return FBX_EINVALID;
	if (c->ndev_ids > FBX_TARGET_IDS_MAX ||
	    c->payload_len > FBX_PAYLOAD_MAX)
		return FBX_ETOOBIG;
	if ((c->ndev_ids > 0 && c->dev_ids == NULL) ||
	    (c->payload_len > 0 && c->payload == NULL))
		return FBX_EINVALID;
	s->type = (Fusebox__V1__CommandType)c->type;
	s->origin = (Fusebox__V1__Origin)c->origin;
	s->reason = (char *)c->reason;
	s->idempotency_key = (char *)c->idem_key;
	s->ttl_seconds = c->ttl_s;
	s->payload.len = c->payload_len;
	s->payload.data = c->payload;
	t->kind = (Fusebox__V1__TargetKind)c->target_kind;
	t->platform = (Fusebox__V1__Platform)c->platform;
	t->group = (char *)c->group;
	if (c->ndev_ids > 0) {
		t->device_ids =
		    fbxp_arena_take(a, c->ndev_ids * sizeof(char *));
		if (t->device_ids == NULL)
			return FBX_ENOMEM;
		for (i = 0; i < c->ndev_ids; i++) {
			if (!fbxp_cstr_ok(
			        c->dev_ids[i], sizeof(c->dev_ids[i])))
				return FBX_EINVALID;
			t->device_ids[i] = (char *)c->dev_ids[i];
		}
		t->n_device_ids = c->ndev_ids;
	}
	s->target = t;
	return FBX_OK;
}

/* selector_out fills o from s; the id array is borrowed, not copied. */
static int
selector_out(const struct fbx_selector *s, pb_selector *o)
{
	static const pb_selector init = FUSEBOX__V1__SELECTOR__INIT;

	if (s->ncommand_ids > CMD_IDS_MAX)
		return FBX_ETOOBIG;
	if ((s->ncommand_ids > 0 && s->command_ids == NULL) ||
	    !fbxp_cstr_ok(s->breaker, sizeof(s->breaker)) ||
	    !fbxp_cstr_ok(s->reason, sizeof(s->reason)) ||
	    !fbxp_cstr_ok(s->group, sizeof(s->group)))
		return FBX_EINVALID;
	*o = init;
	o->n_command_ids = s->ncommand_ids;
	o->command_ids = s->ncommand_ids > 0 ? s->command_ids : NULL;
	o->breaker_reason = (char *)s->breaker;
	o->breaker_global = s->breaker_global != 0;
	o->include_before_onset = s->include_before_onset != 0;
	o->every_org = s->every_org != 0;
	o->origin = (Fusebox__V1__Origin)s->origin;
	o->reason = (char *)s->reason;
	o->type = (Fusebox__V1__CommandType)s->type;
	o->group = (char *)s->group;
	o->since_ms = s->since_ms;
	o->until_ms = s->until_ms;
	return FBX_OK;
}

int
fbx_console_req_encode(
    const struct fbx_console_req *req, uint8_t **buf, size_t *len)
{
	pb_creq m = FUSEBOX__V1__CONSOLE_REQUEST__INIT;
	pb_submit submit = FUSEBOX__V1__SUBMIT_COMMAND__INIT;
	pb_target target = FUSEBOX__V1__TARGET__INIT;
	pb_get get = FUSEBOX__V1__GET_COMMAND__INIT;
	pb_list list = FUSEBOX__V1__LIST_COMMANDS__INIT;
	pb_enroll enroll = FUSEBOX__V1__ENROLL_DEVICES__INIT;
	pb_remove remove = FUSEBOX__V1__REMOVE_DEVICES__INIT;
	pb_listdev listdev = FUSEBOX__V1__LIST_DEVICES__INIT;
	pb_listgrp listgrp = FUSEBOX__V1__LIST_GROUPS__INIT;
	pb_ping ping = FUSEBOX__V1__PING__INIT;
	pb_plan plan;
	char *plan_groups[FBX_ROLLOUT_GROUPS_MAX];
	pb_brkreq brk = FUSEBOX__V1__BREAKER_REQUEST__INIT;
	pb_brkcfg brkcfg;
	pb_limreq lim = FUSEBOX__V1__LIMIT_REQUEST__INIT;
	pb_ratereq rate = FUSEBOX__V1__RATE_REQUEST__INIT;
	pb_apprreq appr = FUSEBOX__V1__APPROVE_REQUEST__INIT;
	pb_roreq ro = FUSEBOX__V1__ROLLOUT_REQUEST__INIT;
	pb_listheld held = FUSEBOX__V1__LIST_HELD__INIT;
	pb_selector sel;
	pb_rbreq rb = FUSEBOX__V1__ROLLBACK_REQUEST__INIT;
	pb_rpreq rp = FUSEBOX__V1__REPLAY_REQUEST__INIT;
	pb_expreq expreq = FUSEBOX__V1__EXPORT_REQUEST__INIT;
	pb_audreq aud = FUSEBOX__V1__AUDIT_LIST_REQUEST__INIT;
	pb_audverify audv = FUSEBOX__V1__AUDIT_VERIFY__INIT;
	pb_listorgs lorgs = FUSEBOX__V1__LIST_ORGS__INIT;
	pb_certreq certq = FUSEBOX__V1__CERT_REQUEST__INIT;
	pb_prireq priq = FUSEBOX__V1__PRINCIPAL_REQUEST__INIT;
	pb_fleetreq fleetq = FUSEBOX__V1__FLEET_REQUEST__INIT;
	char *cert_reasons[FBX_CERT_REASONS_MAX];
	static const struct fbx_breaker_cfg zero_cfg;
	struct arena a = { NULL, 0, 0 };
	size_t i, sz = 0;
	int rv;

	if (req == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	if (!fbxp_cstr_ok(req->org, sizeof(req->org)) ||
	    !fbxp_cstr_ok(req->actor, sizeof(req->actor)))
		return FBX_EINVALID;
	m.version = req->version != 0 ? req->version : FBX_PROTOCOL_VERSION;
	m.request_id = req->request_id;
	m.org = (char *)req->org;
	m.actor = (char *)req->actor;

	switch (req->kind) {
	case FBX_CREQ_SUBMIT:
		sz = fbxp_asz(req->u.submit.cmd.ndev_ids * sizeof(char *));
		break;
	case FBX_CREQ_ENROLL:
		if (req->u.enroll.n > FBX_ENROLL_MAX)
			return FBX_ETOOBIG;
		if (req->u.enroll.n > 0 && req->u.enroll.devs == NULL)
			return FBX_EINVALID;
		rv = fbxp_devices_size(
		    req->u.enroll.devs, req->u.enroll.n, &sz);
		if (rv != FBX_OK)
			return rv;
		break;
	case FBX_CREQ_REMOVE:
		if (req->u.remove.n > FBX_ENROLL_MAX)
			return FBX_ETOOBIG;
		if (req->u.remove.n > 0 && req->u.remove.ids == NULL)
			return FBX_EINVALID;
		sz = fbxp_asz(req->u.remove.n * sizeof(char *));
		break;
	default:
		break;
	}
	rv = fbxp_arena_init(&a, sz);
	if (rv != FBX_OK)
		return rv;

	switch (req->kind) {
	case FBX_CREQ_SUBMIT:
		rv = submit_out(&a, &req->u.submit.cmd, &submit, &target);
		if (rv != FBX_OK)
			goto out;
		if (!fbxp_cstr_ok(req->approval, sizeof(req->approval))) {
			rv = FBX_EINVALID;
			goto out;
		}
		submit.dry_run = req->dry_run != 0;
		submit.approval = (char *)req->approval;
		if (!fbxp_plan_empty(&req->u.submit.cmd.rollout)) {
			rv = fbxp_plan_out(&req->u.submit.cmd.rollout, &plan,
			    plan_groups);
			if (rv != FBX_OK)
				goto out;
			submit.rollout = &plan;
		}
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_SUBMIT;
		m.submit = &submit;
		break;
	case FBX_CREQ_GET_COMMAND:
		get.command_id = req->u.get.command_id;
		get.after = req->u.get.after;
		get.limit = req->u.get.limit;
		get.state = (Fusebox__V1__DeliveryState)req->u.get.state;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_GET_COMMAND;
		m.get_command = &get;
		break;
	case FBX_CREQ_LIST_COMMANDS:
		list.since_ms = req->u.list.since_ms;
		list.until_ms = req->u.list.until_ms;
		list.after = req->u.list.after;
		list.limit = req->u.list.limit;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_COMMANDS;
		m.list_commands = &list;
		break;
	case FBX_CREQ_ENROLL:
		rv = fbxp_devices_out(&a, req->u.enroll.devs, req->u.enroll.n,
		    &enroll.devices);
		if (rv != FBX_OK)
			goto out;
		enroll.n_devices = req->u.enroll.n;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_ENROLL;
		m.enroll = &enroll;
		break;
	case FBX_CREQ_REMOVE:
		remove.device_ids = fbxp_arena_take(&a, req->u.remove.n *
		    sizeof(char *));
		if (remove.device_ids == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < req->u.remove.n; i++) {
			const char *id = req->u.remove.ids[i];
			if (!fbxp_cstr_ok(id, sizeof(fbx_id))) {
				rv = FBX_EINVALID;
				goto out;
			}
			remove.device_ids[i] = (char *)id;
		}
		remove.n_device_ids = req->u.remove.n;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_REMOVE;
		m.remove = &remove;
		break;
	case FBX_CREQ_LIST_DEVICES:
		if (!fbxp_cstr_ok(req->u.list_devices.group, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(req->u.list_devices.after, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		listdev.group = (char *)req->u.list_devices.group;
		listdev.after = (char *)req->u.list_devices.after;
		listdev.limit = req->u.list_devices.limit;
		listdev.stale_minutes = req->u.list_devices.stale_minutes;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_DEVICES;
		m.list_devices = &listdev;
		break;
	case FBX_CREQ_LIST_GROUPS:
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_GROUPS;
		m.list_groups = &listgrp;
		break;
	case FBX_CREQ_PING:
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_PING;
		m.ping = &ping;
		break;
	case FBX_CREQ_BREAKER:
		if (!fbxp_cstr_ok(req->u.breaker.reason, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(req->u.breaker.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		brk.op = (Fusebox__V1__BreakerOp)req->u.breaker.op;
		brk.global = req->u.breaker.global != 0;
		brk.reason = (char *)req->u.breaker.reason;
		brk.on_reset =
		    (Fusebox__V1__ResetAction)req->u.breaker.on_reset;
		brk.note = (char *)req->u.breaker.note;
		if (memcmp(&req->u.breaker.cfg, &zero_cfg,
		        sizeof(zero_cfg)) != 0) {
			fbxp_brkcfg_out(&req->u.breaker.cfg, &brkcfg);
			brk.config = &brkcfg;
		}
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_BREAKER;
		m.breaker = &brk;
		break;
	case FBX_CREQ_LIMIT:
		/* lim.org is not sent: the scope is org or global. */
		lim.set = req->u.limit.set != 0;
		lim.global = req->u.limit.global != 0;
		lim.type = (Fusebox__V1__CommandType)req->u.limit.lim.type;
		lim.max_count = req->u.limit.lim.max_count;
		lim.max_share_ppm = req->u.limit.lim.max_share_ppm;
		lim.window_seconds = req->u.limit.lim.window_s;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIMIT;
		m.limit = &lim;
		break;
	case FBX_CREQ_RATE:
		rate.set = req->u.rate.set != 0;
		rate.global = req->u.rate.global != 0;
		rate.rate_per_second = req->u.rate.rate.rate_per_s;
		rate.burst = req->u.rate.rate.burst;
		rate.max_inflight = req->u.rate.rate.max_inflight;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_RATE;
		m.rate = &rate;
		break;
	case FBX_CREQ_APPROVE:
		if (!fbxp_cstr_ok(req->u.approve.token, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(req->u.approve.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		appr.token = (char *)req->u.approve.token;
		appr.note = (char *)req->u.approve.note;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_APPROVE;
		m.approve = &appr;
		break;
	case FBX_CREQ_ROLLOUT:
		if (!fbxp_cstr_ok(req->u.rollout.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		ro.op = (Fusebox__V1__RolloutOp)req->u.rollout.op;
		ro.command_id = req->u.rollout.command_id;
		ro.note = (char *)req->u.rollout.note;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_ROLLOUT;
		m.rollout = &ro;
		break;
	case FBX_CREQ_LIST_HELD:
		if (!fbxp_cstr_ok(req->u.list_held.reason, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		held.reason = (char *)req->u.list_held.reason;
		held.after = req->u.list_held.after;
		held.limit = req->u.list_held.limit;
		held.which = req->u.list_held.which;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_HELD;
		m.list_held = &held;
		break;
	case FBX_CREQ_ROLLBACK:
		if (!fbxp_cstr_ok(req->u.rollback.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		rv = selector_out(&req->u.rollback.sel, &sel);
		if (rv != FBX_OK)
			goto out;
		rb.selector = &sel;
		rb.execute = req->u.rollback.execute != 0;
		rb.include_changed = req->u.rollback.include_changed != 0;
		rb.limit = req->u.rollback.limit;
		rb.note = (char *)req->u.rollback.note;
		rb.cursor = req->u.rollback.cursor;
		rb.last_command_id = req->u.rollback.last_command_id;
		rb.rollback_id = req->u.rollback.rollback_id;
		rb.sliced = req->u.rollback.sliced != 0;
		if (!fbxp_cstr_ok(
		        req->u.rollback.org_cursor, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		rb.org_cursor = (char *)req->u.rollback.org_cursor;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_ROLLBACK;
		m.rollback = &rb;
		break;
	case FBX_CREQ_REPLAY:
		if (!fbxp_cstr_ok(req->u.replay.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		rv = selector_out(&req->u.replay.sel, &sel);
		if (rv != FBX_OK)
			goto out;
		rp.selector = &sel;
		rp.state = (Fusebox__V1__DeliveryState)req->u.replay.state;
		rp.force = req->u.replay.force != 0;
		rp.execute = req->u.replay.execute != 0;
		rp.note = (char *)req->u.replay.note;
		rp.cursor = req->u.replay.cursor;
		rp.last_command_id = req->u.replay.last_command_id;
		rp.sliced = req->u.replay.sliced != 0;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_REPLAY;
		m.replay = &rp;
		break;
	case FBX_CREQ_EXPORT:
		expreq.since_ms = req->u.export_.since_ms;
		expreq.until_ms = req->u.export_.until_ms;
		expreq.cursor = req->u.export_.cursor;
		expreq.max_bytes = req->u.export_.max_bytes;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_EXPORT;
		m.export = &expreq;
		break;
	case FBX_CREQ_AUDIT_LIST:
		if (!fbxp_cstr_ok(req->u.audit_list.actor, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(req->u.audit_list.action,
		        sizeof(req->u.audit_list.action))) {
			rv = FBX_EINVALID;
			goto out;
		}
		aud.actor = (char *)req->u.audit_list.actor;
		aud.action = (char *)req->u.audit_list.action;
		aud.since_ms = req->u.audit_list.since_ms;
		aud.until_ms = req->u.audit_list.until_ms;
		aud.after = req->u.audit_list.after;
		aud.limit = req->u.audit_list.limit;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_AUDIT_LIST;
		m.audit_list = &aud;
		break;
	case FBX_CREQ_AUDIT_VERIFY:
		if (!fbxp_cstr_ok(req->u.audit_verify.after_hash,
		        sizeof(req->u.audit_verify.after_hash))) {
			rv = FBX_EINVALID;
			goto out;
		}
		audv.incremental = req->u.audit_verify.incremental != 0;
		audv.after_seq = req->u.audit_verify.after_seq;
		audv.after_hash = (char *)req->u.audit_verify.after_hash;
		audv.max_records = req->u.audit_verify.max_records;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_AUDIT_VERIFY;
		m.audit_verify = &audv;
		break;
	case FBX_CREQ_LIST_ORGS:
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_ORGS;
		m.list_orgs = &lorgs;
		break;
	case FBX_CREQ_CERT:
		if (req->u.cert.nreasons > FBX_CERT_REASONS_MAX ||
		    req->u.cert.pem_len > FBX_CERT_PEM_MAX) {
			rv = FBX_ETOOBIG;
			goto out;
		}
		if (!fbxp_cstr_ok(req->u.cert.name, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(req->u.cert.note, FBX_NOTE_MAX) ||
		    (req->u.cert.pem_len > 0 && req->u.cert.pem == NULL)) {
			rv = FBX_EINVALID;
			goto out;
		}
		for (i = 0; i < req->u.cert.nreasons; i++) {
			if (!fbxp_cstr_ok(
			        req->u.cert.reasons[i], sizeof(fbx_id))) {
				rv = FBX_EINVALID;
				goto out;
			}
			cert_reasons[i] = (char *)req->u.cert.reasons[i];
		}
		certq.op = (Fusebox__V1__CertOp)req->u.cert.op;
		certq.name = (char *)req->u.cert.name;
		certq.pem.data = req->u.cert.pem;
		certq.pem.len = req->u.cert.pem_len;
		certq.reasons = req->u.cert.nreasons > 0 ? cert_reasons : NULL;
		certq.n_reasons = req->u.cert.nreasons;
		certq.trip_before_seconds = req->u.cert.trip_before_s;
		certq.note = (char *)req->u.cert.note;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_CERT;
		m.cert = &certq;
		break;
	case FBX_CREQ_PRINCIPAL:
		if (!fbxp_cstr_ok(req->u.principal.name, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(req->u.principal.note, FBX_NOTE_MAX) ||
		    !fbxp_cstr_ok(req->u.principal.orgs,
		        FBX_PRINCIPAL_ORGS_LEN) ||
		    !fbxp_cstr_ok(req->u.principal.public_key, 41) ||
		    req->u.principal.kind < 0) {
			rv = FBX_EINVALID;
			goto out;
		}
		priq.op = (Fusebox__V1__PrincipalOp)req->u.principal.op;
		priq.name = (char *)req->u.principal.name;
		priq.kind = (uint32_t)req->u.principal.kind;
		priq.roles = req->u.principal.roles;
		priq.orgs = (char *)req->u.principal.orgs;
		priq.public_key = (char *)req->u.principal.public_key;
		priq.note = (char *)req->u.principal.note;
		priq.ttl_seconds = req->u.principal.ttl_s;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_PRINCIPAL;
		m.principal = &priq;
		break;
	case FBX_CREQ_FLEET:
		if (!fbxp_cstr_ok(req->u.fleet.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		fleetq.op = (Fusebox__V1__FleetOp)req->u.fleet.op;
		fleetq.stale_minutes = req->u.fleet.stale_minutes;
		fleetq.repeat_minutes = req->u.fleet.repeat_minutes;
		fleetq.note = (char *)req->u.fleet.note;
		fleetq.command_id = req->u.fleet.command_id;
		fleetq.after = req->u.fleet.after;
		if (!fbxp_cstr_ok(req->u.fleet.group, sizeof(fbx_id)) ||
		    !fbxp_cstr_ok(req->u.fleet.after_dev, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		fleetq.group = (char *)req->u.fleet.group;
		fleetq.after_device = (char *)req->u.fleet.after_dev;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_FLEET;
		m.fleet = &fleetq;
		break;
	default:
		rv = FBX_EINVALID;
		goto out;
	}
	rv = fbxp_pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);

out:
	free(a.p);
	return rv;
}
