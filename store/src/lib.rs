//! Helios store: the document model, the [`Sink`] trait the flushers write
//! through, and the backends (DESIGN §5).
//!
//! - [`ObjectId`]: the 12-byte event id (value type; minting is ingest's).
//! - [`EventDoc`], [`Envelope`], [`TsRaw`]: one stored event and the
//!   builder that adds the envelope to an accepted event's JSON text.
//! - [`Sink`], [`WriteOutcome`], [`SinkError`]: the write contract,
//!   idempotent by `_id`, with errors classified for retry.
//! - [`open_sink`], [`StoreUri`]: URI → sink.
//! - [`SqliteSink`], [`SqliteReader`]: the embedded SQLite store.
//! - [`mongo::MongoSink`]: MongoDB (the production store).
//! - `testing` (feature `testing`): `MemorySink` with scripted faults, for
//!   the flushers' tests.
//!
//! This crate knows nothing of HTTP, journals or runtimes; ingest and
//! report depend on it, never the reverse.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod doc;
mod error;
pub mod mongo;
pub mod query;
mod relay;
mod sink;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod time;
mod uri;

pub use doc::{
    DocError, Envelope, EventDoc, TsRaw, FIELD_APP, FIELD_HOST, FIELD_ID, FIELD_RECV, FIELD_TS,
    FIELD_TS_RAW, FIELD_TYPE,
};
pub use error::StoreError;
pub use helios_object_id::{
    ObjectId, ObjectIdError, COUNTER_MAX, NODE_ID_BYTES, OBJECT_ID_BYTES, OBJECT_ID_HEX_CHARS,
};
pub use relay::{RelaySink, RELAY_MAX_BATCH_EVENTS};
pub use sink::{BoxError, RefusedEvent, RetentionOutcome, Sink, SinkError, WriteOutcome};
pub use sqlite::{
    SqlitePragmas, SqliteReader, SqliteSink, BUSY_TIMEOUT, INDEX_RECV, INDEX_TS_ID,
    INDEX_TYPE_TS_ID, SCHEMA_VERSION, SQLITE_MAX_BATCH_EVENTS,
};
pub use time::{format_rfc3339_utc_ms, parse_rfc3339_ms, RFC3339_MAX_MS, RFC3339_MIN_MS};
pub use uri::{
    open_sink, open_sink_with, SinkOptions, StoreUri, SCHEMES_MONGODB, SCHEME_HTTP, SCHEME_HTTPS,
    SCHEME_SQLITE,
};
