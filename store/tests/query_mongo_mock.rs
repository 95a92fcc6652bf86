//! The MongoDB query back end against MockupDB: the commands it sends (as
//! the server receives them, canonical extended JSON) and how it renders
//! stored documents. The mock answers `find` (all documents, or by `_id`)
//! but not `aggregate`, so pipelines are checked as sent.

#[path = "support/mockupdb.rs"]
mod mockupdb;

use helios_store::mongo::MongoQueries;
use helios_store::mongo::{MongoOptions, MongoSink};
use helios_store::query::{
    Cursor, GroupByRequest, HistogramRequest, Query, QueryBackend, Selection, SortOrder, Split,
    TailCursor, TailRequest, TimeRange,
};
use helios_store::{Envelope, EventDoc, ObjectId, Sink, TsRaw};
use mockupdb::MockMongo;
use serde_json::{json, Value};

/// 2026-11-30T19:21:43.000Z.
const BASE_MS: i64 = 1_796_066_503_000;

fn id(n: u32) -> ObjectId {
    ObjectId::from_parts((BASE_MS / 1000) as u32, [4, 4, 4, 4, 4], n).unwrap()
}

fn event(n: u32, members: Value) -> EventDoc {
    let envelope = Envelope {
        id: id(n),
        ts_ms: BASE_MS + i64::from(n),
        recv_ms: BASE_MS + i64::from(n) + 5,
        app: Some("shop"),
        ts_raw: TsRaw::None,
    };
    EventDoc::from_event_json(&members.to_string(), &envelope).unwrap()
}

struct Fixture {
    mock: MockMongo,
    _runtime: tokio::runtime::Runtime,
    queries: MongoQueries,
}

fn fixture(events: &[EventDoc]) -> Fixture {
    let mock = MockMongo::start();
    if !events.is_empty() {
        let mut sink = MongoSink::open(&mock.uri(), MongoOptions::default()).unwrap();
        sink.write_batch(events).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let queries =
        MongoQueries::open(&mock.uri(), "helios", "events", runtime.handle().clone()).unwrap();
    Fixture {
        mock,
        _runtime: runtime,
        queries,
    }
}

fn date(ms: i64) -> Value {
    json!({"$date": {"$numberLong": ms.to_string()}})
}

fn long(n: i64) -> Value {
    json!({"$numberLong": n.to_string()})
}

#[test]
fn stored_documents_render_exactly_like_the_sqlite_doc() {
    let events = vec![
        event(
            0,
            json!({"type": "signup", "plan": "pro", "n": 3, "f": 2.5, "ok": true, "none": null}),
        ),
        event(
            1,
            json!({"type": "t", "user": {"name": "ada", "tags": ["a", 1, {"x": false}]}, "big": 1_i64 << 40}),
        ),
    ];
    let fixture = fixture(&events);
    for stored in &events {
        let hit = fixture.queries.get(stored.id).unwrap().expect("stored");
        let want: Value = serde_json::from_str(&stored.doc).unwrap();
        assert_eq!(hit.doc, want);
        assert_eq!(hit.id, stored.id);
        assert_eq!(hit.ts_ms, stored.ts_ms);
    }
    let find = fixture.mock.commands("find");
    assert_eq!(
        find.last().unwrap()["body"]["filter"],
        json!({"_id": {"$oid": id(1).to_hex()}})
    );
}

#[test]
fn a_page_is_one_find_with_the_selection_keyset_sort_limit_and_time_limit() {
    let fixture = fixture(&[]);
    let query = Query {
        select: Selection {
            range: TimeRange::new(BASE_MS, BASE_MS + 60_000),
            types: vec!["signup".to_owned()],
            filter: Some(helios_store::query::parse_text("plan:pro latency_ms>250").unwrap()),
        },
        sort: SortOrder::Desc,
        limit: 50,
        after: Some(Cursor {
            ts_ms: BASE_MS + 30_000,
            id: id(7),
        }),
        projection: None,
    };
    let page = fixture.queries.query(&query).unwrap();
    assert!(page.events.is_empty());
    let find = fixture.mock.commands("find");
    let body = &find.last().unwrap()["body"];
    assert_eq!(body["find"], "events");
    assert_eq!(body["$db"], "helios");
    assert_eq!(
        body["sort"],
        json!({"ts": {"$numberInt": "-1"}, "_id": {"$numberInt": "-1"}})
    );
    // One more than the page: tells whether a next page exists.
    assert_eq!(body["limit"], long(51));
    assert_eq!(body["maxTimeMS"], json!({"$numberInt": "30000"}));
    assert_eq!(
        body["filter"],
        json!({"$and": [
            {"$and": [
                {"ts": {"$gte": date(BASE_MS), "$lt": date(BASE_MS + 60_000)}},
                {"type": {"$in": ["signup"]}},
                {"$and": [
                    {"plan": {"$eq": "pro"}},
                    {"latency_ms": {"$gt": long(250)}},
                ]},
            ]},
            {"$or": [
                {"ts": {"$lt": date(BASE_MS + 30_000)}},
                {"ts": date(BASE_MS + 30_000), "_id": {"$lt": {"$oid": id(7).to_hex()}}},
            ]},
        ]})
    );
}

#[test]
fn a_split_histogram_first_ranks_the_split_values_then_counts_per_bucket() {
    let fixture = fixture(&[]);
    let request = HistogramRequest {
        select: Selection::range(TimeRange::new(BASE_MS, BASE_MS + 60_000)),
        bucket_ms: 10_000,
        split_by: Some(Split {
            path: "plan".parse().unwrap(),
            top_n: 5,
        }),
    };
    // The mock does not answer `aggregate`: only the command is checked.
    assert!(fixture.queries.histogram(&request).is_err());
    let aggregate = fixture.mock.commands("aggregate");
    let pipeline = &aggregate.last().unwrap()["body"]["pipeline"];
    assert_eq!(
        pipeline,
        &json!([
            {"$match": {"ts": {"$gte": date(BASE_MS), "$lt": date(BASE_MS + 60_000)}}},
            {"$group": {
                "_id": {"t": {"$type": "$plan"}, "v": "$plan"},
                "n": {"$sum": {"$numberInt": "1"}},
            }},
            {"$sort": {"n": {"$numberInt": "-1"}, "_id": {"$numberInt": "1"}}},
            {"$limit": long(5)},
        ])
    );
}

#[test]
fn group_by_ranks_values_by_type_and_value() {
    let fixture = fixture(&[]);
    let request = GroupByRequest {
        select: Selection::range(TimeRange::new(BASE_MS, BASE_MS + 1)),
        path: "user.country".parse().unwrap(),
        top_n: 3,
    };
    assert!(fixture.queries.group_by(&request).is_err());
    let aggregate = fixture.mock.commands("aggregate");
    let pipeline = &aggregate.last().unwrap()["body"]["pipeline"];
    assert_eq!(
        pipeline[1]["$group"]["_id"],
        json!({"t": {"$type": "$user.country"}, "v": "$user.country"})
    );
    assert_eq!(pipeline[3], json!({"$limit": long(3)}));
    assert_eq!(
        aggregate.last().unwrap()["body"]["maxTimeMS"],
        json!({"$numberInt": "30000"})
    );
}

#[test]
fn tail_rereads_a_trailing_recv_window_and_skips_ids_it_delivered() {
    let events: Vec<EventDoc> = (0..3).map(|n| event(n, json!({"type": "t"}))).collect();
    let fixture = fixture(&events);
    let request = |after: &str| TailRequest {
        types: vec!["t".to_owned()],
        filter: None,
        after: Some(TailCursor(after.to_owned())),
        limit: 10,
    };
    let first = fixture
        .queries
        .tail(&request(&BASE_MS.to_string()))
        .unwrap();
    assert_eq!(
        first.events.iter().map(|hit| hit.id).collect::<Vec<_>>(),
        vec![id(0), id(1), id(2)]
    );
    let body = fixture.mock.commands("find").last().unwrap()["body"].clone();
    assert_eq!(
        body["sort"],
        json!({"recv": {"$numberInt": "1"}, "_id": {"$numberInt": "1"}})
    );
    assert_eq!(
        body["filter"]["$and"][0],
        json!({"recv": {"$gte": date(BASE_MS - 60_000)}})
    );
    // The mock answers the same three again: all already delivered.
    let second = fixture.queries.tail(&request(&first.next.0)).unwrap();
    assert!(second.events.is_empty());
    let body = fixture.mock.commands("find").last().unwrap()["body"].clone();
    // The window trails the newest delivered recv (event 2: BASE + 2 + 5).
    assert_eq!(
        body["filter"]["$and"][0],
        json!({"recv": {"$gte": date(BASE_MS + 7 - 60_000)}})
    );
    // A poll fails fast on the server (it repeats several times a second).
    assert_eq!(body["maxTimeMS"], json!({"$numberInt": "2000"}));
    // and the server leaves out what was delivered, so the poll's limit
    // counts only new events.
    let excluded: Vec<String> = body["filter"]["$and"][1]["_id"]["$nin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|oid| oid["$oid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        excluded,
        vec![id(0).to_hex(), id(1).to_hex(), id(2).to_hex()]
    );
}
