/* SPDX-License-Identifier: MIT */
/* ChaCha20-Poly1305, XChaCha20-Poly1305 and HChaCha20: RFC 8439 and draft-irtf-cfrg-xchacha vectors, tampering, in-place use, key caching. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto/aead.h"
#include "hex.h"

/* Decodes a hex string into a fresh buffer; *ret_len gets its length. */
static uint8_t *unhex_alloc(const char *hex, size_t *ret_len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *out = malloc(n ? n : 1);

	ck_assert_uint_eq(strlen(hex) % 2, 0);
	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
	*ret_len = n;
	return out;
}

static uint64_t rng_state = 0x0123456789abcdefULL;

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

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static const char ladies[] =
	"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
	"the future, sunscreen would be it.";

/* RFC 8439 Appendix A.5: nonce 00000000 0102030405060708 is counter 0x0807060504030201. */
static const char a5_key[] = "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0";
static const uint64_t a5_counter = 0x0807060504030201ULL;
static const char a5_aad[] = "f33388860000000000004e91";
static const char a5_ct[] =
	"64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2"
	"4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf"
	"332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
	"9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4"
	"b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
	"af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
	"0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10"
	"49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29"
	"a6ad5cb4022b02709b"
	"eead9d67890cbb22392336fea1851f38"; /* tag */
static const char a5_pt[] =
	"Internet-Drafts are draft documents valid for a maximum of six months and may be "
	"updated, replaced, or obsoleted by other documents at any time. It is inappropriate "
	"to use Internet-Drafts as reference material or to cite them other than as "
	"/\xe2\x80\x9cwork in progress./\xe2\x80\x9d";

START_TEST(test_rfc8439_a5)
{
	uint8_t key[32], aad[12], *ct, *buf;
	size_t len, ptlen = strlen(a5_pt);

	unhex(key, a5_key, 32);
	unhex(aad, a5_aad, 12);
	ct = unhex_alloc(a5_ct, &len);
	ck_assert_uint_eq(len, ptlen + WGT_AEAD_TAG_SIZE);
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);

	ck_assert_int_eq(wgt_aead_decrypt(buf, ct, len, aad, sizeof(aad), a5_counter, key), 0);
	ck_assert_mem_eq(buf, a5_pt, ptlen);
	ck_assert_int_eq(wgt_aead_encrypt(buf, (const uint8_t *)a5_pt, ptlen, aad, sizeof(aad),
					  a5_counter, key), 0);
	ck_assert_mem_eq(buf, ct, len);

	/* In place, both ways. */
	ck_assert_int_eq(wgt_aead_decrypt(buf, buf, len, aad, sizeof(aad), a5_counter, key), 0);
	ck_assert_mem_eq(buf, a5_pt, ptlen);
	ck_assert_int_eq(wgt_aead_encrypt(buf, buf, ptlen, aad, sizeof(aad), a5_counter, key), 0);
	ck_assert_mem_eq(buf, ct, len);
	free(buf);
	free(ct);
}
END_TEST

/*
 * RFC 8439 section 2.8.2. Its nonce 07000000 4041424344454647 has a non-zero
 * prefix that WireGuard's counter nonce cannot express, so it goes through
 * EVP directly: this pins down the OpenSSL behaviour the module relies on.
 */
START_TEST(test_rfc8439_2_8_2_evp)
{
	static const char ct_hex[] =
		"d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
		"3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
		"92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
		"3ff4def08e4b7a9de576d26586cec64b6116";
	uint8_t key[32], iv[12], aad[12], tag[16], want_tag[16], out[sizeof(ladies)];
	size_t ptlen = strlen(ladies), ctlen;
	uint8_t *want = unhex_alloc(ct_hex, &ctlen);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int outl;

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	unhex(iv, "070000004041424344454647", 12);
	unhex(aad, "50515253c0c1c2c3c4c5c6c7", 12);
	unhex(want_tag, "1ae10b594f09e26a7e902ecbd0600691", 16);
	ck_assert_uint_eq(ctlen, ptlen);
	ck_assert_ptr_nonnull(ctx);

	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL), 1);
	ck_assert_int_gt(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL), 0);
	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, NULL, &outl, aad, sizeof(aad)), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, out, &outl, (const uint8_t *)ladies, (int)ptlen), 1);
	ck_assert_int_eq(outl, (int)ptlen);
	ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, out + outl, &outl), 1);
	ck_assert_int_gt(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag), 0);
	ck_assert_mem_eq(out, want, ptlen);
	ck_assert_mem_eq(tag, want_tag, 16);
	EVP_CIPHER_CTX_free(ctx);
	free(want);
}
END_TEST

START_TEST(test_tamper)
{
	uint8_t key[32], aad[12], *ct, *buf, *bad;
	size_t len;

	unhex(key, a5_key, 32);
	unhex(aad, a5_aad, 12);
	ct = unhex_alloc(a5_ct, &len);
	buf = malloc(len);
	bad = malloc(len);
	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(bad);

	/* One flipped bit in the tag, in the ciphertext, in the AAD; wrong nonce; wrong key. */
	memcpy(bad, ct, len);
	bad[len - 1] ^= 0x01;
	memset(buf, 0x55, len);
	ck_assert_int_eq(wgt_aead_decrypt(buf, bad, len, aad, sizeof(aad), a5_counter, key), -EBADMSG);
	ck_assert(all_zero(buf, len - WGT_AEAD_TAG_SIZE));

	memcpy(bad, ct, len);
	bad[17] ^= 0x80;
	memset(buf, 0x55, len);
	ck_assert_int_eq(wgt_aead_decrypt(buf, bad, len, aad, sizeof(aad), a5_counter, key), -EBADMSG);
	ck_assert(all_zero(buf, len - WGT_AEAD_TAG_SIZE));

	aad[0] ^= 0x01;
	ck_assert_int_eq(wgt_aead_decrypt(buf, ct, len, aad, sizeof(aad), a5_counter, key), -EBADMSG);
	aad[0] ^= 0x01;
	ck_assert_int_eq(wgt_aead_decrypt(buf, ct, len, aad, sizeof(aad) - 1, a5_counter, key),
			 -EBADMSG);
	ck_assert_int_eq(wgt_aead_decrypt(buf, ct, len, aad, sizeof(aad), a5_counter + 1, key),
			 -EBADMSG);
	key[0] ^= 0x01;
	ck_assert_int_eq(wgt_aead_decrypt(buf, ct, len, aad, sizeof(aad), a5_counter, key), -EBADMSG);
	key[0] ^= 0x01;

	/* In place: a forged packet leaves no plaintext behind. */
	memcpy(bad, ct, len);
	bad[len - 16] ^= 0x04;
	ck_assert_int_eq(wgt_aead_decrypt(bad, bad, len, aad, sizeof(aad), a5_counter, key), -EBADMSG);
	ck_assert(all_zero(bad, len - WGT_AEAD_TAG_SIZE));

	/* Shorter than a tag. */
	ck_assert_int_eq(wgt_aead_decrypt(buf, ct, 15, NULL, 0, 0, key), -EINVAL);
	free(bad);
	free(buf);
	free(ct);
}
END_TEST

/* A keepalive: empty plaintext, no AAD, just the tag. */
START_TEST(test_empty_plaintext)
{
	uint8_t key[32], tag[16], out[1];

	rng_fill(key, sizeof(key));
	ck_assert_int_eq(wgt_aead_encrypt(tag, NULL, 0, NULL, 0, 7, key), 0);
	ck_assert_int_eq(wgt_aead_decrypt(out, tag, 16, NULL, 0, 7, key), 0);
	ck_assert_int_eq(wgt_aead_decrypt(out, tag, 16, NULL, 0, 8, key), -EBADMSG);
	tag[3] ^= 1;
	ck_assert_int_eq(wgt_aead_decrypt(out, tag, 16, NULL, 0, 7, key), -EBADMSG);
}
END_TEST

START_TEST(test_round_trip_in_place)
{
	enum { MAX = 2048 };
	uint8_t key[32], ad[32], *pt = malloc(MAX), *buf = malloc(MAX + 16), *copy = malloc(MAX + 16);

	ck_assert_ptr_nonnull(pt);
	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(copy);
	for (int iter = 0; iter < 200; iter++) {
		size_t len = rng() % MAX, adlen = rng() % sizeof(ad);
		uint64_t nonce = rng();

		rng_fill(key, sizeof(key));
		rng_fill(ad, adlen);
		rng_fill(pt, len);
		ck_assert_int_eq(wgt_aead_encrypt(copy, pt, len, ad, adlen, nonce, key), 0);
		memcpy(buf, pt, len);
		ck_assert_int_eq(wgt_aead_encrypt(buf, buf, len, ad, adlen, nonce, key), 0);
		ck_assert_mem_eq(buf, copy, len + 16);
		ck_assert_int_eq(wgt_aead_decrypt(buf, buf, len + 16, ad, adlen, nonce, key), 0);
		if (len)
			ck_assert_mem_eq(buf, pt, len);
	}
	free(copy);
	free(buf);
	free(pt);
}
END_TEST

/* draft-irtf-cfrg-xchacha-03 section 2.2.1. */
START_TEST(test_hchacha20)
{
	uint8_t key[32], nonce[16], out[32], want[32];

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	unhex(nonce, "000000090000004a0000000031415927", 16);
	unhex(want, "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc", 32);
	wgt_hchacha20(out, nonce, key);
	ck_assert_mem_eq(out, want, 32);
}
END_TEST

/* draft-irtf-cfrg-xchacha-03 appendix A.3.1. */
static const char xchacha_ct[] =
	"bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
	"731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
	"2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
	"21f9664c97637da9768812f615c68b13b52e"
	"c0875924c1c7987947deafd8780acf49"; /* tag */

START_TEST(test_xchacha_a31)
{
	uint8_t key[32], nonce[24], aad[12], *ct, *buf;
	size_t len, ptlen = strlen(ladies);

	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	for (int i = 0; i < 24; i++)
		nonce[i] = (uint8_t)(0x40 + i);
	unhex(aad, "50515253c0c1c2c3c4c5c6c7", 12);
	ct = unhex_alloc(xchacha_ct, &len);
	ck_assert_uint_eq(len, ptlen + 16);
	buf = malloc(len);
	ck_assert_ptr_nonnull(buf);

	ck_assert_int_eq(wgt_xaead_encrypt(buf, (const uint8_t *)ladies, ptlen, aad, sizeof(aad),
					   nonce, key), 0);
	ck_assert_mem_eq(buf, ct, len);
	ck_assert_int_eq(wgt_xaead_decrypt(buf, buf, len, aad, sizeof(aad), nonce, key), 0);
	ck_assert_mem_eq(buf, ladies, ptlen);

	/* Every nonce byte matters: the first 16 feed HChaCha20, the last 8 the inner nonce. */
	nonce[0] ^= 1;
	ck_assert_int_eq(wgt_xaead_decrypt(buf, ct, len, aad, sizeof(aad), nonce, key), -EBADMSG);
	nonce[0] ^= 1;
	nonce[23] ^= 1;
	ck_assert_int_eq(wgt_xaead_decrypt(buf, ct, len, aad, sizeof(aad), nonce, key), -EBADMSG);
	ck_assert(all_zero(buf, ptlen));
	nonce[23] ^= 1;
	ct[len - 1] ^= 1;
	ck_assert_int_eq(wgt_xaead_decrypt(buf, ct, len, aad, sizeof(aad), nonce, key), -EBADMSG);
	ck_assert_int_eq(wgt_xaead_decrypt(buf, ct, 15, aad, sizeof(aad), nonce, key), -EINVAL);
	free(buf);
	free(ct);
}
END_TEST

/* Seals pt under (key, nonce) with the one-shot API and checks the context agrees. */
static void check_seal(struct wgt_aead *a, uint64_t key_id, const uint8_t *key,
		       const uint8_t *seal_key, const uint8_t *pt, size_t len, uint64_t nonce)
{
	uint8_t want[256 + 16], got[256 + 16];

	ck_assert_uint_le(len, 256);
	ck_assert_int_eq(wgt_aead_encrypt(want, pt, len, NULL, 0, nonce, seal_key), 0);
	ck_assert_int_eq(wgt_aead_seal(a, key_id, key, got, pt, len, nonce), 0);
	ck_assert_mem_eq(got, want, len + 16);
}

START_TEST(test_ctx_seal_open)
{
	struct wgt_aead *a = wgt_aead_new(), *b = wgt_aead_new();
	uint8_t k1[32], k2[32], pt[256], buf[256 + 16];

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	rng_fill(k1, sizeof(k1));
	rng_fill(k2, sizeof(k2));
	rng_fill(pt, sizeof(pt));

	/* A batch on one key: only the nonce changes. */
	for (uint64_t n = 0; n < 20; n++)
		check_seal(a, 1, k1, k1, pt, (size_t)(n * 13 % 257), n);
	/* New key id re-keys. */
	check_seal(a, 2, k2, k2, pt, 100, 0);
	check_seal(a, 2, k2, k2, pt, 0, 1);
	check_seal(a, 1, k1, k1, pt, 64, 99);

	/*
	 * The cache really is keyed by id: reusing an id with other key bytes
	 * (a contract violation) keeps the cached key, while id 0 always
	 * reloads.
	 */
	check_seal(a, 1, k2, k1, pt, 50, 100);
	check_seal(a, 0, k2, k2, pt, 50, 101);
	check_seal(a, 0, k1, k1, pt, 50, 102);

	/* Open on another context, then flip the same context's direction. */
	ck_assert_int_eq(wgt_aead_seal(a, 7, k1, buf, pt, 200, 5), 0);
	ck_assert_int_eq(wgt_aead_open(b, 7, k1, buf, buf, 216, 5), 0);
	ck_assert_mem_eq(buf, pt, 200);
	ck_assert_int_eq(wgt_aead_seal(a, 7, k1, buf, pt, 200, 6), 0);
	ck_assert_int_eq(wgt_aead_open(a, 7, k1, buf, buf, 216, 6), 0);
	ck_assert_mem_eq(buf, pt, 200);
	check_seal(a, 7, k1, k1, pt, 33, 7);

	/* A forged packet does not poison the context for the next good one. */
	ck_assert_int_eq(wgt_aead_seal(a, 7, k1, buf, pt, 100, 8), 0);
	buf[3] ^= 1;
	ck_assert_int_eq(wgt_aead_open(b, 7, k1, buf, buf, 116, 8), -EBADMSG);
	ck_assert(all_zero(buf, 100));
	ck_assert_int_eq(wgt_aead_seal(a, 7, k1, buf, pt, 100, 9), 0);
	ck_assert_int_eq(wgt_aead_open(b, 7, k1, buf, buf, 116, 8), -EBADMSG);
	ck_assert_int_eq(wgt_aead_seal(a, 7, k1, buf, pt, 100, 9), 0);
	ck_assert_int_eq(wgt_aead_open(b, 7, k1, buf, buf, 116, 9), 0);
	ck_assert_mem_eq(buf, pt, 100);

	/* Keepalive and too-short input. */
	ck_assert_int_eq(wgt_aead_seal(a, 7, k1, buf, NULL, 0, 10), 0);
	ck_assert_int_eq(wgt_aead_open(b, 7, k1, buf, buf, 16, 10), 0);
	ck_assert_int_eq(wgt_aead_open(b, 7, k1, buf, buf, 15, 10), -EINVAL);

	/* Interoperates with the one-shot API both ways. */
	ck_assert_int_eq(wgt_aead_encrypt(buf, pt, 128, NULL, 0, 11, k2), 0);
	ck_assert_int_eq(wgt_aead_open(b, 2, k2, buf, buf, 144, 11), 0);
	ck_assert_mem_eq(buf, pt, 128);

	wgt_aead_free(a);
	wgt_aead_free(b);
	wgt_aead_free(NULL);
}
END_TEST

/* Randomized: a long interleaving of ids, directions and lengths against the one-shot API. */
START_TEST(test_ctx_random)
{
	struct wgt_aead *a = wgt_aead_new();
	uint8_t keys[4][32], pt[1500], want[1516], got[1516];

	ck_assert_ptr_nonnull(a);
	rng_fill(&keys[0][0], sizeof(keys));
	for (int iter = 0; iter < 2000; iter++) {
		int k = (int)(rng() % 4);
		size_t len = rng() % sizeof(pt);
		uint64_t nonce = rng();

		rng_fill(pt, len);
		ck_assert_int_eq(wgt_aead_encrypt(want, pt, len, NULL, 0, nonce, keys[k]), 0);
		if (rng() & 1) {
			ck_assert_int_eq(wgt_aead_seal(a, (uint64_t)k + 1, keys[k], got, pt, len, nonce), 0);
			ck_assert_mem_eq(got, want, len + 16);
		} else {
			ck_assert_int_eq(wgt_aead_open(a, (uint64_t)k + 1, keys[k], got, want, len + 16,
						       nonce), 0);
			if (len)
				ck_assert_mem_eq(got, pt, len);
		}
	}
	wgt_aead_free(a);
}
END_TEST

static Suite *aead_suite(void)
{
	Suite *s = suite_create("aead");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_rfc8439_a5);
	tcase_add_test(tc, test_rfc8439_2_8_2_evp);
	tcase_add_test(tc, test_tamper);
	tcase_add_test(tc, test_empty_plaintext);
	tcase_add_test(tc, test_round_trip_in_place);
	tcase_add_test(tc, test_hchacha20);
	tcase_add_test(tc, test_xchacha_a31);
	tcase_add_test(tc, test_ctx_seal_open);
	tcase_add_test(tc, test_ctx_random);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(aead_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
