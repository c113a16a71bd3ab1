#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Throughput with many idle peers loaded: one TCP stream through a wgate<->wgate tunnel,
# alternating runs without and with BENCH_PEERS idle peers on gateway A (an IPv4 /32 and
# an IPv6 /128 each, from perf/wgate-loadgen --print-peers). The real peer sits inside
# the loaded peers' range (10.65.200.2 among /32s from 10.64.0.2 up), so A's allowed-IPs
# lookups for it walk the dense part of the table, as on a gateway whose clients share a
# pool. Between runs the peers are loaded with `wg addconf` and removed with `wg syncconf`
# (which leaves the real peer and its session alone).
#
#   ns wbl2-a-TAG: wgate A (+ idle peers)  <-veth 192.168.245.0/24->  ns wbl2-b-TAG: wgate B
#   tunnel 10.65.200.1/24, iperf3 client (out)                        10.65.200.2/24, iperf3 server
#
# Per round (BENCH_RUNS rounds): "without" then "with" (the order flips every round, so
# neither always runs first), each direction in BENCH_DIRS: out (A sends: TUN read,
# allowed-IPs lookup, encrypt) and in (-R: A receives: index lookup, decrypt, source
# check). Reported: each run's Gbit/s and TCP retransmits, the medians, and with/without.
# Results: BENCH_RESULTS/loaded.txt (default perf/results).
#
# Usage: perf/bench_loaded.sh (as root)
# Environment: BENCH_PEERS (100000), BENCH_RUNS (5), BENCH_SECONDS (10), BENCH_DIRS
# ("out in"), WGATE, LOADGEN, WGATE_THREADS (2), BENCH_RESULTS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/bench_lib.sh
. "$ROOT/perf/bench_lib.sh"
PEERS=${BENCH_PEERS:-100000}
RUNS=${BENCH_RUNS:-5}
DUR=${BENCH_SECONDS:-10}
DIRS=${BENCH_DIRS:-out in}
THREADS=${WGATE_THREADS:-2}
RESULTS=${BENCH_RESULTS:-$ROOT/perf/results}
SEED=20

bench_no_args "$@"
bench_count BENCH_PEERS "$PEERS" 200000 # one wg addconf
bench_count BENCH_RUNS "$RUNS"
bench_count BENCH_SECONDS "$DUR"
for d in $DIRS; do
	case $d in
	out | in) ;;
	*) echo "$0: unknown direction $d (out, in)" >&2; exit 2 ;;
	esac
done
bench_root
bench_tools 1
bench_wgate
bench_loadgen
bench_tmp bench-loaded "wbl2*-$$.sock"

NS_A=wbl2-a-$$ NS_B=wbl2-b-$$
IF_A=wbl2a-$$ IF_B=wbl2b-$$
IF_A=${IF_A:0:15} IF_B=${IF_B:0:15}
printf '%s\n%s\n' "$NS_A" "$NS_B" >>"$TMP/netns"
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

bench_netns_pair "$NS_A" "$NS_B" "wbl2va$$" "wbl2vb$$" 192.168.245

ip netns exec "$NS_A" "$WGATE" -f --tun-threads "$THREADS" "$IF_A" >"$TMP/a.log" 2>&1 &
pid_a=$!
in_b "$WGATE" -f --tun-threads "$THREADS" "$IF_B" >"$TMP/b.log" 2>&1 &
wait_for 10 uapi_ready "$NS_A" "$IF_A" || { log "wgate A did not start: $(tail -n 3 "$TMP/a.log")"; exit 1; }
wait_for 10 uapi_ready "$NS_B" "$IF_B" || { log "wgate B did not start: $(tail -n 3 "$TMP/b.log")"; exit 1; }
wg genkey >"$TMP/a.key"
wg genkey >"$TMP/b.key"
pub_a=$(wg pubkey <"$TMP/a.key")
pub_b=$(wg pubkey <"$TMP/b.key")
# A's configuration without the idle peers: what `wg syncconf` returns it to.
cat >"$TMP/base.conf" <<EOF
[Interface]
PrivateKey = $(cat "$TMP/a.key")
ListenPort = 51820

[Peer]
PublicKey = $pub_b
AllowedIPs = 10.65.200.2/32
Endpoint = 192.168.245.2:51821
EOF
in_a wg setconf "$IF_A" "$TMP/base.conf"
in_b wg set "$IF_B" private-key "$TMP/b.key" listen-port 51821 \
	peer "$pub_a" allowed-ips 10.65.200.1/32 endpoint 192.168.245.1:51820
ip -n "$NS_A" addr add 10.65.200.1/24 dev "$IF_A"
ip -n "$NS_B" addr add 10.65.200.2/24 dev "$IF_B"
ip -n "$NS_A" link set "$IF_A" up
ip -n "$NS_B" link set "$IF_B" up

log "generating $PEERS peers (seed $SEED)"
"$LOADGEN" --print-peers --peers "$PEERS" --seed "$SEED" --tunnel-net 10.64.0.0/10 >"$TMP/peers.conf"
if grep -q '10\.65\.200\.2/32' "$TMP/peers.conf"; then
	echo "$0: the loaded peers reach 10.65.200.2; use fewer than 116,000" >&2
	exit 2
fi

npeers() { in_a wg show "$IF_A" peers | wc -l; }
# ms CMD...: runs CMD, prints its wall time in ms.
ms() {
	local t0
	t0=$(date +%s%N)
	"$@" >/dev/null
	echo $((($(date +%s%N) - t0) / 1000000))
}

server_up() { in_b ss -Hltn "sport = :5201" | grep -q .; }

# measure STATE DIR: one iperf3 run; appends "STATE DIR GBITS RETR" to $TMP/runs.
measure() {
	local state=$1 dir=$2 args=() json=$TMP/iperf.json gbits retr

	[ "$dir" = in ] && args=(-R)
	in_a ping -c 1 -W 5 10.65.200.2 >/dev/null || wait_for 10 in_a ping -c 1 -W 1 10.65.200.2 ||
		{ log "no ping through the tunnel ($state)"; exit 1; }
	in_b iperf3 -s -1 -B 10.65.200.2 >"$TMP/server.log" 2>&1 &
	local srv=$!
	wait_for 5 server_up || { log "iperf3 server did not start"; exit 1; }
	in_a iperf3 -c 10.65.200.2 -t "$DUR" -i 0 -J --connect-timeout 3000 "${args[@]}" >"$json" 2>/dev/null || true
	kill "$srv" 2>/dev/null || true
	wait "$srv" 2>/dev/null || true
	gbits=$(jq -r '.end.sum_received.bits_per_second / 1e9' "$json" 2>/dev/null || echo NA)
	retr=$(jq -r '.end.sum_sent.retransmits // "NA"' "$json" 2>/dev/null || echo NA)
	printf '%s %s %.3f %s\n' "$state" "$dir" "$gbits" "$retr" >>"$TMP/runs"
	log "run $round: $state peers, $dir: $(printf '%.3f' "$gbits") Gbit/s, $retr retransmits"
}

: >"$TMP/runs"
: >"$TMP/loads"
for round in $(seq 1 "$RUNS"); do
	order="without with"
	[ $((round % 2)) -eq 0 ] && order="with without"
	for state in $order; do
		if [ "$state" = with ]; then
			t=$(ms in_a wg addconf "$IF_A" "$TMP/peers.conf")
			n=$(npeers)
			[ "$n" -eq $((PEERS + 1)) ] || { log "$n peers after addconf, expected $((PEERS + 1))"; exit 1; }
			echo "addconf $t $(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid_a/status")" >>"$TMP/loads"
		else
			t=$(ms in_a wg syncconf "$IF_A" "$TMP/base.conf")
			n=$(npeers)
			[ "$n" -eq 1 ] || { log "$n peers after syncconf, expected 1"; exit 1; }
			echo "syncconf $t" >>"$TMP/loads"
		fi
		for dir in $DIRS; do
			measure "$state" "$dir"
		done
	done
done

mkdir -p "$RESULTS"
{
	echo "# perf/bench_loaded.sh $(date -u +%FT%TZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)," \
		"$PEERS idle peers on A, $(nproc) CPUs, wgate --tun-threads $THREADS both ends, $RUNS alternating rounds x ${DUR}s"
	awk '{ printf "run: %s peers, %s: %s Gbit/s, %s retransmits\n", $1, $2, $3, $4 }' "$TMP/runs"
	awk '$1 == "addconf" { n++; t += $2; r = $3 } $1 == "syncconf" { m++; s += $2 }
	     END { if (n) printf "load: wg addconf %.0f ms mean (%d), RSS %.0f MiB loaded; wg syncconf (remove) %.0f ms mean (%d)\n",
	                  t / n, n, r / 1024, m ? s / m : 0, m }' "$TMP/loads"
	for dir in $DIRS; do
		awk -v d="$dir" '$2 == d { v[$1] = v[$1] " " $3; r[$1] += ($4 == "NA" ? 0 : $4) }
			function med(s,   a, n, i, j, t) {
				n = split(s, a, " ")
				for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
				return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
			}
			END { w = med(v["with"]); o = med(v["without"])
			      printf "%s: without peers %.3f Gbit/s (%d retr), with %.3f Gbit/s (%d retr): %.1f%% (medians)\n",
			             d, o, r["without"], w, r["with"], (o > 0 ? 100 * w / o : 0) }' "$TMP/runs"
	done
} | tee "$RESULTS/loaded.txt"
