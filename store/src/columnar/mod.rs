//! The cold tier of the embedded store (issue 22): sealed time partitions
//! of the SQLite hot tier, compacted into one Parquet file each, and the
//! executor that answers the query IR over those files with Arrow arrays
//! (no query engine: the IR is small).
//!
//! - [`write_file`] (feature `sqlite`): rows of one partition → one file,
//!   published atomically.
//! - `ColdFile` and the executor functions `types`, `count_into_histogram`,
//!   `tally`, `page`, `get`, `recent_docs` and `ids` (features `sqlite` +
//!   `query`). They read only the columns a request needs, skip row groups
//!   by their statistics and check cancellation and the deadline between
//!   row groups. The caller (the tiered back end) merges their answers
//!   with the hot tier's.
//!
//! # File format, version 2
//!
//! One file holds the rows of one time partition, sorted by `(ts, _id)`
//! (`_id` by its bytes). Columns, in this order:
//!
//! | column | Arrow type | null | holds |
//! |---|---|---|---|
//! | `_id` | FixedSizeBinary(12) | no | the event id |
//! | `ts` | Int64 | no | event time, UTC ms (ascending) |
//! | `recv` | Int64 | no | receive time, UTC ms |
//! | `type` | Dictionary(Int32, Utf8) | no | the event type |
//! | `app` | Dictionary(Int32, Utf8) | yes | the app (null: none) |
//! | `host` | Dictionary(Int32, Utf8) | yes | `host` when a string |
//! | `doc` | Utf8 | no | the stored document's template (below) |
//! | `f.<path>` | Dictionary(Int32, Utf8) | yes | field columns (below) |
//!
//! **Document templates.** Each document is stored once: `doc` holds the
//! document text exactly as the hot tier held it, except that every value
//! a column of the same row holds byte for byte is cut out and replaced by
//! a marker naming the column: the byte 0x01, the column's index in the
//! table above (0 for `_id`, 7 for the first field column) in decimal
//! digits, the byte 0x02 (JSON text never holds raw control bytes, so a
//! marker cannot be confused with content). A value is cut out only where
//! its raw text equals what the column renders: `_id` as `"<24 lower-case
//! hex digits>"`, `ts` and `recv` as `"YYYY-MM-DDTHH:MM:SS.mmmZ"`, `type`
//! and `app` as serde_json writes the string, a field column its text
//! (so `1.50`, `1e3` or an escaped string stay in the template: their
//! canonical text differs). `host` and `doc` are never named. Reading a
//! document expands its template with the row's values of the columns it
//! names (and reads only those columns); the writer checks that every
//! template it builds expands to its document (`template`) and keeps the
//! whole document instead where it would not.
//! Documents read back byte for byte: big integers, `-0`, long decimals,
//! escapes, member order and whitespace as acknowledged.
//!
//! **Version 1** (still read): the same columns, `doc` holding whole
//! documents (no markers); the column values repeated them.
//!
//! **Field columns.** A column `f.a.b` holds, per row, the node at the
//! dotted path `a.b` as canonical JSON text (`canonical_key`: parsed and
//! re-serialized by `serde_json`), null when the field is missing. A path
//! becomes a column of a file when all of these hold:
//! - it is a chain of object members of depth at most
//!   [`MAX_FIELD_DEPTH`], each a valid `FieldPath` segment without `.`;
//! - its first segment is not an envelope member (`_id`, `type`, `ts`,
//!   `recv`, `app`, `ts_raw`: they have columns of their own);
//! - in **no** row of the file does an array (or a scalar, which has no
//!   members) sit on the way: if some row has an array at `a`, no `a.*`
//!   path is a column of that file (the IR traverses arrays met on the
//!   way, which one text per row cannot express). For the same reason a
//!   path whose node is an object in some row is not a column (its members
//!   may be);
//! - for at least one event type of the file, it is present in at least
//!   half ([`FIELD_SHARE_PERCENT`]) of that type's rows, **or** the
//!   operator pinned it (`WriteOptions::pinned_fields`,
//!   `--store-column-fields`) and some row of the file holds it.
//!
//! At most `WriteOptions::max_field_columns` ([`MAX_FIELD_COLUMNS`]) paths
//! qualify: the pinned ones first (in the order given), then the others,
//! most frequent in the whole file first (ties by path). A path that is not
//! a column of a file is answered from the documents there.
//!
//! **Parquet settings.** zstd (level 3 by default), dictionary encoding for
//! the dictionary columns (none for `_id`, `ts`, `recv`, `doc`; `ts` and
//! `recv` are delta-encoded, `_id` byte-stream-split), row groups of [`ROW_GROUP_ROWS`] rows
//! (or fewer holding [`ROW_GROUP_DOC_BYTES`] of documents), page
//! statistics and the page index on for `_id`, `ts` and `recv` only (the
//! per row group min/max of `ts` and `_id` are what prunes; files written
//! before 2026-12 have statistics on every column, which readers ignore). Key-value metadata: `helios.format` = `"2"`,
//! `helios.field_columns` = a JSON array of the field columns' dotted
//! paths, in column order; `helios.envelope_columns` = `"exact"` when the
//! writer checked that every document's `_id`, `ts` and `recv` are the
//! text of that row's `_id`, `ts` and `recv` columns (then a condition on
//! them is decided from the columns; otherwise from the documents).
//!
//! **Publication.** A file is written under a temporary name in its final
//! directory, fsynced, renamed into place and the directory fsynced: a
//! reader (or a restart after a crash) sees the whole file or no file.
//!
//! # Executing the IR
//!
//! A request's filter is compiled per file (`filter::Pred`): a leaf on a
//! path with a dictionary column there (a field column, `type`, `app`) is
//! decided once per dictionary entry of each row group by the reference
//! evaluator on a synthetic document (equalities on strings, booleans and
//! null by the entry's text alone), a leaf on `_id`, `ts` or `recv` from
//! their columns (when the writer checked them), any other leaf on the
//! row's document, parsed only along the leaf's path and only for rows
//! the other leaves leave undecided. Time ranges and `_id` lookups skip
//! row groups by their statistics. Aggregations (`types`, histograms,
//! tallies) scan row groups on up to `MAX_SCAN_THREADS` threads; pages
//! visit files and row groups in the requested order and stop once they
//! hold the page. Measured costs: the `timings_one_million_events` test.

#[cfg(feature = "query")]
mod exec;
#[cfg(feature = "query")]
mod filter;
mod json;
#[cfg(feature = "query")]
mod read;
mod template;
mod write;

#[cfg(feature = "query")]
pub(crate) use exec::count_into_histogram;
// The sink's `_id` uniqueness check reads ids one row group at a time.
#[cfg(all(feature = "query", feature = "sink"))]
pub(crate) use exec::group_ids;
#[cfg(feature = "query")]
pub use exec::{
    get, grouped_by_column, ids, page, recent_docs, tally, types, KeyShare, Tally, MAX_SCAN_THREADS,
};
#[cfg(feature = "query")]
pub use read::{ColdFile, ScanLimits};
pub use write::write_file;

use serde_json::Value;

use crate::ObjectId;

/// Rows per row group: the unit of pruning, of cancellation checks and of
/// a scan's memory (one row group's columns are decoded at a time).
pub const ROW_GROUP_ROWS: usize = 65_536;
/// Most document bytes per row group (a row group ends at
/// [`ROW_GROUP_ROWS`] rows or this many bytes of whole documents,
/// whichever comes first, and holds at least one row): a scan that reads
/// the documents of a row group holds them all, and documents may be
/// megabytes each.
pub const ROW_GROUP_DOC_BYTES: usize = 64 << 20;
/// Largest accepted `WriteOptions::row_group_rows` (dictionary keys are
/// `i32`, and one decoded row group must stay small).
pub const MAX_ROW_GROUP_ROWS: usize = 1 << 20;
/// Default and largest number of field columns per file.
pub const MAX_FIELD_COLUMNS: usize = 32;
/// Deepest dotted path that may become a field column (`a.b.c.d`).
pub const MAX_FIELD_DEPTH: usize = 4;
/// A path is a field column candidate when, for some event type, it is in
/// at least this share of that type's rows.
pub const FIELD_SHARE_PERCENT: u64 = 50;
/// Default zstd level.
pub const ZSTD_LEVEL: i32 = 3;
/// The format this build writes and reads (`helios.format`).
pub const FORMAT_VERSION: &str = "2";
/// The older format this build still reads (`doc` holds whole documents).
pub const FORMAT_VERSION_1: &str = "1";

/// Key-value metadata key: the format version.
pub(crate) const META_FORMAT: &str = "helios.format";
/// Key-value metadata key: the field columns' dotted paths, a JSON array.
pub(crate) const META_FIELD_COLUMNS: &str = "helios.field_columns";
/// Key-value metadata key: [`ENVELOPE_EXACT`] when every document's `_id`,
/// `ts` and `recv` were checked to be the text of the row's columns.
pub(crate) const META_ENVELOPE: &str = "helios.envelope_columns";
/// The value of [`META_ENVELOPE`] that lets queries decide conditions on
/// `_id`, `ts` and `recv` from the columns instead of the documents.
pub(crate) const ENVELOPE_EXACT: &str = "exact";

pub(crate) const COL_ID: &str = "_id";
pub(crate) const COL_TS: &str = "ts";
pub(crate) const COL_RECV: &str = "recv";
pub(crate) const COL_TYPE: &str = "type";
pub(crate) const COL_APP: &str = "app";
pub(crate) const COL_HOST: &str = "host";
pub(crate) const COL_DOC: &str = "doc";
/// Prefix of a field column's name: `f.` + the dotted path.
pub(crate) const FIELD_COLUMN_PREFIX: &str = "f.";

/// Top-level members that never become field columns: the envelope, which
/// has columns of its own (or, for `ts_raw`, is rarely queried).
pub(crate) const ENVELOPE_MEMBERS: [&str; 6] = ["_id", "type", "ts", "recv", "app", "ts_raw"];

/// One event of a partition, as the hot tier holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdRow {
    /// The event id.
    pub id: ObjectId,
    /// Event time, UTC ms.
    pub ts_ms: i64,
    /// Receive time, UTC ms.
    pub recv_ms: i64,
    /// The event type.
    pub event_type: String,
    /// The app, if any.
    pub app: Option<String>,
    /// `host` when the document's `host` is a string.
    pub host: Option<String>,
    /// The stored document text, kept byte for byte.
    pub doc: String,
}

/// How [`write_file`] lays a file out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Rows per row group (1..=[`MAX_ROW_GROUP_ROWS`]).
    pub row_group_rows: usize,
    /// Document bytes per row group (at least 1; see
    /// [`ROW_GROUP_DOC_BYTES`]).
    pub row_group_doc_bytes: usize,
    /// zstd level (1..=22).
    pub zstd_level: i32,
    /// Most field columns (0..=[`MAX_FIELD_COLUMNS`]).
    pub max_field_columns: usize,
    /// Dotted paths the operator wants as columns whatever their share of
    /// a type's rows (`--store-column-fields`): each becomes a column of a
    /// file where some row holds it as a value (not an object, no array on
    /// the way), ahead of the fields chosen by their share, within
    /// `max_field_columns`.
    pub pinned_fields: Vec<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            row_group_rows: ROW_GROUP_ROWS,
            row_group_doc_bytes: ROW_GROUP_DOC_BYTES,
            zstd_level: ZSTD_LEVEL,
            max_field_columns: MAX_FIELD_COLUMNS,
            pinned_fields: Vec::new(),
        }
    }
}

/// What one file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSummary {
    /// Rows (events).
    pub rows: u64,
    /// Smallest `ts`, UTC ms.
    pub ts_min_ms: i64,
    /// Largest `ts`, UTC ms.
    pub ts_max_ms: i64,
    /// File size.
    pub bytes: u64,
}

/// The group key of a JSON text: parsed with `serde_json` (member order
/// kept) and re-serialized compactly; `None` if it is not JSON. Field
/// columns hold their nodes in this form, and the hot tier's group keys
/// (SQLite's `doc -> path` text) are brought to it before merging. Numbers
/// beyond `i64`/`u64` become doubles here, as in `GroupKey::Value`.
#[cfg_attr(not(feature = "query"), allow(dead_code))]
pub(crate) fn canonical_key(json_text: &str) -> Option<String> {
    serde_json::from_str::<Value>(json_text)
        .ok()
        .map(|value| node_key(&value))
}

/// The canonical text of a parsed node (see [`canonical_key`]).
pub(crate) fn node_key(node: &Value) -> String {
    node.to_string()
}

#[cfg_attr(not(feature = "query"), allow(dead_code))]
/// The node at `segments` walking object members only (the group-by
/// semantics: arrays on the way are not traversed); `None` when missing.
pub(crate) fn group_node<'a, S: AsRef<str>>(doc: &'a Value, segments: &[S]) -> Option<&'a Value> {
    let mut node = doc;
    for segment in segments {
        node = node.as_object()?.get(segment.as_ref())?;
    }
    Some(node)
}

/// The column name of a field column.
pub(crate) fn field_column_name(dotted: &str) -> String {
    format!("{FIELD_COLUMN_PREFIX}{dotted}")
}

/// A `StoreError::Columnar` for `path`.
pub(crate) fn store_error(
    path: &std::path::Path,
    context: impl Into<String>,
    source: impl Into<crate::BoxError>,
) -> crate::StoreError {
    crate::StoreError::Columnar {
        path: path.to_owned(),
        context: context.into(),
        source: source.into(),
    }
}

#[cfg(all(test, feature = "query"))]
mod tests;
