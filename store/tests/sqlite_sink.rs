//! SqliteSink writes: round trip, idempotence by `_id`, and errors that are
//! reported rather than hidden.

mod common;

use helios_store::sqlite::{SqliteReader, SqliteSink, SQLITE_MAX_BATCH_EVENTS};
use helios_store::{Sink, SinkError, WriteOutcome};
use rusqlite::Connection;

use common::{event, event_of_app, events, id, temp_store};

fn outcome(inserted: u64, duplicates: u64) -> WriteOutcome {
    WriteOutcome {
        inserted,
        duplicates,
    }
}

#[test]
fn a_batch_is_stored_and_read_back_field_for_field() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch = events(0..10);

    assert_eq!(sink.write_batch(&batch).unwrap(), outcome(10, 0));

    let reader = SqliteReader::open(&path).unwrap();
    assert_eq!(reader.count().unwrap(), 10);
    for expected in &batch {
        let stored = reader.get(expected.id).unwrap().expect("stored");
        assert_eq!(&stored, expected);
    }
}

#[test]
fn ids_are_listed_in_insertion_order() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch: Vec<_> = [5, 1, 9, 3].into_iter().map(event).collect();
    sink.write_batch(&batch).unwrap();

    let ids = SqliteReader::open(&path).unwrap().ids().unwrap();
    assert_eq!(ids, [id(5), id(1), id(9), id(3)]);
}

#[test]
fn an_unknown_id_reads_as_none() {
    let (_dir, path) = temp_store();
    SqliteSink::open(&path)
        .unwrap()
        .write_batch(&events(0..2))
        .unwrap();
    assert_eq!(SqliteReader::open(&path).unwrap().get(id(7)).unwrap(), None);
}

#[test]
fn reinserting_a_batch_counts_every_event_as_a_duplicate_and_stores_nothing_twice() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch = events(0..5);
    sink.write_batch(&batch).unwrap();

    assert_eq!(sink.write_batch(&batch).unwrap(), outcome(0, 5));

    let reader = SqliteReader::open(&path).unwrap();
    assert_eq!(reader.count().unwrap(), 5);
    assert_eq!(
        reader.ids().unwrap(),
        batch.iter().map(|e| e.id).collect::<Vec<_>>()
    );
}

#[test]
fn a_replayed_event_keeps_the_first_stored_version() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let original = event(1);
    sink.write_batch(std::slice::from_ref(&original)).unwrap();

    let mut replay = original.clone();
    replay.doc = r#"{"changed":true}"#.to_owned();
    assert_eq!(sink.write_batch(&[replay]).unwrap(), outcome(0, 1));

    let stored = SqliteReader::open(&path).unwrap().get(original.id).unwrap();
    assert_eq!(stored, Some(original));
}

#[test]
fn a_batch_mixing_new_and_stored_ids_counts_each() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..4)).unwrap();

    // 2 and 3 are stored already; 4..8 are new.
    assert_eq!(sink.write_batch(&events(2..8)).unwrap(), outcome(4, 2));
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 8);
}

#[test]
fn an_id_repeated_within_one_batch_is_stored_once_and_counted_as_a_duplicate() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch = vec![event(1), event(2), event(1)];

    assert_eq!(sink.write_batch(&batch).unwrap(), outcome(2, 1));
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 2);
}

#[test]
fn an_empty_batch_is_a_successful_no_op() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    assert_eq!(sink.write_batch(&[]).unwrap(), outcome(0, 0));
}

#[test]
fn a_non_id_unique_violation_is_reported_not_counted_as_a_duplicate() {
    // ON CONFLICT(_id) DO NOTHING absorbs only `_id` conflicts. Under
    // INSERT OR IGNORE this batch would "succeed" with one event missing.
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE UNIQUE INDEX test_unique_doc ON events(doc);")
        .unwrap();
    let first = event(1);
    let mut same_doc = event(2);
    same_doc.doc = first.doc.clone();

    let error = sink
        .write_batch(&[event(0), first, same_doc])
        .expect_err("the UNIQUE(doc) violation must surface");

    match &error {
        SinkError::DocRefused {
            index,
            id: refused,
            reason,
        } => {
            assert_eq!(*index, 2);
            assert_eq!(*refused, id(2));
            assert!(reason.contains("UNIQUE"), "{reason}");
        }
        other => panic!("expected DocRefused, got {other}"),
    }
    assert!(!error.is_transient());
}

#[test]
fn a_refused_event_rolls_back_its_whole_batch_and_the_rest_can_be_retried() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    refuse_host(&path, "web-3");
    let mut batch = events(0..6);

    let error = sink.write_batch(&batch).expect_err("event 3 is refused");
    let SinkError::DocRefused { index, .. } = error else {
        panic!("expected DocRefused, got {error}");
    };
    assert_eq!(index, 3);
    assert_eq!(
        SqliteReader::open(&path).unwrap().count().unwrap(),
        0,
        "nothing committed"
    );

    // What a flusher does: dead-letter the refused event, retry the rest.
    batch.remove(index);
    assert_eq!(sink.write_batch(&batch).unwrap(), outcome(5, 0));
}

#[test]
fn a_batch_over_the_limit_is_refused_as_a_permanent_misuse() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    assert_eq!(sink.max_batch_events(), SQLITE_MAX_BATCH_EVENTS);
    let oversized = vec![event(1); SQLITE_MAX_BATCH_EVENTS + 1];

    let error = sink.write_batch(&oversized).expect_err("over the limit");
    assert!(matches!(error, SinkError::Permanent { .. }), "{error}");
    assert!(error.to_string().contains("max_batch_events"), "{error}");
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 0);
}

#[test]
fn a_full_size_batch_is_accepted() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch = events(0..SQLITE_MAX_BATCH_EVENTS as u32);
    assert_eq!(
        sink.write_batch(&batch).unwrap(),
        outcome(SQLITE_MAX_BATCH_EVENTS as u64, 0)
    );
}

#[test]
fn two_sinks_on_one_file_never_store_an_event_twice() {
    let (_dir, path) = temp_store();
    let mut first = SqliteSink::open(&path).unwrap();
    let mut second = SqliteSink::open(&path).unwrap();

    let a = first.write_batch(&events(0..50)).unwrap();
    let b = second.write_batch(&events(25..75)).unwrap();

    assert_eq!(a, outcome(50, 0));
    assert_eq!(b, outcome(25, 25));
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 75);
}

#[test]
fn ping_succeeds_on_a_writable_store() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.ping().unwrap();
}

#[test]
fn describe_names_the_scheme_and_file() {
    let (_dir, path) = temp_store();
    let sink = SqliteSink::open(&path).unwrap();
    assert_eq!(sink.describe(), format!("sqlite://{}", path.display()));
}

#[test]
fn multi_row_inserts_count_duplicates_inside_and_across_statements() {
    // 100 events are three 32-row statements and four single rows.
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    assert_eq!(sink.write_batch(&events(10..40)).unwrap(), outcome(30, 0));
    let mut batch = events(0..100);
    batch[5] = event(6); // a repeat inside the first statement
    batch[90] = event(1); // a repeat of the first statement, in the tail
    assert_eq!(sink.write_batch(&batch).unwrap(), outcome(68, 32));
    // 100 slots, two of them repeats: 98 distinct events.
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 98);
}

#[test]
fn a_refused_event_inside_a_multi_row_statement_is_named_by_its_batch_index() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    refuse_host(&path, "web-70");
    let error = sink
        .write_batch(&events(0..100))
        .expect_err("event 70 is refused");
    let SinkError::DocRefused {
        index, id: refused, ..
    } = error
    else {
        panic!("expected DocRefused, got {error}");
    };
    assert_eq!((index, refused), (70, id(70)));
    assert_eq!(
        SqliteReader::open(&path).unwrap().count().unwrap(),
        0,
        "nothing committed"
    );
}

/// A store-side rule refusing the events of one host, as a stricter future
/// schema might.
fn refuse_host(path: &std::path::Path, host: &str) {
    Connection::open(path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER test_refuse BEFORE INSERT ON events \
             WHEN NEW.host = '{host}' BEGIN SELECT RAISE(ABORT, 'host {host} refused'); END;"
        ))
        .unwrap();
}

#[test]
fn an_id_stored_for_another_app_is_refused_and_the_stored_event_kept() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    // 40 events: one full multi-row statement (32 rows), then single rows.
    sink.write_batch(&events(0..40)).unwrap();
    let mut intruder: Vec<_> = (0..40).map(|n| event_of_app(n, Some("other"))).collect();
    intruder.extend((40..44).map(|n| event_of_app(n, Some("other"))));

    let Err(SinkError::Refused { stored, refused }) = sink.write_batch(&intruder) else {
        panic!("another app's events with taken ids must be refused");
    };

    assert_eq!(stored, outcome(4, 0), "its events with new ids are stored");
    let indexes: Vec<usize> = refused.iter().map(|r| r.index).collect();
    assert_eq!(indexes, (0..40).collect::<Vec<_>>());
    assert!(refused.iter().all(|r| r.reason.contains("different app")));
    let reader = SqliteReader::open(&path).unwrap();
    assert_eq!(reader.count().unwrap(), 44);
    assert_eq!(
        reader.get(id(3)).unwrap(),
        Some(event(3)),
        "the first app's event is intact"
    );
}

#[test]
fn a_resend_counts_as_a_duplicate_only_from_the_same_app_or_no_app() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let anonymous: Vec<_> = (0..3).map(|n| event_of_app(n, None)).collect();
    sink.write_batch(&anonymous).unwrap();
    assert_eq!(sink.write_batch(&anonymous).unwrap(), outcome(0, 3));
    let claimed = [event_of_app(1, Some("shop"))];
    assert!(
        matches!(sink.write_batch(&claimed), Err(SinkError::Refused { .. })),
        "an app may not take over an event stored without one"
    );
}

#[test]
fn the_same_id_twice_in_one_batch_from_two_apps_keeps_the_first() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let batch = [event(7), event_of_app(7, Some("other"))];
    let Err(SinkError::Refused { stored, refused }) = sink.write_batch(&batch) else {
        panic!("the second app's event must be refused");
    };
    assert_eq!(stored, outcome(1, 0));
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].index, 1);
}

#[test]
fn a_commit_is_checkpointed_into_the_database_file_beside_the_writer() {
    const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let empty_bytes = std::fs::metadata(&path).unwrap().len();
    // A few hundred KiB of WAL: far below any inline autocheckpoint, so
    // only the sink's checkpoint thread copies it into the file.
    sink.write_batch(&events(0..2_000)).unwrap();
    let started = std::time::Instant::now();
    while std::fs::metadata(&path).unwrap().len() <= empty_bytes {
        assert!(
            started.elapsed() < DEADLINE,
            "the database file is still {empty_bytes} bytes {DEADLINE:?} after a commit"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 2_000);
}
