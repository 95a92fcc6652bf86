//! A tiny HTTP/1.1 server on 127.0.0.1:0 (std threads, bounded loops) and
//! helpers to run the loadgen binary against it.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest a test server lives, whatever the test does.
const SERVER_LIFETIME: Duration = Duration::from_secs(120);
/// Longest one loadgen run may take before the test fails.
const LOADGEN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection waits for more of a burst before answering.
const BURST_WAIT: Duration = Duration::from_millis(200);

/// One received request.
#[derive(Debug, Clone)]
pub struct Req {
    /// Arrival order over the whole server, from 0.
    pub seq: u64,
    /// Position in the burst it arrived in (see [`Opts::min_burst`]).
    pub burst_index: usize,
    pub head: String,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body, gunzipped when the request says so.
    pub fn decoded_body(&self) -> Vec<u8> {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .expect("valid gzip body");
            out
        } else {
            self.body.clone()
        }
    }

    /// The events of a JSON object / array / NDJSON body.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let body = self.decoded_body();
        if self.header("content-type") == Some("application/x-ndjson") {
            return body
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
        }
        match serde_json::from_slice(&body).unwrap() {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        }
    }

    pub fn ids(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["_id"].as_str().expect("_id").to_string())
            .collect()
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Send `Connection: close` and close after this response.
    pub close: bool,
    /// Close without answering (the request is lost, as on a crash).
    pub drop_connection: bool,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            body: Vec::new(),
            close: false,
            drop_connection: false,
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            body: body.as_bytes().to_vec(),
            ..Reply::status(status)
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// Answer only once this many requests are buffered on the connection
    /// (or nothing more came for a while): proves requests were pipelined.
    pub min_burst: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { min_burst: 1 }
    }
}

#[derive(Debug, Default)]
pub struct Log {
    /// Every request answered or dropped, in handling order.
    pub requests: Vec<Req>,
    /// Statuses sent, parallel to `requests` (0 = dropped).
    pub statuses: Vec<u16>,
    /// Requests per burst.
    pub bursts: Vec<usize>,
    pub connections: usize,
}

type Handler = dyn Fn(&Req) -> Reply + Send + Sync;

pub struct TestServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
}

impl TestServer {
    pub fn start(
        opts: Opts,
        handler: impl Fn(&Req) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Shared {
            opts,
            handler: Arc::new(handler),
            seq: Arc::new(AtomicU64::new(0)),
            log: log.clone(),
        };
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            let born = Instant::now();
            while !stop2.load(Ordering::Relaxed) && born.elapsed() < SERVER_LIFETIME {
                match listener.accept() {
                    Ok((stream, _)) => {
                        shared.log.lock().unwrap().connections += 1;
                        let shared = shared.clone();
                        std::thread::spawn(move || serve(stream, shared, born));
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(1))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        TestServer { addr, stop, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1/events", self.addr)
    }

    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct Shared {
    opts: Opts,
    handler: Arc<Handler>,
    seq: Arc<AtomicU64>,
    log: Arc<Mutex<Log>>,
}

fn serve(mut stream: TcpStream, shared: Shared, born: Instant) {
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = Vec::new();
    let mut pending: Vec<Req> = Vec::new();
    let mut waiting_since = Instant::now();
    let mut chunk = [0u8; 64 * 1024];
    while born.elapsed() < SERVER_LIFETIME {
        let timed_out = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                false
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
            Err(_) => return,
        };
        while let Some((head, body, used)) = parse_request(&buf) {
            buf.drain(..used);
            pending.push(Req {
                seq: shared.seq.fetch_add(1, Ordering::SeqCst),
                burst_index: 0,
                head,
                body,
            });
            waiting_since = Instant::now();
        }
        let burst_ready = pending.len() >= shared.opts.min_burst
            || (timed_out && !pending.is_empty() && waiting_since.elapsed() >= BURST_WAIT);
        if burst_ready && !answer(&mut stream, &shared, std::mem::take(&mut pending)) {
            return;
        }
    }
}

/// Answers a burst in one write; false when the connection is to close.
fn answer(stream: &mut TcpStream, shared: &Shared, burst: Vec<Req>) -> bool {
    let mut out = Vec::new();
    let mut keep_open = true;
    let mut log = Vec::new();
    let n = burst.len();
    for (i, mut req) in burst.into_iter().enumerate() {
        req.burst_index = i;
        let reply = (shared.handler)(&req);
        std::thread::sleep(reply.delay);
        if reply.drop_connection {
            log.push((req, 0));
            keep_open = false;
            break;
        }
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\n{}\r\n",
                reply.status,
                reply.body.len(),
                if reply.close {
                    "Connection: close\r\n"
                } else {
                    ""
                }
            )
            .as_bytes(),
        );
        out.extend_from_slice(&reply.body);
        log.push((req, reply.status));
        if reply.close {
            keep_open = false;
            break;
        }
    }
    {
        let mut l = shared.log.lock().unwrap();
        l.bursts.push(n);
        for (req, status) in log {
            l.requests.push(req);
            l.statuses.push(status);
        }
    }
    let written = stream.write_all(&out).is_ok();
    if !keep_open {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    written && keep_open
}

fn parse_request(buf: &[u8]) -> Option<(String, Vec<u8>, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8(buf[..end].to_vec()).expect("ASCII head");
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    if buf.len() < end + len {
        return None;
    }
    Some((head, buf[end..end + len].to_vec(), end + len))
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the loadgen binary to completion (bounded).
pub fn loadgen(args: &[&str]) -> Run {
    loadgen_with_env(args, &[])
}

/// [`loadgen`] with extra environment variables for the child.
pub fn loadgen_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_helios-loadgen"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > LOADGEN_TIMEOUT {
            let _ = child.kill();
            panic!("loadgen ran past {LOADGEN_TIMEOUT:?}: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Runs with `--json --quiet` and returns the parsed report.
pub fn loadgen_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--json", "--quiet"]);
    let run = loadgen(&all);
    assert_eq!(run.code, 0, "loadgen failed: {}", run.stderr);
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}
