//! RFC 5424 STRUCTURED-DATA: parsed into a flat list of parameters,
//! written as `{"SD-ID": {"name": "value" | ["v1", "v2"], …}, …}`.

use std::borrow::Cow;

use super::message::text_of;
use crate::json_string;

/// One parameter of an SD-ELEMENT, or an element without parameters
/// (`name: None`), so that `[origin]` still shows up as `"origin":{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdEntry<'a> {
    /// SD-ID.
    pub id: &'a str,
    /// PARAM-NAME.
    pub name: Option<&'a str>,
    /// PARAM-VALUE as sent, escapes included.
    pub value: &'a [u8],
}

/// Whether `b` may appear in an SD-NAME: printable US-ASCII except `=`,
/// space, `]` and `"` (RFC 5424 §6.3).
fn is_name_byte(b: u8) -> bool {
    matches!(b, b'!'..=b'~') && !matches!(b, b'=' | b']' | b'"')
}

/// An SD-NAME at the start of `bytes` and the rest. RFC 5424 caps names
/// at 32 characters; longer ones are taken (enterprise IDs grow), the
/// message size bounds them.
fn split_name(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let len = bytes.iter().take_while(|&&b| is_name_byte(b)).count();
    if len == 0 {
        return None;
    }
    // Printable ASCII is UTF-8.
    let name = std::str::from_utf8(&bytes[..len]).ok()?;
    Some((name, &bytes[len..]))
}

/// A quoted PARAM-VALUE at the start of `bytes` (after the opening `"`):
/// the value as sent and the rest after the closing `"`. A backslash
/// escapes the byte after it, so `\"` does not close the value; an
/// unescaped `]`, which RFC 5424 forbids, is taken as rsyslog does.
fn split_value(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some((&bytes[..i], &bytes[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Parses one or more SD-ELEMENTs at the start of `bytes` into `entries`
/// (appended in the order sent) and returns the rest, or `None` when they
/// are malformed (the message is then kept unparsed).
pub fn parse<'a>(mut bytes: &'a [u8], entries: &mut Vec<SdEntry<'a>>) -> Option<&'a [u8]> {
    if bytes.first() != Some(&b'[') {
        return None;
    }
    while let Some(element) = bytes.strip_prefix(b"[") {
        let (id, mut rest) = split_name(element)?;
        let mut has_params = false;
        loop {
            match rest.first()? {
                b']' => {
                    rest = &rest[1..];
                    break;
                }
                b' ' => {
                    let (name, after) = split_name(&rest[1..])?;
                    let quoted = after.strip_prefix(b"=\"")?;
                    let (value, after) = split_value(quoted)?;
                    entries.push(SdEntry {
                        id,
                        name: Some(name),
                        value,
                    });
                    has_params = true;
                    rest = after;
                }
                _ => return None,
            }
        }
        if !has_params {
            entries.push(SdEntry {
                id,
                name: None,
                value: b"",
            });
        }
        bytes = rest;
    }
    Some(bytes)
}

/// A PARAM-VALUE's text: `\"`, `\\` and `\]` unescaped; a backslash
/// before anything else is kept, as RFC 5424 §6.3.3 requires; invalid
/// UTF-8 becomes U+FFFD.
pub fn unescape(value: &[u8]) -> Cow<'_, str> {
    if !value.contains(&b'\\') {
        return text_of(value);
    }
    let mut text = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match (value[i], value.get(i + 1)) {
            (b'\\', Some(&next @ (b'"' | b'\\' | b']'))) => {
                text.push(next);
                i += 2;
            }
            (byte, _) => {
                text.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(text_of(&text).into_owned())
}

/// Appends the entries as one JSON object: one member per SD-ID, in the
/// order each ID first appears; an ID sent twice has its parameters
/// merged into one object; within it one member per parameter name, in
/// the order each name first appears, its value a string, or an array of
/// the values in the order sent when the name repeats.
pub fn write(entries: &[SdEntry<'_>], out: &mut Vec<u8>) {
    let order = grouped_as_sent(entries).unwrap_or_else(|| grouped_order(entries));
    write_ordered(entries, &order, out);
}

/// Most entries [`grouped_as_sent`] compares pairwise (quadratic, so only
/// for the few parameters messages usually carry).
const MAX_PAIRWISE_ENTRIES: usize = 16;

/// The grouped order without sorting, in the common case where it is the
/// order sent: each SD-ID's entries adjacent, no name repeated within an
/// ID. `None` otherwise (or for many entries).
fn grouped_as_sent(entries: &[SdEntry<'_>]) -> Option<Vec<Key>> {
    if entries.len() > MAX_PAIRWISE_ENTRIES {
        return None;
    }
    let mut keys = Vec::with_capacity(entries.len());
    let mut run_start = 0;
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 && entries[index - 1].id != entry.id {
            run_start = index;
            if entries[..run_start].iter().any(|e| e.id == entry.id) {
                return None;
            }
        }
        if entries[run_start..index]
            .iter()
            .any(|e| e.name == entry.name)
        {
            return None;
        }
        keys.push(Key {
            id_first: run_start,
            name_first: index,
            index,
        });
    }
    Some(keys)
}

/// Writes the entries in `order` (grouped: see [`grouped_order`]).
fn write_ordered(entries: &[SdEntry<'_>], order: &[Key], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut k = 0;
    while k < order.len() {
        let first = &order[k];
        if k > 0 {
            out.push(b',');
        }
        json_string(out, entries[first.index].id);
        out.extend_from_slice(b":{");
        let mut wrote_member = false;
        // One ID's entries are consecutive, each name's too.
        while k < order.len() && order[k].id_first == first.id_first {
            let start = k;
            while k < order.len()
                && order[k].id_first == first.id_first
                && order[k].name_first == order[start].name_first
            {
                k += 1;
            }
            let Some(name) = entries[order[start].index].name else {
                continue;
            };
            if wrote_member {
                out.push(b',');
            }
            wrote_member = true;
            json_string(out, name);
            out.push(b':');
            let values = &order[start..k];
            if values.len() > 1 {
                out.push(b'[');
            }
            for (n, key) in values.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                json_string(out, &unescape(entries[key.index].value));
            }
            if values.len() > 1 {
                out.push(b']');
            }
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// Where an entry goes: its ID's and its name's first appearance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    id_first: usize,
    name_first: usize,
    index: usize,
}

/// The entries grouped by ID and name, each group where it first appears.
/// Two sorts, so a hostile message with thousands of parameters costs
/// n·log n, not n².
fn grouped_order(entries: &[SdEntry<'_>]) -> Vec<Key> {
    let mut by_name: Vec<usize> = (0..entries.len()).collect();
    by_name.sort_by(|&a, &b| {
        (entries[a].id, entries[a].name, a).cmp(&(entries[b].id, entries[b].name, b))
    });
    let mut keys = Vec::with_capacity(entries.len());
    let mut k = 0;
    while k < by_name.len() {
        // A run of one ID; its first appearance is its smallest index.
        let id = entries[by_name[k]].id;
        let end = k + by_name[k..]
            .iter()
            .take_while(|&&i| entries[i].id == id)
            .count();
        let id_first = by_name[k..end].iter().copied().min().unwrap_or(by_name[k]);
        let mut name_first = by_name[k];
        for (j, &index) in by_name[k..end].iter().enumerate() {
            // Sorted by index within a name, so a name's first entry is
            // its first appearance.
            if j == 0 || entries[index].name != entries[by_name[k + j - 1]].name {
                name_first = index;
            }
            keys.push(Key {
                id_first,
                name_first,
                index,
            });
        }
        k = end;
    }
    keys.sort_unstable();
    keys
}

/// The text of parameter `name` of element `id` (its first value), for a
/// type rule's `$structured_data.<id>.<name>`. SD-IDs hold dots
/// (`x@32473.1`), so the longest ID that `path` starts with wins.
pub fn lookup<'a>(entries: &[SdEntry<'a>], path: &str) -> Option<Cow<'a, str>> {
    let (id, name) = entries
        .iter()
        .filter_map(|entry| {
            let name = path.strip_prefix(entry.id)?.strip_prefix('.')?;
            Some((entry.id, name))
        })
        .max_by_key(|(id, _)| id.len())?;
    entries
        .iter()
        .find(|entry| entry.id == id && entry.name == Some(name))
        .map(|entry| unescape(entry.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Vec<SdEntry<'_>>, &[u8]) {
        let mut entries = Vec::new();
        let rest = parse(text.as_bytes(), &mut entries).expect("well-formed");
        (entries, rest)
    }

    fn json(text: &str) -> String {
        let (entries, _) = parsed(text);
        let mut out = Vec::new();
        write(&entries, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn elements_become_objects_keyed_by_sd_id() {
        assert_eq!(
            json(
                r#"[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#
            ),
            r#"{"exampleSDID@32473":{"iut":"3","eventSource":"Application","eventID":"1011"},"examplePriority@32473":{"class":"high"}}"#
        );
        assert_eq!(json("[origin]"), r#"{"origin":{}}"#);
    }

    #[test]
    fn escaped_quote_backslash_and_bracket_are_unescaped() {
        assert_eq!(
            json(r#"[x@1 a="q\"uo\]te \\ \n"]"#),
            r#"{"x@1":{"a":"q\"uo]te \\ \\n"}}"#
        );
    }

    #[test]
    fn a_repeated_param_name_becomes_an_array_in_order() {
        assert_eq!(
            json(r#"[x@1 a="1" b="x" a="2" a="3"]"#),
            r#"{"x@1":{"a":["1","2","3"],"b":"x"}}"#
        );
    }

    #[test]
    fn a_repeated_sd_id_merges_its_params() {
        assert_eq!(
            json(r#"[x@1 a="1"][y b="2"][x@1 c="3" a="4"][y]"#),
            r#"{"x@1":{"a":["1","4"],"c":"3"},"y":{"b":"2"}}"#
        );
    }

    #[test]
    fn the_rest_after_the_elements_is_returned() {
        let (_, rest) = parsed(r#"[a b="c"] message"#);
        assert_eq!(rest, b" message");
    }

    #[test]
    fn malformed_elements_are_refused() {
        for bad in [
            "",
            "-",
            "[",
            "[]",
            "[a",
            "[a b]",
            "[a b=c]",
            r#"[a b="c]"#,
            r#"[a b="c"x]"#,
            r#"[a  b="c"]"#,
            r#"[a="b"]"#,
            "[a\u{e9} b=\"c\"]",
        ] {
            assert_eq!(parse(bad.as_bytes(), &mut Vec::new()), None, "{bad:?}");
        }
    }

    #[test]
    fn elements_end_at_the_first_byte_that_is_not_an_opening_bracket() {
        let (entries, rest) = parsed("[a]x[b]");
        assert_eq!(entries.len(), 1);
        assert_eq!(rest, b"x[b]");
    }

    #[test]
    fn lookup_takes_the_longest_dotted_sd_id() {
        let (entries, _) = parsed(r#"[x@1 a.b="short"][x@1.a b="long"][meta sequenceId="7"]"#);
        assert_eq!(lookup(&entries, "x@1.a.b").as_deref(), Some("long"));
        assert_eq!(lookup(&entries, "meta.sequenceId").as_deref(), Some("7"));
        assert_eq!(lookup(&entries, "meta.none"), None);
        assert_eq!(lookup(&entries, "meta"), None);
    }

    #[test]
    fn the_unsorted_order_is_the_sorted_one_when_it_applies() {
        for text in [
            r#"[a x="1" y="2"][b x="3"]"#,
            r#"[a][a x="1"][b][c y="2" z="3"]"#,
            r#"[a x="1"][b y="2"][a z="3"]"#,
            r#"[a x="1" x="2"]"#,
            "[a][a]",
        ] {
            let (entries, _) = parsed(text);
            if let Some(fast) = grouped_as_sent(&entries) {
                let sorted = grouped_order(&entries);
                let group = |keys: &[Key]| -> Vec<(usize, usize)> {
                    keys.iter()
                        .map(|k| {
                            (
                                keys.iter().position(|o| o.id_first == k.id_first).unwrap(),
                                k.index,
                            )
                        })
                        .collect()
                };
                assert_eq!(group(&fast), group(&sorted), "{text}");
            } else {
                assert!(
                    text.contains("[a z") || text.contains("x=\"2\"") || text == "[a][a]",
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn many_params_group_quickly() {
        let text = format!(
            "[x{}]",
            (0..5000)
                .map(|i| format!(" p{}=\"{i}\"", i % 7))
                .collect::<String>()
        );
        let out = json(&text);
        assert!(out.starts_with(r#"{"x":{"p0":["0","7","#), "{}", &out[..40]);
    }
}
