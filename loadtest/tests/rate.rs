//! `--rate`: open loop at a constant rate, latency from intended send time.
mod common;
use common::*;
use std::time::Duration;

#[test]
fn open_loop_keeps_roughly_the_rate() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--rate",
        "200",
        "--duration",
        "2s",
        "-c",
        "4",
        "-t",
        "2",
    ]);
    let sent = report["requests_sent"].as_u64().unwrap();
    // 200/s for 2 s = 400 intended; nothing is sent past the deadline.
    assert!((340..=400).contains(&sent), "sent {sent}");
    assert_eq!(report["responses"], sent);
    assert_eq!(report["mode"], "open");
    // A fast server: latency stays far below the 20 ms between requests.
    assert!(
        report["latency_us"]["p50"].as_u64().unwrap() < 20_000,
        "{report}"
    );
}

#[test]
fn open_loop_latency_includes_queueing_behind_a_slow_server() {
    // 50 ms per request at 100 requests/s over one connection: requests
    // queue up, and each is measured from when it should have been sent.
    let server = TestServer::start(Opts::default(), |_| Reply {
        delay: Duration::from_millis(50),
        ..Reply::status(200)
    });
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--rate",
        "100",
        "--duration",
        "2s",
        "-c",
        "1",
        "-t",
        "1",
    ]);
    let p50 = report["latency_us"]["p50"].as_u64().unwrap();
    let max = report["latency_us"]["max"].as_u64().unwrap();
    assert!(p50 > 200_000, "p50 {p50} us should include queueing delay");
    assert!(
        max > 800_000,
        "max {max} us: the last requests waited longest"
    );
    // Closed loop would have measured ~50 ms: the server time alone.
    let answered = report["responses"].as_u64().unwrap();
    assert!((20..=45).contains(&answered), "answered {answered}");
}
