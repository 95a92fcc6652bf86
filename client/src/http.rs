//! HTTP/1.1 client for `POST /v1/events`: std `TcpStream` plus `httparse`.
//!
//! Why not an HTTP client crate: the client needs one request shape, one
//! connection per endpoint at a time (a single sender thread, no
//! pipelining), blocking I/O with per-read deadlines, and hard bounds on
//! everything it reads from the network. `ureq`/`reqwest`/`hyper` bring TLS
//! stacks, async runtimes or connection pools, tens of crates of build time
//! and their own retry/redirect/timeout policies that would have to be
//! switched off so that ours (sender.rs) stay the only ones. `httparse` is
//! the parser the collector uses, is zero-copy, never panics on input and
//! has no dependencies; with it the response side is ~200 lines we can
//! bound and test (Content-Length, chunked, read-to-close, 1xx interim).
//! Plain `http://` only for now; TLS belongs to a relay or load balancer.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use httparse::Status;

/// Path appended to an endpoint's prefix.
pub const EVENTS_PATH: &str = "/v1/events";
/// Largest response head (status line and headers) read.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 16 * 1024;
/// Most response headers parsed.
pub const MAX_RESPONSE_HEADERS: usize = 64;
/// Largest response body read (the collector's answers are small JSON).
pub const MAX_RESPONSE_BODY_BYTES: usize = 1024 * 1024;
/// Most interim (1xx) responses skipped before the final one.
const MAX_INTERIM_RESPONSES: usize = 8;
/// Bytes read per `read()` call.
const READ_CHUNK_BYTES: usize = 8 * 1024;
/// Longest a blocking read or write waits before re-checking the shutdown
/// deadline.
const IO_POLL_SLICE_MS: u64 = 50;
const DEFAULT_HTTP_PORT: u16 = 80;

/// An endpoint URL the builder could not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Only `http://` is supported.
    #[error("only http:// URLs are supported (TLS: use a relay or load balancer)")]
    UnsupportedScheme,
    /// No host between `http://` and the path.
    #[error("missing host")]
    MissingHost,
    /// The port is not a number in 1..=65535.
    #[error("invalid port")]
    InvalidPort,
    /// User info, query, fragment, spaces or control characters.
    #[error("URL may not contain user info, query, fragment, spaces or control characters")]
    UnsupportedPart,
}

/// A parsed `http://host[:port][/prefix]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The URL as given, for logs.
    pub(crate) url: String,
    /// Host name or IP literal without brackets, for resolving.
    host: String,
    port: u16,
    /// `Host` header value: `host[:port]` as written in the URL.
    authority: String,
    /// Request target: `<prefix>/v1/events`.
    target: String,
}

impl Endpoint {
    /// Parses an endpoint URL.
    pub(crate) fn parse(url: &str) -> Result<Self, EndpointError> {
        let scheme_len = "http://".len();
        if url.len() < scheme_len || !url[..scheme_len].eq_ignore_ascii_case("http://") {
            return Err(EndpointError::UnsupportedScheme);
        }
        let rest = &url[scheme_len..];
        if rest
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#' || b == b'@')
        {
            return Err(EndpointError::UnsupportedPart);
        }
        let (authority, prefix) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority)?;
        Ok(Endpoint {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            authority: authority.to_owned(),
            target: format!("{}{EVENTS_PATH}", prefix.trim_end_matches('/')),
        })
    }
}

fn split_host_port(authority: &str) -> Result<(&str, u16), EndpointError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port
        let close = bracketed.find(']').ok_or(EndpointError::MissingHost)?;
        let after = &bracketed[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(EndpointError::InvalidPort),
        };
        (&bracketed[..close], port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(EndpointError::MissingHost);
    }
    let port = match port {
        None => DEFAULT_HTTP_PORT,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(EndpointError::InvalidPort),
        },
    };
    Ok((host, port))
}

/// A failed attempt at the HTTP level. Every variant is worth a retry
/// (possibly on another endpoint); the sender decides.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host as configured.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No resolved address accepted a connection.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// The last address tried.
        addr: String,
        /// Why it failed.
        source: io::Error,
    },
    /// Sending the request failed.
    #[error("write failed: {0}")]
    Write(#[source] io::Error),
    /// Reading the response failed.
    #[error("read failed: {0}")]
    Read(#[source] io::Error),
    /// The read or write timeout (or the shutdown deadline) passed.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server closed the connection before a complete response.
    #[error("connection closed before a complete response")]
    Closed,
    /// The bytes received are not an HTTP/1.x response.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A response part exceeded its bound.
    #[error("response {part} larger than {limit_bytes} bytes")]
    TooLarge {
        /// Which part: head or body.
        part: &'static str,
        /// The bound it exceeded.
        limit_bytes: usize,
    },
}

/// Connection and I/O time limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) read: Duration,
    pub(crate) write: Duration,
}

/// One request to send.
#[derive(Debug)]
pub(crate) struct PostRequest<'a> {
    /// NDJSON body, already gzipped when `gzip`.
    pub(crate) body: &'a [u8],
    pub(crate) gzip: bool,
    pub(crate) api_key: Option<&'a str>,
    /// `Helios-Sent-At`, epoch ms, fresh per attempt.
    pub(crate) sent_at_unix_ms: u64,
}

/// A final (non-1xx) response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// `Retry-After` in seconds, when given as a number.
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

/// A kept-alive connection and the bytes read from it but not yet used.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// Sends requests, keeping at most one idle connection per endpoint.
#[derive(Debug)]
pub(crate) struct Transport {
    endpoints: Vec<Endpoint>,
    idle: Vec<Option<Connection>>,
    timeouts: Timeouts,
    request_buf: Vec<u8>,
}

impl Transport {
    /// A transport with no connection open yet.
    pub(crate) fn new(endpoints: Vec<Endpoint>, timeouts: Timeouts) -> Self {
        let idle = endpoints.iter().map(|_| None).collect();
        Transport {
            endpoints,
            idle,
            timeouts,
            request_buf: Vec::new(),
        }
    }

    /// How many endpoints there are.
    pub(crate) fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The URL of endpoint `index`, for logs.
    pub(crate) fn url(&self, index: usize) -> &str {
        self.endpoints
            .get(index)
            .map_or("<no endpoint>", |e| e.url.as_str())
    }

    /// POSTs `request` to endpoint `index` and reads the final response.
    /// I/O stops once `deadline()` (re-read while waiting) has passed.
    pub(crate) fn post(
        &mut self,
        index: usize,
        request: &PostRequest<'_>,
        deadline: DeadlineFn<'_>,
    ) -> Result<Response, HttpError> {
        let Some(endpoint) = self.endpoints.get(index) else {
            return Err(HttpError::Malformed("no such endpoint".to_owned()));
        };
        let reused = self
            .idle
            .get_mut(index)
            .and_then(Option::take)
            .filter(|conn| is_idle_and_open(&conn.stream));
        let mut conn = match reused {
            Some(conn) => conn,
            None => connect(endpoint, self.timeouts.connect, deadline())?,
        };
        write_head(&mut self.request_buf, endpoint, request);
        self.request_buf.extend_from_slice(request.body);
        send_all(
            &mut conn.stream,
            &self.request_buf,
            self.timeouts.write,
            deadline,
        )?;
        let (response, keep_alive) = read_response(&mut conn, self.timeouts.read, deadline)?;
        if keep_alive && conn.buf.is_empty() {
            if let Some(slot) = self.idle.get_mut(index) {
                *slot = Some(conn);
            }
        }
        Ok(response)
    }
}

/// A kept connection is worth reusing only if the server has not closed it
/// (or sent unsolicited bytes) while it sat idle.
fn is_idle_and_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut probe = [0u8; 1];
    let quiet = matches!(stream.peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    stream.set_nonblocking(false).is_ok() && quiet
}

fn connect(
    endpoint: &Endpoint,
    connect_timeout: Duration,
    deadline: Option<Instant>,
) -> Result<Connection, HttpError> {
    let addrs: Vec<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|source| HttpError::Resolve {
            host: endpoint.host.clone(),
            source,
        })?
        .collect();
    let mut last_error = HttpError::Resolve {
        host: endpoint.host.clone(),
        source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
    };
    for addr in addrs {
        let timeout = bounded_timeout(connect_timeout, deadline)?;
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                // Head and body go in one write, but a lone small request
                // must not wait for a delayed ACK either.
                stream.set_nodelay(true).map_err(HttpError::Write)?;
                return Ok(Connection {
                    stream,
                    buf: Vec::with_capacity(READ_CHUNK_BYTES),
                });
            }
            Err(source) => {
                last_error = HttpError::Connect {
                    addr: addr.to_string(),
                    source,
                }
            }
        }
    }
    Err(last_error)
}

/// `limit`, shortened to what is left before `deadline`; `Timeout` if
/// nothing is left.
fn bounded_timeout(limit: Duration, deadline: Option<Instant>) -> Result<Duration, HttpError> {
    let timeout = match deadline {
        Some(deadline) => limit.min(deadline.saturating_duration_since(Instant::now())),
        None => limit,
    };
    if timeout.is_zero() {
        return Err(HttpError::Timeout);
    }
    Ok(timeout)
}

/// The shutdown deadline, read afresh: a shutdown can start while an
/// attempt is blocked in I/O.
pub(crate) type DeadlineFn<'a> = &'a dyn Fn() -> Option<Instant>;

/// Time limits of one blocking read or write loop: `idle` without progress,
/// and the shutdown deadline, checked every [`IO_POLL_SLICE_MS`].
struct IoBudget<'a> {
    idle: Duration,
    deadline: DeadlineFn<'a>,
    idle_since: Instant,
}

impl<'a> IoBudget<'a> {
    fn new(idle: Duration, deadline: DeadlineFn<'a>) -> Self {
        IoBudget {
            idle,
            deadline,
            idle_since: Instant::now(),
        }
    }

    /// How long the next blocking call may wait, or `Timeout`.
    fn next_slice(&self) -> Result<Duration, HttpError> {
        let idle_left = self.idle.saturating_sub(self.idle_since.elapsed());
        bounded_timeout(
            idle_left.min(Duration::from_millis(IO_POLL_SLICE_MS)),
            (self.deadline)(),
        )
    }

    fn progressed(&mut self) {
        self.idle_since = Instant::now();
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn write_head(buf: &mut Vec<u8>, endpoint: &Endpoint, request: &PostRequest<'_>) {
    let mut head = String::with_capacity(256);
    // fmt::Write for String cannot fail.
    let _ = write!(
        head,
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: helios-client/{}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\
         Helios-Sent-At: {}\r\n",
        endpoint.target,
        endpoint.authority,
        env!("CARGO_PKG_VERSION"),
        request.body.len(),
        request.sent_at_unix_ms,
    );
    if request.gzip {
        head.push_str("Content-Encoding: gzip\r\n");
    }
    if let Some(key) = request.api_key {
        let _ = write!(head, "Authorization: Bearer {key}\r\n");
    }
    head.push_str("\r\n");
    buf.clear();
    buf.extend_from_slice(head.as_bytes());
}

fn send_all(
    stream: &mut TcpStream,
    bytes: &[u8],
    write_timeout: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<(), HttpError> {
    let mut budget = IoBudget::new(write_timeout, deadline);
    let mut written = 0;
    // Each pass writes bytes or uses up a slice of the budget.
    while written < bytes.len() {
        let slice = budget.next_slice()?;
        stream
            .set_write_timeout(Some(slice))
            .map_err(HttpError::Write)?;
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(HttpError::Write(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                written += n;
                budget.progressed();
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HttpError::Write(e)),
        }
    }
    Ok(())
}

/// Reads more bytes into `conn.buf`; `Ok(0)` at end of stream.
fn fill(
    conn: &mut Connection,
    read_timeout: Duration,
    deadline: DeadlineFn<'_>,
) -> Result<usize, HttpError> {
    let budget = IoBudget::new(read_timeout, deadline);
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    // Each pass reads or uses up a slice of the budget.
    loop {
        let slice = budget.next_slice()?;
        conn.stream
            .set_read_timeout(Some(slice))
            .map_err(HttpError::Read)?;
        match conn.stream.read(&mut chunk) {
            Ok(n) => {
                conn.buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HttpError::Read(e)),
        }
    }
}

/// What the head says about the body and the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    head_len: usize,
    framing: Framing,
    close: bool,
    retry_after: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads one final response; the bool says whether the connection may be
/// reused.
fn read_response(
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
fn parse_head(buf: &[u8]) -> Result<Option<Head>, HttpError> {
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
    let mut close = response.version == Some(0);
    let mut retry_after = None;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| HttpError::Malformed("invalid Content-Length".to_owned()))?;
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
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            // Only the delay-seconds form; an HTTP date falls back to backoff.
            retry_after = value.parse::<u64>().ok().map(Duration::from_secs);
        }
    }
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
fn decode_chunked(
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
        let Some(chunk_end) = pos.checked_add(size) else {
            return Err(HttpError::Malformed("chunk size overflow".to_owned()));
        };
        if buf.len() < chunk_end + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..chunk_end]);
        if &buf[chunk_end..chunk_end + 2] != b"\r\n" {
            return Err(HttpError::Malformed(
                "chunk not followed by CRLF".to_owned(),
            ));
        }
        pos = chunk_end + 2;
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
    fn endpoint_with_port_and_prefix() {
        let e = Endpoint::parse("http://collector.example:7070/helios/").expect("valid");
        assert_eq!(e.host, "collector.example");
        assert_eq!(e.port, 7070);
        assert_eq!(e.authority, "collector.example:7070");
        assert_eq!(e.target, "/helios/v1/events");
    }

    #[test]
    fn endpoint_defaults_to_port_80_and_root() {
        let e = Endpoint::parse("HTTP://h").expect("valid");
        assert_eq!((e.port, e.target.as_str()), (80, "/v1/events"));
    }

    #[test]
    fn endpoint_accepts_ipv6_literals() {
        let e = Endpoint::parse("http://[::1]:9000").expect("valid");
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        assert_eq!(e.authority, "[::1]:9000");
    }

    #[test]
    fn endpoint_refuses_what_it_cannot_honour() {
        assert_eq!(
            Endpoint::parse("https://h"),
            Err(EndpointError::UnsupportedScheme)
        );
        assert_eq!(Endpoint::parse("http://"), Err(EndpointError::MissingHost));
        assert_eq!(
            Endpoint::parse("http://h:0"),
            Err(EndpointError::InvalidPort)
        );
        assert_eq!(
            Endpoint::parse("http://h:99999"),
            Err(EndpointError::InvalidPort)
        );
        assert_eq!(
            Endpoint::parse("http://u@h"),
            Err(EndpointError::UnsupportedPart)
        );
        assert_eq!(
            Endpoint::parse("http://h/?q"),
            Err(EndpointError::UnsupportedPart)
        );
    }

    #[test]
    fn request_head_carries_every_required_header() {
        let endpoint = Endpoint::parse("http://127.0.0.1:7070").expect("valid");
        let request = PostRequest {
            body: b"{}\n",
            gzip: true,
            api_key: Some("secret"),
            sent_at_unix_ms: 1_700_000_000_123,
        };
        let mut buf = Vec::new();
        write_head(&mut buf, &endpoint, &request);
        let head = String::from_utf8(buf).expect("ascii");
        assert!(head.starts_with("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:7070\r\n"));
        for line in [
            "Content-Type: application/x-ndjson\r\n",
            "Content-Length: 3\r\n",
            "Helios-Sent-At: 1700000000123\r\n",
            "Content-Encoding: gzip\r\n",
            "Authorization: Bearer secret\r\n",
        ] {
            assert!(head.contains(line), "missing {line:?} in {head:?}");
        }
        assert!(head.ends_with("\r\n\r\n"));
    }

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
            decode_chunked(b"2\r\nabXX0\r\n\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            decode_chunked(b"zz\r\n", 100),
            Err(HttpError::Malformed(_))
        ));
    }
}
