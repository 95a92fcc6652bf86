//! The protobuf wire format read in place: fields of a message as slices of
//! the body, no owned strings.
//!
//! It is at least as strict as prost's derived decoder on the OTLP messages
//! (every body it reads, prost reads too): over-long or overflowing
//! varints, keys past 32 bits, field number 0, wire types 6 and 7, a stray
//! end-group, a field running past its message, a known field with the
//! wrong wire type and a string that is not UTF-8 all stop it. Unknown
//! fields are skipped as prost skips them, groups included (matching
//! end-group, nested groups counted against the nesting budget).
//!
//! Anything it stops at is [`Unread`]: the caller then hands the body to
//! prost, whose answer (its error, or the events of the owned-struct path)
//! is the one given. So the reader may also stop early where that is
//! simpler than matching prost exactly (a message at the end of its
//! nesting budget, a message field given twice, which protobuf merges).

/// Why the in-place reader did not finish: the body is malformed, hits a
/// limit, or needs a rule it leaves to prost (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unread;

/// Nesting budget of the top-level message: prost's recursion limit, so
/// the two decoders take the same depth (and [`Message::fields`] refuses a
/// message whose budget is spent, which bounds every recursion over the
/// body, the writers' included).
pub const RECURSION_LIMIT: u32 = 100;

/// Most bytes of a varint (64 bits, 7 per byte).
const MAX_VARINT_BYTES: usize = 10;

/// A message's bytes and what is left of the nesting budget for it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    budget: u32,
}

impl<'a> Message<'a> {
    /// The top-level message (the whole body).
    #[inline]
    pub fn root(bytes: &'a [u8]) -> Message<'a> {
        Message {
            bytes,
            budget: RECURSION_LIMIT,
        }
    }

    /// Its fields, in order. [`Unread`] when the budget is spent: prost
    /// still reads such a message if it holds only known scalar fields,
    /// but that depth is never sent in practice and prost decides it.
    #[inline]
    pub fn fields(self) -> Result<Fields<'a>, Unread> {
        if self.budget == 0 {
            return Err(Unread);
        }
        Ok(Fields {
            rest: self.bytes,
            budget: self.budget,
        })
    }
}

/// A field's value as the wire carries it.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    /// A group (skipped already: no OTLP field is one).
    Group,
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The field number.
    pub number: u32,
    wire: Wire<'a>,
    /// The budget of the message the field is in.
    budget: u32,
}

impl<'a> Field<'a> {
    /// An `int32`, `int64`, `uint32`, `bool` or enum field's varint (the
    /// caller truncates as prost does).
    #[inline]
    pub fn varint(self) -> Result<u64, Unread> {
        match self.wire {
            Wire::Varint(v) => Ok(v),
            _ => Err(Unread),
        }
    }

    /// A `fixed64` or `double` field.
    #[inline]
    pub fn fixed64(self) -> Result<u64, Unread> {
        match self.wire {
            Wire::Fixed64(v) => Ok(v),
            _ => Err(Unread),
        }
    }

    /// A `fixed32` field.
    #[inline]
    pub fn fixed32(self) -> Result<u32, Unread> {
        match self.wire {
            Wire::Fixed32(v) => Ok(v),
            _ => Err(Unread),
        }
    }

    /// A `bytes` field.
    #[inline]
    pub fn bytes(self) -> Result<&'a [u8], Unread> {
        match self.wire {
            Wire::Bytes(bytes) => Ok(bytes),
            _ => Err(Unread),
        }
    }

    /// A `string` field: UTF-8, as prost requires.
    #[inline]
    pub fn text(self) -> Result<Text<'a>, Unread> {
        Text::read(self.bytes()?)
    }

    /// A message field, one level deeper.
    #[inline]
    pub fn message(self) -> Result<Message<'a>, Unread> {
        Ok(Message {
            bytes: self.bytes()?,
            // Fields exist only in messages whose budget is not spent.
            budget: self.budget - 1,
        })
    }
}

/// The fields of one message, read front to back.
pub struct Fields<'a> {
    rest: &'a [u8],
    budget: u32,
}

impl<'a> Fields<'a> {
    /// Bytes of the message not read yet.
    #[cfg(test)]
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next field; `None` at the end of the message. Unknown fields
    /// are returned too (the caller ignores them): their value has been
    /// read past by protobuf's rules already.
    // Not an `Iterator`: `while let Some(f) = fields.next()?` reads better
    // than an iterator of results, and the reader stops at the first error.
    #[allow(clippy::should_implement_trait)]
    // Always, as the reading functions below: a field returned through
    // memory was copied with loads stalling on the stores just made.
    #[inline(always)]
    pub fn next(&mut self) -> Result<Option<Field<'a>>, Unread> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (number, wire_type) = self.key()?;
        let wire = self.value(number, wire_type, self.budget)?;
        Ok(Some(Field {
            number,
            wire,
            budget: self.budget,
        }))
    }

    /// A field key: (number, wire type), refused as prost refuses it.
    #[inline(always)]
    fn key(&mut self) -> Result<(u32, u8), Unread> {
        let key = u32::try_from(self.varint()?).map_err(|_| Unread)?;
        let number = key >> 3;
        if number == 0 {
            return Err(Unread);
        }
        Ok((number, (key & 0x7) as u8))
    }

    /// The value of a field whose key was just read, in a message (or
    /// group) at `budget`.
    #[inline(always)]
    fn value(&mut self, number: u32, wire_type: u8, budget: u32) -> Result<Wire<'a>, Unread> {
        Ok(match wire_type {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let bytes = self.take(8)?;
                let mut word = [0; 8];
                word.copy_from_slice(bytes);
                Wire::Fixed64(u64::from_le_bytes(word))
            }
            2 => {
                let len = self.varint()?;
                Wire::Bytes(self.take(len)?)
            }
            3 => {
                self.skip_group(number, budget)?;
                Wire::Group
            }
            5 => {
                let bytes = self.take(4)?;
                let mut word = [0; 4];
                word.copy_from_slice(bytes);
                Wire::Fixed32(u32::from_le_bytes(word))
            }
            // An end-group outside its group, or wire types 6 and 7.
            _ => return Err(Unread),
        })
    }

    /// Past a group's fields up to its end-group (same number), as prost's
    /// `skip_field` does: each level deeper costs one unit of budget.
    // Out of line: groups are never sent by OTLP exporters.
    #[cold]
    #[inline(never)]
    fn skip_group(&mut self, number: u32, budget: u32) -> Result<(), Unread> {
        let inner = budget - 1;
        loop {
            let (inner_number, wire_type) = self.key()?;
            if wire_type == 4 {
                return if inner_number == number {
                    Ok(())
                } else {
                    Err(Unread)
                };
            }
            // prost checks the budget before skipping each inner field.
            if inner == 0 {
                return Err(Unread);
            }
            self.value(inner_number, wire_type, inner)?;
        }
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, Unread> {
        // One byte is the common case (keys, lengths of short strings).
        if let Some(&byte) = self.rest.first() {
            if byte < 0x80 {
                self.rest = &self.rest[1..];
                return Ok(u64::from(byte));
            }
        }
        let mut value: u64 = 0;
        for (i, &byte) in self.rest.iter().take(MAX_VARINT_BYTES).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                // The 10th byte may only carry the 64th bit.
                if i == MAX_VARINT_BYTES - 1 && byte > 1 {
                    return Err(Unread);
                }
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(Unread)
    }

    #[inline(always)]
    fn take(&mut self, len: u64) -> Result<&'a [u8], Unread> {
        match usize::try_from(len) {
            Ok(len) if len <= self.rest.len() => {
                let (taken, rest) = self.rest.split_at(len);
                self.rest = rest;
                Ok(taken)
            }
            _ => Err(Unread),
        }
    }
}

/// A UTF-8 string field, with whether it can be written into JSON as it
/// is (checked once, and then it is ASCII: no UTF-8 check to do).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Text<'a> {
    /// The text's bytes, UTF-8.
    bytes: &'a [u8],
    /// Printable ASCII without `"` and `\`: needs no JSON escape.
    plain: bool,
}

impl<'a> Text<'a> {
    /// `bytes` as text; [`Unread`] when it is not UTF-8.
    #[inline]
    pub fn read(bytes: &'a [u8]) -> Result<Text<'a>, Unread> {
        if is_plain(bytes) {
            // ASCII is UTF-8.
            return Ok(Text { bytes, plain: true });
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(Text {
                bytes,
                plain: false,
            }),
            Err(_) => Err(Unread),
        }
    }

    /// The text as a `str` (for lookups, rarely needed per event).
    pub fn as_str(self) -> &'a str {
        // Checked when read: the fallback is never taken.
        std::str::from_utf8(self.bytes).unwrap_or_default()
    }

    /// Whether it is `text`.
    #[inline]
    pub fn is(self, text: &str) -> bool {
        self.bytes == text.as_bytes()
    }

    /// Whether it is the empty string.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.bytes.is_empty()
    }

    /// Appends it as a JSON string literal (serde_json's escaping).
    #[inline]
    pub fn write_json(self, out: &mut Vec<u8>) {
        if self.plain {
            out.push(b'"');
            out.extend_from_slice(self.bytes);
            out.push(b'"');
        } else {
            crate::json_string(out, self.as_str());
        }
    }
}

/// Whether `bytes` are printable ASCII other than `"` and `\`: the text
/// serde_json writes unchanged between quotes (it escapes only those two
/// and the control characters; DEL and non-ASCII pass as they are).
#[inline]
pub fn is_plain(bytes: &[u8]) -> bool {
    // No early exit: the loop vectorizes, and strings are short.
    let mut special = false;
    for &b in bytes {
        special |= !(0x20..0x80).contains(&b) | (b == b'"') | (b == b'\\');
    }
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_fields(bytes: &[u8]) -> Result<Vec<(u32, u64)>, Unread> {
        let mut fields = Message::root(bytes).fields()?;
        let mut seen = Vec::new();
        while let Some(field) = fields.next()? {
            let value = match field.wire {
                Wire::Varint(v) | Wire::Fixed64(v) => v,
                Wire::Fixed32(v) => u64::from(v),
                Wire::Bytes(b) => b.len() as u64,
                Wire::Group => u64::MAX,
            };
            seen.push((field.number, value));
        }
        Ok(seen)
    }

    #[test]
    fn varints_take_up_to_ten_bytes_and_no_more_than_64_bits() {
        let mut max = vec![0x08];
        max.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(all_fields(&max), Ok(vec![(1, u64::MAX)]));
        let mut over = max.clone();
        over[10] = 0x02;
        assert_eq!(all_fields(&over), Err(Unread));
        assert_eq!(all_fields(&[0x08, 0x80, 0x80]), Err(Unread));
        // Over-long but in range: prost takes it, so does the reader.
        assert_eq!(all_fields(&[0x08, 0x81, 0x00]), Ok(vec![(1, 1)]));
    }

    #[test]
    fn keys_are_refused_as_prost_refuses_them() {
        assert_eq!(all_fields(&[0x00]), Err(Unread), "field number 0");
        assert_eq!(all_fields(&[0x0e]), Err(Unread), "wire type 6");
        assert_eq!(all_fields(&[0x0f]), Err(Unread), "wire type 7");
        assert_eq!(all_fields(&[0x0c]), Err(Unread), "a stray end-group");
        // A key past 32 bits.
        assert_eq!(
            all_fields(&[0x80, 0x80, 0x80, 0x80, 0x10, 0x00]),
            Err(Unread)
        );
    }

    #[test]
    fn every_wire_type_is_read_or_skipped() {
        let message = [
            0x08, 0x96, 0x01, // 1: varint 150
            0x11, 1, 0, 0, 0, 0, 0, 0, 0, // 2: fixed64 1
            0x1a, 0x02, b'h', b'i', // 3: 2 bytes
            0x23, 0x08, 0x01, 0x2b, 0x2c, 0x24, // 4: a group holding a group
            0x2d, 7, 0, 0, 0, // 5: fixed32 7
        ];
        assert_eq!(
            all_fields(&message),
            Ok(vec![(1, 150), (2, 1), (3, 2), (4, u64::MAX), (5, 7)])
        );
    }

    #[test]
    fn a_group_must_end_with_its_own_number() {
        assert_eq!(all_fields(&[0x23, 0x2c]), Err(Unread));
        assert_eq!(all_fields(&[0x23, 0x08, 0x01]), Err(Unread), "unterminated");
    }

    #[test]
    fn a_field_past_the_end_of_its_message_is_refused() {
        assert_eq!(all_fields(&[0x0a, 0x05, 1, 2]), Err(Unread));
        assert_eq!(all_fields(&[0x0d, 1, 2, 3]), Err(Unread));
    }

    #[test]
    fn strings_must_be_utf8_and_plain_ones_need_no_escape() {
        assert!(Text::read(b"\xff").is_err());
        for text in ["plain text", "é", "a\"b", "tab\t", "\u{7f}", ""] {
            let (mut ours, mut serde) = (Vec::new(), Vec::new());
            Text::read(text.as_bytes()).unwrap().write_json(&mut ours);
            crate::json_string(&mut serde, text);
            assert_eq!(ours, serde, "{text:?}");
        }
        assert!(is_plain(b"service.name ~!"));
        assert!(!is_plain(b"a\\b") && !is_plain(b"\x1f") && !is_plain("é".as_bytes()));
    }

    #[test]
    fn the_nesting_budget_runs_out_one_level_per_message() {
        let mut message = Message::root(&[0x0a, 0x00]);
        for _ in 0..RECURSION_LIMIT {
            let mut fields = message.fields().unwrap();
            message = fields.next().unwrap().unwrap().message().unwrap();
            // Every level reuses the same bytes: one empty field 1.
            message.bytes = &[0x0a, 0x00];
        }
        assert_eq!(message.fields().err(), Some(Unread));
    }
}
