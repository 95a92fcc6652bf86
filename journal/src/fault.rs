//! Fault injection for tests: make the Nth write or fdatasync of a journal
//! fail, as a dying disk would. Compiled in always, so a running collector
//! can be tested too; without a plan the check costs one `Option` test.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Which journal I/O calls to fail or hold. Counters start at 1 for the
/// first call made after the plan is installed; 0 disables that trigger.
#[derive(Debug, Default)]
pub struct FaultPlan {
    segments_out_of_space: AtomicBool,
    fallocate_refused: AtomicBool,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    writes: AtomicU64,
    writes_done: AtomicU64,
    syncs: AtomicU64,
    hold: Mutex<Hold>,
}

/// Where a held commit write waits (see [`FaultPlan::hold_nth_write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HoldPoint {
    /// Before the write is issued: nothing of the group reaches the disk.
    #[default]
    BeforeWrite,
    /// After the write (and fdatasync) succeeded, before the committer
    /// hears of it: the group is durable but not yet acknowledged.
    AfterSync,
}

/// The one hold a plan may carry.
#[derive(Debug, Default)]
struct Hold {
    /// The write number to hold (0: none).
    at: u64,
    point: HoldPoint,
    released: bool,
    /// A write is waiting at the hold now.
    waiting: bool,
    waker: Option<Waker>,
}

impl FaultPlan {
    /// A plan that fails nothing yet.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// Fails the `n`th commit write from now (1 = the next one).
    pub fn fail_nth_write(&self, n: u64) {
        let base = self.writes.load(Ordering::SeqCst);
        self.fail_write_at.store(base + n, Ordering::SeqCst);
    }

    /// Fails the `n`th commit fdatasync from now (1 = the next one).
    pub fn fail_nth_sync(&self, n: u64) {
        let base = self.syncs.load(Ordering::SeqCst);
        self.fail_sync_at.store(base + n, Ordering::SeqCst);
    }

    /// While set, preparing a new or recycled segment fails with ENOSPC, as
    /// on a full disk.
    pub fn set_segments_out_of_space(&self, full: bool) {
        self.segments_out_of_space.store(full, Ordering::SeqCst);
    }

    /// While set, creating a segment with `fallocate` fails with
    /// EOPNOTSUPP, as on a filesystem without it (the preallocator then
    /// zero-fills).
    pub fn set_fallocate_refused(&self, refused: bool) {
        self.fallocate_refused.store(refused, Ordering::SeqCst);
    }

    /// Whether `fallocate` must be refused now.
    pub(crate) fn fallocate_refused(&self) -> bool {
        self.fallocate_refused.load(Ordering::SeqCst)
    }

    /// Whether segment preparation must fail with ENOSPC now.
    pub(crate) fn segments_out_of_space(&self) -> bool {
        self.segments_out_of_space.load(Ordering::SeqCst)
    }

    /// Commit writes attempted since the plan was installed.
    pub fn writes_seen(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Commit writes whose I/O has finished (either way) since the plan was
    /// installed; a held write counts once its I/O is done.
    pub fn writes_done(&self) -> u64 {
        self.writes_done.load(Ordering::SeqCst)
    }

    /// Makes the `n`th commit write from now (1 = the next one) wait at
    /// `point` until [`Self::release`]: with several commits in flight,
    /// this is how a test makes a later commit finish first, or stops a
    /// process between two overlapping commits.
    pub fn hold_nth_write(&self, n: u64, point: HoldPoint) {
        let base = self.writes.load(Ordering::SeqCst);
        let mut hold = self.lock_hold();
        *hold = Hold {
            at: base + n,
            point,
            ..Hold::default()
        };
    }

    /// True while the held write is waiting at its hold point.
    pub fn is_holding(&self) -> bool {
        self.lock_hold().waiting
    }

    /// Lets the held write go on (or pass its hold point without waiting).
    pub fn release(&self) {
        let waker = {
            let mut hold = self.lock_hold();
            hold.released = true;
            hold.waiting = false;
            hold.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn lock_hold(&self) -> MutexGuard<'_, Hold> {
        self.hold.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a write and returns its number; `Err` when it must fail.
    pub(crate) fn on_write(&self) -> Result<u64, u64> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_write_at.load(Ordering::SeqCst) {
            Err(n)
        } else {
            Ok(n)
        }
    }

    /// Counts a write whose I/O finished.
    pub(crate) fn on_write_done(&self) {
        self.writes_done.fetch_add(1, Ordering::SeqCst);
    }

    /// Pending while write `n` must wait at `point`.
    pub(crate) fn poll_hold(&self, n: u64, point: HoldPoint, cx: &mut Context<'_>) -> Poll<()> {
        let mut hold = self.lock_hold();
        if hold.at != n || hold.point != point || hold.released {
            return Poll::Ready(());
        }
        hold.waiting = true;
        hold.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Counts an fdatasync; true when this one must fail.
    pub(crate) fn on_sync(&self) -> bool {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.fail_sync_at.load(Ordering::SeqCst)
    }
}

/// The error an injected fault returns (EIO, what a failing disk reports).
pub(crate) fn injected_error(what: &str) -> std::io::Error {
    std::io::Error::other(format!("injected {what} failure (EIO)"))
}
