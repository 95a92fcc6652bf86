"""Fixtures shared by the shipper suites: a real collector (the Python
client's ``collector_process.Collector``, one implementation for both
suites) started with API keys, and helpers to read back what it stored."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "client" / "python" / "tests"))

from shipper_support import INGEST_KEY, ShipperCollector  # noqa: E402


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[ShipperCollector]:
    """A collector on a free loopback port with ``--api-keys`` (key
    ``INGEST_KEY`` stamps app ``shipper-tests``)."""
    running = ShipperCollector.with_keys(tmp_path).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def ingest_key() -> str:
    return INGEST_KEY
