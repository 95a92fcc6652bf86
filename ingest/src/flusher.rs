//! The flusher, off the io_uring cores: moves committed journal records
//! into the store, then advances each journal's checkpoint (which lets the
//! journal recycle its segments). Two threads in a pipeline: this one reads
//! the journals and builds documents; a writer thread it starts owns the
//! store, writes each batch and then checkpoints it — so building the next
//! batch overlaps the store's transaction.
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

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use helios_journal::{Checkpoint, Checkpointer, JournalReader};
use helios_store::{EventDoc, Sink, SinkError, StoreError, WriteOutcome};

use crate::config::FlusherPriority;
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
/// Built batches waiting for the writer: one in the store, one ready.
const PIPELINE_DEPTH: usize = 2;
/// How often a blocked hand-over re-checks the shutdown deadline.
const HANDOVER_POLL: Duration = Duration::from_millis(100);

/// Nice value of the flusher thread. Acks come first: when the cores and
/// the flusher compete for CPU, the cores win and the journals absorb the
/// difference (up to their budget); the flusher catches up when load drops.
pub const FLUSHER_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`FLUSHER_NICE`]
/// (Linux applies `setpriority` to a single thread given its tid), and
/// with [`FlusherPriority::Idle`] moves it to `SCHED_IDLE`, where it runs
/// only on CPU no other thread wants.
pub fn lower_priority(priority: FlusherPriority) {
    // SAFETY: plain syscalls on the calling thread.
    let rc = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, FLUSHER_NICE)
    };
    if rc != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot lower the flusher's priority");
    }
    if priority == FlusherPriority::Idle {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` outlives the call.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if rc != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot move the flusher to SCHED_IDLE (--flusher-priority idle); it stays at nice {FLUSHER_NICE}"
            );
        }
    }
}

/// Rows deleted per retention transaction (short transactions keep
/// readers and the ingest path from waiting on one big delete).
const RETENTION_ROWS_PER_TXN: usize = 10_000;

/// Deletes events older than a cutoff now and then (`--retention-days`).
#[derive(Debug, Clone, Copy)]
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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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

impl FlushStats {
    /// Adds another writer's counts (a restarted writer starts at zero).
    fn add(&mut self, other: FlushStats) {
        self.inserted += other.inserted;
        self.duplicates += other.duplicates;
        self.dead_lettered += other.dead_lettered;
        self.retries += other.retries;
    }
}

/// Opens the store again for a restarted writer: a writer thread that dies
/// (a panic inside a sink) takes its sink with it, and the sink's state at
/// the panic is not to be trusted anyway.
pub type SinkOpener = Box<dyn FnMut() -> Result<Box<dyn Sink + Send>, StoreError> + Send>;

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
    /// How the store writer thread gives way to the cores.
    pub priority: FlusherPriority,
    /// Reopens the store when the writer thread has died.
    pub reopen_sink: SinkOpener,
}

/// A batch of documents from one journal, and where to checkpoint after.
struct Batch {
    docs: Vec<EventDoc>,
    checkpoint: Checkpoint,
    checkpointer: Checkpointer,
    journal: String,
}

/// What every store writer thread shares with the reader.
#[derive(Clone)]
struct WriterContext {
    priority: FlusherPriority,
    dead: Arc<Mutex<DeadLetters>>,
    batch_events: usize,
    control: Arc<FlusherControl>,
    metrics: Arc<FlusherMetrics>,
    retention: Option<Retention>,
}

/// A running store writer thread and the channel that feeds it.
struct WriterThread {
    tx: Sender<Batch>,
    handle: std::thread::JoinHandle<FlushStats>,
}

impl WriterContext {
    fn spawn(&self, sink: Box<dyn Sink + Send>) -> std::io::Result<WriterThread> {
        let (tx, rx) = bounded::<Batch>(PIPELINE_DEPTH);
        let context = self.clone();
        let handle = std::thread::Builder::new()
            .name("helios-store-writer".into())
            .spawn(move || {
                lower_priority(context.priority);
                write_loop(
                    rx,
                    sink,
                    &context.dead,
                    context.batch_events,
                    &context.control,
                    &context.metrics,
                    context.retention,
                )
            })?;
        Ok(WriterThread { tx, handle })
    }
}

/// Runs until drained (after `drain_until`) or the deadline passes.
///
/// The writer thread is supervised: if it dies, the reader notices (its
/// hand-over fails, or the thread is found finished), logs why, reopens the
/// store, rewinds every journal to its durable checkpoint (the batches the
/// dead writer held are lost with it) and starts a new writer. Nothing is
/// lost: nothing past a checkpoint was ever forgotten by the journal, and
/// anything stored twice is a duplicate the store ignores.
pub fn run(mut feeds: Vec<Feed>, sink: Box<dyn Sink + Send>, setup: Setup) -> FlushStats {
    let Setup {
        reopened,
        dead,
        batch_events,
        control,
        metrics,
        retention,
        priority,
        mut reopen_sink,
    } = setup;
    let batch_events = batch_events.min(sink.max_batch_events()).max(1);
    let context = WriterContext {
        priority,
        dead: Arc::new(Mutex::new(dead)),
        batch_events,
        control: Arc::clone(&control),
        metrics: Arc::clone(&metrics),
        retention,
    };
    let mut writer = match context.spawn(sink) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the store writer thread");
            return FlushStats::default();
        }
    };
    let mut reader = Reader {
        dead: &context.dead,
        batch_events,
        failures: Vec::new(),
        dead_lettered: 0,
        metrics: &metrics,
    };
    let mut stats = FlushStats::default();
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
        let mut progressed = false;
        let mut full_batch = false;
        let mut gave_up = false;
        let mut writer_gone = writer.handle.is_finished();
        for feed in &mut feeds {
            if writer_gone {
                break;
            }
            let Some(batch) = reader.next_batch(feed) else {
                continue;
            };
            progressed = true;
            full_batch |= batch.docs.len() >= batch_events;
            match hand_over(&writer.tx, batch, &control) {
                HandOver::Sent => {}
                HandOver::Deadline => {
                    gave_up = true;
                    break;
                }
                HandOver::WriterGone => writer_gone = true,
            }
        }
        let finishing = control.deadline().is_some_and(|deadline| {
            let drained = !progressed && control.cores_done.load(Ordering::SeqCst);
            drained || gave_up || Instant::now() >= deadline
        });
        if writer_gone || finishing {
            // Joins the writer (once it has stored what it holds, when
            // finishing); one that died is replaced and the journals are
            // read again from their checkpoints.
            match restart_writer(writer, &context, &mut reopen_sink, &mut feeds) {
                Restart::Running(next) => {
                    writer = next;
                    continue;
                }
                Restart::Stopped(ended) => {
                    stats.add(ended);
                    break;
                }
            }
        }
        if control.deadline().is_none() && !full_batch {
            std::thread::sleep(LINGER);
        }
    }
    stats.dead_lettered += reader.dead_lettered;
    if control.deadline().is_some_and(|d| Instant::now() >= d) {
        tracing::warn!(
            ?stats,
            "shutdown deadline passed; what is still journaled is stored on the next start"
        );
    } else {
        tracing::info!(?stats, "flusher drained every journal");
    }
    stats
}

/// How a hand-over to the writer ended.
enum HandOver {
    Sent,
    /// The shutdown deadline passed first (the batch's records stay
    /// journaled).
    Deadline,
    /// The writer thread is gone (it died).
    WriterGone,
}

/// Sends a batch to the writer, waiting while it is busy.
fn hand_over(tx: &Sender<Batch>, mut batch: Batch, control: &FlusherControl) -> HandOver {
    loop {
        match tx.send_timeout(batch, HANDOVER_POLL) {
            Ok(()) => return HandOver::Sent,
            Err(SendTimeoutError::Timeout(b)) => {
                if control.deadline().is_some_and(|d| Instant::now() >= d) {
                    return HandOver::Deadline;
                }
                batch = b;
            }
            Err(SendTimeoutError::Disconnected(_)) => return HandOver::WriterGone,
        }
    }
}

/// What became of a writer that stopped.
enum Restart {
    /// The old writer died; a new one runs.
    Running(WriterThread),
    /// Flushing stops (the writer ended at the shutdown deadline, or the
    /// deadline passed while the store would not reopen).
    Stopped(FlushStats),
}

/// Closes the writer's channel and joins it; if it died, starts another on
/// a reopened store with every journal rewound to its durable checkpoint.
fn restart_writer(
    writer: WriterThread,
    context: &WriterContext,
    reopen_sink: &mut SinkOpener,
    feeds: &mut [Feed],
) -> Restart {
    drop(writer.tx);
    let panic = match writer.handle.join() {
        // It returns once its channel is closed and drained, or when it
        // abandons a batch at the shutdown deadline.
        Ok(ended) => return Restart::Stopped(ended),
        Err(panic) => panic,
    };
    let metrics = &context.metrics;
    metrics.writer_restarts.fetch_add(1, Ordering::Relaxed);
    metrics.store_failing.store(true, Ordering::Relaxed);
    tracing::error!(
        reason = panic_message(&panic),
        "store writer thread died; reopening the store and replaying from the checkpoints"
    );
    let mut backoff = RETRY_BACKOFF_MIN;
    let sink = loop {
        match reopen_sink() {
            Ok(sink) => break sink,
            Err(e) => {
                tracing::error!(error = %e, "cannot reopen the store for a new writer; retrying");
                if context
                    .control
                    .deadline()
                    .is_some_and(|d| Instant::now() >= d)
                {
                    return Restart::Stopped(FlushStats::default());
                }
                std::thread::sleep(jittered(backoff));
                backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
            }
        }
    };
    for feed in feeds.iter_mut() {
        let durable = feed.checkpointer.current();
        feed.reader.rewind(durable.seq);
    }
    match context.spawn(sink) {
        Ok(next) => Restart::Running(next),
        Err(e) => {
            tracing::error!(error = %e, "cannot start a new store writer thread");
            Restart::Stopped(FlushStats::default())
        }
    }
}

/// The text of a panic payload, for the log.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// The writer thread: stores each batch (retrying, dead-lettering refused
/// documents), then checkpoints its journal; runs retention when due.
fn write_loop(
    rx: Receiver<Batch>,
    mut sink: Box<dyn Sink + Send>,
    dead: &Mutex<DeadLetters>,
    batch_events: usize,
    control: &FlusherControl,
    metrics: &FlusherMetrics,
    retention: Option<Retention>,
) -> FlushStats {
    let mut w = Writer {
        sink: sink.as_mut(),
        dead,
        batch_events,
        stats: FlushStats::default(),
        control,
        metrics,
    };
    let mut next_retention = Instant::now();
    loop {
        if let Some(r) = &retention {
            if Instant::now() >= next_retention {
                next_retention = Instant::now() + r.every;
                apply_retention(w.sink, r.keep_ms, &metrics.retention_deleted);
            }
        }
        let wait = retention.as_ref().map_or(HANDOVER_POLL, |_| {
            next_retention
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        let batch = match rx.recv_timeout(wait) {
            Ok(b) => b,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return w.stats,
        };
        let mut docs = batch.docs;
        if !w.store_docs(&mut docs) {
            // Abandoned at the shutdown deadline: the checkpoint stays, so
            // these records are replayed on the next start.
            return w.stats;
        }
        if let Err(e) = batch.checkpointer.advance(batch.checkpoint) {
            tracing::error!(journal = %batch.journal, error = %e, "checkpoint write failed; events will be replayed (idempotently)");
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

/// The reading half: journal records → documents.
struct Reader<'a> {
    dead: &'a Mutex<DeadLetters>,
    batch_events: usize,
    failures: Vec<events::EventFailure>,
    dead_lettered: u64,
    metrics: &'a FlusherMetrics,
}

impl Reader<'_> {
    /// The next batch of documents from `feed` (None when caught up).
    fn next_batch(&mut self, feed: &mut Feed) -> Option<Batch> {
        let mut docs = Vec::with_capacity(self.batch_events);
        let mut last: Option<Checkpoint> = None;
        while docs.len() < self.batch_events {
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
                if let Err(e) = events::record_to_docs(&r, &mut docs, &mut self.failures) {
                    let reason = format!("record {} of {} does not decode: {e}", r.seq, feed.name);
                    self.dead_letter(&reason, &r.payload, r.event_count as u64);
                }
                for f in std::mem::take(&mut self.failures) {
                    let raw = events::decode_payload(&r.payload)
                        .ok()
                        .and_then(|mut it| it.nth(f.index))
                        .unwrap_or(&[]);
                    let reason = format!("event {} of record {}: {}", f.index, r.seq, f.error);
                    self.dead_letter(&reason, raw, 1);
                }
                last = Some(r.checkpoint);
            }
        }
        let checkpoint = last?;
        Some(Batch {
            docs,
            checkpoint,
            checkpointer: feed.checkpointer.clone(),
            journal: feed.name.clone(),
        })
    }

    fn dead_letter(&mut self, reason: &str, raw: &[u8], events: u64) {
        tracing::error!(%reason, "journaled event does not decode; dead-lettered");
        let written = self
            .dead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record_raw(reason, raw);
        if written.is_err() {
            // Dead letters full: the log keeps the bytes.
            tracing::error!(%reason, raw = %String::from_utf8_lossy(raw), "dead-letter file full; event logged instead");
        }
        self.dead_lettered += events;
        self.metrics
            .dead_lettered
            .fetch_add(events, Ordering::Relaxed);
    }
}

/// The writing half: documents → store.
struct Writer<'a> {
    sink: &'a mut (dyn Sink + Send),
    dead: &'a Mutex<DeadLetters>,
    batch_events: usize,
    stats: FlushStats,
    control: &'a FlusherControl,
    metrics: &'a FlusherMetrics,
}

impl Writer<'_> {
    /// Writes `docs` in sink-sized batches, retrying transient failures and
    /// dead-lettering refused documents. False if it gave up at the deadline.
    fn store_docs(&mut self, docs: &mut Vec<EventDoc>) -> bool {
        let mut start = 0;
        let mut backoff = RETRY_BACKOFF_MIN;
        while start < docs.len() {
            let end = (start + self.batch_events).min(docs.len());
            match self.sink.write_batch(&docs[start..end]) {
                Ok(outcome) => {
                    debug_assert_eq!(outcome.total() as usize, end - start);
                    self.count_stored(outcome);
                    start = end;
                    backoff = RETRY_BACKOFF_MIN;
                }
                Err(SinkError::Refused { stored, refused })
                    if refused_within(&refused, end - start) =>
                {
                    debug_assert_eq!(stored.total() as usize + refused.len(), end - start);
                    // Highest index first, so earlier positions stay valid
                    // as refused events leave `docs`.
                    let mut held = false;
                    for r in refused.iter().rev() {
                        let at = start + r.index;
                        let written = self
                            .dead
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .record_doc(&r.reason, &docs[at].doc);
                        if written.is_err() {
                            held = true;
                            break;
                        }
                        docs.remove(at);
                        self.stats.dead_lettered += 1;
                        self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    }
                    if held {
                        // Dead letters full: retry what is left of the batch
                        // later (its stored events come back as duplicates).
                        tracing::error!(
                            "dead-letter file full; holding the store's refused events"
                        );
                        if self.past_deadline() {
                            return false;
                        }
                        std::thread::sleep(RETRY_BACKOFF_MAX);
                        continue;
                    }
                    self.count_stored(stored);
                    start = end - refused.len();
                    backoff = RETRY_BACKOFF_MIN;
                }
                Err(SinkError::DocRefused { index, reason, .. }) if start + index < end => {
                    let written = self
                        .dead
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record_doc(&reason, &docs[start + index].doc);
                    if written.is_ok() {
                        docs.remove(start + index);
                        self.stats.dead_lettered += 1;
                        self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    // The dead-letter file is full: the refused event can go
                    // nowhere, so hold everything (the journals grow to their
                    // budget and ingest answers 503) until space is made.
                    tracing::error!("dead-letter file full; holding the store's refused event");
                    if self.past_deadline() {
                        return false;
                    }
                    std::thread::sleep(RETRY_BACKOFF_MAX);
                }
                Err(e) => {
                    if self.past_deadline() {
                        return false;
                    }
                    tracing::warn!(store = %self.sink.describe(), error = %e, transient = e.is_transient(), "store write failed; retrying");
                    self.stats.retries += 1;
                    self.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                    self.metrics.store_failing.store(true, Ordering::Relaxed);
                    std::thread::sleep(jittered(backoff));
                    backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
                }
            }
        }
        true
    }

    fn count_stored(&mut self, outcome: WriteOutcome) {
        self.stats.inserted += outcome.inserted;
        self.stats.duplicates += outcome.duplicates;
        self.metrics.store_failing.store(false, Ordering::Relaxed);
        self.metrics
            .inserted
            .fetch_add(outcome.inserted, Ordering::Relaxed);
        self.metrics
            .duplicates
            .fetch_add(outcome.duplicates, Ordering::Relaxed);
    }

    fn past_deadline(&self) -> bool {
        self.control.deadline().is_some_and(|d| Instant::now() >= d)
    }
}

/// Whether a sink's refused events are distinct, ascending positions inside
/// a batch of `len`: anything else is a sink bug, and the batch is retried
/// (the catch-all error arm) rather than trusted.
fn refused_within(refused: &[helios_store::RefusedEvent], len: usize) -> bool {
    !refused.is_empty()
        && refused.len() <= len
        && refused.windows(2).all(|w| w[0].index < w[1].index)
        && refused.last().is_some_and(|r| r.index < len)
}

/// A retry delay between half and all of `backoff`, so that many collectors
/// that lost the same store do not come back in lockstep.
fn jittered(backoff: Duration) -> Duration {
    // Sub-second clock noise is random enough to spread retries; no RNG
    // dependency for it.
    let noise = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let half = backoff / 2;
    let spread_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(u64::from(noise).wrapping_mul(0x9E37_79B9_7F4A_7C15) % spread_ns)
}

#[cfg(test)]
mod tests {
    use helios_store::{ObjectId, RefusedEvent};

    use super::refused_within;

    fn refused(indexes: &[usize]) -> Vec<RefusedEvent> {
        indexes
            .iter()
            .map(|&index| RefusedEvent {
                index,
                id: ObjectId::from_bytes([0; 12]),
                reason: "refused".to_owned(),
            })
            .collect()
    }

    #[test]
    fn refused_events_are_trusted_only_as_distinct_ascending_batch_positions() {
        assert!(refused_within(&refused(&[0, 3, 4]), 5));
        assert!(!refused_within(&refused(&[]), 5), "nothing refused");
        assert!(!refused_within(&refused(&[5]), 5), "past the batch");
        assert!(!refused_within(&refused(&[2, 2]), 5), "twice");
        assert!(!refused_within(&refused(&[3, 1]), 5), "out of order");
    }
}
