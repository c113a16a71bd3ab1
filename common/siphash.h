/* SPDX-License-Identifier: MIT */
/* SipHash-2-4: a keyed 64-bit hash for tables whose keys an attacker chooses. */
#ifndef WGT_COMMON_SIPHASH_H
#define WGT_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* 128-bit key as two words; fill it with random bytes or wgt_siphash_key_init(). */
struct wgt_siphash_key {
	uint64_t k[2];
};

/* Loads the 16 key bytes the way the SipHash paper numbers them (little endian). */
void wgt_siphash_key_init(struct wgt_siphash_key *key, const uint8_t bytes[16]);

/* Pure function: any thread. */
uint64_t wgt_siphash(const struct wgt_siphash_key *key, const void *data, size_t len);

#endif
