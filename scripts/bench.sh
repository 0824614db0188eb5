#!/usr/bin/env bash
# Side-by-side benchmark: tower-socketio vs Node.js socket.io v4 vs a raw tokio-tungstenite
# server (the ceiling), in one run. See BENCHMARKS.md.
#
#   scripts/bench.sh                 # full run: 3 rounds, 10 s windows
#   scripts/bench.sh --quick         # smoke run: 1 round, short windows, fewer connections
#   scripts/bench.sh --rounds 5 --scenarios "echo fanout"
#
# Every server runs alone on core 0 (taskset -c 0), freshly started for each scenario; the
# load generator (examples/loadgen.rs) runs on core 1. Servers and scenarios are interleaved
# and the order of servers rotates each round. Results: target/bench/results.jsonl and a
# table with medians [min-max] and ratios to the raw server on stdout.
set -euo pipefail

ROUNDS=3
DURATION=10
WARMUP=2
CONNECT_N=10000
UPGRADE_N=2000
CHURN_N=10000
SCENARIOS="echo fanout fanout-bin connect upgrade polling-echo churn"
SERVERS="ours node raw"
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1; DURATION=2; WARMUP=0.5; CONNECT_N=2000; UPGRADE_N=500; CHURN_N=2000 ;;
    --rounds) ROUNDS="$2"; shift ;;
    --duration) DURATION="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --servers) SERVERS="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
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

# 10 000 connections on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 12000 ]; then
  echo "warning: fd limit $(ulimit -n) is below what the connect and churn scenarios need" >&2
fi

echo "== building (release)"
cargo build --release --quiet --example loadgen --example bench_server --example raw_ws_server
if [ ! -d bench/node_modules/socket.io ]; then
  echo "== installing bench/node_modules"
  (cd bench && { npm ci --no-audit --no-fund --silent 2>/dev/null || npm install --no-audit --no-fund --silent; })
fi

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# start_server NAME PORT: starts it pinned to core 0, waits (bounded) for "ready".
start_server() {
  local name=$1 port=$2 log=$OUT/server-$1.log
  case "$name" in
    ours) taskset -c 0 "$BIN/bench_server" "127.0.0.1:$port" > "$log" 2>&1 & ;;
    raw) taskset -c 0 "$BIN/raw_ws_server" "127.0.0.1:$port" > "$log" 2>&1 & ;;
    node) taskset -c 0 node bench/node_server.js "127.0.0.1:$port" > "$log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q '^ready' "$log" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $name did not start:" >&2
  cat "$log" >&2
  return 1
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== rustc $(rustc --version | cut -d' ' -f2), node $(node --version), socket.io $(node -p 'require("./bench/node_modules/socket.io/package.json").version')"

# Below the ephemeral port range (32768+), so no client socket holds our next port.
PORT=21000
for round in $(seq "$ROUNDS"); do
  # Rotate the order of the servers every round.
  read -r -a order <<< "$SERVERS"
  shift_by=$(( (round - 1) % ${#order[@]} ))
  order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
  for scenario in $SCENARIOS; do
    for server in "${order[@]}"; do
      proto=sio
      if [ "$server" = raw ]; then
        proto=raw
        # No Engine.IO handshake or polling in the raw server.
        case "$scenario" in upgrade|polling-echo) continue ;; esac
      fi
      PORT=$((PORT + 1))
      if ! start_server "$server" "$PORT"; then cleanup; continue; fi
      extra=()
      case "$scenario" in
        connect) extra=(--clients "$CONNECT_N") ;;
        upgrade) extra=(--clients "$UPGRADE_N") ;;
        churn) extra=(--clients "$CHURN_N") ;;
      esac
      printf '   round %s %-13s %-5s ' "$round" "$scenario" "$server"
      line=$(timeout 240 taskset -c 1 "$BIN/loadgen" --proto "$proto" --scenario "$scenario" \
        --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --duration "$DURATION" --warmup "$WARMUP" "${extra[@]}" 2> "$OUT/loadgen.err" \
        | grep '^RESULT ' || true)
      cleanup
      if [ -z "$line" ]; then
        echo "FAILED: $(tail -3 "$OUT/loadgen.err" | tr '\n' ' ')"
        continue
      fi
      json=${line#RESULT }
      echo "{\"server\":\"$server\",\"round\":$round,${json#\{}" >> "$RESULTS"
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
    "churn": ["join_leave_per_s", "broadcasts_per_s", "deliveries_per_s", "p50_us", "p99_us", "move_p99_us", "server_cpu_us_per_op", "server_cpu_pct", "loadgen_cpu_pct"],
}
servers = ["ours", "node", "raw"]

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
    print("| metric | ours | node | raw | ours/raw | node/raw | ours/node |")
    print("|---|---|---|---|---|---|---|")
    for m in ms:
        cells, med = [], {}
        for s in servers:
            vals = [r[m] for r in sel if r["server"] == s and r.get(m) is not None]
            c, v = cell(vals)
            cells.append(c)
            med[s] = v
        def ratio(a, b):
            return f"{med[a] / med[b]:.2f}x" if med.get(a) and med.get(b) else "-"
        print(f"| {m} | " + " | ".join(cells) + f" | {ratio('ours','raw')} | {ratio('node','raw')} | {ratio('ours','node')} |")
print("\nmedian [min-max] over rounds; loadgen_cpu_pct is the load generator's own core (100 = saturated).")
EOF
