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
