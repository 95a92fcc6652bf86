//! `--ids-out` writes exactly the ids of events the server acked.
mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

fn read_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn acked_ids(log: &Log, keep: impl Fn(usize) -> bool) -> BTreeSet<String> {
    log.requests
        .iter()
        .zip(&log.statuses)
        .filter(|(_, &s)| s == 200)
        .flat_map(|(r, _)| {
            r.ids()
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep(*i))
                .map(|(_, id)| id)
        })
        .collect()
}

fn assert_unique_hex(ids: &[String]) {
    let set: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(set.len(), ids.len(), "ids are unique");
    assert!(ids
        .iter()
        .all(|id| id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())));
}

#[test]
fn only_ids_of_acked_requests_are_written() {
    let server = TestServer::start(Opts::default(), |req| {
        if req.seq % 2 == 0 {
            Reply::json(200, r#"{"accepted":3,"rejected":[]}"#)
        } else {
            Reply::json(503, r#"{"error":"journal budget reached"}"#)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids");
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--requests",
        "40",
        "-c",
        "2",
        "-t",
        "2",
        "--events-per-request",
        "3",
        "--ids-out",
        path.to_str().unwrap(),
    ]);
    let written = read_ids(&path);
    assert_unique_hex(&written);
    assert_eq!(written.len(), 60);
    assert_eq!(
        written.iter().cloned().collect::<BTreeSet<_>>(),
        acked_ids(&server.log(), |_| true)
    );
    assert_eq!(report["ids_written"], 60);
    assert_eq!(report["status"]["503"], 20);
    // Every request, acked or not, carried fresh ids.
    let all: Vec<String> = server.log().requests.iter().flat_map(|r| r.ids()).collect();
    assert_unique_hex(&all);
    assert_eq!(all.len(), 120);
}

#[test]
fn rejected_indices_are_left_out() {
    let server = TestServer::start(Opts::default(), |_| {
        Reply::json(
            200,
            r#"{"accepted":2,"rejected":[{"index":1,"error":"type missing"}]}"#,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids");
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--requests",
        "10",
        "-c",
        "1",
        "--events-per-request",
        "3",
        "--ids-out",
        path.to_str().unwrap(),
    ]);
    let written = read_ids(&path);
    assert_eq!(written.len(), 20);
    assert_eq!(
        written.into_iter().collect::<BTreeSet<_>>(),
        acked_ids(&server.log(), |i| i != 1)
    );
    assert_eq!(report["events_acked"], 20);
}

#[test]
fn requests_lost_with_a_dropped_connection_are_not_acked() {
    // Every third request dies with its connection, unanswered (as on a
    // server kill -9); the loadgen reconnects and carries on.
    let server = TestServer::start(Opts::default(), |req| {
        if req.seq % 3 == 2 {
            Reply {
                drop_connection: true,
                ..Reply::status(200)
            }
        } else {
            Reply::json(200, r#"{"accepted":1,"rejected":[]}"#)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids");
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--requests",
        "30",
        "-c",
        "1",
        "--ids-out",
        path.to_str().unwrap(),
    ]);
    let written = read_ids(&path);
    assert_unique_hex(&written);
    assert_eq!(written.len(), 20);
    assert_eq!(
        written.into_iter().collect::<BTreeSet<_>>(),
        acked_ids(&server.log(), |_| true)
    );
    assert_eq!(report["requests_sent"], 30);
    assert_eq!(report["responses"], 20);
    // The server closes (EOF, or a reset on some kernels) 10 times; the
    // loadgen reconnects after each but the last (nothing left to send).
    let lost =
        report["errors"]["closed"].as_u64().unwrap() + report["errors"]["read"].as_u64().unwrap();
    assert_eq!(lost, 10);
    assert_eq!(report["connects"], 10);
}
