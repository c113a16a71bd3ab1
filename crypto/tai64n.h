/* SPDX-License-Identifier: MIT */
/* TAI64N timestamps for handshake initiations (whitepaper 5.4.2). */
#ifndef WGT_CRYPTO_TAI64N_H
#define WGT_CRYPTO_TAI64N_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define WGT_TAI64N_LEN 12
#define WGT_TAI64_BASE 0x400000000000000aULL /* 2^62 + 10 leap seconds, as WireGuard uses */

/*
 * Encodes a wall-clock time: 8 bytes big-endian seconds + base, 4 bytes
 * big-endian nanoseconds rounded down to a power of two (about 16.8 ms)
 * so that the timestamp does not leak a fine-grained clock.
 */
void wgt_tai64n_encode(uint8_t out[WGT_TAI64N_LEN], const struct timespec *ts);
void wgt_tai64n_now(uint8_t out[WGT_TAI64N_LEN]);

/* True when a is strictly later than b. Both are public, so memcmp order is fine. */
bool wgt_tai64n_after(const uint8_t a[WGT_TAI64N_LEN], const uint8_t b[WGT_TAI64N_LEN]);

#endif
