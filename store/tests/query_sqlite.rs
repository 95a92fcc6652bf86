//! The SQLite query back end, request by request (the differential test
//! covers filter semantics broadly; these pin down each request's contract).

use std::path::PathBuf;

use helios_store::query::{
    parse_text, Cursor, DistinctRequest, Export, ExportRequest, FieldPath, Filter, GroupByRequest,
    GroupKey, HistogramRequest, Literal, Query, QueryBackend, Selection, SortOrder, Split,
    TailRequest, TimeRange, EXPORT_CHUNK_EVENTS, MAX_HISTOGRAM_BUCKETS, MAX_PAGE_LIMIT,
    MAX_READ_DOC_BYTES, MAX_TAIL_LIMIT,
};
use helios_store::sqlite::SqliteQueries;
use helios_store::sqlite::SqliteSink;
use helios_store::{Envelope, EventDoc, ObjectId, Sink, TsRaw};
use serde_json::{json, Value};

/// 2026-11-30T19:21:43.000Z.
const BASE_MS: i64 = 1_796_066_503_000;
const ALL: TimeRange = TimeRange::ALL;

fn id(n: u32) -> ObjectId {
    ObjectId::from_parts((BASE_MS / 1000) as u32, [9, 8, 7, 6, 5], n).unwrap()
}

/// Event `n` at `BASE_MS + ts_offset_ms` with the given members.
fn event(n: u32, ts_offset_ms: i64, members: Value) -> EventDoc {
    let envelope = Envelope {
        id: id(n),
        ts_ms: BASE_MS + ts_offset_ms,
        recv_ms: BASE_MS + ts_offset_ms,
        app: Some("shop"),
        ts_raw: TsRaw::None,
    };
    EventDoc::from_event_json(&members.to_string(), &envelope).unwrap()
}

struct Store {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sink: SqliteSink,
}

impl Store {
    /// A store whose events are all live rows (however old their `ts`):
    /// the plans these tests pin down are the live rows' (schema version
    /// 3). `query_differential` mixes live and late rows.
    fn new() -> Self {
        Self::late_after_ms(i64::MAX)
    }

    fn late_after_ms(late_after_ms: i64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let sink = SqliteSink::open(&path)
            .unwrap()
            .with_late_after_ms(late_after_ms);
        Self {
            _dir: dir,
            path,
            sink,
        }
    }

    /// A store holding `events` as late rows.
    fn late_rows(events: Vec<EventDoc>) -> Self {
        let mut store = Self::late_after_ms(0);
        store.add(events);
        store
    }

    fn with(events: Vec<EventDoc>) -> Self {
        let mut store = Self::new();
        store.add(events);
        store
    }

    fn add(&mut self, events: Vec<EventDoc>) {
        self.sink.write_batch(&events).unwrap();
    }

    fn queries(&self) -> SqliteQueries {
        SqliteQueries::open(&self.path).unwrap()
    }
}

fn select(filter: Option<Filter>) -> Selection {
    Selection {
        range: ALL,
        types: Vec::new(),
        filter,
    }
}

fn ids(hits: &[helios_store::query::Hit]) -> Vec<ObjectId> {
    hits.iter().map(|hit| hit.id).collect()
}

fn path(dotted: &str) -> FieldPath {
    FieldPath::parse(dotted).unwrap()
}

/// Five signups/logins with plans and latencies.
fn shop() -> Store {
    Store::with(vec![
        event(
            0,
            0,
            json!({"type": "signup", "plan": "pro", "latency_ms": 300, "country": "FR"}),
        ),
        event(
            1,
            10,
            json!({"type": "signup", "plan": "pro", "latency_ms": 100, "country": "FR"}),
        ),
        event(
            2,
            20,
            json!({"type": "signup", "plan": "pro", "latency_ms": 400, "country": "US"}),
        ),
        event(
            3,
            30,
            json!({"type": "login", "plan": "pro", "latency_ms": 500}),
        ),
        event(
            4,
            40,
            json!({"type": "signup", "plan": "free", "latency_ms": 900}),
        ),
    ])
}

#[test]
fn opening_a_missing_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    assert!(SqliteQueries::open(dir.path().join("nope.db")).is_err());
}

#[test]
fn the_issue_example_query_finds_its_events() {
    let store = shop();
    let filter = parse_text("type:signup plan:pro latency_ms>250 NOT country:US").unwrap();
    let page = store
        .queries()
        .query(&Query::new(select(Some(filter))))
        .unwrap();
    assert_eq!(ids(&page.events), vec![id(0)]);
}

#[test]
fn pages_are_newest_first_and_continue_from_their_cursor() {
    let store = shop();
    let queries = store.queries();
    let mut query = Query::new(select(None));
    query.limit = 2;
    let first = queries.query(&query).unwrap();
    assert_eq!(ids(&first.events), vec![id(4), id(3)]);
    assert_eq!(
        first.next,
        Some(Cursor {
            ts_ms: BASE_MS + 30,
            id: id(3)
        })
    );
    query.after = first.next;
    let second = queries.query(&query).unwrap();
    assert_eq!(ids(&second.events), vec![id(2), id(1)]);
    query.after = second.next;
    let last = queries.query(&query).unwrap();
    assert_eq!(ids(&last.events), vec![id(0)]);
    assert_eq!(last.next, None);
}

#[test]
fn ascending_order_is_oldest_first_with_ties_broken_by_id() {
    let store = Store::with(vec![
        event(2, 5, json!({"type": "t"})),
        event(1, 5, json!({"type": "t"})),
        event(0, 9, json!({"type": "t"})),
    ]);
    let mut query = Query::new(select(None));
    query.sort = SortOrder::Asc;
    let page = store.queries().query(&query).unwrap();
    assert_eq!(ids(&page.events), vec![id(1), id(2), id(0)]);
}

#[test]
fn time_range_is_half_open_and_types_filter() {
    let store = shop();
    let mut query = Query::new(Selection {
        range: TimeRange::new(BASE_MS + 10, BASE_MS + 40),
        types: vec!["signup".to_owned()],
        filter: None,
    });
    query.sort = SortOrder::Asc;
    let page = store.queries().query(&query).unwrap();
    assert_eq!(ids(&page.events), vec![id(1), id(2)]);
}

#[test]
fn a_full_last_page_has_no_next_cursor() {
    let store = shop();
    let mut query = Query::new(select(None));
    query.limit = 5;
    let page = store.queries().query(&query).unwrap();
    assert_eq!(page.events.len(), 5);
    assert_eq!(page.next, None);
}

#[test]
fn limit_is_capped_and_zero_returns_nothing() {
    let store = Store::with(
        (0..MAX_PAGE_LIMIT as u32 + 5)
            .map(|n| event(n, 0, json!({"type": "t"})))
            .collect(),
    );
    let queries = store.queries();
    let mut query = Query::new(select(None));
    query.limit = usize::MAX;
    assert_eq!(queries.query(&query).unwrap().events.len(), MAX_PAGE_LIMIT);
    query.limit = 0;
    let empty = queries.query(&query).unwrap();
    assert!(empty.events.is_empty());
    assert_eq!(empty.next, None);
}

#[test]
fn projection_keeps_the_envelope_keys_and_the_requested_paths() {
    let store = Store::with(vec![event(
        0,
        0,
        json!({"type": "t", "user": {"name": "ada", "email": "a@x"}, "items": [{"sku": 1, "n": 2}, 3], "other": 1}),
    )]);
    let mut query = Query::new(select(None));
    query.projection = Some(vec![path("user.name"), path("items.sku")]);
    let page = store.queries().query(&query).unwrap();
    assert_eq!(
        page.events[0].doc,
        json!({
            "_id": id(0).to_hex(),
            "ts": "2026-11-30T19:21:43.000Z",
            "type": "t",
            "user": {"name": "ada"},
            "items": [{"sku": 1}],
        })
    );
}

#[test]
fn get_finds_an_event_by_id() {
    let store = shop();
    let queries = store.queries();
    let hit = queries.get(id(3)).unwrap().unwrap();
    assert_eq!(hit.doc["type"], "login");
    assert_eq!(hit.ts_ms, BASE_MS + 30);
    assert_eq!(queries.get(id(99)).unwrap(), None);
}

#[test]
fn types_are_counted_in_the_range_most_frequent_first() {
    let store = shop();
    let types = store.queries().types(ALL).unwrap();
    let counted: Vec<(&str, u64)> = types
        .iter()
        .map(|t| (t.event_type.as_str(), t.count))
        .collect();
    assert_eq!(counted, vec![("signup", 4), ("login", 1)]);
    let early = store
        .queries()
        .types(TimeRange::new(BASE_MS + 30, BASE_MS + 31))
        .unwrap();
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].event_type, "login");
}

#[test]
fn histogram_buckets_are_dense_and_aligned_to_the_epoch() {
    let store = shop();
    let histogram = store
        .queries()
        .histogram(&HistogramRequest {
            select: Selection::range(TimeRange::new(BASE_MS - 5, BASE_MS + 45)),
            bucket_ms: 20,
            split_by: None,
        })
        .unwrap();
    // BASE_MS is a multiple of 20: buckets start at BASE-20, BASE, +20, +40.
    let counts: Vec<(i64, u64)> = histogram
        .buckets
        .iter()
        .map(|b| (b.start_ms - BASE_MS, b.count))
        .collect();
    assert_eq!(counts, vec![(-20, 0), (0, 2), (20, 2), (40, 1)]);
    assert!(histogram.series.is_empty());
}

#[test]
fn histogram_split_counts_top_values_and_other() {
    let store = shop();
    let histogram = store
        .queries()
        .histogram(&HistogramRequest {
            select: Selection::range(TimeRange::new(BASE_MS, BASE_MS + 50)),
            bucket_ms: 25,
            split_by: Some(Split {
                path: path("country"),
                top_n: 1,
            }),
        })
        .unwrap();
    // Top value: country missing (2 events) ties with FR (2); by key order
    // the missing key (NULL) sorts first. Everything else is Other.
    assert_eq!(histogram.series.len(), 2);
    assert_eq!(histogram.series[1], GroupKey::Other);
    let total: u64 = histogram.buckets.iter().map(|b| b.count).sum();
    let split_total: u64 = histogram
        .buckets
        .iter()
        .flat_map(|b| b.split_counts.iter())
        .sum();
    assert_eq!((total, split_total), (5, 5));
}

#[test]
fn histogram_refuses_too_many_buckets_or_a_bad_width() {
    let queries = shop().queries();
    let request = |bucket_ms| HistogramRequest {
        select: Selection::range(TimeRange::new(0, MAX_HISTOGRAM_BUCKETS as i64 + 1)),
        bucket_ms,
        split_by: None,
    };
    assert!(queries
        .histogram(&request(1))
        .unwrap_err()
        .is_client_error());
    assert!(queries
        .histogram(&request(0))
        .unwrap_err()
        .is_client_error());
    assert!(queries.histogram(&request(2)).is_ok());
}

#[test]
fn group_by_returns_top_values_other_count_and_total() {
    let store = shop();
    let groups = store
        .queries()
        .group_by(&GroupByRequest {
            select: select(None),
            path: path("country"),
            top_n: 2,
        })
        .unwrap();
    assert_eq!(groups.total, 5);
    assert_eq!(groups.groups.len(), 2);
    assert_eq!(groups.groups[0].count, 2);
    assert_eq!(groups.groups[1].count, 2);
    assert!(groups.groups.iter().any(|g| g.key == GroupKey::Missing));
    assert!(groups
        .groups
        .iter()
        .any(|g| g.key == GroupKey::Value(json!("FR"))));
    assert_eq!(groups.other_count, 1);
}

#[test]
fn group_by_refuses_top_n_zero_as_a_client_error() {
    let error = shop()
        .queries()
        .group_by(&GroupByRequest {
            select: select(None),
            path: path("plan"),
            top_n: 0,
        })
        .unwrap_err();
    assert!(error.is_client_error(), "{error}");
}

#[test]
fn distinct_suggests_string_values_with_a_prefix_most_frequent_first() {
    let store = shop();
    let values = store
        .queries()
        .distinct(&DistinctRequest {
            select: select(None),
            path: path("plan"),
            prefix: Some("p".to_owned()),
            limit: 10,
        })
        .unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].key, GroupKey::Value(json!("pro")));
    assert_eq!(values[0].count, 4);
    let all = store
        .queries()
        .distinct(&DistinctRequest {
            select: select(None),
            path: path("country"),
            prefix: None,
            limit: 10,
        })
        .unwrap();
    // Missing is not a suggestion.
    assert_eq!(all.len(), 2);
}

#[test]
fn field_names_come_from_recent_documents_with_nested_paths() {
    let store = Store::with(vec![
        event(
            0,
            0,
            json!({"type": "t", "user": {"name": "a"}, "items": [{"sku": 1}]}),
        ),
        event(1, 1, json!({"type": "t", "user": {"id": 2}})),
    ]);
    let names = store.queries().field_names(ALL, 10).unwrap();
    let find = |p: &str| names.iter().find(|n| n.path == p).map(|n| n.count);
    assert_eq!(find("user"), Some(2));
    assert_eq!(find("user.name"), Some(1));
    assert_eq!(find("items.sku"), Some(1));
    assert_eq!(find("_id"), Some(2));
    let one = store.queries().field_names(ALL, 1).unwrap();
    assert_eq!(
        one.iter().find(|n| n.path == "user.name"),
        None,
        "only the newest doc sampled"
    );
}

#[test]
fn tail_starts_at_the_end_then_follows_insertion_order() {
    let mut store = shop();
    let queries = store.queries();
    let request = |after| TailRequest {
        types: Vec::new(),
        filter: None,
        after,
        limit: 10,
    };
    let start = queries.tail(&request(None)).unwrap();
    assert!(start.events.is_empty());
    // Inserted later but with an *older* ts: still tailed, in insertion order.
    store.add(vec![
        event(10, -1_000, json!({"type": "late"})),
        event(11, 50, json!({"type": "new"})),
    ]);
    let page = queries.tail(&request(Some(start.next.clone()))).unwrap();
    assert_eq!(ids(&page.events), vec![id(10), id(11)]);
    let again = queries.tail(&request(Some(page.next))).unwrap();
    assert!(again.events.is_empty());
}

#[test]
fn tail_applies_the_filter_and_moves_past_events_it_skips() {
    let mut store = Store::new();
    let queries = {
        store.add(vec![event(0, 0, json!({"type": "t"}))]);
        store.queries()
    };
    let start = queries
        .tail(&TailRequest {
            types: vec!["wanted".to_owned()],
            filter: None,
            after: None,
            limit: 10,
        })
        .unwrap();
    store.add(
        (1..20)
            .map(|n| {
                event(
                    n,
                    0,
                    json!({"type": if n == 7 { "wanted" } else { "other" }}),
                )
            })
            .collect(),
    );
    let request = TailRequest {
        types: vec!["wanted".to_owned()],
        filter: None,
        after: Some(start.next),
        limit: 10,
    };
    let page = queries.tail(&request).unwrap();
    assert_eq!(ids(&page.events), vec![id(7)]);
    let later = queries
        .tail(&TailRequest {
            after: Some(page.next),
            ..request
        })
        .unwrap();
    assert!(later.events.is_empty());
}

#[test]
fn a_tail_poll_stopped_by_its_scan_bound_says_it_is_behind_until_it_reaches_the_newest() {
    use helios_store::sqlite::MAX_TAIL_SCAN_ROWS;
    let mut store = Store::with(vec![event(0, 0, json!({"type": "t"}))]);
    let queries = store.queries();
    let wanted = |after| TailRequest {
        types: vec!["rare".to_owned()],
        filter: None,
        after,
        limit: 10,
    };
    let start = queries.tail(&wanted(None)).unwrap();
    assert!(!start.behind);
    // More new rows than one poll scans, none of the wanted type but the last.
    let rows = u32::try_from(MAX_TAIL_SCAN_ROWS).unwrap() * 2 + 5;
    let batch: Vec<EventDoc> = (1..=rows)
        .map(|n| {
            event(
                n,
                0,
                json!({"type": if n == rows { "rare" } else { "busy" }}),
            )
        })
        .collect();
    for chunk in batch.chunks(4_000) {
        store.add(chunk.to_vec());
    }
    let mut cursor = start.next;
    let mut polls = Vec::new();
    loop {
        let page = queries.tail(&wanted(Some(cursor))).unwrap();
        polls.push((page.events.len(), page.behind));
        cursor = page.next;
        if !page.behind {
            break;
        }
    }
    // Two polls stop at the scan bound with nothing to show, saying so;
    // the third reaches the newest row and finds the wanted event.
    assert_eq!(polls, vec![(0, true), (0, true), (1, false)]);
}

#[test]
fn tail_refuses_a_malformed_cursor_as_a_client_error() {
    let error = shop()
        .queries()
        .tail(&TailRequest {
            types: Vec::new(),
            filter: None,
            after: Some(helios_store::query::TailCursor("x".to_owned())),
            limit: 1,
        })
        .unwrap_err();
    assert!(error.is_client_error());
}

#[test]
fn tail_refuses_a_negative_cursor_as_out_of_range_instead_of_replaying_everything() {
    let store = shop();
    for cursor in ["-1", "-9223372036854775808"] {
        let error = store
            .queries()
            .tail(&TailRequest {
                types: Vec::new(),
                filter: None,
                after: Some(helios_store::query::TailCursor(cursor.to_owned())),
                limit: 10,
            })
            .unwrap_err();
        assert!(
            error.is_client_error() && error.to_string().contains("out of range"),
            "{cursor}: {error}"
        );
    }
}

#[test]
fn export_yields_every_event_across_chunks_in_order() {
    let count = EXPORT_CHUNK_EVENTS as u32 * 2 + 7;
    let store = Store::with(
        (0..count)
            .map(|n| event(n, i64::from(n % 50), json!({"type": "t"})))
            .collect(),
    );
    let queries = store.queries();
    let exported: Vec<_> = Export::new(
        &queries,
        ExportRequest {
            select: select(None),
            sort: SortOrder::Asc,
            projection: None,
            max_events: u64::MAX,
        },
    )
    .map(|hit| hit.unwrap().cursor())
    .collect();
    assert_eq!(exported.len(), count as usize);
    assert!(exported.windows(2).all(|pair| pair[0] < pair[1]));
}

#[test]
fn export_stops_at_max_events() {
    let store = shop();
    let queries = store.queries();
    let exported = Export::new(
        &queries,
        ExportRequest {
            select: select(None),
            sort: SortOrder::Desc,
            projection: None,
            max_events: 3,
        },
    )
    .count();
    assert_eq!(exported, 3);
}

#[test]
fn regex_filters_use_rust_regex_syntax_in_sql() {
    let store = Store::with(vec![
        event(0, 0, json!({"type": "t", "msg": "Timeout after 30s"})),
        event(1, 1, json!({"type": "t", "msg": "timed out"})),
        event(2, 2, json!({"type": "t", "msg": 30})),
    ]);
    let filter = parse_text(r"msg:/(?i)^time\w*\s/").unwrap();
    let page = store
        .queries()
        .query(&Query::new(select(Some(filter))))
        .unwrap();
    assert_eq!(ids(&page.events), vec![id(1), id(0)]);
}

#[test]
fn values_are_bound_never_spliced_into_sql() {
    let store = shop();
    let hostile = "x' OR 1=1; DROP TABLE events; --";
    let filter = Filter::eq(path("plan"), Literal::String(hostile.to_owned()));
    let queries = store.queries();
    let page = queries.query(&Query::new(select(Some(filter)))).unwrap();
    assert!(page.events.is_empty());
    assert_eq!(
        queries
            .query(&Query::new(select(None)))
            .unwrap()
            .events
            .len(),
        5
    );
}

#[test]
fn field_names_with_quotes_and_dots_in_segments_still_match() {
    let store = Store::with(vec![event(
        0,
        0,
        json!({"type": "t", "say \"hi\"": 1, "a": {"b\"c": true}}),
    )]);
    let queries = store.queries();
    for filter in [
        Filter::eq(path("say \"hi\""), Literal::Int(1)),
        Filter::eq(path("a.b\"c"), Literal::Bool(true)),
    ] {
        let page = queries
            .query(&Query::new(select(Some(filter.clone()))))
            .unwrap();
        assert_eq!(ids(&page.events), vec![id(0)], "{filter:?}");
    }
}

#[test]
fn hits_serialize_with_hex_ids_and_token_cursors() {
    let store = shop();
    let mut query = Query::new(select(None));
    query.limit = 1;
    let page = store.queries().query(&query).unwrap();
    let json = serde_json::to_value(&page).unwrap();
    assert_eq!(json["events"][0]["id"], id(4).to_hex());
    assert_eq!(json["next"], format!("{}_{}", BASE_MS + 40, id(4).to_hex()));
    assert_eq!(
        Cursor::parse_token(json["next"].as_str().unwrap()),
        page.next
    );
}

#[test]
fn group_by_gives_the_same_answer_when_sqlite_takes_over_from_memory() {
    let store = shop();
    let request = GroupByRequest {
        select: select(None),
        path: path("latency_ms"),
        top_n: 3,
    };
    let in_memory = store.queries().group_by(&request).unwrap();
    let handed_over = store
        .queries()
        .with_group_keys_in_memory(2)
        .group_by(&request)
        .unwrap();
    assert_eq!(in_memory, handed_over);
    assert_eq!(in_memory.total, 5);
    assert_eq!(in_memory.other_count, 2);
}

#[test]
fn group_by_hands_over_to_sqlite_past_its_byte_budget_with_the_same_answer() {
    // Whole objects as group values: a few distinct ones, large enough
    // that a 1 KiB budget holds only one.
    let big = "x".repeat(600);
    let store = Store::with(
        (0..12)
            .map(|n| event(n, 0, json!({"type": "t", "req": {"n": n % 4, "pad": big}})))
            .collect(),
    );
    let request = GroupByRequest {
        select: select(None),
        path: path("req"),
        top_n: 2,
    };
    let in_memory = store.queries().group_by(&request).unwrap();
    let handed_over = store
        .queries()
        .with_group_key_bytes_in_memory(1024)
        .group_by(&request)
        .unwrap();
    assert_eq!(in_memory, handed_over);
    assert_eq!((in_memory.total, in_memory.other_count), (12, 6));
}

#[test]
fn a_statement_over_its_time_budget_fails_as_a_timeout() {
    let store = Store::with(
        (0..2_000)
            .map(|n| event(n, 0, json!({"type": "t", "n": n})))
            .collect(),
    );
    let request = GroupByRequest {
        select: select(None),
        path: path("n"),
        top_n: 10,
    };
    let error = store
        .queries()
        .with_query_timeout(std::time::Duration::ZERO)
        .group_by(&request)
        .unwrap_err();
    assert!(
        matches!(error, helios_store::query::QueryError::Timeout { .. }),
        "{error}"
    );
    assert_eq!(store.queries().group_by(&request).unwrap().total, 2_000);
}

#[test]
fn a_type_term_in_the_filter_uses_the_type_time_index() {
    let store = shop();
    let filter = parse_text("type:signup plan:pro").unwrap();
    let plan = store
        .queries()
        .explain(&Query::new(select(Some(filter))))
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("events_type_ts_id")),
        "{plan:?}"
    );
}

/// The steps of `plan` (from `explain`) inside the first step that
/// contains `marker`'s parent: the sub-plan that reads through `marker`.
fn sub_plan<'a>(plan: &'a [String], marker: &str) -> &'a [String] {
    let depth = |step: &String| step.len() - step.trim_start().len();
    let at = plan
        .iter()
        .position(|step| step.contains(marker))
        .unwrap_or_else(|| panic!("no step uses {marker}: {plan:?}"));
    let start = plan[..at]
        .iter()
        .rposition(|step| depth(step) < depth(&plan[at]))
        .map_or(0, |parent| parent + 1);
    let end = plan[at..]
        .iter()
        .position(|step| depth(step) < depth(&plan[at]))
        .map_or(plan.len(), |after| at + after);
    &plan[start..end]
}

#[test]
fn a_time_range_alone_reads_live_rows_off_the_time_index_without_sorting_them() {
    let store = shop();
    let query = Query::new(Selection::range(TimeRange::new(BASE_MS, BASE_MS + 10)));
    let plan = store.queries().explain(&query).unwrap();
    let live = sub_plan(&plan, "events_ts_id");
    assert!(
        !live.iter().any(|step| step.contains("TEMP B-TREE")),
        "{plan:#?}"
    );
}

#[test]
fn late_rows_are_read_through_their_buckets() {
    let store = Store::late_rows((0..3).map(|n| event(n, 0, json!({"type": "t"}))).collect());
    let query = Query::new(Selection::range(TimeRange::new(BASE_MS, BASE_MS + 10)));
    let plan = store.queries().explain(&query).unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX events_late")),
        "{plan:#?}"
    );
    let page = store.queries().query(&query).unwrap();
    assert_eq!(ids(&page.events), [id(2), id(1), id(0)]);
}

#[test]
fn tail_follows_new_events_after_retention_expired_every_event() {
    // `seq` is a plain INTEGER PRIMARY KEY: were the rows with the highest
    // numbers deleted, SQLite would hand the same numbers out again and a
    // tail cursor past them would skip the new events.
    let mut store = Store::with((0..5).map(|n| event(n, 0, json!({"type": "t"}))).collect());
    let queries = store.queries();
    let request = |after| TailRequest {
        types: Vec::new(),
        filter: None,
        after,
        limit: 10,
    };
    let at_end = queries.tail(&request(None)).unwrap().next;
    assert_eq!(at_end.0, "5");
    // Retention with every event expired: all but the newest row go.
    store.sink.delete_older_than(i64::MAX, 100).unwrap();
    store.add(vec![event(20, 0, json!({"type": "t"}))]);
    let page = queries.tail(&request(Some(at_end))).unwrap();
    assert_eq!(ids(&page.events), vec![id(20)]);
}

/// `n` events of about `bytes` each.
fn big_events(n: u32, bytes: usize) -> Vec<EventDoc> {
    let pad = "x".repeat(bytes);
    (0..n)
        .map(|i| event(i, i64::from(i), json!({"type": "big", "pad": pad})))
        .collect()
}

#[test]
fn a_page_of_big_documents_ends_at_the_byte_budget_and_its_cursor_walks_the_rest() {
    // 20 events of 1 MiB: a page of 100 would hold 20 MiB.
    let store = Store::with(big_events(20, 1 << 20));
    let queries = store.queries();
    let mut query = Query::new(select(None));
    query.limit = 100;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = queries.query(&query).unwrap();
        let bytes: usize = page
            .events
            .iter()
            .map(|hit| hit.doc.to_string().len())
            .sum();
        assert!(
            bytes <= MAX_READ_DOC_BYTES + (1 << 20) + 4096,
            "a page held {bytes} bytes"
        );
        assert!(!page.events.is_empty());
        seen.extend(ids(&page.events));
        pages += 1;
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (20, 20), "each event once");
}

#[test]
fn a_tail_poll_of_big_documents_ends_at_the_byte_budget_and_resumes_there() {
    let mut store = Store::new();
    let queries = store.queries();
    let request = |after| TailRequest {
        types: Vec::new(),
        filter: None,
        after,
        limit: MAX_TAIL_LIMIT,
    };
    let start = queries.tail(&request(None)).unwrap();
    store.add(big_events(20, 1 << 20));
    let mut cursor = Some(start.next);
    let mut seen = 0;
    let mut polls = 0;
    while seen < 20 {
        let page = queries.tail(&request(cursor.take())).unwrap();
        assert!(
            page.events.len() <= 9,
            "{} events in one poll",
            page.events.len()
        );
        seen += page.events.len();
        cursor = Some(page.next);
        polls += 1;
        assert!(polls < 10, "the tail stopped moving");
    }
    assert_eq!(seen, 20);
}
