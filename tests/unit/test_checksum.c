/* SPDX-License-Identifier: MIT */
/* Internet checksum: known answers and a differential test against a naive byte-pair sum. */
#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checksum.h"

#define BUF_MAX 65535
#define SEED 0x9e3779b97f4a7c15ULL

static uint64_t rng_state = SEED;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void fill_random(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng();
}

/*
 * RFC 1071 as written: big-endian 16-bit words, an odd byte padded with
 * zero on the right, end-around carry. Returns the folded sum as a number.
 */
static uint16_t naive_sum(const uint8_t *p, size_t len)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (i < len)
		s += (uint32_t)(p[i] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Our folded sum as the RFC's number (see the byte-order note in checksum.h). */
static uint16_t our_sum(const void *p, size_t len)
{
	return ntohs(wgt_csum_fold(wgt_csum_partial(p, len, 0)));
}

START_TEST(test_rfc1071_example)
{
	/* RFC 1071 section 3: these bytes sum to ddf2 (one's complement). */
	static const uint8_t bytes[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	uint8_t buf[16];

	for (size_t off = 0; off < 8; off++) {
		memcpy(buf + off, bytes, sizeof(bytes));
		ck_assert_uint_eq(our_sum(buf + off, sizeof(bytes)), 0xddf2);
		ck_assert_uint_eq(naive_sum(buf + off, sizeof(bytes)), 0xddf2);
	}
}
END_TEST

START_TEST(test_ipv4_header)
{
	/* 192.168.0.1 -> 192.168.0.199, UDP, total length 115; checksum b861. */
	uint8_t hdr[20] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	uint16_t csum;

	/* Intact header: sums to all ones. */
	ck_assert_uint_eq(wgt_csum_fold(wgt_csum_partial(hdr, sizeof(hdr), 0)), 0xffff);

	hdr[10] = hdr[11] = 0;
	csum = wgt_csum_finish(wgt_csum_partial(hdr, sizeof(hdr), 0));
	/* Stored as is, it gives the header's bytes b8 61. */
	memcpy(&hdr[10], &csum, sizeof(csum));
	ck_assert_uint_eq(hdr[10], 0xb8);
	ck_assert_uint_eq(hdr[11], 0x61);
}
END_TEST

START_TEST(test_edges)
{
	static const uint8_t ff[2] = { 0xff, 0xff };
	static const uint8_t one[1] = { 0x01 };
	static const uint8_t zero[64];

	ck_assert_uint_eq(wgt_csum_partial(NULL, 0, 0), 0);
	ck_assert_uint_eq(wgt_csum_partial(NULL, 0, 0x1234), 0x1234);
	ck_assert_uint_eq(our_sum(zero, sizeof(zero)), 0);
	/* One's complement "negative zero" stays 0xffff, as in the naive sum. */
	ck_assert_uint_eq(our_sum(ff, 2), 0xffff);
	/* An odd final byte is the high byte of a zero-padded word. */
	ck_assert_uint_eq(our_sum(one, 1), 0x0100);
	ck_assert_uint_eq(wgt_csum_fold(0xffffffffu), 0xffff);
	ck_assert_uint_eq(wgt_csum_fold(0x0001fffeu), 0xffff);
	ck_assert_uint_eq(wgt_csum_finish(0xffff), 0);
}
END_TEST

START_TEST(test_differential_exhaustive_small)
{
	static uint8_t buf[1024 + 8];

	fill_random(buf, sizeof(buf));
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 1024; len++)
			ck_assert_msg(our_sum(buf + off, len) == naive_sum(buf + off, len),
				      "offset %zu length %zu", off, len);
}
END_TEST

START_TEST(test_differential_random)
{
	uint8_t *buf = malloc(BUF_MAX + 8);

	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < 3000; i++) {
		size_t off = rng() % 8;
		size_t len = rng() % (BUF_MAX + 1);

		/* Refill now and then; mostly-0xff buffers stress the carries. */
		if (i % 100 == 0) {
			fill_random(buf, BUF_MAX + 8);
			if (i % 200 == 0)
				memset(buf, 0xff, BUF_MAX + 8);
		}
		ck_assert_msg(our_sum(buf + off, len) == naive_sum(buf + off, len),
			      "seed %#llx iteration %d offset %zu length %zu",
			      (unsigned long long)SEED, i, off, len);
	}
	free(buf);
}
END_TEST

START_TEST(test_chaining)
{
	static uint8_t buf[4096 + 8];

	fill_random(buf, sizeof(buf));
	for (int i = 0; i < 2000; i++) {
		size_t off = rng() % 8;
		size_t len = rng() % 4097;
		size_t split = (rng() % (len + 1)) & ~(size_t)1;
		uint32_t s;

		s = wgt_csum_partial(buf + off, split, 0);
		s = wgt_csum_partial(buf + off + split, len - split, s);
		ck_assert_uint_eq(ntohs(wgt_csum_fold(s)), naive_sum(buf + off, len));
	}
}
END_TEST

/* The copying sum: the same sum as over the copy, the copy exact, nothing written past it. */
START_TEST(test_copy)
{
	static uint8_t src[4096 + 8], dst[4096 + 72];

	for (int i = 0; i < 3000; i++) {
		size_t soff = rng() % 8, doff = rng() % 64;
		size_t len = i < 300 ? (size_t)i : rng() % 4097;
		uint32_t init = (uint32_t)rng(), s;

		if (i % 100 == 0) {
			fill_random(src, sizeof(src));
			if (i % 200 == 0)
				memset(src, 0xff, sizeof(src));
		}
		memset(dst, 0x5a, sizeof(dst));
		s = wgt_csum_copy(dst + doff, src + soff, len, init);
		ck_assert(!memcmp(dst + doff, src + soff, len));
		ck_assert_uint_eq(dst[doff + len], 0x5a);
		if (doff)
			ck_assert_uint_eq(dst[doff - 1], 0x5a);
		ck_assert_uint_eq(wgt_csum_fold(s), wgt_csum_fold(wgt_csum_partial(src + soff, len, init)));
		ck_assert_uint_eq(ntohs(wgt_csum_fold(wgt_csum_copy(dst + doff, src + soff, len, 0))),
				  naive_sum(src + soff, len));
	}
}
END_TEST

START_TEST(test_pseudo_ipv4)
{
	static uint8_t naive[12 + 2048];
	static uint8_t l4[2048];

	for (int i = 0; i < 1000; i++) {
		uint8_t saddr[4], daddr[4];
		uint8_t proto = i & 1 ? IPPROTO_UDP : IPPROTO_TCP;
		uint16_t len = (uint16_t)(rng() % 2049);
		uint32_t s;

		fill_random(saddr, 4);
		fill_random(daddr, 4);
		fill_random(l4, len);
		/* RFC 768/793: saddr, daddr, zero, protocol, length. */
		memcpy(naive, saddr, 4);
		memcpy(naive + 4, daddr, 4);
		naive[8] = 0;
		naive[9] = proto;
		naive[10] = (uint8_t)(len >> 8);
		naive[11] = (uint8_t)len;
		memcpy(naive + 12, l4, len);

		s = wgt_csum_pseudo_ipv4(saddr, daddr, proto, len, 0);
		s = wgt_csum_partial(l4, len, s);
		ck_assert_uint_eq(ntohs(wgt_csum_fold(s)), naive_sum(naive, 12 + len));
	}
}
END_TEST

START_TEST(test_pseudo_ipv6)
{
	static uint8_t naive[40 + 2048];
	static uint8_t l4[2048];

	for (int i = 0; i < 1000; i++) {
		uint8_t addrs[33];
		uint8_t proto = i & 1 ? IPPROTO_UDP : IPPROTO_TCP;
		uint32_t len = (uint32_t)(rng() % 2049);
		uint32_t s;

		/* Addresses at an odd offset: no alignment assumed. */
		fill_random(addrs, sizeof(addrs));
		fill_random(l4, len);
		/* RFC 8200 8.1: saddr, daddr, 32-bit length, 3 zeros, next header. */
		memcpy(naive, addrs + 1, 16);
		memcpy(naive + 16, addrs + 17, 16);
		naive[32] = (uint8_t)(len >> 24);
		naive[33] = (uint8_t)(len >> 16);
		naive[34] = (uint8_t)(len >> 8);
		naive[35] = (uint8_t)len;
		naive[36] = naive[37] = naive[38] = 0;
		naive[39] = proto;
		memcpy(naive + 40, l4, len);

		s = wgt_csum_pseudo_ipv6(addrs + 1, addrs + 17, proto, len, 0);
		s = wgt_csum_partial(l4, len, s);
		ck_assert_uint_eq(ntohs(wgt_csum_fold(s)), naive_sum(naive, 40 + len));
	}
}
END_TEST

static Suite *checksum_suite(void)
{
	Suite *s = suite_create("checksum");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_rfc1071_example);
	tcase_add_test(tc, test_ipv4_header);
	tcase_add_test(tc, test_edges);
	tcase_add_test(tc, test_differential_exhaustive_small);
	tcase_add_test(tc, test_differential_random);
	tcase_add_test(tc, test_chaining);
	tcase_add_test(tc, test_copy);
	tcase_add_test(tc, test_pseudo_ipv4);
	tcase_add_test(tc, test_pseudo_ipv6);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(checksum_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
