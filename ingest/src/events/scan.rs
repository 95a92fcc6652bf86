//! Structural scan: where one JSON value ends and how deep it nests.
//!
//! serde_json can validate a slice but cannot tell us where an array element
//! starts and ends, and its `IgnoredAny` fast path cannot count depth. This
//! scanner does only that: it follows strings (with escapes) and brackets,
//! and nothing else. It does not validate — every slice it delimits is
//! parsed by serde_json afterwards, and the bytes between slices are checked
//! by the caller — so the two together validate the whole body.
//!
//! No recursion (depth is a counter), so no input can exhaust the stack.

/// Where a value ends, and the deepest nesting of brackets inside it
/// (`{}` is 1, `{"a":[1]}` is 2, a scalar is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    /// Index just past the value.
    pub end: usize,
    /// Deepest bracket nesting seen.
    pub max_depth: usize,
}

/// Why no value extent could be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScanError {
    /// Input ended inside a string or before the brackets closed.
    Unterminated,
    /// No value starts here (a delimiter or the end of input).
    NoValue,
}

/// JSON's insignificant whitespace (RFC 8259 §2).
pub(super) fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Index of the first non-whitespace byte at or after `at` (or `len`).
pub(super) fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).copied().is_some_and(is_json_whitespace) {
        at += 1;
    }
    at
}

/// `bytes` without leading and trailing JSON whitespace, and the offset of
/// the first kept byte.
pub(super) fn trim_whitespace(bytes: &[u8]) -> (usize, &[u8]) {
    let start = skip_whitespace(bytes, 0);
    let mut end = bytes.len();
    while end > start && bytes.get(end - 1).copied().is_some_and(is_json_whitespace) {
        end -= 1;
    }
    (start, bytes.get(start..end).unwrap_or_default())
}

/// The extent of the value starting at `start` (which must not be
/// whitespace).
pub(super) fn value_extent(bytes: &[u8], start: usize) -> Result<Extent, ScanError> {
    match bytes.get(start).copied() {
        None => Err(ScanError::NoValue),
        Some(b'{' | b'[') => container_extent(bytes, start),
        Some(b'"') => string_end(bytes, start + 1).map(|end| Extent { end, max_depth: 0 }),
        Some(_) => scalar_extent(bytes, start),
    }
}

fn container_extent(bytes: &[u8], start: usize) -> Result<Extent, ScanError> {
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let mut at = start;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                at = string_end(bytes, at + 1)?;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b'}' | b']' => {
                // `depth` is at least 1 here: we start on an opening bracket
                // and return as soon as it drops back to 0.
                depth -= 1;
                if depth == 0 {
                    return Ok(Extent {
                        end: at + 1,
                        max_depth,
                    });
                }
            }
            _ => {}
        }
        at += 1;
    }
    Err(ScanError::Unterminated)
}

/// Index just past the closing quote of a string whose content starts at
/// `at`.
fn string_end(bytes: &[u8], mut at: usize) -> Result<usize, ScanError> {
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => return Ok(at + 1),
            // The escaped byte can never close the string; whether the
            // escape is valid is serde_json's business.
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    Err(ScanError::Unterminated)
}

/// A number or literal: runs until a delimiter.
fn scalar_extent(bytes: &[u8], start: usize) -> Result<Extent, ScanError> {
    let mut end = start;
    while let Some(&byte) = bytes.get(end) {
        if is_json_whitespace(byte) || matches!(byte, b',' | b']' | b'}' | b'[' | b'{' | b'"') {
            break;
        }
        end += 1;
    }
    if end == start {
        return Err(ScanError::NoValue);
    }
    Ok(Extent { end, max_depth: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_extent_skips_brackets_and_quotes_inside_strings() {
        let text = br#"{"a":"]}\"{","b":[1,{"c":[]}]} tail"#;
        let extent = value_extent(text, 0).expect("complete object");
        assert_eq!(&text[..extent.end], br#"{"a":"]}\"{","b":[1,{"c":[]}]}"#);
        assert_eq!(extent.max_depth, 4);
    }

    #[test]
    fn scalars_and_strings_end_at_their_delimiter() {
        assert_eq!(value_extent(b"123,4", 0).map(|e| e.end), Ok(3));
        assert_eq!(value_extent(br#""x\"y" ,"#, 0).map(|e| e.end), Ok(6));
        assert_eq!(value_extent(b"]", 0), Err(ScanError::NoValue));
        assert_eq!(value_extent(b"", 0), Err(ScanError::NoValue));
    }

    #[test]
    fn unterminated_values_are_reported_not_guessed() {
        assert_eq!(
            value_extent(br#"{"a":[1}"#, 0),
            Err(ScanError::Unterminated)
        );
        assert_eq!(value_extent(br#""abc\"#, 0), Err(ScanError::Unterminated));
        assert_eq!(value_extent(br#"{"a":"\"#, 0), Err(ScanError::Unterminated));
    }

    #[test]
    fn trim_reports_the_offset_of_the_kept_bytes() {
        assert_eq!(trim_whitespace(b" \t{}\r\n"), (2, &b"{}"[..]));
        assert_eq!(trim_whitespace(b"   "), (3, &b""[..]));
    }
}
