//! Document templates (format version 2): the stored document text with
//! every value that a column of the same row holds byte for byte cut out
//! and replaced by a marker naming the column, so each document is stored
//! once. A marker is the byte 0x01, the column's root index in decimal,
//! and the byte 0x02: JSON text never holds raw control bytes (inside
//! strings they must be escaped, outside only space, tab, CR and LF may
//! appear), so a marker cannot be confused with content.
//!
//! Writing ([`build`], from `write`) substitutes a value only where the
//! document's raw slice equals the text the column renders for the row
//! (`write::render_row_value`); reading ([`expand`], from `exec`'s
//! `Render`, the same texts from the read columns) puts them back. The
//! writer checks that every template it builds expands to its document
//! (its cuts are disjoint and the document holds no marker byte; debug
//! builds expand it and compare), and stores the whole document, without
//! markers, where that fails, so reading gives the exact stored bytes: big
//! integers, `-0`, escapes, member order.

/// First byte of a marker.
pub(super) const MARK_START: u8 = 0x01;
/// Last byte of a marker.
pub(super) const MARK_END: u8 = 0x02;

/// Appends to `out` the template of `doc` with `cuts` replaced by markers.
/// `cuts` are `(start, end, column)` byte ranges of `doc`, sorted by start
/// and disjoint (the writer's spans are distinct JSON values).
pub(super) fn build(doc: &str, cuts: &[(usize, usize, usize)], out: &mut String) {
    let mut at = 0;
    for &(start, end, column) in cuts {
        debug_assert!(at <= start && start <= end && end <= doc.len());
        out.push_str(&doc[at..start]);
        out.push(char::from(MARK_START));
        push_decimal(column, out);
        out.push(char::from(MARK_END));
        at = end;
    }
    out.push_str(&doc[at..]);
}

/// Appends to `out` the document of `template`, with each marker replaced
/// by what `value(column, out)` appends. Errors: a marker that is not
/// closed or names no number, or `value`'s own.
pub(super) fn expand<F>(template: &str, out: &mut String, mut value: F) -> Result<(), String>
where
    F: FnMut(usize, &mut String) -> Result<(), String>,
{
    // `str::find` of a char searches with memchr: the text between markers
    // is most of a template, and every document read (and written) is
    // scanned here.
    let mut at = 0;
    while let Some(offset) = template[at..].find(char::from(MARK_START)) {
        let start = at + offset;
        out.push_str(&template[at..start]);
        let digits_at = start + 1;
        let end = template[digits_at..]
            .find(char::from(MARK_END))
            .map(|n| digits_at + n)
            .ok_or_else(|| "a template marker is not closed".to_owned())?;
        let column: usize = template[digits_at..end]
            .parse()
            .map_err(|_| "a template marker names no column".to_owned())?;
        value(column, out)?;
        at = end + 1;
    }
    out.push_str(&template[at..]);
    Ok(())
}

/// Calls `f` with the column of each well-formed marker of `template`
/// (a malformed one is [`expand`]'s to report).
pub(super) fn for_each_marker(template: &str, mut f: impl FnMut(usize)) {
    let mut rest = template.as_bytes();
    while let Some(start) = rest.iter().position(|&b| b == MARK_START) {
        rest = &rest[start + 1..];
        let Some(end) = rest.iter().position(|&b| b == MARK_END) else {
            return;
        };
        let column = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|digits| digits.parse().ok());
        if let Some(column) = column {
            f(column);
        }
        rest = &rest[end + 1..];
    }
}

/// Appends `n` in decimal, without allocating (a marker per cut value).
fn push_decimal(n: usize, out: &mut String) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        // `rest % 10` is a digit.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// Appends `text` as a JSON string (serde_json's escaping: the text the
/// event builder writes for `type` and `app`).
pub(super) fn push_json_string(text: &str, out: &mut String) {
    // serde_json escapes only `"`, `\` and control characters: a text
    // without them is written as it is, quoted (nearly every type and app).
    let plain = !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    if plain {
        push_quoted(text, out);
        return;
    }
    // Serializing a `&str` into a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(text) {
        out.push_str(&quoted);
    }
}

/// Appends `"<text>"` (an id's hex or an RFC 3339 time: no escapes).
pub(super) fn push_quoted(text: &str, out: &mut String) {
    out.push('"');
    out.push_str(text);
    out.push('"');
}
