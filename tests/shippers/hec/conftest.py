"""Fixtures of the Splunk HEC suites."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hec_support import SMALL_BUDGET_BYTES, fill_until_busy, post

from shipper_support import ShipperCollector, StoreLock


@pytest.fixture
def busy_collector(tmp_path: Path) -> Iterator[tuple[ShipperCollector, StoreLock]]:
    """A collector with a small journal budget whose store is locked and
    whose budget is spent: every event request gets 503 until the test
    calls ``lock.release()``."""
    running = ShipperCollector.with_keys(
        tmp_path, extra_args=["--journal-budget-bytes", str(SMALL_BUDGET_BYTES)]
    ).start()
    lock = None
    try:
        # One event first, so the store and its schema exist to be locked.
        status, _, _ = post(running, "/services/collector", b'{"event":"warm-up"}')
        assert status == 200
        assert len(running.wait_documents(1)) == 1
        lock = StoreLock(running.data_dir)
        fill_until_busy(running)
        yield running, lock
    finally:
        if lock is not None:
            lock.release()
        running.close()
