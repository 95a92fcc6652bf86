//! Recovery in bounded memory and I/O: opening streams through the written
//! part of the log and reads one block of each segment the writer never
//! reached, however many are prepared, and still refuses damaged acked
//! data.

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use helios_journal::format::BLOCK_BYTES;
use helios_journal::{recover, segment_path, Journal, JournalConfig, JournalError, Recovered};

const BLOCK: u64 = BLOCK_BYTES as u64;

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn prepared_config(prepared_segments: usize) -> JournalConfig {
    JournalConfig {
        prepared_segments,
        ..small_config()
    }
}

/// Segments holding records of their lap.
fn written_segments(r: &Recovered) -> u64 {
    r.segments.iter().filter(|s| s.seqs.is_some()).count() as u64
}

/// What the scan may read: every written segment, the next one in full
/// (where a torn final commit could sit), one block of every other.
fn read_bound(r: &Recovered) -> u64 {
    let size = r.segments[0].size;
    (written_segments(r) + 1) * size + r.segments.len() as u64 * BLOCK
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

/// A journal of 40 prepared segments with 20 one-block commits written into
/// its first two, closed.
fn journal_with_prepared_segments(dir: &Path) -> u64 {
    const PREPARED: usize = 40;
    let cfg = prepared_config(PREPARED);
    let all = 1 + cfg.spare_segments + PREPARED;
    run(async {
        let j = Journal::open(dir, cfg).await.unwrap();
        wait_until("segments prepared", || segment_files(dir).len() == all);
        append_each(&j, 0, 20).await;
        j.close().await.unwrap();
    });
    all as u64
}

#[test]
fn many_prepared_segments_are_read_one_block_each_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let segments = journal_with_prepared_segments(&dir);
    let r = recover(&dir).unwrap();
    assert_eq!(r.segments.len() as u64, segments);
    assert_eq!(r.last_seq(), 20);
    assert_eq!(written_segments(&r), 2);
    let total = segments * TEST_SEGMENT_BYTES;
    assert!(
        r.read_bytes <= read_bound(&r),
        "read {} bytes, bound {}",
        r.read_bytes,
        read_bound(&r)
    );
    assert!(
        r.read_bytes * 4 < total,
        "read {} of {total} bytes",
        r.read_bytes
    );
    run(async {
        let j = Journal::open(&dir, prepared_config(40)).await.unwrap();
        assert_records(&read_all(&j, 0), 0, 20);
        append_each(&j, 20, 25).await;
        assert_records(&read_all(&j, 0), 0, 25);
        j.close().await.unwrap();
    });
}

#[test]
fn segments_recycled_in_place_ahead_of_the_writer_are_read_one_block_each() {
    const PREPARED: usize = 8;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let cfg = prepared_config(PREPARED);
    let cp_seq = run(async {
        let j = Journal::open(&dir, cfg.clone()).await.unwrap();
        // 15 one-block commits to a 64 KiB segment: 100 fill 7 segments.
        append_each(&j, 0, 100).await;
        let cp = read_all(&j, 0)[89].checkpoint;
        j.checkpointer().advance(cp).unwrap();
        wait_until("segment 1 recycled", || !segment_path(&dir, 1).exists());
        j.close().await.unwrap();
        cp.seq
    });
    let r = recover(&dir).unwrap();
    let active_lap = r.segments[r.active].lap;
    // Some segment ahead of the writer holds records of an older lap.
    let old_content_ahead = r
        .segments
        .iter()
        .filter(|s| s.lap > active_lap)
        .filter(|s| {
            let mut first = [0u8; 4];
            let file = fs::File::open(&s.path).unwrap();
            file.read_exact_at(&mut first, BLOCK).unwrap();
            first != [0u8; 4]
        })
        .count();
    assert!(old_content_ahead > 0, "no recycled segment ahead");
    assert_eq!(r.last_seq(), 100);
    assert!(
        r.read_bytes <= read_bound(&r),
        "read {} bytes, bound {}",
        r.read_bytes,
        read_bound(&r)
    );
    run(async {
        let j = Journal::open(&dir, cfg).await.unwrap();
        assert_records(&read_all(&j, cp_seq), cp_seq, 100);
    });
}

#[test]
fn damage_before_the_last_commit_is_refused_with_many_prepared_segments_ahead() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    journal_with_prepared_segments(&dir);
    let first = segment_path(&dir, 1);
    // The second commit of segment 1 (one block each).
    flip_byte(&first, 2 * BLOCK + 100);
    match recover(&dir) {
        Err(JournalError::Corrupt {
            path,
            offset,
            later_path,
            later_offset,
            ..
        }) => {
            assert_eq!((path, offset), (first.clone(), 2 * BLOCK));
            assert_eq!((later_path, later_offset), (first, 3 * BLOCK));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn damage_to_a_segments_last_commit_is_refused_by_the_next_segments_first() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    journal_with_prepared_segments(&dir);
    let first = segment_path(&dir, 1);
    let last_block = TEST_SEGMENT_BYTES - BLOCK;
    flip_byte(&first, last_block + 100);
    match recover(&dir) {
        Err(JournalError::Corrupt {
            path,
            offset,
            later_path,
            later_offset,
            ..
        }) => {
            assert_eq!((path, offset), (first, last_block));
            assert_eq!((later_path, later_offset), (segment_path(&dir, 2), BLOCK));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn damage_to_the_first_commit_of_a_segment_is_refused_when_commits_follow_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    journal_with_prepared_segments(&dir);
    // Segment 2 holds records 16..20, one commit each.
    let second = segment_path(&dir, 2);
    flip_byte(&second, BLOCK + 100);
    match recover(&dir) {
        Err(JournalError::Corrupt {
            later_path,
            later_offset,
            ..
        }) => {
            assert_eq!((later_path, later_offset), (second, 2 * BLOCK));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn recovery_holds_a_bounded_window_not_whole_segments() {
    const SEGMENT_BYTES: u64 = 4 << 20;
    const PAYLOAD_BYTES: usize = 64 << 10;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let cfg = JournalConfig {
        segment_size_bytes: SEGMENT_BYTES,
        group_target_bytes: 256 << 10,
        ..small_config()
    };
    let payload = vec![b'x'; PAYLOAD_BYTES];
    run(async {
        let j = Journal::open(&dir, cfg).await.unwrap();
        // 96 records of 64 KiB, four to a commit: about 1.5 segments.
        for group in 0..24u64 {
            let mut last = None;
            for i in group * 4..group * 4 + 4 {
                last = Some(j.append(&meta(i), &payload).unwrap());
            }
            last.unwrap().durable().await.unwrap();
        }
        j.close().await.unwrap();
    });
    let r = recover(&dir).unwrap();
    assert_eq!(r.last_seq(), 96);
    assert!(
        r.read_bytes >= 96 * PAYLOAD_BYTES as u64,
        "{}",
        r.read_bytes
    );
    assert!(
        (r.peak_window_bytes as u64) < SEGMENT_BYTES / 2,
        "held {} bytes at once",
        r.peak_window_bytes
    );
}
