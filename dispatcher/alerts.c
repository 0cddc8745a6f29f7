/*
 * alerts.c: alert commands: run beside the loop, never in it (posix_spawn,
 * reaped with waitpid(WNOHANG) before the next start), at most a few at
 * once and each kind, organisation and reason at most once per interval.
 */
#include <errno.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "engine_int.h"

/* Alert commands run beside the loop, never in it: posix_spawn starts
 * one and returns; the children are reaped with waitpid(WNOHANG) before
 * the next start. At most ALERT_RUNNING_MAX run at once and each (event
 * kind, organisation, reason) starts at most one per ALERT_INTERVAL_MS;
 * the rest are dropped, counted, logged, and reported to the next alert
 * of that key in
 * FUSEBOX_DROPPED. One daemon runs one engine, so this state is the
 * process's. */
#define ALERT_RUNNING_MAX 4
#define ALERT_INTERVAL_MS 1000

static struct {
	int init;
	struct fbxi_alert_gate gate;
	pid_t pid[ALERT_RUNNING_MAX];
	unsigned running;
} alerts;

/* alert_reap - forget the alert commands that have exited. With SIGCHLD
 * ignored (SA_NOCLDWAIT) the kernel reaps them and waitpid says ECHILD:
 * gone either way. */
static void
alert_reap(void)
{
	for (unsigned i = 0; i < alerts.running;) {
		int st;
		pid_t r = waitpid(alerts.pid[i], &st, WNOHANG);
		if (r == 0 || (r < 0 && errno == EINTR)) {
			i++;
			continue;
		}
		alerts.pid[i] = alerts.pid[--alerts.running];
	}
}

/* run_alert - start the operator's alert command for one event, with the
 * event in its environment; never waits for it. */
void
fbxi_run_alert(struct fbx_engine *e, const struct fbx_event *ev)
{
	char v_kind[96], v_org[96], v_reason[96], v_count[64], v_limit[64],
	    v_detail[300], v_cmd[64], v_dropped[64];
	char *argv[] = { "/bin/sh", "-c", (char *)e->o.alert_cmd, NULL };
	char *envp[] = { v_kind, v_org, v_reason, v_count, v_limit, v_detail,
		v_cmd, v_dropped, "PATH=/usr/local/bin:/usr/bin:/bin", NULL };
	uint64_t dropped = 0;
	pid_t pid;
	int rc;

	if (e->o.alert_cmd == NULL || e->o.alert_cmd[0] == '\0')
		return;
	if (!alerts.init) {
		fbxi_alert_gate_init(
		    &alerts.gate, ALERT_RUNNING_MAX, ALERT_INTERVAL_MS);
		alerts.init = 1;
	}
	alert_reap();
	if (!fbxi_alert_admit(&alerts.gate, ev->kind, ev->org, ev->reason,
	        fbxi_mono_ms(), alerts.running, &dropped)) {
		FBX_LOGW("alert %s (%s/%s) dropped: %u alert commands running "
		         "or one ran less than %d ms ago (%llu dropped in all)",
		    fbx_event_kind_name(ev->kind), ev->org, ev->reason,
		    alerts.running, ALERT_INTERVAL_MS,
		    (unsigned long long)alerts.gate.dropped_total);
		return;
	}
	if (dropped > 0)
		FBX_LOGW("alert %s: %llu earlier alerts of this kind were "
		         "dropped by the rate limit",
		    fbx_event_kind_name(ev->kind), (unsigned long long)dropped);
	snprintf(v_kind, sizeof(v_kind), "FUSEBOX_EVENT=%s",
	    fbx_event_kind_name(ev->kind));
	snprintf(v_org, sizeof(v_org), "FUSEBOX_ORG=%s", ev->org);
	snprintf(v_reason, sizeof(v_reason), "FUSEBOX_REASON=%s", ev->reason);
	snprintf(v_count, sizeof(v_count), "FUSEBOX_COUNT=%llu",
	    (unsigned long long)ev->count);
	snprintf(v_limit, sizeof(v_limit), "FUSEBOX_LIMIT=%llu",
	    (unsigned long long)ev->limit);
	snprintf(v_detail, sizeof(v_detail), "FUSEBOX_DETAIL=%s", ev->detail);
	snprintf(v_cmd, sizeof(v_cmd), "FUSEBOX_COMMAND=%llu",
	    (unsigned long long)ev->command_id);
	snprintf(v_dropped, sizeof(v_dropped), "FUSEBOX_DROPPED=%llu",
	    (unsigned long long)dropped);
	rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, envp);
	if (rc != 0) {
		FBX_LOGE("alert command could not start: %s", strerror(rc));
		return;
	}
	alerts.pid[alerts.running++] = pid;
}
