//! Field-name suggestions from sample documents, shared by the back ends.

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
        .map(|(path, count)| FieldName { path, count })
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
