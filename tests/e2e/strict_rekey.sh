#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Strict key confirmation: wgt_probe, a strict initiator on the project's protocol core
# (it forgets its previous keypair the moment a handshake gives it a new one, as the
# protocol allows), handshakes with wgate 1 + REKEYS times and pings wgate's tunnel
# address after each handshake. wgate, the responder, holds each new keypair in `next`
# until the probe's first data message under it, and must seal every packet after that
# one, the echo reply included, under the new keypair: any reply under an older keypair
# is one the probe cannot read, and fails the test.
#
#   ns A: wgt_probe 192.168.241.1:51820  <-veth->  ns B: wgate 192.168.241.2:51821
#         tunnel 10.241.0.1                               tunnel 10.241.0.2/24
#
# Usage: strict_rekey.sh WGATE WGT_PROBE [--threads N] [--rekeys N]
# Exits 0 when every check passed, 1 on the first failed one, 77 (skip) when not root
# or a tool is missing, 2 on a usage error.
set -euo pipefail

usage() {
	echo "usage: $0 WGATE WGT_PROBE [--threads N] [--rekeys N]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
IMPL=$1
PROBE=$2
shift 2
THREADS=2
REKEYS=100
while [ $# -gt 0 ]; do
	case $1 in
	--threads) THREADS=${2:?}; shift 2 ;;
	--rekeys) REKEYS=${2:?}; shift 2 ;;
	*) usage ;;
	esac
done

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_require_root wg ip
e2e_require_impl "$IMPL"
[ -x "$PROBE" ] || e2e_fail "$PROBE is not executable"
e2e_init strict_rekey

two_sides sk
# shellcheck disable=SC2086 # WGT_E2E_WGATE_ARGS holds several words on purpose
start_impl "$NS_B" "$IMPL" "$IF_B" --tun-threads "$THREADS" ${WGT_E2E_WGATE_ARGS:-}
WGATE_PID=$IMPL_PID
wg_keys probe
wg_keys gate
in_ns "$NS_B" wg set "$IF_B" private-key "$E2E_TMP/gate.key" listen-port 51821 \
	peer "$(cat "$E2E_TMP/probe.pub")" allowed-ips "$E2E_TUN4_A/32"
ip -n "$NS_B" addr add "$E2E_TUN4_B/24" dev "$IF_B"
ip -n "$NS_B" link set "$IF_B" up

# 30 ms between initiations (the responder's flood limit) makes 100 rounds ~3-4 s;
# the timeout leaves room for a ThreadSanitizer build on a busy machine.
log=$E2E_TMP/probe.log
e2e_add_log "wgt_probe in $NS_A" "$log"
rc=0
E2E_CMD_TIMEOUT=150 in_ns "$NS_A" "$PROBE" initiate \
	--private-key "$(cat "$E2E_TMP/probe.key")" --peer-public-key "$(cat "$E2E_TMP/gate.pub")" \
	--endpoint "$E2E_UNDER4_B:51821" --listen-port 51820 \
	--tunnel-ip "$E2E_TUN4_A" --peer-tunnel-ip "$E2E_TUN4_B" \
	--rekeys "$REKEYS" --timeout 120 >"$log" 2>&1 || rc=$?
awk '/^wgt_probe: (FAIL|strict|error|no echo)/ && n++ < 20 { sub(/^wgt_probe: /, "    "); print }' "$log"
pid_alive "$WGATE_PID" || e2e_fail "wgate exited during the run"
[ "$rc" -eq 0 ] || e2e_fail "wgt_probe exited $rc: not every reply came under the newest keypair"
summary=$(grep 'strict initiator: .* echo replies' "$log" || true)
[[ $summary == *"under an older one 0, undecryptable 0, unknown index 0"* ]] ||
	e2e_fail "no clean summary from wgt_probe: ${summary:-none}"
e2e_pass a "$REKEYS re-handshakes with a strict initiator ($THREADS workers): every reply under the newest keypair"

# wgate's own view: the last handshake is the probe's, and it counted every echo both ways.
hs=$(in_ns "$NS_B" wg show "$IF_B" latest-handshakes | awk '{ print $2 }')
[ "${hs:-0}" -gt 0 ] || e2e_fail "wg show has no handshake with the probe"
read -r rx tx < <(in_ns "$NS_B" wg show "$IF_B" transfer | awk '{ print $2, $3 }')
min=$(((REKEYS + 1) * 84))
[ "${rx:-0}" -ge "$min" ] && [ "${tx:-0}" -ge "$min" ] ||
	e2e_fail "wg show transfer rx ${rx:-?} tx ${tx:-?}: fewer than $((REKEYS + 1)) echo requests and replies"
e2e_pass b "wg show: latest handshake $(date -d "@$hs" '+%H:%M:%S'), transfer rx $rx tx $tx bytes"
echo "strict_rekey.sh: all checks passed in $(e2e_elapsed_ms) ms"
