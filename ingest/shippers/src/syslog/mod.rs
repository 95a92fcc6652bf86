//! Syslog: RFC 5424 and RFC 3164 messages parsed into Helios events, over
//! UDP (RFC 5426), TCP (RFC 6587) and RELP. Pure: the collector owns the
//! sockets, the journal and the answers' timing; this module turns bytes
//! into messages ([`TcpFramer`], [`udp_message`], [`relp::RelpSession`]),
//! messages into event lines ([`translate`]), and renders RELP's answers.
//!
//! # Events
//! Each message becomes one event line (a JSON object and `\n`) appended
//! to a [`Translation`], with one [`Item`](crate::Item). Which syntax a
//! message is in is decided per message: `<PRI>1 ` starts RFC 5424;
//! otherwise an optional PRI then a BSD (`Dec  7 11:28:04`) or RFC 3339
//! timestamp is RFC 3164; anything else, including an RFC 5424 header or
//! structured data that does not parse, is kept whole as `unparsed`
//! (never dropped for being malformed). Trailing LF, CR and NUL bytes
//! are trimmed first.
//!
//! | field | RFC 5424 | RFC 3164 | unparsed |
//! |---|---|---|---|
//! | `type` | the type rule, default `syslog` ([`DEFAULT_TYPE_RULE`]); it may read any field below, e.g. `$app_name\|syslog`, `$structured_data.origin@123.software\|syslog` | same | same |
//! | `ts` | TIMESTAMP in epoch ms, exact (zone applied, fraction of up to 9 digits truncated to ms); absent for `-` (the collector then uses the receive time) | the BSD time by the year rule below, in the collector's zone; an RFC 3339 timestamp (rsyslog's `RSYSLOG_ForwardFormat`) exactly | absent |
//! | `format` | `rfc5424` | `rfc3164` | `unparsed` |
//! | `timestamp` | TIMESTAMP as sent; absent for `-` | the timestamp as sent | absent |
//! | `facility`, `facility_code` | from PRI: `kern` 0, `user` 1, `mail` 2, `daemon` 3, `auth` 4, `syslog` 5, `lpr` 6, `news` 7, `uucp` 8, `cron` 9, `authpriv` 10, `ftp` 11, `ntp` 12, `security` 13, `console` 14, `solaris-cron` 15, `local0`..`local7` 16..23 | same; without PRI `user` 1 (RFC 3164 §4.3.3's default) | when a PRI parsed |
//! | `severity`, `severity_code` | `emerg` 0, `alert` 1, `crit` 2, `err` 3, `warning` 4, `notice` 5, `info` 6, `debug` 7 | same; without PRI `notice` 5 | when a PRI parsed |
//! | `priority` | the severity's Helios priority: `emerg`..`err` → `high`, `warning`..`info` → `normal`, `debug` → `low` | same | when a PRI parsed |
//! | `hostname` | HOSTNAME; absent for `-` | the word after the timestamp, when it is letters, digits and `.-_:` not ending in `:` | absent |
//! | `app_name` | APP-NAME; absent for `-` | the TAG: `tag:`, `tag[pid]:`, `tag[pid]` or the next word | absent |
//! | `procid` | PROCID; absent for `-` | the TAG's `[pid]` | absent |
//! | `msgid` | MSGID; absent for `-` | absent | absent |
//! | `structured_data` | `{"SD-ID": {"name": "value", …}, …}`; absent for `-` (see below) | absent | absent |
//! | `message` | MSG (a UTF-8 BOM removed, invalid UTF-8 as U+FFFD, leading spaces kept); absent when there is none | the rest after the TAG and one space; absent when empty | the whole text (trimmed), invalid UTF-8 as U+FFFD |
//!
//! Never emitted: `recv`, `app`, `ts_raw`, `_id`. The collector stamps
//! `app` from its configuration (a sender could claim any app) and mints
//! the ids: syslog carries nothing to deduplicate on.
//!
//! Structured data: one member per SD-ID, in the order each first
//! appears, each an object of its parameters, values unescaped (`\"`,
//! `\\`, `\]`; a backslash before anything else is kept, RFC 5424
//! §6.3.3). A parameter name given more than once in an ID becomes an
//! array of its values in the order sent; an SD-ID given more than once
//! has its elements merged into one object (RFC 5424 forbids repeating an
//! SD-ID; merging keeps every value, and repeated names across the
//! elements become arrays as above). An element without parameters is
//! `{}`. A type rule's `$structured_data.<SD-ID>.<name>` reads the first
//! value; SD-IDs hold dots (`x@32473.1`), so the longest SD-ID that
//! matches wins.
//!
//! Header fields are taken as sent without RFC 5424's length limits (the
//! message size bounds them); bytes that are not UTF-8 become U+FFFD.
//!
//! # RFC 3164 time: the year and zone rule
//! `Mmm dd hh:mm:ss` has neither year nor zone. The zone is the
//! collector's ([`Context::utc_offset_s`], its local offset at the receive
//! time: classic senders write local time, and a collector normally runs
//! in the senders' zone). The year is whichever of the receive year, the
//! year before and the year after puts the time nearest the receive time:
//! `Dec 31 23:59:59` received just after New Year is last year's, `Jan  1
//! 00:00:01` from a sender whose clock runs a little fast, received on 31
//! December, is next year's. `Feb 29` counts only in leap years; when none
//! of the three years has one, `ts` is absent (`timestamp` keeps the
//! text). The day may be space-padded (`Dec  7`), zero-padded or bare.
//!
//! # Framing
//! - UDP: one datagram is one message ([`udp_message`]).
//! - TCP: [`TcpFramer`], octet counting or LF/NUL-terminated lines,
//!   detected per message as rsyslog does; a message over the limit is
//!   reported ([`TooLong`]) and skipped, and the connection goes on.
//! - RELP: [`relp::RelpSession`] and the `relp::render_*` answers; see
//!   [`relp`] for the session and what rsyslog does with a refusal
//!   (it drops a frame answered `500`: close without answering instead).
//!
//! # Wiring (the collector's side)
//! ```
//! use helios_shippers::syslog::{self, relp, Context, TcpFramer};
//! use helios_shippers::Translation;
//!
//! let rule = syslog::default_type_rule(); // or TypeRule::parse(--syslog-type)
//! let ctx = Context { recv_ms: 1_796_642_895_000, utc_offset_s: 0 };
//! let mut batch = Translation::default();
//!
//! // UDP: one datagram, one message.
//! let datagram = b"<13>Dec  7 11:28:04 vm myapp[25064]: hello rfc3164";
//! if let Ok(Some(message)) = syslog::udp_message(datagram, syslog::DEFAULT_MAX_MESSAGE_BYTES) {
//!     syslog::translate(message, &rule, &ctx, &mut batch);
//! }
//!
//! // TCP: per connection, push what each read gave, take every message.
//! let mut framer = TcpFramer::new(syslog::DEFAULT_MAX_MESSAGE_BYTES);
//! framer.push(b"23 <13>1 - - - - - - hi!<13>Dec  7 11:28:04 vm app: ");
//! framer.push(b"line\n");
//! loop {
//!     match framer.next_message() {
//!         Ok(Some(message)) => syslog::translate(message, &rule, &ctx, &mut batch),
//!         Ok(None) => break,                        // read more
//!         Err(too_long) => eprintln!("{too_long}"), // count it; the stream goes on
//!     }
//! }
//!
//! // RELP: per connection; answers go out in frame order, `200 OK` only
//! // after the frame's event is committed to the journal.
//! let mut session = relp::RelpSession::new(relp::DEFAULT_MAX_DATA_BYTES);
//! let mut answers = Vec::new();
//! session.push(b"1 open 30 relp_version=0\ncommands=syslog\n2 syslog 9 <13>1 - -\n");
//! let mut committed_later = Vec::new();
//! loop {
//!     match session.next_request() {
//!         Ok(Some(relp::Request::Open { txnr })) => relp::render_open(txnr, &mut answers),
//!         Ok(Some(relp::Request::Syslog { txnr, message })) => {
//!             syslog::translate(message, &rule, &ctx, &mut batch);
//!             committed_later.push(txnr); // relp::render_ok(txnr, …) after the commit
//!         }
//!         Ok(Some(relp::Request::Close { txnr })) => {
//!             relp::render_close(txnr, &mut answers); // after the pending 200s; then close
//!             break;
//!         }
//!         Ok(None) => break, // read more
//!         Err(error) => {
//!             error.render(&mut answers); // then close the connection
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(batch.items.len(), 4);
//! assert_eq!(committed_later, [2]);
//! ```

mod framing;
mod message;
mod pri;
pub mod relp;
mod sd;
#[cfg(test)]
mod tests;
mod time;

pub use framing::{udp_message, TcpFramer, TooLong};
pub use message::{parse, Format, Message};
pub use pri::{Pri, MAX_PRI};
pub use sd::SdEntry;

use crate::{Echo, Item, Translation, TypeRule};

/// The default `type` rule: every syslog event is of type `syslog`
/// unless the collector is given another rule (e.g. `$app_name|syslog`).
pub const DEFAULT_TYPE_RULE: &str = "syslog";

/// A suggested message size limit for TCP and UDP: 64 KiB, more than a
/// UDP datagram can carry and than rsyslog sends by default (8 KiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The default `type` rule ([`DEFAULT_TYPE_RULE`]).
pub fn default_type_rule() -> TypeRule {
    TypeRule::parse(DEFAULT_TYPE_RULE).expect("the default rule parses")
}

/// What the collector knows of a message besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Receive time, UTC epoch ms: picks the year of an RFC 3164 time.
    pub recv_ms: i64,
    /// The collector's zone offset at the receive time, seconds east of
    /// UTC (e.g. 3600 for CET): the zone of an RFC 3164 time.
    pub utc_offset_s: i32,
}

/// Parses one syslog message (framing already removed) and appends its
/// event line to `out.ndjson` and its item to `out.items`. Never fails:
/// a message that does not parse is kept whole (`format: "unparsed"`).
/// `out` should hold syslog events only, so that item `k` is line `k`.
pub fn translate(message: &[u8], rule: &TypeRule, ctx: &Context, out: &mut Translation) {
    // Lines are numbered in u32; a batch that large is far past every
    // limit of the collector, so saturating only guards the conversion.
    let line = u32::try_from(out.items.len()).unwrap_or(u32::MAX);
    parse(message, ctx).write_event(rule, &mut out.ndjson);
    out.items.push(Item {
        line: Ok(line),
        echo: Echo::None,
    });
}
