# SPDX-License-Identifier: MIT
# Shared helpers for the netns end-to-end scripts: namespaces joined by a veth pair,
# daemons that take the wireguard-go command line, keys from `wg`, polling waits, and
# one cleanup that leaves nothing behind (processes, namespaces, UAPI sockets, files).
#
# Source it from a script that runs under `set -euo pipefail`, then call e2e_init:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_require_root wg ip ping
#   e2e_init tunnel
#
# Names carry the script's PID ($$): namespaces wgt$$a, wgt$$b, ..., veths wgtva$$/wgtvb$$.
# /var/run/wireguard is one directory for every namespace, so every daemon of a run
# needs its own interface name (wga$$, wgb$$, ...); start_impl records each one so that
# cleanup removes a socket a crashed daemon left behind.
#
# Addresses, all private: underlay 192.168.241.0/24 and fd00:241::/64 on the veth,
# tunnel 10.241.0.0/24 and fd00:ab::/64; side A is .1 / ::1, side B is .2 / ::2.

# The E2E_ values are for the scripts that source this; `A && B || e2e_fail` is meant.
# shellcheck shell=bash disable=SC2034,SC2015

E2E_UNDER4_A=192.168.241.1
E2E_UNDER4_B=192.168.241.2
E2E_UNDER6_A=fd00:241::1
E2E_UNDER6_B=fd00:241::2
E2E_TUN4_A=10.241.0.1
E2E_TUN4_B=10.241.0.2
E2E_TUN6_A=fd00:ab::1
E2E_TUN6_B=fd00:ab::2
E2E_SOCK_DIR=/var/run/wireguard

E2E_TMP=
E2E_NETNS=()    # namespaces we made, deleted last
E2E_PIDS=()     # background children we started, stopped first
E2E_IFACES=()   # interface names whose UAPI socket is ours
E2E_LOGS=()     # "TITLE=PATH", printed when the script fails
E2E_DAEMONS=()  # "TITLE=PID" of start_impl's daemons, reported if dead at a failure
E2E_START_NS=0

e2e_skip() {
	echo "SKIP: $*"
	exit 77
}

# To the script's own stdout (fd 9 once e2e_init ran), so that the message gets out
# of a wait_for condition, whose output goes to /dev/null, and out of a $(...).
e2e_fail() {
	if { true >&9; } 2>/dev/null; then
		echo "FAIL: $*" >&9
	else
		echo "FAIL: $*"
	fi
	exit 1
}

# e2e_pass CHECK TEXT: the one summary line of a check.
e2e_pass() {
	local check=$1

	shift
	printf 'PASS %-4s %s\n' "$check" "$*"
}

# e2e_require_root TOOL...: skips unless root with every tool and a TUN device.
e2e_require_root() {
	local tool

	[ "$(id -u)" -eq 0 ] || e2e_skip "needs root (network namespaces and a TUN device)"
	for tool in "$@"; do
		command -v "$tool" >/dev/null ||
			e2e_skip "$tool not found: apt-get install wireguard-go wireguard-tools iproute2 iputils-ping iperf3 python3"
	done
	[ -c /dev/net/tun ] || e2e_skip "/dev/net/tun is missing"
	# Daemons start with SIGINT at its default action, as under a service manager,
	# and not ignored as bash leaves it for background jobs.
	env --default-signal=INT true 2>/dev/null || e2e_skip "env --default-signal needs coreutils >= 8.31"
}

# e2e_require_impl PATH: an implementation must be an executable path. A bare name
# (meson passes 'wireguard-go' when it found none) that is not installed is a skip.
e2e_require_impl() {
	if [ -n "$1" ] && [[ $1 != */* ]] && ! command -v "$1" >/dev/null; then
		e2e_skip "$1 not found: apt-get install $1"
	fi
	[ -n "$1" ] && [ -x "$(command -v "$1")" ] || e2e_fail "implementation '$1' is not an executable file"
}

# e2e_init NAME: temp directory and the cleanup trap.
e2e_init() {
	E2E_TMP=$(mktemp -d "/tmp/wgt-$1.XXXXXX")
	E2E_START_NS=$(date +%s%N)
	umask 077
	exec 9>&1
	# A command that fails outside an explicit check still says what it was.
	set -E
	trap 'e2e_on_err $? "$BASH_COMMAND"' ERR
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
}

# e2e_on_err STATUS COMMAND: once per run, with the chain of calls that led
# there; to stderr, since inside $(...) stdout would be swallowed.
e2e_on_err() {
	local i where=

	[ ! -e "$E2E_TMP/.err" ] || return 0
	: >"$E2E_TMP/.err"
	for ((i = 1; i < ${#FUNCNAME[@]}; i++)); do
		where+=" <- ${FUNCNAME[i]} (${BASH_SOURCE[i]##*/}:${BASH_LINENO[i - 1]})"
	done
	echo "FAIL: '$2' exited $1$([ "$1" -ne 124 ] || echo " (timed out)") in${where# <-}" >&2
}

e2e_elapsed_ms() {
	echo $((($(date +%s%N) - E2E_START_NS) / 1000000))
}

# pid_alive PID: running, and not a zombie waiting to be reaped.
pid_alive() {
	local state

	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "${state:0:1}" != Z ]
}

# wait_gone PID SECONDS: 0 once PID has exited, 1 if it still runs after SECONDS.
wait_gone() {
	local pid=$1 tries=$(($2 * 20))

	while pid_alive "$pid"; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.05
	done
	return 0
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
	local what=$1 secs=$2 tries=$(($2 * 20))

	shift 2
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || e2e_fail "timed out after $secs s waiting for $what"
		sleep 0.05
	done
}

# wait_until SECONDS COMMAND...: as wait_for, but returns 1 on timeout instead of failing.
wait_until() {
	local tries=$(($1 * 20))

	shift
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.05
	done
}

# in_ns NS COMMAND...: COMMAND in NS, killed after E2E_CMD_TIMEOUT (20) seconds, so that
# a daemon that hangs on a UAPI request, or an iperf3 whose peer died, fails the run
# (status 124) instead of hanging it.
in_ns() {
	local ns=$1

	shift
	timeout --kill-after=2 "${E2E_CMD_TIMEOUT:-20}" ip netns exec "$ns" "$@"
}

# ns_add NAME: a namespace with loopback up, deleted by cleanup.
ns_add() {
	ip netns add "$1"
	E2E_NETNS+=("$1")
	ip -n "$1" link set lo up
}

# veth_pair NS_A NS_B: joins two namespaces with the IPv4 and IPv6 underlay.
# nodad: the addresses are usable at once, without waiting out duplicate detection.
veth_pair() {
	local ns_a=$1 ns_b=$2 va=wgtva$$ vb=wgtvb$$

	va=${va:0:15}
	vb=${vb:0:15}
	ip link add "$va" netns "$ns_a" type veth peer name "$vb" netns "$ns_b"
	ip -n "$ns_a" addr add "$E2E_UNDER4_A/24" dev "$va"
	ip -n "$ns_b" addr add "$E2E_UNDER4_B/24" dev "$vb"
	ip -n "$ns_a" addr add "$E2E_UNDER6_A/64" dev "$va" nodad
	ip -n "$ns_b" addr add "$E2E_UNDER6_B/64" dev "$vb" nodad
	ip -n "$ns_a" link set "$va" up
	ip -n "$ns_b" link set "$vb" up
}

# two_sides IF_PREFIX: namespaces NS_A and NS_B joined by the veth underlay, and the
# interface names IF_A and IF_B (IF_PREFIX + a/b + PID, cut to IFNAMSIZ).
two_sides() {
	NS_A=wgt$$a
	NS_B=wgt$$b
	IF_A=$1a$$
	IF_B=$1b$$
	IF_A=${IF_A:0:15}
	IF_B=${IF_B:0:15}
	ns_add "$NS_A"
	ns_add "$NS_B"
	veth_pair "$NS_A" "$NS_B"
}

# tun_addr NS IFACE ADDR4/LEN ADDR6/LEN: tunnel addresses and link up.
tun_addr() {
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$1" addr add "$4" dev "$2" nodad
	ip -n "$1" link set "$2" up
}

e2e_sock() {
	echo "$E2E_SOCK_DIR/$1.sock"
}

# e2e_own_iface IFACE: cleanup removes this interface's socket if a daemon leaves it.
e2e_own_iface() {
	E2E_IFACES+=("$1")
}

e2e_add_log() {
	E2E_LOGS+=("$1=$2")
}

# e2e_spawn LOG COMMAND...: COMMAND in the background, stdout and stderr to LOG, as
# a daemon would be started: umask 022 (so that a socket's mode is the daemon's own
# doing) and SIGINT at its default action. Sets E2E_LAST_PID; exec keeps it the
# PID of COMMAND itself (ip netns exec execs too).
e2e_spawn() {
	local log=$1

	shift
	(
		umask 022
		exec env --default-signal=INT "$@"
	) >"$log" 2>&1 9>&- &
	E2E_LAST_PID=$!
	E2E_PIDS+=("$E2E_LAST_PID")
}

# e2e_forget_pid PID: a child the script has reaped itself.
e2e_forget_pid() {
	local i

	for i in "${!E2E_PIDS[@]}"; do
		[ "${E2E_PIDS[$i]}" != "$1" ] || unset "E2E_PIDS[$i]"
	done
	for i in "${!E2E_DAEMONS[@]}"; do
		[ "${E2E_DAEMONS[$i]##*=}" != "$1" ] || unset "E2E_DAEMONS[$i]"
	done
}

# impl_is_wgate IMPL: the basename decides which extra flags an implementation takes.
impl_is_wgate() {
	[ "$(basename "$1")" = wgate ]
}

# uapi_ready NS IFACE PID: the socket exists and `wg show` answers through it.
uapi_ready() {
	pid_alive "$3" || e2e_fail "$(basename "$4") for $2 exited before its UAPI socket was ready"
	[ -S "$(e2e_sock "$2")" ] && in_ns "$1" wg show "$2"
}

# start_impl NS IMPL IFACE [EXTRA...]: `ip netns exec NS IMPL -f [EXTRA...] IFACE` in the
# background, output to $E2E_TMP/IFACE.log, then waits (10 s at most) for the socket
# and an answer to `wg show IFACE`. Sets IMPL_PID. LOG_LEVEL=verbose is what makes
# wireguard-go log; an implementation that ignores it loses nothing.
start_impl() {
	local ns=$1 impl=$2 iface=$3 log="$E2E_TMP/$3.log"

	shift 3
	e2e_own_iface "$iface"
	e2e_add_log "$(basename "$impl") $iface in $ns" "$log"
	e2e_spawn "$log" LOG_LEVEL="${LOG_LEVEL:-verbose}" ip netns exec "$ns" "$impl" -f "$@" "$iface"
	IMPL_PID=$E2E_LAST_PID
	E2E_DAEMONS+=("$(basename "$impl") $iface in $ns=$IMPL_PID")
	wait_for "the UAPI socket $(e2e_sock "$iface") of $(basename "$impl")" 10 \
		uapi_ready "$ns" "$iface" "$IMPL_PID" "$impl"
}

# stop_pid PID SIGNAL SECONDS: sends SIGNAL and reaps the child; 1 if it outlives SECONDS.
# The exit status is left in STOP_STATUS.
stop_pid() {
	local pid=$1

	STOP_STATUS=
	kill -s "$2" "$pid" 2>/dev/null || true
	wait_gone "$pid" "$3" || return 1
	STOP_STATUS=0
	wait "$pid" 2>/dev/null || STOP_STATUS=$?
	e2e_forget_pid "$pid"
}

# wgate's counters (its SIGUSR1 dump: one "worker N: rx ..." line per worker, then a
# "control: ..." line).
dumps_in() {
	[ "$(grep -c ' control: ' "$1")" -gt "$2" ]
}
# counters_dump LOG PID: SIGUSR1, then wait until the new dump is in LOG.
counters_dump() {
	local n

	n=$(grep -c ' control: ' "$1" || true)
	kill -USR1 "$2"
	wait_until 5 dumps_in "$1" "$n" || e2e_fail "no counter dump in $1 after SIGUSR1"
}
# worker_counts LOG PID WORKERS: a new dump, then "RX TX" (packets) for each of the
# WORKERS workers, one line each.
worker_counts() {
	counters_dump "$1" "$2"
	awk '/ worker [0-9]+: rx / { sub(":", "", $4); w[$4] = $6 " " $11 }
	     / control: / { n = 0; for (k in w) n++; for (i = 0; i < n; i++) print w[i]; delete w }' "$1" |
		tail -n "$3"
}

# wg_keys NAME: $E2E_TMP/NAME.key (private) and NAME.pub, made by the real tool.
wg_keys() {
	wg genkey >"$E2E_TMP/$1.key"
	wg pubkey <"$E2E_TMP/$1.key" >"$E2E_TMP/$1.pub"
}

e2e_print_logs() {
	local entry

	for entry in "${E2E_DAEMONS[@]}"; do
		pid_alive "${entry#*=}" || echo "NOTE: ${entry%%=*} (pid ${entry#*=}) is not running"
	done
	for entry in "${E2E_LOGS[@]}"; do
		[ -s "${entry#*=}" ] || continue
		echo "---- ${entry%%=*}: last 40 lines of its log ----"
		tail -n 40 "${entry#*=}"
	done
}

# e2e_check_sanitizers: 1 (and the report) if a daemon log holds a sanitizer report.
e2e_check_sanitizers() {
	local entry found=0

	for entry in "${E2E_LOGS[@]}"; do
		[ -s "${entry#*=}" ] || continue
		if grep -qE 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' \
			"${entry#*=}"; then
			echo "FAIL: sanitizer report in the log of ${entry%%=*}:"
			grep -A30 -E 'WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' \
				"${entry#*=}" | head -n 80
			found=1
		fi
	done
	return "$found"
}

# kill_and_reap PID: TERM, 2 s of grace, then KILL. Reaps it if it is our child.
kill_and_reap() {
	kill "$1" 2>/dev/null || return 0
	wait_gone "$1" 2 || kill -KILL "$1" 2>/dev/null
	wait_gone "$1" 2
	wait "$1" 2>/dev/null
}

e2e_cleanup() {
	local rc=$? pid ns iface

	set +e
	trap - ERR
	# Before the kills, so that the tail shows the failure and not the shutdown.
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		# To fd 9 when open: a failure inside wait_for runs this with stdout on /dev/null.
		if { true >&9; } 2>/dev/null; then
			e2e_print_logs >&9
		else
			e2e_print_logs
		fi
	fi
	for pid in "${E2E_PIDS[@]}"; do
		kill_and_reap "$pid"
	done
	# Whatever still runs in our namespaces: daemons that forked into the background.
	for ns in "${E2E_NETNS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill_and_reap "$pid"
		done
	done
	for ns in "${E2E_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	# Sanitizer builds (run.sh runs this suite under ThreadSanitizer): a report in any
	# daemon's log fails the test, even when every check passed. After the kills, so
	# the reports a daemon prints at exit are in.
	e2e_check_sanitizers || rc=1
	for iface in "${E2E_IFACES[@]}"; do
		rm -f "$(e2e_sock "$iface")"
	done
	[ -n "$E2E_TMP" ] && rm -rf "$E2E_TMP"
	exit "$rc"
}
