#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds wgate and runs it in the foreground on a generated default config
# (as root on Debian 12), configured the way wg-quick would: `wg setconf` with
# the stripped file, then the address and the link. Re-running keeps the key.
set -euo pipefail
cd "$(dirname "$0")/.."

IFACE=${WGATE_IFACE:-wg0}
CONF_DIR=${WGATE_CONF_DIR:-/etc/wgate}
PORT=${WGATE_PORT:-51820}

if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: run as root (it installs packages and creates a TUN device)" >&2
	exit 1
fi

PACKAGES=(gcc meson ninja-build pkg-config libssl-dev libev-dev libjemalloc-dev check liburcu-dev libmnl-dev
	wireguard-tools iproute2)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y --no-install-recommends "${missing[@]}"
fi

[ -f build/build.ninja ] || meson setup build -Dbuildtype=release >/dev/null
ninja -C build >/dev/null

mkdir -p "$CONF_DIR"
chmod 0700 "$CONF_DIR"
conf="$CONF_DIR/$IFACE.conf"
if [ ! -f "$conf" ]; then
	umask 077
	key=$(wg genkey)
	cat >"$conf" <<CONF
[Interface]
PrivateKey = $key
ListenPort = $PORT
Address = 10.77.0.1/24
CONF
	echo "quickstart: generated $conf (public key $(printf '%s' "$key" | wg pubkey))"
fi

address=$(sed -n 's/^Address *= *//p' "$conf" | head -n1)
build/gateway/wgate -f "$IFACE" &
pid=$!
trap 'kill "$pid" 2>/dev/null' INT TERM EXIT
for _ in $(seq 100); do
	[ -S "/var/run/wireguard/$IFACE.sock" ] && break
	kill -0 "$pid" 2>/dev/null || exit 1
	sleep 0.1
done
wg setconf "$IFACE" <(wg-quick strip "$conf")
for a in ${address//,/ }; do
	ip address add "$a" dev "$IFACE"
done
ip link set "$IFACE" up
echo "quickstart: $IFACE is up on UDP port $(wg show "$IFACE" listen-port); Ctrl-C stops it"
wait "$pid"
