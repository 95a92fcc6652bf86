//! The shippers' protocols, decoded into Helios events and answered in
//! their own shapes: OTLP/HTTP logs ([`otlp`]), Elasticsearch `_bulk`
//! ([`es`]), Splunk HEC ([`hec`]) and Loki push ([`loki`]).
//!
//! The crate is pure: no sockets, no runtime, no journal, no auth. The
//! collector (`helios-ingest`) routes a request here with [`route`],
//! authenticates it, removes its `Content-Encoding`, then calls [`decode`],
//! which turns the body into **Helios events, one JSON object per line**
//! (a [`Translation`]). From there the request rides exactly the path of
//! `POST /v1/events` with an NDJSON body: the same validation, limits, id
//! minting, journal record and ack-after-commit rule. Once the collector
//! knows which lines its validation refused, [`render_success`] writes the
//! protocol's answer; anything that refuses the whole request (bad key,
//! malformed body, backpressure, a failed commit) is a [`Failure`], which
//! [`render_failure`] answers in the protocol's own error shape, never
//! Helios's `{"error": …}`: some clients read only a body code.
//!
//! Each protocol module owns its wire format, its mapping to Helios fields
//! (documented in the module and in the README), its default `type` rule
//! and its answers; what they share lives here: [`TypeRule`], deterministic
//! ids ([`derived_id`]), exact nanosecond times ([`ns_to_ms`]) and the
//! shapes of requests, translations and answers.

pub mod es;
pub mod hec;
pub mod loki;
pub mod otlp;
pub mod syslog;
mod type_rule;

use std::borrow::Cow;

use sha2::{Digest, Sha256};

pub use type_rule::{lookup_json, TypeRule, TypeRuleError};

/// Which protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP/HTTP logs.
    Otlp,
    /// Elasticsearch bulk (and the info document clients check first).
    Elasticsearch,
    /// Splunk HTTP Event Collector.
    Hec,
    /// Loki push.
    Loki,
}

impl Protocol {
    /// Every protocol, for metrics and docs.
    pub const ALL: [Protocol; 4] = [
        Protocol::Otlp,
        Protocol::Elasticsearch,
        Protocol::Hec,
        Protocol::Loki,
    ];

    /// Short lowercase name (metrics label, logs, `--<name>-type` flags).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Otlp => "otlp",
            Protocol::Elasticsearch => "elasticsearch",
            Protocol::Hec => "hec",
            Protocol::Loki => "loki",
        }
    }
}

/// A shipper endpoint on the collector's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/logs`.
    OtlpLogs,
    /// `POST`/`PUT` `/_bulk` and `/{index}/_bulk`. The path's index (the
    /// default for action lines without `_index`) is read by
    /// [`es::path_index`] from the path given to [`Request`].
    EsBulk,
    /// `GET`/`HEAD /`: the version document clients check before bulk.
    EsInfo,
    /// `POST /services/collector`, `/services/collector/event`,
    /// `/services/collector/event/1.0`.
    HecEvent,
    /// `POST /services/collector/raw`, `/services/collector/raw/1.0`.
    HecRaw,
    /// `GET /services/collector/health` (and `/health/1.0`).
    HecHealth,
    /// `POST /loki/api/v1/push`.
    LokiPush,
    /// A path under a protocol's prefix that names none of its endpoints
    /// (`/services/collector/…`, `/loki/…`, `/_…`, `/v1/traces`): answered
    /// 404 in that protocol's shape, so its client reads the failure.
    Unknown(Protocol),
}

impl Endpoint {
    /// The protocol it speaks.
    pub fn protocol(self) -> Protocol {
        match self {
            Endpoint::OtlpLogs => Protocol::Otlp,
            Endpoint::EsBulk | Endpoint::EsInfo => Protocol::Elasticsearch,
            Endpoint::HecEvent | Endpoint::HecRaw | Endpoint::HecHealth => Protocol::Hec,
            Endpoint::LokiPush => Protocol::Loki,
            Endpoint::Unknown(protocol) => protocol,
        }
    }

    /// The methods it takes, as an `Allow` header value.
    pub fn allow(self) -> &'static str {
        match self {
            Endpoint::EsBulk => "POST, PUT",
            Endpoint::EsInfo | Endpoint::HecHealth => "GET, HEAD",
            _ => "POST",
        }
    }

    /// Whether requests carry events (and so need an ingest key, a body
    /// and the journal); the others are answered on the spot.
    pub fn carries_events(self) -> bool {
        !matches!(
            self,
            Endpoint::EsInfo | Endpoint::HecHealth | Endpoint::Unknown(_)
        )
    }

    /// Whether a request to it must present a key when the collector has
    /// `--api-keys` (Splunk's health check is open, as in Splunk).
    pub fn needs_key(self) -> bool {
        !matches!(self, Endpoint::HecHealth)
    }
}

/// Which shipper endpoint `path` (without its query string) names, if any.
pub fn route(path: &str) -> Option<Endpoint> {
    match path {
        "/v1/logs" => Some(Endpoint::OtlpLogs),
        "/" => Some(Endpoint::EsInfo),
        "/services/collector" | "/services/collector/event" | "/services/collector/event/1.0" => {
            Some(Endpoint::HecEvent)
        }
        "/services/collector/raw" | "/services/collector/raw/1.0" => Some(Endpoint::HecRaw),
        "/services/collector/health" | "/services/collector/health/1.0" => {
            Some(Endpoint::HecHealth)
        }
        "/loki/api/v1/push" => Some(Endpoint::LokiPush),
        _ if es::path_index(path).is_some() => Some(Endpoint::EsBulk),
        _ if path.starts_with("/services/collector/") => Some(Endpoint::Unknown(Protocol::Hec)),
        _ if path.starts_with("/loki/") => Some(Endpoint::Unknown(Protocol::Loki)),
        _ if path.starts_with("/_") => Some(Endpoint::Unknown(Protocol::Elasticsearch)),
        // OTLP's other signals: an exporter pointed at the whole endpoint.
        "/v1/traces" | "/v1/metrics" | "/v1/profiles" => Some(Endpoint::Unknown(Protocol::Otlp)),
        _ => None,
    }
}

/// What the collector knows of a request besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The endpoint ([`route`]).
    pub endpoint: Endpoint,
    /// The request path without the query string (percent-encoded as sent).
    pub path: &'a str,
    /// The query string without `?` (`""` when there is none).
    pub query: &'a str,
    /// The `Content-Type` header value, `""` when absent.
    pub content_type: &'a str,
    /// The app the key stamps (`""` without `--api-keys`): part of every
    /// [`derived_id`], so two apps' ids never collide.
    pub app: &'a str,
    /// Receive time, UTC milliseconds.
    pub recv_ms: i64,
}

/// How the collector configured the decoders.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `type` rule of each protocol.
    pub types: TypeRules,
    /// Most bytes a body may decode to (`--max-decoded-bytes`), for the
    /// decompression a protocol does itself (Loki's snappy).
    pub max_decoded_bytes: usize,
    /// Most events one request may carry (`--max-events-per-request`): a
    /// decoder stops with [`Failure::TooManyEvents`] past it rather than
    /// translate the rest.
    pub max_events: usize,
}

/// The `type` rule of each protocol (`--otlp-type`, `--es-type`,
/// `--hec-type`, `--loki-type`, `--syslog-type`).
#[derive(Debug, Clone)]
pub struct TypeRules {
    /// OTLP logs.
    pub otlp: TypeRule,
    /// Elasticsearch bulk.
    pub elasticsearch: TypeRule,
    /// Splunk HEC.
    pub hec: TypeRule,
    /// Loki push.
    pub loki: TypeRule,
    /// Syslog over UDP, TCP and RELP (the collector's `--syslog-type`).
    pub syslog: TypeRule,
}

impl Default for TypeRules {
    fn default() -> Self {
        TypeRules {
            otlp: otlp::default_type_rule(),
            elasticsearch: es::default_type_rule(),
            hec: hec::default_type_rule(),
            loki: loki::default_type_rule(),
            syslog: syslog::default_type_rule(),
        }
    }
}

/// A request's body as Helios events.
#[derive(Debug, Default)]
pub struct Translation {
    /// Helios events, one JSON object per line, each line ending in `\n`,
    /// no empty lines: line `k` is the k-th non-empty NDJSON line the
    /// collector's validation numbers `k`.
    pub ndjson: Vec<u8>,
    /// One entry per item of the request (a bulk action, an OTLP record, a
    /// HEC event, a Loki entry), in request order.
    pub items: Vec<Item>,
}

impl Translation {
    /// Empties it for reuse (keeps the allocations).
    pub fn clear(&mut self) {
        self.ndjson.clear();
        self.items.clear();
    }

    /// Number of event lines.
    pub fn lines(&self) -> usize {
        self.items.iter().filter(|i| i.line.is_ok()).count()
    }
}

/// What became of one item of the request.
#[derive(Debug, Clone)]
pub struct Item {
    /// The NDJSON line of its event, or why the decoder refused it alone
    /// (the rest of the request goes on).
    pub line: Result<u32, ItemRefusal>,
    /// What the protocol echoes back per item (Elasticsearch only).
    pub echo: Echo,
}

/// Why one item was refused by the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRefusal {
    /// The status the protocol reports for the item (Elasticsearch).
    pub status: u16,
    /// A machine-readable kind (Elasticsearch's error `type`).
    pub kind: &'static str,
    /// Human-readable reason.
    pub reason: String,
}

/// Per-item facts an answer repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Echo {
    /// Nothing.
    #[default]
    None,
    /// An Elasticsearch bulk item: its action, index and id (as sent;
    /// `null` in the answer when the client sent none, since the collector
    /// mints ids after decoding).
    Es {
        /// `index`, `create`, or the refused action's name.
        action: String,
        /// The item's index.
        index: String,
        /// Its `_id`.
        id: String,
    },
}

/// An event line the collector's validation refused, after translation.
#[derive(Debug, Clone, Copy)]
pub struct LineReject<'a> {
    /// The NDJSON line.
    pub line: u32,
    /// Why.
    pub error: &'a str,
}

/// Why a whole request is refused. Each protocol answers it in its own
/// shape ([`render_failure`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No credentials where `--api-keys` requires them.
    #[error("missing credentials")]
    MissingKey,
    /// Credentials that match no key.
    #[error("unknown credentials")]
    UnknownKey,
    /// A key that may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A body that is not the protocol's format.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// An empty body (or one with no event at all).
    #[error("no data")]
    NoData,
    /// HEC: an event object without `event`.
    #[error("event field is required (event {index})")]
    EventRequired {
        /// 0-based position of the event in the body.
        index: usize,
    },
    /// HEC: an event whose `event` is empty.
    #[error("event field cannot be blank (event {index})")]
    EventBlank {
        /// 0-based position of the event in the body.
        index: usize,
    },
    /// Over a size limit (body, decoded body, record).
    #[error("too large: {0}")]
    TooLarge(String),
    /// More events than `--max-events-per-request`.
    #[error("more events than max_events_per_request")]
    TooManyEvents,
    /// A `Content-Type` the endpoint does not take.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// A `Content-Encoding` the collector does not decode, or a body that
    /// is not what its encoding says.
    #[error("unsupported or damaged content encoding: {0}")]
    BadEncoding(String),
    /// Backpressure, a reopening journal, a full disk or a failed commit:
    /// retry later (`Retry-After`).
    #[error("busy: {0}")]
    Busy(String),
    /// A path under the protocol's prefix that does not exist.
    #[error("not found")]
    NotFound,
    /// A method the endpoint does not take.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A defect of ours.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How to send an answer (the body is in the caller's buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// Extra header lines, each ending in `\r\n` (e.g.
    /// `X-Elastic-Product: Elasticsearch\r\n`), or `""`.
    pub headers: &'static str,
    /// Send `Retry-After` (backpressure: the exporters retry).
    pub retry_after: bool,
}

/// Translates `body` (its `Content-Encoding` already removed) into Helios
/// events in `out` (cleared first).
pub fn decode(
    req: &Request<'_>,
    body: &[u8],
    settings: &Settings,
    out: &mut Translation,
) -> Result<(), Failure> {
    out.clear();
    match req.endpoint {
        Endpoint::OtlpLogs => otlp::decode(req, body, settings, out),
        Endpoint::EsBulk => es::decode(req, body, settings, out),
        Endpoint::HecEvent | Endpoint::HecRaw => hec::decode(req, body, settings, out),
        Endpoint::LokiPush => loki::decode(req, body, settings, out),
        Endpoint::EsInfo | Endpoint::HecHealth | Endpoint::Unknown(_) => Err(Failure::Internal(
            format!("{:?} carries no events", req.endpoint),
        )),
    }
}

/// Writes the answer to a request whose events were journaled (or all
/// refused item by item): `rejected` are the lines the collector's
/// validation refused, in ascending order; `took_ms` how long the request
/// took so far.
pub fn render_success(
    req: &Request<'_>,
    translation: &Translation,
    rejected: &[LineReject<'_>],
    took_ms: u64,
    out: &mut Vec<u8>,
) -> Answer {
    match req.endpoint.protocol() {
        Protocol::Otlp => otlp::render_success(req, translation, rejected, out),
        Protocol::Elasticsearch => es::render_success(req, translation, rejected, took_ms, out),
        Protocol::Hec => hec::render_success(req, translation, rejected, out),
        Protocol::Loki => loki::render_success(req, translation, rejected, out),
    }
}

/// Writes the protocol's answer to a request refused whole.
pub fn render_failure(req: &Request<'_>, failure: &Failure, out: &mut Vec<u8>) -> Answer {
    match req.endpoint.protocol() {
        Protocol::Otlp => otlp::render_failure(req, failure, out),
        Protocol::Elasticsearch => es::render_failure(req, failure, out),
        Protocol::Hec => hec::render_failure(req, failure, out),
        Protocol::Loki => loki::render_failure(req, failure, out),
    }
}

/// Writes the answer of an endpoint that carries no events (`GET /` for
/// Elasticsearch clients, HEC's health check); `ready` is the collector's
/// readiness (journals writable, under budget, store reachable).
pub fn render_probe(req: &Request<'_>, ready: bool, out: &mut Vec<u8>) -> Answer {
    match req.endpoint {
        Endpoint::EsInfo => es::render_info(out),
        Endpoint::HecHealth => hec::render_health(ready, out),
        Endpoint::Unknown(_) => render_failure(req, &Failure::NotFound, out),
        _ => render_failure(req, &Failure::MethodNotAllowed, out),
    }
}

/// A Helios `_id` (24 hex digits) derived from what a protocol's client
/// uses to deduplicate (an Elasticsearch `_id`, an OTLP `log.record.uid`):
/// the first 12 bytes of SHA-256 over the app, the protocol and `parts`,
/// each length-prefixed so no two inputs run together. A retry of the same
/// request yields the same ids, so the store keeps each event once.
pub fn derived_id(app: &str, protocol: Protocol, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in [app, protocol.name()].iter().chain(parts) {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(24);
    for byte in &digest[..12] {
        hex.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes` (trace and span ids).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Nanoseconds since the epoch, as decimal text of any length (OTLP JSON
/// and Loki send strings past 2^53), to whole milliseconds, exactly:
/// `None` for text that is not an unsigned decimal integer or whose
/// milliseconds do not fit an `i64`.
pub fn ns_to_ms(ns: &str) -> Option<i64> {
    if ns.is_empty() || !ns.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = ns.trim_start_matches('0');
    if digits.len() <= 6 {
        return Some(0);
    }
    digits[..digits.len() - 6].parse::<i64>().ok()
}

/// Whether `content_type`'s media type (parameters ignored) is one of
/// `types`, compared case-insensitively.
pub fn media_type_is(content_type: &str, types: &[&str]) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    types.iter().any(|t| mime.eq_ignore_ascii_case(t))
}

/// Appends `s` as a JSON string literal (serde_json's escaping).
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Text for a field that must be UTF-8 but arrived as bytes: lossless when
/// it is UTF-8, with U+FFFD for invalid sequences otherwise.
pub fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_every_shipper_path_and_nothing_else() {
        assert_eq!(route("/v1/logs"), Some(Endpoint::OtlpLogs));
        assert_eq!(route("/_bulk"), Some(Endpoint::EsBulk));
        assert_eq!(route("/logs-2026/_bulk"), Some(Endpoint::EsBulk));
        assert_eq!(route("/"), Some(Endpoint::EsInfo));
        assert_eq!(route("/services/collector"), Some(Endpoint::HecEvent));
        assert_eq!(
            route("/services/collector/event/1.0"),
            Some(Endpoint::HecEvent)
        );
        assert_eq!(route("/services/collector/raw"), Some(Endpoint::HecRaw));
        assert_eq!(
            route("/services/collector/health"),
            Some(Endpoint::HecHealth)
        );
        assert_eq!(route("/loki/api/v1/push"), Some(Endpoint::LokiPush));
        assert_eq!(route("/v1/events"), None);
        assert_eq!(route("/a/b/_bulk"), None);
        assert_eq!(route("/elsewhere"), None);
        assert_eq!(
            route("/services/collector/other"),
            Some(Endpoint::Unknown(Protocol::Hec))
        );
        assert_eq!(
            route("/_license"),
            Some(Endpoint::Unknown(Protocol::Elasticsearch))
        );
        assert_eq!(
            route("/loki/api/v1/query"),
            Some(Endpoint::Unknown(Protocol::Loki))
        );
        assert_eq!(route("/v1/traces"), Some(Endpoint::Unknown(Protocol::Otlp)));
    }

    #[test]
    fn derived_ids_are_deterministic_and_scoped_by_app_and_protocol() {
        let a = derived_id("billing", Protocol::Elasticsearch, &["logs", "1"]);
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            a,
            derived_id("billing", Protocol::Elasticsearch, &["logs", "1"])
        );
        assert_ne!(
            a,
            derived_id("web", Protocol::Elasticsearch, &["logs", "1"])
        );
        assert_ne!(a, derived_id("billing", Protocol::Otlp, &["logs", "1"]));
        // Length prefixes: ("ab","c") and ("a","bc") differ.
        assert_ne!(
            derived_id("", Protocol::Elasticsearch, &["ab", "c"]),
            derived_id("", Protocol::Elasticsearch, &["a", "bc"])
        );
    }

    #[test]
    fn nanosecond_text_past_2_pow_53_converts_exactly() {
        assert_eq!(ns_to_ms("1765108800123456789"), Some(1_765_108_800_123));
        assert_eq!(ns_to_ms("999999"), Some(0));
        assert_eq!(ns_to_ms("0"), Some(0));
        assert_eq!(ns_to_ms("000001000000"), Some(1));
        assert_eq!(ns_to_ms("-1"), None);
        assert_eq!(ns_to_ms("1.5"), None);
        assert_eq!(ns_to_ms(""), None);
        assert_eq!(ns_to_ms(&"9".repeat(40)), None);
    }

    #[test]
    fn media_types_ignore_parameters_and_case() {
        assert!(media_type_is(
            "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
            &["application/vnd.elasticsearch+x-ndjson"]
        ));
        assert!(media_type_is("Application/JSON", &["application/json"]));
        assert!(!media_type_is("", &["application/json"]));
    }
}
