//! Fault injection for tests: make the Nth write or fdatasync of a journal
//! fail, as a dying disk would. Compiled in always, so a running collector
//! can be tested too; without a plan the check costs one `Option` test.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Which journal I/O calls to fail. Counters start at 1 for the first call
/// made after the plan is installed; 0 disables that trigger.
#[derive(Debug, Default)]
pub struct FaultPlan {
    segments_out_of_space: AtomicBool,
    fail_write_at: AtomicU64,
    fail_sync_at: AtomicU64,
    writes: AtomicU64,
    syncs: AtomicU64,
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

    /// Whether segment preparation must fail with ENOSPC now.
    pub(crate) fn segments_out_of_space(&self) -> bool {
        self.segments_out_of_space.load(Ordering::SeqCst)
    }

    /// Commit writes attempted since the plan was installed.
    pub fn writes_seen(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Counts a write; true when this one must fail.
    pub(crate) fn on_write(&self) -> bool {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.fail_write_at.load(Ordering::SeqCst)
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
