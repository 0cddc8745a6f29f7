/*
 * certs.c: fuseboxctl cert: the certificates automatic reasons depend on,
 * and their alerts.
 * Its ctl_cert_fetch and ctl_cert_lines also serve breaker (controls.c)
 * and status (devices.c).
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* cert: certificates automatic reasons depend on */

static const char *const cert_usage =
    "usage: fuseboxctl cert add --name NAME --file CERT.pem --reason R\n"
    "                           [--reason R ...] [--trip-before DUR]\n"
    "                           [--note TEXT]\n"
    "       fuseboxctl cert list\n"
    "       fuseboxctl cert remove --name NAME [--note TEXT]\n"
    "\n"
    "Certificates that automatic reasons depend on, such as the\n"
    "attestation provider's signing certificate for attestation_failed.\n"
    "The engine reads notAfter, alerts (event cert_expiring) 30, 7 and 1\n"
    "days before it and at expiry, and opens the global breaker of every\n"
    "bound reason by itself --trip-before ahead of notAfter and while the\n"
    "certificate is expired: automatic locks of those reasons are held,\n"
    "not sent. A reset of such a breaker while the certificate is still\n"
    "due is undone within a second: renew (add again under the same name)\n"
    "or remove the certificate first. Certificates are global: with\n"
    "fuseboxd --admin-org only that organisation may add or remove them.\n"
    "\n"
    "  add           register a certificate, or renew it (same NAME)\n"
    "    --name NAME       identifier ([A-Za-z0-9._:@-], 1..64)\n"
    "    --file FILE       exactly one PEM certificate ('-' = stdin)\n"
    "    --reason R        automatic reason that depends on it (1..8)\n"
    "    --trip-before DUR open the breakers this long before notAfter:\n"
    "                      30s, 10m, 2h, 1d (default 10m, or the value\n"
    "                      in force when renewing; at most 7d)\n"
    "  list          name, subject, notAfter, days left, reasons, state\n"
    "  remove        forget a certificate; breakers it opened stay open\n"
    "  --note TEXT   why (kept in the audit record)\n";

struct cert_args {
	fbx_id name;
	const char *file;
	fbx_id reasons[FBX_CERT_REASONS_MAX];
	size_t nreasons;
	uint32_t trip_before_s;
	char note[FBX_NOTE_MAX];
};

static int
cert_opt(void *arg, struct ctl *ctl, int c, const char *oa, int argc,
    char **argv)
{
	struct cert_args *a = arg;

	(void)ctl;
	(void)argc;
	(void)argv;
	switch (c) {
	case OPT_NAME:
		if (ctl_copy_id(a->name, oa) != 0)
			return ctl_usage_err("bad --name '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		return EX_OK;
	case OPT_FILE:
		a->file = oa;
		return EX_OK;
	case OPT_REASON:
		if (a->nreasons == FBX_CERT_REASONS_MAX)
			return ctl_usage_err("at most %d --reason",
			    FBX_CERT_REASONS_MAX);
		if (ctl_copy_id(a->reasons[a->nreasons], oa) != 0)
			return ctl_usage_err("bad reason '%s' (1..%d of "
					 "[A-Za-z0-9._:@-])",
			    oa, FBX_ID_MAX);
		for (size_t i = 0; i < a->nreasons; i++)
			if (strcmp(a->reasons[i], oa) == 0)
				return ctl_usage_err("--reason %s given twice", oa);
		a->nreasons++;
		return EX_OK;
	case OPT_TRIP_BEFORE:
		if (ctl_parse_dur_s(oa, FBX_CERT_TRIP_BEFORE_MAX,
		        &a->trip_before_s) != 0)
			return ctl_usage_err("bad --trip-before '%s' (30s, 10m, "
					 "2h, 1d; at most 7d)",
			    oa);
		return EX_OK;
	case OPT_NOTE:
		if (ctl_copy_note(a->note, oa) != EX_OK)
			return EX_USAGE;
		return EX_OK;
	default:
		return ctl_usage_err("unexpected option");
	}
}

/* cert_alerts_str - the alert stages sent, "30d,7d" or "-". */
static void
cert_alerts_str(uint32_t bits, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *s;
	} st[] = { { FBX_CERT_ALERT_30D, "30d" }, { FBX_CERT_ALERT_7D, "7d" },
		{ FBX_CERT_ALERT_1D, "1d" },
		{ FBX_CERT_ALERT_EXPIRED, "expired" } };
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
		if (bits & st[i].bit)
			pos += (size_t)snprintf(buf + pos,
			    pos < len ? len - pos : 0, "%s%s", pos ? "," : "",
			    st[i].s);
	if (pos == 0)
		snprintf(buf, len, "-");
}

static void
cert_reasons_str(const struct fbx_cert_info *c, char *buf, size_t len)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (uint32_t i = 0; i < c->nreasons; i++)
		pos += (size_t)snprintf(buf + pos, pos < len ? len - pos : 0,
		    "%s%s", i ? "," : "", c->reasons[i]);
}

static void
print_certs(const struct fbx_cert_info *v, size_t n)
{
	struct table t = { .ncol = 9 };

	ctl_table_row(&t, "NAME", "SUBJECT", "NOT_AFTER", "DAYS_LEFT", "REASONS",
	    "STATE", "TRIP_BEFORE", "ALERTS_SENT", "LAST_TRIP");
	for (size_t i = 0; i < n; i++) {
		const struct fbx_cert_info *c = &v[i];
		char at[40], days[24], rs[600], tb[24], al[40], tr[40];
		ctl_fmt_time(c->not_after_ms, at, sizeof(at));
		snprintf(days, sizeof(days), "%" PRId64, c->days_left);
		cert_reasons_str(c, rs, sizeof(rs));
		snprintf(tb, sizeof(tb), "%" PRIu32 "s", c->trip_before_s);
		cert_alerts_str(c->alerts_sent, al, sizeof(al));
		ctl_fmt_time(c->tripped_ms, tr, sizeof(tr));
		ctl_table_row(&t, c->name, c->subject, at, days, rs,
		    fbx_cert_state_name(c->state), tb, al, tr);
	}
	ctl_table_print(&t);
	ctl_table_free(&t);
}

/* ctl_cert_fetch - the registered certificates, quietly: an engine that does
 * not know them (older) or refuses gives none. @return 1 with rep to
 * free, or 0. */
int
ctl_cert_fetch(struct ctl *ctl, struct fbx_console_rep *rep)
{
	struct fbx_console_req req;
	int err = FBX_OK;

	memset(&req, 0, sizeof(req));
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = FBX_CERT_LIST;
	if (ctl_call_ex(ctl, &req, rep, &err) != EX_OK || err != FBX_OK)
		return 0;
	return 1;
}

/* ctl_cert_lines - "certificate NAME (R): N days left ..." for status and
 * breaker status, for the certificates bound to reason ("" = all). */
void
ctl_cert_lines(const struct fbx_console_rep *rep, const char *reason)
{
	for (size_t i = 0; i < rep->u.cert.n; i++) {
		const struct fbx_cert_info *c = &rep->u.cert.c[i];
		char at[40], rs[600];
		if (!ctl_cert_bound(c, reason))
			continue;
		ctl_fmt_time(c->not_after_ms, at, sizeof(at));
		cert_reasons_str(c, rs, sizeof(rs));
		printf("certificate %s (%s): %" PRId64 " days left, notAfter "
		       "%s, %s; trips %" PRIu32 "s before\n",
		    c->name, rs, c->days_left, at,
		    fbx_cert_state_name(c->state), c->trip_before_s);
	}
}

int
cmd_cert(struct ctl *ctl, int argc, char **argv)
{
	static const struct option lo[] = { COMMON_LONGOPTS,
		{ "name", required_argument, NULL, OPT_NAME },
		{ "file", required_argument, NULL, OPT_FILE },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "trip-before", required_argument, NULL, OPT_TRIP_BEFORE },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ NULL, 0, NULL, 0 } };
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	struct cert_args a;
	const char *sub;
	uint8_t *pem = NULL;
	size_t pem_len = 0;
	int st, op;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	st = ctl_parse_cmd_opts(ctl, argc, argv, lo, cert_usage, cert_opt, &a);
	if (st < 0)
		return -st - 1;
	if (st >= argc)
		return ctl_usage_err("cert needs add, list or remove (see cert "
				 "--help)");
	sub = argv[st];
	if (st + 1 < argc)
		return ctl_usage_err("unexpected argument '%s'", argv[st + 1]);
	if (strcmp(sub, "add") == 0)
		op = FBX_CERT_ADD;
	else if (strcmp(sub, "list") == 0)
		op = FBX_CERT_LIST;
	else if (strcmp(sub, "remove") == 0)
		op = FBX_CERT_REMOVE;
	else
		return ctl_usage_err("unknown cert operation '%s' (add, list, "
				 "remove)",
		    sub);
	if (op == FBX_CERT_LIST &&
	    (a.name[0] || a.file || a.nreasons || a.trip_before_s || a.note[0]))
		return ctl_usage_err("cert list takes no options of its own");
	if (op != FBX_CERT_LIST && a.name[0] == '\0')
		return ctl_usage_err("cert %s needs --name", sub);
	if (op == FBX_CERT_REMOVE && (a.file || a.nreasons || a.trip_before_s))
		return ctl_usage_err("--file, --reason and --trip-before go with "
				 "cert add");
	if (op == FBX_CERT_ADD) {
		if (a.file == NULL)
			return ctl_usage_err("cert add needs --file CERT.pem");
		if (a.nreasons == 0)
			return ctl_usage_err("cert add needs --reason: the "
					 "automatic reason(s) that depend on "
					 "the certificate");
		const char *fname = strcmp(a.file, "-") == 0 ? "stdin" : a.file;
		st = ctl_read_file_capped(a.file, FBX_CERT_PEM_MAX, &pem, &pem_len);
		if (st == FBX_ETOOBIG)
			return ctl_fail(st, "%s: more than %d bytes: one PEM "
			    "certificate is expected",
			    fname, FBX_CERT_PEM_MAX);
		if (st != FBX_OK)
			return ctl_fail(st, "cannot read %s: %s", fname,
			    strerror(errno));
		if (pem_len == 0) {
			free(pem);
			return ctl_fail(FBX_EBAD_CERT, "%s is empty", fname);
		}
	}
	req.kind = FBX_CREQ_CERT;
	req.u.cert.op = op;
	strcpy(req.u.cert.name, a.name);
	req.u.cert.pem = pem;
	req.u.cert.pem_len = pem_len;
	for (size_t i = 0; i < a.nreasons; i++)
		strcpy(req.u.cert.reasons[i], a.reasons[i]);
	req.u.cert.nreasons = a.nreasons;
	req.u.cert.trip_before_s = a.trip_before_s;
	strcpy(req.u.cert.note, a.note);
	{
		int err = FBX_OK;
		st = ctl_call_ex(ctl, &req, &rep, &err);
		free(pem);
		if (st != EX_OK && err != FBX_OK) {
			/* the engine names the request's field (cert.pem):
			 * name the file it came from instead */
			const char *m = ctl->errmsg;
			if (err == FBX_EBAD_CERT && a.file != NULL &&
			    strncmp(m, "cert.pem: ", 10) == 0)
				return ctl_fail(err, "%s: %s",
				    strcmp(a.file, "-") == 0 ? "stdin"
				                             : a.file,
				    m + 10);
			return ctl_fail(err, "%s", m);
		}
		if (st != EX_OK)
			return st;
	}
	if (ctl->json) {
		ctl_json_print(json_pack("{s:o*,s:o*}", "operation",
		    fbx_json_str(sub), "certificates",
		    ctl_json_certs(&rep, "")));
	} else {
		if (op == FBX_CERT_ADD)
			printf("certificate %s registered\n\n", a.name);
		else if (op == FBX_CERT_REMOVE)
			printf("certificate %s removed (breakers it opened "
			       "stay as they are)\n\n",
			    a.name);
		if (rep.u.cert.n == 0)
			printf("no certificates registered\n");
		else
			print_certs(rep.u.cert.c, rep.u.cert.n);
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}
