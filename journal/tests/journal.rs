//! Behaviour of the journal through its public API: round trips, group
//! commit, rollover, recycling, limits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use helios_journal::{FaultPlan, Journal, JournalConfig, JournalError, RecordIds, RecordMeta};

#[test]
fn appended_records_read_back_intact_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_each(&j, 0, 50).await;
        assert_records(&read_all(&j, 0), 0, 50);
        j.close().await.unwrap();
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_eq!(j.recovery_report().last_seq, 50);
        assert_eq!(j.recovery_report().torn_commits, 0);
        assert_records(&read_all(&j, 0), 0, 50);
        append_each(&j, 50, 60).await;
        assert_records(&read_all(&j, 0), 0, 60);
    });
}

#[test]
fn reader_starts_after_the_given_sequence() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_group(&j, 0, 30).await;
        assert_records(&read_all(&j, 17), 17, 30);
    });
}

#[test]
fn reader_batches_resume_where_they_stopped() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_group(&j, 0, 25).await;
        let mut r = j.reader(0);
        let mut all = Vec::new();
        loop {
            let b = r.read_batch(7).unwrap();
            if b.is_empty() {
                break;
            }
            assert!(b.len() <= 7);
            all.extend(b);
        }
        assert_records(&all, 0, 25);
    });
}

#[test]
fn appends_made_during_a_commit_share_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::sync::Arc::new(FaultPlan::new());
    let cfg = JournalConfig {
        fault_plan: Some(plan.clone()),
        ..small_config()
    };
    run(async {
        let j = std::rc::Rc::new(Journal::open(dir.path(), cfg).await.unwrap());
        let mut tasks = Vec::new();
        for t in 0..20u64 {
            let j = j.clone();
            tasks.push(monoio::spawn(async move {
                for k in 0..10u64 {
                    let i = t * 10 + k;
                    j.append_durable(&meta(i), &payload(i)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await;
        }
        assert_eq!(j.durable_seq(), 200);
    });
    let writes = plan.writes_seen();
    assert!(
        writes < 200,
        "200 appends from 20 tasks took {writes} commits: no grouping"
    );
}

#[test]
fn records_roll_over_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_each(&j, 0, 600).await;
        assert_records(&read_all(&j, 0), 0, 600);
        j.close().await.unwrap();
        assert!(
            segment_files(dir.path()).len() >= 3,
            "expected several segments"
        );
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, 600);
    });
}

#[test]
fn segments_are_recycled_only_after_a_durable_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_each(&j, 0, 600).await;
        let first = helios_journal::segment_path(dir.path(), 1);
        std::thread::sleep(Duration::from_millis(100));
        assert!(first.exists(), "segment 1 went away without a checkpoint");
        let records = read_all(&j, 0);
        let cp = records[299].checkpoint;
        j.checkpointer().advance(cp).unwrap();
        assert_eq!(
            helios_journal::checkpoint::read_checkpoint(dir.path()).unwrap(),
            Some(cp)
        );
        wait_until(|| !first.exists());
        assert!(j.unflushed_bytes() > 0);
        assert_records(&read_all(&j, cp.seq), 300, 600);
    });
}

#[test]
fn a_recycled_segments_old_records_never_come_back() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let cfg = small_config();
        let j = Journal::open(dir.path(), cfg.clone()).await.unwrap();
        append_each(&j, 0, 400).await;
        let cp = read_all(&j, 0)[389].checkpoint;
        j.checkpointer().advance(cp).unwrap();
        wait_until(|| !helios_journal::segment_path(dir.path(), 1).exists());
        // Fill until the writer runs into the recycled file, then "crash"
        // (drop without close: every awaited append is durable).
        append_each(&j, 400, 1000).await;
        drop(j);
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        assert_eq!(j.recovery_report().last_seq, 1000);
        assert_records(&read_all(&j, cp.seq), 390, 1000);
    });
}

#[test]
fn unflushed_bytes_shrink_when_the_checkpoint_advances() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_each(&j, 0, 100).await;
        let before = j.unflushed_bytes();
        assert!(before > 100 * 64, "{before}");
        let records = read_all(&j, 0);
        j.checkpointer().advance(records[99].checkpoint).unwrap();
        assert_eq!(j.unflushed_bytes(), 0);
    });
}

#[test]
fn appends_past_the_pending_limit_get_backpressure() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = JournalConfig {
        max_pending_bytes: 1024,
        ..small_config()
    };
    run(async {
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        let big = vec![b'x'; 600];
        let m = RecordMeta::default();
        let _t = j.append(&m, &big).unwrap();
        match j.append(&m, &big) {
            Err(e @ JournalError::Backpressure { .. }) => assert!(e.is_transient()),
            other => panic!("expected backpressure, got {:?}", other.map(|t| t.seq())),
        }
    });
}

#[test]
fn a_record_larger_than_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = JournalConfig {
        max_record_bytes: 1000,
        ..small_config()
    };
    run(async {
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        let err = j.append(&RecordMeta::default(), &[b'x'; 1000]).err();
        assert!(
            matches!(err, Some(JournalError::RecordTooLarge { .. })),
            "{err:?}"
        );
        j.append_durable(&RecordMeta::default(), &[b'x'; 100])
            .await
            .unwrap();
    });
}

#[test]
fn a_record_as_large_as_a_segment_allows_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let cfg = small_config();
        let max = cfg.effective_max_record_bytes();
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        append_each(&j, 0, 3).await;
        let big = vec![b'y'; max - 64];
        j.append_durable(&RecordMeta::default(), &big)
            .await
            .unwrap();
        let all = read_all(&j, 0);
        assert_eq!(all.len(), 4);
        assert_eq!(all[3].payload, big);
    });
}

#[test]
fn invalid_configuration_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let cfg = JournalConfig {
            segment_size_bytes: 10_000,
            ..JournalConfig::default()
        };
        let err = Journal::open(dir.path(), cfg).await.err();
        assert!(matches!(err, Some(JournalError::Config(_))), "{err:?}");
    });
}

fn wait_until(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_reader_keeps_going_when_segments_behind_it_are_recycled() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        let checkpointer = j.checkpointer();
        let mut reader = j.reader(0);
        let mut seen = Vec::new();
        for round in 0..6u64 {
            append_each(&j, round * 200, (round + 1) * 200).await;
            let batch = reader.read_batch(10_000).unwrap();
            checkpointer
                .advance(batch.last().unwrap().checkpoint)
                .unwrap();
            seen.extend(batch);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_records(&seen, 0, 1200);
    });
}

#[test]
fn a_tickets_position_matches_the_record_read_back() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        let mut positions = Vec::new();
        for i in 0..300 {
            let t = j.append(&meta(i), &payload(i)).unwrap();
            positions.push(t.position());
            if i % 7 == 0 {
                t.durable().await.unwrap();
            }
        }
        j.append_durable(&meta(300), &payload(300)).await.unwrap();
        let read: Vec<_> = read_all(&j, 0)
            .into_iter()
            .map(|r| r.checkpoint)
            .take(300)
            .collect();
        assert_eq!(read, positions);
    });
}

#[test]
fn the_fdatasync_mode_round_trips_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = JournalConfig {
        sync_mode: helios_journal::SyncMode::Fdatasync,
        ..small_config()
    };
    run(async {
        let j = Journal::open(dir.path(), cfg.clone()).await.unwrap();
        append_each(&j, 0, 400).await;
        j.close().await.unwrap();
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        assert_records(&read_all(&j, 0), 0, 400);
    });
}

#[test]
fn reopening_reports_the_id_fields_of_the_last_durable_record() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_eq!(j.recovery_report().last_record_ids, None, "new journal");
        append_each(&j, 0, 40).await;
        j.close().await.unwrap();
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        let last = meta(39);
        assert_eq!(
            j.recovery_report().last_record_ids,
            Some(RecordIds {
                id_base: last.id_base,
                event_count: last.event_count
            })
        );
    });
}

#[test]
fn the_checkpoint_keeps_the_last_records_ids_after_its_segment_is_recycled() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_each(&j, 0, 600).await;
        let records = read_all(&j, 0);
        let last = records.last().expect("records").checkpoint;
        j.checkpointer().advance(last).unwrap();
        let first = helios_journal::segment_path(dir.path(), 1);
        wait_until(|| !first.exists());
        j.close().await.unwrap();
        // Every record is checkpointed: recovery finds none after it, and
        // only the checkpoint can say which ids were minted.
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        let report = j.recovery_report();
        assert_eq!(report.checkpoint_seq, 600);
        let expected = meta(599);
        assert_eq!(
            report.last_record_ids,
            Some(RecordIds {
                id_base: expected.id_base,
                event_count: expected.event_count
            })
        );
    });
}

#[test]
fn commits_take_the_path_of_the_runtimes_driver() {
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        append_group(&j, 0, 20).await;
        match driver() {
            // No journal of this target has a writer thread.
            helios_journal::IoDriver::IoUring => assert_eq!(writer_threads(), 0),
            // Ours (at least) commits on one; io_uring is refused anyway.
            helios_journal::IoDriver::Epoll => assert!(writer_threads() >= 1),
        }
        j.close().await.unwrap();
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, 20);
    });
}

#[test]
fn a_filesystem_refusing_o_direct_refuses_to_open_naming_it_unless_buffered_io() {
    let dir = tempfile::tempdir().unwrap();
    // What some FUSE and network filesystems answer to an O_DIRECT open.
    seccomp::o_direct_open_refused(libc::EINVAL)
        .apply_to_this_thread()
        .unwrap();
    run(async {
        let err = Journal::open(dir.path(), small_config()).await.err();
        match &err {
            Some(JournalError::DirectIoRefused {
                dir: d,
                filesystem,
                stage,
                ..
            }) => {
                assert_eq!(d, dir.path());
                assert!(!filesystem.is_empty());
                assert_eq!(*stage, "open");
            }
            other => panic!("expected DirectIoRefused, got {other:?}"),
        }
        let message = err.unwrap().to_string();
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        // Nothing was created that a later open would misread.
        assert!(segment_files(dir.path()).is_empty());

        // Buffered writes + fdatasync: same ack rule, no O_DIRECT anywhere
        // (the filter would refuse it).
        let cfg = JournalConfig {
            buffered_io: true,
            ..small_config()
        };
        let j = Journal::open(dir.path(), cfg.clone()).await.unwrap();
        assert!(j.disk().buffered);
        append_each(&j, 0, 30).await;
        append_group(&j, 30, 300).await;
        j.close().await.unwrap();
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        assert_eq!(j.recovery_report().last_seq, 300);
        assert_records(&read_all(&j, 0), 0, 300);
    });
}

#[test]
fn a_failed_fdatasync_fails_its_group_with_buffered_io_too() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::sync::Arc::new(FaultPlan::new());
    let cfg = JournalConfig {
        buffered_io: true,
        fault_plan: Some(plan.clone()),
        ..small_config()
    };
    run(async {
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        append_each(&j, 0, 5).await;
        plan.fail_nth_sync(1);
        let err = j.append_durable(&meta(5), &payload(5)).await.unwrap_err();
        assert!(matches!(err, JournalError::Failed { .. }), "{err}");
        assert!(j.is_failed());
        j.close().await.ok();
        let j = Journal::open(dir.path(), small_config()).await.unwrap();
        // Acked records are there; the failed one may or may not be.
        assert!(j.recovery_report().last_seq >= 5);
        assert_records(&read_all(&j, 0)[..5], 0, 5);
    });
}

/// Inode numbers of the segment files (and no temporary ones).
fn segment_inodes(dir: &std::path::Path) -> std::collections::BTreeSet<u64> {
    use std::os::unix::fs::MetadataExt;
    segment_files(dir)
        .iter()
        .map(|name| std::fs::metadata(dir.join(name)).unwrap().ino())
        .collect()
}

#[test]
fn prepared_segments_are_filled_while_idle_then_written_and_reused_in_place() {
    const PREPARED: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    run(async {
        let cfg = JournalConfig {
            prepared_segments: PREPARED,
            ..small_config()
        };
        let spares = cfg.spare_segments;
        let j = Journal::open(dir.path(), cfg.clone()).await.unwrap();
        // Idle journal: the active segment, the spares and the prepared ones.
        let all = 1 + spares + PREPARED;
        wait_until(|| segment_files(dir.path()).len() == all);
        let prepared = segment_inodes(dir.path());
        // One commit per sequential append, a block each: 15 to a segment.
        // Fill three segments with no checkpoint (a held store), then stay
        // idle: none of it may be zero-filled again, and a journal holding
        // its segments prepares no more than its pool while idle.
        append_each(&j, 0, 40).await;
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            segment_inodes(dir.path()),
            prepared,
            "a segment was created"
        );
        // The checkpoint passes them: they are relapped in place (the same
        // files, none deleted, none zero-filled).
        let cp = read_all(&j, 0)[34].checkpoint;
        j.checkpointer().advance(cp).unwrap();
        wait_until(|| !helios_journal::segment_path(dir.path(), 1).exists());
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(segment_inodes(dir.path()), prepared, "not reused in place");
        // Write on into the recycled files, then "crash" (drop without
        // close): the old records they hold never come back.
        append_each(&j, 40, 80).await;
        assert_eq!(
            segment_inodes(dir.path()),
            prepared,
            "a segment was created"
        );
        drop(j);
        let j = Journal::open(dir.path(), cfg).await.unwrap();
        assert_eq!(j.recovery_report().last_seq, 80);
        assert_records(&read_all(&j, cp.seq), 35, 80);
    });
}
