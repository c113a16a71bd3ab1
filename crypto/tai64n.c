/* SPDX-License-Identifier: MIT */
/* TAI64N encoding of the wall clock, coarsened so handshake timestamps do not leak a fine clock. */
#include "crypto/tai64n.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "crypto/messages.h"

/*
 * Nanoseconds are rounded down to a multiple of the largest power of two
 * not above 1 s / WGT_INITIATIONS_PER_SECOND (20 ms), as the kernel does:
 * coarse enough to hide the clock, fine enough that a peer allowed 50
 * initiations a second still sees strictly increasing timestamps.
 */
#define TAI64N_NSEC_GRANULARITY (1U << 24) /* 16777216 ns */
_Static_assert(TAI64N_NSEC_GRANULARITY <= WGT_NSEC_PER_SEC / WGT_INITIATIONS_PER_SECOND &&
		       2ULL * TAI64N_NSEC_GRANULARITY > WGT_NSEC_PER_SEC / WGT_INITIATIONS_PER_SECOND,
	       "granularity is rounddown_pow_of_two(NSEC_PER_SEC / INITIATIONS_PER_SECOND)");

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Any thread. */
void wgt_tai64n_encode(uint8_t out[WGT_TAI64N_LEN], const struct timespec *ts)
{
	/* Unsigned wrap-around makes pre-1970 times land below the base, as TAI64 wants. */
	uint64_t secs = WGT_TAI64_BASE + (uint64_t)(int64_t)ts->tv_sec;
	uint32_t nsec = (uint32_t)ts->tv_nsec;

	nsec -= nsec % TAI64N_NSEC_GRANULARITY;
	put_be64(out, secs);
	put_be32(out + 8, nsec);
}

/* Any thread. */
void wgt_tai64n_now(uint8_t out[WGT_TAI64N_LEN])
{
	struct timespec ts;

	wgt_realtime(&ts);
	wgt_tai64n_encode(out, &ts);
}

/* Any thread. Big-endian fields make byte order equal time order. */
bool wgt_tai64n_after(const uint8_t a[WGT_TAI64N_LEN], const uint8_t b[WGT_TAI64N_LEN])
{
	return memcmp(a, b, WGT_TAI64N_LEN) > 0;
}
