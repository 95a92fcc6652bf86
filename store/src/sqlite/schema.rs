//! The SQLite schema, its migrations and the connection setup both the
//! writer and the readers share (DESIGN §5).
//!
//! `PRAGMA user_version` is the schema version. `MIGRATIONS[v]` takes a file
//! from version `v` to `v + 1`, each in its own `BEGIN IMMEDIATE`
//! transaction together with the `user_version` bump, so a crash leaves the
//! file at a whole version. Migrations are append-only: never edit one that
//! has shipped, add the next.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::StoreError;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 3;

/// How long a statement waits for another connection's lock before
/// reporting busy. Long enough to ride out a retention transaction or a WAL
/// checkpoint; short enough that a stuck writer surfaces as a transient
/// error (and a retry with backoff) instead of a hung flusher.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a writer refused the write lock sleeps before it tries again.
/// SQLite's own busy handler (`busy_timeout`) backs off to 100 ms sleeps,
/// so a sink that wanted the lock while the compactor held it could sleep
/// through the gap between two of the compactor's transactions and wait
/// for the next one too (measured: a second and more of stalled inserts
/// per compaction pass). A short fixed retry takes the lock within about
/// this long of its release.
pub const BUSY_RETRY: Duration = Duration::from_millis(1);

/// How long a writer that just committed one of a run of back-to-back
/// transactions (the compactor's publish steps, its vacuum chunks) waits
/// before it begins the next: several [`BUSY_RETRY`]s, so that a writer
/// refused meanwhile takes the lock first (SQLite's lock is not fair).
pub const WRITER_TURN: Duration = Duration::from_millis(5);

/// The writers' busy handler: sleeps [`BUSY_RETRY`] and asks to retry,
/// until the retries add up to [`BUSY_TIMEOUT`]; then the statement fails
/// with `SQLITE_BUSY`.
fn retry_while_busy(retries_so_far: i32) -> bool {
    if !keeps_waiting(retries_so_far) {
        return false;
    }
    std::thread::sleep(BUSY_RETRY);
    true
}

/// Whether a writer refused `retries_so_far` times waits once more: the
/// sleeps alone add up to [`BUSY_TIMEOUT`] at most (each attempt also
/// takes time, so the wait is a little longer).
fn keeps_waiting(retries_so_far: i32) -> bool {
    let max_retries = BUSY_TIMEOUT.as_micros() / BUSY_RETRY.as_micros();
    u128::try_from(retries_so_far).is_ok_and(|n| n < max_retries)
}

/// Name of the `(type, ts, _id)` index (DESIGN §5): queries by type and time.
pub const INDEX_TYPE_TS_ID: &str = "events_type_ts_id";
/// Name of the `(ts, _id)` index (DESIGN §5): queries by time, keyset pages.
pub const INDEX_TS_ID: &str = "events_ts_id";
/// Name of the `(recv)` index: an addition to DESIGN §5 so that retention's
/// batched `DELETE ... WHERE recv < cutoff` finds its rows without a full
/// scan. It costs one more B-tree insert per event.
pub const INDEX_RECV: &str = "events_recv";
/// Name of the `(late_bucket)` index over late rows only (schema version
/// 3): rows that arrived when their time was long past, by bucket and
/// then in arrival (`seq`) order, so appending them stays cheap however
/// scattered their `ts` (see [`LATE_BUCKET_MS`]).
pub const INDEX_LATE: &str = "events_late";

/// Width of a late row's bucket, ms: `late_bucket` is `ts` rounded down to
/// a multiple of it. A late row goes to the end of its bucket in the
/// [`INDEX_LATE`] index instead of into the `ts` indexes, where rows out
/// of time order dirty a different page each (a day of events in random
/// order drained at a quarter of the in-order rate). Fewer buckets mean
/// fewer places a batch appends to, more rows a read of a short range
/// scans: a day shuffled against in order, 1 M events through
/// `SqliteSink` in batches of 32,768, ran at 0.80× with 5-minute buckets,
/// 0.90–0.92× with 15-minute ones and 1.0× with hourly ones. 15 minutes is
/// the compactor's default partition, so a partition is one bucket. Part of
/// the schema: rows keep the bucket they were written with, so this never
/// changes.
pub const LATE_BUCKET_MS: i64 = 15 * 60_000;

/// Version 0 → 1: the `events` table exactly as DESIGN §5 fixes it, its two
/// query indexes, and the retention index on `recv`.
const MIGRATION_1: &str = "
CREATE TABLE events(
    seq  INTEGER PRIMARY KEY,
    _id  BLOB NOT NULL UNIQUE,
    type TEXT NOT NULL,
    ts   INTEGER NOT NULL,
    recv INTEGER NOT NULL,
    app  TEXT,
    host TEXT,
    doc  TEXT NOT NULL
);
CREATE INDEX events_type_ts_id ON events(type, ts, _id);
CREATE INDEX events_ts_id ON events(ts, _id);
CREATE INDEX events_recv ON events(recv);
";

/// Version 1 → 2: the columnar tier's manifest (`crate::sqlite::manifest`).
/// `columnar_files` lists the published Parquet files of sealed time
/// partitions; `columnar_state.generation` grows with every change to it,
/// so a reader can tell that a compaction moved rows while it read. Kept in
/// the database so that publishing a file and deleting its rows from
/// `events` are one transaction.
const MIGRATION_2: &str = "
CREATE TABLE columnar_files(
    name            TEXT PRIMARY KEY,
    partition_start INTEGER NOT NULL,
    partition_ms    INTEGER NOT NULL,
    ts_min          INTEGER NOT NULL,
    ts_max          INTEGER NOT NULL,
    rows            INTEGER NOT NULL,
    bytes           INTEGER NOT NULL
);
CREATE TABLE columnar_state(
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO columnar_state(id, generation) VALUES (1, 0);
";

/// Version 2 → 3: late rows leave the `ts` indexes. `late_bucket` is NULL
/// for a row written while its time was recent (a *live* row, in the two
/// `ts` indexes, which become partial) and [`LATE_BUCKET_MS`]'s multiple
/// below `ts` for a *late* one (in [`INDEX_LATE`] only). Every read of the
/// hot tier by time reads both kinds (`queries::compile::HotArms`). Rows
/// already stored stay live; rebuilding the two indexes takes about as
/// long as writing them did (once, at the first open by this version).
const MIGRATION_3: &str = "
ALTER TABLE events ADD COLUMN late_bucket INTEGER;
DROP INDEX events_type_ts_id;
DROP INDEX events_ts_id;
CREATE INDEX events_type_ts_id ON events(type, ts, _id) WHERE late_bucket IS NULL;
CREATE INDEX events_ts_id ON events(ts, _id) WHERE late_bucket IS NULL;
CREATE INDEX events_late ON events(late_bucket) WHERE late_bucket IS NOT NULL;
";

/// `MIGRATIONS[v]` migrates version `v` to `v + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [MIGRATION_1, MIGRATION_2, MIGRATION_3];

/// The bucket of a late row with time `ts_ms` ([`LATE_BUCKET_MS`]).
pub(crate) fn late_bucket(ts_ms: i64) -> i64 {
    ts_ms
        .div_euclid(LATE_BUCKET_MS)
        .saturating_mul(LATE_BUCKET_MS)
}

/// `PRAGMA synchronous` value for FULL.
const SYNCHRONOUS_FULL: i64 = 2;

/// Opens (creating if needed) the database for the single writer: checks
/// the version before touching anything, sets WAL and `synchronous=FULL`,
/// then migrates to [`SCHEMA_VERSION`].
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    // No SQLITE_OPEN_URI: a path is a path, even with `?` or `#` in it.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)
        .map_err(|source| open_error(path, "opening the file", source))?;
    conn.busy_handler(Some(retry_while_busy))
        .map_err(|source| open_error(path, "setting the busy handler", source))?;

    // Refuse a newer file before changing anything in it.
    let version = user_version(&conn, path)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        // Before the WAL switch: that writes the file header, after which
        // SQLite ignores a change of auto_vacuum.
        set_incremental_vacuum(&conn, path)?;
    }
    set_journal_mode_wal(&conn, path)?;
    set_synchronous_full(&conn, path)?;
    set_writer_cache(&conn, path)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens an existing database read-only and checks it has exactly this
/// build's schema (readers never migrate: there is one writer).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|source| open_error(path, "opening the file read-only", source))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|source| open_error(path, "setting busy_timeout", source))?;
    let version = user_version(&conn, path)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version < SCHEMA_VERSION {
        return Err(StoreError::SchemaTooOld {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(conn)
}

fn open_error(path: &Path, context: &'static str, source: rusqlite::Error) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        context,
        source: Box::new(source),
    }
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        .map_err(|source| open_error(path, "reading user_version", source))
}

fn set_journal_mode_wal(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // The pragma answers with the mode actually in force, which is not WAL
    // for e.g. an in-memory database: check, don't assume.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|source| open_error(path, "setting journal_mode=WAL", source))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Pragma {
            path: path.to_owned(),
            pragma: "journal_mode",
            expected: "wal".to_owned(),
            found: mode,
        });
    }
    Ok(())
}

/// Page cache of the writer connection, KiB (negative `cache_size` is KiB):
/// the `_id` and `(type, ts, _id)` indexes take inserts all over their
/// B-trees, and keeping their inner pages cached saves reads per insert.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// WAL pages between automatic checkpoints of a writer that runs them
/// inline (the compactor): SQLite's own default, kept explicit because it
/// was measured. A 16384-page interval sped draining up by only ~4 % but
/// each checkpoint's large write and fsync stalled the journals' commits on
/// the same disk: the collector's p99 at half its maximum rate rose from
/// 5.7 ms to 19.4 ms (`loadtest/latency.sh`). The sink hands its
/// checkpoints to a thread instead (`checkpoint.rs`), which keeps them as
/// small, one per commit.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 1_000;

/// Sets the writer's page cache (see [`WRITER_CACHE_KIB`]) and checkpoint
/// interval (see [`WAL_AUTOCHECKPOINT_PAGES`]).
fn set_writer_cache(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(|source| open_error(path, "setting cache_size", source))?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(|source| open_error(path, "setting wal_autocheckpoint", source))
}

/// Keeps the connection's temporary files in memory (`temp_store =
/// MEMORY`), for the sinks' connections. A multi-row INSERT keeps a
/// statement journal (the pages it changed, to undo it alone if a row
/// fails), which SQLite spills to a temporary file past 64 KiB: a 32-row
/// statement of late rows touches a page per bucket, so out-of-order
/// batches wrote most of those pages a second time with `pwrite`
/// (measured: `subjournalPageIfRequired` the largest write path of the
/// store writer, draining a shuffled day). A statement's journal is a few
/// hundred KiB at most. Not for the compactor's connection, whose one-off
/// `VACUUM` of an old store would then build its copy in memory.
pub(crate) fn keep_temp_files_in_memory(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|source| open_error(path, "setting temp_store=MEMORY", source))
}

/// A new file gets `auto_vacuum = INCREMENTAL` (it can only be chosen
/// before the first table exists): the hot tier shrinks after compaction
/// moves its rows out, instead of keeping its high-water mark on disk (the
/// compactor runs `PRAGMA incremental_vacuum`).
fn set_incremental_vacuum(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(|source| open_error(path, "setting auto_vacuum=INCREMENTAL", source))
}

fn set_synchronous_full(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // FULL: a commit must survive power loss before the flusher moves the
    // journal checkpoint past it (DESIGN §5). Per connection, not stored.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|source| open_error(path, "setting synchronous=FULL", source))?;
    let level: i64 = conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .map_err(|source| open_error(path, "reading synchronous", source))?;
    if level != SYNCHRONOUS_FULL {
        return Err(StoreError::Pragma {
            path: path.to_owned(),
            pragma: "synchronous",
            expected: SYNCHRONOUS_FULL.to_string(),
            found: level.to_string(),
        });
    }
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // Bounded by the number of migrations; each step re-reads the version
    // inside its write transaction, so two writers opening a fresh file at
    // once do not both run the same step.
    for step in 0..MIGRATIONS.len() {
        let from = user_version(conn, path)?;
        if from >= SCHEMA_VERSION {
            break;
        }
        migrate_one(conn, path, from).map_err(|source| StoreError::Migration {
            path: path.to_owned(),
            from,
            to: from + 1,
            source: Box::new(source),
        })?;
        tracing::info!(path = %path.display(), from, to = from + 1, step, "migrated SQLite store schema");
    }
    Ok(())
}

fn migrate_one(conn: &mut Connection, path: &Path, expected_from: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if from != expected_from {
        // Someone else migrated between our read and our lock; re-check.
        tracing::debug!(path = %path.display(), from, "schema migrated concurrently");
        return Ok(());
    }
    let index =
        usize::try_from(from).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, from))?;
    let sql = MIGRATIONS
        .get(index)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, from))?;
    tx.execute_batch(sql)?;
    tx.pragma_update(None, "user_version", from + 1)?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_writer_keeps_retrying_until_its_sleeps_add_up_to_the_busy_timeout() {
        let max_retries = i32::try_from(BUSY_TIMEOUT.as_micros() / BUSY_RETRY.as_micros())
            .expect("the retries fit an i32");
        assert!(keeps_waiting(0));
        assert!(keeps_waiting(max_retries - 1));
        assert!(!keeps_waiting(max_retries));
        assert!(!keeps_waiting(-1), "SQLite never passes a negative count");
    }
}
