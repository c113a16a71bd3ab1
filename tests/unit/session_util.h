/* SPDX-License-Identifier: MIT */
/* Test helpers: two in-process WireGuard endpoints that handshake with each other. */
#ifndef WGT_TESTS_SESSION_UTIL_H
#define WGT_TESTS_SESSION_UTIL_H

#include <check.h>
#include <string.h>

#include "crypto/cookie.h"
#include "crypto/noise.h"
#include "crypto/tai64n.h"
#include "crypto/x25519.h"

/* One side of a test pair: its identity, its view of the other peer, its keypairs. */
struct endpoint {
	struct wgt_noise_identity id;
	struct wgt_noise_handshake hs;
	struct wgt_noise_keypairs kps;
	struct wgt_cookie_checker checker;
	struct wgt_cookie_maker maker;
	uint32_t next_index;
};

static inline struct wgt_noise_handshake *lookup_single(void *arg, const uint8_t pub[WGT_KEY_LEN])
{
	struct endpoint *e = arg;

	return memcmp(pub, e->hs.remote_static, WGT_KEY_LEN) ? NULL : &e->hs;
}

static inline void endpoint_pair_init(struct endpoint *a, struct endpoint *b, const uint8_t *psk)
{
	uint8_t priv[WGT_KEY_LEN], pub[WGT_KEY_LEN];

	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	ck_assert_int_eq(wgt_x25519_generate(priv, pub), 0);
	ck_assert_int_eq(wgt_noise_identity_set(&a->id, priv), 0);
	ck_assert_int_eq(wgt_x25519_generate(priv, pub), 0);
	ck_assert_int_eq(wgt_noise_identity_set(&b->id, priv), 0);
	ck_assert_int_eq(wgt_noise_handshake_init(&a->hs, &a->id, b->id.static_public, psk), 0);
	ck_assert_int_eq(wgt_noise_handshake_init(&b->hs, &b->id, a->id.static_public, psk), 0);
	wgt_noise_keypairs_init(&a->kps);
	wgt_noise_keypairs_init(&b->kps);
	ck_assert_int_eq(wgt_cookie_checker_init(&a->checker, a->id.static_public), 0);
	ck_assert_int_eq(wgt_cookie_checker_init(&b->checker, b->id.static_public), 0);
	ck_assert_int_eq(wgt_cookie_maker_init(&a->maker, b->id.static_public), 0);
	ck_assert_int_eq(wgt_cookie_maker_init(&b->maker, a->id.static_public), 0);
	a->next_index = 0x1000;
	b->next_index = 0x2000;
}

static inline void endpoint_destroy(struct endpoint *e)
{
	wgt_noise_keypairs_clear(&e->kps);
	wgt_noise_handshake_destroy(&e->hs);
	wgt_noise_identity_clear(&e->id);
}

/* Strictly increasing TAI64N timestamps, one second apart, for repeated handshakes. */
static inline void test_timestamp(uint8_t ts[WGT_TIMESTAMP_LEN])
{
	static time_t clock_sec = 1700000000;
	struct timespec t = { .tv_sec = clock_sec++ };

	wgt_tai64n_encode(ts, &t);
}

/* A full handshake initiated by `i`; returns both new keypairs. */
static inline void handshake(struct endpoint *i, struct endpoint *r, uint64_t now,
			     struct wgt_noise_keypair **ret_i, struct wgt_noise_keypair **ret_r)
{
	struct wgt_msg_initiation init;
	struct wgt_msg_response resp;
	struct wgt_noise_handshake *found = NULL;
	uint8_t ts[WGT_TIMESTAMP_LEN];

	test_timestamp(ts);
	ck_assert_int_eq(wgt_noise_create_initiation(&i->hs, &init, i->next_index++, ts), 0);
	ck_assert_int_eq(wgt_cookie_add_macs(&i->maker, (uint8_t *)&init, sizeof(init), now), 0);
	ck_assert_int_eq(wgt_cookie_validate(&r->checker, (uint8_t *)&init, sizeof(init), NULL,
					     false, now),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	ck_assert_int_eq(wgt_noise_consume_initiation(&init, &r->id, lookup_single, r, now, &found), 0);
	ck_assert_ptr_eq(found, &r->hs);
	ck_assert_int_eq(wgt_noise_create_response(&r->hs, &resp, r->next_index++), 0);
	ck_assert_int_eq(wgt_cookie_add_macs(&r->maker, (uint8_t *)&resp, sizeof(resp), now), 0);
	ck_assert_int_eq(wgt_cookie_validate(&i->checker, (uint8_t *)&resp, sizeof(resp), NULL,
					     false, now),
			 WGT_COOKIE_VALID_MAC_NO_COOKIE);
	ck_assert_int_eq(wgt_noise_consume_response(&i->hs, &resp), 0);
	ck_assert_int_eq(wgt_noise_begin_session(&i->hs, &i->kps, now, ret_i), 0);
	ck_assert_int_eq(wgt_noise_begin_session(&r->hs, &r->kps, now, ret_r), 0);
}

#endif
