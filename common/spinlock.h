/* SPDX-License-Identifier: MIT */
/* A test-and-set spin lock on an atomic_flag, for short critical sections of loads and stores. */
#ifndef WGT_COMMON_SPINLOCK_H
#define WGT_COMMON_SPINLOCK_H

#include <stdatomic.h>

/* Tells the CPU it is in a spin-wait loop (x86 pause, arm64 yield); nothing elsewhere. */
static inline void wgt_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Owner only, before the lock is shared with other threads (publication orders it). */
static inline void wgt_spin_init(atomic_flag *lock)
{
	atomic_flag_clear_explicit(lock, memory_order_relaxed);
}

/*
 * Any thread. Holders must only load and store (no call that may block, no
 * allocation): a waiter spins for as long as the holder keeps it.
 */
static inline void wgt_spin_lock(atomic_flag *lock)
{
	/* S1: acquire, pairs with S2 of the previous holder: its writes under the lock are visible. */
	while (atomic_flag_test_and_set_explicit(lock, memory_order_acquire))
		wgt_cpu_relax();
}

/* Lock holder only. */
static inline void wgt_spin_unlock(atomic_flag *lock)
{
	/* S2: release, pairs with S1 of the next holder. */
	atomic_flag_clear_explicit(lock, memory_order_release);
}

#endif
