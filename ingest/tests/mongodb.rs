//! The collector with `--store mongodb://…` against MockupDB (started by
//! each test; MongoDB's own wire-protocol test server): events arrive with
//! their ids, an unconfirmed write is never checkpointed, an outage backs
//! up to 503 and drains exactly once, SIGKILLs under load lose nothing, and
//! refused events become dead letters.

#[path = "../../store/tests/support/mockupdb.rs"]
mod mockupdb;
mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mockupdb::MockMongo;
use serde_json::json;
use support::*;

fn start(dir: &std::path::Path, mock: &MockMongo, extra: &[&str]) -> Collector {
    let uri = mock.uri();
    let mut args = vec!["--store", uri.as_str(), "--cores", "1"];
    args.extend_from_slice(extra);
    Collector::start(dir, &args)
}

fn events_body(ids: &[String]) -> String {
    padded_batch(ids, "mongo")
}

/// Waits until the mock holds every id in `ids`; returns what it holds.
fn wait_until_stored(mock: &MockMongo, ids: &[String]) -> std::collections::HashMap<String, usize> {
    let deadline = Instant::now() + STORE_TIMEOUT;
    loop {
        let stored = mock.stored();
        let missing = ids.iter().filter(|id| !stored.contains_key(*id)).count();
        if missing == 0 {
            return stored;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} acked events never reached MongoDB"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn posted_events_arrive_in_mongodb_with_their_ids_exactly_once() {
    let mock = MockMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &mock, &[]);
    let ids: Vec<String> = (0..300).map(client_id).collect();
    let mut conn = Conn::open(c.addr);
    for chunk in ids.chunks(100) {
        assert_eq!(
            conn.post(&[], events_body(chunk).as_bytes())
                .unwrap()
                .status,
            200
        );
    }
    let stored = wait_until_stored(&mock, &ids);
    assert_eq!(stored.len(), 300);
    assert!(stored.values().all(|&n| n == 1));
    let doc = &mock.commands("insert")[0]["body"]["documents"][0];
    assert_eq!(doc["type"], "mongo");
    assert!(
        doc["recv"]["$date"].is_object(),
        "recv is a BSON date: {doc}"
    );
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_write_without_its_write_concern_is_not_checkpointed_and_replays_after_a_restart() {
    let mut mock = MockMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path(), &mock, &[]);
    // Applied on the primary, never confirmed by a majority.
    mock.control(json!({"fail_all": "wce"}));
    let ids: Vec<String> = (0..50).map(client_id).collect();
    assert_eq!(
        Conn::open(c.addr)
            .post(&[], events_body(&ids).as_bytes())
            .unwrap()
            .status,
        200
    );
    wait_until_stored(&mock, &ids);
    std::thread::sleep(Duration::from_millis(500));
    c.kill_in_place();

    mock.control(json!({"fail_all": null}));
    let sent_before = mock.sent_ids().len();
    let c = start(dir.path(), &mock, &[]);
    // The journal still held them: the new process sends every one again
    // (answered 11000, now without a write concern error).
    let deadline = Instant::now() + STORE_TIMEOUT;
    loop {
        let resent: HashSet<String> = mock.sent_ids()[sent_before..].iter().cloned().collect();
        if ids.iter().all(|id| resent.contains(id)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unconfirmed events were checkpointed (not replayed)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(mock.stored().values().all(|&n| n == 1));
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn a_mongodb_outage_fills_the_budget_then_503s_and_drains_exactly_once_when_back() {
    let mut mock = MockMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &mock, &["--journal-budget-bytes", "262144"]);
    mock.control(json!({"fail_all": "not_primary"}));
    let (acked, refused) = post_until_budget_503(c.addr, 0);
    mock.control(json!({"fail_all": null}));
    let stored = wait_until_stored(&mock, &acked);
    assert_eq!(stored.len(), acked.len(), "only acked events are stored");
    assert!(refused.iter().all(|id| !stored.contains_key(id)));
    assert!(stored.values().all(|&n| n == 1));
    // Ingest resumes once the backlog is gone.
    let deadline = Instant::now() + STORE_TIMEOUT;
    let ids: Vec<String> = (1_000_000..1_000_010).map(client_id).collect();
    loop {
        let r = Conn::open(c.addr)
            .post(&[], events_body(&ids).as_bytes())
            .unwrap();
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest never resumed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn every_acked_event_reaches_mongodb_across_sigkills_under_load() {
    let mock = MockMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let log = LoadLog::default();
    let mut c = start(dir.path(), &mock, &[]);
    let port = c.addr.port();
    for cycle in 0..4u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3u64)
            .map(|w| {
                let (stop, log, addr) = (stop.clone(), log.clone(), c.addr);
                let n = if w == 0 { 1 } else { 20 };
                std::thread::spawn(move || load_worker(addr, n, stop, log))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(400 + cycle * 150));
        c.kill_in_place();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            assert!(w.join().unwrap().is_empty(), "only 200s before the kill");
        }
        let uri = mock.uri();
        c = Collector::start_on(dir.path(), port, &["--store", uri.as_str(), "--cores", "1"]);
    }
    let acked = log.acked.lock().unwrap().clone();
    assert!(acked.len() > 500, "only {} acked", acked.len());
    let stored = wait_until_stored(&mock, &acked);
    assert!(stored.values().all(|&n| n == 1), "stored twice");
    assert!(stored.len() <= log.next.load(Ordering::SeqCst) as usize);
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn an_event_mongodb_refuses_becomes_a_dead_letter_and_the_rest_are_stored() {
    let mut mock = MockMongo::start();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..20).map(client_id).collect();
    mock.control(json!({"refuse": {ids[7].clone(): [121, "Document failed validation"]}}));
    let c = start(dir.path(), &mock, &[]);
    assert_eq!(
        Conn::open(c.addr)
            .post(&[], events_body(&ids).as_bytes())
            .unwrap()
            .status,
        200
    );
    let mut others = ids.clone();
    others.remove(7);
    wait_until_stored(&mock, &others);
    let letters = wait_for_dead_letters(dir.path());
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.as_ref().unwrap()["_id"], ids[7].as_str());
    assert!(
        letters[0].reason.contains("failed validation"),
        "{}",
        letters[0].reason
    );
    assert!(!mock.stored().contains_key(&ids[7]));
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn several_collectors_share_one_mongodb_and_each_acked_event_is_stored_once() {
    // DESIGN §9 on one machine: three collectors, each with its own data
    // dir and node id, on different ports, in front of one MongoDB; one of
    // them is SIGKILLed and restarted mid-load.
    let mock = MockMongo::start();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut collectors: Vec<Collector> = dirs.iter().map(|d| start(d.path(), &mock, &[])).collect();
    let log = LoadLog::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = collectors
        .iter()
        .map(|c| {
            let (stop, log, addr) = (stop.clone(), log.clone(), c.addr);
            std::thread::spawn(move || load_worker(addr, 10, stop, log))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(600));
    let port = collectors[1].addr.port();
    collectors[1].kill_in_place();
    let uri = mock.uri();
    collectors[1] = Collector::start_on(
        dirs[1].path(),
        port,
        &["--store", uri.as_str(), "--cores", "1"],
    );
    std::thread::sleep(Duration::from_millis(600));
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let acked = log.acked.lock().unwrap().clone();
    assert!(acked.len() > 300, "only {} acked", acked.len());
    let stored = wait_until_stored(&mock, &acked);
    assert!(stored.values().all(|&n| n == 1), "stored twice");
    for c in collectors {
        assert_eq!(c.stop().code(), Some(0));
    }
}
