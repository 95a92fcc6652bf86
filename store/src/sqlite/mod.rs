//! The embedded SQLite store (`sqlite://PATH`, DESIGN §5).
//!
//! - `schema`: pragmas, the `events` table, indexes and migrations;
//! - `writer`: [`SqliteSink`], the flushers' [`crate::Sink`];
//! - `reader`: [`SqliteReader`], a read-only helper for tests and tools;
//! - `classify`: SQLite error codes → retry classes.
//!
//! Outside this module only the query back end (`query::sqlite`) knows
//! rusqlite; it opens its read connections through `open_reader`.

mod classify;
mod reader;
mod schema;
pub(crate) use schema::open_reader;
mod writer;

pub use reader::SqliteReader;
pub use schema::{BUSY_TIMEOUT, INDEX_RECV, INDEX_TS_ID, INDEX_TYPE_TS_ID, SCHEMA_VERSION};
pub use writer::{SqlitePragmas, SqliteSink, SQLITE_MAX_BATCH_EVENTS};
