/* SPDX-License-Identifier: MIT */
/* Applies a configuration file's MTU, addresses, link state and routes to the interface. */
#include "gateway/netconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "config/conf.h"
#include "gateway/device.h"
#include "io/rtnl.h"

/*
 * An address or a route as a set member. Sets are sorted arrays; an apply
 * computes three of each kind: what the old file asked for, what the new
 * one asks for, and what the interface has now.
 */
struct item {
	uint32_t table;       /* routes: the routing table; addresses: 0 */
	uint8_t family;
	uint8_t prefix;
	uint8_t addr[16];     /* routes: masked to the prefix */
	bool ours;            /* not compared: an address, or a route with wgate's RTPROT_BOOT */
};

struct set {
	struct item *v;
	size_t n, cap;
};

static int item_cmp(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->table != y->table)
		return x->table < y->table ? -1 : 1;
	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return memcmp(x->addr, y->addr, sizeof(x->addr));
}

static size_t family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static int set_push(struct set *s, uint32_t table, int family, const uint8_t *addr,
		    uint8_t prefix, bool ours)
{
	struct item *it;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct item *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	it = &s->v[s->n++];
	memset(it, 0, sizeof(*it));
	it->table = table;
	it->family = (uint8_t)family;
	it->prefix = prefix;
	it->ours = ours;
	memcpy(it->addr, addr, family_len(family));
	return 0;
}

/* Sorts and merges duplicates (two routes to one prefix with other metrics, say). */
static void set_finish(struct set *s)
{
	size_t j = 0;

	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), item_cmp);
	for (size_t i = 1; i < s->n; i++) {
		if (item_cmp(&s->v[i], &s->v[j]))
			s->v[++j] = s->v[i];
		else
			s->v[j].ours |= s->v[i].ours;
	}
	s->n = j + 1;
}

static const struct item *set_find(const struct set *s, const struct item *it)
{
	return s->n ? bsearch(it, s->v, s->n, sizeof(*s->v), item_cmp) : NULL;
}

static bool set_has(const struct set *s, const struct item *it)
{
	return set_find(s, it) != NULL;
}

static void set_free(struct set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

/* "10.0.0.0/24" or "fd00::/64". */
static const char *item_str(const struct item *it, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(it->family, it->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "(family %u)", it->family);
	snprintf(buf, len, "%s/%u", a, it->prefix);
	return buf;
}

#define ITEM_STR_LEN (INET6_ADDRSTRLEN + 16)

static int addresses_of(const struct wgt_conf *conf, struct set *s)
{
	for (size_t i = 0; conf && i < conf->n_addresses; i++) {
		const struct wgt_conf_address *a = &conf->addresses[i];
		int r;

		if (a->family != AF_INET && a->family != AF_INET6)
			continue;
		r = set_push(s, 0, a->family, a->addr, a->prefix, true);
		if (r)
			return r;
	}
	set_finish(s);
	return 0;
}

/* The peer as logs name it: its "# Name =", else the start of its key as `wg show` prints it. */
static void peer_label(const struct wgt_conf *conf, size_t i, char out[WGT_PEER_LABEL_LEN])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *k = conf->wg.peers[i].public_key;

	if (conf->meta && conf->meta[i].name[0]) {
		snprintf(out, WGT_PEER_LABEL_LEN, "%s", conf->meta[i].name);
		return;
	}
	for (int j = 0; j < 2; j++) {
		uint32_t v = (uint32_t)k[3 * j] << 16 | (uint32_t)k[3 * j + 1] << 8 | k[3 * j + 2];

		out[4 * j] = b64[v >> 18 & 63];
		out[4 * j + 1] = b64[v >> 12 & 63];
		out[4 * j + 2] = b64[v >> 6 & 63];
		out[4 * j + 3] = b64[v & 63];
	}
	memcpy(out + 8, "...", 4);
}

/*
 * The routes a file asks for: every allowed IP of every peer, masked, in its
 * table. With Table=auto a /0 is left out and, when `ifname` is given (the
 * new file), one warning names the first peer that has one.
 */
static int routes_of(const struct wgt_conf *conf, const char *ifname, struct set *s)
{
	size_t skipped = 0, first_peer = 0, first_ip = 0;
	uint32_t table;

	if (!conf || conf->table == WGT_CONF_TABLE_OFF)
		return 0;
	/* Table 0 means the main table to the kernel, and dumps say 254: so do we. */
	table = conf->table == WGT_CONF_TABLE_ID ? conf->table_id : RT_TABLE_MAIN;
	if (!table)
		table = RT_TABLE_MAIN;
	for (size_t i = 0; i < conf->wg.n_peers; i++) {
		const struct wgt_uapi_peer *p = &conf->wg.peers[i];

		if (p->flags & WGT_UAPI_PEER_REMOVE)
			continue;
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct wgt_uapi_allowedip *a = &p->allowed_ips[j];
			uint8_t masked[16] = { 0 };
			int r;

			if (a->remove || (a->family != AF_INET && a->family != AF_INET6) ||
			    a->cidr > 8 * family_len(a->family))
				continue;
			if (a->cidr == 0 && conf->table == WGT_CONF_TABLE_AUTO) {
				if (!skipped++) {
					first_peer = i;
					first_ip = j;
				}
				continue;
			}
			memcpy(masked, a->addr, a->cidr / 8);
			if (a->cidr % 8)
				masked[a->cidr / 8] = a->addr[a->cidr / 8] & (uint8_t)(0xff00 >> a->cidr % 8);
			r = set_push(s, table, a->family, masked, a->cidr, true);
			if (r)
				return r;
		}
	}
	set_finish(s);
	if (skipped && ifname) {
		const struct wgt_uapi_allowedip *a = &conf->wg.peers[first_peer].allowed_ips[first_ip];
		char label[WGT_PEER_LABEL_LEN];

		peer_label(conf, first_peer, label);
		wgt_warn("%s: peer %s: allowed IP %s/0 not routed with Table=auto (that takes "
			 "wg-quick's fwmark policy routing, which wgate does not do: set Table to "
			 "a number, or route it by hand)%s",
			 ifname, label, a->family == AF_INET ? "0.0.0.0" : "::",
			 skipped > 1 ? "; other /0 allowed IPs skipped too" : "");
	}
	return 0;
}

static int present_addr_cb(void *arg, int family, const uint8_t *addr, uint8_t prefix)
{
	return set_push(arg, 0, family, addr, prefix, true);
}

static int present_route_cb(void *arg, const struct wgt_rtnl_route *rt)
{
	/*
	 * The kernel's own routes count too: a prefix an address already routes
	 * (proto kernel) gets no second route. Only ours are ever removed.
	 */
	if (rt->type != RTN_UNICAST)
		return 0;
	return set_push(arg, rt->table, rt->family, rt->dst, rt->prefix,
			rt->protocol == RTPROT_BOOT);
}

/* Keeps the first error. */
static void first_error(int *err, int r)
{
	if (r && !*err)
		*err = r;
}

/*
 * What the interface has now. When it cannot be read, assume what the old
 * file asked for is there, which makes the apply a plain difference.
 */
static int read_present(const char *ifname, unsigned ifindex, bool routes, const struct set *old,
			struct set *present)
{
	int r = routes ? wgt_rtnl_route_list(ifindex, AF_UNSPEC, 0, present_route_cb, present)
		       : wgt_rtnl_addr_list(ifindex, present_addr_cb, present);

	if (r) {
		wgt_err("%s: cannot list the interface's %s: %s", ifname,
			routes ? "routes" : "addresses", strerror(-r));
		set_free(present);
		for (size_t i = 0; i < old->n && !r; i++)
			r = set_push(present, old->v[i].table, old->v[i].family, old->v[i].addr,
				     old->v[i].prefix, true);
		if (r)
			return r;
	}
	set_finish(present);
	return 0;
}

static int apply_mtu(const char *ifname, unsigned ifindex, const struct wgt_conf *new,
		     struct wgt_netconf_stats *st)
{
	uint32_t cur = 0;
	int rg = wgt_rtnl_get_mtu(ifindex, &cur);
	int r = 0;

	if (new && (new->flags & WGT_CONF_HAS_MTU) && (rg || cur != new->mtu)) {
		r = wgt_rtnl_set_mtu(ifindex, new->mtu);
		if (r) {
			wgt_err("%s: cannot set MTU %u: %s", ifname, new->mtu, strerror(-r));
		} else {
			cur = new->mtu;
			rg = 0;
		}
	}
	st->mtu = rg ? 0 : cur;
	return r;
}

static int apply_addresses(const char *ifname, unsigned ifindex, const struct wgt_conf *old,
			   const struct wgt_conf *new, struct wgt_netconf_stats *st)
{
	struct set o = { 0 }, n = { 0 }, p = { 0 };
	char s[ITEM_STR_LEN];
	int err = 0, r;

	r = addresses_of(old, &o);
	if (!r)
		r = addresses_of(new, &n);
	if (!r)
		r = read_present(ifname, ifindex, false, &o, &p);
	if (r) {
		wgt_err("%s: cannot apply the addresses: %s", ifname, strerror(-r));
		err = r;
		goto out;
	}
	/*
	 * Removals first: an IPv6 address given a new prefix length is the same
	 * address to the kernel (EEXIST), and a new IPv4 address added beside an
	 * old primary one of its subnet would be a secondary the kernel removes
	 * with that primary (unless net.ipv4.conf.*.promote_secondaries).
	 */
	for (size_t i = 0; i < o.n; i++) {
		const struct item *it = &o.v[i];

		if (set_has(&n, it) || !set_has(&p, it))
			continue;
		r = wgt_rtnl_addr_del(ifindex, it->family, it->addr, it->prefix);
		if (r)
			wgt_err("%s: cannot remove address %s: %s", ifname,
				item_str(it, s, sizeof(s)), strerror(-r));
		else
			st->addr_removed++;
		first_error(&err, r);
	}
	for (size_t i = 0; i < n.n; i++) {
		const struct item *it = &n.v[i];

		if (set_has(&p, it))
			continue;
		r = wgt_rtnl_addr_add(ifindex, it->family, it->addr, it->prefix);
		if (r)
			wgt_err("%s: cannot add address %s: %s", ifname,
				item_str(it, s, sizeof(s)), strerror(-r));
		else
			st->addr_added++;
		first_error(&err, r);
	}
out:
	set_free(&o);
	set_free(&n);
	set_free(&p);
	return err;
}

static int apply_routes(const char *ifname, unsigned ifindex, const struct wgt_conf *old,
			const struct wgt_conf *new, struct wgt_netconf_stats *st)
{
	struct set o = { 0 }, n = { 0 }, p = { 0 };
	char s[ITEM_STR_LEN];
	int err = 0, r;

	r = routes_of(old, NULL, &o);
	if (!r)
		r = routes_of(new, ifname, &n);
	if (!r)
		r = read_present(ifname, ifindex, true, &o, &p);
	if (r) {
		wgt_err("%s: cannot apply the routes: %s", ifname, strerror(-r));
		err = r;
		goto out;
	}
	/* Additions first: a prefix that moves to another table is never unrouted meanwhile. */
	for (size_t i = 0; i < n.n; i++) {
		const struct item *it = &n.v[i];

		if (set_has(&p, it))
			continue;
		r = wgt_rtnl_route_add(ifindex, it->family, it->addr, it->prefix, it->table);
		if (r)
			wgt_err("%s: cannot add route %s (table %u): %s", ifname,
				item_str(it, s, sizeof(s)), it->table, strerror(-r));
		else
			st->routes_added++;
		first_error(&err, r);
	}
	for (size_t i = 0; i < o.n; i++) {
		const struct item *it = &o.v[i];
		const struct item *have;

		if (set_has(&n, it))
			continue;
		have = set_find(&p, it);
		if (!have || !have->ours)
			continue;
		r = wgt_rtnl_route_del(ifindex, it->family, it->addr, it->prefix, it->table);
		if (r)
			wgt_err("%s: cannot remove route %s (table %u): %s", ifname,
				item_str(it, s, sizeof(s)), it->table, strerror(-r));
		else
			st->routes_removed++;
		first_error(&err, r);
	}
out:
	set_free(&o);
	set_free(&n);
	set_free(&p);
	return err;
}

/* Control thread only. */
int wgt_netconf_apply_link(const char *ifname, unsigned ifindex, const struct wgt_conf *old,
			   const struct wgt_conf *new, struct wgt_netconf_stats *stats)
{
	struct wgt_netconf_stats st = { 0 };
	char mtu[16] = "unknown";
	int err = 0, r;

	first_error(&err, apply_mtu(ifname, ifindex, new, &st));
	first_error(&err, apply_addresses(ifname, ifindex, old, new, &st));
	/* After the MTU and addresses (IPv6 wants both before it starts), before the
	 * routes: the kernel refuses an IPv4 route through a link that is down. */
	r = wgt_rtnl_set_up(ifindex, true);
	if (r)
		wgt_err("%s: cannot set the link up: %s", ifname, strerror(-r));
	first_error(&err, r);
	first_error(&err, apply_routes(ifname, ifindex, old, new, &st));

	if (st.mtu)
		snprintf(mtu, sizeof(mtu), "%u", st.mtu);
	wgt_info("%s: addresses +%u -%u, routes +%u -%u, mtu %s%s", ifname, st.addr_added,
		 st.addr_removed, st.routes_added, st.routes_removed, mtu,
		 err ? " (with errors)" : "");
	if (stats)
		*stats = st;
	return err;
}

/* Control thread only. */
int wgt_netconf_apply(struct wgt_device *dev, const struct wgt_conf *old,
		      const struct wgt_conf *new)
{
	struct wgt_netconf_stats st;
	int r = wgt_netconf_apply_link(dev->ifname, dev->ifindex, old, new, &st);

	/*
	 * The workers pad to dev->mtu (send.c), loaded per packet; the slow tick
	 * re-reads it once a second, this makes a new MTU count at once. A lone
	 * value, nothing published with it: relaxed is enough.
	 */
	if (st.mtu)
		atomic_store_explicit(&dev->mtu, st.mtu, memory_order_relaxed);
	return r;
}
