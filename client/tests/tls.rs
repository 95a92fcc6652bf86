//! `https://` through the public transport (feature `tls`), against a small
//! rustls server with a private CA (`tests/tls/`: CA and a server
//! certificate for `localhost` and 127.0.0.1, the same files as ingest's
//! relay tests): verification, keep-alive across session tickets, idle
//! connections the server closed, and timeouts and deadlines under TLS.
#![cfg(feature = "tls")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use helios_client::transport::{
    Endpoint, HttpError, PostRequest, Timeouts, TlsConfig, TlsConfigError, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// How long a test server's connection waits for a request before ending.
const SERVER_IDLE: Duration = Duration::from_secs(20);
/// Most connections one test server accepts.
const SERVER_MAX_CONNECTIONS: usize = 16;
/// A timeout short enough to keep tests fast, long enough for a loaded CI
/// machine to finish a loopback handshake.
const SHORT: Duration = Duration::from_millis(400);
/// Bound on how late a timed-out call may return.
const LATE: Duration = Duration::from_secs(3);

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 28\r\n\r\n{\"accepted\":1,\"rejected\":[]}";

fn tls_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tls")
}

/// What the test server does on each connection.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Answers every request with [`ANSWER`], keeping the connection.
    Answer,
    /// Answers one request, then closes (TLS close_notify, then FIN).
    AnswerOnceThenClose,
    /// Completes the handshake, reads requests, never answers.
    Stall,
    /// Accepts TCP and never speaks TLS.
    Mute,
}

struct TlsServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl TlsServer {
    fn start(behaviour: Behaviour) -> TlsServer {
        let dir = tls_dir();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .expect("server.pem")
                .map(|c| c.expect("certificate"))
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .expect("certificate and key"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        thread::spawn(move || {
            for socket in listener.incoming().take(SERVER_MAX_CONNECTIONS) {
                let Ok(socket) = socket else { continue };
                counted.fetch_add(1, Ordering::AcqRel);
                let config = Arc::clone(&config);
                thread::spawn(move || serve(socket, config, behaviour));
            }
        });
        TlsServer { addr, connections }
    }

    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }
}

fn serve(socket: TcpStream, config: Arc<rustls::ServerConfig>, behaviour: Behaviour) {
    let _ = socket.set_read_timeout(Some(SERVER_IDLE));
    if let Behaviour::Mute = behaviour {
        let mut socket = socket;
        let _ = socket.read(&mut [0u8; 1024]);
        thread::sleep(SERVER_IDLE);
        return;
    }
    let conn = rustls::ServerConnection::new(config).expect("server connection");
    let mut tls = rustls::StreamOwned::new(conn, socket);
    let mut buf = Vec::new();
    while read_request(&mut tls, &mut buf) {
        match behaviour {
            Behaviour::Answer => {
                if tls.write_all(ANSWER).and_then(|()| tls.flush()).is_err() {
                    return;
                }
            }
            Behaviour::AnswerOnceThenClose => {
                let _ = tls.write_all(ANSWER).and_then(|()| tls.flush());
                tls.conn.send_close_notify();
                let _ = tls.flush();
                return;
            }
            Behaviour::Stall => {}
            Behaviour::Mute => return,
        }
    }
}

/// Reads one whole request (head + Content-Length body) out of `buf` and
/// the stream; false on close or error.
fn read_request(from: &mut impl Read, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = request.parse(buf) {
            let length: usize = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head_len + length {
                buf.drain(..head_len + length);
                return true;
            }
        }
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn timeouts(each: Duration) -> Timeouts {
    Timeouts {
        connect: each,
        read: each,
        write: each,
    }
}

/// A transport to `url` trusting the test CA.
fn trusting_transport(url: &str, each: Duration) -> Transport {
    let tls = TlsConfig::new(Some(&tls_dir().join("ca.pem"))).expect("test CA");
    let endpoint = Endpoint::parse(url).expect("https endpoint");
    Transport::new(vec![endpoint], timeouts(each)).with_tls_config(tls)
}

fn post(transport: &mut Transport, body: &[u8]) -> Result<u16, HttpError> {
    let request = PostRequest::new(body).sent_at_unix_ms(1);
    transport
        .post(0, &request, &|| None)
        .map(|response| response.status)
}

#[test]
fn an_https_endpoint_signed_by_an_extra_ca_is_verified_and_kept_alive() {
    let server = TlsServer::start(Behaviour::Answer);
    let mut transport = trusting_transport(&server.url(), Duration::from_secs(10));
    // connect() then posts: the server's session tickets arrive after the
    // handshake and wait on the idle socket; they must not make the
    // liveness check throw the connection away.
    transport.connect(0, &|| None).expect("handshake");
    thread::sleep(Duration::from_millis(100));
    for _ in 0..3 {
        assert_eq!(post(&mut transport, b"{}\n").expect("post"), 200);
        thread::sleep(Duration::from_millis(50));
    }
    // A body larger than rustls' 64 KiB send buffer goes through whole.
    let big = vec![b' '; 300 * 1024];
    assert_eq!(post(&mut transport, &big).expect("big post"), 200);
    assert_eq!(server.connections(), 1, "one kept-alive TLS connection");
}

#[test]
fn the_name_in_the_certificate_is_checked_by_dns_name_too() {
    let server = TlsServer::start(Behaviour::Answer);
    let url = format!("https://localhost:{}", server.addr.port());
    let mut transport = trusting_transport(&url, Duration::from_secs(10));
    assert_eq!(post(&mut transport, b"{}\n").expect("post"), 200);
}

#[test]
fn an_untrusted_certificate_fails_the_connect_with_its_reason() {
    let server = TlsServer::start(Behaviour::Answer);
    let endpoint = Endpoint::parse(&server.url()).expect("https endpoint");
    // Mozilla's roots only: the test CA is not among them.
    let mut transport = Transport::new(vec![endpoint], timeouts(Duration::from_secs(10)));
    let error = transport.connect(0, &|| None).expect_err("untrusted");
    assert!(matches!(error, HttpError::Tls { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("certificate") && message.contains("UnknownIssuer"),
        "{message}"
    );
    assert!(matches!(
        post(&mut transport, b"{}\n"),
        Err(HttpError::Tls { .. })
    ));
}

#[test]
fn a_server_that_closed_an_idle_tls_connection_gets_a_new_one() {
    let server = TlsServer::start(Behaviour::AnswerOnceThenClose);
    let mut transport = trusting_transport(&server.url(), Duration::from_secs(10));
    assert_eq!(post(&mut transport, b"{}\n").expect("first"), 200);
    thread::sleep(Duration::from_millis(100));
    // The idle check sees the close and connects afresh instead of writing
    // into a dead connection.
    assert_eq!(post(&mut transport, b"{}\n").expect("second"), 200);
    assert_eq!(server.connections(), 2);
}

#[test]
fn read_timeouts_apply_under_tls() {
    let server = TlsServer::start(Behaviour::Stall);
    let mut transport = trusting_transport(&server.url(), SHORT);
    let started = Instant::now();
    let error = post(&mut transport, b"{}\n").expect_err("stalled");
    assert!(matches!(error, HttpError::Timeout), "{error:?}");
    assert!(started.elapsed() < SHORT + LATE, "{:?}", started.elapsed());
}

#[test]
fn the_deadline_cuts_a_tls_read_short() {
    let server = TlsServer::start(Behaviour::Stall);
    let mut transport = trusting_transport(&server.url(), Duration::from_secs(30));
    transport.connect(0, &|| None).expect("handshake");
    let deadline = Instant::now() + SHORT;
    let request = PostRequest::new(b"{}\n");
    let error = transport
        .post(0, &request, &|| Some(deadline))
        .expect_err("deadline");
    assert!(matches!(error, HttpError::Timeout), "{error:?}");
    assert!(Instant::now() < deadline + LATE);
}

#[test]
fn a_server_that_never_speaks_tls_times_out_the_handshake() {
    let server = TlsServer::start(Behaviour::Mute);
    let mut transport = trusting_transport(&server.url(), SHORT);
    let started = Instant::now();
    let error = transport.connect(0, &|| None).expect_err("mute");
    assert!(matches!(error, HttpError::Timeout), "{error:?}");
    assert!(started.elapsed() < SHORT + LATE, "{:?}", started.elapsed());
}

#[test]
fn a_bad_ca_file_is_refused_with_its_path() {
    let missing = tls_dir().join("no-such-ca.pem");
    let error = TlsConfig::new(Some(&missing)).expect_err("missing file");
    assert!(matches!(error, TlsConfigError::CaFile { .. }), "{error:?}");
    assert!(error.to_string().contains("no-such-ca.pem"), "{error}");
    // A key file holds no certificate.
    let key = tls_dir().join("server.key");
    let error = TlsConfig::new(Some(&key)).expect_err("no certificate");
    assert!(
        matches!(error, TlsConfigError::NoCertificate { .. }),
        "{error:?}"
    );
}
