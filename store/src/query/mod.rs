//! The pure query core (DESIGN §6): the IR, its two front ends, its one
//! definition of semantics and the reference evaluator. It knows no driver
//! and does no I/O, so it can be tested and fuzzed alone; each back end
//! translates from it (`crate::sqlite::SqliteQueries`,
//! `crate::mongo::MongoQueries`).
//!
//! - Front ends: [`parse_text`] (the query bar's language) and
//!   [`parse_mongo_filter`] (raw MongoDB filter JSON through an operator
//!   allow-list) both produce a [`Filter`].
//! - Requests: [`Query`] (a page of events, keyset-paginated on
//!   `(ts, _id)`), [`HistogramRequest`], [`GroupByRequest`],
//!   [`DistinctRequest`], [`TailRequest`], [`ExportRequest`]; each starts
//!   from a [`Selection`] (time range, types, filter).
//! - Back ends implement [`QueryBackend`]: `SqliteQueries` (SQL with JSON1
//!   functions and a registered `REGEXP`) and `MongoQueries`
//!   (find/aggregate). [`eval`] is the reference evaluator over JSON
//!   documents, the oracle both are tested against. The helpers the back
//!   ends share (`histogram::Plan`, `fields`, `project`) are pure too.
//!
//! # Semantics (one definition for every back end)
//!
//! **Field types.** A document is the stored event JSON. The envelope paths
//! are typed as in MongoDB: `_id` is an ObjectId ([`Literal::Id`]), `ts` and
//! `recv` are dates ([`Literal::Date`], compared as UTC ms), `type` and `app`
//! are strings. Every other field has its JSON type: null, boolean, number,
//! string, array or object.
//!
//! **Paths.** `a.b.c` walks object members. An array met *before* the last
//! segment is traversed: each of its elements that is an object continues
//! the walk (one level; nested arrays are not entered). The values reached
//! are the field's *nodes*; a field is **missing** when there is no node.
//!
//! **Comparisons are type-bracketed** as in MongoDB: a number never matches a
//! string, a date never matches a number or a string, and so on. Integers
//! and floats compare as numbers (exactly, `1 == 1.0`). Strings compare by
//! their UTF-8 bytes. Booleans order `false < true`. A condition on a node
//! that is an array matches if the array itself or **any element** matches
//! (elements only, not elements of nested arrays); since literals are
//! scalars, that means any element. Objects match no comparison.
//!
//! **Null and missing.** `Eq null` (and `Lte`/`Gte null`) matches a node that
//! is null, an array with a null element, *or a missing field*, as in
//! MongoDB; `Lt`/`Gt null` match nothing. [`Filter::Exists`] tells missing
//! from null: `exists: true` matches `{"a": null}` but not `{}`.
//!
//! **Negation.** `Ne` is exactly `Not(Eq)` and `Nin` exactly `Not(In)`, so
//! both match a missing field, and `Ne 1` does not match `[1, 2]`. `Not`
//! negates any filter.
//!
//! **Strings.** [`Filter::Contains`] and [`Filter::Prefix`] are
//! case-sensitive and match string nodes/elements only. [`Filter::Regex`]
//! uses the Rust `regex` crate's syntax everywhere (SQLite's `REGEXP` is
//! registered with that crate; MongoDB gets the same source, whose common
//! subset PCRE reads the same way), unanchored. Its work is bounded
//! (`pattern.rs`): patterns over [`MAX_REGEX_PATTERN_BYTES`],
//! [`MAX_REGEX_REPETITION`], [`MAX_REGEX_POSITIONS`] or
//! [`REGEX_SIZE_LIMIT_BYTES`] are refused, and a back end refuses (with a
//! client error, never a different answer) to scan a string longer than
//! [`RegexPattern::max_scan_bytes`]; the evaluator has no such limit.
//!
//! **Results.** Pages sort by `ts`, then `_id` (descending by default), and
//! paginate by keyset ([`Cursor`]). Group-by, histogram splits and distinct
//! values group on the node at the path as one value (arrays are not
//! unwound), without traversing arrays on the way; a number's group is its
//! JSON text, so `1` and `1.0` may be two groups.
//!
//! Known divergence: MongoDB treats an array element that lacks the field as
//! `null` for `Eq null` on a path through an array of objects (`a.b: null`
//! on `{"a": [{"c": 1}]}` matches there); the IR does not.

pub(crate) mod api;
pub(crate) mod error;
pub mod eval;
mod export;
pub(crate) mod fields;
// Part of the plan is used only by the MongoDB back end.
#[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
pub(crate) mod histogram;
pub(crate) mod ir;
mod mongo_filter;
pub(crate) mod pattern;
pub(crate) mod project;
mod text;

pub use api::{
    Bucket, DistinctRequest, Document, FieldName, GroupBy, GroupByRequest, GroupCount, GroupKey,
    Histogram, HistogramRequest, Hit, Page, QueryBackend, Split, TailCursor, TailPage, TailRequest,
    TypeCount, MAX_DISTINCT_LIMIT, MAX_FIELD_SAMPLE_DOCS, MAX_HISTOGRAM_BUCKETS,
    MAX_READ_DOC_BYTES, MAX_SUGGEST_SCAN_EVENTS, MAX_TAIL_LIMIT, MAX_TOP_N,
};
pub use error::{FilterError, ParseError, PathError, PatternError, QueryError};
pub use export::{Export, ExportRequest, EXPORT_CHUNK_EVENTS, MAX_EXPORT_EVENTS};
pub use fields::value_paths;
pub use ir::{
    CompareOp, Cursor, FieldPath, Filter, Literal, Query, RegexPattern, Selection, SortOrder,
    TimeRange, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, MAX_PATH_BYTES, MAX_PATH_SEGMENTS,
    MAX_REGEXES_PER_FILTER, PATH_APP, PATH_ID, PATH_RECV, PATH_TS, PATH_TYPE,
};
pub use mongo_filter::{parse_mongo_filter, MAX_MONGO_FILTER_DEPTH, MAX_MONGO_FILTER_NODES};
pub use pattern::{
    ScanRefused, MAX_REGEX_PATTERN_BYTES, MAX_REGEX_POSITIONS, MAX_REGEX_REPETITION,
    MAX_REGEX_SCAN_WORK, REGEX_DFA_SIZE_LIMIT_BYTES, REGEX_NEST_LIMIT, REGEX_SIZE_LIMIT_BYTES,
};
pub use text::{parse_text, MAX_TEXT_DEPTH, MAX_TEXT_QUERY_BYTES, MAX_TEXT_TERMS};
