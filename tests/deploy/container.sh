#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The container image for real, with podman (../shared/CONTAINERS.md: no registry,
# so the Debian base image is made by debootstrap when missing; no Docker engine).
# Builds deploy/docker/Dockerfile and runs the image in a network namespace with only
# NET_ADMIN and /dev/net/tun, three ways, a Debian wireguard-go peer pinging through
# it each time:
#   (m) from a mounted /etc/wgate/wg0.conf: healthy by `podman healthcheck run`, the
#       process runs as the image's non-root user with only CAP_NET_ADMIN, clean stop;
#   (e) from environment variables and a directory of [Peer] files;
#   (k) as the container of the rendered Kubernetes DaemonSet (small-node overlay):
#       its image, args, env, mounts, user and capabilities translated to podman run,
#       the config from a Secret-style directory; updating that directory as the
#       kubelet does (a new timestamped directory, then ..data swapped) adds the peer
#       without a restart.
# Usage (as root): container.sh   (skips, 77, without podman, runc or debootstrap)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../e2e/lib.sh
. "$here/../e2e/lib.sh"

e2e_require_root wg ip ping wireguard-go podman runc debootstrap kubectl node python3
e2e_init container

BASE_IMAGE=localhost/debian:bookworm-slim
IMG=localhost/wgate:e2e-$$
CONTAINERS=()
TUN_MODE=$(stat -c %a /dev/net/tun)
export CONTAINERS_CONF=$E2E_TMP/containers.conf
# The sandbox has hybrid cgroups and fixed hard rlimits: crun and the default ulimits fail.
cat >"$CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF

container_cleanup() {
	local rc=$? c

	for c in "${CONTAINERS[@]}"; do
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
			echo "---- container $c: last 30 lines of its log ----"
			podman logs --tail 30 "$c" 2>&1
		fi
		podman rm -f -t 2 "$c" >/dev/null 2>&1
	done
	podman rmi -f "$IMG" >/dev/null 2>&1
	chmod "$TUN_MODE" /dev/net/tun
	(exit "$rc")
	e2e_cleanup
}
trap container_cleanup EXIT

# A container user must be able to open /dev/net/tun: a host with udev makes it 0666,
# this machine has 0600. Restored at exit.
chmod 0666 /dev/net/tun

if ! podman image exists "$BASE_IMAGE"; then
	mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
	echo "INFO making $BASE_IMAGE with debootstrap from ${mirror:=http://deb.debian.org/debian} (once per machine)"
	debootstrap --variant=minbase bookworm "$E2E_TMP/rootfs" "$mirror" >"$E2E_TMP/debootstrap.log" 2>&1 ||
		e2e_fail "debootstrap failed: $(tail -n 3 "$E2E_TMP/debootstrap.log")"
	tar -C "$E2E_TMP/rootfs" -c . | podman import - "$BASE_IMAGE" >/dev/null
	rm -rf "$E2E_TMP/rootfs"
fi

t0=$(date +%s)
podman build --format docker --isolation chroot --build-arg "BASE=$BASE_IMAGE" -t "$IMG" \
	-f "$root/deploy/docker/Dockerfile" "$root" >"$E2E_TMP/build.log" 2>&1 ||
	e2e_fail "image build failed: $(tail -n 20 "$E2E_TMP/build.log")"
size=$(podman image inspect --format '{{.Size}}' "$IMG")
e2e_pass b "image built in $(($(date +%s) - t0)) s, $((size / 1000000)) MB"
# The runtime stage carries no compiler and no -dev package.
podman run --rm --cap-add NET_ADMIN --entrypoint /bin/sh "$IMG" -c \
	'! command -v cc gcc >/dev/null && ! dpkg -l | grep -q -- "-dev "' 2>/dev/null ||
	e2e_fail "the runtime image has a compiler or a -dev package"
e2e_pass b2 "no compiler or -dev package in the runtime stage"

# Side B: Debian's wireguard-go, configured with wg, in its own namespace.
two_sides wgc
wg_keys b
start_impl "$NS_B" "$(command -v wireguard-go)" "$IF_B"
tun_addr "$NS_B" "$IF_B" "$E2E_TUN4_B/24" "$E2E_TUN6_B/64"

# b_peer NAME: B's only peer becomes the gateway with key NAME, at A's underlay address.
b_peer() {
	local old

	for old in $(in_ns "$NS_B" wg show "$IF_B" peers); do
		in_ns "$NS_B" wg set "$IF_B" peer "$old" remove
	done
	in_ns "$NS_B" wg set "$IF_B" private-key "$E2E_TMP/b.key" peer "$(cat "$E2E_TMP/$1.pub")" \
		endpoint "$E2E_UNDER4_A:51820" allowed-ips "$E2E_TUN4_A/32,$E2E_TUN6_A/128"
}

# server_conf KEYNAME [PEER_PUB...]: a gateway config with those peers (B's addresses for each).
server_conf() {
	local key=$1 pub

	shift
	printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = %s/24, %s/64\n' \
		"$(cat "$E2E_TMP/$key.key")" "$E2E_TUN4_A" "$E2E_TUN6_A"
	for pub in "$@"; do
		printf '\n[Peer]\n# Name = side-b\nPublicKey = %s\nAllowedIPs = %s/32, %s/128\n' \
			"$pub" "$E2E_TUN4_B" "$E2E_TUN6_B"
	done
}

ping_ok() {
	in_ns "$NS_B" ping -c 1 -W 1 "$E2E_TUN4_A" && in_ns "$NS_B" ping -6 -c 1 -W 1 "$E2E_TUN6_A"
}

healthy() {
	podman healthcheck run "$1" 2>/dev/null
}

# run_container NAME ARGS...: podman run -d in namespace A, removed at exit.
run_container() {
	local name=$1

	shift
	CONTAINERS+=("$name")
	podman run -d --name "$name" --network "ns:/run/netns/$NS_A" "$@" >/dev/null 2>"$E2E_TMP/$name.err" ||
		e2e_fail "podman run $name: $(cat "$E2E_TMP/$name.err")"
}

# check_process NAME: wgate is PID 1's child or PID 1; it runs as uid 10001 with only CAP_NET_ADMIN.
check_process() {
	local status

	status=$(podman exec "$1" sh -c 'cat /proc/$(pidof wgate)/status')
	grep -qP '^Uid:\t10001\t10001\t10001\t10001$' <<<"$status" ||
		e2e_fail "$1: wgate does not run as uid 10001: $(grep ^Uid <<<"$status")"
	grep -qP '^CapEff:\t0000000000001000$' <<<"$status" ||
		e2e_fail "$1: wgate's effective capabilities are not CAP_NET_ADMIN alone: $(grep ^CapEff <<<"$status")"
}

# stop_container NAME: podman stop, exit status 0.
stop_container() {
	local code

	podman stop -t 5 "$1" >/dev/null
	code=$(podman inspect --format '{{.State.ExitCode}}' "$1")
	[ "$code" = 0 ] || e2e_fail "$1 exited $code: $(podman logs --tail 20 "$1" 2>&1)"
}

# (m) A mounted config file.
wg_keys m
mkdir -m 0700 "$E2E_TMP/m"
server_conf m "$(cat "$E2E_TMP/b.pub")" >"$E2E_TMP/m/wg0.conf"
chown -R 10001:10001 "$E2E_TMP/m"
run_container "wgate-m-$$" --cap-drop ALL --cap-add NET_ADMIN --device /dev/net/tun \
	-v "$E2E_TMP/m:/etc/wgate:ro" "$IMG"
b_peer m
wait_for "a ping through the container (mounted config)" 20 ping_ok
e2e_pass m "wireguard-go pings through the container run from a mounted config (v4, v6)"
wait_for "podman healthcheck run to report healthy" 20 healthy "wgate-m-$$"
check_process "wgate-m-$$"
e2e_pass m2 "healthcheck healthy; wgate runs as uid 10001 with only CAP_NET_ADMIN"
stop_container "wgate-m-$$"
e2e_pass m3 "podman stop: exit status 0"

# (e) Environment variables and a directory of [Peer] files.
wg_keys e
mkdir -m 0755 "$E2E_TMP/peers"
printf '[Peer]\nPublicKey = %s\nAllowedIPs = %s/32, %s/128\n' "$(cat "$E2E_TMP/b.pub")" \
	"$E2E_TUN4_B" "$E2E_TUN6_B" >"$E2E_TMP/peers/side-b.conf"
chmod 0644 "$E2E_TMP/peers/side-b.conf"
run_container "wgate-e-$$" --cap-drop ALL --cap-add NET_ADMIN --device /dev/net/tun \
	-e "WGATE_PRIVATE_KEY=$(cat "$E2E_TMP/e.key")" -e WGATE_LISTEN_PORT=51820 \
	-e "WGATE_ADDRESS=$E2E_TUN4_A/24,$E2E_TUN6_A/64" -e WGATE_PEERS_DIR=/peers \
	-e WGATE_TUN_THREADS=2 -v "$E2E_TMP/peers:/peers:ro" "$IMG"
b_peer e
wait_for "a ping through the container (environment)" 20 ping_ok
wait_for "podman healthcheck run to report healthy" 20 healthy "wgate-e-$$"
check_process "wgate-e-$$"
stop_container "wgate-e-$$"
e2e_pass e "wireguard-go pings through the container configured by environment variables; healthy; uid 10001"

# (k) The rendered DaemonSet's container.
wg_keys k
wg_keys x
mkdir -p "$E2E_TMP/overlay"
rel=$(realpath --relative-to="$E2E_TMP/overlay" "$root/deploy/k8s")
cat >"$E2E_TMP/overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel/overlays/small-node
images:
  - name: localhost/wgate
    newName: ${IMG%:*}
    newTag: ${IMG##*:}
YAML
[ -d "$here/node_modules/kubernetes-models" ] ||
	npm install --prefix "$here" --no-audit --no-fund --loglevel=error >/dev/null
kubectl kustomize "$E2E_TMP/overlay" | node "$here/validate.mjs" --json >"$E2E_TMP/k8s.json"

# A Secret volume as the kubelet lays it out: files in a timestamped directory, a
# ..data symlink to it, and one symlink per key through ..data; group fsGroup, mode
# defaultMode. secret_update DIR STAMP: writes $E2E_TMP/secret.conf there and swaps ..data.
secret_update() {
	local dir=$1 stamp=$2 mode gid

	mode=$(python3 -c 'import json,sys; ds=[o for o in json.load(open(sys.argv[1])) if o["kind"]=="DaemonSet"][0]; print("%o" % [v for v in ds["spec"]["template"]["spec"]["volumes"] if "secret" in v][0]["secret"]["defaultMode"])' "$E2E_TMP/k8s.json")
	gid=$(python3 -c 'import json,sys; ds=[o for o in json.load(open(sys.argv[1])) if o["kind"]=="DaemonSet"][0]; print(ds["spec"]["template"]["spec"]["securityContext"]["fsGroup"])' "$E2E_TMP/k8s.json")
	mkdir "$dir/..$stamp"
	cp "$E2E_TMP/secret.conf" "$dir/..$stamp/wg0.conf"
	chown -R "0:$gid" "$dir/..$stamp"
	chmod 0755 "$dir/..$stamp"
	chmod "$mode" "$dir/..$stamp/wg0.conf"
	ln -s "..$stamp" "$dir/..data_tmp"
	mv -T "$dir/..data_tmp" "$dir/..data"
	[ -L "$dir/wg0.conf" ] || ln -s ..data/wg0.conf "$dir/wg0.conf"
}
mkdir -m 0755 "$E2E_TMP/secret"
# At first the Secret names another client only: B cannot connect.
server_conf k "$(cat "$E2E_TMP/x.pub")" >"$E2E_TMP/secret.conf"
secret_update "$E2E_TMP/secret" 2026_12_07_00_00_00.1

# The pod template's container as podman arguments (one per line).
python3 - "$E2E_TMP/k8s.json" "$E2E_TMP/secret" "$E2E_TMP" >"$E2E_TMP/podman-args" <<'PY'
import json, os, sys
objs = json.load(open(sys.argv[1]))
ds = next(o for o in objs if o["kind"] == "DaemonSet")
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
psc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
args = []
uid, gid = sc.get("runAsUser", psc.get("runAsUser")), sc.get("runAsGroup", psc.get("runAsGroup"))
if uid is not None:
    args += ["--user", f"{uid}:{gid if gid is not None else uid}"]
if "fsGroup" in psc:
    args += ["--group-add", str(psc["fsGroup"])]
for cap in sc.get("capabilities", {}).get("drop", []):
    args += ["--cap-drop", cap]
for cap in sc.get("capabilities", {}).get("add", []):
    args += ["--cap-add", cap]
if sc.get("readOnlyRootFilesystem"):
    args += ["--read-only"]
if sc.get("allowPrivilegeEscalation") is False:
    args += ["--security-opt", "no-new-privileges"]
for e in c.get("env", []):
    args += ["--env", f'{e["name"]}={e["value"]}']
vols = {v["name"]: v for v in pod["volumes"]}
for m in c.get("volumeMounts", []):
    v = vols[m["name"]]
    if "secret" in v:
        args += ["--volume", f'{sys.argv[2]}:{m["mountPath"]}:ro']
    elif "hostPath" in v and v["hostPath"].get("type") == "CharDevice":
        args += ["--device", f'{v["hostPath"]["path"]}:{m["mountPath"]}']
    elif "emptyDir" in v:
        # As the kubelet makes one: a fresh directory of mode 0777 (podman's --tmpfs
        # would be root's 0755 whatever its mode= option says).
        d = os.path.join(sys.argv[3], "emptydir-" + m["name"])
        os.makedirs(d)
        os.chmod(d, 0o777)
        args += ["--volume", f'{d}:{m["mountPath"]}']
    else:
        sys.exit(f"volume {m['name']}: no translation")
args.append(c["image"])
args += c.get("args", [])
print("\n".join(args))
PY
mapfile -t pargs <"$E2E_TMP/podman-args"
grep -qx -- '--cap-add' "$E2E_TMP/podman-args" && grep -qx -- 'NET_ADMIN' "$E2E_TMP/podman-args" ||
	e2e_fail "the rendered container adds no NET_ADMIN: ${pargs[*]}"
grep -qx -- "$IMG" "$E2E_TMP/podman-args" || e2e_fail "the rendered container does not run $IMG"
run_container "wgate-k-$$" "${pargs[@]}"
b_peer k
wait_for "the DaemonSet's container to be healthy" 20 healthy "wgate-k-$$"
check_process "wgate-k-$$"
started=$(podman inspect --format '{{.State.StartedAt}}' "wgate-k-$$")
! in_ns "$NS_B" ping -c 1 -W 1 "$E2E_TUN4_A" >/dev/null 2>&1 ||
	e2e_fail "B reached the gateway before the Secret named it"
e2e_pass k "the rendered DaemonSet container runs (${pargs[*]:0:12} ...), healthy, B not yet a peer"

# The kubelet updates the Secret: B replaces the other client.
server_conf k "$(cat "$E2E_TMP/b.pub")" >"$E2E_TMP/secret.conf"
secret_update "$E2E_TMP/secret" 2026_12_07_00_01_00.2
wait_for "a ping through the DaemonSet's container after the Secret update" 30 ping_ok
peers=$(podman exec "wgate-k-$$" wg show wg0 peers)
[ "$peers" = "$(cat "$E2E_TMP/b.pub")" ] || e2e_fail "after the update the peers are '$peers'"
[ "$(podman inspect --format '{{.State.StartedAt}} {{.RestartCount}}' "wgate-k-$$")" = "$started 0" ] ||
	e2e_fail "the container restarted for the update"
e2e_pass k2 "a kubelet-style Secret update reloaded the peers without a restart; B pings through"
stop_container "wgate-k-$$"
echo "PASS container: image, mounted config, environment, rendered DaemonSet"
