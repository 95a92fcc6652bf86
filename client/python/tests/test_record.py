"""``record()``: returns the id at once, never raises, and logs whole every
event it cannot queue."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
import time

import pytest

import helios

import fake_servers
from helpers import FAST_RETRIES, expected_document, without_ts

HEX_ID = re.compile(r"^[0-9a-f]{24}$")


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_record_returns_the_events_id_as_24_lowercase_hex(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    event_id = client.record("order.placed", {"order": 42})
    assert HEX_ID.match(event_id)
    assert client.flush(5.0)
    assert fake.events()[0]["_id"] == event_id


def test_record_stamps_ts_in_the_calling_thread(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    before_ms = time.time_ns() // 1_000_000
    client.record("tick")
    after_ms = time.time_ns() // 1_000_000
    assert client.flush(5.0)
    ts = fake.events()[0]["ts"]
    stamped = time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
    stamped_ms = int(time.mktime(stamped) - time.timezone) * 1000 + int(ts[20:23])
    assert before_ms <= stamped_ms <= after_ms


def test_keyword_fields_are_merged_over_the_mapping(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    event_id = client.record("login", {"user": "ann", "n": 1}, n=2, event_type="kw")
    assert client.flush(5.0)
    assert without_ts(fake.events()[0]) == expected_document(
        event_id, "login", {"user": "ann", "n": 2, "event_type": "kw"}
    )


def test_app_and_host_defaults_are_stamped(make_client, fake):
    client = make_client(fake.url, app="shop", **FAST_RETRIES)
    client.record("x")
    assert client.flush(5.0)
    event = fake.events()[0]
    assert (event["app"], event["host"]) == ("shop", "test-host")


def test_bad_type_is_logged_not_raised(make_client, fake, lost_log):
    client = make_client(fake.url, **FAST_RETRIES)
    empty_id = client.record("", {"a": 1})
    number_id = client.record(42, {"a": 2})  # type: ignore[arg-type]
    docs = lost_log.documents()
    assert docs[empty_id]["type"] == ""
    assert docs[number_id]["type"] == "42"
    assert "{'a': 2}" in docs[number_id]["fields_repr"]
    assert all("invalid event" in m for m in lost_log.messages())
    assert client.stats().dropped == 2


def test_unencodable_fields_are_logged_whole_as_repr(make_client, fake, lost_log):
    class Broken:
        def __str__(self):
            raise RuntimeError("no text")

        def __repr__(self):
            return "<Broken thing>"

    loop: dict = {"name": "loop"}
    loop["self"] = loop
    client = make_client(fake.url, **FAST_RETRIES)
    broken_id = client.record("t", {"order": 7, "thing": Broken()})
    loop_id = client.record("t", loop)
    listed_id = client.record("t", [1, 2])  # type: ignore[arg-type]
    docs = lost_log.documents()
    assert docs[broken_id]["fields_repr"] == "{'order': 7, 'thing': <Broken thing>}"
    assert docs[loop_id]["fields_repr"] == "{'name': 'loop', 'self': {...}}"
    assert docs[listed_id]["fields_repr"] == "[1, 2]"
    assert client.stats().dropped == 3


def test_a_repr_that_raises_is_still_logged(make_client, fake, lost_log):
    class Hopeless:
        def __str__(self):
            raise ValueError("no str")

        def __repr__(self):
            raise ValueError("no repr")

    client = make_client(fake.url, **FAST_RETRIES)
    event_id = client.record("t", {"v": Hopeless()})
    assert "repr() raised ValueError" in lost_log.documents()[event_id]["fields_repr"]


def test_full_queue_drops_the_new_event_and_logs_it_whole(make_client, lost_log):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.stall()) as stalling:
        client = make_client(stalling.url, queue_capacity=5, **{**FAST_RETRIES, "io_timeout": 5})
        in_flight = client.record("t", {"n": -1})
        wait_until(lambda: stalling.requests())  # the sender is stuck in that request
        ids = [client.record("t", {"n": n}) for n in range(8)]
        stats = client.stats()
        assert (stats.dropped_queue_full, stats.queued) == (3, 6)  # 5 waiting, 1 in flight
        docs = lost_log.documents()
        assert set(docs) == set(ids[5:])
        for n in (5, 6, 7):
            assert without_ts(docs[ids[n]]) == expected_document(ids[n], "t", {"n": n})
        assert "queue full" in lost_log.messages()[0]
        assert in_flight not in docs


def test_the_last_tenth_of_the_queue_is_kept_for_high_priority(make_client, lost_log):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.stall()) as stalling:
        client = make_client(stalling.url, queue_capacity=10, **{**FAST_RETRIES, "io_timeout": 5})
        client.record("t", {"n": -1})
        wait_until(lambda: stalling.requests())  # the sender is stuck in that request
        # Low and normal (marked, unmarked, or any other value) fill 90%.
        priorities = ["low", "normal", None, "HIGH"] * 3
        normal = [
            client.record("t", {"n": n} if p is None else {"n": n, "priority": p})
            for n, p in enumerate(priorities)
        ]
        stats = client.stats()
        assert (stats.dropped_queue_full, stats.queued) == (3, 10)  # 9 waiting, 1 in flight
        docs = lost_log.documents()
        assert set(docs) == set(normal[9:])
        assert docs[normal[11]]["priority"] == "HIGH", "logged whole"
        assert all("queue 90% full" in m for m in lost_log.messages())
        # High (as a keyword or in a nested value's place: only the top
        # level counts) takes the reserve, then the queue is full.
        nested = client.record("t", {"x": {"priority": "high"}})
        high = [client.record("t", priority="high", n=n) for n in range(2)]
        stats = client.stats()
        assert (stats.dropped_queue_full, stats.queued) == (5, 11)
        docs = lost_log.documents()
        assert nested in docs and high[0] not in docs and high[1] in docs
        assert "queue full, new event dropped" in lost_log.messages()[-1]


def test_full_queue_by_bytes_drops_the_new_event(make_client, lost_log):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.stall()) as stalling:
        client = make_client(
            stalling.url,
            queue_capacity_bytes=2000,
            max_event_bytes=1500,
            **{**FAST_RETRIES, "io_timeout": 5},
        )
        client.record("t", {"n": -1})
        wait_until(lambda: stalling.requests())  # the sender is stuck in that request
        kept = client.record("t", {"pad": "x" * 1200})
        dropped = client.record("t", {"pad": "y" * 1200})
        assert client.stats().dropped_queue_full == 1
        assert set(lost_log.documents()) == {dropped}
        assert kept != dropped


def test_event_larger_than_max_event_bytes_is_dropped_and_logged(make_client, fake, lost_log):
    client = make_client(fake.url, max_event_bytes=1000, **FAST_RETRIES)
    event_id = client.record("big", {"pad": "x" * 2000})
    assert client.stats().dropped == 1
    assert lost_log.documents()[event_id]["pad"] == "x" * 2000
    assert "larger than max_event_bytes=1000" in lost_log.messages()[0]


def test_logged_document_over_the_cap_is_truncated_with_its_size(make_client, fake, lost_log):
    client = make_client(
        fake.url, max_event_bytes=1000, max_logged_document_bytes=300, **FAST_RETRIES
    )
    event_id = client.record("big", {"pad": "é" * 1000})
    (message,) = lost_log.messages()
    record = lost_log.snapshot()[0]
    size = record.helios_document_bytes
    assert f"document is {size} bytes, TRUNCATED to its first" in message
    assert message.split(": ", 1)[1].startswith('{"_id":"' + event_id)
    logged = message.split("bytes: ", 1)[1]
    assert len(logged.encode()) <= 300
    assert record.helios_event_id == event_id


def test_record_after_close_is_logged_not_raised(make_client, fake, lost_log):
    client = make_client(fake.url, **FAST_RETRIES)
    assert client.close(5.0)
    event_id = client.record("late", {"n": 1})
    assert "recorded after client close" in lost_log.messages()[0]
    assert lost_log.documents()[event_id]["n"] == 1
    assert client.close(5.0)  # idempotent


def test_lost_records_are_warning_for_rejects_and_error_for_delivery_failures(
    make_client, lost_log
):
    def reply(index, request):
        return fake_servers.reject([(0, "bad field")])

    with fake_servers.FakeCollector(reply) as rejecting:
        client = make_client(rejecting.url, **FAST_RETRIES)
        client.record("t", {"n": 1})
        client.flush(5.0)
    client = make_client(fake_servers.unreachable_url(), **FAST_RETRIES)
    client.record("t", {"n": 2})
    client.flush(5.0)
    levels = [record.levelno for record in lost_log.snapshot()]
    assert levels == [logging.WARNING, logging.ERROR]


def test_stats_account_for_every_recorded_event(make_client, fake):
    def reply(index, request):
        return fake_servers.reject([(1, "no")])

    fake.reply = reply
    client = make_client(fake.url, max_batch_events=10, **FAST_RETRIES)
    for n in range(20):
        client.record("t", {"n": n})
    client.record("")  # invalid
    assert not client.flush(5.0)  # a reject happened while it waited
    stats = client.stats()
    assert stats == helios.Stats(
        recorded=21,
        sent=18,
        rejected=2,
        dropped=1,
        dropped_queue_full=0,
        retried=0,
        batches_sent=2,
        queued=0,
    )


def test_flush_returns_false_when_the_timeout_passes(make_client):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.stall()) as stalling:
        client = make_client(stalling.url, **{**FAST_RETRIES, "io_timeout": 5.0})
        client.record("t")
        started = time.monotonic()
        assert client.flush(0.2) is False
        assert time.monotonic() - started < 1.0


def test_flush_with_nothing_recorded_is_true_at_once(make_client):
    client = make_client(fake_servers.unreachable_url(), **FAST_RETRIES)
    assert client.flush(0.0) is True


def test_calls_with_nonsense_timeouts_do_not_raise(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    client.record("t")
    assert client.flush("soon") in (True, False)  # type: ignore[arg-type]
    assert client.close(None) in (True, False)  # type: ignore[arg-type]


def test_record_from_the_event_loop_does_not_block_it(make_client):
    with fake_servers.FakeCollector(lambda i, r: fake_servers.stall()) as stalling:
        client = make_client(stalling.url, max_batch_events=5, **FAST_RETRIES)

        async def main():
            gaps = []

            async def ticker():
                last = time.monotonic()
                for _ in range(50):
                    await asyncio.sleep(0.002)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            async def recorder():
                for n in range(200):
                    client.record("t", {"n": n})
                    await asyncio.sleep(0)

            await asyncio.gather(ticker(), recorder())
            return gaps

        gaps = asyncio.run(main())
        # A blocked loop would show a gap of io_timeout (0.5 s) or more.
        assert max(gaps) < 0.25


def test_constructor_refuses_invalid_settings_by_name():
    with pytest.raises(ValueError, match="only http:// and https://"):
        helios.Client("ftp://example.invalid")
    with pytest.raises(ValueError, match="api_key"):
        helios.Client("http://127.0.0.1:1", api_key="k\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="queue_capacity"):
        helios.Client("http://127.0.0.1:1", queue_capacity=0)
    with pytest.raises(ValueError, match="max_batch_delay"):
        helios.Client("http://127.0.0.1:1", max_batch_delay=0)
    with pytest.raises(ValueError, match="at least one endpoint"):
        helios.Client([])


def test_stats_is_a_value_with_named_counters(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    stats = client.stats()
    assert stats.recorded == 0 and stats.queued == 0
    assert json.loads(json.dumps(stats.__dict__))["sent"] == 0


def test_a_dropped_handle_still_delivers_what_it_queued_and_stops_its_sender(fake):
    client = helios.Client(fake.url, host="test-host", **FAST_RETRIES)
    ids = [client.record("t", {"n": n}) for n in range(5)]
    sender = client._core._thread
    del client
    gc.collect()
    sender.join(5.0)
    assert not sender.is_alive()
    assert [e["_id"] for e in fake.events()] == ids
