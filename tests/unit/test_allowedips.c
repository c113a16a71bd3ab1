/* SPDX-License-Identifier: MIT */
/* Allowed-IPs: fixed selftest-style cases, differential test against a flat table, reader smoke. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/allowedips.h"

/* Stand-ins for peers: only their addresses matter. */
static char peer_a, peer_b, peer_c, peer_d, peer_e, peer_f;
#define A (&peer_a)
#define B (&peer_b)
#define C (&peer_c)
#define D (&peer_d)
#define E (&peer_e)
#define F (&peer_f)

static int family_of(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

static void parse(const char *ip, uint8_t addr[16])
{
	memset(addr, 0, 16);
	ck_assert_msg(inet_pton(family_of(ip), ip, addr) == 1, "bad test address %s", ip);
}

static int ins(struct wgt_allowedips *t, const char *ip, uint8_t cidr, void *value)
{
	uint8_t addr[16];

	parse(ip, addr);
	return wgt_allowedips_insert(t, family_of(ip), addr, cidr, value);
}

static int rem(struct wgt_allowedips *t, const char *ip, uint8_t cidr, void *value)
{
	uint8_t addr[16];

	parse(ip, addr);
	return wgt_allowedips_remove(t, family_of(ip), addr, cidr, value);
}

static void *look(struct wgt_allowedips *t, const char *ip)
{
	uint8_t addr[16];

	parse(ip, addr);
	return wgt_allowedips_lookup(t, family_of(ip), addr);
}

#define INS(ip, cidr, v) ck_assert_int_eq(ins(t, ip, cidr, v), 0)
#define EXPECT(ip, v) ck_assert_msg(look(t, ip) == (v), "lookup %s: got %p want %p (%s)", \
				    ip, look(t, ip), (void *)(v), #v)

START_TEST(test_overlapping_v4)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	ck_assert_ptr_nonnull(t);
	INS("192.168.4.0", 24, A);
	INS("192.168.4.4", 32, B);
	INS("192.168.0.0", 16, C);
	INS("192.95.5.64", 27, D);
	INS("192.95.5.65", 32, C);
	INS("10.0.0.0", 8, E);
	INS("10.1.0.0", 16, F);

	EXPECT("192.168.4.20", A);
	EXPECT("192.168.4.0", A);
	EXPECT("192.168.4.4", B);
	EXPECT("192.168.200.182", C);
	EXPECT("192.95.5.68", D);
	EXPECT("192.95.5.65", C);
	EXPECT("192.95.5.96", NULL);
	EXPECT("10.200.0.1", E);
	EXPECT("10.1.255.255", F);
	EXPECT("11.0.0.0", NULL);
	EXPECT("0.0.0.0", NULL);
	EXPECT("255.255.255.255", NULL);
	ck_assert_uint_eq(wgt_allowedips_count(t), 7);
	wgt_allowedips_free(t);
}
END_TEST

START_TEST(test_overlapping_v6)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	INS("2607:5300:60:6b0::c05f:543", 128, A);
	INS("2607:5300:60:6b0::", 64, B);
	INS("2607:5300::", 32, C);
	INS("2001:db8::", 32, D);
	INS("2001:db8:1::", 48, E);
	INS("2001:db8:1:2::", 64, F);

	EXPECT("2607:5300:60:6b0::c05f:543", A);
	EXPECT("2607:5300:60:6b0::c05f:544", B);
	EXPECT("2607:5300:60:6b0:ffff::1", B);
	EXPECT("2607:5300:60:6b1::1", C);
	EXPECT("2607:5300:ffff::1", C);
	EXPECT("2607:5301::1", NULL);
	EXPECT("2001:db8::1", D);
	EXPECT("2001:db8:1::1", E);
	EXPECT("2001:db8:1:2:3:4:5:6", F);
	EXPECT("2001:db8:1:3::1", E);
	EXPECT("::", NULL);
	EXPECT("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL);
	/* Families are separate tries: an IPv4 lookup never sees IPv6 prefixes. */
	EXPECT("32.1.13.184", NULL);
	wgt_allowedips_free(t);
}
END_TEST

START_TEST(test_default_routes)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	INS("0.0.0.0", 0, A);
	INS("::", 0, B);
	EXPECT("1.2.3.4", A);
	EXPECT("255.255.255.255", A);
	EXPECT("::1", B);
	EXPECT("ffff::1", B);
	INS("128.0.0.0", 1, C);
	EXPECT("127.255.255.255", A);
	EXPECT("128.0.0.0", C);
	INS("0.0.0.0", 32, D);
	INS("255.255.255.255", 32, E);
	EXPECT("0.0.0.0", D);
	EXPECT("0.0.0.1", A);
	EXPECT("255.255.255.255", E);
	EXPECT("255.255.255.254", C);
	INS("::", 128, D);
	INS("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, E);
	EXPECT("::", D);
	EXPECT("::1", B);
	EXPECT("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", E);
	EXPECT("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", B);
	/* Removing the default route leaves the more specific ones. */
	ck_assert_int_eq(rem(t, "0.0.0.0", 0, A), 0);
	EXPECT("1.2.3.4", NULL);
	EXPECT("200.0.0.1", C);
	EXPECT("0.0.0.0", D);
	wgt_allowedips_free(t);
}
END_TEST

START_TEST(test_host_bits_masked)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	INS("10.0.0.5", 24, A);
	EXPECT("10.0.0.200", A);
	/* Stored as 10.0.0.0/24: the same prefix written differently is the same entry. */
	INS("10.0.0.77", 24, B);
	ck_assert_uint_eq(wgt_allowedips_count(t), 1);
	EXPECT("10.0.0.1", B);
	ck_assert_int_eq(rem(t, "10.0.0.255", 24, B), 0);
	EXPECT("10.0.0.1", NULL);

	INS("2001:db8:dead:beef:1:2:3:4", 64, C);
	EXPECT("2001:db8:dead:beef::", C);
	INS("2001:db8:dead:beef:ffff::", 65, D);
	EXPECT("2001:db8:dead:beef:8000::1", D);
	EXPECT("2001:db8:dead:beef:7fff::1", C);
	INS("2001:db8::1", 0, E);
	EXPECT("1::", E);
	ck_assert_uint_eq(wgt_allowedips_count(t), 3);
	wgt_allowedips_free(t);
}
END_TEST

START_TEST(test_replace_moves_prefix)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	INS("10.0.0.0", 24, A);
	INS("10.0.1.0", 24, A);
	INS("10.0.0.0", 24, B);
	EXPECT("10.0.0.1", B);
	EXPECT("10.0.1.1", A);
	ck_assert_uint_eq(wgt_allowedips_count(t), 2);
	/* The moved prefix left A's set: removing it as A fails, as B works. */
	ck_assert_int_eq(rem(t, "10.0.0.0", 24, A), -ENOENT);
	wgt_allowedips_remove_by_value(t, A);
	EXPECT("10.0.0.1", B);
	EXPECT("10.0.1.1", NULL);
	ck_assert_int_eq(rem(t, "10.0.0.0", 24, B), 0);
	ck_assert_uint_eq(wgt_allowedips_count(t), 0);
	/* Re-inserting the same value is a no-op. */
	INS("10.0.0.0", 8, C);
	INS("10.0.0.0", 8, C);
	ck_assert_uint_eq(wgt_allowedips_count(t), 1);
	wgt_allowedips_free(t);
}
END_TEST

START_TEST(test_remove_exact)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	INS("10.0.0.0", 8, A);
	INS("10.1.0.0", 16, B);
	INS("10.1.2.0", 24, A);
	/* Wrong value, wrong length, absent prefix, a prefix that only exists as an inner node. */
	ck_assert_int_eq(rem(t, "10.1.0.0", 16, A), -ENOENT);
	ck_assert_int_eq(rem(t, "10.1.0.0", 17, B), -ENOENT);
	ck_assert_int_eq(rem(t, "10.2.0.0", 16, B), -ENOENT);
	INS("10.64.0.0", 16, C);
	INS("10.65.0.0", 16, C);
	ck_assert_int_eq(rem(t, "10.64.0.0", 15, C), -ENOENT);
	EXPECT("10.1.0.1", B);
	ck_assert_int_eq(rem(t, "10.1.0.0", 16, B), 0);
	ck_assert_int_eq(rem(t, "10.1.0.0", 16, B), -ENOENT);
	EXPECT("10.1.0.1", A);
	EXPECT("10.1.2.3", A);
	ck_assert_int_eq(rem(t, "10.1.2.0", 24, A), 0);
	EXPECT("10.1.2.3", A);
	ck_assert_int_eq(rem(t, "10.0.0.0", 8, A), 0);
	EXPECT("10.1.2.3", NULL);
	EXPECT("10.64.1.1", C);
	EXPECT("10.65.1.1", C);
	ck_assert_uint_eq(wgt_allowedips_count(t), 2);

	INS("fe80::", 10, D);
	INS("fe80::1", 128, E);
	ck_assert_int_eq(rem(t, "fe80::1", 128, D), -ENOENT);
	ck_assert_int_eq(rem(t, "fe80::1", 128, E), 0);
	EXPECT("fe80::1", D);
	ck_assert_int_eq(rem(t, "fe80::", 10, D), 0);
	EXPECT("fe80::1", NULL);
	wgt_allowedips_free(t);
}
END_TEST

START_TEST(test_remove_by_value)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	INS("0.0.0.0", 0, A);
	INS("10.0.0.0", 8, B);
	INS("10.1.0.0", 16, A);
	INS("10.1.1.0", 24, B);
	INS("10.1.1.1", 32, A);
	INS("::", 0, B);
	INS("2001:db8::", 32, A);
	INS("2001:db8::1", 128, B);
	ck_assert_uint_eq(wgt_allowedips_count(t), 8);
	wgt_allowedips_remove_by_value(t, A);
	ck_assert_uint_eq(wgt_allowedips_count(t), 4);
	EXPECT("1.1.1.1", NULL);
	EXPECT("10.1.0.1", B);
	EXPECT("10.1.1.1", B);
	EXPECT("2001:db8::2", B);
	EXPECT("2001:db8::1", B);
	wgt_allowedips_remove_by_value(t, A);
	wgt_allowedips_remove_by_value(t, C);
	ck_assert_uint_eq(wgt_allowedips_count(t), 4);
	wgt_allowedips_remove_by_value(t, B);
	ck_assert_uint_eq(wgt_allowedips_count(t), 0);
	EXPECT("10.1.1.1", NULL);
	EXPECT("2001:db8::1", NULL);
	/* The table is reusable after going empty. */
	INS("10.0.0.0", 8, C);
	EXPECT("10.9.9.9", C);
	wgt_allowedips_free(t);
}
END_TEST

START_TEST(test_invalid)
{
	struct wgt_allowedips *t = wgt_allowedips_new();
	uint8_t addr[16] = { 0 };

	ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET, addr, 33, A), -EINVAL);
	ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET6, addr, 129, A), -EINVAL);
	ck_assert_int_eq(wgt_allowedips_insert(t, AF_UNIX, addr, 8, A), -EINVAL);
	ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET, addr, 8, NULL), -EINVAL);
	ck_assert_int_eq(wgt_allowedips_remove(t, AF_INET, addr, 33, A), -EINVAL);
	ck_assert_int_eq(wgt_allowedips_remove(t, AF_UNIX, addr, 8, A), -EINVAL);
	ck_assert_ptr_null(wgt_allowedips_lookup(t, AF_UNIX, addr));
	ck_assert_int_eq(wgt_allowedips_set_max(t, 0), -EINVAL);
	ck_assert_int_eq(wgt_allowedips_set_max(t, (size_t)WGT_ALLOWEDIPS_MAX + 1), -EINVAL);
	ck_assert_int_eq(wgt_allowedips_set_max(t, WGT_ALLOWEDIPS_MAX), 0);
	ck_assert_uint_eq(wgt_allowedips_count(t), 0);
	wgt_allowedips_free(t);
	wgt_allowedips_free(NULL);
}
END_TEST

START_TEST(test_cap)
{
	struct wgt_allowedips *t = wgt_allowedips_new();

	ck_assert_int_eq(wgt_allowedips_set_max(t, 3), 0);
	INS("10.0.0.0", 24, A);
	INS("10.0.1.0", 24, A);
	INS("2001:db8::", 32, B);
	ck_assert_int_eq(ins(t, "10.0.2.0", 24, A), -ENOSPC);
	ck_assert_uint_eq(wgt_allowedips_cap_hits(t), 1);
	/* 10.0.0.0/23 exists as an inner node; giving it a value is still a new entry. */
	ck_assert_int_eq(ins(t, "10.0.0.0", 23, C), -ENOSPC);
	ck_assert_uint_eq(wgt_allowedips_cap_hits(t), 2);
	EXPECT("10.0.2.1", NULL);
	/* Moving an existing prefix does not need room. */
	INS("10.0.1.0", 24, B);
	ck_assert_uint_eq(wgt_allowedips_cap_hits(t), 2);
	ck_assert_uint_eq(wgt_allowedips_count(t), 3);
	ck_assert_int_eq(rem(t, "10.0.0.0", 24, A), 0);
	INS("10.0.2.0", 24, A);
	EXPECT("10.0.2.1", A);
	ck_assert_uint_eq(wgt_allowedips_count(t), 3);
	wgt_allowedips_free(t);
}
END_TEST

/* Thousands of distinct values: the per-value index has to grow and rehash. */
START_TEST(test_many_values)
{
	static char vals[3000];
	struct wgt_allowedips *t = wgt_allowedips_new();

	for (int i = 0; i < 3000; i++) {
		uint8_t a4[4] = { 10, (uint8_t)(i >> 8), (uint8_t)i, 1 };
		uint8_t a6[16] = { 0xfd, 0, 0, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i };

		ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET, a4, 32, &vals[i]), 0);
		ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET6, a6, 64, &vals[i]), 0);
	}
	ck_assert_uint_eq(wgt_allowedips_count(t), 6000);
	for (int i = 0; i < 3000; i += 2)
		wgt_allowedips_remove_by_value(t, &vals[i]);
	ck_assert_uint_eq(wgt_allowedips_count(t), 3000);
	for (int i = 0; i < 3000; i++) {
		uint8_t a4[4] = { 10, (uint8_t)(i >> 8), (uint8_t)i, 1 };
		uint8_t a6[16] = { 0xfd, 0, 0, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i, 0xff };
		void *want = i % 2 ? &vals[i] : NULL;

		ck_assert_ptr_eq(wgt_allowedips_lookup(t, AF_INET, a4), want);
		ck_assert_ptr_eq(wgt_allowedips_lookup(t, AF_INET6, a6), want);
	}
	wgt_allowedips_free(t);
}
END_TEST

struct walk_out {
	char lines[16][64];
	int n;
	int stop_after;
};

static int walk_cb(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct walk_out *o = ctx;
	char buf[INET6_ADDRSTRLEN];

	ck_assert_int_lt(o->n, 16);
	ck_assert_ptr_nonnull(inet_ntop(family, addr, buf, sizeof(buf)));
	snprintf(o->lines[o->n++], sizeof(o->lines[0]), "%s/%u", buf, cidr);
	if (o->stop_after && o->n == o->stop_after)
		return 42;
	return 0;
}

START_TEST(test_walk_by_value)
{
	static const char *const want[] = {
		"0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/24", "10.1.0.0/16", "192.168.1.1/32",
		"::/0", "2001:db8::/32", "2001:db8::1/128", "fe80::/10",
	};
	/* The same prefixes with host bits set, in two insertion orders. */
	static const struct { const char *ip; uint8_t cidr; } in[2][9] = {
		{ { "0.0.0.0", 0 }, { "10.0.0.0", 8 }, { "10.0.0.0", 24 }, { "10.1.0.0", 16 },
		  { "192.168.1.1", 32 }, { "::", 0 }, { "2001:db8::", 32 }, { "2001:db8::1", 128 },
		  { "fe80::", 10 } },
		{ { "fe80::1234", 10 }, { "192.168.1.1", 32 }, { "2001:db8::1", 128 },
		  { "10.0.0.77", 24 }, { "1.2.3.4", 0 }, { "2001:db8:ff::", 32 },
		  { "10.200.0.0", 8 }, { "1::1", 0 }, { "10.1.99.1", 16 } },
	};

	for (int o = 0; o < 2; o++) {
		struct wgt_allowedips *t = wgt_allowedips_new();
		struct walk_out out = { 0 };

		/* Another peer's prefixes, nested among A's, must not show. */
		INS("10.0.0.128", 25, B);
		INS("10.1.0.0", 24, B);
		INS("2001:db8::2", 128, B);
		for (unsigned int i = 0; i < 9; i++)
			INS(in[o][i].ip, in[o][i].cidr, A);
		INS("10.0.0.9", 24, A);
		ck_assert_int_eq(wgt_allowedips_walk_by_value(t, A, walk_cb, &out), 0);
		ck_assert_int_eq(out.n, 9);
		for (int i = 0; i < 9; i++)
			ck_assert_str_eq(out.lines[i], want[i]);

		memset(&out, 0, sizeof(out));
		out.stop_after = 2;
		ck_assert_int_eq(wgt_allowedips_walk_by_value(t, A, walk_cb, &out), 42);
		ck_assert_int_eq(out.n, 2);

		memset(&out, 0, sizeof(out));
		ck_assert_int_eq(wgt_allowedips_walk_by_value(t, C, walk_cb, &out), 0);
		ck_assert_int_eq(out.n, 0);
		wgt_allowedips_free(t);
	}
}
END_TEST

/* A reclamation hook that holds nodes until the test says readers are gone. */
struct deferred {
	void **ptrs;
	void (**fns)(void *ptr);
	size_t n, cap;
	pthread_mutex_t lock;
};

static void defer_hold(void *ptr, void (*fn)(void *ptr), void *ctx)
{
	struct deferred *d = ctx;

	pthread_mutex_lock(&d->lock);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->ptrs = realloc(d->ptrs, d->cap * sizeof(*d->ptrs));
		d->fns = realloc(d->fns, d->cap * sizeof(*d->fns));
		ck_assert(d->ptrs && d->fns);
	}
	d->ptrs[d->n] = ptr;
	d->fns[d->n++] = fn;
	pthread_mutex_unlock(&d->lock);
}

static void deferred_flush(struct deferred *d)
{
	for (size_t i = 0; i < d->n; i++)
		d->fns[i](d->ptrs[i]);
	d->n = 0;
}

START_TEST(test_defer_free_hook)
{
	struct wgt_allowedips *t = wgt_allowedips_new();
	struct deferred d = { .lock = PTHREAD_MUTEX_INITIALIZER };
	size_t before;

	wgt_allowedips_set_defer_free(t, defer_hold, &d);
	INS("10.0.0.0", 24, A);
	INS("10.0.1.0", 24, B);
	/* Leaf, its now one-child inner parent and the old bucket go through the hook. */
	before = d.n;
	ck_assert_int_eq(rem(t, "10.0.1.0", 24, B), 0);
	ck_assert_uint_ge(d.n, before + 3);
	EXPECT("10.0.0.1", A);
	INS("10.0.0.0", 16, C);
	/* A node with one child is spliced out; its child stays reachable. */
	before = d.n;
	ck_assert_int_eq(rem(t, "10.0.0.0", 16, C), 0);
	ck_assert_uint_ge(d.n, before + 1);
	EXPECT("10.0.0.1", A);
	EXPECT("10.0.1.1", NULL);
	/* Crowded slots point into the trie; its nodes must be deferred as well. */
	for (int i = 0; i < 64; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 8, 128 + i);
		INS(ip, 32, D);
	}
	EXPECT("10.0.7.191", D);
	before = d.n;
	wgt_allowedips_remove_by_value(t, D);
	ck_assert_uint_ge(d.n, before + 64);
	EXPECT("10.0.7.191", NULL);
	EXPECT("10.0.0.1", A);
	wgt_allowedips_remove_by_value(t, A);
	EXPECT("10.0.0.1", NULL);
	deferred_flush(&d);
	free(d.ptrs);
	free(d.fns);
	wgt_allowedips_free(t);
}
END_TEST

/* Deterministic PRNG (splitmix64) so a printed seed reproduces a failure. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t test_seed(void)
{
	const char *env = getenv("WGT_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed2024c0ffeeULL;

	fprintf(stderr, "allowedips random test seed: WGT_TEST_SEED=0x%" PRIx64 "\n", seed);
	return seed;
}

struct ref_entry {
	int family;
	uint8_t addr[16];
	uint8_t cidr;
	void *value;
};

/* The naive reference: a flat array, scanned in full every time. */
struct ref {
	struct ref_entry *e;
	size_t n;
};

static bool ref_match(const struct ref_entry *e, int family, const uint8_t *addr)
{
	unsigned int full = e->cidr / 8, rest = e->cidr % 8;

	if (e->family != family || memcmp(e->addr, addr, full))
		return false;
	return !rest || !((e->addr[full] ^ addr[full]) & (uint8_t)(0xff00 >> rest));
}

static void ref_mask(uint8_t *addr, unsigned int cidr, unsigned int len)
{
	for (unsigned int i = 0; i < len; i++) {
		unsigned int bits = cidr > i * 8 ? cidr - i * 8 : 0;

		if (bits < 8)
			addr[i] &= (uint8_t)(0xff00 >> bits);
	}
}

static struct ref_entry *ref_find(struct ref *r, int family, const uint8_t *addr, uint8_t cidr)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->e[i].family == family && r->e[i].cidr == cidr &&
		    !memcmp(r->e[i].addr, addr, 16))
			return &r->e[i];
	return NULL;
}

static void *ref_lookup(const struct ref *r, int family, const uint8_t *addr)
{
	const struct ref_entry *best = NULL;

	for (size_t i = 0; i < r->n; i++)
		if (ref_match(&r->e[i], family, addr) && (!best || r->e[i].cidr > best->cidr))
			best = &r->e[i];
	return best ? best->value : NULL;
}

static void ref_del(struct ref *r, struct ref_entry *e)
{
	*e = r->e[--r->n];
}

/*
 * Random addresses drawn around a few bases, so prefixes nest and share
 * long common parts instead of scattering over the whole space.
 */
static void random_addr(int family, uint8_t addr[16])
{
	static uint8_t bases[2][8][16];
	static bool init;
	unsigned int len = family == AF_INET ? 4 : 16;
	unsigned int keep;

	if (!init) {
		for (int f = 0; f < 2; f++)
			for (int b = 0; b < 8; b++)
				for (int i = 0; i < 16; i++)
					bases[f][b][i] = (uint8_t)rng();
		init = true;
	}
	memset(addr, 0, 16);
	memcpy(addr, bases[family == AF_INET6][rng() % 8], len);
	/* Keep a random number of leading bits, randomise the rest. */
	keep = (unsigned int)(rng() % (len * 8 + 1));
	for (unsigned int i = 0; i < len; i++) {
		unsigned int bits = keep > i * 8 ? keep - i * 8 : 0;
		uint8_t m = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);

		addr[i] = (uint8_t)((addr[i] & m) | ((uint8_t)rng() & ~m));
	}
}

static int ref_walk_count(void *ctx, int family, const uint8_t *addr, uint8_t cidr)
{
	struct ref *r = ctx;
	uint8_t padded[16] = { 0 };
	struct ref_entry *e;

	memcpy(padded, addr, family == AF_INET ? 4 : 16);
	e = ref_find(r, family, padded, cidr);

	ck_assert_ptr_nonnull(e);
	/* Mark as seen by clearing: each listed prefix must exist exactly once. */
	ck_assert_ptr_nonnull(e->value);
	e->value = NULL;
	return 0;
}

START_TEST(test_random_differential)
{
	static void *peers[8];
	static char peer_storage[8];
	struct wgt_allowedips *t = wgt_allowedips_new();
	struct ref r = { .e = calloc(20000, sizeof(struct ref_entry)) };
	unsigned int lookups = 0;
	size_t peak = 0;

	ck_assert_ptr_nonnull(r.e);
	rng_state = test_seed();
	for (int i = 0; i < 8; i++)
		peers[i] = &peer_storage[i];

	for (unsigned int step = 0; step < 100000; step++) {
		unsigned int op = (unsigned int)(rng() % 1000);
		int family = rng() & 1 ? AF_INET6 : AF_INET;
		unsigned int bits = family == AF_INET ? 32 : 128;
		void *value = peers[rng() % 8];
		uint8_t addr[16];
		uint8_t cidr;

		random_addr(family, addr);
		/* Bias towards the extreme lengths where edge cases live. */
		switch (rng() % 8) {
		case 0: cidr = 0; break;
		case 1: cidr = (uint8_t)bits; break;
		case 2: cidr = (uint8_t)(bits - 1); break;
		case 3: cidr = 1; break;
		default: cidr = (uint8_t)(rng() % (bits + 1)); break;
		}

		if (op < 450) {
			struct ref_entry *e;
			int ret = wgt_allowedips_insert(t, family, addr, cidr, value);

			ck_assert_int_eq(ret, 0);
			ref_mask(addr, cidr, 16);
			e = ref_find(&r, family, addr, cidr);
			if (!e) {
				ck_assert_uint_lt(r.n, 20000);
				e = &r.e[r.n++];
				e->family = family;
				memcpy(e->addr, addr, 16);
				e->cidr = cidr;
			}
			e->value = value;
		} else if (op < 650) {
			struct ref_entry *e;
			int ret;

			/* Half the time aim at a prefix that exists, so removals do happen. */
			if (r.n && rng() & 1) {
				e = &r.e[rng() % r.n];
				family = e->family;
				memcpy(addr, e->addr, 16);
				cidr = e->cidr;
				if (rng() % 4)
					value = e->value;
			}
			ret = wgt_allowedips_remove(t, family, addr, cidr, value);
			ref_mask(addr, cidr, 16);
			e = ref_find(&r, family, addr, cidr);
			if (e && e->value == value) {
				ck_assert_int_eq(ret, 0);
				ref_del(&r, e);
			} else {
				ck_assert_int_eq(ret, -ENOENT);
			}
		} else if (op < 652) {
			wgt_allowedips_remove_by_value(t, value);
			for (size_t i = 0; i < r.n;)
				if (r.e[i].value == value)
					ref_del(&r, &r.e[i]);
				else
					i++;
		} else if (op < 662) {
			/* walk_by_value lists exactly the reference's prefixes for that value. */
			struct ref copy = { .e = malloc(r.n * sizeof(*r.e) + 1), .n = r.n };
			size_t remaining = 0;
			int ret;

			ck_assert_ptr_nonnull(copy.e);
			memcpy(copy.e, r.e, r.n * sizeof(*r.e));
			for (size_t i = 0; i < copy.n; i++)
				if (copy.e[i].value != value)
					copy.e[i].value = NULL;
			ret = wgt_allowedips_walk_by_value(t, value, ref_walk_count, &copy);
			ck_assert_int_eq(ret, 0);
			for (size_t i = 0; i < copy.n; i++)
				remaining += copy.e[i].value != NULL;
			ck_assert_uint_eq(remaining, 0);
			free(copy.e);
		} else {
			for (int k = 0; k < 8; k++, lookups++) {
				void *want, *got;

				random_addr(family, addr);
				want = ref_lookup(&r, family, addr);
				got = wgt_allowedips_lookup(t, family, addr);
				ck_assert_msg(got == want, "step %u: lookup got %p want %p",
					      step, got, want);
			}
		}
		ck_assert_uint_eq(wgt_allowedips_count(t), r.n);
		peak = r.n > peak ? r.n : peak;
	}
	/* Every stored prefix answers for its own first address. */
	for (size_t i = 0; i < r.n; i++)
		ck_assert_ptr_eq(wgt_allowedips_lookup(t, r.e[i].family, r.e[i].addr),
				 ref_lookup(&r, r.e[i].family, r.e[i].addr));
	fprintf(stderr, "allowedips random test: peak %zu prefixes, %zu left, %u lookups\n",
		peak, r.n, lookups);
	free(r.e);
	wgt_allowedips_free(t);
}
END_TEST

/*
 * Dense clustered prefixes, the VPN-server layout: thousands of /32s in a
 * few /16s and /128s in a few /64s (some sharing long interface-id runs),
 * with covering shorter prefixes and interleaved removes, so the jump
 * table's multibit levels are built, updated in place, rebuilt at another
 * offset and collapsed back to buckets.
 */
static uint8_t dense_addr(int family, uint8_t addr[16])
{
	unsigned int r = (unsigned int)(rng() % 100);

	memset(addr, 0, 16);
	if (family == AF_INET) {
		addr[0] = 10;
		addr[1] = (uint8_t)(20 + (rng() % 8 == 0));
		addr[2] = (uint8_t)(rng() % 4 ? rng() % 16 : rng());
		addr[3] = (uint8_t)rng();
		if (r < 75)
			return 32;
		if (r < 80)
			return 24;
		if (r < 84)
			return (uint8_t)(28 + rng() % 4);
		if (r < 88)
			return (uint8_t)(17 + rng() % 7);
		if (r < 92)
			return 16;
		if (r < 95)
			return (uint8_t)(8 + rng() % 8);
		if (r < 97)
			return 0;
		return (uint8_t)(25 + rng() % 3);
	}
	{
		static const uint8_t net[8] = { 0xfd, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03 };
		unsigned int mode = (unsigned int)(rng() % 3);

		memcpy(addr, net, 8);
		if (rng() % 8 == 0)
			addr[7] = 4;
		for (int i = 8; i < 16; i++)
			addr[i] = (uint8_t)rng();
		if (mode == 1)
			memset(addr + 8, 0, 5);
		else if (mode == 2)
			memset(addr + 8, 0x11, 6);
	}
	if (r < 75)
		return 128;
	if (r < 80)
		return 64;
	if (r < 84)
		return (uint8_t)(65 + rng() % 63);
	if (r < 88)
		return (uint8_t)(104 + 8 * (rng() % 3));
	if (r < 92)
		return 48;
	if (r < 95)
		return (uint8_t)(16 + rng() % 32);
	if (r < 97)
		return 0;
	return (uint8_t)(120 + rng() % 8);
}

static void dense_check(const struct wgt_allowedips *t, const struct ref *r, unsigned int step)
{
	for (int k = 0; k < 8; k++) {
		int family = k & 1 ? AF_INET6 : AF_INET;
		uint8_t addr[16];
		void *want, *got;

		/* Half near stored prefixes (their own or a neighbouring host), half anywhere dense. */
		if (r->n && k & 2) {
			const struct ref_entry *e = &r->e[rng() % r->n];

			family = e->family;
			memcpy(addr, e->addr, 16);
			if (rng() & 1)
				addr[family == AF_INET ? 3 : 15] ^= (uint8_t)(1U << (rng() % 8));
		} else {
			dense_addr(family, addr);
		}
		want = ref_lookup(r, family, addr);
		got = wgt_allowedips_lookup(t, family, addr);
		ck_assert_msg(got == want, "dense step %u: lookup got %p want %p", step, got, want);
	}
}

START_TEST(test_dense_differential)
{
	static void *peers[8];
	static char peer_storage[8];
	struct wgt_allowedips *t = wgt_allowedips_new();
	struct ref r = { .e = calloc(20000, sizeof(struct ref_entry)) };
	size_t peak = 0;

	ck_assert_ptr_nonnull(r.e);
	rng_state = test_seed() ^ 0xd15e;
	for (int i = 0; i < 8; i++)
		peers[i] = &peer_storage[i];

	/* Grow (mostly inserts), then shrink to nothing (mostly removes). */
	for (unsigned int step = 0; step < 40000 || r.n; step++) {
		unsigned int op = (unsigned int)(rng() % 100);
		unsigned int insert_pct = step < 20000 ? 66 : step < 40000 ? 30 : 0;
		int family = rng() & 1 ? AF_INET6 : AF_INET;
		void *value = peers[rng() % 8];
		uint8_t addr[16];
		uint8_t cidr = dense_addr(family, addr);
		struct ref_entry *e;

		if (op < insert_pct) {
			ck_assert_int_eq(wgt_allowedips_insert(t, family, addr, cidr, value), 0);
			ref_mask(addr, cidr, 16);
			e = ref_find(&r, family, addr, cidr);
			if (!e) {
				ck_assert_uint_lt(r.n, 20000);
				e = &r.e[r.n++];
				e->family = family;
				memcpy(e->addr, addr, 16);
				e->cidr = cidr;
			}
			e->value = value;
		} else if (op < 99 && r.n) {
			e = &r.e[rng() % r.n];
			ck_assert_int_eq(wgt_allowedips_remove(t, e->family, e->addr, e->cidr,
							       e->value), 0);
			ref_del(&r, e);
		} else if (op == 99 && step < 40000 && rng() % 64 == 0) {
			wgt_allowedips_remove_by_value(t, value);
			for (size_t i = 0; i < r.n;)
				if (r.e[i].value == value)
					ref_del(&r, &r.e[i]);
				else
					i++;
		}
		if (step % 8 == 0 || r.n < 64)
			dense_check(t, &r, step);
		ck_assert_uint_eq(wgt_allowedips_count(t), r.n);
		peak = r.n > peak ? r.n : peak;
	}
	dense_check(t, &r, 0);
	fprintf(stderr, "allowedips dense test: peak %zu prefixes\n", peak);
	free(r.e);
	wgt_allowedips_free(t);
}
END_TEST

/*
 * Concurrency smoke test: readers hammer lookups while one writer churns
 * more-specific prefixes under a permanent 10.0.0.0/8 and ::/0. Every
 * answer must be a real peer, never NULL or garbage; retired nodes are
 * held (and their scratch bytes scribbled on) until the readers stop.
 */
struct stress {
	struct wgt_allowedips *t;
	void *peers[4];
	bool stop;
	uint64_t lookups;
};

static void *stress_reader(void *arg)
{
	struct stress *s = arg;
	uint64_t x = (uint64_t)(uintptr_t)arg | 1, n = 0;

	while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
		uint8_t a4[4] = { 10, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24) };
		uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, (uint8_t)(x >> 32), (uint8_t)(x >> 40) };
		void *v4 = wgt_allowedips_lookup(s->t, AF_INET, a4);
		void *v6 = wgt_allowedips_lookup(s->t, AF_INET6, a6);
		bool ok4 = false, ok6 = false;

		for (int i = 0; i < 4; i++) {
			ok4 |= v4 == s->peers[i];
			ok6 |= v6 == s->peers[i];
		}
		if (!ok4 || !ok6)
			return (void *)1;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n += 2;
	}
	__atomic_fetch_add(&s->lookups, n, __ATOMIC_RELAXED);
	return NULL;
}

START_TEST(test_concurrent_readers)
{
	static char storage[4];
	struct deferred d = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct stress s = { .t = wgt_allowedips_new() };
	struct wgt_allowedips *t = s.t;
	pthread_t th[2];

	for (int i = 0; i < 4; i++)
		s.peers[i] = &storage[i];
	wgt_allowedips_set_defer_free(t, defer_hold, &d);
	INS("10.0.0.0", 8, s.peers[0]);
	INS("::", 0, s.peers[0]);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, stress_reader, &s), 0);

	rng_state = 7;
	for (int round = 0; round < 20000; round++) {
		uint8_t a4[4] = { 10, (uint8_t)rng(), (uint8_t)rng(), (uint8_t)rng() };
		uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8, (uint8_t)rng(), (uint8_t)rng() };
		uint8_t c4 = (uint8_t)(9 + rng() % 24), c6 = (uint8_t)(1 + rng() % 128);
		void *v = s.peers[1 + rng() % 3];

		ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET, a4, c4, v), 0);
		ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET6, a6, c6, v), 0);
		if (rng() % 3 == 0)
			wgt_allowedips_remove(t, AF_INET, a4, c4, v);
		if (rng() % 64 == 0)
			wgt_allowedips_remove_by_value(t, s.peers[1 + rng() % 3]);
		/* Dense host routes in 10.0.0.0/14, so the multibit levels churn too. */
		for (int k = 0; k < 4; k++) {
			uint8_t d4[4] = { 10, (uint8_t)(rng() % 4), (uint8_t)rng(), (uint8_t)rng() };

			ck_assert_int_eq(wgt_allowedips_insert(t, AF_INET, d4, 32, v), 0);
			if (rng() % 2)
				wgt_allowedips_remove(t, AF_INET, d4, 32, v);
		}
	}
	__atomic_store_n(&s.stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		void *ret;

		ck_assert_int_eq(pthread_join(th[i], &ret), 0);
		ck_assert_msg(ret == NULL, "a reader saw a NULL or foreign value");
	}
	fprintf(stderr, "allowedips concurrent test: %" PRIu64 " lookups, %zu nodes retired\n",
		s.lookups, d.n);
	deferred_flush(&d);
	free(d.ptrs);
	free(d.fns);
	wgt_allowedips_free(t);
}
END_TEST

static Suite *allowedips_suite(void)
{
	Suite *s = suite_create("allowedips");
	TCase *fixed = tcase_create("fixed");
	TCase *random = tcase_create("random");
	TCase *threads = tcase_create("threads");

	tcase_add_test(fixed, test_overlapping_v4);
	tcase_add_test(fixed, test_overlapping_v6);
	tcase_add_test(fixed, test_default_routes);
	tcase_add_test(fixed, test_host_bits_masked);
	tcase_add_test(fixed, test_replace_moves_prefix);
	tcase_add_test(fixed, test_remove_exact);
	tcase_add_test(fixed, test_remove_by_value);
	tcase_add_test(fixed, test_invalid);
	tcase_add_test(fixed, test_cap);
	tcase_add_test(fixed, test_many_values);
	tcase_add_test(fixed, test_walk_by_value);
	tcase_add_test(fixed, test_defer_free_hook);
	suite_add_tcase(s, fixed);
	tcase_add_test(random, test_random_differential);
	tcase_add_test(random, test_dense_differential);
	suite_add_tcase(s, random);
	tcase_add_test(threads, test_concurrent_readers);
	suite_add_tcase(s, threads);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(allowedips_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
