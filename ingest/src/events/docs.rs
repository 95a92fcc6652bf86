//! Flush side: one journal record → the documents to store.
//!
//! Everything here is a pure function of the record, so a replay (after a
//! crash, a store error, a restart with other settings) yields identical
//! documents with identical ids. In particular none of the request-time
//! limits (depth, events per request) or the relay/auth mode of the
//! running server is applied again: what was accepted and acked is stored.

use helios_journal::Record;
use helios_store::{
    DocError, Envelope, EventDoc, EventMembers, ObjectId, TsRaw, RFC3339_MAX_MS, RFC3339_MIN_MS,
};

use super::fields::{
    facts_from_members, EventFacts, FieldScratch, IdField, StringField, TimeField,
};
use super::id::minted_id;
use super::payload::{decode_payload, PayloadError};

/// The record as a whole cannot be read: none of its events is decoded. The
/// journal's CRC makes this a bug (or a writer of another version), never
/// ordinary disk damage: the flusher dead-letters the raw record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordDecodeError {
    /// The payload framing is broken.
    #[error("record payload: {0}")]
    Payload(#[from] PayloadError),
    /// The header's event count disagrees with the payload.
    #[error("record header says {header} events, payload holds {payload}")]
    CountMismatch {
        /// `Record::event_count`.
        header: u32,
        /// Events framed in the payload.
        payload: usize,
    },
}

/// Why one event of a record could not become a document. Validation ran
/// before journaling, so each of these is a bug or damage; the event goes to
/// dead letters and the record's other events are stored.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// The bytes are not a JSON object.
    #[error("event is not a JSON object: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The bytes are not UTF-8 (serde_json accepted them, so this cannot
    /// happen; kept rather than unwrapped).
    #[error("event is not UTF-8")]
    NotUtf8,
    /// `_id` is present but not 24 hex digits.
    #[error("event _id is not 24 hex digits")]
    InvalidId,
    /// `ts` (or a relayed `recv`) is present but not a valid time.
    #[error("event `{field}` is not a valid time")]
    InvalidTime {
        /// `ts` or `recv`.
        field: &'static str,
    },
    /// The store's document builder refused it.
    #[error(transparent)]
    Doc(#[from] DocError),
}

/// One event of a record that could not be decoded.
#[derive(Debug)]
pub struct EventFailure {
    /// Its position in the record's payload (its bytes:
    /// `decode_payload(&record.payload)?.nth(index)`).
    pub index: usize,
    /// Why.
    pub error: EventDecodeError,
}

/// Appends the documents of `record`'s events to `out`, in payload order,
/// and the events that could not be decoded to `failures`.
///
/// Per-event failures rather than one error for the record: one bad event
/// must not hold back (or dead-letter) the others, which were acked too.
/// A failed event consumes no minted id only when it fails before its `_id`
/// is known; either way the outcome is the same on every replay.
///
/// For each event (DESIGN §3):
/// - id: its `_id`, else the next minted id of the record (`minted_id`).
/// - recv: the record's receive time, or for a relayed request the event's
///   own `recv` (the record's when it has none).
/// - ts: the event's `ts` plus the record's clock offset (relayed: as is;
///   clamped to years 0000–9999 should a wild offset push it out), else
///   recv. `ts_raw` keeps the `ts` as sent when the offset is not 0; a
///   relayed event keeps its own `ts_raw`.
/// - app: the record's app (from the API key) when not empty, else the
///   event's own `app` string; a relayed event keeps its own.
pub fn record_to_docs(
    record: &Record,
    out: &mut Vec<EventDoc>,
    failures: &mut Vec<EventFailure>,
) -> Result<(), RecordDecodeError> {
    let events = decode_payload(&record.payload)?;
    if usize::try_from(record.event_count).ok() != Some(events.len()) {
        return Err(RecordDecodeError::CountMismatch {
            header: record.event_count,
            payload: events.len(),
        });
    }
    let relayed = events.relayed();
    let mut scratch = FieldScratch::default();
    let mut minted = 0u32;
    out.reserve(events.len());
    for (index, event) in events.enumerate() {
        match event_to_doc(record, relayed, event, &mut scratch, &mut minted) {
            Ok(doc) => out.push(doc),
            Err(error) => failures.push(EventFailure { index, error }),
        }
    }
    Ok(())
}

fn event_to_doc(
    record: &Record,
    relayed: bool,
    event: &[u8],
    scratch: &mut FieldScratch,
    minted: &mut u32,
) -> Result<EventDoc, EventDecodeError> {
    let json = std::str::from_utf8(event).map_err(|_| EventDecodeError::NotUtf8)?;
    // One parse: the envelope members are read from the same members the
    // document is built from (issue 16: each event was parsed twice here).
    let members = EventMembers::parse(json).map_err(|error| match error {
        DocError::NotAnObject { source } => EventDecodeError::NotJson(source),
        other => EventDecodeError::Doc(other),
    })?;
    let facts = facts_from_members(&members, scratch).map_err(EventDecodeError::NotJson)?;
    let id = match facts.id {
        IdField::Valid(id) => id,
        IdField::Absent => {
            let id = minted_id(record.id_base, *minted);
            *minted = minted.wrapping_add(1);
            id
        }
        IdField::Invalid => return Err(EventDecodeError::InvalidId),
    };
    let envelope = if relayed {
        relayed_envelope(record, id, &facts, scratch)?
    } else {
        client_envelope(record, id, &facts, scratch)?
    };
    Ok(EventDoc::from_members(&members, &envelope)?)
}

fn client_envelope<'a>(
    record: &'a Record,
    id: ObjectId,
    facts: &EventFacts,
    scratch: &'a FieldScratch,
) -> Result<Envelope<'a>, EventDecodeError> {
    let recv_ms = record.recv_ms;
    let offset_ms = record.clock_offset_ms;
    let (ts_ms, ts_raw) = match facts.ts {
        TimeField::Absent => (recv_ms, TsRaw::None),
        TimeField::Invalid => return Err(EventDecodeError::InvalidTime { field: "ts" }),
        TimeField::Ms(ts) if offset_ms == 0 => (ts, TsRaw::None),
        TimeField::Ms(ts) => (
            ts.saturating_add(offset_ms)
                .clamp(RFC3339_MIN_MS, RFC3339_MAX_MS),
            TsRaw::FromEventTs,
        ),
    };
    let app = if record.app.is_empty() {
        event_app(facts, scratch)
    } else {
        Some(record.app.as_str())
    };
    Ok(Envelope {
        id,
        ts_ms,
        recv_ms,
        app,
        ts_raw,
    })
}

fn relayed_envelope<'a>(
    record: &Record,
    id: ObjectId,
    facts: &EventFacts,
    scratch: &'a FieldScratch,
) -> Result<Envelope<'a>, EventDecodeError> {
    let recv_ms = match facts.recv {
        TimeField::Absent => record.recv_ms,
        TimeField::Ms(ms) => ms,
        TimeField::Invalid => return Err(EventDecodeError::InvalidTime { field: "recv" }),
    };
    let ts_ms = match facts.ts {
        TimeField::Absent => recv_ms,
        TimeField::Ms(ms) => ms,
        TimeField::Invalid => return Err(EventDecodeError::InvalidTime { field: "ts" }),
    };
    Ok(Envelope {
        id,
        ts_ms,
        recv_ms,
        // A relay's own key must not re-label the events it forwards.
        app: event_app(facts, scratch),
        ts_raw: TsRaw::KeepEventTsRaw,
    })
}

/// The event's own `app` when it is a non-empty string.
fn event_app<'a>(facts: &EventFacts, scratch: &'a FieldScratch) -> Option<&'a str> {
    match facts.app {
        StringField::Str { empty: false } => Some(scratch.app()),
        StringField::Str { empty: true } | StringField::Absent | StringField::NotString => None,
    }
}
