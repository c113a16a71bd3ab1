#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Command line and lifecycle of a daemon that claims the wireguard-go command line
# (`IMPL [-f|--foreground] INTERFACE`; wgate adds `--tun-threads N`), all inside one
# fresh network namespace: --version/--help, bad arguments, forking into the background
# only once the device and the UAPI socket are ready, and the four ways it must go
# away (interface deleted, socket deleted, SIGINT) or come up (over a stale socket).
#
# Usage: daemon_cli.sh IMPL. Checks that wireguard-go does not pass (usage errors exit
# 2, --help, a 0600 socket) apply only when IMPL's basename is `wgate`: they are our
# spec, and wireguard-go is the reference only for the rest.
# Exits 0 when every check passed, 1 on the first failed one, 77 (skip) when not root
# or a tool is missing.
# `A && B || e2e_fail` is meant: e2e_fail exits.
# shellcheck disable=SC2015
set -euo pipefail

IMPL=${1:-}
if [ -z "$IMPL" ] || [ $# -ne 1 ]; then
	echo "usage: $0 IMPL" >&2
	exit 2
fi

. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_require_root wg ip python3 timeout stat
e2e_require_impl "$IMPL"
e2e_init daemon-cli

NAME=$(basename "$IMPL")
NS=wgt$$c
TMP=$E2E_TMP
WGATE=
impl_is_wgate "$IMPL" && WGATE=1

# set_iface SUFFIX: IF becomes a per-check interface name, ours for cleanup.
set_iface() {
	IF=wgc$$$1
	IF=${IF:0:15}
	e2e_own_iface "$IF"
}

# run_impl TAG ARGS...: the implementation in the namespace, as a service manager would
# start it (umask 022, SIGINT default), at most 10 s; stdout and stderr in
# $TMP/TAG.out and TAG.err (a daemon it forks keeps writing there when LOG_LEVEL is
# set); the exit status in RC.
run_impl() {
	local tag=$1

	shift
	RC=0
	(
		umask 022
		exec timeout 10 env --default-signal=INT LOG_LEVEL="${LOG_LEVEL:-verbose}" \
			ip netns exec "$NS" "$IMPL" "$@"
	) >"$TMP/$tag.out" 2>"$TMP/$tag.err" 9>&- || RC=$?
	[ "$RC" -ne 124 ] || e2e_fail "'$NAME $*' was still running after 10 s"
}

ns_pids() {
	ip netns pids "$NS"
}

# nothing_left CHECK IFACE: no process in the namespace, no socket, no interface.
nothing_left() {
	local pids

	pids=$(ns_pids)
	[ -z "$pids" ] || e2e_fail "$1: a process was left running in $NS (pids $pids)"
	[ ! -e "$(e2e_sock "$2")" ] || e2e_fail "$1: $(e2e_sock "$2") was created"
	! ip -n "$NS" link show "$2" >/dev/null 2>&1 || e2e_fail "$1: interface $2 was created"
}

# gone_cleanly CHECK PID IFACE: the daemon exits within 5 s, its socket and interface go too.
gone_cleanly() {
	wait_gone "$2" 5 || e2e_fail "$1: $NAME (pid $2) still runs 5 s later"
	wait_until 1 test ! -e "$(e2e_sock "$3")" ||
		e2e_fail "$1: $NAME exited but left $(e2e_sock "$3") behind"
	wait_until 2 eval "! ip -n '$NS' link show '$3'" ||
		e2e_fail "$1: $NAME exited but interface $3 is still in $NS"
}

ns_add "$NS"
echo "$IMPL in $NS$([ -n "$WGATE" ] && echo ", with the wgate-only checks")"

# ---- --version: exit 0, says something, starts nothing
set_iface v
run_impl version --version
[ "$RC" -eq 0 ] || e2e_fail "(version) '$NAME --version' exited $RC"
[ -s "$TMP/version.out" ] || e2e_fail "(version) '$NAME --version' printed nothing on stdout"
nothing_left "(version)" "$IF"
e2e_pass "(version)" "--version exits 0: $(head -n 1 "$TMP/version.out")"

# ---- --help
if [ -n "$WGATE" ]; then
	run_impl help --help
	[ "$RC" -eq 0 ] || e2e_fail "(help) '$NAME --help' exited $RC"
	grep -qi usage "$TMP/help.out" || e2e_fail "(help) '$NAME --help' printed no usage on stdout"
	grep -q -- --tun-threads "$TMP/help.out" || e2e_fail "(help) '$NAME --help' does not mention --tun-threads"
	nothing_left "(help)" "$IF"
	e2e_pass "(help)" "--help exits 0 with the usage on stdout and starts nothing"
else
	# wireguard-go has no --help: it takes it for an interface name and starts a
	# daemon for an interface called "--help" (exit 0 all the same).
	echo "SKIP (help) $NAME: --help only checked for wgate (wireguard-go starts a device named --help)"
fi

# ---- usage errors: exit 2, one line on stderr, nothing started
if [ -n "$WGATE" ]; then
	set_iface x
	n=0
	for args in "--tun-threads 0 $IF" "--tun-threads abc $IF" "--tun-threads -1 $IF" "--bogus $IF" \
		"" "-f" "--tun-threads 2" "$IF extra" "wg:0" ".." "wgc0123456789abc" "--user"; do
		n=$((n + 1))
		# shellcheck disable=SC2086 # the word splitting is the point
		run_impl "bad$n" $args
		[ "$RC" -eq 2 ] || e2e_fail "(args) '$NAME $args' exited $RC, expected 2 (usage error)"
		lines=$(wc -l <"$TMP/bad$n.err")
		[ "$lines" -eq 1 ] && [ -n "$(tr -d '[:space:]' <"$TMP/bad$n.err")" ] ||
			e2e_fail "(args) '$NAME $args' wrote $lines lines on stderr, expected one message: $(head -c 300 "$TMP/bad$n.err")"
		nothing_left "(args) '$NAME $args'" "$IF"
	done
	e2e_pass "(args)" "$n bad command lines: exit 2, one line on stderr, nothing started"
else
	# wireguard-go prints its usage on stdout and exits 0 for a wrong argument count,
	# and takes any single argument (even --bogus) for an interface name.
	echo "SKIP (args) $NAME: usage errors only checked for wgate (wireguard-go exits 0 on them)"
fi

# ---- without -f: returns once the device and socket are ready, and the daemon stays
set_iface d
SOCK=$(e2e_sock "$IF")
e2e_add_log "$NAME $IF, forked into the background" "$TMP/daemon.err"
run_impl daemon "$IF"
# Checked first, before anything else can give a slow daemon time to catch up.
[ -S "$SOCK" ] || e2e_fail "(daemon) '$NAME $IF' returned (status $RC) before $SOCK existed"
[ "$RC" -eq 0 ] || e2e_fail "(daemon) '$NAME $IF' exited $RC"
pids=$(ns_pids)
[ "$(wc -w <<<"$pids")" -eq 1 ] || e2e_fail "(daemon) expected one daemon process in $NS, found '$pids'"
PID=$pids
pid_alive "$PID" || e2e_fail "(daemon) the daemon (pid $PID) is not running"
in_ns "$NS" wg show "$IF" >/dev/null || e2e_fail "(daemon) wg show $IF does not answer"
ip -n "$NS" link show "$IF" >/dev/null 2>&1 || e2e_fail "(daemon) interface $IF is not in $NS"
# One deliberate pause: "keeps running" means more than just having been there once.
sleep 1
pid_alive "$PID" || e2e_fail "(daemon) the daemon (pid $PID) exited within 1 s of starting"
e2e_pass "(daemon)" "without -f it returns 0 with $SOCK ready; pid $PID keeps running"

# ---- the socket: owner-only. The mode of /var/run/wireguard is not ours to assert: another
# WireGuard program (wireguard-go, wg-quick) may have made it first, 0700 say; the mode of
# a directory wgate creates is checked below in one of our own (--uapi-dir).
mode=$(stat -c %a "$SOCK")
owner=$(stat -c %U "$SOCK")
[ "$owner" = root ] || e2e_fail "(mode) $SOCK belongs to $owner, not root"
[ $((8#$mode & 8#077)) -eq 0 ] || e2e_fail "(mode) $SOCK has mode $mode: group or others have access"
# wireguard-go's socket is 0700 (Go's listen under umask 077); our spec says 0600.
[ -z "$WGATE" ] || [ "$mode" = 600 ] || e2e_fail "(mode) $SOCK has mode $mode, expected 600"
e2e_pass "(mode)" "socket mode $mode owned by root (exactly 600 checked for wgate only)"

# ---- ip link del: the daemon goes
ip -n "$NS" link del "$IF"
gone_cleanly "(link-del)" "$PID" "$IF"
e2e_pass "(link-del)" "ip link del $IF: the daemon exits within 5 s and removes its socket"

# ---- deleting the socket file: the daemon goes
set_iface s
start_impl "$NS" "$IMPL" "$IF"
PID=$IMPL_PID
rm -f "$(e2e_sock "$IF")"
gone_cleanly "(sock-del)" "$PID" "$IF"
stop_pid "$PID" KILL 1 || true
e2e_pass "(sock-del)" "rm $(e2e_sock "$IF"): the daemon exits within 5 s and its interface goes"

# ---- SIGINT: the daemon goes
set_iface i
start_impl "$NS" "$IMPL" "$IF"
PID=$IMPL_PID
kill -INT "$PID"
gone_cleanly "(sigint)" "$PID" "$IF"
stop_pid "$PID" KILL 1 || true
e2e_pass "(sigint)" "SIGINT: the daemon exits (status $STOP_STATUS) within 5 s, removes its socket and interface"

# ---- a stale socket file (bound, then closed: nobody listens) is replaced at start
set_iface t
SOCK=$(e2e_sock "$IF")
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$SOCK"
[ -S "$SOCK" ] || e2e_fail "(stale) could not make a stale socket at $SOCK"
! in_ns "$NS" wg show "$IF" >/dev/null 2>&1 || e2e_fail "(stale) the stale socket answers wg show"
start_impl "$NS" "$IMPL" "$IF"
PID=$IMPL_PID
in_ns "$NS" wg set "$IF" listen-port 51830 || e2e_fail "(stale) wg set through the new socket failed"
[ "$(in_ns "$NS" wg show "$IF" listen-port)" = 51830 ] || e2e_fail "(stale) wg set did not reach the daemon"
stop_pid "$PID" TERM 5 || e2e_fail "(stale) still running 5 s after SIGTERM"
e2e_pass "(stale)" "a stale socket at $SOCK is replaced at start and the new one answers wg set/show"

# ---- wgate only: --uapi-dir. Directories it creates are 0755 whatever the umask (here
# 022; the daemon's own is 077), the socket 0600; a directory that exists keeps its mode,
# even 0700 as another WireGuard program leaves /var/run/wireguard, and the socket in it
# answers. Both directories are the test's own, under its temp directory.
if [ -n "$WGATE" ]; then
	uapi_get() {
		timeout 20 python3 "$(cd "$(dirname "$0")" && pwd)/uapi_client.py" "$1" get
	}
	set_iface a
	UDIR=$TMP/own/run/wireguard
	e2e_add_log "$NAME $IF --uapi-dir $UDIR" "$TMP/uapidir.err"
	run_impl uapidir --uapi-dir "$UDIR" "$IF"
	[ "$RC" -eq 0 ] || e2e_fail "(uapi-dir) '$NAME --uapi-dir $UDIR $IF' exited $RC"
	PID=$(ns_pids)
	for d in "$TMP/own/run" "$UDIR"; do
		[ "$(stat -c %a "$d")" = 755 ] || e2e_fail "(uapi-dir) $d has mode $(stat -c %a "$d"), expected 755"
	done
	[ "$(stat -c %a "$UDIR/$IF.sock")" = 600 ] ||
		e2e_fail "(uapi-dir) $UDIR/$IF.sock has mode $(stat -c %a "$UDIR/$IF.sock"), expected 600"
	uapi_get "$UDIR/$IF.sock" >/dev/null || e2e_fail "(uapi-dir) get=1 on $UDIR/$IF.sock failed"
	[ ! -e "$(e2e_sock "$IF")" ] || e2e_fail "(uapi-dir) a socket was made in $E2E_SOCK_DIR too"
	stop_pid "$PID" TERM 5 || e2e_fail "(uapi-dir) still running 5 s after SIGTERM"
	[ ! -e "$UDIR/$IF.sock" ] || e2e_fail "(uapi-dir) $UDIR/$IF.sock outlived the daemon"

	set_iface b
	PDIR=$TMP/private
	mkdir -m 0700 "$PDIR"
	run_impl uapidir700 --uapi-dir "$PDIR" "$IF"
	[ "$RC" -eq 0 ] || e2e_fail "(uapi-dir) '$NAME --uapi-dir $PDIR $IF' exited $RC"
	PID=$(ns_pids)
	[ "$(stat -c %a "$PDIR")" = 700 ] || e2e_fail "(uapi-dir) the existing $PDIR became $(stat -c %a "$PDIR")"
	uapi_get "$PDIR/$IF.sock" >/dev/null || e2e_fail "(uapi-dir) get=1 on $PDIR/$IF.sock failed"
	stop_pid "$PID" TERM 5 || e2e_fail "(uapi-dir) still running 5 s after SIGTERM"
	e2e_pass "(uapi-dir)" "a new --uapi-dir is made 0755 with a 0600 socket; an existing 0700 one keeps its mode and works"
fi

# ---- wgate only: OpenSSL's Poly1305 code choice (crypto/aead_provider.c). On OpenSSL
# 3.0 with AVX512-IFMA the daemon re-executes itself once with OPENSSL_ia32cap masking
# IFMA; elsewhere, and whenever the operator set the variable, it is left alone.
if [ -n "$WGATE" ]; then
	environ_cap() { tr '\0' '\n' <"/proc/$1/environ" | sed -n 's/^OPENSSL_ia32cap=//p'; }
	expect=
	if grep -qw avx512ifma /proc/cpuinfo &&
		python3 -c 'import ssl, sys; sys.exit(ssl.OPENSSL_VERSION_INFO[:2] != (3, 0))'; then
		expect=':~0x200000'
	fi
	set_iface c
	start_impl "$NS" "$IMPL" "$IF"
	got=$(environ_cap "$IMPL_PID")
	[ "$got" = "$expect" ] ||
		e2e_fail "(ia32cap) the daemon runs with OPENSSL_ia32cap='$got', expected '$expect'"
	in_ns "$NS" wg show "$IF" >/dev/null || e2e_fail "(ia32cap) wg show $IF does not answer"
	stop_pid "$IMPL_PID" TERM 5 || e2e_fail "(ia32cap) still running 5 s after SIGTERM"
	set_iface o
	OPENSSL_ia32cap=':~0' start_impl "$NS" "$IMPL" "$IF"
	got=$(environ_cap "$IMPL_PID")
	[ "$got" = ':~0' ] || e2e_fail "(ia32cap) an operator's OPENSSL_ia32cap=:~0 became '$got'"
	grep -q 'OpenSSL CPU capabilities: as set by OPENSSL_ia32cap' "$E2E_TMP/$IF.log" ||
		e2e_fail "(ia32cap) the start-up log does not say the operator's OPENSSL_ia32cap is used"
	stop_pid "$IMPL_PID" TERM 5 || e2e_fail "(ia32cap) still running 5 s after SIGTERM"
	e2e_pass "(ia32cap)" "OPENSSL_ia32cap '${expect:-unset}' as expected on this CPU and OpenSSL; an operator's value is kept"
fi

# ---- wgate only: clear failures, each one error line naming the cause and a non-zero exit
# expect_failure CHECK TAG PATTERN: the run of TAG exited non-zero with exactly one error
# line, which matches PATTERN (grep -E); nothing is left running.
expect_failure() {
	local errs

	[ "$RC" -ne 0 ] || e2e_fail "$1 exited 0"
	errs=$(grep -c ' error ' "$TMP/$2.err" || true)
	[ "$errs" -eq 1 ] || e2e_fail "$1 wrote $errs error lines, expected one: $(cat "$TMP/$2.err")"
	grep ' error ' "$TMP/$2.err" | grep -qE -- "$3" ||
		e2e_fail "$1 error line does not say '$3': $(grep ' error ' "$TMP/$2.err")"
	FAIL_LINE=$(grep ' error ' "$TMP/$2.err" | cut -d' ' -f3-)
}
if [ -n "$WGATE" ]; then
	# A UDP port another socket holds: the set fails, the daemon keeps its old port.
	set_iface p
	start_impl "$NS" "$IMPL" "$IF"
	PID=$IMPL_PID
	in_ns "$NS" wg set "$IF" listen-port 51840
	ip netns exec "$NS" python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 51841))
print("bound", flush=True); time.sleep(30)' >"$TMP/holder.out" &
	HOLDER=$!
	E2E_PIDS+=("$HOLDER")
	wait_for "the port holder" 5 grep -q bound "$TMP/holder.out"
	! in_ns "$NS" wg set "$IF" listen-port 51841 2>"$TMP/wgset.err" ||
		e2e_fail "(port-in-use) wg set listen-port 51841 succeeded while another socket holds it"
	pid_alive "$PID" || e2e_fail "(port-in-use) the daemon exited"
	[ "$(in_ns "$NS" wg show "$IF" listen-port)" = 51840 ] ||
		e2e_fail "(port-in-use) the daemon no longer listens on its old port 51840"
	grep -q "cannot listen on UDP port 51841: Address already in use (another socket holds it); still on port 51840" \
		"$E2E_TMP/$IF.log" || e2e_fail "(port-in-use) no clear error line in the daemon's log"
	kill "$HOLDER"
	stop_pid "$PID" TERM 5 || e2e_fail "(port-in-use) still running 5 s after SIGTERM"
	e2e_pass "(port-in-use)" "wg set listen-port on a held port fails ($(tr -d '\n' <"$TMP/wgset.err")), the daemon keeps port 51840 and logs why"

	# An unknown --user: refused before anything is opened.
	set_iface u
	run_impl baduser -f --user "nosuchuser$$" "$IF"
	expect_failure "(bad-user)" baduser "--user nosuchuser$$: no such user"
	nothing_left "(bad-user)" "$IF"
	e2e_pass "(bad-user)" "exit $RC: $FAIL_LINE"

	# No /dev/net/tun (a container without the device): hidden under an empty tmpfs.
	set_iface n
	RC=0
	(
		exec timeout 10 ip netns exec "$NS" unshare -m sh -c \
			'mount -t tmpfs none /dev/net && exec "$0" -f "$1"' "$IMPL" "$IF"
	) >"$TMP/notun.out" 2>"$TMP/notun.err" 9>&- || RC=$?
	expect_failure "(no-tun)" notun "/dev/net/tun does not exist"
	nothing_left "(no-tun)" "$IF"
	e2e_pass "(no-tun)" "exit $RC: $FAIL_LINE"

	# No CAP_NET_ADMIN: root with the capability out of its bounding set.
	set_iface k
	RC=0
	(
		exec timeout 10 ip netns exec "$NS" setpriv --bounding-set -net_admin "$IMPL" -f "$IF"
	) >"$TMP/nocap.out" 2>"$TMP/nocap.err" 9>&- || RC=$?
	expect_failure "(no-cap)" nocap "no CAP_NET_ADMIN"
	nothing_left "(no-cap)" "$IF"
	e2e_pass "(no-cap)" "exit $RC: $FAIL_LINE"

	# A second wgate on the same interface: refused, naming the first one's pid.
	set_iface 2
	start_impl "$NS" "$IMPL" "$IF"
	PID=$IMPL_PID
	run_impl second -f "$IF"
	expect_failure "(second)" second "interface $IF is already run by another process \(pid $PID\)"
	pid_alive "$PID" || e2e_fail "(second) the first daemon exited"
	in_ns "$NS" wg show "$IF" >/dev/null || e2e_fail "(second) the first daemon no longer answers"
	e2e_pass "(second)" "exit $RC: $FAIL_LINE"
	stop_pid "$PID" TERM 5 || e2e_fail "(second) still running 5 s after SIGTERM"

	# SIGTERM and SIGINT: exit 0 within 2 s, the TUN device and the UAPI socket gone.
	gone_within_2s() {
		! pid_alive "$1" && [ ! -e "$(e2e_sock "$2")" ] && ! ip -n "$NS" link show "$2"
	}
	for sig in TERM INT; do
		set_iface "$sig"
		start_impl "$NS" "$IMPL" "$IF" --tun-threads 2
		PID=$IMPL_PID
		t0=$(date +%s%N)
		kill -s "$sig" "$PID"
		wait_until 2 gone_within_2s "$PID" "$IF" ||
			e2e_fail "(sig$sig) 2 s after SIG$sig: running $(pid_alive "$PID" && echo yes || echo no), socket $([ -e "$(e2e_sock "$IF")" ] && echo present || echo gone), interface $(ip -n "$NS" link show "$IF" >/dev/null 2>&1 && echo present || echo gone)"
		ms=$((($(date +%s%N) - t0) / 1000000))
		stop_pid "$PID" KILL 1 || true
		[ "$STOP_STATUS" = 0 ] || e2e_fail "(sig$sig) exit status $STOP_STATUS after SIG$sig, expected 0"
		e2e_pass "(sig$sig)" "SIG$sig: exit 0, TUN device and socket gone within $ms ms"
	done
fi

echo "daemon_cli.sh: all checks passed in $(e2e_elapsed_ms) ms ($NAME)"
