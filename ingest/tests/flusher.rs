//! The flusher supervises its store writer: a writer thread that dies (a
//! panic inside a sink) is noticed, logged and restarted on a reopened
//! store, and every journaled event still arrives, exactly once; and it
//! runs at the priority `--flusher-priority` sets.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use helios_ingest::config::FlusherPriority;
use helios_ingest::deadletter::DeadLetters;
use helios_ingest::flusher::{self, FlusherControl, Setup, SinkOpener};
use helios_ingest::metrics::FlusherMetrics;
use helios_store::testing::{Fault, MemoryStore};
use support::*;

#[test]
fn a_dead_store_writer_is_restarted_on_a_reopened_store_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rt, journal, feed) = journal_with_events(&dir.path().join("journal"), 5);
    let checkpointer = feed.checkpointer.clone();
    let store = MemoryStore::new();
    store.inject([Fault::Panic]);
    let reopens = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reopen_sink: SinkOpener = {
        let (store, reopens) = (store.clone(), Arc::clone(&reopens));
        Box::new(move || {
            reopens.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(store.sink()))
        })
    };
    let metrics = Arc::new(FlusherMetrics::default());
    let control = FlusherControl::new();
    control.drain_until(Instant::now() + Duration::from_secs(20));
    let (_tx, rx) = std::sync::mpsc::channel();

    let stats = flusher::run(
        vec![feed],
        Box::new(store.sink()),
        Setup {
            reopened: rx,
            dead: DeadLetters::new(&dir.path().join("dead-letter"), 1 << 20),
            batch_events: 100,
            control,
            metrics: Arc::clone(&metrics),
            retention: None,
            priority: FlusherPriority::Nice,
            reopen_sink,
        },
    );

    assert_eq!(
        reopens.load(Ordering::SeqCst),
        1,
        "the store was reopened once"
    );
    assert_eq!(metrics.writer_restarts.load(Ordering::Relaxed), 1);
    assert_eq!(store.count(), 5, "every journaled event arrived");
    assert_eq!(stats.inserted, 5);
    assert_eq!(checkpointer.current().seq, 1, "the record was checkpointed");
    assert!(
        !metrics.store_failing.load(Ordering::Relaxed),
        "/readyz recovers after the next successful write"
    );
    rt.block_on(journal.close()).unwrap();
}

#[test]
fn a_writer_that_dies_while_the_collector_runs_is_restarted_without_waiting_for_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rt, journal, feed) = journal_with_events(&dir.path().join("journal"), 5);
    let store = MemoryStore::new();
    store.inject([Fault::Panic]);
    let reopen_sink: SinkOpener = {
        let store = store.clone();
        Box::new(move || Ok(Box::new(store.sink())))
    };
    let metrics = Arc::new(FlusherMetrics::default());
    let control = FlusherControl::new();
    let (_tx, rx) = std::sync::mpsc::channel();
    let setup = Setup {
        reopened: rx,
        dead: DeadLetters::new(&dir.path().join("dead-letter"), 1 << 20),
        batch_events: 100,
        control: Arc::clone(&control),
        metrics: Arc::clone(&metrics),
        retention: None,
        priority: FlusherPriority::Nice,
        reopen_sink,
    };
    let sink = Box::new(store.sink());
    let flusher = std::thread::spawn(move || flusher::run(vec![feed], sink, setup));

    let deadline = Instant::now() + Duration::from_secs(20);
    while store.count() < 5 {
        assert!(Instant::now() < deadline, "the events never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(metrics.writer_restarts.load(Ordering::Relaxed), 1);
    control.drain_until(Instant::now() + Duration::from_secs(5));
    flusher.join().expect("the flusher itself survives");
    assert_eq!(store.count(), 5);
    rt.block_on(journal.close()).unwrap();
}

/// `(policy, nice)` of the collector's thread named `name`, from
/// `/proc/PID/task/TID/stat` (fields 41 and 19, counted after the
/// parenthesised name).
fn thread_sched(pid: u32, name: &str) -> (u32, i32) {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        // `after_name` starts at field 3 (state).
        let fields: Vec<&str> = after_name.split(' ').collect();
        return (
            fields[41 - 3].parse().unwrap(),
            fields[19 - 3].parse().unwrap(),
        );
    }
    panic!("no thread named {name} in process {pid}");
}

/// Posts `n` events with fresh ids and waits until the store holds them.
fn post_and_wait_stored(c: &Collector, n: u64) {
    let mut conn = Conn::open(c.addr);
    let ids: Vec<String> = (0..n).map(client_id).collect();
    for id in &ids {
        let body = format!(r#"{{"_id":"{id}","type":"sched"}}"#);
        assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 200);
    }
    assert_exactly_acked(&c.db_path(), &ids, &[]);
}

#[test]
fn the_flusher_and_store_writer_run_at_nice_10_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    post_and_wait_stored(&c, 20);
    for name in ["helios-flusher", "helios-store-wr", "helios-compacto"] {
        assert_eq!(
            thread_sched(c.pid(), name),
            (0, 10),
            "{name}: SCHED_OTHER, nice 10"
        );
    }
    assert_eq!(thread_sched(c.pid(), "helios-core-0"), (0, 0));
    assert_eq!(c.stop().code(), Some(0));
}

#[test]
fn with_flusher_priority_idle_the_store_runs_under_sched_idle_and_still_stores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &["--flusher-priority", "idle"]);
    post_and_wait_stored(&c, 20);
    for name in ["helios-flusher", "helios-store-wr", "helios-compacto"] {
        let (policy, _) = thread_sched(c.pid(), name);
        assert_eq!(policy, libc::SCHED_IDLE as u32, "{name}");
    }
    assert_eq!(
        thread_sched(c.pid(), "helios-core-0"),
        (0, 0),
        "the cores keep theirs"
    );
    assert_eq!(c.stop().code(), Some(0));
}
