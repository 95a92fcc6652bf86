//! The stored-event model, shared by every back end and both sides (write
//! and read): [`EventDoc`] and its envelope (`doc.rs`), and the one RFC 3339
//! form of `ts`/`recv` (`time.rs`). The id type is the workspace's
//! `helios-object-id`. Pure: no I/O, no driver.

mod doc;
mod time;

pub use doc::{
    DocError, Envelope, EventDoc, EventMembers, TsRaw, ENVELOPE_FIELDS, FIELD_APP, FIELD_HOST,
    FIELD_ID, FIELD_RECV, FIELD_TS, FIELD_TS_RAW, FIELD_TYPE,
};
pub use time::{format_rfc3339_utc_ms, parse_rfc3339_ms, RFC3339_MAX_MS, RFC3339_MIN_MS};
// The columnar writer renders `ts`/`recv` per row without allocating.
#[cfg(feature = "sqlite")]
pub(crate) use time::{rfc3339_utc_ms_ascii, RFC3339_UTC_MS_BYTES};
