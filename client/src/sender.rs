//! The background sender thread: batching, delivery, retries, failover.
//!
//! One thread per client owns every connection, so requests need no locks
//! and a batch is never in two places at once. It takes events from the
//! queue into a batch until `max_batch_events`, `max_batch_bytes` or
//! `max_batch_delay` is reached (or a flush/shutdown asks for it), encodes
//! the body once, and sends that same body on every attempt so a resend is
//! byte-identical (same `_id`s; the collector stores it once). Only
//! `Helios-Sent-At` changes per attempt.
//!
//! A panic inside the loop is caught, the events it held are logged as
//! lost, and the loop starts again: nothing the network sends can stop the
//! thread, and no panic reaches the app.

use std::io::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

#[cfg(feature = "zstd")]
use crate::config::ZSTD_LEVEL;
use crate::config::{Compression, Config, RetryPolicy, GZIP_LEVEL};
use crate::event::Event;
use crate::lost::{self, LossReason};
use crate::queue::{Consumer, Item};
use crate::random::Rng;
use crate::stats::{self, Counters};
use crate::timestamp;
use crate::transport::{PostRequest, Response, Timeouts, Transport};

/// Name of the sender thread (shows in debuggers and `top -H`).
pub const SENDER_THREAD_NAME: &str = "helios-client-sender";
/// Longest `Retry-After` honoured; a larger value is clamped to it.
pub const MAX_RETRY_AFTER_MS: u64 = 60_000;
/// Pause before the loop restarts after a panic, so a bug cannot spin.
const SENDER_RESTART_PAUSE_MS: u64 = 100;
/// Longest a backoff sleep goes without re-checking the shutdown deadline.
const SLEEP_SLICE_MS: u64 = 50;
/// Most bytes of an error body quoted in a log line.
const MAX_QUOTED_ERROR_BYTES: usize = 256;

/// State shared by the client handles and the sender thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    shutting_down: AtomicBool,
    shutdown_deadline: Mutex<Option<Instant>>,
    deadline_hit: AtomicBool,
}

impl Shared {
    /// Asks the sender to deliver what it has and exit by `deadline` (an
    /// earlier deadline from a previous call stays).
    pub(crate) fn request_shutdown(&self, deadline: Instant) {
        let mut slot = self
            .shutdown_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(slot.map_or(deadline, |earlier| earlier.min(deadline)));
        self.shutting_down.store(true, Ordering::Release);
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    fn deadline(&self) -> Option<Instant> {
        if !self.is_shutting_down() {
            return None;
        }
        *self
            .shutdown_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn deadline_passed(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// True once an event was lost because the shutdown deadline passed.
    pub(crate) fn deadline_was_hit(&self) -> bool {
        self.deadline_hit.load(Ordering::Acquire)
    }
}

/// Starts the sender thread. It exits after a shutdown request once the
/// queue is empty (or the deadline passed); `done` disconnects then.
pub(crate) fn spawn(
    config: &Config,
    shared: Arc<Shared>,
    queue: Consumer,
    done: crossbeam_channel::Sender<()>,
) -> std::io::Result<JoinHandle<()>> {
    let mut sender = Sender::new(config, shared, queue);
    thread::Builder::new()
        .name(SENDER_THREAD_NAME.to_owned())
        .spawn(move || {
            // Runs until run() returns normally; each panic costs one pause.
            while panic::catch_unwind(AssertUnwindSafe(|| sender.run())).is_err() {
                sender.recover_after_panic();
                thread::sleep(Duration::from_millis(SENDER_RESTART_PAUSE_MS));
            }
            drop(done);
        })
}

/// Why `take` stopped filling the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Room for more.
    Open,
    /// Count or byte bound reached (the next event may be in `carry`).
    Full,
    /// A flush marker: send now.
    Flush,
}

/// The batch being filled; kept in the sender so a panic can log it.
#[derive(Debug, Default)]
struct Batch {
    events: Vec<Event>,
    /// NDJSON body bytes: each document plus its newline.
    bytes: usize,
    /// An event that did not fit; it opens the next batch.
    carry: Option<Event>,
    /// Flushers waiting for everything ahead of their marker.
    flush_acks: Vec<crossbeam_channel::Sender<()>>,
}

/// Limits of a batch.
#[derive(Debug, Clone, Copy)]
struct BatchLimits {
    max_events: usize,
    max_bytes: usize,
    max_delay: Duration,
}

impl Batch {
    fn push(&mut self, event: Event) {
        self.bytes += event.doc.len() + 1;
        self.events.push(event);
    }

    /// Document bytes of the events in the batch (without newlines), as the
    /// queue counts them.
    fn doc_bytes(&self) -> usize {
        self.bytes - self.events.len()
    }

    fn is_full(&self, limits: &BatchLimits) -> bool {
        self.events.len() >= limits.max_events || self.bytes >= limits.max_bytes
    }

    /// Adds one item from the queue.
    fn take(&mut self, item: Item, limits: &BatchLimits) -> Fill {
        match item {
            Item::Flush(ack) => {
                self.flush_acks.push(ack);
                Fill::Flush
            }
            Item::Event(event) => {
                // Each document costs its bytes plus its newline.
                let line_bytes = event.doc.len() + 1;
                let fits = self.bytes + line_bytes <= limits.max_bytes;
                if !fits && !self.events.is_empty() {
                    self.carry = Some(event);
                    return Fill::Full;
                }
                self.push(event);
                if self.is_full(limits) {
                    Fill::Full
                } else {
                    Fill::Open
                }
            }
        }
    }

    fn ack_flushes(&mut self) {
        for ack in self.flush_acks.drain(..) {
            // The flusher may have timed out and gone; nothing to do then.
            let _ = ack.try_send(());
        }
    }
}

struct Sender {
    shared: Arc<Shared>,
    queue: Consumer,
    limits: BatchLimits,
    batch: Batch,
    delivery: Delivery,
}

impl Sender {
    fn new(config: &Config, shared: Arc<Shared>, queue: Consumer) -> Self {
        let timeouts = Timeouts {
            connect: config.connect_timeout,
            read: config.read_timeout,
            write: config.write_timeout,
        };
        Sender {
            shared: Arc::clone(&shared),
            queue,
            limits: BatchLimits {
                max_events: config.max_batch_events,
                max_bytes: config.max_batch_bytes,
                max_delay: config.max_batch_delay,
            },
            batch: Batch::default(),
            delivery: Delivery {
                shared,
                transport: Transport::new(config.endpoints.clone(), timeouts),
                endpoint: 0,
                retry: config.retry,
                compression: config.compression,
                api_key: config.api_key.clone(),
                max_logged_document_bytes: config.max_logged_document_bytes,
                rng: Rng::from_entropy(),
                #[cfg(feature = "zstd")]
                zstd: None,
                last_sent_at_unix_ms: 0,
            },
        }
    }

    /// Sends what is queued every `max_batch_delay` tick, and at once
    /// whenever a full batch or a flush marker is taken.
    fn run(&mut self) {
        let mut next_tick = Instant::now() + self.limits.max_delay;
        // Ends only on shutdown; each pass sends a batch or waits for the
        // next tick or a wake.
        loop {
            if self.shared.is_shutting_down() {
                self.drain_for_shutdown();
                return;
            }
            let fill = self.take_queued();
            let now = Instant::now();
            let tick = now >= next_tick;
            if tick {
                next_tick = now + self.limits.max_delay;
            }
            if tick || fill != Fill::Open {
                self.send_batch();
                continue;
            }
            self.queue.wait_for_wake(next_tick);
        }
    }

    /// Moves queued items into the batch until it is full, a flush marker
    /// is taken, or the queue is empty (`Fill::Open`).
    fn take_queued(&mut self) -> Fill {
        if let Some(event) = self.batch.carry.take() {
            self.batch.push(event);
        }
        if self.batch.is_full(&self.limits) {
            return Fill::Full;
        }
        // Bounded by the queue's capacity.
        while let Some(item) = self.queue.try_take() {
            let fill = self.batch.take(item, &self.limits);
            if fill != Fill::Open {
                return fill;
            }
        }
        Fill::Open
    }

    /// Sends the batch (if any) and releases flushers waiting on it.
    fn send_batch(&mut self) {
        if !self.batch.events.is_empty() {
            // Before the delivery (which may take seconds of retries), so
            // that pushes meanwhile count towards the next batch only.
            self.queue
                .batch_left(self.batch.events.len(), self.batch.doc_bytes());
            self.delivery.deliver(&self.batch.events);
            self.batch.events.clear();
            self.batch.bytes = 0;
        }
        // Everything taken before a flush marker was in this batch.
        self.batch.ack_flushes();
    }

    /// Sends everything taken and queued, batch by batch; once the deadline
    /// passes each remaining batch is logged as lost instead.
    fn drain_for_shutdown(&mut self) {
        // Ends when the queue is empty: record() refuses new events once
        // shutdown began, so the queue only shrinks.
        loop {
            let fill = self.take_queued();
            if fill == Fill::Open && self.batch.events.is_empty() {
                self.batch.ack_flushes();
                return;
            }
            self.send_batch();
        }
    }

    /// After a panic: whatever the batch held is logged as lost, so the
    /// restarted loop cannot trip on the same events again.
    fn recover_after_panic(&mut self) {
        log::error!(
            target: "helios_client",
            "helios-client sender thread panicked; restarting it"
        );
        let events: Vec<Event> = self
            .batch
            .events
            .drain(..)
            .chain(self.batch.carry.take())
            .collect();
        self.batch.bytes = 0;
        let doc_bytes = events.iter().map(|event| event.doc.len()).sum();
        self.queue.batch_left(events.len(), doc_bytes);
        self.delivery.lose(&events, &LossReason::SenderRestarted);
        // Dropping the acks tells waiting flushers that it did not go well.
        self.batch.flush_acks.clear();
    }
}

/// What the sender needs to get one batch to a server.
struct Delivery {
    shared: Arc<Shared>,
    transport: Transport,
    /// Index of the endpoint the next attempt goes to.
    endpoint: usize,
    retry: RetryPolicy,
    compression: Compression,
    api_key: Option<String>,
    max_logged_document_bytes: usize,
    rng: Rng,
    last_sent_at_unix_ms: u64,
    /// The zstd compression context, made at the first zstd batch and
    /// reused: making one costs more than compressing a small batch
    /// (BENCHMARKS.md, "Request compression").
    #[cfg(feature = "zstd")]
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

/// A failed attempt worth retrying.
struct Failure {
    reason: String,
    retry_after: Option<Duration>,
}

impl Delivery {
    /// Delivers one batch, retrying per policy; every event ends counted as
    /// sent, rejected or dropped (and logged).
    fn deliver(&mut self, batch: &[Event]) {
        let (body, compression) = self.encode_body(batch);
        let first_attempt_at = Instant::now();
        let mut attempt: u32 = 0;
        // Every pass settles the batch or counts one attempt, so the loop
        // ends within max_attempts passes.
        loop {
            if self.shared.deadline_passed() {
                return self.lose_at_deadline(batch);
            }
            attempt += 1;
            if attempt > 1 {
                stats::add(&self.shared.counters.retried, 1);
            }
            let failure = match self.attempt(&body, compression) {
                Ok(response) => match self.judge(batch, response) {
                    Some(failure) => failure,
                    None => return,
                },
                Err(failure) => failure,
            };
            if self.shared.deadline_passed() {
                return self.lose_at_deadline(batch);
            }
            let wait = self
                .backoff(attempt)
                .max(failure.retry_after.unwrap_or_default());
            let out_of_time = first_attempt_at.elapsed() + wait > self.retry.max_retry_time;
            if attempt >= self.retry.max_attempts || out_of_time {
                let reason = LossReason::RetriesExhausted {
                    attempts: attempt,
                    last_error: &failure.reason,
                };
                return self.lose(batch, &reason);
            }
            log::warn!(
                target: "helios_client",
                "helios send of {} events failed (attempt {attempt}/{}): {}; retrying in {} ms",
                batch.len(),
                self.retry.max_attempts,
                failure.reason,
                wait.as_millis()
            );
            self.endpoint = (self.endpoint + 1) % self.transport.endpoint_count().max(1);
            self.sleep(wait);
        }
    }

    fn lose_at_deadline(&self, batch: &[Event]) {
        self.shared.deadline_hit.store(true, Ordering::Release);
        self.lose(batch, &LossReason::ShutdownDeadline);
    }

    /// One POST of `body`, compressed as `compression` says, to the
    /// current endpoint.
    fn attempt(&mut self, body: &[u8], compression: Compression) -> Result<Response, Failure> {
        let sent_at_unix_ms = self.next_sent_at();
        let request = PostRequest::new(body)
            .compression(compression)
            .api_key(self.api_key.as_deref())
            .sent_at_unix_ms(sent_at_unix_ms);
        let shared = Arc::clone(&self.shared);
        let deadline = move || shared.deadline();
        self.transport
            .post(self.endpoint, &request, &deadline)
            .map_err(|error| Failure {
                reason: format!("{}: {error}", self.transport.url(self.endpoint)),
                retry_after: None,
            })
    }

    /// Settles the batch from a response, or says why to try again.
    fn judge(&mut self, batch: &[Event], response: Response) -> Option<Failure> {
        let status = response.status;
        if (200..300).contains(&status) {
            self.accepted(batch, &response.body);
            return None;
        }
        let reason = format!(
            "{}: HTTP {status} {}",
            self.transport.url(self.endpoint),
            quote_error(&response.body)
        );
        if status == 408 || status == 429 || (500..600).contains(&status) {
            let ceiling = Duration::from_millis(MAX_RETRY_AFTER_MS);
            return Some(Failure {
                reason,
                retry_after: response.retry_after.map(|d| d.min(ceiling)),
            });
        }
        // Any other status is the server's final word on the whole batch.
        stats::add(&self.shared.counters.rejected, batch.len() as u64);
        for event in batch {
            let reason = LossReason::Rejected { reason: &reason };
            lost::log_lost(&reason, &event.doc, self.max_logged_document_bytes);
        }
        None
    }

    /// Counts a 2xx answer and logs each event it rejected, with the
    /// server's reason.
    fn accepted(&mut self, batch: &[Event], body: &[u8]) {
        let counters = &self.shared.counters;
        stats::add(&counters.batches_sent, 1);
        let verdict = parse_verdict(body, batch.len());
        if let Some(problem) = &verdict.problem {
            // A 2xx means stored (DESIGN.md §1), so the events count as
            // sent even when the body does not say which.
            log::warn!(
                target: "helios_client",
                "helios server {} answered 2xx with an unexpected body ({problem}): {}",
                self.transport.url(self.endpoint),
                quote_error(body)
            );
        }
        for (index, error) in &verdict.rejected {
            let reason = LossReason::Rejected { reason: error };
            if let Some(event) = batch.get(*index) {
                lost::log_lost(&reason, &event.doc, self.max_logged_document_bytes);
            }
        }
        let rejected = verdict.rejected.len() as u64;
        stats::add(&counters.rejected, rejected);
        stats::add(&counters.sent, batch.len() as u64 - rejected);
    }

    /// Logs every event of `events` as lost and counts them dropped.
    fn lose(&self, events: &[Event], reason: &LossReason<'_>) {
        stats::add(&self.shared.counters.dropped, events.len() as u64);
        for event in events {
            lost::log_lost(reason, &event.doc, self.max_logged_document_bytes);
        }
    }

    /// NDJSON, compressed when configured; built once per batch.
    ///
    /// Compressing into a Vec cannot fail; should it ever, the batch would
    /// still have to go out, so [`Delivery::attempt`] is told what was
    /// actually applied (the returned `Compression`).
    fn encode_body(&mut self, batch: &[Event]) -> (Vec<u8>, Compression) {
        let len: usize = batch.iter().map(|e| e.doc.len() + 1).sum();
        let mut body = Vec::with_capacity(len);
        for event in batch {
            body.extend_from_slice(&event.doc);
            body.push(b'\n');
        }
        let compressed = match self.compression {
            Compression::None => return (body, Compression::None),
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(len / 4),
                    flate2::Compression::new(GZIP_LEVEL),
                );
                encoder.write_all(&body).and_then(|()| encoder.finish())
            }
            #[cfg(feature = "zstd")]
            Compression::Zstd => match &mut self.zstd {
                Some(compressor) => compressor.compress(&body),
                none => zstd::bulk::Compressor::new(ZSTD_LEVEL)
                    .and_then(|compressor| none.insert(compressor).compress(&body)),
            },
        };
        match compressed {
            Ok(compressed) => (compressed, self.compression),
            Err(_) => (body, Compression::None),
        }
    }

    /// Full jitter: uniform in `0..=min(max_backoff, initial * 2^(attempt-1))`.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let initial_ms = self.retry.initial_backoff.as_millis() as u64;
        let max_ms = self.retry.max_backoff.as_millis() as u64;
        let factor = 1u64
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u64::MAX);
        let ceiling_ms = initial_ms.saturating_mul(factor).min(max_ms);
        Duration::from_millis(self.rng.up_to(ceiling_ms))
    }

    /// `Helios-Sent-At` for a new attempt: the clock, but never a value an
    /// earlier attempt used, so the server can tell attempts apart.
    fn next_sent_at(&mut self) -> u64 {
        let now = timestamp::now_unix_ms();
        self.last_sent_at_unix_ms = now.max(self.last_sent_at_unix_ms + 1);
        self.last_sent_at_unix_ms
    }

    /// Sleeps `wait`, cut short by the shutdown deadline. Wakes from
    /// producers are ignored here on purpose: during a backoff the queue
    /// may stay above its wake mark, and answering every wake would spin.
    fn sleep(&self, wait: Duration) {
        let end = Instant::now() + wait;
        // Each pass sleeps one slice; the loop ends at `end` or the deadline.
        loop {
            let until = self.shared.deadline().map_or(end, |d| d.min(end));
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::sleep(left.min(Duration::from_millis(SLEEP_SLICE_MS)));
        }
    }
}

/// What a 2xx body says about the batch.
#[derive(Debug, Default, PartialEq)]
struct Verdict {
    /// `(index, error)` for each distinct, in-range rejected index.
    rejected: Vec<(usize, String)>,
    /// Why the body could not be fully trusted, if so.
    problem: Option<String>,
}

/// Reads `{"accepted": n, "rejected": [{"index": i, "error": "…"}]}`.
fn parse_verdict(body: &[u8], batch_len: usize) -> Verdict {
    let mut verdict = Verdict::default();
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => {
            verdict.problem = Some(format!("not JSON: {error}"));
            return verdict;
        }
    };
    let mut seen = vec![false; batch_len];
    let entries = value.get("rejected").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let index = entry.get("index").and_then(Value::as_u64);
        let Some(index) = index.and_then(|i| usize::try_from(i).ok()) else {
            verdict.problem = Some("a rejected entry has no index".to_owned());
            continue;
        };
        match seen.get_mut(index) {
            Some(flag) if !*flag => *flag = true,
            Some(_) => continue,
            None => {
                verdict.problem = Some(format!("rejected index {index} out of range"));
                continue;
            }
        }
        let error = entry
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        verdict.rejected.push((index, one_line(error)));
    }
    let accepted = value.get("accepted").and_then(Value::as_u64);
    let expected = (batch_len - verdict.rejected.len()) as u64;
    if accepted != Some(expected) && verdict.problem.is_none() {
        verdict.problem = Some(format!("accepted is {accepted:?}, expected {expected}"));
    }
    verdict
}

/// `error: detail` from a JSON error body, else the body's start as text;
/// always one bounded line (see [`one_line`]).
fn quote_error(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        let error = value.get("error").and_then(Value::as_str);
        let detail = value.get("detail").and_then(Value::as_str);
        match (error, detail) {
            (Some(error), Some(detail)) => return one_line(&format!("{error}: {detail}")),
            (Some(error), None) => return one_line(error),
            _ => {}
        }
    }
    let end = body.len().min(MAX_QUOTED_ERROR_BYTES);
    one_line(&String::from_utf8_lossy(&body[..end]))
}

/// Server text as one log line of at most `MAX_QUOTED_ERROR_BYTES`: control
/// characters and runs of whitespace become one space, so a server cannot
/// forge extra lines in the app's log.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_QUOTED_ERROR_BYTES));
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        let room = MAX_QUOTED_ERROR_BYTES.saturating_sub(out.len());
        if word.len() <= room {
            out.push_str(word);
            continue;
        }
        // Cut the last word on a character boundary and stop.
        let cut = (0..=room)
            .rev()
            .find(|i| word.is_char_boundary(*i))
            .unwrap_or(0);
        out.push_str(&word[..cut]);
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_lists_each_rejected_index_once_with_its_reason() {
        let body = br#"{"accepted":1,"rejected":[{"index":2,"error":"bad ts"},{"index":0,"error":"no type"},{"index":2,"error":"dup"}]}"#;
        let verdict = parse_verdict(body, 3);
        assert_eq!(
            verdict.rejected,
            vec![(2, "bad ts".to_owned()), (0, "no type".to_owned())]
        );
        assert_eq!(verdict.problem, None);
    }

    #[test]
    fn verdict_ignores_out_of_range_indices_and_says_so() {
        let verdict = parse_verdict(br#"{"accepted":2,"rejected":[{"index":9,"error":"x"}]}"#, 2);
        assert!(verdict.rejected.is_empty());
        assert!(verdict.problem.is_some());
    }

    #[test]
    fn verdict_of_a_garbage_body_rejects_nothing() {
        let verdict = parse_verdict(b"\xff\x00", 5);
        assert!(verdict.rejected.is_empty());
        assert!(verdict.problem.is_some());
    }

    #[test]
    fn error_bodies_are_quoted_as_error_and_detail() {
        assert_eq!(
            quote_error(br#"{"error":"too large","detail":"max 8 MiB"}"#),
            "too large: max 8 MiB"
        );
        assert_eq!(quote_error(b"plain text"), "plain text");
    }

    #[test]
    fn server_text_cannot_forge_log_lines() {
        assert_eq!(
            quote_error(b"<html>\r\n  <p>busy</p>\nERROR fake line"),
            "<html> <p>busy</p> ERROR fake line"
        );
        assert_eq!(
            quote_error(br#"{"error":"bad\nINFO forged","detail":"x"}"#),
            "bad INFO forged: x"
        );
        let long = quote_error(&[b'a'; 10_000]);
        assert!(!long.is_empty() && long.len() <= MAX_QUOTED_ERROR_BYTES);
    }

    fn test_queue_limits() -> crate::queue::QueueLimits {
        crate::queue::QueueLimits {
            capacity_events: 10,
            capacity_bytes: 1_000,
            wake_at_events: 5,
            wake_at_bytes: 1_000,
        }
    }

    fn event(len: usize) -> Event {
        Event {
            doc: vec![b'x'; len].into_boxed_slice(),
            high_priority: false,
        }
    }

    #[test]
    fn after_a_panic_the_held_events_are_dropped_counted_and_flushers_released() {
        let config = crate::ClientBuilder::new()
            .endpoint("http://127.0.0.1:9")
            .into_config()
            .expect("config");
        let shared = Arc::new(Shared::default());
        let (producer, consumer) = crate::queue::bounded(test_queue_limits());
        let mut sender = Sender::new(&config, Arc::clone(&shared), consumer);
        // One event in the open batch, one carried over, both taken from
        // the queue as the sender takes them.
        let take = || match (producer.push(event(3)), sender.queue.try_take()) {
            (Ok(()), Some(Item::Event(event))) => event,
            _ => panic!("the queue gives back what was pushed"),
        };
        let (first, second) = (take(), take());
        sender.batch.push(first);
        sender.batch.carry = Some(second);
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        sender.batch.flush_acks.push(ack_tx);

        sender.recover_after_panic();

        assert_eq!(shared.counters.snapshot().dropped, 2);
        assert!(sender.batch.events.is_empty() && sender.batch.carry.is_none());
        assert_eq!(sender.batch.bytes, 0);
        assert!(matches!(
            ack_rx.try_recv(),
            Err(crossbeam_channel::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_capped_ceiling() {
        let config = crate::ClientBuilder::new()
            .endpoint("http://127.0.0.1:9")
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
            .into_config()
            .expect("config");
        let (_producer, consumer) = crate::queue::bounded(test_queue_limits());
        let mut sender = Sender::new(&config, Arc::default(), consumer);
        for (attempt, ceiling_ms) in [(1, 10), (2, 20), (3, 40), (4, 50), (40, 50)] {
            let waits: Vec<u128> = (0..200)
                .map(|_| sender.delivery.backoff(attempt).as_millis())
                .collect();
            assert!(waits.iter().all(|w| *w <= ceiling_ms), "attempt {attempt}");
            assert!(waits.iter().any(|w| *w < ceiling_ms / 2), "not jittered");
        }
    }

    #[test]
    fn batch_carries_the_event_that_would_overflow_its_bytes() {
        let limits = BatchLimits {
            max_events: 10,
            max_bytes: 10,
            max_delay: Duration::from_millis(1),
        };
        let item = |len| Item::Event(event(len));
        let mut batch = Batch::default();
        assert_eq!(batch.take(item(4), &limits), Fill::Open);
        assert_eq!(batch.take(item(6), &limits), Fill::Full);
        assert_eq!(batch.events.len(), 1);
        assert!(batch.carry.is_some());
    }
}
