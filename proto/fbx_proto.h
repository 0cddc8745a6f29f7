/*
 * fbx_proto.h: the wire protocol (proto/fusebox.proto, package fusebox.v1)
 * as plain C structs, with size-capped encode/decode. Only proto/ sees
 * protobuf-c; everyone else uses these structs. Decoding checks the byte
 * length before unpacking and validates every field (identifiers, enum
 * ranges, counts), so a decoded message can be trusted for shape.
 */
#ifndef FBX_PROTO_H
#define FBX_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "fbx_err.h"
#include "fbx_types.h"

typedef char fbx_id[FBX_ID_MAX + 1];

/* ======================= console API =================================== */

enum fbx_creq_kind {
	FBX_CREQ_NONE = 0,
	FBX_CREQ_SUBMIT = 10,
	FBX_CREQ_GET_COMMAND = 11,
	FBX_CREQ_LIST_COMMANDS = 12,
	FBX_CREQ_ENROLL = 13,
	FBX_CREQ_REMOVE = 14,
	FBX_CREQ_LIST_DEVICES = 15,
	FBX_CREQ_LIST_GROUPS = 16,
	FBX_CREQ_PING = 17,
};

struct fbx_console_req {
	uint32_t version;    /* FBX_PROTOCOL_VERSION */
	uint64_t request_id; /* echoed in the reply */
	fbx_id org;          /* organisation the request acts for */
	fbx_id actor;        /* operator or system identity */
	int kind;            /* enum fbx_creq_kind */
	union {
		/* submit: cmd.type, origin, reason, target_kind, group,
		 * platform, payload, dev_ids, idem_key, ttl_s are used;
		 * cmd.org/actor are copied from the request. */
		struct {
			struct fbx_command cmd;
		} submit;
		struct {
			uint64_t command_id;
			uint64_t after; /* page cursor: delivery id, 0 = start */
			uint32_t limit; /* outcomes per page, 0 = none */
			int state;      /* filter, FBX_D_NONE = all */
		} get;
		struct {
			int64_t since_ms, until_ms; /* until 0 = open */
			uint64_t after;
			uint32_t limit;
		} list;
		struct {
			struct fbx_device *devs; /* org ignored, from request */
			size_t n;
		} enroll;
		struct {
			fbx_id *ids;
			size_t n;
		} remove;
		struct {
			fbx_id group; /* "" = all */
			fbx_id after; /* "" = from start */
			uint32_t limit;
		} list_devices;
	} u;
};

struct fbx_group_count {
	fbx_id name;
	uint32_t count;
};

struct fbx_engine_stats {
	char version[32];
	uint64_t uptime_ms;
	uint32_t gateways;
	uint64_t commands_active;
	uint64_t deliveries_queued;
	uint64_t deliveries_inflight;
	uint64_t deliveries_pending;
	uint64_t commits;
	uint64_t store_bytes;
};

struct fbx_console_rep {
	uint64_t request_id;
	int err;           /* FBX_OK or an fbx_err code */
	char errmsg[256];  /* detail when err != FBX_OK */
	int kind;          /* enum fbx_creq_kind of the request answered */
	union {
		struct {
			uint64_t command_id;
			int duplicate; /* idempotent retry: existing command */
			uint32_t device_count; /* known so far */
			int state;             /* enum fbx_cstate */
		} submit;
		struct {
			struct fbx_command info; /* no payload / dev_ids */
			struct fbx_delivery *dlv; /* page of outcomes */
			size_t ndlv;
			uint64_t next_after; /* 0 = no more */
		} command;
		struct {
			struct fbx_command *cmds;
			size_t n;
			uint64_t next_after;
		} commands;
		struct {
			uint32_t created, updated;
		} enroll;
		struct {
			uint32_t removed;
		} remove;
		struct {
			struct fbx_device *devs;
			size_t n;
			fbx_id next_after; /* "" = no more */
			uint32_t total;    /* devices in org */
		} devices;
		struct {
			struct fbx_group_count *groups;
			size_t n;
		} groups;
		struct fbx_engine_stats pong;
	} u;
};

/**
 * fbx_console_req_decode - check size, unpack and validate a request.
 * @param[out] out on success the request (free with
 * fbx_console_req_free). On failure out->request_id holds the request id
 * if it could be read, 0 otherwise, and nothing else needs freeing.
 * @param[out] why a human reason on failure (may be NULL).
 * @return FBX_OK, FBX_ETOOBIG (len > FBX_CONSOLE_MSG_MAX or a field over
 * its cap), FBX_EMALFORMED (not a ConsoleRequest), FBX_EVERSION,
 * FBX_EINVAL (a field out of range: bad id, unknown enum, empty body),
 * FBX_ENOMEM.
 */
int fbx_console_req_decode(const void *buf, size_t len,
    struct fbx_console_req *out, char *why, size_t whylen);
void fbx_console_req_free(struct fbx_console_req *req);

/**
 * fbx_console_req_encode - pack a request into a malloc'd buffer.
 * @return FBX_OK, FBX_ETOOBIG, FBX_EINVAL, FBX_ENOMEM.
 */
int fbx_console_req_encode(
    const struct fbx_console_req *req, uint8_t **buf, size_t *len);

int fbx_console_rep_decode(
    const void *buf, size_t len, struct fbx_console_rep *out);
void fbx_console_rep_free(struct fbx_console_rep *rep);
int fbx_console_rep_encode(
    const struct fbx_console_rep *rep, uint8_t **buf, size_t *len);

/* ======================= gateway API =================================== */

enum fbx_gw_kind {
	FBX_GW_NONE = 0,
	FBX_GW_HELLO = 10,
	FBX_GW_CREDIT = 11,
	FBX_GW_RESULTS = 12,
	FBX_GW_CHECKINS = 13,
	FBX_GW_HEARTBEAT = 14,
	FBX_GW_BYE = 15,
};

struct fbx_result_rec {
	uint64_t delivery_id;
	uint8_t status; /* enum fbx_result */
	uint16_t code;  /* failure code when FAILED */
};

struct fbx_checkin {
	fbx_id org;
	fbx_id device;
	int64_t at_ms;
	char os_version[FBX_OSVER_MAX + 1];
	uint8_t attestation; /* enum fbx_attest */
};

/* Gateway -> engine. */
struct fbx_gw_msg {
	uint32_t version;
	int kind; /* enum fbx_gw_kind */
	union {
		struct {
			fbx_id gateway_id;
			fbx_id *orgs; /* organisations served; "*" = all */
			size_t norgs;
			uint32_t window; /* deliveries it can hold unanswered */
		} hello;
		struct {
			uint32_t window;
		} credit;
		struct {
			uint64_t batch_id;
			struct fbx_result_rec *r;
			size_t n;
		} results;
		struct {
			uint64_t batch_id;
			struct fbx_checkin *c;
			size_t n;
		} checkins;
		struct {
			char reason[128];
		} bye;
	} u;
};

int fbx_gw_msg_decode(const void *buf, size_t len, struct fbx_gw_msg *out,
    char *why, size_t whylen);
void fbx_gw_msg_free(struct fbx_gw_msg *m);
int fbx_gw_msg_encode(const struct fbx_gw_msg *m, uint8_t **buf, size_t *len);

enum fbx_eng_kind {
	FBX_ENG_NONE = 0,
	FBX_ENG_WELCOME = 10,
	FBX_ENG_DELIVERIES = 11,
	FBX_ENG_ACK = 12,
	FBX_ENG_ERROR = 13,
};

/* One delivery as sent to a gateway. Strings and payload are borrowed: on
 * encode from the caller, on decode from the decoded message (valid until
 * fbx_eng_msg_free). */
struct fbx_dlv_out {
	uint64_t delivery_id;
	uint64_t command_id;
	const char *org;
	const char *device;
	uint8_t type; /* enum fbx_cmd_type */
	const uint8_t *payload;
	size_t payload_len;
	int64_t expires_ms;
	uint32_t attempt; /* 1 = first hand-off; > 1 = resend, same id */
};

/* Engine -> gateway. */
struct fbx_eng_msg {
	int kind; /* enum fbx_eng_kind */
	union {
		struct {
			fbx_id engine_id;
			uint32_t heartbeat_ms; /* gateway must speak this often */
			uint32_t max_batch;    /* results per message */
		} welcome;
		struct {
			struct fbx_dlv_out *d;
			size_t n;
		} deliveries;
		struct {
			uint64_t batch_id; /* results/check-ins now durable */
			uint32_t count;
		} ack;
		struct {
			int err;
			char msg[256];
		} error;
	} u;
	void *priv_; /* decoded protobuf kept alive for borrowed pointers */
};

int fbx_eng_msg_decode(const void *buf, size_t len, struct fbx_eng_msg *out);
void fbx_eng_msg_free(struct fbx_eng_msg *m);
int fbx_eng_msg_encode(
    const struct fbx_eng_msg *m, uint8_t **buf, size_t *len);

#endif
