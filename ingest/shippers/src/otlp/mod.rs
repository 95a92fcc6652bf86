//! OTLP/HTTP logs: `POST /v1/logs` with an `ExportLogsServiceRequest` as
//! binary protobuf (`Content-Type: application/x-protobuf`) or as OTLP/JSON
//! (`application/json`); any other content type is refused (415).
//!
//! # Events
//!
//! One Helios event per `LogRecord`, in request order. A member is written
//! only when the record sets it (non-empty, non-zero); nothing else is
//! added, and `recv`, `app` and `ts_raw` never are.
//!
//! | OTLP | Helios event |
//! | --- | --- |
//! | the `type` rule (`--otlp-type`, default `$event_name\|$attributes.event.name\|otel.log`) | `type` |
//! | `timeUnixNano`, else `observedTimeUnixNano` (whichever is first non-zero), in whole ms | `ts` (integer epoch ms; absent when both are 0: the collector uses the receive time) |
//! | the record attribute `log.record.uid` (last occurrence) | `_id` = [`crate::derived_id`]`(app, Otlp, [uid])` (none without it: the collector mints one) |
//! | `timeUnixNano` | `time_unix_nano` (exact decimal string) |
//! | `observedTimeUnixNano` | `observed_time_unix_nano` (exact decimal string) |
//! | `severityNumber` | `severity_number` (integer, 1–24) |
//! | `severityNumber` | `priority`: 17–24 (FATAL, ERROR) → `"high"`, 5–16 (DEBUG, INFO, WARN) → `"normal"`, 1–4 (TRACE) → `"low"`; absent for 0 or out of range (the collector then counts the event `normal`). The rule syslog's severities follow; it matters only at the collector's journal budget |
//! | `severityText` | `severity_text` |
//! | `body` | `body` (see *Values*) |
//! | `attributes` | `attributes` (object) |
//! | `droppedAttributesCount` | `dropped_attributes_count` |
//! | `flags` | `flags` (integer; W3C trace flags in the low byte) |
//! | `traceId`, `spanId` | `trace_id`, `span_id` (lowercase hex) |
//! | `eventName` | `event_name` |
//! | `resource.attributes` | `resource` (object) |
//! | `resource.droppedAttributesCount` | `resource_dropped_attributes_count` |
//! | `resource.entityRefs` | `resource_entity_refs` (array of `{type, id_keys, description_keys, schema_url}`) |
//! | `ResourceLogs.schemaUrl` | `resource_schema_url` |
//! | `scope.name`, `scope.version`, `scope.attributes`, `scope.droppedAttributesCount` | `scope`: `{name, version, attributes, dropped_attributes_count}` (absent when all are empty) |
//! | `ScopeLogs.schemaUrl` | `scope_schema_url` |
//!
//! *Values* (`body`, attribute values, nested): `stringValue` → string,
//! `boolValue` → boolean, `intValue` → integer (exact int64), `doubleValue`
//! → number (NaN and the infinities as the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"`), `bytesValue` → standard base64 string, `arrayValue` →
//! array, `kvlistValue` → object, an empty `AnyValue` → `null` (an empty
//! body is left out). A key repeated in attributes or a kvlist keeps its
//! last value, so an event never has duplicate member names. The profiling
//! signal's `stringValueStrindex` reads as an empty value, as the
//! specification asks of the other signals.
//!
//! A `type` rule's `$path` names any of these members; attribute keys
//! contain dots and match greedily (`$resource.service.name`,
//! `$attributes.http.route`, `$scope.name`, `$body.kind` for a kvlist body,
//! `$severity_text`); numbers and booleans resolve to their JSON text.
//!
//! # Decoding
//!
//! A protobuf body is read in place (`protobuf.rs` over `wire.rs`): each
//! record's event is written from slices of the body, with no message
//! structs, so it costs less per event than the collector's validation of
//! the event it writes (issue 14). A body that reader does not take on
//! itself (malformed, over a limit, a message field given twice, nesting at
//! prost's last level) is decoded again by prost into the `proto.rs`
//! structs and written by `event.rs`, as OTLP/JSON always is (serde into
//! the same structs): that path's answer, events or error, is the one
//! given, so both readers answer every body alike.
//!
//! # Answers
//!
//! In the request's encoding (protobuf for `application/x-protobuf`, JSON
//! otherwise), with that `Content-Type`:
//! - success: 200 and an empty `ExportLogsServiceResponse` (protobuf: zero
//!   bytes; JSON: `{}`); when some records were refused (by the collector's
//!   validation, e.g. a body nested too deep), 200 with `partialSuccess`:
//!   `rejectedLogRecords` (in JSON a string, the mapping's int64) and an
//!   `errorMessage` naming the first few records and why;
//! - failure: a `google.rpc.Status` (`code`, `message`) with 400 (malformed
//!   or no data; gRPC code 3 `INVALID_ARGUMENT`), 401 (missing or unknown
//!   key; 16 `UNAUTHENTICATED`), 403 (7 `PERMISSION_DENIED`), 404 (5
//!   `NOT_FOUND`), 405 (12 `UNIMPLEMENTED`), 413 (too
//!   large or too many records; 8 `RESOURCE_EXHAUSTED`), 415 (content type;
//!   12 `UNIMPLEMENTED`; content encoding: 3), 503 with `Retry-After`
//!   (backpressure, a failed commit; 14 `UNAVAILABLE`: the exporters retry
//!   it) and 500 (13 `INTERNAL`).
//!
//! An empty request (no records) is a success, as the specification asks.

mod base64;
mod event;
mod json;
pub mod proto;
mod protobuf;
mod wire;

use prost::Message as _;

use crate::{
    json_string, media_type_is, Answer, Failure, Item, LineReject, Request, Settings, Translation,
    TypeRule,
};
use event::{Context, Fragment};
use proto::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse, Status,
};

/// The binary protobuf content type.
const PROTOBUF: &str = "application/x-protobuf";
/// The OTLP/JSON content type.
const JSON: &str = "application/json";

/// Most refused records a partial success names (the count covers all).
const REASONS_REPORTED_MAX: usize = 5;
/// Longest reason kept per refused record in a partial success message.
const REASON_BYTES_MAX: usize = 200;
/// Longest `message` of a failure `Status`.
const STATUS_MESSAGE_BYTES_MAX: usize = 1024;

/// `google.rpc.Code` values.
mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const PERMISSION_DENIED: i32 = 7;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// The default `type` rule: the record's event name (the field, or the
/// older `event.name` attribute), else `otel.log`.
pub fn default_type_rule() -> TypeRule {
    TypeRule::parse("$event_name|$attributes.event.name|otel.log").expect("the default rule parses")
}

/// How the body (and so the answer) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(content_type: &str) -> Option<Encoding> {
        if media_type_is(content_type, &[PROTOBUF]) {
            Some(Encoding::Protobuf)
        } else if media_type_is(content_type, &[JSON]) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    /// The answer's encoding: the request's, JSON when it cannot be told.
    fn of_answer(content_type: &str) -> Encoding {
        Encoding::of(content_type).unwrap_or(Encoding::Json)
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// Translates a request body (see [`crate::decode`]): one event line and
/// one [`Item`] per log record. Refuses the whole request when the body is
/// not an `ExportLogsServiceRequest` in its content type (400, 415), holds
/// more records than `settings.max_events` (413), or translates to more
/// than `settings.max_decoded_bytes` of events (413: a large resource is
/// copied into every record, so a small body could otherwise grow without
/// bound).
pub fn decode(
    req: &Request<'_>,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    if Encoding::of(req.content_type) == Some(Encoding::Protobuf) {
        let (lines, items) = (out.ndjson.len(), out.items.len());
        if protobuf::decode(req, body, settings, out).is_ok() {
            return Ok(());
        }
        // A body the in-place reader leaves to prost (malformed, over a
        // limit, a message field given twice): prost and the owned-struct
        // path below decide, so the answer is exactly theirs.
        out.ndjson.truncate(lines);
        out.items.truncate(items);
    }
    decode_owned(req, body, settings, out)
}

/// [`decode`] through the message structs: prost's decoder (or serde's for
/// OTLP/JSON), then `event::write_event` per record.
fn decode_owned(
    req: &Request<'_>,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    let request = parse(req.content_type, body)?;
    let records: usize = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    if records > settings.max_events {
        return Err(Failure::TooManyEvents);
    }
    let mut resource = Fragment::default();
    let mut scope = Fragment::default();
    for resource_logs in &request.resource_logs {
        resource.write_resource(resource_logs);
        for scope_logs in &resource_logs.scope_logs {
            scope.write_scope(scope_logs);
            let context = Context {
                resource_logs,
                scope_logs,
                resource: &resource,
                scope: &scope,
            };
            for record in &scope_logs.log_records {
                let line = u32::try_from(out.items.len()).map_err(|_| Failure::TooManyEvents)?;
                event::write_event(
                    &mut out.ndjson,
                    context,
                    record,
                    &settings.types.otlp,
                    req.app,
                );
                if out.ndjson.len() > settings.max_decoded_bytes {
                    return Err(Failure::TooLarge(format!(
                        "the log records translate to more than {} bytes of events \
                         (max_decoded_bytes)",
                        settings.max_decoded_bytes
                    )));
                }
                out.items.push(Item {
                    line: Ok(line),
                    echo: crate::Echo::None,
                });
            }
        }
    }
    Ok(())
}

fn parse(content_type: &str, body: &[u8]) -> Result<ExportLogsServiceRequest, Failure> {
    match Encoding::of(content_type) {
        Some(Encoding::Protobuf) => ExportLogsServiceRequest::decode(body).map_err(|e| {
            Failure::Malformed(format!(
                "body is not a protobuf ExportLogsServiceRequest: {e}"
            ))
        }),
        Some(Encoding::Json) => {
            // serde's derive would also read a message from a JSON array,
            // by position; a request is an object.
            if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                return Err(Failure::Malformed(
                    "an OTLP/JSON ExportLogsServiceRequest is an object, not an array".into(),
                ));
            }
            serde_json::from_slice(body).map_err(|e| {
                Failure::Malformed(format!(
                    "body is not an OTLP/JSON ExportLogsServiceRequest: {e}"
                ))
            })
        }
        None => Err(Failure::UnsupportedMediaType(format!(
            "{content_type:?}: OTLP/HTTP takes {PROTOBUF} or {JSON}"
        ))),
    }
}

/// The answer to a journaled request (see [`crate::render_success`]): an
/// empty `ExportLogsServiceResponse`, or one with `partialSuccess` when
/// records were refused.
pub fn render_success(
    req: &Request<'_>,
    translation: &Translation,
    rejected: &[LineReject<'_>],
    out: &mut Vec<u8>,
) -> Answer {
    let encoding = Encoding::of_answer(req.content_type);
    let refused_items = translation
        .items
        .iter()
        .filter(|item| item.line.is_err())
        .count();
    let refused = refused_items + rejected.len();
    if refused > 0 {
        let partial = ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(refused).unwrap_or(i64::MAX),
            error_message: partial_message(translation, rejected, refused),
        };
        match encoding {
            Encoding::Protobuf => out.extend_from_slice(
                &ExportLogsServiceResponse {
                    partial_success: Some(partial),
                }
                .encode_to_vec(),
            ),
            Encoding::Json => {
                // int64 is a string in the JSON mapping.
                out.extend_from_slice(b"{\"partialSuccess\":{\"rejectedLogRecords\":\"");
                out.extend_from_slice(partial.rejected_log_records.to_string().as_bytes());
                out.extend_from_slice(b"\",\"errorMessage\":");
                json_string(out, &partial.error_message);
                out.extend_from_slice(b"}}");
            }
        }
    } else if encoding == Encoding::Json {
        out.extend_from_slice(b"{}");
    }
    Answer {
        status: 200,
        content_type: encoding.content_type(),
        headers: "",
        retry_after: false,
    }
}

/// `"2 of 5 log records rejected: record 1: …; record 4: …"`: records are
/// numbered 0-based in request order, as the exporter sent them.
fn partial_message(
    translation: &Translation,
    rejected: &[LineReject<'_>],
    refused: usize,
) -> String {
    let mut reasons: Vec<(usize, &str)> = Vec::new();
    let mut pending = rejected.iter().peekable();
    for (position, item) in translation.items.iter().enumerate() {
        let reason = match &item.line {
            Err(refusal) => Some(refusal.reason.as_str()),
            Ok(line) => {
                // Both are in ascending line order: walk them together.
                while pending.next_if(|r| r.line < *line).is_some() {}
                pending.next_if(|r| r.line == *line).map(|r| r.error)
            }
        };
        if let Some(reason) = reason {
            if reasons.len() == REASONS_REPORTED_MAX {
                break;
            }
            reasons.push((position, reason));
        }
    }
    let mut message = format!(
        "{refused} of {} log records rejected",
        translation.items.len().max(refused)
    );
    for (i, (position, reason)) in reasons.iter().enumerate() {
        message.push_str(if i == 0 { ": " } else { "; " });
        message.push_str(&format!(
            "record {position}: {}",
            truncated(reason, REASON_BYTES_MAX)
        ));
    }
    if refused > reasons.len() && !reasons.is_empty() {
        message.push_str(&format!("; and {} more", refused - reasons.len()));
    }
    message
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The answer to a refused request (see [`crate::render_failure`]): a
/// `google.rpc.Status` in the request's encoding.
pub fn render_failure(req: &Request<'_>, failure: &Failure, out: &mut Vec<u8>) -> Answer {
    let (status, code) = match failure {
        Failure::MissingKey | Failure::UnknownKey => (401, code::UNAUTHENTICATED),
        Failure::Forbidden(_) => (403, code::PERMISSION_DENIED),
        Failure::Malformed(_)
        | Failure::NoData
        | Failure::EventRequired { .. }
        | Failure::EventBlank { .. } => (400, code::INVALID_ARGUMENT),
        Failure::TooLarge(_) | Failure::TooManyEvents => (413, code::RESOURCE_EXHAUSTED),
        Failure::UnsupportedMediaType(_) => (415, code::UNIMPLEMENTED),
        Failure::BadEncoding(_) => (415, code::INVALID_ARGUMENT),
        Failure::Busy(_) => (503, code::UNAVAILABLE),
        Failure::NotFound => (404, code::NOT_FOUND),
        Failure::MethodNotAllowed => (405, code::UNIMPLEMENTED),
        Failure::Internal(_) => (500, code::INTERNAL),
    };
    let full = failure.to_string();
    let message = truncated(&full, STATUS_MESSAGE_BYTES_MAX);
    let encoding = Encoding::of_answer(req.content_type);
    match encoding {
        Encoding::Protobuf => out.extend_from_slice(
            &Status {
                code,
                message: message.to_owned(),
            }
            .encode_to_vec(),
        ),
        Encoding::Json => {
            out.extend_from_slice(format!("{{\"code\":{code},\"message\":").as_bytes());
            json_string(out, message);
            out.push(b'}');
        }
    }
    Answer {
        status,
        content_type: encoding.content_type(),
        // The collector writes `Allow` on a 405 itself.
        headers: "",
        retry_after: matches!(failure, Failure::Busy(_)),
    }
}

#[cfg(test)]
mod tests;
