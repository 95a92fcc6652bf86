//! The HTTP/1.1 client for `POST <prefix>/v1/events`: std `TcpStream`,
//! `httparse`, and (feature `tls`) rustls for `https://`.
//!
//! This is the one HTTP client of Helios. The app [`Client`](crate::Client)
//! sends through it from its sender thread, and the collector's relay sink
//! (`helios-ingest`'s `relay.rs`) forwards journaled batches through it to
//! an upstream collector. The API is deliberately narrow: parse an
//! [`Endpoint`], make a [`Transport`] over a list of them, and
//! [`Transport::post`] a [`PostRequest`] to one, getting the final
//! [`Response`] or an [`HttpError`]. Retries, backoff, failover and what a
//! status means are the caller's policy; the transport only sends and
//! reads, within its bounds.
//!
//! What it guarantees:
//! - At most one idle kept-alive connection per endpoint, checked before
//!   reuse (a connection the server closed, or one with unsolicited bytes
//!   waiting, is dropped and a new one opened).
//! - Every read and write is bounded in time ([`Timeouts`], plus a
//!   deadline re-read while waiting, [`DeadlineFn`]) and every response in
//!   size ([`MAX_RESPONSE_HEAD_BYTES`], [`MAX_RESPONSE_BODY_BYTES`]);
//!   Content-Length, chunked and close-delimited bodies, interim 1xx
//!   responses skipped. Bytes from the network never panic it: a response
//!   it cannot frame is [`HttpError::Malformed`].
//! - `https://` (feature `tls`): the TLS handshake runs when connecting,
//!   under the connect timeout, so a bad certificate fails at once with
//!   rustls' reason; the timeouts apply to TLS reads and writes too. Trusted
//!   roots are Mozilla's plus, optionally, a PEM file of private CAs
//!   (`TlsConfig`). Without the feature an `https://` URL is
//!   [`EndpointError::TlsNotBuilt`].
//!
//! Why not an HTTP client crate: one request shape, one connection per
//! endpoint at a time (a single sending thread, no pipelining), blocking
//! I/O with per-read deadlines, and hard bounds on everything read from the
//! network. `ureq`/`reqwest`/`hyper` bring async runtimes or connection
//! pools, tens of crates of build time and their own retry/redirect/timeout
//! policies that would have to be switched off so that ours stay the only
//! ones. `httparse` is the parser the collector uses, is zero-copy, never
//! panics on input and has no dependencies.

mod conn;
mod endpoint;
mod response;
#[cfg(feature = "tls")]
mod tls;
/// Without the `tls` feature no TLS configuration can exist: the type has
/// no values, so the compiler proves no `https://` path is reachable.
#[cfg(not(feature = "tls"))]
mod tls {
    #[derive(Debug, Clone)]
    pub(crate) enum TlsConfig {}
}

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use conn::Connection;

use crate::config::Compression;
pub use endpoint::{Endpoint, EndpointError, EVENTS_PATH};
pub use response::{MAX_RESPONSE_BODY_BYTES, MAX_RESPONSE_HEADERS, MAX_RESPONSE_HEAD_BYTES};
use tls::TlsConfig as TlsSettings;
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsConfigError};

/// The deadline of the current attempt (a client's shutdown deadline), read
/// afresh while waiting: a shutdown can start while an attempt is blocked
/// in I/O. `None`: only the [`Timeouts`] apply.
pub type DeadlineFn<'a> = &'a dyn Fn() -> Option<Instant>;

/// A failed attempt at the HTTP level. Every variant is worth a retry
/// (possibly on another endpoint); the caller decides.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
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
    /// The TLS handshake failed (an untrusted or mismatched certificate, a
    /// protocol error) or no TLS configuration could be built.
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// The host as configured.
        host: String,
        /// Why: rustls' reason, e.g. "invalid peer certificate: UnknownIssuer".
        source: io::Error,
    },
    /// Sending the request failed.
    #[error("write failed: {0}")]
    Write(#[source] io::Error),
    /// Reading the response failed.
    #[error("read failed: {0}")]
    Read(#[source] io::Error),
    /// The connect, read or write timeout (or the deadline) passed.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server closed the connection before a complete response.
    #[error("connection closed before a complete response")]
    Closed,
    /// The bytes received are not an HTTP/1.x response this client can
    /// frame (bad head, invalid or conflicting Content-Length, a
    /// Transfer-Encoding other than chunked, a bad chunk).
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
    /// The request cannot be sent as given (no such endpoint; an API key
    /// that would break the header block). Not the server's fault.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
}

/// Connection and I/O time limits of a [`Transport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, per resolved address; and each step of a TLS
    /// handshake.
    pub connect: Duration,
    /// Longest a response read waits without receiving a byte.
    pub read: Duration,
    /// Longest a request write waits without sending a byte.
    pub write: Duration,
}

/// One `POST` to send: an NDJSON body and the headers that vary. Built with
/// [`PostRequest::new`] and its setters; `Host`, `Content-Type`,
/// `Content-Length` and `User-Agent` are always written.
#[derive(Debug, Clone, Copy)]
pub struct PostRequest<'a> {
    body: &'a [u8],
    compression: Compression,
    api_key: Option<&'a str>,
    sent_at_unix_ms: Option<u64>,
    relayed: bool,
}

impl<'a> PostRequest<'a> {
    /// A request carrying `body` (NDJSON, sent as is) and no optional
    /// header.
    pub fn new(body: &'a [u8]) -> Self {
        PostRequest {
            body,
            compression: Compression::None,
            api_key: None,
            sent_at_unix_ms: None,
            relayed: false,
        }
    }

    /// Whether `body` is gzip-compressed (`Content-Encoding: gzip`).
    pub fn gzip(self, gzip: bool) -> Self {
        self.compression(Compression::gzip_if(gzip))
    }

    /// How `body` is compressed (its `Content-Encoding`).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// `Authorization: Bearer <key>`. A key that is not visible ASCII is
    /// refused by [`Transport::post`] ([`HttpError::InvalidRequest`]) rather
    /// than written into the header block.
    pub fn api_key(mut self, key: Option<&'a str>) -> Self {
        self.api_key = key;
        self
    }

    /// `Helios-Sent-At`: the sender's clock at this attempt, epoch ms, from
    /// which the collector corrects event times for clock skew (DESIGN §3).
    /// Apps set it fresh on every attempt; a relay must not set it (its
    /// events' times were already corrected by the first collector).
    pub fn sent_at_unix_ms(mut self, sent_at_unix_ms: u64) -> Self {
        self.sent_at_unix_ms = Some(sent_at_unix_ms);
        self
    }

    /// `Helios-Relay: 1`: the events are forwarded by a collector and keep
    /// their `_id`, `ts`, `recv` and `app`.
    pub fn relayed(mut self, relayed: bool) -> Self {
        self.relayed = relayed;
        self
    }
}

/// A final (non-1xx) response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// `Retry-After` in seconds, when given as a number.
    pub retry_after: Option<Duration>,
    /// The body, de-chunked, at most [`MAX_RESPONSE_BODY_BYTES`].
    pub body: Vec<u8>,
}

/// Sends requests to a fixed list of endpoints, keeping at most one idle
/// connection per endpoint. Blocking; used from one thread at a time.
#[derive(Debug)]
pub struct Transport {
    endpoints: Vec<Endpoint>,
    idle: Vec<Option<Connection>>,
    timeouts: Timeouts,
    request_buf: Vec<u8>,
    /// For `https://` endpoints; Mozilla's roots alone unless set with
    /// `with_tls_config`, built on the first https connect.
    tls: Option<TlsSettings>,
}

impl Transport {
    /// A transport with no connection open yet. `https://` endpoints trust
    /// Mozilla's roots (see `with_tls_config` for private CAs).
    pub fn new(endpoints: Vec<Endpoint>, timeouts: Timeouts) -> Self {
        let idle = endpoints.iter().map(|_| None).collect();
        Transport {
            endpoints,
            idle,
            timeouts,
            request_buf: Vec::new(),
            tls: None,
        }
    }

    /// Uses `tls` for `https://` endpoints (e.g. with a private CA).
    #[cfg(feature = "tls")]
    pub fn with_tls_config(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How many endpoints there are.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// Endpoint `index`, if there is one.
    pub fn endpoint(&self, index: usize) -> Option<&Endpoint> {
        self.endpoints.get(index)
    }

    /// The URL of endpoint `index` as given, for logs.
    pub fn url(&self, index: usize) -> &str {
        self.endpoints
            .get(index)
            .map_or("<no endpoint>", |e| e.url.as_str())
    }

    /// Makes sure endpoint `index` has an open connection (TCP, and the TLS
    /// handshake for `https://`), opening one unless an idle one is still
    /// good; the next [`Transport::post`] uses it. For health checks.
    pub fn connect(&mut self, index: usize, deadline: DeadlineFn<'_>) -> Result<(), HttpError> {
        let conn = self.checkout(index, deadline)?;
        if let Some(slot) = self.idle.get_mut(index) {
            *slot = Some(conn);
        }
        Ok(())
    }

    /// POSTs `request` to endpoint `index` and reads the final response.
    /// I/O stops once `deadline()` (re-read while waiting) has passed. On
    /// any error the connection is closed; after a response it is kept for
    /// the next request unless the server asked to close it.
    pub fn post(
        &mut self,
        index: usize,
        request: &PostRequest<'_>,
        deadline: DeadlineFn<'_>,
    ) -> Result<Response, HttpError> {
        let Some(endpoint) = self.endpoints.get(index) else {
            return Err(HttpError::InvalidRequest("no such endpoint"));
        };
        if request
            .api_key
            .is_some_and(|key| key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(HttpError::InvalidRequest(
                "the API key must be visible ASCII without spaces",
            ));
        }
        write_head(&mut self.request_buf, endpoint, request);
        self.request_buf.extend_from_slice(request.body);
        let mut conn = self.checkout(index, deadline)?;
        conn::send_all(
            &mut conn.stream,
            &self.request_buf,
            self.timeouts.write,
            deadline,
        )?;
        let (response, keep_alive) =
            response::read_response(&mut conn, self.timeouts.read, deadline)?;
        if keep_alive && conn.buf.is_empty() {
            if let Some(slot) = self.idle.get_mut(index) {
                *slot = Some(conn);
            }
        }
        Ok(response)
    }

    /// The idle connection to endpoint `index` if it is still good, else a
    /// new one.
    fn checkout(
        &mut self,
        index: usize,
        deadline: DeadlineFn<'_>,
    ) -> Result<Connection, HttpError> {
        let Some(endpoint) = self.endpoints.get(index) else {
            return Err(HttpError::InvalidRequest("no such endpoint"));
        };
        if let Some(mut conn) = self.idle.get_mut(index).and_then(Option::take) {
            if conn::is_idle_and_open(&mut conn) {
                return Ok(conn);
            }
        }
        let tls = if endpoint.tls {
            Some(default_tls(&mut self.tls, endpoint)?)
        } else {
            None
        };
        conn::connect(endpoint, self.timeouts.connect, deadline, tls)
    }
}

/// The TLS settings for an `https://` endpoint: those given, else Mozilla's
/// roots alone, built once.
#[cfg(feature = "tls")]
fn default_tls<'t>(
    slot: &'t mut Option<TlsSettings>,
    endpoint: &Endpoint,
) -> Result<&'t TlsSettings, HttpError> {
    if slot.is_none() {
        let config = TlsConfig::new(None).map_err(|e| HttpError::Tls {
            host: endpoint.host.clone(),
            source: io::Error::other(e),
        })?;
        *slot = Some(config);
    }
    slot.as_ref()
        .ok_or(HttpError::InvalidRequest("no TLS configuration"))
}

/// Without TLS there is no `https://` endpoint (the parser refuses them).
#[cfg(not(feature = "tls"))]
fn default_tls<'t>(
    _slot: &'t mut Option<TlsSettings>,
    endpoint: &Endpoint,
) -> Result<&'t TlsSettings, HttpError> {
    Err(HttpError::Tls {
        host: endpoint.host.clone(),
        source: io::Error::other(EndpointError::TlsNotBuilt),
    })
}

fn write_head(buf: &mut Vec<u8>, endpoint: &Endpoint, request: &PostRequest<'_>) {
    let mut head = String::with_capacity(256);
    // fmt::Write for String cannot fail.
    let _ = write!(
        head,
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: helios-client/{}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n",
        endpoint.target,
        endpoint.authority,
        env!("CARGO_PKG_VERSION"),
        request.body.len(),
    );
    if let Some(sent_at_unix_ms) = request.sent_at_unix_ms {
        let _ = write!(head, "Helios-Sent-At: {sent_at_unix_ms}\r\n");
    }
    if request.relayed {
        head.push_str("Helios-Relay: 1\r\n");
    }
    if let Some(encoding) = request.compression.content_encoding() {
        let _ = write!(head, "Content-Encoding: {encoding}\r\n");
    }
    if let Some(key) = request.api_key {
        let _ = write!(head, "Authorization: Bearer {key}\r\n");
    }
    head.push_str("\r\n");
    buf.clear();
    buf.extend_from_slice(head.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(request: &PostRequest<'_>) -> String {
        let endpoint = Endpoint::parse("http://127.0.0.1:7070").expect("valid");
        let mut buf = Vec::new();
        write_head(&mut buf, &endpoint, request);
        String::from_utf8(buf).expect("ascii")
    }

    #[test]
    fn request_head_carries_every_required_header() {
        let request = PostRequest::new(b"{}\n")
            .gzip(true)
            .api_key(Some("secret"))
            .sent_at_unix_ms(1_700_000_000_123);
        let head = head_of(&request);
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
        assert!(!head.contains("Helios-Relay"));
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn the_content_encoding_header_names_the_compression_and_none_writes_none() {
        let body = b"{}\n";
        assert!(!head_of(&PostRequest::new(body)).contains("Content-Encoding"));
        let none = PostRequest::new(body).compression(Compression::None);
        assert!(!head_of(&none).contains("Content-Encoding"));
        let gzip = PostRequest::new(body).compression(Compression::Gzip);
        assert!(head_of(&gzip).contains("Content-Encoding: gzip\r\n"));
        #[cfg(feature = "zstd")]
        {
            let zstd = PostRequest::new(body).compression(Compression::Zstd);
            assert!(head_of(&zstd).contains("Content-Encoding: zstd\r\n"));
        }
    }

    #[test]
    fn a_relayed_request_has_the_relay_mark_and_no_sent_at() {
        let head = head_of(&PostRequest::new(b"{}\n").relayed(true));
        assert!(head.contains("\r\nHelios-Relay: 1\r\n"), "{head:?}");
        for absent in ["Helios-Sent-At", "Authorization", "Content-Encoding"] {
            assert!(!head.contains(absent), "{absent} in {head:?}");
        }
    }

    #[test]
    fn an_api_key_that_would_break_the_head_is_refused_before_connecting() {
        // Port 1 on loopback: a connect attempt would fail differently.
        let endpoint = Endpoint::parse("http://127.0.0.1:1").expect("valid");
        let timeouts = Timeouts {
            connect: Duration::from_secs(1),
            read: Duration::from_secs(1),
            write: Duration::from_secs(1),
        };
        let mut transport = Transport::new(vec![endpoint], timeouts);
        for key in ["k\r\nX-Evil: 1", "", "a b"] {
            let request = PostRequest::new(b"{}\n").api_key(Some(key));
            assert!(matches!(
                transport.post(0, &request, &|| None),
                Err(HttpError::InvalidRequest(_))
            ));
        }
        assert!(matches!(
            transport.post(1, &PostRequest::new(b""), &|| None),
            Err(HttpError::InvalidRequest(_))
        ));
    }
}
