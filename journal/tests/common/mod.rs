//! Helpers shared by the journal's integration tests.
#![allow(dead_code)]

use std::path::Path;

use helios_journal::{IoDriver, Journal, JournalConfig, Record, RecordMeta};

#[path = "../../../tests/src/seccomp.rs"]
pub mod seccomp;

/// Small segments so tests roll over and recycle quickly.
pub const TEST_SEGMENT_BYTES: u64 = 64 * 1024;
/// Queue entries of the test runtimes.
const TEST_RUNTIME_ENTRIES: u32 = 256;

/// The driver this test target runs its journals on. A target whose name
/// ends in `_on_epoll` (`journal_on_epoll.rs` includes `journal.rs`, …)
/// runs the same tests on the legacy (epoll) driver with commits on the
/// blocking writer thread; the others on io_uring, as the collector does
/// where the kernel allows it.
pub fn driver() -> IoDriver {
    if env!("CARGO_CRATE_NAME").ends_with("_on_epoll") {
        IoDriver::Epoll
    } else {
        IoDriver::IoUring
    }
}

pub fn small_config() -> JournalConfig {
    JournalConfig {
        segment_size_bytes: TEST_SEGMENT_BYTES,
        group_target_bytes: 16 * 1024,
        commit_path: driver().commit_path(),
        ..JournalConfig::default()
    }
}

/// Runs `f` on a fresh monoio runtime of this target's [`driver`]. On
/// epoll the test's thread (and every thread the journal starts from it)
/// first gets io_uring refused by a seccomp filter, as in a default Docker
/// container: the epoll path must never touch io_uring.
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    if driver() == IoDriver::Epoll {
        seccomp::io_uring_refused(libc::EPERM)
            .apply_to_this_thread()
            .expect("install the io_uring-refusing seccomp filter");
    }
    helios_journal::runtime::block_on(driver(), TEST_RUNTIME_ENTRIES, f)
        .unwrap_or_else(|e| panic!("{} runtime: {e}", driver()))
}

pub fn meta(i: u64) -> RecordMeta<'static> {
    RecordMeta {
        recv_ms: 1_700_000_000_000 + i as i64,
        clock_offset_ms: i as i64 % 7 - 3,
        id_base: [(i % 251) as u8; 12],
        event_count: (i % 5) as u32 + 1,
        app: "test-app",
    }
}

pub fn payload(i: u64) -> Vec<u8> {
    format!(
        "{{\"type\":\"t\",\"i\":{i},\"pad\":\"{}\"}}",
        "x".repeat((i % 97) as usize)
    )
    .into_bytes()
}

/// Appends records `from..to` one commit each and waits for each.
pub async fn append_each(j: &Journal, from: u64, to: u64) {
    for i in from..to {
        j.append_durable(&meta(i), &payload(i))
            .await
            .expect("append");
    }
}

/// Appends records `from..to` as one group (all appended, then one wait).
pub async fn append_group(j: &Journal, from: u64, to: u64) {
    let mut last = None;
    for i in from..to {
        last = Some(j.append(&meta(i), &payload(i)).expect("append"));
    }
    if let Some(t) = last {
        t.durable().await.expect("commit");
    }
}

/// Every durable record after `after_seq`.
pub fn read_all(j: &Journal, after_seq: u64) -> Vec<Record> {
    let mut r = j.reader(after_seq);
    let mut out = Vec::new();
    loop {
        let batch = r.read_batch(1000).expect("read");
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// Asserts records are exactly the appended `from..to`, in order, intact.
pub fn assert_records(records: &[Record], from: u64, to: u64) {
    let got: Vec<u64> = records.iter().map(|r| r.seq).collect();
    let want: Vec<u64> = (from..to).map(|i| i + 1).collect();
    assert_eq!(got, want, "record sequence");
    for r in records {
        let i = r.seq - 1;
        let m = meta(i);
        assert_eq!(r.payload, payload(i), "payload of seq {}", r.seq);
        assert_eq!(
            (r.recv_ms, r.clock_offset_ms, r.event_count),
            (m.recv_ms, m.clock_offset_ms, m.event_count)
        );
        assert_eq!(r.id_base, m.id_base);
        assert_eq!(r.app, m.app);
    }
}

/// Copies a journal directory (files only, one level).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

pub fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    v.sort();
    v
}

/// Threads of this process named like a journal's blocking writer thread.
pub fn writer_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "journal-writer")
        .count()
}

/// Starts test `test_path` (as `--exact` names it) of this same test binary
/// in a new process, with `env_key` set to `dir`: the child runs the test's
/// crash-side role there, printing progress on its stdout (piped) for the
/// parent, which SIGKILLs it.
pub fn spawn_test_child(test_path: &str, env_key: &str, dir: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([test_path, "--exact", "--nocapture", "--test-threads=1"])
        .env(env_key, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start the child")
}
