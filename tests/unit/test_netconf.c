/* SPDX-License-Identifier: MIT */
/* A configuration file's interface side applied as old -> new transitions on a TUN device, in a private netns. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/conf.h"
#include "gateway/device.h"
#include "gateway/netconf.h"
#include "io/rtnl.h"
#include "io/tun.h"
#include "netns.h"

#define MAX_PEERS 4
#define MAX_IPS 8
#define MAX_ADDRS 8

static int tun_fd = -1;
static char tun_name[IFNAMSIZ];
static unsigned tun_ifindex;

static void setup(void)
{
	ck_assert_int_eq(wgt_tun_open("wgtnc%d", 1, 0, &tun_fd, tun_name), 0);
	ck_assert_int_eq(wgt_tun_get_ifindex(tun_name, &tun_ifindex), 0);
}

static void teardown(void)
{
	if (tun_fd >= 0)
		close(tun_fd);
	tun_fd = -1;
}

/* A parsed file built by hand: fixed arrays behind struct wgt_conf's pointers. */
struct fake_conf {
	struct wgt_conf conf;
	struct wgt_conf_peer_meta meta[MAX_PEERS];
	struct wgt_uapi_peer peers[MAX_PEERS];
	struct wgt_uapi_allowedip ips[MAX_PEERS][MAX_IPS];
	struct wgt_conf_address addrs[MAX_ADDRS];
};

static void fc_init(struct fake_conf *f, enum wgt_conf_table table, uint32_t table_id)
{
	memset(f, 0, sizeof(*f));
	f->conf.wg.peers = f->peers;
	f->conf.meta = f->meta;
	f->conf.addresses = f->addrs;
	f->conf.table = table;
	f->conf.table_id = table_id;
}

/* "10.0.0.1/24" or "fd00::1/64" into family, address and prefix. */
static void parse(const char *s, int *family, uint8_t addr[16], uint8_t *prefix)
{
	char a[64];
	const char *slash = strchr(s, '/');

	ck_assert_ptr_nonnull(slash);
	snprintf(a, sizeof(a), "%.*s", (int)(slash - s), s);
	*family = strchr(a, ':') ? AF_INET6 : AF_INET;
	memset(addr, 0, 16);
	ck_assert_int_eq(inet_pton(*family, a, addr), 1);
	*prefix = (uint8_t)atoi(slash + 1);
}

static void fc_addr(struct fake_conf *f, const char *s)
{
	struct wgt_conf_address *a = &f->addrs[f->conf.n_addresses++];

	ck_assert_uint_le(f->conf.n_addresses, MAX_ADDRS);
	parse(s, &a->family, a->addr, &a->prefix);
}

static void fc_mtu(struct fake_conf *f, uint32_t mtu)
{
	f->conf.flags |= WGT_CONF_HAS_MTU;
	f->conf.mtu = mtu;
}

/* Adds a peer named `name` ("" for none) whose key starts with `key0`; returns its index. */
static size_t fc_peer(struct fake_conf *f, const char *name, uint8_t key0)
{
	size_t i = f->conf.wg.n_peers++;

	ck_assert_uint_le(f->conf.wg.n_peers, MAX_PEERS);
	f->peers[i].public_key[0] = key0;
	f->peers[i].allowed_ips = f->ips[i];
	snprintf(f->meta[i].name, sizeof(f->meta[i].name), "%s", name);
	return i;
}

static void fc_allowed(struct fake_conf *f, size_t peer, const char *s)
{
	struct wgt_uapi_peer *p = &f->peers[peer];
	struct wgt_uapi_allowedip *a = &p->allowed_ips[p->n_allowed_ips++];

	ck_assert_uint_le(p->n_allowed_ips, MAX_IPS);
	parse(s, &a->family, a->addr, &a->cidr);
}

struct find {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
	unsigned found, total;
};

static int addr_cb(void *arg, int family, const uint8_t *addr, uint8_t prefix)
{
	struct find *f = arg;

	if (family == AF_INET6 && addr[0] == 0xfe && (addr[1] & 0xc0) == 0x80)
		return 0;   /* the kernel's link-local address, if it made one */
	f->total++;
	if (family == f->family && prefix == f->prefix &&
	    !memcmp(addr, f->addr, family == AF_INET ? 4 : 16))
		f->found++;
	return 0;
}

static unsigned has_addr(const char *s)
{
	struct find f = { 0 };

	parse(s, &f.family, f.addr, &f.prefix);
	ck_assert_int_eq(wgt_rtnl_addr_list(tun_ifindex, addr_cb, &f), 0);
	return f.found;
}

static unsigned count_addrs(void)
{
	struct find f = { .family = AF_UNSPEC };

	ck_assert_int_eq(wgt_rtnl_addr_list(tun_ifindex, addr_cb, &f), 0);
	return f.total;
}

static int route_cb(void *arg, const struct wgt_rtnl_route *rt)
{
	struct find *f = arg;

	if (rt->protocol != RTPROT_BOOT)
		return 0;
	f->total++;
	if (rt->family == f->family && rt->prefix == f->prefix &&
	    !memcmp(rt->dst, f->addr, rt->family == AF_INET ? 4 : 16))
		f->found++;
	return 0;
}

/* wgate's routes (RTPROT_BOOT) to that prefix through the device in `table` (0: any). */
static unsigned has_route(const char *s, uint32_t table)
{
	struct find f = { 0 };

	parse(s, &f.family, f.addr, &f.prefix);
	ck_assert_int_eq(wgt_rtnl_route_list(tun_ifindex, AF_UNSPEC, table, route_cb, &f), 0);
	return f.found;
}

static unsigned count_routes(uint32_t table)
{
	struct find f = { .family = AF_UNSPEC };

	ck_assert_int_eq(wgt_rtnl_route_list(tun_ifindex, AF_UNSPEC, table, route_cb, &f), 0);
	return f.total;
}

static void expect_stats(const struct wgt_netconf_stats *st, unsigned aa, unsigned ar,
			 unsigned ra, unsigned rr)
{
	ck_assert_uint_eq(st->addr_added, aa);
	ck_assert_uint_eq(st->addr_removed, ar);
	ck_assert_uint_eq(st->routes_added, ra);
	ck_assert_uint_eq(st->routes_removed, rr);
}

/* The first file of a start and its successors, shared by the tests below. */
static void conf1(struct fake_conf *f)
{
	size_t alice, bob;

	fc_init(f, WGT_CONF_TABLE_AUTO, 0);
	fc_mtu(f, 1400);
	fc_addr(f, "10.60.0.1/24");
	fc_addr(f, "fd60::1/64");
	alice = fc_peer(f, "alice", 1);
	fc_allowed(f, alice, "10.61.0.0/16");
	fc_allowed(f, alice, "10.61.5.5/32");
	fc_allowed(f, alice, "fd61::/48");
	bob = fc_peer(f, "", 2);
	fc_allowed(f, bob, "10.62.0.9/24");       /* host bits: routed as 10.62.0.0/24 */
	fc_allowed(f, bob, "0.0.0.0/0");          /* auto: not routed */
	fc_allowed(f, bob, "10.61.0.0/16");       /* alice's too: one route */
}

START_TEST(test_start)
{
	struct fake_conf f;
	struct wgt_netconf_stats st;
	bool up = false;
	uint32_t mtu;

	conf1(&f);
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, NULL, &f.conf, &st), 0);
	expect_stats(&st, 2, 0, 4, 0);
	ck_assert_uint_eq(st.mtu, 1400);
	ck_assert_int_eq(wgt_rtnl_get_mtu(tun_ifindex, &mtu), 0);
	ck_assert_uint_eq(mtu, 1400);
	ck_assert_int_eq(wgt_tun_get_up(tun_name, &up), 0);
	ck_assert(up);
	ck_assert_uint_eq(has_addr("10.60.0.1/24"), 1);
	ck_assert_uint_eq(has_addr("fd60::1/64"), 1);
	ck_assert_uint_eq(count_addrs(), 2);
	ck_assert_uint_eq(has_route("10.61.0.0/16", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("10.61.5.5/32", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("fd61::/48", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("10.62.0.0/24", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("0.0.0.0/0", 0), 0);
	ck_assert_uint_eq(count_routes(0), 4);

	/* The same file again changes nothing. */
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, &f.conf, &f.conf, &st), 0);
	expect_stats(&st, 0, 0, 0, 0);
	ck_assert_uint_eq(count_routes(0), 4);
}
END_TEST

START_TEST(test_reload_diff)
{
	struct fake_conf f1, f2;
	struct wgt_netconf_stats st;
	uint8_t hand[16];
	size_t alice, carol;
	uint32_t mtu;

	conf1(&f1);
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, NULL, &f1.conf, &st), 0);
	/* The operator adds an address by hand that neither file names. */
	ck_assert_int_eq(inet_pton(AF_INET, "10.70.0.9", hand), 1);
	ck_assert_int_eq(wgt_rtnl_addr_add(tun_ifindex, AF_INET, hand, 32), 0);

	fc_init(&f2, WGT_CONF_TABLE_AUTO, 0);    /* no MTU: the interface keeps 1400 */
	fc_addr(&f2, "10.60.0.2/24");             /* 10.60.0.1/24 replaced */
	fc_addr(&f2, "fd60::1/64");
	fc_addr(&f2, "fd60::1/64");               /* a repeat is one address */
	alice = fc_peer(&f2, "alice", 1);
	fc_allowed(&f2, alice, "10.61.0.0/16");
	carol = fc_peer(&f2, "carol", 3);
	fc_allowed(&f2, carol, "10.63.0.0/24");
	fc_allowed(&f2, carol, "fd63::/64");

	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, &f1.conf, &f2.conf, &st), 0);
	expect_stats(&st, 1, 1, 2, 3);
	ck_assert_uint_eq(st.mtu, 1400);
	ck_assert_int_eq(wgt_rtnl_get_mtu(tun_ifindex, &mtu), 0);
	ck_assert_uint_eq(mtu, 1400);
	ck_assert_uint_eq(has_addr("10.60.0.1/24"), 0);
	ck_assert_uint_eq(has_addr("10.60.0.2/24"), 1);
	ck_assert_uint_eq(has_addr("fd60::1/64"), 1);
	ck_assert_uint_eq(has_addr("10.70.0.9/32"), 1);
	ck_assert_uint_eq(count_addrs(), 3);
	ck_assert_uint_eq(has_route("10.61.0.0/16", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("10.63.0.0/24", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("fd63::/64", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_route("10.61.5.5/32", 0), 0);
	ck_assert_uint_eq(has_route("fd61::/48", 0), 0);
	ck_assert_uint_eq(has_route("10.62.0.0/24", 0), 0);
	ck_assert_uint_eq(count_routes(0), 3);

	/* Back to nothing: the file's addresses and routes go, the hand-made address stays. */
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, &f2.conf, NULL, &st), 0);
	expect_stats(&st, 0, 2, 0, 3);
	ck_assert_uint_eq(count_addrs(), 1);
	ck_assert_uint_eq(has_addr("10.70.0.9/32"), 1);
	ck_assert_uint_eq(count_routes(0), 0);
}
END_TEST

/* auto -> table 1234 (with the /0s) -> off: the routes move, then go. */
START_TEST(test_table_change)
{
	struct fake_conf f1, f2, f3;
	struct wgt_netconf_stats st;

	conf1(&f1);
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, NULL, &f1.conf, &st), 0);
	ck_assert_uint_eq(count_routes(RT_TABLE_MAIN), 4);

	conf1(&f2);
	f2.conf.table = WGT_CONF_TABLE_ID;
	f2.conf.table_id = 1234;
	fc_allowed(&f2, 0, "::/0");
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, &f1.conf, &f2.conf, &st), 0);
	/* In a numbered table a /0 is routed. */
	expect_stats(&st, 0, 0, 6, 4);
	ck_assert_uint_eq(count_routes(RT_TABLE_MAIN), 0);
	ck_assert_uint_eq(count_routes(1234), 6);
	ck_assert_uint_eq(has_route("0.0.0.0/0", 1234), 1);
	ck_assert_uint_eq(has_route("::/0", 1234), 1);
	ck_assert_uint_eq(has_route("10.62.0.0/24", 1234), 1);

	f3 = f2;
	f3.conf.wg.peers = f3.peers;
	f3.conf.meta = f3.meta;
	f3.conf.addresses = f3.addrs;
	for (size_t i = 0; i < MAX_PEERS; i++)
		f3.peers[i].allowed_ips = f3.ips[i];
	f3.conf.table = WGT_CONF_TABLE_OFF;
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, &f2.conf, &f3.conf, &st), 0);
	expect_stats(&st, 0, 0, 0, 6);
	ck_assert_uint_eq(count_routes(0), 0);
	/* Off at start: no routes at all, addresses still applied. */
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, NULL, &f3.conf, &st), 0);
	expect_stats(&st, 0, 0, 0, 0);
	ck_assert_uint_eq(has_addr("10.60.0.1/24"), 1);
	ck_assert_uint_eq(count_routes(0), 0);
}
END_TEST

/* A route removed by hand (or lost with the link) comes back with the next apply. */
START_TEST(test_heals)
{
	struct fake_conf f;
	struct wgt_netconf_stats st;
	uint8_t a[16];

	conf1(&f);
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, NULL, &f.conf, &st), 0);
	ck_assert_int_eq(inet_pton(AF_INET, "10.61.0.0", a), 1);
	ck_assert_int_eq(wgt_rtnl_route_del(tun_ifindex, AF_INET, a, 16, RT_TABLE_MAIN), 0);
	ck_assert_int_eq(inet_pton(AF_INET6, "fd60::1", a), 1);
	ck_assert_int_eq(wgt_rtnl_addr_del(tun_ifindex, AF_INET6, a, 64), 0);
	ck_assert_uint_eq(has_route("10.61.0.0/16", 0), 0);

	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, &f.conf, &f.conf, &st), 0);
	expect_stats(&st, 1, 0, 1, 0);
	ck_assert_uint_eq(has_route("10.61.0.0/16", RT_TABLE_MAIN), 1);
	ck_assert_uint_eq(has_addr("fd60::1/64"), 1);
}
END_TEST

/* One bad entry fails the apply with its error; everything else is still applied. */
START_TEST(test_errors_continue)
{
	struct fake_conf f;
	struct wgt_netconf_stats st;
	size_t p;

	fc_init(&f, WGT_CONF_TABLE_AUTO, 0);
	fc_mtu(&f, 70000);                      /* above a TUN device's maximum */
	fc_addr(&f, "10.64.0.1/33");            /* no such prefix length */
	fc_addr(&f, "10.64.0.2/24");
	p = fc_peer(&f, "dave", 4);
	fc_allowed(&f, p, "10.65.0.0/16");
	ck_assert_int_eq(wgt_netconf_apply_link(tun_name, tun_ifindex, NULL, &f.conf, &st), -EINVAL);
	expect_stats(&st, 1, 0, 1, 0);
	ck_assert_uint_eq(has_addr("10.64.0.2/24"), 1);
	ck_assert_uint_eq(has_route("10.65.0.0/16", RT_TABLE_MAIN), 1);
	/* The interface's MTU, unchanged (the TUN default). */
	ck_assert_uint_eq(st.mtu, 1500);
}
END_TEST

/* The device wrapper: the workers' MTU view follows at once. */
START_TEST(test_device_mtu)
{
	struct fake_conf f;
	struct wgt_device *dev = calloc(1, sizeof(*dev));

	ck_assert_ptr_nonnull(dev);
	snprintf(dev->ifname, sizeof(dev->ifname), "%s", tun_name);
	dev->ifindex = tun_ifindex;
	atomic_init(&dev->mtu, WGT_DEFAULT_MTU);
	fc_init(&f, WGT_CONF_TABLE_OFF, 0);
	fc_mtu(&f, 1280);
	ck_assert_int_eq(wgt_netconf_apply(dev, NULL, &f.conf), 0);
	ck_assert_uint_eq(atomic_load(&dev->mtu), 1280);
	free(dev);
}
END_TEST

static Suite *netconf_suite(void)
{
	Suite *s = suite_create("netconf");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_start);
	tcase_add_test(tc, test_reload_diff);
	tcase_add_test(tc, test_table_change);
	tcase_add_test(tc, test_heals);
	tcase_add_test(tc, test_errors_continue);
	tcase_add_test(tc, test_device_mtu);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (unit_enter_netns("test_netconf", "interfaces, a network namespace"))
		return 77;

	sr = srunner_create(netconf_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
