#!/usr/bin/env bash
# The layer cache across build Pods. Every build runs the build Pod's own steps (`kiln builder
# clone`, then `kiln builder build`) in fresh buildah storage, as a new Pod does, against a
# loopback registry holding the seed example's bases. Prints
# `ROW|<name>|<measured>|<baseline>|<ratio>|<target>` lines:
#  - a rebuild after a one-line change in a late Dockerfile step (the runtime stage's `RUN`), with
#    the BuildConfig's cache repository, over a cold build without it;
#  - a rebuild after a one-line source change (server.go: the Go build itself runs again), with
#    the cache, over the same cold build (reported: the cache cannot skip a step whose input
#    changed);
#  - the cold build that fills the cache over the cold build without it (the cost of the pushes);
#  - the same two rebuilds in the BuildConfig's build storage (`--build-storage=volume`: the
#    storage root the cold build left, as the claim keeps it; no registry cache), over the cold
#    build.
# Two rounds, each in its own namespace (so its cache repository starts empty): a cold build
# without the cache (in the round's build storage, kept) and one filling the cache (their order
# alternates), then each rebuild with the cache and in the kept storage.
# KILN_BIN=path uses that kiln binary instead of building a release one (buildah and the registry
# take nearly all the time).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

kiln=${KILN_BIN:-}
if [ -z "$kiln" ]; then
  cargo build --release --quiet --bin kiln >&2
  kiln=${CARGO_TARGET_DIR:-$root/target}/release/kiln
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for store in "$work"/store-*; do
    [ -d "$store" ] && buildah --root "$store/root" --runroot "$store/run" rmi --all --force >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

. scripts/bench-common.sh
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a + b) / 2 }'; }
row() { awk -v n="$1" -v m="$2" -v b="$3" -v t="$4" 'BEGIN { printf "ROW|%s|%.2fs|%.2fs|%.3f|%s\n", n, m, b, m / b, t }'; }

start_registry
echo "making base images" >&2
BUILDAH_ROOT=$work/store-base/root BUILDAH_RUNROOT=$work/store-base/run \
  scripts/make-base-images.sh "$registry" >&2
buildah --root "$work/store-base/root" --runroot "$work/store-base/run" rmi --all --force >/dev/null 2>&1 || true

src=$work/repos/src
mkdir -p "$src"
cp -r examples/go-server/. "$src/"
commit() {
  git -C "$src" -c user.name=bench -c user.email=bench@example.com add -A
  git -C "$src" -c user.name=bench -c user.email=bench@example.com commit -q -m "$1"
  git -C "$src" push -q "$work/repos/app.git" main 2>/dev/null || true
}
git -C "$src" init -q -b main
commit "go-server"
git clone -q --bare "$src" "$work/repos/app.git"
git_port=$(free_port)
git daemon --export-all --reuseaddr --listen=127.0.0.1 --port="$git_port" --base-path="$work/repos" "$work/repos" >/dev/null 2>&1 &
pids+=($!)
wait_port "$git_port"

# build_json NAMESPACE: the Build as the controller hands it to the Pod (output resolved into the
# internal registry) for BuildConfig go-server of NAMESPACE.
build_json() {
  cat <<JSON
{"apiVersion":"build.kiln.dev/v1alpha1","kind":"Build",
 "metadata":{"name":"go-server-1","namespace":"$1","annotations":{"build.kiln.dev/build-config.name":"go-server"}},
 "spec":{"source":{"type":"Git","git":{"uri":"git://127.0.0.1:$git_port/app.git","ref":"main"}},
         "strategy":{"type":"Docker","dockerStrategy":{"buildArgs":[{"name":"REGISTRY","value":"$registry"}]}},
         "output":{"to":{"kind":"ImageStreamTag","name":"go-server:latest"}}},
 "status":{"phase":"New","outputDockerImageReference":"$registry/$1/go-server:latest"}}
JSON
}

# in_pod NAME NAMESPACE [CACHE] [STORAGE]: the build Pod's two steps in a fresh workspace and
# fresh storage, or in the kept storage STORAGE (a build storage claim: not emptied afterwards).
in_pod() {
  local store=$work/store-${4:-$1} ws=$work/ws-$1 build
  build=$(build_json "$2")
  mkdir -p "$ws"
  BUILD=$build "$kiln" builder clone --workspace "$ws" --termination-log "$ws/clone.log" \
    --source-secret "$work/none" > "$work/$1.out" 2>&1 || { cat "$work/$1.out" >&2; return 1; }
  BUILD=$build KILN_INSECURE_REGISTRIES=$registry KILN_LAYER_CACHE_REPOSITORY=${3:-} \
    "$kiln" builder build --workspace "$ws" --termination-log "$ws/build.log" \
    --root "$store/root" --runroot "$store/run" --pull-secret "$work/none" --push-secret "$work/none" \
    >> "$work/$1.out" 2>&1 || { cat "$work/$1.out" >&2; return 1; }
  # Where the time went, from the build container's report.
  echo "  $1: $(jq -r '[.stages[] | "\(.name) \(.durationMilliseconds / 1000)s"] | join(", ")' "$ws/build.log"); $(grep -c 'Cache pulled from remote' "$work/$1.out" || true) steps from the cache, $(grep -c 'Pushing cache' "$work/$1.out" || true) pushed to it" >&2
  if [ -z "${4:-}" ]; then
    buildah --root "$store/root" --runroot "$store/run" rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$store"
  else
    rm -rf "$store/run" # the run root is the Pod's emptyDir
  fi
  rm -rf "$ws"
}
# timed NAME NAMESPACE [CACHE] [STORAGE]: seconds in_pod takes.
timed() { local t; t=$(now); in_pod "$@" >&2; elapsed "$t"; }

late_change() { # a one-line change in the runtime stage's RUN
  sed -i "s|^RUN mkdir.* /app.*|RUN mkdir -p /app \&\& echo $1 > /app/revision|" "$src/Dockerfile"
  commit "late change $1"
}
source_change() { echo "// one-line change $1" >> "$src/server.go"; commit "source change $1"; }

# Each round in its own namespace, so its cache repository starts empty.
late=()
source=()
colds=()
fills=()
stored_late=()
stored_source=()
for round in 1 2; do
  ns=bench-$round
  cache=$registry/$ns/go-server-cache
  claim=claim-$round
  echo "round $round: cold without the cache (kept as build storage $claim) and cold filling $cache, then rebuilds" >&2
  if [ "$round" = 1 ]; then
    colds+=("$(timed "cold-$round" "$ns" "" "$claim")"); fills+=("$(timed "fill-$round" "$ns" "$cache")")
  else
    fills+=("$(timed "fill-$round" "$ns" "$cache")"); colds+=("$(timed "cold-$round" "$ns" "" "$claim")")
  fi
  late_change "$round"
  late+=("$(timed "late-$round" "$ns" "$cache")")
  stored_late+=("$(timed "stored-late-$round" "$ns" "" "$claim")")
  source_change "$round"
  source+=("$(timed "source-$round" "$ns" "$cache")")
  stored_source+=("$(timed "stored-source-$round" "$ns" "" "$claim")")
  buildah --root "$work/store-$claim/root" --runroot "$work/store-$claim/run" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work/store-$claim"
done
echo "cold ${colds[*]}; filling ${fills[*]}; late change ${late[*]}; source change ${source[*]}" >&2
echo "in build storage: late change ${stored_late[*]}; source change ${stored_source[*]}" >&2

cold=$(mean "${colds[@]}")
row "cache: in-cluster rebuild after a one-line change in a late Dockerfile step, with the cache, vs cold (mean of 2)" \
  "$(mean "${late[@]}")" "$cold" "<= 0.35"
row "cache: in-cluster rebuild after a one-line source change, with the cache, vs cold (mean of 2)" \
  "$(mean "${source[@]}")" "$cold" "report"
row "cache: cold in-cluster build filling the cache vs cold without it (mean of 2)" \
  "$(mean "${fills[@]}")" "$cold" "report"
row "build storage: in-cluster rebuild after a one-line change in a late Dockerfile step, in the BuildConfig's kept storage, vs cold (mean of 2)" \
  "$(mean "${stored_late[@]}")" "$cold" "<= 0.35"
row "build storage: in-cluster rebuild after a one-line source change, in the BuildConfig's kept storage, vs cold (mean of 2)" \
  "$(mean "${stored_source[@]}")" "$cold" "report"
