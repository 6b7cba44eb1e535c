#!/usr/bin/env bash
# Binary upload benchmark: `kiln start-build --from-dir` of a 200 MiB incompressible directory
# through pods/attach on the sandbox (tests/e2e_binary.rs, debug build as the test suite runs it).
# Prints `ROW|<name>|<measured>|<baseline>|<ratio>|<target>`: the peak RSS of the client against
# the upload's size, of the controller against its own peak before the upload, of the sandbox's
# API server and kubelet, and the upload's time.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(cargo test --quiet --test e2e_binary -- binary_uploads --nocapture 2>&1) || {
  echo "$out" >&2
  exit 1
}
line=$(grep '^BENCH|binary-upload|' <<<"$out" | tail -1)
IFS='|' read -r _ _ client controller before sandbox millis <<<"$line"
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "ROW|binary upload 200 MiB: kiln start-build peak RSS|$(mib "$client")|200 MiB uploaded|$(ratio "$client" 204800)|flat, < 64 MiB"
echo "ROW|binary upload 200 MiB: controller peak RSS|$(mib "$controller")|$(mib "$before") before the upload|$(ratio "$controller" "$before")|not in the data path"
echo "ROW|binary upload 200 MiB: sandbox (apiserver + kubelet) peak RSS|$(mib "$sandbox")|200 MiB uploaded|$(ratio "$sandbox" 204800)|flat"
echo "ROW|binary upload 200 MiB: upload time|$(awk -v m="$millis" 'BEGIN { printf "%.1f s", m / 1000 }')|-|-|-"
