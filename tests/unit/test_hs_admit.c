/* SPDX-License-Identifier: MIT */
/* The workers' per-source handshake budgets (gateway/hs_admit.c) on a fake clock. */
#include <arpa/inet.h>
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/endpoint.h"
#include "gateway/hs_admit.h"

#define T0 (1000 * WGT_NSEC_PER_SEC)
#define COST (WGT_NSEC_PER_SEC / WGT_HS_BUDGET_RATE)

static union wgt_sockaddr sa(const char *ip, uint16_t port)
{
	union wgt_sockaddr a;

	memset(&a, 0, sizeof(a));
	if (strchr(ip, ':')) {
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.in6.sin6_addr), 1);
	} else {
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &a.in4.sin_addr), 1);
	}
	return a;
}

static struct wgt_hs_budget *budget_new(void)
{
	struct wgt_hs_budget *b = malloc(sizeof(*b));

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(wgt_hs_budget_init(b), 0);
	return b;
}

static bool allow(struct wgt_hs_budget *b, const char *ip, uint16_t port, uint64_t now)
{
	union wgt_sockaddr a = sa(ip, port);

	return wgt_hs_budget_allow(b, &a, now);
}

/* A flooding source gets its burst, then its rate, whatever its ports; others are untouched. */
START_TEST(test_one_source_flood)
{
	struct wgt_hs_budget *b = budget_new();
	unsigned got = 0;

	for (int i = 0; i < WGT_HS_BUDGET_BURST; i++)
		ck_assert_msg(allow(b, "10.200.0.1", (uint16_t)(1000 + i), T0), "burst %d refused", i);
	ck_assert(!allow(b, "10.200.0.1", 999, T0));
	/* Legitimate sources beside it, even in the same /24 and port. */
	ck_assert(allow(b, "10.200.0.2", 51820, T0));
	ck_assert(allow(b, "192.168.241.1", 51820, T0));
	/* One second of a 100,000/s flood: about WGT_HS_BUDGET_RATE pass. */
	for (uint64_t i = 0; i < 100000; i++)
		got += allow(b, "10.200.0.1", 4242, T0 + i * 10000);
	ck_assert_uint_ge(got, WGT_HS_BUDGET_RATE - 1);
	ck_assert_uint_le(got, WGT_HS_BUDGET_RATE + 1);
	/* A full bucket again after a quiet second. */
	ck_assert(allow(b, "10.200.0.1", 1, T0 + 3 * WGT_NSEC_PER_SEC));
	free(b);
}
END_TEST

/* IPv6 is budgeted per /64, IPv4-mapped addresses as IPv4; a clock step back refills nothing. */
START_TEST(test_keys_and_clock)
{
	struct wgt_hs_budget *b = budget_new();

	for (int i = 0; i < WGT_HS_BUDGET_BURST; i++)
		ck_assert(allow(b, i & 1 ? "fd00:1::1" : "fd00:1::ffff:2", 1, T0));
	ck_assert(!allow(b, "fd00:1::9", 1, T0));
	ck_assert(allow(b, "fd00:2::1", 1, T0));
	for (int i = 0; i < WGT_HS_BUDGET_BURST; i++)
		ck_assert(allow(b, i & 1 ? "10.0.0.7" : "::ffff:10.0.0.7", 1, T0));
	ck_assert(!allow(b, "10.0.0.7", 1, T0));
	ck_assert(!allow(b, "10.0.0.7", 1, T0 - WGT_NSEC_PER_SEC));
	ck_assert(allow(b, "10.0.0.7", 1, T0 + COST));
	free(b);
}
END_TEST

/*
 * Many sources (a spoofed flood) cannot fill the table: each slot is taken
 * over, never refused, so a real source arriving in the middle always passes.
 */
START_TEST(test_many_sources_never_refused)
{
	struct wgt_hs_budget *b = budget_new();
	char ip[32];

	for (uint32_t i = 0; i < 200000; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", 200 + (i >> 16), (i >> 8) & 255, i & 255);
		ck_assert_msg(allow(b, ip, 1, T0 + i), "%s refused", ip);
		if (i % 1000 == 0)
			ck_assert(allow(b, "192.168.241.1", 51820, T0 + i));
	}
	free(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hs_admit");
	TCase *tc = tcase_create("budget");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_one_source_flood);
	tcase_add_test(tc, test_keys_and_clock);
	tcase_add_test(tc, test_many_sources_never_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
