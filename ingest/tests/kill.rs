//! Acked means durable: under continuous load from several connections
//! (single events and batches), SIGKILL the collector at random moments,
//! restart it each time; in the end every acked event is in the store
//! exactly once. Once on io_uring, and once with io_uring refused by a
//! seccomp filter (EPERM, as Docker's default profile answers), where the
//! collector must find that out itself, say so, and run on epoll with its
//! journals' writer threads.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

const KILL_CYCLES: u32 = 10;
const MIN_RUN_MS: u64 = 300;
const MAX_RUN_MS: u64 = 1200;
const LOAD_CONNECTIONS: u64 = 4;
const BATCH_EVENTS: u64 = 20;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// How each collector of the test is started.
#[derive(Clone, Copy, Debug)]
enum Host {
    /// As the host is (io_uring where the kernel allows it).
    Plain,
    /// io_uring refused by seccomp with EPERM.
    IoUringRefused,
    /// As the host is, with events of two hours ago that the embedded
    /// store's compactor moves into columnar files while the load runs.
    Compacting,
}

/// Flags that make the compactor move events minutes old, often, in small
/// files, so kills land during compaction steps too.
const COMPACTING_FLAGS: [&str; 10] = [
    "--store-hot-minutes",
    "0",
    "--store-partition-minutes",
    "1",
    "--store-compact-every-ms",
    "20",
    "--store-late-hold-minutes",
    "0",
    "--store-max-events-per-file",
    "500",
];

impl Host {
    fn start(self, dir: &std::path::Path, port: u16) -> Collector {
        match self {
            Host::Plain => Collector::start_on(dir, port, &[]),
            Host::Compacting => Collector::start_on(dir, port, &COMPACTING_FLAGS),
            Host::IoUringRefused => Collector::start_confined(
                dir,
                port,
                &[],
                &[],
                &[seccomp::io_uring_refused(libc::EPERM)],
            ),
        }
    }
}

#[test]
fn every_acked_event_is_stored_exactly_once_across_sigkills() {
    kill_cycles(Host::Plain);
}

#[test]
fn every_acked_event_is_stored_exactly_once_across_sigkills_on_epoll_where_io_uring_is_refused() {
    kill_cycles(Host::IoUringRefused);
}

#[test]
fn every_acked_event_is_stored_exactly_once_across_sigkills_while_compacting() {
    kill_cycles(Host::Compacting);
}

fn kill_cycles(host: Host) {
    let dir = tempfile::tempdir().unwrap();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test seed {seed}");
    let mut rng = Rng(seed);
    let log = LoadLog::default();
    let mut collector = host.start(dir.path(), free_port());
    let ts_base_ms = match host {
        Host::Compacting => Some(now_ms() - 2 * 3_600_000),
        Host::Plain | Host::IoUringRefused => None,
    };
    let addr = collector.addr;
    if let Host::IoUringRefused = host {
        collector.wait_for_log("io driver: epoll (io_uring refused: EPERM)");
        assert!(
            collector
                .metrics()
                .contains("helios_io_driver{driver=\"epoll\"} 1"),
            "/metrics must say epoll"
        );
    }
    for cycle in 0..KILL_CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..LOAD_CONNECTIONS)
            .map(|w| {
                let (stop, log) = (stop.clone(), log.clone());
                // Even workers send single events, odd ones batches.
                let n = if w % 2 == 0 { 1 } else { BATCH_EVENTS };
                std::thread::spawn(move || load_worker_at(addr, n, stop, log, ts_base_ms))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(
            MIN_RUN_MS + rng.next() % (MAX_RUN_MS - MIN_RUN_MS),
        ));
        collector.kill();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            let other = w.join().expect("load worker");
            assert!(
                other.is_empty(),
                "a collector answered other than 200: {other:?}"
            );
        }
        eprintln!(
            "cycle {cycle}: {} events acked so far",
            log.acked.lock().unwrap().len()
        );
        collector = host.start(dir.path(), addr.port());
    }
    let acked = log.acked.lock().unwrap().clone();
    assert!(acked.len() > 1000, "only {} events acked", acked.len());
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "an id was acked twice");
    // Every acked event arrives; unacked ones may too (they were durable
    // but the ack was lost to the kill), so wait for at least the acked.
    let db = collector.db_path();
    let deadline = std::time::Instant::now() + STORE_TIMEOUT;
    loop {
        let store = helios_store::sqlite::SqliteReader::open(&db).unwrap();
        let stored = stored_ids(&store);
        let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
        if missing == 0 {
            assert_eq!(
                store.count().unwrap() as usize,
                stored.len(),
                "an event stored twice"
            );
            assert!(stored.len() <= log.next.load(Ordering::SeqCst) as usize);
            if let Host::Compacting = host {
                let tiers = store.count_by_tier().unwrap();
                eprintln!("tiers at the end: {tiers:?}");
                assert!(tiers.columnar > 0, "nothing was compacted: {tiers:?}");
            }
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
