/* SPDX-License-Identifier: MIT */
/* Receiver-index table: our 32-bit session indices to keypairs and pending handshakes. */
#include "gateway/index.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/random.h"

int wgt_index_table_init(struct wgt_index_table *t)
{
	memset(t, 0, sizeof(*t));
	/* calloc: untouched slots stay zero pages until a handshake needs them. */
	t->slots = calloc(WGT_INDEX_SLOTS, sizeof(*t->slots));
	t->free_slots = malloc(WGT_INDEX_SLOTS * sizeof(*t->free_slots));
	if (!t->slots || !t->free_slots) {
		wgt_index_table_destroy(t);
		return -ENOMEM;
	}
	/* Slot 0 is never used, so index 0 never names anything. */
	t->next_unused = 1;
	return 0;
}

void wgt_index_table_destroy(struct wgt_index_table *t)
{
	free((void *)t->slots);
	free(t->free_slots);
	memset(t, 0, sizeof(*t));
}

static uintptr_t tag(enum wgt_index_kind kind, void *obj)
{
	return (uintptr_t)obj | (uintptr_t)kind;
}

int wgt_index_alloc(struct wgt_index_table *t, enum wgt_index_kind kind, void *obj,
		    unsigned lane, unsigned n_lanes, uint32_t *ret_index)
{
	uint32_t slot, r, top;

	if (!n_lanes || n_lanes > WGT_INDEX_LANES_MAX || lane >= n_lanes)
		return -EINVAL;
	if (t->n_free) {
		slot = t->free_slots[--t->n_free];
	} else if (t->next_unused < WGT_INDEX_SLOTS) {
		slot = t->next_unused++;
	} else {
		t->full_hits++;
		return -ENOSPC;
	}
	/* I1: pairs with the acquire load in wgt_index_lookup(). */
	atomic_store_explicit(&t->slots[slot], tag(kind, obj), memory_order_release);
	r = wgt_random_u32();
	/* lane + a random multiple of n_lanes that keeps the byte under 256 */
	top = lane + n_lanes * ((r >> 8) % (WGT_INDEX_LANES_MAX / n_lanes));
	*ret_index = top << WGT_INDEX_LANE_SHIFT |
		     (r & ((1U << (WGT_INDEX_LANE_SHIFT - WGT_INDEX_SLOT_BITS)) - 1))
			     << WGT_INDEX_SLOT_BITS |
		     slot;
	return 0;
}

void wgt_index_replace(struct wgt_index_table *t, uint32_t index, enum wgt_index_kind kind,
		       void *obj)
{
	/* I1: pairs with the acquire load in wgt_index_lookup(). */
	atomic_store_explicit(&t->slots[index & (WGT_INDEX_SLOTS - 1)], tag(kind, obj),
			      memory_order_release);
}

void wgt_index_release(struct wgt_index_table *t, uint32_t index, void *obj)
{
	uint32_t slot = index & (WGT_INDEX_SLOTS - 1);
	uintptr_t v = atomic_load_explicit(&t->slots[slot], memory_order_relaxed);

	if (!slot || (v & ~(uintptr_t)1) != (uintptr_t)obj)
		return;
	atomic_store_explicit(&t->slots[slot], 0, memory_order_relaxed);
	t->free_slots[t->n_free++] = slot;
}
