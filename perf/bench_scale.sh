#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Many idle peers on one device: how long `wg addconf` takes to load N peers (an IPv4
# /32 and an IPv6 /128 each, from perf/wgate-loadgen --print-peers), how long
# `wg show IFACE dump` takes to list them, how long loading the same peers again takes
# with the first set a `wg setconf` (a replacing set: all removed, all added again), and the gateway's peak RSS (VmHWM) with the
# bytes per peer above an empty device. Against wgate and, for reference, Debian's
# wireguard-go, which caps a device at 65,536 peers: it gets the first BENCH_WGGO_PEERS.
#
# Each gateway runs alone in a fresh network namespace; no traffic flows.
#
# Usage: perf/bench_scale.sh (as root)
# Environment: BENCH_PEERS (100000), BENCH_IMPLS ("wgate wggo"), BENCH_RUNS (1),
# BENCH_WGGO_PEERS (60000: wireguard-go's peers when BENCH_PEERS is more). The peers go
# in sets of at most BENCH_CHUNK (200000) (one `wg addconf` each: a set is capped at 64 MiB
# of text).
# WGATE, LOADGEN, WGATE_THREADS (2), BENCH_RESULTS (default perf/results; writes scale.txt),
# BENCH_MALLOC_CONF: wgate's jemalloc options; "dirty_decay_ms:0,muzzy_decay_ms:0" returns
# freed pages at once, so that the RSS after the load counts live peers only (by default
# jemalloc keeps the parsed set's freed pages for up to 10 s, and a fast load ends sooner).
# A 1M-peer run: BENCH_PEERS=1000000 BENCH_IMPLS=wgate perf/bench_scale.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/bench_lib.sh
. "$ROOT/perf/bench_lib.sh"
PEERS=${BENCH_PEERS:-100000}
IMPLS=${BENCH_IMPLS:-wgate wggo}
RUNS=${BENCH_RUNS:-1}
WGGO_PEERS=${BENCH_WGGO_PEERS:-60000}
CHUNK=${BENCH_CHUNK:-200000}
THREADS=${WGATE_THREADS:-2}
RESULTS=${BENCH_RESULTS:-$ROOT/perf/results}
SEED=20

bench_no_args "$@"
bench_count BENCH_PEERS "$PEERS" 2000000
bench_count BENCH_RUNS "$RUNS"
bench_count BENCH_WGGO_PEERS "$WGGO_PEERS" 65536
for impl in $IMPLS; do
	case $impl in
	wgate | wggo) ;;
	*) echo "$0: unknown implementation $impl (wgate, wggo)" >&2; exit 2 ;;
	esac
done
bench_root

bench_tools 1
bench_wgate
bench_loadgen

bench_tmp bench-scale "wbs*-$$.sock"

# kib PID KEY: a /proc/PID/status value in KiB.
kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# seconds CMD...: runs CMD, prints its wall time in seconds (3 decimals).
seconds() {
	local t0 t1

	t0=$(date +%s%N)
	"$@" >/dev/null || { log "failed: $*"; return 1; }
	t1=$(date +%s%N)
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e9 }'
}

# The peers: /32s in 10.64.0.0/10 and /128s in fd00:128::/64 (room for 4M).
log "generating $PEERS peers (seed $SEED)"
"$LOADGEN" --print-peers --peers "$PEERS" --seed "$SEED" --tunnel-net 10.64.0.0/10 \
	>"$TMP/peers.conf"

# load_chunks NS IFACE [setconf]: wg addconf of every $TMP/chunk.* in turn (with
# setconf: wg setconf of the first).
load_chunks() {
	local f cmd=${3:-addconf}

	for f in "$TMP"/chunk.*; do
		ip netns exec "$1" wg "$cmd" "$2" "$f" || return 1
		cmd=addconf
	done
}

# run_one IMPL RUN: one load into a fresh gateway; appends one result line to $TMP/results.
run_one() {
	local impl=$1 run=$2 ns ifc bin pid base load dump replace hwm hwm_load rss n per conf np

	case $impl in
	wgate) bin=$WGATE ;;
	wggo) bin=$(command -v wireguard-go || true) ;;
	esac
	if [ -z "$bin" ]; then
		echo "$impl: skipped, not installed" >>"$TMP/results"
		return 0
	fi
	conf=$TMP/peers.conf np=$PEERS
	if [ "$impl" = wggo ] && [ "$PEERS" -gt "$WGGO_PEERS" ]; then
		# Its cap is 65,536: the first WGGO_PEERS of the same peers.
		np=$WGGO_PEERS conf=$TMP/peers-wggo.conf
		head -n $((4 * np)) "$TMP/peers.conf" >"$conf"
	fi
	ns=wbs-$impl-$run-$$ ifc=wbs$run-$$
	ifc=${ifc:0:15}
	echo "$ns" >>"$TMP/netns"
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	if [ "$impl" = wgate ]; then
		ip netns exec "$ns" env MALLOC_CONF="${BENCH_MALLOC_CONF:-}" "$bin" -f --tun-threads "$THREADS" "$ifc" >"$TMP/$impl.$run.log" 2>&1 &
	else
		ip netns exec "$ns" env LOG_LEVEL=error "$bin" -f "$ifc" >"$TMP/$impl.$run.log" 2>&1 &
	fi
	pid=$!
	wait_for 10 uapi_ready "$ns" "$ifc" || { log "$impl did not start: $(tail -n 3 "$TMP/$impl.$run.log")"; return 1; }
	wg genkey >"$TMP/gw.key"
	ip netns exec "$ns" wg set "$ifc" private-key "$TMP/gw.key" listen-port 51820
	ip -n "$ns" link set "$ifc" up
	base=$(kib "$pid" VmRSS)
	# At most CHUNK peers per addconf: a set is capped at 64 MiB of text (~500k peers).
	rm -f "$TMP"/chunk.*
	split -l $((4 * CHUNK)) -a 3 "$conf" "$TMP/chunk."
	load=$(seconds load_chunks "$ns" "$ifc")
	hwm_load=$(kib "$pid" VmHWM)
	dump=$(seconds ip netns exec "$ns" wg show "$ifc" dump)
	n=$(ip netns exec "$ns" wg show "$ifc" peers | wc -l)
	hwm=$(kib "$pid" VmHWM) rss=$(kib "$pid" VmRSS)
	# The same peers again, the first set replacing: every peer removed, then all added
	# (its [Interface] keeps the key: setconf clears what the file does not give).
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\n\n' "$(cat "$TMP/gw.key")" >"$TMP/set.conf"
	cat "$TMP/chunk.aaa" >>"$TMP/set.conf"
	mv "$TMP/set.conf" "$TMP/chunk.aaa"
	replace=$(seconds load_chunks "$ns" "$ifc" setconf)
	ip netns exec "$ns" wg show "$ifc" public-key >/dev/null
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	per=$(awk -v a="$rss" -v b="$base" -v n="$n" 'BEGIN { printf "%.0f", n ? (a - b) * 1024 / n : 0 }')
	printf '%s run %s: %s peers: addconf %s s, dump %s s, setconf (replace) %s s, peak RSS %.0f MiB (%.0f MiB before the dump), RSS %.0f MiB (%s B per idle peer above an empty device)\n' \
		"$impl" "$run" "$n" "$load" "$dump" "$replace" "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$hwm_load" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$per" | tee -a "$TMP/results" >&2
	[ "$n" -eq "$np" ] || { log "$impl: $n peers listed, $np loaded"; return 1; }
	ip netns del "$ns"
}

for run in $(seq 1 "$RUNS"); do
	for impl in $IMPLS; do
		run_one "$impl" "$run"
	done
done

mkdir -p "$RESULTS"
{
	echo "# perf/bench_scale.sh $(date -u +%FT%TZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)," \
		"$PEERS peers, $(nproc) CPUs, wgate --tun-threads $THREADS"
	cat "$TMP/results"
} | tee "$RESULTS/scale.txt"
