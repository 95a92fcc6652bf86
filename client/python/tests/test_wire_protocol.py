"""What goes on the wire: NDJSON batches to /v1/events over one kept-alive
connection, gzip, Helios-Sent-At, Authorization."""

from __future__ import annotations

import gzip
import time

import fake_servers
from helpers import FAST_RETRIES


def test_events_are_posted_as_gzipped_ndjson_to_v1_events(make_client, fake):
    client = make_client(fake.url + "/prefix/", **FAST_RETRIES)
    ids = [client.record("t", {"n": n}) for n in range(3)]
    assert client.flush(5.0)
    (request,) = fake.requests()
    assert request.request_line == "POST /prefix/v1/events HTTP/1.1"
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.headers["content-encoding"] == "gzip"
    lines = gzip.decompress(request.raw_body).split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert [e["_id"] for e in request.events] == ids


def test_gzip_can_be_switched_off(make_client, fake):
    client = make_client(fake.url, gzip=False, **FAST_RETRIES)
    client.record("t")
    assert client.flush(5.0)
    (request,) = fake.requests()
    assert "content-encoding" not in request.headers
    assert request.raw_body.startswith(b'{"_id":"')


def test_every_attempt_carries_a_fresh_increasing_helios_sent_at(make_client):
    def fail_twice(index, request):
        return fake_servers.status(503) if index < 2 else fake_servers.accept()

    with fake_servers.FakeCollector(fail_twice) as server:
        client = make_client(server.url, **FAST_RETRIES)
        before_ms = time.time_ns() // 1_000_000
        client.record("t")
        assert client.flush(5.0)
        sent_at = [int(r.headers["helios-sent-at"]) for r in server.requests()]
        assert len(sent_at) == 3
        assert sent_at == sorted(set(sent_at))
        assert before_ms <= sent_at[0] <= time.time_ns() // 1_000_000
        bodies = {r.raw_body for r in server.requests()}
        assert len({gzip.decompress(b) for b in bodies}) == 1  # resends are byte-identical


def test_api_key_is_sent_as_a_bearer_token(make_client, fake):
    client = make_client(fake.url, api_key="k-123", **FAST_RETRIES)
    client.record("t")
    assert client.flush(5.0)
    assert fake.requests()[0].headers["authorization"] == "Bearer k-123"
    assert fake.requests()[0].headers["user-agent"].startswith("helios-client-python/")


def test_batches_are_cut_at_max_batch_events(make_client, fake):
    client = make_client(fake.url, **{**FAST_RETRIES, "max_batch_events": 10})
    for n in range(35):
        client.record("t", {"n": n})
    assert client.flush(5.0)
    sizes = [len(r.events) for r in fake.requests()]
    assert sum(sizes) == 35 and max(sizes) == 10


def test_batches_are_cut_at_max_batch_bytes(make_client, fake):
    client = make_client(fake.url, **{**FAST_RETRIES, "max_batch_bytes": 2000})
    for n in range(20):
        client.record("t", {"pad": "x" * 300, "n": n})
    assert client.flush(5.0)
    for request in fake.requests():
        assert len(gzip.decompress(request.raw_body)) <= 2000
    assert [e["n"] for e in fake.events()] == list(range(20))


def test_a_batch_is_sent_after_max_batch_delay_without_a_flush(make_client, fake):
    client = make_client(fake.url, **{**FAST_RETRIES, "max_batch_delay": 0.1})
    client.record("t")
    deadline = time.monotonic() + 2.0
    while not fake.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(fake.events()) == 1


def test_requests_reuse_one_kept_alive_connection(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    for round_number in range(3):
        client.record("t", {"round": round_number})
        assert client.flush(5.0)
    assert [r.connection for r in fake.requests()] == [1, 1, 1]


def test_a_kept_alive_connection_the_server_closed_is_replaced_without_a_retry(make_client):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.accept_then_close()) as server:
        client = make_client(server.url, **FAST_RETRIES)
        for n in range(3):
            client.record("t", {"n": n})
            assert client.flush(5.0)
        assert [r.connection for r in server.requests()] == [1, 2, 3]
        assert client.stats().retried == 0
