/* SPDX-License-Identifier: MIT */
/* Receiver-index table: our 32-bit session indices to keypairs and pending handshakes. */
#ifndef WGT_GATEWAY_INDEX_H
#define WGT_GATEWAY_INDEX_H

/*
 * Design note
 *
 * Every handshake we take part in and every keypair it yields is named on
 * the wire by a 32-bit index we chose. Since we choose it, we make it
 * cheap to find: the low WGT_INDEX_SLOT_BITS bits are a slot in a flat
 * array and the high bits are random, so a lookup is one load and one
 * compare, no hashing and no chain. (liburcu's rculfhash would also do,
 * at the price of a hash, a bucket walk and a resize thread on the data
 * path; a table we index directly needs none of that.)
 *
 *   index = random << WGT_INDEX_SLOT_BITS | slot
 *   slots[slot] = tagged pointer: keypair (tag 0) or peer with a pending handshake (tag 1)
 *
 * The slot holds only the pointer; the full index is checked against the
 * object it points to (keypair->local_index is immutable, the handshake's
 * local_index is read on the control thread only), so a slot reused while
 * a reader still holds the old pointer is harmless. Objects are freed
 * after a grace period by their owners, not here.
 *
 * One writer (the control thread); lookups are lock-free on any thread
 * inside a QSBR read-side section. The cap is the slot count; a full
 * table refuses new handshakes and counts it.
 *
 * Lanes. The top byte also names the worker that receives what is sent to
 * the index: the sockets' steering program (gateway/device.c) sends a data
 * message to socket (top byte) % n_workers, and every index of a peer is
 * taken in the peer's lane, so all of a peer's keypairs, across rekeys
 * and roaming, land on one worker, and the peers spread over the workers
 * by count instead of by the hash of their 4-tuples.
 *
 *   index bits: | 31..24 lane + k * n_lanes | 23..20 random | 19..0 slot |
 */

#include <stdatomic.h>
#include <stdint.h>

#define WGT_INDEX_SLOT_BITS 20
#define WGT_INDEX_SLOTS (1U << WGT_INDEX_SLOT_BITS)
/* The lane byte: on the wire (little-endian) the index's last byte. */
#define WGT_INDEX_LANE_SHIFT 24
#define WGT_INDEX_LANES_MAX 256

enum wgt_index_kind {
	WGT_INDEX_KEYPAIR = 0,
	WGT_INDEX_HANDSHAKE = 1,
};

struct wgt_index_table {
	_Atomic uintptr_t *slots;
	uint32_t *free_slots;     /* stack of released slots */
	uint32_t n_free;
	uint32_t next_unused;     /* slots never used yet start here */
	uint64_t full_hits;       /* allocations refused: table full */
};

/* Control thread only. Returns 0 or -ENOMEM. */
int wgt_index_table_init(struct wgt_index_table *t);
void wgt_index_table_destroy(struct wgt_index_table *t);
/*
 * Control thread only. Takes a fresh index for obj in lane `lane` of
 * n_lanes (1..WGT_INDEX_LANES_MAX; lane < n_lanes). Returns 0, -ENOSPC
 * (counted) or -EINVAL for a bad lane.
 */
int wgt_index_alloc(struct wgt_index_table *t, enum wgt_index_kind kind, void *obj,
		    unsigned lane, unsigned n_lanes, uint32_t *ret_index);

/* The lane of index among n_lanes (1..WGT_INDEX_LANES_MAX). */
static inline unsigned wgt_index_lane(uint32_t index, unsigned n_lanes)
{
	return (index >> WGT_INDEX_LANE_SHIFT) % n_lanes;
}
/* Control thread only. Points an allocated index at another object. */
void wgt_index_replace(struct wgt_index_table *t, uint32_t index, enum wgt_index_kind kind,
		       void *obj);
/* Control thread only. Releases index if it still points at obj. */
void wgt_index_release(struct wgt_index_table *t, uint32_t index, void *obj);

/*
 * QSBR read side (or the control thread). The object stored for index's
 * slot and its kind, or NULL; the caller checks the object's own index.
 */
static inline void *wgt_index_lookup(struct wgt_index_table *t, uint32_t index,
				     enum wgt_index_kind *ret_kind)
{
	/* I1: pairs with the release stores in wgt_index_alloc()/replace(). */
	uintptr_t v = atomic_load_explicit(&t->slots[index & (WGT_INDEX_SLOTS - 1)],
					   memory_order_acquire);

	*ret_kind = (enum wgt_index_kind)(v & 1);
	return (void *)(v & ~(uintptr_t)1);
}

#endif
