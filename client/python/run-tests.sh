#!/usr/bin/env bash
# The Python client's checks, as CI runs them: a virtualenv with the pinned
# dev tools and the package installed from source (not editable, so the
# real install is what gets tested), ruff lint and format checks, then
# pytest. Extra arguments go to pytest.
#
#   client/python/run-tests.sh            # from anywhere in the repository
#   HELIOS_PY_VENV=/tmp/venv client/python/run-tests.sh -k fork
#
# The tests that need a real collector run target/debug/helios-collector
# (or HELIOS_COLLECTOR_BIN) and fail, naming the build command, without it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${HELIOS_PY_VENV:-$here/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "== creating virtualenv $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
echo "== installing dev tools and the package"
"${pip[@]}" install -r "$here/requirements-dev.txt"
"${pip[@]}" install --force-reinstall --no-deps "$here"

cd "$here"
echo "== ruff check"
"$venv/bin/ruff" check .
echo "== ruff format --check"
"$venv/bin/ruff" format --check .

export HELIOS_COLLECTOR_BIN="${HELIOS_COLLECTOR_BIN:-$repo/target/debug/helios-collector}"
echo "== pytest (collector: $HELIOS_COLLECTOR_BIN)"
exec "$venv/bin/python" -m pytest -v -rs "$@"
