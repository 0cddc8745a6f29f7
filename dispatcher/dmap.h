/*
 * dmap.h: a map from non-zero u64 keys to u64 values for keys that come
 * in dense runs: a gateway's in-flight deliveries (delivery id = command
 * id << 24 | index, handed out in index order and mostly answered in
 * that order). Values live in chunks of DMAP_CHUNK consecutive keys,
 * found through an fbxi_idmap keyed by key / DMAP_CHUNK: the directory
 * stays small enough to stay in cache (a 65,536-delivery window is 4,096
 * chunks), and consecutive lookups read consecutive slots of one chunk,
 * where the hashed map took a cache miss in each of its two arrays per
 * key. An isolated key (a single-device command) costs one chunk
 * (136 bytes) instead of a hashed slot (16-32 bytes). Internal to
 * dispatcher/.
 */
#ifndef FBXI_DMAP_H
#define FBXI_DMAP_H

#include <stddef.h>
#include <stdint.h>

#include "idmap.h"

#define DMAP_CHUNK_BITS 4
#define DMAP_CHUNK (1u << DMAP_CHUNK_BITS)
#define DMAP_SPARE 64 /* empty chunks kept for reuse */

struct fbxi_dchunk {
	uint32_t present; /* bit i: key base * DMAP_CHUNK + i is present */
	uint32_t n;       /* bits set */
	uint64_t vals[DMAP_CHUNK];
};

struct fbxi_dmap {
	struct fbxi_idmap dir; /* key / DMAP_CHUNK + 1 -> struct fbxi_dchunk * */
	size_t len;            /* keys present */
	struct fbxi_dchunk *spare[DMAP_SPARE];
	unsigned nspare;
};

void fbxi_dmap_init(struct fbxi_dmap *m);
void fbxi_dmap_fini(struct fbxi_dmap *m);
/* fbxi_dmap_put - insert or replace; key non-zero. @return 0, or -1 when
 * memory is exhausted (map unchanged). */
int fbxi_dmap_put(struct fbxi_dmap *m, uint64_t key, uint64_t val);
/* fbxi_dmap_set - replace the value of a present key; never allocates or
 * frees, so it is allowed during a walk. @return 1 if present, else 0. */
int fbxi_dmap_set(struct fbxi_dmap *m, uint64_t key, uint64_t val);
/* fbxi_dmap_get - @return 1 and *val (may be NULL) if present, else 0 */
int fbxi_dmap_get(const struct fbxi_dmap *m, uint64_t key, uint64_t *val);
/* fbxi_dmap_del - @return 1 and *val (may be NULL) if it was present */
int fbxi_dmap_del(struct fbxi_dmap *m, uint64_t key, uint64_t *val);
/* fbxi_dmap_clear - drop every entry */
void fbxi_dmap_clear(struct fbxi_dmap *m);
/* Iterate: for (size_t i = 0; fbxi_dmap_next(m, &i, &k, &v);) ...
 * The map must not change during the walk (fbxi_dmap_set excepted). */
int fbxi_dmap_next(
    const struct fbxi_dmap *m, size_t *pos, uint64_t *key, uint64_t *val);

/* fbxi_dmap_prefetch - start loading key's directory slot. */
static inline void
fbxi_dmap_prefetch(const struct fbxi_dmap *m, uint64_t key)
{
	fbxi_idmap_prefetch(&m->dir, (key >> DMAP_CHUNK_BITS) + 1);
}

#endif
