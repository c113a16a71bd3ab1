# SPDX-License-Identifier: MIT
# Helpers shared by perf/bench.sh, bench_peers.sh, bench_loadgen.sh and bench_scale.sh:
# tools, the daemon and the loadgen, a private TMP and its teardown, CPU time from /proc,
# medians over runs. Sourced; expects ROOT, and TMP for median/count.
# shellcheck shell=bash

# bench_help: prints the calling script's header comment (line 3 up to `set -euo`) as its
# usage text.
bench_help() {
	sed -n '3,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

# bench_no_args ARGS...: for the benchmarks set only by the environment: -h/--help
# prints the usage and exits 0, any other argument exits 2.
bench_no_args() {
	case ${1:-} in
	"") ;;
	-h | --help)
		bench_help
		exit 0
		;;
	*)
		echo "$0: no arguments (the environment sets it; see --help)" >&2
		exit 2
		;;
	esac
}
# bench_count NAME VALUE [MAX]: exits 2, naming the setting NAME, unless VALUE is an
# integer from 1 to MAX (no limit without MAX).
bench_count() {
	[[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "$0: $1 must be a positive integer" >&2; exit 2; }
	[ -z "${3:-}" ] || [ "$2" -le "$3" ] || { echo "$0: $1 must be 1..$3" >&2; exit 2; }
}
# bench_netns_pair NS1 NS2 VETH1 VETH2 NET: two namespaces (lo up) joined by a veth
# pair, VETH1 in NS1 as NET.1/24 and VETH2 in NS2 as NET.2/24 (NET: three octets).
bench_netns_pair() {
	ip netns add "$1"
	ip netns add "$2"
	ip -n "$1" link set lo up
	ip -n "$2" link set lo up
	ip link add "$3" netns "$1" type veth peer name "$4" netns "$2"
	ip -n "$1" addr add "$5.1/24" dev "$3"
	ip -n "$2" addr add "$5.2/24" dev "$4"
	ip -n "$1" link set "$3" up
	ip -n "$2" link set "$4" up
}
# bench_root: exits 1 with one line unless root with /dev/net/tun.
bench_root() {
	[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (network namespaces, TUN devices)" >&2; exit 1; }
	[ -c /dev/net/tun ] || { echo "$0: /dev/net/tun is missing" >&2; exit 1; }
}

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms; returns 1 on timeout.
wait_for() {
	local tries=$(($1 * 20))

	shift
	until "$@" >/dev/null 2>&1; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 1
		sleep 0.05
	done
}

# bench_tools NEEDS_WGATE: installs from Debian what is missing (apt-get update first).
bench_tools() {
	local tool missing=()
	local -A pkg_of=([iperf3]=iperf3 [wg]=wireguard-tools [wireguard-go]=wireguard-go
		[gnuplot]=gnuplot-nox [ip]=iproute2 [ping]=iputils-ping [ss]=iproute2 [jq]=jq
		[timeout]=coreutils [git]=git)

	if [ "$1" -eq 1 ]; then
		pkg_of+=([meson]=meson [ninja]=ninja-build [pkg-config]=pkg-config)
	fi
	for tool in "${!pkg_of[@]}"; do
		command -v "$tool" >/dev/null || missing+=("${pkg_of[$tool]}")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "installing: ${missing[*]}" >&2
		apt-get update -q >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
	fi
}

# bench_wgate: sets WGATE to the daemon: WGATE, else a release build in build-release/,
# brought up to date first. (Not build/, the test suite's debug build: it may be older
# than the tree, and the results would carry the tree's revision.)
bench_wgate() {
	if [ -n "${WGATE:-}" ]; then
		[ -x "$WGATE" ] || { echo "$0: WGATE=$WGATE is not executable" >&2; exit 1; }
	else
		echo "building wgate in $ROOT/build-release (release)" >&2
		[ -d "$ROOT/build-release" ] ||
			meson setup "$ROOT/build-release" "$ROOT" -Dbuildtype=release >&2
		ninja -C "$ROOT/build-release" gateway/wgate >&2
		WGATE=$ROOT/build-release/gateway/wgate
	fi
	WGATE=$(readlink -f "$WGATE")
}

# bench_loadgen: sets LOADGEN to perf/wgate-loadgen: LOADGEN, else the one in
# build-release/ (made by bench_wgate), brought up to date first.
bench_loadgen() {
	if [ -z "${LOADGEN:-}" ]; then
		ninja -C "$ROOT/build-release" perf/wgate-loadgen >&2
		LOADGEN=$ROOT/build-release/perf/wgate-loadgen
	fi
	[ -x "$LOADGEN" ] || { echo "$0: LOADGEN=$LOADGEN is not executable" >&2; exit 1; }
}

# bench_tmp NAME SOCKETS: makes TMP, /tmp/wgate-NAME.XXXXXX, private (umask 077), with an
# empty $TMP/netns; at exit (or INT, TERM) bench_cleanup tears down what it lists.
# SOCKETS: a glob of the UAPI sockets in /var/run/wireguard to remove then.
bench_tmp() {
	TMP=$(mktemp -d "/tmp/wgate-$1.XXXXXX")
	BENCH_SOCKETS=$2
	umask 077
	: >"$TMP/netns"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

# bench_cleanup: kills what runs in the namespaces listed in $TMP/netns, deletes them,
# the sockets matching BENCH_SOCKETS and TMP, and exits with the status it came with.
bench_cleanup() {
	local rc=$? ns pid

	set +e
	while read -r ns; do
		[ -n "$ns" ] || continue
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done <"$TMP/netns"
	# shellcheck disable=SC2086 # a glob
	rm -f /var/run/wireguard/$BENCH_SOCKETS
	rm -rf "$TMP"
	exit "$rc"
}

log() { echo "[$(date +%T)] $*" >&2; }

# uapi_ready NS IFACE: the daemon's UAPI socket answers.
uapi_ready() {
	[ -S "/var/run/wireguard/$2.sock" ] && ip netns exec "$1" wg show "$2"
}

# proc_cpu PID: utime+stime of the whole process (all threads), in clock ticks.
proc_cpu() {
	local stat

	stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	stat=${stat##*) }
	# After "pid (comm) ", field 3 (state) is word 1: utime and stime are words 12, 13.
	awk '{ print $12 + $13 }' <<<"$stat"
}

# thread_cpu PID: one "TID COMM TICKS" line per thread.
thread_cpu() {
	local t stat comm

	for t in /proc/"$1"/task/*; do
		stat=$(cat "$t/stat" 2>/dev/null) || continue
		comm=$(cat "$t/comm" 2>/dev/null) || comm=?
		comm=${comm// /_}
		stat=${stat##*) }
		awk -v tid="${t##*/}" -v c="$comm" '{ print tid, c, $12 + $13 }' <<<"$stat"
	done | sort -n
}

# Results: one file per (configuration, run), $TMP/res/CONFIG.RUN, of "KEY VALUE" lines.
# median KEY CONFIG: the median over the runs of CONFIG, or "-" when there is no value.
median() {
	cat "$TMP"/res/"$2".* 2>/dev/null | awk -v k="$1" '$1 == k && $2 != "NA" { print $2 }' |
		sort -g | awk '{ a[NR] = $1 }
			END { if (!NR) print "-"; else if (NR % 2) print a[(NR + 1) / 2];
			      else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# count KEY CONFIG: how many runs of CONFIG recorded KEY.
count() {
	cat "$TMP"/res/"$2".* 2>/dev/null | awk -v k="$1" '$1 == k { n++ } END { print n + 0 }'
}

# wgate_worker_counts LOG PID: "N RX_PACKETS TX_PACKETS TUN_WRITES" per worker of the wgate
# PID that logs to LOG, from the counters it logs on SIGUSR1 (nothing if LOG is not a
# wgate log or no dump came within 5 s).
wgate_worker_counts() {
	local log=$1 n tries=100

	grep -q "worker threads" "$log" 2>/dev/null || return 0
	n=$(grep -c ' control: ' "$log" || true)
	kill -USR1 "$2" 2>/dev/null || return 0
	until [ "$(grep -c ' control: ' "$log" || true)" -gt "$n" ]; do
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || return 0
		sleep 0.05
	done
	# The last dump: its worker lines come just before its control line.
	awk '/ worker [0-9]+: rx / { sub(":", "", $4); tw = 0
	                            for (i = 1; i < NF - 1; i++) if ($i == "tun" && $(i + 1) == "writes") tw = $(i + 2)
	                            w[$4] = $4 " " $6 " " $11 " " tw }
	     / control: / { out = ""; for (k in w) out = out w[k] "\n"; delete w }
	     END { printf "%s", out }' "$log" | sort -n
}

# runs_csv: every run's values as "config,run,key,value" lines.
runs_csv() {
	local f b

	for f in "$TMP"/res/*; do
		[ -e "$f" ] || continue
		b=${f##*/}
		awk -v c="${b%.*}" -v r="${b##*.}" '{ print c "," r "," $1 "," $2 }' "$f"
	done
}
