//! [`EventDoc`]: one stored event, and the builder that turns an accepted
//! event's JSON text plus the collector's decisions into it.
//!
//! The builder splices text instead of round-tripping through
//! `serde_json::Value`: every member value the client sent is copied
//! byte-exact (`serde_json::value::RawValue`), so integers beyond `u64`,
//! decimals beyond `f64` and the client's own spelling of numbers and
//! strings survive. Only the envelope members are written by us.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::model::time::{rfc3339_utc_ms_ascii, RFC3339_UTC_MS_BYTES};
use crate::ObjectId;

/// Envelope member: the event id, 24 lowercase hex digits.
pub const FIELD_ID: &str = "_id";
/// Envelope member: the event type (required, non-empty string).
pub const FIELD_TYPE: &str = "type";
/// Envelope member: corrected event time, RFC 3339 UTC with milliseconds.
pub const FIELD_TS: &str = "ts";
/// Envelope member: receive time, RFC 3339 UTC with milliseconds.
pub const FIELD_RECV: &str = "recv";
/// Envelope member: the application the event belongs to.
pub const FIELD_APP: &str = "app";
/// Envelope member: the event time as the client sent it, before skew
/// correction (only present when `ts` was corrected).
pub const FIELD_TS_RAW: &str = "ts_raw";
/// Not an envelope member, but copied into [`EventDoc::host`] when a string.
pub const FIELD_HOST: &str = "host";

/// Members the builder owns: a client's value for them is replaced (or
/// dropped), never merged, so a client cannot forge an envelope field.
/// (The columnar store keeps each in a column of its own.)
pub const ENVELOPE_FIELDS: [&str; 6] = [
    FIELD_ID,
    FIELD_TYPE,
    FIELD_TS,
    FIELD_RECV,
    FIELD_APP,
    FIELD_TS_RAW,
];

/// Room for the envelope the builder adds in front of the client's members:
/// `_id` (36) + `ts`/`recv` (2 × 33) + separators, rounded up. `app` and
/// `ts_raw` may still grow the string; this only avoids the common realloc.
const ENVELOPE_RESERVE_BYTES: usize = 128;

/// One stored event: the indexed columns plus the whole document.
///
/// Fields are public because this is the type that crosses from ingest to
/// the store and back to the report server. Build it with
/// [`EventDoc::from_event_json`] so that `doc` and the columns agree; sinks
/// store the fields as given and do not re-derive one from the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDoc {
    /// The event id (the idempotency key of every sink).
    pub id: ObjectId,
    /// The event's `type`.
    pub event_type: String,
    /// Corrected event time, UTC milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Receive time at the first collector, UTC milliseconds.
    pub recv_ms: i64,
    /// The application, as decided by the collector (API key or client).
    pub app: Option<String>,
    /// The event's `host` member when it is a JSON string.
    pub host: Option<String>,
    /// The whole event as JSON text, envelope included.
    pub doc: String,
}

/// What to store as `ts_raw` (DESIGN §3, clock skew).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsRaw<'a> {
    /// No `ts_raw`: `ts` was not corrected. A `ts_raw` the event carries is
    /// dropped (only relays may set it; see [`TsRaw::KeepEventTsRaw`]).
    None,
    /// `ts` was corrected for clock skew: store the event's own `ts` member,
    /// byte-exact, as `ts_raw`. The event must have a `ts` member.
    FromEventTs,
    /// The event came from a relay: keep its `ts_raw` member byte-exact if
    /// it has one.
    KeepEventTsRaw,
    /// Store this JSON value text verbatim (e.g. `"2026-11-30T19:21:43Z"`
    /// with its quotes, or `1796066503123`). It must be valid JSON.
    Json(&'a str),
}

/// The collector's decisions for one event: everything in the envelope that
/// does not come from the event's own text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The id: the client's `_id` when it sent one, else the minted one.
    pub id: ObjectId,
    /// Corrected event time, UTC ms.
    pub ts_ms: i64,
    /// Receive time, UTC ms.
    pub recv_ms: i64,
    /// The application; `None` stores no `app` member.
    pub app: Option<&'a str>,
    /// What to store as `ts_raw`.
    pub ts_raw: TsRaw<'a>,
}

/// Why an event's text could not become an [`EventDoc`]. The collector has
/// validated events before journaling them, so any of these on the flush
/// path means a bug or a damaged journal, and the event goes to dead letters.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// The text is not a JSON object.
    #[error("event is not a JSON object: {source}")]
    NotAnObject {
        /// The parser's complaint, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The event has no `type` member.
    #[error("event has no `type` member")]
    MissingType,
    /// `type` is not a non-empty JSON string.
    #[error("event `type` must be a non-empty string, got {found}")]
    InvalidType {
        /// The offending value, as JSON text (truncated).
        found: String,
    },
    /// [`TsRaw::FromEventTs`] was asked for but the event has no `ts`.
    #[error("ts_raw requested from the event's `ts`, but the event has no `ts` member")]
    MissingTsForTsRaw,
    /// [`TsRaw::Json`] text is not one JSON value.
    #[error("ts_raw is not valid JSON: {source}")]
    InvalidTsRaw {
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A time cannot be written as RFC 3339 (outside years 0000–9999).
    #[error("`{field}` of {ms} ms is outside the RFC 3339 range (years 0000-9999)")]
    TimeOutOfRange {
        /// `ts` or `recv`.
        field: &'static str,
        /// The rejected value.
        ms: i64,
    },
}

/// How much of an offending value an error message quotes.
const ERROR_QUOTE_MAX_BYTES: usize = 64;

impl EventDoc {
    /// Builds the stored document from an accepted event's JSON object text
    /// (as received, already validated by the collector) and the envelope.
    ///
    /// The document is `{"_id", "type", "ts", "recv", ["app"], ["ts_raw"],
    /// then the event's other members in their original order}`. Member
    /// values are copied byte-exact; the envelope members the client may
    /// have sent (`_id`, `ts`, `recv`, `app`, `ts_raw`) are replaced by the
    /// envelope's values. When a member name repeats, the last one wins (as
    /// in `serde_json::Value`), so the document never has duplicate names,
    /// which MongoDB would store twice and JSON readers treat inconsistently.
    pub fn from_event_json(event_json: &str, envelope: &Envelope<'_>) -> Result<Self, DocError> {
        Self::from_members(&EventMembers::parse(event_json)?, envelope)
    }

    /// [`EventDoc::from_event_json`] over members already parsed, for a
    /// caller that also reads some of them itself (the collector's flush
    /// side reads the envelope members from the same parse).
    pub fn from_members(
        members: &EventMembers<'_>,
        envelope: &Envelope<'_>,
    ) -> Result<Self, DocError> {
        let event_json = members.text;
        let members = members.members.as_slice();
        let survivors = Survivors::of(members);

        let type_raw = last_value(members, FIELD_TYPE).ok_or(DocError::MissingType)?;
        let event_type = non_empty_string(type_raw).ok_or_else(|| DocError::InvalidType {
            found: quote(type_raw.get()),
        })?;
        let host = last_value(members, FIELD_HOST)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        let ts_raw = resolve_ts_raw(envelope.ts_raw, members)?;
        let ts_text = rfc3339(FIELD_TS, envelope.ts_ms)?;
        let recv_text = rfc3339(FIELD_RECV, envelope.recv_ms)?;

        let mut doc = String::with_capacity(event_json.len() + ENVELOPE_RESERVE_BYTES);
        doc.push('{');
        // Hex digits and RFC 3339 text need no escaping.
        push_ascii_string_member(&mut doc, FIELD_ID, &envelope.id.hex_bytes());
        push_member(&mut doc, FIELD_TYPE, type_raw.get());
        push_ascii_string_member(&mut doc, FIELD_TS, &ts_text);
        push_ascii_string_member(&mut doc, FIELD_RECV, &recv_text);
        if let Some(app) = envelope.app {
            push_member(&mut doc, FIELD_APP, &json_string(app));
        }
        if let Some(raw) = ts_raw {
            push_member(&mut doc, FIELD_TS_RAW, raw);
        }
        for (i, (name, value)) in members.iter().enumerate() {
            if survivors.is_last(i) && !ENVELOPE_FIELDS.contains(&name.as_str()) {
                push_member(&mut doc, &name.escaped(), value.get());
            }
        }
        doc.push('}');

        Ok(Self {
            id: envelope.id,
            event_type,
            ts_ms: envelope.ts_ms,
            recv_ms: envelope.recv_ms,
            app: envelope.app.map(str::to_owned),
            host,
            doc,
        })
    }
}

/// The top-level members of one event object, in order, each value as its
/// raw JSON text: one parse that both the document builder and a caller
/// reading envelope members can use. Values are checked for syntax only
/// (strings are not unescaped, numbers not converted): the collector
/// checked that every value is readable before it journaled the event.
#[derive(Debug)]
pub struct EventMembers<'a> {
    text: &'a str,
    members: Vec<(Name<'a>, &'a RawValue)>,
}

impl<'a> EventMembers<'a> {
    /// Parses `event_json`, which must be exactly one JSON object.
    pub fn parse(event_json: &'a str) -> Result<Self, DocError> {
        Ok(Self {
            text: event_json,
            members: parse_members(event_json)?,
        })
    }

    /// The raw JSON text of the last member called `name` (last wins, as
    /// in the document), `None` when there is none.
    pub fn last(&self, name: &str) -> Option<&'a str> {
        last_value(&self.members, name).map(RawValue::get)
    }
}

/// Appends `,"name":value` (no comma before the first member).
/// `name_escaped` is the content of a JSON string literal, escapes already
/// applied; `value_json` is one JSON value.
fn push_member(doc: &mut String, name_escaped: &str, value_json: &str) {
    if doc.len() > 1 {
        doc.push(',');
    }
    doc.push('"');
    doc.push_str(name_escaped);
    doc.push_str("\":");
    doc.push_str(value_json);
}

/// Appends `,"name":"text"` where `text` is ASCII needing no escapes (hex
/// digits, RFC 3339 times), written without building the literal first.
fn push_ascii_string_member(doc: &mut String, name_escaped: &str, text: &[u8]) {
    // Callers pass hex digits or RFC 3339 text: ASCII, so valid UTF-8.
    let text = std::str::from_utf8(text).unwrap_or_default();
    debug_assert!(text
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    if doc.len() > 1 {
        doc.push(',');
    }
    doc.push('"');
    doc.push_str(name_escaped);
    doc.push_str("\":\"");
    doc.push_str(text);
    doc.push('"');
}

/// A Rust string as a JSON string literal.
fn json_string(text: &str) -> String {
    // Serializing a `str` cannot fail; fall back to an empty literal rather
    // than panic should serde_json ever disagree.
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

fn rfc3339(field: &'static str, ms: i64) -> Result<[u8; RFC3339_UTC_MS_BYTES], DocError> {
    rfc3339_utc_ms_ascii(ms).ok_or(DocError::TimeOutOfRange { field, ms })
}

/// The value of a JSON string that is not empty, else `None`.
fn non_empty_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get())
        .ok()
        .filter(|text| !text.is_empty())
}

/// The start of `text`, cut on a char boundary, for error messages.
fn quote(text: &str) -> String {
    let mut end = text.len().min(ERROR_QUOTE_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}…", &text[..end])
    } else {
        text.to_owned()
    }
}

fn resolve_ts_raw<'a>(
    choice: TsRaw<'a>,
    members: &[(Name<'a>, &'a RawValue)],
) -> Result<Option<&'a str>, DocError> {
    match choice {
        TsRaw::None => Ok(None),
        TsRaw::FromEventTs => last_value(members, FIELD_TS)
            .map(|raw| Some(raw.get()))
            .ok_or(DocError::MissingTsForTsRaw),
        TsRaw::KeepEventTsRaw => Ok(last_value(members, FIELD_TS_RAW).map(RawValue::get)),
        TsRaw::Json(text) => serde_json::from_str::<&RawValue>(text)
            .map(|raw| Some(raw.get()))
            .map_err(|source| DocError::InvalidTsRaw { source }),
    }
}

/// A member name: borrowed from the input when it has no escapes.
#[derive(Debug)]
enum Name<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Name<'_> {
    fn as_str(&self) -> &str {
        match self {
            Name::Borrowed(text) => text,
            Name::Owned(text) => text,
        }
    }

    /// The name as JSON string content. A borrowed name is the input's own
    /// text between the quotes, which had no escapes (that is why serde_json
    /// could borrow it), so it is copied as is; an owned one is re-escaped.
    fn escaped(&self) -> Cow<'_, str> {
        match self {
            Name::Borrowed(text) => Cow::Borrowed(text),
            Name::Owned(text) => {
                let literal = json_string(text);
                let content = literal
                    .strip_prefix('"')
                    .and_then(|rest| rest.strip_suffix('"'))
                    .unwrap_or_default();
                Cow::Owned(content.to_owned())
            }
        }
    }
}

impl<'de> de::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Name::Borrowed(text))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Name::Owned(text.to_owned()))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Name::Owned(text))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Parses the top-level object into (name, raw value) pairs in order,
/// without looking inside the values beyond what validation needs.
fn parse_members(event_json: &str) -> Result<Vec<(Name<'_>, &RawValue)>, DocError> {
    struct ObjectVisitor;
    impl<'de> Visitor<'de> for ObjectVisitor {
        type Value = Vec<(Name<'de>, &'de RawValue)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(entry) = map.next_entry::<Name<'de>, &'de RawValue>()? {
                members.push(entry);
            }
            Ok(members)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(event_json);
    let members = deserializer
        .deserialize_map(ObjectVisitor)
        .and_then(|members| deserializer.end().map(|()| members))
        .map_err(|source| DocError::NotAnObject { source })?;
    Ok(members)
}

/// The value of the last member called `name` (last wins, as in
/// `serde_json::Value`).
fn last_value<'a>(members: &[(Name<'a>, &'a RawValue)], name: &str) -> Option<&'a RawValue> {
    members
        .iter()
        .rev()
        .find(|(member, _)| member.as_str() == name)
        .map(|(_, value)| *value)
}

/// Which members survive name deduplication (the last of each name).
struct Survivors {
    is_last: Vec<bool>,
}

/// Up to this many members, duplicates are found by comparing names pair
/// by pair (no hashing, no set to allocate; typical events have a dozen);
/// above it a hash set keeps a hostile event with 100,000 members linear.
const PAIRWISE_SURVIVOR_CHECK_MAX_MEMBERS: usize = 32;

impl Survivors {
    fn of(members: &[(Name<'_>, &RawValue)]) -> Self {
        let mut is_last = vec![false; members.len()];
        if members.len() <= PAIRWISE_SURVIVOR_CHECK_MAX_MEMBERS {
            for (i, (name, _)) in members.iter().enumerate() {
                let name = name.as_str();
                is_last[i] = !members[i + 1..]
                    .iter()
                    .any(|(later, _)| later.as_str() == name);
            }
            return Self { is_last };
        }
        let mut seen = HashSet::with_capacity(members.len());
        for (i, (name, _)) in members.iter().enumerate().rev() {
            is_last[i] = seen.insert(name.as_str());
        }
        Self { is_last }
    }

    fn is_last(&self, i: usize) -> bool {
        self.is_last.get(i).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_member_names_are_unescaped_once_and_written_back_escaped() {
        let id = ObjectId::from_bytes([0; 12]);
        let envelope = Envelope {
            id,
            ts_ms: 0,
            recv_ms: 0,
            app: None,
            ts_raw: TsRaw::None,
        };
        let built = EventDoc::from_event_json(r#"{"type":"t","a\"b":1,"\u00e9":2}"#, &envelope)
            .expect("valid event");
        let value: serde_json::Value = serde_json::from_str(&built.doc).expect("doc is JSON");
        assert_eq!(value["a\"b"], 1);
        assert_eq!(value["é"], 2);
    }

    #[test]
    fn quoted_values_in_errors_are_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let quoted = quote(&long);
        assert!(quoted.len() <= ERROR_QUOTE_MAX_BYTES + "…".len());
        assert!(quoted.ends_with('…'));
    }
}
