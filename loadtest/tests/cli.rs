//! Exit codes: bad arguments are non-zero; HTTP errors are reported, not fatal.
mod common;
use common::*;

#[test]
fn bad_arguments_exit_non_zero() {
    for args in [
        &["--url", "https://127.0.0.1:1/"][..],
        &["--url", "http://127.0.0.1:1/", "--pipeline", "0"],
        &["--url", "http://127.0.0.1:1/", "--duration", "10x"],
        &["--url", "http://127.0.0.1:1/", "--header", "no colon"],
        &[
            "--url",
            "http://127.0.0.1:1/",
            "--body-file",
            "/nonexistent/body.json",
        ],
        &[
            "--url",
            "http://127.0.0.1:1/",
            "--body-file",
            "x",
            "--event-bytes",
            "9",
        ],
        &["--connections", "3"],
    ] {
        let run = loadgen(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty());
    }
}

#[test]
fn http_errors_and_refused_connections_still_exit_zero() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(500));
    let url = server.url();
    let report = loadgen_json(&["--url", &url, "--requests", "5", "-c", "1"]);
    assert_eq!(report["status"]["500"], 5);
    assert_eq!(report["status_classes"]["5xx"], 5);
    assert_eq!(report["events_acked"], 0);

    // Nothing listens on the port: every connect fails, counted, exit 0.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", dead.local_addr().unwrap());
    drop(dead);
    let report = loadgen_json(&["--url", &url, "--duration", "300ms", "-c", "1"]);
    assert!(report["errors"]["connect"].as_u64().unwrap() >= 2);
    assert_eq!(report["responses"], 0);
}
