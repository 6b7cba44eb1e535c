#!/usr/bin/env bash
# The sandbox kubelet's runc runtime against its host-process runtime (release build). Prints
# `ROW|<name>|<measured>|<baseline>|<ratio>|<target>` lines:
#  - 20 busybox Pods run one after another (create → Succeeded, polled every 20 ms over HTTP),
#    runc against host processes; the image is pulled and unpacked before the first timed Pod;
#  - the first runc Pod of a fresh kubelet (pull + unpack + run) against a warm one.
# KILN_SANDBOX=path uses that kiln-sandbox binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

sandbox=${KILN_SANDBOX:-}
if [ -z "$sandbox" ]; then
  cargo build --release --quiet -p kiln-sandbox --bin kiln-sandbox >&2
  sandbox=${CARGO_TARGET_DIR:-$root/target}/release/kiln-sandbox
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  buildah --root "$work/store/root" --runroot "$work/store/run" --storage-driver vfs \
    rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

. scripts/bench-common.sh
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
row() { awk -v n="$1" -v m="$2" -v b="$3" -v t="$4" 'BEGIN { printf "ROW|%s|%.2fs|%.2fs|%.3f|%s\n", n, m, b, m / b, t }'; }

start_registry
BUILDAH_ROOT=$work/store/root BUILDAH_RUNROOT=$work/store/run STORAGE_DRIVER=vfs \
  scripts/make-base-images.sh "$registry" --busybox >&2
image=$registry/library/busybox:latest

# serve RUNTIME NAME: starts a sandbox with that runtime; sets $api.
serve() {
  local log=$work/$2.log
  "$sandbox" serve --listen 127.0.0.1:0 --kubelet --runtime "$1" --kubelet-root "$work/$2" \
    --kubeconfig "$work/$2.kubeconfig" > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^listening on' "$log" && break; sleep 0.1; done
  api=$(sed -n 's/^listening on //p' "$log" | head -1)
}

# run_pod NAME: creates a busybox Pod running `true` and waits until it Succeeded.
run_pod() {
  local body
  body=$(printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s"},"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"%s","imagePullPolicy":"IfNotPresent","command":["true"]}]}}' "$1" "$image")
  curl -sf -X POST -H 'Content-Type: application/json' -d "$body" "$api/api/v1/namespaces/default/pods" >/dev/null
  for _ in $(seq 1 3000); do
    curl -sf "$api/api/v1/namespaces/default/pods/$1" | grep -q '"phase":"Succeeded"' && return 0
    sleep 0.02
  done
  echo "pod $1 did not succeed" >&2
  return 1
}

# sequence PREFIX COUNT: seconds to run COUNT Pods one after another.
sequence() {
  local start
  start=$(now)
  for i in $(seq 1 "$2"); do run_pod "$1-$i"; done
  elapsed "$start"
}

serve host host
host_api=$api
run_pod host-warmup
host=$(sequence host 20)

serve runc runc
start=$(now)
run_pod runc-first
first=$(elapsed "$start")
start=$(now)
run_pod runc-second
second=$(elapsed "$start")
runc=$(sequence runc 20)
api=$host_api

row "runtime: 20 Pods one after another, runc over host processes" "$runc" "$host" "report"
row "runtime: first runc Pod (pull + unpack) over a warm one" "$first" "$second" "report"
