/* SPDX-License-Identifier: MIT */
/* QSBR glue: liburcu's quiescent-state RCU for the workers, plus a deferred-free list. */
#include "common/qsbr.h"

#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#if defined(__SANITIZE_THREAD__)
#define WGT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WGT_TSAN 1
#endif
#endif

#ifdef WGT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char tsan_token;
#define tsan_release() __tsan_release(&tsan_token)
#define tsan_acquire() __tsan_acquire(&tsan_token)
#else
#define tsan_release() ((void)0)
#define tsan_acquire() ((void)0)
#endif

struct wgt_qsbr_item {
	void (*fn)(void *ptr);
	void *ptr;
};

void wgt_qsbr_register(void)
{
	urcu_qsbr_register_thread();
}

void wgt_qsbr_unregister(void)
{
	tsan_release();
	urcu_qsbr_unregister_thread();
}

void wgt_qsbr_quiescent(void)
{
	tsan_release();
	urcu_qsbr_quiescent_state();
}

void wgt_qsbr_offline(void)
{
	tsan_release();
	urcu_qsbr_thread_offline();
}

void wgt_qsbr_online(void)
{
	urcu_qsbr_thread_online();
}

void wgt_qsbr_synchronize(void)
{
	urcu_qsbr_synchronize_rcu();
	tsan_acquire();
}

void wgt_qsbr_defer(struct wgt_qsbr_deferred *d, void (*fn)(void *ptr), void *ptr)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct wgt_qsbr_item *items = realloc(d->items, cap * sizeof(*items));

		if (!items) {
			wgt_qsbr_synchronize();
			fn(ptr);
			return;
		}
		d->items = items;
		d->cap = cap;
	}
	d->items[d->n].fn = fn;
	d->items[d->n].ptr = ptr;
	d->n++;
}

size_t wgt_qsbr_pending(const struct wgt_qsbr_deferred *d)
{
	return d->n;
}

void wgt_qsbr_reclaim(struct wgt_qsbr_deferred *d, void (*drain)(void *arg), void *arg)
{
	size_t n = d->n;

	if (!n)
		return;
	wgt_qsbr_synchronize();
	if (drain)
		drain(arg);
	for (size_t i = 0; i < n; i++)
		d->items[i].fn(d->items[i].ptr);
	memmove(d->items, d->items + n, (d->n - n) * sizeof(*d->items));
	d->n -= n;
}

void wgt_qsbr_deferred_destroy(struct wgt_qsbr_deferred *d)
{
	for (size_t i = 0; i < d->n; i++)
		d->items[i].fn(d->items[i].ptr);
	free(d->items);
	memset(d, 0, sizeof(*d));
}
