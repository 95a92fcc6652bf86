//! The relay sink (`--store http(s)://upstream:port`): a collector on an app
//! host journals events and acks its clients as usual; its flusher forwards
//! each batch to the upstream collector's `/v1/events` as gzipped NDJSON,
//! marked as relayed (`Helios-Relay: 1`, and the relay-role key when one is
//! given), over one keep-alive connection. The stored documents already
//! carry `_id`, `ts`, `ts_raw`, `recv` and `app`, which the upstream keeps;
//! its answer is the only thing that lets the checkpoint move, and a resend
//! after a lost answer is deduplicated upstream by `_id`.
//!
//! `https://` upstreams (a TLS-terminating load balancer in front of the
//! central collectors, DESIGN §9) use rustls over the same blocking socket,
//! trusting the Mozilla roots (webpki-roots) plus an optional PEM file of
//! private CAs.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use helios_store::{
    EventDoc, RefusedEvent, RetentionOutcome, Sink, SinkError, StoreError, WriteOutcome,
};

/// Events per forwarded request (well under the upstream's default
/// `--max-events-per-request`).
pub const RELAY_MAX_BATCH_EVENTS: usize = 1000;
/// Connect, read and write timeout towards the upstream.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest upstream response accepted.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Forwards batches to an upstream collector.
pub struct RelaySink {
    host_port: String,
    path: String,
    api_key: Option<String>,
    /// `Some` for `https://` upstreams.
    tls: Option<Tls>,
    conn: Option<Upstream>,
    body: Vec<u8>,
}

struct Tls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

/// One keep-alive connection to the upstream, plain or TLS.
enum Upstream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Upstream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Upstream::Plain(s) => s.read(buf),
            Upstream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Upstream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Upstream::Plain(s) => s.write(buf),
            Upstream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Upstream::Plain(s) => s.flush(),
            Upstream::Tls(s) => s.flush(),
        }
    }
}

/// The TLS client settings: Mozilla's roots plus the PEM certificates in
/// `ca_file` (a private CA), TLS 1.2+ via rustls with the ring provider.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let invalid = |reason: String| StoreError::InvalidUri { reason };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| invalid(format!("--upstream-ca-file {}: {e}", path.display())))?;
        let mut added = 0usize;
        for cert in certs {
            let cert =
                cert.map_err(|e| invalid(format!("--upstream-ca-file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("--upstream-ca-file {}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(invalid(format!(
                "--upstream-ca-file {} holds no PEM certificate",
                path.display()
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::InvalidUri {
            reason: format!("TLS setup: {e}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl RelaySink {
    /// A sink for `http(s)://host[:port][/prefix]`; `api_key` is sent as
    /// `Authorization: Bearer` (a relay-role key on the upstream);
    /// `ca_file` adds trusted CAs for `https://`.
    pub fn open(
        url: &str,
        api_key: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<RelaySink, StoreError> {
        let (rest, default_port, secure) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, 80, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (rest, 443, true)
        } else {
            return Err(StoreError::InvalidUri {
                reason: "a relay store must be http(s)://host[:port][/prefix]".into(),
            });
        };
        let (host_port, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, format!("/{}", p.trim_end_matches('/'))),
            None => (rest, String::new()),
        };
        if host_port.is_empty() || host_port.contains('@') {
            return Err(StoreError::InvalidUri {
                reason: "relay store needs a host (and no credentials in the URI)".into(),
            });
        }
        let host_port = if host_port
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            host_port.to_string()
        } else {
            format!("{host_port}:{default_port}")
        };
        let path = if prefix == "/" {
            "/v1/events".to_string()
        } else {
            format!("{prefix}/v1/events")
        };
        let tls = if secure {
            let host = host_port
                .rsplit_once(':')
                .map_or(host_port.as_str(), |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let server_name =
                ServerName::try_from(host.to_owned()).map_err(|_| StoreError::InvalidUri {
                    reason: "the https upstream's host is not a valid DNS name or IP address"
                        .into(),
                })?;
            Some(Tls {
                config: tls_config(ca_file)?,
                server_name,
            })
        } else {
            None
        };
        Ok(RelaySink {
            host_port,
            path,
            api_key,
            tls,
            conn: None,
            body: Vec::new(),
        })
    }

    fn connect(&mut self) -> std::io::Result<&mut Upstream> {
        if self.conn.is_none() {
            let addr = self
                .host_port
                .to_socket_addrs()?
                .next()
                .ok_or_else(|| std::io::Error::other("upstream address does not resolve"))?;
            let s = TcpStream::connect_timeout(&addr, UPSTREAM_TIMEOUT)?;
            s.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
            s.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
            s.set_nodelay(true)?;
            let conn = match &self.tls {
                None => Upstream::Plain(s),
                Some(tls) => {
                    let client =
                        rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
                            .map_err(std::io::Error::other)?;
                    let mut stream = rustls::StreamOwned::new(client, s);
                    // Handshake now, so a bad certificate fails the connect
                    // (and `ping`) with its own message.
                    while stream.conn.is_handshaking() {
                        stream.conn.complete_io(&mut stream.sock)?;
                    }
                    Upstream::Tls(Box::new(stream))
                }
            };
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| std::io::Error::other("not connected"))
    }

    /// Sends the request and reads the response (status, body).
    fn exchange(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let conn = self.connect()?;
        conn.write_all(request)?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 16 << 10];
        loop {
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "upstream closed",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE_BYTES {
                return Err(std::io::Error::other("upstream response too large"));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            let head_len = match resp.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => continue,
                Err(e) => return Err(std::io::Error::other(format!("bad upstream response: {e}"))),
            };
            let status = resp.code.unwrap_or(0);
            let mut close = false;
            let mut len = 0usize;
            for h in resp.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    len = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                } else if h.name.eq_ignore_ascii_case("connection")
                    && h.value.eq_ignore_ascii_case(b"close")
                {
                    close = true;
                }
            }
            if buf.len() < head_len + len {
                continue;
            }
            let body = buf[head_len..head_len + len].to_vec();
            if close {
                self.conn = None;
            }
            return Ok((status, body));
        }
    }
}

impl Sink for RelaySink {
    fn write_batch(&mut self, batch: &[EventDoc]) -> Result<WriteOutcome, SinkError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.body.clear();
        {
            let mut gz = flate2::write::GzEncoder::new(&mut self.body, flate2::Compression::fast());
            for doc in batch {
                let _ = gz.write_all(doc.doc.as_bytes());
                let _ = gz.write_all(b"\n");
            }
            if let Err(e) = gz.finish() {
                return Err(SinkError::transient(
                    "compressing a relay batch",
                    e.to_string(),
                ));
            }
        }
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Encoding: gzip\r\nHelios-Relay: 1\r\nContent-Length: {}\r\n",
            self.path,
            self.host_port,
            self.body.len()
        );
        if let Some(key) = &self.api_key {
            request.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(&self.body);
        let (status, body) = match self.exchange(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(SinkError::transient(
                    "forwarding to the upstream collector",
                    e.to_string(),
                ));
            }
        };
        match status {
            200 => {}
            408 | 429 | 500..=599 => {
                return Err(SinkError::transient(
                    "forwarding to the upstream collector",
                    format!("upstream answered {status}"),
                ));
            }
            _ => {
                self.conn = None;
                return Err(SinkError::permanent(
                    "forwarding to the upstream collector",
                    format!(
                        "upstream answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    ),
                ));
            }
        }
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| SinkError::transient("reading the upstream's answer", e.to_string()))?;
        let mut refused = Vec::new();
        for rejected in answer["rejected"].as_array().into_iter().flatten() {
            let index = rejected["index"]
                .as_u64()
                .and_then(|i| usize::try_from(i).ok());
            let Some((index, doc)) = index.and_then(|i| batch.get(i).map(|d| (i, d))) else {
                return Err(SinkError::transient(
                    "reading the upstream's answer",
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
        // The upstream stored every event it did not reject.
        let stored = WriteOutcome {
            inserted: (batch.len() - refused.len()) as u64,
            duplicates: 0,
        };
        if refused.is_empty() {
            Ok(stored)
        } else {
            refused.sort_by_key(|r| r.index);
            refused.dedup_by_key(|r| r.index);
            Err(SinkError::Refused {
                stored: WriteOutcome {
                    inserted: (batch.len() - refused.len()) as u64,
                    duplicates: 0,
                },
                refused,
            })
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
        self.connect().map(|_| ()).map_err(|e| {
            SinkError::transient("connecting to the upstream collector", e.to_string())
        })
    }

    fn describe(&self) -> String {
        format!(
            "{}://{}{}",
            if self.tls.is_some() { "https" } else { "http" },
            self.host_port,
            self.path.trim_end_matches("/v1/events")
        )
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
}
