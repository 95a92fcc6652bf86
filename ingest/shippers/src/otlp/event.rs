//! One OTLP `LogRecord` written as one Helios event (the field mapping is
//! in the parent module's doc), and the lookups its `type` rule resolves
//! against. The JSON text is written directly, not built as a
//! `serde_json::Value` first: decoding must cost no more per event than the
//! collector's own validation of it.
//!
//! A record's resource and scope are shared by every record beside it, so
//! their JSON is written once per `ResourceLogs`/`ScopeLogs` (a
//! [`Fragment`]) and copied into each event.

use std::borrow::Cow;
use std::collections::HashSet;

use super::base64;
use super::proto::{
    AnyValue, InstrumentationScope, KeyValue, LogRecord, ResourceLogs, ScopeLogs, Value,
};
use super::wire::is_plain;
use crate::{derived_id, hex, json_string, Protocol, TypeRule};

/// The attribute that semantic conventions define as a record's unique id
/// (a retry of the same record carries the same value): it becomes a
/// deterministic Helios `_id`.
pub const UID_ATTRIBUTE: &str = "log.record.uid";

/// Above this many pairs, finding each key's last occurrence uses a hash
/// set instead of scanning the pairs after it (quadratic on big maps).
pub const LINEAR_KEY_SCAN_MAX: usize = 16;

/// Nanoseconds per millisecond.
pub const NS_PER_MS: u64 = 1_000_000;

/// The members an event copies from its resource (or scope): JSON text
/// that starts with `,` (or is empty), ready to append.
#[derive(Debug, Default)]
pub struct Fragment(Vec<u8>);

impl Fragment {
    /// The members of `resource_logs`' resource: `resource` (its
    /// attributes), `resource_dropped_attributes_count`,
    /// `resource_entity_refs`, `resource_schema_url`; each only when set.
    pub fn write_resource(&mut self, resource_logs: &ResourceLogs) {
        let out = &mut self.0;
        out.clear();
        if let Some(resource) = &resource_logs.resource {
            if !resource.attributes.is_empty() {
                out.extend_from_slice(b",\"resource\":");
                write_key_values(out, &resource.attributes);
            }
            write_count(
                out,
                "resource_dropped_attributes_count",
                resource.dropped_attributes_count,
            );
            if !resource.entity_refs.is_empty() {
                out.extend_from_slice(b",\"resource_entity_refs\":[");
                for (i, entity) in resource.entity_refs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.push(b'{');
                    let mut members = Members::new(out);
                    members.string("type", &entity.r#type);
                    members.strings("id_keys", &entity.id_keys);
                    members.strings("description_keys", &entity.description_keys);
                    members.string("schema_url", &entity.schema_url);
                    out.push(b'}');
                }
                out.push(b']');
            }
        }
        write_text(out, "resource_schema_url", &resource_logs.schema_url);
    }

    /// The members of `scope_logs`' scope: `scope` (`name`, `version`,
    /// `attributes`, `dropped_attributes_count`, each only when set; absent
    /// when none is) and `scope_schema_url`.
    pub fn write_scope(&mut self, scope_logs: &ScopeLogs) {
        let out = &mut self.0;
        out.clear();
        if let Some(scope) = scope_logs.scope.as_ref().filter(|s| !scope_is_empty(s)) {
            out.extend_from_slice(b",\"scope\":{");
            let mut members = Members::new(out);
            members.string("name", &scope.name);
            members.string("version", &scope.version);
            if !scope.attributes.is_empty() {
                members.key("attributes");
                write_key_values(members.out, &scope.attributes);
            }
            if scope.dropped_attributes_count != 0 {
                members.key("dropped_attributes_count");
                write_u64(members.out, u64::from(scope.dropped_attributes_count));
            }
            out.push(b'}');
        }
        write_text(out, "scope_schema_url", &scope_logs.schema_url);
    }
}

fn scope_is_empty(scope: &InstrumentationScope) -> bool {
    scope.name.is_empty()
        && scope.version.is_empty()
        && scope.attributes.is_empty()
        && scope.dropped_attributes_count == 0
}

/// What a record shares with the records beside it.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Its `ResourceLogs`.
    pub resource_logs: &'a ResourceLogs,
    /// Its `ScopeLogs`.
    pub scope_logs: &'a ScopeLogs,
    /// [`Fragment::write_resource`] of `resource_logs`.
    pub resource: &'a Fragment,
    /// [`Fragment::write_scope`] of `scope_logs`.
    pub scope: &'a Fragment,
}

/// Appends `record` as one event line (ending in `\n`).
pub fn write_event(
    out: &mut Vec<u8>,
    context: Context<'_>,
    record: &LogRecord,
    rule: &TypeRule,
    app: &str,
) {
    let event_type = rule.resolve(|path| lookup(context, record, path));
    out.extend_from_slice(b"{\"type\":");
    write_str(out, &event_type);
    let uid = last_value(&record.attributes, UID_ATTRIBUTE).and_then(scalar_text);
    write_times_and_severity(
        out,
        RecordScalars {
            app,
            uid: uid.as_deref(),
            time_unix_nano: record.time_unix_nano,
            observed_time_unix_nano: record.observed_time_unix_nano,
            severity_number: record.severity_number,
        },
    );
    write_text(out, "severity_text", &record.severity_text);
    if let Some(body) = record.body.as_ref().filter(|b| !is_empty(b)) {
        out.extend_from_slice(b",\"body\":");
        write_any(out, body);
    }
    if !record.attributes.is_empty() {
        out.extend_from_slice(b",\"attributes\":");
        write_key_values(out, &record.attributes);
    }
    write_count(
        out,
        "dropped_attributes_count",
        record.dropped_attributes_count,
    );
    write_count(out, "flags", record.flags);
    write_hex(out, "trace_id", &record.trace_id);
    write_hex(out, "span_id", &record.span_id);
    write_text(out, "event_name", &record.event_name);
    out.extend_from_slice(&context.resource.0);
    out.extend_from_slice(&context.scope.0);
    out.extend_from_slice(b"}\n");
}

/// The Helios priority of an OTLP severity number, by the rule syslog's
/// severities follow: FATAL and ERROR (17–24) → `high`, WARN, INFO and
/// DEBUG (5–16) → `normal`, TRACE (1–4) → `low`; none for 0 (unspecified)
/// or a number outside 1–24 (the event then counts as `normal`).
pub fn priority(severity_number: i32) -> Option<&'static str> {
    match severity_number {
        17..=24 => Some("high"),
        5..=16 => Some("normal"),
        1..=4 => Some("low"),
        _ => None,
    }
}

/// The event's `ts`: `time_unix_nano`, else `observed_time_unix_nano`, in
/// whole milliseconds; `None` when both are 0 (unknown).
pub fn ts_ms(time_unix_nano: u64, observed_time_unix_nano: u64) -> Option<u64> {
    [time_unix_nano, observed_time_unix_nano]
        .into_iter()
        .find(|&ns| ns != 0)
        .map(|ns| ns / NS_PER_MS)
}

/// A record's scalar members, as either reader has them.
pub struct RecordScalars<'a> {
    /// The app the key stamps (part of the derived id).
    pub app: &'a str,
    /// The record's `log.record.uid` attribute, if any.
    pub uid: Option<&'a str>,
    /// `timeUnixNano`.
    pub time_unix_nano: u64,
    /// `observedTimeUnixNano`.
    pub observed_time_unix_nano: u64,
    /// `severityNumber`.
    pub severity_number: i32,
}

/// The members after `type`, written the same by both readers (the prost
/// path here, the in-place one in `protobuf.rs`): `ts`, the derived `_id`,
/// both exact times, `severity_number` and `priority`.
pub fn write_times_and_severity(out: &mut Vec<u8>, record: RecordScalars<'_>) {
    if let Some(ts_ms) = ts_ms(record.time_unix_nano, record.observed_time_unix_nano) {
        out.extend_from_slice(b",\"ts\":");
        write_u64(out, ts_ms);
    }
    if let Some(uid) = record.uid.filter(|uid| !uid.is_empty()) {
        out.extend_from_slice(b",\"_id\":");
        write_str(out, &derived_id(record.app, Protocol::Otlp, &[uid]));
    }
    write_nanos(out, "time_unix_nano", record.time_unix_nano);
    write_nanos(
        out,
        "observed_time_unix_nano",
        record.observed_time_unix_nano,
    );
    if record.severity_number != 0 {
        out.extend_from_slice(b",\"severity_number\":");
        write_i64(out, i64::from(record.severity_number));
    }
    if let Some(priority) = priority(record.severity_number) {
        out.extend_from_slice(b",\"priority\":\"");
        out.extend_from_slice(priority.as_bytes());
        out.push(b'"');
    }
}

/// The text of the event's field at `path` (a `type` rule's `$path`), as
/// [`crate::lookup_json`] would find it in the written event: each level
/// takes the longest dotted key that exists; strings as they are, numbers
/// and booleans as JSON writes them, objects and arrays `None`.
pub fn lookup<'a>(context: Context<'a>, record: &'a LogRecord, path: &str) -> Option<Cow<'a, str>> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let resource = context.resource_logs.resource.as_ref();
    let scope = context.scope_logs.scope.as_ref();
    match (head, rest) {
        ("attributes", Some(rest)) => lookup_key_values(&record.attributes, rest),
        ("resource", Some(rest)) => lookup_key_values(&resource?.attributes, rest),
        ("scope", Some(rest)) => lookup_scope(scope?, rest),
        ("body", None) => record.body.as_ref().and_then(scalar_text),
        ("body", Some(rest)) => match &record.body.as_ref()?.value {
            Some(Value::Kvlist(list)) => lookup_key_values(&list.values, rest),
            _ => None,
        },
        ("event_name", None) => non_empty(&record.event_name),
        ("severity_text", None) => non_empty(&record.severity_text),
        ("severity_number", None) => non_zero(i64::from(record.severity_number)),
        ("priority", None) => priority(record.severity_number).map(Cow::Borrowed),
        ("time_unix_nano", None) => non_zero(record.time_unix_nano),
        ("observed_time_unix_nano", None) => non_zero(record.observed_time_unix_nano),
        ("dropped_attributes_count", None) => non_zero(record.dropped_attributes_count),
        ("flags", None) => non_zero(record.flags),
        ("trace_id", None) => non_empty_hex(&record.trace_id),
        ("span_id", None) => non_empty_hex(&record.span_id),
        ("resource_dropped_attributes_count", None) => non_zero(resource?.dropped_attributes_count),
        ("resource_schema_url", None) => non_empty(&context.resource_logs.schema_url),
        ("scope_schema_url", None) => non_empty(&context.scope_logs.schema_url),
        _ => None,
    }
}

fn lookup_scope<'a>(scope: &'a InstrumentationScope, path: &str) -> Option<Cow<'a, str>> {
    match path.split_once('.') {
        Some(("attributes", rest)) => lookup_key_values(&scope.attributes, rest),
        Some(_) => None,
        None => match path {
            "name" => non_empty(&scope.name),
            "version" => non_empty(&scope.version),
            "dropped_attributes_count" => non_zero(scope.dropped_attributes_count),
            _ => None,
        },
    }
}

/// `path` in a map (attributes, a kvlist), greedily: `service.name` is the
/// key `service.name` if there is one, else `name` inside a kvlist under
/// `service`.
fn lookup_key_values<'a>(pairs: &'a [KeyValue], path: &str) -> Option<Cow<'a, str>> {
    let mut end = path.len();
    loop {
        let key = &path[..end];
        if let Some(pair) = pairs.iter().rev().find(|pair| pair.key == key) {
            let value = pair.value.as_ref();
            if end == path.len() {
                return value.and_then(scalar_text);
            }
            if let Some(Value::Kvlist(list)) = value.and_then(|v| v.value.as_ref()) {
                if let Some(found) = lookup_key_values(&list.values, &path[end + 1..]) {
                    return Some(found);
                }
            }
        }
        end = path[..end].rfind('.')?;
    }
}

/// The value of the last pair named `key` (the one the event keeps).
fn last_value<'a>(pairs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    pairs
        .iter()
        .rev()
        .find(|pair| pair.key == key)?
        .value
        .as_ref()
}

/// A scalar's text as the event holds it; `None` for arrays, maps and
/// empty values.
fn scalar_text(value: &AnyValue) -> Option<Cow<'_, str>> {
    match value.value.as_ref()? {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Int(n) => Some(Cow::Owned(n.to_string())),
        Value::Double(x) => Some(match non_finite_name(*x) {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(serde_json::to_string(x).ok()?),
        }),
        Value::Bytes(bytes) => Some(Cow::Owned(base64::encode(bytes))),
        Value::Array(_) | Value::Kvlist(_) | Value::StringIndex(_) => None,
    }
}

fn non_empty(s: &str) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(Cow::Borrowed(s))
}

fn non_zero<'a, N: Into<i128>>(n: N) -> Option<Cow<'a, str>> {
    let n = n.into();
    (n != 0).then(|| Cow::Owned(n.to_string()))
}

fn non_empty_hex(bytes: &[u8]) -> Option<Cow<'_, str>> {
    (!bytes.is_empty()).then(|| Cow::Owned(hex(bytes)))
}

/// An `AnyValue` with nothing in it (or only a profiling string index).
fn is_empty(value: &AnyValue) -> bool {
    matches!(value.value, None | Some(Value::StringIndex(_)))
}

/// JSON has no NaN or infinities: they are written as the strings the
/// OTLP/JSON mapping uses for them.
pub fn non_finite_name(x: f64) -> Option<&'static str> {
    if x.is_nan() {
        Some("NaN")
    } else if x == f64::INFINITY {
        Some("Infinity")
    } else if x == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// Appends an `AnyValue` as JSON. Recursion is bounded by the decoders'
/// nesting limits (prost's and serde_json's), so it cannot overflow.
fn write_any(out: &mut Vec<u8>, value: &AnyValue) {
    match &value.value {
        Some(Value::String(s)) => write_str(out, s),
        Some(Value::Bool(b)) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Some(Value::Int(n)) => write_i64(out, *n),
        Some(Value::Double(x)) => write_double(out, *x),
        Some(Value::Array(array)) => {
            out.push(b'[');
            for (i, element) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_any(out, element);
            }
            out.push(b']');
        }
        Some(Value::Kvlist(list)) => write_key_values(out, &list.values),
        Some(Value::Bytes(bytes)) => {
            out.push(b'"');
            base64::encode_into(out, bytes);
            out.push(b'"');
        }
        None | Some(Value::StringIndex(_)) => out.extend_from_slice(b"null"),
    }
}

/// Appends a map as a JSON object; a repeated key keeps its last value, so
/// the object never has duplicate member names (which Helios refuses).
fn write_key_values(out: &mut Vec<u8>, pairs: &[KeyValue]) {
    let keep_large: Option<Vec<bool>> = (pairs.len() > LINEAR_KEY_SCAN_MAX).then(|| {
        let mut seen = HashSet::with_capacity(pairs.len());
        let mut keep = vec![false; pairs.len()];
        for (i, pair) in pairs.iter().enumerate().rev() {
            keep[i] = seen.insert(pair.key.as_str());
        }
        keep
    });
    out.push(b'{');
    let mut first = true;
    for (i, pair) in pairs.iter().enumerate() {
        let kept = match &keep_large {
            Some(keep) => keep[i],
            None => !pairs[i + 1..].iter().any(|later| later.key == pair.key),
        };
        if !kept {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(out, &pair.key);
        out.push(b':');
        match &pair.value {
            Some(value) => write_any(out, value),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b'}');
}

/// Appends `n` in decimal, as `Display` writes it (without the
/// formatting machinery: numbers are a good part of every event).
#[inline]
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    // u64::MAX has 20 digits; two digits per division halves the
    // divisions of the 19-digit nanosecond times.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = usize::from((n % 100) as u8) * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = usize::from(n as u8) * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[at..]);
}

/// "00" to "99", for [`write_u64`].
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `n` in decimal, as `Display` writes it.
#[inline]
pub fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Appends a finite or non-finite double as the event holds it.
pub fn write_double(out: &mut Vec<u8>, x: f64) {
    match non_finite_name(x) {
        Some(name) => json_string(out, name),
        // A finite f64 always serializes.
        None => {
            let _ = serde_json::to_writer(&mut *out, &x);
        }
    }
}

/// Appends `s` as a JSON string literal, byte for byte as
/// [`json_string`] writes it: text that needs no escape is copied as it is
/// (most keys and values), the rest goes through serde_json.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if is_plain(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        json_string(out, s);
    }
}

/// `,"name":n` when `n` is not 0.
#[inline]
pub fn write_count(out: &mut Vec<u8>, name: &str, n: u32) {
    if n != 0 {
        write_member_name(out, name);
        write_u64(out, u64::from(n));
    }
}

/// `,"name":"n"` (exact decimal text) when `n` is not 0.
#[inline]
pub fn write_nanos(out: &mut Vec<u8>, name: &str, n: u64) {
    if n != 0 {
        write_member_name(out, name);
        out.push(b'"');
        write_u64(out, n);
        out.push(b'"');
    }
}

/// `,"name":"text"` when `text` is not empty.
fn write_text(out: &mut Vec<u8>, name: &str, text: &str) {
    if !text.is_empty() {
        write_member_name(out, name);
        write_str(out, text);
    }
}

/// `,"name":"hex"` when `bytes` is not empty.
pub fn write_hex(out: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    if !bytes.is_empty() {
        write_member_name(out, name);
        out.push(b'"');
        // As `crate::hex` writes it, without its String; a chunk at a time
        // so each byte is not a `push` of its own.
        for chunk in bytes.chunks(HEX_CHUNK) {
            let mut digits = [0u8; 2 * HEX_CHUNK];
            for (i, byte) in chunk.iter().enumerate() {
                digits[2 * i] = HEX_DIGITS[usize::from(byte >> 4)];
                digits[2 * i + 1] = HEX_DIGITS[usize::from(byte & 0x0f)];
            }
            out.extend_from_slice(&digits[..2 * chunk.len()]);
        }
        out.push(b'"');
    }
}

/// Lowercase hex digits.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
/// Bytes written as hex per copy (a trace id is 16).
const HEX_CHUNK: usize = 16;

/// `,"name":` (names are ours: plain ASCII, no escaping needed).
#[inline]
pub fn write_member_name(out: &mut Vec<u8>, name: &str) {
    debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Members of an object being written, commas between them.
struct Members<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Members<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        Members { out, first: true }
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, name);
        self.out.push(b':');
    }

    /// `"name":"text"` when `text` is not empty.
    fn string(&mut self, name: &str, text: &str) {
        if !text.is_empty() {
            self.key(name);
            write_str(self.out, text);
        }
    }

    /// `"name":[…]` when `texts` is not empty.
    fn strings(&mut self, name: &str, texts: &[String]) {
        if !texts.is_empty() {
            self.key(name);
            self.out.push(b'[');
            for (i, text) in texts.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                write_str(self.out, text);
            }
            self.out.push(b']');
        }
    }
}
