//! The raw endpoint's metadata: `host`, `source`, `sourcetype`, `index`
//! and `time` from the query string, percent-decoded (`+` is a space, as
//! in every form-encoded query).

use std::borrow::Cow;

/// The metadata of `POST /services/collector/raw?…`. A parameter given
/// twice keeps its first value; an empty one counts as absent; others
/// (`channel`, …) are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RawMetadata {
    pub host: Option<String>,
    pub source: Option<String>,
    pub sourcetype: Option<String>,
    pub index: Option<String>,
    pub time: Option<String>,
}

impl RawMetadata {
    /// Reads `query` (without the `?`).
    pub fn parse(query: &str) -> RawMetadata {
        let mut metadata = RawMetadata::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match &*percent_decode(key) {
                "host" => &mut metadata.host,
                "source" => &mut metadata.source,
                "sourcetype" => &mut metadata.sourcetype,
                "index" => &mut metadata.index,
                "time" => &mut metadata.time,
                _ => continue,
            };
            if slot.is_none() && !value.is_empty() {
                *slot = Some(percent_decode(value).into_owned());
            }
        }
        metadata
    }
}

/// `%XY` escapes and `+` decoded; an escape that is not two hex digits is
/// kept as written, and bytes that are not UTF-8 become U+FFFD.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = match byte {
            b'%' => bytes.get(at + 1..at + 3).and_then(hex_pair),
            _ => None,
        };
        match (byte, escaped) {
            (_, Some(value)) => {
                decoded.push(value);
                at += 3;
            }
            (b'+', None) => {
                decoded.push(b' ');
                at += 1;
            }
            (other, None) => {
                decoded.push(other);
                at += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

/// Two hex digits as a byte.
fn hex_pair(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    match pair {
        [high, low] => Some(u8::try_from(digit(*high)? * 16 + digit(*low)?).ok()?),
        _ => None,
    }
}
