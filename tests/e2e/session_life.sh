#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A peer's session state lives from its first handshake message to the end of its keys,
# and the replay protection of its initiations outlives it (issue 20, a compact idle peer).
#
#   ns wgt$$a                                  ns wgt$$b
#   wgt-flood as peer F (its key made here)    wgate -f slb$$, udp 51823, peers F and G
#                                  <-veth->    /metrics on 127.0.0.1:9588
#
# Session state is counted by wgate_peers_with_session_state. Checks: (a) two idle
# peers hold none (0); (b) a real handshake as F makes one, and F's initiation (kept
# in a file) sent again is refused as stale;
# (c) the link down ends F's session (0: the state was freed); (d) the old initiation
# sent to the sessionless peer is refused again (stale, no response sent, no session
# left behind); (e) a new handshake makes a session again; (f) the old initiation is
# still refused by the re-created session; (g) removing F frees its session.
#
# Usage: session_life.sh WGATE WGT_FLOOD
# Exits 0 when every check passed, 1 on the first failed one, 77 (skip) when not root
# or a tool is missing, 2 on a usage error.
# `A && B || e2e_fail` is meant: e2e_fail exits.
# shellcheck disable=SC2015
set -euo pipefail

[ $# -eq 2 ] || {
	echo "usage: $0 WGATE WGT_FLOOD" >&2
	exit 2
}
WGATE=$1
FLOOD=$2
PORT=51823
METRICS=127.0.0.1:9588

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_require_root wg ip curl
e2e_require_impl "$WGATE"
[ -x "$FLOOD" ] || e2e_fail "wgt-flood '$FLOOD' is not an executable file"
e2e_init session_life

two_sides sl
start_impl "$NS_B" "$WGATE" "$IF_B" --tun-threads 1 --metrics-listen "$METRICS"
wg_keys b
wg_keys f
wg_keys g
PUB_B=$(cat "$E2E_TMP/b.pub")
PUB_F=$(cat "$E2E_TMP/f.pub")
in_ns "$NS_B" wg set "$IF_B" private-key "$E2E_TMP/b.key" listen-port "$PORT" \
	peer "$PUB_F" allowed-ips 10.241.0.99/32 \
	peer "$(cat "$E2E_TMP/g.pub")" allowed-ips 10.241.0.98/32
tun_addr "$NS_B" "$IF_B" 10.241.0.1/24 fd00:ab::1/64

# metric SERIES: its value in a fresh scrape (empty when absent).
metric() {
	in_ns "$NS_B" curl -s --max-time 10 "http://$METRICS/metrics" |
		awk -v s="$1" '$1 == s { print $2 }'
}
SESSIONS=wgate_peers_with_session_state
STALE='wgate_handshakes_failed_total{reason="stale_timestamp"}'
RESPONSES='wgate_handshakes_sent_total{message="response"}'
# metric_is SERIES VALUE
metric_is() {
	[ "$(metric "$1")" = "$2" ]
}
# metric_at_least SERIES VALUE
metric_at_least() {
	local v

	v=$(metric "$1")
	[ "${v:-0}" -ge "$2" ]
}
# flood NAME ARGS...: wgt-flood in NS_A as peer F, its output in $E2E_TMP/NAME.out.
flood() {
	local name=$1

	shift
	E2E_CMD_TIMEOUT=30 in_ns "$NS_A" "$FLOOD" --server "$E2E_UNDER4_B:$PORT" \
		--server-public-key "$PUB_B" --sockets 1 --kind replay-init --count 1 "$@" \
		>"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err" ||
		e2e_fail "wgt-flood $* exited $?: $(head -c 300 "$E2E_TMP/$name.err")"
}
# replay_old CHECK STALE: the first initiation, sent again until the stale counter
# reaches STALE (the link may still be coming up), never answered.
replay_old() {
	local tries=20 resp

	resp=$(metric "$RESPONSES")
	until metric_at_least "$STALE" "$2"; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || e2e_fail "($1) the old initiation was not refused as stale"
		flood "replay-$1" --load-init "$E2E_TMP/init1"
		wait_until 2 metric_at_least "$STALE" "$2" || true
	done
	metric_is "$RESPONSES" "$resp" || e2e_fail "($1) the old initiation was answered"
}

wait_for "/metrics" 10 metric_is "$SESSIONS" 0
e2e_pass a "two idle peers, no session state"

flood first --peer-private-key "$E2E_TMP/f.key" --save-init "$E2E_TMP/init1"
[ "$(stat -c %s "$E2E_TMP/init1")" -eq 148 ] || e2e_fail "(b) no initiation saved"
wait_for "(b) the stale replay counted" 10 metric_is "$STALE" 1
metric_is "$SESSIONS" 1 || e2e_fail "(b) sessions $(metric "$SESSIONS") after a handshake, not 1"
in_ns "$NS_B" wg show "$IF_B" latest-handshakes | grep -q "^$PUB_F[[:space:]]*[1-9]" ||
	e2e_fail "(b) no handshake with F in wg show"
e2e_pass b "a handshake made F's session; its initiation sent again: stale"

ip -n "$NS_B" link set "$IF_B" down
wait_for "(c) the session freed at link down" 10 metric_is "$SESSIONS" 0
ip -n "$NS_B" link set "$IF_B" up
e2e_pass c "link down: F's session state freed"

replay_old d 2
wait_for "(d) no session left by the refused initiation" 5 metric_is "$SESSIONS" 0
e2e_pass d "the old initiation, no session: stale, unanswered, nothing kept"

flood second --peer-private-key "$E2E_TMP/f.key"
wait_for "(e) the session made again" 10 metric_is "$SESSIONS" 1
e2e_pass e "a new handshake made F's session again"

stale=$(metric "$STALE")
replay_old f $((stale + 1))
metric_is "$SESSIONS" 1 || e2e_fail "(f) sessions $(metric "$SESSIONS"), not 1"
e2e_pass f "the old initiation, re-created session: stale, unanswered"

in_ns "$NS_B" wg set "$IF_B" peer "$PUB_F" remove
wait_for "(g) the session freed at removal" 10 metric_is "$SESSIONS" 0
metric_is wgate_session_state_alloc_failures_total 0 || e2e_fail "(g) session allocations failed"
e2e_pass g "F removed: its session freed"
