"""The OpenTelemetry JS SDK's OTLP/HTTP logs exporter (OTLP/JSON; gzip
streamed, so chunked) against a real collector, run with Node.js
(``node/export.js``): what it sends is stored once, whole and on time;
what the collector refuses, the exporter reports as a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from otlp_support import LOCK_HOLD_SECONDS, responses_by_status

from shipper_support import APP, INGEST_KEY, ShipperCollector, run_node

SCRIPT = Path(__file__).resolve().parent / "node" / "export.js"
SUCCESS, FAILED = 0, 1
BASE_SECONDS = 1_765_108_800


def export(
    collector: ShipperCollector,
    run: str,
    count: int,
    compression: str = "gzip",
    key: str = INGEST_KEY,
    pad_bytes: int = 0,
    timeout_ms: int = 10_000,
) -> dict:
    if not (SCRIPT.parent / "node_modules").is_dir():
        pytest.fail(
            "the JS exporter is not installed: run `npm ci` in tests/shippers/otlp/node "
            "(run-tests.sh does)",
            pytrace=False,
        )
    return run_node(
        SCRIPT,
        {
            "HELIOS_URL": collector.url,
            "HELIOS_KEY": key,
            "HELIOS_RUN": run,
            "HELIOS_COUNT": str(count),
            "HELIOS_COMPRESSION": compression,
            "HELIOS_PAD_BYTES": str(pad_bytes),
            "HELIOS_TIMEOUT_MS": str(timeout_ms),
        },
    )


def check_records(docs: list[dict], run: str, count: int) -> None:
    mine = [d for d in docs if str(d.get("body", "")).startswith("js record ")]
    assert sorted(d["attributes"]["i"] for d in mine) == list(range(count)), "each exactly once"
    for doc in mine:
        i = doc["attributes"]["i"]
        assert doc["body"] == f"js record {i} {run}"
        assert doc["type"] == ("js.first" if i == 0 else "otel.log")
        assert doc["app"] == APP
        # HrTime [BASE_SECONDS + i, 123456789]: the nanoseconds kept exactly.
        assert doc["time_unix_nano"] == f"{BASE_SECONDS + i}123456789"
        assert doc["ts"] == (BASE_SECONDS + i) * 1000 + 123
        assert doc["severity_number"] == (9 if i % 2 == 0 else 13)
        assert doc["severity_text"] == ("INFO" if i % 2 == 0 else "WARN")
        assert doc["attributes"]["http.route"] == "/orders"
        assert doc["attributes"]["ratio"] == 0.25
        assert doc["attributes"]["tags"] == ["a", "b"]
        assert doc["trace_id"] == "5b8efff798038103d269b633813fc60c"
        assert doc["span_id"] == "eee19b7ec3c1b174"
        assert doc["flags"] == 1
        assert doc["resource"] == {"service.name": "js-shop", "deployment.environment": "test"}
        assert doc["scope"] == {"name": "helios.js", "version": "2.0.0"}


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_records_arrive_once_with_message_attributes_and_exact_time(
    collector: ShipperCollector, run_id: str, compression: str
) -> None:
    result = export(collector, run_id, 25, compression=compression)
    assert result == {"results": [SUCCESS], "errors": []}
    docs = collector.wait_documents(25)
    assert len(docs) == 25
    check_records(docs, run_id, 25)


def test_a_bad_key_fails_the_export_with_401_and_a_json_status(
    collector: ShipperCollector, run_id: str
) -> None:
    # Uncompressed and small: the body arrives with the head, so the
    # collector answers it on a connection it keeps.
    result = export(collector, run_id, 3, compression="none", key="k_not_a_key")
    assert result["results"] == [FAILED]
    (error,) = result["errors"]
    assert error["code"] == 401
    assert json.loads(error["data"]) == {"code": 16, "message": "unknown credentials"}
    assert responses_by_status(collector).get(401) == 1, "refused once, not retried"
    assert collector.wait_documents(1, timeout=1) == []


def refused_only_with(collector: ShipperCollector, status: int) -> None:
    """Every answer the collector sent was ``status`` (at least one)."""
    sent = {code: n for code, n in responses_by_status(collector).items() if n}
    assert set(sent) == {status}, sent


def check_refusal(result: dict, status: int, grpc_code: int) -> None:
    """The export failed; where the exporter read the answer, it is the
    refusal in the OTLP/JSON Status shape. (A gzip body streams in after
    the head; the collector refuses on the head and closes with body bytes
    unread, which can reset the connection before the client reads the
    answer: the JS exporter then retries it as a network error.)"""
    assert result["results"] == [FAILED]
    (error,) = result["errors"]
    if error.get("code") is not None:
        assert error["code"] == status, error
        assert json.loads(error["data"])["code"] == grpc_code, error


def test_a_bad_key_with_a_streamed_gzip_body_fails_and_stores_nothing(
    collector: ShipperCollector, run_id: str
) -> None:
    result = export(collector, run_id, 200, key="k_not_a_key")
    check_refusal(result, 401, 16)
    refused_only_with(collector, 401)
    assert collector.wait_documents(1, timeout=1) == []


def test_an_oversized_request_fails_with_413_and_stores_nothing(
    tmp_path: Path, run_id: str
) -> None:
    running = ShipperCollector.with_keys(tmp_path, extra_args=["--max-body-bytes", "32768"]).start()
    try:
        # Chunked: the limit is met while the body streams in.
        result = export(running, run_id, 40, pad_bytes=1024)
        check_refusal(result, 413, 8)  # RESOURCE_EXHAUSTED
        refused_only_with(running, 413)
        assert running.wait_documents(1, timeout=1) == []
    finally:
        running.close()


def test_backpressure_503_is_retried_and_nothing_is_lost(busy_collector) -> None:
    busy = busy_collector
    refused_before = responses_by_status(busy.collector).get(503, 0)
    busy.lock.release_after(LOCK_HOLD_SECONDS)
    result = export(busy.collector, busy.run, 20, timeout_ms=30_000)
    assert result == {"results": [SUCCESS], "errors": []}
    assert responses_by_status(busy.collector).get(503, 0) > refused_before, (
        "the exporter never met the backpressure"
    )
    docs = busy.collector.wait_documents(busy.stored_before + 20)
    assert len(docs) == busy.stored_before + 20
    check_records(docs, busy.run, 20)
