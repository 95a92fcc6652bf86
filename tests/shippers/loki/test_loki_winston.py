"""winston-loki (pinned in node/package-lock.json, with the native
``snappy`` it uses for protobuf): the Winston transport sends snappy
block-compressed protobuf by default and JSON with ``json: true``, in
batches (sent every ``interval`` seconds and on ``close()``) or one push per
record. A failed batched push is put back and sent again with the next
batch or on ``close()``; every failed push reaches ``onConnectionError``
with the status."""

from __future__ import annotations

import json
from pathlib import Path

from loki_support import PUSH_JS, of_type, start_winston, winston_env

from shipper_support import APP, ShipperCollector, StoreLock, run_node

#: 2025-12-07T12:00:00.000Z in epoch ms; record i is i*1001 ms later (a
#: millisecond part that changes), since Winston times are milliseconds.
BASE_MS = 1765108800000


def records(job: str, count: int, **extra: object) -> list[dict]:
    return [
        {
            "level": "warn" if i % 3 == 0 else "info",
            "message": f'{job} record {i} "quoted"\nnext line é',
            "timestamp": BASE_MS + i * 1001,
            "labels": {"job": job},
            "order": i,
            **extra,
        }
        for i in range(count)
    ]


def check_arrived(docs: list[dict], sent: list[dict], metadata: bool) -> None:
    """Each record once, with its line, labels and exact time."""
    assert len(docs) == len(sent)
    by_line = {d["line"]: d for d in docs}
    assert len(by_line) == len(sent), "each record once"
    for record in sent:
        # winston-loki appends the record's other fields as JSON to the line.
        rest = {"level": record["level"], "order": record["order"]}
        line = f"{record['message']} {json.dumps(rest, separators=(',', ':'))}"
        doc = by_line[line]
        assert doc["ts"] == record["timestamp"]
        assert doc["ts_ns"] == f"{record['timestamp']}000000"
        assert doc["labels"] == {"level": record["level"], "job": record["labels"]["job"]}
        assert doc["app"] == APP
        if metadata:
            # JSON pushes carry the record's fields as structured metadata.
            assert doc["metadata"] == {k: str(v) for k, v in rest.items()}
        else:
            assert "metadata" not in doc


def test_batched_snappy_protobuf_records_arrive_once_with_exact_times(
    collector: ShipperCollector,
) -> None:
    sent = records("winston-proto", 30)
    result = run_node(PUSH_JS, winston_env(collector, sent, {"interval": 60}))
    assert result == {"errors": [], "closed": True}
    check_arrived(of_type(collector, "winston-proto", 30), sent, metadata=False)


def test_unbatched_json_records_arrive_once_with_metadata(collector: ShipperCollector) -> None:
    sent = records("winston-json", 12)
    options = {"json": True, "batching": False}
    result = run_node(PUSH_JS, winston_env(collector, sent, options))
    assert result == {"errors": [], "closed": True}
    check_arrived(of_type(collector, "winston-json", 12), sent, metadata=True)


def test_an_unknown_key_is_401_to_the_client_and_stores_nothing(
    collector: ShipperCollector,
) -> None:
    sent = records("winston-badkey", 3)
    result = run_node(PUSH_JS, winston_env(collector, sent, {"interval": 60}, key="nope"))
    # close() sends the batch once; the failure reaches onConnectionError.
    assert [e["statusCode"] for e in result["errors"]] == [401]
    assert "unauthorized: unknown credentials" in result["errors"][0]["message"]
    assert collector.wait_documents(1, timeout=1) == []


def test_a_label_value_with_a_quote_is_a_malformed_selector_and_400(
    collector: ShipperCollector,
) -> None:
    """winston-loki writes protobuf selectors without escaping values, so
    a quote in a label makes a selector Loki (and Helios) cannot parse."""
    sent = records("winston-quote", 2)
    sent[0]["labels"] = {"job": 'say "hi"'}
    result = run_node(PUSH_JS, winston_env(collector, sent, {"interval": 60}))
    assert [e["statusCode"] for e in result["errors"]] == [400]
    assert "error parsing labels" in result["errors"][0]["message"]
    # One push carried both streams: refused whole, nothing stored.
    assert collector.wait_documents(1, timeout=1) == []


def test_a_batch_decompressing_past_max_decoded_bytes_is_413(tmp_path: Path) -> None:
    running = ShipperCollector.with_keys(
        tmp_path,
        extra_args=["--max-body-bytes", "262144", "--max-decoded-bytes", "1048576"],
    ).start()
    try:
        # 2 MiB of one letter: snappy makes it ~100 KiB on the wire, under
        # --max-body-bytes; the decoder refuses it before inflating.
        env = winston_env(running, records("winston-big", 1), {"interval": 60})
        result = run_node(PUSH_JS, {**env, "LOKI_MESSAGE_BYTES": str(2 << 20)})
        assert [e["statusCode"] for e in result["errors"]] == [413]
        assert "over the limit of 1048576" in result["errors"][0]["message"]
        assert running.wait_documents(1, timeout=1) == []
    finally:
        running.close()


def test_a_batch_refused_under_backpressure_is_sent_again_and_nothing_is_lost(
    busy_collector: tuple[ShipperCollector, StoreLock],
) -> None:
    collector, lock = busy_collector
    sent = records("winston-busy", 25)
    # A short interval: the first batch goes out while the collector is busy.
    process = start_winston(winston_env(collector, sent, {"interval": 0.2}))
    try:
        assert process.stdout is not None and process.stdin is not None
        first = json.loads(process.stdout.readline())
        assert first["event"] == "error"
        assert [e["statusCode"] for e in first["errors"]] == [503]
        assert "busy: " in first["errors"][0]["message"]
        assert of_type(collector, "winston-busy", 1, timeout=0.5) == []
        # Lift the backpressure, let the journal drain, then close(): the
        # transport sends the batch it put back.
        lock.release()
        collector.wait_documents(10_000, timeout=3)
        process.stdin.write("go\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["closed"] is True
    # Only the one 503: the resend succeeded.
    assert [e["statusCode"] for e in last["errors"]] == [503]
    check_arrived(of_type(collector, "winston-busy", 25), sent, metadata=False)


def test_a_partly_refused_batch_is_400_naming_the_entry_and_the_rest_stored_once(
    collector: ShipperCollector,
) -> None:
    """As Loki does, a push whose entries fail validation stores the others
    and answers 400 naming the refused ones. winston-loki puts a failed
    batch back and sends it again unless ``clearOnError`` is set (then the
    stored entries would be stored twice, against Loki too), so this is the
    setting to use with a collector that refuses entries one by one."""
    sent = records("winston-partial", 2)
    # Year ~97,000: past what a Helios `ts` may hold (RFC 3339 years).
    sent[1]["timestamp"] = 3_000_000_000_000_000
    env = winston_env(collector, sent, {"interval": 0.2, "clearOnError": True})
    process = start_winston(env)
    try:
        assert process.stdout is not None and process.stdin is not None
        first = json.loads(process.stdout.readline())
        assert [e["statusCode"] for e in first["errors"]] == [400]
        assert "entry 1 ignored, reason: 'ts must be" in first["errors"][0]["message"]
        assert "total ignored: 1 out of 2" in first["errors"][0]["message"]
        process.stdin.write("go\n")
        process.stdin.flush()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert [e["statusCode"] for e in json.loads(out.strip().splitlines()[-1])["errors"]] == [400]
    check_arrived(of_type(collector, "winston-partial", 1), sent[:1], metadata=False)
