/*
 * fuseboxd.c: the daemon's main. Reads an optional INI config file, then
 * command-line flags (flags win), sets up logging and signals, and runs
 * the engine. Exit statuses follow sysexits.h so service managers and
 * scripts can tell a usage error from a storage or network failure.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sysexits.h>

#include <ini.h>

#include "fbx_engine.h"
#include "fbx_store.h"
#include "log.h"

static fbx_engine *the_engine;

struct config {
	char data_dir[4096];
	char console[512];
	char gateway[512];
	char events[512];
	char alert_cmd[1024];
	unsigned approval_ttl_s;
	unsigned retention_s;
	unsigned audit_retention_days;
	unsigned rollback_slice;
	unsigned org_share_ppm;
	char admin_org[80];
	int durability;
	size_t map_mb;
	unsigned heartbeat_ms;
	unsigned drain_ms;
	unsigned default_ttl_s;
	int log_level;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: fuseboxd [options]\n"
	    "Incident-safe command dispatch engine for MDM consoles.\n\n"
	    "  -c, --config FILE        INI file (section [fuseboxd]); flags "
	    "win\n"
	    "  -d, --data DIR           LMDB directory (default "
	    "./fusebox-data)\n"
	    "      --console EP         console endpoint (default "
	    "ipc:///tmp/fusebox/console.sock)\n"
	    "      --gateway EP         gateway endpoint (default "
	    "ipc:///tmp/fusebox/gateway.sock)\n"
	    "      --events EP          PUB endpoint for alerts (default: "
	    "none)\n"
	    "      --alert-cmd CMD      run by /bin/sh on each alert, with "
	    "FUSEBOX_EVENT,\n"
	    "                           FUSEBOX_ORG, FUSEBOX_REASON, "
	    "FUSEBOX_COUNT, ... set\n"
	    "      --approval-ttl S     approvals expire after S seconds "
	    "(default 86400)\n"
	    "      --admin-org ORG      only ORG may act on global controls "
	    "and list\n"
	    "                           organisations (default: any)\n"
	    "      --org-share PCT      most of the gateways' windows one "
	    "organisation\n"
	    "                           may fill (default 25; 100 = no cap)\n"
	    "      --retention S        prune finished commands older than S "
	    "seconds\n"
	    "                           (default 2592000 = 30 days; 0 = keep "
	    "all)\n"
	    "      --audit-retention D  archive to DATA/audit-archive/ and "
	    "prune audit\n"
	    "                           records older than D days (7..3650; "
	    "default 0 =\n"
	    "                           keep all)\n"
	    "      --rollback-slice N   deliveries a rollback or replay "
	    "request looks at\n"
	    "                           (default 10000; commands: N/10); "
	    "a tuning knob\n"
	    "      --durability MODE    full (default), nometasync, nosync\n"
	    "      --map-size MB        initial LMDB map size (grows as "
	    "needed)\n"
	    "      --heartbeat-ms N     gateway heartbeat (default 1000; "
	    "dead after 3x)\n"
	    "      --drain-ms N         SIGTERM: wait for in-flight results "
	    "(default 5000)\n"
	    "      --default-ttl S      TTL of commands that give none "
	    "(default 86400)\n"
	    "      --verify-audit-archive FILE...  (first, alone) check audit "
	    "archive files\n"
	    "                           offline, in order, and exit: 0 "
	    "intact, 65 broken,\n"
	    "                           66 unreadable\n"
	    "  -l, --log-level LEVEL    error, warn, info (default), debug\n"
	    "  -h, --help               this help\n"
	    "  -V, --version            print the version\n\n"
	    "Exit status: 0 clean stop, 64 usage, 66 cannot open store, "
	    "69 cannot bind,\n"
	    "70 internal error, 74 storage I/O error, 78 bad config.\n");
}

static int
parse_durability(const char *s)
{
	if (strcmp(s, "full") == 0)
		return FBX_DURABLE_FULL;
	if (strcmp(s, "nometasync") == 0)
		return FBX_DURABLE_NOMETASYNC;
	if (strcmp(s, "nosync") == 0)
		return FBX_DURABLE_NOSYNC;
	return -1;
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

/* set_option - one setting by name, from the file or a flag.
 * @return 0, or -1 if the name or value is bad. */
static int
set_option(struct config *c, const char *name, const char *val)
{
	unsigned long v;

	if (strcmp(name, "data") == 0 || strcmp(name, "data_dir") == 0) {
		snprintf(c->data_dir, sizeof(c->data_dir), "%s", val);
	} else if (strcmp(name, "console") == 0) {
		snprintf(c->console, sizeof(c->console), "%s", val);
	} else if (strcmp(name, "gateway") == 0) {
		snprintf(c->gateway, sizeof(c->gateway), "%s", val);
	} else if (strcmp(name, "events") == 0) {
		snprintf(c->events, sizeof(c->events), "%s", val);
	} else if (strcmp(name, "alert_cmd") == 0 ||
	    strcmp(name, "alert-cmd") == 0) {
		snprintf(c->alert_cmd, sizeof(c->alert_cmd), "%s", val);
	} else if (strcmp(name, "approval_ttl") == 0 ||
	    strcmp(name, "approval-ttl") == 0) {
		if (parse_uint(val, 30u * 86400, &v) != 0 || v == 0)
			return -1;
		c->approval_ttl_s = (unsigned)v;
	} else if (strcmp(name, "admin_org") == 0 ||
	    strcmp(name, "admin-org") == 0) {
		snprintf(c->admin_org, sizeof(c->admin_org), "%s", val);
	} else if (strcmp(name, "org_share") == 0 ||
	    strcmp(name, "org-share") == 0) {
		if (parse_uint(val, 100, &v) != 0 || v == 0)
			return -1;
		c->org_share_ppm = (unsigned)v * 10000;
	} else if (strcmp(name, "audit_retention") == 0 ||
	    strcmp(name, "audit-retention") == 0) {
		if (parse_uint(val, 3650, &v) != 0 || (v != 0 && v < 7))
			return -1;
		c->audit_retention_days = (unsigned)v;
	} else if (strcmp(name, "retention") == 0) {
		if (parse_uint(val, 10u * 365 * 86400, &v) != 0)
			return -1;
		c->retention_s = (unsigned)v;
	} else if (strcmp(name, "rollback_slice") == 0 ||
	    strcmp(name, "rollback-slice") == 0) {
		if (parse_uint(val, 1000000, &v) != 0 || v == 0)
			return -1;
		c->rollback_slice = (unsigned)v;
	} else if (strcmp(name, "durability") == 0) {
		if ((c->durability = parse_durability(val)) < 0)
			return -1;
	} else if (strcmp(name, "map_size") == 0 ||
	    strcmp(name, "map-size") == 0) {
		if (parse_uint(val, 1u << 20, &v) != 0)
			return -1;
		c->map_mb = v;
	} else if (strcmp(name, "heartbeat_ms") == 0 ||
	    strcmp(name, "heartbeat-ms") == 0) {
		if (parse_uint(val, 600000, &v) != 0 || v < 10)
			return -1;
		c->heartbeat_ms = (unsigned)v;
	} else if (strcmp(name, "drain_ms") == 0 ||
	    strcmp(name, "drain-ms") == 0) {
		if (parse_uint(val, 600000, &v) != 0)
			return -1;
		c->drain_ms = (unsigned)v;
	} else if (strcmp(name, "default_ttl") == 0 ||
	    strcmp(name, "default-ttl") == 0) {
		if (parse_uint(val, 30u * 86400, &v) != 0 || v == 0)
			return -1;
		c->default_ttl_s = (unsigned)v;
	} else if (strcmp(name, "log_level") == 0 ||
	    strcmp(name, "log-level") == 0) {
		if ((c->log_level = fbxi_log_parse_level(val)) < 0)
			return -1;
	} else {
		return -1;
	}
	return 0;
}

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
	if (strcmp(section, "fuseboxd") != 0)
		return 1; /* other sections belong to other tools */
	if (set_option(user, name, value) != 0) {
		fprintf(stderr, "fuseboxd: config: bad setting %s = %s\n",
		    name, value);
		return 0;
	}
	return 1;
}

static void
on_signal(int sig)
{
	(void)sig;
	if (the_engine != NULL)
		fbx_engine_stop(the_engine);
}

/* ipc_dir - create the directory of an ipc:// endpoint if missing. */
static void
ipc_dir(const char *ep)
{
	char path[512], *slash;

	if (strncmp(ep, "ipc://", 6) != 0)
		return;
	snprintf(path, sizeof(path), "%s", ep + 6);
	slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return;
	*slash = '\0';
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(path, 0750);
			*p = '/';
		}
	}
	(void)mkdir(path, 0750);
}

static int
exit_code(int rc)
{
	switch (rc) {
	case FBX_OK:
		return EX_OK;
	case FBX_EUNREACHABLE:
		return EX_UNAVAILABLE;
	case FBX_ECORRUPT:
	case FBX_EIO:
	case FBX_EDISK_FULL:
	case FBX_ESTORAGE:
	case FBX_EMAP_FULL:
		return EX_IOERR;
	case FBX_EINVAL:
		return EX_CONFIG;
	default:
		return EX_SOFTWARE;
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "data", required_argument, NULL, 'd' },
		{ "console", required_argument, NULL, 1 },
		{ "gateway", required_argument, NULL, 2 },
		{ "durability", required_argument, NULL, 3 },
		{ "map-size", required_argument, NULL, 4 },
		{ "heartbeat-ms", required_argument, NULL, 5 },
		{ "drain-ms", required_argument, NULL, 6 },
		{ "default-ttl", required_argument, NULL, 7 },
		{ "events", required_argument, NULL, 8 },
		{ "alert-cmd", required_argument, NULL, 9 },
		{ "approval-ttl", required_argument, NULL, 10 },
		{ "retention", required_argument, NULL, 11 },
		{ "audit-retention", required_argument, NULL, 30 },
		{ "org-share", required_argument, NULL, 12 },
		{ "admin-org", required_argument, NULL, 13 },
		{ "rollback-slice", required_argument, NULL, 14 },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct config c;
	struct fbx_engine_opts o;
	struct sigaction sa;
	const char *config_file = NULL;
	int ch, rc;

	/* offline: no store, no sockets */
	if (argc >= 2 && strcmp(argv[1], "--verify-audit-archive") == 0) {
		if (argc < 3) {
			fprintf(stderr, "fuseboxd: --verify-audit-archive "
			                "needs files\n");
			return EX_USAGE;
		}
		rc = fbx_audit_archive_verify((const char *const *)argv + 2,
		    (size_t)(argc - 2), stdout);
		return rc == FBX_OK ? EX_OK :
		    rc == FBX_ECORRUPT ? EX_DATAERR :
		    rc == FBX_EIO     ? EX_NOINPUT :
					EX_SOFTWARE;
	}
	memset(&c, 0, sizeof(c));
	snprintf(c.data_dir, sizeof(c.data_dir), "./fusebox-data");
	snprintf(c.console, sizeof(c.console),
	    "ipc:///tmp/fusebox/console.sock");
	snprintf(c.gateway, sizeof(c.gateway),
	    "ipc:///tmp/fusebox/gateway.sock");
	c.log_level = FBX_LOG_INFO;
	c.retention_s = 30u * 86400;

	/* first pass: only the config file, so flags can override it */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:d:l:hV", longopts, NULL)) !=
	    -1) {
		if (ch == 'c')
			config_file = optarg;
	}
	if (config_file != NULL) {
		int line = ini_parse(config_file, ini_cb, &c);
		if (line != 0) {
			if (line < 0)
				fprintf(stderr, "fuseboxd: cannot read %s\n",
				    config_file);
			else
				fprintf(stderr, "fuseboxd: %s:%d: error\n",
				    config_file, line);
			return EX_CONFIG;
		}
	}
	opterr = 1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:d:l:hV", longopts, NULL)) !=
	    -1) {
		const char *name = NULL;
		switch (ch) {
		case 'c':
			continue;
		case 'd':
			name = "data";
			break;
		case 1:
			name = "console";
			break;
		case 2:
			name = "gateway";
			break;
		case 3:
			name = "durability";
			break;
		case 4:
			name = "map_size";
			break;
		case 5:
			name = "heartbeat_ms";
			break;
		case 6:
			name = "drain_ms";
			break;
		case 7:
			name = "default_ttl";
			break;
		case 8:
			name = "events";
			break;
		case 9:
			name = "alert_cmd";
			break;
		case 10:
			name = "approval_ttl";
			break;
		case 11:
			name = "retention";
			break;
		case 30:
			name = "audit_retention";
			break;
		case 12:
			name = "org_share";
			break;
		case 13:
			name = "admin_org";
			break;
		case 14:
			name = "rollback_slice";
			break;
		case 'l':
			name = "log_level";
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("fuseboxd %s\n", FBX_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
		if (set_option(&c, name, optarg) != 0) {
			fprintf(stderr, "fuseboxd: bad value for --%s: %s\n",
			    name,
			    optarg);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fuseboxd: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	fbxi_log_set_level(c.log_level);
	ipc_dir(c.console);
	ipc_dir(c.gateway);
	if (c.events[0])
		ipc_dir(c.events);

	memset(&o, 0, sizeof(o));
	o.data_dir = c.data_dir;
	o.console_ep = c.console;
	o.gateway_ep = c.gateway;
	o.durability = c.durability;
	o.map_size = c.map_mb << 20;
	o.heartbeat_ms = c.heartbeat_ms;
	o.drain_ms = c.drain_ms;
	o.default_ttl_s = c.default_ttl_s;
	o.events_ep = c.events[0] ? c.events : NULL;
	o.alert_cmd = c.alert_cmd[0] ? c.alert_cmd : NULL;
	o.approval_ttl_s = c.approval_ttl_s;
	o.retention_s = c.retention_s;
	o.audit_retention_days = c.audit_retention_days;
	o.rollback_slice = c.rollback_slice;
	o.org_share_ppm = c.org_share_ppm;
	o.admin_org = c.admin_org[0] ? c.admin_org : NULL;

	/* one daemon per store: a second one would take over the ipc
	 * socket files and race the first on the same LMDB environment */
	{
		char lockpath[4200];
		int lfd;
		if (mkdir(c.data_dir, 0750) != 0 && errno != EEXIST) {
			fprintf(stderr, "fuseboxd: cannot create %s: %s\n",
			    c.data_dir, strerror(errno));
			return EX_CANTCREAT;
		}
		snprintf(lockpath, sizeof(lockpath), "%s/fuseboxd.lock",
		    c.data_dir);
		lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (lfd < 0 || flock(lfd, LOCK_EX | LOCK_NB) != 0) {
			fprintf(stderr,
			    "fuseboxd: %s is in use by another fuseboxd "
			    "(%s)\n",
			    c.data_dir, lfd < 0 ? strerror(errno) : "locked");
			return EX_TEMPFAIL;
		}
		/* held open (and locked) until the process exits */
	}
	signal(SIGPIPE, SIG_IGN);
	/* alert commands are never waited for: let the kernel reap them */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL);
	rc = fbx_engine_open(&o, &the_engine);
	if (rc != FBX_OK) {
		fprintf(stderr, "fuseboxd: %s\n", fbx_strerror(rc));
		return rc == FBX_EIO || rc == FBX_ECORRUPT ? EX_NOINPUT
		                                          : exit_code(rc);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	rc = fbx_engine_run(the_engine);
	fbx_engine_close(the_engine);
	the_engine = NULL;
	return exit_code(rc);
}
