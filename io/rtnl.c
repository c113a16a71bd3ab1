/* SPDX-License-Identifier: MIT */
/* rtnetlink link settings through libmnl. */
#include "io/rtnl.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

/*
 * Receive buffer: MNL_SOCKET_BUFFER_SIZE (the page size, at most 8 KiB) is what libmnl
 * asks for so that no dump message is ever truncated; this array holds it on any page
 * size without a variable-length array. Requests are a few hundred bytes.
 */
#define RTNL_BUF_SIZE 8192
/* Dumps are read whole before the caller sees them; this caps what one may hold. */
#define RTNL_DUMP_MAX_ITEMS (1U << 21)
/* A dump the kernel marks inconsistent (NLM_F_DUMP_INTR: it changed meanwhile) is read again. */
#define RTNL_DUMP_TRIES 4

static size_t recv_size(void)
{
	long n = MNL_SOCKET_BUFFER_SIZE;

	return n > 0 && (size_t)n < RTNL_BUF_SIZE ? (size_t)n : RTNL_BUF_SIZE;
}

static struct nlmsghdr *put_header(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	return nlh;
}

/*
 * Sends one request on a fresh socket and reads the answer until the kernel's
 * acknowledgement (requests carry NLM_F_ACK) or NLMSG_DONE (dumps, which may
 * span many datagrams of NLM_F_MULTI messages), handing every other message
 * to cb (NULL: none expected). Returns 0, or -errno: the kernel's error from
 * its NLMSG_ERROR answer, EINTR for a dump marked NLM_F_DUMP_INTR, or the
 * error cb set in errno before returning MNL_CB_ERROR.
 */
static int transact(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[RTNL_BUF_SIZE];
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	uint32_t seq = nlh->nlmsg_seq;
	unsigned portid;
	ssize_t n;
	int r;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	do {
		n = mnl_socket_recvfrom(nl, buf, recv_size());
		if (n == -1) {
			r = -errno;
			goto out;
		}
		errno = 0;
		r = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
	} while (r == MNL_CB_OK);
	if (r == MNL_CB_ERROR)
		r = errno ? -errno : -EPROTO;
out:
	mnl_socket_close(nl);
	return r;
}

/* What a dump collects: fixed-size items in a growing array, for one interface. */
struct collect {
	unsigned ifindex;
	int family;       /* AF_UNSPEC: both */
	uint32_t table;   /* routes: 0 = every table */
	size_t item_size;
	void *items;
	size_t n, cap;
};

/* A zeroed slot for one more item; NULL with errno ENOMEM or E2BIG (the cap). */
static void *collect_slot(struct collect *c)
{
	char *slot;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		void *items;

		if (c->cap >= RTNL_DUMP_MAX_ITEMS) {
			errno = E2BIG;
			return NULL;
		}
		items = realloc(c->items, cap * c->item_size);
		if (!items) {
			errno = ENOMEM;
			return NULL;
		}
		c->items = items;
		c->cap = cap;
	}
	slot = (char *)c->items + c->n++ * c->item_size;
	memset(slot, 0, c->item_size);
	return slot;
}

/* Runs the dump request built by `build` until it reads consistently. */
static int dump(struct nlmsghdr *(*build)(char *buf, const struct collect *c), mnl_cb_t cb,
		struct collect *c)
{
	char buf[RTNL_BUF_SIZE];
	int r = -EINTR;

	for (int i = 0; i < RTNL_DUMP_TRIES && r == -EINTR; i++) {
		c->n = 0;
		r = transact(build(buf, c), cb, c);
	}
	return r;
}

/* Address length of a family and a check of the prefix against it; 0 or -errno. */
static int addr_len(int family, uint8_t prefix, size_t *ret_len)
{
	size_t len;

	if (family == AF_INET)
		len = 4;
	else if (family == AF_INET6)
		len = 16;
	else
		return -EAFNOSUPPORT;
	if (prefix > len * 8)
		return -EINVAL;
	*ret_len = len;
	return 0;
}

struct attrs {
	const struct nlattr **tb;
	unsigned max;
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	const struct attrs *a = data;
	unsigned type = mnl_attr_get_type(attr);

	if (type <= a->max)
		a->tb[type] = attr;
	return MNL_CB_OK;
}

/* The attribute's payload if it is exactly len bytes, else NULL. */
static const void *attr_bytes(const struct nlattr *attr, size_t len)
{
	return attr && mnl_attr_get_payload_len(attr) == len ? mnl_attr_get_payload(attr) : NULL;
}

/* A request about one link (RTM_NEWLINK, RTM_GETLINK) with an acknowledgement. */
static struct nlmsghdr *put_link(char *buf, uint16_t type, unsigned ifindex)
{
	struct nlmsghdr *nlh = put_header(buf, type, NLM_F_ACK);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));

	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = (int)ifindex;
	return nlh;
}

int wgt_rtnl_set_gso_max_segs(unsigned ifindex, uint32_t max_segs)
{
	char buf[RTNL_BUF_SIZE];
	struct nlmsghdr *nlh = put_link(buf, RTM_NEWLINK, ifindex);

	mnl_attr_put_u32(nlh, IFLA_GSO_MAX_SEGS, max_segs);
	return transact(nlh, NULL, NULL);
}

int wgt_rtnl_link_monitor_open(int *ret_fd)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int fd;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		int r = -errno;

		mnl_socket_close(nl);
		return r;
	}
	/* Keep the fd and drop the wrapper: the fd is all the caller reads. */
	fd = dup(mnl_socket_get_fd(nl));
	mnl_socket_close(nl);
	if (fd < 0)
		return -errno;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

struct link_ctx {
	unsigned ifindex;
	unsigned bits;
	bool up;
};

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct link_ctx *c = data;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifm)) || (unsigned)ifm->ifi_index != c->ifindex)
		return MNL_CB_OK;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		c->bits |= WGT_RTNL_LINK_GONE;
	} else if (nlh->nlmsg_type == RTM_NEWLINK) {
		c->up = ifm->ifi_flags & IFF_UP;
		c->bits |= c->up ? WGT_RTNL_LINK_UP : WGT_RTNL_LINK_DOWN;
	}
	return MNL_CB_OK;
}

int wgt_rtnl_link_monitor_read(int fd, unsigned ifindex, bool *ret_up)
{
	char buf[RTNL_BUF_SIZE];
	struct link_ctx c = { .ifindex = ifindex };
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		mnl_cb_run(buf, (size_t)n, 0, 0, link_cb, &c);
	if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	*ret_up = c.up;
	return (int)c.bits;
}

static int addr_request(uint16_t type, uint16_t flags, unsigned ifindex, int family,
			const void *addr, uint8_t prefix)
{
	char buf[RTNL_BUF_SIZE];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	size_t len;
	int r = addr_len(family, prefix, &len);

	if (r)
		return r;
	nlh = put_header(buf, type, NLM_F_ACK | flags);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = prefix;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = ifindex;
	/*
	 * Duplicate address detection asks the link's neighbours whether the
	 * address is taken and keeps it "tentative" (not usable as a source, so
	 * the first packets leave from another address or fail) for a second
	 * or more. A tunnel has no neighbours to ask: the peers' allowed IPs
	 * already say who owns which address. TUN devices are IFF_NOARP, which
	 * the kernel also takes as "no DAD"; the flag says it for any link.
	 */
	if (family == AF_INET6 && type == RTM_NEWADDR)
		ifa->ifa_flags = IFA_F_NODAD;
	/* IFA_LOCAL is the address; IFA_ADDRESS equal to it says "no peer address". */
	mnl_attr_put(nlh, IFA_LOCAL, len, addr);
	mnl_attr_put(nlh, IFA_ADDRESS, len, addr);
	return transact(nlh, NULL, NULL);
}

int wgt_rtnl_addr_add(unsigned ifindex, int family, const void *addr, uint8_t prefix)
{
	int r = addr_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, family, addr, prefix);

	return r == -EEXIST ? 0 : r;
}

int wgt_rtnl_addr_del(unsigned ifindex, int family, const void *addr, uint8_t prefix)
{
	int r = addr_request(RTM_DELADDR, 0, ifindex, family, addr, prefix);

	return r == -EADDRNOTAVAIL || r == -ESRCH || r == -ENOENT ? 0 : r;
}

struct addr_item {
	int family;
	uint8_t addr[16];
	uint8_t prefix;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	struct attrs a = { tb, IFA_MAX };
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct collect *c = data;
	struct addr_item *it;
	const void *addr;
	size_t len;

	if (nlh->nlmsg_type != RTM_NEWADDR || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)) ||
	    ifa->ifa_index != c->ifindex || addr_len(ifa->ifa_family, ifa->ifa_prefixlen, &len))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifa), attr_cb, &a) < 0)
		return MNL_CB_OK;
	/* IFA_LOCAL is the address of a point-to-point one, whose IFA_ADDRESS is the peer's. */
	addr = attr_bytes(tb[IFA_LOCAL], len);
	if (!addr)
		addr = attr_bytes(tb[IFA_ADDRESS], len);
	if (!addr)
		return MNL_CB_OK;
	it = collect_slot(c);
	if (!it)
		return MNL_CB_ERROR;
	it->family = ifa->ifa_family;
	memcpy(it->addr, addr, len);
	it->prefix = ifa->ifa_prefixlen;
	return MNL_CB_OK;
}

static struct nlmsghdr *build_addr_dump(char *buf, const struct collect *c)
{
	struct nlmsghdr *nlh = put_header(buf, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

	/* Kernels filter by index only with NETLINK_GET_STRICT_CHK; addr_cb filters anyway. */
	ifa->ifa_family = AF_UNSPEC;
	ifa->ifa_index = c->ifindex;
	return nlh;
}

int wgt_rtnl_addr_list(unsigned ifindex, wgt_rtnl_addr_fn fn, void *arg)
{
	struct collect c = { .ifindex = ifindex, .item_size = sizeof(struct addr_item) };
	int r = dump(build_addr_dump, addr_cb, &c);

	for (size_t i = 0; !r && i < c.n; i++) {
		const struct addr_item *it = (const struct addr_item *)c.items + i;

		r = fn(arg, it->family, it->addr, it->prefix);
	}
	free(c.items);
	return r;
}

int wgt_rtnl_set_mtu(unsigned ifindex, uint32_t mtu)
{
	char buf[RTNL_BUF_SIZE];
	struct nlmsghdr *nlh = put_link(buf, RTM_NEWLINK, ifindex);

	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return transact(nlh, NULL, NULL);
}

int wgt_rtnl_set_up(unsigned ifindex, bool up)
{
	char buf[RTNL_BUF_SIZE];
	struct nlmsghdr *nlh = put_link(buf, RTM_NEWLINK, ifindex);
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	ifm->ifi_change = IFF_UP;
	ifm->ifi_flags = up ? IFF_UP : 0;
	return transact(nlh, NULL, NULL);
}

struct mtu_ctx {
	unsigned ifindex;
	bool found;
	uint32_t mtu;
};

static int mtu_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IFLA_MAX + 1] = { 0 };
	struct attrs a = { tb, IFLA_MAX };
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);
	struct mtu_ctx *c = data;

	if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifm)) ||
	    (unsigned)ifm->ifi_index != c->ifindex)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifm), attr_cb, &a) < 0 || !tb[IFLA_MTU] ||
	    mnl_attr_validate(tb[IFLA_MTU], MNL_TYPE_U32) < 0)
		return MNL_CB_OK;
	c->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	c->found = true;
	return MNL_CB_OK;
}

int wgt_rtnl_get_mtu(unsigned ifindex, uint32_t *ret_mtu)
{
	char buf[RTNL_BUF_SIZE];
	struct mtu_ctx c = { .ifindex = ifindex };
	int r = transact(put_link(buf, RTM_GETLINK, ifindex), mtu_cb, &c);

	if (r)
		return r;
	if (!c.found)
		return -ENODATA;
	*ret_mtu = c.mtu;
	return 0;
}

/*
 * A route through the interface and nothing else (no gateway, no source):
 * what wg-quick's `ip route add PREFIX dev IFACE [table N]` asks for.
 */
static int route_request(uint16_t type, uint16_t flags, unsigned ifindex, int family,
			 const void *dst, uint8_t prefix, uint32_t table)
{
	char buf[RTNL_BUF_SIZE];
	uint8_t masked[16] = { 0 };
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	size_t len;
	int r = addr_len(family, prefix, &len);

	if (r)
		return r;
	/* The kernel refuses an IPv4 destination with host bits set: send the prefix. */
	memcpy(masked, dst, prefix / 8);
	if (prefix % 8)
		masked[prefix / 8] = ((const uint8_t *)dst)[prefix / 8] & (uint8_t)(0xff00 >> prefix % 8);

	nlh = put_header(buf, type, NLM_F_ACK | flags);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_dst_len = prefix;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_type = RTN_UNICAST;
	/*
	 * Scope link: the destination is reached directly on the link. IPv6
	 * routes have no scope (the kernel reports them all as universe), and
	 * a delete names none (RT_SCOPE_NOWHERE matches any), as `ip` does.
	 */
	if (type == RTM_DELROUTE)
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	else
		rtm->rtm_scope = family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
	/* rtm_table is 8 bits: a larger table id travels in RTA_TABLE. */
	if (table < 256) {
		rtm->rtm_table = (uint8_t)table;
	} else {
		rtm->rtm_table = RT_TABLE_UNSPEC;
		mnl_attr_put_u32(nlh, RTA_TABLE, table);
	}
	if (prefix)
		mnl_attr_put(nlh, RTA_DST, len, masked);
	mnl_attr_put_u32(nlh, RTA_OIF, ifindex);
	return transact(nlh, NULL, NULL);
}

int wgt_rtnl_route_add(unsigned ifindex, int family, const void *dst, uint8_t prefix,
		       uint32_t table)
{
	return route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, ifindex, family, dst,
			     prefix, table);
}

int wgt_rtnl_route_del(unsigned ifindex, int family, const void *dst, uint8_t prefix,
		       uint32_t table)
{
	int r = route_request(RTM_DELROUTE, 0, ifindex, family, dst, prefix, table);

	/* ESRCH: no such route (or no such table); ENOENT from some kernels' IPv6 paths. */
	return r == -ESRCH || r == -ENOENT || r == -EADDRNOTAVAIL ? 0 : r;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[RTA_MAX + 1] = { 0 };
	struct attrs a = { tb, RTA_MAX };
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct collect *c = data;
	struct wgt_rtnl_route *rt;
	const void *dst = NULL;
	uint32_t table;
	size_t len;

	if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*rtm)) ||
	    (c->family != AF_UNSPEC && rtm->rtm_family != c->family) ||
	    addr_len(rtm->rtm_family, rtm->rtm_dst_len, &len))
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*rtm), attr_cb, &a) < 0)
		return MNL_CB_OK;
	/* Multipath routes carry their interfaces in RTA_MULTIPATH: never ours. */
	if (!tb[RTA_OIF] || mnl_attr_validate(tb[RTA_OIF], MNL_TYPE_U32) < 0 ||
	    mnl_attr_get_u32(tb[RTA_OIF]) != c->ifindex)
		return MNL_CB_OK;
	table = rtm->rtm_table;
	if (tb[RTA_TABLE] && mnl_attr_validate(tb[RTA_TABLE], MNL_TYPE_U32) == 0)
		table = mnl_attr_get_u32(tb[RTA_TABLE]);
	if (c->table && table != c->table)
		return MNL_CB_OK;
	if (rtm->rtm_dst_len) {
		dst = attr_bytes(tb[RTA_DST], len);
		if (!dst)
			return MNL_CB_OK;
	}
	rt = collect_slot(c);
	if (!rt)
		return MNL_CB_ERROR;
	rt->family = rtm->rtm_family;
	if (dst)
		memcpy(rt->dst, dst, len);
	rt->prefix = rtm->rtm_dst_len;
	rt->table = table;
	rt->protocol = rtm->rtm_protocol;
	rt->type = rtm->rtm_type;
	return MNL_CB_OK;
}

static struct nlmsghdr *build_route_dump(char *buf, const struct collect *c)
{
	struct nlmsghdr *nlh = put_header(buf, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)c->family;
	return nlh;
}

int wgt_rtnl_route_list(unsigned ifindex, int family, uint32_t table, wgt_rtnl_route_fn fn,
			void *arg)
{
	struct collect c = {
		.ifindex = ifindex,
		.family = family,
		.table = table,
		.item_size = sizeof(struct wgt_rtnl_route),
	};
	int r;

	if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	r = dump(build_route_dump, route_cb, &c);
	for (size_t i = 0; !r && i < c.n; i++)
		r = fn(arg, (const struct wgt_rtnl_route *)c.items + i);
	free(c.items);
	return r;
}
