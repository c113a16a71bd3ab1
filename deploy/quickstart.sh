#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A first run that connects a client (as root on Debian 12): installs what is
# missing, builds wgate (release), and on the first run creates the state
# directory with the gateway's config and one client; prints the client's
# config and its QR code, then runs wgate in the foreground with --config.
# Re-running keeps the keys and the clients. `--help` lists the options.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
	cat <<'USAGE'
Usage: deploy/quickstart.sh [OPTIONS]

  --dir DIR          state directory, mode 0700 (default /etc/wgate; env WGATE_DIR)
  --iface NAME       interface, also the config's name DIR/NAME.conf (default wg0; WGATE_IFACE)
  --port N           UDP listen port (default 51820; WGATE_PORT)
  --address A4,A6    the gateway's tunnel addresses (default 10.77.0.1/24,fd00:77::1/64;
                     WGATE_ADDRESS)
  --endpoint HOST[:PORT]  where clients reach the gateway (default: the source address
                     of the default route, and the port; WGATE_ENDPOINT)
  --client NAME      the first client's name (default client1; WGATE_CLIENT)
  --qr-png FILE      also write the client's QR code to FILE as a PNG
  --forwarding       (OFF by default) IPv4/IPv6 forwarding and an nftables masquerade
                     rule, so that clients reach the network behind the gateway
                     (deploy/forwarding.sh; WGATE_FORWARDING=1)
  --wgate PATH       use this wgate binary instead of building one
  --no-run           prepare everything, print the client, but do not start wgate
  -h, --help         this text

The first run writes DIR/IFACE.conf (private key from `wg genkey`) and adds the
client with `wgate peer add`; later runs keep both and print the client again.
More clients: build/gateway/wgate peer add NAME --config DIR/IFACE.conf --qr
USAGE
}

DIR=${WGATE_DIR:-${WGATE_CONF_DIR:-/etc/wgate}}
IFACE=${WGATE_IFACE:-wg0}
PORT=${WGATE_PORT:-51820}
ADDRESS=${WGATE_ADDRESS:-10.77.0.1/24,fd00:77::1/64}
ENDPOINT=${WGATE_ENDPOINT:-}
CLIENT=${WGATE_CLIENT:-client1}
FORWARDING=${WGATE_FORWARDING:-0}
WGATE=
QR_PNG=
RUN=1

die() {
	echo "quickstart: $*" >&2
	exit 1
}

need_arg() {
	[ $# -ge 2 ] || die "$1 needs an argument (see --help)"
}

while [ $# -gt 0 ]; do
	case $1 in
	--dir) need_arg "$@"; DIR=$2; shift ;;
	--iface) need_arg "$@"; IFACE=$2; shift ;;
	--port) need_arg "$@"; PORT=$2; shift ;;
	--address) need_arg "$@"; ADDRESS=$2; shift ;;
	--endpoint) need_arg "$@"; ENDPOINT=$2; shift ;;
	--client) need_arg "$@"; CLIENT=$2; shift ;;
	--qr-png) need_arg "$@"; QR_PNG=$2; shift ;;
	--wgate) need_arg "$@"; WGATE=$2; shift ;;
	--forwarding) FORWARDING=1 ;;
	--no-run | --prepare-only) RUN=0 ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option '$1' (see --help)" ;;
	esac
	shift
done

[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] ||
	die "--port: '$PORT' is not a port from 1 to 65535"
[[ $IFACE =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "--iface: '$IFACE' is not an interface name"
[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and creates a TUN device)"

# What the build and this script need (tests/run.sh holds the same build list).
PACKAGES=(gcc meson ninja-build pkg-config libssl-dev libev-dev libjemalloc-dev check liburcu-dev
	libmnl-dev libmicrohttpd-dev libcap-ng-dev libsystemd-dev libqrencode-dev libpng-dev
	wireguard-tools iproute2)
[ "$FORWARDING" != 1 ] || PACKAGES+=(nftables)
missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "quickstart: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [ -z "$WGATE" ]; then
	[ -f build/build.ninja ] || meson setup build -Dbuildtype=release >/dev/null
	ninja -C build >/dev/null
	WGATE=build/gateway/wgate
fi
[ -x "$WGATE" ] || die "$WGATE is not an executable"

# The address clients use: the default route's source address (IPv4, else IPv6).
default_endpoint() {
	local src

	src=$(ip -4 route get 1.0.0.0 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p' || true)
	[ -z "$src" ] || { echo "$src"; return; }
	src=$(ip -6 route get 2001:db8:: 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p' || true)
	[ -z "$src" ] || echo "[$src]"
}

mkdir -p "$DIR"
chmod 0700 "$DIR"
conf=$DIR/$IFACE.conf
if [ ! -f "$conf" ]; then
	if [ -z "$ENDPOINT" ]; then
		ENDPOINT=$(default_endpoint || true)
		[ -n "$ENDPOINT" ] || die "no default route to take the endpoint from: give --endpoint HOST[:PORT]"
	fi
	# A bare IPv6 address gets brackets; a missing port is the listen port.
	[[ $ENDPOINT == \[* || $ENDPOINT != *:*:* ]] || ENDPOINT="[$ENDPOINT]"
	[[ $ENDPOINT =~ :[0-9]+$ ]] || ENDPOINT=$ENDPOINT:$PORT
	(
		umask 077
		key=$(wg genkey)
		cat >"$conf.tmp" <<CONF
# wgate $IFACE, written by deploy/quickstart.sh; \`wgate peer add|list|remove\` edit it.
[Interface]
# Endpoint = $ENDPOINT
PrivateKey = $key
ListenPort = $PORT
Address = ${ADDRESS//,/, }
CONF
		mv "$conf.tmp" "$conf"
	)
	echo "quickstart: wrote $conf (endpoint $ENDPOINT, addresses $ADDRESS, port $PORT)"
else
	echo "quickstart: keeping $conf and its keys (--address, --port and a default endpoint apply to a new one only)"
fi

peer=("$WGATE" peer)
qr_args=(--config "$conf" --qr)
[ -z "$QR_PNG" ] || qr_args+=(--qr-png "$QR_PNG")
if [ -f "$DIR/clients/$IFACE/$CLIENT.conf" ]; then
	echo "quickstart: client $CLIENT exists; its configuration (from $DIR/clients/$IFACE/$CLIENT.conf):"
	"${peer[@]}" show "$CLIENT" "${qr_args[@]}"
else
	echo "quickstart: adding client $CLIENT; its configuration:"
	if [ -n "$ENDPOINT" ]; then
		"${peer[@]}" add "$CLIENT" "${qr_args[@]}" --endpoint "$ENDPOINT"
	else
		"${peer[@]}" add "$CLIENT" "${qr_args[@]}"
	fi
fi
echo "quickstart: scan the QR code with the WireGuard app, or use the text above as a wg-quick file"
echo "quickstart: more clients: $WGATE peer add NAME --config $conf --qr"

if [ "$FORWARDING" = 1 ]; then
	[ -x deploy/forwarding.sh ] || die "--forwarding: deploy/forwarding.sh is missing from this tree"
	deploy/forwarding.sh "$IFACE"
else
	echo "quickstart: forwarding is OFF: clients reach only the gateway (--forwarding turns on IPv4/IPv6 forwarding and NAT)"
fi

if [ "$RUN" = 0 ]; then
	echo "quickstart: prepared (--no-run); start it with: $WGATE -f --config $conf $IFACE"
	exit 0
fi
echo "quickstart: starting wgate on $IFACE, UDP port $(sed -n 's/^ListenPort *= *//p' "$conf" | head -n1); Ctrl-C stops it"
exec "$WGATE" -f --config "$conf" "$IFACE"
