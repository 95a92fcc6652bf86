"""Against a real ``helios-collector`` process: what the client sends is
stored exactly once, through crashes and lost acknowledgements."""

from __future__ import annotations

import datetime
import decimal
import threading
import time
import uuid

import fake_servers

#: Retries patient enough to outlast a collector restart.
PATIENT_RETRIES = {
    "initial_backoff": 0.02,
    "max_backoff": 0.3,
    "max_retry_time": 30.0,
    "max_attempts": 1000,
    "connect_timeout": 1.0,
    "io_timeout": 5.0,
    "max_batch_delay": 0.02,
}


def assert_stored_exactly(collector, ids):
    stored = collector.wait_stored(ids)
    missing = set(ids) - set(stored)
    assert not missing, f"{len(missing)} of {len(ids)} events never stored"
    assert set(stored) == set(ids), "the store holds events nobody recorded"
    assert max(stored.values()) == 1


def test_many_threads_record_and_each_event_is_stored_exactly_once(
    make_client, collector, lost_log
):
    client = make_client(collector.url, **PATIENT_RETRIES)
    threads_count, per_thread = 8, 1000
    ids_by_thread = [[] for _ in range(threads_count)]
    start = threading.Barrier(threads_count)

    def work(slot):
        start.wait()
        for n in range(per_thread):
            ids_by_thread[slot].append(client.record("load", {"thread": slot, "n": n}))

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [event_id for ids in ids_by_thread for event_id in ids]
    assert len(set(ids)) == threads_count * per_thread
    assert client.flush(30.0)
    assert_stored_exactly(collector, ids)
    stats = client.stats()
    assert (stats.recorded, stats.sent, stats.dropped, stats.retried) == (len(ids), len(ids), 0, 0)
    # Sent once: the collector acknowledged each event one time.
    assert collector.metrics()["helios_events_accepted_total"] == len(ids)
    assert lost_log.messages() == []


def test_collector_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
    make_client, collector, lost_log
):
    client = make_client(collector.url, **{**PATIENT_RETRIES, "max_batch_events": 50})
    ids = []
    done = threading.Event()

    def produce():
        for n in range(3000):
            ids.append(client.record("stream", {"n": n}))
            if n % 10 == 0:
                time.sleep(0.005)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.5)
    collector.kill()
    killed_at = len(ids)
    time.sleep(0.5)
    collector.start()
    producer.join()
    assert 0 < killed_at < 3000, "the kill must land mid-stream"
    assert client.flush(30.0)
    assert_stored_exactly(collector, ids)
    stats = client.stats()
    assert (stats.sent, stats.dropped) == (3000, 0)
    assert stats.retried >= 1
    assert lost_log.messages() == []


def test_response_cut_after_the_commit_loses_and_duplicates_nothing(
    make_client, collector, lost_log
):
    with fake_servers.CuttingProxy(collector.port, cut=2) as proxy:
        # One batch of exactly 100: sent when the 100th event is queued.
        settings = {**PATIENT_RETRIES, "max_batch_events": 100, "max_batch_delay": 30.0}
        client = make_client(proxy.url, **settings)
        ids = [client.record("cut", {"n": n}) for n in range(100)]
        assert client.flush(30.0)
        assert proxy.cut_done == 2
    assert_stored_exactly(collector, ids)
    # The cut answers were commits: the collector took the batch three
    # times, and the store kept it once.
    assert collector.metrics()["helios_events_accepted_total"] == 300
    stats = client.stats()
    assert (stats.sent, stats.dropped, stats.retried) == (100, 0, 2)
    assert lost_log.messages() == []


def test_converted_values_are_stored_as_the_rules_say(make_client, collector):
    client = make_client(collector.url, **PATIENT_RETRIES)
    event_id = client.record(
        "convert",
        {
            "when": datetime.datetime(2024, 2, 29, 12, 0, tzinfo=datetime.timezone.utc),
            "price": decimal.Decimal("12.50"),
            "request": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "tags": {"b", "a"},
            "raw": b"\x00\x01",
            "ratio": float("nan"),
        },
    )
    assert client.flush(10.0)
    collector.wait_stored([event_id])
    doc = collector.stored_documents()[event_id]
    assert doc["when"] == "2024-02-29T12:00:00Z"
    assert doc["price"] == 12.5
    assert doc["request"] == "12345678-1234-5678-1234-567812345678"
    assert doc["tags"] == ["a", "b"]
    assert doc["raw"] == "AAE="
    assert doc["ratio"] is None


def test_an_event_the_collector_rejects_is_logged_with_its_reason(make_client, collector, lost_log):
    client = make_client(collector.url, **PATIENT_RETRIES)
    good = client.record("ok", {"n": 1})
    bad = client.record("bad", {"ts": "yesterday-ish"})
    assert client.flush(10.0) is False
    (message,) = lost_log.messages()
    assert "rejected by server" in message and "ts" in message
    assert lost_log.documents()[bad]["ts"] == "yesterday-ish"
    assert_stored_exactly(collector, [good])
