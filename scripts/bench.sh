#!/usr/bin/env bash
# Runs every benchmark (or those named: scripts/bench.sh images builder) and prints their rows as
# one table.
# A benchmark prints lines `ROW|<name>|<measured>|<baseline>|<ratio>|<target>`; everything else is progress.
set -euo pipefail
cd "$(dirname "$0")/.."
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
benches=(scripts/bench.d/*.sh)
[ "$#" -gt 0 ] && benches=("${@/#/scripts/bench.d/}") && benches=("${benches[@]/%/.sh}")
for bench in "${benches[@]}"; do
  [ -x "$bench" ] || { [ "$#" -gt 0 ] && echo "no benchmark $bench" >&2 && exit 2; continue; }
  echo "== $(basename "$bench")" >&2
  "$bench" | tee /dev/stderr | grep '^ROW|' >> "$rows" || true
done
echo
{
  echo "benchmark|measured|baseline|ratio|target"
  cut -d'|' -f2- "$rows"
} | column -t -s'|'
