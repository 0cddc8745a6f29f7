/*
 * queue.c: per-organisation dispatch queues: one FIFO ring of delivery ids
 * per priority class, the organisation's rate and in-flight caps as
 * persisted ("rate/<org>", "*" for the global ones), and the in-flight
 * counters. A bottom module: it calls nothing of the engine above it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* Rate caps as persisted under "rate/<org>"; org "*" holds the global
 * caps. */
struct rate_rec {
	uint32_t version;
	uint32_t rate_per_s, burst, max_inflight;
};

static uint32_t
str_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

struct orgq *
fbxi_orgq_find(struct fbx_engine *e, const char *org)
{
	for (struct orgq *q = e->qtab[str_hash(org) % 1024]; q != NULL;
	     q = q->hnext) {
		if (strcmp(q->org, org) == 0)
			return q;
	}
	return NULL;
}

struct orgq *
fbxi_orgq_get(struct fbx_engine *e, const char *org)
{
	uint32_t b = str_hash(org) % 1024;
	struct orgq *q;

	for (q = e->qtab[b]; q != NULL; q = q->hnext) {
		if (strcmp(q->org, org) == 0)
			return q;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	snprintf(q->org, sizeof(q->org), "%s", org);
	q->hnext = e->qtab[b];
	e->qtab[b] = q;
	return q;
}

static int
ring_push(struct ring *r, uint64_t id)
{
	if (r->len == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		uint64_t *nr = malloc(ncap * sizeof(*nr));
		if (nr == NULL)
			return FBX_ENOMEM;
		for (size_t i = 0; i < r->len; i++)
			nr[i] = r->v[(r->head + i) % r->cap];
		free(r->v);
		r->v = nr;
		r->cap = ncap;
		r->head = 0;
	}
	r->v[(r->head + r->len) % r->cap] = id;
	r->len++;
	return FBX_OK;
}

uint64_t
fbxi_ring_pop(struct ring *r)
{
	uint64_t id = r->v[r->head];

	r->head = (r->head + 1) % r->cap;
	r->len--;
	if (r->len == 0 && r->cap > 4096) {
		/* a finished big fan-out gives its memory back */
		free(r->v);
		r->v = NULL;
		r->cap = r->head = 0;
	}
	return id;
}

int
fbxi_orgq_push(struct fbx_engine *e, struct orgq *q, int prio, uint64_t id)
{
	if (prio < 0 || prio >= FBX_PRIO_COUNT)
		prio = FBX_PRIO_OPERATOR;
	if (ring_push(&q->r[prio], id) != FBX_OK)
		return FBX_ENOMEM;
	q->len++;
	if (!q->active) {
		if (e->rrlen == e->rrcap) {
			size_t ncap = e->rrcap ? e->rrcap * 2 : 64;
			struct orgq **n = realloc(e->rr, ncap * sizeof(*n));
			if (n == NULL)
				return FBX_ENOMEM;
			e->rr = n;
			e->rrcap = ncap;
		}
		e->rr[e->rrlen++] = q;
		q->active = 1;
	}
	return FBX_OK;
}

void
fbxi_orgq_clear(struct orgq *q)
{
	for (int p = 0; p < FBX_PRIO_COUNT; p++) {
		free(q->r[p].v);
		memset(&q->r[p], 0, sizeof(q->r[p]));
	}
	q->len = 0;
	q->active = 0;
	q->inflight = 0;
	q->rate_loaded = 0;
}

int
fbxi_rate_load(fbx_txn *txn, const char *org, struct fbx_rate_info *out)
{
	struct rate_rec r;
	char key[FBX_KV_KEY_MAX];
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->org, sizeof(out->org), "%s", org);
	snprintf(key, sizeof(key), "rate/%s", org);
	rc = fbx_store_kv_get(txn, key, &r, sizeof(r), &len);
	if (rc == FBX_ENOT_FOUND)
		return FBX_OK;
	if (rc != FBX_OK)
		return rc;
	if (len != sizeof(r) || r.version != 1)
		return FBX_ECORRUPT;
	out->rate_per_s = r.rate_per_s;
	out->burst = r.burst;
	out->max_inflight = r.max_inflight;
	return FBX_OK;
}

int
fbxi_rate_save(fbx_txn *txn, const struct fbx_rate_info *ri)
{
	struct rate_rec r = { 1, ri->rate_per_s, ri->burst, ri->max_inflight };
	char key[FBX_KV_KEY_MAX];

	snprintf(key, sizeof(key), "rate/%s", ri->org);
	return fbx_store_kv_put(txn, key, &r, sizeof(r));
}

/* orgq_load_rate - read an organisation's caps once (inside the turn's
 * transaction); later changes come through the RATE request. */
void
fbxi_orgq_load_rate(struct fbx_engine *e, struct orgq *q)
{
	if (q->rate_loaded || e->txn == NULL)
		return;
	if (fbxi_rate_load(e->txn, q->org, &q->rate) == FBX_OK)
		q->rate_loaded = 1;
}

/* inflight_release - a delivery left a gateway's hands. */
void
fbxi_inflight_release(struct fbx_engine *e, uint64_t v)
{
	struct orgq *q = IF_ORGQ(v);

	if (q != NULL && q->inflight > 0)
		q->inflight--;
	if (e->inflight_all > 0)
		e->inflight_all--;
}
