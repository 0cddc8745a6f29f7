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
#include <time.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <sysexits.h>

#include <ini.h>
#ifdef FBX_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "fbx_auth.h"
#include "fbx_engine.h"
#include "fbx_proto.h"
#include "fbx_store.h"
#include "log.h"
#include "metrics.h"
#ifdef FBX_HAVE_HTTP
#include "http.h"
#endif

static fbx_engine *the_engine;
#ifdef FBX_HAVE_HTTP
static fbx_http *the_http; /* --http: /metrics */
#endif
static volatile sig_atomic_t reload_pending;

struct config {
	char data_dir[4096];
	char server_key[4096]; /* issue 10: "" = DATA/keys/server.key */
	char console[512];
	char gateway[512];
	char events[512];
	char alert_cmd[1024];
	unsigned approval_ttl_s;
	unsigned retention_s;
	unsigned audit_retention_days;
	unsigned rollback_slice;
	unsigned org_share_ppm;
	char admin_org[FBX_ID_MAX + 1];
	int durability;
	size_t map_mb;
	unsigned heartbeat_ms;
	unsigned drain_ms;
	unsigned default_ttl_s;
	int log_level;
	char http[256]; /* --http HOST:PORT, "" = off */
	int http_allow_remote;
	int sync_thread;
	char store[1024]; /* --store URL, "" = LMDB in data_dir */
	char node[FBX_ID_MAX + 1]; /* --node NAME: cluster mode */
	char advertise[256];       /* --advertise ENDPOINT */
	unsigned lease_ms;         /* --lease-ms */
	unsigned pg_wait_ms;       /* --pg-wait-ms */
};

/* the configuration the engine runs with: its strings are borrowed by
 * the engine (fbx_engine_reconfigure) */
static struct config live;

/* what a SIGHUP reload needs again: the file and the flags that win */
static const char *reload_file;
static int reload_argc;
static char **reload_argv;

static void config_defaults(struct config *c);
static int apply_flags(struct config *c, int argc, char **argv, int report);

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
	    "      --sync-thread        full: a syncer thread syncs each commit's\n"
	    "                           meta page while the next turn runs\n"
	    "                           (default: the whole commit is synced on\n"
	    "                           the engine's thread; replies wait for\n"
	    "                           the sync either way)\n"
	    "      --map-size MB        initial LMDB map size (grows as "
	    "needed)\n"
	    "      --store URL          keep the store in PostgreSQL "
	    "(postgresql://...)\n"
	    "                           instead of LMDB in DATA\n"
	    "      --node NAME          with --store: this node's name among\n"
	    "                           several sharing the store; each acts\n"
	    "                           for the organisations it holds leases\n"
	    "                           on (docs/scale-out.md)\n"
	    "      --advertise ENDPOINT the console endpoint other nodes give\n"
	    "                           clients of this node's organisations\n"
	    "                           (default: --console)\n"
	    "      --lease-ms N         organisation lease time (default\n"
	    "                           10000, at least 1000)\n"
	    "      --pg-wait-ms N       with --store: wait this long for an\n"
	    "                           answer of the server, then take its\n"
	    "                           connection for lost (default 10000,\n"
	    "                           1000..600000)\n"
	    "      --server-key FILE    the engine's CURVE key pair (default\n"
	    "                           DATA/keys/server.key, from `fuseboxd "
	    "init`)\n"
	    "      --heartbeat-ms N     gateway heartbeat (default 1000; "
	    "dead after 3x)\n"
	    "      --drain-ms N         SIGTERM: wait for in-flight results "
	    "(default 5000)\n"
	    "      --default-ttl S      TTL of commands that give none "
	    "(default 86400)\n"
	    "      --http HOST:PORT     serve GET /metrics (Prometheus) and "
	    "the web console\n"
	    "                           (fuseboxctl web login) on HOST:PORT "
	    "(default: off;\n"
	    "                           PORT alone: 127.0.0.1; port 0: "
	    "any, logged);\n"
	    "                           a busy port exits 69\n"
	    "      --http-allow-remote  let --http bind a non-loopback "
	    "address\n"
	    "      --verify-audit-archive FILE...  (first, alone) check audit "
	    "archive files\n"
	    "                           offline, in order, and exit: 0 "
	    "intact, 65 broken,\n"
	    "                           66 unreadable\n"
	    "  -l, --log-level LEVEL    error, warn, info (default), debug\n"
	    "  -h, --help               this help\n"
	    "  -V, --version            print the version\n\n"
	    "Signals: SIGTERM, SIGINT drain and exit 0; SIGHUP reads the "
	    "--config file\n"
	    "again (approval TTL, retention, audit retention, rollback "
	    "slice, org\n"
	    "share, admin org, default TTL, drain, alert command, log "
	    "level; other\n"
	    "changes are logged and need a restart).\n\n"
	    "Exit status: 0 clean stop, 64 usage, 66 cannot open store, "
	    "69 cannot bind\n"
	    "(also: another process serves an ipc:// socket path), 70 "
	    "internal error,\n"
	    "73 data directory cannot be created or written (a missing one "
	    "is made),\n74 storage I/O error, 75 store in use by another "
	    "fuseboxd, 77 data or socket\ndirectory "
	    "not a directory, world-writable or another user's, 78 bad "
	    "config or key\n"
	    "file. `fuseboxd init --help`: make the store and keys.\n");
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
 * @return 0, -1 if the value is bad, -2 if the name is unknown. */
static int
set_option(struct config *c, const char *name, const char *val)
{
	unsigned long v;

	if (strcmp(name, "data") == 0 || strcmp(name, "data_dir") == 0) {
		snprintf(c->data_dir, sizeof(c->data_dir), "%s", val);
	} else if (strcmp(name, "server_key") == 0 ||
	    strcmp(name, "server-key") == 0) {
		snprintf(c->server_key, sizeof(c->server_key), "%s", val);
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
		/* an organisation's name, or none: a name no request can
		 * carry would lock every operator out of the global
		 * controls without a word */
		if (val[0] != '\0' && !fbx_id_valid(val))
			return -1;
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
	} else if (strcmp(name, "http") == 0) {
		if (strlen(val) >= sizeof(c->http))
			return -1;
#ifdef FBX_HAVE_HTTP
		{
			char why[256];
			if (val[0] != '\0' &&
			    fbx_http_check_addr(val, NULL, why, sizeof(why)) !=
			        FBX_OK)
				return -1;
		}
#endif
		snprintf(c->http, sizeof(c->http), "%s", val);
	} else if (strcmp(name, "http_allow_remote") == 0 ||
	    strcmp(name, "http-allow-remote") == 0) {
		if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0 ||
		    strcmp(val, "yes") == 0)
			c->http_allow_remote = 1;
		else if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0 ||
		    strcmp(val, "no") == 0)
			c->http_allow_remote = 0;
		else
			return -1;
	} else if (strcmp(name, "node") == 0) {
		if (val[0] != '\0' && !fbx_id_valid(val))
			return -1;
		snprintf(c->node, sizeof(c->node), "%s", val);
	} else if (strcmp(name, "advertise") == 0) {
		if (strlen(val) >= sizeof(c->advertise))
			return -1;
		snprintf(c->advertise, sizeof(c->advertise), "%s", val);
	} else if (strcmp(name, "lease_ms") == 0 ||
	    strcmp(name, "lease-ms") == 0) {
		if (parse_uint(val, 600000, &v) != 0 || v < 1000)
			return -1;
		c->lease_ms = (unsigned)v;
	} else if (strcmp(name, "pg_wait_ms") == 0 ||
	    strcmp(name, "pg-wait-ms") == 0) {
		if (parse_uint(val, 600000, &v) != 0 || v < 1000)
			return -1;
		c->pg_wait_ms = (unsigned)v;
	} else if (strcmp(name, "store") == 0) {
		/* "" or a PostgreSQL URL (issue 13) */
		if (val[0] != '\0' && strncmp(val, "postgresql://", 13) != 0 &&
		    strncmp(val, "postgres://", 11) != 0)
			return -1;
		snprintf(c->store, sizeof(c->store), "%s", val);
	} else if (strcmp(name, "sync_thread") == 0 ||
	    strcmp(name, "sync-thread") == 0) {
		if (strcmp(val, "1") == 0 || strcmp(val, "true") == 0 ||
		    strcmp(val, "yes") == 0)
			c->sync_thread = 1;
		else if (strcmp(val, "0") == 0 || strcmp(val, "false") == 0 ||
		    strcmp(val, "no") == 0)
			c->sync_thread = 0;
		else
			return -1;
	} else if (strcmp(name, "log_level") == 0 ||
	    strcmp(name, "log-level") == 0) {
		if ((c->log_level = fbxi_log_parse_level(val)) < 0)
			return -1;
	} else {
		return -2;
	}
	return 0;
}

/* what ini_cb saw wrong: the first bad setting, for one error line */
struct ini_ctx {
	struct config *c;
	char bad[600];
};

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *x = user;

	if (strcmp(section, "fuseboxd") != 0)
		return 1; /* other sections belong to other tools */
	if (set_option(x->c, name, value) != 0) {
		if (x->bad[0] == '\0')
			snprintf(x->bad, sizeof(x->bad), "%s = %s: %s", name,
			    value,
			    set_option(x->c, name, value) == -2
			        ? "unknown setting"
			        : "bad value (see fuseboxd --help)");
		return 0;
	}
	return 1;
}

/* load_file - read the [fuseboxd] section of file into c.
 * @return 0, or -1 with one line in why. */
static int
load_file(struct config *c, const char *file, char *why, size_t wl)
{
	struct ini_ctx x;
	int line;

	memset(&x, 0, sizeof(x));
	x.c = c;
	line = ini_parse(file, ini_cb, &x);
	if (line == 0)
		return 0;
	if (line < 0)
		snprintf(why, wl, "cannot read %s: %s", file,
		    line == -1 ? strerror(errno) : "out of memory");
	else if (x.bad[0])
		snprintf(why, wl, "%s:%d: %s", file, line, x.bad);
	else
		snprintf(why, wl, "%s:%d: not an INI line", file, line);
	return -1;
}

static void
on_signal(int sig)
{
	(void)sig;
	if (the_engine != NULL)
		fbx_engine_stop(the_engine);
}

static void
on_hup(int sig)
{
	(void)sig;
	reload_pending = 1;
}

/* warn_every_interface - log a warning for a TCP endpoint bound on
 * every interface (0.0.0.0, *, ::): reachable from any network the host
 * is on, where a loopback or private management address is meant */
static void
warn_every_interface(const char *what, const char *ep)
{
	static const char *const wild[] = { "tcp://0.0.0.0:", "tcp://*:",
		"tcp://[::]:" };

	for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++)
		if (strncmp(ep, wild[i], strlen(wild[i])) == 0) {
			FBX_LOGW("--%s %s binds every interface: any host "
			         "that reaches this one can try a handshake "
			         "(CURVE admits only registered keys); bind a "
			         "loopback or private management address",
			    what, ep);
			return;
		}
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

/* ipc_path - the socket file of an ipc:// endpoint, or NULL (tcp, or the
 * abstract namespace). */
static const char *
ipc_path(const char *ep)
{
	if (strncmp(ep, "ipc://", 6) != 0 || ep[6] == '@' || ep[6] == '\0')
		return NULL;
	return ep + 6;
}

/* ipc_served - does a live process accept connections on the socket file
 * at path (which fits sun_path: the callers check)? 1 yes, 0 no, -1
 * cannot tell (no socket) */
static int
ipc_served(const char *path)
{
	struct sockaddr_un sun;
	int fd, live_peer;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	live_peer = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 ||
	    errno == EAGAIN;
	close(fd);
	return live_peer;
}

/* ipc_claim - before binding ep: refuse when a live process serves its
 * socket file (ZeroMQ would silently take the path over and leave that
 * daemon unreachable), remove the file a dead one left behind.
 * @return -1 to go on, or the exit status to stop with. */
static int
ipc_claim(const char *what, const char *ep)
{
	const char *path = ipc_path(ep);
	struct sockaddr_un sun;
	struct stat st;
	int live_peer;

	if (path == NULL)
		return -1;
	if (lstat(path, &st) != 0)
		return -1; /* nothing there */
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "fuseboxd: %s endpoint %s: %s exists and is "
		    "not a socket\n", what, ep, path);
		return EX_CANTCREAT;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "fuseboxd: %s endpoint %s: path too long\n",
		    what, ep);
		return EX_USAGE;
	}
	live_peer = ipc_served(path);
	if (live_peer < 0)
		return -1;
	if (live_peer) {
		fprintf(stderr, "fuseboxd: %s endpoint %s is served by another "
		    "process (a second fuseboxd?); refusing to take it "
		    "over\n", what, ep);
		return EX_UNAVAILABLE;
	}
	if (unlink(path) == 0)
		FBX_LOGI("removed stale socket %s left by a stopped daemon",
		    path);
	return -1;
}

/* ipc_unclaim - the engine did not start (its sockets are closed): remove
 * the socket file it bound at ep, unless a live process serves it by
 * now (another daemon that started meanwhile), as ipc_claim would. */
static void
ipc_unclaim(const char *ep)
{
	const char *path = ep != NULL ? ipc_path(ep) : NULL;
	struct sockaddr_un sun;
	struct stat st;

	if (path == NULL || lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	if (ipc_served(path) == 0)
		(void)unlink(path);
}

/* ipc_release - at exit, remove the socket files bound at start, but
 * only those that are still ours (same inode). */
static ino_t bound_ino[3];
static const char *bound_ep[3];

static void
ipc_note(int i, const char *ep)
{
	const char *path = ep != NULL ? ipc_path(ep) : NULL;
	struct stat st;

	if (path != NULL && stat(path, &st) == 0) {
		bound_ep[i] = ep;
		bound_ino[i] = st.st_ino;
	}
}

static void
ipc_release(void)
{
	struct stat st;

	for (int i = 0; i < 3; i++) {
		const char *path;
		if (bound_ep[i] == NULL)
			continue;
		path = ipc_path(bound_ep[i]);
		if (stat(path, &st) == 0 && st.st_ino == bound_ino[i])
			(void)unlink(path);
	}
}

/* data_dir_check - the data directory exists (or is made), is a
 * directory and can be written: say which it is not, instead of letting
 * the lock or the store fail with a misleading message.
 * @return -1 to go on, or the exit status to stop with. */
static int
data_dir_check(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "fuseboxd: cannot create data directory %s: "
		    "%s\n", dir, strerror(errno));
		return EX_CANTCREAT;
	}
	if (stat(dir, &st) != 0) {
		fprintf(stderr, "fuseboxd: data directory %s: %s\n", dir,
		    strerror(errno));
		return EX_CANTCREAT;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "fuseboxd: data directory %s is not a "
		    "directory\n", dir);
		return EX_CANTCREAT;
	}
	if (access(dir, W_OK | X_OK) != 0) {
		fprintf(stderr, "fuseboxd: data directory %s is not writable "
		    "by this user: %s\n", dir, strerror(errno));
		return EX_CANTCREAT;
	}
	return -1;
}

/* ---- service manager and reload --------------------------------------
 * Everything below runs on the loop's thread, from the engine's loop
 * hook, so reading and changing the engine is safe. */

static void
notify(const char *msg)
{
#ifdef FBX_HAVE_SYSTEMD
	(void)sd_notify(0, msg);
#else
	(void)msg;
#endif
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* opts_live - the settings fbx_engine_reconfigure() takes, from live */
static void
opts_live(struct fbx_engine_opts *o)
{
	o->drain_ms = live.drain_ms;
	o->default_ttl_s = live.default_ttl_s;
	o->alert_cmd = live.alert_cmd[0] ? live.alert_cmd : NULL;
	o->approval_ttl_s = live.approval_ttl_s;
	o->retention_s = live.retention_s;
	o->audit_retention_days = live.audit_retention_days;
	o->rollback_slice = live.rollback_slice;
	o->org_share_ppm = live.org_share_ppm;
	o->admin_org = live.admin_org[0] ? live.admin_org : NULL;
}

/* reload - SIGHUP: read the file again (flags still win), apply what
 * may change while running, log what changed and what needs a restart.
 * A bad file changes nothing. */
static void
reload(fbx_engine *eng)
{
	struct config nc;
	struct fbx_engine_opts o;
	char why[1024], changed[1024] = "";
	size_t cl = 0;

	notify("RELOADING=1");
	if (reload_file == NULL) {
		FBX_LOGW("SIGHUP: no --config file to reload; nothing changed");
		goto out;
	}
	config_defaults(&nc);
	if (load_file(&nc, reload_file, why, sizeof(why)) != 0) {
		FBX_LOGE("SIGHUP: %s; the running configuration is kept", why);
		goto out;
	}
	(void)apply_flags(&nc, reload_argc, reload_argv, 0);
#define FIXED(f, key)                                                       \
	if (memcmp(&nc.f, &live.f, sizeof(nc.f)) != 0)                     \
		FBX_LOGW("SIGHUP: %s cannot change while running; restart "   \
		         "to apply it", key)
	FIXED(data_dir, "data");
	FIXED(console, "console");
	FIXED(gateway, "gateway");
	FIXED(events, "events");
	FIXED(durability, "durability");
	FIXED(map_mb, "map_size");
	FIXED(heartbeat_ms, "heartbeat_ms");
	FIXED(server_key, "server_key");
	FIXED(http, "http");
	FIXED(http_allow_remote, "http_allow_remote");
	FIXED(sync_thread, "sync_thread");
	FIXED(store, "store");
	FIXED(node, "node");
	FIXED(advertise, "advertise");
	FIXED(lease_ms, "lease_ms");
	FIXED(pg_wait_ms, "pg_wait_ms");
#undef FIXED
#define LIVE(f, key)                                                        \
	if (memcmp(&nc.f, &live.f, sizeof(nc.f)) != 0 && cl < sizeof(changed)) \
	cl += (size_t)snprintf(changed + cl, sizeof(changed) - cl, "%s%s",  \
	    cl ? ", " : "", key)
	LIVE(alert_cmd, "alert_cmd");
	LIVE(approval_ttl_s, "approval_ttl");
	LIVE(retention_s, "retention");
	LIVE(audit_retention_days, "audit_retention");
	LIVE(rollback_slice, "rollback_slice");
	LIVE(org_share_ppm, "org_share");
	LIVE(admin_org, "admin_org");
	LIVE(drain_ms, "drain_ms");
	LIVE(default_ttl_s, "default_ttl");
	LIVE(log_level, "log_level");
#undef LIVE
	memcpy(live.alert_cmd, nc.alert_cmd, sizeof(live.alert_cmd));
	memcpy(live.admin_org, nc.admin_org, sizeof(live.admin_org));
	live.approval_ttl_s = nc.approval_ttl_s;
	live.retention_s = nc.retention_s;
	live.audit_retention_days = nc.audit_retention_days;
	live.rollback_slice = nc.rollback_slice;
	live.org_share_ppm = nc.org_share_ppm;
	live.drain_ms = nc.drain_ms;
	live.default_ttl_s = nc.default_ttl_s;
	live.log_level = nc.log_level;
	memset(&o, 0, sizeof(o));
	opts_live(&o);
	(void)fbx_engine_reconfigure(eng, &o);
	/* info, so that a reload is seen at the default level, then the
	 * new level */
	fbxi_log_set_level(live.log_level < FBX_LOG_INFO ? FBX_LOG_INFO
	                                                  : live.log_level);
	FBX_LOGI("SIGHUP: reloaded %s: %s", reload_file,
	    changed[0] ? changed : "nothing changed");
	fbxi_log_set_level(live.log_level);
out:
	notify("READY=1");
}

/* metrics_publish - at most 4 times a second, the engine's figures for
 * the HTTP thread (it renders its own copy) */
static void
metrics_publish(fbx_engine *eng, int64_t now, int force)
{
#ifdef FBX_HAVE_HTTP
	static int64_t next;
	static struct fbx_metrics m;

	if (the_http == NULL || (!force && now < next))
		return;
	if (fbx_engine_metrics(eng, &m) == FBX_OK)
		fbx_http_publish(the_http, &m);
	next = now + 250;
#else
	(void)eng;
	(void)now;
	(void)force;
#endif
}

/* loop_hook - the engine's loop tells where it is: READY once recovered
 * and bound; WATCHDOG only after turns that completed, so a loop stuck
 * in a turn (an fsync that never returns) is restarted; STATUS now and
 * then; STOPPING when draining starts. */
static void
loop_hook(void *arg, fbx_engine *eng, int event)
{
	static int64_t next_dog, next_status;
	static uint64_t dog_ms;
	int64_t now = mono_ms();
	struct fbx_engine_stats s;
	char line[256];

	(void)arg;
	switch (event) {
	case FBX_LOOP_READY:
#ifdef FBX_HAVE_SYSTEMD
		{
			uint64_t usec = 0;
			/* ping at a quarter: a turn that waits for a
			 * PostgreSQL server that stopped answering
			 * (--pg-wait-ms, then a commit in doubt looked up
			 * for a few seconds) still ends in time */
			if (sd_watchdog_enabled(0, &usec) > 0)
				dog_ms = usec / 4000;
		}
#endif
		notify("READY=1");
		next_status = 0;
		metrics_publish(eng, now, 1);
		break;
	case FBX_LOOP_TURN:
		metrics_publish(eng, now, 0);
		if (reload_pending) {
			reload_pending = 0;
			reload(eng);
			next_status = 0;
		}
		if (dog_ms > 0 && now >= next_dog) {
			notify("WATCHDOG=1");
			next_dog = now + (int64_t)dog_ms;
		}
		break;
	case FBX_LOOP_DRAIN:
		fbx_engine_stat(eng, &s);
		snprintf(line, sizeof(line),
		    "STOPPING=1\nSTATUS=draining: %llu deliveries in flight",
		    (unsigned long long)s.deliveries_inflight);
		notify(line);
		return;
	case FBX_LOOP_STOPPED:
		notify("STATUS=stopped");
		return;
	default:
		return;
	}
	if (now >= next_status) {
		fbx_engine_stat(eng, &s);
		snprintf(line, sizeof(line),
		    "STATUS=%s%u gateways, %llu commands active, %llu queued, "
		    "%llu in flight, %llu pending",
		    s.degraded ? "DEGRADED (writes fail): " : "", s.gateways,
		    (unsigned long long)s.commands_active,
		    (unsigned long long)s.deliveries_queued,
		    (unsigned long long)s.deliveries_inflight,
		    (unsigned long long)s.deliveries_pending);
		notify(line);
		next_status = now + 5000;
	}
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
	case FBX_ECONFIG: /* issue 10: no usable server key */
		return EX_CONFIG;
	default:
		return EX_SOFTWARE;
	}
}

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
	{ "server-key", required_argument, NULL, 31 },
	{ "org-share", required_argument, NULL, 12 },
	{ "admin-org", required_argument, NULL, 13 },
	{ "rollback-slice", required_argument, NULL, 14 },
	{ "http", required_argument, NULL, 32 },
	{ "http-allow-remote", no_argument, NULL, 33 },
	{ "sync-thread", no_argument, NULL, 34 },
	{ "store", required_argument, NULL, 35 },
	{ "node", required_argument, NULL, 36 },
	{ "advertise", required_argument, NULL, 37 },
	{ "lease-ms", required_argument, NULL, 38 },
	{ "pg-wait-ms", required_argument, NULL, 39 },
	{ "log-level", required_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* flag_key - the config key a flag sets, or NULL. */
static const char *
flag_key(int ch)
{
	switch (ch) {
	case 'd':
		return "data";
	case 1:
		return "console";
	case 2:
		return "gateway";
	case 3:
		return "durability";
	case 4:
		return "map_size";
	case 5:
		return "heartbeat_ms";
	case 6:
		return "drain_ms";
	case 7:
		return "default_ttl";
	case 8:
		return "events";
	case 9:
		return "alert_cmd";
	case 10:
		return "approval_ttl";
	case 11:
		return "retention";
	case 31:
		return "server_key";
	case 30:
		return "audit_retention";
	case 12:
		return "org_share";
	case 13:
		return "admin_org";
	case 14:
		return "rollback_slice";
	case 32:
		return "http";
	case 33:
		return "http_allow_remote";
	case 34:
		return "sync_thread";
	case 35:
		return "store";
	case 36:
		return "node";
	case 37:
		return "advertise";
	case 38:
		return "lease_ms";
	case 39:
		return "pg_wait_ms";
	case 'l':
		return "log_level";
	default:
		return NULL;
	}
}

/* opt_typed - the option just returned by getopt_long as the user typed
 * it (without "=value"), and whether it was a whole long option name:
 * getopt_long takes unique prefixes ("--dat" for "--data"), which a
 * tool that guards against accidents must not. */
static int
opt_typed(int argc, char **argv, int li, char *buf, size_t bl)
{
	const char *tok;
	size_t n;

	if (optind < 1 || optind > argc)
		return 1;
	tok = argv[optind - 1];
	if (optarg != NULL && optarg == tok && optind >= 2)
		tok = argv[optind - 2];
	n = strcspn(tok, "=");
	snprintf(buf, bl, "%.*s", (int)n, tok);
	if (li < 0 || strncmp(tok, "--", 2) != 0)
		return 1;
	return strlen(longopts[li].name) == n - 2 &&
	    strncmp(tok + 2, longopts[li].name, n - 2) == 0;
}

static void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->data_dir, sizeof(c->data_dir), "./fusebox-data");
	snprintf(c->console, sizeof(c->console),
	    "ipc:///tmp/fusebox/console.sock");
	snprintf(c->gateway, sizeof(c->gateway),
	    "ipc:///tmp/fusebox/gateway.sock");
	c->log_level = FBX_LOG_INFO;
	c->retention_s = 30u * 86400;
}

/* apply_flags - the command line's settings over c (they win over the
 * file). With report, a bad flag prints one line and usage.
 * @return -1 to go on, or the exit status to stop with. */
static int
apply_flags(struct config *c, int argc, char **argv, int report)
{
	char typed[128];
	int ch, li;

	optind = 1;
	opterr = report;
	for (;;) {
		li = -1;
		ch = getopt_long(argc, argv, "c:d:l:hV", longopts, &li);
		if (ch == -1)
			break;
		if (ch != '?' && !opt_typed(argc, argv, li, typed,
		        sizeof(typed))) {
			if (report)
				fprintf(stderr, "fuseboxd: unknown option "
				    "'%s' (did you mean --%s? options are not "
				    "abbreviated)\n", typed, longopts[li].name);
			return EX_USAGE;
		}
		switch (ch) {
		case 'c':
			continue;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("fuseboxd %s\n", FBX_VERSION);
			return EX_OK;
		default:
			break;
		}
		if (flag_key(ch) == NULL) {
			if (report)
				usage(stderr);
			return EX_USAGE;
		}
		if (set_option(c, flag_key(ch), ch == 33 || ch == 34 ? "1" : optarg) != 0) {
			if (report)
				fprintf(stderr, "fuseboxd: bad value for %s: "
				    "%s\n", typed, optarg);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		if (report) {
			fprintf(stderr, "fuseboxd: unexpected argument "
			    "'%s'\n", argv[optind]);
			usage(stderr);
		}
		return EX_USAGE;
	}
	return -1;
}

/* init_main - `fuseboxd init --data DIR [--principal SPEC]...`: the
 * server key, the first admin and any other principals (issue 10). */
static int
init_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "principal", required_argument, NULL, 'p' },
		{ "store", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = "./fusebox-data", *store = NULL;
	const char **specs = calloc((size_t)argc + 1, sizeof(*specs));
	size_t n = 0;
	char why[1024];
	int ch, rc, lfd = -1;

	if (specs == NULL)
		return EX_OSERR;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "d:p:s:h", lo, NULL)) != -1) {
		if (ch == 'd') {
			data = optarg;
		} else if (ch == 's') {
			store = optarg;
		} else if (ch == 'p') {
			specs[n++] = optarg;
		} else if (ch == 'h') {
			printf("usage: fuseboxd init [--data DIR] [--store URL] "
			       "[--principal NAME/KIND/ROLES/ORGS]...\n"
			       "Create DIR (0700), the server's key pair and "
			       "an admin principal's key in DIR/keys/.\n"
			       "KIND: operator, automation, gateway; ROLES: "
			       "viewer,operator,approver,breaker,admin, all "
			       "or -;\nORGS: * or ids separated by ','.\n"
			       "Exit status: 0 done, 64 usage, 73 already "
			       "initialised (DIR/keys/server.key exists), 75 "
			       "a running fuseboxd holds the store, 77 no "
			       "permission, 74 other I/O errors.\n");
			free(specs);
			return EX_OK;
		} else {
			free(specs);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fuseboxd init: unexpected argument '%s'\n",
		    argv[optind]);
		free(specs);
		return EX_USAGE;
	}
	/* a daemon running on DIR holds DIR/fuseboxd.lock (with its keys
	 * elsewhere, --server-key, DIR has no keys/server.key, and init
	 * would write principals into its store under it): held while
	 * init writes. A DIR that does not exist yet has no daemon; one
	 * that others may write is refused by fbx_auth_init before
	 * anything is made in it, so nothing is created there first (and
	 * a symlink in its place is not followed). With --store the
	 * PostgreSQL store's own session lock is the guard. */
	{
		char lockpath[4200];
		struct stat dst;
		if (stat(data, &dst) == 0 && S_ISDIR(dst.st_mode) &&
		    fbx_auth_check_dir(data, why, sizeof(why)) == FBX_OK) {
			snprintf(lockpath, sizeof(lockpath), "%s/fuseboxd.lock",
			    data);
			lfd = open(lockpath,
			    O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
			if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) != 0 &&
			    errno == EWOULDBLOCK) {
				fprintf(stderr,
				    "fuseboxd init: %s is in use by a running "
				    "fuseboxd (locked): stop it first\n",
				    data);
				close(lfd);
				free(specs);
				return EX_TEMPFAIL;
			}
		}
	}
	rc = fbx_auth_init(data, store, specs, n, stdout, why, sizeof(why));
	free(specs);
	if (lfd >= 0)
		close(lfd);
	if (rc == FBX_OK)
		return EX_OK;
	fprintf(stderr, "fuseboxd init: %s\n", why);
	return rc == FBX_EINVALID ? EX_USAGE :
	    rc == FBX_ESTATE      ? EX_CANTCREAT :
	    rc == FBX_EFORBIDDEN  ? EX_NOPERM :
	    rc == FBX_EBUSY       ? EX_TEMPFAIL : /* a daemon holds it */
				    EX_IOERR;
}

/* paths_safe - refuse directories others could tamper with: the data
 * directory and those of the ipc sockets (issue 10).
 * @return -1 to go on, or the exit status. */
static int
paths_safe(const struct config *c)
{
	const char *eps[3] = { c->console, c->gateway, c->events };
	char dir[600], why[1024];

	if (fbx_auth_check_dir(c->data_dir, why, sizeof(why)) ==
	    FBX_EFORBIDDEN) {
		fprintf(stderr, "fuseboxd: refusing to start: %s\n", why);
		return EX_NOPERM;
	}
	for (int i = 0; i < 3; i++) {
		char *slash;
		if (strncmp(eps[i], "ipc://", 6) != 0 || eps[i][6] == '@')
			continue;
		snprintf(dir, sizeof(dir), "%s", eps[i] + 6);
		slash = strrchr(dir, '/');
		if (slash == NULL)
			snprintf(dir, sizeof(dir), ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		if (fbx_auth_check_dir(dir, why, sizeof(why)) ==
		    FBX_EFORBIDDEN) {
			fprintf(stderr, "fuseboxd: refusing to start: socket "
			                "directory %s\n",
			    why);
			return EX_NOPERM;
		}
	}
	return -1;
}

/* store_log - the store's messages (a PostgreSQL store's connection and
 * lease events) as lines of the daemon's log: timestamped, levelled,
 * rate limited like every other, each kind of message apart */
static void
store_log(int level, const char *kind, const char *line)
{
	fbxi_log_site(level <= 0 ? FBX_LOG_ERROR
	        : level == 1     ? FBX_LOG_WARN
	                         : FBX_LOG_INFO,
	    kind, "%s", line);
}

int
main(int argc, char **argv)
{
	struct config c;
	struct fbx_engine_opts o;
	struct sigaction sa;
	const char *config_file = NULL;
	int ch, rc;

	fbx_store_set_log(store_log);
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		return init_main(argc - 1, argv + 1);
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
	config_defaults(&c);

	/* first pass: only the config file, so flags can override it */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:d:l:hV", longopts, NULL)) !=
	    -1) {
		if (ch == 'c')
			config_file = optarg;
	}
	/* usage errors and --help first: they need no file */
	{
		struct config scratch;
		config_defaults(&scratch);
		rc = apply_flags(&scratch, argc, argv, 1);
		if (rc != -1)
			return rc;
	}
	if (config_file != NULL) {
		char why[1024];
		if (load_file(&c, config_file, why, sizeof(why)) != 0) {
			fprintf(stderr, "fuseboxd: %s\n", why);
			return EX_CONFIG;
		}
	}
	(void)apply_flags(&c, argc, argv, 0);
	if (c.http[0] != '\0') {
#ifdef FBX_HAVE_HTTP
		/* before the store is locked: say what is wrong first */
		char why[512] = "";
		int loopback = 0;
		if (fbx_http_check_addr(c.http, &loopback, why, sizeof(why)) ==
		        FBX_OK &&
		    !loopback && !c.http_allow_remote)
			snprintf(why, sizeof(why), "%s is not a loopback "
			    "address: /metrics would be open to the network; "
			    "add --http-allow-remote (http_allow_remote = 1) "
			    "to mean it", c.http);
		if (why[0] != '\0') {
			fprintf(stderr, "fuseboxd: --http %s\n", why);
			return EX_USAGE;
		}
#else
		fprintf(stderr, "fuseboxd: --http: this fuseboxd was built "
		    "without HTTP support (FBX_HTTP=OFF)\n");
		return EX_CONFIG;
#endif
	}
	if (c.node[0] != '\0' && c.store[0] == '\0') {
		fprintf(stderr, "fuseboxd: --node needs --store "
		    "postgresql://...: nodes share a PostgreSQL store\n");
		return EX_USAGE;
	}
	reload_file = config_file;
	reload_argc = argc;
	reload_argv = argv;
	live = c;
	fbxi_log_set_level(c.log_level);
	ipc_dir(c.console);
	ipc_dir(c.gateway);
	if (c.events[0])
		ipc_dir(c.events);

	memset(&o, 0, sizeof(o));
	o.data_dir = live.data_dir;
	o.console_ep = live.console;
	o.gateway_ep = live.gateway;
	o.durability = live.durability;
	o.sync_thread = live.sync_thread;
	o.store_url = live.store[0] ? live.store : NULL;
	o.node = live.node[0] ? live.node : NULL;
	o.advertise = live.advertise[0] ? live.advertise : NULL;
	o.lease_ms = live.lease_ms;
	o.pg_wait_ms = live.pg_wait_ms;
	o.map_size = live.map_mb << 20;
	o.heartbeat_ms = live.heartbeat_ms;
	o.events_ep = live.events[0] ? live.events : NULL;
	o.server_key = live.server_key[0] ? live.server_key : NULL;
	opts_live(&o); /* the strings are live's: a reload rewrites them */
	o.loop_hook = loop_hook;

	rc = paths_safe(&c);
	if (rc != -1)
		return rc;
	/* one daemon per store: a second one would take over the ipc
	 * socket files and race the first on the same LMDB environment */
	{
		char lockpath[4200];
		int lfd;
		rc = data_dir_check(c.data_dir);
		if (rc != -1)
			return rc;
		snprintf(lockpath, sizeof(lockpath), "%s/fuseboxd.lock",
		    c.data_dir);
		lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (lfd < 0) {
			fprintf(stderr, "fuseboxd: cannot open %s: %s\n",
			    lockpath, strerror(errno));
			return EX_CANTCREAT;
		}
		if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
			fprintf(stderr,
			    "fuseboxd: %s is in use by another fuseboxd "
			    "(%s)\n",
			    c.data_dir,
			    errno == EWOULDBLOCK ? "locked" : strerror(errno));
			return EX_TEMPFAIL;
		}
		/* held open (and locked) until the process exits */
	}
	/* one daemon per socket path, too: the store's lock does not cover
	 * a second daemon with another store on the same ipc:// path */
	if ((rc = ipc_claim("console", c.console)) != -1 ||
	    (rc = ipc_claim("gateway", c.gateway)) != -1 ||
	    (c.events[0] && (rc = ipc_claim("events", c.events)) != -1))
		return rc;
	signal(SIGPIPE, SIG_IGN);
	if (c.http[0] != '\0') {
#ifdef FBX_HAVE_HTTP
		char why[512];
		/* bound before the store is recovered: a busy port is found
		 * at once; /metrics answers 503 until the loop runs */
		rc = fbx_http_open(c.http, c.http_allow_remote, &the_http, why,
		    sizeof(why));
		if (rc != FBX_OK) {
			fprintf(stderr, "fuseboxd: --http %s\n", why);
			return rc == FBX_EINVAL ? EX_USAGE : EX_UNAVAILABLE;
		}
		/* the address it bound (PORT alone is 127.0.0.1, port 0
		 * a free one) */
		FBX_LOGI("http: serving /metrics and the web console on %s "
		         "(port %u)",
		    fbx_http_url(the_http)[0] ? fbx_http_url(the_http)
		                              : c.http,
		    fbx_http_port(the_http));
		o.web_url = fbx_http_url(the_http);
#else
		fprintf(stderr, "fuseboxd: --http: this fuseboxd was built "
		    "without HTTP support (FBX_HTTP=OFF)\n");
		return EX_CONFIG;
#endif
	}
	/* alert commands are never waited for: let the kernel reap them */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL);
	/* SIGHUP reloads: caught from here on, acted on after a turn */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &sa, NULL);
	warn_every_interface("console", c.console);
	warn_every_interface("gateway", c.gateway);
	if (c.events[0])
		warn_every_interface("events", c.events);
	notify("STATUS=recovering the store");
	rc = fbx_engine_open(&o, &the_engine);
	if (rc != FBX_OK) {
#ifdef FBX_HAVE_HTTP
		fbx_http_close(the_http);
		the_http = NULL;
#endif
		/* the sockets are bound before the store is opened and
		 * recovered: their files go when it cannot be */
		ipc_unclaim(o.console_ep);
		ipc_unclaim(o.gateway_ep);
		ipc_unclaim(o.events_ep);
		if (rc == FBX_EBUSY && live.store[0] != '\0') {
			fprintf(stderr, "fuseboxd: the store is in use by "
			                "another fuseboxd\n");
			return EX_TEMPFAIL;
		}
		/* UNREACHABLE here is an endpoint that could not be bound
		 * (its own line above says which and why), not an engine
		 * out of reach */
		if (rc == FBX_EIO || rc == FBX_ECORRUPT)
			fprintf(stderr, "fuseboxd: cannot open the store: %s "
			                "(the lines above say why)\n",
			    fbx_strerror(rc));
		else
			fprintf(stderr, "fuseboxd: %s\n",
			    rc == FBX_EUNREACHABLE ? "cannot bind an endpoint"
			                           : fbx_strerror(rc));
		return rc == FBX_EIO || rc == FBX_ECORRUPT ? EX_NOINPUT
		                                          : exit_code(rc);
	}
#ifdef FBX_HAVE_HTTP
	/* the web console's API reaches the engine from now on */
	fbx_http_attach(the_http, fbx_engine_webgate(the_engine));
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ipc_note(0, o.console_ep);
	ipc_note(1, o.gateway_ep);
	ipc_note(2, o.events_ep);
	rc = fbx_engine_run(the_engine);
#ifdef FBX_HAVE_HTTP
	/* the loop reads no more web requests: the API answers 503 and the
	 * calls under way end now, so stopping never waits on a browser */
	fbx_http_attach(the_http, NULL);
	fbx_webgate_close(fbx_engine_webgate(the_engine));
	fbx_http_close(the_http);
	the_http = NULL;
#endif
	fbx_engine_close(the_engine);
	the_engine = NULL;
	ipc_release();
	return exit_code(rc);
}
