/*
 * audit_archive.c: audit retention: the oldest records, checked and
 * exported to archive files (fsynced) before they are deleted in slices,
 * the last one's hash kept as the anchor the chain starts from; and the
 * offline check of archive files (fuseboxd --verify-audit-archive).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "fbx_json.h"

#include "engine_int.h"
#include "audit_int.h"

/* Retention prunes the oldest records in slices. Each slice is first
 * checked (it must link to the anchor and hash right) and exported to
 * <data>/audit-archive/audit-<first>-<last>.jsonl, written to a .tmp
 * name, fsync'ed, renamed and the directory fsync'ed, all before the
 * turn's transaction that deletes the records commits. The last pruned
 * record becomes the anchor in that transaction, and an "audit.prune"
 * record names the range, the file and the anchor. An archive file
 * whose records were not pruned (the turn failed) starts at the same
 * first sequence as the next attempt, which removes it. */

/* a slice smaller than the budget waits until its oldest record is this
 * far past the cutoff, so a steady trickle makes a file a day, not one a
 * call */
#define AUDIT_PRUNE_LAG_MS (24LL * 3600 * 1000)
#define ARCH_DIR "audit-archive"
#define ARCH_LINE_MAX 16384 /* a rendered line is < 9 KiB */

struct lbuf {
	char *p;
	size_t len, cap;
	int over;
};

static void
lb_put(struct lbuf *b, const char *s, size_t n)
{
	if (b->over || b->cap - b->len < n + 1) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void lb_printf(struct lbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
lb_printf(struct lbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->over = 1;
		return;
	}
	b->len += (size_t)n;
}

/* lb_jstr - a JSON string as archives before jansson escaped it (kept
 * only to check such archives: legacy_line) */
static void
lb_jstr(struct lbuf *b, const char *s)
{
	lb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			lb_printf(b, "\\%c", c);
		else if (c < 0x20)
			lb_printf(b, "\\u%04x", c);
		else
			lb_put(b, (const char *)&c, 1);
	}
	lb_put(b, "\"", 1);
}

/* archive_json - the archive's line for record seq as a JSON object: the
 * members `fuseboxctl export` writes for an audit record, plus "rec", the
 * stored record in hex (what the hash covers). NULL if rec is malformed
 * or memory is short. */
static json_t *
archive_json(uint64_t seq, const uint8_t *rec, size_t len)
{
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	char *hex = malloc(2 * len + 1);
	json_t *o = NULL;

	if (hex == NULL || fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0) {
		free(hex);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", rec[i]);
	o = json_object();
	if (o != NULL &&
	    (fbx_json_set_str(o, "kind", "audit") != 0 ||
	        fbx_json_set_int(o, "seq", (long long)seq) != 0 ||
	        fbx_json_set_int(o, "at_ms", (long long)a.at_ms) != 0 ||
	        fbx_json_set_str(o, "org", a.org) != 0 ||
	        fbx_json_set_str(o, "actor", a.actor) != 0 ||
	        fbx_json_set_str(o, "action", a.action) != 0 ||
	        fbx_json_set_str(o, "note", a.note) != 0 ||
	        fbx_json_set(o, "params", fbx_json_params(a.params)) != 0 ||
	        fbx_json_set_str(o, "prev", a.prev) != 0 ||
	        fbx_json_set_str(o, "hash", a.hash) != 0 ||
	        fbx_json_set_str(o, "rec", hex) != 0)) {
		json_decref(o);
		o = NULL;
	}
	free(hex);
	return o;
}

/* archive_line - the archive's line for record seq (archive_json), written
 * by jansson, and a newline. @return 0, or -1 if rec is malformed. */
static int
archive_line(uint64_t seq, const uint8_t *rec, size_t len, struct lbuf *b)
{
	json_t *o = archive_json(seq, rec, len);
	size_t n;

	if (o == NULL)
		return -1;
	n = json_dumpb(o, b->p + b->len, b->cap - b->len,
	    JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (n == 0 || n + 2 > b->cap - b->len) {
		b->over = 1;
		return -1;
	}
	b->len += n;
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
	return 0;
}

/* legacy_line - the line archives written before jansson held for record
 * seq (hand-made JSON): an old line that jansson cannot read (parameters
 * cut at 511 bytes) is still checked byte for byte against it.
 * @return 0, or -1 if rec is malformed. */
static int
legacy_line(uint64_t seq, const uint8_t *rec, size_t len, struct lbuf *b)
{
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];

	if (fbxi_audit_decode(seq, rec, len, &a, prev, hash) != 0)
		return -1;
	lb_printf(b, "{\"kind\":\"audit\",\"seq\":%llu,\"at_ms\":%lld,\"org\":",
	    (unsigned long long)seq, (long long)a.at_ms);
	lb_jstr(b, a.org);
	lb_put(b, ",\"actor\":", 9);
	lb_jstr(b, a.actor);
	lb_put(b, ",\"action\":", 10);
	lb_jstr(b, a.action);
	lb_put(b, ",\"note\":", 8);
	lb_jstr(b, a.note);
	lb_printf(b, ",\"params\":%s,\"prev\":\"%s\",\"hash\":\"%s\",\"rec\":\"",
	    a.params[0] ? a.params : "{}", a.prev, a.hash);
	for (size_t i = 0; i < len; i++)
		lb_printf(b, "%02x", rec[i]);
	lb_put(b, "\"}\n", 3);
	return b->over ? -1 : 0;
}

/* chain_check - one record of a slice or an archive: it follows prev_seq,
 * links to prev_hash and hashes to what it carries. @return FBX_OK (why
 * empty: intact; else the verdict), or FBX_ECRYPTO/FBX_ENOMEM. */
static int
chain_check(uint64_t seq, const uint8_t *rec, size_t len, uint64_t prev_seq,
    const uint8_t prev_hash[32], char *why, size_t whycap)
{
	uint8_t want[32];
	int rc;

	why[0] = '\0';
	if (seq != prev_seq + 1) {
		snprintf(why, whycap, "record %llu is missing (found %llu next)",
		    (unsigned long long)(prev_seq + 1),
		    (unsigned long long)seq);
		return FBX_OK;
	}
	if (len < AUDIT_HASH_OFF + 32 || rec[0] != AUDIT_V1) {
		snprintf(why, whycap, "record %llu is malformed",
		    (unsigned long long)seq);
		return FBX_OK;
	}
	if (memcmp(rec + 1, prev_hash, 32) != 0) {
		snprintf(why, whycap,
		    "record %llu does not link to the record before it",
		    (unsigned long long)seq);
		return FBX_OK;
	}
	rc = fbxi_audit_hash(seq, rec, len, want);
	if (rc != FBX_OK)
		return rc;
	if (memcmp(want, rec + AUDIT_HASH_OFF, 32) != 0)
		snprintf(why, whycap,
		    "record %llu was altered: its hash does not match",
		    (unsigned long long)seq);
	return FBX_OK;
}

struct prune_ctx {
	uint64_t last;        /* the slice ends here */
	uint64_t seq;         /* the last record checked */
	uint8_t hash[32];     /* its hash */
	uint32_t n;
	int fd;
	int ioerr;            /* errno of a failed write */
	int err;              /* FBX_ECRYPTO / FBX_ENOMEM */
	char why[160];        /* the chain is broken */
	struct lbuf out;      /* pending bytes */
	char line[ARCH_LINE_MAX];
};

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (w == 0)
			return EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
prune_cb(void *arg, uint64_t seq, const void *rec, size_t len)
{
	struct prune_ctx *x = arg;
	struct lbuf lb = { x->line, 0, sizeof(x->line), 0 };

	if (seq > x->last)
		return 1;
	x->err = chain_check(seq, rec, len, x->seq, x->hash, x->why,
	    sizeof(x->why));
	if (x->err != FBX_OK || x->why[0] != '\0')
		return 1;
	if (archive_line(seq, rec, len, &lb) != 0) {
		snprintf(x->why, sizeof(x->why), "record %llu is malformed",
		    (unsigned long long)seq);
		return 1;
	}
	if (x->out.cap - x->out.len <= lb.len) {
		x->ioerr = write_all(x->fd, x->out.p, x->out.len);
		x->out.len = 0;
		if (x->ioerr != 0)
			return 1;
	}
	lb_put(&x->out, lb.p, lb.len);
	x->seq = seq;
	memcpy(x->hash, (const uint8_t *)rec + AUDIT_HASH_OFF, 32);
	x->n++;
	return seq == x->last;
}

static int
fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rc = errno;
	close(fd);
	return rc;
}

/* arch_clean - remove archive files (and .tmp files) that start at
 * sequence first: written by a slice whose turn did not commit, so the
 * records are still in the store. @return 0 or an errno. */
static int
arch_clean(const char *dir, uint64_t first)
{
	char pfx[64], path[PATH_MAX];
	struct dirent *d;
	DIR *dp = opendir(dir);
	size_t pl;
	int rc = 0;

	if (dp == NULL)
		return errno;
	pl = (size_t)snprintf(pfx, sizeof(pfx), "audit-%020llu-",
	    (unsigned long long)first);
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, pfx, pl) != 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		        d->d_name) >= sizeof(path))
			continue;
		if (unlink(path) != 0 && errno != ENOENT)
			rc = errno;
	}
	closedir(dp);
	return rc;
}

/* arch_write - export records [first, last] to the archive, checking
 * the chain from anchor as it goes. On success `file` is the archive's
 * name (inside ARCH_DIR) and it is durable. @return FBX_OK; FBX_ECORRUPT
 * (the chain is broken: why says where; nothing written); FBX_EIO or
 * FBX_EDISK_FULL (why says what); FBX_ECRYPTO, FBX_ENOMEM; a store
 * error. */
static int
arch_write(struct fbx_engine *e, const struct fbx_audit_mark *anchor,
    uint64_t first, uint64_t last, char *file, size_t filecap, char *why,
    size_t whycap)
{
	char dir[PATH_MAX - 128], tmp[PATH_MAX + 8], path[PATH_MAX], name[96];
	struct prune_ctx *x = NULL;
	const char *step = "", *obj = dir;
	int rc = FBX_OK, en = 0;

	why[0] = '\0';
	if (e->o.data_dir == NULL ||
	    (size_t)snprintf(dir, sizeof(dir), "%s/" ARCH_DIR,
	        e->o.data_dir) >= sizeof(dir))
		return FBX_EINVALID;
	snprintf(name, sizeof(name), "audit-%020llu-%020llu.jsonl",
	    (unsigned long long)first, (unsigned long long)last);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	        sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return FBX_EINVALID;
	x = malloc(sizeof(*x) + (1u << 20));
	if (x == NULL)
		return FBX_ENOMEM;
	memset(x, 0, sizeof(*x));
	x->out.p = (char *)(x + 1);
	x->out.cap = 1u << 20;
	x->last = last;
	x->seq = anchor->seq;
	memcpy(x->hash, anchor->hash, 32);
	x->fd = -1;
	if (mkdir(dir, 0750) == 0) {
		step = "fsync the data directory";
		obj = e->o.data_dir;
		if ((en = fsync_dir(e->o.data_dir)) != 0)
			goto ioerr;
	} else if (errno != EEXIST) {
		en = errno;
		step = "create the directory";
		goto ioerr;
	}
	step = "remove an unpruned archive";
	if ((en = arch_clean(dir, first)) != 0)
		goto ioerr;
	step = "create";
	obj = tmp;
	x->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (x->fd < 0) {
		en = errno;
		goto ioerr;
	}
	rc = fbx_store_audit_scan(e->txn, first, prune_cb, x);
	if (rc == FBX_ENOT_FOUND)
		rc = FBX_OK;
	if (rc == FBX_OK)
		rc = x->err;
	if (rc != FBX_OK)
		goto out;
	if (x->why[0] == '\0' && x->ioerr == 0 && x->seq != last)
		snprintf(x->why, sizeof(x->why), "the log ends at %llu, "
		    "before %llu", (unsigned long long)x->seq,
		    (unsigned long long)last);
	if (x->why[0] != '\0') {
		snprintf(why, whycap, "%s", x->why);
		rc = FBX_ECORRUPT;
		goto out;
	}
	step = "write";
	if ((en = x->ioerr) != 0)
		goto ioerr;
	if ((en = write_all(x->fd, x->out.p, x->out.len)) != 0)
		goto ioerr;
	step = "fsync";
	if (fsync(x->fd) != 0) {
		en = errno;
		goto ioerr;
	}
	step = "close";
	rc = close(x->fd);
	x->fd = -1;
	if (rc != 0) {
		en = errno;
		rc = FBX_OK;
		goto ioerr;
	}
	step = "rename";
	if (rename(tmp, path) != 0) {
		en = errno;
		goto ioerr;
	}
	step = "fsync the directory";
	obj = dir;
	if ((en = fsync_dir(dir)) != 0)
		goto ioerr;
	snprintf(file, filecap, "%s/%s", ARCH_DIR, name);
	rc = FBX_OK;
	goto out;
ioerr:
	snprintf(why, whycap, "cannot %s %.100s: %.60s", step, obj,
	    strerror(en));
	rc = en == ENOSPC || en == EDQUOT ? FBX_EDISK_FULL : FBX_EIO;
out:
	if (x->fd >= 0)
		close(x->fd);
	if (rc != FBX_OK) {
		(void)unlink(tmp);
		(void)unlink(path);
	}
	free(x);
	return rc;
}

int
fbxi_audit_prune_slice(struct fbx_engine *e, int64_t cutoff_ms,
    uint32_t budget, uint32_t *pruned)
{
	struct fbx_audit_mark anchor, cp;
	uint8_t rec[AUDIT_MAX];
	struct fbx_audit_rec a;
	uint8_t prev[32], hash[32];
	uint64_t first = 0, end = 0, last;
	uint32_t n = 0;
	size_t len = 0;
	char file[160], why[200], ah[65];
	int rc;

	if (e == NULL || e->txn == NULL || pruned == NULL || budget == 0)
		return FBX_EINVALID;
	if (budget > FBX_AUDIT_PRUNE_SLICE)
		budget = FBX_AUDIT_PRUNE_SLICE;
	rc = fbx_store_audit_first(e->txn, &first);
	if (rc == FBX_ENOT_FOUND) {
		*pruned = 0;
		return FBX_OK;
	}
	if (rc == FBX_OK)
		rc = fbx_store_audit_time_seq(e->txn, cutoff_ms, &end);
	if (rc != FBX_OK)
		goto store_err;
	if (end > e->audit_seq + 1)
		end = e->audit_seq + 1;
	if (end <= first) {
		*pruned = 0; /* nothing older than the cutoff */
		return FBX_OK;
	}
	last = end - first > budget ? first + budget - 1 : end - 1;
	if (last - first + 1 < budget) {
		/* a short slice waits for its oldest record to age a lag */
		rc = fbx_store_audit_get(e->txn, first, rec, sizeof(rec), &len);
		if (rc != FBX_OK)
			goto store_err;
		if (fbxi_audit_decode(first, rec, len, &a, prev, hash) == 0 &&
		    a.at_ms >= cutoff_ms - AUDIT_PRUNE_LAG_MS) {
			*pruned = 0;
			return FBX_OK;
		}
	}
	memset(&anchor, 0, sizeof(anchor));
	rc = fbx_store_audit_mark_get(e->txn, FBX_AUDIT_ANCHOR, &anchor);
	if (rc != FBX_OK && rc != FBX_ENOT_FOUND)
		goto store_err;
	if (anchor.seq + 1 != first) {
		FBX_LOGE("audit retention: the log starts at %llu but the "
		         "anchor is %llu; nothing pruned",
		    (unsigned long long)first, (unsigned long long)anchor.seq);
		return FBX_ECORRUPT;
	}
	rc = arch_write(e, &anchor, first, last, file, sizeof(file), why,
	    sizeof(why));
	if (rc == FBX_ECORRUPT) {
		FBX_LOGE("audit retention: chain broken (%s); nothing pruned, "
		         "run audit verify --full",
		    why);
		return rc;
	}
	if (rc == FBX_EIO || rc == FBX_EDISK_FULL) {
		FBX_LOGW("audit retention: records %llu..%llu not archived "
		         "(%s); nothing pruned",
		    (unsigned long long)first, (unsigned long long)last, why);
		return rc;
	}
	if (rc != FBX_OK) {
		if (rc == FBX_ECRYPTO || rc == FBX_ENOMEM ||
		    rc == FBX_EINVALID) {
			FBX_LOGW("audit retention: records %llu..%llu not "
			         "archived (%s); nothing pruned",
			    (unsigned long long)first,
			    (unsigned long long)last, fbx_strerror(rc));
			return rc;
		}
		goto store_err;
	}
	/* the archive is durable: delete, anchor, checkpoint, audit */
	rc = fbx_store_audit_prune(e->txn, last, budget, &n);
	if (rc == FBX_OK)
		rc = fbx_store_audit_mark_get(e->txn, FBX_AUDIT_ANCHOR, &anchor);
	if (rc != FBX_OK)
		goto store_err;
	rc = fbx_store_audit_mark_get(e->txn, FBX_AUDIT_VERIFIED, &cp);
	if (rc == FBX_ENOT_FOUND || (rc == FBX_OK && cp.seq < anchor.seq))
		rc = fbx_store_audit_mark_put(e->txn, FBX_AUDIT_VERIFIED,
		    &anchor); /* the prune checked what verify had not */
	if (rc != FBX_OK)
		goto store_err;
	fbxi_audit_hex32(anchor.hash, ah);
	fbxi_audit(e, "*", "engine", "audit.prune", NULL,
	    "{\"first\":%llu,\"last\":%llu,\"records\":%u,\"archive\":\"%s\","
	    "\"anchor\":\"%s\"}",
	    (unsigned long long)first, (unsigned long long)last, n, file, ah);
	if (fbxi_err(e) != FBX_OK)
		return fbxi_err(e);
	FBX_LOGI("audit retention: records %llu..%llu archived to %s and "
	         "pruned; anchor %llu",
	    (unsigned long long)first, (unsigned long long)last, file,
	    (unsigned long long)anchor.seq);
	*pruned = n;
	return FBX_OK;
store_err:
	fbxi_set_err(e, rc);
	return rc;
}

/* --------------------------------------------- offline archive check */

/* jfield_str - the raw text of "key":"..." or "key":... in a line (no
 * unescaping: only used for seq and rec, which need none). */
static const char *
jfield_raw(const char *line, size_t len, const char *key, size_t *vlen)
{
	char pat[32];
	size_t pl = (size_t)snprintf(pat, sizeof(pat), "\"%s\":", key);

	for (size_t i = 0; i + pl <= len; i++) {
		if (memcmp(line + i, pat, pl) == 0) {
			const char *v = line + i + pl, *end = line + len;
			size_t n = 0;
			if (v < end && *v == '"') {
				v++;
				while (v + n < end && v[n] != '"')
					n++;
			} else {
				while (v + n < end && v[n] != ',' &&
				    v[n] != '}')
					n++;
			}
			*vlen = n;
			return v;
		}
	}
	return NULL;
}

int
fbxi_audit_archive_check(FILE *f, struct fbxi_archive_check *c)
{
	char *line = NULL, render[ARCH_LINE_MAX];
	size_t cap = 0;
	uint8_t rec[AUDIT_MAX];
	int rc = FBX_OK, same;
	json_t *parsed = NULL;
	const char *recx = NULL;

	if (f == NULL || c == NULL)
		return FBX_EINVALID;
	c->line = 0;
	while (c->why[0] == '\0') {
		struct lbuf lb = { render, 0, sizeof(render), 0 };
		uint8_t zero[32];
		const char *v;
		size_t vl = 0, rl = 0;
		uint64_t seq = 0;
		ssize_t n;

		errno = 0;
		n = getline(&line, &cap, f);
		if (n < 0) {
			if (ferror(f))
				rc = FBX_EIO;
			break;
		}
		c->line++;
		json_decref(parsed);
		parsed = json_loadb(line, (size_t)n, 0, NULL);
		if (parsed != NULL) {
			json_t *s = json_object_get(parsed, "seq");
			const char *r =
			    json_string_value(json_object_get(parsed, "rec"));
			v = json_is_integer(s) && json_integer_value(s) > 0
			    ? "" : NULL;
			vl = v != NULL ? 1 : 0;
			seq = v != NULL ? (uint64_t)json_integer_value(s) : 0;
			recx = r;
		} else {
			/* an archive from before jansson: read as it was */
			v = jfield_raw(line, (size_t)n, "seq", &vl);
			for (size_t i = 0; v != NULL && i < vl && i < 20; i++) {
				if (v[i] < '0' || v[i] > '9') {
					v = NULL;
					break;
				}
				seq = seq * 10 + (uint64_t)(v[i] - '0');
			}
			if (vl > 19)
				v = NULL;
			recx = NULL;
		}
		if (v == NULL || vl == 0 || seq == 0) {
			snprintf(c->why, sizeof(c->why),
			    "line %llu has no sequence",
			    (unsigned long long)c->line);
			c->broken_at = c->last_seq + 1;
			break;
		}
		if (parsed != NULL) {
			v = recx;
			vl = recx != NULL ? strlen(recx) : 0;
		} else {
			v = jfield_raw(line, (size_t)n, "rec", &vl);
		}
		if (v == NULL || fbxi_audit_unhex(v, vl, rec, sizeof(rec), &rl) != 0) {
			snprintf(c->why, sizeof(c->why),
			    "record %llu (line %llu) has no readable rec",
			    (unsigned long long)seq,
			    (unsigned long long)c->line);
			c->broken_at = seq;
			break;
		}
		if (c->records == 0) {
			/* the start: seq 1 links to zeros, a later start to
			 * whatever the previous archive ended with */
			memset(zero, 0, sizeof(zero));
			if (rl >= AUDIT_HASH_OFF)
				memcpy(c->first_prev, rec + 1, 32);
			if (seq == 1 && rl >= AUDIT_HASH_OFF &&
			    memcmp(rec + 1, zero, 32) != 0) {
				snprintf(c->why, sizeof(c->why),
				    "record 1 does not start the chain");
				c->broken_at = 1;
				break;
			}
			c->first_seq = seq;
			c->last_seq = seq - 1;
			memcpy(c->last_hash, c->first_prev, 32);
		}
		rc = chain_check(seq, rec, rl, c->last_seq, c->last_hash,
		    c->why, sizeof(c->why));
		if (rc != FBX_OK)
			break;
		if (c->why[0] != '\0') {
			c->broken_at = seq;
			break;
		}
		/* the readable fields must be exactly what rec says: as JSON
		 * values (any writer's escaping), or byte for byte for an old
		 * line jansson cannot read */
		if (parsed != NULL) {
			json_t *want = archive_json(seq, rec, rl);
			same = want != NULL && json_equal(want, parsed);
			json_decref(want);
		} else {
			same = legacy_line(seq, rec, rl, &lb) == 0 &&
			    lb.len == (size_t)n &&
			    memcmp(lb.p, line, lb.len) == 0;
		}
		if (!same) {
			snprintf(c->why, sizeof(c->why),
			    "record %llu (line %llu): the line does not match "
			    "its record",
			    (unsigned long long)seq,
			    (unsigned long long)c->line);
			c->broken_at = seq;
			break;
		}
		c->records++;
		c->last_seq = seq;
		memcpy(c->last_hash, rec + AUDIT_HASH_OFF, 32);
	}
	json_decref(parsed);
	free(line);
	return rc;
}

int
fbx_audit_archive_verify(const char *const *files, size_t n, FILE *out)
{
	struct fbxi_archive_check c;
	char fp[65], lh[65];
	int rc = FBX_OK;

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < n && c.why[0] == '\0'; i++) {
		FILE *f = fopen(files[i], "r");
		if (f == NULL) {
			fprintf(out, "cannot read %s: %s\n", files[i],
			    strerror(errno));
			return FBX_EIO;
		}
		rc = fbxi_audit_archive_check(f, &c);
		fclose(f);
		if (rc != FBX_OK) {
			fprintf(out, "%s: %s\n", files[i], fbx_strerror(rc));
			return rc;
		}
		if (c.why[0] != '\0')
			fprintf(out, "BROKEN at record %llu (%s, line %llu): "
			             "%s\n",
			    (unsigned long long)c.broken_at, files[i],
			    (unsigned long long)c.line, c.why);
	}
	if (c.why[0] != '\0')
		return FBX_ECORRUPT;
	if (c.records == 0) {
		fprintf(out, "no records\n");
		return FBX_ECORRUPT;
	}
	fbxi_audit_hex32(c.first_prev, fp);
	fbxi_audit_hex32(c.last_hash, lh);
	fprintf(out, "intact: %llu records, %llu..%llu\n",
	    (unsigned long long)c.records, (unsigned long long)c.first_seq,
	    (unsigned long long)c.last_seq);
	fprintf(out, "first_prev %s%s\n", fp,
	    c.first_seq == 1 ? " (record 1: the start of the chain)" :
			       " (the last hash of the archive before)");
	fprintf(out, "last_hash  %s (seq %llu)\n", lh,
	    (unsigned long long)c.last_seq);
	return FBX_OK;
}
