/*
 * idmap_test.c: the in-flight id map against a brute-force reference:
 * random inserts, replaces and deletes (the backward-shift deletion is the
 * subtle part), growth and shrink, iteration visiting each key once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"

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

#define N 20000

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int
main(void)
{
	struct fbxi_idmap m;
	static uint64_t ref[N]; /* ref[k] = value + 1, 0 = absent */
	uint64_t seed = 88172645463325252ull, k, v;
	size_t live = 0, pos = 0, visited = 0;
	int bad = 0;

	fbxi_idmap_init(&m);
	for (int step = 0; step < 400000; step++) {
		uint64_t key = rnd(&seed) % N;
		int op = (int)(rnd(&seed) % 3);
		if (key == 0)
			continue;
		if (op < 2) {
			if (ref[key] == 0)
				live++;
			ref[key] = (uint64_t)step + 1;
			if (fbxi_idmap_put(&m, key, (uint64_t)step) != 0)
				bad++;
		} else {
			int had = fbxi_idmap_del(&m, key, &v);
			if (had != (ref[key] != 0) ||
			    (had && v + 1 != ref[key]))
				bad++;
			if (ref[key] != 0)
				live--;
			ref[key] = 0;
		}
	}
	CHECK(bad == 0, "%d mismatches in put/del", bad);
	CHECK(m.len == live, "len %zu, reference %zu", m.len, live);
	bad = 0;
	for (uint64_t key = 1; key < N; key++) {
		int has = fbxi_idmap_get(&m, key, &v);
		if (has != (ref[key] != 0) || (has && v + 1 != ref[key]))
			bad++;
	}
	CHECK(bad == 0, "%d mismatches in get", bad);
	while (fbxi_idmap_next(&m, &pos, &k, &v)) {
		if (k >= N || ref[k] == 0)
			bad++;
		visited++;
	}
	CHECK(bad == 0 && visited == live, "iteration visited %zu of %zu",
	    visited, live);
	/* delivery ids of one big command: dense, then emptied: shrinks */
	fbxi_idmap_clear(&m);
	for (uint64_t i = 0; i < 1000000; i++)
		fbxi_idmap_put(&m, (7ull << 24) | i, 1);
	CHECK(m.len == 1000000, "len %zu", m.len);
	for (uint64_t i = 0; i < 1000000; i++)
		bad += !fbxi_idmap_del(&m, (7ull << 24) | i, NULL);
	CHECK(bad == 0 && m.len == 0, "dense delete: %d missing", bad);
	CHECK(m.cap <= 128, "table did not shrink: cap %zu", m.cap);
	fbxi_idmap_fini(&m);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
