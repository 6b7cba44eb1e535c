#!/usr/bin/env bash
# Controller benchmark (release build). Runs the real `kiln controller` process against
# `kiln-sandbox serve --kubelet --instant` over TCP on 127.0.0.1: 1,000 BuildConfigs, 5,000 builds
# started through `instantiate`, paced round-robin (default 50/s; CONTROLLER_BENCH_RATE,
# CONTROLLER_BENCH_BUILDCONFIGS, CONTROLLER_BENCH_BUILDS override). Prints
# `ROW|<name>|<measured>|<baseline>|<ratio>|<target>` and a summary:
#  - Build created -> Pod created and Pod Succeeded -> ImageStream updated, p50 and p99, from the
#    driver's watches; baseline = the sandbox's own create -> watch event round trip, same run;
#  - API writes and reads per Complete build, counted by the sandbox per User-Agent (the driver
#    and the kubelet identify themselves; the rest is the controller);
#  - the controller's peak RSS (VmHWM) against its idle RSS before the load;
#  - the scale step (CONTROLLER_BENCH_SCALE_BUILDS finished builds in all, default 20,000; 0
#    skips it; CONTROLLER_BENCH_SCALE_CONFIGS Parallel BuildConfigs that keep every build,
#    default 200): builds started unpaced, the rate the controller creates their Pods against
#    the rate the driver offers, and its RSS slope per finished build against the RSS per build
#    of the main load; the summary gives the CPU the controller and the sandbox used during the
#    step, so that it shows which of them bounded the rate.
# KILN_BIN, KILN_SANDBOX_BIN and KILN_CRDS run the bench against other binaries and CRDs than
# this checkout's (those given are not built).
# CONTROLLER_BENCH_REFERENCE=<checkout> compares this checkout's controller with another one's (an
# older commit, its release `kiln` built in <checkout>/target/release), both against this
# checkout's sandbox so that only the controller differs (CONTROLLER_BENCH_REFERENCE_SANDBOX=1
# runs the reference against its own `kiln-sandbox` instead): the bench runs
# CONTROLLER_BENCH_ROUNDS times (default 3) for each, alternating, so both see the same machine
# load; each row's measured is this checkout's median, its baseline the reference's median, and
# its ratio this / reference (target <= 1.1 where the row has a target).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
echo "building kiln, kiln-sandbox and the controller benchmark (release)" >&2
[ -n "${KILN_BIN:-}" ] || cargo build --release --quiet --bin kiln >&2
[ -n "${KILN_SANDBOX_BIN:-}" ] || cargo build --release --quiet -p kiln-sandbox --bin kiln-sandbox >&2
cargo bench --bench controller --no-run --quiet >&2
kiln=${KILN_BIN:-$target/release/kiln}
sandbox=${KILN_SANDBOX_BIN:-$target/release/kiln-sandbox}
crds=${KILN_CRDS:-$root/crds}

# run <kiln> <kiln-sandbox> <crds>: one bench run.
run() {
  KILN_BIN=$1 KILN_SANDBOX_BIN=$2 KILN_CRDS=$3 cargo bench --bench controller --quiet
}

reference=${CONTROLLER_BENCH_REFERENCE:-}
if [ -z "$reference" ]; then
  run "$kiln" "$sandbox" "$crds"
  exit
fi

rounds=${CONTROLLER_BENCH_ROUNDS:-3}
ref_sandbox=$sandbox
[ -n "${CONTROLLER_BENCH_REFERENCE_SANDBOX:-}" ] && ref_sandbox=$reference/target/release/kiln-sandbox
ref=(
  "$reference/target/release/kiln"
  "$ref_sandbox"
  "$reference/crds"
)
for f in "${ref[@]}"; do
  [ -e "$f" ] || { echo "no $f (build the reference in release first)" >&2 && exit 2; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((i = 1; i <= rounds; i++)); do
  order=(reference current)
  [ $((i % 2)) -eq 0 ] && order=(current reference)
  for which in "${order[@]}"; do
    echo "== round $i of $rounds: $which" >&2
    if [ "$which" = reference ]; then
      run "${ref[@]}"
    else
      run "$kiln" "$sandbox" "$crds"
    fi | tee /dev/stderr | grep '^ROW|' > "$out/$which.$i" || true
  done
done
# Rows are matched by their position; the numbers are the leading number of each measured cell.
awk -F'|' -v rounds="$rounds" '
  function median(list,   n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  FNR == 1 { which = FILENAME; sub(/.*\//, "", which); sub(/\..*/, "", which) }
  {
    k = FNR; value = $3 + 0; unit = $3; sub(/^[-0-9.]+ ?/, "", unit)
    values[which, k] = values[which, k] " " value
    if (which == "current") { name[k] = $2; sub(/;? ?baseline ?[:=][^)]*/, "", name[k]); units[k] = unit; goal[k] = ($6 == "-" || $6 ~ /^- /) ? "-" : "<= 1.1" }
    if (k > rows) rows = k
  }
  END {
    for (k = 1; k <= rows; k++) {
      if (!((("current", k) in values) && (("reference", k) in values))) continue
      c = median(values["current", k]); r = median(values["reference", k])
      sep = units[k] == "" ? "" : " "
      printf "ROW|%s (this checkout against the reference, median of %d runs each)|%g%s%s|%g%s%s|%.3f|%s\n",
        name[k], rounds, c, sep, units[k], r, sep, units[k], (r == 0 ? 0 : c / r), goal[k]
    }
  }' "$out"/current.* "$out"/reference.*
