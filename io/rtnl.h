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

#endif
