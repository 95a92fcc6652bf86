//! helios-diskprobe: the durability ceiling of a filesystem, measured the
//! way the journal writes: `O_DIRECT | O_DSYNC` writes of one size, one at a
//! time, sequentially through a file whose blocks were all written (and
//! fsynced) beforehand, as the journal's zero-filled segments are.
//!
//!   helios-diskprobe DIR [SIZE_BYTES...]     (default 4096 65536 1048576)
//!
//! Prints one line per size: writes, mean and p50/p99 latency per write,
//! MB/s. Not `dd oflag=direct,dsync`: dd writes into a fresh (truncated)
//! file, so every write also allocates blocks and commits the filesystem's
//! own journal (slower than the journal's writes into written blocks), and
//! it reports one throughput figure, no latency per write.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// O_DIRECT alignment for buffers, offsets and sizes (covers 4 KiB-sector
/// devices as well as 512-byte ones).
const ALIGN_BYTES: usize = 4096;
/// The probe file: big enough that 1 MiB writes wrap rarely, small enough
/// for a nearly full disk.
const FILE_BYTES: usize = 64 << 20;
/// How long each size is measured.
const RUN_FOR: Duration = Duration::from_millis(1500);
/// Cap on writes per size (bounds the latency vector).
const MAX_WRITES: usize = 200_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: helios-diskprobe DIR [SIZE_BYTES...]");
        std::process::exit(2);
    };
    let mut sizes: Vec<usize> = Vec::new();
    for a in &args[1..] {
        match a.parse::<usize>() {
            // Round up to the O_DIRECT alignment, as the journal pads commits.
            Ok(n) if n > 0 => sizes.push(n.div_ceil(ALIGN_BYTES) * ALIGN_BYTES),
            _ => {
                eprintln!("not a size in bytes: {a}");
                std::process::exit(2);
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![4096, 65536, 1 << 20];
    }
    let path = Path::new(dir).join(format!("helios-diskprobe.{}", std::process::id()));
    let result = probe(&path, &sizes);
    let _ = fs::remove_file(&path);
    if let Err(e) = result {
        eprintln!("helios-diskprobe: {}: {e}", path.display());
        std::process::exit(1);
    }
}

fn probe(path: &Path, sizes: &[usize]) -> std::io::Result<()> {
    prefill(path)?;
    let fd = open_direct_dsync(path)?;
    let max = sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(ALIGN_BYTES)
        .min(FILE_BYTES);
    let buf = AlignedBuf::new(max);
    let mut out = Ok(());
    for &size in sizes {
        let size = size.min(FILE_BYTES);
        match run_size(fd, &buf, size) {
            Ok(lat) => print_line(size, &lat),
            Err(e) => {
                out = Err(e);
                break;
            }
        }
    }
    // SAFETY: fd was opened above and is closed once.
    unsafe { libc::close(fd) };
    out
}

/// Writes the whole file once and fsyncs it, so the probe's writes land
/// on allocated, written blocks (no block allocation in their timing).
fn prefill(path: &Path) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES / chunk.len() {
        f.write_all(&chunk)?;
    }
    f.sync_all()
}

fn open_direct_dsync(path: &Path) -> std::io::Result<i32> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    // SAFETY: c is a valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_DIRECT | libc::O_DSYNC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sequential writes of `size` for `RUN_FOR`; latency of each in µs.
fn run_size(fd: i32, buf: &AlignedBuf, size: usize) -> std::io::Result<Vec<f64>> {
    let mut lat = Vec::new();
    let mut offset = 0usize;
    let start = Instant::now();
    while start.elapsed() < RUN_FOR && lat.len() < MAX_WRITES {
        if offset + size > FILE_BYTES {
            offset = 0;
        }
        let t = Instant::now();
        // SAFETY: buf holds at least `size` bytes, aligned; fd is open.
        let n = unsafe { libc::pwrite(fd, buf.ptr.cast(), size, offset as libc::off_t) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n as usize != size {
            return Err(std::io::Error::other(format!("short write: {n} of {size}")));
        }
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        offset += size;
    }
    Ok(lat)
}

fn print_line(size: usize, lat: &[f64]) {
    let mut sorted = lat.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    let total_us: f64 = lat.iter().sum();
    let mean = total_us / lat.len() as f64;
    let mb_s = (size * lat.len()) as f64 / total_us; // bytes/µs = MB/s
    println!(
        "  raw O_DIRECT|O_DSYNC {:>9} B  writes {:>6}  mean {:>8.0} µs  p50 {:>8.0} µs  p99 {:>8.0} µs  {:>8.1} MB/s",
        size,
        lat.len(),
        mean,
        pct(0.5),
        pct(0.99),
        mb_s
    );
}

/// A zeroed buffer aligned for O_DIRECT.
struct AlignedBuf {
    ptr: *mut u8,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> AlignedBuf {
        let layout = Layout::from_size_align(len.max(ALIGN_BYTES), ALIGN_BYTES)
            .expect("probe sizes are small and the alignment a power of two");
        // SAFETY: layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        AlignedBuf { ptr, layout }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}
