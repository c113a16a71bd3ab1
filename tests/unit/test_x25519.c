/* SPDX-License-Identifier: MIT */
/* X25519: RFC 7748 vectors, iterated vectors, low-order rejection, key generation and clamping. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/x25519.h"
#include "hex.h"

static void assert_hex(const uint8_t *got, const char *hex)
{
	uint8_t want[32];

	unhex(want, hex, sizeof(want));
	ck_assert_mem_eq(got, want, sizeof(want));
}

static void assert_zero(const uint8_t *p)
{
	static const uint8_t zero[32];

	ck_assert_mem_eq(p, zero, sizeof(zero));
}

/* RFC 7748 section 5.2: scalar, input u-coordinate, output u-coordinate. */
static const struct {
	const char *scalar, *u, *out;
} rfc7748_5_2[] = {
	{ "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
	  "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
	  "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
	{ "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
	  "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
	  "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
};

START_TEST(test_rfc7748_vectors)
{
	uint8_t k[32], u[32], out[32];

	unhex(k, rfc7748_5_2[_i].scalar, 32);
	unhex(u, rfc7748_5_2[_i].u, 32);
	ck_assert_int_eq(wgt_x25519(out, k, u), 0);
	assert_hex(out, rfc7748_5_2[_i].out);
}
END_TEST

/* RFC 7748 section 6.1. */
START_TEST(test_rfc7748_dh)
{
	uint8_t a[32], b[32], apub[32], bpub[32], k1[32], k2[32];

	unhex(a, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", 32);
	unhex(b, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", 32);
	ck_assert_int_eq(wgt_x25519_public(apub, a), 0);
	assert_hex(apub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	ck_assert_int_eq(wgt_x25519_public(bpub, b), 0);
	assert_hex(bpub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
	ck_assert_int_eq(wgt_x25519(k1, a, bpub), 0);
	ck_assert_int_eq(wgt_x25519(k2, b, apub), 0);
	assert_hex(k1, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	assert_hex(k2, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}
END_TEST

/* RFC 7748 section 5.2 iterated test: k = u = 9; k' = X25519(k, u); u = k; k = k'. */
START_TEST(test_rfc7748_iterated)
{
	uint8_t k[32] = { 9 }, u[32] = { 9 }, next[32];

	for (int i = 1; i <= 1000; i++) {
		ck_assert_int_eq(wgt_x25519(next, k, u), 0);
		memcpy(u, k, 32);
		memcpy(k, next, 32);
		if (i == 1)
			assert_hex(k, "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
	}
	assert_hex(k, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}
END_TEST

/*
 * Public keys of small order give an all-zero shared secret for every
 * clamped scalar: u = 0, u = 1 (order 4), an order-8 point, and p itself
 * (which reduces to 0).
 */
static const char *const low_order[] = {
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

START_TEST(test_low_order_rejected)
{
	uint8_t priv[32], pub[32], out[32];

	unhex(priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", 32);
	unhex(pub, low_order[_i], 32);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(wgt_x25519(out, priv, pub), -EINVAL);
	assert_zero(out);

	/* Same with a fresh key: the rejection does not depend on the scalar. */
	ck_assert_int_eq(wgt_x25519_generate(priv, out), 0);
	memset(out, 0xaa, sizeof(out));
	ck_assert_int_eq(wgt_x25519(out, priv, pub), -EINVAL);
	assert_zero(out);
}
END_TEST

START_TEST(test_generate_round_trip)
{
	uint8_t a[32], apub[32], b[32], bpub[32], pub[32], k1[32], k2[32];

	ck_assert_int_eq(wgt_x25519_generate(a, apub), 0);
	ck_assert_int_eq(wgt_x25519_generate(b, bpub), 0);
	ck_assert_mem_ne(a, b, 32);

	/* Generated keys come out clamped. */
	ck_assert_uint_eq(a[0] & 7, 0);
	ck_assert_uint_eq(a[31] & 0xc0, 0x40);

	ck_assert_int_eq(wgt_x25519_public(pub, a), 0);
	ck_assert_mem_eq(pub, apub, 32);
	ck_assert_int_eq(wgt_x25519(k1, a, bpub), 0);
	ck_assert_int_eq(wgt_x25519(k2, b, apub), 0);
	ck_assert_mem_eq(k1, k2, 32);
}
END_TEST

START_TEST(test_clamp)
{
	uint8_t k[32], c[32], pub1[32], pub2[32];

	memset(k, 0xff, sizeof(k));
	wgt_x25519_clamp(k);
	assert_hex(k, "f8ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
	memset(k, 0, sizeof(k));
	wgt_x25519_clamp(k);
	assert_hex(k, "0000000000000000000000000000000000000000000000000000000000000040");

	/* X25519 clamps internally, so clamping first does not change the public key. */
	unhex(k, "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d", 32);
	memcpy(c, k, 32);
	wgt_x25519_clamp(c);
	ck_assert_mem_ne(c, k, 32);
	ck_assert_int_eq(wgt_x25519_public(pub1, k), 0);
	ck_assert_int_eq(wgt_x25519_public(pub2, c), 0);
	ck_assert_mem_eq(pub1, pub2, 32);
}
END_TEST

static Suite *x25519_suite(void)
{
	Suite *s = suite_create("x25519");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_rfc7748_vectors, 0,
			    (int)(sizeof(rfc7748_5_2) / sizeof(rfc7748_5_2[0])));
	tcase_add_test(tc, test_rfc7748_dh);
	tcase_add_test(tc, test_rfc7748_iterated);
	tcase_add_loop_test(tc, test_low_order_rejected, 0,
			    (int)(sizeof(low_order) / sizeof(low_order[0])));
	tcase_add_test(tc, test_generate_round_trip);
	tcase_add_test(tc, test_clamp);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(x25519_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
