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

fn main() {
    let dir = tempfile::tempdir().unwrap();
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
