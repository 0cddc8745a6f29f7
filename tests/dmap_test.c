/*
 * dmap_test.c: the in-flight delivery map (dispatcher/dmap.c) against a
 * brute-force reference: random puts, replaces, sets and deletes over
 * keys that mix dense runs (one command's deliveries) with isolated keys
 * (single-device commands), chunks that empty and come back from the
 * spare list, iteration that visits each key once with its value (also
 * while values are replaced through set), clear, and a 1,000,000-key run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmap.h"

static int passed, failed;

#define CHECK(c, ...)                                                        \
	do {                                                                 \
		if (c) {                                                     \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

#define NKEYS 6000

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* key i of the universe: the first half dense runs of three commands'
 * deliveries, the rest index 0 of 3,000 single-device commands */
static uint64_t
key_of(size_t i)
{
	if (i < NKEYS / 2)
		return ((uint64_t)(5 + i % 3) << 24) | (i / 3);
	return ((uint64_t)(1000 + i) << 24);
}

static int
index_of(uint64_t key)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (key_of(i) == key)
			return (int)i;
	return -1;
}

int
main(void)
{
	struct fbxi_dmap m;
	static uint64_t ref[NKEYS]; /* value + 1, 0 = absent */
	static unsigned seen[NKEYS];
	uint64_t seed = 88172645463325252ull, k, v;
	size_t live = 0, pos, visited;
	int bad = 0;

	fbxi_dmap_init(&m);
	for (int step = 0; step < 300000; step++) {
		size_t i = (size_t)(rnd(&seed) % NKEYS);
		uint64_t key = key_of(i);
		int op = (int)(rnd(&seed) % 4);

		if (op < 2) {
			if (ref[i] == 0)
				live++;
			ref[i] = (uint64_t)step + 1;
			if (fbxi_dmap_put(&m, key, (uint64_t)step) != 0)
				bad++;
		} else if (op == 2) {
			int had = fbxi_dmap_set(&m, key, (uint64_t)step);
			if (had != (ref[i] != 0))
				bad++;
			if (ref[i] != 0)
				ref[i] = (uint64_t)step + 1;
		} else {
			int had = fbxi_dmap_del(&m, key, &v);
			if (had != (ref[i] != 0) || (had && v + 1 != ref[i]))
				bad++;
			if (ref[i] != 0)
				live--;
			ref[i] = 0;
		}
		if (m.len != live)
			bad++;
	}
	CHECK(bad == 0, "%d mismatches in put/set/del/len", bad);
	CHECK(m.len == live, "len %zu, reference %zu", m.len, live);
	bad = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		int has = fbxi_dmap_get(&m, key_of(i), &v);
		if (has != (ref[i] != 0) || (has && v + 1 != ref[i]))
			bad++;
	}
	CHECK(bad == 0, "%d mismatches in get", bad);
	/* keys never put: neighbours of present ones in the same chunk and
	 * in other chunks */
	CHECK(!fbxi_dmap_get(&m, (5ull << 24) | 5000, NULL), "absent key");
	CHECK(!fbxi_dmap_get(&m, 999ull << 24, NULL), "absent key");
	CHECK(!fbxi_dmap_del(&m, 999ull << 24, NULL), "absent key deleted");
	/* a walk visits each present key once, with its value, also when a
	 * value is replaced through set during it */
	pos = 0;
	visited = 0;
	memset(seen, 0, sizeof(seen));
	while (fbxi_dmap_next(&m, &pos, &k, &v)) {
		int i = index_of(k);
		if (i < 0 || ref[i] == 0 || v + 1 != ref[i])
			bad++;
		else
			seen[i]++;
		if (fbxi_dmap_set(&m, k, v + 1000000) != 1)
			bad++;
		visited++;
	}
	for (size_t i = 0; i < NKEYS; i++)
		if ((ref[i] != 0) != (seen[i] == 1))
			bad++;
	CHECK(bad == 0 && visited == live, "walk visited %zu of %zu, %d bad",
	    visited, live, bad);
	for (size_t i = 0; i < NKEYS; i++) {
		if (ref[i] != 0 && (!fbxi_dmap_get(&m, key_of(i), &v) ||
		                       v != ref[i] - 1 + 1000000))
			bad++;
	}
	CHECK(bad == 0, "values set during the walk: %d wrong", bad);
	/* clear: nothing left, and the map is usable again */
	fbxi_dmap_clear(&m);
	pos = 0;
	CHECK(m.len == 0 && !fbxi_dmap_next(&m, &pos, &k, &v),
	    "clear left %zu", m.len);
	CHECK(fbxi_dmap_put(&m, 1, 7) == 0 && fbxi_dmap_get(&m, 1, &v) &&
	        v == 7 && m.len == 1,
	    "put after clear");
	CHECK(fbxi_dmap_del(&m, 1, NULL) == 1 && m.len == 0, "del after clear");
	/* one big command: a dense run of 1,000,000, emptied in order */
	for (uint64_t i = 0; i < 1000000; i++)
		bad += fbxi_dmap_put(&m, (7ull << 24) | i, i) != 0;
	CHECK(bad == 0 && m.len == 1000000, "dense put: len %zu", m.len);
	for (uint64_t i = 0; i < 1000000; i++) {
		if (!fbxi_dmap_del(&m, (7ull << 24) | i, &v) || v != i)
			bad++;
	}
	CHECK(bad == 0 && m.len == 0, "dense delete: %d wrong", bad);
	CHECK(m.dir.len == 0 && m.dir.cap <= 128,
	    "directory not emptied or shrunk: len %zu cap %zu", m.dir.len,
	    m.dir.cap);
	CHECK(m.nspare == DMAP_SPARE, "spare chunks kept: %u", m.nspare);
	fbxi_dmap_fini(&m);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
