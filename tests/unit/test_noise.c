/* SPDX-License-Identifier: MIT */
/* Noise IKpsk2: handshakes with and without PSK, rotation, and every rejection path. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/noise.h"
#include "crypto/transport.h"
#include "session_util.h"

#define NOW (1000 * WGT_NSEC_PER_SEC)

static struct wgt_aead *aead;

static void setup(void)
{
	aead = wgt_aead_new();
	ck_assert_ptr_nonnull(aead);
}

static void teardown(void)
{
	wgt_aead_free(aead);
}

/* Sends `len` bytes of pattern from `from` under kp_send and checks `to` gets them under kp_recv. */
static void exchange(struct wgt_noise_keypair *kp_send, struct wgt_noise_keypair *kp_recv,
		     size_t len, uint64_t now)
{
	uint8_t buf[2048];
	size_t out_len, plen;

	for (size_t k = 0; k < len; k++)
		buf[WGT_MSG_DATA_HEADER_LEN + k] = (uint8_t)(k * 7 + 3);
	ck_assert_int_eq(wgt_transport_encrypt(aead, kp_send, buf, len, sizeof(buf), 0, now,
					       &out_len), 0);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kp_recv, buf, out_len, now, &plen), 0);
	ck_assert_uint_ge(plen, len);
	for (size_t k = 0; k < len; k++)
		ck_assert_uint_eq(buf[WGT_MSG_DATA_HEADER_LEN + k], (uint8_t)(k * 7 + 3));
}

static void run_handshake_and_data(const uint8_t *psk)
{
	struct endpoint a, b;
	struct wgt_noise_keypair *ka, *kb;

	endpoint_pair_init(&a, &b, psk);
	handshake(&a, &b, NOW, &ka, &kb);

	ck_assert(ka->is_initiator);
	ck_assert(!kb->is_initiator);
	ck_assert_mem_eq(ka->send_key, kb->recv_key, WGT_KEY_LEN);
	ck_assert_mem_eq(ka->recv_key, kb->send_key, WGT_KEY_LEN);
	ck_assert_int_ne(memcmp(ka->send_key, ka->recv_key, WGT_KEY_LEN), 0);
	ck_assert_uint_eq(ka->remote_index, kb->local_index);
	ck_assert_uint_eq(kb->remote_index, ka->local_index);
	/* The initiator may send at once; the responder waits for confirmation. */
	ck_assert_ptr_eq(a.kps.current, ka);
	ck_assert_ptr_null(b.kps.current);
	ck_assert_ptr_eq(b.kps.next, kb);
	ck_assert_int_eq(a.hs.state, WGT_HANDSHAKE_ZEROED);
	ck_assert_int_eq(b.hs.state, WGT_HANDSHAKE_ZEROED);

	exchange(ka, kb, 1420, NOW);
	ck_assert(wgt_noise_received_with_keypair(&b.kps, kb));
	ck_assert_ptr_eq(b.kps.current, kb);
	ck_assert_ptr_null(b.kps.next);
	ck_assert(!wgt_noise_received_with_keypair(&b.kps, kb));
	exchange(kb, ka, 64, NOW);
	exchange(kb, ka, 0, NOW); /* keepalive */

	endpoint_destroy(&a);
	endpoint_destroy(&b);
}

START_TEST(test_handshake_no_psk)
{
	run_handshake_and_data(NULL);
}
END_TEST

START_TEST(test_handshake_psk)
{
	uint8_t psk[WGT_KEY_LEN];

	memset(psk, 0x5a, sizeof(psk));
	run_handshake_and_data(psk);
}
END_TEST

START_TEST(test_psk_mismatch)
{
	struct endpoint a, b;
	struct wgt_msg_initiation init;
	struct wgt_msg_response resp;
	struct wgt_noise_handshake *found;
	uint8_t psk[WGT_KEY_LEN], ts[WGT_TIMESTAMP_LEN];

	memset(psk, 0x11, sizeof(psk));
	endpoint_pair_init(&a, &b, psk);
	psk[0] ^= 1;
	wgt_noise_handshake_set_psk(&b.hs, psk);
	test_timestamp(ts);
	ck_assert_int_eq(wgt_noise_create_initiation(&a.hs, &init, 1, ts), 0);
	/* The PSK enters only in the response: the initiation is still accepted. */
	ck_assert_int_eq(wgt_noise_consume_initiation(&init, &b.id, lookup_single, &b, NOW, &found), 0);
	ck_assert_int_eq(wgt_noise_create_response(&b.hs, &resp, 2), 0);
	ck_assert_int_eq(wgt_noise_consume_response(&a.hs, &resp), -EBADMSG);
	ck_assert_int_eq(a.hs.state, WGT_HANDSHAKE_CREATED_INITIATION);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

START_TEST(test_rotation)
{
	struct endpoint a, b;
	struct wgt_noise_keypair *ka1, *kb1, *ka2, *kb2, *kb3, *ka3;

	endpoint_pair_init(&a, &b, NULL);
	handshake(&a, &b, NOW, &ka1, &kb1);
	exchange(ka1, kb1, 100, NOW);
	ck_assert(wgt_noise_received_with_keypair(&b.kps, kb1));

	/* Rekey initiated by b this time: b's new keypair is current at once. */
	handshake(&b, &a, NOW + WGT_NSEC_PER_SEC, &kb2, &ka2);
	ck_assert_ptr_eq(b.kps.current, kb2);
	ck_assert_ptr_eq(b.kps.previous, kb1);
	ck_assert_ptr_eq(a.kps.current, ka1);
	ck_assert_ptr_eq(a.kps.next, ka2);
	/* Old keys keep working in both directions until the switch. */
	exchange(ka1, kb1, 100, NOW);
	exchange(kb2, ka2, 100, NOW);
	ck_assert(wgt_noise_received_with_keypair(&a.kps, ka2));
	ck_assert_ptr_eq(a.kps.current, ka2);
	ck_assert_ptr_eq(a.kps.previous, ka1);
	exchange(ka2, kb2, 100, NOW);

	/* A third handshake retires the oldest keypair on both sides. */
	handshake(&a, &b, NOW + 2 * WGT_NSEC_PER_SEC, &ka3, &kb3);
	ck_assert_ptr_eq(a.kps.current, ka3);
	ck_assert_ptr_eq(a.kps.previous, ka2);
	ck_assert_ptr_eq(b.kps.next, kb3);
	ck_assert_ptr_null(b.kps.previous);
	ck_assert_ptr_eq(b.kps.current, kb2);
	exchange(ka3, kb3, 10, NOW);
	ck_assert(wgt_noise_received_with_keypair(&b.kps, kb3));
	ck_assert_ptr_eq(b.kps.previous, kb2);

	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

START_TEST(test_replay_and_window)
{
	struct endpoint a, b;
	struct wgt_noise_keypair *ka, *kb;
	static uint8_t pkts[8200][64];
	size_t lens[8200], plen;
	uint8_t copy[64];

	endpoint_pair_init(&a, &b, NULL);
	handshake(&a, &b, NOW, &ka, &kb);
	for (int k = 0; k < 8200; k++)
		ck_assert_int_eq(wgt_transport_encrypt(aead, ka, pkts[k], 16, sizeof(pkts[k]), 0, NOW,
						       &lens[k]), 0);
	/* A replay of an accepted packet is authentic but refused. */
	memcpy(copy, pkts[0], sizeof(copy));
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, pkts[0], lens[0], NOW, &plen), 0);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, copy, lens[0], NOW, &plen), -ESTALE);
	/*
	 * Jump to the newest; as in the kernel, a counter up to 8128 behind
	 * the highest accepted one is inside the window, one more is not.
	 */
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, pkts[8199], lens[8199], NOW, &plen), 0);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, pkts[8199 - WGT_REPLAY_WINDOW - 1],
					       lens[0], NOW, &plen), -ESTALE);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, pkts[8199 - WGT_REPLAY_WINDOW], lens[0],
					       NOW, &plen), 0);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, pkts[1], lens[1], NOW, &plen), -ESTALE);
	/* Reordered inside the window: fine, once. */
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, pkts[8100], lens[0], NOW, &plen), 0);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

START_TEST(test_stale_timestamp_and_flood)
{
	struct endpoint a, b;
	struct wgt_msg_initiation old_init, new_init, again;
	struct wgt_noise_handshake *found;
	uint8_t ts_old[WGT_TIMESTAMP_LEN], ts_new[WGT_TIMESTAMP_LEN];

	endpoint_pair_init(&a, &b, NULL);
	test_timestamp(ts_old);
	test_timestamp(ts_new);
	ck_assert_int_eq(wgt_noise_create_initiation(&a.hs, &old_init, 1, ts_old), 0);
	ck_assert_int_eq(wgt_noise_create_initiation(&a.hs, &new_init, 2, ts_new), 0);
	ck_assert_int_eq(wgt_noise_consume_initiation(&new_init, &b.id, lookup_single, &b, NOW,
						      &found), 0);
	/* A captured initiation replayed later, or an older one: refused. */
	ck_assert_int_eq(wgt_noise_consume_initiation(&new_init, &b.id, lookup_single, &b,
						      NOW + WGT_NSEC_PER_SEC, &found), -ESTALE);
	ck_assert_int_eq(wgt_noise_consume_initiation(&old_init, &b.id, lookup_single, &b,
						      NOW + WGT_NSEC_PER_SEC, &found), -ESTALE);
	/* A genuinely newer one inside 1/50 s of the last: a flood. */
	test_timestamp(ts_new);
	ck_assert_int_eq(wgt_noise_create_initiation(&a.hs, &again, 3, ts_new), 0);
	ck_assert_int_eq(wgt_noise_consume_initiation(&again, &b.id, lookup_single, &b,
						      NOW + WGT_NSEC_PER_SEC / 100, &found), -EBUSY);
	ck_assert_int_eq(wgt_noise_consume_initiation(&again, &b.id, lookup_single, &b,
						      NOW + WGT_NSEC_PER_SEC / 10, &found), 0);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

START_TEST(test_wrong_responder_and_unknown_peer)
{
	struct endpoint a, b, c, d;
	struct wgt_msg_initiation init;
	struct wgt_noise_handshake *found = NULL;
	uint8_t ts[WGT_TIMESTAMP_LEN];

	endpoint_pair_init(&a, &b, NULL);
	endpoint_pair_init(&c, &d, NULL);
	test_timestamp(ts);
	ck_assert_int_eq(wgt_noise_create_initiation(&a.hs, &init, 1, ts), 0);
	/* Sent to the wrong responder: the static key does not decrypt. */
	ck_assert_int_eq(wgt_noise_consume_initiation(&init, &d.id, lookup_single, &d, NOW, &found),
			 -EBADMSG);
	/* Right responder, but it does not know the initiator. */
	memset(b.hs.remote_static, 0xee, WGT_KEY_LEN);
	ck_assert_int_eq(wgt_noise_consume_initiation(&init, &b.id, lookup_single, &b, NOW, &found),
			 -ENOKEY);
	ck_assert_ptr_null(found);
	/* A corrupted timestamp ciphertext. */
	memcpy(b.hs.remote_static, a.id.static_public, WGT_KEY_LEN);
	init.encrypted_timestamp[3] ^= 0x80;
	ck_assert_int_eq(wgt_noise_consume_initiation(&init, &b.id, lookup_single, &b, NOW, &found),
			 -EBADMSG);
	ck_assert_int_eq(b.hs.state, WGT_HANDSHAKE_ZEROED);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
	endpoint_destroy(&c);
	endpoint_destroy(&d);
}
END_TEST

START_TEST(test_response_checks)
{
	struct endpoint a, b;
	struct wgt_msg_initiation init;
	struct wgt_msg_response resp, bad;
	struct wgt_noise_handshake *found;
	struct wgt_noise_keypair *ka, *kb;
	uint8_t ts[WGT_TIMESTAMP_LEN];

	endpoint_pair_init(&a, &b, NULL);
	test_timestamp(ts);
	ck_assert_int_eq(wgt_noise_create_initiation(&a.hs, &init, 77, ts), 0);
	ck_assert_int_eq(wgt_noise_consume_initiation(&init, &b.id, lookup_single, &b, NOW, &found), 0);
	/* A response before any is due. */
	ck_assert_int_eq(wgt_noise_create_response(&a.hs, &resp, 5), -EINVAL);
	ck_assert_int_eq(wgt_noise_create_response(&b.hs, &resp, 88), 0);
	ck_assert_uint_eq(le32toh(resp.receiver_index), 77);

	bad = resp;
	bad.receiver_index = htole32(78);
	ck_assert_int_eq(wgt_noise_consume_response(&a.hs, &bad), -EINVAL);
	bad = resp;
	bad.encrypted_nothing[0] ^= 1;
	ck_assert_int_eq(wgt_noise_consume_response(&a.hs, &bad), -EBADMSG);
	bad = resp;
	bad.unencrypted_ephemeral[5] ^= 1;
	ck_assert_int_ne(wgt_noise_consume_response(&a.hs, &bad), 0);
	/* The forgeries left the pending handshake intact. */
	ck_assert_int_eq(wgt_noise_consume_response(&a.hs, &resp), 0);
	ck_assert_int_eq(wgt_noise_consume_response(&a.hs, &resp), -EINVAL);
	ck_assert_int_eq(wgt_noise_begin_session(&a.hs, &a.kps, NOW, &ka), 0);
	ck_assert_int_eq(wgt_noise_begin_session(&b.hs, &b.kps, NOW, &kb), 0);
	ck_assert_int_eq(wgt_noise_begin_session(&b.hs, &b.kps, NOW, &kb), -EINVAL);
	exchange(ka, kb, 33, NOW);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

START_TEST(test_low_order_peer_key)
{
	struct endpoint a, b;
	struct wgt_noise_handshake hs;
	struct wgt_msg_initiation init;
	uint8_t zero[WGT_KEY_LEN] = { 0 }, ts[WGT_TIMESTAMP_LEN];

	endpoint_pair_init(&a, &b, NULL);
	ck_assert_int_eq(wgt_noise_handshake_init(&hs, &a.id, zero, NULL), -EINVAL);
	test_timestamp(ts);
	ck_assert_int_eq(wgt_noise_create_initiation(&hs, &init, 1, ts), -ENOKEY);
	ck_assert_int_eq(hs.state, WGT_HANDSHAKE_ZEROED);
	wgt_noise_handshake_destroy(&hs);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

START_TEST(test_keypair_expiry)
{
	struct endpoint a, b;
	struct wgt_noise_keypair *ka, *kb;
	uint8_t buf[128];
	size_t len, plen;

	endpoint_pair_init(&a, &b, NULL);
	handshake(&a, &b, NOW, &ka, &kb);
	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 8, sizeof(buf), 0,
					       NOW + WGT_REJECT_AFTER_TIME - 1, &len), 0);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kb, buf, len, NOW + WGT_REJECT_AFTER_TIME,
					       &plen), -EKEYEXPIRED);
	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 8, sizeof(buf), 0,
					       NOW + WGT_REJECT_AFTER_TIME, &len), -EKEYEXPIRED);
	wgt_noise_keypairs_expire_current(&a.kps);
	ck_assert_int_eq(wgt_transport_encrypt(aead, ka, buf, 8, sizeof(buf), 0, NOW, &len),
			 -EKEYEXPIRED);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

static int retired;

static void count_retire(struct wgt_noise_keypair *kp, void *arg)
{
	retired++;
	wgt_noise_keypair_free(kp);
}

START_TEST(test_retire_hook)
{
	struct endpoint a, b;
	struct wgt_noise_keypair *ka, *kb;

	endpoint_pair_init(&a, &b, NULL);
	a.kps.retire = count_retire;
	retired = 0;
	for (int k = 0; k < 5; k++)
		handshake(&a, &b, NOW + (uint64_t)k * WGT_NSEC_PER_SEC, &ka, &kb);
	/* Five keypairs on the initiator: current and previous live, three retired. */
	ck_assert_int_eq(retired, 3);
	wgt_noise_keypairs_clear(&a.kps);
	ck_assert_int_eq(retired, 5);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

static Suite *noise_suite(void)
{
	Suite *s = suite_create("noise");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_handshake_no_psk);
	tcase_add_test(tc, test_handshake_psk);
	tcase_add_test(tc, test_psk_mismatch);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_replay_and_window);
	tcase_add_test(tc, test_stale_timestamp_and_flood);
	tcase_add_test(tc, test_wrong_responder_and_unknown_peer);
	tcase_add_test(tc, test_response_checks);
	tcase_add_test(tc, test_low_order_peer_key);
	tcase_add_test(tc, test_keypair_expiry);
	tcase_add_test(tc, test_retire_hook);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(noise_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
