/* SPDX-License-Identifier: MIT */
/* TAI64N: encodings of known times, nanosecond coarsening, ordering. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "crypto/tai64n.h"
#include "hex.h"

static void assert_encoding(time_t sec, long nsec, const char *hex)
{
	struct timespec ts = { .tv_sec = sec, .tv_nsec = nsec };
	uint8_t out[WGT_TAI64N_LEN], want[WGT_TAI64N_LEN];

	unhex(want, hex, WGT_TAI64N_LEN);
	wgt_tai64n_encode(out, &ts);
	ck_assert_mem_eq(out, want, WGT_TAI64N_LEN);
}

START_TEST(test_known_encodings)
{
	assert_encoding(0, 0, "400000000000000a00000000");
	assert_encoding(1, 0, "400000000000000b00000000");
	/* 1700000000 = 0x6553f100; 123456789 ns rounds down to 7 * 2^24 = 0x07000000. */
	assert_encoding(1700000000, 123456789, "400000006553f10a07000000");
	/* The largest nanosecond value: 999999999 -> 59 * 2^24 = 989855744 = 0x3b000000. */
	assert_encoding(1700000000, 999999999, "400000006553f10a3b000000");
	/* The rounding boundary, 2^24 ns. */
	assert_encoding(0, 16777215, "400000000000000a00000000");
	assert_encoding(0, 16777216, "400000000000000a01000000");
	/* Beyond 2^32 seconds, so the top half of the seconds field is used. */
	assert_encoding(0x123456789LL, 0, "400000012345679300000000");
	/* Before 1970 lands just below the base. */
	assert_encoding(-1, 0, "400000000000000900000000");
}
END_TEST

START_TEST(test_after)
{
	struct timespec a = { .tv_sec = 100, .tv_nsec = 0 }, b = a;
	uint8_t ea[WGT_TAI64N_LEN], eb[WGT_TAI64N_LEN];

	wgt_tai64n_encode(ea, &a);
	wgt_tai64n_encode(eb, &b);
	ck_assert(!wgt_tai64n_after(ea, eb));
	ck_assert(!wgt_tai64n_after(eb, ea));

	/* Within one 2^24 ns bucket the encodings are equal: a replay, not "after". */
	b.tv_nsec = 16777215;
	wgt_tai64n_encode(eb, &b);
	ck_assert(!wgt_tai64n_after(eb, ea));

	b.tv_nsec = 16777216;
	wgt_tai64n_encode(eb, &b);
	ck_assert(wgt_tai64n_after(eb, ea));
	ck_assert(!wgt_tai64n_after(ea, eb));

	/* Seconds dominate nanoseconds. */
	a.tv_sec = 101;
	a.tv_nsec = 0;
	b.tv_sec = 100;
	b.tv_nsec = 999999999;
	wgt_tai64n_encode(ea, &a);
	wgt_tai64n_encode(eb, &b);
	ck_assert(wgt_tai64n_after(ea, eb));
	ck_assert(!wgt_tai64n_after(eb, ea));
}
END_TEST

/*
 * Initiations at the permitted rate (one per 1/50 s = 20 ms) always carry
 * strictly increasing timestamps: the rounding step is below 20 ms.
 */
START_TEST(test_monotonic_at_initiation_rate)
{
	struct timespec ts = { .tv_sec = 1700000000, .tv_nsec = 0 };
	uint8_t prev[WGT_TAI64N_LEN], cur[WGT_TAI64N_LEN];

	wgt_tai64n_encode(prev, &ts);
	for (int i = 0; i < 1000; i++) {
		ts.tv_nsec += 20000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_nsec -= 1000000000;
			ts.tv_sec++;
		}
		wgt_tai64n_encode(cur, &ts);
		ck_assert(wgt_tai64n_after(cur, prev));
		memcpy(prev, cur, sizeof(cur));
	}
}
END_TEST

START_TEST(test_now)
{
	struct timespec ts;
	uint8_t earlier[WGT_TAI64N_LEN], now[WGT_TAI64N_LEN];

	wgt_realtime(&ts);
	ts.tv_sec -= 1;
	wgt_tai64n_encode(earlier, &ts);
	wgt_tai64n_now(now);
	ck_assert(wgt_tai64n_after(now, earlier));
	/* Coarsened: the low 24 bits of the nanosecond field are always zero. */
	ck_assert_uint_eq(now[9], 0);
	ck_assert_uint_eq(now[10], 0);
	ck_assert_uint_eq(now[11], 0);
}
END_TEST

static Suite *tai64n_suite(void)
{
	Suite *s = suite_create("tai64n");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_known_encodings);
	tcase_add_test(tc, test_after);
	tcase_add_test(tc, test_monotonic_at_initiation_rate);
	tcase_add_test(tc, test_now);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tai64n_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
