"""``helios.LogHandler``: an app's ``logging`` records become events."""

from __future__ import annotations

import datetime
import logging
import uuid

import pytest

import helios

from helpers import FAST_RETRIES


@pytest.fixture
def app_logger(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    handler = helios.LogHandler(client)
    logger = logging.getLogger("shop.checkout")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, client
    logger.removeHandler(handler)
    logger.propagate = True


def test_a_log_record_becomes_an_event_with_message_level_and_logger(app_logger, fake):
    logger, client = app_logger
    logger.warning("order %s is late", 42)
    assert client.flush(5.0)
    (event,) = fake.events()
    assert event["type"] == "log"
    assert (event["message"], event["level"], event["logger"]) == (
        "order 42 is late",
        "WARNING",
        "shop.checkout",
    )
    assert event["function"] == "test_a_log_record_becomes_an_event_with_message_level_and_logger"
    assert event["file"].endswith("test_log_handler.py") and event["line"] > 0
    assert event["ts"].endswith("Z") and event["process"] > 0


def test_extra_fields_become_event_fields_converted_by_the_rules(app_logger, fake):
    logger, client = app_logger
    request_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    logger.info(
        "paid",
        extra={"order": 42, "request_id": request_id, "at": datetime.date(2024, 1, 2)},
    )
    assert client.flush(5.0)
    (event,) = fake.events()
    assert (event["order"], event["request_id"], event["at"]) == (42, str(request_id), "2024-01-02")


def test_exception_text_is_recorded(app_logger, fake):
    logger, client = app_logger
    try:
        raise KeyError("sku-9")
    except KeyError:
        logger.exception("lookup failed")
    assert client.flush(5.0)
    (event,) = fake.events()
    assert event["level"] == "ERROR"
    assert "Traceback (most recent call last)" in event["exception"]
    assert "KeyError: 'sku-9'" in event["exception"]


def test_the_event_type_is_configurable(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    logger = logging.getLogger("custom-type")
    logger.addHandler(helios.LogHandler(client, type="app.log"))
    logger.propagate = False
    logger.error("boom")
    assert client.flush(5.0)
    assert fake.events()[0]["type"] == "app.log"


def test_bad_format_arguments_are_recorded_not_raised(app_logger, fake):
    logger, client = app_logger
    logger.error("needs two %s %s", "only-one")
    assert client.flush(5.0)
    assert "formatting failed" in fake.events()[0]["message"]


def test_helios_own_log_records_are_never_fed_back(make_client, fake):
    client = make_client(fake.url, **FAST_RETRIES)
    handler = helios.LogHandler(client)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        client.record("")  # logs on helios.lost, which must not loop back
        logging.getLogger("helios.client").warning("internal")
        logging.getLogger("elsewhere").warning("kept")
        assert client.flush(5.0)
    finally:
        root.removeHandler(handler)
    assert [e["message"] for e in fake.events()] == ["kept"]
