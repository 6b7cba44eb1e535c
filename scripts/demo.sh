#!/usr/bin/env bash
# `make demo`: the seed's go-server example built by the kiln operator, end to end, on this machine.
#
#   docker-registry        the internal registry (base images and build output), 127.0.0.1
#   git daemon             serves a repository holding examples/go-server, 127.0.0.1
#   buildah               kiln's builder image from the repository's Dockerfile (target builder,
#                          the kiln just built, Debian 12 bases made by mmdebstrap and cached),
#                          pushed to the registry
#   kiln-sandbox serve     a stand-in kube-apiserver enforcing authentication, RBAC and Pod
#                          Security, + a local kubelet running build Pods in the builder image
#                          with runc, the chart's seccomp profile under its seccomp root
#   helm template          renders the chart's RBAC: the controller's ServiceAccount, ClusterRole
#                          and binding, and the aggregated tenant roles
#   kiln controller        the operator, on its ServiceAccount's token (exactly the chart's rights)
#   kubectl                the admin applies crds/ and the namespace; the tenant `developer`,
#                          bound only to `edit` in namespace demo, applies examples/go-server/ and
#                          starts and follows the builds with its own token
#
# Then the produced image's /app/server is run and asked for its page.
# Everything it starts is stopped by PID and its temporary directory removed on exit.
#
# environment: DEMO_KEEP=1 keeps the temporary directory (logs, kubeconfig) for inspection;
#              DEMO_TIMEOUT (seconds, default 600) bounds the build;
#              DEMO_RUNTIME=host runs build Pods as host processes (the builder image maps to
#              target/debug/kiln) instead of building the builder image and running it with runc;
#              DEMO_BUILD_STORAGE=volume gives the BuildConfig a build storage claim
#              (`kiln controller --build-storage volume`): the second build finds the first's
#              bases and layers.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
timeout_s=${DEMO_TIMEOUT:-600}
runtime=${DEMO_RUNTIME:-runc}
case "$runtime" in runc|host) ;; *) echo "DEMO_RUNTIME must be runc or host" >&2; exit 2 ;; esac
build_storage=${DEMO_BUILD_STORAGE:-ephemeral}
case "$build_storage" in ephemeral|volume) ;; *) echo "DEMO_BUILD_STORAGE must be ephemeral or volume" >&2; exit 2 ;; esac
start=$(date +%s)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
elapsed() { echo "$(($(date +%s) - start))s"; }

say "dependencies"
if [ "$(id -u)" = 0 ]; then
  scripts/install-deps.sh
else
  echo "not root: skipping scripts/install-deps.sh (run 'sudo scripts/install-deps.sh' if tools are missing)"
fi
for tool in cargo kubectl helm docker-registry buildah skopeo git go busybox curl runc mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

say "build kiln and kiln-sandbox (cargo build --workspace --bins)"
cargo build --workspace --bins
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
kiln=$target_dir/debug/kiln
sandbox=$target_dir/debug/kiln-sandbox

work=$(mktemp -d -t kiln-demo.XXXXXX)
# Searchable by others (not listable): user-namespaced build containers, unmapped ids on this
# machine, pass through it to their root file systems under the kubelet root.
chmod 0711 "$work"
pids=()
storage=(--root "$work/storage/root" --runroot "$work/storage/run")
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -d "$work/storage" ]; then
    # Removing the containers also unmounts the storage (overlay bind-mounts its own directory).
    buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true
  fi
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "kept $work (logs: $work/*.log)"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

on_failure() {
  echo
  echo "!! the demo failed after $(elapsed); recent logs:" >&2
  for log in "$work"/sandbox.log "$work"/controller.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 40 "$log" >&2; }
  done
  if [ -f "$work/kubeconfig" ]; then
    echo "--- builds" >&2
    KUBECONFIG=$work/kubeconfig kubectl -n demo get builds -o yaml 2>&1 | tail -n 60 >&2 || true
  fi
}
trap on_failure ERR

# A free port on 127.0.0.1 (nothing answers on it).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND every 0.2 s until it succeeds or time runs out.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "timed out after ${limit}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

say "registry on 127.0.0.1"
registry_port=$(free_port)
registry=127.0.0.1:$registry_port
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $registry
EOF
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
pids+=($!)
wait_for "the registry" 30 listening "$registry_port"
echo "registry: $registry"

say "base images (golang, busybox) from Debian packages, pushed to $registry"
BUILDAH_ROOT=$work/storage/root BUILDAH_RUNROOT=$work/storage/run \
  scripts/make-base-images.sh "$registry"

if [ "$runtime" = runc ]; then
  say "kiln's builder image from the Dockerfile (target builder, this kiln), pushed to $registry"
  BUILDAH_ROOT=$work/storage/root BUILDAH_RUNROOT=$work/storage/run \
    scripts/make-base-images.sh "$registry" --kiln --no-push
  mkdir -p target/image
  cp "$kiln" target/image/kiln
  builder_image=$registry/kiln/builder:demo
  buildah "${storage[@]}" bud --quiet --isolation chroot --layers --target builder \
    --build-arg "BUILD_IMAGE=$registry/base/debian-build:bookworm" \
    --build-arg "DEBIAN_IMAGE=$registry/base/debian:bookworm" \
    --build-arg KILN_FROM=prebuilt --build-arg KILN_BINARY=target/image/kiln \
    --tag "$builder_image" . > /dev/null
  buildah "${storage[@]}" push --quiet --tls-verify=false "$builder_image" "docker://$builder_image"
  echo "builder image: $builder_image"
  # What the chart's DaemonSet does on each node: the build Pods' Localhost seccomp profile.
  mkdir -p "$work/seccomp/kiln"
  cp charts/kiln/files/seccomp/builder.json "$work/seccomp/kiln/builder.json"
  kubelet_args=(--runtime runc --seccomp-root "$work/seccomp")
else
  builder_image=kiln-builder:local
  kubelet_args=(--image-map "$builder_image=$kiln")
fi

say "git server holding examples/go-server"
mkdir -p "$work/git/src/examples"
cp -r examples/go-server "$work/git/src/examples/go-server"
(
  cd "$work/git/src"
  export GIT_CONFIG_NOSYSTEM=1 HOME=$work/git
  git init -q -b main
  git add -A
  git -c user.name=Demo -c user.email=demo@example.com commit -q -m "go-server example"
)
git clone -q --bare "$work/git/src" "$work/git/go-server.git"
git_port=$(free_port)
# git-daemon itself rather than the `git daemon` wrapper, so the PID we stop is the daemon's.
"$(git --exec-path)/git-daemon" --export-all --reuseaddr --listen=127.0.0.1 --port="$git_port" \
  --base-path="$work/git" "$work/git" > "$work/git.log" 2>&1 &
pids+=($!)
wait_for "git daemon" 30 listening "$git_port"
git_url=git://127.0.0.1:$git_port/go-server.git
echo "git: $git_url"

say "kiln-sandbox serve --authorization rbac --pod-security --kubelet ${kubelet_args[*]:0:2}"
"$sandbox" serve --listen 127.0.0.1:0 --kubeconfig "$work/kubeconfig" --service-account-admission \
  --authorization rbac --pod-security --kubelet --kubelet-root "$work/kubelet" \
  "${kubelet_args[@]}" > "$work/sandbox.out" 2> "$work/sandbox.log" &
pids+=($!)
wait_for "the sandbox" 30 grep -q '^listening on' "$work/sandbox.out"
head -n 1 "$work/sandbox.out"
export KUBECONFIG=$work/kubeconfig

say "kubectl apply -f crds/"
kubectl apply -f crds/
kubectl wait --for=condition=established --timeout=30s crd --all

# token_kubeconfig SA NAMESPACE FILE: the admin's kubeconfig with a token of that ServiceAccount.
token_kubeconfig() {
  local token
  token=$(kubectl create token "$1" -n "$2" --duration=24h)
  sed "s|token: sandbox|token: $token|" "$work/kubeconfig" > "$3"
}

say "helm template charts/kiln: the controller's ServiceAccount and RBAC, the tenant roles"
kubectl create namespace kiln-system
helm template kiln charts/kiln --namespace kiln-system > "$work/chart.yaml"
# Only the identity and the roles: the controller itself runs here as a process.
awk 'BEGIN { RS = "\n---\n"; ORS = "\n---\n" }
  /\nkind: (ServiceAccount|ClusterRole|ClusterRoleBinding)\n/' "$work/chart.yaml" > "$work/chart-rbac.yaml"
kubectl apply -f "$work/chart-rbac.yaml"
controller_account=$(kubectl get clusterrolebindings -o jsonpath='{.items[?(@.metadata.labels.app\.kubernetes\.io/instance=="kiln")].subjects[0].name}')
token_kubeconfig "$controller_account" kiln-system "$work/kubeconfig-controller"
echo "controller: $(KUBECONFIG=$work/kubeconfig-controller kubectl auth whoami -o jsonpath='{.status.userInfo.username}')"

say "kiln controller --registry $registry --insecure-registry-internal --build-storage $build_storage (as its ServiceAccount)"
controller_port=$(free_port)
KUBECONFIG=$work/kubeconfig-controller "$kiln" controller --listen "127.0.0.1:$controller_port" --registry "$registry" \
  --insecure-registry-internal --builder-image "$builder_image" --build-storage "$build_storage" \
  > "$work/controller.log" 2>&1 &
pids+=($!)
wait_for "the controller to be ready" 60 curl -fsS "http://127.0.0.1:$controller_port/readyz"
echo "controller ready on 127.0.0.1:$controller_port"

say "kubectl apply -f examples/go-server/ (git URI and base-image registry set for this machine)"
mkdir -p "$work/manifests"
for f in examples/go-server/*.yaml; do
  sed -e "s|^\(\s*uri:\).*|\1 $git_url|" \
    -e "/name: REGISTRY/{n;s|^\(\s*value:\).*|\1 \"$registry\"|}" \
    "$f" > "$work/manifests/$(basename "$f")"
done
diff -u examples/go-server/buildconfig.yaml "$work/manifests/buildconfig.yaml" | sed -n '3,$p' || true
# The platform team: the namespace (Pod Security `baseline`), its builder ServiceAccount, and a
# tenant bound to edit there.
kubectl apply -f "$work/manifests/00-namespace.yaml"
# The controller reads Secrets only where a namespace grants it (the chart's secret-reader role).
kubectl -n demo create rolebinding kiln-secret-reader --clusterrole=kiln-secret-reader \
  --serviceaccount="kiln-system:$controller_account"
echo "namespace demo enforces Pod Security $(kubectl get namespace demo -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')"
kubectl -n demo create serviceaccount developer
kubectl -n demo create rolebinding developer-edit --clusterrole=edit --serviceaccount=demo:developer
token_kubeconfig developer demo "$work/kubeconfig-tenant"
# From here on, everything is the tenant's own doing, with its own token.
export KUBECONFIG=$work/kubeconfig-tenant
echo "tenant: $(kubectl auth whoami -o jsonpath='{.status.userInfo.username}')"
kubectl apply -f "$work/manifests/imagestream.yaml" -f "$work/manifests/buildconfig.yaml"

# follow_build NAME: streams the build Pod's clone and build logs, then waits for Complete.
follow_build() {
  local build=$1 pod=$1-build
  wait_for "pod $pod" 60 kubectl -n demo get pod "$pod"
  wait_for "the clone container" 60 sh -c "kubectl -n demo logs $pod -c clone --tail=1 >/dev/null"
  timeout --foreground "$timeout_s" kubectl -n demo logs -f "$pod" -c clone || true
  wait_for "the build container" 120 sh -c "kubectl -n demo logs $pod -c build --tail=1 >/dev/null"
  timeout --foreground "$timeout_s" kubectl -n demo logs -f "$pod" -c build || true
  kubectl -n demo wait --for=jsonpath='{.status.phase}'=Complete "build/$build" --timeout=60s
}

say "following build go-server-1 (its ConfigChange trigger started it)"
follow_build go-server-1

say "kiln start-build go-server: a second build, after a new commit on main"
(
  cd "$work/git/src"
  export GIT_CONFIG_NOSYSTEM=1 HOME=$work/git
  echo "// Second version." >> examples/go-server/server.go
  git -c user.name=Demo -c user.email=demo@example.com commit -q -am "second version"
  git push -q "$work/git/go-server.git" main
)
"$kiln" start-build go-server -n demo
follow_build go-server-2

say "kubectl get builds,is"
kubectl -n demo get builds,is
if [ "$build_storage" = volume ]; then
  echo
  kubectl -n demo get pvc -o jsonpath='{range .items[*]}build storage claim {.metadata.name}: {.status.phase}, owned by {.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name}{"\n"}{end}'
fi
echo
echo "tag history of go-server:latest (newest first):"
kubectl -n demo get is go-server \
  -o jsonpath='{range .status.tags[?(@.tag=="latest")].items[*]}  {.created}  {.image}{"\n"}{end}'
digest=$(kubectl -n demo get is go-server -o jsonpath='{.status.tags[?(@.tag=="latest")].items[0].image}')
registry_digest=$(curl -fsSI \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
  "http://$registry/v2/demo/go-server/manifests/latest" | tr -d '\r' |
  sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
echo "ImageStream digest: $digest"
echo "registry digest:    $registry_digest"
[ "$digest" = "$registry_digest" ] || { echo "digests differ" >&2; false; }

say "running the produced image's /app/server"
ctr=$(buildah "${storage[@]}" from --quiet --tls-verify=false "docker://$registry/demo/go-server:latest")
mnt=$(buildah "${storage[@]}" mount "$ctr")
app_port=$(free_port)
PORT=$app_port "$mnt/app/server" > "$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_for "the server" 20 listening "$app_port"
echo "GET http://127.0.0.1:$app_port/"
answer=$(curl -fsS "http://127.0.0.1:$app_port/")
echo "$answer"
kill "$server_pid"
buildah "${storage[@]}" umount "$ctr" >/dev/null
echo "$answer" | grep -q '^Welcome to my website!$'
echo "$answer" | grep -Eq '^[0-9a-f]{32}$'

say "the build Pod (security profile: the controller's default, unprivileged), and what RBAC refused"
kubectl -n demo get pod go-server-2-build \
  -o jsonpath='hostUsers {.spec.hostUsers}, Pod seccompProfile {.spec.securityContext.seccompProfile}{"\n"}{range .spec.containers[*]}container {.name}: image {.image}, securityContext {.securityContext}{"\n"}{end}{range .status.containerStatuses[*]}container {.name} ran imageID {.imageID}{"\n"}{end}'
refused=$(grep -c 'forbidden:' "$work/sandbox.log" || true)
echo "requests refused by the API server's RBAC: $refused"
[ "$refused" = 0 ] || { grep 'forbidden:' "$work/sandbox.log" >&2; false; }

# One line `make bench` reads (scripts/bench.d/seed-runtime.sh): per build, status.duration (from
# the Pod's start: image pull and container creation included) and the sum of its stages'
# durations (the build step itself: pulls, buildah, push).
durations=$(kubectl -n demo get builds -o go-template='{{range .items}}{{.metadata.name}}={{.status.duration}}:{{range .status.stages}}{{.durationMilliseconds}}+{{end}} {{end}}')
echo "build durations ($runtime runtime):$(for d in $durations; do
  awk -v n="${d%%=*}" -v v="${d#*=}" 'BEGIN {
    split(v, parts, ":"); k = split(parts[2], stages, "+"); sum = 0
    for (i = 1; i <= k; i++) sum += stages[i]
    printf " %s=%.1fs %s-stages=%.1fs", n, parts[1] / 1e9, n, sum / 1000 }'; done)"

say "done in $(elapsed)"
