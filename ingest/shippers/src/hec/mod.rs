//! Splunk HTTP Event Collector: `POST /services/collector`,
//! `/services/collector/event` and `/event/1.0` (JSON event envelopes),
//! `POST /services/collector/raw` and `/raw/1.0` (text, one event per line)
//! and `GET /services/collector/health`.
//!
//! # Event bodies
//! JSON objects one after another, with or without whitespace between them
//! (`{…}{…}` or `{…}\n{…}`), each an envelope
//! `{"event": …, "time": …, "host": …, "source": …, "sourcetype": …,
//! "index": …, "fields": {…}}`. Each envelope becomes one Helios event:
//!
//! | HEC | Helios | notes |
//! |---|---|---|
//! | — | `type` | the type rule, default `$sourcetype\|httpevent` |
//! | `time` | `ts` | epoch seconds (number or numeric string) to integer epoch ms, exactly from the digits, floored (`1433188255.5009` → `1433188255500`); omitted without `time` (the receive time) |
//! | `time` | `time` | as sent: a number stays a number, a string a string |
//! | `event` | `event` | as sent: a string, an object or any JSON value |
//! | `host`, `source`, `sourcetype`, `index` | same names | as sent; `null` is absent |
//! | `fields` | `fields` | the object as sent; `null` is absent |
//!
//! Other members of an envelope are not HEC's and are dropped. No `_id`:
//! HEC clients send nothing to deduplicate on, so the collector mints one.
//! Values are copied as their JSON text (line breaks between tokens taken
//! out, so each event is one NDJSON line); only a type rule that reads into
//! `event` or `fields` parses them.
//!
//! Splunk refuses a whole request for one bad envelope, and so do we: a
//! body that is not JSON objects, a member given twice, a `time` that is
//! not a number or a numeric string or is out of range (years 1 to 9999),
//! or `fields` that is not an object is [`Failure::Malformed`] (400 code 6
//! with `invalid-event-number`); no `event` is [`Failure::EventRequired`]
//! (code 12), `event` `""` or `null` is [`Failure::EventBlank`] (code 13),
//! a body with no envelope at all is [`Failure::NoData`] (code 5).
//!
//! # Raw bodies
//! One event per line (`\n`, a trailing `\r` dropped, empty lines
//! skipped; bytes that are not UTF-8 become U+FFFD):
//! `{"type", "event": "<line>"}` plus `host`, `source`, `sourcetype`,
//! `index` and `time` from the query string (percent-decoded, see
//! [`query`]), `time` also giving `ts` as above. No channel is needed.
//!
//! # Answers
//! Splunk's bodies `{"text": …, "code": n}`, whose code some clients read
//! instead of the status: see [`render_success`], [`render_failure`] and
//! [`render_health`].

mod query;
mod seconds;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::io::Write as _;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::{
    json_string, lookup_json, text_of, Answer, Echo, Endpoint, Failure, Item, LineReject, Request,
    Settings, Translation, TypeRule,
};

use query::RawMetadata;
use seconds::seconds_to_ms;

/// The default `type` rule: Splunk's sourcetype, else Splunk's own default
/// sourcetype name for HEC events.
pub const DEFAULT_TYPE_RULE: &str = "$sourcetype|httpevent";

/// Every HEC answer is JSON.
const CONTENT_TYPE: &str = "application/json";

/// How a [`Failure::Malformed`] reason names the envelope it is about, so
/// that [`render_failure`] can answer `invalid-event-number`.
const EVENT_PREFIX: &str = "event ";

/// What JSON counts as whitespace between values.
const JSON_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// The default `type` rule ([`DEFAULT_TYPE_RULE`]).
pub fn default_type_rule() -> TypeRule {
    TypeRule::parse(DEFAULT_TYPE_RULE).expect("the default rule parses")
}

/// Translates a request body (see [`crate::decode`]) of the event or the
/// raw endpoint. The translation may not grow past
/// `settings.max_decoded_bytes` ([`Failure::TooLarge`]: the raw endpoint
/// repeats the query's metadata on every line) nor carry more than
/// `settings.max_events` events ([`Failure::TooManyEvents`]).
pub fn decode(
    req: &Request<'_>,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    out.clear();
    match req.endpoint {
        Endpoint::HecRaw => decode_raw(req.query, body, settings, out),
        _ => decode_events(body, settings, out),
    }
}

/// The answer to a journaled request (see [`crate::render_success`]):
/// 200 `{"text":"Success","code":0}`, or, when the collector's validation
/// refused some lines (an event nested too deep, a member given twice
/// inside `event`), Splunk's answer for a request it indexed up to a bad
/// event: 400 `{"text":"Invalid data format","code":6,
/// "invalid-event-number":N}` naming the first refused event. Unlike
/// Splunk, the events after it were journaled too (and are stored once).
pub fn render_success(
    _req: &Request<'_>,
    translation: &Translation,
    rejected: &[LineReject<'_>],
    out: &mut Vec<u8>,
) -> Answer {
    let Some(first) = rejected.first() else {
        write_body(out, "Success", 0, None);
        return answer(200, "", false);
    };
    // Every HEC item has a line, so the item's position is the line's, but
    // look it up rather than rely on it.
    let number = translation
        .items
        .iter()
        .position(|item| item.line == Ok(first.line))
        .unwrap_or(first.line as usize);
    write_body(out, "Invalid data format", 6, Some(number));
    answer(400, "", false)
}

/// The answer to a refused request (see [`crate::render_failure`]), in
/// Splunk's status codes and bodies:
///
/// | failure | status | body |
/// |---|---|---|
/// | [`Failure::MissingKey`] | 401 | `{"text":"Token is required","code":2}` |
/// | [`Failure::UnknownKey`], [`Failure::Forbidden`] | 403 | `{"text":"Invalid token","code":4}` |
/// | [`Failure::NoData`] | 400 | `{"text":"No data","code":5}` |
/// | [`Failure::Malformed`], [`Failure::BadEncoding`] | 400 | `{"text":"Invalid data format","code":6}` (+ `"invalid-event-number"` when known) |
/// | [`Failure::EventRequired`] | 400 | `{"text":"Event field is required","code":12,"invalid-event-number":i}` |
/// | [`Failure::EventBlank`] | 400 | `{"text":"Event field cannot be blank","code":13,"invalid-event-number":i}` |
/// | [`Failure::TooLarge`], [`Failure::TooManyEvents`] | 413 | `{"text":"Content too large","code":6}` |
/// | [`Failure::UnsupportedMediaType`] | 415 | `{"text":"Unsupported media type","code":6}` |
/// | [`Failure::Busy`] | 503 + `Retry-After` | `{"text":"Server is busy","code":9}` |
/// | [`Failure::NotFound`] | 404 | `{"text":"The requested URL was not found on this server.","code":404}` |
/// | [`Failure::MethodNotAllowed`] | 405 (the collector adds `Allow`) | `{"text":"Method not allowed","code":405}` |
/// | [`Failure::Internal`] | 500 | `{"text":"Internal server error","code":8}` |
///
/// Splunk's code 3 ("Invalid authorization", a malformed `Authorization`)
/// is not used: the collector reports that as a missing or an unknown key.
/// Splunk has no code for a body too large; 6 tells a client that reads
/// only the code not to retry it. A key that may not ingest is, for HEC,
/// not a valid token.
pub fn render_failure(_req: &Request<'_>, failure: &Failure, out: &mut Vec<u8>) -> Answer {
    match failure {
        Failure::MissingKey => {
            write_body(out, "Token is required", 2, None);
            answer(401, "", false)
        }
        Failure::UnknownKey | Failure::Forbidden(_) => {
            write_body(out, "Invalid token", 4, None);
            answer(403, "", false)
        }
        Failure::NoData => {
            write_body(out, "No data", 5, None);
            answer(400, "", false)
        }
        Failure::Malformed(reason) => {
            write_body(out, "Invalid data format", 6, event_number(reason));
            answer(400, "", false)
        }
        Failure::BadEncoding(_) => {
            write_body(out, "Invalid data format", 6, None);
            answer(400, "", false)
        }
        Failure::EventRequired { index } => {
            write_body(out, "Event field is required", 12, Some(*index));
            answer(400, "", false)
        }
        Failure::EventBlank { index } => {
            write_body(out, "Event field cannot be blank", 13, Some(*index));
            answer(400, "", false)
        }
        Failure::TooLarge(_) | Failure::TooManyEvents => {
            write_body(out, "Content too large", 6, None);
            answer(413, "", false)
        }
        Failure::UnsupportedMediaType(_) => {
            write_body(out, "Unsupported media type", 6, None);
            answer(415, "", false)
        }
        Failure::Busy(_) => {
            write_body(out, "Server is busy", 9, None);
            answer(503, "", true)
        }
        Failure::NotFound => {
            write_body(
                out,
                "The requested URL was not found on this server.",
                404,
                None,
            );
            answer(404, "", false)
        }
        Failure::MethodNotAllowed => {
            // The collector writes `Allow` ([`Endpoint::allow`]) on every 405.
            write_body(out, "Method not allowed", 405, None);
            answer(405, "", false)
        }
        Failure::Internal(_) => {
            write_body(out, "Internal server error", 8, None);
            answer(500, "", false)
        }
    }
}

/// `GET /services/collector/health`: 200 `{"text":"HEC is healthy",
/// "code":17}` when the collector is ready, else 503 `{"text":"HEC is
/// unhealthy, queues are full","code":18}`.
pub fn render_health(ready: bool, out: &mut Vec<u8>) -> Answer {
    if ready {
        write_body(out, "HEC is healthy", 17, None);
        answer(200, "", false)
    } else {
        write_body(out, "HEC is unhealthy, queues are full", 18, None);
        answer(503, "", false)
    }
}

/// `{"text":…,"code":…}` with `invalid-event-number` when given.
fn write_body(out: &mut Vec<u8>, text: &str, code: u16, event_number: Option<usize>) {
    out.extend_from_slice(b"{\"text\":");
    json_string(out, text);
    // Writing into a Vec cannot fail.
    let _ = write!(out, ",\"code\":{code}");
    if let Some(number) = event_number {
        let _ = write!(out, ",\"invalid-event-number\":{number}");
    }
    out.push(b'}');
}

fn answer(status: u16, headers: &'static str, retry_after: bool) -> Answer {
    Answer {
        status,
        content_type: CONTENT_TYPE,
        headers,
        retry_after,
    }
}

/// A [`Failure::Malformed`] about envelope `index` (0-based), which
/// [`render_failure`] answers with `invalid-event-number`.
fn malformed_event(index: usize, reason: impl std::fmt::Display) -> Failure {
    Failure::Malformed(format!("{EVENT_PREFIX}{index}: {reason}"))
}

/// The envelope a [`malformed_event`] reason names.
fn event_number(reason: &str) -> Option<usize> {
    let (number, _) = reason.strip_prefix(EVENT_PREFIX)?.split_once(':')?;
    number.parse().ok()
}

/// One envelope as sent: each member's JSON text. `Some("null")` is a
/// member sent as `null`, told apart from a member not sent (`None`)
/// because a null `event` is blank, a missing one required. Serde refuses
/// a member given twice.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default, deserialize_with = "member")]
    event: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    time: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    host: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    source: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    sourcetype: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    index: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "member")]
    fields: Option<&'a RawValue>,
}

/// A member that is present, `null` included (`Option`'s own
/// deserializer would make `null` absent).
fn member<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(deserializer).map(Some)
}

/// The JSON text of a member, `None` for `null`.
fn non_null(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|raw| raw.get() != "null")
}

/// A value of the Helios event being built.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    /// JSON text as sent (event bodies).
    Json(&'a RawValue),
    /// Text, written as a JSON string (the raw endpoint).
    Text(&'a str),
}

impl<'a> Value<'a> {
    fn write(self, out: &mut Vec<u8>) {
        match self {
            Value::Json(raw) => write_one_line(out, raw.get()),
            Value::Text(text) => json_string(out, text),
        }
    }

    /// Its text for a type rule: strings unescaped, numbers and booleans
    /// as sent, nothing for the rest.
    fn text(self) -> Option<Cow<'a, str>> {
        let raw = match self {
            Value::Text(text) => return Some(Cow::Borrowed(text)),
            Value::Json(raw) => raw.get(),
        };
        match raw.as_bytes().first()? {
            // Most strings hold no escape: their text is between the quotes.
            b'"' if !raw.contains('\\') => raw.get(1..raw.len() - 1).map(Cow::Borrowed),
            b'"' => serde_json::from_str::<&str>(raw)
                .map(Cow::Borrowed)
                .or_else(|_| serde_json::from_str::<String>(raw).map(Cow::Owned))
                .ok(),
            b'-' | b'0'..=b'9' | b't' | b'f' => Some(Cow::Borrowed(raw)),
            _ => None,
        }
    }

    /// The text at `path` inside it (a type rule reading into `event` or
    /// `fields`): the only place a value is parsed.
    fn lookup(self, path: &str) -> Option<Cow<'a, str>> {
        let Value::Json(raw) = self else {
            return None;
        };
        let value: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
        lookup_json(&value, path).map(|found| Cow::Owned(found.into_owned()))
    }
}

/// Appends JSON text on one line: a line break in JSON text can only be
/// whitespace between tokens (strings hold them escaped), so dropping them
/// keeps the value and makes it one NDJSON line.
fn write_one_line(out: &mut Vec<u8>, json: &str) {
    // `str::contains(char)` searches with memchr: the common case (no line
    // break) costs one fast scan and one copy.
    if !json.contains('\n') && !json.contains('\r') {
        out.extend_from_slice(json.as_bytes());
        return;
    }
    out.extend(json.bytes().filter(|&b| b != b'\n' && b != b'\r'));
}

/// One Helios event, before it is written.
#[derive(Debug)]
struct Event<'a> {
    ts_ms: Option<i64>,
    time: Option<Value<'a>>,
    event: Value<'a>,
    host: Option<Value<'a>>,
    source: Option<Value<'a>>,
    sourcetype: Option<Value<'a>>,
    index: Option<Value<'a>>,
    fields: Option<Value<'a>>,
}

impl<'a> Event<'a> {
    /// Its members in the order they are written (after `type` and `ts`).
    fn members(&self) -> [(&'static str, Option<Value<'a>>); 7] {
        [
            ("time", self.time),
            ("event", Some(self.event)),
            ("host", self.host),
            ("source", self.source),
            ("sourcetype", self.sourcetype),
            ("index", self.index),
            ("fields", self.fields),
        ]
    }

    /// The text at `path` (a type rule's `$path`): a member's name, then
    /// a path inside `event` or `fields`. The members' names hold no dot,
    /// so the first dot ends the name.
    fn lookup(&self, path: &str) -> Option<Cow<'a, str>> {
        if path == "ts" {
            return self.ts_ms.map(|ms| Cow::Owned(ms.to_string()));
        }
        let (name, rest) = match path.split_once('.') {
            Some((name, rest)) => (name, Some(rest)),
            None => (path, None),
        };
        let (_, value) = self.members().into_iter().find(|(n, _)| *n == name)?;
        match rest {
            None => value?.text(),
            Some(rest) => value?.lookup(rest),
        }
    }

    /// Appends it as one NDJSON line.
    fn write(&self, rule: &TypeRule, out: &mut Vec<u8>) {
        let kind = rule.resolve(|path| self.lookup(path));
        out.extend_from_slice(b"{\"type\":");
        json_string(out, &kind);
        if let Some(ms) = self.ts_ms {
            // Writing into a Vec cannot fail.
            let _ = write!(out, ",\"ts\":{ms}");
        }
        for (name, value) in self.members() {
            if let Some(value) = value {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                value.write(out);
            }
        }
        out.extend_from_slice(b"}\n");
    }
}

/// Appends `event` as the next line and item, within the limits.
fn push(event: &Event<'_>, settings: &Settings, out: &mut Translation) -> Result<(), Failure> {
    let line = out.items.len();
    if line >= settings.max_events {
        return Err(Failure::TooManyEvents);
    }
    let line = u32::try_from(line).map_err(|_| Failure::TooManyEvents)?;
    event.write(&settings.types.hec, &mut out.ndjson);
    if out.ndjson.len() > settings.max_decoded_bytes {
        return Err(Failure::TooLarge(format!(
            "the events translate to more than max_decoded_bytes ({} bytes)",
            settings.max_decoded_bytes
        )));
    }
    out.items.push(Item {
        line: Ok(line),
        echo: Echo::None,
    });
    Ok(())
}

/// The event endpoints: concatenated envelopes.
fn decode_events(body: &[u8], settings: &Settings, out: &mut Translation) -> Result<(), Failure> {
    let text = std::str::from_utf8(body)
        .map_err(|error| Failure::Malformed(format!("the body is not UTF-8 JSON: {error}")))?;
    let mut envelopes = serde_json::Deserializer::from_str(text).into_iter::<Envelope<'_>>();
    for index in 0.. {
        // Serde would take an array for an envelope too (its elements as
        // the members in order): only objects are envelopes.
        let rest = text.get(envelopes.byte_offset()..).unwrap_or("");
        match rest.trim_start_matches(JSON_WHITESPACE).as_bytes().first() {
            None => break,
            Some(b'{') => {}
            Some(_) => return Err(malformed_event(index, "expected an event object")),
        }
        let Some(envelope) = envelopes.next() else {
            break;
        };
        let envelope = envelope.map_err(|error| malformed_event(index, error))?;
        push(&event_of(&envelope, index)?, settings, out)?;
    }
    if out.items.is_empty() {
        return Err(Failure::NoData);
    }
    Ok(())
}

/// The Helios event of envelope `index`, or why Splunk would refuse the
/// request.
fn event_of<'a>(envelope: &Envelope<'a>, index: usize) -> Result<Event<'a>, Failure> {
    let event = envelope.event.ok_or(Failure::EventRequired { index })?;
    if matches!(event.get(), "null" | "\"\"") {
        return Err(Failure::EventBlank { index });
    }
    let time = non_null(envelope.time);
    let ts_ms = time.map(|raw| time_ms(raw, index)).transpose()?;
    let fields = non_null(envelope.fields);
    if fields.is_some_and(|raw| !raw.get().starts_with('{')) {
        return Err(malformed_event(index, "fields must be an object"));
    }
    let json = |raw: Option<&'a RawValue>| non_null(raw).map(Value::Json);
    Ok(Event {
        ts_ms,
        time: time.map(Value::Json),
        event: Value::Json(event),
        host: json(envelope.host),
        source: json(envelope.source),
        sourcetype: json(envelope.sourcetype),
        index: json(envelope.index),
        fields: fields.map(Value::Json),
    })
}

/// Epoch ms of an envelope's `time` (a number or a numeric string).
fn time_ms(raw: &RawValue, index: usize) -> Result<i64, Failure> {
    let text = raw.get();
    let seconds = if text.starts_with('"') {
        serde_json::from_str::<Cow<'_, str>>(text).ok()
    } else {
        Some(Cow::Borrowed(text))
    };
    seconds
        .as_deref()
        .and_then(seconds_to_ms)
        .ok_or_else(|| {
            malformed_event(
                index,
                format_args!(
                    "time {text} is not epoch seconds (a number or a numeric string) between years 1 and 9999"
                ),
            )
        })
}

/// The raw endpoints: one event per line, metadata from the query.
fn decode_raw(
    query: &str,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    let metadata = RawMetadata::parse(query);
    let ts_ms = match metadata.time.as_deref() {
        Some(time) => Some(seconds_to_ms(time).ok_or_else(|| {
            Failure::Malformed(format!(
                "query parameter time={time:?} is not epoch seconds between years 1 and 9999"
            ))
        })?),
        None => None,
    };
    for line in body.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let line = text_of(line);
        let event = Event {
            ts_ms,
            time: text_value(&metadata.time),
            event: Value::Text(&line),
            host: text_value(&metadata.host),
            source: text_value(&metadata.source),
            sourcetype: text_value(&metadata.sourcetype),
            index: text_value(&metadata.index),
            fields: None,
        };
        push(&event, settings, out)?;
    }
    if out.items.is_empty() {
        return Err(Failure::NoData);
    }
    Ok(())
}

/// A query parameter's value as a member of the event.
fn text_value(value: &Option<String>) -> Option<Value<'_>> {
    value.as_deref().map(Value::Text)
}
