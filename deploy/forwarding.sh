#!/bin/sh
# SPDX-License-Identifier: MIT
# Lets tunnel clients reach the network behind the gateway: IPv4 and IPv6
# forwarding on, and an nftables masquerade rule for traffic that came in on the
# WireGuard interface and leaves by another one. Idempotent (the table is
# replaced). Needs root (or a privileged container). Used by the quickstart's
# --forwarding option and the Kubernetes "forwarding" component.
#   forwarding.sh [INTERFACE]        (default: $WGATE_INTERFACE, else wg0)
set -eu
iface=${1:-${WGATE_INTERFACE:-wg0}}

echo 1 >/proc/sys/net/ipv4/ip_forward
echo 1 >/proc/sys/net/ipv6/conf/all/forwarding
nft -f - <<NFT
table inet wgate_nat
delete table inet wgate_nat
table inet wgate_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		iifname "$iface" oifname != "$iface" masquerade
	}
}
NFT
echo "forwarding: on for $iface (IPv4, IPv6, masquerade in table inet wgate_nat)"
