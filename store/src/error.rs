//! [`StoreError`]: failures to open or read a store (as opposed to
//! [`crate::SinkError`], which classifies failures of a write for retry).

use std::error::Error as StdError;
use std::path::PathBuf;

/// A boxed error source, so backend error types (rusqlite, the MongoDB
/// driver) do not leak into the crates that only know the traits.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store could not be opened or read.
///
/// Messages name the file and what was expected, and never echo a whole
/// store URI: a MongoDB URI may carry a password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URI is malformed (no scheme, no path, ...).
    #[error("invalid store URI: {reason}")]
    InvalidUri {
        /// What is wrong, without echoing the URI.
        reason: String,
    },
    /// The scheme is not one Helios knows.
    #[error("unknown store URI scheme `{scheme}`; expected sqlite://PATH, mongodb://…, mongodb+srv://…, or (the collector's relay mode) http(s)://upstream")]
    UnknownScheme {
        /// The scheme, lowercased.
        scheme: String,
    },
    /// SQLite could not open or set up the file.
    #[error("cannot open SQLite store {path}: {context}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The step that failed.
        context: &'static str,
        /// SQLite's error.
        #[source]
        source: BoxError,
    },
    /// The file was written by a newer Helios; opening it could corrupt it.
    #[error(
        "SQLite store {path} has schema version {found}, newer than this build \
         supports ({supported}); upgrade Helios or use another file"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `PRAGMA user_version`.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A read-only open found a schema older than this build's: only a
    /// writer migrates, so readers refuse rather than misread.
    #[error(
        "SQLite store {path} has schema version {found}, this build reads \
         version {supported}; open it for writing once (the collector does) to migrate"
    )]
    SchemaTooOld {
        /// The database file.
        path: PathBuf,
        /// Its `PRAGMA user_version` (0: not a Helios store yet).
        found: i64,
        /// The version this build reads.
        supported: i64,
    },
    /// A schema migration failed; the file keeps its previous version.
    #[error("migrating SQLite store {path} from schema version {from} to {to} failed: {source}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// Version before the failed step.
        from: i64,
        /// Version the step was meant to reach.
        to: i64,
        /// SQLite's error.
        #[source]
        source: BoxError,
    },
    /// A pragma did not take the value the durability contract needs.
    #[error("SQLite store {path}: PRAGMA {pragma} is {found}, expected {expected}")]
    Pragma {
        /// The database file.
        path: PathBuf,
        /// The pragma's name.
        pragma: &'static str,
        /// What Helios requires.
        expected: String,
        /// What SQLite reported.
        found: String,
    },
    /// Moving sealed partitions into columnar files failed (nothing was
    /// lost: the step is undone and redone later).
    #[error("compacting SQLite store {path}: {context}: {source}")]
    Compaction {
        /// The database file (or the columnar file, for file errors).
        path: PathBuf,
        /// The step that failed.
        context: String,
        /// What failed underneath.
        #[source]
        source: BoxError,
    },
    /// A read failed.
    #[error("reading SQLite store {path}: {source}")]
    Read {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: BoxError,
    },
    /// A cold-tier (Parquet) file could not be written or read.
    #[error("cold-tier file {path}: {context}: {source}")]
    Columnar {
        /// The file.
        path: PathBuf,
        /// The step that failed.
        context: String,
        /// The underlying error (I/O, Parquet, Arrow, JSON).
        #[source]
        source: BoxError,
    },
    /// A stored row does not decode (e.g. an `_id` that is not 12 bytes).
    #[error("SQLite store {path}: row seq {seq} is corrupt: {reason}")]
    CorruptRow {
        /// The database file.
        path: PathBuf,
        /// The row's `seq`.
        seq: i64,
        /// What is wrong with it.
        reason: String,
    },
}
