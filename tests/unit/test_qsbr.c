/* SPDX-License-Identifier: MIT */
/* Check suite for the QSBR glue: no object is freed while a registered reader may hold it. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/qsbr.h"

#define MAGIC 0x5155534252ULL
#define ROUNDS 20000

struct obj {
	_Atomic uint64_t magic;
	uint64_t payload[7];
};

static struct obj *_Atomic shared;
static atomic_bool stop;
static _Atomic uint64_t bad_reads, reads;

static void obj_free(void *ptr)
{
	struct obj *o = ptr;

	/* A reader still holding o would now see the poison (and ASan a use after free). */
	atomic_store_explicit(&o->magic, 0xdeadULL, memory_order_relaxed);
	free(o);
}

static void *reader(void *arg)
{
	unsigned iter = 0;

	wgt_qsbr_register();
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct obj *o = atomic_load_explicit(&shared, memory_order_acquire);

		if (o && atomic_load_explicit(&o->magic, memory_order_relaxed) != MAGIC)
			atomic_fetch_add(&bad_reads, 1);
		atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
		/* Sometimes go offline, as workers do around poll(). */
		if (++iter % 64 == 0) {
			wgt_qsbr_offline();
			wgt_qsbr_online();
		} else {
			wgt_qsbr_quiescent();
		}
	}
	wgt_qsbr_unregister();
	return NULL;
}

static void drain_counter(void *arg)
{
	(*(int *)arg)++;
}

START_TEST(test_no_early_free)
{
	struct wgt_qsbr_deferred d = { 0 };
	pthread_t th[2];
	int drains = 0;

	atomic_store(&stop, false);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader, NULL), 0);
	for (int i = 0; i < ROUNDS; i++) {
		struct obj *o = calloc(1, sizeof(*o));
		struct obj *old;

		ck_assert_ptr_nonnull(o);
		atomic_store_explicit(&o->magic, MAGIC, memory_order_relaxed);
		old = atomic_exchange_explicit(&shared, o, memory_order_acq_rel);
		if (old)
			wgt_qsbr_defer(&d, obj_free, old);
		if (i % 16 == 0)
			wgt_qsbr_reclaim(&d, drain_counter, &drains);
	}
	ck_assert_uint_gt(wgt_qsbr_pending(&d), 0);
	wgt_qsbr_reclaim(&d, drain_counter, &drains);
	ck_assert_uint_eq(wgt_qsbr_pending(&d), 0);
	ck_assert_int_gt(drains, 0);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	obj_free(atomic_exchange(&shared, NULL));
	ck_assert_uint_gt(atomic_load(&reads), 0);
	ck_assert_uint_eq(atomic_load(&bad_reads), 0);
	wgt_qsbr_deferred_destroy(&d);
}
END_TEST

static void count_free(void *ptr)
{
	(*(int *)ptr)++;
}

START_TEST(test_reclaim_runs_everything_queued)
{
	struct wgt_qsbr_deferred d = { 0 };
	int freed = 0;

	wgt_qsbr_reclaim(&d, NULL, NULL); /* nothing queued: no wait, no call */
	for (int i = 0; i < 1000; i++)
		wgt_qsbr_defer(&d, count_free, &freed);
	ck_assert_uint_eq(wgt_qsbr_pending(&d), 1000);
	wgt_qsbr_reclaim(&d, NULL, NULL);
	ck_assert_int_eq(freed, 1000);
	wgt_qsbr_defer(&d, count_free, &freed);
	wgt_qsbr_deferred_destroy(&d);
	ck_assert_int_eq(freed, 1001);
}
END_TEST

static Suite *qsbr_suite(void)
{
	Suite *s = suite_create("qsbr");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 100);
	tcase_add_test(tc, test_reclaim_runs_everything_queued);
	tcase_add_test(tc, test_no_early_free);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(qsbr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
