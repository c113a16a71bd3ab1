#!/bin/sh
# SPDX-License-Identifier: MIT
# Container entrypoint: runs wgate in the foreground on the mounted
# /etc/wgate/$WGATE_INTERFACE.conf, or, when none is mounted, on a configuration
# built from environment variables:
#   WGATE_PRIVATE_KEY or WGATE_PRIVATE_KEY_FILE   the interface's key (one of them)
#   WGATE_LISTEN_PORT (51820)  WGATE_ADDRESS (comma list)  WGATE_MTU
#   WGATE_PEERS_DIR            a directory of *.conf files holding wg-quick [Peer] sections
#   WGATE_TUN_THREADS          worker threads (default: the CPUs the container sees)
#   WGATE_METRICS_LISTEN       /metrics, /healthz, /readyz (default 0.0.0.0:9586; "off": none)
# Arguments are passed on to wgate before the interface name (e.g. --log-format json).
# A mounted file is reloaded live when it changes; the generated one is built once.
set -eu

iface=${WGATE_INTERFACE:-wg0}
conf=${WGATE_CONFIG:-/etc/wgate/$iface.conf}

die() {
	echo "wgate-entrypoint: $*" >&2
	exit 1
}

if [ ! -e "$conf" ]; then
	if [ -z "${WGATE_PRIVATE_KEY:-}" ] && [ -z "${WGATE_PRIVATE_KEY_FILE:-}" ]; then
		die "no $conf mounted, and neither WGATE_PRIVATE_KEY nor WGATE_PRIVATE_KEY_FILE is set"
	fi
	if [ -n "${WGATE_PEERS_DIR:-}" ] && [ ! -d "$WGATE_PEERS_DIR" ]; then
		die "WGATE_PEERS_DIR $WGATE_PEERS_DIR is not a directory"
	fi
	umask 077
	conf=/var/lib/wgate/$iface.conf
	{
		echo "[Interface]"
		if [ -n "${WGATE_PRIVATE_KEY_FILE:-}" ]; then
			echo "PrivateKeyFile = $WGATE_PRIVATE_KEY_FILE"
		else
			echo "PrivateKey = $WGATE_PRIVATE_KEY"
		fi
		echo "ListenPort = ${WGATE_LISTEN_PORT:-51820}"
		if [ -n "${WGATE_ADDRESS:-}" ]; then echo "Address = $WGATE_ADDRESS"; fi
		if [ -n "${WGATE_MTU:-}" ]; then echo "MTU = $WGATE_MTU"; fi
		if [ -n "${WGATE_PEERS_DIR:-}" ]; then
			for f in "$WGATE_PEERS_DIR"/*.conf; do
				[ -f "$f" ] || continue
				printf '\n# from %s\n' "$f"
				cat "$f"
				echo
			done
		fi
	} >"$conf.tmp"
	mv -f "$conf.tmp" "$conf"
fi

metrics=${WGATE_METRICS_LISTEN:-0.0.0.0:9586}
[ "$metrics" = off ] && metrics=

# shellcheck disable=SC2086 # the optional flags are meant to split into two words
exec /usr/local/bin/wgate -f --config "$conf" \
	${WGATE_TUN_THREADS:+--tun-threads $WGATE_TUN_THREADS} \
	${metrics:+--metrics-listen $metrics} \
	"$@" "$iface"
