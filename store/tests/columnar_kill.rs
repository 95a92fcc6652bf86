//! SIGKILL during compaction, with a writer inserting beside it (issue 22:
//! "a crash during any step never loses or duplicates a stored event").
//!
//! A child process runs the compactor over a store of old events in small
//! files while a second thread of it keeps inserting batches (recent ones,
//! and resends of old, already compacted ones), printing each batch's
//! number once `write_batch` returned: acknowledged. The parent kills it
//! at a random moment, then checks through both tiers: every event stored
//! before or acknowledged is there exactly once, and nothing else. Several
//! rounds on one store, then a full compaction and the same check.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{event, temp_store};
use helios_store::columnar::WriteOptions;
use helios_store::query::{QueryBackend, TimeRange};
use helios_store::sqlite::manifest::columnar_dir;
use helios_store::sqlite::{CompactOptions, Compactor, SqliteQueries, SqliteReader, SqliteSink};
use helios_store::{ObjectId, Sink};

/// The child's role: set to the store path.
const CHILD_ENV: &str = "HELIOS_TEST_COMPACTION_KILL_CHILD";
/// Events stored before the first round.
const INITIAL_EVENTS: u32 = 6_000;
/// Events per batch the child's writer inserts.
const BATCH_EVENTS: u32 = 50;
/// First event number the child's writer uses (above the initial ones).
const WRITER_FIRST: u32 = 100_000;
const ROUNDS: u32 = 6;

fn options() -> CompactOptions {
    CompactOptions {
        // The fixtures' events are 1 ms apart: 20 partitions of 300.
        partition_ms: 300,
        hot_ms: 0,
        max_rows_per_file: 120,
        late_hold_ms: 0,
        write: WriteOptions {
            row_group_rows: 40,
            ..WriteOptions::default()
        },
    }
}

/// The events of writer batch `batch` of round `round`: new events, plus
/// a resend of three events stored before the first round.
fn writer_batch(round: u32, batch: u32) -> Vec<helios_store::EventDoc> {
    let first = WRITER_FIRST + (round * 1_000 + batch) * BATCH_EVENTS;
    let mut events: Vec<_> = (first..first + BATCH_EVENTS).map(event).collect();
    events.extend([batch % INITIAL_EVENTS, (batch * 7) % INITIAL_EVENTS, 17].map(event));
    events
}

fn writer_ids(round: u32, batch: u32) -> Vec<ObjectId> {
    let first = WRITER_FIRST + (round * 1_000 + batch) * BATCH_EVENTS;
    (first..first + BATCH_EVENTS).map(common::id).collect()
}

#[test]
fn child_compacts_and_inserts_until_killed() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        println!("skipped: the child role of compaction_killed_at_any_moment_loses_and_duplicates_nothing");
        return;
    };
    let path = std::path::PathBuf::from(path);
    let round: u32 = std::env::var("HELIOS_TEST_ROUND").unwrap().parse().unwrap();
    let writer_path = path.clone();
    std::thread::spawn(move || {
        // Rounds alternate the rows' kind (schema version 3): the fixtures'
        // old events are late rows by default; every other round writes
        // them as live rows, through the `ts` indexes.
        let late_after_ms = if round % 2 == 0 {
            i64::MAX
        } else {
            helios_store::sqlite::DEFAULT_LATE_AFTER_MS
        };
        let mut sink = SqliteSink::open(&writer_path)
            .unwrap()
            .with_late_after_ms(late_after_ms);
        for batch in 0.. {
            sink.write_batch(&writer_batch(round, batch)).unwrap();
            println!("acked {batch}");
        }
    });
    let mut compactor = Compactor::open(&path, options()).unwrap();
    loop {
        compactor.compact_before(i64::MAX, 1).unwrap();
    }
}

fn check(path: &Path, expected: &BTreeSet<ObjectId>, context: &str) {
    let ids = SqliteReader::open(path).unwrap().ids().unwrap();
    let unique: HashSet<ObjectId> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "{context}: an event is stored twice"
    );
    let stored: BTreeSet<ObjectId> = ids.into_iter().collect();
    let missing: Vec<_> = expected.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{context}: acknowledged events lost: {missing:?}"
    );
    // Anything beyond was inserted but killed before its ack was printed:
    // stored once, which is allowed.
    let queries = SqliteQueries::open(path).unwrap();
    let counted: u64 = queries
        .types(TimeRange::ALL)
        .unwrap()
        .iter()
        .map(|t| t.count)
        .sum();
    assert_eq!(
        counted,
        stored.len() as u64,
        "{context}: queries count each event once"
    );
}

#[test]
fn compaction_killed_at_any_moment_loses_and_duplicates_nothing() {
    let (_dir, path) = temp_store();
    let initial: Vec<_> = (0..INITIAL_EVENTS).map(event).collect();
    // Half the initial events live rows, half late ones.
    let mut live = SqliteSink::open(&path)
        .unwrap()
        .with_late_after_ms(i64::MAX);
    let mut late = SqliteSink::open(&path).unwrap().with_late_after_ms(0);
    for (n, chunk) in initial.chunks(1_000).enumerate() {
        let sink = if n % 2 == 0 { &mut live } else { &mut late };
        sink.write_batch(chunk).unwrap();
    }
    drop((live, late));
    let mut expected: BTreeSet<ObjectId> = initial.iter().map(|e| e.id).collect();
    let mut rng_state = 0x9E37_79B9_7F4A_7C15_u64;

    for round in 0..ROUNDS {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "child_compacts_and_inserts_until_killed",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .env("HELIOS_TEST_ROUND", round.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start the child");
        // xorshift: a different kill moment each round, reproducible.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let delay = Duration::from_millis(50 + rng_state % 400);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.strip_prefix("acked ")?.parse::<u32>().ok())
                .collect::<Vec<u32>>()
        });
        let started = Instant::now();
        std::thread::sleep(delay);
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        for batch in &acked {
            expected.extend(writer_ids(round, *batch));
        }
        check(
            &path,
            &expected,
            &format!(
                "round {round}, killed after {:?} with {} batches acked",
                started.elapsed(),
                acked.len()
            ),
        );
    }

    let mut compactor = Compactor::open(&path, options()).unwrap();
    compactor.compact_before(i64::MAX, usize::MAX).unwrap();
    check(&path, &expected, "after a full compaction");
    let reader = SqliteReader::open(&path).unwrap();
    assert_eq!(
        reader.count().unwrap() as usize,
        reader.ids().unwrap().len()
    );
    assert_eq!(
        reader.count().unwrap(),
        SqliteReader::open(&path).unwrap().count().unwrap()
    );
    assert!(columnar_dir(&path).is_dir());
}
