//! Syslog over TCP (RFC 6587) and UDP (RFC 5426): where one message ends
//! and the next begins.

use std::ops::Range;

use super::message::trim_end;

/// Most digits of an RFC 6587 octet count (MSG-LEN) taken: up to
/// 999 999 999, as RELP's DATALEN. More digits are not a count (see
/// [`TcpFramer`]).
const MAX_OCTET_COUNT_DIGITS: usize = 9;

/// A message over the size limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "syslog message over {max_message_bytes} bytes{}: discarded, the connection goes on",
    declared.map(|n| format!(" (octet count {n})")).unwrap_or_default()
)]
pub struct TooLong {
    /// The limit it is over.
    pub max_message_bytes: usize,
    /// Its octet count when it declared one (octet-counting framing);
    /// `None` for a line (non-transparent framing) found too long before
    /// its end.
    pub declared: Option<u64>,
}

/// Splits a TCP byte stream into syslog messages, framing detected per
/// message as rsyslog's imtcp does (RFC 6587 §3.4):
///
/// - **Octet counting** (`MSG-LEN SP MSG`, §3.4.1): a frame that starts
///   with 1 to 9 digits followed by a space. The message is exactly
///   MSG-LEN bytes and may contain line breaks.
/// - **Non-transparent framing** (§3.4.2): any other frame, up to the
///   next LF or NUL (RFC 6587 names both as trailers in use; a NUL
///   inside a syslog message is not valid text anyway, and NUL-terminated
///   senders would otherwise run every message together). A CR before
///   the trailer is dropped. Digits not followed by a space (`2026-12-07
///   …`, a BSD message without PRI) start a line, as in rsyslog.
///
/// Empty frames (blank lines, `\r\n` after a counted message, a count of
/// 0) are skipped. Every byte sequence has a framing, so no input makes
/// the connection unusable: a message over `max_message_bytes` is
/// reported once as [`TooLong`] and skipped (an octet-counted one by its
/// count, a line up to its trailer), and the next message is read as
/// usual.
///
/// Memory: the buffer holds what [`push`](Self::push) gave and was not
/// yet taken; after taking every message ([`next_message`] until
/// `Ok(None)`) that is at most one partial message, at most
/// `max_message_bytes` plus its count (longer ones are being discarded,
/// not kept).
///
/// [`next_message`]: Self::next_message
#[derive(Debug)]
pub struct TcpFramer {
    buf: Vec<u8>,
    /// First byte not yet taken.
    start: usize,
    /// Line mode: bytes after `start` already searched for a trailer, so
    /// that a long line arriving in small reads is not searched again.
    searched: usize,
    state: State,
    max_message_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a frame.
    FrameStart,
    /// Inside a line (non-transparent framing).
    Line,
    /// Inside an octet-counted message of this many bytes.
    Counted(usize),
    /// Dropping the rest of a line that was too long.
    DiscardLine,
    /// Dropping this many more bytes of a counted message that was too
    /// long.
    DiscardCounted(u64),
}

/// What the next frame is, judged from its first bytes.
enum Start {
    /// More bytes are needed to tell.
    NeedMore,
    /// An empty frame of this many bytes (a lone trailer).
    Empty(usize),
    /// A count of this value, with this many header bytes (digits + SP).
    Counted { len: u64, header: usize },
    /// A line.
    Line,
}

impl TcpFramer {
    /// A framer that takes messages up to `max_message_bytes` (the MSG,
    /// without its octet count or trailer).
    pub fn new(max_message_bytes: usize) -> TcpFramer {
        TcpFramer {
            buf: Vec::new(),
            start: 0,
            searched: 0,
            state: State::FrameStart,
            max_message_bytes,
        }
    }

    /// Appends bytes read from the connection. Take every message out
    /// ([`next_message`](Self::next_message) until `Ok(None)`) before the
    /// next push, so that the buffer stays bounded.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            // Only the partial message is moved.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held, taken or not (for metrics and tests).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete message (its trailing LF, CR and NUL bytes
    /// removed, never empty), `Ok(None)` when more bytes are needed, or
    /// [`TooLong`] for a message that is being skipped (call again: the
    /// stream goes on).
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, TooLong> {
        Ok(self.next_range()?.map(|range| &self.buf[range]))
    }

    fn next_range(&mut self) -> Result<Option<Range<usize>>, TooLong> {
        loop {
            let available = &self.buf[self.start..];
            match self.state {
                State::FrameStart => match frame_start(available) {
                    Start::NeedMore => return Ok(None),
                    Start::Empty(len) => self.start += len,
                    Start::Line => {
                        self.state = State::Line;
                        self.searched = 0;
                    }
                    Start::Counted { len, header } => {
                        self.start += header;
                        match usize::try_from(len) {
                            Ok(len) if len <= self.max_message_bytes => {
                                self.state = State::Counted(len);
                            }
                            _ => {
                                self.state = State::DiscardCounted(len);
                                return Err(self.too_long(Some(len)));
                            }
                        }
                    }
                },
                State::Line => {
                    let from = self.searched;
                    match available[from..]
                        .iter()
                        .position(|&b| b == b'\n' || b == b'\0')
                    {
                        Some(at) => {
                            let end = self.start + from + at;
                            let range = self.start..end;
                            self.start = end + 1;
                            self.state = State::FrameStart;
                            let message = trimmed(&self.buf, range);
                            if message.len() > self.max_message_bytes {
                                return Err(self.too_long(None));
                            }
                            if !message.is_empty() {
                                return Ok(Some(message));
                            }
                        }
                        None if available.len() > self.max_message_bytes + 1 => {
                            // Even a CR before the trailer would not make
                            // it fit: drop it up to its trailer.
                            self.start = self.buf.len();
                            self.state = State::DiscardLine;
                            return Err(self.too_long(None));
                        }
                        None => {
                            self.searched = available.len();
                            return Ok(None);
                        }
                    }
                }
                State::Counted(len) => {
                    if available.len() < len {
                        return Ok(None);
                    }
                    let range = self.start..self.start + len;
                    self.start += len;
                    self.state = State::FrameStart;
                    let message = trimmed(&self.buf, range);
                    if !message.is_empty() {
                        return Ok(Some(message));
                    }
                }
                State::DiscardLine => {
                    match available.iter().position(|&b| b == b'\n' || b == b'\0') {
                        Some(at) => {
                            self.start += at + 1;
                            self.state = State::FrameStart;
                        }
                        None => {
                            self.start = self.buf.len();
                            return Ok(None);
                        }
                    }
                }
                State::DiscardCounted(left) => {
                    let take = left.min(available.len() as u64);
                    // `take` is at most `available.len()`, a usize.
                    self.start += take as usize;
                    if take == left {
                        self.state = State::FrameStart;
                    } else {
                        self.state = State::DiscardCounted(left - take);
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The stream has ended: the unterminated line left at its end, as
    /// its last message (rsyslog's imtcp submits it too: `logger` and
    /// other senders may close right after a line without its LF), or
    /// `None` when nothing, only an incomplete octet-counted frame (its
    /// sender broke off: no message to keep), or a line over the limit
    /// is left. Call after [`next_message`](Self::next_message) gave
    /// `Ok(None)`; the framer is empty afterwards.
    pub fn finish(&mut self) -> Option<&[u8]> {
        let rest = self.start..self.buf.len();
        self.start = self.buf.len();
        let is_line = match self.state {
            State::Line => true,
            // Digits not yet followed by anything: a line of digits.
            State::FrameStart => !rest.is_empty(),
            State::Counted(_) | State::DiscardLine | State::DiscardCounted(_) => false,
        };
        self.state = State::FrameStart;
        let message = trimmed(&self.buf, rest);
        (is_line && !message.is_empty() && message.len() <= self.max_message_bytes)
            .then(|| &self.buf[message])
    }

    fn too_long(&self, declared: Option<u64>) -> TooLong {
        TooLong {
            max_message_bytes: self.max_message_bytes,
            declared,
        }
    }
}

/// `range` of `buf` without its trailing LF, CR and NUL bytes.
fn trimmed(buf: &[u8], range: Range<usize>) -> Range<usize> {
    let len = trim_end(&buf[range.clone()]).len();
    range.start..range.start + len
}

/// Judges a frame from its first bytes (see [`TcpFramer`]).
fn frame_start(bytes: &[u8]) -> Start {
    match bytes.first() {
        None => return Start::NeedMore,
        Some(b'\n' | b'\0') => return Start::Empty(1),
        Some(b) if !b.is_ascii_digit() => return Start::Line,
        Some(_) => {}
    }
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_OCTET_COUNT_DIGITS {
        return Start::Line;
    }
    match bytes.get(digits) {
        None => Start::NeedMore,
        Some(b' ') => {
            let len = bytes[..digits]
                .iter()
                .fold(0_u64, |acc, &b| acc * 10 + u64::from(b - b'0'));
            Start::Counted {
                len,
                header: digits + 1,
            }
        }
        Some(_) => Start::Line,
    }
}

/// The message of a UDP datagram (RFC 5426: one message per datagram, no
/// framing): its trailing LF, CR and NUL bytes removed; `Ok(None)` when
/// nothing is left; [`TooLong`] over `max_message_bytes`.
pub fn udp_message(datagram: &[u8], max_message_bytes: usize) -> Result<Option<&[u8]>, TooLong> {
    let message = trim_end(datagram);
    if message.len() > max_message_bytes {
        return Err(TooLong {
            max_message_bytes,
            declared: None,
        });
    }
    Ok((!message.is_empty()).then_some(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every result of `next_message` until it needs more bytes.
    fn drain(framer: &mut TcpFramer) -> Vec<Result<String, TooLong>> {
        let mut out = Vec::new();
        loop {
            match framer.next_message() {
                Ok(Some(message)) => out.push(Ok(String::from_utf8_lossy(message).into_owned())),
                Ok(None) => return out,
                Err(error) => out.push(Err(error)),
            }
        }
    }

    #[test]
    fn the_stream_end_gives_an_unterminated_line_but_not_a_broken_counted_frame() {
        let mut framer = TcpFramer::new(16);
        framer.push(b"<13>first\n<13>last line\r");
        assert_eq!(drain(&mut framer), [Ok("<13>first".to_owned())]);
        assert_eq!(framer.finish(), Some(&b"<13>last line"[..]));
        assert_eq!(framer.finish(), None, "empty afterwards");

        framer.push(b"12 <13>short");
        assert_eq!(drain(&mut framer), []);
        assert_eq!(framer.finish(), None, "an incomplete counted frame");

        framer.push(b"2026");
        assert_eq!(drain(&mut framer), []);
        assert_eq!(
            framer.finish(),
            Some(&b"2026"[..]),
            "digits alone are a line"
        );

        framer.push(b"<13>a line far longer than sixteen bytes");
        assert!(drain(&mut framer).iter().all(Result::is_err));
        assert_eq!(framer.finish(), None, "an oversized line stays skipped");

        framer.push(b"\n\n");
        assert_eq!(drain(&mut framer), []);
        assert_eq!(framer.finish(), None, "blank lines are no message");
    }

    fn messages(max: usize, chunks: &[&[u8]]) -> Vec<Result<String, TooLong>> {
        let mut framer = TcpFramer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            out.extend(drain(&mut framer));
        }
        out
    }

    fn ok(texts: &[&str]) -> Vec<Result<String, TooLong>> {
        texts.iter().map(|t| Ok((*t).to_owned())).collect()
    }

    /// What `logger --tcp --octet-count --rfc5424` and `logger --tcp
    /// --rfc3164` sent on one connection.
    const LOGGER: &[u8] = b"99 <13>1 2026-12-07T11:28:08.442945+00:00 vm app1 - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] octet one<13>Dec  7 11:28:08 vm app2: lf one\n";

    #[test]
    fn octet_counting_and_lines_are_detected_per_message() {
        assert_eq!(
            messages(1024, &[LOGGER]),
            ok(&[
                "<13>1 2026-12-07T11:28:08.442945+00:00 vm app1 - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] octet one",
                "<13>Dec  7 11:28:08 vm app2: lf one",
            ])
        );
    }

    #[test]
    fn messages_split_across_reads_at_every_byte_come_out_whole() {
        let whole = messages(1024, &[LOGGER]);
        for cut in 0..=LOGGER.len() {
            assert_eq!(
                messages(1024, &[&LOGGER[..cut], &LOGGER[cut..]]),
                whole,
                "cut {cut}"
            );
        }
        let bytes: Vec<&[u8]> = LOGGER.chunks(1).collect();
        assert_eq!(messages(1024, &bytes), whole);
    }

    #[test]
    fn an_octet_counted_message_keeps_its_line_breaks_and_loses_its_trailing_lf() {
        // rsyslog's RSYSLOG_SyslogProtocol23Format ends in LF, inside the count.
        assert_eq!(
            messages(64, &[b"7 a\nb\nc\r\n4 xyz\n"]),
            ok(&["a\nb\nc", "xyz"])
        );
    }

    #[test]
    fn lines_end_at_lf_or_nul_and_lose_a_cr() {
        assert_eq!(
            messages(64, &[b"<13>one\r\n<13>two\0<13>three\0\n\n\r\n<13>four\n"]),
            ok(&["<13>one", "<13>two", "<13>three", "<13>four"])
        );
    }

    #[test]
    fn digits_without_a_space_start_a_line() {
        assert_eq!(
            messages(64, &[b"2026-12-07 no pri\n1234567890 ten digits\n12"]),
            ok(&["2026-12-07 no pri", "1234567890 ten digits"])
        );
    }

    #[test]
    fn a_line_waits_for_its_trailer() {
        let mut framer = TcpFramer::new(64);
        framer.push(b"<13>partial");
        assert_eq!(framer.next_message(), Ok(None));
        framer.push(b" line\n");
        assert_eq!(framer.next_message(), Ok(Some(&b"<13>partial line"[..])));
        assert_eq!(framer.next_message(), Ok(None));
        assert_eq!(framer.buffered_bytes(), 0);
    }

    #[test]
    fn an_oversized_counted_message_is_skipped_by_its_count() {
        let too_long = Err(TooLong {
            max_message_bytes: 4,
            declared: Some(5),
        });
        assert_eq!(
            messages(4, &[b"5 abc", b"de4 abcd"]),
            vec![too_long, Ok("abcd".to_owned())]
        );
    }

    #[test]
    fn an_oversized_line_is_reported_once_and_skipped_to_its_trailer() {
        let too_long = Err(TooLong {
            max_message_bytes: 4,
            declared: None,
        });
        assert_eq!(
            messages(4, &[b"abcdefg", b"hijk", b"lmn\nok\n"]),
            vec![too_long.clone(), Ok("ok".to_owned())]
        );
        // Found whole in one read.
        assert_eq!(
            messages(4, &[b"abcdef\nabcd\r\n"]),
            vec![too_long, Ok("abcd".to_owned())]
        );
    }

    #[test]
    fn the_buffer_stays_bounded_while_a_long_line_is_discarded() {
        let mut framer = TcpFramer::new(16);
        let chunk = [b'x'; 100];
        framer.push(&chunk);
        assert!(framer.next_message().is_err());
        for _ in 0..100 {
            framer.push(&chunk);
            assert_eq!(framer.next_message(), Ok(None));
            assert!(framer.buffered_bytes() <= 100);
        }
        framer.push(b"\nafter\n");
        assert_eq!(framer.next_message(), Ok(Some(&b"after"[..])));
    }

    #[test]
    fn a_count_of_zero_is_an_empty_frame() {
        assert_eq!(messages(8, &[b"0 3 abc"]), ok(&["abc"]));
    }

    #[test]
    fn udp_datagrams_are_one_message() {
        assert_eq!(udp_message(b"<13>x\n", 8), Ok(Some(&b"<13>x"[..])));
        assert_eq!(udp_message(b"\r\n\0", 8), Ok(None));
        assert_eq!(
            udp_message(b"<13>xxxxx", 8),
            Err(TooLong {
                max_message_bytes: 8,
                declared: None
            })
        );
    }
}
