/*
 * idmap.c: see idmap.h. Load factor is kept at or below 1/2; the table
 * shrinks back when it empties below 1/8 so a finished 1,000,000-device
 * fan-out gives its memory back.
 */
#include <stdlib.h>
#include <string.h>

#include "idmap.h"

#define MIN_CAP 64

static inline size_t
slot_of(uint64_t key, size_t mask)
{
	return fbxi_idmap_slot(key, mask);
}

void
fbxi_idmap_init(struct fbxi_idmap *m)
{
	memset(m, 0, sizeof(*m));
}

void
fbxi_idmap_fini(struct fbxi_idmap *m)
{
	if (m == NULL)
		return;
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static int
resize(struct fbxi_idmap *m, size_t ncap)
{
	uint64_t *nk = calloc(ncap, sizeof(*nk));
	uint64_t *nv = malloc(ncap * sizeof(*nv));
	size_t mask = ncap - 1;

	if (nk == NULL || nv == NULL) {
		free(nk);
		free(nv);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		uint64_t k = m->keys[i];
		if (k == 0)
			continue;
		size_t s = slot_of(k, mask);
		while (nk[s] != 0)
			s = (s + 1) & mask;
		nk[s] = k;
		nv[s] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	return 0;
}

int
fbxi_idmap_put(struct fbxi_idmap *m, uint64_t key, uint64_t val)
{
	size_t mask, s;

	if ((m->len + 1) * 2 > m->cap) {
		if (resize(m, m->cap ? m->cap * 2 : MIN_CAP) != 0)
			return -1;
	}
	mask = m->cap - 1;
	s = slot_of(key, mask);
	while (m->keys[s] != 0 && m->keys[s] != key)
		s = (s + 1) & mask;
	if (m->keys[s] == 0) {
		m->keys[s] = key;
		m->len++;
	}
	m->vals[s] = val;
	return 0;
}

static size_t
find(const struct fbxi_idmap *m, uint64_t key)
{
	size_t mask, s;

	if (m->cap == 0)
		return (size_t)-1;
	mask = m->cap - 1;
	s = slot_of(key, mask);
	while (m->keys[s] != 0) {
		if (m->keys[s] == key)
			return s;
		s = (s + 1) & mask;
	}
	return (size_t)-1;
}

int
fbxi_idmap_set(struct fbxi_idmap *m, uint64_t key, uint64_t val)
{
	size_t s = find(m, key);

	if (s == (size_t)-1)
		return 0;
	m->vals[s] = val;
	return 1;
}

int
fbxi_idmap_get(const struct fbxi_idmap *m, uint64_t key, uint64_t *val)
{
	size_t s = find(m, key);

	if (s == (size_t)-1)
		return 0;
	if (val != NULL)
		*val = m->vals[s];
	return 1;
}

int
fbxi_idmap_del(struct fbxi_idmap *m, uint64_t key, uint64_t *val)
{
	size_t s = find(m, key), mask, j;

	if (s == (size_t)-1)
		return 0;
	if (val != NULL)
		*val = m->vals[s];
	mask = m->cap - 1;
	/* Backward-shift: pull later members of the probe run into the hole
	 * when their home slot does not lie cyclically in (hole, j]. */
	j = s;
	for (;;) {
		j = (j + 1) & mask;
		if (m->keys[j] == 0)
			break;
		size_t home = slot_of(m->keys[j], mask);
		int keep = (s <= j) ? (s < home && home <= j)
		                    : (s < home || home <= j);
		if (keep)
			continue;
		m->keys[s] = m->keys[j];
		m->vals[s] = m->vals[j];
		s = j;
	}
	m->keys[s] = 0;
	m->len--;
	if (m->cap > MIN_CAP && m->len * 8 < m->cap)
		(void)resize(m, m->cap / 2); /* failure: keep the big table */
	return 1;
}

void
fbxi_idmap_clear(struct fbxi_idmap *m)
{
	if (m->cap != 0)
		memset(m->keys, 0, m->cap * sizeof(*m->keys));
	m->len = 0;
}

int
fbxi_idmap_next(
    const struct fbxi_idmap *m, size_t *pos, uint64_t *key, uint64_t *val)
{
	for (size_t i = *pos; i < m->cap; i++) {
		if (m->keys[i] != 0) {
			*key = m->keys[i];
			if (val != NULL)
				*val = m->vals[i];
			*pos = i + 1;
			return 1;
		}
	}
	*pos = m->cap;
	return 0;
}
