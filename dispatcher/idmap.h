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
/* Iterate: for (size_t i = 0; fbxi_idmap_next(m, &i, &k, &v);) ...
 * The map must not change during the walk (fbxi_idmap_set excepted). */
int fbxi_idmap_next(
    const struct fbxi_idmap *m, size_t *pos, uint64_t *key, uint64_t *val);

#endif
