//! The columnar tier's manifest: which Parquet files hold which sealed time
//! partitions. It lives in the SQLite file itself (`columnar_files`,
//! `columnar_state`, schema version 2), so publishing a file and deleting
//! the rows it now holds from `events` are one transaction: at every
//! instant each stored event is in exactly one tier.
//!
//! Files live under [`columnar_dir`] of the database, named from what they
//! hold ([`file_name`]). A file that is not listed here does not exist for
//! readers: the compactor removes such files (a crash between writing a
//! file and publishing it) when it opens.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// What a database's columnar directory is called: the database file's
/// name plus this (`helios.db` → `helios.db.columnar/`).
pub const COLUMNAR_DIR_SUFFIX: &str = ".columnar";

/// The file extension of a published columnar file.
pub const COLUMNAR_FILE_EXTENSION: &str = "parquet";

/// The directory holding the columnar files of the store at `db_path`.
pub fn columnar_dir(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().unwrap_or_default().to_os_string();
    name.push(COLUMNAR_DIR_SUFFIX);
    db_path.with_file_name(name)
}

/// One published file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Path relative to [`columnar_dir`].
    pub name: String,
    /// Start of the time partition (of `ts`) the file belongs to, UTC ms.
    pub partition_start_ms: i64,
    /// Width of that partition, ms.
    pub partition_ms: i64,
    /// Smallest `ts` in the file.
    pub ts_min_ms: i64,
    /// Largest `ts` in the file.
    pub ts_max_ms: i64,
    /// Events in the file.
    pub rows: u64,
    /// Size of the file, bytes.
    pub bytes: u64,
}

impl ManifestEntry {
    /// End of the file's partition (exclusive), UTC ms.
    pub fn partition_end_ms(&self) -> i64 {
        self.partition_start_ms.saturating_add(self.partition_ms)
    }

    /// Whether an event at `ts_ms` could be in this file.
    pub fn may_hold(&self, ts_ms: i64) -> bool {
        (self.ts_min_ms..=self.ts_max_ms).contains(&ts_ms)
    }

    /// Whether any `ts` in `from_ms..to_ms` could be in this file.
    pub fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.ts_min_ms < to_ms && self.ts_max_ms >= from_ms
    }
}

/// The manifest as one read saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Grows with every change; equal generations mean equal manifests and
    /// no rows moved between the tiers in between.
    pub generation: i64,
    /// The published files, oldest partition first.
    pub files: Vec<ManifestEntry>,
}

/// The generation alone (one indexed row).
pub(crate) fn generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT generation FROM columnar_state WHERE id = 1")?
        .query_row([], |row| row.get(0))
}

/// Reads the whole manifest. Call it inside a transaction (or as the only
/// statement that matters) for a consistent generation and file list.
pub(crate) fn read(conn: &Connection) -> rusqlite::Result<Manifest> {
    let generation = generation(conn)?;
    let mut statement = conn.prepare_cached(
        "SELECT name, partition_start, partition_ms, ts_min, ts_max, rows, bytes \
         FROM columnar_files ORDER BY partition_start, name",
    )?;
    let files = statement
        .query_map([], |row| {
            Ok(ManifestEntry {
                name: row.get(0)?,
                partition_start_ms: row.get(1)?,
                partition_ms: row.get(2)?,
                ts_min_ms: row.get(3)?,
                ts_max_ms: row.get(4)?,
                rows: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                bytes: u64::try_from(row.get::<_, i64>(6)?).unwrap_or(0),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Manifest { generation, files })
}

/// Lists `entry` and bumps the generation. Only inside the transaction
/// that also deletes the file's rows from `events`.
#[cfg(feature = "sink")]
pub(crate) fn publish(conn: &Connection, entry: &ManifestEntry) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO columnar_files \
         (name, partition_start, partition_ms, ts_min, ts_max, rows, bytes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![
        entry.name,
        entry.partition_start_ms,
        entry.partition_ms,
        entry.ts_min_ms,
        entry.ts_max_ms,
        i64::try_from(entry.rows).unwrap_or(i64::MAX),
        i64::try_from(entry.bytes).unwrap_or(i64::MAX),
    ])?;
    bump(conn)
}

/// Unlists the files named and bumps the generation.
#[cfg(feature = "sink")]
pub(crate) fn remove(conn: &Connection, names: &[String]) -> rusqlite::Result<()> {
    let mut delete = conn.prepare_cached("DELETE FROM columnar_files WHERE name = ?1")?;
    for name in names {
        delete.execute([name])?;
    }
    bump(conn)
}

#[cfg(feature = "sink")]
fn bump(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE columnar_state SET generation = generation + 1 WHERE id = 1")?
        .execute([])?;
    Ok(())
}

/// The deterministic name of the file holding the rows of the partition
/// starting at `partition_start_ms` up to hot-tier sequence `seq_bound`,
/// from the event `first_id` on: a rerun of the same compaction step after
/// a crash writes the same name.
#[cfg(feature = "sink")]
pub(crate) fn file_name(partition_start_ms: i64, seq_bound: i64, first_id: &str) -> String {
    format!(
        "{}/{seq_bound:012}-{first_id}.{COLUMNAR_FILE_EXTENSION}",
        partition_label(partition_start_ms)
    )
}

/// A partition's directory name: its start as RFC 3339 UTC without
/// colons (`2026-12-07T13-15-00Z`), readable and sortable.
#[cfg(feature = "sink")]
fn partition_label(partition_start_ms: i64) -> String {
    let text = crate::model::format_rfc3339_utc_ms(partition_start_ms)
        .unwrap_or_else(|| format!("p{partition_start_ms}"));
    // `2026-12-07T13:15:00.000Z` → `2026-12-07T13-15-00Z`.
    let trimmed = text
        .strip_suffix(".000Z")
        .map_or(text.clone(), |t| format!("{t}Z"));
    trimmed.replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columnar_dir_sits_beside_the_database_file() {
        assert_eq!(
            columnar_dir(Path::new("/data/helios.db")),
            PathBuf::from("/data/helios.db.columnar")
        );
    }

    #[test]
    #[cfg(feature = "sink")]
    fn file_names_say_which_partition_and_range_they_hold() {
        let name = file_name(1_796_000_000_000, 42, "0123456789abcdef01234567");
        assert_eq!(
            name,
            "2026-11-30T00-53-20Z/000000000042-0123456789abcdef01234567.parquet"
        );
    }
}
