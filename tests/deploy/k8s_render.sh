#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Renders every Kustomize overlay (and the base, and an overlay with the optional
# forwarding component) with the real `kubectl kustomize`, validates each object
# against the Kubernetes API schemas offline (validate.mjs, kubernetes-models from
# npm), checks that the settings set once in a kustomization reach every field that
# needs them, and that the validator does reject a broken manifest.
# Skips (77) without kubectl or node; installs the npm packages on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s=$here/../../deploy/k8s

command -v kubectl >/dev/null || { echo "SKIP: kubectl not found"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null ||
	{ echo "SKIP: node and npm not found (apt-get install nodejs npm)"; exit 77; }
if [ ! -d "$here/node_modules/kubernetes-models" ]; then
	npm install --prefix "$here" --no-audit --no-fund --loglevel=error >/dev/null
fi

tmp=$(mktemp -d /tmp/wgt-k8s.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}

# An overlay of our own: the cloud-VM profile with the forwarding component and
# settings that differ from every default, to see each one arrive.
mkdir -p "$tmp/custom"
k8s=$(realpath "$k8s")
rel=$(realpath --relative-to="$tmp/custom" "$k8s")  # kustomize takes no absolute paths
cat >"$tmp/custom/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $rel/overlays/cloud-vm
images:
  - name: localhost/wgate
    newName: registry.example/wgate
    newTag: "9.9"
configMapGenerator:
  - name: wgate-settings
    behavior: merge
    literals:
      - WGATE_TUN_THREADS=7
      - WGATE_LISTEN_PORT=41820
      - WGATE_METRICS_PORT=9999
      - WGATE_SECRET_NAME=my-secret
components:
  - $rel/components/forwarding
  - $rel/components/settings
YAML

# field JSON EXPR: one value of the rendered DaemonSet's pod template (python3).
field() {
	python3 -c '
import json, sys
objs = json.load(open(sys.argv[1]))
ds = next(o for o in objs if o["kind"] == "DaemonSet")
pod = ds["spec"]["template"]
c = pod["spec"]["containers"][0]
print(eval(sys.argv[2]))' "$1" "$2"
}

for dir in base overlays/cloud-vm overlays/small-node "$tmp/custom"; do
	[ "${dir:0:1}" = / ] || dir=$k8s/$dir
	name=${dir#"$k8s/"}
	kubectl kustomize "$dir" >"$tmp/out.yaml" || fail "$name does not render"
	node "$here/validate.mjs" <"$tmp/out.yaml" >"$tmp/valid.txt" 2>&1 ||
		fail "$name: $(cat "$tmp/valid.txt")"
	node "$here/validate.mjs" --json <"$tmp/out.yaml" >"$tmp/out.json"
	for kind in Namespace ConfigMap DaemonSet; do
		grep -q " $kind/" "$tmp/valid.txt" || fail "$name renders no $kind"
	done
	# What the DaemonSet must hold in every profile.
	[ "$(field "$tmp/out.json" 'pod["spec"]["hostNetwork"]')" = True ] || fail "$name: not hostNetwork"
	[ "$(field "$tmp/out.json" '(c["securityContext"]["capabilities"]["drop"], c["securityContext"]["capabilities"]["add"])')" = "(['ALL'], ['NET_ADMIN'])" ] ||
		fail "$name: capabilities are not drop ALL, add NET_ADMIN"
	[ "$(field "$tmp/out.json" '[v["hostPath"]["type"] for v in pod["spec"]["volumes"] if "hostPath" in v]')" = "['CharDevice']" ] ||
		fail "$name: /dev/net/tun is not a hostPath CharDevice"
	for probe in liveness readiness startup; do
		field "$tmp/out.json" "c['${probe}Probe']['httpGet']['path']" >/dev/null || fail "$name: no $probe probe"
	done
	[ "$(field "$tmp/out.json" 'ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"]')" = 1 ] ||
		fail "$name: a rolling update does not go one node at a time"
	[ "$(field "$tmp/out.json" 'c["resources"]["limits"]["memory"] != ""')" = True ] || fail "$name: no memory limit"
	echo "PASS $name renders and validates ($(grep -c '^valid' "$tmp/valid.txt") objects)"
done

# Every setting of the custom overlay reached its fields ($tmp/out.json is its render).
check() {
	local got

	got=$(field "$tmp/out.json" "$1")
	[ "$got" = "$2" ] || fail "custom overlay: $1 is '$got', expected '$2'"
}
check 'c["image"]' registry.example/wgate:9.9
check 'c["args"][0]' --tun-threads=7
check '[p["containerPort"] for p in c["ports"]]' '[41820, 9999]'
check '[c[p + "Probe"]["httpGet"]["port"] for p in ("startup", "liveness", "readiness")]' '[9999, 9999, 9999]'
check 'pod["metadata"]["annotations"]["prometheus.io/port"]' 9999
check '[e["value"] for e in c["env"] if e["name"] == "WGATE_METRICS_LISTEN"]' "['0.0.0.0:9999']"
check '[v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v]' "['my-secret']"
check '[i["command"] for i in pod["spec"]["initContainers"]]' "[['/usr/local/bin/wgate-forwarding']]"
check '[i["image"] for i in pod["spec"]["initContainers"]]' "['registry.example/wgate:9.9']"
echo "PASS settings set once in a kustomization reach the image, args, ports, probes, annotation, env and volume"

# The validator rejects what the API server would.
sed 's/containerPort: 41820/containerPort: "41820x"/' "$tmp/out.yaml" >"$tmp/bad.yaml"
if node "$here/validate.mjs" <"$tmp/bad.yaml" >"$tmp/bad.txt" 2>&1; then
	fail "a string containerPort passed validation"
fi
grep -q 'containerPort must be integer' "$tmp/bad.txt" || fail "unexpected rejection: $(cat "$tmp/bad.txt")"
echo "PASS a broken DaemonSet is rejected: $(grep -m1 containerPort "$tmp/bad.txt")"
