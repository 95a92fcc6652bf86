//! Segment creation: a segment needed while commits run is allocated
//! (fallocate) without writing its data blocks, so the journal's bytes
//! reach the disk once; one created while the disk is idle is zero-filled;
//! a filesystem without fallocate gets zero-filled segments; and commits
//! into allocated segments survive SIGKILLs like any other.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use helios_journal::format::BLOCK_BYTES;
use helios_journal::{segment_path, FaultPlan, Journal, JournalConfig};

const BLOCK: u64 = BLOCK_BYTES as u64;
/// Segments created at open (the first and its spares) are made while the
/// disk is idle; those after them are made while the test commits.
const CREATED_AT_OPEN: u64 = 3;
/// Commits (one block each) a test makes while watching new segments.
const COMMITS_UNDER_LOAD: u64 = 150;
/// Set in the SIGKILL test's child process: the journal directory.
const CHILD_DIR_ENV: &str = "HELIOS_SEGMENTS_TEST_CHILD_DIR";
/// Records the child must ack before it is killed, per cycle.
const ACKS_BEFORE_KILL: u64 = 60;
const KILL_CYCLES: u64 = 4;

/// How a segment file's data blocks (after its header) are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocks {
    /// Allocated and never written: no data after the header (unwritten
    /// extents count as holes to SEEK_DATA), every byte reads as zero.
    AllocatedUnwritten,
    /// Written data blocks (zero-filled).
    Written,
}

fn blocks_of(path: &Path) -> Blocks {
    let file = File::open(path).unwrap();
    let meta = file.metadata().unwrap();
    assert!(
        meta.blocks() * 512 >= meta.len(),
        "{}: only {} of {} bytes allocated",
        path.display(),
        meta.blocks() * 512,
        meta.len()
    );
    // SAFETY: the descriptor is open for the call; lseek touches no memory.
    let data_at = unsafe { libc::lseek(file.as_raw_fd(), BLOCK as i64, libc::SEEK_DATA) };
    let mut rest = vec![0u8; (meta.len() - BLOCK) as usize];
    file.read_exact_at(&mut rest, BLOCK).unwrap();
    assert!(
        rest.iter().all(|&b| b == 0),
        "{}: a new segment reads other than zeros",
        path.display()
    );
    if data_at < 0 {
        Blocks::AllocatedUnwritten
    } else {
        Blocks::Written
    }
}

/// Commits one record at a time and, after each, classifies every segment
/// that appeared since (before the writer can reach it, two segments
/// behind the newest spare). Returns the segments created under load.
fn segments_created_while_committing(dir: &Path, cfg: JournalConfig) -> Vec<(u64, Blocks)> {
    run(async {
        let j = Journal::open(dir, cfg).await.unwrap();
        let mut seen: BTreeSet<u64> = (1..=CREATED_AT_OPEN).collect();
        let mut found = Vec::new();
        for i in 0..COMMITS_UNDER_LOAD {
            append_each(&j, i, i + 1).await;
            let mut lap = CREATED_AT_OPEN + 1;
            while segment_path(dir, lap).exists() {
                if seen.insert(lap) {
                    found.push((lap, blocks_of(&segment_path(dir, lap))));
                }
                lap += 1;
            }
        }
        assert_records(&read_all(&j, 0), 0, COMMITS_UNDER_LOAD);
        j.close().await.unwrap();
        found
    })
}

#[test]
fn segments_needed_while_commits_run_are_allocated_without_data_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let found = segments_created_while_committing(tmp.path(), small_config());
    assert!(found.len() >= 3, "only {found:?} created under load");
    for (lap, blocks) in &found {
        assert_eq!(*blocks, Blocks::AllocatedUnwritten, "segment {lap}");
    }
}

#[test]
fn without_fallocate_segments_needed_under_load_are_zero_filled() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    plan.set_fallocate_refused(true);
    let cfg = JournalConfig {
        fault_plan: Some(plan),
        ..small_config()
    };
    let found = segments_created_while_committing(tmp.path(), cfg);
    assert!(found.len() >= 3, "only {found:?} created under load");
    for (lap, blocks) in &found {
        assert_eq!(*blocks, Blocks::Written, "segment {lap}");
    }
}

#[test]
fn segments_created_while_the_disk_is_idle_are_zero_filled() {
    let tmp = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(tmp.path(), small_config()).await.unwrap();
        let spare = segment_path(tmp.path(), CREATED_AT_OPEN);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !spare.exists() {
            assert!(Instant::now() < deadline, "no spare in 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(blocks_of(&spare), Blocks::Written);
        j.close().await.unwrap();
    });
}

/// The child's part of the SIGKILL test: opens the journal, then appends
/// one record per commit from where recovery left off, printing each
/// sequence once it is durable, until killed.
fn child(dir: &Path) -> ! {
    run(async {
        let j = Journal::open(dir, small_config()).await.unwrap();
        let from = j.recovery_report().last_seq;
        for i in from.. {
            append_each(&j, i, i + 1).await;
            println!("child acked {}", i + 1);
        }
        unreachable!("appends until killed")
    });
    std::process::exit(0)
}

/// Whether some segment ends in allocated, never-written blocks (a hole
/// to SEEK_HOLE before its end), as only a fallocated one can. Cached
/// pages of unwritten blocks (recovery read them) count as data to
/// SEEK_HOLE, so they are dropped first.
fn some_segment_has_unwritten_blocks(dir: &Path) -> bool {
    segment_files(dir).iter().any(|name| {
        let file = File::open(dir.join(name)).unwrap();
        let len = file.metadata().unwrap().len() as i64;
        let fd = file.as_raw_fd();
        // SAFETY: the descriptor is open for both calls; neither touches
        // memory of ours.
        let hole = unsafe {
            libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED);
            libc::lseek(fd, BLOCK as i64, libc::SEEK_HOLE)
        };
        hole >= 0 && hole < len
    })
}

#[test]
fn commits_into_allocated_segments_survive_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        child(Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("j");
    for cycle in 0..KILL_CYCLES {
        let mut proc = spawn_test_child(
            "commits_into_allocated_segments_survive_sigkill",
            CHILD_DIR_ENV,
            &dir,
        );
        let stdout = proc.stdout.take().unwrap();
        let mut acked = 0u64;
        let mut acks = 0u64;
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            // libtest may print the test's name on the same line.
            if let Some((_, n)) = line.split_once("child acked ") {
                acked = n.trim().parse().unwrap();
                acks += 1;
                if acks == ACKS_BEFORE_KILL {
                    break;
                }
            }
        }
        proc.kill().expect("SIGKILL the child");
        proc.wait().unwrap();
        assert_eq!(acks, ACKS_BEFORE_KILL, "cycle {cycle}: the child stopped");
        run(async {
            let j = Journal::open(&dir, small_config()).await.unwrap();
            let n = j.recovery_report().last_seq;
            assert!(n >= acked, "cycle {cycle}: acked {acked}, recovered {n}");
            assert_records(&read_all(&j, 0), 0, n);
            j.close().await.unwrap();
        });
    }
    assert!(
        some_segment_has_unwritten_blocks(&dir),
        "no allocated segment was in play"
    );
}
