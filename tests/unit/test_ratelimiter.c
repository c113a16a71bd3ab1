/* SPDX-License-Identifier: MIT */
/* Rate limiter on a fake clock (burst, refill, keys, cap, gc) and SipHash reference vectors. */
#include <arpa/inet.h>
#include <check.h>
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/endpoint.h"
#include "common/ratelimiter.h"
#include "common/siphash.h"

/* An arbitrary start, far from zero so no test leans on the clock starting there. */
#define T0 (1000 * WGT_NSEC_PER_SEC)
#define MS WGT_NSEC_PER_MSEC

static union wgt_sockaddr sa(const char *ip, uint16_t port)
{
	union wgt_sockaddr a;

	memset(&a, 0, sizeof(a));
	if (strchr(ip, ':')) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.in6.sin6_addr), 1);
	} else {
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &a.in4.sin_addr), 1);
	}
	return a;
}

static bool allow(struct wgt_ratelimiter *rl, const char *ip, uint64_t now)
{
	union wgt_sockaddr a = sa(ip, 51820);

	return wgt_ratelimiter_allow(rl, &a, now);
}

/* Spends the whole burst and checks the next packet is refused. */
static void drain(struct wgt_ratelimiter *rl, const char *ip, uint64_t now)
{
	for (int i = 0; i < WGT_RATELIMITER_BURST; i++)
		ck_assert_msg(allow(rl, ip, now), "%s: packet %d of the burst refused", ip, i);
	ck_assert_msg(!allow(rl, ip, now), "%s: packet past the burst allowed", ip);
}

static struct wgt_ratelimiter_stats stats(const struct wgt_ratelimiter *rl)
{
	struct wgt_ratelimiter_stats st;

	wgt_ratelimiter_stats(rl, &st);
	return st;
}

START_TEST(test_burst_then_refused)
{
	struct wgt_ratelimiter *rl = wgt_ratelimiter_new(64);

	ck_assert_ptr_nonnull(rl);
	drain(rl, "192.0.2.1", T0);
	ck_assert(!allow(rl, "192.0.2.1", T0 + 1 * MS));
	ck_assert_uint_eq(stats(rl).limited, 2);
	ck_assert_uint_eq(stats(rl).entries, 1);
	wgt_ratelimiter_free(rl);
}
END_TEST

START_TEST(test_refill_rate)
{
	struct wgt_ratelimiter *rl = wgt_ratelimiter_new(64);
	uint64_t now = T0;

	drain(rl, "192.0.2.1", now);
	/* 20 per second: one token every 50 ms, not a nanosecond sooner. */
	ck_assert(!allow(rl, "192.0.2.1", now + 50 * MS - 1));
	now += 50 * MS;
	ck_assert(allow(rl, "192.0.2.1", now));
	ck_assert(!allow(rl, "192.0.2.1", now));
	/* Sustained: a packet every 50 ms keeps passing. */
	for (int i = 0; i < 100; i++) {
		now += 50 * MS;
		ck_assert(allow(rl, "192.0.2.1", now));
	}
	/* Twice the rate: every other packet is refused. */
	for (int i = 0; i < 20; i++) {
		now += 25 * MS;
		ck_assert(allow(rl, "192.0.2.1", now) == (i % 2 == 1));
	}
	/* A long pause refills to the burst and no further. */
	drain(rl, "192.0.2.1", now + 3600 * WGT_NSEC_PER_SEC);
	wgt_ratelimiter_free(rl);
}
END_TEST

START_TEST(test_sources_independent)
{
	struct wgt_ratelimiter *rl = wgt_ratelimiter_new(64);
	union wgt_sockaddr a = sa("192.0.2.1", 1), b = sa("192.0.2.1", 2);

	drain(rl, "192.0.2.1", T0);
	drain(rl, "192.0.2.2", T0);
	drain(rl, "198.51.100.7", T0);
	/* The port is not part of the identity. */
	ck_assert(!wgt_ratelimiter_allow(rl, &a, T0));
	ck_assert(!wgt_ratelimiter_allow(rl, &b, T0));
	ck_assert_uint_eq(stats(rl).entries, 3);
	wgt_ratelimiter_free(rl);
}
END_TEST

START_TEST(test_ipv6_prefix64)
{
	struct wgt_ratelimiter *rl = wgt_ratelimiter_new(64);

	/* Same /64, different interface ids: one bucket. */
	for (int i = 0; i < WGT_RATELIMITER_BURST; i++)
		ck_assert(allow(rl, i % 2 ? "2001:db8:1:2::1" : "2001:db8:1:2:ffff:ffff::", T0));
	ck_assert(!allow(rl, "2001:db8:1:2::99", T0));
	/* Neighbouring /64s have their own. */
	drain(rl, "2001:db8:1:3::1", T0);
	drain(rl, "2001:db8:1:1::1", T0);
	drain(rl, "2001:db9:1:2::1", T0);
	ck_assert_uint_eq(stats(rl).entries, 4);
	/* An IPv4-mapped address is its IPv4 source, not a shared ::ffff:0:0/64. */
	drain(rl, "::ffff:192.0.2.1", T0);
	ck_assert(!allow(rl, "192.0.2.1", T0));
	drain(rl, "::ffff:192.0.2.2", T0);
	ck_assert_uint_eq(stats(rl).entries, 6);
	wgt_ratelimiter_free(rl);
}
END_TEST

START_TEST(test_table_full)
{
	struct wgt_ratelimiter *rl = wgt_ratelimiter_new(2);
	union wgt_sockaddr unix_sa;

	ck_assert(allow(rl, "192.0.2.1", T0));
	ck_assert(allow(rl, "2001:db8::1", T0));
	/* A third source is refused without disturbing the tracked ones. */
	ck_assert(!allow(rl, "192.0.2.3", T0));
	ck_assert(!allow(rl, "192.0.2.4", T0));
	ck_assert_uint_eq(stats(rl).table_full, 2);
	ck_assert_uint_eq(stats(rl).entries, 2);
	for (int i = 1; i < WGT_RATELIMITER_BURST; i++)
		ck_assert(allow(rl, "192.0.2.1", T0));
	ck_assert(!allow(rl, "192.0.2.1", T0));
	/* Once gc frees a bucket there is room again. */
	wgt_ratelimiter_gc(rl, T0 + 60 * WGT_NSEC_PER_SEC);
	ck_assert_uint_eq(stats(rl).entries, 0);
	ck_assert(allow(rl, "192.0.2.3", T0 + 60 * WGT_NSEC_PER_SEC));
	ck_assert_uint_eq(stats(rl).table_full, 2);

	memset(&unix_sa, 0, sizeof(unix_sa));
	unix_sa.sa.sa_family = AF_UNIX;
	ck_assert(!wgt_ratelimiter_allow(rl, &unix_sa, T0));
	ck_assert_uint_eq(stats(rl).table_full, 2);

	ck_assert_ptr_null(wgt_ratelimiter_new(0));
	ck_assert_ptr_null(wgt_ratelimiter_new((size_t)WGT_RATELIMITER_MAX_ENTRIES + 1));
	wgt_ratelimiter_free(rl);
	wgt_ratelimiter_free(NULL);
}
END_TEST

START_TEST(test_gc)
{
	struct wgt_ratelimiter *rl = wgt_ratelimiter_new(1024);

	/* One token spent: full 50 ms later. All spent: full 250 ms later. */
	ck_assert(allow(rl, "192.0.2.1", T0));
	drain(rl, "192.0.2.2", T0);
	for (int i = 0; i < 500; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		ck_assert(allow(rl, ip, T0 + 200 * MS));
	}
	ck_assert_uint_eq(stats(rl).entries, 502);
	wgt_ratelimiter_gc(rl, T0 + 50 * MS - 1);
	ck_assert_uint_eq(stats(rl).entries, 502);
	wgt_ratelimiter_gc(rl, T0 + 50 * MS);
	ck_assert_uint_eq(stats(rl).entries, 501);
	wgt_ratelimiter_gc(rl, T0 + 249 * MS);
	ck_assert_uint_eq(stats(rl).entries, 501);
	/* The survivor kept its state: 249 ms of credit is four packets, not a fresh five. */
	for (int i = 0; i < WGT_RATELIMITER_BURST - 1; i++)
		ck_assert(allow(rl, "192.0.2.2", T0 + 249 * MS));
	ck_assert(!allow(rl, "192.0.2.2", T0 + 249 * MS));
	wgt_ratelimiter_gc(rl, T0 + 10 * WGT_NSEC_PER_SEC);
	ck_assert_uint_eq(stats(rl).entries, 0);
	/* A forgotten source starts with a full burst, exactly as before. */
	drain(rl, "192.0.2.2", T0 + 10 * WGT_NSEC_PER_SEC);
	wgt_ratelimiter_free(rl);
}
END_TEST

/* Key 00..0f, message i = bytes 00..i-1, output little endian: the reference vectors.h. */
static const uint8_t sip64_vectors[17][8] = {
	{ 0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72 },
	{ 0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74 },
	{ 0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d },
	{ 0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85 },
	{ 0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf },
	{ 0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18 },
	{ 0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb },
	{ 0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab },
	{ 0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93 },
	{ 0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e },
	{ 0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a },
	{ 0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4 },
	{ 0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75 },
	{ 0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14 },
	{ 0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7 },
	{ 0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1 },
	{ 0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f },
};

static void reference_key(struct wgt_siphash_key *key, uint8_t msg[64])
{
	uint8_t k[16];

	for (int i = 0; i < 16; i++)
		k[i] = (uint8_t)i;
	wgt_siphash_key_init(key, k);
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
}

START_TEST(test_siphash_paper_vector)
{
	struct wgt_siphash_key key;
	uint8_t msg[64];

	reference_key(&key, msg);
	/* SipHash paper, appendix A: 15-byte message 00..0e. */
	ck_assert_uint_eq(wgt_siphash(&key, msg, 15), 0xa129ca6149be45e5ULL);
}
END_TEST

START_TEST(test_siphash_reference_vectors)
{
	struct wgt_siphash_key key;
	uint8_t msg[64];

	reference_key(&key, msg);
	/* Every tail length 0..7, with zero, one and two full words before it. */
	for (size_t len = 0; len < 17; len++) {
		uint64_t want;

		memcpy(&want, sip64_vectors[len], 8);
		ck_assert_msg(wgt_siphash(&key, msg, len) == le64toh(want), "length %zu", len);
	}
	/* Last entry of the reference table: 63 bytes. */
	ck_assert_uint_eq(wgt_siphash(&key, msg, 63), 0x958a324ceb064572ULL);
	/* The key matters. */
	key.k[1] ^= 1;
	ck_assert_uint_ne(wgt_siphash(&key, msg, 15), 0xa129ca6149be45e5ULL);
}
END_TEST

static Suite *ratelimiter_suite(void)
{
	Suite *s = suite_create("ratelimiter");
	TCase *bucket = tcase_create("bucket");
	TCase *siphash = tcase_create("siphash");

	tcase_add_test(bucket, test_burst_then_refused);
	tcase_add_test(bucket, test_refill_rate);
	tcase_add_test(bucket, test_sources_independent);
	tcase_add_test(bucket, test_ipv6_prefix64);
	tcase_add_test(bucket, test_table_full);
	tcase_add_test(bucket, test_gc);
	suite_add_tcase(s, bucket);
	tcase_add_test(siphash, test_siphash_paper_vector);
	tcase_add_test(siphash, test_siphash_reference_vectors);
	suite_add_tcase(s, siphash);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ratelimiter_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
