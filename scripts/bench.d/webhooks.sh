#!/usr/bin/env bash
# Webhook benchmarks (release build). Prints `ROW|<name>|<measured>|<baseline>|<ratio>|<target>`:
#  - refused bad-signature requests per second over HTTP, against /healthz of the same server;
#  - verify + parse of a 1 MiB GitHub push (p50, p99), against a serde_json parse of it.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "building the webhook benchmark (release)" >&2
cargo bench --bench webhooks --no-run --quiet >&2
cargo bench --bench webhooks --quiet
