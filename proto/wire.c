/*
 * wire.c: the codec between the plain structs of fbx_proto.h and the
 * protobuf-c code generated from fusebox.proto. It is the trust boundary:
 * every decoder bounds the byte length before protobuf-c sees it (protobuf-c
 * has no size limit of its own) and validates every field, so the rest of
 * the engine never checks message shape again. Encoders check lengths and
 * counts only and build the hot arrays (deliveries, results) in one block.
 * The codec also carries the safety-control vocabulary (breakers, limits, rate
 * caps, approvals, rollouts, dry runs), the incident tools (rollback,
 * replay, export, audit log, organisation list) and the PUB events.
 *
 * This file holds what the codecs share (field checks, the bump arena,
 * the safety-control pieces), the gateway and engine messages and the
 * events; the
 * console request codec is wire_request.c, the console reply's decoder
 * wire_reply_in.c and its encoder wire_reply_out.c; the direct codec of
 * the hot messages (RESULTS read, DELIVERIES written without protobuf-c)
 * wire_direct.c. Their shared declarations are in wire_int.h.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_proto.h"
#include "wire_int.h"

/* Events are a few identifiers and a short text: 4 KiB is generous. */
#define EVENT_MSG_MAX 4096u

/* fail formats the reason (if wanted) and returns err. */
int
fbxp_fail(struct wctx *w, int err, const char *fmt, ...)
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
int
fbxp_fail_at(struct wctx *w, int err, const char *pfx, size_t idx,
    const char *field, const char *what)
{
	if (idx == NO_IDX)
		return fbxp_fail(w, err, "%s.%s: %s", pfx, field, what);
	return fbxp_fail(w, err, "%s[%zu].%s: %s", pfx, idx, field, what);
}

/* id_copy checks an identifier and copies it into an fbx_id-sized buffer.
 * An empty identifier is accepted unless need is set. */
int
fbxp_id_copy(char *dst, const char *src, int need, const char **what)
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

int
fbxp_text_copy(char *dst, size_t cap, const char *src, const char **what)
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
int
fbxp_note_copy(char *dst, const char *src, int need, const char **what)
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
int
fbxp_scope_copy(char *dst, const char *src, int need, const char **what)
{
	if (src != NULL && strcmp(src, "*") == 0) {
		strcpy(dst, "*");
		return FBX_OK;
	}
	return fbxp_id_copy(dst, src, need, what);
}

/* held_copy checks "scope/reason" (reason may be empty: the breaker of
 * commands without one) or the empty string, into HELD_BY_MAX bytes. */
int
fbxp_held_copy(char *dst, const char *src, const char **what)
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
	rv = fbxp_scope_copy(tmp, scope, 1, what);
	if (rv != FBX_OK)
		return rv;
	rv = fbxp_id_copy(tmp, slash + 1, 0, what);
	if (rv != FBX_OK)
		return rv;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return FBX_OK;
}

/* action_copy checks an audit action name (1..AUDIT_ACTION_MAX bytes of
 * printable ASCII: it is a stable word like "breaker.trip", printed in
 * columns) and copies it. An empty name is accepted unless need is set. */
int
fbxp_action_copy(char *dst, const char *src, int need, const char **what)
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
int
fbxp_hash_copy(char *dst, const char *src, const char **what)
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

int
fbxp_check_version(struct wctx *w, uint32_t v)
{
	if (v == 0)
		return fbxp_fail(w, FBX_EVERSION, "version: missing");
	if (v != FBX_PROTOCOL_VERSION)
		return fbxp_fail(w, FBX_EVERSION, "version: %u, expected %d",
		    (unsigned)v, FBX_PROTOCOL_VERSION);
	return FBX_OK;
}

/* check_len bounds the input before protobuf-c allocates for it. */
int
fbxp_check_len(struct wctx *w, const void *buf, size_t len, size_t cap)
{
	if (len > cap)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "message: %zu bytes, at most %zu", len, cap);
	if (buf == NULL && len > 0)
		return fbxp_fail(w, FBX_EINVALID, "message: NULL buffer");
	return FBX_OK;
}

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

ProtobufCAllocator *
fbxp_pb_alloc_init(struct pb_alloc *pa)
{
	pa->a.alloc = pb_alloc_fn;
	pa->a.free = pb_free_fn;
	pa->a.allocator_data = pa;
	pa->failed = 0;
	return &pa->a;
}

/* ---- bump arena (wire_int.h): one allocation for all the messages of an
 * encode ---- */

int
fbxp_arena_init(struct arena *a, size_t cap)
{
	a->off = 0;
	a->cap = cap;
	a->p = malloc(cap > 0 ? cap : 1);
	return a->p == NULL ? FBX_ENOMEM : FBX_OK;
}

/* pack serialises m into a malloc'd buffer of exactly its packed size. */
int
fbxp_pack(const ProtobufCMessage *m, size_t cap, uint8_t **buf, size_t *len)
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

int
fbxp_plan_empty(const struct fbx_rollout_plan *p)
{
	static const struct fbx_rollout_plan zero;

	return memcmp(p, &zero, sizeof(zero)) == 0;
}

int
fbxp_status_empty(const struct fbx_rollout_status *s)
{
	static const struct fbx_rollout_status zero;

	return memcmp(s, &zero, sizeof(zero)) == 0;
}

/* plan_in validates a RolloutPlan; pfx names it in errors. */
int
fbxp_plan_in(const pb_plan *p, struct fbx_rollout_plan *o, struct wctx *w,
    const char *pfx)
{
	const char *what;
	size_t g;
	int rv;

	if (p->n_groups > FBX_ROLLOUT_GROUPS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "%s.groups: %zu groups, at most %d", pfx, p->n_groups,
		    FBX_ROLLOUT_GROUPS_MAX);
	if (p->first_share_ppm > FBX_PPM || p->success_ppm > FBX_PPM ||
	    p->failure_ppm > FBX_PPM)
		return fbxp_fail(w, FBX_EINVALID,
		    "%s: share above 1,000,000 ppm", pfx);
	for (g = 0; g < p->n_groups; g++) {
		rv = fbxp_id_copy(o->groups[g], p->groups[g], 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "%s.groups[%zu]: %s", pfx, g,
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
int
fbxp_plan_out(const struct fbx_rollout_plan *p, pb_plan *o, char **gp)
{
	static const pb_plan init = FUSEBOX__V1__ROLLOUT_PLAN__INIT;
	size_t g;

	if (p->ngroups > FBX_ROLLOUT_GROUPS_MAX)
		return FBX_ETOOBIG;
	*o = init;
	for (g = 0; g < p->ngroups; g++) {
		if (!fbxp_cstr_ok(p->groups[g], sizeof(p->groups[g])))
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

int
fbxp_status_in(const pb_rostatus *s, struct fbx_rollout_status *o,
    struct wctx *w, const char *pfx)
{
	const char *what;
	int rv;

	if (!fbxp_in_range((int)s->state, 0, FBX_RO_COUNT))
		return fbxp_fail(w, FBX_EINVALID, "%s.state: unknown value %d",
		    pfx, (int)s->state);
	if (s->stage > FBX_ROLLOUT_GROUPS_MAX)
		return fbxp_fail(w, FBX_EINVALID, "%s.stage: %u, at most %d",
		    pfx, (unsigned)s->stage, FBX_ROLLOUT_GROUPS_MAX);
	rv = fbxp_note_copy(o->note, s->note, 0, &what);
	if (rv != FBX_OK)
		return fbxp_fail(w, rv, "%s.note: %s", pfx, what);
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

int
fbxp_status_out(const struct fbx_rollout_status *s, pb_rostatus *o)
{
	static const pb_rostatus init = FUSEBOX__V1__ROLLOUT_STATUS__INIT;

	if (!fbxp_cstr_ok(s->note, sizeof(s->note)))
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

int
fbxp_brkcfg_in(const pb_brkcfg *c, struct fbx_breaker_cfg *o, struct wctx *w,
    const char *pfx)
{
	if (c->share_ppm > FBX_PPM)
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.share_ppm: above 1,000,000 ppm", pfx);
	if (c->shadow > 2)
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.shadow: unknown value %u", pfx, (unsigned)c->shadow);
	if (c->global_share_ppm > FBX_PPM)
		return fbxp_fail(w, FBX_EINVALID,
		    "%s.global_share_ppm: above 1,000,000 ppm", pfx);
	if (c->settle_seconds > 86400)
		return fbxp_fail(w, FBX_EINVALID,
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

void
fbxp_brkcfg_out(const struct fbx_breaker_cfg *c, pb_brkcfg *o)
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
		rv = fbxp_id_copy(
		    m->u.hello.gateway_id, h->gateway_id, 1, &what);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "hello.gateway_id: %s", what);
		n = h->n_orgs;
		if (n == 0)
			return fbxp_fail(w, FBX_EINVALID, "hello.orgs: empty");
		if (n > FBX_PAGE_MAX)
			return fbxp_fail(w, FBX_ETOOBIG,
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
			rv = fbxp_id_copy(
			    m->u.hello.orgs[i], h->orgs[i], 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail(
				    w, rv, "hello.orgs[%zu]: %s", i, what);
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
			return fbxp_fail(w, FBX_ETOOBIG,
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
				return fbxp_fail(w, FBX_EINVALID,
				    "results.results[%zu].delivery_id: "
				    "missing",
				    i);
			if (!fbxp_in_range((int)x->status, 1, FBX_R_COUNT))
				return fbxp_fail(w, FBX_EINVALID,
				    "results.results[%zu].status: unknown "
				    "value %d",
				    i, (int)x->status);
			if (x->code > UINT16_MAX)
				return fbxp_fail(w, FBX_EINVALID,
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
			return fbxp_fail(w, FBX_ETOOBIG,
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
			rv = fbxp_id_copy(o->org, x->org, 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail_at(
				    w, rv, pfx, i, "org", what);
			rv = fbxp_id_copy(o->device, x->device, 1, &what);
			if (rv != FBX_OK)
				return fbxp_fail_at(
				    w, rv, pfx, i, "device", what);
			rv = fbxp_text_copy(o->os_version,
			    sizeof(o->os_version), x->os_version, &what);
			if (rv != FBX_OK)
				return fbxp_fail_at(w, rv, pfx, i,
				    "os_version",
				    rv == FBX_ETOOBIG ? "longer than 32 bytes"
				                      : what);
			if (!fbxp_in_range((int)x->attestation, 0,
			        FBX_ATTEST_COUNT))
				return fbxp_fail_at(w, FBX_EINVALID, pfx, i,
				    "attestation", "unknown value");
			o->at_ms = x->at_ms;
			o->attestation = (uint8_t)x->attestation;
		}
		return FBX_OK;
	}
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_HEARTBEAT:
		return FBX_OK;
	case FUSEBOX__V1__GATEWAY_MESSAGE__BODY_BYE:
		rv = fbxp_text_copy(m->u.bye.reason, sizeof(m->u.bye.reason),
		    pb->bye->reason, &what);
		if (rv == FBX_ETOOBIG)
			return fbxp_fail(w, rv,
			    "bye.reason: longer than %zu bytes",
			    sizeof(m->u.bye.reason) - 1);
		if (rv != FBX_OK)
			return fbxp_fail(w, rv, "bye.reason: %s", what);
		return FBX_OK;
	default:
		break;
	}
	return fbxp_fail(w, FBX_EINVALID, "body: missing or unknown message");
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
pb_field_count(
    const uint8_t *p, const uint8_t *end, uint32_t outer, uint32_t inner)
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
			if ((key >> 3) == 0 ||
			    pb_skip(&q, qend, key & 7, &l2) != 0)
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
	const uint8_t *p = fbxp_in_bytes(buf), *end = p + len;
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
	const uint8_t *p = fbxp_in_bytes(buf), *end = p + len;
	size_t n;

	n = pb_field_count(p, end, 12, 2); /* results.results */
	if (n > FBX_BATCH_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "results: %zu entries, at most %d", n, FBX_BATCH_MAX);
	n = pb_field_count(p, end, 13, 2); /* checkins.checkins */
	if (n > FBX_BATCH_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "checkins: %zu entries, at most %d", n, FBX_BATCH_MAX);
	n = pb_field_count(p, end, 10, 2); /* hello.orgs */
	if (n > ORGS_MAX)
		return fbxp_fail(w, FBX_ETOOBIG,
		    "hello.orgs: %zu entries, at most %d", n, ORGS_MAX);
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
		rv = fbxp_results_direct(
		    fbxp_in_bytes(buf), fbxp_in_bytes(buf) + len, out);
		if (rv == 1) {
			if (why != NULL && whylen > 0)
				why[0] = '\0';
			return FBX_OK;
		}
		if (rv < 0) {
			struct wctx w = { why, whylen };
			memset(out, 0, sizeof(*out));
			return fbxp_fail(&w, FBX_ENOMEM, "out of memory");
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
		return fbxp_fail(&w, FBX_EINVALID, "out: NULL");
	rv = fbxp_check_len(&w, buf, len, FBX_GATEWAY_IN_MAX);
	if (rv != FBX_OK)
		goto out;
	/* the schema's walk first: it stops at a flood (of unknown fields,
	 * say) where gw_prescan's three walks would go to the end */
	rv = fbxp_prescan(&w, &fusebox__v1__gateway_message__descriptor, buf,
	    len, &fbxp_caps_gateway);
	if (rv != FBX_OK)
		goto out;
	rv = gw_prescan(&w, buf, len);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__gateway_message__unpack(fbxp_pb_alloc_init(&pa), len,
	    fbxp_in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM
		               : fbxp_fail(&w, FBX_EMALFORMED,
		                   "message: not a GatewayMessage");
		goto out;
	}
	rv = fbxp_check_version(&w, pb->version);
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
			fbxp_fail(&w, rv, "out of memory");
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
		*sz = fbxp_asz(n * sizeof(char *));
		return FBX_OK;
	case FBX_GW_RESULTS:
		n = m->u.results.n;
		if (n > FBX_BATCH_MAX)
			return FBX_ETOOBIG;
		if (n > 0 && m->u.results.r == NULL)
			return FBX_EINVALID;
		*sz = fbxp_asz(n * sizeof(pb_result)) +
		    fbxp_asz(n * sizeof(pb_result *));
		return FBX_OK;
	case FBX_GW_CHECKINS:
		n = m->u.checkins.n;
		if (n > FBX_BATCH_MAX)
			return FBX_ETOOBIG;
		if (n > 0 && m->u.checkins.c == NULL)
			return FBX_EINVALID;
		*sz = fbxp_asz(n * sizeof(pb_checkin)) +
		    fbxp_asz(n * sizeof(pb_checkin *));
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
	rv = fbxp_arena_init(&a, sz);
	if (rv != FBX_OK)
		return rv;
	g.version = m->version != 0 ? m->version : FBX_PROTOCOL_VERSION;

	switch (m->kind) {
	case FBX_GW_HELLO:
		n = m->u.hello.norgs;
		if (!fbxp_cstr_ok(m->u.hello.gateway_id, sizeof(fbx_id))) {
			rv = FBX_EINVALID;
			goto out;
		}
		hello.orgs = fbxp_arena_take(&a, n * sizeof(char *));
		if (hello.orgs == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (!fbxp_cstr_ok(
			        m->u.hello.orgs[i], sizeof(fbx_id))) {
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
		r = fbxp_arena_take(&a, n * sizeof(*r));
		results.results = fbxp_arena_take(&a, n * sizeof(pb_result *));
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
		c = fbxp_arena_take(&a, n * sizeof(*c));
		checkins.checkins =
		    fbxp_arena_take(&a, n * sizeof(pb_checkin *));
		if (c == NULL || checkins.checkins == NULL) {
			rv = FBX_ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++) {
			const struct fbx_checkin *x = &m->u.checkins.c[i];
			if (!fbxp_cstr_ok(x->org, sizeof(x->org)) ||
			    !fbxp_cstr_ok(x->device, sizeof(x->device)) ||
			    !fbxp_cstr_ok(x->os_version,
			        sizeof(x->os_version))) {
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
		if (!fbxp_cstr_ok(m->u.bye.reason, sizeof(m->u.bye.reason))) {
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
	rv = fbxp_pack(&g.base, FBX_GATEWAY_MSG_MAX, buf, len);

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
	    !fbxp_in_range((int)d->type, 1, FBX_CMD_TYPE_COUNT) ||
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
	rv = fbxp_check_len(&w, buf, len, FBX_GATEWAY_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	rv = fbxp_prescan(&w, &fusebox__v1__engine_message__descriptor, buf,
	    len, &fbxp_caps_gateway);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__engine_message__unpack(fbxp_pb_alloc_init(&pa), len,
	    fbxp_in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM : FBX_EMALFORMED;
		goto out;
	}
	rv = fbxp_check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	m.kind = (int)pb->body_case;
	switch (pb->body_case) {
	case FUSEBOX__V1__ENGINE_MESSAGE__BODY_WELCOME:
		rv = fbxp_id_copy(
		    m.u.welcome.engine_id, pb->welcome->engine_id, 1, &what);
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
		rv = fbxp_text_copy(m.u.error.msg, sizeof(m.u.error.msg),
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
		if (!fbxp_cstr_ok(m->u.welcome.engine_id, sizeof(fbx_id)))
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
		rv = fbxp_arena_init(&a, fbxp_asz(n * sizeof(pb_delivery)) +
		        fbxp_asz(n * sizeof(pb_delivery *)));
		if (rv != FBX_OK)
			return rv;
		d = fbxp_arena_take(&a, n * sizeof(*d));
		dlv.deliveries =
		    fbxp_arena_take(&a, n * sizeof(pb_delivery *));
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
		    !fbxp_cstr_ok(m->u.error.msg, sizeof(m->u.error.msg)))
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
	rv = fbxp_pack(&e.base, FBX_GATEWAY_MSG_MAX, buf, len);

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
	if (!fbxp_in_range(ev->kind, 1, EVENT_KIND_COUNT) ||
	    !fbxp_cstr_ok(ev->org, sizeof(ev->org)) ||
	    !fbxp_cstr_ok(ev->reason, sizeof(ev->reason)) ||
	    !fbxp_cstr_ok(ev->actor, sizeof(ev->actor)) ||
	    !fbxp_cstr_ok(ev->detail, sizeof(ev->detail)))
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
	return fbxp_pack(&e.base, EVENT_MSG_MAX, buf, len);
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
	rv = fbxp_check_len(&w, buf, len, EVENT_MSG_MAX);
	if (rv != FBX_OK)
		goto out;
	rv = fbxp_prescan(&w, &fusebox__v1__event__descriptor, buf, len,
	    &fbxp_caps_gateway);
	if (rv != FBX_OK)
		goto out;
	pb = fusebox__v1__event__unpack(fbxp_pb_alloc_init(&pa), len,
	    fbxp_in_bytes(buf));
	if (pb == NULL) {
		rv = pa.failed ? FBX_ENOMEM : FBX_EMALFORMED;
		goto out;
	}
	rv = fbxp_check_version(&w, pb->version);
	if (rv != FBX_OK)
		goto out;
	if (!fbxp_in_range((int)pb->kind, 1, EVENT_KIND_COUNT)) {
		rv = FBX_EINVALID;
		goto out;
	}
	rv = fbxp_scope_copy(ev.org, pb->org, 1, &what);
	if (rv == FBX_OK)
		rv = fbxp_id_copy(ev.reason, pb->reason, 0, &what);
	if (rv == FBX_OK)
		rv = fbxp_id_copy(ev.actor, pb->actor, 0, &what);
	if (rv == FBX_OK)
		rv = fbxp_text_copy(ev.detail, sizeof(ev.detail), pb->detail,
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
