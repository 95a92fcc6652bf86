//! Journal append+commit throughput beside the disk's own limit: a raw
//! O_DIRECT `pwrite` + `fdatasync` loop over a preallocated, zero-filled
//! file, for the same commit sizes, in the same run.
//!
//! `cargo bench -p helios-benches --bench journal`
//!
//! Each journal iteration is one record sized so its commit (record, marker,
//! padding) is exactly the commit size; a checkpoint thread plays the
//! flusher so segments are recycled as in steady state. Files live under
//! `HELIOS_BENCH_DIR` (default: the system temp dir) — put it on the disk
//! you want to measure.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use helios_journal::format::{MARKER_BYTES, RECORD_HEADER_BYTES};
use helios_journal::{AlignedBuf, Checkpoint, Journal, JournalConfig, RecordMeta};

const COMMIT_SIZES_BYTES: [usize; 3] = [4 << 10, 64 << 10, 1 << 20];
const SEGMENT_BYTES: u64 = 64 << 20;
/// The raw loop wraps around a file this big (already written, like a
/// recycled segment).
const RAW_FILE_BYTES: u64 = 256 << 20;
const CHECKPOINT_EVERY_COMMITS: u64 = 32;

fn bench_dir() -> PathBuf {
    std::env::var_os("HELIOS_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn raw_commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.measurement_time(Duration::from_secs(4));
    group.sample_size(20);
    for size in COMMIT_SIZES_BYTES {
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("raw_pwrite_fdatasync", size),
            &size,
            |b, &size| {
                let dir = tempfile::tempdir_in(bench_dir()).unwrap();
                let path = dir.path().join("raw.dat");
                std::fs::write(&path, vec![0u8; RAW_FILE_BYTES as usize]).unwrap();
                // Flush the zero-fill now, or the first fdatasyncs pay for it.
                std::fs::File::open(&path).unwrap().sync_all().unwrap();
                let file = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(&path)
                    .unwrap();
                let mut buf = AlignedBuf::zeroed(size);
                buf.extend(size).fill(b'r');
                let fd = file.as_raw_fd();
                let mut offset = 0u64;
                b.iter(|| {
                    // SAFETY: buf is valid and aligned for `size` bytes.
                    let n = unsafe {
                        libc::pwrite(fd, buf.as_slice().as_ptr().cast(), size, offset as i64)
                    };
                    assert_eq!(n, size as isize, "pwrite");
                    // SAFETY: plain syscall on an open fd.
                    assert_eq!(unsafe { libc::fdatasync(fd) }, 0, "fdatasync");
                    offset = (offset + size as u64) % RAW_FILE_BYTES;
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("journal_append_commit", size),
            &size,
            |b, &size| {
                let dir = tempfile::tempdir_in(bench_dir()).unwrap();
                let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap();
                let cfg = JournalConfig {
                    segment_size_bytes: SEGMENT_BYTES,
                    spare_segments: 2,
                    group_target_bytes: size,
                    ..JournalConfig::default()
                };
                let journal = rt.block_on(Journal::open(dir.path(), cfg)).unwrap();
                let payload = vec![b'j'; size - RECORD_HEADER_BYTES - MARKER_BYTES];
                let (tx, rx) = std::sync::mpsc::channel::<Checkpoint>();
                let checkpointer = journal.checkpointer();
                let flusher = std::thread::spawn(move || {
                    while let Ok(cp) = rx.recv() {
                        let latest = rx.try_iter().last().unwrap_or(cp);
                        checkpointer.advance(latest).unwrap();
                    }
                });
                let mut commits = 0u64;
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let t = journal.append(&RecordMeta::default(), &payload).unwrap();
                            t.durable().await.unwrap();
                            commits += 1;
                            if commits % CHECKPOINT_EVERY_COMMITS == 0 {
                                let _ = tx.send(t.position());
                            }
                        }
                        start.elapsed()
                    })
                });
                drop(tx);
                flusher.join().unwrap();
                rt.block_on(journal.close()).unwrap();
            },
        );
    }
    group.finish();
}

criterion_group!(benches, raw_commits);
criterion_main!(benches);
