//! The SQLite query back end (placeholder; being written).

use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// Most idle read-only connections kept for reuse.
pub const SQLITE_QUERY_POOL_MAX_IDLE: usize = 4;

/// The SQLite query back end: read-only connections to one store file.
#[derive(Debug)]
pub struct SqliteQueries {
    path: PathBuf,
}

impl SqliteQueries {
    /// Opens the store at `path` read-only (it must exist and have this
    /// build's schema).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self {
            path: path.as_ref().to_owned(),
        })
    }
}
