/*
 * dmap.c: see dmap.h.
 */
#include <stdlib.h>

#include "dmap.h"

static inline uint64_t
dir_key(uint64_t key)
{
	return (key >> DMAP_CHUNK_BITS) + 1; /* never 0 */
}

static inline struct fbxi_dchunk *
chunk_of(const struct fbxi_dmap *m, uint64_t key)
{
	uint64_t c;

	if (!fbxi_idmap_get(&m->dir, dir_key(key), &c))
		return NULL;
	return (struct fbxi_dchunk *)(uintptr_t)c;
}

void
fbxi_dmap_init(struct fbxi_dmap *m)
{
	fbxi_idmap_init(&m->dir);
	m->len = 0;
	m->nspare = 0;
}

/* drop_chunks - every chunk freed, the directory emptied */
static void
drop_chunks(struct fbxi_dmap *m)
{
	size_t pos = 0;
	uint64_t k, c;

	while (fbxi_idmap_next(&m->dir, &pos, &k, &c))
		free((struct fbxi_dchunk *)(uintptr_t)c);
	fbxi_idmap_clear(&m->dir);
	m->len = 0;
}

void
fbxi_dmap_fini(struct fbxi_dmap *m)
{
	if (m == NULL)
		return;
	drop_chunks(m);
	while (m->nspare > 0)
		free(m->spare[--m->nspare]);
	fbxi_idmap_fini(&m->dir);
	m->len = 0;
}

int
fbxi_dmap_put(struct fbxi_dmap *m, uint64_t key, uint64_t val)
{
	struct fbxi_dchunk *ch = chunk_of(m, key);
	unsigned b = (unsigned)(key & (DMAP_CHUNK - 1));

	if (ch == NULL) {
		ch = m->nspare > 0 ? m->spare[--m->nspare]
		                   : malloc(sizeof(*ch));
		if (ch == NULL)
			return -1;
		ch->present = 0;
		ch->n = 0;
		if (fbxi_idmap_put(&m->dir, dir_key(key),
		        (uint64_t)(uintptr_t)ch) != 0) {
			free(ch);
			return -1;
		}
	}
	if (!(ch->present >> b & 1)) {
		ch->present |= 1u << b;
		ch->n++;
		m->len++;
	}
	ch->vals[b] = val;
	return 0;
}

int
fbxi_dmap_set(struct fbxi_dmap *m, uint64_t key, uint64_t val)
{
	struct fbxi_dchunk *ch = chunk_of(m, key);
	unsigned b = (unsigned)(key & (DMAP_CHUNK - 1));

	if (ch == NULL || !(ch->present >> b & 1))
		return 0;
	ch->vals[b] = val;
	return 1;
}

int
fbxi_dmap_get(const struct fbxi_dmap *m, uint64_t key, uint64_t *val)
{
	const struct fbxi_dchunk *ch = chunk_of(m, key);
	unsigned b = (unsigned)(key & (DMAP_CHUNK - 1));

	if (ch == NULL || !(ch->present >> b & 1))
		return 0;
	if (val != NULL)
		*val = ch->vals[b];
	return 1;
}

int
fbxi_dmap_del(struct fbxi_dmap *m, uint64_t key, uint64_t *val)
{
	struct fbxi_dchunk *ch = chunk_of(m, key);
	unsigned b = (unsigned)(key & (DMAP_CHUNK - 1));

	if (ch == NULL || !(ch->present >> b & 1))
		return 0;
	if (val != NULL)
		*val = ch->vals[b];
	ch->present &= ~(1u << b);
	ch->n--;
	m->len--;
	if (ch->n == 0) {
		(void)fbxi_idmap_del(&m->dir, dir_key(key), NULL);
		if (m->nspare < DMAP_SPARE)
			m->spare[m->nspare++] = ch;
		else
			free(ch);
	}
	return 1;
}

void
fbxi_dmap_clear(struct fbxi_dmap *m)
{
	drop_chunks(m);
}

/* The position is the directory slot times DMAP_CHUNK plus the bit. */
int
fbxi_dmap_next(
    const struct fbxi_dmap *m, size_t *pos, uint64_t *key, uint64_t *val)
{
	size_t slot = *pos / DMAP_CHUNK;
	unsigned b = (unsigned)(*pos % DMAP_CHUNK);

	for (; slot < m->dir.cap; slot++, b = 0) {
		const struct fbxi_dchunk *ch;
		uint32_t rest;

		if (m->dir.keys[slot] == 0)
			continue;
		ch = (const struct fbxi_dchunk *)(uintptr_t)m->dir.vals[slot];
		rest = b < DMAP_CHUNK ? ch->present >> b << b : 0;
		if (rest == 0)
			continue;
		b = (unsigned)__builtin_ctz(rest);
		*key = ((m->dir.keys[slot] - 1) << DMAP_CHUNK_BITS) | b;
		if (val != NULL)
			*val = ch->vals[b];
		*pos = slot * DMAP_CHUNK + b + 1;
		return 1;
	}
	*pos = m->dir.cap * DMAP_CHUNK;
	return 0;
}
