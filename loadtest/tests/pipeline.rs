//! `--pipeline D` writes D requests back-to-back and attributes the
//! responses in order.
mod common;
use common::*;
use std::collections::BTreeSet;

#[test]
fn pipelined_requests_arrive_together_and_are_answered_in_order() {
    // The server answers only once 4 requests are buffered, acks the first
    // of each burst and refuses the rest: only in-order attribution puts
    // exactly the first requests' ids in the file.
    let server = TestServer::start(Opts { min_burst: 4 }, |req| {
        if req.burst_index == 0 {
            Reply::json(200, r#"{"accepted":2,"rejected":[]}"#)
        } else {
            Reply::json(503, r#"{"error":"busy"}"#)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids");
    let url = server.url();
    let report = loadgen_json(&[
        "--url",
        &url,
        "--requests",
        "20",
        "-c",
        "1",
        "-t",
        "1",
        "--pipeline",
        "4",
        "--events-per-request",
        "2",
        "--ids-out",
        ids.to_str().unwrap(),
    ]);
    let log = server.log();
    assert_eq!(log.bursts, vec![4; 5], "every write carried 4 requests");
    assert_eq!(report["status"]["200"], 5);
    assert_eq!(report["status"]["503"], 15);
    let expected: BTreeSet<String> = log
        .requests
        .iter()
        .filter(|r| r.burst_index == 0)
        .flat_map(|r| r.ids())
        .collect();
    let written: Vec<String> = std::fs::read_to_string(&ids)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(written.len(), 10);
    assert_eq!(written.into_iter().collect::<BTreeSet<_>>(), expected);
}
