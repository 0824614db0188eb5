#!/usr/bin/env bash
# Side-by-side benchmark: tower-socketio vs socketioxide vs Node.js socket.io v4 vs a raw
# tokio-tungstenite server (the ceiling), in one run. See BENCHMARKS.md.
#
#   scripts/bench.sh                 # full run: 3 rounds, 10 s windows
#   scripts/bench.sh --quick         # smoke run: 1 round, short windows, fewer connections
#   scripts/bench.sh --rounds 5 --scenarios "echo fanout" --servers "ours node raw"
#   scripts/bench.sh --scenarios cluster --servers "ours node" --cluster-adapters "pubsub streams"
#
# Servers: ours (examples/bench_value.rs, README style with Data<serde_json::Value>), ours-ct
# (the same on a current-thread runtime; not in the default set), typed
# (examples/bench_typed.rs, a serde-derived struct), tuned (examples/bench_server.rs, the
# hand-tuned server), socketioxide (bench/socketioxide, its documented style), node
# (bench/node_server.js), raw (examples/raw_ws_server.rs, current-thread), raw-mt (the same on
# the multi-thread runtime; not in the default set). Scenarios: echo fanout fanout-bin
# connect upgrade polling-echo churn, cluster (3 nodes on one Redis, once per adapter of
# --cluster-adapters: pubsub = ours with the Redis adapter, Node with @socket.io/redis-adapter;
# streams = ours with the Redis Streams adapter, Node with @socket.io/redis-streams-adapter;
# rows ours-pubsub, node-pubsub, ours-streams, node-streams; --cluster-clients N receivers)
# and idle (100 000 idle connections from several loopback source addresses, then one
# broadcast to all; not in the default set, ask for it with --scenarios idle).
#
# Every server runs on core 0 (taskset -c 0; the cluster's 3 nodes share it), freshly
# started for each scenario; the load generator (examples/loadgen.rs) runs on core 1.
# Redis is not pinned; in the cluster scenario its CPU is reported apart (--redis-pid).
# Servers and scenarios are interleaved and the order of servers rotates each round.
# Results: target/bench/results.jsonl and a table with medians [min-max] and ratios to the
# raw server (to ours where raw has no row; in cluster, ours/node per adapter and
# streams/pubsub per server) on stdout.
set -euo pipefail

ROUNDS=3
DURATION=10
WARMUP=2
CONNECT_N=10000
UPGRADE_N=2000
CHURN_N=10000
POLL_N=200
CLUSTER_N=1000
CLUSTER_ADAPTERS="pubsub streams"
IDLE_N=100000
SCENARIOS="echo fanout fanout-bin connect upgrade polling-echo churn cluster"
SERVERS="ours typed tuned socketioxide node raw"
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
REDIS_PID=""
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1; DURATION=2; WARMUP=0.5; CONNECT_N=2000; UPGRADE_N=500; CHURN_N=2000
             POLL_N=50; CLUSTER_N=200; IDLE_N=5000 ;;
    --idle-clients) IDLE_N="$2"; shift ;;
    --cluster-clients) CLUSTER_N="$2"; shift ;;
    --cluster-adapters) CLUSTER_ADAPTERS="$2"; shift ;;
    --redis-pid) REDIS_PID="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --servers) SERVERS="$2"; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/examples
OUT=$TARGET/bench
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

# 10 000 connections on each side, and IDLE_N for the idle scenario (the server and the load
# generator inherit this limit).
want=$((IDLE_N + 20000))
[ "$want" -lt 65536 ] && want=65536
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 12000 ]; then
  echo "warning: fd limit $(ulimit -n) is below what the connect and churn scenarios need" >&2
fi
case " $SCENARIOS " in *" idle "*)
  if [ "$(ulimit -n)" -lt "$IDLE_N" ]; then
    echo "warning: fd limit $(ulimit -n) is below the idle scenario's $IDLE_N connections" >&2
  fi ;;
esac

echo "== building (release)"
cargo build --release --quiet --example loadgen --example bench_value --example bench_typed \
  --example bench_server --example raw_ws_server
cargo build --release --quiet --features redis-streams --example bench_cluster
case " $SERVERS " in *" socketioxide "*)
  # Its own project and lock file; the build shares our target dir's parent, not our deps.
  (cd bench/socketioxide && CARGO_TARGET_DIR=$TARGET/socketioxide-bench cargo build --release --quiet) ;;
esac
SIOX=$TARGET/socketioxide-bench/release/socketioxide-bench
if [ ! -d bench/node_modules/socket.io ] || [ ! -d bench/node_modules/@socket.io/redis-adapter ] \
  || [ ! -d bench/node_modules/@socket.io/redis-streams-adapter ]; then
  echo "== installing bench/node_modules"
  (cd bench && { npm ci --no-audit --no-fund --silent 2>/dev/null || npm install --no-audit --no-fund --silent; })
fi

SERVER_PIDS=()
cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# start_server NAME PORT [ADAPTER]: starts it pinned to core 0, waits (bounded) for "ready";
# with an ADAPTER (pubsub or streams), a cluster node on Redis (REDIS_URL, this run's own
# key prefix / stream name REDIS_KEY).
start_server() {
  local name=$1 port=$2 cluster=${3:-} log=$OUT/server-$1-$2.log pid
  if [ -n "$cluster" ]; then
    case "$name" in
      ours) REDIS_URL=$REDIS_URL BENCH_ADAPTER=$cluster BENCH_REDIS_KEY=$REDIS_KEY taskset -c 0 "$BIN/bench_cluster" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      node) REDIS_URL=$REDIS_URL BENCH_ADAPTER=$cluster BENCH_REDIS_KEY=$REDIS_KEY taskset -c 0 node bench/node_server.js "127.0.0.1:$port" > "$log" 2>&1 & ;;
      *) echo "no cluster server for $name" >&2; return 1 ;;
    esac
  else
    case "$name" in
      ours) taskset -c 0 "$BIN/bench_value" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      ours-ct) BENCH_RUNTIME=current_thread taskset -c 0 "$BIN/bench_value" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      typed) taskset -c 0 "$BIN/bench_typed" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      tuned) taskset -c 0 "$BIN/bench_server" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      socketioxide) taskset -c 0 "$SIOX" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      raw) taskset -c 0 "$BIN/raw_ws_server" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      raw-mt) BENCH_RUNTIME=multi_thread taskset -c 0 "$BIN/raw_ws_server" "127.0.0.1:$port" > "$log" 2>&1 & ;;
      node) taskset -c 0 node bench/node_server.js "127.0.0.1:$port" > "$log" 2>&1 & ;;
      *) echo "unknown server $name" >&2; return 1 ;;
    esac
  fi
  pid=$!
  SERVER_PIDS+=("$pid")
  for _ in $(seq 100); do
    grep -q '^ready' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $name did not start:" >&2
  cat "$log" >&2
  return 1
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== rustc $(rustc --version | cut -d' ' -f2), node $(node --version), socket.io $(node -p 'require("./bench/node_modules/socket.io/package.json").version'), socketioxide $(grep -A1 '^name = "socketioxide"$' bench/socketioxide/Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"

# The cluster's Redis, when it runs here: its CPU over the window is reported beside the
# nodes' (redis_cpu_*), not added to it. `--redis-pid` names it; otherwise, for a Redis on
# this host, its pid is asked of Redis (INFO server).
case " $SCENARIOS " in *" cluster "*)
  if [ -z "$REDIS_PID" ] && case "$REDIS_URL" in *127.0.0.1*|*localhost*) true ;; *) false ;; esac; then
    REDIS_PID=$(redis-cli -u "$REDIS_URL" INFO server 2>/dev/null | sed -n 's/^process_id:\([0-9]*\).*/\1/p' || true)
  fi
  if [ -n "$REDIS_PID" ] && [ ! -r "/proc/$REDIS_PID/stat" ]; then REDIS_PID=""; fi
  echo "== redis $(redis-cli -u "$REDIS_URL" INFO server 2>/dev/null | sed -n 's/^redis_version:\([^[:space:]]*\).*/\1/p' || true), pid ${REDIS_PID:-unknown (its CPU not reported)}" ;;
esac

# Below the ephemeral port range (32768+), so no client socket holds our next port.
PORT=21000
for round in $(seq "$ROUNDS"); do
  # Rotate the order of the servers every round.
  read -r -a order <<< "$SERVERS"
  shift_by=$(( (round - 1) % ${#order[@]} ))
  order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
  for scenario in $SCENARIOS; do
    units=("${order[@]}")
    if [ "$scenario" = cluster ]; then
      # Our Redis adapters vs Node's, each server once per adapter; socketioxide's Redis
      # adapter is another crate, not built here, and the raw server has no cluster.
      units=()
      for adapter in $CLUSTER_ADAPTERS; do
        for server in "${order[@]}"; do
          case "$server" in ours|node) units+=("$server-$adapter") ;; esac
        done
      done
    fi
    for unit in "${units[@]}"; do
      server=$unit adapter=""
      if [ "$scenario" = cluster ]; then server=${unit%-*} adapter=${unit##*-}; fi
      proto=sio
      if [ "${server%-mt}" = raw ]; then
        proto=raw
        # No Engine.IO handshake or polling in the raw server.
        case "$scenario" in upgrade|polling-echo) continue ;; esac
      fi
      extra=()
      if [ "$scenario" = cluster ]; then
        # A key prefix (pub/sub) or stream name (streams) of this run's own.
        REDIS_KEY=bench-$$-$round-$unit
        addrs="" pids=""
        for _ in 1 2 3; do
          PORT=$((PORT + 1))
          start_server "$server" "$PORT" "$adapter" || break
          addrs+="${addrs:+,}127.0.0.1:$PORT"
        done
        if [ "${#SERVER_PIDS[@]}" -ne 3 ]; then cleanup; continue; fi
        pids=$(IFS=,; echo "${SERVER_PIDS[*]}")
        extra=(--clients "$CLUSTER_N")
        if [ -n "$REDIS_PID" ]; then extra+=(--redis-pid "$REDIS_PID"); fi
      else
        PORT=$((PORT + 1))
        if ! start_server "$server" "$PORT"; then cleanup; continue; fi
        addrs=127.0.0.1:$PORT
        pids=${SERVER_PIDS[0]}
        case "$scenario" in
          connect) extra=(--clients "$CONNECT_N") ;;
          upgrade) extra=(--clients "$UPGRADE_N") ;;
          churn) extra=(--clients "$CHURN_N") ;;
          polling-echo) extra=(--clients "$POLL_N") ;;
          idle) extra=(--clients "$IDLE_N") ;;
        esac
      fi
      printf '   round %s %-13s %-5s ' "$round" "$scenario" "$unit"
      line=$(timeout 900 taskset -c 1 "$BIN/loadgen" --proto "$proto" --scenario "$scenario" \
        --addr "$addrs" --server-pid "$pids" \
        --duration "$DURATION" --warmup "$WARMUP" "${extra[@]}" 2> "$OUT/loadgen.err" \
        | grep '^RESULT ' || true)
      cleanup
      if [ "$adapter" = streams ]; then
        # The stream this run appended to (capped at ~10 000 entries by MAXLEN ~); only
        # this key, never anything else on the shared Redis.
        redis-cli -u "$REDIS_URL" DEL "$REDIS_KEY" > /dev/null 2>&1 || true
      fi
      if [ -z "$line" ]; then
        echo "FAILED: $(tail -3 "$OUT/loadgen.err" | tr '\n' ' ')"
        continue
      fi
      json=${line#RESULT }
      echo "{\"server\":\"$unit\",\"round\":$round,${json#\{}" >> "$RESULTS"
      echo "ok $(echo "$json" | cut -c1-150 | sed 's/.*"inflight":[0-9]*,//')"
      # Let TIME_WAIT sockets and the kernel settle between runs.
      sleep 1
    done
  done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$RESULTS" <<'EOF'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
metrics = {
    "echo": ["msgs_per_s", "p50_us", "p99_us", "server_cpu_us_per_msg", "server_cpu_pct", "loadgen_cpu_pct", "fairness_min_over_max"],
    "fanout": ["deliveries_per_s", "p50_us", "p99_us", "server_cpu_us_per_delivery", "server_cpu_pct", "loadgen_cpu_pct"],
    "fanout-bin": ["deliveries_per_s", "p50_us", "p99_us", "server_cpu_us_per_delivery", "server_cpu_pct", "loadgen_cpu_pct"],
    "connect": ["conns_per_s", "p50_us", "p99_us", "server_cpu_us_per_conn", "rss_kib_per_conn", "loadgen_cpu_pct"],
    "upgrade": ["conns_per_s", "p50_us", "p99_us", "server_cpu_us_per_conn", "rss_kib_per_conn", "loadgen_cpu_pct"],
    "polling-echo": ["msgs_per_s", "p50_us", "p99_us", "server_cpu_us_per_msg", "server_cpu_pct", "loadgen_cpu_pct"],
    "cluster": ["deliveries_per_s", "p50_us", "p99_us", "server_cpu_us_per_delivery", "server_cpu_pct", "redis_cpu_us_per_delivery", "redis_cpu_pct", "loadgen_cpu_pct"],
    "idle": ["connected", "connect_secs", "conns_per_s", "p99_us", "server_cpu_us_per_conn", "rss_kib_per_conn", "broadcast_all_ms"],
    "churn": ["join_leave_per_s", "broadcasts_per_s", "deliveries_per_s", "p50_us", "p99_us", "move_p99_us", "server_cpu_us_per_op", "server_cpu_pct", "loadgen_cpu_pct"],
}
order = ["ours", "ours-ct", "typed", "tuned", "socketioxide", "node", "raw", "raw-mt",
         "ours-pubsub", "node-pubsub", "ours-streams", "node-streams"]

def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:.2f}" if a >= 1 else f"{v:.3f}"

def cell(vals):
    if not vals:
        return "-", None
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(m), m
    return f"{fmt(m)} [{fmt(min(vals))}-{fmt(max(vals))}]", m

for sc, ms in metrics.items():
    sel = [r for r in rows if r["scenario"] == sc]
    if not sel:
        continue
    r0 = sel[0]
    if sc == "churn":
        print(f"\n### churn ({r0['clients']} sockets in {r0['rooms']:.0f} rooms, {r0['senders']:.0f} senders; offered "
              f"{r0['target_join_leave_per_s']:,.0f} join+leave/s, {r0['target_broadcasts_per_s']:,.0f} broadcasts/s)\n")
    else:
        print(f"\n### {sc} ({r0['clients']} clients" + (f", {r0['inflight']} in flight" if r0["inflight"] else "") + ")\n")
    servers = [s for s in order if any(r["server"] == s for r in sel)]
    if sc == "cluster":
        # ours vs Node on each adapter, then streams vs pub/sub for each server.
        pairs = [("ours-pubsub", "node-pubsub"), ("ours-streams", "node-streams"),
                 ("ours-streams", "ours-pubsub"), ("node-streams", "node-pubsub")]
        pairs = [(a, b) for a, b in pairs if a in servers and b in servers]
    else:
        base = "raw" if "raw" in servers else "ours"
        pairs = [(s, base) for s in servers if s != base]
    print("| metric | " + " | ".join(servers) + " | " + " | ".join(f"{a}/{b}" for a, b in pairs) + " |")
    print("|---" * (1 + len(servers) + len(pairs)) + "|")
    for m in ms:
        cells, med = [], {}
        for s in servers:
            vals = [r[m] for r in sel if r["server"] == s and r.get(m) is not None]
            c, v = cell(vals)
            cells.append(c)
            med[s] = v
        def ratio(a, b):
            return f"{med[a] / med[b]:.2f}x" if med.get(a) and med.get(b) else "-"
        print(f"| {m} | " + " | ".join(cells) + " | " + " | ".join(ratio(a, b) for a, b in pairs) + " |")
print("\nmedian [min-max] over rounds; loadgen_cpu_pct is the load generator's own core (100 = saturated).")
EOF
