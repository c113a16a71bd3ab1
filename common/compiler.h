/* SPDX-License-Identifier: MIT */
/* Compiler helpers shared by every layer: branch hints, cache-line layout, sizes. */
#ifndef WGT_COMMON_COMPILER_H
#define WGT_COMMON_COMPILER_H

#include <assert.h>
#include <stddef.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define WGT_CACHELINE 64
#define __wgt_cacheline_aligned __attribute__((aligned(WGT_CACHELINE)))
#define __wgt_unused __attribute__((unused))
#define __wgt_must_check __attribute__((warn_unused_result))

#define WGT_STR_(x) #x
#define WGT_STR(x) WGT_STR_(x)
#define WGT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define WGT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define WGT_MAX(a, b) ((a) > (b) ? (a) : (b))
#define WGT_ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((size_t)(a) - 1))

#define wgt_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Debug assertion backing a threading or ownership contract. */
#ifdef NDEBUG
#define WGT_ASSERT(x) ((void)0)
#else
#define WGT_ASSERT(x) assert(x)
#endif

#endif
