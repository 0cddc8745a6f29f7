/*
 * access.c: fuseboxctl principal and web: who may call the engine (issue
 * 10) and web console logins (issue 12).
 */
#include "ctl.h"

/* ---- principals (issue 10) ---- */

static const char *const principal_usage =
    "usage: fuseboxctl principal add NAME --kind KIND --orgs ORGS\n"
    "                            [--roles ROLES] (--key-out FILE |\n"
    "                            --public-key Z85) [--note TEXT]\n"
    "       fuseboxctl principal list\n"
    "       fuseboxctl principal revoke NAME [--note TEXT]\n"
    "       fuseboxctl principal rotate NAME (--key-out FILE |\n"
    "                            --public-key Z85) [--note TEXT]\n"
    "       fuseboxctl principal keygen NAME --key-out FILE\n"
    "\n"
    "Who may use the engine: each principal is a CURVE key pair with a\n"
    "name, a kind, roles and the organisations it may act for. The\n"
    "engine takes every request's actor from the key, never from the\n"
    "request. Needs the admin role for every organisation; every change\n"
    "is audited (organisation _auth). Names are never reused.\n"
    "\n"
    "  add      a new principal\n"
    "    --kind KIND       operator, automation (the only kind that may\n"
    "                      submit automatic commands) or gateway\n"
    "    --roles ROLES     viewer,operator,approver,breaker,admin or all\n"
    "                      (a gateway has none)\n"
    "    --orgs ORGS       * or up to 48 organisations, comma separated\n"
    "    --key-out FILE    make the key pair here (mode 0600) and send\n"
    "                      only its public half; hand FILE to its owner\n"
    "    --public-key Z85  or register a public key made elsewhere\n"
    "  list     every principal, its key and state\n"
    "  revoke   refuse its key from now on: new handshakes at once, open\n"
    "           connections at their next message; a gateway's session\n"
    "           ends and its deliveries are re-queued\n"
    "  rotate   replace its key; the old key stops working as revoke\n"
    "  keygen   make a key pair for NAME in FILE (mode 0600) on this\n"
    "           machine, without the engine, and print its public key:\n"
    "           the owner keeps FILE, an admin registers the public key\n"
    "           (add or rotate with --public-key)\n";

struct principal_args {
	int kind;
	uint32_t roles;
	int roles_set;
	char orgs[FBX_PRINCIPAL_ORGS_LEN];
	char public_key[41];
	const char *key_out;
	char note[FBX_NOTE_MAX];
};

static int
principal_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	static const char *const roles[] = { "viewer", "operator",
		"approver", "breaker", "admin" };
	struct principal_args *a = arg;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_KIND:
		a->kind = strcmp(oa, "operator") == 0 ? FBX_PK_OPERATOR :
		    strcmp(oa, "automation") == 0     ? FBX_PK_AUTOMATION :
		    strcmp(oa, "gateway") == 0        ? FBX_PK_GATEWAY :
							-1;
		if (a->kind < 0)
			return ctl_usage_err("bad --kind '%s' (operator, "
					 "automation, gateway)",
			    oa);
		return EX_OK;
	case OPT_ROLES: {
		char buf[128], *tok, *save = NULL;
		a->roles_set = 1;
		a->roles = 0;
		if (strcmp(oa, "all") == 0) {
			a->roles = FBX_ROLES_ALL;
			return EX_OK;
		}
		if (strlen(oa) >= sizeof(buf))
			return ctl_usage_err("bad --roles '%s'", oa);
		strcpy(buf, oa);
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			size_t i;
			for (i = 0; i < 5 && strcmp(tok, roles[i]) != 0; i++)
				;
			if (i == 5)
				return ctl_usage_err("bad role '%s' (viewer, "
						 "operator, approver, breaker, "
						 "admin, all)",
				    tok);
			a->roles |= 1u << i;
		}
		return EX_OK;
	}
	case OPT_ORGS:
		if (strlen(oa) >= sizeof(a->orgs))
			return ctl_usage_err("--orgs too long (at most %d)",
			    FBX_PRINCIPAL_ORGS_MAX);
		strcpy(a->orgs, oa);
		return EX_OK;
	case OPT_PUBLIC_KEY:
		if (!fbx_key_z85_valid(oa))
			return ctl_usage_err("bad --public-key (40 characters of "
					 "Z85)");
		strcpy(a->public_key, oa);
		return EX_OK;
	case OPT_KEY_OUT:
		a->key_out = oa;
		return EX_OK;
	case OPT_NOTE:
		if (ctl_copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return ctl_usage_err("unknown option (see principal --help)");
	}
}

/* jstr - a JSON string's text, "-" for anything else */
static const char *
jstr(const json_t *v)
{
	const char *s = json_string_value(v);

	return s != NULL ? s : "-";
}

/* print_principals - the engine's principal records (one JSON object
 * a line) as a table; a line that does not parse is printed as it is */
static void
print_principals(const char *jsonl)
{
	struct table t = { .ncol = 8 };
	const char *p = jsonl;

	if (*p == '\0')
		return;
	ctl_table_row(&t, "NAME", "KIND", "ROLES", "ORGS", "STATE", "UPDATED",
	    "BY", "PUBLIC_KEY");
	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		json_t *o = json_loadb(p, len, 0, NULL), *r, *g;
		char roles[128] = "", orgs[FBX_PRINCIPAL_ORGS_LEN + 1] = "";
		char upd[40] = "-";
		size_t k = 0;

		if (o == NULL || !json_is_object(o)) {
			printf("%.*s\n", (int)len, p);
		} else {
			r = json_object_get(o, "roles");
			for (size_t i = 0; i < json_array_size(r) &&
			     k < sizeof(roles); i++)
				k += (size_t)snprintf(roles + k,
				    sizeof(roles) - k, "%s%s", i ? "," : "",
				    jstr(json_array_get(r, i)));
			g = json_object_get(o, "orgs");
			k = 0;
			if (json_is_string(g))
				snprintf(orgs, sizeof(orgs), "%s",
				    json_string_value(g));
			for (size_t i = 0; json_is_array(g) &&
			     i < json_array_size(g) && k < sizeof(orgs); i++)
				k += (size_t)snprintf(orgs + k,
				    sizeof(orgs) - k, "%s%s", i ? "," : "",
				    jstr(json_array_get(g, i)));
			if (json_integer_value(json_object_get(o,
			        "updated_ms")) > 0)
				ctl_fmt_time(json_integer_value(json_object_get(
				                 o, "updated_ms")),
				    upd, sizeof(upd));
#define S(f) jstr(json_object_get(o, f))
			ctl_table_row(&t, S("name"), S("kind"),
			    roles[0] ? roles : "-", orgs[0] ? orgs : "-",
			    S("state"), upd, S("changed_by"), S("public_key"));
#undef S
		}
		json_decref(o);
		p += len;
		if (*p == '\n')
			p++;
	}
	ctl_table_print(&t);
	ctl_table_free(&t);
}

/* principal_keygen - `principal keygen NAME --key-out FILE`: a key pair
 * made here for its owner, nothing sent; the public key printed for the
 * admin who registers it (add or rotate with --public-key). st is the
 * index of "keygen" in argv. */
static int
principal_keygen(const struct ctl *ctl, const struct principal_args *a,
    int argc, char **argv, int st)
{
	char name[FBX_ID_MAX + 1];
	struct fbx_key k;
	int rc;

	if (st + 1 >= argc)
		return ctl_usage_err("principal keygen needs a NAME");
	if (st + 2 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 2]);
	if (a->key_out == NULL)
		return ctl_usage_err("principal keygen needs --key-out FILE");
	if (a->kind || a->roles_set || a->orgs[0] || a->public_key[0] ||
	    a->note[0])
		return ctl_usage_err("principal keygen takes only NAME and "
				 "--key-out (the kind, roles and "
				 "organisations are given when the key is "
				 "registered)");
	if (ctl_copy_id(name, argv[st + 1]) != 0)
		return ctl_usage_err("bad name '%s' (1..%d of [A-Za-z0-9._:@-])",
		    argv[st + 1], FBX_ID_MAX);
	rc = fbx_key_generate(name, &k);
	if (rc != FBX_OK)
		return ctl_fail(rc, "cannot make a key pair: %s",
		    fbx_strerror(rc));
	rc = fbx_key_write(a->key_out, &k, 1);
	if (rc != FBX_OK) {
		int err = errno;
		memset(&k, 0, sizeof(k));
		if (rc != FBX_EINVALID)
			return ctl_fail_create(a->key_out, err);
		/* not overwritten: 73 like any file that cannot be made */
		(void)ctl_fail(FBX_EIO, "cannot create %s: it exists",
		    a->key_out);
		return EX_CANTCREAT;
	}
	/* Z85 has no ' : the key is quoted for a shell as it stands (it
	 * has ! * ? & and the like) */
	if (ctl->json) {
		ctl_json_print(json_pack("{s:s,s:s,s:s}", "name", name,
		    "key_file", a->key_out, "public_key", k.public_z85));
	} else {
		printf("key pair of %s in %s (mode 0600: keep it on this "
		       "machine)\n"
		       "public key: %s\n"
		       "an admin registers it with\n"
		       "  fuseboxctl principal add %s --kind KIND --orgs ORGS "
		       "[--roles ROLES] --public-key '%s'\n"
		       "or, for a principal that has a key, with\n"
		       "  fuseboxctl principal rotate %s --public-key '%s'\n",
		    name, a->key_out, k.public_z85, name, k.public_z85, name,
		    k.public_z85);
	}
	memset(&k, 0, sizeof(k));
	return EX_OK;
}

int
cmd_principal(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "kind", required_argument, NULL, OPT_KIND },
		{ "roles", required_argument, NULL, OPT_ROLES },
		{ "orgs", required_argument, NULL, OPT_ORGS },
		{ "public-key", required_argument, NULL, OPT_PUBLIC_KEY },
		{ "key-out", required_argument, NULL, OPT_KEY_OUT },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct principal_args a;
	struct fbx_key k;
	const char *sub, *name = NULL;
	int st, op;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(
	    ctl, argc, argv, lo, principal_usage, principal_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("principal needs add, list, revoke, rotate "
				 "or keygen (see principal --help)");
	sub = argv[st];
	if (strcmp(sub, "keygen") == 0)
		return principal_keygen(ctl, &a, argc, argv, st);
	if (strcmp(sub, "list") == 0)
		op = FBX_PRI_LIST;
	else if (strcmp(sub, "add") == 0)
		op = FBX_PRI_ADD;
	else if (strcmp(sub, "revoke") == 0)
		op = FBX_PRI_REVOKE;
	else if (strcmp(sub, "rotate") == 0)
		op = FBX_PRI_ROTATE;
	else
		return ctl_usage_err("unknown principal operation '%s' (add, "
				 "list, revoke, rotate, keygen)",
		    sub);
	if (op != FBX_PRI_LIST) {
		if (st + 1 >= argc)
			return ctl_usage_err("principal %s needs a NAME", sub);
		name = argv[st + 1];
		st++;
	}
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (op != FBX_PRI_ADD && (a.kind || a.roles_set || a.orgs[0]))
		return ctl_usage_err("--kind, --roles and --orgs go with "
				 "principal add");
	if (op == FBX_PRI_ADD || op == FBX_PRI_ROTATE) {
		if ((a.key_out != NULL) == (a.public_key[0] != '\0'))
			return ctl_usage_err("principal %s needs --key-out FILE or "
					 "--public-key Z85 (one of them)",
			    sub);
	} else if (a.key_out != NULL || a.public_key[0] != '\0') {
		return ctl_usage_err("--key-out and --public-key go with add and "
				 "rotate");
	}
	if (op == FBX_PRI_ADD && (a.kind == 0 || a.orgs[0] == '\0'))
		return ctl_usage_err("principal add needs --kind and --orgs");
	if (name != NULL && ctl_copy_id(req.u.principal.name, name) != 0)
		return ctl_usage_err("bad name '%s' (1..%d of [A-Za-z0-9._:@-])",
		    name, FBX_ID_MAX);
	if (a.key_out != NULL) {
		/* the secret never leaves this machine: only the public
		 * half is sent */
		st = fbx_key_generate(name, &k);
		if (st != FBX_OK)
			return ctl_fail(st, "cannot make a key pair: %s",
			    fbx_strerror(st));
		st = fbx_key_write(a.key_out, &k, 1);
		if (st == FBX_EINVALID) {
			(void)ctl_fail(FBX_EIO, "cannot create %s: it exists",
			    a.key_out);
			return EX_CANTCREAT;
		}
		if (st != FBX_OK)
			return ctl_fail_create(a.key_out, errno);
		strcpy(a.public_key, k.public_z85);
		memset(&k, 0, sizeof(k));
	}
	req.kind = FBX_CREQ_PRINCIPAL;
	req.u.principal.op = op;
	req.u.principal.kind = a.kind;
	req.u.principal.roles = a.roles;
	strcpy(req.u.principal.orgs, a.orgs);
	strcpy(req.u.principal.public_key, a.public_key);
	strcpy(req.u.principal.note, a.note);
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK) {
		if (a.key_out != NULL)
			(void)unlink(a.key_out); /* never registered */
		return st;
	}
	if (ctl->json) {
		fputs(rep.u.principal.len > 0 ? rep.u.principal.jsonl : "",
		    stdout);
	} else {
		if (op != FBX_PRI_LIST)
			printf("principal %s %s%s%s\n", name,
			    op == FBX_PRI_ADD ? "added" :
			    op == FBX_PRI_REVOKE ? "revoked" : "key rotated",
			    a.key_out != NULL ? "; key in " : "",
			    a.key_out != NULL ? a.key_out : "");
		print_principals(
		    rep.u.principal.len > 0 ? rep.u.principal.jsonl : "");
		if (op == FBX_PRI_LIST)
			printf("\n%u principals\n", rep.u.principal.count);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}

/* ---- the web console (issue 12) ---- */

static const char *const web_usage =
    "usage: fuseboxctl web login [--ttl SECONDS] [--note TEXT]\n"
    "\n"
    "A session for the web console that fuseboxd --http serves: the\n"
    "engine mints a random token bound to your key's principal (same\n"
    "roles and organisations, audited as web.login in organisation\n"
    "_auth) and this prints the page's address with the token after\n"
    "'#' (a fragment: browsers never send it, so it is in no log).\n"
    "Paste it into a browser's address bar on this machine (not on a\n"
    "program's command line: other local users can read those). The\n"
    "page exchanges the token once for one only its tab holds: each\n"
    "address opens one page (log in again for another). The session\n"
    "works until it\n"
    "expires, the principal is revoked or its key rotated, or fuseboxd\n"
    "restarts (tokens live in its memory only). Until a page opened it,\n"
    "anyone holding the address is you: do not paste it elsewhere.\n"
    "Needs the viewer role,\n"
    "and -o ORG in your scope when your key is not for every\n"
    "organisation.\n"
    "\n"
    "  --ttl SECONDS   lifetime, 1..86400 (default 43200: 12 hours)\n"
    "  --note TEXT     recorded in the audit log\n";

struct web_args {
	uint32_t ttl_s;
	char note[FBX_NOTE_MAX];
};

static int
web_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct web_args *a = arg;
	uint64_t v;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_TTL:
		if (ctl_parse_u64(oa, 86400, &v) != 0 || v == 0)
			return ctl_usage_err("bad --ttl '%s' (seconds, 1..86400)",
			    oa);
		a->ttl_s = (uint32_t)v;
		return EX_OK;
	case OPT_NOTE:
		if (ctl_copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return ctl_usage_err("unknown option (see web --help)");
	}
}

/* web_field - a string or number member of the engine's one-line JSON
 * answer, copied into buf ("" when absent) */
static void
web_field(const char *line, const char *name, char *buf, size_t cap)
{
	/* read by jansson (issue 12 item 6): the hand-made scanner took
	 * "a\"b" for "a\\" and a member named inside a string for one */
	json_t *o = json_loads(line, 0, NULL);
	json_t *v = json_object_get(o, name);

	buf[0] = '\0';
	if (json_is_string(v))
		snprintf(buf, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	json_decref(o);
}

int
cmd_web(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct web_args a;
	char token[80], url[200], exp[32], who[FBX_ID_MAX + 1];
	int st;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, web_usage, web_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc || strcmp(argv[st], "login") != 0)
		return ctl_usage_err("web needs login (see web --help)");
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	req.kind = FBX_CREQ_PRINCIPAL;
	req.u.principal.op = FBX_PRI_WEB_LOGIN;
	req.u.principal.ttl_s = a.ttl_s;
	strcpy(req.u.principal.note, a.note);
	st = ctl_call(ctl, &req, &rep);
	if (st != EX_OK)
		return st;
	if (ctl->json) {
		fputs(rep.u.principal.len > 0 ? rep.u.principal.jsonl : "",
		    stdout);
		fputc('\n', stdout);
		fbx_console_rep_free(&rep);
		return EX_OK;
	}
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "token", token, sizeof(token));
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "url", url, sizeof(url));
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "expires_ms", exp, sizeof(exp));
	web_field(rep.u.principal.jsonl != NULL ? rep.u.principal.jsonl : "",
	    "principal", who, sizeof(who));
	{
		time_t t = (time_t)(strtoll(exp, NULL, 10) / 1000);
		struct tm tm;
		char when[40] = "?";
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
		fprintf(stderr,
		    "web console session for principal %s, until %s\n", who,
		    when);
	}
	/* the engine refuses a login without a web console: no url here
	 * means an engine that did not */
	if (url[0] != '\0')
		printf("%s#token=%s\n", url, token);
	else
		fprintf(stderr, "fuseboxctl: this fuseboxd serves no web "
		                "console: start it with --http HOST:PORT\n");
	memset(token, 0, sizeof(token));
	fbx_console_rep_free(&rep);
	return url[0] != '\0' ? EX_OK : EX_SOFTWARE;
}
