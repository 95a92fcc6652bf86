//! Reading one final response: the head with httparse, then the body by
//! its framing (Content-Length, chunked, or until close), skipping interim
//! 1xx responses. Every read is bounded ([`MAX_RESPONSE_HEAD_BYTES`],
//! [`MAX_RESPONSE_BODY_BYTES`]); a head or body that cannot be trusted is
//! an error, never a guess (a server's bytes decide nothing by default).

use std::time::Duration;

use httparse::Status;

use super::conn::{fill, Connection};
use super::{DeadlineFn, HttpError, Response};

/// Largest response head (status line and headers) read.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 16 * 1024;
/// Most response headers parsed.
pub const MAX_RESPONSE_HEADERS: usize = 64;
/// Largest response body read (the collector's answers are small JSON).
pub const MAX_RESPONSE_BODY_BYTES: usize = 1024 * 1024;
/// Most interim (1xx) responses skipped before the final one.
const MAX_INTERIM_RESPONSES: usize = 8;

/// What the head says about the body and the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) status: u16,
    pub(super) head_len: usize,
    pub(super) framing: Framing,
    pub(super) close: bool,
    pub(super) retry_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads one final response; the bool says whether the connection may be
/// reused.
pub(super) fn read_response(
    conn: &mut Connection,
    read_timeout: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<(Response, bool), HttpError> {
    for _ in 0..=MAX_INTERIM_RESPONSES {
        let head = loop {
            if let Some(head) = parse_head(&conn.buf)? {
                break head;
            }
            if conn.buf.len() > MAX_RESPONSE_HEAD_BYTES {
                return Err(HttpError::TooLarge {
                    part: "head",
                    limit_bytes: MAX_RESPONSE_HEAD_BYTES,
                });
            }
            if fill(conn, read_timeout, deadline)? == 0 {
                return Err(HttpError::Closed);
            }
        };
        conn.buf.drain(..head.head_len);
        if (100..200).contains(&head.status) {
            continue;
        }
        let body = read_body(conn, head.framing, read_timeout, deadline)?;
        let keep_alive = !head.close && head.framing != Framing::UntilClose;
        let response = Response {
            status: head.status,
            retry_after: head.retry_after,
            body,
        };
        return Ok((response, keep_alive));
    }
    Err(HttpError::Malformed(
        "too many interim responses".to_owned(),
    ))
}

/// Parses a response head; `Ok(None)` when more bytes are needed.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let status = response
        .code
        .ok_or_else(|| HttpError::Malformed("no status code".to_owned()))?;
    if status == 101 {
        return Err(HttpError::Malformed(
            "unexpected protocol switch".to_owned(),
        ));
    }
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let (mut saw_close, mut saw_keep_alive) = (false, false);
    let mut retry_after = None;
    for header in response.headers.iter() {
        // A value that is not UTF-8 reads as empty: every header below
        // refuses or ignores an empty value.
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let length = parse_content_length(value)?;
            if content_length.is_some_and(|seen| seen != length) {
                return Err(HttpError::Malformed(
                    "conflicting Content-Length".to_owned(),
                ));
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                return Err(HttpError::Malformed(
                    "unsupported Transfer-Encoding".to_owned(),
                ));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                saw_close |= token.eq_ignore_ascii_case("close");
                saw_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            // Only the delay-seconds form; an HTTP date falls back to backoff.
            retry_after = value.parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    // `close` wins over `keep-alive` in any order; HTTP/1.0 closes unless
    // it asks to keep alive; a body framed both ways (chunked wins, RFC
    // 9112 §6.3) may hide a second response in it, so the connection is
    // not reused either.
    let close = saw_close
        || (response.version == Some(0) && !saw_keep_alive)
        || (chunked && content_length.is_some());
    let framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(length) = content_length {
        Framing::Length(length)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        head_len,
        framing,
        close,
        retry_after,
    }))
}

/// A Content-Length value: decimal digits only (`usize::from_str` would
/// take a leading `+`), and a value past `usize` is malformed, not a panic
/// or a wrap; the body bound is checked by the caller.
fn parse_content_length(value: &str) -> Result<usize, HttpError> {
    let malformed = || HttpError::Malformed("invalid Content-Length".to_owned());
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    value.parse::<usize>().map_err(|_| malformed())
}

fn read_body(
    conn: &mut Connection,
    framing: Framing,
    read_timeout: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<Vec<u8>, HttpError> {
    let too_large = HttpError::TooLarge {
        part: "body",
        limit_bytes: MAX_RESPONSE_BODY_BYTES,
    };
    match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(length) => {
            // Checked before reading, so a huge promise costs nothing.
            if length > MAX_RESPONSE_BODY_BYTES {
                return Err(too_large);
            }
            while conn.buf.len() < length {
                if fill(conn, read_timeout, deadline)? == 0 {
                    return Err(HttpError::Closed);
                }
            }
            Ok(conn.buf.drain(..length).collect())
        }
        Framing::Chunked => loop {
            if let Some((body, used)) = decode_chunked(&conn.buf, MAX_RESPONSE_BODY_BYTES)? {
                conn.buf.drain(..used);
                return Ok(body);
            }
            if conn.buf.len() > MAX_RESPONSE_BODY_BYTES + MAX_RESPONSE_HEAD_BYTES {
                return Err(too_large);
            }
            if fill(conn, read_timeout, deadline)? == 0 {
                return Err(HttpError::Closed);
            }
        },
        Framing::UntilClose => {
            while fill(conn, read_timeout, deadline)? > 0 {
                if conn.buf.len() > MAX_RESPONSE_BODY_BYTES {
                    return Err(too_large);
                }
            }
            Ok(std::mem::take(&mut conn.buf))
        }
    }
}

/// Decodes a complete chunked body at the start of `buf`: the body and the
/// bytes used, or `Ok(None)` when more bytes are needed.
pub(super) fn decode_chunked(
    buf: &[u8],
    max_body_bytes: usize,
) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let mut pos = 0;
    let mut body = Vec::new();
    // Each pass consumes at least one chunk-size line, so the loop ends
    // within buf.len() passes.
    while pos < buf.len() {
        let (used, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(Status::Complete(parsed)) => parsed,
            Ok(Status::Partial) => return Ok(None),
            Err(_) => return Err(HttpError::Malformed("invalid chunk size".to_owned())),
        };
        pos += used;
        if size == 0 {
            return Ok(skip_trailers(buf, pos).map(|end| (body, end)));
        }
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > max_body_bytes.saturating_sub(body.len()) {
            return Err(HttpError::TooLarge {
                part: "body",
                limit_bytes: max_body_bytes,
            });
        }
        // `size` is at most `max_body_bytes`, but checked all the same: a
        // caller may pass a large bound.
        let Some(chunk_end) = pos.checked_add(size) else {
            return Err(HttpError::Malformed("chunk size overflow".to_owned()));
        };
        let Some(crlf_end) = chunk_end.checked_add(2) else {
            return Err(HttpError::Malformed("chunk size overflow".to_owned()));
        };
        if buf.len() < crlf_end {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..chunk_end]);
        if &buf[chunk_end..crlf_end] != b"\r\n" {
            return Err(HttpError::Malformed(
                "chunk not followed by CRLF".to_owned(),
            ));
        }
        pos = crlf_end;
    }
    Ok(None)
}

/// After the last chunk: skips trailer lines up to the empty line; the
/// position after it, or `None` if it has not arrived.
fn skip_trailers(buf: &[u8], mut pos: usize) -> Option<usize> {
    while pos < buf.len() {
        let line_len = buf[pos..].windows(2).position(|w| w == b"\r\n")?;
        pos += line_len + 2;
        if line_len == 0 {
            return Some(pos);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_with_content_length_and_retry_after() {
        let raw =
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 5\r\n\r\nhello";
        let head = parse_head(raw).expect("parses").expect("complete");
        assert_eq!(head.status, 503);
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(head.retry_after, Some(Duration::from_secs(2)));
        assert!(!head.close);
        assert_eq!(&raw[head.head_len..], b"hello");
    }

    #[test]
    fn head_of_http_1_0_closes_and_reads_until_close() {
        let head = parse_head(b"HTTP/1.0 200 OK\r\n\r\n")
            .expect("parses")
            .expect("complete");
        assert!(head.close);
        assert_eq!(head.framing, Framing::UntilClose);
        let head = parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n")
            .expect("parses")
            .expect("complete");
        assert!(!head.close);
    }

    #[test]
    fn close_wins_over_keep_alive_in_any_order() {
        for connection in ["close, keep-alive", "keep-alive, close", "Keep-Alive,CLOSE"] {
            let raw =
                format!("HTTP/1.1 200 OK\r\nConnection: {connection}\r\nContent-Length: 0\r\n\r\n");
            let head = parse_head(raw.as_bytes())
                .expect("parses")
                .expect("complete");
            assert!(head.close, "{connection}");
        }
        let raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n";
        assert!(parse_head(raw).expect("parses").expect("complete").close);
    }

    #[test]
    fn a_body_framed_both_ways_is_read_chunked_and_the_connection_closed() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        let head = parse_head(raw).expect("parses").expect("complete");
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.close);
    }

    #[test]
    fn partial_head_asks_for_more_and_garbage_is_an_error() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
            .expect("ok")
            .is_none());
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n").is_err());
    }

    #[test]
    fn conflicting_content_lengths_are_malformed() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(parse_head(raw), Err(HttpError::Malformed(_))));
    }

    #[test]
    fn content_length_is_digits_within_usize() {
        let head = |value: &str| {
            let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
            parse_head(raw.as_bytes()).map(|h| h.expect("complete").framing)
        };
        assert_eq!(head(" 42 ").expect("valid"), Framing::Length(42));
        assert_eq!(
            head("18446744073709551615").expect("parses; the body bound refuses it"),
            Framing::Length(usize::MAX)
        );
        for bad in [
            "",
            "+5",
            "-1",
            "0x10",
            "5 5",
            "1e3",
            "99999999999999999999999",
        ] {
            assert!(matches!(head(bad), Err(HttpError::Malformed(_))), "{bad:?}");
        }
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: \xff\r\n\r\n";
        assert!(matches!(parse_head(raw), Err(HttpError::Malformed(_))));
    }

    #[test]
    fn chunked_body_decodes_with_extensions_and_trailers() {
        let raw = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (body, used) = decode_chunked(raw, 100).expect("valid").expect("complete");
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&raw[used..], b"NEXT");
    }

    #[test]
    fn chunked_body_waits_for_every_part() {
        let raw = b"4\r\nWiki\r\n0\r\n\r\n";
        for cut in 0..raw.len() {
            assert!(
                decode_chunked(&raw[..cut], 100).expect("valid").is_none(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn chunked_body_is_bounded_and_checked() {
        assert!(matches!(
            decode_chunked(b"ffffffffffffffff\r\n", 100),
            Err(HttpError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_chunked(b"ffffffffffffffff\r\n", usize::MAX),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunked(b"2\r\nabXX0\r\n\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunked(b"zz\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
    }
}
