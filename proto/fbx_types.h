/*
 * fbx_types.h: the domain vocabulary shared by every module: command types,
 * origins, targets, platforms, delivery and command states, and the size
 * caps on identifiers. Values equal the wire enums of proto/fusebox.proto
 * and the bytes stored in LMDB, so they are append only.
 */
#ifndef FBX_TYPES_H
#define FBX_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define FBX_PROTOCOL_VERSION 1

/* Identifiers (organisation, device, group, actor, gateway, reason,
 * idempotency key) are 1..FBX_ID_MAX bytes of [A-Za-z0-9._:@-]. */
#define FBX_ID_MAX 64
#define FBX_OSVER_MAX 32
#define FBX_GROUPS_MAX 8              /* groups per device */
#define FBX_PAYLOAD_MAX (64 * 1024)   /* command payload bytes */
#define FBX_TARGET_IDS_MAX 100000     /* explicit device ids per submit */
#define FBX_DEVICES_PER_CMD_MAX (1u << 24) /* deliveries per command */
#define FBX_CONSOLE_MSG_MAX (8u * 1024 * 1024)
#define FBX_GATEWAY_MSG_MAX (32u * 1024 * 1024)
/* gateway -> engine: the largest legal message is a batch of 65,536
 * check-ins (about 180 bytes each at most) */
#define FBX_GATEWAY_IN_MAX (12u * 1024 * 1024)
#define FBX_ENROLL_MAX 50000          /* devices per enroll request */
#define FBX_PAGE_MAX 10000            /* rows per list/page reply */
#define FBX_BATCH_MAX 65536           /* deliveries/results per gateway msg */

enum fbx_cmd_type {
	FBX_CMD_NONE = 0,
	FBX_CMD_LOCK = 1,
	FBX_CMD_UNLOCK = 2,
	FBX_CMD_WIPE = 3,
	FBX_CMD_OS_UPDATE = 4,
	FBX_CMD_INSTALL_APP = 5,
	FBX_CMD_REMOVE_APP = 6,
	FBX_CMD_SET_POLICY = 7,
	FBX_CMD_START_LOST_MODE = 8,
	FBX_CMD_STOP_LOST_MODE = 9,
	FBX_CMD_RESTART = 10,
	FBX_CMD_QUERY = 11,
	FBX_CMD_CLEAR_PASSCODE = 12,
	FBX_CMD_TYPE_COUNT
};

enum fbx_origin {
	FBX_ORIGIN_NONE = 0,
	FBX_ORIGIN_OPERATOR = 1,
	FBX_ORIGIN_AUTOMATIC = 2,
	FBX_ORIGIN_ROLLBACK = 3,
	FBX_ORIGIN_SCHEDULED = 4,
	FBX_ORIGIN_COUNT
};

enum fbx_target_kind {
	FBX_TARGET_NONE = 0,
	FBX_TARGET_DEVICES = 1, /* explicit device ids */
	FBX_TARGET_GROUP = 2,   /* every device of one group */
	FBX_TARGET_ORG = 3,     /* every device of the organisation */
	FBX_TARGET_KIND_COUNT
};

enum fbx_platform {
	FBX_PLATFORM_ANY = 0,
	FBX_PLATFORM_ANDROID = 1,
	FBX_PLATFORM_IOS = 2,
	FBX_PLATFORM_MACOS = 3,
	FBX_PLATFORM_WINDOWS = 4,
	FBX_PLATFORM_LINUX = 5,
	FBX_PLATFORM_CHROMEOS = 6,
	FBX_PLATFORM_COUNT
};

enum fbx_attest {
	FBX_ATTEST_UNKNOWN = 0,
	FBX_ATTEST_PASS = 1,
	FBX_ATTEST_FAIL = 2,
	FBX_ATTEST_COUNT
};

/* Delivery states. Terminal: SUCCEEDED, FAILED, EXPIRED, CANCELLED. */
enum fbx_dstate {
	FBX_D_NONE = 0,
	FBX_D_QUEUED = 1,    /* waiting for a gateway with credit */
	FBX_D_SENT = 2,      /* handed to a gateway, no answer yet */
	FBX_D_ACCEPTED = 3,  /* device received it, outcome pending */
	FBX_D_SUCCEEDED = 4,
	FBX_D_FAILED = 5,
	FBX_D_EXPIRED = 6,   /* time-to-live passed before an outcome */
	FBX_D_CANCELLED = 7,
	FBX_D_PENDING = 8,   /* device offline: waits for its check-in */
	FBX_D_SUPERSEDED = 9, /* never sent: a newer command of the same type
	                         and payload for the device replaced it */
	FBX_D_COUNT
};

/* Result a gateway reports for one delivery. */
enum fbx_result {
	FBX_R_NONE = 0,
	FBX_R_ACCEPTED = 1,
	FBX_R_SUCCEEDED = 2,
	FBX_R_FAILED = 3,
	FBX_R_OFFLINE = 4,
	FBX_R_COUNT
};

/* Command life cycle. */
enum fbx_cstate {
	FBX_C_NONE = 0,
	FBX_C_EXPANDING = 1, /* accepted, deliveries still being created */
	FBX_C_ACTIVE = 2,    /* all deliveries created, some not terminal */
	FBX_C_DONE = 3,      /* every delivery terminal */
	FBX_C_HELD = 4,      /* held by an open breaker: not dispatched */
	FBX_C_DISCARDED = 5, /* held, then discarded by an operator */
	FBX_C_SETTLING = 6,  /* automatic lock-type: journaled, counted by the
	                        breakers, released at settle_until_ms unless
	                        a breaker trips first (then HELD) */
	FBX_C_COUNT
};

static inline int
fbx_cstate_terminal(int s)
{
	return s == FBX_C_DONE || s == FBX_C_DISCARDED;
}

/* Dispatch priority classes, highest first. */
enum fbx_priority {
	FBX_PRIO_RECOVERY = 0,  /* unlock, stop lost mode, rollback */
	FBX_PRIO_OPERATOR = 1,  /* operator and scheduled commands */
	FBX_PRIO_AUTOMATIC = 2, /* rules, detectors */
	FBX_PRIO_BULK = 3,      /* staged rollouts */
	FBX_PRIO_COUNT
};

/* Command types a breaker on automatic commands guards: the ones that
 * take a device away from its user. */
static inline int
fbx_cmd_lock_type(int t)
{
	return t == FBX_CMD_LOCK || t == FBX_CMD_WIPE ||
	    t == FBX_CMD_START_LOST_MODE || t == FBX_CMD_CLEAR_PASSCODE;
}

#define FBX_PPM 1000000u /* shares are in parts per million */
#define FBX_ROLLOUT_GROUPS_MAX 8
#define FBX_NOTE_MAX 160

/* A staged rollout: waves of growing size, bake time between waves, a
 * success share to advance and a failure share (after a minimum number
 * of results) that pauses. With groups, the waves go through the groups
 * in order (verification first). Zero values take defaults. */
struct fbx_rollout_plan {
	uint8_t enabled;
	uint8_t approve_groups;  /* advancing past a group needs approval */
	uint8_t ngroups;
	uint32_t first_count;    /* first wave size, or */
	uint32_t first_share_ppm; /* first wave as a share of the target */
	uint32_t growth_x100;    /* next = previous * growth / 100 */
	uint32_t max_wave;       /* cap on a wave's size */
	uint32_t bake_s;         /* wait after a wave's results are in */
	uint32_t success_ppm;    /* succeeded share of a wave to advance */
	uint32_t failure_ppm;    /* failed share that pauses */
	uint32_t min_results;    /* results before failures are judged */
	char groups[FBX_ROLLOUT_GROUPS_MAX][FBX_ID_MAX + 1];
};

enum fbx_rollout_state {
	FBX_RO_NONE = 0,
	FBX_RO_RUNNING = 1,  /* a wave is out */
	FBX_RO_BAKING = 2,   /* wave done, waiting for the bake time */
	FBX_RO_PAUSED = 3,   /* by an operator or a failure threshold */
	FBX_RO_AWAITING_APPROVAL = 4, /* next group needs an approval */
	FBX_RO_DONE = 5,
	FBX_RO_CANCELLED = 6,
	FBX_RO_COUNT
};

struct fbx_rollout_status {
	uint8_t state;       /* enum fbx_rollout_state */
	uint8_t stage;       /* index in plan.groups */
	uint32_t wave;       /* waves released so far */
	uint32_t released;   /* deliveries released into dispatch */
	uint32_t wave_start; /* index of the current wave's first delivery */
	uint32_t wave_size;
	int64_t wave_started_ms;
	int64_t bake_until_ms;
	char note[FBX_NOTE_MAX]; /* why paused / cancelled */
};

static inline int
fbx_dstate_terminal(int s)
{
	return s == FBX_D_SUCCEEDED || s == FBX_D_FAILED ||
	    s == FBX_D_EXPIRED || s == FBX_D_CANCELLED ||
	    s == FBX_D_SUPERSEDED;
}

/* Delivery ids are (command id << 24) | index within the command, so the
 * deliveries of one command are one contiguous key range. */
/* the largest command id: delivery ids keep 24 bits for the index */
#define FBX_CMD_ID_MAX ((UINT64_C(1) << 40) - 1)
#define FBX_DLV_ID(cmd, idx) (((uint64_t)(cmd) << 24) | (uint64_t)(idx))
#define FBX_DLV_CMD(id) ((uint64_t)(id) >> 24)
#define FBX_DLV_IDX(id) ((uint32_t)((id) & 0xffffffu))

/* A managed device as the registry holds it. */
struct fbx_device {
	char org[FBX_ID_MAX + 1];
	char id[FBX_ID_MAX + 1];
	uint8_t platform;    /* enum fbx_platform */
	uint8_t online;      /* 1 after a check-in, 0 after an offline result */
	uint8_t attestation; /* enum fbx_attest, last verdict */
	uint8_t ngroups;
	char os_version[FBX_OSVER_MAX + 1];
	char groups[FBX_GROUPS_MAX][FBX_ID_MAX + 1];
	int64_t enrolled_ms;
	int64_t last_checkin_ms; /* 0 = never */
	uint32_t pending; /* stale listings only: deliveries waiting for it */
};

/* A command as journaled. payload and dev_ids are heap memory owned by the
 * struct; fbx_command_clear() frees them. */
struct fbx_command {
	uint64_t id; /* journal sequence, > 0 */
	char org[FBX_ID_MAX + 1];
	char actor[FBX_ID_MAX + 1];
	char reason[FBX_ID_MAX + 1];
	char idem_key[FBX_ID_MAX + 1];
	char group[FBX_ID_MAX + 1]; /* FBX_TARGET_GROUP */
	uint8_t type;               /* enum fbx_cmd_type */
	uint8_t origin;             /* enum fbx_origin */
	uint8_t target_kind;        /* enum fbx_target_kind */
	uint8_t platform;           /* filter, FBX_PLATFORM_ANY = none */
	uint8_t state;              /* enum fbx_cstate */
	uint32_t ttl_s;
	int64_t created_ms;
	int64_t expires_ms;
	uint32_t ndeliveries;         /* deliveries created so far */
	uint32_t counts[FBX_D_COUNT]; /* deliveries per state */
	uint8_t *payload;
	uint32_t payload_len;
	char (*dev_ids)[FBX_ID_MAX + 1]; /* FBX_TARGET_DEVICES */
	uint32_t ndev_ids;
	/* Expansion progress, persisted with the deliveries it created:
	 * group/org targets resume after device id `cursor`, explicit
	 * targets at index `cursor_idx`. */
	char cursor[FBX_ID_MAX + 1];
	uint32_t cursor_idx;
	/* safety controls */
	uint8_t priority;               /* enum fbx_priority */
	char held_by[2 * FBX_ID_MAX + 2]; /* breaker: "org/reason" or "*" "/reason" */
	char approved_by[FBX_ID_MAX + 1]; /* second operator, if any */
	char resolved_by[FBX_ID_MAX + 1]; /* who released or discarded it */
	char note[FBX_NOTE_MAX];          /* why held / discarded */
	struct fbx_rollout_plan rollout;
	struct fbx_rollout_status ro;
	/* settle window: the time a SETTLING command is released, or was
	 * (kept after the release: the verdict is in note); 0 = never
	 * settled */
	int64_t settle_until_ms;
	/* blast-radius limit: when this command's devices were counted in
	 * its type's window (0 = not counted: no limit on the type then,
	 * or held when it arrived), how many, and the window and use-record
	 * generation they were counted under. A release of a held command
	 * counts only what the window no longer holds; a discard of one
	 * that never reached a device takes its count back out. */
	int64_t limit_at_ms;
	uint32_t limit_n;
	uint32_t limit_window_s;
	uint32_t limit_gen;
};

/**
 * fbx_command_clear - free a command's heap fields and zero it. NULL is
 * accepted.
 */
void fbx_command_clear(struct fbx_command *c);

#define FBX_HIST_MAX 12
struct fbx_dhist {
	uint8_t state; /* enum fbx_dstate */
	uint16_t code; /* gateway/device failure code, 0 = none */
	int64_t at_ms;
};

/* One delivery of a command to one device, with its state history. When
 * the history is full the oldest entries after the first are dropped. */
struct fbx_delivery {
	uint64_t id; /* FBX_DLV_ID(command, index) */
	uint8_t state;
	uint16_t code;
	uint32_t attempts; /* times handed to a gateway */
	int64_t updated_ms;
	char device[FBX_ID_MAX + 1];
	uint8_t nhist;
	struct fbx_dhist hist[FBX_HIST_MAX];
};

/**
 * fbx_id_valid - whether s (NUL-terminated) is a well-formed identifier.
 * @return 1 if valid, 0 otherwise.
 */
int fbx_id_valid(const char *s);

/* Names used by the CLI, the logs and the docs ("lock", "succeeded"). */
const char *fbx_cmd_type_name(int t);
/* fbx_pct_str - ppm (parts per million) as a short percentage: "2%",
 * "2.5%", "0.01%" */
void fbx_pct_str(uint32_t ppm, char *buf, size_t len);
const char *fbx_origin_name(int o);
const char *fbx_dstate_name(int s);
const char *fbx_cstate_name(int s);
const char *fbx_platform_name(int p);
const char *fbx_target_kind_name(int k);
const char *fbx_rollout_state_name(int s);
const char *fbx_priority_name(int p);

/**
 * fbx_fmt_utc - a wall time in UTC as RFC 3339 ("2026-12-06T03:12:02.517Z",
 * or without ".517" when !millis), the one format of every time the
 * engine and fuseboxctl write. @return 0, or -1 (a negative time, or a
 * buffer too small: buf is then "").
 */
int fbx_fmt_utc(int64_t ms, int millis, char *buf, size_t len);

/**
 * fbx_rb_empty_incident - the message of a rollback of an incident that
 * selects nothing, the engine's (one slice) and fuseboxctl's (the total
 * of several) alike: which breaker's last trip it took and when its
 * incident began (a later trip of the reason, a test or a
 * certificate's, moves --incident to it), then the advice. The window's
 * start comes first: the engine's reply holds 255 bytes.
 * @param breaker "org/reason" or "* /reason" (no space)
 * @param onset_ms the incident's onset (0: none recorded)
 * @param since_ms the window's start, shown when there is no onset
 * @param narrowed the request gave --since or --until as well
 * @param left_before earlier commands of the reason may have been left
 * (executed without --include-before-onset)
 */
void fbx_rb_empty_incident(char *buf, size_t len, const char *breaker,
    int64_t onset_ms, int64_t since_ms, int narrowed, int left_before);
const char *fbx_result_name(int r);
/* Reverse lookups: return the value, or 0 if the name is unknown. */
int fbx_cmd_type_parse(const char *s);
int fbx_origin_parse(const char *s);
int fbx_platform_parse(const char *s);
int fbx_dstate_parse(const char *s);
int fbx_cstate_parse(const char *s); /* 0 if unknown */

#endif
