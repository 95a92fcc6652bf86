//! Connection-level limits: slow heads and bodies get 408, idle keep-alive
//! connections are closed, connections past the per-core limit get 503, and
//! pipelined requests past the per-batch limit are still all answered.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn assert_still_serving(c: &Collector) {
    let r = Conn::open(c.addr)
        .post(&[], br#"{"type":"other"}"#)
        .unwrap();
    assert_eq!(r.status, 200, "other connections keep being served");
}

#[test]
fn a_request_head_sent_too_slowly_gets_408_and_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--header-timeout-ms", "300"]);
    let mut slow = Conn::open(c.addr);
    let start = Instant::now();
    slow.send_raw(b"POST /v1/events HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    slow.send_raw(b"X-Slow: 1\r\n").unwrap();
    assert_still_serving(&c);
    let r = slow.read_response().unwrap();
    assert_eq!(r.status, 408);
    assert_eq!(r.json()["error"], "request_timeout");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(slow.is_closed());
}

#[test]
fn a_body_sent_too_slowly_gets_408_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--body-timeout-ms", "300"]);
    let mut slow = Conn::open(c.addr);
    slow.send_raw(b"POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{\"type\":")
        .unwrap();
    let r = slow.read_response().unwrap();
    assert_eq!(r.status, 408);
    assert!(slow.is_closed());
    assert_still_serving(&c);
    let store = wait_for_count(&c.db_path(), 1);
    assert_eq!(
        store.count().unwrap(),
        1,
        "only the other connection's event"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_without_a_response() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--idle-timeout-ms", "300"]);
    let mut idle = Conn::open(c.addr);
    assert_eq!(idle.post(&[], br#"{"type":"x"}"#).unwrap().status, 200);
    let start = Instant::now();
    assert!(idle.is_closed(), "closed after the idle timeout");
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn connections_past_the_per_core_limit_get_503() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--cores", "1", "--max-connections-per-core", "2"],
    );
    // Let the start-up probe's connection close and free its slot.
    std::thread::sleep(Duration::from_millis(200));
    let mut a = Conn::open(c.addr);
    let mut b = Conn::open(c.addr);
    assert_eq!(a.post(&[], br#"{"type":"a"}"#).unwrap().status, 200);
    assert_eq!(b.post(&[], br#"{"type":"b"}"#).unwrap().status, 200);
    let mut third = Conn::open(c.addr);
    let r = third.read_response().unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(third.is_closed());
    // The admitted connections are unaffected; a slot frees when one closes.
    assert_eq!(a.post(&[], br#"{"type":"a2"}"#).unwrap().status, 200);
    drop(b);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        Conn::open(c.addr)
            .post(&[], br#"{"type":"c"}"#)
            .unwrap()
            .status,
        200
    );
}

#[test]
fn pipelined_requests_beyond_the_batch_limit_are_all_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--max-pipelined-requests", "3"]);
    let mut conn = Conn::open(c.addr);
    let mut wire = Vec::new();
    for i in 0..10 {
        wire.extend_from_slice(&post_bytes(
            &[],
            format!(r#"{{"type":"p","i":{i}}}"#).as_bytes(),
        ));
    }
    conn.send_raw(&wire).unwrap();
    for _ in 0..10 {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
    wait_for_count(&c.db_path(), 10);
}

/// A head announcing a JSON body of `len` bytes, and its first bytes.
fn partial_post(len: usize) -> Vec<u8> {
    let mut wire = format!("POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n")
        .into_bytes();
    wire.extend_from_slice(br#"{"type":"big","pad":""#);
    wire
}

#[test]
fn bodies_past_the_cores_buffer_budget_get_503_and_the_budget_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &[
            "--cores",
            "1",
            "--max-body-bytes",
            "1000000",
            "--max-buffered-body-bytes-per-core",
            "2000000",
        ],
    );
    const LEN: usize = 900_000;
    // Two bodies on their way hold 1.8 MB of the 2 MB budget.
    let mut first = Conn::open(c.addr);
    first.send_raw(&partial_post(LEN)).unwrap();
    let mut second = Conn::open(c.addr);
    second.send_raw(&partial_post(LEN)).unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let mut third = Conn::open(c.addr);
    third.send_raw(&partial_post(LEN)).unwrap();
    let r = third.read_response().unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("Retry-After"), Some("1"));
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("--max-buffered-body-bytes-per-core"));
    assert!(
        third.is_closed(),
        "its unread body must not be taken for a request"
    );

    // The first body completes: its share comes back, and a new one fits.
    let sent = br#"{"type":"big","pad":""#.len();
    let mut rest = vec![b'x'; LEN - sent - 2];
    rest.extend_from_slice(b"\"}");
    first.send_raw(&rest).unwrap();
    assert_eq!(first.read_response().unwrap().status, 200);
    let mut fourth = Conn::open(c.addr);
    fourth.send_raw(&partial_post(LEN)).unwrap();
    fourth.send_raw(&rest).unwrap();
    assert_eq!(fourth.read_response().unwrap().status, 200);
    drop(second);
    assert_still_serving(&c);
}

#[test]
fn an_unauthorized_body_is_refused_on_its_head_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "k-shop shop ingest\n").unwrap();
    let c = Collector::start(
        &dir.path().join("data"),
        &["--api-keys", keys.to_str().unwrap()],
    );
    for auth in ["", "Authorization: Bearer wrong\r\n"] {
        let mut conn = Conn::open(c.addr);
        // An 8 MB body is announced but never sent: the answer must come
        // from the head alone.
        let head =
            format!("POST /v1/events HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 8000000\r\n\r\n");
        conn.send_raw(head.as_bytes()).unwrap();
        let r = conn.read_response().unwrap();
        assert_eq!(r.status, 401, "{auth:?}");
        assert!(conn.is_closed());
    }
}
