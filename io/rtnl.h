/* SPDX-License-Identifier: MIT */
/* rtnetlink link settings through libmnl. */
#ifndef WGT_IO_RTNL_H
#define WGT_IO_RTNL_H

#include <stdint.h>

/*
 * Caps the GSO super-packets the stack hands the interface (IFLA_GSO_MAX_SEGS),
 * so a TSO/USO read from a TUN queue never splits into more segments than
 * the caller can hold. Returns 0 or -errno (-EOPNOTSUPP when the kernel does
 * not take the attribute on RTM_NEWLINK). Control thread only (blocking).
 */
int wgt_rtnl_set_gso_max_segs(unsigned ifindex, uint32_t max_segs);

#endif
