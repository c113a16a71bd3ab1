/* SPDX-License-Identifier: MIT */
/* The endpoint resolver thread: an answer through the loop, retries, cancels, replacement, freeing while busy; in a private netns. */
#include <arpa/inet.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "gateway/resolve.h"
#include "netns.h"

/* Never in any DNS; inside the private netns a query fails at once and nothing leaves. */
#define BAD_NAME "wgt-unit.invalid"

struct ctx {
	struct ev_loop *loop;
	unsigned calls;
	uint8_t key[32];
	union wgt_sockaddr addr;
};

static void done(void *arg, const uint8_t key[32], const union wgt_sockaddr *addr)
{
	struct ctx *c = arg;

	c->calls++;
	memcpy(c->key, key, 32);
	c->addr = *addr;
	ev_break(c->loop, EVBREAK_ALL);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop for at most `secs` or until a callback breaks it. */
static void run_for(struct ctx *c, double secs)
{
	ev_timer t;

	ev_timer_init(&t, timeout_cb, secs, 0.);
	ev_timer_start(c->loop, &t);
	ev_run(c->loop, 0);
	ev_timer_stop(c->loop, &t);
}

static struct wgt_resolver *setup(struct ctx *c)
{
	struct wgt_resolver *r;

	memset(c, 0, sizeof(*c));
	c->loop = ev_loop_new(EVFLAG_AUTO);
	ck_assert_ptr_nonnull(c->loop);
	ck_assert_int_eq(wgt_resolver_new(c->loop, "unit0", done, c, &r), 0);
	return r;
}

static void teardown(struct ctx *c, struct wgt_resolver *r)
{
	wgt_resolver_free(r);
	ev_loop_destroy(c->loop);
}

static uint16_t port_of(const union wgt_sockaddr *a)
{
	return ntohs(a->sa.sa_family == AF_INET ? a->in4.sin_port : a->in6.sin6_port);
}

START_TEST(test_resolves_localhost)
{
	struct ctx c;
	struct wgt_resolver *r = setup(&c);
	uint8_t key[32];

	memset(key, 3, sizeof(key));
	ck_assert_int_eq(wgt_resolver_add(r, key, "localhost", 51820, "peer"), 0);
	ck_assert_uint_eq(wgt_resolver_pending(r), 1);
	run_for(&c, 10);
	ck_assert_uint_eq(c.calls, 1);
	ck_assert_mem_eq(c.key, key, 32);
	ck_assert(c.addr.sa.sa_family == AF_INET || c.addr.sa.sa_family == AF_INET6);
	ck_assert_uint_eq(port_of(&c.addr), 51820);
	ck_assert_uint_eq(wgt_resolver_pending(r), 0);
	teardown(&c, r);
}
END_TEST

/* A name that does not resolve stays pending (retried), and a cancel ends it for good. */
START_TEST(test_retry_then_cancel)
{
	struct ctx c;
	struct wgt_resolver *r = setup(&c);
	uint8_t key[32];

	memset(key, 4, sizeof(key));
	ck_assert_int_eq(wgt_resolver_add(r, key, BAD_NAME, 1, "peer"), 0);
	/* The first failure comes back and waits 1 s for its retry. */
	run_for(&c, 0.5);
	ck_assert_uint_eq(c.calls, 0);
	ck_assert_uint_eq(wgt_resolver_pending(r), 1);
	/* Past the first retry: still failing, still pending. */
	run_for(&c, 1.2);
	ck_assert_uint_eq(c.calls, 0);
	ck_assert_uint_eq(wgt_resolver_pending(r), 1);
	wgt_resolver_cancel(r, key);
	ck_assert_uint_eq(wgt_resolver_pending(r), 0);
	/* Its timer is gone: nothing fires (ASan would see a freed job used). */
	run_for(&c, 1.5);
	ck_assert_uint_eq(c.calls, 0);
	/* Cancelling a key with no job is fine. */
	wgt_resolver_cancel(r, key);
	teardown(&c, r);
}
END_TEST

/* A second job for the same key replaces the first: one answer, the second name's. */
START_TEST(test_replace)
{
	struct ctx c;
	struct wgt_resolver *r = setup(&c);
	uint8_t key[32];

	memset(key, 5, sizeof(key));
	ck_assert_int_eq(wgt_resolver_add(r, key, BAD_NAME, 1, "peer"), 0);
	ck_assert_int_eq(wgt_resolver_add(r, key, "localhost", 2222, "peer"), 0);
	ck_assert_uint_eq(wgt_resolver_pending(r), 1);
	run_for(&c, 10);
	ck_assert_uint_eq(c.calls, 1);
	ck_assert_uint_eq(port_of(&c.addr), 2222);
	/* The cancelled one, resolved or not, never calls back. */
	run_for(&c, 1.5);
	ck_assert_uint_eq(c.calls, 1);
	ck_assert_uint_eq(wgt_resolver_pending(r), 0);
	teardown(&c, r);
}
END_TEST

/* Freed with jobs queued and one possibly in getaddrinfo(): no wait, no leak, no callback. */
START_TEST(test_free_busy)
{
	for (int round = 0; round < 20; round++) {
		struct ctx c;
		struct wgt_resolver *r = setup(&c);

		for (uint8_t k = 0; k < 4; k++) {
			uint8_t key[32];

			memset(key, k, sizeof(key));
			ck_assert_int_eq(wgt_resolver_add(r, key, k & 1 ? "localhost" : BAD_NAME, 1,
							  "peer"), 0);
		}
		teardown(&c, r);
		ck_assert_uint_eq(c.calls, 0);
	}
}
END_TEST

START_TEST(test_retry_schedule)
{
	double total = 0;

	ck_assert(fabs(wgt_resolver_retry_delay(1) - 1.0) < 1e-9);
	ck_assert(fabs(wgt_resolver_retry_delay(2) - 1.2) < 1e-9);
	for (unsigned n = 1; n <= WGT_RESOLVE_RETRIES_FAST; n++) {
		double d = wgt_resolver_retry_delay(n);

		ck_assert(d >= wgt_resolver_retry_delay(n > 1 ? n - 1 : 1));
		ck_assert(d <= WGT_RESOLVE_MAX_FAST_DELAY);
		total += d;
	}
	/* wg(8)'s 15 tries take about 72 s; after them, once a minute. */
	ck_assert(total > 70 && total < 74);
	ck_assert(fabs(wgt_resolver_retry_delay(WGT_RESOLVE_RETRIES_FAST + 1) - 60.0) < 1e-9);
	ck_assert(fabs(wgt_resolver_retry_delay(1000) - 60.0) < 1e-9);
}
END_TEST

static Suite *resolve_suite(void)
{
	Suite *s = suite_create("resolve");
	TCase *tc = tcase_create("resolver");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_resolves_localhost);
	tcase_add_test(tc, test_retry_then_cancel);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_free_busy);
	tcase_add_test(tc, test_retry_schedule);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed, r;

	r = unit_enter_netns("test_resolve", "a network namespace, so that no query leaves");
	if (r)
		return r;
	sr = srunner_create(resolve_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
