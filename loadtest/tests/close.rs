//! A server that closes after every response is handled by reconnecting.
mod common;
use common::*;

#[test]
fn connection_close_is_counted_and_reconnected() {
    let server = TestServer::start(Opts::default(), |_| Reply {
        close: true,
        ..Reply::status(200)
    });
    let url = server.url();
    let report = loadgen_json(&["--url", &url, "--requests", "25", "-c", "2", "-t", "1"]);
    assert_eq!(report["status"]["200"], 25);
    assert_eq!(report["errors"]["closed"], 25);
    assert_eq!(report["connects"], 25);
    assert_eq!(server.log().connections, 25);
    for field in ["connect", "write", "read", "timeout", "parse"] {
        assert_eq!(report["errors"][field], 0, "errors.{field}");
    }
}
