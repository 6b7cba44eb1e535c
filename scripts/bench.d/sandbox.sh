#!/usr/bin/env bash
# Sandbox API server benchmarks (release build). Prints `ROW|<name>|<measured>|<baseline>|<ratio>|<target>`:
#  - writes/s in-process and over TCP (1 and 16 requests in flight), baseline = the target rate;
#  - watch fan-out: 10 watchers x 10,000 objects, against the same writes with no watcher;
#  - resident memory after those objects (and their watch history), against the empty process.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "building the sandbox benchmark (release)" >&2
cargo bench -p kiln-sandbox --bench apiserver --no-run --quiet >&2
cargo bench -p kiln-sandbox --bench apiserver --quiet 2>/dev/null | grep '^ROW|'
