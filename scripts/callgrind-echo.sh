#!/usr/bin/env bash
# Instructions the server executes per echoed message, counted by callgrind: deterministic,
# so meaningful on a loaded machine where timed figures are not. See BENCHMARKS.md.
#
#   scripts/callgrind-echo.sh [SERVER...]     # default: ours typed tuned raw
#   N1=200 N2=1200 scripts/callgrind-echo.sh ours
#
#   MODE=connect scripts/callgrind-echo.sh ours raw   # instructions per new connection
#
# Servers as in scripts/bench.sh (ours, typed, tuned, socketioxide, raw). For each, two runs
# under `valgrind --tool=callgrind`: one connection echoes N1 messages, then N2 (one at a
# time, examples/loadgen.rs --scenario echo-count); (Ir(N2) - Ir(N1)) / (N2 - N1) cancels
# start-up, the handshake and the connection's own set-up. The N2 profile stays in
# target/bench/callgrind-SERVER-N2.out for callgrind_annotate. With MODE=connect, the runs
# open N1 and then N2 connections instead (`--scenario connect`: WebSocket handshake and, for
# the Socket.IO servers, the CONNECT to `/`; 50 at a time), so the figure is per connection.
set -euo pipefail
N1=${N1:-200}
N2=${N2:-1200}
MODE=${MODE:-echo}
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$(pwd)/target}
BIN=$TARGET/release/examples
OUT=$TARGET/bench
mkdir -p "$OUT"
SERVERS=${*:-ours typed tuned raw}
cargo build --release --quiet --example loadgen --example bench_value --example bench_typed \
  --example bench_server --example raw_ws_server
case " $SERVERS " in *" socketioxide "*)
  (cd bench/socketioxide && CARGO_TARGET_DIR=$TARGET/socketioxide-bench cargo build --release --quiet) ;;
esac

PORT=22100
# ir SERVER N: the server's total instruction count for a run of N echoes.
ir() {
  local server=$1 n=$2 bin proto=sio pid tag=$1
  [ "$MODE" = connect ] && tag=connect-$1
  local log=$OUT/callgrind-$tag-$n.log file=$OUT/callgrind-$tag-$n.out
  case "$server" in
    ours) bin=$BIN/bench_value ;;
    typed) bin=$BIN/bench_typed ;;
    tuned) bin=$BIN/bench_server ;;
    socketioxide) bin=$TARGET/socketioxide-bench/release/socketioxide-bench ;;
    raw) bin=$BIN/raw_ws_server; proto=raw ;;
    *) echo "unknown server $server" >&2; return 1 ;;
  esac
  PORT=$((PORT + 1))
  valgrind --tool=callgrind --callgrind-out-file="$file" "$bin" "127.0.0.1:$PORT" > "$log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    grep -q '^ready' "$log" && break
    sleep 0.1
  done
  case "$MODE" in
    echo) timeout 300 "$BIN/loadgen" --proto "$proto" --scenario echo-count --count "$n" \
      --addr "127.0.0.1:$PORT" > /dev/null ;;
    connect) timeout 300 "$BIN/loadgen" --proto "$proto" --scenario connect --clients "$n" \
      --concurrency 50 --addr "127.0.0.1:$PORT" > /dev/null ;;
    *) echo "unknown MODE $MODE" >&2; return 1 ;;
  esac
  # callgrind writes its profile when the process ends, also on SIGTERM (a SIGINT is not
  # acted on under valgrind).
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$file" | head -1
}

printf '| server | Ir per %s |\n|---|---|\n' "$( [ "$MODE" = connect ] && echo "new connection" || echo "echoed message")"
for s in $SERVERS; do
  a=$(ir "$s" "$N1")
  b=$(ir "$s" "$N2")
  printf '| %s | %s |\n' "$s" "$(( (b - a) / (N2 - N1) ))"
done
