//! The blocking commit path ([`crate::CommitPath::WriterThread`]): one
//! writer thread per journal takes each sealed group, writes it with one
//! positioned write on the segment's O_DIRECT file and fdatasyncs it when
//! the sync mode asks, then hands the buffer and the outcome back to the
//! committer task, waking it across threads (monoio's `sync` feature).
//!
//! It exists for the legacy (epoll) driver, whose file operations are plain
//! blocking syscalls on the calling thread: done on a core they would stall
//! every connection of that core for the length of an fdatasync. A journal
//! gets one thread per commit it may have in flight
//! (`max_commits_in_flight`), taking jobs from one queue, so overlapping
//! commits reach the device in parallel as on io_uring; the committer, not
//! this pool, completes them in order.

use std::fs::File;
use std::future::poll_fn;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;

use crate::aligned::AlignedBuf;
use crate::fault::{injected_error, FaultPlan};

/// Thread name (Linux keeps 15 bytes).
const THREAD_NAME: &str = "journal-writer";

/// One group to make durable.
struct Job {
    file: Arc<File>,
    buf: AlignedBuf,
    offset: u64,
    /// fdatasync after the write (false: the file is O_DSYNC).
    sync_data: bool,
    fault: Option<Arc<FaultPlan>>,
    done: Arc<Done>,
}

/// Where the writer thread leaves a job's outcome for the committer.
#[derive(Default)]
struct Done {
    state: Mutex<DoneState>,
}

#[derive(Default)]
struct DoneState {
    outcome: Option<(io::Result<()>, AlignedBuf)>,
    /// Set when the job was dropped unfinished (the thread died).
    abandoned: bool,
    waker: Option<Waker>,
}

impl Done {
    fn lock(&self) -> MutexGuard<'_, DoneState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, outcome: io::Result<()>, buf: AlignedBuf) {
        let waker = {
            let mut st = self.lock();
            st.outcome = Some((outcome, buf));
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Completes a job that was never finished (the writer thread panicked or
/// quit), so its committer fails the group instead of waiting forever.
struct FinishOnDrop(Arc<Done>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        let waker = {
            let mut st = self.0.lock();
            if st.outcome.is_some() {
                return;
            }
            st.abandoned = true;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// A journal's writer threads. Dropping the handle (or [`Self::stop`])
/// ends them after the jobs in hand.
pub(crate) struct CommitThread {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl CommitThread {
    /// Starts `threads` writer threads (at least one) sharing one queue.
    pub(crate) fn start(threads: usize) -> io::Result<CommitThread> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let pool = CommitThread {
            jobs: Mutex::new(Some(tx)),
            handles: Mutex::new(Vec::new()),
        };
        for _ in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(THREAD_NAME.into())
                .spawn(move || loop {
                    // The lock is held only while waiting for a job, never
                    // while writing one.
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => run_job(job),
                        Err(mpsc::RecvError) => return,
                    }
                })?;
            pool.handles
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(handle);
        }
        Ok(pool)
    }

    /// Writes `buf` at `offset` of `file` on the writer thread (then
    /// fdatasync when `sync_data`), and resolves once that is done, with
    /// the buffer back. `Ok` means durable.
    pub(crate) async fn commit(
        &self,
        file: Arc<File>,
        buf: AlignedBuf,
        offset: u64,
        sync_data: bool,
        fault: Option<Arc<FaultPlan>>,
    ) -> (io::Result<()>, AlignedBuf) {
        let done = Arc::new(Done::default());
        let job = Job {
            file,
            buf,
            offset,
            sync_data,
            fault,
            done: Arc::clone(&done),
        };
        let sent = match &*self.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(job).map_err(|mpsc::SendError(job)| job),
            None => Err(job),
        };
        if let Err(job) = sent {
            return (Err(gone()), job.buf);
        }
        poll_fn(|cx| {
            let mut st = done.lock();
            if let Some((outcome, buf)) = st.outcome.take() {
                return Poll::Ready((outcome, buf));
            }
            if st.abandoned {
                return Poll::Ready((Err(gone()), AlignedBuf::empty()));
            }
            st.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Ends the threads once their jobs in hand are done, and waits for
    /// them.
    pub(crate) fn stop(&self) {
        drop(self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            if h.join().is_err() {
                tracing::error!("journal writer thread panicked");
            }
        }
    }
}

impl Drop for CommitThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn gone() -> io::Error {
    io::Error::other("the journal's writer thread is gone")
}

/// The same steps, in the same order, as the io_uring committer: the
/// write, then (unless O_DSYNC made the write durable) fdatasync; an
/// injected fault stands for whichever step it names.
fn run_job(job: Job) {
    let Job {
        file,
        buf,
        offset,
        sync_data,
        fault,
        done,
    } = job;
    let guard = FinishOnDrop(Arc::clone(&done));
    let fault = fault.as_deref();
    let result = file
        .write_all_at(buf.as_slice(), offset)
        .and_then(|()| match fault {
            Some(f) if f.on_sync() => Err(injected_error("fdatasync")),
            _ if sync_data => file.sync_data(),
            _ => Ok(()),
        });
    done.finish(result, buf);
    drop(guard);
}
