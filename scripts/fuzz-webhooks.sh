#!/usr/bin/env bash
# The webhook property test at full size: 1,000,000 generated requests through the parsers and
# the verification (release build). `make test` runs 20,000 of them.
set -euo pipefail
cd "$(dirname "$0")/.."
WEBHOOK_FUZZ_CASES=${WEBHOOK_FUZZ_CASES:-1000000} \
  cargo test --release --lib webhook::fuzz_tests -- --nocapture
