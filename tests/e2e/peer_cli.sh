#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `wgate peer add|show|list|remove` on a temporary config: the file edited atomically
# (mode 0600 and owner kept), the next free address, the client config and its QR
# codes (PNG and terminal, decoded by zbarimg), every error's exit status and line,
# concurrent adds; then, live in network namespaces, a gateway started with --config
# that takes a second client without disturbing the first and cuts a removed one off.
#   peer_cli.sh WGATE
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WGATE=${1:?usage: peer_cli.sh WGATE}
e2e_require_root wg wg-quick ip ping zbarimg wireguard-go
e2e_require_impl "$WGATE"
e2e_init peer_cli

# ping_within NS ADDR SECONDS: 0 once a ping is answered, 1 after SECONDS (a deadline,
# since each try may take its whole -W second).
ping_within() {
	local end=$((SECONDS + $3))

	until in_ns "$1" ping -c1 -W1 "$2" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$end" ] || return 1
	done
}


D=$E2E_TMP/etc
CONF=$D/wg0.conf
mkdir -m 0700 "$D"
wg_keys gw
wg_keys hand

# write_conf FILE ADDRESS [EXTRA LINE]: a gateway config with one hand-written peer
# holding 10.77.0.2/32 and 10.77.0.4/31 (so .4 and .5 are taken too).
write_conf() {
	cat >"$1" <<EOF
[Interface]
PrivateKey = $(cat "$E2E_TMP/gw.key")
ListenPort = 51820
Address = $2
${3:-}

[Peer]
PublicKey = $(cat "$E2E_TMP/hand.pub")
AllowedIPs = 10.77.0.2/32, 10.77.0.4/31
EOF
	chmod 0600 "$1"
}

peer() {
	"$WGATE" peer "$@"
}

# expect_fail WHAT PATTERN COMMAND...: exit status 1, one stderr line matching PATTERN,
# and the config file unchanged.
expect_fail() {
	local what=$1 pattern=$2 rc=0

	shift 2
	cp "$CONF" "$E2E_TMP/before"
	"$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	[ "$rc" -eq 1 ] || e2e_fail "$what: exit status $rc, not 1 ($(cat "$E2E_TMP/err"))"
	grep -qE "$pattern" "$E2E_TMP/err" || e2e_fail "$what: stderr '$(cat "$E2E_TMP/err")' lacks /$pattern/"
	[ ! -s "$E2E_TMP/out" ] || e2e_fail "$what: printed on stdout: $(cat "$E2E_TMP/out")"
	cmp -s "$CONF" "$E2E_TMP/before" || e2e_fail "$what: the config file changed"
}

# field FILE KEY: the value of "KEY = value" in a client config.
field() {
	sed -n "s/^$2 = //p" "$1"
}

# qr_text_to_pbm: the UTF-8 half-block QR code on stdin as a PBM image (4 px a module).
qr_text_to_pbm() {
	LC_ALL=C awk -v S=4 '
	index($0, "\342\226") { rows[n++] = $0 }
	END {
		w = 0
		for (i = 0; i < n; i++) {
			line = rows[i]; m = 0
			while (length(line)) {
				if (substr(line, 1, 1) == " ") { c = " "; line = substr(line, 2) }
				else { c = substr(line, 1, 3); line = substr(line, 4) }
				top[i, m] = (c == "\342\226\210" || c == "\342\226\200") ? 0 : 1
				bot[i, m] = (c == "\342\226\210" || c == "\342\226\204") ? 0 : 1
				m++
			}
			if (m > w) w = m
		}
		printf "P1\n%d %d\n", w * S, 2 * n * S
		for (i = 0; i < n; i++) for (h = 0; h < 2; h++) for (k = 0; k < S; k++) {
			s = ""
			for (x = 0; x < w; x++) { v = h ? bot[i, x] : top[i, x]; for (j = 0; j < S; j++) s = s v " " }
			print s
		}
	}'
}

write_conf "$CONF" "10.77.0.1/24, fd00:77::1/64" "# Endpoint = 192.0.2.1"
chown nobody:nogroup "$CONF"
export WGATE_CONFIG=$CONF

# 1. add: next free address (.2 and .4/31 are the hand-written peer's, .1 the gateway's).
peer add alice >"$E2E_TMP/alice.conf" 2>"$E2E_TMP/err"
[ "$(field "$E2E_TMP/alice.conf" Address)" = "10.77.0.3/32, fd00:77::3/128" ] ||
	e2e_fail "alice's Address is '$(field "$E2E_TMP/alice.conf" Address)', not .3 and ::3"
peer add bob >"$E2E_TMP/bob.conf" 2>/dev/null
[ "$(field "$E2E_TMP/bob.conf" Address)" = "10.77.0.6/32, fd00:77::6/128" ] ||
	e2e_fail "bob's Address is '$(field "$E2E_TMP/bob.conf" Address)', not .6 (.4/31 taken)"
[ "$(stat -c '%a %U:%G' "$CONF")" = "600 nobody:nogroup" ] ||
	e2e_fail "config is $(stat -c '%a %U:%G' "$CONF") after add, not 600 nobody:nogroup"
[ "$(stat -c '%a' "$D/clients" "$D/clients/wg0" "$D/clients/wg0/alice.conf" | tr '\n' ' ')" = "700 700 600 " ] ||
	e2e_fail "client directories/file modes: $(stat -c '%n %a' "$D/clients" "$D/clients/wg0" "$D/clients/wg0/alice.conf")"
cmp -s "$D/clients/wg0/alice.conf" "$E2E_TMP/alice.conf" || e2e_fail "the client file differs from the printed config"
e2e_pass add "next free address .3 then .6 (skipping the gateway, .2 and .4/31); mode 600 and owner kept"

# 2. The client config matches the gateway's file and keys.
alice_pub=$(field "$E2E_TMP/alice.conf" PrivateKey | wg pubkey)
grep -qx "PublicKey = $alice_pub" "$CONF" || e2e_fail "alice's public key is not in the config"
[ "$(field "$E2E_TMP/alice.conf" PublicKey)" = "$(cat "$E2E_TMP/gw.pub")" ] || e2e_fail "client's PublicKey is not the gateway's"
psk=$(field "$E2E_TMP/alice.conf" PresharedKey)
grep -qx "PresharedKey = $psk" "$CONF" || e2e_fail "client's PresharedKey is not in the config"
[ "$(field "$E2E_TMP/alice.conf" AllowedIPs)" = "10.77.0.0/24, fd00:77::/64" ] || e2e_fail "AllowedIPs: $(field "$E2E_TMP/alice.conf" AllowedIPs)"
[ "$(field "$E2E_TMP/alice.conf" Endpoint)" = "192.0.2.1:51820" ] || e2e_fail "Endpoint: $(field "$E2E_TMP/alice.conf" Endpoint)"
[ "$(field "$E2E_TMP/alice.conf" PersistentKeepalive)" = 25 ] || e2e_fail "PersistentKeepalive is not 25"
grep -qx "# Name = alice" "$CONF" || e2e_fail "no '# Name = alice' line"
e2e_pass keys "client: own key in the config, the gateway's key, same PSK, masked networks, endpoint from the comment"

# 3. list
peer list >"$E2E_TMP/list"
[ "$(wc -l <"$E2E_TMP/list")" -eq 3 ] || e2e_fail "list: $(cat "$E2E_TMP/list")"
grep -qxF -- "$(printf -- '-\t%s\t10.77.0.2/32,10.77.0.4/31' "$(cat "$E2E_TMP/hand.pub")")" "$E2E_TMP/list" ||
	e2e_fail "list lacks the unnamed peer: $(cat "$E2E_TMP/list")"
grep -qxF "$(printf 'alice\t%s\t10.77.0.3/32,fd00:77::3/128' "$alice_pub")" "$E2E_TMP/list" ||
	e2e_fail "list lacks alice: $(cat "$E2E_TMP/list")"
e2e_pass list "one line per peer: name (or -), public key, allowed IPs"

# 4. Overrides: --endpoint, --allowed-ips, --address.
peer add carol --endpoint '[fd00::1]' --allowed-ips '0.0.0.0/0, ::/0' >"$E2E_TMP/carol.conf" 2>/dev/null
[ "$(field "$E2E_TMP/carol.conf" Endpoint)" = "[fd00::1]:51820" ] || e2e_fail "carol's Endpoint: $(field "$E2E_TMP/carol.conf" Endpoint)"
[ "$(field "$E2E_TMP/carol.conf" AllowedIPs)" = "0.0.0.0/0, ::/0" ] || e2e_fail "carol's AllowedIPs"
peer add dave --address 10.77.0.100 --endpoint gw.example.net:4000 >"$E2E_TMP/dave.conf" 2>/dev/null
[ "$(field "$E2E_TMP/dave.conf" Address)" = "10.77.0.100/32" ] || e2e_fail "dave's Address: $(field "$E2E_TMP/dave.conf" Address)"
[ "$(field "$E2E_TMP/dave.conf" Endpoint)" = "gw.example.net:4000" ] || e2e_fail "dave's Endpoint"
grep -qx "AllowedIPs = 10.77.0.100/32" "$CONF" || e2e_fail "dave's AllowedIPs in the config"
e2e_pass opts "--endpoint (IPv6 bracketed, port from ListenPort), --allowed-ips, --address"

# 5. Errors: one line each, exit 1, the file untouched.
expect_fail "bad name" "not a valid name" peer add 'bad/name'
expect_fail "dot name" "not a valid name" peer add '.hidden'
expect_fail "long name" "not a valid name" peer add "$(printf 'x%.0s' $(seq 64))"
expect_fail "duplicate name" "already in" peer add alice
expect_fail "taken --address" "10.77.0.3 is taken" peer add erin --address 10.77.0.3
expect_fail "gateway's --address" "is taken" peer add erin --address fd00:77::1
expect_fail "bad --allowed-ips" "'10.0.0.300' is not an IPv4" peer add erin --allowed-ips '10.0.0.0/8,10.0.0.300'
expect_fail "bad --endpoint" "is not HOST:PORT" peer add erin --endpoint 'a b:1'
expect_fail "bad --endpoint port" "not a number from 1 to 65535" peer add erin --endpoint 'gw:70000'
expect_fail "unknown name on remove" "no peer named 'zed'" peer remove zed
expect_fail "missing config" "no such file" peer add erin --config "$D/nope.conf"
expect_fail "missing config (remove)" "no such file" peer remove alice --config "$D/nope.conf"
expect_fail "missing directory" "no such file" peer add erin --config "$D/none/wg0.conf"
expect_fail "missing config (list)" "no such file" peer list --config "$D/nope.conf"
# The file's owner without its read bit (root would read it anyway).
chmod 0000 "$CONF"
expect_fail "unreadable config" "cannot read .*wg0.conf: Permission denied" \
	setpriv --reuid=nobody --regid=nogroup --clear-groups "$WGATE" peer list
chmod 0600 "$CONF"
cp "$CONF" "$E2E_TMP/keep" && CONF=$D/noep.conf
write_conf "$CONF" "10.78.0.1/24"
expect_fail "no endpoint" "no endpoint.*--endpoint HOST:PORT" peer add erin --config "$CONF"
write_conf "$CONF" "10.78.0.1/24" "Bogus = 1"
expect_fail "bad config" "noep.conf:5: " peer add erin --config "$CONF"
CONF=$D/full.conf
write_conf "$CONF" "10.79.0.1/30" "# Endpoint = 192.0.2.1:51820"
peer add only --config "$CONF" >"$E2E_TMP/only.conf" 2>/dev/null
[ "$(field "$E2E_TMP/only.conf" Address)" = "10.79.0.2/32" ] || e2e_fail "/30: first client is not .2"
expect_fail "full /30" "no free address left in 10.79.0.0/30" peer add more --config "$CONF"
CONF=$D/wg0.conf
cmp -s "$CONF" "$E2E_TMP/keep" || e2e_fail "a failed command elsewhere changed wg0.conf"
rc=0
peer >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || e2e_fail "'wgate peer' without a command exits $rc, not 2"
e2e_pass errors "bad/duplicate name, taken address, unknown name, missing/unreadable/broken file, no endpoint, full /30"

# 6. remove: the whole section and the client file; the freed address is reused.
peer remove bob 2>/dev/null
! grep -q "bob" "$CONF" || e2e_fail "bob's section is still in the config"
[ ! -e "$D/clients/wg0/bob.conf" ] || e2e_fail "bob's client file is still there"
grep -qx "# Name = alice" "$CONF" && grep -qx "# Name = carol" "$CONF" || e2e_fail "remove took other peers"
[ "$(stat -c '%a %U:%G' "$CONF")" = "600 nobody:nogroup" ] || e2e_fail "config is $(stat -c '%a %U:%G' "$CONF") after remove"
[ "$(peer list | wc -l)" -eq 4 ] || e2e_fail "list after remove: $(peer list)"
[ -n "$(tail -n1 "$CONF")" ] || e2e_fail "remove left a blank line at the end of the file"
expect_fail "remove twice" "no peer named 'bob'" peer remove bob
peer add erin >"$E2E_TMP/erin.conf" 2>/dev/null
[ "$(field "$E2E_TMP/erin.conf" Address)" = "10.77.0.6/32, fd00:77::6/128" ] || e2e_fail "the freed .6 is not reused"
# Comments: those right above a header, set apart by a blank line, go with that section.
k1=$(wg genkey | wg pubkey) k2=$(wg genkey | wg pubkey) k3=$(wg genkey | wg pubkey)
printf '[Interface]\nPrivateKey = %s\nAddress = 10.5.0.1/24\n# Endpoint = x:1\n[Peer]\n# Name = a\nPublicKey = %s\nAllowedIPs = 10.5.0.2/32\n\n# about b\n  [Peer]\n# Name = b\nPublicKey = %s\nAllowedIPs = 10.5.0.3/32\n# end of b\n[Peer]\n# Name = c\nPublicKey = %s\nAllowedIPs = 10.5.0.4/32' \
	"$(cat "$E2E_TMP/gw.key")" "$k1" "$k2" "$k3" >"$D/cm.conf"
peer remove b --config "$D/cm.conf" 2>/dev/null
printf '[Interface]\nPrivateKey = %s\nAddress = 10.5.0.1/24\n# Endpoint = x:1\n[Peer]\n# Name = a\nPublicKey = %s\nAllowedIPs = 10.5.0.2/32\n\n[Peer]\n# Name = c\nPublicKey = %s\nAllowedIPs = 10.5.0.4/32' \
	"$(cat "$E2E_TMP/gw.key")" "$k1" "$k3" >"$E2E_TMP/cm.expect"
cmp -s "$D/cm.conf" "$E2E_TMP/cm.expect" || e2e_fail "remove b: $(diff "$E2E_TMP/cm.expect" "$D/cm.conf")"
peer remove c --config "$D/cm.conf" 2>/dev/null
peer remove a --config "$D/cm.conf" 2>/dev/null
printf '[Interface]\nPrivateKey = %s\nAddress = 10.5.0.1/24\n# Endpoint = x:1\n' "$(cat "$E2E_TMP/gw.key")" >"$E2E_TMP/cm.expect"
cmp -s "$D/cm.conf" "$E2E_TMP/cm.expect" || e2e_fail "remove c, a: $(diff "$E2E_TMP/cm.expect" "$D/cm.conf")"
rm "$D/cm.conf" "$D/.cm.conf.lock"
e2e_pass remove "section (and its comments) and client file gone, other peers and comments kept, .6 reused, unknown name refused"

# 7. QR codes: the PNG and the terminal drawing decode to exactly the printed config.
peer add frank --qr --qr-png "$E2E_TMP/frank.png" >"$E2E_TMP/frank.out" 2>/dev/null
# The config holds one blank line; the second one comes before the QR code.
awk 'NR > 1 && /^$/ { n++ } n < 2' "$E2E_TMP/frank.out" >"$E2E_TMP/frank.conf"
cmp -s "$E2E_TMP/frank.conf" "$D/clients/wg0/frank.conf" || e2e_fail "the printed config differs from the client file"
# zbarimg ends each symbol with a newline of its own.
cmp -s <(zbarimg --raw -q "$E2E_TMP/frank.png" 2>/dev/null) <(cat "$E2E_TMP/frank.conf"; echo) ||
	e2e_fail "the PNG decodes to '$(zbarimg --raw -q "$E2E_TMP/frank.png" 2>&1)'"
[ "$(stat -c %a "$E2E_TMP/frank.png")" = 600 ] || e2e_fail "the PNG (it holds a key) is not mode 600"
qr_text_to_pbm <"$E2E_TMP/frank.out" >"$E2E_TMP/frank.pbm"
cmp -s <(zbarimg --raw -q "$E2E_TMP/frank.pbm" 2>/dev/null) <(cat "$E2E_TMP/frank.conf"; echo) ||
	e2e_fail "the terminal QR code does not decode to the config"
peer show frank --qr >"$E2E_TMP/frank.show"
cmp -s "$E2E_TMP/frank.show" "$E2E_TMP/frank.out" || e2e_fail "peer show prints something else than add did"
e2e_pass qr "PNG and terminal half blocks decode (zbarimg) to exactly the printed config; show repeats it"

# 8. Concurrent adds: serialised by the lock, none lost, addresses distinct.
pids=()
for i in 1 2 3 4 5 6; do
	peer add "par$i" >"$E2E_TMP/par$i.conf" 2>/dev/null &
	pids+=($!)
done
for p in "${pids[@]}"; do
	wait "$p" || e2e_fail "a concurrent add failed"
done
[ "$(peer list | grep -c '^par')" -eq 6 ] || e2e_fail "concurrent adds lost peers: $(peer list)"
[ "$(cat "$E2E_TMP"/par*.conf | grep '^Address' | sort -u | wc -l)" -eq 6 ] || e2e_fail "concurrent adds shared an address"
ls -A "$D" | grep -qvE '^(wg0.conf|noep.conf|full.conf|clients|\.(wg0|noep|full)\.conf\.lock)$' &&
	e2e_fail "stray files in the directory: $(ls -A "$D")"
e2e_pass lock "6 concurrent adds: all in, distinct addresses, no temporary file left"

# 9. Live, in network namespaces: a gateway started with --config takes a second
#    client without a restart, keeps the first one's session, and cuts a removed one off.
two_sides pc
NS_C=wgt$$c
ns_add "$NS_C"
vc=wgtvc$$ vd=wgtvd$$
ip link add "${vc:0:15}" netns "$NS_A" type veth peer name "${vd:0:15}" netns "$NS_C"
ip -n "$NS_A" addr add 192.168.242.1/24 dev "${vc:0:15}"
ip -n "$NS_C" addr add 192.168.242.2/24 dev "${vd:0:15}"
ip -n "$NS_A" link set "${vc:0:15}" up
ip -n "$NS_C" link set "${vd:0:15}" up
IF_C=pcc$$
IF_C=${IF_C:0:15}

LIVE=$E2E_TMP/live
mkdir -m 0700 "$LIVE"
CONF=$LIVE/$IF_A.conf
cat >"$CONF" <<EOF
[Interface]
# Endpoint = $E2E_UNDER4_A:51820
PrivateKey = $(cat "$E2E_TMP/gw.key")
ListenPort = 51820
Address = 10.77.0.1/24, fd00:77::1/64
EOF
chmod 0600 "$CONF"
export WGATE_CONFIG=$CONF
peer add c1 >"$E2E_TMP/c1.conf" 2>/dev/null
start_impl "$NS_A" "$WGATE" "$IF_A" --config "$CONF"
GW_PID=$IMPL_PID

# client NS IFACE CONF: wireguard-go configured from a printed client config as wg-quick would.
client() {
	local ns=$1 ifc=$2 conf=$3 a

	start_impl "$ns" wireguard-go "$ifc"
	wg-quick strip "$conf" >"$conf.wg"
	in_ns "$ns" wg setconf "$ifc" "$conf.wg"
	for a in $(field "$conf" Address | tr -d ,); do
		if [[ $a == *:* ]]; then
			in_ns "$ns" ip address add "$a" dev "$ifc" nodad
		else
			in_ns "$ns" ip address add "$a" dev "$ifc"
		fi
	done
	in_ns "$ns" ip link set "$ifc" up
	for a in $(field "$conf" AllowedIPs | tr -d ,); do
		in_ns "$ns" ip route add "$a" dev "$ifc"
	done
}
client "$NS_B" "$IF_B" "$E2E_TMP/c1.conf"
ping_within "$NS_B" 10.77.0.1 20 || e2e_fail "timed out after 20 s waiting for c1 to ping the gateway"
in_ns "$NS_B" ping -c1 -W2 fd00:77::1 >/dev/null || e2e_fail "c1 cannot ping fd00:77::1"
c1_pub=$(field "$E2E_TMP/c1.conf" PrivateKey | wg pubkey)
hs_of() {
	in_ns "$NS_A" wg show "$IF_A" latest-handshakes | awk -v k="$1" '$1 == k { print $2 }'
}
hs1=$(hs_of "$c1_pub")
[ -n "$hs1" ] && [ "$hs1" != 0 ] || e2e_fail "no handshake of c1 on the gateway"
e2e_pass live1 "gateway from --config; c1 from its printed config pings over IPv4 and IPv6"

# c2 added while c1 pings (100 pings, 0.1 s apart).
E2E_CMD_TIMEOUT=60 in_ns "$NS_B" ping -n -i 0.1 -c 100 -W 1 10.77.0.1 >"$E2E_TMP/ping1" 2>&1 &
ping_pid=$!
peer add c2 --endpoint 192.168.242.1:51820 >"$E2E_TMP/c2.conf" 2>/dev/null
c2_pub=$(field "$E2E_TMP/c2.conf" PrivateKey | wg pubkey)
has_peer() {
	in_ns "$NS_A" wg show "$IF_A" peers | grep -qxF "$1"
}
wait_for "the gateway to reload and know c2" 10 has_peer "$c2_pub"
client "$NS_C" "$IF_C" "$E2E_TMP/c2.conf"
ping_within "$NS_C" 10.77.0.1 20 || e2e_fail "timed out after 20 s waiting for c2 to ping the gateway"
pid_alive "$ping_pid" || e2e_fail "c1's ping ended before c2 connected (too slow to test 'meanwhile')"
wait "$ping_pid" || e2e_fail "c1's ping lost packets during the reload: $(tail -n2 "$E2E_TMP/ping1")"
grep -q ' 100 received, 0% packet loss' "$E2E_TMP/ping1" || e2e_fail "c1's ping: $(tail -n2 "$E2E_TMP/ping1")"
[ "$(hs_of "$c1_pub")" = "$hs1" ] || e2e_fail "c1's latest handshake changed ($hs1 -> $(hs_of "$c1_pub")): session not kept"
pid_alive "$GW_PID" || e2e_fail "the gateway exited"
e2e_pass live2 "peer add c2: c2 connects without a restart; c1 kept its handshake and lost 0 of 100 pings"

peer remove c2 2>/dev/null
lacks_peer() {
	! has_peer "$1"
}
wait_until 10 lacks_peer "$c2_pub" ||
	e2e_fail "the gateway still has c2 after peer remove"
! in_ns "$NS_C" ping -c3 -i0.2 -W1 10.77.0.1 >/dev/null 2>&1 || e2e_fail "c2 still pings after peer remove"
in_ns "$NS_B" ping -c1 -W2 10.77.0.1 >/dev/null || e2e_fail "c1 lost the tunnel when c2 was removed"
e2e_pass live3 "peer remove c2: c2's pings fail, c1 still pings"
