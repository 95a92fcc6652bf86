//! The query back end under hostile and extreme queries: regular
//! expressions whose matching would hold a core for minutes, cancelling a
//! query that is running, and the largest filters the front ends' limits
//! allow (which must run, or fail as the caller's fault, never as a store
//! error).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use helios_store::query::{
    eval, parse_mongo_filter, parse_text, CompareOp, FieldPath, Filter, Literal, Query,
    QueryBackend, QueryError, Selection, TimeRange, MAX_MONGO_FILTER_DEPTH, MAX_MONGO_FILTER_NODES,
    MAX_PAGE_LIMIT, MAX_TEXT_DEPTH, MAX_TEXT_TERMS,
};
use helios_store::sqlite::{SqliteQueries, SqliteSink};
use helios_store::{Envelope, EventDoc, ObjectId, Sink, TsRaw};
use serde_json::{json, Value};

const BASE_MS: i64 = 1_796_066_503_000;

/// Accepted by every pattern limit, yet the lazy DFA gives up on it over a
/// run of `a`s, so each match costs positions (993) × bytes: about 45 ms
/// per 2 KB value in a release build, some twenty times that in a debug
/// one.
const COSTLY_PATTERN: &str = "(?:a{1,31}){1,32}c";
/// Refused: its counted repetitions multiply to 10,000. Before the limits
/// it took 15.7 s per 100 KB value (release build).
const NESTED_PATTERN: &str = "(?:a{1,100}){1,100}c";

struct Store {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Store {
    /// `n` events; event `i` has `s` = `value(i)` and `n` = `i`.
    fn with(n: u32, value: impl Fn(u32) -> Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let mut sink = SqliteSink::open(&path).unwrap();
        let docs: Vec<EventDoc> = (0..n)
            .map(|i| {
                let envelope = Envelope {
                    id: ObjectId::from_parts((BASE_MS / 1000) as u32, [3, 1, 4, 1, 5], i).unwrap(),
                    ts_ms: BASE_MS + i64::from(i),
                    recv_ms: BASE_MS + i64::from(i),
                    app: None,
                    ts_raw: TsRaw::None,
                };
                let members = json!({"type": "t", "s": value(i), "n": i});
                EventDoc::from_event_json(&members.to_string(), &envelope).unwrap()
            })
            .collect();
        sink.write_batch(&docs).unwrap();
        Self { _dir: dir, path }
    }

    fn queries(&self) -> SqliteQueries {
        SqliteQueries::open(&self.path).unwrap()
    }

    /// Every stored document, for the evaluator.
    fn docs(&self) -> Vec<Value> {
        let page = self
            .queries()
            .query(&Query {
                limit: MAX_PAGE_LIMIT,
                ..Query::new(Selection::range(TimeRange::ALL))
            })
            .unwrap();
        page.events.into_iter().map(|hit| hit.doc).collect()
    }
}

fn page_of(filter: Filter) -> Query {
    Query {
        limit: MAX_PAGE_LIMIT,
        ..Query::new(Selection {
            range: TimeRange::ALL,
            types: Vec::new(),
            filter: Some(filter),
        })
    }
}

/// Long runs of `a` that the costly pattern never matches.
fn hostile_store(events: u32, len: usize) -> Store {
    Store::with(events, |_| Value::from("a".repeat(len)))
}

#[test]
fn a_costly_regex_over_many_long_values_stops_at_the_time_budget() {
    let store = hostile_store(60, 3_000);
    let budget = Duration::from_secs(1);
    let queries = store.queries().with_query_timeout(budget);
    let filter = parse_text(&format!("s:/{COSTLY_PATTERN}/")).unwrap();
    let start = Instant::now();
    let error = queries.query(&page_of(filter)).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(error, QueryError::Timeout { .. }), "{error}");
    // The budget plus one match; without the check inside `regexp` the
    // progress handler never ran between matches and this query ran to its
    // end, over a minute later (debug build).
    assert!(took < budget + Duration::from_secs(4), "took {took:?}");
}

#[test]
fn nested_counted_repetitions_are_refused_by_both_front_ends() {
    let text = parse_text(&format!("s:/{NESTED_PATTERN}/")).unwrap_err();
    assert!(text.message.contains("multiply to 10000"), "{text}");
    let mongo = parse_mongo_filter(&json!({"s": {"$regex": "(a{1,50}){1,50}c"}})).unwrap_err();
    assert!(mongo.message.contains("multiply to 2500"), "{mongo}");
    assert_eq!(mongo.location, "filter.s.$regex");
}

#[test]
fn a_value_longer_than_the_pattern_may_scan_is_a_client_error() {
    let filter = parse_mongo_filter(&json!({"s": {"$regex": COSTLY_PATTERN}})).unwrap();
    let Filter::Regex { pattern, .. } = &filter else {
        panic!("not a regex: {filter:?}");
    };
    let max = pattern.max_scan_bytes();
    let store = Store::with(3, |i| {
        Value::from(if i == 1 {
            "a".repeat(max + 1)
        } else {
            "ac".to_owned()
        })
    });
    let start = Instant::now();
    let error = store.queries().query(&page_of(filter)).unwrap_err();
    assert!(
        matches!(&error, QueryError::Invalid(reason) if reason.contains("may scan strings of up to")),
        "{error}"
    );
    assert!(error.is_client_error());
    // Refused before any matching (the match alone would take ~1 s in a
    // release build, over ten in a debug one).
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_simple_regex_scans_long_values_and_matches_as_the_evaluator_does() {
    let store = Store::with(4, |i| Value::from(format!("{}{i}", "x".repeat(200_000))));
    let filter = parse_text("s:/x{3}[13]$/").unwrap();
    let page = store.queries().query(&page_of(filter.clone())).unwrap();
    let expected = store
        .docs()
        .iter()
        .filter(|doc| eval::matches(&filter, doc))
        .count();
    assert_eq!((page.events.len(), expected), (2, 2));
}

#[test]
fn cancel_stops_a_running_regex_query_within_moments_and_refuses_later_ones() {
    let store = hostile_store(60, 3_000);
    let queries = Arc::new(store.queries());
    let filter = parse_text(&format!("s:/{COSTLY_PATTERN}/")).unwrap();
    let running = {
        let queries = Arc::clone(&queries);
        std::thread::spawn(move || {
            let result = queries.query(&page_of(filter));
            (result, Instant::now())
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let cancelled_at = Instant::now();
    queries.cancel();
    let (result, ended_at) = running.join().unwrap();
    let error = result.unwrap_err();
    assert!(matches!(error, QueryError::Cancelled), "{error}");
    let took = ended_at.duration_since(cancelled_at);
    assert!(
        took < Duration::from_secs(3),
        "stopped {took:?} after cancel"
    );
    let later = queries
        .query(&Query::new(Selection::range(TimeRange::ALL)))
        .unwrap_err();
    assert!(matches!(later, QueryError::Cancelled), "{later}");
}

/// Runs `filter` and checks the page against the evaluator.
fn runs_like_the_evaluator(store: &Store, filter: Filter) {
    let docs = store.docs();
    let expected: Vec<&Value> = docs
        .iter()
        .filter(|doc| eval::matches(&filter, doc))
        .collect();
    let page = store
        .queries()
        .query(&page_of(filter))
        .unwrap_or_else(|error| panic!("{error}"));
    let got: Vec<&Value> = page.events.iter().map(|hit| &hit.doc).collect();
    assert_eq!(got, expected);
}

/// Values of every type, so `$in` lists cross type brackets.
fn mixed_store() -> Store {
    Store::with(12, |i| match i % 6 {
        0 => Value::from(i),
        1 => Value::from(f64::from(i) + 0.5),
        2 => Value::from(format!("v{i}")),
        3 => Value::from(i % 2 == 0),
        4 => Value::Null,
        _ => json!([i, format!("v{i}")]),
    })
}

/// The longest `$in` list [`MAX_MONGO_FILTER_NODES`] allows: the document,
/// the field and the operator are three nodes, each value one more.
fn largest_list() -> Vec<Value> {
    let n = MAX_MONGO_FILTER_NODES - 3;
    (1..n)
        .map(|i| match i % 5 {
            0 => Value::from(i),
            1 => Value::from(i as f64 + 0.5),
            2 => Value::from(format!("v{i}")),
            3 => Value::from(i % 2 == 0),
            _ => Value::from(format!("w{i}")),
        })
        .chain([Value::Null])
        .collect()
}

#[test]
fn the_largest_in_and_nin_lists_the_node_limit_allows_run() {
    let store = mixed_store();
    let list = largest_list();
    assert_eq!(list.len(), MAX_MONGO_FILTER_NODES - 3);
    for operator in ["$in", "$nin"] {
        let filter = parse_mongo_filter(&json!({"s": {operator: list.clone()}})).unwrap();
        runs_like_the_evaluator(&store, filter);
    }
    let mut too_long = list.clone();
    too_long.push(Value::from(-1));
    assert!(parse_mongo_filter(&json!({"s": {"$in": too_long}})).is_err());
}

#[test]
fn large_in_lists_on_envelope_columns_and_nested_paths_run() {
    let store = mixed_store();
    let types: Vec<Value> = (0..1_000).map(|i| Value::from(format!("t{i}"))).collect();
    let mut with_t = types.clone();
    with_t.push(Value::from("t"));
    runs_like_the_evaluator(
        &store,
        parse_mongo_filter(&json!({"type": {"$in": with_t}})).unwrap(),
    );
    runs_like_the_evaluator(
        &store,
        parse_mongo_filter(&json!({"s.deep.path": {"$nin": types}})).unwrap(),
    );
}

#[test]
fn the_widest_or_the_node_limit_allows_runs() {
    let store = mixed_store();
    // One node for the document, two per branch (its document and field).
    let branches: Vec<Value> = (0..(MAX_MONGO_FILTER_NODES - 1) / 2)
        .map(|i| json!({"n": i}))
        .collect();
    runs_like_the_evaluator(
        &store,
        parse_mongo_filter(&json!({"$or": branches})).unwrap(),
    );
}

/// The deepest filter `parse` accepts when `wrap` is applied again and
/// again to `leaf`, and how many times it was applied.
fn deepest<T: Clone>(
    leaf: T,
    wrap: impl Fn(T, usize) -> T,
    parse: impl Fn(&T) -> bool,
) -> (T, usize) {
    let mut deepest = leaf;
    let mut levels = 0;
    loop {
        let wrapped = wrap(deepest.clone(), levels);
        if !parse(&wrapped) {
            return (deepest, levels);
        }
        deepest = wrapped;
        levels += 1;
    }
}

#[test]
fn and_or_nested_to_the_depth_limit_run() {
    let store = mixed_store();
    let (filter, levels) = deepest(
        json!({"n": {"$gte": 1}}),
        |inner, level| {
            if level % 2 == 0 {
                json!({"$and": [inner, {"s": {"$ne": null}}]})
            } else {
                json!({"$or": [inner, {"n": {"$in": [0, 7, "x"]}}]})
            }
        },
        |filter| parse_mongo_filter(filter).is_ok(),
    );
    // Each level is two JSON levels (the array and the document in it).
    assert!(levels >= MAX_MONGO_FILTER_DEPTH / 2 - 2, "{levels}");
    runs_like_the_evaluator(&store, parse_mongo_filter(&filter).unwrap());
    let (filter, levels) = deepest(
        json!({"n": 3}),
        |inner, _| json!({"n": {"$not": {"$not": {"$gte": 0}}}, "$nor": [inner]}),
        |filter| parse_mongo_filter(filter).is_ok(),
    );
    assert!(levels >= MAX_MONGO_FILTER_DEPTH / 2 - 2, "{levels}");
    runs_like_the_evaluator(&store, parse_mongo_filter(&filter).unwrap());
}

#[test]
fn text_queries_at_their_term_and_depth_limits_run() {
    let store = mixed_store();
    let terms: Vec<String> = (0..MAX_TEXT_TERMS).map(|i| format!("s.x:{i}")).collect();
    runs_like_the_evaluator(&store, parse_text(&terms.join(" OR ")).unwrap());
    let (nested, levels) = deepest(
        "n:3".to_owned(),
        |inner, level| {
            if level % 2 == 0 {
                format!("NOT ({inner} s:*v*)")
            } else {
                format!("(NOT {inner} OR n>5)")
            }
        },
        |text| parse_text(text).is_ok(),
    );
    assert!(levels >= MAX_TEXT_DEPTH / 2 - 1, "{levels}");
    runs_like_the_evaluator(&store, parse_text(&nested).unwrap());
}

#[test]
fn a_filter_too_complex_for_sqlite_is_a_client_error_not_a_store_error() {
    // Built directly (the front ends' limits would refuse it): NOTs nested
    // far past SQLite's expression depth and parser stack.
    let store = mixed_store();
    let leaf = Filter::compare(
        FieldPath::parse("n").unwrap(),
        CompareOp::Eq,
        Literal::Int(1),
    );
    let filter = (0..1_200).fold(leaf, |inner, _| Filter::not(inner));
    let queries = store.queries();
    // Compiling (and dropping) a filter this deep recurses once per level.
    let error = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(scope, || queries.query(&page_of(filter)).unwrap_err())
            .unwrap()
            .join()
            .unwrap()
    });
    assert!(
        matches!(&error, QueryError::Invalid(reason) if reason.contains("too complex")),
        "{error}"
    );
}
