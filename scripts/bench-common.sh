# Shared by the benchmarks in scripts/bench.d/ (sourced, never run): ports, time, and a loopback
# registry. Expects `work` (a scratch directory) and `pids` (an array the caller's cleanup kills).

free_port() { # a random high port nothing listens on
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
now() { date +%s.%N; }

# Starts a `docker-registry` on a free port of 127.0.0.1, storing under $work/registry; sets
# `registry` to its address.
start_registry() {
  local port
  port=$(free_port)
  cat > "$work/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
  pids+=($!)
  wait_port "$port"
  registry=127.0.0.1:$port
}
