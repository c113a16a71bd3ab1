/* SPDX-License-Identifier: MIT */
/* QSBR glue: liburcu's quiescent-state RCU for the workers, plus a deferred-free list. */
#ifndef WGT_COMMON_QSBR_H
#define WGT_COMMON_QSBR_H

/*
 * Design note
 *
 * Readers (workers) dereference shared objects with acquire loads and
 * never lock. Each worker registers with liburcu's QSBR flavour, reports a
 * quiescent state once per loop iteration (it holds no shared pointer
 * then) and goes offline around blocking waits, so a grace period never
 * waits for a sleeping worker. The single writer (the control thread,
 * never registered) unlinks an object, queues it with wgt_qsbr_defer() and
 * later calls wgt_qsbr_reclaim(), which waits one grace period and then
 * frees everything queued before the wait.
 *
 * ThreadSanitizer cannot see liburcu's synchronisation (it runs in an
 * uninstrumented library), so under TSan every quiescent point is also a
 * release and the end of a grace period an acquire on one token: exactly
 * the happens-before edge QSBR guarantees, made visible to the tool.
 */

#include <stddef.h>

/* Worker threads: register before the first read, unregister before exit. */
void wgt_qsbr_register(void);
void wgt_qsbr_unregister(void);
/* Worker (registered) only: no shared pointer is held across these. */
void wgt_qsbr_quiescent(void);
void wgt_qsbr_offline(void);
void wgt_qsbr_online(void);
/* Unregistered threads only (the control thread): waits for one grace period. */
void wgt_qsbr_synchronize(void);

/* A list of objects waiting for a grace period. Single owner (the writer). */
struct wgt_qsbr_deferred {
	struct wgt_qsbr_item *items;
	size_t n;
	size_t cap;
};

/*
 * Writer only. Queues fn(ptr) for after the next grace period. If memory
 * runs out it waits for a grace period and calls fn(ptr) at once, so an
 * object is never leaked nor freed early.
 */
void wgt_qsbr_defer(struct wgt_qsbr_deferred *d, void (*fn)(void *ptr), void *ptr);
/* Writer only. Number of queued objects. */
size_t wgt_qsbr_pending(const struct wgt_qsbr_deferred *d);
/*
 * Writer only. When anything is queued: waits for a grace period, calls
 * `drain(arg)` (may be NULL) so the caller can flush queues that may still
 * name the objects, then frees what was queued before the wait. Objects
 * queued by drain() wait for the next call.
 */
void wgt_qsbr_reclaim(struct wgt_qsbr_deferred *d, void (*drain)(void *arg), void *arg);
/* Writer only, no readers left: frees everything now and releases the list. */
void wgt_qsbr_deferred_destroy(struct wgt_qsbr_deferred *d);

#endif
