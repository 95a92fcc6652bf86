//! Turning `record()` arguments into the bytes that go on the wire.
//!
//! An event is encoded once, on the caller's thread, into its final JSON
//! document. The sender only concatenates documents, so every resend of a
//! batch carries byte-identical events with the same `_id`, and a lost event
//! can be logged exactly as it would have been stored.
//!
//! Keys owned by the client: `_id` and `type` always come from `record()`;
//! a field named `recv` is removed because the collector owns it and rejects
//! events that carry it. `ts`, `host` and `app` are defaults: a field of the
//! same name given by the app wins.
//!
//! Priority: a `"priority": "high"` field marks an event that may use the
//! queue's reserve (see `queue`); it is sent as is, and the collector reads
//! the same field at its journal budget (`"low"`, `"normal"`, anything
//! else counting as normal).

use serde_json::{Map, Value};

use crate::object_id::{self, ObjectId};
use crate::timestamp;

/// Keys the app may not set through fields (see module docs).
const CLIENT_OWNED_KEYS: [&str; 3] = ["_id", "type", "recv"];
/// Room reserved for `{"_id":"…","type":…,"ts":"…"}` when sizing a document.
const ENVELOPE_ESTIMATE_BYTES: usize = 96;
/// Rough bytes per field when sizing a document's buffer up front.
const FIELD_ESTIMATE_BYTES: usize = 24;

/// The field that names an event's priority, and the value that lets it
/// use the queue's reserve.
pub const PRIORITY_FIELD: &str = "priority";
/// See [`PRIORITY_FIELD`].
pub const HIGH_PRIORITY: &str = "high";

/// One encoded event: its complete JSON object (with `_id`), no newline.
#[derive(Debug)]
pub(crate) struct Event {
    /// The whole document as UTF-8 JSON.
    pub(crate) doc: Box<[u8]>,
    /// `"priority": "high"`: may fill the queue's reserve.
    pub(crate) high_priority: bool,
}

/// Why `record()` could not produce a document.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    /// `type` must be a non-empty string (the collector rejects it otherwise).
    #[error("event type is empty")]
    EmptyType,
    /// Fields must form a JSON object so they can be merged into the event.
    #[error("fields are not a JSON object (got {0})")]
    NotAnObject(&'static str),
    /// The app's value could not be serialized.
    #[error("serialization failed: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Per-client default fields, JSON-encoded once when the client is built.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    host_json: Option<Box<[u8]>>,
    app_json: Option<Box<[u8]>>,
}

impl Defaults {
    /// Encodes the optional default `host` and `app` values.
    pub(crate) fn new(host: Option<&str>, app: Option<&str>) -> Self {
        let encode = |s: &str| serde_json::to_vec(s).ok().map(Vec::into_boxed_slice);
        Defaults {
            host_json: host.and_then(encode),
            app_json: app.and_then(encode),
        }
    }
}

/// The moment an event was recorded: its id and its `ts`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    /// The minted `_id`.
    pub(crate) id: ObjectId,
    /// Wall-clock time of `record()` in unix milliseconds.
    pub(crate) unix_ms: u64,
}

impl Stamp {
    /// Reads the clock once and mints an id for that second.
    pub(crate) fn now() -> Self {
        let unix_ms = timestamp::now_unix_ms();
        let unix_secs = u32::try_from(unix_ms / 1_000).unwrap_or(u32::MAX);
        Stamp {
            id: object_id::mint(unix_secs),
            unix_ms,
        }
    }
}

/// Encodes one event document from the app's fields.
pub(crate) fn encode(
    stamp: Stamp,
    event_type: &str,
    fields: &Value,
    defaults: &Defaults,
) -> Result<Event, EncodeError> {
    if event_type.is_empty() {
        return Err(EncodeError::EmptyType);
    }
    let empty = Map::new();
    let fields = match fields {
        Value::Object(map) => map,
        Value::Null => &empty,
        other => return Err(EncodeError::NotAnObject(json_kind(other))),
    };
    let mut doc = Vec::with_capacity(ENVELOPE_ESTIMATE_BYTES + FIELD_ESTIMATE_BYTES * fields.len());
    doc.extend_from_slice(b"{\"_id\":\"");
    doc.extend_from_slice(&stamp.id.hex_bytes());
    doc.extend_from_slice(b"\",\"type\":");
    serde_json::to_writer(&mut doc, event_type)?;
    if !fields.contains_key("ts") {
        doc.extend_from_slice(b",\"ts\":\"");
        timestamp::write_rfc3339_ms(stamp.unix_ms, &mut doc);
        doc.push(b'"');
    }
    push_default(&mut doc, fields, "host", defaults.host_json.as_deref());
    push_default(&mut doc, fields, "app", defaults.app_json.as_deref());
    for (key, value) in fields {
        if CLIENT_OWNED_KEYS.contains(&key.as_str()) {
            continue;
        }
        doc.push(b',');
        serde_json::to_writer(&mut doc, key)?;
        doc.push(b':');
        serde_json::to_writer(&mut doc, value)?;
    }
    doc.push(b'}');
    let high_priority = fields.get(PRIORITY_FIELD).and_then(Value::as_str) == Some(HIGH_PRIORITY);
    Ok(Event {
        doc: doc.into_boxed_slice(),
        high_priority,
    })
}

fn push_default(doc: &mut Vec<u8>, fields: &Map<String, Value>, key: &str, json: Option<&[u8]>) {
    let Some(json) = json else { return };
    if fields.contains_key(key) {
        return;
    }
    doc.extend_from_slice(b",\"");
    doc.extend_from_slice(key.as_bytes());
    doc.extend_from_slice(b"\":");
    doc.extend_from_slice(json);
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(event: &Event) -> Map<String, Value> {
        match serde_json::from_slice(&event.doc).expect("valid json") {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn stamp() -> Stamp {
        Stamp {
            id: ObjectId::from_parts_wrapping(1_709_210_096, [1, 2, 3, 4, 5], 7),
            unix_ms: 1_709_210_096_789,
        }
    }

    #[test]
    fn document_carries_id_type_ts_defaults_and_fields() {
        let defaults = Defaults::new(Some("web-1"), Some("shop"));
        let event =
            encode(stamp(), "login", &json!({"user": "ann", "n": 3}), &defaults).expect("encodes");
        let doc = decode(&event);
        assert_eq!(doc["_id"], json!(stamp().id.to_hex()));
        assert_eq!(doc["type"], json!("login"));
        assert_eq!(doc["ts"], json!("2024-02-29T12:34:56.789Z"));
        assert_eq!(doc["host"], json!("web-1"));
        assert_eq!(doc["app"], json!("shop"));
        assert_eq!(doc["user"], json!("ann"));
        assert_eq!(doc["n"], json!(3));
        assert_eq!(doc.len(), 7);
    }

    #[test]
    fn app_fields_override_ts_host_and_app_but_not_id_type_or_recv() {
        let defaults = Defaults::new(Some("web-1"), Some("shop"));
        let fields = json!({"_id": "x", "type": "y", "recv": 1, "ts": 5, "host": "h", "app": "a"});
        let event = encode(stamp(), "login", &fields, &defaults).expect("encodes");
        let doc = decode(&event);
        assert_eq!(doc["_id"], json!(stamp().id.to_hex()));
        assert_eq!(doc["type"], json!("login"));
        assert!(!doc.contains_key("recv"));
        assert_eq!(doc["ts"], json!(5));
        assert_eq!(doc["host"], json!("h"));
        assert_eq!(doc["app"], json!("a"));
        // No key is written twice.
        let text = String::from_utf8_lossy(&event.doc).into_owned();
        assert_eq!(text.matches("\"ts\"").count(), 1);
    }

    #[test]
    fn null_fields_mean_no_fields() {
        let event = encode(stamp(), "ping", &Value::Null, &Defaults::default()).expect("encodes");
        assert_eq!(decode(&event).len(), 3);
    }

    #[test]
    fn non_object_fields_and_empty_type_are_refused() {
        let defaults = Defaults::default();
        assert!(matches!(
            encode(stamp(), "t", &json!([1]), &defaults),
            Err(EncodeError::NotAnObject("an array"))
        ));
        assert!(matches!(
            encode(stamp(), "", &json!({}), &defaults),
            Err(EncodeError::EmptyType)
        ));
    }

    #[test]
    fn type_and_keys_are_json_escaped() {
        let event = encode(
            stamp(),
            "a\"b\n",
            &json!({"k\"": "v"}),
            &Defaults::default(),
        )
        .expect("encodes");
        let doc = decode(&event);
        assert_eq!(doc["type"], json!("a\"b\n"));
        assert_eq!(doc["k\""], json!("v"));
    }
}
