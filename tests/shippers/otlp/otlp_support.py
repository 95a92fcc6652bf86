"""Helpers of the OTLP/HTTP logs suites: raw requests (for the refusals a
client never sends on purpose), the answers' ``google.rpc.Status`` in both
encodings, the collector's responses by status, and backpressure made real
(a small journal budget and a store whose write lock the test holds)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from google.rpc import status_pb2

from shipper_support import INGEST_KEY, ShipperCollector

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Journal budget of the backpressure tests (all cores), bytes.
SMALL_BUDGET_BYTES = 65536
#: How long the backpressure tests hold the store's write lock, seconds:
#: long enough for the exporters to see 503s, short enough for their
#: retries (Retry-After: 1) to outlast it.
LOCK_HOLD_SECONDS = 2.5
_STATUS_LINE = re.compile(r'^helios_requests_total\{status="(\d+)"\}\s+(\S+)$')


@dataclass
class Reply:
    status: int
    content_type: str
    headers: dict
    body: bytes


def post(
    collector: ShipperCollector,
    body: bytes,
    content_type: str = JSON,
    key: str | None = INGEST_KEY,
    content_encoding: str | None = None,
    method: str = "POST",
) -> Reply:
    """One request to ``/v1/logs`` with urllib (no OpenTelemetry code)."""
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if content_encoding is not None:
        headers["Content-Encoding"] = content_encoding
    request = urllib.request.Request(
        collector.url + "/v1/logs",
        data=body if method != "GET" else None,
        headers=headers,
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(
                response.status,
                response.headers.get("Content-Type", ""),
                dict(response.headers),
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return Reply(
            error.code,
            error.headers.get("Content-Type", ""),
            dict(error.headers),
            error.read(),
        )


def rpc_status(reply: Reply) -> tuple[int, str]:
    """``(code, message)`` of a failure answer's ``google.rpc.Status``, read
    in the encoding its Content-Type names (and only that one)."""
    if reply.content_type == PROTOBUF:
        status = status_pb2.Status.FromString(reply.body)
        return status.code, status.message
    assert reply.content_type == JSON, reply.content_type
    value = json.loads(reply.body)
    assert set(value) == {"code", "message"}, value
    return value["code"], value["message"]


def json_logs(records: list[dict], resource: dict | None = None) -> bytes:
    """An OTLP/JSON ExportLogsServiceRequest with ``records`` (already in
    OTLP/JSON shape) under one resource and scope."""
    attributes = [{"key": k, "value": {"stringValue": v}} for k, v in (resource or {}).items()]
    body = {
        "resourceLogs": [
            {
                "resource": {"attributes": attributes},
                "scopeLogs": [{"scope": {"name": "raw"}, "logRecords": records}],
            }
        ]
    }
    return json.dumps(body).encode()


def text_record(text: str, **attributes: str) -> dict:
    return {
        "body": {"stringValue": text},
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
    }


def responses_by_status(collector: ShipperCollector) -> dict[int, float]:
    """``helios_requests_total`` per status code."""
    with urllib.request.urlopen(collector.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[int, float] = {}
    for line in text.splitlines():
        match = _STATUS_LINE.match(line)
        if match:
            counts[int(match.group(1))] = float(match.group(2))
    return counts


def derived_id(app: str, protocol: str, *parts: str) -> str:
    """The collector's deterministic id, computed independently: the first
    12 bytes of SHA-256 over length-prefixed (u64 little-endian) parts."""
    digest = hashlib.sha256()
    for part in (app, protocol, *parts):
        data = part.encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:24]


def fill_until_busy(collector: ShipperCollector, run: str) -> int:
    """Posts filler records (OTLP/JSON, gzip) until the collector answers
    503; returns how many were accepted. Fails if it never does."""
    accepted = 0
    for batch in range(64):
        records = [text_record(f"filler {batch}-{i} " + "x" * 2000, run=run) for i in range(8)]
        reply = post(collector, gzip.compress(json_logs(records)), content_encoding="gzip")
        if reply.status == 503:
            assert reply.headers.get("Retry-After") == "1", reply.headers
            assert rpc_status(reply)[0] == 14
            return accepted
        assert reply.status == 200, (reply.status, reply.body)
        accepted += len(records)
        time.sleep(0.01)
    raise AssertionError("the journal budget never refused a request: no backpressure")
