"""Fixtures of the OTLP/HTTP logs suites."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from otlp_support import (
    SMALL_BUDGET_BYTES,
    fill_until_busy,
    json_logs,
    post,
    text_record,
)

from shipper_support import ShipperCollector, StoreLock


@dataclass
class Busy:
    """A collector whose journal budget is spent while ``lock`` holds the
    store: every request gets 503 until ``lock.release()``."""

    collector: ShipperCollector
    lock: StoreLock
    #: Records stored or bound to be once the lock goes (warm-up + filler).
    stored_before: int
    run: str


@pytest.fixture
def run_id() -> str:
    """A tag unique to the test, put on the records it sends."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def busy_collector(tmp_path: Path, run_id: str) -> Iterator[Busy]:
    running = ShipperCollector.with_keys(
        tmp_path, extra_args=["--journal-budget-bytes", str(SMALL_BUDGET_BYTES)]
    ).start()
    lock = None
    try:
        # One record first, so the store and its schema exist to be locked.
        reply = post(running, json_logs([text_record("warm-up", run=run_id)]))
        assert reply.status == 200, reply
        assert len(running.wait_documents(1)) == 1
        lock = StoreLock(running.data_dir)
        filler = fill_until_busy(running, run_id)
        yield Busy(running, lock, 1 + filler, run_id)
    finally:
        if lock is not None:
            lock.release()
        running.close()
