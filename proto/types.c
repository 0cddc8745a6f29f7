/*
 * types.c: names of the shared enums and the identifier rule. Names are the
 * words operators type on the CLI and read in logs, so they are stable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fbx_types.h"

static const char *const cmd_names[FBX_CMD_TYPE_COUNT] = { "none", "lock",
	"unlock", "wipe", "os_update", "install_app", "remove_app",
	"set_policy", "start_lost_mode", "stop_lost_mode", "restart", "query",
	"clear_passcode" };
static const char *const origin_names[FBX_ORIGIN_COUNT] = { "none",
	"operator", "automatic", "rollback", "scheduled" };
static const char *const dstate_names[FBX_D_COUNT] = { "none", "queued",
	"sent", "accepted", "succeeded", "failed", "expired", "cancelled",
	"pending", "superseded" };
static const char *const cstate_names[FBX_C_COUNT] = { "none", "expanding",
	"active", "done", "held", "discarded", "settling" };
static const char *const ro_names[FBX_RO_COUNT] = { "none", "running",
	"baking", "paused", "awaiting_approval", "done", "cancelled" };
static const char *const prio_names[FBX_PRIO_COUNT] = { "recovery",
	"operator", "automatic", "bulk" };
static const char *const platform_names[FBX_PLATFORM_COUNT] = { "any",
	"android", "ios", "macos", "windows", "linux", "chromeos" };
static const char *const target_names[FBX_TARGET_KIND_COUNT] = { "none",
	"devices", "group", "org" };
static const char *const result_names[FBX_R_COUNT] = { "none", "accepted",
	"succeeded", "failed", "offline" };

static const char *
name_of(const char *const *tab, int n, int v)
{
	if (v < 0 || v >= n)
		return "unknown";
	return tab[v];
}

static int
parse_of(const char *const *tab, int n, const char *s)
{
	if (s == NULL)
		return 0;
	for (int i = 1; i < n; i++) {
		if (strcmp(tab[i], s) == 0)
			return i;
	}
	return 0;
}

int
fbx_id_valid(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];
		if (n >= FBX_ID_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == ':' || c == '@' || c == '-'))
			return 0;
	}
	return n > 0;
}

const char *
fbx_cmd_type_name(int t)
{
	return name_of(cmd_names, FBX_CMD_TYPE_COUNT, t);
}
const char *
fbx_origin_name(int o)
{
	return name_of(origin_names, FBX_ORIGIN_COUNT, o);
}
const char *
fbx_dstate_name(int s)
{
	return name_of(dstate_names, FBX_D_COUNT, s);
}
const char *
fbx_cstate_name(int s)
{
	return name_of(cstate_names, FBX_C_COUNT, s);
}
const char *
fbx_rollout_state_name(int s)
{
	return name_of(ro_names, FBX_RO_COUNT, s);
}
const char *
fbx_priority_name(int p)
{
	return name_of(prio_names, FBX_PRIO_COUNT, p);
}
const char *
fbx_platform_name(int p)
{
	return name_of(platform_names, FBX_PLATFORM_COUNT, p);
}
const char *
fbx_target_kind_name(int k)
{
	return name_of(target_names, FBX_TARGET_KIND_COUNT, k);
}
const char *
fbx_result_name(int r)
{
	return name_of(result_names, FBX_R_COUNT, r);
}
int
fbx_cmd_type_parse(const char *s)
{
	return parse_of(cmd_names, FBX_CMD_TYPE_COUNT, s);
}
int
fbx_origin_parse(const char *s)
{
	return parse_of(origin_names, FBX_ORIGIN_COUNT, s);
}
int
fbx_platform_parse(const char *s)
{
	if (s != NULL && strcmp(s, "any") == 0)
		return FBX_PLATFORM_ANY;
	return parse_of(platform_names, FBX_PLATFORM_COUNT, s);
}
int
fbx_dstate_parse(const char *s)
{
	return parse_of(dstate_names, FBX_D_COUNT, s);
}

int
fbx_cstate_parse(const char *s)
{
	return parse_of(cstate_names, FBX_C_COUNT, s);
}

void
fbx_command_clear(struct fbx_command *c)
{
	if (c == NULL)
		return;
	free(c->payload);
	free(c->dev_ids);
	memset(c, 0, sizeof(*c));
}

void
fbx_pct_str(uint32_t ppm, char *buf, size_t len)
{
	char t[32];
	size_t n;

	snprintf(t, sizeof(t), "%" PRIu32 ".%04" PRIu32, ppm / 10000,
	    ppm % 10000);
	n = strlen(t);
	while (n > 0 && t[n - 1] == '0')
		t[--n] = '\0';
	if (n > 0 && t[n - 1] == '.')
		t[--n] = '\0';
	snprintf(buf, len, "%s%%", t);
}

int
fbx_fmt_utc(int64_t ms, int millis, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	/* strftime: the compiler cannot bound a %04d year for snprintf */
	if (ms < 0 || gmtime_r(&s, &tm) == NULL ||
	    (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0 ||
	    len - n < (millis ? 6u : 2u)) {
		buf[0] = '\0';
		return -1;
	}
	if (millis)
		snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
	else
		snprintf(buf + n, len - n, "Z");
	return 0;
}

void
fbx_rb_empty_incident(char *buf, size_t len, const char *breaker,
    int64_t onset_ms, int64_t since_ms, int narrowed, int left_before)
{
	int64_t ms = onset_ms > 0 ? onset_ms : since_ms;
	char at[40] = "?";

	if (ms <= 0 || fbx_fmt_utc(ms, 1, at, sizeof(at)) != 0)
		snprintf(at, sizeof(at), "?");
	snprintf(buf, len,
	    "nothing to roll back: the incident of breaker %s's last trip "
	    "(%s %s) has no command%s%s; older trips: --reason R --since T "
	    "--until T",
	    breaker, onset_ms > 0 ? "onset" : "window from", at,
	    narrowed ? " within --since/--until" : "",
	    left_before ? "; earlier ones (if any) left: "
	                  "--include-before-onset"
	                : "");
}
