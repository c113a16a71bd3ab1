/* SPDX-License-Identifier: MIT */
/* perf/simpeer: seeded keys, and a simulated peer's handshake (cookie replies included) and data against the core as responder. */
#include <arpa/inet.h>
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "crypto/cookie.h"
#include "crypto/noise.h"
#include "crypto/transport.h"
#include "crypto/x25519.h"
#include "perf/simpeer.h"

#define NOW (7000 * WGT_NSEC_PER_SEC)

/* The gateway's side, straight on the core. */
struct responder {
	struct wgt_noise_identity id;
	struct wgt_noise_handshake hs;
	struct wgt_noise_keypairs kps;
	struct wgt_cookie_checker checker;
	struct wgt_cookie_maker maker;
};

static struct wgt_noise_handshake *lookup(void *arg, const uint8_t pub[WGT_KEY_LEN])
{
	struct responder *r = arg;

	return memcmp(pub, r->hs.remote_static, WGT_KEY_LEN) ? NULL : &r->hs;
}

/* A simpeer (peer 3 of seed 9) and a responder that knows it. */
static void pair_init(struct wgt_simpeer *sp, struct responder *r)
{
	uint8_t priv[WGT_KEY_LEN], pub[WGT_KEY_LEN];

	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(wgt_x25519_generate(priv, pub), 0);
	ck_assert_int_eq(wgt_noise_identity_set(&r->id, priv), 0);
	ck_assert_int_eq(wgt_simpeer_derive_key(priv, 9, 3), 0);
	ck_assert_int_eq(wgt_simpeer_init(sp, priv, r->id.static_public, NULL), 0);
	ck_assert_int_eq(wgt_noise_handshake_init(&r->hs, &r->id, sp->identity.static_public, NULL), 0);
	wgt_noise_keypairs_init(&r->kps);
	ck_assert_int_eq(wgt_cookie_checker_init(&r->checker, r->id.static_public), 0);
	ck_assert_int_eq(wgt_cookie_maker_init(&r->maker, sp->identity.static_public), 0);
}

static void pair_destroy(struct wgt_simpeer *sp, struct responder *r)
{
	wgt_simpeer_destroy(sp);
	wgt_noise_keypairs_clear(&r->kps);
	wgt_noise_handshake_destroy(&r->hs);
	wgt_noise_identity_clear(&r->id);
}

/* The responder consumes an initiation and answers it; returns its new keypair. */
static struct wgt_noise_keypair *respond(struct responder *r, const struct wgt_msg_initiation *init,
					 struct wgt_msg_response *resp, uint32_t index, uint64_t now)
{
	struct wgt_noise_handshake *hs = NULL;
	struct wgt_noise_keypair *kp = NULL;

	ck_assert_int_eq(wgt_noise_consume_initiation(init, &r->id, lookup, r, now, &hs), 0);
	ck_assert_ptr_eq(hs, &r->hs);
	ck_assert_int_eq(wgt_noise_create_response(hs, resp, index), 0);
	ck_assert_int_eq(wgt_cookie_add_macs(&r->maker, (uint8_t *)resp, sizeof(*resp), now), 0);
	ck_assert_int_eq(wgt_noise_begin_session(hs, &r->kps, now, &kp), 0);
	return kp;
}

START_TEST(test_derive_key)
{
	uint8_t a[WGT_KEY_LEN], b[WGT_KEY_LEN], c[WGT_KEY_LEN], d[WGT_KEY_LEN];

	ck_assert_int_eq(wgt_simpeer_derive_key(a, 1, 0), 0);
	ck_assert_int_eq(wgt_simpeer_derive_key(b, 1, 0), 0);
	ck_assert_int_eq(wgt_simpeer_derive_key(c, 1, 1), 0);
	ck_assert_int_eq(wgt_simpeer_derive_key(d, 2, 0), 0);
	ck_assert_mem_eq(a, b, WGT_KEY_LEN);
	ck_assert(memcmp(a, c, WGT_KEY_LEN) != 0);
	ck_assert(memcmp(a, d, WGT_KEY_LEN) != 0);
	/* Clamped as X25519 private keys are. */
	ck_assert_uint_eq(a[0] & 7, 0);
	ck_assert_uint_eq(a[31] & 0x80, 0);
	ck_assert_uint_eq(a[31] & 0x40, 0x40);
}
END_TEST

/* Handshake under load: a cookie reply, the initiation again with mac2, then data both ways. */
START_TEST(test_handshake_cookie_data)
{
	struct wgt_simpeer sp;
	struct responder r;
	struct wgt_msg_initiation init;
	struct wgt_msg_response resp;
	struct wgt_msg_cookie cookie;
	struct wgt_noise_keypair *kp_i = NULL, *kp_r;
	struct wgt_aead *aead = wgt_aead_new();
	union wgt_sockaddr src = { .in4 = { .sin_family = AF_INET, .sin_port = htons(40000) } };
	uint8_t buf[256], copy[256];
	uint32_t index = 0;
	size_t len, plen;

	ck_assert_ptr_nonnull(aead);
	src.in4.sin_addr.s_addr = htonl(0x0ac80001);
	pair_init(&sp, &r);

	/* No session yet: nothing to seal. */
	ck_assert_int_eq(wgt_simpeer_seal(&sp, aead, buf, 0, sizeof(buf), NOW, &len), -EKEYEXPIRED);

	ck_assert_int_eq(wgt_simpeer_initiation(&sp, &init, 0x00100005, NOW), 0);
	ck_assert_int_eq(wgt_cookie_validate(&r.checker, (uint8_t *)&init, sizeof(init), &src, true, NOW),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	ck_assert_int_eq(wgt_cookie_create_reply(&r.checker, &cookie, (uint8_t *)&init, sizeof(init),
						 &src, NOW),
			 0);
	ck_assert(wgt_simpeer_index_of((uint8_t *)&cookie, sizeof(cookie), &index));
	ck_assert_uint_eq(index, 0x00100005);
	ck_assert_int_eq(wgt_simpeer_consume_cookie(&sp, &cookie, NOW), 0);

	/* The next initiation carries mac2 and passes the check under load. */
	ck_assert_int_eq(wgt_simpeer_initiation(&sp, &init, 0x00200005, NOW), 0);
	ck_assert_int_eq(wgt_cookie_validate(&r.checker, (uint8_t *)&init, sizeof(init), &src, true, NOW),
			 WGT_COOKIE_VALID_MAC_WITH_COOKIE);
	kp_r = respond(&r, &init, &resp, 0x77, NOW);

	/* A response for the earlier index, then a forged one, are refused. */
	resp.receiver_index = htole32(0x00100005);
	ck_assert_int_eq(wgt_simpeer_consume_response(&sp, &resp, NOW, &kp_i), -EINVAL);
	resp.receiver_index = htole32(0x00200005);
	resp.macs.mac1[0] ^= 1;
	ck_assert_int_eq(wgt_simpeer_consume_response(&sp, &resp, NOW, &kp_i), -EBADMSG);
	resp.macs.mac1[0] ^= 1;
	ck_assert(wgt_simpeer_index_of((uint8_t *)&resp, sizeof(resp), &index));
	ck_assert_uint_eq(index, 0x00200005);
	ck_assert_int_eq(wgt_simpeer_consume_response(&sp, &resp, NOW, &kp_i), 0);
	ck_assert_ptr_eq(wgt_simpeer_sending_keypair(&sp, NOW), kp_i);
	ck_assert_uint_eq(kp_i->local_index, 0x00200005);
	ck_assert_uint_eq(kp_i->remote_index, 0x77);

	/* Peer -> gateway: 20 bytes sealed, opened by the responder's pending keypair. */
	memset(buf + WGT_MSG_DATA_HEADER_LEN, 0xab, 20);
	ck_assert_int_eq(wgt_simpeer_seal(&sp, aead, buf, 20, sizeof(buf), NOW, &len), 0);
	ck_assert_uint_eq(len, WGT_MSG_DATA_HEADER_LEN + 32 + WGT_AEAD_TAG_LEN);
	ck_assert_int_eq(wgt_transport_decrypt(aead, kp_r, buf, len, NOW, &plen), 0);
	ck_assert_uint_eq(plen, 32);
	ck_assert_uint_eq(buf[WGT_MSG_DATA_HEADER_LEN + 19], 0xab);

	/* Gateway -> peer, then the same message again: a replay. */
	memset(buf + WGT_MSG_DATA_HEADER_LEN, 0xcd, 16);
	ck_assert_int_eq(wgt_transport_encrypt(aead, kp_r, buf, 16, sizeof(buf), 0, NOW, &len), 0);
	memcpy(copy, buf, len);
	ck_assert_int_eq(wgt_simpeer_open(&sp, aead, buf, len, NOW, &plen, &kp_i), 0);
	ck_assert_uint_eq(plen, 16);
	ck_assert_uint_eq(buf[WGT_MSG_DATA_HEADER_LEN + 15], 0xcd);
	ck_assert_int_eq(wgt_simpeer_open(&sp, aead, copy, len, NOW, &plen, &kp_i), -ESTALE);

	/* A restart forgets the session. */
	wgt_simpeer_reset(&sp);
	ck_assert_ptr_null(wgt_simpeer_sending_keypair(&sp, NOW));
	ck_assert_int_eq(wgt_transport_encrypt(aead, kp_r, buf, 0, sizeof(buf), 0, NOW, &len), 0);
	ck_assert_int_eq(wgt_simpeer_open(&sp, aead, buf, len, NOW, &plen, &kp_i), -ENOKEY);

	wgt_aead_free(aead);
	pair_destroy(&sp, &r);
}
END_TEST

/* Initiations within one TAI64N tick (~16.8 ms) are all consumed: no -ESTALE. */
START_TEST(test_timestamps_increase)
{
	struct wgt_simpeer sp;
	struct responder r;
	struct wgt_msg_initiation init;
	struct wgt_msg_response resp;
	int i;

	pair_init(&sp, &r);
	for (i = 0; i < 5; i++) {
		ck_assert_int_eq(wgt_simpeer_initiation(&sp, &init, 0x100 + (uint32_t)i,
							NOW + (uint64_t)i * WGT_NSEC_PER_SEC),
				 0);
		/* A second apart: the responder's flood guard stays out of it. */
		respond(&r, &init, &resp, 0x200 + (uint32_t)i, NOW + (uint64_t)i * WGT_NSEC_PER_SEC);
		wgt_noise_keypairs_clear(&r.kps);
	}
	pair_destroy(&sp, &r);
}
END_TEST

START_TEST(test_index_of)
{
	uint8_t msg[WGT_MSG_INITIATION_LEN] = { WGT_MSG_HANDSHAKE_INITIATION };
	uint32_t index;

	ck_assert(!wgt_simpeer_index_of(msg, sizeof(msg), &index));
	memset(msg, 0, sizeof(msg));
	msg[0] = WGT_MSG_DATA;
	msg[4] = 0x34;
	msg[5] = 0x12;
	ck_assert(wgt_simpeer_index_of(msg, WGT_MSG_DATA_MIN_LEN, &index));
	ck_assert_uint_eq(index, 0x1234);
	ck_assert(!wgt_simpeer_index_of(msg, WGT_MSG_DATA_MIN_LEN - 1, &index));
}
END_TEST

static Suite *simpeer_suite(void)
{
	Suite *s = suite_create("simpeer");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_derive_key);
	tcase_add_test(tc, test_handshake_cookie_data);
	tcase_add_test(tc, test_timestamps_increase);
	tcase_add_test(tc, test_index_of);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (wgt_crypto_init())
		return 1;
	sr = srunner_create(simpeer_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
