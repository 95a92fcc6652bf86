//! Acked means durable: under continuous load from several connections
//! (single events and batches), SIGKILL the collector at random moments,
//! restart it each time; in the end every acked event is in the store
//! exactly once.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

const KILL_CYCLES: u32 = 10;
const MIN_RUN_MS: u64 = 300;
const MAX_RUN_MS: u64 = 1200;
const LOAD_CONNECTIONS: u64 = 4;
const BATCH_EVENTS: u64 = 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One load connection: sends single events (even workers) or batches (odd
/// workers) with client ids until told to stop; records the ids of events
/// in requests answered 200. Reconnects after errors.
fn load_worker(
    worker: u64,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    next: Arc<AtomicU64>,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::SeqCst) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::try_open(addr) {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        let n = if worker % 2 == 0 { 1 } else { BATCH_EVENTS };
        let ids: Vec<String> = (0..n)
            .map(|_| client_id(next.fetch_add(1, Ordering::SeqCst)))
            .collect();
        let events: Vec<String> = ids
            .iter()
            .map(|id| format!(r#"{{"_id":"{id}","type":"load","w":{worker}}}"#))
            .collect();
        let body = if n == 1 {
            events[0].clone()
        } else {
            format!("[{}]", events.join(","))
        };
        match c.post(&[], body.as_bytes()) {
            Ok(r) if r.status == 200 => {
                assert_eq!(r.json()["accepted"], n, "every event is valid");
                acked.lock().unwrap().extend(ids);
            }
            Ok(r) => panic!(
                "unexpected status {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            Err(_) => conn = None,
        }
    }
}

#[test]
fn every_acked_event_is_stored_exactly_once_across_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test seed {seed}");
    let mut rng = Rng(seed);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let next = Arc::new(AtomicU64::new(0));
    let mut collector = Collector::start(dir.path(), &[]);
    let addr = collector.addr;
    for cycle in 0..KILL_CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..LOAD_CONNECTIONS)
            .map(|w| {
                let (stop, next, acked) = (stop.clone(), next.clone(), acked.clone());
                std::thread::spawn(move || load_worker(w, addr, stop, next, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(
            MIN_RUN_MS + rng.next() % (MAX_RUN_MS - MIN_RUN_MS),
        ));
        collector.kill();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            w.join().expect("load worker");
        }
        eprintln!(
            "cycle {cycle}: {} events acked so far",
            acked.lock().unwrap().len()
        );
        collector = Collector::start_on(dir.path(), addr.port(), &[]);
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 1000, "only {} events acked", acked.len());
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "an id was acked twice");
    // Every acked event arrives; unacked ones may too (they were durable
    // but the ack was lost to the kill), so wait for at least the acked.
    let db = collector.db_path();
    let deadline = std::time::Instant::now() + STORE_TIMEOUT;
    loop {
        let store = helios_store::SqliteReader::open(&db).unwrap();
        let stored: HashSet<String> = store
            .ids()
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
        if missing == 0 {
            assert_eq!(
                store.count().unwrap() as usize,
                stored.len(),
                "an event stored twice"
            );
            assert!(stored.len() <= next.load(Ordering::SeqCst) as usize);
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
