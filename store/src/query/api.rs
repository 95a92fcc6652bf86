//! The request and result shapes of [`QueryBackend`], the trait every store
//! back end implements for the report server.

use serde::Serialize;

use crate::ObjectId;

use super::error::QueryError;
use super::ir::{FieldPath, Filter, Query, Selection, TimeRange};

/// Most buckets one histogram may have.
pub const MAX_HISTOGRAM_BUCKETS: usize = 2_000;
/// Most top values a histogram split or a group-by may ask for.
pub const MAX_TOP_N: usize = 100;
/// Most values one distinct-values request returns.
pub const MAX_DISTINCT_LIMIT: usize = 1_000;
/// Most recent events a distinct-values request scans: suggestions must be
/// quick, not exhaustive.
pub const MAX_SUGGEST_SCAN_EVENTS: usize = 100_000;
/// Most recent documents [`QueryBackend::field_names`] samples.
pub const MAX_FIELD_SAMPLE_DOCS: usize = 5_000;
/// Most events one [`QueryBackend::tail`] call returns.
pub const MAX_TAIL_LIMIT: usize = 1_000;
/// Most stored-document bytes one read holds (a page, a tail poll, a field
/// sample): documents can be megabytes each, so the event counts alone do
/// not bound memory. A page that reaches it ends early with a cursor (the
/// next page goes on from there); it always holds at least one event.
pub const MAX_READ_DOC_BYTES: usize = 8 << 20;

/// One event of a result: its sort key and its document (projected if the
/// query asked for a projection).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The event id.
    #[serde(serialize_with = "serialize_id")]
    pub id: ObjectId,
    /// `ts`, UTC ms.
    pub ts_ms: i64,
    /// The document as stored (SQLite's `doc`; MongoDB's document rendered
    /// the same way: `_id` as 24 hex, `ts`/`recv` as RFC 3339 UTC ms).
    /// Numbers here are `f64`/`i64`/`u64`: use [`Hit::document`] to give
    /// the event back.
    pub doc: serde_json::Value,
    /// The stored JSON text of the whole document, when the back end keeps
    /// one (SQLite) and no projection applies. [`Hit::document`] writes it
    /// as it is, so an integer beyond 64 bits, `-0` or a long decimal reads
    /// back exactly as it was acknowledged, which `doc` cannot do.
    #[serde(skip)]
    pub stored_text: Option<String>,
}

impl Hit {
    /// The document to send to a reader: the stored text byte for byte when
    /// there is one, else `doc`.
    pub fn document(&self) -> Document<'_> {
        match &self.stored_text {
            Some(text) => Document::Stored(text),
            None => Document::Parsed(&self.doc),
        }
    }

    /// The keyset position of this event.
    pub fn cursor(&self) -> super::ir::Cursor {
        super::ir::Cursor {
            ts_ms: self.ts_ms,
            id: self.id,
        }
    }
}

/// An event's document ready to serialize (see [`Hit::document`]).
#[derive(Debug, Clone, Copy)]
pub enum Document<'a> {
    /// The stored JSON text, written verbatim.
    Stored(&'a str),
    /// A parsed (possibly projected) document.
    Parsed(&'a serde_json::Value),
}

impl Serialize for Document<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Document::Stored(text) => {
                // The text is the store's own `doc`, already valid JSON;
                // borrowing it as a RawValue checks that once more and copies
                // nothing.
                let raw: &serde_json::value::RawValue =
                    serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
                raw.serialize(serializer)
            }
            Document::Parsed(value) => value.serialize(serializer),
        }
    }
}

impl std::fmt::Display for Document<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Document::Stored(text) => f.write_str(text),
            Document::Parsed(value) => write!(f, "{value}"),
        }
    }
}

/// One page of a [`Query`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// The events, in the query's order.
    pub events: Vec<Hit>,
    /// Where the next page starts; `None` when this page is the last.
    #[serde(serialize_with = "serialize_cursor")]
    pub next: Option<super::ir::Cursor>,
}

impl Page {
    /// A page of `events`; when the back end saw `more` rows past them, the
    /// next page starts after the last one (keyset on `(ts, _id)`).
    pub(crate) fn keyset(events: Vec<Hit>, more: bool) -> Page {
        let next = if more {
            events.last().map(Hit::cursor)
        } else {
            None
        };
        Page { events, next }
    }
}

/// Count of events per time bucket, optionally split by a field's values.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramRequest {
    /// Which events.
    pub select: Selection,
    /// Bucket width, ms (> 0). Buckets start at multiples of it since the
    /// Unix epoch, so they line up across requests.
    pub bucket_ms: i64,
    /// Split each bucket by the top values of this field.
    pub split_by: Option<Split>,
}

/// A histogram split: the `top_n` most frequent values of `path` over the
/// whole selection each get a series; everything else is [`GroupKey::Other`].
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The field.
    pub path: FieldPath,
    /// How many values get their own series (1..=[`MAX_TOP_N`]).
    pub top_n: usize,
}

/// The value a group-by or split groups on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum GroupKey {
    /// The field's value, as it appears in the document (an array is one
    /// value; arrays are not unwound).
    Value(serde_json::Value),
    /// The field is absent.
    Missing,
    /// Any value outside the top N.
    Other,
}

/// A histogram: dense buckets from the bucket containing `range.from_ms` to
/// the one containing `range.to_ms - 1`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Histogram {
    /// Bucket width, ms.
    pub bucket_ms: i64,
    /// The series of a split, most frequent first, then `Other` if any event
    /// fell outside the top N. Empty without a split.
    pub series: Vec<GroupKey>,
    /// The buckets, oldest first.
    pub buckets: Vec<Bucket>,
}

/// One histogram bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Start of the bucket, UTC ms.
    pub start_ms: i64,
    /// Events in the bucket.
    pub count: u64,
    /// Per series (same order as [`Histogram::series`]); empty without a
    /// split.
    pub split_counts: Vec<u64>,
}

/// The most frequent values of a field.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupByRequest {
    /// Which events.
    pub select: Selection,
    /// The field.
    pub path: FieldPath,
    /// How many groups (1..=[`MAX_TOP_N`]).
    pub top_n: usize,
}

/// A group-by result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupBy {
    /// Groups, most frequent first (ties: by key text).
    pub groups: Vec<GroupCount>,
    /// Events in groups beyond the top N.
    pub other_count: u64,
    /// All selected events.
    pub total: u64,
    /// Whether the field is a column in every columnar file the answer
    /// read (`true`: counted from the column's dictionary, fast), or in
    /// some file only (`false`: counted from whole documents there, slower).
    /// `None` when no columnar file was read (the hot tier alone, MongoDB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<bool>,
}

/// One group and its size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupCount {
    /// The value.
    pub key: GroupKey,
    /// Events with it.
    pub count: u64,
}

/// Value suggestions for a field: its most frequent values among the most
/// recent [`MAX_SUGGEST_SCAN_EVENTS`] selected events.
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctRequest {
    /// Which events.
    pub select: Selection,
    /// The field.
    pub path: FieldPath,
    /// Only string values starting with this (case-sensitive); `None` =
    /// values of every type.
    pub prefix: Option<String>,
    /// How many values (capped at [`MAX_DISTINCT_LIMIT`]).
    pub limit: usize,
}

/// A field name seen in recent documents, for query-bar suggestions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldName {
    /// The dotted path (array levels are transparent, as in filters).
    pub path: String,
    /// In how many sampled documents it appears.
    pub count: u64,
    /// Whether it is a column in every columnar file of the range (its top
    /// values are counted fast); `None` when the range has no columnar file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<bool>,
}

/// An event type and how many events have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeCount {
    /// The type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Events of that type in the range.
    pub count: u64,
}

/// A live-tail position: opaque text a back end hands out and reads back.
/// SQLite's is the last seen insertion sequence (`seq`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TailCursor(pub String);

/// A live-tail poll: events stored after `after`, in insertion order
/// (DESIGN §6: events flushed late still show up).
#[derive(Debug, Clone, PartialEq)]
pub struct TailRequest {
    /// Only these types (empty = any).
    pub types: Vec<String>,
    /// Only events matching this filter.
    pub filter: Option<Filter>,
    /// Start after this position; `None` starts at the current end (returns
    /// no events, only the cursor to poll from).
    pub after: Option<TailCursor>,
    /// Most events (capped at [`MAX_TAIL_LIMIT`]).
    pub limit: usize,
}

/// The result of one tail poll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TailPage {
    /// New matching events, in insertion order.
    pub events: Vec<Hit>,
    /// Poll again from here (always set, even when `events` is empty).
    pub next: TailCursor,
    /// The poll stopped before the newest stored event (a full page, or a
    /// scan bound reached by a filter that matched few rows): poll again at
    /// once, or a filtered tail falls behind a fast store for good.
    pub behind: bool,
}

/// The query back end of one store. Synchronous and blocking: call it from
/// `tokio::task::spawn_blocking` in async code. Object-safe, so a server
/// holds an `Arc<dyn QueryBackend>` whatever the store is.
pub trait QueryBackend: Send + Sync {
    /// One page of events (see [`Query`]).
    fn query(&self, query: &Query) -> Result<Page, QueryError>;

    /// Event counts per time bucket (see [`HistogramRequest`]).
    fn histogram(&self, request: &HistogramRequest) -> Result<Histogram, QueryError>;

    /// The top values of a field (see [`GroupByRequest`]).
    fn group_by(&self, request: &GroupByRequest) -> Result<GroupBy, QueryError>;

    /// Value suggestions (see [`DistinctRequest`]); most frequent first.
    fn distinct(&self, request: &DistinctRequest) -> Result<Vec<GroupCount>, QueryError>;

    /// Field names in the most recent `sample` (capped at
    /// [`MAX_FIELD_SAMPLE_DOCS`]) documents in `range`, most frequent first.
    fn field_names(&self, range: TimeRange, sample: usize) -> Result<Vec<FieldName>, QueryError>;

    /// Event types in `range` with their counts, most frequent first.
    fn types(&self, range: TimeRange) -> Result<Vec<TypeCount>, QueryError>;

    /// One event by id.
    fn get(&self, id: ObjectId) -> Result<Option<Hit>, QueryError>;

    /// Events stored after a tail position, in insertion order.
    fn tail(&self, request: &TailRequest) -> Result<TailPage, QueryError>;

    /// What this back end reads, for logs (never with credentials).
    fn describe(&self) -> String;

    /// Stops for good: requests running now end within moments with
    /// [`QueryError::Cancelled`] (between two steps of a statement, or two
    /// regular expression matches), and later ones fail with it at once. For
    /// a server shutting down, whose blocking threads must not outlive it.
    fn cancel(&self);
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn serialize_id<S: serde::Serializer>(id: &ObjectId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&id.to_hex())
}

fn serialize_cursor<S: serde::Serializer>(
    cursor: &Option<super::ir::Cursor>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match cursor {
        Some(cursor) => serializer.serialize_str(&cursor.to_token()),
        None => serializer.serialize_none(),
    }
}
