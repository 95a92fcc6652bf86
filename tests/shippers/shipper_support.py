"""Helpers for the shipper suites: a collector with API keys, waiting for
the store, and running the Node.js clients."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from collector_process import STORE_TIMEOUT, Collector

#: The ingest key every suite uses; it stamps ``APP``.
INGEST_KEY = "k_shipper_tests_0123456789"
#: The app stamped on the events posted with ``INGEST_KEY``.
APP = "shipper-tests"
HERE = Path(__file__).resolve().parent


class ShipperCollector(Collector):
    """A collector with ``--api-keys``; ``extra_args`` go to the binary."""

    @classmethod
    def with_keys(
        cls, tmp_path: Path, extra_args: Sequence[str] = (), port: int | None = None
    ) -> ShipperCollector:
        keys = tmp_path / "api-keys"
        keys.write_text(f"{INGEST_KEY} {APP} ingest\n")
        data_dir = tmp_path / "collector-data"
        data_dir.mkdir(exist_ok=True)
        return cls(data_dir, port=port, extra_args=["--api-keys", str(keys), *extra_args])

    def documents(self) -> list[dict]:
        """Every stored event (empty before the store exists): the stored
        document with the envelope columns set over it (``_id`` as hex,
        ``type``, ``ts`` and ``recv`` in epoch ms, ``app``)."""
        db = self.data_dir / "events.db"
        if not db.exists():
            return []
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(
                "SELECT lower(hex(_id)), type, ts, recv, app, doc FROM events ORDER BY seq"
            ).fetchall()
        except sqlite3.OperationalError:
            return []  # the schema is not there yet
        finally:
            conn.close()
        docs = []
        for id_hex, type_, ts, recv, app, doc in rows:
            event = json.loads(doc)
            event.update({"_id": id_hex, "type": type_, "ts": ts, "recv": recv, "app": app})
            docs.append(event)
        return docs

    def wait_documents(self, count: int, timeout: float = STORE_TIMEOUT) -> list[dict]:
        """Waits until the store holds at least ``count`` documents, then a
        little longer (so a duplicate would show), and returns them all."""
        deadline = time.monotonic() + timeout
        while True:
            docs = self.documents()
            if len(docs) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        return self.documents()


class StoreLock:
    """Holds the store's SQLite write lock (``BEGIN IMMEDIATE``) so the
    collector's flusher cannot write: journaled events pile up against
    ``--journal-budget-bytes`` and the collector answers "busy" until
    ``release`` (the suites' real backpressure)."""

    def __init__(self, data_dir: Path, timeout: float = 30.0) -> None:
        db = data_dir / "events.db"
        deadline = time.monotonic() + timeout
        while not db.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"{db} never appeared")
            time.sleep(0.05)
        self._conn = sqlite3.connect(
            db, isolation_level=None, timeout=timeout, check_same_thread=False
        )
        self._conn.execute("BEGIN IMMEDIATE")
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._conn.execute("ROLLBACK")
                self._conn.close()
                self._held = False

    def release_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.release)
        timer.start()
        return timer


def by_type(docs: list[dict]) -> dict[str, list[dict]]:
    """Documents grouped by their ``type``."""
    out: dict[str, list[dict]] = {}
    for doc in docs:
        out.setdefault(doc.get("type", ""), []).append(doc)
    return out


def run_node(script: Path, env: dict[str, str], timeout: float = 60.0) -> dict:
    """Runs a Node.js client script (``node script``) with ``env`` added;
    the script prints one JSON object on its last stdout line, which is
    returned. A failing script fails the test with its output."""
    full_env = {**os.environ, **env}
    done = subprocess.run(
        ["node", str(script)],
        cwd=script.parent,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{script.name} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise AssertionError(f"{script.name} printed nothing; stderr:\n{done.stderr}")
    return json.loads(lines[-1])
