//! The MongoDB sink against MockupDB (MongoDB's wire-protocol test server,
//! started by each test): what the driver sends, and how each server answer
//! is classified. A real server runs the collector-level suite in
//! ingest/tests/mongodb_real.rs when HELIOS_TEST_MONGODB_URI is set.

mod common;
#[path = "support/mockupdb.rs"]
mod mockupdb;

use common::{event, event_of_app, events, id, BASE_MS, RECV_LAG_MS};
use helios_store::mongo::{MongoLayout, MongoOptions, MongoSink};
use helios_store::{Envelope, EventDoc, Sink, SinkError, TsRaw, WriteOutcome};
use mockupdb::MockMongo;
use serde_json::{json, Value};

fn sink(mock: &MockMongo, options: MongoOptions) -> MongoSink {
    MongoSink::open(&mock.uri(), options).unwrap()
}

fn standard(mock: &MockMongo) -> MongoSink {
    sink(mock, MongoOptions::default())
}

fn typed_event(n: u32, members: &str) -> EventDoc {
    let text = format!(r#"{{"type":"typed",{members}}}"#);
    let envelope = Envelope {
        id: id(n),
        ts_ms: BASE_MS + i64::from(n),
        recv_ms: BASE_MS + i64::from(n) + RECV_LAG_MS,
        app: Some("shop"),
        ts_raw: TsRaw::None,
    };
    EventDoc::from_event_json(&text, &envelope).unwrap()
}

fn ids_of(batch: &[EventDoc]) -> Vec<String> {
    batch.iter().map(|e| e.id.to_hex()).collect()
}

#[test]
fn the_first_batch_creates_the_design_indexes_then_inserts_unordered() {
    let mock = MockMongo::start();
    let mut sink = standard(&mock);
    let batch = events(0..3);
    assert_eq!(
        sink.write_batch(&batch).unwrap(),
        WriteOutcome {
            inserted: 3,
            duplicates: 0
        }
    );
    let create = mock.commands("createIndexes");
    assert_eq!(create.len(), 1, "one createIndexes");
    let body = &create[0]["body"];
    assert_eq!(body["createIndexes"], "events");
    assert_eq!(body["$db"], "helios");
    let keys: Vec<&Value> = body["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["key"])
        .collect();
    assert_eq!(
        keys[0],
        &json!({"type": {"$numberInt": "1"}, "ts": {"$numberInt": "-1"}, "_id": {"$numberInt": "-1"}})
    );
    assert_eq!(
        keys[1],
        &json!({"ts": {"$numberInt": "-1"}, "_id": {"$numberInt": "-1"}})
    );
    assert_eq!(
        keys[2],
        &json!({"recv": {"$numberInt": "1"}, "_id": {"$numberInt": "1"}}),
        "the live tail's index"
    );

    let inserts = mock.commands("insert");
    assert_eq!(inserts.len(), 1);
    let insert = &inserts[0]["body"];
    assert_eq!(insert["ordered"], false);
    assert_eq!(insert["insert"], "events");
    assert_eq!(insert["writeConcern"]["w"], "majority");
    assert_eq!(insert["writeConcern"]["j"], true);
    assert_eq!(mock.sent_ids(), ids_of(&batch));
}

#[test]
fn documents_carry_the_envelope_as_bson_types() {
    let mock = MockMongo::start();
    let mut sink = standard(&mock);
    sink.write_batch(&[event(7)]).unwrap();
    let doc = &mock.commands("insert")[0]["body"]["documents"][0];
    let first_key = doc.as_object().unwrap().keys().next().unwrap().clone();
    assert_eq!(first_key, "_id", "_id leads the document");
    assert_eq!(doc["_id"], json!({"$oid": id(7).to_hex()}));
    let ts = BASE_MS + 7;
    assert_eq!(doc["ts"], json!({"$date": {"$numberLong": ts.to_string()}}));
    assert_eq!(
        doc["recv"],
        json!({"$date": {"$numberLong": (ts + RECV_LAG_MS).to_string()}})
    );
    assert_eq!(doc["type"], "signup");
    assert_eq!(doc["app"], "shop");
    assert_eq!(doc["host"], "web-7");
    assert_eq!(doc["n"], json!({"$numberInt": "7"}));
}

#[test]
fn json_numbers_map_to_the_narrowest_exact_bson_type() {
    let mock = MockMongo::start();
    let mut sink = standard(&mock);
    let e = typed_event(
        1,
        r#""i32":-5,"i64":5000000000,"big":123456789012345678901234567890,"half":0.5,"tenth":0.1,"precise":0.1000000000000000000001,"huge":1e400,"nested":{"deep":[1,"two",null,true,{"x":2.5}]},"text":"caf\u00e9 \"q\"""#,
    );
    sink.write_batch(&[e]).unwrap();
    let doc = &mock.commands("insert")[0]["body"]["documents"][0];
    assert_eq!(doc["i32"], json!({"$numberInt": "-5"}));
    assert_eq!(doc["i64"], json!({"$numberLong": "5000000000"}));
    assert_eq!(
        doc["big"],
        json!({"$numberDecimal": "123456789012345678901234567890"})
    );
    assert_eq!(doc["half"], json!({"$numberDouble": "0.5"}));
    assert_eq!(doc["tenth"], json!({"$numberDouble": "0.1"}));
    assert_eq!(
        doc["precise"],
        json!({"$numberDecimal": "0.1000000000000000000001"})
    );
    assert_eq!(doc["huge"], json!({"$numberDecimal": "1E+400"}));
    assert_eq!(
        doc["nested"],
        json!({"deep": [{"$numberInt": "1"}, "two", null, true, {"x": {"$numberDouble": "2.5"}}]})
    );
    assert_eq!(doc["text"], "café \"q\"");
}

#[test]
fn duplicate_keys_in_a_reply_count_as_stored() {
    let mock = MockMongo::start();
    let mut sink = standard(&mock);
    sink.write_batch(&events(0..4)).unwrap();
    // A replay of 0..4 plus two new events: the mock answers 11000 for the
    // first four, as a unique _id index does.
    let outcome = sink.write_batch(&events(0..6)).unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 2,
            duplicates: 4
        }
    );
    assert!(mock.stored().values().all(|&n| n == 1));
    assert_eq!(mock.stored().len(), 6);
}

#[test]
fn duplicates_with_a_write_concern_error_are_not_stored_yet() {
    let mut mock = MockMongo::start();
    let mut sink = standard(&mock);
    sink.write_batch(&events(0..3)).unwrap();
    mock.control(json!({"fail_next": ["wce"]}));
    let error = sink.write_batch(&events(0..5)).unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("write concern"), "{error}");
    // The retry is confirmed: everything counts, nothing stored twice.
    let outcome = sink.write_batch(&events(0..5)).unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 0,
            duplicates: 5
        }
    );
    assert_eq!(mock.stored().len(), 5);
}

#[test]
fn a_dropped_connection_mid_batch_is_transient_and_the_retry_delivers() {
    let mut mock = MockMongo::start();
    let mut sink = standard(&mock);
    sink.write_batch(&events(0..1)).unwrap();
    mock.control(json!({"fail_next": ["hangup"]}));
    let error = sink.write_batch(&events(1..50)).unwrap_err();
    assert!(error.is_transient(), "{error}");
    let outcome = sink.write_batch(&events(1..50)).unwrap();
    assert_eq!(outcome.total(), 49);
    assert_eq!(mock.stored().len(), 50);
}

#[test]
fn not_writable_primary_is_transient_and_the_retry_delivers() {
    let mut mock = MockMongo::start();
    let mut sink = standard(&mock);
    mock.control(json!({"fail_next": ["not_primary", "timeout"]}));
    assert!(sink.write_batch(&events(0..10)).unwrap_err().is_transient());
    assert!(sink.write_batch(&events(0..10)).unwrap_err().is_transient());
    assert_eq!(sink.write_batch(&events(0..10)).unwrap().total(), 10);
    assert_eq!(mock.stored().len(), 10);
}

#[test]
fn a_document_the_server_refuses_is_reported_and_the_rest_are_stored() {
    let mut mock = MockMongo::start();
    let mut sink = standard(&mock);
    mock.control(json!({"refuse": {id(2).to_hex(): [121, "Document failed validation"]}}));
    let error = sink.write_batch(&events(0..5)).unwrap_err();
    let SinkError::Refused { stored, refused } = error else {
        panic!("expected Refused, got {error}");
    };
    assert_eq!(
        stored,
        WriteOutcome {
            inserted: 4,
            duplicates: 0
        }
    );
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].index, refused[0].id), (2, id(2)));
    assert!(refused[0].reason.contains("121"), "{}", refused[0].reason);
    assert!(
        refused[0].reason.contains("failed validation"),
        "{}",
        refused[0].reason
    );
    assert_eq!(mock.stored().len(), 4);
}

#[test]
fn an_event_bson_cannot_carry_is_refused_without_sending_it() {
    let mock = MockMongo::start();
    let mut sink = standard(&mock);
    let bad = typed_event(1, r#""a\u0000b":1"#);
    let batch = vec![event(0), bad, event(2)];
    let SinkError::Refused { stored, refused } = sink.write_batch(&batch).unwrap_err() else {
        panic!("expected Refused");
    };
    assert_eq!(stored.inserted, 2);
    assert_eq!(refused[0].index, 1);
    assert!(refused[0].reason.contains("NUL"), "{}", refused[0].reason);
    assert_eq!(mock.sent_ids(), vec![id(0).to_hex(), id(2).to_hex()]);
}

#[test]
fn time_series_mode_filters_a_replayed_batch_by_id_first() {
    let mut mock = MockMongo::start();
    mock.control(json!({"timeseries": true}));
    let mut sink = sink(
        &mock,
        MongoOptions {
            layout: MongoLayout::TimeSeries,
            ..MongoOptions::default()
        },
    );
    sink.write_batch(&events(0..4)).unwrap();
    let outcome = sink.write_batch(&events(0..7)).unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            inserted: 3,
            duplicates: 4
        }
    );
    // The mock (like a time-series collection) would have stored copies:
    // the filter kept every event to exactly one.
    assert_eq!(mock.stored().len(), 7);
    assert!(
        mock.stored().values().all(|&n| n == 1),
        "{:?}",
        mock.stored()
    );
    let create = &mock.commands("create")[0]["body"];
    assert_eq!(create["timeseries"]["timeField"], "ts");
    assert_eq!(create["timeseries"]["metaField"], "type");
    let finds = mock.commands("find");
    assert_eq!(finds.len(), 2, "one lookup per batch");
    assert_eq!(
        finds[1]["body"]["filter"]["_id"]["$in"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert!(
        finds[1]["body"]["filter"]["ts"]["$gte"].is_object(),
        "bounded by time"
    );
}

#[test]
fn retention_days_become_a_ttl_index_on_recv() {
    let mock = MockMongo::start();
    let mut sink = sink(
        &mock,
        MongoOptions {
            retention_days: Some(1.5),
            ..MongoOptions::default()
        },
    );
    assert_eq!(sink.delete_older_than(0, 100).unwrap().rows_deleted, 0);
    let creates = mock.commands("createIndexes");
    let ttl = creates
        .iter()
        .flat_map(|c| c["body"]["indexes"].as_array().unwrap().clone())
        .find(|i| i.get("expireAfterSeconds").is_some())
        .expect("a TTL index");
    assert_eq!(ttl["key"], json!({"recv": {"$numberInt": "1"}}));
    assert_eq!(ttl["expireAfterSeconds"], json!({"$numberLong": "129600"}));
}

#[test]
fn ping_reaches_the_server_and_fails_transiently_when_it_is_gone() {
    let mock = MockMongo::start();
    let mut sink = standard(&mock);
    sink.ping().unwrap();
    let uri = mock.uri();
    drop(mock);
    let mut gone = MongoSink::open(&uri, MongoOptions::default()).unwrap();
    let error = gone.ping().unwrap_err();
    assert!(error.is_transient(), "{error}");
}

#[test]
fn an_id_stored_for_another_app_is_refused_and_a_same_app_resend_is_a_duplicate() {
    let mock = MockMongo::start();
    let mut sink = standard(&mock);
    sink.write_batch(&events(0..3)).unwrap();
    let batch = [event_of_app(0, Some("other")), event(1), event(5)];

    let Err(SinkError::Refused { stored, refused }) = sink.write_batch(&batch) else {
        panic!("another app's event with a taken id must be refused");
    };

    assert_eq!(
        stored,
        WriteOutcome {
            inserted: 1,
            duplicates: 1
        }
    );
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].index, refused[0].id), (0, id(0)));
    assert!(
        refused[0].reason.contains("different app"),
        "{}",
        refused[0].reason
    );
    assert!(mock.stored().values().all(|&n| n == 1));
}

#[test]
fn time_series_mode_refuses_an_id_stored_for_another_app() {
    let mut mock = MockMongo::start();
    mock.control(json!({"timeseries": true}));
    let mut sink = sink(
        &mock,
        MongoOptions {
            layout: MongoLayout::TimeSeries,
            ..MongoOptions::default()
        },
    );
    sink.write_batch(&events(0..2)).unwrap();
    let batch = [event(0), event_of_app(1, Some("other"))];
    let Err(SinkError::Refused { stored, refused }) = sink.write_batch(&batch) else {
        panic!("another app's event with a taken id must be refused");
    };
    assert_eq!(
        stored,
        WriteOutcome {
            inserted: 0,
            duplicates: 1
        }
    );
    assert_eq!(refused[0].index, 1);
    assert!(
        mock.stored().values().all(|&n| n == 1),
        "{:?}",
        mock.stored()
    );
}
