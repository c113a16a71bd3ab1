#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak: traffic, peer churn, config reloads and floods against one wgate for DURATION, then flatness checks.
#
#   perf/soak.sh DURATION        e.g. 1h, 30m, 180s or 180 (seconds)
#
#   ns wgt$$a: wgate -f --config TMP/wg0.conf --metrics-listen 127.0.0.1:9586 wsa$$
#              10.241.0.1/24, udp 51820, iperf3 -s
#   ns wgt$$b: wireguard-go wsb$$ 10.241.0.2/24, iperf3 -c (SOAK_RATE, 200M) for the
#              whole run, wgt-flood from 10.200.0.0/16 (AnyIP)
#
# While it runs: every SOAK_CHURN_EVERY (5) s a batch of SOAK_CHURN_BATCH (16) peers is
# added through `wg set` and the batch added three rounds before removed; every
# SOAK_RELOAD_EVERY (10) s the config file is rewritten (three of its rotating peers
# replaced, one's allowed IPs changed; every 10th version is broken on purpose and
# must be refused); every SOAK_FLOOD_EVERY (20) s a burst of SOAK_FLOOD_COUNT (20000)
# datagrams of the next flood kind, at SOAK_FLOOD_RATE (20000/s). wgate's VmRSS and fd
# count are sampled every 10 s (SOAK_OUT/samples.tsv); once a minute one line:
#   soak: ELAPSED rss MiB fds N peers N iperf3 Mbit/s reloads ok/failed flood N hs N
# (iperf3 Mbit/s: what wgate received from the wireguard-go peer in that minute.)
#
# At the end, with the load stopped: wgate is up; the reload counters on /metrics match
# the versions written (good ones applied, broken ones refused); the wireguard-go peer
# pings through the tunnel; `wg show` lists exactly the peers expected (the fixed two,
# the last good file's and the churned batches still in). Flat means, over the samples
# after a warm-up of max(30 s, DURATION/10): the highest VmRSS of the last quarter is
# within max(10 %, 4 MiB) of the highest of the first quarter, and the lowest fd count
# of the last quarter is not above the lowest of the first (lowest: a UAPI or /metrics
# connection open at a sample is not a leak). Exits 0 and prints "soak: PASS ..." or
# 1 and one "FAIL: ..." line saying what grew or broke; 77 when not root or a tool is
# missing. Stops everything it started on exit.
#
# Environment: SOAK_WGATE (build/gateway/wgate), SOAK_WGGO (wireguard-go), SOAK_FLOOD
# (build/tests/flood/wgt-flood), SOAK_OUT (perf/out/soak-DATE), and the knobs above.
set -euo pipefail

usage() {
	echo "usage: $0 DURATION   (seconds, or N followed by s, m or h)" >&2
	exit 2
}
[ $# -eq 1 ] && [[ $1 =~ ^([0-9]+)([smh]?)$ ]] || usage
case ${BASH_REMATCH[2]} in
h) DUR=$((BASH_REMATCH[1] * 3600)) ;;
m) DUR=$((BASH_REMATCH[1] * 60)) ;;
*) DUR=$((10#${BASH_REMATCH[1]})) ;;
esac
[ "$DUR" -ge 60 ] || { echo "soak.sh: DURATION must be at least 60 s" >&2; usage; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WGATE=${SOAK_WGATE:-$ROOT/build/gateway/wgate}
WGGO=${SOAK_WGGO:-wireguard-go}
FLOOD=${SOAK_FLOOD:-$ROOT/build/tests/flood/wgt-flood}
RATE=${SOAK_RATE:-200M}
CHURN_BATCH=${SOAK_CHURN_BATCH:-16}
CHURN_EVERY=${SOAK_CHURN_EVERY:-5}
RELOAD_EVERY=${SOAK_RELOAD_EVERY:-10}
FLOOD_EVERY=${SOAK_FLOOD_EVERY:-20}
FLOOD_COUNT=${SOAK_FLOOD_COUNT:-20000}
FLOOD_RATE=${SOAK_FLOOD_RATE:-20000}
OUT=${SOAK_OUT:-$ROOT/perf/out/soak-$(date -u +%Y%m%dT%H%M%SZ)}
PORT_A=51820
PORT_B=51821
IPERF_PORT=5299
METRICS=127.0.0.1:9586
CONF_POOL=24 # keys the file's rotating peers come from
CONF_N=12    # rotating peers in each version
CHURN_LIVE=3 # batches in at a time
KINDS=(random short bad-mac1 unknown-index replay-data replay-init valid-mac1)

# shellcheck source=tests/e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"
e2e_require_root wg ip ping iperf3 curl
e2e_require_impl "$WGATE"
e2e_require_impl "$WGGO"
[ -x "$FLOOD" ] || e2e_fail "wgt-flood '$FLOOD' is not an executable file (ninja -C build)"
e2e_init soak
mkdir -p "$OUT"
# shellcheck disable=SC2034 # read by in_ns (lib.sh)
E2E_CMD_TIMEOUT=30
TMP=$E2E_TMP

two_sides ws
ip -n "$NS_B" route add local 10.200.0.0/16 dev lo
ip -n "$NS_A" route add 10.200.0.0/16 via "$E2E_UNDER4_B"

# ---- keys: the two sides, the flood's peer, the file's rotating pool, the churn pool
wg_keys a
wg_keys b
wg_keys f
PUB_A=$(cat "$TMP/a.pub")
PUB_B=$(cat "$TMP/b.pub")
PUB_F=$(cat "$TMP/f.pub")
CONF_KEYS=()
for ((i = 0; i < CONF_POOL; i++)); do
	CONF_KEYS+=("$(wg genkey | wg pubkey)")
done
CHURN_POOL=$(((CHURN_LIVE + 1) * CHURN_BATCH))
CHURN_KEYS=()
for ((i = 0; i < CHURN_POOL; i++)); do
	CHURN_KEYS+=("$(wg genkey | wg pubkey)")
done

# conf_peers VERSION: the pool indices of the version's rotating peers.
conf_peers() {
	local j

	for ((j = 0; j < CONF_N; j++)); do
		echo $(((3 * $1 + j) % CONF_POOL))
	done
}

# conf VERSION: the file's text; a version divisible by 10 carries a bad line.
conf() {
	local v=$1 k

	cat <<EOF
[Interface]
PrivateKey = $(cat "$TMP/a.key")
ListenPort = $PORT_A
Address = $E2E_TUN4_A/24

[Peer]
# Name = wireguard-go
PublicKey = $PUB_B
AllowedIPs = $E2E_TUN4_B/32
Endpoint = $E2E_UNDER4_B:$PORT_B

[Peer]
# Name = flood
PublicKey = $PUB_F
AllowedIPs = 10.241.0.99/32
EOF
	for k in $(conf_peers "$v"); do
		printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.251.%d.0/24\n' "${CONF_KEYS[$k]}" "$k"
		[ $((k % CONF_N)) -ne $((v % CONF_N)) ] || printf 'AllowedIPs = 10.252.%d.0/24\n' $((v % 250))
	done
	[ $((v % 10)) -ne 0 ] || printf 'AllowedIPs = 10.241.0.999/32\n'
}

# write_conf VERSION: a whole new file in one rename, as an editor or a config manager does.
write_conf() {
	conf "$1" >"$TMP/wg0.conf.new"
	mv -f "$TMP/wg0.conf.new" "$TMP/wg0.conf"
}

metric() {
	awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }' "$TMP/metrics.txt"
}
scrape() {
	in_ns "$NS_A" curl -sf "http://$METRICS/metrics" >"$TMP/metrics.txt" || : >"$TMP/metrics.txt"
}

# ---- wgate (A) from the file, wireguard-go (B), the tunnel
VERSION=1
GOOD=1
write_conf "$VERSION"
start_impl "$NS_A" "$WGATE" "$IF_A" --tun-threads 2 --metrics-listen "$METRICS" --config "$TMP/wg0.conf"
PID_A=$IMPL_PID
LOG_A="$TMP/$IF_A.log"
start_impl "$NS_B" "$WGGO" "$IF_B"
in_ns "$NS_B" wg set "$IF_B" private-key "$TMP/b.key" listen-port "$PORT_B" \
	peer "$PUB_A" allowed-ips 10.241.0.0/24 endpoint "$E2E_UNDER4_A:$PORT_A"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" "$E2E_TUN6_B/64"
wait_for "a first ping through the tunnel" 15 in_ns "$NS_B" ping -q -n -c 1 -W 1 "$E2E_TUN4_A"

# ---- iperf3 for the whole run (restarted if it dies; restarts are reported)
b_listening() {
	in_ns "$NS_A" ss -Hltn "sport = :$IPERF_PORT" | grep -q .
}
e2e_spawn "$TMP/iperf3-server.log" ip netns exec "$NS_A" iperf3 -s -p "$IPERF_PORT"
wait_for "the iperf3 server" 5 b_listening
IPERF_PID=
IPERF_RESTARTS=-1
iperf_start() {
	IPERF_RESTARTS=$((IPERF_RESTARTS + 1))
	e2e_spawn "$TMP/iperf3-client.log" ip netns exec "$NS_B" iperf3 -c "$E2E_TUN4_A" -p "$IPERF_PORT" \
		-t $((DUR + 600)) -b "$RATE" -i 60 --connect-timeout 5000
	IPERF_PID=$E2E_LAST_PID
}
iperf_start

# ---- churn through `wg set`: batch b holds churn keys [b*BATCH, (b+1)*BATCH) mod pool
CHURN_ROUND=0
CHURN_FAILS=0
churn_ip() {
	echo "10.250.$(($1 / 250)).$(($1 % 250 + 1))/32"
}
churn_step() {
	local args=() j k b=$CHURN_ROUND old=$((CHURN_ROUND - CHURN_LIVE))

	if [ "$old" -ge 0 ]; then
		for ((j = 0; j < CHURN_BATCH; j++)); do
			k=$(((old * CHURN_BATCH + j) % CHURN_POOL))
			args+=(peer "${CHURN_KEYS[$k]}" remove)
		done
	fi
	for ((j = 0; j < CHURN_BATCH; j++)); do
		k=$(((b * CHURN_BATCH + j) % CHURN_POOL))
		args+=(peer "${CHURN_KEYS[$k]}" allowed-ips "$(churn_ip "$k")")
	done
	in_ns "$NS_A" wg set "$IF_A" "${args[@]}" 2>>"$TMP/churn.err" || CHURN_FAILS=$((CHURN_FAILS + 1))
	CHURN_ROUND=$((CHURN_ROUND + 1))
}

# ---- floods, one burst at a time in the background
FLOOD_PID=
FLOOD_N=0
FLOOD_SENT=0
FLOOD_ERRORS=0
flood_collect() {
	local sent

	[ -n "$FLOOD_PID" ] || return 0
	wait "$FLOOD_PID" 2>/dev/null || FLOOD_ERRORS=$((FLOOD_ERRORS + 1))
	e2e_forget_pid "$FLOOD_PID"
	FLOOD_PID=
	sent=$(sed -n 's/^flood: [a-z0-9-]* sent \([0-9]*\) .*/\1/p' "$TMP/flood.out" | head -n 1)
	FLOOD_SENT=$((FLOOD_SENT + ${sent:-0}))
}
flood_step() {
	local kind=${KINDS[$((FLOOD_N % ${#KINDS[@]}))]}

	if [ -n "$FLOOD_PID" ]; then
		pid_alive "$FLOOD_PID" && return 0
		flood_collect
	fi
	FLOOD_N=$((FLOOD_N + 1))
	e2e_spawn "$TMP/flood.out" ip netns exec "$NS_B" "$FLOOD" --server "$E2E_UNDER4_A:$PORT_A" \
		--server-public-key "$PUB_A" --peer-private-key "$TMP/f.key" --kind "$kind" \
		--count "$FLOOD_COUNT" --rate "$FLOOD_RATE" --source-net 10.200.0.0/16
	FLOOD_PID=$E2E_LAST_PID
}

# ---- the run
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$PID_A/status"
}
fd_count() {
	find "/proc/$PID_A/fd" -mindepth 1 -maxdepth 1 | wc -l
}
rx_from_b() {
	in_ns "$NS_A" wg show "$IF_A" transfer | awk -v k="$PUB_B" '$1 == k { print $2 }'
}
hms() {
	printf '%02d:%02d:%02d' $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60))
}

# One scrape first: what the first /metrics request sets up for good is not a leak.
scrape
ls -l "/proc/$PID_A/fd" >"$OUT/fds-start.txt"
echo "soak: $DUR s; wgate $WGATE (pid $PID_A); samples in $OUT/samples.tsv"
printf 'elapsed_s\trss_kib\tfds\n' >"$OUT/samples.tsv"
START=$(date +%s)
next_churn=$START next_reload=$((START + RELOAD_EVERY)) next_flood=$((START + 5))
next_sample=$START next_line=$((START + 60))
RX_LAST=$(rx_from_b)
while :; do
	now=$(date +%s)
	elapsed=$((now - START))
	[ "$elapsed" -lt "$DUR" ] || break
	pid_alive "$PID_A" || e2e_fail "wgate exited after $(hms "$elapsed") (see $OUT/wgate.log)"
	pid_alive "$IPERF_PID" || { wait "$IPERF_PID" 2>/dev/null || true; e2e_forget_pid "$IPERF_PID"; iperf_start; }
	if [ "$now" -ge "$next_churn" ]; then
		churn_step
		next_churn=$((now + CHURN_EVERY))
	fi
	if [ "$now" -ge "$next_reload" ]; then
		VERSION=$((VERSION + 1))
		[ $((VERSION % 10)) -eq 0 ] || GOOD=$VERSION
		write_conf "$VERSION"
		next_reload=$((now + RELOAD_EVERY))
	fi
	if [ "$now" -ge "$next_flood" ]; then
		flood_step
		next_flood=$((now + FLOOD_EVERY))
	fi
	if [ "$now" -ge "$next_sample" ]; then
		printf '%d\t%d\t%d\n' "$elapsed" "$(rss_kib)" "$(fd_count)" >>"$OUT/samples.tsv"
		next_sample=$((next_sample + 10))
	fi
	if [ "$now" -ge "$next_line" ]; then
		scrape
		rx=$(rx_from_b)
		printf 'soak: %s rss %.1f MiB fds %d peers %d iperf3 %.1f Mbit/s reloads %d/%d flood %d hs %d\n' \
			"$(hms "$elapsed")" "$(awk -v k="$(rss_kib)" 'BEGIN { print k / 1024 }')" "$(fd_count)" \
			"$(metric wgate_peers)" "$(awk -v d=$((rx - RX_LAST)) 'BEGIN { print d * 8 / 60 / 1e6 }')" \
			"$(metric wgate_config_reloads_total)" "$(metric wgate_config_reload_failures_total)" \
			"$FLOOD_SENT" "$(awk '$1 ~ /^wgate_handshakes_completed_total/ { n += $2 } END { print n + 0 }' "$TMP/metrics.txt")"
		RX_LAST=$rx
		next_line=$((next_line + 60))
	fi
	sleep 1
done

# ---- the checks, with the load stopped
if [ -n "$FLOOD_PID" ]; then
	wait_gone "$FLOOD_PID" 60 || e2e_fail "wgt-flood still runs 60 s after the end"
	flood_collect
fi
kill_and_reap "$IPERF_PID" || true # its status is that of the kill
e2e_forget_pid "$IPERF_PID"
cp "$LOG_A" "$OUT/wgate.log"
pid_alive "$PID_A" || e2e_fail "wgate exited (see $OUT/wgate.log)"

# Versions 2..VERSION were written after the start: the broken ones refused, the rest applied.
BROKEN=$((VERSION / 10))
WANT_OK=$((VERSION - 1 - BROKEN))
reloads_match() {
	scrape
	[ "$(metric wgate_config_reloads_total)" -eq "$WANT_OK" ] &&
		[ "$(metric wgate_config_reload_failures_total)" -eq "$BROKEN" ]
}
wait_until 15 reloads_match ||
	e2e_fail "reloads: $(metric wgate_config_reloads_total) applied and $(metric wgate_config_reload_failures_total) refused, expected $WANT_OK and $BROKEN"

in_ns "$NS_B" ping -q -n -c 3 -i 0.3 -W 3 "$E2E_TUN4_A" >/dev/null ||
	e2e_fail "the wireguard-go peer no longer pings through wgate"

expected_peers() {
	local k b j

	echo "$PUB_B"
	echo "$PUB_F"
	for k in $(conf_peers "$GOOD"); do
		echo "${CONF_KEYS[$k]}"
	done
	for ((b = CHURN_ROUND - CHURN_LIVE; b < CHURN_ROUND; b++)); do
		[ "$b" -ge 0 ] || continue
		for ((j = 0; j < CHURN_BATCH; j++)); do
			echo "${CHURN_KEYS[$(((b * CHURN_BATCH + j) % CHURN_POOL))]}"
		done
	done
}
peers_match() {
	[ "$(in_ns "$NS_A" wg show "$IF_A" peers | sort)" = "$(expected_peers | sort)" ]
}
wait_until 15 peers_match || e2e_fail "wg show lists $(in_ns "$NS_A" wg show "$IF_A" peers | wc -l) peers, \
$(comm -13 <(in_ns "$NS_A" wg show "$IF_A" peers | sort) <(expected_peers | sort) | wc -l) expected ones missing, \
$(comm -23 <(in_ns "$NS_A" wg show "$IF_A" peers | sort) <(expected_peers | sort) | wc -l) unexpected"

# Flatness over the samples after the warm-up (fds-*.txt: what the descriptors were).
ls -l "/proc/$PID_A/fd" >"$OUT/fds-end.txt"
WARM=$((DUR / 10 > 30 ? DUR / 10 : 30))
read -r n rss1 rss4 fd1 fd4 < <(awk -v w="$WARM" 'BEGIN { n = 0 } NR > 1 && $1 >= w { r[n] = $2; f[n] = $3; n++ }
	END {
		q = int(n / 4); if (q < 1) q = 1
		r1 = r4 = 0; f1 = f4 = 1e9
		for (i = 0; i < q; i++) { if (r[i] > r1) r1 = r[i]; if (f[i] < f1) f1 = f[i] }
		for (i = n - q; i < n; i++) { if (r[i] > r4) r4 = r[i]; if (f[i] < f4) f4 = f[i] }
		print n, r1, r4, f1, f4
	}' "$OUT/samples.tsv")
[ "$n" -ge 4 ] || e2e_fail "only $n samples after the $WARM s warm-up: too short to judge"
SLACK=$((rss1 / 10 > 4096 ? rss1 / 10 : 4096))
[ "$rss4" -le $((rss1 + SLACK)) ] ||
	e2e_fail "RSS grew: highest $((rss1 / 1024)) MiB in the first quarter, $((rss4 / 1024)) MiB in the last (slack $((SLACK / 1024)) MiB)"
[ "$fd4" -le "$fd1" ] || e2e_fail "fd count grew: lowest $fd1 in the first quarter, $fd4 in the last"
if grep -qE 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:' "$LOG_A"; then
	e2e_fail "sanitizer report in wgate's log ($OUT/wgate.log)"
fi

scrape
summary=$(printf 'soak: PASS %s: rss %.1f -> %.1f MiB (highest, first/last quarter), fds %d -> %d, %d peers as expected, reloads %d ok %d refused (as written), churn %d rounds (%d failed wg set), flood %d datagrams in %d bursts, iperf3 restarts %d, handshakes %d' \
	"$(hms "$DUR")" "$(awk -v k="$rss1" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rss4" 'BEGIN { print k / 1024 }')" \
	"$fd1" "$fd4" "$(expected_peers | wc -l)" "$(metric wgate_config_reloads_total)" \
	"$(metric wgate_config_reload_failures_total)" "$CHURN_ROUND" "$CHURN_FAILS" "$FLOOD_SENT" "$FLOOD_N" \
	"$IPERF_RESTARTS" "$(awk '$1 ~ /^wgate_handshakes_completed_total/ { n += $2 } END { print n + 0 }' "$TMP/metrics.txt")")
echo "$summary" | tee "$OUT/summary"
