//! One test per refusal: the status, the JSON error body, the connection
//! closed where the stream cannot be trusted, other connections still
//! served, and nothing from the refused request stored.

mod support;

use std::io::Write;

use support::*;

/// Sends `wire` on a fresh connection and checks the refusal.
fn refused(c: &Collector, wire: &[u8], status: u16, closes: bool) {
    let mut conn = Conn::open(c.addr);
    conn.send_raw(wire).unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(
        r.status,
        status,
        "{}",
        String::from_utf8_lossy(&wire[..wire.len().min(200)])
    );
    let v = r.json();
    assert!(v["error"].is_string() && v["detail"].is_string(), "{v}");
    if closes {
        assert!(conn.is_closed(), "connection closed after {status}");
    }
}

/// Another connection is served, and the store holds exactly its event.
fn only_good_events_stored(c: &Collector) {
    let r = Conn::open(c.addr).post(&[], br#"{"type":"good"}"#).unwrap();
    assert_eq!(r.status, 200);
    let store = wait_for_count(&c.db_path(), 1);
    let id = store.ids().unwrap()[0];
    assert_eq!(store.get(id).unwrap().unwrap().event_type, "good");
}

#[test]
fn a_body_over_max_body_bytes_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--max-body-bytes", "1000", "--max-decoded-bytes", "2000"],
    );
    let body = format!(r#"{{"type":"big","pad":"{}"}}"#, "x".repeat(1500));
    refused(&c, &post_bytes(&[], body.as_bytes()), 413, true);
    only_good_events_stored(&c);
}

#[test]
fn a_chunked_body_over_max_body_bytes_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--max-body-bytes", "1000", "--max-decoded-bytes", "2000"],
    );
    let chunk = "x".repeat(600);
    let wire = format!("POST /v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n");
    refused(&c, wire.as_bytes(), 413, true);
    only_good_events_stored(&c);
}

#[test]
fn a_gzip_body_that_decodes_past_max_decoded_bytes_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--max-body-bytes", "1000", "--max-decoded-bytes", "2000"],
    );
    let plain = format!(r#"{{"type":"bomb","pad":"{}"}}"#, " ".repeat(100_000));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(plain.as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    assert!(body.len() < 1000);
    refused(
        &c,
        &post_bytes(&[("Content-Encoding", "gzip")], &body),
        413,
        false,
    );
    only_good_events_stored(&c);
}

#[test]
fn more_events_than_max_events_per_request_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--max-events-per-request", "3"]);
    refused(
        &c,
        &post_bytes(
            &[],
            br#"[{"type":"a"},{"type":"b"},{"type":"c"},{"type":"d"}]"#,
        ),
        413,
        false,
    );
    only_good_events_stored(&c);
}

#[test]
fn a_request_head_over_max_header_bytes_gets_431() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--max-header-bytes", "1024"]);
    let long = "v".repeat(2000);
    refused(
        &c,
        &post_bytes(&[("X-Long", &long)], br#"{"type":"x"}"#),
        431,
        true,
    );
    only_good_events_stored(&c);
}

#[test]
fn more_headers_than_max_headers_gets_431() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--max-headers", "8"]);
    let names: Vec<String> = (0..12).map(|i| format!("X-H{i}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    refused(&c, &post_bytes(&headers, br#"{"type":"x"}"#), 431, true);
    only_good_events_stored(&c);
}

#[test]
fn smuggling_shapes_get_400_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let event = r#"{"type":"smuggled"}"#;
    for wire in [
        format!("POST /v1/events HTTP/1.1\r\nContent-Length: 19\r\nTransfer-Encoding: chunked\r\n\r\n{event}"),
        format!("POST /v1/events HTTP/1.1\r\nContent-Length: 19\r\nContent-Length: 19\r\n\r\n{event}"),
        format!("POST /v1/events HTTP/1.1\r\nContent-Length: 0x13\r\n\r\n{event}"),
        format!("POST /v1/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-13\r\n{event}\r\n0\r\n\r\n"),
        format!("POST /v1/events HTTP/1.1\r\nX-A: 1\r\n folded\r\nContent-Length: 19\r\n\r\n{event}"),
    ] {
        refused(&c, wire.as_bytes(), 400, true);
    }
    only_good_events_stored(&c);
}

#[test]
fn an_event_nested_deeper_than_max_json_depth_is_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--max-json-depth", "4"]);
    let r = Conn::open(c.addr)
        .post(
            &[],
            br#"[{"type":"deep","a":{"b":{"c":{"d":{"e":1}}}}},{"type":"good"}]"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["rejected"][0]["index"], 0);
    let store = wait_for_count(&c.db_path(), 1);
    let id = store.ids().unwrap()[0];
    assert_eq!(store.get(id).unwrap().unwrap().event_type, "good");
}
