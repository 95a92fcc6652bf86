//! Test doubles for crates that drive a [`Sink`] (the flushers): an
//! in-memory sink with the same idempotence as the real ones, and scripted
//! faults so retry, dead-letter and backpressure paths can be tested without
//! a database. Behind the `testing` feature: never in a production build.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::model::EventDoc;
use crate::sink::{RetentionOutcome, Sink, SinkError, WriteOutcome};
use crate::ObjectId;

/// Most events per batch the memory sink accepts (small, so tests reach it).
pub const MEMORY_MAX_BATCH_EVENTS: usize = 1024;

/// What the next `write_batch` call does instead of writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Fail with [`SinkError::Transient`]; nothing is stored.
    Transient,
    /// Fail with [`SinkError::DocRefused`] for the event at this batch index
    /// (or the last one if the batch is shorter); nothing is stored.
    Refuse {
        /// Batch index of the refused event.
        index: usize,
    },
    /// Fail with [`SinkError::Permanent`]; nothing is stored.
    Permanent,
    /// Panic inside `write_batch` (a bug in a sink); nothing is stored.
    Panic,
}

#[derive(Debug, Default)]
struct State {
    docs: HashMap<ObjectId, EventDoc>,
    order: Vec<ObjectId>,
    faults: VecDeque<Fault>,
    batches_committed: u64,
}

/// A shared view of a [`MemorySink`]'s contents, usable after the sink has
/// moved to a flusher thread.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

/// An in-memory [`Sink`], idempotent by `_id` like the real backends.
#[derive(Debug)]
pub struct MemorySink {
    store: MemoryStore,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink writing into this store.
    pub fn sink(&self) -> MemorySink {
        MemorySink {
            store: self.clone(),
        }
    }

    /// Makes the next write calls fail, in order, one fault per call.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Stored ids in insertion order.
    pub fn ids(&self) -> Vec<ObjectId> {
        self.lock().order.clone()
    }

    /// The stored event with this id.
    pub fn get(&self, id: ObjectId) -> Option<EventDoc> {
        self.lock().docs.get(&id).cloned()
    }

    /// Number of stored events.
    pub fn count(&self) -> usize {
        self.lock().order.len()
    }

    /// Number of batches that succeeded.
    pub fn batches_committed(&self) -> u64 {
        self.lock().batches_committed
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep
        // the data readable for its report.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink for MemorySink {
    fn write_batch(&mut self, batch: &[EventDoc]) -> Result<WriteOutcome, SinkError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let mut state = self.store.lock();
        if batch.len() > MEMORY_MAX_BATCH_EVENTS {
            return Err(SinkError::permanent(
                "writing to memory",
                format!(
                    "batch of {} events exceeds max_batch_events {MEMORY_MAX_BATCH_EVENTS}",
                    batch.len()
                ),
            ));
        }
        if let Some(fault) = state.faults.pop_front() {
            if fault == Fault::Panic {
                drop(state);
                panic!("injected panic in MemorySink::write_batch");
            }
            return Err(fault_error(fault, batch));
        }
        let mut outcome = WriteOutcome::default();
        let State { docs, order, .. } = &mut *state;
        for event in batch {
            match docs.entry(event.id) {
                Entry::Occupied(_) => outcome.duplicates += 1,
                Entry::Vacant(slot) => {
                    slot.insert(event.clone());
                    order.push(event.id);
                    outcome.inserted += 1;
                }
            }
        }
        state.batches_committed += 1;
        Ok(outcome)
    }

    fn max_batch_events(&self) -> usize {
        MEMORY_MAX_BATCH_EVENTS
    }

    fn delete_older_than(
        &mut self,
        recv_cutoff_ms: i64,
        _max_rows_per_txn: usize,
    ) -> Result<RetentionOutcome, SinkError> {
        let mut state = self.store.lock();
        let State { docs, order, .. } = &mut *state;
        let before = order.len();
        order.retain(|id| {
            docs.get(id)
                .is_some_and(|doc| doc.recv_ms >= recv_cutoff_ms)
        });
        docs.retain(|_, doc| doc.recv_ms >= recv_cutoff_ms);
        let rows_deleted = (before - order.len()) as u64;
        Ok(RetentionOutcome {
            rows_deleted,
            transactions: u64::from(rows_deleted > 0),
        })
    }

    fn ping(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "memory://".to_owned()
    }
}

fn fault_error(fault: Fault, batch: &[EventDoc]) -> SinkError {
    match fault {
        Fault::Transient => SinkError::transient("writing to memory", "injected transient fault"),
        Fault::Permanent | Fault::Panic => {
            SinkError::permanent("writing to memory", "injected permanent fault")
        }
        Fault::Refuse { index } => {
            let index = index.min(batch.len().saturating_sub(1));
            match batch.get(index) {
                Some(event) => SinkError::DocRefused {
                    index,
                    id: event.id,
                    reason: "injected refusal".to_owned(),
                },
                None => {
                    SinkError::permanent("writing to memory", "injected refusal of an empty batch")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Envelope, TsRaw};

    fn event(n: u32, recv_ms: i64) -> EventDoc {
        let envelope = Envelope {
            id: ObjectId::from_parts(1, [0; 5], n).expect("small counter"),
            ts_ms: recv_ms,
            recv_ms,
            app: None,
            ts_raw: TsRaw::None,
        };
        EventDoc::from_event_json(r#"{"type":"t"}"#, &envelope).expect("valid event")
    }

    #[test]
    fn memory_sink_is_idempotent_by_id_like_the_real_sinks() {
        let store = MemoryStore::new();
        let mut sink = store.sink();
        let batch = [event(1, 10), event(2, 20), event(1, 10)];
        let first = sink.write_batch(&batch).expect("write");
        assert_eq!((first.inserted, first.duplicates), (2, 1));
        let again = sink.write_batch(&batch[..2]).expect("replay");
        assert_eq!((again.inserted, again.duplicates), (0, 2));
        assert_eq!(store.ids(), [event(1, 10).id, event(2, 20).id]);
    }

    #[test]
    fn injected_faults_fail_one_call_each_and_store_nothing() {
        let store = MemoryStore::new();
        let mut sink = store.sink();
        store.inject([Fault::Transient, Fault::Refuse { index: 1 }]);
        let batch = [event(1, 10), event(2, 20)];

        assert!(sink
            .write_batch(&batch)
            .expect_err("transient")
            .is_transient());
        let refused = sink.write_batch(&batch).expect_err("refused");
        assert!(
            matches!(refused, SinkError::DocRefused { index: 1, .. }),
            "{refused}"
        );
        assert_eq!(store.count(), 0);

        assert_eq!(
            sink.write_batch(&batch).expect("faults used up").inserted,
            2
        );
        assert_eq!(store.batches_committed(), 1);
    }

    #[test]
    fn memory_retention_deletes_by_recv() {
        let store = MemoryStore::new();
        let mut sink = store.sink();
        sink.write_batch(&[event(1, 10), event(2, 20), event(3, 30)])
            .expect("write");
        let outcome = sink.delete_older_than(20, 100).expect("retention");
        assert_eq!(outcome.rows_deleted, 1);
        assert_eq!(store.ids(), [event(2, 20).id, event(3, 30).id]);
    }
}
