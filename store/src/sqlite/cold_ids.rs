//! [`ColdIds`]: `_id` uniqueness for events whose earlier copy may already
//! sit in a columnar file (the hot tier's UNIQUE index no longer sees it).
//!
//! The rule: a resent event carries the same `ts` (the client crate stamps
//! `ts` and `_id` together; relays forward both), so its earlier copy is in
//! a row group whose `ts` range holds that `ts`. Only events whose `ts`
//! falls in some published file's range are looked up, only in the row
//! groups whose `ts` and `_id` statistics may hold them, and only those
//! groups' ids are read (a new event's id, minted after the files were
//! written, is usually above every id there and reads nothing).
//! An event sent with an `_id` but no `ts` gets its receive time as `ts`:
//! a resend of it is caught while the first copy is hot (the UNIQUE index
//! covers the whole hot tier) or when both land in one row group's range.
//!
//! Called inside the sink's insert transaction, after reading the
//! manifest generation there: the compactor publishes under the same
//! write lock, so no file can appear between this check and the insert.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::Connection;

use super::manifest::{self, ManifestEntry};
use crate::columnar::{group_ids, ColdFile};
use crate::model::EventDoc;
use crate::sink::SinkError;

/// Most ids kept in memory across the cached row groups (about 32 bytes
/// each: the id, an index into its group's apps, the map's overhead). A
/// count of groups would not do: under a frozen clock every event's `ts`
/// and many groups' statistics match, and a small cache re-read the same
/// groups for every batch (a SIGKILL test under libfaketime timed out).
const MAX_CACHED_IDS: usize = 2_000_000;

/// The ids of one row group, each with the index of its app.
#[derive(Debug, Default)]
struct GroupIds {
    ids: HashMap<[u8; 12], u32>,
    apps: Vec<Option<String>>,
}

impl GroupIds {
    fn app_of(&self, id: &[u8; 12]) -> Option<&Option<String>> {
        let index = *self.ids.get(id)?;
        self.apps.get(index as usize)
    }
}

/// What a columnar file says about an event being inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ColdVerdict {
    /// Its `_id` is stored there with the same app: a resend.
    Duplicate,
    /// Its `_id` is stored there for another app.
    OtherApp,
}

/// The manifest as last read, its files opened on first use, and the ids
/// of recently consulted row groups.
#[derive(Debug, Default)]
pub(super) struct ColdIds {
    dir: PathBuf,
    generation: Option<i64>,
    files: Vec<(ManifestEntry, Option<Arc<ColdFile>>)>,
    /// `(file name, row group)` → its ids, most recently used last.
    cached: Vec<((String, usize), Arc<GroupIds>)>,
    /// Ids held in `cached`.
    cached_ids: usize,
    /// The largest `ts` of any listed file: an event after it (nearly
    /// every one) needs no look at the file list.
    newest_ts_ms: Option<i64>,
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
            let mut opened: HashMap<String, Arc<ColdFile>> = self
                .files
                .drain(..)
                .filter_map(|(entry, file)| Some((entry.name, file?)))
                .collect();
            self.files = manifest
                .files
                .into_iter()
                .map(|entry| {
                    let file = opened.remove(&entry.name);
                    (entry, file)
                })
                .collect();
            self.cached
                .retain(|((name, _), _)| self.files.iter().any(|(entry, _)| &entry.name == name));
            self.cached_ids = self.cached.iter().map(|(_, ids)| ids.ids.len()).sum();
            self.newest_ts_ms = self.files.iter().map(|(entry, _)| entry.ts_max_ms).max();
            self.generation = Some(generation);
        }
        Ok(())
    }

    /// Whether any event of `batch` needs a look into the files (the
    /// common case, all events newer than every file, answers `false`
    /// from the manifest alone).
    pub(super) fn any_may_hold(&self, batch: &[EventDoc]) -> bool {
        let Some(newest) = self.newest_ts_ms else {
            return false;
        };
        batch.iter().any(|event| {
            event.ts_ms <= newest
                && self
                    .files
                    .iter()
                    .any(|(entry, _)| entry.may_hold(event.ts_ms))
        })
    }

    /// What the files say about `event`.
    pub(super) fn verdict(&mut self, event: &EventDoc) -> Result<Option<ColdVerdict>, SinkError> {
        let wanted = event.id.as_bytes();
        for index in 0..self.files.len() {
            if !self.files[index].0.may_hold(event.ts_ms) {
                continue;
            }
            let file = self.file(index)?;
            let groups: Vec<usize> = file
                .groups()
                .iter()
                .enumerate()
                .filter(|(_, info)| {
                    (info.ts_min..=info.ts_max).contains(&event.ts_ms)
                        && info
                            .ids
                            .is_none_or(|(min, max)| (&min..=&max).contains(&wanted))
                })
                .map(|(group, _)| group)
                .collect();
            for group in groups {
                let ids = self.group(index, &file, group)?;
                if let Some(app) = ids.app_of(wanted) {
                    return Ok(Some(if *app == event.app {
                        ColdVerdict::Duplicate
                    } else {
                        ColdVerdict::OtherApp
                    }));
                }
            }
        }
        Ok(None)
    }

    fn file(&mut self, index: usize) -> Result<Arc<ColdFile>, SinkError> {
        let (entry, file) = &mut self.files[index];
        if let Some(file) = file {
            return Ok(Arc::clone(file));
        }
        let path = self.dir.join(&entry.name);
        let opened = ColdFile::open(&path).map_err(|error| {
            SinkError::transient(format!("opening columnar file {}", path.display()), error)
        })?;
        let opened = Arc::new(opened);
        *file = Some(Arc::clone(&opened));
        Ok(opened)
    }

    fn group(
        &mut self,
        index: usize,
        file: &ColdFile,
        group: usize,
    ) -> Result<Arc<GroupIds>, SinkError> {
        let key = (self.files[index].0.name.clone(), group);
        if let Some(position) = self.cached.iter().position(|(cached, _)| *cached == key) {
            let entry = self.cached.remove(position);
            let ids = Arc::clone(&entry.1);
            self.cached.push(entry);
            return Ok(ids);
        }
        let rows = group_ids(file, group).map_err(|error| {
            SinkError::transient(
                format!("reading the ids of columnar file {}", file.path().display()),
                error,
            )
        })?;
        let mut ids = GroupIds::default();
        ids.ids.reserve(rows.len());
        for (id, app) in rows {
            let index = match ids.apps.iter().position(|known| *known == app) {
                Some(index) => index,
                None => {
                    ids.apps.push(app);
                    ids.apps.len() - 1
                }
            };
            ids.ids
                .insert(*id.as_bytes(), u32::try_from(index).unwrap_or(u32::MAX));
        }
        let ids = Arc::new(ids);
        while !self.cached.is_empty() && self.cached_ids + ids.ids.len() > MAX_CACHED_IDS {
            let (_, evicted) = self.cached.remove(0);
            self.cached_ids -= evicted.ids.len();
        }
        self.cached_ids += ids.ids.len();
        self.cached.push((key, Arc::clone(&ids)));
        Ok(ids)
    }
}
