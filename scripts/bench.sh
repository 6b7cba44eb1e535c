#!/usr/bin/env bash
# Runs every benchmark and prints their rows as one table.
# A benchmark prints lines `ROW|<name>|<measured>|<baseline>|<ratio>|<target>`; everything else is progress.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
for bench in scripts/bench.d/*.sh; do
  [ -x "$bench" ] || continue
  echo "== $(basename "$bench")" >&2
  "$bench" | tee /dev/stderr | grep '^ROW|' >> "$rows" || true
done
echo
{
  echo "benchmark|measured|baseline|ratio|target"
  cut -d'|' -f2- "$rows"
} | column -t -s'|'
