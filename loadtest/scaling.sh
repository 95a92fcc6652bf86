#!/usr/bin/env bash
# Collector throughput per core count: starts helios-collector with 1, 2,
# 4, 8 cores (or the counts given) and drives it with wrk using the
# reference load, printing req/s and events/s per count.
#
#   loadtest/scaling.sh [SECONDS] [CORE_COUNTS...]
#
# Pin the collector and the load to separate CPUs on a big machine:
#   SERVER_CPUS=0-7 LOAD_CPUS=8-15 WRK_THREADS=8 WRK_CONNS=256 loadtest/scaling.sh 10 1 2 4 8
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
shift || true
COUNTS=${*:-1 2 4 8}
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
PORT=18206
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
BIN=${HELIOS_COLLECTOR:-target/release/helios-collector}
WRK=${WRK:-wrk}
[ -x "$BIN" ] || cargo build --release -q -p helios-ingest --bin helios-collector
# exec, so a background `pin ... &` has the program's own pid.
pin() { local cpus=$1; shift; if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi; }

WORK=$(mktemp -d /var/tmp/helios-scaling.XXXXXX)
trap 'kill -TERM "${HPID:-}" 2>/dev/null; rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cpus, $(uname -r); wrk -t$WRK_THREADS -c$WRK_CONNS -d${SECS}s; server cpus ${SERVER_CPUS:-any}, load cpus ${LOAD_CPUS:-any}"
printf '%-6s %-12s %12s %14s\n' cores load req/s events/s
for n in $COUNTS; do
  for load in single:event.json:1:1 pipelined16:event.json:16:1 batch100:batch100.json:1:100; do
    IFS=: read -r name body depth events <<<"$load"
    rm -rf "$WORK/data"
    (pin "${SERVER_CPUS:-}" "$BIN" --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --cores "$n" --log-format json 2>"$WORK/log") &
    HPID=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
    rps=$(cd "$BENCH" && BODY_FILE=$body DEPTH=$depth pin "${LOAD_CPUS:-}" "$WRK" -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${SECS}s" -s post.lua \
          "http://127.0.0.1:$PORT/v1/events" | awk '/^Requests\/sec/ {print $2}')
    kill -TERM $HPID; wait $HPID || true; HPID=
    printf '%-6s %-12s %12s %14.0f\n' "$n" "$name" "$rps" "$(awk -v r="$rps" -v e="$events" 'BEGIN {print r*e}')"
  done
done
