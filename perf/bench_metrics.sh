#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The price of a /metrics scrape with many peers: 100,000 peers (random keys, one /32
# each, an endpoint each) loaded with `wg addconf` into a wgate whose --metrics-peer-limit
# lets every one of them have series, then
#   1. the time of a `curl` of /metrics (median of BENCH_SCRAPES) and its size, and the
#      control thread's own render time (wgate_metrics_render_seconds);
#   2. a TCP stream through the tunnel to a second wgate (the one real peer), alternating
#      runs with a scrape every second and without (BENCH_RUNS each, BENCH_SECONDS long).
#
#   ns wbm-a-TAG: wgate A (2 workers), /metrics on 127.0.0.1:9586   <-veth->   ns wbm-b-TAG: wgate B
#
# A benchmark, not a test: run it by hand as root, never from the test suite.
# Usage: perf/bench_metrics.sh
# Environment: BENCH_PEERS (100000), BENCH_SCRAPES (5), BENCH_RUNS (3), BENCH_SECONDS (5), WGATE.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${BENCH_PEERS:-100000}
SCRAPES=${BENCH_SCRAPES:-5}
RUNS=${BENCH_RUNS:-3}
DUR=${BENCH_SECONDS:-5}
TAG=$$
NS_A=wbm-a-$TAG
NS_B=wbm-b-$TAG
IF_A=wbma$TAG
IF_B=wbmb$TAG
METRICS=127.0.0.1:9586

[ "${1:-}" = "" ] || { sed -n '3,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }
# shellcheck source=perf/bench_lib.sh
. "$ROOT/perf/bench_lib.sh"
for tool in wg ip iperf3 curl python3; do
	command -v "$tool" >/dev/null || { echo "$0: $tool missing" >&2; exit 1; }
done
bench_wgate

umask 077
TMP=$(mktemp -d /tmp/wgt-bench-metrics.XXXXXX)
PIDS=()
cleanup() {
	local pid

	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	ip netns del "$NS_A" 2>/dev/null || true
	ip netns del "$NS_B" 2>/dev/null || true
	rm -f "/var/run/wireguard/$IF_A.sock" "/var/run/wireguard/$IF_B.sock"
	rm -rf "$TMP"
}
trap cleanup EXIT

bench_netns_pair "$NS_A" "$NS_B" "wbmva$TAG" "wbmvb$TAG" 192.168.244

ip netns exec "$NS_A" "$WGATE" -f --tun-threads 2 --metrics-listen "$METRICS" \
	--metrics-peer-limit $((PEERS + 1)) "$IF_A" >"$TMP/a.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_B" "$WGATE" -f --tun-threads 1 "$IF_B" >"$TMP/b.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -S "/var/run/wireguard/$IF_A.sock"
wait_for 10 test -S "/var/run/wireguard/$IF_B.sock"
wg genkey >"$TMP/a.key"
wg genkey >"$TMP/b.key"
ip netns exec "$NS_A" wg set "$IF_A" private-key "$TMP/a.key" listen-port 51820 \
	peer "$(wg pubkey <"$TMP/b.key")" allowed-ips 10.203.0.2/32 endpoint 192.168.244.2:51821
ip netns exec "$NS_B" wg set "$IF_B" private-key "$TMP/b.key" listen-port 51821 \
	peer "$(wg pubkey <"$TMP/a.key")" allowed-ips 10.203.0.1/32 endpoint 192.168.244.1:51820
ip -n "$NS_A" addr add 10.203.0.1/24 dev "$IF_A"
ip -n "$NS_B" addr add 10.203.0.2/24 dev "$IF_B"
ip -n "$NS_A" link set "$IF_A" up
ip -n "$NS_B" link set "$IF_B" up

# The other peers: random 32-byte keys (any is a valid public key), 10.100.0.0/15 hosts.
python3 - "$PEERS" >"$TMP/peers.conf" <<'PY'
import base64, os, sys
n = int(sys.argv[1])
for i in range(n):
    print("[Peer]\nPublicKey = %s\nAllowedIPs = 10.%d.%d.%d/32\nEndpoint = 192.0.2.%d:%d\n" % (
        base64.b64encode(os.urandom(32)).decode(), 100 + (i >> 16), (i >> 8) & 255, i & 255,
        1 + i % 254, 1024 + i % 60000))
PY
t0=$(date +%s%N)
ip netns exec "$NS_A" wg addconf "$IF_A" "$TMP/peers.conf"
echo "loaded $PEERS peers with wg addconf in $((($(date +%s%N) - t0) / 1000000)) ms"

# 1. Scrape times.
scrape() {
	ip netns exec "$NS_A" curl -s -o "$TMP/metrics.txt" -w '%{time_total} %{size_download}\n' \
		"http://$METRICS/metrics"
}
scrape >/dev/null
for _ in $(seq "$SCRAPES"); do
	scrape
	grep '^wgate_metrics_render_seconds ' "$TMP/metrics.txt" | awk '{ print "render", $2 }'
done >"$TMP/scrapes.txt"
peers_with_series=$(grep -c '^wireguard_peer_receive_bytes_total{' "$TMP/metrics.txt")
python3 - "$PEERS" "$peers_with_series" "$TMP/scrapes.txt" <<'PY'
import statistics, sys
t, r, size = [], [], 0
for line in open(sys.argv[3]):
    f = line.split()
    if f[0] == "render":
        r.append(float(f[1]))
    else:
        t.append(float(f[0]))
        size = int(f[1])
print("scrape of %d peers (%s with series): curl %.3f s median (min %.3f, max %.3f), %.1f MB; "
      "control-thread render %.3f s median" % (int(sys.argv[1]) + 1, sys.argv[2], statistics.median(t),
      min(t), max(t), size / 1e6, statistics.median(r)))
PY

# 2. Throughput with a scrape every second and without, alternating.
run_iperf() {
	ip netns exec "$NS_B" iperf3 -s -1 -B 10.203.0.2 >/dev/null 2>&1 &
	local srv=$!

	sleep 0.3
	ip netns exec "$NS_A" iperf3 -c 10.203.0.2 -t "$DUR" -J 2>/dev/null |
		python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'
	wait "$srv" 2>/dev/null || true
}
ip netns exec "$NS_A" ping -c 3 -W 2 10.203.0.2 >/dev/null
for run in $(seq "$RUNS"); do
	echo "without $(run_iperf)" >>"$TMP/tput.txt"
	(
		while :; do
			ip netns exec "$NS_A" curl -s -o /dev/null "http://$METRICS/metrics"
			sleep 1
		done
	) &
	scraper=$!
	echo "with $(run_iperf)" >>"$TMP/tput.txt"
	kill "$scraper"
	wait "$scraper" 2>/dev/null || true
	echo "run $run: $(tail -n 2 "$TMP/tput.txt" | tr '\n' ' ')"
done
python3 - "$TMP/tput.txt" <<'PY'
import statistics, sys
v = {"with": [], "without": []}
for line in open(sys.argv[1]):
    k, x = line.split()
    v[k].append(float(x))
print("TCP through the tunnel: %.3f Gbit/s without scrapes, %.3f Gbit/s with one a second "
      "(medians of %d alternating runs of each)" % (statistics.median(v["without"]),
      statistics.median(v["with"]), len(v["with"])))
PY
