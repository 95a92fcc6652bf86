"""The retry policy's arithmetic and the reading of the collector's answers."""

from __future__ import annotations

import email.utils
import logging
import time

import helios
from helios import _http, _sender

import fake_servers
from helpers import FAST_RETRIES


def test_backoff_is_full_jitter_under_a_doubling_capped_ceiling(make_client):
    settings = {**FAST_RETRIES, "initial_backoff": 0.01, "max_backoff": 0.05}
    client = make_client(fake_servers.unreachable_url(), **settings)
    delivery = _sender.Delivery(client._core, helios.__version__)
    for attempt, ceiling in [(1, 0.01), (2, 0.02), (3, 0.04), (4, 0.05), (60, 0.05)]:
        waits = [delivery._backoff(attempt) for _ in range(300)]
        assert all(0 <= w <= ceiling for w in waits), attempt
        assert any(w < ceiling / 2 for w in waits), "not jittered"
        assert any(w > ceiling / 2 for w in waits), "not spread up to the ceiling"


def test_retry_after_is_read_as_seconds_or_an_http_date_and_clamped():
    assert _http.parse_retry_after("3") == 3.0
    in_two_seconds = email.utils.formatdate(time.time() + 2.5, usegmt=True)
    assert 1.0 <= _http.parse_retry_after(in_two_seconds) <= 2.5
    assert _http.parse_retry_after("86400") == helios.MAX_RETRY_AFTER
    assert _http.parse_retry_after("soon") is None
    assert _http.parse_retry_after(None) is None


def test_verdict_lists_each_rejected_index_once_with_its_reason():
    body = (
        b'{"accepted":1,"rejected":[{"index":2,"error":"bad ts"},'
        b'{"index":0,"error":"no type"},{"index":2,"error":"dup"}]}'
    )
    assert _sender.parse_verdict(body, 3) == ([(2, "bad ts"), (0, "no type")], None)


def test_verdict_ignores_out_of_range_indices_and_says_so():
    rejected, problem = _sender.parse_verdict(
        b'{"accepted":2,"rejected":[{"index":9,"error":"x"}]}', 2
    )
    assert rejected == [] and "out of range" in problem


def test_a_2xx_with_an_unreadable_body_counts_as_sent_and_is_reported(make_client, caplog):
    def odd_answer(index, request):
        return fake_servers.status(200, (), b"\xff\x00 not json")

    with fake_servers.FakeCollector(odd_answer) as server:
        client = make_client(server.url, **FAST_RETRIES)
        client.record("t")
        with caplog.at_level(logging.WARNING, logger=helios.CLIENT_LOGGER_NAME):
            assert client.flush(5.0)
        assert client.stats().sent == 1
        assert "answered 2xx with an unexpected body" in caplog.text


def test_server_text_cannot_forge_log_lines():
    assert _sender.quote_error(b"<html>\r\n  <p>busy</p>\nERROR fake line") == (
        "<html> <p>busy</p> ERROR fake line"
    )
    assert _sender.quote_error(b'{"error":"bad\\nINFO forged","detail":"x"}') == (
        "bad INFO forged: x"
    )
    assert len(_sender.quote_error(b"a" * 10_000)) <= 256
