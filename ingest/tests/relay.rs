//! Relay chain with real processes: load → relay collector (journals, acks)
//! → central collector (SQLite). The relay forwards `_id`, `ts`, `recv`,
//! `app` unchanged with a relay-role key; SIGKILLs of either side lose and
//! duplicate nothing.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;

const KEYS: &str = "k-relay edge relay\nk-app billing ingest\n";

struct Chain {
    _dir: tempfile::TempDir,
    central: Collector,
    relay: Collector,
    keys: String,
}

impl Chain {
    fn start() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::write(&keys, KEYS).unwrap();
        let keys = keys.to_str().unwrap().to_string();
        let central = Collector::start(&dir.path().join("central"), &["--api-keys", &keys]);
        let relay = Self::start_relay(dir.path(), central.addr.port(), free_port());
        Chain {
            _dir: dir,
            central,
            relay,
            keys,
        }
    }

    fn start_relay(dir: &std::path::Path, central_port: u16, port: u16) -> Collector {
        let upstream = format!("http://127.0.0.1:{central_port}");
        Collector::start_on(
            &dir.join("relay"),
            port,
            &["--store", &upstream, "--upstream-api-key", "k-relay"],
        )
    }
}

#[test]
fn a_relay_forwards_events_with_their_ids_times_and_app() {
    let chain = Chain::start();
    let id = client_id(1);
    let body = format!(
        r#"{{"_id":"{id}","type":"relayed","app":"shop","ts":"2026-11-30T12:00:00.000Z"}}"#
    );
    let r = Conn::open(chain.relay.addr)
        .post(&[], body.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    let store = wait_for_count(&chain.central.db_path(), 1);
    let doc = store.get(oid(&id)).unwrap().unwrap();
    assert_eq!(doc.event_type, "relayed");
    assert_eq!(
        doc.app.as_deref(),
        Some("shop"),
        "the relay's events keep their app"
    );
    let v: serde_json::Value = serde_json::from_str(&doc.doc).unwrap();
    assert_eq!(v["ts"], "2026-11-30T12:00:00.000Z");
    assert!(v["recv"].is_string());
    let _ = &chain.keys;
}

#[test]
fn sigkills_of_the_relay_and_of_the_central_collector_lose_and_duplicate_nothing() {
    let mut chain = Chain::start();
    let dir = chain._dir.path().to_path_buf();
    let (relay_port, central_port) = (chain.relay.addr.port(), chain.central.addr.port());
    let log = LoadLog::default();
    for cycle in 0..6 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = [1u64, 10]
            .into_iter()
            .map(|n| {
                let (stop, log, addr) = (stop.clone(), log.clone(), chain.relay.addr);
                std::thread::spawn(move || load_worker(addr, n, stop, log))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400));
        if cycle % 2 == 0 {
            chain.relay.kill_in_place();
            chain.relay = Chain::start_relay(&dir, central_port, relay_port);
        } else {
            chain.central.kill_in_place();
            chain.central = Collector::start_on(
                &dir.join("central"),
                central_port,
                &["--api-keys", &chain.keys],
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().unwrap();
        }
    }
    let acked = log.acked.lock().unwrap().clone();
    assert!(acked.len() > 500, "only {} acked", acked.len());
    // Everything the relay acked reaches the central store exactly once
    // (events the relay journaled but could not ack may arrive too).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let store = helios_store::SqliteReader::open(chain.central.db_path()).unwrap();
        let stored: std::collections::HashSet<String> = store
            .ids()
            .unwrap()
            .into_iter()
            .map(|i| i.to_string())
            .collect();
        let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
        if missing == 0 {
            assert_eq!(store.count().unwrap() as usize, stored.len());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} relay-acked events never reached the central store"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_upstream_outage_fills_the_relays_budget_then_503s_and_drains_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, KEYS).unwrap();
    let keys = keys.to_str().unwrap().to_string();
    // The central collector is down from the start: its port is reserved
    // but nothing listens.
    let central_port = free_port();
    let upstream = format!("http://127.0.0.1:{central_port}");
    let relay = Collector::start(
        &dir.path().join("relay"),
        &[
            "--store",
            &upstream,
            "--upstream-api-key",
            "k-relay",
            "--cores",
            "1",
            "--journal-budget-bytes",
            "262144",
        ],
    );
    let mut conn = Conn::open(relay.addr);
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for round in 0..2000u64 {
        let ids: Vec<String> = (round * 50..round * 50 + 50).map(client_id).collect();
        let events: Vec<String> = ids
            .iter()
            .map(|id| {
                format!(
                    r#"{{"_id":"{id}","type":"outage","pad":"{}"}}"#,
                    "y".repeat(200)
                )
            })
            .collect();
        let r = conn
            .post(&[], format!("[{}]", events.join(",")).as_bytes())
            .unwrap();
        match r.status {
            200 => acked.extend(ids),
            503 => {
                assert!(r.header("Retry-After").is_some());
                refused = ids;
                break;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "the relay's journal budget was never reached"
    );

    // The central collector comes back: the backlog drains, exactly once.
    let central = Collector::start_on(
        &dir.path().join("central"),
        central_port,
        &["--api-keys", &keys],
    );
    assert_exactly_acked(&central.db_path(), &acked, &refused);
    assert_eq!(relay.stop().code(), Some(0));
    assert_eq!(central.stop().code(), Some(0));
}
