//! One pass of serde_json over an event object that collects the envelope
//! members the collector cares about (`type`, `ts`, `_id`, `recv`, `app`,
//! `priority`)
//! and walks every other value with [`Readable`], which builds nothing but
//! makes serde_json decode every string and number: a lone UTF-16
//! surrogate escape (`"\ud800"`) or a number beyond `f64` (`1e400`) is
//! valid JSON syntax that no reader (the store's, the report server's) can
//! give back, so such an event must be refused here, before it is acked
//! (`IgnoredAny` skips both unchecked).
//!
//! Both sides use it: request validation judges the [`EventFacts`] against
//! the rules, the flush side reads ids and times from them. Keeping one
//! parser means the two can never disagree on what an event contains.
//!
//! Allocation: none per event in steady state. Member names are copied
//! into a reused arena (for the duplicate check); the `app` string into a
//! reused `String`. serde_json itself allocates a scratch buffer only for
//! escaped strings it must unescape (escaped names, `type`, `ts`, `_id`,
//! `recv`, `app` values) and for containers nested two deep inside a
//! skipped value.

use std::fmt;

use helios_store::{
    parse_rfc3339_ms, EventMembers, ObjectId, FIELD_APP, FIELD_ID, FIELD_RECV, FIELD_TS,
    FIELD_TYPE, RFC3339_MAX_MS, RFC3339_MIN_MS,
};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::priority::{Priority, FIELD_PRIORITY};

/// Up to this many members the duplicate check compares every pair (no
/// sorting, cache-friendly); above it, it sorts, so a hostile event with
/// 100 000 members costs n·log n, not n².
const PAIRWISE_DUPLICATE_CHECK_MAX_MEMBERS: usize = 32;

/// What a member that must be a string (`type`, `app`) held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum StringField {
    /// Not present.
    #[default]
    Absent,
    /// A string (possibly empty).
    Str {
        /// Whether it is the empty string.
        empty: bool,
    },
    /// Present but not a string.
    NotString,
}

/// What a time member (`ts`, `recv`) held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum TimeField {
    /// Not present.
    #[default]
    Absent,
    /// An RFC 3339 string or integer epoch ms, in UTC ms.
    Ms(i64),
    /// Present but not a valid time (wrong type, float, out of range, bad
    /// text).
    Invalid,
}

/// What `_id` held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum IdField {
    /// Not present.
    #[default]
    Absent,
    /// 24 hex digits.
    Valid(ObjectId),
    /// Present but not 24 hex digits in a string.
    Invalid,
}

/// The envelope members of one event. When a name repeats, the last value
/// wins (as in the store's document builder); validation rejects repeats
/// anyway, so only the flush side ever relies on that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct EventFacts {
    pub event_type: StringField,
    pub ts: TimeField,
    pub recv: TimeField,
    pub id: IdField,
    /// The string itself, when one, is in [`FieldScratch::app`].
    pub app: StringField,
    /// `priority`: `Normal` when absent or not one of the three names.
    pub priority: Priority,
}

/// Reused buffers for [`event_facts`] (one per core / per flusher).
#[derive(Debug, Default)]
pub(super) struct FieldScratch {
    /// Member names of the last event, unescaped, back to back.
    names: Vec<u8>,
    /// Where each name is in `names`, with a cheap prefilter.
    spans: Vec<NameSpan>,
    /// The last event's `app` string, when it had one.
    app: String,
}

impl FieldScratch {
    /// The `app` string of the last event parsed (meaningful only when its
    /// facts say [`StringField::Str`]).
    pub(super) fn app(&self) -> &str {
        &self.app
    }

    /// Whether the last event parsed repeated a member name (after
    /// unescaping, so `"type"` and `"typ\u0065"` are the same name).
    pub(super) fn has_duplicate_name(&mut self) -> bool {
        let names = &self.names;
        let name = |span: &NameSpan| names.get(span.start..span.end).unwrap_or_default();
        // Equal names have equal fingerprints; only then are bytes compared.
        let same =
            |a: &NameSpan, b: &NameSpan| a.fingerprint == b.fingerprint && name(a) == name(b);
        if self.spans.len() <= PAIRWISE_DUPLICATE_CHECK_MAX_MEMBERS {
            return self.spans.iter().enumerate().any(|(i, a)| {
                self.spans
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .any(|b| same(a, b))
            });
        }
        self.spans
            .sort_unstable_by(|a, b| (a.fingerprint, name(a)).cmp(&(b.fingerprint, name(b))));
        self.spans.windows(2).any(|pair| match pair {
            [a, b] => same(a, b),
            _ => false,
        })
    }

    fn clear(&mut self) {
        self.names.clear();
        self.spans.clear();
        self.app.clear();
    }
}

/// Parses `event` (which must be exactly one JSON object and nothing else)
/// and collects its envelope members. A serde_json error means the bytes
/// are not valid JSON (or not an object): the caller decides whether that
/// rejects the event or the whole body.
pub(super) fn event_facts(
    event: &str,
    scratch: &mut FieldScratch,
) -> Result<EventFacts, serde_json::Error> {
    scratch.clear();
    // From `str`: UTF-8 is already checked, and serde_json's `StrRead`
    // then skips its own checks.
    let mut deserializer = serde_json::Deserializer::from_str(event);
    let facts = EventSeed { scratch }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(facts)
}

/// The envelope members of an event already parsed into its top-level
/// members (the flush side, which builds the stored document from the same
/// parse). Each envelope value is judged by the same [`Judge`] as in
/// [`event_facts`], so both sides read an event alike; the other members
/// are not looked at again (they were checked readable before the event
/// was journaled). Member names are not recorded: the duplicate check is
/// validation's, and the last member of a name wins on both sides.
pub(super) fn facts_from_members(
    members: &EventMembers<'_>,
    scratch: &mut FieldScratch,
) -> Result<EventFacts, serde_json::Error> {
    scratch.clear();
    let judge = |name: &str| members.last(name).map(serde_json::Deserializer::from_str);
    let mut facts = EventFacts::default();
    if let Some(mut value) = judge(FIELD_TYPE) {
        facts.event_type = Judged(StringJudge).deserialize(&mut value)?;
    }
    if let Some(mut value) = judge(FIELD_TS) {
        facts.ts = Judged(TimeJudge).deserialize(&mut value)?;
    }
    if let Some(mut value) = judge(FIELD_RECV) {
        facts.recv = Judged(TimeJudge).deserialize(&mut value)?;
    }
    if let Some(mut value) = judge(FIELD_ID) {
        facts.id = Judged(IdJudge).deserialize(&mut value)?;
    }
    if let Some(mut value) = judge(FIELD_APP) {
        let app = &mut scratch.app;
        facts.app = Judged(AppJudge { app }).deserialize(&mut value)?;
    }
    if let Some(mut value) = judge(FIELD_PRIORITY) {
        facts.priority = Judged(PriorityJudge).deserialize(&mut value)?;
    }
    Ok(facts)
}

/// One member name in [`FieldScratch::names`].
#[derive(Debug, Clone, Copy)]
struct NameSpan {
    start: usize,
    end: usize,
    /// Length and first bytes of the name: different fingerprints mean
    /// different names, so most pairs are told apart by one integer compare.
    fingerprint: u64,
}

/// Bytes of a name that go into its fingerprint (the top byte holds the
/// length).
const FINGERPRINT_PREFIX_BYTES: usize = 7;

fn fingerprint(name: &[u8]) -> u64 {
    let mut prefix = [0u8; 8];
    let take = name.len().min(FINGERPRINT_PREFIX_BYTES);
    prefix[..take].copy_from_slice(name.get(..take).unwrap_or_default());
    // Lengths collide mod 256; the byte comparison settles those.
    prefix[FINGERPRINT_PREFIX_BYTES] = name.len() as u8;
    u64::from_le_bytes(prefix)
}

/// Which envelope member a name is.
enum Member {
    Type,
    Ts,
    Recv,
    Id,
    App,
    Priority,
    Other,
}

struct EventSeed<'s> {
    scratch: &'s mut FieldScratch,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = EventFacts;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EventFacts, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = EventFacts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventFacts, A::Error> {
        let scratch = self.scratch;
        let mut facts = EventFacts::default();
        while let Some(member) = map.next_key_seed(NameSeed {
            names: &mut scratch.names,
            spans: &mut scratch.spans,
        })? {
            match member {
                Member::Type => facts.event_type = map.next_value_seed(Judged(StringJudge))?,
                Member::Ts => facts.ts = map.next_value_seed(Judged(TimeJudge))?,
                Member::Recv => facts.recv = map.next_value_seed(Judged(TimeJudge))?,
                Member::Id => facts.id = map.next_value_seed(Judged(IdJudge))?,
                Member::App => {
                    facts.app = map.next_value_seed(Judged(AppJudge {
                        app: &mut scratch.app,
                    }))?;
                }
                Member::Priority => facts.priority = map.next_value_seed(Judged(PriorityJudge))?,
                Member::Other => {
                    map.next_value::<Readable>()?;
                }
            }
        }
        Ok(facts)
    }
}

/// Whether serde_json refused `event` for a value it cannot decode (a
/// lone surrogate escape, a number beyond `f64`) rather than for its
/// syntax: such an event is JSON, and is refused alone, not with its body.
/// serde_json reports both as syntax errors; its messages tell them apart
/// (`events.rs` pins each one with a test).
pub(super) fn is_unreadable_value(error: &serde_json::Error) -> bool {
    const UNREADABLE: [&str; 4] = [
        "number out of range",
        "lone leading surrogate in hex escape",
        "unexpected end of hex escape",
        "invalid unicode code point",
    ];
    let message = error.to_string();
    UNREADABLE.iter().any(|m| message.starts_with(m))
}

/// Any JSON value, decoded and dropped: strings are unescaped (a lone
/// surrogate escape fails) and numbers converted (one beyond `f64` fails),
/// exactly as a reader of the stored event will.
pub(super) struct Readable;

impl<'de> serde::Deserialize<'de> for Readable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Readable, D::Error> {
        deserializer.deserialize_any(ReadableVisitor)
    }
}

struct ReadableVisitor;

impl<'de> Visitor<'de> for ReadableVisitor {
    type Value = Readable;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Readable, A::Error> {
        while seq.next_element::<Readable>()?.is_some() {}
        Ok(Readable)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Readable, A::Error> {
        while map.next_entry::<Readable, Readable>()?.is_some() {}
        Ok(Readable)
    }
}

/// Records a member name in the arena and says which member it is.
struct NameSeed<'s> {
    names: &'s mut Vec<u8>,
    spans: &'s mut Vec<NameSpan>,
}

impl<'de> DeserializeSeed<'de> for NameSeed<'_> {
    type Value = Member;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed<'_> {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Member, E> {
        let start = self.names.len();
        self.names.extend_from_slice(name.as_bytes());
        self.spans.push(NameSpan {
            start,
            end: self.names.len(),
            fingerprint: fingerprint(name.as_bytes()),
        });
        Ok(match name {
            FIELD_TYPE => Member::Type,
            FIELD_TS => Member::Ts,
            FIELD_RECV => Member::Recv,
            FIELD_ID => Member::Id,
            FIELD_APP => Member::App,
            FIELD_PRIORITY => Member::Priority,
            _ => Member::Other,
        })
    }
}

/// Classifies one member value of any JSON type. Values of a type the
/// judge does not take are consumed (so the parse goes on) and reported as
/// [`Judge::other`]: a wrong type rejects the event, not the body.
trait Judge {
    type Out;
    fn string(self, text: &str) -> Self::Out;
    fn integer(self, value: i128) -> Self::Out;
    fn other(self) -> Self::Out;
}

struct Judged<J>(J);

impl<'de, J: Judge> DeserializeSeed<'de> for Judged<J> {
    type Value = J::Out;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<J::Out, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, J: Judge> Visitor<'de> for Judged<J> {
    type Value = J::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<J::Out, E> {
        Ok(self.0.string(text))
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<J::Out, E> {
        Ok(self.0.integer(i128::from(value)))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<J::Out, E> {
        Ok(self.0.integer(i128::from(value)))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<J::Out, E> {
        Ok(self.0.other())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<J::Out, E> {
        Ok(self.0.other())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<J::Out, E> {
        Ok(self.0.other())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J::Out, A::Error> {
        while seq.next_element::<Readable>()?.is_some() {}
        Ok(self.0.other())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J::Out, A::Error> {
        while map.next_entry::<Readable, Readable>()?.is_some() {}
        Ok(self.0.other())
    }
}

struct StringJudge;

impl Judge for StringJudge {
    type Out = StringField;

    fn string(self, text: &str) -> StringField {
        StringField::Str {
            empty: text.is_empty(),
        }
    }

    fn integer(self, _: i128) -> StringField {
        StringField::NotString
    }

    fn other(self) -> StringField {
        StringField::NotString
    }
}

struct AppJudge<'s> {
    app: &'s mut String,
}

impl Judge for AppJudge<'_> {
    type Out = StringField;

    fn string(self, text: &str) -> StringField {
        // Last one wins, like the document builder.
        self.app.clear();
        self.app.push_str(text);
        StringField::Str {
            empty: text.is_empty(),
        }
    }

    fn integer(self, _: i128) -> StringField {
        StringField::NotString
    }

    fn other(self) -> StringField {
        StringField::NotString
    }
}

/// `ts` / `recv`: RFC 3339 text or an integer count of epoch ms, within the
/// years RFC 3339 can write (the store writes these times back as text).
struct TimeJudge;

impl Judge for TimeJudge {
    type Out = TimeField;

    fn string(self, text: &str) -> TimeField {
        parse_rfc3339_ms(text).map_or(TimeField::Invalid, TimeField::Ms)
    }

    fn integer(self, value: i128) -> TimeField {
        match i64::try_from(value) {
            Ok(ms) if (RFC3339_MIN_MS..=RFC3339_MAX_MS).contains(&ms) => TimeField::Ms(ms),
            _ => TimeField::Invalid,
        }
    }

    fn other(self) -> TimeField {
        TimeField::Invalid
    }
}

/// `priority`: one of the three names, else (any other string, any other
/// type) `Normal`, the value kept as data.
struct PriorityJudge;

impl Judge for PriorityJudge {
    type Out = Priority;

    fn string(self, text: &str) -> Priority {
        Priority::from_value(text)
    }

    fn integer(self, _: i128) -> Priority {
        Priority::Normal
    }

    fn other(self) -> Priority {
        Priority::Normal
    }
}

struct IdJudge;

impl Judge for IdJudge {
    type Out = IdField;

    fn string(self, text: &str) -> IdField {
        ObjectId::parse_hex(text).map_or(IdField::Invalid, IdField::Valid)
    }

    fn integer(self, _: i128) -> IdField {
        IdField::Invalid
    }

    fn other(self) -> IdField {
        IdField::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> (EventFacts, FieldScratch) {
        let mut scratch = FieldScratch::default();
        let facts = event_facts(text, &mut scratch).expect("valid JSON object");
        (facts, scratch)
    }

    #[test]
    fn envelope_members_are_collected_and_others_skipped() {
        let (facts, scratch) = facts(
            r#"{"x":{"deep":[1,2,{"y":null}]},"type":"t","ts":5,"_id":"0123456789abcdef01234567","app":"shop"}"#,
        );
        assert_eq!(facts.event_type, StringField::Str { empty: false });
        assert_eq!(facts.ts, TimeField::Ms(5));
        assert!(matches!(facts.id, IdField::Valid(_)));
        assert_eq!(facts.recv, TimeField::Absent);
        assert_eq!(facts.app, StringField::Str { empty: false });
        assert_eq!(scratch.app(), "shop");
    }

    #[test]
    fn priority_is_read_and_anything_unknown_counts_as_normal() {
        for (event, priority) in [
            (r#"{"type":"t","priority":"high"}"#, Priority::High),
            (r#"{"type":"t","priority":"low"}"#, Priority::Low),
            (r#"{"type":"t","priority":"normal"}"#, Priority::Normal),
            (r#"{"type":"t"}"#, Priority::Normal),
            (r#"{"type":"t","priority":"HIGH"}"#, Priority::Normal),
            (r#"{"type":"t","priority":3}"#, Priority::Normal),
            (r#"{"type":"t","priority":{"high":1}}"#, Priority::Normal),
            (r#"{"type":"t","priorit\u0079":"low"}"#, Priority::Low),
            (r#"{"type":"t","x":{"priority":"high"}}"#, Priority::Normal),
        ] {
            assert_eq!(facts(event).0.priority, priority, "{event}");
        }
    }

    #[test]
    fn escaped_names_are_compared_unescaped() {
        let (facts, mut scratch) = facts(r#"{"type":"a","typ\u0065":"b"}"#);
        assert_eq!(facts.event_type, StringField::Str { empty: false });
        assert!(scratch.has_duplicate_name());
    }

    #[test]
    fn duplicate_check_sorts_above_the_pairwise_limit() {
        let members: Vec<String> = (0..100).map(|i| format!("\"m{i}\":{i}")).collect();
        let unique = format!("{{{}}}", members.join(","));
        let (_, mut scratch) = facts(&unique);
        assert!(!scratch.has_duplicate_name());
        let repeated = format!("{{{},\"m7\":0}}", members.join(","));
        let (_, mut scratch) = facts(&repeated);
        assert!(scratch.has_duplicate_name());
    }

    #[test]
    fn non_objects_and_trailing_bytes_are_parse_errors() {
        let mut scratch = FieldScratch::default();
        assert!(event_facts("[1]", &mut scratch).is_err());
        assert!(event_facts("{} x", &mut scratch).is_err());
        assert!(event_facts("{\"a\":}", &mut scratch).is_err());
    }

    #[test]
    fn facts_from_members_read_every_envelope_member_as_event_facts_does() {
        let id = "0123456789abcdef01234567";
        let events = [
            format!(r#"{{"type":"t","ts":5,"_id":"{id}","app":"shop","recv":7}}"#),
            r#"{"type":"","ts":"2026-12-07T10:00:00.123Z","app":""}"#.to_owned(),
            r#"{"type":3,"ts":1.5,"_id":"xyz","app":4,"recv":"not a time"}"#.to_owned(),
            r#"{"type":"a","type":"b","ts":1,"ts":99999999999999999999,"app":"x","app":"y"}"#
                .to_owned(),
            r#"{"typ\u0065":"esc","\u0074s":"2026-01-01T00:00:00Z","app":"\u00e9t\u00e9"}"#
                .to_owned(),
            r#"{"x":{"type":"inner","ts":1},"priority":"high","other":[1,{"_id":2}]}"#.to_owned(),
            r#"{"type":"t","ts":-62167219200001,"recv":253402300800000,"priority":"low"}"#
                .to_owned(),
            r#"{"type":"t","_id":null,"app":null,"ts":null}"#.to_owned(),
        ];
        for event in &events {
            let (expected, expected_scratch) = facts(event);
            let members = EventMembers::parse(event).expect("an object");
            let mut scratch = FieldScratch::default();
            let got = facts_from_members(&members, &mut scratch).expect("judged");
            assert_eq!(got, expected, "{event}");
            if matches!(expected.app, StringField::Str { .. }) {
                assert_eq!(scratch.app(), expected_scratch.app(), "{event}");
            }
        }
    }
}
