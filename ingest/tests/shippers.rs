//! The shippers' endpoints ride the same journal, auth, limits and ack rule
//! as `/v1/events`, and every refusal takes the protocol's own shape:
//! Elasticsearch bulk documents acked across SIGKILLs are stored exactly
//! once even when the client resends them; a bad key is refused on the
//! head, the body unread; an oversized body gets the protocol's 413; a
//! failed commit its 503 (with `Retry-After`); the probes clients send
//! first (Elasticsearch's `GET /`, HEC's health) answer as those servers
//! do. The protocol details (field mappings, every answer) are tested in
//! `helios-shippers` and with the real client libraries in
//! `tests/shippers/`.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

const KILL_CYCLES: u32 = 6;
const KILL_AFTER_MS: [u64; 3] = [250, 600, 1100];
const BULK_WORKERS: usize = 3;
const DOCS_PER_BULK: usize = 20;
/// The index the kill test writes (part of every derived id).
const KILL_INDEX: &str = "kill-test";

/// A bulk body indexing one document per id.
fn bulk_body(ids: &[String]) -> String {
    let mut body = String::new();
    for id in ids {
        body.push_str(&format!("{{\"index\":{{\"_id\":\"{id}\"}}}}\n"));
        body.push_str(&format!(
            "{{\"message\":\"doc {id}\",\"@timestamp\":\"2026-12-07T10:00:00.123Z\"}}\n"
        ));
    }
    body
}

/// Posts bulk requests of fresh documents until `stop`; a request whose
/// answer is lost (the collector killed) is resent as it was, as the
/// Elasticsearch clients retry, until it is answered. Returns the ids it
/// saw acknowledged (a 200 without item errors), every id it sent, and how
/// many requests it resent.
fn bulk_worker(
    addr: SocketAddr,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, Vec<String>, usize) {
    let mut acked = Vec::new();
    let mut sent = Vec::new();
    let mut resent = 0;
    let mut next = 0usize;
    let mut pending: Option<(Vec<String>, Vec<u8>)> = None;
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::SeqCst) {
        let (ids, bytes) = pending.get_or_insert_with(|| {
            let ids: Vec<String> = (next..next + DOCS_PER_BULK)
                .map(|n| format!("w{worker}-{n}"))
                .collect();
            next += DOCS_PER_BULK;
            sent.extend(ids.iter().cloned());
            let body = bulk_body(&ids);
            let path = format!("/{KILL_INDEX}/_bulk");
            let bytes = request_bytes(
                "POST",
                &path,
                &[("Content-Type", "application/x-ndjson")],
                body.as_bytes(),
            );
            (ids, bytes)
        });
        let Some(c) = connected(addr, &mut conn) else {
            continue;
        };
        let answered = c.send_raw(bytes).and_then(|()| c.read_response());
        match answered {
            Ok(r) if r.status == 200 => {
                let v = r.json();
                assert_eq!(v["errors"], false, "a bulk item failed: {v}");
                assert_eq!(v["items"].as_array().map(Vec::len), Some(ids.len()));
                acked.append(ids);
                pending = None;
            }
            Ok(r) => {
                // Busy while a restarted collector recovers: resend.
                assert!(
                    r.status == 429 || r.status == 503,
                    "unexpected status {}",
                    r.status
                );
                resent += 1;
                conn = None;
            }
            Err(_) => {
                resent += 1;
                conn = None;
            }
        }
    }
    (acked, sent, resent)
}

#[test]
fn elasticsearch_bulk_documents_acked_across_sigkills_are_stored_exactly_once_even_when_resent() {
    let dir = tempfile::tempdir().unwrap();
    let mut collector = Collector::start(dir.path(), &["--cores", "2"]);
    let addr = collector.addr;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut sent = Vec::new();
    let mut resent = 0;
    for cycle in 0..KILL_CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..BULK_WORKERS)
            .map(|w| {
                let stop = stop.clone();
                // Each cycle's workers take fresh ids.
                let worker = cycle as usize * BULK_WORKERS + w;
                std::thread::spawn(move || bulk_worker(addr, worker, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(
            KILL_AFTER_MS[cycle as usize % KILL_AFTER_MS.len()],
        ));
        collector.kill();
        collector = Collector::start_on(dir.path(), addr.port(), &["--cores", "2"]);
        // The workers resend what the kill left unanswered to the new
        // collector, then stop.
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            let (worker_acked, worker_sent, worker_resent) = w.join().expect("bulk worker");
            acked.lock().unwrap().extend(worker_acked);
            sent.extend(worker_sent);
            resent += worker_resent;
        }
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{} documents acked of {} sent; {resent} requests resent",
        acked.len(),
        sent.len()
    );
    assert!(acked.len() > 500, "only {} documents acked", acked.len());
    let helios_id = |id: &String| {
        helios_shippers::derived_id(
            "",
            helios_shippers::Protocol::Elasticsearch,
            &[KILL_INDEX, id],
        )
    };
    let acked: Vec<String> = acked.iter().map(helios_id).collect();
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "an id was acked twice");
    let sent: HashSet<String> = sent.iter().map(helios_id).collect();
    assert_acked_stored_once(&collector.db_path(), &acked, &sent);
    assert_eq!(collector.stop().code(), Some(0));
}

fn keyed_collector(dir: &std::path::Path, extra: &[&str]) -> Collector {
    let keys = dir.join("keys");
    std::fs::write(&keys, "k-ingest shippers ingest\nk-relay edge relay\n").unwrap();
    let data = dir.join("data");
    let mut args = vec!["--api-keys", keys.to_str().unwrap(), "--cores", "1"];
    args.extend_from_slice(extra);
    Collector::start(&data, &args)
}

#[test]
fn a_shipper_request_with_an_unknown_key_is_refused_on_its_head_in_its_protocol_shape() {
    let dir = tempfile::tempdir().unwrap();
    let c = keyed_collector(dir.path(), &[]);
    let mut conn = Conn::open(c.addr);
    // A head announcing a large body that never comes: the answer must not
    // wait for it.
    conn.send_raw(
        b"POST /services/collector/event HTTP/1.1\r\nHost: t\r\n\
          Authorization: Splunk wrong-key\r\nContent-Length: 1000000\r\n\r\n",
    )
    .unwrap();
    let r = conn.read_response().unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], 4, "HEC's 'Invalid token'");
    assert!(
        conn.is_closed(),
        "the unread body must not be parsed as a request"
    );
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_client_still_sending_a_refused_body_reads_the_answer_instead_of_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    let c = keyed_collector(dir.path(), &[]);
    let body = vec![b'{'; 4 << 20];
    let mut conn = Conn::open(c.addr);
    conn.send_raw(
        format!(
            "POST /v1/logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Authorization: Bearer wrong\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    // The collector answers on the head and stops reading; a client that
    // does not look for an early answer keeps sending the body.
    std::thread::sleep(Duration::from_millis(200));
    conn.send_raw(&body)
        .expect("the collector drains a refused body instead of resetting");
    let r = conn.read_response().expect("the answer, not a reset");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], 16, "OTLP's Status UNAUTHENTICATED");
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_relay_key_may_not_use_the_shippers_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let c = keyed_collector(dir.path(), &[]);
    let body = br#"{"event":"hello"}"#;
    let r = send(
        c.addr,
        &request_bytes(
            "POST",
            "/services/collector/event",
            &[("Authorization", "Splunk k-relay")],
            body,
        ),
    );
    assert_eq!(r.status, 403);
    let r = send(
        c.addr,
        &request_bytes(
            "POST",
            "/services/collector/event",
            &[("Authorization", "Splunk k-ingest")],
            body,
        ),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], 0);
    let store = wait_for_count(&c.db_path(), 1);
    let id = store.ids().unwrap()[0];
    let event = store.get(id).unwrap().expect("the stored event");
    assert_eq!(
        event.app.as_deref(),
        Some("shippers"),
        "stamped from the key"
    );
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn an_oversized_shipper_body_gets_its_protocols_413() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--max-body-bytes", "1000", "--max-decoded-bytes", "1000"],
    );
    let big = vec![b' '; 5000];
    let r = send(
        c.addr,
        &request_bytes(
            "POST",
            "/_bulk",
            &[("Content-Type", "application/x-ndjson")],
            &big,
        ),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.header("X-Elastic-Product"), Some("Elasticsearch"));
    assert_eq!(r.json()["status"], 413, "Elasticsearch's error shape");
    let r = send(
        c.addr,
        &request_bytes("POST", "/services/collector/event", &[], &big),
    );
    assert_eq!(r.status, 413);
    assert!(r.json()["code"].is_number(), "HEC's body code");
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn the_probes_clients_send_first_answer_as_their_servers_do() {
    let dir = tempfile::tempdir().unwrap();
    let c = keyed_collector(dir.path(), &[]);
    let get = |path: &str, auth: Option<&str>| {
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: t\r\n");
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        send(c.addr, head.as_bytes())
    };
    let r = get("/", Some("ApiKey k-ingest"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("X-Elastic-Product"), Some("Elasticsearch"));
    let version = r.json()["version"]["number"].as_str().unwrap().to_string();
    assert!(version.starts_with("8."), "{version}");
    let r = get("/", None);
    assert_eq!(r.status, 401, "Elasticsearch with security on");
    assert_eq!(r.header("X-Elastic-Product"), Some("Elasticsearch"));
    let r = get("/services/collector/health", None);
    assert_eq!(r.status, 200, "HEC's health needs no token");
    assert_eq!(r.json()["code"], 17);
    let metrics = c.metrics();
    assert!(
        metrics.contains("helios_shipper_requests_total{protocol=\"elasticsearch\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("helios_shipper_requests_total{protocol=\"hec\"} 1"));
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_loki_protobuf_push_saying_content_encoding_snappy_is_read_as_loki_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    // A push captured from winston-loki: snappy-compressed protobuf.
    let body = include_bytes!("../shippers/src/loki/testdata/winston-loki-6.1.7.snappy-protobuf");
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
    ];
    let r = send(
        c.addr,
        &request_bytes("POST", "/loki/api/v1/push", &headers, body),
    );
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    // Elsewhere `snappy` is an encoding Helios does not decode.
    let r = send(
        c.addr,
        &post_bytes(&[("Content-Encoding", "snappy")], b"{\"type\":\"x\"}"),
    );
    assert_eq!(r.status, 415);
    // The capture holds two entries; nothing else was stored.
    wait_for_count(&c.db_path(), 2);
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn an_unknown_path_under_a_protocols_prefix_gets_that_protocols_404() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let get = |path: &str| {
        send(
            c.addr,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
        )
    };
    let r = get("/services/collector/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], 404, "HEC's body code");
    let r = get("/_license");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("X-Elastic-Product"), Some("Elasticsearch"));
    assert_eq!(r.json()["status"], 404);
    let r = get("/loki/api/v1/query");
    assert_eq!(r.status, 404);
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain"));
    let r = send(
        c.addr,
        &request_bytes(
            "POST",
            "/v1/traces",
            &[("Content-Type", "application/json")],
            b"{}",
        ),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], 5, "OTLP's Status NOT_FOUND");
    let r = get("/elsewhere");
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json()["error"],
        "not_found",
        "Helios's own shape elsewhere"
    );
    assert_eq!(c.stop().code(), Some(0));
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_failed_commit_answers_in_the_protocols_shape_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start_with_env(
        dir.path(),
        free_port(),
        &["--cores", "1"],
        &[("HELIOS_FAULT_INJECT_WRITE", "3")],
    );
    let mut conn = Conn::open(c.addr);
    let mut statuses = Vec::new();
    for n in 0..3 {
        let body = format!(r#"{{"event":"commit {n}","sourcetype":"fault"}}"#);
        conn.send_raw(&request_bytes(
            "POST",
            "/services/collector/event",
            &[],
            body.as_bytes(),
        ))
        .unwrap();
        let r = conn.read_response().unwrap();
        statuses.push(r.status);
        if r.status == 503 {
            assert_eq!(r.json()["code"], 9, "HEC's 'Server is busy'");
            assert_eq!(r.header("Retry-After"), Some("1"));
        }
    }
    assert_eq!(statuses, [200, 200, 503], "the third commit failed");
    assert_eq!(c.stop().code(), Some(0));
}
