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
	FBX_CREQ_BREAKER = 18,
	FBX_CREQ_LIMIT = 19,
	FBX_CREQ_RATE = 20,
	FBX_CREQ_APPROVE = 21,
	FBX_CREQ_ROLLOUT = 22,
	FBX_CREQ_LIST_HELD = 23,
	FBX_CREQ_ROLLBACK = 24,
	FBX_CREQ_REPLAY = 25,
	FBX_CREQ_EXPORT = 26,
	FBX_CREQ_AUDIT_LIST = 27,
	FBX_CREQ_AUDIT_VERIFY = 28,
	FBX_CREQ_LIST_ORGS = 29,
	FBX_CREQ_CERT = 30,
	FBX_CREQ_PRINCIPAL = 31, /* issue 10: principals and their keys */
	FBX_CREQ_FLEET = 32,     /* issue 12: fleet check-in health */
};

/* ---- rollback, replay, export, audit ----------------------------------- */

/* Which commands a rollback or an export concerns. Everything is within
 * the request's organisation. */
struct fbx_selector {
	uint64_t *command_ids; /* explicit commands, or */
	size_t ncommand_ids;
	fbx_id breaker;        /* incident: commands held by or admitted
	                          under breaker "<org|*>/<reason>" from the
	                          onset of its last trip to its reset or
	                          now (reason given here) */
	int breaker_global;
	int include_before_onset; /* also the reason's commands in the
	                             breaker window before the onset */
	int every_org;         /* with breaker_global: every affected
	                          organisation (admin organisation) */
	int origin;            /* filter, 0 = any */
	fbx_id reason;         /* filter, "" = any */
	int type;              /* filter, 0 = any */
	fbx_id group;          /* filter: devices of this group, "" = any */
	int64_t since_ms, until_ms; /* created in [since, until), 0 = open */
};

/* What a rollback does to one delivery. */
enum fbx_rb_action {
	FBX_RB_NONE = 0,
	FBX_RB_CANCEL = 1,       /* not yet sent, or held: cancelled */
	FBX_RB_COMPENSATE = 2,   /* succeeded: a compensating command */
	FBX_RB_IRREVERSIBLE = 3, /* wipe, os_update, ...: listed, not undone */
	FBX_RB_CHANGED = 4,      /* a later command changed the device */
	FBX_RB_NOTHING = 5,      /* failed, expired, cancelled: no effect */
	FBX_RB_DONE_BEFORE = 6,  /* compensated by an earlier rollback */
	FBX_RB_IN_FLIGHT = 7,    /* in a gateway's hands: not compensated
	                            now; run the rollback again once it
	                            has settled */
	FBX_RB_COUNT
};

struct fbx_rb_row {
	uint64_t command_id;
	uint64_t delivery_id;
	fbx_id device;
	uint8_t type;   /* the original command type */
	uint8_t state;  /* its delivery state */
	uint8_t action; /* enum fbx_rb_action */
	uint8_t comp_type; /* compensating command type (COMPENSATE) */
	char detail[96];   /* e.g. "policy camera: restore 'on'" */
};

/* One organisation's share of a slice of a global incident rollback. */
struct fbx_rb_org {
	fbx_id org;
	uint32_t commands;
	uint32_t per_action[FBX_RB_COUNT];
	uint32_t before_onset, before_onset_deliveries;
	uint32_t comp_commands;
};

struct fbx_rb_plan {
	uint32_t commands;  /* commands selected */
	uint32_t per_action[FBX_RB_COUNT];
	struct fbx_rb_row *rows; /* first page of rows */
	size_t nrows;
	uint64_t *comp_ids; /* executed: the compensating commands */
	size_t ncomp;
	uint64_t rollback_id; /* executed: its audit sequence */
	int executed;
	/* slices: the counts above are this slice's */
	uint64_t next_cursor;     /* 0 = done, else the next slice's cursor */
	uint64_t last_command_id; /* the run's snapshot */
	uint32_t looked_at;       /* commands and deliveries looked at */
	uint32_t later_commands;  /* later commands surveyed (changed since) */
	/* an incident: the reason's commands before the onset, left */
	uint32_t before_onset, before_onset_deliveries;
	struct fbx_rb_row *bo_rows; /* first rows of them */
	size_t nbo_rows;
	uint32_t bo_rows_total; /* the rows there are (nbo_rows shown) */
	int64_t onset_ms, since_ms, until_ms; /* the incident's window */
	char breaker[2 * FBX_ID_MAX + 2]; /* its breaker: org/ or * /reason */
	/* every organisation: where to go on, and the slice's parts */
	int global;
	fbx_id next_org;
	struct fbx_rb_org *orgs;
	size_t norgs;
};

struct fbx_replay_result {
	uint32_t matched, resent, skipped_terminal;
	uint64_t next_cursor;     /* 0 = done, else the next slice's cursor */
	uint64_t last_command_id; /* the run's snapshot */
	uint32_t commands;        /* commands selected in this slice */
	uint32_t looked_at;       /* commands and deliveries looked at */
};

/* Rollback and replay slices: deliveries looked at per request by
 * default (commands: a tenth). fuseboxd --rollback-slice changes it. */
#define FBX_RB_SLICE_DEFAULT 10000

/* Audit verify: records checked per call by default and at most. */
#define FBX_VERIFY_SLICE 50000
#define FBX_VERIFY_SLICE_MAX 100000

/* One audit record. */
struct fbx_audit_rec {
	uint64_t seq;
	int64_t at_ms;
	fbx_id org;
	fbx_id actor;
	char action[32]; /* "submit", "approve", "breaker.trip", ... */
	char note[FBX_NOTE_MAX];
	char params[512]; /* JSON object */
	char hash[65];    /* hex SHA-256 of this record and the previous */
	char prev[65];
};

/* ---- safety controls ---------------------------------------------------
 * Scope: a control applies to one organisation (the request's org) or,
 * with `global` set, to every organisation ("*"). */

/* ListHeld.which: what a list_held request lists (state HELD, state
 * SETTLING, open commands with a staged rollout) */
enum fbx_list_held_which {
	FBX_LH_HELD = 0,
	FBX_LH_SETTLING = 1,
	FBX_LH_ROLLOUTS = 2,
};

enum fbx_breaker_op {
	FBX_BRK_STATUS = 1, /* list breakers (reason "" = all reasons) */
	FBX_BRK_TRIP = 2,   /* open by hand: needs reason and note */
	FBX_BRK_RESET = 3,  /* close: needs on_reset, note */
	FBX_BRK_CONFIGURE = 4,
};

enum fbx_reset_action {
	FBX_RESET_NONE = 0,
	FBX_RESET_RELEASE = 1, /* held commands go on, through the limits */
	FBX_RESET_DISCARD = 2, /* held commands are recorded as discarded */
};

/* Breaker settings; a field of 0 in CONFIGURE keeps the current value. */
struct fbx_breaker_cfg {
	uint32_t window_s;      /* sliding window, default 600 */
	uint32_t min_count;     /* never trip below, default 1 */
	uint32_t share_ppm;     /* of the org fleet, default 10000 (1%) */
	uint32_t baseline_mult; /* x the recent baseline, default 10 */
	uint32_t global_orgs;   /* global: orgs spiking together, default 3 */
	uint8_t shadow;         /* 1 = evaluate and report, never hold;
	                           2 = set enforcing (CONFIGURE only) */
	uint8_t settle_set;     /* CONFIGURE: apply settle_s (0 = off) */
	uint8_t pad_[2];
	uint32_t settle_s;      /* settle delay, default 30, 0 = off */
	uint32_t min_samples;   /* baseline devices before it raises (100) */
	uint32_t global_share_ppm; /* global: of all devices (10,000 = 1%) */
};

enum fbx_breaker_state {
	FBX_BS_CLOSED = 1,
	FBX_BS_OPEN = 2,
};

struct fbx_breaker_info {
	fbx_id org; /* "*" = global */
	fbx_id reason;
	uint8_t state;  /* enum fbx_breaker_state */
	uint8_t manual; /* opened by an operator */
	struct fbx_breaker_cfg cfg;
	uint64_t window_count; /* automatic lock-type devices in window */
	uint64_t baseline;     /* devices per window, recent average */
	uint64_t held;         /* commands held now */
	uint64_t would_hold;   /* shadow mode: commands it would have held */
	uint64_t trips;
	int64_t tripped_ms;
	fbx_id tripped_by; /* operator, or "engine" */
	char note[FBX_NOTE_MAX];
	uint32_t fleet;    /* devices in the organisation */
	uint32_t allowance; /* devices admitted in a window before a trip */
	int64_t onset_ms;   /* last incident's onset, 0 = never tripped */
	uint64_t settling;  /* commands in their settle window */
	uint64_t held_in_org; /* of held, the request's organisation's */
};

/* Blast-radius limit for one command type. */
struct fbx_limit_info {
	fbx_id org; /* "*" = default for every organisation */
	uint8_t type;
	uint32_t max_count;     /* devices per window, 0 = no count limit */
	uint32_t max_share_ppm; /* of the fleet per window, 0 = none */
	uint32_t window_s;      /* default 3600 */
	uint64_t used;          /* devices affected in the current window */
};

/* Per-organisation dispatch caps; org "*" carries the global cap. */
struct fbx_rate_info {
	fbx_id org;
	uint32_t rate_per_s;   /* deliveries per second, 0 = unlimited */
	uint32_t burst;        /* bucket size */
	uint32_t max_inflight; /* deliveries unanswered, 0 = unlimited */
	uint32_t inflight;     /* now */
};

enum fbx_rollout_op {
	FBX_ROP_STATUS = 1,
	FBX_ROP_PAUSE = 2,
	FBX_ROP_RESUME = 3,
	FBX_ROP_CANCEL = 4,
	FBX_ROP_APPROVE = 5, /* approve advancing to the next group */
};

/* What a dry run found: how many devices, where, the wave plan, and the
 * first control that would stop the command (stop_err FBX_OK = none). */
struct fbx_dryrun {
	uint32_t devices;
	uint32_t per_platform[FBX_PLATFORM_COUNT];
	struct fbx_group_count *groups; /* devices per group */
	size_t ngroups;
	uint32_t *waves; /* planned wave sizes */
	size_t nwaves;
	/* a rollout through groups: devices and waves of each stage (the
	 * listed groups, then the rest); nstages 0 otherwise */
	uint32_t stage_devices[FBX_ROLLOUT_GROUPS_MAX + 1];
	uint32_t stage_waves[FBX_ROLLOUT_GROUPS_MAX + 1];
	size_t nstages;
	int stop_err;            /* LIMIT_EXCEEDED, BREAKER_OPEN, ... */
	char verdict[256];       /* human explanation */
};

/* ---- certificates ------------------------------------------------------
 * Certificates automatic reasons depend on; global, like global breakers.
 * The engine trips the global breaker of each bound reason trip_before_s
 * before notAfter and while expired. */

#define FBX_CERT_PEM_MAX 16384 /* bytes of PEM in one CertRequest */
#define FBX_CERT_REASONS_MAX 8 /* reasons bound to one certificate */
#define FBX_CERTS_MAX 64       /* certificates registered at once */
#define FBX_CERT_TRIP_BEFORE_DEFAULT 600    /* 10 minutes */
#define FBX_CERT_TRIP_BEFORE_MAX (7 * 86400) /* 7 days */
#define FBX_CERT_TEXT_MAX 256  /* subject, issuer: 255 bytes + NUL */

enum fbx_cert_op {
	FBX_CERT_ADD = 1,    /* register, or renew under the same name */
	FBX_CERT_LIST = 2,   /* every registered certificate */
	FBX_CERT_REMOVE = 3, /* forget one */
};

enum fbx_cert_state {
	FBX_CST_VALID = 1,    /* more than 30 days left */
	FBX_CST_EXPIRING = 2, /* 30 days or less left */
	FBX_CST_TRIPPING = 3, /* within trip_before: bound breakers open */
	FBX_CST_EXPIRED = 4,  /* past notAfter: bound breakers open */
	FBX_CST_COUNT
};

/* alerts_sent bits: the stages an EV_CERT_EXPIRING went out for. */
#define FBX_CERT_ALERT_30D 1u
#define FBX_CERT_ALERT_7D 2u
#define FBX_CERT_ALERT_1D 4u
#define FBX_CERT_ALERT_EXPIRED 8u

struct fbx_cert_info {
	fbx_id name;
	char subject[FBX_CERT_TEXT_MAX]; /* RFC 2253, ASCII */
	char issuer[FBX_CERT_TEXT_MAX];
	int64_t not_before_ms, not_after_ms;
	int64_t days_left; /* whole days to notAfter, < 0 once past */
	fbx_id reasons[FBX_CERT_REASONS_MAX];
	uint32_t nreasons;
	uint32_t trip_before_s;
	uint8_t state; /* enum fbx_cert_state */
	uint32_t alerts_sent; /* FBX_CERT_ALERT_* */
	int64_t tripped_ms; /* last trip it caused, 0 = never */
	fbx_id added_by;
	int64_t added_ms;
	char sha256[65]; /* hex of the DER's SHA-256 */
};

const char *fbx_cert_state_name(int state);

/* ---- principals (issue 10) ---------------------------------------------
 * A principal is a key pair with a name, a kind, roles and the
 * organisations it may act for. */
enum fbx_principal_op {
	FBX_PRI_LIST = 1,
	FBX_PRI_ADD = 2,
	FBX_PRI_REVOKE = 3,
	FBX_PRI_ROTATE = 4,
	FBX_PRI_WEB_LOGIN = 5, /* issue 12: a web console session token */
};
enum fbx_principal_kind {
	FBX_PK_OPERATOR = 1,   /* a person at a console */
	FBX_PK_AUTOMATION = 2, /* the MDM's rule engine: automatic origin */
	FBX_PK_GATEWAY = 3,    /* a push gateway: the gateway endpoint only */
};
#define FBX_ROLE_VIEWER 1u   /* reads */
#define FBX_ROLE_OPERATOR 2u /* submit, enroll, rollouts, rollback */
#define FBX_ROLE_APPROVER 4u /* approve another's refused command */
#define FBX_ROLE_BREAKER 8u  /* trip, reset, configure; limits, rates */
#define FBX_ROLE_ADMIN 16u   /* principals, global controls */
#define FBX_ROLES_ALL 31u
#define FBX_PRINCIPAL_ORGS_MAX 48
#define FBX_PRINCIPAL_ORGS_LEN (FBX_PRINCIPAL_ORGS_MAX * (FBX_ID_MAX + 1))
#define FBX_PRINCIPAL_JSONL_MAX (1u << 20)

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
			uint32_t stale_minutes; /* 0 = every device */
		} list_devices;
		struct {
			int op; /* enum fbx_breaker_op */
			int global;
			fbx_id reason;
			int on_reset; /* enum fbx_reset_action */
			char note[FBX_NOTE_MAX];
			struct fbx_breaker_cfg cfg;
		} breaker;
		struct {
			int set; /* 0 = list the limits in force */
			int global;
			struct fbx_limit_info lim; /* set: type and values */
		} limit;
		struct {
			int set;
			int global;
			struct fbx_rate_info rate;
		} rate;
		struct {
			fbx_id token; /* from the LIMIT_EXCEEDED error */
			char note[FBX_NOTE_MAX];
		} approve;
		struct {
			int op; /* enum fbx_rollout_op */
			uint64_t command_id;
			char note[FBX_NOTE_MAX];
		} rollout;
		struct {
			fbx_id reason; /* "" = every reason */
			uint64_t after;
			uint32_t limit;
			uint32_t which; /* FBX_LH_*: held, settling, rollouts */
		} list_held;
		struct {
			struct fbx_selector sel;
			int execute;         /* 0 = plan only (dry run) */
			int include_changed; /* also undo devices changed since */
			uint32_t limit;      /* plan rows to return */
			char note[FBX_NOTE_MAX];
			uint64_t cursor;     /* slice: 0 = first */
			uint64_t last_command_id; /* snapshot, 0 on first */
			uint64_t rollback_id; /* first executed slice's; with
			                         cursor 0: go on from the
			                         engine's journal of that run */
			int sliced;          /* the client continues slices */
			fbx_id org_cursor;   /* every_org: org to go on in */
		} rollback;
		struct {
			struct fbx_selector sel; /* commands; and: */
			int state;   /* deliveries in this state, 0 = SENT+ACCEPTED */
			int force;   /* also terminal ones */
			int execute;
			char note[FBX_NOTE_MAX];
			uint64_t cursor;     /* slice: 0 = first */
			uint64_t last_command_id; /* snapshot, 0 on first */
			int sliced;          /* the client continues slices */
		} replay;
		struct {
			int64_t since_ms, until_ms;
			uint64_t cursor; /* opaque, 0 = start */
			uint32_t max_bytes; /* page size, 0 = 1 MiB */
		} export_;
		struct {
			fbx_id actor;     /* filters, "" = any */
			char action[32];
			int64_t since_ms, until_ms;
			uint64_t after;
			uint32_t limit;
		} audit_list;
		struct {
			int incremental; /* from the engine's checkpoint */
			uint64_t after_seq; /* full: continue after it */
			char after_hash[65]; /* its hash, hex, "" with 0 */
			uint32_t max_records; /* 0 = FBX_VERIFY_SLICE */
		} audit_verify;
		struct {
			int op; /* enum fbx_cert_op */
			fbx_id name; /* ADD, REMOVE */
			uint8_t *pem; /* ADD: heap, pem_len bytes, no NUL */
			size_t pem_len; /* 1..FBX_CERT_PEM_MAX */
			fbx_id reasons[FBX_CERT_REASONS_MAX];
			size_t nreasons; /* ADD: 1..FBX_CERT_REASONS_MAX */
			uint32_t trip_before_s; /* ADD: 0 = default */
			char note[FBX_NOTE_MAX];
		} cert;
		struct {
			int op;          /* enum fbx_principal_op */
			fbx_id name;     /* all but LIST */
			int kind;        /* ADD: enum fbx_principal_kind */
			uint32_t roles;  /* ADD: FBX_ROLE_* bits */
			/* ADD: "*" or org ids separated by ',' */
			char orgs[FBX_PRINCIPAL_ORGS_LEN];
			char public_key[41]; /* ADD, ROTATE: Z85 */
			char note[FBX_NOTE_MAX];
			uint32_t ttl_s; /* WEB_LOGIN: 0 = default */
		} principal;
		struct {
			int op; /* enum fbx_fleet_op */
			uint32_t stale_minutes;  /* RULE_SET/DEL */
			uint32_t repeat_minutes; /* RULE_SET, 0 = once */
			char note[FBX_NOTE_MAX];
			uint64_t command_id; /* VERSION */
			uint64_t after;      /* VERSION: delivery index */
			fbx_id group;        /* REPORT of a group, "" = none */
			fbx_id after_dev;    /* its page cursor */
		} fleet;
	} u;
	/* submit only */
	int dry_run;
	fbx_id approval; /* approval token, "" = none */
};

struct fbx_group_count {
	fbx_id name;
	uint32_t count;
};

/* ---- fleet check-in health (issue 12) ---------------------------------- */
enum fbx_fleet_op {
	FBX_FLEET_REPORT = 0,
	FBX_FLEET_RULE_SET = 1,
	FBX_FLEET_RULE_DEL = 2,
	FBX_FLEET_VERSION = 3,
};
#define FBX_FLEET_BUCKETS 9   /* <2h 2-4 4-8 8-24 24-48 48-72 72-168 >=168 never */
#define FBX_FLEET_OS_MAX 16   /* OS versions listed per organisation */
#define FBX_FLEET_RULES_MAX 8 /* alert rules per organisation */
#define FBX_FLEET_STALE_MAX 5256000u /* minutes: ten years */
#define FBX_FLEET_REPEAT_MAX 525600u /* minutes: a year */
struct fbx_fleet_rule {
	uint32_t stale_minutes;
	uint32_t repeat_minutes; /* 0 = once */
	uint32_t stale;          /* devices over it at the last pass */
	int64_t last_alert_ms;   /* 0 = not alerting */
};
struct fbx_version_count {
	char version[FBX_OSVER_MAX + 1];
	uint32_t count;
};
struct fbx_type_outcomes {
	uint8_t type; /* enum fbx_cmd_type */
	int silent;
	uint64_t ok_hour, failed_hour, expired_hour;
	uint64_t ok_day, failed_day, expired_day;
};
struct fbx_fleet_report {
	int64_t as_of_ms; /* 0 = not covered by a pass yet */
	uint32_t devices;
	uint32_t offline_hours[FBX_FLEET_BUCKETS];
	struct fbx_version_count os[FBX_FLEET_OS_MAX];
	size_t nos;
	uint32_t os_other;
	struct fbx_fleet_rule rules[FBX_FLEET_RULES_MAX];
	size_t nrules;
	struct fbx_type_outcomes out[FBX_CMD_TYPE_COUNT];
	size_t nout;
	fbx_id group;      /* a group's report: the group */
	fbx_id next_after; /* and the cursor of its next page, "" = done */
	struct { /* FBX_FLEET_VERSION */
		int set;
		uint64_t command_id;
		char target[FBX_OSVER_MAX + 1];
		uint32_t devices, at_target, other, unknown;
		uint64_t next_after;
	} version;
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
	uint64_t turn_max_us;  /* longest committed turn since start */
	uint64_t turns_failed; /* turns that did not commit */
	int degraded;          /* writes fail now; reads are served */
	uint32_t readers_used; /* LMDB reader slots in use */
	/* issue 10, since start */
	uint64_t auth_refused;       /* requests, gateway messages: FORBIDDEN */
	uint64_t results_forged;     /* results for another key's deliveries */
	uint64_t handshakes_refused; /* keys the ZAP handler refused */
	uint64_t commands_held;      /* held by breakers */
	uint64_t commands_settling;  /* automatic, in their settle window */
	uint32_t breakers_open;      /* organisations' and global */
	/* several nodes: this node's name ("" = one node), the leases it
	 * holds (duties counted), whether it holds the duties */
	char node[FBX_ID_MAX + 1];
	uint32_t leases;
	int duties;
	/* fuseboxd --admin-org ("" = none): who may act on global
	 * controls and list organisations */
	char admin_org[FBX_ID_MAX + 1];
};

struct fbx_console_rep {
	uint64_t request_id;
	int err;           /* FBX_OK or an fbx_err code */
	char errmsg[256];  /* detail when err != FBX_OK */
	/* LIMIT_EXCEEDED: the token a second operator approves, and the
	 * numbers behind the refusal */
	fbx_id approval_token;
	uint64_t limit_value, limit_count;
	/* MOVED: the owner of the organisation (cluster mode, issue 13) */
	fbx_id owner_node;
	char owner_endpoint[256];
	int kind;          /* enum fbx_creq_kind of the request answered */
	union {
		struct {
			uint64_t command_id;
			int duplicate; /* idempotent retry: existing command */
			uint32_t device_count; /* known so far */
			int state;             /* enum fbx_cstate */
			char held_by[2 * FBX_ID_MAX + 2]; /* state HELD */
			int dry_run;           /* dryrun below is filled */
			struct fbx_dryrun dryrun;
		} submit;
		struct {
			struct fbx_breaker_info *b;
			size_t n;
			uint32_t released;  /* RESET: commands released */
			uint32_t discarded; /* RESET: commands discarded */
			uint32_t held_again; /* RESET: held again by their
			                      * organisation's breaker */
			fbx_id cert_due; /* RESET: a certificate still due
			                  * for the reason ("" = none) */
		} breaker;
		struct {
			struct fbx_limit_info *l;
			size_t n;
		} limit;
		struct {
			struct fbx_rate_info *r;
			size_t n;
		} rate;
		struct {
			fbx_id token;
			fbx_id approver;
			fbx_id submitter;
			int64_t expires_ms;
		} approve;
		struct {
			uint64_t command_id;
			struct fbx_rollout_plan plan;
			struct fbx_rollout_status st;
		} rollout;
		struct fbx_rb_plan rollback;
		struct fbx_replay_result replay;
		struct {
			char *jsonl;  /* lines of JSON, heap */
			size_t len;
			uint64_t next_cursor; /* 0 = done */
		} export_;
		struct {
			struct fbx_audit_rec *r;
			size_t n;
			uint64_t next_after;
		} audit;
		struct {
			uint64_t records;   /* records checked */
			uint64_t broken_at; /* first bad sequence, 0 = intact */
			char why[128];
			uint64_t verified_seq; /* last record found intact */
			char verified_hash[65]; /* its hash, "" with 0 */
			int complete; /* nothing left to check */
			uint64_t head_seq;   /* last record written */
			uint64_t anchor_seq; /* chain starts after it */
		} verify;
		struct {
			fbx_id *orgs;
			uint32_t *devices;
			size_t n;
		} orgs;
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
		struct {
			struct fbx_cert_info *c; /* heap */
			size_t n; /* at most FBX_CERTS_MAX */
		} cert;
		struct {
			char *jsonl; /* heap, one principal a line */
			size_t len;
			uint32_t count;
		} principal;
		struct fbx_fleet_report fleet;
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
/* fbx_gw_msg_decode_generic - the same through protobuf-c only, without
 * the direct reader fbx_gw_msg_decode tries first for well-formed RESULTS
 * batches; for tests that compare the two. */
int fbx_gw_msg_decode_generic(const void *buf, size_t len,
    struct fbx_gw_msg *out, char *why, size_t whylen);
/* RESULTS messages fbx_gw_msg_decode read directly (tests: that a case
 * took the path it means to check) */
extern unsigned long fbx_gw_results_direct;
void fbx_gw_msg_free(struct fbx_gw_msg *m);
int fbx_gw_msg_encode(const struct fbx_gw_msg *m, uint8_t **buf, size_t *len);
/* fbx_gw_msg_kind - a gateway message's kind (enum fbx_gw_kind) read
 * from its top-level fields without decoding the body; FBX_GW_NONE when
 * it cannot tell (fbx_gw_msg_decode then says why). */
int fbx_gw_msg_kind(const void *buf, size_t len);

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
			int urgent; /* small commands: serve before the bulk */
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
/* fbx_eng_msg_encode_generic - the same through protobuf-c only (DELIVERIES
 * is written directly by fbx_eng_msg_encode); for tests comparing them. */
int fbx_eng_msg_encode_generic(
    const struct fbx_eng_msg *m, uint8_t **buf, size_t *len);

/* ======================= events (PUB) =================================== */

enum fbx_event_kind {
	FBX_EV_NONE = 0,
	FBX_EV_BREAKER_TRIPPED = 1,
	FBX_EV_BREAKER_RESET = 2,
	FBX_EV_BREAKER_WOULD_TRIP = 3, /* shadow mode */
	FBX_EV_ROLLOUT_PAUSED = 4,
	FBX_EV_ROLLOUT_RESUMED = 5,
	FBX_EV_LIMIT_REJECTED = 6,
	FBX_EV_FAILURE_SPIKE = 7,
	FBX_EV_COMMAND_SETTLED = 8, /* settle window over: released or held */
	FBX_EV_CERT_EXPIRING = 9, /* a registered certificate: 30/7/1 d, past */
	FBX_EV_DEVICES_STALE = 10, /* a fleet alert rule: devices without a
	                            * check-in (issue 12) */
	FBX_EV_OUTCOME_SILENCE = 11, /* a command type stopped succeeding */
	FBX_EV_COUNT /* one past the last kind: new kinds go above */
};

/* An alert published on the engine's PUB endpoint. The first frame is the
 * topic "fusebox.<kind name>", the second this message. */
struct fbx_event {
	int kind;
	int64_t at_ms;
	fbx_id org;    /* "*" for global */
	fbx_id reason;
	fbx_id actor;  /* operator or "engine" */
	uint64_t command_id;
	uint64_t count;  /* devices / commands concerned */
	uint64_t limit;  /* the threshold crossed */
	char detail[256];
};

const char *fbx_event_kind_name(int kind);
int fbx_event_encode(const struct fbx_event *ev, uint8_t **buf, size_t *len);
int fbx_event_decode(const void *buf, size_t len, struct fbx_event *out);

#endif
