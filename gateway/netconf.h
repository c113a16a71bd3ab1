/* SPDX-License-Identifier: MIT */
/* The interface side of a configuration file (MTU, Address, link up, routes) applied as a difference. */
#ifndef WGT_GATEWAY_NETCONF_H
#define WGT_GATEWAY_NETCONF_H

#include <stdint.h>

struct wgt_conf;
struct wgt_device;

/* What one apply did (also after a partial failure). */
struct wgt_netconf_stats {
	unsigned addr_added, addr_removed;
	unsigned routes_added, routes_removed;
	uint32_t mtu;        /* the interface's MTU afterwards; 0: unknown */
};

/*
 * Brings the interface from what `old` asked for (NULL: nothing, at start) to
 * what `new` asks for, through rtnetlink, in this order:
 *   MTU       set when `new` gives one and the interface's differs;
 *   Address   the old file's addresses that the new one lacks removed, then
 *             the new file's that the interface lacks added (addresses that
 *             neither file names, added by hand, are never touched);
 *   link up;
 *   routes    one per distinct allowed-IP prefix of all peers (masked), in the
 *             main table (Table=auto) or table_id, none with Table=off; those
 *             the interface lacks added, the old file's that the new one
 *             lacks removed (a table change moves them all). With Table=auto a
 *             /0 is not routed: wg-quick turns it into fwmark policy routing,
 *             which wgate does not do; one warning names the peer.
 * Present addresses and routes are read back first, so a step that failed or
 * was undone by hand is retried by the next apply. Each failure is logged
 * with its cause and the address or prefix, and the rest still runs.
 * Logs one summary line ("wg0: addresses +2 -1, routes +10 -3, mtu 1420").
 * Returns 0 or the first -errno; `stats` (may be NULL) says what was done.
 * Control thread only (blocking netlink requests).
 */
int wgt_netconf_apply_link(const char *ifname, unsigned ifindex, const struct wgt_conf *old,
			   const struct wgt_conf *new, struct wgt_netconf_stats *stats);

/*
 * The same for the device's interface; a new MTU reaches the workers' padding
 * (dev->mtu) at once. Control thread only.
 */
int wgt_netconf_apply(struct wgt_device *dev, const struct wgt_conf *old,
		      const struct wgt_conf *new);

#endif
