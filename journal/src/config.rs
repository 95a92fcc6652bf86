//! Journal configuration: every limit is a named knob with a default.

use std::sync::Arc;

use crate::error::{JournalError, Result};
use crate::fault::FaultPlan;
use crate::format::{BLOCK_BYTES, MARKER_BYTES, RECORD_HEADER_BYTES};

/// Default size of a segment file.
pub const DEFAULT_SEGMENT_SIZE_BYTES: u64 = 64 << 20;
/// Default number of segments kept ready ahead of need: two, so the second
/// can wait for a recycled (written) segment instead of a new one.
pub const DEFAULT_SPARE_SEGMENTS: usize = 2;
/// A group is sealed (committed on its own) once it holds this many bytes:
/// past ~1 MiB a bigger write no longer raises throughput on our disks.
pub const DEFAULT_GROUP_TARGET_BYTES: usize = 1 << 20;
/// Default cap on bytes appended but not yet committed.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;
/// Default cap on one record (header, app and payload).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 33 << 20;
/// Default number of group commits written and synced at once: two, since
/// the device takes parallel flushes (18,320 vs 11,483 O_DSYNC commits/s
/// for two writers vs one, BENCHMARKS.md) and a new group then starts while
/// the previous one is in flight instead of waiting a whole commit cycle.
pub const DEFAULT_MAX_COMMITS_IN_FLIGHT: usize = 2;
/// Largest accepted `max_commits_in_flight`: each in-flight group holds a
/// group buffer, and recovery tolerates a torn commit's overlapped
/// successors only as far as their markers say (FORMAT.md), so the window
/// is kept small.
pub const MAX_COMMITS_IN_FLIGHT_LIMIT: usize = 8;

/// How a commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Segments opened with `O_DIRECT | O_DSYNC`: the commit write itself
    /// completes only once its data is durable (the kernel adds FUA or a
    /// cache flush), exactly what write + fdatasync guarantees, in one
    /// io_uring operation instead of two.
    #[default]
    Dsync,
    /// `O_DIRECT` write, then a separate `fdatasync`.
    Fdatasync,
}

/// How each commit reaches the disk; it must match the driver of the
/// monoio runtime the journal lives on (see [`crate::runtime::IoDriver`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitPath {
    /// The committer task writes (and fdatasyncs) through io_uring: the
    /// core thread never blocks on the disk.
    #[default]
    IoUring,
    /// Each commit is handed to a dedicated blocking writer thread of this
    /// journal (std `write_at` + `fdatasync`), and its tickets complete once
    /// that thread reports it durable. For the legacy (epoll) driver, whose
    /// file operations would block the core thread.
    WriterThread,
}

/// How a journal lays out and bounds its files and memory.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Size of each segment file; a multiple of the block size.
    pub segment_size_bytes: u64,
    /// Segments to keep ready ahead of the writer: recycled ones, or new
    /// ones zero-filled while no commit runs and allocated without data
    /// writes (fallocate) while commits run.
    pub spare_segments: usize,
    /// Segments to prepare beyond `spare_segments`, zero-filled only while
    /// no commit has run for a moment (so the fill never takes the disk
    /// from commits) and kept in place when recycled instead of deleted.
    /// Sized to the journal's share of the disk budget, a journal that
    /// fills up under overload then commits into written blocks (faster
    /// than the allocated-only blocks a segment made under load has; both
    /// write each byte once). 0: spares only.
    pub prepared_segments: usize,
    /// Seal a group once it holds this many bytes.
    pub group_target_bytes: usize,
    /// Refuse appends (with `Backpressure`) beyond this many uncommitted bytes.
    pub max_pending_bytes: usize,
    /// Largest record accepted.
    pub max_record_bytes: usize,
    /// Groups written and synced concurrently (1: one commit at a time).
    /// Tickets still resolve strictly in sequence order.
    pub max_commits_in_flight: usize,
    /// How commits are made durable.
    pub sync_mode: SyncMode,
    /// Which path commits take (io_uring, or the blocking writer thread).
    pub commit_path: CommitPath,
    /// Open segments without `O_DIRECT`: each commit is a buffered write
    /// followed by fdatasync before its tickets complete (same ack rule,
    /// through the page cache). Only for filesystems that refuse O_DIRECT;
    /// without it such a filesystem refuses to open the journal.
    pub buffered_io: bool,
    /// Accept a journal directory on a memory filesystem (tmpfs, ramfs),
    /// where commits survive a process crash but not a power loss or a
    /// reboot. Without it such a directory refuses to open the journal.
    pub allow_volatile: bool,
    /// Test hook: fail chosen writes/fdatasyncs.
    pub fault_plan: Option<Arc<FaultPlan>>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            spare_segments: DEFAULT_SPARE_SEGMENTS,
            prepared_segments: 0,
            group_target_bytes: DEFAULT_GROUP_TARGET_BYTES,
            max_pending_bytes: DEFAULT_MAX_PENDING_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            max_commits_in_flight: DEFAULT_MAX_COMMITS_IN_FLIGHT,
            sync_mode: SyncMode::default(),
            commit_path: CommitPath::default(),
            buffered_io: false,
            allow_volatile: false,
            fault_plan: None,
        }
    }
}

impl JournalConfig {
    /// Checks the knobs against each other.
    pub fn validate(&self) -> Result<()> {
        let block = BLOCK_BYTES as u64;
        if self.segment_size_bytes % block != 0 || self.segment_size_bytes < 4 * block {
            return Err(JournalError::Config(format!(
                "segment_size_bytes must be a multiple of {block} and at least {}",
                4 * block
            )));
        }
        if self.spare_segments == 0 {
            return Err(JournalError::Config(
                "spare_segments must be at least 1".into(),
            ));
        }
        if self.max_record_bytes < RECORD_HEADER_BYTES {
            return Err(JournalError::Config("max_record_bytes is too small".into()));
        }
        if self.group_target_bytes < BLOCK_BYTES {
            return Err(JournalError::Config(format!(
                "group_target_bytes must be at least {BLOCK_BYTES}"
            )));
        }
        if !(1..=MAX_COMMITS_IN_FLIGHT_LIMIT).contains(&self.max_commits_in_flight) {
            return Err(JournalError::Config(format!(
                "max_commits_in_flight must be between 1 and {MAX_COMMITS_IN_FLIGHT_LIMIT}, not {}",
                self.max_commits_in_flight
            )));
        }
        Ok(())
    }

    /// How commits are made durable once `buffered_io` is considered: a
    /// buffered write is always followed by its own fdatasync.
    pub fn effective_sync_mode(&self) -> SyncMode {
        if self.buffered_io {
            SyncMode::Fdatasync
        } else {
            self.sync_mode
        }
    }

    /// The largest record that fits this configuration: bounded by the knob
    /// and by what one segment holds next to its header and a marker.
    pub fn effective_max_record_bytes(&self) -> usize {
        let fits = self.segment_size_bytes as usize - BLOCK_BYTES - MARKER_BYTES;
        self.max_record_bytes.min(fits)
    }
}
