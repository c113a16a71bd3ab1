/* SPDX-License-Identifier: MIT */
/* Bounded lock-free single-producer/single-consumer ring: counters, slab and the two sides. */
#include "common/ring.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/compiler.h"

/*
 * Hot groups sit two cache lines apart: Intel's adjacent-line prefetcher
 * pulls lines in pairs, which would make neighbours false-share.
 */
#define RING_GUARD (2 * WGT_CACHELINE)

#ifndef NDEBUG
#define DEBUG_ONLY(x) x
#else
#define DEBUG_ONLY(x)
#endif

/*
 * Memory-order edges (see the design note in ring.h):
 *   W1  producer: release store of tail, after filling the slot.
 *   R1  consumer: acquire load of tail, before reading the slot. Pairs with W1.
 *   W2  consumer: release store of head, after reading the slot.
 *   R2  producer: acquire load of head, before overwriting the slot. Pairs with W2.
 *   R3  wgt_ring_count(): acquire load of head, so the tail it reads next is
 *       at least head. Pairs with W2.
 */
struct wgt_ring {
	/* Read-only after wgt_ring_new(): both sides read it, nobody writes it. */
	unsigned char *slab;
	size_t mask;		/* capacity - 1 */
	size_t stride;		/* bytes per slot: elem_size rounded up to WGT_RING_ALIGN */
	size_t elem_size;

	/* Producer-owned: written by every push, read by the consumer only when it runs dry. */
	_Atomic size_t tail __attribute__((aligned(RING_GUARD)));
	size_t head_cache;	/* last head the producer saw; head only grows */
#ifndef NDEBUG
	atomic_uintptr_t producer; /* thread tag of the first producer */
	bool reserved;		/* between a successful reserve and its commit */
#endif

	/* Consumer-owned: written by every pop, read by the producer only when it fills up. */
	_Atomic size_t head __attribute__((aligned(RING_GUARD)));
	size_t tail_cache;	/* last tail the consumer saw; tail only grows */
#ifndef NDEBUG
	atomic_uintptr_t consumer;
	bool peeked;		/* between a successful peek and its release */
#endif
};

_Static_assert(offsetof(struct wgt_ring, tail) >= RING_GUARD,
	       "read-only fields must not share the producer's lines");
_Static_assert(offsetof(struct wgt_ring, head) - offsetof(struct wgt_ring, tail) >= RING_GUARD,
	       "producer and consumer counters must be two cache lines apart");
_Static_assert(offsetof(struct wgt_ring, head_cache) < offsetof(struct wgt_ring, tail) + WGT_CACHELINE,
	       "the producer's fields must fit in one cache line");
_Static_assert(offsetof(struct wgt_ring, tail_cache) < offsetof(struct wgt_ring, head) + WGT_CACHELINE,
	       "the consumer's fields must fit in one cache line");
_Static_assert(sizeof(struct wgt_ring) - offsetof(struct wgt_ring, head) >= RING_GUARD,
	       "the consumer's lines must not be shared with a neighbouring allocation");
_Static_assert(WGT_RING_ALIGN >= _Alignof(max_align_t), "a slot must hold any fundamental type");

#ifndef NDEBUG
/* Its address tells live threads apart; only debug builds look at it. */
static _Thread_local char thread_tag;

/* Debug check of the single-producer/single-consumer contract: the first thread on a side owns it. */
static void assert_side(atomic_uintptr_t *side)
{
	uintptr_t me = (uintptr_t)&thread_tag;
	/* Relaxed: the tag only names a thread, it publishes nothing. */
	uintptr_t first = atomic_load_explicit(side, memory_order_relaxed);

	if (unlikely(!first) &&
	    atomic_compare_exchange_strong_explicit(side, &first, me, memory_order_relaxed,
						    memory_order_relaxed))
		return;
	WGT_ASSERT(first == me && "a second thread is using one side of an SPSC ring");
}
#endif

static unsigned char *slot_at(const struct wgt_ring *r, size_t index)
{
	return r->slab + (index & r->mask) * r->stride;
}

/* Single producer: the next free slot, or NULL when full. */
static void *producer_slot(struct wgt_ring *r, size_t *ret_tail)
{
	/* Relaxed: only this thread writes tail. */
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (unlikely(tail - r->head_cache > r->mask)) {
		/* R2: pairs with W2; the consumer is done with the slot we will overwrite. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail - r->head_cache > r->mask)
			return NULL;
	}
	*ret_tail = tail;
	return slot_at(r, tail);
}

/* Single consumer: the oldest queued slot, or NULL when empty. */
static const void *consumer_slot(struct wgt_ring *r, size_t *ret_head)
{
	/* Relaxed: only this thread writes head. */
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (unlikely(head == r->tail_cache)) {
		/* R1: pairs with W1; the producer's writes to the slot are visible. */
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head == r->tail_cache)
			return NULL;
	}
	*ret_head = head;
	return slot_at(r, head);
}

/* Any thread */
struct wgt_ring *wgt_ring_new(size_t capacity, size_t elem_size)
{
	struct wgt_ring *r;
	size_t stride, bytes;

	if (capacity < 2 || capacity > WGT_RING_CAPACITY_MAX || (capacity & (capacity - 1)) ||
	    elem_size < 1 || elem_size > WGT_RING_ELEM_SIZE_MAX) {
		errno = EINVAL;
		return NULL;
	}
	stride = WGT_ALIGN_UP(elem_size, WGT_RING_ALIGN);
	if (stride > (SIZE_MAX - WGT_CACHELINE) / capacity) {
		errno = ENOMEM;
		return NULL;
	}
	bytes = WGT_ALIGN_UP(capacity * stride, WGT_CACHELINE);

	r = aligned_alloc(_Alignof(struct wgt_ring), sizeof(*r));
	if (!r)
		goto err_ring;
	memset(r, 0, sizeof(*r));
	r->slab = aligned_alloc(WGT_CACHELINE, bytes);
	if (!r->slab)
		goto err_slab;
	r->mask = capacity - 1;
	r->stride = stride;
	r->elem_size = elem_size;
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	DEBUG_ONLY(atomic_init(&r->producer, 0));
	DEBUG_ONLY(atomic_init(&r->consumer, 0));
	return r;

err_slab:
	free(r);
err_ring:
	errno = ENOMEM;
	return NULL;
}

/* Neither side may still use the ring. */
void wgt_ring_free(struct wgt_ring *r)
{
	if (!r)
		return;
	free(r->slab);
	free(r);
}

/* Single producer */
bool wgt_ring_push(struct wgt_ring *r, const void *elem)
{
	size_t tail;
	void *slot;

	DEBUG_ONLY(assert_side(&r->producer));
	DEBUG_ONLY(WGT_ASSERT(!r->reserved && "push between reserve and commit"));
	slot = producer_slot(r, &tail);
	if (unlikely(!slot))
		return false;
	memcpy(slot, elem, r->elem_size);
	/* W1: pairs with R1; publishes the slot's contents with the new tail. */
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return true;
}

/* Single producer */
void *wgt_ring_reserve(struct wgt_ring *r)
{
	size_t tail;
	void *slot;

	DEBUG_ONLY(assert_side(&r->producer));
	slot = producer_slot(r, &tail);
	DEBUG_ONLY(r->reserved = r->reserved || slot);
	return slot;
}

/* Single producer */
void wgt_ring_commit(struct wgt_ring *r)
{
	/* Relaxed: only this thread writes tail. */
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	DEBUG_ONLY(assert_side(&r->producer));
	DEBUG_ONLY(WGT_ASSERT(r->reserved && "commit without a reserved slot"));
	DEBUG_ONLY(r->reserved = false);
	/* W1: pairs with R1; publishes what the caller wrote into the reserved slot. */
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

/* Single consumer */
bool wgt_ring_pop(struct wgt_ring *r, void *elem)
{
	const void *slot;
	size_t head;

	DEBUG_ONLY(assert_side(&r->consumer));
	DEBUG_ONLY(WGT_ASSERT(!r->peeked && "pop between peek and release"));
	slot = consumer_slot(r, &head);
	if (unlikely(!slot))
		return false;
	memcpy(elem, slot, r->elem_size);
	/* W2: pairs with R2; the copy-out is complete before the producer may reuse the slot. */
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return true;
}

/* Single consumer */
const void *wgt_ring_peek(struct wgt_ring *r)
{
	const void *slot;
	size_t head;

	DEBUG_ONLY(assert_side(&r->consumer));
	slot = consumer_slot(r, &head);
	DEBUG_ONLY(r->peeked = r->peeked || slot);
	return slot;
}

/* Single consumer */
void wgt_ring_release(struct wgt_ring *r)
{
	/* Relaxed: only this thread writes head. */
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	DEBUG_ONLY(assert_side(&r->consumer));
	DEBUG_ONLY(WGT_ASSERT(r->peeked && "release without a peeked element"));
	DEBUG_ONLY(r->peeked = false);
	/* W2: pairs with R2; the caller's reads of the slot are complete before it is reused. */
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

/* Any thread */
size_t wgt_ring_count(const struct wgt_ring *r)
{
	/* R3: pairs with W2; the tail that let the consumer reach this head is visible below. */
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	/* Relaxed: a snapshot; R3 already bounds it from below. */
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	/* Both sides may have moved on between the two loads. */
	return WGT_MIN(tail - head, r->mask + 1);
}

/* Any thread */
size_t wgt_ring_capacity(const struct wgt_ring *r)
{
	return r->mask + 1;
}
