#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Interop of two daemons that take the wireguard-go command line (wgate, wireguard-go),
# in the spirit of the kernel's selftests/wireguard/netns.sh: a tunnel between two
# network namespaces, configured only with the real `wg` tool, that must carry ping
# and iperf3 both ways and keep `wg show` / `wg showconf` / `wg syncconf` honest.
#
#   ns wgt$$a                                        ns wgt$$b
#   IMPL_A -f IF wga$$   192.168.241.1 <-veth-> 192.168.241.2   IMPL_B -f IF wgb$$
#   udp 51820            fd00:241::1             fd00:241::2    udp 51821
#   tunnel 10.241.0.1/24 fd00:ab::1/64           tunnel 10.241.0.2/24 fd00:ab::2/64
#
# Usage: tunnel.sh IMPL_A IMPL_B [--threads N] [--mode initiator|responder] [--underlay 4|6]
#   An implementation whose basename is `wgate` gets `--tun-threads N` (default 2);
#   wireguard-go gets no extra flag. initiator: only A knows B's endpoint; responder:
#   only B knows A's. The endpoint is on the IPv4 underlay for initiator and on the
#   IPv6 underlay for responder unless --underlay says otherwise.
# Exits 0 when every check passed, 1 on the first failed one, 77 (skip) when not root
# or a tool is missing, 2 on a usage error.
# `A && B || e2e_fail` is meant: e2e_fail exits.
# shellcheck disable=SC2015
set -euo pipefail

usage() {
	echo "usage: $0 IMPL_A IMPL_B [--threads N] [--mode initiator|responder] [--underlay 4|6]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
IMPL_A=$1
IMPL_B=$2
shift 2
THREADS=2
MODE=initiator
UNDERLAY=
while [ $# -gt 0 ]; do
	case $1 in
	--threads)
		[ $# -ge 2 ] || usage
		THREADS=$2
		shift 2
		;;
	--mode)
		[ $# -ge 2 ] || usage
		MODE=$2
		shift 2
		;;
	--underlay)
		[ $# -ge 2 ] || usage
		UNDERLAY=$2
		shift 2
		;;
	*)
		usage
		;;
	esac
done
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || usage
[ "$MODE" = initiator ] || [ "$MODE" = responder ] || usage
if [ -z "$UNDERLAY" ]; then
	UNDERLAY=4
	[ "$MODE" = initiator ] || UNDERLAY=6
fi
[ "$UNDERLAY" = 4 ] || [ "$UNDERLAY" = 6 ] || usage

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_require_root wg ip ping ss iperf3 python3
e2e_require_impl "$IMPL_A"
e2e_require_impl "$IMPL_B"
e2e_init tunnel

NS_A=wgt$$a
NS_B=wgt$$b
IF_A=wga$$
IF_A=${IF_A:0:15}
IF_B=wgb$$
IF_B=${IF_B:0:15}
PORT_A=51820
PORT_B=51821
IPERF_PORT=5201
EXTRA_NET=10.241.1.0/24
KEEPALIVE=25
TMP=$E2E_TMP

if [ "$UNDERLAY" = 4 ]; then
	EP_A=$E2E_UNDER4_A:$PORT_A
	EP_B=$E2E_UNDER4_B:$PORT_B
else
	EP_A=[$E2E_UNDER6_A]:$PORT_A
	EP_B=[$E2E_UNDER6_B]:$PORT_B
fi

# impl_extra IMPL: sets EXTRA to the flags this implementation takes beyond wireguard-go's.
# WGT_E2E_WGATE_ARGS adds flags for wgate only (say --no-tun-offload), for the offload matrix.
impl_extra() {
	EXTRA=()
	if impl_is_wgate "$1"; then
		# shellcheck disable=SC2206 # word splitting of the flag list is intended
		EXTRA=(--tun-threads "$THREADS" ${WGT_E2E_WGATE_ARGS:-})
	fi
}

# peer_col NS IFACE WHAT PEER [COLUMN]: one column of `wg show IFACE WHAT` for PEER.
peer_col() {
	in_ns "$1" wg show "$2" "$3" | awk -v k="$4" -v c="${5:-2}" '$1 == k { print $c }'
}

alive_or_fail() {
	pid_alive "$PID_A" || e2e_fail "$(basename "$IMPL_A") ($IF_A in $NS_A) has died"
	pid_alive "$PID_B" || e2e_fail "$(basename "$IMPL_B") ($IF_B in $NS_B) has died"
}

# ping_ok NS ADDR: up to 5 rounds of `ping -c 3 -W 2`; the first may be spent on the handshake.
ping_ok() {
	local i

	for i in 1 2 3 4 5; do
		if in_ns "$1" ping -q -n -c 3 -W 2 -i 0.2 "$2" >"$TMP/ping.log" 2>&1; then
			return 0
		fi
	done
	return 1
}

# expect_ping SIDE NS ADDR
expect_ping() {
	ping_ok "$2" "$3" && return 0
	alive_or_fail
	e2e_fail "ping from $1 to $3 through the tunnel: no reply in 5 rounds of ping -c 3 -W 2 ($(grep -E 'transmitted|rror' "$TMP/ping.log" | head -n 1))"
}

# expect_no_ping SIDE NS ADDR
expect_no_ping() {
	if in_ns "$2" ping -q -n -c 2 -W 1 -i 0.2 "$3" >"$TMP/ping.log" 2>&1; then
		e2e_fail "ping from $1 to $3 got a reply although $1 has no peer for it"
	fi
}

# ping_all: both directions, IPv4 and IPv6, the initiating side first.
ping_all() {
	if [ "$MODE" = initiator ]; then
		expect_ping A "$NS_A" "$E2E_TUN4_B"
		expect_ping A "$NS_A" "$E2E_TUN6_B"
		expect_ping B "$NS_B" "$E2E_TUN4_A"
		expect_ping B "$NS_B" "$E2E_TUN6_A"
	else
		expect_ping B "$NS_B" "$E2E_TUN4_A"
		expect_ping B "$NS_B" "$E2E_TUN6_A"
		expect_ping A "$NS_A" "$E2E_TUN4_B"
		expect_ping A "$NS_A" "$E2E_TUN6_B"
	fi
}

# expect_endpoint NS IFACE PEER WANT WHO
expect_endpoint() {
	local got

	got=$(peer_col "$1" "$2" endpoints "$3")
	[ "$got" = "$4" ] || e2e_fail "$5: wg show $2 endpoints says '$got', expected '$4'"
}

# ---- topology and daemons
ns_add "$NS_A"
ns_add "$NS_B"
veth_pair "$NS_A" "$NS_B"

impl_extra "$IMPL_A"
start_impl "$NS_A" "$IMPL_A" "$IF_A" "${EXTRA[@]}"
PID_A=$IMPL_PID
echo "A: $IMPL_A -f ${EXTRA[*]}${EXTRA[*]:+ }$IF_A in $NS_A (pid $PID_A)"
impl_extra "$IMPL_B"
start_impl "$NS_B" "$IMPL_B" "$IF_B" "${EXTRA[@]}"
PID_B=$IMPL_PID
echo "B: $IMPL_B -f ${EXTRA[*]}${EXTRA[*]:+ }$IF_B in $NS_B (pid $PID_B)"
echo "mode $MODE: endpoint on the IPv$UNDERLAY underlay"

# ---- (a) configuration with `wg set` on A and `wg setconf` on B, with a pre-shared key
wg_keys a
wg_keys b
wg genpsk >"$TMP/psk"
PUB_A=$(cat "$TMP/a.pub")
PUB_B=$(cat "$TMP/b.pub")
PSK=$(cat "$TMP/psk")

A_PEER=(peer "$PUB_B" preshared-key "$TMP/psk" allowed-ips "$E2E_TUN4_B/32,$E2E_TUN6_B/128")
[ "$MODE" = initiator ] && A_PEER+=(endpoint "$EP_B")
in_ns "$NS_A" wg set "$IF_A" private-key "$TMP/a.key" listen-port "$PORT_A" "${A_PEER[@]}" ||
	e2e_fail "(a) wg set $IF_A was refused"

{
	echo "[Interface]"
	echo "PrivateKey = $(cat "$TMP/b.key")"
	echo "ListenPort = $PORT_B"
	echo
	echo "[Peer]"
	echo "PublicKey = $PUB_A"
	echo "PresharedKey = $PSK"
	echo "AllowedIPs = $E2E_TUN4_A/32, $E2E_TUN6_A/128"
	[ "$MODE" = initiator ] || echo "Endpoint = $EP_A"
} >"$TMP/b.conf"
in_ns "$NS_B" wg setconf "$IF_B" "$TMP/b.conf" || e2e_fail "(a) wg setconf $IF_B was refused"

tun_addr "$NS_A" "$IF_A" "$E2E_TUN4_A/24" "$E2E_TUN6_A/64"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" "$E2E_TUN6_B/64"

# check_config SIDE NS IFACE OWN_PUB PORT PEER_PUB
check_config() {
	local got

	got=$(in_ns "$2" wg show "$3" public-key)
	[ "$got" = "$4" ] || e2e_fail "(a) $1: public key is '$got', expected '$4' (from its private key)"
	got=$(in_ns "$2" wg show "$3" listen-port)
	[ "$got" = "$5" ] || e2e_fail "(a) $1: listening port is '$got', expected $5"
	got=$(in_ns "$2" wg show "$3" peers)
	[ "$got" = "$6" ] || e2e_fail "(a) $1: peers are '$got', expected exactly $6"
	got=$(peer_col "$2" "$3" preshared-keys "$6")
	[ "$got" = "$PSK" ] || e2e_fail "(a) $1: the peer's pre-shared key reads back as '$got'"
}
check_config A "$NS_A" "$IF_A" "$PUB_A" "$PORT_A" "$PUB_B"
check_config B "$NS_B" "$IF_B" "$PUB_B" "$PORT_B" "$PUB_A"
e2e_pass "(a)" "A configured by wg set, B by wg setconf; keys, ports, peer and PSK read back on both"

# ---- (b) pings both ways over IPv4 and IPv6, started by the side that knows the endpoint
if [ "$MODE" = initiator ]; then
	expect_endpoint "$NS_B" "$IF_B" "$PUB_A" "(none)" "(b) B before any traffic"
else
	expect_endpoint "$NS_A" "$IF_A" "$PUB_B" "(none)" "(b) A before any traffic"
fi
ping_all
# The side that was not told the endpoint learned it from the handshake.
expect_endpoint "$NS_A" "$IF_A" "$PUB_B" "$EP_B" "(b) A after the handshake"
expect_endpoint "$NS_B" "$IF_B" "$PUB_A" "$EP_A" "(b) B after the handshake"
e2e_pass "(b)" "$MODE: ping A<->B over IPv4 and IPv6; the endpoint was learned from the handshake"

# ---- (c) both sides record the handshake
for side in A B; do
	if [ "$side" = A ]; then
		hs=$(peer_col "$NS_A" "$IF_A" latest-handshakes "$PUB_B")
	else
		hs=$(peer_col "$NS_B" "$IF_B" latest-handshakes "$PUB_A")
	fi
	[[ $hs =~ ^[0-9]+$ ]] && [ "$hs" -gt 0 ] ||
		e2e_fail "(c) $side: wg show latest-handshakes is '$hs', expected a nonzero time"
	[ $(($(date +%s) - hs)) -lt 120 ] || e2e_fail "(c) $side: latest handshake $hs is not recent"
done
e2e_pass "(c)" "latest-handshakes nonzero and recent on both sides"

# ---- (d) iperf3 TCP each way; the transfer counters must account for what it moved
# b_listening PORT: a TCP server in B listens on PORT.
b_listening() {
	in_ns "$NS_B" ss -Hltn "sport = :$1" | grep -q .
}

# counters_reached TX_NS TX_IF TX_PEER RX_NS RX_IF RX_PEER TX0 RX0 BYTES
counters_reached() {
	local tx rx

	tx=$(peer_col "$1" "$2" transfer "$3" 3)
	rx=$(peer_col "$4" "$5" transfer "$6" 2)
	[ $((tx - $7)) -ge "$9" ] && [ $((rx - $8)) -ge "$9" ]
}

# iperf_dir DIRECTION TARGET [-R]: the server runs in B, the client in A; -R sends B->A.
iperf_dir() {
	local dir=$1 target=$2 srv tx_ns tx_if tx_peer rx_ns rx_if rx_peer tx0 rx0 tx1 rx1
	local sent recv retrans mss wire limit

	shift 2
	if [ "$dir" = "A->B" ]; then
		tx_ns=$NS_A tx_if=$IF_A tx_peer=$PUB_B rx_ns=$NS_B rx_if=$IF_B rx_peer=$PUB_A
	else
		tx_ns=$NS_B tx_if=$IF_B tx_peer=$PUB_A rx_ns=$NS_A rx_if=$IF_A rx_peer=$PUB_B
	fi
	e2e_spawn "$TMP/iperf3-server.log" ip netns exec "$NS_B" iperf3 -s -1 -p "$IPERF_PORT"
	srv=$E2E_LAST_PID
	wait_for "the iperf3 server in $NS_B" 5 b_listening "$IPERF_PORT"
	tx0=$(peer_col "$tx_ns" "$tx_if" transfer "$tx_peer" 3)
	rx0=$(peer_col "$rx_ns" "$rx_if" transfer "$rx_peer" 2)
	in_ns "$NS_A" iperf3 -c "$target" -p "$IPERF_PORT" -t 3 -J --connect-timeout 5000 "$@" \
		>"$TMP/iperf3.json" 2>"$TMP/iperf3.err" ||
		e2e_fail "(d) $dir: iperf3 -c $target${*:+ $*} failed: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error", "?"))' "$TMP/iperf3.json" 2>/dev/null || head -c 300 "$TMP/iperf3.err")"
	# Retransmitted segments cross the tunnel again: wireguard-go drops enough under
	# load that TCP resends 10-20 % of a run, and every resend is counted.
	read -r sent recv retrans mss < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
end = d["end"]
print(end["sum_sent"]["bytes"], end["sum_received"]["bytes"],
      end["sum_sent"].get("retransmits", 0), d["start"].get("tcp_mss_default") or 1448)' "$TMP/iperf3.json") ||
		e2e_fail "(d) $dir: cannot read the byte counts from iperf3 -J"
	[ "$recv" -gt 0 ] || e2e_fail "(d) $dir: iperf3 moved no data"
	wait_gone "$srv" 5 || e2e_fail "(d) the one-off iperf3 server did not exit after its test"
	stop_pid "$srv" TERM 1 || true
	# Counters may lag the last segment by a moment.
	wait_until 2 counters_reached "$tx_ns" "$tx_if" "$tx_peer" "$rx_ns" "$rx_if" "$rx_peer" \
		"$tx0" "$rx0" "$recv" || true
	tx1=$(peer_col "$tx_ns" "$tx_if" transfer "$tx_peer" 3)
	rx1=$(peer_col "$rx_ns" "$rx_if" transfer "$rx_peer" 2)
	wire=$((sent + retrans * mss))
	limit=$((wire * 115 / 100 + 1048576))
	[ $((tx1 - tx0)) -ge "$recv" ] ||
		e2e_fail "(d) $dir: the sender's tx counter rose by $((tx1 - tx0)), less than the $recv bytes iperf3 received"
	[ $((rx1 - rx0)) -ge "$recv" ] ||
		e2e_fail "(d) $dir: the receiver's rx counter rose by $((rx1 - rx0)), less than the $recv bytes iperf3 received"
	[ $((tx1 - tx0)) -le "$limit" ] ||
		e2e_fail "(d) $dir: the sender's tx counter rose by $((tx1 - tx0)), more than 1.15 x ($sent sent + $retrans x $mss resent) + 1 MiB"
	[ $((rx1 - rx0)) -le "$limit" ] ||
		e2e_fail "(d) $dir: the receiver's rx counter rose by $((rx1 - rx0)), more than 1.15 x ($sent sent + $retrans x $mss resent) + 1 MiB"
	e2e_pass "(d)" "$(awk -v d="$dir" -v t="$target" -v r="$recv" -v tx=$((tx1 - tx0)) -v rx=$((rx1 - rx0)) \
		-v w="$wire" -v n="$retrans" \
		'BEGIN { printf "iperf3 %s (server %s): %.1f MiB, %.0f Mbit/s, %d resent; tx %.3f, rx %.3f x received, tx %.3f x sent+resent", d, t, r / 1048576, r * 8 / 3e6, n, tx / r, rx / r, tx / w }')"
}
# writes_dump LOG PID: SIGUSR1, then "RX WRITES HITS": packets received, TUN writes and
# busy-poll hits (idle periods a nap ended), summed over the workers, from the new dump.
writes_dump() {
	counters_dump "$1" "$2"
	awk '/ worker [0-9]+: rx / { rx += $6
	       for (i = 1; i < NF - 1; i++) {
	           if ($i == "busy-poll" && $(i + 1) == "hits") hits += $(i + 2)
	           if ($i == "tun" && $(i + 1) == "writes") tw += $(i + 2)
	       } }
	     / control: / { last = rx " " tw " " hits + 0; rx = tw = hits = 0 } END { print last }' "$1"
}
# (d) also checks, for wgate<->wgate with every offload on, that B coalesces what it
# decrypts: the sender's TSO super-packets (up to 47 segments here) leave as UDP GSO
# trains, and B should write them back as a few large packets, not segment by segment.
# (Without UDP GSO or GRO, B reads at most 8 datagrams a call, and writes ~7 per write.)
COALESCE=0
if impl_is_wgate "$IMPL_A" && impl_is_wgate "$IMPL_B" && [ -z "${WGT_E2E_WGATE_ARGS:-}" ]; then
	COALESCE=1
	writes_dump "$TMP/$IF_B.log" "$PID_B" >"$TMP/d.writes.before"
fi
iperf_dir "A->B" "$E2E_TUN4_B"
if [ "$COALESCE" -eq 1 ]; then
	writes_dump "$TMP/$IF_B.log" "$PID_B" >"$TMP/d.writes.after"
	read -r rx_pk tun_w hits < <(paste "$TMP/d.writes.before" "$TMP/d.writes.after" |
		awk '{ print $4 - $1, $5 - $2, $6 - $3 }')
	[ "$tun_w" -gt 0 ] && [ "$rx_pk" -ge $((8 * tun_w)) ] ||
		e2e_fail "(d) A->B: B wrote $rx_pk decrypted packets in $tun_w TUN writes, fewer than 8 per write"
	e2e_pass "(d)" "A->B: B coalesced $rx_pk decrypted packets into $tun_w TUN writes ($(awk -v r="$rx_pk" -v w="$tun_w" 'BEGIN { printf "%.1f", r / w }') per write)"
	# Naps (on by default): B receives the stream faster than it needs to, so some of its
	# idle periods end in a nap that finds data, not in a wake-up by A. Under TSan, B is
	# the slow side and may never be idle.
	if [ -z "${WGT_E2E_TSAN:-}" ]; then
		[ "$hits" -gt 0 ] ||
			e2e_fail "(d) A->B: none of B's idle periods ended in a nap that found data (busy-poll hits 0)"
		e2e_pass "(d)" "A->B: $hits of B's idle periods ended in a nap that found data"
	fi
fi
iperf_dir "B->A" "$E2E_TUN6_B" -R

# ---- (d2) TCP over IPv6 with a 248-byte destination options header, A->B: the sender's
# TSO super-packets then have headers longer than wgate's segment arena allows for, and
# must take the other way through the split. 16 MiB, checked by SHA-256 at the far end.
cat >"$TMP/exthdr.py" <<'PY'
import hashlib, os, socket, sys
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); s.settimeout(20)
    c, _ = s.accept(); c.settimeout(20); h = hashlib.sha256(); n = 0
    while b := c.recv(1 << 20):
        h.update(b); n += len(b)
    print(n, h.hexdigest())
else:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    # 31 x 8 bytes: next header and length (the kernel fills the former), then one
    # option of experimental type 0x1e (skip if unknown) filling the rest
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_DSTOPTS, bytes([0, 30, 0x1e, 244]) + bytes(244))
    s.settimeout(20); s.connect((addr, port))
    data = os.urandom(1 << 20) * 16
    s.sendall(data); s.close()
    print(len(data), hashlib.sha256(data).hexdigest())
PY
e2e_spawn "$TMP/exthdr-server.out" ip netns exec "$NS_B" python3 "$TMP/exthdr.py" server "$E2E_TUN6_B" $((IPERF_PORT + 1))
srv=$E2E_LAST_PID
wait_for "the extension-header server in $NS_B" 5 b_listening $((IPERF_PORT + 1))
in_ns "$NS_A" python3 "$TMP/exthdr.py" client "$E2E_TUN6_B" $((IPERF_PORT + 1)) >"$TMP/exthdr-client.out" 2>&1 ||
	e2e_fail "(d2) TCP with IPv6 destination options A->B failed: $(head -c 300 "$TMP/exthdr-client.out")"
wait_gone "$srv" 20 || e2e_fail "(d2) the extension-header server did not finish"
[ -s "$TMP/exthdr-server.out" ] && [ "$(cat "$TMP/exthdr-server.out")" = "$(cat "$TMP/exthdr-client.out")" ] ||
	e2e_fail "(d2) received '$(head -c 100 "$TMP/exthdr-server.out")', sent '$(cat "$TMP/exthdr-client.out")'"
e2e_pass "(d2)" "16 MiB of TCP over IPv6 with a 248-byte destination options header arrived intact (SHA-256)"

# ---- (d3) wgate<->wgate with 2+ workers, 4 TCP streams A->B: B writes each stream's data
# to the TUN queue of the worker that decrypted it, so the kernel sends the stream's ACKs
# out through that queue and that worker seals them too. Were they written to a queue
# picked by the flow's hash, the ACKs of most of four streams would wake another worker.
# worker_dump LOG PID: worker_counts (lib.sh) of this run's THREADS workers.
worker_dump() {
	worker_counts "$1" "$2" "$THREADS"
}
# one_worker STEP SIDE BEFORE AFTER RX_MIN TX_MIN: between the two dumps, exactly one of
# SIDE's workers received more than RX_MIN packets (one peer, one socket), SIDE sent more
# than TX_MIN, and the workers that received nothing sent at most 2% of it. Sets
# ELSEWHERE and TOTAL.
one_worker() {
	local receiving

	read -r receiving ELSEWHERE TOTAL < <(paste "$3" "$4" | awk -v min="$5" '
		{ rx = $3 - $1; tx = $4 - $2; total += tx
		  if (rx > min) busy++; else elsewhere += tx }
		END { print busy + 0, elsewhere + 0, total + 0 }')
	[ "$receiving" -eq 1 ] ||
		e2e_fail "($1) $receiving of $2's workers received the peer's datagrams; one peer's 4-tuple reaches one socket, so 1 was expected"
	[ "$TOTAL" -gt "$6" ] || e2e_fail "($1) $2 sent only $TOTAL packets"
	[ $((ELSEWHERE * 50)) -le "$TOTAL" ] ||
		e2e_fail "($1) $2's workers that received nothing sent $ELSEWHERE of its $TOTAL packets, more than 2%"
}
if impl_is_wgate "$IMPL_A" && impl_is_wgate "$IMPL_B" && [ "$THREADS" -ge 2 ]; then
	worker_dump "$TMP/$IF_B.log" "$PID_B" >"$TMP/d3.before"
	worker_dump "$TMP/$IF_A.log" "$PID_A" >"$TMP/d3a.before"
	e2e_spawn "$TMP/iperf3-server.log" ip netns exec "$NS_B" iperf3 -s -1 -p "$IPERF_PORT"
	srv=$E2E_LAST_PID
	wait_for "the iperf3 server in $NS_B" 5 b_listening "$IPERF_PORT"
	in_ns "$NS_A" iperf3 -c "$E2E_TUN4_B" -p "$IPERF_PORT" -t 2 -P 4 --connect-timeout 5000 \
		>"$TMP/iperf3-d3.log" 2>&1 || e2e_fail "(d3) iperf3 -P 4 failed: $(tail -n 3 "$TMP/iperf3-d3.log")"
	wait_gone "$srv" 5 || e2e_fail "(d3) the one-off iperf3 server did not exit after its test"
	stop_pid "$srv" TERM 1 || true
	worker_dump "$TMP/$IF_B.log" "$PID_B" >"$TMP/d3.after"
	# The ACKs sent by workers that decrypted nothing, against all of B's sends.
	one_worker d3 B "$TMP/d3.before" "$TMP/d3.after" 1000 1000
	e2e_pass "(d3)" "4 streams A->B: B's ACKs left from the decrypting worker ($ELSEWHERE of $TOTAL packets elsewhere)"
	# And A sent the 4 streams from its workers in turn: the newest from the worker
	# receiving the peer, the 3 older ones each from the next of the other workers (of all
	# with 2 workers), so every worker sends. By the flow hash, all 4 were on one of 2
	# workers 1 time in 8.
	worker_dump "$TMP/$IF_A.log" "$PID_A" >"$TMP/d3a.after"
	read -r busy shares < <(paste "$TMP/d3a.before" "$TMP/d3a.after" | awk '
		{ tx[NR] = $4 - $2; total += $4 - $2 }
		END { for (i = 1; i <= NR; i++) { s = s sprintf("%s%.0f%%", i > 1 ? "/" : "", 100 * tx[i] / total)
		                                  if (tx[i] * 10 >= total) busy++ }
		      print busy + 0, s }')
	want=$((THREADS < 4 ? THREADS : 4))
	[ "$busy" -ge "$want" ] ||
		e2e_fail "(d3) only $busy of A's $THREADS workers sent 10% or more of the 4 streams' packets ($shares); at least $want expected"
	e2e_pass "(d3a)" "4 streams A->B: $busy of A's $THREADS workers sent them (shares $shares)"

	# ---- (d4) the same pair, 5 TCP connections A->B one after the other: each is the peer's
	# newest when it runs, so A sends its data from the worker that receives its ACKs (the
	# peer's socket). Left to the flow's hash, each would have a 1 in THREADS chance.
	cat >"$TMP/seq.py" <<'PY'
import socket, sys
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); s.settimeout(20); n = 0
    for _ in range(5):
        c, _ = s.accept(); c.settimeout(20)
        while b := c.recv(1 << 20):
            n += len(b)
        c.close()
    print(n)
else:
    data = bytes(8 << 20)
    for _ in range(5):
        c = socket.create_connection((addr, port), timeout=20)
        c.sendall(data); c.shutdown(socket.SHUT_WR); c.recv(1); c.close()
PY
	SEQ_PORT=$((IPERF_PORT + 2))
	worker_dump "$TMP/$IF_A.log" "$PID_A" >"$TMP/d4.before"
	e2e_spawn "$TMP/seq-server.log" ip netns exec "$NS_B" python3 "$TMP/seq.py" server "$E2E_TUN4_B" "$SEQ_PORT"
	srv=$E2E_LAST_PID
	wait_for "the sequential-connections server in $NS_B" 5 b_listening "$SEQ_PORT"
	in_ns "$NS_A" python3 "$TMP/seq.py" client "$E2E_TUN4_B" "$SEQ_PORT" >"$TMP/seq-client.log" 2>&1 ||
		e2e_fail "(d4) the 5 connections A->B failed: $(tail -n 3 "$TMP/seq-client.log")"
	wait_gone "$srv" 10 || e2e_fail "(d4) the sequential-connections server did not finish"
	stop_pid "$srv" TERM 1 || true
	[ "$(cat "$TMP/seq-server.log")" = $((5 * 8 * 1048576)) ] ||
		e2e_fail "(d4) the server in B received $(head -c 100 "$TMP/seq-server.log") bytes, not 5 x 8 MiB"
	worker_dump "$TMP/$IF_A.log" "$PID_A" >"$TMP/d4.after"
	# A's packets sent by workers other than the one that received the ACKs.
	one_worker d4 A "$TMP/d4.before" "$TMP/d4.after" 100 5000
	e2e_pass "(d4)" "5 connections A->B in turn: A sent each from the worker receiving its ACKs ($ELSEWHERE of $TOTAL packets elsewhere)"
fi

# ---- (e) wg showconf round trip, then wg syncconf of an edited copy
in_ns "$NS_A" wg showconf "$IF_A" >"$TMP/a.showconf" || e2e_fail "(e) wg showconf $IF_A failed"
python3 - "$TMP/a.showconf" "$(cat "$TMP/a.key")" "$PORT_A" "$PUB_B" "$PSK" "$EP_B" \
	"$E2E_TUN4_B/32" "$E2E_TUN6_B/128" <<'PY' || e2e_fail "(e) wg showconf output does not parse as expected"
import re, sys
path, priv, port, peer, psk, endpoint, *allowed = sys.argv[1:]
sections = []
for n, line in enumerate(open(path), 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    m = re.fullmatch(r"\[(Interface|Peer)\]", line)
    if m:
        sections.append((m.group(1), {}))
        continue
    m = re.fullmatch(r"([A-Za-z]+)\s*=\s*(.*)", line)
    if not m or not sections:
        sys.exit(f"line {n} is neither a section nor key = value: {line!r}")
    sections[-1][1][m.group(1)] = m.group(2)
want = [("Interface", {"PrivateKey": priv, "ListenPort": port}),
        ("Peer", {"PublicKey": peer, "PresharedKey": psk, "Endpoint": endpoint})]
if [s[0] for s in sections] != [w[0] for w in want]:
    sys.exit(f"sections {[s[0] for s in sections]}, expected one [Interface] and one [Peer]")
for (name, got), (_, exp) in zip(sections, want):
    for k, v in exp.items():
        if got.get(k) != v:
            sys.exit(f"[{name}] {k} = {got.get(k)!r}, expected {v!r}")
ips = [x.strip() for x in sections[1][1].get("AllowedIPs", "").split(",")]
if sorted(ips) != sorted(allowed):
    sys.exit(f"AllowedIPs {ips}, expected {allowed}")
PY

# config_dump NS IFACE: `wg show dump` without the run-time columns (handshake, transfer).
config_dump() {
	in_ns "$1" wg show "$2" dump | awk -F '\t' 'NR == 1 { print; next } { print $1, $2, $3, $4, $8 }'
}
config_dump "$NS_A" "$IF_A" >"$TMP/a.dump0"
in_ns "$NS_A" wg syncconf "$IF_A" "$TMP/a.showconf" || e2e_fail "(e) wg syncconf of the unchanged showconf was refused"
config_dump "$NS_A" "$IF_A" >"$TMP/a.dump1"
cmp -s "$TMP/a.dump0" "$TMP/a.dump1" ||
	e2e_fail "(e) syncconf of the unchanged showconf changed the configuration: $(diff "$TMP/a.dump0" "$TMP/a.dump1" | tr '\n' ' ')"

in_ns "$NS_A" wg syncconf "$IF_A" <(sed -e "/^AllowedIPs = /s|\$|, $EXTRA_NET|" \
	-e '/^PersistentKeepalive/d' -e "/^PublicKey = /a PersistentKeepalive = $KEEPALIVE" \
	"$TMP/a.showconf") || e2e_fail "(e) wg syncconf of the edited showconf was refused"
allowed=$(in_ns "$NS_A" wg show "$IF_A" allowed-ips | awk -v k="$PUB_B" '$1 == k { $1 = ""; print }')
for net in "$E2E_TUN4_B/32" "$E2E_TUN6_B/128" "$EXTRA_NET"; do
	[[ " $allowed " == *" $net "* ]] || e2e_fail "(e) after syncconf the allowed ips are '$allowed', $net missing"
done
ka=$(peer_col "$NS_A" "$IF_A" persistent-keepalive "$PUB_B")
[ "$ka" = "$KEEPALIVE" ] || e2e_fail "(e) after syncconf persistent-keepalive is '$ka', expected $KEEPALIVE"
ping_all
e2e_pass "(e)" "showconf parses and syncs back unchanged; syncconf added $EXTRA_NET and keepalive $KEEPALIVE; pings still pass"

# ---- (f) removing the peer stops the tunnel, adding it back with `wg set` restores it
in_ns "$NS_A" wg set "$IF_A" peer "$PUB_B" remove || e2e_fail "(f) wg set ... peer remove was refused"
peers=$(in_ns "$NS_A" wg show "$IF_A" peers)
[ -z "$peers" ] || e2e_fail "(f) after peer remove, wg show $IF_A peers still lists '$peers'"
expect_no_ping A "$NS_A" "$E2E_TUN4_B"
expect_no_ping A "$NS_A" "$E2E_TUN6_B"
in_ns "$NS_A" wg set "$IF_A" "${A_PEER[@]}" || e2e_fail "(f) wg set re-adding the peer was refused"
if [ "$MODE" = responder ]; then
	# A can't initiate, and B would keep sending on a session A has forgotten until
	# its 15 s rekey timer: setconf gives B a fresh peer, and B's ping a fresh handshake.
	in_ns "$NS_B" wg setconf "$IF_B" "$TMP/b.conf"
fi
ping_all
hs=$(peer_col "$NS_A" "$IF_A" latest-handshakes "$PUB_B")
[[ $hs =~ ^[0-9]+$ ]] && [ "$hs" -gt 0 ] || e2e_fail "(f) the re-added peer has no handshake ('$hs')"
e2e_pass "(f)" "peer remove empties wg show peers and stops ping; wg set re-adds it and ping works again"

# ---- (g) the fields of `wg show IFACE`
# check_show SIDE NS IFACE OWN_PUB PORT PEER_PUB ENDPOINT ALLOWED4 ALLOWED6
check_show() {
	local out line

	out=$(in_ns "$2" wg show "$3")
	for line in "interface: $3" "  public key: $4" "  private key: (hidden)" "  listening port: $5" \
		"peer: $6" "  preshared key: (hidden)" "  endpoint: $7"; do
		grep -qxF -- "$line" <<<"$out" ||
			e2e_fail "(g) $1: wg show $3 lacks the line '$line'; it printed: $(tr '\n' '|' <<<"$out")"
	done
	line=$(grep -E '^  allowed ips: ' <<<"$out" || true)
	[[ "$line, " == *" $8, "* ]] && [[ "$line, " == *" $9, "* ]] ||
		e2e_fail "(g) $1: wg show $3 allowed ips should list $8 and $9: $(tr '\n' '|' <<<"$out")"
	grep -qE '^  latest handshake: [^ ].*' <<<"$out" ||
		e2e_fail "(g) $1: wg show $3 has no latest handshake: $(tr '\n' '|' <<<"$out")"
	grep -qE '^  transfer: [0-9.]+ [KMGT]?i?B received, [0-9.]+ [KMGT]?i?B sent$' <<<"$out" ||
		e2e_fail "(g) $1: wg show $3 has no 'transfer: ... received, ... sent' line: $(tr '\n' '|' <<<"$out")"
}
check_show A "$NS_A" "$IF_A" "$PUB_A" "$PORT_A" "$PUB_B" "$EP_B" "$E2E_TUN4_B/32" "$E2E_TUN6_B/128"
check_show B "$NS_B" "$IF_B" "$PUB_B" "$PORT_B" "$PUB_A" "$EP_A" "$E2E_TUN4_A/32" "$E2E_TUN6_A/128"
e2e_pass "(g)" "wg show: interface, public/private key, listening port, peer, psk, endpoint, allowed ips, handshake, transfer"

# ---- the daemons survived all of it, and SIGTERM takes each down cleanly
alive_or_fail
e2e_pass "(h)" "both daemons still running"
# term_check SIDE NS IFACE PID
term_check() {
	stop_pid "$4" TERM 5 || e2e_fail "(i) $1: still running 5 s after SIGTERM"
	[ ! -e "$(e2e_sock "$3")" ] || e2e_fail "(i) $1: exited (status $STOP_STATUS) but left $(e2e_sock "$3") behind"
	wait_until 2 eval "! ip -n '$2' link show '$3'" ||
		e2e_fail "(i) $1: exited but the interface $3 is still there in $2"
	echo "     $1 exited with status $STOP_STATUS"
}
term_check A "$NS_A" "$IF_A" "$PID_A"
term_check B "$NS_B" "$IF_B" "$PID_B"
e2e_pass "(i)" "SIGTERM: each exits within 5 s, removes its UAPI socket, and its TUN interface is gone"

echo "tunnel.sh: all checks passed in $(e2e_elapsed_ms) ms ($(basename "$IMPL_A") <-> $(basename "$IMPL_B"), $MODE)"
