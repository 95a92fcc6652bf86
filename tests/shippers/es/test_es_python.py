"""The official Elasticsearch Python client (``elasticsearch`` 8.x) against
a real collector: its product check, ``helpers.bulk`` and
``helpers.streaming_bulk`` with and without ``_id``s, retries, per-item
errors, whole-request errors and backpressure, read back from the store."""

from __future__ import annotations

import gzip
import logging
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import (
    ApiError,
    AuthenticationException,
    BadRequestError,
    Elasticsearch,
    helpers,
)

from shipper_support import APP, INGEST_KEY, ShipperCollector, by_type

BASE = datetime(2025, 12, 7, 11, 15, 0, 123000, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def docs_by_message(docs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for doc in docs:
        out.setdefault(doc.get("message", ""), []).append(doc)
    return out


def test_info_and_ping_pass_the_product_check(es: Elasticsearch) -> None:
    info = es.info()
    assert info["version"]["number"] == "8.17.0"
    assert info["tagline"] == "You Know, for Search"
    assert info.meta.headers["x-elastic-product"] == "Elasticsearch"
    assert es.ping() is True


def test_a_bad_key_fails_info_and_ping(collector: ShipperCollector) -> None:
    client = Elasticsearch(collector.url, api_key="not-a-key", max_retries=0)
    with pytest.raises(AuthenticationException) as raised:
        client.info()
    assert raised.value.meta.status == 401
    assert raised.value.body["error"]["type"] == "security_exception"
    assert client.ping() is False


def test_helpers_bulk_stores_every_document_once_with_its_fields_and_time(
    collector: ShipperCollector, es: Elasticsearch
) -> None:
    actions = []
    for i in range(60):
        source = {
            "@timestamp": (BASE + timedelta(seconds=i)).isoformat(),
            "message": f"python bulk {i}",
            "level": "info" if i % 2 else "warn",
            "http": {"status": 200 + i, "path": f"/p/{i}"},
            "tags": ["a", str(i)],
        }
        action = {"_index": "app-logs", "_source": source}
        if i % 3 == 0:
            action["_id"] = f"doc-{i}"
        if i % 3 == 1:
            action.update(_op_type="create", _id=f"doc-{i}")
        actions.append(action)
    ok, errors = helpers.bulk(es, actions, chunk_size=25)
    assert (ok, errors) == (60, [])

    docs = collector.wait_documents(60)
    assert len(docs) == 60
    messages = docs_by_message(docs)
    for i in range(60):
        [doc] = messages[f"python bulk {i}"]
        assert doc["type"] == "app-logs"
        assert doc["es_index"] == "app-logs"
        assert doc["app"] == APP
        assert doc["ts"] == epoch_ms(BASE + timedelta(seconds=i))
        assert doc["@timestamp"] == (BASE + timedelta(seconds=i)).isoformat()
        assert doc["level"] == ("info" if i % 2 else "warn")
        assert doc["http"] == {"status": 200 + i, "path": f"/p/{i}"}
        assert doc["tags"] == ["a", str(i)]
        if i % 3 == 2:
            assert "es_id" not in doc
        else:
            assert doc["es_id"] == f"doc-{i}"
    assert len({doc["_id"] for doc in docs}) == 60


def test_a_retried_bulk_with_ids_is_stored_once(
    collector: ShipperCollector, es: Elasticsearch
) -> None:
    actions = [
        {"_index": "retry", "_id": f"r-{i}", "_source": {"message": f"retry {i}"}}
        for i in range(20)
    ]
    assert helpers.bulk(es, actions) == (20, [])
    # The client resends the very same bulk (a lost answer): every item is
    # "created" again, and the store keeps each document once.
    assert helpers.bulk(es, actions) == (20, [])
    docs = collector.wait_documents(40, timeout=3)
    assert len(docs) == 20
    assert sorted(doc["message"] for doc in docs) == sorted(f"retry {i}" for i in range(20))
    assert {doc["es_id"] for doc in docs} == {f"r-{i}" for i in range(20)}


def test_streaming_bulk_reports_each_item_and_refuses_update_and_delete(
    collector: ShipperCollector,
) -> None:
    # gzip request bodies, as http_compress does.
    client = Elasticsearch(collector.url, api_key=INGEST_KEY, http_compress=True, max_retries=0)
    actions = [
        {"_index": "stream", "_source": {"message": "first"}},
        {"_op_type": "delete", "_index": "stream", "_id": "x"},
        {"_op_type": "update", "_index": "stream", "_id": "y", "doc": {"a": 1}},
        {"_op_type": "create", "_index": "stream", "_id": "z", "_source": {"message": "last"}},
    ]
    results = list(helpers.streaming_bulk(client, actions, raise_on_error=False))
    assert [ok for ok, _ in results] == [True, False, False, True]
    (_, first), (_, delete), (_, update), (_, last) = results
    assert first["index"]["status"] == 201
    assert first["index"]["result"] == "created"
    assert last["create"]["_id"] == "z"
    for item, action in ((delete, "delete"), (update, "update")):
        assert item[action]["status"] == 400
        assert item[action]["error"]["type"] == "illegal_argument_exception"
        assert "update/delete are not supported" in item[action]["error"]["reason"]
    docs = collector.wait_documents(2)
    assert sorted(doc["message"] for doc in docs) == ["first", "last"]


def test_refused_items_raise_bulk_index_error_and_the_rest_is_stored(
    collector: ShipperCollector, es: Elasticsearch
) -> None:
    actions = [
        {"_index": "mixed", "_source": {"message": "good"}},
        # Pre-serialized source with a duplicate member: the collector's
        # validation refuses the event, the item answers 400.
        {"_index": "mixed", "_source": '{"message":"dup","message":"dup2"}'},
        # No index anywhere: refused by the decoder.
        {"_source": {"message": "no index"}},
    ]
    with pytest.raises(helpers.BulkIndexError) as raised:
        helpers.bulk(es, actions)
    errors = raised.value.errors
    assert [e["index"]["status"] for e in errors] == [400, 400]
    assert errors[0]["index"]["error"]["type"] == "mapper_parsing_exception"
    assert errors[1]["index"]["error"]["type"] == "action_request_validation_exception"
    docs = collector.wait_documents(1)
    assert [doc["message"] for doc in docs] == ["good"]


def test_the_type_rule_flag_picks_a_source_field(tmp_path) -> None:
    collector = ShipperCollector.with_keys(
        tmp_path, extra_args=["--es-type", "$event.dataset|$es_index|elasticsearch"]
    ).start()
    try:
        client = Elasticsearch(collector.url, api_key=INGEST_KEY, max_retries=0)
        actions = [
            {"_index": "web", "_source": {"event": {"dataset": "nginx.access"}, "message": "a"}},
            {"_index": "web", "_source": {"message": "b"}},
        ]
        assert helpers.bulk(client, actions) == (2, [])
        types = by_type(collector.wait_documents(2))
        assert [d["message"] for d in types["nginx.access"]] == ["a"]
        assert [d["message"] for d in types["web"]] == ["b"]
    finally:
        collector.close()


def test_a_bad_key_raises_authentication_error_and_stores_nothing(
    collector: ShipperCollector,
) -> None:
    client = Elasticsearch(collector.url, api_key="wrong-key", max_retries=0)
    with pytest.raises(AuthenticationException) as raised:
        helpers.bulk(client, [{"_index": "x", "_source": {"message": "nope"}}])
    assert raised.value.meta.status == 401
    assert raised.value.body["error"]["type"] == "security_exception"
    assert raised.value.meta.headers["x-elastic-product"] == "Elasticsearch"
    assert collector.wait_documents(1, timeout=1) == []


def test_a_malformed_action_line_is_a_400_and_stores_nothing(
    collector: ShipperCollector, es: Elasticsearch
) -> None:
    body = '{"index":{"_index":"x"}}\n{"message":"ok"}\nnot json at all\n{"message":"x"}\n'
    with pytest.raises(BadRequestError) as raised:
        es.bulk(operations=body)
    assert raised.value.body["error"]["type"] == "x_content_parse_exception"
    with pytest.raises(BadRequestError) as raised:
        es.bulk(operations='{"upsert":{"_index":"x"}}\n{}\n')
    assert raised.value.body["error"]["type"] == "illegal_argument_exception"
    assert collector.wait_documents(1, timeout=1) == []


def test_an_unsupported_content_type_is_elasticsearchs_406(
    collector: ShipperCollector, es: Elasticsearch
) -> None:
    with pytest.raises(ApiError) as raised:
        es.perform_request(
            "POST",
            "/_bulk",
            headers={"content-type": "text/plain", "accept": "application/json"},
            body='{"index":{"_index":"x"}}\n{}\n',
        )
    assert raised.value.meta.status == 406
    assert raised.value.body == {
        "error": "Content-Type header [text/plain] is not supported",
        "status": 406,
    }
    assert collector.wait_documents(1, timeout=1) == []


def test_a_body_that_is_not_what_its_content_encoding_says_is_refused(
    collector: ShipperCollector, es: Elasticsearch
) -> None:
    plain = '{"index":{"_index":"x"}}\n{"message":"not gzip"}\n'
    with pytest.raises(BadRequestError) as raised:
        es.options(headers={"content-encoding": "gzip"}).bulk(operations=plain)
    assert raised.value.body["error"]["type"] == "parse_exception"
    with pytest.raises(ApiError) as raised:
        es.options(headers={"content-encoding": "br"}).bulk(operations=gzip.compress(b"x"))
    assert raised.value.meta.status == 400
    assert collector.wait_documents(1, timeout=1) == []


def test_an_oversized_bulk_is_a_413_and_stores_nothing(tmp_path) -> None:
    collector = ShipperCollector.with_keys(tmp_path, extra_args=["--max-body-bytes", "16384"])
    collector.start()
    try:
        client = Elasticsearch(collector.url, api_key=INGEST_KEY, max_retries=0)
        actions = [{"_index": "big", "_source": {"message": "x" * 1000}} for _ in range(40)]
        with pytest.raises(ApiError) as raised:
            helpers.bulk(client, actions, chunk_size=40)
        assert raised.value.meta.status == 413
        assert raised.value.body["error"]["type"] == "content_too_long_exception"
        assert collector.wait_documents(1, timeout=1) == []
    finally:
        collector.close()


def test_backpressure_answers_429_which_helpers_bulk_retries_losing_nothing(
    tmp_path, store_lock, caplog
) -> None:
    collector = ShipperCollector.with_keys(
        tmp_path, extra_args=["--journal-budget-bytes", "65536"]
    ).start()
    try:
        client = Elasticsearch(collector.url, api_key=INGEST_KEY, max_retries=0)
        lock = store_lock(collector)
        # The flusher is stalled: once the journal holds 64 KiB, the
        # collector answers 429 until the lock goes.
        timer = lock.release_after(3.0)
        actions = [
            {
                "_index": "pressure",
                "_id": f"p-{i}" if i % 2 else None,
                "_source": {"message": f"pressure {i}", "pad": "x" * 400},
            }
            for i in range(400)
        ]
        for action in actions:
            if action["_id"] is None:
                del action["_id"]
        caplog.set_level(logging.INFO, logger="elastic_transport.transport")
        ok, errors = helpers.bulk(
            client, actions, chunk_size=40, max_retries=10, initial_backoff=0.5, max_backoff=2
        )
        timer.join()
        assert (ok, errors) == (400, [])
        statuses = [r.getMessage() for r in caplog.records if "status:429" in r.getMessage()]
        assert statuses, "the collector never answered 429: no backpressure was exercised"
        docs = collector.wait_documents(400)
        assert len(docs) == 400
        assert sorted(doc["message"] for doc in docs) == sorted(f"pressure {i}" for i in range(400))
    finally:
        collector.close()
