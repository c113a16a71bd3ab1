/* SPDX-License-Identifier: MIT */
/* Check suite for the busy-poll decision: the receiving stream, the score, its bounds, the probes. */
#include <check.h>
#include <stdlib.h>

#include "gateway/busy_poll.h"

/* Spins over n idle periods, each one a hit when hit(i). */
static unsigned run(struct wgt_busy_poll *b, unsigned n, bool (*hit)(unsigned))
{
	unsigned spins = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!wgt_busy_poll_spin(b))
			continue;
		spins++;
		wgt_busy_poll_result(b, hit(i));
	}
	return spins;
}

static bool never(unsigned i)
{
	(void)i;
	return false;
}

static bool always(unsigned i)
{
	(void)i;
	return true;
}

static bool one_in_two(unsigned i)
{
	return i % 2;
}

static bool one_in_four(unsigned i)
{
	return i % 4 == 0;
}

START_TEST(test_new_worker_probes)
{
	struct wgt_busy_poll b = { 0 };

	/* Score 0: only every WGT_BUSY_POLL_PROBE-th idle period spins. */
	for (unsigned i = 1; i < WGT_BUSY_POLL_PROBE; i++)
		ck_assert(!wgt_busy_poll_spin(&b));
	ck_assert(wgt_busy_poll_spin(&b));
	/* A probe that hits starts the spinning. */
	wgt_busy_poll_result(&b, true);
	ck_assert_uint_eq(b.score, 2);
	ck_assert(wgt_busy_poll_spin(&b));
}
END_TEST

START_TEST(test_score_bounds)
{
	struct wgt_busy_poll b = { 0 };

	for (unsigned i = 0; i < 100; i++)
		wgt_busy_poll_result(&b, true);
	ck_assert_uint_eq(b.score, WGT_BUSY_POLL_SCORE_MAX);
	/* From the top, misses stop the spinning after SCORE_MAX of them, and no further. */
	for (unsigned i = 0; i < WGT_BUSY_POLL_SCORE_MAX; i++) {
		ck_assert(wgt_busy_poll_spin(&b));
		wgt_busy_poll_result(&b, false);
	}
	ck_assert_uint_eq(b.score, 0);
	wgt_busy_poll_result(&b, false);
	ck_assert_uint_eq(b.score, 0);
}
END_TEST

START_TEST(test_traffic_patterns)
{
	struct wgt_busy_poll b = { 0 };
	unsigned spins;

	/* A steady stream: every idle period spins once the first probe hit. */
	spins = run(&b, 1600, always);
	ck_assert_uint_ge(spins, 1600 - WGT_BUSY_POLL_PROBE);
	/* Half the spins hit: it keeps spinning. */
	spins = run(&b, 1600, one_in_two);
	ck_assert_uint_eq(spins, 1600);
	/* Nothing ever comes within the cap: one spin per probe interval, after the score ran down. */
	spins = run(&b, 1600, never);
	ck_assert_uint_le(spins, WGT_BUSY_POLL_SCORE_MAX + 1600 / WGT_BUSY_POLL_PROBE);
	/* One in four: below one in three, so it settles at the probes. */
	b = (struct wgt_busy_poll){ 0 };
	spins = run(&b, 16000, one_in_four);
	ck_assert_uint_lt(spins, 16000 / 2);
}
END_TEST

START_TEST(test_receiving_stream)
{
	struct wgt_busy_poll b = { 0 };
	uint64_t rx = 0, tx = 0;
	bool on = false;

	/* A decrypting worker: 64 KiB in and a 60-byte ACK out per idle period. */
	for (int i = 0; i < 4; i++) {
		rx += 65536;
		tx += 60;
		on = wgt_busy_poll_receiving(&b, rx, tx);
	}
	ck_assert(on);
	/* An encrypting worker: three 64 KiB super-packets out, two ACKs in. */
	b = (struct wgt_busy_poll){ 0 };
	rx = tx = 0;
	for (int i = 0; i < 64; i++) {
		rx += 120;
		tx += 3 * 65536;
		ck_assert(!wgt_busy_poll_receiving(&b, rx, tx));
	}
	/* A trickle in: under the floor however long it lasts (8 x 1 KiB < 32 KiB). */
	b = (struct wgt_busy_poll){ 0 };
	rx = 0;
	for (int i = 0; i < 1000; i++) {
		rx += 1024;
		on = wgt_busy_poll_receiving(&b, rx, 0);
	}
	ck_assert(!on);
	/* A stream that stops: the decayed sum falls under the floor within ~21 idle periods. */
	b = (struct wgt_busy_poll){ 0 };
	rx = 0;
	for (int i = 0; i < 32; i++) {
		rx += 65536;
		on = wgt_busy_poll_receiving(&b, rx, 0);
	}
	ck_assert(on);
	for (int i = 0; i < 32 && on; i++)
		on = wgt_busy_poll_receiving(&b, rx, 0);
	ck_assert(!on);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("busy_poll");
	TCase *tc = tcase_create("decision");

	tcase_add_test(tc, test_new_worker_probes);
	tcase_add_test(tc, test_score_bounds);
	tcase_add_test(tc, test_traffic_patterns);
	tcase_add_test(tc, test_receiving_stream);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
