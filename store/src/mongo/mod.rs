//! The MongoDB sink (DESIGN §5): the official driver on the sink's own
//! tokio runtime, unordered `insert_many` idempotent by `_id`, write
//! concern checked before a batch counts as stored.
//!
//! - [`bson_doc`]: stored event JSON → BSON document (exact numbers).
//! - [`classify`]: driver errors → [`crate::SinkError`] (retry or refuse).
//! - [`sink`]: [`MongoSink`] itself, its setup (indexes, time-series
//!   collection, TTL) and the write path.

mod bson_doc;
mod classify;
mod sink;

pub use bson_doc::{event_to_bson, ToBsonError, MONGODB_MAX_NESTING_DEPTH};
pub use sink::{
    MongoLayout, MongoOptions, MongoSink, DEFAULT_COLLECTION, DEFAULT_DATABASE,
    MONGODB_MAX_BATCH_BYTES, MONGODB_MAX_BATCH_EVENTS, MONGODB_MAX_DOCUMENT_BYTES,
    TIMESERIES_MAX_MEASUREMENT_BYTES,
};
