"""Fixtures: a capture of the ``helios.lost`` log, clients that are closed
after each test, a real collector, and fake endpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, List

import pytest

import helios

from collector_process import Collector
from fake_servers import FakeCollector
from helpers import LostLog


@pytest.fixture
def lost_log() -> Iterator[LostLog]:
    handler = LostLog()
    logger = logging.getLogger(helios.LOST_LOGGER_NAME)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture
def make_client() -> Iterator:
    """``make_client(endpoint, **settings)``; every client made is closed
    (briefly) when the test ends, so no sender outlives its test."""
    clients: List[helios.Client] = []

    def make(endpoint, **settings) -> helios.Client:
        settings.setdefault("host", "test-host")
        client = helios.Client(endpoint, **settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1.0)


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    data_dir = tmp_path / "collector-data"
    data_dir.mkdir()
    running = Collector(data_dir).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def fake() -> Iterator[FakeCollector]:
    """A fake collector that accepts everything (tests may swap ``reply``)."""
    server = FakeCollector()
    try:
        yield server
    finally:
        server.stop()
