#!/usr/bin/env bash
# kiln's own images: sizes and build times of the Dockerfile's `controller` and `builder` targets,
# built with buildah (chroot isolation) from a release kiln (KILN_FROM=prebuilt) and the local
# Debian 12 bases of `scripts/make-base-images.sh --kiln`. Prints
# `ROW|<name>|<measured>|<baseline>|<ratio>|<target>` lines:
#  - each image's size on disk (uncompressed root filesystem) against the stripped kiln binary,
#    and what a node pulls (compressed layers, from the registry);
#  - each target's build time cold (empty layer cache, bases present) against warm (a rebuild
#    with every layer cached).
# The Debian root filesystems are cached under the target dir (shared with tests/images.rs); the
# first run downloads them (about a minute), reported as its own line, not as a row.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

# The Dockerfile's own link flags (see its source stage): packed relative relocations and
# identical code folding. Only the thin bin crate is relinked; the library and every dependency
# are the ordinary release build's.
cargo rustc --release --quiet --bin kiln -- \
  -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=all >&2
target_dir=${CARGO_TARGET_DIR:-$root/target}
kiln=$target_dir/release/kiln
# The Dockerfile's context admits target/*/kiln (.dockerignore).
staged=$root/target/image/kiln
mkdir -p "$(dirname "$staged")"
cp "$kiln" "$staged"

work=$(mktemp -d)
pids=()
store=(--root "$work/store/root" --runroot "$work/store/run")
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  buildah "${store[@]}" rm --all >/dev/null 2>&1 || true
  buildah "${store[@]}" rmi --all --force >/dev/null 2>&1 || true
  findmnt -rn -o TARGET | grep "^$work/" | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. scripts/bench-common.sh
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.3f", a - b }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }
size_row() { # name bytes baseline-bytes target
  printf 'ROW|%s|%s MB|%s MB|%s|%s\n' "$1" "$(mb "$2")" "$(mb "$3")" \
    "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.3f", a / b }')" "$4"
}
time_row() { # name seconds baseline-seconds target
  printf 'ROW|%s|%.2fs|%.2fs|%s|%s\n' "$1" "$2" "$3" \
    "$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.3f", a / b }')" "$4"
}

start_registry

echo "making the Debian bases" >&2
t=$(now)
BUILDAH_ROOT=$work/store/root BUILDAH_RUNROOT=$work/store/run \
  scripts/make-base-images.sh "$registry" --kiln --no-push \
  --cache="$target_dir/tmp/images/debian-cache" >&2
echo "bases ready in $(elapsed "$t")s (root filesystems cached under $target_dir/tmp/images)" >&2
driver=overlay
[ -d "$work/store/root/overlay-images" ] || driver=vfs
bah() { buildah "${store[@]}" --storage-driver "$driver" "$@"; }

build() { # target
  bah bud --quiet --isolation chroot --layers --tls-verify=false --target "$1" \
    --build-arg BUILD_IMAGE="$registry/base/debian-build:bookworm" \
    --build-arg DEBIAN_IMAGE="$registry/base/debian:bookworm" \
    --build-arg KILN_FROM=prebuilt --build-arg KILN_BINARY=target/image/kiln \
    -t "$registry/kiln/$1:bench" . >/dev/null
}
declare -A cold warm
for target in controller builder; do
  echo "building $target (cold)" >&2
  t=$(now); build "$target"; cold[$target]=$(elapsed "$t")
done
for target in controller builder; do
  echo "building $target (warm)" >&2
  t=$(now); build "$target"; warm[$target]=$(elapsed "$t")
done

disk_bytes() { # image: bytes of its root filesystem
  local c m bytes
  c=$(bah from --quiet --pull-never "$1")
  m=$(bah mount "$c")
  bytes=$(du -sb "$m" | cut -f1)
  bah umount "$c" >/dev/null
  bah rm "$c" >/dev/null
  echo "$bytes"
}
pull_bytes() { # image: bytes of its compressed layers in the registry
  bah push --quiet --tls-verify=false "$1" "docker://$1"
  skopeo inspect --tls-verify=false --raw "docker://$1" | tr -d ' \n' | sed 's/.*"layers":\[//' |
    grep -o '"size":[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s }'
}

kiln_bytes=$(stat -c %s "$kiln")
stripped=$work/kiln.stripped
strip --strip-all -o "$stripped" "$kiln"
stripped_bytes=$(stat -c %s "$stripped")
echo "release kiln: $(mb "$kiln_bytes") MB, stripped $(mb "$stripped_bytes") MB" >&2
controller_disk=$(disk_bytes "$registry/kiln/controller:bench")
controller_pull=$(pull_bytes "$registry/kiln/controller:bench")
builder_disk=$(disk_bytes "$registry/kiln/builder:bench")
builder_pull=$(pull_bytes "$registry/kiln/builder:bench")
base_disk=$(disk_bytes "$registry/base/debian:bookworm")

size_row "images: controller on disk vs stripped kiln" "$controller_disk" "$stripped_bytes" "<= 30 MB"
size_row "images: controller pulled (compressed) vs stripped kiln" "$controller_pull" "$stripped_bytes" "-"
size_row "images: builder on disk vs its Debian base" "$builder_disk" "$base_disk" "-"
size_row "images: builder pulled (compressed) vs stripped kiln" "$builder_pull" "$stripped_bytes" "-"
time_row "images: controller build, cold vs warm" "${cold[controller]}" "${warm[controller]}" "-"
time_row "images: builder build, cold vs warm" "${cold[builder]}" "${warm[builder]}" "-"
