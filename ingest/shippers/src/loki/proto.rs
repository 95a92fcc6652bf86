//! The protobuf push body (`application/x-protobuf`): a `PushRequest`
//! (Loki's `pkg/push/push.proto`), snappy **block**-compressed (not the
//! framed format), with no `Content-Encoding` header.
//!
//! ```text
//! PushRequest      { repeated StreamAdapter streams = 1; string format = 2; }
//! StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//! EntryAdapter     { Timestamp timestamp = 1; string line = 2;
//!                    repeated LabelPairAdapter structuredMetadata = 3; repeated ... parsed = 4; }
//! LabelPairAdapter { string name = 1; string value = 2; }
//! Timestamp        { int64 seconds = 1; int32 nanos = 2; }
//! ```
//!
//! Read in place from the decompressed bytes: every string is a slice of
//! them, so an entry costs no allocation (prost's derived decoder copies
//! each string into its own `Vec`, which cost more than the rest of the
//! translation put together). Protobuf's rules are kept: fields in any
//! order, the last of a repeated scalar wins, a message field given twice
//! merges, unknown fields (`format`, `hash`, `parsed`, anything newer) are
//! skipped; a known field with the wrong wire type, a truncated field or an
//! over-long varint is an error. Groups (deprecated since proto2, never
//! sent by Loki clients) are refused rather than skipped. Text is not
//! checked for UTF-8 here (Loki's Go decoder does not either);
//! [`crate::text_of`] replaces invalid sequences.

/// A field's value on the wire.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed32 or fixed64 (no field here has one).
    Fixed,
}

/// Iterates the fields of one message; stops after the first error.
struct Fields<'a> {
    rest: &'a [u8],
}

/// Most bytes of a varint (64 bits, 7 per byte).
const MAX_VARINT_BYTES: usize = 10;

impl<'a> Fields<'a> {
    fn new(message: &'a [u8]) -> Fields<'a> {
        Fields { rest: message }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for (i, &byte) in self.rest.iter().take(MAX_VARINT_BYTES).enumerate() {
            // The 10th byte may only carry the 64th bit.
            if i == MAX_VARINT_BYTES - 1 && byte > 1 {
                return Err("varint overflows 64 bits".into());
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(if self.rest.len() < MAX_VARINT_BYTES {
            "truncated varint".into()
        } else {
            "varint longer than 10 bytes".into()
        })
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], String> {
        match usize::try_from(len) {
            Ok(len) if len <= self.rest.len() => {
                let (taken, rest) = self.rest.split_at(len);
                self.rest = rest;
                Ok(taken)
            }
            _ => Err(format!(
                "field of {len} bytes past the end of its message ({} left)",
                self.rest.len()
            )),
        }
    }

    fn field(&mut self) -> Result<(u64, Value<'a>), String> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err("field number 0".into());
        }
        let value = match key & 0x7 {
            0 => Value::Varint(self.varint()?),
            1 => self.take(8).map(|_| Value::Fixed)?,
            2 => {
                let len = self.varint()?;
                Value::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Value::Fixed)?,
            wire_type => {
                return Err(format!(
                    "field {number} has wire type {wire_type} (groups are not supported)"
                ))
            }
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.rest = &[];
        }
        Some(field)
    }
}

fn wrong_type(message: &str, number: u64) -> String {
    format!("{message} field {number} has the wrong wire type")
}

/// The `streams` of a `PushRequest`, each the bytes of a `StreamAdapter`.
pub(super) fn streams(push: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut streams = Vec::new();
    for field in Fields::new(push) {
        match field? {
            (1, Value::Bytes(stream)) => streams.push(stream),
            (1, _) => return Err(wrong_type("PushRequest", 1)),
            _ => {}
        }
    }
    Ok(streams)
}

/// The `labels` of a `StreamAdapter` (empty when absent).
pub(super) fn stream_labels(stream: &[u8]) -> Result<&[u8], String> {
    let mut labels: &[u8] = &[];
    for field in Fields::new(stream) {
        match field? {
            (1, Value::Bytes(text)) => labels = text,
            (2, Value::Bytes(_)) => {}
            (n @ (1 | 2), _) => return Err(wrong_type("StreamAdapter", n)),
            _ => {}
        }
    }
    Ok(labels)
}

/// Calls `each` with the bytes of every `EntryAdapter` of a stream, in order.
pub(super) fn for_each_entry<'a, E>(
    stream: &'a [u8],
    mut each: impl FnMut(&'a [u8]) -> Result<(), E>,
    error: impl Fn(String) -> E,
) -> Result<(), E> {
    for field in Fields::new(stream) {
        // stream_labels() has refused a wrong wire type already.
        if let (2, Value::Bytes(entry)) = field.map_err(&error)? {
            each(entry)?;
        }
    }
    Ok(())
}

/// `google.protobuf.Timestamp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Timestamp {
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Nanoseconds within the second (0..1e9 when valid).
    pub nanos: i32,
}

/// One `EntryAdapter`, borrowed.
#[derive(Debug, Default)]
pub(super) struct Entry<'a> {
    /// Absent when the pusher sent none.
    pub timestamp: Option<Timestamp>,
    /// The log line (empty when absent).
    pub line: &'a [u8],
}

/// Reads an `EntryAdapter`; its structured metadata goes into `metadata`
/// (cleared first) as `(name, value)` pairs, in order.
pub(super) fn entry<'a>(
    bytes: &'a [u8],
    metadata: &mut Vec<(&'a [u8], &'a [u8])>,
) -> Result<Entry<'a>, String> {
    metadata.clear();
    let mut entry = Entry::default();
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(ts)) => {
                // A message field given twice merges into the first.
                let merged = entry.timestamp.get_or_insert_with(Timestamp::default);
                timestamp(ts, merged)?;
            }
            (2, Value::Bytes(line)) => entry.line = line,
            (3, Value::Bytes(pair)) => metadata.push(label_pair(pair)?),
            (n @ (1..=3), _) => return Err(wrong_type("EntryAdapter", n)),
            _ => {}
        }
    }
    Ok(entry)
}

fn timestamp(bytes: &[u8], into: &mut Timestamp) -> Result<(), String> {
    for field in Fields::new(bytes) {
        match field? {
            // Protobuf's int64/int32 are two's complement in a varint; an
            // int32 read from 64 bits keeps the low 32, as prost does.
            (1, Value::Varint(v)) => into.seconds = v as i64,
            (2, Value::Varint(v)) => into.nanos = v as i32,
            (n @ (1 | 2), _) => return Err(wrong_type("Timestamp", n)),
            _ => {}
        }
    }
    Ok(())
}

fn label_pair(bytes: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Bytes(text)) => name = text,
            (2, Value::Bytes(text)) => value = text,
            (n @ (1 | 2), _) => return Err(wrong_type("LabelPairAdapter", n)),
            _ => {}
        }
    }
    Ok((name, value))
}

/// Nanoseconds since the epoch of a protobuf `Timestamp`, or why it has
/// none Helios can store (before 1970, or `nanos` outside `0..1e9`, which
/// the protobuf spec forbids).
pub(super) fn nanos(ts: Timestamp) -> Result<u128, String> {
    if !(0..NANOS_PER_SECOND).contains(&ts.nanos) {
        return Err(format!(
            "entry timestamp has nanos {} outside 0..999999999",
            ts.nanos
        ));
    }
    let seconds = u128::try_from(ts.seconds)
        .map_err(|_| format!("entry timestamp {}s is before 1970", ts.seconds))?;
    // Both parts are non-negative: u128 holds i64::MAX * 1e9 + 1e9 with room.
    Ok(seconds * NANOS_PER_SECOND as u128 + ts.nanos as u128)
}

const NANOS_PER_SECOND: i32 = 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_up_to_ten_bytes_and_no_more_than_64_bits() {
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Fields::new(&max).varint(), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Fields::new(&over).varint(),
            Err("varint overflows 64 bits".into())
        );
        assert_eq!(
            Fields::new(&[0x80, 0x80]).varint(),
            Err("truncated varint".into())
        );
    }

    #[test]
    fn a_field_longer_than_its_message_is_an_error() {
        // Field 1, length-delimited, 5 bytes, but only 2 follow.
        assert_eq!(
            streams(&[0x0a, 0x05, 0x01, 0x02]),
            Err("field of 5 bytes past the end of its message (2 left)".into())
        );
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let push = [
            0x10, 0x96, 0x01, // field 2 varint
            0x19, 1, 2, 3, 4, 5, 6, 7, 8, // field 3 fixed64
            0x25, 1, 2, 3, 4, // field 4 fixed32
            0x12, 0x04, b'l', b'o', b'k', b'i', // field 2 (format) bytes
            0x0a, 0x00, // one empty stream
        ];
        assert_eq!(streams(&push), Ok(vec![&[][..]]));
    }

    #[test]
    fn groups_and_wrong_wire_types_are_refused() {
        assert_eq!(
            streams(&[0x0b, 0x0c]),
            Err("field 1 has wire type 3 (groups are not supported)".into())
        );
        assert_eq!(
            streams(&[0x08, 0x01]),
            Err("PushRequest field 1 has the wrong wire type".into())
        );
        assert_eq!(streams(&[0x00]), Err("field number 0".into()));
    }

    #[test]
    fn a_timestamp_given_twice_merges_field_by_field() {
        // timestamp {seconds: 5}, line "a", timestamp {nanos: 7}
        let entry_bytes = [
            0x0a, 0x02, 0x08, 0x05, 0x12, 0x01, b'a', 0x0a, 0x02, 0x10, 0x07,
        ];
        let mut metadata = Vec::new();
        let read = entry(&entry_bytes, &mut metadata).unwrap();
        assert_eq!(
            read.timestamp,
            Some(Timestamp {
                seconds: 5,
                nanos: 7
            })
        );
        assert_eq!(read.line, b"a");
    }

    #[test]
    fn negative_int64_seconds_read_as_twos_complement() {
        // seconds = -1: ten bytes.
        let ts = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        let mut into = Timestamp::default();
        timestamp(&ts, &mut into).unwrap();
        assert_eq!(into.seconds, -1);
    }
}
