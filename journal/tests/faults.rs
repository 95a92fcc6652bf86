//! Fault injection: a failed write or fdatasync fails its group, puts the
//! journal in a failed state, and loses nothing acknowledged.

mod common;

use std::sync::Arc;

use common::*;
use helios_journal::{FaultPlan, Journal, JournalConfig, JournalError};

fn config_with(plan: &Arc<FaultPlan>) -> JournalConfig {
    JournalConfig {
        fault_plan: Some(plan.clone()),
        ..small_config()
    }
}

fn check_failed_group(fail: impl Fn(&FaultPlan), failed_group_may_survive: bool) {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    run(async {
        let j = Journal::open(dir.path(), config_with(&plan)).await.unwrap();
        append_group(&j, 0, 10).await;
        append_group(&j, 10, 20).await;
        fail(&plan);
        let tickets: Vec<_> = (20..25)
            .map(|i| j.append(&meta(i), &payload(i)).unwrap())
            .collect();
        for t in &tickets {
            let err = t
                .durable()
                .await
                .expect_err("the failed group must not be acked");
            assert!(matches!(err, JournalError::Failed { .. }), "{err}");
        }
        assert!(j.is_failed());
        let err = j.append(&meta(25), &payload(25)).err();
        assert!(matches!(err, Some(JournalError::Failed { .. })), "{err:?}");
        drop(j);
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        let records = read_all(&j, 0);
        let n = records.len() as u64;
        assert!(
            n == 20 || (failed_group_may_survive && n == 25),
            "{n} records"
        );
        assert_records(&records, 0, n);
        append_group(&j, n, n + 5).await;
        assert_records(&read_all(&j, 0), 0, n + 5);
    });
}

#[test]
fn a_failed_write_fails_its_group_and_loses_nothing_acked() {
    check_failed_group(|p| p.fail_nth_write(1), false);
}

#[test]
fn a_failed_fdatasync_fails_its_group_and_loses_nothing_acked() {
    // The write reached the page cache, so the records may or may not be on
    // disk after reopen; either way they were never acknowledged.
    check_failed_group(|p| p.fail_nth_sync(1), true);
}

#[test]
fn groups_queued_behind_a_failed_commit_fail_too() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    let cfg = JournalConfig {
        group_target_bytes: 4096,
        ..config_with(&plan)
    };
    run(async {
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        append_group(&j, 0, 5).await;
        plan.fail_nth_write(1);
        // Enough bytes for several sealed groups behind the failing one.
        let tickets: Vec<_> = (5..200)
            .map(|i| j.append(&meta(i), &payload(i)).unwrap())
            .collect();
        for t in &tickets {
            assert!(
                t.durable().await.is_err(),
                "seq {} acked after a failed commit",
                t.seq()
            );
        }
        drop(j);
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, 5);
    });
}

#[test]
fn with_separate_fdatasync_a_failed_sync_fails_its_group_too() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    let cfg = JournalConfig {
        sync_mode: helios_journal::SyncMode::Fdatasync,
        ..config_with(&plan)
    };
    run(async {
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        append_group(&j, 0, 10).await;
        plan.fail_nth_sync(1);
        let t = j.append(&meta(10), &payload(10)).unwrap();
        assert!(matches!(
            t.durable().await,
            Err(JournalError::Failed { .. })
        ));
        drop(j);
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        let n = read_all(&j, 0).len() as u64;
        assert!(n == 10 || n == 11, "{n}");
        assert_records(&read_all(&j, 0), 0, n);
    });
}

#[test]
fn no_space_for_a_new_segment_is_reported_to_those_appends_and_clears_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let plan = Arc::new(FaultPlan::new());
    let cfg = JournalConfig {
        spare_segments: 1,
        ..config_with(&plan)
    };
    run(async {
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        plan.set_segments_out_of_space(true);
        // Let the preallocator notice, then write past the spare segment.
        let mut acked = 0u64;
        let mut saw_no_space = false;
        for i in 0..5000u64 {
            match j.append_durable(&meta(acked), &payload(acked)).await {
                Ok(_) => acked += 1,
                Err(e @ JournalError::NoSpace { .. }) => {
                    assert!(e.is_transient());
                    saw_no_space = true;
                    break;
                }
                Err(e) => panic!("append {i}: {e}"),
            }
        }
        assert!(saw_no_space, "never ran out of segments");
        assert!(!j.is_failed(), "no space is not a journal failure");
        plan.set_segments_out_of_space(false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match j.append_durable(&meta(acked), &payload(acked)).await {
                Ok(_) => break,
                Err(JournalError::NoSpace { .. }) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "space never came back"
                    );
                    monoio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        acked += 1;
        assert_records(&read_all(&j, 0), 0, acked);
        j.close().await.unwrap();
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, acked);
    });
}
