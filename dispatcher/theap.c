/*
 * theap.c: the engine's timer heap (see theap.h). Calls nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "theap.h"

static void
swap(struct fbxi_theap_ent *a, struct fbxi_theap_ent *b)
{
	struct fbxi_theap_ent t = *a;

	*a = *b;
	*b = t;
}

int
fbxi_theap_push(struct fbxi_theap *t, int64_t at_ms, uint64_t id)
{
	size_t i;

	if (t->n == t->cap) {
		size_t ncap = t->cap ? 2 * t->cap : 64;
		struct fbxi_theap_ent *nh = realloc(t->h, ncap * sizeof(*nh));
		if (nh == NULL)
			return -1;
		t->h = nh;
		t->cap = ncap;
	}
	i = t->n++;
	t->h[i].at_ms = at_ms;
	t->h[i].id = id;
	while (i > 0 && t->h[(i - 1) / 2].at_ms > t->h[i].at_ms) {
		swap(&t->h[(i - 1) / 2], &t->h[i]);
		i = (i - 1) / 2;
	}
	return 0;
}

const struct fbxi_theap_ent *
fbxi_theap_top(const struct fbxi_theap *t)
{
	return t->n > 0 ? &t->h[0] : NULL;
}

void
fbxi_theap_pop(struct fbxi_theap *t)
{
	size_t i = 0;

	if (t->n == 0)
		return;
	t->h[0] = t->h[--t->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->n && t->h[l].at_ms < t->h[m].at_ms)
			m = l;
		if (r < t->n && t->h[r].at_ms < t->h[m].at_ms)
			m = r;
		if (m == i)
			break;
		swap(&t->h[m], &t->h[i]);
		i = m;
	}
}

void
fbxi_theap_clear(struct fbxi_theap *t)
{
	t->n = 0;
}

void
fbxi_theap_free(struct fbxi_theap *t)
{
	free(t->h);
	memset(t, 0, sizeof(*t));
}
