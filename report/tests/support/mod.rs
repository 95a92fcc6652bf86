//! Test support: a real collector (in this process, on its own threads)
//! filling a real SQLite store, and a real report server over that store,
//! both on free loopback ports.
#![allow(dead_code)]

pub mod http;
pub mod webdriver;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use helios_ingest::shutdown::Shutdown;
use helios_report::{Backend, ReportConfig, ReportServer};
use helios_store::sqlite::SqliteReader;
use serde_json::{json, Value};

/// How long the store may take to show what the collector acked.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A collector + report server pair over one data directory.
pub struct Stack {
    pub collector: SocketAddr,
    pub report: SocketAddr,
    pub data_dir: PathBuf,
    collector_shutdown: Arc<Shutdown>,
    collector_thread: Option<JoinHandle<anyhow::Result<()>>>,
    report_server: Option<ReportOnly>,
    _tempdir: Option<tempfile::TempDir>,
}

impl Stack {
    /// A fresh stack in a temporary directory (removed on drop).
    pub fn start() -> Stack {
        Self::start_with(&[])
    }

    /// A fresh stack whose report server gets extra arguments
    /// (`--token`, ...).
    pub fn start_with(report_args: &[&str]) -> Stack {
        Self::start_configured(report_args, |_| {})
    }

    /// A fresh stack whose report configuration `tweak` adjusts after the
    /// command line is read (settings that are not flags).
    pub fn start_configured(report_args: &[&str], tweak: impl FnOnce(&mut ReportConfig)) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let mut stack = Self::start_in(dir.path(), report_args, tweak);
        stack._tempdir = Some(dir);
        stack
    }

    fn start_in(
        data_dir: &Path,
        report_args: &[&str],
        tweak: impl FnOnce(&mut ReportConfig),
    ) -> Stack {
        let collector = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let cli = helios_ingest::config::Cli::parse_from([
            "helios-collector",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            &collector.to_string(),
            "--cores",
            "1",
            "--segment-size-bytes",
            "4194304",
            "--log-format",
            "json",
        ]);
        let cfg = helios_ingest::config::Config::resolve(cli).unwrap();
        let collector_shutdown = Shutdown::new();
        let shutdown = Arc::clone(&collector_shutdown);
        let collector_thread =
            std::thread::spawn(move || helios_ingest::collector::run(cfg, shutdown));
        wait_until("the collector listens", || {
            std::net::TcpStream::connect(collector).is_ok()
        });

        let db = data_dir.join("events.db");
        let report =
            ReportOnly::start_configured(&format!("sqlite://{}", db.display()), report_args, tweak);
        Stack {
            collector,
            report: report.addr,
            data_dir: data_dir.to_owned(),
            collector_shutdown,
            collector_thread: Some(collector_thread),
            report_server: Some(report),
            _tempdir: None,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("events.db")
    }

    /// POSTs events to the collector (one JSON array) and waits until the
    /// store holds `expected_total` events.
    pub fn ingest(&self, events: &[Value], expected_total: u64) {
        let body = serde_json::to_string(events).unwrap();
        let response = http::post_json(self.collector, "/v1/events", &body);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.json()["accepted"],
            json!(events.len()),
            "{}",
            response.text()
        );
        self.wait_stored(expected_total);
    }

    /// Waits until the store holds `n` events.
    pub fn wait_stored(&self, n: u64) {
        let db = self.db_path();
        wait_until("the store holds every acked event", || {
            SqliteReader::open(&db)
                .and_then(|r| r.count())
                .is_ok_and(|count| count >= n)
        });
    }

    /// GET on the report server.
    pub fn get(&self, target: &str) -> http::Response {
        http::get(self.report, target)
    }

    /// GET on the report server, expecting 200 and JSON.
    pub fn get_json(&self, target: &str) -> Value {
        let response = self.get(target);
        assert_eq!(response.status, 200, "{target}: {}", response.text());
        response.json()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        drop(self.report_server.take());
        self.collector_shutdown.trigger();
        if let Some(thread) = self.collector_thread.take() {
            let _ = thread.join();
        }
    }
}

/// A report server alone, over any store URI, on its own runtime thread.
pub struct ReportOnly {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ReportOnly {
    pub fn start(store: &str) -> ReportOnly {
        Self::start_with(store, &[])
    }

    pub fn start_with(store: &str, extra: &[&str]) -> ReportOnly {
        Self::start_configured(store, extra, |_| {})
    }

    pub fn start_configured(
        store: &str,
        extra: &[&str],
        tweak: impl FnOnce(&mut ReportConfig),
    ) -> ReportOnly {
        let mut args = vec!["helios-report", "--listen", "127.0.0.1:0", "--store", store];
        args.extend_from_slice(extra);
        let mut cfg = ReportConfig::resolve(helios_report::Cli::parse_from(args)).unwrap();
        tweak(&mut cfg);
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let backend = Backend::from_config(&cfg).unwrap();
                let server = ReportServer::bind(&cfg, backend).await.unwrap();
                addr_tx.send(server.local_addr().unwrap()).unwrap();
                server
                    .serve(async move {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx
            .recv_timeout(STORE_TIMEOUT)
            .expect("report server bound");
        ReportOnly {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for ReportOnly {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `done` until it holds, failing the test after [`STORE_TIMEOUT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < STORE_TIMEOUT,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Epoch ms a few minutes ago, rounded to the minute: the corpus's times
/// are offsets from it, so they fall in the last hour whenever tests run.
pub fn corpus_base_ms() -> i64 {
    static BASE: OnceLock<i64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        now - now % 60_000 - 30 * 60_000
    })
}

/// The events every API test reads: 3 types, nested fields, arrays, a
/// missing field, an XSS attempt. `ts` spread over 20 minutes.
pub fn corpus() -> Vec<Value> {
    let base = corpus_base_ms();
    let mut events = Vec::new();
    let plans = ["pro", "free", "free", "team"];
    let countries = ["US", "DE", "FR"];
    for i in 0..24i64 {
        events.push(json!({
            "type": "signup",
            "ts": base + i * 50_000,
            "plan": plans[(i % 4) as usize],
            "country": countries[(i % 3) as usize],
            "latency_ms": 100 + i * 20,
            "user": {"name": format!("user{i}"), "tier": if i % 2 == 0 { "gold" } else { "silver" }},
        }));
    }
    for i in 0..10i64 {
        events.push(json!({
            "type": "login",
            "ts": base + i * 60_000 + 7,
            "ok": i % 5 != 0,
            "tags": ["web", if i % 2 == 0 { "mobile" } else { "desktop" }],
        }));
    }
    for i in 0..6i64 {
        events.push(json!({
            "type": "purchase",
            "ts": base + i * 90_000 + 11,
            "amount": 9.5 * (i + 1) as f64,
            "note": if i == 0 { "a \"quoted\", comma" } else { "=SUM(A1:A9)" },
        }));
    }
    events
}

/// A report server over the [`corpus`], shared by the read-only API tests
/// of one test binary (started once; it lives until the process exits).
pub fn shared() -> &'static Stack {
    static SHARED: OnceLock<Stack> = OnceLock::new();
    SHARED.get_or_init(|| {
        // Under the target dir, not /tmp: a static is never dropped, so the
        // directory is wiped here, at the start of the next run.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "report-{}",
            std::env::current_exe()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let stack = Stack::start_in(&dir, &[], |_| {});
        let events = corpus();
        stack.ingest(&events, events.len() as u64);
        stack
    })
}

/// URL-encodes a query parameter value.
pub fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `from=..&to=..` covering the corpus.
pub fn corpus_range() -> String {
    let base = corpus_base_ms();
    format!("from={}&to={}", base - 60_000, base + 30 * 60_000)
}

/// Events of the [`columnar_store`]: `signup`s a minute apart from
/// [`corpus_base_ms`], each with a `plan`; one in ten has a `coupon`.
pub const COLUMNAR_STORE_EVENTS: u32 = 40;

/// A store at `dir/columnar.db` whose events (but the newest, which stays
/// hot) are compacted into columnar files, as the collector's compactor
/// leaves a day's events: `plan` is a column of every file, `coupon` (in
/// one event in ten, below the writer's share) only inside documents.
pub fn columnar_store(dir: &Path) -> PathBuf {
    use helios_store::sqlite::{CompactOptions, Compactor, SqliteSink};
    use helios_store::{Envelope, EventDoc, ObjectId, Sink, TsRaw};
    let path = dir.join("columnar.db");
    let base = corpus_base_ms();
    let events: Vec<EventDoc> = (0..COLUMNAR_STORE_EVENTS)
        .map(|n| {
            let ts_ms = base + i64::from(n) * 60_000;
            let coupon = if n % 10 == 0 {
                format!(r#","coupon":"c-{n}""#)
            } else {
                String::new()
            };
            let text = format!(r#"{{"type":"signup","plan":"p{}"{coupon}}}"#, n % 3);
            let envelope = Envelope {
                id: ObjectId::from_parts((ts_ms / 1000) as u32, [7; 5], n).unwrap(),
                ts_ms,
                recv_ms: ts_ms,
                app: Some("shop"),
                ts_raw: TsRaw::None,
            };
            EventDoc::from_event_json(&text, &envelope).unwrap()
        })
        .collect();
    SqliteSink::open(&path)
        .unwrap()
        .write_batch(&events)
        .unwrap();
    let options = CompactOptions {
        hot_ms: 0,
        ..CompactOptions::default()
    };
    Compactor::open(&path, options)
        .unwrap()
        .compact_before(i64::MAX, usize::MAX)
        .unwrap();
    path
}
