//! One syslog message: format detection, the RFC 5424 and RFC 3164
//! parsers, and the Helios event line it becomes.

use std::borrow::Cow;

use super::pri::{split_pri, Pri, DEFAULT_PRI};
use super::sd::{self, SdEntry};
use super::time::{rfc3339_ms, split_bsd_time};
use super::Context;
use crate::{json_string, TypeRule};

/// Text of bytes that should be UTF-8: borrowed when they are (std's
/// validator has an ASCII fast path `from_utf8_lossy` lacks), U+FFFD for
/// invalid sequences otherwise.
pub(super) fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// NILVALUE: an RFC 5424 header field or STRUCTURED-DATA left out.
const NIL: &[u8] = b"-";
/// The UTF-8 byte order mark RFC 5424 puts before a UTF-8 MSG.
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Longest RFC 3164 TAG (the program name) taken: RFC 5424's APP-NAME
/// limit (RFC 3164 says 32; longer systemd unit names exist). A longer
/// word before `:` or `[` is message text, not a tag.
const MAX_TAG_BYTES: usize = 48;
/// Longest RFC 3164 `[pid]` content taken (RFC 5424's PROCID limit).
const MAX_PROCID_BYTES: usize = 128;

/// Which syntax a message was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]`).
    Rfc5424,
    /// RFC 3164 / BSD (`[<PRI>]Mmm dd hh:mm:ss [HOST] [TAG[PID]:] MSG`).
    Rfc3164,
    /// Neither: the whole text is the message.
    Unparsed,
}

impl Format {
    /// The `format` field's value.
    pub fn name(self) -> &'static str {
        match self {
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Unparsed => "unparsed",
        }
    }
}

/// A parsed syslog message, borrowing from its bytes where it can. Each
/// field is documented by the event field it becomes (see the module
/// documentation's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// `format`.
    pub format: Format,
    /// `facility`, `facility_code`, `severity`, `severity_code`,
    /// `priority`.
    pub pri: Option<Pri>,
    /// `timestamp`: the timestamp as sent.
    pub timestamp: Option<&'a str>,
    /// `ts`: the timestamp in epoch ms.
    pub ts_ms: Option<i64>,
    /// `hostname`.
    pub hostname: Option<Cow<'a, str>>,
    /// `app_name` (RFC 3164: the TAG).
    pub app_name: Option<Cow<'a, str>>,
    /// `procid` (RFC 3164: the TAG's `[pid]`).
    pub procid: Option<Cow<'a, str>>,
    /// `msgid`.
    pub msgid: Option<Cow<'a, str>>,
    /// `structured_data`, one entry per parameter in the order sent.
    pub structured_data: Vec<SdEntry<'a>>,
    /// `message`.
    pub message: Option<Cow<'a, str>>,
}

impl<'a> Message<'a> {
    fn unparsed(bytes: &'a [u8], pri: Option<Pri>) -> Message<'a> {
        Message {
            format: Format::Unparsed,
            pri,
            timestamp: None,
            ts_ms: None,
            hostname: None,
            app_name: None,
            procid: None,
            msgid: None,
            structured_data: Vec::new(),
            message: Some(text_of(bytes)),
        }
    }

    /// The text of the event field at `path` (a type rule's `$path`):
    /// any field of the table; `structured_data.<SD-ID>.<name>` is the
    /// parameter's first value.
    pub fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        fn text<'m>(value: &'m Option<Cow<'_, str>>) -> Option<Cow<'m, str>> {
            value.as_deref().map(Cow::Borrowed)
        }
        let pri = self.pri;
        match path {
            "format" => Some(Cow::Borrowed(self.format.name())),
            "ts" => self.ts_ms.map(|ms| Cow::Owned(ms.to_string())),
            "timestamp" => self.timestamp.map(Cow::Borrowed),
            "facility" => pri.map(|p| Cow::Borrowed(p.facility())),
            "facility_code" => pri.map(|p| Cow::Owned(p.facility_code().to_string())),
            "severity" => pri.map(|p| Cow::Borrowed(p.severity())),
            "severity_code" => pri.map(|p| Cow::Owned(p.severity_code().to_string())),
            "priority" => pri.map(|p| Cow::Borrowed(p.priority())),
            "hostname" => text(&self.hostname),
            "app_name" => text(&self.app_name),
            "procid" => text(&self.procid),
            "msgid" => text(&self.msgid),
            "message" => text(&self.message),
            _ => sd::lookup(
                &self.structured_data,
                path.strip_prefix("structured_data.")?,
            ),
        }
    }

    /// Appends it as one Helios event line (a JSON object and `\n`), its
    /// `type` from `rule`.
    pub fn write_event(&self, rule: &TypeRule, out: &mut Vec<u8>) {
        let kind = rule.resolve(|path| self.field(path));
        out.extend_from_slice(b"{\"type\":");
        json_string(out, &kind);
        if let Some(ms) = self.ts_ms {
            out.extend_from_slice(b",\"ts\":");
            // Writing into a Vec cannot fail; serde_json formats integers
            // without `fmt`'s machinery.
            let _ = serde_json::to_writer(&mut *out, &ms);
        }
        static_member(out, "format", self.format.name());
        if let Some(timestamp) = self.timestamp {
            member(out, "timestamp", timestamp);
        }
        if let Some(pri) = self.pri {
            static_member(out, "facility", pri.facility());
            out.extend_from_slice(b",\"facility_code\":");
            let _ = serde_json::to_writer(&mut *out, &pri.facility_code());
            static_member(out, "severity", pri.severity());
            out.extend_from_slice(b",\"severity_code\":");
            let _ = serde_json::to_writer(&mut *out, &pri.severity_code());
            static_member(out, "priority", pri.priority());
        }
        for (name, value) in [
            ("hostname", &self.hostname),
            ("app_name", &self.app_name),
            ("procid", &self.procid),
            ("msgid", &self.msgid),
        ] {
            if let Some(value) = value {
                member(out, name, value);
            }
        }
        if !self.structured_data.is_empty() {
            out.extend_from_slice(b",\"structured_data\":");
            sd::write(&self.structured_data, out);
        }
        if let Some(message) = &self.message {
            member(out, "message", message);
        }
        out.extend_from_slice(b"}\n");
    }
}

/// `,"name":"value"` for a value of ours that needs no JSON escaping
/// (facility, severity, priority and format names): written as is,
/// without the escaper's per-call cost.
fn static_member(out: &mut Vec<u8>, name: &str, value: &'static str) {
    debug_assert!(value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":\"");
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// `,"name":"value"`.
fn member(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    json_string(out, value);
}

/// Parses one message (see the module documentation). Never fails: what
/// is neither RFC 5424 nor RFC 3164 is [`Format::Unparsed`], the whole
/// text kept.
pub fn parse<'a>(bytes: &'a [u8], ctx: &Context) -> Message<'a> {
    let bytes = trim_end(bytes);
    match split_pri(bytes) {
        Some((pri, rest)) => match rest.strip_prefix(b"1 ") {
            Some(header) => parse_5424(pri, header),
            None => parse_3164(pri, rest, ctx),
        }
        .unwrap_or_else(|| Message::unparsed(bytes, Some(pri))),
        None => {
            // RFC 3164 §4.3.3: a message without PRI is user.notice.
            parse_3164(DEFAULT_PRI, bytes, ctx).unwrap_or_else(|| Message::unparsed(bytes, None))
        }
    }
}

/// Without the trailing LF, CR and NUL bytes framing leaves (a trailing
/// LF inside an octet count, `\r\n` or `\0` trailers).
pub fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// A header field: the bytes up to the next space (at least one), and
/// the rest after that one space.
fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == b' ')?;
    (end > 0).then(|| (&bytes[..end], &bytes[end + 1..]))
}

/// A header field's text, `None` for NILVALUE.
fn nil_or_text(field: &[u8]) -> Option<Cow<'_, str>> {
    (field != NIL).then(|| text_of(field))
}

/// A MSG's text: the BOM removed, invalid UTF-8 as U+FFFD; `None` when
/// empty.
fn message_text(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    (!bytes.is_empty()).then(|| text_of(bytes))
}

/// RFC 5424 after `<PRI>1 `.
fn parse_5424(pri: Pri, header: &[u8]) -> Option<Message<'_>> {
    let (timestamp, rest) = field(header)?;
    let (timestamp, ts_ms) = if timestamp == NIL {
        (None, None)
    } else {
        let ms = rfc3339_ms(timestamp)?;
        (Some(std::str::from_utf8(timestamp).ok()?), Some(ms))
    };
    let (hostname, rest) = field(rest)?;
    let (app_name, rest) = field(rest)?;
    let (procid, rest) = field(rest)?;
    let (msgid, rest) = field(rest)?;
    let mut structured_data = Vec::new();
    let rest = match rest.strip_prefix(NIL) {
        Some(rest) => rest,
        None => sd::parse(rest, &mut structured_data)?,
    };
    let message = match rest {
        [] => None,
        [b' ', msg @ ..] => message_text(msg),
        _ => return None,
    };
    Some(Message {
        format: Format::Rfc5424,
        pri: Some(pri),
        timestamp,
        ts_ms,
        hostname: nil_or_text(hostname),
        app_name: nil_or_text(app_name),
        procid: nil_or_text(procid),
        msgid: nil_or_text(msgid),
        structured_data,
        message,
    })
}

/// RFC 3164 after the PRI (if any): a BSD timestamp (or the RFC 3339 one
/// rsyslog's `RSYSLOG_ForwardFormat` writes there), then an optional
/// hostname, an optional `TAG[PID]:`, and the message.
fn parse_3164<'a>(pri: Pri, bytes: &'a [u8], ctx: &Context) -> Option<Message<'a>> {
    let (timestamp, ts_ms, rest) = match split_bsd_time(bytes) {
        Some((time, len)) => (
            &bytes[..len],
            time.to_ms(ctx.recv_ms, ctx.utc_offset_s),
            &bytes[len..],
        ),
        None => {
            let len = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
            (
                &bytes[..len],
                Some(rfc3339_ms(&bytes[..len])?),
                &bytes[len..],
            )
        }
    };
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let (hostname, rest) = split_hostname(rest);
    let (app_name, procid, rest) = split_tag(rest);
    Some(Message {
        format: Format::Rfc3164,
        pri: Some(pri),
        // Both timestamp forms are ASCII.
        timestamp: std::str::from_utf8(timestamp).ok(),
        ts_ms,
        hostname: hostname.map(text_of),
        app_name: app_name.map(text_of),
        procid: procid.map(text_of),
        msgid: None,
        structured_data: Vec::new(),
        message: message_text(rest),
    })
}

/// The word after the timestamp, when it is a hostname: letters, digits
/// and `.-_:` (names, IPv4 and IPv6 addresses), not ending in `:` (then
/// it is a TAG, as in `Dec  7 11:28:04 sshd: …` from a sender that
/// leaves its hostname out).
fn split_hostname(bytes: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    let word = &bytes[..end];
    let is_hostname = !word.is_empty()
        && !word.ends_with(b":")
        && word
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !is_hostname {
        return (None, bytes);
    }
    let rest = &bytes[end..];
    (Some(word), rest.strip_prefix(b" ").unwrap_or(rest))
}

/// The TAG at the start of `bytes` as rsyslog reads it: `TAG:`,
/// `TAG[PID]:`, or a word followed by a space, `TAG[PID]` or `TAG` (what
/// rsyslog's default forwarding template writes for RFC 5424 input), then
/// one optional space: the tag, the pid and the message. A word longer
/// than [`MAX_TAG_BYTES`], or a `[` without a well-formed `PID]`, makes
/// it all message.
fn split_tag(bytes: &[u8]) -> (Option<&[u8]>, Option<&[u8]>, &[u8]) {
    let not_a_tag = (None, None, bytes);
    let name_len = bytes
        .iter()
        .take_while(|&&b| !matches!(b, b' ' | b'[' | b':'))
        .count();
    if name_len == 0 || name_len > MAX_TAG_BYTES {
        return not_a_tag;
    }
    let name = &bytes[..name_len];
    let (procid, rest) = match bytes[name_len..] {
        [b':', ..] => (None, &bytes[name_len + 1..]),
        [b'[', ..] => {
            let inside = &bytes[name_len + 1..];
            let Some(close) = inside.iter().position(|&b| b == b']') else {
                return not_a_tag;
            };
            let pid = &inside[..close];
            if pid.is_empty() || pid.len() > MAX_PROCID_BYTES || pid.contains(&b' ') {
                return not_a_tag;
            }
            let rest = &inside[close + 1..];
            let rest = rest.strip_prefix(b":").unwrap_or(rest);
            if !matches!(rest.first(), None | Some(b' ')) {
                return not_a_tag;
            }
            (Some(pid), rest)
        }
        _ => (None, &bytes[name_len..]),
    };
    (Some(name), procid, rest.strip_prefix(b" ").unwrap_or(rest))
}
