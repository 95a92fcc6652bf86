//! [`SqliteReader`]: a small read-only view for tests, the quickstart and
//! operators ("is every acked event stored exactly once?"), over both
//! tiers of the embedded store: the SQLite hot tier and the columnar files
//! its manifest lists. The report server's query engine is
//! `SqliteQueries`.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row};

use super::manifest::{self, columnar_dir, Manifest};
use super::schema::open_reader;
use crate::columnar::{self, ColdFile};
use crate::error::StoreError;
use crate::model::EventDoc;
use crate::ObjectId;

/// A reader's columnar scans (tests, tools) are not cut short: this is
/// only a backstop.
const READER_SCAN_BUDGET: std::time::Duration = std::time::Duration::from_secs(3_600);
/// Nothing cancels a reader.
static NEVER_CANCELLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

const SELECT_BY_ID_SQL: &str =
    "SELECT seq, _id, type, ts, recv, app, host, doc FROM events WHERE _id = ?1";

/// How many events each tier holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierCounts {
    /// Events in the SQLite hot tier.
    pub hot: u64,
    /// Events in columnar files.
    pub columnar: u64,
    /// Columnar files.
    pub columnar_files: u64,
}

/// A read-only connection to an SQLite store. It never migrates or writes;
/// opening a file with another schema version fails.
pub struct SqliteReader {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteReader {
    /// Opens an existing store read-only.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = open_reader(&path)?;
        Ok(Self { conn, path })
    }

    /// Number of stored events, in both tiers.
    pub fn count(&self) -> Result<u64, StoreError> {
        let tiers = self.count_by_tier()?;
        Ok(tiers.hot + tiers.columnar)
    }

    /// Number of stored events in each tier, at one instant.
    pub fn count_by_tier(&self) -> Result<TierCounts, StoreError> {
        let (hot, manifest) = self.snapshot(|conn| {
            conn.query_row("SELECT count(*) FROM events", [], |row| {
                row.get::<_, i64>(0)
            })
        })?;
        let hot = u64::try_from(hot).map_err(|_| StoreError::CorruptRow {
            path: self.path.clone(),
            seq: -1,
            reason: format!("count(*) returned {hot}"),
        })?;
        Ok(TierCounts {
            hot,
            columnar: manifest.files.iter().map(|entry| entry.rows).sum(),
            columnar_files: manifest.files.len() as u64,
        })
    }

    /// The event with this id, if stored (in either tier).
    pub fn get(&self, id: ObjectId) -> Result<Option<EventDoc>, StoreError> {
        let (row, manifest) = self.snapshot(|conn| {
            conn.prepare_cached(SELECT_BY_ID_SQL)
                .and_then(|mut select| {
                    select
                        .query_row([&id.as_bytes()[..]], RawRow::read)
                        .optional()
                })
        })?;
        if let Some(raw) = row {
            return raw.decode(&self.path).map(Some);
        }
        let files = self.open_files(&manifest)?;
        let limits = columnar::ScanLimits {
            cancelled: &NEVER_CANCELLED,
            deadline: std::time::Instant::now() + READER_SCAN_BUDGET,
            limit_ms: u64::try_from(READER_SCAN_BUDGET.as_millis()).unwrap_or(u64::MAX),
        };
        let hit = columnar::get(&files, id, &limits).map_err(|error| self.cold_error(error))?;
        hit.map(|hit| self.event_from_cold(&hit)).transpose()
    }

    /// Every stored id: the columnar tier's (by file, oldest partition
    /// first, in `(ts, _id)` order inside a file), then the hot tier's in
    /// insertion order (`seq`). Loads them all: meant for tests and small
    /// stores, not for production-sized tables.
    pub fn ids(&self) -> Result<Vec<ObjectId>, StoreError> {
        let (rows, manifest) = self.snapshot(|conn| {
            let mut select = conn.prepare("SELECT seq, _id FROM events ORDER BY seq")?;
            let rows = select.query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let mut ids = Vec::new();
        for file in self.open_files(&manifest)? {
            let cold = columnar::ids(&file).map_err(|error| self.cold_error(error))?;
            ids.extend(cold.into_iter().map(|(id, _)| id));
        }
        for (seq, blob) in rows {
            ids.push(decode_id(&self.path, seq, &blob)?);
        }
        Ok(ids)
    }

    /// Runs `read` and reads the manifest in one read transaction, so the
    /// two tiers are seen at the same instant.
    fn snapshot<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<(T, Manifest), StoreError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|source| self.read_error(source))?;
        let value = read(&tx).map_err(|source| self.read_error(source))?;
        let manifest = manifest::read(&tx).map_err(|source| self.read_error(source))?;
        tx.finish().map_err(|source| self.read_error(source))?;
        Ok((value, manifest))
    }

    fn open_files(&self, manifest: &Manifest) -> Result<Vec<std::sync::Arc<ColdFile>>, StoreError> {
        let dir = columnar_dir(&self.path);
        manifest
            .files
            .iter()
            .map(|entry| {
                ColdFile::open(&dir.join(&entry.name))
                    .map(std::sync::Arc::new)
                    .map_err(|error| self.cold_error(error))
            })
            .collect()
    }

    /// An event read back from a columnar file: the envelope columns come
    /// from its stored document, which holds the envelope.
    fn event_from_cold(&self, hit: &crate::query::Hit) -> Result<EventDoc, StoreError> {
        let corrupt = |reason: String| StoreError::CorruptRow {
            path: self.path.clone(),
            seq: -1,
            reason: format!("columnar event {}: {reason}", hit.id),
        };
        let text = |name: &str| hit.doc.get(name).and_then(serde_json::Value::as_str);
        let event_type = text(crate::FIELD_TYPE)
            .ok_or_else(|| corrupt("no `type`".to_owned()))?
            .to_owned();
        let recv_ms = text(crate::FIELD_RECV)
            .and_then(crate::parse_rfc3339_ms)
            .ok_or_else(|| corrupt("no readable `recv`".to_owned()))?;
        let doc = hit
            .stored_text
            .clone()
            .ok_or_else(|| corrupt("no stored text".to_owned()))?;
        Ok(EventDoc {
            id: hit.id,
            event_type,
            ts_ms: hit.ts_ms,
            recv_ms,
            app: text(crate::FIELD_APP).map(str::to_owned),
            host: text(crate::FIELD_HOST).map(str::to_owned),
            doc,
        })
    }

    fn cold_error(&self, error: crate::query::QueryError) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            source: Box::new(error),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Read {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }
}

/// A row as SQLite returned it, before we trust it.
struct RawRow {
    seq: i64,
    id: Vec<u8>,
    event_type: String,
    ts_ms: i64,
    recv_ms: i64,
    app: Option<String>,
    host: Option<String>,
    doc: String,
}

impl RawRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: row.get(0)?,
            id: row.get(1)?,
            event_type: row.get(2)?,
            ts_ms: row.get(3)?,
            recv_ms: row.get(4)?,
            app: row.get(5)?,
            host: row.get(6)?,
            doc: row.get(7)?,
        })
    }

    fn decode(self, path: &Path) -> Result<EventDoc, StoreError> {
        Ok(EventDoc {
            id: decode_id(path, self.seq, &self.id)?,
            event_type: self.event_type,
            ts_ms: self.ts_ms,
            recv_ms: self.recv_ms,
            app: self.app,
            host: self.host,
            doc: self.doc,
        })
    }
}

fn decode_id(path: &Path, seq: i64, blob: &[u8]) -> Result<ObjectId, StoreError> {
    ObjectId::from_slice(blob).map_err(|error| StoreError::CorruptRow {
        path: path.to_owned(),
        seq,
        reason: format!("_id: {error}"),
    })
}
