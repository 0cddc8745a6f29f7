/*
 * wire_int.h: what the codec's source files share (fbxp_ prefix; internal
 * to proto/): the protobuf-c type names, the size caps, the decoders'
 * reason buffer, the encoders' bump arena, and the field checks and
 * safety-control pieces of wire.c that the request codec (wire_request.c)
 * and the reply codec (wire_reply_in.c, wire_reply_out.c) both use; the
 * varint reader and the direct codec of wire_direct.c that wire.c's
 * public functions call; the prescan of wire_scan.c that every decoder
 * runs before protobuf-c.
 */
#ifndef FBXP_WIRE_INT_H
#define FBXP_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fbx_proto.h"
#include "fusebox.pb-c.h"

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

/* "org/reason" of the breaker holding a command (fbxp_held_copy's dst). */
#define HELD_BY_MAX (2 * FBX_ID_MAX + 2)

/* Audit record text: action name, parameters (JSON), SHA-256 in hex
 * (fbxp_action_copy's and fbxp_hash_copy's dst). */
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
_Static_assert(sizeof(((struct fbx_cert_info *)0)->sha256) == HASH_HEX + 1 &&
    sizeof(((struct fbx_console_req *)0)->u.audit_verify.after_hash) ==
        HASH_HEX + 1 &&
    sizeof(((struct fbx_console_rep *)0)->u.verify.verified_hash) ==
        HASH_HEX + 1,
    "the other hex hash buffers hold HASH_HEX digits too");
_Static_assert(sizeof(((struct fbx_command *)0)->held_by) == HELD_BY_MAX &&
    sizeof(((struct fbx_console_rep *)0)->u.submit.held_by) ==
        HELD_BY_MAX &&
    sizeof(((struct fbx_rb_plan *)0)->breaker) == HELD_BY_MAX,
    "held_by buffers (and the plan's breaker, decoded alike) hold "
    "HELD_BY_MAX bytes");

/* Where a decoder writes its human reason. */
struct wctx {
	char *why;
	size_t whylen;
};

/* pb_alloc: protobuf-c allocates through us so that an allocation failure
 * inside unpack is reported as FBX_ENOMEM, not as a malformed message
 * (unpack returns NULL for both). One per decode call, on the stack, so
 * decoders stay reentrant; the unpacked message is freed with the default
 * allocator, which is the same malloc heap. */
struct pb_alloc {
	ProtobufCAllocator a;
	int failed;
};

/* a bump arena: one allocation for all the messages of an encode, sized
 * with fbxp_asz() of each request (fbxp_arena_init, fbxp_arena_take) */
struct arena {
	unsigned char *p;
	size_t off, cap;
};

/* ---- wire.c: field checks, allocation, packing and the safety-control
 * pieces (each documented at its definition); fbxp_device_in,
 * _devices_size and _devices_out are wire_request.c's */

int fbxp_fail(struct wctx *w, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int fbxp_fail_at(struct wctx *w, int err, const char *pfx, size_t idx,
    const char *field, const char *what);
int fbxp_id_copy(char *dst, const char *src, int need, const char **what);
int fbxp_text_copy(char *dst, size_t cap, const char *src, const char **what);
int fbxp_note_copy(char *dst, const char *src, int need, const char **what);
int fbxp_scope_copy(char *dst, const char *src, int need, const char **what);
int fbxp_held_copy(char *dst, const char *src, const char **what);
int fbxp_action_copy(char *dst, const char *src, int need, const char **what);
int fbxp_hash_copy(char *dst, const char *src, const char **what);
int fbxp_check_version(struct wctx *w, uint32_t v);
int fbxp_check_len(struct wctx *w, const void *buf, size_t len, size_t cap);
ProtobufCAllocator *fbxp_pb_alloc_init(struct pb_alloc *pa);
int fbxp_arena_init(struct arena *a, size_t cap);
int fbxp_pack(const ProtobufCMessage *m, size_t cap, uint8_t **buf,
    size_t *len);
int fbxp_plan_empty(const struct fbx_rollout_plan *p);
int fbxp_status_empty(const struct fbx_rollout_status *s);
int fbxp_plan_in(const pb_plan *p, struct fbx_rollout_plan *o, struct wctx *w,
    const char *pfx);
int fbxp_plan_out(const struct fbx_rollout_plan *p, pb_plan *o, char **gp);
int fbxp_status_in(const pb_rostatus *s, struct fbx_rollout_status *o,
    struct wctx *w, const char *pfx);
int fbxp_status_out(const struct fbx_rollout_status *s, pb_rostatus *o);
int fbxp_brkcfg_in(const pb_brkcfg *c, struct fbx_breaker_cfg *o,
    struct wctx *w, const char *pfx);
void fbxp_brkcfg_out(const struct fbx_breaker_cfg *c, pb_brkcfg *o);
int fbxp_device_in(const pb_device *d, struct fbx_device *o, int need_org,
    struct wctx *w, const char *pfx, size_t idx);
int fbxp_devices_size(const struct fbx_device *d, size_t n, size_t *sz);
int fbxp_devices_out(struct arena *a, const struct fbx_device *d, size_t n,
    pb_device ***outp);

static inline int
fbxp_in_range(int v, int lo, int count)
{
	return v >= lo && v < count;
}

/* cstr_ok: whether a C buffer of cap bytes holds a terminated string. */
static inline int
fbxp_cstr_ok(const char *s, size_t cap)
{
	return strnlen(s, cap) < cap;
}

static inline const uint8_t *
fbxp_in_bytes(const void *buf)
{
	static const uint8_t empty[1];

	return buf != NULL ? buf : empty;
}

static inline size_t
fbxp_asz(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

/* arena_take never fails when the caller sized the arena with fbxp_asz() of
 * the same requests; NULL means that sizing is wrong. */
static inline void *
fbxp_arena_take(struct arena *a, size_t n)
{
	void *r;

	n = fbxp_asz(n);
	if (n > a->cap - a->off)
		return NULL;
	r = a->p + a->off;
	a->off += n;
	return r;
}

/* fbxp_varint - read a base-128 varint at *p (< end). @return 0 or -1. */
static inline int
fbxp_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* ---- wire_scan.c: the prescan before protobuf-c */

/* what fbxp_prescan allows: entries of one repeated field in one
 * message, and repeated entries in the whole message */
struct fbxp_scan_caps {
	size_t field_max;
	size_t total_max;
};

/* console requests; console replies; gateway and engine messages, events */
extern const struct fbxp_scan_caps fbxp_caps_console;
extern const struct fbxp_scan_caps fbxp_caps_reply;
extern const struct fbxp_scan_caps fbxp_caps_gateway;

/* fbxp_prescan - walk the message of type d in buf[0..len) on the wire,
 * without allocating, before protobuf-c unpacks it. Refuses more than 64
 * unknown fields (FBX_EMALFORMED), a repeated field over caps->field_max
 * entries in one message or more than caps->total_max entries in all
 * (FBX_ETOOBIG, naming the field), a message, string or bytes field that
 * is not repeated given more than 8 times in one message (FBX_ETOOBIG),
 * and bytes protobuf-c would not read ("message: not a <Type>",
 * FBX_EMALFORMED, what the decoders say when unpack fails). len is
 * already within the decoder's cap. @return FBX_OK or the error, with
 * the reason in w. */
int fbxp_prescan(struct wctx *w, const ProtobufCMessageDescriptor *d,
    const void *buf, size_t len, const struct fbxp_scan_caps *caps);

/* ---- wire_direct.c: the hot messages without protobuf-c */

/* fbxp_results_direct - the RESULTS message in [p, end) read straight
 * from the wire into *m when it has the plain form; fbx_gw_msg_decode
 * tries it before protobuf-c. @return 1 and *m filled, 0 when not taken
 * (the generic path decodes or refuses it), -1 out of memory. */
int fbxp_results_direct(
    const uint8_t *p, const uint8_t *end, struct fbx_gw_msg *m);

/* fbxp_deliveries_direct - the DELIVERIES message m written directly: the
 * bytes and refusals of fbx_eng_msg_encode_generic. m, buf and len are
 * not NULL, m->kind is FBX_ENG_DELIVERIES. @return FBX_OK and *buf
 * (malloc'd), *len, or FBX_ETOOBIG, FBX_EINVALID, FBX_ENOMEM. */
int fbxp_deliveries_direct(
    const struct fbx_eng_msg *m, uint8_t **buf, size_t *len);

#endif
