//! Loki's stream selector text, as protobuf pushes carry a stream's labels:
//! `{job="api", env="prod"}`.
//!
//! The grammar is the equality part of LogQL's stream selector, which is
//! what Loki's `syntax.ParseLabels` accepts on the push path:
//!
//! ```text
//! selector := ws "{" ws [ pair { ws "," ws pair } ] ws "}" ws
//! pair     := name ws "=" ws value
//! name     := [A-Za-z_][A-Za-z0-9_]*
//! value    := '"' Go-escaped text '"'  |  '`' raw text '`'
//! ```
//!
//! Double-quoted values take Go's escapes (`strconv.Unquote`): `\a \b \f
//! \n \r \t \v \\ \"`, `\xHH`, octal `\OOO`, `\uHHHH`, `\UHHHHHHHH`; the
//! unescaped text must be UTF-8. Anything else (another matcher such as
//! `!=` or `=~`, a duplicate name, no label at all, text after `}`) is
//! refused with the position and what was expected, never guessed at.

use std::borrow::Cow;

/// One `name="value"` pair; borrowed when the value has no escapes.
pub(super) type Label<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Parses a selector into its pairs, in the order written.
pub(super) fn parse(text: &str) -> Result<Vec<Label<'_>>, String> {
    let mut parser = Parser { text, pos: 0 };
    let labels = parser.selector()?;
    Ok(labels)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn selector(&mut self) -> Result<Vec<Label<'a>>, String> {
        self.skip_ws();
        self.expect(b'{')?;
        let mut labels = Vec::new();
        self.skip_ws();
        if self.peek() != Some(b'}') {
            loop {
                self.skip_ws();
                labels.push(self.pair()?);
                self.skip_ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => break,
                    _ => return Err(self.unexpected("`,` or `}`")),
                }
            }
        }
        self.expect(b'}')?;
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(self.unexpected("the end of the selector"));
        }
        Ok(labels)
    }

    fn pair(&mut self) -> Result<Label<'a>, String> {
        let name = self.name()?;
        self.skip_ws();
        self.expect(b'=')?;
        if matches!(self.peek(), Some(b'~')) {
            return Err(format!(
                "only `=` matchers name a stream's labels, found `=~` at offset {}",
                self.pos - 1
            ));
        }
        self.skip_ws();
        let value = self.value()?;
        Ok((Cow::Borrowed(name), value))
    }

    fn name(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            let ok =
                b == b'_' || b.is_ascii_alphabetic() || (self.pos > start && b.is_ascii_digit());
            if !ok {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected("a label name"));
        }
        Ok(&self.text[start..self.pos])
    }

    fn value(&mut self) -> Result<Cow<'a, str>, String> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'`') => self.raw(),
            _ => Err(self.unexpected("a quoted label value")),
        }
    }

    /// A `` `raw` `` value: everything up to the next backquote.
    fn raw(&mut self) -> Result<Cow<'a, str>, String> {
        let start = self.pos + 1;
        match self.text[start..].find('`') {
            Some(len) => {
                self.pos = start + len + 1;
                Ok(Cow::Borrowed(&self.text[start..start + len]))
            }
            None => Err(format!("unterminated raw string at offset {}", self.pos)),
        }
    }

    /// A `"quoted"` value with Go's escapes.
    fn quoted(&mut self) -> Result<Cow<'a, str>, String> {
        let open = self.pos;
        let start = self.pos + 1;
        let bytes = self.text.as_bytes();
        // The common case: no escape, borrow the text as it is.
        let mut i = start;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(Cow::Borrowed(&self.text[start..i]));
                }
                b'\\' => break,
                b'\n' => return Err(format!("newline in string at offset {i}")),
                _ => i += 1,
            }
        }
        let mut out: Vec<u8> = bytes[start..i].to_vec();
        loop {
            let Some(&b) = bytes.get(i) else {
                return Err(format!("unterminated string at offset {open}"));
            };
            match b {
                b'"' => break,
                b'\n' => return Err(format!("newline in string at offset {i}")),
                b'\\' => i = unescape(bytes, i, &mut out)?,
                _ => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        String::from_utf8(out)
            .map(Cow::Owned)
            .map_err(|_| format!("label value at offset {open} is not UTF-8 once unescaped"))
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("`{}`", char::from(byte))))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, expected: &str) -> String {
        match self.text[self.pos..].chars().next() {
            Some(c) => format!(
                "unexpected {c:?} at offset {}, expected {expected}",
                self.pos
            ),
            None => format!("unexpected end of selector, expected {expected}"),
        }
    }
}

/// Decodes the escape at `bytes[at]` (a backslash) into `out`; returns the
/// position after it.
fn unescape(bytes: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, String> {
    let bad = || format!("invalid escape at offset {at}");
    let kind = *bytes.get(at + 1).ok_or_else(bad)?;
    let simple = match kind {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'"' => Some(b'"'),
        _ => None,
    };
    if let Some(byte) = simple {
        out.push(byte);
        return Ok(at + 2);
    }
    match kind {
        b'x' => {
            let byte = hex_digits(bytes, at + 2, 2).ok_or_else(bad)?;
            out.push(byte as u8);
            Ok(at + 4)
        }
        b'0'..=b'7' => {
            let digits = bytes.get(at + 1..at + 4).ok_or_else(bad)?;
            let mut value: u32 = 0;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return Err(bad());
                }
                value = value * 8 + u32::from(d - b'0');
            }
            // Go refuses octal escapes past one byte.
            let byte = u8::try_from(value).map_err(|_| bad())?;
            out.push(byte);
            Ok(at + 4)
        }
        b'u' | b'U' => {
            let len = if kind == b'u' { 4 } else { 8 };
            let code = hex_digits(bytes, at + 2, len).ok_or_else(bad)?;
            let c = char::from_u32(code).ok_or_else(bad)?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            Ok(at + 2 + len)
        }
        _ => Err(bad()),
    }
}

/// The value of `len` hex digits at `bytes[from..]`.
fn hex_digits(bytes: &[u8], from: usize, len: usize) -> Option<u32> {
    let digits = bytes.get(from..from + len)?;
    let mut value: u32 = 0;
    for &d in digits {
        value = value * 16 + char::from(d).to_digit(16)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pairs_come_back_in_the_order_written() {
        assert_eq!(
            pairs(r#"{job="api", env="prod"}"#),
            owned(&[("job", "api"), ("env", "prod")])
        );
        assert_eq!(
            pairs(r#" { level="info",job="x" } "#),
            owned(&[("level", "info"), ("job", "x")])
        );
    }

    #[test]
    fn values_without_escapes_are_borrowed() {
        let labels = parse(r#"{job="api"}"#).unwrap();
        assert!(matches!(labels[0].1, Cow::Borrowed("api")));
    }

    #[test]
    fn go_escapes_are_decoded() {
        assert_eq!(
            pairs(r#"{a="say \"hi\"\n", b="back\\slash\t", c="\x41\101\u00e9\U0001F600"}"#),
            owned(&[
                ("a", "say \"hi\"\n"),
                ("b", "back\\slash\t"),
                ("c", "AAé\u{1F600}")
            ])
        );
    }

    #[test]
    fn raw_strings_take_their_text_verbatim() {
        assert_eq!(
            pairs(r#"{a=`C:\dir "x"`}"#),
            owned(&[("a", r#"C:\dir "x""#)])
        );
    }

    #[test]
    fn an_empty_selector_has_no_labels() {
        assert_eq!(pairs("{}"), owned(&[]));
    }

    #[test]
    fn malformed_selectors_are_refused_with_the_place() {
        for (text, expected) in [
            ("", "unexpected end of selector, expected `{`"),
            ("job=\"a\"", "unexpected 'j' at offset 0, expected `{`"),
            (
                "{job=\"a\"",
                "unexpected end of selector, expected `,` or `}`",
            ),
            (
                "{job=\"a\"} x",
                "unexpected 'x' at offset 10, expected the end",
            ),
            (
                "{job=a}",
                "unexpected 'a' at offset 5, expected a quoted label value",
            ),
            ("{job!=\"a\"}", "unexpected '!' at offset 4, expected `=`"),
            ("{job=~\"a\"}", "only `=` matchers"),
            (
                "{1job=\"a\"}",
                "unexpected '1' at offset 1, expected a label name",
            ),
            (
                "{job=\"a\",}",
                "unexpected '}' at offset 9, expected a label name",
            ),
            ("{job=\"a}", "unterminated string at offset 5"),
            ("{job=\"a\\q\"}", "invalid escape at offset 7"),
            ("{job=\"\\400\"}", "invalid escape at offset 6"),
            ("{job=\"\\xff\"}", "is not UTF-8 once unescaped"),
            ("{job=\"\\uD800\"}", "invalid escape at offset 6"),
            ("{job=\"a\nb\"}", "newline in string at offset 7"),
            ("{job=`abc}", "unterminated raw string at offset 5"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(
                error.contains(expected),
                "{text:?}: {error:?} should contain {expected:?}"
            );
        }
    }
}
