"""Loki push over plain HTTP: what Loki clients cannot be made to send
(broken bodies, wrong compression, foreign content types) and the exact
answers, in Loki's plain-text shapes. The real clients' suites are
test_loki_python.py and test_loki_winston.py."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from loki_support import PUSH, gzipped, json_push, of_type, push

from shipper_support import APP, ShipperCollector

TEXT = "text/plain; charset=utf-8"
NS = "1765108800123456789"


def protobuf_push(labels: str, line: str, seconds: int, nanos: int) -> bytes:
    """A PushRequest with one entry, encoded by hand (field numbers from
    Loki's push.proto), NOT snappy-compressed: what a client that forgot
    the compression would send."""

    def varint(value: int) -> bytes:
        out = bytearray()
        while value >= 0x80:
            out.append(value & 0x7F | 0x80)
            value >>= 7
        out.append(value)
        return bytes(out)

    def field(tag: int, payload: bytes) -> bytes:
        return varint(tag << 3 | 2) + varint(len(payload)) + payload

    timestamp = varint(1 << 3) + varint(seconds) + varint(2 << 3) + varint(nanos)
    entry = field(1, timestamp) + field(2, line.encode())
    stream = field(1, labels.encode()) + field(2, entry)
    return field(1, stream)


def test_a_json_push_is_stored_with_exact_nanoseconds_and_answered_204(
    collector: ShipperCollector,
) -> None:
    body = json_push("http-json", [(NS, "hello"), ("1765108800999999999", "world")], env="prod")
    assert push(collector, body)[:2] == (204, "")
    docs = of_type(collector, "http-json", 2)
    assert [(d["line"], d["ts"], d["ts_ns"]) for d in docs] == [
        ("hello", 1765108800123, NS),
        ("world", 1765108800999, "1765108800999999999"),
    ]
    assert all(d["labels"] == {"job": "http-json", "env": "prod"} for d in docs)
    assert all(d["app"] == APP for d in docs)


def test_a_gzipped_json_push_is_accepted(collector: ShipperCollector) -> None:
    body = gzipped(json_push("http-gzip", [(NS, "compressed")]))
    status, text, _ = push(collector, body, headers={"Content-Encoding": "gzip"})
    assert (status, text) == (204, "")
    assert [d["line"] for d in of_type(collector, "http-gzip", 1)] == ["compressed"]


def test_a_push_without_entries_is_204_and_stores_nothing(collector: ShipperCollector) -> None:
    assert push(collector, b'{"streams":[]}')[:2] == (204, "")
    assert collector.wait_documents(1, timeout=1) == []


def test_entries_the_validation_refuses_give_400_naming_them_and_the_rest_is_stored(
    collector: ShipperCollector,
) -> None:
    # Year 11,476 is past what a Helios `ts` may hold (RFC 3339 years).
    body = json_push("http-partial", [(NS, "kept"), ("300000000000000000000", "too late")])
    status, text, headers = push(collector, body)
    assert status == 400
    assert headers["Content-Type"] == TEXT
    assert text == (
        "entry 1 ignored, reason: 'ts must be an RFC 3339 string or integer epoch milliseconds'\n"
        "total ignored: 1 out of 2; the other entries were stored\n"
    )
    assert [d["line"] for d in of_type(collector, "http-partial", 1)] == ["kept"]


def test_malformed_json_is_400_and_stores_nothing(collector: ShipperCollector) -> None:
    for body, message in [
        (b'{"streams":[{"stream":{"job":"x"},"values":[["1","a"]', "EOF while parsing"),
        (b'{"streams":[{"stream":{"job":"x"},"values":[["soon","a"]]}]}', "in nanoseconds"),
        (b'{"streams":[{"stream":{},"values":[["1","a"]]}]}', "at least one label pair"),
    ]:
        status, text, headers = push(collector, body)
        assert status == 400, text
        assert message in text
        assert headers["Content-Type"] == TEXT
    assert collector.wait_documents(1, timeout=1) == []


def test_protobuf_that_is_not_snappy_compressed_is_400(collector: ShipperCollector) -> None:
    body = protobuf_push('{job="http-proto"}', "uncompressed", 1765108800, 123456789)
    status, text, _ = push(collector, body, content_type="application/x-protobuf")
    assert status == 400
    assert "not snappy-compressed" in text
    assert collector.wait_documents(1, timeout=1) == []


def test_a_body_that_is_not_what_its_content_encoding_says_is_400(
    collector: ShipperCollector,
) -> None:
    body = json_push("http-bad-gzip", [(NS, "not gzip")])
    status, text, _ = push(collector, body, headers={"Content-Encoding": "gzip"})
    assert status == 400
    assert "content encoding" in text
    assert collector.wait_documents(1, timeout=1) == []


def test_other_content_types_are_415(collector: ShipperCollector) -> None:
    status, text, _ = push(collector, b"hello", content_type="text/plain")
    assert status == 415
    assert "application/json or application/x-protobuf" in text


def test_a_body_over_max_body_bytes_is_413(tmp_path) -> None:
    running = ShipperCollector.with_keys(tmp_path, extra_args=["--max-body-bytes", "4096"]).start()
    try:
        status, text, _ = push(running, json_push("http-big", [(NS, "x" * 8192)]))
        assert status == 413
        assert text.startswith("too large: ")
        assert running.wait_documents(1, timeout=1) == []
    finally:
        running.close()


def test_unknown_and_missing_keys_are_401(collector: ShipperCollector) -> None:
    body = json_push("http-auth", [(NS, "x")])
    assert push(collector, body, key="wrong")[:2] == (401, "unauthorized: unknown credentials\n")
    assert push(collector, body, key=None)[:2] == (401, "unauthorized: no credentials\n")
    assert collector.wait_documents(1, timeout=1) == []


def test_the_loki_type_flag_picks_another_label(tmp_path) -> None:
    running = ShipperCollector.with_keys(
        tmp_path, extra_args=["--loki-type", "$labels.app|$metadata.kind|other"]
    ).start()
    try:
        body = {
            "streams": [
                {"stream": {"job": "j", "app": "web"}, "values": [[NS, "a"]]},
                {"stream": {"job": "j"}, "values": [[NS, "b", {"kind": "audit"}], [NS, "c"]]},
            ]
        }
        assert push(running, json.dumps(body).encode())[:2] == (204, "")
        docs = running.wait_documents(3)
        assert sorted((d["type"], d["line"]) for d in docs) == [
            ("audit", "b"),
            ("other", "c"),
            ("web", "a"),
        ]
    finally:
        running.close()


def test_get_on_the_push_path_is_405(collector: ShipperCollector) -> None:
    try:
        urllib.request.urlopen(collector.url + PUSH, timeout=10)
        raise AssertionError("GET was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 405
        assert error.headers["Allow"] == "POST"
