#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What a client sees when a load balancer moves it to another gateway node (the
# scale-out of deploy/README.md): two wgate nodes run the SAME --config (one key, one
# peer list), both holding a virtual address VIP; a router in front sends VIP to node
# 1; then node 1 fails (its link goes) and the router sends VIP to node 2, as a load
# balancer with source affinity does when a node is lost or drained. A Debian wireguard-go client pings the gateway's tunnel address every
# 100 ms throughout. Prints the gap: the time from the switch to the first reply
# through the new node, and whether the client's handshake counter moved.
#
# Usage (root): perf/failover.sh [WGATE]     (default: build/gateway/wgate)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WGATE=${1:-$ROOT/build/gateway/wgate}
# shellcheck source=../tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
e2e_require_root wg ip ping wireguard-go
e2e_init failover

VIP=10.99.0.100
C=wgt$$c R=wgt$$r N1=wgt$$n1 N2=wgt$$n2
for ns in "$C" "$R" "$N1" "$N2"; do ns_add "$ns"; done
# link NS_X ADDR_X NS_Y ADDR_Y NAME: a veth between two namespaces, /24 each side.
link() {
	ip link add "$5x" netns "$1" type veth peer name "$5y" netns "$3"
	ip -n "$1" addr add "$2/24" dev "$5x"
	ip -n "$3" addr add "$4/24" dev "$5y"
	ip -n "$1" link set "$5x" up
	ip -n "$3" link set "$5y" up
}
link "$C" 10.99.1.2 "$R" 10.99.1.1 "fc$$"
link "$N1" 10.99.2.2 "$R" 10.99.2.1 "f1$$"
link "$N2" 10.99.3.2 "$R" 10.99.3.1 "f2$$"
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
ip -n "$C" route add default via 10.99.1.1
for n in "$N1" "$N2"; do
	ip -n "$n" route add default via "10.99.$([ "$n" = "$N1" ] && echo 2 || echo 3).1"
	ip -n "$n" addr add "$VIP/32" dev lo
done
ip -n "$R" route add "$VIP/32" via 10.99.2.2

wg_keys gw
wg_keys cl
cat >"$E2E_TMP/wg0.conf" <<CONF
[Interface]
PrivateKey = $(cat "$E2E_TMP/gw.key")
ListenPort = 51820
Address = 10.98.0.1/24

[Peer]
# Name = client
PublicKey = $(cat "$E2E_TMP/cl.pub")
AllowedIPs = 10.98.0.2/32
CONF
chmod 0600 "$E2E_TMP/wg0.conf"
start_impl "$N1" "$WGATE" "wfa$$" --config "$E2E_TMP/wg0.conf"
start_impl "$N2" "$WGATE" "wfb$$" --config "$E2E_TMP/wg0.conf"
start_impl "$C" "$(command -v wireguard-go)" "wfc$$"
in_ns "$C" wg set "wfc$$" private-key "$E2E_TMP/cl.key" peer "$(cat "$E2E_TMP/gw.pub")" \
	endpoint "$VIP:51820" allowed-ips 10.98.0.1/32
ip -n "$C" addr add 10.98.0.2/24 dev "wfc$$"
ip -n "$C" link set "wfc$$" up
wait_for "the client to reach node 1" 10 in_ns "$C" ping -c 1 -W 1 10.98.0.1

# 100 ms pings with timestamps for the whole run.
e2e_spawn "$E2E_TMP/ping.log" ip netns exec "$C" stdbuf -oL ping -D -O -i 0.1 -W 1 10.98.0.1
sleep 3
hs_before=$(in_ns "$C" wg show "wfc$$" latest-handshakes | awk '{ print $2 }')
t_switch=$(date +%s.%N)
# Node 1 fails (its link goes) and the balancer sends VIP to node 2.
ip -n "$R" link del "f1$$y"
ip -n "$R" route replace "$VIP/32" via 10.99.3.2
echo "node 1 gone, VIP sent to node 2 at $t_switch"
# The first reply after the switch that node 2 carried: its rx counter moves.
node2_rx() {
	[ "$(in_ns "$N2" wg show "wfb$$" transfer | awk '{ print $2 }')" -gt 0 ]
}
wait_for "node 2 to carry the client's traffic" 180 node2_rx
first_reply() {
	awk -v t="$t_switch" '/bytes from/ { ts = substr($1, 2, length($1) - 2); if (ts + 0 > t + 0) { print ts; exit } }' "$E2E_TMP/ping.log"
}
wait_for "a reply through node 2" 60 test -n "$(first_reply)"
t_first=$(first_reply)
hs_after=$(in_ns "$C" wg show "wfc$$" latest-handshakes | awk '{ print $2 }')
lost=$(awk -v t="$t_switch" -v f="$t_first" '/no answer yet/ { ts = substr($1, 2, length($1) - 2); if (ts > t && ts < f) n++ } END { print n + 0 }' "$E2E_TMP/ping.log")
awk -v s="$t_switch" -v f="$t_first" -v l="$lost" -v a="$hs_before" -v b="$hs_after" 'BEGIN {
	printf "failover: first reply through node 2 %.1f s after the switch, %d pings unanswered; the client handshook again (%s -> %s)\n", f - s, l, a, b }'
