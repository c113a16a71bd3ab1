#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Handshakes a second wgate completes for real peers while it is flooded: perf/wgate-loadgen's
# PEERS peers (each from its own address in 10.202.0.0/16, rekeying every 5 s) against a
# 2-worker wgate, with tests/flood/wgt-flood sending initiations with a valid mac1 from
# 10.200.0.0/16 (MODE many), from 10.200.0.1 alone (one), or nothing (none).
# Prints the loadgen's summary and details, wgate's control counters and the flood's line.
#
# Usage (root): perf/flood_handshakes.sh WGATE LOADGEN WGT_FLOOD PEERS SECONDS none|many|one
#   e.g. perf/flood_handshakes.sh build/gateway/wgate build/perf/wgate-loadgen \
#        build/tests/flood/wgt-flood 1000 20 many
set -euo pipefail

[ $# -eq 6 ] || {
	echo "usage: $0 WGATE LOADGEN WGT_FLOOD PEERS SECONDS none|many|one" >&2
	exit 2
}
WGATE=$1 LOADGEN=$2 FLOOD=$3 PEERS=$4 SECS=$5 MODE=$6
PORT=51823
case $MODE in
none) sources= ;;
many) sources=10.200.0.0/16 ;;
one) sources=10.200.0.1/32 ;;
*) echo "$0: MODE is none, many or one" >&2; exit 2 ;;
esac

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/../tests/e2e/lib.sh"
e2e_require_root wg ip
e2e_init flood-hs
two_sides wh
for net in 10.200.0.0/16 10.202.0.0/16; do
	ip -n "$NS_A" route add local "$net" dev lo
	ip -n "$NS_B" route add "$net" via "$E2E_UNDER4_A"
done
start_impl "$NS_B" "$WGATE" "$IF_B" --tun-threads 2
PID_B=$IMPL_PID
wg_keys b
PUB_B=$(cat "$E2E_TMP/b.pub")
in_ns "$NS_B" wg set "$IF_B" private-key "$E2E_TMP/b.key" listen-port "$PORT"
tun_addr "$NS_B" "$IF_B" 10.128.0.1/16 fd00:128::1/64
"$LOADGEN" --print-peers --peers "$PEERS" --seed 7 >"$E2E_TMP/peers.conf"
in_ns "$NS_B" wg addconf "$IF_B" "$E2E_TMP/peers.conf"
if [ -n "$sources" ]; then
	e2e_spawn "$E2E_TMP/flood.out" ip netns exec "$NS_A" "$FLOOD" --server "$E2E_UNDER4_B:$PORT" \
		--server-public-key "$PUB_B" --kind valid-mac1 --count 1000000000 \
		--seconds $((SECS + 8)) --source-net "$sources"
	FLOOD_PID=$E2E_LAST_PID
	sleep 1
fi
E2E_CMD_TIMEOUT=$((SECS + 60)) in_ns "$NS_A" "$LOADGEN" --server "$E2E_UNDER4_B:$PORT" \
	--server-public-key "$PUB_B" --peers "$PEERS" --seconds "$SECS" --seed 7 \
	--source-net 10.202.0.0/16 --sockets 8 --rate 1 --rekey-after 5 --ramp 1 --drain 3 \
	--max-loss 1000000 --quiet >"$E2E_TMP/lg.out" 2>"$E2E_TMP/lg.err" || true
cat "$E2E_TMP/lg.out"
grep -m1 -E 'details|FAIL' "$E2E_TMP/lg.err" || true
counters_dump "$E2E_TMP/$IF_B.log" "$PID_B"
grep ' control: ' "$E2E_TMP/$IF_B.log" | tail -n 1
if [ -n "$sources" ]; then
	wait_gone "$FLOOD_PID" 30 || true
	cat "$E2E_TMP/flood.out"
fi
