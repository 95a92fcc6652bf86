//! The JSON push body (`application/json`):
//!
//! ```json
//! {"streams": [{"stream": {"job": "api"},
//!               "values": [["1765108800123456789", "a line"],
//!                          ["1765108800123456790", "another", {"trace_id": "ab12"}]]}]}
//! ```
//!
//! Deserialized straight into borrowed text (a string without escapes is
//! not copied). Unknown members are ignored, as Loki does; a value of the
//! wrong shape is refused with serde's message and position. The time is a
//! string of nanoseconds (Loki's form) or, leniently, a JSON integer;
//! label and structured-metadata values are strings, or numbers and
//! booleans taken as their JSON text (Loki reads those too).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::selector::Label;
use super::Nanos;

/// The whole body.
#[derive(Deserialize)]
pub(super) struct PushRequest<'a> {
    /// Absent means no entries, which Loki accepts.
    #[serde(borrow, default)]
    pub streams: Vec<Stream<'a>>,
}

/// One stream: its labels and entries.
#[derive(Deserialize)]
pub(super) struct Stream<'a> {
    /// Absent means no labels (refused later, as Loki does).
    #[serde(borrow, default)]
    pub stream: Pairs<'a>,
    #[serde(borrow, default)]
    pub values: Vec<Entry<'a>>,
}

/// A JSON object of text values, in the order written.
#[derive(Default)]
pub(super) struct Pairs<'a>(pub Vec<Label<'a>>);

/// `[time, line]` or `[time, line, {metadata}]`.
pub(super) struct Entry<'a> {
    pub time: Nanos<'a>,
    pub line: Cow<'a, str>,
    pub metadata: Pairs<'a>,
}

/// Text, borrowed from the body when it has no escapes.
struct Text<'a>(Cow<'a, str>);

/// A label or metadata value: a string, or a number or boolean as text.
struct Scalar<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // serde_json writes the shortest text that reads back the same.
                Ok(Scalar(Cow::Owned(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string()),
                )))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar(Cow::Borrowed(if v { "true" } else { "false" })))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    let Scalar(value) = map.next_value::<Scalar<'de>>()?;
                    pairs.push((name, value));
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Nanos<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NanosVisitor;
        impl<'de> Visitor<'de> for NanosVisitor {
            type Value = Nanos<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp in nanoseconds since the epoch (a string of digits)")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Nanos::text(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                // Only reached for a string with escapes: digits need none,
                // so this is never a valid timestamp.
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Nanos::Int(u128::from(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
        deserializer.deserialize_any(NanosVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Entry<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = Entry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entry [\"<ns>\", \"<line>\"] or [\"<ns>\", \"<line>\", {metadata}]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let time = seq
                    .next_element::<Nanos<'de>>()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let Text(line) = seq
                    .next_element::<Text<'de>>()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let metadata = seq.next_element::<Pairs<'de>>()?.unwrap_or_default();
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(Entry {
                    time,
                    line,
                    metadata,
                })
            }
        }
        deserializer.deserialize_seq(EntryVisitor)
    }
}

/// Parses a JSON push body.
pub(super) fn parse(body: &[u8]) -> Result<PushRequest<'_>, serde_json::Error> {
    serde_json::from_slice(body)
}
