#!/usr/bin/env bash
# The shippers' protocols tested with the real client libraries people run
# (issue 14): OpenTelemetry, Elasticsearch, Splunk HEC and Loki clients in
# Python (pinned, in a virtualenv) and Node.js (pinned by each package-lock,
# installed with `npm ci` into a local prefix), each against a real
# helios-collector, reading back what the store holds. Extra arguments go
# to pytest.
#
#   tests/shippers/run-tests.sh                 # from anywhere in the repository
#   HELIOS_SHIPPERS_VENV=/tmp/v tests/shippers/run-tests.sh -k loki
#
# Layout: one folder per protocol (otlp/, es/, hec/, loki/), each with its
# pytest files, its requirements.txt and, where a Node client is tested, a
# node/ package whose scripts the Python tests run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${HELIOS_SHIPPERS_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "== creating virtualenv $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
requirements=(-r "$here/requirements/base.txt")
for file in "$here"/*/requirements.txt; do
    requirements+=(-r "$file")
done
echo "== installing pinned client libraries (${requirements[*]})"
"${pip[@]}" install "${requirements[@]}"

for lock in "$here"/*/node/package-lock.json; do
    [ -e "$lock" ] || continue
    dir="$(dirname "$lock")"
    echo "== npm ci in ${dir#"$repo"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

cd "$here"
echo "== ruff check"
"$venv/bin/ruff" check .
echo "== ruff format --check"
"$venv/bin/ruff" format --check .

export HELIOS_COLLECTOR_BIN="${HELIOS_COLLECTOR_BIN:-$repo/target/debug/helios-collector}"
echo "== pytest (collector: $HELIOS_COLLECTOR_BIN)"
exec "$venv/bin/python" -m pytest -v -rs "$@"
