//! HTTP/1.1 request framing with httparse: request heads, body framing
//! (Content-Length or chunked), and the shapes that must be refused
//! because two parsers could disagree on them (request smuggling).

use std::ops::Range;

/// Header names this server reads.
const H_CONTENT_LENGTH: &str = "content-length";
const H_TRANSFER_ENCODING: &str = "transfer-encoding";
const H_CONNECTION: &str = "connection";
const H_EXPECT: &str = "expect";
const H_CONTENT_ENCODING: &str = "content-encoding";
const H_CONTENT_TYPE: &str = "content-type";
const H_SENT_AT: &str = "helios-sent-at";
const H_RELAY: &str = "helios-relay";
const H_AUTHORIZATION: &str = "authorization";
/// Most hex digits a chunk size may have (16 TiB is plenty).
const MAX_CHUNK_SIZE_DIGITS: usize = 11;
/// Longest chunk-size line (size, extensions) we accept.
const MAX_CHUNK_LINE_BYTES: usize = 1024;

/// Limits on what one request may send.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Bytes of request line plus headers.
    pub max_header_bytes: usize,
    /// Number of headers.
    pub max_headers: usize,
    /// Body bytes on the wire (after chunk framing is removed).
    pub max_body_bytes: usize,
}

/// Which handler a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/v1/events`.
    Events,
    /// `/healthz`.
    Healthz,
    /// `/readyz`.
    Readyz,
    /// `/metrics`.
    Metrics,
    /// A shipper's protocol (OTLP, Elasticsearch, Splunk HEC, Loki).
    Shipper(helios_shippers::Endpoint),
    /// Anything else.
    NotFound,
}

/// Request methods this server distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// POST.
    Post,
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// PUT (Elasticsearch's bulk takes it).
    Put,
    /// Any other.
    Other,
}

/// How the body is encoded (Content-Encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No encoding.
    Identity,
    /// gzip.
    Gzip,
    /// zstd (RFC 8878).
    Zstd,
    /// `snappy`: only Loki's protobuf pushes say it (their body is always
    /// snappy-compressed, so Loki reads it as a no-op); 415 elsewhere.
    Snappy,
    /// Anything else: 415.
    Unsupported,
}

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no Content-Length, no Transfer-Encoding).
    None,
    /// Content-Length bytes.
    Length(usize),
    /// Transfer-Encoding: chunked.
    Chunked,
}

/// A parsed request head. Ranges index the buffer it was parsed from.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// Method.
    pub method: Method,
    /// Target route.
    pub route: Route,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// Body framing.
    pub framing: Framing,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// Content-Encoding.
    pub encoding: Encoding,
    /// Content-Type is NDJSON.
    pub ndjson: bool,
    /// Value of `Helios-Sent-At`, if any.
    pub sent_at: Option<Range<usize>>,
    /// `Helios-Relay: 1` was sent.
    pub relay: bool,
    /// Value of `Authorization`, if any.
    pub authorization: Option<Range<usize>>,
    /// The request target's path (before any `?`).
    pub path: Range<usize>,
    /// The request target's query string (after `?`, empty when none).
    pub query: Range<usize>,
    /// Value of `Content-Type`, if any.
    pub content_type: Option<Range<usize>>,
    /// Length of the head in bytes.
    pub head_len: usize,
}

/// Why a request is refused before its body is looked at. Every variant
/// closes the connection: after a framing error the byte stream cannot be
/// trusted to hold another request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// 400 with a reason.
    BadRequest(&'static str),
    /// 431.
    HeadersTooLarge,
    /// 411.
    LengthRequired,
    /// 413: body larger than `max_body_bytes`.
    BodyTooLarge,
}

impl HttpError {
    /// The status code it maps to.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::HeadersTooLarge => 431,
            HttpError::LengthRequired => 411,
            HttpError::BodyTooLarge => 413,
        }
    }

    /// Detail text for the JSON error body.
    pub fn detail(&self) -> &'static str {
        match self {
            HttpError::BadRequest(why) => why,
            HttpError::HeadersTooLarge => "request head exceeds the header limits",
            HttpError::LengthRequired => "POST needs Content-Length or chunked Transfer-Encoding",
            HttpError::BodyTooLarge => "body exceeds max_body_bytes",
        }
    }
}

/// Parses the head at the start of `buf`. `Ok(None)`: incomplete, read
/// more (unless `buf` already exceeds `max_header_bytes`).
pub fn parse_head(buf: &[u8], limits: &HttpLimits) -> Result<Option<RequestHead>, HttpError> {
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let headers = &mut storage[..limits.max_headers.min(128)];
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_header_bytes {
                return Err(HttpError::HeadersTooLarge);
            }
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Version) => {
            return Err(HttpError::BadRequest("unsupported HTTP version"))
        }
        Err(_) => return Err(HttpError::BadRequest("malformed request head")),
    };
    if head_len > limits.max_header_bytes {
        return Err(HttpError::HeadersTooLarge);
    }
    let version_minor = req.version.unwrap_or(1);
    let method = match req.method {
        Some("POST") => Method::Post,
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("PUT") => Method::Put,
        _ => Method::Other,
    };
    let base = buf.as_ptr() as usize;
    let target = req.path.unwrap_or("");
    // Both halves borrow from `buf` (an empty query is the empty tail), so
    // their ranges index it.
    let (path, query) = target
        .split_once('?')
        .unwrap_or((target, &target[target.len()..]));
    let range_of = |part: &str| {
        let start = part.as_ptr() as usize - base;
        start..start + part.len()
    };
    let (path_range, query_range) = (range_of(path), range_of(query));
    let route = match path {
        "/v1/events" => Route::Events,
        "/healthz" => Route::Healthz,
        "/readyz" => Route::Readyz,
        "/metrics" => Route::Metrics,
        _ => helios_shippers::route(path).map_or(Route::NotFound, Route::Shipper),
    };
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    // `close` anywhere wins over `keep-alive` (RFC 9112 §9.6).
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    let mut expect_continue = false;
    let mut encoding = Encoding::Identity;
    let mut ndjson = false;
    let mut sent_at = None;
    let mut relay = false;
    let mut authorization = None;
    let mut content_type = None;
    for h in req.headers.iter() {
        let name = h.name;
        let value = trim(h.value);
        if name.eq_ignore_ascii_case(H_CONTENT_LENGTH) {
            if content_length.is_some() {
                return Err(HttpError::BadRequest("duplicate Content-Length"));
            }
            content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case(H_TRANSFER_ENCODING) {
            if chunked || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::BadRequest(
                    "only a single 'Transfer-Encoding: chunked' is supported",
                ));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(H_CONNECTION) {
            for token in value.split(|&b| b == b',') {
                let token = trim(token);
                if token.eq_ignore_ascii_case(b"close") {
                    connection_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    connection_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(H_EXPECT) {
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(HttpError::BadRequest("unsupported Expect"));
            }
            expect_continue = version_minor == 1;
        } else if name.eq_ignore_ascii_case(H_CONTENT_ENCODING) {
            encoding = if value.is_empty() || value.eq_ignore_ascii_case(b"identity") {
                Encoding::Identity
            } else if value.eq_ignore_ascii_case(b"gzip") || value.eq_ignore_ascii_case(b"x-gzip") {
                Encoding::Gzip
            } else if value.eq_ignore_ascii_case(b"zstd") {
                Encoding::Zstd
            } else if value.eq_ignore_ascii_case(b"snappy") {
                Encoding::Snappy
            } else {
                Encoding::Unsupported
            };
        } else if name.eq_ignore_ascii_case(H_CONTENT_TYPE) {
            let start = value.as_ptr() as usize - base;
            content_type = Some(start..start + value.len());
            let mime = value.split(|&b| b == b';').next().map(trim).unwrap_or(b"");
            ndjson = mime.eq_ignore_ascii_case(b"application/x-ndjson")
                || mime.eq_ignore_ascii_case(b"application/ndjson")
                || mime.eq_ignore_ascii_case(b"application/jsonlines");
        } else if name.eq_ignore_ascii_case(H_SENT_AT) {
            let start = value.as_ptr() as usize - base;
            sent_at = Some(start..start + value.len());
        } else if name.eq_ignore_ascii_case(H_RELAY) {
            relay = value == b"1";
        } else if name.eq_ignore_ascii_case(H_AUTHORIZATION) {
            let start = value.as_ptr() as usize - base;
            authorization = Some(start..start + value.len());
        }
    }
    if chunked && content_length.is_some() {
        return Err(HttpError::BadRequest(
            "both Content-Length and Transfer-Encoding",
        ));
    }
    if chunked && version_minor == 0 {
        return Err(HttpError::BadRequest(
            "chunked encoding in an HTTP/1.0 request",
        ));
    }
    let framing = match (chunked, content_length) {
        (true, _) => Framing::Chunked,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::None,
    };
    if let Framing::Length(n) = framing {
        if n > limits.max_body_bytes {
            return Err(HttpError::BodyTooLarge);
        }
    }
    if matches!(method, Method::Post | Method::Put) && framing == Framing::None {
        return Err(HttpError::LengthRequired);
    }
    let keep_alive = !connection_close && (version_minor == 1 || connection_keep_alive);
    Ok(Some(RequestHead {
        method,
        route,
        version_minor,
        keep_alive,
        framing,
        expect_continue,
        encoding,
        ndjson,
        sent_at,
        relay,
        authorization,
        path: path_range,
        query: query_range,
        content_type,
        head_len,
    }))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn parse_content_length(v: &[u8]) -> Result<usize, HttpError> {
    if v.is_empty() || v.len() > 15 || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadRequest("invalid Content-Length"));
    }
    Ok(v.iter().fold(0usize, |n, d| n * 10 + (d - b'0') as usize))
}

/// Incremental decoder for a chunked body: feed it bytes as they arrive;
/// it appends the data to `out` and says when the body (with trailers)
/// is complete.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// Data bytes decoded so far.
    decoded: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside chunk data, this many bytes left.
    Data(usize),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
    /// Done.
    Done,
}

/// Progress of a chunked decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkProgress {
    /// Need more input; all of the given input was consumed.
    NeedMore(usize),
    /// Body complete after consuming this many bytes of the input.
    Done(usize),
}

impl ChunkedDecoder {
    /// Consumes from `input`, appending data to `out`.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_body_bytes: usize,
    ) -> Result<ChunkProgress, HttpError> {
        let mut at = 0usize;
        loop {
            match self.state {
                ChunkState::Done => return Ok(ChunkProgress::Done(at)),
                ChunkState::Size => {
                    let Some(line_len) = find_crlf(&input[at..]) else {
                        if input.len() - at > MAX_CHUNK_LINE_BYTES {
                            return Err(HttpError::BadRequest("chunk size line too long"));
                        }
                        return Ok(ChunkProgress::NeedMore(at));
                    };
                    let line = &input[at..at + line_len];
                    let size_part = line.split(|&b| b == b';').next().unwrap_or(b"");
                    let size = parse_chunk_size(size_part)?;
                    at += line_len + 2;
                    if size == 0 {
                        self.state = ChunkState::Trailer;
                    } else {
                        if self.decoded + size > max_body_bytes {
                            return Err(HttpError::BodyTooLarge);
                        }
                        self.state = ChunkState::Data(size);
                    }
                }
                ChunkState::Data(left) => {
                    let n = left.min(input.len() - at);
                    out.extend_from_slice(&input[at..at + n]);
                    self.decoded += n;
                    at += n;
                    if n == left {
                        self.state = ChunkState::DataEnd;
                    } else {
                        self.state = ChunkState::Data(left - n);
                        return Ok(ChunkProgress::NeedMore(at));
                    }
                }
                ChunkState::DataEnd => {
                    if input.len() - at < 2 {
                        return Ok(ChunkProgress::NeedMore(at));
                    }
                    if &input[at..at + 2] != b"\r\n" {
                        return Err(HttpError::BadRequest("chunk data not followed by CRLF"));
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line_len) = find_crlf(&input[at..]) else {
                        if input.len() - at > MAX_CHUNK_LINE_BYTES {
                            return Err(HttpError::BadRequest("trailer line too long"));
                        }
                        return Ok(ChunkProgress::NeedMore(at));
                    };
                    at += line_len + 2;
                    if line_len == 0 {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn parse_chunk_size(v: &[u8]) -> Result<usize, HttpError> {
    // No whitespace, no sign, no 0x: anything lenient here is a smuggling
    // vector when a proxy in front parses it differently.
    if v.is_empty() || v.len() > MAX_CHUNK_SIZE_DIGITS || !v.iter().all(u8::is_ascii_hexdigit) {
        return Err(HttpError::BadRequest("invalid chunk size"));
    }
    let mut n = 0usize;
    for &d in v {
        let digit = (d as char).to_digit(16).unwrap_or(0) as usize;
        n = n * 16 + digit;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HttpLimits = HttpLimits {
        max_header_bytes: 8192,
        max_headers: 64,
        max_body_bytes: 1 << 20,
    };

    fn head(s: &str) -> Result<Option<RequestHead>, HttpError> {
        parse_head(s.as_bytes(), &LIMITS)
    }

    #[test]
    fn a_post_with_content_length_parses() {
        let h = head("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.method, h.route, h.framing, h.keep_alive),
            (Method::Post, Route::Events, Framing::Length(12), true)
        );
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert_eq!(
            head("POST /v1/events HTTP/1.1\r\nContent-Le")
                .unwrap()
                .map(|h| h.head_len),
            None
        );
    }

    #[test]
    fn connection_close_wins_over_keep_alive_in_any_order() {
        for connection in [
            "Connection: close, keep-alive\r\n",
            "Connection: keep-alive, close\r\n",
            "Connection: keep-alive\r\nConnection: close\r\n",
            "Connection: close\r\nConnection: keep-alive\r\n",
        ] {
            for version in ["1.0", "1.1"] {
                let h = head(&format!("GET /healthz HTTP/{version}\r\n{connection}\r\n"))
                    .unwrap()
                    .unwrap();
                assert!(!h.keep_alive, "{version} {connection:?}");
            }
        }
    }

    #[test]
    fn http10_closes_unless_keep_alive() {
        let h = head("POST /v1/events HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h =
            head("POST /v1/events HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn smuggling_shapes_are_bad_requests() {
        for req in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nX-A: 1\r\n folded\r\nContent-Length: 1\r\n\r\n",
        ] {
            assert_eq!(head(req).unwrap_err().status(), 400, "{req:?}");
        }
    }

    #[test]
    fn a_post_without_length_gets_411() {
        assert_eq!(
            head("POST /v1/events HTTP/1.1\r\n\r\n").unwrap_err(),
            HttpError::LengthRequired
        );
    }

    #[test]
    fn a_declared_body_over_the_limit_gets_413() {
        let req = format!(
            "POST /v1/events HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            LIMITS.max_body_bytes + 1
        );
        assert_eq!(head(&req).unwrap_err(), HttpError::BodyTooLarge);
    }

    #[test]
    fn too_many_or_too_large_headers_get_431() {
        let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(head(&req).unwrap_err(), HttpError::HeadersTooLarge);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(9000));
        assert_eq!(head(&big).unwrap_err(), HttpError::HeadersTooLarge);
    }

    #[test]
    fn headers_helios_reads_are_found() {
        let req = "POST /v1/events?x=1 HTTP/1.1\r\nContent-Type: application/x-ndjson; charset=utf-8\r\n\
                   Content-Encoding: gzip\r\nExpect: 100-continue\r\nHelios-Sent-At: 1700000000000\r\n\
                   Helios-Relay: 1\r\nContent-Length: 3\r\n\r\n";
        let h = head(req).unwrap().unwrap();
        assert!(h.ndjson && h.expect_continue && h.relay);
        assert_eq!(h.encoding, Encoding::Gzip);
        assert_eq!(&req.as_bytes()[h.sent_at.unwrap()], b"1700000000000");
        assert_eq!(h.route, Route::Events);
    }

    #[test]
    fn content_encodings_are_told_apart() {
        for (value, encoding) in [
            ("gzip", Encoding::Gzip),
            ("X-GZIP", Encoding::Gzip),
            ("zstd", Encoding::Zstd),
            ("ZStd", Encoding::Zstd),
            ("identity", Encoding::Identity),
            ("snappy", Encoding::Snappy),
            ("br", Encoding::Unsupported),
            ("zstd, gzip", Encoding::Unsupported),
        ] {
            let req = format!("POST /v1/events HTTP/1.1\r\nContent-Encoding: {value}\r\nContent-Length: 1\r\n\r\n");
            assert_eq!(head(&req).unwrap().unwrap().encoding, encoding, "{value}");
        }
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
        for split in 0..wire.len() {
            let mut d = ChunkedDecoder::default();
            let mut out = Vec::new();
            let first = d.feed(&wire[..split], &mut out, 1 << 20).unwrap();
            let ChunkProgress::NeedMore(used) = first else {
                // Complete before the split: only possible once the end is in.
                assert!(split >= wire.len() - 4);
                continue;
            };
            let rest = d.feed(&wire[used..], &mut out, 1 << 20).unwrap();
            assert_eq!(
                rest,
                ChunkProgress::Done(wire.len() - 4 - used),
                "split {split}"
            );
            assert_eq!(out, b"hello, world");
        }
    }

    #[test]
    fn bad_chunk_sizes_are_rejected() {
        for wire in [
            &b"-5\r\n"[..],
            b" 5\r\n",
            b"0x5\r\n",
            b"fffffffffffffffff\r\n",
            b"\r\n",
        ] {
            let err = ChunkedDecoder::default()
                .feed(wire, &mut Vec::new(), 1 << 20)
                .unwrap_err();
            assert_eq!(err.status(), 400, "{wire:?}");
        }
    }

    #[test]
    fn chunk_data_must_end_with_crlf() {
        let err = ChunkedDecoder::default()
            .feed(b"3\r\nabcXY", &mut Vec::new(), 1 << 20)
            .unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn chunked_bodies_over_the_limit_get_413() {
        let err = ChunkedDecoder::default()
            .feed(b"10\r\n", &mut Vec::new(), 8)
            .unwrap_err();
        assert_eq!(err, HttpError::BodyTooLarge);
    }
}
