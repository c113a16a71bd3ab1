#!/bin/bash
# SPDX-License-Identifier: MIT
# Long libFuzzer runs of every harness in tests/fuzz/, merged into the checked-in seed corpora.
#
#   perf/fuzz.sh MINUTES [TARGET...]      e.g. perf/fuzz.sh 10, perf/fuzz.sh 0.5 replay conf
#
# Builds the harnesses with clang and -Dfuzzers=enabled in their own build
# directory, runs each TARGET (default: every tests/fuzz/fuzz_*.c) for
# MINUTES, FUZZ_JOBS targets at a time (default: the CPU count; when there
# are more CPUs than targets each target gets -fork=N workers), then merges
# what each run found that adds coverage into tests/fuzz/corpus/TARGET
# (-merge=1: only new-coverage inputs are added, the named seeds stay).
# Crash, leak, timeout and out-of-memory inputs are kept under the results
# folder. Prints one line per target; exits 1 on any finding.
#
# Environment: FUZZ_JOBS, FUZZ_BUILD (default build-fuzz-long),
# FUZZ_RESULTS (default perf/out/fuzz-DATE), FUZZ_MERGE=0 to leave the
# seed corpora untouched, FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	echo "usage: $0 MINUTES [TARGET...]   (targets: $(all_targets | tr '\n' ' '))" >&2
	exit 2
}

all_targets() {
	local f
	for f in tests/fuzz/fuzz_*.c; do
		f=${f##*/fuzz_}
		echo "${f%.c}"
	done
}

[ $# -ge 1 ] || usage
MINUTES=$1
shift
[[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage
SECONDS_EACH=$(awk -v m="$MINUTES" 'BEGIN { s = int(m * 60 + 0.5); print s < 1 ? 1 : s }')
if [ $# -gt 0 ]; then
	TARGETS=("$@")
else
	mapfile -t TARGETS < <(all_targets)
fi
for t in "${TARGETS[@]}"; do
	[ -f "tests/fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: no harness tests/fuzz/fuzz_$t.c" >&2; usage; }
done

JOBS=${FUZZ_JOBS:-$(nproc)}
BUILD=${FUZZ_BUILD:-build-fuzz-long}
RESULTS=${FUZZ_RESULTS:-perf/out/fuzz-$(date -u +%Y%m%dT%H%M%SZ)}
MERGE=${FUZZ_MERGE:-1}
read -r -a EXTRA <<<"${FUZZ_ARGS:-}"

command -v clang >/dev/null || { echo "fuzz.sh: needs clang: apt-get install clang libclang-rt-14-dev" >&2; exit 1; }
if [ ! -f "$BUILD/build.ninja" ]; then
	CC=clang meson setup "$BUILD" -Dwerror=true -Dfuzzers=enabled -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C "$BUILD" "${TARGETS[@]/#/tests/fuzz/fuzz_}" >/dev/null
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)

# Parallelism: up to JOBS targets at once; spare CPUs become fork workers.
FORK=1
if [ "$JOBS" -gt "${#TARGETS[@]}" ]; then
	FORK=$((JOBS / ${#TARGETS[@]}))
fi

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Counts files and bytes of a corpus directory: "FILES BYTES".
corpus_size() {
	find "$1" -maxdepth 1 -type f -printf '%s\n' 2>/dev/null | awk '{ n++; b += $1 } END { printf "%d %d\n", n, b }'
}

run_target() {
	local t=$1 dir="$RESULTS/$1" fork=() rc=0
	mkdir -p "$dir/new"
	[ "$FORK" -gt 1 ] && fork=(-fork="$FORK")
	# New inputs go to $dir/new; the checked-in seeds are only read here.
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		"$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$dir/" "${fork[@]}" "${EXTRA[@]}" "$dir/new" "tests/fuzz/corpus/$t" \
		>"$dir/log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
}

for t in "${TARGETS[@]}"; do
	mkdir -p "$RESULTS/$t"
	corpus_size "tests/fuzz/corpus/$t" >"$RESULTS/$t/before"
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
	echo "fuzz.sh: $t for ${SECONDS_EACH}s (fork=$FORK) -> $RESULTS/$t/log"
	run_target "$t" &
	pids+=($!)
done
wait

status=0
lines=()
for t in "${TARGETS[@]}"; do
	dir="$RESULTS/$t"
	rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
	# Executions: the final stats, else the last "#N" status line (fork mode).
	execs=$(awk -F: '/stat::number_of_executed_units/ { gsub(/ /, "", $3); n = $3 } END { print n + 0 }' "$dir/log")
	if [ "$execs" -eq 0 ]; then
		execs=$(grep -oE '^#[0-9]+' "$dir/log" | tail -n 1 | tr -d '#' || true)
		execs=${execs:-0}
	fi
	secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$dir/log" | awk '{ print $5 }' | tail -n 1 || true)
	secs=${secs:-$SECONDS_EACH}
	[ "$secs" -gt 0 ] || secs=1
	findings=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
		-o -name 'oom-*' \) -printf '%p ' | sed 's/ $//')
	if [ -z "$findings" ] && [ "$rc" -ne 0 ]; then
		findings="exit $rc without an artifact, see $dir/log"
	fi
	if [ "$MERGE" = 1 ] && [ -z "$findings" ]; then
		# Adds to the seed corpus only the inputs that bring new coverage.
		"$BUILD/tests/fuzz/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$dir/new" >"$dir/merge.log" 2>&1 ||
			findings="merge failed, see $dir/merge.log"
	fi
	read -r bf bb <"$dir/before"
	read -r af ab < <(corpus_size "tests/fuzz/corpus/$t")
	[ -n "$findings" ] && status=1
	lines+=("$(printf '%-10s %s min, %s execs, %s exec/s, corpus %s files %s B -> %s files %s B, findings: %s' \
		"$t" "$MINUTES" "$execs" "$((execs / secs))" "$bf" "$bb" "$af" "$ab" "${findings:-0}")")
done
printf '%s\n' "${lines[@]}" | tee "$RESULTS/summary"
exit $status
