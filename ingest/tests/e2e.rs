//! The collector end to end: real process, real sockets, real SQLite.

mod support;

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use support::*;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_single_event_is_acked_and_stored_with_the_design_columns() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let before = now_ms();
    let r = Conn::open(c.addr)
        .post(
            &[],
            br#"{"type":"signup","plan":"pro","host":"web-1","n":12345678901234567890123}"#,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"accepted": 1, "rejected": []}));
    let store = wait_for_count(&c.db_path(), 1);
    let id = store.ids().unwrap()[0];
    let doc = store.get(id).unwrap().unwrap();
    assert_eq!(doc.event_type, "signup");
    assert_eq!(doc.host.as_deref(), Some("web-1"));
    assert_eq!(doc.app, None);
    assert!(doc.recv_ms >= before && doc.recv_ms <= now_ms());
    assert_eq!(doc.ts_ms, doc.recv_ms, "no ts: the receive time");
    assert!(
        doc.doc.contains("12345678901234567890123"),
        "big numbers kept verbatim: {}",
        doc.doc
    );
    let v: serde_json::Value = serde_json::from_str(&doc.doc).unwrap();
    assert_eq!(v["_id"], id.to_string());
    assert_eq!(v["plan"], "pro");
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_client_id_is_kept_and_a_resent_event_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let id = client_id(1);
    let body = format!(r#"{{"_id":"{id}","type":"order"}}"#);
    let mut conn = Conn::open(c.addr);
    for _ in 0..3 {
        assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 200);
    }
    let marker = format!(r#"{{"_id":"{}","type":"marker"}}"#, client_id(2));
    assert_eq!(conn.post(&[], marker.as_bytes()).unwrap().status, 200);
    let store = wait_for_count(&c.db_path(), 2);
    assert!(store.get(oid(&id)).unwrap().is_some());
}

#[test]
fn pipelined_requests_are_answered_in_order_and_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    let mut wire = Vec::new();
    for i in 0..16 {
        let body = if i == 7 {
            b"{bad json".to_vec()
        } else {
            format!(r#"{{"type":"p","i":{i}}}"#).into_bytes()
        };
        wire.extend_from_slice(&post_bytes(&[], &body));
    }
    conn.send_raw(&wire).unwrap();
    for i in 0..16 {
        let r = conn.read_response().unwrap();
        let want = if i == 7 { 400 } else { 200 };
        assert_eq!(r.status, want, "response {i}");
    }
    wait_for_count(&c.db_path(), 15);
}

#[test]
fn a_batch_an_ndjson_body_and_a_gzip_body_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    let batch: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"type":"b","i":{i}}}"#))
        .collect();
    let array = format!("[{}]", batch.join(","));
    assert_eq!(
        conn.post(&[], array.as_bytes()).unwrap().json()["accepted"],
        100
    );
    let ndjson = format!(
        "{}\n\n{}\n",
        r#"{"type":"n","i":1}"#, r#"{"type":"n","i":2}"#
    );
    let r = conn
        .post(
            &[("Content-Type", "application/x-ndjson")],
            ndjson.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.json()["accepted"], 2);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"[{"type":"g","i":1},{"type":"g","i":2},{"type":"g","i":3}]"#)
        .unwrap();
    let r = conn
        .post(&[("Content-Encoding", "gzip")], &gz.finish().unwrap())
        .unwrap();
    assert_eq!(r.json()["accepted"], 3);
    wait_for_count(&c.db_path(), 105);
}

#[test]
fn a_chunked_body_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    let body = r#"[{"type":"c","i":1},{"type":"c","i":2}]"#;
    let (a, b) = body.split_at(10);
    let wire = format!(
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    // Split the request across writes to exercise partial chunk parsing.
    for piece in wire.as_bytes().chunks(7) {
        conn.send_raw(piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(conn.read_response().unwrap().json()["accepted"], 2);
    wait_for_count(&c.db_path(), 2);
}

#[test]
fn expect_100_continue_gets_an_interim_response_before_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    let body = br#"{"type":"e"}"#;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send_raw(head.as_bytes()).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 100);
    conn.send_raw(body).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
}

#[test]
fn an_http10_request_is_answered_and_the_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    let body = br#"{"type":"old"}"#;
    let req = format!(
        "POST /v1/events HTTP/1.0\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send_raw(req.as_bytes()).unwrap();
    conn.send_raw(body).unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert!(conn.is_closed());
}

#[test]
fn a_mixed_batch_stores_the_good_events_and_lists_the_bad_by_index() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let body = br#"[{"type":"ok"},{"no_type":1},{"type":"ok","ts":"yesterday"},{"type":"ok","recv":5},{"type":"ok","_id":"xyz"},42,{"type":"ok2"}]"#;
    let r = Conn::open(c.addr).post(&[], body).unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["accepted"], 2);
    let indices: Vec<u64> = v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![1, 2, 3, 4, 5]);
    assert!(v["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| !x["error"].as_str().unwrap().is_empty()));
    let store = wait_for_count(&c.db_path(), 2);
    let mut types: Vec<String> = store
        .ids()
        .unwrap()
        .into_iter()
        .map(|id| store.get(id).unwrap().unwrap().event_type)
        .collect();
    types.sort();
    assert_eq!(types, vec!["ok", "ok2"]);
}

#[test]
fn a_skewed_client_clock_is_corrected_and_the_raw_ts_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let hour_ms = 3_600_000;
    let sent_at = (now_ms() - hour_ms).to_string();
    let id_skewed = client_id(10);
    let id_fine = client_id(11);
    let body = format!(r#"{{"_id":"{id_skewed}","type":"s","ts":"2026-01-01T00:00:00.000Z"}}"#);
    let mut conn = Conn::open(c.addr);
    assert_eq!(
        conn.post(&[("Helios-Sent-At", &sent_at)], body.as_bytes())
            .unwrap()
            .status,
        200
    );
    let body = format!(r#"{{"_id":"{id_fine}","type":"s","ts":1767225600000}}"#);
    let sent_now = now_ms().to_string();
    assert_eq!(
        conn.post(&[("Helios-Sent-At", &sent_now)], body.as_bytes())
            .unwrap()
            .status,
        200
    );
    let store = wait_for_count(&c.db_path(), 2);
    let skewed = store.get(oid(&id_skewed)).unwrap().unwrap();
    let ts_sent = 1_767_225_600_000i64;
    let correction = skewed.ts_ms - ts_sent;
    assert!(
        (correction - hour_ms).abs() < 5_000,
        "corrected by {correction} ms"
    );
    let v: serde_json::Value = serde_json::from_str(&skewed.doc).unwrap();
    assert_eq!(v["ts_raw"], "2026-01-01T00:00:00.000Z");
    let fine = store.get(oid(&id_fine)).unwrap().unwrap();
    assert_eq!(fine.ts_ms, ts_sent, "within the threshold: not corrected");
    let v: serde_json::Value = serde_json::from_str(&fine.doc).unwrap();
    assert!(v.get("ts_raw").is_none());
}

#[test]
fn bad_requests_get_the_documented_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let check = |wire: &[u8], want: u16| {
        let mut conn = Conn::open(c.addr);
        conn.send_raw(wire).unwrap();
        let r = conn.read_response().unwrap();
        assert_eq!(r.status, want, "{}", String::from_utf8_lossy(wire));
        let v = r.json();
        assert!(v["error"].is_string() && v["detail"].is_string(), "{v}");
    };
    check(&post_bytes(&[], b"{not json"), 400);
    check(&post_bytes(&[], b"\"a string\""), 400);
    check(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404);
    check(b"GET /v1/events HTTP/1.1\r\nHost: t\r\n\r\n", 405);
    check(&post_bytes(&[("Content-Encoding", "br")], b"{}"), 415);
    check(b"POST /v1/events HTTP/1.1\r\nHost: t\r\n\r\n", 411);
    check(
        b"POST /v1/events HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    );
    // Nothing from any of them was stored, and the server still works.
    let r = Conn::open(c.addr)
        .post(&[], br#"{"type":"after"}"#)
        .unwrap();
    assert_eq!(r.status, 200);
    let store = wait_for_count(&c.db_path(), 1);
    assert_eq!(store.count().unwrap(), 1);
}

#[test]
fn healthz_answers_ok() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    conn.send_raw(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
}

#[test]
fn sigterm_flushes_everything_acked_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    for i in 0..50 {
        let body = format!(r#"[{{"type":"t","i":{i}}},{{"type":"t","j":{i}}}]"#);
        assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 200);
    }
    let db = c.db_path();
    assert_eq!(c.stop().code(), Some(0));
    let store = helios_store::sqlite::SqliteReader::open(&db).unwrap();
    assert_eq!(
        store.count().unwrap(),
        100,
        "all acked events stored before exit"
    );
}

#[test]
fn events_acked_before_a_sigkill_are_stored_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let port = c.addr.port();
    let mut conn = Conn::open(c.addr);
    for i in 0..200 {
        let body = format!(r#"{{"type":"k","i":{i}}}"#);
        assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 200);
    }
    c.kill();
    let c = Collector::start_on(dir.path(), port, &[]);
    wait_for_count(&c.db_path(), 200);
}

#[test]
fn journals_left_by_a_run_with_more_cores_are_drained() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--cores", "4"]);
    let port = c.addr.port();
    // Several connections so SO_REUSEPORT spreads them over the cores.
    for i in 0..16 {
        let mut conn = Conn::open(c.addr);
        let body = format!(r#"{{"type":"m","i":{i}}}"#);
        assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 200);
    }
    c.kill();
    let c = Collector::start_on(dir.path(), port, &["--cores", "1"]);
    wait_for_count(&c.db_path(), 16);
}

#[test]
fn a_second_collector_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Collector::start(dir.path(), &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_helios-collector"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another helios-collector"), "{err}");
}

#[test]
fn a_chunked_request_pipelined_behind_another_is_answered_too() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    let mut wire = post_bytes(&[], br#"{"type":"first"}"#);
    let body = r#"{"type":"second"}"#;
    wire.extend_from_slice(
        format!("POST /v1/events HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes(),
    );
    conn.send_raw(&wire).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    assert_eq!(conn.read_response().unwrap().status, 200);
    wait_for_count(&c.db_path(), 2);
}

#[test]
fn responses_to_earlier_pipelined_requests_go_out_before_a_rejection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    let mut wire = post_bytes(&[], br#"{"type":"one"}"#);
    wire.extend_from_slice(&post_bytes(&[], br#"{"type":"two"}"#));
    wire.extend_from_slice(
        b"POST /v1/events HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    );
    wire.extend_from_slice(&post_bytes(&[], br#"{"type":"never"}"#));
    conn.send_raw(&wire).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    assert_eq!(conn.read_response().unwrap().status, 200);
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(conn.is_closed());
    let store = wait_for_count(&c.db_path(), 2);
    assert_eq!(
        store.count().unwrap(),
        2,
        "nothing after the rejection was read"
    );
}

/// Reads from `conn` until `n` complete response heads are in the buffer.
fn read_raw_until_heads(stream: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
    use std::io::Read;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    while raw.windows(4).filter(|w| w == b"\r\n\r\n").count() < n {
        let got = stream.read(&mut chunk).expect("response bytes");
        assert!(got > 0, "closed early: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&chunk[..got]);
    }
    raw
}

#[test]
fn head_answers_carry_a_content_length_but_no_body_and_keep_the_connection_in_step() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut stream = std::net::TcpStream::connect(c.addr).unwrap();
    // Pipelined: if the HEAD answer carried a body, the GET's answer would
    // not start right after the HEAD's head.
    stream
        .write_all(
            b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        )
        .unwrap();
    let raw = read_raw_until_heads(&mut stream, 2);
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut first = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head_len) = first.parse(&raw).unwrap() else {
        panic!("incomplete head");
    };
    assert_eq!(first.code, Some(200));
    let length = first
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned());
    assert_eq!(length.as_deref(), Some("15"), "the GET body's length");
    assert!(
        raw[head_len..].starts_with(b"HTTP/1.1 200"),
        "no body after a HEAD answer: {}",
        String::from_utf8_lossy(&raw[head_len..])
    );
}

#[test]
fn a_405_names_the_methods_the_path_takes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    for (request, allow) in [
        (&b"GET /v1/events HTTP/1.1\r\nHost: t\r\n\r\n"[..], "POST"),
        (b"DELETE /healthz HTTP/1.1\r\nHost: t\r\n\r\n", "GET, HEAD"),
        (
            b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            "GET, HEAD",
        ),
        (
            b"PUT /readyz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            "GET, HEAD",
        ),
    ] {
        let mut conn = Conn::open(c.addr);
        conn.send_raw(request).unwrap();
        let r = conn.read_response().unwrap();
        assert_eq!(r.status, 405, "{}", String::from_utf8_lossy(request));
        assert_eq!(
            r.header("Allow"),
            Some(allow),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
}

#[test]
fn connection_close_in_a_list_with_keep_alive_closes_after_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    conn.send_raw(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n")
        .unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(conn.is_closed(), "the server closes after answering");
}

#[test]
fn logs_written_to_a_pipe_carry_no_colour_codes() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_helios-collector"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cores", "1"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "collector did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child.wait().unwrap();
    assert!(logs.contains("listening"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "ANSI escapes in piped logs: {logs:?}"
    );
}
