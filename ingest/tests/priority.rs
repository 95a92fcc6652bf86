//! Priorities at the journal budget (issue 21 §2), with real processes: a
//! relay collector whose upstream is dead cannot flush, so its journal only
//! grows; low-priority events are refused first (80% of the budget),
//! normal ones in the 10% reserve, high ones only at the full budget. Then
//! the upstream comes up and exactly the acknowledged events arrive. And a
//! kill -9 test with mixed priorities under a stalled store: every acked
//! event is stored once, no refused one ever.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

/// One core's journal budget: small, so a few hundred padded events fill it.
const BUDGET_BYTES: &str = "262144";
/// Events per request in the floods.
const BATCH: usize = 20;
/// Requests a flood may send before the test calls the threshold unreached.
const MAX_FLOOD_REQUESTS: usize = 2000;

/// One event per `(id, priority)`, padded to about 250 bytes; an empty
/// priority leaves the member out.
fn events(ids: &[(String, &str)]) -> String {
    let pad = "x".repeat(200);
    let events: Vec<String> = ids
        .iter()
        .map(|(id, priority)| {
            if priority.is_empty() {
                format!(r#"{{"_id":"{id}","type":"prio","pad":"{pad}"}}"#)
            } else {
                format!(r#"{{"_id":"{id}","type":"prio","priority":"{priority}","pad":"{pad}"}}"#)
            }
        })
        .collect();
    format!("[{}]", events.join(","))
}

/// What the collector said of each event sent.
#[derive(Default)]
struct Ledger {
    next: u64,
    acked: Vec<String>,
    refused: Vec<String>,
    /// Refusals by the budget, per priority name.
    refused_by: std::collections::BTreeMap<String, u64>,
}

/// What one request got.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// 200: the per-event errors of the rejected ones.
    Answered(Vec<(usize, String)>),
    /// 503 for the budget, with its detail.
    Refused(String),
}

impl Ledger {
    fn ids(&mut self, priorities: &[&'static str]) -> Vec<(String, &'static str)> {
        priorities
            .iter()
            .map(|p| {
                self.next += 1;
                (client_id(self.next), *p)
            })
            .collect()
    }

    /// Posts one request of events with these priorities and books the
    /// answer: acked, refused (by the budget, per priority) or a panic for
    /// anything else.
    fn post(&mut self, conn: &mut Conn, priorities: &[&'static str]) -> Outcome {
        let ids = self.ids(priorities);
        let r = conn.post(&[], events(&ids).as_bytes()).unwrap();
        // Anything but the two other names counts as normal.
        let name = |p: &str| match p {
            "high" | "low" => p.to_string(),
            _ => "normal".to_string(),
        };
        match r.status {
            200 => {
                let v = r.json();
                let rejected: Vec<(usize, String)> = v["rejected"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        let error = e["error"].as_str().unwrap().to_string();
                        (e["index"].as_u64().unwrap() as usize, error)
                    })
                    .collect();
                for (i, (id, p)) in ids.into_iter().enumerate() {
                    match rejected.iter().find(|(at, _)| *at == i) {
                        Some((_, error)) => {
                            assert!(error.starts_with("journal budget"), "{error}");
                            *self.refused_by.entry(name(p)).or_default() += 1;
                            self.refused.push(id);
                        }
                        None => self.acked.push(id),
                    }
                }
                assert_eq!(
                    v["accepted"].as_u64().unwrap() as usize + rejected.len(),
                    priorities.len()
                );
                Outcome::Answered(rejected)
            }
            503 => {
                assert!(r.header("Retry-After").is_some(), "503 without Retry-After");
                let detail = r.json()["detail"].as_str().unwrap().to_string();
                assert!(detail.contains("journal budget"), "{detail}");
                for (id, p) in ids {
                    *self.refused_by.entry(name(p)).or_default() += 1;
                    self.refused.push(id);
                }
                Outcome::Refused(detail)
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }

    /// Posts batches of `priority` until one is refused whole; returns the
    /// 503's detail.
    fn flood(&mut self, conn: &mut Conn, priority: &'static str) -> String {
        for _ in 0..MAX_FLOOD_REQUESTS {
            match self.post(conn, &[priority; BATCH]) {
                Outcome::Answered(rejected) => {
                    assert!(rejected.is_empty(), "{priority}: {rejected:?}")
                }
                Outcome::Refused(detail) => return detail,
            }
        }
        panic!("a {priority:?} flood was never refused");
    }
}

/// `helios_events_budget_refused_total{priority="…"}` from /metrics.
fn refused_metric(c: &Collector, priority: &str) -> u64 {
    let needle = format!("helios_events_budget_refused_total{{priority=\"{priority}\"}} ");
    let text = c.metrics();
    let line = text
        .lines()
        .find(|l| l.starts_with(&needle))
        .unwrap_or_else(|| panic!("no {needle} in /metrics"));
    line[needle.len()..].trim().parse().unwrap()
}

/// A raw Elasticsearch `_bulk` request of `docs` (each a JSON source).
fn bulk(docs: &[String]) -> Vec<u8> {
    let mut body = String::new();
    for doc in docs {
        body.push_str("{\"index\":{}}\n");
        body.push_str(doc);
        body.push('\n');
    }
    let mut bytes = format!(
        "POST /prio/_bulk HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[test]
fn with_the_store_unreachable_low_is_refused_first_high_keeps_its_reserve_and_is_stored_later() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there until the end: the relay cannot flush.
    let upstream_port = free_port();
    let relay = Collector::start(
        &dir.path().join("relay"),
        &[
            "--cores",
            "1",
            "--journal-budget-bytes",
            BUDGET_BYTES,
            "--store",
            &format!("http://127.0.0.1:{upstream_port}"),
        ],
    );
    let mut conn = Conn::open(relay.addr);
    let mut ledger = Ledger::default();

    // A low flood fills the journal to 80%: then low is refused whole.
    let detail = ledger.flood(&mut conn, "low");
    assert!(
        detail.contains("low-priority") && detail.contains("80%"),
        "{detail}"
    );
    let low_acked = ledger.acked.len();
    assert!(low_acked > 0, "some low events went in first");

    // Between 80% and 90%: in one request, low is refused event by event
    // while normal (marked or not) and high are acked; the rejects name
    // each low event's index.
    let mixed = ["low", "high", "", "normal", "low", "high"];
    match ledger.post(&mut conn, &mixed) {
        Outcome::Answered(rejected) => {
            let indexes: Vec<usize> = rejected.iter().map(|(i, _)| *i).collect();
            assert_eq!(indexes, [0, 4]);
            assert!(rejected[0].1.contains("low-priority"), "{rejected:?}");
        }
        other => panic!("expected a partial answer, got {other:?}"),
    }

    // The shippers' requests are admitted or refused whole, by the highest
    // priority they carry (their clients resend whole requests, never one
    // item): a bulk request with a high document is stored whole, low
    // document included; one of low documents only gets Elasticsearch's
    // retryable 429, nothing stored.
    let es_docs = [
        r#"{"message":"es low","priority":"low"}"#.to_string(),
        r#"{"message":"es high","priority":"high"}"#.to_string(),
    ];
    let mut es = Conn::open(relay.addr);
    es.send_raw(&bulk(&es_docs)).unwrap();
    let r = es.read_response().unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(r.json()["errors"], false, "{items:?}");
    assert!(
        items.iter().all(|i| i["index"]["status"] == 201),
        "{items:?}"
    );
    let es_acked = 2u64;
    let low_only = [
        r#"{"message":"es low 1","priority":"low"}"#.to_string(),
        r#"{"message":"es low 2","priority":"low"}"#.to_string(),
    ];
    let mut es = Conn::open(relay.addr);
    es.send_raw(&bulk(&low_only)).unwrap();
    let r = es.read_response().unwrap();
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Retry-After"), Some("1"));
    let reason = r.json()["error"]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("low-priority"), "{reason}");
    *ledger.refused_by.entry("low".into()).or_default() += 2;

    // A normal flood fills it to 90%: then normal is refused whole, and
    // an unmarked event counts as normal.
    let detail = ledger.flood(&mut conn, "normal");
    assert!(
        detail.contains("normal-priority") && detail.contains("10%"),
        "{detail}"
    );
    assert!(matches!(ledger.post(&mut conn, &[""]), Outcome::Refused(_)));
    // So does any other value (kept as data), e.g. "HIGH".
    assert!(matches!(
        ledger.post(&mut conn, &["HIGH"]),
        Outcome::Refused(_)
    ));

    // High still gets in, through the reserve, until the whole budget.
    let before_high = ledger.acked.len();
    let detail = ledger.flood(&mut conn, "high");
    assert!(detail.contains("journal budget reached"), "{detail}");
    assert!(
        ledger.acked.len() - before_high >= 2 * BATCH,
        "high-priority events were acked in the reserve"
    );
    // Readiness says the budget is reached.
    let mut probe = Conn::open(relay.addr);
    probe
        .send_raw(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(probe.read_response().unwrap().status, 503);

    // /metrics counts every refusal by priority, exactly.
    for priority in ["high", "normal", "low"] {
        let expected = ledger.refused_by.get(priority).copied().unwrap_or(0);
        assert_eq!(refused_metric(&relay, priority), expected, "{priority}");
    }
    assert!(ledger.refused_by["low"] > 0 && ledger.refused_by["normal"] > 0);

    // The upstream comes up: the relay drains its journal into it, and it
    // holds exactly the acked events (and the acked bulk document), none
    // of the refused ones.
    let central = Collector::start_on(&dir.path().join("central"), upstream_port, &[]);
    let total = ledger.acked.len() as u64 + es_acked;
    let store = wait_for_count(&central.db_path(), total);
    let stored = stored_ids(&store);
    assert!(
        ledger.acked.iter().all(|id| stored.contains(id)),
        "an acked event was lost"
    );
    assert!(
        ledger.refused.iter().all(|id| !stored.contains(id)),
        "a refused event was stored"
    );
    let _ = (relay, central);
}

/// How often the kill test stalls the store and kills the collector.
const KILL_CYCLES: u32 = 4;
const LOAD_CONNECTIONS: usize = 3;
const PRIORITIES: [&str; 4] = ["low", "normal", "high", ""];

/// The number of the kill test's first event, apart from the workers'.
const FIRST_EVENT: u64 = u32::MAX as u64;

/// Shared book of the kill test's load.
#[derive(Default)]
struct KillBook {
    acked: Vec<String>,
    refused: Vec<String>,
    /// 200s in which a budget refusal and an acked high event met.
    partial_with_high_acked: u64,
}

/// Posts random-priority batches until `stop`; reconnects after errors (a
/// request whose answer is lost is neither acked nor refused).
fn kill_load(
    addr: std::net::SocketAddr,
    worker: u64,
    stop: Arc<AtomicBool>,
    book: Arc<Mutex<KillBook>>,
) {
    let mut conn: Option<Conn> = None;
    let mut rng = (worker + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    // `client_id` keeps 32 bits of its number: each worker of each cycle
    // numbers its events in its own range of 10 million.
    let mut next = worker * 10_000_000;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = connected(addr, &mut conn) else {
            continue;
        };
        let ids: Vec<(String, &str)> = (0..BATCH)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                next += 1;
                (client_id(next), PRIORITIES[(rng % 4) as usize])
            })
            .collect();
        let r = match c.post(&[], events(&ids).as_bytes()) {
            Ok(r) => r,
            Err(_) => {
                conn = None;
                continue;
            }
        };
        let mut book = book.lock().unwrap();
        match r.status {
            200 => {
                let v = r.json();
                let rejected: HashSet<usize> = v["rejected"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        let error = e["error"].as_str().unwrap();
                        assert!(error.starts_with("journal budget"), "{error}");
                        e["index"].as_u64().unwrap() as usize
                    })
                    .collect();
                let mut high_acked = false;
                for (i, (id, p)) in ids.into_iter().enumerate() {
                    if rejected.contains(&i) {
                        assert_ne!(p, "high", "a high event refused in a partial answer");
                        book.refused.push(id);
                    } else {
                        high_acked |= p == "high";
                        book.acked.push(id);
                    }
                }
                if high_acked && !rejected.is_empty() {
                    book.partial_with_high_acked += 1;
                }
            }
            503 => {
                // The budget (or a restarted journal recovering): either
                // way nothing of the request was journaled.
                assert!(r.header("Retry-After").is_some());
                book.refused.extend(ids.into_iter().map(|(id, _)| id));
                drop(book);
                std::thread::sleep(Duration::from_millis(10));
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
}

#[test]
fn mixed_priorities_under_sigkills_every_acked_event_is_stored_once_and_no_refused_one_ever() {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("priority kill test seed {seed}");
    let flags = ["--cores", "1", "--journal-budget-bytes", BUDGET_BYTES];
    let mut collector = Collector::start(dir.path(), &flags);
    let addr = collector.addr;
    let db = collector.db_path();
    // The store must exist before its lock can be held.
    let r = Conn::open(addr)
        .post(&[], events(&[(client_id(FIRST_EVENT), "high")]).as_bytes())
        .unwrap();
    assert_eq!(r.status, 200);
    let book = Arc::new(Mutex::new(KillBook {
        acked: vec![client_id(FIRST_EVENT)],
        ..KillBook::default()
    }));
    wait_for_count(&db, 1);
    for cycle in 0..KILL_CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..LOAD_CONNECTIONS as u64)
            .map(|w| {
                let (stop, book) = (stop.clone(), book.clone());
                let worker = u64::from(cycle) * LOAD_CONNECTIONS as u64 + w;
                std::thread::spawn(move || kill_load(addr, worker, stop, book))
            })
            .collect();
        // Stall the store (hold its write lock) so the journal fills past
        // the priority thresholds, then let it drain a little, then kill.
        let blocker = rusqlite::Connection::open(&db).unwrap();
        blocker.busy_timeout(Duration::from_secs(10)).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_millis(700 + (seed >> cycle) % 500));
        blocker.execute_batch("ROLLBACK").unwrap();
        drop(blocker);
        std::thread::sleep(Duration::from_millis(100 + (seed >> (cycle + 3)) % 300));
        collector.kill();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().expect("load worker");
        }
        let b = book.lock().unwrap();
        eprintln!(
            "cycle {cycle}: {} acked, {} refused, {} partial answers with high acked",
            b.acked.len(),
            b.refused.len(),
            b.partial_with_high_acked
        );
        drop(b);
        collector = Collector::start_on(dir.path(), addr.port(), &flags);
    }
    let b = book.lock().unwrap();
    assert!(b.acked.len() > 500, "only {} acked", b.acked.len());
    assert!(
        b.partial_with_high_acked > 0,
        "the budget never split a request by priority: the test did not test priorities"
    );
    let unique: HashSet<&String> = b.acked.iter().collect();
    assert_eq!(unique.len(), b.acked.len(), "an id acked twice");
    // Acked events all arrive, refused ones never; unanswered ones (lost to
    // a kill) may. Nothing twice.
    let deadline = std::time::Instant::now() + STORE_TIMEOUT;
    loop {
        let store = helios_store::sqlite::SqliteReader::open(&db).unwrap();
        let count = store.count().unwrap() as usize;
        let stored = stored_ids(&store);
        if store.count().unwrap() as usize != count {
            // The flusher wrote between the two reads: look again.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(count, stored.len(), "stored twice");
        assert!(
            b.refused.iter().all(|id| !stored.contains(id)),
            "a refused event was stored"
        );
        let missing = b.acked.iter().filter(|id| !stored.contains(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} acked events missing from the store"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(collector.stop().code(), Some(0));
}
