#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Several peers into one wgate: how the receiving gateway's work spreads over its workers
# when the traffic comes from many peers (the gateway's deployment), where perf/bench.sh
# has one peer on each side. See perf/README.md.
#
#   ns wbp-pI-TAG (I = 1..P)                          ns wbp-b-TAG
#   wgate -f --tun-threads 1  192.168.243.(10+I) <-veth-> bridge 192.168.243.2
#   tunnel 10.202.0.(10+I)/24, iperf3 client I          wgate -f --tun-threads T (B)
#                                                       tunnel 10.202.0.2/24, iperf3 server I
#
# Every peer sends one TCP stream to B at once, for BENCH_SECONDS. Configurations: 1 peer
# into B with 1 worker, P peers into B with 1 worker, P peers into B with P workers
# (P = BENCH_PEERS, default 2), and P peers into Debian's wireguard-go as B; runs
# alternate and each figure is the median over the runs.
# Reported: Gbit/s summed over the streams, their retransmits, CPU seconds per GB of B
# and of the peers together, and the data packets each of B's workers received (per run).
#
# Usage: perf/bench_peers.sh (as root)
# Environment: BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_PEERS (2, at most 8), WGATE,
# BENCH_RESULTS (output folder; default perf/results; writes peersP.txt and peersP-runs.csv).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DUR=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
PEERS=${BENCH_PEERS:-2}
RESULTS=${BENCH_RESULTS:-$ROOT/perf/results}
UP_TIMEOUT=10

case ${1:-} in
"") ;;
-h | --help)
	sed -n '3,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "$0: no arguments (environment: BENCH_SECONDS, BENCH_RUNS, BENCH_PEERS, WGATE, BENCH_RESULTS)" >&2
	exit 2
	;;
esac
[[ $DUR =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_SECONDS must be a positive integer" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
[[ $PEERS =~ ^[2-8]$ ]] || { echo "BENCH_PEERS must be 2..8" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces, TUN devices)" >&2; exit 1; }
[ -c /dev/net/tun ] || { echo "$0: /dev/net/tun is missing" >&2; exit 1; }

. "$ROOT/perf/bench_lib.sh"
bench_tools 1
bench_wgate
CLK_TCK=$(getconf CLK_TCK)
# "NAME PEERS B_THREADS" (threads 0: B is Debian's wireguard-go, for reference)
CONFIGS=("p1-t1 1 1" "p$PEERS-t1 $PEERS 1" "p$PEERS-t$PEERS $PEERS $PEERS" "p$PEERS-wggo $PEERS 0")

TMP=$(mktemp -d /tmp/wgate-bench-peers.XXXXXX)
umask 077
mkdir -p "$TMP/res"
: >"$TMP/netns"
cleanup() {
	local rc=$? ns

	set +e
	while read -r ns; do
		[ -n "$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done <"$TMP/netns"
	rm -f /var/run/wireguard/wgbp*-"$$"-*.sock
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%T)] $*" >&2; }
label() { if [ "$1" -eq 0 ]; then echo wireguard-go; else echo "wgate $1 thr"; fi; }

uapi_ready() {
	[ -S "/var/run/wireguard/$2.sock" ] && ip netns exec "$1" wg show "$2"
}

# run_one NAME PEERS THREADS RUN TAG: one run, in a subshell; its EXIT trap tears it down.
run_one() {
	# Not local: the subshell's EXIT trap runs after this function returned.
	name=$1 np=$2 thr=$3 run=$4 tag=$5 d=$TMP/run.$1.$4 nsb=wbp-b-$5
	local i ns out=$TMP/res/$1.$4 ifb=wgbpB$tag br=wbpbr$tag pid_b pids=() cpids=()
	local bytes=0 retr=0 t0 t1 p0 p1

	mkdir -p "$d"
	ifb=${ifb:0:15} br=${br:0:15}
	teardown() {
		local rc=$? n

		set +e
		[ "$rc" -eq 0 ] || echo "== $name run $run failed" >&2
		for n in "$nsb" $(seq -f "wbp-p%g-$tag" "$np"); do
			for p in $(ip netns pids "$n" 2>/dev/null); do
				kill "$p" 2>/dev/null
			done
		done
		sleep 0.3
		for n in "$nsb" $(seq -f "wbp-p%g-$tag" "$np"); do
			for p in $(ip netns pids "$n" 2>/dev/null); do
				kill -KILL "$p" 2>/dev/null
			done
			ip netns del "$n" 2>/dev/null
		done
		rm -f /var/run/wireguard/wgbp*"$tag".sock
		exit "$rc"
	}
	trap teardown EXIT

	echo "$nsb" >>"$TMP/netns"
	ip netns add "$nsb"
	ip -n "$nsb" link set lo up
	# A fixed address: a bridge otherwise takes its ports' lowest MAC, which changes as
	# ports join and strands the peers whose ARP caches hold the old one.
	ip -n "$nsb" link add "$br" address 02:00:00:00:02:02 type bridge
	ip -n "$nsb" addr add 192.168.243.2/24 dev "$br"
	ip -n "$nsb" link set "$br" up
	wg genkey >"$d/b.key"
	if [ "$thr" -eq 0 ]; then
		ip netns exec "$nsb" wireguard-go -f "$ifb" >"$d/b.log" 2>&1 &
	else
		ip netns exec "$nsb" "$WGATE" -f --tun-threads "$thr" "$ifb" >"$d/b.log" 2>&1 &
	fi
	pid_b=$!
	wait_for "$UP_TIMEOUT" uapi_ready "$nsb" "$ifb" || { echo "B did not start" >&2; exit 1; }
	ip netns exec "$nsb" wg set "$ifb" private-key "$d/b.key" listen-port 51821
	ip -n "$nsb" addr add 10.202.0.2/24 dev "$ifb"
	ip -n "$nsb" link set "$ifb" mtu 1420 up
	for i in $(seq "$np"); do
		ns=wbp-p$i-$tag
		local ifp=wgbpP$i$tag va=wbpv$i$tag vb=wbpw$i$tag
		ifp=${ifp:0:15} va=${va:0:15} vb=${vb:0:15}
		echo "$ns" >>"$TMP/netns"
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip link add "$va" netns "$ns" type veth peer name "$vb" netns "$nsb"
		ip -n "$nsb" link set "$vb" master "$br" up
		ip -n "$ns" addr add "192.168.243.$((10 + i))/24" dev "$va"
		ip -n "$ns" link set "$va" up
		wg genkey >"$d/p$i.key"
		ip netns exec "$ns" "$WGATE" -f --tun-threads 1 "$ifp" >"$d/p$i.log" 2>&1 &
		pids+=($!)
		wait_for "$UP_TIMEOUT" uapi_ready "$ns" "$ifp" || { echo "peer $i did not start" >&2; exit 1; }
		ip netns exec "$ns" wg set "$ifp" private-key "$d/p$i.key" listen-port 51830 \
			peer "$(wg pubkey <"$d/b.key")" allowed-ips 10.202.0.2/32 endpoint 192.168.243.2:51821
		ip -n "$ns" addr add "10.202.0.$((10 + i))/24" dev "$ifp"
		ip -n "$ns" link set "$ifp" mtu 1420 up
		ip netns exec "$nsb" wg set "$ifb" peer "$(wg pubkey <"$d/p$i.key")" \
			allowed-ips "10.202.0.$((10 + i))/32"
		wait_for "$UP_TIMEOUT" ip netns exec "$ns" ping -c 1 -W 1 10.202.0.2 ||
			{ echo "peer $i: tunnel did not come up" >&2; exit 1; }
		ip netns exec "$nsb" iperf3 -s -1 -B 10.202.0.2 -p $((5200 + i)) >"$d/srv$i.log" 2>&1 &
	done
	for i in $(seq "$np"); do
		wait_for 5 sh -c "ip netns exec $nsb ss -Hltn 'sport = :$((5200 + i))' | grep -q ."
	done

	cpu_peers() { local s=0 p; for p in "${pids[@]}"; do s=$((s + $(proc_cpu "$p"))); done; echo $s; }
	wgate_worker_counts "$d/b.log" "$pid_b" >"$d/wrk.before"
	t0=$(proc_cpu "$pid_b") p0=$(cpu_peers)
	for i in $(seq "$np"); do
		timeout -k 2 $((DUR + 20)) ip netns exec "wbp-p$i-$tag" iperf3 -c 10.202.0.2 \
			-p $((5200 + i)) -t "$DUR" -i 0 -J --connect-timeout 3000 >"$d/c$i.json" 2>&1 &
		cpids+=($!)
	done
	# timeout bounds each; a failed client shows in its JSON below.
	wait "${cpids[@]}" || true
	t1=$(proc_cpu "$pid_b") p1=$(cpu_peers)
	wgate_worker_counts "$d/b.log" "$pid_b" >"$d/wrk.after"
	for i in $(seq "$np"); do
		jq -e '.end.sum_received.bytes > 0' "$d/c$i.json" >/dev/null ||
			{ echo "peer $i: iperf3 failed: $(jq -r '.error // "no JSON"' "$d/c$i.json" 2>/dev/null)" >&2; exit 1; }
		bytes=$((bytes + $(jq -r '.end.sum_received.bytes | floor' "$d/c$i.json")))
		retr=$((retr + $(jq -r '.end.sum_sent.retransmits // 0' "$d/c$i.json")))
	done
	{
		echo "gbps $(awk -v b="$bytes" -v s="$DUR" 'BEGIN { printf "%.3f", b * 8 / s / 1e9 }')"
		echo "retr $retr"
		echo "cpuB $(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
		echo "cpuP $(awk -v t=$((p1 - p0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
		# Data packets each of B's workers received, and how many got at least 5% of them.
		paste "$d/wrk.before" "$d/wrk.after" | awk '
			{ rx[NR - 1] = $6 - $2; total += $6 - $2 }
			END { for (w = 0; w < NR; w++) {
			          printf "rxw%d %d\n", w, rx[w]; if (rx[w] * 20 >= total) busy++ }
			      print "busy " busy + 0 }'
		echo "ok 1"
	} >"$out"
}

HEADER="date:   $(date -u '+%Y-%m-%d %H:%M UTC')
host:   $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(uname -sr)
wgate:  $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) ($WGATE)
runs:   $RUNS x ${DUR}s, one TCP stream per peer, all at once; median shown"
echo "$HEADER"
start=$(date +%s)
tag_n=0
for ((run = 1; run <= RUNS; run++)); do
	for ((k = 0; k < ${#CONFIGS[@]}; k++)); do
		read -r name np thr <<<"${CONFIGS[$(((k + run - 1) % ${#CONFIGS[@]}))]}"
		tag_n=$((tag_n + 1))
		log "run $run/$RUNS: $name ($np peer(s) into $(label "$thr"))"
		set +e
		(
			set -e
			run_one "$name" "$np" "$thr" "$run" "$$-$tag_n"
		)
		rc=$?
		set -e
		[ "$rc" -ne 130 ] || exit 130
	done
done

mkdir -p "$RESULTS"
{
	echo
	printf "%-34s %4s | %7s %6s | %6s %8s | %s\n" configuration runs Gbit/s retr "cpuB" "cpuPeers" \
		"B's workers: data packets received, each run"
	printf "%-34s %4s | %7s %6s | %6s %8s |\n" "" ok "" "" "s/GB" "s/GB"
	printf '%.0s-' {1..110}
	echo
	for c in "${CONFIGS[@]}"; do
		read -r name np thr <<<"$c"
		per_run=$(for f in "$TMP"/res/"$name".*; do
			[ -e "$f" ] || continue
			awk '/^rxw/ { sub("rxw", "w"); printf "%s%s=%s", n++ ? " " : "", $1, $2 }
			     /^busy/ { b = $2 } END { if (n) printf " (busy %d)", b; else printf "n/a" }' "$f"
			printf '; '
		done)
		printf "%-34s %4s | %7s %6s | %6s %8s | %s\n" \
			"$np peer(s) -> $(label "$thr")" "$(count ok "$name")/$RUNS" \
			"$(median gbps "$name")" "$(median retr "$name")" "$(median cpuB "$name")" \
			"$(median cpuP "$name")" "${per_run%; }"
	done
	echo
	echo "Total run time: $((($(date +%s) - start) / 60)) min $((($(date +%s) - start) % 60)) s"
} | tee "$TMP/table"
{
	echo "$HEADER"
	cat "$TMP/table"
} >"$RESULTS/peers$PEERS.txt"
runs_csv >"$RESULTS/peers$PEERS-runs.csv"
echo "Data: $RESULTS/peers$PEERS.txt, $RESULTS/peers$PEERS-runs.csv"
