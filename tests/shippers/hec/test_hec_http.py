"""What neither client library exercises, with plain HTTP (urllib,
http.client) against a real collector: the raw endpoint, the health check,
and each refusal's Splunk status and code, with nothing stored."""

from __future__ import annotations

import gzip
import http.client
import json

import pytest
from hec_support import get, post, wait_for_type

from shipper_support import APP, INGEST_KEY


def assert_nothing_stored_but_a_marker(collector):
    """Posts one good event and checks it is all the store holds (so the
    check does not pass merely because the flusher had not run yet)."""
    status, answer, _ = post(
        collector, "/services/collector", b'{"event":"marker","sourcetype":"marker"}'
    )
    assert (status, answer) == (200, {"text": "Success", "code": 0})
    assert len(wait_for_type(collector, "marker", 1)) == 1
    assert [d["type"] for d in collector.documents()] == ["marker"]


def test_raw_lines_arrive_once_with_the_query_metadata(collector):
    query = (
        "?channel=00872DC6-AC83-4EDE-8AFE-8413C3825C4C&sourcetype=nginx%3Aaccess"
        "&host=web+1&source=%2Fvar%2Flog%2Fa.log&index=main&time=1433188255.5009"
    )
    body = 'first line\r\n\nsecond "quoted" line\n\r\n{"looks":"like json"}\n'
    status, answer, headers = post(collector, "/services/collector/raw" + query, body.encode())
    assert (status, answer) == (200, {"text": "Success", "code": 0})
    assert headers["Content-Type"] == "application/json"
    docs = wait_for_type(collector, "nginx:access", 3)
    assert sorted(d["event"] for d in docs) == sorted(
        ["first line", 'second "quoted" line', '{"looks":"like json"}']
    )
    for doc in docs:
        assert doc["ts"] == 1433188255500
        assert doc["time"] == "1433188255.5009"
        assert doc["host"] == "web 1"
        assert doc["source"] == "/var/log/a.log"
        assert doc["index"] == "main"
        assert doc["app"] == APP


def test_raw_without_metadata_takes_the_receive_time(collector):
    status, _, _ = post(collector, "/services/collector/raw/1.0", b"just text\n")
    assert status == 200
    (doc,) = wait_for_type(collector, "httpevent", 1)
    assert doc["event"] == "just text"
    assert doc["ts"] == doc["recv"]


def test_concatenated_envelopes_and_gzip_arrive_once(collector):
    body = (
        b'{"event":{"k":"v"},"fields":{"region":"eu"},"sourcetype":"gz","time":"1765108800.5"}'
        b'\n{"event":"two","sourcetype":"gz","time":1765108801}'
    )
    status, answer, _ = post(
        collector,
        "/services/collector/event/1.0",
        gzip.compress(body),
        headers={"Content-Encoding": "gzip"},
    )
    assert (status, answer) == (200, {"text": "Success", "code": 0})
    docs = sorted(wait_for_type(collector, "gz", 2), key=lambda d: d["ts"])
    assert [(d["event"], d["ts"], d["time"]) for d in docs] == [
        ({"k": "v"}, 1765108800500, "1765108800.5"),
        ("two", 1765108801000, 1765108801),
    ]
    assert docs[0]["fields"] == {"region": "eu"}


def test_health_needs_no_token(collector):
    status, answer, _ = get(collector, "/services/collector/health")
    assert (status, answer) == (200, {"text": "HEC is healthy", "code": 17})
    status, answer, _ = get(collector, "/services/collector/health/1.0")
    assert (status, answer) == (200, {"text": "HEC is healthy", "code": 17})


def test_health_is_code_18_while_the_journal_budget_is_spent(busy_collector):
    collector, lock = busy_collector
    status, answer, _ = get(collector, "/services/collector/health")
    assert (status, answer) == (503, {"text": "HEC is unhealthy, queues are full", "code": 18})
    lock.release()


@pytest.mark.parametrize(
    ("token", "status", "answer"),
    [
        (None, 401, {"text": "Token is required", "code": 2}),
        ("wrong", 403, {"text": "Invalid token", "code": 4}),
    ],
)
def test_missing_and_unknown_tokens_are_refused(collector, token, status, answer):
    got = post(collector, "/services/collector/event", b'{"event":"secret"}', token=token)
    assert got[:2] == (status, answer)
    assert_nothing_stored_but_a_marker(collector)


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (b"not json", {"text": "Invalid data format", "code": 6, "invalid-event-number": 0}),
        (
            b'{"event":"a"}{"event":"b"',
            {"text": "Invalid data format", "code": 6, "invalid-event-number": 1},
        ),
        (
            b'{"event":"a","time":"soon"}',
            {"text": "Invalid data format", "code": 6, "invalid-event-number": 0},
        ),
        (
            b'{"event":"a"}{"host":"h"}',
            {"text": "Event field is required", "code": 12, "invalid-event-number": 1},
        ),
        (
            b'{"event":""}',
            {"text": "Event field cannot be blank", "code": 13, "invalid-event-number": 0},
        ),
        (b"", {"text": "No data", "code": 5}),
    ],
)
def test_a_bad_body_refuses_the_whole_request(collector, body, answer):
    status, got, _ = post(collector, "/services/collector", body)
    assert (status, got) == (400, answer)
    assert_nothing_stored_but_a_marker(collector)


def test_a_body_that_is_not_what_its_encoding_says_is_code_6(collector):
    status, answer, _ = post(
        collector,
        "/services/collector",
        b'{"event":"plain"}',
        headers={"Content-Encoding": "gzip"},
    )
    assert (status, answer) == (400, {"text": "Invalid data format", "code": 6})
    assert_nothing_stored_but_a_marker(collector)


def test_an_oversized_request_is_413(collector):
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=30)
    try:
        # The collector answers from the head; the client never sends the body.
        connection.putrequest("POST", "/services/collector")
        connection.putheader("Authorization", f"Splunk {INGEST_KEY}")
        connection.putheader("Content-Length", str(64 << 20))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read()) == {"text": "Content too large", "code": 6}
    finally:
        connection.close()
    assert_nothing_stored_but_a_marker(collector)


def test_an_event_the_validation_refuses_is_named_and_the_others_kept_once(collector):
    """Splunk's answer for a request indexed up to a bad event; unlike
    Splunk, the events after it are kept too (each exactly once)."""
    deep: dict = {}
    for _ in range(80):  # past --max-json-depth (64)
        deep = {"k": deep}
    body = "".join(
        json.dumps({"event": event, "sourcetype": "partial"}) for event in ["a", deep, "c"]
    )
    status, answer, _ = post(collector, "/services/collector", body.encode())
    assert (status, answer) == (
        400,
        {"text": "Invalid data format", "code": 6, "invalid-event-number": 1},
    )
    docs = wait_for_type(collector, "partial", 2)
    assert sorted(d["event"] for d in docs) == ["a", "c"]


def test_a_wrong_method_is_405(collector):
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=30)
    try:
        connection.request(
            "GET", "/services/collector/event", headers={"Authorization": f"Splunk {INGEST_KEY}"}
        )
        response = connection.getresponse()
        assert response.status == 405
        assert response.getheader("Allow") == "POST"
        assert json.loads(response.read()) == {"text": "Method not allowed", "code": 405}
    finally:
        connection.close()
