//! Probe: the cost of one commit-sized O_DIRECT write through monoio's
//! io_uring file ops versus plain pwrite, with no journal logic at all.
//! `cargo run --release -p helios-benches --example uring_probe`

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::time::Instant;

use helios_journal::AlignedBuf;

const FILE_BYTES: u64 = 64 << 20;
const ITERS: u64 = 5000;

/// Commits per second when `writers` threads each do back-to-back O_DSYNC
/// writes of `size` bytes to their own file (as the collector's cores do):
/// shows whether the device serialises cache flushes.
fn concurrent_dsync(dir: &std::path::Path, writers: usize, size: usize) -> f64 {
    let paths: Vec<_> = (0..writers)
        .map(|w| dir.join(format!("w{w}.dat")))
        .collect();
    for p in &paths {
        std::fs::write(p, vec![0u8; 16 << 20]).unwrap();
        std::fs::File::open(p).unwrap().sync_all().unwrap();
    }
    let t = Instant::now();
    let handles: Vec<_> = paths
        .into_iter()
        .map(|p| {
            std::thread::spawn(move || {
                let f = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
                    .open(&p)
                    .unwrap();
                let mut buf = AlignedBuf::zeroed(size);
                buf.extend(size).fill(2);
                for i in 0..(ITERS / 2) {
                    let off = (i * size as u64) % (16 << 20);
                    // SAFETY: valid aligned buffer.
                    unsafe {
                        libc::pwrite(
                            f.as_raw_fd(),
                            buf.as_slice().as_ptr().cast(),
                            size,
                            off as i64,
                        )
                    };
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    (writers as u64 * ITERS / 2) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    for writers in [1, 2] {
        let rate = concurrent_dsync(dir.path(), writers, 8192);
        println!("{writers} writer(s), 8 KiB O_DSYNC pwrite: {rate:.0} commits/s in total");
    }
    let path = dir.path().join("probe.dat");
    std::fs::write(&path, vec![0u8; FILE_BYTES as usize]).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();
    for size in [4096usize, 65536] {
        for (name, flags, sync) in [
            ("odsync", libc::O_DIRECT | libc::O_DSYNC, false),
            ("fdatasync", libc::O_DIRECT, true),
        ] {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(flags)
                .open(&path)
                .unwrap();
            let mut buf = AlignedBuf::zeroed(size);
            buf.extend(size).fill(1);
            let fd = file.as_raw_fd();
            let t = Instant::now();
            for i in 0..ITERS {
                let off = (i * size as u64) % FILE_BYTES;
                // SAFETY: valid aligned buffer.
                let n =
                    unsafe { libc::pwrite(fd, buf.as_slice().as_ptr().cast(), size, off as i64) };
                assert_eq!(n as usize, size);
                if sync {
                    // SAFETY: plain syscall.
                    unsafe { libc::fdatasync(fd) };
                }
            }
            let raw = t.elapsed().as_micros() as f64 / ITERS as f64;
            let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
                .unwrap();
            let uring = rt.block_on(async {
                let f = monoio::fs::File::from_std(file).unwrap();
                let mut buf = buf;
                let t = Instant::now();
                for i in 0..ITERS {
                    let off = (i * size as u64) % FILE_BYTES;
                    let (r, b) = f.write_all_at(buf, off).await;
                    r.unwrap();
                    buf = b;
                    if sync {
                        f.sync_data().await.unwrap();
                    }
                }
                t.elapsed().as_micros() as f64 / ITERS as f64
            });
            println!("{size:>6} B {name:<9}  pwrite {raw:6.1} us/commit   monoio io_uring {uring:6.1} us/commit   ratio {:.2}", raw / uring);
        }
    }
}
