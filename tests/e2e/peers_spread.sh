#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Several peers against one wgate with as many workers: each peer's data messages reach
# the worker its receiver index names (gateway/index.h, lanes), so the peers spread one
# per worker whatever their 4-tuples hash to, a peer that changes its source port stays
# on its worker, and so does every peer when B moves to another port (new sockets).
#
#   ns wgt$$p1 .. wgt$$pN, each:                      ns wgt$$b
#   PEER_IMPL -f wgp<i>$$  192.168.241.<10+i> <-veth-> bridge 192.168.241.2   wgate -f wgb$$
#   udp 51830+i            tunnel 10.241.0.<10+i>/24     --tun-threads N  udp 51821
#                                                           tunnel 10.241.0.2/24
#
# Usage: peers_spread.sh WGATE PEER_IMPL [--threads N]
#   N (default 2) is B's worker count and the number of peers. A PEER_IMPL whose basename
#   is `wgate` runs with one worker. With the 4-tuple hash alone, N peers would land one per
#   worker with odds N!/N^N (1/2 for 2, 3/32 for 4).
# Exits 0 when every check passed, 1 on the first failed one, 77 (skip) when not root
# or a tool is missing, 2 on a usage error.
# `A && B || e2e_fail` is meant: e2e_fail exits.
# shellcheck disable=SC2015
set -euo pipefail

usage() {
	echo "usage: $0 WGATE PEER_IMPL [--threads N]" >&2
	exit 2
}

[ $# -ge 2 ] || usage
WGATE=$1
PEER_IMPL=$2
shift 2
THREADS=2
while [ $# -gt 0 ]; do
	case $1 in
	--threads)
		[ $# -ge 2 ] || usage
		THREADS=$2
		shift 2
		;;
	*)
		usage
		;;
	esac
done
[[ $THREADS =~ ^[1-9][0-9]*$ ]] && [ "$THREADS" -ge 2 ] && [ "$THREADS" -le 8 ] || usage

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_require_root wg ip ping
e2e_require_impl "$WGATE"
e2e_require_impl "$PEER_IMPL"
e2e_init peers

NS_B=wgt$$b
IF_B=wgb$$
IF_B=${IF_B:0:15}
PORT_B=51821
BR=wgtbr$$
BR=${BR:0:15}
PINGS=20
TMP=$E2E_TMP

ns_add "$NS_B"
# A fixed address: a bridge otherwise takes its ports' lowest MAC, which changes as
# ports join and strands the peers whose ARP caches hold the old one.
ip -n "$NS_B" link add "$BR" address 02:00:00:00:02:02 type bridge
ip -n "$NS_B" addr add "$E2E_UNDER4_B/24" dev "$BR"
ip -n "$NS_B" link set "$BR" up

wg_keys b
start_impl "$NS_B" "$WGATE" "$IF_B" --tun-threads "$THREADS"
PID_B=$IMPL_PID
grep -q "data steered to peers' workers on" "$TMP/$IF_B.log" ||
	e2e_fail "wgate with $THREADS workers did not turn steering on: $(grep -m1 'worker threads' "$TMP/$IF_B.log")"
in_ns "$NS_B" wg set "$IF_B" private-key "$TMP/b.key" listen-port "$PORT_B"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" fd00:ab::2/64

for i in $(seq "$THREADS"); do
	ns=wgt$$p$i
	va=wgp${i}v$$
	vb=wgp${i}w$$
	iface=wgp$i$$
	ns_add "$ns"
	ip link add "${va:0:15}" netns "$ns" type veth peer name "${vb:0:15}" netns "$NS_B"
	ip -n "$NS_B" link set "${vb:0:15}" master "$BR" up
	ip -n "$ns" addr add "192.168.241.$((10 + i))/24" dev "${va:0:15}"
	ip -n "$ns" link set "${va:0:15}" up
	wg_keys "p$i"
	extra=()
	! impl_is_wgate "$PEER_IMPL" || extra=(--tun-threads 1)
	start_impl "$ns" "$PEER_IMPL" "${iface:0:15}" "${extra[@]}"
	in_ns "$ns" wg set "${iface:0:15}" private-key "$TMP/p$i.key" listen-port $((51830 + i)) \
		peer "$(cat "$TMP/b.pub")" allowed-ips "$E2E_TUN4_B/32" endpoint "$E2E_UNDER4_B:$PORT_B"
	tun_addr "$ns" "${iface:0:15}" "10.241.0.$((10 + i))/24" "fd00:ab::$((10 + i))/64"
	in_ns "$NS_B" wg set "$IF_B" peer "$(cat "$TMP/p$i.pub")" allowed-ips "10.241.0.$((10 + i))/32"
done

# rx_per_worker: a new counter dump of B, then the data packets each worker received,
# one line each.
rx_per_worker() {
	worker_counts "$TMP/$IF_B.log" "$PID_B" "$THREADS" | cut -d' ' -f1
}

# ping_peer I: PINGS pings from peer I to B through the tunnel, all answered.
ping_peer() {
	in_ns "wgt$$p$1" ping -c "$PINGS" -i 0.01 -W 2 "$E2E_TUN4_B" >"$TMP/ping$1.log" 2>&1 ||
		e2e_fail "peer $1 could not ping B through the tunnel: $(tail -n 2 "$TMP/ping$1.log")"
}

# busy_worker BEFORE AFTER: the one worker whose rx rose by PINGS or more ("" if none or
# several did); the others may have received a handful (a keepalive).
busy_worker() {
	paste "$1" "$2" | awk -v min="$PINGS" '$2 - $1 >= min { busy = busy " " NR - 1; n++ }
		END { if (n == 1) print busy + 0 }'
}

# ---- (s1) each peer in turn sends PINGS echo requests; one worker of B receives them,
# and no two peers share a worker.
for i in $(seq "$THREADS"); do
	# The first ping may wait for the handshake: once through, the counts start.
	in_ns "wgt$$p$i" ping -c 1 -W 5 "$E2E_TUN4_B" >/dev/null 2>&1 ||
		e2e_fail "(s1) peer $i: no answer through the tunnel within 5 s"
done
rx_per_worker >"$TMP/rx.0"
declare -A SEEN=()
LANE=()
for i in $(seq "$THREADS"); do
	ping_peer "$i"
	rx_per_worker >"$TMP/rx.$i"
	w=$(busy_worker "$TMP/rx.$((i - 1))" "$TMP/rx.$i")
	[ -n "$w" ] || e2e_fail "(s1) peer $i's $PINGS pings did not all reach one worker of B: rx per worker before $(tr '\n' ' ' <"$TMP/rx.$((i - 1))"), after $(tr '\n' ' ' <"$TMP/rx.$i")"
	[ -z "${SEEN[$w]:-}" ] ||
		e2e_fail "(s1) peers ${SEEN[$w]} and $i both reached worker $w of B; each of the $THREADS peers should have its own"
	SEEN[$w]=$i
	LANE[i]=$w
done
e2e_pass "(s1)" "$THREADS peers, $THREADS workers: peer i -> worker$(for i in $(seq "$THREADS"); do printf ' %s' "${LANE[i]}"; done)"

# ---- (s2) peer 1 moves to another source port (B roams it); its packets still reach
# the same worker, not wherever the new 4-tuple hashes.
MOVED=0
for port in 52001 52002 52003 52004; do
	in_ns "wgt$$p1" wg set "wgp1$$" listen-port "$port"
	cp "$TMP/rx.$THREADS" "$TMP/rx.before"
	ping_peer 1
	rx_per_worker >"$TMP/rx.$THREADS"
	w=$(busy_worker "$TMP/rx.before" "$TMP/rx.$THREADS")
	[ "$w" = "${LANE[1]}" ] ||
		e2e_fail "(s2) from source port $port, peer 1's pings reached worker '${w}' of B, not its worker ${LANE[1]}"
	in_ns "$NS_B" wg show "$IF_B" endpoints | grep -q ":$port\$" ||
		e2e_fail "(s2) B did not roam peer 1 to source port $port: $(in_ns "$NS_B" wg show "$IF_B" endpoints)"
	MOVED=$((MOVED + 1))
done
e2e_pass "(s2)" "peer 1 roamed over $MOVED source ports and stayed on worker ${LANE[1]}"

# ---- (s3) B moves to another port: a new socket group, and the steering program with
# it; told the new endpoint, every peer still reaches its own worker.
PORT_B2=51822
in_ns "$NS_B" wg set "$IF_B" listen-port "$PORT_B2"
grep -q "listening on UDP port $PORT_B2" "$TMP/$IF_B.log" ||
	e2e_fail "(s3) B did not log its new port $PORT_B2"
! grep -q "cannot steer" "$TMP/$IF_B.log" ||
	e2e_fail "(s3) B could not steer on its new sockets: $(grep -m1 'cannot steer' "$TMP/$IF_B.log")"
for i in $(seq "$THREADS"); do
	in_ns "wgt$$p$i" wg set "wgp$i$$" peer "$(cat "$TMP/b.pub")" endpoint "$E2E_UNDER4_B:$PORT_B2"
done
cp "$TMP/rx.$THREADS" "$TMP/rx.s3"
for i in $(seq "$THREADS"); do
	cp "$TMP/rx.s3" "$TMP/rx.before"
	ping_peer "$i"
	rx_per_worker >"$TMP/rx.s3"
	w=$(busy_worker "$TMP/rx.before" "$TMP/rx.s3")
	[ "$w" = "${LANE[i]}" ] ||
		e2e_fail "(s3) on B's new port, peer $i's pings reached worker '${w}' of B, not its worker ${LANE[i]}"
done
e2e_pass "(s3)" "B moved to port $PORT_B2: each of the $THREADS peers still reached its own worker"

# ---- (s4) B opens 6000 TCP connections to a server behind peer 1 and sends a byte on
# each: the peer's pure ACKs of B's older connections fill B's table of their workers
# (4096 slots). Every connection still works, and the ACKs whose slot another live
# connection holds are counted ("flow collisions") and sent by the flow hash.
CONNS=6000
cat >"$TMP/many.py" <<'PY'
import socket, sys
mode, addr, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(4096); s.settimeout(30)
    cs = [s.accept()[0] for _ in range(n)]
    got = sum(len(c.recv(1)) for c in cs)
    print(got)
else:
    cs = [socket.create_connection((addr, port), timeout=30) for _ in range(n)]
    for c in cs:
        c.sendall(b"x")
    for c in cs:
        c.close()
PY
collisions() {
	awk '/ worker [0-9]+: rx / { for (i = 1; i < NF; i++) if ($i == "collisions") c += $(i + 1) }
	     / control: / { last = c; c = 0 } END { print last + 0 }' "$TMP/$IF_B.log"
}
counters_dump "$TMP/$IF_B.log" "$PID_B"
c0=$(collisions)
e2e_spawn "$TMP/many-server.log" ip netns exec "wgt$$p1" sh -c "ulimit -n 20000 && exec python3 '$TMP/many.py' server 10.241.0.11 7000 $CONNS"
srv=$E2E_LAST_PID
listening() { ip netns exec "wgt$$p1" ss -Hltn "sport = :7000" | grep -q .; }
wait_for "the server behind peer 1" 5 listening
E2E_CMD_TIMEOUT=120 in_ns "$NS_B" sh -c "ulimit -n 20000 && exec python3 '$TMP/many.py' client 10.241.0.11 7000 $CONNS" \
	>"$TMP/many-client.log" 2>&1 || e2e_fail "(s4) B's $CONNS connections failed: $(tail -n 3 "$TMP/many-client.log")"
wait_gone "$srv" 30 || e2e_fail "(s4) the server behind peer 1 did not finish"
stop_pid "$srv" TERM 1 || true
[ "$(cat "$TMP/many-server.log")" = "$CONNS" ] ||
	e2e_fail "(s4) the server behind peer 1 got $(head -c 100 "$TMP/many-server.log") bytes, not one on each of $CONNS connections"
counters_dump "$TMP/$IF_B.log" "$PID_B"
c1=$(collisions)
[ "$c1" -gt "$c0" ] ||
	e2e_fail "(s4) $CONNS live connections in 4096 slots, and B counted no flow collision ($c0 -> $c1)"
e2e_pass "(s4)" "$CONNS connections from B through peer 1 all carried their byte; $((c1 - c0)) ACKs went by hash, their slot held"
