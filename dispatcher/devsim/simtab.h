/*
 * simtab.h: the gateway simulator's delivery table (fusebox-devsim):
 * per-delivery state in one open-addressing table keyed by delivery id,
 * grown without stopping the receive path.
 */
#ifndef FBX_SIMTAB_H
#define FBX_SIMTAB_H

#include <stddef.h>
#include <stdint.h>

/* fbxs_mix - splitmix64 finaliser (the simulator's deterministic choices
 * and the table's hash) */
static inline uint64_t
fbxs_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Per-delivery state, one slot of the open-addressing table. */
struct dent {
	uint64_t id; /* 0 = empty (delivery ids are never 0) */
	uint32_t dev; /* device index, UINT32_MAX = foreign */
	uint16_t received;
	uint8_t flags;
	uint8_t pad_;
};

/* Grown without stopping the receive path (a rehash of millions of
 * entries took hundreds of ms, and every delivery in flight, of any
 * organisation, waited for it): from half full, each insertion zeroes
 * (and so faults in) DTAB_ZERO slots of the next table; at 70% the next
 * table takes over and each insertion moves DTAB_MOVE slots of the old
 * one into it. Lookups see both tables meanwhile. */
#define DTAB_ZERO 64
#define DTAB_MOVE 2
struct dtab {
	struct dent *slots;
	size_t cap, n; /* cap is a power of two; n counts both tables */
	struct dent *old; /* being emptied into slots, NULL when done */
	size_t oldcap, oldpos;
	struct dent *next; /* 2 x cap slots being zeroed, NULL when none */
	size_t nextpos;
};

/* dtab_init - a table for about `want` entries (faulted in now).
 * @return FBX_OK or FBX_ENOMEM. */
int dtab_init(struct dtab *t, size_t want);

/* dtab_find - id's entry, or NULL. */
struct dent *dtab_find(const struct dtab *t, uint64_t id);

/* dtab_get - find or insert id. *created tells which. NULL on ENOMEM. */
struct dent *dtab_get(struct dtab *t, uint64_t id, int *created);

/* dtab_free - release the table's memory. */
void dtab_free(struct dtab *t);

#endif
