//! Delivery counters, updated lock-free by `record()` and the sender.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a client's delivery counters since it was built.
///
/// Every recorded event ends in exactly one of `sent`, `rejected` or
/// `dropped`, or is still on its way; so after a successful `flush`,
/// `recorded == sent + rejected + dropped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls to `record()` / `record_serialize()`.
    pub recorded: u64,
    /// Events the server acknowledged as stored.
    pub sent: u64,
    /// Events the server refused (per-event rejects and whole-batch 4xx).
    pub rejected: u64,
    /// Events lost in the client: queue full, invalid or too large, retries
    /// exhausted, shutdown deadline passed. Each was logged.
    pub dropped: u64,
    /// The part of `dropped` lost because the queue was full.
    pub dropped_queue_full: u64,
    /// Send attempts that were retries of an earlier failed attempt.
    pub retried: u64,
    /// Requests that got a 2xx answer.
    pub batches_sent: u64,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) recorded: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
}

/// Adds `n` to a counter. Relaxed: counters are statistics, they order
/// nothing else.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// Reads every counter (each individually; the snapshot is not atomic
    /// as a whole while events are in flight).
    pub(crate) fn snapshot(&self) -> Stats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            recorded: read(&self.recorded),
            sent: read(&self.sent),
            rejected: read(&self.rejected),
            dropped: read(&self.dropped),
            dropped_queue_full: read(&self.dropped_queue_full),
            retried: read(&self.retried),
            batches_sent: read(&self.batches_sent),
        }
    }
}
