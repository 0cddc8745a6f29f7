/*
 * ctl.h: what the files of fuseboxctl share. fuseboxctl is the operator
 * CLI: a thin main over the console client (fbx_client.h) that parses
 * flags, builds one console request per step, and prints the reply as an
 * aligned table or, with --json, one JSON object per reply. Every failure
 * ends in one line on stderr, "fuseboxctl: NAME (code): message", and a
 * sysexits.h status, so scripts and runbooks can tell bad input from an
 * engine that is down. One file per verb group, run by main.c (options,
 * the command table); call.c and text.c serve them all. Calls between
 * verb files go one way: controls.c and devices.c -> certs.c,
 * controls.c -> query.c, rollback.c -> submit.c.
 */
#ifndef FBX_CTL_H
#define FBX_CTL_H

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl_json.h"
#include "fbx_client.h"
#include "fbx_keys.h"

#define CTL_DEFAULT_ENDPOINT "ipc:///tmp/fusebox/console.sock"
#define CTL_DEFAULT_TIMEOUT_MS 10000
#define CTL_DEFAULT_TTL_S 86400
#define CTL_DEFAULT_WAIT_S 300
#define CTL_ENROLL_BATCH 10000
#define CTL_REMOVE_BATCH 10000
#define CTL_LINE_MAX 4096
#define CTL_SYSTEM_ORG "_system"
/* Export page size asked of the engine. Small on purpose: the engine
 * (0.1.0) builds a page in a buffer that starts at 64 KiB and drops, without
 * telling, the record that would make it grow past max_bytes + 64 KiB,
 * and everything after it; a page that always fits in the first 64 KiB
 * never gets there. */
#define CTL_EXPORT_PAGE 32768

/* How long the first request waits for the console socket to accept
 * connections (at most --timeout): a daemon started just before binds
 * only after recovery. */
#define CTL_CONNECT_WAIT_MS 3000

struct ctl {
	const char *endpoint;
	char org[FBX_ID_MAX + 1];
	char actor[FBX_ID_MAX + 1];
	int json;
	int timeout_ms;
	int retries;
	fbx_client *cli;
	char errmsg[256]; /* ctl_call_ex: the last refusal's message */
	/* issue 10: key files (NULL = FUSEBOX_KEY / FUSEBOX_SERVER_KEY /
	 * ~/.config/fusebox/{client.key,server.pub}) */
	const char *key_file, *server_key_file;
	/* the arguments as typed (argv[1..], before getopt reorders
	 * them): the "more:" lines repeat them (ctl_more) */
	int nargs;
	char **args;
};

struct idlist {
	fbx_id *ids;
	size_t n, cap, max;
};

struct table {
	int ncol;
	char **cells; /* row-major */
	size_t nrows, cap;
};

/* The organisations the engine knows (LIST_ORGS), for --all-orgs. */
struct orglist {
	fbx_id *orgs;
	uint32_t *devices;
	size_t n;
};

enum {
	OPT_JSON = 1000,
	OPT_TIMEOUT,
	OPT_RETRIES,
	OPT_VERSION,
	OPT_HELP,
	OPT_TYPE,
	OPT_DEVICE,
	OPT_DEVICES_FILE,
	OPT_GROUP,
	OPT_ALL,
	OPT_PLATFORM,
	OPT_ORIGIN,
	OPT_REASON,
	OPT_PAYLOAD,
	OPT_PAYLOAD_FILE,
	OPT_TTL,
	OPT_IDEM,
	OPT_WAIT,
	OPT_STATE,
	OPT_LIMIT,
	OPT_AFTER,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_OS,
	OPT_FILE,
	OPT_DRY_RUN,
	OPT_APPROVAL,
	OPT_ROLLOUT,
	OPT_FIRST,
	OPT_FIRST_SHARE,
	OPT_GROWTH,
	OPT_MAX_WAVE,
	OPT_BAKE,
	OPT_SUCCESS,
	OPT_FAILURE,
	OPT_MIN_RESULTS,
	OPT_STAGES,
	OPT_APPROVE_STAGES,
	OPT_NOTE,
	OPT_GLOBAL,
	OPT_RELEASE,
	OPT_DISCARD,
	OPT_WINDOW,
	OPT_MIN,
	OPT_SHARE,
	OPT_BASELINE_MULT,
	OPT_GLOBAL_ORGS,
	OPT_SETTLE,
	OPT_MIN_SAMPLES,
	OPT_GLOBAL_SHARE,
	OPT_SHADOW,
	OPT_ENFORCE,
	OPT_MAX,
	OPT_RATE,
	OPT_BURST,
	OPT_MAX_INFLIGHT,
	OPT_ORGS_PREFIX,
	OPT_COUNT,
	OPT_ALL_ORGS,
	OPT_COMMAND,
	OPT_INCIDENT,
	OPT_EXECUTE,
	OPT_INCLUDE_CHANGED,
	OPT_ROWS,
	OPT_FORCE,
	OPT_OUTPUT,
	OPT_ACTOR_FILTER,
	OPT_ACTION,
	OPT_PAGE_BYTES,
	OPT_FULL,
	OPT_RESUME,
	OPT_INCLUDE_BEFORE_ONSET,
	OPT_CONTINUE,
	OPT_NAME,
	OPT_TRIP_BEFORE,
	OPT_KEY,
	OPT_SERVER_KEY,
	OPT_KIND,
	OPT_ROLES,
	OPT_ORGS,
	OPT_PUBLIC_KEY,
	OPT_KEY_OUT,
	OPT_STALE,
	OPT_SETTLING,
	OPT_REPEAT,
};

#define COMMON_LONGOPTS                                                      \
	{ "endpoint", required_argument, NULL, 'e' },                        \
	    { "org", required_argument, NULL, 'o' },                         \
	    { "actor", required_argument, NULL, 'a' },                       \
	    { "json", no_argument, NULL, OPT_JSON },                         \
	    { "timeout", required_argument, NULL, OPT_TIMEOUT },             \
	    { "retries", required_argument, NULL, OPT_RETRIES },             \
	    { "help", no_argument, NULL, OPT_HELP },                         \
	    { "version", no_argument, NULL, OPT_VERSION },                   \
	    { "key", required_argument, NULL, OPT_KEY },                     \
	    { "server-key", required_argument, NULL, OPT_SERVER_KEY }

/* ctl_parse_cmd_opts - run getopt_long over a command's arguments, handling
 * common options and calling back for the others. */
typedef int (*opt_fn)(void *arg, struct ctl *ctl, int c, const char *optarg,
    int argc, char **argv);

struct page_args {
	uint64_t after;
	uint64_t limit;
	int state;
	int64_t since, until;
	fbx_id after_id;
	fbx_id group;
	uint32_t stale_minutes; /* devices --stale */
	/* enroll */
	struct fbx_device dev;
	int have_dev, have_platform;
	const char *file;
};

/* The options of the incident commands; each command's option table says
 * which of them it takes. */
struct ops_args {
	uint64_t *ids; /* --command */
	size_t nids, idcap;
	fbx_id incident;
	int global;
	int origin, type, state;
	fbx_id reason, group;
	int64_t since, until;
	int execute, include_changed, force, all_orgs, wait;
	int have_rows, have_note;
	uint64_t wait_s, rows, limit, after, page_bytes;
	char note[FBX_NOTE_MAX];
	fbx_id actor;
	char action[32];
	const char *output;
	int full; /* audit verify --full */
	/* rollback, replay --resume CURSOR:LAST[:ROLLBACK[:ORG]] */
	uint64_t resume_cursor, resume_last, resume_rbid;
	fbx_id resume_org;
	int include_before_onset;
	uint64_t continue_rbid; /* rollback --continue ID */
};

/* text.c: ctl_cmd_type - a --type value (lock, os-update or os_update,
 * ...) into *type. @return EX_OK, or the usage error's status */
int ctl_cmd_type(const char *oa, int *type);

/* call.c */
int ctl_exit_status(int err);
int ctl_fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* ctl_fail_create - a local file (--key-out, --output) cannot be created:
 * IO's line, exit status 73 (EX_CANTCREAT; not 75: retrying does not
 * mend a missing directory or a permission). */
int ctl_fail_create(const char *path, int err);
int ctl_usage_err(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
int ctl_call_ex(struct ctl *ctl, struct fbx_console_req *req,
    struct fbx_console_rep *rep, int *eng_err);
int ctl_call(
    struct ctl *ctl, struct fbx_console_req *req, struct fbx_console_rep *rep);
int ctl_need_org(const struct ctl *ctl);
void ctl_orglist_free(struct orglist *l);
int ctl_list_orgs(struct ctl *ctl, struct orglist *out);

/* text.c */
int ctl_parse_u64(const char *s, uint64_t max, uint64_t *out);
int ctl_parse_pct(const char *s, uint32_t *ppm);
int ctl_parse_factor(const char *s, uint32_t lo, uint32_t hi, uint32_t *x100);
int64_t ctl_mono_ms(void);
int ctl_parse_time(const char *s, int64_t *out);
void ctl_fmt_time(int64_t ms, char *buf, size_t len);
int ctl_copy_id(char *dst, const char *src);
int ctl_read_file_capped(
    const char *path, size_t max, uint8_t **out, size_t *outlen);
int ctl_idlist_add(struct idlist *l, const char *id);
int ctl_idlist_add_split(struct idlist *l, const char *s, const char **bad);
void ctl_table_free(struct table *t);
int ctl_table_row(struct table *t, ...);
void ctl_table_print(const struct table *t);
void ctl_plan_str(const struct fbx_rollout_plan *p, char *buf, size_t len);
int ctl_copy_note(char *dst, const char *oa);
int ctl_parse_minutes(const char *s, uint32_t max, uint32_t *out);
int ctl_page_opt(
    void *arg, struct ctl *ctl, int c, const char *oa, int argc, char **argv);
void ctl_target_str(const struct fbx_command *c, char *buf, size_t len);
int ctl_no_opt(
    void *arg, struct ctl *ctl, int c, const char *oa, int argc, char **argv);
void ctl_fmt_minutes(uint32_t m, char *buf, size_t len);
/* ctl_more - the line that pages on: "more: fuseboxctl ARGS --after
 * AFTER", ARGS the command line as typed (its organisation, filters and
 * limit), shell-quoted, without its own --after; lead is printed first */
void ctl_more(const struct ctl *ctl, const char *lead, const char *after);
/* ctl_more_u64 - ctl_more with a numeric --after */
void ctl_more_u64(const struct ctl *ctl, const char *lead, uint64_t after);
int ctl_parse_dur_s(const char *s, uint64_t max, uint32_t *out);

/* main.c */
int ctl_parse_cmd_opts(struct ctl *ctl, int argc, char **argv,
    const struct option *longopts, const char *usage, opt_fn fn, void *arg);

/* submit.c */
int ctl_settled(const struct fbx_command *c);

/* query.c */
void ctl_rollout_rows(struct table *t, const struct fbx_rollout_plan *p,
    const struct fbx_rollout_status *r);

/* ops.c */
int ctl_ops_opt(
    void *arg, struct ctl *ctl, int c, const char *oa, int argc, char **argv);
int ctl_sel_check(const char *cmd, const struct ops_args *a);
void ctl_sel_build(const struct ops_args *a, struct fbx_selector *s);
void ctl_sel_str(const struct ops_args *a, const char *breaker, char *buf,
    size_t len);

/* certs.c */
int ctl_cert_fetch(struct ctl *ctl, struct fbx_console_rep *rep);
void ctl_cert_lines(const struct fbx_console_rep *rep, const char *reason);

/* the commands: one function per verb, called by main (main.c) */
/* submit.c */
int cmd_submit(struct ctl *ctl, int argc, char **argv);
/* query.c */
int cmd_list(struct ctl *ctl, int argc, char **argv);
int cmd_show(struct ctl *ctl, int argc, char **argv);
/* devices.c */
int cmd_status(struct ctl *ctl, int argc, char **argv);
int cmd_enroll(struct ctl *ctl, int argc, char **argv);
int cmd_devices(struct ctl *ctl, int argc, char **argv);
int cmd_groups(struct ctl *ctl, int argc, char **argv);
int cmd_remove(struct ctl *ctl, int argc, char **argv);
/* fleet.c */
int cmd_fleet(struct ctl *ctl, int argc, char **argv);
/* controls.c */
int cmd_limit(struct ctl *ctl, int argc, char **argv);
int cmd_breaker(struct ctl *ctl, int argc, char **argv);
int cmd_held(struct ctl *ctl, int argc, char **argv);
int cmd_rollout(struct ctl *ctl, int argc, char **argv);
int cmd_summary(struct ctl *ctl, int argc, char **argv);
int cmd_approve(struct ctl *ctl, int argc, char **argv);
int cmd_rate(struct ctl *ctl, int argc, char **argv);
/* ops.c */
int cmd_orgs(struct ctl *ctl, int argc, char **argv);
/* rollback.c */
int cmd_rollback(struct ctl *ctl, int argc, char **argv);
/* replay.c */
int cmd_replay(struct ctl *ctl, int argc, char **argv);
/* export.c */
int cmd_export(struct ctl *ctl, int argc, char **argv);
/* audit.c */
int cmd_audit(struct ctl *ctl, int argc, char **argv);
/* certs.c */
int cmd_cert(struct ctl *ctl, int argc, char **argv);
/* access.c */
int cmd_principal(struct ctl *ctl, int argc, char **argv);
int cmd_web(struct ctl *ctl, int argc, char **argv);

#endif
