#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `wgate --check-config FILE` on a valid file and on broken ones, one fault each: the
# exit status (0 valid, 1 broken), the exact "FILE:LINE: problem" line on stderr, and
# no key (private, preshared or public, nor any 8-character piece of one) anywhere in
# the output. Needs neither root nor a network namespace.
#
# Usage: check_config.sh WGATE. Exits 0 when every check passed, 1 on the first failure.
# `A && B || e2e_fail` is meant: e2e_fail exits.
# shellcheck disable=SC2015
set -euo pipefail

WGATE=${1:-}
if [ -z "$WGATE" ] || [ $# -ne 1 ]; then
	echo "usage: $0 WGATE" >&2
	exit 2
fi

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

[ -x "$WGATE" ] || e2e_fail "'$WGATE' is not an executable file"
e2e_init check-config
DIR=$E2E_TMP

# Throwaway keys from `wg genkey` / `wg genpsk` / `wg pubkey`, fixed so that the test
# needs no wireguard-tools.
PRIV=0HUZ7QSkKQYMSeNvhvfgpR5QnWdpY3DCVEUZs/w6GlE=
PSK=qXSyOS1n7ZEWzOGn3xcG3gm7NBtbt0Xh7mLUZ0qZ0kI=
PUB1=0yPqPUoR5RVbTl/1YtOeS8pUwGq2lbxsVRRnvIUHXVg=
PUB2=bEL4EKMS1EMu7qIBkdmHK4Q/BeH7MIiFakiu0A8pUU0=
printf '%s\n' "$PRIV" >"$DIR/priv.key"
chmod 600 "$DIR/priv.key"

# Every 8-character piece of every key, for one grep -F per output.
for key in "$PRIV" "$PSK" "$PUB1" "$PUB2"; do
	for ((i = 0; i + 8 <= ${#key}; i++)); do
		printf '%s\n' "${key:i:8}"
	done
done >"$DIR/fragments"

# check_out FILE: no key and no piece of one in what wgate printed for FILE.
check_out() {
	! grep -qF -f "$DIR/fragments" "$1.out" "$1.err" ||
		e2e_fail "$(basename "$1"): the output quotes a key: $(cat "$1.out" "$1.err")"
}

# run FILE: wgate --check-config FILE; status in RC, output in FILE.out and FILE.err.
run() {
	RC=0
	timeout 10 "$WGATE" --check-config "$1" >"$1.out" 2>"$1.err" || RC=$?
	e2e_add_log "$(basename "$1")" "$1.err"
	[ "$RC" -ne 124 ] || e2e_fail "wgate --check-config $1 was still running after 10 s"
	check_out "$1"
}

# broken NAME LINE PROBLEM: FILE (the text on stdin, mode 0600) fails with exactly
# "FILE:LINE: PROBLEM" as its one error line, status 1 and nothing on stdout.
N_BROKEN=0
broken() {
	local f=$DIR/$1.conf want

	cat >"$f"
	chmod 600 "$f"
	run "$f"
	want="$f:$2: $3"
	[ "$RC" -eq 1 ] || e2e_fail "$1: exit status $RC, want 1 (stderr: $(cat "$f.err"))"
	[ ! -s "$f.out" ] || e2e_fail "$1: printed on stdout: $(cat "$f.out")"
	[ "$(cat "$f.err")" = "$want" ] ||
		e2e_fail "$1: stderr is '$(cat "$f.err")', want '$want'"
	N_BROKEN=$((N_BROKEN + 1))
}

# A valid file of every shape: comments, case, comma lists, repeated keys, v4 and v6,
# a key file, names, IPv6 and host-name endpoints; DNS gives its one warning.
cat >"$DIR/good.conf" <<EOF
# wg0
[Interface]
PrivateKeyFile = priv.key
listenport = 51820
FwMark = 0x20
Address = 10.0.0.1/24, fd00::1/64
Address = 10.0.1.1
MTU = 1420
Table = off
DNS = 10.0.0.53

[Peer]
# Name = alice
PublicKey = $PUB1
PresharedKey = $PSK
AllowedIPs = 10.0.0.2/32 , fd00::2/128
AllowedIPs = 192.168.10.0/24
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = 25

[PEER]
PublicKey = $PUB2
Endpoint = gw.example.com:51820   # resolved by the daemon, not here
EOF
chmod 600 "$DIR/good.conf"
run "$DIR/good.conf"
[ "$RC" -eq 0 ] || e2e_fail "good.conf: exit status $RC, want 0 (stderr: $(cat "$DIR/good.conf.err"))"
[ "$(cat "$DIR/good.conf.out")" = "$DIR/good.conf: ok (2 peers)" ] ||
	e2e_fail "good.conf: stdout is '$(cat "$DIR/good.conf.out")'"
[ "$(cat "$DIR/good.conf.err")" = "$DIR/good.conf:10: DNS is a wg-quick key; wgate does not run it" ] ||
	e2e_fail "good.conf: stderr is '$(cat "$DIR/good.conf.err")'"
e2e_pass 1 "a valid file: status 0, '$(basename "$DIR")/good.conf: ok (2 peers)', one DNS warning"

# A key written in a file others may read: valid, with wg-quick's warning.
sed 's|^PrivateKeyFile = priv.key|PrivateKey = '"$PRIV"'|' "$DIR/good.conf" >"$DIR/open.conf"
chmod 644 "$DIR/open.conf"
run "$DIR/open.conf"
[ "$RC" -eq 0 ] || e2e_fail "open.conf: exit status $RC, want 0"
grep -qxF "$DIR/open.conf:3: the file holds a key and is accessible by group or others (chmod 600)" \
	"$DIR/open.conf.err" || e2e_fail "open.conf: no mode warning: $(cat "$DIR/open.conf.err")"
e2e_pass 2 "a private key in a 0644 file: status 0 and a warning naming line 3"

broken unknown_section 4 "unknown section [Interfce] (only [Interface] and [Peer])" <<EOF
[Interface]
PrivateKey = $PRIV

[Interfce]
ListenPort = 1
EOF

broken outside_section 2 "key outside a section (the file starts with [Interface] or [Peer])" <<EOF
# no section yet
PrivateKey = $PRIV
[Interface]
EOF

broken unknown_key 3 "unknown key 'ListenPrt' in [Interface]" <<EOF
[Interface]
PrivateKey = $PRIV
ListenPrt = 51820
EOF

broken bad_base64 2 "PrivateKey: not a base64 key of 32 bytes (44 characters ending in '=')" <<EOF
[Interface]
PrivateKey = ${PRIV:0:20}!${PRIV:21}
EOF

broken key_and_keyfile 3 "PrivateKeyFile and PrivateKey both given (the other on line 2)" <<EOF
[Interface]
PrivateKey = $PRIV
PrivateKeyFile = priv.key
EOF

broken bad_listen_port 3 "ListenPort: not a number from 0 to 65535" <<EOF
[Interface]
PrivateKey = $PRIV
ListenPort = 65536
EOF

broken bad_address 4 "Address: entry 2: prefix length is not a number from 0 to 32" <<EOF
[Interface]
PrivateKey = $PRIV
Address = fd00::1/64
Address = 10.0.0.1/24, 10.0.0.2/33
EOF

broken bad_address_ip 3 "Address: entry 1: not an IPv4 address" <<EOF
[Interface]
PrivateKey = $PRIV
Address = 10.0.0.256/24
EOF

broken bad_mtu 3 "MTU: not a number from 68 to 65535" <<EOF
[Interface]
PrivateKey = $PRIV
MTU = 65536
EOF

broken mtu_ipv6 3 "MTU: below 1280, the minimum for IPv6 (an IPv6 Address is on line 4)" <<EOF
[Interface]
PrivateKey = $PRIV
MTU = 1200
Address = fd00::1/64
EOF

broken bad_table 3 "Table: not off, auto, main or a table number from 1 to 4294967295" <<EOF
[Interface]
PrivateKey = $PRIV
Table = of
EOF

broken endpoint_no_port 6 "Endpoint: missing ':port'" <<EOF
[Interface]
PrivateKey = $PRIV

[Peer]
PublicKey = $PUB1
Endpoint = 192.0.2.1
EOF

broken endpoint_v6_no_port 4 "Endpoint: missing ':port' after ']'" <<EOF
[Peer]
PublicKey = $PUB1
PresharedKey = $PSK
Endpoint = [2001:db8::1]
EOF

broken keepalive_range 4 "PersistentKeepalive: not off or a number of seconds from 0 to 65535" <<EOF
[Peer]
PublicKey = $PUB1
AllowedIPs = 10.0.0.2/32
PersistentKeepalive = 65536
EOF

broken duplicate_peer 9 "PublicKey: the peer on line 3 has the same key" <<EOF
[Peer]
# Name = alice
PublicKey = $PUB1
AllowedIPs = 10.0.0.2/32

[Peer]
# Name = alice again
AllowedIPs = 10.0.0.3/32
PublicKey = $PUB1
EOF

broken peer_without_key 5 "[Peer] without PublicKey" <<EOF
[Peer]
PublicKey = $PUB1
PresharedKey = $PSK

[Peer]
AllowedIPs = 10.0.0.3/32
EOF

chmod 644 "$DIR/priv.key"
broken keyfile_mode 2 "key file $DIR/priv.key is accessible by group or others (chmod 600)" <<EOF
[Interface]
PrivateKeyFile = priv.key
EOF
chmod 600 "$DIR/priv.key"

broken bad_name 3 "Name: quotes and backslashes are not allowed" <<EOF
[Peer]
PublicKey = $PUB1
# Name = "alice"
EOF

broken long_name 2 "Name: longer than 63 bytes" <<EOF
[Peer]
# Name = $PRIV$PSK
PublicKey = $PUB1
EOF

broken wrong_section 3 "ListenPort belongs in [Interface], not in [Peer]" <<EOF
[Peer]
PublicKey = $PUB1
ListenPort = 51820
EOF

broken pasted_key 3 "unknown key in [Interface] (not shown)" <<EOF
[Interface]
PrivateKey = $PRIV
$PSK
EOF

e2e_pass 3 "$N_BROKEN broken files: status 1, the one FILE:LINE error each, no key in any output"

# Several faults: every one reported, in line order.
cat >"$DIR/many.conf" <<EOF
[Interface]
PrivateKey = $PRIV
ListenPort = x
MTU = 9

[Peer]
Endpoint = host
EOF
run "$DIR/many.conf"
[ "$RC" -eq 1 ] || e2e_fail "many.conf: exit status $RC"
printf '%s\n' "$DIR/many.conf:3: ListenPort: not a number from 0 to 65535" \
	"$DIR/many.conf:4: MTU: not a number from 68 to 65535" \
	"$DIR/many.conf:7: Endpoint: missing ':port'" \
	"$DIR/many.conf:6: [Peer] without PublicKey" >"$DIR/many.want"
diff -u "$DIR/many.want" "$DIR/many.conf.err" || e2e_fail "many.conf: not every error reported"
e2e_pass 4 "a file with 4 faults: all 4 reported, status 1"

# No file, a directory, no argument.
run "$DIR/missing.conf"
[ "$RC" -eq 1 ] && [ "$(cat "$DIR/missing.conf.err")" = "$DIR/missing.conf: cannot open: No such file or directory" ] ||
	e2e_fail "missing.conf: status $RC, stderr '$(cat "$DIR/missing.conf.err")'"
RC=0
"$WGATE" --check-config >/dev/null 2>"$DIR/noarg.err" || RC=$?
[ "$RC" -eq 2 ] || e2e_fail "--check-config without FILE: status $RC, want 2"
RC=0
"$WGATE" --check-config "$DIR/good.conf" wg0 >/dev/null 2>"$DIR/extra.err" || RC=$?
[ "$RC" -eq 2 ] || e2e_fail "--check-config FILE INTERFACE: status $RC, want 2"
e2e_pass 5 "a missing file: status 1 and its cause; bad usage: status 2"

# Root is not needed: as nobody, when this runs as root (a file without keys, in a
# directory nobody may only traverse).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	printf '[Interface]\nListenPort = 51820\n\n[Peer]\nPublicKey = %s\n' "$PUB1" >"$DIR/public.conf"
	chmod 644 "$DIR/public.conf"
	chmod 711 "$DIR"
	RC=0
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$WGATE" --check-config "$DIR/public.conf" 2>&1) || RC=$?
	chmod 700 "$DIR"
	[ "$RC" -eq 0 ] && [ "$out" = "$DIR/public.conf: ok (1 peer)" ] ||
		e2e_fail "as nobody: status $RC, output '$out'"
	e2e_pass 6 "as nobody: status 0, '$(basename "$DIR")/public.conf: ok (1 peer)'"
fi
