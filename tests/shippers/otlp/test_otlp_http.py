"""OTLP/HTTP logs requests that no exporter sends on purpose (malformed
bodies, wrong compression, other content types, no key), sent with urllib
to a real collector: each gets its status and a ``google.rpc.Status`` in
the request's encoding, and stores nothing; a partial success names the
refused record and stores the rest."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from otlp_support import PROTOBUF, json_logs, post, rpc_status, text_record

from shipper_support import ShipperCollector


def assert_nothing_stored(collector: ShipperCollector) -> None:
    assert collector.wait_documents(1, timeout=1) == []


def test_a_malformed_protobuf_body_is_400_invalid_argument(collector: ShipperCollector) -> None:
    # Field 1 (resource_logs), length 100, then 2 bytes: truncated.
    reply = post(collector, b"\x0a\x64\x01\x02", content_type=PROTOBUF)
    assert reply.status == 400
    assert reply.content_type == PROTOBUF
    code, message = rpc_status(reply)
    assert code == 3
    assert "ExportLogsServiceRequest" in message
    assert_nothing_stored(collector)


def test_a_malformed_json_body_is_400_in_the_json_status_shape(
    collector: ShipperCollector,
) -> None:
    reply = post(collector, b'{"resourceLogs": [{"scopeLogs": [')
    assert reply.status == 400
    code, message = rpc_status(reply)
    assert code == 3
    assert "OTLP/JSON" in message
    assert_nothing_stored(collector)


def test_a_gzip_header_on_a_body_that_is_not_gzip_is_415(collector: ShipperCollector) -> None:
    body = json_logs([text_record("not compressed")])
    reply = post(collector, body, content_encoding="gzip")
    assert reply.status == 415
    assert rpc_status(reply)[0] == 3
    request = logs_service_pb2.ExportLogsServiceRequest()
    reply = post(
        collector,
        request.SerializeToString() + b"x",
        content_type=PROTOBUF,
        content_encoding="gzip",
    )
    assert reply.status == 415
    assert reply.content_type == PROTOBUF
    assert status_pb2.Status.FromString(reply.body).code == 3
    assert_nothing_stored(collector)


def test_an_encoding_the_collector_does_not_decode_is_415(collector: ShipperCollector) -> None:
    reply = post(collector, json_logs([text_record("x")]), content_encoding="br")
    assert reply.status == 415
    assert rpc_status(reply)[0] == 3
    assert_nothing_stored(collector)


def test_another_content_type_is_415_answered_in_json(collector: ShipperCollector) -> None:
    reply = post(collector, b"hello", content_type="text/plain")
    assert reply.status == 415
    code, message = rpc_status(reply)
    assert code == 12
    assert "application/x-protobuf" in message
    assert_nothing_stored(collector)


def test_no_key_is_401_unauthenticated(collector: ShipperCollector) -> None:
    reply = post(collector, json_logs([text_record("x")]), key=None)
    assert reply.status == 401
    assert rpc_status(reply) == (16, "missing credentials")
    reply = post(collector, b"", content_type=PROTOBUF, key=None)
    assert reply.status == 401
    assert status_pb2.Status.FromString(reply.body).code == 16
    assert_nothing_stored(collector)


def test_get_is_405_with_allow_post(collector: ShipperCollector) -> None:
    reply = post(collector, b"", method="GET")
    assert reply.status == 405
    assert reply.headers.get("Allow") == "POST"
    assert rpc_status(reply)[0] == 12


def test_an_empty_request_is_a_success_that_stores_nothing(collector: ShipperCollector) -> None:
    reply = post(collector, b"{}")
    assert (reply.status, reply.body) == (200, b"{}")
    reply = post(collector, b"", content_type=PROTOBUF)
    assert (reply.status, reply.content_type, reply.body) == (200, PROTOBUF, b"")
    assert_nothing_stored(collector)


def nested(levels: int) -> common_pb2.AnyValue:
    value = common_pb2.AnyValue(string_value="bottom")
    for _ in range(levels):
        pair = common_pb2.KeyValue(key="k", value=value)
        value = common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[pair]))
    return value


def test_a_record_the_collector_refuses_is_a_partial_success(tmp_path: Path) -> None:
    # Events deeper than --max-json-depth are refused one by one.
    running = ShipperCollector.with_keys(tmp_path, extra_args=["--max-json-depth", "8"]).start()
    try:
        deep = json.loads(json_format.MessageToJson(nested(10)))
        records = [text_record("kept json 0"), {"body": deep}, text_record("kept json 2")]
        reply = post(running, gzip.compress(json_logs(records)), content_encoding="gzip")
        assert (reply.status, reply.content_type) == (200, "application/json")
        partial = json.loads(reply.body)["partialSuccess"]
        assert partial["rejectedLogRecords"] == "1"
        assert partial["errorMessage"].startswith("1 of 3 log records rejected: record 1: ")

        request = logs_service_pb2.ExportLogsServiceRequest(
            resource_logs=[
                logs_pb2.ResourceLogs(
                    scope_logs=[
                        logs_pb2.ScopeLogs(
                            log_records=[
                                logs_pb2.LogRecord(body=nested(10)),
                                logs_pb2.LogRecord(
                                    body=common_pb2.AnyValue(string_value="kept protobuf 1")
                                ),
                            ]
                        )
                    ]
                )
            ]
        )
        reply = post(running, request.SerializeToString(), content_type=PROTOBUF)
        assert (reply.status, reply.content_type) == (200, PROTOBUF)
        response = logs_service_pb2.ExportLogsServiceResponse.FromString(reply.body)
        assert response.partial_success.rejected_log_records == 1
        assert response.partial_success.error_message.startswith(
            "1 of 2 log records rejected: record 0: "
        )

        docs = running.wait_documents(3)
        assert sorted(d["body"] for d in docs) == ["kept json 0", "kept json 2", "kept protobuf 1"]
    finally:
        running.close()
