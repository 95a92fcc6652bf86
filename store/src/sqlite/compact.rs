//! [`Compactor`]: moves sealed time partitions of the SQLite hot tier into
//! columnar files, and drops whole partitions past retention.
//!
//! One step, and why nothing is lost or stored twice at any crash point:
//! 1. read up to `max_rows_per_file` rows of the oldest sealed partition
//!    whose `seq` is below the highest `seq` seen (`S`; rows inserted
//!    later have a larger `seq` and are not touched): its live rows in
//!    `(ts, _id)` order, or once none is left its late rows in
//!    `(late_bucket, seq)` order (both index order, no sort);
//! 2. write them to a new file under its deterministic name (temporary
//!    name, fsync, rename, fsync of the directory) — a crash here leaves an
//!    unlisted file that the next [`Compactor::open`] removes;
//! 3. in one `BEGIN IMMEDIATE` transaction: list the file in the manifest
//!    and delete exactly those rows (same partition and kind, `seq < S`,
//!    key in that order ≤ the last row's). If the delete does not remove
//!    exactly the rows written (retention deleted some meanwhile), the
//!    transaction is rolled back and the file removed: the step is redone
//!    from the start later.
//!
//! The row with the highest `seq` always stays in the hot tier: `seq` has
//! no AUTOINCREMENT, and a live tail following it would otherwise skip
//! numbers SQLite hands out again (the same rule as retention's).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::manifest::{self, columnar_dir, ManifestEntry, COLUMNAR_FILE_EXTENSION};
use super::schema::{late_bucket, open_writer, LATE_BUCKET_MS, WRITER_TURN};
use crate::columnar::{write_file, ColdRow, WriteOptions};
use crate::error::StoreError;
use crate::ObjectId;

/// Default width of a time partition (of `ts`), ms: 15 minutes, so a day is
/// 96 partitions and a whole-day query opens about a hundred files.
pub const DEFAULT_PARTITION_MS: i64 = 15 * 60_000;
/// Default time a partition stays in the hot tier after it ends, ms: events
/// that arrive a little late still land before it is sealed, and the live
/// tail and `_id` uniqueness of recent events stay SQLite's.
pub const DEFAULT_HOT_MS: i64 = 5 * 60_000;
/// Default most events per columnar file: bounds the compactor's memory
/// (rows are held while the file is written) and the length of the
/// transaction that deletes them from the hot tier, during which the sinks
/// wait: 262,144 rows held them off for about a second on a 2-core VM,
/// over the one-second freshness goal; 131,072 half that, and a 15-minute
/// partition of the reference day (100 events/s) is still one file.
pub const DEFAULT_MAX_ROWS_PER_FILE: usize = 131_072;
/// Default longest wait of late events (for a partition already
/// compacted) in the hot tier, ms: a steady trickle of late events makes
/// at most one more file per partition per hour.
pub const DEFAULT_LATE_HOLD_MS: i64 = 60 * 60_000;
/// Free pages, as a share of the hot tier's pages, past which a
/// compaction pass gives them back to the file system
/// (`PRAGMA incremental_vacuum`); below it they are reused by new inserts.
const VACUUM_FREE_SHARE_DIVISOR: i64 = 2;
/// Free pages given back per `PRAGMA incremental_vacuum` transaction: well
/// under the writer's page cache (`schema::WRITER_CACHE_KIB`, 16,384 pages
/// of 4 KiB), so a chunk's pages never spill into the WAL.
const VACUUM_CHUNK_PAGES: i64 = 4_096;
/// `PRAGMA auto_vacuum` of a file that never gives pages back.
const AUTO_VACUUM_NONE: i64 = 0;
/// Suffix of a file being written; never listed, removed on open.
const TEMP_SUFFIX: &str = ".tmp";

/// The live rows (schema version 3) of the time range `?1..?2` below
/// `seq` `?3`, through the `ts` indexes.
const LIVE_ROWS: &str =
    "FROM events WHERE late_bucket IS NULL AND ts >= ?1 AND ts < ?2 AND seq < ?3";
/// The late rows of the same range, through the buckets from `?4` (the one
/// holding `?1`) up to `?2`. A step reads and deletes one kind ([`Cut`]).
const LATE_ROWS: &str = "FROM events INDEXED BY events_late WHERE late_bucket IS NOT NULL \
     AND late_bucket >= ?4 AND late_bucket < ?2 AND ts >= ?1 AND ts < ?2 AND seq < ?3";

/// How the compactor cuts and writes partitions.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Width of a time partition, ms (> 0).
    pub partition_ms: i64,
    /// How long after its end a partition stays hot, ms (≥ 0).
    pub hot_ms: i64,
    /// Most events per file (> 0).
    pub max_rows_per_file: usize,
    /// Longest wait of late events in the hot tier, ms (≥ 0).
    pub late_hold_ms: i64,
    /// How files are written.
    pub write: WriteOptions,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            partition_ms: DEFAULT_PARTITION_MS,
            hot_ms: DEFAULT_HOT_MS,
            max_rows_per_file: DEFAULT_MAX_ROWS_PER_FILE,
            late_hold_ms: DEFAULT_LATE_HOLD_MS,
            write: WriteOptions::default(),
        }
    }
}

/// What one call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactOutcome {
    /// Files published.
    pub files_written: u64,
    /// Events moved from the hot tier into them.
    pub rows_moved: u64,
    /// Files unlisted and removed (retention, or unlisted leftovers).
    pub files_removed: u64,
}

/// The columnar tier's single writer. Runs beside the flushers' sinks on
/// the same database (SQLite serializes the writes).
pub struct Compactor {
    conn: Connection,
    db_path: PathBuf,
    dir: PathBuf,
    options: CompactOptions,
}

impl std::fmt::Debug for Compactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compactor")
            .field("db_path", &self.db_path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// One step's rows and where they came from.
struct Step {
    partition_start_ms: i64,
    partition_end_ms: i64,
    seq_bound: i64,
    rows: Vec<ColdRow>,
    /// Where the rows read end, in the order they were read.
    cut: Cut,
}

/// The last row of a step, in its read order: the step moves the rows of
/// its partition (below its `seq` bound) up to and including it.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// Live rows, read in `(ts, _id)` order off their index.
    Live { ts_ms: i64, id: ObjectId },
    /// Late rows, read in `(late_bucket, seq)` order off `events_late`:
    /// no sort of the bucket (a backfill can put millions of rows in one
    /// bucket, and a step that sorted them all to take a file's worth
    /// would cost the whole bucket every step); the file writer sorts
    /// the file's own rows.
    Late { bucket: i64, seq: i64 },
}

impl Compactor {
    /// Opens the store at `db_path` for compaction (migrating it like the
    /// sink does), creates its columnar directory, and removes files there
    /// that the manifest does not list (a crash mid-step).
    pub fn open(db_path: impl AsRef<Path>, options: CompactOptions) -> Result<Self, StoreError> {
        assert!(options.partition_ms > 0, "partition_ms must be positive");
        assert!(options.hot_ms >= 0, "hot_ms must not be negative");
        assert!(
            options.late_hold_ms >= 0,
            "late_hold_ms must not be negative"
        );
        assert!(
            options.max_rows_per_file > 0,
            "max_rows_per_file must be positive"
        );
        let db_path = db_path.as_ref().to_owned();
        let conn = open_writer(&db_path)?;
        let dir = columnar_dir(&db_path);
        std::fs::create_dir_all(&dir).map_err(|source| io_error(&dir, "creating", source))?;
        let mut compactor = Self {
            conn,
            db_path,
            dir,
            options,
        };
        let removed = compactor.remove_unlisted()?;
        if removed > 0 {
            tracing::info!(files = removed, dir = %compactor.dir.display(), "removed unpublished columnar files");
        }
        Ok(compactor)
    }

    /// The columnar directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves every partition sealed at `now_ms` (ended at least `hot_ms`
    /// ago) into files, at most `max_files` files in this call. Events that
    /// arrive for a partition compacted by an earlier call wait until a
    /// file's worth has gathered or the oldest of them has waited
    /// `late_hold_ms`.
    pub fn compact_sealed(
        &mut self,
        now_ms: i64,
        max_files: usize,
    ) -> Result<CompactOutcome, StoreError> {
        let sealed_before = now_ms
            .saturating_sub(self.options.hot_ms)
            .div_euclid(self.options.partition_ms)
            .saturating_mul(self.options.partition_ms);
        self.compact(
            sealed_before,
            Some((now_ms, self.options.late_hold_ms)),
            max_files,
        )
    }

    /// Moves every event with `ts < before_ms` (whole partitions from the
    /// oldest; the partition holding `before_ms - 1` too) into files, but
    /// the one with the highest `seq`; late events do not wait. For tests,
    /// tools and upgrades.
    pub fn compact_before(
        &mut self,
        before_ms: i64,
        max_files: usize,
    ) -> Result<CompactOutcome, StoreError> {
        self.compact(before_ms, None, max_files)
    }

    fn compact(
        &mut self,
        before_ms: i64,
        late: Option<(i64, i64)>,
        max_files: usize,
    ) -> Result<CompactOutcome, StoreError> {
        let mut outcome = CompactOutcome::default();
        // A partition this call began compacting is moved whole: only rows
        // that arrive after a call published its files are late.
        let mut begun: Vec<i64> = Vec::new();
        while (outcome.files_written as usize) < max_files {
            let Some(step) = self.read_step(before_ms, late, &begun)? else {
                break;
            };
            if !begun.contains(&step.partition_start_ms) {
                begun.push(step.partition_start_ms);
            }
            outcome.rows_moved += self.publish_step(step)?;
            outcome.files_written += 1;
        }
        if outcome.files_written > 0 {
            self.give_back_free_pages()?;
        }
        Ok(outcome)
    }

    /// Unlists and removes every file whose partition ended at or before
    /// `cutoff_ms` (retention keys on `ts` in the columnar tier: whole
    /// partitions go).
    pub fn drop_partitions_before(&mut self, cutoff_ms: i64) -> Result<CompactOutcome, StoreError> {
        let manifest =
            manifest::read(&self.conn).map_err(|e| self.sql_error("reading the manifest", e))?;
        let expired: Vec<ManifestEntry> = manifest
            .files
            .into_iter()
            .filter(|entry| entry.partition_end_ms() <= cutoff_ms)
            .collect();
        if expired.is_empty() {
            return Ok(CompactOutcome::default());
        }
        let names: Vec<String> = expired.iter().map(|entry| entry.name.clone()).collect();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql(&self.db_path, "dropping expired partitions", e))?;
        manifest::remove(&tx, &names)
            .map_err(|e| sql(&self.db_path, "dropping expired partitions", e))?;
        tx.commit()
            .map_err(|e| sql(&self.db_path, "dropping expired partitions", e))?;
        // Unlisted now: readers holding a file open keep reading it.
        for name in &names {
            let path = self.dir.join(name);
            if let Err(source) = std::fs::remove_file(&path) {
                if source.kind() != std::io::ErrorKind::NotFound {
                    return Err(io_error(&path, "removing", source));
                }
            }
            if let Some(parent) = path.parent() {
                // Only succeeds once the partition directory is empty.
                let _ = std::fs::remove_dir(parent);
            }
        }
        tracing::info!(
            files = names.len(),
            cutoff_ms,
            "retention dropped columnar partitions"
        );
        Ok(CompactOutcome {
            files_removed: names.len() as u64,
            ..CompactOutcome::default()
        })
    }

    /// The next step's rows: the oldest partition before `before_ms` with
    /// rows to move, skipping partitions whose late rows wait (`late`:
    /// now and the hold time; `None` moves everything).
    fn read_step(
        &self,
        before_ms: i64,
        late: Option<(i64, i64)>,
        begun: &[i64],
    ) -> Result<Option<Step>, StoreError> {
        let context = "reading rows to compact";
        let conn = &self.conn;
        let seq_bound: i64 = conn
            .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |row| {
                row.get(0)
            })
            .map_err(|e| self.sql_error(context, e))?;
        let partition_ms = self.options.partition_ms;
        let mut from_ms = i64::MIN;
        let (partition_start_ms, partition_end_ms) = loop {
            let first_ts = self
                .first_ts(from_ms, before_ms, seq_bound)
                .map_err(|e| self.sql_error(context, e))?;
            let Some(first_ts) = first_ts else {
                return Ok(None);
            };
            let start = first_ts
                .div_euclid(partition_ms)
                .saturating_mul(partition_ms);
            let end = start.saturating_add(partition_ms);
            match late {
                Some(late)
                    if !begun.contains(&start)
                        && self.late_rows_wait(start, end, seq_bound, late)? =>
                {
                    if end >= before_ms {
                        return Ok(None);
                    }
                    from_ms = end;
                }
                _ => break (start, end),
            }
        };
        let limit = i64::try_from(self.options.max_rows_per_file).unwrap_or(i64::MAX);
        let columns = "_id, type, ts, recv, app, host, doc, late_bucket, seq";
        // A partition's live rows go first, in time order; its late rows
        // (usually a partition has only one kind) in later steps.
        let has_live: bool = conn
            .prepare_cached(&format!("SELECT EXISTS (SELECT 1 {LIVE_ROWS})"))
            .and_then(|mut exists| {
                exists.query_row(
                    params![partition_start_ms, partition_end_ms, seq_bound],
                    |row| row.get(0),
                )
            })
            .map_err(|e| self.sql_error(context, e))?;
        let sql = if has_live {
            format!("SELECT {columns} {LIVE_ROWS} ORDER BY ts, _id LIMIT ?5")
        } else {
            format!("SELECT {columns} {LATE_ROWS} ORDER BY late_bucket, seq LIMIT ?5")
        };
        let mut statement = conn
            .prepare_cached(&sql)
            .map_err(|e| self.sql_error(context, e))?;
        let mut rows = statement
            .query(params![
                partition_start_ms,
                partition_end_ms,
                seq_bound,
                late_bucket(partition_start_ms),
                limit
            ])
            .map_err(|e| self.sql_error(context, e))?;
        let mut cold = Vec::new();
        let mut cut = None;
        // Straight from the row into a `ColdRow`: the id is read in place
        // (no buffer per row), the texts once.
        while let Some(row) = rows.next().map_err(|e| self.sql_error(context, e))? {
            let id = row
                .get_ref(0)
                .and_then(|value| Ok(value.as_blob()?))
                .map_err(|e| self.sql_error(context, e))?;
            let id = ObjectId::from_slice(id).map_err(|error| StoreError::Compaction {
                path: self.db_path.clone(),
                context: format!("an `_id` of {} bytes in the hot tier", id.len()),
                source: Box::new(error),
            })?;
            let (cold_row, bucket, seq) = (|| {
                Ok::<_, rusqlite::Error>((
                    ColdRow {
                        id,
                        event_type: row.get(1)?,
                        ts_ms: row.get(2)?,
                        recv_ms: row.get(3)?,
                        app: row.get(4)?,
                        host: row.get(5)?,
                        doc: row.get(6)?,
                    },
                    row.get::<_, Option<i64>>(7)?,
                    row.get::<_, i64>(8)?,
                ))
            })()
            .map_err(|e| self.sql_error(context, e))?;
            cut = Some(match bucket {
                None => Cut::Live {
                    ts_ms: cold_row.ts_ms,
                    id,
                },
                Some(bucket) => Cut::Late { bucket, seq },
            });
            debug_assert_eq!(has_live, bucket.is_none(), "one kind of row per step");
            cold.push(cold_row);
        }
        let Some(cut) = cut else {
            // The partition's rows went meanwhile (retention): nothing to
            // move in this step.
            return Ok(None);
        };
        Ok(Some(Step {
            partition_start_ms,
            partition_end_ms,
            seq_bound,
            rows: cold,
            cut,
        }))
    }

    /// A `ts` in the oldest partition holding rows in `from_ms..before_ms`
    /// below `seq_bound` (`from_ms` is a partition's start, or the
    /// smallest `i64`): the live rows' smallest off their index; for late
    /// rows the first bucket holding any, whose start is in the same
    /// partition as its rows when partitions are whole buckets (the
    /// default), else the smallest `ts` in that bucket (a scan of it).
    fn first_ts(
        &self,
        from_ms: i64,
        before_ms: i64,
        seq_bound: i64,
    ) -> rusqlite::Result<Option<i64>> {
        let live: Option<i64> = self
            .conn
            .prepare_cached(&format!("SELECT ts {LIVE_ROWS} ORDER BY ts LIMIT 1"))?
            .query_row(params![from_ms, before_ms, seq_bound], |row| row.get(0))
            .optional()?;
        let first_bucket = format!("SELECT late_bucket {LATE_ROWS} ORDER BY late_bucket LIMIT 1");
        let late_params = params![from_ms, before_ms, seq_bound, late_bucket(from_ms)];
        let late: Option<i64> = if self.options.partition_ms % LATE_BUCKET_MS == 0 {
            self.conn
                .prepare_cached(&first_bucket)?
                .query_row(late_params, |row| row.get(0))
                .optional()?
                .inspect(|bucket: &i64| {
                    // `from_ms` is a partition's start, so a bucket's too.
                    debug_assert!(*bucket >= from_ms, "{bucket} < {from_ms}");
                })
        } else {
            self.conn
                .prepare_cached(&format!(
                    "SELECT min(ts) {LATE_ROWS} AND late_bucket = ({first_bucket})"
                ))?
                .query_row(late_params, |row| row.get(0))?
        };
        Ok(match (live, late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// Whether the hot rows of the partition `start..end` are late arrivals
    /// that should wait: the partition has files already, they are fewer
    /// than a full file, and the oldest arrived less than the hold time
    /// ago. Waiting gathers a trickle of late events into few files
    /// instead of one small file per pass.
    fn late_rows_wait(
        &self,
        start: i64,
        end: i64,
        seq_bound: i64,
        (now_ms, hold_ms): (i64, i64),
    ) -> Result<bool, StoreError> {
        let context = "looking at late events";
        let compacted: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM columnar_files WHERE partition_start = ?1)",
                [start],
                |row| row.get(0),
            )
            .map_err(|e| self.sql_error(context, e))?;
        if !compacted {
            return Ok(false);
        }
        let (rows, oldest_recv): (i64, i64) = self
            .conn
            .query_row(
                &format!(
                    "SELECT count(*), coalesce(min(recv), 0) FROM \
                     (SELECT recv {LIVE_ROWS} UNION ALL SELECT recv {LATE_ROWS})"
                ),
                params![start, end, seq_bound, late_bucket(start)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| self.sql_error(context, e))?;
        let full = usize::try_from(rows).unwrap_or(usize::MAX) >= self.options.max_rows_per_file;
        Ok(!full && oldest_recv > now_ms.saturating_sub(hold_ms))
    }

    /// Writes a step's file and publishes it; returns the rows moved.
    fn publish_step(&mut self, step: Step) -> Result<u64, StoreError> {
        let Step {
            partition_start_ms,
            partition_end_ms,
            seq_bound,
            mut rows,
            cut,
        } = step;
        let Some(first) = rows.first().map(|row| row.id) else {
            return Ok(0);
        };
        let name = manifest::file_name(partition_start_ms, seq_bound, &first.to_hex());
        let path = self.dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| io_error(parent, "creating", source))?;
        }
        let expected = rows.len() as u64;
        let summary = write_file(&path, &mut rows, &self.options.write)?;
        drop(rows);
        assert_eq!(summary.rows, expected, "the file holds every row read");
        let entry = ManifestEntry {
            name,
            partition_start_ms,
            partition_ms: self.options.partition_ms,
            ts_min_ms: summary.ts_min_ms,
            ts_max_ms: summary.ts_max_ms,
            rows: summary.rows,
            bytes: summary.bytes,
        };
        let context = "publishing a columnar file";
        let lock_started = std::time::Instant::now();
        let result = (|| -> rusqlite::Result<u64> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            manifest::publish(&tx, &entry)?;
            let (start, end) = (partition_start_ms, partition_end_ms);
            let deleted = match cut {
                Cut::Live { ts_ms, id } => tx
                    .prepare_cached(&format!("DELETE {LIVE_ROWS} AND (ts, _id) <= (?4, ?5)"))?
                    .execute(params![start, end, seq_bound, ts_ms, &id.as_bytes()[..]])?,
                Cut::Late { bucket, seq } => tx
                    .prepare_cached(&format!(
                        "DELETE {LATE_ROWS} AND (late_bucket, seq) <= (?5, ?6)"
                    ))?
                    .execute(params![
                        start,
                        end,
                        seq_bound,
                        late_bucket(start),
                        bucket,
                        seq
                    ])?,
            } as u64;
            if deleted != expected {
                // Dropping `tx` rolls back both the listing and the delete.
                return Ok(deleted);
            }
            tx.commit()?;
            Ok(deleted)
        })();
        let transaction_ms = lock_started.elapsed().as_millis() as u64;
        // A sink refused the lock meanwhile goes first: the next step's
        // transaction would otherwise often win the race for it.
        std::thread::sleep(WRITER_TURN);
        match result {
            Ok(deleted) if deleted == expected => {
                tracing::debug!(
                    file = %entry.name,
                    rows = expected,
                    transaction_ms,
                    "published a columnar file"
                );
                Ok(expected)
            }
            Ok(deleted) => {
                remove_quietly(&path);
                Err(StoreError::Compaction {
                    path: self.db_path.clone(),
                    context: format!("publishing partition {partition_start_ms}"),
                    source: format!(
                        "{expected} rows were read but {deleted} matched when publishing \
                         (rows deleted meanwhile); rolled back, it will be redone"
                    )
                    .into(),
                })
            }
            Err(e) => {
                remove_quietly(&path);
                Err(self.sql_error(context, e))
            }
        }
    }

    /// `PRAGMA incremental_vacuum` when over half the hot tier's pages are
    /// free; a file created before schema version 2 has no auto-vacuum, and
    /// is rewritten once with it instead (`VACUUM`).
    fn give_back_free_pages(&self) -> Result<(), StoreError> {
        let context = "giving free pages back";
        let free: i64 = self
            .conn
            .pragma_query_value(None, "freelist_count", |row| row.get(0))
            .map_err(|e| self.sql_error(context, e))?;
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |row| row.get(0))
            .map_err(|e| self.sql_error(context, e))?;
        if free == 0 || free < pages / VACUUM_FREE_SHARE_DIVISOR {
            return Ok(());
        }
        let auto_vacuum: i64 = self
            .conn
            .pragma_query_value(None, "auto_vacuum", |row| row.get(0))
            .map_err(|e| self.sql_error(context, e))?;
        if auto_vacuum == AUTO_VACUUM_NONE {
            // A store created before the columnar tier: rewrite it once
            // with incremental auto-vacuum. VACUUM copies only the live
            // rows (the hot tier, small once compacted) and needs that much
            // temporary space; it waits for the write lock like any writer.
            tracing::info!(path = %self.db_path.display(), free_pages = free, pages, "rewriting the hot tier once to give its free pages back (VACUUM)");
            self.conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
                .map_err(|e| self.sql_error("rewriting the hot tier (VACUUM)", e))?;
            return Ok(());
        }
        // In chunks, one transaction each: a single transaction dirties
        // every page it frees (SQLite writes a page before dropping it
        // from the file), more than the page cache holds, so the cache
        // spills them all into the WAL only for the truncation to discard
        // them (a fifth of a 1 M event compaction's CPU, measured); and
        // it would hold the write lock, which the sinks wait for, the
        // whole time. A chunk's dirty pages fit the cache, and its commit
        // writes only the pages that stay.
        let chunks = (free + VACUUM_CHUNK_PAGES - 1) / VACUUM_CHUNK_PAGES;
        let vacuum_started = std::time::Instant::now();
        let mut vacuum = self
            .conn
            .prepare(&format!("PRAGMA incremental_vacuum({VACUUM_CHUNK_PAGES})"))
            .map_err(|e| self.sql_error(context, e))?;
        for _ in 0..chunks {
            // The pragma frees pages as its statement is stepped: run it
            // to the end.
            let mut rows = vacuum.query([]).map_err(|e| self.sql_error(context, e))?;
            while rows
                .next()
                .map_err(|e| self.sql_error(context, e))?
                .is_some()
            {}
            drop(rows);
            // Between chunks a waiting sink takes the lock (see
            // `publish_step`); without this pause the chunks ran back to
            // back and held inserts off for the whole vacuum (1.3 s for 20
            // chunks, measured under load).
            std::thread::sleep(WRITER_TURN);
        }
        tracing::debug!(
            free_pages = free,
            chunks,
            vacuum_ms = vacuum_started.elapsed().as_millis() as u64,
            "gave free pages back"
        );
        Ok(())
    }

    /// Removes files under the columnar directory that the manifest does
    /// not list (and temporary files); returns how many.
    fn remove_unlisted(&mut self) -> Result<u64, StoreError> {
        let manifest =
            manifest::read(&self.conn).map_err(|e| self.sql_error("reading the manifest", e))?;
        let listed: std::collections::HashSet<PathBuf> = manifest
            .files
            .iter()
            .map(|entry| self.dir.join(&entry.name))
            .collect();
        let mut removed = 0;
        let partitions = std::fs::read_dir(&self.dir)
            .map_err(|source| io_error(&self.dir, "listing", source))?;
        for partition in partitions {
            let partition = partition.map_err(|source| io_error(&self.dir, "listing", source))?;
            let partition_path = partition.path();
            if !partition_path.is_dir() {
                continue;
            }
            let files = std::fs::read_dir(&partition_path)
                .map_err(|source| io_error(&partition_path, "listing", source))?;
            for file in files {
                let file = file.map_err(|source| io_error(&partition_path, "listing", source))?;
                let path = file.path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let ours = name.ends_with(TEMP_SUFFIX)
                    || path.extension().and_then(|e| e.to_str()) == Some(COLUMNAR_FILE_EXTENSION);
                if ours && !listed.contains(&path) {
                    std::fs::remove_file(&path)
                        .map_err(|source| io_error(&path, "removing", source))?;
                    removed += 1;
                }
            }
            let _ = std::fs::remove_dir(&partition_path);
        }
        Ok(removed)
    }

    fn sql_error(&self, context: &str, error: rusqlite::Error) -> StoreError {
        sql(&self.db_path, context, error)
    }
}

fn sql(path: &Path, context: &str, error: rusqlite::Error) -> StoreError {
    StoreError::Compaction {
        path: path.to_owned(),
        context: context.to_owned(),
        source: Box::new(error),
    }
}

fn io_error(path: &Path, action: &str, source: std::io::Error) -> StoreError {
    StoreError::Compaction {
        path: path.to_owned(),
        context: action.to_owned(),
        source: Box::new(source),
    }
}

fn remove_quietly(path: &Path) {
    if let Err(error) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), %error, "could not remove an unpublished columnar file; the next start removes it");
    }
}
