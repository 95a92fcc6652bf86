//! Helios store: the stored-event model, the write contract ([`Sink`]), the
//! pure query core ([`query`]) and the two back ends that implement them
//! (DESIGN §5, §6). The tree is laid out by what a module knows:
//!
//! - [`model`] items (re-exported here): [`EventDoc`] and its envelope,
//!   the RFC 3339 time form; [`ObjectId`] is the workspace's one id type
//!   (crate `helios-object-id`). Pure.
//! - [`Sink`], [`WriteOutcome`], [`SinkError`] (feature `sink`): the write
//!   contract, idempotent by `_id`, errors classified for retry;
//!   [`open_sink`] turns a store URI into a sink.
//! - [`query`] (feature `query`): the IR, the text language, the MongoDB
//!   filter parser, the reference evaluator and the `QueryBackend` trait.
//!   Knows no driver.
//! - [`sqlite`] (feature `sqlite`): everything that knows rusqlite — the
//!   schema both sides share, `SqliteSink`, `SqliteReader`,
//!   `SqliteQueries`.
//! - [`mongo`] (feature `mongodb`): everything that knows the MongoDB
//!   driver — the collection layout both sides share, `MongoSink`,
//!   `MongoQueries`.
//! - `testing` (feature `testing`): `MemorySink` with scripted faults, for
//!   the flushers' tests.
//!
//! Features select what a binary builds: the collector takes `sink` and
//! the back ends, the report server `query` and the back ends. This crate
//! knows nothing of HTTP, journals or monoio; ingest and report depend on
//! it, never the reverse.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "sqlite")]
pub mod columnar;
mod error;
pub mod model;
#[cfg(feature = "mongodb")]
pub mod mongo;
#[cfg(feature = "query")]
pub mod query;
#[cfg(feature = "sink")]
mod sink;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod uri;

pub use error::{BoxError, StoreError};
pub use helios_object_id::{
    ObjectId, ObjectIdError, COUNTER_MAX, NODE_ID_BYTES, OBJECT_ID_BYTES, OBJECT_ID_HEX_CHARS,
};
pub use model::{
    format_rfc3339_utc_ms, parse_rfc3339_ms, DocError, Envelope, EventDoc, EventMembers, TsRaw,
    ENVELOPE_FIELDS, FIELD_APP, FIELD_HOST, FIELD_ID, FIELD_RECV, FIELD_TS, FIELD_TS_RAW,
    FIELD_TYPE, RFC3339_MAX_MS, RFC3339_MIN_MS,
};
#[cfg(feature = "sink")]
pub use sink::{RefusedEvent, RetentionOutcome, Sink, SinkError, WriteOutcome};
#[cfg(feature = "sink")]
pub use uri::{open_sink, open_sink_with, SinkOptions};
pub use uri::{StoreUri, SCHEMES_MONGODB, SCHEME_HTTP, SCHEME_HTTPS, SCHEME_SQLITE};
