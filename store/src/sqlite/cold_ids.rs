//! [`ColdIds`]: `_id` uniqueness for events whose earlier copy may already
//! sit in a columnar file (the hot tier's UNIQUE index no longer sees it).
//!
//! The rule: a resent event carries the same `ts` (the client crate stamps
//! `ts` and `_id` together; relays forward both), so its earlier copy is in
//! a file whose `ts` range holds that `ts`. Only events whose `ts` falls in
//! some published file's range are looked up, and only in those files.
//! An event sent with an `_id` but no `ts` gets its receive time as `ts`:
//! a resend of it is caught while the first copy is hot (the UNIQUE index
//! covers the whole hot tier) or when both land in one file's range.
//!
//! Called inside the sink's insert transaction, after reading the
//! manifest generation there: the compactor publishes under the same
//! write lock, so no file can appear between this check and the insert.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::Connection;

use super::manifest::{self, ManifestEntry};
use crate::columnar::{ids, ColdFile};
use crate::model::EventDoc;
use crate::sink::SinkError;

/// Most files whose ids are kept in memory at once (each holds up to
/// `max_rows_per_file` ids, ~60 bytes each with its app).
const MAX_CACHED_FILES: usize = 8;

/// The ids (and apps) of one file.
type FileIds = HashMap<[u8; 12], Option<String>>;

/// What a columnar file says about an event being inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ColdVerdict {
    /// Its `_id` is stored there with the same app: a resend.
    Duplicate,
    /// Its `_id` is stored there for another app.
    OtherApp,
}

/// The manifest as last read, and the ids of recently consulted files.
#[derive(Debug, Default)]
pub(super) struct ColdIds {
    dir: PathBuf,
    generation: Option<i64>,
    files: Vec<ManifestEntry>,
    cached: Vec<(String, Arc<FileIds>)>,
}

impl ColdIds {
    /// For the store whose columnar directory is `dir`.
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            ..Self::default()
        }
    }

    /// Rereads the manifest if it changed since the last call.
    pub(super) fn refresh(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let generation = manifest::generation(conn)?;
        if self.generation != Some(generation) {
            let manifest = manifest::read(conn)?;
            self.cached
                .retain(|(name, _)| manifest.files.iter().any(|entry| &entry.name == name));
            self.files = manifest.files;
            self.generation = Some(generation);
        }
        Ok(())
    }

    /// Whether any event of `batch` needs a look into the files (the
    /// common case, all events newer than every file, answers `false`
    /// from the manifest alone).
    pub(super) fn any_may_hold(&self, batch: &[EventDoc]) -> bool {
        !self.files.is_empty()
            && batch
                .iter()
                .any(|event| self.files.iter().any(|entry| entry.may_hold(event.ts_ms)))
    }

    /// What the files say about `event`.
    pub(super) fn verdict(&mut self, event: &EventDoc) -> Result<Option<ColdVerdict>, SinkError> {
        let candidates: Vec<String> = self
            .files
            .iter()
            .filter(|entry| entry.may_hold(event.ts_ms))
            .map(|entry| entry.name.clone())
            .collect();
        for name in candidates {
            let ids = self.file_ids(&name)?;
            if let Some(app) = ids.get(event.id.as_bytes()) {
                return Ok(Some(if *app == event.app {
                    ColdVerdict::Duplicate
                } else {
                    ColdVerdict::OtherApp
                }));
            }
        }
        Ok(None)
    }

    fn file_ids(&mut self, name: &str) -> Result<Arc<FileIds>, SinkError> {
        if let Some(position) = self.cached.iter().position(|(cached, _)| cached == name) {
            // Most recently used last.
            let entry = self.cached.remove(position);
            let ids = Arc::clone(&entry.1);
            self.cached.push(entry);
            return Ok(ids);
        }
        let path = self.dir.join(name);
        let context = || format!("reading the ids of columnar file {}", path.display());
        let file = ColdFile::open(&path).map_err(|error| SinkError::transient(context(), error))?;
        let rows = ids(&file).map_err(|error| SinkError::transient(context(), error))?;
        let map: FileIds = rows
            .into_iter()
            .map(|(id, app)| (*id.as_bytes(), app))
            .collect();
        let map = Arc::new(map);
        if self.cached.len() >= MAX_CACHED_FILES {
            self.cached.remove(0);
        }
        self.cached.push((name.to_owned(), Arc::clone(&map)));
        Ok(map)
    }
}
