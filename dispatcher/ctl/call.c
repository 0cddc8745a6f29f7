/*
 * call.c: the errors every command ends with (one line on stderr, a
 * sysexits.h status) and the calls to the engine: connect, send one
 * request, wait for its reply, retry what is safe to retry, list the
 * organisations.
 */
#include "ctl.h"

/* ------------------------------------------------------------------ */
/* errors */

int
ctl_exit_status(int err)
{
	switch (err) {
	case FBX_OK:
		return EX_OK;
	case FBX_ETIMEOUT:
	case FBX_EUNREACHABLE:
		return EX_UNAVAILABLE;
	case FBX_EINVALID:
	case FBX_EUNKNOWN_ORG:
	case FBX_EUNKNOWN_DEVICE:
	case FBX_EEMPTY_TARGET:
	case FBX_EIDEMPOTENCY_CONFLICT:
	case FBX_ETOOBIG:
	case FBX_ENOT_FOUND:
	case FBX_ETOO_MANY:
	case FBX_ELIMIT_EXCEEDED:
	case FBX_EAPPROVAL_INVALID:
	case FBX_ESTATE:
	case FBX_EBREAKER_OPEN:
	case FBX_EBAD_CERT:
		return EX_DATAERR;
	case FBX_EBUSY:
	case FBX_ERATE_LIMITED:
	case FBX_ESTORAGE:
	case FBX_EDISK_FULL:
	case FBX_EMAP_FULL:
	case FBX_ESHUTTING_DOWN:
	case FBX_EMOVED:
	case FBX_EFENCED:
	case FBX_EIO: /* not recorded; retry once the cause is fixed */
		return EX_TEMPFAIL;
	default:
		return EX_SOFTWARE;
	}
}

/* ctl_fail - print the one error line and return the exit status for err. */
int
ctl_fail(int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (fmt == NULL) {
		snprintf(msg, sizeof(msg), "%s", fbx_strerror(err));
	} else {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	/* Keep it one line whatever the engine sent. */
	for (char *p = msg; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	fprintf(stderr, "fuseboxctl: %s (%d): %s\n", fbx_errname(err), err,
	    msg);
	return ctl_exit_status(err);
}

/* req_writes - whether req changes the engine's state and has no way of
 * its own to be sent again safely (a submit has its idempotency key, a
 * rollback or replay its resume line) */
static int
req_writes(const struct fbx_console_req *r)
{
	switch (r->kind) {
	case FBX_CREQ_ENROLL:
	case FBX_CREQ_REMOVE:
	case FBX_CREQ_APPROVE:
		return 1;
	case FBX_CREQ_BREAKER:
		return r->u.breaker.op != FBX_BRK_STATUS;
	case FBX_CREQ_LIMIT:
		return r->u.limit.set;
	case FBX_CREQ_RATE:
		return r->u.rate.set;
	case FBX_CREQ_ROLLOUT:
		return r->u.rollout.op != FBX_ROP_STATUS;
	case FBX_CREQ_CERT:
		return r->u.cert.op != FBX_CERT_LIST;
	case FBX_CREQ_PRINCIPAL:
		return r->u.principal.op != FBX_PRI_LIST;
	case FBX_CREQ_FLEET:
		return r->u.fleet.op != FBX_FLEET_REPORT &&
		    r->u.fleet.op != FBX_FLEET_VERSION;
	default:
		return 0;
	}
}

/* the end of the line for a change whose answer did not come */
#define MAYBE_DONE(r)                                                      \
	(req_writes(r) ? "; it may have been carried out before the engine " \
	                 "stopped answering: check (e.g. breaker status, "   \
	                 "limit list) before sending it again"               \
	               : "")

int
ctl_fail_create(const char *path, int err)
{
	(void)ctl_fail(FBX_EIO, "cannot create %s: %s", path, strerror(err));
	return EX_CANTCREAT;
}

/* ctl_usage_err - a bad flag or argument: INVALID with EX_USAGE. */
int
ctl_usage_err(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fuseboxctl: %s (%d): %s\n", fbx_errname(FBX_EINVALID),
	    FBX_EINVALID, msg);
	return EX_USAGE;
}

/* ------------------------------------------------------------------ */
/* JSON output: ctl_json.c, with jansson (issue 12 item 6) */

/* ------------------------------------------------------------------ */
/* calling the engine */

/* ctl_call_ex - send req, retrying a timed-out request; print the error line
 * on failure. Returns EX_OK with rep owned by the caller, or an exit
 * status with rep zeroed. With eng_err set, an engine refusal is not
 * printed: its code lands in *eng_err (and its message in ctl->errmsg)
 * and the exit status is returned, so a loop over organisations can
 * tell "nothing here" from a failure. */
int
ctl_call_ex(struct ctl *ctl, struct fbx_console_req *req,
    struct fbx_console_rep *rep, int *eng_err)
{
	int rc, attempts;
	unsigned drops = 0;

	memset(rep, 0, sizeof(*rep));
	if (ctl->cli == NULL) {
		int wait_ms = ctl->timeout_ms < CTL_CONNECT_WAIT_MS
		    ? ctl->timeout_ms
		    : CTL_CONNECT_WAIT_MS;
		struct fbx_client_opts co;
		char why[600] = "";
		memset(&co, 0, sizeof(co));
		co.key_file = ctl->key_file;
		co.server_key_file = ctl->server_key_file;
		co.why = why;
		co.whylen = sizeof(why);
		rc = fbx_client_open2(ctl->endpoint, ctl->timeout_ms, &co,
		    &ctl->cli);
		if (rc == FBX_EINVALID)
			return ctl_usage_err("bad endpoint '%s'", ctl->endpoint);
		if (rc == FBX_ECONFIG)
			return ctl_fail(rc, "%s", why);
		if (rc != FBX_OK)
			return ctl_fail(rc, "cannot open endpoint %s: %s",
			    ctl->endpoint, fbx_strerror(rc));
		/* a daemon started a moment ago binds after recovery */
		if (fbx_client_wait_ready(ctl->endpoint, wait_ms) != FBX_OK) {
			struct stat st;
			const char *ep = ctl->endpoint;
			int ipc = strncmp(ep, "ipc://", 6) == 0;
			return ctl_fail(FBX_EUNREACHABLE,
			    "engine unreachable at %s: %s (waited %d ms; is "
			    "fuseboxd running?)",
			    ep,
			    !ipc                     ? "nothing listens there"
			    : stat(ep + 6, &st) != 0 ? "no socket file"
						     : "the socket file is "
						       "left from a stopped "
						       "daemon",
			    wait_ms);
		}
	}
	if (req->org[0] == '\0')
		strcpy(req->org, ctl->org[0] ? ctl->org : CTL_SYSTEM_ORG);
	/* the engine acts as the key's principal; -a only states it */
	if (req->actor[0] == '\0')
		strcpy(req->actor, ctl->actor[0] ? ctl->actor
		                                 : fbx_client_principal(ctl->cli));
	for (attempts = 1;; attempts++) {
		rc = fbx_client_call(ctl->cli, req, rep);
		/* an engine that hangs up on every handshake will not take
		 * the next attempt either */
		if (rc != FBX_ETIMEOUT)
			break;
		drops = fbx_client_handshake_drops(ctl->cli);
		if (attempts > ctl->retries || drops >= 2)
			break;
	}
	if ((rc == FBX_ETIMEOUT || rc == FBX_EUNREACHABLE) &&
	    fbx_client_silent_owner(ctl->cli)[0] != '\0') {
		/* several nodes: the node asked is up, the owner it named
		 * is not answering (stopped, until its lease runs out) */
		(void)ctl_fail(rc, "no reply from %s, the node that owns "
		    "organisation '%s' (named by the MOVED answer of %s): it "
		    "may have stopped; another node takes its organisations "
		    "over once its lease runs out (fuseboxd --lease-ms, 10 s "
		    "by default): retry then%s",
		    fbx_client_silent_owner(ctl->cli), req->org, ctl->endpoint,
		    MAYBE_DONE(req));
		return EX_TEMPFAIL;
	}
	if (rc == FBX_ETIMEOUT && drops >= 2)
		return ctl_fail(rc, "no reply from %s within %d ms (%d "
		    "attempt%s): the engine closed the connection during the "
		    "handshake %u times: the server key (--server-key, "
		    "$FUSEBOX_SERVER_KEY) is not this engine's public key, "
		    "or the endpoint is no fusebox console",
		    ctl->endpoint, ctl->timeout_ms, attempts,
		    attempts == 1 ? "" : "s", drops);
	if (rc == FBX_ETIMEOUT)
		return ctl_fail(rc, "no reply from %s within %d ms (%d "
		    "attempt%s): the engine accepts connections but does not "
		    "answer%s",
		    ctl->endpoint, ctl->timeout_ms, ctl->retries + 1,
		    ctl->retries == 0 ? "" : "s", MAYBE_DONE(req));
	if (rc == FBX_EUNREACHABLE)
		return ctl_fail(rc, "engine unreachable at %s%s", ctl->endpoint,
		    MAYBE_DONE(req));
	if (rc == FBX_EFORBIDDEN)
		return ctl_fail(rc, "the engine at %s refused the handshake: the "
		    "key of '%s' is unknown to it, revoked or rotated",
		    ctl->endpoint, fbx_client_principal(ctl->cli));
	if (rc == FBX_EINVALID || rc == FBX_ETOOBIG)
		return ctl_fail(rc, "request not sent: it cannot be encoded (%s)",
		    fbx_strerror(rc));
	if (rc != FBX_OK)
		return ctl_fail(rc, NULL);
	if (eng_err != NULL)
		*eng_err = rep->err;
	if (rep->err != FBX_OK && eng_err != NULL) {
		int st = ctl_exit_status(rep->err);
		snprintf(ctl->errmsg, sizeof(ctl->errmsg), "%s",
		    rep->errmsg[0] ? rep->errmsg : fbx_strerror(rep->err));
		fbx_console_rep_free(rep);
		memset(rep, 0, sizeof(*rep));
		return st;
	}
	if (rep->err != FBX_OK) {
		int st = ctl_fail(rep->err, "%s",
		    rep->errmsg[0] ? rep->errmsg : fbx_strerror(rep->err));
		/* A refusal over a blast-radius limit names the token a
		 * second operator approves: on its own line, so a runbook
		 * can cut it out. */
		if (rep->err == FBX_ELIMIT_EXCEEDED &&
		    rep->approval_token[0] != '\0') {
			fprintf(stderr, "approval token: %s\n",
			    rep->approval_token);
			if (ctl->json) {
				json_t *o = json_object();
				if (o != NULL) {
					CJ_STR(o, "error", fbx_errname(rep->err));
					CJ_INT(o, "code", rep->err);
					CJ_STR(o, "message", rep->errmsg);
					CJ_STR(o, "approval_token",
					    rep->approval_token);
					CJ_INT(o, "limit", rep->limit_value);
					CJ_INT(o, "count", rep->limit_count);
				}
				ctl_json_print(o);
			}
		}
		fbx_console_rep_free(rep);
		memset(rep, 0, sizeof(*rep));
		return st;
	}
	return EX_OK;
}

int
ctl_call(struct ctl *ctl, struct fbx_console_req *req, struct fbx_console_rep *rep)
{
	return ctl_call_ex(ctl, req, rep, NULL);
}

int
ctl_need_org(const struct ctl *ctl)
{
	if (ctl->org[0] == '\0')
		return ctl_usage_err("no organisation: use -o ORG or set "
				 "FUSEBOX_ORG");
	return EX_OK;
}

void
ctl_orglist_free(struct orglist *l)
{
	free(l->orgs);
	free(l->devices);
	memset(l, 0, sizeof(*l));
}

/* ctl_list_orgs - every organisation the engine knows, with its devices. */
int
ctl_list_orgs(struct ctl *ctl, struct orglist *out)
{
	struct fbx_console_req req;
	struct fbx_console_rep rep;
	char saved[FBX_ID_MAX + 1];
	int st;

	memset(&req, 0, sizeof(req));
	memset(out, 0, sizeof(*out));
	req.kind = FBX_CREQ_LIST_ORGS;
	strcpy(saved, ctl->org);
	st = ctl_call(ctl, &req, &rep);
	strcpy(ctl->org, saved);
	if (st != EX_OK)
		return st;
	if (rep.u.orgs.n > 0) {
		out->orgs = malloc(rep.u.orgs.n * sizeof(*out->orgs));
		out->devices = malloc(rep.u.orgs.n * sizeof(*out->devices));
		if (out->orgs == NULL || out->devices == NULL) {
			ctl_orglist_free(out);
			fbx_console_rep_free(&rep);
			return ctl_fail(FBX_ENOMEM, NULL);
		}
		memcpy(out->orgs, rep.u.orgs.orgs,
		    rep.u.orgs.n * sizeof(*out->orgs));
		memcpy(out->devices, rep.u.orgs.devices,
		    rep.u.orgs.n * sizeof(*out->devices));
		out->n = rep.u.orgs.n;
	}
	fbx_console_rep_free(&rep);
	return EX_OK;
}
