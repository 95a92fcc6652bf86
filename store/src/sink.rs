//! The [`Sink`] trait: what a flusher needs from a store, whatever it is.
//!
//! The trait is synchronous on purpose. Flushers run on their own threads,
//! off the io_uring cores, and write one batch at a time; a sync call is the
//! simplest contract that fits every backend:
//! - SQLite is synchronous already;
//! - the MongoDB sink owns a tokio runtime and `block_on`s the driver
//!   inside its flusher thread;
//! - the collector's relay sink (HTTP to an upstream collector, in
//!   `helios-ingest`) is a blocking HTTP client.
//!
//! A `Sink` is used from one thread at a time (`&mut self`), and is `Send` so
//! a flusher can be started on its own thread with it.

use crate::error::BoxError;
use crate::model::EventDoc;
use crate::ObjectId;

/// How one batch was stored. On success,
/// `inserted + duplicates == batch.len()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// Events that were not in the store before this batch.
    pub inserted: u64,
    /// Events whose `_id` was already stored (a replay or a resend), or
    /// repeated within the batch: counted as stored, not stored again.
    pub duplicates: u64,
}

impl WriteOutcome {
    /// Events accounted for: must equal the batch length.
    pub fn total(&self) -> u64 {
        self.inserted + self.duplicates
    }
}

/// How one retention pass went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    /// Rows deleted, all transactions together.
    pub rows_deleted: u64,
    /// Transactions committed that deleted at least one row. Bounded work
    /// per transaction keeps the write lock short so flushers interleave.
    pub transactions: u64,
}

/// One event a store refused for good, with the store's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEvent {
    /// Position in the batch.
    pub index: usize,
    /// Its id.
    pub id: ObjectId,
    /// The store's reason, fit for a dead-letter record.
    pub reason: String,
}

impl RefusedEvent {
    /// The refusal of an event whose `_id` is already stored for a
    /// different app. A duplicate is only ever the same event resent, and a
    /// resend comes from the same app: any other reading would let one app
    /// erase another's event by reusing its (guessable) id. Every sink
    /// refuses such an event with this reason (the flusher dead-letters it).
    pub fn app_conflict(index: usize, event: &EventDoc) -> Self {
        RefusedEvent {
            index,
            id: event.id,
            reason: format!(
                "_id {} is already stored for a different app; only a resend of the same \
                 app's event counts as a duplicate",
                event.id
            ),
        }
    }
}

/// Why a batch (or a maintenance call) failed. Whatever the variant, the
/// sink has stored **nothing** of a failed batch that it will not also
/// report as a duplicate on retry, so retrying the same batch is always
/// safe (the store is idempotent by `_id`).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Likely to succeed later: the database is busy or locked, an I/O
    /// hiccup, the disk is full, the server is unreachable. The flusher
    /// retries the same batch with capped backoff and jitter; meanwhile the
    /// journal grows (DESIGN §5, backpressure).
    #[error("store temporarily unavailable ({context}): {source}")]
    Transient {
        /// What the sink was doing, e.g. "inserting batch of 512 events".
        context: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// The store refuses one event for good (a constraint, a size limit).
    /// Nothing of the batch was committed. The flusher sends the event at
    /// `index` to dead letters with this error as the reason, then retries
    /// the rest of the batch.
    #[error("store refused event {id} (batch index {index}): {reason}")]
    DocRefused {
        /// Position of the refused event in the batch.
        index: usize,
        /// Its id.
        id: ObjectId,
        /// The store's reason, fit for a dead-letter record.
        reason: String,
    },
    /// The store kept every event of the batch except `refused` (a store
    /// that writes unordered, such as MongoDB, cannot take the good events
    /// back). `stored` counts the rest, which are durably stored: the
    /// flusher dead-letters each refused event and advances. Retrying the
    /// whole batch is still safe (the stored ones come back as duplicates).
    #[error("store refused {} event(s) of the batch; the other {} are stored", refused.len(), stored.total())]
    Refused {
        /// How the events that were not refused were stored.
        stored: WriteOutcome,
        /// The refused events, in batch order.
        refused: Vec<RefusedEvent>,
    },
    /// Retrying will not help without an operator: a corrupt or read-only
    /// database, a schema mismatch, a misuse such as an oversized batch. The
    /// flusher stops advancing, reports it loudly (metrics, `/readyz`) and
    /// retries only at a slow pace; the journal keeps the events.
    #[error("store failed permanently ({context}): {source}")]
    Permanent {
        /// What the sink was doing.
        context: String,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl SinkError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Transient { .. })
    }

    /// A permanent error that is not about one event.
    pub fn permanent(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        SinkError::Permanent {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A transient error.
    pub fn transient(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        SinkError::Transient {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// A destination for durable events: the SQLite store, MongoDB, or an
/// upstream collector. Implementations must be idempotent by `_id`: storing
/// an event twice is reported as a duplicate, never as two documents.
pub trait Sink {
    /// Stores `batch` as one unit: on `Ok` every event is durably stored (as
    /// the backend defines durable; for SQLite, committed with
    /// `synchronous=FULL`), so the flusher may advance its checkpoint. On
    /// `Err`, see [`SinkError`] for what to do next.
    ///
    /// `batch.len()` must not exceed [`Sink::max_batch_events`]; a longer
    /// batch is refused with [`SinkError::Permanent`] (a flusher bug, not a
    /// store condition). An empty batch is a successful no-op.
    fn write_batch(&mut self, batch: &[EventDoc]) -> Result<WriteOutcome, SinkError>;

    /// The most events the flusher may put in one batch.
    fn max_batch_events(&self) -> usize;

    /// Deletes events received before `recv_cutoff_ms` (UTC ms), at most
    /// `max_rows_per_txn` per transaction. Backends that expire documents
    /// themselves (MongoDB's TTL index) return a zero outcome.
    fn delete_older_than(
        &mut self,
        recv_cutoff_ms: i64,
        max_rows_per_txn: usize,
    ) -> Result<RetentionOutcome, SinkError>;

    /// Checks the store can take writes now (for `/readyz`). Cheap: no
    /// batch is written.
    fn ping(&mut self) -> Result<(), SinkError>;

    /// A one-line description for logs and metrics labels, e.g.
    /// `sqlite:///var/lib/helios/events.db`. Never contains credentials.
    fn describe(&self) -> String;
}
