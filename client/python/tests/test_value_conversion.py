"""The value-conversion rules of ``record()`` (helios/_encode.py), one test
per rule, plus the shape of the document around the fields."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import os
import time
import uuid
from collections import OrderedDict, deque
from pathlib import PurePosixPath
from types import MappingProxyType

import pytest

from helios import _encode

ID = "0123456789abcdef01234567"
UNIX_MS = 1_709_210_096_789  # 2024-02-29T12:34:56.789Z


def encoded(fields, event_type="t", defaults=()) -> dict:
    return json.loads(_encode.encode_event(ID, UNIX_MS, event_type, fields, defaults))


def value_of(value):
    """How ``value`` is written as a field."""
    return encoded({"v": value})["v"]


# ---- the rules ----------------------------------------------------------


def test_aware_datetime_is_rfc3339_in_utc_with_z():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert value_of(datetime.datetime(2024, 2, 29, 14, 34, 56, 789000, plus_two)) == (
        "2024-02-29T12:34:56.789000Z"
    )
    assert value_of(datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)) == (
        "2024-01-02T03:04:05Z"
    )


@pytest.fixture
def india_local_time(monkeypatch):
    # POSIX TZ: "IST-05:30" is UTC+05:30 (the sign is inverted).
    monkeypatch.setenv("TZ", "IST-05:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_naive_datetime_is_taken_as_local_time(india_local_time):
    assert value_of(datetime.datetime(2024, 1, 1, 12, 0)) == "2024-01-01T06:30:00Z"


def test_date_is_iso_calendar_date():
    assert value_of(datetime.date(2024, 2, 29)) == "2024-02-29"


def test_time_of_day_is_iso_time():
    assert value_of(datetime.time(12, 30, 5)) == "12:30:05"


def test_timedelta_is_total_seconds():
    assert value_of(datetime.timedelta(minutes=1, milliseconds=500)) == 60.5


def test_decimal_is_a_number_exact_when_integral():
    assert value_of(decimal.Decimal("129.95")) == 129.95
    big = decimal.Decimal("123456789012345678901234567890")
    assert value_of(big) == 123456789012345678901234567890


def test_non_finite_decimal_is_null():
    assert value_of(decimal.Decimal("NaN")) is None
    assert value_of(decimal.Decimal("-Infinity")) is None


def test_non_finite_float_is_null():
    assert encoded({"a": float("nan"), "b": float("inf"), "c": [float("-inf"), 1.5]}) == {
        "_id": ID,
        "type": "t",
        "ts": "2024-02-29T12:34:56.789Z",
        "a": None,
        "b": None,
        "c": [None, 1.5],
    }


def test_uuid_is_its_canonical_string():
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert value_of(value) == "12345678-1234-5678-1234-567812345678"


def test_bytes_are_padded_base64():
    assert value_of(b"\x00\xffhi") == "AP9oaQ=="
    assert value_of(bytearray(b"hello")) == "aGVsbG8="
    assert value_of(memoryview(b"hello")) == "aGVsbG8="


def test_sets_are_sorted_lists():
    assert value_of({3, 1, 2}) == [1, 2, 3]
    assert value_of(frozenset({"b", "a"})) == ["a", "b"]


def test_unsortable_sets_are_lists_in_iteration_order():
    items = value_of({1, "a"})
    assert sorted(items, key=str) == [1, "a"]


def test_enum_is_its_value():
    class Color(enum.Enum):
        RED = "red"
        PAIR = (1, 2)

    class Level(enum.IntEnum):
        HIGH = 3

    assert value_of(Color.RED) == "red"
    assert value_of(Color.PAIR) == [1, 2]
    assert value_of(Level.HIGH) == 3


def test_dataclass_is_an_object_of_its_fields_converted_in_turn():
    @dataclasses.dataclass
    class Line:
        sku: str
        price: decimal.Decimal
        added: datetime.date

    assert value_of(Line("A-1", decimal.Decimal("9.5"), datetime.date(2024, 1, 2))) == {
        "sku": "A-1",
        "price": 9.5,
        "added": "2024-01-02",
    }


def test_path_is_its_text():
    assert value_of(PurePosixPath("/var/log/app.log")) == "/var/log/app.log"


def test_other_mappings_are_objects():
    assert value_of(MappingProxyType({"a": 1})) == {"a": 1}
    assert value_of(OrderedDict([("b", 2)])) == {"b": 2}


def test_other_sequences_are_lists():
    assert value_of(deque([1, 2])) == [1, 2]
    assert value_of(range(3)) == [0, 1, 2]
    assert value_of((1, "a")) == [1, "a"]


def test_any_other_object_is_its_str():
    class Money:
        def __str__(self):
            return "EUR 12.50"

    assert value_of(Money()) == "EUR 12.50"
    assert value_of(1 + 2j) == "(1+2j)"


def test_primitive_keys_are_written_the_json_way():
    assert encoded({1: "a", 2.5: "b", None: "c", False: "d"})["1"] == "a"
    doc = encoded({1: "a", 2.5: "b", None: "c", False: "d"})
    assert (doc["2.5"], doc["null"], doc["false"]) == ("b", "c", "d")


def test_other_keys_are_converted_by_the_rules_or_stringified():
    key = uuid.UUID("12345678-1234-5678-1234-567812345678")
    doc = encoded({"m": {key: 1, (1, 2): 2, datetime.date(2024, 1, 2): 3}})
    assert doc["m"] == {str(key): 1, "(1, 2)": 2, "2024-01-02": 3}


def test_lone_surrogates_become_replacement_characters():
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    assert value_of(name) == "caf\ufffd.txt"


def test_non_ascii_text_is_kept_as_utf8():
    raw = _encode.encode_event(ID, UNIX_MS, "t", {"v": "Zürich €"}, ())
    assert "Zürich €".encode() in raw


def test_circular_reference_cannot_be_encoded():
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(_encode.EncodeError, match="circular"):
        _encode.encode_event(ID, UNIX_MS, "t", {"v": loop}, ())


def test_nesting_deeper_than_the_limit_cannot_be_encoded():
    deep: list = []
    for _ in range(_encode.MAX_NESTING_DEPTH + 10):
        deep = [deep]
    with pytest.raises(_encode.EncodeError, match="nested deeper"):
        _encode.encode_event(ID, UNIX_MS, "t", {"v": deep, "x": float("nan")}, ())


def test_a_str_that_raises_cannot_be_encoded():
    class Broken:
        def __str__(self):
            raise RuntimeError("no text for you")

    with pytest.raises(RuntimeError):
        _encode.encode_event(ID, UNIX_MS, "t", {"v": Broken()}, ())


def test_fields_must_be_a_mapping_or_a_dataclass():
    with pytest.raises(_encode.EncodeError, match="mapping"):
        _encode.encode_event(ID, UNIX_MS, "t", [1, 2], ())


def test_event_type_must_be_a_non_empty_string():
    with pytest.raises(_encode.EncodeError, match="empty"):
        _encode.encode_event(ID, UNIX_MS, "", {}, ())
    with pytest.raises(_encode.EncodeError, match="non-empty string"):
        _encode.encode_event(ID, UNIX_MS, 42, {}, ())


# ---- the document around the fields ------------------------------------


def test_document_starts_with_id_type_ts_then_defaults_then_fields():
    defaults = _encode.default_fields_json({"host": "web-1", "app": "shop"})
    raw = _encode.encode_event(ID, UNIX_MS, "login", {"user": "ann"}, defaults)
    assert raw == (
        b'{"_id":"0123456789abcdef01234567","type":"login","ts":"2024-02-29T12:34:56.789Z",'
        b'"host":"web-1","app":"shop","user":"ann"}'
    )


def test_fields_override_ts_host_and_app_but_not_id_type_or_recv():
    defaults = _encode.default_fields_json({"host": "web-1", "app": "shop"})
    fields = {"_id": "x", "type": "y", "recv": 1, "ts": 5, "host": "h", "app": "a"}
    raw = _encode.encode_event(ID, UNIX_MS, "login", fields, defaults)
    assert json.loads(raw) == {"_id": ID, "type": "login", "ts": 5, "host": "h", "app": "a"}
    assert raw.count(b'"ts"') == 1


def test_a_datetime_ts_field_becomes_rfc3339_the_collector_accepts():
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=datetime.timezone.utc)
    assert encoded({"ts": when})["ts"] == "2024-01-02T03:04:05.006000Z"


def test_none_fields_mean_no_fields():
    assert encoded(None) == {"_id": ID, "type": "t", "ts": "2024-02-29T12:34:56.789Z"}


def test_default_ts_has_millisecond_precision_in_utc():
    assert _encode.rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"
    assert _encode.rfc3339_ms(1_735_689_599_999) == "2024-12-31T23:59:59.999Z"


def test_type_and_keys_are_json_escaped():
    doc = encoded({'k"\n': "v"}, event_type='a"b\n')
    assert doc["type"] == 'a"b\n'
    assert doc['k"\n'] == "v"


def test_object_ids_are_24_lowercase_hex_with_the_seconds_first():
    from helios import _object_id

    minted = {_object_id.mint_hex(0x01020304) for _ in range(1000)}
    assert len(minted) == 1000
    for value in minted:
        assert len(value) == 24 and value == value.lower()
        assert value.startswith("01020304")
        int(value, 16)


def test_any_os_pathlike_is_its_path_text():
    # PathLike objects from os are accepted too (os.PathLike protocol).
    class Custom(os.PathLike):
        def __fspath__(self):
            return "/tmp/x"

    assert value_of(Custom()) == "/tmp/x"
