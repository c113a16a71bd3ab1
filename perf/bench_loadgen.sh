#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Many peers' sessions against one gateway: perf/loadgen's simulated peers hold live
# sessions (handshakes, ICMP echo flows, keepalives, rekeys) against wgate, Debian's
# wireguard-go and ../shared/tools/wireguard-go-0.0.20250522, one after the other. See
# perf/README.md, "loadgen".
#
#   ns wbl-l-TAG (loadgen)                               ns wbl-g-TAG (gateway)
#   wgate-loadgen, sources 10.200.0.0/16   <-veth->      IMPL -f, udp 51821
#   (AnyIP: local 10.200.0.0/16 dev lo)                    tunnel 10.128.0.1/16
#   192.168.244.1                                          192.168.244.2
#
# Per gateway, two runs:
#   burst: BENCH_BURST_PEERS peers start at once for BENCH_BURST_SECONDS: the gateway's
#          handshake capacity; it goes under load, so the handshakes carry cookies.
#   hold:  BENCH_PEERS peers, first handshakes spread over BENCH_RAMP seconds, held for
#          BENCH_SECONDS with echo flows at BENCH_RATE per session and rekeys (120 s).
# Reported per run: the loadgen's summary line, its cookie replies, the gateway's CPU
# seconds (whole process, and wgate's control thread, which does every handshake),
# handshakes per CPU second (control thread for wgate, process for wireguard-go), the
# gateway's peak RSS, and the loadgen's own CPU seconds (both share the machine's CPUs,
# and the loadgen's handshake crypto costs about what the gateway's does). The burst's
# handshakes per CPU second are the handshake cost; the hold's include the echo flows
# and timers. wireguard-go caps a device at 65,536 peers.
#
# Usage: perf/bench_loadgen.sh (as root)
# Environment: BENCH_PEERS (10000), BENCH_SECONDS (180), BENCH_RAMP (20), BENCH_RATE (1),
# BENCH_BURST_PEERS (BENCH_PEERS), BENCH_BURST_SECONDS (20), BENCH_IMPLS ("wgate wggo
# wggo-0.0.20250522"), BENCH_RUNS ("burst hold"), WGATE, LOADGEN, WGATE_THREADS (2),
# WGGO_MODERN (current wireguard-go; default ../shared/tools/wireguard-go-0.0.20250522),
# BENCH_RESULTS (default perf/results; writes loadgen.txt).
# A short check: BENCH_PEERS=2000 BENCH_SECONDS=30 BENCH_IMPLS=wgate perf/bench_loadgen.sh
# `A && B || C` is meant where used.
# shellcheck disable=SC2015
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/bench_lib.sh
. "$ROOT/perf/bench_lib.sh"
PEERS=${BENCH_PEERS:-10000}
DUR=${BENCH_SECONDS:-180}
RAMP=${BENCH_RAMP:-20}
RATE=${BENCH_RATE:-1}
BURST_PEERS=${BENCH_BURST_PEERS:-$PEERS}
BURST_DUR=${BENCH_BURST_SECONDS:-20}
IMPLS=${BENCH_IMPLS:-wgate wggo wggo-0.0.20250522}
RUNS=${BENCH_RUNS:-burst hold}
THREADS=${WGATE_THREADS:-2}
RESULTS=${BENCH_RESULTS:-$ROOT/perf/results}
SHARED_WGGO=$(readlink -f "${WGGO_MODERN:-$ROOT/../shared/tools/wireguard-go-0.0.20250522}" 2>/dev/null || true)
SEED=20
PORT=51821

bench_no_args "$@"
bench_count BENCH_PEERS "$PEERS"
bench_count BENCH_SECONDS "$DUR"
bench_count BENCH_BURST_PEERS "$BURST_PEERS"
bench_count BENCH_BURST_SECONDS "$BURST_DUR"
[ "$PEERS" -le 65000 ] && [ "$BURST_PEERS" -le 65000 ] ||
	{ echo "$0: at most 65000 peers (the tunnel range, and wireguard-go's cap)" >&2; exit 2; }
for impl in $IMPLS; do
	case $impl in
	wgate | wggo | wggo-0.0.20250522) ;;
	*) echo "$0: unknown implementation $impl (wgate, wggo, wggo-0.0.20250522)" >&2; exit 2 ;;
	esac
done
for kind in $RUNS; do
	[[ $kind =~ ^(burst|hold)$ ]] || { echo "$0: unknown run $kind (burst, hold)" >&2; exit 2; }
done
bench_root

bench_tools 1
bench_wgate
bench_loadgen
CLK_TCK=$(getconf CLK_TCK)

bench_tmp bench-loadgen "wbl*-$$.sock"

# impl_path NAME: the gateway binary, or "" when it is not installed.
impl_path() {
	case $1 in
	wgate) echo "$WGATE" ;;
	wggo) command -v wireguard-go || true ;;
	wggo-0.0.20250522) [ -x "$SHARED_WGGO" ] && echo "$SHARED_WGGO" || true ;;
	esac
}

# ticks PID [TID]: utime + stime of the process (or one thread), in clock ticks.
ticks() {
	local stat

	stat=$(cat "/proc/$1/${2:+task/$2/}stat" 2>/dev/null) || { echo 0; return; }
	stat=${stat##*) }
	awk '{ print $12 + $13 }' <<<"$stat"
}

# run_one IMPL KIND PEERS SECONDS RAMP: one loadgen run against a fresh gateway; appends
# one result line to $TMP/results.
run_one() {
	local impl=$1 kind=$2 np=$3 secs=$4 ramp=$5 bin tag ng nl ifg va vb pid d rc=0
	local c0 t0 c1 t1 hwm summary cookies lgcpu hs cpu ctl per

	bin=$(impl_path "$impl")
	if [ -z "$bin" ]; then
		echo "$impl $kind: skipped, not installed" >>"$TMP/results"
		log "$impl: not installed, skipped"
		return 0
	fi
	tag=$kind-$$
	ng=wbl-g-$tag nl=wbl-l-$tag ifg=wbl${kind:0:1}-$$ va=wblv${kind:0:1}$$ vb=wblw${kind:0:1}$$
	ifg=${ifg:0:15} va=${va:0:15} vb=${vb:0:15}
	d=$TMP/$impl.$kind
	mkdir -p "$d"
	echo "$ng" >>"$TMP/netns"
	echo "$nl" >>"$TMP/netns"
	bench_netns_pair "$nl" "$ng" "$va" "$vb" 192.168.244
	ip -n "$nl" route add local 10.200.0.0/16 dev lo
	ip -n "$ng" route add 10.200.0.0/16 via 192.168.244.1

	if [ "$impl" = wgate ]; then
		ip netns exec "$ng" "$bin" -f --tun-threads "$THREADS" "$ifg" >"$d/gw.log" 2>&1 &
	else
		ip netns exec "$ng" "$bin" -f "$ifg" >"$d/gw.log" 2>&1 &
	fi
	pid=$!
	wait_for 10 uapi_ready "$ng" "$ifg" || { log "$impl did not start: $(tail -n 3 "$d/gw.log")"; return 1; }
	wg genkey >"$d/gw.key"
	ip netns exec "$ng" wg set "$ifg" private-key "$d/gw.key" listen-port "$PORT"
	ip -n "$ng" addr add 10.128.0.1/16 dev "$ifg"
	ip -n "$ng" link set "$ifg" up
	"$LOADGEN" --print-peers --peers "$np" --seed "$SEED" >"$d/peers.conf"
	ip netns exec "$ng" wg addconf "$ifg" "$d/peers.conf"

	log "$impl $kind: $np peers, $secs s, ramp $ramp s"
	c0=$(ticks "$pid") t0=$(ticks "$pid" "$pid")
	timeout -k 5 $((secs + 120)) ip netns exec "$nl" "$LOADGEN" --quiet \
		--server "192.168.244.2:$PORT" --server-public-key "$(wg pubkey <"$d/gw.key")" \
		--peers "$np" --seconds "$secs" --seed "$SEED" --ramp "$ramp" --rate "$RATE" \
		--source-net 10.200.0.0/16 --sockets 64 --drain 5 \
		>"$d/lg.out" 2>"$d/lg.err" || rc=$?
	c1=$(ticks "$pid") t1=$(ticks "$pid" "$pid")
	hwm=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo -)
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true

	summary=$(grep '^loadgen: [0-9]* sessions' "$d/lg.out" || echo "loadgen: no summary (exit $rc): $(tail -n 2 "$d/lg.err" | tr '\n' ' ')")
	cookies=$(sed -n 's/.*, \([0-9]*\) cookie replies,.*/\1/p' "$d/lg.err")
	lgcpu=$(sed -n 's/^loadgen: details: CPU \([0-9.]*\) s user \([0-9.]*\) s system.*/\1 \2/p' "$d/lg.err" |
		awk '{ printf "%.1f", $1 + $2 }')
	hs=$(sed -n 's/^loadgen: [0-9]* sessions, \([0-9]*\) handshakes.*/\1/p' "$d/lg.out")
	cpu=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')
	ctl=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t / hz }')
	# wgate: every handshake is the control thread's; wireguard-go spreads them, so the process.
	[ "$impl" = wgate ] || ctl=$cpu
	per=$(awk -v h="${hs:-0}" -v c="$ctl" 'BEGIN { if (c > 0) printf "%.0f", h / c; else print "-" }')
	{
		echo "$impl $kind (exit $rc): $summary"
		echo "    cookie replies ${cookies:--}; gateway CPU ${cpu} s ($([ "$impl" = wgate ] && echo "control thread $ctl s" || echo "all threads")); ${per} handshakes per CPU second; peak RSS ${hwm} MiB; loadgen CPU ${lgcpu:--} s"
	} >>"$TMP/results"
	for n in "$ng" "$nl"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null || true
		done
		ip netns del "$n" 2>/dev/null || true
	done
}

HEADER="date:    $(date -u '+%Y-%m-%d %H:%M UTC')
host:    $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(uname -sr)
wgate:   $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) ($WGATE, $THREADS workers)
runs:    burst $BURST_PEERS peers at once for ${BURST_DUR}s; hold $PEERS peers, ramp ${RAMP}s, ${DUR}s; $RATE echo/s per session"
echo "$HEADER"
: >"$TMP/results"
for impl in $IMPLS; do
	for kind in $RUNS; do
		case $kind in
		burst) run_one "$impl" burst "$BURST_PEERS" "$BURST_DUR" 0 ;;
		hold) run_one "$impl" hold "$PEERS" "$DUR" "$RAMP" ;;
		esac
	done
done
cat "$TMP/results"
mkdir -p "$RESULTS"
{ echo "$HEADER"; cat "$TMP/results"; } >"$RESULTS/loadgen.txt"
log "written: $RESULTS/loadgen.txt"
