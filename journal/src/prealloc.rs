//! The preallocator: one std thread per journal that keeps zero-filled
//! segments ready ahead of the writer (monoio has no fallocate, and
//! zero-filling runs at disk speed, far too slow for the commit path), and
//! recycles segments the checkpoint has passed.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::fault::FaultPlan;
use crate::segment::{create_segment, relap_segment};

/// How long to wait before retrying after ENOSPC or another I/O error.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(200);
/// How long a spare-but-not-urgent need waits for an old segment to
/// recycle before zero-filling a new one.
const WAIT_FOR_RECYCLABLE: Duration = Duration::from_millis(100);

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
    /// Why the last preparation failed, until one succeeds.
    unavailable: Option<Unavailable>,
    /// Already waited once for a recyclable segment for the current need.
    waited_for_recyclable: bool,
    /// The committer waiting for a segment.
    waker: Option<Waker>,
    shutdown: bool,
}

pub(crate) struct Prealloc {
    dir: PathBuf,
    fault_plan: Option<Arc<FaultPlan>>,
    segment_size_bytes: u64,
    spare_segments: usize,
    state: Mutex<State>,
    cv: Condvar,
}

impl Prealloc {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the thread. `ready` are spares found at open.
    pub fn start(
        dir: PathBuf,
        segment_size_bytes: u64,
        spare_segments: usize,
        active_lap: u64,
        ready: BTreeMap<u64, PathBuf>,
        recyclable: VecDeque<PathBuf>,
        fault_plan: Option<Arc<FaultPlan>>,
    ) -> io::Result<(Arc<Prealloc>, JoinHandle<()>)> {
        let p = Arc::new(Prealloc {
            dir,
            fault_plan,
            segment_size_bytes,
            spare_segments,
            state: Mutex::new(State {
                ready,
                recyclable,
                active_lap,
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
        self.lock().recyclable.extend(paths);
        self.cv.notify_all();
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
            let need = st.ready.len() < self.spare_segments;
            // Zero-filling a new segment costs a segment's worth of disk
            // bandwidth, taken from commits. While a spare is still ready,
            // give the checkpoint a moment to free an old segment instead.
            if need && st.recyclable.is_empty() && !st.ready.is_empty() && !st.waited_for_recyclable
            {
                st.waited_for_recyclable = true;
                st = self
                    .cv
                    .wait_timeout(st, WAIT_FOR_RECYCLABLE)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            if need {
                st.waited_for_recyclable = false;
                let reuse = st.recyclable.pop_front();
                drop(st);
                let result = self.prepare(next_lap, reuse);
                st = self.lock();
                match result {
                    Ok(path) => {
                        st.ready.insert(next_lap, path);
                        st.unavailable = None;
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

    fn prepare(&self, lap: u64, reuse: Option<PathBuf>) -> io::Result<PathBuf> {
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
        match reuse {
            Some(old) => relap_segment(&self.dir, &old, lap, self.segment_size_bytes),
            None => create_segment(&self.dir, lap, self.segment_size_bytes),
        }
    }
}
