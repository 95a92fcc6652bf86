//! A binary `ExportLogsServiceRequest` translated straight from the body:
//! every string is a slice of it and each event's JSON is written as its
//! `LogRecord` is read, with no message structs in between (prost's derived
//! decoder copies every key and value into its own `String` and every list
//! into a `Vec`, which cost more than the rest of the translation: issue
//! 14 asks that protobuf cost no more per event than JSON validation).
//!
//! The events are the ones `event::write_event` writes for the same
//! request, byte for byte (the field mapping is the parent module's doc;
//! the tests below and `tests/fuzz_otlp.rs` compare the two paths). What
//! this reader does not do itself (see [`wire`]: a malformed body, a size
//! limit reached, a message field given twice) ends in [`Unread`], and the
//! caller starts over with prost and the owned-struct path, whose answer
//! stands.
//!
//! Field numbers are those of the prost declarations in `proto.rs`.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;

use super::base64;
use super::event::{
    non_finite_name, priority, write_count, write_double, write_hex, write_i64, write_member_name,
    write_str, write_times_and_severity, write_u64, RecordScalars, LINEAR_KEY_SCAN_MAX,
    UID_ATTRIBUTE,
};
use super::wire::{Message, Text, Unread};
use crate::{hex, Echo, Item, Request, Settings, Translation};

/// An `AnyValue`, borrowed. An empty one, the profiling signal's string
/// index and an absent `KeyValue.value` are all [`Any::Empty`]: the events
/// treat them alike (`null`, left out as a body).
#[derive(Debug, Clone, Copy)]
enum Any<'a> {
    Empty,
    Str(Text<'a>),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// An `ArrayValue`, read when written.
    Array(Message<'a>),
    /// A `KeyValueList`, read when written.
    Kvlist(Message<'a>),
}

/// A `KeyValue`, borrowed.
#[derive(Debug, Clone, Copy)]
struct Pair<'a> {
    key: Text<'a>,
    value: Any<'a>,
}

/// A `LogRecord`, borrowed; its attributes are on the pair stack from
/// `attributes` on.
#[derive(Debug, Default)]
struct Record<'a> {
    time_unix_nano: u64,
    observed_time_unix_nano: u64,
    severity_number: i32,
    severity_text: Text<'a>,
    body: Option<Any<'a>>,
    attributes: usize,
    dropped_attributes_count: u32,
    flags: u32,
    trace_id: &'a [u8],
    span_id: &'a [u8],
    event_name: Text<'a>,
}

/// What the records of one `ScopeLogs` share, for their `type` rule (an
/// absent resource or scope reads as an empty one: the events cannot tell
/// them apart). Attributes are ranges of the pair stack.
#[derive(Debug, Default, Clone, Copy)]
struct Shared<'a> {
    resource_attributes: (usize, usize),
    resource_dropped_attributes_count: u32,
    resource_schema_url: Text<'a>,
    scope_name: Text<'a>,
    scope_version: Text<'a>,
    scope_attributes: (usize, usize),
    scope_dropped_attributes_count: u32,
    scope_schema_url: Text<'a>,
}

/// The translation of one request.
struct Translator<'a, 'r> {
    req: &'r Request<'r>,
    settings: &'r Settings,
    out: &'r mut Translation,
    /// The `KeyValue`s being written, innermost last: the resource's, the
    /// scope's, the record's, then any kvlist being written. Reused, so
    /// steady state allocates nothing per event.
    pairs: Vec<Pair<'a>>,
    /// The resource's members for every event of the resource (text
    /// starting with `,`, or empty), as `event::Fragment`.
    resource: Vec<u8>,
    /// The scope's members likewise.
    scope: Vec<u8>,
    records: usize,
}

/// Appends the events of the protobuf request `body` and one [`Item`] per
/// record to `out`. On [`Unread`], `out` holds part of them: the caller
/// truncates it and decodes with prost.
pub fn decode(
    req: &Request<'_>,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Unread> {
    let mut translator = Translator {
        req,
        settings,
        out,
        pairs: Vec::new(),
        resource: Vec::new(),
        scope: Vec::new(),
        records: 0,
    };
    let mut fields = Message::root(body).fields()?;
    while let Some(field) = fields.next()? {
        // ExportLogsServiceRequest.resource_logs.
        if field.number == 1 {
            translator.resource_logs(field.message()?)?;
        }
    }
    Ok(())
}

impl<'a> Translator<'a, '_> {
    /// One `ResourceLogs`: the resource and the schema first (the events
    /// copy them; a sender may put them after the scopes), then each scope.
    fn resource_logs(&mut self, resource_logs: Message<'a>) -> Result<(), Unread> {
        let mut resource = None;
        let mut shared = Shared::default();
        let mut fields = resource_logs.fields()?;
        while let Some(field) = fields.next()? {
            match field.number {
                1 if resource.is_some() => return Err(Unread), // merges: prost's
                1 => resource = Some(field.message()?),
                2 => {
                    field.message()?;
                }
                3 => shared.resource_schema_url = field.text()?,
                _ => {}
            }
        }
        self.pairs.clear();
        let mut entity_refs = 0;
        if let Some(resource) = resource {
            let mut fields = resource.fields()?;
            while let Some(field) = fields.next()? {
                match field.number {
                    1 => self.pairs.push(pair(field.message()?)?),
                    2 => shared.resource_dropped_attributes_count = field.varint()? as u32,
                    3 => {
                        check_entity_ref(field.message()?)?;
                        entity_refs += 1;
                    }
                    _ => {}
                }
            }
        }
        shared.resource_attributes = (0, self.pairs.len());
        self.write_resource(resource, &shared, entity_refs)?;
        let mut fields = resource_logs.fields()?;
        while let Some(field) = fields.next()? {
            if field.number == 2 {
                self.scope_logs(field.message()?, shared)?;
            }
        }
        Ok(())
    }

    /// The resource's members, as `event::Fragment::write_resource`.
    fn write_resource(
        &mut self,
        resource: Option<Message<'a>>,
        shared: &Shared<'a>,
        entity_refs: usize,
    ) -> Result<(), Unread> {
        let mut out = std::mem::take(&mut self.resource);
        out.clear();
        if shared.resource_attributes.1 > 0 {
            out.extend_from_slice(b",\"resource\":");
            write_pairs(&mut out, &mut self.pairs, 0)?;
        }
        write_count(
            &mut out,
            "resource_dropped_attributes_count",
            shared.resource_dropped_attributes_count,
        );
        if let (Some(resource), true) = (resource, entity_refs > 0) {
            out.extend_from_slice(b",\"resource_entity_refs\":[");
            let mut first = true;
            let mut fields = resource.fields()?;
            while let Some(field) = fields.next()? {
                if field.number == 3 {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_entity_ref(&mut out, field.message()?)?;
                }
            }
            out.push(b']');
        }
        write_text(&mut out, "resource_schema_url", shared.resource_schema_url);
        self.resource = out;
        Ok(())
    }

    /// One `ScopeLogs`: the scope and the schema first, then the records.
    fn scope_logs(
        &mut self,
        scope_logs: Message<'a>,
        mut shared: Shared<'a>,
    ) -> Result<(), Unread> {
        let mut scope = None;
        let mut fields = scope_logs.fields()?;
        while let Some(field) = fields.next()? {
            match field.number {
                1 if scope.is_some() => return Err(Unread), // merges: prost's
                1 => scope = Some(field.message()?),
                2 => {
                    field.message()?;
                }
                3 => shared.scope_schema_url = field.text()?,
                _ => {}
            }
        }
        let start = shared.resource_attributes.1;
        self.pairs.truncate(start);
        if let Some(scope) = scope {
            let mut fields = scope.fields()?;
            while let Some(field) = fields.next()? {
                match field.number {
                    1 => shared.scope_name = field.text()?,
                    2 => shared.scope_version = field.text()?,
                    3 => self.pairs.push(pair(field.message()?)?),
                    4 => shared.scope_dropped_attributes_count = field.varint()? as u32,
                    _ => {}
                }
            }
        }
        shared.scope_attributes = (start, self.pairs.len());
        self.write_scope(&shared)?;
        let mut fields = scope_logs.fields()?;
        while let Some(field) = fields.next()? {
            if field.number == 2 {
                self.record(field.message()?, &shared)?;
            }
        }
        Ok(())
    }

    /// The scope's members, as `event::Fragment::write_scope`.
    fn write_scope(&mut self, shared: &Shared<'a>) -> Result<(), Unread> {
        let mut out = std::mem::take(&mut self.scope);
        out.clear();
        let (start, end) = shared.scope_attributes;
        let empty = shared.scope_name.is_empty()
            && shared.scope_version.is_empty()
            && start == end
            && shared.scope_dropped_attributes_count == 0;
        if !empty {
            out.extend_from_slice(b",\"scope\":{");
            let mut first = true;
            for (name, text) in [
                ("name", shared.scope_name),
                ("version", shared.scope_version),
            ] {
                if !text.is_empty() {
                    member(&mut out, &mut first, name);
                    text.write_json(&mut out);
                }
            }
            if start < end {
                member(&mut out, &mut first, "attributes");
                write_pairs(&mut out, &mut self.pairs, start)?;
            }
            if shared.scope_dropped_attributes_count != 0 {
                member(&mut out, &mut first, "dropped_attributes_count");
                write_u64(&mut out, u64::from(shared.scope_dropped_attributes_count));
            }
            out.push(b'}');
        }
        write_text(&mut out, "scope_schema_url", shared.scope_schema_url);
        self.scope = out;
        Ok(())
    }

    /// One `LogRecord`: one event line and its item.
    fn record(&mut self, log_record: Message<'a>, shared: &Shared<'a>) -> Result<(), Unread> {
        // More records than allowed: prost's path counts them all first
        // and names the failure.
        self.records += 1;
        if self.records > self.settings.max_events {
            return Err(Unread);
        }
        let line = u32::try_from(self.out.items.len()).map_err(|_| Unread)?;
        let start = shared.scope_attributes.1;
        self.pairs.truncate(start);
        let mut record = Record {
            attributes: start,
            ..Record::default()
        };
        let mut fields = log_record.fields()?;
        while let Some(field) = fields.next()? {
            match field.number {
                1 => record.time_unix_nano = field.fixed64()?,
                2 => record.severity_number = field.varint()? as i32,
                3 => record.severity_text = field.text()?,
                5 if record.body.is_some() => return Err(Unread), // merges: prost's
                5 => record.body = Some(any(field.message()?)?),
                6 => self.pairs.push(pair(field.message()?)?),
                7 => record.dropped_attributes_count = field.varint()? as u32,
                8 => record.flags = field.fixed32()?,
                9 => record.trace_id = field.bytes()?,
                10 => record.span_id = field.bytes()?,
                11 => record.observed_time_unix_nano = field.fixed64()?,
                12 => record.event_name = field.text()?,
                _ => {}
            }
        }
        self.write_event(&record, shared)?;
        if self.out.ndjson.len() > self.settings.max_decoded_bytes {
            return Err(Unread);
        }
        self.out.items.push(Item {
            line: Ok(line),
            echo: Echo::None,
        });
        Ok(())
    }

    /// The event line, member for member as `event::write_event`.
    fn write_event(&mut self, record: &Record<'a>, shared: &Shared<'a>) -> Result<(), Unread> {
        let broken = Cell::new(false);
        let pairs = &self.pairs;
        let event_type = self
            .settings
            .types
            .otlp
            .resolve(|path| lookup(pairs, shared, record, path, &broken));
        let uid = last_value(&pairs[record.attributes..], UID_ATTRIBUTE).and_then(scalar_text);
        if broken.get() {
            return Err(Unread);
        }
        let out = &mut self.out.ndjson;
        out.extend_from_slice(b"{\"type\":");
        write_str(out, &event_type);
        write_times_and_severity(
            out,
            RecordScalars {
                app: self.req.app,
                uid: uid.as_deref(),
                time_unix_nano: record.time_unix_nano,
                observed_time_unix_nano: record.observed_time_unix_nano,
                severity_number: record.severity_number,
            },
        );
        write_text(out, "severity_text", record.severity_text);
        if let Some(body) = record.body.filter(|b| !matches!(b, Any::Empty)) {
            out.extend_from_slice(b",\"body\":");
            write_any(out, &mut self.pairs, body)?;
        }
        if self.pairs.len() > record.attributes {
            out.extend_from_slice(b",\"attributes\":");
            write_pairs(out, &mut self.pairs, record.attributes)?;
        }
        write_count(
            out,
            "dropped_attributes_count",
            record.dropped_attributes_count,
        );
        write_count(out, "flags", record.flags);
        write_hex(out, "trace_id", record.trace_id);
        write_hex(out, "span_id", record.span_id);
        write_text(out, "event_name", record.event_name);
        out.extend_from_slice(&self.resource);
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(b"}\n");
        Ok(())
    }
}

/// Reads an `AnyValue`: the last case set wins, as in prost's oneof.
// Always inline: returned through memory, its result was copied with
// overlapping loads that stalled on the stores just made (a third of the
// decoder's time in the profile).
#[inline(always)]
fn any(message: Message<'_>) -> Result<Any<'_>, Unread> {
    let mut value = Any::Empty;
    let mut fields = message.fields()?;
    while let Some(field) = fields.next()? {
        value = match field.number {
            1 => Any::Str(field.text()?),
            2 => Any::Bool(field.varint()? != 0),
            3 => Any::Int(field.varint()? as i64),
            4 => Any::Double(f64::from_bits(field.fixed64()?)),
            // The same message case twice in a row merges: prost's.
            5 if matches!(value, Any::Array(_)) => return Err(Unread),
            5 => Any::Array(field.message()?),
            6 if matches!(value, Any::Kvlist(_)) => return Err(Unread),
            6 => Any::Kvlist(field.message()?),
            7 => Any::Bytes(field.bytes()?),
            // string_value_strindex: an int32 that reads as empty.
            8 => {
                field.varint()?;
                Any::Empty
            }
            _ => continue,
        };
    }
    Ok(value)
}

/// Reads a `KeyValue`.
#[inline(always)]
fn pair(message: Message<'_>) -> Result<Pair<'_>, Unread> {
    let mut key = Text::default();
    let mut value = None;
    let mut fields = message.fields()?;
    while let Some(field) = fields.next()? {
        match field.number {
            1 => key = field.text()?,
            2 if value.is_some() => return Err(Unread), // merges: prost's
            2 => value = Some(any(field.message()?)?),
            _ => {}
        }
    }
    Ok(Pair {
        key,
        value: value.unwrap_or(Any::Empty),
    })
}

/// Pushes the pairs of a `KeyValueList` onto `pairs`.
fn push_pairs<'a>(list: Message<'a>, pairs: &mut Vec<Pair<'a>>) -> Result<(), Unread> {
    let mut fields = list.fields()?;
    while let Some(field) = fields.next()? {
        if field.number == 1 {
            pairs.push(pair(field.message()?)?);
        }
    }
    Ok(())
}

/// Appends a value as JSON, as `event::write_any`; `pairs` is the stack a
/// kvlist's pairs go on while it is written.
fn write_any<'a>(
    out: &mut Vec<u8>,
    pairs: &mut Vec<Pair<'a>>,
    value: Any<'a>,
) -> Result<(), Unread> {
    match value {
        Any::Empty => out.extend_from_slice(b"null"),
        Any::Str(text) => text.write_json(out),
        Any::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Any::Int(n) => write_i64(out, n),
        Any::Double(x) => write_double(out, x),
        Any::Bytes(bytes) => {
            out.push(b'"');
            base64::encode_into(out, bytes);
            out.push(b'"');
        }
        Any::Array(array) => {
            out.push(b'[');
            let mut first = true;
            let mut fields = array.fields()?;
            while let Some(field) = fields.next()? {
                if field.number == 1 {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    write_any(out, pairs, any(field.message()?)?)?;
                }
            }
            out.push(b']');
        }
        Any::Kvlist(list) => {
            let start = pairs.len();
            push_pairs(list, pairs)?;
            write_pairs(out, pairs, start)?;
            pairs.truncate(start);
        }
    }
    Ok(())
}

/// Appends `pairs[start..]` as a JSON object, as `event::write_key_values`:
/// a repeated key keeps its last value. The values left out are still
/// read through, since prost would refuse them if they were malformed.
fn write_pairs<'a>(
    out: &mut Vec<u8>,
    pairs: &mut Vec<Pair<'a>>,
    start: usize,
) -> Result<(), Unread> {
    let end = pairs.len();
    let keep_large: Option<Vec<bool>> = (end - start > LINEAR_KEY_SCAN_MAX).then(|| {
        let mut seen = HashSet::with_capacity(end - start);
        let mut keep = vec![false; end - start];
        for (i, pair) in pairs[start..end].iter().enumerate().rev() {
            keep[i] = seen.insert(pair.key);
        }
        keep
    });
    out.push(b'{');
    let mut first = true;
    for i in start..end {
        let pair = pairs[i];
        let kept = match &keep_large {
            Some(keep) => keep[i - start],
            None => !pairs[i + 1..end].iter().any(|later| later.key == pair.key),
        };
        if !kept {
            check(pairs, pair.value)?;
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        pair.key.write_json(out);
        out.push(b':');
        write_any(out, pairs, pair.value)?;
    }
    out.push(b'}');
    Ok(())
}

/// Reads a value through without writing it (one a later key replaces).
fn check<'a>(pairs: &mut Vec<Pair<'a>>, value: Any<'a>) -> Result<(), Unread> {
    // Written into a scratch buffer: the same reading as the writer's, and
    // a replaced value is rare enough not to need a reader of its own.
    let mut scratch = Vec::new();
    write_any(&mut scratch, pairs, value)
}

/// Checks an `EntityRef`'s strings (its fields are written later).
fn check_entity_ref(message: Message<'_>) -> Result<(), Unread> {
    let mut fields = message.fields()?;
    while let Some(field) = fields.next()? {
        if (1..=4).contains(&field.number) {
            field.text()?;
        }
    }
    Ok(())
}

/// Appends an `EntityRef` as `{type, id_keys, description_keys,
/// schema_url}`, each only when set.
fn write_entity_ref(out: &mut Vec<u8>, message: Message<'_>) -> Result<(), Unread> {
    let (mut schema_url, mut kind) = (Text::default(), Text::default());
    let (mut id_keys, mut description_keys) = (false, false);
    let mut fields = message.fields()?;
    while let Some(field) = fields.next()? {
        match field.number {
            1 => schema_url = field.text()?,
            2 => kind = field.text()?,
            3 => id_keys = true,
            4 => description_keys = true,
            _ => {}
        }
    }
    out.push(b'{');
    let mut first = true;
    if !kind.is_empty() {
        member(out, &mut first, "type");
        kind.write_json(out);
    }
    for (name, number, present) in [
        ("id_keys", 3, id_keys),
        ("description_keys", 4, description_keys),
    ] {
        if present {
            member(out, &mut first, name);
            out.push(b'[');
            let mut first_key = true;
            let mut fields = message.fields()?;
            while let Some(field) = fields.next()? {
                if field.number == number {
                    if !first_key {
                        out.push(b',');
                    }
                    first_key = false;
                    field.text()?.write_json(out);
                }
            }
            out.push(b']');
        }
    }
    if !schema_url.is_empty() {
        member(out, &mut first, "schema_url");
        schema_url.write_json(out);
    }
    out.push(b'}');
    Ok(())
}

/// `"name":` inside an object, after a comma unless it is the first.
fn member(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    write_str(out, name);
    out.push(b':');
}

/// `,"name":"text"` when `text` is not empty.
fn write_text(out: &mut Vec<u8>, name: &str, text: Text<'_>) {
    if !text.is_empty() {
        write_member_name(out, name);
        text.write_json(out);
    }
}

/// The text of the event's field at `path`, as `event::lookup` finds it.
/// `broken` is set when a kvlist it enters does not read (the writer then
/// stops at the same bytes; it is set so that nothing depends on that).
fn lookup<'a>(
    pairs: &[Pair<'a>],
    shared: &Shared<'a>,
    record: &Record<'a>,
    path: &str,
    broken: &Cell<bool>,
) -> Option<Cow<'a, str>> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let range = |(start, end): (usize, usize)| &pairs[start..end];
    match (head, rest) {
        ("attributes", Some(rest)) => lookup_pairs(&pairs[record.attributes..], rest, broken),
        ("resource", Some(rest)) => lookup_pairs(range(shared.resource_attributes), rest, broken),
        ("scope", Some(rest)) => match rest.split_once('.') {
            Some(("attributes", rest)) => {
                lookup_pairs(range(shared.scope_attributes), rest, broken)
            }
            Some(_) => None,
            None => match rest {
                "name" => non_empty(shared.scope_name),
                "version" => non_empty(shared.scope_version),
                "dropped_attributes_count" => non_zero(shared.scope_dropped_attributes_count),
                _ => None,
            },
        },
        ("body", None) => record.body.and_then(scalar_text),
        ("body", Some(rest)) => match record.body? {
            Any::Kvlist(list) => lookup_list(list, rest, broken),
            _ => None,
        },
        ("event_name", None) => non_empty(record.event_name),
        ("severity_text", None) => non_empty(record.severity_text),
        ("severity_number", None) => non_zero(i64::from(record.severity_number)),
        ("priority", None) => priority(record.severity_number).map(Cow::Borrowed),
        ("time_unix_nano", None) => non_zero(record.time_unix_nano),
        ("observed_time_unix_nano", None) => non_zero(record.observed_time_unix_nano),
        ("dropped_attributes_count", None) => non_zero(record.dropped_attributes_count),
        ("flags", None) => non_zero(record.flags),
        ("trace_id", None) => non_empty_hex(record.trace_id),
        ("span_id", None) => non_empty_hex(record.span_id),
        ("resource_dropped_attributes_count", None) => {
            non_zero(shared.resource_dropped_attributes_count)
        }
        ("resource_schema_url", None) => non_empty(shared.resource_schema_url),
        ("scope_schema_url", None) => non_empty(shared.scope_schema_url),
        _ => None,
    }
}

/// `path` in a map, greedily, as `event::lookup_key_values`.
fn lookup_pairs<'a>(pairs: &[Pair<'a>], path: &str, broken: &Cell<bool>) -> Option<Cow<'a, str>> {
    let mut end = path.len();
    loop {
        let key = &path[..end];
        if let Some(value) = last_value(pairs, key) {
            if end == path.len() {
                return scalar_text(value);
            }
            if let Any::Kvlist(list) = value {
                if let Some(found) = lookup_list(list, &path[end + 1..], broken) {
                    return Some(found);
                }
            }
        }
        end = path[..end].rfind('.')?;
    }
}

/// `path` in a kvlist still on the wire (type rules rarely enter one, so
/// its pairs are gathered in a `Vec` of their own).
fn lookup_list<'a>(list: Message<'a>, path: &str, broken: &Cell<bool>) -> Option<Cow<'a, str>> {
    let mut pairs = Vec::new();
    if push_pairs(list, &mut pairs).is_err() {
        broken.set(true);
        return None;
    }
    lookup_pairs(&pairs, path, broken)
}

/// The value of the last pair named `key` (the one the event keeps).
fn last_value<'a>(pairs: &[Pair<'a>], key: &str) -> Option<Any<'a>> {
    pairs
        .iter()
        .rev()
        .find(|pair| pair.key.is(key))
        .map(|pair| pair.value)
}

/// A scalar's text as the event holds it, as `event::scalar_text`.
fn scalar_text(value: Any<'_>) -> Option<Cow<'_, str>> {
    match value {
        Any::Str(text) => Some(Cow::Borrowed(text.as_str())),
        Any::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
        Any::Int(n) => Some(Cow::Owned(n.to_string())),
        Any::Double(x) => Some(match non_finite_name(x) {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(serde_json::to_string(&x).ok()?),
        }),
        Any::Bytes(bytes) => Some(Cow::Owned(base64::encode(bytes))),
        Any::Empty | Any::Array(_) | Any::Kvlist(_) => None,
    }
}

fn non_empty(text: Text<'_>) -> Option<Cow<'_, str>> {
    (!text.is_empty()).then(|| Cow::Borrowed(text.as_str()))
}

fn non_zero<'a, N: Into<i128>>(n: N) -> Option<Cow<'a, str>> {
    let n = n.into();
    (n != 0).then(|| Cow::Owned(n.to_string()))
}

fn non_empty_hex(bytes: &[u8]) -> Option<Cow<'_, str>> {
    (!bytes.is_empty()).then(|| Cow::Owned(hex(bytes)))
}

#[cfg(test)]
mod tests {
    //! The in-place path against prost's owned-struct path, on bodies that
    //! exercise what the shared tests (`../tests.rs`) do not: field order,
    //! unknown fields of every wire type in every message, merges, depth.

    use prost::Message as _;

    use super::super::proto::*;
    use super::super::{decode_owned, PROTOBUF};
    use super::*;
    use crate::{Endpoint, Failure, TypeRule, TypeRules};

    fn settings(rule: &str) -> Settings {
        Settings {
            types: TypeRules {
                otlp: TypeRule::parse(rule).unwrap(),
                ..TypeRules::default()
            },
            max_decoded_bytes: 1 << 20,
            max_events: 1_000,
        }
    }

    fn request() -> Request<'static> {
        Request {
            endpoint: Endpoint::OtlpLogs,
            path: "/v1/logs",
            query: "",
            content_type: PROTOBUF,
            app: "billing",
            recv_ms: 1_765_108_900_000,
        }
    }

    fn in_place(body: &[u8], settings: &Settings) -> Result<String, Unread> {
        let mut out = Translation::default();
        decode(&request(), body, settings, &mut out)?;
        assert_eq!(
            out.items.len(),
            out.ndjson.iter().filter(|&&b| b == b'\n').count()
        );
        Ok(String::from_utf8(out.ndjson).unwrap())
    }

    fn owned(body: &[u8], settings: &Settings) -> Result<String, Failure> {
        let mut out = Translation::default();
        decode_owned(&request(), body, settings, &mut out)?;
        Ok(String::from_utf8(out.ndjson).unwrap())
    }

    /// The collector's answer (`crate::decode`) is the owned path's.
    fn answer(body: &[u8], settings: &Settings) -> Result<String, Failure> {
        let mut out = Translation::default();
        crate::decode(&request(), body, settings, &mut out)?;
        Ok(String::from_utf8(out.ndjson).unwrap())
    }

    /// Asserts the in-place path reads `body` and writes what prost's does.
    fn same(body: &[u8], rule: &str) -> String {
        let settings = settings(rule);
        let expected = owned(body, &settings).unwrap();
        assert_eq!(in_place(body, &settings), Ok(expected.clone()));
        expected
    }

    fn text(s: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Value::String(s.into())),
        })
    }

    fn kv(key: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value,
        }
    }

    fn any(value: Value) -> Option<AnyValue> {
        Some(AnyValue { value: Some(value) })
    }

    fn kvlist(pairs: Vec<KeyValue>) -> Option<AnyValue> {
        any(Value::Kvlist(KeyValueList { values: pairs }))
    }

    /// Every member of the mapping, escapes, repeats, nesting, an id.
    fn rich_request() -> ExportLogsServiceRequest {
        let mut large: Vec<KeyValue> = (0..30)
            .map(|i| kv(&format!("k{}", i % 12), any(Value::Int(i))))
            .collect();
        large.push(kv("k3", text("last")));
        let record = LogRecord {
            time_unix_nano: 0,
            observed_time_unix_nano: 1_765_108_800_200_000_000,
            severity_number: 3,
            severity_text: "TRACE\t\"q\"".into(),
            body: kvlist(vec![
                kv("kind", text("audit")),
                kv(
                    "list",
                    any(Value::Array(ArrayValue {
                        values: vec![
                            text("é"),
                            any(Value::Double(-0.0)),
                            any(Value::Double(f64::NAN)),
                            any(Value::Bytes(vec![0, 255, 7])),
                            Some(AnyValue::default()),
                            any(Value::StringIndex(4)),
                        ]
                        .into_iter()
                        .map(|v| v.unwrap_or_default())
                        .collect(),
                    })),
                ),
                kv("large", kvlist(large)),
                kv("kind", text("replaced\u{1}")),
            ]),
            attributes: vec![
                kv("log.record.uid", any(Value::Int(77))),
                kv("a", kvlist(vec![kv("b.c", any(Value::Bool(true)))])),
                kv("x\\y", None),
                kv("a", kvlist(vec![kv("b.c", text("kept"))])),
            ],
            dropped_attributes_count: 3,
            flags: u32::MAX,
            trace_id: vec![0xab; 16],
            span_id: vec![1, 2, 3],
            event_name: String::new(),
        };
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", text("checkout")),
                        kv("n", any(Value::Int(-5))),
                    ],
                    dropped_attributes_count: 9,
                    entity_refs: vec![
                        EntityRef {
                            schema_url: "s".into(),
                            r#type: "service".into(),
                            id_keys: vec!["service.name".into(), "n".into()],
                            description_keys: vec!["d\"".into()],
                        },
                        EntityRef::default(),
                    ],
                }),
                scope_logs: vec![
                    ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: String::new(),
                            version: "2".into(),
                            attributes: vec![kv("lib", any(Value::Double(1e300)))],
                            dropped_attributes_count: 4,
                        }),
                        log_records: vec![record.clone(), LogRecord::default()],
                        schema_url: "scope-schema".into(),
                    },
                    ScopeLogs {
                        scope: Some(InstrumentationScope::default()),
                        log_records: vec![record],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "resource-schema".into(),
            }],
        }
    }

    const RULES: [&str; 8] = [
        "$event_name|$attributes.event.name|otel.log",
        "$attributes.a.b.c|x",
        "$body.kind|$body.large.k3|x",
        "$body.large.k3|x",
        "$resource.service.name|x",
        "$scope.version|$scope.attributes.lib|x",
        "$scope.dropped_attributes_count|x",
        "$trace_id|x",
    ];

    #[test]
    fn every_member_is_written_as_the_owned_path_writes_it() {
        let body = rich_request().encode_to_vec();
        for rule in RULES {
            same(&body, rule);
        }
        for rule in [
            "$span_id|x",
            "$flags|x",
            "$severity_number|x",
            "$priority|x",
            "$observed_time_unix_nano|x",
            "$resource_dropped_attributes_count|x",
            "$resource_schema_url|x",
            "$scope_schema_url|x",
            "$severity_text|x",
            "$attributes.log.record.uid|x",
            "$body|$scope.name|$dropped_attributes_count|x",
        ] {
            same(&body, rule);
        }
        assert!(same(&body, RULES[0]).contains("\"_id\":"));
    }

    /// A varint field key.
    fn key(number: u32, wire_type: u8) -> Vec<u8> {
        let mut key = u64::from(number) << 3 | u64::from(wire_type);
        let mut out = Vec::new();
        while key >= 0x80 {
            out.push(key as u8 | 0x80);
            key >>= 7;
        }
        out.push(key as u8);
        out
    }

    /// A length-delimited field.
    fn len_field(number: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = key(number, 2);
        let mut len = payload.len() as u64;
        while len >= 0x80 {
            out.push(len as u8 | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(payload);
        out
    }

    /// Unknown fields of every wire type, a group nesting a group among them.
    fn unknown() -> Vec<u8> {
        let mut out = key(99, 0);
        out.push(0x7f);
        out.extend(key(98, 1));
        out.extend([1; 8]);
        out.extend(key(97, 5));
        out.extend([2; 4]);
        out.extend(len_field(96, b"\xffnot utf-8 and not read"));
        out.extend(key(95, 3));
        out.extend(key(1, 0));
        out.push(1);
        out.extend(key(2, 3));
        out.extend(key(2, 4));
        out.extend(key(95, 4));
        out
    }

    #[test]
    fn fields_in_any_order_and_unknown_fields_everywhere_change_nothing() {
        // Each message re-encoded with unknown fields first and its fields
        // in descending order of number (scopes before their resource; a
        // repeated field keeps its order).
        let with_unknown = |message: Vec<u8>| {
            let mut fields = Vec::new();
            let mut rest = &message[..];
            while !rest.is_empty() {
                let mut f = Message::root(rest).fields().unwrap();
                let number = f.next().unwrap().unwrap().number;
                let taken = rest.len() - f.remaining();
                fields.push((number, rest[..taken].to_vec()));
                rest = &rest[taken..];
            }
            fields.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
            let fields: Vec<Vec<u8>> = fields.into_iter().map(|(_, f)| f).collect();
            let mut out = unknown();
            out.extend(fields.concat());
            out
        };
        let any_value = |v: &AnyValue| with_unknown(v.encode_to_vec());
        let pair = |p: &KeyValue| {
            let mut m = len_field(1, p.key.as_bytes());
            if let Some(v) = &p.value {
                m.extend(len_field(2, &any_value(v)));
            }
            with_unknown(m)
        };
        let request = rich_request();
        let mut body = Vec::new();
        for resource_logs in &request.resource_logs {
            let mut rl = len_field(3, resource_logs.schema_url.as_bytes());
            for scope_logs in &resource_logs.scope_logs {
                let mut sl = len_field(3, scope_logs.schema_url.as_bytes());
                for record in &scope_logs.log_records {
                    let mut plain = record.clone();
                    plain.attributes.clear();
                    let mut r = with_unknown(plain.encode_to_vec());
                    // LogRecord field 4 is reserved: unknown.
                    r.extend(key(4, 0));
                    r.push(3);
                    for a in &record.attributes {
                        r.extend(len_field(6, &pair(a)));
                    }
                    sl.extend(len_field(2, &r));
                }
                if let Some(scope) = &scope_logs.scope {
                    sl.extend(len_field(1, &with_unknown(scope.encode_to_vec())));
                }
                rl.extend(len_field(2, &with_unknown(sl)));
            }
            if let Some(resource) = &resource_logs.resource {
                rl.extend(len_field(1, &with_unknown(resource.encode_to_vec())));
            }
            body.extend(len_field(1, &with_unknown(rl)));
        }
        body.extend(unknown());
        let expected = same(&rich_request().encode_to_vec(), RULES[0]);
        for rule in RULES {
            same(&body, rule);
        }
        assert_eq!(same(&body, RULES[0]), expected);
    }

    #[test]
    fn a_message_field_given_twice_is_merged_by_prost() {
        let request = rich_request();
        let record = &request.resource_logs[0].scope_logs[0].log_records[0];
        // Two bodies (kvlists): protobuf merges them into one.
        let mut twice = record.encode_to_vec();
        twice.extend(
            LogRecord {
                body: kvlist(vec![kv("more", text("m"))]),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        let scope_logs = len_field(2, &twice);
        let body = len_field(1, &len_field(2, &scope_logs));
        let settings = settings(RULES[0]);
        assert_eq!(in_place(&body, &settings), Err(Unread));
        let merged = answer(&body, &settings).unwrap();
        assert_eq!(Ok(merged.clone()), owned(&body, &settings));
        assert!(merged.contains("\"more\":\"m\""), "{merged}");
        assert!(merged.contains("\"kind\":"), "{merged}");
    }

    #[test]
    fn nesting_at_prosts_limit_is_read_as_prost_reads_it() {
        // The innermost value is at level 4 + 2 × depth (request 0, …,
        // record 3, body 4, then an ArrayValue and an AnyValue per level):
        // prost takes up to level 100, so depth 48.
        for depth in 40..=52 {
            let mut value = AnyValue {
                value: Some(Value::Int(1)),
            };
            for _ in 0..depth {
                value = AnyValue {
                    value: Some(Value::Array(ArrayValue {
                        values: vec![value],
                    })),
                };
            }
            let request = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            body: Some(value),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            let body = request.encode_to_vec();
            let settings = settings(RULES[0]);
            let expected = owned(&body, &settings);
            assert_eq!(answer(&body, &settings), expected, "depth {depth}");
            match in_place(&body, &settings) {
                Ok(events) => assert_eq!(Ok(events), expected, "depth {depth}"),
                // A message at the very end of the budget is left to prost.
                Err(Unread) => assert!(depth >= 48, "depth {depth}"),
            }
        }
    }

    #[test]
    fn what_prost_refuses_the_in_place_path_refuses() {
        let request = rich_request();
        let good = request.encode_to_vec();
        let settings = settings(RULES[0]);
        // A replaced attribute value is never written, but prost reads it.
        let mut bad_value = request.clone();
        bad_value.resource_logs[0].scope_logs[0].log_records[0].attributes[1] =
            kv("a", kvlist(vec![kv("MARKER", text("v"))]));
        let mut body = bad_value.encode_to_vec();
        let at = body.windows(6).position(|w| w == b"MARKER").unwrap();
        body[at] = 0xff;
        let mut bodies = vec![body];
        // Every truncation of a valid body, and a known field with the
        // wrong wire type (LogRecord.time_unix_nano as a varint).
        bodies.extend((0..good.len()).map(|end| good[..end].to_vec()));
        let wrong = len_field(1, &len_field(2, &len_field(2, &[0x08, 0x01])));
        bodies.push(wrong);
        for body in bodies {
            let expected = owned(&body, &settings);
            if expected.is_err() {
                assert_eq!(in_place(&body, &settings), Err(Unread));
            }
            assert_eq!(answer(&body, &settings), expected);
        }
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut numbers: Vec<u64> = vec![0, 9, 10, 99, 100, 101, 999, 1_000, u64::MAX];
        numbers.extend((0..64).map(|shift| 1u64 << shift));
        numbers.extend((1..20).map(|digits| 10u64.pow(digits) - 1));
        for n in numbers {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for n in [i64::MIN, -1, 0, 1, i64::MAX, -10] {
            let mut out = Vec::new();
            write_i64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        let mut out = Vec::new();
        write_hex(&mut out, "id", &(0..=255).collect::<Vec<u8>>());
        assert_eq!(
            out,
            format!(",\"id\":\"{}\"", hex(&(0..=255).collect::<Vec<u8>>())).as_bytes()
        );
    }

    #[test]
    fn limits_are_named_by_the_owned_path() {
        let body = rich_request().encode_to_vec();
        for (max_events, max_decoded_bytes) in [(2, 1 << 20), (1_000, 2_000), (1, 10)] {
            let mut settings = settings(RULES[0]);
            settings.max_events = max_events;
            settings.max_decoded_bytes = max_decoded_bytes;
            assert_eq!(in_place(&body, &settings), Err(Unread));
            let expected = owned(&body, &settings);
            assert!(expected.is_err());
            assert_eq!(answer(&body, &settings), expected);
        }
    }
}
