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
#define DENSE_PREFIXES 100000

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
		const uint8_t *cidrs, size_t count, uint8_t (*addrs)[16], const char *name)
{
	unsigned int len = family == AF_INET ? 4 : 16;
	double round_ns[ROUNDS];
	uintptr_t sink = 0;
	size_t hits = 0;

	for (size_t i = 0; i < ADDRS; i++) {
		size_t p = rng() % count;

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

/*
 * The VPN-server layout: DENSE host routes (/32 or /128) packed into one
 * small range (10.0.0.0/15, or one /64 under fd00::/8), plus a covering
 * /8 (/48) and a default route. Also reports the insert and remove cost
 * per prefix on stderr.
 */
static void bench_dense(int family, uint8_t (*addrs)[16])
{
	static char peers[PEERS];
	size_t n = DENSE_PREFIXES + 2;
	uint8_t (*prefixes)[16] = calloc(n, 16);
	uint8_t *cidrs = calloc(n, 1);
	uint8_t *used = calloc(1U << 17, 1);
	struct wgt_allowedips *t = wgt_allowedips_new();
	const char *name = family == AF_INET ? "allowedips_lookup_100k_dense_v4"
					     : "allowedips_lookup_100k_dense_v6";
	struct timespec t0, t1, t2;
	double insert_ns;

	if (!prefixes || !cidrs || !used || !t) {
		fprintf(stderr, "bench_allowedips: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < DENSE_PREFIXES; i++) {
		if (family == AF_INET) {
			uint32_t h;

			/* Distinct hosts inside 10.0.0.0/15. */
			do
				h = (uint32_t)(rng() & ((1U << 17) - 1));
			while (used[h]);
			used[h] = 1;
			prefixes[i][0] = 10;
			prefixes[i][1] = (uint8_t)(h >> 16);
			prefixes[i][2] = (uint8_t)(h >> 8);
			prefixes[i][3] = (uint8_t)h;
			cidrs[i] = 32;
		} else {
			uint64_t lo = rng();

			/* fd00:1234:5678:9abc::/64, random interface ids (collisions negligible). */
			static const uint8_t net[8] = { 0xfd, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc };

			memcpy(prefixes[i], net, 8);
			for (int b = 0; b < 8; b++)
				prefixes[i][8 + b] = (uint8_t)(lo >> (8 * b));
			cidrs[i] = 128;
		}
	}
	/* The covering routes: a /8 (/48) and the default route. */
	if (family == AF_INET) {
		prefixes[DENSE_PREFIXES][0] = 10;
		cidrs[DENSE_PREFIXES] = 8;
	} else {
		static const uint8_t net[6] = { 0xfd, 0x00, 0x12, 0x34, 0x56, 0x78 };

		memcpy(prefixes[DENSE_PREFIXES], net, 6);
		cidrs[DENSE_PREFIXES] = 48;
	}
	cidrs[DENSE_PREFIXES + 1] = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < n; i++)
		if (wgt_allowedips_insert(t, family, prefixes[i], cidrs[i],
					  &peers[i % PEERS]) < 0) {
			fprintf(stderr, "bench_allowedips: insert failed\n");
			goto out;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	insert_ns = ns_between(&t0, &t1) / (double)n;
	run(t, family, (const uint8_t (*)[16])prefixes, cidrs, n, addrs, name);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (size_t i = 0; i < n; i++)
		wgt_allowedips_remove(t, family, prefixes[i], cidrs[i], &peers[i % PEERS]);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	fprintf(stderr, "%s: insert %.1f ns/prefix, remove %.1f ns/prefix\n", name,
		insert_ns, ns_between(&t1, &t2) / (double)n);
out:
	wgt_allowedips_free(t);
	free(used);
	free(cidrs);
	free(prefixes);
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
		    cidrs + f * PREFIXES_PER_FAMILY, PREFIXES_PER_FAMILY, addrs, names[f]);
	for (int f = 0; f < 2; f++)
		bench_dense(families[f], addrs);
out:
	wgt_allowedips_free(t);
	free(addrs);
	free(cidrs);
	free(prefixes);
}
