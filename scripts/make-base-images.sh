#!/usr/bin/env bash
# Makes base images locally, so no image has to be pulled from the internet. Two sets:
#
# example (default): the two bases the go-server example builds from, out of this machine's Debian
#   packages (golang-go, busybox-static):
#     <registry>/library/golang:1.19   Go toolchain + busybox shell + the glibc the `go` driver needs
#     <registry>/library/busybox:latest  a static busybox, the example's runtime base
#   (--busybox: the busybox image alone, a few seconds; the runc runtime's tests run it)
#
# kiln (--kiln): the bases kiln's own Dockerfile takes as build arguments, as Debian 12 root
#   filesystems made by mmdebstrap from Debian's package archive (minbase variant, documentation
#   and translations left out as in Debian's slim images):
#     <registry>/base/debian:bookworm        minbase; stands in for debian:bookworm-slim
#                                            (DEBIAN_IMAGE: the builder image's base)
#     <registry>/base/debian-build:bookworm  minbase + binutils, libssl3, ca-certificates; stands in
#                                            for rust:bookworm when kiln is prebuilt (BUILD_IMAGE:
#                                            strips kiln and assembles the controller's root)
#   Each root filesystem is kept as a tarball in the cache directory (--cache=DIR, default
#   $KILN_BASE_CACHE or ~/.cache/kiln/base-images), named by a hash of its inputs (suite, variant,
#   packages, mirror, options), so only the first run downloads packages (about a minute each);
#   delete the directory to pick up newer Debian packages.
#
# usage: scripts/make-base-images.sh REGISTRY_HOST:PORT [--kiln|--busybox] [--cache=DIR] [--no-push]
#                                    [--tls-verify=true]
# environment: BUILDAH_ROOT / BUILDAH_RUNROOT select a buildah storage (default: the system's),
#              STORAGE_DRIVER (default overlay, falls back to vfs when overlay cannot mount),
#              DEBIAN_MIRROR (default: mmdebstrap's, deb.debian.org with updates and security).
set -euo pipefail

usage="usage: make-base-images.sh REGISTRY_HOST:PORT [--kiln|--busybox] [--cache=DIR] [--no-push] [--tls-verify=true]"
registry=${1:?$usage}
shift
push=1
tls_verify=false
set_name=example
cache=${KILN_BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/base-images}
for arg in "$@"; do
  case "$arg" in
    --no-push) push=0 ;;
    --kiln) set_name=kiln ;;
    --busybox) set_name=busybox ;;
    --cache=*) cache=${arg#--cache=} ;;
    --tls-verify=*) tls_verify=${arg#--tls-verify=} ;;
    *) echo "unknown argument: $arg ($usage)" >&2; exit 2 ;;
  esac
done

driver=${STORAGE_DRIVER:-overlay}
storage_opts() {
  local opts=(--storage-driver "$driver")
  [ -n "${BUILDAH_ROOT:-}" ] && opts+=(--root "$BUILDAH_ROOT")
  [ -n "${BUILDAH_RUNROOT:-}" ] && opts+=(--runroot "$BUILDAH_RUNROOT")
  printf '%s\n' "${opts[@]}"
}
mapfile -t storage < <(storage_opts)
bah() { buildah "${storage[@]}" "$@"; }

if ! ctr=$(bah from scratch 2>/dev/null); then
  echo "storage driver $driver unusable here, falling back to vfs" >&2
  driver=vfs
  mapfile -t storage < <(storage_opts)
  ctr=$(bah from scratch)
fi

push_all() {
  [ "$push" = 1 ] || return 0
  local image
  for image in "$@"; do
    echo "== push $registry/$image"
    bah push --quiet --tls-verify="$tls_verify" "$registry/$image" "docker://$registry/$image"
  done
}

# debian_rootfs NAME PACKAGES: prints the path of a cached Debian 12 minbase tarball with PACKAGES
# (comma-separated, may be empty) added, making it with mmdebstrap when the cache has none.
debian_rootfs() {
  local name=$1 packages=$2 suite=bookworm
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed (scripts/install-deps.sh)" >&2; exit 1; }
  local opts=(--variant=minbase --skip=output/dev
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*')
  [ -n "$packages" ] && opts+=(--include="$packages")
  local mirrors=()
  [ -n "${DEBIAN_MIRROR:-}" ] && mirrors+=("$DEBIAN_MIRROR")
  local key
  key=$(printf '%s\n' "$suite" "${opts[@]}" "${mirrors[@]}" | sha256sum | cut -c1-16)
  local tarball=$cache/$name-$suite-$key.tar
  if [ ! -s "$tarball" ]; then
    mkdir -p "$cache"
    echo "mmdebstrap $name ($suite${packages:+ + $packages}) into $tarball" >&2
    mmdebstrap --quiet "${opts[@]}" "$suite" "$tarball.partial" "${mirrors[@]}" >&2
    mv "$tarball.partial" "$tarball"
  fi
  echo "$tarball"
}

# debian_image TARBALL IMAGE LABEL: a one-layer image of a root filesystem tarball.
debian_image() {
  local tarball=$1 image=$2 label=$3 c
  c=$(bah from scratch)
  bah add --quiet "$c" "$tarball" / >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd bash --label "io.kiln.base=$label" "$c"
  bah commit --quiet --rm "$c" "$registry/$image" >/dev/null
}

if [ "$set_name" = kiln ]; then
  bah rm "$ctr" >/dev/null
  # Both root filesystems at once: mmdebstrap mostly waits on the network.
  slim_out=$(mktemp); build_out=$(mktemp)
  trap 'rm -f "$slim_out" "$build_out"' EXIT
  debian_rootfs debian "" > "$slim_out" &
  slim_pid=$!
  debian_rootfs debian-build "binutils,ca-certificates,libssl3" > "$build_out" &
  build_pid=$!
  wait "$slim_pid"
  wait "$build_pid"
  echo "== base/debian:bookworm"
  debian_image "$(cat "$slim_out")" base/debian:bookworm debian
  echo "== base/debian-build:bookworm"
  debian_image "$(cat "$build_out")" base/debian-build:bookworm debian-build
  push_all base/debian:bookworm base/debian-build:bookworm
  echo "base images ready: $registry/base/debian:bookworm $registry/base/debian-build:bookworm"
  exit 0
fi

goroot=$(go env GOROOT 2>/dev/null || echo /usr/lib/go-1.19)
goroot=$(readlink -f "$goroot")
goshare=$(dirname "$(readlink -f "$goroot/src")")
busybox=$(command -v busybox)
[ -x "$busybox" ] || { echo "busybox-static is not installed" >&2; exit 1; }

# install_busybox ROOTFS: a static busybox with one symlink per applet, plus /etc/passwd and /tmp.
install_busybox() {
  local root=$1
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
  chmod 1777 "$root/tmp"
  cp "$busybox" "$root/bin/busybox"
  local applet
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$root/etc/group"
}

echo "== busybox"
mnt=$(bah mount "$ctr")
install_busybox "$mnt"
bah umount "$ctr" >/dev/null
bah config --env PATH=/bin --cmd /bin/sh --label io.kiln.base=busybox "$ctr"
bah commit --quiet --rm "$ctr" "$registry/library/busybox:latest" >/dev/null
if [ "$set_name" = busybox ]; then
  push_all library/busybox:latest
  echo "base images ready: $registry/library/busybox:latest"
  exit 0
fi

echo "== golang (GOROOT $goroot)"
ctr=$(bah from scratch)
mnt=$(bah mount "$ctr")
install_busybox "$mnt"
mkdir -p "$mnt/go" "$mnt/lib64" "$mnt/lib/x86_64-linux-gnu" "$mnt/usr/local"
# Debian's layout, paths unchanged: binaries and the precompiled standard library under
# /usr/lib/go-X, sources under /usr/share/go-X. At these paths the precompiled std stays fresh, so
# a build compiles only its own packages (moved elsewhere, std is rebuilt on every cold build).
mkdir -p "$mnt$(dirname "$goroot")" "$mnt$(dirname "$goshare")"
cp -a "$goroot" "$mnt$goroot"
cp -a "$goshare" "$mnt$goshare"
rm -rf "$mnt$goshare/test" "$mnt$goroot/test"
ln -s "$goroot" "$mnt/usr/local/go"
# A build cache holding the standard library compiled for static (CGO_ENABLED=0) builds: Debian
# precompiles std with cgo, so without it every static build recompiles net, net/http and friends.
mkdir -p "$mnt/root/.cache/go-build"
GOCACHE="$mnt/root/.cache/go-build" CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$goroot/bin/go" build std
# The `go` driver is dynamically linked against glibc (compile and link are static).
for lib in $(ldd "$goroot/bin/go" | awk '/=>/ {print $3} /^[ \t]*\// {print $1}'); do
  real=$(readlink -f "$lib")
  mkdir -p "$mnt$(dirname "$lib")"
  cp "$real" "$mnt$lib"
done
bah umount "$ctr" >/dev/null
bah config \
  --env PATH="$goroot/bin:/usr/local/go/bin:/go/bin:/bin" \
  --env GOPATH=/go --env GOCACHE=/root/.cache/go-build \
  --env GOFLAGS=-buildvcs=false --env GOPROXY=off --env GOTOOLCHAIN=local \
  --workingdir /go --cmd /bin/sh --label io.kiln.base=golang "$ctr"
bah commit --quiet --rm "$ctr" "$registry/library/golang:1.19" >/dev/null

push_all library/busybox:latest library/golang:1.19
echo "base images ready: $registry/library/golang:1.19 $registry/library/busybox:latest"
