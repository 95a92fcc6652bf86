//! The embedded SQLite store (`sqlite://PATH`, DESIGN §5).
//!
//! - `schema`: pragmas, the `events` table, indexes and migrations;
//! - `writer`: [`SqliteSink`], the flushers' [`crate::Sink`];
//! - `reader`: [`SqliteReader`], a read-only helper for tests and tools;
//! - `classify`: SQLite error codes → retry classes.
//!
//! Nothing outside this module knows about rusqlite.

mod classify;
mod reader;
mod schema;
mod writer;

pub use reader::SqliteReader;
pub use schema::{BUSY_TIMEOUT, INDEX_RECV, INDEX_TS_ID, INDEX_TYPE_TS_ID, SCHEMA_VERSION};
pub use writer::{SqlitePragmas, SqliteSink, SQLITE_MAX_BATCH_EVENTS};
