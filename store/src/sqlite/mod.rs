//! Everything that knows SQLite (rusqlite): the embedded store
//! (`sqlite://PATH`, DESIGN §5, §6). Both sides share `schema.rs`.
//!
//! - `schema`: pragmas, the `events` table, its indexes, `user_version`
//!   migrations, and how writer and reader connections are opened. Shared
//!   by both sides.
//! - `reader`: [`SqliteReader`], a read-only helper for tests and tools.
//! - Write side (feature `sink`): [`SqliteSink`] (the flushers'
//!   [`crate::Sink`]) and `classify` (SQLite codes → retry classes).
//! - Read side (feature `query`): [`SqliteQueries`] (`queries/`: IR → SQL
//!   with bound parameters, a read-only connection pool, a registered
//!   `regexp`).

#[cfg(feature = "sink")]
mod checkpoint;
#[cfg(feature = "sink")]
mod classify;
#[cfg(feature = "sink")]
mod cold_ids;
#[cfg(feature = "sink")]
mod compact;
pub mod manifest;
#[cfg(feature = "query")]
mod queries;
mod reader;
// Both sides' knowledge in one file: a read-only build leaves the writer's
// migrations and pragmas unused.
#[cfg_attr(not(feature = "sink"), allow(dead_code))]
mod schema;
#[cfg(feature = "sink")]
mod sink;

#[cfg(feature = "sink")]
pub use checkpoint::INLINE_CHECKPOINT_PAGES;
#[cfg(feature = "sink")]
pub use compact::{
    CompactOptions, CompactOutcome, Compactor, DEFAULT_HOT_MS, DEFAULT_LATE_HOLD_MS,
    DEFAULT_MAX_ROWS_PER_FILE, DEFAULT_PARTITION_MS,
};
#[cfg(feature = "query")]
pub use queries::{
    SqliteQueries, MAX_GROUP_KEYS_IN_MEMORY, MAX_GROUP_KEY_BYTES_IN_MEMORY, MAX_SNAPSHOT_ATTEMPTS,
    MAX_TAIL_SCAN_ROWS, MAX_TALLY_PASSES, MAX_TIERED_GROUP_KEYS, SQLITE_QUERY_POOL_MAX_IDLE,
    SQLITE_QUERY_TIMEOUT,
};
pub use reader::{SqliteReader, TierCounts};
pub use schema::{
    BUSY_RETRY, BUSY_TIMEOUT, INDEX_LATE, INDEX_RECV, INDEX_TS_ID, INDEX_TYPE_TS_ID,
    LATE_BUCKET_MS, SCHEMA_VERSION, WRITER_TURN,
};
#[cfg(feature = "sink")]
pub use sink::{SqlitePragmas, SqliteSink, DEFAULT_LATE_AFTER_MS, SQLITE_MAX_BATCH_EVENTS};
