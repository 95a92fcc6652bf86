"""The OpenTelemetry Python SDK's OTLP/HTTP log exporter (protobuf, gzip)
against a real collector: what it sends is stored once, whole and on time;
what the collector refuses, the exporter reports as a failure."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from otlp_support import LOCK_HOLD_SECONDS, derived_id, responses_by_status

from shipper_support import APP, INGEST_KEY, ShipperCollector

TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
SPAN_ID = 0xEEE19B7EC3C1B174
#: 2025-12-07T12:00:00.123456789Z in ns: past 2^53, so a float would lose it.
TIME_NS = 1_765_108_800_123_456_789


class RecordingExporter(OTLPLogExporter):
    """The real exporter; it only remembers what each export returned."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.results: list[LogRecordExportResult] = []

    def export(self, batch: Sequence) -> LogRecordExportResult:
        result = super().export(batch)
        self.results.append(result)
        return result


def pipeline(
    collector: ShipperCollector, key: str = INGEST_KEY, timeout: float = 10.0
) -> tuple[LoggerProvider, RecordingExporter]:
    exporter = RecordingExporter(
        endpoint=f"{collector.url}/v1/logs",
        headers={"Authorization": f"Bearer {key}"},
        compression=Compression.Gzip,
        timeout=timeout,
    )
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"})
    )
    # A long schedule: the test's force_flush sends, in batches of 512.
    provider.add_log_record_processor(
        BatchLogRecordProcessor(
            exporter, schedule_delay_millis=60_000, export_timeout_millis=30_000
        )
    )
    return provider, exporter


def test_logging_records_arrive_once_with_message_attributes_severity_and_trace(
    collector: ShipperCollector, run_id: str
) -> None:
    provider, exporter = pipeline(collector)
    logger = logging.getLogger(f"shop.orders.{run_id}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    with warnings.catch_warnings():
        # The SDK's LoggingHandler is deprecated in favour of an
        # instrumentation package; it is still what most apps run.
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    span = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(TraceFlags.SAMPLED)))
    before_ms = int(time.time() * 1000)
    with trace.use_span(span):
        for i in range(30):
            log = logger.warning if i % 3 == 0 else logger.info
            log("order %d placed", i, extra={"run": run_id, "order_id": i, "amount": i * 1.5})
    after_ms = int(time.time() * 1000) + 1
    assert provider.force_flush(10_000)
    assert exporter.results == [LogRecordExportResult.SUCCESS]
    logger.removeHandler(handler)
    provider.shutdown()

    docs = [d for d in collector.wait_documents(30) if d.get("attributes", {}).get("run") == run_id]
    assert sorted(d["body"] for d in docs) == sorted(f"order {i} placed" for i in range(30))
    assert len(collector.documents()) == 30, "exactly once: nothing else, nothing twice"
    for doc in docs:
        i = doc["attributes"]["order_id"]
        assert doc["type"] == "otel.log"
        assert doc["app"] == APP
        assert before_ms <= doc["ts"] <= after_ms
        assert int(doc["time_unix_nano"]) // 1_000_000 == doc["ts"]
        assert doc["attributes"]["amount"] == i * 1.5
        warned = i % 3 == 0
        assert doc["severity_number"] == (13 if warned else 9)
        assert doc["severity_text"] == ("WARN" if warned else "INFO")
        assert doc["trace_id"] == f"{TRACE_ID:032x}"
        assert doc["span_id"] == f"{SPAN_ID:016x}"
        assert doc["flags"] == 1
        assert doc["resource"]["service.name"] == "checkout"
        assert doc["resource"]["telemetry.sdk.language"] == "python"
        assert doc["scope"]["name"] == f"shop.orders.{run_id}"


def test_logs_api_keeps_exact_time_structured_body_event_name_and_scope(
    collector: ShipperCollector, run_id: str
) -> None:
    provider, exporter = pipeline(collector)
    logger = provider.get_logger("helios.audit", "3.1.0", attributes={"team": "payments"})
    logger.emit(
        timestamp=TIME_NS,
        observed_timestamp=TIME_NS + 5_000_000,
        severity_number=SeverityNumber.ERROR,
        severity_text="ERROR",
        body={"kind": "refund", "amount": 12.5, "items": [1, "two", True], "raw": b"\x00\xff"},
        attributes={"run": run_id, "big": 2**62, "flags": [True, False]},
        event_name="payment.refunded",
    )
    assert provider.force_flush(10_000)
    assert exporter.results == [LogRecordExportResult.SUCCESS]

    (doc,) = collector.wait_documents(1)
    assert doc["type"] == "payment.refunded"
    assert doc["event_name"] == "payment.refunded"
    assert doc["ts"] == 1_765_108_800_123
    assert doc["time_unix_nano"] == "1765108800123456789"
    assert doc["observed_time_unix_nano"] == "1765108800128456789"
    assert doc["severity_number"] == 17
    assert doc["body"] == {
        "kind": "refund",
        "amount": 12.5,
        "items": [1, "two", True],
        "raw": "AP8=",
    }
    assert doc["attributes"] == {"run": run_id, "big": 2**62, "flags": [True, False]}
    assert doc["scope"] == {
        "name": "helios.audit",
        "version": "3.1.0",
        "attributes": {"team": "payments"},
    }
    assert "trace_id" not in doc


def test_a_log_record_uid_is_stored_once_when_exported_twice(
    collector: ShipperCollector, run_id: str
) -> None:
    uid = f"01JF8Z4Q3V7T1J3K5M7N9P1R3S-{run_id}"
    provider, exporter = pipeline(collector)
    logger = provider.get_logger("helios.dedup")
    for _ in range(2):
        # The same record twice, as a retry after a lost answer would send it.
        logger.emit(timestamp=TIME_NS, body="charged once", attributes={"log.record.uid": uid})
        assert provider.force_flush(10_000)
    assert exporter.results == [LogRecordExportResult.SUCCESS] * 2

    docs = collector.wait_documents(2, timeout=5)
    assert len(docs) == 1, docs
    assert docs[0]["_id"] == derived_id(APP, "otlp", uid)
    assert docs[0]["body"] == "charged once"


def test_the_otlp_type_flag_takes_the_type_from_the_resource(tmp_path: Path, run_id: str) -> None:
    running = ShipperCollector.with_keys(
        tmp_path, extra_args=["--otlp-type", "$resource.service.name|otel.log"]
    ).start()
    try:
        provider, exporter = pipeline(running)
        provider.get_logger("x").emit(body="typed", attributes={"run": run_id})
        assert provider.force_flush(10_000)
        assert exporter.results == [LogRecordExportResult.SUCCESS]
        (doc,) = running.wait_documents(1)
        assert doc["type"] == "checkout"
    finally:
        running.close()


def test_a_bad_key_fails_the_export_with_401_and_stores_nothing(
    collector: ShipperCollector,
) -> None:
    provider, exporter = pipeline(collector, key="k_not_a_key")
    provider.get_logger("x").emit(body="must not be stored")
    provider.force_flush(10_000)
    assert exporter.results == [LogRecordExportResult.FAILURE]
    # (The exporter's own log line is deduplicated across tests, so the
    # collector's count says what the exporter was answered.)
    assert responses_by_status(collector).get(401) == 1, "refused once, not retried"
    assert collector.wait_documents(1, timeout=1) == []


def test_an_oversized_batch_gets_413_and_stores_nothing(tmp_path: Path) -> None:
    running = ShipperCollector.with_keys(tmp_path, extra_args=["--max-body-bytes", "32768"]).start()
    try:
        provider, exporter = pipeline(running)
        logger = provider.get_logger("x")
        for i in range(40):
            # Random text, so gzip cannot shrink the batch under the limit.
            logger.emit(body=f"{i} {os.urandom(1024).hex()}")
        provider.force_flush(10_000)
        assert exporter.results == [LogRecordExportResult.FAILURE]
        assert responses_by_status(running).get(413) == 1, "refused once, not retried"
        assert running.wait_documents(1, timeout=1) == []
    finally:
        running.close()


def test_backpressure_503_is_retried_and_nothing_is_lost(busy_collector) -> None:
    busy = busy_collector
    refused_before = responses_by_status(busy.collector).get(503, 0)
    provider, exporter = pipeline(busy.collector, timeout=30)
    logger = provider.get_logger("helios.retry")
    for i in range(20):
        logger.emit(body=f"retried {i}", attributes={"run": busy.run, "n": i})
    busy.lock.release_after(LOCK_HOLD_SECONDS)
    assert provider.force_flush(30_000)
    assert exporter.results == [LogRecordExportResult.SUCCESS]
    assert responses_by_status(busy.collector).get(503, 0) > refused_before, (
        "the exporter never met the backpressure"
    )

    docs = busy.collector.wait_documents(busy.stored_before + 20)
    retried = sorted(d["attributes"]["n"] for d in docs if d["body"].startswith("retried "))
    assert retried == list(range(20)), "each record exactly once"
    assert len(docs) == busy.stored_before + 20
