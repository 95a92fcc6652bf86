//! Overlapping commits (`max_commits_in_flight` > 1): tickets resolve in
//! sequence order whatever order the writes finish in, a failed commit
//! fails every later one, and a SIGKILL at any point between two
//! overlapping commits recovers every acknowledged record, nothing past a
//! missing commit, and never the stale later commit again.

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use helios_journal::{recover, FaultPlan, HoldPoint, Journal, JournalConfig, JournalError, Ticket};

/// Commits the tests keep in flight.
const IN_FLIGHT: usize = 2;
/// How long a test waits for a state the journal must reach.
const STATE_TIMEOUT: Duration = Duration::from_secs(20);
/// Records acknowledged before the two overlapping commits (0..BASE).
const BASE: u64 = 5;
/// Records in each of the two overlapping commits.
const GROUP: u64 = 5;
/// Set in the re-executed test binary: the journal directory its child
/// role writes to.
const CHILD_DIR_ENV: &str = "HELIOS_OVERLAP_CHILD_DIR";

fn overlap_config(plan: &Arc<FaultPlan>) -> JournalConfig {
    JournalConfig {
        max_commits_in_flight: IN_FLIGHT,
        fault_plan: Some(plan.clone()),
        ..small_config()
    }
}

fn append_tickets(j: &Journal, from: u64, to: u64) -> Vec<Ticket> {
    (from..to)
        .map(|i| j.append(&meta(i), &payload(i)).expect("append"))
        .collect()
}

/// Waits on the runtime (letting the committer run) until `cond` holds.
async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + STATE_TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn a_later_commit_that_finishes_first_is_acknowledged_only_after_the_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    run(async {
        let j = Journal::open(dir.path(), overlap_config(&plan))
            .await
            .unwrap();
        append_group(&j, 0, BASE).await;
        let done = plan.writes_done();
        plan.hold_nth_write(1, HoldPoint::BeforeWrite);
        let order = Rc::new(RefCell::new(Vec::new()));
        let first = append_tickets(&j, BASE, BASE + GROUP);
        wait_for("the first commit held", || plan.is_holding()).await;
        let second = append_tickets(&j, BASE + GROUP, BASE + 2 * GROUP);
        let mut waiters = Vec::new();
        for (name, tickets) in [("first", first), ("second", second)] {
            let order = order.clone();
            waiters.push(monoio::spawn(async move {
                for t in &tickets {
                    t.durable().await.expect("durable");
                }
                order.borrow_mut().push(name);
            }));
        }
        wait_for("the second commit written", || plan.writes_done() > done).await;
        // Give a wrongly early completion every chance to show.
        monoio::time::sleep(Duration::from_millis(20)).await;
        assert!(order.borrow().is_empty(), "acked: {:?}", order.borrow());
        assert_eq!(j.durable_seq(), BASE, "durable mark covers a gap");
        assert_records(&read_all(&j, 0), 0, BASE);
        plan.release();
        for w in waiters {
            w.await;
        }
        assert_eq!(*order.borrow(), ["first", "second"]);
        assert_eq!(j.durable_seq(), BASE + 2 * GROUP);
        assert_records(&read_all(&j, 0), 0, BASE + 2 * GROUP);
        j.close().await.unwrap();
    });
}

#[test]
fn a_failed_commit_fails_a_later_one_that_was_already_written() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    run(async {
        let j = Journal::open(dir.path(), overlap_config(&plan))
            .await
            .unwrap();
        append_group(&j, 0, BASE).await;
        let done = plan.writes_done();
        plan.hold_nth_write(1, HoldPoint::BeforeWrite);
        plan.fail_nth_write(1);
        let first = append_tickets(&j, BASE, BASE + GROUP);
        wait_for("the first commit held", || plan.is_holding()).await;
        let second = append_tickets(&j, BASE + GROUP, BASE + 2 * GROUP);
        wait_for("the second commit written", || plan.writes_done() > done).await;
        plan.release();
        for t in first.iter().chain(&second) {
            let err = t.durable().await.expect_err("acked past a failed commit");
            assert!(matches!(err, JournalError::Failed { .. }), "{err}");
        }
        assert!(j.is_failed());
        assert_eq!(j.durable_seq(), BASE);
        assert_records(&read_all(&j, 0), 0, BASE);
        drop(j);
        // On disk: nothing at the first commit, the second one whole.
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_eq!(j.recovery_report().last_seq, BASE);
        assert_eq!(j.recovery_report().unacked_overlapping_commits, 1);
        assert_records(&read_all(&j, 0), 0, BASE);
        append_group(&j, BASE, BASE + 3).await;
        j.close().await.unwrap();
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, BASE + 3);
    });
}

#[test]
fn one_commit_in_flight_never_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    let cfg = JournalConfig {
        max_commits_in_flight: 1,
        ..overlap_config(&plan)
    };
    run(async {
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        plan.hold_nth_write(1, HoldPoint::BeforeWrite);
        let first = append_tickets(&j, 0, GROUP);
        wait_for("the first commit held", || plan.is_holding()).await;
        let second = append_tickets(&j, GROUP, 2 * GROUP);
        monoio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(plan.writes_seen(), 1, "a second commit started");
        plan.release();
        second.last().unwrap().durable().await.unwrap();
        assert!(first.last().unwrap().durable().await.is_ok());
        assert_records(&read_all(&j, 0), 0, 2 * GROUP);
    });
}

#[test]
fn more_commits_in_flight_than_the_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        for n in [0, helios_journal::MAX_COMMITS_IN_FLIGHT_LIMIT + 1] {
            let cfg = JournalConfig {
                max_commits_in_flight: n,
                ..small_config()
            };
            let err = Journal::open(dir.path(), cfg).await.err();
            assert!(matches!(err, Some(JournalError::Config(_))), "{n}: {err:?}");
        }
    });
}

/// Where the child stops, between two overlapping commits k (records
/// BASE..BASE+GROUP) and k+1 (the next GROUP records).
#[derive(Debug, Clone, Copy)]
enum Point {
    /// k issued but held before its write.
    FirstHeld,
    /// k held before its write; k+1 written and durable.
    FirstHeldSecondDurable,
    /// k durable, not yet reported to the committer.
    FirstDurableUnreported,
    /// k and k+1 durable, k not yet reported (so neither acked).
    BothDurableFirstUnreported,
    /// k acknowledged; k+1 held before its write.
    FirstAckedSecondHeld,
    /// k acknowledged; k+1 durable, not yet reported.
    FirstAckedSecondDurableUnreported,
}

impl Point {
    /// Records a recovery must find: everything acked, plus what is
    /// durable on disk behind no missing commit.
    fn recovered(self) -> u64 {
        match self {
            Point::FirstHeld | Point::FirstHeldSecondDurable => BASE,
            Point::FirstDurableUnreported | Point::FirstAckedSecondHeld => BASE + GROUP,
            Point::BothDurableFirstUnreported | Point::FirstAckedSecondDurableUnreported => {
                BASE + 2 * GROUP
            }
        }
    }
}

impl Point {
    /// Commits recovery must find past the missing one and drop.
    fn unacked_overlapping(self) -> u64 {
        match self {
            Point::FirstHeldSecondDurable => 1,
            _ => 0,
        }
    }
}

/// The child's part: gets the journal to `point`, prints what it acked,
/// and waits to be killed.
fn child(point: Point, dir: &Path) -> ! {
    let plan = Arc::new(FaultPlan::new());
    run(async {
        let j = Journal::open(dir, overlap_config(&plan)).await.unwrap();
        append_group(&j, 0, BASE).await;
        let done = plan.writes_done();
        let (hold_write, at) = match point {
            Point::FirstHeld | Point::FirstHeldSecondDurable => (1, HoldPoint::BeforeWrite),
            Point::FirstDurableUnreported | Point::BothDurableFirstUnreported => {
                (1, HoldPoint::AfterSync)
            }
            Point::FirstAckedSecondHeld => (2, HoldPoint::BeforeWrite),
            Point::FirstAckedSecondDurableUnreported => (2, HoldPoint::AfterSync),
        };
        plan.hold_nth_write(hold_write, at);
        let first = append_tickets(&j, BASE, BASE + GROUP);
        let mut _second = Vec::new();
        match point {
            Point::FirstHeld | Point::FirstDurableUnreported => {
                wait_for("k held", || plan.is_holding()).await;
            }
            Point::FirstHeldSecondDurable | Point::BothDurableFirstUnreported => {
                wait_for("k held", || plan.is_holding()).await;
                _second = append_tickets(&j, BASE + GROUP, BASE + 2 * GROUP);
                wait_for("k+1 written", || {
                    plan.writes_done() >= done + 1 + hold_write_done(at)
                })
                .await;
            }
            Point::FirstAckedSecondHeld | Point::FirstAckedSecondDurableUnreported => {
                let seen = plan.writes_seen();
                wait_for("k issued", || plan.writes_seen() > seen).await;
                _second = append_tickets(&j, BASE + GROUP, BASE + 2 * GROUP);
                for t in &first {
                    t.durable().await.unwrap();
                }
                wait_for("k+1 held", || plan.is_holding()).await;
            }
        }
        println!("child acked {}", j.durable_seq());
        println!("child ready");
        loop {
            monoio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Writes done when k is held after its sync (k's own write counts).
fn hold_write_done(at: HoldPoint) -> u64 {
    match at {
        HoldPoint::BeforeWrite => 0,
        HoldPoint::AfterSync => 1,
    }
}

/// This test's name as the test binary knows it (`--exact`), from inside
/// `overlap.rs` or its `_on_epoll` twin.
fn test_path(name: &str) -> String {
    match module_path!().split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_string(),
    }
}

/// Runs the child role of test `name` in a new process of this test
/// binary, SIGKILLs it at `point`, then recovers and checks.
fn kill_between(point: Point, name: &str) {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        child(point, Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("j");
    let mut proc = spawn_test_child(&test_path(name), CHILD_DIR_ENV, &dir);
    let stdout = proc.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut acked = None;
    loop {
        let line = rx
            .recv_timeout(STATE_TIMEOUT)
            .unwrap_or_else(|e| panic!("{point:?}: child never got ready: {e}"));
        // libtest may have printed the test's name on the same line.
        if let Some((_, n)) = line.split_once("child acked ") {
            acked = Some(n.trim().parse::<u64>().unwrap());
        }
        if line.ends_with("child ready") {
            break;
        }
    }
    proc.kill().expect("SIGKILL the child");
    proc.wait().unwrap();
    let acked = acked.expect("the child said what it acked");
    run(async {
        let cfg = JournalConfig {
            max_commits_in_flight: IN_FLIGHT,
            ..small_config()
        };
        let j = Journal::open(&dir, cfg.clone())
            .await
            .unwrap_or_else(|e| panic!("{point:?}: {e}"));
        let n = j.recovery_report().last_seq;
        assert!(n >= acked, "{point:?}: acked {acked}, recovered {n}");
        assert_eq!(n, point.recovered(), "{point:?}");
        assert_eq!(
            j.recovery_report().unacked_overlapping_commits,
            point.unacked_overlapping(),
            "{point:?}"
        );
        assert_records(&read_all(&j, 0), 0, n);
        // Write the same records again (a client retrying what was never
        // acked): same sizes, so the new commit ends where a stale later
        // commit would start. Then crash (drop): only what was written now
        // may come back.
        append_group(&j, n, n + GROUP).await;
        drop(j);
        let j = Journal::open(&dir, cfg).await.unwrap();
        assert_eq!(j.recovery_report().last_seq, n + GROUP, "{point:?}");
        assert_records(&read_all(&j, 0), 0, n + GROUP);
    });
}

#[test]
fn sigkill_with_the_first_commit_issued_but_unwritten_keeps_the_acked_records() {
    kill_between(
        Point::FirstHeld,
        "sigkill_with_the_first_commit_issued_but_unwritten_keeps_the_acked_records",
    );
}

#[test]
fn sigkill_with_the_first_commit_unwritten_and_the_second_durable_drops_the_second() {
    kill_between(
        Point::FirstHeldSecondDurable,
        "sigkill_with_the_first_commit_unwritten_and_the_second_durable_drops_the_second",
    );
}

#[test]
fn sigkill_with_the_first_commit_durable_but_unreported_keeps_it() {
    kill_between(
        Point::FirstDurableUnreported,
        "sigkill_with_the_first_commit_durable_but_unreported_keeps_it",
    );
}

#[test]
fn sigkill_with_both_commits_durable_and_neither_acked_keeps_both() {
    kill_between(
        Point::BothDurableFirstUnreported,
        "sigkill_with_both_commits_durable_and_neither_acked_keeps_both",
    );
}

#[test]
fn sigkill_with_the_first_commit_acked_and_the_second_unwritten_keeps_the_first() {
    kill_between(
        Point::FirstAckedSecondHeld,
        "sigkill_with_the_first_commit_acked_and_the_second_unwritten_keeps_the_first",
    );
}

#[test]
fn sigkill_with_the_first_commit_acked_and_the_second_durable_keeps_both() {
    kill_between(
        Point::FirstAckedSecondDurableUnreported,
        "sigkill_with_the_first_commit_acked_and_the_second_durable_keeps_both",
    );
}

/// A journal whose last two commits overlapped: k = BASE..BASE+GROUP and
/// k+1 = the next GROUP records (k+1's marker records the overlap), both
/// durable; with `then_sequential`, one more commit after them (issued
/// once both were done, so it overlaps nothing). Returns the directory,
/// k's byte range and k+1's start.
fn overlapped_fixture(tmp: &Path, then_sequential: bool) -> (PathBuf, std::ops::Range<u64>, u64) {
    let dir = tmp.join("pristine");
    let plan = Arc::new(FaultPlan::new());
    run(async {
        let j = Journal::open(&dir, overlap_config(&plan)).await.unwrap();
        append_group(&j, 0, BASE).await;
        let done = plan.writes_done();
        plan.hold_nth_write(1, HoldPoint::AfterSync);
        let first = append_tickets(&j, BASE, BASE + GROUP);
        wait_for("k held", || plan.is_holding()).await;
        let second = append_tickets(&j, BASE + GROUP, BASE + 2 * GROUP);
        wait_for("k+1 written", || plan.writes_done() >= done + 2).await;
        plan.release();
        second.last().unwrap().durable().await.unwrap();
        drop(first);
        let records = read_all(&j, 0);
        let k_first = records[BASE as usize].checkpoint;
        let k1_first = records[(BASE + GROUP) as usize].checkpoint;
        if then_sequential {
            append_group(&j, BASE + 2 * GROUP, BASE + 3 * GROUP).await;
        }
        j.close().await.unwrap();
        // A record's checkpoint offset is its end; the commits start on the
        // block holding their first record.
        let block = 4096;
        let k = (k_first.end_offset / block * block)..(k1_first.end_offset / block * block);
        (dir, k.clone(), k.end)
    })
}

fn copy_of(from: &Path, tmp: &Path, name: &str) -> (PathBuf, PathBuf) {
    let to = tmp.join(name);
    copy_dir(from, &to);
    let seg = helios_journal::segment_path(&to, 1);
    (to, seg)
}

fn zero_range(path: &Path, range: std::ops::Range<u64>) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(&vec![0u8; (range.end - range.start) as usize], range.start)
        .unwrap();
}

#[test]
fn a_torn_commit_followed_by_its_overlapping_successor_truncates_at_the_torn_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (pristine, k, _) = overlapped_fixture(tmp.path(), false);
    // k missing (zeros), k torn in its first block, k torn in its last.
    let cases: [(&str, std::ops::Range<u64>); 3] = [
        ("zeros", k.clone()),
        ("first block", k.start..k.start + 4096),
        ("last block", k.end - 4096..k.end),
    ];
    for (what, damage) in cases {
        let (dir, seg) = copy_of(&pristine, tmp.path(), what);
        zero_range(&seg, damage);
        let rec = recover(&dir).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(rec.last_seq(), BASE, "{what}");
        assert_eq!(rec.torn_commits, 1, "{what}");
        assert_eq!(rec.torn_at, Some((seg.clone(), k.start)), "{what}");
        run(async {
            let j = Journal::open(&dir, small_config()).await.unwrap();
            assert_eq!(j.recovery_report().unacked_overlapping_commits, 1);
            assert_records(&read_all(&j, 0), 0, BASE);
            // The same records again, same layout: k+1 must not chain on.
            append_group(&j, BASE, BASE + GROUP).await;
            j.close().await.unwrap();
            let j = Journal::open(&dir, small_config()).await.unwrap();
            assert_eq!(j.recovery_report().last_seq, BASE + GROUP, "{what}");
            assert_eq!(j.recovery_report().unacked_overlapping_commits, 0);
            assert_records(&read_all(&j, 0), 0, BASE + GROUP);
        });
    }
}

#[test]
fn damage_behind_an_overlapping_commit_that_a_later_commit_follows_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (pristine, k, k1_start) = overlapped_fixture(tmp.path(), true);
    let (dir, seg) = copy_of(&pristine, tmp.path(), "damaged");
    zero_range(&seg, k.start..k.start + 4096);
    match recover(&dir) {
        Err(JournalError::Corrupt {
            path,
            offset,
            later_offset,
            ..
        }) => {
            assert_eq!(path, seg);
            assert_eq!(offset, k.start);
            assert!(later_offset > k1_start, "{later_offset}");
        }
        other => panic!("expected Corrupt, got {:?}", other.map(|r| r.last_seq())),
    }
}

#[test]
fn a_commit_into_the_next_segment_overlaps_the_last_one_of_the_previous() {
    // One block per single-record commit: 15 commits fill a test segment
    // (block 0 is its header).
    const FILLING: u64 = 14;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let crash_image = tmp.path().join("crash");
    let plan = Arc::new(FaultPlan::new());
    run(async {
        let j = Journal::open(&dir, overlap_config(&plan)).await.unwrap();
        append_each(&j, 0, FILLING).await;
        let done = plan.writes_done();
        plan.hold_nth_write(1, HoldPoint::BeforeWrite);
        let last_of_first = append_tickets(&j, FILLING, FILLING + 1);
        wait_for("the segment's last commit held", || plan.is_holding()).await;
        let first_of_next = append_tickets(&j, FILLING + 1, FILLING + 2);
        wait_for("the next segment's first commit written", || {
            plan.writes_done() > done
        })
        .await;
        assert_eq!(last_of_first[0].position().lap, 1);
        assert_eq!(first_of_next[0].position().lap, 2);
        assert_eq!(j.durable_seq(), FILLING);
        // What a SIGKILL now would leave: copied while nothing is written.
        copy_dir(&dir, &crash_image);
        plan.release();
        first_of_next[0].durable().await.unwrap();
        assert_records(&read_all(&j, 0), 0, FILLING + 2);
        j.close().await.unwrap();
        let j = Journal::open(&dir, small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, FILLING + 2);
        j.close().await.unwrap();

        let j = Journal::open(&crash_image, small_config()).await.unwrap();
        let report = j.recovery_report();
        assert_eq!(report.last_seq, FILLING);
        assert_eq!(report.unacked_overlapping_commits, 1);
        // Resumed in the first segment; the stale commit at the start of
        // the next one must never chain on.
        append_each(&j, FILLING, FILLING + 2).await;
        drop(j);
        let j = Journal::open(&crash_image, small_config()).await.unwrap();
        assert_eq!(j.recovery_report().last_seq, FILLING + 2);
        assert_records(&read_all(&j, 0), 0, FILLING + 2);
    });
}
