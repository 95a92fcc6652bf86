"""Endpoints that refuse, babble, stall, ask to retry later or reject part of
a batch: ``record()`` stays fast, nothing raises, and every event that is
not delivered is in the ``helios.lost`` log, whole."""

from __future__ import annotations

import time

import fake_servers
from helpers import FAST_RETRIES, expected_document, without_ts

#: Far above a normal record() (microseconds, or a few GIL switch intervals
#: of 5 ms on a busy machine) and below every network wait used here (0.3 s
#: and more): a record() that waited on the network would show.
RECORD_TIME_LIMIT = 0.1
EVENTS = 30


def record_timed(client, count=EVENTS):
    """Records ``count`` events; returns their ids and the slowest call."""
    ids, slowest = {}, 0.0
    for n in range(count):
        fields = {"n": n, "order": {"sku": f"A-{n}", "qty": n % 3}}
        started = time.perf_counter()
        event_id = client.record("order.placed", fields)
        slowest = max(slowest, time.perf_counter() - started)
        ids[event_id] = fields
    return ids, slowest


def assert_each_logged_whole(lost_log, ids, timeout=15.0):
    docs = lost_log.wait_for(ids, timeout)
    assert set(ids) <= set(docs), f"{len(set(ids) - set(docs))} events missing from the log"
    for event_id, fields in ids.items():
        assert without_ts(docs[event_id]) == expected_document(event_id, "order.placed", fields)


def test_unreachable_endpoint(make_client, lost_log):
    client = make_client(fake_servers.unreachable_url(), **FAST_RETRIES)
    ids, slowest = record_timed(client)
    assert slowest < RECORD_TIME_LIMIT
    assert client.flush(10.0) is False
    assert_each_logged_whole(lost_log, ids)
    assert all("retries exhausted" in m for m in lost_log.messages())
    stats = client.stats()
    assert (stats.dropped, stats.sent) == (EVENTS, 0)
    assert stats.retried >= 1


def test_garbage_speaking_endpoint(make_client, lost_log):
    babble = b"\x00\xffHELLO? this is not HTTP\r\n\r\n" * 3
    with fake_servers.FakeCollector(lambda i, r: fake_servers.garbage(babble)) as server:
        client = make_client(server.url, **FAST_RETRIES)
        ids, slowest = record_timed(client)
        assert slowest < RECORD_TIME_LIMIT
        assert client.flush(10.0) is False
        assert_each_logged_whole(lost_log, ids)
        assert len(server.requests()) >= 2  # it was retried


def test_stalling_endpoint(make_client, lost_log):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.stall()) as server:
        settings = {**FAST_RETRIES, "io_timeout": 0.3, "max_retry_time": 0.8}
        client = make_client(server.url, **settings)
        ids, slowest = record_timed(client)
        assert slowest < RECORD_TIME_LIMIT
        assert client.flush(10.0) is False
        assert_each_logged_whole(lost_log, ids)
        assert "timed out" in lost_log.messages()[0]


def test_503_with_retry_after_is_honoured_then_given_up(make_client, lost_log):
    def busy(index, request):
        return fake_servers.status(503, (("Retry-After", "1"),), b'{"error":"journal full"}')

    with fake_servers.FakeCollector(busy) as server:
        client = make_client(server.url, **{**FAST_RETRIES, "max_retry_time": 2.5})
        ids, slowest = record_timed(client)
        assert slowest < RECORD_TIME_LIMIT
        assert client.flush(10.0) is False
        assert_each_logged_whole(lost_log, ids)
        seen = server.requests()
        gaps = [later.at - earlier.at for earlier, later in zip(seen, seen[1:])]
        assert len(seen) == 3  # at 0 s, >= 1 s, >= 2 s; a fourth would pass 2.5 s
        assert min(gaps) >= 0.95
        assert "HTTP 503 journal full" in lost_log.messages()[0]


def test_503_with_retry_after_then_success_delivers_everything(make_client, lost_log):
    def busy_once(index, request):
        if index == 0:
            return fake_servers.status(503, (("Retry-After", "1"),), b'{"error":"busy"}')
        return fake_servers.accept()

    with fake_servers.FakeCollector(busy_once) as server:
        client = make_client(server.url, **{**FAST_RETRIES, "max_retry_time": 5.0})
        ids, _ = record_timed(client)
        assert client.flush(10.0) is True
        first, second = server.requests()
        assert second.at - first.at >= 0.95
        assert second.ids() == first.ids() == list(ids)
        assert lost_log.messages() == []
        assert client.stats().sent == EVENTS


def test_partially_rejecting_endpoint_logs_each_reject_with_its_reason(make_client, lost_log):
    def reject_odd(index, request):
        return fake_servers.reject(
            [
                (i, f"field n={e['n']} is odd\nINFO forged line")
                for i, e in enumerate(request.events)
                if e["n"] % 2
            ]
        )

    with fake_servers.FakeCollector(reject_odd) as server:
        client = make_client(server.url, **FAST_RETRIES)
        ids, slowest = record_timed(client)
        assert slowest < RECORD_TIME_LIMIT
        assert client.flush(10.0) is False  # some were rejected
        odd = {i: f for i, f in ids.items() if f["n"] % 2}
        assert_each_logged_whole(lost_log, odd)
        assert set(lost_log.documents()) == set(odd)
        for record in lost_log.snapshot():
            n = record.getMessage().split('"n":', 1)[1].split(",", 1)[0]
            assert f"rejected by server: field n={n} is odd INFO forged line" in record.getMessage()
        stats = client.stats()
        assert (stats.sent, stats.rejected, stats.dropped) == (EVENTS - len(odd), len(odd), 0)
        assert len(server.requests()) == 1  # a 2xx is final: nothing resent


def test_whole_batch_4xx_rejects_every_event_without_retrying(make_client, lost_log):
    def unauthorized(index, request):
        return fake_servers.status(401, (), b'{"error":"unauthorized","detail":"unknown key"}')

    with fake_servers.FakeCollector(unauthorized) as server:
        client = make_client(server.url, **FAST_RETRIES)
        ids, _ = record_timed(client)
        client.flush(10.0)
        assert_each_logged_whole(lost_log, ids)
        assert "HTTP 401 unauthorized: unknown key" in lost_log.messages()[0]
        assert len(server.requests()) == 1
        assert client.stats().rejected == EVENTS


def test_413_splits_the_batch_until_it_fits(make_client, lost_log):
    def small_bodies_only(index, request):
        if len(request.events) > 4:
            return fake_servers.status(413, (), b'{"error":"too many events"}')
        return fake_servers.accept()

    with fake_servers.FakeCollector(small_bodies_only) as server:
        client = make_client(server.url, **FAST_RETRIES)
        ids, _ = record_timed(client, count=20)
        assert client.flush(10.0) is True
        delivered = [e["_id"] for r in server.requests() if len(r.events) <= 4 for e in r.events]
        assert sorted(delivered) == sorted(ids)
        assert lost_log.messages() == []


def test_fail_over_to_the_next_endpoint(make_client, fake, lost_log):
    client = make_client([fake_servers.unreachable_url(), fake.url], **FAST_RETRIES)
    ids, _ = record_timed(client)
    assert client.flush(10.0) is True
    assert [e["_id"] for e in fake.events()] == list(ids)
    assert lost_log.messages() == []


def test_close_against_a_stalled_endpoint_ends_by_its_deadline_and_logs_the_rest(
    make_client, lost_log
):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.stall()) as server:
        client = make_client(server.url, **{**FAST_RETRIES, "io_timeout": 30, "max_retry_time": 60})
        ids, _ = record_timed(client)
        started = time.monotonic()
        assert client.close(0.5) is False
        assert time.monotonic() - started < 0.5 + 0.5 + 0.3  # deadline + grace + slack
        assert_each_logged_whole(lost_log, ids, timeout=0)
        assert all("shutdown deadline" in m for m in lost_log.messages())
