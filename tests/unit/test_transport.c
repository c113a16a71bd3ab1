/* SPDX-License-Identifier: MIT */
/* Data messages: padding, in-place round trips, counters, malformed input, key caching. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/aead_batch.h"
#include "crypto/transport.h"
#include "session_util.h"

#define NOW (77 * WGT_NSEC_PER_SEC)

static struct wgt_aead *aead;
static struct endpoint a, b;
static struct wgt_noise_keypair *ka, *kb;

static void setup(void)
{
	aead = wgt_aead_new();
	ck_assert_ptr_nonnull(aead);
	endpoint_pair_init(&a, &b, NULL);
	handshake(&a, &b, NOW, &ka, &kb);
}

static void teardown(void)
{
	endpoint_destroy(&a);
	endpoint_destroy(&b);
	wgt_aead_free(aead);
}

START_TEST(test_padding)
{
	ck_assert_uint_eq(wgt_transport_padded_len(0, 0), 0);
	ck_assert_uint_eq(wgt_transport_padded_len(1, 0), 16);
	ck_assert_uint_eq(wgt_transport_padded_len(16, 0), 16);
	ck_assert_uint_eq(wgt_transport_padded_len(17, 0), 32);
	ck_assert_uint_eq(wgt_transport_padded_len(1419, 1420), 1420);
	ck_assert_uint_eq(wgt_transport_padded_len(1410, 1420), 1420);
	ck_assert_uint_eq(wgt_transport_padded_len(1400, 1420), 1408);
	/* Larger than the MTU (a GSO segment never is, but be total): plain rounding. */
	ck_assert_uint_eq(wgt_transport_padded_len(1500, 1420), 1504);
}
END_TEST

START_TEST(test_round_trip_sizes)
{
	static uint8_t buf[70000];
	size_t len, plen;

	for (size_t n = 0; n <= 1500; n += (n < 40 ? 1 : 37)) {
		for (size_t k = 0; k < n; k++)
			buf[WGT_MSG_DATA_HEADER_LEN + k] = (uint8_t)(n + k);
		ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, n, sizeof(buf), 1420, NOW,
						       &len), 0);
		ck_assert_uint_eq(len, WGT_MSG_DATA_HEADER_LEN + wgt_transport_padded_len(n, 1420) +
					       WGT_AEAD_TAG_LEN);
		/* Padded to 16 unless the MTU caps it. */
		ck_assert(n > 1404 || len % 16 == 0);
		ck_assert_uint_eq(le32toh(((struct wgt_msg_data *)buf)->receiver_index),
				  kb->local_index);
		ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), 0);
		ck_assert_uint_eq(plen, wgt_transport_padded_len(n, 1420));
		for (size_t k = 0; k < n; k++)
			ck_assert_uint_eq(buf[WGT_MSG_DATA_HEADER_LEN + k], (uint8_t)(n + k));
		for (size_t k = n; k < plen; k++)
			ck_assert_uint_eq(buf[WGT_MSG_DATA_HEADER_LEN + k], 0);
	}
	/* A 64 KiB payload (the largest a GSO batch segment could be) works too. */
	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 65535, sizeof(buf), 0, NOW, &len), 0);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), 0);
}
END_TEST

START_TEST(test_keepalive)
{
	uint8_t buf[64];
	size_t len, plen = 99;

	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 0, sizeof(buf), 1420, NOW, &len), 0);
	ck_assert_uint_eq(len, WGT_MSG_DATA_MIN_LEN);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), 0);
	ck_assert_uint_eq(plen, 0);
}
END_TEST

START_TEST(test_counters_increase)
{
	uint8_t buf[64];
	size_t len;

	for (uint64_t k = 0; k < 5; k++) {
		ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 1, sizeof(buf), 0, NOW, &len), 0);
		ck_assert_uint_eq(le64toh(((struct wgt_msg_data *)buf)->counter), k);
	}
}
END_TEST

START_TEST(test_malformed)
{
	uint8_t buf[256], good[256];
	size_t len, plen;

	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 100, 100, 0, NOW, &len), -ENOBUFS);
	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 100, sizeof(buf), 0, NOW, &len), 0);
	memcpy(good, buf, len);

	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, WGT_MSG_DATA_MIN_LEN - 1, NOW, &plen),
			 -EINVAL);
	buf[0] = WGT_MSG_HANDSHAKE_INITIATION;
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), -EINVAL);
	memcpy(buf, good, len);
	buf[1] = 1; /* reserved bytes must be zero */
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), -EINVAL);
	/* Each byte of counter, ciphertext and tag is authenticated. */
	for (size_t k = 8; k < len; k++) {
		memcpy(buf, good, len);
		buf[k] ^= 0x01;
		ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), -EBADMSG);
	}
	/* Truncated by one tag byte. */
	memcpy(buf, good, len);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len - 1, NOW, &plen), -EBADMSG);
	/* Failed attempts did not poison the window: the genuine packet still opens. */
	memcpy(buf, good, len);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), 0);
}
END_TEST

START_TEST(test_counter_exhaustion)
{
	uint8_t buf[64];
	size_t len, plen;

	atomic_store(&ka->send_counter, WGT_REJECT_AFTER_MESSAGES - 1);
	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 1, sizeof(buf), 0, NOW, &len), 0);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), 0);
	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 1, sizeof(buf), 0, NOW, &len),
			 -EKEYEXPIRED);
	ck_assert(!atomic_load(&ka->send_valid));
	/* A forged counter at the limit is refused before any crypto. */
	((struct wgt_msg_data *)buf)->counter = htole64(WGT_REJECT_AFTER_MESSAGES);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW, &plen), -EKEYEXPIRED);
}
END_TEST

START_TEST(test_key_cache_interleaved)
{
	struct endpoint c, d;
	struct wgt_noise_keypair *kc, *kd;
	uint8_t buf1[128], buf2[128], copy[128];
	size_t l1, l2, plen;

	endpoint_pair_init(&c, &d, NULL);
	handshake(&c, &d, NOW, &kc, &kd);
	/* One context alternating between keypairs and directions must never mix keys. */
	for (int k = 0; k < 50; k++) {
		ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf1, 20, sizeof(buf1), 0, NOW, &l1), 0);
		ck_assert_int_eq(wgt_transport_encrypt(aead, kc, buf2, 20, sizeof(buf2), 0, NOW, &l2), 0);
		/* In-place opening destroys a packet that fails: try the wrong key on a copy. */
		memcpy(copy, buf1, l1);
		ck_assert_int_eq(wgt_transport_decrypt(aead, kd, copy, l1, NOW, &plen), -EBADMSG);
		ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf1, l1, NOW, &plen), 0);
		ck_assert_int_eq(wgt_transport_decrypt(aead, kd, buf2, l2, NOW, &plen), 0);
	}
	endpoint_destroy(&c);
	endpoint_destroy(&d);
}
END_TEST

/*
 * The batch steps a worker uses (prepare, seal_many; check, open_many,
 * commit) over batches of 1..40 mixed-size messages, in both the batch
 * and the one-by-one code (the suite runs again with WGT_AEAD_NO_BATCH):
 * every message arrives intact; a forged one fails alone; a replayed one
 * is refused by the window, only after it authenticated.
 */
START_TEST(test_batch_steps)
{
	enum { MAX = 40 };
	static uint8_t bufs[MAX][1600], pt[MAX][1600], out[MAX][1600];
	struct wgt_aead_batch_item it[MAX];
	size_t lens[MAX], plens[MAX];
	uint64_t counters[MAX], seed = 0x7e57ba7c4ULL;

	for (unsigned round = 0; round < 60; round++) {
		size_t n = 1 + round % MAX;
		size_t forged = round % 3 == 0 ? round % n : SIZE_MAX;

		for (size_t i = 0; i < n; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			plens[i] = round % 2 ? 1420 : (seed >> 33) % 1421;
			for (size_t k = 0; k < plens[i]; k++)
				pt[i][k] = (uint8_t)(seed >> (k % 56));
			memcpy(bufs[i] + WGT_MSG_DATA_HEADER_LEN, pt[i], plens[i]);
			ck_assert_int_eq(wgt_transport_encrypt_prepare(ka, bufs[i], plens[i],
								       sizeof(bufs[i]), 1420, NOW,
								       &lens[i]), 0);
			wgt_transport_seal_item(bufs[i], lens[i], &it[i]);
		}
		ck_assert_int_eq(wgt_aead_seal_many(aead, ka->send_key_id, ka->send_key, it, n), 0);
		if (forged != SIZE_MAX)
			bufs[forged][lens[forged] - 1] ^= 1;
		for (size_t i = 0; i < n; i++) {
			ck_assert_int_eq(wgt_transport_decrypt_check(kb, bufs[i], lens[i], NOW,
								     &counters[i]), 0);
			it[i] = (struct wgt_aead_batch_item){
				.dst = out[i], .src = bufs[i] + WGT_MSG_DATA_HEADER_LEN,
				.len = lens[i] - WGT_MSG_DATA_MIN_LEN, .nonce = counters[i], .result = 1,
			};
		}
		wgt_aead_open_many(aead, kb->recv_key_id, kb->recv_key, it, n);
		for (size_t i = 0; i < n; i++) {
			if (i == forged) {
				ck_assert_int_eq(it[i].result, -EBADMSG);
				continue;
			}
			ck_assert_int_eq(it[i].result, 0);
			ck_assert_int_eq(wgt_transport_decrypt_commit(kb, counters[i]), 0);
			ck_assert(!memcmp(out[i], pt[i], plens[i]));
			/* The same counter again: authentic, but a replay. */
			ck_assert_int_eq(wgt_transport_decrypt_commit(kb, counters[i]), -ESTALE);
		}
	}
}
END_TEST

static Suite *transport_suite(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_padding);
	tcase_add_test(tc, test_round_trip_sizes);
	tcase_add_test(tc, test_keepalive);
	tcase_add_test(tc, test_counters_increase);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_counter_exhaustion);
	tcase_add_test(tc, test_key_cache_interleaved);
	tcase_add_test(tc, test_batch_steps);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(transport_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
