/*
 * store_util.c: the store's unit tests' shared part (store_util.h).
 */
#define _XOPEN_SOURCE 700
#include <ctype.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_util.h"

int passed, failed;
char root[64];
const char *pg_url;

int
st_begin(const char *name)
{
	pg_url = getenv("FBX_TEST_PG_URL");
	if (pg_url != NULL && pg_url[0] == '\0')
		pg_url = NULL;
	snprintf(root, sizeof(root), "/tmp/%s.XXXXXX", name);
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

void
pg_store_url(char *buf, size_t cap, const char *dir)
{
	char schema[96];
	size_t n = 0;

	for (const char *p = dir; *p != '\0' && n + 1 < sizeof(schema); p++)
		schema[n++] = isalnum((unsigned char)*p) ?
		    (char)tolower((unsigned char)*p) : '_';
	schema[n] = '\0';
	snprintf(buf, cap, "%s%soptions=-csearch_path%%3Ds%s", pg_url,
	    strchr(pg_url, '?') != NULL ? "&" : "?", schema);
}

int
pg_exec_dir(const char *dir, const char *sql, int n, const char *const *vals,
    const int *lens, const int *fmts)
{
	char url[512];
	PGconn *c;
	PGresult *r;
	int rows = -1;

	pg_store_url(url, sizeof(url), dir);
	c = PQconnectdb(url);
	if (PQstatus(c) == CONNECTION_OK) {
		r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, 0);
		if (PQresultStatus(r) == PGRES_COMMAND_OK ||
		    PQresultStatus(r) == PGRES_TUPLES_OK)
			rows = PQresultStatus(r) == PGRES_TUPLES_OK ?
			    PQntuples(r) : atoi(PQcmdTuples(r));
		else
			fprintf(stderr, "pg_exec_dir: %s", PQerrorMessage(c));
		PQclear(r);
	} else {
		fprintf(stderr, "pg_exec_dir: %s", PQerrorMessage(c));
	}
	PQfinish(c);
	return rows;
}

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void
subdir(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", root, name);
}

int
st_end(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	printf("%d passed, %d failed%s\n", passed, failed,
	    pg_url != NULL ? " (PostgreSQL)" : "");
	return failed == 0 ? 0 : 1;
}

fbx_store *
open_store(const char *dir, size_t map, size_t max)
{
	struct fbx_store_opts o = { 0 };
	fbx_store *st = NULL;
	int rc;

	char url[512];

	o.path = dir;
	o.map_size = map;
	o.map_size_max = max;
	o.durability = FBX_DURABLE_NOSYNC;
	if (pg_url != NULL) {
		pg_store_url(url, sizeof(url), dir);
		o.url = url;
		o.durability = FBX_DURABLE_FULL; /* synchronous_commit on */
	}
	rc = fbx_store_open(&o, &st);
	CHECK_RC(rc, FBX_OK);
	return rc == FBX_OK ? st : NULL;
}

fbx_txn *
wtxn(fbx_store *st)
{
	fbx_txn *t = NULL;

	CHECK_RC(fbx_txn_begin(st, 1, &t), FBX_OK);
	return t;
}

fbx_txn *
rtxn(fbx_store *st)
{
	fbx_txn *t = NULL;

	CHECK_RC(fbx_txn_begin(st, 0, &t), FBX_OK);
	return t;
}

void
mk_cmd(struct fbx_command *c, const char *org, int64_t created)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->org, sizeof(c->org), "%s", org);
	snprintf(c->actor, sizeof(c->actor), "alice@example.com");
	snprintf(c->reason, sizeof(c->reason), "INC-42");
	c->type = FBX_CMD_LOCK;
	c->origin = FBX_ORIGIN_OPERATOR;
	c->target_kind = FBX_TARGET_DEVICES;
	c->state = FBX_C_EXPANDING;
	c->ttl_s = 3600;
	c->created_ms = created;
	c->expires_ms = created + 3600000;
}

void
mk_dlv(struct fbx_delivery *d, uint64_t id, const char *dev, int64_t at)
{
	memset(d, 0, sizeof(*d));
	d->id = id;
	d->state = FBX_D_QUEUED;
	d->updated_ms = at;
	snprintf(d->device, sizeof(d->device), "%s", dev);
	d->nhist = 1;
	d->hist[0].state = FBX_D_QUEUED;
	d->hist[0].at_ms = at;
}

int
dlv_collect(void *arg, const struct fbx_delivery *d)
{
	struct dlv_col *col = arg;

	if (col->n > 0 && d->id <= col->last)
		col->ordered = 0;
	if (col->n == 0)
		col->first = d->id;
	col->last = d->id;
	col->n++;
	return 0;
}
