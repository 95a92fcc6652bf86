//! `--requests N` sends exactly N requests, spread over connections/threads.
mod common;
use common::*;

#[test]
fn requests_flag_sends_exactly_n_requests_and_counts_n_2xx() {
    let server = TestServer::start(Opts::default(), |_| Reply::status(204));
    let url = server.url();
    let report = loadgen_json(&["--url", &url, "--requests", "37", "-c", "4", "-t", "2"]);
    assert_eq!(server.log().requests.len(), 37);
    assert_eq!(report["requests_sent"], 37);
    assert_eq!(report["responses"], 37);
    assert_eq!(report["status"]["204"], 37);
    assert_eq!(report["status_classes"]["2xx"], 37);
    assert_eq!(report["events_acked"], 37);
}
