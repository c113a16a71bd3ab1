#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds wgate and runs every test suite: unit (also under ASan/UBSan),
# fuzz smoke runs, and the root-only end-to-end tests. On a fresh Debian
# machine as root it first installs what is missing. The last line printed
# is the summary `N passed, N failed, N skipped`.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
	gcc meson ninja-build pkg-config python3
	libssl-dev libev-dev libjemalloc-dev check liburcu-dev libmnl-dev libcap-ng-dev libmicrohttpd-dev
	clang libclang-rt-14-dev
	libqrencode-dev libpng-dev zbar-tools nftables
	wireguard-go wireguard-tools iproute2 iputils-ping iperf3 libcap2-bin util-linux
	prometheus curl
	libsystemd-dev systemd
	podman runc debootstrap
)

install_missing() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "run.sh: missing packages (${missing[*]}); run as root to install them" >&2
		return 1
	fi
	echo "run.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y --no-install-recommends "${missing[@]}"
}

install_missing
# The Kubernetes manifests' validator runs on node; this machine kind ships node and npm
# (nodesource), Debian's packages serve where they are missing.
if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi

# setup_build DIR [meson options...]: configure once, reconfigure if the options changed.
setup_build() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
}

rc=0
logs=()

# 1. The normal build, warnings as errors: every suite.
setup_build build -Dwerror=true -Dbuildtype=debugoptimized -Dtest_hooks=true
meson test -C build --print-errorlogs || rc=1
logs+=(build/meson-logs/testlog.json)

# 2. Unit suites under AddressSanitizer and UndefinedBehaviorSanitizer, and one e2e
#    script, faults.sh (~40 s: faults under traffic), whose daemons' logs must hold no
#    ASan, LeakSanitizer or UBSan report.
CK_FORK=no setup_build build-asan -Dwerror=true -Db_sanitize=address,undefined \
	-Db_lundef=false -Dbuildtype=debug -Dfuzzers=disabled -Dtest_hooks=true
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 CK_FORK=no \
	meson test -C build-asan --suite unit --print-errorlogs || rc=1
logs+=(build-asan/meson-logs/testlog.json)
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --logbase faults faults_wgate --print-errorlogs || rc=1
logs+=(build-asan/meson-logs/faults.json)

# 3. The threaded code under ThreadSanitizer: the unit suites and the
#    end-to-end suite, whose scripts fail on any TSan report in a daemon log.
setup_build build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false \
	-Dbuildtype=debugoptimized -Dfuzzers=disabled -Dtest_hooks=true
# The single-threaded differential cases add nothing under TSan and are slow there.
TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1" CK_FORK=no WGT_E2E_TSAN=1 \
	CK_EXCLUDE_CASES=random,differential \
	meson test -C build-tsan --suite unit --suite e2e --print-errorlogs || rc=1
logs+=(build-tsan/meson-logs/testlog.json)

# 4. libFuzzer smoke runs (clang), a bounded number of runs per harness.
if command -v clang >/dev/null; then
	CC=clang setup_build build-fuzz -Dwerror=true -Dfuzzers=enabled -Dbuildtype=debugoptimized
	meson test -C build-fuzz --suite fuzz --print-errorlogs || rc=1
	logs+=(build-fuzz/meson-logs/testlog.json)
fi

python3 - "${logs[@]}" <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $rc
