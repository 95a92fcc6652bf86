//! The query IR: field paths, literals, the filter tree and the query
//! shapes every front end produces and every back end executes. The
//! semantics are in the [module documentation](super).

use std::fmt;

use crate::ObjectId;

use super::error::{PathError, PatternError};
use super::pattern::BoundedRegex;

/// Most segments a [`FieldPath`] may have (`a.b.c` has 3).
pub const MAX_PATH_SEGMENTS: usize = 16;
/// Longest [`FieldPath`], in bytes of its dotted form.
pub const MAX_PATH_BYTES: usize = 256;
/// Most events one [`Query`] page returns; larger limits are capped.
pub const MAX_PAGE_LIMIT: usize = 1_000;
/// Page size when a caller has no opinion.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// Envelope field path: the event id (an [`ObjectId`]; 24 hex in `doc`).
pub const PATH_ID: &str = "_id";
/// Envelope field path: event time (a date; SQLite column `ts`).
pub const PATH_TS: &str = "ts";
/// Envelope field path: receive time (a date; SQLite column `recv`).
pub const PATH_RECV: &str = "recv";
/// Envelope field path: the event type (a string; SQLite column `type`).
pub const PATH_TYPE: &str = "type";
/// Envelope field path: the application (a string or missing).
pub const PATH_APP: &str = "app";

/// A dotted path to a field, e.g. `user.plan`. Each segment is an object
/// member name; arrays met on the way are traversed (see the module docs).
///
/// Segments are non-empty, do not start with `$` (MongoDB would read an
/// operator) and are not all digits (MongoDB would read an array position,
/// which the IR does not support, so the two back ends could disagree).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses a dotted path (`a.b.c`).
    pub fn parse(dotted: &str) -> Result<Self, PathError> {
        if dotted.is_empty() {
            return Err(PathError::Empty);
        }
        if dotted.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong {
                len: dotted.len(),
                max: MAX_PATH_BYTES,
            });
        }
        let segments: Vec<String> = dotted.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(PathError::TooManySegments {
                count: segments.len(),
                max: MAX_PATH_SEGMENTS,
            });
        }
        for segment in &segments {
            check_segment(segment)?;
        }
        Ok(Self { segments })
    }

    /// The segments, outermost first (never empty).
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The dotted form, as [`FieldPath::parse`] reads it.
    pub fn dotted(&self) -> String {
        self.segments.join(".")
    }

    /// True for a one-segment path equal to `name` (e.g. [`PATH_TS`]).
    pub fn is(&self, name: &str) -> bool {
        self.segments.len() == 1 && self.segments[0] == name
    }
}

fn check_segment(segment: &str) -> Result<(), PathError> {
    if segment.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if segment.starts_with('$') {
        return Err(PathError::DollarSegment {
            segment: segment.to_owned(),
        });
    }
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PathError::NumericSegment {
            segment: segment.to_owned(),
        });
    }
    if segment.chars().any(char::is_control) {
        return Err(PathError::ControlChar);
    }
    Ok(())
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dotted())
    }
}

impl std::str::FromStr for FieldPath {
    type Err = PathError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// A literal a filter compares against. Arrays and objects are not
/// literals: the IR has no whole-array or whole-object equality.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// JSON `null` (an equality on null also matches a missing field).
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer; compares numerically with [`Literal::Float`].
    Int(i64),
    /// A float (finite); compares numerically with [`Literal::Int`].
    Float(f64),
    /// A string; compares by bytes (UTF-8), like MongoDB's simple collation.
    String(String),
    /// A date, UTC milliseconds. Only `ts` and `recv` hold dates.
    Date(i64),
    /// An ObjectId. Only `_id` holds ObjectIds.
    Id(ObjectId),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Not equal: exactly `NOT Eq` (so it matches a missing field).
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Gte,
}

/// A validated regular expression in the Rust `regex` crate's syntax (the
/// one syntax every back end is given), with its source kept. Its work is
/// bounded (`query::pattern`): limits at compile time, and a longest
/// string one match may scan ([`RegexPattern::max_scan_bytes`]).
#[derive(Debug, Clone)]
pub struct RegexPattern {
    source: String,
    compiled: BoundedRegex,
}

impl RegexPattern {
    /// Compiles `source` under the limits of `query::pattern`
    /// ([`super::MAX_REGEX_PATTERN_BYTES`], [`super::MAX_REGEX_REPETITION`],
    /// [`super::MAX_REGEX_POSITIONS`], [`super::REGEX_SIZE_LIMIT_BYTES`],
    /// ...). Flags go inline (`(?i)abc`).
    pub fn new(source: &str) -> Result<Self, PatternError> {
        let compiled = BoundedRegex::new(source)?;
        Ok(Self {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The pattern as written (inline flags included).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches anywhere in `text` (unanchored, like
    /// MongoDB's `$regex`), however long `text` is: the reference
    /// semantics. Back ends refuse strings longer than
    /// [`RegexPattern::max_scan_bytes`] instead.
    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text)
    }

    /// Longest string a back end lets this pattern scan in one match
    /// ([`super::MAX_REGEX_SCAN_WORK`] divided by the pattern's positions);
    /// a longer selected value fails the query with a client error.
    pub fn max_scan_bytes(&self) -> usize {
        self.compiled.max_scan_bytes()
    }
}

impl PartialEq for RegexPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// A filter tree over field paths. Build with the variants directly or the
/// helpers ([`Filter::eq`], [`Filter::and`], ...). `And(vec![])` matches
/// every event, `Or(vec![])` none.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `path op value`, type-bracketed.
    Compare {
        /// The field.
        path: FieldPath,
        /// The operator.
        op: CompareOp,
        /// The literal.
        value: Literal,
    },
    /// The field equals one of `values` (an `Or` of `Eq`s).
    In {
        /// The field.
        path: FieldPath,
        /// The candidates.
        values: Vec<Literal>,
    },
    /// `NOT In` (matches a missing field).
    Nin {
        /// The field.
        path: FieldPath,
        /// The excluded values.
        values: Vec<Literal>,
    },
    /// The field is present (`true`, even when null) or absent (`false`).
    Exists {
        /// The field.
        path: FieldPath,
        /// Present or absent.
        exists: bool,
    },
    /// A string value contains `text` (case-sensitive; `""` matches any
    /// string).
    Contains {
        /// The field.
        path: FieldPath,
        /// The substring.
        text: String,
    },
    /// A string value starts with `prefix` (case-sensitive).
    Prefix {
        /// The field.
        path: FieldPath,
        /// The prefix.
        prefix: String,
    },
    /// A string value matches the regular expression (unanchored).
    Regex {
        /// The field.
        path: FieldPath,
        /// The pattern.
        pattern: RegexPattern,
    },
    /// Every child matches.
    And(Vec<Filter>),
    /// At least one child matches.
    Or(Vec<Filter>),
    /// The child does not match.
    Not(Box<Filter>),
}

/// Most regular expressions one filter may hold, whatever its front end:
/// each may compile to up to `REGEX_SIZE_LIMIT_BYTES` with a lazy DFA cache
/// beside it, and the operator and term limits alone would let one query
/// hold hundreds of them.
pub const MAX_REGEXES_PER_FILTER: usize = 16;

impl Filter {
    /// How many [`Filter::Regex`] nodes this filter holds.
    pub fn regex_count(&self) -> usize {
        match self {
            Filter::Regex { .. } => 1,
            Filter::And(children) | Filter::Or(children) => {
                children.iter().map(Filter::regex_count).sum()
            }
            Filter::Not(child) => child.regex_count(),
            Filter::Compare { .. }
            | Filter::In { .. }
            | Filter::Nin { .. }
            | Filter::Exists { .. }
            | Filter::Contains { .. }
            | Filter::Prefix { .. } => 0,
        }
    }

    /// `path == value`.
    pub fn eq(path: FieldPath, value: Literal) -> Self {
        Self::compare(path, CompareOp::Eq, value)
    }

    /// `path op value`.
    pub fn compare(path: FieldPath, op: CompareOp, value: Literal) -> Self {
        Self::Compare { path, op, value }
    }

    /// All of `children`.
    pub fn and(children: Vec<Filter>) -> Self {
        Self::And(children)
    }

    /// Any of `children`.
    pub fn or(children: Vec<Filter>) -> Self {
        Self::Or(children)
    }

    /// Not `child`.
    #[allow(clippy::should_implement_trait)]
    pub fn not(child: Filter) -> Self {
        Self::Not(Box::new(child))
    }

    /// The filter that matches every event (`And([])`).
    pub fn all() -> Self {
        Self::And(Vec::new())
    }

    /// Nesting depth (a leaf is 1).
    pub fn depth(&self) -> usize {
        match self {
            Filter::And(children) | Filter::Or(children) => {
                1 + children.iter().map(Filter::depth).max().unwrap_or(0)
            }
            Filter::Not(child) => 1 + child.depth(),
            _ => 1,
        }
    }
}

/// A half-open time range on `ts`: `from_ms <= ts < to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// Inclusive start, UTC ms.
    pub from_ms: i64,
    /// Exclusive end, UTC ms.
    pub to_ms: i64,
}

impl TimeRange {
    /// Every representable time.
    pub const ALL: TimeRange = TimeRange {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
    };

    /// `from_ms..to_ms`.
    pub fn new(from_ms: i64, to_ms: i64) -> Self {
        Self { from_ms, to_ms }
    }

    /// Whether `ts_ms` lies in the range.
    pub fn contains(&self, ts_ms: i64) -> bool {
        self.from_ms <= ts_ms && ts_ms < self.to_ms
    }
}

/// Which events a request looks at: a time range, optional types and an
/// optional filter. Shared by every request shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Events with `ts` in this range.
    pub range: TimeRange,
    /// Events whose `type` is one of these; empty means any type.
    pub types: Vec<String>,
    /// Events matching this filter; `None` means all.
    pub filter: Option<Filter>,
}

impl Selection {
    /// Every event in `range`.
    pub fn range(range: TimeRange) -> Self {
        Self {
            range,
            types: Vec::new(),
            filter: None,
        }
    }
}

/// Result order: by `ts`, then `_id` (ids break ties, so pages are stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// Newest first (the default).
    #[default]
    Desc,
    /// Oldest first.
    Asc,
}

/// A keyset position: the `(ts, _id)` of the last event of a page. The next
/// page starts strictly after it in the query's [`SortOrder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    /// `ts` of the last event, UTC ms.
    pub ts_ms: i64,
    /// `_id` of the last event.
    pub id: ObjectId,
}

impl Cursor {
    /// The URL-safe text form, `"<ts_ms>_<24 hex>"`.
    pub fn to_token(&self) -> String {
        format!("{}_{}", self.ts_ms, self.id)
    }

    /// Parses [`Cursor::to_token`]'s form; `None` if malformed.
    pub fn parse_token(token: &str) -> Option<Self> {
        let (ts, id) = token.rsplit_once('_')?;
        Some(Self {
            ts_ms: ts.parse().ok()?,
            id: ObjectId::parse_hex(id).ok()?,
        })
    }
}

/// One page of events.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which events.
    pub select: Selection,
    /// Order of the page.
    pub sort: SortOrder,
    /// Page size, capped at [`MAX_PAGE_LIMIT`]; 0 returns an empty page.
    pub limit: usize,
    /// Start after this position (keyset pagination); `None` = first page.
    pub after: Option<Cursor>,
    /// Only these fields of each document (`_id`, `ts` and `type` always
    /// come along, so rows can be shown and paged); `None` = whole docs.
    pub projection: Option<Vec<FieldPath>>,
}

impl Query {
    /// First page, newest first, [`DEFAULT_PAGE_LIMIT`] events, whole docs.
    pub fn new(select: Selection) -> Self {
        Self {
            select,
            sort: SortOrder::Desc,
            limit: DEFAULT_PAGE_LIMIT,
            after: None,
            projection: None,
        }
    }

    /// The page size actually used.
    pub fn effective_limit(&self) -> usize {
        self.limit.min(MAX_PAGE_LIMIT)
    }
}
