#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Least privilege and audit events of wgate, in network namespaces:
#  (p1) started as root, the running daemon holds only CAP_NET_ADMIN (effective,
#       permitted, bounding; every thread) and NoNewPrivs;
#  (p2) with --user nobody it runs as nobody with the same capabilities, and UAPI
#       changes that need CAP_NET_ADMIN (fwmark, listen port) still work; a tunnel
#       to a second wgate passes ping;
#  (a1) the audit log of both sides: "session established" with the peer's label
#       and endpoint (text on one side, parseable JSON fields on the other), an
#       endpoint change when the peer moves, "session closed" at link down; no
#       private or preshared key anywhere in the logs;
#  (p3) a copy of the binary with the file capability cap_net_admin+ep, started as
#       nobody (no root at all) with a --uapi-dir it can write, comes up, is
#       configured through its socket and passes ping;
#  (p4) the same without a writable socket directory fails with one line naming it.
# /dev/net/tun is 0600 on Debian: (p3) and (p4) make it 0666 for their duration
# (an unprivileged user must open it; a container gives the device so) and the
# cleanup restores the mode it had.
#
# Usage: privs.sh WGATE. Exits 0 when every check passed, 1 on the first failure,
# 77 (skip) when not root or a tool is missing.
# shellcheck disable=SC2015
set -euo pipefail

WGATE=${1:-}
if [ -z "$WGATE" ] || [ $# -ne 1 ]; then
	echo "usage: $0 WGATE" >&2
	exit 2
fi

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_require_root wg ip ping python3 setcap setpriv
e2e_require_impl "$WGATE"
id nobody >/dev/null 2>&1 || e2e_skip "no user 'nobody'"
e2e_init privs

TMP=$E2E_TMP
NOBODY_UID=$(id -u nobody)
NOBODY_GID=$(id -g nobody)
CAP_NET_ADMIN_MASK=$((1 << 12))
TUN_MODE=
BINDIR=
# Before lib.sh's cleanup, which must see the script's own exit status.
privs_cleanup() {
	local rc=$?

	[ -z "$TUN_MODE" ] || chmod "$TUN_MODE" /dev/net/tun
	[ -z "$BINDIR" ] || rm -rf "$BINDIR"
	(exit "$rc")
	e2e_cleanup
}
trap privs_cleanup EXIT

# cap_names HEX: the capability names of a /proc status mask, for messages.
cap_names() {
	local m=$((16#$1)) i out=
	local names=(chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap
		linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner
		sys_module sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice
		sys_resource sys_time sys_tty_config mknod lease audit_write audit_control setfcap
		mac_override mac_admin syslog wake_alarm block_suspend audit_read perfmon bpf
		checkpoint_restore)

	for ((i = 0; i < 64; i++)); do
		((m >> i & 1)) || continue
		out+="${out:+,}${names[i]:-cap$i}"
	done
	echo "${out:-none}"
}

# status_field PID TASK FIELD: a field of /proc/PID/task/TASK/status.
status_field() {
	awk -v f="$3:" '$1 == f { print $2; exit }' "/proc/$1/task/$2/status"
}

# check_caps CHECK PID BOUNDING: every thread of PID has exactly CAP_NET_ADMIN effective and
# permitted, nothing inheritable or ambient, NoNewPrivs 1; and, when BOUNDING is 1, a
# bounding set of CAP_NET_ADMIN alone.
check_caps() {
	local check=$1 pid=$2 bounding=$3 task n=0 v field

	for task in $(ls "/proc/$pid/task"); do
		n=$((n + 1))
		for field in CapEff CapPrm; do
			v=$(status_field "$pid" "$task" $field)
			[ $((16#$v)) -eq $CAP_NET_ADMIN_MASK ] ||
				e2e_fail "$check thread $task: $field $v ($(cap_names "$v")), expected net_admin only"
		done
		for field in CapInh CapAmb; do
			v=$(status_field "$pid" "$task" $field)
			[ $((16#$v)) -eq 0 ] || e2e_fail "$check thread $task: $field $v ($(cap_names "$v")), expected none"
		done
		if [ "$bounding" = 1 ]; then
			v=$(status_field "$pid" "$task" CapBnd)
			[ $((16#$v)) -eq $CAP_NET_ADMIN_MASK ] ||
				e2e_fail "$check thread $task: CapBnd $v ($(cap_names "$v")), expected net_admin only"
		fi
		[ "$(status_field "$pid" "$task" NoNewPrivs)" = 1 ] || e2e_fail "$check thread $task: NoNewPrivs is not 1"
	done
	[ "$n" -ge 2 ] || e2e_fail "$check only $n thread(s) in $pid: the workers are not running"
	CHECKED_THREADS=$n
}

# check_ids CHECK PID UID GID: real, effective, saved and filesystem ids.
check_ids() {
	local uids gids

	uids=$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' "/proc/$2/status")
	gids=$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' "/proc/$2/status")
	[ "$uids" = "$3 $3 $3 $3" ] || e2e_fail "$1 Uid line is '$uids', expected $3 four times"
	[ "$gids" = "$4 $4 $4 $4" ] || e2e_fail "$1 Gid line is '$gids', expected $4 four times"
}

two_sides pv
PORT_A=51860
PORT_B=51861
wg_keys a
wg_keys b
wg genpsk >"$TMP/psk"
PUB_A=$(cat "$TMP/a.pub")
PUB_B=$(cat "$TMP/b.pub")

# ---- (p1) root start: only CAP_NET_ADMIN, no new privileges
start_impl "$NS_B" "$WGATE" "$IF_B" --tun-threads 2 --log-format json
PID_B=$IMPL_PID
check_caps "(p1)" "$PID_B" 1
check_ids "(p1)" "$PID_B" 0 0
e2e_pass "(p1)" "root start: $CHECKED_THREADS threads with CapEff=CapPrm=CapBnd=net_admin only, no inheritable/ambient, NoNewPrivs 1"

# ---- (p2) --user nobody: ids switched, capability kept and usable
start_impl "$NS_A" "$WGATE" "$IF_A" --tun-threads 2 --user nobody
PID_A=$IMPL_PID
check_caps "(p2)" "$PID_A" 1
check_ids "(p2)" "$PID_A" "$NOBODY_UID" "$NOBODY_GID"
groups=$(awk '$1 == "Groups:" { $1 = ""; print }' "/proc/$PID_A/status" | xargs)
[ -z "$groups" ] || [ "$groups" = "$NOBODY_GID" ] ||
	e2e_fail "(p2) supplementary groups '$groups': expected nobody's own only"
# SO_MARK and the forced socket buffers of a rebind need CAP_NET_ADMIN.
in_ns "$NS_A" wg set "$IF_A" private-key "$TMP/a.key" listen-port "$PORT_A" fwmark 0x42 \
	peer "$PUB_B" preshared-key "$TMP/psk" endpoint "$E2E_UNDER4_B:$PORT_B" \
	allowed-ips "$E2E_TUN4_B/32,$E2E_TUN6_B/128" ||
	e2e_fail "(p2) wg set (listen-port, fwmark) refused by the daemon running as nobody"
[ "$(in_ns "$NS_A" wg show "$IF_A" listen-port)" = "$PORT_A" ] || e2e_fail "(p2) listen port not changed"
[ "$(in_ns "$NS_A" wg show "$IF_A" fwmark)" = 0x42 ] || e2e_fail "(p2) fwmark not set"
in_ns "$NS_B" wg set "$IF_B" private-key "$TMP/b.key" listen-port "$PORT_B" \
	peer "$PUB_A" preshared-key "$TMP/psk" endpoint "$E2E_UNDER4_A:$PORT_A" \
	allowed-ips "$E2E_TUN4_A/32,$E2E_TUN6_A/128"
tun_addr "$NS_A" "$IF_A" "$E2E_TUN4_A/24" "$E2E_TUN6_A/64"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" "$E2E_TUN6_B/64"
wait_for "ping from A (nobody) to B" 15 in_ns "$NS_A" ping -c 1 -W 1 "$E2E_TUN4_B"
in_ns "$NS_B" ping -c 2 -W 2 "$E2E_TUN6_A" >/dev/null || e2e_fail "(p2) no ping6 from B to A"
check_caps "(p2)" "$PID_A" 1
e2e_pass "(p2)" "--user nobody: uid/gid $NOBODY_UID/$NOBODY_GID, net_admin only; wg set listen-port + fwmark work; ping both ways"

# ---- (a1) audit events
LOG_A=$TMP/$IF_A.log
LOG_B=$TMP/$IF_B.log
label_a=${PUB_A:0:8}...
label_b=${PUB_B:0:8}...
has_established_text() {
	grep -F "peer $label_b ($E2E_UNDER4_B:$PORT_B): session established" "$LOG_A"
}
wait_for "A's 'session established' line" 10 has_established_text
# B logs JSON: the fields are keys of their own.
json_event() {
	python3 - "$LOG_B" "$@" <<'PY'
import json, sys
log, event, want = sys.argv[1], sys.argv[2], dict(a.split("=", 1) for a in sys.argv[3:])
for line in open(log, errors="replace"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    rec = json.loads(line)
    if rec.get("event") == event and all(rec.get(k) == v for k, v in want.items()):
        print(line)
        sys.exit(0)
sys.exit(1)
PY
}
wait_for "B's JSON session_established event" 10 json_event session_established \
	"peer=$label_a" "endpoint=$E2E_UNDER4_A:$PORT_A" "device=$IF_B"
# Every JSON line must parse, the audit ones included.
python3 -c 'import json, sys
for l in open(sys.argv[1]):
    if l.startswith("{"): json.loads(l)' "$LOG_B" || e2e_fail "(a1) a line of B's JSON log does not parse"
# A moves: B must log the endpoint change (the worker roams, the control thread logs).
NEW_PORT_A=51862
in_ns "$NS_A" wg set "$IF_A" listen-port "$NEW_PORT_A"
in_ns "$NS_A" ping -c 2 -W 2 "$E2E_TUN4_B" >/dev/null || e2e_fail "(a1) no ping after A changed its port"
wait_for "B's endpoint_changed event" 10 json_event endpoint_changed "peer=$label_a" \
	"endpoint=$E2E_UNDER4_A:$NEW_PORT_A" "previous_endpoint=$E2E_UNDER4_A:$PORT_A"
# Link down closes the session (a disconnect in the audit trail).
ip -n "$NS_A" link set "$IF_A" down
has_closed_text() {
	grep -F "peer $label_b ($E2E_UNDER4_B:$PORT_B): session closed (link down)" "$LOG_A"
}
wait_for "A's 'session closed (link down)' line" 5 has_closed_text
ip -n "$NS_A" link set "$IF_A" up
for key in "$TMP/a.key" "$TMP/b.key" "$TMP/psk"; do
	k=$(cat "$key")
	for log in "$LOG_A" "$LOG_B"; do
		! grep -qF "${k:0:16}" "$log" || e2e_fail "(a1) key material from $(basename "$key") in $log"
	done
done
e2e_pass "(a1)" "audit: established (text, JSON fields), endpoint_changed, closed at link down; no private or preshared key in the logs"
stop_pid "$PID_A" TERM 5 || e2e_fail "(p2) wgate --user nobody still runs 5 s after SIGTERM"
[ "$STOP_STATUS" = 0 ] || e2e_fail "(p2) wgate --user nobody exited $STOP_STATUS on SIGTERM"
# The socket directory is root's: nobody cannot remove its socket, and says so.
grep -q "cannot remove the socket file" "$LOG_A" || [ ! -e "$(e2e_sock "$IF_A")" ] ||
	e2e_fail "(p2) the socket stayed behind without a word in the log"

# ---- (p3) started by nobody, holding only the file capability cap_net_admin+ep
TUN_MODE=$(stat -c %a /dev/net/tun)
chmod 0666 /dev/net/tun
BINDIR=$(mktemp -d /tmp/wgt-privs-bin.XXXXXX)
chmod 0755 "$BINDIR"
cp "$WGATE" "$BINDIR/wgate"
chmod 0755 "$BINDIR/wgate"
setcap cap_net_admin+ep "$BINDIR/wgate"
SOCKDIR=$BINDIR/run
mkdir "$SOCKDIR"
chown nobody "$SOCKDIR"
IF_C=pvc$$
IF_C=${IF_C:0:15}
LOG_C=$TMP/$IF_C.log
e2e_add_log "wgate (file capability, as nobody) $IF_C in $NS_A" "$LOG_C"
as_nobody=(setpriv --reuid "$NOBODY_UID" --regid "$NOBODY_GID" --clear-groups)
e2e_spawn "$LOG_C" ip netns exec "$NS_A" "${as_nobody[@]}" "$BINDIR/wgate" -f --tun-threads 2 \
	--uapi-dir "$SOCKDIR" "$IF_C"
PID_C=$E2E_LAST_PID
E2E_DAEMONS+=("wgate (file capability) $IF_C=$PID_C")
# uapi SOCK REQUEST: the request's answer through the socket (wg knows only /var/run/wireguard).
uapi() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
buf = b""
while not buf.endswith(b"\n\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode())
PY
}
sock_c_ready() {
	pid_alive "$PID_C" || e2e_fail "(p3) wgate started by nobody exited: $(tail -n 3 "$LOG_C")"
	uapi "$SOCKDIR/$IF_C.sock" $'get=1\n\n' | grep -q '^errno=0$'
}
wait_for "the socket of wgate started by nobody" 10 sock_c_ready
check_caps "(p3)" "$PID_C" 0
check_ids "(p3)" "$PID_C" "$NOBODY_UID" "$NOBODY_GID"
hex() { base64 -d <"$1" | od -An -tx1 -v | tr -d ' \n'; }
PORT_C=51863
ans=$(uapi "$SOCKDIR/$IF_C.sock" "set=1
private_key=$(hex "$TMP/a.key")
listen_port=$PORT_C
replace_peers=true
public_key=$(hex "$TMP/b.pub")
preshared_key=$(hex "$TMP/psk")
endpoint=$E2E_UNDER4_B:$PORT_B
allowed_ip=$E2E_TUN4_B/32

")
[ "$ans" = "errno=0" ] || e2e_fail "(p3) the set through the socket answered '$ans'"
uapi "$SOCKDIR/$IF_C.sock" $'get=1\n\n' | grep -qx "listen_port=$PORT_C" ||
	e2e_fail "(p3) get=1 does not show listen_port=$PORT_C"
# A replaces A's old interface on B's side: same key, new endpoint.
in_ns "$NS_B" wg set "$IF_B" peer "$PUB_A" endpoint "$E2E_UNDER4_A:$PORT_C"
ip -n "$NS_A" link set "$IF_A" down 2>/dev/null || true
ip -n "$NS_A" addr add "10.241.0.3/24" dev "$IF_C"
ip -n "$NS_A" link set "$IF_C" up
in_ns "$NS_B" wg set "$IF_B" peer "$PUB_A" allowed-ips "$E2E_TUN4_A/32,10.241.0.3/32"
wait_for "ping from the file-capability wgate to B" 15 in_ns "$NS_A" ping -c 1 -W 1 -I 10.241.0.3 "$E2E_TUN4_B"
capbnd=$(status_field "$PID_C" "$PID_C" CapBnd)
stop_pid "$PID_C" TERM 5 || e2e_fail "(p3) still running 5 s after SIGTERM"
[ "$STOP_STATUS" = 0 ] || e2e_fail "(p3) exited $STOP_STATUS on SIGTERM"
[ ! -e "$SOCKDIR/$IF_C.sock" ] || e2e_fail "(p3) the socket in its own directory was left behind"
e2e_pass "(p3)" "file capability, started as nobody: net_admin only, NoNewPrivs 1 (bounding set left as $(cap_names "$capbnd" | cut -c1-20)...: no CAP_SETPCAP), set/get through the socket, ping"

# ---- (p4) the same binary without a writable socket directory: one line naming it
IF_D=pvd$$
IF_D=${IF_D:0:15}
e2e_own_iface "$IF_D"
mkdir -p "$E2E_SOCK_DIR"
rc=0
ip netns exec "$NS_A" "${as_nobody[@]}" "$BINDIR/wgate" -f "$IF_D" >"$TMP/p4.out" 2>"$TMP/p4.err" || rc=$?
[ "$rc" -ne 0 ] || e2e_fail "(p4) wgate as nobody with $E2E_SOCK_DIR not writable exited 0"
errs=$(grep -c ' error ' "$TMP/p4.err" || true)
[ "$errs" -eq 1 ] || e2e_fail "(p4) expected one error line, got $errs: $(cat "$TMP/p4.err")"
grep ' error ' "$TMP/p4.err" | grep -qF "$E2E_SOCK_DIR/$IF_D.sock" ||
	e2e_fail "(p4) the error does not name $E2E_SOCK_DIR: $(grep ' error ' "$TMP/p4.err")"
! ip -n "$NS_A" link show "$IF_D" >/dev/null 2>&1 || e2e_fail "(p4) interface $IF_D left behind"
e2e_pass "(p4)" "exit $rc: $(grep ' error ' "$TMP/p4.err" | cut -d' ' -f3-)"

echo "privs.sh: all checks passed in $(e2e_elapsed_ms) ms"
