#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The link's administrative state, as the kernel module treats it: `ip link set down`
# stops the device's peers and drops their sessions (so the tunnel carries nothing and
# handshakes go unanswered), `ip link set up` starts them again, and the next packet
# needs, and gets, a new handshake.
#
# Usage: link_state.sh WGATE
# Exits 0 when every check passed, 1 on the first failed one, 77 (skip) when not root
# or a tool is missing, 2 on a usage error.
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 WGATE" >&2
	exit 2
}
IMPL=$1

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_require_root wg ip ping
e2e_require_impl "$IMPL"
e2e_init link_state

two_sides wl
start_impl "$NS_A" "$IMPL" "$IF_A" --tun-threads 2
start_impl "$NS_B" "$IMPL" "$IF_B" --tun-threads 2
wg_keys a
wg_keys b
in_ns "$NS_A" wg set "$IF_A" private-key "$E2E_TMP/a.key" listen-port 51820 \
	peer "$(cat "$E2E_TMP/b.pub")" allowed-ips 10.241.0.2/32 endpoint "$E2E_UNDER4_B:51821"
in_ns "$NS_B" wg set "$IF_B" private-key "$E2E_TMP/b.key" listen-port 51821 \
	peer "$(cat "$E2E_TMP/a.pub")" allowed-ips 10.241.0.1/32 endpoint "$E2E_UNDER4_A:51820"
ip -n "$NS_A" addr add 10.241.0.1/24 dev "$IF_A"
ip -n "$NS_B" addr add 10.241.0.2/24 dev "$IF_B"
ip -n "$NS_A" link set "$IF_A" up
ip -n "$NS_B" link set "$IF_B" up

# handshake_time NS IFACE PEER_PUB: the peer's latest handshake, seconds since the epoch.
handshake_time() {
	in_ns "$1" wg show "$2" latest-handshakes | awk -v k="$3" '$1 == k { print $2 }'
}

wait_for "ping A->B through the tunnel" 15 in_ns "$NS_A" ping -c 1 -W 1 10.241.0.2
first=$(handshake_time "$NS_A" "$IF_A" "$(cat "$E2E_TMP/b.pub")")
[ "${first:-0}" -gt 0 ] || e2e_fail "no handshake after the first ping"
e2e_pass a "link up: handshake and ping A->B"

ip -n "$NS_A" link set "$IF_A" down
# B still has its session: its packets to A must go unanswered while A is down.
! in_ns "$NS_B" ping -c 2 -W 1 -i 0.3 10.241.0.1 >/dev/null 2>&1 ||
	e2e_fail "ping B->A answered while A's link was down"
e2e_pass b "link down: A answers nothing"

# latest-handshakes counts seconds: make sure a new handshake shows as a later second.
later_than() { [ "$(date +%s)" -gt "$1" ]; }
wait_until 3 later_than "$first" || true
ip -n "$NS_A" link set "$IF_A" up
wait_for "ping A->B after the link came back" 15 in_ns "$NS_A" ping -c 1 -W 1 10.241.0.2
second=$(handshake_time "$NS_A" "$IF_A" "$(cat "$E2E_TMP/b.pub")")
[ "${second:-0}" -gt "$first" ] ||
	e2e_fail "no new handshake after down/up (latest handshake $first, then ${second:-none})"
e2e_pass c "link up again: the session was dropped at down, a new handshake carries ping"
echo "link_state.sh: all checks passed in $(e2e_elapsed_ms) ms"
