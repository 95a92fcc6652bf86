# Sourced by the load scripts: reading a collector's /metrics with bash's
# /dev/tcp alone (no curl on a bare host).

# metrics_text PORT: the whole Prometheus text of the collector on PORT.
metrics_text() {
  exec 3<>/dev/tcp/127.0.0.1/"$1"
  printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
  cat <&3
  exec 3<&-
}

# metric_value PORT NAME: the value of the unlabelled metric NAME.
metric_value() {
  metrics_text "$1" | awk -v m="$2" '$1 == m {print $2}'
}

# metric_total PORT NAME: NAME summed over all its label sets.
metric_total() {
  metrics_text "$1" | awk -v m="$2" 'index($1, m "{") == 1 || $1 == m {s += $2} END {printf "%.0f", s}'
}
