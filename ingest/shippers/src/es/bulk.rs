//! The `_bulk` body: NDJSON action/source pairs, read the way
//! Elasticsearch 8 reads them, turned into Helios event lines.
//!
//! Pairing rules (as Elasticsearch): lines are split on `\n` (a `\r`
//! before it is dropped); a blank line where an action is expected is
//! skipped; `index`, `create` and `update` take the next line whatever it
//! holds (blank included) as their source, `delete` takes none. A last line
//! without `\n` counts. An action line that is not `{"<action>": {…}}` with
//! a known action refuses the whole request, as Elasticsearch does; a bad
//! source refuses its item only.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::time::timestamp_ms;
use crate::{
    derived_id, json_string, lookup_json, Echo, Failure, Item, ItemRefusal, Protocol, Request,
    Settings, Translation,
};

/// Longest `_id` Elasticsearch accepts, bytes (it refuses the item past it).
const MAX_ID_BYTES: usize = 512;

/// Source members whose names Helios's envelope or this module's own
/// fields use; they are kept renamed with [`RENAMED_PREFIX`].
const RESERVED_NAMES: [&str; 8] = [
    "_id", "type", "ts", "ts_raw", "recv", "app", "es_index", "es_id",
];
/// Prefix of a renamed source member (`type` → `source.type`).
const RENAMED_PREFIX: &str = "source.";
/// The source member Elasticsearch clients put the event time in.
const TIMESTAMP_MEMBER: &str = "@timestamp";

/// Why an item is refused: Elasticsearch's per-item error types.
pub(super) const MAPPER_PARSING: &str = "mapper_parsing_exception";
const ILLEGAL_ARGUMENT: &str = "illegal_argument_exception";
const ACTION_VALIDATION: &str = "action_request_validation_exception";

/// Reason of a refused `update`/`delete`.
const UNSUPPORTED_ACTION_REASON: &str = "Helios stores events; update/delete are not supported";

/// Start of the reason of a request refused for a malformed action line
/// (Elasticsearch's own wording); `render_failure` answers it as an
/// `illegal_argument_exception`.
pub(super) const MALFORMED_ACTION_PREFIX: &str = "Malformed action/metadata line [";
/// Start of the reason of an action line that is not JSON (an
/// `x_content_parse_exception` in Elasticsearch).
pub(super) const UNPARSEABLE_ACTION_PREFIX: &str = "[x_content_parse_exception] ";
/// Start of the reason of a request Elasticsearch's validation refuses
/// whole (an `action_request_validation_exception`).
pub(super) const VALIDATION_PREFIX: &str = "Validation Failed: ";

/// The bulk actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    fn from_name(name: &str) -> Option<Action> {
        match name {
            "index" => Some(Action::Index),
            "create" => Some(Action::Create),
            "update" => Some(Action::Update),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }

    fn takes_source(self) -> bool {
        self != Action::Delete
    }
}

/// One parsed action line.
struct ActionLine<'a> {
    action: Action,
    index: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
}

/// JSON object members in order, duplicates kept: keys unescaped
/// (borrowed when they hold no escape), values as their raw text.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// Translates a bulk body; `path_index` is the index the path names
/// (percent-decoded, `""` for `/_bulk`).
pub(super) fn decode(
    req: &Request<'_>,
    path_index: &str,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    let mut lines = Lines::new(body);
    let mut lines_written = 0usize;
    while let Some((number, line)) = lines.next() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let action = parse_action(number, line)?;
        let source = if action.action.takes_source() {
            match lines.next() {
                Some((_, source)) => Some(source),
                None => {
                    return Err(Failure::Malformed(format!(
                        "{VALIDATION_PREFIX}1: {} is missing its source line (line [{}]);",
                        action.action.name(),
                        number + 1
                    )))
                }
            }
        } else {
            None
        };
        if out.items.len() >= settings.max_events {
            return Err(Failure::TooManyEvents);
        }
        let index = action.index.clone().unwrap_or(Cow::Borrowed(path_index));
        let line_number = u32::try_from(lines_written).map_err(|_| Failure::TooManyEvents)?;
        let echo = Echo::Es {
            action: action.action.name().to_owned(),
            index: index.clone().into_owned(),
            id: action.id.as_deref().unwrap_or("").to_owned(),
        };
        let line = translate_item(req, settings, &action, &index, source, line_number, out);
        lines_written += usize::from(line.is_ok());
        out.items.push(Item { line, echo });
    }
    if out.items.is_empty() {
        return Err(Failure::NoData);
    }
    Ok(())
}

/// One item's event line, appended to `out.ndjson`, or why it is refused.
fn translate_item(
    req: &Request<'_>,
    settings: &Settings,
    action: &ActionLine<'_>,
    index: &str,
    source: Option<&[u8]>,
    line: u32,
    out: &mut Translation,
) -> Result<u32, ItemRefusal> {
    if matches!(action.action, Action::Update | Action::Delete) {
        return Err(refusal(400, ILLEGAL_ARGUMENT, UNSUPPORTED_ACTION_REASON));
    }
    if index.is_empty() {
        return Err(refusal(
            400,
            ACTION_VALIDATION,
            "Validation Failed: 1: index is missing;",
        ));
    }
    if let Some(id) = &action.id {
        if id.is_empty() {
            return Err(refusal(
                400,
                ACTION_VALIDATION,
                "Validation Failed: 1: if _id is specified it must not be empty;",
            ));
        }
        if id.len() > MAX_ID_BYTES {
            return Err(refusal(
                400,
                ACTION_VALIDATION,
                &format!(
                    "Validation Failed: 1: id [{id}] is too long, must be no longer than \
                     {MAX_ID_BYTES} bytes but was: {};",
                    id.len()
                ),
            ));
        }
    }
    let source = source.unwrap_or_default();
    let members = parse_source(source)?;
    let event = Event {
        index,
        id: action.id.as_deref(),
        members: &members.0,
    };
    event.write(req, settings, &mut out.ndjson);
    Ok(line)
}

fn refusal(status: u16, kind: &'static str, reason: &str) -> ItemRefusal {
    ItemRefusal {
        status,
        kind,
        reason: reason.to_owned(),
    }
}

/// A source line as its members, or the item's `mapper_parsing_exception`.
fn parse_source(source: &[u8]) -> Result<Members<'_>, ItemRefusal> {
    let text = std::str::from_utf8(source).map_err(|e| {
        refusal(
            400,
            MAPPER_PARSING,
            &format!("failed to parse: source is not UTF-8 ({e})"),
        )
    })?;
    if text.trim().is_empty() {
        return Err(refusal(
            400,
            MAPPER_PARSING,
            "failed to parse, document is empty",
        ));
    }
    serde_json::from_str::<Members<'_>>(text).map_err(|e| {
        refusal(
            400,
            MAPPER_PARSING,
            &format!("failed to parse: the source is not a JSON object ({e})"),
        )
    })
}

/// An action line, or the whole request's refusal (as Elasticsearch).
fn parse_action(number: usize, line: &[u8]) -> Result<ActionLine<'_>, Failure> {
    let line_no = number + 1;
    let malformed =
        |what: String| Failure::Malformed(format!("{MALFORMED_ACTION_PREFIX}{line_no}], {what}"));
    let text = std::str::from_utf8(line).map_err(|e| {
        Failure::Malformed(format!(
            "{UNPARSEABLE_ACTION_PREFIX}[{line_no}] action/metadata line is not UTF-8 ({e})"
        ))
    })?;
    let outer = match serde_json::from_str::<Members<'_>>(text) {
        Ok(outer) => outer,
        // Valid JSON that is no object, or no JSON at all.
        Err(_) => match serde_json::from_str::<&RawValue>(text) {
            Ok(value) => {
                return Err(malformed(format!(
                    "expected START_OBJECT but found [{}]",
                    token_name(value.get())
                )))
            }
            Err(e) => {
                return Err(Failure::Malformed(format!(
                    "{UNPARSEABLE_ACTION_PREFIX}[{line_no}] action/metadata line is not JSON ({e})"
                )))
            }
        },
    };
    let mut outer = outer.0.into_iter();
    let Some((name, params)) = outer.next() else {
        return Err(malformed(
            "expected FIELD_NAME but found [END_OBJECT]".into(),
        ));
    };
    if outer.next().is_some() {
        return Err(malformed(
            "expected END_OBJECT but found [FIELD_NAME]".into(),
        ));
    }
    let Some(action) = Action::from_name(&name) else {
        return Err(malformed(format!(
            "expected field [create], [delete], [index] or [update] but found [{name}]"
        )));
    };
    let Ok(params) = serde_json::from_str::<Members<'_>>(params.get()) else {
        return Err(malformed(format!(
            "expected START_OBJECT but found [{}]",
            token_name(params.get())
        )));
    };
    let mut parsed = ActionLine {
        action,
        index: None,
        id: None,
    };
    // Elasticsearch takes `_index` and `_id` as any simple value's text;
    // the other parameters (routing, pipeline, legacy _type, …) steer
    // indexing, which Helios does not do: accepted and ignored.
    for (key, raw) in params.0 {
        let slot = match key.as_ref() {
            "_index" => &mut parsed.index,
            "_id" => &mut parsed.id,
            _ => continue,
        };
        let Some(text) = simple_value_text(raw) else {
            return Err(Failure::Malformed(format!(
                "{MALFORMED_ACTION_PREFIX}{line_no}], expected a simple value for field \
                 [{key}] but found [{}]",
                token_name(raw.get())
            )));
        };
        *slot = Some(text);
    }
    Ok(parsed)
}

/// The text of a string, number or boolean; `None` for other values.
fn simple_value_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<'_, str>>(text).ok(),
        b'{' | b'[' | b'n' => None,
        _ => Some(Cow::Borrowed(text)),
    }
}

/// Elasticsearch's name for the token a JSON value starts with.
fn token_name(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "START_OBJECT",
        Some(b'[') => "START_ARRAY",
        Some(b'"') => "VALUE_STRING",
        Some(b'n') => "VALUE_NULL",
        Some(b't' | b'f') => "VALUE_BOOLEAN",
        _ => "VALUE_NUMBER",
    }
}

/// One index/create item as a Helios event.
struct Event<'e, 'a> {
    index: &'e str,
    id: Option<&'e str>,
    members: &'e [(Cow<'a, str>, &'a RawValue)],
}

impl Event<'_, '_> {
    /// Appends the event line: `_id` (derived from the item's `_id`), `type`,
    /// `ts` (from `@timestamp`), `es_index`, `es_id`, then the source's
    /// members in order, reserved names renamed.
    fn write(&self, req: &Request<'_>, settings: &Settings, out: &mut Vec<u8>) {
        out.push(b'{');
        if let Some(id) = self.id {
            out.extend_from_slice(b"\"_id\":\"");
            let helios_id = derived_id(req.app, Protocol::Elasticsearch, &[self.index, id]);
            out.extend_from_slice(helios_id.as_bytes());
            out.extend_from_slice(b"\",");
        }
        out.extend_from_slice(b"\"type\":");
        let rule = &settings.types.elasticsearch;
        json_string(
            out,
            &rule.resolve(|path| self.field_text(path).map(Cow::Owned)),
        );
        if let Some(ms) = self.ts_ms() {
            out.extend_from_slice(b",\"ts\":");
            out.extend_from_slice(ms.to_string().as_bytes());
        }
        out.extend_from_slice(b",\"es_index\":");
        json_string(out, self.index);
        if let Some(id) = self.id {
            out.extend_from_slice(b",\"es_id\":");
            json_string(out, id);
        }
        for (name, value) in self.members {
            out.push(b',');
            json_string(out, &output_name(name));
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.extend_from_slice(b"}\n");
    }

    /// The event time: the first `@timestamp` member, when it is a time.
    fn ts_ms(&self) -> Option<i64> {
        let (_, raw) = self
            .members
            .iter()
            .find(|(name, _)| name == TIMESTAMP_MEMBER)?;
        timestamp_ms(raw)
    }

    /// The text at `path` in the event as written (for the `type` rule):
    /// `es_index`, `es_id`, or a source member by its output name, dotted
    /// keys matched greedily as [`lookup_json`] does.
    fn field_text(&self, path: &str) -> Option<String> {
        match path {
            "es_index" => return Some(self.index.to_owned()),
            "es_id" => return self.id.map(str::to_owned),
            _ => {}
        }
        let mut matches: Vec<(Cow<'_, str>, &RawValue)> = self
            .members
            .iter()
            .map(|(name, raw)| (output_name(name), *raw))
            .filter(|(name, _)| {
                path == name
                    || (path.starts_with(name.as_ref())
                        && path.as_bytes().get(name.len()) == Some(&b'.'))
            })
            .collect();
        // Longest key first; among equal keys the first member.
        matches.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        matches.into_iter().find_map(|(name, raw)| {
            let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
            let rest = &path[name.len()..];
            match rest.strip_prefix('.') {
                None => scalar_text(&value),
                Some(rest) => lookup_json(&value, rest).map(Cow::into_owned),
            }
        })
    }
}

/// A member's name in the event: reserved names get [`RENAMED_PREFIX`].
fn output_name(name: &str) -> Cow<'_, str> {
    if RESERVED_NAMES.contains(&name) {
        Cow::Owned(format!("{RENAMED_PREFIX}{name}"))
    } else {
        Cow::Borrowed(name)
    }
}

/// Strings as they are, numbers and booleans as JSON writes them.
fn scalar_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The lines of a body, numbered from 0, without `\n` or a `\r` before it.
struct Lines<'a> {
    rest: &'a [u8],
    number: usize,
    done: bool,
}

impl<'a> Lines<'a> {
    fn new(body: &'a [u8]) -> Lines<'a> {
        Lines {
            rest: body,
            number: 0,
            done: body.is_empty(),
        }
    }

    fn next(&mut self) -> Option<(usize, &'a [u8])> {
        if self.done {
            return None;
        }
        let line = match self.rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = &self.rest[..end];
                self.rest = &self.rest[end + 1..];
                // A body ending in `\n` has no line after it.
                self.done = self.rest.is_empty();
                line
            }
            None => {
                self.done = true;
                self.rest
            }
        };
        let number = self.number;
        self.number += 1;
        Some((number, line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MembersVisitor)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, value));
        }
        Ok(Members(members))
    }
}

/// A key borrowed from the body when it holds no escape.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}
