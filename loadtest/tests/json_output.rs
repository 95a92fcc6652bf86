//! `--json` prints one parseable object with every documented field.
mod common;
use common::*;

#[test]
fn json_output_is_one_object_with_every_field() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(200));
    let url = server.url();
    let run = loadgen(&[
        "--url",
        &url,
        "--requests",
        "10",
        "-c",
        "2",
        "--json",
        "--quiet",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is exactly one JSON line");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    for field in [
        "url",
        "mode",
        "threads",
        "connections",
        "pipeline",
        "events_per_request",
        "request_bytes",
        "elapsed_s",
        "requests_sent",
        "responses",
        "requests_per_s",
        "events_acked",
        "events_per_s",
        "bytes_sent",
        "mb_per_s_sent",
        "status",
        "status_classes",
        "errors",
        "connects",
        "latency_us",
        "cpu",
    ] {
        assert!(v.get(field).is_some(), "missing {field}: {v}");
    }
    for field in ["p50", "p90", "p99", "p999", "max", "mean"] {
        assert!(v["latency_us"][field].is_number(), "latency_us.{field}");
    }
    for field in ["connect", "write", "read", "timeout", "closed", "parse"] {
        assert_eq!(v["errors"][field], 0, "errors.{field}");
    }
    assert!(v["cpu"]["percent_of_one_core"].is_number());
    assert_eq!(v["mode"], "closed");
    assert_eq!(v["status"]["200"], 10);
    assert!(v["latency_us"]["p50"].as_u64().unwrap() > 0);
    assert_eq!(v["bytes_sent"], v["request_bytes"].as_u64().unwrap() * 10);
}
