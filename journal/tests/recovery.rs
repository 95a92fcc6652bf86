//! Recovery: only the final commit may be torn; damage before a valid
//! commit refuses to open; repair quarantines it.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use helios_journal::format::MARKER_BYTES;
use helios_journal::repair::{quarantine_tail, RepairOutcome};
use helios_journal::{recover, Journal, JournalError};

/// A journal with commits of records 0..10 and 10..20 (each one group),
/// then a final commit of 20..23. Returns the pristine directory, the
/// segment file and the final commit's meaningful byte range.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    segment: PathBuf,
    final_commit: std::ops::Range<u64>,
    second_commit: std::ops::Range<u64>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (second_commit, final_commit) = run(async {
        let j = Journal::open(&dir, small_config()).await.unwrap();
        append_group(&j, 0, 10).await;
        let first_end = recover_used_end(&j);
        append_group(&j, 10, 20).await;
        let second_end = recover_used_end(&j);
        append_group(&j, 20, 23).await;
        let all = read_all(&j, 0);
        let second_marker_end = all[19].checkpoint.end_offset + MARKER_BYTES as u64;
        let final_marker_end = all[22].checkpoint.end_offset + MARKER_BYTES as u64;
        j.close().await.unwrap();
        (first_end..second_marker_end, second_end..final_marker_end)
    });
    let segment = helios_journal::segment_path(&dir, 1);
    Fixture {
        _tmp: tmp,
        dir,
        segment,
        final_commit,
        second_commit,
    }
}

fn recover_used_end(j: &Journal) -> u64 {
    let r = recover(j.dir()).unwrap();
    r.segments[r.active].used_end
}

fn fresh_copy(f: &Fixture, scratch: &Path) -> (PathBuf, PathBuf) {
    let _ = fs::remove_dir_all(scratch);
    copy_dir(&f.dir, scratch);
    (
        scratch.to_path_buf(),
        scratch.join(f.segment.file_name().unwrap()),
    )
}

fn flip_byte(path: &Path, offset: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 0x5A;
    file.write_all_at(&b, offset).unwrap();
}

#[test]
fn truncating_at_every_offset_of_the_final_commit_keeps_exactly_the_earlier_commits() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    run(async {
        let pristine = fs::read(&f.segment).unwrap();
        let end = f.final_commit.end as usize;
        for cut in f.final_commit.clone() {
            // Cutting off bytes that are zero anyway (the high bytes of the
            // marker's record count) leaves the commit byte-identical.
            if pristine[cut as usize..end].iter().all(|&b| b == 0) {
                continue;
            }
            let (dir, seg) = fresh_copy(&f, &scratch);
            OpenOptions::new()
                .write(true)
                .open(&seg)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let j = Journal::open(&dir, small_config())
                .await
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_records(&read_all(&j, 0), 0, 20);
            // The journal goes on from the truncation point.
            append_group(&j, 20, 22).await;
            assert_records(&read_all(&j, 0), 0, 22);
            j.close().await.unwrap();
        }
    });
}

#[test]
fn corrupting_any_byte_of_the_final_commit_keeps_exactly_the_earlier_commits() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    run(async {
        for at in f.final_commit.clone() {
            let (dir, seg) = fresh_copy(&f, &scratch);
            flip_byte(&seg, at);
            let j = Journal::open(&dir, small_config())
                .await
                .unwrap_or_else(|e| panic!("flip at {at}: {e}"));
            assert_records(&read_all(&j, 0), 0, 20);
            assert_eq!(j.recovery_report().last_seq, 20, "flip at {at}");
            j.close().await.unwrap();
        }
    });
}

#[test]
fn a_torn_final_commit_is_counted() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    let (dir, seg) = fresh_copy(&f, &scratch);
    flip_byte(&seg, f.final_commit.end - 1);
    run(async {
        let j = Journal::open(&dir, small_config()).await.unwrap();
        let report = j.recovery_report();
        assert_eq!(report.torn_commits, 1);
        assert_eq!(report.torn_at, Some((seg.clone(), f.final_commit.start)));
    });
}

#[test]
fn damage_in_the_padding_after_the_final_marker_loses_nothing() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    let (dir, seg) = fresh_copy(&f, &scratch);
    flip_byte(&seg, f.final_commit.end + 5);
    run(async {
        let j = Journal::open(&dir, small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, 23);
    });
}

#[test]
fn corrupting_any_byte_of_an_earlier_commit_refuses_to_open_and_changes_nothing() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    run(async {
        for at in f.second_commit.clone() {
            let (dir, seg) = fresh_copy(&f, &scratch);
            flip_byte(&seg, at);
            let before = fs::read(&seg).unwrap();
            match Journal::open(&dir, small_config()).await {
                Err(JournalError::Corrupt {
                    path,
                    offset,
                    later_offset,
                    ..
                }) => {
                    assert_eq!(path, seg, "flip at {at}");
                    assert_eq!(offset, f.second_commit.start, "flip at {at}");
                    assert_eq!(later_offset, f.final_commit.start, "flip at {at}");
                }
                Err(other) => panic!("flip at {at}: wrong error {other}"),
                Ok(_) => panic!("flip at {at}: opened a journal with damaged acked data"),
            }
            assert_eq!(
                fs::read(&seg).unwrap(),
                before,
                "flip at {at}: file was modified"
            );
        }
    });
}

#[test]
fn the_corruption_error_names_file_and_offset() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    let (dir, seg) = fresh_copy(&f, &scratch);
    flip_byte(&seg, f.second_commit.start + 70);
    let err = recover(&dir).expect_err("corruption detected");
    let text = err.to_string();
    assert!(text.contains(&seg.display().to_string()), "{text}");
    assert!(
        text.contains(&format!("offset {}", f.second_commit.start)),
        "{text}"
    );
    assert!(text.contains("repair"), "{text}");
}

#[test]
fn repair_quarantines_the_damaged_tail_and_the_journal_opens() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    let (dir, seg) = fresh_copy(&f, &scratch);
    flip_byte(&seg, f.second_commit.start + 100);
    let outcome = quarantine_tail(&dir).unwrap();
    let RepairOutcome::Quarantined {
        path,
        offset,
        moved,
    } = outcome
    else {
        panic!("expected a quarantine, got {outcome:?}");
    };
    assert_eq!((path, offset), (seg.clone(), f.second_commit.start));
    assert!(moved.iter().all(|m| m.exists()));
    run(async {
        let j = Journal::open(&dir, small_config()).await.unwrap();
        assert_records(&read_all(&j, 0), 0, 10);
        append_group(&j, 10, 12).await;
        assert_records(&read_all(&j, 0), 0, 12);
    });
    assert_eq!(quarantine_tail(&dir).unwrap(), RepairOutcome::Healthy);
}

#[test]
fn a_damaged_segment_header_is_a_clear_error() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    let (dir, seg) = fresh_copy(&f, &scratch);
    flip_byte(&seg, 3);
    let err = recover(&dir).expect_err("bad header detected");
    assert!(matches!(err, JournalError::BadSegment { .. }), "{err}");
    assert!(err.to_string().contains(&seg.display().to_string()));
}

#[test]
fn random_garbage_in_a_segment_never_panics_recovery() {
    let f = fixture();
    let scratch = f._tmp.path().join("scratch");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..200 {
        let (dir, seg) = fresh_copy(&f, &scratch);
        let len = fs::metadata(&seg).unwrap().len();
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            flip_byte(&seg, 4096 + x % (len - 4096));
        }
        // Any outcome but a panic is acceptable; an Ok must be a prefix.
        if let Ok(r) = recover(&dir) {
            assert!(r.last_seq() <= 23);
        }
    }
}
