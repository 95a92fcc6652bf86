//! Test support: run the real `helios-collector` binary on a free loopback
//! port and talk HTTP/1.1 to it over plain sockets.
#![allow(dead_code)]

#[path = "../../../tests/src/seccomp.rs"]
pub mod seccomp;
#[path = "../../../store/tests/support/skip.rs"]
pub mod skip;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helios_ingest::events::{
    encode_payload, validate, BodyFormat, ValidateLimits, ValidateMode, Validation,
};
use helios_journal::{Journal, JournalConfig, RecordMeta};
use helios_store::sqlite::SqliteReader;
use helios_store::ObjectId;

/// How long a collector may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the store may take to show what was acked.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running collector process.
pub struct Collector {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Everything it has written to stderr (its log) so far.
    log: Arc<Mutex<Vec<u8>>>,
}

/// The flag that lets a journal live on a memory filesystem.
pub const ALLOW_VOLATILE_JOURNAL: &str = "--allow-volatile-journal";

/// True when `dir` (or, before it exists, its nearest existing ancestor)
/// is on tmpfs or ramfs.
pub fn on_memory_filesystem(dir: &Path) -> bool {
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    helios_journal::disk::Filesystem::of(existing).is_ok_and(|fs| fs.is_volatile())
}

/// The collector command every start uses: the test binary, a loopback
/// address, JSON logs, small segments, 2 cores unless `extra` says, and
/// `--allow-volatile-journal` where the data directory is on a memory
/// filesystem (a tmpfs /tmp: these tests are about behaviour, not power
/// loss; the refusal itself is tested in io_driver.rs).
pub fn collector_command(data_dir: &Path, addr: SocketAddr, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helios-collector"));
    cmd.arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--log-format", "json", "--segment-size-bytes", "4194304"])
        .args(extra);
    if !extra.contains(&"--cores") {
        cmd.args(["--cores", "2"]);
    }
    if !extra.contains(&ALLOW_VOLATILE_JOURNAL) && on_memory_filesystem(data_dir) {
        cmd.arg(ALLOW_VOLATILE_JOURNAL);
    }
    cmd
}

/// Runs a collector that must refuse to start (under `filters`); returns
/// its exit status and its log. Fails the test if it starts listening.
pub fn start_refused(
    data_dir: &Path,
    extra: &[&str],
    filters: &[seccomp::Filter],
) -> (ExitStatus, String) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_helios-collector"));
    cmd.arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--log-format", "json", "--cores", "2"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    seccomp::confine(&mut cmd, filters);
    let child = cmd.spawn().expect("spawn helios-collector");
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait"));
    let start = Instant::now();
    while !waiter.is_finished() {
        if start.elapsed() > START_TIMEOUT {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("collector neither started nor exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = waiter.join().expect("waiter");
    assert!(
        TcpStream::connect(addr).is_err(),
        "a refused collector must not listen"
    );
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A port no other test of this binary has been given. The collector binds
/// with SO_REUSEPORT, so two tests handed the same free port (the kernel may
/// hand out a released port again) would silently share their connections.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Collector {
    /// Starts the collector on `data_dir` with 2 cores and waits until it
    /// accepts connections.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Collector {
        Self::start_on(data_dir, free_port(), extra)
    }

    /// Like `start`, on a given port (to restart on the same address).
    pub fn start_on(data_dir: &Path, port: u16, extra: &[&str]) -> Collector {
        Self::start_with_env(data_dir, port, extra, &[])
    }

    /// Like `start_on`, with extra environment variables (test hooks).
    pub fn start_with_env(
        data_dir: &Path,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Collector {
        Self::start_confined(data_dir, port, extra, env, &[])
    }

    /// Like `start_with_env`, the process confined by seccomp `filters`
    /// from its first instruction (as a container runtime's profile would).
    pub fn start_confined(
        data_dir: &Path,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
        filters: &[seccomp::Filter],
    ) -> Collector {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = collector_command(data_dir, addr, extra);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.envs(env.iter().copied());
        seccomp::confine(&mut cmd, filters);
        let mut child = cmd.spawn().expect("spawn helios-collector");
        let start = Instant::now();
        loop {
            if TcpStream::connect(addr).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("collector exited at start ({status}): {err}");
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "collector did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Drain stderr so the child never blocks on a full pipe; keep it
        // for tests that read the log.
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut e) = child.stderr.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = e.read(&mut chunk) {
                    log.lock().unwrap().extend_from_slice(&chunk[..n]);
                }
            });
        }
        Collector {
            child: Some(child),
            addr,
            data_dir: data_dir.to_path_buf(),
            log,
        }
    }

    /// Its log (stderr) so far.
    /// The collector's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Waits until its log holds `needle` (start-up lines are written
    /// before it listens, but reach the pipe reader a moment later).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the log never said {needle:?}; it holds:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET /metrics` on a fresh connection.
    pub fn metrics(&self) -> String {
        let mut conn = Conn::open(self.addr);
        conn.send_raw(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let r = conn.read_response().unwrap();
        assert_eq!(r.status, 200);
        String::from_utf8(r.body).expect("metrics are text")
    }

    /// SIGTERM, then wait for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().expect("wait")
    }

    /// SIGKILL and reap, keeping the value (to replace it in a struct).
    pub fn kill_in_place(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The SQLite file of the default store.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive client connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn try_open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one response (Content-Length framed, as the collector sends).
    pub fn read_response(&mut self) -> std::io::Result<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head_len)) = resp.parse(&self.buf) {
                let status = resp.code.unwrap_or(0);
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= head_len + len {
                    let body = self.buf[head_len..head_len + len].to_vec();
                    self.buf.drain(..head_len + len);
                    return Ok(Response {
                        status,
                        headers,
                        body,
                    });
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True once the server has closed the connection (EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0))
    }

    /// POSTs `body` to /v1/events with extra header lines.
    pub fn post(&mut self, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Response> {
        self.send_raw(&post_bytes(headers, body))?;
        self.read_response()
    }
}

/// A complete POST /v1/events request.
pub fn post_bytes(headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    request_bytes("POST", "/v1/events", headers, body)
}

/// A complete request with a body (and its Content-Length).
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `bytes` on a fresh connection and reads one response.
pub fn send(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut conn = Conn::open(addr);
    conn.send_raw(bytes).unwrap();
    conn.read_response().unwrap()
}

/// The load workers' connection: the open one, or a new one; `None` (after
/// a short pause) while the collector does not accept (it may be between a
/// SIGKILL and its restart).
pub fn connected(addr: SocketAddr, conn: &mut Option<Conn>) -> Option<&mut Conn> {
    if conn.is_none() {
        match Conn::try_open(addr) {
            Ok(c) => *conn = Some(c),
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                return None;
            }
        }
    }
    conn.as_mut()
}

/// A fresh ObjectId hex for client-supplied ids (unique per process run).
pub fn client_id(n: u64) -> String {
    let pid = std::process::id() as u64;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!("{:08x}{:08x}{:08x}", secs as u32, pid as u32, n as u32)
}

/// Waits until the store holds `n` events; returns the reader.
pub fn wait_for_count(db: &Path, n: u64) -> SqliteReader {
    let start = Instant::now();
    loop {
        if let Ok(r) = SqliteReader::open(db) {
            if let Ok(c) = r.count() {
                if c >= n {
                    assert_eq!(c, n, "more events stored than expected");
                    return r;
                }
            }
        }
        assert!(
            start.elapsed() < STORE_TIMEOUT,
            "store did not reach {n} events"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses a 24-hex id.
pub fn oid(hex: &str) -> ObjectId {
    hex.parse().expect("object id")
}

/// Every stored event's `_id`, as hex text (how the tests name events).
/// Every stored event's document, whichever tier of the embedded store
/// holds it (an event stored twice appears twice); empty while the store
/// does not exist yet.
pub fn stored_docs(db: &Path) -> Vec<serde_json::Value> {
    use helios_store::query::{
        Query, QueryBackend, Selection, SortOrder, TimeRange, MAX_PAGE_LIMIT,
    };
    let Ok(queries) = helios_store::sqlite::SqliteQueries::open(db) else {
        return Vec::new();
    };
    let mut query = Query::new(Selection::range(TimeRange::ALL));
    query.sort = SortOrder::Asc;
    query.limit = MAX_PAGE_LIMIT;
    let mut docs = Vec::new();
    loop {
        let page = queries.query(&query).expect("read the stored events");
        docs.extend(page.events.into_iter().map(|hit| hit.doc));
        match page.next {
            Some(next) => query.after = Some(next),
            None => return docs,
        }
    }
}

pub fn stored_ids(store: &SqliteReader) -> std::collections::HashSet<String> {
    store
        .ids()
        .unwrap()
        .into_iter()
        .map(|id| id.to_string())
        .collect()
}

/// Waits until the store holds exactly the acked events (by client id) and
/// none of the refused ones: acked means durable, refused means not stored.
pub fn assert_exactly_acked(db: &Path, acked: &[String], refused: &[String]) {
    let store = wait_for_count(db, acked.len() as u64);
    let stored = stored_ids(&store);
    assert!(
        acked.iter().all(|id| stored.contains(id)),
        "an acked event was lost"
    );
    assert!(
        refused.iter().all(|id| !stored.contains(id)),
        "a refused event was stored"
    );
}

/// Waits until every id in `acked` is stored (acked means durable), then
/// checks that nothing is stored twice and that every stored id is one of
/// `sent` (an event resent after a lost answer must not come back under
/// a new id). Events sent but never answered may be stored or not.
pub fn assert_acked_stored_once(
    db: &Path,
    acked: &[String],
    sent: &std::collections::HashSet<String>,
) {
    let deadline = Instant::now() + STORE_TIMEOUT;
    loop {
        let store = SqliteReader::open(db).unwrap();
        let count = store.count().unwrap() as usize;
        let stored = stored_ids(&store);
        let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
        if missing == 0 && store.count().unwrap() as usize == count {
            assert_eq!(count, stored.len(), "an event stored twice");
            let strangers = stored.iter().filter(|id| !sent.contains(*id)).count();
            assert_eq!(strangers, 0, "events stored under ids no request carried");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acked events missing from the store"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Shared state of load workers: the next client-id counter and the ids
/// of events in requests answered 200.
#[derive(Clone, Default)]
pub struct LoadLog {
    pub next: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// One load connection for the kill tests: POSTs `events_per_request`
/// events with client ids (an object when 1, else an array) until `stop`,
/// reconnecting after errors (the server may be SIGKILLed at any time).
pub fn load_worker(
    addr: SocketAddr,
    events_per_request: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    log: LoadLog,
) -> Vec<u16> {
    load_worker_at(addr, events_per_request, stop, log, None)
}

/// [`load_worker`] whose events carry `ts` = `ts_base_ms` + their number
/// (epoch ms) when given: events of the past, which a collector with a
/// short `--store-hot-minutes` compacts while the load runs.
pub fn load_worker_at(
    addr: SocketAddr,
    events_per_request: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    log: LoadLog,
    ts_base_ms: Option<i64>,
) -> Vec<u16> {
    use std::sync::atomic::Ordering;
    post_until_stopped(
        addr,
        &stop,
        || {
            let numbers: Vec<u64> = (0..events_per_request)
                .map(|_| log.next.fetch_add(1, Ordering::SeqCst))
                .collect();
            let ids: Vec<String> = numbers.iter().map(|n| client_id(*n)).collect();
            let events: Vec<String> = ids
                .iter()
                .zip(&numbers)
                .map(|(id, n)| match ts_base_ms {
                    None => format!(r#"{{"_id":"{id}","type":"load"}}"#),
                    Some(base) => {
                        let ts = base + *n as i64;
                        format!(r#"{{"_id":"{id}","type":"load","ts":{ts}}}"#)
                    }
                })
                .collect();
            let body = if events.len() == 1 {
                events[0].clone()
            } else {
                format!("[{}]", events.join(","))
            };
            (body, events_per_request, ids)
        },
        |ids| log.acked.lock().unwrap().extend(ids),
    )
}

/// POSTs what `next` makes — `(body, events in it, what to remember)` —
/// until `stop`, reconnecting after errors (the server may be SIGKILLed at
/// any time); gives `acked` what each 200 acknowledged (every event must
/// be accepted). Returns the statuses other than 200.
pub fn post_until_stopped<K>(
    addr: SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
    mut next: impl FnMut() -> (String, u64, K),
    mut acked: impl FnMut(K),
) -> Vec<u16> {
    use std::sync::atomic::Ordering;
    let mut conn: Option<Conn> = None;
    let mut other_statuses = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = connected(addr, &mut conn) else {
            continue;
        };
        let (body, events, keys) = next();
        match c.post(&[], body.as_bytes()) {
            Ok(r) if r.status == 200 => {
                assert_eq!(r.json()["accepted"], events, "every event is valid");
                acked(keys);
            }
            Ok(r) => {
                other_statuses.push(r.status);
                conn = None;
            }
            Err(_) => conn = None,
        }
    }
    other_statuses
}

/// A JSON array of one event of type `kind` per id, each padded to about
/// 250 bytes (journal budgets fill in a few requests).
pub fn padded_batch(ids: &[String], kind: &str) -> String {
    let pad = "x".repeat(200);
    let events: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"_id":"{id}","type":"{kind}","pad":"{pad}"}}"#))
        .collect();
    format!("[{}]", events.join(","))
}

/// Posts batches of 50 padded events (client ids from `first_id`) on one
/// connection until the collector answers 503 because its journal budget is
/// reached; returns the ids it acked and the ids of the refused batch.
pub fn post_until_budget_503(addr: SocketAddr, first_id: u64) -> (Vec<String>, Vec<String>) {
    const BATCH: u64 = 50;
    const MAX_BATCHES: u64 = 2000;
    let mut conn = Conn::open(addr);
    let mut acked = Vec::new();
    for round in 0..MAX_BATCHES {
        let from = first_id + round * BATCH;
        let ids: Vec<String> = (from..from + BATCH).map(client_id).collect();
        let r = conn
            .post(&[], padded_batch(&ids, "budget").as_bytes())
            .unwrap();
        match r.status {
            200 => acked.extend(ids),
            503 => {
                assert!(r.header("Retry-After").is_some(), "503 without Retry-After");
                assert!(
                    r.json()["detail"].as_str().unwrap_or("").contains("budget"),
                    "503 for another reason: {}",
                    r.json()
                );
                return (acked, ids);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    panic!("the journal budget was never reached");
}

/// Waits until the collector's dead-letter file holds at least one event.
pub fn wait_for_dead_letters(data_dir: &Path) -> Vec<helios_ingest::deadletter::DeadLetter> {
    let path = data_dir
        .join(helios_ingest::collector::DEAD_LETTER_DIR)
        .join(helios_ingest::deadletter::DEAD_LETTER_FILE);
    let deadline = Instant::now() + STORE_TIMEOUT;
    loop {
        let letters = helios_ingest::deadletter::read_all(&path).unwrap_or_default();
        if !letters.is_empty() {
            return letters;
        }
        assert!(Instant::now() < deadline, "no dead letter written");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Journals `n` events (one record), then reopens the journal and returns
/// it (with the runtime it lives on) and a flusher feed for it.
pub fn journal_with_events(
    dir: &std::path::Path,
    n: usize,
) -> (
    monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>,
    Journal,
    helios_ingest::flusher::Feed,
) {
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(async {
        let j = Journal::open(
            dir,
            JournalConfig {
                segment_size_bytes: 1 << 20,
                ..JournalConfig::default()
            },
        )
        .await
        .unwrap();
        let body: String = format!(
            "[{}]",
            (0..n)
                .map(|i| format!(r#"{{"type":"t{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut v = Validation::new();
        validate(
            body.as_bytes(),
            BodyFormat::Json,
            &ValidateLimits::default(),
            ValidateMode { relay: false },
            &mut v,
        )
        .unwrap();
        let mut payload = Vec::new();
        encode_payload(0, body.as_bytes(), v.accepted(), &mut payload).unwrap();
        let meta = RecordMeta {
            recv_ms: 1_764_000_000_000,
            id_base: [1; 12],
            event_count: n as u32,
            ..RecordMeta::default()
        };
        j.append_durable(&meta, &payload).await.unwrap();
        j.close().await.unwrap();
    });
    // Reopen for the flusher (a journal's reader works from any thread).
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    let j = rt
        .block_on(Journal::open(
            dir,
            JournalConfig {
                segment_size_bytes: 1 << 20,
                ..JournalConfig::default()
            },
        ))
        .unwrap();
    let checkpointer = j.checkpointer();
    let feed = helios_ingest::flusher::Feed {
        name: "j".into(),
        reader: j.reader(0),
        checkpointer,
    };
    (rt, j, feed)
}

/// A tmpfs mounted for one test, unmounted (lazily) when dropped.
pub struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Mounts a tmpfs of `size` (mount's `size=` option, e.g. `40m`) at `at`;
/// `None` when not root, after reporting `test` as skipped. Root that
/// cannot mount is a failure, not a skip.
pub fn mount_tmpfs(at: &Path, size: &str, test: &str) -> Option<Mounted> {
    std::fs::create_dir_all(at).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(Mounted(at.to_path_buf()));
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        !root,
        "running as root but could not mount a tmpfs at {}",
        at.display()
    );
    skip::skip(
        test,
        "not root, so no tmpfs can be mounted (CI runs it as root)",
    );
    None
}
