//! Events: everything the collector decides about the events of a request,
//! independent of HTTP and of the runtime.
//!
//! - Request time: [`validate`] splits a decoded body into accepted events
//!   (byte ranges, verbatim) and per-event rejects; [`clock_offset_ms`]
//!   applies the clock-skew rule to `Helios-Sent-At`; [`IdMinter`] reserves
//!   the ids to mint; [`encode_payload`] frames the accepted events as one
//!   journal record's payload.
//! - Flush time: [`record_to_docs`] turns a committed record back into
//!   [`helios_store::EventDoc`]s, deterministically (same record, same
//!   documents, same ids).
//!
//! This module does no I/O except [`load_or_create_node_id`], and knows
//! nothing of sockets, monoio or the store backends.
//!
//! # Journal record payload, byte by byte
//!
//! A record (journal `RecordKind::Events`) holds the accepted events of one
//! request; its header carries `recv_ms`, `clock_offset_ms`, `id_base`,
//! `event_count` and `app` (see `helios_journal::RecordMeta`). Its payload:
//!
//! ```text
//! offset  size  field
//! 0       1     flags: bit 0 = PAYLOAD_FLAG_RELAYED (request came from a
//!               relay); bits 1-7 reserved, must be 0 (a reader refuses
//!               unknown bits rather than misread a newer format)
//! 1       4     len_0: u32 little-endian, byte length of event 0 (≥ 1)
//! 5       len_0 event 0: the event's bytes exactly as in the decoded body
//!               (one JSON object, no surrounding whitespace)
//! ...           len_1, event 1, ... until the payload ends
//! ```
//!
//! There is no count and no padding: the payload ends exactly after the last
//! event, and the header's `event_count` must equal the number of frames.
//! An empty payload (not even flags) and zero-length events are invalid.
//! Events appear in request order; minted ids are handed out in that order
//! to the events without `_id` (the k-th such event gets
//! `minted_id(id_base, k)`).

mod docs;
mod fields;
mod id;
mod payload;
mod priority;
mod scan;
mod skew;
mod validate;

pub use docs::{record_to_docs, EventDecodeError, EventFailure, RecordDecodeError};
pub use id::{load_or_create_node_id, minted_id, IdMinter, COUNTER_SPACE, NODE_ID_FILE};
pub use payload::{
    check_payload, decode_payload, encode_payload, payload_len, CheckedPayload, PayloadError,
    PayloadIter, PAYLOAD_FLAGS_BYTES, PAYLOAD_FLAG_RELAYED, PAYLOAD_KNOWN_FLAGS, PAYLOAD_LEN_BYTES,
};
pub use priority::{
    Priority, PriorityBudget, DEFAULT_HIGH_PRIORITY_RESERVE_PERCENT,
    DEFAULT_LOW_PRIORITY_BUDGET_PERCENT, FIELD_PRIORITY, MAX_HIGH_PRIORITY_RESERVE_PERCENT,
};
pub use skew::{clock_offset_ms, DEFAULT_CLOCK_SKEW_THRESHOLD_MS};
pub use validate::{
    validate, BodyError, BodyFormat, EventError, Reject, ValidateLimits, ValidateMode, Validation,
    DEFAULT_MAX_EVENTS_PER_REQUEST, DEFAULT_MAX_JSON_DEPTH, MAX_EVENTS_PER_REQUEST_CEILING,
    MAX_JSON_DEPTH_CEILING,
};
