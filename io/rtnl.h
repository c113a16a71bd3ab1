/* SPDX-License-Identifier: MIT */
/* rtnetlink link settings through libmnl. */
#ifndef WGT_IO_RTNL_H
#define WGT_IO_RTNL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Caps the GSO super-packets the stack hands the interface (IFLA_GSO_MAX_SEGS),
 * so a TSO/USO read from a TUN queue never splits into more segments than
 * the caller can hold. Returns 0 or -errno (-EOPNOTSUPP when the kernel does
 * not take the attribute on RTM_NEWLINK). Control thread only (blocking).
 */
int wgt_rtnl_set_gso_max_segs(unsigned ifindex, uint32_t max_segs);

/*
 * A netlink socket subscribed to link changes (RTNLGRP_LINK), nonblocking,
 * for the control loop to watch. Returns 0 and the fd, or -errno.
 */
int wgt_rtnl_link_monitor_open(int *ret_fd);

/* What wgt_rtnl_link_monitor_read() saw for the interface. */
enum {
	WGT_RTNL_LINK_UP = 1U << 0,      /* a message with IFF_UP set */
	WGT_RTNL_LINK_DOWN = 1U << 1,    /* a message with IFF_UP clear */
	WGT_RTNL_LINK_GONE = 1U << 2,    /* RTM_DELLINK */
};

/*
 * Drains the monitor socket and reports, as WGT_RTNL_LINK_* bits, what the
 * messages about ifindex said; the last state wins when both UP and DOWN
 * are seen (*ret_up). Returns the bits, or -errno (-ENOBUFS: messages were
 * lost, so re-read the state another way). Control thread only.
 */
int wgt_rtnl_link_monitor_read(int fd, unsigned ifindex, bool *ret_up);

/*
 * Interface settings a configuration file asks for (Address, MTU, the link up,
 * a route per allowed IP). Each is one blocking request and acknowledgement on
 * a fresh NETLINK_ROUTE socket: control thread only. They return 0 or -errno
 * from the kernel; `addr` is in network byte order (4 bytes for AF_INET, 16 for
 * AF_INET6).
 */
/* Adds an address; an address already there is not an error (0). */
int wgt_rtnl_addr_add(unsigned ifindex, int family, const void *addr, uint8_t prefix);
/* Removes an address; one already gone is not an error (0). */
int wgt_rtnl_addr_del(unsigned ifindex, int family, const void *addr, uint8_t prefix);
/*
 * Calls fn for every address of the interface (both families); stops early when
 * fn returns non-zero and returns that value, else 0 or -errno. The dump is read
 * whole (every NLM_F_MULTI part) before fn runs, so fn may change addresses.
 */
typedef int (*wgt_rtnl_addr_fn)(void *arg, int family, const uint8_t *addr, uint8_t prefix);
int wgt_rtnl_addr_list(unsigned ifindex, wgt_rtnl_addr_fn fn, void *arg);
int wgt_rtnl_set_mtu(unsigned ifindex, uint32_t mtu);
int wgt_rtnl_set_up(unsigned ifindex, bool up);
/*
 * Adds (or replaces: NLM_F_REPLACE) the route dst/prefix through the interface
 * in routing table `table` (RT_TABLE_MAIN = 254), protocol RTPROT_BOOT, scope link;
 * host bits of dst are masked off. Removing one already gone (or a table that
 * does not exist) is not an error (0); only an RTPROT_BOOT route is removed.
 */
int wgt_rtnl_route_add(unsigned ifindex, int family, const void *dst, uint8_t prefix,
		       uint32_t table);
int wgt_rtnl_route_del(unsigned ifindex, int family, const void *dst, uint8_t prefix,
		       uint32_t table);

/* The interface's MTU (IFLA_MTU of RTM_GETLINK). Returns 0 or -errno. */
int wgt_rtnl_get_mtu(unsigned ifindex, uint32_t *ret_mtu);

/* One route of a dump: its destination, routing table, protocol and type. */
struct wgt_rtnl_route {
	int family;         /* AF_INET or AF_INET6 */
	uint8_t dst[16];    /* network byte order; IPv4 uses the first 4 bytes */
	uint8_t prefix;
	uint32_t table;     /* RTA_TABLE when present, else rtm_table */
	uint8_t protocol;   /* RTPROT_* (RTPROT_BOOT for wgt_rtnl_route_add's) */
	uint8_t type;       /* RTN_* */
};
/*
 * Calls fn for every route of `family` (AF_UNSPEC: both) whose output
 * interface is ifindex, in `table` (0: every table); stops early when fn
 * returns non-zero and returns that value, else 0 or -errno. The dump is
 * read whole before fn runs, so fn may change routes. Control thread only.
 */
typedef int (*wgt_rtnl_route_fn)(void *arg, const struct wgt_rtnl_route *rt);
int wgt_rtnl_route_list(unsigned ifindex, int family, uint32_t table, wgt_rtnl_route_fn fn,
			void *arg);

#endif
