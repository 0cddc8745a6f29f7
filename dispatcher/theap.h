/*
 * theap.h: a binary min-heap of (due time, id) pairs: the timers of the
 * engine (settle windows, command expiry). Entries are never updated in
 * place: whoever pops one checks that it still holds (the usual "lazy
 * deletion"), and pushes again when the time moved. Internal to
 * dispatcher/.
 */
#ifndef FBXI_THEAP_H
#define FBXI_THEAP_H

#include <stddef.h>
#include <stdint.h>

struct fbxi_theap_ent {
	int64_t at_ms;
	uint64_t id;
};

struct fbxi_theap {
	struct fbxi_theap_ent *h;
	size_t n, cap;
};

/* @return 0, or -1 out of memory (heap unchanged). */
int fbxi_theap_push(struct fbxi_theap *t, int64_t at_ms, uint64_t id);
/* the earliest entry, or NULL when empty */
const struct fbxi_theap_ent *fbxi_theap_top(const struct fbxi_theap *t);
void fbxi_theap_pop(struct fbxi_theap *t);
void fbxi_theap_clear(struct fbxi_theap *t);
void fbxi_theap_free(struct fbxi_theap *t);

#endif
