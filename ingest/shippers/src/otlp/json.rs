//! The OTLP/JSON mapping's value rules, for the `Deserialize` impls of
//! `proto.rs`: `null` means the default value; 64-bit (and 32-bit)
//! integers arrive as numbers or decimal strings; doubles as numbers or the
//! strings `"NaN"`, `"Infinity"`, `"-Infinity"`; `bytesValue` as base64;
//! trace and span ids as hex (OTLP's deviation from the protobuf mapping);
//! `AnyValue` as the one member naming its case.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

use super::base64;
use super::proto::{AnyValue, ArrayValue, KeyValueList, Value};

/// A field whose `null` means its default (repeated fields, strings).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A `fixed64`/`uint64` field: number or decimal string, `null` is 0.
pub fn u64_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    Option::<Integer>::deserialize(deserializer)?.map_or(Ok(0), |n| n.to_u64())
}

/// A `uint32`/`fixed32` field: number or decimal string, `null` is 0.
pub fn u32_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let n = u64_field(deserializer)?;
    u32::try_from(n).map_err(|_| de::Error::custom(format!("{n} does not fit a uint32 field")))
}

/// An `int32` (or enum) field: number or decimal string, `null` is 0.
pub fn i32_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    let n = Option::<Integer>::deserialize(deserializer)?.map_or(Ok(0), |n| n.to_i64())?;
    i32::try_from(n).map_err(|_| de::Error::custom(format!("{n} does not fit an int32 field")))
}

/// `traceId`/`spanId`: hex text of any case, `null` or `""` is empty.
pub fn hex_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    decode_hex(&text).ok_or_else(|| de::Error::custom(format!("{text:?} is not a hex id")))
}

/// A `bytes` field other than an id: base64 (standard or URL-safe, padded
/// or not), `null` is empty.
pub fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
    base64::decode(&text).ok_or_else(|| de::Error::custom("bytesValue is not base64"))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    if text.len() % 2 != 0 {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// An integer as the JSON mapping sends it: a number (integral) or a
/// string of one.
enum Integer {
    Unsigned(u64),
    Signed(i64),
}

impl Integer {
    fn to_u64<E: de::Error>(&self) -> Result<u64, E> {
        match *self {
            Integer::Unsigned(n) => Ok(n),
            Integer::Signed(n) => u64::try_from(n)
                .map_err(|_| E::custom(format!("{n} is negative in an unsigned field"))),
        }
    }

    fn to_i64<E: de::Error>(&self) -> Result<i64, E> {
        match *self {
            Integer::Signed(n) => Ok(n),
            Integer::Unsigned(n) => {
                i64::try_from(n).map_err(|_| E::custom(format!("{n} does not fit an int64")))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntegerVisitor)
    }
}

struct IntegerVisitor;

/// Largest double below which every integral value is exact (2^53): an
/// integral double past it came from a sender that lost precision already,
/// so it is refused rather than silently rounded.
const EXACT_DOUBLE_MAX: f64 = 9_007_199_254_740_992.0;

impl<'de> Visitor<'de> for IntegerVisitor {
    type Value = Integer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (number or decimal string)")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Integer, E> {
        Ok(Integer::Unsigned(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Integer, E> {
        Ok(Integer::Signed(n))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Integer, E> {
        // `1e3` is an integral number in JSON; 1.5 is not an integer.
        if x.fract() != 0.0 || !x.is_finite() || x.abs() > EXACT_DOUBLE_MAX {
            return Err(E::custom(format!("{x} is not an exact integer")));
        }
        // In range and integral: the casts are exact.
        Ok(if x < 0.0 {
            Integer::Signed(x as i64)
        } else {
            Integer::Unsigned(x as u64)
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Integer, E> {
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Integer::Unsigned(n));
        }
        s.parse::<i64>()
            .map(Integer::Signed)
            .map_err(|_| E::custom(format!("{s:?} is not a decimal integer")))
    }
}

/// A double as the JSON mapping sends it.
struct Double(f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DoubleVisitor)
    }
}

struct DoubleVisitor;

impl<'de> Visitor<'de> for DoubleVisitor {
    type Value = Double;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, or \"NaN\", \"Infinity\", \"-Infinity\"")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Double, E> {
        Ok(Double(n as f64))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Double, E> {
        Ok(Double(n as f64))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Double, E> {
        Ok(Double(x))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Double, E> {
        match s {
            "NaN" => Ok(Double(f64::NAN)),
            "Infinity" => Ok(Double(f64::INFINITY)),
            "-Infinity" => Ok(Double(f64::NEG_INFINITY)),
            // Rust's parser also takes "inf", "nan": only the mapping's
            // three spellings are special, so refuse those.
            _ if s
                .bytes()
                .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
            {
                Err(E::custom(format!("{s:?} is not a double")))
            }
            _ => s
                .parse::<f64>()
                .map(Double)
                .map_err(|_| E::custom(format!("{s:?} is not a double"))),
        }
    }
}

/// The JSON names of `AnyValue`'s cases (lowerCamelCase and the proto's
/// own names).
#[derive(Clone, Copy)]
enum Case {
    String,
    Bool,
    Int,
    Double,
    Array,
    Kvlist,
    Bytes,
    Unknown,
}

impl Case {
    fn of(name: &str) -> Case {
        match name {
            "stringValue" | "string_value" => Case::String,
            "boolValue" | "bool_value" => Case::Bool,
            "intValue" | "int_value" => Case::Int,
            "doubleValue" | "double_value" => Case::Double,
            "arrayValue" | "array_value" => Case::Array,
            "kvlistValue" | "kvlist_value" => Case::Kvlist,
            "bytesValue" | "bytes_value" => Case::Bytes,
            // `stringValueStrindex` (profiling) and names a later version
            // adds: ignored, as the mapping requires.
            _ => Case::Unknown,
        }
    }
}

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AnyValueVisitor)
    }
}

struct AnyValueVisitor;

impl<'de> Visitor<'de> for AnyValueVisitor {
    type Value = AnyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OTLP AnyValue object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        let mut value = None;
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let case = Case::of(&name);
            // `null` for a oneof member means the member is unset.
            let this = match case {
                Case::String => map.next_value::<Option<String>>()?.map(Value::String),
                Case::Bool => map.next_value::<Option<bool>>()?.map(Value::Bool),
                Case::Int => map
                    .next_value::<Option<Integer>>()?
                    .map(|n| n.to_i64())
                    .transpose()?
                    .map(Value::Int),
                Case::Double => map
                    .next_value::<Option<Double>>()?
                    .map(|d| Value::Double(d.0)),
                Case::Array => map.next_value::<Option<ArrayValue>>()?.map(Value::Array),
                Case::Kvlist => map.next_value::<Option<KeyValueList>>()?.map(Value::Kvlist),
                Case::Bytes => map
                    .next_value::<Option<Base64>>()?
                    .map(|b| Value::Bytes(b.0)),
                Case::Unknown => {
                    map.next_value::<IgnoredAny>()?;
                    None
                }
            };
            if let Some(this) = this {
                if value.is_some() {
                    return Err(de::Error::custom(
                        "an AnyValue sets more than one of its oneof members",
                    ));
                }
                value = Some(this);
            }
        }
        Ok(AnyValue { value })
    }
}

/// `bytesValue` text.
struct Base64(Vec<u8>);

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        base64_bytes(deserializer).map(Base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::LogRecord;

    #[test]
    fn integers_arrive_as_numbers_or_decimal_strings() {
        let record: LogRecord = serde_json::from_str(
            r#"{"timeUnixNano":"1765108800123456789","observedTimeUnixNano":1765108800123456789,
                "severityNumber":"9","flags":1e0,"droppedAttributesCount":null}"#,
        )
        .unwrap();
        assert_eq!(record.time_unix_nano, 1_765_108_800_123_456_789);
        assert_eq!(record.observed_time_unix_nano, 1_765_108_800_123_456_789);
        assert_eq!(record.severity_number, 9);
        assert_eq!(record.flags, 1);
        assert_eq!(record.dropped_attributes_count, 0);
    }

    #[test]
    fn integers_that_do_not_fit_or_are_not_integral_are_refused() {
        for bad in [
            r#"{"timeUnixNano":"-1"}"#,
            r#"{"timeUnixNano":1.5}"#,
            r#"{"timeUnixNano":"12ab"}"#,
            r#"{"flags":4294967296}"#,
            r#"{"severityNumber":"2147483648"}"#,
            r#"{"timeUnixNano":1e300}"#,
        ] {
            assert!(serde_json::from_str::<LogRecord>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_hex_of_either_case() {
        let record: LogRecord =
            serde_json::from_str(r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":""}"#)
                .unwrap();
        assert_eq!(record.trace_id[0], 0x5b);
        assert_eq!(record.trace_id.len(), 16);
        assert!(record.span_id.is_empty());
        assert!(serde_json::from_str::<LogRecord>(r#"{"spanId":"xyz0"}"#).is_err());
        assert!(serde_json::from_str::<LogRecord>(r#"{"spanId":"abc"}"#).is_err());
    }

    #[test]
    fn doubles_take_the_three_special_spellings_only() {
        let v: AnyValue = serde_json::from_str(r#"{"doubleValue":"-Infinity"}"#).unwrap();
        assert_eq!(v.value, Some(Value::Double(f64::NEG_INFINITY)));
        let v: AnyValue = serde_json::from_str(r#"{"doubleValue":"2.5"}"#).unwrap();
        assert_eq!(v.value, Some(Value::Double(2.5)));
        assert!(serde_json::from_str::<AnyValue>(r#"{"doubleValue":"inf"}"#).is_err());
    }

    #[test]
    fn an_any_value_with_two_members_is_refused_and_unknown_members_ignored() {
        assert!(serde_json::from_str::<AnyValue>(r#"{"stringValue":"a","intValue":1}"#).is_err());
        let v: AnyValue =
            serde_json::from_str(r#"{"stringValueStrindex":3,"string_value":"a"}"#).unwrap();
        assert_eq!(v.value, Some(Value::String("a".into())));
        let v: AnyValue = serde_json::from_str(r#"{"stringValue":null}"#).unwrap();
        assert_eq!(v.value, None);
    }
}
