"""python-logging-loki (pinned in requirements.txt): its ``LokiHandler``
posts each record as a JSON push, synchronously, with Basic auth (the
password is the ingest key), and treats anything but 204 as an error,
which it hands to ``handleError``. It never retries."""

from __future__ import annotations

import logging
import sys
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import logging_loki
import logging_loki.emitter
import pytest
from loki_support import PUSH, of_type

from shipper_support import APP, INGEST_KEY, ShipperCollector, StoreLock


class RecordingLokiHandler(logging_loki.LokiHandler):
    """The client's handler, with its errors kept for the test instead of
    printed (it still closes its session first, as the client does)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.errors: list[BaseException] = []

    def handleError(self, record: logging.LogRecord) -> None:
        self.emitter.close()
        self.errors.append(sys.exc_info()[1])


def make_logger(
    collector: ShipperCollector, job: str, key: str = INGEST_KEY
) -> tuple[logging.Logger, RecordingLokiHandler]:
    handler = RecordingLokiHandler(
        url=collector.url + PUSH,
        tags={"job": job, "env": "test"},
        auth=("loki", key),
        version="1",
    )
    logger = logging.getLogger(f"loki-test.{job}.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, handler


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The client stamps an entry with ``time.time()`` when it sends it:
    give it known times, so the exact nanoseconds can be checked."""
    times: list[float] = []
    base = 1765108800.0

    def now() -> float:
        times.append(base + len(times) * 0.001234567)
        return times[-1]

    monkeypatch.setattr(logging_loki.emitter, "time", types.SimpleNamespace(time=now))
    yield times


def test_every_record_arrives_once_with_line_labels_and_exact_time(
    collector: ShipperCollector, fixed_clock: list[float]
) -> None:
    logger, handler = make_logger(collector, "py-loki")
    for i in range(20):
        level = logging.WARNING if i % 2 else logging.INFO
        logger.log(level, 'order %d "placed"\nsecond line é', i, extra={"tags": {"order-id": i}})
    assert handler.errors == [], "the client saw a failure"

    docs = of_type(collector, "py-loki", 20)
    assert len(docs) == 20
    by_line = {d["line"]: d for d in docs}
    assert len(by_line) == 20, "each record once"
    for i, sent_at in enumerate(fixed_clock):
        doc = by_line[f'order {i} "placed"\nsecond line é']
        # The client's own arithmetic, so the check is of what it sent.
        ns = str(int(sent_at * 1e9))
        assert doc["ts_ns"] == ns
        assert doc["ts"] == int(ns) // 1_000_000
        assert doc["labels"] == {
            "job": "py-loki",
            "env": "test",
            "severity": "warning" if i % 2 else "info",
            "logger": logger.name,
            # The client sends the number; a label keeps its JSON text.
            "order_id": str(i),
        }
        assert doc["app"] == APP
        assert "metadata" not in doc


def test_an_unknown_key_is_401_to_the_client_and_stores_nothing(
    collector: ShipperCollector,
) -> None:
    logger, handler = make_logger(collector, "py-loki-badkey", key="not-a-key")
    logger.info("never stored")
    assert len(handler.errors) == 1
    assert str(handler.errors[0]) == "Unexpected Loki API response status code: 401"
    assert collector.wait_documents(1, timeout=1) == []


def test_an_oversized_record_is_413_to_the_client_and_stores_nothing(tmp_path: Path) -> None:
    running = ShipperCollector.with_keys(tmp_path, extra_args=["--max-body-bytes", "8192"]).start()
    try:
        logger, handler = make_logger(running, "py-loki-big")
        logger.info("x" * 16384)
        assert [str(e) for e in handler.errors] == ["Unexpected Loki API response status code: 413"]
        logger.info("small")
        assert len(handler.errors) == 1
        assert [d["line"] for d in of_type(running, "py-loki-big", 1)] == ["small"]
    finally:
        running.close()


def test_backpressure_is_a_503_the_client_reports_and_nothing_half_stored(
    busy_collector: tuple[ShipperCollector, StoreLock],
) -> None:
    """python-logging-loki does not retry: under backpressure it must see
    the failure (not a false success), and after it a send succeeds."""
    collector, lock = busy_collector
    logger, handler = make_logger(collector, "py-loki-busy")
    logger.info("refused while busy")
    assert [str(e) for e in handler.errors] == ["Unexpected Loki API response status code: 503"]
    lock.release()
    # The journal needs a moment to drain below its budget once unlocked.
    for _ in range(150):
        handler.errors.clear()
        logger.info("after the backpressure")
        if not handler.errors:
            break
        assert [str(e) for e in handler.errors] == ["Unexpected Loki API response status code: 503"]
        time.sleep(0.2)
    assert handler.errors == []
    assert [d["line"] for d in of_type(collector, "py-loki-busy", 1)] == ["after the backpressure"]
