/* SPDX-License-Identifier: MIT */
/* Check suite for the receiver-index table: allocation, lookup, release, reuse, the cap. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "gateway/index.h"

/* Objects must be at least 2-byte aligned: the low bit is the kind tag. */
static long objs[4];

START_TEST(test_alloc_lookup_release)
{
	struct wgt_index_table t;
	enum wgt_index_kind kind;
	uint32_t a, b;

	ck_assert_int_eq(wgt_index_table_init(&t), 0);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_HANDSHAKE, &objs[0], 0, 1, &a), 0);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[1], 0, 1, &b), 0);
	ck_assert_uint_ne(a & (WGT_INDEX_SLOTS - 1), b & (WGT_INDEX_SLOTS - 1));
	ck_assert_uint_ne(a & (WGT_INDEX_SLOTS - 1), 0);
	ck_assert_ptr_eq(wgt_index_lookup(&t, a, &kind), &objs[0]);
	ck_assert_int_eq(kind, WGT_INDEX_HANDSHAKE);
	ck_assert_ptr_eq(wgt_index_lookup(&t, b, &kind), &objs[1]);
	ck_assert_int_eq(kind, WGT_INDEX_KEYPAIR);

	/* A handshake's index passes to its keypair. */
	wgt_index_replace(&t, a, WGT_INDEX_KEYPAIR, &objs[2]);
	ck_assert_ptr_eq(wgt_index_lookup(&t, a, &kind), &objs[2]);
	ck_assert_int_eq(kind, WGT_INDEX_KEYPAIR);

	/* Releasing for an object the slot no longer holds changes nothing. */
	wgt_index_release(&t, a, &objs[0]);
	ck_assert_ptr_eq(wgt_index_lookup(&t, a, &kind), &objs[2]);
	wgt_index_release(&t, a, &objs[2]);
	ck_assert_ptr_null(wgt_index_lookup(&t, a, &kind));
	/* Index 0 names nothing. */
	ck_assert_ptr_null(wgt_index_lookup(&t, 0, &kind));
	wgt_index_table_destroy(&t);
}
END_TEST

START_TEST(test_reuse_and_random_high_bits)
{
	struct wgt_index_table t;
	uint32_t a, b, highs = 0;

	ck_assert_int_eq(wgt_index_table_init(&t), 0);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[0], 0, 1, &a), 0);
	wgt_index_release(&t, a, &objs[0]);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[1], 0, 1, &b), 0);
	ck_assert_uint_eq(a & (WGT_INDEX_SLOTS - 1), b & (WGT_INDEX_SLOTS - 1));
	/* High bits are random: 64 allocations do not all share them. */
	for (int i = 0; i < 64; i++) {
		uint32_t x;

		ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[2], 0, 1, &x), 0);
		highs |= (x ^ b) >> WGT_INDEX_SLOT_BITS;
	}
	ck_assert_uint_ne(highs, 0);
	wgt_index_table_destroy(&t);
}
END_TEST

START_TEST(test_cap)
{
	struct wgt_index_table t;
	uint32_t x, first;

	ck_assert_int_eq(wgt_index_table_init(&t), 0);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[0], 0, 1, &first), 0);
	for (uint32_t i = 2; i < WGT_INDEX_SLOTS; i++)
		ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[1], 0, 1, &x), 0);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[1], 0, 1, &x), -ENOSPC);
	ck_assert_uint_eq(t.full_hits, 1);
	wgt_index_release(&t, first, &objs[0]);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[1], 0, 1, &x), 0);
	ck_assert_uint_eq(x & (WGT_INDEX_SLOTS - 1), first & (WGT_INDEX_SLOTS - 1));
	wgt_index_table_destroy(&t);
}
END_TEST

/* Every lane count up to the cap: the index is in its lane, and the bits above the lane vary. */
START_TEST(test_lanes)
{
	static const unsigned counts[] = { 1, 2, 3, 4, 7, 64, 255, 256 };
	struct wgt_index_table t;
	uint32_t x;

	ck_assert_int_eq(wgt_index_table_init(&t), 0);
	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		unsigned n = counts[c];

		for (unsigned lane = 0; lane < n; lane++) {
			uint32_t tops = 0;

			for (int k = 0; k < 16; k++) {
				ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[0], lane,
								 n, &x), 0);
				ck_assert_uint_eq(wgt_index_lane(x, n), lane);
				ck_assert_ptr_eq(wgt_index_lookup(&t, x, &(enum wgt_index_kind){ 0 }),
						 &objs[0]);
				tops |= (x >> WGT_INDEX_LANE_SHIFT) ^ lane;
				wgt_index_release(&t, x, &objs[0]);
			}
			/* Random multiples of n above the lane, where the byte has room for them. */
			if (n <= 64)
				ck_assert_uint_ne(tops, 0);
		}
	}
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[0], 0, 0, &x), -EINVAL);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[0], 2, 2, &x), -EINVAL);
	ck_assert_int_eq(wgt_index_alloc(&t, WGT_INDEX_KEYPAIR, &objs[0], 0, 257, &x), -EINVAL);
	wgt_index_table_destroy(&t);
}
END_TEST

static Suite *index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_alloc_lookup_release);
	tcase_add_test(tc, test_reuse_and_random_high_bits);
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_lanes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(index_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
