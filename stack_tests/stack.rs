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

#[test]
fn one_command_serves_ingest_and_reports_and_sigint_stops_both_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("helios-data");
    let (collector, report) = (free_addr(), free_addr());
    let mut child = Command::new(env!("CARGO_BIN_EXE_helios"))
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--listen", &collector.to_string()])
        .args(["--report-listen", &report.to_string()])
        .args(["--cores", "1"])
        // Small journal segments: the default 64 MiB is zero-filled up front.
        .env("HELIOS_SEGMENT_SIZE_BYTES", "4194304")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn helios");
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
