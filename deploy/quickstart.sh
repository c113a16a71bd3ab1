#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds wgate and runs it in the foreground on a generated default config
# (as root on Debian 12). Re-running keeps the generated key.
set -euo pipefail
cd "$(dirname "$0")/.."

IFACE=${WGATE_IFACE:-wg0}
CONF_DIR=${WGATE_CONF_DIR:-/etc/wgate}
PORT=${WGATE_PORT:-51820}

if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: run as root (it installs packages and creates a TUN device)" >&2
	exit 1
fi

PACKAGES=(gcc meson ninja-build pkg-config libssl-dev libev-dev libjemalloc-dev check wireguard-tools)
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

if [ ! -x build/gateway/wgate ]; then
	echo "quickstart: the protocol core is built (build/), but the wgate daemon is not part of" \
		"this version yet; see ARCHITECTURE.md" >&2
	exit 1
fi
exec build/gateway/wgate -f --config "$conf" "$IFACE"
