#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy/quickstart.sh as the README's first command, in a network namespace: its
# first run makes the state directory, the gateway's config and one client and runs
# wgate; a Debian wireguard-go client configured from the printed config pings the
# gateway; the QR code (PNG) decodes to exactly that config; a second run keeps the
# keys and prints the same client again.
#   quickstart.sh WGATE
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WGATE=${1:?usage: quickstart.sh WGATE}
QUICKSTART=$(cd "$(dirname "$0")/../.." && pwd)/deploy/quickstart.sh
e2e_require_root wg wg-quick ip ping zbarimg wireguard-go
e2e_require_impl "$WGATE"
e2e_init quickstart

# ping_within NS ADDR SECONDS: 0 once a ping is answered, 1 after SECONDS (a deadline,
# since each try may take its whole -W second).
ping_within() {
	local end=$((SECONDS + $3))

	until in_ns "$1" ping -c1 -W1 "$2" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || return 1
	done
}

two_sides qs

STATE=$E2E_TMP/state
LOG=$E2E_TMP/quickstart.log
qs_args=(--dir "$STATE" --iface "$IF_A" --endpoint "$E2E_UNDER4_A" --client phone --wgate "$WGATE")

"$QUICKSTART" --help | grep -q -- '--forwarding *(OFF by default)' || e2e_fail "--help does not say forwarding is off by default"

# 1. First run: everything made, wgate runs in the foreground (exec), so in the background here.
e2e_own_iface "$IF_A"
e2e_add_log "quickstart (wgate $IF_A)" "$LOG"
e2e_spawn "$LOG" ip netns exec "$NS_A" "$QUICKSTART" "${qs_args[@]}" --qr-png "$E2E_TMP/qr.png"
QS_PID=$E2E_LAST_PID
wait_for "the quickstart to start wgate" 120 uapi_ready "$NS_A" "$IF_A" "$QS_PID" "$QUICKSTART"
grep -q 'forwarding is OFF' "$LOG" || e2e_fail "the output does not say that forwarding is off"
[ "$(stat -c %a "$STATE")" = 700 ] || e2e_fail "state directory mode $(stat -c %a "$STATE"), not 700"
[ "$(stat -c %a "$STATE/$IF_A.conf")" = 600 ] || e2e_fail "config mode $(stat -c %a "$STATE/$IF_A.conf"), not 600"
grep -qx "# Endpoint = $E2E_UNDER4_A:51820" "$STATE/$IF_A.conf" || e2e_fail "no '# Endpoint' line with the port"

# The printed client config: from its [Interface] line to its PersistentKeepalive line.
sed -n '/^\[Interface\]$/,/^PersistentKeepalive/p' "$LOG" >"$E2E_TMP/client.conf"
grep -q '^PrivateKey = ' "$E2E_TMP/client.conf" || e2e_fail "no client config in the output"
grep -qx "Endpoint = $E2E_UNDER4_A:51820" "$E2E_TMP/client.conf" || e2e_fail "client Endpoint: $(grep Endpoint "$E2E_TMP/client.conf")"
grep -q $'^\xe2\x96' "$LOG" || e2e_fail "no QR code (half blocks) in the output"
cmp -s <(zbarimg --raw -q "$E2E_TMP/qr.png" 2>/dev/null) <(cat "$E2E_TMP/client.conf"; echo) ||
	e2e_fail "the QR PNG does not decode to the printed config"
e2e_pass first "state dir 700, config 600 with # Endpoint, client config and QR printed; PNG decodes to it"

# 2. The client: Debian's wireguard-go configured from the printed file, as wg-quick would.
start_impl "$NS_B" wireguard-go "$IF_B"
wg-quick strip "$E2E_TMP/client.conf" >"$E2E_TMP/client.wg"
in_ns "$NS_B" wg setconf "$IF_B" "$E2E_TMP/client.wg"
for a in $(sed -n 's/^Address = //p' "$E2E_TMP/client.conf" | tr -d ,); do
	if [[ $a == *:* ]]; then
		in_ns "$NS_B" ip address add "$a" dev "$IF_B" nodad
	else
		in_ns "$NS_B" ip address add "$a" dev "$IF_B"
	fi
done
in_ns "$NS_B" ip link set "$IF_B" up
for a in $(sed -n 's/^AllowedIPs = //p' "$E2E_TMP/client.conf" | tr -d ,); do
	in_ns "$NS_B" ip route add "$a" dev "$IF_B"
done
ping_within "$NS_B" 10.77.0.1 20 || e2e_fail "timed out after 20 s waiting for the client to ping the gateway 10.77.0.1"
in_ns "$NS_B" ping -c1 -W2 fd00:77::1 >/dev/null || e2e_fail "the client cannot ping fd00:77::1"
e2e_pass ping "wireguard-go with the printed config pings the gateway (IPv4 and IPv6)"

# 3. Re-run: the same keys, the same client printed again.
stop_pid "$QS_PID" TERM 5 || e2e_fail "wgate (quickstart) did not stop on SIGTERM"
key=$(grep '^PrivateKey' "$STATE/$IF_A.conf")
in_ns "$NS_A" "$QUICKSTART" "${qs_args[@]}" --no-run >"$E2E_TMP/rerun.log" 2>&1 ||
	e2e_fail "the re-run failed: $(tail -n3 "$E2E_TMP/rerun.log")"
[ "$(grep '^PrivateKey' "$STATE/$IF_A.conf")" = "$key" ] || e2e_fail "the re-run changed the gateway's key"
cmp -s <(sed -n '/^\[Interface\]$/,/^PersistentKeepalive/p' "$E2E_TMP/rerun.log") "$E2E_TMP/client.conf" ||
	e2e_fail "the re-run printed another client config"
grep -q $'^\xe2\x96' "$E2E_TMP/rerun.log" || e2e_fail "the re-run printed no QR code"
[ "$("$WGATE" peer list --config "$STATE/$IF_A.conf" | wc -l)" -eq 1 ] || e2e_fail "the re-run added a peer"
e2e_pass rerun "keys and client kept, the same config and QR printed again"

# 4. The default endpoint: the source address of the default route, or a clear error without one.
rc=0
in_ns "$NS_A" "$QUICKSTART" --dir "$E2E_TMP/noroute" --iface "$IF_A" --wgate "$WGATE" --no-run \
	>"$E2E_TMP/noroute.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q 'no default route.*give --endpoint' "$E2E_TMP/noroute.log" ||
	e2e_fail "without a default route: exit $rc, $(tail -n1 "$E2E_TMP/noroute.log")"
in_ns "$NS_A" ip route add default via "$E2E_UNDER4_B"
in_ns "$NS_A" "$QUICKSTART" --dir "$E2E_TMP/route" --iface "$IF_A" --port 4242 --wgate "$WGATE" --no-run \
	>"$E2E_TMP/route.log" 2>&1 || e2e_fail "with a default route: $(tail -n2 "$E2E_TMP/route.log")"
grep -qx "Endpoint = $E2E_UNDER4_A:4242" "$E2E_TMP/route.log" ||
	e2e_fail "the default endpoint is not $E2E_UNDER4_A:4242: $(grep Endpoint "$E2E_TMP/route.log")"
e2e_pass endpoint "from the default route's source address (port from --port); none: one clear error"

# 5. --forwarding (off by default): forwarding on in the gateway's namespace, NAT table made.
if [ -x "$(dirname "$QUICKSTART")/forwarding.sh" ] && command -v nft >/dev/null; then
	in_ns "$NS_A" sysctl -qw net.ipv4.ip_forward=0
	in_ns "$NS_A" "$QUICKSTART" "${qs_args[@]}" --no-run --forwarding >"$E2E_TMP/fwd.log" 2>&1 ||
		e2e_fail "--forwarding: $(tail -n2 "$E2E_TMP/fwd.log")"
	[ "$(in_ns "$NS_A" cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || e2e_fail "--forwarding left ip_forward off"
	in_ns "$NS_A" nft list table inet wgate_nat | grep -q masquerade || e2e_fail "--forwarding made no masquerade rule"
	e2e_pass fwd "--forwarding: IPv4 forwarding on and the masquerade rule, in the gateway's namespace"
else
	echo "SKIP fwd: deploy/forwarding.sh or nft missing"
fi
