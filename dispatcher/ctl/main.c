/*
 * main.c: the common options, the command table and main: which command
 * runs, with the options given before and after its name.
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* common options, accepted before and after the command */

#define COMMON_SHORTOPTS "e:o:a:hV"

/* long_exact - whether the long option getopt_long just returned (index
 * li) was typed in full. getopt_long takes any unique prefix, so
 * "--typ lock" would mean "--type lock" and "--exec" "--execute"; a tool
 * meant to prevent accidents refuses both. Short options pass. On a
 * refusal, typed holds what was typed (without "=value"). */
static int
long_exact(int argc, char **argv, const struct option *lo, int li,
    char *typed, size_t tl)
{
	const char *tok;
	size_t n;

	if (li < 0 || optind < 1 || optind > argc)
		return 1;
	tok = argv[optind - 1];
	/* "--opt VALUE": optarg is the next word itself */
	if (optarg != NULL && optarg == tok && optind >= 2)
		tok = argv[optind - 2];
	if (strncmp(tok, "--", 2) != 0)
		return 1;
	n = strcspn(tok, "=");
	snprintf(typed, tl, "%.*s", (int)n, tok);
	return strlen(lo[li].name) == n - 2 &&
	    strncmp(tok + 2, lo[li].name, n - 2) == 0;
}

/* bad_opt - the usage error for what getopt_long refused ('?' or ':'):
 * an option it does not know, or one that needs a value and has none
 * (optopt: 0 for an unknown long option, the short letter, or the long
 * option's value). where: the command, for its --help. */
static int
bad_opt(char **argv, const struct option *lo, const char *where)
{
	const char *tok = argv[optind - 1];
	size_t n = strcspn(tok, "=");

	if (strncmp(tok, "--", 2) == 0) {
		/* by its long name: unknown, given a value it takes none
		 * (--json=1), or missing the value it needs */
		const struct option *o = lo;
		while (o->name != NULL &&
		    !(strlen(o->name) == n - 2 &&
		        strncmp(o->name, tok + 2, n - 2) == 0))
			o++;
		if (o->name == NULL)
			return ctl_usage_err("unknown option '%.*s' (see %s "
					 "--help)",
			    (int)n, tok, where);
		if (o->has_arg == no_argument)
			return ctl_usage_err("option '%.*s' takes no value "
					 "(see %s --help)",
			    (int)n, tok, where);
		return ctl_usage_err("option '%.*s' needs a value (see %s "
				 "--help)",
		    (int)n, tok, where);
	}
	if (optopt == 0)
		return ctl_usage_err("unknown option '%.*s' (see %s --help)",
		    (int)n, tok, where);
	if (optopt > 0 && optopt < 128) {
		if (strchr(COMMON_SHORTOPTS, optopt) != NULL)
			return ctl_usage_err("option '-%c' needs a value (see "
					 "%s --help)",
			    optopt, where);
		return ctl_usage_err("unknown option '-%c' (see %s --help)",
		    optopt, where);
	}
	return ctl_usage_err("option '%.*s' needs a value (see %s --help)",
	    (int)n, tok, where);
}

/* common_opt - handle an option shared by all commands.
 * @return 1 handled, 0 not a common option, or -(exit status + 1). */
static int
common_opt(struct ctl *ctl, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case 'e':
		ctl->endpoint = arg;
		return 1;
	case 'o':
		if (ctl_copy_id(ctl->org, arg) != 0)
			return -(ctl_usage_err("bad organisation '%s'", arg) + 1);
		return 1;
	case 'a':
		if (ctl_copy_id(ctl->actor, arg) != 0)
			return -(ctl_usage_err("bad actor '%s'", arg) + 1);
		return 1;
	case OPT_KEY:
		ctl->key_file = arg;
		return 1;
	case OPT_SERVER_KEY:
		ctl->server_key_file = arg;
		return 1;
	case OPT_JSON:
		ctl->json = 1;
		return 1;
	case OPT_TIMEOUT:
		if (ctl_parse_u64(arg, 3600 * 1000, &v) != 0 || v == 0)
			return -(ctl_usage_err("bad --timeout '%s' (milliseconds)",
			             arg) +
			    1);
		ctl->timeout_ms = (int)v;
		return 1;
	case OPT_RETRIES:
		if (ctl_parse_u64(arg, 100, &v) != 0)
			return -(ctl_usage_err("bad --retries '%s'", arg) + 1);
		ctl->retries = (int)v;
		return 1;
	default:
		return 0;
	}
}

static void
print_version(void)
{
	printf("fuseboxctl %s (protocol %d)\n", FBX_VERSION,
	    FBX_PROTOCOL_VERSION);
}

#define CTL_EXIT_STATUS                                                      \
	"Exit status: 0 ok, 64 usage, 65 rejected input (also a blast-radius\n" \
	"limit, a missing approval, an open breaker or a wrong state), 69\n"    \
	"engine unreachable (UNREACHABLE) or not answering (TIMEOUT), 73 a\n"   \
	"local file (--key-out, --output) cannot be created, 75 engine busy,\n"  \
	"rate-limited or storage trouble, 70 refused for the key (FORBIDDEN:\n" \
	"a role, scope or --admin-org) and other errors.\n"

static const char *const main_usage =
    "usage: fuseboxctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "Operator CLI of the fusebox command-dispatch engine.\n"
    "\n"
    "Options (also accepted after COMMAND):\n"
    "  -e, --endpoint EP   console endpoint (default $FUSEBOX_CONSOLE or\n"
    "                      " CTL_DEFAULT_ENDPOINT ")\n"
    "  -o, --org ORG       organisation (default $FUSEBOX_ORG)\n"
    "  -a, --actor NAME    acting principal (default $FUSEBOX_ACTOR, else\n"
    "                      the key's: another name is refused FORBIDDEN)\n"
    "      --key FILE      your key (default $FUSEBOX_KEY, else\n"
    "                      ~/.config/fusebox/client.key)\n"
    "      --server-key FILE  the engine's public key (default\n"
    "                      $FUSEBOX_SERVER_KEY, else\n"
    "                      ~/.config/fusebox/server.pub)\n"
    "      --json          print one JSON object per reply\n"
    "      --timeout MS    reply timeout per request (default 10000)\n"
    "      --retries N     resend a timed-out request N times (default 2)\n"
    "  -h, --help          this help; COMMAND --help for a command\n"
    "  -V, --version       print the version\n"
    "\n"
    "Commands:\n"
    "  submit    submit a command to devices, a group or the organisation\n"
    "  show      show a command, its counts and per-device outcomes\n"
    "  list      list the organisation's commands\n"
    "  enroll    enroll devices (one, or a CSV file)\n"
    "  remove    remove devices from the registry\n"
    "  devices   list enrolled devices\n"
    "  groups    list device groups with their sizes\n"
    "  fleet     fleet check-in health: devices by hours offline, OS\n"
    "            versions, alert rules for devices that stop checking in\n"
    "  status    engine status (ping)\n"
    "  summary   per-organisation totals over the commands (incidents)\n"
    "Safety controls:\n"
    "  breaker   circuit breakers: status, trip, reset, config\n"
    "  held      commands held by an open breaker\n"
    "  limit     blast-radius limits per command type: list, set\n"
    "  rate      dispatch rate caps: show, set\n"
    "  approve   approve a command refused by a limit (second operator)\n"
    "  rollout   staged rollout: status, pause, resume, cancel, approve\n"
    "  cert      certificates automatic reasons depend on: add, list,\n"
    "            remove (their breakers trip before they expire)\n"
    "Incident response:\n"
    "  rollback  undo commands (by id, by filter, or an incident's), in one\n"
    "            or every organisation: a plan first, --execute to act\n"
    "  replay    resend deliveries a gateway lost\n"
    "  export    commands, deliveries and audit records as JSON Lines\n"
    "  audit     the audit log: list, verify the hash chain\n"
    "  orgs      organisations with their device counts\n"
    "Access:\n"
    "  principal who may use the engine: add, list, revoke, rotate keys\n"
    "  web       web console: login prints the page's address with a\n"
    "            session token\n"
    "\n"
    CTL_EXIT_STATUS;

int
ctl_parse_cmd_opts(struct ctl *ctl, int argc, char **argv,
    const struct option *longopts, const char *usage, opt_fn fn, void *arg)
{
	int c;

	int li = -1;

	optind = 0; /* glibc: full reset, options may follow operands */
	opterr = 0;
	while ((c = getopt_long(argc, argv, COMMON_SHORTOPTS, longopts,
	            &li)) != -1) {
		char typed[128];
		int r;

		if (c != '?' && c != ':' &&
		    !long_exact(argc, argv, longopts, li, typed,
		        sizeof(typed)))
			return -(ctl_usage_err("unknown option '%s' (did you mean "
					   "--%s? options are not "
					   "abbreviated)",
				     typed, longopts[li].name) +
			    1);
		li = -1;
		if (c == OPT_HELP || c == 'h') {
			fputs(usage, stdout);
			if (strstr(usage, "Exit status") == NULL)
				fputs("\n" CTL_EXIT_STATUS, stdout);
			return -(EX_OK + 1);
		}
		if (c == OPT_VERSION || c == 'V') {
			print_version();
			return -(EX_OK + 1);
		}
		if (c == '?' || c == ':')
			return -(bad_opt(argv, longopts, argv[0]) + 1);
		r = common_opt(ctl, c, optarg);
		if (r < 0)
			return r;
		if (r == 1)
			continue;
		r = fn(arg, ctl, c, optarg, argc, argv);
		if (r != EX_OK)
			return -(r + 1);
	}
	return optind;
}

/* ------------------------------------------------------------------ */

static const struct {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
} commands[] = {
	{ "submit", cmd_submit },
	{ "show", cmd_show },
	{ "list", cmd_list },
	{ "enroll", cmd_enroll },
	{ "remove", cmd_remove },
	{ "devices", cmd_devices },
	{ "groups", cmd_groups },
	{ "fleet", cmd_fleet },
	{ "status", cmd_status },
	{ "breaker", cmd_breaker },
	{ "held", cmd_held },
	{ "limit", cmd_limit },
	{ "rate", cmd_rate },
	{ "approve", cmd_approve },
	{ "rollout", cmd_rollout },
	{ "summary", cmd_summary },
	{ "orgs", cmd_orgs },
	{ "rollback", cmd_rollback },
	{ "replay", cmd_replay },
	{ "export", cmd_export },
	{ "audit", cmd_audit },
	{ "cert", cmd_cert },
	{ "principal", cmd_principal },
	{ "web", cmd_web },
};

int
main(int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 } };
	struct ctl ctl;
	const char *env;
	int c, st = EX_USAGE;

	memset(&ctl, 0, sizeof(ctl));
	ctl.timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
	ctl.retries = 2;
	env = getenv("FUSEBOX_CONSOLE");
	ctl.endpoint = env != NULL && *env != '\0' ? env : CTL_DEFAULT_ENDPOINT;
	env = getenv("FUSEBOX_ORG");
	if (env != NULL && *env != '\0' && ctl_copy_id(ctl.org, env) != 0)
		return ctl_usage_err("bad FUSEBOX_ORG '%s'", env);
	/* the actor is the key's principal (issue 10): $USER is no
	 * identity; FUSEBOX_ACTOR may state it */
	env = getenv("FUSEBOX_ACTOR");
	if (env != NULL && *env != '\0' && ctl_copy_id(ctl.actor, env) != 0)
		return ctl_usage_err("bad FUSEBOX_ACTOR '%s'", env);

	opterr = 0;
	for (int li = -1;
	     (c = getopt_long(argc, argv, "+" COMMON_SHORTOPTS, lo, &li)) != -1;
	     li = -1) {
		char typed[128];
		int r;
		if (c != '?' && c != ':' &&
		    !long_exact(argc, argv, lo, li, typed, sizeof(typed)))
			return ctl_usage_err("unknown option '%s' (did you mean "
					 "--%s? options are not abbreviated)",
			    typed, lo[li].name);
		if (c == OPT_HELP || c == 'h') {
			fputs(main_usage, stdout);
			return EX_OK;
		}
		if (c == OPT_VERSION || c == 'V') {
			print_version();
			return EX_OK;
		}
		if (c == '?' || c == ':')
			return bad_opt(argv, lo, "fuseboxctl");
		r = common_opt(&ctl, c, optarg);
		if (r < 0)
			return -r - 1;
	}
	if (optind >= argc) {
		fputs(main_usage, stderr);
		return ctl_usage_err("no command given");
	}
	/* a copy of the pointers as typed, for the "more:" lines: the
	 * command's options are parsed with permutation, which reorders
	 * argv (the loop above, "+", stops at the command and moves
	 * nothing); every return from here goes through out */
	ctl.nargs = argc - 1;
	ctl.args = calloc((size_t)ctl.nargs + 1, sizeof(char *));
	if (ctl.args == NULL) {
		fprintf(stderr, "fuseboxctl: out of memory\n");
		return EX_OSERR;
	}
	for (int i = 0; i < ctl.nargs; i++)
		ctl.args[i] = argv[i + 1];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[optind], commands[i].name) == 0) {
			st = commands[i].fn(
			    &ctl, argc - optind, argv + optind);
			goto out;
		}
	}
	if (strcmp(argv[optind], "help") == 0) {
		fputs(main_usage, stdout);
		st = EX_OK;
		goto out;
	}
	st = ctl_usage_err("unknown command '%s' (see --help)", argv[optind]);
out:
	fflush(stdout);
	fbx_client_close(ctl.cli);
	free(ctl.args);
	return st;
}
