"""splunk-logging (Node's SplunkLogger → HEC ``/services/collector/event/1.0``,
batched) against a real collector: every event once with its message,
metadata and time, success reported; under backpressure the client reports
code 9 and does not retry (maxRetries only covers connection errors); a bad
token reported as code 4 with nothing stored."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from hec_support import post, post_when_ready, wait_for_type

from shipper_support import APP, INGEST_KEY, run_node

SCRIPT = Path(__file__).resolve().parent / "node" / "send.js"
BASE_MS = 1765108800123


def send(collector, count, batch, token=INGEST_KEY, tag="node"):
    return run_node(
        SCRIPT,
        {
            "HEC_URL": collector.url,
            "HEC_TOKEN": token,
            "HEC_COUNT": str(count),
            "HEC_BATCH": str(batch),
            "HEC_BASE_MS": str(BASE_MS),
            "HEC_TAG": tag,
        },
    )


def test_every_batched_event_arrives_once_and_success_is_reported(collector):
    result = send(collector, count=25, batch=10)
    assert result["errors"] == []
    assert [a["status"] for a in result["answers"]] == [200, 200, 200]
    assert all(a["body"] == {"text": "Success", "code": 0} for a in result["answers"])

    docs = wait_for_type(collector, "node:test", 25)
    assert Counter(d["event"]["message"]["n"] for d in docs) == Counter(range(25))
    for doc in docs:
        n = doc["event"]["message"]["n"]
        assert doc["event"] == {
            "message": {"text": f"node message {n}", "n": n, "tags": ["a", "b"]},
            "severity": "warn",
        }
        # splunk-logging sends seconds with 3 decimals as a string.
        assert doc["time"] == f"{(BASE_MS + n) // 1000}.{(BASE_MS + n) % 1000:03d}"
        assert doc["ts"] == BASE_MS + n
        assert doc["host"] == "node-host"
        assert doc["source"] == "send.js"
        assert doc["sourcetype"] == "node:test"
        assert doc["index"] == "main"
        assert doc["app"] == APP
    assert len({d["_id"] for d in docs}) == 25


def test_busy_is_reported_as_code_9_and_not_retried(busy_collector):
    collector, lock = busy_collector
    result = send(collector, count=5, batch=5, tag="busy")
    assert result["answers"] == [
        {"status": 503, "body": {"text": "Server is busy", "code": 9}, "error": None}
    ]
    assert result["errors"] == [{"message": "Server is busy", "code": 9}]
    lock.release()
    # The client gave up after one try (it said so): once the store drains
    # the collector takes events again, and the refused batch is not there.
    post_when_ready(collector, b'{"event":"ok","sourcetype":"ok"}')
    assert len(wait_for_type(collector, "ok", 1)) == 1
    assert [d for d in collector.documents() if d["type"] == "node:test"] == []


def test_a_bad_token_is_reported_as_code_4_and_nothing_is_stored(collector):
    result = send(collector, count=3, batch=3, token="wrong-token")
    assert result["answers"] == [
        {"status": 403, "body": {"text": "Invalid token", "code": 4}, "error": None}
    ]
    assert result["errors"] == [{"message": "Invalid token", "code": 4}]
    status, _, _ = post(collector, "/services/collector", b'{"event":"ok","sourcetype":"ok"}')
    assert status == 200
    assert len(wait_for_type(collector, "ok", 1)) == 1
    assert [d["type"] for d in collector.documents()] == ["ok"]
