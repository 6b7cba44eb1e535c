#!/usr/bin/env bash
# The seed example built in the cluster with build Pods in kiln's builder image under runc (the
# default `unprivileged` profile), against the same build with build Pods as host processes:
# `make demo` run once per runtime (DEMO_RUNTIME=runc, then host), each build's status.duration
# and the sum of its stages' durations read from the demo's last lines. Rows, for the first build
# (empty buildah storage: base images pulled) and the second (after a one-line change): the
# build step itself (the stages: pulls, buildah, push), and the whole build from the Pod's start
# (under runc that includes pulling the builder image and the sandbox's copy of it shifted into
# the Pod's user-namespace id range, which a node with id-mapped mounts does not make).
# Prints `ROW|<name>|<measured>|<baseline>|<ratio>|<target>` lines.
set -euo pipefail
cd "$(dirname "$0")/../.."

durations() {
  local log
  log=$(mktemp)
  DEMO_RUNTIME=$1 scripts/demo.sh > "$log" 2>&1 || { tail -n 60 "$log" >&2; rm -f "$log"; return 1; }
  grep '^build durations' "$log" >&2
  grep '^build durations' "$log" | tail -n 1
  rm -f "$log"
}
# seconds NAME LINE: the duration of build NAME in a `build durations` line.
seconds() { tr ' ' '\n' <<< "$2" | sed -n "s/^$1=\([0-9.]*\)s$/\1/p"; }
row() { awk -v n="$1" -v m="$2" -v b="$3" -v t="$4" 'BEGIN { printf "ROW|%s|%.1fs|%.1fs|%.3f|%s\n", n, m, b, m / b, t }'; }

runc_line=$(durations runc)
host_line=$(durations host)
for build in go-server-1 go-server-2; do
  row "seed $build build step: runc builder image / host process" \
    "$(seconds "$build-stages" "$runc_line")" "$(seconds "$build-stages" "$host_line")" "≤ 1.15"
  row "seed $build from Pod start: runc builder image / host process" \
    "$(seconds "$build" "$runc_line")" "$(seconds "$build" "$host_line")" "report"
done
