"""Forked children and exiting interpreters: their events arrive, nothing is
sent twice, nothing hangs."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import fake_servers
from test_real_collector import PATIENT_RETRIES, assert_stored_exactly

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


def run_in_child(work) -> dict:
    """Forks; the child runs ``work()`` and sends its JSON result back,
    then leaves with ``os._exit`` (never returning into pytest)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            result = work()
            os.write(write_end, json.dumps(result).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        output = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    return json.loads(output)


def test_forked_childs_events_arrive_and_the_parents_queue_is_not_sent_twice(
    make_client, collector
):
    # A long batch delay keeps the parent's events queued across the fork.
    client = make_client(collector.url, **{**PATIENT_RETRIES, "max_batch_delay": 30.0})
    parent_ids = [client.record("parent", {"n": n}) for n in range(100)]
    assert client.stats().queued == 100

    def child():
        ids = [client.record("child", {"n": n}) for n in range(100)]
        delivered = client.flush(20.0)
        return {"ids": ids, "delivered": delivered, "stats": client.stats().__dict__}

    result = run_in_child(child)
    assert result["delivered"] is True
    assert result["stats"]["recorded"] == 100 and result["stats"]["sent"] == 100
    assert client.flush(20.0)
    assert_stored_exactly(collector, parent_ids + result["ids"])
    assert collector.metrics()["helios_events_accepted_total"] == 200
    # The child minted ids with its own random bytes, so it can never
    # collide with the parent.
    assert {i[8:18] for i in result["ids"]}.isdisjoint({i[8:18] for i in parent_ids})


def test_fork_while_other_threads_record_does_not_deadlock_the_child(make_client, fake):
    client = make_client(fake.url, **PATIENT_RETRIES)
    stop = threading.Event()

    def hammer():
        for _ in range(100_000):  # bounded, in case stop is never set
            if stop.is_set():
                return
            client.record("busy")

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(5):
            result = run_in_child(lambda: {"ok": client.record("child") and client.flush(10.0)})
            assert result["ok"] is True
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert client.flush(20.0)  # and the parent still delivers all it kept


def _record_in_multiprocessing_child(client) -> None:
    for n in range(50):
        client.record("mp-child", {"n": n})
    # No flush, no close: multiprocessing ends the child with os._exit().


def test_multiprocessing_child_that_never_closes_still_delivers(make_client, collector):
    client = make_client(collector.url, **{**PATIENT_RETRIES, "max_batch_delay": 30.0})
    client.record("parent")
    process = multiprocessing.get_context("fork").Process(
        target=_record_in_multiprocessing_child, args=(client,)
    )
    process.start()
    process.join(30)
    assert process.exitcode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        docs = collector.stored_documents() if collector.stored_ids() else {}
        if sum(1 for d in docs.values() if d["type"] == "mp-child") == 50:
            break
        time.sleep(0.05)
    assert sorted(d["n"] for d in docs.values() if d["type"] == "mp-child") == list(range(50))
    assert client.flush(10.0)  # the parent's own sender is unaffected


def _record_in_spawned_child(url: str) -> None:
    import helios

    client = helios.Client(url, max_batch_delay=30.0)
    for n in range(20):
        client.record("spawned", {"n": n})
    # No flush, no close.


def test_forkserver_child_that_makes_its_own_client_and_never_closes_still_delivers(collector):
    # A forkserver child ends with os._exit() too, after multiprocessing's
    # finalizers; the client registers one when it is made in such a child.
    process = multiprocessing.get_context("forkserver").Process(
        target=_record_in_spawned_child, args=(collector.url,)
    )
    process.start()
    process.join(60)
    assert process.exitcode == 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        docs = collector.stored_documents() if collector.stored_ids() else {}
        if sum(1 for d in docs.values() if d["type"] == "spawned") == 20:
            break
        time.sleep(0.05)
    assert sorted(d["n"] for d in docs.values() if d["type"] == "spawned") == list(range(20))


def run_python(script: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_exiting_interpreter_delivers_what_is_queued(collector):
    done = run_python(
        f"""
        import json, helios
        client = helios.Client({collector.url!r}, max_batch_delay=30.0, shutdown_timeout=10.0)
        ids = [client.record("exit", {{"n": n}}) for n in range(500)]
        print(json.dumps(ids))
        # no flush, no close: the interpreter's exit must deliver them
        """
    )
    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout)
    assert_stored_exactly(collector, ids)


def test_exiting_interpreter_with_nowhere_to_send_logs_every_event_within_the_timeout():
    started = time.monotonic()
    done = run_python(
        f"""
        import helios
        client = helios.Client({fake_servers.unreachable_url()!r}, shutdown_timeout=1.0,
                               max_retry_time=60.0, initial_backoff=0.05, max_backoff=0.2)
        for n in range(5):
            print(client.record("doomed", {{"n": n}}))
        """
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 1.0 + 0.5 + 5.0  # timeout + grace + interpreter start and exit
    ids = done.stdout.split()
    lost_lines = [line for line in done.stderr.splitlines() if "helios event lost" in line]
    assert len(lost_lines) == 5
    for event_id, line in zip(ids, lost_lines):
        doc = json.loads(line[line.index('{"_id":"') :])
        assert doc["_id"] == event_id and doc["type"] == "doomed"
