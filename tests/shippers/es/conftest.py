"""Fixtures of the Elasticsearch suites: the official Python client
pointed at the collector, and a way to stall the store (backpressure)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from elasticsearch import Elasticsearch

from shipper_support import INGEST_KEY, ShipperCollector, StoreLock


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
