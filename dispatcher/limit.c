/*
 * limit.c: the blast-radius limit as the engine applies it: its
 * configuration and sliding-window use records, the gate every command not
 * held passes (LIMIT_EXCEEDED with an approval token, or an approval
 * used), LimitRequest, ApproveRequest and RateRequest (the rate caps'
 * settings).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "auth.h"
#include "engine_int.h"

int
fbxi_limit_cfg_load(fbx_txn *txn, const char *org, int type,
    struct fbxi_limit_cfg *out, int *own)
{
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	*own = 0;
	memset(out, 0, sizeof(*out));
	snprintf(key, sizeof(key), "limcfg/%s/%s", org, fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, out, sizeof(*out), &len);
	if (rc == FBX_OK && (len == sizeof(*out) || len == FBXI_LIM_V1_SIZE)) {
		if (len == FBXI_LIM_V1_SIZE)
			out->changed_ms = 0; /* version 1: not recorded */
		*own = 1;
		return FBX_OK;
	}
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	memset(out, 0, sizeof(*out));
	snprintf(key, sizeof(key), "limcfg/*/%s", fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, out, sizeof(*out), &len);
	if (rc == FBX_OK && (len == sizeof(*out) || len == FBXI_LIM_V1_SIZE)) {
		if (len == FBXI_LIM_V1_SIZE)
			out->changed_ms = 0;
		return FBX_OK;
	}
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		return rc;
	fbxi_limit_defaults(type, out);
	return FBX_OK;
}

/* A blast-radius limit's use record, "limuse/<org>/<type>": the
 * window's counts, and the carry of the record it replaced when the
 * limit's window changed: the moment (a time in the bucket the old
 * counts were carried into) and the old window, whose generation is
 * w.gen - 1. A record of version 1 is the window alone (nothing
 * carried). */
struct limit_use {
	struct fbxi_window w;
	int64_t carry_at_ms; /* 0 = nothing carried */
	uint32_t carry_window_s;
	uint32_t pad_;
};

/* limit_use_read - org's use record of type as stored; *found 0 when
 * there is none (or not one: it is begun again) */
static int
limit_use_read(fbx_txn *txn, const char *org, int type, struct limit_use *u,
    int *found)
{
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	memset(u, 0, sizeof(*u));
	*found = 0;
	snprintf(key, sizeof(key), "limuse/%s/%s", org, fbx_cmd_type_name(type));
	rc = fbx_store_kv_get(txn, key, u, sizeof(*u), &len);
	if (rc == FBX_ENOT_FOUND)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	if (len == sizeof(u->w)) {
		u->carry_at_ms = 0; /* version 1: the window alone */
		u->carry_window_s = 0;
		*found = 1;
	} else if (len == sizeof(*u)) {
		*found = 1;
	} else {
		memset(u, 0, sizeof(*u)); /* not a use record */
	}
	return FBX_OK;
}

/* limit_use_rebegin - u (found or not) as a record under window_s. One
 * kept under another window (the limit's window was changed, at
 * since_ms: its setting's changed_ms, 0 = unknown, taken as now) is
 * begun again as a new generation, and what it counted at the change
 * is carried into the change's bucket: counted for the new window's
 * full length from the change, never less (a window changed in an
 * incident does not clear the count). */
static void
limit_use_rebegin(struct limit_use *u, int found, uint32_t window_s,
    int64_t since_ms, int64_t now_ms)
{
	uint32_t gen = 0, old_window = 0;
	uint64_t carried = 0;
	int64_t at = since_ms > 0 && since_ms <= now_ms ? since_ms : now_ms;

	if (found && u->w.window_s == window_s)
		return;
	/* a new generation, so that no command takes its count for one
	 * this record still holds; what it counted is carried */
	if (found) {
		gen = u->w.gen + 1;
		if (u->w.window_s > 0) {
			/* a record that counted after `at` (the clock went
			 * back) is carried whole, and no command is found in
			 * it: what left it since `at` is not told apart */
			if (!fbxi_window_after(&u->w, at))
				old_window = u->w.window_s;
			carried = fbxi_window_sum(&u->w, at);
		}
	}
	memset(u, 0, sizeof(*u));
	fbxi_window_init(&u->w, window_s);
	u->w.gen = gen;
	if (carried > 0) {
		u->carry_at_ms = fbxi_window_add(&u->w, at,
		    carried > UINT32_MAX ? UINT32_MAX : (uint32_t)carried);
		u->carry_window_s = old_window; /* 0: none found in it */
	}
}

/* limit_use_get - org's use record of type under window_s (the window
 * of its setting, changed at since_ms): limit_use_read, then
 * limit_use_rebegin */
static int
limit_use_get(fbx_txn *txn, const char *org, int type, uint32_t window_s,
    int64_t since_ms, int64_t now_ms, struct limit_use *u)
{
	int found = 0;
	int rc = limit_use_read(txn, org, type, u, &found);

	if (rc == FBX_OK)
		limit_use_rebegin(u, found, window_s, since_ms, now_ms);
	return rc;
}

/* fbxi_limit_use_load - limit_use_get's window, for the readers */
int
fbxi_limit_use_load(fbx_txn *txn, const char *org, int type, uint32_t window_s,
    int64_t since_ms, int64_t now_ms, struct fbxi_window *w)
{
	struct limit_use u;
	int rc = limit_use_get(txn, org, type, window_s, since_ms, now_ms, &u);

	if (rc == FBX_OK)
		*w = u.w;
	return rc;
}

/* limit_record - the command records its count: n devices at `at`
 * (fbxi_window_add's bucket time) in use record u; written with the
 * command in this turn */
static void
limit_record(struct fbx_command *c, const struct limit_use *u, int64_t at,
    uint32_t n)
{
	c->limit_at_ms = at;
	c->limit_n = n;
	c->limit_window_s = u->w.window_s;
	c->limit_gen = u->w.gen;
}

/* limit_counted - how many of the command's devices the use record u
 * still counts, and in which bucket (*where, a time in it): those it
 * recorded when it was counted, if u is the record (window and
 * generation) it was counted in and that count has not left the
 * window; or if u replaced that record at a window change and carried
 * the count (it was still in the old window then), while the carry is
 * in the window. 0 otherwise (then it is counted again). */
static uint32_t
limit_counted(const struct fbx_command *c, struct limit_use *u,
    int64_t now_ms, int64_t *where)
{
	if (c->limit_at_ms <= 0 || c->limit_n == 0)
		return 0;
	if (c->limit_gen == u->w.gen && c->limit_window_s == u->w.window_s) {
		if (!fbxi_window_holds(&u->w, c->limit_at_ms, now_ms))
			return 0;
		*where = c->limit_at_ms;
		return c->limit_n;
	}
	if (u->carry_at_ms > 0 && u->carry_window_s > 0 &&
	    c->limit_gen + 1 == u->w.gen &&
	    c->limit_window_s == u->carry_window_s &&
	    fbxi_window_held_at(
	        u->carry_window_s, c->limit_at_ms, u->carry_at_ms) &&
	    fbxi_window_holds(&u->w, u->carry_at_ms, now_ms)) {
		*where = u->carry_at_ms;
		return c->limit_n;
	}
	return 0;
}

static int
limit_use_save(
    fbx_txn *txn, const char *org, int type, const struct limit_use *u)
{
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), "limuse/%s/%s", org, fbx_cmd_type_name(type));
	return fbx_store_kv_put(txn, key, u, sizeof(*u));
}

/* limit_used - what u counts at now without command c's own count:
 * that (*already devices, in *where's bucket) moves to now when c is
 * counted (limit_move), since its devices are reached from now on */
static uint64_t
limit_used(const struct fbx_command *c, struct limit_use *u, int64_t now_ms,
    uint32_t *already, int64_t *where)
{
	uint64_t used = fbxi_window_sum(&u->w, now_ms);

	*already = limit_counted(c, u, now_ms, where);
	return used > *already ? used - *already : 0;
}

/* limit_move - count c's ndev devices at now in u, its earlier count
 * (limit_used) taken out of its bucket; recorded with c, u saved */
static int
limit_move(struct fbx_engine *e, struct fbx_command *c, struct limit_use *u,
    uint32_t already, int64_t where, uint32_t ndev)
{
	int64_t at;

	if (already > 0)
		fbxi_window_sub(&u->w, where, e->now, already);
	at = fbxi_window_add(&u->w, e->now, ndev);
	limit_record(c, u, at, ndev);
	return limit_use_save(e->txn, c->org, c->type, u);
}

/* The organisations with a use record of one type (limuse/<org>/<type>),
 * for limit_carry_now */
struct carry_scan {
	fbx_id *orgs;
	size_t n, cap;
	const char *type;
	int err;
};

static int
carry_scan_cb(void *arg, const char *key, const void *val, size_t len)
{
	struct carry_scan *cs = arg;
	const char *org = key + strlen("limuse/"), *slash = strchr(org, '/');

	(void)val;
	(void)len;
	if (slash == NULL || strcmp(slash + 1, cs->type) != 0 ||
	    (size_t)(slash - org) > FBX_ID_MAX || slash == org)
		return 0;
	if (cs->n == cs->cap) {
		size_t nc = cs->cap ? 2 * cs->cap : 64;
		fbx_id *nv = realloc(cs->orgs, nc * sizeof(*nv));
		if (nv == NULL) {
			cs->err = FBX_ENOMEM;
			return 1;
		}
		cs->orgs = nv;
		cs->cap = nc;
	}
	memcpy(cs->orgs[cs->n], org, (size_t)(slash - org));
	cs->orgs[cs->n][slash - org] = '\0';
	cs->n++;
	return 0;
}

/* limit_carry_one - org's use record of type begun again under the new
 * window now: first brought up to the setting it had (`was`: a record
 * still under an older window, from before that setting's change was
 * carried, is carried as of that change), then carried as of now.
 * Nothing is written when it has no record. */
static int
limit_carry_one(struct fbx_engine *e, const char *org, int type,
    const struct fbxi_limit_cfg *was, uint32_t window_s)
{
	struct limit_use u;
	int found = 0;
	int rc = limit_use_read(e->txn, org, type, &u, &found);

	if (rc != FBX_OK || !found)
		return rc;
	limit_use_rebegin(&u, 1, was->window_s, was->changed_ms, e->now);
	limit_use_rebegin(&u, 1, window_s, e->now, e->now);
	return limit_use_save(e->txn, org, type, &u);
}

/* limit_carry_now - a limit's window changed from was's to window_s:
 * the use records it governs (the organisation's; for the global
 * setting, every organisation's without a setting of its own) are
 * begun again under it now, with what they counted carried as of now.
 * Carried lazily, at the next use, a second change before that would
 * carry from a record aged under a window no longer in force, and
 * could drop the count. The global setting's records are found by a
 * scan of every use record, in this one turn. @return FBX_OK,
 * FBX_ENOMEM or a store error. */
static int
limit_carry_now(struct fbx_engine *e, const char *scope, int type,
    const struct fbxi_limit_cfg *was, uint32_t window_s)
{
	struct carry_scan cs;
	int rc = FBX_OK;

	if (strcmp(scope, "*") != 0)
		return limit_carry_one(e, scope, type, was, window_s);
	memset(&cs, 0, sizeof(cs));
	cs.type = fbx_cmd_type_name(type);
	rc = fbx_store_kv_scan(e->txn, "limuse/", carry_scan_cb, &cs);
	if (rc == FBX_OK)
		rc = cs.err;
	for (size_t i = 0; rc == FBX_OK && i < cs.n; i++) {
		struct fbxi_limit_cfg cfg;
		int own = 0;
		rc = fbxi_limit_cfg_load(e->txn, cs.orgs[i], type, &cfg, &own);
		if (rc == FBX_OK && !own) /* else its own setting governs */
			rc = limit_carry_one(e, cs.orgs[i], type, was, window_s);
	}
	free(cs.orgs);
	return rc;
}

/* fbxi_approval_token - the approval token of a refused command: SHA-256
 * of what it would do, so an approval covers exactly that command. Every
 * OpenSSL return is checked. @return FBX_OK and out (32 hex digits: the
 * first 16 bytes),
 * FBX_ENOMEM or FBX_ECRYPTO; out is written only on success. */
int
fbxi_approval_token(const struct fbx_command *c, char *out, size_t cap)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	uint8_t hdr[5] = { c->type, c->origin, c->target_kind, c->platform,
		c->rollout.enabled };
	int ok, rc = FBX_ECRYPTO;

	if (cap < 33)
		return FBX_EINVALID;
	if (fbxi_crypto_injected())
		return FBX_ECRYPTO;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return FBX_ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, c->org, strlen(c->org) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, hdr, sizeof(hdr)) == 1 &&
	    EVP_DigestUpdate(ctx, c->group, strlen(c->group) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, c->reason, strlen(c->reason) + 1) == 1 &&
	    (c->payload_len == 0 ||
	        EVP_DigestUpdate(ctx, c->payload, c->payload_len) == 1);
	for (uint32_t i = 0; ok && i < c->ndev_ids; i++)
		ok = EVP_DigestUpdate(ctx, c->dev_ids[i],
		         strlen(c->dev_ids[i]) + 1) == 1;
	if (!ok || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < 16)
		goto out;
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	rc = FBX_OK;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* limit_gate - the blast-radius check, after admission: what the window
 * already counts plus this command must stay within the limit, unless a
 * second operator approved exactly this command. A held command being
 * released was counted when it was admitted to settle, if it was: what
 * the window still counts of it (limit_counted) is not counted twice.
 * The command records when, how many, and under which window and
 * generation it was counted. @return FBX_OK when admitted (and counted);
 * FBX_ELIMIT_EXCEEDED or FBX_EAPPROVAL_INVALID after answering the
 * submitter; or a store error. */
int
fbxi_limit_gate(struct fbx_engine *e, const struct inmsg *in,
    const struct fbx_console_req *req, struct fbx_command *c, uint32_t ndev,
    uint32_t fleet)
{
	struct fbxi_limit_cfg cfg;
	struct limit_use u;
	char token[FBX_ID_MAX + 1], key[FBX_KV_KEY_MAX];
	uint64_t used;
	uint32_t cap, already;
	int64_t where = 0;
	int own, rc;

	rc = fbxi_limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc != FBX_OK)
		return rc;
	cap = fbxi_limit_cap(&cfg, fleet);
	if (cap == UINT32_MAX)
		return FBX_OK; /* no limit on this type: nothing to count */
	rc = limit_use_get(
	    e->txn, c->org, c->type, cfg.window_s, cfg.changed_ms, e->now, &u);
	if (rc != FBX_OK)
		return rc;
	/* what the window counts without this command (its own earlier
	 * count moves to now) */
	used = limit_used(c, &u, e->now, &already, &where);
	/* a held command a second operator approved over the limit is not
	 * refused again at its release (nor at the end of its settle
	 * window: fbxi_limit_settled), unless its target grew since it was
	 * counted: the approver approved the devices it had */
	if (used + ndev > cap &&
	    (req != NULL || c->approved_by[0] == '\0' ||
	        (c->limit_at_ms > 0 && ndev > c->limit_n))) {
		struct approval_rec a;
		size_t len = 0;
		rc = fbxi_approval_token(c, token, sizeof(token));
		if (rc != FBX_OK) {
			/* never an empty token an approval could match */
			FBX_LOGE("org %s: approval token not computed: %s",
			    c->org, fbx_strerror(rc));
			return rc;
		}
		if (req != NULL && req->approval[0] != '\0') {
			const char *why = NULL;
			int self = 0;
			snprintf(key, sizeof(key), "appr/%s/%s", c->org, token);
			rc = fbx_store_kv_get(e->txn, key, &a, sizeof(a), &len);
			if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
				return rc;
			if (strcmp(req->approval, token) != 0)
				why = "the approval was given for a different "
				      "command";
			else if (rc == FBX_ENOT_FOUND || len != sizeof(a))
				why = "no approval with this token";
			else if (a.used)
				why = "the approval was already used";
			else if (a.expires_ms <= e->now)
				why = "the approval has expired";
			else if ((self = strcmp(a.approver, req->actor) == 0))
				why = "the approver submitted it: a second, "
				      "different operator must approve";
			if (why != NULL) {
				if (self)
					fbxi_auth_refuse_audit(e, c->org,
					    req->actor, "submit",
					    "a submit approved by its own "
					    "submitter");
				fbxi_console_error(e, in, req->request_id, req->kind,
				    FBX_EAPPROVAL_INVALID, "%s", why);
				return FBX_EAPPROVAL_INVALID;
			}
			a.used = 1;
			rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
			if (rc != FBX_OK)
				return rc;
			snprintf(c->approved_by, sizeof(c->approved_by), "%s",
			    a.approver);
			FBX_LOGI("org %s: %s of %u devices over its limit %u "
			         "admitted: submitted by %s, approved by %s",
			    c->org, fbx_cmd_type_name(c->type), ndev, cap,
			    req->actor, a.approver);
		} else if (req != NULL) {
			struct fbx_console_rep rep;
			memset(&a, 0, sizeof(a));
			a.version = 1;
			a.at_ms = e->now;
			a.count = used + ndev;
			a.cap = cap;
			snprintf(a.submitter, sizeof(a.submitter), "%s",
			    req->actor);
			snprintf(key, sizeof(key), "rej/%s/%s", c->org, token);
			rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
			if (rc != FBX_OK)
				return rc;
			memset(&rep, 0, sizeof(rep));
			rep.request_id = req->request_id;
			rep.kind = req->kind;
			rep.err = FBX_ELIMIT_EXCEEDED;
			snprintf(rep.approval_token, sizeof(rep.approval_token),
			    "%s", token);
			rep.limit_value = cap;
			rep.limit_count = used + ndev;
			snprintf(rep.errmsg, sizeof(rep.errmsg),
			    "%s of %u devices: %llu already affected in the "
			    "last %us + %u > limit %u; a second operator "
			    "may approve: fuseboxctl approve %s",
			    fbx_cmd_type_name(c->type), ndev,
			    (unsigned long long)used, cfg.window_s, ndev, cap,
			    token);
			fbxi_console_reply(e, in, &rep);
			fbxi_audit(e, c->org, req->actor, "submit.refused", NULL,
			    "{\"type\":\"%s\",\"devices\":%u,\"used\":%llu,"
			    "\"limit\":%u,\"token\":\"%s\"}",
			    fbx_cmd_type_name(c->type), ndev,
			    (unsigned long long)used, cap, token);
			emit_event(e, FBX_EV_LIMIT_REJECTED, c->org,
			    fbxi_reason_of(c), req->actor, 0, used + ndev, cap,
			    "%s refused: %u devices over the blast-radius "
			    "limit",
			    fbx_cmd_type_name(c->type), ndev);
			return FBX_ELIMIT_EXCEEDED;
		} else {
			return FBX_ELIMIT_EXCEEDED;
		}
	}
	return limit_move(e, c, &u, already, where, ndev);
}

/* fbxi_limit_settled - a settling command leaves for its devices now
 * (its settle window ended, or its staged wave after a reset is due).
 * Its devices are counted as they are now (*ndev), since that is what
 * its expansion begins with (devices enrolled while it expands are not
 * counted). What the window still holds of its count moves to now's
 * bucket, so that it ages from when its devices are reached; it is not
 * checked against the limit again (admitted within it, it was counted
 * when the commands after it were judged, and a cap lowered since
 * applies to those after), unless its target grew while it settled
 * (devices enrolled into its group or organisation, or moved to its
 * platform; a list of devices without a platform filter cannot grow and
 * is not read again): the devices it was not admitted for are not let
 * past the limit uncounted, so it is checked whole as it stands then,
 * also when a second operator approved it (for the devices it had). A
 * count the window no longer holds (it settled longer than the limit's
 * window, the window was changed twice since), or none (no limit when
 * it was admitted, a record older than v4), is made now in full,
 * through the limit as it stands, unless a second operator approved it
 * over the limit. @return FBX_OK
 * (counted, or no limit on the type now); FBX_ELIMIT_EXCEEDED with
 * *would (the devices the window would reach) and *cap when counting it
 * would pass the limit (the caller discards it: it reached no device);
 * or a store error. */
int
fbxi_limit_settled(struct fbx_engine *e, struct fbx_command *c,
    uint64_t *would, uint32_t *cap, uint32_t *ndev)
{
	struct fbxi_limit_cfg cfg;
	struct count_ctx k;
	struct limit_use u;
	uint64_t used;
	uint32_t fleet = 0, already;
	int64_t where = 0;
	int own, grown, rc;

	rc = fbxi_limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc != FBX_OK)
		return rc;
	rc = fbx_store_org_devices(e->txn, c->org, &fleet);
	if (rc != FBX_OK && rc != FBX_EUNKNOWN_ORG)
		return rc;
	*cap = fbxi_limit_cap(&cfg, fleet);
	*ndev = 0;
	if (*cap == UINT32_MAX)
		return FBX_OK; /* no limit on the type now */
	memset(&k, 0, sizeof(k));
	if (c->limit_at_ms > 0 && c->target_kind == FBX_TARGET_DEVICES &&
	    c->platform == FBX_PLATFORM_ANY) {
		/* devices it names, every one enrolled when it was admitted:
		 * it cannot grow (one removed since only makes the count
		 * err toward refusing); not read again, as a storm of
		 * single-device locks would do thousands of times */
		k.n = c->limit_n;
	} else {
		/* its devices as they are now: what its expansion reaches */
		rc = fbxi_target_count(e, c, fleet, &k);
		if (rc != FBX_OK)
			return rc;
	}
	*ndev = k.n;
	grown = c->limit_at_ms > 0 && k.n > c->limit_n;
	rc = limit_use_get(
	    e->txn, c->org, c->type, cfg.window_s, cfg.changed_ms, e->now, &u);
	if (rc != FBX_OK)
		return rc;
	used = limit_used(c, &u, e->now, &already, &where);
	/* still counted, and no more devices than counted: it was admitted
	 * within the limit, and what came after it was judged with it
	 * counted (a refusal's "already affected", an approval over it); it
	 * goes out. Counted again, it passes the limit as it stands (not
	 * one a second operator approved over it); grown, it does even if
	 * approved (the approver approved the devices it had then) */
	if ((grown || (already == 0 && c->approved_by[0] == '\0')) &&
	    used + k.n > *cap) {
		*would = used + k.n;
		return FBX_ELIMIT_EXCEEDED;
	}
	return limit_move(e, c, &u, already, where, k.n);
}

/* fbxi_limit_uncount - a held or settling command discarded: none of its
 * deliveries exists, it reached no device, so what the window still
 * counts of it is taken back out (a later lock is not refused for it).
 * Clears the command's record of its count. @return FBX_OK or a store
 * error. */
int
fbxi_limit_uncount(struct fbx_engine *e, struct fbx_command *c)
{
	struct fbxi_limit_cfg cfg;
	struct limit_use u;
	uint32_t n;
	int64_t where = 0;
	int own, rc;

	if (c->limit_at_ms <= 0 || c->limit_n == 0)
		return FBX_OK;
	/* the record under the window in force (a count carried over a
	 * window change is found there too) */
	rc = fbxi_limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc == FBX_OK)
		rc = limit_use_get(e->txn, c->org, c->type, cfg.window_s,
		    cfg.changed_ms, e->now, &u);
	if (rc != FBX_OK)
		return rc;
	n = limit_counted(c, &u, e->now, &where);
	if (n > 0) {
		fbxi_window_sub(&u.w, where, e->now, n);
		rc = limit_use_save(e->txn, c->org, c->type, &u);
		if (rc != FBX_OK)
			return rc;
	}
	c->limit_at_ms = 0;
	c->limit_n = 0;
	c->limit_window_s = 0;
	c->limit_gen = 0;
	return FBX_OK;
}

/* limit_over - would ndev more devices pass the blast-radius limit? */
int
fbxi_limit_over(struct fbx_engine *e, const struct fbx_command *c, uint32_t ndev,
    uint32_t fleet, int *over)
{
	struct fbxi_limit_cfg cfg;
	struct fbxi_window w;
	int own, rc;

	*over = 0;
	rc = fbxi_limit_cfg_load(e->txn, c->org, c->type, &cfg, &own);
	if (rc == FBX_OK)
		rc = fbxi_limit_use_load(
		    e->txn, c->org, c->type, cfg.window_s, cfg.changed_ms, e->now, &w);
	if (rc != FBX_OK)
		return rc;
	*over = fbxi_window_sum(&w, e->now) + ndev > fbxi_limit_cap(&cfg, fleet);
	return FBX_OK;
}

void
fbxi_handle_limit(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_limit_info rows[FBX_CMD_TYPE_COUNT];
	size_t n = 0;
	uint32_t fleet = 0;
	int rc = fbx_store_org_devices(e->txn, req->org, &fleet);

	if (rc != FBX_OK && rc != FBX_EUNKNOWN_ORG)
		goto fail;
	if (req->u.limit.set) {
		struct fbxi_limit_cfg cfg;
		const struct fbx_limit_info *li = &req->u.limit.lim;
		char key[FBX_KV_KEY_MAX];
		if (li->type <= FBX_CMD_NONE || li->type >= FBX_CMD_TYPE_COUNT) {
			fbxi_console_error(e, in, req->request_id, req->kind,
			    FBX_EINVAL, "unknown command type");
			return;
		}
		struct fbxi_limit_cfg was;
		int wown = 0;
		/* the window's change time: kept when the window in force
		 * for this scope stays (a use record still kept under an
		 * older window is carried over as of its change) */
		rc = fbxi_limit_cfg_load(e->txn,
		    req->u.limit.global ? "*" : req->org, li->type, &was,
		    &wown);
		if (rc != FBX_OK)
			goto fail;
		memset(&cfg, 0, sizeof(cfg));
		cfg.version = FBXI_LIM_VERSION;
		cfg.max_count = li->max_count;
		cfg.max_share_ppm = li->max_share_ppm > FBX_PPM
		    ? FBX_PPM
		    : li->max_share_ppm;
		cfg.window_s = li->window_s ? li->window_s : 3600;
		cfg.changed_ms =
		    cfg.window_s == was.window_s ? was.changed_ms : e->now;
		snprintf(key, sizeof(key), "limcfg/%s/%s",
		    req->u.limit.global ? "*" : req->org,
		    fbx_cmd_type_name(li->type));
		rc = fbx_store_kv_put(e->txn, key, &cfg, sizeof(cfg));
		if (rc == FBX_OK && cfg.window_s != was.window_s)
			rc = limit_carry_now(e,
			    req->u.limit.global ? "*" : req->org, li->type,
			    &was, cfg.window_s);
		if (rc != FBX_OK)
			goto fail;
		fbxi_audit(e, req->u.limit.global ? "*" : req->org, req->actor,
		    "limit.set", NULL,
		    "{\"limit\":\"%s\",\"max_count\":%u,\"max_share_ppm\":%u,"
		    "\"window_s\":%u}",
		    key, cfg.max_count, cfg.max_share_ppm, cfg.window_s);
		FBX_LOGI("limit %s set by %s: %u devices, %u ppm, per %us", key,
		    req->actor, cfg.max_count, cfg.max_share_ppm, cfg.window_s);
	}
	for (int t = 1; t < FBX_CMD_TYPE_COUNT; t++) {
		struct fbxi_limit_cfg cfg;
		struct fbxi_window w;
		int own = 0;
		const char *scope = req->u.limit.global ? "*" : req->org;
		rc = fbxi_limit_cfg_load(e->txn, scope, t, &cfg, &own);
		if (rc == FBX_OK)
			rc = fbxi_limit_use_load(
			    e->txn, req->org, t, cfg.window_s, cfg.changed_ms, e->now, &w);
		if (rc != FBX_OK)
			goto fail;
		memset(&rows[n], 0, sizeof(rows[n]));
		snprintf(rows[n].org, sizeof(rows[n].org), "%s",
		    own ? req->org : "*");
		rows[n].type = (uint8_t)t;
		rows[n].max_count = cfg.max_count;
		rows[n].max_share_ppm = cfg.max_share_ppm;
		rows[n].window_s = cfg.window_s;
		rows[n].used = req->u.limit.global ? 0 : fbxi_window_sum(&w, e->now);
		n++;
	}
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.limit.l = rows;
	rep.u.limit.n = n;
	fbxi_console_reply(e, in, &rep);
	return;
fail:
	fbxi_set_err(e, rc);
}

void
fbxi_handle_rate(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct fbx_rate_info rows[2];
	struct orgq *q = fbxi_orgq_get(e, req->org);
	int rc;

	if (q == NULL) {
		fbxi_set_err(e, FBX_ENOMEM);
		return;
	}
	if (req->u.rate.set) {
		struct fbx_rate_info ri = req->u.rate.rate;
		snprintf(ri.org, sizeof(ri.org), "%s",
		    req->u.rate.global ? "*" : req->org);
		rc = fbxi_rate_save(e->txn, &ri);
		if (rc != FBX_OK) {
			fbxi_set_err(e, rc);
			return;
		}
		if (req->u.rate.global) {
			e->grate = ri;
			memset(&e->gbucket, 0, sizeof(e->gbucket));
		} else {
			q->rate = ri;
			q->rate_loaded = 1;
			memset(&q->bucket, 0, sizeof(q->bucket));
		}
		fbxi_audit(e, ri.org, req->actor, "rate.set", NULL,
		    "{\"scope\":\"%s\",\"rate_per_s\":%u,\"burst\":%u,"
		    "\"max_inflight\":%u}",
		    ri.org, ri.rate_per_s, ri.burst, ri.max_inflight);
		FBX_LOGI("rate caps of %s set by %s: %u/s burst %u, %u in "
		         "flight",
		    ri.org, req->actor, ri.rate_per_s, ri.burst,
		    ri.max_inflight);
	}
	fbxi_orgq_load_rate(e, q);
	rows[0] = q->rate;
	snprintf(rows[0].org, sizeof(rows[0].org), "%s", req->org);
	rows[0].inflight = q->inflight;
	rows[1] = e->grate;
	snprintf(rows[1].org, sizeof(rows[1].org), "*");
	rows[1].inflight = (uint32_t)e->inflight_all;
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.rate.r = rows;
	rep.u.rate.n = 2;
	fbxi_console_reply(e, in, &rep);
}

void
fbxi_handle_approve(
    struct fbx_engine *e, const struct inmsg *in, struct fbx_console_req *req)
{
	struct fbx_console_rep rep;
	struct approval_rec a;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "rej/%s/%s", req->org, req->u.approve.token);
	rc = fbx_store_kv_get(e->txn, key, &a, sizeof(a), &len);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && len != sizeof(a))) {
		fbxi_console_error(e, in, req->request_id, req->kind, FBX_ENOT_FOUND,
		    "no refused command with token %s in organisation '%s'",
		    req->u.approve.token, req->org);
		return;
	}
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	if (strcmp(a.submitter, req->actor) == 0) {
		/* the two-person rule: a stolen key's likely try, so it is
		 * audited and counted like a refusal of the key's rights */
		fbxi_auth_refuse_audit(e, req->org, req->actor, "approve",
		    "an approval of its own submit");
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EAPPROVAL_INVALID,
		    "%s submitted this command; a different operator must "
		    "approve it",
		    req->actor);
		return;
	}
	snprintf(a.approver, sizeof(a.approver), "%s", req->actor);
	snprintf(a.note, sizeof(a.note), "%s", req->u.approve.note);
	a.used = 0;
	a.expires_ms = e->now + (int64_t)e->o.approval_ttl_s * 1000;
	snprintf(key, sizeof(key), "appr/%s/%s", req->org, req->u.approve.token);
	rc = fbx_store_kv_put(e->txn, key, &a, sizeof(a));
	if (rc != FBX_OK) {
		fbxi_set_err(e, rc);
		return;
	}
	fbxi_audit(e, req->org, req->actor, "approve", req->u.approve.note,
	    "{\"token\":\"%s\",\"submitter\":\"%s\",\"devices\":%llu,"
	    "\"limit\":%llu,\"expires_ms\":%lld}",
	    req->u.approve.token, a.submitter, (unsigned long long)a.count,
	    (unsigned long long)a.cap, (long long)a.expires_ms);
	FBX_LOGI("org %s: %s approved %s's refused command %s (%llu devices "
	         "against limit %llu): %s",
	    req->org, req->actor, a.submitter, req->u.approve.token,
	    (unsigned long long)a.count, (unsigned long long)a.cap, a.note);
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	snprintf(rep.u.approve.token, sizeof(rep.u.approve.token), "%s",
	    req->u.approve.token);
	snprintf(rep.u.approve.approver, sizeof(rep.u.approve.approver), "%s",
	    req->actor);
	snprintf(rep.u.approve.submitter, sizeof(rep.u.approve.submitter),
	    "%s", a.submitter);
	rep.u.approve.expires_ms = a.expires_ms;
	fbxi_console_reply(e, in, &rep);
}
