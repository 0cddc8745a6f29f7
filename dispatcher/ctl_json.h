/*
 * ctl_json.h: fuseboxctl's --json output, built with jansson (issue 12
 * item 6). Each ctl_json_* builder returns a new json_t (NULL only when
 * out of memory); ctl_json_print writes one as one compact line. Key
 * names and value types are those scripts read (docs/operations.md).
 */
#ifndef CTL_JSON_H
#define CTL_JSON_H

#include <stdint.h>

#include <jansson.h>

#include "fbx_client.h"
#include "fbx_json.h"

/* members of an object under construction; strings that are not UTF-8
 * are repaired (fbx_json_str), integers are JSON integers */
#define CJ_STR(o, k, v) fbx_json_set_str((o), (k), (v))
#define CJ_INT(o, k, v) fbx_json_set_int((o), (k), (long long)(v))
#define CJ_BOOL(o, k, v) fbx_json_set_bool((o), (k), (v))
#define CJ_SET(o, k, v) fbx_json_set((o), (k), (v))

/* the rollback action names (fuseboxctl rollback --json) and the fleet's
 * offline-hours buckets, shared with the tables of fuseboxctl (ctl/) */
extern const char *const ctl_rb_action_key[FBX_RB_COUNT];
extern const char *const ctl_fleet_bucket_names[FBX_FLEET_BUCKETS];

/* ctl_json_print - o as one compact JSON line on stdout; takes o.
 * @return 0, or -1 when o is NULL or could not be written */
int ctl_json_print(json_t *o);

json_t *ctl_json_counts(const uint32_t *counts);
json_t *ctl_json_command(const struct fbx_command *c);
json_t *ctl_json_delivery(const struct fbx_delivery *d);
json_t *ctl_json_device(const struct fbx_device *d, int with_pending);
json_t *ctl_json_plan(const struct fbx_rollout_plan *p);
json_t *ctl_json_ro_status(const struct fbx_rollout_status *r);
json_t *ctl_json_dry_run(const struct fbx_dryrun *d);
json_t *ctl_json_breaker(const struct fbx_breaker_info *b);
json_t *ctl_json_cert(const struct fbx_cert_info *c);
/* ctl_cert_bound - whether c is bound to reason ("" or NULL = any) */
int ctl_cert_bound(const struct fbx_cert_info *c, const char *reason);
/* ctl_json_certs - the certificates of a CERT reply bound to reason
 * ("" = all) as an array; rep NULL = [] */
json_t *ctl_json_certs(const struct fbx_console_rep *rep, const char *reason);
json_t *ctl_json_fleet(const struct fbx_fleet_report *f);
/* ctl_json_rb_actions - {"cancel":N,...} of the FBX_RB_COUNT counters */
json_t *ctl_json_rb_actions(const uint32_t *per);
json_t *ctl_json_rb_plan(const char *org, const struct fbx_rb_plan *p,
    int rows);

#endif
