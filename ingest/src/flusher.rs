//! The flusher: one thread, off the io_uring cores, that moves committed
//! journal records into the store and then advances each journal's
//! checkpoint (which lets the journal recycle its segments).
//!
//! It reads the journal files rather than receiving copies from the cores:
//! the request path then does no extra copy or allocation, and catching up
//! after a restart or a store outage is the same code as steady state.
//! Store writes are idempotent by `_id`, so a crash between the store
//! commit and the checkpoint only replays events the store will count as
//! duplicates.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helios_journal::{Checkpointer, JournalReader, Record};
use helios_store::{EventDoc, Sink, SinkError};

use crate::deadletter::DeadLetters;
use crate::events;
use crate::metrics::FlusherMetrics;

/// Records read from a journal per read call.
const READ_BATCH_RECORDS: usize = 64;
/// Pause after a pass that found less than a full batch: lets records pile
/// up into bigger store transactions (each costs fsyncs, on the disk the
/// journals commit to) at the price of this much store latency.
const LINGER: Duration = Duration::from_millis(25);
/// First and largest pause between retries of a failing store write.
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(50);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Nice value of the flusher thread. Acks come first: when the cores and
/// the flusher compete for CPU, the cores win and the journals absorb the
/// difference (up to their budget); the flusher catches up when load drops.
pub const FLUSHER_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`FLUSHER_NICE`]
/// (Linux applies `setpriority` to a single thread given its tid).
pub fn lower_priority() {
    // SAFETY: plain syscalls on the calling thread.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, FLUSHER_NICE)
    };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot lower the flusher's priority");
    }
}

/// Rows deleted per retention transaction (short transactions keep
/// readers and the ingest path from waiting on one big delete).
const RETENTION_ROWS_PER_TXN: usize = 10_000;

/// Deletes events older than a cutoff now and then (`--retention-days`).
pub struct Retention {
    /// Keep events received within this many milliseconds.
    pub keep_ms: i64,
    /// How often to run.
    pub every: Duration,
}

/// One journal the flusher drains.
pub struct Feed {
    /// For logs: the journal directory.
    pub name: String,
    /// Reads committed records after the checkpoint.
    pub reader: JournalReader,
    /// Persists progress.
    pub checkpointer: Checkpointer,
}

/// How the main thread steers the flusher's shutdown.
#[derive(Debug, Default)]
pub struct FlusherControl {
    /// Set once every core has closed its journals: what is durable now is
    /// all there will be.
    cores_done: AtomicBool,
    /// Stop by then even if records remain (they are delivered on the next
    /// start).
    deadline: Mutex<Option<Instant>>,
}

impl FlusherControl {
    /// A control with nothing requested.
    pub fn new() -> Arc<FlusherControl> {
        Arc::new(FlusherControl::default())
    }

    /// Asks the flusher to drain what is journaled and stop by `deadline`.
    pub fn drain_until(&self, deadline: Instant) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
        self.cores_done.store(true, Ordering::SeqCst);
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counters the flusher keeps (for logs now, metrics later).
#[derive(Debug, Default, Clone, Copy)]
pub struct FlushStats {
    /// Events newly stored.
    pub inserted: u64,
    /// Events the store already had (replays).
    pub duplicates: u64,
    /// Events sent to dead letters.
    pub dead_lettered: u64,
    /// Store write retries.
    pub retries: u64,
}

/// What the flusher runs with, besides its journals and its store.
pub struct Setup {
    /// Journals reopened after a failure, replacing the feed of that name.
    pub reopened: std::sync::mpsc::Receiver<Feed>,
    /// Where refused events go.
    pub dead: DeadLetters,
    /// Events per store write.
    pub batch_events: usize,
    /// Shutdown steering.
    pub control: Arc<FlusherControl>,
    /// Counters for `/metrics`.
    pub metrics: Arc<FlusherMetrics>,
    /// Optional retention.
    pub retention: Option<Retention>,
}

/// Runs until drained (after `drain_until`) or the deadline passes.
pub fn run(mut feeds: Vec<Feed>, mut sink: Box<dyn Sink + Send>, setup: Setup) -> FlushStats {
    let Setup {
        reopened,
        dead,
        batch_events,
        control,
        metrics,
        retention,
    } = setup;
    let mut next_retention = Instant::now();
    let batch_events = batch_events.min(sink.max_batch_events()).max(1);
    let mut f = Flusher {
        sink: sink.as_mut(),
        dead,
        batch_events,
        docs: Vec::with_capacity(batch_events),
        failures: Vec::new(),
        stats: FlushStats::default(),
        control: &control,
        metrics: &metrics,
    };
    loop {
        // A core reopened a failed journal: read it through the new handle
        // (from its checkpoint; anything read twice is a duplicate the store
        // ignores).
        while let Ok(feed) = reopened.try_recv() {
            match feeds.iter_mut().find(|f| f.name == feed.name) {
                Some(old) => *old = feed,
                None => feeds.push(feed),
            }
        }
        if let Some(r) = &retention {
            if Instant::now() >= next_retention {
                next_retention = Instant::now() + r.every;
                apply_retention(f.sink, r.keep_ms, &f.metrics.retention_deleted);
            }
        }
        let mut progressed = false;
        let mut full_batch = false;
        for feed in &mut feeds {
            let moved = f.flush_feed(feed);
            progressed |= moved > 0;
            full_batch |= moved >= f.batch_events;
        }
        if let Some(deadline) = control.deadline() {
            if !progressed && control.cores_done.load(Ordering::SeqCst) {
                tracing::info!(stats = ?f.stats, "flusher drained every journal");
                return f.stats;
            }
            if Instant::now() >= deadline {
                tracing::warn!(stats = ?f.stats, "shutdown deadline passed with records still journaled; they will be stored on the next start");
                return f.stats;
            }
        }
        if !full_batch && control.deadline().is_none() {
            std::thread::sleep(LINGER);
        }
    }
}

fn apply_retention(
    sink: &mut (dyn Sink + Send),
    keep_ms: i64,
    deleted: &std::sync::atomic::AtomicU64,
) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    match sink.delete_older_than(now_ms.saturating_sub(keep_ms), RETENTION_ROWS_PER_TXN) {
        Ok(outcome) if outcome.rows_deleted > 0 => {
            deleted.fetch_add(outcome.rows_deleted, Ordering::Relaxed);
            tracing::info!(rows = outcome.rows_deleted, "retention deleted old events");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "retention failed; will retry"),
    }
}

struct Flusher<'a> {
    sink: &'a mut (dyn Sink + Send),
    dead: DeadLetters,
    batch_events: usize,
    docs: Vec<EventDoc>,
    failures: Vec<events::EventFailure>,
    stats: FlushStats,
    control: &'a FlusherControl,
    metrics: &'a FlusherMetrics,
}

impl Flusher<'_> {
    /// Moves one batch from `feed` to the store; returns the events moved
    /// (0 when caught up or when giving up at the deadline).
    fn flush_feed(&mut self, feed: &mut Feed) -> usize {
        self.docs.clear();
        let mut last: Option<Record> = None;
        while self.docs.len() < self.batch_events {
            let records = match feed.reader.read_batch(READ_BATCH_RECORDS) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(journal = %feed.name, error = %e, "cannot read journal");
                    break;
                }
            };
            if records.is_empty() {
                break;
            }
            for r in records {
                self.failures.clear();
                // Validated before it was journaled, so a failure here means
                // a bug or damage: keep the bytes rather than lose them.
                if let Err(e) = events::record_to_docs(&r, &mut self.docs, &mut self.failures) {
                    tracing::error!(journal = %feed.name, seq = r.seq, error = %e, "journal record does not decode; dead-lettered");
                    let reason = format!("record {} of {} does not decode: {e}", r.seq, feed.name);
                    if self.dead.record_raw(&reason, &r.payload).is_err() {
                        // Dead letters full: the log keeps the bytes.
                        tracing::error!(%reason, raw = %String::from_utf8_lossy(&r.payload), "dead-letter file full; record logged instead");
                    }
                    self.stats.dead_lettered += r.event_count as u64;
                    self.metrics
                        .dead_lettered
                        .fetch_add(r.event_count as u64, Ordering::Relaxed);
                }
                for f in &self.failures {
                    let raw = events::decode_payload(&r.payload)
                        .ok()
                        .and_then(|mut it| it.nth(f.index))
                        .unwrap_or(&[]);
                    tracing::error!(journal = %feed.name, seq = r.seq, index = f.index, error = %f.error, "journaled event does not decode; dead-lettered");
                    let reason = format!("event {} of record {}: {}", f.index, r.seq, f.error);
                    if self.dead.record_raw(&reason, raw).is_err() {
                        tracing::error!(%reason, raw = %String::from_utf8_lossy(raw), "dead-letter file full; event logged instead");
                    }
                    self.stats.dead_lettered += 1;
                    self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                }
                last = Some(r);
            }
        }
        let Some(last) = last else { return 0 };
        let moved = self.docs.len().max(1);
        if !self.store_docs() {
            // Abandoned at the shutdown deadline: the checkpoint stays, so
            // these records are replayed on the next start.
            return 0;
        }
        if let Err(e) = feed.checkpointer.advance(last.checkpoint) {
            tracing::error!(journal = %feed.name, error = %e, "checkpoint write failed; events will be replayed (idempotently)");
        }
        moved
    }

    /// Writes `docs` in sink-sized batches, retrying transient failures and
    /// dead-lettering refused documents. False if it gave up at the deadline.
    fn store_docs(&mut self) -> bool {
        let mut docs = std::mem::take(&mut self.docs);
        let mut start = 0;
        let mut backoff = RETRY_BACKOFF_MIN;
        while start < docs.len() {
            let end = (start + self.batch_events).min(docs.len());
            match self.sink.write_batch(&docs[start..end]) {
                Ok(outcome) => {
                    debug_assert_eq!(
                        (outcome.inserted + outcome.duplicates) as usize,
                        end - start
                    );
                    self.stats.inserted += outcome.inserted;
                    self.stats.duplicates += outcome.duplicates;
                    self.metrics.store_failing.store(false, Ordering::Relaxed);
                    self.metrics
                        .inserted
                        .fetch_add(outcome.inserted, Ordering::Relaxed);
                    self.metrics
                        .duplicates
                        .fetch_add(outcome.duplicates, Ordering::Relaxed);
                    start = end;
                    backoff = RETRY_BACKOFF_MIN;
                }
                Err(SinkError::DocRefused { index, reason, .. }) if start + index < end => {
                    if self
                        .dead
                        .record_doc(&reason, &docs[start + index].doc)
                        .is_ok()
                    {
                        docs.remove(start + index);
                        self.stats.dead_lettered += 1;
                        self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // The dead-letter file is full: the refused event can go
                    // nowhere, so hold everything (the journals grow to their
                    // budget and ingest answers 503) until space is made.
                    tracing::error!(path = %self.dead.path().display(), "dead-letter file full; holding the store's refused event");
                    if self.control.deadline().is_some_and(|d| Instant::now() >= d) {
                        self.docs = docs;
                        return false;
                    }
                    std::thread::sleep(RETRY_BACKOFF_MAX);
                }
                Err(e) => {
                    let past_deadline =
                        self.control.deadline().is_some_and(|d| Instant::now() >= d);
                    if past_deadline {
                        self.docs = docs;
                        return false;
                    }
                    tracing::warn!(store = %self.sink.describe(), error = %e, transient = e.is_transient(), "store write failed; retrying");
                    self.stats.retries += 1;
                    self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    self.metrics.store_failing.store(true, Ordering::Relaxed);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                }
            }
        }
        docs.clear();
        self.docs = docs;
        true
    }
}
