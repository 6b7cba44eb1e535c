#!/usr/bin/env bash
# Makes the two base images the go-server example builds from, out of this machine's Debian packages
# (golang-go, busybox-static), so no image has to be pulled from the internet:
#   <registry>/library/golang:1.19   Go toolchain + busybox shell + the glibc the `go` driver needs
#   <registry>/library/busybox:latest  a static busybox, the example's runtime base
#
# usage: scripts/make-base-images.sh REGISTRY_HOST:PORT [--no-push] [--tls-verify=true]
# environment: BUILDAH_ROOT / BUILDAH_RUNROOT select a buildah storage (default: the system's),
#              STORAGE_DRIVER (default overlay, falls back to vfs when overlay cannot mount).
set -euo pipefail

registry=${1:?usage: make-base-images.sh REGISTRY_HOST:PORT [--no-push] [--tls-verify=true]}
shift
push=1
tls_verify=false
for arg in "$@"; do
  case "$arg" in
    --no-push) push=0 ;;
    --tls-verify=*) tls_verify=${arg#--tls-verify=} ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
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

if [ "$push" = 1 ]; then
  for image in library/busybox:latest library/golang:1.19; do
    echo "== push $registry/$image"
    bah push --quiet --tls-verify="$tls_verify" "$registry/$image" "docker://$registry/$image"
  done
fi
echo "base images ready: $registry/library/golang:1.19 $registry/library/busybox:latest"
