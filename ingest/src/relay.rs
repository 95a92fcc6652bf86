//! The relay sink (`--store http(s)://upstream:port`): a collector on an app
//! host journals events and acks its clients as usual; its flusher forwards
//! each batch to the upstream collector's `/v1/events` as gzipped NDJSON,
//! marked as relayed (`Helios-Relay: 1`, and the relay-role key when one is
//! given), over one keep-alive connection. The stored documents already
//! carry `_id`, `ts`, `ts_raw`, `recv` and `app`, which the upstream keeps
//! (so no `Helios-Sent-At`: their times were corrected once, here); its
//! answer is the only thing that lets the checkpoint move, and a resend
//! after a lost answer is deduplicated upstream by `_id`.
//!
//! The HTTP is the client crate's ([`helios_client::transport`], feature
//! `tls`): one HTTP client for apps and relays, with its bounded reads,
//! Content-Length/chunked/1xx framing, timeouts and idle-connection checks.
//! A response it cannot frame (a hostile or broken upstream) is a transport
//! error, so a transient one here. `https://` upstreams (a TLS-terminating
//! load balancer in front of the central collectors, DESIGN §9) use rustls
//! over the same blocking socket, trusting the Mozilla roots plus an
//! optional PEM file of private CAs (`--upstream-ca-file`); the handshake
//! happens on connect, so `ping` reports a bad certificate.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use helios_client::transport::{
    Endpoint, PostRequest, Timeouts, TlsConfig, TlsConfigError, Transport,
};
use helios_store::{
    EventDoc, RefusedEvent, RetentionOutcome, Sink, SinkError, StoreError, WriteOutcome,
};

/// Events per forwarded request (well under the upstream's default
/// `--max-events-per-request`).
pub const RELAY_MAX_BATCH_EVENTS: usize = 1000;
/// Connect, read and write timeout towards the upstream.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an upstream's error body quoted in a sink error.
const MAX_QUOTED_ERROR_BYTES: usize = 512;
/// The transport's one endpoint.
const UPSTREAM: usize = 0;
const FORWARDING: &str = "forwarding to the upstream collector";
const READING_ANSWER: &str = "reading the upstream's answer";

/// Forwards batches to an upstream collector.
pub struct RelaySink {
    transport: Transport,
    api_key: Option<String>,
    /// `http(s)://host:port/prefix`, for `describe`.
    description: String,
    /// The gzipped body, reused between batches.
    body: Vec<u8>,
}

/// The flusher has no deadline of its own: the transport's timeouts bound
/// each call, and a failure is retried by the flusher.
fn no_deadline() -> Option<Instant> {
    None
}

impl RelaySink {
    /// A sink for `http(s)://host[:port][/prefix]`; `api_key` is sent as
    /// `Authorization: Bearer` (a relay-role key on the upstream);
    /// `ca_file` adds trusted CAs for `https://`. Contacts nothing.
    pub fn open(
        url: &str,
        api_key: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<RelaySink, StoreError> {
        // The endpoint error never quotes the URL (it may hold user info).
        let endpoint = Endpoint::parse(url).map_err(|e| StoreError::InvalidUri {
            reason: format!(
                "a relay store must be http(s)://host[:port][/prefix] \
                 (no credentials: use --upstream-api-key): {e}"
            ),
        })?;
        if let Some(key) = &api_key {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(StoreError::InvalidUri {
                    reason: "--upstream-api-key must be visible ASCII without spaces".into(),
                });
            }
        }
        let description = endpoint.base_url();
        let tls = if endpoint.is_tls() {
            Some(TlsConfig::new(ca_file).map_err(|e| StoreError::InvalidUri {
                reason: match e {
                    TlsConfigError::Setup(_) => e.to_string(),
                    _ => format!("--upstream-ca-file {e}"),
                },
            })?)
        } else {
            None
        };
        let timeouts = Timeouts {
            connect: UPSTREAM_TIMEOUT,
            read: UPSTREAM_TIMEOUT,
            write: UPSTREAM_TIMEOUT,
        };
        let mut transport = Transport::new(vec![endpoint], timeouts);
        if let Some(tls) = tls {
            transport = transport.with_tls_config(tls);
        }
        Ok(RelaySink {
            transport,
            api_key,
            description,
            body: Vec::new(),
        })
    }

    /// Gzips `batch` as NDJSON into `self.body`.
    fn encode(&mut self, batch: &[EventDoc]) -> std::io::Result<()> {
        self.body.clear();
        let mut gz = flate2::write::GzEncoder::new(&mut self.body, flate2::Compression::fast());
        for doc in batch {
            gz.write_all(doc.doc.as_bytes())?;
            gz.write_all(b"\n")?;
        }
        gz.finish().map(|_| ())
    }
}

/// The upstream's 200 answer, `{"accepted":…, "rejected":[{"index","error"}]}`,
/// as the sink's outcome: every event not rejected is stored upstream.
fn judge_answer(batch: &[EventDoc], body: &[u8]) -> Result<WriteOutcome, SinkError> {
    let answer: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| SinkError::transient(READING_ANSWER, e.to_string()))?;
    let mut refused = Vec::new();
    for rejected in answer["rejected"].as_array().into_iter().flatten() {
        let index = rejected["index"]
            .as_u64()
            .and_then(|i| usize::try_from(i).ok());
        let Some((index, doc)) = index.and_then(|i| batch.get(i).map(|d| (i, d))) else {
            return Err(SinkError::transient(
                READING_ANSWER,
                format!("upstream rejected an event outside the batch: {rejected}"),
            ));
        };
        let reason = rejected["error"].as_str().unwrap_or("rejected upstream");
        refused.push(RefusedEvent {
            index,
            id: doc.id,
            reason: format!("upstream rejected it: {reason}"),
        });
    }
    refused.sort_by_key(|r| r.index);
    refused.dedup_by_key(|r| r.index);
    // The upstream stored every event it did not reject.
    let stored = WriteOutcome {
        inserted: (batch.len() - refused.len()) as u64,
        duplicates: 0,
    };
    if refused.is_empty() {
        Ok(stored)
    } else {
        Err(SinkError::Refused { stored, refused })
    }
}

/// The start of an upstream's error body, as text fit for a log line.
fn quote(body: &[u8]) -> String {
    // Cut by bytes before decoding: a cut inside a character becomes U+FFFD.
    let cut = &body[..body.len().min(MAX_QUOTED_ERROR_BYTES)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Sink for RelaySink {
    fn write_batch(&mut self, batch: &[EventDoc]) -> Result<WriteOutcome, SinkError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.encode(batch)
            .map_err(|e| SinkError::transient("compressing a relay batch", e.to_string()))?;
        let request = PostRequest::new(&self.body)
            .gzip(true)
            .api_key(self.api_key.as_deref())
            .relayed(true);
        // Any transport error (refused, reset, timed out, unframable or
        // oversized answer) closes the connection and is worth a retry.
        let response = self
            .transport
            .post(UPSTREAM, &request, &no_deadline)
            .map_err(|e| SinkError::transient(FORWARDING, e.to_string()))?;
        match response.status {
            200 => judge_answer(batch, &response.body),
            status @ (408 | 429 | 500..=599) => Err(SinkError::transient(
                FORWARDING,
                format!("upstream answered {status}"),
            )),
            status => Err(SinkError::permanent(
                FORWARDING,
                format!("upstream answered {status}: {}", quote(&response.body)),
            )),
        }
    }

    fn max_batch_events(&self) -> usize {
        RELAY_MAX_BATCH_EVENTS
    }

    fn delete_older_than(
        &mut self,
        _recv_cutoff_ms: i64,
        _max_rows_per_txn: usize,
    ) -> Result<RetentionOutcome, SinkError> {
        // A relay keeps nothing: retention belongs to the upstream's store.
        Ok(RetentionOutcome::default())
    }

    fn ping(&mut self) -> Result<(), SinkError> {
        self.transport.connect(UPSTREAM, &no_deadline).map_err(|e| {
            SinkError::transient("connecting to the upstream collector", e.to_string())
        })
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_upstream_opens_without_contacting_it() {
        let sink = RelaySink::open("https://central.example/base", None, None).unwrap();
        assert_eq!(sink.describe(), "https://central.example:443/base");
    }

    #[test]
    fn an_http_upstream_opens_without_credentials_in_its_description() {
        let sink = RelaySink::open("http://upstream.example:8080/base", None, None).unwrap();
        assert_eq!(sink.describe(), "http://upstream.example:8080/base");
        assert!(
            RelaySink::open("http://key@upstream:8080", None, None).is_err(),
            "credentials belong in --upstream-api-key"
        );
    }

    #[test]
    fn bad_upstream_urls_and_keys_are_refused_at_open_without_echoing_the_url() {
        for url in [
            "http://key@secrethost:8080",
            "http:/\u{e9}x",
            "http://secr\u{e9}thost:8080",
            "http://secrethost:0",
            "http://secrethost:8080/p?q=1",
            "ftp://secrethost",
        ] {
            let Err(StoreError::InvalidUri { reason }) = RelaySink::open(url, None, None) else {
                panic!("{url:?} accepted");
            };
            assert!(!reason.contains("secret"), "{reason}");
        }
        for key in ["", "k\r\nX-Evil: 1", "a b"] {
            assert!(
                RelaySink::open("http://upstream:8080", Some(key.to_owned()), None).is_err(),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_bad_upstream_ca_file_is_refused_at_open_with_its_path() {
        let missing = Path::new("/nonexistent/helios-ca.pem");
        let Err(StoreError::InvalidUri { reason }) =
            RelaySink::open("https://central.example", None, Some(missing))
        else {
            panic!("a missing CA file was accepted");
        };
        assert!(
            reason.starts_with("--upstream-ca-file /nonexistent/helios-ca.pem"),
            "{reason}"
        );
        // Plain http:// has no use for it, as before.
        assert!(RelaySink::open("http://central.example", None, Some(missing)).is_ok());
    }

    #[test]
    fn an_error_body_is_quoted_bounded_and_on_one_line() {
        assert_eq!(quote(b"bad\r\nkey"), "bad  key");
        let long = "\u{e9}".repeat(MAX_QUOTED_ERROR_BYTES);
        let quoted = quote(long.as_bytes());
        assert!(
            quoted.len() <= MAX_QUOTED_ERROR_BYTES + 3,
            "{}",
            quoted.len()
        );
    }
}
