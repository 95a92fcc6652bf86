//! The group-commit writer. Lives on one monoio runtime: appends copy
//! records into an aligned group buffer without blocking; one committer
//! task writes each group with a single O_DIRECT write starting on a fresh
//! block, makes it durable (O_DSYNC, or fdatasync), and only then completes
//! the group's tickets. Up to `max_commits_in_flight` groups are written
//! at once, each at its own place after the previous one, so a group need
//! not wait for the commit before it to finish; they complete strictly in
//! order all the same (FORMAT.md, "Overlapping commits"). Appends arriving
//! while the window is full fill the next group. The writes go through
//! io_uring, or (`CommitPath::WriterThread`, for the epoll driver) through
//! the journal's blocking writer threads; the rule is the same.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fs::OpenOptions;
use std::future::{poll_fn, Future};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::thread::JoinHandle;

use crate::aligned::AlignedBuf;
use crate::checkpoint::{write_checkpoint_until, Checkpoint, CheckpointStep, RecordIds};
use crate::commit_thread::CommitThread;
use crate::config::{CommitPath, JournalConfig, SyncMode};
use crate::disk::{check_dir, DiskCheck};
use crate::error::{JournalError, Result};
use crate::fault::{injected_error, HoldPoint};
use crate::format::{
    align_up, encode_marker, encode_record_with, padded_record_bytes, RecordHead, RecordKind,
    RecordMeta, BLOCK_BYTES, FLAG_COMMIT_START, FLAG_MAY_OVERLAP, MARKER_BYTES, MAX_APP_BYTES,
};
use crate::histogram::HistogramSnapshot;
use crate::prealloc::{Prealloc, Unavailable};
use crate::reader::JournalReader;
use crate::recovery::{recover, Recovered};
use crate::segment::{create_segment, extend_to_size, fsync_dir, remove_stale_temps};
use crate::shared::{DurableMark, JournalStats, SegmentInfo, Shared, SharedState};
use crate::stale::erase_commit_starts;

/// Group buffers kept for reuse instead of freed.
const MAX_FREE_BUFFERS: usize = 4;

/// Why a group did not become durable (cloneable, unlike `JournalError`).
#[derive(Debug, Clone)]
enum GroupFailure {
    Failed(String),
    Unavailable(Unavailable),
}

/// Completion slot shared by every ticket of one group.
#[derive(Default)]
struct GroupSlot {
    outcome: RefCell<Option<std::result::Result<(), GroupFailure>>>,
    wakers: RefCell<Vec<Waker>>,
}

impl GroupSlot {
    fn complete(&self, outcome: std::result::Result<(), GroupFailure>) {
        *self.outcome.borrow_mut() = Some(outcome);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// Proof of an append: await [`Ticket::durable`] before acknowledging.
/// Groups complete in order and a failure fails every later group too, so
/// a durable ticket implies every earlier ticket of this journal is durable.
pub struct Ticket {
    position: Checkpoint,
    slot: Rc<GroupSlot>,
    dir: Rc<PathBuf>,
}

impl Ticket {
    /// The record's sequence number.
    pub fn seq(&self) -> u64 {
        self.position.seq
    }

    /// The checkpoint to persist once this record is stored, so a flusher
    /// handed records in memory need not read them back.
    pub fn position(&self) -> Checkpoint {
        self.position
    }

    /// Resolves once the record's commit is written and fdatasynced, or
    /// with the error that prevented it.
    pub fn durable(&self) -> impl Future<Output = Result<()>> + '_ {
        poll_fn(move |cx| {
            if let Some(outcome) = self.slot.outcome.borrow().as_ref() {
                return Poll::Ready(outcome.clone().map_err(|f| to_error(f, &self.dir)));
            }
            self.slot.wakers.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        })
    }
}

fn to_error(f: GroupFailure, dir: &Path) -> JournalError {
    match f {
        GroupFailure::Failed(cause) => JournalError::Failed { cause },
        GroupFailure::Unavailable(Unavailable::NoSpace) => JournalError::NoSpace {
            dir: dir.to_path_buf(),
        },
        GroupFailure::Unavailable(Unavailable::Io(reason)) => JournalError::SegmentUnavailable {
            dir: dir.to_path_buf(),
            reason,
        },
    }
}

/// Records waiting to be committed together, destined for one place.
struct Group {
    lap: u64,
    offset: u64,
    buf: AlignedBuf,
    first_seq: u64,
    records: u32,
    record_bytes: usize,
    /// Where its marker starts in `buf` (once sealed).
    marker_at: usize,
    /// An earlier group was not yet durable when this one opened, and
    /// commits may overlap: its first record says so (`FLAG_MAY_OVERLAP`).
    may_overlap: bool,
    slot: Rc<GroupSlot>,
}

struct WriterState {
    open: Option<Group>,
    sealed: VecDeque<Group>,
    next_seq: u64,
    /// Where the open (or next) group starts.
    place_lap: u64,
    place_offset: u64,
    active_lap: u64,
    active_file: Option<Rc<SegmentFile>>,
    pending_bytes: usize,
    failed: Option<String>,
    closed: bool,
    committer_waker: Option<Waker>,
    committer_done: bool,
    done_wakers: Vec<Waker>,
    free_bufs: Vec<AlignedBuf>,
}

struct Inner {
    dir: Rc<PathBuf>,
    cfg: JournalConfig,
    segment_size_bytes: u64,
    max_record_bytes: usize,
    st: RefCell<WriterState>,
    shared: Arc<Shared>,
    prealloc: Arc<Prealloc>,
    prealloc_thread: Cell<Option<JoinHandle<()>>>,
    /// The blocking writer threads (`CommitPath::WriterThread` only).
    writer_thread: Option<CommitThread>,
    recovered: Recovered,
    disk: DiskCheck,
}

/// The open segment being committed to, by commit path.
enum SegmentFile {
    /// Registered with the io_uring runtime.
    IoUring(monoio::fs::File),
    /// A plain file the writer thread writes.
    Blocking(Arc<std::fs::File>),
}

/// What opening a journal found on disk.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    /// Torn final commits truncated (0 or 1).
    pub torn_commits: u64,
    /// Where the torn commit was.
    pub torn_at: Option<(PathBuf, u64)>,
    /// Commits found past the torn one that were in flight together with
    /// it (never acknowledged), dropped and erased.
    pub unacked_overlapping_commits: u64,
    /// Last durable record sequence.
    pub last_seq: u64,
    /// Checkpointed sequence (0 if none).
    pub checkpoint_seq: u64,
    /// The id fields of the last record this journal holds or held: the
    /// last durable record found, else the checkpoint's (its segment may be
    /// recycled). `None` for a new journal or a version 1 checkpoint with
    /// no record after it.
    pub last_record_ids: Option<RecordIds>,
}

/// A durable, group-committed journal. One per writer (per core); not
/// `Send`: it lives on the monoio runtime that opened it. Dropping it
/// commits what is pending in the background and stops its threads.
pub struct Journal {
    inner: Rc<Inner>,
}

impl Journal {
    /// Opens (creating if needed) the journal in `dir`, recovering from disk
    /// first, and starts its committer task on the current monoio runtime
    /// (whose driver must match `cfg.commit_path`). Fails with `Corrupt` if
    /// acked data is damaged, with `Volatile` on a memory filesystem and
    /// with `DirectIoRefused` where O_DIRECT is refused, unless the
    /// configuration allows them.
    pub async fn open(dir: impl AsRef<Path>, cfg: JournalConfig) -> Result<Journal> {
        cfg.validate()?;
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::io("create", &dir, e))?;
        let disk = check_dir(&dir, cfg.buffered_io, cfg.allow_volatile)?;
        remove_stale_temps(&dir)?;
        let mut rec = recover(&dir)?;
        if !rec.unacked_overlapping.is_empty() {
            tracing::warn!(
                dir = %dir.display(),
                commits = rec.unacked_overlapping.len(),
                "erasing commits that were in flight with the torn one (never acknowledged)"
            );
            erase_commit_starts(&rec.unacked_overlapping)?;
        }
        if rec.segments.is_empty() {
            create_segment(&dir, 1, cfg.segment_size_bytes)
                .map_err(|e| JournalError::io("create first segment", &dir, e))?;
            rec = recover(&dir)?;
        }
        let active = rec.segments[rec.active].clone();
        if active.file_len < active.size {
            extend_to_size(&active.path, active.size)?;
        }
        let cp = rec.checkpoint.unwrap_or_default();
        // Sort what is on disk: live segments, spares ahead, old ones.
        let mut live = Vec::new();
        let mut ready = BTreeMap::new();
        let mut recyclable = VecDeque::new();
        let mut removed = false;
        for seg in &rec.segments {
            let is_spare = seg.lap > active.lap;
            let holds_unstored = seg.seqs.is_some_and(|(_, last)| last > cp.seq);
            if seg.lap == active.lap || (!is_spare && holds_unstored) {
                live.push(SegmentInfo {
                    lap: seg.lap,
                    path: seg.path.clone(),
                    seqs: seg.seqs,
                    used_end: seg.used_end,
                });
            } else if is_spare
                && seg.lap == active.lap + 1 + ready.len() as u64
                && seg.size == cfg.segment_size_bytes
                && seg.file_len == seg.size
            {
                ready.insert(seg.lap, seg.path.clone());
            } else if !is_spare && seg.size == cfg.segment_size_bytes && seg.file_len == seg.size {
                recyclable.push_back(seg.path.clone());
            } else {
                // An irregular spare (a gap, another size): never give a file
                // a lap lower than it had, so delete it instead.
                std::fs::remove_file(&seg.path)
                    .map_err(|e| JournalError::io("remove segment", &seg.path, e))?;
                removed = true;
            }
        }
        if removed {
            fsync_dir(&dir)?;
        }
        let live_count = live.len();
        let durable = DurableMark {
            seq: rec.last_seq(),
            lap: active.lap,
            end_offset: active.used_end,
        };
        let shared = Arc::new(Shared::new(SharedState {
            segments: live,
            durable,
            checkpoint: cp,
        }));
        shared.refresh_unflushed(&shared.lock());
        let (prealloc, thread) = Prealloc::start(
            dir.clone(),
            cfg.segment_size_bytes,
            cfg.spare_segments,
            cfg.prepared_segments,
            active.lap,
            live_count,
            ready,
            recyclable,
            cfg.fault_plan.clone(),
        )
        .map_err(|e| JournalError::io("start preallocator", &dir, e))?;
        let writer_thread = match cfg.commit_path {
            CommitPath::IoUring => None,
            CommitPath::WriterThread => Some(
                CommitThread::start(cfg.max_commits_in_flight)
                    .map_err(|e| JournalError::io("start writer thread", &dir, e))?,
            ),
        };
        let file = open_segment(&active.path, &cfg)?;
        let max_record_bytes = cfg.effective_max_record_bytes();
        let inner = Rc::new(Inner {
            dir: Rc::new(dir),
            segment_size_bytes: cfg.segment_size_bytes,
            max_record_bytes,
            cfg,
            st: RefCell::new(WriterState {
                open: None,
                sealed: VecDeque::new(),
                next_seq: rec.next_seq,
                place_lap: active.lap,
                place_offset: active.used_end,
                active_lap: active.lap,
                active_file: Some(Rc::new(file)),
                pending_bytes: 0,
                failed: None,
                closed: false,
                committer_waker: None,
                committer_done: false,
                done_wakers: Vec::new(),
                free_bufs: Vec::new(),
            }),
            shared,
            prealloc,
            prealloc_thread: Cell::new(Some(thread)),
            writer_thread,
            recovered: rec,
            disk,
        });
        monoio::spawn(run_committer(Rc::clone(&inner)));
        Ok(Journal { inner })
    }

    /// What recovery found.
    pub fn recovery_report(&self) -> RecoveryReport {
        let r = &self.inner.recovered;
        RecoveryReport {
            torn_commits: r.torn_commits,
            torn_at: r.torn_at.clone(),
            unacked_overlapping_commits: r.unacked_overlapping.len() as u64,
            last_seq: r.last_seq(),
            checkpoint_seq: r.checkpoint.map_or(0, |c| c.seq),
            last_record_ids: r.last_record_ids.or_else(|| {
                r.checkpoint
                    .map(|c| c.ids)
                    .filter(|ids| *ids != RecordIds::default())
            }),
        }
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What the directory's filesystem was found to be at open (its name,
    /// whether it is a memory filesystem, whether commits are buffered).
    pub fn disk(&self) -> &DiskCheck {
        &self.inner.disk
    }

    /// Copies one record into the current group and returns its ticket.
    /// Never waits: it fails fast when the journal has failed, is over its
    /// pending budget, or needs a segment that cannot be had.
    pub fn append(&self, meta: &RecordMeta<'_>, payload: &[u8]) -> Result<Ticket> {
        self.append_with(meta, payload.len(), |out| out.copy_from_slice(payload))
    }

    /// [`Journal::append`] of a payload of `payload_len` bytes that `fill`
    /// writes straight into the group buffer (it is handed exactly that
    /// many bytes and must write them all): a caller that frames its
    /// payload from other data makes no copy of it first. `fill` runs only
    /// if the record is accepted.
    pub fn append_with(
        &self,
        meta: &RecordMeta<'_>,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<Ticket> {
        let inner = &*self.inner;
        let mut st = inner.st.borrow_mut();
        if let Some(cause) = &st.failed {
            return Err(JournalError::Failed {
                cause: cause.clone(),
            });
        }
        if st.closed {
            return Err(JournalError::Closed);
        }
        if meta.app.len() > MAX_APP_BYTES {
            return Err(JournalError::RecordTooLarge {
                record_bytes: meta.app.len(),
                max_record_bytes: MAX_APP_BYTES,
            });
        }
        let rec_bytes = padded_record_bytes(meta.app.len(), payload_len);
        if rec_bytes > inner.max_record_bytes {
            return Err(JournalError::RecordTooLarge {
                record_bytes: rec_bytes,
                max_record_bytes: inner.max_record_bytes,
            });
        }
        if st.pending_bytes + rec_bytes > inner.cfg.max_pending_bytes {
            return Err(JournalError::Backpressure {
                pending_bytes: st.pending_bytes,
                max_pending_bytes: inner.cfg.max_pending_bytes,
            });
        }
        if let Some(g) = &st.open {
            let grown = g.buf.len() + rec_bytes;
            let fits_segment = g.offset + (grown + MARKER_BYTES) as u64 <= inner.segment_size_bytes;
            if grown > inner.cfg.group_target_bytes || !fits_segment {
                seal_open_group(inner, &mut st);
            }
        }
        if st.open.is_none() {
            start_group(inner, &mut st, rec_bytes)?;
        }
        let seq = st.next_seq;
        let Some(group) = st.open.as_mut() else {
            unreachable!("start_group created the open group");
        };
        let flags = if group.records == 0 && group.may_overlap {
            FLAG_COMMIT_START | FLAG_MAY_OVERLAP
        } else if group.records == 0 {
            FLAG_COMMIT_START
        } else {
            0
        };
        let out = group.buf.extend(rec_bytes);
        let head = RecordHead {
            kind: RecordKind::Events,
            flags,
            lap: group.lap,
            seq,
        };
        encode_record_with(out, head, meta, payload_len, fill);
        let position = Checkpoint {
            seq,
            lap: group.lap,
            end_offset: group.offset + group.buf.len() as u64,
            ids: RecordIds {
                id_base: meta.id_base,
                event_count: meta.event_count,
            },
        };
        group.records += 1;
        group.record_bytes += rec_bytes;
        let slot = Rc::clone(&group.slot);
        st.next_seq += 1;
        st.pending_bytes += rec_bytes;
        if let Some(w) = st.committer_waker.take() {
            w.wake();
        }
        Ok(Ticket {
            position,
            slot,
            dir: Rc::clone(&inner.dir),
        })
    }

    /// Appends one record and waits until it is durable.
    pub async fn append_durable(&self, meta: &RecordMeta<'_>, payload: &[u8]) -> Result<u64> {
        let ticket = self.append(meta, payload)?;
        ticket.durable().await?;
        Ok(ticket.seq())
    }

    /// Sequence of the last durable record (0: none).
    pub fn durable_seq(&self) -> u64 {
        self.inner
            .shared
            .durable_seq
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Commit counters since open (group sizes = records / commits).
    pub fn stats(&self) -> JournalStats {
        self.inner.shared.stats()
    }

    /// A `Send + Sync` view of this journal's counters for metrics.
    pub fn monitor(&self) -> JournalMonitor {
        JournalMonitor {
            shared: Arc::clone(&self.inner.shared),
        }
    }

    /// Bytes written but not yet covered by a checkpoint (for disk budgets).
    pub fn unflushed_bytes(&self) -> u64 {
        self.inner.shared.unflushed_bytes()
    }

    /// True once a write or fdatasync failed; reopen to recover.
    pub fn is_failed(&self) -> bool {
        self.inner.st.borrow().failed.is_some()
    }

    /// A reader of committed records after `after_seq` (`Send`: use it on
    /// a flusher thread).
    pub fn reader(&self, after_seq: u64) -> JournalReader {
        JournalReader::new(Arc::clone(&self.inner.shared), after_seq)
    }

    /// A handle that persists checkpoints and lets old segments be recycled
    /// (`Send`: use it on a flusher thread).
    pub fn checkpointer(&self) -> Checkpointer {
        Checkpointer {
            dir: self.inner.dir.to_path_buf(),
            shared: Arc::clone(&self.inner.shared),
            prealloc: Arc::clone(&self.inner.prealloc),
        }
    }

    /// Commits what is pending, stops the committer and the preallocator.
    /// Appends made after this fail with `Closed`.
    pub async fn close(&self) -> Result<()> {
        let inner = &*self.inner;
        let last = {
            let mut st = inner.st.borrow_mut();
            st.closed = true;
            if let Some(w) = st.committer_waker.take() {
                w.wake();
            }
            st.open
                .as_ref()
                .or(st.sealed.back())
                .map(|g| Rc::clone(&g.slot))
        };
        poll_fn(|cx| {
            let mut st = inner.st.borrow_mut();
            if st.committer_done {
                Poll::Ready(())
            } else {
                st.done_wakers.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        inner.prealloc.shutdown();
        if let Some(handle) = inner.prealloc_thread.take() {
            let _ = handle.join();
        }
        if let Some(writer) = &inner.writer_thread {
            writer.stop();
        }
        match last.and_then(|s| s.outcome.borrow().clone()) {
            Some(Err(f)) => Err(to_error(f, &inner.dir)),
            _ => Ok(()),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let mut st = self.inner.st.borrow_mut();
        st.closed = true;
        if let Some(w) = st.committer_waker.take() {
            w.wake();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Join, so no segment file is still being written once the last
        // handle is gone (a later open of the directory must see it whole).
        self.prealloc.shutdown();
        if let Some(handle) = self.prealloc_thread.take() {
            let _ = handle.join();
        }
        if let Some(writer) = &self.writer_thread {
            writer.stop();
        }
    }
}

/// Opens a segment for commits: O_DIRECT (plus O_DSYNC in that sync
/// mode), or neither with `buffered_io`; as a file of the commit path.
fn open_segment(path: &Path, cfg: &JournalConfig) -> Result<SegmentFile> {
    let direct = if cfg.buffered_io { 0 } else { libc::O_DIRECT };
    let flags = match cfg.effective_sync_mode() {
        SyncMode::Dsync => direct | libc::O_DSYNC,
        SyncMode::Fdatasync => direct,
    };
    let op = if cfg.buffered_io {
        "open (buffered)"
    } else {
        "open O_DIRECT"
    };
    let std_file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| JournalError::io(op, path, e))?;
    match cfg.commit_path {
        CommitPath::IoUring => monoio::fs::File::from_std(std_file)
            .map(SegmentFile::IoUring)
            .map_err(|e| JournalError::io("register", path, e)),
        CommitPath::WriterThread => Ok(SegmentFile::Blocking(Arc::new(std_file))),
    }
}

/// Opens a new group at the current placement, moving to the next segment
/// if the record (plus a marker) does not fit in this one.
fn start_group(inner: &Inner, st: &mut WriterState, rec_bytes: usize) -> Result<()> {
    let need = align_up(rec_bytes + MARKER_BYTES, BLOCK_BYTES) as u64;
    if st.place_offset + need > inner.segment_size_bytes {
        st.place_lap += 1;
        st.place_offset = BLOCK_BYTES as u64;
    }
    if st.place_lap != st.active_lap {
        if let Some(why) = inner.prealloc.unavailable() {
            return Err(to_error(GroupFailure::Unavailable(why), &inner.dir));
        }
    }
    let buf = st
        .free_bufs
        .pop()
        .unwrap_or_else(|| AlignedBuf::zeroed(inner.cfg.group_target_bytes + BLOCK_BYTES));
    st.open = Some(Group {
        lap: st.place_lap,
        offset: st.place_offset,
        buf,
        first_seq: st.next_seq,
        records: 0,
        record_bytes: 0,
        marker_at: 0,
        // Every commit this group can be in flight with holds records
        // appended before it opened, not yet durable then.
        may_overlap: inner.cfg.max_commits_in_flight > 1 && st.pending_bytes > 0,
        slot: Rc::new(GroupSlot::default()),
    });
    Ok(())
}

/// Closes the open group with its marker and queues it for the committer.
fn seal_open_group(inner: &Inner, st: &mut WriterState) {
    let Some(mut g) = st.open.take() else { return };
    debug_assert!(g.records > 0, "empty groups are never sealed");
    g.marker_at = g.buf.len();
    let out = g.buf.extend(MARKER_BYTES);
    encode_marker(out, g.lap, g.first_seq, g.records, 0);
    g.buf.pad_to_block();
    debug_assert!(g.offset + g.buf.len() as u64 <= inner.segment_size_bytes);
    st.place_lap = g.lap;
    st.place_offset = g.offset + g.buf.len() as u64;
    st.sealed.push_back(g);
}

/// Fails `failed` (in sequence order) and every group queued behind it
/// (they cannot be written out of order), and rewinds sequence and
/// placement to the first of them.
fn fail_groups(st: &mut WriterState, failed: Vec<Group>, why: GroupFailure) {
    let Some(first) = failed.first() else { return };
    st.next_seq = first.first_seq;
    st.place_lap = first.lap;
    st.place_offset = first.offset;
    let mut all = failed;
    all.extend(st.sealed.drain(..));
    all.extend(st.open.take());
    for g in all {
        st.pending_bytes -= g.record_bytes;
        g.slot.complete(Err(why.clone()));
    }
}

/// What a commit write returns: the outcome and the buffer back.
type WriteOutcome = (std::io::Result<()>, AlignedBuf);

/// A group whose write (and sync) has been issued.
struct InFlight<'a> {
    /// `None` once the group was failed (a predecessor failed): the write
    /// is still driven to its end, so nothing lands after the committer
    /// stops, but its outcome is ignored.
    group: Option<Group>,
    io: std::pin::Pin<Box<dyn Future<Output = WriteOutcome> + 'a>>,
    outcome: Option<WriteOutcome>,
    submitted: std::time::Instant,
    /// Microseconds from submission to the write's completion.
    io_us: u64,
}

/// The committer: keeps up to `max_commits_in_flight` groups written and
/// synced concurrently, and completes them strictly in order: a group's
/// tickets resolve (and the durable mark advances) only once it and every
/// earlier group are durable. A failed group fails every later one, even
/// one whose write already succeeded.
async fn run_committer(inner: Rc<Inner>) {
    let inner = &*inner;
    let mut flight: VecDeque<InFlight<'_>> = VecDeque::new();
    poll_fn(|cx| poll_committer(inner, &mut flight, cx)).await;
    let mut st = inner.st.borrow_mut();
    st.committer_done = true;
    for w in st.done_wakers.drain(..) {
        w.wake();
    }
}

/// One pass of the committer; `Ready` once it is done for good (closed
/// and drained, or failed and drained).
fn poll_committer<'a>(
    inner: &'a Inner,
    flight: &mut VecDeque<InFlight<'a>>,
    cx: &mut std::task::Context<'_>,
) -> Poll<()> {
    loop {
        let mut progressed = false;
        for f in flight.iter_mut().filter(|f| f.outcome.is_none()) {
            if let Poll::Ready(outcome) = f.io.as_mut().poll(cx) {
                f.io_us = f.submitted.elapsed().as_micros() as u64;
                f.outcome = Some(outcome);
                inner.prealloc.note_commit();
            }
        }
        while flight.front().is_some_and(|f| f.outcome.is_some()) {
            let Some(f) = flight.pop_front() else { break };
            progressed = true;
            finish_commit(inner, f, flight);
        }
        let mut st = inner.st.borrow_mut();
        // A failed write further back: start nothing more, it will fail
        // everything after it once its turn comes.
        let later_failed = flight
            .iter()
            .any(|f| f.group.is_some() && matches!(f.outcome, Some((Err(_), _))));
        while st.failed.is_none() && !later_failed && flight.len() < inner.cfg.max_commits_in_flight
        {
            if st.sealed.is_empty() && st.open.is_some() {
                seal_open_group(inner, &mut st);
            }
            let Some(group) = st.sealed.pop_front() else {
                break;
            };
            let file = match poll_segment_file(inner, &mut st, group.lap, cx) {
                Poll::Pending => {
                    st.sealed.push_front(group);
                    break;
                }
                Poll::Ready(Ok(file)) => file,
                Poll::Ready(Err(why)) => {
                    if let GroupFailure::Failed(cause) = &why {
                        st.failed = Some(cause.clone());
                    }
                    fail_groups(&mut st, vec![group], why);
                    progressed = true;
                    continue;
                }
            };
            flight.push_back(start_commit(inner, file, group, flight.front()));
            progressed = true;
        }
        let queued = !st.sealed.is_empty() || st.open.is_some();
        let finished = flight.is_empty() && (st.failed.is_some() || (st.closed && !queued));
        if finished {
            return Poll::Ready(());
        }
        if !progressed {
            st.committer_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }
}

/// Issues the write of `group` to `file`, recording in its marker how many
/// records of earlier commits are still in flight (`oldest` is the oldest
/// of them), so recovery can tell this commit was never acknowledged if
/// one of those turns out torn.
fn start_commit<'a>(
    inner: &'a Inner,
    file: Rc<SegmentFile>,
    mut group: Group,
    oldest: Option<&InFlight<'a>>,
) -> InFlight<'a> {
    let in_flight_from = oldest
        .and_then(|f| f.group.as_ref())
        .map_or(group.first_seq, |g| g.first_seq);
    debug_assert!(in_flight_from <= group.first_seq);
    let overlap_records = group.first_seq - in_flight_from;
    debug_assert!(
        overlap_records == 0 || group.may_overlap,
        "a group in flight with an earlier one was flagged when it opened"
    );
    if overlap_records > 0 {
        let at = group.marker_at;
        encode_marker(
            &mut group.buf.as_full_mut()[at..at + MARKER_BYTES],
            group.lap,
            group.first_seq,
            group.records,
            overlap_records,
        );
    }
    let buf = std::mem::replace(&mut group.buf, AlignedBuf::empty());
    let offset = group.offset;
    inner.prealloc.note_commit_started();
    InFlight {
        group: Some(group),
        io: Box::pin(write_group(inner, file, buf, offset)),
        outcome: None,
        submitted: std::time::Instant::now(),
        io_us: 0,
    }
}

/// Writes one group and makes it durable: O_DSYNC (the write completes
/// only once durable) or write + fdatasync, through io_uring or on a
/// writer thread. An injected fault stands for the step it names.
async fn write_group(
    inner: &Inner,
    file: Rc<SegmentFile>,
    buf: AlignedBuf,
    offset: u64,
) -> WriteOutcome {
    let fault = inner.cfg.fault_plan.as_deref();
    let write_no = fault.map(|f| f.on_write());
    if let (Some(f), Some(Ok(n) | Err(n))) = (fault, write_no) {
        poll_fn(|cx| f.poll_hold(n, HoldPoint::BeforeWrite, cx)).await;
    }
    if let Some(Err(_)) = write_no {
        return (Err(injected_error("write")), buf);
    }
    let needs_sync = inner.cfg.effective_sync_mode() == SyncMode::Fdatasync;
    let (result, buf) = match &*file {
        SegmentFile::IoUring(file) => {
            let (written, buf) = file.write_all_at(buf, offset).await;
            let result = match written {
                Ok(()) if fault.is_some_and(|f| f.on_sync()) => Err(injected_error("fdatasync")),
                Ok(()) if needs_sync => file.sync_data().await,
                other => other,
            };
            (result, buf)
        }
        SegmentFile::Blocking(file) => {
            let Some(writer) = &inner.writer_thread else {
                unreachable!("a blocking segment file is opened only with a writer thread");
            };
            writer
                .commit(
                    Arc::clone(file),
                    buf,
                    offset,
                    needs_sync,
                    inner.cfg.fault_plan.clone(),
                )
                .await
        }
    };
    if let (Some(f), Some(Ok(n))) = (fault, write_no) {
        f.on_write_done();
        if result.is_ok() {
            poll_fn(|cx| f.poll_hold(n, HoldPoint::AfterSync, cx)).await;
        }
    }
    (result, buf)
}

/// Completes the oldest in-flight commit, whose write has finished: on
/// success its tickets resolve and the durable mark moves past it; on
/// failure the journal fails, and so does every later group, in flight
/// (whatever its own outcome) or queued.
fn finish_commit(inner: &Inner, done: InFlight<'_>, later: &mut VecDeque<InFlight<'_>>) {
    let Some(group) = done.group else { return };
    let Some((result, mut buf)) = done.outcome else {
        unreachable!("only finished writes are completed");
    };
    let mut st = inner.st.borrow_mut();
    if let Err(e) = result {
        // Never retry an fdatasync and assume success: the page cache may
        // have dropped the dirty pages. Fail, and let reopen read the disk.
        let cause = format!(
            "commit at {} offset {}: {e}",
            segment_name(inner, group.lap),
            group.offset
        );
        tracing::error!(dir = %inner.dir.display(), %cause, "journal commit failed; journal is now failed");
        st.failed = Some(cause.clone());
        let mut failed = vec![group];
        failed.extend(later.iter_mut().filter_map(|f| f.group.take()));
        fail_groups(&mut st, failed, GroupFailure::Failed(cause));
        return;
    }
    let end_offset = group.offset + buf.len() as u64;
    let last_seq = group.first_seq + group.records as u64 - 1;
    debug_assert_eq!(
        last_seq + 1,
        later
            .iter()
            .find_map(|f| f.group.as_ref())
            .map_or(last_seq + 1, |g| g.first_seq),
        "in-flight groups are contiguous"
    );
    inner.shared.on_durable(
        DurableMark {
            seq: last_seq,
            lap: group.lap,
            end_offset,
        },
        group.first_seq,
    );
    inner
        .shared
        .count_commit(group.records as u64, buf.len() as u64, done.io_us);
    st.pending_bytes -= group.record_bytes;
    buf.clear();
    if st.free_bufs.len() < MAX_FREE_BUFFERS && buf.capacity() <= inner.cfg.group_target_bytes * 2 {
        st.free_bufs.push(buf);
    }
    drop(st);
    group.slot.complete(Ok(()));
}

fn segment_name(inner: &Inner, lap: u64) -> String {
    crate::segment::segment_path(&inner.dir, lap)
        .display()
        .to_string()
}

/// The open O_DIRECT file of `lap`, switching segments when the group is
/// the first of a new one (the last group of the old segment may still be
/// in flight: it holds its own handle to the old file).
fn poll_segment_file(
    inner: &Inner,
    st: &mut WriterState,
    lap: u64,
    cx: &mut std::task::Context<'_>,
) -> Poll<std::result::Result<Rc<SegmentFile>, GroupFailure>> {
    if st.active_lap == lap {
        if let Some(f) = &st.active_file {
            return Poll::Ready(Ok(Rc::clone(f)));
        }
    }
    let path = match inner.prealloc.poll_take(lap, cx) {
        Poll::Pending => return Poll::Pending,
        Poll::Ready(Err(why)) => return Poll::Ready(Err(GroupFailure::Unavailable(why))),
        Poll::Ready(Ok(path)) => path,
    };
    // The preallocator has moved on past this lap: failing to open it now
    // is not something a retry of the same lap can fix.
    let file = match open_segment(&path, &inner.cfg) {
        Ok(f) => Rc::new(f),
        Err(e) => return Poll::Ready(Err(GroupFailure::Failed(e.to_string()))),
    };
    {
        let mut shared = inner.shared.lock();
        shared.segments.push(SegmentInfo {
            lap,
            path: path.clone(),
            seqs: None,
            used_end: BLOCK_BYTES as u64,
        });
    }
    st.active_lap = lap;
    st.active_file = Some(Rc::clone(&file));
    Poll::Ready(Ok(file))
}

/// Read-only figures of one journal, from any thread.
#[derive(Clone)]
pub struct JournalMonitor {
    shared: Arc<Shared>,
}

impl JournalMonitor {
    /// Commit counters.
    pub fn stats(&self) -> JournalStats {
        self.shared.stats()
    }

    /// Bytes committed but not yet checkpointed.
    pub fn unflushed_bytes(&self) -> u64 {
        self.shared.unflushed_bytes()
    }

    /// Records durable but not yet checkpointed (the flusher's lag).
    pub fn unflushed_records(&self) -> u64 {
        let durable = self
            .shared
            .durable_seq
            .load(std::sync::atomic::Ordering::Acquire);
        let checkpoint = self
            .shared
            .checkpoint_seq
            .load(std::sync::atomic::Ordering::Acquire);
        durable.saturating_sub(checkpoint)
    }

    /// Bytes per commit.
    pub fn commit_bytes(&self) -> HistogramSnapshot {
        self.shared.commit_bytes.snapshot()
    }

    /// Microseconds per commit (write to durable).
    pub fn commit_latency_us(&self) -> HistogramSnapshot {
        self.shared.commit_latency_us.snapshot()
    }
}

/// Persists checkpoints for one journal from any thread.
#[derive(Clone)]
pub struct Checkpointer {
    dir: PathBuf,
    shared: Arc<Shared>,
    prealloc: Arc<Prealloc>,
}

impl Checkpointer {
    /// Durably records that every record up to `cp.seq` is stored, then
    /// hands segments entirely before it to the preallocator for reuse.
    /// Checkpoints must not go backwards or past the durable mark.
    pub fn advance(&self, cp: Checkpoint) -> Result<()> {
        {
            let st = self.shared.lock();
            assert!(cp.seq >= st.checkpoint.seq, "checkpoint moved backwards");
            assert!(cp.seq <= st.durable.seq, "checkpoint past the durable mark");
        }
        // The directory fsync that makes the rename durable is needed only
        // before a segment is recycled: until then, a crash that loses the
        // rename leaves the older checkpoint, and replaying from it is
        // harmless (stores are idempotent). This saves an fsync per batch.
        write_checkpoint_until(&self.dir, &cp, Some(CheckpointStep::Rename))?;
        let recyclable = {
            let mut st = self.shared.lock();
            st.checkpoint = cp;
            // Only segments before the durable mark's: commits past the
            // mark may still be in flight, in its segment or (after a
            // switch) in the next one, and the mark's segment may be
            // receiving one now.
            let durable_lap = st.durable.lap;
            let (old, keep): (Vec<_>, Vec<_>) = st.segments.drain(..).partition(|s| {
                s.lap < durable_lap && s.seqs.is_none_or(|(_, last)| last <= cp.seq)
            });
            st.segments = keep;
            self.shared.refresh_unflushed(&st);
            old.into_iter().map(|s| s.path).collect::<Vec<_>>()
        };
        self.shared
            .checkpoint_seq
            .store(cp.seq, std::sync::atomic::Ordering::Release);
        if !recyclable.is_empty() {
            fsync_dir(&self.dir)?;
        }
        self.prealloc.recycle(recyclable);
        Ok(())
    }

    /// The last persisted checkpoint.
    pub fn current(&self) -> Checkpoint {
        self.shared.lock().checkpoint
    }
}
