/* SPDX-License-Identifier: MIT */
/* Bounded lock-free single-producer/single-consumer ring of fixed-size elements. */
#ifndef WGT_COMMON_RING_H
#define WGT_COMMON_RING_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Design note
 *
 * One ring carries messages one way between exactly two threads, e.g. a
 * worker and the control thread (one ring per direction per worker). The
 * elements live in a slab of `capacity` slots, each `elem_size` rounded up
 * to WGT_RING_ALIGN so a slot can hold any object with fundamental
 * alignment. Two free-running counters index it modulo capacity:
 *
 *        head (consumer)              tail (producer)
 *             v                            v
 *     [ . . | a | b | c | d | . . . . . . | . ]
 *             <- tail - head queued ->
 *
 * tail - head is the number of queued elements, 0..capacity, so every slot
 * is usable: a ring of capacity N holds exactly N elements.
 *
 * Each counter is written by one side only and sits on its own cache line
 * (two lines apart, against the adjacent-line prefetcher) next to that
 * side's private copy of the other counter. The producer re-reads `head`
 * only when its copy says the ring is full, the consumer re-reads `tail`
 * only when its copy says it is empty, so in steady state each call
 * touches its own line and the slot.
 *
 * Ordering: the producer fills a slot, then stores tail with release; the
 * consumer loads tail with acquire before it reads the slot. The consumer
 * finishes reading a slot, then stores head with release; the producer
 * loads head with acquire before it overwrites the slot. No other
 * synchronisation is used.
 *
 * Contract: at most one thread produces (push, reserve, commit) and at most
 * one consumes (pop, peek, release) over the ring's life; they may be the
 * same thread. Debug builds record the first thread on each side and
 * assert that no other one takes its place. wgt_ring_count() and
 * wgt_ring_capacity() may be called from anywhere. Freeing requires that
 * neither side still uses the ring.
 */

#define WGT_RING_CAPACITY_MAX (1U << 24)
#define WGT_RING_ELEM_SIZE_MAX 65536U
/* Every slot starts on this boundary. */
#define WGT_RING_ALIGN 16U

struct wgt_ring;

/*
 * capacity: a power of two, 2..WGT_RING_CAPACITY_MAX; elem_size:
 * 1..WGT_RING_ELEM_SIZE_MAX. Returns NULL with errno EINVAL on bad
 * arguments, ENOMEM when out of memory. Any thread.
 */
struct wgt_ring *wgt_ring_new(size_t capacity, size_t elem_size);

/* No side may still use the ring. Accepts NULL. */
void wgt_ring_free(struct wgt_ring *r);

/* Single producer. Copies elem_size bytes from elem in; false when full. */
bool wgt_ring_push(struct wgt_ring *r, const void *elem);

/*
 * Single producer, zero-copy: a slot of elem_size bytes to fill, or NULL
 * when full. The element is queued by wgt_ring_commit(); until then a
 * second reserve returns the same slot, and push must not be called.
 */
void *wgt_ring_reserve(struct wgt_ring *r);

/* Single producer. Queues the slot the last successful wgt_ring_reserve() returned. */
void wgt_ring_commit(struct wgt_ring *r);

/* Single consumer. Copies the oldest element out to elem and dequeues it; false when empty. */
bool wgt_ring_pop(struct wgt_ring *r, void *elem);

/*
 * Single consumer, zero-copy: the oldest element, or NULL when empty. It
 * stays queued and valid until wgt_ring_release(); until then a second
 * peek returns the same element, and pop must not be called.
 */
const void *wgt_ring_peek(struct wgt_ring *r);

/* Single consumer. Dequeues the element the last successful wgt_ring_peek() returned. */
void wgt_ring_release(struct wgt_ring *r);

/*
 * Any thread: the number of queued elements, 0..capacity. Exact when
 * called by a side while the other is idle, otherwise a recent snapshot
 * (for "under load" heuristics, not for flow control).
 */
size_t wgt_ring_count(const struct wgt_ring *r);

/* Any thread. */
size_t wgt_ring_capacity(const struct wgt_ring *r);

#endif
