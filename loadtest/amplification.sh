#!/usr/bin/env bash
# Journal write amplification under sustained overload: device bytes
# written (/sys/class/block/<dev>/stat, field 7, 512-byte sectors) ÷ journal
# bytes committed (/metrics helios_journal_commit_bytes_sum, all journals),
# around SECONDS of batch100 (helios-loadgen --body-file batch100.json)
# against a collector whose SQLite store is held (a sqlite3 shell keeps
# BEGIN IMMEDIATE open), so nothing is flushed or recycled and the journals
# grow until --journal-budget-bytes, then answer 503.
#
#   loadtest/amplification.sh [SECONDS] [BUDGET_BYTES] [-- COLLECTOR_FLAGS...]
#   loadtest/amplification.sh 8 1073741824 -- --journal-prepare-bytes 1073741824
#   HELIOS_COLLECTOR_BIN=/path/to/older/helios-collector loadtest/amplification.sh
#
# Device writes by anything else on the machine count too: the script
# measures the device's idle write rate for as long beforehand and prints
# the ratio with that background subtracted as well. Needs sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
BUDGET=${2:-1073741824}
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
EXTRA=("$@")
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
PORT=18206
CORES=${HELIOS_CORES:-2}
# Wait at most this long for the journals to finish preparing segments.
PREPARE_WAIT_SECS=${PREPARE_WAIT_SECS:-300}

command -v sqlite3 >/dev/null || { echo "sqlite3 missing: apt-get install -y sqlite3" >&2; exit 2; }
# HELIOS_COLLECTOR_BIN: another collector binary (a before/after run);
# then only the load generator is built here.
if [ -n "${HELIOS_COLLECTOR_BIN:-}" ]; then
  cargo build --release -q -p helios-loadgen
else
  cargo build --release -q -p helios-ingest --bin helios-collector -p helios-loadgen
fi
BIN=${HELIOS_COLLECTOR_BIN:-target/release/helios-collector}
LG=target/release/helios-loadgen

WORK=$(mktemp -d /var/tmp/helios-amplification.XXXXXX)
cleanup() {
  [ -n "${HOLD:-}" ] && kill "$HOLD" 2>/dev/null || true
  [ -n "${HPID:-}" ] && kill -TERM "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

src=$(df --output=source "$WORK" | tail -1)
dev=$(basename "$(readlink -f "$src")")
STAT=/sys/class/block/$dev/stat
[ -r "$STAT" ] || { echo "no $STAT for $src" >&2; exit 2; }
sectors() { awk '{print $7}' "$STAT"; }
# shellcheck source=loadtest/metrics.sh
. loadtest/metrics.sh
metric_sum() { metric_total "$PORT" "$1"; }

"$BIN" --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --cores "$CORES" \
  --journal-budget-bytes "$BUDGET" --log-format json "${EXTRA[@]}" 2>"$WORK/helios.log" &
HPID=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.1
done
[ -f "$WORK/data/events.db" ] || { echo "collector did not start" >&2; cat "$WORK/helios.log" >&2; exit 1; }

# Hold the store's write lock for the whole run (the flusher retries).
mkfifo "$WORK/hold"
sqlite3 "$WORK/data/events.db" <"$WORK/hold" >/dev/null 2>&1 &
HOLD=$!
exec 4>"$WORK/hold"
echo "BEGIN IMMEDIATE; SELECT 1;" >&4

# Let the journals finish preparing segments: wait until their file count
# and the device's write counter both stay still for 2 s.
segs() { find "$WORK/data" -name '*.seg' | wc -l; }
prev="$(segs) $(sectors)"; still=0
for _ in $(seq $((PREPARE_WAIT_SECS * 2))); do
  sleep 0.5
  now="$(segs) $(sectors)"
  if [ "${now% *}" = "${prev% *}" ] && [ $(( ${now#* } - ${prev#* } )) -lt 2048 ]; then
    still=$((still + 1)); [ $still -ge 4 ] && break
  else still=0; fi
  prev=$now
done
echo "device $dev; $(segs) segment files ready; budget $BUDGET; flags: ${EXTRA[*]:-(none)}"

b0=$(sectors); sleep "$SECS"; b1=$(sectors)
procw() { awk '$1=="write_bytes:" {print $2}' /proc/$HPID/io; }
s0=$(sectors); c0=$(metric_sum helios_journal_commit_bytes_sum); p0=$(procw)
"$LG" --url "http://127.0.0.1:$PORT/v1/events" -c 64 -d "${SECS}s" \
  --body-file "$BENCH/batch100.json" -q >"$WORK/lg.out" 2>&1 || true
s1=$(sectors); c1=$(metric_sum helios_journal_commit_bytes_sum); p1=$(procw)
stored=$(metric_sum helios_store_inserted_total)
echo "ROLLBACK;" >&4; exec 4>&-

awk -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v bg=$((b1 - b0)) -v p=$((p1 - p0)) -v st="$stored" 'BEGIN {
  dev = s * 512; bgb = bg * 512
  printf "journal committed %.1f MB; device wrote %.1f MB (idle background over as long: %.1f MB); the collector wrote %.1f MB (/proc/PID/io); events stored %d\n", c/1e6, dev/1e6, bgb/1e6, p/1e6, st
  if (c > 0) printf "write amplification %.3f (background subtracted: %.3f)\n", dev/c, (dev-bgb)/c
}'
