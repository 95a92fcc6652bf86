//! Crash test with real processes: a child appends and commits in a loop,
//! printing each acknowledged record; we SIGKILL it at random moments, and
//! after every kill check that every acknowledged record past the
//! checkpoint is recovered intact and no record is there twice. Once on
//! io_uring, and once with io_uring refused to the child by a seccomp
//! filter (as in a default Docker container), where it must find that out
//! itself and commit on epoll with the journal's writer thread.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use helios_journal::{IoDriver, Journal, JournalConfig};
use helios_tests::seccomp;

const KILL_CYCLES: u64 = 20;
const MIN_RUN_MS: u64 = 40;
const MAX_RUN_MS: u64 = 400;
/// A cycle whose child acks nothing in this long means the journal hangs.
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(20);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// How the child is started.
#[derive(Clone, Copy)]
enum Host {
    /// As it is (io_uring allowed).
    Plain,
    /// io_uring refused by seccomp with EPERM.
    IoUringRefused,
}

impl Host {
    /// The driver the child must report having chosen.
    fn expected_driver(self) -> IoDriver {
        match self {
            Host::Plain => IoDriver::IoUring,
            Host::IoUringRefused => IoDriver::Epoll,
        }
    }
}

#[test]
fn every_acknowledged_record_survives_sigkill_exactly_once_on_io_uring() {
    kill_cycles(Host::Plain, Segments::Spares);
}

#[test]
fn every_acknowledged_record_survives_sigkill_exactly_once_on_epoll_where_io_uring_is_refused() {
    kill_cycles(Host::IoUringRefused, Segments::Spares);
}

/// Kills land while segments beyond the spares are zero-filled in the idle
/// moments, and while recycled ones are relapped in place.
#[test]
fn every_acknowledged_record_survives_sigkill_with_segments_prepared_ahead() {
    kill_cycles(Host::Plain, Segments::Prepared);
}

/// Which segments the child keeps ahead.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Segments {
    /// The default spares only.
    Spares,
    /// Spares plus `PREPARED_SEGMENTS` filled while idle (`prepared`).
    Prepared,
}

/// The child's `PREPARED_SEGMENTS`.
const PREPARED_SEGMENTS: usize = 6;

fn kill_cycles(host: Host, segments: Segments) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let mut acked: HashMap<u64, String> = HashMap::new();
    let mut total_acks = 0usize;
    for cycle in 0..KILL_CYCLES {
        let lines = run_child_until_killed(
            &dir,
            cycle,
            MIN_RUN_MS + rng.next() % (MAX_RUN_MS - MIN_RUN_MS),
            host,
            segments,
        );
        for line in &lines {
            let mut parts = line.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("ack"), Some(seq), Some(payload)) => {
                    let seq: u64 = seq.parse().unwrap();
                    // A sequence is reused only if its earlier record was
                    // never acknowledged; an acked one must never be.
                    let previous = acked.insert(seq, payload.to_string());
                    assert!(
                        previous.is_none(),
                        "seq {seq} acknowledged twice (cycle {cycle})"
                    );
                    total_acks += 1;
                }
                (Some("cp"), Some(_), None) => {}
                (Some("driver"), Some(name), None) => assert_eq!(
                    name,
                    host.expected_driver().name(),
                    "cycle {cycle}: the child chose the wrong driver"
                ),
                _ => panic!("child reported: {line}"),
            }
        }
        verify(&dir, &acked, cycle, host.expected_driver(), segments);
    }
    assert!(
        total_acks > 1000,
        "only {total_acks} acks over {KILL_CYCLES} cycles"
    );
}

fn run_child_until_killed(
    dir: &Path,
    cycle: u64,
    run_ms: u64,
    host: Host,
    segments: Segments,
) -> Vec<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_journal_crash_child"));
    cmd.arg(dir).arg(cycle.to_string()).arg("auto");
    if segments == Segments::Prepared {
        cmd.arg("prepared");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    if let Host::IoUringRefused = host {
        seccomp::confine(&mut cmd, &[seccomp::io_uring_refused(libc::EPERM)]);
    }
    let mut child = cmd.spawn().expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let collector = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        })
    };
    // Kill at a random moment after the child has started acknowledging.
    let start = Instant::now();
    // The first line names the driver; acks follow.
    while lines.lock().unwrap().len() < 2 {
        assert!(start.elapsed() < FIRST_ACK_TIMEOUT, "cycle {cycle}: no ack");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "cycle {cycle}: child exited by itself: {status}: {:?}",
                lines.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(run_ms));
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    collector.join().unwrap();
    let lines = lines.lock().unwrap().clone();
    lines
}

fn verify(
    dir: &Path,
    acked: &HashMap<u64, String>,
    cycle: u64,
    driver: IoDriver,
    segments: Segments,
) {
    helios_journal::runtime::block_on(driver, 256, async {
        let cfg = JournalConfig {
            segment_size_bytes: 256 * 1024,
            commit_path: driver.commit_path(),
            prepared_segments: match segments {
                Segments::Spares => 0,
                Segments::Prepared => PREPARED_SEGMENTS,
            },
            ..JournalConfig::default()
        };
        let j = Journal::open(dir, cfg)
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let cp = j.checkpointer().current().seq;
        let mut reader = j.reader(cp);
        let mut on_disk: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut payloads = HashSet::new();
        let mut expect_seq = cp + 1;
        loop {
            let batch = reader.read_batch(4096).unwrap();
            if batch.is_empty() {
                break;
            }
            for r in batch {
                assert_eq!(r.seq, expect_seq, "cycle {cycle}: sequence gap");
                expect_seq += 1;
                assert!(
                    payloads.insert(r.payload.clone()),
                    "cycle {cycle}: record stored twice"
                );
                on_disk.insert(r.seq, r.payload);
            }
        }
        for (seq, payload) in acked.iter().filter(|(s, _)| **s > cp) {
            match on_disk.get(seq) {
                Some(p) => assert_eq!(p, payload.as_bytes(), "cycle {cycle}: seq {seq} damaged"),
                None => panic!("cycle {cycle}: acknowledged seq {seq} lost (checkpoint {cp})"),
            }
        }
        j.close().await.unwrap();
    })
    .expect("runtime");
}
