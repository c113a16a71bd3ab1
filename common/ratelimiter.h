/* SPDX-License-Identifier: MIT */
/* Handshake rate limiter: a token bucket per source IPv4 address or IPv6 /64. */
#ifndef WGT_COMMON_RATELIMITER_H
#define WGT_COMMON_RATELIMITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Design note
 *
 * Each source gets a bucket of WGT_RATELIMITER_BURST tokens refilled at
 * WGT_RATELIMITER_RATE per second; a handshake packet costs one token.
 * Tokens are kept in nanoseconds of credit (one packet = 50 ms), so
 * refilling is one subtraction of timestamps and never loses fractions.
 *
 * Sources are keyed by the full IPv4 address (an IPv4-mapped IPv6 address
 * counts as IPv4) or by the IPv6 /64, since one host usually owns a whole
 * /64 and could otherwise rotate addresses to dodge the limit. Ports are
 * ignored.
 *
 * The table is a fixed pool of `max_entries` buckets in a chained hash
 * table keyed with SipHash under a random per-table secret, so a remote
 * sender cannot aim many sources at one chain. When the pool is full a
 * new source is refused (and counted) rather than evicting a tracked one:
 * a flood of spoofed sources must not reset the buckets of real ones.
 * wgt_ratelimiter_gc() returns buckets idle long enough to be full again,
 * which forgets nothing; call it about once a second.
 *
 * Time is passed in (monotonic ns) so tests control it. Single-threaded:
 * the control thread owns the limiter; every function is "control thread
 * only" and a debug assertion checks that one thread does all the calls.
 */

#define WGT_RATELIMITER_RATE 20
#define WGT_RATELIMITER_BURST 5
#define WGT_RATELIMITER_MAX_ENTRIES (1U << 20)

union wgt_sockaddr;
struct wgt_ratelimiter;

struct wgt_ratelimiter_stats {
	size_t entries;		/* sources tracked now */
	uint64_t table_full;	/* new sources refused because the pool was full */
	uint64_t limited;	/* packets refused for lack of tokens */
};

/* Returns NULL when out of memory or max_entries is 0 or above WGT_RATELIMITER_MAX_ENTRIES. */
struct wgt_ratelimiter *wgt_ratelimiter_new(size_t max_entries);

/* Accepts NULL. */
void wgt_ratelimiter_free(struct wgt_ratelimiter *rl);

/* True if a handshake from src may be processed now; unknown families are refused. */
bool wgt_ratelimiter_allow(struct wgt_ratelimiter *rl, const union wgt_sockaddr *src,
			   uint64_t now_ns);

/* Forgets sources whose bucket has refilled completely. */
void wgt_ratelimiter_gc(struct wgt_ratelimiter *rl, uint64_t now_ns);

void wgt_ratelimiter_stats(const struct wgt_ratelimiter *rl,
			   struct wgt_ratelimiter_stats *ret_stats);

#endif
