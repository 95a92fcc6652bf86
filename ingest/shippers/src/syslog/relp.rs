//! RELP, rsyslog's Reliable Event Logging Protocol (librelp's
//! `doc/relp.md`), server side: an incremental frame parser with the
//! session's rules ([`RelpSession`]) and the answers ([`render_open`],
//! [`render_ok`], [`render_refused`], [`render_close`],
//! [`render_serverclose`], [`RelpError::render`]).
//!
//! # Frames
//! `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: TXNR 1 to 9 digits, COMMAND
//! 1 to 32 letters, DATALEN 1 to 9 digits, DATA exactly DATALEN bytes
//! (absent when DATALEN is 0; `0 SP LF` is taken too). TXNR starts at 1
//! on every connection and goes up by one per command (after 999 999 999
//! it is 1 again); TXNR 0 is a hint, which needs no answer (a client
//! sends none today; they are skipped). Answers are `rsp` frames with the
//! command's TXNR whose data is `CODE SP TEXT [LF DATA]`.
//!
//! # A session
//! | client sends | [`RelpSession::next_request`] | the collector answers |
//! |---|---|---|
//! | `1 open N relp_version=0⏎relp_software=librelp,…⏎commands=syslog` | [`Request::Open`] | [`render_open`]: `1 rsp 58 200 OK⏎relp_version=0⏎relp_software=helios⏎commands=syslog` |
//! | `2 syslog N <13>…` | [`Request::Syslog`] | after the event's journal commit, [`render_ok`]: `2 rsp 6 200 OK` |
//! | `3 close 0` | [`Request::Close`] | [`render_close`]: `3 rsp 0`, then the hint `0 serverclose 0`; then close the connection |
//!
//! We speak RELP version 0, the only one librelp (1.11) implements: a
//! client offering more is answered `relp_version=0`, which librelp
//! accepts; an `open` without a numeric `relp_version` or without
//! `commands=syslog` is refused (librelp's server does the same).
//! `close` is answered as librelp's server answers it (an empty `rsp`,
//! then `serverclose`): that is what omrelp has always been run against.
//!
//! # Refusing, and what rsyslog does with it
//! rsyslog's omrelp (rsyslog 8.2302 with librelp 1.11, checked against a
//! script server answering as these functions do) **drops a frame
//! answered `500`**: librelp takes it off its unacknowledged list, logs
//! "peer sent error response", reconnects, and never sends it again. What
//! it does resend, on its next connection, is every frame that got **no
//! answer** before the connection closed. So:
//!
//! - a syslog frame that cannot be journaled now (budget full, a failed
//!   commit) must not be answered: write [`render_serverclose`] after the
//!   answers already due and close the connection; rsyslog reconnects and
//!   resends it (and every later unanswered frame). Or, under mere
//!   backpressure, stop reading: omrelp stops at its window (128 frames).
//! - `500` ([`render_refused`]) is for frames that can never succeed; the
//!   errors of [`RelpError`] that carry a TXNR are answered so by
//!   [`RelpError::render`] before the connection closes.
//!
//! Exactly once is impossible without ids: frames committed but not yet
//! answered at a crash are resent and stored twice.
//!
//! # Errors
//! Every [`RelpError`] ends the session (librelp's rule, and the spec's:
//! "the peer that detects the problem closes the TCP connection"):
//! write what [`RelpError::render`] gives, then close. TLS (omrelp's
//! `tls="on"`) starts with a TLS handshake, not a frame, so it shows as
//! [`RelpError::Framing`].

use std::ops::Range;

/// Most DATA bytes of one frame, librelp's default (128 KiB; its servers
/// abort a session sent more). The collector may configure another.
pub const DEFAULT_MAX_DATA_BYTES: usize = 128 * 1024;
/// Most digits of TXNR and DATALEN.
const MAX_NUMBER_DIGITS: usize = 9;
/// Most letters of a command.
const MAX_COMMAND_BYTES: usize = 32;
/// TXNR wraps to 1 after this.
const MAX_TXNR: u32 = 999_999_999;
/// Longest `rsp` text librelp reads (it stops there).
const MAX_RSP_TEXT_BYTES: usize = 80;
/// The `rsp` data of an accepted `open`: our offers (RELP version 0).
const OPEN_OK: &str = "200 OK\nrelp_version=0\nrelp_software=helios\ncommands=syslog";
/// The hint a server sends before it closes a session.
const SERVERCLOSE: &[u8] = b"0 serverclose 0\n";

/// A command the collector acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `open`, with acceptable offers: answer [`render_open`].
    Open {
        /// Its TXNR.
        txnr: u32,
    },
    /// `syslog`: one syslog message (give it to
    /// [`translate`](super::translate)); answer [`render_ok`] only after
    /// its event's journal commit (see the module documentation for
    /// refusals).
    Syslog {
        /// Its TXNR.
        txnr: u32,
        /// The syslog message, as sent.
        message: &'a [u8],
    },
    /// `close`: after the answers due to every earlier frame, answer
    /// [`render_close`] and close the connection.
    Close {
        /// Its TXNR.
        txnr: u32,
    },
}

/// Why a session ends. Write [`RelpError::render`], then close the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelpError {
    /// Bytes that are not a RELP frame (or a TLS handshake).
    #[error("not a RELP frame: {0}")]
    Framing(&'static str),
    /// DATALEN over the session's limit.
    #[error("frame {txnr} carries {datalen} bytes, more than {max_data_bytes}")]
    DataTooLong {
        /// The frame.
        txnr: u32,
        /// Its DATALEN.
        datalen: usize,
        /// The limit.
        max_data_bytes: usize,
    },
    /// A TXNR out of sequence.
    #[error("frame numbered {got}, expected {expected}")]
    UnexpectedTxnr {
        /// The TXNR due.
        expected: u32,
        /// The TXNR sent.
        got: u32,
    },
    /// A command other than `open` or `close` before `open`.
    #[error("command {command} before open")]
    NotOpen {
        /// The frame.
        txnr: u32,
        /// Its command.
        command: String,
    },
    /// A second `open`.
    #[error("session already open")]
    AlreadyOpen {
        /// The frame.
        txnr: u32,
    },
    /// An `open` whose offers we cannot serve.
    #[error("open refused: {reason}")]
    OpenRefused {
        /// The frame.
        txnr: u32,
        /// Why.
        reason: &'static str,
    },
    /// A command we do not serve (`starttls`, `rsp`, unknown ones).
    #[error("command {command} not supported")]
    UnsupportedCommand {
        /// The frame.
        txnr: u32,
        /// Its command.
        command: String,
    },
    /// A frame after `close`.
    #[error("frame after close")]
    AfterClose,
}

impl RelpError {
    /// The TXNR of the frame it refuses, when that frame was read whole
    /// enough to be answered.
    pub fn txnr(&self) -> Option<u32> {
        match *self {
            RelpError::DataTooLong { txnr, .. }
            | RelpError::NotOpen { txnr, .. }
            | RelpError::AlreadyOpen { txnr }
            | RelpError::OpenRefused { txnr, .. }
            | RelpError::UnsupportedCommand { txnr, .. } => Some(txnr),
            RelpError::Framing(_) | RelpError::UnexpectedTxnr { .. } | RelpError::AfterClose => {
                None
            }
        }
    }

    /// Appends the last words of the session: `500` for the frame it is
    /// about (when there is one: librelp then drops that frame, which
    /// could never succeed, and resends the others), then `serverclose`.
    pub fn render(&self, out: &mut Vec<u8>) {
        if let Some(txnr) = self.txnr() {
            render_refused(txnr, &self.to_string(), out);
        }
        render_serverclose(out);
    }
}

/// Appends the answer to an accepted `open`: our offers.
pub fn render_open(txnr: u32, out: &mut Vec<u8>) {
    render_rsp(txnr, OPEN_OK.as_bytes(), out);
}

/// Appends `200 OK` for a journaled `syslog` frame.
pub fn render_ok(txnr: u32, out: &mut Vec<u8>) {
    render_rsp(txnr, b"200 OK", out);
}

/// Appends `500 <reason>` (line breaks made spaces, cut to the 80 bytes
/// librelp reads). rsyslog drops a frame so answered: see the module
/// documentation before refusing a message that could succeed later.
pub fn render_refused(txnr: u32, reason: &str, out: &mut Vec<u8>) {
    let mut end = reason.len().min(MAX_RSP_TEXT_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut data = Vec::with_capacity(4 + end);
    data.extend_from_slice(b"500 ");
    data.extend(
        reason[..end]
            .bytes()
            .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    render_rsp(txnr, &data, out);
}

/// Appends the answer to `close` (an empty `rsp`, as librelp's server
/// answers) and the `serverclose` hint; then close the connection.
pub fn render_close(txnr: u32, out: &mut Vec<u8>) {
    render_rsp(txnr, b"", out);
    render_serverclose(out);
}

/// Appends the `serverclose` hint (TXNR 0, not answered), which tells
/// the client at once that the server is closing the session (shutdown,
/// idle timeout, a refused frame).
pub fn render_serverclose(out: &mut Vec<u8>) {
    out.extend_from_slice(SERVERCLOSE);
}

fn render_rsp(txnr: u32, data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(txnr.to_string().as_bytes());
    out.extend_from_slice(b" rsp ");
    out.extend_from_slice(data.len().to_string().as_bytes());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Where the session is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    AwaitOpen,
    Open,
    Closed,
    Failed(RelpError),
}

/// One frame, as ranges of the buffer.
struct Frame {
    txnr: u32,
    command: Range<usize>,
    data: Range<usize>,
}

/// What [`RelpSession::next_request`] found, before borrowing the buffer.
enum Found {
    Open(u32),
    Syslog(u32, Range<usize>),
    Close(u32),
}

/// One RELP connection, server side: feed it the bytes read
/// ([`push`](Self::push)), take the commands out
/// ([`next_request`](Self::next_request) until `Ok(None)`).
///
/// It checks the framing, the DATALEN limit, the TXNR sequence, the
/// `open` offers, and that `syslog` comes between `open` and `close`.
/// Answers are the caller's to write, with the `render_*` functions,
/// because a `syslog` frame is answered only after its journal commit;
/// they must go out in the order of the frames (librelp matches them by
/// TXNR, but the close answer must come last).
///
/// Memory: what [`push`](Self::push) gave and was not yet taken; after
/// taking every request that is at most one partial frame, so at most
/// `max_data_bytes` plus a 54-byte header and trailer (a larger DATALEN
/// fails the session before its data is read).
#[derive(Debug)]
pub struct RelpSession {
    buf: Vec<u8>,
    /// First byte not yet taken.
    start: usize,
    max_data_bytes: usize,
    expected_txnr: u32,
    phase: Phase,
}

impl RelpSession {
    /// A new connection's session, taking frames of up to
    /// `max_data_bytes` of DATA ([`DEFAULT_MAX_DATA_BYTES`] is librelp's).
    pub fn new(max_data_bytes: usize) -> RelpSession {
        RelpSession {
            buf: Vec::new(),
            start: 0,
            max_data_bytes,
            expected_txnr: 1,
            phase: Phase::AwaitOpen,
        }
    }

    /// Appends bytes read from the connection. Take every request out
    /// before the next push, so that the buffer stays bounded.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held and not yet taken.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next command, `Ok(None)` when more bytes are needed, or why
    /// the session must end (then every later call gives the same error).
    pub fn next_request(&mut self) -> Result<Option<Request<'_>>, RelpError> {
        let found = match self.next_found() {
            Ok(found) => found,
            Err(error) => {
                self.phase = Phase::Failed(error.clone());
                return Err(error);
            }
        };
        Ok(found.map(|found| match found {
            Found::Open(txnr) => Request::Open { txnr },
            Found::Syslog(txnr, data) => Request::Syslog {
                txnr,
                message: &self.buf[data],
            },
            Found::Close(txnr) => Request::Close { txnr },
        }))
    }

    fn next_found(&mut self) -> Result<Option<Found>, RelpError> {
        loop {
            if let Phase::Failed(error) = &self.phase {
                return Err(error.clone());
            }
            let Some(frame) = self.next_frame()? else {
                return Ok(None);
            };
            if frame.txnr == 0 {
                // A hint; none is defined from client to server.
                continue;
            }
            if self.phase == Phase::Closed {
                return Err(RelpError::AfterClose);
            }
            if frame.txnr != self.expected_txnr {
                return Err(RelpError::UnexpectedTxnr {
                    expected: self.expected_txnr,
                    got: frame.txnr,
                });
            }
            self.expected_txnr = if frame.txnr == MAX_TXNR {
                1
            } else {
                frame.txnr + 1
            };
            return self.dispatch(frame).map(Some);
        }
    }

    fn dispatch(&mut self, frame: Frame) -> Result<Found, RelpError> {
        let txnr = frame.txnr;
        let command = &self.buf[frame.command];
        match (command, &self.phase) {
            (b"open", Phase::AwaitOpen) => {
                check_offers(&self.buf[frame.data])
                    .map_err(|reason| RelpError::OpenRefused { txnr, reason })?;
                self.phase = Phase::Open;
                Ok(Found::Open(txnr))
            }
            (b"open", _) => Err(RelpError::AlreadyOpen { txnr }),
            (b"syslog", Phase::Open) => Ok(Found::Syslog(txnr, frame.data)),
            (b"syslog", _) => Err(RelpError::NotOpen {
                txnr,
                command: "syslog".to_owned(),
            }),
            (b"close", _) => {
                self.phase = Phase::Closed;
                Ok(Found::Close(txnr))
            }
            _ => Err(RelpError::UnsupportedCommand {
                txnr,
                // Letters only, so ASCII.
                command: String::from_utf8_lossy(command).into_owned(),
            }),
        }
    }

    /// The next whole frame, taken out of the buffer.
    fn next_frame(&mut self) -> Result<Option<Frame>, RelpError> {
        let start = self.start;
        let bytes = &self.buf[start..];
        let Some((txnr, after_txnr)) = txnr(bytes)? else {
            return Ok(None);
        };
        let command_len = bytes[after_txnr..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        if command_len > MAX_COMMAND_BYTES {
            return Err(RelpError::Framing("command longer than 32 letters"));
        }
        let command_end = after_txnr + command_len;
        match bytes.get(command_end) {
            None => return Ok(None),
            Some(b' ') if command_len > 0 => {}
            Some(_) => return Err(RelpError::Framing("command is not letters then a space")),
        }
        let Some((datalen, after_datalen)) = datalen(&bytes[command_end + 1..])? else {
            return Ok(None);
        };
        if datalen > self.max_data_bytes {
            return Err(RelpError::DataTooLong {
                txnr,
                datalen,
                max_data_bytes: self.max_data_bytes,
            });
        }
        let data_start = command_end + 1 + after_datalen;
        let data_end = data_start + datalen;
        match bytes.get(data_end) {
            None => return Ok(None),
            Some(b'\n') => {}
            Some(_) => return Err(RelpError::Framing("no LF after DATALEN bytes of data")),
        }
        self.start = start + data_end + 1;
        Ok(Some(Frame {
            txnr,
            command: start + after_txnr..start + command_end,
            data: start + data_start..start + data_end,
        }))
    }
}

/// TXNR (1 to 9 digits) and a space at the start of `bytes`: its value
/// and the length with the space; `Ok(None)` when `bytes` ends first.
fn txnr(bytes: &[u8]) -> Result<Option<(u32, usize)>, RelpError> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_NUMBER_DIGITS {
        return Err(RelpError::Framing("TXNR longer than 9 digits"));
    }
    match bytes.get(digits) {
        None => Ok(None),
        Some(b' ') if digits > 0 => {
            // At most 9 digits: fits a u32.
            let value = bytes[..digits]
                .iter()
                .fold(0_u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
            Ok(Some((value, digits + 1)))
        }
        Some(_) => Err(RelpError::Framing("TXNR is not digits then a space")),
    }
}

/// DATALEN at the start of `bytes`: its value and where DATA starts (after
/// `DATALEN SP`; for 0, at the trailer, after an optional space).
fn datalen(bytes: &[u8]) -> Result<Option<(usize, usize)>, RelpError> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_NUMBER_DIGITS {
        return Err(RelpError::Framing("DATALEN longer than 9 digits"));
    }
    let Some(&next) = bytes.get(digits) else {
        return Ok(None);
    };
    if digits == 0 {
        return Err(RelpError::Framing("DATALEN is not a number"));
    }
    // At most 9 digits: fits a usize.
    let value = bytes[..digits]
        .iter()
        .fold(0_usize, |acc, &b| acc * 10 + usize::from(b - b'0'));
    match next {
        b' ' if value == 0 => Ok(Some((0, digits + 1))),
        b' ' => Ok(Some((value, digits + 1))),
        b'\n' if value == 0 => Ok(Some((0, digits))),
        _ => Err(RelpError::Framing("DATALEN is not followed by a space")),
    }
}

/// Checks a client's `open` offers (`name[=value,value…]`, one per line):
/// a numeric `relp_version` and `commands` including `syslog`.
fn check_offers(data: &[u8]) -> Result<(), &'static str> {
    let mut version = false;
    let mut syslog = false;
    for line in data.split(|&b| b == b'\n') {
        let (name, values) = match line.iter().position(|&b| b == b'=') {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (line, &b""[..]),
        };
        match name {
            b"relp_version" => {
                version = !values.is_empty()
                    && values.len() <= MAX_NUMBER_DIGITS
                    && values.iter().all(u8::is_ascii_digit);
            }
            b"commands" => syslog = values.split(|&b| b == b',').any(|c| c == b"syslog"),
            _ => {}
        }
    }
    if !version {
        return Err("relp_version offer missing or not a number");
    }
    if !syslog {
        return Err("required command not supported by client");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What rsyslog 8.2302's omrelp (librelp 1.11.0) sent to a script
    /// server: open, two messages (RSYSLOG_ForwardFormat), close.
    const OMRELP: &[u8] = b"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n\
2 syslog 54 <13>2026-12-07T11:32:04.166783+00:00 vm myapp relp one\n\
3 syslog 48 <13>2026-12-07T11:32:04+00:00 vm myapp: relp two\n\
4 close 0\n";

    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Open(u32),
        Syslog(u32, String),
        Close(u32),
        Error(RelpError),
    }

    fn drain(session: &mut RelpSession, seen: &mut Vec<Seen>) {
        loop {
            match session.next_request() {
                Ok(Some(Request::Open { txnr })) => seen.push(Seen::Open(txnr)),
                Ok(Some(Request::Syslog { txnr, message })) => seen.push(Seen::Syslog(
                    txnr,
                    String::from_utf8_lossy(message).into_owned(),
                )),
                Ok(Some(Request::Close { txnr })) => seen.push(Seen::Close(txnr)),
                Ok(None) => return,
                Err(error) => {
                    seen.push(Seen::Error(error));
                    return;
                }
            }
        }
    }

    fn requests(max: usize, chunks: &[&[u8]]) -> Vec<Seen> {
        let mut session = RelpSession::new(max);
        let mut seen = Vec::new();
        for chunk in chunks {
            session.push(chunk);
            drain(&mut session, &mut seen);
        }
        seen
    }

    fn omrelp_requests() -> Vec<Seen> {
        vec![
            Seen::Open(1),
            Seen::Syslog(
                2,
                "<13>2026-12-07T11:32:04.166783+00:00 vm myapp relp one".to_owned(),
            ),
            Seen::Syslog(
                3,
                "<13>2026-12-07T11:32:04+00:00 vm myapp: relp two".to_owned(),
            ),
            Seen::Close(4),
        ]
    }

    #[test]
    fn an_omrelp_session_yields_open_messages_and_close() {
        assert_eq!(
            requests(DEFAULT_MAX_DATA_BYTES, &[OMRELP]),
            omrelp_requests()
        );
    }

    #[test]
    fn frames_split_at_every_byte_come_out_whole() {
        for cut in 0..=OMRELP.len() {
            assert_eq!(
                requests(DEFAULT_MAX_DATA_BYTES, &[&OMRELP[..cut], &OMRELP[cut..]]),
                omrelp_requests(),
                "cut {cut}"
            );
        }
        let bytes: Vec<&[u8]> = OMRELP.chunks(1).collect();
        assert_eq!(requests(DEFAULT_MAX_DATA_BYTES, &bytes), omrelp_requests());
    }

    #[test]
    fn answers_are_the_bytes_omrelp_accepted() {
        let mut out = Vec::new();
        render_open(1, &mut out);
        render_ok(2, &mut out);
        render_close(4, &mut out);
        assert_eq!(
            out,
            b"1 rsp 58 200 OK\nrelp_version=0\nrelp_software=helios\ncommands=syslog\n\
2 rsp 6 200 OK\n4 rsp 0\n0 serverclose 0\n"
        );
    }

    #[test]
    fn a_refusal_reason_is_one_line_of_at_most_80_bytes() {
        let mut out = Vec::new();
        render_refused(7, "busy\r\nnow", &mut out);
        assert_eq!(out, b"7 rsp 13 500 busy  now\n");
        out.clear();
        render_refused(7, &"\u{e9}".repeat(50), &mut out);
        assert_eq!(out.len(), "7 rsp 84 500 \n".len() + 80);
    }

    #[test]
    fn a_frame_over_the_data_limit_fails_before_its_data_arrives() {
        let error = RelpError::DataTooLong {
            txnr: 2,
            datalen: 33,
            max_data_bytes: 32,
        };
        assert_eq!(
            requests(
                32,
                &[b"1 open 30 relp_version=0\ncommands=syslog\n2 syslog 33 "]
            ),
            vec![Seen::Open(1), Seen::Error(error.clone())]
        );
        let mut out = Vec::new();
        error.render(&mut out);
        assert_eq!(
            out,
            b"2 rsp 42 500 frame 2 carries 33 bytes, more than 32\n0 serverclose 0\n"
        );
    }

    #[test]
    fn txnr_must_follow_the_sequence() {
        assert_eq!(
            requests(64, &[b"2 open 0\n"]),
            vec![Seen::Error(RelpError::UnexpectedTxnr {
                expected: 1,
                got: 2
            })]
        );
        let mut session = RelpSession::new(64);
        session.expected_txnr = MAX_TXNR;
        session.phase = Phase::Open;
        session.push(b"999999999 syslog 1 a\n1 syslog 1 b\n");
        let mut seen = Vec::new();
        drain(&mut session, &mut seen);
        assert_eq!(
            seen,
            vec![
                Seen::Syslog(MAX_TXNR, "a".to_owned()),
                Seen::Syslog(1, "b".to_owned())
            ]
        );
    }

    #[test]
    fn hints_are_skipped() {
        assert_eq!(
            requests(64, &[b"0 abort 0\n1 close 0\n"]),
            vec![Seen::Close(1)]
        );
    }

    #[test]
    fn open_needs_a_version_and_the_syslog_command() {
        let refused = |reason| vec![Seen::Error(RelpError::OpenRefused { txnr: 1, reason })];
        assert_eq!(
            requests(64, &[b"1 open 15 commands=syslog\n"]),
            refused("relp_version offer missing or not a number")
        );
        assert_eq!(
            requests(64, &[b"1 open 29 relp_version=1\ncommands=other\n"]),
            refused("required command not supported by client")
        );
        assert_eq!(
            requests(
                64,
                &[b"1 open 39 relp_version=1\ncommands=eventlog,syslog\n"]
            ),
            vec![Seen::Open(1)]
        );
    }

    #[test]
    fn commands_out_of_place_end_the_session() {
        assert_eq!(
            requests(64, &[b"1 syslog 1 a\n"]),
            vec![Seen::Error(RelpError::NotOpen {
                txnr: 1,
                command: "syslog".to_owned()
            })]
        );
        let open: &[u8] = b"1 open 30 relp_version=0\ncommands=syslog\n";
        assert_eq!(
            requests(64, &[open, b"2 open 30 relp_version=0\ncommands=syslog\n"]),
            vec![
                Seen::Open(1),
                Seen::Error(RelpError::AlreadyOpen { txnr: 2 })
            ]
        );
        assert_eq!(
            requests(64, &[open, b"2 starttls 0\n"]),
            vec![
                Seen::Open(1),
                Seen::Error(RelpError::UnsupportedCommand {
                    txnr: 2,
                    command: "starttls".to_owned()
                })
            ]
        );
        assert_eq!(
            requests(64, &[open, b"2 close 0\n3 syslog 1 a\n"]),
            vec![
                Seen::Open(1),
                Seen::Close(2),
                Seen::Error(RelpError::AfterClose)
            ]
        );
    }

    #[test]
    fn malformed_frames_end_the_session_and_stay_failed() {
        for bad in [
            &b"x open 0\n"[..],
            b"1open 0\n",
            b"1 op3n 0\n",
            b"1  open 0\n",
            b"1 open x\n",
            b"1 open 2 abc\n",
            b"1 open 0x",
            b"1234567890 open 0\n",
            b"1 open 1234567890 ",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ] {
            let seen = requests(64, &[bad]);
            assert!(
                matches!(seen.as_slice(), [Seen::Error(RelpError::Framing(_))]),
                "{:?}: {seen:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut session = RelpSession::new(64);
        session.push(b"x");
        let first = session.next_request().map(|_| ());
        session.push(b"1 open 30 relp_version=0\ncommands=syslog\n");
        assert_eq!(session.next_request().map(|_| ()), first);
    }

    #[test]
    fn datalen_zero_may_have_a_space_before_the_trailer() {
        assert_eq!(requests(64, &[b"1 close 0 \n"]), vec![Seen::Close(1)]);
    }
}
