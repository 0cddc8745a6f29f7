/*
 * auth_test.c: issue 10 end to end against the real daemon. Every party
 * speaks CURVE with its own key; the engine's ZAP handler admits only
 * active principals' keys, and every request acts as the principal its
 * key names, within that principal's roles and organisations. The test
 * shows each refusal of the "Bad input" (unknown, wrong, revoked
 * and rotated keys; a plaintext client; another organisation; an
 * approval under another actor; a gateway HELLO outside its scope;
 * forged results), that a refused request changed and dispatched
 * nothing, and that the audit chain names the authenticated principal.
 */
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

static struct fbxt_env t;
static void *zctx;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mkkey - a fresh key pair for name in file in the test's directory. */
static void
mkkey(const char *name, const char *file, char *path, size_t cap,
    struct fbx_key *k)
{
	snprintf(path, cap, "%s/%s.key", t.dir, file);
	unlink(path);
	FBXT_CHECK(fbx_key_generate(name, k) == FBX_OK &&
	        fbx_key_write(path, k, 1) == FBX_OK,
	    "key for %s", name);
}

/* principal - op on a principal as the admin. @return the engine's
 * verdict. */
static int
principal(int op, const char *name, int kind, uint32_t roles,
    const char *orgs, const char *key)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PRINCIPAL;
	snprintf(req.actor, sizeof(req.actor), "admin");
	req.u.principal.op = op;
	snprintf(req.u.principal.name, sizeof(req.u.principal.name), "%s",
	    name);
	req.u.principal.kind = kind;
	req.u.principal.roles = roles;
	if (orgs != NULL)
		snprintf(req.u.principal.orgs, sizeof(req.u.principal.orgs),
		    "%s", orgs);
	if (key != NULL)
		snprintf(req.u.principal.public_key,
		    sizeof(req.u.principal.public_key), "%s", key);
	rc = fbxt_call(&t, "_auth", &req, &rep);
	fbx_console_rep_free(&rep);
	return rc;
}

/* open_as - a console client with the key file path (NULL: plaintext). */
static fbx_client *
open_as(const char *path, const char *server_pub, int timeout_ms)
{
	struct fbx_client_opts o;
	fbx_client *c = NULL;

	memset(&o, 0, sizeof(o));
	o.key_file = path;
	o.server_key_file = server_pub;
	o.plaintext = path == NULL;
	if (fbx_client_open2(t.console, timeout_ms, &o, &c) != FBX_OK)
		return NULL;
	return c;
}

/* call - one request of kind on org with the client, actor as given ("" =
 * the key's). @return the transport error or the engine's verdict. */
static int
call(fbx_client *c, const char *org, const char *actor,
    struct fbx_console_req *req, struct fbx_console_rep *rep)
{
	int rc;

	snprintf(req->org, sizeof(req->org), "%s", org);
	snprintf(req->actor, sizeof(req->actor), "%s", actor);
	memset(rep, 0, sizeof(*rep));
	rc = fbx_client_call(c, req, rep);
	return rc != FBX_OK ? rc : rep->err;
}

static int
submit(fbx_client *c, const char *org, const char *actor, int type,
    int origin, const char *approval, uint64_t *id, char *token)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_SUBMIT;
	req.u.submit.cmd.type = (uint8_t)type;
	req.u.submit.cmd.origin = (uint8_t)origin;
	req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
	if (origin == FBX_ORIGIN_AUTOMATIC)
		snprintf(req.u.submit.cmd.reason,
		    sizeof(req.u.submit.cmd.reason), "jailbreak_rule");
	if (approval != NULL)
		snprintf(req.approval, sizeof(req.approval), "%s", approval);
	rc = call(c, org, actor, &req, &rep);
	if (rc == FBX_OK && id != NULL)
		*id = rep.u.submit.command_id;
	if (token != NULL)
		snprintf(token, FBX_ID_MAX + 1, "%s", rep.approval_token);
	fbx_console_rep_free(&rep);
	return rc;
}

static int
simple(fbx_client *c, const char *org, const char *actor, int kind)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	memset(&req, 0, sizeof(req));
	req.kind = kind;
	if (kind == FBX_CREQ_LIST_COMMANDS)
		req.u.list.limit = 1000;
	rc = call(c, org, actor, &req, &rep);
	fbx_console_rep_free(&rep);
	return rc;
}

/* commands - how many commands org has (as the admin). */
static size_t
commands(const char *org)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	size_t n = (size_t)-1;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_LIST_COMMANDS;
	req.u.list.limit = 1000;
	if (call(t.cli, org, "", &req, &rep) == FBX_OK)
		n = rep.u.commands.n;
	fbx_console_rep_free(&rep);
	return n;
}

/* audit_has - whether org's audit log holds a record of action by actor
 * (action compared in full). */
/* audit_has_params - whether org's audit log has a record by actor of
 * action whose params contain needle (NULL: any) */
static int
audit_has_params(const char *org, const char *actor, const char *action,
    const char *needle)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int found = 0;
	uint64_t after = 0;

	do {
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_AUDIT_LIST;
		req.u.audit_list.after = after;
		req.u.audit_list.limit = 1000;
		if (call(t.cli, org, "", &req, &rep) != FBX_OK) {
			fbx_console_rep_free(&rep);
			return 0;
		}
		for (size_t i = 0; i < rep.u.audit.n; i++)
			if (strcmp(rep.u.audit.r[i].actor, actor) == 0 &&
			    strcmp(rep.u.audit.r[i].action, action) == 0 &&
			    (needle == NULL ||
			        strstr(rep.u.audit.r[i].params, needle) != NULL))
				found = 1;
		after = rep.u.audit.next_after;
		fbx_console_rep_free(&rep);
	} while (after != 0 && !found);
	return found;
}

static int
audit_has(const char *org, const char *actor, const char *action)
{
	return audit_has_params(org, actor, action, NULL);
}

/* ---- gateway side: a raw DEALER with a given key */

static void *
gw_open_rid(const char *key_path, const void *rid, size_t rid_len)
{
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	int zero = 0;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (rid != NULL)
		zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, rid_len);
	if (key_path != NULL)
		fbxt_sock_curve(s, key_path);
	zmq_connect(s, t.gateway);
	return s;
}

static void *
gw_open(const char *key_path)
{
	return gw_open_rid(key_path, NULL, 0);
}

static int
gw_send(void *s, const struct fbx_gw_msg *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = fbx_gw_msg_encode(m, &buf, &len);

	if (rc != FBX_OK)
		return rc;
	rc = zmq_send(s, buf, len, ZMQ_DONTWAIT) == (int)len ? FBX_OK
	                                                     : FBX_EIO;
	free(buf);
	return rc;
}

static void
gw_hello_w(void *s, const char *id, const char *org, uint32_t window)
{
	struct fbx_gw_msg m;
	fbx_id orgs[1];

	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_HELLO;
	snprintf(m.u.hello.gateway_id, sizeof(m.u.hello.gateway_id), "%s", id);
	snprintf(orgs[0], sizeof(orgs[0]), "%s", org);
	m.u.hello.orgs = orgs;
	m.u.hello.norgs = 1;
	m.u.hello.window = window;
	gw_send(s, &m);
}

static void
gw_hello(void *s, const char *id, const char *org)
{
	gw_hello_w(s, id, org, 1000);
}

static void
gw_results(void *s, uint64_t batch, const uint64_t *ids, size_t n)
{
	struct fbx_gw_msg m;
	struct fbx_result_rec r[64];

	memset(r, 0, sizeof(r));
	for (size_t i = 0; i < n && i < 64; i++) {
		r[i].delivery_id = ids[i];
		r[i].status = FBX_R_SUCCEEDED;
	}
	memset(&m, 0, sizeof(m));
	m.version = FBX_PROTOCOL_VERSION;
	m.kind = FBX_GW_RESULTS;
	m.u.results.batch_id = batch;
	m.u.results.r = r;
	m.u.results.n = n < 64 ? n : 64;
	gw_send(s, &m);
}

/* gw_next - the next engine message of kind (others are dropped, but
 * DELIVERIES' ids are kept in ids/nids), within ms. @return 1 and *out
 * (free it), 0 on timeout. */
static int
gw_next(void *s, int kind, int ms, struct fbx_eng_msg *out, uint64_t *ids,
    size_t *nids, size_t cap)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end) {
		zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
		zmq_msg_t z;
		struct fbx_eng_msg m;
		if (zmq_poll(&it, 1, 100) <= 0)
			continue;
		zmq_msg_init(&z);
		if (zmq_msg_recv(&z, s, 0) < 0) {
			zmq_msg_close(&z);
			continue;
		}
		if (fbx_eng_msg_decode(zmq_msg_data(&z), zmq_msg_size(&z),
		        &m) != FBX_OK) {
			zmq_msg_close(&z);
			continue;
		}
		zmq_msg_close(&z);
		for (size_t i = 0; m.kind == FBX_ENG_DELIVERIES &&
		     ids != NULL && i < m.u.deliveries.n && *nids < cap;
		    i++)
			ids[(*nids)++] = m.u.deliveries.d[i].delivery_id;
		if (m.kind == kind) {
			*out = m;
			return 1;
		}
		fbx_eng_msg_free(&m);
	}
	return 0;
}

/* ---- local files: modes made, unsafe ones refused at start */

/* run_daemon - fuseboxd on data with the console in sockdir; it must
 * refuse to start. @return its exit status (124: it ran). */
static int
run_daemon(const char *data, const char *sockdir, const char *log)
{
	char cmd[2000];
	const char *bin = getenv("FBX_BIN_DIR");
	int st;

	snprintf(cmd, sizeof(cmd),
	    "timeout 10 '%s/fuseboxd' --data '%s' --console "
	    "'ipc://%s/c.sock' --gateway 'ipc://%s/g.sock' > '%s' 2>&1",
	    bin != NULL ? bin : "../dispatcher", data, sockdir, sockdir, log);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
file_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static int
log_has(const char *log, const char *what)
{
	char buf[4096];
	FILE *f = fopen(log, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

static void
test_files(void)
{
	char d[400], db[450], p[500], log[450], cmd[8192];
	const char *bin = getenv("FBX_BIN_DIR");
	int rc;

	/* the test's own store: made 0700, keys 0600 */
	snprintf(p, sizeof(p), "%s/data.mdb", t.db);
	FBXT_CHECK(file_mode(t.db) == 0700 && file_mode(p) == 0600,
	    "store modes %o %o", file_mode(t.db), file_mode(p));
	snprintf(p, sizeof(p), "%s/admin.key", t.keys);
	FBXT_CHECK(file_mode(t.keys) == 0700 && file_mode(p) == 0600,
	    "key modes %o %o", file_mode(t.keys), file_mode(p));
	snprintf(p, sizeof(p), "%s/console.sock", t.dir);
	FBXT_CHECK(file_mode(p) == 0660, "socket mode %o", file_mode(p));
	/* init on the store the test's daemon runs on: refused before it
	 * looks at the keys (a daemon whose server key is elsewhere,
	 * --server-key, has none in DIR/keys, and init wrote principals
	 * into its store) */
	snprintf(log, sizeof(log), "%s/init-busy.log", t.dir);
	snprintf(cmd, sizeof(cmd), "'%s/fuseboxd' init --data '%s' > '%s' 2>&1",
	    bin != NULL ? bin : "../dispatcher", t.db, log);
	rc = system(cmd);
	FBXT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 75 &&
	        log_has(log, "in use by a running fuseboxd"),
	    "init on a running daemon's store: status %d", rc);

	snprintf(d, sizeof(d), "%s/perm", t.dir);
	snprintf(db, sizeof(db), "%s/db", d);
	snprintf(log, sizeof(log), "%s/perm.log", t.dir);
	mkdir(d, 0700);
	snprintf(cmd, sizeof(cmd), "'%s/fuseboxd' init --data '%s' > '%s' 2>&1",
	    bin != NULL ? bin : "../dispatcher", db, log);
	FBXT_CHECK(system(cmd) == 0, "init");
	/* init twice: refused, nothing overwritten */
	rc = system(cmd);
	FBXT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 73,
	    "second init: status %d", rc);
	/* a server key others can read */
	snprintf(p, sizeof(p), "%s/keys/server.key", db);
	chmod(p, 0644);
	rc = run_daemon(db, d, log);
	FBXT_CHECK(rc == 78 && log_has(log, "readable"),
	    "readable server key: status %d", rc);
	chmod(p, 0600);
	/* a world-writable socket directory */
	snprintf(p, sizeof(p), "%s/pub", d);
	mkdir(p, 0777);
	chmod(p, 0777);
	rc = run_daemon(db, p, log);
	FBXT_CHECK(rc == 77 && log_has(log, "world-writable"),
	    "world-writable socket dir: status %d", rc);
	/* a world-writable data directory */
	chmod(db, 0777);
	rc = run_daemon(db, d, log);
	FBXT_CHECK(rc == 77 && log_has(log, "world-writable"),
	    "world-writable data dir: status %d", rc);
	chmod(db, 0700);
	/* --server-key: a copy others can read is refused too */
	snprintf(cmd, sizeof(cmd),
	    "cp '%s/keys/server.key' '%s/other.key' && chmod 644 "
	    "'%s/other.key' && timeout 10 '%s/fuseboxd' --data '%s' "
	    "--server-key '%s/other.key' --console 'ipc://%s/c.sock' "
	    "--gateway 'ipc://%s/g.sock' > '%s' 2>&1",
	    db, d, d, bin != NULL ? bin : "../dispatcher", db, d, d, d, log);
	rc = system(cmd);
	FBXT_CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 78 &&
	        log_has(log, "other.key"),
	    "readable --server-key: status %d", rc);
	/* no key at all */
	snprintf(p, sizeof(p), "%s/keys/server.key", db);
	unlink(p);
	rc = run_daemon(db, d, log);
	FBXT_CHECK(rc == 78 && log_has(log, "fuseboxd init"),
	    "no server key: status %d", rc);
}

/* ---- events: a subscriber gets only its organisations */

static void *
sub_open(const char *key_path, const char *prefix)
{
	char ep[400];
	void *s = zmq_socket(zctx, ZMQ_SUB);
	int zero = 0, tmo = 500;

	snprintf(ep, sizeof(ep), "ipc://%s/events.sock", t.dir);
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	zmq_setsockopt(s, ZMQ_SUBSCRIBE, prefix, strlen(prefix));
	fbxt_sock_curve(s, key_path);
	zmq_connect(s, ep);
	return s;
}

/* sub_orgs - read what came (until 500 ms of quiet) and count events of
 * org and of organisations other than org and "*". */
static void
sub_orgs(void *s, const char *org, int *mine, int *foreign)
{
	*mine = *foreign = 0;
	for (;;) {
		char topic[256];
		uint8_t buf[4096];
		struct fbx_event ev;
		int n = zmq_recv(s, topic, sizeof(topic) - 1, 0);
		if (n < 0)
			return;
		n = zmq_recv(s, buf, sizeof(buf), 0);
		if (n <= 0 || fbx_event_decode(buf, (size_t)n, &ev) != FBX_OK)
			continue;
		if (strcmp(ev.org, org) == 0)
			(*mine)++;
		else if (strcmp(ev.org, "*") != 0)
			(*foreign)++;
	}
}

/* ---- the cases */

static char admin_pub[400], keys[8][400];
static struct fbx_key kk[8];
enum { ALICE, BOB, CAROL, RULE, GW1, GW2, MALLORY, CAROL2 };

static void
test_keys(void)
{
	struct fbx_key other;
	char other_pub[400];
	fbx_client *c;
	size_t before = commands("org-001");
	int rc;

	/* an unknown key is refused at the handshake: it gets nothing */
	c = open_as(keys[MALLORY], admin_pub, 3000);
	FBXT_CHECK(c != NULL, "open mallory");
	rc = simple(c, "org-001", "", FBX_CREQ_LIST_COMMANDS);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "unknown key: rc %d (%s)", rc,
	    fbx_errname(rc));
	rc = submit(c, "org-001", "", FBX_CMD_WIPE, FBX_ORIGIN_OPERATOR, NULL,
	    NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "unknown key submit: rc %d", rc);
	fbx_client_close(c);

	/* a plaintext (NULL mechanism) client gets nothing either */
	c = open_as(NULL, NULL, 1500);
	FBXT_CHECK(c != NULL, "open plaintext");
	rc = simple(c, "org-001", "admin", FBX_CREQ_PING);
	FBXT_CHECK(rc != FBX_OK, "plaintext client answered");
	rc = submit(c, "org-001", "admin", FBX_CMD_WIPE, FBX_ORIGIN_OPERATOR,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc != FBX_OK, "plaintext submit answered");
	fbx_client_close(c);

	/* a good key towards a wrong server key: no session either */
	snprintf(other_pub, sizeof(other_pub), "%s/other.pub", t.dir);
	unlink(other_pub);
	FBXT_CHECK(fbx_key_generate("other", &other) == FBX_OK &&
	        fbx_key_write(other_pub, &other, 0) == FBX_OK,
	    "other server key");
	c = open_as(keys[ALICE], other_pub, 1500);
	rc = c != NULL ? simple(c, "org-001", "", FBX_CREQ_PING) : -1;
	FBXT_CHECK(rc != FBX_OK, "wrong server key answered");
	fbx_client_close(c);

	/* a key file others can read is refused by the client itself */
	{
		char loose[400];
		struct fbx_key lk;
		struct fbx_client_opts o;
		char why[600] = "";
		fbx_client *lc = NULL;
		snprintf(loose, sizeof(loose), "%s/loose.key", t.dir);
		unlink(loose);
		fbx_key_generate("loose", &lk);
		fbx_key_write(loose, &lk, 1);
		chmod(loose, 0644);
		memset(&o, 0, sizeof(o));
		o.key_file = loose;
		o.server_key_file = admin_pub;
		o.why = why;
		o.whylen = sizeof(why);
		rc = fbx_client_open2(t.console, 1000, &o, &lc);
		FBXT_CHECK(rc == FBX_ECONFIG && strstr(why, "readable") != NULL,
		    "readable key: rc %d (%s)", rc, why);
		fbx_client_close(lc);
	}
	FBXT_CHECK(commands("org-001") == before,
	    "refused clients changed something");
}

static void
test_scope(fbx_client *alice, fbx_client *bob, fbx_client *carol,
    fbx_client *rule)
{
	size_t c1 = commands("org-001"), c2 = commands("org-002");
	char token[FBX_ID_MAX + 1] = "";
	uint64_t id = 0;
	int rc;

	/* what `fuseboxctl status` asks (ping, then the certificate list)
	 * is any principal's, whatever organisation it names: served, and
	 * no refusal in another tenant's audit log (the certificate list
	 * once was one: viewer role and organisation scope) */
	rc = simple(carol, "org-002", "", FBX_CREQ_PING);
	FBXT_CHECK(rc == FBX_OK, "carol's ping naming org-002: rc %d", rc);
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_CERT;
		req.u.cert.op = FBX_CERT_LIST;
		rc = call(carol, "org-002", "", &req, &rep);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_OK,
		    "carol's certificate list naming org-002: rc %d", rc);
		rc = call(rule, "org-001", "", &req, &rep);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_OK,
		    "the rule engine's certificate list (no viewer role): rc %d",
		    rc);
	}
	FBXT_CHECK(!audit_has("org-002", "carol", "auth.forbidden") &&
	        !audit_has("org-001", "rule", "auth.forbidden"),
	    "a status check was audited as a refusal");

	/* another organisation: FORBIDDEN, for writes and reads */
	rc = submit(alice, "org-002", "", FBX_CMD_WIPE, FBX_ORIGIN_OPERATOR,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "submit for org-002: rc %d", rc);
	rc = simple(alice, "org-002", "", FBX_CREQ_LIST_COMMANDS);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "list org-002: rc %d", rc);
	rc = simple(alice, "org-001", "", FBX_CREQ_LIST_ORGS);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "list every org: rc %d", rc);
	/* a claimed actor is refused: the key is the identity */
	rc = submit(alice, "org-001", "admin", FBX_CMD_LOCK,
	    FBX_ORIGIN_OPERATOR, NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "actor admin on alice's key: rc %d",
	    rc);
	/* roles */
	rc = submit(carol, "org-001", "", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "viewer submits: rc %d", rc);
	rc = simple(carol, "org-001", "", FBX_CREQ_LIST_COMMANDS);
	FBXT_CHECK(rc == FBX_OK, "viewer lists: rc %d", rc);
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_BREAKER;
		req.u.breaker.op = FBX_BRK_RESET;
		req.u.breaker.global = 1;
		req.u.breaker.on_reset = FBX_RESET_RELEASE;
		snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason),
		    "jailbreak_rule");
		snprintf(req.u.breaker.note, sizeof(req.u.breaker.note), "x");
		rc = call(alice, "org-001", "", &req, &rep);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_EFORBIDDEN, "global reset by alice: rc %d",
		    rc);
	}
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_PRINCIPAL;
		req.u.principal.op = FBX_PRI_LIST;
		rc = call(alice, "org-001", "", &req, &rep);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_EFORBIDDEN, "principals by alice: rc %d",
		    rc);
	}
	/* automatic origin: automation principals only, and they may not
	 * claim operator origin */
	rc = submit(alice, "org-001", "", FBX_CMD_LOCK, FBX_ORIGIN_AUTOMATIC,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "automatic by an operator: rc %d", rc);
	rc = submit(rule, "org-001", "", FBX_CMD_QUERY, FBX_ORIGIN_OPERATOR,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "operator origin by a rule: rc %d",
	    rc);
	/* nor scheduled or rollback origin: a rule's lock of either went
	 * out past open breakers, which hold automatic commands */
	rc = submit(rule, "org-001", "", FBX_CMD_LOCK, FBX_ORIGIN_SCHEDULED,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "scheduled origin by a rule: rc %d",
	    rc);
	rc = submit(rule, "org-001", "", FBX_CMD_LOCK, FBX_ORIGIN_ROLLBACK,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "rollback origin by a rule: rc %d",
	    rc);
	/* rollback origin is the engine's compensating commands': an
	 * operator's wipe under it was never selected by a rollback */
	rc = submit(alice, "org-001", "", FBX_CMD_QUERY, FBX_ORIGIN_ROLLBACK,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_EFORBIDDEN,
	    "rollback origin by an operator: rc %d", rc);
	FBXT_CHECK(commands("org-001") == c1 && commands("org-002") == c2,
	    "a refused request journaled a command");
	FBXT_CHECK(audit_has("org-002", "alice", "auth.forbidden"),
	    "the attempt on org-002 is in org-002's audit log, by alice");
	FBXT_CHECK(audit_has("org-001", "carol", "auth.forbidden"),
	    "carol's attempt is audited");

	/* two-person approval: two distinct keys with the approver role */
	rc = submit(alice, "org-001", "", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    NULL, NULL, token);
	FBXT_CHECK(rc == FBX_ELIMIT_EXCEEDED && token[0] != '\0',
	    "org-wide lock over the limit: rc %d", rc);
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_APPROVE;
		snprintf(req.u.approve.token, sizeof(req.u.approve.token), "%s",
		    token);
		/* the same key under another name */
		rc = call(alice, "org-001", "bob", &req, &rep);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_EFORBIDDEN, "alice approves as bob: rc %d",
		    rc);
		/* the same key as itself: no approver role */
		rc = call(alice, "org-001", "", &req, &rep);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_EFORBIDDEN, "alice approves: rc %d", rc);
		rc = call(bob, "org-001", "", &req, &rep);
		FBXT_CHECK(rc == FBX_OK &&
		        strcmp(rep.u.approve.approver, "bob") == 0 &&
		        strcmp(rep.u.approve.submitter, "alice") == 0,
		    "bob approves: rc %d", rc);
		fbx_console_rep_free(&rep);
	}
	FBXT_CHECK(commands("org-001") == c1, "approval journaled a command");
	rc = submit(alice, "org-001", "", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    token, &id, NULL);
	FBXT_CHECK(rc == FBX_OK && id > 0, "approved lock: rc %d", rc);
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_GET_COMMAND;
		req.u.get.command_id = id;
		rc = call(carol, "org-001", "", &req, &rep);
		FBXT_CHECK(rc == FBX_OK &&
		        strcmp(rep.u.command.info.actor, "alice") == 0 &&
		        strcmp(rep.u.command.info.approved_by, "bob") == 0,
		    "the command names alice and bob");
		fbx_console_rep_free(&rep);
	}
	FBXT_CHECK(audit_has("org-001", "alice", "submit") &&
	        audit_has("org-001", "bob", "approve"),
	    "the audit chain names the principals");
	/* an automation key may submit automatic commands */
	rc = submit(rule, "org-001", "", FBX_CMD_QUERY, FBX_ORIGIN_AUTOMATIC,
	    NULL, NULL, NULL);
	FBXT_CHECK(rc == FBX_OK, "automatic by rule: rc %d", rc);

	/* a global incident rollback over every organisation is for an
	 * admin of all of them: alice (org-001 only) gets org-001's share,
	 * not FORBIDDEN and not org-002's commands */
	{
		struct fbx_console_req req;
		struct fbx_console_rep rep;
		int n1 = 0;
		for (int k = 0; k < 2; k++) {
			const char *org = k ? "org-002" : "org-001";
			uint64_t lid = 0;
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_SUBMIT;
			req.u.submit.cmd.type = FBX_CMD_LOCK;
			req.u.submit.cmd.origin = FBX_ORIGIN_AUTOMATIC;
			req.u.submit.cmd.target_kind = FBX_TARGET_ORG;
			req.u.submit.cmd.platform = FBX_PLATFORM_ANY;
			snprintf(req.u.submit.cmd.reason,
			    sizeof(req.u.submit.cmd.reason), "scoped_rule");
			rc = call(fbxt_client_for(&t, "rule-engine"), org, "",
			    &req, &rep);
			lid = rep.u.submit.command_id;
			fbx_console_rep_free(&rep);
			FBXT_CHECK(rc == FBX_OK && lid > 0,
			    "automatic lock in %s: rc %d", org, rc);
		}
		memset(&req, 0, sizeof(req));
		req.kind = FBX_CREQ_BREAKER;
		req.u.breaker.op = FBX_BRK_TRIP;
		req.u.breaker.global = 1;
		snprintf(req.u.breaker.reason, sizeof(req.u.breaker.reason),
		    "scoped_rule");
		snprintf(req.u.breaker.note, sizeof(req.u.breaker.note),
		    "auth_test");
		rc = call(t.cli, "org-001", "", &req, &rep);
		fbx_console_rep_free(&rep);
		FBXT_CHECK(rc == FBX_OK, "admin trips */scoped_rule: rc %d", rc);
		for (int k = 0; k < 2; k++) {
			memset(&req, 0, sizeof(req));
			req.kind = FBX_CREQ_ROLLBACK;
			snprintf(req.u.rollback.sel.breaker,
			    sizeof(req.u.rollback.sel.breaker), "scoped_rule");
			req.u.rollback.sel.every_org = 1;
			req.u.rollback.sliced = 1;
			req.u.rollback.limit = 100;
			rc = call(k ? t.cli : alice, "org-001", "", &req, &rep);
			if (k == 0) {
				FBXT_CHECK(rc == FBX_OK &&
				        !rep.u.rollback.global &&
				        rep.u.rollback.commands == 1,
				    "alice's global rollback plan: rc %d, "
				    "global %d, %u commands (want her "
				    "organisation's 1)",
				    rc, rep.u.rollback.global,
				    rep.u.rollback.commands);
				n1 = (int)rep.u.rollback.commands;
			} else {
				FBXT_CHECK(rc == FBX_OK && rep.u.rollback.global,
				    "the admin's plan runs over every "
				    "organisation: rc %d", rc);
			}
			fbx_console_rep_free(&rep);
		}
		(void)n1;
	}
}

/* succeeded - deliveries of command id that succeeded (as the admin). */
static uint32_t
succeeded(const char *org, uint64_t id)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint32_t n = (uint32_t)-1;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_GET_COMMAND;
	req.u.get.command_id = id;
	if (call(t.cli, org, "", &req, &rep) == FBX_OK)
		n = rep.u.command.info.counts[FBX_D_SUCCEEDED];
	fbx_console_rep_free(&rep);
	return n;
}

/* test_gateway_rid: a gateway session is its key's, not its routing
 * id's. A key of the same organisation that connected under the routing
 * id of gw1's session, once gw1's peer was gone, was that session: its
 * heartbeats were answered and kept it alive, its results and check-ins
 * were taken, and the session's deliveries went to it. */
static void
test_gateway_rid(void)
{
	static const uint8_t rid[5] = { 0, 'v', 'i', 'c', 't' };
	struct fbx_eng_msg m;
	struct fbx_gw_msg hb;
	void *v, *a;
	int rc = 0;

	/* a routing id the gateway chose: no session */
	v = gw_open_rid(keys[GW1], "site-1", 6);
	gw_hello(v, "gw-rid", "org-001");
	rc = gw_next(v, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EPROTOCOL &&
	        strstr(m.u.error.msg, "ZMQ_ROUTING_ID") != NULL,
	    "HELLO under a chosen routing id: rc %d err %d", rc,
	    rc == 1 ? m.u.error.err : 0);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	zmq_close(v);
	/* one shaped as ZeroMQ makes them (a client may choose that too):
	 * gw1's session, whose peer then goes away. No credit: nothing is
	 * sent to it (a send to the gone peer would end the session) */
	v = gw_open_rid(keys[GW1], rid, sizeof(rid));
	gw_hello_w(v, "gw-rid", "org-001", 0);
	rc = gw_next(v, FBX_ENG_WELCOME, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1, "gw1 welcomed under its routing id");
	if (rc == 1)
		fbx_eng_msg_free(&m);
	zmq_close(v);
	/* gw2's key under the same routing id: refused, and the session
	 * ends. Until the engine's socket has let go of gw1's peer, a
	 * connection under its id is ignored: connect again, and keep
	 * every connection, until one is answered (the answer to an
	 * earlier one may come late) */
	memset(&hb, 0, sizeof(hb));
	memset(&m, 0, sizeof(m));
	hb.version = FBX_PROTOCOL_VERSION;
	hb.kind = FBX_GW_HEARTBEAT;
	a = NULL;
	{
		void *tries[40];
		int n = 0;
		for (; n < 40 && a == NULL; n++) {
			zmq_pollitem_t it[40];
			tries[n] = gw_open_rid(keys[GW2], rid, sizeof(rid));
			gw_send(tries[n], &hb);
			for (int k = 0; k <= n; k++) {
				it[k].socket = tries[k];
				it[k].fd = 0;
				it[k].events = ZMQ_POLLIN;
				it[k].revents = 0;
			}
			if (zmq_poll(it, n + 1, 250) <= 0)
				continue;
			for (int k = 0; k <= n && a == NULL; k++)
				if (it[k].revents & ZMQ_POLLIN)
					a = tries[k];
		}
		rc = a != NULL
		    ? gw_next(a, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0)
		    : 0;
		for (int k = 0; k < n; k++)
			if (tries[k] != a)
				zmq_close(tries[k]);
	}
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EFORBIDDEN,
	    "gw2 under gw1's session's routing id: rc %d err %d", rc,
	    rc == 1 ? m.u.error.err : 0);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	FBXT_CHECK(fbxt_log_lines(&t, "a message of principal gw2 under the "
	                              "routing id of principal gw1's "
	                              "session") == 1,
	    "the takeover attempt is logged");
	FBXT_CHECK(audit_has_params("_auth", "gw2", "auth.forbidden",
	               "routing id of another key"),
	    "the takeover attempt is audited");
	/* the session ended: nothing of it answers gw2 */
	rc = 0;
	if (a != NULL) {
		gw_send(a, &hb);
		rc = gw_next(a, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
		zmq_close(a);
	}
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EPROTOCOL,
	    "gw2's next heartbeat: rc %d err %d (want no session)", rc,
	    rc == 1 ? m.u.error.err : 0);
	if (rc == 1)
		fbx_eng_msg_free(&m);
}

/* forged_count - the engine's count of forged results (status) */
static uint64_t
forged_count(void)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	uint64_t n = 0;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	if (call(t.cli, "org-001", "", &req, &rep) == FBX_OK)
		n = rep.u.pong.results_forged;
	fbx_console_rep_free(&rep);
	return n;
}

/* test_gateways: scope of HELLO, forged results, revocation */
static void
test_gateways(fbx_client *alice)
{
	struct fbx_eng_msg m;
	uint64_t ids[64], fids[64];
	size_t nids = 0, nf = 0;
	uint64_t cmd1 = 0, cmd2 = 0, forged0;
	void *g1, *g2, *ga, *gp;
	int rc;

	/* a plaintext gateway gets nothing */
	gp = gw_open(NULL);
	gw_hello(gp, "plain", "org-001");
	FBXT_CHECK(gw_next(gp, FBX_ENG_WELCOME, 1500, &m, NULL, NULL, 0) == 0,
	    "plaintext gateway welcomed");
	zmq_close(gp);
	/* an operator key on the gateway endpoint */
	ga = gw_open(keys[ALICE]);
	gw_hello(ga, "alice-gw", "org-001");
	rc = gw_next(ga, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EFORBIDDEN,
	    "operator key as a gateway: %d", rc);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	zmq_close(ga);

	g1 = gw_open(keys[GW1]);
	/* outside its scope: org-002, and every organisation */
	gw_hello(g1, "gw-1", "org-002");
	rc = gw_next(g1, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EFORBIDDEN,
	    "HELLO for org-002: %d", rc);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	gw_hello(g1, "gw-1", "*");
	rc = gw_next(g1, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EFORBIDDEN,
	    "HELLO for *: %d", rc);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	FBXT_CHECK(audit_has("_auth", "gw1", "auth.forbidden"),
	    "the HELLO out of scope is audited");
	gw_hello(g1, "gw-1", "org-001");
	rc = gw_next(g1, FBX_ENG_WELCOME, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1, "HELLO for org-001 welcomed");
	if (rc == 1)
		fbx_eng_msg_free(&m);

	/* deliveries of org-001 go to gw-1; org-002's wait (no gateway) */
	FBXT_CHECK(submit(alice, "org-001", "", FBX_CMD_QUERY,
	               FBX_ORIGIN_OPERATOR, NULL, &cmd1, NULL) == FBX_OK,
	    "query org-001");
	FBXT_CHECK(submit(t.cli, "org-002", "", FBX_CMD_QUERY,
	               FBX_ORIGIN_OPERATOR, NULL, &cmd2, NULL) == FBX_OK,
	    "query org-002");
	{
		int64_t end = now_ms() + 10000;
		while (nids < 5 && now_ms() < end) {
			struct fbx_eng_msg x;
			if (gw_next(g1, FBX_ENG_DELIVERIES, 500, &x, NULL, NULL,
			        0) == 1) {
				for (size_t i = 0; i < x.u.deliveries.n &&
				     nids < 64;
				    i++)
					ids[nids++] =
					    x.u.deliveries.d[i].delivery_id;
				fbx_eng_msg_free(&x);
			}
		}
	}
	FBXT_CHECK(nids >= 5, "gw-1 got %zu deliveries", nids);
	/* another gateway key of org-001 forges their results: refused */
	g2 = gw_open(keys[GW2]);
	gw_hello(g2, "gw-2", "org-001");
	rc = gw_next(g2, FBX_ENG_WELCOME, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1, "gw-2 welcomed");
	if (rc == 1)
		fbx_eng_msg_free(&m);
	/* a HELLO again on its open session, naming gw-1's id: refused as
	 * on a new connection (it was welcomed, and held gw1's id beside
	 * gw-1's session, which then could not reconnect); its session goes
	 * on as gw-2 */
	gw_hello(g2, "gw-1", "org-001");
	rc = gw_next(g2, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EFORBIDDEN,
	    "gw2's second HELLO under gw1's id: %d (want ERROR FORBIDDEN)",
	    rc);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	gw_results(g2, 7, ids, nids);
	rc = gw_next(g2, FBX_ENG_ACK, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.ack.batch_id == 7 && m.u.ack.count == 0,
	    "forged results: rc %d count %u", rc, rc == 1 ? m.u.ack.count : 0);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	/* the same from a session of gw2 that lists only org-003 (org-001
	 * is in its key's scope, not in its HELLO): refused and counted as
	 * forged too (it was refused without a trace) */
	{
		void *g3 = gw_open(keys[GW2]);
		forged0 = forged_count();
		gw_hello(g3, "gw-3", "org-003");
		rc = gw_next(g3, FBX_ENG_WELCOME, 5000, &m, NULL, NULL, 0);
		FBXT_CHECK(rc == 1, "gw-3 welcomed");
		if (rc == 1)
			fbx_eng_msg_free(&m);
		gw_results(g3, 1, ids, nids);
		rc = gw_next(g3, FBX_ENG_ACK, 5000, &m, NULL, NULL, 0);
		FBXT_CHECK(rc == 1 && m.u.ack.count == 0,
		    "gw-3's forged results: rc %d count %u", rc,
		    rc == 1 ? m.u.ack.count : 0);
		if (rc == 1)
			fbx_eng_msg_free(&m);
		FBXT_CHECK(forged_count() == forged0 + nids,
		    "another key's deliveries reported by a session not "
		    "listing their organisation: forged %llu, then %llu "
		    "(want +%zu)",
		    (unsigned long long)forged0,
		    (unsigned long long)forged_count(), nids);
		zmq_close(g3);
	}
	/* and org-002's delivery ids from gw-1: foreign, refused, and
	 * counted as forged (they were refused without a trace) */
	for (uint64_t i = 0; i < 5; i++)
		fids[nf++] = (cmd2 << 24) | i;
	forged0 = forged_count();
	gw_results(g1, 8, fids, nf);
	rc = gw_next(g1, FBX_ENG_ACK, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.ack.count == 0,
	    "results for org-002's deliveries: count %u",
	    rc == 1 ? m.u.ack.count : 0);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	FBXT_CHECK(forged_count() == forged0 + nf,
	    "results for another organisation's deliveries counted as "
	    "forged: %llu, then %llu",
	    (unsigned long long)forged0,
	    (unsigned long long)forged_count());
	FBXT_CHECK(succeeded("org-002", cmd2) == 0,
	    "org-002's command got forged outcomes");
	FBXT_CHECK(nids == 0 || succeeded("org-001", ids[0] >> 24) == 0,
	    "gw-1's deliveries got gw-2's forged outcomes");
	/* gw-1's own results count */
	gw_results(g1, 9, ids, 1);
	rc = gw_next(g1, FBX_ENG_ACK, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.ack.count == 1, "gw-1's own result: %u",
	    rc == 1 ? m.u.ack.count : 0);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	FBXT_CHECK(nids == 0 || succeeded("org-001", ids[0] >> 24) == 1,
	    "gw-1's own outcome recorded");
	(void)cmd1;

	/* revoking gw-1 ends its session: its next message is refused,
	 * and its deliveries go back to the queue (gw-2 gets them) */
	FBXT_CHECK(principal(FBX_PRI_REVOKE, "gw1", 0, 0, NULL, NULL) ==
	        FBX_OK,
	    "revoke gw1");
	/* its record says what the revoke ended: gw-1's one session, with
	 * the deliveries it still held (at least those it did not answer
	 * of the ones it was seen to get) */
	FBXT_CHECK(audit_has_params("_auth", "admin", "principal.revoke",
	               "\"sessions_ended\":1,\"requeued\":") &&
	        !audit_has_params("_auth", "admin", "principal.revoke",
	            "\"requeued\":0}"),
	    "principal.revoke of gw1: no session ended with deliveries");
	gw_results(g1, 10, ids + 1, 1);
	rc = gw_next(g1, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
	FBXT_CHECK(rc == 1 && m.u.error.err == FBX_EFORBIDDEN,
	    "revoked gateway's message: %d", rc);
	if (rc == 1)
		fbx_eng_msg_free(&m);
	{
		/* a revoked gateway that keeps sending: every message is
		 * refused and counted, the warn line is not repeated for
		 * each (once per key and 10 s) */
		const char *line = "message from principal gw1 refused";
		int l0 = fbxt_log_lines(&t, line), nerr = 0;
		for (int i = 0; i < 5; i++) {
			gw_results(g1, 11 + (uint64_t)i, ids + 1, 1);
			rc = gw_next(g1, FBX_ENG_ERROR, 5000, &m, NULL, NULL, 0);
			if (rc == 1) {
				nerr += m.u.error.err == FBX_EFORBIDDEN;
				fbx_eng_msg_free(&m);
			}
		}
		FBXT_CHECK(nerr == 5, "refusals of 5 more messages: %d", nerr);
		FBXT_CHECK(l0 >= 1 && fbxt_log_lines(&t, line) - l0 < 5,
		    "refused gateway messages logged once each: %d lines, then "
		    "%d",
		    l0, fbxt_log_lines(&t, line));
	}
	{
		uint64_t got[64];
		size_t ng = 0;
		int64_t end = now_ms() + 15000;
		struct fbx_gw_msg hb;
		memset(&hb, 0, sizeof(hb));
		hb.version = FBX_PROTOCOL_VERSION;
		hb.kind = FBX_GW_HEARTBEAT;
		while (ng < nids - 1 && now_ms() < end) {
			struct fbx_eng_msg x;
			gw_send(g2, &hb);
			if (gw_next(g2, FBX_ENG_DELIVERIES, 300, &x, NULL,
			        NULL, 0) == 1) {
				ng += x.u.deliveries.n;
				fbx_eng_msg_free(&x);
			}
		}
		(void)got;
		FBXT_CHECK(ng >= nids - 1,
		    "gw-1's deliveries re-queued to gw-2: %zu of %zu", ng,
		    nids - 1);
	}
	zmq_close(g1);
	/* a new connection with the revoked key: no handshake */
	g1 = gw_open(keys[GW1]);
	gw_hello(g1, "gw-1", "org-001");
	FBXT_CHECK(gw_next(g1, FBX_ENG_WELCOME, 1500, &m, NULL, NULL, 0) == 0,
	    "revoked gateway welcomed again");
	zmq_close(g1);
	zmq_close(g2);
}

static void
test_revoke_rotate(fbx_client *alice, fbx_client *carol)
{
	fbx_client *c;
	int rc, mine = 0, foreign = 0, bob_got = 0, alice_got = 0;
	char tok[FBX_ID_MAX + 1];
	/* alice's and bob's events subscriptions, open across the revoke */
	void *sa = sub_open(keys[ALICE], "fusebox."),
	     *sb = sub_open(keys[BOB], "fusebox.");

	usleep(500 * 1000); /* the subscriptions reach the engine */
	rc = submit(t.cli, "org-001", "", FBX_CMD_LOCK, FBX_ORIGIN_OPERATOR,
	    NULL, NULL, tok);
	sub_orgs(sa, "org-001", &mine, &foreign);
	FBXT_CHECK(rc == FBX_ELIMIT_EXCEEDED && mine >= 1,
	    "alice's subscription before the revoke: rc %d, %d events", rc,
	    mine);
	sub_orgs(sb, "org-001", &mine, &foreign);

	/* revoke alice: her open connection is refused at once, a new one
	 * does not pass the handshake */
	FBXT_CHECK(principal(FBX_PRI_REVOKE, "alice", 0, 0, NULL, NULL) ==
	        FBX_OK,
	    "revoke alice");
	/* and her events subscription ends: bob's comes back by itself
	 * (libzmq reconnects and subscribes again), alice's handshake is
	 * refused. Raise org-001 events until bob sees one (bounded). */
	for (int i = 0; i < 40 && bob_got == 0; i++) {
		(void)submit(t.cli, "org-001", "", FBX_CMD_LOCK,
		    FBX_ORIGIN_OPERATOR, NULL, NULL, tok);
		sub_orgs(sb, "org-001", &bob_got, &foreign);
		sub_orgs(sa, "org-001", &mine, &foreign);
		alice_got += mine;
	}
	sub_orgs(sa, "org-001", &mine, &foreign);
	alice_got += mine;
	FBXT_CHECK(bob_got >= 1, "bob's subscription after alice's revoke: "
	    "%d events", bob_got);
	FBXT_CHECK(alice_got == 0, "alice's subscription after her revoke: "
	    "%d events", alice_got);
	zmq_close(sa);
	zmq_close(sb);
	rc = simple(alice, "org-001", "", FBX_CREQ_LIST_COMMANDS);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "revoked alice's session: rc %d", rc);
	c = open_as(keys[ALICE], admin_pub, 3000);
	rc = c != NULL ? simple(c, "org-001", "", FBX_CREQ_LIST_COMMANDS) : -1;
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "revoked alice reconnects: rc %d",
	    rc);
	fbx_client_close(c);
	FBXT_CHECK(principal(FBX_PRI_REVOKE, "alice", 0, 0, NULL, NULL) ==
	        FBX_ESTATE,
	    "revoked twice");
	/* a name is never reused */
	FBXT_CHECK(principal(FBX_PRI_ADD, "alice", FBX_PK_OPERATOR,
	               FBX_ROLES_ALL, "*", kk[MALLORY].public_z85) ==
	        FBX_ESTATE,
	    "alice added again");

	/* rotate carol: the old key stops, the new one works */
	FBXT_CHECK(principal(FBX_PRI_ROTATE, "carol", 0, 0, NULL,
	               kk[CAROL2].public_z85) == FBX_OK,
	    "rotate carol");
	rc = simple(carol, "org-001", "", FBX_CREQ_LIST_COMMANDS);
	FBXT_CHECK(rc == FBX_EFORBIDDEN, "carol's old key: rc %d", rc);
	c = open_as(keys[CAROL2], admin_pub, 5000);
	rc = c != NULL ? simple(c, "org-001", "", FBX_CREQ_LIST_COMMANDS) : -1;
	FBXT_CHECK(rc == FBX_OK, "carol's new key: rc %d", rc);
	fbx_client_close(c);
	/* a key used once is burnt */
	FBXT_CHECK(principal(FBX_PRI_ADD, "dave", FBX_PK_OPERATOR,
	               FBX_ROLE_VIEWER, "org-001", kk[CAROL].public_z85) ==
	        FBX_EINVALID,
	    "an old key for a new principal");
	FBXT_CHECK(audit_has("_auth", "admin", "principal.revoke") &&
	        audit_has("_auth", "admin", "principal.rotate"),
	    "principal changes audited");
}

int
main(void)
{
	static const char *const names[] = { "alice", "bob", "carol", "rule",
		"gw1", "gw2", "mallory", "carol" };
	fbx_client *alice = NULL, *bob = NULL, *carol = NULL, *rule = NULL;
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	int rc;

	char events_ep[400] = "";

	zctx = zmq_ctx_new();
	/* a long heartbeat: the raw gateways here speak only when they
	 * have something to say */
	if (fbxt_setup(&t, "auth") != 0 ||
	    snprintf(events_ep, sizeof(events_ep), "ipc://%s/events.sock",
	        t.dir) <= 0 ||
	    fbxt_daemon_start(&t, "--heartbeat-ms", "10000", "--events",
	        events_ep, NULL) != 0) {
		FBXT_CHECK(0, "daemon did not start");
		goto out;
	}
	rc = fbxt_sim_run(&t, "--enroll-only", "--devices", "200", "--orgs",
	    "2", "--seed", "5", "--quiet", NULL);
	FBXT_CHECK(rc == 0, "enroll exit %d", rc);
	snprintf(admin_pub, sizeof(admin_pub), "%s/server.pub", t.keys);
	for (int i = 0; i < 8; i++) {
		char nm[40];
		snprintf(nm, sizeof(nm), "%s%s", names[i], i == CAROL2 ? "2"
		                                                       : "");
		/* carol2.key: carol's next key, under her name */
		mkkey(names[i], nm, keys[i], sizeof(keys[i]), &kk[i]);
	}
	FBXT_CHECK(principal(FBX_PRI_ADD, "alice", FBX_PK_OPERATOR,
	               FBX_ROLE_VIEWER | FBX_ROLE_OPERATOR, "org-001",
	               kk[ALICE].public_z85) == FBX_OK,
	    "add alice");
	FBXT_CHECK(principal(FBX_PRI_ADD, "bob", FBX_PK_OPERATOR,
	               FBX_ROLE_VIEWER | FBX_ROLE_APPROVER, "org-001,org-003",
	               kk[BOB].public_z85) == FBX_OK,
	    "add bob");
	FBXT_CHECK(principal(FBX_PRI_ADD, "carol", FBX_PK_OPERATOR,
	               FBX_ROLE_VIEWER, "org-001", kk[CAROL].public_z85) ==
	        FBX_OK,
	    "add carol");
	FBXT_CHECK(principal(FBX_PRI_ADD, "rule", FBX_PK_AUTOMATION,
	               FBX_ROLE_OPERATOR, "org-001",
	               kk[RULE].public_z85) == FBX_OK,
	    "add rule");
	FBXT_CHECK(principal(FBX_PRI_ADD, "gw1", FBX_PK_GATEWAY, 0, "org-001",
	               kk[GW1].public_z85) == FBX_OK,
	    "add gw1");
	FBXT_CHECK(principal(FBX_PRI_ADD, "gw2", FBX_PK_GATEWAY, 0,
	               "org-001,org-003", kk[GW2].public_z85) == FBX_OK,
	    "add gw2");
	FBXT_CHECK(principal(FBX_PRI_ADD, "gw3", FBX_PK_GATEWAY,
	               FBX_ROLE_VIEWER, "org-001", kk[MALLORY].public_z85) ==
	        FBX_EINVALID,
	    "a gateway with roles");
	/* the same public key twice */
	FBXT_CHECK(principal(FBX_PRI_ADD, "alice2", FBX_PK_OPERATOR,
	               FBX_ROLE_VIEWER, "org-001", kk[ALICE].public_z85) ==
	        FBX_EINVALID,
	    "alice's key for another principal");
	/* principals are listed with their public keys only */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PRINCIPAL;
	req.u.principal.op = FBX_PRI_LIST;
	rc = call(t.cli, "_auth", "", &req, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.principal.count >= 7 &&
	        strstr(rep.u.principal.jsonl, kk[ALICE].public_z85) != NULL &&
	        strstr(rep.u.principal.jsonl, kk[ALICE].secret_z85) == NULL,
	    "principal list: rc %d", rc);
	fbx_console_rep_free(&rep);

	alice = open_as(keys[ALICE], admin_pub, 20000);
	bob = open_as(keys[BOB], admin_pub, 20000);
	carol = open_as(keys[CAROL], admin_pub, 20000);
	rule = open_as(keys[RULE], admin_pub, 20000);
	FBXT_CHECK(alice && bob && carol && rule, "open clients");
	if (!(alice && bob && carol && rule))
		goto out;
	test_keys();
	{
		void *sa = sub_open(keys[ALICE], "fusebox."),
		     *sg = sub_open(keys[GW1], ""),
		     *sx = sub_open("FUSEBOX_KEY", "fusebox.limit_rejected");
		int mine = 0, foreign = 0;
		char tok[FBX_ID_MAX + 1];
		usleep(500 * 1000); /* the subscriptions reach the engine */
		test_scope(alice, bob, carol, rule);
		/* an over-limit lock in org-002 raises an event there */
		rc = submit(t.cli, "org-002", "", FBX_CMD_LOCK,
		    FBX_ORIGIN_OPERATOR, NULL, NULL, tok);
		FBXT_CHECK(rc == FBX_ELIMIT_EXCEEDED, "org-002 over limit: %d",
		    rc);
		sub_orgs(sa, "org-001", &mine, &foreign);
		FBXT_CHECK(mine >= 1 && foreign == 0,
		    "alice's subscription: %d of org-001, %d of others", mine,
		    foreign);
		sub_orgs(sx, "org-002", &mine, &foreign);
		FBXT_CHECK(mine >= 1 && foreign >= 1,
		    "the admin's subscription: %d of org-002, %d of others",
		    mine, foreign);
		sub_orgs(sg, "org-001", &mine, &foreign);
		FBXT_CHECK(mine == 0 && foreign == 0,
		    "a gateway key's subscription got %d events",
		    mine + foreign);
		zmq_close(sa);
		zmq_close(sg);
		zmq_close(sx);
	}
	test_gateway_rid();
	test_gateways(alice);
	test_revoke_rotate(alice, carol);
	test_files();

	/* every refusal was counted */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_PING;
	rc = call(t.cli, "org-001", "", &req, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.pong.auth_refused >= 10 &&
	        rep.u.pong.results_forged >= 5 &&
	        rep.u.pong.handshakes_refused >= 2,
	    "status counts: rc %d refused %llu forged %llu handshakes %llu",
	    rc, (unsigned long long)rep.u.pong.auth_refused,
	    (unsigned long long)rep.u.pong.results_forged,
	    (unsigned long long)rep.u.pong.handshakes_refused);
	fbx_console_rep_free(&rep);

	/* the daemon kept serving everyone else, and the chain is intact */
	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_AUDIT_VERIFY;
	rc = call(t.cli, "org-001", "", &req, &rep);
	FBXT_CHECK(rc == FBX_OK && rep.u.verify.broken_at == 0,
	    "audit chain intact: rc %d", rc);
	fbx_console_rep_free(&rep);
	rc = simple(bob, "org-001", "", FBX_CREQ_LIST_COMMANDS);
	FBXT_CHECK(rc == FBX_OK, "bob still served: rc %d", rc);
out:
	fbx_client_close(alice);
	fbx_client_close(bob);
	fbx_client_close(carol);
	fbx_client_close(rule);
	fbxt_teardown(&t);
	zmq_ctx_term(zctx);
	return fbxt_done();
}
