//! `--gzip` compresses the body; decoded, it is the same events.
mod common;
use common::*;

fn bodies(extra: &[&str]) -> Vec<Req> {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let mut args = vec![
        "--url",
        &url,
        "--requests",
        "3",
        "-c",
        "1",
        "--events-per-request",
        "5",
        "--event-bytes",
        "200",
        "--ndjson",
    ];
    args.extend_from_slice(extra);
    loadgen_json(&args);
    let reqs = server.log().requests.clone();
    assert_eq!(reqs.len(), 3);
    reqs
}

#[test]
fn gzip_bodies_decode_to_the_same_events() {
    let plain = bodies(&[]);
    let gzipped = bodies(&["--gzip"]);
    for (p, g) in plain.iter().zip(&gzipped) {
        assert_eq!(p.header("content-encoding"), None);
        assert_eq!(g.header("content-encoding"), Some("gzip"));
        assert_eq!(g.header("content-type"), Some("application/x-ndjson"));
        assert!(g.body.len() < p.body.len(), "compressed");
        assert_eq!(g.decoded_body(), p.body);
        let events = g.events();
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|e| e["type"] == "loadgen.synthetic"));
    }
}

#[test]
fn gzip_with_ids_compresses_each_request_with_fresh_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ids");
    let reqs = bodies(&["--gzip", "--ids-out", path.to_str().unwrap()]);
    let ids: Vec<String> = reqs.iter().flat_map(|r| r.ids()).collect();
    let written: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ids.len(), 15);
    assert_eq!(written, ids, "one connection: ids acked in send order");
}
