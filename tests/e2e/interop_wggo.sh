#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop with Debian's wireguard-go: wgt_probe (our protocol core over a plain UDP socket)
# in one network namespace handshakes and pings wireguard-go, configured only with `wg`,
# in another, as initiator and as responder, with and without a pre-shared key.
#
#   ns wgt-a-PID                                ns wgt-b-PID
#   wgt_probe  192.168.241.1:51000  <-veth->  192.168.241.2:51001 wireguard-go (wgoPID)
#   tunnel 10.99.0.1                                             tunnel 10.99.0.2/24
#
# Usage: interop_wggo.sh PATH/TO/wgt_probe. Exits 77 (skip) when not root or a tool is missing.
set -euo pipefail

PROBE=${1:-}
if [ -z "$PROBE" ]; then
	echo "usage: $0 PATH/TO/wgt_probe" >&2
	exit 2
fi

skip() {
	echo "SKIP: $*"
	exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces and a TUN device)"
for tool in wireguard-go wg ip ping ss; do
	command -v "$tool" >/dev/null ||
		skip "$tool not found: apt-get install wireguard-go wireguard-tools iproute2 iputils-ping"
done
[ -c /dev/net/tun ] || skip "/dev/net/tun is missing"
[ -x "$PROBE" ] || { echo "FAIL: $PROBE is not executable" >&2; exit 1; }

# Names carry our PID: namespaces and interfaces are per test run, and the UAPI
# socket /var/run/wireguard/IFNAME.sock lives in the one shared filesystem.
NS_A=wgt-a-$$
NS_B=wgt-b-$$
IFNAME=wgo$$
IFNAME=${IFNAME:0:15}
VETH_A=wgtva$$
VETH_A=${VETH_A:0:15}
VETH_B=wgtvb$$
VETH_B=${VETH_B:0:15}
ADDR_A=192.168.241.1
ADDR_B=192.168.241.2
PORT_A=51000
PORT_B=51001
TUN_A=10.99.0.1
TUN_B=10.99.0.2
SOCK=/var/run/wireguard/$IFNAME.sock

WGGO_PID=
PROBE_PID=
TMP=$(mktemp -d /tmp/wgt-interop.XXXXXX)
umask 077

cleanup() {
	local rc=$?

	set +e
	if [ -n "$PROBE_PID" ]; then
		kill "$PROBE_PID" 2>/dev/null
		wait "$PROBE_PID" 2>/dev/null
	fi
	# Before the kill, so that the tail shows the failure and not the shutdown.
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -s "$TMP/wireguard-go.log" ]; then
		echo "---- wireguard-go log (last 40 lines) ----"
		tail -n 40 "$TMP/wireguard-go.log"
	fi
	if [ -n "$WGGO_PID" ]; then
		kill "$WGGO_PID" 2>/dev/null
		wait "$WGGO_PID" 2>/dev/null
	fi
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	# wireguard-go removes its socket on SIGTERM; this only catches a crash.
	[ -S "$SOCK" ] && rm -f "$SOCK"
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*"
	exit 1
}

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
	local what=$1 tries=$(($2 * 20))

	shift 2
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || fail "timed out waiting for $what"
		sleep 0.05
	done
}

wggo_alive() {
	kill -0 "$WGGO_PID" 2>/dev/null
}

uapi_ready() {
	wggo_alive || fail "wireguard-go exited early"
	[ -S "$SOCK" ] && in_b wg show "$IFNAME"
}

probe_bound() {
	kill -0 "$PROBE_PID" 2>/dev/null || fail "wgt_probe exited before binding its socket"
	in_a ss -Hlun "sport = :$PORT_A" | grep -q .
}

start=$(date +%s%N)

# Topology.
ip netns add "$NS_A"
ip netns add "$NS_B"
in_a ip link set lo up
in_b ip link set lo up
ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
in_a ip addr add "$ADDR_A/24" dev "$VETH_A"
in_b ip addr add "$ADDR_B/24" dev "$VETH_B"
in_a ip link set "$VETH_A" up
in_b ip link set "$VETH_B" up

# Keys, all made by the real tool.
wg genkey >"$TMP/wggo.key"
wg genkey >"$TMP/probe.key"
wg genpsk >"$TMP/psk"
wg genpsk >"$TMP/wrong.psk"
WGGO_PUB=$(wg pubkey <"$TMP/wggo.key")
PROBE_PUB=$(wg pubkey <"$TMP/probe.key")
WRONG_PUB=$(wg genkey | wg pubkey)

# wireguard-go in the foreground of its own background job, logging verbosely.
LOG_LEVEL=verbose ip netns exec "$NS_B" wireguard-go -f "$IFNAME" >"$TMP/wireguard-go.log" 2>&1 &
WGGO_PID=$!
wait_for "the wireguard-go UAPI socket $SOCK" 10 uapi_ready
in_b wg set "$IFNAME" private-key "$TMP/wggo.key" listen-port "$PORT_B"
in_b ip addr add "$TUN_B/24" dev "$IFNAME"
in_b ip link set "$IFNAME" up
echo "wireguard-go $(wireguard-go --version | head -n 1 | awk '{print $2}') up as $IFNAME in $NS_B, listening on $ADDR_B:$PORT_B"

# configure_peer [PSK_FILE]: the probe as wireguard-go's only peer, from scratch,
# so that no session or handshake state carries over from the previous case.
configure_peer() {
	local args=(peer "$PROBE_PUB" allowed-ips "$TUN_A/32" endpoint "$ADDR_A:$PORT_A")

	[ $# -gt 0 ] && args+=(preshared-key "$1")
	in_b wg set "$IFNAME" peer "$PROBE_PUB" remove
	in_b wg set "$IFNAME" "${args[@]}"
}

# probe MODE PEER_PUB [PSK_FILE] [EXTRA...]: runs wgt_probe in ns A, output to $TMP/probe.log.
probe() {
	local mode=$1 peer_pub=$2 psk=${3:-}
	local args=(--private-key "$(cat "$TMP/probe.key")" --peer-public-key "$peer_pub"
		--endpoint "$ADDR_B:$PORT_B" --listen-port "$PORT_A"
		--tunnel-ip "$TUN_A" --peer-tunnel-ip "$TUN_B")

	shift 3 || shift $#
	[ -n "$psk" ] && args+=(--preshared-key "$(cat "$psk")")
	in_a "$PROBE" "$mode" "${args[@]}" "$@"
}

show_log() {
	sed 's/^/    /' "$TMP/probe.log"
}

# initiate_case NAME DESCRIPTION [PSK_FILE]
initiate_case() {
	local name=$1 what=$2 rc=0

	shift 2
	echo "== case ($name): $what"
	configure_peer "$@"
	probe initiate "$WGGO_PUB" "${1:-}" --timeout 10 >"$TMP/probe.log" 2>&1 || rc=$?
	show_log
	[ "$rc" -eq 0 ] || fail "case ($name): wgt_probe exited $rc"
	echo "PASS ($name)"
}

# respond_case NAME DESCRIPTION [PSK_FILE]: wireguard-go initiates because ns B pings us.
respond_case() {
	local name=$1 what=$2 rc=0 ping_rc=0

	shift 2
	echo "== case ($name): $what"
	configure_peer "$@"
	probe respond "$WGGO_PUB" "${1:-}" --timeout 15 >"$TMP/probe.log" 2>&1 &
	PROBE_PID=$!
	wait_for "wgt_probe to bind UDP port $PORT_A" 5 probe_bound
	in_b ping -c 1 -W 5 "$TUN_A" >"$TMP/ping.log" 2>&1 || ping_rc=$?
	wait "$PROBE_PID" || rc=$?
	PROBE_PID=
	show_log
	sed 's/^/    ping: /' "$TMP/ping.log"
	[ "$ping_rc" -eq 0 ] || fail "case ($name): ping from wireguard-go's side through the tunnel failed"
	[ "$rc" -eq 0 ] || fail "case ($name): wgt_probe exited $rc"
	echo "PASS ($name)"
}

# negative_case NAME DESCRIPTION PEER_PUB [PSK_FILE]: the handshake must not complete.
negative_case() {
	local name=$1 what=$2 peer_pub=$3 psk=${4:-} rc=0

	echo "== case ($name): $what"
	probe initiate "$peer_pub" "$psk" --timeout 3 >"$TMP/probe.log" 2>&1 || rc=$?
	show_log
	# 3 is the probe's "no handshake completed": anything else is a different failure.
	[ "$rc" -eq 3 ] || fail "case ($name): expected wgt_probe to exit 3 (no handshake), got $rc"
	echo "PASS ($name): no handshake, as it must be"
}

initiate_case a "wgt_probe initiates, no pre-shared key, pings $TUN_B"
initiate_case b "wgt_probe initiates with a pre-shared key, pings $TUN_B" "$TMP/psk"
respond_case c "wireguard-go initiates (ping $TUN_A from $NS_B), wgt_probe responds"
respond_case c2 "as (c) with a pre-shared key" "$TMP/psk"
# The peer stays configured with the PSK from (c2) for the negative cases.
negative_case d "wgt_probe initiates with a WRONG peer public key (bad mac1: wireguard-go must stay silent)" \
	"$WRONG_PUB" "$TMP/psk"
negative_case e "wgt_probe initiates with a WRONG pre-shared key (wireguard-go answers, the response must not decrypt)" \
	"$WGGO_PUB" "$TMP/wrong.psk"

echo "== wireguard-go's view"
in_b wg show "$IFNAME" | sed 's/^/    /'
hs=$(in_b wg show "$IFNAME" latest-handshakes | awk -v k="$PROBE_PUB" '$1 == k { print $2 }')
[ -n "$hs" ] && [ "$hs" -gt 0 ] || fail "wg show latest-handshakes has no handshake for the probe's key"
echo "PASS: latest handshake with the probe at $(date -d "@$hs" '+%H:%M:%S')"

end=$(date +%s%N)
echo "all interop cases passed in $(((end - start) / 1000000)) ms"
