//! Helios client: record structured events from any thread without ever
//! blocking or failing.
//!
//! ```no_run
//! use std::time::Duration;
//! use serde_json::json;
//!
//! let client = helios_client::Client::builder()
//!     .endpoint("http://127.0.0.1:7070")
//!     .app("shop")
//!     .build()
//!     .expect("valid configuration");
//! client.record("order.placed", json!({"order": 42, "total_cents": 1999}));
//! client.flush(Duration::from_secs(5));
//! println!("{:?}", client.stats());
//! ```
//!
//! # Guarantees
//! - [`Client::record`] and [`Client::record_serialize`] mint the event's
//!   `_id` (an [`ObjectId`]) and stamp `ts`, encode the document, put it on a
//!   bounded in-process queue and return. They never block on the network,
//!   never return an error and never panic.
//! - One background thread batches queued events and POSTs them as NDJSON
//!   to `/v1/events` over keep-alive HTTP/1.1 (`http://`; `https://` with
//!   the `tls` feature), retrying with capped exponential
//!   backoff and full jitter, honouring `Retry-After`, failing over between
//!   endpoints. A resend carries byte-identical events, so the collector
//!   stores each `_id` once.
//! - Every event that cannot be delivered is logged whole through the
//!   [`log`] facade at warn/error level under the target
//!   [`LOST_EVENT_LOG_TARGET`]: queue full, invalid or oversized, rejected
//!   by the server (with its reason), retries exhausted, shutdown deadline
//!   passed. Documents above `max_logged_document_bytes` are logged
//!   truncated, with their size, and the line says so.
//! - When the queue is full the NEW event is dropped (counted in
//!   [`Stats::dropped_queue_full`] and logged); queued events keep their
//!   place. The last 10% of the queue (events and bytes) is kept for
//!   events recorded with a `"priority": "high"` field
//!   ([`PRIORITY_FIELD`], [`HIGH_PRIORITY`]): a low- or normal-priority
//!   event is dropped (and logged whole) once the queue is 90% full, a
//!   high one only when it is full. The field is sent as is: the
//!   collector reads it too, refusing `"low"` first and keeping a reserve
//!   for `"high"` when its journal budget nears full.
//! - [`Client::flush`] waits for what was recorded before it; dropping the
//!   last handle or calling [`Client::shutdown`] delivers what is queued,
//!   waiting at most the configured shutdown timeout. A process that exits
//!   without either (e.g. `std::process::exit`) loses what is queued, unlogged.
//!
//! Panics are caught when the crate is built with `panic = "unwind"` (the
//! default); with `panic = "abort"` no library can catch them.

#![warn(missing_docs)]

mod config;
mod event;
mod hostname;
mod lost;
mod object_id;
mod queue;
mod random;
mod sender;
mod stats;
mod timestamp;
pub mod transport;

use std::borrow::{Borrow, Cow};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use serde::Serialize;
use serde_json::Value;

#[cfg(feature = "zstd")]
pub use config::ZSTD_LEVEL;
pub use config::{
    BuildError, ClientBuilder, Compression, RetryPolicy, DEFAULT_CONNECT_TIMEOUT_MS,
    DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF_MS,
    DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_DELAY_MS, DEFAULT_MAX_BATCH_EVENTS,
    DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_LOGGED_DOCUMENT_BYTES, DEFAULT_MAX_RETRY_TIME_MS,
    DEFAULT_QUEUE_CAPACITY_BYTES, DEFAULT_QUEUE_CAPACITY_EVENTS, DEFAULT_READ_TIMEOUT_MS,
    DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_WRITE_TIMEOUT_MS, GZIP_LEVEL,
};
pub use event::{HIGH_PRIORITY, PRIORITY_FIELD};
pub use lost::LOST_EVENT_LOG_TARGET;
pub use object_id::{ObjectId, OBJECT_ID_BYTES, OBJECT_ID_HEX_LEN};
pub use sender::{MAX_RETRY_AFTER_MS, SENDER_THREAD_NAME};
pub use stats::Stats;
pub use transport::{
    EndpointError, EVENTS_PATH, MAX_RESPONSE_BODY_BYTES, MAX_RESPONSE_HEADERS,
    MAX_RESPONSE_HEAD_BYTES,
};

use config::Config;
use event::{Defaults, EncodeError, Event, Stamp};
use lost::LossReason;
use queue::{Consumer, Item, Producer, PushError, QueueLimits};
use sender::Shared;

/// Furthest a flush/shutdown deadline is placed (`Duration::MAX` would
/// overflow `Instant`).
const MAX_WAIT_SECS: u64 = 365 * 24 * 3_600;
/// How long `shutdown` waits past its deadline for the sender to notice it
/// (it re-checks every few tens of ms) and log what it still held.
const SHUTDOWN_GRACE_MS: u64 = 500;

/// A handle to one Helios client: cheap to clone, `Send + Sync`; all clones
/// share one queue and one sender thread. Dropping the last handle shuts the
/// client down (see [`ClientBuilder::shutdown_timeout`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    producer: Producer,
    /// A second receiver, used only at teardown to log what was left.
    leftovers: Consumer,
    shared: Arc<Shared>,
    defaults: Defaults,
    max_event_bytes: usize,
    max_logged_document_bytes: usize,
    shutdown_timeout: Duration,
    closed: AtomicBool,
    /// Disconnects when the sender thread exits.
    done: Receiver<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Client {
    /// A builder with every default; set at least an endpoint.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    fn start(config: Config) -> Result<Client, BuildError> {
        let (producer, consumer) = queue::bounded(QueueLimits {
            capacity_events: config.queue_capacity_events,
            capacity_bytes: config.queue_capacity_bytes,
            // Wake the sender as soon as a full batch is waiting.
            wake_at_events: config.max_batch_events.min(config.queue_capacity_events),
            wake_at_bytes: config.max_batch_bytes.min(config.queue_capacity_bytes),
        });
        let shared = Arc::new(Shared::default());
        let (done_tx, done_rx) = crossbeam_channel::bounded(0);
        let thread = sender::spawn(&config, Arc::clone(&shared), consumer.clone(), done_tx)
            .map_err(BuildError::Spawn)?;
        let inner = Inner {
            producer,
            leftovers: consumer,
            shared,
            defaults: Defaults::new(config.host.as_deref(), config.app.as_deref()),
            max_event_bytes: config.max_event_bytes,
            max_logged_document_bytes: config.max_logged_document_bytes,
            shutdown_timeout: config.shutdown_timeout,
            closed: AtomicBool::new(false),
            done: done_rx,
            thread: Mutex::new(Some(thread)),
        };
        Ok(Client {
            inner: Arc::new(inner),
        })
    }

    /// Records an event of type `event_type` whose fields are the JSON
    /// object `fields` (`Value::Null` for none). Returns the event's `_id`
    /// at once; never blocks, fails or panics. An event that cannot be
    /// queued or encoded (fields not an object, empty type, larger than
    /// `max_event_bytes`, queue full, client shut down) is logged and
    /// counted as dropped.
    ///
    /// `_id` and `type` always come from the client, a `recv` field is
    /// removed (the collector owns it); `ts`, `host` and `app` fields given
    /// here override the client's defaults. A `"priority"` field of
    /// `"high"`, `"normal"` or `"low"` sets the event's priority (see the
    /// crate docs): e.g. `json!({"priority": "high", "order": 42})`.
    pub fn record(&self, event_type: &str, fields: impl Borrow<Value>) -> ObjectId {
        let stamp = Stamp::now();
        stats::add(&self.inner.shared.counters.recorded, 1);
        self.guarded(stamp, event_type, || Ok(Cow::Borrowed(fields.borrow())));
        stamp.id
    }

    /// Records an event whose fields are `fields` serialized to a JSON
    /// object; otherwise exactly like [`Client::record`]. A value that does
    /// not serialize (or not to an object) is logged and dropped, and so is
    /// one whose `Serialize` impl panics.
    pub fn record_serialize<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        fields: &T,
    ) -> ObjectId {
        let stamp = Stamp::now();
        stats::add(&self.inner.shared.counters.recorded, 1);
        self.guarded(stamp, event_type, || {
            serde_json::to_value(fields)
                .map(Cow::Owned)
                .map_err(EncodeError::from)
        });
        stamp.id
    }

    /// Runs `record_fields` so that no panic (from a `Serialize` impl, say)
    /// leaves `record()`.
    fn guarded<'v>(
        &self,
        stamp: Stamp,
        event_type: &str,
        fields: impl FnOnce() -> Result<Cow<'v, Value>, EncodeError>,
    ) {
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            let fields = fields();
            self.record_fields(stamp, event_type, fields.as_ref().map(Cow::as_ref))
        }));
        if outcome.is_err() {
            stats::add(&self.inner.shared.counters.dropped, 1);
            log::error!(
                target: LOST_EVENT_LOG_TARGET,
                "helios event lost (panic while recording): {{\"_id\":\"{}\",\"type\":{:?}}}",
                stamp.id,
                event_type
            );
        }
    }

    fn record_fields(&self, stamp: Stamp, event_type: &str, fields: Result<&Value, &EncodeError>) {
        let inner = &*self.inner;
        let encoded = match fields {
            Ok(fields) => event::encode(stamp, event_type, fields, &inner.defaults),
            Err(error) => return self.lose_unencodable(stamp, event_type, error),
        };
        let event = match encoded {
            Ok(event) => event,
            Err(error) => return self.lose_unencodable(stamp, event_type, &error),
        };
        if event.doc.len() > inner.max_event_bytes {
            let reason = LossReason::TooLarge {
                limit_bytes: inner.max_event_bytes,
            };
            return self.lose(&event, &reason);
        }
        if inner.closed.load(Ordering::Acquire) {
            return self.lose(&event, &LossReason::ClientShutDown);
        }
        match inner.producer.push(event) {
            Ok(()) => {}
            Err((PushError::Full, event)) => {
                stats::add(&inner.shared.counters.dropped_queue_full, 1);
                self.lose(&event, &LossReason::QueueFull);
            }
            Err((PushError::Reserved, event)) => {
                stats::add(&inner.shared.counters.dropped_queue_full, 1);
                self.lose(&event, &LossReason::QueueReserved);
            }
            Err((PushError::Closed, event)) => self.lose(&event, &LossReason::ClientShutDown),
        }
    }

    fn lose(&self, event: &Event, reason: &LossReason<'_>) {
        stats::add(&self.inner.shared.counters.dropped, 1);
        lost::log_lost(reason, &event.doc, self.inner.max_logged_document_bytes);
    }

    /// Logs what is known of an event that could not be encoded.
    fn lose_unencodable(&self, stamp: Stamp, event_type: &str, error: &EncodeError) {
        stats::add(&self.inner.shared.counters.dropped, 1);
        let doc = serde_json::json!({"_id": stamp.id.to_hex(), "type": event_type});
        let doc = serde_json::to_vec(&doc).unwrap_or_default();
        let reason = LossReason::Invalid(error);
        lost::log_lost(&reason, &doc, self.inner.max_logged_document_bytes);
    }

    /// Waits until every event recorded before this call has been sent,
    /// rejected or dropped (and logged), at most `timeout`. True if that
    /// happened in time; check [`Client::stats`] for what was lost.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let inner = &*self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return wait_done(&inner.done, deadline);
        }
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        if !inner.producer.push_flush(ack_tx, timeout) {
            return false;
        }
        ack_rx.recv_deadline(deadline).is_ok()
    }

    /// Stops accepting events, delivers what is queued and stops the sender
    /// thread, waiting at most `timeout`; what is still undelivered then is
    /// logged as lost (the call may take up to `SHUTDOWN_GRACE_MS` = 500 ms
    /// longer while the sender logs it). True if everything queued was settled (sent,
    /// rejected or logged) without hitting the deadline. Later `record()`
    /// calls log and drop their event. Idempotent.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        self.inner.shutdown(timeout)
    }

    /// A snapshot of the delivery counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.counters.snapshot()
    }

    /// Events currently waiting in the queue.
    pub fn queued_events(&self) -> usize {
        self.inner.producer.len()
    }
}

impl Inner {
    fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        self.closed.store(true, Ordering::Release);
        self.shared.request_shutdown(deadline);
        self.producer.wake();
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        if !wait_done(&self.done, deadline.checked_add(grace).unwrap_or(deadline)) {
            return false;
        }
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // The thread has already left its loop; a panic outside the
            // loop's catch_unwind has nothing left to report.
            let _ = thread.join();
        }
        !self.shared.deadline_was_hit()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown(self.shutdown_timeout);
        // An event pushed while shutdown began, or left because the sender
        // could not finish in time, is still logged.
        let mut left = 0u64;
        while let Some(item) = self.leftovers.try_take() {
            if let Item::Event(event) = item {
                left += 1;
                let reason = LossReason::ShutdownDeadline;
                lost::log_lost(&reason, &event.doc, self.max_logged_document_bytes);
            }
        }
        stats::add(&self.shared.counters.dropped, left);
    }
}

fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(MAX_WAIT_SECS)))
        .unwrap_or(now)
}

/// True once the sender thread has exited (its `done` sender dropped).
fn wait_done(done: &Receiver<()>, deadline: Instant) -> bool {
    matches!(
        done.recv_deadline(deadline),
        Err(RecvTimeoutError::Disconnected)
    ) || matches!(done.try_recv(), Err(TryRecvError::Disconnected))
}

/// `Client` must stay shareable across threads; this fails to compile if not.
const _: () = {
    const fn check<T: Send + Sync + Clone>() {}
    check::<Client>();
};
