//! Minimal HTTP/1.x response parsing: status line and framing headers with
//! httparse, Content-Length or chunked bodies, keep-alive vs close, and the
//! `rejected` list of a Helios ack for `--ids-out`.
//!
//! Parsing never panics and never guesses: bytes are a complete response, a
//! prefix of one, or a precise [`ResponseError`].

use std::fmt;

use serde::Deserialize;

/// Most headers in one response.
pub const MAX_RESPONSE_HEADERS: usize = 64;

/// Where a complete response's body lies in the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Plain bytes `start..end`.
    Plain {
        /// Offset of the first body byte, from the start of the response.
        start: usize,
        /// Offset just past the last body byte.
        end: usize,
    },
    /// Chunked encoding `start..end` (chunk framing included; see [`dechunk`]).
    Chunked {
        /// Offset of the first chunk-size line, from the start of the response.
        start: usize,
        /// Offset just past the last chunk and trailer section.
        end: usize,
    },
}

/// One complete response at the start of the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Bytes of the buffer this response occupies.
    pub len: usize,
    /// Where the body lies, as offsets from the start of the response.
    pub body: Body,
    /// The server will close the connection after this response.
    pub close: bool,
    /// A 1xx interim response (e.g. 100 Continue): not the final answer.
    pub interim: bool,
}

/// What [`parse_response`] found at the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes needed.
    Partial,
    /// A whole response; it may be interim (see [`Response::interim`]).
    Complete(Response),
    /// Neither Content-Length nor chunked: the body ends when the server
    /// closes the connection.
    UntilClose {
        /// The status code.
        status: u16,
        /// Length of the status line and headers, in bytes; the body starts there.
        head_len: usize,
    },
}

/// Why bytes are not a valid HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// A malformed status line or header block (httparse's message).
    Head(String),
    /// A Content-Length that is not a decimal number, or two that differ.
    ContentLength,
    /// Malformed chunked framing.
    Chunk,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Head(e) => write!(f, "malformed response head: {e}"),
            ResponseError::ContentLength => f.write_str("invalid or duplicate Content-Length"),
            ResponseError::Chunk => f.write_str("malformed chunked body"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Parses the response at the start of `buf`.
pub fn parse_response(buf: &[u8]) -> Result<Parsed, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(ResponseError::Head(e.to_string())),
    };
    let status = response
        .code
        .ok_or_else(|| ResponseError::Head("no status".into()))?;
    let http10 = response.version == Some(0);
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut close = http10;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse().ok())
                .ok_or(ResponseError::ContentLength)?;
            if content_length.is_some_and(|l| l != len) {
                return Err(ResponseError::ContentLength);
            }
            content_length = Some(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = last_token_is(h.value, b"chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if has_token(h.value, b"close") {
                close = true;
            } else if has_token(h.value, b"keep-alive") {
                close = false;
            }
        }
    }
    let interim = (100..200).contains(&status);
    let bodyless = interim || status == 204 || status == 304;
    let body = if bodyless {
        Body::Plain {
            start: head_len,
            end: head_len,
        }
    } else if chunked {
        match chunked_end(&buf[head_len..])? {
            Some(n) => Body::Chunked {
                start: head_len,
                end: head_len + n,
            },
            None => return Ok(Parsed::Partial),
        }
    } else if let Some(len) = content_length {
        let end = head_len
            .checked_add(len)
            .ok_or(ResponseError::ContentLength)?;
        if buf.len() < end {
            return Ok(Parsed::Partial);
        }
        Body::Plain {
            start: head_len,
            end,
        }
    } else {
        return Ok(Parsed::UntilClose { status, head_len });
    };
    let len = match body {
        Body::Plain { end, .. } | Body::Chunked { end, .. } => end,
    };
    Ok(Parsed::Complete(Response {
        status,
        len,
        body,
        close,
        interim,
    }))
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(|t| t.trim_ascii())
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    tokens(value)
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(token))
}

/// Length of a complete chunked body at the start of `buf` (through the
/// last chunk and trailers), or `None` if more bytes are needed.
fn chunked_end(buf: &[u8]) -> Result<Option<usize>, ResponseError> {
    let mut pos = 0;
    loop {
        let Some(line_len) = find_crlf(&buf[pos..]) else {
            return Ok(None);
        };
        let size = chunk_size(&buf[pos..pos + line_len])?;
        pos += line_len + 2;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                let Some(line_len) = find_crlf(&buf[pos..]) else {
                    return Ok(None);
                };
                pos += line_len + 2;
                if line_len == 0 {
                    return Ok(Some(pos));
                }
            }
        }
        let data_end = pos.checked_add(size).ok_or(ResponseError::Chunk)?;
        if buf.len() < data_end + 2 {
            return Ok(None);
        }
        if &buf[data_end..data_end + 2] != b"\r\n" {
            return Err(ResponseError::Chunk);
        }
        pos = data_end + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn chunk_size(line: &[u8]) -> Result<usize, ResponseError> {
    let hex = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or(line)
        .trim_ascii();
    if hex.is_empty() || hex.len() > 15 {
        return Err(ResponseError::Chunk);
    }
    hex.iter().try_fold(0usize, |acc, &b| {
        let digit = (b as char).to_digit(16).ok_or(ResponseError::Chunk)?;
        Ok(acc * 16 + digit as usize)
    })
}

/// Appends the data of a complete chunked body (as located by
/// [`parse_response`]) to `out`.
pub fn dechunk(raw: &[u8], out: &mut Vec<u8>) -> Result<(), ResponseError> {
    let mut pos = 0;
    loop {
        let line_len = find_crlf(&raw[pos..]).ok_or(ResponseError::Chunk)?;
        let size = chunk_size(&raw[pos..pos + line_len])?;
        pos += line_len + 2;
        if size == 0 {
            return Ok(());
        }
        let data = raw.get(pos..pos + size).ok_or(ResponseError::Chunk)?;
        out.extend_from_slice(data);
        pos += size + 2;
    }
}

#[derive(Deserialize)]
struct AckBody {
    #[serde(default)]
    rejected: Vec<Rejected>,
}

#[derive(Deserialize)]
struct Rejected {
    index: usize,
}

/// Indices of rejected events in a 2xx ack body, appended to `out`.
///
/// A 2xx means "durable" (DESIGN §3), so a body that is empty, not JSON or
/// has no `rejected` list acks every event; only listed indices are excluded.
pub fn rejected_indices(body: &[u8], out: &mut Vec<usize>) {
    if let Ok(ack) = serde_json::from_slice::<AckBody>(body) {
        out.extend(ack.rejected.iter().map(|r| r.index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> Response {
        match parse_response(buf).unwrap() {
            Parsed::Complete(r) => r,
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn content_length_responses_parse_in_sequence() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n";
        let a = complete(two);
        assert_eq!((a.status, a.close, a.interim), (200, false, false));
        assert_eq!(a.body, Body::Plain { start: 38, end: 40 });
        let b = complete(&two[a.len..]);
        assert_eq!((b.status, b.len), (204, two.len() - a.len));
        for cut in 0..a.len {
            assert_eq!(
                parse_response(&two[..cut]).unwrap(),
                Parsed::Partial,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn close_and_http10_are_detected() {
        let r = complete(b"HTTP/1.1 503 X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(r.close);
        assert!(complete(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").close);
        let keep = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!complete(keep).close);
        let until = b"HTTP/1.0 200 OK\r\n\r\nabc";
        assert_eq!(
            parse_response(until).unwrap(),
            Parsed::UntilClose {
                status: 200,
                head_len: 19
            }
        );
    }

    #[test]
    fn chunked_bodies_are_framed_and_decoded() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nT: v\r\n\r\nNEXT";
        let r = complete(raw);
        assert_eq!(r.len, raw.len() - 4);
        let Body::Chunked { start, end } = r.body else {
            panic!()
        };
        let mut out = Vec::new();
        dechunk(&raw[start..end], &mut out).unwrap();
        assert_eq!(out, b"{\"a\":1}");
        for cut in 48..r.len {
            assert_eq!(
                parse_response(&raw[..cut]).unwrap(),
                Parsed::Partial,
                "cut {cut}"
            );
        }
        let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(parse_response(bad), Err(ResponseError::Chunk));
    }

    #[test]
    fn bad_heads_and_lengths_are_errors() {
        assert!(matches!(
            parse_response(b"HTTX/1.1 200\r\n\r\n"),
            Err(ResponseError::Head(_))
        ));
        let dup = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(parse_response(dup), Err(ResponseError::ContentLength));
        let neg = b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
        assert_eq!(parse_response(neg), Err(ResponseError::ContentLength));
    }

    #[test]
    fn interim_responses_are_flagged() {
        let r = complete(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert!(r.interim);
    }

    #[test]
    fn rejected_indices_are_extracted() {
        let mut out = Vec::new();
        rejected_indices(br#"{"accepted":3,"rejected":[]}"#, &mut out);
        assert!(out.is_empty());
        rejected_indices(
            br#"{"accepted":1,"rejected":[{"index":0,"error":"x"},{"index":2,"error":"y"}]}"#,
            &mut out,
        );
        assert_eq!(out, [0, 2]);
        out.clear();
        rejected_indices(b"", &mut out);
        rejected_indices(b"ok", &mut out);
        assert!(out.is_empty());
    }
}
