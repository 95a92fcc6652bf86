//! Retention: batched deletes by receive time.

mod common;

use helios_store::sqlite::{SqliteReader, SqliteSink};
use helios_store::{RetentionOutcome, Sink, SinkError};

use common::{events, id, temp_store, BASE_MS, RECV_LAG_MS};

/// Fixture event `n` was received at `BASE_MS + n + RECV_LAG_MS`.
fn recv_of(n: u32) -> i64 {
    BASE_MS + i64::from(n) + RECV_LAG_MS
}

#[test]
fn only_events_received_before_the_cutoff_are_deleted() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..20)).unwrap();

    // Events 0..12 were received before the cutoff; 12 is exactly at it.
    let outcome = sink.delete_older_than(recv_of(12), 100).unwrap();

    assert_eq!(outcome.rows_deleted, 12);
    let kept = SqliteReader::open(&path).unwrap().ids().unwrap();
    assert_eq!(kept, (12..20).map(id).collect::<Vec<_>>());
}

#[test]
fn deletes_run_in_transactions_of_at_most_the_given_size() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..25)).unwrap();

    let outcome = sink.delete_older_than(recv_of(23), 5).unwrap();

    // 23 rows: four full transactions of 5, then one of 3.
    assert_eq!(
        outcome,
        RetentionOutcome {
            rows_deleted: 23,
            transactions: 5
        }
    );
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 2);
}

#[test]
fn nothing_older_than_the_cutoff_deletes_nothing() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..3)).unwrap();

    let outcome = sink.delete_older_than(recv_of(0), 10).unwrap();

    assert_eq!(outcome, RetentionOutcome::default());
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 3);
}

#[test]
fn a_zero_row_limit_is_refused() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let error = sink
        .delete_older_than(recv_of(10), 0)
        .expect_err("zero limit");
    assert!(matches!(error, SinkError::Permanent { .. }), "{error}");
}

#[test]
fn deleted_ids_are_gone_and_can_be_stored_again() {
    // Retention removes rows for good; a later replay of a deleted id is a
    // new insert (retention is by receive time, replays come from the
    // journal well within it).
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..4)).unwrap();
    sink.delete_older_than(recv_of(3), 10).unwrap();

    let again = sink.write_batch(&events(0..3)).unwrap();
    assert_eq!((again.inserted, again.duplicates), (3, 0));
}

#[test]
fn the_newest_row_is_kept_so_seq_numbers_are_never_reused() {
    // The live tail follows `seq`; SQLite reuses the numbers of deleted
    // top rows, so retention leaves the most recently inserted row.
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    sink.write_batch(&events(0..5)).unwrap();

    let outcome = sink.delete_older_than(i64::MAX, 100).unwrap();

    assert_eq!(outcome.rows_deleted, 4);
    assert_eq!(
        SqliteReader::open(&path).unwrap().ids().unwrap(),
        vec![id(4)]
    );
    sink.write_batch(&events(10..11)).unwrap();
    let newest_seq: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT seq FROM events WHERE _id = ?1",
            [&id(10).as_bytes()[..]],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(newest_seq, 6, "a new number, not a reused one");
}
