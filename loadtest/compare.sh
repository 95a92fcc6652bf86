#!/usr/bin/env bash
# Side-by-side HTTP benchmark: nginx answering 204 (the machine's HTTP
# ceiling) and helios-collector (every ack fsynced), the same wrk loads from
# ../shared/bench, alternated A B A B; then latency open loop at half the
# collector's single-event rate, helios-loadgen against both servers (SVG
# charts: the percentile spectrum of each, and throughput and p99 per
# second); then the sustained rate into SQLite. Beside nginx (the HTTP
# ceiling) it prints the durability ceiling: helios-diskprobe's raw
# O_DIRECT|O_DSYNC writes at 4 KiB, 64 KiB and 1 MiB on the data dir's
# filesystem, and at the journal's mean commit size after the batch run.
#
#   loadtest/compare.sh [SECONDS_PER_RUN] [ROUNDS]
#   CHARTS=loadtest/charts loadtest/compare.sh 10 2   # refresh the committed charts
#   HELIOS_COLLECTOR_BIN=/tmp/old-collector HELIOS_COLLECTOR_ARGS="--journal-commits-in-flight 1" \
#     loadtest/compare.sh 5 3                          # another build or flags, same loads
#   SUSTAINED_ONLY=1 loadtest/compare.sh 5             # the sustained rate alone
#   SUSTAINED_TS=now ...                               # ... of events without `ts` (stamped
#                                                      # on arrival: live rows), not the
#                                                      # reference's week-old one (late rows)
#
# Needs wrk and nginx (apt-get install -y wrk nginx). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROUNDS=${2:-2}
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
NGINX_PORT=18204
HELIOS_PORT=18205
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
CORES=${HELIOS_CORES:-2}

command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 2; }
command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx" >&2; exit 2; }

cargo build --release -q -p helios-ingest --bin helios-collector -p helios-store --example show
cargo build --release -q -p helios-loadgen --features charts --bins
PROBE=target/release/helios-diskprobe
BIN=${HELIOS_COLLECTOR_BIN:-target/release/helios-collector}
read -r -a EXTRA_ARGS <<<"${HELIOS_COLLECTOR_ARGS:-}"
SHOW=target/release/examples/show
LG=target/release/helios-loadgen
CHART=target/release/helios-loadgen-chart
CHARTS=${CHARTS:-$(mktemp -d /var/tmp/helios-charts.XXXXXX)}
mkdir -p "$CHARTS"

WORK=$(mktemp -d /var/tmp/helios-compare.XXXXXX)
cleanup() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -n "${HPID:-}" ] && kill -TERM "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

sed -e "s/PORT/$NGINX_PORT/" -e "s#PIDFILE#$WORK/nginx.pid#" "$BENCH/nginx204.conf.tmpl" \
  | sed -e "s#http {#http {\n  client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi; uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;#" \
  > "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -p "$WORK" -e /dev/null &
sleep 0.5

start_helios() {
  rm -rf "$WORK/data"
  "$BIN" --listen 127.0.0.1:$HELIOS_PORT --data-dir "$WORK/data" --cores "$CORES" --log-format json \
    ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} 2>"$WORK/helios.log" &
  HPID=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$HELIOS_PORT) 2>/dev/null && return 0
    sleep 0.1
  done
  echo "collector did not start" >&2; cat "$WORK/helios.log" >&2; exit 1
}
stop_helios() { kill -TERM "$HPID"; wait "$HPID" || true; HPID=; }

# wrk LOAD PORT -> "req/s p50 p99" (latencies in ms)
run_wrk() {
  local body=$1 depth=$2 port=$3
  (cd "$BENCH" && BODY_FILE=$body DEPTH=$depth wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${SECS}s" --latency -s post.lua \
     "http://127.0.0.1:$port/v1/events") > "$WORK/wrk.out" 2>&1
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.out")
  non2xx=$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}

echo "machine: $(nproc) cores, $(uname -r); wrk -t$WRK_THREADS -c$WRK_CONNS -d${SECS}s; collector $BIN --cores $CORES ${HELIOS_COLLECTOR_ARGS:-}"
echo "durability ceiling: raw disk under the data dir ($(df --output=fstype "$WORK" | tail -1), helios-diskprobe, one write at a time):"
"$PROBE" "$WORK"
if [ -z "${SUSTAINED_ONLY:-}" ]; then
printf '%-10s %-6s %-10s %12s %14s %9s %9s %8s\n' load round server req/s events/s p50 p99 non2xx
declare -A SUM
for round in $(seq "$ROUNDS"); do
  for load in single:event.json:1:1 pipelined16:event.json:16:1 batch100:batch100.json:1:100; do
    IFS=: read -r name body depth events <<<"$load"
    for server in nginx helios; do
      if [ $server = nginx ]; then port=$NGINX_PORT; else start_helios; port=$HELIOS_PORT; fi
      read -r rps p50 p99 non2xx < <(run_wrk "$body" "$depth" "$port")
      [ $server = helios ] && stop_helios
      eps=$(awk -v r="$rps" -v e="$events" 'BEGIN {printf "%.0f", r*e}')
      printf '%-10s %-6s %-10s %12s %14s %9s %9s %8s\n' "$name" "$round" "$server" "$rps" "$eps" "$p50" "$p99" "$non2xx"
      SUM[$name.$server]="${SUM[$name.$server]:-} $rps"
    done
  done
done
echo
echo "medians and ratio helios/nginx (req/s):"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
for name in single pipelined16 batch100; do
  n=$(echo "${SUM[$name.nginx]}" | median); h=$(echo "${SUM[$name.helios]}" | median)
  awk -v name=$name -v n="$n" -v h="$h" 'BEGIN {printf "  %-12s nginx %10.0f  helios %10.0f  ratio %.2f\n", name, n, h, h/n}'
done

echo
half=$(echo "${SUM[single.helios]}" | median | awk '{printf "%.0f", $1 / 2}')
echo "latency open loop at $half req/s (half the collector's single-event median), helios-loadgen -c$WRK_CONNS, constant arrivals (ms):"
printf '  %-8s %12s %9s %9s %9s %9s %15s %6s\n' server sent_req/s p50 p99 p99.9 max "uncorrected p99" load
ms() { awk -v us="$1" 'BEGIN {printf "%.3f", us / 1000}'; }
nested() { sed -n "s/.*\"$2\":{[^}]*\"$3\":\([0-9.e+-]*\).*/\1/p" "$1"; }
for server in nginx helios; do
  if [ $server = nginx ]; then port=$NGINX_PORT; else start_helios; port=$HELIOS_PORT; fi
  l=$(cut -d' ' -f1 /proc/loadavg)
  "$LG" --url "http://127.0.0.1:$port/v1/events" -c "$WRK_CONNS" -d "${SECS}s" --body-file "$BENCH/event.json" \
    --rate "$half" --json -q > "$WORK/latency-$server.json" 2>/dev/null
  [ $server = helios ] && stop_helios
  o=$WORK/latency-$server.json
  printf '  %-8s %12s %9s %9s %9s %9s %15s %6s\n' "$server" "$(grep -o '"rate_achieved":[0-9.]*' "$o" | cut -d: -f2)" \
    "$(ms "$(nested "$o" latency_us p50)")" "$(ms "$(nested "$o" latency_us p99)")" \
    "$(ms "$(nested "$o" latency_us p999)")" "$(ms "$(nested "$o" latency_us max)")" \
    "$(ms "$(nested "$o" latency_uncorrected_us p99)")" "$l"
done
cp "$WORK/latency-helios.json" "$CHARTS/compare-helios-collector.json"
cp "$WORK/latency-nginx.json" "$CHARTS/compare-nginx-204.json"
"$CHART" spectrum --out "$CHARTS/compare-spectrum.svg" \
  --title "latency spectrum at $half req/s, $WRK_CONNS connections (helios-loadgen)" \
  helios-collector="$WORK/latency-helios.json" nginx-204="$WORK/latency-nginx.json"
"$CHART" series --out "$CHARTS/compare-series.svg" \
  --title "throughput and p99 per second at $half req/s" \
  helios-collector="$WORK/latency-helios.json" nginx-204="$WORK/latency-nginx.json"
echo "  charts: $CHARTS"
fi

echo
echo "sustained rate into SQLite: batch100 (ts: ${SUSTAINED_TS:-reference}) for ${SECS}s, then wait until the store holds every acked event"
sustained_body=batch100.json
if [ "${SUSTAINED_TS:-reference}" = now ]; then
  # The same events without their `ts`: each is stamped when it arrives.
  sed -e 's/"ts":"[^"]*",//g' "$BENCH/batch100.json" > "$WORK/batch100-now.json"
  sustained_body=$WORK/batch100-now.json
fi
start_helios
t0=$(date +%s.%N)
read -r rps _ _ non2xx < <(run_wrk "$sustained_body" 1 $HELIOS_PORT)
t1=$(date +%s.%N)
acked=$(awk -v r="$rps" -v s="$SECS" 'BEGIN {printf "%.0f", r*s*100}')
total=$(awk '/requests in/ {print $1}' "$WORK/wrk.out")
acked=$(( total * 100 ))
# Poll the collector's own count of committed store inserts: counting the
# store itself every 0.2 s (a `count(*)` over millions of rows, and a read
# snapshot that holds back the WAL checkpoint) took CPU and disk from the
# very writer being measured. The store is counted once, at the end.
# shellcheck source=loadtest/metrics.sh
. loadtest/metrics.sh
while :; do
  inserted=$(metric_value "$HELIOS_PORT" helios_store_inserted_total || echo 0)
  [ "${inserted:-0}" -ge "$acked" ] && break
  sleep 0.2
done
t2=$(date +%s.%N)
stored=$("$SHOW" "$WORK/data/events.db" --count)
# More than acked is fine: wrk stops without reading the answers to the
# requests it has in flight (at most one per connection), and the
# collector stores those too.
if [ "$stored" -lt "$acked" ]; then
  echo "  the store holds $stored events, fewer than the $acked acked" >&2
  exit 1
fi
# Mean commit size over every journal, from the histogram's _sum/_count.
commit_mean=$(metrics_text "$HELIOS_PORT" | awk '/^helios_journal_commit_bytes_sum/ {s+=$2} /^helios_journal_commit_bytes_count/ {c+=$2}
  END {if (c > 0) printf "%.0f", s/c}')
awk -v a="$acked" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
  printf "  acked %d events in %.1f s (ingest %.0f events/s); all stored after %.1f s: sustained %.0f events/s\n", a, t1-t0, a/(t1-t0), t2-t0, a/(t2-t0) }'
stop_helios
if [ -n "$commit_mean" ]; then
  echo "  journal mean commit ${commit_mean} B; the raw disk at that size (4 KiB-aligned):"
  "$PROBE" "$WORK" "$commit_mean"
fi
