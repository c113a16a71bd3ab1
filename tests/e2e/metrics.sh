#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wgate's HTTP endpoint (--metrics-listen): a real Prometheus server scrapes /metrics
# every second while traffic runs through the tunnel to Debian's wireguard-go, and its
# query API must give each peer's byte counters exactly as `wg show transfer` does once
# the traffic stopped; handshake counters move (sent, received, completed, and failed
# for a bad MAC when forged initiations arrive); `promtool check metrics` finds nothing
# to say; /readyz is 503 before the private key is set and 200 after; /healthz is 200,
# then 503 naming the worker a test hook stalls (test builds, -Dtest_hooks=true), then
# 200 again; a --metrics-peer-limit leaves peers out of the per-peer series and says how
# many; a low metrics port works with --user nobody, a taken one fails the start. ~15 s.
#
# Usage: metrics.sh WGATE WIREGUARD_GO
# Exits 0 when every check passed, 1 on the first failed one, 77 (skip) when not root
# or a tool is missing, 2 on a usage error.
set -euo pipefail

[ $# -eq 2 ] || {
	echo "usage: $0 WGATE WIREGUARD_GO" >&2
	exit 2
}
WGATE=$1
WGGO=$2

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_require_root wg ip ping python3
for tool in curl prometheus promtool; do
	command -v "$tool" >/dev/null || e2e_skip "$tool not found: apt-get install curl prometheus"
done
e2e_require_impl "$WGATE"
e2e_require_impl "$WGGO"
e2e_init metrics

METRICS=127.0.0.1:9586
PROM=127.0.0.1:9090
export WGATE_TEST_STALL_FILE=$E2E_TMP/stall

two_sides wm
start_impl "$NS_A" "$WGATE" "$IF_A" --tun-threads 2 --metrics-listen "$METRICS"
WGATE_PID=$IMPL_PID
start_impl "$NS_B" "$WGGO" "$IF_B"
tun_addr "$NS_A" "$IF_A" "$E2E_TUN4_A/24" "$E2E_TUN6_A/64"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" "$E2E_TUN6_B/64"

# http NS URL: prints "STATUS BODY" (the body on one line).
http() {
	local out

	out=$(in_ns "$1" curl -s --max-time 15 -w '\n%{http_code}' "http://$2") || true
	out=${out//$'\n'/ }
	echo "${out##* } ${out% *}"
}
# http_is NS URL STATUS [TEXT]: the answer has STATUS (and its body contains TEXT).
http_is() {
	local got

	got=$(http "$1" "$2")
	[ "${got%% *}" = "$3" ] && [[ $got == *"${4:-}"* ]]
}

# (r) /readyz: the link is up and the port bound, but no private key yet.
got=$(http "$NS_A" "$METRICS/readyz")
[[ $got == 503*"no private key"* ]] || e2e_fail "/readyz without a private key: '$got', want 503 naming the key"
got=$(http "$NS_A" "$METRICS/nope")
[ "${got%% *}" = 404 ] || e2e_fail "/nope: '$got', want 404"

wg_keys a
wg_keys b
wg_keys c
in_ns "$NS_A" wg set "$IF_A" private-key "$E2E_TMP/a.key" listen-port 51820 \
	peer "$(cat "$E2E_TMP/b.pub")" allowed-ips "$E2E_TUN4_B/32,$E2E_TUN6_B/128" \
	endpoint "$E2E_UNDER4_B:51821" \
	peer "$(cat "$E2E_TMP/c.pub")" allowed-ips 10.241.0.3/32
in_ns "$NS_B" wg set "$IF_B" private-key "$E2E_TMP/b.key" listen-port 51821 \
	peer "$(cat "$E2E_TMP/a.pub")" allowed-ips "$E2E_TUN4_A/32,$E2E_TUN6_A/128" \
	endpoint "$E2E_UNDER4_A:51820"
wait_for "/readyz 200 once the private key is set" 5 http_is "$NS_A" "$METRICS/readyz" 200 ready
e2e_pass r "/readyz 503 naming the missing private key, 200 once set; /nope 404"

# (p) Prometheus scrapes wgate every second, on loopback inside the namespace.
mkdir -p "$E2E_TMP/prom"
cat >"$E2E_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: wgate
    static_configs:
      - targets: ['$METRICS']
EOF
e2e_add_log prometheus "$E2E_TMP/prom.log"
e2e_spawn "$E2E_TMP/prom.log" ip netns exec "$NS_A" prometheus \
	--config.file="$E2E_TMP/prometheus.yml" --storage.tsdb.path="$E2E_TMP/prom" \
	--web.listen-address="$PROM" --log.level=warn
wait_for "Prometheus to be ready" 30 http_is "$NS_A" "$PROM/-/ready" 200

# Traffic both ways, v4 and v6, then nothing more (no keepalive configured).
in_ns "$NS_A" ping -q -f -c 2000 -s 1200 -w 15 "$E2E_TUN4_B" >/dev/null ||
	e2e_fail "ping $E2E_TUN4_B through the tunnel"
in_ns "$NS_B" ping -q -f -c 1000 -s 200 -w 15 "$E2E_TUN6_A" >/dev/null ||
	e2e_fail "ping $E2E_TUN6_A through the tunnel"

# prom_transfer: "PUBKEY RX TX OLDEST_SAMPLE_MS" per peer, from Prometheus's query API.
prom_transfer() {
	in_ns "$NS_A" python3 - "$PROM" <<'PY'
import json, sys, urllib.parse, urllib.request

def query(expr):
    url = "http://%s/api/v1/query?%s" % (sys.argv[1], urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as r:
        data = json.load(r)
    return {s["metric"]["public_key"]: float(s["value"][1]) for s in data["data"]["result"]}

rx = query("wireguard_peer_receive_bytes_total")
tx = query("wireguard_peer_transmit_bytes_total")
ts_rx = query("timestamp(wireguard_peer_receive_bytes_total)")
ts_tx = query("timestamp(wireguard_peer_transmit_bytes_total)")
for k in sorted(rx):
    print(k, int(rx[k]), int(tx.get(k, -1)), int(min(ts_rx[k], ts_tx.get(k, 0)) * 1000))
PY
}

# transfer_matches: `wg show transfer` did not move while Prometheus was asked, and
# Prometheus's samples, taken after the first look, hold the same numbers.
transfer_matches() {
	local before after t0 prom line key rx tx ts

	t0=$(($(date +%s%N) / 1000000))
	before=$(in_ns "$NS_A" wg show "$IF_A" transfer | sort)
	prom=$(prom_transfer)
	after=$(in_ns "$NS_A" wg show "$IF_A" transfer | sort)
	echo "wg: $before / prometheus: $prom" >"$E2E_TMP/last_compare"
	[ "$before" = "$after" ] || return 1
	[ "$(echo "$prom" | wc -l)" -eq "$(echo "$before" | wc -l)" ] || return 1
	while read -r line; do
		read -r key rx tx ts <<<"$line"
		[ "$ts" -ge "$t0" ] || return 1
		grep -qx "$key	$rx	$tx" <<<"$before" || return 1
	done <<<"$prom"
}
wait_until 20 transfer_matches ||
	e2e_fail "Prometheus never matched wg show transfer: $(cat "$E2E_TMP/last_compare")"
rx_b=$(in_ns "$NS_A" wg show "$IF_A" transfer | awk -v k="$(cat "$E2E_TMP/b.pub")" '$1 == k { print $2 }')
[ "$rx_b" -gt 1000000 ] || e2e_fail "peer b received only $rx_b bytes: the traffic did not run"
e2e_pass p "Prometheus's query API gives both peers' byte counters as wg show transfer ($rx_b bytes from b)"

# (f) Failed handshakes by reason: three initiations with random MACs from B's side.
in_ns "$NS_B" python3 - "$E2E_UNDER4_A" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"\x01\x00\x00\x00" + os.urandom(144), (sys.argv[1], 51820))
PY
metric_is() {
	in_ns "$NS_A" curl -s "http://$METRICS/metrics" | grep -qx "$1"
}
wait_for "3 handshakes failed for a bad MAC" 5 metric_is 'wgate_handshakes_failed_total{reason="bad_mac"} 3'
e2e_pass f "wgate_handshakes_failed_total{reason=\"bad_mac\"} counts 3 forged initiations"

# (l) promtool lints the exposition: nothing to say.
in_ns "$NS_A" curl -s "http://$METRICS/metrics" >"$E2E_TMP/metrics.txt"
for want in 'wgate_handshakes_completed_total{role="initiator"} [1-9]' \
	'wgate_handshakes_sent_total{message="initiation"} [1-9]' \
	'wgate_handshakes_received_total{message="response"} [1-9]' \
	'wgate_peers_with_session 1' 'wgate_peers 2' \
	'wgate_worker_batches_total{worker="[01]",direction="rx"} [1-9]'; do
	grep -q "^$want" "$E2E_TMP/metrics.txt" || e2e_fail "no line '$want' in /metrics"
done
lint=$(promtool check metrics <"$E2E_TMP/metrics.txt" 2>&1) || e2e_fail "promtool check metrics: $lint"
[ -z "$lint" ] || e2e_fail "promtool check metrics: $lint"
e2e_pass l "promtool check metrics: nothing to report ($(wc -l <"$E2E_TMP/metrics.txt") lines)"

# (h) /healthz: 200; 503 naming worker 1 once the test hook stalls it; 200 again after.
http_is "$NS_A" "$METRICS/healthz" 200 ok || e2e_fail "/healthz: '$(http "$NS_A" "$METRICS/healthz")', want 200"
if "$WGATE" --version | grep -q 'test hooks'; then
	echo 1 >"$WGATE_TEST_STALL_FILE"
	wait_for "the stall of worker 1 to begin" 5 grep -q 'worker 1 stalls' "$E2E_TMP/$IF_A.log"
	t0=$(date +%s%N)
	wait_for "/healthz 503 naming worker 1" 7 http_is "$NS_A" "$METRICS/healthz" 503 "worker 1"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -le 6500 ] || e2e_fail "/healthz took $ms ms to report the stalled worker"
	got=$(http "$NS_A" "$METRICS/healthz")
	[[ $got != *"worker 0"* && $got != *control* ]] || e2e_fail "/healthz blames others: '$got'"
	rm "$WGATE_TEST_STALL_FILE"
	wait_for "/healthz 200 after the stall" 5 http_is "$NS_A" "$METRICS/healthz" 200 ok
	e2e_pass h "/healthz 200, 503 '${got#* }' $ms ms after worker 1 stalled, 200 again"
else
	echo "NOTE: $WGATE has no test hooks (-Dtest_hooks=true): the stall check is left out"
	e2e_pass h "/healthz 200"
fi

# (o) --metrics-peer-limit: one peer of three gets series, the gauge counts the others.
ns_add "wgt$$c"
IF_C=wmc$$
IF_C=${IF_C:0:15}
start_impl "wgt$$c" "$WGATE" "$IF_C" --tun-threads 1 --metrics-listen 127.0.0.1:99 \
	--metrics-peer-limit 1 --user nobody
in_ns "wgt$$c" wg set "$IF_C" private-key "$E2E_TMP/c.key" \
	peer "$(cat "$E2E_TMP/a.pub")" allowed-ips 10.9.0.1/32 \
	peer "$(cat "$E2E_TMP/b.pub")" allowed-ips 10.9.0.2/32 \
	peer "$(wg genkey | wg pubkey)" allowed-ips 10.9.0.3/32
in_ns "wgt$$c" curl -s "http://127.0.0.1:99/metrics" >"$E2E_TMP/limited.txt"
grep -qx 'wgate_metrics_peers_omitted 2' "$E2E_TMP/limited.txt" ||
	e2e_fail "peers omitted: $(grep peers_omitted "$E2E_TMP/limited.txt")"
grep -qx 'wgate_peers 3' "$E2E_TMP/limited.txt" || e2e_fail "$(grep '^wgate_peers ' "$E2E_TMP/limited.txt")"
n=$(grep -c '^wireguard_peer_receive_bytes_total{' "$E2E_TMP/limited.txt" || true)
[ "$n" -eq 1 ] || e2e_fail "$n peers with series under --metrics-peer-limit 1"
e2e_pass o "--metrics-peer-limit 1 with 3 peers: 1 with series, wgate_metrics_peers_omitted 2"

# (u) That daemon runs as nobody and bound port 99 before it dropped privileges; a second
#     daemon on the same metrics port fails at start with one line and exit 1.
[ "$(awk '/^Uid:/ { print $2 }' "/proc/$IMPL_PID/status")" = 65534 ] ||
	e2e_fail "the --user nobody daemon does not run as nobody"
IF_D=wmd$$
IF_D=${IF_D:0:15}
e2e_own_iface "$IF_D"
rc=0
in_ns "wgt$$c" "$WGATE" -f --metrics-listen 127.0.0.1:99 "$IF_D" >"$E2E_TMP/d.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q 'cannot listen for metrics on 127.0.0.1:99: Address already in use' \
	"$E2E_TMP/d.log" || e2e_fail "a second daemon on the metrics port: exit $rc, $(cat "$E2E_TMP/d.log")"
e2e_pass u "metrics on port 99 as nobody (bound before the drop); the port in use: exit 1, one line"

pid_alive "$WGATE_PID" || e2e_fail "wgate exited"
echo "all metrics checks passed in $(e2e_elapsed_ms) ms"
