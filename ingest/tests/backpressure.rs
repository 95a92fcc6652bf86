//! A slow store: journals grow to the budget, then the collector answers
//! 503 + Retry-After; when the store comes back the backlog drains and every
//! acked event is stored exactly once.

mod support;

use std::time::Duration;

use support::*;

const BUDGET_BYTES: &str = "262144";

fn batch(n: u64, from: u64) -> (Vec<String>, String) {
    let ids: Vec<String> = (from..from + n).map(client_id).collect();
    let events: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(
                r#"{{"_id":"{id}","type":"bp","pad":"{}"}}"#,
                "x".repeat(200)
            )
        })
        .collect();
    let body = format!("[{}]", events.join(","));
    (ids, body)
}

#[test]
fn a_stalled_store_fills_the_budget_then_503s_and_drains_exactly_once_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(
        dir.path(),
        &["--cores", "1", "--journal-budget-bytes", BUDGET_BYTES],
    );
    let mut conn = Conn::open(c.addr);
    // Make sure the store exists, then stall it: hold its write lock.
    let (first, body) = batch(1, 0);
    assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 200);
    wait_for_count(&c.db_path(), 1);
    let blocker = rusqlite::Connection::open(c.db_path()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let mut acked = first;
    let mut next = 1u64;
    let mut refused: Vec<String> = Vec::new();
    for _ in 0..2000 {
        let (ids, body) = batch(50, next);
        next += 50;
        let r = conn.post(&[], body.as_bytes()).unwrap();
        match r.status {
            200 => acked.extend(ids),
            503 => {
                assert_eq!(r.header("Retry-After"), Some("1"));
                assert!(r.json()["detail"].as_str().unwrap().contains("budget"));
                refused = ids;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!refused.is_empty(), "the budget was never reached");
    // Readiness reports it too (budget, and the store failing), and other
    // connections get the same answer.
    let mut probe = Conn::open(c.addr);
    probe
        .send_raw(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(probe.read_response().unwrap().status, 503);
    let (_, body) = batch(1, 1_000_000);
    assert_eq!(
        Conn::open(c.addr)
            .post(&[], body.as_bytes())
            .unwrap()
            .status,
        503
    );

    // The store comes back: the backlog drains, exactly once.
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    wait_for_count(&c.db_path(), acked.len() as u64);
    let store = helios_store::sqlite::SqliteReader::open(c.db_path()).unwrap();
    let stored = stored_ids(&store);
    assert!(acked.iter().all(|id| stored.contains(id)));
    assert!(
        refused.iter().all(|id| !stored.contains(id)),
        "a refused event was stored"
    );

    // And acks resume.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = batch(1, 2_000_000);
        if Conn::open(c.addr)
            .post(&[], body.as_bytes())
            .unwrap()
            .status
            == 200
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "acks never resumed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
