#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `systemd-analyze verify` on deploy/systemd/wgate@.service, as an instance (wg0),
# with ExecStart pointed at the wgate binary given as $1 (verify insists that it
# exists), and the exposure score of `systemd-analyze security` printed for the record.
# Skips (77) without systemd-analyze.
set -euo pipefail
unit=$(dirname "$0")/../../deploy/systemd/wgate@.service
wgate=${1:?usage: systemd_verify.sh WGATE_BINARY}
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not found (apt-get install systemd)"; exit 77; }

tmp=$(mktemp -d /tmp/wgt-systemd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/local/bin/wgate|$(realpath "$wgate")|" "$unit" >"$tmp/wgate@.service"
ln -s wgate@.service "$tmp/wgate@wg0.service"
if ! out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$tmp/wgate@wg0.service" 2>&1); then
	echo "FAIL: systemd-analyze verify: $out"
	exit 1
fi
# verify reports some problems on stderr and still exits 0.
if [ -n "$out" ]; then
	echo "FAIL: systemd-analyze verify complained: $out"
	exit 1
fi
echo "PASS systemd-analyze verify accepts wgate@wg0.service"
# The exposure score needs a running manager on some versions; report it when it works.
if score=$(systemd-analyze security --offline=yes "$tmp/wgate@wg0.service" 2>/dev/null | tail -n 1); then
	echo "INFO systemd-analyze security: $score"
fi
