/* SPDX-License-Identifier: MIT */
/* rtnetlink requests: addresses, MTU, link state and routes on a TUN device, in a private netns. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/rtnl.h"
#include "io/tun.h"
#include "netns.h"

/* The TUN device every test works on: its queue fd keeps it (and its carrier) alive. */
static int tun_fd = -1;
static char tun_name[IFNAMSIZ];
static unsigned tun_ifindex;

static void setup(void)
{
	ck_assert_int_eq(wgt_tun_open("wgtrtnl%d", 1, 0, &tun_fd, tun_name), 0);
	ck_assert_int_eq(wgt_tun_get_ifindex(tun_name, &tun_ifindex), 0);
}

static void teardown(void)
{
	/* A TUN device that is not persistent goes with its last fd. */
	if (tun_fd >= 0)
		close(tun_fd);
	tun_fd = -1;
}

struct pfx {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
};

/* "10.0.0.1/24" or "fd00::1/64". */
static struct pfx P(const char *s)
{
	struct pfx p = { 0 };
	char a[64];
	const char *slash = strchr(s, '/');

	ck_assert_ptr_nonnull(slash);
	snprintf(a, sizeof(a), "%.*s", (int)(slash - s), s);
	p.family = strchr(a, ':') ? AF_INET6 : AF_INET;
	ck_assert_int_eq(inet_pton(p.family, a, p.addr), 1);
	p.prefix = (uint8_t)atoi(slash + 1);
	return p;
}

static int addr_add(const char *s)
{
	struct pfx p = P(s);

	return wgt_rtnl_addr_add(tun_ifindex, p.family, p.addr, p.prefix);
}

static int addr_del(const char *s)
{
	struct pfx p = P(s);

	return wgt_rtnl_addr_del(tun_ifindex, p.family, p.addr, p.prefix);
}

static int route_add(const char *s, uint32_t table)
{
	struct pfx p = P(s);

	return wgt_rtnl_route_add(tun_ifindex, p.family, p.addr, p.prefix, table);
}

static int route_del(const char *s, uint32_t table)
{
	struct pfx p = P(s);

	return wgt_rtnl_route_del(tun_ifindex, p.family, p.addr, p.prefix, table);
}

struct find {
	struct pfx want;
	unsigned found, total;
	uint32_t table;      /* routes: where it was found */
	uint8_t protocol;
};

static int find_addr_cb(void *arg, int family, const uint8_t *addr, uint8_t prefix)
{
	struct find *f = arg;

	f->total++;
	if (family == f->want.family && prefix == f->want.prefix &&
	    !memcmp(addr, f->want.addr, family == AF_INET ? 4 : 16))
		f->found++;
	return 0;
}

/* How many times the interface has the address with that prefix (0 or 1). */
static unsigned has_addr(const char *s)
{
	struct find f = { .want = P(s) };

	ck_assert_int_eq(wgt_rtnl_addr_list(tun_ifindex, find_addr_cb, &f), 0);
	return f.found;
}

static int find_route_cb(void *arg, const struct wgt_rtnl_route *rt)
{
	struct find *f = arg;

	/* Only ours: the kernel adds its own (fe80::/64, multicast, local). */
	if (rt->protocol != RTPROT_BOOT)
		return 0;
	f->total++;
	if (rt->family == f->want.family && rt->prefix == f->want.prefix &&
	    !memcmp(rt->dst, f->want.addr, rt->family == AF_INET ? 4 : 16)) {
		f->found++;
		f->table = rt->table;
		ck_assert_int_eq(rt->type, RTN_UNICAST);
	}
	return 0;
}

/* How many RTPROT_BOOT routes to that prefix through the TUN device in `table` (0: any). */
static unsigned has_route(const char *s, uint32_t table)
{
	struct find f = { .want = P(s) };

	ck_assert_int_eq(wgt_rtnl_route_list(tun_ifindex, AF_UNSPEC, table, find_route_cb, &f), 0);
	return f.found;
}

static unsigned count_routes(uint32_t table)
{
	struct find f = { .want = { .family = AF_UNSPEC } };

	ck_assert_int_eq(wgt_rtnl_route_list(tun_ifindex, AF_UNSPEC, table, find_route_cb, &f), 0);
	return f.total;
}

START_TEST(test_addr_v4_v6)
{
	ck_assert_uint_eq(has_addr("10.90.0.1/24"), 0);
	ck_assert_int_eq(addr_add("10.90.0.1/24"), 0);
	ck_assert_int_eq(addr_add("fd90::1/64"), 0);
	ck_assert_uint_eq(has_addr("10.90.0.1/24"), 1);
	ck_assert_uint_eq(has_addr("fd90::1/64"), 1);
	/* The prefix is part of the address: /16 is not there. */
	ck_assert_uint_eq(has_addr("10.90.0.1/16"), 0);

	/* Idempotent add: EEXIST is success, and there is still one of each. */
	ck_assert_int_eq(addr_add("10.90.0.1/24"), 0);
	ck_assert_int_eq(addr_add("fd90::1/64"), 0);
	ck_assert_uint_eq(has_addr("10.90.0.1/24"), 1);
	ck_assert_uint_eq(has_addr("fd90::1/64"), 1);

	ck_assert_int_eq(addr_del("10.90.0.1/24"), 0);
	ck_assert_int_eq(addr_del("fd90::1/64"), 0);
	ck_assert_uint_eq(has_addr("10.90.0.1/24"), 0);
	ck_assert_uint_eq(has_addr("fd90::1/64"), 0);
	/* Idempotent delete: EADDRNOTAVAIL is success. */
	ck_assert_int_eq(addr_del("10.90.0.1/24"), 0);
	ck_assert_int_eq(addr_del("fd90::1/64"), 0);
}
END_TEST

START_TEST(test_addr_errors)
{
	uint8_t a[16] = { 10, 1, 2, 3 };

	ck_assert_int_eq(wgt_rtnl_addr_add(tun_ifindex, AF_INET, a, 33), -EINVAL);
	ck_assert_int_eq(wgt_rtnl_addr_add(tun_ifindex, AF_INET6, a, 129), -EINVAL);
	ck_assert_int_eq(wgt_rtnl_addr_add(tun_ifindex, AF_UNIX, a, 8), -EAFNOSUPPORT);
	/* The kernel's answer comes back: no such interface. */
	ck_assert_int_eq(wgt_rtnl_addr_add(tun_ifindex + 1000, AF_INET, a, 8), -ENODEV);
	ck_assert_int_eq(wgt_rtnl_set_mtu(tun_ifindex + 1000, 1400), -ENODEV);
	ck_assert_int_eq(wgt_rtnl_route_add(tun_ifindex + 1000, AF_INET, a, 8, RT_TABLE_MAIN),
			 -ENODEV);
}
END_TEST

/* A dump longer than one datagram (NLM_F_MULTI parts) is read to its NLMSG_DONE. */
START_TEST(test_dump_multipart)
{
	const unsigned n = 400;   /* ~70 bytes each over IPv6: several 8 KiB parts */
	char s[64];
	struct find f = { .want = { .family = AF_UNSPEC } };

	for (unsigned i = 0; i < n; i++) {
		snprintf(s, sizeof(s), "fd93::%x/128", i + 1);
		ck_assert_int_eq(addr_add(s), 0);
	}
	ck_assert_int_eq(wgt_rtnl_addr_list(tun_ifindex, find_addr_cb, &f), 0);
	ck_assert_uint_ge(f.total, n);
	ck_assert_uint_le(f.total, n + 2);   /* plus a link-local address, if any */

	ck_assert_int_eq(wgt_rtnl_set_up(tun_ifindex, true), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(s, sizeof(s), "10.94.%u.%u/32", i / 256, i % 256);
		ck_assert_int_eq(route_add(s, 4000), 0);
	}
	ck_assert_uint_eq(count_routes(4000), n);
	ck_assert_uint_eq(has_route("10.94.1.0/32", 4000), 1);
}
END_TEST

/* Stops the list at the first address; the callback's value comes back. */
static int stop_cb(void *arg, int family, const uint8_t *addr, uint8_t prefix)
{
	(*(unsigned *)arg)++;
	return 42;
}

START_TEST(test_list_stops)
{
	unsigned calls = 0;

	ck_assert_int_eq(addr_add("10.95.0.1/24"), 0);
	ck_assert_int_eq(addr_add("10.95.0.2/24"), 0);
	ck_assert_int_eq(wgt_rtnl_addr_list(tun_ifindex, stop_cb, &calls), 42);
	ck_assert_uint_eq(calls, 1);
}
END_TEST

START_TEST(test_mtu_up)
{
	uint32_t mtu = 0;
	unsigned ioctl_mtu = 0;
	bool up = true;

	ck_assert_int_eq(wgt_rtnl_set_mtu(tun_ifindex, 1380), 0);
	ck_assert_int_eq(wgt_rtnl_get_mtu(tun_ifindex, &mtu), 0);
	ck_assert_uint_eq(mtu, 1380);
	ck_assert_int_eq(wgt_tun_get_mtu(tun_name, &ioctl_mtu), 0);
	ck_assert_uint_eq(ioctl_mtu, 1380);
	ck_assert_int_eq(wgt_rtnl_set_mtu(tun_ifindex, 9000), 0);
	ck_assert_int_eq(wgt_rtnl_get_mtu(tun_ifindex, &mtu), 0);
	ck_assert_uint_eq(mtu, 9000);
	/* Out of the device's range: the kernel says no, the MTU stays. */
	ck_assert_int_eq(wgt_rtnl_set_mtu(tun_ifindex, 70000), -EINVAL);
	ck_assert_int_eq(wgt_rtnl_get_mtu(tun_ifindex, &mtu), 0);
	ck_assert_uint_eq(mtu, 9000);

	ck_assert_int_eq(wgt_tun_get_up(tun_name, &up), 0);
	ck_assert(!up);
	ck_assert_int_eq(wgt_rtnl_set_up(tun_ifindex, true), 0);
	ck_assert_int_eq(wgt_tun_get_up(tun_name, &up), 0);
	ck_assert(up);
	ck_assert_int_eq(wgt_rtnl_set_up(tun_ifindex, true), 0);
	ck_assert_int_eq(wgt_rtnl_set_up(tun_ifindex, false), 0);
	ck_assert_int_eq(wgt_tun_get_up(tun_name, &up), 0);
	ck_assert(!up);
}
END_TEST

START_TEST(test_routes)
{
	ck_assert_int_eq(wgt_rtnl_set_up(tun_ifindex, true), 0);

	ck_assert_int_eq(route_add("10.91.0.0/16", RT_TABLE_MAIN), 0);
	ck_assert_int_eq(route_add("fd91::/48", RT_TABLE_MAIN), 0);
	/* Table ids above 255 travel in RTA_TABLE. */
	ck_assert_int_eq(route_add("10.92.1.0/24", 1000), 0);
	ck_assert_int_eq(route_add("fd92::/64", 1000), 0);
	ck_assert_int_eq(route_add("0.0.0.0/0", 1000), 0);
	ck_assert_int_eq(route_add("::/0", 1000), 0);
	/* Host bits are masked off (the kernel refuses them for IPv4). */
	ck_assert_int_eq(route_add("10.93.1.5/24", RT_TABLE_MAIN), 0);
	/* A small table id stays in rtm_table. */
	ck_assert_int_eq(route_add("10.96.0.0/16", 200), 0);

	ck_assert_uint_eq(has_route("10.91.0.0/16", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("fd91::/48", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("10.92.1.0/24", 1000), 1);
	ck_assert_uint_eq(has_route("10.92.1.0/24", RT_TABLE_MAIN), 0);
	ck_assert_uint_eq(has_route("fd92::/64", 1000), 1);
	ck_assert_uint_eq(has_route("0.0.0.0/0", 1000), 1);
	ck_assert_uint_eq(has_route("::/0", 1000), 1);
	ck_assert_uint_eq(has_route("0.0.0.0/0", RT_TABLE_MAIN), 0);
	ck_assert_uint_eq(has_route("10.93.1.0/24", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("10.96.0.0/16", 200), 1);
	ck_assert_uint_eq(count_routes(RT_TABLE_MAIN), 3);
	ck_assert_uint_eq(count_routes(1000), 4);
	ck_assert_uint_eq(count_routes(0), 8);

	/* Replace: the same route again is no error and no second route. */
	ck_assert_int_eq(route_add("10.91.0.0/16", RT_TABLE_MAIN), 0);
	ck_assert_int_eq(route_add("fd92::/64", 1000), 0);
	ck_assert_uint_eq(count_routes(0), 8);

	ck_assert_int_eq(route_del("10.91.0.0/16", RT_TABLE_MAIN), 0);
	ck_assert_int_eq(route_del("fd91::/48", RT_TABLE_MAIN), 0);
	ck_assert_int_eq(route_del("10.92.1.0/24", 1000), 0);
	ck_assert_int_eq(route_del("::/0", 1000), 0);
	ck_assert_int_eq(route_del("10.93.1.77/24", RT_TABLE_MAIN), 0);
	ck_assert_uint_eq(has_route("10.91.0.0/16", 0), 0);
	ck_assert_uint_eq(has_route("fd91::/48", 0), 0);
	ck_assert_uint_eq(has_route("10.92.1.0/24", 0), 0);
	ck_assert_uint_eq(has_route("::/0", 0), 0);
	ck_assert_uint_eq(has_route("10.93.1.0/24", 0), 0);
	ck_assert_uint_eq(count_routes(0), 3);

	/* Already gone, in the wrong table, or in a table that never existed: not an error. */
	ck_assert_int_eq(route_del("10.91.0.0/16", RT_TABLE_MAIN), 0);
	ck_assert_int_eq(route_del("fd91::/48", RT_TABLE_MAIN), 0);
	ck_assert_int_eq(route_del("fd92::/64", RT_TABLE_MAIN), 0);
	ck_assert_int_eq(route_del("10.96.0.0/16", 4242), 0);
	ck_assert_int_eq(route_del("fd92::/64", 4242), 0);
	ck_assert_uint_eq(has_route("fd92::/64", 1000), 1);
	ck_assert_uint_eq(has_route("10.96.0.0/16", 200), 1);
}
END_TEST

/* An IPv4 route through a link that is down: the kernel's error, not a silent success. */
START_TEST(test_route_link_down)
{
	ck_assert_int_eq(route_add("10.97.0.0/16", RT_TABLE_MAIN), -ENETDOWN);
	ck_assert_uint_eq(has_route("10.97.0.0/16", 0), 0);
}
END_TEST

/* Runs a shell command; the test fails if it does. */
static void run(const char *cmd)
{
	int r = system(cmd);

	ck_assert_msg(r == 0, "`%s` failed: %d", cmd, r);
}

/* Whether a UDP socket can bind the IPv6 address now (a tentative one cannot). */
static int bind6(const char *addr)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &sa.sin6_addr), 1);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ? -errno : 0;
	close(fd);
	return r;
}

/*
 * IFA_F_NODAD: on a link that does duplicate address detection (a veth
 * pair, unlike a NOARP TUN), an address added without it is tentative at
 * first and cannot be bound; ours can be at once.
 */
START_TEST(test_addr_v6_nodad)
{
	unsigned ifindex;
	uint8_t a[16];

	run("ip link add wgtrtnlv0 type veth peer name wgtrtnlv1 && "
	    "ip link set wgtrtnlv0 up && ip link set wgtrtnlv1 up");
	ck_assert_int_eq(wgt_tun_get_ifindex("wgtrtnlv0", &ifindex), 0);

	run("ip -6 addr add fd98::2/64 dev wgtrtnlv0");
	ck_assert_int_eq(bind6("fd98::2"), -EADDRNOTAVAIL);

	ck_assert_int_eq(inet_pton(AF_INET6, "fd98::1", a), 1);
	ck_assert_int_eq(wgt_rtnl_addr_add(ifindex, AF_INET6, a, 64), 0);
	ck_assert_int_eq(bind6("fd98::1"), 0);
	run("ip link del wgtrtnlv0");
}
END_TEST

static Suite *rtnl_suite(void)
{
	Suite *s = suite_create("rtnl");
	TCase *tc = tcase_create("core");

	/* Each test gets a fresh TUN device, so none sees another's addresses or routes. */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_addr_v4_v6);
	tcase_add_test(tc, test_addr_errors);
	tcase_add_test(tc, test_dump_multipart);
	tcase_add_test(tc, test_list_stops);
	tcase_add_test(tc, test_mtu_up);
	tcase_add_test(tc, test_routes);
	tcase_add_test(tc, test_route_link_down);
	tcase_add_test(tc, test_addr_v6_nodad);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (unit_enter_netns("test_rtnl", "interfaces, a network namespace"))
		return 77;

	sr = srunner_create(rtnl_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
