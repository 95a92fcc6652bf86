"""Fixtures of the Elasticsearch suites: the official Python client
pointed at the collector, and a way to stall the store (backpressure)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from shipper_support import INGEST_KEY, ShipperCollector


@pytest.fixture
def es(collector: ShipperCollector) -> Iterator[Elasticsearch]:
    """The client with the ingest key as its API key (``Authorization:
    ApiKey <key>``); its transport does not retry, so a test sees every
    answer."""
    client = Elasticsearch(collector.url, api_key=INGEST_KEY, max_retries=0, request_timeout=30)
    try:
        yield client
    finally:
        client.close()


class StoreLock:
    """Holds the store's SQLite write lock (``BEGIN IMMEDIATE``) so the
    flusher cannot write: the journal fills up to its budget and the
    collector answers "busy" until ``release``."""

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


@pytest.fixture
def store_lock() -> Iterator[Callable[[ShipperCollector], StoreLock]]:
    """``store_lock(collector)`` takes the lock; released at teardown."""
    locks = []

    def take(collector: ShipperCollector) -> StoreLock:
        lock = StoreLock(collector.data_dir)
        locks.append(lock)
        return lock

    yield take
    for lock in locks:
        lock.release()
