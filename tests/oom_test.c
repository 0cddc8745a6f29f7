/*
 * oom_test.c: out-of-memory is an answer, never a crash. In the manner of
 * libuv's test-loop-oom.c, each call under test is run with its Nth heap
 * allocation failing, N = 0, 1, 2, ... until the call makes fewer than
 * N + 1 allocations and succeeds; every run with a failed allocation must
 * return FBX_ENOMEM, leave its outputs clean and leak nothing (run it
 * under the asan preset, which sets detect_leaks=1). The test is linked
 * with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, so every
 * allocation made by code linked in statically (fbx_proto with the
 * protobuf-c allocator proto/ hands to unpack, fbx_storage) goes through
 * the counter below; allocations inside liblmdb.so are not counted.
 * Messages come from the checked-in fuzz seed corpus, one per kind.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fbx_proto.h"
#include "fbx_store.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t sz);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t sz);
void *__wrap_realloc(void *p, size_t n);

static int oom_armed;          /* count and fail only while set */
static unsigned long oom_fail; /* the allocation that fails, from 0 */
static unsigned long oom_seen; /* allocations since arming */
static int oom_hit;            /* the failure was injected */

static int npass, nfail;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (cond) {                                                  \
			npass++;                                             \
		} else {                                                     \
			nfail++;                                             \
			fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__,        \
			    __LINE__, #cond);                                \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

/* oom_take - whether this allocation is the one to fail. */
static int
oom_take(void)
{
	if (!oom_armed)
		return 0;
	if (oom_seen++ == oom_fail) {
		oom_hit = 1;
		return 1;
	}
	return 0;
}

void *
__wrap_malloc(size_t n)
{
	return oom_take() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t sz)
{
	return oom_take() ? NULL : __real_calloc(n, sz);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return oom_take() ? NULL : __real_realloc(p, n);
}

/* A call under test: returns an fbx_err and, on success, releases what it
 * produced; on failure it must have nothing to release. */
typedef int (*oom_fn)(void *arg);

/* oom_loop - run fn with allocation N failing for N = 0, 1, ... until it
 * succeeds without a failure injected. Returns the allocations it made. */
static unsigned long
oom_loop(const char *name, oom_fn fn, void *arg)
{
	unsigned long n;
	int rv;

	for (n = 0; n < 100000; n++) {
		oom_fail = n;
		oom_seen = 0;
		oom_hit = 0;
		oom_armed = 1;
		rv = fn(arg);
		oom_armed = 0;
		if (!oom_hit) {
			CHECK(rv == FBX_OK, "%s: %s without a failure", name,
			    fbx_errname(rv));
			return n;
		}
		CHECK(rv == FBX_ENOMEM, "%s: allocation %lu failed, got %s",
		    name, n, fbx_errname(rv));
	}
	CHECK(0, "%s: never succeeded", name);
	return n;
}

/* ---- codec -------------------------------------------------------------- */

struct bytes {
	const uint8_t *p;
	size_t len;
};

static int
req_decode(void *arg)
{
	const struct bytes *b = arg;
	struct fbx_console_req r;
	char why[128];
	int rv;

	memset(&r, 0xa5, sizeof(r));
	rv = fbx_console_req_decode(b->p, b->len, &r, why, sizeof(why));
	if (rv == FBX_ENOMEM)
		CHECK(strcmp(why, "out of memory") == 0, "why '%s'", why);
	fbx_console_req_free(&r); /* also after a failure: must be clean */
	return rv;
}

static int
req_encode(void *arg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = fbx_console_req_encode(arg, &buf, &len);

	if (rv != FBX_OK)
		CHECK(buf == NULL, "encode wrote buf on failure");
	free(buf);
	return rv;
}

static int
rep_decode(void *arg)
{
	const struct bytes *b = arg;
	struct fbx_console_rep r;
	int rv;

	memset(&r, 0xa5, sizeof(r));
	rv = fbx_console_rep_decode(b->p, b->len, &r);
	fbx_console_rep_free(&r);
	return rv;
}

static int
rep_encode(void *arg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = fbx_console_rep_encode(arg, &buf, &len);

	if (rv != FBX_OK)
		CHECK(buf == NULL, "encode wrote buf on failure");
	free(buf);
	return rv;
}

static int
gw_decode(void *arg)
{
	const struct bytes *b = arg;
	struct fbx_gw_msg m;
	char why[128];
	int rv;

	memset(&m, 0xa5, sizeof(m));
	rv = fbx_gw_msg_decode(b->p, b->len, &m, why, sizeof(why));
	fbx_gw_msg_free(&m);
	return rv;
}

static int
gw_encode(void *arg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = fbx_gw_msg_encode(arg, &buf, &len);

	if (rv != FBX_OK)
		CHECK(buf == NULL, "encode wrote buf on failure");
	free(buf);
	return rv;
}

static int
eng_decode(void *arg)
{
	const struct bytes *b = arg;
	struct fbx_eng_msg m;
	int rv;

	memset(&m, 0xa5, sizeof(m));
	rv = fbx_eng_msg_decode(b->p, b->len, &m);
	if (rv != FBX_OK)
		CHECK(m.priv_ == NULL, "priv_ set after a failure");
	fbx_eng_msg_free(&m);
	return rv;
}

static int
eng_encode(void *arg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = fbx_eng_msg_encode(arg, &buf, &len);

	if (rv != FBX_OK)
		CHECK(buf == NULL, "encode wrote buf on failure");
	free(buf);
	return rv;
}

static int
event_decode(void *arg)
{
	const struct bytes *b = arg;
	struct fbx_event ev;

	return fbx_event_decode(b->p, b->len, &ev);
}

static int
event_encode(void *arg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv = fbx_event_encode(arg, &buf, &len);

	free(buf);
	return rv;
}

/* one_seed - decode loop on the seed, then encode loop on its decoding. */
static unsigned long
one_seed(const char *target, const char *name, const struct bytes *b)
{
	char label[512];
	unsigned long n = 0;

	snprintf(label, sizeof(label), "%s/%s", target, name);
	if (strcmp(target, "fuzz_console_req") == 0) {
		struct fbx_console_req r;
		n += oom_loop(label, req_decode, (void *)b);
		if (fbx_console_req_decode(b->p, b->len, &r, NULL, 0) ==
		    FBX_OK) {
			n += oom_loop(label, req_encode, &r);
			fbx_console_req_free(&r);
		}
	} else if (strcmp(target, "fuzz_console_rep") == 0) {
		struct fbx_console_rep r;
		n += oom_loop(label, rep_decode, (void *)b);
		if (fbx_console_rep_decode(b->p, b->len, &r) == FBX_OK) {
			n += oom_loop(label, rep_encode, &r);
			fbx_console_rep_free(&r);
		}
	} else if (strcmp(target, "fuzz_gw_msg") == 0) {
		struct fbx_gw_msg m;
		n += oom_loop(label, gw_decode, (void *)b);
		if (fbx_gw_msg_decode(b->p, b->len, &m, NULL, 0) == FBX_OK) {
			n += oom_loop(label, gw_encode, &m);
			fbx_gw_msg_free(&m);
		}
	} else if (strcmp(target, "fuzz_eng_msg") == 0) {
		struct fbx_eng_msg m;
		n += oom_loop(label, eng_decode, (void *)b);
		if (fbx_eng_msg_decode(b->p, b->len, &m) == FBX_OK) {
			n += oom_loop(label, eng_encode, &m);
			fbx_eng_msg_free(&m);
		}
	} else if (strcmp(target, "fuzz_event") == 0) {
		struct fbx_event ev;
		n += oom_loop(label, event_decode, (void *)b);
		if (fbx_event_decode(b->p, b->len, &ev) == FBX_OK)
			n += oom_loop(label, event_encode, &ev);
	}
	return n;
}

/* read_file - the whole file into a malloc'd buffer (not armed). */
static uint8_t *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0)
		goto out;
	n = ftell(f);
	if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf == NULL)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	*len = (size_t)n;
out:
	fclose(f);
	return buf;
}

static void
test_codec(void)
{
	static const char *targets[] = { "fuzz_console_req",
		"fuzz_console_rep", "fuzz_gw_msg", "fuzz_eng_msg",
		"fuzz_event" };
	char path[4096];

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		unsigned long allocs = 0;
		int seeds = 0;
		struct dirent *e;
		DIR *d;

		snprintf(path, sizeof(path), "%s/%s", FBX_FUZZ_CORPUS,
		    targets[i]);
		d = opendir(path);
		CHECK(d != NULL, "no corpus at %s", path);
		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			struct bytes b;
			uint8_t *buf;
			size_t len = 0;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/%s",
			    FBX_FUZZ_CORPUS, targets[i], e->d_name);
			buf = read_file(path, &len);
			CHECK(buf != NULL, "cannot read %s", path);
			if (buf == NULL)
				continue;
			b.p = buf;
			b.len = len;
			allocs += one_seed(targets[i], e->d_name, &b);
			seeds++;
			free(buf);
		}
		closedir(d);
		CHECK(seeds > 0, "%s: empty corpus", targets[i]);
		CHECK(allocs > 0, "%s: no allocation was ever counted: is the "
		    "test linked with --wrap=malloc?", targets[i]);
		printf("codec %s: %d seeds, %lu allocations failed one by "
		       "one\n", targets[i], seeds, allocs);
	}
}

/* ---- store ------------------------------------------------------------- */

struct st_ctx {
	struct fbx_store_opts opts;
	fbx_store *st;
	uint64_t cmd_id;
};

static int
st_open(void *arg)
{
	struct st_ctx *c = arg;
	fbx_store *st = NULL;
	int rv = fbx_store_open(&c->opts, &st);

	if (rv == FBX_OK)
		fbx_store_close(st);
	else
		CHECK(st == NULL, "open wrote out on failure");
	return rv;
}

/* st_write - one write transaction with a few records of each kind. */
static int
st_write(void *arg)
{
	static uint8_t payload[] = { 1, 2, 3, 4 };
	static char ids[2][FBX_ID_MAX + 1] = { "dev-1", "dev-2" };
	struct st_ctx *c = arg;
	struct fbx_command cmd;
	struct fbx_delivery d;
	struct fbx_device dev;
	fbx_txn *t = NULL;
	int rv;

	rv = fbx_txn_begin(c->st, 1, &t);
	if (rv != FBX_OK)
		return rv;
	memset(&cmd, 0, sizeof(cmd));
	strcpy(cmd.org, "acme");
	strcpy(cmd.actor, "alice@acme");
	strcpy(cmd.idem_key, "oom-1");
	cmd.type = FBX_CMD_LOCK;
	cmd.origin = FBX_ORIGIN_OPERATOR;
	cmd.target_kind = FBX_TARGET_DEVICES;
	cmd.state = FBX_C_ACTIVE;
	cmd.created_ms = 1700000000000;
	cmd.payload = payload;
	cmd.payload_len = sizeof(payload);
	cmd.dev_ids = ids;
	cmd.ndev_ids = 2;
	rv = fbx_store_cmd_append(t, &cmd);
	for (int i = 0; i < 2 && rv == FBX_OK; i++) {
		memset(&dev, 0, sizeof(dev));
		strcpy(dev.org, "acme");
		strcpy(dev.id, ids[i]);
		dev.ngroups = 1;
		strcpy(dev.groups[0], "sales");
		strcpy(dev.os_version, "17.1");
		rv = fbx_store_dev_put(t, &dev, NULL);
	}
	for (uint32_t i = 0; i < 2 && rv == FBX_OK; i++) {
		memset(&d, 0, sizeof(d));
		d.id = FBX_DLV_ID(cmd.id, i);
		d.state = FBX_D_QUEUED;
		strcpy(d.device, ids[i]);
		d.nhist = 1;
		d.hist[0].state = FBX_D_QUEUED;
		d.hist[0].at_ms = 1700000000000;
		rv = fbx_store_dlv_put(t, &d);
	}
	if (rv == FBX_OK)
		rv = fbx_store_kv_put(t, "brk/acme/rule-1", "x", 1);
	if (rv == FBX_OK) {
		/* an audit record v1: ver, prev, hash, at_ms, org "acme",
		 * actor "", action "x", note and params empty */
		static const uint8_t arec[1 + 64 + 8 + 5 + 1 + 2 + 4] = {
			[0] = 1, [73] = 4, 'a', 'c', 'm', 'e', 0, 1, 'x' };
		rv = fbx_store_audit_put(t, 1, arec, sizeof(arec));
	}
	if (rv != FBX_OK) {
		fbx_txn_abort(t);
		return rv;
	}
	rv = fbx_txn_commit(t);
	if (rv == FBX_OK)
		c->cmd_id = cmd.id;
	return rv;
}

static int
count_cmd(void *arg, const struct fbx_command *cmd)
{
	(void)cmd;
	(*(int *)arg)++;
	return 0;
}

static int
count_dlv(void *arg, const struct fbx_delivery *d)
{
	(void)d;
	(*(int *)arg)++;
	return 0;
}

static int
count_dev(void *arg, const struct fbx_device *dev)
{
	(void)dev;
	(*(int *)arg)++;
	return 0;
}

static int
count_kv(void *arg, const char *key, const void *val, size_t len)
{
	(void)key;
	(void)val;
	(void)len;
	(*(int *)arg)++;
	return 0;
}

/* st_read - a read transaction over every kind of scan. */
static int
st_read(void *arg)
{
	struct st_ctx *c = arg;
	struct fbx_command cmd;
	fbx_txn *t = NULL;
	int n = 0, rv;

	rv = fbx_txn_begin(c->st, 0, &t);
	if (rv != FBX_OK)
		return rv;
	rv = fbx_store_cmd_get(t, c->cmd_id, &cmd);
	if (rv == FBX_OK) {
		CHECK(cmd.payload_len == 4 && cmd.ndev_ids == 2,
		    "command body");
		fbx_command_clear(&cmd);
		rv = fbx_store_cmd_active(t, count_cmd, &n);
	}
	if (rv == FBX_OK)
		rv = fbx_store_cmd_list(t, "acme", 0, 0, 0, 100, count_cmd,
		    &n);
	if (rv == FBX_OK)
		rv = fbx_store_dlv_scan(t, 0, UINT64_MAX, 0, count_dlv, &n);
	if (rv == FBX_OK)
		rv = fbx_store_dev_scan(t, "acme", "sales", NULL, 0,
		    count_dev, &n);
	if (rv == FBX_OK)
		rv = fbx_store_kv_scan(t, "brk/", count_kv, &n);
	fbx_txn_abort(t);
	if (rv == FBX_OK)
		CHECK(n == 1 + 1 + 2 + 2 + 1, "scans saw %d records", n);
	return rv;
}

static void
rm_store(const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
	rmdir(dir);
}

static void
test_store(void)
{
	char dir[] = "/tmp/fbx-oom-XXXXXX";
	struct st_ctx c;
	unsigned long n;
	int rv;

	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	memset(&c, 0, sizeof(c));
	c.opts.path = dir;
	c.opts.map_size = 4u << 20;
	c.opts.durability = FBX_DURABLE_NOSYNC;
	n = oom_loop("store open", st_open, &c);
	CHECK(n > 0, "store open: no allocation counted");
	printf("store open: %lu allocations\n", n);
	rv = fbx_store_open(&c.opts, &c.st);
	CHECK(rv == FBX_OK, "open: %s", fbx_errname(rv));
	if (rv != FBX_OK)
		goto out;
	n = oom_loop("store write", st_write, &c);
	printf("store write txn: %lu allocations\n", n);
	n = oom_loop("store read", st_read, &c);
	CHECK(n > 0, "store read: no allocation counted");
	printf("store read txn: %lu allocations\n", n);
	fbx_store_close(c.st);
out:
	rm_store(dir);
}

int
main(void)
{
	test_codec();
	test_store();
	printf("oom_test: %d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
