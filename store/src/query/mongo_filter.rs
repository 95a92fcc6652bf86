//! Raw MongoDB filter JSON → [`Filter`] (placeholder; being written).

use super::error::FilterError;
use super::ir::Filter;

/// Deepest nesting of a raw filter.
pub const MAX_MONGO_FILTER_DEPTH: usize = 32;
/// Most operators and values in one raw filter.
pub const MAX_MONGO_FILTER_NODES: usize = 1_024;

/// Translates a MongoDB filter document through the operator allow-list.
pub fn parse_mongo_filter(filter: &serde_json::Value) -> Result<Filter, FilterError> {
    let _ = filter;
    Err(FilterError {
        location: "filter".to_owned(),
        message: "not implemented yet".to_owned(),
    })
}
