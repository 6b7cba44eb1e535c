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
#    of the main load.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
echo "building kiln, kiln-sandbox and the controller benchmark (release)" >&2
cargo build --release --quiet --bin kiln >&2
cargo build --release --quiet -p kiln-sandbox --bin kiln-sandbox >&2
cargo bench --bench controller --no-run --quiet >&2
target=${CARGO_TARGET_DIR:-$root/target}
KILN_BIN=$target/release/kiln KILN_SANDBOX_BIN=$target/release/kiln-sandbox KILN_CRDS=$root/crds \
  cargo bench --bench controller --quiet
