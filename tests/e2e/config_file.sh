#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wgate configured only by its --config file (no `wg`, no `ip` on its side) against
# Debian's wireguard-go configured by `wg` and `ip`: the tunnel carries ping both ways
# over IPv4 and IPv6; `wg showconf` gives the file's keys and peers back; the MTU,
# addresses and a route per allowed IP are as the file says; a host-name Endpoint that
# does not resolve yet is retried and applied once it does; systemd's READY=1 comes once
# the file is applied and RELOADING=1/READY=1 bracket a reload; a broken file stops
# wgate before any device exists, in the foreground and daemonizing alike.
#
#   ns wgt$$a                                          ns wgt$$b
#   wgate -f --config a.conf wgfa$$ 192.168.241.1 <-veth-> 192.168.241.2  wireguard-go wgfb$$
#   udp 51820, 10.241.0.1/24 fd00:ab::1/64, mtu 1380    udp 51821, 10.241.0.2/24 fd00:ab::2/64
#
# Usage: config_file.sh WGATE [WIREGUARD_GO]. Exits 0 when every check passed, 1 on the
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

e2e_require_root wg ip ping python3
e2e_require_impl "$WGATE"
e2e_require_impl "$WGGO"
e2e_init config-file

TMP=$E2E_TMP
two_sides wgf
NS_C=wgt$$c
IF_C=wgfc$$
IF_C=${IF_C:0:15}
PORT_A=51820
PORT_B=51821
MTU=1380
EXTRA4=10.241.5.0/24
HOST=peer-c.wgt$$.test
# `ip netns exec` bind-mounts /etc/netns/NS/hosts over /etc/hosts: the name wgate
# resolves is ours alone. Removed on exit, whatever the outcome.
HOSTS_DIR=/etc/netns/$NS_A
# (set +e: under errexit the `(exit rc)` that hands the status on would end the trap.)
trap 'rc=$?; set +e; rm -rf "$HOSTS_DIR"; (exit $rc); e2e_cleanup' EXIT

wg_keys a
wg_keys b
wg_keys c
wg genpsk >"$TMP/psk"
PUB_A=$(cat "$TMP/a.pub")
PUB_B=$(cat "$TMP/b.pub")
PUB_C=$(cat "$TMP/c.pub")

# ---- (a) a broken file: FILE:LINE on stderr, exit 1, no device, no socket
cat >"$TMP/bad.conf" <<EOF
[Interface]
PrivateKey = $(cat "$TMP/a.key")
ListenPort = 99999
EOF
for mode in -f ""; do
	rc=0
	# shellcheck disable=SC2086 # an empty mode is no argument
	timeout 10 ip netns exec "$NS_A" "$WGATE" $mode --config "$TMP/bad.conf" "$IF_A" \
		>"$TMP/bad.out" 2>"$TMP/bad.err" || rc=$?
	[ "$rc" -eq 1 ] || e2e_fail "(a) a bad file ${mode:-(daemonizing)}: exit $rc, expected 1"
	grep -q "^$TMP/bad.conf:3: " "$TMP/bad.err" ||
		e2e_fail "(a) no '$TMP/bad.conf:3: ...' line on stderr: $(head -c 300 "$TMP/bad.err")"
	! grep -qF "$(cat "$TMP/a.key")" "$TMP/bad.err" "$TMP/bad.out" ||
		e2e_fail "(a) the private key was printed"
	! ip -n "$NS_A" link show "$IF_A" >/dev/null 2>&1 || e2e_fail "(a) $IF_A was created"
	[ ! -e "$(e2e_sock "$IF_A")" ] || e2e_fail "(a) the UAPI socket was created"
done
e2e_pass "(a)" "a bad file: one FILE:LINE line, exit 1, no device, -f and daemonizing"

# ---- (b) wgate from the file alone; wireguard-go by wg and ip
mkdir -p "$HOSTS_DIR"
echo "127.0.0.1 localhost" >"$HOSTS_DIR/hosts"
cat >"$TMP/a.conf" <<EOF
# wgate side: everything from here
[Interface]
PrivateKey = $(cat "$TMP/a.key")
ListenPort = $PORT_A
Address = $E2E_TUN4_A/24
Address = $E2E_TUN6_A/64
MTU = $MTU

[Peer]
# Name = bob
PublicKey = $PUB_B
PresharedKey = $(cat "$TMP/psk")
AllowedIPs = $E2E_TUN4_B/32, $E2E_TUN6_B/128
AllowedIPs = $EXTRA4
Endpoint = $E2E_UNDER4_B:$PORT_B
PersistentKeepalive = 25

[Peer]
# Name = carol
PublicKey = $PUB_C
AllowedIPs = 10.241.7.3/32
Endpoint = $HOST:51822
EOF
# A stand-in for systemd's notify socket (as sd_notify.sh): every datagram as one line.
NOTIFY=$TMP/notify.sock
MSGS=$TMP/notify.txt
: >"$MSGS"
e2e_spawn "$TMP/listener.log" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", "|") + "\n")
        out.flush()' "$NOTIFY" "$MSGS"
wait_for "the notify socket" 5 test -S "$NOTIFY"
NOTIFY_SOCKET=$NOTIFY start_impl "$NS_A" "$WGATE" "$IF_A" --tun-threads 2 --config "$TMP/a.conf"
PID_A=$IMPL_PID
start_impl "$NS_B" "$WGGO" "$IF_B"
in_ns "$NS_B" wg set "$IF_B" private-key "$TMP/b.key" listen-port "$PORT_B" \
	peer "$PUB_A" preshared-key "$TMP/psk" allowed-ips "$E2E_TUN4_A/32,$E2E_TUN6_A/128" \
	endpoint "$E2E_UNDER4_A:$PORT_A"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" "$E2E_TUN6_B/64"

# wg showconf: every line the file gives, and only its two peers.
in_ns "$NS_A" wg showconf "$IF_A" >"$TMP/showconf"
for line in "PrivateKey = $(cat "$TMP/a.key")" "ListenPort = $PORT_A" "PublicKey = $PUB_B" \
	"PresharedKey = $(cat "$TMP/psk")" "Endpoint = $E2E_UNDER4_B:$PORT_B" \
	"PersistentKeepalive = 25" "PublicKey = $PUB_C" "AllowedIPs = 10.241.7.3/32"; do
	grep -qxF "$line" "$TMP/showconf" || e2e_fail "(b) wg showconf lacks '${line%% =*} = ...'"
done
got=$(in_ns "$NS_A" wg show "$IF_A" allowed-ips | awk -v k="$PUB_B" '$1 == k { $1 = ""; print }' |
	tr ' ' '\n' | sed '/^$/d' | sort | tr '\n' ' ')
want=$(printf '%s\n' "$E2E_TUN4_B/32" "$E2E_TUN6_B/128" "$EXTRA4" | sort | tr '\n' ' ')
[ "$got" = "$want" ] || e2e_fail "(b) bob's allowed IPs are '$got', expected '$want'"
[ "$(grep -c '^\[Peer\]' "$TMP/showconf")" -eq 2 ] || e2e_fail "(b) wg showconf has not 2 peers"
e2e_pass "(b)" "wg showconf gives the file's private key, port, peers, PSK, allowed IPs, endpoint, keepalive"

# ---- (c) the interface: MTU, addresses, link up, a route per allowed IP
link=$(ip -n "$NS_A" -o link show "$IF_A")
[[ $link == *" mtu $MTU "* ]] || e2e_fail "(c) $IF_A: MTU is not $MTU: $link"
[[ $link == *"<"*UP*">"* ]] || e2e_fail "(c) $IF_A is not up: $link"
addrs=$(ip -n "$NS_A" -o addr show dev "$IF_A")
for a in "$E2E_TUN4_A/24" "$E2E_TUN6_A/64"; do
	grep -qF " $a " <<<"$addrs" || e2e_fail "(c) $IF_A lacks address $a: $addrs"
done
routes4=$(ip -n "$NS_A" -4 route show dev "$IF_A")
routes6=$(ip -n "$NS_A" -6 route show dev "$IF_A")
for r in "$E2E_TUN4_B" "$EXTRA4" "10.241.7.3"; do
	grep -q "^$r " <<<"$routes4" || e2e_fail "(c) no route to $r through $IF_A: $routes4"
done
grep -q "^$E2E_TUN6_B " <<<"$routes6" || e2e_fail "(c) no route to $E2E_TUN6_B through $IF_A: $routes6"
e2e_pass "(c)" "MTU $MTU, both addresses, link up, a route per allowed IP (ip reads them back)"

# ---- (d) ping both ways, IPv4 and IPv6
ping_ok() {
	local try

	for try in 1 2 3 4 5; do
		[ "$try" -eq 1 ] || sleep 0.2
		in_ns "$1" ping -q -n -c 3 -W 2 -i 0.2 "$2" >"$TMP/ping.log" 2>&1 && return 0
	done
	pid_alive "$PID_A" || e2e_fail "(d) wgate has died"
	e2e_fail "(d) ping from $1 to $2: no reply ($(grep transmitted "$TMP/ping.log"))"
}
ping_ok "$NS_A" "$E2E_TUN4_B"
ping_ok "$NS_A" "$E2E_TUN6_B"
ping_ok "$NS_B" "$E2E_TUN4_A"
ping_ok "$NS_B" "$E2E_TUN6_A"
e2e_pass "(d)" "ping A->B and B->A over IPv4 and IPv6"

# ---- (e) the host name resolves late: retried, then set as carol's endpoint
wait_for "a failed resolution of $HOST in the log" 10 \
	grep -q "cannot resolve endpoint $HOST" "$TMP/$IF_A.log"
[ "$(in_ns "$NS_A" wg show "$IF_A" endpoints | awk -v k="$PUB_C" '$1 == k { print $2 }')" = "(none)" ] ||
	e2e_fail "(e) carol has an endpoint before her name resolves"
# In place (>>), so that the bind mount shows the new line.
echo "192.168.241.77 $HOST" >>"$HOSTS_DIR/hosts"
carol_ep() {
	[ "$(in_ns "$NS_A" wg show "$IF_A" endpoints | awk -v k="$PUB_C" '$1 == k { print $2 }')" = \
		"192.168.241.77:51822" ]
}
wait_for "carol's endpoint from the resolved name" 15 carol_ep
pid_alive "$PID_A" || e2e_fail "(e) wgate has died"
e2e_pass "(e)" "a host-name Endpoint that did not resolve was retried and set once it did"

# ---- (f) systemd: READY=1 once the file is applied; RELOADING=1, then READY=1, around a reload
wait_for "READY=1" 5 grep -q '^READY=1|' "$MSGS"
grep -m1 '^READY=1|' "$MSGS" | grep -q ": 2 peers," ||
	e2e_fail "(f) the first READY=1 came before the file's 2 peers: $(grep -m1 '^READY=1|' "$MSGS")"
kill -HUP "$PID_A"
reloaded() {
	grep -A1 '^RELOADING=1$' "$MSGS" | grep -q '^READY=1|'
}
wait_for "RELOADING=1 then READY=1 after SIGHUP" 5 reloaded
e2e_pass "(f)" "sd_notify: READY=1 with the file's peers; SIGHUP gives RELOADING=1 then READY=1"

# ---- (g) daemonizing with --config: the parent returns once the device is configured
ns_add "$NS_C"
sed -e "s/^ListenPort = .*/ListenPort = 51830/" -e '/^Endpoint = peer-c/d' "$TMP/a.conf" >"$TMP/c.conf"
e2e_own_iface "$IF_C"
rc=0
timeout 10 ip netns exec "$NS_C" "$WGATE" --config "$TMP/c.conf" "$IF_C" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "(g) wgate --config (daemonizing) exited $rc"
[ "$(in_ns "$NS_C" wg show "$IF_C" listen-port)" = 51830 ] || e2e_fail "(g) the daemon's port is not the file's"
[ "$(in_ns "$NS_C" wg show "$IF_C" peers | wc -l)" -eq 2 ] || e2e_fail "(g) the daemon has not the file's 2 peers"
grep -qF " $E2E_TUN4_A/24 " <<<"$(ip -n "$NS_C" -o addr show dev "$IF_C")" || e2e_fail "(g) the daemon's interface lacks its address"
e2e_pass "(g)" "without -f: configured from the file when the parent returns"

stop_pid "$PID_A" TERM 5 || e2e_fail "wgate outlived SIGTERM by 5 s"
[ "$STOP_STATUS" -eq 0 ] || e2e_fail "wgate exited $STOP_STATUS on SIGTERM"
echo "config_file: all checks passed ($(e2e_elapsed_ms) ms)"
