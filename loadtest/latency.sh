#!/usr/bin/env bash
# Latency at half the maximum rate (coordinated omission corrected):
# finds the closed-loop maximum with helios-loadgen, then drives the
# collector open-loop at half of it and prints the percentiles.
#
#   loadtest/latency.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
PORT=18207
CONNS=${CONNS:-64}
cargo build --release -q -p helios-ingest --bin helios-collector -p helios-loadgen
WORK=$(mktemp -d /var/tmp/helios-latency.XXXXXX)
trap 'kill -TERM "${HPID:-}" 2>/dev/null; rm -rf "$WORK"' EXIT
target/release/helios-collector --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --cores 2 --log-format json 2>"$WORK/log" &
HPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
LG="target/release/helios-loadgen --url http://127.0.0.1:$PORT/v1/events -c $CONNS -d ${SECS}s --body-file $BENCH/event.json --json -q"
max=$($LG 2>/dev/null | sed -n 's/.*"requests_per_s":\([0-9.]*\).*/\1/p')
half=$(awk -v m="$max" 'BEGIN {printf "%.0f", m/2}')
echo "closed-loop maximum: $max req/s (single 300-byte events, $CONNS connections)"
$LG --rate "$half" 2>/dev/null > "$WORK/open.json"
sed -n 's/.*"requests_per_s":\([0-9.]*\).*"latency_us":{\([^}]*\)}.*/open loop at '"$half"' req\/s: achieved \1 req\/s, latency us: \2/p' "$WORK/open.json"
