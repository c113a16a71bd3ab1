/* SPDX-License-Identifier: MIT */
/* MAC1/MAC2 and cookie replies, alone and inside a handshake under load. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cookie.h"
#include "crypto/noise.h"
#include "session_util.h"

#define NOW (5000 * WGT_NSEC_PER_SEC)

static union wgt_sockaddr addr4(const char *ip, uint16_t port)
{
	union wgt_sockaddr a;

	memset(&a, 0, sizeof(a));
	a.in4.sin_family = AF_INET;
	a.in4.sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a.in4.sin_addr), 1);
	return a;
}

static union wgt_sockaddr addr6(const char *ip, uint16_t port)
{
	union wgt_sockaddr a;

	memset(&a, 0, sizeof(a));
	a.in6.sin6_family = AF_INET6;
	a.in6.sin6_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.in6.sin6_addr), 1);
	return a;
}

/* A signed initiation from a to b. */
static void signed_initiation(struct endpoint *a, struct wgt_msg_initiation *init, uint64_t now)
{
	uint8_t ts[WGT_TIMESTAMP_LEN];

	test_timestamp(ts);
	ck_assert_int_eq(wgt_noise_create_initiation(&a->hs, init, a->next_index++, ts), 0);
	ck_assert_int_eq(wgt_cookie_add_macs(&a->maker, (uint8_t *)init, sizeof(*init), now), 0);
}

START_TEST(test_mac1)
{
	struct endpoint a, b, c, d;
	struct wgt_msg_initiation init;
	union wgt_sockaddr src = addr4("192.0.2.1", 51820);

	endpoint_pair_init(&a, &b, NULL);
	endpoint_pair_init(&c, &d, NULL);
	signed_initiation(&a, &init, NOW);
	ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init), &src,
					     false, NOW),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	/* mac1 is keyed by the receiver's public key: another device rejects it. */
	ck_assert_int_eq(wgt_cookie_validate(&d.checker, (uint8_t *)&init, sizeof(init), &src,
					     false, NOW),
			 WGT_COOKIE_INVALID_MAC);
	/* Any flipped byte before mac1 breaks it, and so does one inside it. */
	for (size_t k = 0; k < offsetof(struct wgt_msg_initiation, macs.mac2); k += 7) {
		((uint8_t *)&init)[k] ^= 0x40;
		ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init),
						     &src, false, NOW),
				 WGT_COOKIE_INVALID_MAC);
		((uint8_t *)&init)[k] ^= 0x40;
	}
	/* Wrong lengths never validate. */
	ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init) - 1, &src,
					     false, NOW),
			 WGT_COOKIE_INVALID_MAC);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
	endpoint_destroy(&c);
	endpoint_destroy(&d);
}
END_TEST

/* Under load: no mac2 -> cookie reply -> mac2 -> accepted; bound to IP and port; expires. */
static void run_cookie_flow(union wgt_sockaddr src, union wgt_sockaddr other)
{
	struct endpoint a, b;
	struct wgt_msg_initiation init;
	struct wgt_msg_cookie reply, tampered;
	struct wgt_noise_handshake *found;
	struct wgt_msg_response resp;
	struct wgt_noise_keypair *ka, *kb;

	endpoint_pair_init(&a, &b, NULL);
	signed_initiation(&a, &init, NOW);
	ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init), &src,
					     true, NOW),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	ck_assert_int_eq(wgt_cookie_create_reply(&b.checker, &reply, (uint8_t *)&init,
						 sizeof(init), &src, NOW), 0);
	ck_assert_uint_eq(reply.receiver_index, init.sender_index);
	ck_assert_uint_eq(wgt_msg_classify((uint8_t *)&reply, sizeof(reply)),
			  WGT_MSG_HANDSHAKE_COOKIE);

	tampered = reply;
	tampered.encrypted_cookie[2] ^= 1;
	ck_assert_int_eq(wgt_cookie_consume_reply(&a.maker, &tampered, NOW), -EBADMSG);
	ck_assert_int_eq(wgt_cookie_consume_reply(&a.maker, &reply, NOW), 0);
	/* The same reply again answers nothing we sent since. */
	ck_assert_int_eq(wgt_cookie_consume_reply(&a.maker, &reply, NOW), -EINVAL);

	/* The retry carries mac2 and passes, then completes the handshake. */
	signed_initiation(&a, &init, NOW + WGT_NSEC_PER_SEC);
	ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init), &src,
					     true, NOW + WGT_NSEC_PER_SEC),
			 WGT_COOKIE_VALID_MAC_WITH_COOKIE);
	/* From another address or port the cookie is worthless. */
	ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init), &other,
					     true, NOW + WGT_NSEC_PER_SEC),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	ck_assert_int_eq(wgt_noise_consume_initiation(&init, &b.id, lookup_single, &b,
						      NOW + WGT_NSEC_PER_SEC, &found), 0);
	ck_assert_int_eq(wgt_noise_create_response(&b.hs, &resp, 9), 0);
	ck_assert_int_eq(wgt_cookie_add_macs(&b.maker, (uint8_t *)&resp, sizeof(resp), NOW), 0);
	ck_assert_int_eq(wgt_cookie_validate(&a.checker, (uint8_t *)&resp, sizeof(resp), &src,
					     false, NOW),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	ck_assert_int_eq(wgt_noise_consume_response(&a.hs, &resp), 0);
	ck_assert_int_eq(wgt_noise_begin_session(&a.hs, &a.kps, NOW, &ka), 0);
	ck_assert_int_eq(wgt_noise_begin_session(&b.hs, &b.kps, NOW, &kb), 0);

	/* The maker stops using a cookie older than 120 - 5 seconds. */
	signed_initiation(&a, &init, NOW + WGT_COOKIE_SECRET_MAX_AGE - WGT_COOKIE_SECRET_LATENCY);
	for (size_t k = 0; k < WGT_MAC_LEN; k++)
		ck_assert_uint_eq(init.macs.mac2[k], 0);
	/* The checker's secret rotates after 120 s: an old cookie no longer passes. */
	signed_initiation(&a, &init, NOW + WGT_NSEC_PER_SEC);
	ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init), &src,
					     true, NOW + WGT_COOKIE_SECRET_MAX_AGE),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}

START_TEST(test_cookie_flow_v4)
{
	run_cookie_flow(addr4("192.0.2.1", 51820), addr4("192.0.2.1", 51821));
}
END_TEST

START_TEST(test_cookie_flow_v6)
{
	run_cookie_flow(addr6("2001:db8::1", 51820), addr6("2001:db8::2", 51820));
}
END_TEST

START_TEST(test_reply_bound_to_mac1)
{
	struct endpoint a, b;
	struct wgt_msg_initiation first, second;
	struct wgt_msg_cookie reply;
	union wgt_sockaddr src = addr4("198.51.100.7", 1234);

	endpoint_pair_init(&a, &b, NULL);
	signed_initiation(&a, &first, NOW);
	ck_assert_int_eq(wgt_cookie_create_reply(&b.checker, &reply, (uint8_t *)&first,
						 sizeof(first), &src, NOW), 0);
	/* We sent another message since: the reply's AD (the old mac1) no longer matches. */
	signed_initiation(&a, &second, NOW);
	ck_assert_int_eq(wgt_cookie_consume_reply(&a.maker, &reply, NOW), -EBADMSG);
	ck_assert_int_eq(wgt_cookie_create_reply(&b.checker, &reply, (uint8_t *)&second,
						 sizeof(second) - 1, &src, NOW), -EINVAL);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

START_TEST(test_no_identity)
{
	struct wgt_cookie_checker c;
	uint8_t msg[WGT_MSG_INITIATION_LEN] = { 1 };
	union wgt_sockaddr src = addr4("192.0.2.9", 9);

	ck_assert_int_eq(wgt_cookie_checker_init(&c, NULL), 0);
	ck_assert_int_eq(wgt_cookie_validate(&c, msg, sizeof(msg), &src, true, NOW),
			 WGT_COOKIE_INVALID_MAC);
}
END_TEST

/*
 * A published copy (the gateway's workers): replies made from it without
 * touching it pass the original checker, it never makes a secret itself,
 * and refresh renews the original's only when due.
 */
START_TEST(test_read_only_copy)
{
	struct endpoint a, b;
	struct wgt_msg_initiation init;
	struct wgt_msg_cookie reply;
	struct wgt_cookie_checker copy;
	union wgt_sockaddr src = addr4("10.0.0.1", 51820);
	uint8_t secret[WGT_KEY_LEN];

	endpoint_pair_init(&a, &b, NULL);
	signed_initiation(&a, &init, NOW);
	copy = b.checker;
	ck_assert_int_eq(wgt_cookie_create_reply_ro(&copy, &reply, (uint8_t *)&init, sizeof(init),
						    &src, NOW),
			 -ESTALE);
	ck_assert_int_eq(wgt_cookie_checker_refresh(&b.checker, 60 * WGT_NSEC_PER_SEC, NOW), 1);
	ck_assert_int_eq(wgt_cookie_checker_refresh(&b.checker, 60 * WGT_NSEC_PER_SEC,
						    NOW + 59 * WGT_NSEC_PER_SEC),
			 0);
	copy = b.checker;
	memcpy(secret, copy.secret, sizeof(secret));
	ck_assert_int_eq(wgt_cookie_create_reply_ro(&copy, &reply, (uint8_t *)&init, sizeof(init),
						    &src, NOW + WGT_NSEC_PER_SEC),
			 0);
	ck_assert_mem_eq(copy.secret, secret, sizeof(secret));
	ck_assert_int_eq(wgt_cookie_consume_reply(&a.maker, &reply, NOW + WGT_NSEC_PER_SEC), 0);
	signed_initiation(&a, &init, NOW + 2 * WGT_NSEC_PER_SEC);
	ck_assert_int_eq(wgt_cookie_validate(&b.checker, (uint8_t *)&init, sizeof(init), &src, true,
					     NOW + 2 * WGT_NSEC_PER_SEC),
			 WGT_COOKIE_VALID_MAC_WITH_COOKIE);
	ck_assert_int_eq(wgt_cookie_validate(&copy, (uint8_t *)&init, sizeof(init), &src, true,
					     NOW + 2 * WGT_NSEC_PER_SEC),
			 WGT_COOKIE_VALID_MAC_WITH_COOKIE);
	/* Past its age the copy makes no more replies; refresh renews the original. */
	ck_assert_int_eq(wgt_cookie_create_reply_ro(&copy, &reply, (uint8_t *)&init, sizeof(init),
						    &src, NOW + WGT_COOKIE_SECRET_MAX_AGE),
			 -ESTALE);
	ck_assert_int_eq(wgt_cookie_checker_refresh(&b.checker, 60 * WGT_NSEC_PER_SEC,
						    NOW + 61 * WGT_NSEC_PER_SEC),
			 1);
	ck_assert_mem_ne(b.checker.secret, secret, sizeof(secret));
	wgt_cookie_checker_clear(&copy);
	endpoint_destroy(&a);
	endpoint_destroy(&b);
}
END_TEST

static Suite *cookie_suite(void)
{
	Suite *s = suite_create("cookie");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_mac1);
	tcase_add_test(tc, test_cookie_flow_v4);
	tcase_add_test(tc, test_cookie_flow_v6);
	tcase_add_test(tc, test_reply_bound_to_mac1);
	tcase_add_test(tc, test_no_identity);
	tcase_add_test(tc, test_read_only_copy);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cookie_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
