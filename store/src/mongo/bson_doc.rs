//! JSON text → BSON for the MongoDB sink (DESIGN §5).
//!
//! The converter scans the stored event's JSON text itself instead of going
//! through `serde_json::Value`, for two reasons:
//! - numbers keep their exact value: `serde_json` (without
//!   `arbitrary_precision`) turns an integer beyond `u64` into a lossy
//!   `f64` before we could see its digits;
//! - no intermediate tree: members go straight into a [`RawDocumentBuf`],
//!   the driver's wire form.
//!
//! Mapping: `_id` → ObjectId (first member), `ts`/`recv` → BSON dates from
//! the [`EventDoc`] columns, every other member as sent. Numbers map to the
//! narrowest BSON type that holds the written value exactly: integers as
//! `Int32`, `Int64`, then `Decimal128` (an integer stays an integer);
//! other numbers as `Double` when the `f64` printed back (at the written
//! precision, or in its shortest form) spells the written decimal, else
//! `Decimal128` (34 significant digits, a far wider exponent range than
//! `f64`). Only a number even `Decimal128` cannot hold exactly (more than
//! 34 significant digits) is stored as the nearest `Decimal128` or double;
//! nothing here panics on any input.

use std::borrow::Cow;

use bson::oid::ObjectId as BsonObjectId;
use bson::raw::{CStr, RawArrayBuf, RawDocumentBuf};
use bson::{DateTime, Decimal128};

use crate::model::{EventDoc, FIELD_ID, FIELD_RECV, FIELD_TS};

/// MongoDB refuses documents nested deeper than this (BSON depth limit of
/// the server); refusing it here gives a clearer dead-letter reason.
pub const MONGODB_MAX_NESTING_DEPTH: usize = 100;

/// Why an event cannot become a BSON document. The event goes to dead
/// letters with this as the reason; the conversion never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToBsonError {
    /// The stored text is not the JSON object the collector writes.
    #[error("stored event is not valid JSON at byte {offset}: {what}")]
    Syntax {
        /// Byte offset in the stored text.
        offset: usize,
        /// What was expected.
        what: &'static str,
    },
    /// A member name BSON cannot carry (it contains a NUL byte).
    #[error("member name at byte {offset} contains a NUL byte, which BSON keys cannot hold")]
    NulInKey {
        /// Byte offset of the name.
        offset: usize,
    },
    /// Nested deeper than MongoDB accepts.
    #[error("event nests objects/arrays deeper than MongoDB's {MONGODB_MAX_NESTING_DEPTH} levels")]
    TooDeep,
}

/// Converts one stored event into the document the MongoDB sink inserts.
pub fn event_to_bson(event: &EventDoc) -> Result<RawDocumentBuf, ToBsonError> {
    let mut scanner = Scanner {
        text: event.doc.as_bytes(),
        pos: 0,
    };
    let mut out = RawDocumentBuf::new();
    out.append(
        cstr(FIELD_ID),
        BsonObjectId::from_bytes(*event.id.as_bytes()),
    );
    scanner.skip_ws();
    scanner.expect(b'{', "an object")?;
    scanner.skip_ws();
    if scanner.peek() == Some(b'}') {
        scanner.pos += 1;
        return scanner.finish(out);
    }
    loop {
        scanner.skip_ws();
        let key_offset = scanner.pos;
        let key = scanner.string()?;
        scanner.skip_ws();
        scanner.expect(b':', "`:`")?;
        scanner.skip_ws();
        match key.as_ref() {
            FIELD_ID => scanner.skip_value(1)?,
            FIELD_TS => {
                scanner.skip_value(1)?;
                out.append(cstr(FIELD_TS), DateTime::from_millis(event.ts_ms));
            }
            FIELD_RECV => {
                scanner.skip_value(1)?;
                out.append(cstr(FIELD_RECV), DateTime::from_millis(event.recv_ms));
            }
            _ => {
                let key = bson_key(&key, key_offset)?;
                scanner.value_into_doc(&mut out, key, 1)?;
            }
        }
        scanner.skip_ws();
        match scanner.next_byte() {
            Some(b',') => continue,
            Some(b'}') => return scanner.finish(out),
            _ => return Err(scanner.syntax("`,` or `}`")),
        }
    }
}

fn cstr(name: &'static str) -> &'static CStr {
    // The envelope names are plain ASCII without NUL.
    match <&CStr>::try_from(name) {
        Ok(c) => c,
        Err(_) => unreachable!("envelope field names contain no NUL"),
    }
}

fn bson_key(key: &str, offset: usize) -> Result<&CStr, ToBsonError> {
    <&CStr>::try_from(key).map_err(|_| ToBsonError::NulInKey { offset })
}

/// The BSON value of one JSON scalar or container, before it is appended.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Int32(i32),
    Int64(i64),
    Double(f64),
    Decimal(Decimal128),
    String(Cow<'a, str>),
}

struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn finish(mut self, out: RawDocumentBuf) -> Result<RawDocumentBuf, ToBsonError> {
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(self.syntax("the end of the event"));
        }
        Ok(out)
    }

    fn syntax(&self, what: &'static str) -> ToBsonError {
        ToBsonError::Syntax {
            offset: self.pos,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), ToBsonError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(what))
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), ToBsonError> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.syntax("a JSON value"))
        }
    }

    /// Appends the value at the cursor to `out` under `key`.
    fn value_into_doc(
        &mut self,
        out: &mut RawDocumentBuf,
        key: &CStr,
        depth: usize,
    ) -> Result<(), ToBsonError> {
        match self.peek() {
            Some(b'{') => out.append(key, self.object(depth + 1)?),
            Some(b'[') => out.append(key, self.array(depth + 1)?),
            _ => match self.scalar()? {
                Scalar::Null => out.append(key, bson::RawBsonRef::Null),
                Scalar::Bool(b) => out.append(key, b),
                Scalar::Int32(i) => out.append(key, i),
                Scalar::Int64(i) => out.append(key, i),
                Scalar::Double(f) => out.append(key, f),
                Scalar::Decimal(d) => out.append(key, d),
                Scalar::String(s) => out.append(key, s.as_ref()),
            },
        }
        Ok(())
    }

    fn value_into_array(&mut self, out: &mut RawArrayBuf, depth: usize) -> Result<(), ToBsonError> {
        match self.peek() {
            Some(b'{') => out.push(self.object(depth + 1)?),
            Some(b'[') => out.push(self.array(depth + 1)?),
            _ => match self.scalar()? {
                Scalar::Null => out.push(bson::RawBsonRef::Null),
                Scalar::Bool(b) => out.push(b),
                Scalar::Int32(i) => out.push(i),
                Scalar::Int64(i) => out.push(i),
                Scalar::Double(f) => out.push(f),
                Scalar::Decimal(d) => out.push(d),
                Scalar::String(s) => out.push(s.as_ref()),
            },
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<RawDocumentBuf, ToBsonError> {
        if depth > MONGODB_MAX_NESTING_DEPTH {
            return Err(ToBsonError::TooDeep);
        }
        self.expect(b'{', "`{`")?;
        let mut out = RawDocumentBuf::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            self.skip_ws();
            let key_offset = self.pos;
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':', "`:`")?;
            self.skip_ws();
            self.value_into_doc(&mut out, bson_key(&key, key_offset)?, depth)?;
            self.skip_ws();
            match self.next_byte() {
                Some(b',') => continue,
                Some(b'}') => return Ok(out),
                _ => return Err(self.syntax("`,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<RawArrayBuf, ToBsonError> {
        if depth > MONGODB_MAX_NESTING_DEPTH {
            return Err(ToBsonError::TooDeep);
        }
        self.expect(b'[', "`[`")?;
        let mut out = RawArrayBuf::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(out);
        }
        loop {
            self.skip_ws();
            self.value_into_array(&mut out, depth)?;
            self.skip_ws();
            match self.next_byte() {
                Some(b',') => continue,
                Some(b']') => return Ok(out),
                _ => return Err(self.syntax("`,` or `]`")),
            }
        }
    }

    /// Skips one value (the envelope members whose BSON comes from the
    /// columns), checking its syntax and depth all the same.
    fn skip_value(&mut self, depth: usize) -> Result<(), ToBsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1).map(drop),
            Some(b'[') => self.array(depth + 1).map(drop),
            _ => self.scalar().map(drop),
        }
    }

    fn scalar(&mut self) -> Result<Scalar<'a>, ToBsonError> {
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::String),
            Some(b'n') => self.literal(b"null").map(|()| Scalar::Null),
            Some(b't') => self.literal(b"true").map(|()| Scalar::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| Scalar::Bool(false)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax("a JSON value")),
        }
    }

    fn number(&mut self) -> Result<Scalar<'a>, ToBsonError> {
        let start = self.pos;
        let mut integral = true;
        while let Some(b) = self.peek() {
            match b {
                b'0'..=b'9' | b'-' | b'+' => {}
                b'.' | b'e' | b'E' => integral = false,
                _ => break,
            }
            self.pos += 1;
        }
        // Every byte consumed is ASCII.
        let text =
            std::str::from_utf8(&self.text[start..self.pos]).map_err(|_| ToBsonError::Syntax {
                offset: start,
                what: "a number",
            })?;
        number_to_scalar(text, integral).ok_or(ToBsonError::Syntax {
            offset: start,
            what: "a number",
        })
    }

    /// A string's contents: borrowed from the text when it has no escape
    /// (the common case), decoded otherwise.
    fn string(&mut self) -> Result<Cow<'a, str>, ToBsonError> {
        self.expect(b'"', "a string")?;
        let text: &'a [u8] = self.text;
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            self.pos += 1;
        }
        if self.peek() == Some(b'"') {
            let run = &text[start..self.pos];
            self.pos += 1;
            return Ok(utf8(run));
        }
        let mut out = text[start..self.pos].to_vec();
        loop {
            match self.next_byte() {
                Some(b'"') => break,
                Some(b'\\') => self.escape(&mut out)?,
                _ => return Err(self.syntax("a closing `\"`")),
            }
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.extend_from_slice(&text[run_start..self.pos]);
        }
        Ok(Cow::Owned(utf8(&out).into_owned()))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ToBsonError> {
        let c = match self.next_byte() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => self.unicode_escape()?,
            _ => return Err(self.syntax("a string escape")),
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, ToBsonError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.syntax("four hex digits"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.syntax("four hex digits"))?;
        let value = u32::from_str_radix(text, 16).map_err(|_| self.syntax("four hex digits"))?;
        self.pos += 4;
        Ok(value)
    }

    /// `\uXXXX`, pairing surrogates; a lone surrogate becomes U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, ToBsonError> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.text[self.pos..].starts_with(b"\\u") {
            let save = self.pos;
            self.pos += 2;
            let second = self.hex4()?;
            if (0xDC00..0xE000).contains(&second) {
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            self.pos = save;
        }
        Ok(char::from_u32(first).unwrap_or(char::REPLACEMENT_CHARACTER))
    }
}

/// Invalid UTF-8 cannot come from the collector (it validates), but a
/// damaged store row must not panic: replace it.
fn utf8(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The narrowest exact BSON number for a JSON number's text; `None` if the
/// text is not a number at all.
fn number_to_scalar(text: &str, integral: bool) -> Option<Scalar<'static>> {
    if integral {
        if let Ok(i) = text.parse::<i64>() {
            return Some(match i32::try_from(i) {
                Ok(small) => Scalar::Int32(small),
                Err(_) => Scalar::Int64(i),
            });
        }
    }
    if integral && significant_digits(text) <= DECIMAL128_DIGITS {
        // An integer beyond Int64 stays an integer value: Decimal128 holds
        // it exactly (a double might too, but would make it a float).
        if let Ok(d) = text.parse::<Decimal128>() {
            return Some(Scalar::Decimal(d));
        }
    }
    let double: f64 = text.parse().ok()?;
    if double.is_finite() && same_decimal(text, double) {
        return Some(Scalar::Double(double));
    }
    match text.parse::<Decimal128>() {
        Ok(d) => Some(Scalar::Decimal(d)),
        // Beyond even Decimal128's exponent range: the nearest double
        // (possibly ±infinity or 0) is the best that BSON can hold.
        Err(_) => Some(Scalar::Double(double)),
    }
}

/// Significant digits Decimal128 holds exactly.
const DECIMAL128_DIGITS: usize = 34;

/// Digits of an integer literal, leading zeros and sign left out.
fn significant_digits(text: &str) -> usize {
    text.trim_start_matches(['-', '+', '0']).len()
}

/// Whether `double` gives back the decimal number `text` spells, printed
/// with as many significant digits as `text` has (correctly rounded) or in
/// Rust's shortest form. Both, because a double can have two shortest
/// forms (…481.2 and …481.3 read back as the same double) and formatters
/// (Rust's, ryu in serde_json) pick differently.
fn same_decimal(text: &str, double: f64) -> bool {
    let Some(written) = normalize_decimal(text) else {
        return false;
    };
    if written.1.is_empty() {
        return double == 0.0;
    }
    let printed = format!("{:.*e}", written.1.len() - 1, double);
    let shortest = format!("{double:e}");
    normalize_decimal(&printed).as_ref() == Some(&written)
        || normalize_decimal(&shortest) == Some(written)
}

/// (negative, significant digits without leading/trailing zeros, decimal
/// exponent of the last digit). Zero is `(false, "", 0)` whatever its sign
/// or spelling.
fn normalize_decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let mut exponent = exponent.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
    let trimmed_len = digits.trim_end_matches('0').len();
    exponent = exponent.checked_add(i64::try_from(digits.len() - trimmed_len).ok()?)?;
    digits.truncate(trimmed_len);
    let digits = digits.trim_start_matches('0').to_owned();
    if digits.is_empty() {
        return Some((false, digits, 0));
    }
    Some((negative, digits, exponent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> &'static str {
        let integral = !text.contains(['.', 'e', 'E']);
        match number_to_scalar(text, integral) {
            Some(Scalar::Int32(_)) => "int32",
            Some(Scalar::Int64(_)) => "int64",
            Some(Scalar::Double(_)) => "double",
            Some(Scalar::Decimal(_)) => "decimal",
            Some(_) => "other",
            None => "none",
        }
    }

    #[test]
    fn integers_take_the_narrowest_integer_type() {
        assert_eq!(kind("0"), "int32");
        assert_eq!(kind("-2147483648"), "int32");
        assert_eq!(kind("2147483648"), "int64");
        assert_eq!(kind("-9223372036854775808"), "int64");
    }

    #[test]
    fn integers_beyond_int64_become_exact_decimals() {
        assert_eq!(kind("9223372036854775808"), "decimal");
        assert_eq!(kind("123456789012345678901234567890"), "decimal");
    }

    #[test]
    fn decimals_a_double_spells_exactly_stay_doubles() {
        for text in ["0.5", "1.5e-7", "-2.25", "0.1", "1e3", "12.0", "-0.0"] {
            assert_eq!(kind(text), "double", "{text}");
        }
    }

    #[test]
    fn decimals_a_double_cannot_spell_become_decimal128() {
        for text in [
            "0.1000000000000000000001",
            "1e400",
            "1e-400",
            "3.14159265358979323846",
        ] {
            assert_eq!(kind(text), "decimal", "{text}");
        }
    }

    #[test]
    fn numbers_beyond_decimal128_never_panic() {
        assert!(number_to_scalar("1e99999999999", false).is_some());
        assert!(number_to_scalar(&"9".repeat(5000), true).is_some());
    }

    #[test]
    fn a_double_with_two_shortest_forms_stays_a_double() {
        // Rust's `{:e}` prints this double as …813e14, serde_json (ryu) as
        // …481.2: both read back as the same double.
        assert_eq!(kind("-814987616986481.2"), "double");
        assert_eq!(kind("-8.149876169864813e14"), "double");
    }

    #[test]
    fn normalized_decimals_ignore_spelling() {
        assert_eq!(normalize_decimal("1.50e2"), normalize_decimal("150"));
        assert_eq!(normalize_decimal("0.000"), normalize_decimal("0"));
        assert_ne!(normalize_decimal("-1"), normalize_decimal("1"));
    }
}
