#!/usr/bin/env bash
# Builder benchmarks. Prints `ROW|<name>|<measured>|<baseline>|<ratio>|<target>` lines.
#  (a) `kiln build` against the same steps by hand (git clone --depth 1, buildah bud, buildah push)
#      on the seed example, cold (empty storage) and warm (everything cached);
#  (b) warm rebuild after a one-line source change over the cold build;
#  (c) libgit2 shallow clone (`kiln builder clone`) against `git clone --depth 1` of a repository
#      with 5,000 commits.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

cargo build --release --quiet --bin kiln >&2
kiln=${CARGO_TARGET_DIR:-$root/target}/release/kiln

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
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }
row() { printf 'ROW|%s|%.2fs|%.2fs|%.3f|%s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")" "$4"; }

# --- services: a registry and a git daemon on free ports --------------------------------------
start_registry

echo "making base images" >&2
BUILDAH_ROOT=$work/store-base/root BUILDAH_RUNROOT=$work/store-base/run \
  scripts/make-base-images.sh "$registry" >&2

mkdir -p "$work/repos/src"
cp -r examples/go-server/. "$work/repos/src/"
(
  cd "$work/repos/src"
  git init -q -b main
  git -c user.name=bench -c user.email=bench@example.com add -A
  git -c user.name=bench -c user.email=bench@example.com commit -q -m "go-server"
)
git clone -q --bare "$work/repos/src" "$work/repos/app.git"
git_port=$(free_port)
git daemon --export-all --reuseaddr --listen=127.0.0.1 --port="$git_port" --base-path="$work/repos" "$work/repos" >/dev/null 2>&1 &
pids+=($!)
wait_port "$git_port"
url=git://127.0.0.1:$git_port/app.git

cat > "$work/bc.yaml" <<YAML
apiVersion: build.kiln.dev/v1alpha1
kind: BuildConfig
metadata: {name: go-server, namespace: bench}
spec:
  source: {type: Git, git: {uri: "$url", ref: main}}
  strategy: {type: Docker, dockerStrategy: {buildArgs: [{name: REGISTRY, value: "$registry"}]}}
  output: {to: {kind: ImageStreamTag, name: "go-server:latest"}}
YAML

by_hand() { # store tag
  local store=$1 ref=$registry/bench/by-hand:$2 dir=$work/clone-$RANDOM
  git clone -q --depth 1 --branch main "$url" "$dir"
  buildah --root "$store/root" --runroot "$store/run" bud --quiet --isolation chroot --layers \
    --tls-verify=false --build-arg REGISTRY="$registry" -t "$ref" "$dir" >/dev/null
  buildah --root "$store/root" --runroot "$store/run" push --quiet --tls-verify=false "$ref" "docker://$ref"
  rm -rf "$dir"
}
with_kiln() { # store
  "$kiln" build -f "$work/bc.yaml" --registry "$registry" --insecure-registry \
    --root "$1/root" --runroot "$1/run" > "$work/kiln.out" 2>&1 || { cat "$work/kiln.out" >&2; return 1; }
}

mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a + b) / 2 }'; }

# --- (a) cold and warm, two rounds each in alternating order (page cache and load even out) -----
echo "(a) cold builds" >&2
t=$(now); by_hand "$work/store-hand1" cold; hand_cold1=$(elapsed "$t")
t=$(now); with_kiln "$work/store-kiln1"; kiln_cold1=$(elapsed "$t")
t=$(now); with_kiln "$work/store-kiln2"; kiln_cold2=$(elapsed "$t")
t=$(now); by_hand "$work/store-hand2" cold; hand_cold2=$(elapsed "$t")
echo "(a) warm builds" >&2
hand_warm=()
kiln_warm=()
for round in 1 2 3; do
  store=$(( (round % 2) + 1 ))
  if [ $((round % 2)) = 1 ]; then
    t=$(now); by_hand "$work/store-hand$store" warm; hand_warm+=("$(elapsed "$t")")
    t=$(now); with_kiln "$work/store-kiln$store"; kiln_warm+=("$(elapsed "$t")")
  else
    t=$(now); with_kiln "$work/store-kiln$store"; kiln_warm+=("$(elapsed "$t")")
    t=$(now); by_hand "$work/store-hand$store" warm; hand_warm+=("$(elapsed "$t")")
  fi
done
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
kiln_cold=$(mean "$kiln_cold1" "$kiln_cold2")
row "builder: kiln build vs by hand, cold (mean of 2)" "$kiln_cold" "$(mean "$hand_cold1" "$hand_cold2")" "<= 1.05"
row "builder: kiln build vs by hand, warm (median of 3)" "$(median3 "${kiln_warm[@]}")" "$(median3 "${hand_warm[@]}")" "<= 1.05"

# --- (b) one-line change ----------------------------------------------------------------------
echo "(b) rebuilds after a one-line change" >&2
change() {
  (
    cd "$work/repos/src"
    echo "// one-line change $1" >> server.go
    git -c user.name=bench -c user.email=bench@example.com commit -q -am "one-line change $1"
    git push -q "$work/repos/app.git" main
  )
}
change 1; t=$(now); with_kiln "$work/store-kiln1"; kiln_change1=$(elapsed "$t")
change 2; t=$(now); with_kiln "$work/store-kiln2"; kiln_change2=$(elapsed "$t")
row "builder: rebuild after one-line change vs cold (mean of 2)" "$(mean "$kiln_change1" "$kiln_change2")" "$kiln_cold" "<= 0.35"

# --- (c) shallow clone of a 5,000-commit repository -------------------------------------------
echo "(c) generating a repository with 5000 commits" >&2
big=$work/repos/big-src
mkdir -p "$big"
(
  cd "$big"
  git init -q -b main
  # fast-import: 5000 commits, each changing one of 200 files.
  {
    for i in $(seq 1 5000); do
      echo "commit refs/heads/main"
      echo "committer bench <bench@example.com> $((1700000000 + i)) +0000"
      echo "data <<MSG"
      echo "commit $i"
      echo "MSG"
      echo "M 644 inline file-$((i % 200)).txt"
      echo "data <<DATA"
      for j in $(seq 1 20); do echo "line $j of revision $i"; done
      echo "DATA"
      echo
    done
  } | git fast-import --quiet
  git checkout -q main
)
git clone -q --bare "$big" "$work/repos/big.git"
[ "$(git -C "$work/repos/big.git" rev-list --count main)" -ge 5000 ]
big_url=git://127.0.0.1:$git_port/big.git
cat > "$work/big-build.json" <<JSON
{"apiVersion":"build.kiln.dev/v1alpha1","kind":"Build","metadata":{"name":"big-1","namespace":"bench"},
 "spec":{"source":{"type":"Git","git":{"uri":"$big_url","ref":"main"}},"strategy":{"type":"Docker"}}}
JSON
runs=5
git_total=0
kiln_total=0
for i in $(seq 1 $runs); do
  t=$(now); git clone -q --depth 1 --branch main "$big_url" "$work/gc-$i"; git_total=$(add "$git_total" "$(elapsed "$t")")
  t=$(now)
  "$kiln" builder clone --build-file "$work/big-build.json" --workspace "$work/kc-$i" \
    --termination-log "$work/kc-$i.log" --source-secret "$work/none" >/dev/null
  kiln_total=$(add "$kiln_total" "$(elapsed "$t")")
done
row "builder: git2 shallow clone vs git clone --depth 1 (5000 commits, mean of $runs)" \
  "$(ratio "$kiln_total" "$runs")" "$(ratio "$git_total" "$runs")" "<= 1.5"
