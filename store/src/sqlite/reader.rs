//! [`SqliteReader`]: a small read-only view for tests, the quickstart and
//! operators ("is every acked event stored exactly once?"). The report
//! server's query engine is a separate, later piece.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row};

use super::schema::open_reader;
use crate::error::StoreError;
use crate::model::EventDoc;
use crate::ObjectId;

const SELECT_BY_ID_SQL: &str =
    "SELECT seq, _id, type, ts, recv, app, host, doc FROM events WHERE _id = ?1";

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

    /// Number of stored events.
    pub fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))
            .map_err(|source| self.read_error(source))?;
        u64::try_from(count).map_err(|_| StoreError::CorruptRow {
            path: self.path.clone(),
            seq: -1,
            reason: format!("count(*) returned {count}"),
        })
    }

    /// The event with this id, if stored.
    pub fn get(&self, id: ObjectId) -> Result<Option<EventDoc>, StoreError> {
        let row = self
            .conn
            .prepare_cached(SELECT_BY_ID_SQL)
            .and_then(|mut select| {
                select
                    .query_row([&id.as_bytes()[..]], RawRow::read)
                    .optional()
            })
            .map_err(|source| self.read_error(source))?;
        row.map(|raw| raw.decode(&self.path)).transpose()
    }

    /// Every stored id, in insertion order (`seq`). Loads them all: meant for
    /// tests and small stores, not for production-sized tables.
    pub fn ids(&self) -> Result<Vec<ObjectId>, StoreError> {
        let mut select = self
            .conn
            .prepare("SELECT seq, _id FROM events ORDER BY seq")
            .map_err(|source| self.read_error(source))?;
        let rows = select
            .query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|source| self.read_error(source))?;
        let mut ids = Vec::new();
        for row in rows {
            let (seq, blob) = row.map_err(|source| self.read_error(source))?;
            ids.push(decode_id(&self.path, seq, &blob)?);
        }
        Ok(ids)
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
