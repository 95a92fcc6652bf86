//! The one-command local stack: the `helios` binary starts the collector
//! and the report server in one process, and SIGINT stops both cleanly.

#[path = "../report/tests/support/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Start, store and stop must each fit in this.
const TIMEOUT: Duration = Duration::from_secs(60);

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Kills the child if the test fails before it exits.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Starts `helios` on one core with `env` added, stdout piped.
fn spawn_helios(
    data_dir: &std::path::Path,
    collector: SocketAddr,
    report: SocketAddr,
    env: &[(&str, &str)],
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_helios"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", &collector.to_string()])
        .args(["--report-listen", &report.to_string()])
        .args(["--cores", "1"])
        // Small journal segments: the default 64 MiB is zero-filled up front.
        .env("HELIOS_SEGMENT_SIZE_BYTES", "4194304")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helios")
}

#[test]
fn one_command_serves_ingest_and_reports_and_sigint_stops_both_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("helios-data");
    let (collector, report) = (free_addr(), free_addr());
    let mut child = spawn_helios(&data_dir, collector, report, &[]);
    let stdout = child.stdout.take().unwrap();
    let mut running = Running(Some(child));

    // Both URLs are printed once both servers are up.
    let mut lines = BufReader::new(stdout).lines();
    let mut printed = String::new();
    while !printed.contains("report UI") {
        let line = lines.next().expect("helios printed its URLs").unwrap();
        printed.push_str(&line);
        printed.push('\n');
    }
    assert!(
        printed.contains(&format!("http://{collector}/v1/events")),
        "{printed}"
    );
    assert!(printed.contains(&format!("http://{report}/")), "{printed}");
    assert!(TcpStream::connect(collector).is_ok());

    let posted = http::post_json(collector, "/v1/events", r#"{"type":"stack","n":42}"#);
    assert_eq!(posted.status, 200, "{}", posted.text());

    let mut found = Value::Null;
    wait_until("the report API shows the posted event", || {
        let body = http::get(report, "/api/events?types=stack");
        body.status == 200 && {
            found = body.json()["events"][0].clone();
            !found.is_null()
        }
    });
    assert_eq!(found["n"], json!(42));
    let page = http::get(report, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<title>Helios</title>"));

    let mut child = running.0.take().unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            panic!("helios did not stop within {TIMEOUT:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "helios: stopped"), "{rest:?}");
    assert!(
        TcpStream::connect(collector).is_err(),
        "collector still listening"
    );
    assert!(
        TcpStream::connect(report).is_err(),
        "report server still listening"
    );
}

/// Events of two hours ago, compacted into columnar files by the stack's
/// collector while it runs, stay visible to the report API, and `helios
/// export` reads every one back exactly once, byte for byte (issue 22).
#[test]
fn compacted_events_stay_in_reports_and_helios_export_reads_back_every_one() {
    const EVENTS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("helios-data");
    let (collector, report) = (free_addr(), free_addr());
    // Seal and compact at once: partitions of a minute, no hot time.
    let child = spawn_helios(
        &data_dir,
        collector,
        report,
        &[
            ("HELIOS_STORE_PARTITION_MINUTES", "1"),
            ("HELIOS_STORE_HOT_MINUTES", "0"),
            ("HELIOS_STORE_COMPACT_EVERY_MS", "50"),
        ],
    );
    let mut running = Running(Some(child));
    wait_until("the collector listens", || {
        TcpStream::connect(collector).is_ok()
    });

    let two_hours_ago_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 2 * 3_600_000;
    let lines: Vec<String> = (0..EVENTS)
        .map(|n| {
            let ts = two_hours_ago_ms + n as i64 * 1_000;
            format!(r#"{{"type":"old","n":{n},"big":12345678901234567890123,"ts":{ts}}}"#)
        })
        .collect();
    let posted = http::post_json(collector, "/v1/events", &format!("[{}]", lines.join(",")));
    assert_eq!(posted.status, 200, "{}", posted.text());

    let columnar_files = || {
        std::fs::read_dir(data_dir.join("events.db.columnar"))
            .map(|partitions| {
                partitions
                    .flatten()
                    .flat_map(|p| std::fs::read_dir(p.path()).into_iter().flatten().flatten())
                    .filter(|f| f.path().extension().is_some_and(|e| e == "parquet"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until("the events are compacted into columnar files", || {
        columnar_files() >= 2
    });
    // The compactor counts a pass's files once the pass ends.
    wait_until("/metrics counts the compacted files", || {
        http::get(collector, "/metrics")
            .text()
            .lines()
            .find_map(|line| line.strip_prefix("helios_compacted_files_total "))
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|files| files >= 2)
    });
    let range = format!(
        "from={}&to={}",
        two_hours_ago_ms - 60_000,
        two_hours_ago_ms + 60 * 60_000
    );
    wait_until("the report API counts every event once", || {
        let types = http::get(report, &format!("/api/types?{range}"));
        types.status == 200 && types.json()["total"] == json!(EVENTS)
    });

    let export = Command::new(env!("CARGO_BIN_EXE_helios"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("export")
        .output()
        .expect("run helios export");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let text = String::from_utf8(export.stdout).unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(exported.len(), EVENTS);
    let numbers: Vec<u64> = exported.iter().map(|e| e["n"].as_u64().unwrap()).collect();
    assert_eq!(
        numbers,
        (0..EVENTS as u64).collect::<Vec<_>>(),
        "oldest first, once each"
    );
    assert!(
        text.contains("12345678901234567890123"),
        "big integers survive"
    );

    let mut child = running.0.take().unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    assert!(child.wait().unwrap().success());
}
