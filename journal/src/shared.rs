//! State the writer (on its monoio core) shares with readers, checkpointers
//! and the preallocator (on other threads). Touched once per commit and on
//! cold paths only; the append path never locks.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::checkpoint::Checkpoint;
use crate::format::BLOCK_BYTES;
use crate::histogram::Log2Histogram;

/// A segment as readers and accounting see it.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// Lap.
    pub lap: u64,
    /// File path.
    pub path: PathBuf,
    /// First and last sequence held, once known (the active segment's last
    /// is the durable mark).
    pub seqs: Option<(u64, u64)>,
    /// End of its last commit, for finished segments.
    pub used_end: u64,
}

/// The newest durable commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    /// Last durable record sequence (0: none).
    pub seq: u64,
    /// Lap of the segment it is in.
    pub lap: u64,
    /// Block-aligned end of that commit.
    pub end_offset: u64,
}

#[derive(Debug)]
pub(crate) struct SharedState {
    pub segments: Vec<SegmentInfo>,
    pub durable: DurableMark,
    pub checkpoint: Checkpoint,
}

/// The shared part of a journal.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<SharedState>,
    pub durable_seq: AtomicU64,
    pub checkpoint_seq: AtomicU64,
    pub commits: AtomicU64,
    pub committed_records: AtomicU64,
    pub committed_bytes: AtomicU64,
    pub unflushed: AtomicU64,
    /// Bytes per commit (whole blocks), from 4 KiB up.
    pub commit_bytes: Log2Histogram,
    /// Microseconds from a commit's write submission to its durability.
    pub commit_latency_us: Log2Histogram,
}

/// Counters of one journal since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Group commits made durable.
    pub commits: u64,
    /// Records in them.
    pub records: u64,
    /// Bytes written by them (whole blocks).
    pub bytes: u64,
}

impl Shared {
    pub fn new(state: SharedState) -> Shared {
        let durable_seq = AtomicU64::new(state.durable.seq);
        let checkpoint_seq = AtomicU64::new(state.checkpoint.seq);
        Shared {
            state: Mutex::new(state),
            durable_seq,
            checkpoint_seq,
            commits: AtomicU64::new(0),
            committed_records: AtomicU64::new(0),
            committed_bytes: AtomicU64::new(0),
            unflushed: AtomicU64::new(0),
            commit_bytes: Log2Histogram::new(12),
            commit_latency_us: Log2Histogram::new(4),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        // A panic while holding this lock cannot leave it half-updated in a
        // way that matters more than stopping would; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the committer after a commit's fdatasync.
    pub fn on_durable(&self, mark: DurableMark, first_seq_of_commit: u64) {
        let mut st = self.lock();
        debug_assert!(mark.seq >= st.durable.seq);
        st.durable = mark;
        if let Some(seg) = st.segments.iter_mut().rev().find(|s| s.lap == mark.lap) {
            seg.seqs = Some(match seg.seqs {
                Some((first, _)) => (first, mark.seq),
                None => (first_seq_of_commit, mark.seq),
            });
            seg.used_end = mark.end_offset;
        }
        self.refresh_unflushed(&st);
        drop(st);
        self.durable_seq.store(mark.seq, Ordering::Release);
    }

    /// Counts one durable commit.
    pub fn count_commit(&self, records: u64, bytes: u64, latency_us: u64) {
        self.commit_bytes.observe(bytes);
        self.commit_latency_us.observe(latency_us);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.committed_records.fetch_add(records, Ordering::Relaxed);
        self.committed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counters.
    pub fn stats(&self) -> JournalStats {
        JournalStats {
            commits: self.commits.load(Ordering::Relaxed),
            records: self.committed_records.load(Ordering::Relaxed),
            bytes: self.committed_bytes.load(Ordering::Relaxed),
        }
    }

    /// Bytes committed but not yet covered by the checkpoint, as of the
    /// last commit or checkpoint (an atomic read: cheap per request).
    pub fn unflushed_bytes(&self) -> u64 {
        self.unflushed.load(Ordering::Acquire)
    }

    /// Recomputes [`Shared::unflushed_bytes`]; call with the lock held
    /// after changing segments, the durable mark or the checkpoint.
    pub fn refresh_unflushed(&self, st: &SharedState) {
        let cp = st.checkpoint;
        let block = BLOCK_BYTES as u64;
        let bytes = st
            .segments
            .iter()
            .filter(|s| s.seqs.is_some_and(|(_, last)| last > cp.seq))
            .map(|s| {
                let start = if s.lap == cp.lap {
                    cp.end_offset
                } else {
                    block
                };
                s.used_end.saturating_sub(start)
            })
            .sum();
        self.unflushed.store(bytes, Ordering::Release);
    }
}
