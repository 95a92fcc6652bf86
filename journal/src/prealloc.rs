//! The preallocator: one std thread per journal that keeps segments ready
//! ahead of the writer (monoio has no fallocate, and zero-filling runs at
//! disk speed, far too slow for the commit path), and recycles segments
//! the checkpoint has passed. A new segment is zero-filled while no commit
//! runs (so commits overwrite written blocks, the fastest O_DIRECT case)
//! and only allocated (fallocate, no data written) while commits run: a
//! journal that grows under overload then writes each byte once, not
//! twice (zeros, then data). Beyond the spares it prepares
//! `prepared_segments` more, zero-filling them only while commits pause.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::fault::FaultPlan;
use crate::segment::{
    create_segment_allocated, create_segment_paced, create_segment_while_idle, relap_segment,
    Allocation,
};

/// How long to wait before retrying after ENOSPC or another I/O error.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(200);
/// How long a spare-but-not-urgent need waits for an old segment to
/// recycle before zero-filling a new one.
const WAIT_FOR_RECYCLABLE: Duration = Duration::from_millis(100);
/// The disk counts as idle for zero-filling a prepared (not yet needed)
/// segment once no commit has run for this long.
const IDLE_AFTER: Duration = Duration::from_millis(50);
/// How often a paused fill of a prepared segment looks again.
const IDLE_POLL: Duration = Duration::from_millis(10);
/// After a prepared segment failed (ENOSPC, say), how long before the next
/// try: it is not needed yet, so it must not churn the disk.
const PREPARED_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// Why a segment is not available right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// ENOSPC.
    NoSpace,
    /// Another I/O error, with its text.
    Io(String),
}

#[derive(Debug, Default)]
struct State {
    /// Prepared segments by lap.
    ready: BTreeMap<u64, PathBuf>,
    /// Old segments free for reuse, oldest first.
    recyclable: VecDeque<PathBuf>,
    /// The lap the writer uses now; spares are prepared after it.
    active_lap: u64,
    /// Segments the writer holds (taken, not yet recycled): prepared
    /// segments are wanted only while these plus the ready ones fall short
    /// of the target, so a journal full at its budget, commits refused and
    /// the disk idle, does not zero-fill segments it could never use.
    live: usize,
    /// Why the last preparation failed, until one succeeds.
    unavailable: Option<Unavailable>,
    /// Already waited once for a recyclable segment for the current need.
    waited_for_recyclable: bool,
    /// When preparing a segment beyond the spares last failed.
    prepared_failed_at: Option<Instant>,
    /// The committer waiting for a segment.
    waker: Option<Waker>,
    shutdown: bool,
}

pub(crate) struct Prealloc {
    dir: PathBuf,
    fault_plan: Option<Arc<FaultPlan>>,
    segment_size_bytes: u64,
    spare_segments: usize,
    prepared_segments: usize,
    /// Zero point of `last_commit_ms`.
    started: Instant,
    /// Milliseconds after `started` when the last commit finished, plus 1
    /// (0: none yet). Written by the committer, read by this thread.
    last_commit_ms: AtomicU64,
    /// Commits issued and not yet finished (written and synced, or failed).
    commits_in_flight: AtomicU64,
    /// Segment creation fell back to zero-filling (logged once).
    fallocate_unsupported: AtomicBool,
    state: Mutex<State>,
    cv: Condvar,
}

impl Prealloc {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the thread. `ready` are spares found at open.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        dir: PathBuf,
        segment_size_bytes: u64,
        spare_segments: usize,
        prepared_segments: usize,
        active_lap: u64,
        live: usize,
        ready: BTreeMap<u64, PathBuf>,
        recyclable: VecDeque<PathBuf>,
        fault_plan: Option<Arc<FaultPlan>>,
    ) -> io::Result<(Arc<Prealloc>, JoinHandle<()>)> {
        let p = Arc::new(Prealloc {
            dir,
            fault_plan,
            segment_size_bytes,
            spare_segments,
            prepared_segments,
            started: Instant::now(),
            last_commit_ms: AtomicU64::new(0),
            commits_in_flight: AtomicU64::new(0),
            fallocate_unsupported: AtomicBool::new(false),
            state: Mutex::new(State {
                ready,
                recyclable,
                active_lap,
                live,
                ..State::default()
            }),
            cv: Condvar::new(),
        });
        let worker = Arc::clone(&p);
        let handle = std::thread::Builder::new()
            .name("helios-journal-prealloc".into())
            .spawn(move || worker.run())?;
        Ok((p, handle))
    }

    /// Polls for the segment of `lap`. Pending until the thread has it;
    /// `Err` while space or the disk is unavailable (the caller fails the
    /// appends that need it and tries again later).
    pub fn poll_take(&self, lap: u64, cx: &mut Context<'_>) -> Poll<Result<PathBuf, Unavailable>> {
        let mut st = self.lock();
        if let Some(path) = st.ready.remove(&lap) {
            st.active_lap = lap;
            st.live += 1;
            drop(st);
            self.cv.notify_all();
            return Poll::Ready(Ok(path));
        }
        if let Some(why) = st.unavailable.clone() {
            return Poll::Ready(Err(why));
        }
        st.waker = Some(cx.waker().clone());
        drop(st);
        self.cv.notify_all();
        Poll::Pending
    }

    /// Whether the segment after `active_lap` can currently be had without
    /// waiting on a failure (appends check this before targeting it).
    pub fn unavailable(&self) -> Option<Unavailable> {
        self.lock().unavailable.clone()
    }

    /// Hands over segments the checkpoint has passed.
    pub fn recycle(&self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let mut st = self.lock();
        st.live = st.live.saturating_sub(paths.len());
        st.recyclable.extend(paths);
        drop(st);
        self.cv.notify_all();
    }

    /// Called by the committer when it issues a commit's write: until it
    /// finishes the disk is busy, however long it takes (a commit stalled
    /// past `IDLE_AFTER` must not read as an idle disk).
    pub fn note_commit_started(&self) {
        self.commits_in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Called by the committer after each commit: the disk is busy, so the
    /// zero-filling of prepared segments waits.
    pub fn note_commit(&self) {
        let ms = self.started.elapsed().as_millis() as u64 + 1;
        self.last_commit_ms.store(ms, Ordering::Relaxed);
        let finished =
            self.commits_in_flight
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        debug_assert!(finished.is_ok(), "a commit finished that was never started");
    }

    /// No commit in flight, and none finished for `IDLE_AFTER`.
    fn disk_idle(&self) -> bool {
        if self.commits_in_flight.load(Ordering::Relaxed) > 0 {
            return false;
        }
        let last = self.last_commit_ms.load(Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64 + 1;
        last == 0 || now.saturating_sub(last) >= IDLE_AFTER.as_millis() as u64
    }

    /// Between chunks of a prepared segment's zero-fill: returns once the
    /// disk is idle, or at once when the segment became urgent (the spares
    /// ran short: then it is filled at full speed, as a spare always was);
    /// `Interrupted` on shutdown.
    fn pace(&self) -> io::Result<()> {
        loop {
            {
                let st = self.lock();
                if st.shutdown {
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "journal closing",
                    ));
                }
                if st.ready.len() < self.spare_segments {
                    return Ok(());
                }
            }
            if self.disk_idle() {
                return Ok(());
            }
            std::thread::sleep(IDLE_POLL);
        }
    }

    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.cv.notify_all();
    }

    fn run(&self) {
        let mut st = self.lock();
        loop {
            if st.shutdown {
                return;
            }
            let next_lap = st
                .ready
                .keys()
                .next_back()
                .copied()
                .unwrap_or(st.active_lap)
                .max(st.active_lap)
                + 1;
            // Below the spares a segment is urgent; up to spares plus
            // prepared (counting those the writer holds beyond the active
            // one) it is only wanted, and zero-filled only while idle.
            let urgent = st.ready.len() < self.spare_segments;
            let held_beyond_active = st.live.saturating_sub(1);
            let need = urgent
                || st.ready.len() + held_beyond_active
                    < self.spare_segments + self.prepared_segments;
            // A new segment takes disk space, and its blocks are slower to
            // commit into (unwritten extents) or cost a segment's worth of
            // bandwidth (zero-fill). While a spare is still ready, give the
            // checkpoint a moment to free an old, written segment instead.
            if urgent
                && st.recyclable.is_empty()
                && !st.ready.is_empty()
                && !st.waited_for_recyclable
            {
                st.waited_for_recyclable = true;
                st = self
                    .cv
                    .wait_timeout(st, WAIT_FOR_RECYCLABLE)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            let paced = !urgent && st.recyclable.is_empty();
            if need && paced {
                let failed_lately = st
                    .prepared_failed_at
                    .is_some_and(|t| t.elapsed() < PREPARED_RETRY_AFTER_FAILURE);
                if failed_lately || !self.disk_idle() {
                    st = self
                        .cv
                        .wait_timeout(st, IDLE_POLL)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    continue;
                }
            }
            if need {
                st.waited_for_recyclable = false;
                let reuse = st.recyclable.pop_front();
                drop(st);
                let result = self.prepare(next_lap, reuse, paced);
                st = self.lock();
                match result {
                    Err(e) if paced => {
                        // Not needed yet: never make appends wait for it
                        // (no `unavailable`); try again much later.
                        if !st.shutdown {
                            tracing::warn!(dir = %self.dir.display(), lap = next_lap, error = %e, "cannot prepare journal segment ahead; trying again later");
                            st.prepared_failed_at = Some(Instant::now());
                        }
                        continue;
                    }
                    Ok(path) => {
                        st.ready.insert(next_lap, path);
                        st.unavailable = None;
                        st.prepared_failed_at = None;
                    }
                    Err(e) => {
                        tracing::warn!(dir = %self.dir.display(), lap = next_lap, error = %e, "cannot prepare journal segment; retrying");
                        st.unavailable = Some(if e.raw_os_error() == Some(libc::ENOSPC) {
                            Unavailable::NoSpace
                        } else {
                            Unavailable::Io(e.to_string())
                        });
                    }
                }
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
                if st.unavailable.is_some() {
                    st = self
                        .cv
                        .wait_timeout(st, RETRY_AFTER_FAILURE)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                continue;
            }
            // Keep a reserve of old segments as big as the spare count;
            // delete the rest so the journal gives disk space back.
            while st.recyclable.len() > self.spare_segments {
                if let Some(path) = st.recyclable.pop_front() {
                    if let Err(e) = fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot delete old journal segment");
                    }
                }
            }
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Recycles `reuse` as `lap`, or creates a new segment: zero-filled
    /// when `paced` (yielding the disk to commits, `pace`) or while the
    /// disk is idle, fallocated while commits run.
    fn prepare(&self, lap: u64, reuse: Option<PathBuf>, paced: bool) -> io::Result<PathBuf> {
        if self
            .fault_plan
            .as_ref()
            .is_some_and(|f| f.segments_out_of_space())
        {
            if let Some(old) = reuse {
                // Keep it for when space "returns".
                self.lock().recyclable.push_front(old);
            }
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        let size = self.segment_size_bytes;
        match reuse {
            Some(old) => relap_segment(&self.dir, &old, lap, size),
            None if paced => create_segment_paced(&self.dir, lap, size, &mut || self.pace()),
            // No commit to take the disk from: the fully written segment,
            // whose commits need no extent conversion, for as long as no
            // commit comes (then the rest is allocated, not written).
            None if self.disk_idle() => {
                create_segment_while_idle(&self.dir, lap, size, &mut || self.disk_idle())
                    .map(|(path, _)| path)
            }
            None => self.create_under_load(lap),
        }
    }

    /// A segment needed while commits run: allocated, not zero-filled, so
    /// the journal's bytes reach the disk once (zero-filling, on a
    /// filesystem without fallocate).
    fn create_under_load(&self, lap: u64) -> io::Result<PathBuf> {
        let refuse = self
            .fault_plan
            .as_ref()
            .is_some_and(|f| f.fallocate_refused());
        let (path, allocation) =
            create_segment_allocated(&self.dir, lap, self.segment_size_bytes, refuse)?;
        if allocation == Allocation::ZeroFilled
            && !self.fallocate_unsupported.swap(true, Ordering::Relaxed)
        {
            tracing::info!(dir = %self.dir.display(), "the filesystem has no fallocate: journal segments needed under load are zero-filled (every byte written twice)");
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A preallocator over an empty directory with nothing to prepare, so
    /// its thread never touches the disk.
    fn idle_prealloc(dir: &std::path::Path) -> (Arc<Prealloc>, JoinHandle<()>) {
        Prealloc::start(
            dir.to_path_buf(),
            1 << 20,
            0,
            0,
            1,
            1,
            BTreeMap::new(),
            VecDeque::new(),
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_commit_in_flight_longer_than_the_idle_time_keeps_the_disk_busy() {
        let tmp = tempfile::tempdir().unwrap();
        let (p, handle) = idle_prealloc(tmp.path());
        assert!(p.disk_idle(), "no commit yet");
        p.note_commit_started();
        std::thread::sleep(IDLE_AFTER * 2);
        assert!(!p.disk_idle(), "a stalled commit is not an idle disk");
        p.note_commit();
        assert!(!p.disk_idle(), "a commit just finished");
        std::thread::sleep(IDLE_AFTER * 2);
        assert!(p.disk_idle(), "no commit for IDLE_AFTER");
        p.shutdown();
        handle.join().unwrap();
    }

    #[test]
    fn the_disk_is_busy_until_every_overlapping_commit_finishes() {
        let tmp = tempfile::tempdir().unwrap();
        let (p, handle) = idle_prealloc(tmp.path());
        p.note_commit_started();
        p.note_commit_started();
        p.note_commit();
        std::thread::sleep(IDLE_AFTER * 2);
        assert!(!p.disk_idle(), "one of two commits still in flight");
        p.note_commit();
        std::thread::sleep(IDLE_AFTER * 2);
        assert!(p.disk_idle());
        p.shutdown();
        handle.join().unwrap();
    }
}
