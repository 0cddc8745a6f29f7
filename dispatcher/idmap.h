/*
 * idmap.h: an open-addressing hash map from non-zero u64 keys to u64
 * values, with linear probing and backward-shift deletion (no tombstones),
 * so a map that sees millions of inserts and deletes keeps its probe
 * lengths short. The engine uses it for in-flight delivery sets and the
 * command cache. Internal to dispatcher/.
 */
#ifndef FBXI_IDMAP_H
#define FBXI_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct fbxi_idmap {
	uint64_t *keys; /* 0 = empty slot */
	uint64_t *vals;
	size_t cap;     /* power of two, or 0 */
	size_t len;
};

void fbxi_idmap_init(struct fbxi_idmap *m);
void fbxi_idmap_fini(struct fbxi_idmap *m);
/* fbxi_idmap_put - insert or replace. key must be non-zero.
 * @return 0, or -1 when memory is exhausted (map unchanged). */
int fbxi_idmap_put(struct fbxi_idmap *m, uint64_t key, uint64_t val);
/* fbxi_idmap_set - replace the value of a present key; never allocates or
 * moves entries, so it is allowed during a walk.
 * @return 1 if the key was present, 0 otherwise (map unchanged). */
int fbxi_idmap_set(struct fbxi_idmap *m, uint64_t key, uint64_t val);
/* fbxi_idmap_get - @return 1 and *val if present, 0 otherwise. */
int fbxi_idmap_get(const struct fbxi_idmap *m, uint64_t key, uint64_t *val);
/* fbxi_idmap_del - @return 1 and *val (may be NULL) if it was present. */
int fbxi_idmap_del(struct fbxi_idmap *m, uint64_t key, uint64_t *val);
/* fbxi_idmap_clear - drop every entry, keep the memory. */
void fbxi_idmap_clear(struct fbxi_idmap *m);
/* fbxi_idmap_slot - the home slot of key in a table of mask + 1 slots.
 * Fibonacci hashing: delivery ids are dense and sequential. */
static inline size_t
fbxi_idmap_slot(uint64_t key, size_t mask)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

/* fbxi_idmap_prefetch - start loading key's home slot: a loop that knows
 * the keys it will look up next (a RESULTS batch, a dispatch round) hides
 * the cache misses of a big map. Changes nothing. */
static inline void
fbxi_idmap_prefetch(const struct fbxi_idmap *m, uint64_t key)
{
	if (m->cap != 0) {
		size_t s = fbxi_idmap_slot(key, m->cap - 1);
		__builtin_prefetch(&m->keys[s]);
		__builtin_prefetch(&m->vals[s]);
	}
}

/* Iterate: for (size_t i = 0; fbxi_idmap_next(m, &i, &k, &v);) ...
 * The map must not change during the walk (fbxi_idmap_set excepted). */
int fbxi_idmap_next(
    const struct fbxi_idmap *m, size_t *pos, uint64_t *key, uint64_t *val);

#endif
