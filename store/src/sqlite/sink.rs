//! [`SqliteSink`]: the single writer of an SQLite store.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, TransactionBehavior};

use super::checkpoint::Checkpointer;
use super::classify::{classify, classify_row};
use super::cold_ids::{ColdIds, ColdVerdict};
use super::compact::{DEFAULT_HOT_MS, DEFAULT_PARTITION_MS};
use super::manifest::columnar_dir;
use super::schema::{keep_temp_files_in_memory, late_bucket, open_writer};
use crate::error::StoreError;
use crate::model::EventDoc;
use crate::sink::{RefusedEvent, RetentionOutcome, Sink, SinkError, WriteOutcome};

/// Most events per batch transaction. A transaction writes each index page
/// it dirtied once, however many of its rows share the page: events out of
/// time order dirty a different page of the `ts` indexes per row, so
/// larger transactions are what amortises them (a 1 M event drain out of
/// order: 21.9 k events/s at 4,096, 40.5 k at 32,768, 54.9 k at 65,536;
/// BENCHMARKS.md). The cap bounds the write lock's hold (65,536 events in
/// time order go in at about 190 k events/s on a 2-core VM: a third of a
/// second) and the collector's memory (peak 266 MB at 65,536 against
/// 107 MB at 4,096 in that drain).
pub const SQLITE_MAX_BATCH_EVENTS: usize = 65_536;

/// Insert one event; an `_id` already present is a duplicate. `ON
/// CONFLICT(_id) DO NOTHING` rather than `INSERT OR IGNORE`: OR IGNORE would
/// also silently skip a row violating NOT NULL or any other constraint,
/// losing an event while reporting it stored.
const INSERT_SQL: &str = "INSERT INTO events (_id, type, ts, recv, app, host, doc, late_bucket) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     ON CONFLICT(_id) DO NOTHING";

/// Whether the row holding `_id` ?1 belongs to app ?2 (`IS`: NULL-safe, an
/// event stored without an app matches only another without one).
const SAME_APP_SQL: &str = "SELECT app IS ?2 FROM events WHERE _id = ?1";

/// Rows per multi-row INSERT: one statement run per this many events
/// instead of one per event (fewer VDBE starts and bind calls); 32 × 8
/// parameters stays far below SQLite's parameter limit.
const ROWS_PER_INSERT: usize = 32;
/// Parameters bound per row.
const PARAMS_PER_ROW: usize = 8;

/// Default age past which an arriving event is written as a *late* row
/// (schema version 3, [`super::LATE_BUCKET_MS`]): its time partition is
/// sealed already under the compactor's defaults (a partition ends at most
/// [`DEFAULT_PARTITION_MS`] after its oldest event and stays hot
/// [`DEFAULT_HOT_MS`] more), so the compactor moves it out soon and the
/// `ts` indexes would only have paid to take it in. The age is a guess from
/// the wall clock: a wrong one (a clock jump, other compactor options)
/// costs speed, never an answer.
pub const DEFAULT_LATE_AFTER_MS: i64 = DEFAULT_PARTITION_MS + DEFAULT_HOT_MS;

/// The `ROWS_PER_INSERT`-row form of [`INSERT_SQL`]: `changes()` of one run
/// counts the rows it inserted, so the rest of its rows were duplicates
/// (an `_id` repeated inside the statement conflicts with the first).
fn multi_row_insert_sql() -> String {
    let rows: Vec<String> = (0..ROWS_PER_INSERT)
        .map(|r| {
            let first = r * PARAMS_PER_ROW + 1;
            let params: Vec<String> = (first..first + PARAMS_PER_ROW)
                .map(|p| format!("?{p}"))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO events (_id, type, ts, recv, app, host, doc, late_bucket) VALUES {} \
         ON CONFLICT(_id) DO NOTHING",
        rows.join(", ")
    )
}

/// Delete up to `?2` of the rows received before `?1`, oldest first. SQLite
/// is not built with `DELETE ... LIMIT`, hence the sub-select on `seq`.
/// The row with the highest `seq` is never deleted: `seq` is a plain
/// INTEGER PRIMARY KEY, and SQLite would hand the numbers of deleted top
/// rows out again, which a live tail following `seq` would skip.
const DELETE_OLDER_SQL: &str = "DELETE FROM events WHERE seq IN \
     (SELECT seq FROM events WHERE recv < ?1 \
      AND seq < (SELECT max(seq) FROM events) ORDER BY recv LIMIT ?2)";

/// Pragmas of the writer connection, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlitePragmas {
    /// `PRAGMA journal_mode` (`"wal"`).
    pub journal_mode: String,
    /// `PRAGMA synchronous` (2 = FULL).
    pub synchronous: i64,
    /// `PRAGMA user_version`, the schema version.
    pub user_version: i64,
    /// `PRAGMA busy_timeout`, in milliseconds: 0, as the writer waits for
    /// the write lock in its own busy handler ([`super::BUSY_RETRY`]
    /// sleeps up to [`super::BUSY_TIMEOUT`]), which replaces SQLite's.
    pub busy_timeout_ms: i64,
    /// `PRAGMA temp_store` (2 = MEMORY: statement journals never spill to
    /// a file; `schema::keep_temp_files_in_memory`).
    pub temp_store: i64,
    /// `PRAGMA wal_autocheckpoint`, in pages: the inline backstop
    /// ([`super::INLINE_CHECKPOINT_PAGES`]); a thread of the sink's own
    /// checkpoints after every commit.
    pub wal_autocheckpoint: i64,
}

/// Writes batches of events to an SQLite file, one transaction per batch.
///
/// There must be one writer per file in spirit (DESIGN §5); several sinks on
/// one file (one per flusher) are safe, they serialize on SQLite's write
/// lock and wait up to [`super::BUSY_TIMEOUT`] for it, retrying every
/// [`super::BUSY_RETRY`].
pub struct SqliteSink {
    conn: Connection,
    path: PathBuf,
    /// [`multi_row_insert_sql`], built once.
    insert_many_sql: String,
    /// `_id` uniqueness against the columnar tier.
    cold: ColdIds,
    /// Events older than this on arrival are written as late rows, ms.
    late_after_ms: i64,
    /// Checkpoints the WAL beside this writer, told after each commit.
    checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteSink {
    /// Opens or creates the store at `path` (its directory must exist),
    /// applying the pragmas and migrations of DESIGN §5.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = open_writer(&path)?;
        keep_temp_files_in_memory(&conn, &path)?;
        let checkpointer = Checkpointer::start(&conn, &path)?;
        Ok(Self {
            checkpointer,
            conn,
            cold: ColdIds::new(columnar_dir(&path)),
            path,
            insert_many_sql: multi_row_insert_sql(),
            late_after_ms: DEFAULT_LATE_AFTER_MS,
        })
    }

    /// Writes events whose `ts` is more than `late_after_ms` before the
    /// wall clock as late rows (default [`DEFAULT_LATE_AFTER_MS`]; set it to
    /// the compactor's `partition_ms + hot_ms`). `i64::MAX` writes every
    /// event as a live row, `0` every event from the past as a late one.
    /// Only the speed of out-of-order writes and of some hot-tier reads
    /// depends on it.
    pub fn with_late_after_ms(mut self, late_after_ms: i64) -> Self {
        self.late_after_ms = late_after_ms;
        self
    }

    /// Rows with a `ts` below this are late in a batch written now.
    fn late_before_ms(&self) -> i64 {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        now_ms.saturating_sub(self.late_after_ms)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability-relevant pragmas as this connection sees them, read
    /// back from SQLite (`synchronous` is per connection, so only the
    /// writer's own connection can answer). For startup logs and tests.
    pub fn pragmas(&self) -> Result<SqlitePragmas, StoreError> {
        Ok(SqlitePragmas {
            journal_mode: self.pragma("journal_mode")?,
            synchronous: self.pragma("synchronous")?,
            user_version: self.pragma("user_version")?,
            busy_timeout_ms: self.pragma("busy_timeout")?,
            temp_store: self.pragma("temp_store")?,
            wal_autocheckpoint: self.pragma("wal_autocheckpoint")?,
        })
    }

    /// One pragma's value as this connection reports it.
    fn pragma<T: rusqlite::types::FromSql>(&self, name: &str) -> Result<T, StoreError> {
        self.conn
            .pragma_query_value(None, name, |row| row.get(0))
            .map_err(|source| StoreError::Read {
                path: self.path.clone(),
                source: Box::new(source),
            })
    }

    fn insert_all(&mut self, batch: &[EventDoc]) -> Result<WriteOutcome, SinkError> {
        let context = || format!("inserting a batch of {} events", batch.len());
        let late_before_ms = self.late_before_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| classify(error, context()))?;
        let mut outcome = WriteOutcome::default();
        let mut refused = Vec::new();
        // Events whose earlier copy may be in a columnar file: decided here,
        // under the write lock the compactor publishes under too.
        self.cold
            .refresh(&tx)
            .map_err(|error| classify(error, context()))?;
        let mut in_cold: Vec<Option<ColdVerdict>> = Vec::new();
        if self.cold.any_may_hold(batch) {
            for (index, event) in batch.iter().enumerate() {
                let verdict = self.cold.verdict(event)?;
                match verdict {
                    Some(ColdVerdict::Duplicate) => outcome.duplicates += 1,
                    Some(ColdVerdict::OtherApp) => {
                        refused.push(RefusedEvent::app_conflict(index, event));
                    }
                    None => {}
                }
                in_cold.push(verdict);
            }
        }
        let decided = |index: usize| in_cold.get(index).is_some_and(Option::is_some);
        {
            let mut insert_many = tx
                .prepare_cached(&self.insert_many_sql)
                .map_err(|error| classify(error, context()))?;
            let mut insert_one = tx
                .prepare_cached(INSERT_SQL)
                .map_err(|error| classify(error, context()))?;
            let mut same_app = tx
                .prepare_cached(SAME_APP_SQL)
                .map_err(|error| classify(error, context()))?;
            let mut start = 0;
            for chunk in batch.chunks(ROWS_PER_INSERT) {
                let all_undecided = !(start..start + chunk.len()).any(decided);
                if chunk.len() == ROWS_PER_INSERT && all_undecided {
                    for (row, event) in chunk.iter().enumerate() {
                        bind_row(
                            &mut insert_many,
                            row * PARAMS_PER_ROW,
                            event,
                            late_before_ms,
                        )
                        .map_err(|error| classify(error, context()))?;
                    }
                    // A failed statement undoes only itself; then its rows
                    // are redone one by one below to name the offending event.
                    if let Ok(inserted) = insert_many.raw_execute() {
                        debug_assert!(inserted <= chunk.len());
                        outcome.inserted += inserted as u64;
                        if inserted < chunk.len() {
                            // Which rows were skipped is not reported: ask
                            // for each (a row this statement inserted has
                            // its own app, so it reads as the same app).
                            for (offset, event) in chunk.iter().enumerate() {
                                if !stored_for_same_app(&mut same_app, event)
                                    .map_err(|error| classify(error, context()))?
                                {
                                    refused.push(RefusedEvent::app_conflict(start + offset, event));
                                }
                            }
                            let here = start..start + chunk.len();
                            let conflicts_here =
                                refused.iter().filter(|r| here.contains(&r.index)).count();
                            outcome.duplicates += (chunk.len() - inserted - conflicts_here) as u64;
                        }
                        start += chunk.len();
                        continue;
                    }
                }
                for (offset, event) in chunk.iter().enumerate() {
                    let index = start + offset;
                    if decided(index) {
                        continue;
                    }
                    let inserted = insert_one_row(
                        &mut insert_one,
                        index,
                        event,
                        late_before_ms,
                        &mut outcome,
                    )?;
                    if inserted == Row::Skipped {
                        if stored_for_same_app(&mut same_app, event)
                            .map_err(|error| classify(error, context()))?
                        {
                            outcome.duplicates += 1;
                        } else {
                            refused.push(RefusedEvent::app_conflict(index, event));
                        }
                    }
                }
                start += chunk.len();
            }
        }
        // Dropping `tx` on any early return above rolls the batch back, so a
        // failed batch leaves nothing behind.
        tx.commit().map_err(|error| classify(error, context()))?;
        self.checkpointer.committed();
        debug_assert_eq!(outcome.total() + refused.len() as u64, batch.len() as u64);
        if refused.is_empty() {
            Ok(outcome)
        } else {
            // Refusals found in the columnar tier came first.
            refused.sort_by_key(|r| r.index);
            debug_assert!(refused.windows(2).all(|w| w[0].index < w[1].index));
            Err(SinkError::Refused {
                stored: outcome,
                refused,
            })
        }
    }

    fn delete_one_chunk(&mut self, recv_cutoff_ms: i64, max_rows: usize) -> Result<u64, SinkError> {
        let context = || format!("deleting events received before {recv_cutoff_ms} ms");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|error| classify(error, context()))?;
        // A limit beyond i64 is no limit; saturate rather than fail.
        let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
        let deleted = tx
            .prepare_cached(DELETE_OLDER_SQL)
            .and_then(|mut delete| delete.execute(params![recv_cutoff_ms, limit]))
            .map_err(|error| classify(error, context()))?;
        tx.commit().map_err(|error| classify(error, context()))?;
        self.checkpointer.committed();
        Ok(deleted as u64)
    }
}

/// The `late_bucket` of an event written now: `None` (a live row) unless
/// its `ts` is below `late_before_ms`.
fn late_bucket_of(event: &EventDoc, late_before_ms: i64) -> Option<i64> {
    (event.ts_ms < late_before_ms).then(|| late_bucket(event.ts_ms))
}

/// Binds one event's columns at parameter `offset + 1 ..= offset + 8`.
fn bind_row(
    statement: &mut rusqlite::CachedStatement<'_>,
    offset: usize,
    event: &EventDoc,
    late_before_ms: i64,
) -> rusqlite::Result<()> {
    statement.raw_bind_parameter(offset + 1, &event.id.as_bytes()[..])?;
    statement.raw_bind_parameter(offset + 2, &event.event_type)?;
    statement.raw_bind_parameter(offset + 3, event.ts_ms)?;
    statement.raw_bind_parameter(offset + 4, event.recv_ms)?;
    statement.raw_bind_parameter(offset + 5, &event.app)?;
    statement.raw_bind_parameter(offset + 6, &event.host)?;
    statement.raw_bind_parameter(offset + 7, &event.doc)?;
    statement.raw_bind_parameter(offset + 8, late_bucket_of(event, late_before_ms))
}

/// What one single-row INSERT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Inserted,
    /// `ON CONFLICT(_id)` skipped it: the `_id` is stored already.
    Skipped,
}

/// Whether `event`'s `_id` is stored with `event`'s own app (a resend),
/// as opposed to another app's event.
fn stored_for_same_app(
    same_app: &mut rusqlite::CachedStatement<'_>,
    event: &EventDoc,
) -> rusqlite::Result<bool> {
    same_app.query_row(params![&event.id.as_bytes()[..], event.app], |row| {
        row.get::<_, bool>(0)
    })
}

/// Inserts one event (batch index `index`), counting it when inserted.
fn insert_one_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    index: usize,
    event: &EventDoc,
    late_before_ms: i64,
    outcome: &mut WriteOutcome,
) -> Result<Row, SinkError> {
    // `execute` returns sqlite3_changes(): 1 inserted, 0 when
    // ON CONFLICT(_id) skipped it.
    let changed = insert
        .execute(params![
            &event.id.as_bytes()[..],
            event.event_type,
            event.ts_ms,
            event.recv_ms,
            event.app,
            event.host,
            event.doc,
            late_bucket_of(event, late_before_ms),
        ])
        .map_err(|error| classify_row(error, index, event))?;
    match changed {
        0 => Ok(Row::Skipped),
        1 => {
            outcome.inserted += 1;
            Ok(Row::Inserted)
        }
        other => Err(SinkError::permanent(
            format!("inserting event {}", event.id),
            format!("one INSERT changed {other} rows"),
        )),
    }
}

impl Sink for SqliteSink {
    fn write_batch(&mut self, batch: &[EventDoc]) -> Result<WriteOutcome, SinkError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        if batch.len() > SQLITE_MAX_BATCH_EVENTS {
            return Err(SinkError::permanent(
                format!("writing to {}", self.describe()),
                format!(
                    "batch of {} events exceeds max_batch_events {SQLITE_MAX_BATCH_EVENTS}",
                    batch.len()
                ),
            ));
        }
        let outcome = self.insert_all(batch)?;
        tracing::debug!(
            store = %self.path.display(),
            inserted = outcome.inserted,
            duplicates = outcome.duplicates,
            "batch committed"
        );
        Ok(outcome)
    }

    fn max_batch_events(&self) -> usize {
        SQLITE_MAX_BATCH_EVENTS
    }

    /// Batched deletes by `recv` (DESIGN §5), each chunk its own short
    /// transaction so flushers can commit between them. Stops at the first
    /// chunk smaller than `max_rows_per_txn`; each chunk deletes at least
    /// one row or ends the loop, so the loop is bounded by the row count.
    fn delete_older_than(
        &mut self,
        recv_cutoff_ms: i64,
        max_rows_per_txn: usize,
    ) -> Result<RetentionOutcome, SinkError> {
        if max_rows_per_txn == 0 {
            return Err(SinkError::permanent(
                "applying retention",
                "max_rows_per_txn must be at least 1",
            ));
        }
        let mut outcome = RetentionOutcome::default();
        loop {
            let deleted = self.delete_one_chunk(recv_cutoff_ms, max_rows_per_txn)?;
            if deleted > 0 {
                outcome.rows_deleted += deleted;
                outcome.transactions += 1;
            }
            if deleted < max_rows_per_txn as u64 {
                break;
            }
        }
        tracing::info!(
            store = %self.path.display(),
            recv_cutoff_ms,
            rows_deleted = outcome.rows_deleted,
            transactions = outcome.transactions,
            "retention applied"
        );
        Ok(outcome)
    }

    /// Takes and releases the write lock: proves the file is writable and
    /// not locked past the busy timeout, without writing anything.
    fn ping(&mut self) -> Result<(), SinkError> {
        let context = || format!("checking {} is writable", self.path.display());
        self.conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|error| classify(error, context()))
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store opened through the real schema, plus a raw connection to the
    /// same file for SQL the public API cannot express.
    fn store() -> (tempfile::TempDir, SqliteSink) {
        let dir = tempfile::tempdir().expect("temp dir");
        let sink = SqliteSink::open(dir.path().join("events.db")).expect("open store");
        (dir, sink)
    }

    #[test]
    fn insert_sql_reports_a_not_null_violation_that_or_ignore_would_hide() {
        // Why ON CONFLICT(_id) DO NOTHING and not INSERT OR IGNORE: an event
        // without `type` (only possible by bypassing EventDoc) must fail
        // loudly, not vanish while the batch reports success.
        let (_dir, sink) = store();
        let missing_type = params![
            &[7u8; 12][..],
            None::<String>,
            1,
            2,
            None::<String>,
            None::<String>,
            "{}",
            None::<i64>
        ];

        let error = sink
            .conn
            .execute(INSERT_SQL, missing_type)
            .expect_err("NOT NULL violation must be an error");
        assert!(error.to_string().contains("NOT NULL"), "{error}");

        let or_ignore = INSERT_SQL
            .replace("INSERT INTO", "INSERT OR IGNORE INTO")
            .replace(" ON CONFLICT(_id) DO NOTHING", "");
        let changed = sink
            .conn
            .execute(&or_ignore, missing_type)
            .expect("OR IGNORE swallows the violation");
        assert_eq!(changed, 0, "OR IGNORE silently dropped the row");
    }

    #[test]
    fn insert_sql_skips_only_a_duplicate_id() {
        let (_dir, sink) = store();
        let row = params![
            &[1u8; 12][..],
            "t",
            1,
            2,
            None::<String>,
            None::<String>,
            "{}",
            None::<i64>
        ];
        assert_eq!(sink.conn.execute(INSERT_SQL, row).expect("first insert"), 1);
        assert_eq!(sink.conn.execute(INSERT_SQL, row).expect("duplicate"), 0);
    }
}
