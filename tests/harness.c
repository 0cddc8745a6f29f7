/*
 * harness.c: see harness.h. Processes are started with fork/exec from the
 * build tree (FBX_BIN_DIR) with their output in the test's directory, so a
 * failed run leaves the daemon log behind for a reader.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "fbx_keys.h"
#include "harness.h"

int fbxt_passed, fbxt_failed;

static const char *
bin_dir(void)
{
	const char *d = getenv("FBX_BIN_DIR");

	return d != NULL ? d : "../dispatcher";
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int
fbxt_pg(void)
{
	const char *u = getenv("FBX_TEST_PG_URL");

	return u != NULL && u[0] != '\0';
}

/* pg_store - t->store: FBX_TEST_PG_URL with search_path set to a schema
 * of this test alone (lower case, [a-z0-9_]: PostgreSQL folds unquoted
 * names). @return 0 or -1 (too long). */
static int
pg_store(struct fbxt_env *t, const char *name)
{
	static unsigned seq;
	const char *url = getenv("FBX_TEST_PG_URL");
	char schema[64];
	size_t n;
	int len;

	n = (size_t)snprintf(schema, sizeof(schema), "fbxt_");
	for (const char *p = name; *p != '\0' && n < 24; p++)
		schema[n++] = isalnum((unsigned char)*p)
		    ? (char)tolower((unsigned char)*p)
		    : '_';
	snprintf(schema + n, sizeof(schema) - n, "_%ld_%lld_%u",
	    (long)getpid(), (long long)time(NULL) % 1000000, seq++);
	len = snprintf(t->store, sizeof(t->store),
	    "%s%soptions=-csearch_path%%3D%s", url,
	    strchr(url, '?') != NULL ? "&" : "?", schema);
	if (len < 0 || (size_t)len >= sizeof(t->store) ||
	    strchr(t->store, '\'') != NULL) {
		fprintf(stderr, "harness: FBX_TEST_PG_URL too long or "
		                "quoted\n");
		return -1;
	}
	return 0;
}

int
fbxt_setup(struct fbxt_env *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/fbxt-%s-XXXXXX", name);
	if (mkdtemp(t->dir) == NULL)
		return -1;
	if (fbxt_pg() && pg_store(t, name) != 0)
		return -1;
	snprintf(t->db, sizeof(t->db), "%s/db", t->dir);
	snprintf(t->console, sizeof(t->console), "ipc://%s/console.sock",
	    t->dir);
	snprintf(t->gateway, sizeof(t->gateway), "ipc://%s/gateway.sock",
	    t->dir);
	signal(SIGPIPE, SIG_IGN);
	return fbxt_keys_init(t);
}

static void
actors_close(struct fbxt_env *t)
{
	for (size_t i = 0; i < t->nactors; i++)
		fbx_client_close(t->actors[i].cli);
	t->nactors = 0;
}

int
fbxt_keys_init(struct fbxt_env *t)
{
	char path[400], log[400], cmd[2400], store[800] = "";
	const char *bin = getenv("FBX_BIN_DIR");
	struct stat st;

	if (t->cli != NULL && strcmp(t->keys_of, t->db) == 0)
		return 0;
	snprintf(t->keys, sizeof(t->keys), "%s/keys", t->db);
	snprintf(path, sizeof(path), "%s/server.key", t->keys);
	if (stat(path, &st) != 0) {
		snprintf(log, sizeof(log), "%s/init.log", t->dir);
		if (t->store[0] != '\0')
			snprintf(store, sizeof(store), "--store '%s' ",
			    t->store);
		snprintf(cmd, sizeof(cmd),
		    "'%s/fuseboxd' init --data '%s' %s"
		    "--principal gw/gateway/-/'*' "
		    "--principal rule-engine/automation/all/'*' "
		    "--principal attestation-rule/automation/all/'*' "
		    ">>'%s' 2>&1",
		    bin != NULL ? bin : "../dispatcher", t->db, store, log);
		if (system(cmd) != 0) {
			fprintf(stderr, "fuseboxd init failed (see %s)\n", log);
			return -1;
		}
	}
	snprintf(path, sizeof(path), "%s/admin.key", t->keys);
	setenv("FUSEBOX_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/server.pub", t->keys);
	setenv("FUSEBOX_SERVER_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/gw.key", t->keys);
	setenv("FUSEBOX_GATEWAY_KEY", path, 1);
	snprintf(path, sizeof(path), "%s/attestation-rule.key", t->keys);
	setenv("FUSEBOX_STORM_KEY", path, 1);
	unsetenv("FUSEBOX_ACTOR");
	actors_close(t);
	fbx_client_close(t->cli);
	t->cli = NULL;
	/* reply timeouts are hang guards, not speed limits: generous, so a
	 * busy machine (sanitizers, shared cores) does not fail a test */
	if (fbx_client_open(t->console, 60000, &t->cli) != FBX_OK)
		return -1;
	snprintf(t->keys_of, sizeof(t->keys_of), "%s", t->db);
	return 0;
}

int
fbxt_sock_curve(void *sock, const char *env)
{
	const char *path = getenv(env), *spath = getenv("FUSEBOX_SERVER_KEY");
	struct fbx_key k, s;

	if (path == NULL)
		path = env;
	if (spath == NULL || fbx_key_read(path, 1, &k, NULL, 0) != FBX_OK ||
	    fbx_key_read(spath, 0, &s, NULL, 0) != FBX_OK)
		return -1;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, s.public_z85, 41) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k.public_z85, 41) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k.secret_z85, 41))
		return -1;
	return 0;
}

fbx_client *
fbxt_client_for(struct fbxt_env *t, const char *actor)
{
	struct fbx_client_opts co;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_key k;
	char path[400];
	fbx_client *c = NULL;
	int rc;

	if (actor[0] == '\0' || strcmp(actor, "admin") == 0)
		return t->cli;
	for (size_t i = 0; i < t->nactors; i++)
		if (strcmp(t->actors[i].name, actor) == 0)
			return t->actors[i].cli;
	if (t->nactors == sizeof(t->actors) / sizeof(t->actors[0]))
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.key", t->keys, actor);
	if (fbx_key_read(path, 1, &k, NULL, 0) != FBX_OK) {
		if (fbx_key_generate(actor, &k) != FBX_OK ||
		    fbx_key_write(path, &k, 1) != FBX_OK)
			return NULL;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_PRINCIPAL;
		req.u.principal.op = FBX_PRI_ADD;
		snprintf(req.u.principal.name, sizeof(req.u.principal.name),
		    "%s", actor);
		req.u.principal.kind = strstr(actor, "rule") != NULL
		    ? FBX_PK_AUTOMATION
		    : FBX_PK_OPERATOR;
		req.u.principal.roles = FBX_ROLES_ALL;
		strcpy(req.u.principal.orgs, "*");
		strcpy(req.u.principal.public_key, k.public_z85);
		snprintf(req.org, sizeof(req.org), "_auth");
		rc = fbx_client_call(t->cli, &req, &rep);
		if (rc == FBX_OK)
			rc = rep.err;
		fbx_console_rep_free(&rep);
		if (rc != FBX_OK && rc != FBX_ESTATE) {
			fprintf(stderr, "harness: cannot add principal %s: "
			                "%s\n",
			    actor, fbx_errname(rc));
			unlink(path);
			return NULL;
		}
	}
	memset(&co, 0, sizeof(co));
	co.key_file = path;
	if (fbx_client_open2(t->console, 60000, &co, &c) != FBX_OK)
		return NULL;
	snprintf(t->actors[t->nactors].name, sizeof(t->actors[0].name), "%s",
	    actor);
	t->actors[t->nactors++].cli = c;
	return c;
}

extern char **environ;

/* merge_env - environ with extra NAME=VALUE strings replacing or added;
 * built before fork, as the child may not allocate. @return a malloc'd
 * array (the strings are borrowed) or NULL. */
static char **
merge_env(const char *const *extra)
{
	size_t n = 0, nx = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	while (extra[nx] != NULL)
		nx++;
	env = calloc(n + nx + 1, sizeof(*env));
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int replaced = 0;
		for (size_t j = 0; j < nx && !replaced; j++) {
			const char *eq = strchr(extra[j], '=');
			size_t len = eq != NULL ? (size_t)(eq - extra[j]) + 1
			                        : 0;
			replaced = len > 0 &&
			    strncmp(environ[i], extra[j], len) == 0;
		}
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < nx; j++)
		env[k++] = (char *)(uintptr_t)extra[j];
	env[k] = NULL;
	return env;
}

static pid_t
spawn_env(struct fbxt_env *t, const char *prog, const char *log, char **args,
    const char *const *extra_env)
{
	char path[512], logpath[512];
	char *argv[64];
	char **envp = environ;
	int n = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/%s", bin_dir(), prog);
	snprintf(logpath, sizeof(logpath), "%s/%s", t->dir, log);
	argv[n++] = path;
	for (int i = 0; args[i] != NULL && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (extra_env != NULL) {
		envp = merge_env(extra_env);
		if (envp == NULL)
			return -1;
	}
	pid = fork();
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execve(path, argv, envp);
		_exit(127);
	}
	if (envp != environ)
		free(envp);
	return pid;
}

static pid_t
spawn(struct fbxt_env *t, const char *prog, const char *log, char **args)
{
	return spawn_env(t, prog, log, args, NULL);
}

static int
collect(char **args, int max, va_list ap)
{
	int n = 0;
	char *a;

	while ((a = va_arg(ap, char *)) != NULL && n < max - 1)
		args[n++] = a;
	args[n] = NULL;
	return n;
}

void
fbxt_preload_env(const char *lib, char *pre, size_t prelen, char *asan,
    size_t asanlen)
{
	const char *a = getenv("ASAN_OPTIONS");

	snprintf(pre, prelen, "LD_PRELOAD=%s", lib);
	snprintf(asan, asanlen, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
	    a != NULL ? a : "", a != NULL && a[0] ? ":" : "");
}

int
fbxt_log_lines(const struct fbxt_env *t, const char *needle)
{
	char path[400], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/fuseboxd.log", t->dir);
	f = fopen(path, "r");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	if (f != NULL)
		fclose(f);
	return n;
}

int
fbxt_daemon_start(struct fbxt_env *t, ...)
{
	char *args[56];
	int n = 0;
	va_list ap;

	if (fbxt_keys_init(t) != 0)
		return -1;
	args[n++] = "--data";
	args[n++] = t->db;
	args[n++] = "--console";
	args[n++] = t->console;
	args[n++] = "--gateway";
	args[n++] = t->gateway;
	if (t->store[0] != '\0') {
		args[n++] = "--store";
		args[n++] = t->store;
	}
	va_start(ap, t);
	collect(args + n, 40, ap);
	va_end(ap);
	t->daemon = spawn_env(t, "fuseboxd", "fuseboxd.log", args,
	    t->daemon_env);
	if (t->daemon < 0)
		return -1;
	for (int i = 0; i < 1200; i++) { /* up to about a minute */
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int st;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_PING;
		snprintf(req.actor, sizeof(req.actor), "admin");
		fbx_client_set_timeout(t->cli, 200);
		if (fbxt_call(t, "probe", &req, &rep) == FBX_OK) {
			fbx_console_rep_free(&rep);
			fbx_client_set_timeout(t->cli, 60000);
			return 0;
		}
		if (waitpid(t->daemon, &st, WNOHANG) == t->daemon) {
			t->daemon = 0;
			return -1;
		}
		sleep_ms(50);
	}
	return -1;
}

int
fbxt_daemon_kill(struct fbxt_env *t, int sig)
{
	int st = -1;

	if (t->daemon <= 0)
		return -1;
	kill(t->daemon, sig);
	while (waitpid(t->daemon, &st, 0) < 0 && errno == EINTR)
		;
	t->daemon = 0;
	return st;
}

/* sim_endpoints - the simulator's endpoint flags; @return args written. */
static int
sim_endpoints(struct fbxt_env *t, char **args)
{
	args[0] = "--gateway-endpoint";
	args[1] = t->gateway;
	args[2] = "--console-endpoint";
	args[3] = t->console;
	return 4;
}

int
fbxt_sim_run(struct fbxt_env *t, ...)
{
	char *args[48];
	int n = 0, st;
	pid_t pid;
	va_list ap;

	n = sim_endpoints(t, args);
	va_start(ap, t);
	collect(args + n, 40, ap);
	va_end(ap);
	pid = spawn(t, "fusebox-devsim", "devsim-run.log", args);
	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
fbxt_sim_start(struct fbxt_env *t, ...)
{
	char *args[48];
	int n = 0;
	va_list ap;

	n = sim_endpoints(t, args);
	va_start(ap, t);
	collect(args + n, 40, ap);
	va_end(ap);
	t->sim = spawn(t, "fusebox-devsim", "devsim.log", args);
	return t->sim > 0 ? 0 : -1;
}

int
fbxt_sim_stop(struct fbxt_env *t)
{
	int st = -1;

	if (t->sim <= 0)
		return -1;
	kill(t->sim, SIGTERM);
	while (waitpid(t->sim, &st, 0) < 0 && errno == EINTR)
		;
	t->sim = 0;
	return st;
}

void
fbxt_teardown(struct fbxt_env *t)
{
	char cmd[400];

	int st;

	/* a clean stop is part of the contract: SIGTERM drains and exits
	 * 0, and under the sanitizers a leak makes the exit non-zero */
	if (t->sim > 0) {
		st = fbxt_sim_stop(t);
		FBXT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "simulator exit status %d", st);
	}
	if (t->daemon > 0) {
		st = fbxt_daemon_kill(t, SIGTERM);
		FBXT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "fuseboxd exit status %d (see fuseboxd.log)", st);
	}
	actors_close(t);
	fbx_client_close(t->cli);
	t->cli = NULL;
	if (fbxt_failed == 0 && getenv("FBXT_KEEP") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", t->dir);
	} else {
		fprintf(stderr, "test directory kept: %s\n", t->dir);
		if (t->store[0] != '\0')
			fprintf(stderr, "its store: %s (tests/pg_cluster.sh "
			                "run keeps the cluster with "
			                "PG_KEEP=1)\n",
			    t->store);
	}
}

int
fbxt_call(struct fbxt_env *t, const char *org, struct fbx_console_req *req,
    struct fbx_console_rep *rep)
{
	fbx_client *c;
	int rc;

	snprintf(req->org, sizeof(req->org), "%s", org);
	/* automatic commands come from an automation principal (issue 10) */
	if (req->actor[0] == '\0')
		snprintf(req->actor, sizeof(req->actor), "%s",
		    req->kind == FBX_CREQ_SUBMIT &&
		            req->u.submit.cmd.origin == FBX_ORIGIN_AUTOMATIC
		        ? "rule-engine"
		        : "test");
	memset(rep, 0, sizeof(*rep));
	/* issue 10: an actor is a key; each gets its own principal */
	c = fbxt_client_for(t, req->actor);
	if (c == NULL)
		return FBX_ECONFIG;
	rc = fbx_client_call(c, req, rep);
	return rc != FBX_OK ? rc : rep->err;
}

int
fbxt_submit(struct fbxt_env *t, const char *org, int type, int origin,
    int target_kind, const char *group, const char **ids, size_t nids,
    const char *idem, uint64_t *id, uint32_t *count)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct fbx_command *c = &req.u.submit.cmd;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	c->type = (uint8_t)type;
	c->origin = (uint8_t)origin;
	c->target_kind = (uint8_t)target_kind;
	if (origin == FBX_ORIGIN_AUTOMATIC) {
		snprintf(c->reason, sizeof(c->reason), "attestation_failed");
		/* only automation principals submit automatic commands */
		snprintf(req.actor, sizeof(req.actor), "rule-engine");
	}
	if (group != NULL)
		snprintf(c->group, sizeof(c->group), "%s", group);
	if (idem != NULL)
		snprintf(c->idem_key, sizeof(c->idem_key), "%s", idem);
	c->ttl_s = 3600;
	if (nids > 0) {
		c->dev_ids = calloc(nids, sizeof(*c->dev_ids));
		if (c->dev_ids == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < nids; i++)
			snprintf(c->dev_ids[i], sizeof(c->dev_ids[i]), "%s",
			    ids[i]);
		c->ndev_ids = (uint32_t)nids;
	}
	rc = fbxt_call(t, org, &req, &rep);
	if (rc == FBX_OK) {
		if (id != NULL)
			*id = rep.u.submit.command_id;
		if (count != NULL)
			*count = rep.u.submit.device_count;
	}
	fbx_console_rep_free(&rep);
	free(c->dev_ids);
	return rc;
}

int
fbxt_wait_settled(struct fbxt_env *t, const char *org, uint64_t id,
    int timeout_ms, struct fbx_command *info)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		if (fbxt_call(t, org, &req, &rep) == FBX_OK) {
			const struct fbx_command *c = &rep.u.command.info;
			int settled = c->state == FBX_C_DONE;
			if (info != NULL)
				*info = *c;
			fbx_console_rep_free(&rep);
			if (settled)
				return 0;
		} else {
			fbx_console_rep_free(&rep);
		}
		sleep_ms(50);
	}
	return -1;
}

int
fbxt_report_read(const char *path, struct fbxt_report *r)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	memset(r, 0, sizeof(*r));
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *save = NULL;
		if (strncmp(line, "org=", 4) == 0 && r->norgs < 256) {
			for (char *tok = strtok_r(line, " \n", &save);
			    tok != NULL; tok = strtok_r(NULL, " \n", &save)) {
				char *eq = strchr(tok, '=');
				if (eq == NULL)
					continue;
				*eq = '\0';
				if (strcmp(tok, "org") == 0)
					snprintf(r->orgs[r->norgs].org,
					    sizeof(r->orgs[0].org), "%s",
					    eq + 1);
				else if (strcmp(tok, "devices") == 0)
					r->orgs[r->norgs].devices =
					    strtoull(eq + 1, NULL, 10);
				else if (strcmp(tok, "received") == 0)
					r->orgs[r->norgs].received =
					    strtoull(eq + 1, NULL, 10);
				else if (strcmp(tok, "distinct") == 0)
					r->orgs[r->norgs].distinct =
					    strtoull(eq + 1, NULL, 10);
			}
			r->norgs++;
			continue;
		}
		if (strncmp(line, "deliveries_received=", 20) != 0)
			continue;
		for (char *tok = strtok_r(line, " \n", &save); tok != NULL;
		    tok = strtok_r(NULL, " \n", &save)) {
			char *eq = strchr(tok, '=');
			uint64_t v;
			if (eq == NULL)
				continue;
			*eq = '\0';
			v = strtoull(eq + 1, NULL, 10);
			if (strcmp(tok, "deliveries_received") == 0)
				r->received = v;
			else if (strcmp(tok, "distinct_ids") == 0)
				r->distinct = v;
			else if (strcmp(tok, "duplicates") == 0)
				r->duplicates = v;
			else if (strcmp(tok, "dup_after_durable_success") == 0)
				r->dup_after_success = v;
			else if (strcmp(tok, "foreign") == 0)
				r->foreign = v;
			else if (strcmp(tok, "succeeded") == 0)
				r->succeeded = v;
			else if (strcmp(tok, "failed") == 0)
				r->failed = v;
			else if (strcmp(tok, "offline") == 0)
				r->offline = v;
		}
	}
	fclose(f);
	return 0;
}

int
fbxt_done(void)
{
	printf("%d passed, %d failed\n", fbxt_passed, fbxt_failed);
	return fbxt_failed == 0 && fbxt_passed > 0 ? 0 : 1;
}
