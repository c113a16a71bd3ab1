#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wgate under systemd's notification protocol, as a Type=notify unit with WatchdogSec
# runs it, with a plain datagram socket standing in for systemd: READY=1 (with a
# STATUS naming the interface) once the interface works, WATCHDOG=1 every half
# WATCHDOG_USEC while healthy, no WATCHDOG=1 once a test hook stalls a worker (so that
# systemd would restart it), WATCHDOG=1 again after, and STOPPING=1 at SIGTERM.
#
# Usage: sd_notify.sh WGATE     (root; a test build, -Dtest_hooks=true, else skips)
set -euo pipefail
[ $# -eq 1 ] || {
	echo "usage: $0 WGATE" >&2
	exit 2
}
WGATE=$1
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_require_root wg ip python3
e2e_require_impl "$WGATE"
"$WGATE" --version | grep -q 'test hooks' || e2e_skip "$WGATE is not a test build (-Dtest_hooks=true)"
e2e_init sdnotify

NS=wgt$$n
IF=wgn$$
ns_add "$NS"
SOCK=$E2E_TMP/notify.sock
MSGS=$E2E_TMP/notify.txt
: >"$MSGS"
# The stand-in for systemd: every datagram as one line, its newlines as '|'.
e2e_add_log "notify listener" "$E2E_TMP/listener.log"
e2e_spawn "$E2E_TMP/listener.log" python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", "|") + "\n")
        out.flush()' "$SOCK" "$MSGS"
wait_for "the notify socket" 5 test -S "$SOCK"

export WGATE_TEST_STALL_FILE=$E2E_TMP/stall
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=1000000 start_impl "$NS" "$WGATE" "$IF" --tun-threads 2
PID=$IMPL_PID
LOG=$E2E_TMP/$IF.log

wait_for "READY=1" 5 grep -q '^READY=1|STATUS=' "$MSGS"
grep -q "^READY=1|STATUS=$IF: " "$MSGS" || e2e_fail "READY=1 without a STATUS naming $IF: $(head -n 3 "$MSGS")"
e2e_pass n1 "READY=1 with '$(grep -m1 '^READY=1' "$MSGS" | cut -d'|' -f2)'"

watchdogs() {
	grep -c '^WATCHDOG=1$' "$MSGS" || true
}
at_least() {
	[ "$(watchdogs)" -ge "$1" ]
}
n=$(watchdogs)
wait_for "three WATCHDOG=1 at 0.5 s intervals" 5 at_least $((n + 3))
e2e_pass n2 "WATCHDOG=1 every half WATCHDOG_USEC while every thread shows progress"

# A stalled worker: the health check names it and the watchdog goes unfed.
echo 1 >"$WGATE_TEST_STALL_FILE"
wait_for "the stall of worker 1" 5 grep -q 'worker 1 stalls' "$LOG"
wait_for "wgate to stop feeding the watchdog" 10 grep -q 'not feeding the systemd watchdog: worker 1' "$LOG"
n=$(watchdogs)
# Three watchdog periods without a WATCHDOG=1: what makes systemd restart the service.
sleep 1.5
[ "$(watchdogs)" -eq "$n" ] || e2e_fail "WATCHDOG=1 went on while worker 1 was stuck"
rm "$WGATE_TEST_STALL_FILE"
wait_for "WATCHDOG=1 again once worker 1 resumed" 10 at_least $((n + 1))
e2e_pass n3 "no WATCHDOG=1 while worker 1 was stuck (for 1.5 s), again after it resumed"

stop_pid "$PID" TERM 2 || e2e_fail "wgate did not stop within 2 s of SIGTERM"
[ "$STOP_STATUS" = 0 ] || e2e_fail "wgate exited $STOP_STATUS on SIGTERM"
grep -q '^STOPPING=1$' "$MSGS" || e2e_fail "no STOPPING=1 at SIGTERM"
e2e_pass n4 "STOPPING=1 at SIGTERM, exit status 0"
