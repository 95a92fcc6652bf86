//! Journal append+commit throughput beside the disk's own limit: a raw
//! O_DIRECT `pwrite` + `fdatasync` loop (and a raw `O_DIRECT|O_DSYNC`
//! `pwrite` loop) over a preallocated, zero-filled file, for the same commit
//! sizes, in the same run.
//!
//! `cargo bench -p helios-benches --bench journal`
//!
//! Each journal iteration is one record sized so its commit (record, marker,
//! padding) is exactly the commit size; two appenders keep commits back to
//! back as a loaded collector core does (with `max_commits_in_flight` 2
//! both of their commits are in flight at once; `_inflight1` is one commit
//! at a time; `_thread` commits through the journal's blocking writer
//! thread instead of io_uring, on the same runtime), and a thread plays
//! the flusher,
//! checkpointing every 32 commits so segments are recycled as in steady
//! state. Files live
//! under `HELIOS_BENCH_DIR` (default: the system temp dir) — put it on the
//! disk you want to measure.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use helios_journal::format::{MARKER_BYTES, RECORD_HEADER_BYTES};
use helios_journal::{
    AlignedBuf, Checkpoint, CommitPath, Journal, JournalConfig, RecordMeta, SyncMode,
};

const COMMIT_SIZES_BYTES: [usize; 3] = [4 << 10, 64 << 10, 1 << 20];
const SEGMENT_BYTES: u64 = 64 << 20;
/// The raw loop wraps around a file this big (already written, like a
/// recycled segment).
const RAW_FILE_BYTES: u64 = 256 << 20;
const CHECKPOINT_EVERY_COMMITS: u64 = 32;
/// Concurrent appenders (each waits for its own commit before the next).
const APPENDERS: u64 = 2;
/// `max_commits_in_flight` values compared: one commit at a time, and the
/// default (two, overlapping).
const COMMITS_IN_FLIGHT: [usize; 2] = [1, 2];

fn bench_dir() -> PathBuf {
    std::env::var_os("HELIOS_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn raw_loop(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: usize,
    dsync: bool,
) {
    let name = if dsync {
        "raw_pwrite_odsync"
    } else {
        "raw_pwrite_fdatasync"
    };
    c.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let path = dir.path().join("raw.dat");
        std::fs::write(&path, vec![0u8; RAW_FILE_BYTES as usize]).unwrap();
        // Flush the zero-fill now, or the first fdatasyncs pay for it.
        std::fs::File::open(&path).unwrap().sync_all().unwrap();
        let flags = if dsync {
            libc::O_DIRECT | libc::O_DSYNC
        } else {
            libc::O_DIRECT
        };
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(flags)
            .open(&path)
            .unwrap();
        let mut buf = AlignedBuf::zeroed(size);
        buf.extend(size).fill(b'r');
        let fd = file.as_raw_fd();
        let mut offset = 0u64;
        b.iter(|| {
            // SAFETY: buf is valid and aligned for `size` bytes.
            let n =
                unsafe { libc::pwrite(fd, buf.as_slice().as_ptr().cast(), size, offset as i64) };
            assert_eq!(n, size as isize, "pwrite");
            if !dsync {
                // SAFETY: plain syscall on an open fd.
                assert_eq!(unsafe { libc::fdatasync(fd) }, 0, "fdatasync");
            }
            offset = (offset + size as u64) % RAW_FILE_BYTES;
        });
    });
}

fn journal_loop(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: usize,
    mode: SyncMode,
    path: CommitPath,
    in_flight: usize,
) {
    let mode_name = match mode {
        SyncMode::Dsync => "odsync",
        SyncMode::Fdatasync => "fdatasync",
    };
    let path_name = match path {
        CommitPath::IoUring => "",
        CommitPath::WriterThread => "_thread",
    };
    let name = format!("journal_{mode_name}{path_name}_inflight{in_flight}");
    c.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
        let dir = tempfile::tempdir_in(bench_dir()).unwrap();
        let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let cfg = JournalConfig {
            segment_size_bytes: SEGMENT_BYTES,
            group_target_bytes: size,
            sync_mode: mode,
            commit_path: path,
            max_commits_in_flight: in_flight,
            ..JournalConfig::default()
        };
        let journal = Rc::new(rt.block_on(Journal::open(dir.path(), cfg)).unwrap());
        let payload = Rc::new(vec![b'j'; size - RECORD_HEADER_BYTES - MARKER_BYTES]);
        let (tx, rx) = std::sync::mpsc::channel::<Checkpoint>();
        let checkpointer = journal.checkpointer();
        let flusher = std::thread::spawn(move || {
            while let Ok(cp) = rx.recv() {
                // Positions from several appenders arrive out of order.
                let latest = rx
                    .try_iter()
                    .fold(cp, |a, b| if b.seq > a.seq { b } else { a });
                if latest.seq > checkpointer.current().seq {
                    checkpointer.advance(latest).unwrap();
                }
            }
        });
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                let per_task = iters.div_ceil(APPENDERS);
                let mut tasks = Vec::new();
                for task in 0..APPENDERS {
                    let n = per_task.min(iters.saturating_sub(task * per_task));
                    let (journal, payload, tx) = (journal.clone(), payload.clone(), tx.clone());
                    tasks.push(monoio::spawn(async move {
                        for i in 0..n {
                            let t = journal.append(&RecordMeta::default(), &payload).unwrap();
                            t.durable().await.unwrap();
                            if i % CHECKPOINT_EVERY_COMMITS == 0 {
                                let _ = tx.send(t.position());
                            }
                        }
                    }));
                }
                for t in tasks {
                    t.await;
                }
                start.elapsed()
            })
        });
        drop(tx);
        flusher.join().unwrap();
        rt.block_on(journal.close()).unwrap();
    });
}

fn commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.measurement_time(Duration::from_secs(4));
    group.sample_size(20);
    for size in COMMIT_SIZES_BYTES {
        group.throughput(Throughput::Bytes(size as u64));
        raw_loop(&mut group, size, false);
        for in_flight in COMMITS_IN_FLIGHT {
            journal_loop(
                &mut group,
                size,
                SyncMode::Fdatasync,
                CommitPath::IoUring,
                in_flight,
            );
        }
        raw_loop(&mut group, size, true);
        for in_flight in COMMITS_IN_FLIGHT {
            for path in [CommitPath::IoUring, CommitPath::WriterThread] {
                journal_loop(&mut group, size, SyncMode::Dsync, path, in_flight);
            }
        }
    }
    group.finish();
}

criterion_group!(benches, commits);
criterion_main!(benches);
