#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Several peers into one wgate: how the receiving gateway's work spreads over its workers
# when the traffic comes from many peers (the gateway's deployment), where perf/bench.sh
# has one peer on each side; and, with --sweep, throughput and CPU per GB of that gateway
# against its --tun-threads for several peer counts (perf/TUNING.md). See perf/README.md.
#
#   ns wbp-pI-TAG (I = 1..P)                          ns wbp-b-TAG
#   wgate -f --tun-threads 1  192.168.243.(10+I) <-veth-> bridge 192.168.243.2
#   tunnel 10.202.0.(10+I)/24, iperf3 client I          B: wgate -f --tun-threads T
#                                                       tunnel 10.202.0.2/24, iperf3 server I
#
# Every peer runs one TCP stream with B at once, for BENCH_SECONDS: "in" = the peers send
# to B (B decrypts), "out" = B sends to every peer (iperf3 -R, B encrypts).
#
# Default mode: 1 peer into B with 1 worker, P peers into B with 1 worker, P peers into B
# with P workers (P = BENCH_PEERS, default 2), and P peers into Debian's and into current
# wireguard-go as B; "in" only. Writes peersP.txt and peersP-runs.csv.
# --sweep: P peers (BENCH_SWEEP_PEERS, default 1,2,4,8) into B with T workers
# (BENCH_SWEEP_THREADS, default 1,2,4,8), every pair, and current wireguard-go as B for
# each P; both directions. Writes peers-sweep.txt, .csv, -runs.csv and .png.
# Runs alternate over the configurations and each figure is the median over the runs.
# Reported: Gbit/s summed over the streams, their retransmits, CPU seconds per GB of B
# and of the peers together, and the data packets each of B's workers handled.
#
# Usage: perf/bench_peers.sh [--sweep] (as root)
# Environment: BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_PEERS (2, 2..8), BENCH_SWEEP_PEERS,
# BENCH_SWEEP_THREADS (comma-separated, 1..8 each), WGATE, WGGO_MODERN (current
# wireguard-go; default ../shared/tools/wireguard-go-0.0.20250522 beside the project root;
# missing, its rows are skipped with one line), BENCH_RESULTS (default perf/results).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/bench_lib.sh
. "$ROOT/perf/bench_lib.sh"
DUR=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
PEERS=${BENCH_PEERS:-2}
SWEEP_PEERS=${BENCH_SWEEP_PEERS:-1,2,4,8}
SWEEP_THREADS=${BENCH_SWEEP_THREADS:-1,2,4,8}
RESULTS=${BENCH_RESULTS:-$ROOT/perf/results}
WGGO_CUR=${WGGO_MODERN:-$ROOT/../shared/tools/wireguard-go-0.0.20250522}
UP_TIMEOUT=10
SWEEP=0

case ${1:-} in
"") ;;
--sweep) SWEEP=1 ;;
-h | --help)
	bench_help
	exit 0
	;;
*)
	echo "$0: unknown argument '$1' (usage: $0 [--sweep]; see --help)" >&2
	exit 2
	;;
esac
[ $# -le 1 ] || { echo "$0: one argument at most (--sweep)" >&2; exit 2; }
[[ $DUR =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_SECONDS must be a positive integer" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
[[ $PEERS =~ ^[2-8]$ ]] || { echo "BENCH_PEERS must be 2..8" >&2; exit 2; }
[[ $SWEEP_PEERS =~ ^[1-8](,[1-8])*$ ]] ||
	{ echo "BENCH_SWEEP_PEERS must be comma-separated numbers 1..8; got '$SWEEP_PEERS'" >&2; exit 2; }
[[ $SWEEP_THREADS =~ ^[1-8](,[1-8])*$ ]] ||
	{ echo "BENCH_SWEEP_THREADS must be comma-separated numbers 1..8; got '$SWEEP_THREADS'" >&2; exit 2; }
bench_root

bench_tools 1
bench_wgate
CLK_TCK=$(getconf CLK_TCK)

# Current wireguard-go is not a Debian package: without it, its rows are left out.
WGGO_CUR_VERSION=
if [ -x "$WGGO_CUR" ] &&
	WGGO_CUR_VERSION=$(timeout 5 "$WGGO_CUR" --version 2>/dev/null | awk 'NR == 1 { print $2 }') &&
	[ -n "$WGGO_CUR_VERSION" ]; then
	WGGO_CUR=$(readlink -f "$WGGO_CUR")
else
	WGGO_CUR_VERSION=
	echo "$0: skipping the current wireguard-go rows: no runnable binary at $WGGO_CUR (set WGGO_MODERN)" >&2
fi

# "NAME PEERS B_THREADS B_IMPL" (B_IMPL: wgate, wggo = Debian's, wggo-cur = current)
CONFIGS=()
if [ "$SWEEP" -eq 1 ]; then
	DIRS="in out"
	STEM=peers-sweep
	IFS=, read -r -a sweep_peers <<<"$SWEEP_PEERS"
	IFS=, read -r -a sweep_threads <<<"$SWEEP_THREADS"
	for np in "${sweep_peers[@]}"; do
		for thr in "${sweep_threads[@]}"; do
			CONFIGS+=("p$np-t$thr $np $thr wgate")
		done
		[ -z "$WGGO_CUR_VERSION" ] || CONFIGS+=("p$np-wggo-cur $np 0 wggo-cur")
	done
else
	DIRS="in"
	STEM=peers$PEERS
	CONFIGS=("p1-t1 1 1 wgate" "p$PEERS-t1 $PEERS 1 wgate" "p$PEERS-t$PEERS $PEERS $PEERS wgate"
		"p$PEERS-wggo $PEERS 0 wggo")
	[ -z "$WGGO_CUR_VERSION" ] || CONFIGS+=("p$PEERS-wggo-cur $PEERS 0 wggo-cur")
fi

bench_tmp bench-peers "wgbp*-$$-*.sock"
mkdir -p "$TMP/res"

# label THREADS IMPL: what B is.
label() {
	case $2 in
	wggo) echo "wireguard-go (Debian)" ;;
	wggo-cur) echo "wireguard-go (current)" ;;
	*) echo "wgate $1 thr" ;;
	esac
}

# run_one NAME PEERS THREADS IMPL RUN TAG: one run, in a subshell; its EXIT trap tears it
# down. Records "DIR.KEY VALUE" lines for each direction of DIRS, then "ok 1".
run_one() {
	# Not local: the subshell's EXIT trap runs after this function returned.
	name=$1 np=$2 thr=$3 impl=$4 run=$5 tag=$6 d=$TMP/run.$1.$5 nsb=wbp-b-$6
	local i ns out=$TMP/res/$1.$5 ifb=wgbpB$tag br=wbpbr$tag pid_b dir
	pids=()

	mkdir -p "$d"
	: >"$out"
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
	case $impl in
	wggo) ip netns exec "$nsb" wireguard-go -f "$ifb" >"$d/b.log" 2>&1 & ;;
	wggo-cur) ip netns exec "$nsb" "$WGGO_CUR" -f "$ifb" >"$d/b.log" 2>&1 & ;;
	*) ip netns exec "$nsb" "$WGATE" -f --tun-threads "$thr" "$ifb" >"$d/b.log" 2>&1 & ;;
	esac
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
	done

	for dir in $DIRS; do
		measure "$dir"
	done
	echo "ok 1" >>"$out"
}

# measure DIR: every peer runs one stream with B at once ("in": to B; "out": from B).
# Uses run_one's variables.
measure() {
	local dir=$1 i bytes=0 retr=0 t0 t1 p0 p1 col rev=() cpids=()

	if [ "$dir" = out ]; then
		rev=(-R)
		col=3 # B's workers' tx counter: the data they sealed and sent
	else
		col=2 # rx: the data they received
	fi
	for i in $(seq "$np"); do
		ip netns exec "$nsb" iperf3 -s -1 -B 10.202.0.2 -p $((5200 + i)) >"$d/srv.$dir.$i.log" 2>&1 &
	done
	for i in $(seq "$np"); do
		wait_for 5 sh -c "ip netns exec $nsb ss -Hltn 'sport = :$((5200 + i))' | grep -q ." ||
			{ echo "iperf3 server $i ($dir) did not start" >&2; exit 1; }
	done
	cpu_peers() { local s=0 p; for p in "${pids[@]}"; do s=$((s + $(proc_cpu "$p"))); done; echo $s; }
	wgate_worker_counts "$d/b.log" "$pid_b" >"$d/wrk.$dir.before"
	t0=$(proc_cpu "$pid_b") p0=$(cpu_peers)
	for i in $(seq "$np"); do
		timeout -k 2 $((DUR + 20)) ip netns exec "wbp-p$i-$tag" iperf3 -c 10.202.0.2 \
			-p $((5200 + i)) -t "$DUR" -i 0 -J --connect-timeout 3000 "${rev[@]}" \
			>"$d/c.$dir.$i.json" 2>&1 &
		cpids+=($!)
	done
	# timeout bounds each; a failed client shows in its JSON below.
	wait "${cpids[@]}" || true
	t1=$(proc_cpu "$pid_b") p1=$(cpu_peers)
	wgate_worker_counts "$d/b.log" "$pid_b" >"$d/wrk.$dir.after"
	for i in $(seq "$np"); do
		jq -e '.end.sum_received.bytes > 0' "$d/c.$dir.$i.json" >/dev/null ||
			{ echo "peer $i ($dir): iperf3 failed: $(jq -r '.error // "no JSON"' "$d/c.$dir.$i.json" 2>/dev/null)" >&2; exit 1; }
		bytes=$((bytes + $(jq -r '.end.sum_received.bytes | floor' "$d/c.$dir.$i.json")))
		retr=$((retr + $(jq -r '.end.sum_sent.retransmits // 0' "$d/c.$dir.$i.json")))
	done
	{
		echo "$dir.gbps $(awk -v b="$bytes" -v s="$DUR" 'BEGIN { printf "%.3f", b * 8 / s / 1e9 }')"
		echo "$dir.retr $retr"
		echo "$dir.cpuB $(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
		echo "$dir.cpuP $(awk -v t=$((p1 - p0)) -v hz="$CLK_TCK" -v b="$bytes" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
		# Data packets each of B's workers handled, and how many had at least 5% of them.
		paste "$d/wrk.$dir.before" "$d/wrk.$dir.after" | awk -v c="$col" -v dir="$dir" '
			{ n[NR - 1] = $(c + 4) - $c; total += $(c + 4) - $c }
			END { if (!NR) exit
			      for (w = 0; w < NR; w++) {
			          printf "%s.w%d %d\n", dir, w, n[w]; if (n[w] * 20 >= total) busy++ }
			      print dir ".busy " busy + 0 }'
	} >>"$out"
}

HEADER="date:   $(date -u '+%Y-%m-%d %H:%M UTC')
host:   $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(uname -sr)
wgate:  $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) ($WGATE)
wireguard-go: Debian $(wireguard-go --version | awk 'NR == 1 { print $2 }')${WGGO_CUR_VERSION:+; current $WGGO_CUR_VERSION ($WGGO_CUR)}
runs:   $RUNS x ${DUR}s per direction ($DIRS), one TCP stream per peer, all at once; median shown
load at start: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "$HEADER"
start=$(date +%s)
tag_n=0
for ((run = 1; run <= RUNS; run++)); do
	for ((k = 0; k < ${#CONFIGS[@]}; k++)); do
		read -r name np thr impl <<<"${CONFIGS[$(((k + run - 1) % ${#CONFIGS[@]}))]}"
		tag_n=$((tag_n + 1))
		log "run $run/$RUNS: $name ($np peer(s) into $(label "$thr" "$impl"))"
		set +e
		(
			set -e
			run_one "$name" "$np" "$thr" "$impl" "$run" "$$-$tag_n"
		)
		rc=$?
		set -e
		[ "$rc" -ne 130 ] || exit 130
	done
done
elapsed=$(($(date +%s) - start))

# per_run NAME DIR: B's workers' packet counts in DIR, each run.
per_run() {
	local f out=

	for f in "$TMP"/res/"$1".*; do
		[ -e "$f" ] || continue
		out+=$(awk -v p="$2." 'index($1, p) == 1 && $1 ~ /\.w[0-9]+$/ { k = substr($1, length(p) + 1)
		           printf "%s%s=%s", n++ ? " " : "", k, $2 }
		     $1 == p "busy" { b = $2 } END { if (n) printf " (busy %d)", b; else printf "n/a" }' "$f")
		out+="; "
	done
	echo "${out%; }"
}

mkdir -p "$RESULTS"
{
	for dir in $DIRS; do
		echo
		if [ "$dir" = in ]; then
			echo "Peers -> B (B receives and decrypts): Gbit/s summed over the peers' streams at"
			echo "the receiver, their retransmits, CPU seconds per GB of B and of the peers together:"
		else
			echo "B -> peers (B encrypts and sends, iperf3 -R): the same columns:"
		fi
		echo
		printf "%-38s %4s | %7s %6s | %6s %8s | %s\n" configuration runs Gbit/s retr "cpuB" "cpuPeers" \
			"B's workers: data packets handled, each run"
		printf "%-38s %4s | %7s %6s | %6s %8s |\n" "" ok "" "" "s/GB" "s/GB"
		printf '%.0s-' {1..114}
		echo
		for c in "${CONFIGS[@]}"; do
			read -r name np thr impl <<<"$c"
			printf "%-38s %4s | %7s %6s | %6s %8s | %s\n" \
				"$np peer(s) <-> $(label "$thr" "$impl")" "$(count ok "$name")/$RUNS" \
				"$(median "$dir.gbps" "$name")" "$(median "$dir.retr" "$name")" \
				"$(median "$dir.cpuB" "$name")" "$(median "$dir.cpuP" "$name")" "$(per_run "$name" "$dir")"
		done
	done
	if [ "$SWEEP" -eq 1 ]; then
		# The same medians as matrices: a row per thread count, a column per peer count.
		for dir in $DIRS; do
			for key in gbps cpuB; do
				echo
				case $dir.$key in
				in.gbps) echo "Peers -> B, Gbit/s (rows: B's --tun-threads; columns: peers):" ;;
				in.cpuB) echo "Peers -> B, B's CPU seconds per GB:" ;;
				out.gbps) echo "B -> peers, Gbit/s:" ;;
				out.cpuB) echo "B -> peers, B's CPU seconds per GB:" ;;
				esac
				line=$(printf "  %-24s" threads)
				for np in "${sweep_peers[@]}"; do line+=$(printf " %8s" "$np peer$([ "$np" -eq 1 ] || echo s)"); done
				echo "$line"
				for thr in "${sweep_threads[@]}"; do
					line=$(printf "  %-24s" "wgate $thr")
					for np in "${sweep_peers[@]}"; do line+=$(printf " %8s" "$(median "$dir.$key" "p$np-t$thr")"); done
					echo "$line"
				done
				if [ -n "$WGGO_CUR_VERSION" ]; then
					line=$(printf "  %-24s" "wireguard-go (current)")
					for np in "${sweep_peers[@]}"; do line+=$(printf " %8s" "$(median "$dir.$key" "p$np-wggo-cur")"); done
					echo "$line"
				fi
			done
		done
	fi
	echo
	echo "Total run time: $((elapsed / 60)) min $((elapsed % 60)) s"
} | tee "$TMP/table"
{
	echo "$HEADER"
	cat "$TMP/table"
} >"$RESULTS/$STEM.txt"
runs_csv >"$RESULTS/$STEM-runs.csv"
written="$RESULTS/$STEM.txt $RESULTS/$STEM-runs.csv"

if [ "$SWEEP" -eq 1 ]; then
	# One row per configuration, the medians; then the plot, a line per peer count.
	keys=()
	for dir in $DIRS; do keys+=("$dir.gbps" "$dir.retr" "$dir.cpuB" "$dir.cpuP" "$dir.busy"); done
	{
		echo "config,b_impl,peers,threads,runs_ok,runs,${keys[*]}" | tr ' ' ','
		for c in "${CONFIGS[@]}"; do
			read -r name np thr impl <<<"$c"
			line="$name,$impl,$np,$thr,$(count ok "$name"),$RUNS"
			for k in "${keys[@]}"; do line+=",$(median "$k" "$name")"; done
			echo "$line"
		done
	} >"$RESULTS/$STEM.csv"
	# gnuplot data: one block per peer count, "threads in.gbps in.cpuB out.gbps out.cpuB".
	for np in "${sweep_peers[@]}"; do
		echo "# $np peer(s)"
		for thr in "${sweep_threads[@]}"; do
			line=$thr
			for k in in.gbps in.cpuB out.gbps out.cpuB; do
				v=$(median "$k" "p$np-t$thr")
				[ "$v" != - ] || v=NaN
				line+=" $v"
			done
			echo "$line"
		done
		printf '\n\n'
	done >"$TMP/sweep.dat"
	plots_for() { # plots_for COLUMN: one line per peer count
		local i=0 np out=

		for np in "${sweep_peers[@]}"; do
			out+="${out:+, }\"$TMP/sweep.dat\" index $i using 1:$1 with linespoints title \"$np peer$([ "$np" -eq 1 ] || echo s)\""
			i=$((i + 1))
		done
		echo "$out"
	}
	gnuplot <<EOF
set terminal pngcairo size 1200,900 font "sans,10"
set output "$RESULTS/$STEM.png"
set multiplot layout 2,2 title "wgate B with P peers (each one TCP stream, all at once) against B's --tun-threads; $(nproc) CPUs, median of ${RUNS}x${DUR}s"
set logscale x 2
set xtics (${SWEEP_THREADS})
set xrange [0.8:$(printf '%s\n' "${sweep_threads[@]}" | sort -n | tail -n 1).0 * 1.25]
set grid
set key bottom left box opaque
set xlabel "B's --tun-threads"
set yrange [0:*]
set ylabel "Gbit/s"
set title "peers -> B: throughput (B decrypts)"
plot $(plots_for 2)
set ylabel "CPU s / GB"
set title "peers -> B: B's CPU seconds per GB"
plot $(plots_for 3)
set ylabel "Gbit/s"
set title "B -> peers: throughput (B encrypts)"
plot $(plots_for 4)
set ylabel "CPU s / GB"
set title "B -> peers: B's CPU seconds per GB"
plot $(plots_for 5)
unset multiplot
EOF
	written+=" $RESULTS/$STEM.csv $RESULTS/$STEM.png"
fi
echo "written: $written"
