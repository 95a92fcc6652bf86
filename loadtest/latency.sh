#!/usr/bin/env bash
# Latency, measured down to the machine's floor (issue 20), in two parts.
#
# 1. The floor: nginx answering 204 (../shared/bench/nginx204.conf.tmpl) at
#    each rate of RATES on CONNS connections, Poisson arrivals, the 300-byte
#    event; helios-loadgen beside the reference client
#    (loadtest/reference/refclient.c: epoll + one absolute timerfd per
#    connection, no spin, built here with gcc), alternated, ROUNDS rounds
#    each; each client's best round (noise only ever adds latency). Goal:
#    helios-loadgen p50 <= 1.3 x reference + 0.03 ms and
#    p99 <= 1.3 x reference + 0.1 ms.
# 2. The collector at half its closed-loop maximum (constant arrivals; the
#    goal of issue 16 is p99 < 2 ms there): corrected and uncorrected
#    percentiles, the generator's own send lateness, a per-second series.
#
# SVG charts go to $CHARTS (default: a directory printed at the end; use
# CHARTS=loadtest/charts to refresh the ones BENCHMARKS.md shows).
#
#   loadtest/latency.sh [SECONDS] [ROUNDS]
#   RATES="2000 15000" CONNS=64 SKIP_COLLECTOR=1 CHARTS=loadtest/charts loadtest/latency.sh 8 3
#   SKIP_FLOOR=1 loadtest/latency.sh 10      # part 2 only
#
# Needs nginx and gcc (apt-get install -y nginx gcc). Loopback only; the
# load average is printed with every figure (a busy machine only adds
# latency: compare best rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
ROUNDS=${2:-3}
BENCH=${HELIOS_BENCH_INPUTS:-../shared/bench}
NGINX_PORT=18208
PORT=18207
CONNS=${CONNS:-64}
RATES=${RATES:-2000 15000}
# Goal of part 1: helios <= FACTOR x reference + slack (ms).
FACTOR=1.3
SLACK_P50_MS=0.03
SLACK_P99_MS=0.1

command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx" >&2; exit 2; }
command -v gcc >/dev/null || { echo "gcc missing: apt-get install -y gcc" >&2; exit 2; }
cargo build --release -q -p helios-loadgen --features charts --bins
LG=${LOADGEN:-target/release/helios-loadgen}
CHART=target/release/helios-loadgen-chart
REF=target/release/refclient
gcc -O2 -Wall -Wextra -pthread -o "$REF" loadtest/reference/refclient.c -lm

WORK=$(mktemp -d /var/tmp/helios-latency.XXXXXX)
CHARTS=${CHARTS:-$(mktemp -d /var/tmp/helios-charts.XXXXXX)}
mkdir -p "$CHARTS"
cleanup() {
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  [ -n "${HPID:-}" ] && kill -TERM "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null || true
  rm -rf "$WORK"
  echo "charts: $CHARTS"
}
trap cleanup EXIT

# The first value of "KEY": in a one-line JSON report (top-level fields come
# before the per-second series).
flat() { grep -o "\"$2\":[0-9.e+-]*" "$1" | head -1 | cut -d: -f2; }
# KEY inside the object OBJECT: `nested FILE latency_us p99`.
nested() { sed -n "s/.*\"$2\":{[^}]*\"$3\":\([0-9.e+-]*\).*/\1/p" "$1"; }
ms() { awk -v us="$1" 'BEGIN {printf "%.3f", us / 1000}'; }
load() { cut -d' ' -f1 /proc/loadavg; }

sed -e "s/PORT/$NGINX_PORT/" -e "s#PIDFILE#$WORK/nginx.pid#" "$BENCH/nginx204.conf.tmpl" \
  | sed -e "s#http {#http {\n  client_body_temp_path $WORK/body; proxy_temp_path $WORK/proxy; fastcgi_temp_path $WORK/fcgi; uwsgi_temp_path $WORK/uwsgi; scgi_temp_path $WORK/scgi;#" \
  > "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -p "$WORK" -e /dev/null &
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$NGINX_PORT) 2>/dev/null && break; sleep 0.1; done
NGINX_URL=127.0.0.1:$NGINX_PORT/v1/events

echo "machine: $(nproc) cores, $(uname -r); $CONNS connections, ${SECS}s per run, $ROUNDS rounds"
floor() {
echo
echo "1. the floor: nginx-204, Poisson arrivals; helios-loadgen beside the reference client (ms)"
printf '%-7s %-5s %-15s %9s %9s %9s %13s %11s %6s\n' rate round client p50 p99 p99.9 sent_req/s lateness_p99 load
for rate in $RATES; do
  for round in $(seq "$ROUNDS"); do
    # Alternate which client goes first.
    if [ $((round % 2)) = 1 ]; then order="ref lg"; else order="lg ref"; fi
    for client in $order; do
      out=$WORK/$client-$rate-$round.json
      l=$(load)
      if [ "$client" = ref ]; then
        "$REF" -u "$NGINX_URL" -b "$BENCH/event.json" -c "$CONNS" -t "$(nproc)" -r "$rate" -d "$SECS" \
          -a poisson -s "$round" > "$out"
        name=refclient
        sent=$(flat "$out" rate_achieved)
      else
        "$LG" --url "http://$NGINX_URL" -c "$CONNS" -d "${SECS}s" --body-file "$BENCH/event.json" \
          --rate "$rate" --arrivals poisson --seed "$round" --json -q > "$out" 2>/dev/null
        name=helios-loadgen
        sent=$(flat "$out" rate_achieved)
      fi
      p50=$(nested "$out" latency_us p50); p99=$(nested "$out" latency_us p99)
      p999=$(nested "$out" latency_us p999); late=$(nested "$out" send_lateness_us p99)
      printf '%-7s %-5s %-15s %9s %9s %9s %13.1f %9.1fus %6s\n' "$rate" "$round" "$name" \
        "$(ms "$p50")" "$(ms "$p99")" "$(ms "$p999")" "$sent" "$late" "$l"
      echo "$p50 $p99 $out" >> "$WORK/best-$client-$rate"
    done
  done
done
echo
echo "best of $ROUNDS rounds (lowest p50 and lowest p99 separately); goal: helios <= $FACTOR x reference + $SLACK_P50_MS ms (p50), + $SLACK_P99_MS ms (p99)"
printf '%-7s %-22s %-22s %s\n' rate "helios-loadgen p50/p99" "reference p50/p99" verdict
for rate in $RATES; do
  read -r lg50 lg99 < <(awk 'NR==1 || $1<a {a=$1} NR==1 || $2<b {b=$2} END {print a, b}' "$WORK/best-lg-$rate")
  read -r rf50 rf99 < <(awk 'NR==1 || $1<a {a=$1} NR==1 || $2<b {b=$2} END {print a, b}' "$WORK/best-ref-$rate")
  verdict=$(awk -v h50="$lg50" -v h99="$lg99" -v r50="$rf50" -v r99="$rf99" -v f=$FACTOR \
    -v s50=$SLACK_P50_MS -v s99=$SLACK_P99_MS 'BEGIN {
      ok50 = h50 / 1000 <= f * r50 / 1000 + s50; ok99 = h99 / 1000 <= f * r99 / 1000 + s99
      printf "p50 %s (limit %.3f), p99 %s (limit %.3f)", ok50 ? "met" : "MISSED", f * r50 / 1000 + s50,
        ok99 ? "met" : "MISSED", f * r99 / 1000 + s99 }')
  printf '%-7s %-22s %-22s %s\n' "$rate" "$(ms "$lg50") / $(ms "$lg99")" "$(ms "$rf50") / $(ms "$rf99")" "$verdict"
  # Chart each client's round with the lowest p99.
  lg_best=$(sort -g -k2 "$WORK/best-lg-$rate" | head -1 | cut -d' ' -f3)
  rf_best=$(sort -g -k2 "$WORK/best-ref-$rate" | head -1 | cut -d' ' -f3)
  # The reports beside the charts: the data behind them, to redraw.
  cp "$lg_best" "$CHARTS/floor-$rate-helios-loadgen.json"
  cp "$rf_best" "$CHARTS/floor-$rate-reference.json"
  "$CHART" spectrum --out "$CHARTS/floor-$rate.svg" \
    --title "nginx-204 at $rate req/s, $CONNS connections, Poisson: best rounds" \
    helios-loadgen="$lg_best" "reference client"="$rf_best"
done

}
[ -n "${SKIP_FLOOR:-}" ] || floor
[ -n "${SKIP_COLLECTOR:-}" ] && exit 0
echo
echo "2. the collector at half its closed-loop maximum (constant arrivals)"
if ! cargo build --release -q -p helios-ingest --bin helios-collector; then
  echo "the collector does not build: part 2 skipped" >&2
  exit 0
fi
target/release/helios-collector --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --cores 2 --log-format json 2>"$WORK/log" &
HPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
URL=http://127.0.0.1:$PORT/v1/events
"$LG" --url "$URL" -c "$CONNS" -d "${SECS}s" --body-file "$BENCH/event.json" --json -q > "$WORK/closed.json" 2>/dev/null
max=$(flat "$WORK/closed.json" requests_per_s)
half=$(awk -v m="$max" 'BEGIN {printf "%.0f", m / 2}')
echo "closed-loop maximum: $max req/s (single 300-byte events, $CONNS connections; load $(load))"
l=$(load)
"$LG" --url "$URL" -c "$CONNS" -d "${SECS}s" --body-file "$BENCH/event.json" --rate "$half" \
  --hdr-log "$WORK/collector.hlog" --json -q > "$WORK/open.json" 2>/dev/null
o=$WORK/open.json
printf 'open loop at %s req/s: sent %s req/s, answered %s req/s; load %s\n' "$half" \
  "$(flat "$o" rate_achieved)" "$(flat "$o" requests_per_s)" "$l"
for kind in latency_us latency_uncorrected_us; do
  printf '  %-24s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s ms\n' "$kind" \
    "$(ms "$(nested "$o" "$kind" p50)")" "$(ms "$(nested "$o" "$kind" p90)")" \
    "$(ms "$(nested "$o" "$kind" p99)")" "$(ms "$(nested "$o" "$kind" p999)")" \
    "$(ms "$(nested "$o" "$kind" max)")"
done
printf '  send lateness (us)       p50 %s  p99 %s  max %s; backlog %s, sent behind a busy connection %s\n' \
  "$(nested "$o" send_lateness_us p50)" "$(nested "$o" send_lateness_us p99)" \
  "$(nested "$o" send_lateness_us max)" "$(flat "$o" backlog)" "$(flat "$o" sends_behind)"
cp "$o" "$CHARTS/collector-half-load.json"
"$CHART" series --out "$CHARTS/collector-half-load-series.svg" \
  --title "helios-collector at $half req/s (half its maximum), $CONNS connections" helios-collector="$o"
