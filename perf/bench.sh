#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throughput benchmark: iperf3 through a tunnel between two network namespaces, wgate
# against itself (1, 2, 4 worker threads), against Debian's wireguard-go, and two
# references: Debian's wireguard-go (0.0.20220316, no offloads) and current wireguard-go
# (TUN TSO/USO, UDP GSO/GRO) each against itself, with the bare veth as the ceiling.
# See perf/README.md.
#
#   ns wgb-a-PID-N                                  ns wgb-b-PID-N
#   impl A  192.168.242.1:51820  <---- veth ---->  192.168.242.2:51821  impl B
#   tunnel 10.201.0.1/24 (iperf3 client)           tunnel 10.201.0.2/24 (iperf3 server)
#
# Every (configuration, run) pair gets fresh namespaces, keys and daemons; runs go
# round-robin over the configurations and each figure is the median over the runs.
#
# Usage: perf/bench.sh [--quick] [--only CONFIG[,CONFIG...]] (as root)
# Environment: BENCH_SECONDS (10), BENCH_RUNS (3), WGATE (path to the daemon),
# WGGO_MODERN (current wireguard-go; default ../shared/tools/wireguard-go-0.0.20250522
# beside the project root; missing, its row is skipped with one line),
# BENCH_MIXED_THREADS (wgate's --tun-threads against wireguard-go; default nproc),
# BENCH_RESULTS (output folder; default perf/results), BENCH_PIN (CPU lists for taskset,
# the same for every configuration: GATEWAYS/IPERF3, say 0/1, or A/B/CLIENT/SERVER, say
# 0/1/0/1; results go to latest-pinned.*), BENCH_CPU_LATENCY (microseconds: hold a PM QoS
# CPU latency request for the whole run, every configuration alike; 0 keeps idle CPUs
# polling, so a wakeup needs no IPI; results go to latest-cpulat.*).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL_CONFIGS=(raw wgate-t1 wgate-t2 wgate-t4 wgate-wggo wggo wggo-cur)
WGGO_CUR=${WGGO_MODERN:-$ROOT/../shared/tools/wireguard-go-0.0.20250522}
DUR=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
RESULTS=${BENCH_RESULTS:-$ROOT/perf/results}
STEM=latest
ONLY=
UP_TIMEOUT=10

usage() {
	cat <<EOF
Usage: $0 [--quick] [--only CONFIG[,CONFIG...]]

  --quick      1 run of 3 s per test (smoke test); writes $RESULTS/quick.*
  --only LIST  run only these configurations, comma separated, out of:
               ${ALL_CONFIGS[*]}

Configurations: raw (the bare veth), wgate-tN (wgate against itself, N threads),
wgate-wggo (wgate against Debian's wireguard-go), wggo (Debian's wireguard-go against
itself), wggo-cur (current wireguard-go against itself: WGGO_MODERN).

Environment: BENCH_SECONDS (default 10), BENCH_RUNS (default 3), WGATE (path to the
daemon; default the release build in build-release/, updated first), WGGO_MODERN (current
wireguard-go; default $WGGO_CUR), BENCH_MIXED_THREADS
(wgate's --tun-threads in wgate-wggo; default nproc), BENCH_RESULTS (output folder),
BENCH_PIN (taskset CPU lists GATEWAYS/IPERF3, say 0/1, or A/B/CLIENT/SERVER, say
0/1/0/1; writes $RESULTS/latest-pinned.*), BENCH_CPU_LATENCY (microseconds: a PM QoS
CPU latency request held for the whole run, say 0; writes $RESULTS/latest-cpulat.*).
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick)
		DUR=3
		RUNS=1
		STEM=quick
		;;
	--only)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		ONLY=$2
		shift
		;;
	--only=*) ONLY=${1#--only=} ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "$0: unknown argument '$1'" >&2
		usage >&2
		exit 2
		;;
	esac
	shift
done

[[ $DUR =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_SECONDS must be a positive integer" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_RUNS must be a positive integer" >&2; exit 2; }
# BENCH_PIN: taskset CPU lists for gateway A, gateway B, the iperf3 client (in A's
# namespace) and the iperf3 server (in B's). Unset, the scheduler places all four, and on
# a small machine that decides which gateway shares a CPU with which iperf3 process, and
# so which one is charged for the other's kernel work (perf/HISTORY.md, "Placement").
PIN_A= PIN_B= PIN_CLIENT_CMD=() PIN_SERVER_CMD=()
if [ -n "${BENCH_PIN:-}" ]; then
	cpus='([0-9][0-9,-]*)'
	if [[ $BENCH_PIN =~ ^$cpus/$cpus$ ]]; then
		PIN_A=${BASH_REMATCH[1]} PIN_B=$PIN_A PIN_CLIENT=${BASH_REMATCH[2]} PIN_SERVER=$PIN_CLIENT
	elif [[ $BENCH_PIN =~ ^$cpus/$cpus/$cpus/$cpus$ ]]; then
		PIN_A=${BASH_REMATCH[1]} PIN_B=${BASH_REMATCH[2]}
		PIN_CLIENT=${BASH_REMATCH[3]} PIN_SERVER=${BASH_REMATCH[4]}
	else
		echo "BENCH_PIN must be GATEWAYS/IPERF3 (say 0/1) or A/B/CLIENT/SERVER (say 0/1/0/1), CPU lists for taskset; got '$BENCH_PIN'" >&2
		exit 2
	fi
	for c in "$PIN_A" "$PIN_B" "$PIN_CLIENT" "$PIN_SERVER"; do
		taskset -c "$c" true 2>/dev/null ||
			{ echo "BENCH_PIN: CPU list '$c' is not usable on this machine ($(nproc) CPUs)" >&2; exit 2; }
	done
	PIN_CLIENT_CMD=(taskset -c "$PIN_CLIENT") PIN_SERVER_CMD=(taskset -c "$PIN_SERVER")
	[ "$STEM" = latest ] && STEM=latest-pinned
fi

CONFIGS=()
if [ -n "$ONLY" ]; then
	IFS=, read -r -a wanted <<<"$ONLY"
	for c in "${wanted[@]}"; do
		[[ " ${ALL_CONFIGS[*]} " == *" $c "* ]] ||
			{ echo "$0: unknown configuration '$c' (known: ${ALL_CONFIGS[*]})" >&2; exit 2; }
		CONFIGS+=("$c")
	done
else
	CONFIGS=("${ALL_CONFIGS[@]}")
fi
# Current wireguard-go is not a Debian package: without it, its row is left out.
if [[ " ${CONFIGS[*]} " == *" wggo-cur "* ]]; then
	if [ -x "$WGGO_CUR" ] && WGGO_CUR_VERSION=$(timeout 5 "$WGGO_CUR" --version 2>/dev/null | awk 'NR == 1 { print $2 }') &&
		[ -n "$WGGO_CUR_VERSION" ]; then
		WGGO_CUR=$(readlink -f "$WGGO_CUR")
	else
		echo "$0: skipping wggo-cur: no runnable current wireguard-go at $WGGO_CUR (set WGGO_MODERN)" >&2
		for i in "${!CONFIGS[@]}"; do
			[ "${CONFIGS[$i]}" = wggo-cur ] && unset 'CONFIGS[i]'
		done
		CONFIGS=("${CONFIGS[@]}")
		[ ${#CONFIGS[@]} -gt 0 ] || { echo "$0: nothing left to run" >&2; exit 1; }
	fi
fi

[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces, TUN devices)" >&2; exit 1; }
[ -c /dev/net/tun ] || { echo "$0: /dev/net/tun is missing" >&2; exit 1; }

# BENCH_CPU_LATENCY: a PM QoS request (/dev/cpu_dma_latency, held open until the script
# exits) that keeps idle CPUs out of idle states slower to leave than this many
# microseconds; tuned's latency-performance profile does the same. 0 keeps them polling,
# which on a VM spares the IPI (and the hypervisor exit) of waking a halted vCPU, the
# wakeup price perf/HISTORY.md measures on this VM. It applies to every configuration
# alike, wireguard-go's included, and the header's wakeups line measures it.
if [ -n "${BENCH_CPU_LATENCY:-}" ]; then
	[[ $BENCH_CPU_LATENCY =~ ^[0-9]{1,9}$ ]] ||
		{ echo "BENCH_CPU_LATENCY must be microseconds, 0..999999999; got '$BENCH_CPU_LATENCY'" >&2; exit 2; }
	[ -c /dev/cpu_dma_latency ] ||
		{ echo "BENCH_CPU_LATENCY: /dev/cpu_dma_latency is missing (kernel without PM QoS?)" >&2; exit 1; }
	exec {QOS_FD}>/dev/cpu_dma_latency ||
		{ echo "BENCH_CPU_LATENCY: cannot open /dev/cpu_dma_latency" >&2; exit 1; }
	# As 8 hex digits: a write of exactly 4 bytes would be taken as a binary s32.
	printf '%08x' "$((10#$BENCH_CPU_LATENCY))" >&"$QOS_FD"
	[[ $STEM == latest* ]] && STEM=$STEM-cpulat
fi

needs_wgate=0
for c in "${CONFIGS[@]}"; do
	[[ $c == wgate* ]] && needs_wgate=1
done
. "$ROOT/perf/bench_lib.sh"
bench_tools "$needs_wgate"
[ "$needs_wgate" -eq 0 ] || bench_wgate

MIXED_THREADS=${BENCH_MIXED_THREADS:-$(nproc)}
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d /tmp/wgate-bench.XXXXXX)
umask 077
: >"$TMP/pids"
: >"$TMP/netns"
: >"$TMP/socks"

# Kills what is still alive of what we started, then deletes our namespaces.
# Each run cleans up after itself; this catches Ctrl-C and failures in between.
cleanup() {
	local rc=$? pid ns sock

	set +e
	while read -r pid; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null
	done <"$TMP/pids"
	sleep 0.2
	while read -r pid; do
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done <"$TMP/pids"
	while read -r ns; do
		[ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
	done <"$TMP/netns"
	while read -r sock; do
		[ -n "$sock" ] && [ -S "$sock" ] && rm -f "$sock"
	done <"$TMP/socks"
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

label_of() {
	case $1 in
	raw) echo "raw veth (no tunnel)" ;;
	wgate-t*) echo "wgate<->wgate ${1#wgate-t} thr" ;;
	wgate-wggo) echo "wgate($MIXED_THREADS thr)<->wggo (Debian)" ;;
	wggo) echo "wggo<->wggo (Debian)" ;;
	wggo-cur) echo "wggo<->wggo (current)" ;;
	esac
}

# ---------------------------------------------------------------------------------------
# One configuration, one run. Runs in a subshell with errexit: any failure ends it, its
# EXIT trap tears down its namespaces and daemons and records the reason in $OUT.
# ---------------------------------------------------------------------------------------
run_one() {
	# Not local: the subshell's EXIT trap runs after this function returned.
	config=$1 run=$2 tag=$3
	NS_A=wgb-a-$tag NS_B=wgb-b-$tag
	VETH_A=wgbva$tag VETH_B=wgbvb$tag IF_A=wgbA$tag IF_B=wgbB$tag
	ADDR_A=192.168.242.1 ADDR_B=192.168.242.2 TUN_A=10.201.0.1 TUN_B=10.201.0.2
	PORT_A=51820 PORT_B=51821
	impl_a= impl_b= thr_a=0 thr_b=0 dst=
	OUT=$TMP/res/$config.$run
	D=$TMP/run.$config.$run

	VETH_A=${VETH_A:0:15} VETH_B=${VETH_B:0:15} IF_A=${IF_A:0:15} IF_B=${IF_B:0:15}
	mkdir -p "$D" "$TMP/res"
	: >"$OUT"
	PID_A= PID_B= SRV_PID=
	case $config in
	raw) impl_a=none impl_b=none ;;
	wgate-t*) impl_a=wgate impl_b=wgate thr_a=${config#wgate-t} thr_b=$thr_a ;;
	wgate-wggo) impl_a=wgate impl_b=wggo thr_a=$MIXED_THREADS ;;
	wggo) impl_a=wggo impl_b=wggo ;;
	wggo-cur) impl_a=wggo-cur impl_b=wggo-cur ;;
	esac

	# The reason of a failure, for the table; the tail of each log, for the operator.
	FAIL_REASON="unexpected error (see the messages above)"
	teardown() {
		local rc=$? p

		set +e
		if [ "$rc" -ne 0 ]; then
			echo "fail $FAIL_REASON" >>"$OUT"
			{
				echo "== $config run $run FAILED: $FAIL_REASON"
				for side in A B; do
					[ -s "$D/daemon.$side.log" ] || continue
					echo "---- daemon $side log ($D/daemon.$side.log, last 25 lines) ----"
					tail -n 25 "$D/daemon.$side.log"
				done
				if [ -s "$D/iperf3.err" ]; then
					echo "---- last iperf3 stderr ----"
					tail -n 5 "$D/iperf3.err"
				fi
			} | tee -a "$TMP/failures" >&2
		fi
		for p in $SRV_PID $PID_A $PID_B; do
			kill "$p" 2>/dev/null
		done
		for p in $SRV_PID $PID_A $PID_B; do
			for _ in $(seq 30); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		done
		# Warnings and errors the daemons logged during a run that otherwise passed.
		for side in A B; do
			[ -s "$D/daemon.$side.log" ] || continue
			grep -iE 'warn|error|fail|drop' "$D/daemon.$side.log" | grep -vE ' (worker [0-9]+|control): ' |
				sed -E 's/^[0-9TZ:. -]+//' | sort | uniq -c | sort -rn | head -n 3 |
				sed "s/^/$config run $run daemon $side: /" >>"$TMP/lognotes"
		done
		ip netns del "$NS_A" 2>/dev/null
		ip netns del "$NS_B" 2>/dev/null
		rm -f "/var/run/wireguard/$IF_A.sock" "/var/run/wireguard/$IF_B.sock"
		exit "$rc"
	}
	set -E
	trap teardown EXIT
	trap 'FAIL_REASON="interrupted"; exit 130' INT TERM
	trap 'FAIL_REASON="line $LINENO failed: $BASH_COMMAND"' ERR

	fail() {
		FAIL_REASON=$*
		exit 1
	}
	in_a() { ip netns exec "$NS_A" "$@"; }
	in_b() { ip netns exec "$NS_B" "$@"; }

	echo "$NS_A" >>"$TMP/netns"
	echo "$NS_B" >>"$TMP/netns"
	echo "/var/run/wireguard/$IF_A.sock" >>"$TMP/socks"
	echo "/var/run/wireguard/$IF_B.sock" >>"$TMP/socks"
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	in_a ip link set lo up
	in_b ip link set lo up
	ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B"
	in_a ip addr add "$ADDR_A/24" dev "$VETH_A"
	in_b ip addr add "$ADDR_B/24" dev "$VETH_B"
	in_a ip link set "$VETH_A" up
	in_b ip link set "$VETH_B" up

	# start_daemon SIDE NS IMPL IFNAME THREADS: sets PID_<SIDE>.
	start_daemon() {
		local side=$1 ns=$2 impl=$3 ifname=$4 thr=$5 pid

		case $impl in
		wgate) ip netns exec "$ns" "$WGATE" -f --tun-threads "$thr" "$ifname" \
			>"$D/daemon.$side.log" 2>&1 &
			;;
		wggo) ip netns exec "$ns" wireguard-go -f "$ifname" >"$D/daemon.$side.log" 2>&1 & ;;
		wggo-cur) ip netns exec "$ns" "$WGGO_CUR" -f "$ifname" >"$D/daemon.$side.log" 2>&1 & ;;
		esac
		pid=$!
		echo "$pid" >>"$TMP/pids"
		printf -v "PID_$side" %s "$pid"
	}
	# bring_up SIDE NS PID IFNAME KEY PORT TUN PEER_PUB PEER_ADDR PEER_PORT PEER_TUN
	bring_up() {
		local side=$1 ns=$2 pid=$3 ifname=$4 key=$5 port=$6 tun=$7
		local peer_pub=$8 peer_addr=$9 peer_port=${10} peer_tun=${11}

		local tries=$((UP_TIMEOUT * 20))

		until uapi_ready "$ns" "$ifname" >/dev/null 2>&1; do
			kill -0 "$pid" 2>/dev/null ||
				fail "side $side: the daemon exited before its UAPI socket was ready"
			tries=$((tries - 1))
			[ "$tries" -gt 0 ] ||
				fail "side $side: no UAPI socket /var/run/wireguard/$ifname.sock within ${UP_TIMEOUT}s"
			sleep 0.05
		done
		ip netns exec "$ns" wg set "$ifname" private-key "$key" listen-port "$port" \
			peer "$peer_pub" allowed-ips "$peer_tun/32" endpoint "$peer_addr:$peer_port" ||
			fail "side $side: wg set failed"
		ip netns exec "$ns" ip addr add "$tun/24" dev "$ifname"
		ip netns exec "$ns" ip link set "$ifname" mtu 1420 up
	}

	if [ "$impl_a" = none ]; then
		dst=$ADDR_B
	else
		wg genkey >"$D/a.key"
		wg genkey >"$D/b.key"
		start_daemon A "$NS_A" "$impl_a" "$IF_A" "$thr_a"
		start_daemon B "$NS_B" "$impl_b" "$IF_B" "$thr_b"
		bring_up A "$NS_A" "$PID_A" "$IF_A" "$D/a.key" "$PORT_A" "$TUN_A" \
			"$(wg pubkey <"$D/b.key")" "$ADDR_B" "$PORT_B" "$TUN_B"
		bring_up B "$NS_B" "$PID_B" "$IF_B" "$D/b.key" "$PORT_B" "$TUN_B" \
			"$(wg pubkey <"$D/a.key")" "$ADDR_A" "$PORT_A" "$TUN_A"
		tunnel_up() { in_a ping -c 1 -W 1 "$TUN_B"; }
		wait_for "$UP_TIMEOUT" tunnel_up ||
			fail "tunnel did not come up within ${UP_TIMEOUT}s (ping $TUN_A -> $TUN_B)"
		# Every thread, the workers included: both implementations start theirs by now.
		if [ -n "$PIN_A" ]; then
			taskset -a -pc "$PIN_A" "$PID_A" >/dev/null || fail "taskset on side A failed"
			taskset -a -pc "$PIN_B" "$PID_B" >/dev/null || fail "taskset on side B failed"
		fi
		dst=$TUN_B
	fi

	daemons_alive() {
		local side pid

		for side in A B; do
			pid=PID_$side
			pid=${!pid}
			[ -z "$pid" ] || kill -0 "$pid" 2>/dev/null ||
				fail "daemon $side died during $1 (pid $pid)"
		done
	}
	snap_cpu() {
		local side pid

		for side in A B; do
			pid=PID_$side
			pid=${!pid}
			[ -n "$pid" ] || continue
			proc_cpu "$pid" >"$D/cpu.$side.$1"
			thread_cpu "$pid" >"$D/thr.$side.$1"
			worker_counts "$side" "$pid" >"$D/wrk.$side.$1"
		done
	}
	# worker_counts SIDE PID: see wgate_worker_counts (nothing for wireguard-go).
	worker_counts() {
		wgate_worker_counts "$D/daemon.$1.log" "$2"
	}
	# record KEY VALUE
	record() { echo "$1 $2" >>"$OUT"; }

	# measure NAME IPERF3-ARGS...: one iperf3 test from A to the server in B. A test that
	# fails is recorded as such and the next one runs, unless a daemon died.
	measure() {
		local name=$1 json err bytes secs side pid t0 t1 ticks

		json=$D/$name.json
		shift
		in_b "${PIN_SERVER_CMD[@]}" iperf3 -s -1 -B "$dst" -p 5201 >"$D/server.$name.log" 2>&1 &
		SRV_PID=$!
		echo "$SRV_PID" >>"$TMP/pids"
		server_up() { in_b ss -Hltn "sport = :5201" | grep -q .; }
		wait_for 5 server_up || fail "iperf3 server did not start for $name"
		snap_cpu before
		timeout --foreground -k 2 $((DUR + 20)) ip netns exec "$NS_A" "${PIN_CLIENT_CMD[@]}" \
			iperf3 -c "$dst" -p 5201 -t "$DUR" -i 0 -J --connect-timeout 3000 "$@" \
			>"$json" 2>"$D/iperf3.err" || true
		snap_cpu after
		kill "$SRV_PID" 2>/dev/null || true
		wait "$SRV_PID" 2>/dev/null || true
		SRV_PID=
		daemons_alive "$name"
		err=$(jq -r '.error // empty' "$json" 2>/dev/null) || err="no JSON from iperf3"
		if [ -z "$err" ] && ! jq -e '.end.sum_received.bytes > 0' "$json" >/dev/null 2>&1; then
			err="nothing received"
		fi
		if [ -n "$err" ]; then
			record "$name.fail" 1
			echo "== $config run $run: $name failed: $err" | tee -a "$TMP/failures" >&2
			return 0
		fi
		bytes=$(jq -r '.end.sum_received.bytes' "$json")
		secs=$(jq -r '.end.sum_received.seconds' "$json")
		if [[ $name == udp* ]]; then
			record "$name.kpps" "$(jq -r '(.end.sum_received.packets - .end.sum_received.lost_packets) / .end.sum_received.seconds / 1000' "$json")"
			record "$name.loss" "$(jq -r '.end.sum_received.lost_percent' "$json")"
		else
			record "$name.gbps" "$(jq -r '.end.sum_received.bits_per_second / 1e9' "$json")"
			record "$name.retr" "$(jq -r '.end.sum_sent.retransmits // "NA"' "$json")"
		fi
		for side in A B; do
			pid=PID_$side
			pid=${!pid}
			[ -n "$pid" ] || continue
			t0=$(cat "$D/cpu.$side.before")
			t1=$(cat "$D/cpu.$side.after")
			ticks=$((t1 - t0))
			record "$name.cpu$side" "$(awk -v t="$ticks" -v hz="$CLK_TCK" -v b="$bytes" \
				'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')"
			# Packets each worker handled (rx + tx): "wrk<SIDE>.<name>.w<N>".
			awk -v n="$name" -v s="$side" '
				NR == FNR { before[$1] = $2 + $3; rx0[$1] = $2; tw0[$1] = $4; next }
				{ printf "wrk%s.%s.w%s %d\n", s, n, $1, $2 + $3 - before[$1]
				  rx += $2 - rx0[$1]; tw += $4 - tw0[$1] }
				# Decrypted packets per TUN write: how well the receive side coalesces.
				END { if (tw > 0) printf "%s.pktw%s %.1f\n", n, s, rx / tw }' \
				"$D/wrk.$side.before" "$D/wrk.$side.after" >>"$OUT"
			# Per-thread CPU seconds: "thr<SIDE>.<name>.<ordinal>" in TID order.
			awk -v hz="$CLK_TCK" -v n="$name" -v s="$side" -v main="$pid" '
				NR == FNR { before[$1] = $3; next }
				{ i = ($1 == main) ? "main" : "w" (++k)
				  printf "thr%s.%s.%s %.2f\n", s, n, i, ($3 - before[$1]) / hz }' \
				"$D/thr.$side.before" "$D/thr.$side.after" >>"$OUT"
		done
	}

	log "$config run $run: up (A pid ${PID_A:--}, B pid ${PID_B:--}), measuring"
	measure tcp1_ab
	measure tcp1_ba -R
	measure tcp4_ab -P 4
	measure udp64_ab -u -l 64 -b 0
	echo "ok 1" >>"$OUT"
}

# ---------------------------------------------------------------------------------------
# Header, runs, aggregation.
# ---------------------------------------------------------------------------------------
machine() {
	local rev buildtype=

	echo "date:          $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host:          $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel:        $(uname -sr); TCP congestion control $(sysctl -n net.ipv4.tcp_congestion_control 2>/dev/null || echo ?) (the namespaces inherit it)"
	if [ "$needs_wgate" -eq 1 ]; then
		rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
		local info
		info=$(dirname "$(dirname "$WGATE")")/meson-info/intro-buildoptions.json
		[ -r "$info" ] && buildtype=$(jq -r '.[] | select(.name == "buildtype") | .value' "$info")
		echo "wgate:         $(timeout 5 "$WGATE" --version </dev/null 2>/dev/null || echo "(no --version)") git $rev, ${buildtype:-unknown} build ($WGATE)"
	fi
	if [[ " ${CONFIGS[*]} " == *" wggo "* ]] || [[ " ${CONFIGS[*]} " == *" wgate-wggo "* ]]; then
		echo "wireguard-go:  $(wireguard-go --version | awk 'NR == 1 { print $2 }') (Debian $(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo ?)): rows marked (Debian)"
	fi
	if [[ " ${CONFIGS[*]} " == *" wggo-cur "* ]]; then
		echo "wireguard-go:  $WGGO_CUR_VERSION ($WGGO_CUR): the row marked (current)"
	fi
	echo "iperf3:        $(iperf3 --version | awk 'NR == 1 { print $2 }'); runs: $RUNS x ${DUR}s per test, median shown"
	# What one wakeup costs here, on one CPU and across two, and a 50 us nap (perf/bench_wakeup.c).
	local wakeup=
	[ -z "${WGATE:-}" ] || wakeup=$(dirname "$(dirname "$WGATE")")/perf/wgate-bench-wakeup
	if [ -n "$wakeup" ] && [ -x "$wakeup" ]; then
		echo "wakeups:       pipe round trip (two wakeups): $(timeout 90 "$wakeup" 2>&1 || echo failed)"
	fi
	if [ -n "$PIN_A" ]; then
		echo "pinned:        CPUs: gateway A $PIN_A, gateway B $PIN_B (all threads), iperf3 client $PIN_CLIENT, server $PIN_SERVER"
	fi
	if [ -n "${BENCH_CPU_LATENCY:-}" ]; then
		echo "cpu latency:   PM QoS request of ${BENCH_CPU_LATENCY} us held for the whole run (/dev/cpu_dma_latency now reads $(od -An -td4 -N4 /dev/cpu_dma_latency | tr -d ' ') us; idle driver $(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none))"
	fi
	# Anything else busy on the machine skews a 2-core benchmark: say so up front.
	echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)$(ps -eo pcpu=,comm= --sort=-pcpu |
		awk '$1 >= 10 { printf "%s %s %s%%", (n++ ? "," : "; busy:"), $2, $1 }')"
}

mkdir -p "$RESULTS"
HEADER=$(machine)
echo "$HEADER"
start=$(date +%s)
tag_n=0
for ((run = 1; run <= RUNS; run++)); do
	# Round-robin, and each run starts one configuration further, so that no
	# configuration always runs first (cold) or right after the same neighbour.
	n=${#CONFIGS[@]}
	for ((i = 0; i < n; i++)); do
		config=${CONFIGS[$(((i + run - 1) % n))]}
		tag_n=$((tag_n + 1))
		log "run $run/$RUNS: $config"
		set +e
		(
			set -e
			run_one "$config" "$run" "$$-$tag_n"
		)
		rc=$?
		set -e
		[ "$rc" -eq 130 ] && exit 130
	done
done
elapsed=$(($(date +%s) - start))

CSV=$RESULTS/$STEM.csv
TXT=$RESULTS/$STEM.txt
PNG=$RESULTS/${STEM/latest/bench}.png
COLS=(tcp1_ab.gbps tcp1_ab.retr tcp1_ba.gbps tcp1_ba.retr tcp4_ab.gbps tcp4_ab.retr
	tcp1_ab.cpuA tcp1_ab.cpuB tcp1_ba.cpuA tcp1_ba.cpuB tcp4_ab.cpuA tcp4_ab.cpuB
	udp64_ab.kpps udp64_ab.loss udp64_ab.cpuA udp64_ab.cpuB)
# ratio KEY CONFIG REF: CONFIG's median over REF's, or "-".
ratio() {
	local v r

	v=$(median "$1" "$2")
	r=$(median "$1" "$3")
	if [ "$v" = - ] || [ "$r" = - ]; then echo -; else awk -v a="$v" -v b="$r" 'BEGIN { printf "%.3f", a / b }'; fi
}
{
	# The last four columns: Gbit/s over Debian's wireguard-go against itself (wggo) and
	# over current wireguard-go against itself (wggo-cur), "-" without that reference.
	echo "config,label,runs_ok,runs,${COLS[*]},tcp1_ab.x_wggo_debian,tcp1_ab.x_wggo_current,tcp4_ab.x_wggo_debian,tcp4_ab.x_wggo_current" | tr ' ' ','
	for c in "${CONFIGS[@]}"; do
		line="$c,\"$(label_of "$c")\",$(count ok "$c"),$RUNS"
		for k in "${COLS[@]}"; do
			line+=",$(median "$k" "$c")"
		done
		for k in tcp1_ab.gbps tcp4_ab.gbps; do
			line+=",$(ratio "$k" "$c" wggo),$(ratio "$k" "$c" wggo-cur)"
		done
		echo "$line"
	done
} >"$CSV"
# Every run's raw values too, for whoever wants to look at the spread.
runs_csv >"$RESULTS/$STEM-runs.csv"

fmt() { # fmt PRINTF-FORMAT VALUE
	if [ "$2" = - ]; then echo FAIL; else printf "$1" "$2"; fi
}

table() {
	local c ok v

	echo
	echo "Single stream TCP A->B and B->A, 4 streams A->B (Gbit/s at the receiver; retr = TCP"
	echo "retransmits of the sender), CPU seconds per GB moved by each gateway process during"
	echo "the single-stream A->B test (A encrypts, B decrypts), 64-byte UDP A->B (kpps received):"
	echo
	printf "%-29s %4s | %7s %6s | %7s %6s | %7s %6s | %6s %6s | %7s %6s\n" \
		configuration runs "A->B" retr "B->A" retr "4xA->B" retr "cpuA" "cpuB" "udp64" "loss%"
	printf "%-29s %4s | %7s %6s | %7s %6s | %7s %6s | %6s %6s | %7s %6s\n" \
		"" "ok" "Gbit/s" "" "Gbit/s" "" "Gbit/s" "" "s/GB" "s/GB" "kpps" ""
	printf '%.0s-' {1..119}
	echo
	for c in "${CONFIGS[@]}"; do
		ok="$(count ok "$c")/$RUNS"
		if [ "$c" = raw ]; then cpuA=n/a cpuB=n/a; else
			cpuA=$(fmt %.2f "$(median tcp1_ab.cpuA "$c")")
			cpuB=$(fmt %.2f "$(median tcp1_ab.cpuB "$c")")
		fi
		printf "%-29s %4s | %7s %6s | %7s %6s | %7s %6s | %6s %6s | %7s %6s\n" \
			"$(label_of "$c")" "$ok" \
			"$(fmt %.2f "$(median tcp1_ab.gbps "$c")")" "$(fmt %.0f "$(median tcp1_ab.retr "$c")")" \
			"$(fmt %.2f "$(median tcp1_ba.gbps "$c")")" "$(fmt %.0f "$(median tcp1_ba.retr "$c")")" \
			"$(fmt %.2f "$(median tcp4_ab.gbps "$c")")" "$(fmt %.0f "$(median tcp4_ab.retr "$c")")" \
			"$cpuA" "$cpuB" \
			"$(fmt %.1f "$(median udp64_ab.kpps "$c")")" "$(fmt %.1f "$(median udp64_ab.loss "$c")")"
	done

	# Throughput ratios, each against a named reference: Debian's wireguard-go (the
	# version Debian ships, without offloads) and current wireguard-go (WGGO_MODERN).
	local refs=() ref
	for ref in wggo wggo-cur; do
		[[ " ${CONFIGS[*]} " == *" $ref "* ]] && [ "$(median tcp1_ab.gbps "$ref")" != - ] && refs+=("$ref")
	done
	if [ ${#refs[@]} -gt 0 ]; then
		echo
		echo "Throughput relative to wireguard-go against itself, each reference named above its"
		echo "columns (Debian's: wggo<->wggo (Debian); current: wggo<->wggo (current)): this row's"
		echo "Gbit/s over the reference row's, in the same test:"
		local hdr="" sep=""
		for ref in "${refs[@]}"; do
			if [ "$ref" = wggo ]; then
				hdr+=$(printf " | %-23s" "vs Debian wireguard-go")
			else
				hdr+=$(printf " | %-23s" "vs current wireguard-go")
			fi
			sep+=$(printf " | %7s %7s %7s" "1xA->B" "B->A" "4xA->B")
		done
		printf "  %-29s%s\n" "" "$hdr"
		printf "  %-29s%s\n" "" "$sep"
		for c in "${CONFIGS[@]}"; do
			[[ $c == wgate* || $c == wggo* ]] || continue
			line=$(printf "  %-29s" "$(label_of "$c")")
			for ref in "${refs[@]}"; do
				line+=" |"
				for k in tcp1_ab.gbps tcp1_ba.gbps tcp4_ab.gbps; do
					v=$(median "$k" "$c")
					r=$(median "$k" "$ref")
					if [ "$v" = - ] || [ "$r" = - ]; then
						line+=$(printf " %7s" FAIL)
					else
						line+=$(awk -v a="$v" -v b="$r" 'BEGIN { printf " %6.2fx", a / b }')
					fi
				done
			done
			echo "$line"
		done
	fi

	echo
	echo "CPU seconds per GB in the other tests (A / B):"
	for c in "${CONFIGS[@]}"; do
		[ "$c" = raw ] && continue
		printf "  %-29s B->A %s / %s   4xA->B %s / %s   udp64 %s / %s\n" "$(label_of "$c")" \
			"$(fmt %.2f "$(median tcp1_ba.cpuA "$c")")" "$(fmt %.2f "$(median tcp1_ba.cpuB "$c")")" \
			"$(fmt %.2f "$(median tcp4_ab.cpuA "$c")")" "$(fmt %.2f "$(median tcp4_ab.cpuB "$c")")" \
			"$(fmt %.2f "$(median udp64_ab.cpuA "$c")")" "$(fmt %.2f "$(median udp64_ab.cpuB "$c")")"
	done

	# wgate's receive side: packets it decrypted per write to its TUN device (a TCP
	# super-packet of 64 KiB at this MTU is 47 segments).
	local pk=0
	for c in "${CONFIGS[@]}"; do
		[[ $c == wgate-t* ]] || continue
		if [ "$pk" -eq 0 ]; then
			echo
			echo "wgate packets received per TUN write (B in A->B tests, A in B->A; 47 = a full 64 KiB TCP super-packet):"
			pk=1
		fi
		printf "  %-29s A->B %s   B->A %s   4xA->B %s\n" "$(label_of "$c")" \
			"$(median tcp1_ab.pktwB "$c")" "$(median tcp1_ba.pktwA "$c")" "$(median tcp4_ab.pktwB "$c")"
	done

	# Per-thread CPU: wgate exposes no per-worker packet counters yet, so the CPU time of
	# each thread during the 4-stream test stands in for "every worker carries load".
	# Per run, not a median: which worker is busy changes from run to run.
	local any=0 r f
	for c in "${CONFIGS[@]}"; do
		[[ $c == wgate* ]] || continue
		for side in A B; do
			[ "$c" = wgate-wggo ] && [ "$side" = B ] && continue
			for ((r = 1; r <= RUNS; r++)); do
				f=$TMP/res/$c.$r
				grep -q "^thr$side\.tcp4_ab\." "$f" 2>/dev/null || continue
				if [ "$any" -eq 0 ]; then
					echo
					echo "wgate per-thread CPU seconds during the 4-stream A->B test, each run (main = the"
					echo "control thread, wN = the workers in TID order; busy = workers with at least 5% of"
					echo "the workers' CPU), and the packets (rx + tx) each worker handled (w0..wN-1, from"
					echo "the counters wgate logs on SIGUSR1):"
					any=1
				fi
				awk -v p="thr$side.tcp4_ab." 'index($1, p) == 1 { print substr($1, length(p) + 1), $2 }' "$f" |
					sort -V | awk -v l="$(label_of "$c")" -v s="$side" -v r="$r" '
						{ line = line " " $1 "=" $2; if ($1 != "main") { v[++n] = $2; t += $2 } }
						END { for (i = 1; i <= n; i++) if (t > 0 && v[i] >= 0.05 * t) busy++
						      printf "  %-29s %s run %d:%s  (busy: %d of %d)\n", l, s, r, line, busy, n }'
				awk -v p="wrk$side.tcp4_ab." 'index($1, p) == 1 { print substr($1, length(p) + 1), $2 }' "$f" |
					sort -V | awk -v l="$(label_of "$c")" -v s="$side" -v r="$r" '
						{ line = line " " $1 "=" $2 }
						END { if (line != "") printf "  %-29s %s run %d: packets%s\n", l, s, r, line }'
			done
		done
	done

	if [ -s "$TMP/failures" ]; then
		echo
		echo "Failures:"
		sed 's/^/  /' "$TMP/failures"
	fi
	if [ -s "$TMP/lognotes" ]; then
		echo
		echo "Daemon log lines matching warn/error/fail/drop (count, first 3 per daemon and run):"
		sed 's/^/  /' "$TMP/lognotes"
	fi
	echo
	echo "Total run time: $((elapsed / 60)) min $((elapsed % 60)) s. Data: ${CSV#"$ROOT"/}, plot: ${PNG#"$ROOT"/}"
}

{
	echo "$HEADER"
	table
} >"$TXT"
table

# The plot: Gbit/s per tunnel configuration and direction, and CPU s/GB of each end.
# The bare veth is an order of magnitude above any tunnel: it goes in the title, not a bar.
raw_gbps=$(awk -F, '$1 == "raw" { print $5 }' "$CSV")
raw_note=
[ -n "$raw_gbps" ] && [ "$raw_gbps" != - ] && raw_note=$(printf " (bare veth: %.1f Gbit/s)" "$raw_gbps")
awk -F, 'NR > 1 && $1 != "raw" {
	gsub(/"/, "", $2); gsub(/<->/, "-", $2)
	for (i = 5; i <= NF; i++) if ($i == "-") $i = 0
	print "\"" $2 "\"", $5, $7, $9, $11, $12
}' "$CSV" >"$TMP/plot.dat"
# The title names the wireguard-go versions in the plot.
versions=()
[[ " ${CONFIGS[*]} " != *" wggo "* ]] || versions+=("Debian $(wireguard-go --version | awk 'NR == 1 { print $2 }')")
[[ " ${CONFIGS[*]} " != *" wggo-cur "* ]] || versions+=("current $WGGO_CUR_VERSION")
wggo_note=
if [ ${#versions[@]} -gt 0 ]; then
	wggo_note=" (${versions[0]}${versions[1]:+, ${versions[1]}})"
fi
if [ -s "$TMP/plot.dat" ]; then
	gnuplot <<EOF
set terminal pngcairo size 1200,900 font "sans,10"
set output "$PNG"
set multiplot layout 2,1 title "wgate vs wireguard-go$wggo_note: iperf3 through a veth between two netns, $(nproc) CPUs, median of ${RUNS}x${DUR}s"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside right top vertical
set xtics noenhanced
set yrange [0:*]
set ylabel "Gbit/s"
set title "TCP throughput at the receiver$raw_note"
plot "$TMP/plot.dat" using 2:xtic(1) title "1 stream A->B", \
     "" using 3 title "1 stream B->A", \
     "" using 4 title "4 streams A->B"
set ylabel "CPU s / GB"
set title "Gateway CPU seconds per GB moved, single-stream A->B (0 = failed)"
plot "$TMP/plot.dat" using 5:xtic(1) title "end A (encrypts)", \
     "" using 6 title "end B (decrypts)"
unset multiplot
EOF
fi
echo "written: ${TXT#"$ROOT"/} ${CSV#"$ROOT"/} ${RESULTS#"$ROOT"/}/$STEM-runs.csv ${PNG#"$ROOT"/}"
