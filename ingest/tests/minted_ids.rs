//! Ids the collector mints are unique forever, whatever the clock does
//! (issue 13, item 1): a collector whose wall clock stands still, or is
//! stepped back, is SIGKILLed and restarted under batch load of events
//! without `_id`; in the end every acked event is stored, and none twice.
//!
//! The clock is the real process's: libfaketime (Debian package
//! `faketime`, installed by `.ci/run`) freezes `CLOCK_REALTIME` for the
//! collector while leaving `CLOCK_MONOTONIC` real, so its timers still run.
//! Once on io_uring, once on epoll with io_uring refused by seccomp.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// Where libfaketime keeps the shared memory a faked process makes.
const FAKETIME_SHM_DIR: &str = "/dev/shm";
/// The frozen wall clock, and the same clock stepped back an hour.
const FROZEN_AT: &str = "2026-12-07 10:00:00";
const STEPPED_BACK_TO: &str = "2026-12-07 09:00:00";
const KILL_CYCLES: usize = 6;
const RUN_MS: [u64; KILL_CYCLES] = [400, 700, 300, 900, 500, 600];
const LOAD_CONNECTIONS: usize = 3;
const EVENTS_PER_REQUEST: u64 = 50;

/// Environment that runs the collector under a wall clock fixed at `at`.
fn frozen_clock(at: &'static str) -> [(&'static str, &'static str); 3] {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: install the Debian package `faketime` (.ci/run does)"
    );
    [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME", at),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]
}

/// Removes the shared-memory files libfaketime made for the process
/// `pid` (`/dev/shm/faketime_shm_<pid>`, `sem.faketime_sem_<pid>`): it
/// removes them only on a clean exit, and these collectors are SIGKILLed,
/// so without this every run leaves them behind on the machine.
fn remove_faketime_files(pid: u32) {
    for name in [
        format!("faketime_shm_{pid}"),
        format!("sem.faketime_sem_{pid}"),
    ] {
        match std::fs::remove_file(Path::new(FAKETIME_SHM_DIR).join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing libfaketime's files of {pid}: {e}"),
        }
    }
}

/// Event numbers of requests answered 200.
#[derive(Clone, Default)]
struct Acked {
    next: Arc<AtomicU64>,
    numbers: Arc<Mutex<Vec<u64>>>,
}

/// Posts arrays of events without `_id` (the collector mints every id),
/// each carrying a unique `n`, until `stop`.
fn load(addr: SocketAddr, stop: Arc<AtomicBool>, acked: Acked) -> Vec<u16> {
    post_until_stopped(
        addr,
        &stop,
        || {
            let first = acked.next.fetch_add(EVENTS_PER_REQUEST, Ordering::SeqCst);
            let numbers: Vec<u64> = (first..first + EVENTS_PER_REQUEST).collect();
            let events: Vec<String> = numbers
                .iter()
                .map(|n| format!(r#"{{"type":"minted","n":{n}}}"#))
                .collect();
            (
                format!("[{}]", events.join(",")),
                EVENTS_PER_REQUEST,
                numbers,
            )
        },
        |numbers| acked.numbers.lock().unwrap().extend(numbers),
    )
}

/// `(stored rows, the distinct event numbers among them)`.
fn stored_numbers(db: &Path) -> (usize, HashSet<u64>) {
    // Both tiers: the clock steps make the compactor seal partitions.
    let docs = stored_docs(db);
    let numbers = docs
        .iter()
        .map(|doc| doc["n"].as_u64().expect("every stored event has n"))
        .collect();
    (docs.len(), numbers)
}

#[test]
fn minted_ids_never_repeat_under_a_frozen_or_stepped_back_clock_across_sigkills() {
    kill_cycles(&[]);
}

#[test]
fn minted_ids_never_repeat_across_sigkills_on_epoll_where_io_uring_is_refused() {
    kill_cycles(&[seccomp::io_uring_refused(libc::EPERM)]);
}

/// The test, each collector confined by `filters`.
fn kill_cycles(filters: &[seccomp::Filter]) {
    let dir = tempfile::tempdir().unwrap();
    let acked = Acked::default();
    let port = free_port();
    for (cycle, run_ms) in RUN_MS.iter().enumerate() {
        // Every third run has the clock stepped back an hour.
        let at = if cycle % 3 == 2 {
            STEPPED_BACK_TO
        } else {
            FROZEN_AT
        };
        let collector =
            Collector::start_confined(dir.path(), port, &[], &frozen_clock(at), filters);
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..LOAD_CONNECTIONS)
            .map(|_| {
                let (stop, acked) = (stop.clone(), acked.clone());
                std::thread::spawn(move || load(collector.addr, stop, acked))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(*run_ms));
        let pid = collector.pid();
        collector.kill();
        remove_faketime_files(pid);
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            let other = w.join().expect("load worker");
            assert!(other.is_empty(), "answered other than 200: {other:?}");
        }
        eprintln!(
            "cycle {cycle} (clock {at}): {} events acked so far",
            acked.numbers.lock().unwrap().len()
        );
    }
    let collector =
        Collector::start_confined(dir.path(), port, &[], &frozen_clock(FROZEN_AT), filters);
    let acked: HashSet<u64> = acked.numbers.lock().unwrap().iter().copied().collect();
    assert!(acked.len() > 1_000, "only {} events acked", acked.len());
    let deadline = Instant::now() + STORE_TIMEOUT;
    loop {
        // Reading every document back is slow in a debug build: only once
        // the store holds at least as many events as were acked.
        let count = helios_store::sqlite::SqliteReader::open(collector.db_path())
            .and_then(|store| store.count())
            .unwrap_or(0);
        if (count as usize) < acked.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let (rows, stored) = stored_numbers(&collector.db_path());
        let missing = acked.difference(&stored).count();
        if missing == 0 {
            // Unacked events may be stored too (durable, ack lost to the
            // kill); none may be stored twice.
            assert_eq!(rows, stored.len(), "an event was stored twice");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acked events never reached the store (their minted ids \
             were taken as duplicates of earlier events)",
            acked.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = collector.pid();
    assert_eq!(collector.stop().code(), Some(0));
    remove_faketime_files(pid);
}
