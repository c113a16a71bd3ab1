#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wg-quick with wgate as its userspace implementation: `wg-quick up` on a machine
# without the WireGuard module runs $WG_QUICK_USERSPACE_IMPLEMENTATION IFACE, which must
# daemonize once ready; wg-quick then configures it (wg setconf, addresses, MTU, routes),
# the tunnel must carry ping both ways, and `wg-quick down` must stop the daemon.
#
# Usage: wg_quick.sh WGATE
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
e2e_require_root wg wg-quick ip ping
e2e_require_impl "$IMPL"
e2e_init wg_quick

two_sides wq
# wg-quick tries the kernel's WireGuard first and runs the userspace implementation only
# when that fails and the module is absent: on a machine with the module, wgate would
# never be started (and the checks below would test the kernel).
if [ -e /sys/module/wireguard ] || ip -n "$NS_A" link add wgqprobe type wireguard 2>/dev/null; then
	ip -n "$NS_A" link del wgqprobe 2>/dev/null || true
	e2e_skip "the WireGuard kernel module is available: wg-quick would use it instead of wgate"
fi
wg_keys a
wg_keys b

# write_conf IFACE KEY ADDRESS PORT PEER_PUB PEER_ALLOWED PEER_ENDPOINT
write_conf() {
	cat >"$E2E_TMP/$1.conf" <<CONF
[Interface]
PrivateKey = $(cat "$E2E_TMP/$2.key")
Address = $3
ListenPort = $4
MTU = 1380

[Peer]
PublicKey = $(cat "$E2E_TMP/$5.pub")
AllowedIPs = $6
Endpoint = $7
CONF
}
write_conf "$IF_A" a 10.241.0.1/24 51820 b 10.241.0.2/32,10.242.0.0/16 "$E2E_UNDER4_B:51821"
write_conf "$IF_B" b 10.241.0.2/24 51821 a 10.241.0.1/32 "$E2E_UNDER4_A:51820"

# quick_up NS IFACE: wg-quick up with wgate; its output and the daemon's log to IFACE.log.
quick_up() {
	local log="$E2E_TMP/$2.log"

	e2e_own_iface "$2"
	e2e_add_log "wg-quick up $2 (wgate) in $1" "$log"
	# LOG_LEVEL keeps the daemon's stderr (the log) after it daemonizes.
	in_ns "$1" env WG_QUICK_USERSPACE_IMPLEMENTATION="$IMPL" LOG_LEVEL=info \
		wg-quick up "$E2E_TMP/$2.conf" >>"$log" 2>&1 ||
		e2e_fail "wg-quick up $2 failed"
}

# ---- (a) wg-quick up brings wgate up and configures it
quick_up "$NS_A" "$IF_A"
quick_up "$NS_B" "$IF_B"
for side in "$NS_A $IF_A b" "$NS_B $IF_B a"; do
	# shellcheck disable=SC2086 # split "NS IFACE KEY" on purpose
	set -- $side
	[ -S "$(e2e_sock "$2")" ] || e2e_fail "wg-quick up $2 returned before the UAPI socket existed"
	peers=$(in_ns "$1" wg show "$2" peers)
	[ "$peers" = "$(cat "$E2E_TMP/$3.pub")" ] || e2e_fail "$2: wg show peers says '$peers'"
	mtu=$(ip -n "$1" -o link show dev "$2" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p')
	[ "$mtu" = 1380 ] || e2e_fail "$2: MTU $mtu, wg-quick set 1380"
done
ip -n "$NS_A" route show dev "$IF_A" | grep -q '^10.242.0.0/16' ||
	e2e_fail "$IF_A: wg-quick did not add the route for the peer's 10.242.0.0/16"
e2e_pass a "wg-quick up: daemonized wgate, peer, MTU 1380 and routes configured on both sides"

# ---- (b) traffic
wait_for "ping A->B through the tunnel" 15 in_ns "$NS_A" ping -c 1 -W 1 10.241.0.2
in_ns "$NS_B" ping -c 2 -W 2 -i 0.2 10.241.0.1 >/dev/null || e2e_fail "ping B->A failed"
e2e_pass b "ping A<->B through the tunnel"

# ---- (c) wg-quick down stops the daemon and removes the interface and socket
pid=$(ip netns pids "$NS_A")
[ -n "$pid" ] || e2e_fail "no daemon runs in $NS_A"
in_ns "$NS_A" wg-quick down "$E2E_TMP/$IF_A.conf" >>"$E2E_TMP/$IF_A.log" 2>&1 ||
	e2e_fail "wg-quick down $IF_A failed"
for p in $pid; do
	wait_gone "$p" 5 || e2e_fail "wgate (pid $p) still runs 5 s after wg-quick down"
done
[ ! -e "$(e2e_sock "$IF_A")" ] || e2e_fail "the UAPI socket of $IF_A outlived wg-quick down"
! ip -n "$NS_A" link show dev "$IF_A" >/dev/null 2>&1 || e2e_fail "$IF_A still exists"
e2e_pass c "wg-quick down: the daemon exited, its socket and interface are gone"
echo "wg_quick.sh: all checks passed in $(e2e_elapsed_ms) ms"
