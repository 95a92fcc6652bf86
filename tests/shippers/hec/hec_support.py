"""Helpers of the Splunk HEC suites: plain HTTP to the collector (what a
client that reads only the body code would see), its answers counted by
status, backpressure made real by holding the store's write lock."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request

from shipper_support import INGEST_KEY, ShipperCollector

#: The journal budget that a few dozen 1 KiB events exhaust.
SMALL_BUDGET_BYTES = 65536
_STATUS_LINE = re.compile(r'^helios_requests_total\{status="(\d+)"\}\s+(\S+)$')


def post(
    collector: ShipperCollector,
    path: str,
    body: bytes,
    token: str | None = INGEST_KEY,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict, dict[str, str]]:
    """POSTs ``body``; returns the status, the JSON body and the headers."""
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Splunk {token}"
    request = urllib.request.Request(collector.url + path, data=body, headers=all_headers)
    return _send(request)


def get(collector: ShipperCollector, path: str) -> tuple[int, dict, dict[str, str]]:
    return _send(urllib.request.Request(collector.url + path))


def _send(request: urllib.request.Request) -> tuple[int, dict, dict[str, str]]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def answers_by_status(collector: ShipperCollector) -> dict[int, int]:
    """``helios_requests_total`` by status."""
    with urllib.request.urlopen(collector.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    counts: dict[int, int] = {}
    for line in text.splitlines():
        match = _STATUS_LINE.match(line)
        if match:
            counts[int(match.group(1))] = int(float(match.group(2)))
    return counts


def fill_until_busy(collector: ShipperCollector, limit: int = 500) -> int:
    """Posts 1 KiB events until the collector answers 503 (code 9, with
    ``Retry-After``); returns how many were accepted before."""
    for accepted in range(limit):
        body = json.dumps({"event": "f" * 1024, "sourcetype": "filler", "fields": {"i": accepted}})
        status, answer, headers = post(collector, "/services/collector", body.encode())
        if status == 503:
            assert answer == {"text": "Server is busy", "code": 9}
            assert headers.get("Retry-After") == "1"
            return accepted
        assert (status, answer) == (200, {"text": "Success", "code": 0})
    raise AssertionError(f"no 503 after {limit} events past a {SMALL_BUDGET_BYTES}-byte budget")


def wait_for_type(collector: ShipperCollector, type_: str, count: int) -> list:
    """The stored events of ``type_`` once there are ``count`` (or the
    store's timeout passed), after a pause that would show a duplicate."""
    deadline = time.monotonic() + 30
    while True:
        docs = [d for d in collector.documents() if d["type"] == type_]
        if len(docs) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    return [d for d in collector.documents() if d["type"] == type_]


def post_when_ready(collector: ShipperCollector, body: bytes, timeout: float = 30.0) -> None:
    """POSTs ``body`` until it is accepted: after backpressure the store
    needs a moment to drain the journal below its budget."""
    deadline = time.monotonic() + timeout
    while True:
        status, answer, _ = post(collector, "/services/collector", body)
        if status == 200:
            assert answer == {"text": "Success", "code": 0}
            return
        assert (status, answer) == (503, {"text": "Server is busy", "code": 9})
        assert time.monotonic() < deadline, "still busy long after the store was unlocked"
        time.sleep(0.2)
