//! Dead letters: the flusher sends what the store refuses to the
//! dead-letter file (and retries what fails transiently), stores the rest,
//! and `helios-collector dead-letter list|replay` reads and re-submits them.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use helios_ingest::config::FlusherPriority;
use helios_ingest::deadletter::{self, DeadLetters, DEAD_LETTER_FILE};
use helios_ingest::flusher::{self, FlusherControl, Setup};
use helios_ingest::metrics::FlusherMetrics;
use helios_store::testing::{Fault, MemoryStore};
use support::*;

#[test]
fn refused_events_become_dead_letters_transient_failures_are_retried_and_the_rest_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (mut rt, journal, feed) = journal_with_events(&dir.path().join("journal"), 5);
    let store = MemoryStore::new();
    store.inject([Fault::Transient, Fault::Refuse { index: 2 }]);
    let metrics = Arc::new(FlusherMetrics::default());
    let control = FlusherControl::new();
    control.drain_until(Instant::now() + Duration::from_secs(20));
    let dead_dir = dir.path().join("dead-letter");
    let (_tx, rx) = std::sync::mpsc::channel();
    let stats = flusher::run(
        vec![feed],
        Box::new(store.sink()),
        Setup {
            reopened: rx,
            dead: DeadLetters::new(&dead_dir, 1 << 20),
            batch_events: 100,
            control,
            metrics: Arc::clone(&metrics),
            retention: None,
            priority: FlusherPriority::Nice,
            reopen_sink: Box::new(|| panic!("the writer does not die here")),
        },
    );
    assert_eq!(stats.inserted, 4);
    assert_eq!(stats.dead_lettered, 1);
    assert!(stats.retries >= 1);
    assert_eq!(metrics.store_errors.load(Ordering::Relaxed), stats.retries);
    let types: Vec<String> = store
        .ids()
        .into_iter()
        .map(|id| store.get(id).unwrap().event_type)
        .collect();
    assert!(!types.contains(&"t2".to_string()), "{types:?}");
    let letters = deadletter::read_all(&dead_dir.join(DEAD_LETTER_FILE)).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].event.as_ref().unwrap()["type"], "t2");
    rt.block_on(journal.close()).unwrap();
}

#[test]
fn dead_letter_list_and_replay_resubmit_what_the_store_now_takes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("dead-letter")).unwrap();
    let id = client_id(42);
    let letters = format!(
        "{{\"reason\":\"refused\",\"event\":{{\"_id\":\"{id}\",\"type\":\"back\",\"ts\":\"2026-11-30T10:00:00.000Z\",\"recv\":\"2026-11-30T10:00:01.000Z\",\"x\":1}}}}\n\
         {{\"reason\":\"record 7 does not decode\",\"raw\":\"garbage\"}}\n"
    );
    std::fs::write(data.join("dead-letter").join(DEAD_LETTER_FILE), letters).unwrap();
    let run = |action: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_helios-collector"))
            .args(["--log-format", "json", "--data-dir"])
            .arg(&data)
            .args(["dead-letter", action])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = run("list");
    assert!(
        listed.contains(&id) && listed.contains("2 dead letters"),
        "{listed}"
    );
    let replayed = run("replay");
    assert!(replayed.contains("1 stored, 1 kept"), "{replayed}");
    let store = helios_store::sqlite::SqliteReader::open(data.join("events.db")).unwrap();
    assert_eq!(store.get(oid(&id)).unwrap().unwrap().event_type, "back");
    let left = deadletter::read_all(&data.join("dead-letter").join(DEAD_LETTER_FILE)).unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].event.is_none());
}

#[test]
fn replay_refuses_while_a_collector_runs() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_helios-collector"))
        .args(["--log-format", "json", "--data-dir"])
        .arg(&c.data_dir)
        .args(["dead-letter", "replay"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
}
