#!/usr/bin/env bash
# The same 100 reference events per request, posted as Helios's own JSON
# array (POST /v1/events) and as one OTLP/HTTP protobuf request (POST
# /v1/logs, the body an OpenTelemetry SDK would send for them), to one
# collector, alternated A B A B: closed loop (events/s, p99), then open
# loop at half the slower one's rate (p50/p99 from the intended send time).
# Every answer is fsynced first, as always. Issue 14's measurement.
#
#   loadtest/protocols.sh [SECONDS_PER_RUN] [ROUNDS]
#
# Loopback only; the collector's data goes to a temporary directory on
# /var/tmp (a disk, not tmpfs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
ROUNDS=${2:-3}
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
PORT=18215
CONNS=${CONNS:-64}
CORES=${HELIOS_CORES:-2}

cargo build --release -q -p helios-ingest --bin helios-collector
cargo build --release -q -p helios-loadgen --bin helios-loadgen
cargo build --release -q -p helios-benches --example otlp_body
BIN=target/release/helios-collector
LG=target/release/helios-loadgen

WORK=$(mktemp -d /var/tmp/helios-protocols.XXXXXX)
cleanup() {
  [ -n "${HPID:-}" ] && kill -TERM "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
target/release/examples/otlp_body "$BENCH/batch100.json" "$WORK/otlp100.pb" 2>/dev/null

start_helios() {
  rm -rf "$WORK/data"
  "$BIN" --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --cores "$CORES" \
    --log-format json 2>"$WORK/collector.log" &
  HPID=$!
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.05
  done
  echo "collector did not start" >&2; cat "$WORK/collector.log" >&2; exit 1
}
stop_helios() { kill -TERM "$HPID"; wait "$HPID" 2>/dev/null || true; HPID=; }

field() { grep -o "\"$2\":[0-9.e+-]*" "$1" | head -1 | cut -d: -f2; }
nested() { sed -n "s/.*\"$2\":{[^}]*\"$3\":\([0-9.e+-]*\).*/\1/p" "$1"; }
ms() { awk -v us="$1" 'BEGIN {printf "%.2f", us / 1000}'; }

# load NAME [extra loadgen args...]: one run against a fresh collector.
load() {
  local name=$1; shift
  local args
  case $name in
    helios-json) args=(--url "http://127.0.0.1:$PORT/v1/events" --body-file "$BENCH/batch100.json") ;;
    otlp-protobuf) args=(--url "http://127.0.0.1:$PORT/v1/logs" --body-file "$WORK/otlp100.pb" --body-events 100
                         -H "Content-Type: application/x-protobuf") ;;
  esac
  start_helios
  "$LG" "${args[@]}" -c "$CONNS" -d "${SECS}s" --json -q "$@" > "$WORK/$name.json" 2>/dev/null
  stop_helios
  local o=$WORK/$name.json ok
  ok=$(grep -o '"2[0-9][0-9]":[0-9]*' "$o" | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
  [ "$ok" = "$(field "$o" responses)" ] || { echo "$name: not every answer was 2xx:" >&2; grep -o '"status":{[^}]*}' "$o" >&2; }
}

echo "closed loop, $CONNS connections, ${SECS}s runs, $ROUNDS rounds, $CORES cores (100 events per request):"
printf '  %-14s %12s %10s %10s %8s\n' body events/s p50_ms p99_ms load
declare -A RATE
for round in $(seq "$ROUNDS"); do
  for name in helios-json otlp-protobuf; do
    load "$name"
    o=$WORK/$name.json
    eps=$(awk -v r="$(field "$o" requests_per_s)" 'BEGIN {printf "%.0f", r * 100}')
    RATE[$name]+="$eps "
    printf '  %-14s %12s %10s %10s %8s\n' "$name" "$eps" "$(ms "$(nested "$o" latency_us p50)")" \
      "$(ms "$(nested "$o" latency_us p99)")" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
j=$(echo "${RATE[helios-json]}" | median); p=$(echo "${RATE[otlp-protobuf]}" | median)
awk -v j="$j" -v p="$p" 'BEGIN {printf "  medians: /v1/events %.0f events/s, OTLP protobuf %.0f events/s, ratio %.2f\n", j, p, p/j}'

half=$(awk -v j="$j" -v p="$p" 'BEGIN {m = j < p ? j : p; printf "%.0f", m / 100 / 2}')
echo
echo "open loop at $half req/s ($(( half * 100 )) events/s, half the slower median), constant arrivals:"
printf '  %-14s %12s %10s %10s %10s\n' body sent_req/s p50_ms p99_ms p99.9_ms
for round in $(seq "$ROUNDS"); do
  for name in helios-json otlp-protobuf; do
    load "$name" --rate "$half"
    o=$WORK/$name.json
    printf '  %-14s %12s %10s %10s %10s\n' "$name" "$(field "$o" rate_achieved)" \
      "$(ms "$(nested "$o" latency_us p50)")" "$(ms "$(nested "$o" latency_us p99)")" \
      "$(ms "$(nested "$o" latency_us p999)")"
  done
done
