//! Errors of the query layer: what a caller got wrong (a server answers
//! 400) versus what failed underneath (500).

use crate::error::BoxError;

/// Why a dotted field path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("field path is empty")]
    Empty,
    /// `a..b`, `.a` or `a.`.
    #[error("field path has an empty segment")]
    EmptySegment,
    /// A segment starts with `$` (MongoDB would read an operator).
    #[error("field path segment `{segment}` starts with `$`")]
    DollarSegment {
        /// The segment.
        segment: String,
    },
    /// A segment is all digits (array positions are not supported).
    #[error("field path segment `{segment}` is a number; array positions are not supported")]
    NumericSegment {
        /// The segment.
        segment: String,
    },
    /// A segment contains a control character.
    #[error("field path contains a control character")]
    ControlChar,
    /// Longer than [`super::MAX_PATH_BYTES`].
    #[error("field path is {len} bytes long, the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`super::MAX_PATH_SEGMENTS`] segments.
    #[error("field path has {count} segments, the limit is {max}")]
    TooManySegments {
        /// Its segment count.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a regular expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Longer than [`super::MAX_REGEX_PATTERN_BYTES`].
    #[error("regular expression is {len} bytes long, the limit is {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nested counted repetitions multiply past
    /// [`super::MAX_REGEX_REPETITION`] (`(a{1,100}){1,100}`): the pattern
    /// would cost minutes per long string once the DFA gives up.
    #[error(
        "the regular expression's counted repetitions multiply to {product}, the limit is \
         {max} (nested repetitions such as (a{{1,100}}){{1,100}} are refused)"
    )]
    RepetitionTooLarge {
        /// The product of the nested bounds.
        product: u64,
        /// The limit.
        max: u64,
    },
    /// The pattern expands to more than [`super::MAX_REGEX_POSITIONS`]
    /// positions once its repetitions are counted.
    #[error(
        "the regular expression expands to {positions} positions once its repetitions are \
         counted, the limit is {max}: use fewer or smaller repetitions"
    )]
    TooManyPositions {
        /// Its positions.
        positions: u64,
        /// The limit.
        max: u64,
    },
    /// Not valid `regex` crate syntax, or over the compiled size limit.
    #[error("invalid regular expression: {message}")]
    Invalid {
        /// The `regex` crate's explanation.
        message: String,
    },
}

/// A text-language query that does not parse: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct ParseError {
    /// Byte offset in the input of the offending token (the input's length
    /// when something is missing at the end).
    pub offset: usize,
    /// What is wrong, for people.
    pub message: String,
}

/// A raw MongoDB filter that is refused: where in the JSON and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {location})")]
pub struct FilterError {
    /// Where in the filter, as a dotted/indexed location such as
    /// `$and[1].plan.$regex` (`filter` for the top level).
    pub location: String,
    /// What is wrong, for people.
    pub message: String,
}

/// Why a query request failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request itself is unacceptable (limits, bad bucket size, ...):
    /// the caller's fault, a server answers 400.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The back end cannot do this (e.g. live tail without a way to follow
    /// insertion order): a server answers 501.
    #[error("not supported by this store: {0}")]
    Unsupported(String),
    /// A group-by or split found more distinct values than an exact count
    /// may hold in memory (past every pass a back end tries): a server
    /// answers 501, like [`QueryError::Unsupported`]. Its own variant so a
    /// back end can tell it apart and count in more passes.
    #[error("too many distinct values to rank exactly: {0}")]
    TooManyGroups(String),
    /// The back end was cancelled ([`super::QueryBackend::cancel`], a
    /// server shutting down): a server answers 503.
    #[error("the query was cancelled: the server is shutting down")]
    Cancelled,
    /// The query ran out of its time budget: a server answers 503.
    #[error("query took longer than its {limit_ms} ms budget")]
    Timeout {
        /// The budget.
        limit_ms: u64,
    },
    /// The store failed (cannot open, I/O, server unreachable): a server
    /// answers 500 (or 503).
    #[error("store error ({context}): {source}")]
    Store {
        /// What we were doing.
        context: String,
        /// The back end's error.
        #[source]
        source: BoxError,
    },
    /// A stored row is not what the schema promises.
    #[error("corrupt stored event ({context}): {reason}")]
    Corrupt {
        /// Where.
        context: String,
        /// What is wrong.
        reason: String,
    },
}

impl QueryError {
    /// True when the caller's request is at fault (HTTP 4xx), false when the
    /// store is (5xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            QueryError::Invalid(_) | QueryError::Unsupported(_) | QueryError::TooManyGroups(_)
        )
    }

    pub(crate) fn store(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        QueryError::Store {
            context: context.into(),
            source: source.into(),
        }
    }
}
