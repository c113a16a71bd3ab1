/* SPDX-License-Identifier: MIT */
/* Handshake rate limiter: a fixed pool of token buckets in a SipHash-keyed table. */
#include "common/ratelimiter.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/compiler.h"
#include "common/endpoint.h"
#include "common/random.h"
#include "common/siphash.h"

#define PACKET_COST_NS (WGT_NSEC_PER_SEC / WGT_RATELIMITER_RATE)
#define TOKENS_MAX_NS (PACKET_COST_NS * WGT_RATELIMITER_BURST)

/* Source identity: family and up to 8 address bytes, zero padded to hash and compare whole. */
struct source {
	uint8_t family;
	uint8_t pad[7];
	uint8_t addr[8];
};

struct entry {
	struct entry *next;	/* hash chain, or the free list */
	uint64_t last_ns;
	uint64_t tokens_ns;
	struct source src;
};

struct wgt_ratelimiter {
	struct wgt_siphash_key secret;
	struct entry **chains;
	size_t chain_mask;
	struct entry *pool;
	struct entry *free_list;
	size_t max_entries;
	struct wgt_ratelimiter_stats stats;
#ifndef NDEBUG
	pthread_t owner;
	bool owned;
#endif
};

/* Debug check of the single-thread contract: the first caller owns the limiter. */
static void assert_owner(struct wgt_ratelimiter *rl)
{
#ifndef NDEBUG
	if (!rl->owned) {
		rl->owner = pthread_self();
		rl->owned = true;
	}
	WGT_ASSERT(pthread_equal(rl->owner, pthread_self()));
#endif
}

/* Returns false for a family we do not limit by. */
static bool source_of(const union wgt_sockaddr *sa, struct source *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (sa->sa.sa_family == AF_INET) {
		ret->family = 4;
		memcpy(ret->addr, &sa->in4.sin_addr, 4);
		return true;
	}
	if (sa->sa.sa_family != AF_INET6)
		return false;
	/* A dual-stack socket shows IPv4 senders as ::ffff:a.b.c.d, all in one /64. */
	if (IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr)) {
		ret->family = 4;
		memcpy(ret->addr, &sa->in6.sin6_addr.s6_addr[12], 4);
		return true;
	}
	ret->family = 6;
	memcpy(ret->addr, sa->in6.sin6_addr.s6_addr, 8);
	return true;
}

/* Credit the bucket would hold at now_ns, capped at a full bucket. */
static uint64_t tokens_at(const struct entry *e, uint64_t now_ns)
{
	/* A clock step backwards refills nothing rather than wrapping around. */
	uint64_t elapsed = now_ns > e->last_ns ? now_ns - e->last_ns : 0;

	return WGT_MIN(e->tokens_ns + WGT_MIN(elapsed, TOKENS_MAX_NS), TOKENS_MAX_NS);
}

/* Any thread: the first allow() or gc() call then fixes the owning thread. */
struct wgt_ratelimiter *wgt_ratelimiter_new(size_t max_entries)
{
	struct wgt_ratelimiter *rl;
	size_t chains = 1;

	if (!max_entries || max_entries > WGT_RATELIMITER_MAX_ENTRIES)
		return NULL;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	/* One chain per entry at most: chains stay short even when the pool is full. */
	while (chains < max_entries)
		chains <<= 1;
	rl->chains = calloc(chains, sizeof(*rl->chains));
	rl->pool = calloc(max_entries, sizeof(*rl->pool));
	if (!rl->chains || !rl->pool || wgt_random_bytes(&rl->secret, sizeof(rl->secret)) < 0)
		goto err;
	rl->chain_mask = chains - 1;
	rl->max_entries = max_entries;
	for (size_t i = max_entries; i--;) {
		rl->pool[i].next = rl->free_list;
		rl->free_list = &rl->pool[i];
	}
	return rl;
err:
	wgt_ratelimiter_free(rl);
	return NULL;
}

/* Control thread only (or after it stopped using the limiter). */
void wgt_ratelimiter_free(struct wgt_ratelimiter *rl)
{
	if (!rl)
		return;
	free(rl->pool);
	free(rl->chains);
	/* The secret decides which sources collide; do not leave it in freed memory. */
	explicit_bzero(&rl->secret, sizeof(rl->secret));
	free(rl);
}

/* Control thread only. */
bool wgt_ratelimiter_allow(struct wgt_ratelimiter *rl, const union wgt_sockaddr *src,
			   uint64_t now_ns)
{
	struct entry **chain, *e;
	struct source s;

	assert_owner(rl);
	if (!source_of(src, &s))
		return false;
	chain = &rl->chains[wgt_siphash(&rl->secret, &s, sizeof(s)) & rl->chain_mask];
	for (e = *chain; e; e = e->next) {
		if (memcmp(&e->src, &s, sizeof(s)))
			continue;
		e->tokens_ns = tokens_at(e, now_ns);
		e->last_ns = now_ns;
		if (e->tokens_ns < PACKET_COST_NS) {
			rl->stats.limited++;
			return false;
		}
		e->tokens_ns -= PACKET_COST_NS;
		return true;
	}
	e = rl->free_list;
	if (!e) {
		rl->stats.table_full++;
		return false;
	}
	rl->free_list = e->next;
	e->src = s;
	e->last_ns = now_ns;
	e->tokens_ns = TOKENS_MAX_NS - PACKET_COST_NS;
	e->next = *chain;
	*chain = e;
	rl->stats.entries++;
	return true;
}

/*
 * Control thread only. A full bucket behaves exactly like a missing one,
 * so dropping those loses nothing. O(chains + entries).
 */
void wgt_ratelimiter_gc(struct wgt_ratelimiter *rl, uint64_t now_ns)
{
	assert_owner(rl);
	for (size_t i = 0; i <= rl->chain_mask; i++) {
		struct entry **pp = &rl->chains[i], *e;

		while ((e = *pp)) {
			if (tokens_at(e, now_ns) < TOKENS_MAX_NS) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			e->next = rl->free_list;
			rl->free_list = e;
			rl->stats.entries--;
		}
	}
}

/* Control thread only. */
void wgt_ratelimiter_stats(const struct wgt_ratelimiter *rl,
			   struct wgt_ratelimiter_stats *ret_stats)
{
	*ret_stats = rl->stats;
}
