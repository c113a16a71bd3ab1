/* SPDX-License-Identifier: MIT */
/* Allowed-IPs lookup cost with 100k prefixes (50k IPv4, 50k IPv6), one line per family. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/allowedips.h"

void bench_allowedips(void);

#define PREFIXES_PER_FAMILY 50000
#define PEERS 1000
#define ADDRS (1U << 20)
#define LOOKUPS_PER_ROUND (1U << 20)
#define ROUNDS 5

/* Deterministic so runs compare (splitmix64). */
static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A routing-table-like mix: mostly /24 and hosts for IPv4, /48-/64 and hosts for IPv6. */
static uint8_t random_cidr(int family)
{
	unsigned int r = (unsigned int)(rng() % 100);

	if (family == AF_INET) {
		if (r < 10)
			return (uint8_t)(8 + rng() % 8);
		if (r < 30)
			return (uint8_t)(16 + rng() % 8);
		if (r < 70)
			return 24;
		return 32;
	}
	if (r < 10)
		return (uint8_t)(16 + rng() % 16);
	if (r < 40)
		return (uint8_t)(32 + rng() % 17);
	if (r < 70)
		return (uint8_t)(48 + rng() % 17);
	return 128;
}

static double ns_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Lookup addresses are random hosts inside random inserted prefixes, so
 * each lookup walks a full path the way matching traffic does, and
 * consecutive lookups touch unrelated parts of the table (cold caches).
 * Lookups are independent, so this is throughput: the CPU overlaps the
 * cache misses of neighbouring lookups, as it does for a burst of packets.
 * Reports the median of ROUNDS rounds to shrug off a noisy neighbour.
 */
static void run(struct wgt_allowedips *t, int family, const uint8_t (*prefixes)[16],
		const uint8_t *cidrs, uint8_t (*addrs)[16], const char *name)
{
	unsigned int len = family == AF_INET ? 4 : 16;
	double round_ns[ROUNDS];
	uintptr_t sink = 0;
	size_t hits = 0;

	for (size_t i = 0; i < ADDRS; i++) {
		size_t p = rng() % PREFIXES_PER_FAMILY;

		memcpy(addrs[i], prefixes[p], 16);
		for (unsigned int b = cidrs[p]; b < len * 8; b++)
			if (rng() & 1)
				addrs[i][b / 8] ^= (uint8_t)(0x80 >> (b % 8));
	}
	for (int r = 0; r < ROUNDS; r++) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (size_t i = 0; i < LOOKUPS_PER_ROUND; i++) {
			void *v = wgt_allowedips_lookup(t, family, addrs[i & (ADDRS - 1)]);

			/* Consume every result so the lookups cannot be dropped. */
			sink ^= (uintptr_t)v;
			hits += v != NULL;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		round_ns[r] = ns_between(&t0, &t1) / LOOKUPS_PER_ROUND;
	}
	__asm__ volatile("" : : "r"(sink), "r"(hits));
	if (hits != (size_t)ROUNDS * LOOKUPS_PER_ROUND)
		fprintf(stderr, "%s: only %zu lookups matched\n", name, hits);
	qsort(round_ns, ROUNDS, sizeof(round_ns[0]), cmp_double);
	printf("%s: %.1f ns/op\n", name, round_ns[ROUNDS / 2]);
}

void bench_allowedips(void)
{
	static const int families[2] = { AF_INET, AF_INET6 };
	static const char *const names[2] = {
		"allowedips_lookup_100k_v4", "allowedips_lookup_100k_v6",
	};
	uint8_t (*prefixes)[16] = calloc(2 * PREFIXES_PER_FAMILY, 16);
	uint8_t *cidrs = calloc(2 * PREFIXES_PER_FAMILY, 1);
	uint8_t (*addrs)[16] = calloc(ADDRS, 16);
	static char peers[PEERS];
	struct wgt_allowedips *t = wgt_allowedips_new();

	if (!prefixes || !cidrs || !addrs || !t) {
		fprintf(stderr, "bench_allowedips: out of memory\n");
		goto out;
	}
	/* Fill both tries first so each run sees the whole 100k-prefix table. */
	for (size_t i = 0; i < 2 * PREFIXES_PER_FAMILY; i++) {
		int family = families[i / PREFIXES_PER_FAMILY];

		for (int b = 0; b < 16; b++)
			prefixes[i][b] = (uint8_t)rng();
		cidrs[i] = random_cidr(family);
		if (wgt_allowedips_insert(t, family, prefixes[i], cidrs[i],
					  &peers[rng() % PEERS]) < 0) {
			fprintf(stderr, "bench_allowedips: insert failed\n");
			goto out;
		}
	}
	for (int f = 0; f < 2; f++)
		run(t, families[f], (const uint8_t (*)[16])prefixes + f * PREFIXES_PER_FAMILY,
		    cidrs + f * PREFIXES_PER_FAMILY, addrs, names[f]);
out:
	wgt_allowedips_free(t);
	free(addrs);
	free(cidrs);
	free(prefixes);
}
