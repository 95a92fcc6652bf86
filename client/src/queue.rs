//! The bounded in-process queue between `record()` and the sender thread.
//!
//! A crossbeam bounded channel bounds the number of items; an atomic byte
//! count bounds the memory they hold. When either bound is reached the NEW
//! event is refused (the caller logs and counts it): dropping the newest
//! keeps `record()` O(1) and never blocks the app.
//!
//! Priorities (issue 21): the last [`HIGH_PRIORITY_RESERVE_PERCENT`] of
//! both bounds is kept for `"priority": "high"` events. A low- or
//! normal-priority event is refused once the queue is 90% full (events or
//! bytes), a high one only when it is full, so when the collector is slow
//! or gone the events an app marked as mattering most are the last to be
//! dropped. Event counts are reserved with an atomic, as bytes are, so
//! concurrent pushes cannot overshoot the 90% line. Flush requests travel in
//! the same channel so that "everything recorded before flush()" is exactly
//! "everything ahead of the marker".
//!
//! The sender never blocks on the event channel itself: it polls it on its
//! batch tick and otherwise waits on a separate one-slot wake channel. A
//! producer signals that channel only when a full batch is waiting (or for
//! a flush/shutdown), so a typical `record()` never makes the futex call
//! that waking a parked thread costs (measured: it set the p99 at ~12 µs
//! when every push woke the sender). "A full batch is waiting" counts the
//! events the sender already moved into its open batch too (the *unsent*
//! counters, lowered only when a batch leaves): counting the channel alone
//! missed a batch completed by pushes after the sender had taken the first
//! part, which then waited for the next tick (up to `max_batch_delay`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};

use crate::event::Event;

/// Share of the queue (events and bytes), in percent, that only
/// high-priority events may fill.
pub(crate) const HIGH_PRIORITY_RESERVE_PERCENT: usize = 10;

/// How much of `capacity` low- and normal-priority events may fill: all
/// but the reserve, which rounds down (a queue of fewer than 10 events has
/// no reserve rather than no room for normal events).
fn normal_share(capacity: usize) -> usize {
    capacity
        - capacity / 100 * HIGH_PRIORITY_RESERVE_PERCENT
        - capacity % 100 * HIGH_PRIORITY_RESERVE_PERCENT / 100
}

/// What travels from the app's threads to the sender.
#[derive(Debug)]
pub(crate) enum Item {
    /// One encoded event.
    Event(Event),
    /// Deliver everything ahead of this marker, then signal on the channel.
    Flush(Sender<()>),
}

/// Why an event was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// `queue_capacity_events` or `queue_capacity_bytes` reached.
    Full,
    /// A low- or normal-priority event with the queue past the share
    /// they may fill ([`HIGH_PRIORITY_RESERVE_PERCENT`] is kept for high).
    Reserved,
    /// The sender side is gone (the client is being torn down).
    Closed,
}

/// Sizes of a queue and when a push wakes the sender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueLimits {
    /// Most items queued.
    pub(crate) capacity_events: usize,
    /// Most document bytes queued.
    pub(crate) capacity_bytes: usize,
    /// A push that leaves at least this many events queued wakes the sender.
    pub(crate) wake_at_events: usize,
    /// A push that leaves at least this many bytes queued wakes the sender.
    pub(crate) wake_at_bytes: usize,
}

/// Creates a queue and its wake channel.
pub(crate) fn bounded(limits: QueueLimits) -> (Producer, Consumer) {
    let (tx, rx) = crossbeam_channel::bounded(limits.capacity_events);
    // One slot is enough: a wake only says "look now".
    let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let queued_events = Arc::new(AtomicUsize::new(0));
    let unsent = Arc::new(Unsent::default());
    (
        Producer {
            tx,
            wake: wake_tx,
            queued_bytes: Arc::clone(&queued_bytes),
            queued_events: Arc::clone(&queued_events),
            unsent: Arc::clone(&unsent),
            normal_events: normal_share(limits.capacity_events),
            normal_bytes: normal_share(limits.capacity_bytes),
            limits,
        },
        Consumer {
            rx,
            wake: wake_rx,
            queued_bytes,
            queued_events,
            unsent,
        },
    )
}

/// Events (and their document bytes) queued or in the sender's open batch:
/// what the next batch can hold. Raised by a push, lowered when a batch
/// leaves the sender.
#[derive(Debug, Default)]
struct Unsent {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

/// The app's end of the queue.
#[derive(Debug)]
pub(crate) struct Producer {
    tx: Sender<Item>,
    wake: Sender<()>,
    queued_bytes: Arc<AtomicUsize>,
    /// Events queued (flush markers are not counted).
    queued_events: Arc<AtomicUsize>,
    unsent: Arc<Unsent>,
    /// Most events queued that a low- or normal-priority push may leave.
    normal_events: usize,
    /// Most bytes queued that a low- or normal-priority push may leave.
    normal_bytes: usize,
    limits: QueueLimits,
}

impl Producer {
    /// Queues an event without blocking; gives it back when refused.
    pub(crate) fn push(&self, event: Event) -> Result<(), (PushError, Event)> {
        let len = event.doc.len();
        // Reserve the bytes and the slot first so concurrent pushes cannot
        // overshoot.
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        let after = before.saturating_add(len);
        let events_after = self.queued_events.fetch_add(1, Ordering::AcqRel) + 1;
        let refusal =
            if after > self.limits.capacity_bytes || events_after > self.limits.capacity_events {
                Some(PushError::Full)
            } else if !event.high_priority
                && (after > self.normal_bytes || events_after > self.normal_events)
            {
                Some(PushError::Reserved)
            } else {
                None
            };
        if let Some(refusal) = refusal {
            self.unreserve(len);
            return Err((refusal, event));
        }
        // Count the event as unsent before the sender can see it: added
        // after the send, the sender could take it, send its batch and
        // subtract it first, wrapping the counters below zero (caught by
        // CI as an add overflow in a debug build). Each push adds itself,
        // so the one that completes a batch sees it, wherever the sender is
        // in taking the first part.
        let unsent_events = self.unsent.events.fetch_add(1, Ordering::AcqRel) + 1;
        let unsent_bytes = self.unsent.bytes.fetch_add(len, Ordering::AcqRel) + len;
        match self.tx.try_send(Item::Event(event)) {
            Ok(()) => {
                if unsent_events >= self.limits.wake_at_events
                    || unsent_bytes >= self.limits.wake_at_bytes
                {
                    self.wake();
                }
                Ok(())
            }
            Err(refused) => {
                self.unreserve(len);
                self.unsent.events.fetch_sub(1, Ordering::AcqRel);
                self.unsent.bytes.fetch_sub(len, Ordering::AcqRel);
                let kind = match refused {
                    TrySendError::Full(_) => PushError::Full,
                    TrySendError::Disconnected(_) => PushError::Closed,
                };
                match refused.into_inner() {
                    Item::Event(event) => Err((kind, event)),
                    Item::Flush(_) => unreachable_flush(),
                }
            }
        }
    }

    /// Gives back what a refused push reserved.
    fn unreserve(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.queued_events.fetch_sub(1, Ordering::AcqRel);
    }

    /// Queues a flush marker, waiting at most `timeout` for room, and wakes
    /// the sender.
    pub(crate) fn push_flush(&self, ack: Sender<()>, timeout: Duration) -> bool {
        match self.tx.send_timeout(Item::Flush(ack), timeout) {
            Ok(()) => {
                self.wake();
                true
            }
            Err(SendTimeoutError::Timeout(_) | SendTimeoutError::Disconnected(_)) => false,
        }
    }

    /// Asks the sender to look at the queue and the shared state now.
    pub(crate) fn wake(&self) {
        // Full means a wake is already pending, which is just as good.
        let _ = self.wake.try_send(());
    }

    /// Events currently queued.
    pub(crate) fn len(&self) -> usize {
        self.tx.len()
    }
}

/// `push` only ever sends `Item::Event`, so a refused item is that event.
#[cold]
fn unreachable_flush() -> ! {
    unreachable!("Producer::push only sends events")
}

/// The sender thread's end of the queue (also kept by the client to log
/// anything left behind at teardown).
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    rx: Receiver<Item>,
    wake: Receiver<()>,
    queued_bytes: Arc<AtomicUsize>,
    queued_events: Arc<AtomicUsize>,
    unsent: Arc<Unsent>,
}

impl Consumer {
    /// Says that `events` events of `bytes` document bytes, taken from the
    /// queue earlier, have left the sender (sent, or given up on), so
    /// they no longer count towards the next batch.
    pub(crate) fn batch_left(&self, events: usize, bytes: usize) {
        let before = self.unsent.events.fetch_sub(events, Ordering::AcqRel);
        debug_assert!(before >= events, "more events left than were pushed");
        let before = self.unsent.bytes.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "more bytes left than were pushed");
    }

    /// Takes the next item if one is waiting.
    pub(crate) fn try_take(&self) -> Option<Item> {
        let item = self.rx.try_recv().ok()?;
        if let Item::Event(event) = &item {
            self.queued_bytes
                .fetch_sub(event.doc.len(), Ordering::AcqRel);
            self.queued_events.fetch_sub(1, Ordering::AcqRel);
        }
        Some(item)
    }

    /// Waits for a wake until `deadline`; true if woken. Once the client is
    /// gone (no producer left) it just sleeps, so it can never spin.
    pub(crate) fn wait_for_wake(&self, deadline: Instant) -> bool {
        match self.wake.recv_deadline(deadline) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(len: usize) -> Event {
        Event {
            doc: vec![b'x'; len].into_boxed_slice(),
            high_priority: false,
        }
    }

    fn high(len: usize) -> Event {
        Event {
            high_priority: true,
            ..event(len)
        }
    }

    #[test]
    fn the_reserve_is_a_tenth_rounded_down() {
        assert_eq!(normal_share(10), 9);
        assert_eq!(normal_share(100), 90);
        assert_eq!(normal_share(10_000), 9_000);
        assert_eq!(normal_share(9), 9, "no reserve below 10");
        assert_eq!(normal_share(1), 1);
        assert_eq!(normal_share(0), 0);
        assert_eq!(normal_share(usize::MAX), usize::MAX - usize::MAX / 10);
    }

    #[test]
    fn normal_events_stop_at_90_percent_and_high_ones_fill_the_rest() {
        let (producer, consumer) = bounded(limits(10, 1_000));
        for _ in 0..9 {
            assert!(producer.push(event(1)).is_ok());
        }
        assert!(matches!(
            producer.push(event(1)),
            Err((PushError::Reserved, _))
        ));
        assert!(producer.push(high(1)).is_ok());
        assert!(matches!(producer.push(high(1)), Err((PushError::Full, _))));
        assert_eq!(producer.len(), 10);
        // Taking one frees a slot for high but not for normal (still 90%).
        assert!(consumer.try_take().is_some());
        assert!(matches!(
            producer.push(event(1)),
            Err((PushError::Reserved, _))
        ));
        assert!(producer.push(high(1)).is_ok());
    }

    #[test]
    fn the_byte_bound_keeps_its_reserve_too() {
        let (producer, consumer) = bounded(limits(100, 100));
        assert!(producer.push(event(80)).is_ok());
        assert!(matches!(
            producer.push(event(11)),
            Err((PushError::Reserved, _))
        ));
        assert!(producer.push(event(10)).is_ok(), "exactly 90 bytes");
        assert!(producer.push(high(10)).is_ok(), "exactly 100 bytes");
        assert!(matches!(producer.push(high(1)), Err((PushError::Full, _))));
        while consumer.try_take().is_some() {}
        assert!(
            producer.push(event(90)).is_ok(),
            "everything was given back"
        );
    }

    fn limits(capacity_events: usize, capacity_bytes: usize) -> QueueLimits {
        QueueLimits {
            capacity_events,
            capacity_bytes,
            wake_at_events: 3,
            wake_at_bytes: capacity_bytes,
        }
    }

    #[test]
    fn refuses_the_new_event_when_the_item_bound_is_reached() {
        let (producer, _consumer) = bounded(limits(2, 1_000));
        assert!(producer.push(event(1)).is_ok());
        assert!(producer.push(event(1)).is_ok());
        assert!(matches!(producer.push(event(1)), Err((PushError::Full, _))));
    }

    #[test]
    fn refuses_the_new_event_when_the_byte_bound_is_reached_and_frees_bytes_on_take() {
        let (producer, consumer) = bounded(limits(10, 100));
        assert!(producer.push(event(60)).is_ok());
        assert!(matches!(
            producer.push(event(60)),
            Err((PushError::Full, _))
        ));
        assert!(consumer.try_take().is_some());
        assert!(producer.push(event(60)).is_ok());
    }

    #[test]
    fn a_push_wakes_the_sender_only_once_a_batch_is_waiting() {
        let (producer, consumer) = bounded(limits(10, 1_000));
        let soon = || Instant::now() + Duration::from_millis(1);
        assert!(producer.push(event(1)).is_ok());
        assert!(producer.push(event(1)).is_ok());
        assert!(!consumer.wait_for_wake(soon()));
        assert!(producer.push(event(1)).is_ok());
        assert!(consumer.wait_for_wake(soon()));
    }

    #[test]
    fn a_push_completing_a_batch_the_sender_already_began_wakes_it() {
        let (producer, consumer) = bounded(limits(10, 1_000));
        let soon = || Instant::now() + Duration::from_millis(1);
        assert!(producer.push(event(1)).is_ok());
        assert!(producer.push(event(1)).is_ok());
        // The sender moves both into its open batch, then waits.
        assert!(consumer.try_take().is_some() && consumer.try_take().is_some());
        assert!(!consumer.wait_for_wake(soon()));
        // One more makes a batch of three, though the channel holds one.
        assert!(producer.push(event(1)).is_ok());
        assert!(consumer.wait_for_wake(soon()));
    }

    #[test]
    fn once_a_batch_left_the_next_one_counts_from_zero() {
        let (producer, consumer) = bounded(limits(10, 1_000));
        let soon = || Instant::now() + Duration::from_millis(1);
        for _ in 0..3 {
            assert!(producer.push(event(1)).is_ok());
        }
        assert!(consumer.wait_for_wake(soon()));
        while consumer.try_take().is_some() {}
        consumer.batch_left(3, 3);
        assert!(producer.push(event(1)).is_ok());
        assert!(!consumer.wait_for_wake(soon()), "one event is no batch");
    }

    #[test]
    fn a_sender_sending_each_event_at_once_never_sees_more_leave_than_was_pushed() {
        const PUSHES_PER_THREAD: usize = 200_000;
        const THREADS: usize = 2;
        let (producer, consumer) = bounded(limits(1_024, 1 << 20));
        let producer = Arc::new(producer);
        let pushers: Vec<_> = (0..THREADS)
            .map(|_| {
                let producer = Arc::clone(&producer);
                std::thread::spawn(move || {
                    let mut pushed = 0;
                    while pushed < PUSHES_PER_THREAD {
                        if producer.push(event(7)).is_ok() {
                            pushed += 1;
                        }
                    }
                })
            })
            .collect();
        // The tightest sender: every event leaves the moment it is taken,
        // racing the push that queued it.
        let mut left = 0;
        while left < THREADS * PUSHES_PER_THREAD {
            if let Some(Item::Event(event)) = consumer.try_take() {
                consumer.batch_left(1, event.doc.len());
                left += 1;
            }
        }
        for pusher in pushers {
            pusher.join().expect("a push panicked");
        }
        assert_eq!(consumer.unsent.events.load(Ordering::Acquire), 0);
        assert_eq!(consumer.unsent.bytes.load(Ordering::Acquire), 0);
    }
}
