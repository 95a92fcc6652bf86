//! Request bodies: synthesized events or a file, as a JSON object, a JSON
//! array or NDJSON, optionally with a 24-hex `_id` slot in every event.
//!
//! A [`Payload`] is built once before the run. With id slots, the renderer
//! patches fresh ids into the slots of a copy per request (the body length
//! never changes, so neither does Content-Length); without, the bytes are
//! sent as they are.

use std::fmt;

use serde_json::Value;

use crate::config::MAX_BODY_BYTES;
use crate::object_id::ID_HEX_LEN;

/// Content-Type of a JSON body (one object or an array).
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content-Type of an NDJSON body (`--ndjson`): one event per line.
pub const CONTENT_TYPE_NDJSON: &str = "application/x-ndjson";
/// Default Content-Type of a body sent unread (`--body-events`).
pub const CONTENT_TYPE_OPAQUE: &str = "application/octet-stream";

/// The `type` of every synthesized event.
pub const SYNTHETIC_TYPE: &str = "loadgen.synthetic";

const ID_FIELD_PREFIX: &[u8] = b"\"_id\":\"";
const ID_PLACEHOLDER: [u8; ID_HEX_LEN] = [b'0'; ID_HEX_LEN];

/// One request body and where its `_id` slots are.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The uncompressed body; id slots hold zero placeholders until a
    /// [`Renderer`](crate::request::Renderer) patches ids in.
    pub body: Vec<u8>,
    /// Byte offsets of each event's 24-byte id slot, in event order; empty
    /// when ids are not minted.
    pub id_offsets: Vec<usize>,
    /// Events in the body (for events/s and the ack accounting).
    pub events: usize,
    /// Content-Type header value: [`CONTENT_TYPE_JSON`], [`CONTENT_TYPE_NDJSON`]
    /// or [`CONTENT_TYPE_OPAQUE`].
    pub content_type: &'static str,
}

/// Why a body file cannot be used (too large, not JSON objects, no events,
/// or `_id` already present with `--ids-out`).
#[derive(Debug)]
pub struct BodyError(String);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

fn content_type(ndjson: bool) -> &'static str {
    if ndjson {
        CONTENT_TYPE_NDJSON
    } else {
        CONTENT_TYPE_JSON
    }
}

/// `events` events of about `event_bytes` each: one object when `events` is
/// 1, else an array (or NDJSON lines).
pub fn synthesize(events: usize, event_bytes: usize, ndjson: bool, with_ids: bool) -> Payload {
    assert!(events >= 1);
    let mut body = Vec::with_capacity(events * (event_bytes + 2) + 2);
    let mut id_offsets = Vec::new();
    let array = events > 1 && !ndjson;
    if array {
        body.push(b'[');
    }
    for i in 0..events {
        if i > 0 {
            body.push(if ndjson { b'\n' } else { b',' });
        }
        if let Some(offset) = write_event(&mut body, event_bytes, with_ids) {
            id_offsets.push(offset);
        }
    }
    if array {
        body.push(b']');
    }
    if ndjson {
        body.push(b'\n');
    }
    Payload {
        body,
        id_offsets,
        events,
        content_type: content_type(ndjson),
    }
}

/// Appends one event, padded towards `event_bytes`; returns its id offset.
fn write_event(out: &mut Vec<u8>, event_bytes: usize, with_ids: bool) -> Option<usize> {
    let start = out.len();
    out.push(b'{');
    let id_offset = with_ids.then(|| {
        out.extend_from_slice(ID_FIELD_PREFIX);
        let offset = out.len();
        out.extend_from_slice(&ID_PLACEHOLDER);
        out.extend_from_slice(b"\",");
        offset
    });
    out.extend_from_slice(b"\"type\":\"");
    out.extend_from_slice(SYNTHETIC_TYPE.as_bytes());
    out.extend_from_slice(
        b"\",\"service\":\"helios-loadgen\",\"level\":\"info\",\"message\":\"synthetic event\",\"pad\":\"",
    );
    let closing = b"\"}";
    let used = out.len() - start + closing.len();
    out.resize(out.len() + event_bytes.saturating_sub(used), b'x');
    out.extend_from_slice(closing);
    id_offset
}

/// A body file: a JSON object, a JSON array of objects, or (with `ndjson`)
/// one object per non-empty line. Sent verbatim; with ids, `"_id":"…",` is
/// spliced in after each event's opening brace (so the file must not carry
/// `_id` already).
pub fn from_file(bytes: &[u8], ndjson: bool, with_ids: bool) -> Result<Payload, BodyError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BodyError(format!(
            "body file exceeds {MAX_BODY_BYTES} bytes"
        )));
    }
    let events = if ndjson {
        ndjson_events(bytes)?
    } else {
        json_events(bytes)?
    };
    if events.is_empty() {
        return Err(BodyError("body file holds no events".into()));
    }
    if !with_ids {
        return Ok(Payload {
            body: bytes.to_vec(),
            id_offsets: Vec::new(),
            events: events.len(),
            content_type: content_type(ndjson),
        });
    }
    if events.iter().any(|e| e.get("_id").is_some()) {
        return Err(BodyError(
            "--ids-out mints each event's _id, but the body file already has _id fields".into(),
        ));
    }
    let starts = object_starts(bytes, ndjson)?;
    if starts.len() != events.len() {
        return Err(BodyError(format!(
            "found {} event objects but parsed {} events",
            starts.len(),
            events.len()
        )));
    }
    let (body, id_offsets) = splice_ids(bytes, &starts);
    Ok(Payload {
        body,
        id_offsets,
        events: events.len(),
        content_type: content_type(ndjson),
    })
}

/// A body file sent as it is, whatever its format (`--body-events`): an
/// OTLP protobuf, an Elasticsearch bulk body; `events` says how many events
/// it carries. Its Content-Type defaults to `application/octet-stream`
/// (`-H` sets the protocol's).
pub fn opaque(bytes: Vec<u8>, events: usize) -> Result<Payload, BodyError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(BodyError(format!(
            "body file exceeds {MAX_BODY_BYTES} bytes"
        )));
    }
    if bytes.is_empty() {
        return Err(BodyError("body file is empty".into()));
    }
    Ok(Payload {
        body: bytes,
        id_offsets: Vec::new(),
        events,
        content_type: CONTENT_TYPE_OPAQUE,
    })
}

fn json_events(bytes: &[u8]) -> Result<Vec<Value>, BodyError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| BodyError(format!("body file is not JSON: {e}")))?;
    let events = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return Err(BodyError("body file must be a JSON object or array".into())),
    };
    if events.iter().any(|e| !e.is_object()) {
        return Err(BodyError(
            "every event in the body file must be an object".into(),
        ));
    }
    Ok(events)
}

fn ndjson_events(bytes: &[u8]) -> Result<Vec<Value>, BodyError> {
    let mut events = Vec::new();
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| BodyError(format!("body file line {}: not JSON: {e}", n + 1)))?;
        if !value.is_object() {
            return Err(BodyError(format!(
                "body file line {}: not an object",
                n + 1
            )));
        }
        events.push(value);
    }
    Ok(events)
}

/// Offsets of each event's opening `{`: depth 0 for NDJSON lines and a lone
/// object, depth 1 inside a top-level array. The input is known-valid JSON.
fn object_starts(bytes: &[u8], ndjson: bool) -> Result<Vec<usize>, BodyError> {
    let event_depth = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') if !ndjson => 1,
        _ => 0,
    };
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if b == b'{' && depth == event_depth {
                    starts.push(i);
                }
                depth += 1;
            }
            b'}' | b']' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| BodyError("unbalanced brackets in body file".into()))?;
            }
            _ => {}
        }
    }
    Ok(starts)
}

/// Copies `bytes` with `"_id":"000…",` after each start brace (no comma for
/// an empty object); returns the new body and the id slot offsets.
fn splice_ids(bytes: &[u8], starts: &[usize]) -> (Vec<u8>, Vec<usize>) {
    let extra = ID_FIELD_PREFIX.len() + ID_HEX_LEN + 2;
    let mut body = Vec::with_capacity(bytes.len() + starts.len() * extra);
    let mut offsets = Vec::with_capacity(starts.len());
    let mut copied = 0;
    for &start in starts {
        body.extend_from_slice(&bytes[copied..=start]);
        copied = start + 1;
        body.extend_from_slice(ID_FIELD_PREFIX);
        offsets.push(body.len());
        body.extend_from_slice(&ID_PLACEHOLDER);
        body.push(b'"');
        let next = bytes[copied..].iter().find(|b| !b.is_ascii_whitespace());
        if next != Some(&b'}') {
            body.push(b',');
        }
    }
    body.extend_from_slice(&bytes[copied..]);
    (body, offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(p: &Payload) -> Vec<u8> {
        let mut body = p.body.clone();
        for (i, &o) in p.id_offsets.iter().enumerate() {
            let id = format!("{i:024x}");
            body[o..o + ID_HEX_LEN].copy_from_slice(id.as_bytes());
        }
        body
    }

    #[test]
    fn synthesized_events_have_type_size_and_id_slots() {
        let p = synthesize(3, 300, false, true);
        let v: Vec<Value> = serde_json::from_slice(&patch(&p)).unwrap();
        assert_eq!(v.len(), 3);
        for (i, e) in v.iter().enumerate() {
            assert_eq!(e["type"], SYNTHETIC_TYPE);
            assert_eq!(e["_id"], format!("{i:024x}"));
            assert_eq!(serde_json::to_vec(e).unwrap().len(), 300);
        }
        let single = synthesize(1, 300, false, false);
        assert_eq!(single.body.len(), 300);
        assert!(single.id_offsets.is_empty());
    }

    #[test]
    fn synthesized_ndjson_is_one_event_per_line() {
        let p = synthesize(4, 120, true, false);
        assert_eq!(p.content_type, CONTENT_TYPE_NDJSON);
        let lines: Vec<&[u8]> = p
            .body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 4);
        for l in lines {
            let v: Value = serde_json::from_slice(l).unwrap();
            assert_eq!(v["type"], SYNTHETIC_TYPE);
        }
    }

    #[test]
    fn file_array_gets_ids_spliced_and_stays_valid() {
        let file = br#" [ {"type":"a","s":"x{y}\"[z"}, {} ,{"type":"b","n":{"k":[1,{}]}} ] "#;
        let p = from_file(file, false, true).unwrap();
        assert_eq!(p.events, 3);
        let v: Vec<Value> = serde_json::from_slice(&patch(&p)).unwrap();
        assert_eq!(v[0]["s"], "x{y}\"[z");
        assert_eq!(v[1]["_id"], format!("{:024x}", 1));
        assert_eq!(v[2]["n"]["k"][1], serde_json::json!({}));
        assert_eq!(v[2]["_id"], format!("{:024x}", 2));
    }

    #[test]
    fn file_verbatim_without_ids_and_refused_with_existing_ids() {
        let file = b"{\"type\":\"a\"}\n\n{\"type\":\"b\"}\n";
        let p = from_file(file, true, false).unwrap();
        assert_eq!((p.body.as_slice(), p.events), (&file[..], 2));
        let p = from_file(file, true, true).unwrap();
        let text = String::from_utf8(patch(&p)).unwrap();
        assert_eq!(text.lines().filter(|l| l.contains("\"_id\"")).count(), 2);
        assert!(from_file(br#"{"_id":"x","type":"a"}"#, false, true).is_err());
        assert!(from_file(b"[1,2]", false, false).is_err());
        assert!(from_file(b"not json", false, false).is_err());
    }

    #[test]
    fn an_opaque_body_is_sent_unread_and_counted_as_told() {
        let protobuf = vec![0x0a, 0x03, 0xff, 0x00, 0x01];
        let payload = opaque(protobuf.clone(), 100).unwrap();
        assert_eq!(payload.body, protobuf);
        assert_eq!(payload.events, 100);
        assert!(payload.id_offsets.is_empty());
        assert_eq!(payload.content_type, CONTENT_TYPE_OPAQUE);
        assert!(opaque(Vec::new(), 1).is_err());
    }
}
