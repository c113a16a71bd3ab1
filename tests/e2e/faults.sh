#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Faults around a running tunnel (issue 19), each under traffic: UDP send failure storms
# (ENOBUFS, EAGAIN: test hook), a peer removed while its packets are staged and while
# they are in the workers' batches, the listen port held by another socket during
# `wg set listen-port`, link down/up, allocation failure at peer add (test hook), session
# state that cannot be allocated, with A as responder and as initiator (test hook), and
# the TUN device deleted. wgate must not crash, leak or wedge, must count each drop,
# and the tunnel must carry traffic again once the fault is gone. A sanitizer report in
# a daemon's log fails the run (lib.sh), so run under ASan and TSan builds too.
#
# Usage: faults.sh WGATE
# The hook checks need a build with -Dtest_hooks=true (`wgate --version` says so); they
# are left out, with a note, otherwise. Exits 0 when every check passed, 1 on the first
# failed one, 77 (skip) when not root or a tool is missing, 2 on a usage error.
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 WGATE" >&2
	exit 2
}
WGATE=$1

# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_require_root wg ip ping iperf3 python3
e2e_require_impl "$WGATE"
e2e_init faults

HOOKS=0
"$WGATE" --version | grep -q "(test hooks)" && HOOKS=1
METRICS=127.0.0.1:9586
CURL=0
command -v curl >/dev/null && CURL=1
SEND_FAIL=$E2E_TMP/send_fail
ALLOC_FAIL=$E2E_TMP/alloc_fail
SESSION_FAIL=$E2E_TMP/session_fail

two_sides wf
wg_keys a
wg_keys b
wg_keys c
PUB_A=$(cat "$E2E_TMP/a.pub")
PUB_B=$(cat "$E2E_TMP/b.pub")
PUB_C=$(cat "$E2E_TMP/c.pub")
# The hooks' files are named for A only; B runs without them.
WGATE_TEST_SEND_FAIL_FILE=$SEND_FAIL WGATE_TEST_ALLOC_FAIL_FILE=$ALLOC_FAIL \
	WGATE_TEST_SESSION_FAIL_FILE=$SESSION_FAIL start_impl "$NS_A" "$WGATE" "$IF_A" --tun-threads 2 --metrics-listen "$METRICS"
PID_A=$IMPL_PID
LOG_A=$E2E_TMP/$IF_A.log
start_impl "$NS_B" "$WGATE" "$IF_B" --tun-threads 2
PID_B=$IMPL_PID
LOG_B=$E2E_TMP/$IF_B.log

in_ns "$NS_A" wg set "$IF_A" private-key "$E2E_TMP/a.key" listen-port 51820
in_ns "$NS_B" wg set "$IF_B" private-key "$E2E_TMP/b.key" listen-port 51821 \
	peer "$PUB_A" allowed-ips 10.241.0.1/32 endpoint "$E2E_UNDER4_A:51820"
# add_b: A's peer B, as at the start (also after each removal).
add_b() {
	in_ns "$NS_A" wg set "$IF_A" peer "$PUB_B" allowed-ips 10.241.0.2/32 \
		endpoint "$E2E_UNDER4_B:51821"
}
add_b
ip -n "$NS_A" addr add 10.241.0.1/24 dev "$IF_A"
ip -n "$NS_B" addr add 10.241.0.2/24 dev "$IF_B"
ip -n "$NS_A" link set "$IF_A" up
ip -n "$NS_B" link set "$IF_B" up
e2e_spawn "$E2E_TMP/iperf3.log" ip netns exec "$NS_B" iperf3 -s -B 10.241.0.2
IPERF_PID=$E2E_LAST_PID

ping_ab() { in_ns "$NS_A" ping -c 1 -W 1 10.241.0.2; }
ping_ba() { in_ns "$NS_B" ping -c 1 -W 1 10.241.0.1; }
wait_for "ping A->B through the tunnel" 15 ping_ab
wait_for "ping B->A through the tunnel" 15 ping_ba
wait_for "iperf3 server in B" 10 in_ns "$NS_A" bash -c 'exec 3<>/dev/tcp/10.241.0.2/5201'
e2e_pass a "wgate A and B, 2 workers each: ping both ways"

# ---- counters: A's SIGUSR1 dump, summed over its workers
# worker_sum FIELD: the sum over A's workers (latest dump) of the number after FIELD
# ("enobufs", "eagain"); control FIELD...: the number after those words in the control line.
worker_sum() {
	awk -v f="$1" '/ worker [0-9]+: rx / { for (i = 1; i < NF; i++) if ($i == f || $i == "(" f) w[$4] = $(i + 1) + 0 }
		/ control: / { s = 0; for (k in w) s += w[k]; last = s; delete w } END { print last + 0 }' "$LOG_A"
}
control_field() {
	grep ' control: ' "$LOG_A" | tail -n 1 | grep -oE "$1 [0-9]+" | awk '{ print $NF }'
}
dump_a() { counters_dump "$LOG_A" "$PID_A"; }
# metric NAME_WITH_LABELS: A's Prometheus value (empty without curl).
metric() {
	[ "$CURL" -eq 1 ] || return 0
	in_ns "$NS_A" curl -s --max-time 15 "http://$METRICS/metrics" |
		awk -v n="$1" '$1 == n { print $2 }'
}
# drops_now FIELD: what A counted as FIELD drops (enobufs, eagain): its workers and its
# control thread, plus what the kernel dropped on A's TUN device before wgate read it.
drops_now() {
	echo $(($(worker_sum "$1") + $(control_field "$1") +
		$(in_ns "$NS_A" cat "/sys/class/net/$IF_A/statistics/tx_dropped")))
}
# counted FIELD BASE WANT: a new dump; COUNTED is drops_now FIELD less BASE; true when
# it reached WANT.
counted() {
	dump_a
	COUNTED=$(($(drops_now "$1") - $2))
	[ "$COUNTED" -ge "$3" ]
}
# flood NS DST SECONDS: ping -f in the background (output to a log); sets FLOOD_PID.
flood() {
	e2e_spawn "$E2E_TMP/flood.$1.log" ip netns exec "$1" ping -f -q -w "$3" "$2"
	FLOOD_PID=$E2E_LAST_PID
}
# ping_lost NS DST COUNT: "TRANSMITTED RECEIVED" of COUNT flood pings.
ping_counts() {
	in_ns "$1" ping -f -q -c "$3" -W 1 "$2" 2>/dev/null |
		awk '/packets transmitted/ { print $1, $4 }' || true
}
alive_a() {
	pid_alive "$PID_A" || e2e_fail "($1) wgate A exited"
	in_ns "$NS_A" wg show "$IF_A" >/dev/null || e2e_fail "($1) wgate A does not answer wg show"
}

# ---- (b) ENOBUFS and EAGAIN storms on A's sends (test hook)
if [ "$HOOKS" -eq 1 ]; then
	dump_a
	nobufs0=$(drops_now enobufs)
	echo "ENOBUFS 300" >"$SEND_FAIL"
	wait_for "the ENOBUFS hook" 5 grep -q "300 of 1000 UDP sends fail with ENOBUFS" "$LOG_A"
	read -r tx rx < <(ping_counts "$NS_A" 10.241.0.2 1000)
	lost=$((tx - rx))
	[ "$rx" -gt 0 ] || e2e_fail "(b) no ping got through a 30% ENOBUFS storm"
	[ "$lost" -gt 0 ] || e2e_fail "(b) no ping lost in a 30% ENOBUFS storm"
	# A slow (sanitizer) worker may still hold the last pings: poll the counters.
	wait_until 10 counted enobufs "$nobufs0" "$lost" ||
		e2e_fail "(b) $lost of $tx pings lost, but only $COUNTED ENOBUFS drops counted: $(grep -E ' (worker [0-9]+|control): ' "$LOG_A" | tail -n 3)"
	nobufs=$COUNTED
	[ "$nobufs" -le $((lost + 20)) ] ||
		e2e_fail "(b) $nobufs ENOBUFS drops counted for $lost lost pings"
	m=$(metric 'wgate_udp_send_errors_total{errno="ENOBUFS"}')
	abs=$(($(worker_sum enobufs) + $(control_field enobufs)))
	[ -z "$m" ] || [ "$m" -ge "$abs" ] || e2e_fail "(b) /metrics ENOBUFS $m < $abs in the dump"
	e2e_pass b "30% ENOBUFS: $lost of $tx flood pings lost, $nobufs ENOBUFS drops counted (metrics ${m:-n/a})"

	dump_a
	eagain0=$(drops_now eagain)
	echo "EAGAIN 1000" >"$SEND_FAIL"
	wait_for "the EAGAIN hook" 5 grep -q "1000 of 1000 UDP sends fail with EAGAIN" "$LOG_A"
	read -r tx rx < <(ping_counts "$NS_A" 10.241.0.2 50)
	alive_a b
	[ "$rx" -eq 0 ] || e2e_fail "(b) $rx pings answered while every send failed"
	wait_until 10 counted eagain "$eagain0" "$tx" ||
		e2e_fail "(b) $tx pings sent into an EAGAIN storm, $COUNTED drops counted"
	eagain=$COUNTED
	if [ "$CURL" -eq 1 ]; then
		code=$(in_ns "$NS_A" curl -s -o /dev/null -w '%{http_code}' "http://$METRICS/healthz")
		[ "$code" = 200 ] || e2e_fail "(b) /healthz said $code during the EAGAIN storm"
	fi
	rm -f "$SEND_FAIL"
	wait_for "the end of the storm" 5 grep -q "UDP sends no longer fail" "$LOG_A"
	wait_for "ping A->B after the storms" 15 ping_ab
	e2e_pass b "100% EAGAIN: $tx pings, $eagain EAGAIN drops counted, healthy, wg show answers; ping after the storm"
else
	echo "NOTE: $WGATE has no test hooks (-Dtest_hooks=true): the send storms are left out"
fi

# ---- (c) peer removed while its packets are staged (B does not answer: no session)
dump_a
staged0=$(control_field "staged drops")
ip -n "$NS_B" link set "$IF_B" down
flood "$NS_A" 10.241.0.2 30
for i in $(seq 1 30); do
	in_ns "$NS_A" wg set "$IF_A" peer "$PUB_B" remove
	add_b
	sleep 0.05
done
kill "$FLOOD_PID" 2>/dev/null || true
alive_a c
dump_a
staged=$(($(control_field "staged drops") - staged0))
[ "$staged" -gt 0 ] || e2e_fail "(c) no staged packet counted as dropped after 30 removals"
[ "$(in_ns "$NS_A" wg show "$IF_A" peers)" = "$PUB_B" ] || e2e_fail "(c) A's peer list is not B alone"
ip -n "$NS_B" link set "$IF_B" up
wait_for "ping A->B after the staged removals" 15 ping_ab
e2e_pass c "30 removals of B on A while a flood ping was staged: $staged staged drops counted; ping after"

# ---- (d) peer removed while its packets are in the workers' batches (iperf3 and floods)
e2e_spawn "$E2E_TMP/iperf3.c.log" ip netns exec "$NS_A" iperf3 -c 10.241.0.2 -t 6 -P 2
IPERF_C=$E2E_LAST_PID
flood "$NS_B" 10.241.0.1 6
FLOOD_B=$FLOOD_PID
sleep 0.5
for i in $(seq 1 40); do
	if [ $((i % 2)) -eq 0 ]; then
		in_ns "$NS_A" wg set "$IF_A" peer "$PUB_B" remove
		add_b
	else
		in_ns "$NS_B" wg set "$IF_B" peer "$PUB_A" remove
		in_ns "$NS_B" wg set "$IF_B" peer "$PUB_A" allowed-ips 10.241.0.1/32 \
			endpoint "$E2E_UNDER4_A:51820"
	fi
	sleep 0.05
done
kill "$IPERF_C" "$FLOOD_B" 2>/dev/null || true
wait "$IPERF_C" 2>/dev/null || true
alive_a d
pid_alive "$PID_B" || e2e_fail "(d) wgate B exited"
wait_for "ping A->B after the removals under traffic" 15 ping_ab
wait_for "ping B->A after the removals under traffic" 15 ping_ba
e2e_pass d "40 removals (A and B in turn) under iperf3 and a flood ping: both alive, ping after"

# ---- (e) the listen port held by another socket during wg set listen-port, under traffic
e2e_spawn "$E2E_TMP/holder.out" ip netns exec "$NS_A" python3 -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 51830))
print("bound", flush=True); time.sleep(60)'
HOLDER=$E2E_LAST_PID
wait_for "the port holder" 5 grep -q bound "$E2E_TMP/holder.out"
flood "$NS_B" 10.241.0.1 4
! in_ns "$NS_A" wg set "$IF_A" listen-port 51830 2>"$E2E_TMP/wgset.err" ||
	e2e_fail "(e) wg set listen-port 51830 succeeded while another socket holds it"
[ "$(in_ns "$NS_A" wg show "$IF_A" listen-port)" = 51820 ] ||
	e2e_fail "(e) A no longer listens on its old port 51820"
grep -q "cannot listen on UDP port 51830: Address already in use" "$LOG_A" ||
	e2e_fail "(e) no clear error line in A's log"
ping_ba >/dev/null || e2e_fail "(e) ping B->A failed after the refused port change"
in_ns "$NS_A" wg set "$IF_A" listen-port 51831
[ "$(in_ns "$NS_A" wg show "$IF_A" listen-port)" = 51831 ] || e2e_fail "(e) A did not move to 51831"
kill "$FLOOD_PID" "$HOLDER" 2>/dev/null || true
# B learns A's new port from A's next authenticated packet.
wait_for "ping A->B on the new port" 15 ping_ab
wait_for "ping B->A on the new port" 15 ping_ba
e2e_pass e "held port under a flood: wg set fails ($(tr -d '\n' <"$E2E_TMP/wgset.err")), A keeps 51820 and traffic; then moves to 51831"

# ---- (f) link down/up under traffic, both ways
flood "$NS_A" 10.241.0.2 5
FLOOD_A=$FLOOD_PID
flood "$NS_B" 10.241.0.1 5
FLOOD_B=$FLOOD_PID
for i in 1 2 3 4 5; do
	ip -n "$NS_A" link set "$IF_A" down
	sleep 0.2
	ip -n "$NS_A" link set "$IF_A" up
	sleep 0.3
done
kill "$FLOOD_A" "$FLOOD_B" 2>/dev/null || true
alive_a f
wait_for "ping A->B after link down/up" 15 ping_ab
wait_for "ping B->A after link down/up" 15 ping_ba
e2e_pass f "5 link down/up cycles under flood pings both ways: A alive, ping after"

# ---- (g) allocation failure at peer add (test hook): an error, nothing half-built, counted
if [ "$HOOKS" -eq 1 ]; then
	peers0=$(in_ns "$NS_A" wg show "$IF_A" peers)
	ips0=$(in_ns "$NS_A" wg show "$IF_A" allowed-ips)
	dump_a
	fail0=$(control_field "peer add failures")
	# Allocation 1 is the peer, 2-4 its three allowed IPs.
	for n in 1 2 3 4; do
		echo "$n" >"$ALLOC_FAIL"
		! in_ns "$NS_A" wg set "$IF_A" peer "$PUB_C" endpoint "$E2E_UNDER4_B:51999" \
			allowed-ips 10.99.0.1/32,10.99.0.2/32,fd00:99::/64 2>"$E2E_TMP/alloc.err" ||
			e2e_fail "(g) wg set succeeded with allocation $n failing"
		[ "$(in_ns "$NS_A" wg show "$IF_A" peers)" = "$peers0" ] ||
			e2e_fail "(g) allocation $n failed, but A's peers changed"
		[ "$(in_ns "$NS_A" wg show "$IF_A" allowed-ips)" = "$ips0" ] ||
			e2e_fail "(g) allocation $n failed, but A's allowed IPs changed"
	done
	echo 5 >"$ALLOC_FAIL"
	in_ns "$NS_A" wg set "$IF_A" peer "$PUB_C" endpoint "$E2E_UNDER4_B:51999" \
		allowed-ips 10.99.0.1/32,10.99.0.2/32,fd00:99::/64 ||
		e2e_fail "(g) wg set failed with no allocation of its 4 failing"
	rm -f "$ALLOC_FAIL"
	got=$(in_ns "$NS_A" wg show "$IF_A" allowed-ips | awk -v k="$PUB_C" '$1 == k { print NF - 1 }')
	[ "$got" = 3 ] || e2e_fail "(g) peer C has ${got:-no} allowed IPs, expected 3"
	dump_a
	fails=$(($(control_field "peer add failures") - fail0))
	[ "$fails" -eq 4 ] || e2e_fail "(g) $fails peer add failures counted, expected 4"
	m=$(metric wgate_peer_add_failures_total)
	[ -z "$m" ] || [ "$m" -eq "$fails" ] || e2e_fail "(g) /metrics says $m peer add failures"
	in_ns "$NS_A" wg set "$IF_A" peer "$PUB_C" remove
	ping_ab >/dev/null || e2e_fail "(g) ping A->B failed after the failed peer adds"
	e2e_pass g "allocation 1..4 of a peer add failing: wg set fails ($(tr -d '\n' <"$E2E_TMP/alloc.err")), peers and allowed IPs unchanged, $fails counted; 5: added whole"
else
	echo "NOTE: $WGATE has no test hooks (-Dtest_hooks=true): the allocation failures are left out"
fi

# ---- (h) session state that cannot be allocated (test hook): the handshake is dropped and
# counted, nothing is sent or kept, and the peer's next handshake, the hook spent, works.
# A as responder (B's initiation finds no state on A), then as initiator (A's own).
SESSIONS=wgate_peers_with_session_state
SESS_FAILS=wgate_session_state_alloc_failures_total
INITS_SENT='wgate_handshakes_sent_total{message="initiation"}'
# add_a: B's peer A, on the port A moved to in (e).
add_a() {
	in_ns "$NS_B" wg set "$IF_B" peer "$PUB_A" allowed-ips 10.241.0.1/32 \
		endpoint "$E2E_UNDER4_A:51831"
}
# fresh_peers: A and B forget each other and learn again: no session state, no keypair.
fresh_peers() {
	in_ns "$NS_A" wg set "$IF_A" peer "$PUB_B" remove
	add_b
	in_ns "$NS_B" wg set "$IF_B" peer "$PUB_A" remove
	add_a
	[ "$(metric "$SESSIONS")" = 0 ] || e2e_fail "(h) A holds session state for fresh peers"
}
# sess_failed BASE WANT: A counted WANT session-state failures since BASE.
sess_failed() { [ $(($(metric "$SESS_FAILS") - $1)) -ge "$2" ]; }
# sess_after WHO BASE: after a spent hook, one failure counted and one session made.
sess_after() {
	local n
	n=$(($(metric "$SESS_FAILS") - $2))
	[ "$n" -eq 1 ] || e2e_fail "($1) $n session-state failures counted for 1 injected"
	[ "$(metric "$SESSIONS")" = 1 ] || e2e_fail "($1) A holds $(metric "$SESSIONS") sessions, not 1"
}
# sess_fail_arm: A and B fresh, A's next session-state allocation armed to fail; sets fail0.
sess_fail_arm() {
	fresh_peers
	fail0=$(metric "$SESS_FAILS")
	rm -f "$SESSION_FAIL"
	echo 1 >"$SESSION_FAIL"
}
# sess_fail_seen WHAT: the armed failure was counted after WHAT, and left no session state.
sess_fail_seen() {
	wait_until 15 sess_failed "$fail0" 1 ||
		e2e_fail "(h) $1, but no session-state failure was counted"
	[ "$(metric "$SESSIONS")" = 0 ] || e2e_fail "(h) A kept session state whose allocation failed"
}
if [ "$HOOKS" -eq 1 ] && [ "$CURL" -eq 1 ]; then
	sess_fail_arm
	# B initiates; its retransmission comes REKEY_TIMEOUT (5 s) later, so no answer now.
	! ping_ba >/dev/null || e2e_fail "(h) ping B->A answered while A's session state failed"
	sess_fail_seen "B's initiation reached A"
	grep -q "test hook: a session-state allocation fails" "$LOG_A" ||
		e2e_fail "(h) no test hook line in A's log"
	wait_for "ping B->A, the hook spent (B retransmits in 5 s)" 20 ping_ba
	sess_after h "$fail0"
	e2e_pass h "A as responder: B's initiation dropped, 1 failure counted, 0 sessions; B's retransmission makes 1, ping after"

	sess_fail_arm
	sent0=$(metric "$INITS_SENT")
	! ping_ab >/dev/null || e2e_fail "(h) ping A->B answered while A's session state failed"
	sess_fail_seen "A wanted a handshake"
	[ "$(metric "$INITS_SENT")" = "$sent0" ] ||
		e2e_fail "(h) A sent an initiation without session state"
	# (Its warning is rate limited with the handshake debug lines: count the hook's own.)
	[ "$(grep -c "test hook: a session-state allocation fails" "$LOG_A")" -eq 2 ] ||
		e2e_fail "(h) A's initiation did not meet the test hook"
	# The attempt took the rate limit: data asks again after REKEY_TIMEOUT (5 s).
	wait_for "ping A->B, the hook spent" 20 ping_ab
	sess_after h "$fail0"
	sent=$(($(metric "$INITS_SENT") - sent0))
	[ "$sent" -ge 1 ] || e2e_fail "(h) A's session came without an initiation of its own"
	rm -f "$SESSION_FAIL"
	e2e_pass h "A as initiator: no initiation sent, 1 failure counted, 0 sessions; the next attempt sends $sent, ping after"
else
	echo "NOTE: $WGATE has no test hooks or no curl: the session-state failures are left out"
fi

# ---- (i) the TUN device deleted under traffic: A exits cleanly with one line
e2e_spawn "$E2E_TMP/iperf3.i.log" ip netns exec "$NS_A" iperf3 -c 10.241.0.2 -t 10
IPERF_C=$E2E_LAST_PID
flood "$NS_B" 10.241.0.1 10
sleep 1
lines0=$(wc -l <"$LOG_A")
ip -n "$NS_A" link del "$IF_A"
wait_gone "$PID_A" 5 || e2e_fail "(i) A still runs 5 s after its device was deleted"
STOP_STATUS=0
wait "$PID_A" 2>/dev/null || STOP_STATUS=$?
e2e_forget_pid "$PID_A"
[ "$STOP_STATUS" -lt 128 ] || e2e_fail "(i) A died of signal $((STOP_STATUS - 128))"
tail -n +$((lines0 + 1)) "$LOG_A" >"$E2E_TMP/i.log"
[ "$(grep -c "is gone" "$E2E_TMP/i.log")" -eq 1 ] ||
	e2e_fail "(i) expected one 'is gone' line after the deletion: $(cat "$E2E_TMP/i.log")"
! grep -q ' error ' "$E2E_TMP/i.log" || e2e_fail "(i) error lines at exit: $(grep ' error ' "$E2E_TMP/i.log")"
[ ! -e "$(e2e_sock "$IF_A")" ] || e2e_fail "(i) A left its UAPI socket behind"
kill "$IPERF_C" "$FLOOD_PID" 2>/dev/null || true
e2e_pass i "device deleted under iperf3 and a flood ping: A exits (status $STOP_STATUS) with '$(grep "is gone" "$E2E_TMP/i.log" | sed 's/^[^ ]* [a-z]* *//')'"

pid_alive "$PID_B" || e2e_fail "wgate B exited"
if ! stop_pid "$PID_B" TERM 5; then
	# Where it hangs, for the report (seen once under TSan, not reproduced since).
	! command -v gdb >/dev/null || gdb -p "$PID_B" -batch -ex 'thread apply all bt' 2>&1 | tail -n 80
	e2e_fail "B still running 5 s after SIGTERM"
fi
kill "$IPERF_PID" 2>/dev/null || true
echo "faults.sh: all checks passed in $(e2e_elapsed_ms) ms"
