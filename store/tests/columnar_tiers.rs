//! The embedded store's two tiers (issue 22): the compactor moves sealed
//! partitions from SQLite into columnar files, every event stays stored
//! exactly once, `_id` uniqueness holds across the tiers, and retention
//! drops whole partitions. (The query answers over both tiers are checked
//! against the reference evaluator in `query_differential.rs`.)

mod common;

use common::{event, event_of_app, events, temp_store, BASE_MS};
use helios_store::columnar::WriteOptions;
use helios_store::query::{QueryBackend, TimeRange};
use helios_store::sqlite::manifest::columnar_dir;
use helios_store::sqlite::{CompactOptions, Compactor, SqliteQueries, SqliteReader, SqliteSink};
use helios_store::{Sink, SinkError};

/// Partitions of 100 ms: the fixtures' events (`BASE_MS + n`) fill one
/// partition per hundred.
const PARTITION_MS: i64 = 100;

fn options() -> CompactOptions {
    CompactOptions {
        partition_ms: PARTITION_MS,
        hot_ms: 0,
        max_rows_per_file: 1_000,
        late_hold_ms: 0,
        write: WriteOptions::default(),
    }
}

fn hot_rows(path: &std::path::Path) -> u64 {
    SqliteReader::open(path)
        .unwrap()
        .count_by_tier()
        .unwrap()
        .hot
}

fn total(path: &std::path::Path) -> u64 {
    let queries = SqliteQueries::open(path).unwrap();
    queries
        .types(TimeRange::ALL)
        .unwrap()
        .iter()
        .map(|t| t.count)
        .sum()
}

fn partition_start(n: u32) -> i64 {
    (BASE_MS + i64::from(n)).div_euclid(PARTITION_MS) * PARTITION_MS
}

#[test]
fn compaction_moves_sealed_partitions_out_of_the_hot_tier_and_counts_each_event_once() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..300)).unwrap();
    let mut compactor = Compactor::open(&path, options()).unwrap();

    // Everything before the partition of event 250 is sealed.
    let outcome = compactor
        .compact_before(partition_start(250), usize::MAX)
        .unwrap();

    let moved = (0..300)
        .filter(|n| BASE_MS + i64::from(*n) < partition_start(250))
        .count() as u64;
    assert_eq!(outcome.rows_moved, moved);
    assert!(outcome.files_written >= 2, "{outcome:?}");
    assert_eq!(hot_rows(&path), 300 - moved);
    assert_eq!(total(&path), 300);
}

#[test]
fn the_event_with_the_highest_seq_stays_hot() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..50)).unwrap();
    let mut compactor = Compactor::open(&path, options()).unwrap();

    compactor.compact_before(i64::MAX, usize::MAX).unwrap();

    assert_eq!(hot_rows(&path), 1);
    assert_eq!(total(&path), 50);
}

/// A store holding events 0..100, all compacted into columnar files, and
/// event 5000, hot (the highest `seq` stays), with its sink.
fn events_0_to_100_compacted() -> (tempfile::TempDir, std::path::PathBuf, SqliteSink) {
    let (dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..100)).unwrap();
    sink.write_batch(&[event(5_000)]).unwrap();
    Compactor::open(&path, options())
        .unwrap()
        .compact_before(i64::MAX, usize::MAX)
        .unwrap();
    (dir, path, sink)
}

#[test]
fn a_resend_of_a_compacted_event_is_a_duplicate_not_a_second_copy() {
    let (_dir, path, mut sink) = events_0_to_100_compacted();
    assert_eq!(hot_rows(&path), 1);

    // The resent batch mixes compacted events and a new one.
    let mut resent = events(10..20);
    resent.push(event(150));
    let outcome = sink.write_batch(&resent).unwrap();

    assert_eq!(outcome.duplicates, 10);
    assert_eq!(outcome.inserted, 1);
    assert_eq!(total(&path), 102);
}

#[test]
fn a_compacted_id_sent_by_another_app_is_refused_not_stored() {
    let (_dir, path, mut sink) = events_0_to_100_compacted();

    let batch = vec![event(1), event_of_app(7, Some("other")), event(150)];
    let error = sink.write_batch(&batch).unwrap_err();

    let SinkError::Refused { stored, refused } = error else {
        panic!("expected a refusal, got {error:?}");
    };
    assert_eq!((stored.inserted, stored.duplicates), (1, 1));
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].index, 1);
    assert_eq!(total(&path), 102);
}

#[test]
fn a_file_left_unpublished_by_a_crash_is_removed_when_the_compactor_opens() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..10)).unwrap();
    let partition = columnar_dir(&path).join("2026-11-30T19-21-43Z");
    std::fs::create_dir_all(&partition).unwrap();
    let stray = partition.join("000000000009-stray.parquet");
    let temp = partition.join("000000000009-stray.parquet.tmp");
    std::fs::write(&stray, b"half a file").unwrap();
    std::fs::write(&temp, b"half a file").unwrap();

    let _compactor = Compactor::open(&path, options()).unwrap();

    assert!(!stray.exists());
    assert!(!temp.exists());
    assert_eq!(total(&path), 10);
}

#[test]
fn retention_drops_whole_columnar_partitions_by_ts() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..300)).unwrap();
    let mut compactor = Compactor::open(&path, options()).unwrap();
    compactor.compact_before(i64::MAX, usize::MAX).unwrap();
    let before = total(&path);

    // The cutoff falls inside the second partition: only the first goes.
    let cutoff = partition_start(150) + PARTITION_MS / 2;
    let outcome = compactor.drop_partitions_before(cutoff).unwrap();

    assert!(outcome.files_removed >= 1);
    let first_partition = (0..300)
        .filter(|n| BASE_MS + i64::from(*n) < partition_start(150))
        .count() as u64;
    assert_eq!(total(&path), before - first_partition);
}

#[test]
fn queries_read_events_in_both_tiers_after_compaction_runs_beside_them() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..200)).unwrap();
    let queries = SqliteQueries::open(&path).unwrap();
    assert_eq!(queries.types(TimeRange::ALL).unwrap()[0].count, 200);

    // The same reader, with its pooled connections, after files appear.
    Compactor::open(&path, options())
        .unwrap()
        .compact_before(partition_start(150), usize::MAX)
        .unwrap();

    assert_eq!(queries.types(TimeRange::ALL).unwrap()[0].count, 200);
    let hit = queries
        .get(common::id(3))
        .unwrap()
        .expect("a columnar event by id");
    assert_eq!(hit.stored_text.as_deref(), Some(event(3).doc.as_str()));
}

#[test]
fn late_events_of_a_compacted_partition_wait_for_a_file_s_worth_or_the_hold_time() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..300)).unwrap();
    let hold_ms = 60_000;
    let mut compactor = Compactor::open(
        &path,
        CompactOptions {
            late_hold_ms: hold_ms,
            max_rows_per_file: 50,
            ..options()
        },
    )
    .unwrap();
    let now_ms = BASE_MS + 1_000;
    compactor.compact_sealed(now_ms, usize::MAX).unwrap();
    let files = |path: &std::path::Path| {
        SqliteReader::open(path)
            .unwrap()
            .count_by_tier()
            .unwrap()
            .columnar_files
    };
    let files_before = files(&path);

    // Ten late events for the first partition (received "now"): too few
    // for a file, too recent to move.
    let late: Vec<_> = (0..10)
        .map(|n| event_with_recv(10_000 + n, n, now_ms))
        .collect();
    sink.write_batch(&late).unwrap();
    compactor.compact_sealed(now_ms, usize::MAX).unwrap();
    assert_eq!(files(&path), files_before, "late events waited");

    // Once the oldest has waited the hold time, they go: one more file,
    // and one for event 299, hot until now as the highest `seq`.
    compactor
        .compact_sealed(now_ms + hold_ms + 1, usize::MAX)
        .unwrap();
    assert_eq!(files(&path), files_before + 2);
    assert_eq!(total(&path), 310);
}

/// Event `n` with the time of event `ts_of` and received at `recv_ms`.
fn event_with_recv(n: u32, ts_of: u32, recv_ms: i64) -> helios_store::EventDoc {
    let mut event = event(n);
    event.ts_ms = BASE_MS + i64::from(ts_of);
    event.recv_ms = recv_ms;
    event
}

#[test]
fn the_hot_tier_file_shrinks_once_its_rows_moved_into_columnar_files() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    for chunk in events(0..20_000).chunks(4_000) {
        sink.write_batch(chunk).unwrap();
    }
    let pages = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .unwrap()
    };
    let before = pages();

    Compactor::open(
        &path,
        CompactOptions {
            max_rows_per_file: 5_000,
            ..options()
        },
    )
    .unwrap()
    .compact_before(i64::MAX, usize::MAX)
    .unwrap();

    let after = pages();
    assert!(after * 4 < before, "{before} pages before, {after} after");
}

#[test]
fn a_store_created_without_auto_vacuum_is_rewritten_once_to_shrink() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    for chunk in events(0..20_000).chunks(4_000) {
        sink.write_batch(chunk).unwrap();
    }
    drop(sink);
    // As a store made before schema version 2 is.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA auto_vacuum = NONE; VACUUM;")
        .unwrap();
    let pragma = |name: &str| -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, name, |row| row.get(0))
            .unwrap()
    };
    assert_eq!(pragma("auto_vacuum"), 0);
    let before = pragma("page_count");

    Compactor::open(
        &path,
        CompactOptions {
            max_rows_per_file: 5_000,
            ..options()
        },
    )
    .unwrap()
    .compact_before(i64::MAX, usize::MAX)
    .unwrap();

    assert_eq!(pragma("auto_vacuum"), 2, "INCREMENTAL from now on");
    let after = pragma("page_count");
    assert!(after * 4 < before, "{before} pages before, {after} after");
    assert_eq!(total(&path), 20_000);
}

/// Event `n` as `event(n)`, with a `coupon` member when `coupon` is set.
fn event_with_coupon(n: u32, coupon: bool) -> helios_store::EventDoc {
    if !coupon {
        return event(n);
    }
    event_with_text(
        n,
        &format!(r#"{{"type":"signup","n":{n},"plan":"pro","coupon":"c-{n}"}}"#),
    )
}

/// Event `n`'s envelope (as `event(n)`) around the members of `text`.
fn event_with_text(n: u32, text: &str) -> helios_store::EventDoc {
    let base = event(n);
    let envelope = helios_store::Envelope {
        id: base.id,
        ts_ms: base.ts_ms,
        recv_ms: base.recv_ms,
        app: base.app.as_deref(),
        ts_raw: helios_store::TsRaw::None,
    };
    helios_store::EventDoc::from_event_json(text, &envelope).unwrap()
}

fn top_values(path: &std::path::Path, field: &str) -> helios_store::query::GroupBy {
    let request = helios_store::query::GroupByRequest {
        select: helios_store::query::Selection::range(TimeRange::ALL),
        path: helios_store::query::FieldPath::parse(field).unwrap(),
        top_n: 10,
    };
    SqliteQueries::open(path)
        .unwrap()
        .group_by(&request)
        .unwrap()
}

/// A store of 100 events with a `plan` each (a column by its share) and a
/// `coupon` in 5 of them (below the share), plus event 5000, which stays
/// hot; `compact` (when given) then moves the 100 into columnar files.
fn coupon_store(compact: Option<CompactOptions>) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch: Vec<_> = (0..100)
        .map(|n| event_with_coupon(n, n % 20 == 0))
        .collect();
    sink.write_batch(&batch).unwrap();
    sink.write_batch(&[event(5_000)]).unwrap();
    if let Some(options) = compact {
        Compactor::open(&path, options)
            .unwrap()
            .compact_before(i64::MAX, usize::MAX)
            .unwrap();
    }
    (dir, path)
}

#[test]
fn top_values_and_field_names_say_whether_the_field_is_a_column_of_every_file_read() {
    let (_hot_dir, hot) = coupon_store(None);
    assert_eq!(top_values(&hot, "plan").column, None, "hot tier only");

    let (_dir, path) = coupon_store(Some(options()));

    let plan = top_values(&path, "plan");
    assert_eq!((plan.column, plan.total), (Some(true), 101));
    let coupon = top_values(&path, "coupon");
    assert_eq!(coupon.column, Some(false));
    let counts: Vec<u64> = coupon.groups.iter().map(|g| g.count).collect();
    assert_eq!(counts, [96, 1, 1, 1, 1, 1], "counted from the documents");
    assert_eq!(
        top_values(&path, "type").column,
        Some(true),
        "envelope column"
    );
    let names = SqliteQueries::open(&path)
        .unwrap()
        .field_names(TimeRange::ALL, 1_000)
        .unwrap();
    let column_of = |name: &str| names.iter().find(|f| f.path == name).map(|f| f.column);
    assert_eq!(column_of("plan"), Some(Some(true)));
    assert_eq!(column_of("coupon"), Some(Some(false)));
}

#[test]
fn a_field_the_operator_pinned_is_a_column_however_rare() {
    let pinned = CompactOptions {
        write: WriteOptions {
            // A pin no event holds is harmless.
            pinned_fields: vec!["absent".to_owned(), "coupon".to_owned()],
            ..WriteOptions::default()
        },
        ..options()
    };
    let (_dir, path) = coupon_store(Some(pinned));

    let coupon = top_values(&path, "coupon");
    assert_eq!(coupon.column, Some(true), "5 of 100 rows, pinned");
    assert_eq!(coupon.total, 101);
    let counts: Vec<u64> = coupon.groups.iter().map(|g| g.count).collect();
    assert_eq!(
        counts,
        [96, 1, 1, 1, 1, 1],
        "missing first, then each coupon"
    );
    assert_eq!(top_values(&path, "plan").column, Some(true), "by its share");
    assert_eq!(top_values(&path, "absent").column, Some(false));
}

/// Event `n` with `user` `u-{k}`, `k` from `user_of(n)`, or no `user`
/// when `user_of` says `None`.
fn event_with_user(n: u32, user: Option<u32>) -> helios_store::EventDoc {
    let text = match user {
        Some(k) => format!(r#"{{"type":"visit","n":{n},"user":"u-{k}"}}"#),
        None => format!(r#"{{"type":"visit","n":{n}}}"#),
    };
    event_with_text(n, &text)
}

/// 400 events whose `user`s have uneven counts (quadratic residues mod
/// 29, a seventh missing), the older half compacted, the rest hot.
fn user_store(user_of: impl Fn(u32) -> Option<u32>) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch: Vec<_> = (0..400).map(|n| event_with_user(n, user_of(n))).collect();
    sink.write_batch(&batch).unwrap();
    Compactor::open(&path, options())
        .unwrap()
        .compact_before(BASE_MS + 200, usize::MAX)
        .unwrap();
    let tiers = SqliteReader::open(&path).unwrap().count_by_tier().unwrap();
    assert!(tiers.hot > 0 && tiers.columnar > 0, "{tiers:?}");
    (dir, path)
}

fn skewed_user(n: u32) -> Option<u32> {
    (n % 7 != 0).then_some(n * n % 29)
}

#[test]
fn a_field_with_more_values_than_one_pass_holds_is_ranked_exactly_in_passes() {
    use helios_store::query::{FieldPath, GroupByRequest, HistogramRequest, Selection, Split};
    let (_dir, path) = user_store(skewed_user);
    let user = FieldPath::parse("user").unwrap();
    let group_by = GroupByRequest {
        select: Selection::range(TimeRange::ALL),
        path: user.clone(),
        top_n: 5,
    };
    let histogram = HistogramRequest {
        select: Selection::range(TimeRange::new(BASE_MS, BASE_MS + 400)),
        bucket_ms: 50,
        split_by: Some(Split {
            path: user,
            top_n: 3,
        }),
    };
    let one_pass = SqliteQueries::open(&path).unwrap();
    let want_groups = one_pass.group_by(&group_by).unwrap();
    let want_histogram = one_pass.histogram(&histogram).unwrap();
    assert_eq!(want_groups.total, 400);
    assert_eq!(want_groups.groups.len(), 5);
    // 15 distinct users and the missing field, so every cap here takes
    // passes (how many depends on how the values hash).
    for cap in [2, 5, 13] {
        let passes = SqliteQueries::open(&path)
            .unwrap()
            .with_tiered_group_keys(cap);
        assert_eq!(
            passes.group_by(&group_by).unwrap(),
            want_groups,
            "cap {cap}"
        );
        assert_eq!(
            passes.histogram(&histogram).unwrap(),
            want_histogram,
            "cap {cap}"
        );
    }
}

#[test]
fn a_field_with_more_values_than_every_pass_holds_is_refused() {
    use helios_store::query::{FieldPath, GroupByRequest, QueryError, Selection};
    use helios_store::sqlite::MAX_TALLY_PASSES;
    // 400 distinct users: with one value a pass, 64 passes cannot hold them.
    let (_dir, path) = user_store(Some);
    const { assert!(400 > MAX_TALLY_PASSES) };
    let request = GroupByRequest {
        select: Selection::range(TimeRange::ALL),
        path: FieldPath::parse("user").unwrap(),
        top_n: 5,
    };
    let error = SqliteQueries::open(&path)
        .unwrap()
        .with_tiered_group_keys(1)
        .group_by(&request)
        .unwrap_err();
    assert!(matches!(error, QueryError::TooManyGroups(_)), "{error:?}");
    assert!(error.is_client_error());
}

#[test]
fn late_rows_of_partitions_made_of_whole_buckets_land_in_their_own_partition_s_files() {
    use helios_store::sqlite::LATE_BUCKET_MS;
    // Partitions of two buckets; late rows spread over six partitions,
    // written out of time order.
    let partition_ms = 2 * LATE_BUCKET_MS;
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap().with_late_after_ms(0);
    let spread: Vec<_> = (0..600_u32)
        .map(|n| {
            let mut e = event(n);
            e.ts_ms = BASE_MS + i64::from((n * 7_919) % 600) * (6 * partition_ms / 600);
            e
        })
        .collect();
    sink.write_batch(&spread).unwrap();
    let options = CompactOptions {
        partition_ms,
        max_rows_per_file: 40,
        ..options()
    };
    Compactor::open(&path, options)
        .unwrap()
        .compact_before(i64::MAX, usize::MAX)
        .unwrap();
    let tiers = SqliteReader::open(&path).unwrap().count_by_tier().unwrap();
    assert_eq!((tiers.hot, tiers.columnar), (1, 599), "{tiers:?}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut files = conn
        .prepare("SELECT partition_start, partition_ms, ts_min, ts_max FROM columnar_files")
        .unwrap();
    let files: Vec<(i64, i64, i64, i64)> = files
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(files.len() >= 15, "{} files", files.len());
    for (start, width, ts_min, ts_max) in files {
        assert_eq!(width, partition_ms);
        assert_eq!(start.rem_euclid(partition_ms), 0);
        assert!(
            start <= ts_min && ts_max < start + width,
            "{start} {ts_min} {ts_max}"
        );
    }
    assert_eq!(total(&path), 600);
}
