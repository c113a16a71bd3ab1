/* SPDX-License-Identifier: MIT */
/* The AVX-512 batch ChaCha20-Poly1305 against OpenSSL (itself checked with RFC 8439 in test_aead): random batches, edge lengths, in place, tampering. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/aead_batch.h"
#include "test_rand.h"

static uint64_t seed;

#define MAX_ITEMS 48
#define MAX_LEN 65535

static void fill(uint64_t *s, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)next_rand(s);
}

/* A length: mostly packet-sized, with the block edges and some large ones. */
static size_t pick_len(uint64_t *s)
{
	static const size_t edges[] = { 0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129,
					 1023, 1024, 1025, 1420, 1424, 1440, 4096, 8999,
					 MAX_LEN - 16 };

	switch (rand_below(s, 4)) {
	case 0:
		return edges[rand_below(s, sizeof(edges) / sizeof(edges[0]))];
	case 1:
		return rand_below(s, 200);
	case 2:
		return 1300 + rand_below(s, 200);
	default:
		return rand_below(s, 9000);
	}
}

struct batch {
	size_t n;
	uint8_t key[32];
	uint8_t *pt[MAX_ITEMS], *ct[MAX_ITEMS], *ref[MAX_ITEMS];
	struct wgt_aead_batch_item it[MAX_ITEMS];
};

/* Random messages; ref[i] is OpenSSL's sealing of pt[i] (ciphertext and tag). */
static void batch_make(struct batch *b, uint64_t *s, size_t n, bool same_len)
{
	size_t len0 = pick_len(s);

	b->n = n;
	fill(s, b->key, sizeof(b->key));
	for (size_t i = 0; i < n; i++) {
		size_t len = same_len ? len0 : pick_len(s);
		/* Consecutive counters as a sender uses them, sometimes arbitrary ones. */
		uint64_t nonce = rand_below(s, 4) ? 1000 + i : next_rand(s);

		b->pt[i] = malloc(len + 16);
		b->ct[i] = malloc(len + 16);
		b->ref[i] = malloc(len + 16);
		ck_assert(b->pt[i] && b->ct[i] && b->ref[i]);
		fill(s, b->pt[i], len);
		ck_assert_int_eq(wgt_aead_encrypt(b->ref[i], b->pt[i], len, NULL, 0, nonce, b->key), 0);
		b->it[i] = (struct wgt_aead_batch_item){ .dst = b->ct[i], .src = b->pt[i],
							 .len = len, .nonce = nonce };
	}
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->pt[i]);
		free(b->ct[i]);
		free(b->ref[i]);
	}
}

static bool supported(void)
{
	if (wgt_aead_batch_supported())
		return true;
	fprintf(stderr, "SKIP: this CPU has no AVX-512 F/BW, the batch code never runs here\n");
	return false;
}

START_TEST(test_seal_matches_openssl)
{
	uint64_t s = seed;

	if (!supported())
		return;
	for (int round = 0; round < 300; round++) {
		struct batch b;
		size_t n = 1 + rand_below(&s, round % 10 ? 20 : MAX_ITEMS);
		bool in_place = rand_below(&s, 2);

		batch_make(&b, &s, n, rand_below(&s, 2));
		if (in_place)
			for (size_t i = 0; i < n; i++) {
				memcpy(b.ct[i], b.pt[i], b.it[i].len);
				b.it[i].src = b.ct[i];
			}
		wgt_aead_batch_seal(b.key, b.it, n);
		for (size_t i = 0; i < n; i++)
			ck_assert_msg(!memcmp(b.ct[i], b.ref[i], b.it[i].len + 16),
				      "round %d item %zu/%zu len %zu in_place %d differs from OpenSSL",
				      round, i, n, b.it[i].len, in_place);
		batch_free(&b);
	}
}
END_TEST

START_TEST(test_open_matches_openssl)
{
	uint64_t s = seed + 1;

	if (!supported())
		return;
	for (int round = 0; round < 300; round++) {
		struct batch b;
		size_t n = 1 + rand_below(&s, round % 10 ? 20 : MAX_ITEMS);
		bool in_place = rand_below(&s, 2);
		bool bad[MAX_ITEMS];

		batch_make(&b, &s, n, rand_below(&s, 2));
		for (size_t i = 0; i < n; i++) {
			size_t len = b.it[i].len;

			/* Some items are tampered with: a ciphertext bit or a tag bit. */
			bad[i] = rand_below(&s, 5) == 0;
			if (bad[i])
				b.ref[i][rand_below(&s, len + 16)] ^= (uint8_t)(1u << rand_below(&s, 8));
			if (in_place) {
				memcpy(b.ct[i], b.ref[i], len + 16);
				b.it[i] = (struct wgt_aead_batch_item){ b.ct[i], b.ct[i], len,
									b.it[i].nonce, 1 };
			} else {
				memset(b.ct[i], 0xa5, len + 16);
				b.it[i] = (struct wgt_aead_batch_item){ b.ct[i], b.ref[i], len,
									b.it[i].nonce, 1 };
			}
		}
		wgt_aead_batch_open(b.key, b.it, n);
		for (size_t i = 0; i < n; i++) {
			size_t len = b.it[i].len;

			if (bad[i]) {
				ck_assert_int_eq(b.it[i].result, -EBADMSG);
				/* Nothing of a forged message is decrypted. */
				if (in_place)
					ck_assert(!memcmp(b.ct[i], b.ref[i], len + 16));
				else
					for (size_t k = 0; k < len + 16; k++)
						ck_assert_uint_eq(b.ct[i][k], 0xa5);
			} else {
				ck_assert_msg(b.it[i].result == 0, "round %d item %zu len %zu: %d",
					      round, i, len, b.it[i].result);
				ck_assert(!memcmp(b.ct[i], b.pt[i], len));
			}
		}
		batch_free(&b);
	}
}
END_TEST

/* Every length 0..300 in one batch, both ways: each block and tail edge of both lanes' layouts. */
START_TEST(test_every_short_length)
{
	uint64_t s = seed + 2;
	enum { N = 301 };
	static uint8_t pt[N][320], ct[N][320], ref[N][320], out[N][320];
	static struct wgt_aead_batch_item it[N];
	uint8_t key[32];

	if (!supported())
		return;
	fill(&s, key, sizeof(key));
	for (size_t i = 0; i < N; i++) {
		fill(&s, pt[i], i);
		ck_assert_int_eq(wgt_aead_encrypt(ref[i], pt[i], i, NULL, 0, i * 7919, key), 0);
		it[i] = (struct wgt_aead_batch_item){ ct[i], pt[i], i, i * 7919, 1 };
	}
	wgt_aead_batch_seal(key, it, N);
	for (size_t i = 0; i < N; i++)
		ck_assert_msg(!memcmp(ct[i], ref[i], i + 16), "seal, length %zu", i);
	for (size_t i = 0; i < N; i++)
		it[i] = (struct wgt_aead_batch_item){ out[i], ref[i], i, i * 7919, 1 };
	wgt_aead_batch_open(key, it, N);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(it[i].result, 0);
		ck_assert_msg(!memcmp(out[i], pt[i], i), "open, length %zu", i);
	}
}
END_TEST

/*
 * Ciphertext of all ones, the largest value every Poly1305 block can add,
 * over long messages: the limbs' carry bounds under the most steps. The
 * plaintext is the keystream inverted (the sealing of zeros is the
 * keystream), so sealing it gives all ones.
 */
START_TEST(test_all_ones_ciphertext)
{
	static const size_t lens[] = { 65535, 65520, 40000, 1420, 1452, 4096, 17, 16 };
	enum { N = 16 };
	uint64_t s = seed + 3;
	static uint8_t zero[65536], ks[N][65536 + 16], pt[N][65536], ct[N][65536 + 16];
	static uint8_t ref[N][65536 + 16], out[N][65536];
	struct wgt_aead_batch_item it[N];
	uint8_t key[32];

	if (!supported())
		return;
	fill(&s, key, sizeof(key));
	for (size_t i = 0; i < N; i++) {
		size_t len = lens[i % 8];
		uint64_t nonce = 77 + i;

		ck_assert_int_eq(wgt_aead_encrypt(ks[i], zero, len, NULL, 0, nonce, key), 0);
		for (size_t k = 0; k < len; k++)
			pt[i][k] = (uint8_t)~ks[i][k];
		ck_assert_int_eq(wgt_aead_encrypt(ref[i], pt[i], len, NULL, 0, nonce, key), 0);
		for (size_t k = 0; k < len; k++)
			ck_assert_uint_eq(ref[i][k], 0xff);
		it[i] = (struct wgt_aead_batch_item){ ct[i], pt[i], len, nonce, 1 };
	}
	wgt_aead_batch_seal(key, it, N);
	for (size_t i = 0; i < N; i++)
		ck_assert_msg(!memcmp(ct[i], ref[i], it[i].len + 16), "seal, item %zu length %zu", i,
			      it[i].len);
	for (size_t i = 0; i < N; i++)
		it[i] = (struct wgt_aead_batch_item){ out[i], ref[i], lens[i % 8], 77 + i, 1 };
	wgt_aead_batch_open(key, it, N);
	for (size_t i = 0; i < N; i++) {
		ck_assert_int_eq(it[i].result, 0);
		ck_assert_msg(!memcmp(out[i], pt[i], it[i].len), "open, item %zu", i);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("aead_batch");
	TCase *tc = tcase_create("differential");

	tcase_add_test(tc, test_seal_matches_openssl);
	tcase_add_test(tc, test_open_matches_openssl);
	tcase_add_test(tc, test_every_short_length);
	tcase_add_test(tc, test_all_ones_ciphertext);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	seed = test_seed_named("aead_batch", 0x5eed0ba7c4ULL);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
