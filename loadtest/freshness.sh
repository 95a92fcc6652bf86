#!/usr/bin/env bash
# Freshness (issue 22): how soon an acknowledged event is visible to
# queries and to the live tail while the store takes a steady load.
#
#   loadtest/freshness.sh [EVENTS_PER_S] [PROBES]    (default 50000, 100)
#
# Starts a collector (the embedded store, default settings: the compactor
# runs) and a report server on its store, puts EVENTS_PER_S reference
# events per second on the collector (helios-loadgen, open loop, 100-event
# batches of ../shared/bench/batch100.json), lets it run 10 s, then
# loadtest/freshness.py posts PROBES single events (5 per second) and
# times, from each ack, when the report API finds it by `_id` and when the
# live tail shows it. Prints the store's backlog at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS_PER_S=${1:-50000}
PROBES=${2:-100}
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
PORT=18217
REPORT_PORT=18218
CORES=${HELIOS_CORES:-2}
WARMUP_S=10
PROBE_INTERVAL_S=0.2
RATE=$((EVENTS_PER_S / 100))
LOAD_S=$((WARMUP_S + PROBES * 2 / 10 + 30))

# One package per build: `--bin` would apply to every package named.
cargo build --release -q -p helios-ingest --bin helios-collector
cargo build --release -q -p helios-loadgen --bin helios-loadgen
cargo build --release -q -p helios-report --bin helios-report
BIN=target/release/helios-collector
LOADGEN=target/release/helios-loadgen
REPORT=target/release/helios-report

WORK=$(mktemp -d /var/tmp/helios-fresh.XXXXXX)
cleanup() {
  for pid in ${LPID:-} ${RPID:-} ${HPID:-}; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; tail "$WORK"/*.log >&2; exit 1
}
# shellcheck source=loadtest/metrics.sh
. loadtest/metrics.sh
metric() { metric_value "$PORT" "$1"; }

"$BIN" --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --cores "$CORES" \
  --log-format json 2>>"$WORK/collector.log" &
HPID=$!
wait_port $PORT
"$REPORT" --listen 127.0.0.1:$REPORT_PORT --store "sqlite://$WORK/data/events.db" \
  2>>"$WORK/report.log" &
RPID=$!
wait_port $REPORT_PORT

echo "== $EVENTS_PER_S events/s ($RATE requests/s of 100) for ${WARMUP_S} s, then $PROBES probes"
"$LOADGEN" --url "http://127.0.0.1:$PORT/v1/events" --connections 16 --rate "$RATE" \
  --duration "$LOAD_S" --body-file "$BENCH/batch100.json" --json > "$WORK/load.json" 2>/dev/null &
LPID=$!
sleep "$WARMUP_S"
kill -0 "$LPID" 2>/dev/null || { echo "helios-loadgen stopped early" >&2; exit 1; }
before=$(metric helios_store_inserted_total || echo 0)
sleep 1
after=$(metric helios_store_inserted_total || echo 0)
echo "store: $((after - before)) events inserted in the last second of the warm-up"
STATUS=0
python3 loadtest/freshness.py "http://127.0.0.1:$PORT/v1/events" \
  "http://127.0.0.1:$REPORT_PORT" "$PROBES" "$PROBE_INTERVAL_S" || STATUS=$?
compacted=$(metric helios_compacted_events_total || echo "?")
echo "compactor: $compacted events moved into columnar files"
accepted=$(metric helios_events_accepted_total || echo "?")
inserted=$(metric helios_store_inserted_total || echo "?")
echo "collector: $accepted events acked, $inserted stored; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $STATUS
