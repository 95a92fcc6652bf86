//! [`MongoSink`]: batches of events into one MongoDB collection.
//!
//! The [`Sink`] contract is synchronous; the driver is async. The sink owns
//! a small tokio runtime (one worker thread, so the driver's monitors and
//! pool keep running between batches) and `block_on`s each call from the
//! flusher's writer thread.
//!
//! A batch counts as stored only when every document is either acknowledged
//! under the write concern (default `w: majority, j: true`) or reported as a
//! duplicate key *without* a write concern error (a duplicate under a failed
//! write concern may be a write the majority never saw).

use std::collections::HashMap;
use std::time::Duration;

use bson::raw::RawDocumentBuf;
use bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{Acknowledgment, WriteConcern};
use mongodb::{Client, Collection};

use super::bson_doc::event_to_bson;
use super::classify::{classify, is_transient_code, DUPLICATE_KEY};
use super::collection::{
    client_options, standard_indexes, ttl_index, DEFAULT_COLLECTION, DEFAULT_DATABASE,
    INDEX_RECV_TTL,
};
use crate::error::StoreError;
use crate::model::{EventDoc, FIELD_APP, FIELD_ID, FIELD_TS, FIELD_TYPE};
use crate::sink::{RefusedEvent, RetentionOutcome, Sink, SinkError, WriteOutcome};
use crate::ObjectId;

/// Most events per `write_batch` (the flusher's batch size for MongoDB).
pub const MONGODB_MAX_BATCH_EVENTS: usize = 2000;
/// Most BSON bytes per `insert_many` call: well under the server's 48 MB
/// message limit, so one call is one round trip.
pub const MONGODB_MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// MongoDB's document size limit (`maxBsonObjectSize`).
pub const MONGODB_MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Largest measurement a time-series collection accepts (MongoDB caps a
/// time-series document at 4 MB).
pub const TIMESERIES_MAX_MEASUREMENT_BYTES: usize = 4 * 1024 * 1024;
/// Bound on waiting for the write concern: past it the batch fails as
/// transient and is retried (idempotent), instead of hanging forever when a
/// majority is gone.
const WRITE_CONCERN_TIMEOUT: Duration = Duration::from_secs(10);
/// Server code: an index with this name exists with other options.
const INDEX_OPTIONS_CONFLICT: i32 = 85;
/// Server code: the collection exists already.
const NAMESPACE_EXISTS: i32 = 48;
const SECONDS_PER_DAY: f64 = 86_400.0;

/// How events are laid out in the collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MongoLayout {
    /// One document per event in a regular collection, unique `_id`.
    #[default]
    Standard,
    /// A time-series collection (timeField `ts`, metaField `type`). It does
    /// not enforce unique `_id`, so every batch is first filtered by a
    /// `find` on its ids (a batch may be a replay after a restart or a
    /// retry); documents are capped at [`TIMESERIES_MAX_MEASUREMENT_BYTES`].
    TimeSeries,
}

/// What the MongoDB sink needs besides the connection string.
#[derive(Debug, Clone, PartialEq)]
pub struct MongoOptions {
    /// Database name.
    pub database: String,
    /// Collection name.
    pub collection: String,
    /// Regular or time-series collection.
    pub layout: MongoLayout,
    /// Events older than this many days (by `recv`, or `ts` in the
    /// time-series layout) expire through a TTL index; `None` keeps them.
    pub retention_days: Option<f64>,
}

impl Default for MongoOptions {
    fn default() -> Self {
        Self {
            database: DEFAULT_DATABASE.to_owned(),
            collection: DEFAULT_COLLECTION.to_owned(),
            layout: MongoLayout::Standard,
            retention_days: None,
        }
    }
}

/// A [`Sink`] writing to MongoDB.
pub struct MongoSink {
    runtime: tokio::runtime::Runtime,
    client: Client,
    collection: Collection<RawDocumentBuf>,
    options: MongoOptions,
    described: String,
    /// Indexes / collection created (done lazily so a collector starts while
    /// MongoDB is down, and retried until it succeeds).
    prepared: bool,
}

impl std::fmt::Debug for MongoSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSink")
            .field("store", &self.described)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl MongoSink {
    /// Parses `uri` and builds the client. Does not contact the server:
    /// a collector starts (and journals) while MongoDB is unreachable.
    pub fn open(uri: &str, options: MongoOptions) -> Result<Self, StoreError> {
        let invalid = |reason: String| StoreError::InvalidUri { reason };
        if options.database.is_empty() || options.collection.is_empty() {
            return Err(invalid(
                "MongoDB database and collection names must not be empty".to_owned(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("helios-mongodb")
            .enable_all()
            .build()
            .map_err(|e| invalid(format!("cannot start the MongoDB driver's runtime: {e}")))?;
        let mut client_options = runtime
            .block_on(client_options(uri, "helios-collector"))
            // The driver's message names the problem, never the password.
            .map_err(|e| invalid(format!("mongodb URI: {e}")))?;
        if client_options.write_concern.is_none() {
            client_options.write_concern = Some(default_write_concern());
        }
        if let Some(wc) = client_options.write_concern.as_mut() {
            if matches!(wc.w, Some(Acknowledgment::Nodes(0))) {
                return Err(invalid(
                    "w=0 (unacknowledged) cannot confirm durability; use w=1 or more".to_owned(),
                ));
            }
            wc.w_timeout.get_or_insert(WRITE_CONCERN_TIMEOUT);
        }
        let hosts: Vec<String> = client_options
            .hosts
            .iter()
            .map(ToString::to_string)
            .collect();
        let described = format!(
            "mongodb://{}/{}.{}",
            hosts.join(","),
            options.database,
            options.collection
        );
        // Client::with_options spawns the driver's tasks: inside the runtime.
        let client = {
            let _guard = runtime.enter();
            Client::with_options(client_options)
                .map_err(|e| invalid(format!("mongodb client: {e}")))?
        };
        let collection = client
            .database(&options.database)
            .collection::<RawDocumentBuf>(&options.collection);
        Ok(Self {
            runtime,
            client,
            collection,
            options,
            described,
            prepared: false,
        })
    }

    /// Creates the collection (time-series layout) and the indexes of
    /// DESIGN §5, and the TTL for retention. Idempotent.
    fn prepare(&mut self) -> Result<(), SinkError> {
        if self.prepared {
            return Ok(());
        }
        let db = self.client.database(&self.options.database);
        let name = self.options.collection.clone();
        let expire_after_s = self
            .options
            .retention_days
            .map(|days| (days * SECONDS_PER_DAY).ceil().max(1.0) as i64);
        let layout = self.options.layout;
        self.runtime.block_on(async {
            match layout {
                MongoLayout::TimeSeries => {
                    let mut create = doc! {
                        "create": &name,
                        "timeseries": { "timeField": FIELD_TS, "metaField": FIELD_TYPE, "granularity": "seconds" },
                    };
                    if let Some(seconds) = expire_after_s {
                        create.insert("expireAfterSeconds", seconds);
                    }
                    match db.run_command(create).await {
                        Ok(_) => {}
                        Err(e) if command_code(&e) == Some(NAMESPACE_EXISTS) => {
                            if let Some(seconds) = expire_after_s {
                                db.run_command(doc! { "collMod": &name, "expireAfterSeconds": seconds })
                                    .await
                                    .map_err(|e| classify("setting the time-series TTL".to_owned(), e))?;
                            }
                        }
                        Err(e) => return Err(classify("creating the time-series collection".to_owned(), e)),
                    }
                }
                MongoLayout::Standard => {
                    let indexes = standard_indexes();
                    db.run_command(doc! { "createIndexes": &name, "indexes": indexes })
                        .await
                        .map_err(|e| classify("creating indexes".to_owned(), e))?;
                    if let Some(seconds) = expire_after_s {
                        let ttl = ttl_index(seconds);
                        match db.run_command(doc! { "createIndexes": &name, "indexes": [ttl] }).await {
                            Ok(_) => {}
                            Err(e) if command_code(&e) == Some(INDEX_OPTIONS_CONFLICT) => {
                                // Retention changed since the index was made.
                                db.run_command(doc! {
                                    "collMod": &name,
                                    "index": { "name": INDEX_RECV_TTL, "expireAfterSeconds": seconds },
                                })
                                .await
                                .map_err(|e| classify("changing the TTL index".to_owned(), e))?;
                            }
                            Err(e) => return Err(classify("creating the TTL index".to_owned(), e)),
                        }
                    }
                }
            }
            Ok(())
        })?;
        self.prepared = true;
        Ok(())
    }

    /// The `app` of each of `candidates` already in the collection
    /// (time-series layout, where a replay is not refused by the server).
    fn existing_ids(
        &self,
        candidates: &[(usize, RawDocumentBuf)],
        batch: &[EventDoc],
    ) -> Result<HashMap<ObjectId, Option<String>>, SinkError> {
        let indexes: Vec<usize> = candidates.iter().map(|(i, _)| *i).collect();
        let (min_ts, max_ts) = indexes.iter().fold((i64::MAX, i64::MIN), |(lo, hi), i| {
            (lo.min(batch[*i].ts_ms), hi.max(batch[*i].ts_ms))
        });
        // The time bounds let the server skip buckets by their time range.
        let time_bounds = doc! {
            FIELD_TS: { "$gte": bson::DateTime::from_millis(min_ts), "$lte": bson::DateTime::from_millis(max_ts) },
        };
        self.stored_apps(
            &indexes,
            batch,
            time_bounds,
            "looking up possibly replayed ids",
        )
    }

    /// The `app` stored with each of the batch events at `indexes` that the
    /// collection holds (`None` inside: stored without an app), read with
    /// `extra` added to the `_id` filter.
    fn stored_apps(
        &self,
        indexes: &[usize],
        batch: &[EventDoc],
        extra: Document,
        what: &'static str,
    ) -> Result<HashMap<ObjectId, Option<String>>, SinkError> {
        let ids: Vec<Bson> = indexes
            .iter()
            .map(|i| Bson::ObjectId(bson::oid::ObjectId::from_bytes(*batch[*i].id.as_bytes())))
            .collect();
        let mut filter = doc! { FIELD_ID: { "$in": ids } };
        filter.extend(extra);
        let collection = self.collection.clone_with_type::<Document>();
        self.runtime.block_on(async move {
            let context = || what.to_owned();
            let mut cursor = collection
                .find(filter)
                .projection(doc! { FIELD_ID: 1, FIELD_APP: 1 })
                .await
                .map_err(|e| classify(context(), e))?;
            let mut found = HashMap::new();
            while cursor.advance().await.map_err(|e| classify(context(), e))? {
                let current = cursor.current();
                if let Ok(oid) = current.get_object_id(FIELD_ID) {
                    let app = current.get_str(FIELD_APP).ok().map(str::to_owned);
                    found.insert(ObjectId::from_bytes(oid.bytes()), app);
                }
            }
            Ok(found)
        })
    }

    /// Sorts the duplicate-key answers for the batch events at `indexes`:
    /// the same app's event resent is a duplicate; an `_id` stored for a
    /// different app refuses this event (one app must never erase
    /// another's event by reusing its id). Returns the duplicates counted.
    fn settle_duplicates(
        &self,
        indexes: &[usize],
        batch: &[EventDoc],
        refused: &mut Vec<RefusedEvent>,
    ) -> Result<u64, SinkError> {
        if indexes.is_empty() {
            return Ok(0);
        }
        let stored = self.stored_apps(
            indexes,
            batch,
            Document::new(),
            "reading the apps of duplicate ids",
        )?;
        let mut duplicates = 0;
        for &index in indexes {
            let event = &batch[index];
            match stored.get(&event.id) {
                Some(app) if *app == event.app => duplicates += 1,
                Some(_) => refused.push(RefusedEvent::app_conflict(index, event)),
                // Gone since the insert (TTL): retrying stores it.
                None => {
                    return Err(SinkError::transient(
                        "reading the apps of duplicate ids",
                        format!("{} was a duplicate key and is no longer stored", event.id),
                    ))
                }
            }
        }
        Ok(duplicates)
    }

    /// One `insert_many` of `docs` (`indexes[k]` = batch index of
    /// `docs[k]`): adds to `outcome` and `refused`, or fails as a whole.
    fn insert_chunk(
        &self,
        docs: Vec<RawDocumentBuf>,
        indexes: &[usize],
        batch: &[EventDoc],
        outcome: &mut WriteOutcome,
        refused: &mut Vec<RefusedEvent>,
    ) -> Result<(), SinkError> {
        debug_assert_eq!(docs.len(), indexes.len());
        let sent = docs.len() as u64;
        let context = || format!("inserting {sent} events");
        let result = self
            .runtime
            .block_on(async { self.collection.insert_many(docs).ordered(false).await });
        let error = match result {
            Ok(_) => {
                outcome.inserted += sent;
                return Ok(());
            }
            Err(e) => e,
        };
        let ErrorKind::InsertMany(failure) = error.kind.as_ref() else {
            return Err(classify(context(), error));
        };
        if let Some(wce) = &failure.write_concern_error {
            // Even the duplicates may be writes the majority never saw.
            let reason = format!("write concern not met ({}): {}", wce.code, wce.message);
            return Err(SinkError::transient(context(), reason));
        }
        let write_errors = failure.write_errors.as_deref().unwrap_or_default();
        if let Some(transient) = write_errors.iter().find(|w| is_transient_code(w.code)) {
            let reason = format!(
                "server busy for a document ({}): {}",
                transient.code, transient.message
            );
            return Err(SinkError::transient(context(), reason));
        }
        let mut duplicate_indexes = Vec::new();
        for w in write_errors {
            let Some(&batch_index) = indexes.get(w.index) else {
                return Err(SinkError::transient(
                    context(),
                    format!(
                        "server reported a write error for document {} of {sent}",
                        w.index
                    ),
                ));
            };
            if w.code == DUPLICATE_KEY {
                duplicate_indexes.push(batch_index);
            } else {
                refused.push(RefusedEvent {
                    index: batch_index,
                    id: batch[batch_index].id,
                    reason: format!("MongoDB refused it ({}): {}", w.code, w.message),
                });
            }
        }
        let failed = write_errors.len() as u64;
        outcome.duplicates += self.settle_duplicates(&duplicate_indexes, batch, refused)?;
        outcome.inserted += sent.saturating_sub(failed);
        Ok(())
    }
}

fn default_write_concern() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Majority)
        .journal(true)
        .w_timeout(WRITE_CONCERN_TIMEOUT)
        .build()
}

fn command_code(error: &mongodb::error::Error) -> Option<i32> {
    match error.kind.as_ref() {
        ErrorKind::Command(command) => Some(command.code),
        _ => None,
    }
}

impl Sink for MongoSink {
    fn write_batch(&mut self, batch: &[EventDoc]) -> Result<WriteOutcome, SinkError> {
        if batch.len() > MONGODB_MAX_BATCH_EVENTS {
            return Err(SinkError::permanent(
                "writing a batch",
                format!(
                    "{} events exceed the MongoDB batch limit of {MONGODB_MAX_BATCH_EVENTS}",
                    batch.len()
                ),
            ));
        }
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.prepare()?;
        let max_doc_bytes = match self.options.layout {
            MongoLayout::Standard => MONGODB_MAX_DOCUMENT_BYTES,
            MongoLayout::TimeSeries => TIMESERIES_MAX_MEASUREMENT_BYTES,
        };
        let mut refused = Vec::new();
        let mut converted = Vec::with_capacity(batch.len());
        for (index, event) in batch.iter().enumerate() {
            match event_to_bson(event) {
                Ok(d) if d.as_bytes().len() > max_doc_bytes => refused.push(RefusedEvent {
                    index,
                    id: event.id,
                    reason: format!(
                        "{} BSON bytes exceed MongoDB's limit of {max_doc_bytes} for this collection",
                        d.as_bytes().len()
                    ),
                }),
                Ok(d) => converted.push((index, d)),
                Err(e) => refused.push(RefusedEvent {
                    index,
                    id: event.id,
                    reason: e.to_string(),
                }),
            }
        }
        let mut outcome = WriteOutcome::default();
        if self.options.layout == MongoLayout::TimeSeries && !converted.is_empty() {
            let existing = self.existing_ids(&converted, batch)?;
            converted.retain(|(i, _)| {
                let event = &batch[*i];
                match existing.get(&event.id) {
                    None => true,
                    Some(app) if *app == event.app => {
                        outcome.duplicates += 1;
                        false
                    }
                    Some(_) => {
                        refused.push(RefusedEvent::app_conflict(*i, event));
                        false
                    }
                }
            });
        }
        let mut chunk = Vec::new();
        let mut chunk_indexes = Vec::new();
        let mut chunk_bytes = 0usize;
        for (index, d) in converted {
            let bytes = d.as_bytes().len();
            if !chunk.is_empty() && chunk_bytes + bytes > MONGODB_MAX_BATCH_BYTES {
                self.insert_chunk(
                    std::mem::take(&mut chunk),
                    &chunk_indexes,
                    batch,
                    &mut outcome,
                    &mut refused,
                )?;
                chunk_indexes.clear();
                chunk_bytes = 0;
            }
            chunk.push(d);
            chunk_indexes.push(index);
            chunk_bytes += bytes;
        }
        if !chunk.is_empty() {
            self.insert_chunk(chunk, &chunk_indexes, batch, &mut outcome, &mut refused)?;
        }
        if refused.is_empty() {
            debug_assert_eq!(outcome.total(), batch.len() as u64);
            Ok(outcome)
        } else {
            debug_assert_eq!(outcome.total() + refused.len() as u64, batch.len() as u64);
            refused.sort_by_key(|r| r.index);
            Err(SinkError::Refused {
                stored: outcome,
                refused,
            })
        }
    }

    fn max_batch_events(&self) -> usize {
        MONGODB_MAX_BATCH_EVENTS
    }

    fn delete_older_than(
        &mut self,
        _recv_cutoff_ms: i64,
        _max_rows_per_txn: usize,
    ) -> Result<RetentionOutcome, SinkError> {
        // The TTL index expires documents server-side; make sure it exists.
        self.prepare()?;
        Ok(RetentionOutcome::default())
    }

    fn ping(&mut self) -> Result<(), SinkError> {
        let db = self.client.database(&self.options.database);
        self.runtime
            .block_on(async { db.run_command(doc! { "ping": 1 }).await })
            .map(drop)
            .map_err(|e| classify("ping".to_owned(), e))
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
