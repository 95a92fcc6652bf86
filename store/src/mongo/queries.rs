//! IR → MongoDB filter documents and aggregation pipelines (pure functions,
//! tested without a server), and [`MongoQueries`], the [`QueryBackend`] over
//! a `helios.events`-style collection (DESIGN §5: fields at top level, `_id`
//! an ObjectId, `ts`/`recv` BSON dates).
//!
//! The IR's semantics are MongoDB's, so the translation is direct: type
//! brackets, any-element array matching and `null` matching a missing field
//! are the server's own behaviour. `Not` becomes `$nor: [f]`, which (unlike
//! `$not`) applies to any filter and, like the IR, matches a missing field.
//! Substring and prefix become anchored/escaped `$regex` strings; regexes
//! are passed as strings with inline flags (`(?i)…`), which PCRE reads too.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bson::oid::ObjectId as BsonObjectId;
use bson::{doc, Bson, Document};
use serde_json::Value;

use crate::model::format_rfc3339_utc_ms;
use crate::ObjectId;

use crate::query::api::{
    DistinctRequest, FieldName, GroupBy, GroupByRequest, GroupCount, GroupKey, Histogram,
    HistogramRequest, Hit, Page, QueryBackend, TailCursor, TailPage, TailRequest, TypeCount,
    MAX_DISTINCT_LIMIT, MAX_FIELD_SAMPLE_DOCS, MAX_READ_DOC_BYTES, MAX_SUGGEST_SCAN_EVENTS,
    MAX_TAIL_LIMIT, MAX_TOP_N,
};
use crate::query::error::QueryError;
use crate::query::fields::field_names;
use crate::query::histogram::Plan;
use crate::query::ir::{
    CompareOp, Cursor, FieldPath, Filter, Literal, Query, Selection, SortOrder, TimeRange, PATH_ID,
    PATH_RECV, PATH_TS, PATH_TYPE,
};
use crate::query::project::project;

use super::collection::client_options;

/// Server-side time limit of every command (`maxTimeMS`): a runaway query
/// is stopped by the server, not left running after the caller gave up.
pub const MONGO_QUERY_MAX_TIME: Duration = Duration::from_secs(30);
/// Server-side time limit of one live-tail poll: polls repeat several times
/// a second per open tail, so a slow filter (a backtracking `$regex` on
/// MongoDB's PCRE) must fail fast instead of holding the server for
/// [`MONGO_QUERY_MAX_TIME`] on every poll.
pub const MONGO_TAIL_MAX_TIME: Duration = Duration::from_secs(2);
/// How long past [`MONGO_QUERY_MAX_TIME`] the client waits for an answer
/// before giving up on its own (network stalls, a hung server).
pub const MONGO_CLIENT_GRACE: Duration = Duration::from_secs(5);
/// How far behind the newest `recv` a tail poll looks again, so events
/// flushed late (a store outage, a journal backlog) are still delivered.
pub const TAIL_LATE_WINDOW_MS: i64 = 60_000;
/// Most ids a tail cursor remembers to deduplicate the trailing window.
pub const MAX_TAIL_SEEN_IDS: usize = 2_000;
/// How often a request waiting on the server looks at the cancel flag
/// ([`QueryBackend::cancel`]): a shutdown waits at most this long for it.
const CANCEL_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Latest `recv` a tail position may name, UTC ms: 9999-12-31T23:59:59.999Z,
/// the last time the stored RFC 3339 form can spell. A position outside
/// `0..=` this was not handed out by this back end.
const MAX_TAIL_POSITION_MS: i64 = 253_402_300_799_999;

/// The filter document of `filter`.
pub fn filter_document(filter: &Filter) -> Document {
    match filter {
        Filter::Compare { path, op, value } => {
            let operator = match op {
                CompareOp::Eq => "$eq",
                CompareOp::Ne => "$ne",
                CompareOp::Lt => "$lt",
                CompareOp::Lte => "$lte",
                CompareOp::Gt => "$gt",
                CompareOp::Gte => "$gte",
            };
            field(path, doc! { operator: literal(value) })
        }
        Filter::In { path, values } => field(path, doc! { "$in": literals(values) }),
        Filter::Nin { path, values } => field(path, doc! { "$nin": literals(values) }),
        Filter::Exists { path, exists } => field(path, doc! { "$exists": *exists }),
        Filter::Contains { path, text } => field(path, doc! { "$regex": regex::escape(text) }),
        Filter::Prefix { path, prefix } => field(
            path,
            doc! { "$regex": format!("^{}", regex::escape(prefix)) },
        ),
        Filter::Regex { path, pattern } => field(path, doc! { "$regex": pattern.source() }),
        Filter::And(children) if children.is_empty() => Document::new(),
        Filter::And(children) => doc! { "$and": documents(children) },
        // `$or` needs a non-empty array: "none of (everything)" matches nothing.
        Filter::Or(children) if children.is_empty() => doc! { "$nor": [Document::new()] },
        Filter::Or(children) => doc! { "$or": documents(children) },
        Filter::Not(child) => doc! { "$nor": [filter_document(child)] },
    }
}

fn field(path: &FieldPath, condition: Document) -> Document {
    let mut document = Document::new();
    document.insert(path.dotted(), condition);
    document
}

fn documents(children: &[Filter]) -> Vec<Document> {
    children.iter().map(filter_document).collect()
}

fn literals(values: &[Literal]) -> Vec<Bson> {
    values.iter().map(literal).collect()
}

/// A literal as BSON: integers are 64-bit, dates are BSON dates, ids
/// ObjectIds.
pub fn literal(value: &Literal) -> Bson {
    match value {
        Literal::Null => Bson::Null,
        Literal::Bool(b) => Bson::Boolean(*b),
        Literal::Int(i) => Bson::Int64(*i),
        Literal::Float(f) => Bson::Double(*f),
        Literal::String(s) => Bson::String(s.clone()),
        Literal::Date(ms) => Bson::DateTime(bson::DateTime::from_millis(*ms)),
        Literal::Id(id) => Bson::ObjectId(object_id(*id)),
    }
}

fn object_id(id: ObjectId) -> BsonObjectId {
    BsonObjectId::from_bytes(*id.as_bytes())
}

fn date(ms: i64) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(ms))
}

/// The filter document of a selection: range on `ts`, types, filter.
pub fn selection_document(select: &Selection) -> Document {
    let mut parts = Vec::with_capacity(3);
    // An open end is left out rather than sent as a date at i64::MIN/MAX:
    // nothing to compare, and some drivers and tools cannot render those.
    let mut range = Document::new();
    if select.range.from_ms != TimeRange::ALL.from_ms {
        range.insert("$gte", date(select.range.from_ms));
    }
    if select.range.to_ms != TimeRange::ALL.to_ms {
        range.insert("$lt", date(select.range.to_ms));
    }
    if !range.is_empty() {
        parts.push(doc! { PATH_TS: range });
    }
    if !select.types.is_empty() {
        parts.push(doc! { PATH_TYPE: { "$in": select.types.clone() } });
    }
    if let Some(filter) = &select.filter {
        let filter = filter_document(filter);
        if !filter.is_empty() {
            parts.push(filter);
        }
    }
    and_all(parts)
}

fn and_all(mut parts: Vec<Document>) -> Document {
    match parts.len() {
        0 => Document::new(),
        1 => parts.remove(0),
        _ => doc! { "$and": parts },
    }
}

/// The `find` filter and sort of one page of `query` (keyset on
/// `(ts, _id)` after `query.after`).
pub fn page_find(query: &Query) -> (Document, Document) {
    let (operator, direction) = match query.sort {
        SortOrder::Desc => ("$lt", -1),
        SortOrder::Asc => ("$gt", 1),
    };
    let mut parts = vec![selection_document(&query.select)];
    if let Some(after) = &query.after {
        parts.push(keyset(after, operator));
    }
    (
        and_all(parts),
        doc! { PATH_TS: direction, PATH_ID: direction },
    )
}

fn keyset(after: &Cursor, operator: &str) -> Document {
    doc! { "$or": [
        { PATH_TS: { operator: date(after.ts_ms) } },
        { PATH_TS: date(after.ts_ms), PATH_ID: { operator: object_id(after.id) } },
    ] }
}

/// `{t: $type, v: value}` of a path: the group key, telling a missing
/// field (`t: "missing"`) from null.
fn group_key_expression(path: &FieldPath) -> Document {
    let value = format!("${}", path.dotted());
    doc! { "t": { "$type": value.clone() }, "v": value }
}

/// Split key of the events whose value is not among the series: one group
/// per bucket for all of them, so the server returns at most
/// (series + 1) rows per bucket whatever the field's cardinality.
const OTHER_SPLIT_KEY: &str = "__helios_other";

/// The pipeline counting events per time bucket (and per split key when
/// `split` is given: `series` are the top values' group ids, as
/// [`top_values_pipeline`] returns them). Buckets are
/// `ts - ((ts % w) + w) % w` on the date's epoch milliseconds, so they match
/// SQLite's integer arithmetic.
pub fn histogram_pipeline(request: &HistogramRequest, series: &[Bson]) -> Vec<Document> {
    let width = Bson::Int64(request.bucket_ms);
    let millis = doc! { "$toLong": format!("${PATH_TS}") };
    let bucket = doc! { "$subtract": [
        millis.clone(),
        { "$mod": [ { "$add": [ { "$mod": [millis, width.clone()] }, width.clone() ] }, width ] },
    ] };
    let mut id = doc! { "b": bucket };
    if let Some(split) = &request.split_by {
        let key = group_key_expression(&split.path);
        // `$literal`: a series value such as "$x" is data, not a path.
        id.insert(
            "k",
            doc! { "$cond": [
                { "$in": [key.clone(), { "$literal": series.to_vec() }] },
                key,
                OTHER_SPLIT_KEY,
            ] },
        );
    }
    vec![
        doc! { "$match": selection_document(&request.select) },
        doc! { "$group": { "_id": id, "n": { "$sum": 1 } } },
    ]
}

/// The pipeline of the `limit` most frequent values of `path`, scanning
/// only the newest `scan` events when given, and only string values with
/// `prefix` when given.
pub fn top_values_pipeline(
    select: &Selection,
    path: &FieldPath,
    limit: usize,
    scan: Option<usize>,
    prefix: Option<&str>,
) -> Vec<Document> {
    let mut pipeline = vec![doc! { "$match": selection_document(select) }];
    if let Some(scan) = scan {
        pipeline.push(doc! { "$sort": { PATH_TS: -1, PATH_ID: -1 } });
        pipeline.push(doc! { "$limit": to_i64(scan) });
    }
    if let Some(prefix) = prefix {
        let mut condition = Document::new();
        condition.insert(
            path.dotted(),
            doc! { "$regex": format!("^{}", regex::escape(prefix)) },
        );
        pipeline.push(doc! { "$match": condition });
    }
    pipeline.push(doc! { "$group": { "_id": group_key_expression(path), "n": { "$sum": 1 } } });
    pipeline.push(doc! { "$sort": { "n": -1, "_id": 1 } });
    pipeline.push(doc! { "$limit": to_i64(limit) });
    pipeline
}

/// The pipeline of event types and counts in a range.
pub fn types_pipeline(range: TimeRange) -> Vec<Document> {
    vec![
        doc! { "$match": selection_document(&Selection::range(range)) },
        doc! { "$group": { "_id": format!("${PATH_TYPE}"), "n": { "$sum": 1 } } },
        doc! { "$sort": { "n": -1, "_id": 1 } },
    ]
}

/// The `find` filter and sort of one tail poll: events received at or after
/// `since_recv_ms` (the trailing window) that are not in `delivered`, oldest
/// first. Excluding the delivered ids on the server makes the poll's limit
/// count only new events, so a busy window cannot hide them.
pub fn tail_find(
    request: &TailRequest,
    since_recv_ms: i64,
    delivered: &[ObjectId],
) -> (Document, Document) {
    let select = Selection {
        range: TimeRange::ALL,
        types: request.types.clone(),
        filter: request.filter.clone(),
    };
    let mut parts = vec![doc! { PATH_RECV: { "$gte": date(since_recv_ms) } }];
    if !delivered.is_empty() {
        let ids: Vec<Bson> = delivered
            .iter()
            .map(|id| Bson::ObjectId(object_id(*id)))
            .collect();
        parts.push(doc! { PATH_ID: { "$nin": ids } });
    }
    parts.push(selection_document(&select));
    (and_all(parts), doc! { PATH_RECV: 1, PATH_ID: 1 })
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored document rendered as SQLite stores it: `_id` as 24 hex digits,
/// dates as RFC 3339 UTC ms, numbers as JSON numbers; other BSON types as
/// their MongoDB shell text.
pub fn document_to_json(document: &Document) -> Value {
    Value::Object(
        document
            .iter()
            .map(|(name, value)| (name.clone(), bson_to_json(value)))
            .collect(),
    )
}

fn bson_to_json(value: &Bson) -> Value {
    match value {
        Bson::ObjectId(id) => Value::String(id.to_hex()),
        Bson::DateTime(when) => {
            let ms = when.timestamp_millis();
            format_rfc3339_utc_ms(ms).map_or_else(|| Value::from(ms), Value::String)
        }
        Bson::Document(document) => document_to_json(document),
        Bson::Array(items) => Value::Array(items.iter().map(bson_to_json).collect()),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Int32(i) => Value::from(*i),
        Bson::Int64(i) => Value::from(*i),
        Bson::Double(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        // Types JSON has no form for (decimal, binary, regex, timestamp…):
        // their MongoDB shell text, readable and never lossy for display.
        other => Value::String(other.to_string()),
    }
}

/// The MongoDB query back end over one collection, driven by a tokio
/// runtime handle (`handle.block_on` per call: call it from a blocking
/// thread such as `spawn_blocking`, never from inside the runtime).
#[derive(Debug, Clone)]
pub struct MongoQueries {
    collection: mongodb::Collection<Document>,
    handle: tokio::runtime::Handle,
    /// `maxTimeMS` of every command but the tail's.
    max_time: Duration,
    /// Set by [`QueryBackend::cancel`].
    cancelled: Arc<AtomicBool>,
}

impl MongoQueries {
    /// Queries `collection` (e.g. `helios.events`) using `handle`'s runtime.
    fn new(collection: mongodb::Collection<Document>, handle: tokio::runtime::Handle) -> Self {
        Self {
            collection,
            handle,
            max_time: MONGO_QUERY_MAX_TIME,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets the server-side time limit of each command (default
    /// [`MONGO_QUERY_MAX_TIME`]; a live-tail poll keeps the shorter of it
    /// and [`MONGO_TAIL_MAX_TIME`]).
    pub fn with_query_timeout(mut self, budget: Duration) -> Self {
        self.max_time = budget;
        self
    }

    /// Connects to `uri` (a `mongodb://` connection string) and queries
    /// `database.collection`. The driver connects lazily: an unreachable
    /// server shows up as a [`QueryError::Store`] on the first request.
    /// `handle` must belong to a multi-thread runtime with time and I/O
    /// enabled (`Builder::new_multi_thread().enable_all()`): a
    /// current-thread runtime's handle cannot drive I/O from another thread.
    pub fn open(
        uri: &str,
        database: &str,
        collection: &str,
        handle: tokio::runtime::Handle,
    ) -> Result<Self, QueryError> {
        let options = handle
            .block_on(client_options(uri, "helios-report"))
            .map_err(|e| QueryError::store("parsing the MongoDB connection string", e))?;
        // The driver spawns its monitors on the current runtime.
        let client = {
            let _entered = handle.enter();
            mongodb::Client::with_options(options)
                .map_err(|e| QueryError::store("creating the MongoDB client", e))?
        };
        let collection = client.database(database).collection(collection);
        Ok(Self::new(collection, handle))
    }

    fn store_error(&self, context: &str, error: mongodb::error::Error) -> QueryError {
        QueryError::store(
            format!(
                "{context} in {}.{}",
                self.collection.namespace().db,
                self.collection.name()
            ),
            error,
        )
    }

    async fn drain(
        &self,
        context: &str,
        mut cursor: mongodb::Cursor<Document>,
        max: usize,
    ) -> Result<Drained, QueryError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        // Past MAX_READ_DOC_BYTES one more document is taken as a sign that
        // more exist (a page then ends early with a cursor; see `query`).
        while out.len() < max && bytes < MAX_READ_DOC_BYTES {
            let more = cursor
                .advance()
                .await
                .map_err(|e| self.store_error(context, e))?;
            if !more {
                break;
            }
            bytes += cursor.current().as_bytes().len();
            out.push(
                cursor
                    .deserialize_current()
                    .map_err(|e| self.store_error(context, e))?,
            );
        }
        Ok(Drained {
            cut_by_bytes: bytes >= MAX_READ_DOC_BYTES && out.len() < max,
            documents: out,
        })
    }

    /// Runs `work` on the runtime with a client-side deadline a little past
    /// the server's `maxTimeMS`, so a server that stops answering cannot
    /// hold the calling thread forever.
    /// It also ends at once, with [`QueryError::Cancelled`], when the back
    /// end is cancelled (the driver then abandons the request).
    fn run<T>(
        &self,
        context: &str,
        work: impl Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        if self.cancelled.load(Ordering::Acquire) {
            return Err(QueryError::Cancelled);
        }
        let limit = self.max_time + MONGO_CLIENT_GRACE;
        let cancelled = Arc::clone(&self.cancelled);
        let answer = self.handle.block_on(async move {
            let mut work = pin!(tokio::time::timeout(limit, work));
            let mut cancel = pin!(async move {
                while !cancelled.load(Ordering::Acquire) {
                    tokio::time::sleep(CANCEL_POLL_INTERVAL).await;
                }
            });
            std::future::poll_fn(|cx| {
                if let Poll::Ready(answer) = work.as_mut().poll(cx) {
                    return Poll::Ready(Some(answer));
                }
                cancel.as_mut().poll(cx).map(|()| None)
            })
            .await
        });
        match answer {
            None => Err(QueryError::Cancelled),
            Some(Ok(result)) => result,
            Some(Err(_)) => {
                tracing::warn!(context, "MongoDB did not answer in time");
                Err(QueryError::Timeout {
                    limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }

    fn find(
        &self,
        context: &str,
        filter: Document,
        sort: Document,
        limit: usize,
    ) -> Result<Drained, QueryError> {
        self.find_within(context, filter, sort, limit, self.max_time)
    }

    /// [`Self::find`] with its own server-side time limit.
    fn find_within(
        &self,
        context: &str,
        filter: Document,
        sort: Document,
        limit: usize,
        max_time: Duration,
    ) -> Result<Drained, QueryError> {
        self.run(context, async {
            let cursor = self
                .collection
                .find(filter)
                .sort(sort)
                .limit(to_i64(limit))
                .max_time(max_time)
                .await
                .map_err(|e| self.store_error(context, e))?;
            self.drain(context, cursor, limit).await
        })
    }

    fn aggregate(
        &self,
        context: &str,
        pipeline: Vec<Document>,
        max: usize,
    ) -> Result<Vec<Document>, QueryError> {
        self.run(context, async {
            let cursor = self
                .collection
                .aggregate(pipeline)
                .max_time(self.max_time)
                .await
                .map_err(|e| self.store_error(context, e))?;
            Ok(self.drain(context, cursor, max).await?.documents)
        })
    }

    fn count(&self, select: &Selection) -> Result<u64, QueryError> {
        self.run("counting events", async {
            self.collection
                .count_documents(selection_document(select))
                .max_time(self.max_time)
                .await
                .map_err(|e| self.store_error("counting events", e))
        })
    }

    fn top_values(
        &self,
        select: &Selection,
        path: &FieldPath,
        limit: usize,
        scan: Option<usize>,
        prefix: Option<&str>,
    ) -> Result<Vec<GroupCount>, QueryError> {
        let pipeline = top_values_pipeline(select, path, limit, scan, prefix);
        let rows = self.aggregate("grouping events", pipeline, limit)?;
        Ok(Self::group_counts(&rows))
    }

    /// The raw rows of the `limit` most frequent values of `path` (their
    /// `_id` is the group id a histogram split matches against).
    fn top_value_rows(
        &self,
        select: &Selection,
        path: &FieldPath,
        limit: usize,
    ) -> Result<Vec<Document>, QueryError> {
        let pipeline = top_values_pipeline(select, path, limit, None, None);
        self.aggregate("grouping events", pipeline, limit)
    }

    fn group_counts(rows: &[Document]) -> Vec<GroupCount> {
        rows.iter()
            .map(|row| GroupCount {
                key: group_key(row.get_document("_id").ok()),
                count: count_of(row),
            })
            .collect()
    }
}

fn hit(document: &Document) -> Result<Hit, QueryError> {
    let corrupt = |reason: &str| QueryError::Corrupt {
        context: "stored MongoDB document".to_owned(),
        reason: reason.to_owned(),
    };
    let id = document
        .get_object_id(PATH_ID)
        .map_err(|_| corrupt("`_id` is not an ObjectId"))?;
    let ts = document
        .get_datetime(PATH_TS)
        .map_err(|_| corrupt("`ts` is not a date"))?;
    Ok(Hit {
        id: ObjectId::from_bytes(id.bytes()),
        ts_ms: ts.timestamp_millis(),
        doc: document_to_json(document),
        stored_text: None,
    })
}

/// Documents read from a cursor, and whether the read stopped at
/// [`MAX_READ_DOC_BYTES`] before its count limit (so more may follow).
struct Drained {
    documents: Vec<Document>,
    cut_by_bytes: bool,
}

/// A `{t, v}` group key back from the server.
fn group_key(key: Option<&Document>) -> GroupKey {
    match key {
        Some(key) if key.get_str("t").is_ok_and(|t| t == "missing") => GroupKey::Missing,
        Some(key) => GroupKey::Value(key.get("v").map_or(Value::Null, bson_to_json)),
        None => GroupKey::Missing,
    }
}

fn count_of(row: &Document) -> u64 {
    match row.get("n") {
        Some(Bson::Int32(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Bson::Int64(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

fn check_top_n(top_n: usize) -> Result<(), QueryError> {
    if top_n == 0 || top_n > MAX_TOP_N {
        return Err(QueryError::Invalid(format!(
            "top_n must be 1..={MAX_TOP_N}, got {top_n}"
        )));
    }
    Ok(())
}

impl QueryBackend for MongoQueries {
    fn query(&self, query: &Query) -> Result<Page, QueryError> {
        let limit = query.effective_limit();
        if limit == 0 {
            return Ok(Page {
                events: Vec::new(),
                next: None,
            });
        }
        let (filter, sort) = page_find(query);
        let Drained {
            documents,
            cut_by_bytes,
        } = self.find("querying events", filter, sort, limit + 1)?;
        // More past this page: a row past the limit, or the byte budget
        // reached (the page then holds what was read, the last one too).
        let more = documents.len() > limit || cut_by_bytes;
        let mut events = Vec::with_capacity(limit);
        for document in documents.iter().take(limit) {
            let mut found = hit(document)?;
            if let Some(paths) = &query.projection {
                found.doc = project(&found.doc, paths);
            }
            events.push(found);
        }
        Ok(Page::keyset(events, more))
    }

    fn histogram(&self, request: &HistogramRequest) -> Result<Histogram, QueryError> {
        let plan = Plan::new(request)?;
        let (series, series_ids) = match &request.split_by {
            Some(split) => {
                check_top_n(split.top_n)?;
                let rows = self.top_value_rows(&request.select, &split.path, split.top_n)?;
                let keys = rows
                    .iter()
                    .map(|row| group_key(row.get_document("_id").ok()))
                    .collect();
                let ids = rows
                    .iter()
                    .filter_map(|row| row.get("_id").cloned())
                    .collect();
                (keys, ids)
            }
            None => (Vec::new(), Vec::new()),
        };
        // Bounded: at most MAX_HISTOGRAM_BUCKETS buckets (the plan checked),
        // each with one row per series value plus one for the others.
        let max_rows = plan
            .bucket_count()
            .saturating_mul(series_ids.len().saturating_add(1));
        let rows = self.aggregate(
            "computing a histogram",
            histogram_pipeline(request, &series_ids),
            max_rows,
        )?;
        let counted = rows
            .iter()
            .filter_map(|row| {
                let id = row.get_document("_id").ok()?;
                let start_ms = match id.get("b")? {
                    Bson::Int64(b) => *b,
                    Bson::Int32(b) => i64::from(*b),
                    _ => return None,
                };
                let key = request.split_by.as_ref().map(|_| match id.get("k") {
                    Some(Bson::String(other)) if other == OTHER_SPLIT_KEY => GroupKey::Other,
                    _ => group_key(id.get_document("k").ok()),
                });
                Some((start_ms, key, count_of(row)))
            })
            .collect();
        Ok(plan.assemble(series, counted))
    }

    fn group_by(&self, request: &GroupByRequest) -> Result<GroupBy, QueryError> {
        check_top_n(request.top_n)?;
        let groups = self.top_values(&request.select, &request.path, request.top_n, None, None)?;
        let total = self.count(&request.select)?;
        let in_groups: u64 = groups.iter().map(|group| group.count).sum();
        Ok(GroupBy {
            groups,
            other_count: total.saturating_sub(in_groups),
            total,
            column: None,
        })
    }

    fn distinct(&self, request: &DistinctRequest) -> Result<Vec<GroupCount>, QueryError> {
        let groups = self.top_values(
            &request.select,
            &request.path,
            request.limit.min(MAX_DISTINCT_LIMIT),
            Some(MAX_SUGGEST_SCAN_EVENTS),
            request.prefix.as_deref(),
        )?;
        Ok(groups
            .into_iter()
            .filter(|group| group.key != GroupKey::Missing)
            .collect())
    }

    fn field_names(&self, range: TimeRange, sample: usize) -> Result<Vec<FieldName>, QueryError> {
        let documents = self
            .find(
                "sampling documents",
                selection_document(&Selection::range(range)),
                doc! { PATH_TS: -1, PATH_ID: -1 },
                sample.min(MAX_FIELD_SAMPLE_DOCS),
            )?
            .documents;
        let docs: Vec<Value> = documents.iter().map(document_to_json).collect();
        Ok(field_names(&docs))
    }

    fn types(&self, range: TimeRange) -> Result<Vec<TypeCount>, QueryError> {
        let rows = self.aggregate("counting types", types_pipeline(range), usize::MAX)?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                Some(TypeCount {
                    event_type: row.get_str("_id").ok()?.to_owned(),
                    count: count_of(row),
                })
            })
            .collect())
    }

    fn get(&self, id: ObjectId) -> Result<Option<Hit>, QueryError> {
        let found = self
            .find(
                "reading one event",
                doc! { PATH_ID: object_id(id) },
                doc! {},
                1,
            )?
            .documents;
        found.first().map(hit).transpose()
    }

    fn tail(&self, request: &TailRequest) -> Result<TailPage, QueryError> {
        let limit = request.limit.min(MAX_TAIL_LIMIT);
        let mut position = match &request.after {
            Some(cursor) => TailPosition::parse(&cursor.0)?,
            None => {
                // Start at the end: after the newest `recv` stored now.
                let newest = self
                    .find(
                        "reading the newest event",
                        Document::new(),
                        doc! { PATH_RECV: -1, PATH_ID: -1 },
                        1,
                    )?
                    .documents;
                let recv_ms = newest
                    .first()
                    .and_then(|d| d.get_datetime(PATH_RECV).ok())
                    .map_or(0, |d| d.timestamp_millis());
                let start = TailPosition {
                    recv_ms,
                    floor_ms: recv_ms.saturating_add(1),
                    seen: Vec::new(),
                };
                return Ok(TailPage {
                    events: Vec::new(),
                    next: TailCursor(start.token()),
                    behind: false,
                });
            }
        };
        let since = position.window_start();
        let delivered: Vec<ObjectId> = position.seen.iter().map(|&(_, id)| id).collect();
        let (filter, sort) = tail_find(request, since, &delivered);
        let documents = self
            .find_within(
                "tailing events",
                filter,
                sort,
                limit,
                MONGO_TAIL_MAX_TIME.min(self.max_time),
            )?
            .documents;
        let mut events = Vec::new();
        for document in &documents {
            let found = hit(document)?;
            // The server excluded them already; a server (or mock) that did
            // not must still not deliver an event twice.
            if delivered.contains(&found.id) || events.len() >= limit {
                continue;
            }
            let recv = document
                .get_datetime(PATH_RECV)
                .map_or(since, |d| d.timestamp_millis());
            position.recv_ms = position.recv_ms.max(recv);
            position.seen.push((recv, found.id));
            events.push(found);
        }
        position.trim();
        // The find itself has no scan bound here: a full page is the only
        // sign that more is waiting.
        let behind = events.len() >= limit && limit > 0;
        Ok(TailPage {
            events,
            next: TailCursor(position.token()),
            behind,
        })
    }

    fn describe(&self) -> String {
        format!(
            "mongodb collection {}.{}",
            self.collection.namespace().db,
            self.collection.name()
        )
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
}

/// A MongoDB tail position: the newest `recv` delivered, the floor below
/// which nothing is read again, and the `(recv, id)` of the events delivered
/// inside the trailing window (excluded from the next poll). Text form:
/// `recv_ms.floor_ms` then `.recv_ms-hex` per delivered event.
///
/// The window trails the newest `recv` by [`TAIL_LATE_WINDOW_MS`] so late
/// flushed events are still delivered; when more than
/// [`MAX_TAIL_SEEN_IDS`] events fall inside it, the floor rises past the
/// oldest ones instead of forgetting them (forgetting would deliver them
/// again), so under heavy load the late window shrinks to the newest
/// [`MAX_TAIL_SEEN_IDS`] events.
#[derive(Debug, Clone, PartialEq)]
struct TailPosition {
    recv_ms: i64,
    floor_ms: i64,
    seen: Vec<(i64, ObjectId)>,
}

impl TailPosition {
    fn window_start(&self) -> i64 {
        self.recv_ms
            .saturating_sub(TAIL_LATE_WINDOW_MS)
            .max(self.floor_ms)
    }

    fn parse(token: &str) -> Result<Self, QueryError> {
        let invalid = || QueryError::Invalid(format!("malformed tail cursor `{token}`"));
        let mut parts = token.split('.');
        let mut number = || -> Result<i64, QueryError> {
            parts
                .next()
                .and_then(|ms| ms.parse().ok())
                .ok_or_else(invalid)
        };
        let recv_ms = number()?;
        // A bare `recv_ms` (a cursor made by hand, or by an older server)
        // starts the window there.
        let floor_ms = number().unwrap_or(i64::MIN);
        let seen = token
            .split('.')
            .skip(2)
            .map(|part| {
                let (recv, hex) = part.rsplit_once('-').ok_or_else(invalid)?;
                let recv = recv.parse().map_err(|_| invalid())?;
                let id = ObjectId::parse_hex(hex).map_err(|_| invalid())?;
                Ok((recv, id))
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        if seen.len() > MAX_TAIL_SEEN_IDS {
            return Err(invalid());
        }
        // Every time in a position this back end hands out is a stored
        // `recv` (or one past it), except the floor of a bare position.
        let in_range = |ms: i64| (0..=MAX_TAIL_POSITION_MS).contains(&ms);
        let floor_ok = floor_ms == i64::MIN || (0..=recv_ms.saturating_add(1)).contains(&floor_ms);
        if !in_range(recv_ms) || !floor_ok || seen.iter().any(|&(recv, _)| !in_range(recv)) {
            return Err(QueryError::Invalid(format!(
                "tail cursor `{token}` is out of range: its times must lie between 0 and \
                 {MAX_TAIL_POSITION_MS} ms, the floor at most one past the newest"
            )));
        }
        Ok(Self {
            recv_ms,
            floor_ms,
            seen,
        })
    }

    fn token(&self) -> String {
        let mut token = format!("{}.{}", self.recv_ms, self.floor_ms);
        for (recv, id) in &self.seen {
            token.push('.');
            token.push_str(&recv.to_string());
            token.push('-');
            token.push_str(&id.to_hex());
        }
        token
    }

    /// Drops delivered ids below the window; past [`MAX_TAIL_SEEN_IDS`],
    /// raises the floor above the oldest ones and drops them too.
    fn trim(&mut self) {
        let start = self.window_start();
        self.seen.retain(|&(recv, _)| recv >= start);
        if self.seen.len() > MAX_TAIL_SEEN_IDS {
            self.seen.sort_unstable();
            let excess = self.seen.len() - MAX_TAIL_SEEN_IDS;
            let newest_dropped = self.seen[excess - 1].0;
            self.floor_ms = self.floor_ms.max(newest_dropped.saturating_add(1));
            let floor = self.floor_ms;
            self.seen.retain(|&(recv, _)| recv >= floor);
        }
        debug_assert!(self.seen.len() <= MAX_TAIL_SEEN_IDS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{RegexPattern, Split};

    fn path(dotted: &str) -> FieldPath {
        FieldPath::parse(dotted).unwrap()
    }

    #[test]
    fn comparisons_map_to_their_operators_with_bson_types() {
        let f = Filter::compare(path("ms"), CompareOp::Gte, Literal::Int(250));
        assert_eq!(filter_document(&f), doc! { "ms": { "$gte": 250_i64 } });
        let f = Filter::eq(path("ts"), Literal::Date(5));
        assert_eq!(
            filter_document(&f),
            doc! { "ts": { "$eq": bson::DateTime::from_millis(5) } }
        );
        let id = ObjectId::from_bytes([7; 12]);
        let f = Filter::eq(path("_id"), Literal::Id(id));
        assert_eq!(
            filter_document(&f),
            doc! { "_id": { "$eq": BsonObjectId::from_bytes([7; 12]) } }
        );
    }

    #[test]
    fn not_is_nor_and_empty_or_matches_nothing() {
        let f = Filter::not(Filter::eq(path("a"), Literal::Null));
        assert_eq!(
            filter_document(&f),
            doc! { "$nor": [ { "a": { "$eq": Bson::Null } } ] }
        );
        assert_eq!(
            filter_document(&Filter::Or(vec![])),
            doc! { "$nor": [ {} ] }
        );
        assert_eq!(filter_document(&Filter::all()), doc! {});
    }

    #[test]
    fn substring_and_prefix_are_escaped_regexes() {
        let f = Filter::Contains {
            path: path("u.email"),
            text: "a.b*".to_owned(),
        };
        assert_eq!(
            filter_document(&f),
            doc! { "u.email": { "$regex": r"a\.b\*" } }
        );
        let f = Filter::Prefix {
            path: path("host"),
            prefix: "web(1)".to_owned(),
        };
        assert_eq!(
            filter_document(&f),
            doc! { "host": { "$regex": r"^web\(1\)" } }
        );
        let f = Filter::Regex {
            path: path("m"),
            pattern: RegexPattern::new("(?i)^err").unwrap(),
        };
        assert_eq!(filter_document(&f), doc! { "m": { "$regex": "(?i)^err" } });
    }

    #[test]
    fn in_and_exists_and_combinations() {
        let f = Filter::And(vec![
            Filter::In {
                path: path("p"),
                values: vec![Literal::String("a".into()), Literal::Float(0.5)],
            },
            Filter::Or(vec![
                Filter::Exists {
                    path: path("c"),
                    exists: false,
                },
                Filter::Nin {
                    path: path("d"),
                    values: vec![Literal::Bool(true)],
                },
            ]),
        ]);
        assert_eq!(
            filter_document(&f),
            doc! { "$and": [
                { "p": { "$in": ["a", 0.5] } },
                { "$or": [ { "c": { "$exists": false } }, { "d": { "$nin": [true] } } ] },
            ] }
        );
    }

    #[test]
    fn selection_ranges_on_ts_and_lists_types() {
        let select = Selection {
            range: TimeRange::new(10, 20),
            types: vec!["signup".into()],
            filter: Some(Filter::eq(path("plan"), Literal::String("pro".into()))),
        };
        assert_eq!(
            selection_document(&select),
            doc! { "$and": [
                { "ts": { "$gte": bson::DateTime::from_millis(10), "$lt": bson::DateTime::from_millis(20) } },
                { "type": { "$in": ["signup"] } },
                { "plan": { "$eq": "pro" } },
            ] }
        );
    }

    #[test]
    fn an_unbounded_selection_sends_no_time_condition() {
        assert_eq!(
            selection_document(&Selection::range(TimeRange::ALL)),
            doc! {}
        );
        let from_only = Selection::range(TimeRange::new(5, i64::MAX));
        assert_eq!(
            selection_document(&from_only),
            doc! { "ts": { "$gte": bson::DateTime::from_millis(5) } }
        );
    }

    #[test]
    fn pages_sort_by_ts_then_id_and_continue_after_the_cursor() {
        let id = ObjectId::from_bytes([1; 12]);
        let query = Query {
            after: Some(Cursor { ts_ms: 15, id }),
            ..Query::new(Selection::range(TimeRange::new(10, 20)))
        };
        let (filter, sort) = page_find(&query);
        assert_eq!(sort, doc! { "ts": -1, "_id": -1 });
        assert_eq!(
            filter,
            doc! { "$and": [
                { "ts": { "$gte": bson::DateTime::from_millis(10), "$lt": bson::DateTime::from_millis(20) } },
                { "$or": [
                    { "ts": { "$lt": bson::DateTime::from_millis(15) } },
                    { "ts": bson::DateTime::from_millis(15), "_id": { "$lt": BsonObjectId::from_bytes([1; 12]) } },
                ] },
            ] }
        );
        let ascending = Query {
            sort: SortOrder::Asc,
            ..query
        };
        assert_eq!(page_find(&ascending).1, doc! { "ts": 1, "_id": 1 });
    }

    #[test]
    fn histogram_buckets_with_floor_modulo_on_epoch_millis() {
        let request = HistogramRequest {
            select: Selection::range(TimeRange::new(0, 100)),
            bucket_ms: 10,
            split_by: Some(Split {
                path: path("plan"),
                top_n: 3,
            }),
        };
        let series = vec![Bson::Document(doc! { "t": "string", "v": "$pro" })];
        let pipeline = histogram_pipeline(&request, &series);
        let millis = doc! { "$toLong": "$ts" };
        let key = doc! { "t": { "$type": "$plan" }, "v": "$plan" };
        assert_eq!(
            pipeline[1],
            doc! { "$group": {
                "_id": {
                    "b": { "$subtract": [
                        millis.clone(),
                        { "$mod": [ { "$add": [ { "$mod": [millis, 10_i64] }, 10_i64 ] }, 10_i64 ] },
                    ] },
                    // Values outside the series fold into one key per
                    // bucket; the series is data (`$literal`), not paths.
                    "k": { "$cond": [
                        { "$in": [key.clone(), { "$literal": [{ "t": "string", "v": "$pro" }] }] },
                        key,
                        OTHER_SPLIT_KEY,
                    ] },
                },
                "n": { "$sum": 1 },
            } }
        );
    }

    #[test]
    fn top_values_group_by_type_and_value_most_frequent_first() {
        let pipeline = top_values_pipeline(
            &Selection::range(TimeRange::new(0, 1)),
            &path("plan"),
            5,
            Some(100),
            Some("p."),
        );
        assert_eq!(pipeline[1], doc! { "$sort": { "ts": -1, "_id": -1 } });
        assert_eq!(pipeline[2], doc! { "$limit": 100_i64 });
        assert_eq!(
            pipeline[3],
            doc! { "$match": { "plan": { "$regex": r"^p\." } } }
        );
        assert_eq!(
            pipeline[4],
            doc! { "$group": { "_id": { "t": { "$type": "$plan" }, "v": "$plan" }, "n": { "$sum": 1 } } }
        );
        assert_eq!(pipeline[5], doc! { "$sort": { "n": -1, "_id": 1 } });
        assert_eq!(pipeline[6], doc! { "$limit": 5_i64 });
    }

    #[test]
    fn group_keys_tell_missing_from_null() {
        assert_eq!(group_key(Some(&doc! { "t": "missing" })), GroupKey::Missing);
        assert_eq!(
            group_key(Some(&doc! { "t": "null", "v": Bson::Null })),
            GroupKey::Value(Value::Null)
        );
        assert_eq!(
            group_key(Some(&doc! { "t": "string", "v": "pro" })),
            GroupKey::Value(Value::String("pro".into()))
        );
    }

    #[test]
    fn documents_render_like_the_sqlite_doc() {
        let document = doc! {
            "_id": BsonObjectId::from_bytes([0xab; 12]),
            "type": "signup",
            "ts": bson::DateTime::from_millis(1_796_066_503_000),
            "n": 3_i32,
            "big": 1_i64 << 40,
            "f": 0.5,
            "nested": { "a": [1_i32, "x", Bson::Null] },
        };
        assert_eq!(
            document_to_json(&document),
            serde_json::json!({
                "_id": "abababababababababababab",
                "type": "signup",
                "ts": "2026-11-30T19:21:43.000Z",
                "n": 3,
                "big": 1_i64 << 40,
                "f": 0.5,
                "nested": { "a": [1, "x", null] },
            })
        );
    }

    #[test]
    fn tail_positions_round_trip_through_their_token() {
        let position = TailPosition {
            recv_ms: 42,
            floor_ms: 7,
            seen: vec![
                (40, ObjectId::from_bytes([1; 12])),
                (8, ObjectId::from_bytes([2; 12])),
            ],
        };
        assert_eq!(TailPosition::parse(&position.token()).unwrap(), position);
        assert!(TailPosition::parse("x").is_err());
        assert!(TailPosition::parse("1.2.zz").is_err());
        assert!(TailPosition::parse("1.2.5-zz").is_err());
    }

    #[test]
    fn tail_positions_out_of_range_are_client_errors() {
        let id = ObjectId::from_parts(1, [1; 5], 1).unwrap();
        for token in [
            "-1.0".to_owned(),
            format!("{}", MAX_TAIL_POSITION_MS + 1),
            "100.500".to_owned(),
            format!("100.50.-5-{id}"),
            format!("{}.0", i64::MAX),
        ] {
            let error = TailPosition::parse(&token).unwrap_err();
            assert!(
                matches!(&error, QueryError::Invalid(reason) if reason.contains("out of range")),
                "{token}: {error}"
            );
        }
        assert!(TailPosition::parse("100").is_ok(), "a bare position");
        assert!(TailPosition::parse("100.101").is_ok(), "the start position");
    }

    #[test]
    fn a_full_tail_window_raises_its_floor_instead_of_forgetting_delivered_ids() {
        let id = |n: u8| ObjectId::from_bytes([n; 12]);
        let mut position = TailPosition {
            recv_ms: 1_000,
            floor_ms: 0,
            seen: Vec::new(),
        };
        let total = MAX_TAIL_SEEN_IDS + 10;
        for n in 0..total {
            // Ten events per ms, all inside the late window.
            position
                .seen
                .push(((n / 10) as i64 + 900, id((n % 250) as u8)));
        }
        position.trim();
        assert!(position.seen.len() <= MAX_TAIL_SEEN_IDS);
        // Everything below the floor is out of the next poll's window, so
        // what was dropped cannot come back.
        assert!(position.floor_ms > 900);
        assert!(position
            .seen
            .iter()
            .all(|&(recv, _)| recv >= position.floor_ms));
        assert_eq!(position.window_start(), position.floor_ms);
    }

    #[test]
    fn a_tail_poll_excludes_delivered_ids_on_the_server() {
        let request = TailRequest {
            types: vec![],
            filter: None,
            after: None,
            limit: 10,
        };
        let delivered = [ObjectId::from_bytes([3; 12])];
        let (filter, sort) = tail_find(&request, 5, &delivered);
        let parts = filter.get_array("$and").unwrap();
        assert_eq!(
            parts[0].as_document().unwrap(),
            &doc! { "recv": { "$gte": date(5) } }
        );
        assert_eq!(
            parts[1].as_document().unwrap(),
            &doc! { "_id": { "$nin": [object_id(delivered[0])] } }
        );
        assert_eq!(sort, doc! { "recv": 1, "_id": 1 });
    }
}
