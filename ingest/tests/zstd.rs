//! `Content-Encoding: zstd` against the real collector, with bodies made by
//! libzstd as a client makes them: stored exactly on `/v1/events` and on a
//! shipper endpoint (Splunk HEC); a bomb gets 413, a frame asking for a
//! window over 8 MiB 400 (RFC 9659's limit), a damaged body 400, each in
//! the endpoint's own shape, and nothing of a refused body is stored;
//! zstd batches acknowledged across SIGKILLs are all stored; the Rust
//! client's `Compression::Zstd` delivers exactly once. The decoder's
//! edge cases (frames back to back, skippable frames, dictionaries) are
//! unit tests in `src/decode.rs`.

mod support;

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helios_client::{Client, Compression};
use support::*;

const ZSTD: (&str, &str) = ("Content-Encoding", "zstd");
const KILL_CYCLES: u32 = 3;
const KILL_AFTER_MS: [u64; 3] = [300, 700, 500];
const KILL_WORKERS: usize = 2;
const KILL_BATCH_EVENTS: u64 = 50;

/// zstd at `level`, as `zstd::bulk` (what the Rust client uses) makes it.
fn zstd(data: &[u8], level: i32) -> Vec<u8> {
    zstd::bulk::compress(data, level).unwrap()
}

/// A streamed frame with the given window and no content size, so the
/// window cannot shrink to the content: what a streaming encoder with
/// `--long` (window log 27) or a large `windowLog` sends.
fn zstd_with_window_log(data: &[u8], window_log: u32) -> Vec<u8> {
    let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    e.include_contentsize(false).unwrap();
    e.window_log(window_log).unwrap();
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// NDJSON of one event per id, as the Rust client sends a batch.
fn ndjson(ids: &[String], kind: &str) -> Vec<u8> {
    ids.iter()
        .map(|id| {
            format!("{{\"_id\":\"{id}\",\"type\":\"{kind}\",\"host\":\"web-01\",\"n\":\"{id}\"}}\n")
        })
        .collect::<String>()
        .into_bytes()
}

#[test]
fn zstd_bodies_are_stored_exactly_on_v1_events_and_on_splunk_hec() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let ids: Vec<String> = (0..300).map(client_id).collect();
    // Level 1 (the client's default), 3 (zstd's), 19 (the highest within
    // RFC 9659's window), the last one chunked.
    let bodies = [
        zstd(&ndjson(&ids[..100], "zstd.l1"), 1),
        zstd(&ndjson(&ids[100..200], "zstd.l3"), 3),
        zstd(&ndjson(&ids[200..], "zstd.l19"), 19),
    ];
    for body in &bodies[..2] {
        let r = Conn::open(c.addr)
            .post(&[ZSTD, ("Content-Type", "application/x-ndjson")], body)
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.json());
        assert_eq!(r.json()["accepted"], 100);
    }
    let mut chunked = format!(
        "POST /v1/events HTTP/1.1\r\nHost: t\r\nContent-Encoding: zstd\r\n\
         Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        bodies[2].len()
    )
    .into_bytes();
    chunked.extend_from_slice(&bodies[2]);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = send(c.addr, &chunked);
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(r.json()["accepted"], 100);
    // Splunk HEC envelopes back to back, zstd as any HTTP client sends it.
    let hec: String = (0..5)
        .map(|i| format!(r#"{{"event":{{"message":"hec zstd {i}"}},"sourcetype":"zstd.hec"}}"#))
        .collect();
    let r = send(
        c.addr,
        &request_bytes(
            "POST",
            "/services/collector/event",
            &[ZSTD],
            &zstd(hec.as_bytes(), 3),
        ),
    );
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["code"], 0);

    let store = wait_for_count(&c.db_path(), 305);
    for (i, id) in ids.iter().enumerate() {
        let e = store.get(oid(id)).unwrap().expect("stored");
        let kind = ["zstd.l1", "zstd.l3", "zstd.l19"][i / 100];
        assert_eq!(e.event_type, kind);
        let doc: serde_json::Value = serde_json::from_str(&e.doc).unwrap();
        assert_eq!(doc["n"], id.as_str(), "the event's own fields, decoded");
    }
    let mut messages: Vec<String> = store
        .ids()
        .unwrap()
        .into_iter()
        .filter_map(|id| store.get(id).unwrap())
        .filter(|e| !e.event_type.starts_with("zstd.l"))
        .map(|e| e.doc)
        .collect();
    messages.sort();
    assert_eq!(messages.len(), 5);
    for (i, doc) in messages.iter().enumerate() {
        assert!(doc.contains(&format!("hec zstd {i}")), "{doc}");
    }
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_zstd_bomb_gets_413_at_max_decoded_bytes_and_a_body_just_under_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--max-body-bytes", "1000", "--max-decoded-bytes", "100000"],
    );
    // 16 MiB of spaces inside one event: well under 1000 bytes of zstd.
    let plain = format!(r#"{{"type":"bomb","pad":"{}"}}"#, " ".repeat(16 << 20));
    let bomb = zstd(plain.as_bytes(), 3);
    assert!(bomb.len() < 1000, "{} bytes", bomb.len());
    let r = Conn::open(c.addr).post(&[ZSTD], &bomb).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["detail"], "decoded body exceeds max_decoded_bytes");
    let r = send(
        c.addr,
        &request_bytes("POST", "/services/collector/event", &[ZSTD], &bomb),
    );
    assert_eq!(r.status, 413);
    assert!(r.json()["code"].is_number(), "HEC's shape: {}", r.json());

    let fits = format!(r#"{{"type":"fits","pad":"{}"}}"#, " ".repeat(99_000));
    let r = Conn::open(c.addr)
        .post(&[ZSTD], &zstd(fits.as_bytes(), 3))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    let store = wait_for_count(&c.db_path(), 1);
    let id = store.ids().unwrap()[0];
    assert_eq!(store.get(id).unwrap().unwrap().event_type, "fits");
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_zstd_window_over_8_mib_gets_400_naming_the_limit_and_8_mib_passes() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let event = br#"{"type":"window"}"#;
    for window_log in [24, 27] {
        let body = zstd_with_window_log(event, window_log);
        assert!(body.len() < 100);
        let r = Conn::open(c.addr).post(&[ZSTD], &body).unwrap();
        assert_eq!(r.status, 400, "window 2^{window_log}");
        let detail = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("8 MiB") && detail.contains("RFC 9659"),
            "{detail}"
        );
        let r = send(
            c.addr,
            &request_bytes("POST", "/services/collector/event", &[ZSTD], &body),
        );
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["code"], 6, "HEC's invalid data format");
    }
    let r = Conn::open(c.addr)
        .post(&[ZSTD], &zstd_with_window_log(event, 23))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.json());
    let store = wait_for_count(&c.db_path(), 1);
    let id = store.ids().unwrap()[0];
    assert_eq!(store.get(id).unwrap().unwrap().event_type, "window");
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_damaged_zstd_body_gets_400_and_an_unknown_encoding_415_listing_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let good = zstd(br#"{"type":"good"}"#, 3);
    for bad in [
        &b"{\"type\":\"not compressed\"}"[..],
        &good[..good.len() - 2],
        &[0x28, 0xB5, 0x2F, 0xFD, 0xFF, 0xFF, 0xFF][..],
    ] {
        let r = Conn::open(c.addr).post(&[ZSTD], bad).unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["detail"], "body is not valid zstd");
    }
    let r = Conn::open(c.addr)
        .post(&[("Content-Encoding", "br")], &good)
        .unwrap();
    assert_eq!(r.status, 415);
    assert_eq!(
        r.json()["detail"],
        "supported Content-Encoding: gzip, zstd, identity"
    );
    // A gzip body labelled zstd is damaged zstd, never guessed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"type":"gzip"}"#).unwrap();
    let r = Conn::open(c.addr)
        .post(&[ZSTD], &gz.finish().unwrap())
        .unwrap();
    assert_eq!(r.status, 400);
    let r = Conn::open(c.addr).post(&[ZSTD], &good).unwrap();
    assert_eq!(r.status, 200);
    let store = wait_for_count(&c.db_path(), 1);
    let id = store.ids().unwrap()[0];
    assert_eq!(store.get(id).unwrap().unwrap().event_type, "good");
    assert_eq!(c.stop().code(), Some(0));
}

/// Posts zstd batches of fresh ids until `stop`, reconnecting after errors
/// (the collector is SIGKILLed under it); records what was acked and sent.
fn zstd_worker(
    addr: SocketAddr,
    stop: &AtomicBool,
    next: &AtomicU64,
    acked: &Mutex<Vec<String>>,
    sent: &Mutex<Vec<String>>,
) {
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = connected(addr, &mut conn) else {
            continue;
        };
        let ids: Vec<String> = (0..KILL_BATCH_EVENTS)
            .map(|_| client_id(next.fetch_add(1, Ordering::SeqCst)))
            .collect();
        sent.lock().unwrap().extend(ids.iter().cloned());
        let body = zstd(&ndjson(&ids, "zstd.kill"), 1);
        match c.post(&[ZSTD, ("Content-Type", "application/x-ndjson")], &body) {
            Ok(r) if r.status == 200 => {
                assert_eq!(r.json()["accepted"], KILL_BATCH_EVENTS);
                acked.lock().unwrap().extend(ids);
            }
            Ok(r) => panic!("a collector answered {}: {}", r.status, r.json()),
            Err(_) => conn = None,
        }
    }
}

#[test]
fn zstd_batches_acked_across_sigkills_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut collector = Collector::start(dir.path(), &[]);
    let addr = collector.addr;
    let next = Arc::new(AtomicU64::new(1_000_000));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(Vec::new()));
    for cycle in 0..KILL_CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..KILL_WORKERS)
            .map(|_| {
                let (stop, next, acked, sent) =
                    (stop.clone(), next.clone(), acked.clone(), sent.clone());
                std::thread::spawn(move || zstd_worker(addr, &stop, &next, &acked, &sent))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(KILL_AFTER_MS[cycle as usize]));
        collector.kill();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().expect("zstd worker");
        }
        eprintln!(
            "cycle {cycle}: {} events acked so far",
            acked.lock().unwrap().len()
        );
        collector = Collector::start_on(dir.path(), addr.port(), &[]);
    }
    let acked = acked.lock().unwrap().clone();
    let sent: HashSet<String> = sent.lock().unwrap().iter().cloned().collect();
    assert!(acked.len() >= 500, "only {} events acked", acked.len());
    // Every acked event arrives; unacked ones may too (durable, the ack
    // lost to the kill), but nothing that was never sent.
    assert_acked_stored_once(&collector.db_path(), &acked, &sent);
    assert_eq!(collector.stop().code(), Some(0));
}

#[test]
fn the_rust_clients_zstd_batches_are_stored_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let client = Client::builder()
        .endpoint(format!("http://{}", c.addr))
        .compression(Compression::Zstd)
        .max_batch_events(200)
        .max_batch_delay(Duration::from_millis(5))
        .build()
        .expect("client");
    let ids: Vec<String> = (0..2000)
        .map(|i| {
            client
                .record(
                    "client.zstd",
                    serde_json::json!({"i": i, "pad": "p".repeat(i % 300)}),
                )
                .to_string()
        })
        .collect();
    assert!(client.flush(Duration::from_secs(30)));
    let stats = client.stats();
    assert_eq!((stats.dropped, stats.sent), (0, 2000), "{stats:?}");
    let store = wait_for_count(&c.db_path(), 2000);
    let stored = stored_ids(&store);
    assert_eq!(stored, ids.iter().cloned().collect::<HashSet<_>>());
    let e = store.get(oid(&ids[1234])).unwrap().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&e.doc).unwrap();
    assert_eq!(doc["i"], 1234);
    assert_eq!(doc["pad"].as_str().unwrap().len(), 1234 % 300);
    // The collector saw zstd bodies: compressed bytes on the wire are far
    // fewer than the NDJSON they carry.
    let metrics = c.metrics();
    let wire: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("helios_request_body_bytes_total "))
        .expect("helios_request_body_bytes_total")
        .trim()
        .parse()
        .unwrap();
    assert!(
        wire > 0.0 && wire < 200_000.0,
        "{wire} body bytes on the wire"
    );
    assert_eq!(c.stop().code(), Some(0));
}
