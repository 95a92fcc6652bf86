//! Client configuration: the builder, its defaults and its validation.
//!
//! Every limit is a named constant here so that the bounds of the client are
//! readable in one place (DESIGN.md §1 invariant 3).

use std::time::Duration;

use crate::transport::{Endpoint, EndpointError};

/// Default bound on events waiting in the in-process queue.
pub const DEFAULT_QUEUE_CAPACITY_EVENTS: usize = 10_000;
/// Default bound on the bytes of documents waiting in the queue.
pub const DEFAULT_QUEUE_CAPACITY_BYTES: usize = 16 * 1024 * 1024;
/// Default most events in one request.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 500;
/// Default most body bytes (before compression) in one request; the collector's
/// default `max_body_bytes` is 8 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Default longest an event waits for its batch to fill.
pub const DEFAULT_MAX_BATCH_DELAY_MS: u64 = 200;
/// Default largest single event document; bigger ones are logged and dropped.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Default most bytes of one document written to the log when it is lost.
pub const DEFAULT_MAX_LOGGED_DOCUMENT_BYTES: usize = 64 * 1024;
/// Default TCP connect timeout per attempt.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Default wait for each read of the response.
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 10_000;
/// Default wait for each write of the request.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 10_000;
/// Default first retry backoff (before jitter).
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 100;
/// Default largest retry backoff (before jitter).
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 10_000;
/// Default most attempts per batch, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default longest time spent retrying one batch.
pub const DEFAULT_MAX_RETRY_TIME_MS: u64 = 60_000;
/// Default time the last handle's drop waits for queued events.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 5_000;

/// gzip level of [`Compression::Gzip`]: flate2's `Compression::fast()`.
/// Higher levels cost 2-4x the CPU for a few percent (BENCHMARKS.md,
/// "Request compression").
pub const GZIP_LEVEL: u32 = 1;

/// zstd level of [`Compression::Zstd`]. Level 1 is libzstd's fastest
/// regular level; on varied event batches it compresses better than level
/// 3 (7.3:1 against 6.6:1) and than any gzip level (6.1:1 at best), for
/// half the CPU of gzip's fastest (BENCHMARKS.md, "Request compression").
#[cfg(feature = "zstd")]
pub const ZSTD_LEVEL: i32 = 1;

/// How request bodies are compressed (`Content-Encoding`).
///
/// The default is [`Compression::None`]: to a collector or relay on the
/// same host or LAN, compression is CPU on both ends for bandwidth nobody
/// lacks (the collector's decode of a zstd batch costs about a third of
/// its JSON validation; BENCHMARKS.md). Over a WAN or a metered link,
/// use [`Compression::Zstd`] (feature `zstd`): smaller bodies than gzip
/// at any level, for less CPU than gzip on both ends. [`Compression::Gzip`]
/// is for collectors older than zstd support and proxies that only pass
/// gzip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Bodies sent as they are.
    #[default]
    None,
    /// `Content-Encoding: gzip` at [`GZIP_LEVEL`].
    Gzip,
    /// `Content-Encoding: zstd` (RFC 8878) at [`ZSTD_LEVEL`], through
    /// libzstd (the `zstd` feature: it builds libzstd's C sources, so the
    /// default build leaves it out). Needs a collector with zstd support.
    #[cfg(feature = "zstd")]
    Zstd,
}

impl Compression {
    /// `Gzip` when `on`, else `None`: what the `gzip(bool)` switches of the
    /// builders set.
    pub fn gzip_if(on: bool) -> Compression {
        if on {
            Compression::Gzip
        } else {
            Compression::None
        }
    }

    /// The `Content-Encoding` header value, if any.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            #[cfg(feature = "zstd")]
            Compression::Zstd => Some("zstd"),
        }
    }
}

/// How failed sends are retried: capped exponential backoff with full
/// jitter (before retry n, a wait drawn uniformly from
/// `0..=min(max_backoff, initial_backoff << (n-1))`), or the server's
/// `Retry-After` when it is longer. A batch is
/// given up (and every document logged) after `max_attempts` attempts or
/// once `max_retry_time` has passed since its first attempt, whichever
/// comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Backoff ceiling for the first retry.
    pub initial_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// Most attempts per batch including the first; at least 1.
    pub max_attempts: u32,
    /// Longest time from a batch's first attempt to its last.
    pub max_retry_time: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(DEFAULT_INITIAL_BACKOFF_MS),
            max_backoff: Duration::from_millis(DEFAULT_MAX_BACKOFF_MS),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_retry_time: Duration::from_millis(DEFAULT_MAX_RETRY_TIME_MS),
        }
    }
}

/// A configuration the builder refused.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No endpoint URL was given.
    #[error("no endpoint URL configured")]
    NoEndpoint,
    /// An endpoint URL could not be used.
    #[error("endpoint {url:?}: {source}")]
    Endpoint {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        source: EndpointError,
    },
    /// The API key holds characters that cannot go in an HTTP header.
    #[error("API key must be visible ASCII without spaces")]
    InvalidApiKey,
    /// A limit that must be positive was zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A single event could never fit in the queue or a batch.
    #[error("max_event_bytes ({max_event_bytes}) exceeds {limit_name} ({limit})")]
    EventLargerThan {
        /// The configured event limit.
        max_event_bytes: usize,
        /// The limit it exceeds.
        limit_name: &'static str,
        /// That limit's value.
        limit: usize,
    },
    /// The sender thread could not be started.
    #[error("cannot start the sender thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The validated settings a client runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) api_key: Option<String>,
    pub(crate) queue_capacity_events: usize,
    pub(crate) queue_capacity_bytes: usize,
    pub(crate) max_batch_events: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) max_batch_delay: Duration,
    pub(crate) max_event_bytes: usize,
    pub(crate) max_logged_document_bytes: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) compression: Compression,
    pub(crate) connect_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) host: Option<String>,
    pub(crate) app: Option<String>,
    pub(crate) shutdown_timeout: Duration,
}

/// Builds a [`Client`](crate::Client). Start with
/// [`Client::builder`](crate::Client::builder); every setting has a default
/// except the endpoint.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    urls: Vec<String>,
    api_key: Option<String>,
    queue_capacity_events: usize,
    queue_capacity_bytes: usize,
    max_batch_events: usize,
    max_batch_bytes: usize,
    max_batch_delay: Duration,
    max_event_bytes: usize,
    max_logged_document_bytes: usize,
    retry: RetryPolicy,
    compression: Compression,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    host: Option<String>,
    app: Option<String>,
    shutdown_timeout: Duration,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            urls: Vec::new(),
            api_key: None,
            queue_capacity_events: DEFAULT_QUEUE_CAPACITY_EVENTS,
            queue_capacity_bytes: DEFAULT_QUEUE_CAPACITY_BYTES,
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_batch_delay: Duration::from_millis(DEFAULT_MAX_BATCH_DELAY_MS),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_logged_document_bytes: DEFAULT_MAX_LOGGED_DOCUMENT_BYTES,
            retry: RetryPolicy::default(),
            compression: Compression::None,
            connect_timeout: Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS),
            read_timeout: Duration::from_millis(DEFAULT_READ_TIMEOUT_MS),
            write_timeout: Duration::from_millis(DEFAULT_WRITE_TIMEOUT_MS),
            host: crate::hostname::hostname(),
            app: None,
            shutdown_timeout: Duration::from_millis(DEFAULT_SHUTDOWN_TIMEOUT_MS),
        }
    }
}

impl ClientBuilder {
    /// A builder with every default and no endpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a collector (or relay) URL, `http://host[:port][/prefix]`; events
    /// are POSTed to `<prefix>/v1/events`. Only plain `http://` is supported
    /// for now: put TLS in a local relay or a load balancer. With several
    /// URLs the client fails over to the next one after a failed attempt.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Sends `Authorization: Bearer <key>` on every request.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Most events waiting to be sent; beyond it new events are dropped
    /// (counted and logged).
    pub fn queue_capacity_events(mut self, events: usize) -> Self {
        self.queue_capacity_events = events;
        self
    }

    /// Most document bytes waiting to be sent; beyond it new events are
    /// dropped (counted and logged).
    pub fn queue_capacity_bytes(mut self, bytes: usize) -> Self {
        self.queue_capacity_bytes = bytes;
        self
    }

    /// Most events in one request.
    pub fn max_batch_events(mut self, events: usize) -> Self {
        self.max_batch_events = events;
        self
    }

    /// Most uncompressed body bytes in one request (a single event larger
    /// than this still goes, alone).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Longest an event waits for its batch to fill before it is sent.
    pub fn max_batch_delay(mut self, delay: Duration) -> Self {
        self.max_batch_delay = delay;
        self
    }

    /// Largest single event document; larger ones are logged (truncated)
    /// and dropped at `record()`.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// Documents larger than this are logged truncated to this many bytes
    /// (with their full size) when lost.
    pub fn max_logged_document_bytes(mut self, bytes: usize) -> Self {
        self.max_logged_document_bytes = bytes;
        self
    }

    /// Replaces the whole retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the backoff bounds of the retry policy.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry.initial_backoff = initial;
        self.retry.max_backoff = max;
        self
    }

    /// Most attempts per batch, the first included.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts;
        self
    }

    /// Longest time spent retrying one batch.
    pub fn max_retry_time(mut self, time: Duration) -> Self {
        self.retry.max_retry_time = time;
        self
    }

    /// Compresses request bodies with gzip (`Content-Encoding: gzip`), or
    /// not: `compression(Compression::Gzip)` or `Compression::None`.
    pub fn gzip(self, on: bool) -> Self {
        self.compression(Compression::gzip_if(on))
    }

    /// How request bodies are compressed [default: none]; see
    /// [`Compression`] for when each pays.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// TCP connect timeout per attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Longest wait for any read of a response; a stalled server costs one
    /// attempt after this long.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Longest wait for any write of a request.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// The `host` field stamped on events that do not set one (default: the
    /// machine's hostname).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Stamps no `host` field by default.
    pub fn no_host(mut self) -> Self {
        self.host = None;
        self
    }

    /// The `app` field stamped on events that do not set one. Only a field:
    /// when the collector runs with API keys it stamps `app` from the key.
    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.app = Some(app.into());
        self
    }

    /// How long dropping the last handle waits for queued events to be
    /// delivered before logging the rest as lost.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Validates the settings and starts the client's sender thread.
    pub fn build(self) -> Result<crate::Client, BuildError> {
        crate::Client::start(self.into_config()?)
    }

    pub(crate) fn into_config(self) -> Result<Config, BuildError> {
        if self.urls.is_empty() {
            return Err(BuildError::NoEndpoint);
        }
        let endpoints = self
            .urls
            .iter()
            .map(|url| {
                Endpoint::parse(url).map_err(|source| BuildError::Endpoint {
                    url: url.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(key) = &self.api_key {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(BuildError::InvalidApiKey);
            }
        }
        let positive = [
            ("queue_capacity_events", self.queue_capacity_events),
            ("queue_capacity_bytes", self.queue_capacity_bytes),
            ("max_batch_events", self.max_batch_events),
            ("max_batch_bytes", self.max_batch_bytes),
            ("max_event_bytes", self.max_event_bytes),
            ("max_attempts", self.retry.max_attempts as usize),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(BuildError::Zero(name));
        }
        if self.max_batch_delay.is_zero() {
            // The sender polls the queue on this tick; zero would spin.
            return Err(BuildError::Zero("max_batch_delay"));
        }
        if self.max_event_bytes > self.queue_capacity_bytes {
            return Err(BuildError::EventLargerThan {
                max_event_bytes: self.max_event_bytes,
                limit_name: "queue_capacity_bytes",
                limit: self.queue_capacity_bytes,
            });
        }
        Ok(Config {
            endpoints,
            api_key: self.api_key,
            queue_capacity_events: self.queue_capacity_events,
            queue_capacity_bytes: self.queue_capacity_bytes,
            max_batch_events: self.max_batch_events,
            max_batch_bytes: self.max_batch_bytes,
            max_batch_delay: self.max_batch_delay,
            max_event_bytes: self.max_event_bytes,
            max_logged_document_bytes: self.max_logged_document_bytes,
            retry: self.retry,
            compression: self.compression,
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
            host: self.host,
            app: self.app,
            shutdown_timeout: self.shutdown_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_required() {
        assert!(matches!(
            ClientBuilder::new().into_config(),
            Err(BuildError::NoEndpoint)
        ));
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn https_needs_the_tls_feature() {
        let result = ClientBuilder::new()
            .endpoint("https://example.invalid")
            .into_config();
        assert!(matches!(
            result,
            Err(BuildError::Endpoint {
                source: EndpointError::TlsNotBuilt,
                ..
            })
        ));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn https_is_accepted_with_the_tls_feature() {
        let config = ClientBuilder::new()
            .endpoint("https://example.invalid")
            .into_config()
            .expect("https endpoint");
        assert!(config.endpoints[0].is_tls());
    }

    #[test]
    fn api_key_cannot_inject_headers() {
        let result = ClientBuilder::new()
            .endpoint("http://127.0.0.1:1")
            .api_key("k\r\nX-Evil: 1")
            .into_config();
        assert!(matches!(result, Err(BuildError::InvalidApiKey)));
    }

    #[test]
    fn zero_limits_are_refused_by_name() {
        let result = ClientBuilder::new()
            .endpoint("http://127.0.0.1:1")
            .max_batch_events(0)
            .into_config();
        assert!(matches!(result, Err(BuildError::Zero("max_batch_events"))));
    }

    #[test]
    fn an_event_must_fit_in_the_queue() {
        let result = ClientBuilder::new()
            .endpoint("http://127.0.0.1:1")
            .queue_capacity_bytes(10)
            .max_event_bytes(11)
            .into_config();
        assert!(matches!(result, Err(BuildError::EventLargerThan { .. })));
    }
}
