#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Live reload of wgate's --config file: by SIGHUP, by a Kubernetes-style swap of a
# mounted Secret (the file is `dir/wg0.conf -> ..data/wg0.conf`, `..data` a symlink to
# a timestamped directory, replaced by renaming a new symlink over it), and by an
# editor's rename over the file itself; peers added, removed and changed, addresses
# added and removed. After each: `wg show` matches the new file, while the one peer
# that never changes (a live wireguard-go) keeps its handshake and its counters, and a
# ping through it every 50 ms for the whole run loses nothing. A broken file leaves the
# running configuration as it was and counts a failed reload (log line and /metrics).
# Then a SIGHUP with the file unchanged brings back a peer `wg set ... remove` took
# away, and keeps an endpoint `wg set` changed (roaming). Last, a wgate that runs as
# nobody (--user) reloads a file it reads through its group and changes an address.
#
#   ns wgt$$a: wgate -f --config DIR/wg0.conf wgra$$  <-veth->  ns wgt$$b: wireguard-go wgrb$$
#
# Usage: reload.sh WGATE [WIREGUARD_GO]. Exits 0 when every check passed, 1 on the
# first failed one, 77 (skip) when not root or a tool is missing.
# `A && B || e2e_fail` is meant: e2e_fail exits.
# shellcheck disable=SC2015,SC2153 # NS_A, IF_A, ... are set by two_sides in lib.sh
set -euo pipefail

WGATE=${1:-}
WGGO=${2:-wireguard-go}
[ -n "$WGATE" ] || {
	echo "usage: $0 WGATE [WIREGUARD_GO]" >&2
	exit 2
}

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_require_root wg ip ping
e2e_require_impl "$WGATE"
e2e_require_impl "$WGGO"
e2e_init reload

TMP=$E2E_TMP
two_sides wgr
PORT_A=51820
PORT_B=51821
DIR=$TMP/secret
LOG_A=$TMP/$IF_A.log
mkdir -p "$DIR" "$TMP/keys"

wg_keys a
wg_keys b
wg_keys c
wg_keys d
wg_keys e
PUB_A=$(cat "$TMP/a.pub")
PUB_B=$(cat "$TMP/b.pub")
PUB_C=$(cat "$TMP/c.pub")
PUB_D=$(cat "$TMP/d.pub")
PUB_E=$(cat "$TMP/e.pub")
wg genpsk >"$TMP/keys/c.psk"
PSK_C1=$(cat "$TMP/keys/c.psk")

# conf VERSION: the file's text. v1 -> v2: D added, C's allowed IPs and keepalive
# changed, an address added; v3: C removed, D's endpoint changed, the address gone;
# v4: broken; v5: E added; v6: E removed again. B never changes.
conf() {
	cat <<EOF
[Interface]
PrivateKey = $(cat "$TMP/a.key")
ListenPort = $PORT_A
Address = $E2E_TUN4_A/24, $E2E_TUN6_A/64
EOF
	[ "$1" != 2 ] || echo "Address = 10.241.9.1/24"
	cat <<EOF

[Peer]
# Name = bob
PublicKey = $PUB_B
AllowedIPs = $E2E_TUN4_B/32, $E2E_TUN6_B/128
Endpoint = $E2E_UNDER4_B:$PORT_B
EOF
	case $1 in
	1)
		printf '\n[Peer]\nPublicKey = %s\nPresharedKeyFile = %s\nAllowedIPs = 10.241.3.0/24\n' \
			"$PUB_C" "$TMP/keys/c.psk"
		;;
	2)
		printf '\n[Peer]\nPublicKey = %s\nPresharedKeyFile = %s\n' "$PUB_C" "$TMP/keys/c.psk"
		printf 'AllowedIPs = 10.241.3.0/24, 10.241.4.0/24\nPersistentKeepalive = 15\n'
		printf '\n[Peer]\n# Name = dave\nPublicKey = %s\nAllowedIPs = 10.241.6.0/24\n' "$PUB_D"
		printf 'Endpoint = 192.168.241.66:5000\n'
		;;
	3 | 4 | 5 | 6)
		printf '\n[Peer]\n# Name = dave\nPublicKey = %s\nAllowedIPs = 10.241.6.0/24\n' "$PUB_D"
		printf 'Endpoint = 192.168.241.67:5001\n'
		[ "$1" != 4 ] || printf 'AllowedIPs = 10.241.0.999/32\n'
		[ "$1" != 5 ] || printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.241.8.8/32\n' "$PUB_E"
		;;
	esac
}

# The state `wg show` must give for a version: per peer, sorted, "KEY PSK KEEPALIVE IPS".
expected() {
	{
		echo "$PUB_B (none) off $E2E_TUN4_B/32,$E2E_TUN6_B/128"
		case $1 in
		1) echo "$PUB_C $PSK_C off 10.241.3.0/24" ;;
		2)
			echo "$PUB_C $PSK_C 15 10.241.3.0/24,10.241.4.0/24"
			echo "$PUB_D (none) off 10.241.6.0/24"
			;;
		3 | 6) echo "$PUB_D (none) off 10.241.6.0/24" ;;
		5)
			echo "$PUB_D (none) off 10.241.6.0/24"
			echo "$PUB_E (none) off 10.241.8.8/32"
			;;
		esac
	} | sort
}

state() {
	in_ns "$NS_A" wg show "$IF_A" dump | tail -n +2 |
		while read -r pub psk _ ips _ _ _ ka; do
			echo "$pub $psk $ka $(tr ',' '\n' <<<"$ips" | sort | paste -sd, -)"
		done | sort
}

state_is() {
	[ "$(state)" = "$(expected "$1")" ]
}

# expect_version CHECK VERSION: polls until `wg show` gives that version's state.
expect_version() {
	if ! wait_until 10 state_is "$2"; then
		e2e_fail "$1: wg show does not match v$2 after 10 s:
got:
$(state)
expected:
$(expected "$2")"
	fi
}

endpoint_of() {
	in_ns "$NS_A" wg show "$IF_A" endpoints | awk -v k="$1" '$1 == k { print $2 }'
}

has_addr() {
	grep -qF " $1 " <<<"$(ip -n "$NS_A" -o addr show dev "$IF_A")"
}

# B's handshake time and counters, as wgate sees them: never reset by a reload.
HS_B=
RX_B=0
TX_B=0
check_bob() {
	local hs rx tx

	hs=$(in_ns "$NS_A" wg show "$IF_A" latest-handshakes | awk -v k="$PUB_B" '$1 == k { print $2 }')
	read -r rx tx < <(in_ns "$NS_A" wg show "$IF_A" transfer | awk -v k="$PUB_B" '$1 == k { print $2, $3 }')
	[ "$hs" = "$HS_B" ] || e2e_fail "$1: bob's latest handshake went from $HS_B to $hs"
	[ "$rx" -ge "$RX_B" ] && [ "$tx" -ge "$TX_B" ] ||
		e2e_fail "$1: bob's counters went back from rx $RX_B tx $TX_B to rx $rx tx $tx"
	RX_B=$rx
	TX_B=$tx
}

# k8s-style: DIR/..TS/wg0.conf, DIR/..data -> ..TS, DIR/wg0.conf -> ..data/wg0.conf.
publish() {
	mkdir "$DIR/..2026_$1"
	conf "$1" >"$DIR/..2026_$1/wg0.conf"
}
swap_to() {
	publish "$1"
	ln -s "..2026_$1" "$DIR/..data_tmp"
	mv -T "$DIR/..data_tmp" "$DIR/..data"
}

# ---- (a) start from v1, bob's tunnel up, a ping through it for the whole run
PSK_C=$PSK_C1
publish 1
ln -s ..2026_1 "$DIR/..data"
ln -s ..data/wg0.conf "$DIR/wg0.conf"
METRICS=127.0.0.1:9586
start_impl "$NS_A" "$WGATE" "$IF_A" --tun-threads 2 --metrics-listen "$METRICS" \
	--config "$DIR/wg0.conf"
PID_A=$IMPL_PID
start_impl "$NS_B" "$WGGO" "$IF_B"
in_ns "$NS_B" wg set "$IF_B" private-key "$TMP/b.key" listen-port "$PORT_B" \
	peer "$PUB_A" allowed-ips "$E2E_TUN4_A/32,$E2E_TUN6_A/128" endpoint "$E2E_UNDER4_A:$PORT_A"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" "$E2E_TUN6_B/64"
expect_version "(a)" 1
wait_for "a first ping through bob's tunnel" 15 \
	in_ns "$NS_B" ping -q -n -c 1 -W 1 "$E2E_TUN4_A"
HS_B=$(in_ns "$NS_A" wg show "$IF_A" latest-handshakes | awk -v k="$PUB_B" '$1 == k { print $2 }')
[ "$HS_B" -gt 0 ] || e2e_fail "(a) no handshake with bob"
check_bob "(a)"
e2e_add_log "ping through bob" "$TMP/ping.log"
e2e_spawn "$TMP/ping.log" ip netns exec "$NS_B" ping -n -i 0.05 -W 2 "$E2E_TUN4_A"
PING_PID=$E2E_LAST_PID
e2e_pass "(a)" "v1 applied at start; bob's handshake done; ping every 50 ms started"

# ---- (b) SIGHUP: a changed key file (in a directory nobody watches) is applied
wg genpsk >"$TMP/keys/c.psk.new"
mv "$TMP/keys/c.psk.new" "$TMP/keys/c.psk"
PSK_C=$(cat "$TMP/keys/c.psk")
kill -HUP "$PID_A"
expect_version "(b)" 1
grep -q "reloading config .* (SIGHUP)" "$LOG_A" || e2e_fail "(b) no reload line for SIGHUP"
check_bob "(b)"
e2e_pass "(b)" "SIGHUP re-read the file: carol's new PresharedKeyFile applied"

# ---- (c) Kubernetes swap to v2: dave added, carol changed, an address added
swap_to 2
expect_version "(c)" 2
wait_for "address 10.241.9.1/24" 5 has_addr 10.241.9.1/24
[ "$(endpoint_of "$PUB_D")" = 192.168.241.66:5000 ] || e2e_fail "(c) dave's endpoint is '$(endpoint_of "$PUB_D")'"
grep -q "config applied: peers +1 -0 ~1, 1 unchanged" "$LOG_A" ||
	e2e_fail "(c) no 'config applied: peers +1 -0 ~1, 1 unchanged' line"
check_bob "(c)"
e2e_pass "(c)" "..data swapped to v2: peer added and changed, address added; bob untouched"

# ---- (d) swap to v3: carol removed, dave's endpoint changed, the address removed
swap_to 3
expect_version "(d)" 3
wait_for "address 10.241.9.1/24 to go" 5 eval '! has_addr 10.241.9.1/24'
has_addr "$E2E_TUN4_A/24" && has_addr "$E2E_TUN6_A/64" || e2e_fail "(d) a kept address went away"
[ "$(endpoint_of "$PUB_D")" = 192.168.241.67:5001 ] || e2e_fail "(d) dave's endpoint is '$(endpoint_of "$PUB_D")'"
check_bob "(d)"
e2e_pass "(d)" "..data swapped to v3: peer removed, endpoint changed, address removed"

# ---- (e) a broken v4: refused, v3 keeps running, the failure is counted
swap_to 4
wait_for "the refusal of v4 in the log" 10 grep -q "refused (.*): the running configuration stays (1 failed reloads)" "$LOG_A"
grep -q "wg0.conf:[0-9]*: " "$LOG_A" || e2e_fail "(e) no FILE:LINE line for the broken file"
state_is 3 || e2e_fail "(e) the configuration changed after a broken file"
check_bob "(e)"
e2e_pass "(e)" "a broken file: one FILE:LINE error, v3 stays, 1 failed reload counted"

# ---- (f) v5 by swap, then v6 by an editor's rename inside the current timestamped dir
swap_to 5
expect_version "(f)" 5
conf 6 >"$DIR/..2026_5/.wg0.conf.swp"
mv "$DIR/..2026_5/.wg0.conf.swp" "$DIR/..2026_5/wg0.conf"
expect_version "(f)" 6
check_bob "(f)"
e2e_pass "(f)" "v5 by swap (peer added), v6 by rename over the file (peer removed)"

# ---- (g) the ping through bob lost nothing
# Ten more replies after the last reload, then stop it.
replies() {
	grep -c 'icmp_seq=' "$TMP/ping.log" || true
}
more_replies_than() {
	[ "$(replies)" -ge $(($1 + 10)) ]
}
wait_for "ping replies after the last reload" 10 more_replies_than "$(replies)"
kill -INT "$PING_PID"
wait_gone "$PING_PID" 5 || e2e_fail "(g) ping did not stop"
wait "$PING_PID" 2>/dev/null || true
e2e_forget_pid "$PING_PID"
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$TMP/ping.log")
got=$(grep -c 'icmp_seq=' "$TMP/ping.log" || true)
[ -n "$sent" ] && [ "$sent" -ge 20 ] || e2e_fail "(g) ping sent '$sent' packets"
# Every request answered, but for the last one if SIGINT came before its reply could.
missing=$(sed -n 's/.*icmp_seq=\([0-9]*\) .*/\1/p' "$TMP/ping.log" | sort -n |
	awk -v n="$sent" '{ seen[$1] = 1 } END { for (i = 1; i <= n; i++) if (!seen[i]) printf "%d ", i }')
[ -z "$missing" ] || [ "$missing" = "$sent " ] ||
	e2e_fail "(g) ping through bob lost requests $missing(of $sent) during the reloads"
check_bob "(g)"
pid_alive "$PID_A" || e2e_fail "wgate died"
e2e_pass "(g)" "ping through bob every 50 ms: $got of $sent answered across 6 reloads; handshake and counters kept"

# ---- (m) the counters on /metrics: 5 reloads applied (b, c, d and the two of f), 1 refused
if command -v curl >/dev/null; then
	in_ns "$NS_A" curl -s --max-time 10 "http://$METRICS/metrics" >"$TMP/metrics.txt" ||
		e2e_fail "(m) no answer from /metrics"
	grep -qx 'wgate_config_reloads_total 5' "$TMP/metrics.txt" ||
		e2e_fail "(m) $(grep '^wgate_config_reloads_total' "$TMP/metrics.txt" || echo 'no reload counter'), expected 5"
	grep -qx 'wgate_config_reload_failures_total 1' "$TMP/metrics.txt" ||
		e2e_fail "(m) $(grep '^wgate_config_reload_failures_total' "$TMP/metrics.txt" || echo 'no failure counter'), expected 1"
	e2e_pass "(m)" "/metrics: wgate_config_reloads_total 5, wgate_config_reload_failures_total 1"
else
	echo "NOTE (m) skipped: no curl (apt-get install curl)"
fi

# ---- (i) SIGHUP with the file unchanged (v6): a roamed endpoint stays; a peer that
# `wg set ... remove` took away comes back in full (allowed IPs, endpoint, name).
applied() {
	grep -c "config applied: " "$LOG_A" || true
}
applied_more_than() {
	[ "$(applied)" -gt "$1" ]
}
n=$(applied)
in_ns "$NS_A" wg set "$IF_A" peer "$PUB_D" endpoint 192.168.241.99:6000
kill -HUP "$PID_A"
wait_for "the reload after SIGHUP (roamed endpoint)" 10 applied_more_than "$n"
[ "$(endpoint_of "$PUB_D")" = 192.168.241.99:6000 ] ||
	e2e_fail "(i) dave's roamed endpoint became '$(endpoint_of "$PUB_D")' at a reload of an unchanged file"
grep -q "peer dave: added again" "$LOG_A" && e2e_fail "(i) dave 'added again' while on the device"
n=$(applied)
in_ns "$NS_A" wg set "$IF_A" peer "$PUB_D" remove
in_ns "$NS_A" wg show "$IF_A" peers | grep -qxF "$PUB_D" && e2e_fail "(i) wg set ... remove left dave"
kill -HUP "$PID_A"
wait_for "the reload after SIGHUP (removed peer)" 10 applied_more_than "$n"
expect_version "(i)" 6
[ "$(endpoint_of "$PUB_D")" = 192.168.241.67:5001 ] ||
	e2e_fail "(i) dave came back with endpoint '$(endpoint_of "$PUB_D")'"
grep -q "peer dave: added again" "$LOG_A" || e2e_fail "(i) no 'peer dave: added again' line"
grep -q "config applied: peers +1 -0 ~0, 1 unchanged" "$LOG_A" ||
	e2e_fail "(i) no 'config applied: peers +1 -0 ~0, 1 unchanged' line"
check_bob "(i)"
e2e_pass "(i)" "SIGHUP, file unchanged: roamed endpoint kept; a peer removed by wg set added back in full"

# ---- (h) --user nobody: a reload after the privilege drop changes an address. The file
# is readable through its group only; the directory too (and $TMP may be traversed).
NS_C=wgt$$c
IF_C=wgrc$$
IF_C=${IF_C:0:15}
GROUP=$(id -gn nobody)
ns_add "$NS_C"
chmod 711 "$TMP"
install -d -m 750 -g "$GROUP" "$TMP/user"
user_conf() {
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51830\nAddress = %s\n' \
		"$(cat "$TMP/a.key")" "$1"
	printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.241.20.2/32\n' "$PUB_B"
}
user_conf 10.241.20.1/24 >"$TMP/user/wg0.conf"
chgrp "$GROUP" "$TMP/user/wg0.conf"
chmod 640 "$TMP/user/wg0.conf"
start_impl "$NS_C" "$WGATE" "$IF_C" --tun-threads 1 --user nobody --config "$TMP/user/wg0.conf"
PID_C=$IMPL_PID
uid=$(awk '/^Uid:/ { print $2 "," $3 "," $4 "," $5 }' "/proc/$PID_C/status")
[ "$uid" = "$(id -u nobody),$(id -u nobody),$(id -u nobody),$(id -u nobody)" ] ||
	e2e_fail "(h) wgate --user nobody runs with uids $uid"
has_addr_c() {
	grep -qF " $1 " <<<"$(ip -n "$NS_C" -o addr show dev "$IF_C")"
}
wait_for "the file's first address in $NS_C" 5 has_addr_c 10.241.20.1/24
user_conf 10.241.21.1/24 >"$TMP/user/.wg0.conf.new"
chgrp "$GROUP" "$TMP/user/.wg0.conf.new"
chmod 640 "$TMP/user/.wg0.conf.new"
mv "$TMP/user/.wg0.conf.new" "$TMP/user/wg0.conf"
wait_for "the new address after a reload as nobody" 10 has_addr_c 10.241.21.1/24
wait_for "the old address to go" 5 eval '! has_addr_c 10.241.20.1/24'
pid_alive "$PID_C" || e2e_fail "(h) wgate --user nobody died"
e2e_pass "(h)" "--user nobody: a file readable through its group, reloaded after the drop, address changed"

stop_pid "$PID_A" TERM 5 || e2e_fail "wgate outlived SIGTERM by 5 s"
echo "reload: all checks passed ($(e2e_elapsed_ms) ms)"
