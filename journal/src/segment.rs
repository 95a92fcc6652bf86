//! Segment files: naming, creation (zero-filled, or fallocated under load),
//! recycling, listing, bounded reading.
//! Blocking std I/O: called at open and from the preallocator thread, never
//! on the commit path.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{JournalError, Result};
use crate::format::{SegmentHeader, BLOCK_BYTES};

/// Extension of a segment file.
pub const SEGMENT_EXT: &str = "seg";
/// Chunk size for zero-filling: big enough to stream at disk speed.
const ZERO_FILL_CHUNK_BYTES: usize = 1 << 20;
/// A paced fill pushes its zeros to the disk every this many bytes, so the
/// writeback happens while the fill has the disk, not later in one burst
/// that a commit could meet.
const PACED_SYNC_BYTES: u64 = 8 << 20;

/// Path of the segment with this lap.
pub fn segment_path(dir: &Path, lap: u64) -> PathBuf {
    dir.join(format!("{lap:020}.{SEGMENT_EXT}"))
}

fn temp_path(dir: &Path, lap: u64) -> PathBuf {
    dir.join(format!("{lap:020}.{SEGMENT_EXT}.tmp"))
}

/// fsyncs a directory so renames and creations in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("fsync directory", dir, e))
}

/// How a new segment's data blocks were made ready for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Allocation {
    /// Written with zeros (and fsynced): commits overwrite written blocks,
    /// the fastest case for an O_DIRECT write.
    ZeroFilled,
    /// Reserved with `fallocate` and not written: unwritten extents read as
    /// zeros and cost no data writes; each commit into them also converts
    /// its extent, metadata its own O_DSYNC or fdatasync makes durable.
    Fallocated,
}

/// Creates segment `lap`: written under a temporary name, zero-filled to
/// `size` (so later O_DIRECT writes hit already-allocated, written blocks),
/// header in block 0, fsynced, renamed into place, directory fsynced. A crash
/// leaves either no segment or a complete one (plus a stray `.tmp`).
pub fn create_segment(dir: &Path, lap: u64, size: u64) -> io::Result<PathBuf> {
    create_segment_via(dir, lap, |tmp| {
        write_zeroed_segment(tmp, lap, size, None).map(|_| ())
    })
}

/// [`create_segment`], calling `pace` before each chunk (it may wait, or
/// fail to abandon the segment) and syncing every `PACED_SYNC_BYTES`. Same
/// crash behaviour: nothing is renamed into place before it is complete
/// and fsynced.
pub(crate) fn create_segment_paced(
    dir: &Path,
    lap: u64,
    size: u64,
    pace: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<PathBuf> {
    let mut step = || pace().map(|()| FillStep::Zeros);
    create_segment_via(dir, lap, |tmp| {
        write_zeroed_segment(tmp, lap, size, Some(&mut step)).map(|_| ())
    })
}

/// What a zero-fill does next, asked before each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FillStep {
    /// Write the next chunk of zeros.
    Zeros,
    /// Commits have the disk now: allocate the rest without writing it
    /// (`fallocate`), as a segment made under load is.
    AllocateRest,
}

/// A segment begun while the disk is idle: zero-filled (the fastest blocks
/// to commit into) while `idle` says so before each chunk, syncing every
/// `PACED_SYNC_BYTES` so that no large writeback is left for a commit to
/// meet; once `idle` says commits have the disk, the rest is allocated
/// instead. A spare begun at startup used to be filled whole at full
/// speed, and the first commits of a fresh collector waited behind it
/// (open-loop p99 of tens of ms in the first second). Where the filesystem
/// has no `fallocate` the fill goes on with zeros. Same crash behaviour as
/// [`create_segment`].
pub(crate) fn create_segment_while_idle(
    dir: &Path,
    lap: u64,
    size: u64,
    idle: &mut dyn FnMut() -> bool,
) -> io::Result<(PathBuf, Allocation)> {
    let mut allocation = Allocation::ZeroFilled;
    let mut step = || {
        Ok(if idle() {
            FillStep::Zeros
        } else {
            FillStep::AllocateRest
        })
    };
    let path = create_segment_via(dir, lap, |tmp| {
        allocation = write_zeroed_segment(tmp, lap, size, Some(&mut step))?;
        Ok(())
    })?;
    Ok((path, allocation))
}

/// Creates segment `lap` with all `size` bytes allocated but only its
/// header written ([`Allocation::Fallocated`]), for a segment needed while
/// commits have the disk: zero-filling it would write every byte twice.
/// Where the filesystem has no `fallocate` (EOPNOTSUPP), or `refuse` says
/// to act as if so (a test hook), it is zero-filled instead. Same crash
/// behaviour as [`create_segment`]: complete and durable (file and
/// directory fsynced) before it has its name.
pub(crate) fn create_segment_allocated(
    dir: &Path,
    lap: u64,
    size: u64,
    refuse: bool,
) -> io::Result<(PathBuf, Allocation)> {
    let fallocated = create_segment_via(dir, lap, |tmp| {
        write_fallocated_segment(tmp, lap, size, refuse)
    });
    match fallocated {
        Ok(path) => Ok((path, Allocation::Fallocated)),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            let path = create_segment(dir, lap, size)?;
            Ok((path, Allocation::ZeroFilled))
        }
        Err(e) => Err(e),
    }
}

/// Runs `fill` on the temporary file of segment `lap`, then gives it its
/// name and makes that durable; a failed fill leaves no file behind.
fn create_segment_via(
    dir: &Path,
    lap: u64,
    fill: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let tmp = temp_path(dir, lap);
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let path = segment_path(dir, lap);
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(path)
}

fn segment_header_block(lap: u64, size: u64) -> Vec<u8> {
    let mut block = vec![0u8; BLOCK_BYTES];
    SegmentHeader {
        lap,
        segment_size_bytes: size,
    }
    .encode(&mut block);
    block
}

fn write_fallocated_segment(tmp: &Path, lap: u64, size: u64, refuse: bool) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    if refuse {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    allocate(&file, 0, size)?;
    file.write_all_at(&segment_header_block(lap, size), 0)?;
    file.sync_all()
}

/// Allocates `len` bytes of `file` from `offset` without writing them
/// (they read as zeros), extending its size to cover them.
fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "segment size too large");
    let offset = libc::off_t::try_from(offset).map_err(|_| too_large())?;
    let len = libc::off_t::try_from(len).map_err(|_| too_large())?;
    // SAFETY: `file` stays open for the whole call, and fallocate reads
    // none of our memory. Mode 0 allocates the range and sets the size.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes the header and zeros, asking `next` before each chunk; returns
/// how the segment's blocks were made.
fn write_zeroed_segment(
    tmp: &Path,
    lap: u64,
    size: u64,
    mut next: Option<&mut dyn FnMut() -> io::Result<FillStep>>,
) -> io::Result<Allocation> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    let mut chunk = vec![0u8; ZERO_FILL_CHUNK_BYTES];
    chunk[..BLOCK_BYTES].copy_from_slice(&segment_header_block(lap, size));
    let mut written = 0u64;
    let mut allocation = Allocation::ZeroFilled;
    while written < size {
        let n = (size - written).min(ZERO_FILL_CHUNK_BYTES as u64) as usize;
        if let Some(ask) = next.as_mut() {
            if written > 0 && written % PACED_SYNC_BYTES == 0 {
                file.sync_data()?;
            }
            // The first chunk carries the header: always written.
            if ask()? == FillStep::AllocateRest && written > 0 {
                match allocate(&file, written, size - written) {
                    Ok(()) => {
                        allocation = Allocation::Fallocated;
                        break;
                    }
                    // No fallocate here: zeros it is, without asking again.
                    Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => next = None,
                    Err(e) => return Err(e),
                }
            }
        }
        file.write_all(&chunk[..n])?;
        if written == 0 {
            chunk[..BLOCK_BYTES].fill(0);
        }
        written += n as u64;
    }
    file.sync_all()?;
    Ok(allocation)
}

/// Gives an old segment a new life as `new_lap`: rewrites its header (its
/// old records keep their old lap, so they never read as new), then renames
/// it. Header first: a crash in between leaves a file whose header is
/// authoritative and whose name `list_segments` corrects.
pub fn relap_segment(dir: &Path, old: &Path, new_lap: u64, size: u64) -> io::Result<PathBuf> {
    let file = OpenOptions::new().write(true).open(old)?;
    file.write_all_at(&segment_header_block(new_lap, size), 0)?;
    file.sync_data()?;
    let path = segment_path(dir, new_lap);
    fs::rename(old, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(path)
}

/// Zero-fills a segment file that is shorter than its size (a truncated
/// tail), so O_DIRECT writes never extend the file.
pub fn extend_to_size(path: &Path, size: u64) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| JournalError::io("open for extend", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| JournalError::io("stat", path, e))?
        .len();
    let zeros = vec![0u8; ZERO_FILL_CHUNK_BYTES];
    let mut at = len;
    while at < size {
        let n = (size - at).min(ZERO_FILL_CHUNK_BYTES as u64) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| JournalError::io("extend segment", path, e))?;
        at += n as u64;
    }
    file.sync_all()
        .map_err(|e| JournalError::io("fsync extended segment", path, e))
}

/// A segment file found on disk.
#[derive(Debug, Clone)]
pub struct SegmentFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its decoded header.
    pub header: SegmentHeader,
    /// Its current length (may be short after a truncation).
    pub file_len: u64,
}

/// Lists the segments of `dir` sorted by lap, reading only. A file whose
/// name disagrees with its header (a crash between the two steps of
/// `relap_segment`) is taken by its header. Fails on a bad header or two
/// segments claiming one lap.
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentFile>> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    let mut found: Vec<SegmentFile> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SEGMENT_EXT) {
            continue;
        }
        let (header, file_len) = read_header(&path)?;
        found.push(SegmentFile {
            path,
            header,
            file_len,
        });
    }
    found.sort_by_key(|s| s.header.lap);
    for pair in found.windows(2) {
        if pair[0].header.lap == pair[1].header.lap {
            return Err(JournalError::BadSegment {
                path: pair[1].path.clone(),
                reason: format!(
                    "claims lap {} which {} also has",
                    pair[1].header.lap,
                    pair[0].path.display()
                ),
            });
        }
    }
    Ok(found)
}

/// Removes temporary segment files a crash left behind (only while no
/// journal is open on `dir`).
pub fn remove_stale_temps(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let path = entry.path();
        if path
            .to_string_lossy()
            .ends_with(&format!(".{SEGMENT_EXT}.tmp"))
        {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(JournalError::io("remove temp", &path, e)),
            }
        }
    }
    Ok(())
}

fn read_header(path: &Path) -> Result<(SegmentHeader, u64)> {
    let mut file = File::open(path).map_err(|e| JournalError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| JournalError::io("stat", path, e))?
        .len();
    let mut block = vec![0u8; BLOCK_BYTES];
    let mut filled = 0;
    while filled < block.len() {
        match file.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(JournalError::io("read header", path, e)),
        }
    }
    let header = SegmentHeader::decode(&block[..filled]).map_err(|e| JournalError::BadSegment {
        path: path.to_path_buf(),
        reason: format!("segment header: {e}"),
    })?;
    Ok((header, len))
}

/// Reads `[start, end)` of a file; bytes past its end read as zeros (a
/// truncated segment looks like a zero-filled one).
pub fn read_range(file: &File, path: &Path, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_range_into(file, path, start, end, &mut buf)?;
    Ok(buf)
}

/// [`read_range`] into `buf` (resized to `end - start`, its allocation
/// reused). Returns how many bytes came from the file (the rest, past its
/// end, are zeros).
fn read_range_into(
    file: &File,
    path: &Path,
    start: u64,
    end: u64,
    buf: &mut Vec<u8>,
) -> Result<u64> {
    buf.clear();
    buf.resize((end - start) as usize, 0);
    let mut filled = 0usize;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], start + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(JournalError::io("read", path, e)),
        }
    }
    Ok(filled as u64)
}

/// What the windows of one scan read: recovery reports it, and tests bound
/// it.
#[derive(Debug, Default)]
pub(crate) struct ScanMeter {
    read_bytes: Cell<u64>,
    peak_window_bytes: Cell<usize>,
}

impl ScanMeter {
    /// Bytes read from segment files so far.
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes.get()
    }

    /// The largest window held so far.
    pub fn peak_window_bytes(&self) -> usize {
        self.peak_window_bytes.get()
    }
}

/// One segment read through a single window of bounded size: scanning a
/// segment holds at most its largest commit (usually one `chunk_bytes`)
/// in memory, never the whole file.
pub(crate) struct SegmentWindow<'m> {
    path: PathBuf,
    file: File,
    size: u64,
    /// Least bytes each read fetches: read-ahead for a scan, one block for
    /// a probe.
    chunk_bytes: usize,
    /// Segment offset of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
    meter: &'m ScanMeter,
}

impl<'m> SegmentWindow<'m> {
    /// Opens the segment at `path` whose size is `size` (its header's; a
    /// shorter file reads as zeros past its end).
    pub fn open(
        path: &Path,
        size: u64,
        chunk_bytes: usize,
        meter: &'m ScanMeter,
    ) -> Result<SegmentWindow<'m>> {
        let file = File::open(path).map_err(|e| JournalError::io("open", path, e))?;
        Ok(SegmentWindow {
            path: path.to_path_buf(),
            file,
            size,
            chunk_bytes,
            start: 0,
            bytes: Vec::new(),
            meter,
        })
    }

    /// The segment's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The segment's bytes from `offset` on: at least `want` of them (fewer
    /// only where the segment ends), more when the window holds more.
    /// Reads only when the window does not cover them.
    pub fn bytes_from(&mut self, offset: u64, want: usize) -> Result<&[u8]> {
        debug_assert!(offset <= self.size, "offset {offset} past the segment");
        let want_end = offset.saturating_add(want as u64).min(self.size);
        let window_end = self.start + self.bytes.len() as u64;
        if offset < self.start || want_end > window_end {
            let end = offset
                .saturating_add(want.max(self.chunk_bytes) as u64)
                .min(self.size);
            let read = read_range_into(&self.file, &self.path, offset, end, &mut self.bytes)?;
            self.start = offset;
            self.meter
                .read_bytes
                .set(self.meter.read_bytes.get() + read);
            let peak = self.meter.peak_window_bytes.get().max(self.bytes.len());
            self.meter.peak_window_bytes.set(peak);
        }
        debug_assert!(self.start + self.bytes.len() as u64 >= want_end);
        Ok(&self.bytes[(offset - self.start) as usize..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u64 = 4 * ZERO_FILL_CHUNK_BYTES as u64;

    /// The file reads as segment `lap`'s header followed by zeros.
    fn assert_empty_segment(path: &Path, lap: u64) {
        let bytes = fs::read(path).unwrap();
        assert_eq!(bytes.len() as u64, SIZE);
        assert_eq!(bytes[..BLOCK_BYTES], segment_header_block(lap, SIZE)[..]);
        assert!(bytes[BLOCK_BYTES..].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_fill_commits_interrupt_allocates_the_rest_and_reads_as_an_empty_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut asked = 0;
        let mut idle = || {
            asked += 1;
            asked <= 2
        };
        let (path, allocation) = create_segment_while_idle(dir.path(), 7, SIZE, &mut idle).unwrap();
        assert_eq!(allocation, Allocation::Fallocated);
        assert_eq!(asked, 3, "no chunk is asked for after the switch");
        assert_eq!(path, segment_path(dir.path(), 7));
        assert_empty_segment(&path, 7);
    }

    #[test]
    fn a_fill_the_disk_stays_idle_for_is_zeros_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (path, allocation) =
            create_segment_while_idle(dir.path(), 3, SIZE, &mut || true).unwrap();
        assert_eq!(allocation, Allocation::ZeroFilled);
        assert_empty_segment(&path, 3);
    }

    #[test]
    fn the_header_chunk_is_written_even_when_commits_already_run() {
        let dir = tempfile::tempdir().unwrap();
        let (path, allocation) =
            create_segment_while_idle(dir.path(), 5, SIZE, &mut || false).unwrap();
        assert_eq!(allocation, Allocation::Fallocated);
        assert_empty_segment(&path, 5);
    }
}
