//! The text query language (placeholder; being written).

use super::error::ParseError;
use super::ir::Filter;

/// Longest text query accepted, in bytes.
pub const MAX_TEXT_QUERY_BYTES: usize = 4_096;
/// Most terms (field conditions) in one text query.
pub const MAX_TEXT_TERMS: usize = 256;
/// Deepest nesting of parentheses and `NOT`s.
pub const MAX_TEXT_DEPTH: usize = 32;

/// Parses the query bar's language into a [`Filter`].
pub fn parse_text(input: &str) -> Result<Filter, ParseError> {
    Err(ParseError {
        offset: 0,
        message: format!("not implemented yet ({} bytes)", input.len()),
    })
}
