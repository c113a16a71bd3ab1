/* SPDX-License-Identifier: MIT */
/* Kernel randomness for seeds and indices (getrandom(2), never short, never blocking after boot). */
#ifndef WGT_COMMON_RANDOM_H
#define WGT_COMMON_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 or -errno. */
int wgt_random_bytes(void *buf, size_t len);
uint32_t wgt_random_u32(void);

#endif
