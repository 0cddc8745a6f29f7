/*
 * wire.c: the codec between the plain structs of fbx_proto.h and the
 * protobuf-c code generated from fusebox.proto. It is the trust boundary:
 * every decoder bounds the byte length before protobuf-c sees it (protobuf-c
 * has no size limit of its own) and validates every field, so the rest of
 * the engine never checks message shape again. Encoders check lengths and
 * counts only and build the hot arrays (deliveries, results) in one block.
 * It also carries the safety-control vocabulary (breakers, limits, rate
 * caps, approvals, rollouts, dry runs), the incident tools (rollback,
 * replay, export, audit log, organisation list) and the PUB events. The
 * direct codec of the hot messages (RESULTS read, DELIVERIES written
 * without protobuf-c) is in wire_direct.c.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "fusebox.pb-c.h"
#include "wire_int.h"

typedef Fusebox__V1__Error pb_error;
typedef Fusebox__V1__ConsoleRequest pb_creq;
typedef Fusebox__V1__Target pb_target;
typedef Fusebox__V1__SubmitCommand pb_submit;
typedef Fusebox__V1__GetCommand pb_get;
typedef Fusebox__V1__ListCommands pb_list;
typedef Fusebox__V1__EnrollDevices pb_enroll;
typedef Fusebox__V1__RemoveDevices pb_remove;
typedef Fusebox__V1__ListDevices pb_listdev;
typedef Fusebox__V1__ListGroups pb_listgrp;
typedef Fusebox__V1__Ping pb_ping;
typedef Fusebox__V1__Device pb_device;
typedef Fusebox__V1__ConsoleReply pb_crep;
typedef Fusebox__V1__SubmitResult pb_submitres;
typedef Fusebox__V1__StateCount pb_count;
typedef Fusebox__V1__CommandInfo pb_cmdinfo;
typedef Fusebox__V1__HistoryEntry pb_hist;
typedef Fusebox__V1__DeliveryOutcome pb_outcome;
typedef Fusebox__V1__CommandPage pb_cmdpage;
typedef Fusebox__V1__CommandList pb_cmdlist;
typedef Fusebox__V1__EnrollResult pb_enrollres;
typedef Fusebox__V1__RemoveResult pb_removeres;
typedef Fusebox__V1__DeviceList pb_devlist;
typedef Fusebox__V1__GroupCount pb_grpcount;
typedef Fusebox__V1__GroupList pb_grplist;
typedef Fusebox__V1__EngineStats pb_stats;
typedef Fusebox__V1__GatewayMessage pb_gwmsg;
typedef Fusebox__V1__Hello pb_hello;
typedef Fusebox__V1__Credit pb_credit;
typedef Fusebox__V1__Result pb_result;
typedef Fusebox__V1__Results pb_results;
typedef Fusebox__V1__Checkin pb_checkin;
typedef Fusebox__V1__Checkins pb_checkins;
typedef Fusebox__V1__Heartbeat pb_heartbeat;
typedef Fusebox__V1__Bye pb_bye;
typedef Fusebox__V1__EngineMessage pb_engmsg;
typedef Fusebox__V1__Welcome pb_welcome;
typedef Fusebox__V1__Delivery pb_delivery;
typedef Fusebox__V1__Deliveries pb_deliveries;
typedef Fusebox__V1__Ack pb_ack;
typedef Fusebox__V1__RolloutPlan pb_plan;
typedef Fusebox__V1__RolloutStatus pb_rostatus;
typedef Fusebox__V1__BreakerConfig pb_brkcfg;
typedef Fusebox__V1__BreakerRequest pb_brkreq;
typedef Fusebox__V1__BreakerInfo pb_brkinfo;
typedef Fusebox__V1__BreakerReply pb_brkrep;
typedef Fusebox__V1__LimitRequest pb_limreq;
typedef Fusebox__V1__LimitInfo pb_liminfo;
typedef Fusebox__V1__LimitReply pb_limrep;
typedef Fusebox__V1__RateRequest pb_ratereq;
typedef Fusebox__V1__RateInfo pb_rateinfo;
typedef Fusebox__V1__RateReply pb_raterep;
typedef Fusebox__V1__ApproveRequest pb_apprreq;
typedef Fusebox__V1__ApproveReply pb_apprrep;
typedef Fusebox__V1__RolloutRequest pb_roreq;
typedef Fusebox__V1__RolloutReply pb_rorep;
typedef Fusebox__V1__ListHeld pb_listheld;
typedef Fusebox__V1__PlatformCount pb_platcount;
typedef Fusebox__V1__DryRun pb_dryrun;
typedef Fusebox__V1__Event pb_event;
typedef Fusebox__V1__Selector pb_selector;
typedef Fusebox__V1__RollbackRequest pb_rbreq;
typedef Fusebox__V1__ActionCount pb_actcount;
typedef Fusebox__V1__RollbackRow pb_rbrow;
typedef Fusebox__V1__RollbackPlan pb_rbplan;
typedef Fusebox__V1__RollbackOrgPart pb_rbpart;
typedef Fusebox__V1__ReplayRequest pb_rpreq;
typedef Fusebox__V1__ReplayResult pb_rpres;
typedef Fusebox__V1__ExportRequest pb_expreq;
typedef Fusebox__V1__ExportPage pb_exppage;
typedef Fusebox__V1__AuditListRequest pb_audreq;
typedef Fusebox__V1__AuditRecord pb_audrec;
typedef Fusebox__V1__AuditList pb_audlist;
typedef Fusebox__V1__AuditVerify pb_audverify;
typedef Fusebox__V1__AuditVerifyResult pb_audvres;
typedef Fusebox__V1__ListOrgs pb_listorgs;
typedef Fusebox__V1__OrgInfo pb_orginfo;
typedef Fusebox__V1__OrgList pb_orglist;
typedef Fusebox__V1__CertRequest pb_certreq;
typedef Fusebox__V1__CertInfo pb_certinfo;
typedef Fusebox__V1__CertReply pb_certrep;
typedef Fusebox__V1__PrincipalRequest pb_prireq;
typedef Fusebox__V1__PrincipalReply pb_prirep;
typedef Fusebox__V1__FleetRequest pb_fleetreq;
typedef Fusebox__V1__FleetReport pb_fleetrep;
typedef Fusebox__V1__FleetRule pb_fleetrule;
typedef Fusebox__V1__VersionCount pb_vercount;
typedef Fusebox__V1__TypeOutcomes pb_typeout;
typedef Fusebox__V1__RolloutVersion pb_rover;

/* Events are a few identifiers and a short text: 4 KiB is generous. */
#define EVENT_MSG_MAX 4096u
/* "org/reason" of the breaker holding a command. */
#define HELD_BY_MAX (2 * FBX_ID_MAX + 2)

#define NO_IDX ((size_t)-1)

/* Command ids one selector names, and compensating commands one rollback
 * creates: as many as the devices of one explicit target. */
#define CMD_IDS_MAX 100000
/* Organisations in one OrgList. */
#define ORGS_MAX 100000
/* Export page size a console may ask for, and the most an ExportPage
 * carries: 64 KiB of the reply stay for its other fields. */
#define EXPORT_ASK_MAX (8u * 1024 * 1024)
#define JSONL_MAX (FBX_CONSOLE_MSG_MAX - 64u * 1024)
/* Audit record text: action name, parameters (JSON), SHA-256 in hex. */
#define AUDIT_ACTION_MAX 31
#define AUDIT_PARAMS_MAX 511
#define HASH_HEX 64

_Static_assert(sizeof(((struct fbx_audit_rec *)0)->action) ==
        AUDIT_ACTION_MAX + 1 &&
    sizeof(((struct fbx_console_req *)0)->u.audit_list.action) ==
        AUDIT_ACTION_MAX + 1,
    "audit action buffers hold AUDIT_ACTION_MAX bytes");
_Static_assert(sizeof(((struct fbx_audit_rec *)0)->params) ==
        AUDIT_PARAMS_MAX + 1,
    "audit params buffer holds AUDIT_PARAMS_MAX bytes");
_Static_assert(sizeof(((struct fbx_audit_rec *)0)->hash) == HASH_HEX + 1 &&
    sizeof(((struct fbx_audit_rec *)0)->prev) == HASH_HEX + 1,
    "audit hash buffers hold HASH_HEX digits");

/* Where a decoder writes its human reason. */
struct wctx {
	char *why;
	size_t whylen;
};

static int fail(struct wctx *w, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* fail formats the reason (if wanted) and returns err. */
static int
fail(struct wctx *w, int err, const char *fmt, ...)
{
	va_list ap;

	if (w->why != NULL && w->whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(w->why, w->whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* fail_at reports "pfx[idx].field: what" (or "pfx.field: what"). */
static int
fail_at(struct wctx *w, int err, const char *pfx, size_t idx,
    const char *field, const char *what)
{
	if (idx == NO_IDX)
		return fail(w, err, "%s.%s: %s", pfx, field, what);
	return fail(w, err, "%s[%zu].%s: %s", pfx, idx, field, what);
}

/* id_copy checks an identifier and copies it into an fbx_id-sized buffer.
 * An empty identifier is accepted unless need is set. */
static int
id_copy(char *dst, const char *src, int need, const char **what)
{
	size_t n = src == NULL ? 0 : strnlen(src, FBX_ID_MAX + 1);

	if (n > FBX_ID_MAX) {
		*what = "longer than 64 bytes";
		return FBX_ETOOBIG;
	}
	if (n == 0 && need) {
		*what = "missing identifier";
		return FBX_EINVALID;
	}
	if (n > 0 && !fbx_id_valid(src)) {
		*what = "invalid identifier";
		return FBX_EINVALID;
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* text_copy copies free text into a buffer of cap bytes (NUL included). */
static size_t utf8_seq(const unsigned char *s, size_t n);

static int
text_copy(char *dst, size_t cap, const char *src, const char **what)
{
	size_t n = src == NULL ? 0 : strnlen(src, cap);

	if (n >= cap) {
		*what = "text too long";
		return FBX_ETOOBIG;
	}
	/* free text ends up in terminals, logs and web pages: printable
	 * UTF-8 only */
	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_seq((const unsigned char *)src + i, n - i);
		if (k == 0) {
			*what = "not printable UTF-8";
			return FBX_EINVALID;
		}
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* utf8_seq returns the length of the well-formed, printable UTF-8
 * sequence at s (n bytes left), or 0. C0 and C1 controls and DEL are not
 * printable; overlong forms and surrogates are not well formed. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x20 || c == 0x7f)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xc2)
		lo = 0xa0; /* U+0080..U+009F are C1 controls */
	else if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* note_copy checks an operator note (at most FBX_NOTE_MAX - 1 bytes of
 * printable UTF-8: notes end up in logs, terminals and alerts) and copies
 * it. An empty note is accepted unless need is set. */
static int
note_copy(char *dst, const char *src, int need, const char **what)
{
	size_t n = src == NULL ? 0 : strnlen(src, FBX_NOTE_MAX);
	size_t i, k;

	if (n >= FBX_NOTE_MAX) {
		*what = "note longer than 159 bytes";
		return FBX_ETOOBIG;
	}
	if (n == 0 && need) {
		*what = "missing note";
		return FBX_EINVALID;
	}
	for (i = 0; i < n; i += k) {
		k = utf8_seq((const unsigned char *)src + i, n - i);
		if (k == 0) {
			*what = "control character or invalid UTF-8";
			return FBX_EINVALID;
		}
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* scope_copy is id_copy that also takes "*", the global scope. Only
 * replies and events carry "*": requests say global with a flag. */
static int
scope_copy(char *dst, const char *src, int need, const char **what)
{
	if (src != NULL && strcmp(src, "*") == 0) {
		strcpy(dst, "*");
		return FBX_OK;
	}
	return id_copy(dst, src, need, what);
}

/* held_copy checks "scope/reason" (reason may be empty: the breaker of
 * commands without one) or the empty string, into HELD_BY_MAX bytes. */
static int
held_copy(char *dst, const char *src, const char **what)
{
	char scope[FBX_ID_MAX + 1], tmp[FBX_ID_MAX + 1];
	size_t n = src == NULL ? 0 : strnlen(src, HELD_BY_MAX);
	const char *slash;
	int rv;

	if (n >= HELD_BY_MAX) {
		*what = "longer than 129 bytes";
		return FBX_ETOOBIG;
	}
	if (n == 0) {
		dst[0] = '\0';
		return FBX_OK;
	}
	slash = memchr(src, '/', n);
	if (slash == NULL || slash == src ||
	    (size_t)(slash - src) > FBX_ID_MAX) {
		*what = "not org/reason";
		return FBX_EINVALID;
	}
	memcpy(scope, src, (size_t)(slash - src));
	scope[slash - src] = '\0';
	rv = scope_copy(tmp, scope, 1, what);
	if (rv != FBX_OK)
		return rv;
	rv = id_copy(tmp, slash + 1, 0, what);
	if (rv != FBX_OK)
		return rv;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* action_copy checks an audit action name (1..AUDIT_ACTION_MAX bytes of
 * printable ASCII: it is a stable word like "breaker.trip", printed in
 * columns) and copies it. An empty name is accepted unless need is set. */
static int
action_copy(char *dst, const char *src, int need, const char **what)
{
	size_t n = src == NULL ? 0 : strnlen(src, AUDIT_ACTION_MAX + 1);
	size_t i;

	if (n > AUDIT_ACTION_MAX) {
		*what = "longer than 31 bytes";
		return FBX_ETOOBIG;
	}
	if (n == 0 && need) {
		*what = "missing action";
		return FBX_EINVALID;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c < 0x20 || c > 0x7e) {
			*what = "not printable ASCII";
			return FBX_EINVALID;
		}
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* hash_copy checks a hex SHA-256 (exactly HASH_HEX lowercase digits: the
 * chain is verified by comparing strings, so there is one spelling) or
 * the empty string, and copies it into HASH_HEX + 1 bytes. */
static int
hash_copy(char *dst, const char *src, const char **what)
{
	size_t n = src == NULL ? 0 : strnlen(src, HASH_HEX + 1);
	size_t i;

	if (n != 0 && n != HASH_HEX) {
		*what = "not 64 hex digits";
		return n > HASH_HEX ? FBX_ETOOBIG : FBX_EINVALID;
	}
	for (i = 0; i < n; i++) {
		char c = src[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			*what = "not lowercase hex";
			return FBX_EINVALID;
		}
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* window_ok: a time window [since, until) with 0 = open end is not
 * reversed when both ends are set. */
static int
window_ok(int64_t since_ms, int64_t until_ms)
{
	return since_ms == 0 || until_ms == 0 || since_ms <= until_ms;
}

static int
in_range(int v, int lo, int count)
{
	return v >= lo && v < count;
}

/* cstr_ok: whether a C buffer of cap bytes holds a terminated string. */
static int
cstr_ok(const char *s, size_t cap)
{
	return strnlen(s, cap) < cap;
}

static int
check_version(struct wctx *w, uint32_t v)
{
	if (v == 0)
		return fail(w, FBX_EVERSION, "version: missing");
	if (v != FBX_PROTOCOL_VERSION)
		return fail(w, FBX_EVERSION, "version: %u, expected %d",
		    (unsigned)v, FBX_PROTOCOL_VERSION);
	return FBX_OK;
}

/* check_len bounds the input before protobuf-c allocates for it. */
static int
check_len(struct wctx *w, const void *buf, size_t len, size_t cap)
{
	if (len > cap)
		return fail(w, FBX_ETOOBIG, "message: %zu bytes, at most %zu",
		    len, cap);
	if (buf == NULL && len > 0)
		return fail(w, FBX_EINVALID, "message: NULL buffer");
	return FBX_OK;
}

static const uint8_t empty_buf[1];

static const uint8_t *
in_bytes(const void *buf)
{
	return buf != NULL ? buf : empty_buf;
}

/* pb_alloc: protobuf-c allocates through us so that an allocation failure
 * inside unpack is reported as FBX_ENOMEM, not as a malformed message
 * (unpack returns NULL for both). One per decode call, on the stack, so
 * decoders stay reentrant; the unpacked message is freed with the default
 * allocator, which is the same malloc heap. */
struct pb_alloc {
	ProtobufCAllocator a;
	int failed;
};

static void *
pb_alloc_fn(void *data, size_t n)
{
	void *p = malloc(n > 0 ? n : 1);

	if (p == NULL)
		((struct pb_alloc *)data)->failed = 1;
	return p;
}

static void
pb_free_fn(void *data, void *p)
{
	(void)data;
	free(p);
}

static ProtobufCAllocator *
pb_alloc_init(struct pb_alloc *pa)
{
	pa->a.alloc = pb_alloc_fn;
	pa->a.free = pb_free_fn;
	pa->a.allocator_data = pa;
	pa->failed = 0;
	return &pa->a;
}

/* ---- bump arena: one allocation for all the messages of an encode ---- */

struct arena {
	unsigned char *p;
	size_t off, cap;
};

static size_t
asz(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

static int
arena_init(struct arena *a, size_t cap)
{
	a->off = 0;
	a->cap = cap;
	a->p = malloc(cap > 0 ? cap : 1);
	return a->p == NULL ? FBX_ENOMEM : FBX_OK;
}

/* arena_take never fails when the caller sized the arena with asz() of
 * the same requests; NULL means that sizing is wrong. */
static void *
arena_take(struct arena *a, size_t n)
{
	void *r;

	n = asz(n);
	if (n > a->cap - a->off)
		return NULL;
	r = a->p + a->off;
	a->off += n;
	return r;
}

/* pack serialises m into a malloc'd buffer of exactly its packed size. */
static int
pack(const ProtobufCMessage *m, size_t cap, uint8_t **buf, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *b;

	if (n > cap)
		return FBX_ETOOBIG;
	b = malloc(n > 0 ? n : 1);
	if (b == NULL)
		return FBX_ENOMEM;
	if (protobuf_c_message_pack(m, b) != n) {
		free(b);
		return FBX_EINVALID;
	}
	*buf = b;
	*len = n;
	return FBX_OK;
}

/* ---- safety-control pieces shared by requests and replies ---- */

static int
plan_empty(const struct fbx_rollout_plan *p)
{
	static const struct fbx_rollout_plan zero;

	return memcmp(p, &zero, sizeof(zero)) == 0;
}

static int
status_empty(const struct fbx_rollout_status *s)
{
	static const struct fbx_rollout_status zero;

	return memcmp(s, &zero, sizeof(zero)) == 0;
}

/* plan_in validates a RolloutPlan; pfx names it in errors. */
static int
plan_in(const pb_plan *p, struct fbx_rollout_plan *o, struct wctx *w,
    const char *pfx)
{
	const char *what;
	size_t g;
	int rv;

	if (p->n_groups > FBX_ROLLOUT_GROUPS_MAX)
		return fail(w, FBX_ETOOBIG, "%s.groups: %zu groups, at most %d",
		    pfx, p->n_groups, FBX_ROLLOUT_GROUPS_MAX);
	if (p->first_share_ppm > FBX_PPM || p->success_ppm > FBX_PPM ||
	    p->failure_ppm > FBX_PPM)
		return fail(w, FBX_EINVALID,
		    "%s: share above 1,000,000 ppm", pfx);
	for (g = 0; g < p->n_groups; g++) {
		rv = id_copy(o->groups[g], p->groups[g], 1, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "%s.groups[%zu]: %s", pfx, g,
			    what);
	}
	o->ngroups = (uint8_t)p->n_groups;
	o->enabled = p->enabled ? 1 : 0;
	o->approve_groups = p->approve_groups ? 1 : 0;
	o->first_count = p->first_count;
	o->first_share_ppm = p->first_share_ppm;
	o->growth_x100 = p->growth_x100;
	o->max_wave = p->max_wave;
	o->bake_s = p->bake_seconds;
	o->success_ppm = p->success_ppm;
	o->failure_ppm = p->failure_ppm;
	o->min_results = p->min_results;
	return FBX_OK;
}

/* plan_out fills o from p; gp holds FBX_ROLLOUT_GROUPS_MAX pointers. */
static int
plan_out(const struct fbx_rollout_plan *p, pb_plan *o, char **gp)
{
	static const pb_plan init = FUSEBOX__V1__ROLLOUT_PLAN__INIT;
	size_t g;

	if (p->ngroups > FBX_ROLLOUT_GROUPS_MAX)
		return FBX_ETOOBIG;
	*o = init;
	for (g = 0; g < p->ngroups; g++) {
		if (!cstr_ok(p->groups[g], sizeof(p->groups[g])))
			return FBX_EINVALID;
		gp[g] = (char *)p->groups[g];
	}
	o->n_groups = p->ngroups;
	o->groups = p->ngroups > 0 ? gp : NULL;
	o->enabled = p->enabled != 0;
	o->approve_groups = p->approve_groups != 0;
	o->first_count = p->first_count;
	o->first_share_ppm = p->first_share_ppm;
	o->growth_x100 = p->growth_x100;
	o->max_wave = p->max_wave;
	o->bake_seconds = p->bake_s;
	o->success_ppm = p->success_ppm;
	o->failure_ppm = p->failure_ppm;
	o->min_results = p->min_results;
	return FBX_OK;
}

static int
status_in(const pb_rostatus *s, struct fbx_rollout_status *o,
    struct wctx *w, const char *pfx)
{
	const char *what;
	int rv;

	if (!in_range((int)s->state, 0, FBX_RO_COUNT))
		return fail(w, FBX_EINVALID, "%s.state: unknown value %d", pfx,
		    (int)s->state);
	if (s->stage > FBX_ROLLOUT_GROUPS_MAX)
		return fail(w, FBX_EINVALID, "%s.stage: %u, at most %d", pfx,
		    (unsigned)s->stage, FBX_ROLLOUT_GROUPS_MAX);
	rv = note_copy(o->note, s->note, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "%s.note: %s", pfx, what);
	o->state = (uint8_t)s->state;
	o->stage = (uint8_t)s->stage;
	o->wave = s->wave;
	o->released = s->released;
	o->wave_start = s->wave_start;
	o->wave_size = s->wave_size;
	o->wave_started_ms = s->wave_started_ms;
	o->bake_until_ms = s->bake_until_ms;
	return FBX_OK;
}

static int
status_out(const struct fbx_rollout_status *s, pb_rostatus *o)
{
	static const pb_rostatus init = FUSEBOX__V1__ROLLOUT_STATUS__INIT;

	if (!cstr_ok(s->note, sizeof(s->note)))
		return FBX_EINVALID;
	*o = init;
	o->state = (Fusebox__V1__RolloutState)s->state;
	o->stage = s->stage;
	o->wave = s->wave;
	o->released = s->released;
	o->wave_start = s->wave_start;
	o->wave_size = s->wave_size;
	o->wave_started_ms = s->wave_started_ms;
	o->bake_until_ms = s->bake_until_ms;
	o->note = (char *)s->note;
	return FBX_OK;
}

static int
brkcfg_in(const pb_brkcfg *c, struct fbx_breaker_cfg *o, struct wctx *w,
    const char *pfx)
{
	if (c->share_ppm > FBX_PPM)
		return fail(w, FBX_EINVALID,
		    "%s.share_ppm: above 1,000,000 ppm", pfx);
	if (c->shadow > 2)
		return fail(w, FBX_EINVALID, "%s.shadow: unknown value %u",
		    pfx, (unsigned)c->shadow);
	if (c->global_share_ppm > FBX_PPM)
		return fail(w, FBX_EINVALID,
		    "%s.global_share_ppm: above 1,000,000 ppm", pfx);
	if (c->settle_seconds > 86400)
		return fail(w, FBX_EINVALID,
		    "%s.settle_seconds: above one day (86,400)", pfx);
	o->window_s = c->window_seconds;
	o->min_count = c->min_count;
	o->share_ppm = c->share_ppm;
	o->baseline_mult = c->baseline_mult;
	o->global_orgs = c->global_orgs;
	o->shadow = (uint8_t)c->shadow;
	o->settle_s = c->settle_seconds;
	o->settle_set = c->settle_set ? 1 : 0;
	o->min_samples = c->min_samples;
	o->global_share_ppm = c->global_share_ppm;
	return FBX_OK;
}

static void
brkcfg_out(const struct fbx_breaker_cfg *c, pb_brkcfg *o)
{
	static const pb_brkcfg init = FUSEBOX__V1__BREAKER_CONFIG__INIT;

	*o = init;
	o->window_seconds = c->window_s;
	o->min_count = c->min_count;
	o->share_ppm = c->share_ppm;
	o->baseline_mult = c->baseline_mult;
	o->global_orgs = c->global_orgs;
	o->shadow = c->shadow;
	o->settle_seconds = c->settle_s;
	o->settle_set = c->settle_set != 0;
	o->min_samples = c->min_samples;
	o->global_share_ppm = c->global_share_ppm;
}

/* ======================= console request: decode ======================= */

static int
submit_in(const pb_submit *s, struct fbx_command *c, struct wctx *w)
{
	const pb_target *t = s->target;
	const char *what;
	size_t i;
	int rv;

	if (!in_range((int)s->type, 1, FBX_CMD_TYPE_COUNT))
		return fail(w, FBX_EINVALID, "submit.type: unknown value %d",
		    (int)s->type);
	if (!in_range((int)s->origin, 1, FBX_ORIGIN_COUNT))
		return fail(w, FBX_EINVALID,
		    "submit.origin: unknown value %d", (int)s->origin);
	rv = id_copy(c->reason, s->reason, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "submit.reason: %s", what);
	rv = id_copy(c->idem_key, s->idempotency_key, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "submit.idempotency_key: %s", what);
	if (s->payload.len > FBX_PAYLOAD_MAX)
		return fail(w, FBX_ETOOBIG,
		    "submit.payload: %zu bytes, at most %d", s->payload.len,
		    FBX_PAYLOAD_MAX);
	if (t == NULL)
		return fail(w, FBX_EINVALID, "submit.target: missing");
	if (!in_range((int)t->kind, 1, FBX_TARGET_KIND_COUNT))
		return fail(w, FBX_EINVALID,
		    "submit.target.kind: unknown value %d", (int)t->kind);
	if (!in_range((int)t->platform, 0, FBX_PLATFORM_COUNT))
		return fail(w, FBX_EINVALID,
		    "submit.target.platform: unknown value %d",
		    (int)t->platform);
	if (t->n_device_ids > FBX_TARGET_IDS_MAX)
		return fail(w, FBX_ETOOBIG,
		    "submit.target.device_ids: %zu ids, at most %d",
		    t->n_device_ids, FBX_TARGET_IDS_MAX);
	if ((int)t->kind != FBX_TARGET_DEVICES && t->n_device_ids > 0)
		return fail(w, FBX_EINVALID,
		    "submit.target.device_ids: only for TARGET_DEVICES");
	rv = id_copy(c->group, t->group,
	    (int)t->kind == FBX_TARGET_GROUP, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "submit.target.group: %s", what);
	if ((int)t->kind != FBX_TARGET_GROUP && c->group[0] != '\0')
		return fail(w, FBX_EINVALID,
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
			rv = id_copy(c->dev_ids[i], t->device_ids[i], 1,
			    &what);
			if (rv != FBX_OK)
				return fail(w, rv,
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
static int
device_in(const pb_device *d, struct fbx_device *o, int need_org,
    struct wctx *w, const char *pfx, size_t idx)
{
	const char *what;
	size_t g;
	int rv;

	if (need_org) {
		rv = id_copy(o->org, d->org, 1, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, idx, "org", what);
	}
	rv = id_copy(o->id, d->id, 1, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "id", what);
	if (!in_range((int)d->platform, 0, FBX_PLATFORM_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "platform",
		    "unknown value");
	if (!in_range((int)d->attestation, 0, FBX_ATTEST_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "attestation",
		    "unknown value");
	rv = text_copy(o->os_version, sizeof(o->os_version), d->os_version,
	    &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "os_version",
		    rv == FBX_ETOOBIG ? "longer than 32 bytes" : what);
	if (d->n_groups > FBX_GROUPS_MAX)
		return fail_at(w, FBX_ETOOBIG, pfx, idx, "groups",
		    "more than 8 groups");
	for (g = 0; g < d->n_groups; g++) {
		rv = id_copy(o->groups[g], d->groups[g], 1, &what);
		if (rv != FBX_OK) {
			if (idx == NO_IDX)
				return fail(w, rv, "%s.groups[%zu]: %s", pfx,
				    g, what);
			return fail(w, rv, "%s[%zu].groups[%zu]: %s", pfx,
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

	if (!in_range(op, FBX_BRK_STATUS, FBX_BRK_CONFIGURE + 1))
		return fail(w, FBX_EINVALID,
		    "breaker.op: missing or unknown value %d", op);
	rv = id_copy(r->u.breaker.reason, b->reason,
	    op == FBX_BRK_TRIP || op == FBX_BRK_RESET, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "breaker.reason: %s", what);
	rv = note_copy(r->u.breaker.note, b->note,
	    op == FBX_BRK_TRIP || op == FBX_BRK_RESET, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "breaker.note: %s", what);
	if (op == FBX_BRK_RESET && (int)b->on_reset != FBX_RESET_RELEASE &&
	    (int)b->on_reset != FBX_RESET_DISCARD)
		return fail(w, FBX_EINVALID,
		    "breaker.on_reset: RESET_RELEASE or RESET_DISCARD "
		    "required, got %d",
		    (int)b->on_reset);
	if (op != FBX_BRK_RESET && (int)b->on_reset != FBX_RESET_NONE)
		return fail(w, FBX_EINVALID,
		    "breaker.on_reset: only for BRK_RESET");
	if (b->config != NULL) {
		if (op != FBX_BRK_CONFIGURE)
			return fail(w, FBX_EINVALID,
			    "breaker.config: only for BRK_CONFIGURE");
		rv = brkcfg_in(b->config, &r->u.breaker.cfg, w,
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

	if (!in_range(op, FBX_CERT_ADD, FBX_CERT_REMOVE + 1))
		return fail(w, FBX_EINVALID,
		    "cert.op: missing or unknown value %d", op);
	add = op == FBX_CERT_ADD;
	rv = id_copy(r->u.cert.name, q->name, op != FBX_CERT_LIST, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "cert.name: %s", what);
	if (op == FBX_CERT_LIST && r->u.cert.name[0] != '\0')
		return fail(w, FBX_EINVALID,
		    "cert.name: only for CERT_ADD and CERT_REMOVE");
	rv = note_copy(r->u.cert.note, q->note, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "cert.note: %s", what);
	if (!add && (q->pem.len > 0 || q->n_reasons > 0 ||
	                q->trip_before_seconds != 0))
		return fail(w, FBX_EINVALID,
		    "cert.pem, cert.reasons, cert.trip_before_seconds: only "
		    "for CERT_ADD");
	r->u.cert.op = op;
	if (!add)
		return FBX_OK;
	if (q->trip_before_seconds > FBX_CERT_TRIP_BEFORE_MAX)
		return fail(w, FBX_EINVALID,
		    "cert.trip_before_seconds: %u, at most %d (7 days)",
		    (unsigned)q->trip_before_seconds, FBX_CERT_TRIP_BEFORE_MAX);
	r->u.cert.trip_before_s = q->trip_before_seconds;
	if (q->n_reasons == 0)
		return fail(w, FBX_EINVALID,
		    "cert.reasons: missing: bind at least one automatic "
		    "reason");
	if (q->n_reasons > FBX_CERT_REASONS_MAX)
		return fail(w, FBX_ETOOBIG, "cert.reasons: %zu, at most %d",
		    q->n_reasons, FBX_CERT_REASONS_MAX);
	for (i = 0; i < q->n_reasons; i++) {
		rv = id_copy(r->u.cert.reasons[i], q->reasons[i], 1, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, "cert", NO_IDX, "reasons", what);
		for (j = 0; j < i; j++)
			if (strcmp(r->u.cert.reasons[j],
			        r->u.cert.reasons[i]) == 0)
				return fail(w, FBX_EINVALID,
				    "cert.reasons: '%s' given twice",
				    r->u.cert.reasons[i]);
	}
	r->u.cert.nreasons = q->n_reasons;
	if (q->pem.len == 0)
		return fail(w, FBX_EINVALID, "cert.pem: missing");
	if (q->pem.len > FBX_CERT_PEM_MAX)
		return fail(w, FBX_ETOOBIG, "cert.pem: %zu bytes, at most %d",
		    q->pem.len, FBX_CERT_PEM_MAX);
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

	if (!in_range(op, FBX_FLEET_REPORT, FBX_FLEET_VERSION + 1))
		return fail(w, FBX_EINVALID,
		    "fleet.op: unknown value %d", op);
	if (op == FBX_FLEET_VERSION) {
		if (q->command_id == 0 || q->stale_minutes != 0 ||
		    q->repeat_minutes != 0 ||
		    (q->group != NULL && q->group[0] != '\0') ||
		    (q->after_device != NULL && q->after_device[0] != '\0'))
			return fail(w, FBX_EINVALID,
			    "fleet: FLEET_VERSION takes command_id (and after) "
			    "only");
		r->u.fleet.op = op;
		r->u.fleet.command_id = q->command_id;
		r->u.fleet.after = q->after;
		return FBX_OK;
	}
	if (q->command_id != 0 || q->after != 0)
		return fail(w, FBX_EINVALID,
		    "fleet.command_id, after: only for FLEET_VERSION");
	rv = id_copy(r->u.fleet.group, q->group, 0, &what);
	if (rv == FBX_OK)
		rv = id_copy(r->u.fleet.after_dev, q->after_device, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "fleet.group, after_device: %s", what);
	if ((rule || r->u.fleet.group[0] == '\0') &&
	    r->u.fleet.after_dev[0] != '\0')
		return fail(w, FBX_EINVALID,
		    "fleet.after_device: only with a group's FLEET_REPORT");
	if (rule && r->u.fleet.group[0] != '\0')
		return fail(w, FBX_EINVALID,
		    "fleet.group: only for FLEET_REPORT");
	if (!rule && (q->stale_minutes != 0 || q->repeat_minutes != 0))
		return fail(w, FBX_EINVALID,
		    "fleet.stale_minutes, repeat_minutes: only for "
		    "FLEET_RULE_SET and FLEET_RULE_DEL");
	if (rule && (q->stale_minutes == 0 ||
	                q->stale_minutes > FBX_FLEET_STALE_MAX))
		return fail(w, FBX_EINVALID,
		    "fleet.stale_minutes: %u, expected 1..%u",
		    (unsigned)q->stale_minutes, (unsigned)FBX_FLEET_STALE_MAX);
	if (op == FBX_FLEET_RULE_DEL && q->repeat_minutes != 0)
		return fail(w, FBX_EINVALID,
		    "fleet.repeat_minutes: only for FLEET_RULE_SET");
	if (q->repeat_minutes > FBX_FLEET_REPEAT_MAX)
		return fail(w, FBX_EINVALID,
		    "fleet.repeat_minutes: %u, at most %u",
		    (unsigned)q->repeat_minutes,
		    (unsigned)FBX_FLEET_REPEAT_MAX);
	r->u.fleet.op = op;
	r->u.fleet.stale_minutes = q->stale_minutes;
	r->u.fleet.repeat_minutes = q->repeat_minutes;
	rv = note_copy(r->u.fleet.note, q->note, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "fleet.note: %s", what);
	return FBX_OK;
}

static int
principal_req_in(const pb_prireq *q, struct fbx_console_req *r, struct wctx *w)
{
	const char *what = "";
	int op = (int)q->op, add, self, rv;
	const char *orgs = q->orgs != NULL ? q->orgs : "";
	const char *key = q->public_key != NULL ? q->public_key : "";

	if (!in_range(op, FBX_PRI_LIST, FBX_PRI_WEB_LOGIN + 1))
		return fail(w, FBX_EINVALID,
		    "principal.op: missing or unknown value %d", op);
	add = op == FBX_PRI_ADD;
	self = op == FBX_PRI_LIST || op == FBX_PRI_WEB_LOGIN;
	rv = id_copy(r->u.principal.name, q->name, !self, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "principal.name: %s", what);
	if (self && r->u.principal.name[0] != '\0')
		return fail(w, FBX_EINVALID,
		    "principal.name: not with PRINCIPAL_LIST or WEB_LOGIN");
	if (op != FBX_PRI_WEB_LOGIN && q->ttl_seconds != 0)
		return fail(w, FBX_EINVALID,
		    "principal.ttl_seconds: only for PRINCIPAL_WEB_LOGIN");
	if (q->ttl_seconds > 86400)
		return fail(w, FBX_EINVALID,
		    "principal.ttl_seconds: at most 86400");
	r->u.principal.ttl_s = q->ttl_seconds;
	rv = note_copy(r->u.principal.note, q->note, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "principal.note: %s", what);
	if (!add && (q->kind != 0 || q->roles != 0 || orgs[0] != '\0'))
		return fail(w, FBX_EINVALID,
		    "principal.kind, roles, orgs: only for PRINCIPAL_ADD");
	if ((add || op == FBX_PRI_ROTATE) != (key[0] != '\0'))
		return fail(w, FBX_EINVALID, "principal.public_key: %s",
		    key[0] != '\0' ? "only for PRINCIPAL_ADD and ROTATE" :
				     "missing");
	if (key[0] != '\0' && !z85_key_ok(key))
		return fail(w, FBX_EINVALID,
		    "principal.public_key: not 40 characters of Z85");
	r->u.principal.op = op;
	memcpy(r->u.principal.public_key, key, strlen(key) + 1);
	if (!add)
		return FBX_OK;
	if (!in_range((int)q->kind, FBX_PK_OPERATOR, FBX_PK_GATEWAY + 1))
		return fail(w, FBX_EINVALID,
		    "principal.kind: missing or unknown value %u",
		    (unsigned)q->kind);
	if ((q->roles & ~FBX_ROLES_ALL) != 0)
		return fail(w, FBX_EINVALID,
		    "principal.roles: unknown bits 0x%x", (unsigned)q->roles);
	if (q->kind == FBX_PK_GATEWAY && q->roles != 0)
		return fail(w, FBX_EINVALID,
		    "principal.roles: a gateway has none");
	if (orgs[0] == '\0')
		return fail(w, FBX_EINVALID, "principal.orgs: missing");
	if (strlen(orgs) >= FBX_PRINCIPAL_ORGS_LEN)
		return fail(w, FBX_ETOOBIG, "principal.orgs: too long");
	rv = principal_orgs_ok(orgs, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "principal.orgs: %s", what);
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
		return fail(w, FBX_EINVALID, "%s: missing", pfx);
	n = s->n_command_ids;
	if (n > CMD_IDS_MAX)
		return fail(w, FBX_ETOOBIG,
		    "%s.command_ids: %zu ids, at most %d", pfx, n,
		    CMD_IDS_MAX);
	for (i = 0; i < n; i++)
		if (s->command_ids[i] == 0)
			return fail(w, FBX_EINVALID,
			    "%s.command_ids[%zu]: zero", pfx, i);
	rv = id_copy(o->breaker, s->breaker_reason, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "%s.breaker_reason: %s", pfx, what);
	if (s->breaker_global && o->breaker[0] == '\0')
		return fail(w, FBX_EINVALID,
		    "%s.breaker_global: needs breaker_reason", pfx);
	if (n > 0 && o->breaker[0] != '\0')
		return fail(w, FBX_EINVALID,
		    "%s.breaker_reason: not with command_ids", pfx);
	if (s->include_before_onset && o->breaker[0] == '\0')
		return fail(w, FBX_EINVALID,
		    "%s.include_before_onset: needs breaker_reason", pfx);
	if (s->every_org && o->breaker[0] == '\0')
		return fail(w, FBX_EINVALID,
		    "%s.every_org: needs breaker_reason", pfx);
	if (!in_range((int)s->origin, 0, FBX_ORIGIN_COUNT))
		return fail(w, FBX_EINVALID, "%s.origin: unknown value %d",
		    pfx, (int)s->origin);
	if (!in_range((int)s->type, 0, FBX_CMD_TYPE_COUNT))
		return fail(w, FBX_EINVALID, "%s.type: unknown value %d", pfx,
		    (int)s->type);
	rv = id_copy(o->reason, s->reason, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "%s.reason: %s", pfx, what);
	rv = id_copy(o->group, s->group, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "%s.group: %s", pfx, what);
	if (!window_ok(s->since_ms, s->until_ms))
		return fail(w, FBX_EINVALID, "%s.until_ms: before since_ms",
		    pfx);
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
		rv = id_copy(r->approval, pb->submit->approval, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "submit.approval: %s", what);
		r->dry_run = pb->submit->dry_run ? 1 : 0;
		if (pb->submit->rollout != NULL) {
			rv = plan_in(pb->submit->rollout,
			    &r->u.submit.cmd.rollout, w, "submit.rollout");
			if (rv != FBX_OK)
				return rv;
		}
		return submit_in(pb->submit, &r->u.submit.cmd, w);
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_GET_COMMAND: {
		const pb_get *g = pb->get_command;
		if (g->command_id == 0)
			return fail(w, FBX_EINVALID,
			    "get_command.command_id: missing");
		if (g->limit > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "get_command.limit: %u, at most %d",
			    (unsigned)g->limit, FBX_PAGE_MAX);
		if (!in_range((int)g->state, 0, FBX_D_COUNT))
			return fail(w, FBX_EINVALID,
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
			return fail(w, FBX_EINVALID,
			    "list_commands.until_ms: before since_ms");
		if (l->limit > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
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
			return fail(w, FBX_ETOOBIG,
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
			rv = device_in(pb->enroll->devices[i], d, 0, w,
			    "enroll.devices", i);
			if (rv != FBX_OK)
				return rv;
			memcpy(d->org, r->org, sizeof(d->org));
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_REMOVE:
		n = pb->remove->n_device_ids;
		if (n > FBX_ENROLL_MAX)
			return fail(w, FBX_ETOOBIG,
			    "remove.device_ids: %zu ids, at most %d", n,
			    FBX_ENROLL_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.remove.ids = malloc(n * sizeof(*r->u.remove.ids));
		if (r->u.remove.ids == NULL)
			return FBX_ENOMEM;
		r->u.remove.n = n;
		for (i = 0; i < n; i++) {
			rv = id_copy(r->u.remove.ids[i],
			    pb->remove->device_ids[i], 1, &what);
			if (rv != FBX_OK)
				return fail(w, rv,
				    "remove.device_ids[%zu]: %s", i, what);
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_DEVICES: {
		const pb_listdev *l = pb->list_devices;
		rv = id_copy(r->u.list_devices.group, l->group, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "list_devices.group: %s", what);
		rv = id_copy(r->u.list_devices.after, l->after, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "list_devices.after: %s", what);
		if (l->limit > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "list_devices.limit: %u, at most %d",
			    (unsigned)l->limit, FBX_PAGE_MAX);
		r->u.list_devices.limit = l->limit;
		if (l->stale_minutes > FBX_FLEET_STALE_MAX)
			return fail(w, FBX_EINVALID,
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
		if (!in_range((int)l->type, l->set ? 1 : 0,
		        FBX_CMD_TYPE_COUNT))
			return fail(w, FBX_EINVALID,
			    "limit.type: %s value %d",
			    l->set ? "missing or unknown" : "unknown",
			    (int)l->type);
		if (l->max_share_ppm > FBX_PPM)
			return fail(w, FBX_EINVALID,
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
		rv = id_copy(r->u.approve.token, pb->approve->token, 1, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "approve.token: %s", what);
		rv = note_copy(r->u.approve.note, pb->approve->note, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "approve.note: %s", what);
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_ROLLOUT: {
		const pb_roreq *q = pb->rollout;
		if (!in_range((int)q->op, FBX_ROP_STATUS, FBX_ROP_APPROVE + 1))
			return fail(w, FBX_EINVALID,
			    "rollout.op: missing or unknown value %d",
			    (int)q->op);
		if (q->command_id == 0)
			return fail(w, FBX_EINVALID,
			    "rollout.command_id: missing");
		rv = note_copy(r->u.rollout.note, q->note, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "rollout.note: %s", what);
		r->u.rollout.op = (int)q->op;
		r->u.rollout.command_id = q->command_id;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_HELD: {
		const pb_listheld *l = pb->list_held;
		rv = id_copy(r->u.list_held.reason, l->reason, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "list_held.reason: %s", what);
		if (l->limit > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "list_held.limit: %u, at most %d",
			    (unsigned)l->limit, FBX_PAGE_MAX);
		r->u.list_held.after = l->after;
		r->u.list_held.limit = l->limit;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REQUEST__BODY_ROLLBACK: {
		const pb_rbreq *q = pb->rollback;
		if (q->limit > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "rollback.limit: %u, at most %d",
			    (unsigned)q->limit, FBX_PAGE_MAX);
		rv = note_copy(r->u.rollback.note, q->note, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "rollback.note: %s", what);
		if (q->cursor != 0 && q->last_command_id == 0)
			return fail(w, FBX_EINVALID,
			    "rollback.last_command_id: required with a cursor");
		if (q->cursor == 0 && q->last_command_id != 0)
			return fail(w, FBX_EINVALID,
			    "rollback.last_command_id: only with a cursor");
		/* a rollback id without a cursor: go on with that run
		 * from the cursor the engine journaled */
		if (q->rollback_id != 0 && !q->execute)
			return fail(w, FBX_EINVALID,
			    "rollback.rollback_id: only with execute");
		rv = id_copy(r->u.rollback.org_cursor, q->org_cursor, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "rollback.org_cursor: %s", what);
		if (r->u.rollback.org_cursor[0] != '\0' && q->cursor == 0)
			return fail(w, FBX_EINVALID,
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
		if (!in_range((int)q->state, 0, FBX_D_COUNT))
			return fail(w, FBX_EINVALID,
			    "replay.state: unknown value %d", (int)q->state);
		rv = note_copy(r->u.replay.note, q->note, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "replay.note: %s", what);
		if (q->cursor != 0 && q->last_command_id == 0)
			return fail(w, FBX_EINVALID,
			    "replay.last_command_id: required with a cursor");
		if (q->cursor == 0 && q->last_command_id != 0)
			return fail(w, FBX_EINVALID,
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
			return fail(w, FBX_EINVALID,
			    "export.until_ms: before since_ms");
		if (q->max_bytes > EXPORT_ASK_MAX)
			return fail(w, FBX_ETOOBIG,
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
		rv = id_copy(r->u.audit_list.actor, q->actor, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "audit_list.actor: %s", what);
		rv = action_copy(r->u.audit_list.action, q->action, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "audit_list.action: %s", what);
		if (!window_ok(q->since_ms, q->until_ms))
			return fail(w, FBX_EINVALID,
			    "audit_list.until_ms: before since_ms");
		if (q->limit > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
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
		rv = hash_copy(r->u.audit_verify.after_hash, q->after_hash,
		    &what);
		if (rv != FBX_OK)
			return fail(w, rv, "audit_verify.after_hash: %s", what);
		if ((q->after_seq != 0) != (r->u.audit_verify.after_hash[0] != 0))
			return fail(w, FBX_EINVALID,
			    "audit_verify.after_hash: %s",
			    q->after_seq ? "required with after_seq" :
					   "only with after_seq");
		if (q->incremental && q->after_seq != 0)
			return fail(w, FBX_EINVALID,
			    "audit_verify.after_seq: not with incremental");
		if (q->max_records > FBX_VERIFY_SLICE_MAX)
			return fail(w, FBX_ETOOBIG,
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
	return fail(w, FBX_EINVALID, "body: missing or unknown request");
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
		return fail(&w, FBX_EINVALID, "out: NULL");
	/* decoded in place: the struct is 3.6 KiB, a copy of it cost a
	 * tenth of the decode */
	memset(r, 0, sizeof(*r));
	rv = check_len(&w, buf, len, FBX_CONSOLE_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__console_request__unpack(pb_alloc_init(&pa), len,
	    in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM :
		    fail(&w, FBX_EMALFORMED, "message: not a ConsoleRequest");
		goto out;
	}
	r->request_id = pb->request_id;
	rv = check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	r->version = pb->version;
	rv = id_copy(r->org, pb->org, 1, &what);
	if (rv != FBX_OK) {
		rv = fail(&w, rv, "org: %s", what);
		goto out;
	}
	rv = id_copy(r->actor, pb->actor, 1, &what);
	if (rv != FBX_OK) {
		rv = fail(&w, rv, "actor: %s", what);
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
			fail(&w, rv, "out of memory");
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

	if (!cstr_ok(d->org, sizeof(d->org)) ||
	    !cstr_ok(d->id, sizeof(d->id)) ||
	    !cstr_ok(d->os_version, sizeof(d->os_version)))
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
		if (!cstr_ok(d->groups[g], sizeof(d->groups[g])))
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

static int
devices_size(const struct fbx_device *d, size_t n, size_t *sz)
{
	size_t i;

	/* devices_out takes each device's group pointers separately. */
	*sz = asz(n * sizeof(pb_device)) + asz(n * sizeof(pb_device *));
	for (i = 0; i < n; i++) {
		if (d[i].ngroups > FBX_GROUPS_MAX)
			return FBX_ETOOBIG;
		*sz += asz(d[i].ngroups * sizeof(char *));
	}
	return FBX_OK;
}

/* devices_out builds n Device messages from the arena. */
static int
devices_out(struct arena *a, const struct fbx_device *d, size_t n,
    pb_device ***outp)
{
	pb_device *v = arena_take(a, n * sizeof(*v));
	pb_device **p = arena_take(a, n * sizeof(*p));
	size_t i;
	int rv;

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		char **gp = arena_take(a, d[i].ngroups * sizeof(char *));
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

	if (!cstr_ok(c->reason, sizeof(c->reason)) ||
	    !cstr_ok(c->idem_key, sizeof(c->idem_key)) ||
	    !cstr_ok(c->group, sizeof(c->group)))
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
		t->device_ids = arena_take(a, c->ndev_ids * sizeof(char *));
		if (t->device_ids == NULL)
			return FBX_ENOMEM;
		for (i = 0; i < c->ndev_ids; i++) {
			if (!cstr_ok(c->dev_ids[i], sizeof(c->dev_ids[i])))
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
	    !cstr_ok(s->breaker, sizeof(s->breaker)) ||
	    !cstr_ok(s->reason, sizeof(s->reason)) ||
	    !cstr_ok(s->group, sizeof(s->group)))
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
	if (!cstr_ok(req->org, sizeof(req->org)) ||
	    !cstr_ok(req->actor, sizeof(req->actor)))
		return FBX_EINVALID;
	m.version = req->version != 0 ? req->version : FBX_PROTOCOL_VERSION;
	m.request_id = req->request_id;
	m.org = (char *)req->org;
	m.actor = (char *)req->actor;

	switch (req->kind) {
	case FBX_CREQ_SUBMIT:
		sz = asz(req->u.submit.cmd.ndev_ids * sizeof(char *));
		break;
	case FBX_CREQ_ENROLL:
		if (req->u.enroll.n > FBX_ENROLL_MAX)
			return FBX_ETOOBIG;
		if (req->u.enroll.n > 0 && req->u.enroll.devs == NULL)
			return FBX_EINVALID;
		rv = devices_size(req->u.enroll.devs, req->u.enroll.n, &sz);
		if (rv != FBX_OK)
			return rv;
		break;
	case FBX_CREQ_REMOVE:
		if (req->u.remove.n > FBX_ENROLL_MAX)
			return FBX_ETOOBIG;
		if (req->u.remove.n > 0 && req->u.remove.ids == NULL)
			return FBX_EINVALID;
		sz = asz(req->u.remove.n * sizeof(char *));
		break;
	default:
		break;
	}
	rv = arena_init(&a, sz);
	if (rv != FBX_OK)
		return rv;

	switch (req->kind) {
	case FBX_CREQ_SUBMIT:
		rv = submit_out(&a, &req->u.submit.cmd, &submit, &target);
		if (rv != FBX_OK)
			goto out;
		if (!cstr_ok(req->approval, sizeof(req->approval))) {
			rv = FBX_EINVALID;
			goto out;
		}
		submit.dry_run = req->dry_run != 0;
		submit.approval = (char *)req->approval;
		if (!plan_empty(&req->u.submit.cmd.rollout)) {
			rv = plan_out(&req->u.submit.cmd.rollout, &plan,
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
		rv = devices_out(&a, req->u.enroll.devs, req->u.enroll.n,
		    &enroll.devices);
		if (rv != FBX_OK)
			goto out;
		enroll.n_devices = req->u.enroll.n;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_ENROLL;
		m.enroll = &enroll;
		break;
	case FBX_CREQ_REMOVE:
		remove.device_ids = arena_take(&a, req->u.remove.n *
		    sizeof(char *));
		if (remove.device_ids == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < req->u.remove.n; i++) {
			const char *id = req->u.remove.ids[i];
			if (!cstr_ok(id, sizeof(fbx_id))) {
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
		if (!cstr_ok(req->u.list_devices.group, sizeof(fbx_id)) ||
		    !cstr_ok(req->u.list_devices.after, sizeof(fbx_id))) {
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
		if (!cstr_ok(req->u.breaker.reason, sizeof(fbx_id)) ||
		    !cstr_ok(req->u.breaker.note, FBX_NOTE_MAX)) {
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
			brkcfg_out(&req->u.breaker.cfg, &brkcfg);
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
		if (!cstr_ok(req->u.approve.token, sizeof(fbx_id)) ||
		    !cstr_ok(req->u.approve.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		appr.token = (char *)req->u.approve.token;
		appr.note = (char *)req->u.approve.note;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_APPROVE;
		m.approve = &appr;
		break;
	case FBX_CREQ_ROLLOUT:
		if (!cstr_ok(req->u.rollout.note, FBX_NOTE_MAX)) {
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
		if (!cstr_ok(req->u.list_held.reason, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		held.reason = (char *)req->u.list_held.reason;
		held.after = req->u.list_held.after;
		held.limit = req->u.list_held.limit;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_LIST_HELD;
		m.list_held = &held;
		break;
	case FBX_CREQ_ROLLBACK:
		if (!cstr_ok(req->u.rollback.note, FBX_NOTE_MAX)) {
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
		if (!cstr_ok(req->u.rollback.org_cursor, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		rb.org_cursor = (char *)req->u.rollback.org_cursor;
		m.body_case = FUSEBOX__V1__CONSOLE_REQUEST__BODY_ROLLBACK;
		m.rollback = &rb;
		break;
	case FBX_CREQ_REPLAY:
		if (!cstr_ok(req->u.replay.note, FBX_NOTE_MAX)) {
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
		if (!cstr_ok(req->u.audit_list.actor, sizeof(fbx_id)) ||
		    !cstr_ok(req->u.audit_list.action,
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
		if (!cstr_ok(req->u.audit_verify.after_hash,
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
		if (!cstr_ok(req->u.cert.name, sizeof(fbx_id)) ||
		    !cstr_ok(req->u.cert.note, FBX_NOTE_MAX) ||
		    (req->u.cert.pem_len > 0 && req->u.cert.pem == NULL)) {
			rv = FBX_EINVALID;
			goto out;
		}
		for (i = 0; i < req->u.cert.nreasons; i++) {
			if (!cstr_ok(req->u.cert.reasons[i], sizeof(fbx_id))) {
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
		if (!cstr_ok(req->u.principal.name, sizeof(fbx_id)) ||
		    !cstr_ok(req->u.principal.note, FBX_NOTE_MAX) ||
		    !cstr_ok(req->u.principal.orgs, FBX_PRINCIPAL_ORGS_LEN) ||
		    !cstr_ok(req->u.principal.public_key, 41) ||
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
		if (!cstr_ok(req->u.fleet.note, FBX_NOTE_MAX)) {
			rv = FBX_EINVALID;
			goto out;
		}
		fleetq.op = (Fusebox__V1__FleetOp)req->u.fleet.op;
		fleetq.stale_minutes = req->u.fleet.stale_minutes;
		fleetq.repeat_minutes = req->u.fleet.repeat_minutes;
		fleetq.note = (char *)req->u.fleet.note;
		fleetq.command_id = req->u.fleet.command_id;
		fleetq.after = req->u.fleet.after;
		if (!cstr_ok(req->u.fleet.group, sizeof(fbx_id)) ||
		    !cstr_ok(req->u.fleet.after_dev, sizeof(fbx_id))) {
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
	rv = pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);

out:
	free(a.p);
	return rv;
}

/* ======================= console reply: decode ========================= */

/* cmdinfo_safety_in decodes the safety-control fields of a CommandInfo. */
static int
cmdinfo_safety_in(const pb_cmdinfo *ci, struct fbx_command *c,
    struct wctx *w, const char *pfx, size_t idx)
{
	char sub[96];
	const char *what;
	int rv;

	if (!in_range((int)ci->priority, 0, FBX_PRIO_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "priority",
		    "unknown value");
	rv = held_copy(c->held_by, ci->held_by, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "held_by", what);
	rv = id_copy(c->approved_by, ci->approved_by, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "approved_by", what);
	rv = id_copy(c->resolved_by, ci->resolved_by, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "resolved_by", what);
	rv = note_copy(c->note, ci->note, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "note", what);
	c->priority = (uint8_t)ci->priority;
	if (idx == NO_IDX)
		snprintf(sub, sizeof(sub), "%s", pfx);
	else
		snprintf(sub, sizeof(sub), "%s[%zu]", pfx, idx);
	if (ci->rollout != NULL) {
		char p[sizeof(sub) + 16];
		snprintf(p, sizeof(p), "%s.rollout", sub);
		rv = plan_in(ci->rollout, &c->rollout, w, p);
		if (rv != FBX_OK)
			return rv;
	}
	if (ci->rollout_status != NULL) {
		char p[sizeof(sub) + 16];
		snprintf(p, sizeof(p), "%s.rollout_status", sub);
		rv = status_in(ci->rollout_status, &c->ro, w, p);
		if (rv != FBX_OK)
			return rv;
	}
	c->settle_until_ms = ci->settle_until_ms;
	return FBX_OK;
}

static int
cmdinfo_in(const pb_cmdinfo *ci, struct fbx_command *c, struct wctx *w,
    const char *pfx, size_t idx)
{
	const char *what;
	size_t i;
	int rv;

	c->id = ci->id;
	rv = id_copy(c->org, ci->org, 1, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "org", what);
	rv = id_copy(c->actor, ci->actor, 1, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "actor", what);
	rv = id_copy(c->reason, ci->reason, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "reason", what);
	rv = id_copy(c->idem_key, ci->idempotency_key, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "idempotency_key", what);
	rv = id_copy(c->group, ci->group, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "group", what);
	rv = id_copy(c->cursor, ci->expansion_cursor, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "expansion_cursor", what);
	if (!in_range((int)ci->type, 1, FBX_CMD_TYPE_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "type",
		    "unknown value");
	if (!in_range((int)ci->origin, 1, FBX_ORIGIN_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "origin",
		    "unknown value");
	if (!in_range((int)ci->target_kind, 1, FBX_TARGET_KIND_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "target_kind",
		    "unknown value");
	if (!in_range((int)ci->platform, 0, FBX_PLATFORM_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "platform",
		    "unknown value");
	if (!in_range((int)ci->state, 0, FBX_C_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "state",
		    "unknown value");
	if (ci->n_counts > FBX_D_COUNT)
		return fail_at(w, FBX_ETOOBIG, pfx, idx, "counts",
		    "more entries than states");
	for (i = 0; i < ci->n_counts; i++) {
		int s = (int)ci->counts[i]->state;
		if (!in_range(s, 0, FBX_D_COUNT))
			return fail_at(w, FBX_EINVALID, pfx, idx, "counts",
			    "unknown state");
		if (c->counts[s] != 0)
			return fail_at(w, FBX_EINVALID, pfx, idx, "counts",
			    "state given twice");
		c->counts[s] = ci->counts[i]->count;
	}
	c->type = (uint8_t)ci->type;
	c->origin = (uint8_t)ci->origin;
	c->target_kind = (uint8_t)ci->target_kind;
	c->platform = (uint8_t)ci->platform;
	c->state = (uint8_t)ci->state;
	c->ttl_s = ci->ttl_seconds;
	c->created_ms = ci->created_ms;
	c->expires_ms = ci->expires_ms;
	c->ndeliveries = ci->deliveries;
	c->payload_len = ci->payload_size;
	c->ndev_ids = ci->device_id_count;
	c->cursor_idx = ci->expansion_index;
	return cmdinfo_safety_in(ci, c, w, pfx, idx);
}

static int
outcome_in(const pb_outcome *po, struct fbx_delivery *d, struct wctx *w,
    size_t idx)
{
	static const char pfx[] = "command.deliveries";
	const char *what;
	size_t i;
	int rv;

	rv = id_copy(d->device, po->device, 1, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, idx, "device", what);
	if (!in_range((int)po->state, 0, FBX_D_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, idx, "state",
		    "unknown value");
	if (po->code > UINT16_MAX)
		return fail_at(w, FBX_EINVALID, pfx, idx, "code",
		    "above 65535");
	if (po->n_history > FBX_HIST_MAX)
		return fail_at(w, FBX_ETOOBIG, pfx, idx, "history",
		    "more than 12 entries");
	for (i = 0; i < po->n_history; i++) {
		const pb_hist *h = po->history[i];
		if (!in_range((int)h->state, 0, FBX_D_COUNT) ||
		    h->code > UINT16_MAX)
			return fail(w, FBX_EINVALID,
			    "%s[%zu].history[%zu]: state or code out of "
			    "range",
			    pfx, idx, i);
		d->hist[i].state = (uint8_t)h->state;
		d->hist[i].code = (uint16_t)h->code;
		d->hist[i].at_ms = h->at_ms;
	}
	d->nhist = (uint8_t)po->n_history;
	d->id = po->id;
	d->state = (uint8_t)po->state;
	d->code = (uint16_t)po->code;
	d->attempts = po->attempts;
	d->updated_ms = po->updated_ms;
	return FBX_OK;
}

/* cmdlist_in decodes a CommandList (list_commands and list_held). */
static int
cmdlist_in(const pb_cmdlist *l, struct fbx_console_rep *r, struct wctx *w,
    const char *pfx)
{
	size_t i, n = l->n_commands;
	int rv;

	if (n > FBX_PAGE_MAX)
		return fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
		    FBX_PAGE_MAX);
	r->u.commands.next_after = l->next_after;
	if (n == 0)
		return FBX_OK;
	r->u.commands.cmds = calloc(n, sizeof(*r->u.commands.cmds));
	if (r->u.commands.cmds == NULL)
		return FBX_ENOMEM;
	r->u.commands.n = n;
	for (i = 0; i < n; i++) {
		rv = cmdinfo_in(l->commands[i], &r->u.commands.cmds[i], w, pfx,
		    i);
		if (rv != FBX_OK)
			return rv;
	}
	return FBX_OK;
}

static int
dryrun_in(const pb_dryrun *d, struct fbx_dryrun *o, struct wctx *w)
{
	static const char pfx[] = "submit.dry_run_report";
	const char *what;
	size_t i, n;
	int rv;

	if (d->n_per_platform > FBX_PLATFORM_COUNT)
		return fail(w, FBX_ETOOBIG, "%s.per_platform: more entries "
		    "than platforms", pfx);
	for (i = 0; i < d->n_per_platform; i++) {
		int p = (int)d->per_platform[i]->platform;
		if (!in_range(p, 0, FBX_PLATFORM_COUNT))
			return fail(w, FBX_EINVALID,
			    "%s.per_platform[%zu]: unknown platform %d", pfx,
			    i, p);
		if (o->per_platform[p] != 0)
			return fail(w, FBX_EINVALID,
			    "%s.per_platform[%zu]: platform given twice", pfx,
			    i);
		o->per_platform[p] = d->per_platform[i]->count;
	}
	if (d->n_groups > FBX_PAGE_MAX || d->n_waves > FBX_PAGE_MAX)
		return fail(w, FBX_ETOOBIG, "%s: more than %d groups or waves",
		    pfx, FBX_PAGE_MAX);
	if (d->stop_code > INT_MAX)
		return fail(w, FBX_EINVALID, "%s.stop_code: out of range",
		    pfx);
	rv = text_copy(o->verdict, sizeof(o->verdict), d->verdict, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "%s.verdict: %s", pfx, what);
	o->devices = d->devices;
	o->stop_err = (int)d->stop_code;
	n = d->n_groups;
	if (n > 0) {
		o->groups = calloc(n, sizeof(*o->groups));
		if (o->groups == NULL)
			return FBX_ENOMEM;
		o->ngroups = n;
		for (i = 0; i < n; i++) {
			rv = id_copy(o->groups[i].name, d->groups[i]->name, 1,
			    &what);
			if (rv != FBX_OK)
				return fail(w, rv, "%s.groups[%zu].name: %s",
				    pfx, i, what);
			o->groups[i].count = d->groups[i]->count;
		}
	}
	n = d->n_waves;
	if (n > 0) {
		o->waves = malloc(n * sizeof(*o->waves));
		if (o->waves == NULL)
			return FBX_ENOMEM;
		memcpy(o->waves, d->waves, n * sizeof(*o->waves));
		o->nwaves = n;
	}
	if (d->n_stage_devices != d->n_stage_waves ||
	    d->n_stage_devices > FBX_ROLLOUT_GROUPS_MAX + 1)
		return fail(w, FBX_EINVALID,
		    "%s.stage_devices/stage_waves: %zu and %zu entries (equal, "
		    "at most %d)",
		    pfx, d->n_stage_devices, d->n_stage_waves,
		    FBX_ROLLOUT_GROUPS_MAX + 1);
	for (i = 0; i < d->n_stage_devices; i++) {
		o->stage_devices[i] = d->stage_devices[i];
		o->stage_waves[i] = d->stage_waves[i];
	}
	o->nstages = d->n_stage_devices;
	return FBX_OK;
}

static int
breakers_in(const pb_brkrep *b, struct fbx_console_rep *r, struct wctx *w)
{
	static const char pfx[] = "breaker.breakers";
	const char *what;
	char sub[64];
	size_t i, n = b->n_breakers;
	int rv;

	if (n > FBX_PAGE_MAX)
		return fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
		    FBX_PAGE_MAX);
	r->u.breaker.released = b->released;
	r->u.breaker.discarded = b->discarded;
	if (n == 0)
		return FBX_OK;
	r->u.breaker.b = calloc(n, sizeof(*r->u.breaker.b));
	if (r->u.breaker.b == NULL)
		return FBX_ENOMEM;
	r->u.breaker.n = n;
	for (i = 0; i < n; i++) {
		const pb_brkinfo *x = b->breakers[i];
		struct fbx_breaker_info *o = &r->u.breaker.b[i];
		rv = scope_copy(o->org, x->org, 1, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "org", what);
		rv = id_copy(o->reason, x->reason, 0, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "reason", what);
		rv = id_copy(o->tripped_by, x->tripped_by, 0, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "tripped_by", what);
		rv = note_copy(o->note, x->note, 0, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "note", what);
		if ((int)x->state != FBX_BS_CLOSED &&
		    (int)x->state != FBX_BS_OPEN)
			return fail_at(w, FBX_EINVALID, pfx, i, "state",
			    "missing or unknown value");
		if (x->config != NULL) {
			snprintf(sub, sizeof(sub), "%s[%zu].config", pfx, i);
			rv = brkcfg_in(x->config, &o->cfg, w, sub);
			if (rv != FBX_OK)
				return rv;
		}
		o->state = (uint8_t)x->state;
		o->manual = x->manual ? 1 : 0;
		o->window_count = x->window_count;
		o->baseline = x->baseline;
		o->held = x->held;
		o->would_hold = x->would_hold;
		o->trips = x->trips;
		o->tripped_ms = x->tripped_ms;
		o->onset_ms = x->onset_ms;
		o->settling = x->settling;
		o->fleet = x->fleet;
		o->allowance = x->allowance;
	}
	return FBX_OK;
}

/* rbrow_in validates one RollbackRow. */
static int
rbrow_in(const pb_rbrow *x, struct fbx_rb_row *o, struct wctx *w, size_t i)
{
	static const char pfx[] = "rollback.rows";
	const char *what;
	int rv;

	rv = id_copy(o->device, x->device, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "device", what);
	if (!in_range((int)x->type, 1, FBX_CMD_TYPE_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, i, "type",
		    "missing or unknown value");
	if (!in_range((int)x->state, 0, FBX_D_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, i, "state",
		    "unknown value");
	if (!in_range((int)x->action, 1, FBX_RB_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, i, "action",
		    "missing or unknown value");
	if (!in_range((int)x->comp_type, 0, FBX_CMD_TYPE_COUNT))
		return fail_at(w, FBX_EINVALID, pfx, i, "comp_type",
		    "unknown value");
	rv = text_copy(o->detail, sizeof(o->detail), x->detail, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "detail", what);
	o->command_id = x->command_id;
	o->delivery_id = x->delivery_id;
	o->type = (uint8_t)x->type;
	o->state = (uint8_t)x->state;
	o->action = (uint8_t)x->action;
	o->comp_type = (uint8_t)x->comp_type;
	return FBX_OK;
}

/* rbplan_in decodes a RollbackPlan. Compensations and a rollback id only
 * exist once a rollback was executed: a plan that has them is a bug. */
static int
rbplan_in(const pb_rbplan *p, struct fbx_rb_plan *o, struct wctx *w)
{
	const char *what;
	unsigned seen = 0;
	size_t i, n;
	int rv;

	_Static_assert(FBX_RB_COUNT <= 16, "seen is a bit mask");
	if (p->n_per_action > FBX_RB_COUNT)
		return fail(w, FBX_ETOOBIG,
		    "rollback.per_action: more entries than actions");
	for (i = 0; i < p->n_per_action; i++) {
		int a = (int)p->per_action[i]->action;
		if (!in_range(a, 1, FBX_RB_COUNT))
			return fail(w, FBX_EINVALID,
			    "rollback.per_action[%zu]: unknown action %d", i,
			    a);
		if (seen & (1u << a))
			return fail(w, FBX_EINVALID,
			    "rollback.per_action[%zu]: action given twice", i);
		seen |= 1u << a;
		o->per_action[a] = p->per_action[i]->count;
	}
	if (p->n_rows > FBX_PAGE_MAX)
		return fail(w, FBX_ETOOBIG, "rollback.rows: more than %d",
		    FBX_PAGE_MAX);
	if (p->n_comp_ids > CMD_IDS_MAX)
		return fail(w, FBX_ETOOBIG, "rollback.comp_ids: more than %d",
		    CMD_IDS_MAX);
	if (!p->executed && (p->n_comp_ids > 0 || p->rollback_id != 0))
		return fail(w, FBX_EINVALID,
		    "rollback: comp_ids or rollback_id without executed");
	for (i = 0; i < p->n_comp_ids; i++)
		if (p->comp_ids[i] == 0)
			return fail(w, FBX_EINVALID,
			    "rollback.comp_ids[%zu]: zero", i);
	if (p->next_cursor != 0 && p->last_command_id == 0)
		return fail(w, FBX_EINVALID,
		    "rollback.last_command_id: missing with next_cursor");
	o->commands = p->commands;
	o->rollback_id = p->rollback_id;
	o->executed = p->executed ? 1 : 0;
	o->next_cursor = p->next_cursor;
	o->last_command_id = p->last_command_id;
	o->looked_at = p->looked_at;
	o->later_commands = p->later_commands;
	o->before_onset = p->before_onset;
	o->before_onset_deliveries = p->before_onset_deliveries;
	o->onset_ms = p->onset_ms;
	o->since_ms = p->since_ms;
	o->until_ms = p->until_ms;
	o->global = p->global ? 1 : 0;
	if (p->n_before_onset_rows > FBX_PAGE_MAX)
		return fail(w, FBX_ETOOBIG,
		    "rollback.before_onset_rows: more than %d", FBX_PAGE_MAX);
	if (p->n_orgs > FBX_PAGE_MAX)
		return fail(w, FBX_ETOOBIG, "rollback.orgs: more than %d",
		    FBX_PAGE_MAX);
	rv = id_copy(o->next_org, p->next_org, 0, &what);
	if (rv != FBX_OK)
		return fail(w, rv, "rollback.next_org: %s", what);
	if (o->next_org[0] != '\0' && p->next_cursor == 0)
		return fail(w, FBX_EINVALID,
		    "rollback.next_org: without next_cursor");
	n = p->n_rows;
	if (n > 0) {
		o->rows = calloc(n, sizeof(*o->rows));
		if (o->rows == NULL)
			return FBX_ENOMEM;
		o->nrows = n;
		for (i = 0; i < n; i++) {
			rv = rbrow_in(p->rows[i], &o->rows[i], w, i);
			if (rv != FBX_OK)
				return rv;
		}
	}
	n = p->n_before_onset_rows;
	if (n > 0) {
		o->bo_rows = calloc(n, sizeof(*o->bo_rows));
		if (o->bo_rows == NULL)
			return FBX_ENOMEM;
		o->nbo_rows = n;
		for (i = 0; i < n; i++) {
			rv = rbrow_in(p->before_onset_rows[i], &o->bo_rows[i],
			    w, i);
			if (rv != FBX_OK)
				return rv;
		}
	}
	n = p->n_orgs;
	if (n > 0) {
		o->orgs = calloc(n, sizeof(*o->orgs));
		if (o->orgs == NULL)
			return FBX_ENOMEM;
		o->norgs = n;
		for (i = 0; i < n; i++) {
			const pb_rbpart *x = p->orgs[i];
			struct fbx_rb_org *y = &o->orgs[i];
			unsigned pseen = 0;
			rv = id_copy(y->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fail(w, rv, "rollback.orgs[%zu].org: %s",
				    i, what);
			if (x->n_per_action > FBX_RB_COUNT)
				return fail(w, FBX_ETOOBIG,
				    "rollback.orgs[%zu].per_action: more "
				    "entries than actions",
				    i);
			for (size_t j = 0; j < x->n_per_action; j++) {
				int a = (int)x->per_action[j]->action;
				if (!in_range(a, 1, FBX_RB_COUNT) ||
				    (pseen & (1u << a)))
					return fail(w, FBX_EINVALID,
					    "rollback.orgs[%zu].per_action"
					    "[%zu]: unknown or repeated "
					    "action %d",
					    i, j, a);
				pseen |= 1u << a;
				y->per_action[a] = x->per_action[j]->count;
			}
			y->commands = x->commands;
			y->before_onset = x->before_onset;
			y->before_onset_deliveries = x->before_onset_deliveries;
			y->comp_commands = x->comp_commands;
		}
	}
	n = p->n_comp_ids;
	if (n > 0) {
		o->comp_ids = malloc(n * sizeof(*o->comp_ids));
		if (o->comp_ids == NULL)
			return FBX_ENOMEM;
		memcpy(o->comp_ids, p->comp_ids, n * sizeof(*o->comp_ids));
		o->ncomp = n;
	}
	return FBX_OK;
}

/* export_in copies an ExportPage's lines into a NUL-terminated heap
 * buffer. JSON never holds a raw NUL, so one means corruption, and
 * refusing it keeps jsonl usable as a C string. */
static int
export_in(const pb_exppage *p, struct fbx_console_rep *r, struct wctx *w)
{
	size_t n = p->jsonl.len;

	if (n > JSONL_MAX)
		return fail(w, FBX_ETOOBIG,
		    "export.jsonl: %zu bytes, at most %u", n, JSONL_MAX);
	if (n > 0 && memchr(p->jsonl.data, '\0', n) != NULL)
		return fail(w, FBX_EINVALID, "export.jsonl: NUL byte");
	r->u.export_.next_cursor = p->next_cursor;
	if (n == 0)
		return FBX_OK;
	r->u.export_.jsonl = malloc(n + 1);
	if (r->u.export_.jsonl == NULL)
		return FBX_ENOMEM;
	memcpy(r->u.export_.jsonl, p->jsonl.data, n);
	r->u.export_.jsonl[n] = '\0';
	r->u.export_.len = n;
	return FBX_OK;
}

/* audrec_in validates one AuditRecord. */
static int
audrec_in(const pb_audrec *x, struct fbx_audit_rec *o, struct wctx *w,
    size_t i)
{
	static const char pfx[] = "audit.records";
	const char *what;
	int rv;

	if (x->seq == 0)
		return fail_at(w, FBX_EINVALID, pfx, i, "seq", "zero");
	rv = scope_copy(o->org, x->org, 1, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "org", what);
	rv = id_copy(o->actor, x->actor, 1, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "actor", what);
	rv = action_copy(o->action, x->action, 1, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "action", what);
	rv = note_copy(o->note, x->note, 0, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "note", what);
	rv = text_copy(o->params, sizeof(o->params), x->params, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "params",
		    "longer than 511 bytes");
	rv = hash_copy(o->hash, x->hash, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "hash", what);
	rv = hash_copy(o->prev, x->prev, &what);
	if (rv != FBX_OK)
		return fail_at(w, rv, pfx, i, "prev", what);
	o->seq = x->seq;
	o->at_ms = x->at_ms;
	return FBX_OK;
}

/* orgs_in decodes an OrgList. orgs and devices share one allocation
 * (orgs first, devices after it, aligned), so fbx_console_rep_free frees
 * orgs only. */
static int
orgs_in(const pb_orglist *l, struct fbx_console_rep *r, struct wctx *w)
{
	const size_t al = _Alignof(uint32_t);
	size_t i, off, n = l->n_orgs;
	unsigned char *blk;
	const char *what;
	int rv;

	if (n > ORGS_MAX)
		return fail(w, FBX_ETOOBIG, "orgs.orgs: more than %d",
		    ORGS_MAX);
	if (n == 0)
		return FBX_OK;
	off = (n * sizeof(fbx_id) + al - 1) / al * al;
	blk = calloc(1, off + n * sizeof(uint32_t));
	if (blk == NULL)
		return FBX_ENOMEM;
	r->u.orgs.orgs = (fbx_id *)blk;
	r->u.orgs.devices = (uint32_t *)(blk + off);
	r->u.orgs.n = n;
	for (i = 0; i < n; i++) {
		rv = id_copy(r->u.orgs.orgs[i], l->orgs[i]->org, 1, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, "orgs.orgs", i, "org", what);
		r->u.orgs.devices[i] = l->orgs[i]->devices;
	}
	return FBX_OK;
}

/* ascii_copy copies printable ASCII text (what the engine makes of a
 * certificate's names: RFC 2253 with everything else escaped) into cap
 * bytes: it ends up on terminals. */
static int
ascii_copy(char *dst, size_t cap, const char *src, const char **what)
{
	size_t n = src == NULL ? 0 : strnlen(src, cap), i;

	if (n >= cap) {
		*what = "text too long";
		return FBX_ETOOBIG;
	}
	for (i = 0; i < n; i++) {
		if (src[i] < 0x20 || src[i] > 0x7e) {
			*what = "not printable ASCII";
			return FBX_EINVALID;
		}
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* certs_in decodes a CertReply. */
static int
certs_in(const pb_certrep *l, struct fbx_console_rep *r, struct wctx *w)
{
	static const char pfx[] = "cert.certs";
	const char *what;
	size_t i, j, n = l->n_certs;
	int rv;

	if (n > FBX_CERTS_MAX)
		return fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
		    FBX_CERTS_MAX);
	if (n == 0)
		return FBX_OK;
	r->u.cert.c = calloc(n, sizeof(*r->u.cert.c));
	if (r->u.cert.c == NULL)
		return FBX_ENOMEM;
	r->u.cert.n = n;
	for (i = 0; i < n; i++) {
		const pb_certinfo *x = l->certs[i];
		struct fbx_cert_info *o = &r->u.cert.c[i];
		rv = id_copy(o->name, x->name, 1, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "name", what);
		rv = ascii_copy(o->subject, sizeof(o->subject), x->subject,
		    &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "subject", what);
		rv = ascii_copy(o->issuer, sizeof(o->issuer), x->issuer,
		    &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "issuer", what);
		if (x->n_reasons == 0 || x->n_reasons > FBX_CERT_REASONS_MAX)
			return fail_at(w, FBX_EINVALID, pfx, i, "reasons",
			    "not 1..8 identifiers");
		for (j = 0; j < x->n_reasons; j++) {
			rv = id_copy(o->reasons[j], x->reasons[j], 1, &what);
			if (rv != FBX_OK)
				return fail_at(w, rv, pfx, i, "reasons", what);
		}
		o->nreasons = (uint32_t)x->n_reasons;
		if (!in_range((int)x->state, FBX_CST_VALID, FBX_CST_COUNT))
			return fail_at(w, FBX_EINVALID, pfx, i, "state",
			    "missing or unknown value");
		o->state = (uint8_t)x->state;
		rv = id_copy(o->added_by, x->added_by, 0, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "added_by", what);
		rv = hash_copy(o->sha256, x->sha256, &what);
		if (rv != FBX_OK)
			return fail_at(w, rv, pfx, i, "sha256", what);
		o->not_before_ms = x->not_before_ms;
		o->not_after_ms = x->not_after_ms;
		o->days_left = x->days_left;
		o->trip_before_s = x->trip_before_seconds;
		o->alerts_sent = x->alerts_sent;
		o->tripped_ms = x->tripped_ms;
		o->added_ms = x->added_ms;
	}
	return FBX_OK;
}

/* fleet_in decodes a FleetReport. */
static int
fleet_in(const pb_fleetrep *p, struct fbx_console_rep *r, struct wctx *w)
{
	struct fbx_fleet_report *o = &r->u.fleet;
	const char *what;
	size_t i;

	if (p->n_offline_hours != FBX_FLEET_BUCKETS &&
	    p->n_offline_hours != 0)
		return fail(w, FBX_EINVALID,
		    "fleet.offline_hours: %zu buckets, expected %d",
		    p->n_offline_hours, FBX_FLEET_BUCKETS);
	if (p->n_os_versions > FBX_FLEET_OS_MAX)
		return fail(w, FBX_ETOOBIG, "fleet.os_versions: %zu, at most %d",
		    p->n_os_versions, FBX_FLEET_OS_MAX);
	if (p->n_rules > FBX_FLEET_RULES_MAX)
		return fail(w, FBX_ETOOBIG, "fleet.rules: %zu, at most %d",
		    p->n_rules, FBX_FLEET_RULES_MAX);
	o->as_of_ms = p->as_of_ms;
	o->devices = p->devices;
	for (i = 0; i < p->n_offline_hours; i++)
		o->offline_hours[i] = p->offline_hours[i];
	for (i = 0; i < p->n_os_versions; i++) {
		if (text_copy(o->os[i].version, sizeof(o->os[i].version),
		        p->os_versions[i]->version, &what) != FBX_OK)
			return fail(w, FBX_EINVALID,
			    "fleet.os_versions[%zu].version: %s", i, what);
		o->os[i].count = p->os_versions[i]->count;
	}
	o->nos = p->n_os_versions;
	o->os_other = p->os_other;
	for (i = 0; i < p->n_rules; i++) {
		o->rules[i].stale_minutes = p->rules[i]->stale_minutes;
		o->rules[i].repeat_minutes = p->rules[i]->repeat_minutes;
		o->rules[i].stale = p->rules[i]->stale;
		o->rules[i].last_alert_ms = p->rules[i]->last_alert_ms;
	}
	o->nrules = p->n_rules;
	if (p->n_outcomes >= FBX_CMD_TYPE_COUNT)
		return fail(w, FBX_ETOOBIG, "fleet.outcomes: %zu types",
		    p->n_outcomes);
	for (i = 0; i < p->n_outcomes; i++) {
		const pb_typeout *t = p->outcomes[i];
		if (!in_range((int)t->type, 1, FBX_CMD_TYPE_COUNT))
			return fail(w, FBX_EINVALID,
			    "fleet.outcomes[%zu].type: unknown value %d", i,
			    (int)t->type);
		o->out[i].type = (uint8_t)t->type;
		o->out[i].silent = t->silent ? 1 : 0;
		o->out[i].ok_hour = t->succeeded_hour;
		o->out[i].failed_hour = t->failed_hour;
		o->out[i].expired_hour = t->expired_hour;
		o->out[i].ok_day = t->succeeded_day;
		o->out[i].failed_day = t->failed_day;
		o->out[i].expired_day = t->expired_day;
	}
	o->nout = p->n_outcomes;
	if (id_copy(o->group, p->group, 0, &what) != FBX_OK ||
	    id_copy(o->next_after, p->next_after, 0, &what) != FBX_OK)
		return fail(w, FBX_EINVALID, "fleet.group, next_after: %s",
		    what);
	if (p->version != NULL) {
		const pb_rover *v = p->version;
		o->version.set = 1;
		o->version.command_id = v->command_id;
		if (text_copy(o->version.target, sizeof(o->version.target),
		        v->target, &what) != FBX_OK)
			return fail(w, FBX_EINVALID, "fleet.version.target: %s",
			    what);
		o->version.devices = v->devices;
		o->version.at_target = v->at_target;
		o->version.other = v->other;
		o->version.unknown = v->unknown;
		o->version.next_after = v->next_after;
	}
	return FBX_OK;
}

/* principals_in decodes a PrincipalReply: bounded text, kept as is. */
static int
principals_in(const pb_prirep *p, struct fbx_console_rep *r, struct wctx *w)
{
	size_t n = p->jsonl != NULL ? strlen(p->jsonl) : 0;

	if (n > FBX_PRINCIPAL_JSONL_MAX)
		return fail(w, FBX_ETOOBIG, "principal.jsonl: %zu bytes", n);
	r->u.principal.jsonl = malloc(n + 1);
	if (r->u.principal.jsonl == NULL)
		return FBX_ENOMEM;
	if (n > 0)
		memcpy(r->u.principal.jsonl, p->jsonl, n);
	r->u.principal.jsonl[n] = '\0';
	r->u.principal.len = n;
	r->u.principal.count = p->count;
	return FBX_OK;
}

static int
result_in(const pb_crep *pb, struct fbx_console_rep *r, struct wctx *w)
{
	const char *what;
	size_t i, n;
	int rv;

	switch (pb->result_case) {
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_SUBMIT:
		if (!in_range((int)pb->submit->state, 0, FBX_C_COUNT))
			return fail(w, FBX_EINVALID,
			    "submit.state: unknown value");
		rv = held_copy(r->u.submit.held_by, pb->submit->held_by,
		    &what);
		if (rv != FBX_OK)
			return fail(w, rv, "submit.held_by: %s", what);
		r->u.submit.command_id = pb->submit->command_id;
		r->u.submit.duplicate = pb->submit->duplicate ? 1 : 0;
		r->u.submit.device_count = pb->submit->device_count;
		r->u.submit.state = (int)pb->submit->state;
		if (pb->submit->dry_run_report != NULL && !pb->submit->dry_run)
			return fail(w, FBX_EINVALID,
			    "submit.dry_run_report: without dry_run");
		if (!pb->submit->dry_run)
			return FBX_OK;
		if (pb->submit->dry_run_report == NULL)
			return fail(w, FBX_EINVALID,
			    "submit.dry_run_report: missing");
		r->u.submit.dry_run = 1;
		return dryrun_in(pb->submit->dry_run_report,
		    &r->u.submit.dryrun, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMAND: {
		const pb_cmdpage *p = pb->command;
		if (p->info == NULL)
			return fail(w, FBX_EINVALID, "command.info: missing");
		rv = cmdinfo_in(p->info, &r->u.command.info, w,
		    "command.info", NO_IDX);
		if (rv != FBX_OK)
			return rv;
		n = p->n_deliveries;
		if (n > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "command.deliveries: more than %d", FBX_PAGE_MAX);
		r->u.command.next_after = p->next_after;
		if (n == 0)
			return FBX_OK;
		r->u.command.dlv = calloc(n, sizeof(*r->u.command.dlv));
		if (r->u.command.dlv == NULL)
			return FBX_ENOMEM;
		r->u.command.ndlv = n;
		for (i = 0; i < n; i++) {
			rv = outcome_in(p->deliveries[i],
			    &r->u.command.dlv[i], w, i);
			if (rv != FBX_OK)
				return rv;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMANDS:
		return cmdlist_in(pb->commands, r, w, "commands.commands");
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIST_HELD:
		return cmdlist_in(pb->list_held, r, w, "list_held.commands");
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_BREAKER:
		return breakers_in(pb->breaker, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIMIT: {
		static const char pfx[] = "limit.limits";
		n = pb->limit->n_limits;
		if (n > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
			    FBX_PAGE_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.limit.l = calloc(n, sizeof(*r->u.limit.l));
		if (r->u.limit.l == NULL)
			return FBX_ENOMEM;
		r->u.limit.n = n;
		for (i = 0; i < n; i++) {
			const pb_liminfo *x = pb->limit->limits[i];
			struct fbx_limit_info *o = &r->u.limit.l[i];
			rv = scope_copy(o->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fail_at(w, rv, pfx, i, "org", what);
			if (!in_range((int)x->type, 1, FBX_CMD_TYPE_COUNT))
				return fail_at(w, FBX_EINVALID, pfx, i, "type",
				    "missing or unknown value");
			if (x->max_share_ppm > FBX_PPM)
				return fail_at(w, FBX_EINVALID, pfx, i,
				    "max_share_ppm", "above 1,000,000 ppm");
			o->type = (uint8_t)x->type;
			o->max_count = x->max_count;
			o->max_share_ppm = x->max_share_ppm;
			o->window_s = x->window_seconds;
			o->used = x->used;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_RATE: {
		static const char pfx[] = "rate.rates";
		n = pb->rate->n_rates;
		if (n > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG, "%s: more than %d", pfx,
			    FBX_PAGE_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.rate.r = calloc(n, sizeof(*r->u.rate.r));
		if (r->u.rate.r == NULL)
			return FBX_ENOMEM;
		r->u.rate.n = n;
		for (i = 0; i < n; i++) {
			const pb_rateinfo *x = pb->rate->rates[i];
			struct fbx_rate_info *o = &r->u.rate.r[i];
			rv = scope_copy(o->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fail_at(w, rv, pfx, i, "org", what);
			o->rate_per_s = x->rate_per_second;
			o->burst = x->burst;
			o->max_inflight = x->max_inflight;
			o->inflight = x->inflight;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_APPROVE: {
		const pb_apprrep *x = pb->approve;
		rv = id_copy(r->u.approve.token, x->token, 1, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "approve.token: %s", what);
		rv = id_copy(r->u.approve.approver, x->approver, 1, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "approve.approver: %s", what);
		rv = id_copy(r->u.approve.submitter, x->submitter, 1, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "approve.submitter: %s", what);
		r->u.approve.expires_ms = x->expires_ms;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLOUT: {
		const pb_rorep *x = pb->rollout;
		if (x->plan != NULL) {
			rv = plan_in(x->plan, &r->u.rollout.plan, w,
			    "rollout.plan");
			if (rv != FBX_OK)
				return rv;
		}
		if (x->status != NULL) {
			rv = status_in(x->status, &r->u.rollout.st, w,
			    "rollout.status");
			if (rv != FBX_OK)
				return rv;
		}
		r->u.rollout.command_id = x->command_id;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ENROLL:
		r->u.enroll.created = pb->enroll->created;
		r->u.enroll.updated = pb->enroll->updated;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_REMOVE:
		r->u.remove.removed = pb->remove->removed;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_DEVICES:
		n = pb->devices->n_devices;
		if (n > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "devices.devices: more than %d", FBX_PAGE_MAX);
		rv = id_copy(r->u.devices.next_after,
		    pb->devices->next_after, 0, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "devices.next_after: %s", what);
		r->u.devices.total = pb->devices->total;
		if (n == 0)
			return FBX_OK;
		r->u.devices.devs = calloc(n, sizeof(*r->u.devices.devs));
		if (r->u.devices.devs == NULL)
			return FBX_ENOMEM;
		r->u.devices.n = n;
		for (i = 0; i < n; i++) {
			rv = device_in(pb->devices->devices[i],
			    &r->u.devices.devs[i], 1, w, "devices.devices", i);
			if (rv != FBX_OK)
				return rv;
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_GROUPS:
		n = pb->groups->n_groups;
		if (n > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "groups.groups: more than %d", FBX_PAGE_MAX);
		if (n == 0)
			return FBX_OK;
		r->u.groups.groups = calloc(n, sizeof(*r->u.groups.groups));
		if (r->u.groups.groups == NULL)
			return FBX_ENOMEM;
		r->u.groups.n = n;
		for (i = 0; i < n; i++) {
			const pb_grpcount *g = pb->groups->groups[i];
			rv = id_copy(r->u.groups.groups[i].name, g->name, 1,
			    &what);
			if (rv != FBX_OK)
				return fail(w, rv,
				    "groups.groups[%zu].name: %s", i, what);
			r->u.groups.groups[i].count = g->count;
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_PONG: {
		const pb_stats *s = pb->pong;
		struct fbx_engine_stats *o = &r->u.pong;
		rv = text_copy(o->version, sizeof(o->version), s->version,
		    &what);
		if (rv != FBX_OK)
			return fail(w, rv, "pong.version: %s", what);
		o->uptime_ms = s->uptime_ms;
		o->gateways = s->gateways;
		o->commands_active = s->commands_active;
		o->deliveries_queued = s->deliveries_queued;
		o->deliveries_inflight = s->deliveries_inflight;
		o->deliveries_pending = s->deliveries_pending;
		o->commits = s->commits;
		o->store_bytes = s->store_bytes;
		o->turn_max_us = s->turn_max_us;
		o->turns_failed = s->turns_failed;
		o->degraded = s->degraded != 0;
		o->readers_used = s->readers_used;
		o->auth_refused = s->auth_refused;
		o->results_forged = s->results_forged;
		o->handshakes_refused = s->handshakes_refused;
		return FBX_OK;
	}
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLBACK:
		return rbplan_in(pb->rollback, &r->u.rollback, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_REPLAY:
		r->u.replay.matched = pb->replay->matched;
		r->u.replay.resent = pb->replay->resent;
		r->u.replay.skipped_terminal = pb->replay->skipped_terminal;
		if (pb->replay->next_cursor != 0 &&
		    pb->replay->last_command_id == 0)
			return fail(w, FBX_EINVALID,
			    "replay.last_command_id: missing with next_cursor");
		r->u.replay.next_cursor = pb->replay->next_cursor;
		r->u.replay.last_command_id = pb->replay->last_command_id;
		r->u.replay.commands = pb->replay->commands;
		r->u.replay.looked_at = pb->replay->looked_at;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_EXPORT:
		return export_in(pb->export, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_AUDIT:
		n = pb->audit->n_records;
		if (n > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "audit.records: more than %d", FBX_PAGE_MAX);
		r->u.audit.next_after = pb->audit->next_after;
		if (n == 0)
			return FBX_OK;
		r->u.audit.r = calloc(n, sizeof(*r->u.audit.r));
		if (r->u.audit.r == NULL)
			return FBX_ENOMEM;
		r->u.audit.n = n;
		for (i = 0; i < n; i++) {
			rv = audrec_in(pb->audit->records[i], &r->u.audit.r[i],
			    w, i);
			if (rv != FBX_OK)
				return rv;
		}
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_VERIFY:
		rv = text_copy(r->u.verify.why, sizeof(r->u.verify.why),
		    pb->verify->why, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "verify.why: %s", what);
		rv = hash_copy(r->u.verify.verified_hash,
		    pb->verify->verified_hash, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "verify.verified_hash: %s", what);
		r->u.verify.records = pb->verify->records;
		r->u.verify.broken_at = pb->verify->broken_at;
		r->u.verify.verified_seq = pb->verify->verified_seq;
		r->u.verify.complete = pb->verify->complete ? 1 : 0;
		r->u.verify.head_seq = pb->verify->head_seq;
		r->u.verify.anchor_seq = pb->verify->anchor_seq;
		return FBX_OK;
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_ORGS:
		return orgs_in(pb->orgs, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_CERT:
		return certs_in(pb->cert, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_PRINCIPAL:
		return principals_in(pb->principal, r, w);
	case FUSEBOX__V1__CONSOLE_REPLY__RESULT_FLEET:
		return fleet_in(pb->fleet, r, w);
	default:
		break;
	}
	return fail(w, FBX_EINVALID, "result: missing or unknown");
}

int
fbx_console_rep_decode(
    const void *buf, size_t len, struct fbx_console_rep *out)
{
	struct wctx w = { NULL, 0 };
	struct fbx_console_rep r;
	pb_crep *pb = NULL;
	struct pb_alloc pa;
	const char *what;
	int rv;

	memset(&r, 0, sizeof(r));
	if (out == NULL)
		return FBX_EINVALID;
	rv = check_len(&w, buf, len, FBX_CONSOLE_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__console_reply__unpack(pb_alloc_init(&pa), len,
	    in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM : FBX_EMALFORMED;
		goto out;
	}
	r.request_id = pb->request_id;
	rv = check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	if (pb->error != NULL) {
		/* An error reply carries no result; kind stays NONE. */
		if (pb->error->code == 0 || pb->error->code > INT_MAX ||
		    pb->result_case !=
		        FUSEBOX__V1__CONSOLE_REPLY__RESULT__NOT_SET) {
			rv = FBX_EINVALID;
			goto out;
		}
		r.err = (int)pb->error->code;
		rv = text_copy(r.errmsg, sizeof(r.errmsg),
		    pb->error->message, &what);
		if (rv != FBX_OK)
			goto out;
		rv = id_copy(r.approval_token, pb->error->approval_token, 0,
		    &what);
		r.limit_value = pb->error->limit_value;
		r.limit_count = pb->error->limit_count;
		if (rv == FBX_OK)
			rv = id_copy(r.owner_node, pb->error->owner_node, 0,
			    &what);
		if (rv == FBX_OK)
			rv = text_copy(r.owner_endpoint,
			    sizeof(r.owner_endpoint), pb->error->owner_endpoint,
			    &what);
		goto out;
	}
	r.kind = (int)pb->result_case;
	rv = result_in(pb, &r, &w);

out:
	if (pb != NULL)
		fusebox__v1__console_reply__free_unpacked(pb, NULL);
	if (rv != FBX_OK) {
		uint64_t id = r.request_id;
		fbx_console_rep_free(&r);
		memset(out, 0, sizeof(*out));
		out->request_id = id;
		return rv;
	}
	*out = r;
	return FBX_OK;
}

void
fbx_console_rep_free(struct fbx_console_rep *rep)
{
	if (rep == NULL)
		return;
	switch (rep->kind) {
	case FBX_CREQ_GET_COMMAND:
		fbx_command_clear(&rep->u.command.info);
		free(rep->u.command.dlv);
		break;
	case FBX_CREQ_LIST_COMMANDS:
	case FBX_CREQ_LIST_HELD:
		free(rep->u.commands.cmds);
		break;
	case FBX_CREQ_LIST_DEVICES:
		free(rep->u.devices.devs);
		break;
	case FBX_CREQ_LIST_GROUPS:
		free(rep->u.groups.groups);
		break;
	case FBX_CREQ_SUBMIT:
		free(rep->u.submit.dryrun.groups);
		free(rep->u.submit.dryrun.waves);
		break;
	case FBX_CREQ_BREAKER:
		free(rep->u.breaker.b);
		break;
	case FBX_CREQ_LIMIT:
		free(rep->u.limit.l);
		break;
	case FBX_CREQ_RATE:
		free(rep->u.rate.r);
		break;
	case FBX_CREQ_ROLLBACK:
		free(rep->u.rollback.rows);
		free(rep->u.rollback.comp_ids);
		free(rep->u.rollback.bo_rows);
		free(rep->u.rollback.orgs);
		break;
	case FBX_CREQ_EXPORT:
		free(rep->u.export_.jsonl);
		break;
	case FBX_CREQ_AUDIT_LIST:
		free(rep->u.audit.r);
		break;
	case FBX_CREQ_LIST_ORGS:
		free(rep->u.orgs.orgs); /* devices is in the same block */
		break;
	case FBX_CREQ_CERT:
		free(rep->u.cert.c);
		break;
	case FBX_CREQ_PRINCIPAL:
		free(rep->u.principal.jsonl);
		break;
	default:
		break;
	}
	memset(rep, 0, sizeof(*rep));
}

/* ======================= console reply: encode ========================= */

/* cmdinfo_size sizes cmdinfo_out: the fixed arrays, plus a plan (with
 * its group pointers) and a status only for commands that have them. */
static size_t
cmdinfo_size(const struct fbx_command *c, size_t n)
{
	size_t i, sz;

	sz = asz(n * sizeof(pb_cmdinfo)) + asz(n * sizeof(pb_cmdinfo *)) +
	    asz(n * FBX_D_COUNT * sizeof(pb_count)) +
	    asz(n * FBX_D_COUNT * sizeof(pb_count *));
	for (i = 0; i < n; i++) {
		if (!plan_empty(&c[i].rollout))
			sz += asz(sizeof(pb_plan)) +
			    asz(FBX_ROLLOUT_GROUPS_MAX * sizeof(char *));
		if (!status_empty(&c[i].ro))
			sz += asz(sizeof(pb_rostatus));
	}
	return sz;
}

/* cmdinfo_safety_out adds the safety-control fields of c to x. */
static int
cmdinfo_safety_out(struct arena *a, const struct fbx_command *c,
    pb_cmdinfo *x)
{
	int rv;

	if (!cstr_ok(c->held_by, sizeof(c->held_by)) ||
	    !cstr_ok(c->approved_by, sizeof(c->approved_by)) ||
	    !cstr_ok(c->resolved_by, sizeof(c->resolved_by)) ||
	    !cstr_ok(c->note, sizeof(c->note)))
		return FBX_EINVALID;
	x->priority = (Fusebox__V1__Priority)c->priority;
	x->held_by = (char *)c->held_by;
	x->approved_by = (char *)c->approved_by;
	x->resolved_by = (char *)c->resolved_by;
	x->note = (char *)c->note;
	if (!plan_empty(&c->rollout)) {
		pb_plan *p = arena_take(a, sizeof(*p));
		char **gp = arena_take(a,
		    FBX_ROLLOUT_GROUPS_MAX * sizeof(char *));
		if (p == NULL || gp == NULL)
			return FBX_ENOMEM;
		rv = plan_out(&c->rollout, p, gp);
		if (rv != FBX_OK)
			return rv;
		x->rollout = p;
	}
	if (!status_empty(&c->ro)) {
		pb_rostatus *st = arena_take(a, sizeof(*st));
		if (st == NULL)
			return FBX_ENOMEM;
		rv = status_out(&c->ro, st);
		if (rv != FBX_OK)
			return rv;
		x->rollout_status = st;
	}
	x->settle_until_ms = c->settle_until_ms;
	return FBX_OK;
}

static size_t
grpcounts_size(size_t n)
{
	return asz(n * sizeof(pb_grpcount)) + asz(n * sizeof(pb_grpcount *));
}

/* grpcounts_out builds n GroupCount messages from the arena. */
static int
grpcounts_out(struct arena *a, const struct fbx_group_count *gc, size_t n,
    pb_grpcount ***pp)
{
	static const pb_grpcount ginit = FUSEBOX__V1__GROUP_COUNT__INIT;
	pb_grpcount *g = arena_take(a, n * sizeof(*g));
	pb_grpcount **p = arena_take(a, n * sizeof(*p));
	size_t i;

	if (g == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		if (!cstr_ok(gc[i].name, sizeof(gc[i].name)))
			return FBX_EINVALID;
		g[i] = ginit;
		g[i].name = (char *)gc[i].name;
		g[i].count = gc[i].count;
		p[i] = &g[i];
	}
	*pp = n > 0 ? p : NULL;
	return FBX_OK;
}

/* cmdinfo_out fills o[i] (and p[i] = &o[i]) for n commands. */
static int
cmdinfo_out(struct arena *a, const struct fbx_command *c, size_t n,
    pb_cmdinfo ***pp)
{
	static const pb_cmdinfo init = FUSEBOX__V1__COMMAND_INFO__INIT;
	static const pb_count cinit = FUSEBOX__V1__STATE_COUNT__INIT;
	pb_cmdinfo *o = arena_take(a, n * sizeof(*o));
	pb_cmdinfo **p = arena_take(a, n * sizeof(*p));
	pb_count *sc = arena_take(a, n * FBX_D_COUNT * sizeof(*sc));
	pb_count **scp = arena_take(a, n * FBX_D_COUNT * sizeof(*scp));
	size_t i, k, s;
	int rv;

	if (n > 0 && (o == NULL || p == NULL || sc == NULL || scp == NULL))
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_command *ci = &c[i];
		pb_cmdinfo *x = &o[i];
		if (!cstr_ok(ci->org, sizeof(ci->org)) ||
		    !cstr_ok(ci->actor, sizeof(ci->actor)) ||
		    !cstr_ok(ci->reason, sizeof(ci->reason)) ||
		    !cstr_ok(ci->idem_key, sizeof(ci->idem_key)) ||
		    !cstr_ok(ci->group, sizeof(ci->group)) ||
		    !cstr_ok(ci->cursor, sizeof(ci->cursor)))
			return FBX_EINVALID;
		*x = init;
		x->id = ci->id;
		x->org = (char *)ci->org;
		x->actor = (char *)ci->actor;
		x->reason = (char *)ci->reason;
		x->idempotency_key = (char *)ci->idem_key;
		x->group = (char *)ci->group;
		x->type = (Fusebox__V1__CommandType)ci->type;
		x->origin = (Fusebox__V1__Origin)ci->origin;
		x->target_kind = (Fusebox__V1__TargetKind)ci->target_kind;
		x->platform = (Fusebox__V1__Platform)ci->platform;
		x->state = (Fusebox__V1__CommandState)ci->state;
		x->ttl_seconds = ci->ttl_s;
		x->created_ms = ci->created_ms;
		x->expires_ms = ci->expires_ms;
		x->deliveries = ci->ndeliveries;
		x->payload_size = ci->payload_len;
		x->device_id_count = ci->ndev_ids;
		x->expansion_cursor = (char *)ci->cursor;
		x->expansion_index = ci->cursor_idx;
		k = i * FBX_D_COUNT;
		x->counts = &scp[k];
		for (s = 0; s < FBX_D_COUNT; s++) {
			if (ci->counts[s] == 0)
				continue;
			sc[k] = cinit;
			sc[k].state = (Fusebox__V1__DeliveryState)s;
			sc[k].count = ci->counts[s];
			scp[k] = &sc[k];
			k++;
			x->n_counts++;
		}
		if (x->n_counts == 0)
			x->counts = NULL;
		rv = cmdinfo_safety_out(a, ci, x);
		if (rv != FBX_OK)
			return rv;
		p[i] = x;
	}
	*pp = p;
	return FBX_OK;
}

static int
outcomes_size(const struct fbx_delivery *d, size_t n, size_t *sz)
{
	size_t i, nh = 0;

	for (i = 0; i < n; i++) {
		if (d[i].nhist > FBX_HIST_MAX)
			return FBX_ETOOBIG;
		nh += d[i].nhist;
	}
	*sz = asz(n * sizeof(pb_outcome)) + asz(n * sizeof(pb_outcome *)) +
	    asz(nh * sizeof(pb_hist)) + asz(nh * sizeof(pb_hist *));
	return FBX_OK;
}

static int
outcomes_out(struct arena *a, const struct fbx_delivery *d, size_t n,
    size_t nh, pb_outcome ***pp)
{
	static const pb_outcome init = FUSEBOX__V1__DELIVERY_OUTCOME__INIT;
	static const pb_hist hinit = FUSEBOX__V1__HISTORY_ENTRY__INIT;
	pb_outcome *o = arena_take(a, n * sizeof(*o));
	pb_outcome **p = arena_take(a, n * sizeof(*p));
	pb_hist *h = arena_take(a, nh * sizeof(*h));
	pb_hist **hp = arena_take(a, nh * sizeof(*hp));
	size_t i, j, k = 0;

	if (o == NULL || p == NULL || h == NULL || hp == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		if (!cstr_ok(d[i].device, sizeof(d[i].device)))
			return FBX_EINVALID;
		o[i] = init;
		o[i].id = d[i].id;
		o[i].device = (char *)d[i].device;
		o[i].state = (Fusebox__V1__DeliveryState)d[i].state;
		o[i].code = d[i].code;
		o[i].attempts = d[i].attempts;
		o[i].updated_ms = d[i].updated_ms;
		o[i].n_history = d[i].nhist;
		o[i].history = d[i].nhist > 0 ? &hp[k] : NULL;
		for (j = 0; j < d[i].nhist; j++, k++) {
			h[k] = hinit;
			h[k].state =
			    (Fusebox__V1__DeliveryState)d[i].hist[j].state;
			h[k].code = d[i].hist[j].code;
			h[k].at_ms = d[i].hist[j].at_ms;
			hp[k] = &h[k];
		}
		p[i] = &o[i];
	}
	*pp = p;
	return FBX_OK;
}

/* dryrun_out fills o from d; plat/platp hold FBX_PLATFORM_COUNT entries
 * and only non-zero platforms are sent. */
static int
dryrun_out(struct arena *a, const struct fbx_dryrun *d, pb_dryrun *o,
    pb_platcount *plat, pb_platcount **platp)
{
	static const pb_platcount pinit = FUSEBOX__V1__PLATFORM_COUNT__INIT;
	size_t p, k = 0;
	int rv;

	if (d->stop_err < 0 || !cstr_ok(d->verdict, sizeof(d->verdict)))
		return FBX_EINVALID;
	for (p = 0; p < FBX_PLATFORM_COUNT; p++) {
		if (d->per_platform[p] == 0)
			continue;
		plat[k] = pinit;
		plat[k].platform = (Fusebox__V1__Platform)p;
		plat[k].count = d->per_platform[p];
		platp[k] = &plat[k];
		k++;
	}
	o->devices = d->devices;
	o->n_per_platform = k;
	o->per_platform = k > 0 ? platp : NULL;
	rv = grpcounts_out(a, d->groups, d->ngroups, &o->groups);
	if (rv != FBX_OK)
		return rv;
	o->n_groups = d->ngroups;
	o->n_waves = d->nwaves;
	o->waves = d->nwaves > 0 ? d->waves : NULL;
	if (d->nstages > FBX_ROLLOUT_GROUPS_MAX + 1)
		return FBX_EINVALID;
	o->n_stage_devices = o->n_stage_waves = d->nstages;
	o->stage_devices = d->nstages > 0 ? (uint32_t *)d->stage_devices : NULL;
	o->stage_waves = d->nstages > 0 ? (uint32_t *)d->stage_waves : NULL;
	o->stop_code = (uint32_t)d->stop_err;
	o->stop_name = d->stop_err != FBX_OK ?
	    (char *)fbx_errname(d->stop_err) :
	    (char *)"";
	o->verdict = (char *)d->verdict;
	return FBX_OK;
}

/* breakers_out fills o from the breaker reply of rep. */
static int
breakers_out(struct arena *a, const struct fbx_console_rep *rep,
    pb_brkrep *o)
{
	static const pb_brkinfo binit = FUSEBOX__V1__BREAKER_INFO__INIT;
	size_t i, n = rep->u.breaker.n;
	pb_brkinfo *v = arena_take(a, n * sizeof(*v));
	pb_brkcfg *c = arena_take(a, n * sizeof(*c));
	pb_brkinfo **p = arena_take(a, n * sizeof(*p));

	if (v == NULL || c == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_breaker_info *x = &rep->u.breaker.b[i];
		if (!cstr_ok(x->org, sizeof(x->org)) ||
		    !cstr_ok(x->reason, sizeof(x->reason)) ||
		    !cstr_ok(x->tripped_by, sizeof(x->tripped_by)) ||
		    !cstr_ok(x->note, sizeof(x->note)))
			return FBX_EINVALID;
		v[i] = binit;
		v[i].org = (char *)x->org;
		v[i].reason = (char *)x->reason;
		v[i].state = (Fusebox__V1__BreakerState)x->state;
		v[i].manual = x->manual != 0;
		brkcfg_out(&x->cfg, &c[i]);
		v[i].config = &c[i];
		v[i].window_count = x->window_count;
		v[i].baseline = x->baseline;
		v[i].held = x->held;
		v[i].would_hold = x->would_hold;
		v[i].trips = x->trips;
		v[i].tripped_ms = x->tripped_ms;
		v[i].onset_ms = x->onset_ms;
		v[i].settling = x->settling;
		v[i].tripped_by = (char *)x->tripped_by;
		v[i].note = (char *)x->note;
		v[i].fleet = x->fleet;
		v[i].allowance = x->allowance;
		p[i] = &v[i];
	}
	o->breakers = n > 0 ? p : NULL;
	o->n_breakers = n;
	o->released = rep->u.breaker.released;
	o->discarded = rep->u.breaker.discarded;
	return FBX_OK;
}

/* rbplan_out fills o from a rollback plan; act/actp hold FBX_RB_COUNT
 * entries and only non-zero actions are sent. RB_NONE is no action, so
 * a count for it is refused rather than sent for the decoder to refuse. */
/* rbacts_out fills act/actp (FBX_RB_COUNT entries) with the non-zero
 * counts of per; @return how many, or -1 for a count of RB_NONE. */
static int
rbacts_out(const uint32_t *per, pb_actcount *act, pb_actcount **actp)
{
	static const pb_actcount ainit = FUSEBOX__V1__ACTION_COUNT__INIT;
	int k = 0;

	if (per[FBX_RB_NONE] != 0)
		return -1;
	for (int i = 1; i < FBX_RB_COUNT; i++) {
		if (per[i] == 0)
			continue;
		act[k] = ainit;
		act[k].action = (Fusebox__V1__RollbackAction)i;
		act[k].count = per[i];
		actp[k] = &act[k];
		k++;
	}
	return k;
}

/* rbrows_out fills *out with n rows taken from the arena. */
static int
rbrows_out(struct arena *a, const struct fbx_rb_row *rows, size_t n,
    pb_rbrow ***out)
{
	static const pb_rbrow rinit = FUSEBOX__V1__ROLLBACK_ROW__INIT;
	pb_rbrow *v = arena_take(a, n * sizeof(*v));
	pb_rbrow **p = arena_take(a, n * sizeof(*p));

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct fbx_rb_row *x = &rows[i];
		if (!cstr_ok(x->device, sizeof(x->device)) ||
		    !cstr_ok(x->detail, sizeof(x->detail)))
			return FBX_EINVALID;
		v[i] = rinit;
		v[i].command_id = x->command_id;
		v[i].delivery_id = x->delivery_id;
		v[i].device = (char *)x->device;
		v[i].type = (Fusebox__V1__CommandType)x->type;
		v[i].state = (Fusebox__V1__DeliveryState)x->state;
		v[i].action = (Fusebox__V1__RollbackAction)x->action;
		v[i].comp_type = (Fusebox__V1__CommandType)x->comp_type;
		v[i].detail = (char *)x->detail;
		p[i] = &v[i];
	}
	*out = n > 0 ? p : NULL;
	return FBX_OK;
}

static int
rbplan_out(struct arena *a, const struct fbx_rb_plan *pl, pb_rbplan *o,
    pb_actcount *act, pb_actcount **actp)
{
	static const pb_rbpart pinit = FUSEBOX__V1__ROLLBACK_ORG_PART__INIT;
	pb_rbrow **p = NULL, **bo = NULL;
	pb_rbpart *pv = arena_take(a, pl->norgs * sizeof(*pv));
	pb_rbpart **pp = arena_take(a, pl->norgs * sizeof(*pp));
	pb_actcount *pa = arena_take(a,
	    pl->norgs * FBX_RB_COUNT * sizeof(*pa));
	pb_actcount **pap = arena_take(a,
	    pl->norgs * FBX_RB_COUNT * sizeof(*pap));
	int k, rv;

	if (pv == NULL || pp == NULL || pa == NULL || pap == NULL)
		return FBX_ENOMEM;
	k = rbacts_out(pl->per_action, act, actp);
	if (k < 0)
		return FBX_EINVALID;
	rv = rbrows_out(a, pl->rows, pl->nrows, &p);
	if (rv == FBX_OK)
		rv = rbrows_out(a, pl->bo_rows, pl->nbo_rows, &bo);
	if (rv != FBX_OK)
		return rv;
	if (!cstr_ok(pl->next_org, sizeof(pl->next_org)))
		return FBX_EINVALID;
	for (size_t i = 0; i < pl->norgs; i++) {
		const struct fbx_rb_org *x = &pl->orgs[i];
		int n = rbacts_out(x->per_action, pa + i * FBX_RB_COUNT,
		    pap + i * FBX_RB_COUNT);
		if (n < 0 || !cstr_ok(x->org, sizeof(x->org)))
			return FBX_EINVALID;
		pv[i] = pinit;
		pv[i].org = (char *)x->org;
		pv[i].commands = x->commands;
		pv[i].n_per_action = (size_t)n;
		pv[i].per_action = n > 0 ? pap + i * FBX_RB_COUNT : NULL;
		pv[i].before_onset = x->before_onset;
		pv[i].before_onset_deliveries = x->before_onset_deliveries;
		pv[i].comp_commands = x->comp_commands;
		pp[i] = &pv[i];
	}
	o->commands = pl->commands;
	o->n_per_action = (size_t)k;
	o->per_action = k > 0 ? actp : NULL;
	o->n_rows = pl->nrows;
	o->rows = p;
	o->before_onset = pl->before_onset;
	o->before_onset_deliveries = pl->before_onset_deliveries;
	o->n_before_onset_rows = pl->nbo_rows;
	o->before_onset_rows = bo;
	o->onset_ms = pl->onset_ms;
	o->since_ms = pl->since_ms;
	o->until_ms = pl->until_ms;
	o->global = pl->global != 0;
	o->next_org = (char *)pl->next_org;
	o->n_orgs = pl->norgs;
	o->orgs = pl->norgs > 0 ? pp : NULL;
	o->n_comp_ids = pl->ncomp;
	o->comp_ids = pl->ncomp > 0 ? pl->comp_ids : NULL;
	o->rollback_id = pl->rollback_id;
	o->executed = pl->executed != 0;
	o->next_cursor = pl->next_cursor;
	o->last_command_id = pl->last_command_id;
	o->looked_at = pl->looked_at;
	o->later_commands = pl->later_commands;
	return FBX_OK;
}

/* audit_out fills o from the audit reply of rep. */
static int
audit_out(struct arena *a, const struct fbx_console_rep *rep,
    pb_audlist *o)
{
	static const pb_audrec init = FUSEBOX__V1__AUDIT_RECORD__INIT;
	size_t i, n = rep->u.audit.n;
	pb_audrec *v = arena_take(a, n * sizeof(*v));
	pb_audrec **p = arena_take(a, n * sizeof(*p));

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_audit_rec *x = &rep->u.audit.r[i];
		if (!cstr_ok(x->org, sizeof(x->org)) ||
		    !cstr_ok(x->actor, sizeof(x->actor)) ||
		    !cstr_ok(x->action, sizeof(x->action)) ||
		    !cstr_ok(x->note, sizeof(x->note)) ||
		    !cstr_ok(x->params, sizeof(x->params)) ||
		    !cstr_ok(x->hash, sizeof(x->hash)) ||
		    !cstr_ok(x->prev, sizeof(x->prev)))
			return FBX_EINVALID;
		v[i] = init;
		v[i].seq = x->seq;
		v[i].at_ms = x->at_ms;
		v[i].org = (char *)x->org;
		v[i].actor = (char *)x->actor;
		v[i].action = (char *)x->action;
		v[i].note = (char *)x->note;
		v[i].params = (char *)x->params;
		v[i].hash = (char *)x->hash;
		v[i].prev = (char *)x->prev;
		p[i] = &v[i];
	}
	o->records = n > 0 ? p : NULL;
	o->n_records = n;
	o->next_after = rep->u.audit.next_after;
	return FBX_OK;
}

/* orgs_out fills o from the organisation list of rep. */
static int
orgs_out(struct arena *a, const struct fbx_console_rep *rep, pb_orglist *o)
{
	static const pb_orginfo init = FUSEBOX__V1__ORG_INFO__INIT;
	size_t i, n = rep->u.orgs.n;
	pb_orginfo *v = arena_take(a, n * sizeof(*v));
	pb_orginfo **p = arena_take(a, n * sizeof(*p));

	if (v == NULL || p == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		if (!cstr_ok(rep->u.orgs.orgs[i], sizeof(fbx_id)))
			return FBX_EINVALID;
		v[i] = init;
		v[i].org = (char *)rep->u.orgs.orgs[i];
		v[i].devices = rep->u.orgs.devices[i];
		p[i] = &v[i];
	}
	o->orgs = n > 0 ? p : NULL;
	o->n_orgs = n;
	return FBX_OK;
}

/* certs_out fills o from the certificate list of rep. */
static int
certs_out(struct arena *a, const struct fbx_console_rep *rep, pb_certrep *o)
{
	static const pb_certinfo init = FUSEBOX__V1__CERT_INFO__INIT;
	size_t i, j, n = rep->u.cert.n;
	pb_certinfo *v = arena_take(a, n * sizeof(*v));
	pb_certinfo **p = arena_take(a, n * sizeof(*p));
	char **rs = arena_take(a, n * FBX_CERT_REASONS_MAX * sizeof(*rs));

	if (v == NULL || p == NULL || rs == NULL)
		return FBX_ENOMEM;
	for (i = 0; i < n; i++) {
		const struct fbx_cert_info *x = &rep->u.cert.c[i];
		if (!cstr_ok(x->name, sizeof(x->name)) ||
		    !cstr_ok(x->subject, sizeof(x->subject)) ||
		    !cstr_ok(x->issuer, sizeof(x->issuer)) ||
		    !cstr_ok(x->added_by, sizeof(x->added_by)) ||
		    !cstr_ok(x->sha256, sizeof(x->sha256)) ||
		    x->nreasons > FBX_CERT_REASONS_MAX)
			return FBX_EINVALID;
		v[i] = init;
		v[i].name = (char *)x->name;
		v[i].subject = (char *)x->subject;
		v[i].issuer = (char *)x->issuer;
		v[i].not_before_ms = x->not_before_ms;
		v[i].not_after_ms = x->not_after_ms;
		v[i].days_left = x->days_left;
		for (j = 0; j < x->nreasons; j++) {
			if (!cstr_ok(x->reasons[j], sizeof(fbx_id)))
				return FBX_EINVALID;
			rs[i * FBX_CERT_REASONS_MAX + j] =
			    (char *)x->reasons[j];
		}
		v[i].reasons = &rs[i * FBX_CERT_REASONS_MAX];
		v[i].n_reasons = x->nreasons;
		v[i].trip_before_seconds = x->trip_before_s;
		v[i].state = (Fusebox__V1__CertState)x->state;
		v[i].alerts_sent = x->alerts_sent;
		v[i].tripped_ms = x->tripped_ms;
		v[i].added_by = (char *)x->added_by;
		v[i].added_ms = x->added_ms;
		v[i].sha256 = (char *)x->sha256;
		p[i] = &v[i];
	}
	o->certs = n > 0 ? p : NULL;
	o->n_certs = n;
	return FBX_OK;
}

/* rep_size checks a reply's counts and sizes the arena for its arrays. */
static int
rep_size(const struct fbx_console_rep *rep, size_t *sz, size_t *nh)
{
	size_t i;
	int rv;

	*sz = 0;
	*nh = 0;
	switch (rep->kind) {
	case FBX_CREQ_GET_COMMAND:
		if (rep->u.command.ndlv > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.command.ndlv > 0 && rep->u.command.dlv == NULL)
			return FBX_EINVALID;
		rv = outcomes_size(rep->u.command.dlv, rep->u.command.ndlv,
		    sz);
		if (rv != FBX_OK)
			return rv;
		for (i = 0; i < rep->u.command.ndlv; i++)
			*nh += rep->u.command.dlv[i].nhist;
		*sz += cmdinfo_size(&rep->u.command.info, 1);
		return FBX_OK;
	case FBX_CREQ_LIST_COMMANDS:
	case FBX_CREQ_LIST_HELD:
		if (rep->u.commands.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.commands.n > 0 && rep->u.commands.cmds == NULL)
			return FBX_EINVALID;
		*sz = cmdinfo_size(rep->u.commands.cmds, rep->u.commands.n);
		return FBX_OK;
	case FBX_CREQ_SUBMIT: {
		const struct fbx_dryrun *d = &rep->u.submit.dryrun;
		if (!rep->u.submit.dry_run)
			return FBX_OK;
		if (d->ngroups > FBX_PAGE_MAX || d->nwaves > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if ((d->ngroups > 0 && d->groups == NULL) ||
		    (d->nwaves > 0 && d->waves == NULL))
			return FBX_EINVALID;
		*sz = grpcounts_size(d->ngroups);
		return FBX_OK;
	}
	case FBX_CREQ_BREAKER:
		if (rep->u.breaker.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.breaker.n > 0 && rep->u.breaker.b == NULL)
			return FBX_EINVALID;
		*sz = asz(rep->u.breaker.n * sizeof(pb_brkinfo)) +
		    asz(rep->u.breaker.n * sizeof(pb_brkcfg)) +
		    asz(rep->u.breaker.n * sizeof(pb_brkinfo *));
		return FBX_OK;
	case FBX_CREQ_LIMIT:
		if (rep->u.limit.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.limit.n > 0 && rep->u.limit.l == NULL)
			return FBX_EINVALID;
		*sz = asz(rep->u.limit.n * sizeof(pb_liminfo)) +
		    asz(rep->u.limit.n * sizeof(pb_liminfo *));
		return FBX_OK;
	case FBX_CREQ_RATE:
		if (rep->u.rate.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.rate.n > 0 && rep->u.rate.r == NULL)
			return FBX_EINVALID;
		*sz = asz(rep->u.rate.n * sizeof(pb_rateinfo)) +
		    asz(rep->u.rate.n * sizeof(pb_rateinfo *));
		return FBX_OK;
	case FBX_CREQ_LIST_DEVICES:
		if (rep->u.devices.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.devices.n > 0 && rep->u.devices.devs == NULL)
			return FBX_EINVALID;
		return devices_size(rep->u.devices.devs, rep->u.devices.n, sz);
	case FBX_CREQ_LIST_GROUPS:
		if (rep->u.groups.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.groups.n > 0 && rep->u.groups.groups == NULL)
			return FBX_EINVALID;
		*sz = grpcounts_size(rep->u.groups.n);
		return FBX_OK;
	case FBX_CREQ_ROLLBACK: {
		const struct fbx_rb_plan *pl = &rep->u.rollback;
		if (pl->nrows > FBX_PAGE_MAX || pl->ncomp > CMD_IDS_MAX ||
		    pl->nbo_rows > FBX_PAGE_MAX || pl->norgs > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if ((pl->nrows > 0 && pl->rows == NULL) ||
		    (pl->ncomp > 0 && pl->comp_ids == NULL) ||
		    (pl->nbo_rows > 0 && pl->bo_rows == NULL) ||
		    (pl->norgs > 0 && pl->orgs == NULL))
			return FBX_EINVALID;
		*sz = asz(pl->nrows * sizeof(pb_rbrow)) +
		    asz(pl->nrows * sizeof(pb_rbrow *)) +
		    asz(pl->nbo_rows * sizeof(pb_rbrow)) +
		    asz(pl->nbo_rows * sizeof(pb_rbrow *)) +
		    asz(pl->norgs * sizeof(pb_rbpart)) +
		    asz(pl->norgs * sizeof(pb_rbpart *)) +
		    asz(pl->norgs * FBX_RB_COUNT * sizeof(pb_actcount)) +
		    asz(pl->norgs * FBX_RB_COUNT * sizeof(pb_actcount *));
		return FBX_OK;
	}
	case FBX_CREQ_EXPORT:
		if (rep->u.export_.len > JSONL_MAX)
			return FBX_ETOOBIG;
		if (rep->u.export_.len > 0 && rep->u.export_.jsonl == NULL)
			return FBX_EINVALID;
		return FBX_OK;
	case FBX_CREQ_AUDIT_LIST:
		if (rep->u.audit.n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (rep->u.audit.n > 0 && rep->u.audit.r == NULL)
			return FBX_EINVALID;
		*sz = asz(rep->u.audit.n * sizeof(pb_audrec)) +
		    asz(rep->u.audit.n * sizeof(pb_audrec *));
		return FBX_OK;
	case FBX_CREQ_LIST_ORGS:
		if (rep->u.orgs.n > ORGS_MAX)
			return FBX_ETOOBIG;
		if (rep->u.orgs.n > 0 &&
		    (rep->u.orgs.orgs == NULL || rep->u.orgs.devices == NULL))
			return FBX_EINVALID;
		*sz = asz(rep->u.orgs.n * sizeof(pb_orginfo)) +
		    asz(rep->u.orgs.n * sizeof(pb_orginfo *));
		return FBX_OK;
	case FBX_CREQ_CERT:
		if (rep->u.cert.n > FBX_CERTS_MAX)
			return FBX_ETOOBIG;
		if (rep->u.cert.n > 0 && rep->u.cert.c == NULL)
			return FBX_EINVALID;
		*sz = asz(rep->u.cert.n * sizeof(pb_certinfo)) +
		    asz(rep->u.cert.n * sizeof(pb_certinfo *)) +
		    asz(rep->u.cert.n * FBX_CERT_REASONS_MAX * sizeof(char *));
		return FBX_OK;
	case FBX_CREQ_PRINCIPAL:
		if (rep->u.principal.len > FBX_PRINCIPAL_JSONL_MAX)
			return FBX_ETOOBIG;
		if (rep->u.principal.len > 0 &&
		    (rep->u.principal.jsonl == NULL ||
		        strlen(rep->u.principal.jsonl) != rep->u.principal.len))
			return FBX_EINVALID;
		return FBX_OK;
	case FBX_CREQ_FLEET:
		if (rep->u.fleet.nos > FBX_FLEET_OS_MAX ||
		    rep->u.fleet.nrules > FBX_FLEET_RULES_MAX ||
		    rep->u.fleet.nout >= FBX_CMD_TYPE_COUNT)
			return FBX_ETOOBIG;
		return FBX_OK;
	default:
		return FBX_OK;
	}
}

/* submit_fill - a submit reply's own fields (both encoders below).
 * @return FBX_OK, or FBX_EINVALID for an unterminated held_by */
static int
submit_fill(const struct fbx_console_rep *rep, pb_submitres *submit)
{
	if (!cstr_ok(rep->u.submit.held_by, sizeof(rep->u.submit.held_by)))
		return FBX_EINVALID;
	submit->command_id = rep->u.submit.command_id;
	submit->duplicate = rep->u.submit.duplicate != 0;
	submit->device_count = rep->u.submit.device_count;
	submit->state = (Fusebox__V1__CommandState)rep->u.submit.state;
	submit->held_by = (char *)rep->u.submit.held_by;
	return FBX_OK;
}

/* submit_rep_out - the reply to a submit that is not a dry run: the
 * reply of every accepted command, built with only the messages it has
 * (rep_out below initialises every reply's, a tenth of a submit's
 * encoding) */
static int
submit_rep_out(const struct fbx_console_rep *rep, uint8_t **buf, size_t *len)
{
	pb_crep m = FUSEBOX__V1__CONSOLE_REPLY__INIT;
	pb_submitres submit = FUSEBOX__V1__SUBMIT_RESULT__INIT;

	if (submit_fill(rep, &submit) != FBX_OK)
		return FBX_EINVALID;
	m.version = FBX_PROTOCOL_VERSION;
	m.request_id = rep->request_id;
	m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_SUBMIT;
	m.submit = &submit;
	return pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);
}

static int rep_out(
    const struct fbx_console_rep *rep, uint8_t **buf, size_t *len);

int
fbx_console_rep_encode(
    const struct fbx_console_rep *rep, uint8_t **buf, size_t *len)
{
	if (rep == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	if (rep->err == FBX_OK && rep->kind == FBX_CREQ_SUBMIT &&
	    !rep->u.submit.dry_run)
		return submit_rep_out(rep, buf, len);
	return rep_out(rep, buf, len);
}

static int
rep_out(const struct fbx_console_rep *rep, uint8_t **buf, size_t *len)
{
	pb_crep m = FUSEBOX__V1__CONSOLE_REPLY__INIT;
	pb_error err = FUSEBOX__V1__ERROR__INIT;
	pb_submitres submit = FUSEBOX__V1__SUBMIT_RESULT__INIT;
	pb_cmdpage page = FUSEBOX__V1__COMMAND_PAGE__INIT;
	pb_cmdlist list = FUSEBOX__V1__COMMAND_LIST__INIT;
	pb_enrollres enroll = FUSEBOX__V1__ENROLL_RESULT__INIT;
	pb_removeres remove = FUSEBOX__V1__REMOVE_RESULT__INIT;
	pb_devlist devs = FUSEBOX__V1__DEVICE_LIST__INIT;
	pb_grplist groups = FUSEBOX__V1__GROUP_LIST__INIT;
	pb_stats pong = FUSEBOX__V1__ENGINE_STATS__INIT;
	pb_dryrun dry = FUSEBOX__V1__DRY_RUN__INIT;
	pb_platcount plat[FBX_PLATFORM_COUNT];
	pb_platcount *platp[FBX_PLATFORM_COUNT];
	pb_brkrep brk = FUSEBOX__V1__BREAKER_REPLY__INIT;
	pb_limrep lim = FUSEBOX__V1__LIMIT_REPLY__INIT;
	pb_raterep rate = FUSEBOX__V1__RATE_REPLY__INIT;
	pb_apprrep appr = FUSEBOX__V1__APPROVE_REPLY__INIT;
	pb_rorep ro = FUSEBOX__V1__ROLLOUT_REPLY__INIT;
	pb_plan plan;
	char *plan_groups[FBX_ROLLOUT_GROUPS_MAX];
	pb_rostatus rost;
	pb_rbplan rbp = FUSEBOX__V1__ROLLBACK_PLAN__INIT;
	pb_actcount act[FBX_RB_COUNT];
	pb_actcount *actp[FBX_RB_COUNT];
	pb_rpres rpres = FUSEBOX__V1__REPLAY_RESULT__INIT;
	pb_exppage expp = FUSEBOX__V1__EXPORT_PAGE__INIT;
	pb_audlist audl = FUSEBOX__V1__AUDIT_LIST__INIT;
	pb_audvres audv = FUSEBOX__V1__AUDIT_VERIFY_RESULT__INIT;
	pb_orglist orgl = FUSEBOX__V1__ORG_LIST__INIT;
	pb_certrep certr = FUSEBOX__V1__CERT_REPLY__INIT;
	pb_prirep prir = FUSEBOX__V1__PRINCIPAL_REPLY__INIT;
	pb_fleetrep fleetr = FUSEBOX__V1__FLEET_REPORT__INIT;
	pb_vercount vc[FBX_FLEET_OS_MAX], *vcp[FBX_FLEET_OS_MAX];
	pb_fleetrule fr[FBX_FLEET_RULES_MAX], *frp[FBX_FLEET_RULES_MAX];
	pb_typeout to[FBX_CMD_TYPE_COUNT], *top[FBX_CMD_TYPE_COUNT];
	pb_rover rover = FUSEBOX__V1__ROLLOUT_VERSION__INIT;
	uint32_t hours[FBX_FLEET_BUCKETS];
	struct arena a = { NULL, 0, 0 };
	pb_cmdinfo **info = NULL;
	size_t i, sz, nh;
	int rv;

	if (rep == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	m.version = FBX_PROTOCOL_VERSION;
	m.request_id = rep->request_id;
	if (rep->err != FBX_OK) {
		if (rep->err < 0 ||
		    !cstr_ok(rep->errmsg, sizeof(rep->errmsg)) ||
		    !cstr_ok(rep->approval_token, sizeof(rep->approval_token)) ||
		    !cstr_ok(rep->owner_node, sizeof(rep->owner_node)) ||
		    !cstr_ok(rep->owner_endpoint, sizeof(rep->owner_endpoint)))
			return FBX_EINVALID;
		err.code = (uint32_t)rep->err;
		err.name = (char *)fbx_errname(rep->err);
		err.message = (char *)rep->errmsg;
		err.approval_token = (char *)rep->approval_token;
		err.limit_value = rep->limit_value;
		err.limit_count = rep->limit_count;
		err.owner_node = (char *)rep->owner_node;
		err.owner_endpoint = (char *)rep->owner_endpoint;
		m.error = &err;
		return pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);
	}
	rv = rep_size(rep, &sz, &nh);
	if (rv != FBX_OK)
		return rv;
	rv = arena_init(&a, sz);
	if (rv != FBX_OK)
		return rv;

	switch (rep->kind) {
	case FBX_CREQ_SUBMIT:
		rv = submit_fill(rep, &submit);
		if (rv != FBX_OK)
			goto out;
		if (rep->u.submit.dry_run) {
			rv = dryrun_out(&a, &rep->u.submit.dryrun, &dry, plat,
			    platp);
			if (rv != FBX_OK)
				goto out;
			submit.dry_run = 1;
			submit.dry_run_report = &dry;
		}
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_SUBMIT;
		m.submit = &submit;
		break;
	case FBX_CREQ_GET_COMMAND:
		rv = cmdinfo_out(&a, &rep->u.command.info, 1, &info);
		if (rv != FBX_OK)
			goto out;
		page.info = info[0];
		rv = outcomes_out(&a, rep->u.command.dlv, rep->u.command.ndlv,
		    nh, &page.deliveries);
		if (rv != FBX_OK)
			goto out;
		page.n_deliveries = rep->u.command.ndlv;
		page.next_after = rep->u.command.next_after;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMAND;
		m.command = &page;
		break;
	case FBX_CREQ_LIST_COMMANDS:
		rv = cmdinfo_out(&a, rep->u.commands.cmds, rep->u.commands.n,
		    &list.commands);
		if (rv != FBX_OK)
			goto out;
		list.n_commands = rep->u.commands.n;
		list.next_after = rep->u.commands.next_after;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_COMMANDS;
		m.commands = &list;
		break;
	case FBX_CREQ_LIST_HELD:
		rv = cmdinfo_out(&a, rep->u.commands.cmds, rep->u.commands.n,
		    &list.commands);
		if (rv != FBX_OK)
			goto out;
		list.n_commands = rep->u.commands.n;
		list.next_after = rep->u.commands.next_after;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIST_HELD;
		m.list_held = &list;
		break;
	case FBX_CREQ_BREAKER:
		rv = breakers_out(&a, rep, &brk);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_BREAKER;
		m.breaker = &brk;
		break;
	case FBX_CREQ_LIMIT: {
		static const pb_liminfo linit = FUSEBOX__V1__LIMIT_INFO__INIT;
		size_t n = rep->u.limit.n;
		pb_liminfo *l = arena_take(&a, n * sizeof(*l));
		lim.limits = arena_take(&a, n * sizeof(*lim.limits));
		if (l == NULL || lim.limits == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fbx_limit_info *x = &rep->u.limit.l[i];
			if (!cstr_ok(x->org, sizeof(x->org))) {
				rv = FBX_EINVALID;
				goto out;
			}
			l[i] = linit;
			l[i].org = (char *)x->org;
			l[i].type = (Fusebox__V1__CommandType)x->type;
			l[i].max_count = x->max_count;
			l[i].max_share_ppm = x->max_share_ppm;
			l[i].window_seconds = x->window_s;
			l[i].used = x->used;
			lim.limits[i] = &l[i];
		}
		lim.n_limits = n;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_LIMIT;
		m.limit = &lim;
		break;
	}
	case FBX_CREQ_RATE: {
		static const pb_rateinfo rinit = FUSEBOX__V1__RATE_INFO__INIT;
		size_t n = rep->u.rate.n;
		pb_rateinfo *r = arena_take(&a, n * sizeof(*r));
		rate.rates = arena_take(&a, n * sizeof(*rate.rates));
		if (r == NULL || rate.rates == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fbx_rate_info *x = &rep->u.rate.r[i];
			if (!cstr_ok(x->org, sizeof(x->org))) {
				rv = FBX_EINVALID;
				goto out;
			}
			r[i] = rinit;
			r[i].org = (char *)x->org;
			r[i].rate_per_second = x->rate_per_s;
			r[i].burst = x->burst;
			r[i].max_inflight = x->max_inflight;
			r[i].inflight = x->inflight;
			rate.rates[i] = &r[i];
		}
		rate.n_rates = n;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_RATE;
		m.rate = &rate;
		break;
	}
	case FBX_CREQ_APPROVE:
		if (!cstr_ok(rep->u.approve.token, sizeof(fbx_id)) ||
		    !cstr_ok(rep->u.approve.approver, sizeof(fbx_id)) ||
		    !cstr_ok(rep->u.approve.submitter, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		appr.token = (char *)rep->u.approve.token;
		appr.approver = (char *)rep->u.approve.approver;
		appr.submitter = (char *)rep->u.approve.submitter;
		appr.expires_ms = rep->u.approve.expires_ms;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_APPROVE;
		m.approve = &appr;
		break;
	case FBX_CREQ_ROLLOUT:
		/* Plan and status always go out: a rollout reply is about
		 * them, and an absent one decodes as zero anyway. */
		rv = plan_out(&rep->u.rollout.plan, &plan, plan_groups);
		if (rv == FBX_OK)
			rv = status_out(&rep->u.rollout.st, &rost);
		if (rv != FBX_OK)
			goto out;
		ro.command_id = rep->u.rollout.command_id;
		ro.plan = &plan;
		ro.status = &rost;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLOUT;
		m.rollout = &ro;
		break;
	case FBX_CREQ_ENROLL:
		enroll.created = rep->u.enroll.created;
		enroll.updated = rep->u.enroll.updated;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ENROLL;
		m.enroll = &enroll;
		break;
	case FBX_CREQ_REMOVE:
		remove.removed = rep->u.remove.removed;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_REMOVE;
		m.remove = &remove;
		break;
	case FBX_CREQ_LIST_DEVICES:
		if (!cstr_ok(rep->u.devices.next_after, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		rv = devices_out(&a, rep->u.devices.devs, rep->u.devices.n,
		    &devs.devices);
		if (rv != FBX_OK)
			goto out;
		devs.n_devices = rep->u.devices.n;
		devs.next_after = (char *)rep->u.devices.next_after;
		devs.total = rep->u.devices.total;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_DEVICES;
		m.devices = &devs;
		break;
	case FBX_CREQ_LIST_GROUPS:
		rv = grpcounts_out(&a, rep->u.groups.groups, rep->u.groups.n,
		    &groups.groups);
		if (rv != FBX_OK)
			goto out;
		groups.n_groups = rep->u.groups.n;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_GROUPS;
		m.groups = &groups;
		break;
	case FBX_CREQ_PING: {
		const struct fbx_engine_stats *s = &rep->u.pong;
		if (!cstr_ok(s->version, sizeof(s->version))) {
			rv = FBX_EINVALID;
			goto out;
		}
		pong.version = (char *)s->version;
		pong.uptime_ms = s->uptime_ms;
		pong.gateways = s->gateways;
		pong.commands_active = s->commands_active;
		pong.deliveries_queued = s->deliveries_queued;
		pong.deliveries_inflight = s->deliveries_inflight;
		pong.deliveries_pending = s->deliveries_pending;
		pong.commits = s->commits;
		pong.store_bytes = s->store_bytes;
		pong.turn_max_us = s->turn_max_us;
		pong.turns_failed = s->turns_failed;
		pong.degraded = s->degraded != 0;
		pong.readers_used = s->readers_used;
		pong.auth_refused = s->auth_refused;
		pong.results_forged = s->results_forged;
		pong.handshakes_refused = s->handshakes_refused;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_PONG;
		m.pong = &pong;
		break;
	}
	case FBX_CREQ_ROLLBACK:
		rv = rbplan_out(&a, &rep->u.rollback, &rbp, act, actp);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ROLLBACK;
		m.rollback = &rbp;
		break;
	case FBX_CREQ_REPLAY:
		rpres.matched = rep->u.replay.matched;
		rpres.resent = rep->u.replay.resent;
		rpres.skipped_terminal = rep->u.replay.skipped_terminal;
		rpres.next_cursor = rep->u.replay.next_cursor;
		rpres.last_command_id = rep->u.replay.last_command_id;
		rpres.commands = rep->u.replay.commands;
		rpres.looked_at = rep->u.replay.looked_at;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_REPLAY;
		m.replay = &rpres;
		break;
	case FBX_CREQ_EXPORT:
		expp.jsonl.len = rep->u.export_.len;
		expp.jsonl.data = (uint8_t *)rep->u.export_.jsonl;
		expp.next_cursor = rep->u.export_.next_cursor;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_EXPORT;
		m.export = &expp;
		break;
	case FBX_CREQ_AUDIT_LIST:
		rv = audit_out(&a, rep, &audl);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_AUDIT;
		m.audit = &audl;
		break;
	case FBX_CREQ_AUDIT_VERIFY:
		if (!cstr_ok(rep->u.verify.why, sizeof(rep->u.verify.why))) {
			rv = FBX_EINVALID;
			goto out;
		}
		if (!cstr_ok(rep->u.verify.verified_hash,
		        sizeof(rep->u.verify.verified_hash))) {
			rv = FBX_EINVALID;
			goto out;
		}
		audv.records = rep->u.verify.records;
		audv.broken_at = rep->u.verify.broken_at;
		audv.why = (char *)rep->u.verify.why;
		audv.verified_seq = rep->u.verify.verified_seq;
		audv.verified_hash = (char *)rep->u.verify.verified_hash;
		audv.complete = rep->u.verify.complete != 0;
		audv.head_seq = rep->u.verify.head_seq;
		audv.anchor_seq = rep->u.verify.anchor_seq;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_VERIFY;
		m.verify = &audv;
		break;
	case FBX_CREQ_LIST_ORGS:
		rv = orgs_out(&a, rep, &orgl);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_ORGS;
		m.orgs = &orgl;
		break;
	case FBX_CREQ_CERT:
		rv = certs_out(&a, rep, &certr);
		if (rv != FBX_OK)
			goto out;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_CERT;
		m.cert = &certr;
		break;
	case FBX_CREQ_PRINCIPAL:
		prir.jsonl = rep->u.principal.len > 0 ? rep->u.principal.jsonl
		                                      : (char *)"";
		prir.count = rep->u.principal.count;
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_PRINCIPAL;
		m.principal = &prir;
		break;
	case FBX_CREQ_FLEET: {
		const struct fbx_fleet_report *f = &rep->u.fleet;
		static const pb_vercount vinit = FUSEBOX__V1__VERSION_COUNT__INIT;
		static const pb_fleetrule rinit = FUSEBOX__V1__FLEET_RULE__INIT;
		fleetr.as_of_ms = f->as_of_ms;
		fleetr.devices = f->devices;
		memcpy(hours, f->offline_hours, sizeof(hours));
		fleetr.n_offline_hours = FBX_FLEET_BUCKETS;
		fleetr.offline_hours = hours;
		for (i = 0; i < f->nos; i++) {
			if (!cstr_ok(f->os[i].version, sizeof(f->os[i].version))) {
				rv = FBX_EINVALID;
				goto out;
			}
			vc[i] = vinit;
			vc[i].version = (char *)f->os[i].version;
			vc[i].count = f->os[i].count;
			vcp[i] = &vc[i];
		}
		fleetr.n_os_versions = f->nos;
		fleetr.os_versions = f->nos > 0 ? vcp : NULL;
		fleetr.os_other = f->os_other;
		for (i = 0; i < f->nrules; i++) {
			fr[i] = rinit;
			fr[i].stale_minutes = f->rules[i].stale_minutes;
			fr[i].repeat_minutes = f->rules[i].repeat_minutes;
			fr[i].stale = f->rules[i].stale;
			fr[i].last_alert_ms = f->rules[i].last_alert_ms;
			frp[i] = &fr[i];
		}
		fleetr.n_rules = f->nrules;
		fleetr.rules = f->nrules > 0 ? frp : NULL;
		for (i = 0; i < f->nout; i++) {
			static const pb_typeout tinit =
			    FUSEBOX__V1__TYPE_OUTCOMES__INIT;
			to[i] = tinit;
			to[i].type = (Fusebox__V1__CommandType)f->out[i].type;
			to[i].silent = f->out[i].silent != 0;
			to[i].succeeded_hour = f->out[i].ok_hour;
			to[i].failed_hour = f->out[i].failed_hour;
			to[i].expired_hour = f->out[i].expired_hour;
			to[i].succeeded_day = f->out[i].ok_day;
			to[i].failed_day = f->out[i].failed_day;
			to[i].expired_day = f->out[i].expired_day;
			top[i] = &to[i];
		}
		fleetr.n_outcomes = f->nout;
		fleetr.outcomes = f->nout > 0 ? top : NULL;
		if (!cstr_ok(f->group, sizeof(f->group)) ||
		    !cstr_ok(f->next_after, sizeof(f->next_after))) {
			rv = FBX_EINVALID;
			goto out;
		}
		fleetr.group = (char *)f->group;
		fleetr.next_after = (char *)f->next_after;
		if (f->version.set) {
			if (!cstr_ok(f->version.target,
			        sizeof(f->version.target))) {
				rv = FBX_EINVALID;
				goto out;
			}
			rover.command_id = f->version.command_id;
			rover.target = (char *)f->version.target;
			rover.devices = f->version.devices;
			rover.at_target = f->version.at_target;
			rover.other = f->version.other;
			rover.unknown = f->version.unknown;
			rover.next_after = f->version.next_after;
			fleetr.version = &rover;
		}
		m.result_case = FUSEBOX__V1__CONSOLE_REPLY__RESULT_FLEET;
		m.fleet = &fleetr;
		break;
	}
	default:
		rv = FBX_EINVALID;
		goto out;
	}
	rv = pack(&m.base, FBX_CONSOLE_MSG_MAX, buf, len);

out:
	free(a.p);
	return rv;
}

/* ======================= gateway -> engine ============================= */

static int
gw_body_in(const pb_gwmsg *pb, struct fbx_gw_msg *m, struct wctx *w)
{
	const char *what;
	size_t i, n;
	int rv;

	switch (pb->body_case) {
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_HELLO: {
		const pb_hello *h = pb->hello;
		rv = id_copy(m->u.hello.gateway_id, h->gateway_id, 1, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "hello.gateway_id: %s", what);
		n = h->n_orgs;
		if (n == 0)
			return fail(w, FBX_EINVALID, "hello.orgs: empty");
		if (n > FBX_PAGE_MAX)
			return fail(w, FBX_ETOOBIG,
			    "hello.orgs: %zu orgs, at most %d", n,
			    FBX_PAGE_MAX);
		m->u.hello.orgs = malloc(n * sizeof(*m->u.hello.orgs));
		if (m->u.hello.orgs == NULL)
			return FBX_ENOMEM;
		m->u.hello.norgs = n;
		for (i = 0; i < n; i++) {
			if (strcmp(h->orgs[i], "*") == 0) {
				strcpy(m->u.hello.orgs[i], "*");
				continue;
			}
			rv = id_copy(m->u.hello.orgs[i], h->orgs[i], 1, &what);
			if (rv != FBX_OK)
				return fail(w, rv, "hello.orgs[%zu]: %s", i,
				    what);
		}
		m->u.hello.window = h->window;
		return FBX_OK;
	}
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_CREDIT:
		m->u.credit.window = pb->credit->window;
		return FBX_OK;
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_RESULTS: {
		const pb_results *rs = pb->results;
		n = rs->n_results;
		if (n > FBX_BATCH_MAX)
			return fail(w, FBX_ETOOBIG,
			    "results.results: %zu results, at most %d", n,
			    FBX_BATCH_MAX);
		m->u.results.batch_id = rs->batch_id;
		if (n == 0)
			return FBX_OK;
		m->u.results.r = malloc(n * sizeof(*m->u.results.r));
		if (m->u.results.r == NULL)
			return FBX_ENOMEM;
		m->u.results.n = n;
		for (i = 0; i < n; i++) {
			const pb_result *x = rs->results[i];
			struct fbx_result_rec *o = &m->u.results.r[i];
			if (x->delivery_id == 0)
				return fail(w, FBX_EINVALID,
				    "results.results[%zu].delivery_id: "
				    "missing",
				    i);
			if (!in_range((int)x->status, 1, FBX_R_COUNT))
				return fail(w, FBX_EINVALID,
				    "results.results[%zu].status: unknown "
				    "value %d",
				    i, (int)x->status);
			if (x->code > UINT16_MAX)
				return fail(w, FBX_EINVALID,
				    "results.results[%zu].code: above 65535",
				    i);
			o->delivery_id = x->delivery_id;
			o->status = (uint8_t)x->status;
			o->code = (uint16_t)x->code;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_CHECKINS: {
		const pb_checkins *cs = pb->checkins;
		n = cs->n_checkins;
		if (n > FBX_BATCH_MAX)
			return fail(w, FBX_ETOOBIG,
			    "checkins.checkins: %zu check-ins, at most %d", n,
			    FBX_BATCH_MAX);
		m->u.checkins.batch_id = cs->batch_id;
		if (n == 0)
			return FBX_OK;
		m->u.checkins.c = calloc(n, sizeof(*m->u.checkins.c));
		if (m->u.checkins.c == NULL)
			return FBX_ENOMEM;
		m->u.checkins.n = n;
		for (i = 0; i < n; i++) {
			static const char pfx[] = "checkins.checkins";
			const pb_checkin *x = cs->checkins[i];
			struct fbx_checkin *o = &m->u.checkins.c[i];
			rv = id_copy(o->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fail_at(w, rv, pfx, i, "org", what);
			rv = id_copy(o->device, x->device, 1, &what);
			if (rv != FBX_OK)
				return fail_at(w, rv, pfx, i, "device", what);
			rv = text_copy(o->os_version, sizeof(o->os_version),
			    x->os_version, &what);
			if (rv != FBX_OK)
				return fail_at(w, rv, pfx, i, "os_version",
				    rv == FBX_ETOOBIG ? "longer than 32 bytes"
				                      : what);
			if (!in_range((int)x->attestation, 0,
			        FBX_ATTEST_COUNT))
				return fail_at(w, FBX_EINVALID, pfx, i,
				    "attestation", "unknown value");
			o->at_ms = x->at_ms;
			o->attestation = (uint8_t)x->attestation;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_HEARTBEAT:
		return FBX_OK;
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_BYE:
		rv = text_copy(m->u.bye.reason, sizeof(m->u.bye.reason),
		    pb->bye->reason, &what);
		if (rv != FBX_OK)
			return fail(w, rv, "bye.reason: longer than %zu bytes",
			    sizeof(m->u.bye.reason) - 1);
		return FBX_OK;
	default:
		break;
	}
	return fail(w, FBX_EINVALID, "body: missing or unknown message");
}

/* pb_skip - step over one field's value of wire type wt at *p.
 * @return 0, or -1 when the value runs past end (malformed). *len is
 * set for length-delimited values, which are not stepped over. */
static int
pb_skip(const uint8_t **p, const uint8_t *end, unsigned wt, uint64_t *len)
{
	uint64_t v;

	*len = 0;
	switch (wt) {
	case 0:
		return fbxp_varint(p, end, &v);
	case 1:
	case 5:
		if ((size_t)(end - *p) < (wt == 1 ? 8u : 4u))
			return -1;
		*p += wt == 1 ? 8 : 4;
		return 0;
	case 2:
		if (fbxp_varint(p, end, &v) != 0 || v > (uint64_t)(end - *p))
			return -1;
		*len = v;
		return 0;
	default:
		return -1;
	}
}

/* pb_field_count - how many times field `inner` occurs in the
 * length-delimited top-level field `outer` of the message in [p, end).
 * Two levels only, never recursive: a peer cannot nest its way down the
 * stack. Malformed input counts what it can: unpack rejects it after. */
static size_t
pb_field_count(const uint8_t *p, const uint8_t *end, uint32_t outer, uint32_t inner)
{
	size_t n = 0;
	uint64_t key, len;

	while (p < end && fbxp_varint(&p, end, &key) == 0) {
		const uint8_t *q, *qend;
		if ((key >> 3) == 0 || pb_skip(&p, end, key & 7, &len) != 0)
			break;
		if ((key & 7) != 2)
			continue;
		q = p;
		qend = p + len;
		p = qend;
		if ((uint32_t)(key >> 3) != outer)
			continue;
		while (q < qend && fbxp_varint(&q, qend, &key) == 0) {
			uint64_t l2;
			if ((key >> 3) == 0 || pb_skip(&q, qend, key & 7, &l2) != 0)
				break;
			q += l2;
			if ((uint32_t)(key >> 3) == inner)
				n++;
		}
	}
	return n;
}

int
fbx_gw_msg_kind(const void *buf, size_t len)
{
	const uint8_t *p = in_bytes(buf), *end = p + len;
	uint64_t key, l;

	while (p < end && fbxp_varint(&p, end, &key) == 0) {
		if (pb_skip(&p, end, key & 7, &l) != 0)
			break;
		if ((key & 7) == 2 && (key >> 3) >= FBX_GW_HELLO &&
		    (key >> 3) <= FBX_GW_BYE)
			return (int)(key >> 3);
		p += l;
	}
	return FBX_GW_NONE;
}

/* gw_prescan - refuse a batch over its cap before protobuf-c unpacks it:
 * 12 MiB of empty entries would otherwise become millions of
 * allocations. */
static int
gw_prescan(struct wctx *w, const void *buf, size_t len)
{
	const uint8_t *p = in_bytes(buf), *end = p + len;
	size_t n;

	n = pb_field_count(p, end, 12, 2); /* results.results */
	if (n > FBX_BATCH_MAX)
		return fail(w, FBX_ETOOBIG, "results: %zu entries, at most %d",
		    n, FBX_BATCH_MAX);
	n = pb_field_count(p, end, 13, 2); /* checkins.checkins */
	if (n > FBX_BATCH_MAX)
		return fail(w, FBX_ETOOBIG, "checkins: %zu entries, at most %d",
		    n, FBX_BATCH_MAX);
	n = pb_field_count(p, end, 10, 2); /* hello.orgs */
	if (n > ORGS_MAX)
		return fail(w, FBX_ETOOBIG, "hello.orgs: %zu entries, at most %d",
		    n, ORGS_MAX);
	return FBX_OK;
}

/* A RESULTS batch in its plain form is read directly
 * (fbxp_results_direct, wire_direct.c); anything else, or that one when
 * it is not taken, through protobuf-c. */
int
fbx_gw_msg_decode(const void *buf, size_t len, struct fbx_gw_msg *out,
    char *why, size_t whylen)
{
	int rv;

	if (out != NULL && len <= FBX_GATEWAY_IN_MAX && buf != NULL) {
		memset(out, 0, sizeof(*out));
		rv = fbxp_results_direct(in_bytes(buf), in_bytes(buf) + len,
		    out);
		if (rv == 1) {
			if (why != NULL && whylen > 0)
				why[0] = '\0';
			return FBX_OK;
		}
		if (rv < 0) {
			struct wctx w = { why, whylen };
			memset(out, 0, sizeof(*out));
			return fail(&w, FBX_ENOMEM, "out of memory");
		}
	}
	return fbx_gw_msg_decode_generic(buf, len, out, why, whylen);
}

int
fbx_gw_msg_decode_generic(const void *buf, size_t len,
    struct fbx_gw_msg *out, char *why, size_t whylen)
{
	struct wctx w = { why, whylen };
	struct fbx_gw_msg m;
	pb_gwmsg *pb = NULL;
	struct pb_alloc pa;
	int rv;

	memset(&m, 0, sizeof(m));
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (out == NULL)
		return fail(&w, FBX_EINVALID, "out: NULL");
	rv = check_len(&w, buf, len, FBX_GATEWAY_IN_MAX);
	if (rv != FBX_OK)
		goto out;
	rv = gw_prescan(&w, buf, len);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__gateway_message__unpack(pb_alloc_init(&pa), len,
	    in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM :
		    fail(&w, FBX_EMALFORMED, "message: not a GatewayMessage");
		goto out;
	}
	rv = check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	m.version = pb->version;
	m.kind = (int)pb->body_case;
	rv = gw_body_in(pb, &m, &w);

out:
	if (pb != NULL)
		fusebox__v1__gateway_message__free_unpacked(pb, NULL);
	if (rv != FBX_OK) {
		fbx_gw_msg_free(&m);
		memset(out, 0, sizeof(*out));
		if (rv == FBX_ENOMEM)
			fail(&w, rv, "out of memory");
		return rv;
	}
	*out = m;
	return FBX_OK;
}

void
fbx_gw_msg_free(struct fbx_gw_msg *m)
{
	if (m == NULL)
		return;
	switch (m->kind) {
	case FBX_GW_HELLO:
		free(m->u.hello.orgs);
		break;
	case FBX_GW_RESULTS:
		free(m->u.results.r);
		break;
	case FBX_GW_CHECKINS:
		free(m->u.checkins.c);
		break;
	default:
		break;
	}
	memset(m, 0, sizeof(*m));
}

static int
gw_size(const struct fbx_gw_msg *m, size_t *sz)
{
	size_t n;

	*sz = 0;
	switch (m->kind) {
	case FBX_GW_HELLO:
		n = m->u.hello.norgs;
		if (n > FBX_PAGE_MAX)
			return FBX_ETOOBIG;
		if (n > 0 && m->u.hello.orgs == NULL)
			return FBX_EINVALID;
		*sz = asz(n * sizeof(char *));
		return FBX_OK;
	case FBX_GW_RESULTS:
		n = m->u.results.n;
		if (n > FBX_BATCH_MAX)
			return FBX_ETOOBIG;
		if (n > 0 && m->u.results.r == NULL)
			return FBX_EINVALID;
		*sz = asz(n * sizeof(pb_result)) +
		    asz(n * sizeof(pb_result *));
		return FBX_OK;
	case FBX_GW_CHECKINS:
		n = m->u.checkins.n;
		if (n > FBX_BATCH_MAX)
			return FBX_ETOOBIG;
		if (n > 0 && m->u.checkins.c == NULL)
			return FBX_EINVALID;
		*sz = asz(n * sizeof(pb_checkin)) +
		    asz(n * sizeof(pb_checkin *));
		return FBX_OK;
	default:
		return FBX_OK;
	}
}

int
fbx_gw_msg_encode(const struct fbx_gw_msg *m, uint8_t **buf, size_t *len)
{
	static const pb_result rinit = FUSEBOX__V1__RESULT__INIT;
	static const pb_checkin cinit = FUSEBOX__V1__CHECKIN__INIT;
	pb_gwmsg g = FUSEBOX__V1__GATEWAY_MESSAGE__INIT;
	pb_hello hello = FUSEBOX__V1__HELLO__INIT;
	pb_credit credit = FUSEBOX__V1__CREDIT__INIT;
	pb_results results = FUSEBOX__V1__RESULTS__INIT;
	pb_checkins checkins = FUSEBOX__V1__CHECKINS__INIT;
	pb_heartbeat hb = FUSEBOX__V1__HEARTBEAT__INIT;
	pb_bye bye = FUSEBOX__V1__BYE__INIT;
	struct arena a = { NULL, 0, 0 };
	size_t i, n, sz;
	int rv;

	if (m == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	rv = gw_size(m, &sz);
	if (rv != FBX_OK)
		return rv;
	rv = arena_init(&a, sz);
	if (rv != FBX_OK)
		return rv;
	g.version = m->version != 0 ? m->version : FBX_PROTOCOL_VERSION;

	switch (m->kind) {
	case FBX_GW_HELLO:
		n = m->u.hello.norgs;
		if (!cstr_ok(m->u.hello.gateway_id, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		hello.orgs = arena_take(&a, n * sizeof(char *));
		if (hello.orgs == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (!cstr_ok(m->u.hello.orgs[i], sizeof(fbx_id))) {
				rv = FBX_EINVALID;
				goto out;
			}
			hello.orgs[i] = (char *)m->u.hello.orgs[i];
		}
		hello.n_orgs = n;
		hello.gateway_id = (char *)m->u.hello.gateway_id;
		hello.window = m->u.hello.window;
		g.body_case = FUSEBOX__V1__GATEWAY_MESSAGE__BODY_HELLO;
		g.hello = &hello;
		break;
	case FBX_GW_CREDIT:
		credit.window = m->u.credit.window;
		g.body_case = FUSEBOX__V1__GATEWAY_MESSAGE__BODY_CREDIT;
		g.credit = &credit;
		break;
	case FBX_GW_RESULTS: {
		pb_result *r;
		n = m->u.results.n;
		r = arena_take(&a, n * sizeof(*r));
		results.results = arena_take(&a, n * sizeof(pb_result *));
		if (r == NULL || results.results == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fbx_result_rec *x = &m->u.results.r[i];
			r[i] = rinit;
			r[i].delivery_id = x->delivery_id;
			r[i].status = (Fusebox__V1__ResultStatus)x->status;
			r[i].code = x->code;
			results.results[i] = &r[i];
		}
		results.n_results = n;
		results.batch_id = m->u.results.batch_id;
		g.body_case = FUSEBOX__V1__GATEWAY_MESSAGE__BODY_RESULTS;
		g.results = &results;
		break;
	}
	case FBX_GW_CHECKINS: {
		pb_checkin *c;
		n = m->u.checkins.n;
		c = arena_take(&a, n * sizeof(*c));
		checkins.checkins = arena_take(&a, n * sizeof(pb_checkin *));
		if (c == NULL || checkins.checkins == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fbx_checkin *x = &m->u.checkins.c[i];
			if (!cstr_ok(x->org, sizeof(x->org)) ||
			    !cstr_ok(x->device, sizeof(x->device)) ||
			    !cstr_ok(x->os_version, sizeof(x->os_version))) {
				rv = FBX_EINVALID;
				goto out;
			}
			c[i] = cinit;
			c[i].org = (char *)x->org;
			c[i].device = (char *)x->device;
			c[i].at_ms = x->at_ms;
			c[i].os_version = (char *)x->os_version;
			c[i].attestation =
			    (Fusebox__V1__Attestation)x->attestation;
			checkins.checkins[i] = &c[i];
		}
		checkins.n_checkins = n;
		checkins.batch_id = m->u.checkins.batch_id;
		g.body_case = FUSEBOX__V1__GATEWAY_MESSAGE__BODY_CHECKINS;
		g.checkins = &checkins;
		break;
	}
	case FBX_GW_HEARTBEAT:
		g.body_case = FUSEBOX__V1__GATEWAY_MESSAGE__BODY_HEARTBEAT;
		g.heartbeat = &hb;
		break;
	case FBX_GW_BYE:
		if (!cstr_ok(m->u.bye.reason, sizeof(m->u.bye.reason))) {
			rv = FBX_EINVALID;
			goto out;
		}
		bye.reason = (char *)m->u.bye.reason;
		g.body_case = FUSEBOX__V1__GATEWAY_MESSAGE__BODY_BYE;
		g.bye = &bye;
		break;
	default:
		rv = FBX_EINVALID;
		goto out;
	}
	rv = pack(&g.base, FBX_GATEWAY_MSG_MAX, buf, len);

out:
	free(a.p);
	return rv;
}

/* ======================= engine -> gateway ============================= */

/* dlv_in points o at the strings and payload of d: zero copy, valid while
 * the unpacked message lives (fbx_eng_msg_free). */
static int
dlv_in(const pb_delivery *d, struct fbx_dlv_out *o)
{
	if (strnlen(d->org, FBX_ID_MAX + 1) > FBX_ID_MAX ||
	    strnlen(d->device, FBX_ID_MAX + 1) > FBX_ID_MAX ||
	    d->payload.len > FBX_PAYLOAD_MAX)
		return FBX_ETOOBIG;
	if (!fbx_id_valid(d->org) || !fbx_id_valid(d->device) ||
	    !in_range((int)d->type, 1, FBX_CMD_TYPE_COUNT) ||
	    d->delivery_id == 0)
		return FBX_EINVALID;
	o->delivery_id = d->delivery_id;
	o->command_id = d->command_id;
	o->org = d->org;
	o->device = d->device;
	o->type = (uint8_t)d->type;
	o->payload = d->payload.data;
	o->payload_len = d->payload.len;
	o->expires_ms = d->expires_ms;
	o->attempt = d->attempt;
	return FBX_OK;
}

int
fbx_eng_msg_decode(const void *buf, size_t len, struct fbx_eng_msg *out)
{
	struct wctx w = { NULL, 0 };
	struct fbx_eng_msg m;
	pb_engmsg *pb = NULL;
	struct pb_alloc pa;
	const char *what;
	size_t i, n;
	int rv;

	memset(&m, 0, sizeof(m));
	if (out == NULL)
		return FBX_EINVALID;
	rv = check_len(&w, buf, len, FBX_GATEWAY_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__engine_message__unpack(pb_alloc_init(&pa), len,
	    in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM : FBX_EMALFORMED;
		goto out;
	}
	rv = check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	m.kind = (int)pb->body_case;
	switch (pb->body_case) {
	case FUSEBOX__V1__ENGINE_MESSAGE__BODY_WELCOME:
		rv = id_copy(m.u.welcome.engine_id, pb->welcome->engine_id, 1,
		    &what);
		m.u.welcome.heartbeat_ms = pb->welcome->heartbeat_ms;
		m.u.welcome.max_batch = pb->welcome->max_batch;
		break;
	case FUSEBOX__V1__ENGINE_MESSAGE__BODY_DELIVERIES:
		n = pb->deliveries->n_deliveries;
		if (n > FBX_BATCH_MAX) {
			rv = FBX_ETOOBIG;
			break;
		}
		if (n == 0)
			break;
		m.u.deliveries.d = malloc(n * sizeof(*m.u.deliveries.d));
		if (m.u.deliveries.d == NULL) {
			rv = FBX_ENOMEM;
			break;
		}
		m.u.deliveries.n = n;
		m.u.deliveries.urgent = pb->deliveries->urgent ? 1 : 0;
		for (i = 0; i < n && rv == FBX_OK; i++)
			rv = dlv_in(pb->deliveries->deliveries[i],
			    &m.u.deliveries.d[i]);
		break;
	case FUSEBOX__V1__ENGINE_MESSAGE__BODY_ACK:
		m.u.ack.batch_id = pb->ack->batch_id;
		m.u.ack.count = pb->ack->count;
		break;
	case FUSEBOX__V1__ENGINE_MESSAGE__BODY_ERROR:
		if (pb->error->code == 0 || pb->error->code > INT_MAX) {
			rv = FBX_EINVALID;
			break;
		}
		m.u.error.err = (int)pb->error->code;
		rv = text_copy(m.u.error.msg, sizeof(m.u.error.msg),
		    pb->error->message, &what);
		break;
	default:
		rv = FBX_EINVALID;
		break;
	}

out:
	if (rv != FBX_OK) {
		if (m.kind == FBX_ENG_DELIVERIES)
			free(m.u.deliveries.d);
		if (pb != NULL)
			fusebox__v1__engine_message__free_unpacked(pb, NULL);
		memset(out, 0, sizeof(*out));
		return rv;
	}
	m.priv_ = pb;
	*out = m;
	return FBX_OK;
}

void
fbx_eng_msg_free(struct fbx_eng_msg *m)
{
	if (m == NULL)
		return;
	if (m->kind == FBX_ENG_DELIVERIES)
		free(m->u.deliveries.d);
	if (m->priv_ != NULL)
		fusebox__v1__engine_message__free_unpacked(m->priv_, NULL);
	memset(m, 0, sizeof(*m));
}

/* DELIVERIES are written directly (fbxp_deliveries_direct,
 * wire_direct.c); the other kinds through protobuf-c. */
int
fbx_eng_msg_encode(const struct fbx_eng_msg *m, uint8_t **buf, size_t *len)
{
	if (m != NULL && buf != NULL && len != NULL &&
	    m->kind == FBX_ENG_DELIVERIES)
		return fbxp_deliveries_direct(m, buf, len);
	return fbx_eng_msg_encode_generic(m, buf, len);
}

int
fbx_eng_msg_encode_generic(
    const struct fbx_eng_msg *m, uint8_t **buf, size_t *len)
{
	static const pb_delivery dinit = FUSEBOX__V1__DELIVERY__INIT;
	pb_engmsg e = FUSEBOX__V1__ENGINE_MESSAGE__INIT;
	pb_welcome welcome = FUSEBOX__V1__WELCOME__INIT;
	pb_deliveries dlv = FUSEBOX__V1__DELIVERIES__INIT;
	pb_ack ack = FUSEBOX__V1__ACK__INIT;
	pb_error err = FUSEBOX__V1__ERROR__INIT;
	struct arena a = { NULL, 0, 0 };
	pb_delivery *d;
	size_t i, n;
	int rv;

	if (m == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	e.version = FBX_PROTOCOL_VERSION;
	switch (m->kind) {
	case FBX_ENG_WELCOME:
		if (!cstr_ok(m->u.welcome.engine_id, sizeof(fbx_id)))
			return FBX_EINVALID;
		welcome.engine_id = (char *)m->u.welcome.engine_id;
		welcome.heartbeat_ms = m->u.welcome.heartbeat_ms;
		welcome.max_batch = m->u.welcome.max_batch;
		e.body_case = FUSEBOX__V1__ENGINE_MESSAGE__BODY_WELCOME;
		e.welcome = &welcome;
		break;
	case FBX_ENG_DELIVERIES:
		n = m->u.deliveries.n;
		if (n > FBX_BATCH_MAX)
			return FBX_ETOOBIG;
		if (n > 0 && m->u.deliveries.d == NULL)
			return FBX_EINVALID;
		rv = arena_init(&a, asz(n * sizeof(pb_delivery)) +
		        asz(n * sizeof(pb_delivery *)));
		if (rv != FBX_OK)
			return rv;
		d = arena_take(&a, n * sizeof(*d));
		dlv.deliveries = arena_take(&a, n * sizeof(pb_delivery *));
		if (d == NULL || dlv.deliveries == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		/* Hot path: lengths only; the gateway's decoder checks the
		 * identifier alphabet. */
		for (i = 0; i < n; i++) {
			const struct fbx_dlv_out *x = &m->u.deliveries.d[i];
			if (x->org == NULL || x->device == NULL ||
			    (x->payload == NULL && x->payload_len > 0)) {
				rv = FBX_EINVALID;
				goto out;
			}
			if (strnlen(x->org, FBX_ID_MAX + 1) > FBX_ID_MAX ||
			    strnlen(x->device, FBX_ID_MAX + 1) > FBX_ID_MAX ||
			    x->payload_len > FBX_PAYLOAD_MAX) {
				rv = FBX_ETOOBIG;
				goto out;
			}
			d[i] = dinit;
			d[i].delivery_id = x->delivery_id;
			d[i].command_id = x->command_id;
			d[i].org = (char *)x->org;
			d[i].device = (char *)x->device;
			d[i].type = (Fusebox__V1__CommandType)x->type;
			d[i].payload.len = x->payload_len;
			d[i].payload.data = (uint8_t *)x->payload;
			d[i].expires_ms = x->expires_ms;
			d[i].attempt = x->attempt;
			dlv.deliveries[i] = &d[i];
		}
		dlv.n_deliveries = n;
		dlv.urgent = m->u.deliveries.urgent != 0;
		e.body_case = FUSEBOX__V1__ENGINE_MESSAGE__BODY_DELIVERIES;
		e.deliveries = &dlv;
		break;
	case FBX_ENG_ACK:
		ack.batch_id = m->u.ack.batch_id;
		ack.count = m->u.ack.count;
		e.body_case = FUSEBOX__V1__ENGINE_MESSAGE__BODY_ACK;
		e.ack = &ack;
		break;
	case FBX_ENG_ERROR:
		if (m->u.error.err <= 0 ||
		    !cstr_ok(m->u.error.msg, sizeof(m->u.error.msg)))
			return FBX_EINVALID;
		err.code = (uint32_t)m->u.error.err;
		err.name = (char *)fbx_errname(m->u.error.err);
		err.message = (char *)m->u.error.msg;
		e.body_case = FUSEBOX__V1__ENGINE_MESSAGE__BODY_ERROR;
		e.error = &err;
		break;
	default:
		return FBX_EINVALID;
	}
	rv = pack(&e.base, FBX_GATEWAY_MSG_MAX, buf, len);

out:
	free(a.p);
	return rv;
}

/* ======================= events ======================================== */

static const char *const event_names[] = { "none", "breaker_tripped",
	"breaker_reset", "breaker_would_trip", "rollout_paused",
	"rollout_resumed", "limit_rejected", "failure_spike",
	"command_settled", "cert_expiring", "devices_stale",
	"outcome_silence" };
#define EVENT_KIND_COUNT ((int)(sizeof(event_names) / sizeof(event_names[0])))
_Static_assert(EVENT_KIND_COUNT == FBX_EV_COUNT,
    "event_names must name every enum fbx_event_kind value");

const char *
fbx_event_kind_name(int kind)
{
	if (kind < 0 || kind >= EVENT_KIND_COUNT)
		return "unknown";
	return event_names[kind];
}

static const char *const cert_state_names[FBX_CST_COUNT] = { "none",
	"valid", "expiring", "tripping", "expired" };

const char *
fbx_cert_state_name(int state)
{
	if (state < 0 || state >= FBX_CST_COUNT)
		return "unknown";
	return cert_state_names[state];
}

int
fbx_event_encode(const struct fbx_event *ev, uint8_t **buf, size_t *len)
{
	pb_event e = FUSEBOX__V1__EVENT__INIT;

	if (ev == NULL || buf == NULL || len == NULL)
		return FBX_EINVALID;
	if (!in_range(ev->kind, 1, EVENT_KIND_COUNT) ||
	    !cstr_ok(ev->org, sizeof(ev->org)) ||
	    !cstr_ok(ev->reason, sizeof(ev->reason)) ||
	    !cstr_ok(ev->actor, sizeof(ev->actor)) ||
	    !cstr_ok(ev->detail, sizeof(ev->detail)))
		return FBX_EINVALID;
	e.version = FBX_PROTOCOL_VERSION;
	e.kind = (Fusebox__V1__EventKind)ev->kind;
	e.at_ms = ev->at_ms;
	e.org = (char *)ev->org;
	e.reason = (char *)ev->reason;
	e.actor = (char *)ev->actor;
	e.command_id = ev->command_id;
	e.count = ev->count;
	e.limit = ev->limit;
	e.detail = (char *)ev->detail;
	return pack(&e.base, EVENT_MSG_MAX, buf, len);
}

int
fbx_event_decode(const void *buf, size_t len, struct fbx_event *out)
{
	struct wctx w = { NULL, 0 };
	struct fbx_event ev;
	pb_event *pb = NULL;
	struct pb_alloc pa;
	const char *what;
	int rv;

	memset(&ev, 0, sizeof(ev));
	if (out == NULL)
		return FBX_EINVALID;
	rv = check_len(&w, buf, len, EVENT_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__event__unpack(pb_alloc_init(&pa), len,
	    in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM : FBX_EMALFORMED;
		goto out;
	}
	rv = check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	if (!in_range((int)pb->kind, 1, EVENT_KIND_COUNT)) {
		rv = FBX_EINVALID;
		goto out;
	}
	rv = scope_copy(ev.org, pb->org, 1, &what);
	if (rv == FBX_OK)
		rv = id_copy(ev.reason, pb->reason, 0, &what);
	if (rv == FBX_OK)
		rv = id_copy(ev.actor, pb->actor, 0, &what);
	if (rv == FBX_OK)
		rv = text_copy(ev.detail, sizeof(ev.detail), pb->detail,
		    &what);
	if (rv != FBX_OK)
		goto out;
	ev.kind = (int)pb->kind;
	ev.at_ms = pb->at_ms;
	ev.command_id = pb->command_id;
	ev.count = pb->count;
	ev.limit = pb->limit;

out:
	if (pb != NULL)
		fusebox__v1__event__free_unpacked(pb, NULL);
	if (rv != FBX_OK) {
		memset(out, 0, sizeof(*out));
		return rv;
	}
	*out = ev;
	return FBX_OK;
}
