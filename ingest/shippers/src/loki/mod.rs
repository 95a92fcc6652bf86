//! Loki push: `POST /loki/api/v1/push`, as Promtail, Grafana Alloy, the
//! Loki logging libraries and Loki's own clients send it.
//!
//! # Bodies
//! - `Content-Type: application/json` ([`json`]): `{"streams": [{"stream":
//!   {labels}, "values": [["<ns>", "<line>"], ["<ns>", "<line>",
//!   {metadata}]]}]}`; the collector has already removed a
//!   `Content-Encoding: gzip`.
//! - `Content-Type: application/x-protobuf`, or no `Content-Type` (Loki
//!   reads those as protobuf too) ([`proto`]): a `PushRequest`, snappy
//!   block-compressed, labels as a selector string ([`selector`]). The
//!   decompressed size is checked against `--max-decoded-bytes` before
//!   anything is allocated.
//! - Any other type: 415.
//!
//! # Mapping: one Helios event per entry
//! | Loki | Helios field |
//! |---|---|
//! | the `type` rule (default `$labels.job\|$labels.service_name\|loki`) | `type` |
//! | entry time (ns) | `ts`: whole epoch milliseconds, exact (no float) |
//! | entry time (ns) | `ts_ns`: the exact nanoseconds, decimal string |
//! | entry line | `line` |
//! | stream labels (JSON `stream`, protobuf selector) | `labels`: object, in the order sent |
//! | structured metadata (JSON 3rd value, protobuf `structuredMetadata`) | `metadata`: object, only when present |
//!
//! A protobuf entry without a timestamp gets neither `ts` nor `ts_ns` (the
//! collector stamps the receive time). Loki clients give no deduplication
//! key, so there is no `_id`: the collector mints one. The rule's fields
//! are `$labels.<name>`, `$metadata.<name>`, `$line`, `$ts` and `$ts_ns`.
//!
//! # What is refused
//! The whole request (400, nothing stored) for a body that is not the
//! format, a selector that does not parse, a stream without labels (as
//! Loki: "at least one label pair is required per stream"), a label or
//! metadata name given twice (a Helios event may not repeat a member), or
//! a JSON time that is not a decimal count of nanoseconds whose
//! milliseconds fit an `i64`. A protobuf entry whose time Helios cannot
//! store (before 1970, `nanos` out of range) is refused alone and named in
//! the answer, the rest are stored.
//!
//! # Answers
//! Plain text bodies like Loki's (`text/plain; charset=utf-8`, one message
//! ending in a newline): 204 with no body when everything was stored. When
//! some entries were refused (by the decoder or by the collector's event
//! validation) the others are stored and the answer is 400 naming the
//! refused ones, as Loki answers a push whose entries fail its validation
//! (its clients log it and do not resend, which is right: the stored ones
//! must not be sent twice). Whole-request failures: see [`render_failure`];
//! backpressure is 503 with `Retry-After`, which Promtail, Alloy and
//! winston-loki (on its next flush) retry.

mod json;
mod proto;
mod selector;

use std::borrow::Cow;
use std::io::Write as _;

use crate::{
    json_string, media_type_is, ns_to_ms, text_of, Answer, Failure, Item, ItemRefusal, LineReject,
    Request, Settings, Translation, TypeRule,
};
use selector::Label;

/// The media type of JSON pushes.
const JSON: &str = "application/json";
/// The media type of protobuf pushes.
const PROTOBUF: &str = "application/x-protobuf";
/// Content type of every answer body.
const TEXT: &str = "text/plain; charset=utf-8";
/// Most refused entries a 400 answer names one by one (the rest are
/// counted), so a large refused batch does not make a large answer.
const MAX_LISTED_REFUSALS: usize = 20;
/// Nanoseconds per millisecond.
const NANOS_PER_MS: u128 = 1_000_000;

/// The default `type` rule: the stream's `job` label (Promtail, Alloy and
/// most clients set it), else `service_name` (Loki's own discovered
/// label, OTel-style pushers), else `loki`.
pub fn default_type_rule() -> TypeRule {
    TypeRule::parse("$labels.job|$labels.service_name|loki").expect("the default rule parses")
}

/// Translates a request body (see [`crate::decode`]).
pub fn decode(
    req: &Request<'_>,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    if body.is_empty() {
        return Err(Failure::NoData);
    }
    let mut events = Events::new(settings, out);
    if media_type_is(req.content_type, &[JSON]) {
        decode_json(body, &mut events)
    } else if req.content_type.trim().is_empty() || media_type_is(req.content_type, &[PROTOBUF]) {
        decode_protobuf(body, settings.max_decoded_bytes, &mut events)
    } else {
        Err(Failure::UnsupportedMediaType(format!(
            "Loki push takes {JSON} or {PROTOBUF} (snappy), not {:?}",
            req.content_type
        )))
    }
}

fn decode_json(body: &[u8], events: &mut Events<'_>) -> Result<(), Failure> {
    let push =
        json::parse(body).map_err(|e| Failure::Malformed(format!("loghttp.PushRequest: {e}")))?;
    for stream in &push.streams {
        let labels = &stream.stream.0;
        events.start_stream(labels)?;
        for entry in &stream.values {
            events.entry(labels, Ok(Some(entry.time)), &entry.line, &entry.metadata.0)?;
        }
    }
    Ok(())
}

fn decode_protobuf(
    body: &[u8],
    max_decoded_bytes: usize,
    events: &mut Events<'_>,
) -> Result<(), Failure> {
    let decoded_len = snap::raw::decompress_len(body).map_err(|e| {
        Failure::BadEncoding(format!("protobuf body is not snappy-compressed: {e}"))
    })?;
    if decoded_len > max_decoded_bytes {
        return Err(Failure::TooLarge(format!(
            "snappy body decompresses to {decoded_len} bytes, over the limit of {max_decoded_bytes}"
        )));
    }
    let decoded = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| {
            Failure::BadEncoding(format!("protobuf body is not snappy-compressed: {e}"))
        })?;
    let malformed = |e: String| Failure::Malformed(format!("logproto.PushRequest: {e}"));
    let mut metadata_bytes = Vec::new();
    let mut metadata: Vec<Label<'_>> = Vec::new();
    for stream in proto::streams(&decoded).map_err(malformed)? {
        let text = text_of(proto::stream_labels(stream).map_err(malformed)?);
        let labels = selector::parse(&text)
            .map_err(|e| Failure::Malformed(format!("error parsing labels {text:?}: {e}")))?;
        events.start_stream(&labels)?;
        proto::for_each_entry(
            stream,
            |bytes| {
                let entry = proto::entry(bytes, &mut metadata_bytes).map_err(malformed)?;
                let time = entry
                    .timestamp
                    .map(proto::nanos)
                    .transpose()
                    .map(|ns| ns.map(Nanos::Int));
                metadata.clear();
                metadata.extend(
                    metadata_bytes
                        .iter()
                        .map(|&(name, value)| (text_of(name), text_of(value))),
                );
                events.entry(&labels, time, &text_of(entry.line), &metadata)
            },
            malformed,
        )?;
    }
    Ok(())
}

/// An entry's time: nanoseconds since the epoch, as checked decimal text
/// from a JSON body or as a number.
#[derive(Debug, Clone, Copy)]
enum Nanos<'a> {
    /// Digits only, no leading zeros (`"0"` for zero), milliseconds that
    /// fit an `i64` ([`Nanos::text`]).
    Text(&'a str),
    /// From a JSON integer or a protobuf `Timestamp`.
    Int(u128),
}

impl<'a> Nanos<'a> {
    /// Decimal text of nanoseconds, or `None` when it is not digits or its
    /// milliseconds overflow an `i64`.
    fn text(text: &'a str) -> Option<Nanos<'a>> {
        ns_to_ms(text)?;
        let digits = text.trim_start_matches('0');
        Some(Nanos::Text(if digits.is_empty() { "0" } else { digits }))
    }

    /// Whole milliseconds, if they fit an `i64`.
    fn ms(self) -> Option<i64> {
        match self {
            Nanos::Text(text) => ns_to_ms(text),
            Nanos::Int(ns) => i64::try_from(ns / NANOS_PER_MS).ok(),
        }
    }

    /// Appends the decimal digits.
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Nanos::Text(text) => out.extend_from_slice(text.as_bytes()),
            // Writing into a Vec cannot fail.
            Nanos::Int(ns) => {
                let _ = write!(out, "{ns}");
            }
        }
    }

    fn to_text(self) -> Cow<'a, str> {
        match self {
            Nanos::Text(text) => Cow::Borrowed(text),
            Nanos::Int(ns) => Cow::Owned(ns.to_string()),
        }
    }
}

/// Writes events into a [`Translation`], one stream at a time.
struct Events<'t> {
    rule: &'t TypeRule,
    max_events: usize,
    out: &'t mut Translation,
    /// The current stream's `labels` object, written once per stream.
    labels_json: Vec<u8>,
    next_line: u32,
}

impl<'t> Events<'t> {
    fn new(settings: &'t Settings, out: &'t mut Translation) -> Events<'t> {
        Events {
            rule: &settings.types.loki,
            max_events: settings.max_events,
            out,
            labels_json: Vec::new(),
            next_line: 0,
        }
    }

    fn start_stream(&mut self, labels: &[Label<'_>]) -> Result<(), Failure> {
        if labels.is_empty() {
            return Err(Failure::Malformed(
                "error at least one label pair is required per stream".into(),
            ));
        }
        if let Some(name) = first_duplicate(labels) {
            return Err(Failure::Malformed(format!(
                "error parsing labels: duplicate label name {name:?}"
            )));
        }
        self.labels_json.clear();
        write_object(&mut self.labels_json, labels);
        Ok(())
    }

    /// One entry: an event line, or an item refused alone when its `time`
    /// is one Helios cannot store.
    fn entry(
        &mut self,
        labels: &[Label<'_>],
        time: Result<Option<Nanos<'_>>, String>,
        line: &str,
        metadata: &[Label<'_>],
    ) -> Result<(), Failure> {
        if self.out.items.len() >= self.max_events {
            return Err(Failure::TooManyEvents);
        }
        if let Some(name) = first_duplicate(metadata) {
            return Err(Failure::Malformed(format!(
                "duplicate structured metadata name {name:?}"
            )));
        }
        let checked = time.and_then(|time| match time {
            Some(ns) => match ns.ms() {
                Some(ms) => Ok(Some((ns, ms))),
                None => Err(format!(
                    "entry timestamp {}ns is out of range",
                    ns.to_text()
                )),
            },
            None => Ok(None),
        });
        let time = match checked {
            Ok(time) => time,
            Err(reason) => {
                self.out.items.push(Item {
                    line: Err(ItemRefusal {
                        status: 400,
                        kind: "invalid_timestamp",
                        reason,
                    }),
                    echo: Default::default(),
                });
                return Ok(());
            }
        };
        let number = self.next_line;
        self.next_line = number
            .checked_add(1)
            .ok_or_else(|| Failure::Internal("more than u32::MAX event lines".into()))?;
        let kind = self
            .rule
            .resolve(|path| field(path, labels, metadata, line, time));
        let ndjson = &mut self.out.ndjson;
        ndjson.extend_from_slice(b"{\"type\":");
        json_string(ndjson, &kind);
        if let Some((ns, ms)) = time {
            // Writing into a Vec cannot fail.
            let _ = write!(ndjson, ",\"ts\":{ms},\"ts_ns\":\"");
            ns.write(ndjson);
            ndjson.push(b'"');
        }
        ndjson.extend_from_slice(b",\"line\":");
        json_string(ndjson, line);
        ndjson.extend_from_slice(b",\"labels\":");
        ndjson.extend_from_slice(&self.labels_json);
        if !metadata.is_empty() {
            ndjson.extend_from_slice(b",\"metadata\":");
            write_object(ndjson, metadata);
        }
        ndjson.extend_from_slice(b"}\n");
        self.out.items.push(Item {
            line: Ok(number),
            echo: Default::default(),
        });
        Ok(())
    }
}

/// The text at a rule's field path in the event being written: the same
/// answer [`crate::lookup_json`] gives on the finished line (labels and
/// metadata are flat, so `labels.a.b` is the label named `a.b`).
fn field<'x>(
    path: &str,
    labels: &'x [Label<'_>],
    metadata: &'x [Label<'_>],
    line: &'x str,
    time: Option<(Nanos<'x>, i64)>,
) -> Option<Cow<'x, str>> {
    let find = |pairs: &'x [Label<'_>], name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_ref()))
    };
    if let Some(name) = path.strip_prefix("labels.") {
        find(labels, name)
    } else if let Some(name) = path.strip_prefix("metadata.") {
        find(metadata, name)
    } else if path == "line" {
        Some(Cow::Borrowed(line))
    } else if path == "ts_ns" {
        time.map(|(ns, _)| ns.to_text())
    } else if path == "ts" {
        time.map(|(_, ms)| Cow::Owned(ms.to_string()))
    } else {
        None
    }
}

/// A JSON object of text values.
fn write_object(out: &mut Vec<u8>, pairs: &[Label<'_>]) {
    out.push(b'{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(out, name);
        out.push(b':');
        json_string(out, value);
    }
    out.push(b'}');
}

/// The first name that appears twice. Streams carry a handful of labels,
/// so the quadratic scan beats sorting until a few dozen; past that sort.
fn first_duplicate<'p>(pairs: &'p [Label<'_>]) -> Option<&'p str> {
    const SCAN_MAX: usize = 32;
    if pairs.len() <= SCAN_MAX {
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(other, _)| other == name) {
                return Some(name);
            }
        }
        return None;
    }
    let mut names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_ref()).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// The answer to a journaled request (see [`crate::render_success`]): 204
/// when every entry was stored, else 400 naming the refused entries (the
/// others are stored).
pub fn render_success(
    _req: &Request<'_>,
    translation: &Translation,
    rejected: &[LineReject<'_>],
    out: &mut Vec<u8>,
) -> Answer {
    let mut refused = 0usize;
    for (index, item) in translation.items.iter().enumerate() {
        let reason: Option<&str> = match &item.line {
            Err(refusal) => Some(&refusal.reason),
            Ok(line) => rejected
                .binary_search_by_key(line, |r| r.line)
                .ok()
                .map(|at| rejected[at].error),
        };
        let Some(reason) = reason else { continue };
        if refused < MAX_LISTED_REFUSALS {
            let _ = writeln!(out, "entry {index} ignored, reason: '{reason}'");
        }
        refused += 1;
    }
    if refused == 0 {
        return answer(204);
    }
    if refused > MAX_LISTED_REFUSALS {
        let _ = writeln!(out, "... and {} more", refused - MAX_LISTED_REFUSALS);
    }
    let _ = writeln!(
        out,
        "total ignored: {refused} out of {}; the other entries were stored",
        translation.items.len()
    );
    answer(400)
}

/// The answer to a refused request (see [`crate::render_failure`]): Loki's
/// statuses with a one-line text body.
pub fn render_failure(_req: &Request<'_>, failure: &Failure, out: &mut Vec<u8>) -> Answer {
    let status = match failure {
        Failure::MissingKey | Failure::UnknownKey => 401,
        Failure::Forbidden(_) => 403,
        Failure::Malformed(_)
        | Failure::NoData
        | Failure::EventRequired { .. }
        | Failure::EventBlank { .. }
        | Failure::BadEncoding(_) => 400,
        Failure::TooLarge(_) | Failure::TooManyEvents => 413,
        Failure::UnsupportedMediaType(_) => 415,
        Failure::Busy(_) => 503,
        Failure::NotFound => 404,
        Failure::MethodNotAllowed => 405,
        Failure::Internal(_) => 500,
    };
    let _ = match failure {
        Failure::MissingKey => writeln!(out, "unauthorized: no credentials"),
        Failure::UnknownKey => writeln!(out, "unauthorized: unknown credentials"),
        Failure::Malformed(message) => writeln!(out, "{message}"),
        Failure::NoData => writeln!(out, "no data: empty request body"),
        Failure::NotFound => writeln!(out, "404 page not found"),
        other => writeln!(out, "{other}"),
    };
    Answer {
        retry_after: matches!(failure, Failure::Busy(_)),
        ..answer(status)
    }
}

fn answer(status: u16) -> Answer {
    Answer {
        status,
        content_type: TEXT,
        headers: "",
        retry_after: false,
    }
}

#[cfg(test)]
mod tests;
