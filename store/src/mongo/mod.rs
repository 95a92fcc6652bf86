//! Everything that knows the MongoDB driver (DESIGN §5, §6): `mongodb://`
//! and `mongodb+srv://` stores. Both sides share `collection.rs`.
//!
//! - `collection`: default names, the index specs the sink creates and the
//!   queries rely on, driver client options. Shared by both sides.
//! - Write side (feature `sink`): [`bson_doc`] (stored event JSON → BSON,
//!   exact numbers), `classify` (driver errors → retry classes),
//!   [`MongoSink`] (the official driver on the sink's own tokio runtime,
//!   unordered `insert_many` idempotent by `_id`, write concern checked
//!   before a batch counts as stored).
//! - Read side (feature `query`): [`MongoQueries`], the query IR translated
//!   into filter documents and pipelines.
//!
//! No driver type crosses this module's public API except through
//! [`event_to_bson`] (the BSON a sink writes, for benches and tests).

#[cfg(feature = "sink")]
mod bson_doc;
#[cfg(feature = "sink")]
mod classify;
// Both sides' knowledge in one file: a read-only build leaves the index
// specs (which the sink creates) unused.
#[cfg_attr(not(feature = "sink"), allow(dead_code))]
mod collection;
#[cfg(feature = "query")]
mod queries;
#[cfg(feature = "sink")]
mod sink;

#[cfg(feature = "sink")]
pub use bson_doc::{event_to_bson, ToBsonError, MONGODB_MAX_NESTING_DEPTH};
pub use collection::{DEFAULT_COLLECTION, DEFAULT_DATABASE};
#[cfg(feature = "query")]
pub use queries::{
    MongoQueries, MAX_TAIL_SEEN_IDS, MONGO_CLIENT_GRACE, MONGO_QUERY_MAX_TIME, MONGO_TAIL_MAX_TIME,
    TAIL_LATE_WINDOW_MS,
};
#[cfg(feature = "sink")]
pub use sink::{
    MongoLayout, MongoOptions, MongoSink, MONGODB_MAX_BATCH_BYTES, MONGODB_MAX_BATCH_EVENTS,
    MONGODB_MAX_DOCUMENT_BYTES, TIMESERIES_MAX_MEASUREMENT_BYTES,
};
