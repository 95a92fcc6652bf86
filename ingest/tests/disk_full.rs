//! Disk full: the data directory lives on a small tmpfs the test mounts
//! itself. Once it is full, requests that need a new journal segment get
//! 503 (never 500, never a crash); when space is freed, acks resume and
//! every acked event is stored exactly once.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::*;

/// Fills the filesystem at `dir` with one file until ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xAAu8; 64 << 10];
    let mut small = false;
    loop {
        let buf: &[u8] = if small { &chunk[..4096] } else { &chunk };
        match f.write_all(buf) {
            Ok(()) => {}
            Err(_) if !small => small = true,
            Err(_) => break,
        }
    }
    path
}

fn batch(from: u64) -> (Vec<String>, String) {
    let ids: Vec<String> = (from..from + 50).map(client_id).collect();
    let events: Vec<String> = ids
        .iter()
        .map(|id| {
            format!(
                r#"{{"_id":"{id}","type":"full","pad":"{}"}}"#,
                "p".repeat(200)
            )
        })
        .collect();
    (ids, format!("[{}]", events.join(",")))
}

#[test]
fn a_full_disk_gets_503_and_acks_resume_exactly_once_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    let Some(_mounted) = mount_tmpfs(&mnt, "40m", "disk_full") else {
        return;
    };
    let data = mnt.join("data");
    // A tmpfs holds the journal: acks from memory are accepted on purpose
    // (this test is about a full disk, not power loss).
    let c = Collector::start(&data, &["--cores", "1", ALLOW_VOLATILE_JOURNAL]); // 4 MiB segments (support default)
    let mut conn = Conn::open(c.addr);
    let (first, body) = batch(0);
    assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 200);
    wait_for_count(&c.db_path(), 50);
    let filler = fill(&mnt);

    let mut acked = first;
    let mut refused = Vec::new();
    let mut next = 50;
    for _ in 0..5000 {
        let (ids, body) = batch(next);
        next += 50;
        let r = conn.post(&[], body.as_bytes()).unwrap();
        match r.status {
            200 => acked.extend(ids),
            503 => {
                assert_eq!(r.header("Retry-After"), Some("1"));
                assert!(
                    r.json()["detail"].as_str().unwrap().contains("disk space"),
                    "{}",
                    r.json()
                );
                refused.extend(ids);
                break;
            }
            other => panic!(
                "a full disk must give 503, got {other}: {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
    assert!(!refused.is_empty(), "the disk never filled up");
    // Still full: still 503, and the process is alive.
    let (ids, body) = batch(next);
    next += 50;
    assert_eq!(conn.post(&[], body.as_bytes()).unwrap().status, 503);
    refused.extend(ids);

    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ids, body) = batch(next);
        next += 50;
        let r = conn.post(&[], body.as_bytes()).unwrap();
        if r.status == 200 {
            acked.extend(ids);
            break;
        }
        assert_eq!(r.status, 503);
        refused.extend(ids);
        assert!(
            Instant::now() < deadline,
            "acks never resumed after space was freed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_exactly_acked(&c.db_path(), &acked, &refused);
    assert_eq!(c.stop().code(), Some(0));
}
