//! The SQLite file after open: pragmas, table and indexes as DESIGN §5 fixes
//! them, and schema-version handling.

mod common;

use helios_store::query::{Query, QueryBackend, Selection, TimeRange};
use helios_store::sqlite::{
    SqliteQueries, SqliteReader, SqliteSink, BUSY_TIMEOUT, INDEX_LATE, INDEX_RECV, INDEX_TS_ID,
    INDEX_TYPE_TS_ID, INLINE_CHECKPOINT_PAGES, LATE_BUCKET_MS, SCHEMA_VERSION,
};
use helios_store::StoreError;
use rusqlite::Connection;

use common::temp_store;
use helios_store::Sink;

/// `(name, declared type, not null, primary key)` of each column.
fn columns(conn: &Connection) -> Vec<(String, String, bool, bool)> {
    let mut stmt = conn.prepare("PRAGMA table_info(events)").unwrap();
    stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>("name")?,
            row.get::<_, String>("type")?,
            row.get::<_, i64>("notnull")? == 1,
            row.get::<_, i64>("pk")? == 1,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Column names of index `name`, in key order.
fn index_columns(conn: &Connection, name: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("PRAGMA index_info({name})")).unwrap();
    stmt.query_map([], |row| row.get::<_, String>("name"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// `(name, unique)` of every index on `events`, sorted by name.
fn indexes(conn: &Connection) -> Vec<(String, bool)> {
    let mut stmt = conn.prepare("PRAGMA index_list(events)").unwrap();
    let mut list: Vec<(String, bool)> = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>("name")?,
                row.get::<_, i64>("unique")? == 1,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    list.sort();
    list
}

fn set_user_version(path: &std::path::Path, version: i64) {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
}

#[test]
fn writer_connection_uses_wal_synchronous_full_and_its_own_busy_handler() {
    let (_dir, path) = temp_store();
    let sink = SqliteSink::open(&path).unwrap();
    let pragmas = sink.pragmas().unwrap();
    assert_eq!(pragmas.journal_mode, "wal");
    assert_eq!(pragmas.synchronous, 2, "2 = FULL");
    assert_eq!(pragmas.user_version, SCHEMA_VERSION);
    assert_eq!(
        pragmas.busy_timeout_ms, 0,
        "the writer's busy handler replaces SQLite's busy_timeout"
    );
    assert_eq!(
        pragmas.temp_store, 2,
        "2 = MEMORY: a statement journal never spills to a file"
    );
    assert_eq!(
        pragmas.wal_autocheckpoint, INLINE_CHECKPOINT_PAGES,
        "the writer checkpoints inline only as a backstop"
    );
}

#[test]
fn a_writer_refused_the_lock_waits_and_writes_once_the_holder_commits() {
    let (_dir, path) = temp_store();
    let mut sink = SqliteSink::open(&path).unwrap();
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let held = std::time::Duration::from_millis(300);
    assert!(held < BUSY_TIMEOUT);
    let release = std::thread::spawn(move || {
        std::thread::sleep(held);
        holder.execute_batch("COMMIT").unwrap();
    });
    let started = std::time::Instant::now();
    let outcome = sink.write_batch(&[common::event(1)]);
    release.join().unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
    assert!(
        started.elapsed() >= held,
        "the insert waited for the lock: {:?}",
        started.elapsed()
    );
}

#[test]
fn wal_mode_and_schema_version_are_persisted_in_the_file() {
    let (_dir, path) = temp_store();
    drop(SqliteSink::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn a_new_store_can_give_free_pages_back_with_incremental_vacuum() {
    let (_dir, path) = temp_store();
    drop(SqliteSink::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let auto_vacuum: i64 = conn
        .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
        .unwrap();
    assert_eq!(auto_vacuum, 2, "INCREMENTAL");
}

#[test]
fn events_table_has_exactly_the_designed_columns() {
    let (_dir, path) = temp_store();
    drop(SqliteSink::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let expected = [
        ("seq", "INTEGER", false, true),
        ("_id", "BLOB", true, false),
        ("type", "TEXT", true, false),
        ("ts", "INTEGER", true, false),
        ("recv", "INTEGER", true, false),
        ("app", "TEXT", false, false),
        ("host", "TEXT", false, false),
        ("doc", "TEXT", true, false),
        ("late_bucket", "INTEGER", false, false),
    ]
    .map(|(name, ty, not_null, pk)| (name.to_owned(), ty.to_owned(), not_null, pk));
    assert_eq!(columns(&conn), expected);
}

#[test]
fn indexes_are_the_designed_two_plus_unique_id_and_retention_on_recv() {
    let (_dir, path) = temp_store();
    drop(SqliteSink::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();

    let list = indexes(&conn);
    let unique_id_index = list
        .iter()
        .find(|(name, unique)| *unique && index_columns(&conn, name) == ["_id"])
        .map(|(name, _)| name.clone());
    assert!(
        unique_id_index.is_some(),
        "UNIQUE(_id) index missing: {list:?}"
    );
    let named: Vec<&str> = list
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !name.starts_with("sqlite_autoindex"))
        .collect();
    assert_eq!(
        named,
        [INDEX_LATE, INDEX_RECV, INDEX_TS_ID, INDEX_TYPE_TS_ID]
    );

    assert_eq!(
        index_columns(&conn, INDEX_TYPE_TS_ID),
        ["type", "ts", "_id"]
    );
    assert_eq!(index_columns(&conn, INDEX_TS_ID), ["ts", "_id"]);
    assert_eq!(index_columns(&conn, INDEX_RECV), ["recv"]);
    assert_eq!(index_columns(&conn, INDEX_LATE), ["late_bucket"]);
    for (index, only) in [
        (INDEX_TS_ID, "late_bucket IS NULL"),
        (INDEX_TYPE_TS_ID, "late_bucket IS NULL"),
        (INDEX_LATE, "late_bucket IS NOT NULL"),
    ] {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [index],
                |row| row.get(0),
            )
            .unwrap();
        assert!(sql.ends_with(&format!("WHERE {only}")), "{sql}");
    }
}

/// The shipped schema of version 2 (migrations 1 and 2), as a file of that
/// version holds it.
const SCHEMA_V2: &str = "
CREATE TABLE events(seq INTEGER PRIMARY KEY, _id BLOB NOT NULL UNIQUE, type TEXT NOT NULL,
    ts INTEGER NOT NULL, recv INTEGER NOT NULL, app TEXT, host TEXT, doc TEXT NOT NULL);
CREATE INDEX events_type_ts_id ON events(type, ts, _id);
CREATE INDEX events_ts_id ON events(ts, _id);
CREATE INDEX events_recv ON events(recv);
CREATE TABLE columnar_files(name TEXT PRIMARY KEY, partition_start INTEGER NOT NULL,
    partition_ms INTEGER NOT NULL, ts_min INTEGER NOT NULL, ts_max INTEGER NOT NULL,
    rows INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TABLE columnar_state(id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
INSERT INTO columnar_state(id, generation) VALUES (1, 0);
PRAGMA user_version = 2;
";

#[test]
fn a_version_2_store_is_migrated_with_its_events_kept_as_live_rows() {
    let (_dir, path) = temp_store();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V2).unwrap();
        for (n, event) in common::events(0..3).iter().enumerate() {
            conn.execute(
                "INSERT INTO events (_id, type, ts, recv, app, host, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    &event.id.as_bytes()[..],
                    event.event_type,
                    event.ts_ms + n as i64,
                    event.recv_ms,
                    event.app,
                    event.host,
                    event.doc
                ],
            )
            .unwrap();
        }
    }
    let sink = SqliteSink::open(&path).unwrap();
    assert_eq!(sink.pragmas().unwrap().user_version, SCHEMA_VERSION);
    drop(sink);
    let conn = Connection::open(&path).unwrap();
    let late: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE late_bucket IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(late, 0, "rows stored before version 3 are live rows");
    let queries = SqliteQueries::open(&path).unwrap();
    let page = queries
        .query(&Query::new(Selection::range(TimeRange::ALL)))
        .unwrap();
    assert_eq!(page.events.len(), 3);
}

#[test]
fn an_event_older_than_the_late_age_is_written_to_its_bucket_and_a_recent_one_is_not() {
    let (_dir, path) = temp_store();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut old = common::events(0..1).remove(0);
    old.ts_ms = now_ms - 3_600_000;
    let mut recent = common::events(1..2).remove(0);
    recent.ts_ms = now_ms;
    let mut sink = SqliteSink::open(&path).unwrap().with_late_after_ms(600_000);
    sink.write_batch(&[old.clone(), recent.clone()]).unwrap();
    let conn = Connection::open(&path).unwrap();
    let bucket = |id: helios_store::ObjectId| -> Option<i64> {
        conn.query_row(
            "SELECT late_bucket FROM events WHERE _id = ?1",
            [&id.as_bytes()[..]],
            |row| row.get(0),
        )
        .unwrap()
    };
    let old_bucket = bucket(old.id).expect("an hour-old event is late");
    assert_eq!(old_bucket % LATE_BUCKET_MS, 0);
    assert!(old_bucket <= old.ts_ms && old.ts_ms < old_bucket + LATE_BUCKET_MS);
    assert_eq!(bucket(recent.id), None, "a current event is live");
}

#[test]
fn reopening_a_current_store_keeps_its_data_and_version() {
    let (_dir, path) = temp_store();
    {
        let mut sink = SqliteSink::open(&path).unwrap();
        sink.write_batch(&common::events(0..3)).unwrap();
    }
    let sink = SqliteSink::open(&path).unwrap();
    assert_eq!(sink.pragmas().unwrap().user_version, SCHEMA_VERSION);
    assert_eq!(SqliteReader::open(&path).unwrap().count().unwrap(), 3);
}

#[test]
fn a_store_from_a_newer_schema_version_refuses_to_open() {
    let (_dir, path) = temp_store();
    drop(SqliteSink::open(&path).unwrap());
    set_user_version(&path, SCHEMA_VERSION + 1);

    let error = SqliteSink::open(&path).expect_err("newer schema must not open");
    assert!(
        matches!(
            error,
            StoreError::SchemaTooNew { found, supported, .. }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("newer"), "{message}");
    assert!(message.contains("events.db"), "names the file: {message}");

    let reader_error = SqliteReader::open(&path).expect_err("reader refuses too");
    assert!(
        matches!(reader_error, StoreError::SchemaTooNew { .. }),
        "{reader_error}"
    );
}

#[test]
fn a_newer_store_is_left_untouched_by_the_refused_open() {
    let (_dir, path) = temp_store();
    // A file some future version wrote, in rollback-journal mode.
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future(x); PRAGMA user_version = 99;")
            .unwrap();
    }
    assert!(SqliteSink::open(&path).is_err());
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "journal mode not switched to WAL");
}

#[test]
fn a_reader_refuses_a_file_that_was_never_initialized() {
    let (_dir, path) = temp_store();
    drop(Connection::open(&path).unwrap());
    let error = SqliteReader::open(&path).expect_err("empty file is not a store");
    assert!(
        matches!(error, StoreError::SchemaTooOld { found: 0, .. }),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_open_error() {
    let (_dir, path) = temp_store();
    std::fs::write(
        &path,
        b"this is not an SQLite database, just some text padding it out",
    )
    .unwrap();
    let error = SqliteSink::open(&path).expect_err("not a database");
    assert!(matches!(error, StoreError::Open { .. }), "{error}");
    assert!(error.to_string().contains("events.db"), "{error}");
}

#[test]
fn a_missing_directory_is_a_clear_open_error() {
    let (dir, _) = temp_store();
    let path = dir.path().join("no-such-dir").join("events.db");
    let error = SqliteSink::open(&path).expect_err("directory does not exist");
    assert!(matches!(error, StoreError::Open { .. }), "{error}");
    assert!(error.to_string().contains("no-such-dir"), "{error}");
}
