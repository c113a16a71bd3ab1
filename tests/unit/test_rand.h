/* SPDX-License-Identifier: MIT */
/* Test helpers: a small seedable PRNG (splitmix64) and the WGT_TEST_SEED override. */
#ifndef WGT_TESTS_TEST_RAND_H
#define WGT_TESTS_TEST_RAND_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* splitmix64: small, seedable, and good enough to drive tests. */
static inline uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t rand_below(uint64_t *s, uint64_t n)
{
	return next_rand(s) % n;
}

/* The suite's seed: WGT_TEST_SEED or `fallback`, printed so a failure can be replayed. */
static inline uint64_t test_seed_named(const char *suite, uint64_t fallback)
{
	const char *env = getenv("WGT_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : fallback;

	fprintf(stderr, "%s: seed 0x%016" PRIx64 " (set WGT_TEST_SEED to replay another)\n", suite,
		seed);
	return seed;
}

#endif
