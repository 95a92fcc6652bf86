"""A real ``helios-collector`` process on a free loopback port.

The binary comes from ``HELIOS_COLLECTOR_BIN`` or ``<repo>/target/debug/
helios-collector`` (CI builds it before the Python tests). A missing binary
fails the test that needs it, with the command that builds it: skipping
would let a green run hide that the real server was never exercised.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
#: How long a collector may take to start listening, seconds.
START_TIMEOUT = 30.0
#: How long the store may take to show what was acknowledged, seconds.
STORE_TIMEOUT = 30.0
_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def collector_binary() -> Path:
    path = Path(
        os.environ.get("HELIOS_COLLECTOR_BIN") or REPO_ROOT / "target/debug/helios-collector"
    )
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"helios-collector binary not found at {path}; build it first "
            "(cargo build -p helios-ingest --bin helios-collector) or set "
            "HELIOS_COLLECTOR_BIN",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """One collector process; ``kill``/``start`` keep the port and data dir."""

    def __init__(
        self, data_dir: Path, port: Optional[int] = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.binary = collector_binary()
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: Optional[subprocess.Popen] = None
        self._starts = 0

    def start(self) -> Collector:
        self._starts += 1
        log_path = self.data_dir.parent / f"{self.data_dir.name}-collector-{self._starts}.log"
        # The collector reads HELIOS_* variables as flags; the test's own
        # (HELIOS_COLLECTOR_BIN, HELIOS_PY_VENV...) must not reach it.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HELIOS_")}
        with open(log_path, "wb") as log:
            self._process = subprocess.Popen(
                [
                    str(self.binary),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                    "--data-dir",
                    str(self.data_dir),
                    "--cores",
                    "1",
                    "--log-format",
                    "json",
                    "--segment-size-bytes",
                    "4194304",
                    # These suites read the SQLite hot tier's ``events``
                    # table directly, and post events of 2025: keep the
                    # compactor (whose first pass waits one period) from
                    # moving them into columnar files while a test reads
                    # (the tiers have their own tests:
                    # store/tests/columnar_*.rs, ingest/tests/kill.rs).
                    "--store-compact-every-ms",
                    "86400000",
                    *self.extra_args,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                pass
            if self._process.poll() is not None:
                pytest.fail(
                    f"collector exited at start ({self._process.returncode}): "
                    f"{log_path.read_text(errors='replace')[-4000:]}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail("collector did not start listening", pytrace=False)
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; the journal must carry the acks."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)
            self._process = None

    def stop(self) -> None:
        """SIGTERM and wait for the clean exit."""
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
            self._process = None

    def metrics(self) -> Dict[str, float]:
        """Prometheus metrics, summed over labels."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        totals: Dict[str, float] = {}
        for line in text.splitlines():
            match = _METRIC_LINE.match(line)
            if match:
                totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(3))
        return totals

    def stored_ids(self) -> Counter:
        """How many rows the store holds per ``_id`` (hex)."""
        db = self.data_dir / "events.db"
        if not db.exists():
            return Counter()
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT lower(hex(_id)) FROM events").fetchall()
        except sqlite3.OperationalError:
            return Counter()  # the schema is not there yet
        finally:
            conn.close()
        return Counter(row[0] for row in rows)

    def stored_documents(self) -> Dict[str, dict]:
        db = self.data_dir / "events.db"
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT lower(hex(_id)), doc FROM events").fetchall()
        finally:
            conn.close()
        return {row[0]: json.loads(row[1]) for row in rows}

    def wait_stored(self, ids: Iterable[str], timeout: float = STORE_TIMEOUT) -> Counter:
        """Waits until every id in ``ids`` is in the store; returns the
        store's per-id counts."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            stored = self.stored_ids()
            if wanted <= set(stored) or time.monotonic() > deadline:
                return stored
            time.sleep(0.05)

    def close(self) -> None:
        self.kill()
