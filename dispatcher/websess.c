/*
 * websess.c: web console session tokens (issue 12). A token is 256
 * random bits (OpenSSL RAND_bytes) shown once, in hex, to the principal
 * that asked for it over CURVE; the table keeps only its SHA-256, the
 * principal's name and key, and the expiry. The HTTP threads look tokens
 * up under the table's mutex; whether the key still holds (not revoked,
 * not rotated) is checked against the principals' table by the caller,
 * and again by the engine on every request the token makes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "engine_int.h"
#include "websess.h"

struct sess {
	uint8_t hash[32]; /* SHA-256 of the token's hex text */
	char user[FBX_ID_MAX + 1];
	char key[41];
	int64_t expires_ms; /* wall clock */
	int64_t minted_ms;
	int claimed; /* the page exchanged the login address's token */
	char sid[17]; /* the id web.login audited: its first token's hash */
};

struct fbxi_websess {
	pthread_mutex_t mu;
	struct sess *v; /* under mu */
	size_t n, cap;
};

int
fbxi_websess_new(struct fbxi_websess **out)
{
	struct fbxi_websess *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return FBX_ENOMEM;
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		free(w);
		return FBX_ENOMEM;
	}
	*out = w;
	return FBX_OK;
}

void
fbxi_websess_free(struct fbxi_websess *w)
{
	if (w == NULL)
		return;
	pthread_mutex_destroy(&w->mu);
	if (w->v != NULL)
		OPENSSL_cleanse(w->v, w->cap * sizeof(*w->v));
	free(w->v);
	free(w);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* token_hash - SHA-256 of a token's text; -1 if it is not 64 hex
 * digits (then nothing is hashed: a malformed token is never found) */
static int
token_hash(const char *token, uint8_t out[32])
{
	unsigned int len = 0;

	if (token == NULL || strlen(token) != FBX_WEB_TOKEN_LEN ||
	    strspn(token, "0123456789abcdef") != FBX_WEB_TOKEN_LEN)
		return -1;
	if (EVP_Digest(token, FBX_WEB_TOKEN_LEN, out, &len, EVP_sha256(),
	        NULL) != 1 ||
	    len != 32)
		return -1;
	return 0;
}

/* drop_at - remove entry i (under mu) */
static void
drop_at(struct fbxi_websess *w, size_t i)
{
	w->v[i] = w->v[w->n - 1];
	OPENSSL_cleanse(&w->v[w->n - 1], sizeof(w->v[0]));
	w->n--;
}

/* websess_add - keep a new session (engine thread): expired ones go
 * first; a principal holds at most FBX_WEB_SESSIONS_PER_PRINCIPAL, its
 * own oldest going for a new one; no principal's login ever ends
 * another's session: with the table full of others' sessions the login
 * is refused (FBX_EBUSY) */
static int
websess_add(struct fbxi_websess *w, const struct sess *s, int64_t now)
{
	int rc = FBX_OK;
	size_t mine = 0, old = (size_t)-1;

	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n;) {
		if (w->v[i].expires_ms <= now)
			drop_at(w, i);
		else
			i++;
	}
	for (size_t i = 0; i < w->n; i++) {
		if (strcmp(w->v[i].user, s->user) != 0)
			continue;
		mine++;
		if (old == (size_t)-1 || w->v[i].minted_ms < w->v[old].minted_ms)
			old = i;
	}
	if (mine >= FBX_WEB_SESSIONS_PER_PRINCIPAL && old != (size_t)-1)
		drop_at(w, old);
	else if (w->n >= FBX_WEB_SESSIONS_MAX) {
		rc = FBX_EBUSY;
		goto out;
	}
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 16;
		struct sess *p = realloc(w->v, ncap * sizeof(*p));
		if (p == NULL) {
			rc = FBX_ENOMEM;
			goto out;
		}
		w->v = p;
		w->cap = ncap;
	}
	w->v[w->n++] = *s;
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* live_locked - the session of token hash h, if it has not expired (an
 * expired one is dropped); under mu */
static struct sess *
live_locked(struct fbxi_websess *w, const uint8_t h[32], int64_t now_ms)
{
	for (size_t i = 0; i < w->n; i++) {
		if (CRYPTO_memcmp(w->v[i].hash, h, 32) != 0)
			continue;
		if (w->v[i].expires_ms <= now_ms) {
			drop_at(w, i);
			return NULL;
		}
		return &w->v[i];
	}
	return NULL;
}

/* lookup - a copy of token's live session in *out, dropped from the
 * table with drop (a sign out). @return FBX_OK; FBX_ENOT_FOUND. */
static int
lookup(struct fbxi_websess *w, const char *token, int64_t now_ms,
    struct sess *out, int drop)
{
	uint8_t h[32];
	struct sess *s;
	int rc = FBX_ENOT_FOUND;

	if (w == NULL || token_hash(token, h) != 0)
		return FBX_ENOT_FOUND;
	pthread_mutex_lock(&w->mu);
	s = live_locked(w, h, now_ms);
	if (s != NULL) {
		*out = *s;
		if (drop)
			drop_at(w, (size_t)(s - w->v));
		rc = FBX_OK;
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int
fbxi_websess_find(struct fbxi_websess *w, const char *token, int64_t now_ms,
    char *user, size_t ul, char *key41, int64_t *expires_ms)
{
	struct sess s;
	int rc = lookup(w, token, now_ms, &s, 0);

	if (rc == FBX_OK) {
		snprintf(user, ul, "%s", s.user);
		memcpy(key41, s.key, 41);
		*expires_ms = s.expires_ms;
	}
	OPENSSL_cleanse(&s, sizeof(s));
	return rc;
}

int
fbxi_websess_claim(struct fbxi_websess *w, const char *token, int64_t now_ms,
    char fresh[FBX_WEB_TOKEN_LEN + 1])
{
	uint8_t h[32], rnd[FBX_WEB_TOKEN_LEN / 2];
	char sid[17] = "", user[FBX_ID_MAX + 1] = "";
	struct sess *s;
	int rc = FBX_ENOT_FOUND;

	if (w == NULL || token_hash(token, h) != 0)
		return FBX_ENOT_FOUND;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return FBX_ECRYPTO;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(fresh + 2 * i, 3, "%02x", rnd[i]);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	pthread_mutex_lock(&w->mu);
	s = live_locked(w, h, now_ms);
	if (s != NULL && s->claimed) {
		rc = FBX_ESTATE;
	} else if (s != NULL) {
		/* the old token (in the browser's history) is dead */
		(void)token_hash(fresh, s->hash);
		s->claimed = 1;
		snprintf(user, sizeof(user), "%s", s->user);
		memcpy(sid, s->sid, sizeof(sid));
		rc = FBX_OK;
	}
	pthread_mutex_unlock(&w->mu);
	if (rc != FBX_OK)
		OPENSSL_cleanse(fresh, FBX_WEB_TOKEN_LEN + 1);
	else /* who opened it, if its principal says it was not them */
		FBX_LOGI("web: session %s of %s opened by a page (its login "
		         "address's token exchanged)",
		    sid, user);
	return rc;
}

int
fbxi_websess_end(struct fbxi_websess *w, const char *token, int64_t now_ms,
    char *user, size_t ul, char sid[17])
{
	struct sess s;
	int rc = lookup(w, token, now_ms, &s, 1);

	if (rc == FBX_OK) {
		snprintf(user, ul, "%s", s.user);
		memcpy(sid, s.sid, 17);
	}
	OPENSSL_cleanse(&s, sizeof(s));
	return rc;
}

void
fbxi_websess_forget(struct fbxi_websess *w, const char *token)
{
	uint8_t h[32];

	if (w == NULL || token_hash(token, h) != 0)
		return;
	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < w->n; i++) {
		if (CRYPTO_memcmp(w->v[i].hash, h, sizeof(h)) == 0) {
			drop_at(w, i);
			break;
		}
	}
	pthread_mutex_unlock(&w->mu);
}

void
fbxi_handle_web_login(struct fbx_engine *e, const struct fbx_io_msg *in,
    struct fbx_console_req *req)
{
	const struct fbxi_principal *p = fbxi_auth_msg(e, in);
	struct fbx_console_rep rep;
	struct sess s;
	uint8_t rnd[FBX_WEB_TOKEN_LEN / 2];
	char token[FBX_WEB_TOKEN_LEN + 1], sid[17];
	uint32_t ttl = req->u.principal.ttl_s;
	json_t *o = NULL;
	char *line = NULL;
	int64_t now = wall_ms();
	int rc;

	if (p == NULL || p->name[0] == '\0' || e->auth == NULL ||
	    e->auth->web == NULL) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_EFORBIDDEN,
		    "a web session is for an authenticated principal");
		return;
	}
	if (e->o.web_url == NULL || e->o.web_url[0] == '\0') {
		/* no session nobody could use (and no audit of one) */
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ESTATE,
		    "this fuseboxd serves no web console: start it with "
		    "--http HOST:PORT (or http = in its configuration)");
		return;
	}
	if (ttl == 0)
		ttl = FBX_WEB_TTL_DEFAULT_S;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		fbxi_console_error(e, in, req->request_id, req->kind,
		    FBX_ECRYPTO, "no random bytes for a token");
		return;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	memset(&s, 0, sizeof(s));
	(void)token_hash(token, s.hash);
	/* the audit names the session by its hash's first 8 bytes: enough
	 * to tell sessions apart, useless to log in with */
	for (int i = 0; i < 8; i++)
		snprintf(sid + 2 * i, 3, "%02x", s.hash[i]);
	memcpy(s.sid, sid, sizeof(s.sid));
	snprintf(s.user, sizeof(s.user), "%s", p->name);
	memcpy(s.key, p->key, sizeof(s.key));
	s.minted_ms = now;
	s.expires_ms = now + (int64_t)ttl * 1000;
	o = json_pack("{s:s, s:I, s:s, s:s, s:s}", "token", token,
	    "expires_ms", (json_int_t)s.expires_ms, "principal", p->name,
	    "session", sid, "url",
	    e->o.web_url != NULL ? e->o.web_url : "");
	line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	rc = line != NULL ? websess_add(e->auth->web, &s, now) : FBX_ENOMEM;
	if (rc != FBX_OK) {
		fbxi_console_error(e, in, req->request_id, req->kind, rc,
		    rc == FBX_EBUSY ? "web login: %d sessions are live, the most "
		                      "there may be; they end as they expire"
		                    : "web login: out of memory",
		    FBX_WEB_SESSIONS_MAX);
		goto out;
	}
	fbxi_audit(e, "_auth", req->actor, "web.login", req->u.principal.note,
	    "{\"principal\":\"%s\",\"session\":\"%s\",\"ttl_s\":%u}", p->name,
	    sid, ttl);
	FBX_LOGI("web: session %s for %s, %u s", sid, p->name, ttl);
	memset(&rep, 0, sizeof(rep));
	rep.request_id = req->request_id;
	rep.kind = req->kind;
	rep.u.principal.jsonl = line;
	rep.u.principal.len = strlen(line);
	rep.u.principal.count = 1;
	fbxi_console_reply(e, in, &rep);
out:
	OPENSSL_cleanse(token, sizeof(token));
	if (line != NULL) {
		OPENSSL_cleanse(line, strlen(line));
		free(line);
	}
	json_decref(o);
	OPENSSL_cleanse(&s, sizeof(s));
}
