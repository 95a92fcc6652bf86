//! Fake collectors on 127.0.0.1 and a log capture, shared by the client's
//! integration tests. Every loop here is bounded in count and time.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use helios_client::{ClientBuilder, ObjectId};
use serde_json::Value;

/// A fake server stops by itself after this long, whatever the test does.
const SERVER_MAX_LIFETIME_MS: u64 = 60_000;
/// Most connections one fake server accepts.
const SERVER_MAX_CONNECTIONS: usize = 256;
/// Poll interval of the accept loop and of stalled connections.
const POLL_MS: u64 = 5;
/// Read timeout on server sockets, so they notice `stop`.
const SERVER_READ_TIMEOUT_MS: u64 = 50;
/// Largest request a fake server reads.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// When its last byte was read.
    pub at: Instant,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    /// The body as received (before gunzip).
    pub raw_body: Vec<u8>,
    /// One value per non-empty NDJSON line (Null if a line is not JSON).
    pub events: Vec<Value>,
}

impl SeenRequest {
    /// A header's value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The `_id` of every event, in order.
    pub fn ids(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| e["_id"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// What the fake server does after reading a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with every event accepted.
    Accept,
    /// 200 with every event accepted, body sent chunked.
    AcceptChunked,
    /// 200 rejecting these `(index, error)` pairs.
    Reject(Vec<(usize, String)>),
    /// Any status, extra headers and body (Content-Length added).
    Status(u16, Vec<(String, String)>, String),
    /// Close the connection without answering (the response is "lost").
    Close,
    /// Keep the connection open and never answer.
    Stall,
    /// Write these bytes and close.
    Garbage(Vec<u8>),
}

type Handler = dyn Fn(usize, &SeenRequest) -> Reply + Send + Sync;

/// A fake collector on 127.0.0.1 with a port chosen by the OS.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    accepted_connections: Arc<AtomicUsize>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Serves every request with `handler(request_number, request)`;
    /// request numbers count from 0 across all connections.
    pub fn start(handler: impl Fn(usize, &SeenRequest) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let accepted_connections = Arc::new(AtomicUsize::new(0));
        let accept_thread = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            let accepted = Arc::clone(&accepted_connections);
            thread::spawn(move || accept_loop(listener, stop, seen, handler, accepted))
        };
        FakeServer {
            addr,
            stop,
            seen,
            accepted_connections,
            accept_thread: Some(accept_thread),
        }
    }

    /// A well-behaved collector: 200 with everything accepted.
    pub fn accepting() -> Self {
        Self::start(|_, _| Reply::Accept)
    }

    /// The URL to give the client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted_connections.load(Ordering::Acquire)
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().expect("seen lock").clone()
    }

    /// Every `_id` seen so far, in arrival order, duplicates included.
    pub fn ids(&self) -> Vec<String> {
        self.requests().iter().flat_map(SeenRequest::ids).collect()
    }

    /// Waits (bounded by `timeout`) until at least `n` requests were seen.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.seen.lock().expect("seen lock").len() >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(POLL_MS));
        }
        false
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    handler: Arc<Handler>,
    accepted: Arc<AtomicUsize>,
) {
    let deadline = Instant::now() + Duration::from_millis(SERVER_MAX_LIFETIME_MS);
    let counter = Arc::new(AtomicUsize::new(0));
    let mut connections = Vec::new();
    while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) if connections.len() < SERVER_MAX_CONNECTIONS => {
                accepted.fetch_add(1, Ordering::AcqRel);
                let (stop, seen, handler, counter) = (
                    Arc::clone(&stop),
                    Arc::clone(&seen),
                    Arc::clone(&handler),
                    Arc::clone(&counter),
                );
                connections.push(thread::spawn(move || {
                    serve_connection(stream, &stop, deadline, &seen, &*handler, &counter)
                }));
            }
            Ok(_) => {} // over the connection bound: dropped (closed)
            Err(_) => thread::sleep(Duration::from_millis(POLL_MS)),
        }
    }
    stop.store(true, Ordering::Release);
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve_connection(
    mut stream: TcpStream,
    stop: &AtomicBool,
    deadline: Instant,
    seen: &Mutex<Vec<SeenRequest>>,
    handler: &Handler,
    counter: &AtomicUsize,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(SERVER_READ_TIMEOUT_MS)));
    let mut buf = Vec::new();
    let live = || !stop.load(Ordering::Acquire) && Instant::now() < deadline;
    while live() {
        let Some(request) = read_request(&mut stream, &mut buf, &live) else {
            return;
        };
        let number = counter.fetch_add(1, Ordering::AcqRel);
        seen.lock().expect("seen lock").push(request.clone());
        let reply = handler(number, &request);
        if !answer(&mut stream, &request, reply, &live) {
            return;
        }
    }
}

/// Reads one request; None on close, error or stop.
fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    live: &dyn Fn() -> bool,
) -> Option<SeenRequest> {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head_len)) = request.parse(buf) {
            let headers: HashMap<String, String> = request
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).into_owned();
                    (h.name.to_ascii_lowercase(), value)
                })
                .collect();
            let length: usize = headers.get("content-length")?.parse().ok()?;
            while buf.len() < head_len + length {
                if !read_some(stream, buf, &mut chunk, live)? {
                    return None;
                }
            }
            let raw_body: Vec<u8> = buf.drain(..head_len + length).skip(head_len).collect();
            let events = decode_events(&headers, &raw_body);
            return Some(SeenRequest {
                at: Instant::now(),
                headers,
                raw_body,
                events,
            });
        }
        if buf.len() > MAX_REQUEST_BYTES || !read_some(stream, buf, &mut chunk, live)? {
            return None;
        }
    }
}

/// Some(true) after reading bytes, Some(false) at end of stream, None on
/// error or stop; read timeouts just re-check `live`.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    chunk: &mut [u8],
    live: &dyn Fn() -> bool,
) -> Option<bool> {
    while live() {
        match stream.read(chunk) {
            Ok(0) => return Some(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Some(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
    None
}

fn decode_events(headers: &HashMap<String, String>, raw_body: &[u8]) -> Vec<Value> {
    let body = if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
        let mut out = Vec::new();
        let _ = flate2::read::GzDecoder::new(raw_body).read_to_end(&mut out);
        out
    } else {
        raw_body.to_vec()
    };
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap_or(Value::Null))
        .collect()
}

/// Writes the reply; false if the connection must end.
fn answer(
    stream: &mut TcpStream,
    request: &SeenRequest,
    reply: Reply,
    live: &dyn Fn() -> bool,
) -> bool {
    let accept_body = |rejected: &[(usize, String)]| {
        let rejected: Vec<Value> = rejected
            .iter()
            .map(|(index, error)| serde_json::json!({"index": index, "error": error}))
            .collect();
        let accepted = request.events.len() - rejected.len();
        serde_json::json!({"accepted": accepted, "rejected": rejected}).to_string()
    };
    let response = match reply {
        Reply::Accept => respond(200, &[], &accept_body(&[])),
        Reply::Reject(rejected) => respond(200, &[], &accept_body(&rejected)),
        Reply::AcceptChunked => {
            let body = accept_body(&[]);
            let (a, b) = body.split_at(body.len() / 2);
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
            .into_bytes()
        }
        Reply::Status(status, headers, body) => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            respond(status, &headers, &body)
        }
        Reply::Close => return false,
        Reply::Stall => {
            while live() {
                thread::sleep(Duration::from_millis(POLL_MS));
            }
            return false;
        }
        Reply::Garbage(bytes) => {
            let _ = stream.write_all(&bytes);
            return false;
        }
    };
    stream.write_all(&response).is_ok()
}

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// A URL on 127.0.0.1 where nothing listens (a port the OS just freed).
pub fn unreachable_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// A builder with every wait short, so failure tests end in well under a
/// second or two.
pub fn quick_client(url: &str) -> ClientBuilder {
    helios_client::Client::builder()
        .endpoint(url)
        .host("test-host")
        .app("test-app")
        .max_batch_delay(Duration::from_millis(5))
        .connect_timeout(Duration::from_millis(200))
        .read_timeout(Duration::from_millis(300))
        .write_timeout(Duration::from_millis(300))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .max_attempts(3)
        .max_retry_time(Duration::from_secs(5))
        .shutdown_timeout(Duration::from_secs(2))
}

/// Records `count` events of `event_type` with a unique `marker` field
/// `"{prefix}-{i}"`; returns `(id, marker)` pairs and the time all the
/// record() calls took.
pub fn record_marked(
    client: &helios_client::Client,
    event_type: &str,
    prefix: &str,
    count: usize,
) -> (Vec<(ObjectId, String)>, Duration) {
    let started = Instant::now();
    let recorded: Vec<(ObjectId, String)> = (0..count)
        .map(|i| {
            let marker = format!("{prefix}-{i}");
            let id = client.record(event_type, serde_json::json!({"marker": marker, "seq": i}));
            (id, marker)
        })
        .collect();
    (recorded, started.elapsed())
}

/// The generous bound on 1,000 record() calls (a guard, not a benchmark).
pub const RECORD_1000_MAX: Duration = Duration::from_millis(500);

// ---- log capture -------------------------------------------------------

struct CaptureLog;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for CaptureLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LINES.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger once per test binary.
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = log::set_logger(&CaptureLog);
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Every captured line, keyed by the `_id` it logs (lines without one are
/// skipped); several lines for one id are all kept.
pub fn logged_by_id() -> HashMap<String, Vec<String>> {
    let lines = LINES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for line in lines {
        let Some(start) = line.find("\"_id\":\"").map(|i| i + 7) else {
            continue;
        };
        if let Some(id) = line.get(start..start + 24) {
            by_id.entry(id.to_owned()).or_default().push(line);
        }
    }
    by_id
}

/// Asserts that each recorded event was logged whole at least once in a
/// line containing `reason`: its `_id`, its marker, and a parseable JSON
/// document after the last `": "` of the prefix.
pub fn assert_each_logged(recorded: &[(ObjectId, String)], reason: &str) {
    let by_id = logged_by_id();
    for (id, marker) in recorded {
        let lines = by_id
            .get(&id.to_hex())
            .unwrap_or_else(|| panic!("event {id} ({marker}) was not logged"));
        let line = lines
            .iter()
            .find(|l| l.contains(reason))
            .unwrap_or_else(|| panic!("event {id} not logged with {reason:?}: {lines:?}"));
        let doc_start = line.find("{\"_id\"").expect("document in line");
        let doc: Value = serde_json::from_str(&line[doc_start..]).expect("whole document logged");
        assert_eq!(doc["_id"], Value::String(id.to_hex()));
        assert_eq!(doc["marker"], Value::String(marker.clone()));
    }
}

/// Asserts that none of these events was logged as lost.
pub fn assert_none_logged(recorded: &[(ObjectId, String)]) {
    let by_id = logged_by_id();
    for (id, marker) in recorded {
        assert!(
            !by_id.contains_key(&id.to_hex()),
            "{id} ({marker}) logged: {:?}",
            by_id[&id.to_hex()]
        );
    }
}
