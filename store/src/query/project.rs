//! Projection: the parts of a document a query asked for.

use serde_json::{Map, Value};

use super::ir::{FieldPath, PATH_ID, PATH_TS, PATH_TYPE};

/// `doc` reduced to `paths` plus `_id`, `ts` and `type` (so rows can still
/// be shown and paged). A path through an array keeps, for each element
/// that is an object, that element's projection (as MongoDB does).
pub(crate) fn project(doc: &Value, paths: &[FieldPath]) -> Value {
    let mut out = Map::new();
    for name in [PATH_ID, PATH_TS, PATH_TYPE] {
        if let Some(value) = doc.get(name) {
            out.insert(name.to_owned(), value.clone());
        }
    }
    let mut projected = Value::Object(out);
    for path in paths {
        copy_path(doc, path.segments(), &mut projected);
    }
    projected
}

/// Copies the value at `segments` of `from` into `into` (both objects).
fn copy_path(from: &Value, segments: &[String], into: &mut Value) {
    let (Some((first, rest)), Some(target)) = (segments.split_first(), into.as_object_mut()) else {
        return;
    };
    let Some(child) = from.as_object().and_then(|object| object.get(first)) else {
        return;
    };
    if rest.is_empty() {
        target.insert(first.clone(), child.clone());
        return;
    }
    match child {
        Value::Object(_) => {
            let slot = target
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if slot.is_object() {
                copy_path(child, rest, slot);
            }
        }
        Value::Array(elements) => {
            let objects: Vec<&Value> = elements.iter().filter(|e| e.is_object()).collect();
            let slot = target
                .entry(first.clone())
                .or_insert_with(|| Value::Array(vec![Value::Object(Map::new()); objects.len()]));
            if let Value::Array(slots) = slot {
                for (element, slot) in objects.into_iter().zip(slots.iter_mut()) {
                    copy_path(element, rest, slot);
                }
            }
        }
        _ => {}
    }
}
