"""splunk-handler (Python logging → HEC ``/services/collector/event``)
against a real collector: every record once with its message, metadata and
exact time; 503 code 9 under backpressure retried by the handler with
nothing lost; a bad token refused with 403 code 4 and nothing stored."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from decimal import ROUND_FLOOR, Decimal

from hec_support import answers_by_status, post, wait_for_type
from splunk_handler import SplunkHandler

from shipper_support import APP, INGEST_KEY

#: A time whose float is not exact (…5008999…): ts must come from the digits.
BASE_TIME = 1433188255.5009


def make_handler(collector, token=INGEST_KEY, **options) -> SplunkHandler:
    handler = SplunkHandler(
        host="127.0.0.1",
        port=collector.port,
        token=token,
        index="main",
        hostname="handler-host",
        source="pytest",
        sourcetype=options.pop("sourcetype", "py:handler"),
        protocol="http",
        verify=False,
        allow_overrides=True,
        debug=True,
        **options,
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def make_logger(handler: SplunkHandler) -> logging.Logger:
    logger = logging.getLogger(f"hec-test-{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def expected_ms(seconds: float) -> int:
    """What ts must be: the JSON text json.dumps writes, floored to ms."""
    return int((Decimal(repr(seconds)) * 1000).to_integral_value(rounding=ROUND_FLOOR))


def test_every_record_arrives_once_with_message_metadata_and_time(collector, capsys):
    handler = make_handler(collector, flush_interval=0.2, retry_count=0)
    logger = make_logger(handler)
    count = 60
    for i in range(count):
        logger.info('record %d ünïcode "quoted"', i, extra={"_time": BASE_TIME + i})
    handler.force_flush()
    handler.close()

    out = capsys.readouterr().out
    assert "Payload sent successfully" in out
    assert "Exception in Splunk logging handler" not in out

    docs = wait_for_type(collector, "py:handler", count)
    messages = Counter(d["event"] for d in docs)
    assert messages == Counter(f'record {i} ünïcode "quoted"' for i in range(count))
    assert len({d["_id"] for d in docs}) == count
    for doc in docs:
        i = int(doc["event"].split()[1])
        assert doc["time"] == BASE_TIME + i  # as sent: a JSON number
        assert doc["ts"] == expected_ms(BASE_TIME + i)
        assert doc["ts"] == 1433188255500 + i * 1000
        assert doc["host"] == "handler-host"
        assert doc["source"] == "pytest"
        assert doc["sourcetype"] == "py:handler"
        assert doc["index"] == "main"
        assert doc["app"] == APP
    assert len(collector.documents()) == count


def test_busy_answers_are_retried_by_the_handler_and_nothing_is_lost(busy_collector, capsys):
    collector, lock = busy_collector
    accepted_before = len(collector.documents())
    busy_before = answers_by_status(collector).get(503, 0)
    # flush_interval=0: each record is one blocking POST that urllib3
    # retries on 503, honouring Retry-After: 1.
    handler = make_handler(
        collector, flush_interval=0, retry_count=8, retry_backoff=0.2, sourcetype="py:retried"
    )
    logger = make_logger(handler)
    sender = threading.Thread(
        target=lambda: [
            logger.info("retried %d", i, extra={"_time": 1765108800 + i}) for i in range(3)
        ]
    )
    sender.start()
    # Long enough for the first record to be refused at least twice.
    deadline = time.monotonic() + 20
    while answers_by_status(collector).get(503, 0) < busy_before + 2:
        assert time.monotonic() < deadline, "the handler never met a 503"
        time.sleep(0.1)
    assert len([d for d in collector.documents() if d["type"] == "py:retried"]) == 0
    lock.release()
    sender.join(timeout=60)
    assert not sender.is_alive()
    handler.close()

    out = capsys.readouterr().out
    assert "Exception in Splunk logging handler" not in out
    docs = wait_for_type(collector, "py:retried", 3)
    assert sorted(d["event"] for d in docs) == [f"retried {i}" for i in range(3)]
    assert sorted(d["ts"] for d in docs) == [1765108800000 + i * 1000 for i in range(3)]
    # Everything acknowledged before the backpressure is there too, once.
    fillers = [d for d in collector.documents() if d["type"] == "filler"]
    assert len(fillers) == len({d["fields"]["i"] for d in fillers})
    assert len(collector.documents()) >= accepted_before + 3


def test_a_bad_token_is_refused_with_code_4_and_nothing_is_stored(collector, capsys):
    handler = make_handler(
        collector, token="not-a-key", flush_interval=0, retry_count=0, sourcetype="py:badtoken"
    )
    logger = make_logger(handler)
    logger.info("must not be stored")
    handler.close()
    out = capsys.readouterr().out
    assert "403 Client Error" in out
    # What the handler does not show: Splunk's body.
    status, answer, _ = post(collector, "/services/collector/event", b'{"event":"x"}', "not-a-key")
    assert (status, answer) == (403, {"text": "Invalid token", "code": 4})
    # A good request after, so the store has caught up when we look.
    status, _, _ = post(collector, "/services/collector/event", b'{"event":"ok","sourcetype":"ok"}')
    assert status == 200
    assert len(wait_for_type(collector, "ok", 1)) == 1
    assert [d["type"] for d in collector.documents()] == ["ok"]
