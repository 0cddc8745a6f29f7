/*
 * simtab.c: the gateway simulator's delivery table; see simtab.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fbx_err.h"
#include "simtab.h"

int
dtab_init(struct dtab *t, size_t want)
{
	size_t cap = 1u << 16;

	while (cap < want * 2 && cap < ((size_t)1 << 40))
		cap <<= 1;
	/* zeroed by hand: the pages are faulted in now, not by the first
	 * deliveries */
	t->slots = malloc(cap * sizeof(*t->slots));
	if (t->slots == NULL)
		return FBX_ENOMEM;
	memset(t->slots, 0, cap * sizeof(*t->slots));
	t->cap = cap;
	t->n = 0;
	t->old = t->next = NULL;
	t->oldcap = t->oldpos = t->nextpos = 0;
	return FBX_OK;
}

static struct dent *
dtab_probe(struct dent *slots, size_t cap, uint64_t id)
{
	size_t mask = cap - 1, i = (size_t)fbxs_mix(id) & mask;

	for (;;) {
		struct dent *e = &slots[i];
		if (e->id == id || e->id == 0)
			return e;
		i = (i + 1) & mask;
	}
}

struct dent *
dtab_find(const struct dtab *t, uint64_t id)
{
	struct dent *e = dtab_probe(t->slots, t->cap, id);

	if (e->id == id)
		return e;
	if (t->old != NULL) {
		e = dtab_probe(t->old, t->oldcap, id);
		if (e->id == id)
			return e;
	}
	return NULL;
}

/* dtab_move - move up to k slots of the old table into the new one (an
 * id is in one table only: dtab_get inserts only what neither holds) */
static void
dtab_move(struct dtab *t, size_t k)
{
	for (; t->old != NULL && k > 0; k--) {
		struct dent *e = &t->old[t->oldpos];
		if (e->id != 0)
			*dtab_probe(t->slots, t->cap, e->id) = *e;
		if (++t->oldpos == t->oldcap) {
			free(t->old);
			t->old = NULL;
			t->oldcap = t->oldpos = 0;
		}
	}
}

/* dtab_prepare - zero up to k more slots of the next table (allocated
 * once the table is half full). */
static void
dtab_prepare(struct dtab *t, size_t k)
{
	size_t ncap = t->cap * 2;

	if (t->next == NULL) {
		if (t->n * 2 < t->cap || t->old != NULL)
			return;
		t->next = malloc(ncap * sizeof(*t->next));
		if (t->next == NULL)
			return; /* dtab_grow tries again */
		t->nextpos = 0;
	}
	if (k > ncap - t->nextpos)
		k = ncap - t->nextpos;
	memset(t->next + t->nextpos, 0, k * sizeof(*t->next));
	t->nextpos += k;
}

static int
dtab_grow(struct dtab *t)
{
	dtab_move(t, SIZE_MAX); /* the one before, if any, first */
	dtab_prepare(t, SIZE_MAX);
	if (t->next == NULL)
		return FBX_ENOMEM;
	t->old = t->slots;
	t->oldcap = t->cap;
	t->oldpos = 0;
	t->slots = t->next;
	t->cap *= 2;
	t->next = NULL;
	t->nextpos = 0;
	return FBX_OK;
}

struct dent *
dtab_get(struct dtab *t, uint64_t id, int *created)
{
	struct dent *e;

	*created = 0;
	if ((t->n + 1) * 10 > t->cap * 7 && dtab_grow(t) != FBX_OK)
		return NULL;
	dtab_move(t, DTAB_MOVE);
	dtab_prepare(t, DTAB_ZERO);
	e = dtab_find(t, id);
	if (e != NULL)
		return e;
	e = dtab_probe(t->slots, t->cap, id);
	memset(e, 0, sizeof(*e));
	e->id = id;
	t->n++;
	*created = 1;
	return e;
}

void
dtab_free(struct dtab *t)
{
	free(t->slots);
	free(t->old);
	free(t->next);
	memset(t, 0, sizeof(*t));
}
