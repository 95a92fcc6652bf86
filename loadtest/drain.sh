#!/usr/bin/env bash
# Flusher throughput: the time a collector takes to drain a journaled
# backlog into a store, and the rate that implies.
#
#   loadtest/drain.sh sqlite|mockupdb [EVENTS]     (default 1000000)
#
# DRAIN_TS=one (default): every event has the reference event's one `ts`.
# DRAIN_TS=sorted|random: `ts` spread over a day a week back, posted in
# time order or shuffled (loadtest/post_spread.py), to compare how the
# store takes events out of time order (issue 22).
#
# 1. Build the backlog: a collector whose store is unreachable (a relay to a
#    closed port, so every flush fails and the journal keeps everything)
#    takes EVENTS reference events (../shared/bench/batch100.json, 100 per
#    request) from helios-loadgen, then stops (SIGTERM).
# 2. Drain: a collector on the same data directory with the real store
#    (SQLite file, or MockupDB = the driver's wire + BSON cost with a Python
#    server on the other end) recovers the journals and flushes them; the
#    script polls /metrics until helios_store_inserted_total reaches EVENTS.
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=${1:?sqlite or mockupdb}
EVENTS=${2:-1000000}
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
PORT=18207
CORES=${HELIOS_CORES:-2}
REQUESTS=$((EVENTS / 100))

# One package per build: `--bin` would apply to every package named.
cargo build --release -q -p helios-ingest --bin helios-collector
cargo build --release -q -p helios-loadgen --bin helios-loadgen
BIN=target/release/helios-collector
LOADGEN=target/release/helios-loadgen

WORK=$(mktemp -d /var/tmp/helios-drain.XXXXXX)
cleanup() {
  [ -n "${HPID:-}" ] && kill -TERM "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null || true
  [ -n "${MPID:-}" ] && kill "$MPID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

start() {
  "$BIN" --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --cores "$CORES" \
    --journal-budget-bytes 68719476736 --shutdown-deadline-ms 200 --log-format json "$@" 2>>"$WORK/helios.log" &
  HPID=$!
  for _ in $(seq 200); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.05
  done
  echo "collector did not start" >&2; tail "$WORK/helios.log" >&2; exit 1
}
# shellcheck source=loadtest/metrics.sh
. loadtest/metrics.sh
metric() { metric_value "$PORT" "$1"; }

case $KIND in
  sqlite) STORE="sqlite://$WORK/data/events.db" ;;
  mockupdb)
    coproc MOCK { /usr/bin/python3 store/tests/support/mock_mongo.py; }
    MPID=$MOCK_PID
    read -r MPORT <&"${MOCK[0]}"
    STORE="mongodb://127.0.0.1:$MPORT/?directConnection=true" ;;
  *) echo "unknown store $KIND" >&2; exit 2 ;;
esac

echo "== backlog: $EVENTS events into a collector whose store is down"
start --store http://127.0.0.1:9
DRAIN_TS=${DRAIN_TS:-one}
if [ "$DRAIN_TS" = one ]; then
  "$LOADGEN" --url "http://127.0.0.1:$PORT/v1/events" --connections 16 --requests "$REQUESTS" \
    --body-file "$BENCH/batch100.json" --json > "$WORK/load.json" 2>/dev/null
else
  python3 loadtest/post_spread.py "http://127.0.0.1:$PORT/v1/events" "$EVENTS" "$DRAIN_TS" "$BENCH/event.json"
fi
kill -TERM "$HPID"; wait "$HPID" || true; HPID=
du -sh "$WORK/data/journal" | awk '{print "journal on disk: " $1}'

echo "== drain into $KIND"
T0=$(date +%s.%N)
start --store "$STORE"
while :; do
  n=$(metric helios_store_inserted_total || echo 0)
  [ "${n:-0}" -ge "$EVENTS" ] && break
  sleep 0.2
done
T1=$(date +%s.%N)
COMPACTED=$(metric helios_compacted_events_total || echo 0)
echo "compacted into columnar files during the drain: ${COMPACTED:-0} events"
# The collector's own CPU for the drain (recovery, journal reads, document
# building, the store client): separates Helios's cost from the server's.
CPU_TICKS=$(awk '{print $14 + $15}' /proc/$HPID/stat)
TICKS_PER_S=$(getconf CLK_TCK)
awk -v t="$CPU_TICKS" -v hz="$TICKS_PER_S" -v n="$EVENTS" \
  'BEGIN {s=t/hz; printf "collector CPU during the drain: %.1f s = %.2f us/event\n", s, s*1e6/n}'
# Its peak memory (the flush batch is most of it while draining).
awk '$1 == "VmHWM:" {printf "collector peak RSS: %.0f MB\n", $2 / 1024}' /proc/$HPID/status
awk -v a="$T0" -v b="$T1" -v n="$EVENTS" -v k="$KIND" -v c="$CORES" \
  'BEGIN {d=b-a; printf "%s: drained %d events in %.1f s = %.0f events/s (collector --cores %d, start and recovery included)\n", k, n, d, n/d, c}'
echo "ts: $DRAIN_TS"
