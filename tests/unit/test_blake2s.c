/* SPDX-License-Identifier: MIT */
/* BLAKE2s, keyed BLAKE2s, HMAC-BLAKE2s and KDF: known answers plus a differential test against a naive RFC 7693 reference. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/blake2s.h"
#include "hex.h"

static void assert_hex(const uint8_t *got, const char *hex, size_t n)
{
	uint8_t want[64];

	ck_assert_uint_le(n, sizeof(want));
	unhex(want, hex, n);
	ck_assert_mem_eq(got, want, n);
}

/* Deterministic xorshift64* so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void rng_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(rng() >> 56);
}

/*
 * Naive BLAKE2s straight from RFC 7693 sections 3.1-3.3: the whole message
 * (key block included) is assembled in one buffer and compressed block by
 * block. Deliberately simple; no streaming, no tricks.
 */
static const uint32_t ref_iv[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static const uint8_t ref_sigma[10][16] = {
	{ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
	{ 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
	{ 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
	{ 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
	{ 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
	{ 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
	{ 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
	{ 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
	{ 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
	{ 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static uint32_t ref_rotr(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void ref_g(uint32_t v[16], int a, int b, int c, int d, uint32_t x, uint32_t y)
{
	v[a] = v[a] + v[b] + x;
	v[d] = ref_rotr(v[d] ^ v[a], 16);
	v[c] = v[c] + v[d];
	v[b] = ref_rotr(v[b] ^ v[c], 12);
	v[a] = v[a] + v[b] + y;
	v[d] = ref_rotr(v[d] ^ v[a], 8);
	v[c] = v[c] + v[d];
	v[b] = ref_rotr(v[b] ^ v[c], 7);
}

static void ref_compress(uint32_t h[8], const uint8_t block[64], uint64_t t, int last)
{
	uint32_t v[16], m[16];
	int i;

	for (i = 0; i < 16; i++)
		m[i] = (uint32_t)block[4 * i] | (uint32_t)block[4 * i + 1] << 8 |
		       (uint32_t)block[4 * i + 2] << 16 | (uint32_t)block[4 * i + 3] << 24;
	for (i = 0; i < 8; i++) {
		v[i] = h[i];
		v[i + 8] = ref_iv[i];
	}
	v[12] ^= (uint32_t)t;
	v[13] ^= (uint32_t)(t >> 32);
	if (last)
		v[14] = ~v[14];
	for (i = 0; i < 10; i++) {
		const uint8_t *s = ref_sigma[i];

		ref_g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
		ref_g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
		ref_g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
		ref_g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
		ref_g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
		ref_g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
		ref_g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
		ref_g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
	}
	for (i = 0; i < 8; i++)
		h[i] ^= v[i] ^ v[i + 8];
}

static void ref_blake2s(uint8_t *out, size_t outlen, const uint8_t *key, size_t keylen,
			const uint8_t *in, size_t inlen)
{
	size_t total = (keylen ? 64 : 0) + inlen;
	size_t nblocks = total ? (total + 63) / 64 : 1;
	uint8_t *buf = calloc(nblocks, 64);
	uint32_t h[8];
	size_t i;

	ck_assert_ptr_nonnull(buf);
	if (keylen)
		memcpy(buf, key, keylen);
	if (inlen)
		memcpy(buf + (keylen ? 64 : 0), in, inlen);
	memcpy(h, ref_iv, sizeof(h));
	h[0] ^= 0x01010000 ^ (uint32_t)(keylen << 8) ^ (uint32_t)outlen;
	for (i = 0; i + 1 < nblocks; i++)
		ref_compress(h, buf + 64 * i, 64 * (uint64_t)(i + 1), 0);
	ref_compress(h, buf + 64 * i, total, 1);
	for (i = 0; i < outlen; i++)
		out[i] = (uint8_t)(h[i / 4] >> (8 * (i % 4)));
	free(buf);
}

/* RFC 2104 over the naive BLAKE2s, 64-byte block. */
static void ref_hmac(uint8_t out[32], const uint8_t *key, size_t keylen, const uint8_t *in,
		     size_t inlen)
{
	uint8_t k[64] = { 0 }, inner[32];
	uint8_t *buf = malloc(64 + (inlen > 32 ? inlen : 32));
	size_t i;

	ck_assert_ptr_nonnull(buf);
	if (keylen > 64)
		ref_blake2s(k, 32, NULL, 0, key, keylen);
	else if (keylen)
		memcpy(k, key, keylen);
	for (i = 0; i < 64; i++)
		buf[i] = k[i] ^ 0x36;
	if (inlen)
		memcpy(buf + 64, in, inlen);
	ref_blake2s(inner, 32, NULL, 0, buf, 64 + inlen);
	for (i = 0; i < 64; i++)
		buf[i] = k[i] ^ 0x5c;
	memcpy(buf + 64, inner, 32);
	ref_blake2s(out, 32, NULL, 0, buf, 64 + 32);
	free(buf);
}

static void ref_kdf(uint8_t t[3][32], const uint8_t ck[32], const uint8_t *in, size_t inlen)
{
	uint8_t tau0[32], buf[33];

	ref_hmac(tau0, ck, 32, in, inlen);
	buf[0] = 1;
	ref_hmac(t[0], tau0, 32, buf, 1);
	memcpy(buf, t[0], 32);
	buf[32] = 2;
	ref_hmac(t[1], tau0, 32, buf, 33);
	memcpy(buf, t[1], 32);
	buf[32] = 3;
	ref_hmac(t[2], tau0, 32, buf, 33);
}

static void seq(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)i;
}

START_TEST(test_rfc7693_abc)
{
	uint8_t out[32];

	ck_assert_int_eq(wgt_blake2s_hash(out, "abc", 3), 0);
	assert_hex(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", 32);
}
END_TEST

START_TEST(test_empty)
{
	uint8_t out[32];

	ck_assert_int_eq(wgt_blake2s_hash(out, "", 0), 0);
	assert_hex(out, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9", 32);
	ck_assert_int_eq(wgt_blake2s_hash(out, NULL, 0), 0);
	assert_hex(out, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9", 32);
}
END_TEST

/* The reference implementation must agree with the fixed KATs, or the differential tests mean nothing. */
START_TEST(test_reference_self_check)
{
	uint8_t out[32];

	ref_blake2s(out, 32, NULL, 0, (const uint8_t *)"abc", 3);
	assert_hex(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", 32);
	ref_blake2s(out, 32, NULL, 0, NULL, 0);
	assert_hex(out, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9", 32);
}
END_TEST

START_TEST(test_wireguard_constants)
{
	static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
	static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
	uint8_t ck[32], h[32];

	ck_assert_int_eq(wgt_blake2s_hash(ck, construction, strlen(construction)), 0);
	assert_hex(ck, "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36", 32);
	ck_assert_int_eq(wgt_blake2s_hash2(h, ck, 32, identifier, strlen(identifier)), 0);
	assert_hex(h, "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3", 32);
}
END_TEST

/* blake2s-kat.txt keyed entries: key = 00..1f, input = 00..(n-1), 32-byte digest. */
static const struct {
	size_t len;
	const char *hex;
} keyed_kat[] = {
	{ 0, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49" },
	{ 1, "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1" },
	{ 2, "6bb71300644cd3991b26ccd4d274acd1adeab8b1d7914546c1198bbe9fc9d803" },
	{ 63, "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd" },
	{ 64, "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4" },
	{ 65, "21fe0ceb0052be7fb0f004187cacd7de67fa6eb0938d927677f2398c132317a8" },
	{ 128, "0c311f38c35a4fb90d651c289d486856cd1413df9b0677f53ece2cd9e477c60a" },
	{ 255, "3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd" },
};

START_TEST(test_keyed_kat)
{
	uint8_t key[32], in[255], out[32], ref[32];
	size_t len = keyed_kat[_i].len;

	seq(key, sizeof(key));
	seq(in, sizeof(in));
	ck_assert_int_eq(wgt_blake2s_keyed(out, 32, key, 32, in, len), 0);
	assert_hex(out, keyed_kat[_i].hex, 32);
	ref_blake2s(ref, 32, key, 32, in, len);
	assert_hex(ref, keyed_kat[_i].hex, 32);
}
END_TEST

/* WireGuard's MAC shape: 16-byte BLAKE2s keyed with 32 bytes (values from Python's hashlib). */
START_TEST(test_keyed_mac16)
{
	uint8_t key[32], in[65], out[16];

	seq(key, sizeof(key));
	seq(in, sizeof(in));
	ck_assert_int_eq(wgt_blake2s_keyed(out, 16, key, 32, in, 0), 0);
	assert_hex(out, "9536f9b267655743dee97b8a670f9f53", 16);
	ck_assert_int_eq(wgt_blake2s_keyed(out, 16, key, 32, in, 3), 0);
	assert_hex(out, "1e2a79436a7796a3e9826bfedf07659f", 16);
	ck_assert_int_eq(wgt_blake2s_keyed(out, 16, key, 32, in, 64), 0);
	assert_hex(out, "f1efa90d2547036841ecd3627fafbc36", 16);
	ck_assert_int_eq(wgt_blake2s_keyed(out, 16, key, 32, in, 65), 0);
	assert_hex(out, "811ff8686d23a435ecbd0bdafcd27b1b", 16);
}
END_TEST

START_TEST(test_keyed_bad_args)
{
	uint8_t key[33] = { 0 }, out[33];

	ck_assert_int_eq(wgt_blake2s_keyed(out, 0, key, 32, "x", 1), -EINVAL);
	ck_assert_int_eq(wgt_blake2s_keyed(out, 33, key, 32, "x", 1), -EINVAL);
	ck_assert_int_eq(wgt_blake2s_keyed(out, 16, key, 0, "x", 1), -EINVAL);
	ck_assert_int_eq(wgt_blake2s_keyed(out, 16, key, 33, "x", 1), -EINVAL);
}
END_TEST

START_TEST(test_hash_differential)
{
	uint8_t in[300], out[32], ref[32];

	for (int iter = 0; iter < 500; iter++) {
		size_t len = rng() % sizeof(in), split = len ? rng() % (len + 1) : 0;

		rng_fill(in, len);
		ref_blake2s(ref, 32, NULL, 0, in, len);
		ck_assert_int_eq(wgt_blake2s_hash(out, in, len), 0);
		ck_assert_mem_eq(out, ref, 32);
		memset(out, 0, sizeof(out));
		ck_assert_int_eq(wgt_blake2s_hash2(out, in, split, in + split, len - split), 0);
		ck_assert_mem_eq(out, ref, 32);
	}
}
END_TEST

START_TEST(test_keyed_differential)
{
	uint8_t key[32], in[300], out[32], ref[32];

	for (int iter = 0; iter < 1000; iter++) {
		size_t keylen = 1 + rng() % 32, len = rng() % sizeof(in);
		size_t outlen = (iter & 1) ? 16 : 32;

		if (iter % 7 == 0)
			outlen = 1 + rng() % 32;
		rng_fill(key, keylen);
		rng_fill(in, len);
		ref_blake2s(ref, outlen, key, keylen, in, len);
		ck_assert_int_eq(wgt_blake2s_keyed(out, outlen, key, keylen, in, len), 0);
		ck_assert_mem_eq(out, ref, outlen);
	}
}
END_TEST

/* HMAC-BLAKE2s of "abc" under key 00..1f and under the empty key, from Python's hmac + hashlib. */
START_TEST(test_hmac_kat)
{
	uint8_t key[32], out[32];

	seq(key, sizeof(key));
	ck_assert_int_eq(wgt_hmac_blake2s(out, key, 32, "abc", 3), 0);
	assert_hex(out, "82623be5bc0a391b24dce53e67d028eff92d586de0485ac37822e597d049c74f", 32);
	ck_assert_int_eq(wgt_hmac_blake2s(out, key, 0, "abc", 3), 0);
	assert_hex(out, "4a79a31b10a8c34b7c89735b8088e6b810b4bad4f36d671b65ca2ea0914952bf", 32);
}
END_TEST

START_TEST(test_hmac_differential)
{
	uint8_t key[100], in[300], out[32], ref[32];

	for (int iter = 0; iter < 500; iter++) {
		/* Mostly WireGuard's 32-byte keys, sometimes any length including > block size. */
		size_t keylen = (iter & 1) ? 32 : rng() % sizeof(key), len = rng() % sizeof(in);

		rng_fill(key, keylen);
		rng_fill(in, len);
		ref_hmac(ref, key, keylen, in, len);
		ck_assert_int_eq(wgt_hmac_blake2s(out, key, keylen, in, len), 0);
		ck_assert_mem_eq(out, ref, 32);
	}
}
END_TEST

START_TEST(test_kdf_kat)
{
	uint8_t ck[32], t1[32], t2[32], t3[32];

	seq(ck, sizeof(ck));
	ck_assert_int_eq(wgt_kdf(t1, t2, t3, ck, "abc", 3), 0);
	assert_hex(t1, "c67e0b211ebf48c12c6d41da8fcee207d4c325a8c30f054d97401b14ed212f9f", 32);
	assert_hex(t2, "923b032867c597d1df124053325e553b104bf3b76180a46e0c21b44001ec50f6", 32);
	assert_hex(t3, "73e5eae9c5d230ea6becb29ab8a49f627aff1eb27586b938a71ae090d4c7a184", 32);
}
END_TEST

START_TEST(test_kdf_differential)
{
	uint8_t ck[32], in[200], t[3][32], ref[3][32];

	for (int iter = 0; iter < 200; iter++) {
		size_t len = rng() % sizeof(in);
		int n = iter % 4;

		rng_fill(ck, sizeof(ck));
		rng_fill(in, len);
		ref_kdf(ref, ck, in, len);
		memset(t, 0xa5, sizeof(t));
		ck_assert_int_eq(wgt_kdf(n > 0 ? t[0] : NULL, n > 1 ? t[1] : NULL,
					 n > 2 ? t[2] : NULL, ck, in, len), 0);
		for (int i = 0; i < 3; i++) {
			if (i < n) {
				ck_assert_mem_eq(t[i], ref[i], 32);
			} else {
				for (int j = 0; j < 32; j++)
					ck_assert_uint_eq(t[i][j], 0xa5);
			}
		}
	}
}
END_TEST

/* Noise updates the chaining key in place: KDF(&ck, ..., ck, ...). */
START_TEST(test_kdf_aliasing)
{
	uint8_t ck[32], in[32], ref[3][32], t2[32], t3[32];

	rng_fill(ck, sizeof(ck));
	rng_fill(in, sizeof(in));
	ref_kdf(ref, ck, in, sizeof(in));
	ck_assert_int_eq(wgt_kdf(ck, t2, t3, ck, in, sizeof(in)), 0);
	ck_assert_mem_eq(ck, ref[0], 32);
	ck_assert_mem_eq(t2, ref[1], 32);
	ck_assert_mem_eq(t3, ref[2], 32);
}
END_TEST

/* An output after a NULL one is not computed, so it must not be written. */
START_TEST(test_kdf_null_gap)
{
	uint8_t ck[32] = { 1 }, t2[32], t3[32], zero[32] = { 0 };

	memset(t2, 0, sizeof(t2));
	memset(t3, 0, sizeof(t3));
	ck_assert_int_eq(wgt_kdf(NULL, t2, t3, ck, "x", 1), 0);
	ck_assert_mem_eq(t2, zero, 32);
	ck_assert_mem_eq(t3, zero, 32);
}
END_TEST

static void *race_init(void *arg)
{
	uint8_t *out = arg;

	return (void *)(intptr_t)wgt_blake2s_hash(out, "abc", 3);
}

/* Each Check test runs in a fresh fork, so this exercises the first-use fetch from many threads. */
START_TEST(test_concurrent_first_use)
{
	pthread_t th[8];
	uint8_t out[8][32];
	void *rv;

	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_init, out[i]), 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(pthread_join(th[i], &rv), 0);
		ck_assert_int_eq((int)(intptr_t)rv, 0);
		assert_hex(out[i], "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", 32);
	}
}
END_TEST

static Suite *blake2s_suite(void)
{
	Suite *s = suite_create("blake2s");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_concurrent_first_use);
	tcase_add_test(tc, test_rfc7693_abc);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_reference_self_check);
	tcase_add_test(tc, test_wireguard_constants);
	tcase_add_loop_test(tc, test_keyed_kat, 0, (int)(sizeof(keyed_kat) / sizeof(keyed_kat[0])));
	tcase_add_test(tc, test_keyed_mac16);
	tcase_add_test(tc, test_keyed_bad_args);
	tcase_add_test(tc, test_hash_differential);
	tcase_add_test(tc, test_keyed_differential);
	tcase_add_test(tc, test_hmac_kat);
	tcase_add_test(tc, test_hmac_differential);
	tcase_add_test(tc, test_kdf_kat);
	tcase_add_test(tc, test_kdf_differential);
	tcase_add_test(tc, test_kdf_aliasing);
	tcase_add_test(tc, test_kdf_null_gap);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(blake2s_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
