//! Field names from sample documents: suggestions for the query bar
//! ([`field_names`], shared by the back ends) and the value paths an export
//! makes columns of ([`value_paths`]).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::api::FieldName;
use super::ir::MAX_PATH_SEGMENTS;

/// Most distinct field names one suggestion request reports.
pub const MAX_FIELD_NAMES: usize = 1_000;

/// Counts, per dotted path, the documents it appears in; most frequent
/// first (ties by name). Arrays are transparent, as in filters.
pub(crate) fn field_names<'a>(docs: impl IntoIterator<Item = &'a Value>) -> Vec<FieldName> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for doc in docs {
        let mut seen = HashSet::new();
        collect_names(doc, "", 1, &mut seen);
        for name in seen {
            if counts.len() < MAX_FIELD_NAMES || counts.contains_key(&name) {
                *counts.entry(name).or_default() += 1;
            }
        }
    }
    let mut names: Vec<FieldName> = counts
        .into_iter()
        .map(|(path, count)| FieldName {
            path,
            count,
            column: None,
        })
        .collect();
    names.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.path.cmp(&b.path)));
    names
}

/// Every dotted path in `value`, `depth` levels deep at most.
fn collect_names(value: &Value, prefix: &str, depth: usize, seen: &mut HashSet<String>) {
    if depth > MAX_PATH_SEGMENTS {
        return;
    }
    match value {
        Value::Object(members) => {
            for (name, child) in members {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                collect_names(child, &path, depth + 1, seen);
                seen.insert(path);
            }
        }
        Value::Array(elements) => {
            for element in elements.iter().filter(|e| e.is_object()) {
                collect_names(element, prefix, depth, seen);
            }
        }
        _ => {}
    }
}

/// The paths to the values of `docs`, as member names (a name may contain a
/// dot, so paths are not joined): down through objects to every value that
/// is not a non-empty object (an array is one value, as one CSV cell holds
/// it), at most [`MAX_PATH_SEGMENTS`] deep. The `max` paths found in most
/// documents, ties in the order first seen (the documents' own member
/// order).
pub fn value_paths<'a>(docs: impl IntoIterator<Item = &'a Value>, max: usize) -> Vec<Vec<String>> {
    // Path -> (documents it is in, order first seen); bounded like
    // `field_names`.
    let mut found: HashMap<Vec<String>, (u64, usize)> = HashMap::new();
    let mut paths = Vec::new();
    for doc in docs {
        paths.clear();
        collect_value_paths(doc, &mut Vec::new(), &mut paths);
        // Member names are unique within an object, so each path occurs
        // once per document.
        for path in paths.drain(..) {
            let order = found.len();
            if let Some(entry) = found.get_mut(&path) {
                entry.0 += 1;
            } else if order < MAX_FIELD_NAMES {
                found.insert(path, (1, order));
            }
        }
    }
    let mut ranked: Vec<(Vec<String>, (u64, usize))> = found.into_iter().collect();
    ranked.sort_by(|(_, a), (_, b)| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    ranked.into_iter().take(max).map(|(path, _)| path).collect()
}

/// Appends the value paths under `value` (at `prefix`) in document order.
fn collect_value_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(members) if !members.is_empty() && prefix.len() < MAX_PATH_SEGMENTS => {
            for (name, child) in members {
                prefix.push(name.clone());
                collect_value_paths(child, prefix, out);
                prefix.pop();
            }
        }
        // The document itself is an object; anything else at the top has
        // no path.
        _ if prefix.is_empty() => {}
        _ => out.push(prefix.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(segments: &[&str]) -> Vec<String> {
        segments.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn value_paths_keep_dotted_names_whole_and_stop_at_arrays() {
        let docs = [json!({"a.b": 1, "user": {"plan": "pro", "tags": [1, 2]}, "e": {}})];
        assert_eq!(
            value_paths(&docs, 10),
            vec![
                path(&["a.b"]),
                path(&["user", "plan"]),
                path(&["user", "tags"]),
                path(&["e"])
            ]
        );
    }

    #[test]
    fn value_paths_rank_by_documents_then_first_seen() {
        let docs = [
            json!({"rare": 1, "common": 1}),
            json!({"common": 2, "other": 3}),
        ];
        assert_eq!(
            value_paths(&docs, 10),
            vec![path(&["common"]), path(&["rare"]), path(&["other"])]
        );
        assert_eq!(value_paths(&docs, 1), vec![path(&["common"])]);
    }
}
